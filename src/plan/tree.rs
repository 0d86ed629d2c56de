//! A load balancer's tree: its listeners, pools, members and health
//! monitors, planned against what is observed (created, updated in place,
//! or re-created where a field is immutable).

use std::collections::{BTreeSet, HashSet};

use ipnet::IpNet;

use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, HealthMonitor, Member, ObservedListener,
    ObservedLoadBalancer, ObservedMember, ObservedPool,
};
use crate::names::is_owned;

use super::operation::*;

pub(super) fn create_listener(
    listener: &DesiredListener,
    caps: Capabilities,
    lb: &Ref,
    ops: &mut Vec<Operation>,
) {
    ops.push(Operation::CreateListener {
        load_balancer: lb.clone(),
        listener: Box::new(listener.clone()),
        with_pool: caps.populated_children,
    });
    if !caps.populated_children {
        create_pool(&listener.pool, caps, lb, &Ref::planned(&listener.name), ops);
    }
}

pub(super) fn create_pool(
    pool: &DesiredPool,
    caps: Capabilities,
    lb: &Ref,
    listener: &Ref,
    ops: &mut Vec<Operation>,
) {
    ops.push(Operation::CreatePool {
        load_balancer: lb.clone(),
        listener: listener.clone(),
        pool: Box::new(pool.clone()),
        populated: caps.populated_children,
    });
    if caps.populated_children {
        return;
    }
    let pool_ref = Ref::planned(&pool.name);
    let members: Vec<&Member> = pool.members.iter().flatten().collect();
    if caps.batch_members && !members.is_empty() {
        // All of a new pool's members in one call.
        ops.push(Operation::ReplaceMembers {
            pool: pool_ref.clone(),
            members: members
                .iter()
                .map(|m| MemberSpec {
                    member: **m,
                    subnet_id: pool.member_subnet.clone(),
                    owned: true,
                })
                .collect(),
        });
    } else {
        for member in members {
            ops.push(Operation::CreateMember {
                pool: pool_ref.clone(),
                member: *member,
                subnet_id: pool.member_subnet.clone(),
            });
        }
    }
    if let Some(monitor) = &pool.health_monitor {
        ops.push(Operation::CreateHealthMonitor {
            pool: pool_ref,
            monitor: monitor.clone(),
        });
    }
}

pub(super) fn plan_listeners(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    caps: Capabilities,
    lb_ref: &Ref,
    ops: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let owner = &desired.owner_tags;
    let mut removals = Vec::new();
    let mut changes = Vec::new();
    let mut creations = Vec::new();
    let mut matched: HashSet<&str> = HashSet::new();
    for want in &desired.listeners {
        let found = lb.listeners.iter().find(|l| {
            l.protocol == want.protocol.as_str() && l.protocol_port == want.protocol_port
        });
        // Octavia gives a port to one listener of a transport (an HTTP
        // listener takes TCP's port too): someone else's is a conflict.
        fn transport(p: &str) -> &str {
            if matches!(p, "UDP" | "SCTP") {
                p
            } else {
                "TCP"
            }
        }
        let taken = || {
            lb.listeners.iter().find(|l| {
                l.protocol_port == want.protocol_port
                    && transport(&l.protocol) == transport(want.protocol.as_str())
                    && !is_owned(&l.tags, owner)
            })
        };
        let found = found.or_else(taken);
        match found {
            None => create_listener(want, caps, lb_ref, &mut creations),
            Some(have) if !is_owned(&have.tags, owner) => {
                return Err(PlanError::PortTaken {
                    port: want.protocol_port,
                    protocol: want.protocol.as_str(),
                    load_balancer: format!("{} ({})", lb.name, lb.id),
                    listener: have.name.clone(),
                });
            }
            Some(have) => {
                matched.insert(have.id.as_str());
                plan_listener(
                    want,
                    have,
                    lb,
                    caps,
                    owner,
                    lb_ref,
                    &mut removals,
                    &mut changes,
                )?;
            }
        }
    }
    if let Some(want) = &desired.prometheus_listener {
        plan_prometheus_listener(
            want,
            lb,
            owner,
            lb_ref,
            &mut matched,
            &mut changes,
            &mut creations,
        )?;
    }
    // Listeners of ports the Service no longer has, then their pools.
    let mut kept_pools: HashSet<&str> = HashSet::new();
    for have in &lb.listeners {
        let owned = is_owned(&have.tags, owner);
        if owned && !matched.contains(have.id.as_str()) {
            removals.push(Operation::DeleteListener {
                id: have.id.clone(),
                name: have.name.clone(),
            });
        } else if let Some(pool) = &have.default_pool_id {
            kept_pools.insert(pool.as_str());
        }
    }
    for pool in &lb.pools {
        let deleted_already = removals
            .iter()
            .any(|op| matches!(op, Operation::DeletePool { id, .. } if id == &pool.id));
        if is_owned(&pool.tags, owner) && !kept_pools.contains(pool.id.as_str()) && !deleted_already
        {
            removals.push(Operation::DeletePool {
                id: pool.id.clone(),
                name: pool.name.clone(),
            });
        }
    }
    ops.extend(removals);
    ops.extend(changes);
    ops.extend(creations);
    Ok(())
}

/// The load balancer's PROMETHEUS listener: created, its `allowed_cidrs`
/// followed; a port another owner's listener holds (PROMETHEUS counts as
/// TCP) is a conflict.
fn plan_prometheus_listener<'a>(
    want: &crate::model::PrometheusListener,
    lb: &'a ObservedLoadBalancer,
    owner: &[String],
    lb_ref: &Ref,
    matched: &mut HashSet<&'a str>,
    changes: &mut Vec<Operation>,
    creations: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let on_port = |l: &&ObservedListener| {
        l.protocol_port == want.protocol_port && !matches!(l.protocol.as_str(), "UDP" | "SCTP")
    };
    let ours = lb
        .listeners
        .iter()
        .filter(on_port)
        .find(|l| l.protocol == "PROMETHEUS" && is_owned(&l.tags, owner));
    if let Some(have) = ours {
        matched.insert(have.id.as_str());
        let have_cidrs: BTreeSet<IpNet> = have.allowed_cidrs.iter().map(IpNet::trunc).collect();
        let want_cidrs: BTreeSet<IpNet> = want.allowed_cidrs.iter().copied().collect();
        // Never emptied: that would open the metrics to everyone.
        if have_cidrs != want_cidrs && !want_cidrs.is_empty() {
            changes.push(Operation::UpdateListener {
                id: have.id.clone(),
                name: have.name.clone(),
                update: ListenerUpdate {
                    allowed_cidrs: Some(want.allowed_cidrs.clone()),
                    ..ListenerUpdate::default()
                },
            });
        }
        return Ok(());
    }
    if let Some(have) = lb
        .listeners
        .iter()
        .filter(on_port)
        .find(|l| !is_owned(&l.tags, owner))
    {
        return Err(PlanError::PortTaken {
            port: want.protocol_port,
            protocol: "PROMETHEUS",
            load_balancer: format!("{} ({})", lb.name, lb.id),
            listener: have.name.clone(),
        });
    }
    creations.push(Operation::CreatePrometheusListener {
        load_balancer: lb_ref.clone(),
        listener: want.clone(),
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn plan_listener(
    want: &DesiredListener,
    have: &ObservedListener,
    lb: &ObservedLoadBalancer,
    caps: Capabilities,
    owner: &[String],
    lb_ref: &Ref,
    removals: &mut Vec<Operation>,
    changes: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let mut update = ListenerUpdate::default();
    if caps.allowed_cidrs {
        let have_cidrs: BTreeSet<IpNet> = have.allowed_cidrs.iter().map(IpNet::trunc).collect();
        let want_cidrs: BTreeSet<IpNet> = want.allowed_cidrs.iter().copied().collect();
        if have_cidrs != want_cidrs {
            update.allowed_cidrs = Some(want.allowed_cidrs.clone());
        }
    }
    let o = &want.options;
    let changed = |w: Option<u64>, h: Option<u64>| w.filter(|w| h != Some(*w));
    update.connection_limit = o
        .connection_limit
        .filter(|w| have.connection_limit != Some(*w));
    update.timeout_client_data = changed(o.timeout_client_data, have.timeout_client_data);
    update.timeout_member_connect = changed(o.timeout_member_connect, have.timeout_member_connect);
    update.timeout_member_data = changed(o.timeout_member_data, have.timeout_member_data);
    update.timeout_tcp_inspect = changed(o.timeout_tcp_inspect, have.timeout_tcp_inspect);
    if have
        .insert_headers
        .iter()
        .map(String::as_str)
        .ne(want.insert_headers.iter().copied())
    {
        update.insert_headers = Some(want.insert_headers.clone());
    }
    if let Some(tls) = &want.tls
        && (have.default_tls_container_ref.as_deref() != Some(&tls.default_tls_container_ref)
            || have.sni_container_refs != tls.sni_container_refs)
    {
        update.tls = Some(tls.clone());
    }
    if caps.alpn
        && !want.alpn_protocols.is_empty()
        && have
            .alpn_protocols
            .iter()
            .map(String::as_str)
            .ne(want.alpn_protocols.iter().copied())
    {
        update.alpn_protocols = Some(want.alpn_protocols.clone());
    }
    if update != ListenerUpdate::default() {
        changes.push(Operation::UpdateListener {
            id: have.id.clone(),
            name: have.name.clone(),
            update,
        });
    }

    let listener_ref = Ref::existing(&have.id, &have.name);
    let pool = have
        .default_pool_id
        .as_ref()
        .and_then(|id| lb.pools.iter().find(|p| &p.id == id));
    let Some(pool) = pool else {
        create_pool(&want.pool, caps, lb_ref, &listener_ref, changes);
        return Ok(());
    };
    if !is_owned(&pool.tags, owner) {
        return Err(PlanError::NotOwned {
            resource: "pool",
            name: pool.name.clone(),
            id: pool.id.clone(),
        });
    }
    if pool.protocol != want.pool.protocol.as_str() {
        // A pool's protocol is immutable: replace the pool.
        removals.push(Operation::DeletePool {
            id: pool.id.clone(),
            name: pool.name.clone(),
        });
        create_pool(&want.pool, caps, lb_ref, &listener_ref, changes);
        return Ok(());
    }
    plan_pool(&want.pool, pool, caps, owner, changes)
}

pub(super) fn plan_pool(
    want: &DesiredPool,
    have: &ObservedPool,
    caps: Capabilities,
    owner: &[String],
    changes: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let mut update = PoolUpdate::default();
    if have.lb_algorithm != want.lb_algorithm.as_str() {
        update.lb_algorithm = Some(want.lb_algorithm);
    }
    let timeout = want
        .persistence_timeout
        .filter(|_| caps.persistence_timeout);
    if have.session_persistence.as_deref() != want.session_persistence.map(|p| p.as_str())
        || timeout.is_some_and(|t| have.persistence_timeout != Some(t))
    {
        update.session_persistence = Some(want.session_persistence);
        update.persistence_timeout = timeout;
    }
    if !want.port_tags.iter().all(|t| have.tags.contains(t)) {
        // Record the Service port on pools created before it was recorded, or
        // whose target port changed.
        let mut tags: Vec<String> = have
            .tags
            .iter()
            .filter(|t| !crate::names::is_port_tag(t))
            .cloned()
            .collect();
        tags.extend(want.port_tags.iter().cloned());
        update.tags = Some(tags);
    }
    if update != PoolUpdate::default() {
        changes.push(Operation::UpdatePool {
            id: have.id.clone(),
            name: have.name.clone(),
            update,
        });
    }
    let pool_ref = Ref::existing(&have.id, &have.name);

    match (&want.health_monitor, &have.health_monitor) {
        // Someone else's monitor that already does what we want is left alone.
        (Some(w), Some(h)) if !is_owned(&h.tags, owner) && monitor_matches(w, h) => {}
        (Some(_), Some(h)) if !is_owned(&h.tags, owner) => {
            return Err(PlanError::NotOwned {
                resource: "health monitor",
                name: have.name.clone(),
                id: h.id.clone(),
            });
        }
        (Some(w), Some(h)) if h.kind != w.kind.as_str() => {
            changes.push(Operation::DeleteHealthMonitor {
                id: h.id.clone(),
                pool: have.name.clone(),
            });
            changes.push(Operation::CreateHealthMonitor {
                pool: pool_ref.clone(),
                monitor: w.clone(),
            });
        }
        (Some(w), Some(h)) if !monitor_matches(w, h) => {
            changes.push(Operation::UpdateHealthMonitor {
                id: h.id.clone(),
                pool: have.name.clone(),
                monitor: w.clone(),
            });
        }
        (Some(w), None) => changes.push(Operation::CreateHealthMonitor {
            pool: pool_ref.clone(),
            monitor: w.clone(),
        }),
        (None, Some(h)) if is_owned(&h.tags, owner) => {
            changes.push(Operation::DeleteHealthMonitor {
                id: h.id.clone(),
                pool: have.name.clone(),
            })
        }
        _ => {}
    }

    let Some(want_members) = &want.members else {
        return Ok(());
    };
    plan_pool_members(
        want_members,
        &want.member_subnet,
        have,
        caps,
        owner,
        changes,
    );
    Ok(())
}

/// Member changes for one pool whose members differ: one batch replacement
/// (listing the members this tool does not own, so they stay), or on the
/// legacy API one call per member.
pub(super) fn plan_pool_members(
    want_members: &BTreeSet<Member>,
    member_subnet: &Option<String>,
    have: &ObservedPool,
    caps: Capabilities,
    owner: &[String],
    changes: &mut Vec<Operation>,
) {
    let pool_ref = Ref::existing(&have.id, &have.name);
    // Both sides sorted by address and port, one merge pass: large pools
    // are the common case.
    let mut present: Vec<&ObservedMember> = have.members.iter().collect();
    present.sort_unstable_by_key(|m| (m.address, m.protocol_port));
    let mut missing: Vec<&Member> = Vec::new();
    let mut extra: Vec<&ObservedMember> = Vec::new();
    // Present with another weight (drained, or serving again).
    let mut reweighed: Vec<(&Member, &ObservedMember)> = Vec::new();
    let mut wanted = want_members.iter().peekable();
    let mut seen = present.iter().copied().peekable();
    loop {
        match (wanted.peek(), seen.peek()) {
            (Some(w), Some(p)) if w.key() == (p.address, p.protocol_port) => {
                // A weight not read (Octavia's status tree) is taken as it is.
                if p.weight.is_some_and(|weight| weight != w.weight) {
                    reweighed.push((w, p));
                }
                // Every observed copy of a wanted member counts as present.
                while seen
                    .peek()
                    .is_some_and(|p| (p.address, p.protocol_port) == w.key())
                {
                    seen.next();
                }
                wanted.next();
            }
            (Some(w), Some(p)) if w.key() < (p.address, p.protocol_port) => {
                missing.push(w);
                wanted.next();
            }
            (_, Some(m)) => {
                if is_owned(&m.tags, owner) {
                    extra.push(m);
                }
                seen.next();
            }
            (Some(w), None) => {
                missing.push(w);
                wanted.next();
            }
            (None, None) => break,
        }
    }
    if missing.is_empty() && extra.is_empty() && reweighed.is_empty() {
        return;
    }
    if caps.batch_members {
        let mut members: Vec<MemberSpec> = want_members
            .iter()
            .map(|m| MemberSpec {
                member: *m,
                subnet_id: member_subnet.clone(),
                owned: true,
            })
            .collect();
        // A batch replacement deletes whatever it does not list: list the
        // members this tool does not own, unchanged, so they stay.
        for m in &have.members {
            let member = Member {
                address: m.address,
                protocol_port: m.protocol_port,
                weight: m.weight.unwrap_or(Member::SERVING),
            };
            let wanted = want_members
                .range(Member::lowest(m.address, m.protocol_port)..)
                .next()
                .is_some_and(|w| w.key() == member.key());
            if !is_owned(&m.tags, owner) && !wanted {
                members.push(MemberSpec {
                    member,
                    subnet_id: None,
                    owned: false,
                });
            }
        }
        changes.push(Operation::ReplaceMembers {
            pool: pool_ref,
            members,
        });
    } else {
        // The legacy API: one call per member; a weight changes in place.
        for (w, p) in reweighed {
            changes.push(Operation::UpdateMember {
                pool: pool_ref.clone(),
                id: p.id.clone(),
                member: *w,
            });
        }
        for m in extra {
            changes.push(Operation::DeleteMember {
                pool: pool_ref.clone(),
                id: m.id.clone(),
                member: Member {
                    address: m.address,
                    protocol_port: m.protocol_port,
                    weight: m.weight.unwrap_or(Member::SERVING),
                },
            });
        }
        for m in missing {
            changes.push(Operation::CreateMember {
                pool: pool_ref.clone(),
                member: *m,
                subnet_id: member_subnet.clone(),
            });
        }
    }
}

/// Member changes only, for an Endpoints change without its Service: the
/// pools are given by id with the members they must have.
pub fn plan_members(
    lb: &ObservedLoadBalancer,
    wanted: &[(String, BTreeSet<Member>, Option<String>)],
    owner: &[String],
    caps: Capabilities,
) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (pool_id, members, subnet) in wanted {
        if let Some(pool) = lb.pools.iter().find(|p| &p.id == pool_id) {
            plan_pool_members(members, subnet, pool, caps, owner, &mut ops);
        }
    }
    ops
}

pub(super) fn monitor_matches(
    want: &HealthMonitor,
    have: &crate::model::ObservedHealthMonitor,
) -> bool {
    let http = match &want.http {
        None => true,
        Some(h) => {
            have.http_method.as_deref() == Some(h.http_method.as_str())
                && have.url_path.as_deref() == Some(h.url_path.as_str())
                && have.expected_codes.as_deref() == Some(h.expected_codes.as_str())
        }
    };
    have.kind == want.kind.as_str()
        && have.delay == want.delay
        && have.timeout == want.timeout
        && have.max_retries == want.max_retries
        && have.max_retries_down == want.max_retries_down
        && http
}
