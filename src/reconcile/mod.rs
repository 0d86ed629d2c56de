//! The stateless reconciler: translate the Service, observe what OpenStack
//! has (found by name and ownership tags, never by remembered ids), plan with
//! the pure core, execute (`execute.rs`, the only place that writes, over the
//! port of `cloud.rs`), wait for ACTIVE (`wait.rs`), and answer with the
//! status to write back. A 409 from a load balancer another
//! replica is changing is waited out, then the Service is observed and
//! planned again. Requests for one Service are serialised in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{Api, Settings};
use crate::model::{FloatingIpIntent, Lookup, Member, Observed, ServiceRef, Translation};
use crate::names::{self, is_owned};
use crate::openstack::OpenStackError;
use crate::plan::{self, OperationSummary};
use crate::response::PlanResponse;
use crate::translate::{self, Backends, TranslateError};

mod answer;
pub mod board;
pub mod cloud;
pub mod events;
pub mod execute;
pub mod memory;
mod request;
#[cfg(test)]
mod tests;
pub mod wait;

pub use crate::error::ReconcileError;
pub use answer::*;
use board::StatusBoard;
use cloud::Calls;
pub use cloud::{CloudPort, LoadBalancing, Observing, ProgressEvent};
use execute::Progress;
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

    /// A removal's operations (`plan::plan_removal`): on each shared load
    /// balancer, this Service's listeners and pools and then its leaving,
    /// one after the other (each write waited for: the block names its load
    /// balancer last); then the floating IPs and the cascade deletes at once:
    /// Neutron disassociates a floating IP whose port goes, and whatever
    /// fails, a re-run finds what is left by name and description. Answers
    /// the load balancer being deleted, if any.
    async fn execute_removal(
        &self,
        calls: &Calls,
        ops: Vec<plan::Operation>,
        observed: &Observed,
        owner: &[String],
        options: ApplyOptions,
        done: &mut Vec<OperationSummary>,
    ) -> Result<Option<String>, OpenStackError> {
        use plan::Operation;
        // A shared load balancer's part, its floating IP's hand-over included.
        let (mut shared, rest): (Vec<_>, Vec<_>) = ops.into_iter().partition(|op| {
            matches!(op, Operation::Share { .. })
                || (op.is_load_balancer_write()
                    && !matches!(op, Operation::DeleteLoadBalancer { .. }))
        });
        while !shared.is_empty() {
            let end = shared
                .iter()
                .position(|op| {
                    matches!(
                        op,
                        Operation::Share {
                            resource: plan::Adoptee::LoadBalancer,
                            ..
                        }
                    )
                })
                .map_or(shared.len(), |i| i + 1);
            let block: Vec<Operation> = shared.drain(..end).collect();
            let mut progress = Progress::default();
            if let Some(Operation::Share { load_balancer, .. }) = block.last() {
                progress.load_balancer = Some(load_balancer.clone());
            }
            self.execute_all(calls, &block, owner, &mut progress, options, done)
                .await?;
        }
        let (groups, rest): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|op| matches!(op, Operation::DeleteSecurityGroup { .. }));
        let (floating_ips, load_balancers): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|op| !matches!(op, Operation::DeleteLoadBalancer { .. }));
        let (mut fip_progress, mut progress) = (Progress::default(), Progress::default());
        let (mut fips_done, mut lbs_done) = (Vec::new(), Vec::new());
        let (fips, lbs) = tokio::join!(
            self.execute_all(
                calls,
                &floating_ips,
                owner,
                &mut fip_progress,
                options,
                &mut fips_done
            ),
            self.execute_all(
                calls,
                &load_balancers,
                owner,
                &mut progress,
                options,
                &mut lbs_done
            ),
        );
        done.append(&mut fips_done);
        done.append(&mut lbs_done);
        fips?;
        lbs?;
        // A VIP security group goes once its port has (the load balancer gone).
        if !groups.is_empty() {
            // (Or the one that was being deleted already when observed.)
            let mut after = Progress::default();
            after.deleting = progress
                .deleting
                .clone()
                .or_else(|| observed.deleting.first().cloned());
            self.execute_all(calls, &groups, owner, &mut after, options, done)
                .await?;
        }
        // The Service's certificate containers (a Secret's copies) go with it.
        self.collect_certificates(calls, owner, &Observed::default(), None)
            .await;
        Ok(progress.deleting)
    }

    /// The TERMINATED_HTTPS listeners' certificate from a Kubernetes TLS
    /// Secret: the Barbican container made from it earlier (found by name and
    /// digest), or, with `write`, one made now; the listeners' pending
    /// reference becomes it. Answers the container's reference (`None`:
    /// no Secret, or a plan that would make one).
    async fn certificate(
        &self,
        calls: &Calls,
        input: &ApplyInput,
        translation: &mut Translation,
        write: bool,
    ) -> Result<Option<String>, ReconcileError> {
        let Translation::LoadBalancer(d) = translation else {
            return Ok(None);
        };
        let pending = d.listeners.iter().any(|l| {
            l.tls.as_ref().is_some_and(|t| {
                t.default_tls_container_ref
                    .starts_with(names::PENDING_CERTIFICATE)
            })
        });
        // No listener to serve it (UDP ports only, say): nothing to store.
        if (d.tls_secret.is_none() && d.tls_secret_kept.is_none()) || !pending {
            return Ok(None);
        }
        let name = names::certificate_name(&d.owner_tags);
        let mut stored = self.cloud.certificates(calls, &name).await?;
        let found = match (&d.tls_secret, &d.tls_secret_kept) {
            (Some(m), _) => stored
                .iter()
                .find(|c| c.digest.as_deref() == Some(m.digest.as_str()))
                .map(|c| c.container_ref.clone()),
            // The Secret was not sent: the newest whole container made from it.
            _ => {
                stored.retain(|c| c.digest.is_some());
                stored.sort_by(|a, b| a.created.cmp(&b.created));
                stored.last().map(|c| c.container_ref.clone())
            }
        };
        let reference = match (found, &d.tls_secret) {
            (Some(r), _) => r,
            (None, Some(m)) if write => {
                let r = self.cloud.store_certificate(calls, &name, m).await?;
                tracing::info!(service = %d.service, secret = %m.secret, container = %r, "stored the TLS Secret's certificate in Barbican");
                r
            }
            (None, Some(m)) => {
                d.notes.push(format!(
                    "the certificate of Secret {} would be stored in Barbican (a certificate container named {name:?})",
                    m.secret
                ));
                return Ok(None);
            }
            // The Secret sent earlier (unnamed) made none: no certificate,
            // the https ports stay TLS passthrough.
            (None, None) if d.tls_secret_kept.as_deref() == Some("") => {
                let tls = translate::TlsInput {
                    secrets: Some(&[]),
                    now: std::time::SystemTime::now(),
                };
                *translation = self.translate_members(calls, input, tls, true).await?;
                return Ok(None);
            }
            (None, None) => {
                return Err(crate::translate::TranslateError::annotation(
                    translate::annotation::DEFAULT_TLS_SECRET,
                    format!(
                        "Secret {} is not in the request (tlsSecrets) and no certificate was stored from it yet",
                        d.tls_secret_kept.as_deref().unwrap_or_default()
                    ),
                )
                .into());
            }
        };
        for l in &mut d.listeners {
            if let Some(t) = &mut l.tls
                && t.default_tls_container_ref
                    .starts_with(names::PENDING_CERTIFICATE)
            {
                t.default_tls_container_ref = reference.clone();
            }
        }
        Ok(Some(reference))
    }

    /// Deletes the Service's certificate containers that no listener in
    /// `observed` uses and that are not `keep`. A failure is logged: the
    /// next apply or delete of the Service tries again.
    async fn collect_certificates(
        &self,
        calls: &Calls,
        owner: &[String],
        observed: &Observed,
        keep: Option<&str>,
    ) {
        let name = names::certificate_name(owner);
        let stored = match self.cloud.certificates(calls, &name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(certificates = %name, error = %e, "could not list the Service's certificate containers");
                return;
            }
        };
        for c in stored {
            let used = Some(c.container_ref.as_str()) == keep
                || observed_certificates(observed).any(|r| r == c.container_ref);
            if used {
                continue;
            }
            match self.cloud.delete_certificate(calls, &c.container_ref).await {
                Ok(()) => {
                    tracing::info!(container = %c.container_ref, "deleted a certificate container no listener uses")
                }
                Err(e) => {
                    tracing::warn!(container = %c.container_ref, error = %e, "could not delete a certificate container")
                }
            }
        }
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

    /// Translates (once), then, online, checks what the translation names in
    /// the cloud: SCTP support, the annotated objects, the VIP's subnet (a
    /// clusterIP outside it is caught before any write).
    pub async fn translate(
        &self,
        input: &ApplyInput,
        calls: &Calls,
        online: bool,
    ) -> Result<Translation, ReconcileError> {
        let tls = translate::TlsInput {
            secrets: input.tls_secrets.as_ref().map(|s| s.0.as_slice()),
            now: std::time::SystemTime::now(),
        };
        let first = self.translate_members(calls, input, tls, online).await?;
        if online && matches!(first, Translation::LoadBalancer(_)) {
            // SCTP came with Octavia API 2.23: name the port on older clouds.
            let caps = self.capabilities(calls).await?;
            let ports = input.service.spec.as_ref().and_then(|s| s.ports.as_ref());
            if !caps.sctp
                && let Some(i) =
                    ports.and_then(|p| p.iter().position(|p| p.protocol.as_deref() == Some("SCTP")))
            {
                return Err(TranslateError::Field {
                    field: format!("service.spec.ports[{i}].protocol"),
                    message: "SCTP is not offered by this cloud's load-balancer API (Octavia API 2.23 or later is needed)".into(),
                }
                .into());
            }
            // The configured provider must be one the cloud offers.
            if let Some(provider) = &self.settings.octavia_defaults.provider
                && let Some(offered) = self.cloud.providers(calls).await?
                && !offered.iter().any(|o| o == provider)
            {
                return Err(OpenStackError::Config(format!(
                    "[octavia_defaults] provider {provider:?} is not offered by this cloud (it offers: {})",
                    offered.join(", ")
                ))
                .into());
            }
            // What the annotations name must exist before anything is written.
            // (A VIP port is read whole, fresh, by port_is_free_for below.)
            for r in translate::references(&input.service)? {
                if r.kind == crate::model::ReferenceKind::Port {
                    continue;
                }
                self.cloud
                    .require(calls, r.kind, &r.id)
                    .await
                    .map_err(ReconcileError::named_by(r.annotation))?;
                if r.kind == crate::model::ReferenceKind::Certificate
                    && let Translation::LoadBalancer(d) = &first
                {
                    self.certificate_is_the_namespaces(calls, d, &r).await?;
                }
            }
            if let Translation::LoadBalancer(d) = &first
                && let Some(port) = &d.vip.port_id
            {
                self.port_is_free_for(calls, d, port).await?;
            }
        }
        let subnet = match (&first, online) {
            (Translation::LoadBalancer(d), true) => d.vip.subnet_id.clone(),
            _ => None,
        };
        let Some(subnet) = subnet else {
            // A VIP network (network-id) or port (port-id) alone: Neutron's subnet.
            let network = matches!(&first, Translation::LoadBalancer(d)
                if d.vip.network_id.is_some() || d.vip.port_id.is_some());
            if online && matches!(first, Translation::LoadBalancer(_)) && !network {
                // Octavia would answer a 400 about the VIP; say what to configure instead.
                return Err(OpenStackError::Config(
                    "no VIP subnet: set [neutron_defaults] service_subnet (SVC_LBAAS_SERVICE_SUBNET) or the loadbalancer.openstack.org/subnet-id or network-id annotation".into(),
                )
                .into());
            }
            return Ok(first);
        };
        // An annotated subnet was found above: a missing one here is a setting's.
        let cidr = match self.cloud.subnet(calls, &subnet).await {
            Ok(info) => info.cidr,
            Err(e) if e.is_not_found() => {
                return Err(OpenStackError::Config(format!(
                    "the VIP subnet {subnet} of [neutron_defaults] does not exist"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        // Translated once; the subnet's CIDR only adds a check of the VIP.
        if let Translation::LoadBalancer(d) = &first {
            translate::check_vip_in_subnet(&d.vip, cidr)?;
        }
        Ok(first)
    }

    /// The translation, its endpoint addresses outside the member CIDRs
    /// left out (with a note, and a WARN): every translation an apply or a
    /// plan acts on comes through here.
    async fn translate_members(
        &self,
        calls: &Calls,
        input: &ApplyInput,
        tls: translate::TlsInput<'_>,
        online: bool,
    ) -> Result<Translation, ReconcileError> {
        let mut translation =
            translate::translate_with(&self.settings, &input.service, input.backends(), tls)?;
        if let Translation::LoadBalancer(d) = &mut translation {
            let allowed = self.member_cidrs(calls, online).await?;
            let left = translate::leave_out_desired_members(d, allowed.as_deref());
            if let Some(first) = left.first() {
                tracing::warn!(service = %d.service, left_out = left.len(), first = %first, "endpoint addresses outside [tenancy] member_cidrs (or link-local, loopback) left out of the members");
            }
        }
        Ok(translation)
    }

    /// A `port-id` port must be bound to no device but this Service's own
    /// load balancer, be no other load balancer's VIP, and carry no other
    /// Service's ownership tag: another's VIP port (and its floating IP) is
    /// not the Service's to take. Checked before any write; the message names
    /// no other user's object.
    async fn port_is_free_for(
        &self,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
        port: &str,
    ) -> Result<(), ReconcileError> {
        let annotation = translate::annotation::PORT_ID;
        let used = self
            .cloud
            .port_use(calls, port)
            .await
            .map_err(ReconcileError::named_by(annotation))?;
        let own = |tags: &[String]| is_owned(tags, &d.owner_tags);
        let others = used.load_balancers.iter().any(|lb| !own(&lb.tags));
        let device = used.device_id.is_empty()
            || used.device_id.strip_prefix("lb-").is_some_and(|id| {
                used.load_balancers
                    .iter()
                    .any(|lb| lb.id == id && own(&lb.tags))
            });
        let claimed = names::service_tag(&used.tags)
            .is_some_and(|t| Some(t) != names::service_tag(&d.owner_tags));
        // The port puts the VIP on its network and subnet: the operator's
        // lists hold for it as for network-id and subnet-id.
        let t = &self.settings.tenancy;
        let network_closed = t
            .vip_networks
            .as_ref()
            .is_some_and(|open| !open.contains(&used.network_id));
        let subnet_closed = t
            .vip_subnets
            .as_ref()
            .is_some_and(|open| used.subnet_ids.iter().any(|s| !open.contains(s)));
        if network_closed || subnet_closed {
            return Err(ReconcileError::forbidden(
                annotation,
                format!(
                    "port {} is on a network or subnet not in [tenancy] vip_networks / vip_subnets",
                    crate::echo::quote(port)
                ),
            ));
        }
        if others || !device || claimed {
            tracing::warn!(service = %d.service, "refused a port-id in use by another");
            return Err(ReconcileError::in_use(
                annotation,
                format!(
                    "port {} is in use by another load balancer or device, or held by another Service; name a free port",
                    crate::echo::quote(port)
                ),
            ));
        }
        Ok(())
    }

    /// A certificate reference must be the Service's namespace's: one
    /// svc-lbaas stored from a Secret of that namespace, or a user's where
    /// `[tenancy] user_containers_namespaces` opens them to it.
    async fn certificate_is_the_namespaces(
        &self,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
        r: &translate::Reference,
    ) -> Result<(), ReconcileError> {
        let (service, owner) = (&d.service, &d.owner_tags);
        let name = self
            .cloud
            .certificate_name(calls, &r.id)
            .await
            .map_err(ReconcileError::named_by(r.annotation))?;
        let why = match names::holder_of_certificate(name.as_deref().unwrap_or_default(), owner) {
            names::Holder::Namespace(ns) if ns == service.namespace => return Ok(()),
            names::Holder::Nobody
                if self
                    .settings
                    .tenancy
                    .user_containers_open_to(&service.namespace) =>
            {
                return Ok(());
            }
            names::Holder::Nobody => {
                "is not svc-lbaas's, and [tenancy] user_containers_namespaces does not open such references to this namespace"
            }
            _ => "was stored by svc-lbaas for a Service of another namespace",
        };
        tracing::warn!(service = %service, annotation = r.annotation, "refused a certificate reference of another namespace's");
        Err(ReconcileError::forbidden(
            r.annotation,
            format!(
                "the certificate reference {} {why}",
                crate::echo::quote(&r.id)
            ),
        ))
    }

    /// The CIDRs endpoint addresses must lie in to become members:
    /// `[tenancy] member_cidrs`, else the CIDRs of the configured pod subnet
    /// and every class's member subnet (read once, then cached), else of the
    /// VIP subnets (where members then go), else unchecked (`None`;
    /// link-local and loopback are still left out). Offline, only the
    /// setting counts.
    async fn member_cidrs(
        &self,
        calls: &Calls,
        online: bool,
    ) -> Result<Option<Vec<ipnet::IpNet>>, ReconcileError> {
        if let Some(cidrs) = &self.settings.tenancy.member_cidrs {
            return Ok(Some(cidrs.clone()));
        }
        let subnets: std::collections::BTreeSet<&str> = self
            .settings
            .neutron_defaults
            .pod_subnet
            .iter()
            .chain(
                self.settings
                    .load_balancer_classes
                    .values()
                    .filter_map(|c| c.member_subnet_id.as_ref()),
            )
            .map(String::as_str)
            .collect();
        // No member subnet configured: members go on the VIP subnet.
        let d = &self.settings.neutron_defaults;
        let subnets = if subnets.is_empty() {
            d.service_subnet
                .iter()
                .chain(d.service_subnet_ipv6.iter())
                .map(String::as_str)
                .collect()
        } else {
            subnets
        };
        if !online || subnets.is_empty() {
            return Ok(None);
        }
        let mut cidrs = Vec::new();
        for id in subnets {
            match self.cloud.subnet(calls, id).await {
                Ok(info) => cidrs.push(info.cidr),
                Err(e) if e.is_not_found() => {
                    return Err(OpenStackError::Config(format!(
                        "the member subnet {id} of the settings does not exist"
                    ))
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(cidrs))
    }

    async fn observe_for(
        &self,
        calls: &Calls,
        translation: &Translation,
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
                }
            }
            Translation::Skip {
                service,
                owner_tags,
                ..
            } => {
                removed = names::load_balancer_name(service);
                Lookup::removal(&removed, owner_tags)
            }
        };
        self.cloud
            .observe(calls, lookup)
            .await
            .map_err(ReconcileError::named_by(
                translate::annotation::LOAD_BALANCER_ID,
            ))
    }

    /// `POST /v1/plan`: what apply would do now (or, offline, against empty state).
    pub async fn plan(
        &self,
        input: &ApplyInput,
        offline: bool,
    ) -> Result<PlanResponse, ReconcileError> {
        let calls = Calls::default();
        let mut translation = self.translate(input, &calls, !offline).await?;
        if !offline {
            self.certificate(&calls, input, &mut translation, false)
                .await?;
        }
        let observed = if offline {
            Observed::default()
        } else {
            self.observe_for(&calls, &translation).await?
        };
        let ops = plan::plan(&translation, &observed, self.capabilities(&calls).await?)?;
        let existed = owner_of(&translation).is_some_and(|o| {
            observed
                .load_balancers
                .iter()
                .any(|lb| names::serves(&lb.tags, o))
        });
        Ok(PlanResponse::new(&translation, &ops, existed))
    }

    /// `POST /v1/apply`.
    pub async fn apply(
        &self,
        input: &ApplyInput,
        options: ApplyOptions,
    ) -> Result<ApplyResponse, ReconcileError> {
        self.apply_reporting(input, options, None).await
    }

    /// An apply that reports each operation and wait to `progress`.
    pub async fn apply_reporting(
        &self,
        input: &ApplyInput,
        options: ApplyOptions,
        progress: Option<tokio::sync::mpsc::UnboundedSender<ProgressEvent>>,
    ) -> Result<ApplyResponse, ReconcileError> {
        options
            .bounded(self.apply_within(input, options, progress))
            .await
    }

    async fn apply_within(
        &self,
        input: &ApplyInput,
        options: ApplyOptions,
        progress: Option<tokio::sync::mpsc::UnboundedSender<ProgressEvent>>,
    ) -> Result<ApplyResponse, ReconcileError> {
        let calls = Calls {
            progress,
            ..Default::default()
        };
        let mut translation = self.translate(input, &calls, true).await?;
        let service = match &translation {
            Translation::LoadBalancer(d) => d.service.clone(),
            Translation::Skip { service, .. } => service.clone(),
        };
        let lock = self.lock_for(&service);
        let _guard = lock.lock().await;
        let certificate = self
            .certificate(&calls, input, &mut translation, true)
            .await?;
        let owner = owner_of(&translation)
            .map(<[String]>::to_vec)
            .unwrap_or_default();

        let mut observed = self.observe_for(&calls, &translation).await?;
        // Certificates the listeners used before that the translation no
        // longer wants: their containers (ours, by name) go afterwards.
        let certificates_dropped = observed_certificates(&observed)
            .any(|r| !desired_certificates(&translation).any(|w| w == r));
        let existed = observed
            .load_balancers
            .iter()
            .any(|lb| names::serves(&lb.tags, &owner));
        let mut done: Vec<OperationSummary> = Vec::new();
        let mut progress = Progress::default();
        let mut round = 0;
        let mut pass = 0;
        let converged = loop {
            self.converge_once(
                &calls,
                &translation,
                &owner,
                &mut observed,
                &mut progress,
                options,
                &mut done,
                &mut round,
            )
            .await?;
            let mut converged = true;
            let mut vanished = false;
            if options.wait {
                match execute::settle(
                    &*self.cloud,
                    &self.waits,
                    &calls,
                    &mut progress,
                    options.wait_budget(),
                )
                .await
                {
                    Ok(()) => {}
                    Err(OpenStackError::WaitTimeout { .. }) => converged = false,
                    // The copy this apply made was removed by a racing replica.
                    Err(e) if e.is_vanished() => vanished = true,
                    Err(e) => return Err(e.into()),
                }
            } else if progress.dirty || progress.deleting.is_some() {
                converged = false;
            }
            if !done.is_empty() || vanished {
                observed = self.observe_for(&calls, &translation).await?;
            }
            // Another replica created a copy while this one worked (the race of
            // two applies of a new Service): converge again, on the survivor
            // every replica picks (the oldest), until one is left.
            let copies = observed
                .load_balancers
                .iter()
                .filter(|lb| is_owned(&lb.tags, &owner))
                .count();
            if (copies <= 1 && !vanished)
                || pass >= RACE_PASSES
                || !matches!(translation, Translation::LoadBalancer(_))
            {
                break converged && !vanished;
            }
            pass += 1;
            tracing::info!(service = %service, copies, "several load balancers for one Service (replicas raced): keeping the oldest");
            progress = Progress::default();
        };
        // Certificate containers of this Service's no listener uses any more
        // (a Secret changed, or no longer used): deleted once the listeners
        // point elsewhere.
        if converged && (certificate.is_some() || certificates_dropped) {
            self.collect_certificates(&calls, &owner, &observed, certificate.as_deref())
                .await;
        }
        // Copies being deleted (by this replica or the other) are waited out,
        // so that the answer comes when the cloud holds one load balancer.
        if options.wait && converged {
            for id in observed.deleting.clone() {
                // A copy still going at the deadline does not fail the apply.
                self.wait_gone(&calls, &id, options).await?;
            }
        }
        let (action, reason, notes) = match &translation {
            Translation::Skip { reason, .. } => {
                (ApplyAction::Skipped, Some(reason.clone()), Vec::new())
            }
            Translation::LoadBalancer(d) => {
                let action = match (existed, done.is_empty()) {
                    (false, _) => ApplyAction::Created,
                    (true, true) => ApplyAction::Unchanged,
                    (true, false) => ApplyAction::Updated,
                };
                (action, None, d.notes.clone())
            }
        };
        let ingress = match &translation {
            Translation::LoadBalancer(d) => d.ingress.clone(),
            Translation::Skip { .. } => Default::default(),
        };
        let answer = ApplyResponse {
            reason,
            converged,
            notes,
            ..ApplyResponse::new(
                &service,
                action,
                Some((&observed, &owner, &ingress)),
                done,
                &calls,
            )
        };
        let c = answer.openstack_calls;
        tracing::info!(service = %service, ?action, reads = c.reads, writes = c.writes, waits = c.waits, converged, "applied");
        crate::metrics::global().inc("svc_lbaas_applies_total", &[("action", action.as_str())]);
        Ok(answer)
    }

    /// Plans and executes until the plan ran through, observing and planning
    /// again after a 409 (another writer busy), at most [`REPLANS`] times in all.
    #[allow(clippy::too_many_arguments)]
    async fn converge_once(
        &self,
        calls: &Calls,
        translation: &Translation,
        owner: &[String],
        observed: &mut Observed,
        progress: &mut Progress,
        options: ApplyOptions,
        done: &mut Vec<OperationSummary>,
        round: &mut usize,
    ) -> Result<(), ReconcileError> {
        loop {
            let mut ops = plan::plan(translation, observed, self.capabilities(calls).await?)?;
            self.find_floating_subnets(calls, &mut ops).await?;
            // The survivor: observe lists the oldest first.
            // (A load balancer named by load-balancer-id first: the one a
            // sharing plan writes to.)
            let named = match translation {
                Translation::LoadBalancer(d) => d.load_balancer_id.as_deref(),
                Translation::Skip { .. } => None,
            };
            let usable =
                |lb: &&crate::model::ObservedLoadBalancer| lb.provisioning_status != "ERROR";
            progress.load_balancer = observed
                .load_balancers
                .iter()
                .filter(usable)
                .find(|lb| Some(lb.id.as_str()) == named)
                .or_else(|| {
                    observed
                        .load_balancers
                        .iter()
                        .filter(usable)
                        .find(|lb| names::serves(&lb.tags, owner))
                })
                .map(|lb| lb.id.clone());
            // A deletion in progress (a Service deleted and re-created) is waited
            // out before the first write: its VIP port may hold our address.
            progress.deleting = observed.deleting.first().cloned();
            // A load balancer another writer left PENDING_* settles first.
            progress.dirty = observed.load_balancers.iter().any(|lb| {
                names::serves(&lb.tags, owner) && lb.provisioning_status.starts_with("PENDING_")
            });
            match self
                .execute_all(calls, &ops, owner, progress, options, done)
                .await
            {
                Ok(()) => return Ok(()),
                // Busy (409), something the plan named is gone (404; a racing
                // replica removed its copy), or a write with no answer (it may
                // have been done: a create that timed out under load): observe
                // and plan again, never send the write blindly a second time.
                Err(e)
                    if (e.is_conflict()
                        || e.is_vanished()
                        || e.is_not_found()
                        || matches!(e, OpenStackError::Unreachable { .. }))
                        && *round < REPLANS =>
                {
                    tracing::info!(error = %e, "conflict: waiting, then planning again");
                }
                Err(e) => return Err(e.into()),
            }
            *round += 1;
            let settled = match execute::settle(
                &*self.cloud,
                &self.waits,
                calls,
                progress,
                options.wait_budget(),
            )
            .await
            {
                Ok(()) => match progress.load_balancer.clone() {
                    Some(id) => {
                        let kind = execute::UPDATE;
                        let budget = options.wait_budget();
                        self.waits
                            .wait(&*self.cloud, calls, &id, kind, false, budget)
                            .await
                    }
                    None => Ok(()),
                },
                Err(e) => Err(e),
            };
            match settled {
                // Gone meanwhile: what to do comes from observing again.
                Err(e) if e.is_vanished() => {}
                other => other?,
            }
            *progress = Progress::default();
            *observed = self.observe_for(calls, translation).await?;
        }
    }

    /// `GET /v1/services/{namespace}/{name}`.
    pub async fn get(&self, service: &ServiceRef) -> Result<ApplyResponse, ReconcileError> {
        let calls = Calls::default();
        let owner = names::owner_tags(&self.settings.cluster.name, service);
        let name = names::load_balancer_name(service);
        // A read for people: members with their weights (each pool's list).
        let lookup = Lookup {
            member_weights: true,
            ..Lookup::service(&name, &owner)
        };
        let observed = self.cloud.observe(&calls, lookup).await?;
        let mut answer = ApplyResponse::new(
            service,
            ApplyAction::Unchanged,
            Some((&observed, &owner, &Default::default())),
            Vec::new(),
            &calls,
        );
        let Some(lb) = &answer.load_balancer else {
            return Err(ReconcileError::NotFound(service.to_string()));
        };
        answer.converged = lb.provisioning_status == "ACTIVE";
        Ok(answer)
    }

    /// Waits until a load balancer is deleted, within the request's wait
    /// budget: `false` when it is still there at the deadline.
    async fn wait_gone(
        &self,
        calls: &Calls,
        id: &str,
        options: ApplyOptions,
    ) -> Result<bool, OpenStackError> {
        let budget = options.wait_budget();
        match self
            .waits
            .wait(&*self.cloud, calls, id, execute::DELETE, true, budget)
            .await
        {
            Ok(()) => Ok(true),
            Err(OpenStackError::WaitTimeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v1/services/{namespace}/{name}`: removes what this tool created.
    pub async fn delete(
        &self,
        service: &ServiceRef,
        keep_floating_ip: bool,
        options: ApplyOptions,
    ) -> Result<ApplyResponse, ReconcileError> {
        options
            .bounded(self.delete_within(service, keep_floating_ip, options))
            .await
    }

    async fn delete_within(
        &self,
        service: &ServiceRef,
        keep_floating_ip: bool,
        options: ApplyOptions,
    ) -> Result<ApplyResponse, ReconcileError> {
        let calls = Calls::default();
        let lock = self.lock_for(service);
        let _guard = lock.lock().await;
        let owner = names::owner_tags(&self.settings.cluster.name, service);
        let name = names::load_balancer_name(service);
        let observed = self
            .cloud
            .observe(&calls, Lookup::removal(&name, &owner))
            .await?;
        plan::check_removal(&observed, &owner, keep_floating_ip)?;
        let ops = plan::plan_removal(&observed, &owner, keep_floating_ip);
        let mut done = Vec::new();
        let deleting = self
            .execute_removal(&calls, ops, &observed, &owner, options, &mut done)
            .await?;
        let mut converged = deleting.is_none();
        if options.wait
            && let Some(id) = deleting
        {
            converged = self.wait_gone(&calls, &id, options).await?;
        }
        Ok(ApplyResponse {
            converged,
            ..ApplyResponse::new(service, ApplyAction::Deleted, None, done, &calls)
        })
    }
}

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

    async fn apply_members_within(
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

fn owner_of(t: &Translation) -> Option<&[String]> {
    match t {
        Translation::LoadBalancer(d) => Some(&d.owner_tags),
        Translation::Skip { owner_tags, .. } => Some(owner_tags),
    }
}

impl Reconciler {
    /// Removes what this cluster owns for Services not in `listed` (their
    /// Service tags) whose namespace `in_scope` accepts: each one's load
    /// balancers by cascade, its floating IPs deleted, users' bound to them
    /// only disassociated. Nothing without this cluster's tags is touched; a
    /// load balancer younger than `[cluster] orphan_grace_s` is left (its
    /// Service may be newer than the list).
    pub async fn collect_orphans(
        &self,
        listed: &std::collections::HashSet<String>,
        in_scope: &(dyn Fn(&str) -> bool + Sync),
        dry_run: bool,
        options: ApplyOptions,
    ) -> Result<Vec<OrphanResult>, ReconcileError> {
        options
            .bounded(self.collect_orphans_within(listed, in_scope, dry_run, options))
            .await
    }

    async fn collect_orphans_within(
        &self,
        listed: &std::collections::HashSet<String>,
        in_scope: &(dyn Fn(&str) -> bool + Sync),
        dry_run: bool,
        options: ApplyOptions,
    ) -> Result<Vec<OrphanResult>, ReconcileError> {
        let calls = Calls::default();
        let cluster = names::cluster_tag(&self.settings.cluster.name);
        let (lbs, fips) = self.cloud.owned_by_cluster(&calls, &cluster).await?;
        // Orphans by Service tag, in the order first seen.
        let mut orphans: Vec<(String, Observed)> = Vec::new();
        let entry = |orphans: &mut Vec<(String, Observed)>, tag: &str| -> Option<usize> {
            if listed.contains(tag) || !names::namespace_of_service_tag(tag).is_some_and(in_scope) {
                return None;
            }
            Some(match orphans.iter().position(|(t, _)| t == tag) {
                Some(i) => i,
                None => {
                    orphans.push((tag.to_string(), Observed::default()));
                    orphans.len() - 1
                }
            })
        };
        for lb in lbs {
            // Its owner's, and each sharer's: any of them may be gone.
            let users = names::service_tag(&lb.tags)
                .map(str::to_string)
                .into_iter()
                .chain(
                    lb.tags
                        .iter()
                        .filter_map(|t| names::service_tag_of_sharer(t)),
                );
            for tag in users.collect::<Vec<_>>() {
                if let Some(i) = entry(&mut orphans, &tag) {
                    orphans[i].1.load_balancers.push(lb.clone());
                }
            }
        }
        for fip in fips {
            let owned_here = fip.tags.iter().any(|t| t == &cluster);
            let i = if owned_here {
                names::service_tag(&fip.tags).and_then(|t| entry(&mut orphans, t))
            } else {
                // A user's, bound to an orphan's VIP port: disassociated with it.
                orphans.iter().position(|(_, o)| {
                    o.load_balancers
                        .iter()
                        .any(|lb| lb.vip_port_id.is_some() && lb.vip_port_id == fip.port_id)
                })
            };
            if let Some(i) = i {
                orphans[i].1.floating_ips.push(fip);
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let grace = self.settings.cluster.orphan_grace_s as i64;
        let mut results = Vec::with_capacity(orphans.len());
        for (tag, observed) in orphans {
            let service = tag
                .strip_prefix("svc-lbaas-service:")
                .unwrap_or(&tag)
                .replacen('_', "/", 1);
            let young = observed.load_balancers.iter().find_map(|lb| {
                let created = lb
                    .created_at
                    .as_deref()
                    .and_then(crate::openstack::session::parse_utc)?;
                (now - created < grace).then_some(now - created)
            });
            if let Some(age) = young {
                results.push(OrphanResult {
                    service,
                    action: "skipped",
                    reason: Some(format!(
                        "its load balancer is {age} s old, younger than [cluster] orphan_grace_s ({grace} s): its Service may be newer than the list"
                    )),
                    operations: Vec::new(),
                });
                continue;
            }
            let owner = vec![names::TOOL_TAG.to_string(), cluster.clone(), tag.clone()];
            let key = match service.split_once('/') {
                Some((namespace, name)) => ServiceRef {
                    namespace: namespace.into(),
                    name: name.into(),
                },
                None => ServiceRef {
                    namespace: String::new(),
                    name: service.clone(),
                },
            };
            // A shared load balancer loses only this Service's listeners and
            // pools, and a VIP security group goes after its load balancer:
            // read them (the cluster's list has neither).
            let observed = if observed.load_balancers.iter().any(|lb| {
                names::users_of(&lb.tags) > 1
                    || !is_owned(&lb.tags, &owner)
                    || !lb.vip_sg_ids.is_empty()
            }) {
                let name = names::load_balancer_name(&key);
                self.cloud
                    .observe(&calls, Lookup::removal(&name, &owner))
                    .await?
            } else {
                observed
            };
            let ops = plan::plan_removal(&observed, &owner, false);
            if dry_run {
                results.push(OrphanResult {
                    service,
                    action: "would delete",
                    reason: None,
                    operations: ops.iter().map(plan::Operation::summary).collect(),
                });
                continue;
            }
            let lock = self.lock_for(&key);
            let _guard = lock.lock().await;
            let mut done = Vec::new();
            let outcome = self
                .execute_removal(&calls, ops, &observed, &owner, options, &mut done)
                .await;
            tracing::info!(service = %service, operations = done.len(), ok = outcome.is_ok(), "orphan collected");
            results.push(match outcome {
                Ok(_) => OrphanResult {
                    service,
                    action: "deleted",
                    reason: None,
                    operations: done,
                },
                Err(e) => OrphanResult {
                    service,
                    action: "failed",
                    reason: Some(e.to_string()),
                    operations: done,
                },
            });
        }
        Ok(results)
    }
}

/// The certificate references the observed listeners use.
fn observed_certificates(observed: &Observed) -> impl Iterator<Item = &str> {
    observed
        .load_balancers
        .iter()
        .flat_map(|lb| &lb.listeners)
        .flat_map(|l| {
            l.default_tls_container_ref
                .iter()
                .chain(&l.sni_container_refs)
        })
        .map(String::as_str)
}

/// The certificate references the translation's listeners want.
fn desired_certificates(translation: &Translation) -> impl Iterator<Item = &str> {
    let listeners = match translation {
        Translation::LoadBalancer(d) => d.listeners.as_slice(),
        Translation::Skip { .. } => &[],
    };
    listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|t| std::iter::once(&t.default_tls_container_ref).chain(&t.sni_container_refs))
        .map(String::as_str)
}
