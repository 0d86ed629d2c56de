//! The planner's vocabulary: the operations a plan is made of, what the
//! API can do (capabilities), and why no plan can be made.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::config::Api;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, HealthMonitor, Member, Observed,
    ObservedFloatingIp,
};

pub use crate::model::{ListenerUpdate, MemberSpec, PoolUpdate};

/// What the load-balancing API can do; decides the shape of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// One POST creates a load balancer with listeners, pools, members, monitors.
    pub fully_populated_create: bool,
    /// A listener created with its default pool inline, a pool with its members
    /// and monitor inline. Off for Octavia: Octavia 19 answers those with a 500
    /// ("'dict' object has no attribute '_sa_instance_state'", found on the real
    /// cloud), while the load balancer's own fully-populated create works.
    pub populated_children: bool,
    /// `PUT /pools/{id}/members` replaces a pool's members in one call.
    pub batch_members: bool,
    /// Listener `allowed_cidrs` (Octavia API 2.12).
    pub allowed_cidrs: bool,
    /// Listener timeouts (Octavia API 2.1).
    pub listener_timeouts: bool,
    /// Load balancer `additional_vips` (Octavia API 2.26).
    pub additional_vips: bool,
    /// UDP and SCTP listeners and their monitors (UDP-CONNECT, SCTP), TLS-HELLO
    /// monitors and PROXY pools: Octavia's, not the legacy API's.
    pub octavia_protocols: bool,
    /// SCTP listeners and pools (Octavia API 2.23).
    pub sctp: bool,
    /// Security groups of ours on the VIP port (`vip_sg_ids`, Octavia API 2.29).
    pub vip_sg_ids: bool,
    /// UDP pools' `session_persistence.persistence_timeout` (Octavia API 2.2).
    pub persistence_timeout: bool,
    /// Listener `alpn_protocols` (Octavia API 2.20).
    pub alpn: bool,
    /// `PROMETHEUS` listeners (Octavia API 2.25).
    pub prometheus_listeners: bool,
}

impl Capabilities {
    pub const OCTAVIA: Capabilities = Capabilities {
        fully_populated_create: true,
        populated_children: false,
        batch_members: true,
        allowed_cidrs: true,
        listener_timeouts: true,
        additional_vips: true,
        octavia_protocols: true,
        sctp: true,
        vip_sg_ids: true,
        persistence_timeout: true,
        alpn: true,
        prometheus_listeners: true,
    };
    /// The legacy Neutron LBaaS v2 API: one object per call.
    pub const NEUTRON_LBAAS: Capabilities = Capabilities {
        fully_populated_create: false,
        populated_children: false,
        batch_members: false,
        allowed_cidrs: false,
        listener_timeouts: false,
        additional_vips: false,
        octavia_protocols: false,
        sctp: false,
        vip_sg_ids: false,
        persistence_timeout: false,
        alpn: false,
        prometheus_listeners: false,
    };

    pub fn of(api: Api) -> Capabilities {
        match api {
            Api::Octavia => Capabilities::OCTAVIA,
            Api::NeutronLbaas => Capabilities::NEUTRON_LBAAS,
        }
    }

    /// What the cloud offers, from Octavia's newest API minor version: batch
    /// members and listener timeouts from 2.1, `allowed_cidrs` from 2.12,
    /// UDP persistence timeouts from 2.2, ALPN from 2.20,
    /// SCTP from 2.23, `additional_vips` from 2.26, `vip_sg_ids` from 2.29. Unknown (or the legacy
    /// API): what the API offers at most.
    pub fn discovered(api: Api, minor: Option<u32>) -> Capabilities {
        let most = Capabilities::of(api);
        match (api, minor) {
            (Api::Octavia, Some(m)) => Capabilities {
                fully_populated_create: true,
                populated_children: most.populated_children,
                batch_members: m >= 1,
                listener_timeouts: m >= 1,
                allowed_cidrs: m >= 12,
                additional_vips: m >= 26,
                octavia_protocols: true,
                sctp: m >= 23,
                vip_sg_ids: m >= 29,
                persistence_timeout: m >= 2,
                alpn: m >= 20,
                prometheus_listeners: m >= 25,
            },
            _ => most,
        }
    }
}

/// A resource by id, or (id `None`) one created earlier in the same plan, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub id: Option<String>,
    pub name: String,
}

impl Ref {
    pub(super) fn existing(id: &str, name: &str) -> Ref {
        Ref {
            id: Some(id.to_string()),
            name: name.to_string(),
        }
    }
    pub(super) fn planned(name: &str) -> Ref {
        Ref {
            id: None,
            name: name.to_string(),
        }
    }
}

/// One OpenStack write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `populated`: listeners, pools, members and monitors in the same request.
    CreateLoadBalancer {
        load_balancer: Box<DesiredLoadBalancer>,
        populated: bool,
        additional_vips: bool,
        /// The VIP security group (`vip_sg_ids`), created before it.
        vip_security_group: Option<Ref>,
    },
    /// Cascade delete: listeners, pools, members and monitors go with it.
    DeleteLoadBalancer {
        id: String,
        name: String,
    },
    /// `with_pool`: its default pool (with members and monitor) in the same request.
    CreateListener {
        load_balancer: Ref,
        listener: Box<DesiredListener>,
        with_pool: bool,
    },
    /// The load balancer's own metrics endpoint: no pool, `allowed_cidrs` only.
    CreatePrometheusListener {
        load_balancer: Ref,
        listener: crate::model::PrometheusListener,
    },
    UpdateListener {
        id: String,
        name: String,
        update: ListenerUpdate,
    },
    DeleteListener {
        id: String,
        name: String,
    },
    /// Becomes the listener's default pool; `populated`: members and monitor inline.
    CreatePool {
        load_balancer: Ref,
        listener: Ref,
        pool: Box<DesiredPool>,
        populated: bool,
    },
    UpdatePool {
        id: String,
        name: String,
        update: PoolUpdate,
    },
    DeletePool {
        id: String,
        name: String,
    },
    ReplaceMembers {
        pool: Ref,
        members: Vec<MemberSpec>,
    },
    CreateMember {
        pool: Ref,
        member: Member,
        subnet_id: Option<String>,
    },
    DeleteMember {
        pool: Ref,
        id: String,
        member: Member,
    },
    /// A member's weight (and the name that says whether it drains), in
    /// place: its open connections stay (the legacy API, one call each).
    UpdateMember {
        pool: Ref,
        id: String,
        member: Member,
    },
    CreateHealthMonitor {
        pool: Ref,
        monitor: HealthMonitor,
    },
    UpdateHealthMonitor {
        id: String,
        pool: String,
        monitor: HealthMonitor,
    },
    DeleteHealthMonitor {
        id: String,
        pool: String,
    },
    /// Allocates a floating IP already associated with the VIP port.
    /// With `subnet_match`, the apply finds the floating network's subnets
    /// that match before any write (`subnet_id` the first, `more_subnets`
    /// the others, tried in turn when one has no address left).
    CreateFloatingIp {
        vip_port: Ref,
        subnet_id: Option<String>,
        network_id: Option<String>,
        description: String,
        subnet_match: Option<Box<crate::model::FloatingSubnetMatch>>,
        more_subnets: Vec<String>,
    },
    /// `id: None` only offline, where the user's floating IP was not looked up.
    AssociateFloatingIp {
        id: Option<String>,
        address: IpAddr,
        vip_port: Ref,
    },
    DisassociateFloatingIp {
        id: String,
        address: IpAddr,
    },
    DeleteFloatingIp {
        id: String,
        address: IpAddr,
    },
    /// The Service's VIP security group with its ingress rules (Neutron).
    CreateSecurityGroup {
        group: Box<crate::model::VipSecurityGroup>,
    },
    /// Ingress rules added to and removed (by id) from the VIP security group.
    UpdateSecurityGroup {
        id: String,
        name: String,
        add: Vec<crate::model::SecurityGroupRule>,
        remove: Vec<String>,
    },
    /// The VIP port's security groups (`vip_sg_ids`): ours, or (`None`)
    /// Octavia's own again.
    SetVipSecurityGroup {
        load_balancer: Ref,
        group: Option<Ref>,
    },
    /// Once no port uses it (the load balancer settled or gone).
    DeleteSecurityGroup {
        id: String,
        name: String,
    },
    /// Takes over what another tool made, in place: our name and tags (a
    /// floating IP: our description), nothing else changes (`adopt.rs`).
    Adopt {
        resource: Adoptee,
        /// The load balancer it is on (itself for the load balancer).
        load_balancer: String,
        id: String,
        name: String,
        new_name: Option<String>,
        tags: Vec<String>,
        from: crate::config::AdoptFrom,
    },
    /// A shared load balancer (`load-balancer-id`) changes hands: a Service
    /// joins or leaves it (its sharer tag), or its owner leaves and the
    /// first sharer takes it over (name, tags; its floating IP's description).
    /// The load balancer's tags change by `add` and `remove`, applied to
    /// what it carries when the write is made (others may have joined since
    /// the plan); a floating IP takes the owner tags `add` as its description.
    Share {
        step: ShareStep,
        resource: Adoptee,
        /// The load balancer's id.
        load_balancer: String,
        id: String,
        name: String,
        new_name: Option<String>,
        add: Vec<String>,
        remove: Vec<String>,
    },
}

/// What an [`Operation::Share`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareStep {
    Join,
    Leave,
    HandOver,
    /// The owner's `share-with` tags changed.
    Open,
    /// A sharer of a namespace the owner no longer opens to is removed.
    Evict,
}

pub use crate::model::Adoptee;

/// The summary of an operation that answers show: `{op, resource, name, id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OperationSummary {
    pub op: &'static str,
    pub resource: &'static str,
    pub name: String,
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

impl Operation {
    pub fn summary(&self) -> OperationSummary {
        use Operation::*;
        let s = |op, resource, name: &str, id: Option<&String>, detail: Option<String>| {
            OperationSummary {
                op,
                resource,
                name: name.to_string(),
                id: id.cloned(),
                detail,
            }
        };
        match self {
            CreateLoadBalancer {
                load_balancer: lb,
                populated,
                ..
            } => {
                let detail = populated.then(|| {
                    let members: usize = lb
                        .listeners
                        .iter()
                        .map(|l| l.pool.members.as_ref().map_or(0, BTreeSet::len))
                        .sum();
                    let monitors = lb
                        .listeners
                        .iter()
                        .filter(|l| l.pool.health_monitor.is_some())
                        .count();
                    let n = lb.listeners.len();
                    format!(
                        "fully populated: {}, {}, {}, {}",
                        plural(n, "listener"),
                        plural(n, "pool"),
                        plural(members, "member"),
                        plural(monitors, "health monitor")
                    )
                });
                s("create", "loadbalancer", &lb.name, None, detail)
            }
            DeleteLoadBalancer { id, name } => s(
                "delete",
                "loadbalancer",
                name,
                Some(id),
                Some("cascade".into()),
            ),
            CreateListener {
                listener,
                with_pool,
                ..
            } => {
                let detail = with_pool.then(|| {
                    let members = listener.pool.members.as_ref().map_or(0, BTreeSet::len);
                    format!("with its pool and {}", plural(members, "member"))
                });
                s("create", "listener", &listener.name, None, detail)
            }
            CreatePrometheusListener { listener, .. } => s(
                "create",
                "listener",
                &listener.name,
                None,
                Some(format!(
                    "PROMETHEUS, open to {}",
                    listener
                        .allowed_cidrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            UpdateListener { id, name, update } => s(
                "update",
                "listener",
                name,
                Some(id),
                Some(update.fields().join(", ")),
            ),
            DeleteListener { id, name } => s("delete", "listener", name, Some(id), None),
            CreatePool {
                pool, populated, ..
            } => {
                let detail = populated
                    .then(|| plural(pool.members.as_ref().map_or(0, BTreeSet::len), "member"));
                s("create", "pool", &pool.name, None, detail)
            }
            UpdatePool { id, name, update } => {
                let mut fields = Vec::new();
                if update.lb_algorithm.is_some() {
                    fields.push("lb_algorithm");
                }
                if update.session_persistence.is_some() {
                    fields.push("session_persistence");
                }
                if update.tags.is_some() {
                    fields.push("tags");
                }
                s("update", "pool", name, Some(id), Some(fields.join(", ")))
            }
            DeletePool { id, name } => s("delete", "pool", name, Some(id), None),
            ReplaceMembers { pool, members } => {
                let draining = members
                    .iter()
                    .filter(|m| m.owned && m.member.weight == Member::DRAINING)
                    .count();
                let mut detail = plural(members.len(), "member");
                if draining > 0 {
                    detail.push_str(&format!(" ({draining} draining, weight 0)"));
                }
                s(
                    "replace",
                    "members",
                    &pool.name,
                    pool.id.as_ref(),
                    Some(detail),
                )
            }
            CreateMember { pool, member, .. } => s(
                "create",
                "member",
                &format!("{}:{}", member.address, member.protocol_port),
                None,
                Some(if member.weight == Member::DRAINING {
                    format!("in pool {}, draining (weight 0)", pool.name)
                } else {
                    format!("in pool {}", pool.name)
                }),
            ),
            UpdateMember { pool, id, member } => s(
                "update",
                "member",
                &format!("{}:{}", member.address, member.protocol_port),
                Some(id),
                Some(format!("weight {} in pool {}", member.weight, pool.name)),
            ),
            DeleteMember { pool, id, member } => s(
                "delete",
                "member",
                &format!("{}:{}", member.address, member.protocol_port),
                Some(id),
                Some(format!("from pool {}", pool.name)),
            ),
            CreateHealthMonitor { pool, monitor } => s(
                "create",
                "healthmonitor",
                &pool.name,
                None,
                Some(monitor.kind.as_str().to_string()),
            ),
            UpdateHealthMonitor { id, pool, .. } => {
                s("update", "healthmonitor", pool, Some(id), None)
            }
            DeleteHealthMonitor { id, pool } => s("delete", "healthmonitor", pool, Some(id), None),
            CreateFloatingIp {
                vip_port,
                subnet_id,
                network_id,
                description,
                subnet_match,
                ..
            } => {
                let from = match (subnet_id, network_id, subnet_match) {
                    (Some(s), _, _) => format!("from subnet {s}"),
                    (None, Some(n), Some(m)) => {
                        format!("from a subnet of network {n} matching {}", m.describe())
                    }
                    (None, Some(n), None) => format!("from network {n}"),
                    (None, None, _) => "from the external network".to_string(),
                };
                s(
                    "create",
                    "floatingip",
                    description,
                    None,
                    Some(format!("{from}, on the VIP port of {}", vip_port.name)),
                )
            }
            AssociateFloatingIp {
                id,
                address,
                vip_port,
            } => s(
                "associate",
                "floatingip",
                &address.to_string(),
                id.as_ref(),
                Some(format!("to the VIP port of {}", vip_port.name)),
            ),
            DisassociateFloatingIp { id, address } => s(
                "disassociate",
                "floatingip",
                &address.to_string(),
                Some(id),
                None,
            ),
            DeleteFloatingIp { id, address } => {
                s("delete", "floatingip", &address.to_string(), Some(id), None)
            }
            Adopt {
                resource,
                id,
                name,
                new_name,
                from,
                ..
            } => {
                let what = match (resource, new_name) {
                    (Adoptee::FloatingIp, _) => "its description and tags ours".to_string(),
                    (_, Some(n)) if n != name => format!("renamed {n}, tagged ours"),
                    _ => "tagged ours".to_string(),
                };
                s(
                    "adopt",
                    resource.as_str(),
                    name,
                    Some(id),
                    Some(format!("from {}: {what}", from.as_str())),
                )
            }
            CreateSecurityGroup { group } => s(
                "create",
                "securitygroup",
                &group.name,
                None,
                Some(format!(
                    "on the VIP port: {}",
                    plural(group.rules.len(), "ingress rule")
                )),
            ),
            UpdateSecurityGroup {
                id,
                name,
                add,
                remove,
            } => s(
                "update",
                "securitygroup",
                name,
                Some(id),
                Some(format!(
                    "{} added, {} removed",
                    plural(add.len(), "rule"),
                    remove.len()
                )),
            ),
            SetVipSecurityGroup {
                load_balancer,
                group,
            } => s(
                "update",
                "loadbalancer",
                &load_balancer.name,
                load_balancer.id.as_ref(),
                Some(match group {
                    Some(g) => format!("vip_sg_ids: {}", g.name),
                    None => "vip_sg_ids: none (Octavia's own)".into(),
                }),
            ),
            DeleteSecurityGroup { id, name } => s("delete", "securitygroup", name, Some(id), None),
            Share {
                step,
                resource,
                id,
                name,
                new_name,
                ..
            } => {
                let (op, detail) = match step {
                    ShareStep::Join => ("join", "this Service shares it".to_string()),
                    ShareStep::Leave => ("leave", "this Service no longer shares it".into()),
                    ShareStep::HandOver => (
                        "hand over",
                        match new_name {
                            Some(n) => format!("to {n}, its oldest allowed sharer"),
                            None => "to its oldest allowed sharer".into(),
                        },
                    ),
                    ShareStep::Open => (
                        "share with",
                        "the namespaces svc-lbaas.io/share-with-namespaces names".into(),
                    ),
                    ShareStep::Evict => (
                        "evict",
                        "a sharer of a namespace the owner no longer shares with".into(),
                    ),
                };
                s(op, resource.as_str(), name, Some(id), Some(detail))
            }
        }
    }

    /// Whether the operation changes the load balancer tree (and so needs a
    /// wait for ACTIVE before the next one); floating IP operations do not.
    pub fn is_load_balancer_write(&self) -> bool {
        !matches!(
            self,
            Operation::CreateFloatingIp { .. }
                | Operation::CreateSecurityGroup { .. }
                | Operation::UpdateSecurityGroup { .. }
                | Operation::DeleteSecurityGroup { .. }
                | Operation::AssociateFloatingIp { .. }
                | Operation::DisassociateFloatingIp { .. }
                | Operation::DeleteFloatingIp { .. }
                | Operation::Adopt {
                    resource: Adoptee::FloatingIp,
                    ..
                }
                | Operation::Share {
                    resource: Adoptee::FloatingIp,
                    ..
                }
        )
    }
}

/// Why no plan can be made; each is the user's or another owner's to resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{resource} {name} ({id}) exists but was not created by svc-lbaas for this cluster and Service; it is left alone"
    )]
    NotOwned {
        resource: &'static str,
        name: String,
        id: String,
    },
    #[error("floating IP {address} (spec.loadBalancerIP) does not exist; create it first")]
    FloatingIpNotFound { address: IpAddr },
    // No port id: it would name another user's VIP.
    #[error("floating IP {address} (spec.loadBalancerIP) is bound to another port")]
    FloatingIpInUse { address: IpAddr },
    #[error(
        "floating IP {address} (spec.loadBalancerIP) is held for a Service of another namespace; it is left alone"
    )]
    FloatingIpTaken { address: IpAddr },
    #[error(
        "load balancer {id} (loadbalancer.openstack.org/load-balancer-id) is not open to namespace {namespace}: {why}"
    )]
    ShareForbidden {
        id: String,
        namespace: String,
        why: &'static str,
    },
    #[error("{what} is not offered by the {api} API")]
    Unsupported { what: String, api: &'static str },
    #[error(
        "a Service that joins load balancer {id} (loadbalancer.openstack.org/load-balancer-id) cannot add its metrics listener (svc-lbaas.io/prometheus-listener-port): the metrics are the whole load balancer's, its owner's to expose"
    )]
    MetricsOfShared { id: String },
    #[error(
        "port {port}/{protocol} of load balancer {load_balancer} is taken by listener {listener}, not this Service's; nothing was changed"
    )]
    PortTaken {
        port: u16,
        protocol: &'static str,
        load_balancer: String,
        listener: String,
    },
    #[error(
        "load balancer {name} ({id}) already serves {users} Services, as many as [LoadBalancer] max-shared-lb ({max}) allows"
    )]
    SharedFull {
        name: String,
        id: String,
        users: usize,
        max: u32,
    },
    #[error(
        "load balancer {name} ({id}) is shared with {others} other Service(s): what changed (VIP, subnet, network, flavor, availability zone or provider) needs a new load balancer, which would take their listeners; left as it is"
    )]
    SharedRecreate {
        name: String,
        id: String,
        others: usize,
    },
    #[error(
        "load balancer {name} ({id}) is the one loadbalancer.openstack.org/load-balancer-id names: what changed (flavor, availability zone, provider, additional VIPs) needs a new load balancer, whose id would differ; left as it is (remove the annotation to have it re-created)"
    )]
    NamedRecreate { name: String, id: String },
    #[error(
        "load balancer {name} ({id}) is in ERROR: its owner's next apply re-creates it (with another id) or its DELETE removes it; then update loadbalancer.openstack.org/load-balancer-id"
    )]
    SharedInError { name: String, id: String },
    #[error(
        "load balancer {name} ({id}) is shared with {}: deleting its owner hands it over with its floating IP, which cannot then be kept (keepFloatingIp, loadbalancer.openstack.org/keep-floatingip); delete them first or drop the keep",
        sharers.join(", ")
    )]
    KeptWithSharers {
        name: String,
        id: String,
        sharers: Vec<String>,
    },
    #[error(
        "load balancer {name} ({id}) cannot be shared with a VIP security group (spec.loadBalancerSourceRanges as vip_sg_ids, on one side or the other): it would filter every Service's ports with one Service's ranges"
    )]
    SharedSecurityGroup { name: String, id: String },
}

pub(super) fn delete_fip(fip: &ObservedFloatingIp) -> Operation {
    Operation::DeleteFloatingIp {
        id: fip.id.clone(),
        address: fip.address,
    }
}

pub(super) fn disassociate_fip(fip: &ObservedFloatingIp) -> Operation {
    Operation::DisassociateFloatingIp {
        id: fip.id.clone(),
        address: fip.address,
    }
}

/// The floating IPs observed, each once, in address order.
pub(super) fn unique_floating_ips(observed: &Observed) -> Vec<&ObservedFloatingIp> {
    let mut seen = HashSet::new();
    let mut fips: Vec<&ObservedFloatingIp> = observed
        .floating_ips
        .iter()
        .filter(|f| seen.insert(f.id.as_str()))
        .collect();
    fips.sort_by(|a, b| (a.address, &a.id).cmp(&(b.address, &b.id)));
    fips
}
