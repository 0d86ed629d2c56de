//! Leaving a shared load balancer: a sharer's own listeners and pools
//! removed, its tags taken off, and an owner's load balancer handed over to
//! the sharer next in line (an allowed one: the owner's namespace first,
//! then the oldest).

use crate::model::{Observed, ObservedLoadBalancer};
use crate::names::is_owned;

use super::operation::*;

/// Whether a sharer's namespace may stay on a load balancer whose tags
/// (its owner's Service tag and `share-with` tags) say who may.
pub(super) fn allowed_sharer(lb_tags: &[String], sharer: &str) -> bool {
    let owner_ns =
        crate::names::service_tag(lb_tags).and_then(crate::names::namespace_of_service_tag);
    crate::names::namespace_of_sharer_tag(sharer)
        .is_some_and(|ns| Some(ns) == owner_ns || crate::names::shares_with(lb_tags, ns))
}

/// The sharers of `lb` allowed to stay, those of the owner's namespace
/// first (a sharer of another namespace taking over would leave them on a
/// load balancer no longer their namespace's), then oldest first (by their
/// joined tag; those from before it first, by name).
pub(super) fn heirs(lb: &ObservedLoadBalancer) -> Vec<&String> {
    let owner_ns =
        crate::names::service_tag(&lb.tags).and_then(crate::names::namespace_of_service_tag);
    let mut heirs: Vec<(bool, u32, &String)> = lb
        .tags
        .iter()
        .filter(|t| crate::names::is_sharer_tag(t) && allowed_sharer(&lb.tags, t))
        .map(|t| {
            let seq = lb
                .tags
                .iter()
                .filter_map(|j| crate::names::parse_joined_tag(j))
                .find(|(_, s)| s == t)
                .map_or(0, |(seq, _)| seq);
            (crate::names::namespace_of_sharer_tag(t) != owner_ns, seq, t)
        })
        .collect();
    heirs.sort();
    heirs.into_iter().map(|(_, _, t)| t).collect()
}

/// A sharer's tags on `lb`: its sharer tag and when it joined.
pub(super) fn tags_of_sharer<'a>(
    lb: &'a ObservedLoadBalancer,
    sharer: &str,
) -> impl Iterator<Item = String> + 'a {
    let sharer = sharer.to_string();
    lb.tags
        .iter()
        .filter(move |t| {
            **t == sharer || crate::names::parse_joined_tag(t).is_some_and(|(_, s)| s == sharer)
        })
        .cloned()
}

/// Whether an owner leaving `lb` hands it over (and the address on it):
/// not in ERROR (only a delete is taken then), and with a sharer to take it.
pub(super) fn hands_over(lb: &ObservedLoadBalancer) -> bool {
    lb.provisioning_status != "ERROR" && !heirs(lb).is_empty()
}

/// A removal keeping the floating IP, of an owner that would hand its load
/// balancer (and so the address on it) to a sharer: refused, naming them.
pub(super) fn check_keep(
    observed: &Observed,
    owner: &[String],
    keep_floating_ip: bool,
) -> Result<(), PlanError> {
    if !keep_floating_ip {
        return Ok(());
    }
    for lb in &observed.load_balancers {
        if is_owned(&lb.tags, owner) && hands_over(lb) {
            let sharers = lb
                .tags
                .iter()
                .filter(|t| crate::names::is_sharer_tag(t))
                .map(|t| crate::names::sharer_shown(t))
                .collect();
            return Err(PlanError::KeptWithSharers {
                name: lb.name.clone(),
                id: lb.id.clone(),
                sharers,
            });
        }
    }
    Ok(())
}

/// A [`Operation::Share`] on `lb` (or on its floating IP): `target` is the
/// changed object's id and name.
pub(super) fn op(
    step: ShareStep,
    resource: Adoptee,
    lb: &ObservedLoadBalancer,
    target: (&str, &str),
    new_name: Option<&str>,
    add: Vec<String>,
    remove: Vec<String>,
) -> Operation {
    Operation::Share {
        step,
        resource,
        load_balancer: lb.id.clone(),
        id: target.0.to_string(),
        name: target.1.to_string(),
        new_name: new_name.map(str::to_string),
        add,
        remove,
    }
}

/// This Service's listeners and pools on a load balancer others use too.
pub(super) fn remove_own_children(
    lb: &ObservedLoadBalancer,
    owner: &[String],
    ops: &mut Vec<Operation>,
) {
    for l in lb.listeners.iter().filter(|l| is_owned(&l.tags, owner)) {
        ops.push(Operation::DeleteListener {
            id: l.id.clone(),
            name: l.name.clone(),
        });
    }
    for p in lb.pools.iter().filter(|p| is_owned(&p.tags, owner)) {
        ops.push(Operation::DeletePool {
            id: p.id.clone(),
            name: p.name.clone(),
        });
    }
}

/// The owner leaves a shared load balancer: its oldest sharer of a
/// namespace the owner opened it to takes the name, the owner tags and the
/// floating IP on the VIP port (the owner's openings go: the new owner's
/// next apply writes its own).
pub(super) fn hand_over(
    lb: &ObservedLoadBalancer,
    observed: &Observed,
    owner: &[String],
    ops: &mut Vec<Operation>,
) {
    let next = heirs(lb).into_iter().next();
    let cluster = crate::names::cluster_of(owner);
    let Some((next, (next_owner, next_name))) = next.and_then(|n| {
        let cluster = cluster?;
        Some((n, crate::names::sharer_as_owner(n, cluster)?))
    }) else {
        return;
    };
    // The floating IP first: handed over, it is found on the VIP port by a
    // retry whichever name the load balancer has by then.
    for fip in unique_floating_ips(observed) {
        if fip.port_id.is_some() && fip.port_id == lb.vip_port_id && is_owned(&fip.tags, owner) {
            ops.push(op(
                ShareStep::HandOver,
                Adoptee::FloatingIp,
                lb,
                (&fip.id, &fip.address.to_string()),
                Some(&next_name),
                next_owner.clone(),
                Vec::new(),
            ));
        }
    }
    // The next owner's Service tag for this one's (and its uid), its sharer tag gone.
    let mut remove: Vec<String> = lb
        .tags
        .iter()
        .filter(|t| crate::names::is_uid_tag(t) || (owner.contains(t) && !next_owner.contains(t)))
        .cloned()
        .collect();
    remove.extend(tags_of_sharer(lb, next));
    remove.extend(
        lb.tags
            .iter()
            .filter(|t| crate::names::is_share_with_tag(t))
            .cloned(),
    );
    let add = next_owner
        .iter()
        .filter(|t| !lb.tags.contains(t))
        .cloned()
        .collect();
    ops.push(op(
        ShareStep::HandOver,
        Adoptee::LoadBalancer,
        lb,
        (&lb.id, &lb.name),
        Some(&next_name),
        add,
        remove,
    ));
}
