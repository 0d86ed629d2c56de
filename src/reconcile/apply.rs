//! Apply: translate, check the references, observe, plan, execute and wait
//! until the plan runs through (a 409 waited out and planned again; copies a
//! racing replica made found and removed); plan (a dry run) and get.

use super::certificates::{desired_certificates, observed_certificates};
use super::members::owner_of;
use super::*;
use crate::model::{Lookup, Observed, ServiceRef, Translation};
use crate::names::{self, is_owned};
use crate::openstack::OpenStackError;
use crate::plan::{self, OperationSummary};
use crate::response::PlanResponse;
use cloud::Calls;
use execute::Progress;

impl Reconciler {
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
        let timer = crate::metrics::global().start(Verb::Apply, Subject::Service);
        let r = options
            .bounded(self.apply_within(input, options, progress))
            .await;
        timed(timer, &r, |a| a.action.as_str());
        r
    }

    pub(super) async fn apply_within(
        &self,
        input: &ApplyInput,
        options: ApplyOptions,
        progress: Option<tokio::sync::mpsc::UnboundedSender<ProgressEvent>>,
    ) -> Result<ApplyResponse, ReconcileError> {
        let calls = Calls {
            progress,
            ..Default::default()
        };
        let mut translation = self.translate_unchecked(input)?;
        let service = match &translation {
            Translation::LoadBalancer(d) => d.service.clone(),
            Translation::Skip { service, .. } => service.clone(),
        };
        let lock = self.lock_for(&service);
        let _guard = lock.lock().await;
        // One round trip: the checks of what the Service names (subnets,
        // ports, certificates) are reads, sent with the observation's.
        let (allowed, observed) = tokio::join!(
            self.check_online(input, &calls, &translation, true),
            self.observe_for(&calls, &translation)
        );
        let allowed = allowed?;
        let mut observed = observed?;
        references::leave_out_members(&mut translation, allowed.as_deref());
        let certificate = self
            .certificate(&calls, input, &mut translation, true)
            .await?;
        let owner = owner_of(&translation)
            .map(<[String]>::to_vec)
            .unwrap_or_default();

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
                observed = self
                    .observe_after(&calls, &translation, &owner, &observed, &progress, vanished)
                    .await?;
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
        crate::metrics::global().applied(action.as_str());
        Ok(answer)
    }

    /// What there is after this apply's writes, for its answer and the
    /// check for a racing replica's copy. What the writes made is known
    /// from their answers and Octavia holds a load balancer's tree still
    /// while it is PENDING (no one else's write lands between ours and
    /// ACTIVE), so only what may have changed without this process is read:
    /// the load balancers by name (a racing replica's copy), the status tree
    /// (operating statuses are Octavia's health manager's) and, when their
    /// `updated_at` moved since this process's last read, listeners and
    /// pools. Floating IPs are those observed plus those made, unless a
    /// write deleted, bound, unbound or retagged one, a copy went, or a
    /// copy is found (its floating IP goes with it): then all is read.
    async fn observe_after(
        &self,
        calls: &Calls,
        translation: &Translation,
        owner: &[String],
        before: &Observed,
        progress: &Progress,
        vanished: bool,
    ) -> Result<Observed, ReconcileError> {
        let known = progress
            .floating_ips_now(&before.floating_ips)
            .filter(|_| !vanished);
        let Some(known) = known else {
            return self.observe_for(calls, translation).await;
        };
        let mut now = self.observe_reading(calls, translation, true).await?;
        let copies = now
            .load_balancers
            .iter()
            .filter(|lb| is_owned(&lb.tags, owner))
            .count();
        if copies > 1 || !now.deleting.is_empty() {
            return self.observe_for(calls, translation).await;
        }
        now.floating_ips = known;
        now.user_floating_ip = before.user_floating_ip.clone();
        Ok(now)
    }

    /// Plans and executes until the plan ran through, observing and planning
    /// again after a 409 (another writer busy), at most [`REPLANS`] times in all.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn converge_once(
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
}
