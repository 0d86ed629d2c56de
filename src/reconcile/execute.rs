//! The one interpreter of `plan::Operation`: each operation becomes the
//! cloud call that does it, over [`LoadBalancing`] (`reconcile/cloud.rs`). Between load balancer writes the
//! tree must settle; ids of what a plan creates are learnt on the way
//! ([`Progress`]) for the operations after it.

use std::collections::HashMap;
use std::time::Duration;

use super::board::StatusBoard;
use super::cloud::{Calls, LoadBalancing};
use super::wait::WaitKind;
use crate::openstack::OpenStackError;
use crate::plan::{Adoptee, Operation, Ref};

/// What the execution of a plan has learnt so far: ids of what it created.
#[derive(Debug, Default)]
pub struct Progress {
    pub load_balancer: Option<String>,
    pub vip_port: Option<String>,
    listeners: HashMap<String, String>,
    pools: HashMap<String, String>,
    /// The VIP security group this plan created.
    pub security_group: Option<String>,
    /// A load balancer write awaits ACTIVE before the next one.
    pub dirty: bool,
    /// The last load balancer write, for learning how long it takes.
    pub last_write: Option<WaitKind>,
    /// A load balancer being deleted, to wait out before a re-create.
    pub deleting: Option<String>,
    /// Ids of what each operation touched, in order, for the answer.
    pub ids: Vec<Option<String>>,
    /// Floating IPs this plan made, as Neutron answered them.
    pub made_floating_ips: Vec<crate::model::ObservedFloatingIp>,
    /// An operation of this plan may have changed a floating IP (deleted,
    /// bound, unbound or retagged one: see [`keeps_floating_ips`]).
    pub moved_floating_ips: bool,
}

impl Progress {
    /// The floating IPs there are now, when what was observed before this
    /// plan and what it made tell (nothing else of theirs was written).
    pub fn floating_ips_now(
        &self,
        before: &[crate::model::ObservedFloatingIp],
    ) -> Option<Vec<crate::model::ObservedFloatingIp>> {
        if self.moved_floating_ips {
            return None;
        }
        let mut now = before.to_vec();
        now.extend(self.made_floating_ips.iter().cloned());
        Some(now)
    }
}

type Result<T> = std::result::Result<T, OpenStackError>;

fn resolve(r: &Ref, map: &HashMap<String, String>) -> Result<String> {
    r.id.clone()
        .or_else(|| map.get(&r.name).cloned())
        .ok_or_else(|| {
            OpenStackError::Precondition(format!(
                "{} was to be created earlier in this plan but was not",
                r.name
            ))
        })
}

fn lb_id(r: &Ref, progress: &Progress) -> Result<String> {
    r.id.clone()
        .or_else(|| progress.load_balancer.clone())
        .ok_or_else(|| {
            OpenStackError::Precondition(format!(
                "load balancer {} was to be created earlier in this plan but was not",
                r.name
            ))
        })
}

fn security_group(r: &Ref, progress: &Progress) -> Result<String> {
    r.id.clone()
        .or_else(|| progress.security_group.clone())
        .ok_or_else(|| {
            OpenStackError::Precondition(format!(
                "security group {} was to be created earlier in this plan but was not",
                r.name
            ))
        })
}

fn vip_port(r: &Ref, progress: &Progress) -> Result<String> {
    r.id.clone()
        .or_else(|| progress.vip_port.clone())
        .ok_or_else(|| {
            OpenStackError::Precondition(format!("the VIP port of {} is not known yet", r.name))
        })
}

/// Before a load balancer write: the previous one must have settled.
pub async fn settle(
    cloud: &dyn LoadBalancing,
    board: &StatusBoard,
    calls: &Calls,
    progress: &mut Progress,
    timeout: Duration,
) -> Result<()> {
    if let Some(id) = progress.deleting.take() {
        board.wait(cloud, calls, &id, DELETE, true, timeout).await?;
    }
    if progress.dirty
        && let Some(id) = progress.load_balancer.clone()
    {
        let kind = progress.last_write.unwrap_or(UPDATE);
        board.wait(cloud, calls, &id, kind, false, timeout).await?;
        progress.dirty = false;
    }
    Ok(())
}

/// One lock per shared load balancer id, for the read and write of its
/// tags by this process's applies (replicas can still race: see README).
fn share_lock(id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::LazyLock<
        std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.entry(id.to_string()).or_default().clone()
}

/// Deletes a load balancer. Octavia refuses it while it is PENDING_* (a
/// racing replica's copy still being created, or one it is changing): that
/// is waited out, then the delete sent again; gone meanwhile is done.
async fn delete_when_settled(
    cloud: &dyn LoadBalancing,
    board: &StatusBoard,
    calls: &Calls,
    id: &str,
    timeout: Duration,
) -> Result<()> {
    let deleted = cloud.delete_load_balancer(calls, id).await;
    if !matches!(&deleted, Err(e) if e.is_conflict()) {
        return deleted;
    }
    match board.wait(cloud, calls, id, UPDATE, false, timeout).await {
        Ok(()) | Err(OpenStackError::LoadBalancerError { .. }) => {
            cloud.delete_load_balancer(calls, id).await
        }
        // Another replica deleted it meanwhile.
        Err(e) if e.is_vanished() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A floating IP from the first of `subnets` with an address left: a
/// subnet found by name or tags that is exhausted passes to the next match
/// (as OCCM does).
async fn create_floating_ip_on_first_free(
    cloud: &dyn LoadBalancing,
    calls: &Calls,
    network: &str,
    port: &str,
    subnets: &[Option<String>],
    description: &str,
) -> Result<Option<crate::model::ObservedFloatingIp>> {
    for (i, subnet) in subnets.iter().enumerate() {
        match cloud
            .create_floating_ip(calls, network, port, subnet, description)
            .await
        {
            Err(e) if e.is_address_exhausted() && i + 1 < subnets.len() => {
                tracing::info!(subnet = ?subnet, "no floating IP left on the subnet: trying the next match");
            }
            other => return other,
        }
    }
    Ok(None)
}

/// A shared load balancer's tags changed by a delta on what it carries at
/// the write (another Service may have joined since the plan), under a lock
/// for this process's writers; with a new name on a hand-over.
async fn change_shared_tags(
    cloud: &dyn LoadBalancing,
    calls: &Calls,
    id: &str,
    new_name: Option<&str>,
    add: &[String],
    remove: &[String],
) -> Result<()> {
    let lock = share_lock(id);
    let _held = lock.lock().await;
    let mut tags: Vec<String> = cloud
        .load_balancer_tags(calls, id)
        .await?
        .into_iter()
        .filter(|t| !remove.contains(t))
        .collect();
    for t in add {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    cloud
        .adopt(calls, Adoptee::LoadBalancer, id, new_name, &tags)
        .await
}

/// Whether an operation leaves every floating IP as it was (a made one is
/// known from its answer): a load balancer's deletion unbinds those on its
/// VIP port, adoption retags them.
fn keeps_floating_ips(op: &Operation) -> bool {
    matches!(
        op,
        Operation::CreateLoadBalancer { .. }
            | Operation::CreateListener { .. }
            | Operation::CreatePrometheusListener { .. }
            | Operation::UpdateListener { .. }
            | Operation::DeleteListener { .. }
            | Operation::CreatePool { .. }
            | Operation::UpdatePool { .. }
            | Operation::DeletePool { .. }
            | Operation::ReplaceMembers { .. }
            | Operation::CreateMember { .. }
            | Operation::UpdateMember { .. }
            | Operation::DeleteMember { .. }
            | Operation::CreateHealthMonitor { .. }
            | Operation::UpdateHealthMonitor { .. }
            | Operation::DeleteHealthMonitor { .. }
            | Operation::CreateFloatingIp { .. }
    )
}

/// The kinds of wait that follow no one operation of this plan.
pub const DELETE: WaitKind = WaitKind::Delete;
pub const UPDATE: WaitKind = WaitKind::Update;

/// Executes one operation; records what it created in `progress`. Answers
/// the id of what it touched.
pub async fn execute(
    cloud: &dyn LoadBalancing,
    board: &StatusBoard,
    calls: &Calls,
    op: &Operation,
    owner: &[String],
    progress: &mut Progress,
    timeout: Duration,
) -> Result<Option<String>> {
    if op.is_load_balancer_write() {
        settle(cloud, board, calls, progress, timeout).await?;
    }
    if !keeps_floating_ips(op) {
        progress.moved_floating_ips = true;
    }
    let touched = match op {
        Operation::CreateLoadBalancer {
            load_balancer,
            populated,
            additional_vips,
            vip_security_group,
        } => {
            let groups = match vip_security_group {
                Some(g) => vec![security_group(g, progress)?],
                None => Vec::new(),
            };
            let _under_way = board.create_under_way();
            let created = cloud
                .create_load_balancer(
                    calls,
                    load_balancer,
                    owner,
                    *populated,
                    *additional_vips,
                    &groups,
                )
                .await?;
            progress.load_balancer = created.id.clone();
            progress.vip_port = created.vip_port_id;
            progress.listeners.extend(created.listeners);
            created.id
        }
        Operation::DeleteLoadBalancer { id, .. } => {
            match delete_when_settled(cloud, board, calls, id, timeout).await {
                Ok(()) => progress.deleting = Some(id.clone()),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            if progress.load_balancer.as_deref() == Some(id) {
                progress.load_balancer = None;
            }
            Some(id.clone())
        }
        Operation::CreateListener {
            load_balancer,
            listener,
            with_pool,
        } => {
            let lb = lb_id(load_balancer, progress)?;
            progress.load_balancer.get_or_insert(lb.clone());
            let id = cloud
                .create_listener(calls, &lb, listener, owner, *with_pool)
                .await?;
            if let Some(i) = &id {
                progress.listeners.insert(listener.name.clone(), i.clone());
            }
            id
        }
        Operation::CreatePrometheusListener {
            load_balancer,
            listener,
        } => {
            let lb = lb_id(load_balancer, progress)?;
            progress.load_balancer.get_or_insert(lb.clone());
            cloud
                .create_prometheus_listener(calls, &lb, listener, owner)
                .await?
        }
        Operation::UpdateListener { id, update, .. } => {
            cloud.update_listener(calls, id, update).await?;
            Some(id.clone())
        }
        Operation::DeleteListener { id, .. } => {
            cloud.delete_listener(calls, id).await?;
            Some(id.clone())
        }
        Operation::CreatePool {
            load_balancer,
            listener,
            pool,
            populated,
        } => {
            let _ = lb_id(load_balancer, progress)?;
            let listener_id = resolve(listener, &progress.listeners)?;
            let id = cloud
                .create_pool(calls, &listener_id, pool, owner, *populated)
                .await?;
            if let Some(i) = &id {
                progress.pools.insert(pool.name.clone(), i.clone());
            }
            id
        }
        Operation::UpdatePool { id, update, .. } => {
            cloud.update_pool(calls, id, update).await?;
            Some(id.clone())
        }
        Operation::DeletePool { id, .. } => {
            cloud.delete_pool(calls, id).await?;
            Some(id.clone())
        }
        Operation::ReplaceMembers { pool, members } => {
            let pool_id = resolve(pool, &progress.pools)?;
            cloud
                .replace_members(calls, &pool_id, members, owner)
                .await?;
            Some(pool_id)
        }
        Operation::CreateMember {
            pool,
            member,
            subnet_id,
        } => {
            let pool_id = resolve(pool, &progress.pools)?;
            cloud
                .create_member(calls, &pool_id, member, subnet_id, owner)
                .await?
        }
        Operation::UpdateMember { pool, id, member } => {
            let pool_id = resolve(pool, &progress.pools)?;
            cloud
                .update_member(calls, &pool_id, id, member, owner)
                .await?;
            Some(id.clone())
        }
        Operation::DeleteMember { pool, id, .. } => {
            let pool_id = resolve(pool, &progress.pools)?;
            cloud.delete_member(calls, &pool_id, id).await?;
            Some(id.clone())
        }
        Operation::CreateHealthMonitor { pool, monitor } => {
            let pool_id = resolve(pool, &progress.pools)?;
            cloud
                .create_health_monitor(calls, &pool_id, monitor, owner)
                .await?
        }
        Operation::UpdateHealthMonitor { id, monitor, .. } => {
            cloud.update_health_monitor(calls, id, monitor).await?;
            Some(id.clone())
        }
        Operation::DeleteHealthMonitor { id, .. } => {
            cloud.delete_health_monitor(calls, id).await?;
            Some(id.clone())
        }
        Operation::CreateFloatingIp {
            vip_port: port,
            subnet_id,
            network_id,
            subnet_match,
            more_subnets,
            ..
        } => {
            let port = vip_port(port, progress)?;
            // Made while its load balancer provisions, once the creates
            // this process sent before are answered (a burst's floating
            // IPs would otherwise slow every create queued at Octavia).
            if progress.dirty && progress.last_write == Some(WaitKind::Create) {
                board.after_earlier_creates(timeout).await;
            }
            if subnet_match.is_some() && subnet_id.is_none() {
                return Err(OpenStackError::Precondition(
                    "the floating subnet was to be found before the first write".into(),
                ));
            }
            let network = cloud.floating_network(calls, network_id, subnet_id).await?;
            let description = crate::names::owner_description(owner);
            let mut candidates = vec![subnet_id.clone()];
            candidates.extend(more_subnets.iter().cloned().map(Some));
            let made = create_floating_ip_on_first_free(
                cloud,
                calls,
                &network,
                &port,
                &candidates,
                &description,
            )
            .await?;
            let id = made.as_ref().map(|f| f.id.clone());
            progress.made_floating_ips.extend(made);
            id
        }
        Operation::AssociateFloatingIp {
            id,
            address,
            vip_port: port,
        } => {
            let id = id.clone().ok_or_else(|| {
                OpenStackError::Precondition(format!("floating IP {address} was not looked up"))
            })?;
            let port = vip_port(port, progress)?;
            cloud.set_floating_ip_port(calls, &id, Some(&port)).await?;
            Some(id)
        }
        Operation::DisassociateFloatingIp { id, .. } => {
            cloud.set_floating_ip_port(calls, id, None).await?;
            Some(id.clone())
        }
        Operation::DeleteFloatingIp { id, .. } => {
            cloud.delete_floating_ip(calls, id).await?;
            Some(id.clone())
        }
        Operation::CreateSecurityGroup { group } => {
            let description = crate::names::owner_description(owner);
            let id = cloud
                .create_security_group(calls, group, &description)
                .await?;
            progress.security_group = Some(id.clone());
            Some(id)
        }
        Operation::UpdateSecurityGroup {
            id, add, remove, ..
        } => {
            cloud.add_security_group_rules(calls, id, add).await?;
            for rule in remove {
                cloud.delete_security_group_rule(calls, rule).await?;
            }
            Some(id.clone())
        }
        Operation::SetVipSecurityGroup {
            load_balancer,
            group,
        } => {
            let lb = lb_id(load_balancer, progress)?;
            progress.load_balancer.get_or_insert(lb.clone());
            let groups = match group {
                Some(g) => vec![security_group(g, progress)?],
                None => Vec::new(),
            };
            cloud.set_vip_security_groups(calls, &lb, &groups).await?;
            Some(lb)
        }
        Operation::DeleteSecurityGroup { id, .. } => {
            // Octavia lets go of it on the VIP port only once its write settled.
            settle(cloud, board, calls, progress, timeout).await?;
            cloud.delete_security_group(calls, id).await?;
            Some(id.clone())
        }
        // A shared load balancer changing hands: its tags as they are now,
        // changed by the delta (another Service may have joined since the
        // plan), under a lock for this process's writers.
        Operation::Share {
            resource: Adoptee::LoadBalancer,
            load_balancer,
            id,
            new_name,
            add,
            remove,
            ..
        } => {
            progress.load_balancer.get_or_insert(load_balancer.clone());
            change_shared_tags(cloud, calls, id, new_name.as_deref(), add, remove).await?;
            Some(id.clone())
        }
        // Its floating IP: the next owner's description.
        Operation::Share { id, add, .. } => {
            cloud
                .adopt(calls, Adoptee::FloatingIp, id, None, add)
                .await?;
            Some(id.clone())
        }
        // A take-over: one PUT of name and tags (a floating IP's description).
        Operation::Adopt {
            resource,
            load_balancer,
            id,
            new_name,
            tags,
            ..
        } => {
            if *resource != Adoptee::FloatingIp {
                // Not ours until now: the waits learn its id here.
                progress.load_balancer.get_or_insert(load_balancer.clone());
            }
            cloud
                .adopt(calls, *resource, id, new_name.as_deref(), tags)
                .await?;
            Some(id.clone())
        }
    };
    // Every load balancer write but a delete leaves the tree PENDING_* for a while.
    if op.is_load_balancer_write() && !matches!(op, Operation::DeleteLoadBalancer { .. }) {
        progress.dirty = true;
        progress.last_write = Some(WaitKind::after(op));
    }
    progress.ids.push(touched.clone());
    Ok(touched)
}
