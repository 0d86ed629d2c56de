//! Planning rules by example, then properties over random Services and states.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use proptest::prelude::*;
use serde_json::{Value, json};

use std::collections::{BTreeSet, HashSet};

use super::tree::monitor_matches;
use super::*;
use crate::config::Settings;
use crate::model::{
    DesiredListener, Lookup, Member, ObservedListener, ObservedMember, Translation,
};
use crate::testing::memory::MemoryCloud;
use crate::translate::{Backends, translate};

fn settings() -> Settings {
    let mut s = Settings::default();
    s.neutron_defaults.service_subnet = Some("service-subnet".into());
    s.neutron_defaults.external_svc_subnet = Some("public-subnet".into());
    s
}

/// Translates a Service spec (`web` in `shop`) with Endpoints of `members`.
fn translation(spec: Value, annotations: Value, members: Option<&[&str]>) -> Translation {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": spec,
    }))
    .unwrap();
    let ep: Option<Endpoints> = members.map(|m| {
        let addresses: Vec<Value> = m.iter().map(|ip| json!({"ip": ip})).collect();
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}, {"name": "alt", "port": 9090}, {"name": "dns", "port": 53, "protocol": "UDP"}]}]}))
        .unwrap()
    });
    let backends = ep.as_ref().map(|e| Backends {
        endpoints: Some(e),
        endpoint_slices: &[],
    });
    translate(&settings(), &svc, backends).unwrap()
}

fn spec(kind: &str) -> Value {
    json!({"type": kind, "clusterIP": "10.2.0.42",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]})
}

fn owner(t: &Translation) -> Vec<String> {
    match t {
        Translation::LoadBalancer(d) => d.owner_tags.clone(),
        Translation::Skip { owner_tags, .. } => owner_tags.clone(),
    }
}

fn user_address(t: &Translation) -> Option<Ipv4Addr> {
    match t {
        Translation::LoadBalancer(d) => match d.floating_ip {
            FloatingIpIntent::User { address } => Some(address),
            _ => None,
        },
        Translation::Skip { .. } => None,
    }
}

fn observe(cloud: &MemoryCloud, t: &Translation) -> Observed {
    cloud.observe(&owner(t), "shop/web", user_address(t))
}

/// Plans `t` against the cloud, applies the plan, returns the operations.
fn converge(cloud: &mut MemoryCloud, t: &Translation, caps: Capabilities) -> Vec<Operation> {
    let ops = plan(t, &observe(cloud, t), caps).expect("plans");
    cloud.apply(&ops, &owner(t));
    ops
}

pub(super) fn kinds(ops: &[Operation]) -> Vec<String> {
    ops.iter()
        .map(|o| {
            let s = o.summary();
            format!("{} {} {}", s.op, s.resource, s.name)
        })
        .collect()
}

#[test]
fn a_new_service_is_one_fully_populated_create_and_one_floating_ip() {
    let t = translation(
        spec("LoadBalancer"),
        json!({}),
        Some(&["10.1.0.5", "10.1.0.6"]),
    );
    let ops = plan(&t, &Observed::default(), Capabilities::OCTAVIA).unwrap();
    assert_eq!(
        kinds(&ops),
        [
            "create loadbalancer shop/web",
            "create floatingip svc-lbaas: Service shop/web"
        ]
    );
    assert!(matches!(
        &ops[0],
        Operation::CreateLoadBalancer {
            populated: true,
            ..
        }
    ));
}

#[test]
fn a_cluster_ip_service_gets_no_floating_ip() {
    let t = translation(spec("ClusterIP"), json!({}), None);
    let ops = plan(&t, &Observed::default(), Capabilities::OCTAVIA).unwrap();
    assert_eq!(kinds(&ops), ["create loadbalancer shop/web"]);
}

#[test]
fn the_legacy_api_gets_the_ordered_sequence() {
    let t = translation(
        spec("ClusterIP"),
        json!({"loadbalancer.openstack.org/enable-health-monitor": "true"}),
        Some(&["10.1.0.5", "10.1.0.6"]),
    );
    let ops = plan(&t, &Observed::default(), Capabilities::NEUTRON_LBAAS).unwrap();
    assert_eq!(
        kinds(&ops),
        [
            "create loadbalancer shop/web",
            "create listener shop/web:TCP:80",
            "create pool shop/web:TCP:80",
            "create member 10.1.0.5:8080",
            "create member 10.1.0.6:8080",
            "create healthmonitor shop/web:TCP:80",
        ]
    );
    // And it converges in memory too.
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::NEUTRON_LBAAS);
    assert!(converge(&mut cloud, &t, Capabilities::NEUTRON_LBAAS).is_empty());
}

#[test]
fn an_unchanged_service_plans_nothing() {
    let t = translation(spec("LoadBalancer"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    assert!(
        plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_endpoint_change_is_one_batch_replacement_per_changed_pool() {
    let mut two_ports = spec("ClusterIP");
    two_ports["ports"] = json!([{"name": "http", "port": 80, "targetPort": 8080},
        {"name": "dns", "port": 53, "protocol": "UDP"}]);
    let before = translation(
        two_ports.clone(),
        json!({}),
        Some(&["10.1.0.5", "10.1.0.6", "10.1.0.7"]),
    );
    let after = translation(
        two_ports,
        json!({}),
        Some(&["10.1.0.5", "10.1.0.6", "10.1.0.8"]),
    );
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &before, Capabilities::OCTAVIA);
    let ops = converge(&mut cloud, &after, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "replace members shop/web:TCP:80",
            "replace members shop/web:UDP:53"
        ]
    );
    // The legacy API (TCP only): one delete and one create per changed pool.
    let mut tcp = spec("ClusterIP");
    tcp["ports"] = json!([{"name": "http", "port": 80, "targetPort": 8080},
        {"name": "alt", "port": 81, "targetPort": 9090}]);
    let before = translation(tcp.clone(), json!({}), Some(&["10.1.0.5", "10.1.0.7"]));
    let after = translation(tcp, json!({}), Some(&["10.1.0.5", "10.1.0.8"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &before, Capabilities::NEUTRON_LBAAS);
    let ops = converge(&mut cloud, &after, Capabilities::NEUTRON_LBAAS);
    assert_eq!(
        kinds(&ops),
        [
            "delete member 10.1.0.7:8080",
            "create member 10.1.0.8:8080",
            "delete member 10.1.0.7:9090",
            "create member 10.1.0.8:9090"
        ]
    );
}

#[test]
fn members_are_left_alone_when_no_endpoints_are_given() {
    let t = translation(spec("ClusterIP"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let without = translation(spec("ClusterIP"), json!({}), None);
    assert!(
        plan(&without, &observe(&cloud, &without), Capabilities::OCTAVIA)
            .unwrap()
            .is_empty()
    );
}

/// `web` translated with one EndpointSlice of `endpoints` serving `http`.
fn sliced(endpoints: Value) -> Translation {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": spec("ClusterIP"),
    }))
    .unwrap();
    let slices: Vec<k8s_openapi::api::discovery::v1::EndpointSlice> = vec![
        serde_json::from_value(json!({"metadata": {"name": "web-1"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}], "endpoints": endpoints}))
        .unwrap(),
    ];
    let backends = Backends {
        endpoints: None,
        endpoint_slices: &slices,
    };
    translate(&settings(), &svc, Some(backends)).unwrap()
}

fn with_weights(cloud: &MemoryCloud, t: &Translation) -> Observed {
    let owner = owner(t);
    cloud.observe_lookup(Lookup {
        member_weights: true,
        ..Lookup::by_name("shop/web", &owner)
    })
}

fn weights(cloud: &MemoryCloud) -> Vec<(String, String, Option<u16>)> {
    cloud.load_balancers[0].pools[0]
        .members
        .iter()
        .map(|m| (m.id.clone(), m.address.to_string(), m.weight))
        .collect()
}

#[test]
fn a_member_whose_endpoint_drains_gets_weight_zero_in_place_then_leaves() {
    let serving = json!([{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.6"]}]);
    let t = sliced(serving);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let before = weights(&cloud);
    assert_eq!(
        before.iter().map(|m| m.2).collect::<Vec<_>>(),
        [Some(1), Some(1)]
    );
    let drained = sliced(
        json!([{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.6"],
        "conditions": {"ready": false, "serving": true, "terminating": true}}]),
    );
    // The status tree shows no weights: read without them, nothing to do.
    assert!(
        plan(&drained, &observe(&cloud, &drained), Capabilities::OCTAVIA)
            .unwrap()
            .is_empty()
    );
    let ops = plan(
        &drained,
        &with_weights(&cloud, &drained),
        Capabilities::OCTAVIA,
    )
    .unwrap();
    assert_eq!(kinds(&ops), ["replace members shop/web:TCP:80"]);
    assert_eq!(
        ops[0].summary().detail.as_deref(),
        Some("2 members (1 draining, weight 0)")
    );
    cloud.apply(&ops, &owner(&drained));
    let after = weights(&cloud);
    // Same members (ids), one drained.
    assert_eq!(after[0], before[0]);
    assert_eq!(
        (after[1].0.as_str(), after[1].2),
        (before[1].0.as_str(), Some(0))
    );
    assert!(
        plan(
            &drained,
            &with_weights(&cloud, &drained),
            Capabilities::OCTAVIA
        )
        .unwrap()
        .is_empty()
    );
    // The slice drops it: it goes.
    let gone = sliced(json!([{"addresses": ["10.1.0.5"]}]));
    let ops = plan(&gone, &observe(&cloud, &gone), Capabilities::OCTAVIA).unwrap();
    cloud.apply(&ops, &owner(&gone));
    assert_eq!(weights(&cloud), [before[0].clone()]);
}

#[test]
fn on_the_legacy_api_a_drained_member_is_updated_in_place() {
    let t = sliced(json!([{"addresses": ["10.1.0.5"]}]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::NEUTRON_LBAAS);
    let drained = sliced(json!([{"addresses": ["10.1.0.5"],
        "conditions": {"ready": false, "serving": true, "terminating": true}}]));
    let ops = plan(
        &drained,
        &with_weights(&cloud, &drained),
        Capabilities::NEUTRON_LBAAS,
    )
    .unwrap();
    let summaries: Vec<String> = ops
        .iter()
        .map(|o| {
            let s = o.summary();
            format!("{} {} {}", s.op, s.name, s.detail.unwrap_or_default())
        })
        .collect();
    assert_eq!(
        summaries,
        ["update 10.1.0.5:8080 weight 0 in pool shop/web:TCP:80"],
        "in place: its open connections stay"
    );
    let before = weights(&cloud)[0].0.clone();
    cloud.apply(&ops, &owner(&drained));
    assert_eq!(weights(&cloud)[0], (before, "10.1.0.5".into(), Some(0)));
}

#[test]
fn a_batch_replacement_keeps_members_this_tool_did_not_create() {
    let t = translation(spec("ClusterIP"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    cloud.load_balancers[0].pools[0]
        .members
        .push(ObservedMember {
            id: "by-hand".into(),
            address: "10.1.9.9".parse().unwrap(),
            protocol_port: 22,
            weight: Some(5),
            tags: vec![],
            operating_status: String::new(),
        });
    let after = translation(spec("ClusterIP"), json!({}), Some(&["10.1.0.6"]));
    let ops = converge(&mut cloud, &after, Capabilities::OCTAVIA);
    let Operation::ReplaceMembers { members, .. } = &ops[0] else {
        panic!("{:?}", kinds(&ops))
    };
    assert!(
        members
            .iter()
            .any(|m| !m.owned && m.member.protocol_port == 22 && m.member.weight == 5)
    );
    assert!(
        cloud.load_balancers[0].pools[0]
            .members
            .iter()
            .any(|m| m.id == "by-hand")
    );
}

#[test]
fn a_new_vip_recreates_the_load_balancer_and_moves_the_floating_ip() {
    let t = translation(spec("LoadBalancer"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let fip = cloud.floating_ips[0].id.clone();
    let mut moved = spec("LoadBalancer");
    moved["clusterIP"] = json!("10.2.0.43");
    let t2 = translation(moved, json!({}), Some(&["10.1.0.5"]));
    let ops = converge(&mut cloud, &t2, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "delete loadbalancer shop/web",
            "create loadbalancer shop/web",
            &format!("associate floatingip {}", cloud.floating_ips[0].address),
        ]
    );
    assert_eq!(cloud.floating_ips.len(), 1);
    assert_eq!(
        cloud.floating_ips[0].id, fip,
        "the same floating IP, never a new one"
    );
    assert_eq!(
        cloud.floating_ips[0].port_id,
        cloud.load_balancers[0].vip_port_id
    );
}

#[test]
fn ports_added_and_removed_are_listeners_created_and_deleted() {
    let t = translation(spec("ClusterIP"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let mut other = spec("ClusterIP");
    other["ports"] = json!([{"name": "dns", "port": 53, "protocol": "UDP"}]);
    let t2 = translation(other, json!({}), Some(&["10.1.0.5"]));
    let ops = converge(&mut cloud, &t2, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "delete listener shop/web:TCP:80",
            "delete pool shop/web:TCP:80",
            "create listener shop/web:UDP:53",
            "create pool shop/web:UDP:53",
            "replace members shop/web:UDP:53"
        ]
    );
    // Octavia 19 refuses a listener with its pool inline: three calls.
    assert!(matches!(
        &ops[2],
        Operation::CreateListener {
            with_pool: false,
            ..
        }
    ));
}

#[test]
fn mutable_fields_are_updated_in_place() {
    let t = translation(spec("LoadBalancer"), json!({}), None);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let mut changed = spec("LoadBalancer");
    changed["loadBalancerSourceRanges"] = json!(["10.0.0.0/8"]);
    changed["sessionAffinity"] = json!("ClientIP");
    let t2 = translation(
        changed,
        json!({"loadbalancer.openstack.org/lb-method": "LEAST_CONNECTIONS",
            "loadbalancer.openstack.org/timeout-client-data": "1000",
            "loadbalancer.openstack.org/enable-health-monitor": "true"}),
        None,
    );
    let ops = converge(&mut cloud, &t2, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "update listener shop/web:TCP:80",
            "update pool shop/web:TCP:80",
            "create healthmonitor shop/web:TCP:80"
        ]
    );
    assert_eq!(
        ops[0].summary().detail.as_deref(),
        Some("allowed_cidrs, timeout_client_data")
    );
    assert_eq!(
        ops[1].summary().detail.as_deref(),
        Some("lb_algorithm, session_persistence")
    );
    // And back: the monitor goes, persistence is removed.
    let ops = converge(&mut cloud, &t, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "update listener shop/web:TCP:80",
            "update pool shop/web:TCP:80",
            "delete healthmonitor shop/web:TCP:80"
        ]
    );
}

#[test]
fn an_immutable_pool_protocol_replaces_the_pool() {
    let t = translation(spec("ClusterIP"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let t2 = translation(
        spec("ClusterIP"),
        json!({"loadbalancer.openstack.org/proxy-protocol": "true"}),
        Some(&["10.1.0.5"]),
    );
    let ops = converge(&mut cloud, &t2, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "delete pool shop/web:TCP:80",
            "create pool shop/web:TCP:80",
            "replace members shop/web:TCP:80"
        ]
    );
}

/// Plans `t` on a cloud converged for it and then disturbed by `disturb`;
/// asserts the plan is a conflict over `resource`.
fn assert_conflict(t: &Translation, disturb: impl FnOnce(&mut MemoryCloud), resource: &str) {
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, t, Capabilities::OCTAVIA);
    disturb(&mut cloud);
    match plan(t, &observe(&cloud, t), Capabilities::OCTAVIA) {
        Err(PlanError::NotOwned { resource: r, .. }) => assert_eq!(r, resource),
        other => panic!("expected a conflict over a {resource}, got {other:?}"),
    }
}

#[test]
fn a_load_balancer_this_tool_does_not_own_is_a_conflict() {
    let t = translation(spec("ClusterIP"), json!({}), None);
    assert_conflict(
        &t,
        |cloud| {
            cloud.load_balancers[0].tags =
                vec!["svc-lbaas".into(), "svc-lbaas-cluster:other".into()]
        },
        "load balancer",
    );
}

#[test]
fn a_listener_this_tool_does_not_own_on_a_wanted_port_is_a_conflict_naming_the_port() {
    let t = translation(spec("ClusterIP"), json!({}), None);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    cloud.load_balancers[0].listeners[0].tags.clear();
    match plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA) {
        Err(e @ PlanError::PortTaken { port: 80, .. }) => {
            assert!(e.to_string().contains("port 80/TCP"), "{e}")
        }
        other => panic!("expected the port taken, got {other:?}"),
    }
}

#[test]
fn a_pool_or_monitor_this_tool_does_not_own_is_a_conflict() {
    let t = translation(
        spec("ClusterIP"),
        json!({"loadbalancer.openstack.org/enable-health-monitor": "true"}),
        None,
    );
    assert_conflict(
        &t,
        |cloud| cloud.load_balancers[0].pools[0].tags.clear(),
        "pool",
    );
    let other = translation(
        spec("ClusterIP"),
        json!({"loadbalancer.openstack.org/enable-health-monitor": "true",
            "loadbalancer.openstack.org/health-monitor-delay": "9"}),
        None,
    );
    // Someone else's monitor: left alone when it does what we want...
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    if let Some(hm) = cloud.load_balancers[0].pools[0].health_monitor.as_mut() {
        hm.tags.clear();
    }
    assert!(
        plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA)
            .unwrap()
            .is_empty()
    );
    // ...a conflict when it must change.
    assert!(matches!(
        plan(&other, &observe(&cloud, &other), Capabilities::OCTAVIA),
        Err(PlanError::NotOwned {
            resource: "health monitor",
            ..
        })
    ));
}

#[test]
fn a_copy_left_by_a_crash_is_deleted_and_an_errored_one_recreated() {
    let t = translation(spec("ClusterIP"), json!({}), None);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let copy = cloud.load_balancers[0].clone();
    // A copy made later (a replica that raced this one): the older one stays.
    cloud.load_balancers.push(ObservedLoadBalancer {
        id: "copy".into(),
        created_at: Some("2026-12-31T23:59:59".into()),
        ..copy
    });
    let ops = converge(&mut cloud, &t, Capabilities::OCTAVIA);
    assert_eq!(kinds(&ops), ["delete loadbalancer shop/web"]);
    assert_eq!(ops[0].summary().id.as_deref(), Some("copy"));

    cloud.load_balancers[0].provisioning_status = "ERROR".into();
    let ops = converge(&mut cloud, &t, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "delete loadbalancer shop/web",
            "create loadbalancer shop/web"
        ]
    );
}

#[test]
fn a_skip_removes_the_load_balancer_and_releases_the_floating_ip() {
    let t = translation(spec("LoadBalancer"), json!({}), None);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let mut headless = spec("ClusterIP");
    headless["clusterIP"] = json!("None");
    let skip = translation(headless.clone(), json!({}), None);
    let ops = converge(&mut cloud, &skip, Capabilities::OCTAVIA);
    assert_eq!(ops.len(), 2);
    assert!(matches!(ops[0], Operation::DeleteFloatingIp { .. }));
    assert!(matches!(ops[1], Operation::DeleteLoadBalancer { .. }));
    assert!(cloud.load_balancers.is_empty() && cloud.floating_ips.is_empty());

    // keep-floatingip: only disassociated.
    let keep = json!({"loadbalancer.openstack.org/keep-floatingip": "true"});
    converge(
        &mut cloud,
        &translation(spec("LoadBalancer"), keep.clone(), None),
        Capabilities::OCTAVIA,
    );
    let ops = converge(
        &mut cloud,
        &translation(headless, keep, None),
        Capabilities::OCTAVIA,
    );
    assert!(matches!(ops[0], Operation::DisassociateFloatingIp { .. }));
    assert_eq!(cloud.floating_ips.len(), 1);
}

#[test]
fn load_balancer_to_cluster_ip_releases_the_floating_ip() {
    let t = translation(spec("LoadBalancer"), json!({}), None);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let ops = converge(
        &mut cloud,
        &translation(spec("ClusterIP"), json!({}), None),
        Capabilities::OCTAVIA,
    );
    assert_eq!(ops.len(), 1);
    assert!(matches!(ops[0], Operation::DeleteFloatingIp { .. }));
    assert_eq!(cloud.load_balancers.len(), 1);
}

#[test]
fn a_floating_ip_allocated_before_a_crash_is_reused_not_allocated_again() {
    let t = translation(spec("LoadBalancer"), json!({}), None);
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    cloud.floating_ips[0].port_id = None; // as if the crash came before the association
    let ops = converge(&mut cloud, &t, Capabilities::OCTAVIA);
    assert_eq!(ops.len(), 1);
    assert!(matches!(ops[0], Operation::AssociateFloatingIp { .. }));
}

#[test]
fn the_user_method_associates_the_users_floating_ip_and_only_disassociates_it() {
    let mut user = spec("LoadBalancer");
    user["loadBalancerIP"] = json!("172.24.4.13");
    let t = translation(user, json!({}), None);
    let mut cloud = MemoryCloud::new();
    assert!(matches!(
        plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA),
        Err(PlanError::FloatingIpNotFound { .. })
    ));
    let id = cloud.add_user_floating_ip("172.24.4.13".parse().unwrap());
    let ops = converge(&mut cloud, &t, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "create loadbalancer shop/web",
            "associate floatingip 172.24.4.13"
        ]
    );
    let ops = converge(
        &mut cloud,
        &translation(spec("ClusterIP"), json!({}), None),
        Capabilities::OCTAVIA,
    );
    assert_eq!(kinds(&ops), ["disassociate floatingip 172.24.4.13"]);
    assert!(
        cloud.floating_ips.iter().any(|f| f.id == id),
        "never deleted"
    );
}

#[test]
fn a_users_floating_ip_bound_elsewhere_is_a_conflict() {
    let mut user = spec("LoadBalancer");
    user["loadBalancerIP"] = json!("172.24.4.13");
    let t = translation(user, json!({}), None);
    let mut cloud = MemoryCloud::new();
    cloud.add_user_floating_ip("172.24.4.13".parse().unwrap());
    cloud.floating_ips[0].port_id = Some("someone-elses-port".into());
    let e = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).unwrap_err();
    assert!(matches!(e, PlanError::FloatingIpInUse { .. }), "{e}");
}

#[test]
fn offline_the_users_floating_ip_is_associated_by_address() {
    let mut user = spec("LoadBalancer");
    user["loadBalancerIP"] = json!("172.24.4.13");
    let t = translation(user, json!({}), None);
    let ops = plan(&t, &Observed::default(), Capabilities::OCTAVIA).unwrap();
    assert!(matches!(
        &ops[1],
        Operation::AssociateFloatingIp { id: None, .. }
    ));
}

#[test]
fn the_legacy_api_refuses_what_it_cannot_do() {
    let mut udp = spec("ClusterIP");
    udp["ports"] = json!([{"port": 53, "protocol": "UDP"}]);
    let proxy = json!({"loadbalancer.openstack.org/proxy-protocol": "true"});
    for t in [
        translation(udp, json!({}), None),
        translation(spec("ClusterIP"), proxy, None),
    ] {
        let e = plan(&t, &Observed::default(), Capabilities::NEUTRON_LBAAS).unwrap_err();
        assert!(matches!(e, PlanError::Unsupported { .. }), "{e}");
    }
}

#[test]
fn the_legacy_api_refuses_source_ranges_rather_than_ignoring_them() {
    let mut s = spec("LoadBalancer");
    s["loadBalancerSourceRanges"] = json!(["10.0.0.0/8"]);
    let t = translation(s, json!({}), None);
    let e = plan(&t, &Observed::default(), Capabilities::NEUTRON_LBAAS).unwrap_err();
    assert!(matches!(e, PlanError::Unsupported { .. }), "{e}");
}

// ---------------------------------------------------------------------------
// Properties.

const PORTS: [(&str, u16, &str); 4] = [
    ("http", 80, "TCP"),
    ("https", 443, "TCP"),
    ("dns", 53, "UDP"),
    ("sig", 9899, "SCTP"),
];
const ADDRESSES: [&str; 6] = [
    "10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6",
];

#[derive(Debug, Clone)]
struct ServiceCase {
    kind: usize,
    cluster_ip: usize,
    ports: Vec<bool>,
    members: Option<Vec<bool>>,
    algorithm: usize,
    affinity: bool,
    ranges: Vec<bool>,
    monitor: Option<u32>,
    proxy: bool,
    keep: bool,
}

fn case() -> impl Strategy<Value = ServiceCase> {
    (
        0..5usize,
        0..2usize,
        proptest::collection::vec(any::<bool>(), 4),
        proptest::option::of(proptest::collection::vec(any::<bool>(), 6)),
        0..4usize,
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 2),
        proptest::option::of(3..6u32),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                kind,
                cluster_ip,
                ports,
                members,
                algorithm,
                affinity,
                ranges,
                monitor,
                proxy,
                keep,
            )| ServiceCase {
                kind,
                cluster_ip,
                ports,
                members,
                algorithm,
                affinity,
                ranges,
                monitor,
                proxy,
                keep,
            },
        )
}

fn build(c: &ServiceCase) -> Translation {
    let types = [
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
        "LoadBalancer",
        "Headless",
    ];
    let mut ports: Vec<Value> = PORTS
        .iter()
        .zip(&c.ports)
        .filter(|(_, on)| **on)
        .map(|((name, port, proto), _)| json!({"name": name, "port": port, "protocol": proto}))
        .collect();
    if ports.is_empty() {
        ports.push(json!({"name": "http", "port": 80}));
    }
    let ranges: Vec<&str> = ["10.0.0.0/8", "192.168.0.0/16"]
        .iter()
        .zip(&c.ranges)
        .filter(|(_, on)| **on)
        .map(|(r, _)| *r)
        .collect();
    let mut spec = json!({
        "type": if c.kind == 4 { "ClusterIP" } else { types[c.kind] },
        "clusterIP": if c.kind == 4 { "None" } else { ["10.2.0.10", "10.2.0.11"][c.cluster_ip] },
        "ports": ports,
        "sessionAffinity": if c.affinity { "ClientIP" } else { "None" },
        "loadBalancerSourceRanges": ranges,
    });
    if c.kind == 3 {
        spec["loadBalancerIP"] = json!("172.24.4.13");
    }
    let mut annotations = json!({
        "loadbalancer.openstack.org/lb-method": crate::model::LbAlgorithm::ALL[c.algorithm].as_str(),
        "loadbalancer.openstack.org/keep-floatingip": c.keep.to_string(),
    });
    if let Some(delay) = c.monitor {
        annotations["loadbalancer.openstack.org/enable-health-monitor"] = json!("true");
        annotations["loadbalancer.openstack.org/health-monitor-delay"] = json!(delay.to_string());
    }
    // The PROXY protocol is only valid with TCP listeners.
    let tcp_only = PORTS
        .iter()
        .zip(&c.ports)
        .all(|((_, _, p), on)| !*on || *p == "TCP");
    if c.proxy && tcp_only {
        annotations["loadbalancer.openstack.org/proxy-protocol"] = json!("v1");
    }
    let members: Option<Vec<&str>> = c.members.as_ref().map(|on| {
        ADDRESSES
            .iter()
            .zip(on)
            .filter(|(_, on)| **on)
            .map(|(a, _)| *a)
            .collect()
    });
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations}, "spec": spec})).unwrap();
    let ep: Option<Endpoints> = members.map(|m| {
        let addresses: Vec<Value> = m.iter().map(|ip| json!({"ip": ip})).collect();
        let ports: Vec<Value> = PORTS
            .iter()
            .map(
                |(name, port, proto)| json!({"name": name, "port": port + 8000, "protocol": proto}),
            )
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": addresses, "ports": ports}]}))
        .unwrap()
    });
    let backends = ep.as_ref().map(|e| Backends {
        endpoints: Some(e),
        endpoint_slices: &[],
    });
    translate(&settings(), &svc, backends).unwrap()
}

#[derive(Debug, Clone)]
struct Disturbance {
    foreign_member: bool,
    foreign_listener: bool,
    foreign_load_balancer: bool,
    errored: bool,
    leaked_floating_ip: bool,
    unbound_floating_ip: bool,
    lost_pool: bool,
}

fn disturbance() -> impl Strategy<Value = Disturbance> {
    proptest::collection::vec(any::<bool>(), 7).prop_map(|b| Disturbance {
        foreign_member: b[0],
        foreign_listener: b[1],
        foreign_load_balancer: b[2],
        errored: b[3],
        leaked_floating_ip: b[4],
        unbound_floating_ip: b[5],
        lost_pool: b[6],
    })
}

/// A cloud where an earlier version of the Service was applied, then disturbed
/// by crashes, by hand and by other tools.
fn disturbed_cloud(earlier: &Translation, d: &Disturbance, caps: Capabilities) -> MemoryCloud {
    let mut cloud = MemoryCloud::new();
    cloud.add_user_floating_ip("172.24.4.13".parse().unwrap());
    converge(&mut cloud, earlier, caps);
    let owner = owner(earlier);
    if let Some(lb) = cloud.load_balancers.first_mut() {
        if d.foreign_member
            && let Some(pool) = lb.pools.first_mut()
        {
            pool.members.push(ObservedMember {
                id: "foreign-member".into(),
                address: "10.1.200.1".parse().unwrap(),
                protocol_port: 22,
                weight: None,
                tags: vec!["someone".into()],
                operating_status: String::new(),
            });
        }
        if d.foreign_listener {
            lb.listeners.push(ObservedListener {
                id: "foreign-listener".into(),
                name: "by-hand".into(),
                protocol: "HTTP".into(),
                protocol_port: 8443,
                ..Default::default()
            });
        }
        if d.errored {
            lb.provisioning_status = "ERROR".into();
        }
        if d.lost_pool
            && let Some(l) = lb.listeners.first_mut()
        {
            // A crash between listener and pool creation (the legacy sequence).
            let pool = l.default_pool_id.take();
            lb.pools.retain(|p| Some(&p.id) != pool.as_ref());
        }
    }
    // Another cluster's load balancer of the same name (only beside ours: alone
    // it is a conflict, tested above).
    if d.foreign_load_balancer && !cloud.load_balancers.is_empty() {
        cloud.load_balancers.push(ObservedLoadBalancer {
            id: "foreign-lb".into(),
            name: "shop/web".into(),
            provisioning_status: "ACTIVE".into(),
            vip_port_id: Some("foreign-port".into()),
            tags: vec!["svc-lbaas".into(), "svc-lbaas-cluster:other".into()],
            ..Default::default()
        });
    }
    if d.leaked_floating_ip {
        cloud.floating_ips.push(ObservedFloatingIp {
            id: "leaked-fip".into(),
            address: "172.24.4.200".parse().unwrap(),
            port_id: None,
            network_id: Some("public".into()),
            tags: owner.clone(),
            description: None,
        });
    }
    if d.unbound_floating_ip {
        for f in &mut cloud.floating_ips {
            f.port_id = None;
        }
    }
    cloud
}

fn unowned_ids(observed: &Observed, owner: &[String]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for lb in &observed.load_balancers {
        if !is_owned(&lb.tags, owner) {
            ids.insert(lb.id.clone());
        }
        for l in &lb.listeners {
            if !is_owned(&l.tags, owner) {
                ids.insert(l.id.clone());
            }
        }
        for p in &lb.pools {
            if !is_owned(&p.tags, owner) {
                ids.insert(p.id.clone());
            }
            ids.extend(
                p.members
                    .iter()
                    .filter(|m| !is_owned(&m.tags, owner))
                    .map(|m| m.id.clone()),
            );
        }
    }
    ids.extend(
        observed
            .floating_ips
            .iter()
            .filter(|f| !is_owned(&f.tags, owner))
            .map(|f| f.id.clone()),
    );
    if let FloatingIpLookup::Found(f) = &observed.user_floating_ip {
        ids.insert(f.id.clone());
    }
    ids
}

fn deleted_id(op: &Operation) -> Option<&str> {
    match op {
        Operation::DeleteLoadBalancer { id, .. }
        | Operation::DeleteListener { id, .. }
        | Operation::DeletePool { id, .. }
        | Operation::DeleteMember { id, .. }
        | Operation::DeleteHealthMonitor { id, .. }
        | Operation::DeleteFloatingIp { id, .. } => Some(id),
        _ => None,
    }
}

/// Whether the load balancer has `want`'s listener, pool, monitor and members.
fn tree_matches(
    lb: &ObservedLoadBalancer,
    want: &DesiredListener,
    owner: &[String],
    caps: Capabilities,
) -> bool {
    let Some(have) = lb
        .listeners
        .iter()
        .find(|l| l.protocol == want.protocol.as_str() && l.protocol_port == want.protocol_port)
    else {
        return false;
    };
    let Some(pool) = lb
        .pools
        .iter()
        .find(|p| Some(&p.id) == have.default_pool_id.as_ref())
    else {
        return false;
    };
    let monitor_ok = match (&want.pool.health_monitor, &pool.health_monitor) {
        (Some(w), Some(h)) => monitor_matches(w, h),
        (None, Some(h)) => !is_owned(&h.tags, owner),
        (Some(_), None) => false,
        (None, None) => true,
    };
    let members_ok = want.pool.members.as_ref().is_none_or(|members| {
        let owned: BTreeSet<Member> = pool
            .members
            .iter()
            .filter(|m| is_owned(&m.tags, owner))
            .map(|m| Member {
                address: m.address,
                protocol_port: m.protocol_port,
                weight: m.weight.unwrap_or(Member::SERVING),
            })
            .collect();
        &owned == members
    });
    (!caps.allowed_cidrs || have.allowed_cidrs == want.allowed_cidrs)
        && pool.protocol == want.pool.protocol.as_str()
        && pool.lb_algorithm == want.pool.lb_algorithm.as_str()
        && pool.session_persistence.as_deref() == want.pool.session_persistence.map(|p| p.as_str())
        && monitor_ok
        && members_ok
}

fn check(
    earlier: &Translation,
    wanted: &Translation,
    d: &Disturbance,
    caps: Capabilities,
) -> Result<(), TestCaseError> {
    let mut cloud = disturbed_cloud(earlier, d, caps);
    let observed = observe(&cloud, wanted);
    let ops = plan(wanted, &observed, caps).map_err(|e| TestCaseError::fail(e.to_string()))?;

    // Nothing unowned is deleted, and a batch replacement lists every unowned member.
    let owner = owner(wanted);
    let unowned = unowned_ids(&observed, &owner);
    for op in &ops {
        if let Some(id) = deleted_id(op) {
            prop_assert!(
                !unowned.contains(id),
                "deletes unowned {id}: {:?}",
                kinds(&ops)
            );
        }
        // (A pool created in this plan has no members to keep.)
        if let Operation::ReplaceMembers { pool, members } = op
            && pool.id.is_some()
        {
            let observed_pool = observed
                .load_balancers
                .iter()
                .flat_map(|lb| &lb.pools)
                .find(|p| Some(&p.id) == pool.id.as_ref())
                .expect("replaces members of an observed pool");
            for m in observed_pool
                .members
                .iter()
                .filter(|m| !is_owned(&m.tags, &owner))
            {
                prop_assert!(
                    members.iter().any(|s| s.member.address == m.address
                        && s.member.protocol_port == m.protocol_port),
                    "drops unowned member {}",
                    m.id
                );
            }
        }
    }

    // Convergence: applying the plan and planning again gives nothing to do.
    cloud.apply(&ops, &owner);
    let again = plan(wanted, &observe(&cloud, wanted), caps)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        again.is_empty(),
        "not converged after {:?}: {:?}",
        kinds(&ops),
        kinds(&again)
    );

    // What is left matches the Service.
    let now = observe(&cloud, wanted);
    let owned_lbs: Vec<_> = now
        .load_balancers
        .iter()
        .filter(|lb| is_owned(&lb.tags, &owner))
        .collect();
    match wanted {
        Translation::Skip {
            keep_floating_ip, ..
        } => {
            prop_assert!(owned_lbs.is_empty());
            let owned_fips = now
                .floating_ips
                .iter()
                .filter(|f| is_owned(&f.tags, &owner))
                .count();
            prop_assert!(*keep_floating_ip || owned_fips == 0);
        }
        Translation::LoadBalancer(d) => {
            prop_assert_eq!(owned_lbs.len(), 1);
            let lb = owned_lbs[0];
            let owned_listeners = lb
                .listeners
                .iter()
                .filter(|l| is_owned(&l.tags, &owner))
                .count();
            prop_assert_eq!(owned_listeners, d.listeners.len());
            prop_assert_eq!(lb.vip_address, d.vip.address);
            for want in &d.listeners {
                prop_assert!(
                    tree_matches(lb, want, &owner, caps),
                    "{} differs after {:?}",
                    want.name,
                    kinds(&ops)
                );
            }
            let bound: Vec<_> = now
                .floating_ips
                .iter()
                .filter(|f| f.port_id == lb.vip_port_id)
                .collect();
            match d.floating_ip {
                FloatingIpIntent::None => prop_assert!(bound.is_empty()),
                _ => prop_assert_eq!(bound.len(), 1),
            }
            if !matches!(d.floating_ip, FloatingIpIntent::Pool { .. }) {
                let owned_fips = now
                    .floating_ips
                    .iter()
                    .filter(|f| is_owned(&f.tags, &owner))
                    .count();
                prop_assert!(
                    d.keep_floating_ip || owned_fips == 0,
                    "a floating IP leaked"
                );
            }
        }
    }
    Ok(())
}

/// Keeps a case within what the legacy API offers: TCP, no allowed_cidrs, no PROXY.
fn legacy_only(c: &mut ServiceCase) {
    c.ranges = vec![false, false];
    c.ports[2] = false; // UDP
    c.ports[3] = false; // SCTP
    c.proxy = false;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_converge_from_any_earlier_version_and_disturbance(
        earlier in case(), wanted in case(), d in disturbance(), legacy in any::<bool>()
    ) {
        let caps = if legacy { Capabilities::NEUTRON_LBAAS } else { Capabilities::OCTAVIA };
        let (mut earlier, mut wanted) = (earlier, wanted);
        if legacy {
            legacy_only(&mut earlier);
            legacy_only(&mut wanted);
        }
        check(&build(&earlier), &build(&wanted), &d, caps)?;
    }

    #[test]
    fn a_converged_service_plans_nothing(c in case(), legacy in any::<bool>()) {
        let caps = if legacy { Capabilities::NEUTRON_LBAAS } else { Capabilities::OCTAVIA };
        let mut c = c;
        if legacy {
            legacy_only(&mut c);
        }
        let t = build(&c);
        let mut cloud = MemoryCloud::new();
        cloud.add_user_floating_ip("172.24.4.13".parse().unwrap());
        converge(&mut cloud, &t, caps);
        let ops = plan(&t, &observe(&cloud, &t), caps).unwrap();
        prop_assert!(ops.is_empty(), "{:?}", kinds(&ops));
    }
}

#[test]
fn a_prometheus_listener_comes_after_the_load_balancer_and_needs_api_2_25() {
    let mut t = translation(spec("LoadBalancer"), json!({}), Some(&["10.1.0.5"]));
    let Translation::LoadBalancer(d) = &mut t else {
        panic!("a load balancer")
    };
    d.prometheus_listener = Some(crate::model::PrometheusListener {
        name: "shop/web:PROMETHEUS:9100".into(),
        protocol_port: 9100,
        allowed_cidrs: vec!["10.9.0.0/24".parse().unwrap()],
    });
    let ops = plan(&t, &Observed::default(), Capabilities::OCTAVIA).unwrap();
    let k = kinds(&ops);
    let lb = k
        .iter()
        .position(|o| o.starts_with("create loadbalancer"))
        .unwrap();
    let metrics = k
        .iter()
        .position(|o| o == "create listener shop/web:PROMETHEUS:9100")
        .unwrap_or_else(|| panic!("{k:?}"));
    assert!(lb < metrics, "{k:?}");
    // Converged on the in-memory cloud, then nothing more to do.
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let again = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).unwrap();
    assert!(again.is_empty(), "{:?}", kinds(&again));
    // Below Octavia API 2.25 (and on the legacy API): refused, naming it.
    let old = Capabilities::discovered(crate::config::Api::Octavia, Some(24));
    let e = plan(&t, &Observed::default(), old).unwrap_err();
    assert!(matches!(e, PlanError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("svc-lbaas.io/prometheus-listener-port"),
        "{e}"
    );
}

#[test]
fn capabilities_follow_octavias_api_version() {
    use crate::config::Api;
    let at = |m| Capabilities::discovered(Api::Octavia, Some(m));
    assert!(!at(0).batch_members && !at(0).listener_timeouts);
    assert!(at(1).batch_members && at(1).listener_timeouts && !at(1).allowed_cidrs);
    assert!(at(12).allowed_cidrs && !at(12).sctp);
    assert!(at(23).sctp && !at(23).additional_vips);
    assert!(!at(24).prometheus_listeners && at(25).prometheus_listeners);
    assert_eq!(at(29), Capabilities::OCTAVIA);
    assert_eq!(
        Capabilities::discovered(Api::Octavia, None),
        Capabilities::OCTAVIA
    );
    assert_eq!(
        Capabilities::discovered(Api::NeutronLbaas, Some(29)),
        Capabilities::NEUTRON_LBAAS
    );
}

#[test]
fn a_provider_change_re_creates_the_load_balancer_and_keeps_its_floating_ip() {
    let t = translation(spec("LoadBalancer"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let fip = cloud.floating_ips[0].clone();
    // Made by the cloud's default provider; `octavia` is its alias: no change.
    assert_eq!(cloud.load_balancers[0].provider.as_deref(), Some("amphora"));
    let mut s = settings();
    s.octavia_defaults.provider = Some("octavia".into());
    let translate_with = |s: &Settings| {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"}, "spec": spec("LoadBalancer")}))
        .expect("a Service");
        translate(s, &svc, None).expect("translates")
    };
    let alias = translate_with(&s);
    assert_eq!(
        kinds(&plan(&alias, &observe(&cloud, &alias), Capabilities::OCTAVIA).expect("plans")),
        Vec::<String>::new()
    );
    s.octavia_defaults.provider = Some("ovn".into());
    let ovn = translate_with(&s);
    let ops = converge(&mut cloud, &ovn, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "delete loadbalancer shop/web",
            "create loadbalancer shop/web",
            &format!("associate floatingip {}", fip.address),
        ]
    );
    assert_eq!(cloud.load_balancers[0].provider.as_deref(), Some("ovn"));
    assert_eq!(cloud.floating_ips.len(), 1);
    assert_eq!(cloud.floating_ips[0].id, fip.id);
}

#[test]
fn a_vip_port_named_keeps_its_load_balancer_until_the_port_changes_and_is_octavias_only() {
    let port = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a85";
    let t = translation(
        spec("LoadBalancer"),
        json!({"loadbalancer.openstack.org/port-id": port}),
        None,
    );
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    // The in-memory cloud makes its own port: as if the user's were another.
    assert!(
        kinds(&plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).unwrap())
            .contains(&"delete loadbalancer shop/web".to_string())
    );
    cloud.load_balancers[0].vip_port_id = Some(port.into());
    cloud.floating_ips[0].port_id = Some(port.into());
    assert!(
        plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA)
            .unwrap()
            .is_empty()
    );
    let e = plan(&t, &Observed::default(), Capabilities::NEUTRON_LBAAS).unwrap_err();
    assert!(e.to_string().contains("port-id"), "{e}");
}

#[test]
fn a_vip_security_group_is_made_before_the_load_balancer_converged_and_let_go() {
    let mut s = settings();
    s.octavia_defaults.source_ranges = crate::config::SourceRanges::SecurityGroup;
    let with = |ranges: Value| {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42", "loadBalancerSourceRanges": ranges,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
        .unwrap();
        translate(&s, &svc, None).unwrap()
    };
    let caps = Capabilities::OCTAVIA;
    let mut cloud = MemoryCloud::new();
    let t = with(json!(["192.0.2.0/24"]));
    let observe = |cloud: &MemoryCloud, t: &Translation| {
        let d = match t {
            Translation::LoadBalancer(d) => d,
            Translation::Skip { .. } => unreachable!(),
        };
        cloud.observe_lookup(crate::model::Lookup {
            security_group: d.vip_security_group.as_ref().map(|_| d.name.as_str()),
            ..crate::model::Lookup::by_name(&d.name, &d.owner_tags)
        })
    };
    let ops = plan(&t, &observe(&cloud, &t), caps).unwrap();
    assert_eq!(
        kinds(&ops)[..2],
        [
            "create securitygroup shop/web",
            "create loadbalancer shop/web"
        ]
    );
    cloud.apply(&ops, &owner(&t));
    let sg = cloud.security_groups[0].id.clone();
    assert_eq!(cloud.load_balancers[0].vip_sg_ids, [sg]);
    assert!(plan(&t, &observe(&cloud, &t), caps).unwrap().is_empty());
    // Other ranges: the rules change in place.
    let t = with(json!(["198.51.100.0/24"]));
    let ops = plan(&t, &observe(&cloud, &t), caps).unwrap();
    assert_eq!(kinds(&ops), ["update securitygroup shop/web"]);
    cloud.apply(&ops, &owner(&t));
    assert_eq!(cloud.security_groups[0].rules.len(), 1);
    assert!(plan(&t, &observe(&cloud, &t), caps).unwrap().is_empty());
    // No ranges: the VIP port is Octavia's again, and the group goes.
    let t = with(json!([]));
    let ops = plan(&t, &observe(&cloud, &t), caps).unwrap();
    assert_eq!(
        kinds(&ops),
        [
            "update loadbalancer shop/web",
            "delete securitygroup shop/web"
        ]
    );
    cloud.apply(&ops, &owner(&t));
    assert!(cloud.security_groups.is_empty() && cloud.load_balancers[0].vip_sg_ids.is_empty());
    // Before Octavia 2.29 there is no way: a 400.
    let t = with(json!(["192.0.2.0/24"]));
    let old = Capabilities::discovered(crate::config::Api::Octavia, Some(28));
    let e = plan(&t, &Observed::default(), old).unwrap_err();
    assert!(e.to_string().contains("vip_sg_ids"), "{e}");
    // A removal deletes it after the load balancer.
    cloud.apply(&plan(&t, &observe(&cloud, &t), caps).unwrap(), &owner(&t));
    let removal = plan_removal(&observe(&cloud, &t), &owner(&t), false);
    assert_eq!(
        kinds(&removal).last().map(String::as_str),
        Some("delete securitygroup shop/web")
    );
}

#[test]
fn a_port_turning_http_replaces_its_listener_deleting_first() {
    let t = translation(spec("ClusterIP"), json!({}), Some(&["10.1.0.5"]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let http = translation(
        spec("ClusterIP"),
        json!({"loadbalancer.openstack.org/x-forwarded-for": "true"}),
        Some(&["10.1.0.5"]),
    );
    let ops = converge(&mut cloud, &http, Capabilities::OCTAVIA);
    assert_eq!(
        kinds(&ops),
        [
            "delete listener shop/web:TCP:80",
            "delete pool shop/web:TCP:80",
            "create listener shop/web:HTTP:80",
            "create pool shop/web:HTTP:80",
            "replace members shop/web:HTTP:80"
        ]
    );
    assert_eq!(
        cloud.load_balancers[0].listeners[0].insert_headers,
        ["X-Forwarded-For"]
    );
    assert!(
        plan(&http, &observe(&cloud, &http), Capabilities::OCTAVIA)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn what_older_apis_lack_is_left_out_or_refused() {
    let tls = translation(
        json!({"type": "ClusterIP", "clusterIP": "10.2.0.42", "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "ports": [{"name": "https", "port": 443, "appProtocol": "https"},
                      {"name": "dns", "port": 53, "protocol": "UDP"}]}),
        json!({"loadbalancer.openstack.org/default-tls-container-ref": "https://kms.example/v1/containers/6e1b2f0a-1f0e-4f5e-9d4c-3b2a1f0e9d8c"}),
        None,
    );
    // Octavia 2.19: no ALPN, no UDP persistence timeout before 2.2.
    let old = Capabilities::discovered(crate::config::Api::Octavia, Some(1));
    let ops = plan(&tls, &Observed::default(), old).unwrap();
    let Operation::CreateLoadBalancer { load_balancer, .. } = &ops[0] else {
        panic!("{:?}", kinds(&ops))
    };
    assert!(
        load_balancer
            .listeners
            .iter()
            .all(|l| l.alpn_protocols.is_empty())
    );
    assert!(
        load_balancer
            .listeners
            .iter()
            .all(|l| l.pool.persistence_timeout.is_none())
    );
    let new = plan(&tls, &Observed::default(), Capabilities::OCTAVIA).unwrap();
    let Operation::CreateLoadBalancer { load_balancer, .. } = &new[0] else {
        panic!()
    };
    assert!(
        load_balancer
            .listeners
            .iter()
            .any(|l| !l.alpn_protocols.is_empty())
    );
    assert!(
        load_balancer
            .listeners
            .iter()
            .any(|l| l.pool.persistence_timeout == Some(60))
    );
    // The legacy API has no insert_headers: refused, not dropped.
    let http = translation(
        spec("ClusterIP"),
        json!({"loadbalancer.openstack.org/x-forwarded-for": "true"}),
        None,
    );
    let e = plan(&http, &Observed::default(), Capabilities::NEUTRON_LBAAS).unwrap_err();
    assert!(e.to_string().contains("x-forwarded"), "{e}");
}

#[test]
fn a_member_left_drained_is_served_again_though_the_tree_shows_no_weights() {
    let t = sliced(json!([{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.6"]}]));
    let mut cloud = MemoryCloud::new();
    converge(&mut cloud, &t, Capabilities::OCTAVIA);
    let drained = sliced(
        json!([{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.6"],
        "conditions": {"ready": false, "serving": true, "terminating": true}}]),
    );
    let ops = plan(
        &drained,
        &with_weights(&cloud, &drained),
        Capabilities::OCTAVIA,
    )
    .unwrap();
    cloud.apply(&ops, &owner(&drained));
    // The drop was missed; the endpoint is ready again: the plain
    // observation (no weights read) still sees the drained member.
    let ops = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).unwrap();
    assert_eq!(kinds(&ops), ["replace members shop/web:TCP:80"]);
    cloud.apply(&ops, &owner(&t));
    assert_eq!(
        weights(&cloud).iter().map(|m| m.2).collect::<Vec<_>>(),
        [Some(1), Some(1)]
    );
}
