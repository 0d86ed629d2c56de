//! Taking over a load balancer that OCCM or kuryr-kubernetes made for a
//! Service (`[adoption] from` and `svc-lbaas.io/adopt: "true"`), in place:
//! the same load balancer, VIP and floating IP. Each object it has becomes
//! ours (our name and tags, one `Adopt` write each); what our translation
//! does not want is then left to the ordinary plan, which sees the objects
//! as ours: listeners of other ports and unattached pools go, OCCM's
//! nodePort members are replaced by the pods, options converge.

use crate::config::AdoptFrom;
use crate::model::{
    AdoptionCandidate, DesiredLoadBalancer, FloatingIpIntent, Observed, ObservedLoadBalancer,
    ObservedMember,
};
use crate::names::{self, is_owned};

use super::operation::{Adoptee, MemberSpec, Operation, Ref};

/// The writes that take the load balancer over, and what the cloud will
/// hold after them (for the rest of the plan).
pub(super) struct Adopted {
    pub ops: Vec<Operation>,
    pub observed: Observed,
}

/// When the Service asks and no load balancer of ours exists: the first
/// observed one that a tool of `desired.adopt` made for it, taken over. When
/// one of ours was taken over but not all of it (an apply interrupted
/// midway): what of it is not ours yet (nothing else is written again).
pub(super) fn adopt(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    batch_members: bool,
) -> Option<Adopted> {
    let owner = &desired.owner_tags;
    if desired.adopt.is_empty() {
        return None;
    }
    let resumed = observed
        .load_balancers
        .iter()
        .enumerate()
        .find(|(_, lb)| is_owned(&lb.tags, owner) && lb.provisioning_status != "ERROR");
    let (index, candidate, resume) = match resumed {
        Some((i, lb)) => {
            let from = names::adopted_from(&lb.tags)?;
            (i, desired.adopt.iter().find(|c| c.from == from)?, true)
        }
        None => {
            let (i, c) = observed
                .load_balancers
                .iter()
                .enumerate()
                .filter(|(_, lb)| lb.provisioning_status != "ERROR")
                .find_map(|(i, lb)| {
                    desired
                        .adopt
                        .iter()
                        .find(|c| made_by(c, lb, desired))
                        .map(|c| (i, c))
                })?;
            (i, c, false)
        }
    };
    // Resuming, only what is not ours yet is taken over.
    let pending = |tags: &[String], name: &str| {
        !resume
            || (!tags.iter().any(|t| t == names::TOOL_TAG) && tool_named(candidate, desired, name))
    };
    let from = candidate.from;
    let mut after = observed.clone();
    let lb = &mut after.load_balancers[index];
    let lb_id = lb.id.clone();
    let adopt = |resource, id: &str, name: &str, new_name: Option<&str>, tags: Vec<String>| {
        Operation::Adopt {
            resource,
            load_balancer: lb_id.clone(),
            id: id.to_string(),
            name: name.to_string(),
            new_name: new_name.map(str::to_string),
            tags,
            from,
        }
    };
    let mut ops = Vec::new();
    if !resume {
        let mut lb_tags = desired.tags.clone();
        lb_tags.push(names::adopted_tag(from));
        ops.push(adopt(
            Adoptee::LoadBalancer,
            &lb.id,
            &lb.name,
            Some(&desired.name),
            lb_tags.clone(),
        ));
        lb.name = desired.name.clone();
        lb.tags = lb_tags;
    }

    // Listeners by protocol and port, as the plan matches them; each pool
    // through the listener it serves.
    let wanted = |protocol: &str, port: u16| {
        desired
            .listeners
            .iter()
            .find(|w| w.protocol.as_str() == protocol && w.protocol_port == port)
    };
    let metrics = desired.prometheus_listener.as_ref();
    let mut pool_wants = Vec::new();
    for l in &mut lb.listeners {
        let listener_pending = pending(&l.tags, &l.name);
        // The metrics listener, where the other tool made one on its port.
        if let Some(m) =
            metrics.filter(|m| l.protocol == "PROMETHEUS" && l.protocol_port == m.protocol_port)
        {
            if listener_pending {
                ops.push(adopt(
                    Adoptee::Listener,
                    &l.id,
                    &l.name,
                    Some(&m.name),
                    owner.clone(),
                ));
                l.name = m.name.clone();
                l.tags = owner.clone();
            }
            continue;
        }
        if let Some(w) = wanted(&l.protocol, l.protocol_port) {
            if listener_pending {
                ops.push(adopt(
                    Adoptee::Listener,
                    &l.id,
                    &l.name,
                    Some(&w.name),
                    owner.clone(),
                ));
                l.name = w.name.clone();
            }
            if let Some(pool) = &l.default_pool_id {
                pool_wants.push((pool.clone(), &w.pool));
            }
        }
        // One the Service no longer has goes in the plan, as ours.
        if listener_pending {
            l.tags = owner.clone();
        }
    }
    for p in &mut lb.pools {
        let pool_pending = pending(&p.tags, &p.name);
        let want = pool_wants
            .iter()
            .find(|(id, _)| id == &p.id)
            .map(|(_, w)| *w)
            // A pool of another protocol is replaced by the plan.
            .filter(|w| w.protocol.as_str() == p.protocol);
        if pool_pending {
            p.tags = owner.clone();
        }
        // Members are the Service's endpoints, under our names: OCCM's
        // nodes (and kuryr's differently named pods) replaced in one call,
        // before the pool is ours (a hand-made member of one of ours stays
        // through a replacement, so an interrupted adoption replaces them again).
        if let Some(members) = want
            .filter(|_| pool_pending)
            .and_then(|w| w.members.as_ref().map(|m| (w, m)))
        {
            let (w, members) = members;
            if batch_members {
                ops.push(Operation::ReplaceMembers {
                    pool: Ref::existing(&p.id, &p.name),
                    members: members
                        .iter()
                        .map(|m| MemberSpec {
                            member: *m,
                            subnet_id: w.member_subnet.clone(),
                            owned: true,
                        })
                        .collect(),
                });
                p.members = members
                    .iter()
                    .map(|m| ObservedMember {
                        id: String::new(),
                        address: m.address,
                        protocol_port: m.protocol_port,
                        weight: Some(m.weight),
                        tags: owner.clone(),
                        operating_status: String::new(),
                    })
                    .collect();
            } else {
                for m in &mut p.members {
                    m.tags = owner.clone();
                }
            }
        }
        if let Some(w) = want.filter(|_| pool_pending) {
            let tags: Vec<String> = owner.iter().chain(&w.port_tags).cloned().collect();
            ops.push(adopt(
                Adoptee::Pool,
                &p.id,
                &p.name,
                Some(&w.name),
                tags.clone(),
            ));
            p.name = w.name.clone();
            p.tags = tags;
        }
        // A monitor has no name to tell the tool's: resuming, an untagged one
        // on a pool of the tool's.
        let monitor_pending = !resume || pool_pending || !is_owned(&p.tags, owner);
        if let Some(hm) = p
            .health_monitor
            .as_mut()
            .filter(|hm| monitor_pending && !is_owned(&hm.tags, owner))
        {
            let kept = want
                .and_then(|w| w.health_monitor.as_ref())
                .is_some_and(|w| w.kind.as_str() == hm.kind);
            if kept {
                ops.push(adopt(
                    Adoptee::HealthMonitor,
                    &hm.id,
                    &p.name,
                    None,
                    owner.clone(),
                ));
            }
            hm.tags = owner.clone();
        }
    }

    // The tool's floating IP on the VIP port, unless the Service names its
    // own (spec.loadBalancerIP: the user's, never ours to delete).
    let vip_port = lb.vip_port_id.clone();
    if matches!(desired.floating_ip, FloatingIpIntent::Pool { .. }) {
        for f in &mut after.floating_ips {
            let theirs = vip_port.is_some()
                && f.port_id == vip_port
                && f.description.as_deref() == Some(&candidate.floating_ip_description);
            if theirs {
                ops.push(adopt(
                    Adoptee::FloatingIp,
                    &f.id,
                    &f.address.to_string(),
                    None,
                    owner.clone(),
                ));
                f.tags = owner.clone();
                f.description = Some(names::owner_description(owner));
            }
        }
    }
    if resume && ops.is_empty() {
        return None;
    }
    Some(Adopted {
        ops,
        observed: after,
    })
}

/// Whether a listener's or pool's name is what `candidate`'s tool gives
/// them: OCCM's `listener_<i>_<lb name>` / `pool_<i>_<lb name>`, kuryr's
/// `ns/name:PROTOCOL:PORT`.
fn tool_named(candidate: &AdoptionCandidate, desired: &DesiredLoadBalancer, name: &str) -> bool {
    match candidate.from {
        AdoptFrom::Occm => {
            (name.starts_with("listener_") || name.starts_with("pool_"))
                && name.ends_with(&format!("_{}", candidate.load_balancer_name))
        }
        AdoptFrom::Kuryr => name.starts_with(&format!(
            "{}/{}:",
            desired.service.namespace, desired.service.name
        )),
    }
}

/// Whether `lb` is what `candidate`'s tool makes for the Service: OCCM's
/// name and its tag of that name; kuryr's name (ours too) with kuryr's
/// listener names (`ns/name:PROTOCOL:PORT`) and no tag of ours.
fn made_by(
    candidate: &AdoptionCandidate,
    lb: &ObservedLoadBalancer,
    desired: &DesiredLoadBalancer,
) -> bool {
    if lb.name != candidate.load_balancer_name {
        return false;
    }
    match candidate.from {
        AdoptFrom::Occm => lb.tags.iter().any(|t| t == &lb.name),
        AdoptFrom::Kuryr => {
            let service = &desired.service;
            !lb.tags.iter().any(|t| t == names::TOOL_TAG)
                && !lb.listeners.is_empty()
                && lb.listeners.iter().all(|l| {
                    l.name
                        == format!(
                            "{}/{}:{}:{}",
                            service.namespace, service.name, l.protocol, l.protocol_port
                        )
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    use serde_json::json;

    use super::super::tests::kinds as steps;
    use super::super::{Capabilities, plan};
    use crate::config::{AdoptFrom, Settings};
    use crate::model::{
        ObservedFloatingIp, ObservedHealthMonitor, ObservedListener, ObservedLoadBalancer,
        ObservedMember, ObservedPool, Translation,
    };
    use crate::testing::memory::MemoryCloud;
    use crate::translate::{Backends, translate};

    const OCCM_NAME: &str = "kube_service_kubernetes_shop_web";

    fn translation(adopt: &[AdoptFrom], annotated: bool) -> Translation {
        let mut settings = Settings::default();
        settings.neutron_defaults.service_subnet = Some("service-subnet".into());
        settings.neutron_defaults.external_svc_subnet = Some("public-subnet".into());
        settings.adoption.from = adopt.to_vec();
        let annotations = if annotated {
            json!({"svc-lbaas.io/adopt": "true"})
        } else {
            json!({})
        };
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}}))
        .expect("a Service");
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}],
                "ports": [{"name": "http", "port": 8080}]}]}))
        .expect("Endpoints");
        let backends = Backends {
            endpoints: Some(&ep),
            endpoint_slices: &[],
        };
        translate(&settings, &svc, Some(backends)).expect("translates")
    }

    fn desired(t: &Translation) -> &crate::model::DesiredLoadBalancer {
        match t {
            Translation::LoadBalancer(d) => d,
            Translation::Skip { .. } => panic!("skipped"),
        }
    }

    fn member(id: &str, address: &str, name_tags: Vec<String>) -> ObservedMember {
        ObservedMember {
            id: id.into(),
            address: address.parse().expect("an address"),
            protocol_port: 30080,
            weight: Some(1),
            tags: name_tags,
            operating_status: String::new(),
        }
    }

    /// What OCCM leaves for shop/web: its names, its tag, nodePort members
    /// on two nodes, a TCP monitor, a floating IP on the VIP port with its
    /// description; the VIP is not the clusterIP.
    fn occm_cloud() -> MemoryCloud {
        let mut cloud = MemoryCloud::new();
        cloud.load_balancers.push(ObservedLoadBalancer {
            id: "occm-lb".into(),
            name: OCCM_NAME.into(),
            vip_address: Some("10.2.0.99".parse().expect("an address")),
            vip_subnet_id: Some("occm-subnet".into()),
            vip_port_id: Some("occm-vip-port".into()),
            provisioning_status: "ACTIVE".into(),
            operating_status: "ONLINE".into(),
            tags: vec![OCCM_NAME.into()],
            listeners: vec![ObservedListener {
                id: "occm-listener".into(),
                name: format!("listener_0_{OCCM_NAME}"),
                protocol: "TCP".into(),
                protocol_port: 80,
                default_pool_id: Some("occm-pool".into()),
                tags: vec![OCCM_NAME.into()],
                ..Default::default()
            }],
            pools: vec![ObservedPool {
                id: "occm-pool".into(),
                name: format!("pool_0_{OCCM_NAME}"),
                protocol: "TCP".into(),
                lb_algorithm: "ROUND_ROBIN".into(),
                members: vec![
                    member("m1", "192.168.0.10", Vec::new()),
                    member("m2", "192.168.0.11", Vec::new()),
                ],
                health_monitor: Some(ObservedHealthMonitor {
                    id: "occm-monitor".into(),
                    kind: "TCP".into(),
                    delay: 5,
                    timeout: 3,
                    max_retries: 1,
                    max_retries_down: 3,
                    tags: Vec::new(),
                    ..Default::default()
                }),
                tags: vec![OCCM_NAME.into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        cloud.floating_ips.push(ObservedFloatingIp {
            id: "occm-fip".into(),
            address: "172.24.4.50".parse().expect("an address"),
            port_id: Some("occm-vip-port".into()),
            network_id: Some("public".into()),
            tags: Vec::new(),
            description: Some(
                "Floating IP for Kubernetes external service shop/web from cluster kubernetes"
                    .into(),
            ),
        });
        cloud
    }

    fn observe(cloud: &MemoryCloud, t: &Translation) -> crate::model::Observed {
        let d = desired(t);
        let adoptable: Vec<String> = d
            .adopt
            .iter()
            .map(|c| c.load_balancer_name.clone())
            .collect();
        cloud.observe_adoptable(&d.owner_tags, &d.name, &adoptable, None)
    }

    #[test]
    fn an_occm_load_balancer_is_taken_over_in_place_and_its_nodes_become_pods() {
        let t = translation(&[AdoptFrom::Occm], true);
        let mut cloud = occm_cloud();
        let ops = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
        assert_eq!(
            steps(&ops),
            [
                format!("adopt loadbalancer {OCCM_NAME}"),
                format!("adopt listener listener_0_{OCCM_NAME}"),
                format!("replace members pool_0_{OCCM_NAME}"),
                format!("adopt pool pool_0_{OCCM_NAME}"),
                "adopt floatingip 172.24.4.50".to_string(),
                "delete healthmonitor shop/web:TCP:80".to_string(),
            ]
        );
        let d = desired(&t);
        cloud.apply(&ops, &d.owner_tags);
        let lb = &cloud.load_balancers[0];
        assert_eq!(cloud.load_balancers.len(), 1);
        assert_eq!((lb.id.as_str(), lb.name.as_str()), ("occm-lb", "shop/web"));
        assert_eq!(
            lb.vip_address,
            Some("10.2.0.99".parse().expect("an address"))
        );
        assert!(lb.tags.contains(&"svc-lbaas-adopted:occm".to_string()));
        let pool = &lb.pools[0];
        let addresses: Vec<String> = pool.members.iter().map(|m| m.address.to_string()).collect();
        assert_eq!(addresses, ["10.1.0.5", "10.1.0.6"]);
        assert!(pool.health_monitor.is_none());
        assert_eq!(lb.listeners[0].name, "shop/web:TCP:80");
        let fip = &cloud.floating_ips[0];
        assert_eq!(cloud.floating_ips.len(), 1);
        assert_eq!(
            (fip.id.as_str(), fip.address.to_string()),
            ("occm-fip", "172.24.4.50".to_string())
        );
        assert!(crate::names::is_owned(&fip.tags, &d.owner_tags));
        // Ours now: the next plan has nothing to do, though the VIP is not
        // the clusterIP (an adopted load balancer keeps its VIP).
        let again = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
        assert_eq!(steps(&again), Vec::<String>::new());
    }

    #[test]
    fn an_adoption_interrupted_after_any_write_is_resumed_by_the_next_apply() {
        let t = translation(&[AdoptFrom::Occm], true);
        let d = desired(&t);
        let whole = plan(&t, &observe(&occm_cloud(), &t), Capabilities::OCTAVIA).expect("plans");
        let mut done = occm_cloud();
        done.apply(&whole, &d.owner_tags);
        for cut in 1..whole.len() {
            let mut cloud = occm_cloud();
            cloud.apply(&whole[..cut], &d.owner_tags);
            let rest = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA)
                .unwrap_or_else(|e| panic!("after {cut} writes: {e}"));
            assert!(
                !steps(&rest).iter().any(|s| s.starts_with("create")),
                "after {cut} writes nothing is made anew: {:?}",
                steps(&rest)
            );
            cloud.apply(&rest, &d.owner_tags);
            let lb = &cloud.load_balancers[0];
            assert_eq!((cloud.load_balancers.len(), lb.id.as_str()), (1, "occm-lb"));
            assert_eq!(
                lb.listeners[0].name, "shop/web:TCP:80",
                "after {cut} writes"
            );
            let members: Vec<String> = lb.pools[0]
                .members
                .iter()
                .map(|m| m.address.to_string())
                .collect();
            assert_eq!(members, ["10.1.0.5", "10.1.0.6"], "after {cut} writes");
            assert_eq!(cloud.floating_ips.len(), 1);
            assert_eq!(cloud.floating_ips[0].id, "occm-fip", "after {cut} writes");
            assert!(crate::names::is_owned(
                &cloud.floating_ips[0].tags,
                &d.owner_tags
            ));
            let again = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
            assert_eq!(steps(&again), Vec::<String>::new(), "after {cut} writes");
        }
    }

    #[test]
    fn after_adoption_a_users_member_and_another_services_listener_are_left_alone() {
        let t = translation(&[AdoptFrom::Occm], true);
        let d = desired(&t);
        let mut cloud = occm_cloud();
        let ops = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
        cloud.apply(&ops, &d.owner_tags);
        let lb = &mut cloud.load_balancers[0];
        lb.pools[0]
            .members
            .push(member("by-hand", "10.1.0.99", Vec::new()));
        let mut theirs = lb.listeners[0].clone();
        theirs.id = "api-listener".into();
        theirs.name = "shop/api:TCP:8080".into();
        theirs.protocol_port = 8080;
        theirs.default_pool_id = None;
        theirs.tags = vec![
            "svc-lbaas".into(),
            "svc-lbaas-cluster:kubernetes".into(),
            "svc-lbaas-service:shop_api".into(),
        ];
        lb.listeners.push(theirs);
        let again = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
        assert_eq!(steps(&again), Vec::<String>::new());
    }

    #[test]
    fn adoption_needs_both_the_setting_and_the_annotation() {
        for (from, annotated) in [(&[][..], true), (&[AdoptFrom::Occm][..], false)] {
            let t = translation(from, annotated);
            assert!(desired(&t).adopt.is_empty());
            let ops = plan(&t, &observe(&occm_cloud(), &t), Capabilities::OCTAVIA).expect("plans");
            assert_eq!(
                steps(&ops)[0],
                "create loadbalancer shop/web",
                "{from:?} {annotated}"
            );
        }
        let t = translation(&[], true);
        assert!(
            desired(&t)
                .notes
                .iter()
                .any(|n| n.contains("[adoption] from"))
        );
    }

    #[test]
    fn a_load_balancer_of_that_name_without_occms_tag_is_not_adopted() {
        let t = translation(&[AdoptFrom::Occm], true);
        let mut cloud = occm_cloud();
        cloud.load_balancers[0].tags.clear();
        let err = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect_err("not OCCM's");
        assert!(err.to_string().contains(OCCM_NAME), "{err}");
    }

    #[test]
    fn a_kuryr_load_balancer_is_taken_over_in_place() {
        let t = translation(&[AdoptFrom::Kuryr], true);
        let mut cloud = MemoryCloud::new();
        cloud.load_balancers.push(ObservedLoadBalancer {
            id: "kuryr-lb".into(),
            name: "shop/web".into(),
            vip_address: Some("10.2.0.42".parse().expect("an address")),
            vip_subnet_id: Some("service-subnet".into()),
            vip_port_id: Some("kuryr-vip-port".into()),
            provisioning_status: "ACTIVE".into(),
            operating_status: "ONLINE".into(),
            tags: vec!["kuryr-cluster".into()],
            listeners: vec![ObservedListener {
                id: "kuryr-listener".into(),
                name: "shop/web:TCP:80".into(),
                protocol: "TCP".into(),
                protocol_port: 80,
                default_pool_id: Some("kuryr-pool".into()),
                tags: vec!["kuryr-cluster".into()],
                ..Default::default()
            }],
            pools: vec![ObservedPool {
                id: "kuryr-pool".into(),
                name: "shop/web:TCP:80".into(),
                protocol: "TCP".into(),
                lb_algorithm: "ROUND_ROBIN".into(),
                members: vec![ObservedMember {
                    protocol_port: 8080,
                    ..member("k1", "10.1.0.5", Vec::new())
                }],
                tags: vec!["kuryr-cluster".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        cloud.floating_ips.push(ObservedFloatingIp {
            id: "kuryr-fip".into(),
            address: "172.24.4.60".parse().expect("an address"),
            port_id: Some("kuryr-vip-port".into()),
            network_id: Some("public".into()),
            tags: vec!["kuryr-cluster".into()],
            description: Some("kuryr_lb".into()),
        });
        // Without adoption it is someone else's: a 409, as before.
        let plain = translation(&[], false);
        assert!(plan(&plain, &observe(&cloud, &plain), Capabilities::OCTAVIA).is_err());
        let ops = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
        assert_eq!(
            steps(&ops),
            [
                "adopt loadbalancer shop/web",
                "adopt listener shop/web:TCP:80",
                "replace members shop/web:TCP:80",
                "adopt pool shop/web:TCP:80",
                "adopt floatingip 172.24.4.60",
            ]
        );
        let d = desired(&t);
        cloud.apply(&ops, &d.owner_tags);
        assert_eq!(cloud.load_balancers[0].id, "kuryr-lb");
        assert_eq!(cloud.floating_ips[0].address.to_string(), "172.24.4.60");
        let again = plan(&t, &observe(&cloud, &t), Capabilities::OCTAVIA).expect("plans");
        assert_eq!(steps(&again), Vec::<String>::new());
    }
}
