//! Pure planning: `plan(desired, observed)` -> the ordered OpenStack operations
//! that converge what OpenStack has onto what the Service needs. No I/O.
//!
//! Rules: create the whole tree in one fully-populated request where the API
//! offers it; update mutable fields in place; delete and re-create only what is
//! immutable (VIP, listener protocol/port, pool protocol, monitor type); one
//! batch member replacement per pool whose members differ; never delete what
//! lacks this tool's ownership tags.

use std::net::IpAddr;

use crate::model::{
    DesiredLoadBalancer, FloatingIpIntent, FloatingIpLookup, Observed, ObservedFloatingIp,
    ObservedLoadBalancer, Translation,
};
use crate::names::{self, is_owned};

mod adopt;
mod hand_over;
mod operation;
mod removal;
mod security_group;
mod share;
#[cfg(test)]
mod tests;
mod tree;

pub use operation::*;
pub use removal::{check_removal, plan_removal};
pub use tree::plan_members;
use tree::{create_listener, plan_listeners};

/// Plans one Service: converge for a load balancer, remove for a skip.
pub fn plan(
    translation: &Translation,
    observed: &Observed,
    caps: Capabilities,
) -> Result<Vec<Operation>, PlanError> {
    match translation {
        Translation::LoadBalancer(desired) => plan_load_balancer(desired, observed, caps),
        Translation::Skip {
            owner_tags,
            keep_floating_ip,
            ..
        } => {
            hand_over::check_keep(observed, owner_tags, *keep_floating_ip)?;
            Ok(plan_removal(observed, owner_tags, *keep_floating_ip))
        }
    }
}

fn api_name(caps: Capabilities) -> &'static str {
    if caps == Capabilities::NEUTRON_LBAAS {
        "Neutron LBaaS v2"
    } else {
        "load-balancer"
    }
}

fn check_capabilities(desired: &DesiredLoadBalancer, caps: Capabilities) -> Result<(), PlanError> {
    let api = api_name(caps);
    if !caps.vip_sg_ids && desired.vip_security_group.is_some() {
        return Err(PlanError::Unsupported {
            what: "spec.loadBalancerSourceRanges as a security group on the VIP port (vip_sg_ids, Octavia API 2.29; the ovn provider has no allowed_cidrs)".into(),
            api,
        });
    }
    if !caps.octavia_protocols && desired.vip.port_id.is_some() {
        return Err(PlanError::Unsupported {
            what: "a VIP port (loadbalancer.openstack.org/port-id)".into(),
            api,
        });
    }
    if !caps.prometheus_listeners && desired.prometheus_listener.is_some() {
        return Err(PlanError::Unsupported {
            what: "a PROMETHEUS listener (svc-lbaas.io/prometheus-listener-port; Octavia API 2.25)"
                .into(),
            api,
        });
    }
    // Its tags would go into the legacy objects' 255-character description.
    if !caps.octavia_protocols && !desired.share_with.is_empty() {
        return Err(PlanError::Unsupported {
            what: "sharing with other namespaces (svc-lbaas.io/share-with-namespaces)".into(),
            api,
        });
    }
    for l in &desired.listeners {
        if !caps.octavia_protocols {
            use crate::model::{HealthMonitorType, ListenerProtocol, PoolProtocol};
            let what = if matches!(l.protocol, ListenerProtocol::Udp | ListenerProtocol::Sctp) {
                Some(format!("{} listeners ({})", l.protocol.as_str(), l.name))
            } else if matches!(l.pool.protocol, PoolProtocol::Proxy | PoolProtocol::ProxyV2) {
                Some(format!(
                    "{} pools (loadbalancer.openstack.org/proxy-protocol)",
                    l.pool.protocol.as_str()
                ))
            } else {
                l.pool
                    .health_monitor
                    .as_ref()
                    .filter(|hm| {
                        !matches!(hm.kind, HealthMonitorType::Tcp | HealthMonitorType::Http)
                    })
                    .map(|hm| format!("{} health monitors", hm.kind.as_str()))
            };
            let what = what.or_else(|| {
                (!l.insert_headers.is_empty()).then(|| {
                    "inserted headers (loadbalancer.openstack.org/x-forwarded-*)".to_string()
                })
            });
            if let Some(what) = what {
                return Err(PlanError::Unsupported { what, api });
            }
        }
        if !caps.sctp && l.protocol == crate::model::ListenerProtocol::Sctp {
            return Err(PlanError::Unsupported {
                what: format!("SCTP listeners ({}; Octavia API 2.23)", l.name),
                api,
            });
        }
        if !caps.allowed_cidrs && !l.allowed_cidrs.is_empty() {
            return Err(PlanError::Unsupported {
                what: "spec.loadBalancerSourceRanges (listener allowed_cidrs)".into(),
                api,
            });
        }
        let o = &l.options;
        if !caps.listener_timeouts
            && (o.timeout_client_data.is_some()
                || o.timeout_member_connect.is_some()
                || o.timeout_member_data.is_some()
                || o.timeout_tcp_inspect.is_some())
        {
            return Err(PlanError::Unsupported {
                what: "listener timeouts (loadbalancer.openstack.org/timeout-*)".into(),
                api,
            });
        }
    }
    Ok(())
}

/// Converges the owned load balancer (creating it when there is none).
pub fn plan_load_balancer(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    caps: Capabilities,
) -> Result<Vec<Operation>, PlanError> {
    check_capabilities(desired, caps)?;
    // What an older Octavia lacks and a Service can do without: left out.
    let fitted;
    let desired = if (!caps.alpn || !caps.persistence_timeout)
        && desired
            .listeners
            .iter()
            .any(|l| !l.alpn_protocols.is_empty() || l.pool.persistence_timeout.is_some())
    {
        let mut d = desired.clone();
        for l in &mut d.listeners {
            if !caps.alpn {
                l.alpn_protocols.clear();
            }
            if !caps.persistence_timeout {
                l.pool.persistence_timeout = None;
            }
        }
        fitted = d;
        &fitted
    } else {
        desired
    };
    // Another tool's load balancer for this Service, taken over: its
    // objects become ours in place, then the plan converges them. Octavia
    // only: the legacy API's objects take no tags.
    if caps.octavia_protocols
        && let Some(adopted) = adopt::adopt(desired, observed, caps.batch_members)
    {
        let mut ops = adopted.ops;
        ops.extend(plan_load_balancer(desired, &adopted.observed, caps)?);
        return Ok(ops);
    }
    let owner = &desired.owner_tags;
    // `load-balancer-id` naming a load balancer this Service does not own:
    // its listeners and pools go on it, shared.
    if let Some(target) = desired.load_balancer_id.as_ref().and_then(|id| {
        observed
            .load_balancers
            .iter()
            .find(|lb| &lb.id == id && !is_owned(&lb.tags, owner))
    }) {
        return share::plan_shared(desired, target, observed, caps);
    }
    let (mut owned, foreign): (Vec<&ObservedLoadBalancer>, Vec<&ObservedLoadBalancer>) = observed
        .load_balancers
        .iter()
        .partition(|lb| is_owned(&lb.tags, owner));
    // Replicas that raced may have made several: all of them keep the same one.
    owned.sort_by(|a, b| a.survival_key().cmp(&b.survival_key()));
    // (One it shares is not in the way: it is left below.)
    if owned.is_empty()
        && let Some(lb) = foreign
            .iter()
            .find(|lb| !crate::names::serves(&lb.tags, owner))
    {
        return Err(PlanError::NotOwned {
            resource: "load balancer",
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    }

    // The one to keep: healthy and with the right VIP if there is such a one;
    // any other owned copy (left by a crash) goes.
    let keep = owned
        .iter()
        .copied()
        .filter(|lb| lb.provisioning_status != "ERROR")
        .find(|lb| !needs_recreate(desired, lb, caps))
        .or_else(|| {
            owned
                .iter()
                .copied()
                .find(|lb| lb.provisioning_status != "ERROR")
        });
    let recreate = keep.is_none_or(|lb| needs_recreate(desired, lb, caps));
    // The one load-balancer-id names is never re-created (its id would change).
    if let Some(lb) =
        keep.filter(|lb| recreate && desired.load_balancer_id.as_deref() == Some(lb.id.as_str()))
    {
        return Err(PlanError::NamedRecreate {
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    }
    let mut ops = Vec::new();
    let mut gone_vip_ports = Vec::new();
    for lb in &owned {
        if recreate || keep.is_some_and(|k| k.id != lb.id) {
            // A cascade delete would take other Services' listeners too.
            // (One in ERROR takes only a delete: its owner re-creates it.)
            let users = crate::names::users_of(&lb.tags);
            if users > 1 && lb.provisioning_status != "ERROR" {
                return Err(PlanError::SharedRecreate {
                    name: lb.name.clone(),
                    id: lb.id.clone(),
                    others: users - 1,
                });
            }
            ops.push(Operation::DeleteLoadBalancer {
                id: lb.id.clone(),
                name: lb.name.clone(),
            });
            gone_vip_ports.extend(lb.vip_port_id.clone());
        }
    }

    let lb_ref;
    let vip_port;
    let mut tree_ops = Vec::new();
    let (sg_ops, group) = security_group::plan_group(desired, observed);
    ops.splice(0..0, sg_ops);
    match keep.filter(|_| !recreate) {
        Some(lb) => {
            lb_ref = Ref::existing(&lb.id, &lb.name);
            vip_port = match &lb.vip_port_id {
                Some(p) => Ref::existing(p, &lb.name),
                None => Ref::planned(&lb.name),
            };
            share::plan_openings(desired, lb, &mut tree_ops);
            plan_listeners(desired, lb, caps, &lb_ref, &mut tree_ops)?;
            security_group::plan_binding(
                desired,
                observed,
                lb,
                &lb_ref,
                group.as_ref(),
                &mut tree_ops,
            )?;
        }
        None => {
            share::leave_joined(desired, observed, &mut ops);
            ops.push(Operation::CreateLoadBalancer {
                load_balancer: Box::new(desired.clone()),
                populated: caps.fully_populated_create,
                additional_vips: caps.additional_vips,
                vip_security_group: group.clone(),
            });
            lb_ref = Ref::planned(&desired.name);
            // A user's port (port-id) is known before the load balancer is.
            vip_port = match &desired.vip.port_id {
                Some(p) => Ref::existing(p, &desired.name),
                None => Ref::planned(&desired.name),
            };
            if !caps.fully_populated_create {
                for listener in &desired.listeners {
                    create_listener(listener, caps, &lb_ref, &mut tree_ops);
                }
            }
            if let Some(listener) = &desired.prometheus_listener {
                tree_ops.push(Operation::CreatePrometheusListener {
                    load_balancer: lb_ref.clone(),
                    listener: listener.clone(),
                });
            }
        }
    }
    // Neutron's floating IP calls need no wait for the load balancer: they go
    // right after its creation, while Octavia provisions.
    plan_floating_ips(desired, observed, &vip_port, &gone_vip_ports, &mut ops)?;
    ops.extend(tree_ops);
    Ok(ops)
}

/// Immutable differences: VIP address or subnet, additional VIPs, flavor, AZ.
fn needs_recreate(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    caps: Capabilities,
) -> bool {
    let differs = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().is_some_and(|w| have.as_ref() != Some(w))
    };
    // One taken over from another tool keeps the VIP that tool chose, and
    // one named by load-balancer-id its own (it may have been handed over).
    let adopted = crate::names::is_adopted(&lb.tags)
        || desired.load_balancer_id.as_deref() == Some(lb.id.as_str());
    let vip_differs = !adopted
        && desired
            .vip
            .address
            .is_some_and(|a| lb.vip_address != Some(a));
    let additional_differs = caps.additional_vips
        && (desired.additional_vips.len() != lb.additional_vips.len()
            || desired
                .additional_vips
                .iter()
                .filter_map(|v| v.address)
                .any(|a| !lb.additional_vips.contains(&a)));
    // A VIP port named: that port, whatever its address.
    let port_differs = desired
        .vip
        .port_id
        .as_ref()
        .is_some_and(|p| lb.vip_port_id.as_ref() != Some(p));
    let vip_differs = vip_differs && desired.vip.port_id.is_none();
    port_differs
        || vip_differs
        || additional_differs
        || (!adopted && differs(&desired.vip.subnet_id, &lb.vip_subnet_id))
        || (!adopted && differs(&desired.vip.network_id, &lb.vip_network_id))
        || differs(&desired.flavor_id, &lb.flavor_id)
        || differs(&desired.availability_zone, &lb.availability_zone)
        || provider_differs(desired.provider.as_deref(), lb.provider.as_deref())
}

/// Whether the configured provider is not the load balancer's (immutable:
/// a change re-creates it). `octavia` is Octavia's alias of `amphora`; a
/// load balancer read without one (the legacy API) is taken as it is.
fn provider_differs(want: Option<&str>, have: Option<&str>) -> bool {
    fn canonical(p: &str) -> &str {
        if p == "octavia" { "amphora" } else { p }
    }
    match (want, have) {
        (Some(w), Some(h)) => canonical(w) != canonical(h),
        _ => false,
    }
}

/// Floating IP operations: removals first, then the association or allocation.
fn plan_floating_ips(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    vip_port: &Ref,
    gone_vip_ports: &[String],
    ops: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let owner = &desired.owner_tags;
    let bound = |fip: &ObservedFloatingIp| vip_port.id.is_some() && fip.port_id == vip_port.id;
    let free = |fip: &ObservedFloatingIp| {
        fip.port_id
            .as_ref()
            .is_none_or(|p| gone_vip_ports.contains(p))
    };
    let fips = unique_floating_ips(observed);
    let mut removals = Vec::new();
    let mut binding = Vec::new();
    let user_id = match (&desired.floating_ip, &observed.user_floating_ip) {
        (FloatingIpIntent::User { .. }, FloatingIpLookup::Found(f)) => Some(f.id.as_str()),
        _ => None,
    };
    // A VIP port of the user's (port-id) keeps the floating IP the user bound
    // to it, as OCCM does: it is the Service's, nothing is allocated.
    let users_port = desired.vip.port_id.is_some() && vip_port.id == desired.vip.port_id;
    if users_port
        && matches!(desired.floating_ip, FloatingIpIntent::Pool { .. })
        && fips.iter().any(|f| !is_owned(&f.tags, owner) && bound(f))
    {
        for fip in fips.iter().filter(|f| is_owned(&f.tags, owner)) {
            removals.push(delete_fip(fip));
        }
        ops.extend(removals);
        return Ok(());
    }
    // Unowned floating IPs on our VIP that are not the wanted one: disassociate.
    for fip in &fips {
        if !is_owned(&fip.tags, owner) && bound(fip) && Some(fip.id.as_str()) != user_id {
            removals.push(disassociate_fip(fip));
        }
    }
    let owned: Vec<&ObservedFloatingIp> = fips
        .iter()
        .copied()
        .filter(|f| is_owned(&f.tags, owner) && Some(f.id.as_str()) != user_id)
        .collect();
    let release = |fip: &ObservedFloatingIp, removals: &mut Vec<Operation>| {
        if !desired.keep_floating_ip {
            removals.push(delete_fip(fip));
        } else if fip.port_id.is_some() {
            removals.push(disassociate_fip(fip));
        }
    };
    match &desired.floating_ip {
        FloatingIpIntent::None => {
            for fip in owned {
                release(fip, &mut removals);
            }
        }
        FloatingIpIntent::Pool {
            subnet_id,
            network_id,
            subnet_match,
        } => {
            let usable = |f: &&ObservedFloatingIp| {
                network_id
                    .as_ref()
                    .is_none_or(|n| f.network_id.as_ref() == Some(n))
            };
            let primary = owned
                .iter()
                .copied()
                .filter(usable)
                .find(|f| bound(f))
                .or_else(|| owned.iter().copied().filter(usable).find(|f| free(f)))
                .or_else(|| owned.iter().copied().find(usable));
            for fip in &owned {
                if primary.is_none_or(|p| p.id != fip.id) {
                    // A copy left by a crash, or one on the wrong network.
                    removals.push(delete_fip(fip));
                }
            }
            match primary {
                Some(fip) if bound(fip) => {}
                Some(fip) => binding.push(Operation::AssociateFloatingIp {
                    id: Some(fip.id.clone()),
                    address: fip.address,
                    vip_port: vip_port.clone(),
                }),
                None => binding.push(Operation::CreateFloatingIp {
                    vip_port: vip_port.clone(),
                    subnet_id: subnet_id.clone(),
                    network_id: network_id.clone(),
                    description: format!("svc-lbaas: Service {}", desired.service),
                    subnet_match: subnet_match.clone().map(Box::new),
                    more_subnets: Vec::new(),
                }),
            }
        }
        FloatingIpIntent::User { address } => {
            for fip in owned {
                release(fip, &mut removals);
            }
            let address = IpAddr::V4(*address);
            match &observed.user_floating_ip {
                FloatingIpLookup::NotLookedUp => binding.push(Operation::AssociateFloatingIp {
                    id: None,
                    address,
                    vip_port: vip_port.clone(),
                }),
                FloatingIpLookup::NotFound => {
                    return Err(PlanError::FloatingIpNotFound { address });
                }
                FloatingIpLookup::Found(fip) => {
                    // An address allocated or kept for a Service of another
                    // namespace (or cluster) is not this one's to take.
                    let cluster = names::cluster_of(owner).unwrap_or_default();
                    match names::holder_of_floating_ip(
                        &fip.tags,
                        fip.description.as_deref(),
                        cluster,
                    ) {
                        names::Holder::Namespace(ns) if ns == desired.service.namespace => {}
                        names::Holder::Nobody => {}
                        _ => return Err(PlanError::FloatingIpTaken { address }),
                    }
                    if fip.port_id.is_some() && !bound(fip) && !free(fip) {
                        return Err(PlanError::FloatingIpInUse { address });
                    }
                    if !bound(fip) {
                        binding.push(Operation::AssociateFloatingIp {
                            id: Some(fip.id.clone()),
                            address: fip.address,
                            vip_port: vip_port.clone(),
                        });
                    }
                }
            }
        }
    }
    ops.extend(removals);
    ops.extend(binding);
    Ok(())
}
