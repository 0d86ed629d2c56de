//! `spec.loadBalancerSourceRanges` as a security group of the Service's on
//! the VIP port (`vip_sg_ids`), where the provider has no `allowed_cidrs`
//! (ovn) or the setting asks: the group is Neutron's (created before the
//! load balancer that names it, its rules converged in place), named after
//! the load balancer and owned through its description, as floating IPs are.

use super::operation::*;
use std::collections::BTreeSet;

use crate::model::{DesiredLoadBalancer, Observed, ObservedLoadBalancer};
use crate::model::{ObservedSecurityGroup, SecurityGroupRule};
use crate::names::owner_description;

fn owned<'a>(observed: &'a Observed, owner: &[String]) -> Option<&'a ObservedSecurityGroup> {
    let description = owner_description(owner);
    observed
        .security_groups
        .iter()
        .find(|g| g.description.as_deref() == Some(description.as_str()))
}

/// The group's create or rule changes (Neutron, before any load balancer
/// write), and the reference the load balancer names it by.
pub(super) fn plan_group(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
) -> (Vec<Operation>, Option<Ref>) {
    let Some(want) = &desired.vip_security_group else {
        return (Vec::new(), None);
    };
    let Some(have) = owned(observed, &desired.owner_tags) else {
        let op = Operation::CreateSecurityGroup {
            group: Box::new(want.clone()),
        };
        return (vec![op], Some(Ref::planned(&want.name)));
    };
    let present: BTreeSet<&SecurityGroupRule> = have.rules.iter().map(|(_, r)| r).collect();
    let add: Vec<SecurityGroupRule> = want
        .rules
        .iter()
        .filter(|r| !present.contains(r))
        .cloned()
        .collect();
    let remove: Vec<String> = have
        .rules
        .iter()
        .filter(|(_, r)| !want.rules.contains(r))
        .map(|(id, _)| id.clone())
        .collect();
    let mut ops = Vec::new();
    if !add.is_empty() || !remove.is_empty() {
        ops.push(Operation::UpdateSecurityGroup {
            id: have.id.clone(),
            name: have.name.clone(),
            add,
            remove,
        });
    }
    (ops, Some(Ref::existing(&have.id, &have.name)))
}

/// On a load balancer that exists: its VIP port gets the group (or loses
/// it, and the group goes, when source ranges no longer need one).
pub(super) fn plan_binding(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    lb: &ObservedLoadBalancer,
    lb_ref: &Ref,
    group: Option<&Ref>,
    ops: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    match group {
        Some(_) if crate::names::users_of(&lb.tags) > 1 => {
            return Err(PlanError::SharedSecurityGroup {
                name: lb.name.clone(),
                id: lb.id.clone(),
            });
        }
        Some(g) => {
            let bound =
                g.id.as_ref()
                    .is_some_and(|id| lb.vip_sg_ids == [id.clone()]);
            if !bound {
                ops.push(Operation::SetVipSecurityGroup {
                    load_balancer: lb_ref.clone(),
                    group: Some(g.clone()),
                });
            }
        }
        None => {
            let Some(have) = owned(observed, &desired.owner_tags) else {
                return Ok(());
            };
            if lb.vip_sg_ids.contains(&have.id) {
                ops.push(Operation::SetVipSecurityGroup {
                    load_balancer: lb_ref.clone(),
                    group: None,
                });
            }
            ops.push(Operation::DeleteSecurityGroup {
                id: have.id.clone(),
                name: have.name.clone(),
            });
        }
    }
    Ok(())
}

/// A removal's: the Service's group, deleted after its load balancer.
pub(super) fn removal(observed: &Observed, owner: &[String]) -> Vec<Operation> {
    owned(observed, owner)
        .map(|g| Operation::DeleteSecurityGroup {
            id: g.id.clone(),
            name: g.name.clone(),
        })
        .into_iter()
        .collect()
}
