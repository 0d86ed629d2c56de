//! The stateless reconciler: translate the Service, observe what OpenStack
//! has (found by name and ownership tags, never by remembered ids), plan with
//! the pure core, execute (`execute.rs`, the only place that writes, over the
//! port of `cloud.rs`), wait for ACTIVE (`wait.rs`), and answer with the
//! status to write back. A 409 from a load balancer another
//! replica is changing is waited out, then the Service is observed and
//! planned again. Requests for one Service are serialised in this process.
//!
//! Every use case is here, one file a verb, each answering typed results
//! that REST and gRPC only encode: `apply.rs` (plan, apply, get),
//! `delete.rs`, `members.rs` (an Endpoints / EndpointSlices change),
//! `certificates.rs`, `sync.rs` (a full list; orphans), `events.rs` (watch
//! events); `references.rs` holds the checks an apply makes on what a
//! Service names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{Api, Settings};
use crate::model::{FloatingIpIntent, Lookup, Member, Observed, ServiceRef, Translation};
use crate::names;
use crate::openstack::OpenStackError;
use crate::plan::{self, OperationSummary};
use crate::translate;

mod answer;
mod apply;
pub mod board;
mod certificates;
pub mod cloud;
mod delete;
pub mod events;
pub mod execute;
pub mod gateway;
mod members;
mod references;
mod request;
pub mod sync;
#[cfg(test)]
mod tests;
pub mod wait;

pub use crate::error::ReconcileError;
use crate::metrics::{Subject, Verb};
pub use answer::*;
use board::StatusBoard;
use cloud::Calls;
pub use cloud::{CloudPort, LoadBalancing, Observing, ProgressEvent};
use execute::Progress;
use request::timed;
pub use request::{ApplyInput, ApplyOptions, DEFAULT_TIMEOUT};

/// How many times a plan is redone after a 409 before giving up.
const REPLANS: usize = 3;

/// How many more passes an apply makes when it finds copies another replica made.
const RACE_PASSES: usize = 3;

pub struct Reconciler {
    pub cloud: Arc<dyn CloudPort>,
    /// The waits of this process, sharing their status reads.
    pub waits: StatusBoard,
    pub settings: Settings,
    locks: Mutex<HashMap<ServiceRef, Arc<tokio::sync::Mutex<()>>>>,
}

impl Reconciler {
    /// A reconciler over `cloud`: the OpenStack client, or a test double.
    pub fn new(cloud: impl CloudPort + 'static, settings: Settings) -> Reconciler {
        Reconciler::shared(Arc::new(cloud), settings)
    }

    /// A reconciler over a cloud other reconcilers use too (replicas, in tests).
    pub fn shared(cloud: Arc<dyn CloudPort>, settings: Settings) -> Reconciler {
        Reconciler {
            cloud,
            waits: StatusBoard::default(),
            settings,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Executes `ops` in order, each one's summary (with the id it touched)
    /// into `done`; stops at the first error.
    /// Executes `ops` in order, each one's summary (with the id it touched)
    /// into `done`; stops at the first error.
    async fn execute_all(
        &self,
        calls: &Calls,
        ops: &[plan::Operation],
        owner: &[String],
        progress: &mut Progress,
        options: ApplyOptions,
        done: &mut Vec<OperationSummary>,
    ) -> Result<(), OpenStackError> {
        for op in ops {
            calls.report(ProgressEvent::Started(op.summary()));
            let id = execute::execute(
                &*self.cloud,
                &self.waits,
                calls,
                op,
                owner,
                progress,
                options.wait_budget(),
            )
            .await?;
            let mut summary = op.summary();
            summary.id = summary.id.or(id);
            calls.report(ProgressEvent::Finished(summary.clone()));
            done.push(summary);
        }
        Ok(())
    }

    /// A floating IP to create from a subnet chosen by name or tags
    /// (`floating-subnet`, `floating-subnet-tags`): the floating network's
    /// subnets that match, read before any write; none is a 400 naming the
    /// annotation, so nothing is half-created.
    async fn find_floating_subnets(
        &self,
        calls: &Calls,
        ops: &mut [plan::Operation],
    ) -> Result<(), ReconcileError> {
        for op in ops.iter_mut() {
            let plan::Operation::CreateFloatingIp {
                subnet_id,
                network_id: Some(network),
                subnet_match: Some(m),
                more_subnets,
                ..
            } = op
            else {
                continue;
            };
            if subnet_id.is_some() {
                continue;
            }
            let found = self.cloud.matching_subnets(calls, network, m).await?;
            let mut ids = found.into_iter().map(|(id, _)| id);
            let Some(first) = ids.next() else {
                return Err(crate::translate::TranslateError::annotation(
                    translate::annotation::FLOATING_SUBNET,
                    format!(
                        "no subnet of the floating network {network} matches {} (a class's or [LoadBalancer]'s when the Service names none)",
                        m.describe()
                    ),
                )
                .into());
            };
            *subnet_id = Some(first);
            *more_subnets = ids.collect();
        }
        Ok(())
    }

    /// What the cloud offers, from its API version (read once by the client).
    async fn capabilities(&self, calls: &Calls) -> Result<plan::Capabilities, OpenStackError> {
        let minor = self.cloud.octavia_minor(calls).await?;
        let mut caps = plan::Capabilities::discovered(self.cloud.api(), minor);
        caps.populated_children =
            self.settings.octavia_defaults.nested_creates && self.cloud.api() == Api::Octavia;
        Ok(caps)
    }

    fn lock_for(&self, service: &ServiceRef) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(service.clone()).or_default().clone()
    }

    async fn observe_for(
        &self,
        calls: &Calls,
        translation: &Translation,
    ) -> Result<Observed, ReconcileError> {
        self.observe_reading(calls, translation, false).await
    }

    /// An observation; `after_writes`: right after this apply's own writes
    /// (see [`Lookup::after_writes`]), the floating IPs left for the caller.
    async fn observe_reading(
        &self,
        calls: &Calls,
        translation: &Translation,
        after_writes: bool,
    ) -> Result<Observed, ReconcileError> {
        let adoptable: Vec<String>;
        let removed: String;
        let lookup = match translation {
            Translation::LoadBalancer(d) => {
                adoptable = d
                    .adopt
                    .iter()
                    .map(|c| c.load_balancer_name.clone())
                    .collect();
                Lookup {
                    name: &d.name,
                    owner_tags: &d.owner_tags,
                    adoptable: &adoptable,
                    id_hint: d.load_balancer_id.as_deref(),
                    user_address: match d.floating_ip {
                        FloatingIpIntent::User { address } => Some(address),
                        _ => None,
                    },
                    members: d.listeners.iter().any(|l| l.pool.members.is_some()),
                    member_weights: d.listeners.iter().any(|l| {
                        l.pool
                            .members
                            .iter()
                            .flatten()
                            .any(|m| m.weight != Member::SERVING)
                    }),
                    vip_port: d.vip.port_id.as_deref(),
                    // The VIP security group when wanted (one no longer wanted
                    // is read when the load balancer still has it).
                    security_group: d.vip_security_group.as_ref().map(|_| d.name.as_str()),
                    shared: false,
                    after_writes,
                }
            }
            Translation::Skip {
                service,
                owner_tags,
                ..
            } => {
                removed = names::load_balancer_name(service);
                Lookup {
                    after_writes,
                    ..Lookup::removal(&removed, owner_tags)
                }
            }
        };
        self.cloud
            .observe(calls, lookup)
            .await
            .map_err(ReconcileError::named_by(
                translate::annotation::LOAD_BALANCER_ID,
            ))
    }
}
