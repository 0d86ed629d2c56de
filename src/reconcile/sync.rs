//! Sync: the cluster's full Service list, as a watcher has it after a
//! (re)list: every listed Service applied (or planned, a dry run), and what
//! this cluster owns for Services the list no longer has (orphans) collected.

use serde_json::Value;

use super::events::{Answer, Outcome, Work};
use super::*;
use crate::error::{Kind, Problem};
use crate::model::{Lookup, Observed, ServiceRef};
use crate::names::{self, is_owned};
use crate::plan;
use cloud::Calls;

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

    pub(super) async fn collect_orphans_within(
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

/// How a sync treats the listed Services.
#[derive(Clone, Copy)]
pub struct SyncMode {
    /// Answer what would be done; no writes.
    pub dry_run: bool,
    /// Apply none of them: only collect orphans.
    pub orphans_only: bool,
}

/// One listed Service (`namespace/name`, or the name of one that is not
/// valid) and what became of it.
pub struct SyncItem {
    pub service: String,
    pub outcome: Outcome,
}

/// What a sync did (or, a dry run, would do).
pub struct SyncReport {
    pub dry_run: bool,
    pub services: Vec<SyncItem>,
    pub orphans: Vec<OrphanResult>,
    /// What reading the list noticed (objects left aside, and why).
    pub notes: Vec<String>,
}

impl Reconciler {
    /// Syncs `list` (a List or ServiceList, with Endpoints or EndpointSlices
    /// optionally). `scope`: the namespaces this sync may touch, checked by
    /// the caller (None: every namespace); a listed Service outside it is
    /// answered `Forbidden` and still kept.
    pub async fn sync(
        &self,
        list: Value,
        mode: SyncMode,
        scope: Option<&[String]>,
        options: ApplyOptions,
    ) -> Result<SyncReport, Box<Problem>> {
        let in_scope = |ns: &str| scope.is_none_or(|l| l.iter().any(|n| n == ns));
        if !list
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
        {
            return Err(Box::new(Problem::of(
                Kind::InvalidSync,
                "expected the cluster's Services as a List or ServiceList (with their Endpoints or EndpointSlices, optionally)",
            ).with_field("kind")));
        }
        let read =
            crate::k8s::read_value("request", list).map_err(|e| Box::new(Problem::from(&e)))?;
        let mut notes = read.notes;
        let inputs = crate::input::pair(read.objects, &mut notes)?;
        let cluster = &self.settings.cluster.name;
        let mut listed = std::collections::HashSet::new();
        let mut services: Vec<SyncItem> = Vec::new();
        let mut jobs = Vec::new();
        for input in inputs {
            let service = match translate::service_ref(&input.service) {
                Ok(r) => r,
                Err(e) => {
                    services.push(SyncItem {
                        service: input.service.metadata.name.clone().unwrap_or_default(),
                        outcome: Err(Box::new(Problem::from(&e))),
                    });
                    continue;
                }
            };
            // Every listed Service keeps what it has, in scope or not; except,
            // when nothing is applied, one that no longer gets a load balancer
            // (an apply would remove it; here the collection does).
            let skipped = mode.orphans_only
                && matches!(
                    translate::translate(&self.settings, &input.service, None),
                    Ok(Translation::Skip { .. })
                );
            if !skipped && let Some(tag) = names::owner_tags(cluster, &service).pop() {
                listed.insert(tag);
            }
            if !in_scope(&service.namespace) {
                let p = Problem::of(
                    Kind::Forbidden,
                    format!(
                        "namespace {} is not in this sync's namespaces",
                        service.namespace
                    ),
                )
                .titled("Outside the sync");
                services.push(SyncItem {
                    service: service.to_string(),
                    outcome: Err(Box::new(p)),
                });
                continue;
            }
            if mode.orphans_only {
                // Listed, so kept; applied by the caller.
                continue;
            }
            let slices: Vec<_> = input.endpoint_slices.into_iter().map(|(_, s)| s).collect();
            let apply = Box::new(ApplyInput {
                service: input.service,
                endpoints: input.endpoints.map(|(_, e)| e),
                endpoint_slices: (!slices.is_empty()).then_some(slices),
                tls_secrets: None,
            });
            let work = if mode.dry_run {
                Work::Plan(apply)
            } else {
                Work::Apply(apply)
            };
            jobs.push((services.len(), work));
            services.push(SyncItem {
                service: service.to_string(),
                outcome: Ok(Answer::Queued),
            });
        }
        for (slot, outcome) in self.run_all(jobs, options).await {
            services[slot].outcome = outcome.map_err(|e| Box::new(crate::error::problem(&e)));
        }
        let orphans = self
            .collect_orphans(&listed, &in_scope, mode.dry_run, options)
            .await
            .map_err(|e| Box::new(crate::error::problem(&e)))?;
        Ok(SyncReport {
            dry_run: mode.dry_run,
            services,
            orphans,
            notes,
        })
    }
}
