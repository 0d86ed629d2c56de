//! What the reconciler answers: the load balancer as the user sees it, the
//! floating IP, the status to write back on the Service, the operations
//! done and the calls they took.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Value, json};

use super::cloud::Calls;
use crate::model::{IngressShape, Observed, ObservedFloatingIp, ObservedLoadBalancer, ServiceRef};
use crate::names::is_owned;
use crate::plan::OperationSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyAction {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Skipped,
}

impl ApplyAction {
    /// As serialized, and as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyAction::Created => "created",
            ApplyAction::Updated => "updated",
            ApplyAction::Unchanged => "unchanged",
            ApplyAction::Deleted => "deleted",
            ApplyAction::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PoolMember)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub id: String,
    #[schema(value_type = String)]
    pub address: IpAddr,
    pub protocol_port: u16,
    /// 1 serving, 0 draining; absent where Octavia's status tree was read
    /// (it shows none: weights are read when a member drains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Octavia's operating status of the member (`ONLINE`, `ERROR`: its
    /// health monitor finds it down, `DRAINING`, `OFFLINE`, `NO_MONITOR`:
    /// its pool has no health monitor); empty where the cloud did not say.
    pub operating_status: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Pool)]
#[serde(rename_all = "camelCase")]
pub struct PoolView {
    pub id: String,
    pub name: String,
    /// `TCP`, `UDP`, `SCTP`, `HTTP`, `HTTPS`, `PROXY`, `PROXYV2`.
    pub protocol: String,
    pub lb_algorithm: String,
    pub session_persistence: Option<String>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Listener)]
#[serde(rename_all = "camelCase")]
pub struct ListenerView {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub protocol_port: u16,
    pub allowed_cidrs: Vec<String>,
    /// The headers an HTTP listener inserts (`X-Forwarded-For`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub insert_headers: Vec<String>,
    /// A TERMINATED_HTTPS listener's Barbican certificate container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tls_container_ref: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sni_container_refs: Vec<String>,
    pub pool: Option<PoolView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerView {
    pub id: String,
    /// Absent for a Service that shares another's load balancer: the name
    /// is the owner's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub vip_address: Option<IpAddr>,
    pub vip_port_id: Option<String>,
    pub provisioning_status: String,
    pub operating_status: String,
    pub listeners: Vec<ListenerView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = FloatingIp)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpView {
    /// Absent for a Service that shares another's load balancer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[schema(value_type = String)]
    pub address: IpAddr,
    /// `pool` (allocated by svc-lbaas), `user` (spec.loadBalancerIP) or
    /// `shared` (the floating IP of a load balancer this Service shares).
    pub method: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct CallCounts {
    pub reads: u32,
    pub writes: u32,
    pub waits: u32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    pub service: String,
    pub action: ApplyAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub converged: bool,
    pub load_balancer: Option<LoadBalancerView>,
    pub floating_ip: Option<FloatingIpView>,
    /// A core/v1 ServiceStatus, ready to PATCH onto the Service.
    #[schema(value_type = Object)]
    pub status: Value,
    pub operations: Vec<OperationSummary>,
    pub openstack_calls: CallCounts,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What `owner`'s Service sees of `lb`: all of one it owns; of one it
/// shares, only its own listeners and pools, the id, address and statuses.
fn lb_view(lb: &ObservedLoadBalancer, owner: &[String]) -> LoadBalancerView {
    let owns = is_owned(&lb.tags, owner);
    let listeners = lb
        .listeners
        .iter()
        .filter(|l| owns || is_owned(&l.tags, owner))
        .map(|l| ListenerView {
            id: l.id.clone(),
            name: l.name.clone(),
            protocol: l.protocol.clone(),
            protocol_port: l.protocol_port,
            allowed_cidrs: l.allowed_cidrs.iter().map(ToString::to_string).collect(),
            insert_headers: l.insert_headers.clone(),
            default_tls_container_ref: l.default_tls_container_ref.clone(),
            sni_container_refs: l.sni_container_refs.clone(),
            pool: l
                .default_pool_id
                .as_ref()
                .and_then(|id| lb.pools.iter().find(|p| &p.id == id))
                .map(|p| PoolView {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    protocol: p.protocol.clone(),
                    lb_algorithm: p.lb_algorithm.clone(),
                    session_persistence: p.session_persistence.clone(),
                    members: p
                        .members
                        .iter()
                        .map(|m| MemberView {
                            id: m.id.clone(),
                            address: m.address,
                            protocol_port: m.protocol_port,
                            weight: m.weight,
                            operating_status: m.operating_status.clone(),
                        })
                        .collect(),
                }),
        })
        .collect();
    LoadBalancerView {
        id: lb.id.clone(),
        name: owns.then(|| lb.name.clone()),
        vip_address: lb.vip_address,
        vip_port_id: lb.vip_port_id.clone().filter(|_| owns),
        provisioning_status: lb.provisioning_status.clone(),
        operating_status: lb.operating_status.clone(),
        listeners,
    }
}

impl ApplyResponse {
    /// The answer for `service`: the owned load balancer, its floating IP and the
    /// status to write back as `observed` shows them (`None`: nothing there), the
    /// operations done and the calls counted. Converged, no reason, no notes:
    /// callers set what differs.
    pub(super) fn new(
        service: &ServiceRef,
        action: ApplyAction,
        observed: Option<(&Observed, &[String], &IngressShape)>,
        operations: Vec<OperationSummary>,
        calls: &Calls,
    ) -> ApplyResponse {
        let (load_balancer, floating_ip, status) = match observed {
            Some((observed, owner, ingress)) => summarise(observed, owner, ingress),
            None => (None, None, json!({"loadBalancer": {}})),
        };
        let (reads, writes, waits) = calls.snapshot();
        ApplyResponse {
            service: service.to_string(),
            action,
            reason: None,
            converged: true,
            load_balancer,
            floating_ip,
            status,
            operations,
            openstack_calls: CallCounts {
                reads,
                writes,
                waits,
            },
            notes: Vec::new(),
        }
    }
}

/// The owned load balancer, its floating IP and the status to write back.
fn summarise(
    observed: &Observed,
    owner: &[String],
    shape: &IngressShape,
) -> (Option<LoadBalancerView>, Option<FloatingIpView>, Value) {
    // The survivor, when replicas raced: the oldest usable one (observe sorts them).
    let owned = || {
        observed
            .load_balancers
            .iter()
            .filter(|lb| crate::names::serves(&lb.tags, owner))
    };
    let lb = owned()
        .find(|lb| lb.provisioning_status != "ERROR")
        .or_else(|| owned().next());
    let fip: Option<&ObservedFloatingIp> = lb.and_then(|lb| {
        observed
            .floating_ips
            .iter()
            .find(|f| f.port_id.is_some() && f.port_id == lb.vip_port_id)
    });
    let ingress = fip
        .map(|f| f.address)
        .or_else(|| lb.and_then(|l| l.vip_address));
    let status = match ingress {
        Some(ip) => json!({"loadBalancer": {"ingress": [shape.entry(ip)]}}),
        None => json!({"loadBalancer": {}}),
    };
    let shared = lb.is_some_and(|lb| !is_owned(&lb.tags, owner));
    let fip_view = fip.map(|f| FloatingIpView {
        id: (!shared || is_owned(&f.tags, owner)).then(|| f.id.clone()),
        address: f.address,
        method: if is_owned(&f.tags, owner) {
            "pool"
        } else if lb.is_some_and(|lb| !is_owned(&lb.tags, owner)) {
            // The floating IP of a load balancer this Service shares.
            "shared"
        } else {
            "user"
        },
    });
    (lb.map(|lb| lb_view(lb, owner)), fip_view, status)
}

/// What `/v1/sync` found of a Service the cloud has and the list has not.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrphanResult {
    /// `namespace/name` as the ownership tag says (a shortened tag keeps its start).
    pub service: String,
    /// `deleted`, `would delete` (dry run), `skipped` (see `reason`) or `failed`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub operations: Vec<OperationSummary>,
}

/// What an Endpoints or EndpointSlice change did.
pub enum MembersOutcome {
    Applied(Box<ApplyResponse>),
    /// No load balancer for the Service yet: its Service apply will bring the members.
    Pending,
}
