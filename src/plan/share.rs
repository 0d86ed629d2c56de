//! Shared load balancers (`loadbalancer.openstack.org/load-balancer-id`
//! naming one this Service does not own), as OCCM shares them: each Service
//! owns its listeners and pools (its tags) on the shared load balancer and
//! marks the load balancer with its sharer tag; the owner leaving hands the
//! load balancer over to its first sharer, so the last Service out deletes
//! one svc-lbaas created, and never one a user made.

use crate::model::{DesiredLoadBalancer, Observed, ObservedLoadBalancer};
use crate::names::is_owned;

use super::hand_over::{allowed_sharer, op, remove_own_children, tags_of_sharer};
use super::operation::*;
use super::removal::plan_removal;
use super::tree::plan_listeners;

/// This Service's part of a load balancer it shares with others (another
/// Service's of this cluster, or one a user made): its sharer tag, then its
/// listeners and pools as on its own; nothing else of the load balancer
/// changes, floating IPs included (the answer shows the one on the VIP port).
pub(super) fn plan_shared(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    observed: &Observed,
    caps: Capabilities,
) -> Result<Vec<Operation>, PlanError> {
    let owner = &desired.owner_tags;
    let cluster = crate::names::cluster_of(owner);
    let ours = lb.tags.iter().any(|t| t == crate::names::TOOL_TAG);
    let sharer = crate::names::sharer_tag(owner);
    // svc-lbaas's for another cluster: not to be touched.
    let (Some(sharer), true) = (
        sharer,
        !ours || cluster.is_some_and(|c| lb.tags.iter().any(|t| t == c)),
    ) else {
        return Err(PlanError::NotOwned {
            resource: "load balancer",
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    };
    // The Service's namespace is the principal: the load balancer must be
    // its own namespace's, opened to it by its owner, or nobody's and
    // opened by the operator. Checked at every apply, before anything else
    // of the load balancer (its ports, its sharers) shows in an answer.
    if let Some(why) = refusal(desired, lb, cluster.unwrap_or_default()) {
        return Err(PlanError::ShareForbidden {
            id: lb.id.clone(),
            namespace: desired.service.namespace.clone(),
            why,
        });
    }
    if desired.prometheus_listener.is_some() {
        return Err(PlanError::MetricsOfShared { id: lb.id.clone() });
    }
    if lb.provisioning_status == "ERROR" {
        return Err(PlanError::SharedInError {
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    }
    if desired.vip_security_group.is_some() || !lb.vip_sg_ids.is_empty() {
        return Err(PlanError::SharedSecurityGroup {
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    }
    let mut ops = Vec::new();
    if !lb.tags.contains(&sharer) {
        let users = crate::names::users_of(&lb.tags);
        if users + 1 > desired.max_shared as usize {
            return Err(PlanError::SharedFull {
                name: lb.name.clone(),
                id: lb.id.clone(),
                users,
                max: desired.max_shared,
            });
        }
        // When it joined, so that a hand-over goes to the oldest sharer.
        let seq = lb
            .tags
            .iter()
            .filter_map(|t| crate::names::parse_joined_tag(t))
            .map(|(seq, _)| seq)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let joined = crate::names::joined_tag(seq, &sharer);
        // Named by its id: its name is its owner's, not the sharer's to see.
        ops.push(op(
            ShareStep::Join,
            Adoptee::LoadBalancer,
            lb,
            (&lb.id, &lb.id),
            None,
            std::iter::once(sharer).chain(joined).collect(),
            Vec::new(),
        ));
    }
    let lb_ref = Ref::existing(&lb.id, &lb.name);
    plan_listeners(desired, lb, caps, &lb_ref, &mut ops)?;
    // A load balancer of the Service's own from before it shared goes, with
    // its floating IP (a cascade: no write waits on it). One it shares, or
    // owns shared with others, is left when the Service is deleted.
    let gone: Vec<ObservedLoadBalancer> = observed
        .load_balancers
        .iter()
        .filter(|o| {
            o.id != lb.id && is_owned(&o.tags, owner) && crate::names::users_of(&o.tags) <= 1
        })
        .cloned()
        .collect();
    if !gone.is_empty() {
        let before = Observed {
            floating_ips: observed
                .floating_ips
                .iter()
                .filter(|f| f.port_id.is_none() || f.port_id != lb.vip_port_id)
                .cloned()
                .collect(),
            load_balancers: gone,
            ..Observed::default()
        };
        ops.extend(plan_removal(&before, owner, desired.keep_floating_ip));
    }
    Ok(ops)
}

/// Why `desired`'s namespace may not join `lb` (`None`: it may).
/// `cluster` is this cluster's tag.
fn refusal(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    cluster: &str,
) -> Option<&'static str> {
    let namespace = desired.service.namespace.as_str();
    match crate::names::holder_of_load_balancer(&lb.name, &lb.tags, cluster, &desired.occm_cluster)
    {
        crate::names::Holder::Namespace(ns) if ns == namespace => None,
        crate::names::Holder::Namespace(_)
            if lb.tags.iter().any(|t| t == crate::names::TOOL_TAG)
                && crate::names::shares_with(&lb.tags, namespace) =>
        {
            None
        }
        crate::names::Holder::Namespace(_) => Some(
            "it is another namespace's, whose owner does not open it to this one (svc-lbaas.io/share-with-namespaces)",
        ),
        crate::names::Holder::Nobody if desired.user_load_balancers_open => None,
        crate::names::Holder::Nobody => Some(
            "no tool manages it, and [tenancy] user_load_balancers_namespaces does not name this namespace",
        ),
        crate::names::Holder::Foreign => Some("whose it is cannot be told"),
    }
}

/// The owner's load balancer: its `share-with` tags as the annotation says,
/// and the parts of sharers whose namespace it no longer opens to removed
/// (each sharer's listeners and pools, then its tags).
pub(super) fn plan_openings(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    ops: &mut Vec<Operation>,
) {
    let wanted: Vec<String> = desired
        .share_with
        .iter()
        .map(|n| crate::names::share_with_tag(n))
        .collect();
    let add: Vec<String> = wanted
        .iter()
        .filter(|t| !lb.tags.contains(t))
        .cloned()
        .collect();
    let remove: Vec<String> = lb
        .tags
        .iter()
        .filter(|t| crate::names::is_share_with_tag(t) && !wanted.contains(t))
        .cloned()
        .collect();
    if !add.is_empty() || !remove.is_empty() {
        ops.push(op(
            ShareStep::Open,
            Adoptee::LoadBalancer,
            lb,
            (&lb.id, &lb.name),
            None,
            add,
            remove,
        ));
    }
    // As the load balancer will be tagged: the owner's tags, the new openings.
    let mut tags: Vec<String> = lb
        .tags
        .iter()
        .filter(|t| !crate::names::is_share_with_tag(t))
        .cloned()
        .collect();
    tags.extend(wanted);
    let Some(cluster) = crate::names::cluster_of(&desired.owner_tags) else {
        return;
    };
    for sharer in lb.tags.iter().filter(|t| crate::names::is_sharer_tag(t)) {
        if allowed_sharer(&tags, sharer) {
            continue;
        }
        if let Some((theirs, _)) = crate::names::sharer_as_owner(sharer, cluster) {
            remove_own_children(lb, &theirs, ops);
        }
        let remove = tags_of_sharer(lb, sharer).collect();
        ops.push(op(
            ShareStep::Evict,
            Adoptee::LoadBalancer,
            lb,
            (&lb.id, &lb.name),
            None,
            Vec::new(),
            remove,
        ));
    }
}

/// On a create of its own: the load balancers the Service shared until now
/// (its annotation gone) lose its listeners, pools and tag first.
pub(super) fn leave_joined(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    ops: &mut Vec<Operation>,
) {
    let owner = &desired.owner_tags;
    let joined: Vec<ObservedLoadBalancer> = observed
        .load_balancers
        .iter()
        .filter(|lb| !is_owned(&lb.tags, owner) && crate::names::serves(&lb.tags, owner))
        .take(1)
        .cloned()
        .collect();
    if !joined.is_empty() {
        let before = Observed {
            load_balancers: joined,
            ..Observed::default()
        };
        ops.extend(plan_removal(&before, owner, false));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::Settings;
    use crate::model::{Lookup, Translation};
    use crate::plan::plan;
    use crate::testing::memory::MemoryCloud;
    use crate::translate::translate;

    fn settings(max_shared: u32) -> Settings {
        let mut s = Settings::default();
        s.neutron_defaults.service_subnet = Some("service-subnet".into());
        s.neutron_defaults.external_svc_subnet = Some("public-subnet".into());
        s.load_balancer.max_shared_lb = max_shared;
        s
    }

    /// `shop/<name>` with one port, on the load balancer `shared` when given.
    fn service(name: &str, port: u16, shared: Option<&str>, max_shared: u32) -> Translation {
        let annotations: Value = match shared {
            Some(id) => json!({"loadbalancer.openstack.org/load-balancer-id": id}),
            None => json!({}),
        };
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": {"type": "LoadBalancer", "clusterIP": format!("10.2.{}.{}", port / 256, port % 256),
                "ports": [{"name": "http", "port": port, "targetPort": 8080}]},
        }))
        .unwrap();
        translate(&settings(max_shared), &svc, None).unwrap()
    }

    fn desired(t: &Translation) -> &DesiredLoadBalancer {
        match t {
            Translation::LoadBalancer(d) => d,
            Translation::Skip { .. } => panic!("a load balancer"),
        }
    }

    /// What an apply reads for `t`: by name or by id, and what it shares.
    fn observe(cloud: &MemoryCloud, t: &Translation, shared: bool) -> Observed {
        let d = desired(t);
        cloud.observe_lookup(Lookup {
            id_hint: d.load_balancer_id.as_deref(),
            shared,
            ..Lookup::by_name(&d.name, &d.owner_tags)
        })
    }

    fn converge(cloud: &mut MemoryCloud, t: &Translation) -> Vec<String> {
        let ops = plan(t, &observe(cloud, t, false), Capabilities::OCTAVIA).expect("plans");
        cloud.apply(&ops, &desired(t).owner_tags);
        super::super::tests::kinds(&ops)
    }

    fn remove(cloud: &mut MemoryCloud, t: &Translation) -> Vec<String> {
        let owner = desired(t).owner_tags.clone();
        let ops = plan_removal(&observe(cloud, t, true), &owner, false);
        cloud.apply(&ops, &owner);
        super::super::tests::kinds(&ops)
    }

    /// The first load balancer's id, made a UUID as the annotation needs.
    fn uuid_of_first(cloud: &mut MemoryCloud) -> String {
        let id = "1b000000-0000-4000-8000-00000000000a".to_string();
        cloud.load_balancers[0].id = id.clone();
        id
    }

    fn ports(cloud: &MemoryCloud, id: &str) -> Vec<(String, u16)> {
        let lb = cloud.load_balancers.iter().find(|lb| lb.id == id).unwrap();
        let mut ports: Vec<(String, u16)> = lb
            .listeners
            .iter()
            .map(|l| (l.name.clone(), l.protocol_port))
            .collect();
        ports.sort();
        ports
    }

    /// `ns/name` with `annotations`, one port.
    fn service_in(ns: &str, name: &str, port: u16, annotations: Value) -> Translation {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "annotations": annotations},
            "spec": {"type": "LoadBalancer", "clusterIP": format!("10.2.{}.{}", port / 256, port % 256),
                "ports": [{"name": "http", "port": port, "targetPort": 8080}]},
        }))
        .unwrap();
        translate(&settings(8), &svc, None).unwrap()
    }

    fn hand_over_to(ops: &[Operation]) -> Option<String> {
        ops.iter().find_map(|op| match op {
            Operation::Share {
                step: ShareStep::HandOver,
                resource: Adoptee::LoadBalancer,
                new_name,
                ..
            } => new_name.clone(),
            _ => None,
        })
    }

    #[test]
    fn another_namespace_joins_only_where_the_owner_opens_and_is_evicted_when_it_narrows() {
        let mut cloud = MemoryCloud::new();
        let lb_id = "loadbalancer.openstack.org/load-balancer-id";
        let open = json!({"svc-lbaas.io/share-with-namespaces": "team"});
        let web = service_in("shop", "web", 80, open);
        converge(&mut cloud, &web);
        let id = uuid_of_first(&mut cloud);
        assert!(
            cloud.load_balancers[0]
                .tags
                .contains(&"svc-lbaas-share-with:team".into())
        );
        let api = service_in("team", "api", 8080, json!({lb_id: id}));
        assert_eq!(
            converge(&mut cloud, &api)[0],
            format!("join loadbalancer {id}")
        );
        let b = service_in("shop", "b", 8081, json!({lb_id: id}));
        converge(&mut cloud, &b);
        // A namespace the owner did not open to: refused before anything.
        let evil = service_in("evil", "x", 8082, json!({lb_id: id}));
        let e = plan(&evil, &observe(&cloud, &evil, false), Capabilities::OCTAVIA)
            .expect_err("refused");
        assert!(matches!(e, PlanError::ShareForbidden { .. }), "{e}");
        // The owner leaving hands over to a sharer of its own namespace
        // first (team/api joined earlier), and cannot keep the floating IP
        // that goes with it.
        let owner = desired(&web).owner_tags.clone();
        let seen = observe(&cloud, &web, true);
        assert_eq!(
            hand_over_to(&plan_removal(&seen, &owner, false)).as_deref(),
            Some("shop/b")
        );
        // With only team/api, to team/api.
        let mut alone = seen.clone();
        alone.load_balancers[0]
            .tags
            .retain(|t| !t.ends_with("shop_b"));
        assert_eq!(
            hand_over_to(&plan_removal(&alone, &owner, false)).as_deref(),
            Some("team/api")
        );
        let kept = super::super::check_removal(&seen, &owner, true).expect_err("refused");
        assert!(kept.to_string().contains("team/api, shop/b"), "{kept}");
        // It narrows: team's part goes, and the heir is shop/b.
        let narrowed = service_in("shop", "web", 80, json!({}));
        let steps = converge(&mut cloud, &narrowed);
        assert!(
            steps.contains(&"delete listener team/api:TCP:8080".to_string()),
            "{steps:?}"
        );
        assert!(
            steps.iter().any(|s| s.starts_with("evict loadbalancer")),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("share with loadbalancer")),
            "{steps:?}"
        );
        assert!(
            !cloud.load_balancers[0]
                .tags
                .iter()
                .any(|t| t.contains("team")),
            "{:?}",
            cloud.load_balancers[0].tags
        );
        assert!(converge(&mut cloud, &narrowed).is_empty());
    }

    #[test]
    fn an_owner_re_creates_its_shared_load_balancer_in_error_and_its_sharer_is_told() {
        let mut cloud = MemoryCloud::new();
        let web = service("web", 80, None, 8);
        converge(&mut cloud, &web);
        let id = uuid_of_first(&mut cloud);
        let api = service("api", 8080, Some(&id), 8);
        converge(&mut cloud, &api);
        cloud.load_balancers[0].provisioning_status = "ERROR".into();
        let e = plan(&api, &observe(&cloud, &api, false), Capabilities::OCTAVIA).expect_err("told");
        assert!(matches!(e, PlanError::SharedInError { .. }), "{e}");
        // A sharer deleting while it is in ERROR: nothing to write (its part
        // goes with the owner's cascade), no failure.
        let owner = desired(&api).owner_tags.clone();
        let seen = observe(&cloud, &api, true);
        assert_eq!(seen.load_balancers.len(), 1, "it sees the one it shares");
        assert!(plan_removal(&seen, &owner, false).is_empty());
        let steps = converge(&mut cloud, &web);
        assert_eq!(steps[0], "delete loadbalancer shop/web", "{steps:?}");
        assert!(
            steps.contains(&"create loadbalancer shop/web".to_string()),
            "{steps:?}"
        );
    }

    #[test]
    fn a_second_service_puts_its_listener_on_the_first_ones_load_balancer_and_leaves_alone() {
        let mut cloud = MemoryCloud::new();
        let web = service("web", 80, None, 8);
        converge(&mut cloud, &web);
        let id = uuid_of_first(&mut cloud);
        let fip = cloud.floating_ips[0].clone();

        let api = service("api", 8080, Some(&id), 8);
        assert_eq!(
            converge(&mut cloud, &api),
            [
                format!("join loadbalancer {id}"),
                "create listener shop/api:TCP:8080".into(),
                "create pool shop/api:TCP:8080".into()
            ]
        );
        assert_eq!(cloud.load_balancers.len(), 1, "no load balancer of its own");
        assert_eq!(cloud.floating_ips.len(), 1, "no floating IP of its own");
        assert!(
            cloud.load_balancers[0]
                .tags
                .contains(&"svc-lbaas-sharer:shop_api".to_string())
        );
        assert_eq!(
            ports(&cloud, &id),
            [
                ("shop/api:TCP:8080".into(), 8080),
                ("shop/web:TCP:80".into(), 80)
            ]
        );
        // Converged: a re-apply of either changes nothing.
        assert!(converge(&mut cloud, &api).is_empty());
        assert!(converge(&mut cloud, &web).is_empty());

        // Its removal takes its listener and pool and its tag, nothing else.
        assert_eq!(
            remove(&mut cloud, &api),
            [
                "delete listener shop/api:TCP:8080".to_string(),
                "delete pool shop/api:TCP:8080".into(),
                format!("leave loadbalancer {id}")
            ]
        );
        assert_eq!(ports(&cloud, &id), [("shop/web:TCP:80".into(), 80)]);
        assert_eq!(cloud.floating_ips, [fip]);
        assert_eq!(crate::names::users_of(&cloud.load_balancers[0].tags), 1);
    }

    #[test]
    fn a_service_moving_onto_a_shared_load_balancer_and_back_leaves_nothing_behind() {
        let mut cloud = MemoryCloud::new();
        converge(&mut cloud, &service("web", 80, None, 8));
        let id = uuid_of_first(&mut cloud);
        // api has a load balancer of its own, then joins web's.
        converge(&mut cloud, &service("api", 8080, None, 8));
        assert_eq!(
            (cloud.load_balancers.len(), cloud.floating_ips.len()),
            (2, 2)
        );
        let joined = service("api", 8080, Some(&id), 8);
        let steps = converge(&mut cloud, &joined);
        assert!(
            steps.contains(&"delete loadbalancer shop/api".to_string()),
            "{steps:?}"
        );
        assert_eq!(
            (cloud.load_balancers.len(), cloud.floating_ips.len()),
            (1, 1)
        );
        assert_eq!(
            ports(&cloud, &id),
            [
                ("shop/api:TCP:8080".into(), 8080),
                ("shop/web:TCP:80".into(), 80)
            ]
        );
        assert!(converge(&mut cloud, &joined).is_empty());
        // Its annotation gone: its part of web's goes as its own is made.
        let alone = service("api", 8080, None, 8);
        let steps = converge(&mut cloud, &alone);
        assert_eq!(
            steps[..4],
            [
                "delete listener shop/api:TCP:8080".to_string(),
                "delete pool shop/api:TCP:8080".into(),
                format!("leave loadbalancer {id}"),
                "create loadbalancer shop/api".into()
            ]
        );
        assert_eq!(ports(&cloud, &id), [("shop/web:TCP:80".into(), 80)]);
        assert_eq!(crate::names::users_of(&cloud.load_balancers[0].tags), 1);
        assert!(converge(&mut cloud, &alone).is_empty());
    }

    #[test]
    fn a_port_taken_on_the_shared_load_balancer_is_refused_naming_it_and_changes_nothing() {
        let mut cloud = MemoryCloud::new();
        converge(&mut cloud, &service("web", 80, None, 8));
        let id = uuid_of_first(&mut cloud);
        let before = cloud.clone();
        let dup = service("dup", 80, Some(&id), 8);
        let e = plan(&dup, &observe(&cloud, &dup, false), Capabilities::OCTAVIA).unwrap_err();
        assert!(matches!(e, PlanError::PortTaken { port: 80, .. }), "{e}");
        assert!(e.to_string().contains("port 80/TCP"), "{e}");
        assert!(e.to_string().contains("shop/web:TCP:80"), "{e}");
        assert_eq!(cloud, before);
    }

    #[test]
    fn max_shared_lb_bounds_the_services_on_one_load_balancer() {
        let mut cloud = MemoryCloud::new();
        converge(&mut cloud, &service("web", 80, None, 2));
        let id = uuid_of_first(&mut cloud);
        converge(&mut cloud, &service("api", 81, Some(&id), 2));
        let third = service("third", 82, Some(&id), 2);
        let e = plan(
            &third,
            &observe(&cloud, &third, false),
            Capabilities::OCTAVIA,
        )
        .unwrap_err();
        assert_eq!(
            e,
            PlanError::SharedFull {
                name: "shop/web".into(),
                id: id.clone(),
                users: 2,
                max: 2
            }
        );
    }

    #[test]
    fn the_owner_leaving_first_hands_the_load_balancer_and_its_floating_ip_to_a_sharer() {
        let mut cloud = MemoryCloud::new();
        let web = service("web", 80, None, 8);
        converge(&mut cloud, &web);
        let id = uuid_of_first(&mut cloud);
        let address = cloud.floating_ips[0].address;
        let api = service("api", 8080, Some(&id), 8);
        converge(&mut cloud, &api);

        assert_eq!(
            remove(&mut cloud, &web),
            [
                "delete listener shop/web:TCP:80",
                "delete pool shop/web:TCP:80",
                &format!("hand over floatingip {address}"),
                "hand over loadbalancer shop/web",
            ]
        );
        let lb = &cloud.load_balancers[0];
        assert_eq!(
            (lb.id.as_str(), lb.name.as_str()),
            (id.as_str(), "shop/api")
        );
        assert!(
            is_owned(&lb.tags, &desired(&api).owner_tags),
            "{:?}",
            lb.tags
        );
        assert_eq!(crate::names::users_of(&lb.tags), 1, "{:?}", lb.tags);
        assert_eq!(ports(&cloud, &id), [("shop/api:TCP:8080".into(), 8080)]);
        assert!(is_owned(
            &cloud.floating_ips[0].tags,
            &desired(&api).owner_tags
        ));
        // Its new owner keeps it as it is (the VIP is the first owner's)...
        assert!(converge(&mut cloud, &api).is_empty());
        // ...and, the last one out, deletes it with its floating IP.
        let removal = remove(&mut cloud, &api);
        assert_eq!(
            removal,
            [
                &format!("delete floatingip {address}"),
                "delete loadbalancer shop/api"
            ]
        );
        assert!(cloud.load_balancers.is_empty() && cloud.floating_ips.is_empty());
    }

    #[test]
    fn a_load_balancer_a_user_made_is_shared_and_never_deleted() {
        let mut cloud = MemoryCloud::new();
        cloud.load_balancers.push(ObservedLoadBalancer {
            id: "1b000000-0000-4000-8000-00000000000b".into(),
            name: "made-by-hand".into(),
            provisioning_status: "ACTIVE".into(),
            vip_address: Some("10.2.0.200".parse().unwrap()),
            vip_port_id: Some("user-port".into()),
            tags: vec!["team-a".into()],
            ..Default::default()
        });
        let api = service("api", 8080, Some("1b000000-0000-4000-8000-00000000000b"), 8);
        assert_eq!(
            converge(&mut cloud, &api)[0],
            "join loadbalancer 1b000000-0000-4000-8000-00000000000b"
        );
        assert!(converge(&mut cloud, &api).is_empty());
        remove(&mut cloud, &api);
        assert_eq!(cloud.load_balancers.len(), 1);
        assert_eq!(cloud.load_balancers[0].tags, ["team-a"]);
        assert!(cloud.load_balancers[0].listeners.is_empty());
    }

    #[test]
    fn another_clusters_load_balancer_is_not_shared_and_an_owned_shared_one_is_not_recreated() {
        let mut cloud = MemoryCloud::new();
        converge(&mut cloud, &service("web", 80, None, 8));
        let id = uuid_of_first(&mut cloud);
        let mut other = cloud.clone();
        for t in &mut other.load_balancers[0].tags {
            if t.starts_with("svc-lbaas-cluster:") {
                *t = "svc-lbaas-cluster:elsewhere".into();
            }
        }
        let api = service("api", 8080, Some(&id), 8);
        let e = plan(&api, &observe(&other, &api, false), Capabilities::OCTAVIA).unwrap_err();
        assert!(matches!(e, PlanError::NotOwned { .. }), "{e}");

        converge(&mut cloud, &api);
        // The owner's flavor changes: a new load balancer would take api's listener.
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": {
                "loadbalancer.openstack.org/flavor-id": "1b000000-0000-4000-8000-000000000009"}},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.80",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }))
        .unwrap();
        let web = translate(&settings(8), &svc, None).unwrap();
        let e = plan(&web, &observe(&cloud, &web, false), Capabilities::OCTAVIA).unwrap_err();
        assert!(
            matches!(e, PlanError::SharedRecreate { others: 1, .. }),
            "{e}"
        );
    }
}
