//! Delete: the Service's removal planned from what the cloud holds and
//! executed, the shared load balancer's part first; waiting until gone.

use super::*;
use crate::model::{Lookup, Observed, ServiceRef};
use crate::names;
use crate::openstack::OpenStackError;
use crate::plan::{self, OperationSummary};
use cloud::Calls;
use execute::Progress;

impl Reconciler {
    /// A removal's operations (`plan::plan_removal`): on each shared load
    /// balancer, this Service's listeners and pools and then its leaving,
    /// one after the other (each write waited for: the block names its load
    /// balancer last); then the floating IPs and the cascade deletes at once:
    /// Neutron disassociates a floating IP whose port goes, and whatever
    /// fails, a re-run finds what is left by name and description. Answers
    /// the load balancer being deleted, if any.
    pub(super) async fn execute_removal(
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

    /// Waits until a load balancer is deleted, within the request's wait
    /// budget: `false` when it is still there at the deadline.
    pub(super) async fn wait_gone(
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
        let timer = crate::metrics::global().start(Verb::Delete, Subject::Service);
        let r = options
            .bounded(self.delete_within(service, keep_floating_ip, options))
            .await;
        timed(timer, &r, |a| a.action.as_str());
        r
    }

    pub(super) async fn delete_within(
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
