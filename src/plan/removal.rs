//! A Service's removal: its floating IPs, its own load balancers by cascade,
//! and its part of the ones it shares (left, or handed over to a sharer).

use std::collections::HashSet;

use crate::model::{Observed, ObservedLoadBalancer};
use crate::names::is_owned;

use super::operation::*;
use super::{hand_over, security_group};

/// A removal that keeps the floating IP refused while the Service owns a
/// load balancer others share: the address goes with it to the next owner.
pub fn check_removal(
    observed: &Observed,
    owner_tags: &[String],
    keep_floating_ip: bool,
) -> Result<(), PlanError> {
    hand_over::check_keep(observed, owner_tags, keep_floating_ip)
}

/// Removes everything this tool created for the Service: floating IPs first
/// (a kept one only disassociated, a user's only disassociated), then each
/// owned load balancer by cascade delete. From a load balancer other
/// Services share (`load-balancer-id`) only this Service's listeners and
/// pools go: it leaves one it shares, and hands one it owns over to its
/// first sharer (name, tags and floating IP), so the last Service out
/// deletes it, and never one a user made.
pub fn plan_removal(
    observed: &Observed,
    owner_tags: &[String],
    keep_floating_ip: bool,
) -> Vec<Operation> {
    let sharer = crate::names::sharer_tag(owner_tags);
    let mut ops = Vec::new();
    let mut shared_ports: HashSet<&str> = HashSet::new();
    let mut owned: Vec<&ObservedLoadBalancer> = Vec::new();
    for lb in &observed.load_balancers {
        let joined = sharer.as_ref().is_some_and(|s| lb.tags.contains(s));
        let is_owner = is_owned(&lb.tags, owner_tags);
        // An owner that hands nothing over (no allowed sharer, or in ERROR,
        // where only a delete is taken) cascades, the sharers' parts with it.
        let error = lb.provisioning_status == "ERROR";
        if is_owner && !hand_over::hands_over(lb) {
            owned.push(lb);
            continue;
        }
        // (One nobody re-creates, a user's or OCCM's, keeps the sharer's
        // part: its removal is tried, and fails while it is in ERROR.)
        let recreated = lb.tags.iter().any(|t| t == crate::names::TOOL_TAG);
        if !is_owner && (!joined || (error && recreated)) {
            continue;
        }
        hand_over::remove_own_children(lb, owner_tags, &mut ops);
        shared_ports.extend(lb.vip_port_id.as_deref());
        if is_owner {
            hand_over::hand_over(lb, observed, owner_tags, &mut ops);
        } else {
            ops.push(hand_over::op(
                ShareStep::Leave,
                Adoptee::LoadBalancer,
                lb,
                (&lb.id, &lb.id),
                None,
                Vec::new(),
                sharer
                    .iter()
                    .flat_map(|s| hand_over::tags_of_sharer(lb, s))
                    .collect(),
            ));
        }
    }
    let vip_ports: HashSet<&str> = owned
        .iter()
        .filter_map(|lb| lb.vip_port_id.as_deref())
        .collect();
    // A user's VIP port (port-id) outlives the load balancer with the
    // floating IP the user bound to it.
    let user_ports: HashSet<&str> = owned
        .iter()
        .filter(|lb| lb.tags.iter().any(|t| t == crate::names::USER_PORT_TAG))
        .filter_map(|lb| lb.vip_port_id.as_deref())
        .collect();
    let mut fip_ops = Vec::new();
    for fip in unique_floating_ips(observed) {
        let port = fip.port_id.as_deref();
        if port.is_some_and(|p| shared_ports.contains(p)) {
            // A shared load balancer's stays with it.
            continue;
        }
        let bound = port.is_some_and(|p| vip_ports.contains(p) && !user_ports.contains(p));
        if is_owned(&fip.tags, owner_tags) {
            if !keep_floating_ip {
                fip_ops.push(delete_fip(fip));
            } else if fip.port_id.is_some() {
                fip_ops.push(disassociate_fip(fip));
            }
        } else if bound {
            fip_ops.push(disassociate_fip(fip));
        }
    }
    fip_ops.append(&mut ops);
    for lb in &owned {
        fip_ops.push(Operation::DeleteLoadBalancer {
            id: lb.id.clone(),
            name: lb.name.clone(),
        });
    }
    // Its VIP security group, once the load balancer (its port) is gone.
    if !owned.is_empty() || observed.load_balancers.is_empty() {
        fip_ops.extend(security_group::removal(observed, owner_tags));
    }
    fip_ops
}
