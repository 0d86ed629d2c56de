//! Members: an Endpoints / EndpointSlices change reconciled into the pools'
//! members alone.

use super::*;
use crate::model::{Lookup, ServiceRef, Translation};
use crate::names::{self, is_owned};
use crate::openstack::OpenStackError;
use crate::plan;
use crate::translate::{self, Backends};
use cloud::Calls;
use execute::Progress;

impl Reconciler {
    /// Member reconcile from an Endpoints / EndpointSlices change alone: the
    /// pools' port tags say which Service port each one serves.
    pub async fn apply_members(
        &self,
        service: &ServiceRef,
        backends: Backends<'_>,
        options: ApplyOptions,
    ) -> Result<MembersOutcome, ReconcileError> {
        options
            .bounded(self.apply_members_within(service, backends, options))
            .await
    }

    pub(super) async fn apply_members_within(
        &self,
        service: &ServiceRef,
        backends: Backends<'_>,
        options: ApplyOptions,
    ) -> Result<MembersOutcome, ReconcileError> {
        let calls = Calls::default();
        let lock = self.lock_for(service);
        let _guard = lock.lock().await;
        let owner = names::owner_tags(&self.settings.cluster.name, service);
        let name = names::load_balancer_name(service);
        let drain = self.settings.octavia_defaults.drain_terminating;
        let lookup = Lookup {
            member_weights: translate::drains(backends, drain),
            ..Lookup::service(&name, &owner)
        };
        let observed = self.cloud.observe(&calls, lookup).await?;
        let Some(lb) = observed
            .load_balancers
            .iter()
            .find(|lb| names::serves(&lb.tags, &owner) && lb.provisioning_status != "ERROR")
        else {
            return Ok(MembersOutcome::Pending);
        };
        let family = lb.vip_address.map_or(crate::model::IpFamily::IPv4, |a| {
            crate::model::IpFamily::of(&a)
        });
        let member_subnet = self.settings.neutron_defaults.pod_subnet.clone();
        let allowed = self.member_cidrs(&calls, true).await?;
        let mut left_out = std::collections::BTreeSet::new();
        let mut wanted = Vec::new();
        for listener in lb.listeners.iter().filter(|l| is_owned(&l.tags, &owner)) {
            let Some(pool) = listener
                .default_pool_id
                .as_ref()
                .and_then(|id| lb.pools.iter().find(|p| &p.id == id))
            else {
                continue;
            };
            let Some((port_name, target)) = names::parse_port_tags(&pool.tags) else {
                tracing::warn!(service = %service, pool = %pool.name, "pool without port tags: re-apply the Service to reconcile its members");
                continue;
            };
            // The Service port's protocol: HTTPS passthrough and TCP carry TCP.
            let protocol = match listener.protocol.as_str() {
                "UDP" => crate::model::ListenerProtocol::Udp,
                "SCTP" => crate::model::ListenerProtocol::Sctp,
                _ => crate::model::ListenerProtocol::Tcp,
            };
            let mut members =
                translate::members_of_port(&port_name, &target, protocol, family, backends, drain)?;
            left_out.extend(translate::leave_out_members(
                &mut members,
                allowed.as_deref(),
            ));
            // New members go on the subnet the pool's members already use.
            let subnet = member_subnet.clone();
            wanted.push((pool.id.clone(), members, subnet));
        }
        let caps = self.capabilities(&calls).await?;
        let ops = plan::plan_members(lb, &wanted, &owner, caps);
        let mut progress = Progress::default();
        progress.load_balancer = Some(lb.id.clone());
        progress.dirty = lb.provisioning_status.starts_with("PENDING_");
        let mut done = Vec::new();
        self.execute_all(&calls, &ops, &owner, &mut progress, options, &mut done)
            .await?;
        let mut converged = !progress.dirty;
        if options.wait && progress.dirty {
            converged = match execute::settle(
                &*self.cloud,
                &self.waits,
                &calls,
                &mut progress,
                options.wait_budget(),
            )
            .await
            {
                Ok(()) => true,
                Err(OpenStackError::WaitTimeout { .. }) => false,
                Err(e) => return Err(e.into()),
            };
        }
        let observed = if done.is_empty() {
            observed
        } else {
            self.cloud.observe(&calls, lookup).await?
        };
        let action = if done.is_empty() {
            ApplyAction::Unchanged
        } else {
            ApplyAction::Updated
        };
        let mut notes = Vec::new();
        if !left_out.is_empty() {
            tracing::warn!(service = %service, left_out = left_out.len(), "endpoint addresses outside [tenancy] member_cidrs (or link-local, loopback) left out of the members");
            notes.push(translate::left_out_note(&left_out));
        }
        Ok(MembersOutcome::Applied(Box::new(ApplyResponse {
            converged,
            notes,
            ..ApplyResponse::new(
                service,
                action,
                Some((&observed, &owner, &Default::default())),
                done,
                &calls,
            )
        })))
    }
}

pub(super) fn owner_of(t: &Translation) -> Option<&[String]> {
    match t {
        Translation::LoadBalancer(d) => Some(&d.owner_tags),
        Translation::Skip { owner_tags, .. } => Some(owner_tags),
    }
}
