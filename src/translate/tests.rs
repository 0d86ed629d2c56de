//! Translation rules, one table row or rule per test.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::*;
use crate::config::Settings;
use crate::model::{HealthMonitor, HealthMonitorType, HttpCheck, ListenerOptions};

fn service(v: Value) -> Service {
    serde_json::from_value(v).expect("test Service")
}

fn endpoints(v: Value) -> Endpoints {
    serde_json::from_value(v).expect("test Endpoints")
}

fn slice(v: Value) -> EndpointSlice {
    serde_json::from_value(v).expect("test EndpointSlice")
}

fn settings() -> Settings {
    let mut s = Settings::default();
    s.neutron_defaults.pod_subnet = Some("pod-subnet".into());
    s.neutron_defaults.service_subnet = Some("service-subnet".into());
    s.neutron_defaults.external_svc_subnet = Some("public-subnet".into());
    s
}

fn web(spec: Value) -> Service {
    let mut spec = spec;
    if spec.get("ports").is_none() {
        spec["ports"] = json!([{"name": "http", "port": 80, "targetPort": 8080}]);
    }
    if spec.get("clusterIP").is_none() {
        spec["clusterIP"] = json!("10.2.0.42");
    }
    service(json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec}))
}

fn desired(t: Translation) -> DesiredLoadBalancer {
    match t {
        Translation::LoadBalancer(d) => *d,
        Translation::Skip { reason, .. } => panic!("unexpected skip: {reason}"),
    }
}

fn lb(svc: &Service, backends: Option<Backends<'_>>) -> DesiredLoadBalancer {
    desired(translate(&settings(), svc, backends).expect("translates"))
}

fn skip_reason(svc: &Service) -> String {
    match translate(&settings(), svc, None).expect("translates") {
        Translation::Skip { reason, .. } => reason,
        Translation::LoadBalancer(d) => panic!("expected a skip, got {}", d.name),
    }
}

fn err(svc: &Service, backends: Option<Backends<'_>>) -> TranslateError {
    translate(&settings(), svc, backends).expect_err("should fail")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn member(address: &str, port: u16) -> Member {
    Member::serving(ip(address), port)
}

fn draining(address: &str, port: u16) -> Member {
    Member {
        weight: Member::DRAINING,
        ..member(address, port)
    }
}

fn members(d: &DesiredLoadBalancer, listener: usize) -> Vec<Member> {
    d.listeners[listener]
        .pool
        .members
        .clone()
        .expect("members managed")
        .into_iter()
        .collect()
}

#[test]
fn a_service_becomes_one_load_balancer_named_namespace_slash_name() {
    let d = lb(&web(json!({})), None);
    assert_eq!(d.name, "shop/web");
    assert_eq!(d.service.to_string(), "shop/web");
    assert_eq!(d.listeners.len(), 1);
}

#[test]
fn the_cluster_ip_is_the_vip_on_the_service_subnet() {
    let d = lb(&web(json!({})), None);
    assert_eq!(d.vip.address, Some(ip("10.2.0.42")));
    assert_eq!(d.vip.subnet_id.as_deref(), Some("service-subnet"));
}

#[test]
fn each_port_is_one_listener_and_one_pool_named_after_protocol_and_port() {
    let svc = web(json!({"ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "sctp", "port": 9899, "protocol": "SCTP"}
    ]}));
    let d = lb(&svc, None);
    let names: Vec<(&str, &str, ListenerProtocol, u16)> = d
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.pool.name.as_str(),
                l.protocol,
                l.protocol_port,
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                "shop/web:SCTP:9899",
                "shop/web:SCTP:9899",
                ListenerProtocol::Sctp,
                9899
            ),
            (
                "shop/web:TCP:53",
                "shop/web:TCP:53",
                ListenerProtocol::Tcp,
                53
            ),
            (
                "shop/web:UDP:53",
                "shop/web:UDP:53",
                ListenerProtocol::Udp,
                53
            ),
        ]
    );
    assert!(
        d.listeners
            .iter()
            .all(|l| l.pool.protocol == PoolProtocol::for_listener(l.protocol))
    );
}

#[test]
fn a_namespace_defaults_to_default() {
    let svc = service(
        json!({"metadata": {"name": "x"}, "spec": {"clusterIP": "10.2.0.1", "ports": [{"port": 80}]}}),
    );
    assert_eq!(lb(&svc, None).name, "default/x");
}

#[test]
fn ready_endpoints_become_members_and_not_ready_ones_do_not() {
    let ep = endpoints(
        json!({"metadata": {"name": "web", "namespace": "shop"}, "subsets": [{
            "addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}],
            "notReadyAddresses": [{"ip": "10.1.0.99"}],
            "ports": [{"name": "http", "port": 8080}]
        }]}),
    );
    let d = lb(
        &web(json!({})),
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert_eq!(
        members(&d, 0),
        [member("10.1.0.5", 8080), member("10.1.0.6", 8080)]
    );
    assert_eq!(
        d.listeners[0].pool.member_subnet.as_deref(),
        Some("pod-subnet")
    );
}

#[test]
fn named_target_ports_resolve_per_subset_through_the_endpoint_port_names() {
    let svc = web(json!({"ports": [
        {"name": "http", "port": 80, "targetPort": "web"},
        {"name": "admin", "port": 81, "targetPort": "admin"}
    ]}));
    let ep = endpoints(
        json!({"metadata": {"name": "web", "namespace": "shop"}, "subsets": [
            {"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}]},
            {"addresses": [{"ip": "10.1.0.6"}], "ports": [{"name": "http", "port": 8081}, {"name": "admin", "port": 9001}]}
        ]}),
    );
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    // Sorted by name: TCP:80 then TCP:81.
    assert_eq!(
        members(&d, 0),
        [member("10.1.0.5", 8080), member("10.1.0.6", 8081)]
    );
    assert_eq!(
        members(&d, 1),
        [member("10.1.0.5", 9000), member("10.1.0.6", 9001)]
    );
}

#[test]
fn a_named_target_port_missing_from_the_endpoints_gives_no_members_and_a_note() {
    let svc = web(json!({"ports": [{"name": "http", "port": 80, "targetPort": "web"}]}));
    let ep = endpoints(json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "other", "port": 8080}]}
    ]}));
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert!(members(&d, 0).is_empty());
    assert!(
        d.notes.iter().any(|n| n.contains("lists this port")),
        "{:?}",
        d.notes
    );
}

#[test]
fn numeric_target_ports_serve_only_endpoints_that_list_the_port() {
    // A subset that does not list the Service port does not serve it, even
    // with a numeric targetPort: its pods may not listen there at all.
    let svc = web(json!({"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}));
    let ep = endpoints(json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "unrelated", "port": 1234}]},
        {"addresses": [{"ip": "10.1.0.6"}], "ports": [{"name": "http", "port": 8080}]}
    ]}));
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert_eq!(members(&d, 0), [member("10.1.0.6", 8080)]);
}

#[test]
fn no_target_port_means_the_port() {
    let svc = web(json!({"ports": [{"port": 80}]}));
    let ep = endpoints(
        json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 80}]}]}),
    );
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert_eq!(members(&d, 0), [member("10.1.0.5", 80)]);
    // A slice port without a number serves the Service's target port.
    let s = [slice(
        json!({"metadata": {"name": "web-a"}, "addressType": "IPv4",
        "ports": [{"protocol": "TCP"}], "endpoints": [{"addresses": ["10.1.0.6"]}]}),
    )];
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: None,
            endpoint_slices: &s,
        }),
    );
    assert_eq!(members(&d, 0), [member("10.1.0.6", 80)]);
}

#[test]
fn endpoint_slices_give_members_skipping_not_ready_and_duplicates() {
    let a = slice(json!({"metadata": {"name": "web-a"}, "addressType": "IPv4",
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "endpoints": [
        {"addresses": ["10.1.0.5"], "conditions": {"ready": true}},
        {"addresses": ["10.1.0.6"], "conditions": {"ready": false}},
        {"addresses": ["10.1.0.7"]}
    ]}));
    let b = slice(json!({"metadata": {"name": "web-b"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.8", "10.1.0.9"]}]}));
    let fqdn = slice(json!({"metadata": {"name": "web-c"}, "addressType": "FQDN",
        "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["pod.example.com"]}]}));
    let slices = [a, b, fqdn];
    let d = lb(
        &web(json!({})),
        Some(Backends {
            endpoints: None,
            endpoint_slices: &slices,
        }),
    );
    assert_eq!(
        members(&d, 0),
        [
            member("10.1.0.5", 8080),
            member("10.1.0.7", 8080),
            member("10.1.0.8", 8080)
        ]
    );
}

fn terminating_slices() -> [EndpointSlice; 2] {
    let a = slice(json!({"metadata": {"name": "web-a"}, "addressType": "IPv4",
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    "endpoints": [
        {"addresses": ["10.1.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false}},
        // Draining: serving while terminating.
        {"addresses": ["10.1.0.6"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        // Terminating and no longer serving: gone.
        {"addresses": ["10.1.0.7"], "conditions": {"ready": false, "serving": false, "terminating": true}},
        // Not ready, not terminating (starting): not a member.
        {"addresses": ["10.1.0.8"], "conditions": {"ready": false, "serving": false, "terminating": false}}
    ]}));
    // The same address serving in another slice: serving wins.
    let b = slice(json!({"metadata": {"name": "web-b"}, "addressType": "IPv4",
    "ports": [{"name": "http", "port": 8080}],
    "endpoints": [
        {"addresses": ["10.1.0.9"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        {"addresses": ["10.1.0.9"], "conditions": {"ready": true}}
    ]}));
    [a, b]
}

#[test]
fn serving_terminating_endpoints_stay_members_with_weight_zero() {
    let slices = terminating_slices();
    let backends = Backends {
        endpoints: None,
        endpoint_slices: &slices,
    };
    let d = lb(&web(json!({})), Some(backends));
    assert_eq!(
        members(&d, 0),
        [
            member("10.1.0.5", 8080),
            draining("10.1.0.6", 8080),
            member("10.1.0.9", 8080)
        ]
    );
    assert!(drains(backends, true));
    assert!(!drains(backends, false));
    // The same from the slices alone (an Endpoints-only change).
    let alone = members_of_port(
        "http",
        "8080",
        ListenerProtocol::Tcp,
        IpFamily::IPv4,
        backends,
        true,
    )
    .expect("members");
    assert_eq!(alone.into_iter().collect::<Vec<_>>(), members(&d, 0));
}

#[test]
fn with_draining_off_terminating_endpoints_leave_at_once() {
    let slices = terminating_slices();
    let backends = Backends {
        endpoints: None,
        endpoint_slices: &slices,
    };
    let mut settings = settings();
    settings.octavia_defaults.drain_terminating = false;
    let d = desired(translate(&settings, &web(json!({})), Some(backends)).expect("translates"));
    assert_eq!(
        members(&d, 0),
        [member("10.1.0.5", 8080), member("10.1.0.9", 8080)]
    );
    let alone = members_of_port(
        "http",
        "8080",
        ListenerProtocol::Tcp,
        IpFamily::IPv4,
        backends,
        false,
    )
    .expect("members");
    assert_eq!(alone.len(), 2);
}

#[test]
fn endpoints_and_slices_together_are_deduplicated() {
    let ep = endpoints(json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "http", "port": 8080}]},
        {"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "http", "port": 8080}]}
    ]}));
    let s = [slice(
        json!({"metadata": {"name": "web-a"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["10.1.0.5"]}]}),
    )];
    let d = lb(
        &web(json!({})),
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &s,
        }),
    );
    assert_eq!(members(&d, 0), [member("10.1.0.5", 8080)]);
}

#[test]
fn without_endpoints_members_are_not_managed_and_with_empty_ones_there_are_none() {
    let d = lb(&web(json!({})), None);
    assert_eq!(d.listeners[0].pool.members, None);
    let empty = endpoints(json!({"metadata": {"name": "web"}}));
    let d = lb(
        &web(json!({})),
        Some(Backends {
            endpoints: Some(&empty),
            endpoint_slices: &[],
        }),
    );
    assert_eq!(d.listeners[0].pool.members, Some(BTreeSet::new()));
}

#[test]
fn ipv6_services_get_ipv6_members_and_no_floating_ip() {
    let svc =
        web(json!({"type": "LoadBalancer", "clusterIP": "fd00:10:2::42", "ipFamilies": ["IPv6"]}));
    let s = [
        slice(json!({"metadata": {"name": "v6"}, "addressType": "IPv6",
            "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["fd00:10:1::5"]}]})),
        slice(json!({"metadata": {"name": "v4"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["10.1.0.5"]}]})),
    ];
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: None,
            endpoint_slices: &s,
        }),
    );
    assert_eq!(d.vip.address, Some(ip("fd00:10:2::42")));
    assert_eq!(members(&d, 0), [member("fd00:10:1::5", 8080)]);
    assert_eq!(d.floating_ip, FloatingIpIntent::None);
    assert!(d.notes.iter().any(|n| n.contains("IPv6")));
}

#[test]
fn ipv6_vips_use_the_ipv6_service_subnet_when_configured() {
    let mut s = settings();
    s.neutron_defaults.service_subnet_ipv6 = Some("service-subnet-v6".into());
    let svc = web(json!({"clusterIP": "fd00:10:2::42"}));
    let d = desired(translate(&s, &svc, None).unwrap());
    assert_eq!(d.vip.subnet_id.as_deref(), Some("service-subnet-v6"));
}

#[test]
fn dual_stack_members_follow_the_vip_family_and_the_second_family_is_noted() {
    let svc = web(
        json!({"clusterIP": "10.2.0.42", "clusterIPs": ["10.2.0.42", "fd00:10:2::42"],
        "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}),
    );
    let ep = endpoints(json!({"metadata": {"name": "web"}, "subsets": [{
        "addresses": [{"ip": "10.1.0.5"}, {"ip": "fd00:10:1::5"}], "ports": [{"name": "http", "port": 8080}]}]}));
    let backends = Some(Backends {
        endpoints: Some(&ep),
        endpoint_slices: &[],
    });
    let d = lb(&svc, backends);
    assert_eq!(members(&d, 0), [member("10.1.0.5", 8080)]);
    assert!(d.additional_vips.is_empty());
    assert!(
        d.notes.iter().any(|n| n.contains("dual-stack")),
        "{:?}",
        d.notes
    );

    let mut s = settings();
    s.neutron_defaults.service_subnet_ipv6 = Some("service-subnet-v6".into());
    let d = desired(translate(&s, &svc, backends).unwrap());
    assert_eq!(
        d.additional_vips,
        [Vip {
            address: Some(ip("fd00:10:2::42")),
            subnet_id: Some("service-subnet-v6".into()),
            network_id: None,
            port_id: None,
        }]
    );
}

#[test]
fn load_balancer_type_without_ip_uses_the_pool_method() {
    let d = lb(&web(json!({"type": "LoadBalancer"})), None);
    assert_eq!(
        d.floating_ip,
        FloatingIpIntent::Pool {
            subnet_id: Some("public-subnet".into()),
            network_id: None,
            subnet_match: None,
        }
    );
}

#[test]
fn load_balancer_ip_uses_the_user_method() {
    let d = lb(
        &web(json!({"type": "LoadBalancer", "loadBalancerIP": "172.24.4.13"})),
        None,
    );
    assert_eq!(
        d.floating_ip,
        FloatingIpIntent::User {
            address: "172.24.4.13".parse().unwrap()
        }
    );
}

#[test]
fn other_types_get_no_floating_ip() {
    for t in ["ClusterIP", "NodePort"] {
        let d = lb(
            &web(json!({"type": t, "loadBalancerIP": "172.24.4.13"})),
            None,
        );
        assert_eq!(d.floating_ip, FloatingIpIntent::None, "{t}");
    }
}

#[test]
fn internal_load_balancers_get_no_floating_ip() {
    let mut svc = web(json!({"type": "LoadBalancer"}));
    svc.metadata.annotations =
        Some([(annotation::INTERNAL.to_string(), "true".to_string())].into());
    assert_eq!(lb(&svc, None).floating_ip, FloatingIpIntent::None);
}

#[test]
fn client_ip_affinity_is_source_ip_persistence() {
    let d = lb(&web(json!({"sessionAffinity": "ClientIP"})), None);
    assert_eq!(
        d.listeners[0].pool.session_persistence,
        Some(SessionPersistence::SourceIp)
    );
    let d = lb(&web(json!({"sessionAffinity": "None"})), None);
    assert_eq!(d.listeners[0].pool.session_persistence, None);
}

#[test]
fn source_ranges_become_allowed_cidrs_normalised_and_sorted() {
    let d = lb(
        &web(json!({"type": "LoadBalancer",
            "loadBalancerSourceRanges": ["203.0.113.9/24", "10.0.0.0/8", "10.0.0.0/8"]})),
        None,
    );
    let cidrs: Vec<String> = d.listeners[0]
        .allowed_cidrs
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(cidrs, ["10.0.0.0/8", "203.0.113.0/24"]);
    let e = err(
        &web(
            json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8", "nonsense"]}),
        ),
        None,
    );
    assert_eq!(e.field_path(), "service.spec.loadBalancerSourceRanges[1]");
}

#[test]
fn the_api_service_gets_https_listeners_and_least_connections_by_default() {
    let svc = service(
        json!({"metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.2.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}),
    );
    let ep = endpoints(
        json!({"metadata": {"name": "kubernetes", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "192.168.1.2"}], "ports": [{"name": "https", "port": 6443}]}]}),
    );
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    let l = &d.listeners[0];
    assert_eq!(l.name, "default/kubernetes:HTTPS:443");
    assert_eq!(l.protocol, ListenerProtocol::Https);
    assert_eq!(l.pool.protocol, PoolProtocol::Https);
    assert_eq!(l.pool.lb_algorithm, LbAlgorithm::LeastConnections);
    assert_eq!(members(&d, 0), [member("192.168.1.2", 6443)]);
}

#[test]
fn annotations_override_the_api_service_defaults() {
    let mut svc = service(
        json!({"metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.2.0.1", "ports": [{"port": 443}]}}),
    );
    svc.metadata.annotations = Some(
        [
            (annotation::LISTENER_PROTOCOL.to_string(), "TCP".to_string()),
            (annotation::LB_METHOD.to_string(), "ROUND_ROBIN".to_string()),
        ]
        .into(),
    );
    let d = lb(&svc, None);
    assert_eq!(d.listeners[0].name, "default/kubernetes:TCP:443");
    assert_eq!(d.listeners[0].pool.lb_algorithm, LbAlgorithm::RoundRobin);
}

#[test]
fn https_by_annotation_on_any_service() {
    let mut svc = web(json!({"ports": [{"port": 443}]}));
    svc.metadata.annotations = Some(
        [(
            annotation::LISTENER_PROTOCOL.to_string(),
            "HTTPS".to_string(),
        )]
        .into(),
    );
    let d = lb(&svc, None);
    assert_eq!(d.listeners[0].name, "shop/web:HTTPS:443");
    let mut udp = web(json!({"ports": [{"port": 53, "protocol": "UDP"}]}));
    udp.metadata.annotations = svc.metadata.annotations.clone();
    assert!(
        matches!(err(&udp, None), TranslateError::Annotation { annotation: a, .. } if a == annotation::LISTENER_PROTOCOL)
    );
}

#[test]
fn the_default_algorithm_comes_from_settings() {
    let mut s = settings();
    s.octavia_defaults.lb_algorithm = LbAlgorithm::SourceIpPort;
    let d = desired(translate(&s, &web(json!({})), None).unwrap());
    assert_eq!(d.listeners[0].pool.lb_algorithm, LbAlgorithm::SourceIpPort);
}

fn annotated(pairs: &[(&str, &str)]) -> Service {
    let mut svc = web(json!({"type": "LoadBalancer"}));
    svc.metadata.annotations = Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    svc
}

#[test]
fn every_annotation_is_honoured() {
    use annotation::*;
    let svc = annotated(&[
        (LB_METHOD, "SOURCE_IP"),
        (KEEP_FLOATING_IP, "true"),
        (FLAVOR_ID, "f1a0c0de-0000-4000-8000-000000000001"),
        (AVAILABILITY_ZONE, "az-1"),
        (SUBNET_ID, "5b0e0000-0000-4000-8000-000000000002"),
        (MEMBER_SUBNET_ID, "5b0e0000-0000-4000-8000-000000000003"),
        (FLOATING_SUBNET_ID, "5b0e0000-0000-4000-8000-000000000004"),
        (FLOATING_NETWORK_ID, "4e70e000-0000-4000-8000-000000000005"),
        (ENABLE_HEALTH_MONITOR, "true"),
        (HEALTH_MONITOR_DELAY, "10"),
        (HEALTH_MONITOR_TIMEOUT, "4"),
        (HEALTH_MONITOR_MAX_RETRIES, "2"),
        (HEALTH_MONITOR_MAX_RETRIES_DOWN, "5"),
        (TIMEOUT_CLIENT_DATA, "60000"),
        (TIMEOUT_MEMBER_CONNECT, "3000"),
        (TIMEOUT_MEMBER_DATA, "70000"),
        (TIMEOUT_TCP_INSPECT, "10"),
        (CONNECTION_LIMIT, "1000"),
        (PROXY_PROTOCOL, "v2"),
        (LOAD_BALANCER_ID, "1b000000-0000-4000-8000-000000000006"),
    ]);
    let d = lb(&svc, None);
    let l = &d.listeners[0];
    assert_eq!(l.pool.lb_algorithm, LbAlgorithm::SourceIp);
    assert!(d.keep_floating_ip);
    assert_eq!(
        d.flavor_id.as_deref(),
        Some("f1a0c0de-0000-4000-8000-000000000001")
    );
    assert_eq!(d.availability_zone.as_deref(), Some("az-1"));
    assert_eq!(
        d.vip.subnet_id.as_deref(),
        Some("5b0e0000-0000-4000-8000-000000000002")
    );
    assert_eq!(
        l.pool.member_subnet.as_deref(),
        Some("5b0e0000-0000-4000-8000-000000000003")
    );
    assert_eq!(
        d.floating_ip,
        FloatingIpIntent::Pool {
            subnet_id: Some("5b0e0000-0000-4000-8000-000000000004".into()),
            network_id: Some("4e70e000-0000-4000-8000-000000000005".into()),
            subnet_match: None,
        }
    );
    assert_eq!(
        l.pool.health_monitor,
        Some(HealthMonitor {
            kind: HealthMonitorType::Tcp,
            delay: 10,
            timeout: 4,
            max_retries: 2,
            max_retries_down: 5,
            http: None,
        })
    );
    assert_eq!(
        l.options,
        ListenerOptions {
            connection_limit: Some(1000),
            timeout_client_data: Some(60000),
            timeout_member_connect: Some(3000),
            timeout_member_data: Some(70000),
            timeout_tcp_inspect: Some(10),
        }
    );
    assert_eq!(l.pool.protocol, PoolProtocol::ProxyV2);
    assert_eq!(
        d.load_balancer_id.as_deref(),
        Some("1b000000-0000-4000-8000-000000000006")
    );
}

#[test]
fn health_monitor_defaults_and_types_follow_the_pool_protocol() {
    let svc = service(
        json!({"metadata": {"name": "dns", "annotations": {annotation::ENABLE_HEALTH_MONITOR: "1"}},
        "spec": {"clusterIP": "10.2.0.10", "ports": [{"name": "u", "port": 53, "protocol": "UDP"}, {"name": "t", "port": 53}]}}),
    );
    let d = lb(&svc, None);
    let kinds: Vec<_> = d
        .listeners
        .iter()
        .map(|l| l.pool.health_monitor.as_ref().unwrap().kind)
        .collect();
    assert_eq!(
        kinds,
        [HealthMonitorType::Tcp, HealthMonitorType::UdpConnect]
    );
    let hm = d.listeners[0].pool.health_monitor.as_ref().unwrap();
    assert_eq!(
        (hm.delay, hm.timeout, hm.max_retries, hm.max_retries_down),
        (5, 3, 1, 3)
    );
}

#[test]
fn kuryr_timeout_annotations_set_the_same_listener_timeouts() {
    use annotation::*;
    let svc = annotated(&[
        (KURYR_TIMEOUT_CLIENT_DATA, "60000"),
        (KURYR_TIMEOUT_MEMBER_DATA, "70000"),
    ]);
    let l = &lb(&svc, None).listeners[0];
    assert_eq!(l.options.timeout_client_data, Some(60000));
    assert_eq!(l.options.timeout_member_data, Some(70000));
    // kuryr's 0 is Octavia's default: nothing set.
    let svc = annotated(&[(KURYR_TIMEOUT_CLIENT_DATA, "0")]);
    assert_eq!(
        lb(&svc, None).listeners[0].options.timeout_client_data,
        None
    );
    // Both names, the same value: fine; different values: the kuryr one is named.
    let svc = annotated(&[
        (TIMEOUT_CLIENT_DATA, "60000"),
        (KURYR_TIMEOUT_CLIENT_DATA, "60000"),
    ]);
    assert_eq!(
        lb(&svc, None).listeners[0].options.timeout_client_data,
        Some(60000)
    );
    let svc = annotated(&[
        (TIMEOUT_MEMBER_DATA, "60000"),
        (KURYR_TIMEOUT_MEMBER_DATA, "5000"),
    ]);
    let e = err(&svc, None).to_string();
    assert!(
        e.contains(KURYR_TIMEOUT_MEMBER_DATA) && e.contains("disagrees"),
        "{e}"
    );
}

#[test]
fn kuryr_conf_timeouts_and_floating_network_are_defaults_the_annotations_override() {
    use annotation::*;
    let mut s = settings();
    s.octavia_defaults.timeout_client_data = 50000;
    s.octavia_defaults.timeout_member_data = 0;
    s.neutron_defaults.external_svc_subnet = None;
    s.neutron_defaults.external_svc_net = Some("public-net".into());
    let with = |svc: &Service| desired(translate(&s, svc, None).expect("translates"));
    let d = with(&web(json!({"type": "LoadBalancer"})));
    let o = &d.listeners[0].options;
    // 0 is Octavia's default: nothing sent.
    assert_eq!(
        (o.timeout_client_data, o.timeout_member_data),
        (Some(50000), None)
    );
    assert_eq!(
        d.floating_ip,
        FloatingIpIntent::Pool {
            subnet_id: None,
            network_id: Some("public-net".into()),
            subnet_match: None,
        }
    );
    let d = with(&annotated(&[(TIMEOUT_CLIENT_DATA, "7000")]));
    assert_eq!(d.listeners[0].options.timeout_client_data, Some(7000));
    // A floating subnet (setting or annotation) wins over the network setting.
    s.neutron_defaults.external_svc_subnet = Some("public-subnet".into());
    let d =
        desired(translate(&s, &web(json!({"type": "LoadBalancer"})), None).expect("translates"));
    assert_eq!(
        d.floating_ip,
        FloatingIpIntent::Pool {
            subnet_id: Some("public-subnet".into()),
            network_id: None,
            subnet_match: None,
        }
    );
}

#[test]
fn occms_load_balancer_section_gives_the_annotations_defaults() {
    use annotation::*;
    let mut s = settings();
    s.load_balancer.create_monitor = true;
    s.load_balancer.monitor_delay = crate::config::Seconds(60);
    s.load_balancer.monitor_timeout = crate::config::Seconds(30);
    s.load_balancer.flavor_id = Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81".into());
    let with = |s: &Settings, svc: &Service| desired(translate(s, svc, None).expect("translates"));
    let d = with(&s, &web(json!({"type": "LoadBalancer"})));
    let hm = d.listeners[0]
        .pool
        .health_monitor
        .as_ref()
        .expect("create-monitor");
    assert_eq!(
        (hm.delay, hm.timeout, hm.max_retries, hm.max_retries_down),
        (60, 30, 1, 3)
    );
    assert_eq!(
        d.flavor_id.as_deref(),
        Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81")
    );
    // The annotations still win.
    let d = with(
        &s,
        &annotated(&[
            (ENABLE_HEALTH_MONITOR, "false"),
            (FLAVOR_ID, "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82"),
        ]),
    );
    assert!(d.listeners[0].pool.health_monitor.is_none());
    assert_eq!(
        d.flavor_id.as_deref(),
        Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82")
    );
    // internal-lb: every Service internal, as in OCCM.
    s.load_balancer.internal_lb = true;
    let d = with(&s, &annotated(&[(INTERNAL, "false")]));
    assert_eq!(d.floating_ip, FloatingIpIntent::None);
}

#[test]
fn a_load_balancer_class_gives_its_subnets_where_the_annotations_name_none() {
    use annotation::*;
    let mut s = settings();
    s.load_balancer_classes.insert(
        "internet".into(),
        crate::config::LoadBalancerClass {
            floating_subnet_id: Some("class-public-subnet".into()),
            subnet_id: Some("class-vip-subnet".into()),
            member_subnet_id: Some("class-member-subnet".into()),
            ..Default::default()
        },
    );
    let with = |svc: &Service| desired(translate(&s, svc, None).expect("translates"));
    let d = with(&annotated(&[(CLASS, "internet")]));
    assert_eq!(d.vip.subnet_id.as_deref(), Some("class-vip-subnet"));
    assert_eq!(
        d.floating_ip,
        FloatingIpIntent::Pool {
            subnet_id: Some("class-public-subnet".into()),
            network_id: None,
            subnet_match: None,
        }
    );
    assert_eq!(
        d.listeners[0].pool.member_subnet.as_deref(),
        Some("class-member-subnet")
    );
    // The Service's own annotation wins over its class.
    let d = with(&annotated(&[
        (CLASS, "internet"),
        (SUBNET_ID, "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81"),
    ]));
    assert_eq!(
        d.vip.subnet_id.as_deref(),
        Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81")
    );
    // No class: the settings.
    let d = with(&web(json!({"type": "LoadBalancer"})));
    assert_eq!(d.vip.subnet_id.as_deref(), Some("service-subnet"));
    let e = translate(&s, &annotated(&[(CLASS, "intranet")]), None)
        .expect_err("no such class")
        .to_string();
    assert!(e.contains(CLASS) && e.contains("internet"), "{e}");
}

#[test]
fn what_the_ovn_provider_cannot_do_is_refused_naming_the_field() {
    use annotation::*;
    let mut s = settings();
    s.octavia_defaults.provider = Some("ovn".into());
    let with = |svc: &Service| translate(&s, svc, None);
    // The default algorithm becomes OVN's one, with a note.
    let d = desired(with(&web(json!({"type": "LoadBalancer"}))).expect("translates"));
    assert_eq!(d.listeners[0].pool.lb_algorithm, LbAlgorithm::SourceIpPort);
    assert!(
        d.notes.iter().any(|n| n.contains("SOURCE_IP_PORT")),
        "{:?}",
        d.notes
    );
    for (pairs, named) in [
        (&[(LB_METHOD, "ROUND_ROBIN")][..], LB_METHOD),
        (&[(TIMEOUT_CLIENT_DATA, "5000")][..], TIMEOUT_CLIENT_DATA),
        (&[(PROXY_PROTOCOL, "true")][..], PROXY_PROTOCOL),
        (
            &[(FLAVOR_ID, "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81")][..],
            FLAVOR_ID,
        ),
        (&[(LISTENER_PROTOCOL, "HTTPS")][..], LISTENER_PROTOCOL),
    ] {
        let e = with(&annotated(pairs)).expect_err("refused");
        assert_eq!(
            e.field_path(),
            format!("service.metadata.annotations[\"{named}\"]"),
            "{e}"
        );
        assert!(e.to_string().contains("ovn provider"), "{e}");
    }
    // Source ranges: a security group on the VIP port instead (OVN has no allowed_cidrs).
    let ranged = web(
        json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["192.0.2.0/24"],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
    );
    let d = desired(with(&ranged).expect("translates"));
    assert!(d.listeners.iter().all(|l| l.allowed_cidrs.is_empty()));
    let rules: Vec<(&str, u16, String)> = d
        .vip_security_group
        .as_ref()
        .expect("a VIP security group")
        .rules
        .iter()
        .map(|r| (r.protocol, r.port, r.remote.to_string()))
        .collect();
    assert_eq!(
        rules,
        [
            ("tcp", 80, "192.0.2.0/24".to_string()),
            ("udp", 53, "192.0.2.0/24".to_string())
        ]
    );
    // SOURCE_IP_PORT is fine there; on amphora it is refused.
    assert!(with(&annotated(&[(LB_METHOD, "SOURCE_IP_PORT")])).is_ok());
    s.octavia_defaults.provider = Some("amphora".into());
    let e = translate(&s, &annotated(&[(LB_METHOD, "SOURCE_IP_PORT")]), None).expect_err("refused");
    assert!(e.to_string().contains("amphora provider"), "{e}");
}

#[test]
fn a_network_id_puts_the_vip_on_that_network_and_lets_neutron_pick_it() {
    use annotation::*;
    let net = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81";
    let d = lb(&annotated(&[(NETWORK_ID, net)]), None);
    assert_eq!(
        d.vip,
        Vip {
            address: None,
            subnet_id: None,
            network_id: Some(net.into()),
            port_id: None,
        }
    );
    // Both given, both are sent (as OCCM sends them).
    let sub = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82";
    let d = lb(&annotated(&[(NETWORK_ID, net), (SUBNET_ID, sub)]), None);
    assert_eq!(
        (d.vip.subnet_id.as_deref(), d.vip.network_id.as_deref()),
        (Some(sub), Some(net))
    );
    // The annotation is a reference checked before any write.
    let refs = references(&annotated(&[(NETWORK_ID, net)])).expect("references");
    assert!(
        refs.iter()
            .any(|r| r.annotation == NETWORK_ID && r.id == net)
    );
    // A class's or the [LoadBalancer] section's network is the default.
    let mut s = settings();
    s.load_balancer.network_id = Some(net.into());
    let d =
        desired(translate(&s, &web(json!({"type": "LoadBalancer"})), None).expect("translates"));
    assert_eq!(d.vip.network_id.as_deref(), Some(net));
    let e = err(&annotated(&[(NETWORK_ID, "public")]), None).to_string();
    assert!(e.contains(NETWORK_ID), "{e}");
}

#[test]
fn vip_networks_and_subnets_an_annotation_names_must_be_opened_when_the_operator_lists_them() {
    use annotation::*;
    let (net, other) = (
        "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81",
        "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a83",
    );
    let sub = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82";
    let mut s = settings();
    s.tenancy.vip_networks = Some(vec![net.into()]);
    s.tenancy.vip_subnets = Some(vec![sub.into()]);
    assert!(translate(&s, &annotated(&[(NETWORK_ID, net), (SUBNET_ID, sub)]), None).is_ok());
    for (key, value) in [(NETWORK_ID, other), (SUBNET_ID, other)] {
        let e = translate(&s, &annotated(&[(key, value)]), None).expect_err("not opened");
        assert!(matches!(e, TranslateError::Forbidden { .. }), "{e:?}");
        assert_eq!(
            e.field_path(),
            format!("service.metadata.annotations[\"{key}\"]")
        );
    }
    // The operator's own defaults are not checked against the list.
    s.load_balancer.network_id = Some(other.into());
    assert!(translate(&s, &web(json!({"type": "LoadBalancer"})), None).is_ok());
    // Unset: any network.
    assert!(translate(&settings(), &annotated(&[(NETWORK_ID, other)]), None).is_ok());
}

#[test]
fn the_status_names_a_hostname_or_the_address_in_proxy_mode_as_occm_does() {
    use annotation::*;
    let address: IpAddr = "172.24.4.10".parse().expect("an address");
    let d = lb(&annotated(&[(HOSTNAME, "web.example.com")]), None);
    assert_eq!(
        d.ingress.entry(address),
        json!({"hostname": "web.example.com"})
    );
    let d = lb(&annotated(&[(PROXY_PROTOCOL, "true")]), None);
    assert_eq!(
        d.ingress.entry(address),
        json!({"ip": "172.24.4.10", "ipMode": "Proxy"})
    );
    let d = lb(&web(json!({"type": "LoadBalancer"})), None);
    assert_eq!(d.ingress.entry(address), json!({"ip": "172.24.4.10"}));
    let mut s = settings();
    s.load_balancer.enable_ingress_hostname = true;
    let proxied = |s: &Settings| {
        desired(translate(s, &annotated(&[(PROXY_PROTOCOL, "v2")]), None).expect("translates"))
    };
    assert_eq!(
        proxied(&s).ingress.entry(address),
        json!({"hostname": "172.24.4.10.nip.io"})
    );
    // Without PROXY pools the setting changes nothing, as in OCCM.
    let d =
        desired(translate(&s, &web(json!({"type": "LoadBalancer"})), None).expect("translates"));
    assert_eq!(d.ingress.entry(address), json!({"ip": "172.24.4.10"}));
    let e = err(&annotated(&[(HOSTNAME, "Web_Site")]), None).to_string();
    assert!(e.contains(HOSTNAME), "{e}");
}

#[test]
fn bad_annotation_values_are_errors_naming_the_annotation() {
    use annotation::*;
    let cases = [
        (LB_METHOD, "RANDOM"),
        (KEEP_FLOATING_IP, "yes please"),
        (FLAVOR_ID, ""),
        (ENABLE_HEALTH_MONITOR, "maybe"),
        (HEALTH_MONITOR_DELAY, "-1"),
        (HEALTH_MONITOR_TIMEOUT, "ten"),
        (HEALTH_MONITOR_MAX_RETRIES, "11"),
        (HEALTH_MONITOR_MAX_RETRIES_DOWN, "0"),
        (TIMEOUT_CLIENT_DATA, "31536000001"),
        (TIMEOUT_MEMBER_CONNECT, "1.5"),
        (TIMEOUT_MEMBER_DATA, "-5"),
        (TIMEOUT_TCP_INSPECT, "x"),
        (KURYR_TIMEOUT_CLIENT_DATA, "-1"),
        (KURYR_TIMEOUT_MEMBER_DATA, "soon"),
        (CONNECTION_LIMIT, "-2"),
        (PROXY_PROTOCOL, "v3"),
        (INTERNAL, "internal"),
        (LISTENER_PROTOCOL, "QUIC"),
        (SUBNET_ID, " "),
        // Ids go into OpenStack URLs: only UUIDs pass.
        (SUBNET_ID, "../../../v3/auth/tokens"),
        (SUBNET_ID, "x?fields=id#"),
        (MEMBER_SUBNET_ID, "member-subnet"),
        (FLOATING_SUBNET_ID, "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a8"),
        (FLOATING_NETWORK_ID, "public"),
        (FLAVOR_ID, "m1.small"),
        (LOAD_BALANCER_ID, "../loadbalancers"),
        (AVAILABILITY_ZONE, "az/../x"),
        (X_FORWARDED_FOR, "please"),
        (X_FORWARDED_PROTO, "yes"),
        (DEFAULT_TLS_CONTAINER_REF, "my-cert"),
        (
            DEFAULT_TLS_CONTAINER_REF,
            "https://barbican/v1/containers/a b",
        ),
        (SNI_CONTAINER_REFS, "https://barbican/v1/containers/x"),
        (HEALTH_MONITOR_URL_PATH, "healthz"),
        (HEALTH_MONITOR_URL_PATH, "/health z"),
        (HEALTH_MONITOR_HTTP_METHOD, "FETCH"),
        (HEALTH_MONITOR_EXPECTED_CODES, "2xx"),
        (HEALTH_MONITOR_EXPECTED_CODES, "200-"),
        (HEALTH_MONITOR_EXPECTED_CODES, "700"),
    ];
    for (key, value) in cases {
        let e = err(&annotated(&[(key, value)]), None);
        assert_eq!(
            e,
            TranslateError::Annotation {
                annotation: key.to_string(),
                message: match &e {
                    TranslateError::Annotation { message, .. } => message.clone(),
                    other => panic!("{key}={value:?}: {other}"),
                }
            },
            "{key}={value:?}"
        );
        assert_eq!(
            e.field_path(),
            format!("service.metadata.annotations[\"{key}\"]")
        );
    }
}

#[test]
fn a_health_monitor_timeout_longer_than_its_delay_is_an_error() {
    let e = err(
        &annotated(&[
            (annotation::HEALTH_MONITOR_DELAY, "3"),
            (annotation::HEALTH_MONITOR_TIMEOUT, "5"),
        ]),
        None,
    );
    assert!(
        matches!(e, TranslateError::Annotation { annotation, .. } if annotation == annotation::HEALTH_MONITOR_TIMEOUT)
    );
}

#[test]
fn the_proxy_protocol_needs_tcp_listeners() {
    let mut svc = web(json!({"ports": [{"port": 53, "protocol": "UDP"}]}));
    svc.metadata.annotations =
        Some([(annotation::PROXY_PROTOCOL.to_string(), "true".to_string())].into());
    assert!(
        matches!(err(&svc, None), TranslateError::Annotation { annotation, .. } if annotation == annotation::PROXY_PROTOCOL)
    );
    svc.metadata.annotations =
        Some([(annotation::PROXY_PROTOCOL.to_string(), "false".to_string())].into());
    assert_eq!(lb(&svc, None).listeners[0].pool.protocol, PoolProtocol::Udp);
}

#[test]
fn services_without_a_load_balancer_are_skipped_with_a_reason() {
    assert!(skip_reason(&web(json!({"clusterIP": "None"}))).contains("headless"));
    assert!(
        skip_reason(&web(
            json!({"type": "ExternalName", "externalName": "x.example.com"})
        ))
        .contains("ExternalName")
    );
    assert!(skip_reason(&web(json!({"ports": []}))).contains("no ports"));
    let svc = service(json!({"metadata": {"name": "bare"}}));
    assert!(skip_reason(&svc).contains("no ports"));
}

#[test]
fn a_foreign_load_balancer_class_is_skipped_and_ours_is_served() {
    let svc = web(json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/other"}));
    assert!(skip_reason(&svc).contains("another controller"));
    let mut s = settings();
    s.octavia_defaults.load_balancer_class = "example.com/other".into();
    assert!(matches!(
        translate(&s, &svc, None).unwrap(),
        Translation::LoadBalancer(_)
    ));
    // With a class configured, class-less LoadBalancer Services are another's.
    let plain = web(json!({"type": "LoadBalancer"}));
    assert!(matches!(
        translate(&s, &plain, None).unwrap(),
        Translation::Skip { .. }
    ));
}

#[test]
fn a_skip_still_carries_keep_floating_ip_and_the_owner_tags() {
    let mut svc = web(json!({"clusterIP": "None"}));
    svc.metadata.annotations =
        Some([(annotation::KEEP_FLOATING_IP.to_string(), "true".to_string())].into());
    match translate(&settings(), &svc, None).unwrap() {
        Translation::Skip {
            keep_floating_ip,
            owner_tags,
            ..
        } => {
            assert!(keep_floating_ip);
            assert_eq!(
                owner_tags,
                names::owner_tags("kubernetes", &svc_ref("shop", "web"))
            );
        }
        other => panic!("{other:?}"),
    }
}

fn svc_ref(ns: &str, name: &str) -> ServiceRef {
    ServiceRef {
        namespace: ns.into(),
        name: name.into(),
    }
}

#[test]
fn a_cluster_ip_outside_the_service_subnet_is_an_error_unless_neutron_picks() {
    let net: IpNet = "10.2.0.0/16".parse().unwrap();
    let svc = web(json!({"clusterIP": "10.3.0.5"}));
    let outside = desired(translate(&settings(), &svc, None).unwrap());
    let e = crate::translate::check_vip_in_subnet(&outside.vip, net).unwrap_err();
    assert_eq!(e.field_path(), "service.spec.clusterIP");
    assert!(e.to_string().contains("vip_from_cluster_ip"), "{e}");
    assert!(e.to_string().contains("service-subnet"), "{e}");
    let inside =
        desired(translate(&settings(), &web(json!({"clusterIP": "10.2.0.5"})), None).unwrap());
    assert!(crate::translate::check_vip_in_subnet(&inside.vip, net).is_ok());
    let mut s = settings();
    s.octavia_defaults.vip_from_cluster_ip = false;
    let d = desired(translate(&s, &svc, None).unwrap());
    assert_eq!(d.vip.address, None);
    assert!(crate::translate::check_vip_in_subnet(&d.vip, net).is_ok());
}

#[test]
fn invalid_fields_are_errors_naming_the_field() {
    let cases: Vec<(Service, &str)> = vec![
        (web(json!({"type": "Magic"})), "service.spec.type"),
        (
            web(json!({"clusterIP": "10.2.0.300"})),
            "service.spec.clusterIP",
        ),
        (
            web(json!({"clusterIPs": ["10.2.0.1", "nope"]})),
            "service.spec.clusterIPs[1]",
        ),
        (
            web(json!({"ports": [{"port": 0}]})),
            "service.spec.ports[0].port",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 70000}]})),
            "service.spec.ports[1].port",
        ),
        // Names and ports as Kubernetes validates them.
        (
            web(json!({"ports": [{"name": "a", "port": 80}, {"port": 81}]})),
            "service.spec.ports[1].name",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]})),
            "service.spec.ports[1].name",
        ),
        (
            web(json!({"ports": [{"name": "Web_Port", "port": 80}]})),
            "service.spec.ports[0].name",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80, "nodePort": 99999}]})),
            "service.spec.ports[0].nodePort",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80, "nodePort": -1}]})),
            "service.spec.ports[0].nodePort",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80, "targetPort": "much-too-long-name"}]})),
            "service.spec.ports[0].targetPort",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80, "targetPort": "a--b"}]})),
            "service.spec.ports[0].targetPort",
        ),
        (
            web(
                json!({"ports": (1..=1001).map(|i| json!({"name": format!("p{i}"), "port": i})).collect::<Vec<_>>()}),
            ),
            "service.spec.ports",
        ),
        (
            service(json!({"metadata": {"name": "1web"}})),
            "service.metadata.name",
        ),
        (
            service(json!({"metadata": {"name": "web.shop"}})),
            "service.metadata.name",
        ),
        (
            service(json!({"metadata": {"name": "a".repeat(64)}})),
            "service.metadata.name",
        ),
        (
            service(json!({"metadata": {"name": "web", "namespace": "../.."}})),
            "service.metadata.namespace",
        ),
        (
            web(json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]})),
            "service.spec.loadBalancerSourceRanges[0]",
        ),
        (
            web(json!({"ports": [{"port": 80, "protocol": "HTTP"}]})),
            "service.spec.ports[0].protocol",
        ),
        (
            web(json!({"ports": [{"port": 80, "targetPort": 0}]})),
            "service.spec.ports[0].targetPort",
        ),
        (
            web(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]})),
            "service.spec.ports[1].port",
        ),
        (
            web(json!({"sessionAffinity": "Cookie"})),
            "service.spec.sessionAffinity",
        ),
        (
            web(json!({"type": "LoadBalancer", "loadBalancerIP": "fd00::1"})),
            "service.spec.loadBalancerIP",
        ),
        (
            web(json!({"clusterIP": "", "ipFamilies": ["IPX"]})),
            "service.spec.ipFamilies[0]",
        ),
        (
            service(json!({"metadata": {}, "spec": {"ports": [{"port": 80}]}})),
            "service.metadata.name",
        ),
        (
            service(json!({"metadata": {"name": "Web_1"}})),
            "service.metadata.name",
        ),
        (
            service(json!({"metadata": {"name": "web", "namespace": "a.b"}})),
            "service.metadata.namespace",
        ),
    ];
    for (svc, field) in cases {
        let e = err(&svc, None);
        assert_eq!(e.field_path(), field, "{e}");
    }
}

#[test]
fn bad_endpoint_addresses_are_errors_naming_the_field() {
    let ep = endpoints(json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.5"}, {"ip": "pod-a"}], "ports": [{"name": "http", "port": 8080}]}]}));
    let e = err(
        &web(json!({})),
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert_eq!(e.field_path(), "endpoints.subsets[0].addresses[1].ip");
    let s = [slice(
        json!({"metadata": {"name": "w"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["300.1.1.1"]}]}),
    )];
    let e = err(
        &web(json!({})),
        Some(Backends {
            endpoints: None,
            endpoint_slices: &s,
        }),
    );
    assert_eq!(
        e.field_path(),
        "endpointSlices[0].endpoints[0].addresses[0]"
    );
    let s = [slice(
        json!({"metadata": {"name": "w"}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 0}], "endpoints": [{"addresses": ["10.1.0.1"]}]}),
    )];
    let e = err(
        &web(json!({})),
        Some(Backends {
            endpoints: None,
            endpoint_slices: &s,
        }),
    );
    assert_eq!(e.field_path(), "endpointSlices[0].ports[0].port");
}

#[test]
fn tags_name_the_tool_the_cluster_and_the_service() {
    let mut svc = web(json!({}));
    svc.metadata.uid = Some("u-1".into());
    let d = lb(&svc, None);
    assert_eq!(
        d.tags,
        [
            "svc-lbaas",
            "svc-lbaas-cluster:kubernetes",
            "svc-lbaas-service:shop_web",
            "svc-lbaas-uid:u-1"
        ]
    );
    assert_eq!(d.owner_tags, d.tags[..3]);
}

#[test]
fn a_slice_serves_only_the_service_ports_it_lists() {
    // Two ports, two slices, each slice listing one of them.
    let svc = web(json!({"ports": [
        {"name": "carotte", "port": 8082, "targetPort": 8082},
        {"name": "tchouk", "port": 80, "targetPort": 80}]}));
    let s = [
        slice(json!({"metadata": {"name": "web-a"}, "addressType": "IPv4",
            "ports": [{"name": "tchouk", "port": 8089, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.10.0.1"]}]})),
        slice(json!({"metadata": {"name": "web-b"}, "addressType": "IPv4",
            "ports": [{"name": "carotte", "port": 8090, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.10.0.2"]}]})),
    ];
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: None,
            endpoint_slices: &s,
        }),
    );
    assert_eq!(d.listeners[0].name, "shop/web:TCP:80");
    assert_eq!(members(&d, 0), [member("10.10.0.1", 8089)]);
    assert_eq!(d.listeners[1].name, "shop/web:TCP:8082");
    assert_eq!(members(&d, 1), [member("10.10.0.2", 8090)]);
}

#[test]
fn an_endpoints_subset_serves_only_the_ports_it_lists_and_unnamed_matches_unnamed() {
    let svc = web(json!({"ports": [{"port": 80, "targetPort": 8080}]}));
    let ep = endpoints(
        json!({"metadata": {"name": "web", "namespace": "shop"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 8080}]},
        {"addresses": [{"ip": "10.1.0.2"}], "ports": [{"name": "other", "port": 9090}]},
        {"addresses": [{"ip": "10.1.0.3"}], "ports": [{"port": 7070, "protocol": "UDP"}]}]}),
    );
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert_eq!(members(&d, 0), [member("10.1.0.1", 8080)]);
    // A subset listing no port at all serves none.
    let ep = endpoints(
        json!({"metadata": {"name": "web", "namespace": "shop"}, "subsets": [
        {"addresses": [{"ip": "10.1.0.1"}]}]}),
    );
    let d = lb(
        &svc,
        Some(Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        }),
    );
    assert!(members(&d, 0).is_empty());
    assert!(
        d.notes.iter().any(|n| n.contains("lists this port")),
        "{:?}",
        d.notes
    );
}

#[test]
fn a_thousand_ports_and_the_endpoint_limits_are_served_and_one_more_is_refused() {
    let ports: Vec<Value> = (1..=1000)
        .map(|i| json!({"name": format!("p{i}"), "port": i}))
        .collect();
    assert_eq!(
        lb(&web(json!({"ports": ports})), None).listeners.len(),
        1000
    );
    let addresses = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"ip": format!("10.1.{}.{}", i / 250, i % 250 + 1)}))
            .collect()
    };
    let ep = |n: usize| {
        endpoints(json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": addresses(n), "ports": [{"name": "http", "port": 8080}]}]}))
    };
    let at_limit = ep(MAX_ENDPOINTS);
    let backends = |e| {
        Some(Backends {
            endpoints: Some(e),
            endpoint_slices: &[],
        })
    };
    assert_eq!(
        members(&lb(&web(json!({})), backends(&at_limit)), 0).len(),
        MAX_ENDPOINTS
    );
    let over = ep(MAX_ENDPOINTS + 1);
    assert_eq!(
        err(&web(json!({})), backends(&over)).field_path(),
        "endpoints"
    );
    // Ports x endpoints past the member limit.
    let ports: Vec<Value> = (1..=11)
        .map(|i| json!({"name": format!("p{i}"), "port": i}))
        .collect();
    assert_eq!(
        err(&web(json!({"ports": ports})), backends(&at_limit)).field_path(),
        "endpoints"
    );
}

#[test]
fn floating_subnet_patterns_and_tags_choose_among_the_floating_networks_subnets() {
    use annotation::*;
    let mut s = settings();
    s.neutron_defaults.external_svc_subnet = None;
    s.neutron_defaults.external_svc_net = Some("public-net".into());
    let pool =
        |svc: &Service, s: &Settings| match desired(translate(s, svc, None).expect("translates"))
            .floating_ip
        {
            FloatingIpIntent::Pool {
                subnet_id,
                subnet_match,
                network_id,
            } => (subnet_id, subnet_match, network_id),
            other => panic!("a pool floating IP, not {other:?}"),
        };
    let m = |name: Option<&str>, tags: Option<&str>| {
        Some(FloatingSubnetMatch {
            name: name.map(str::to_string),
            tags: tags.map(str::to_string),
        })
    };
    // The Service's own pattern and tags, on the floating network.
    let (id, got, net) = pool(
        &annotated(&[(FLOATING_SUBNET, "pub-*"), (FLOATING_SUBNET_TAGS, "&a,b")]),
        &s,
    );
    assert_eq!(
        (id, got, net.as_deref()),
        (None, m(Some("pub-*"), Some("&a,b")), Some("public-net"))
    );
    // [LoadBalancer]'s when the Service names no floating subnet; an id annotated wins.
    s.load_balancer.floating_subnet = Some("~ext-[0-9]+".into());
    assert_eq!(pool(&annotated(&[]), &s).1, m(Some("~ext-[0-9]+"), None));
    let id = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a84";
    assert_eq!(
        pool(&annotated(&[(FLOATING_SUBNET_ID, id)]), &s),
        (Some(id.to_string()), None, None)
    );
    // Both at once, a bad pattern, and no floating network: 400s naming the annotation.
    for (pairs, named, says) in [
        (
            vec![(FLOATING_SUBNET_ID, id), (FLOATING_SUBNET, "pub-*")],
            FLOATING_SUBNET,
            "floating-subnet-id is given too",
        ),
        (
            vec![(FLOATING_SUBNET, "~pub-(")],
            FLOATING_SUBNET,
            "not a valid pattern",
        ),
        (
            vec![(FLOATING_SUBNET_TAGS, "a,,b")],
            FLOATING_SUBNET_TAGS,
            "comma-separated",
        ),
    ] {
        let e = translate(&s, &annotated(&pairs), None).expect_err("refused");
        assert!(
            matches!(&e, TranslateError::Annotation { annotation, .. } if annotation == named),
            "{e:?}"
        );
        assert!(e.to_string().contains(says), "{e}");
    }
    s.neutron_defaults.external_svc_net = None;
    let e = translate(&s, &annotated(&[(FLOATING_SUBNET, "pub-*")]), None).expect_err("no network");
    assert!(e.to_string().contains("floating-network-id"), "{e}");
}

#[test]
fn a_floating_subnet_match_is_occms_glob_regexp_negation_and_tag_filter() {
    let m = |name: &str| FloatingSubnetMatch {
        name: Some(name.into()),
        tags: None,
    };
    assert!(m("pub-*").name_matches("pub-a") && !m("pub-*").name_matches("xpub-a"));
    assert!(m("pub-?").name_matches("pub-1") && !m("pub-?").name_matches("pub-12"));
    assert!(
        m("a.b").name_matches("a.b") && !m("a.b").name_matches("axb"),
        "a glob's dot is a dot"
    );
    assert!(m("~pub-[0-9]+").name_matches("pub-42") && !m("~pub-[0-9]+").name_matches("pub-42x"));
    assert!(m("!pub-*").name_matches("private") && !m("!pub-*").name_matches("pub-a"));
    assert!(m("!~p.*").name_matches("x") && !m("!~p.*").name_matches("pq"));
    let tags = |t: &str| {
        FloatingSubnetMatch {
            name: None,
            tags: Some(t.into()),
        }
        .tag_filter()
    };
    assert_eq!(tags("a, b"), Some(("tags-any", "a,b".to_string())));
    assert_eq!(tags("&a,b"), Some(("tags", "a,b".to_string())));
    assert_eq!(tags("!a,b"), Some(("not-tags", "a,b".to_string())));
    assert_eq!(tags("!&a,b"), Some(("not-tags-any", "a,b".to_string())));
    assert!(m("").check().is_err() && m("~(").check().is_err() && m("pub-(").check().is_ok());
}

#[test]
fn port_id_makes_a_users_port_the_vip_whatever_else_names_one() {
    use annotation::*;
    let port = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a85";
    let d = desired(
        translate(
            &settings(),
            &annotated(&[
                (PORT_ID, port),
                (SUBNET_ID, "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a86"),
            ]),
            None,
        )
        .expect("translates"),
    );
    assert_eq!(d.vip.port_id.as_deref(), Some(port));
    assert_eq!((d.vip.address, d.vip.subnet_id.as_deref()), (None, None));
    assert!(d.tags.iter().any(|t| t == crate::names::USER_PORT_TAG));
    assert!(
        !lb(&web(json!({"type": "LoadBalancer"})), None)
            .tags
            .iter()
            .any(|t| t == crate::names::USER_PORT_TAG)
    );
    let e = translate(&settings(), &annotated(&[(PORT_ID, "../ports")]), None).expect_err("an id");
    assert!(
        matches!(&e, TranslateError::Annotation { annotation, .. } if annotation == PORT_ID),
        "{e:?}"
    );
    let refs = references(&annotated(&[(PORT_ID, port)])).expect("references");
    assert!(
        refs.iter()
            .any(|r| r.kind == ReferenceKind::Port && r.id == port)
    );
}

#[test]
fn source_ranges_become_a_vip_security_group_when_the_setting_says_so() {
    let mut s = settings();
    let ranged = web(
        json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["192.0.2.0/24", "2001:db8::/32"]}),
    );
    let d = desired(translate(&s, &ranged, None).expect("translates"));
    assert!(d.vip_security_group.is_none());
    assert_eq!(d.listeners[0].allowed_cidrs.len(), 2);
    s.octavia_defaults.source_ranges = crate::config::SourceRanges::SecurityGroup;
    let d = desired(translate(&s, &ranged, None).expect("translates"));
    let group = d.vip_security_group.expect("a VIP security group");
    assert_eq!(group.name, "shop/web");
    let kinds: Vec<&str> = group.rules.iter().map(|r| r.ethertype()).collect();
    assert_eq!(kinds, ["IPv4", "IPv6"]);
    assert!(d.listeners[0].allowed_cidrs.is_empty());
}

const CERT: &str =
    "https://barbican.example:9311/v1/containers/6e1b2f0a-1f0e-4f5e-9d4c-3b2a1f0e9d8c";

fn ports_of(d: &DesiredLoadBalancer) -> Vec<(u16, ListenerProtocol, PoolProtocol)> {
    d.listeners
        .iter()
        .map(|l| (l.protocol_port, l.protocol, l.pool.protocol))
        .collect()
}

#[test]
fn app_protocol_picks_http_listeners_and_pools_and_https_passthrough() {
    let svc = web(json!({"ports": [
        {"name": "web", "port": 80, "targetPort": 8080, "appProtocol": "http"},
        {"name": "grpc", "port": 81, "targetPort": 8081, "appProtocol": "kubernetes.io/h2c"},
        {"name": "tls", "port": 443, "targetPort": 8443, "appProtocol": "https"},
        {"name": "ws", "port": 82, "targetPort": 8082, "appProtocol": "kubernetes.io/ws"},
        {"name": "dns", "port": 53, "protocol": "UDP", "appProtocol": "http"}
    ]}));
    let d = lb(&svc, None);
    let mut ports = ports_of(&d);
    ports.sort_by_key(|p| p.0);
    use ListenerProtocol as L;
    use PoolProtocol as P;
    assert_eq!(
        ports,
        [
            (53, L::Udp, P::Udp),
            (80, L::Http, P::Http),
            (81, L::Http, P::Http),
            (82, L::Tcp, P::Tcp),
            (443, L::Https, P::Https)
        ]
    );
    assert!(d.listeners.iter().any(|l| l.name == "shop/web:HTTP:80"));
    assert!(
        d.listeners
            .iter()
            .all(|l| l.tls.is_none() && l.alpn_protocols.is_empty())
    );
}

#[test]
fn a_tls_container_terminates_https_and_tcp_ports_as_occm_does() {
    let svc = annotated(&[
        (annotation::DEFAULT_TLS_CONTAINER_REF, CERT),
        (annotation::SNI_CONTAINER_REFS, &format!("{CERT}1, {CERT}2")),
    ]);
    let mut svc = svc;
    svc.spec.as_mut().unwrap().ports = Some(
        serde_json::from_value(json!([
            {"name": "plain", "port": 80, "targetPort": 8080, "appProtocol": "http"},
            {"name": "tls", "port": 443, "targetPort": 8080, "appProtocol": "https"},
            {"name": "other", "port": 8443, "targetPort": 8080}
        ]))
        .unwrap(),
    );
    let d = lb(&svc, None);
    let mut ports = ports_of(&d);
    ports.sort_by_key(|p| p.0);
    use ListenerProtocol as L;
    use PoolProtocol as P;
    assert_eq!(
        ports,
        [
            (80, L::Http, P::Http),
            (443, L::TerminatedHttps, P::Http),
            (8443, L::TerminatedHttps, P::Http)
        ]
    );
    let tls = d.listeners.iter().find(|l| l.protocol_port == 443).unwrap();
    assert_eq!(
        tls.tls,
        Some(ListenerTls {
            default_tls_container_ref: CERT.into(),
            sni_container_refs: vec![format!("{CERT}1"), format!("{CERT}2")],
        })
    );
    assert_eq!(tls.alpn_protocols, ["h2", "http/1.1", "http/1.0"]);
    assert_eq!(tls.name, "shop/web:TERMINATED_HTTPS:443");
    let plain = d.listeners.iter().find(|l| l.protocol_port == 80).unwrap();
    assert_eq!(plain.tls, None);
}

#[test]
fn x_forwarded_annotations_make_tcp_ports_http_listeners_that_insert_headers() {
    let svc = annotated(&[
        (annotation::X_FORWARDED_FOR, "true"),
        (annotation::X_FORWARDED_PROTO, "true"),
        (annotation::X_FORWARDED_PORT, "false"),
    ]);
    let d = lb(&svc, None);
    assert_eq!(d.listeners[0].protocol, ListenerProtocol::Http);
    assert_eq!(
        d.listeners[0].insert_headers,
        ["X-Forwarded-For", "X-Forwarded-Proto"]
    );
    // TLS passthrough cannot insert headers: a 400 naming the annotation.
    let mut passthrough = annotated(&[(annotation::X_FORWARDED_FOR, "true")]);
    passthrough.spec.as_mut().unwrap().ports = Some(
        serde_json::from_value(json!([{"name": "tls", "port": 443, "appProtocol": "https"}]))
            .unwrap(),
    );
    assert!(matches!(
        err(&passthrough, None),
        TranslateError::Annotation { annotation, .. } if annotation == annotation::X_FORWARDED_FOR
    ));
    // A UDP port gets none, and the plan says why.
    let mut dns = annotated(&[(annotation::X_FORWARDED_FOR, "true")]);
    dns.spec.as_mut().unwrap().ports = Some(
        serde_json::from_value(json!([{"name": "dns", "port": 53, "protocol": "UDP"}])).unwrap(),
    );
    let d = lb(&dns, None);
    assert!(d.listeners[0].insert_headers.is_empty());
    assert!(d.notes.iter().any(|n| n.contains("no HTTP listener")));
}

#[test]
fn http_pools_get_http_monitors_with_the_annotations_request() {
    let svc = annotated(&[
        (annotation::ENABLE_HEALTH_MONITOR, "true"),
        (annotation::X_FORWARDED_FOR, "true"),
        (annotation::HEALTH_MONITOR_URL_PATH, "/healthz?full=1"),
        (annotation::HEALTH_MONITOR_HTTP_METHOD, "HEAD"),
        (annotation::HEALTH_MONITOR_EXPECTED_CODES, "200-204"),
    ]);
    let d = lb(&svc, None);
    let hm = d.listeners[0].pool.health_monitor.clone().unwrap();
    assert_eq!(hm.kind, HealthMonitorType::Http);
    assert_eq!(
        hm.http,
        Some(HttpCheck {
            http_method: "HEAD".into(),
            url_path: "/healthz?full=1".into(),
            expected_codes: "200-204".into(),
        })
    );
    // Defaults: GET / 200; a TCP pool's monitor has no HTTP request.
    let d = lb(
        &annotated(&[
            (annotation::ENABLE_HEALTH_MONITOR, "true"),
            (annotation::X_FORWARDED_FOR, "1"),
        ]),
        None,
    );
    let http = d.listeners[0]
        .pool
        .health_monitor
        .clone()
        .unwrap()
        .http
        .unwrap();
    assert_eq!(
        (
            http.http_method.as_str(),
            http.url_path.as_str(),
            http.expected_codes.as_str()
        ),
        ("GET", "/", "200")
    );
    let d = lb(
        &annotated(&[(annotation::ENABLE_HEALTH_MONITOR, "true")]),
        None,
    );
    let tcp = d.listeners[0].pool.health_monitor.clone().unwrap();
    assert_eq!((tcp.kind, tcp.http), (HealthMonitorType::Tcp, None));
}

#[test]
fn terminated_https_without_a_certificate_and_http_on_ovn_are_refused() {
    let svc = annotated(&[(annotation::LISTENER_PROTOCOL, "TERMINATED_HTTPS")]);
    assert!(matches!(
        err(&svc, None),
        TranslateError::Annotation { annotation, .. } if annotation == annotation::LISTENER_PROTOCOL
    ));
    let mut settings = settings();
    settings.octavia_defaults.provider = Some("ovn".into());
    settings.octavia_defaults.lb_algorithm = LbAlgorithm::SourceIpPort;
    let http = annotated(&[(annotation::X_FORWARDED_FOR, "true")]);
    let e = translate(&settings, &http, None).expect_err("ovn has no HTTP listeners");
    assert!(e.to_string().contains("HTTP listeners"), "{e}");
}

#[test]
fn client_ip_affinity_timeout_becomes_the_udp_pools_persistence_timeout() {
    let svc = web(json!({"sessionAffinity": "ClientIP",
    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
    "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}
    ]}));
    let d = lb(&svc, None);
    let by_protocol = |p: ListenerProtocol| {
        d.listeners
            .iter()
            .find(|l| l.protocol == p)
            .map(|l| (l.pool.session_persistence, l.pool.persistence_timeout))
            .unwrap()
    };
    assert_eq!(
        by_protocol(ListenerProtocol::Udp),
        (Some(SessionPersistence::SourceIp), Some(600))
    );
    // TCP pools have no timeout in Octavia (HAProxy keeps a client 30 minutes).
    assert_eq!(
        by_protocol(ListenerProtocol::Tcp),
        (Some(SessionPersistence::SourceIp), None)
    );
    let bad = web(json!({"sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}));
    assert!(
        err(&bad, None)
            .to_string()
            .contains("sessionAffinityConfig.clientIP.timeoutSeconds")
    );
}

fn tls_secret_of(name: &str, namespace: &str) -> k8s_openapi::api::core::v1::Secret {
    let read = |f: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/tls/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("test TLS material")
    };
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": read("cert.pem"), "tls.key": read("key.pem")}}))
    .unwrap()
}

fn with_secrets(
    svc: &Service,
    secrets: Option<&[k8s_openapi::api::core::v1::Secret]>,
) -> Result<Translation, TranslateError> {
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000);
    translate_with(&settings(), svc, None, TlsInput { secrets, now })
}

fn https_web(annotations: &[(&str, &str)]) -> Service {
    let mut svc = annotated(annotations);
    svc.spec.as_mut().unwrap().ports = Some(
        serde_json::from_value(json!([
            {"name": "https", "port": 443, "targetPort": 8080, "appProtocol": "https"}
        ]))
        .unwrap(),
    );
    svc
}

#[test]
fn the_only_tls_secret_terminates_https_ports_or_the_one_the_annotation_names() {
    let secrets = [tls_secret_of("web-tls", "shop")];
    let d = desired(with_secrets(&https_web(&[]), Some(&secrets)).unwrap());
    assert_eq!(d.listeners[0].protocol, ListenerProtocol::TerminatedHttps);
    let tls = d.listeners[0].tls.clone().unwrap();
    assert_eq!(
        tls.default_tls_container_ref,
        format!("{}web-tls", names::PENDING_CERTIFICATE)
    );
    let material = d.tls_secret.expect("the Secret's material");
    assert_eq!(material.secret, "web-tls");
    // Two Secrets: the annotation picks; without it, none is used.
    let two = [tls_secret_of("a", "shop"), tls_secret_of("b", "shop")];
    let d = desired(
        with_secrets(
            &https_web(&[(annotation::DEFAULT_TLS_SECRET, "b")]),
            Some(&two),
        )
        .unwrap(),
    );
    assert_eq!(d.tls_secret.unwrap().secret, "b");
    let e = with_secrets(&https_web(&[]), Some(&two)).unwrap_err();
    assert_eq!(e.field_path(), "tlsSecrets");
    // Explicitly none: TLS passthrough.
    let d = desired(with_secrets(&https_web(&[]), Some(&[])).unwrap());
    assert!(d.tls_secret.is_none() && d.tls_secret_kept.is_none());
    assert_eq!(d.listeners[0].protocol, ListenerProtocol::Https);
    // Not sent at all: the certificate stored earlier, if any, is kept.
    let d = desired(with_secrets(&https_web(&[]), None).unwrap());
    assert_eq!(d.tls_secret_kept.as_deref(), Some(""));
    assert_eq!(d.listeners[0].protocol, ListenerProtocol::TerminatedHttps);
    // No https port, no annotation: the Secret is not used.
    let d = desired(with_secrets(&annotated(&[]), Some(&secrets)).unwrap());
    assert!(d.tls_secret.is_none());
    // Not sent (an event): the annotation keeps the stored certificate.
    let d = desired(
        with_secrets(
            &https_web(&[(annotation::DEFAULT_TLS_SECRET, "web-tls")]),
            None,
        )
        .unwrap(),
    );
    assert_eq!(d.tls_secret_kept.as_deref(), Some("web-tls"));
    assert_eq!(d.listeners[0].protocol, ListenerProtocol::TerminatedHttps);
}

#[test]
fn a_tls_secret_that_cannot_serve_is_a_400_naming_it() {
    let secrets = [tls_secret_of("web-tls", "shop")];
    // Named but not sent.
    let e = with_secrets(
        &https_web(&[(annotation::DEFAULT_TLS_SECRET, "other")]),
        Some(&secrets),
    )
    .unwrap_err();
    assert!(
        matches!(&e, TranslateError::Annotation { annotation, .. } if annotation == annotation::DEFAULT_TLS_SECRET),
        "{e}"
    );
    // Of another namespace.
    let elsewhere = [tls_secret_of("web-tls", "other")];
    let e = with_secrets(&https_web(&[]), Some(&elsewhere)).unwrap_err();
    assert_eq!(e.field_path(), "tlsSecrets[0].metadata.namespace");
    // Both a container and a Secret.
    let e = with_secrets(
        &https_web(&[(annotation::DEFAULT_TLS_CONTAINER_REF, CERT)]),
        Some(&secrets),
    )
    .unwrap_err();
    assert_eq!(e.field_path(), "tlsSecrets[0]");
    // Expired at the given time (the fixture is valid for 100 years from 2026).
    let late = TlsInput {
        secrets: Some(&secrets),
        now: std::time::UNIX_EPOCH + std::time::Duration::from_secs(6_000_000_000),
    };
    let e = translate_with(&settings(), &https_web(&[]), None, late).unwrap_err();
    assert_eq!(e.field_path(), "tlsSecrets[0]");
    assert!(
        e.to_string()
            .contains("Secret web-tls: the certificate expired"),
        "{e}"
    );
    assert!(!e.to_string().contains("BEGIN"));
    // A name that is no Secret's.
    let e = err(
        &https_web(&[(annotation::DEFAULT_TLS_SECRET, "../x")]),
        None,
    );
    assert!(matches!(e, TranslateError::Annotation { .. }));
}

#[test]
fn a_prometheus_listener_is_open_only_to_the_configured_cidrs_of_the_vips_family() {
    use annotation::PROMETHEUS_LISTENER_PORT as KEY;
    let mut s = settings();
    s.octavia_defaults.prometheus_allowed_cidrs = vec![
        "10.9.0.7/24".parse().unwrap(),
        "fd00:9::/64".parse().unwrap(),
    ];
    let d = desired(translate(&s, &annotated(&[(KEY, " 9100 ")]), None).unwrap());
    let p = d.prometheus_listener.expect("a PROMETHEUS listener");
    assert_eq!(p.protocol_port, 9100);
    assert_eq!(p.name, "shop/web:PROMETHEUS:9100");
    // The VIP's family only, and as Octavia keeps a network.
    assert_eq!(p.allowed_cidrs, ["10.9.0.0/24".parse().unwrap()]);
    // An IPv6 Service gets the IPv6 ones.
    let mut v6 =
        web(json!({"type": "LoadBalancer", "clusterIP": "fd00:10:2::42", "ipFamilies": ["IPv6"]}));
    v6.metadata.annotations = Some([(KEY.to_string(), "9100".to_string())].into());
    let d = desired(translate(&s, &v6, None).unwrap());
    assert_eq!(
        d.prometheus_listener.unwrap().allowed_cidrs,
        ["fd00:9::/64".parse().unwrap()]
    );
    // Without the annotation, none.
    assert!(
        desired(translate(&s, &annotated(&[]), None).unwrap())
            .prometheus_listener
            .is_none()
    );
}

#[test]
fn a_prometheus_listener_is_refused_where_it_cannot_work_or_would_be_open_to_all() {
    use annotation::PROMETHEUS_LISTENER_PORT as KEY;
    let open = |change: fn(&mut Settings)| {
        let mut s = settings();
        s.octavia_defaults.prometheus_allowed_cidrs = vec!["10.9.0.0/24".parse().unwrap()];
        change(&mut s);
        s
    };
    let refused = |s: &Settings, svc: &Service| -> String {
        match translate(s, svc, None) {
            Err(e) => {
                assert_eq!(e.field_path(), annotation_field(KEY), "{e}");
                e.to_string()
            }
            Ok(t) => panic!("accepted: {t:?}"),
        }
    };
    let plain = open(|_| {});
    for (value, says) in [
        ("metrics", "is not a port"),
        ("0", "is not a port"),
        ("65536", "is not a port"),
        ("80", "the Service's port (spec.ports[0])"),
    ] {
        let e = refused(&plain, &annotated(&[(KEY, value)]));
        assert!(e.contains(says), "{value}: {e}");
    }
    let e = refused(
        &open(|s| s.octavia_defaults.prometheus_allowed_cidrs.clear()),
        &annotated(&[(KEY, "9100")]),
    );
    assert!(
        e.contains("[octavia_defaults] prometheus_allowed_cidrs")
            && e.contains("SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS"),
        "{e}"
    );
    let e = refused(
        &open(|s| s.octavia_defaults.provider = Some("ovn".into())),
        &annotated(&[(KEY, "9100")]),
    );
    assert!(e.contains("ovn"), "{e}");
    let e = refused(
        &open(|s| s.octavia_defaults.api = crate::config::Api::NeutronLbaas),
        &annotated(&[(KEY, "9100")]),
    );
    assert!(e.contains("Neutron LBaaS v2"), "{e}");
    // With load-balancer-id the plan decides: its owner may, a sharer may not.
    let by_id = annotated(&[
        (KEY, "9100"),
        (
            annotation::LOAD_BALANCER_ID,
            "1b000000-0000-4000-8000-000000000006",
        ),
    ]);
    assert!(
        desired(translate(&plain, &by_id, None).unwrap())
            .prometheus_listener
            .is_some()
    );
    for value in ["+9100", "09100", "9100.0", ""] {
        let e = refused(&plain, &annotated(&[(KEY, value)]));
        assert!(e.contains("is not a port"), "{value:?}: {e}");
    }
    let e = refused(
        &open(|s| {
            s.octavia_defaults.prometheus_allowed_cidrs = vec!["fd00:9::/64".parse().unwrap()]
        }),
        &annotated(&[(KEY, "9100")]),
    );
    assert!(e.contains("no IPv4 CIDR"), "{e}");
}

#[test]
fn with_source_ranges_as_a_security_group_the_metrics_port_lets_its_scrapers_in() {
    let mut s = settings();
    s.octavia_defaults.source_ranges = crate::config::SourceRanges::SecurityGroup;
    s.octavia_defaults.prometheus_allowed_cidrs = vec!["10.9.0.0/24".parse().unwrap()];
    let mut svc = annotated(&[(annotation::PROMETHEUS_LISTENER_PORT, "9100")]);
    svc.spec.as_mut().unwrap().load_balancer_source_ranges = Some(vec!["192.0.2.0/24".into()]);
    let d = desired(translate(&s, &svc, None).unwrap());
    let group = d.vip_security_group.expect("a VIP security group");
    let rules: Vec<(u16, String)> = group
        .rules
        .iter()
        .map(|r| (r.port, r.remote.to_string()))
        .collect();
    assert!(rules.contains(&(80, "192.0.2.0/24".into())), "{rules:?}");
    assert!(rules.contains(&(9100, "10.9.0.0/24".into())), "{rules:?}");
    assert!(!rules.contains(&(9100, "192.0.2.0/24".into())), "{rules:?}");
}
