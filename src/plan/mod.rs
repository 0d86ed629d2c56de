//! Pure planning: `plan(desired, observed)` -> the ordered OpenStack operations
//! that converge what OpenStack has onto what the Service needs. No I/O.
//!
//! Rules: create the whole tree in one fully-populated request where the API
//! offers it; update mutable fields in place; delete and re-create only what is
//! immutable (VIP, listener protocol/port, pool protocol, monitor type); one
//! batch member replacement per pool whose members differ; never delete what
//! lacks this tool's ownership tags.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::config::Api;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, FloatingIpIntent, FloatingIpLookup,
    HealthMonitor, Member, Observed, ObservedFloatingIp, ObservedListener, ObservedLoadBalancer,
    ObservedMember, ObservedPool, Translation,
};
use crate::names::{self, is_owned};

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
    fn existing(id: &str, name: &str) -> Ref {
        Ref {
            id: Some(id.to_string()),
            name: name.to_string(),
        }
    }
    fn planned(name: &str) -> Ref {
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

/// Plans one Service: converge for a load balancer, remove for a skip.
pub fn plan(
    translation: &Translation,
    observed: &Observed,
    caps: Capabilities,
) -> Result<Vec<Operation>, PlanError> {
    match translation {
        Translation::LoadBalancer(desired) => plan_load_balancer(desired, observed, caps),
        Translation::Skip {
            owner_tags,
            keep_floating_ip,
            ..
        } => {
            share::check_keep(observed, owner_tags, *keep_floating_ip)?;
            Ok(plan_removal(observed, owner_tags, *keep_floating_ip))
        }
    }
}

/// A removal that keeps the floating IP refused while the Service owns a
/// load balancer others share: the address goes with it to the next owner.
pub fn check_removal(
    observed: &Observed,
    owner_tags: &[String],
    keep_floating_ip: bool,
) -> Result<(), PlanError> {
    share::check_keep(observed, owner_tags, keep_floating_ip)
}

/// Removes everything this tool created for the Service: floating IPs first
/// (a kept one only disassociated, a user's only disassociated), then each
/// owned load balancer by cascade delete. From a load balancer other
/// Services share (`load-balancer-id`) only this Service's listeners and
/// pools go: it leaves one it shares, and hands one it owns over to its
/// first sharer (name, tags and floating IP), so the last Service out
/// deletes it, and never one a user made.
pub fn plan_removal(
    observed: &Observed,
    owner_tags: &[String],
    keep_floating_ip: bool,
) -> Vec<Operation> {
    let sharer = crate::names::sharer_tag(owner_tags);
    let mut ops = Vec::new();
    let mut shared_ports: HashSet<&str> = HashSet::new();
    let mut owned: Vec<&ObservedLoadBalancer> = Vec::new();
    for lb in &observed.load_balancers {
        let joined = sharer.as_ref().is_some_and(|s| lb.tags.contains(s));
        let is_owner = is_owned(&lb.tags, owner_tags);
        // An owner that hands nothing over (no allowed sharer, or in ERROR,
        // where only a delete is taken) cascades, the sharers' parts with it.
        let error = lb.provisioning_status == "ERROR";
        if is_owner && !share::hands_over(lb) {
            owned.push(lb);
            continue;
        }
        // (One nobody re-creates, a user's or OCCM's, keeps the sharer's
        // part: its removal is tried, and fails while it is in ERROR.)
        let recreated = lb.tags.iter().any(|t| t == crate::names::TOOL_TAG);
        if !is_owner && (!joined || (error && recreated)) {
            continue;
        }
        share::remove_own_children(lb, owner_tags, &mut ops);
        shared_ports.extend(lb.vip_port_id.as_deref());
        if is_owner {
            share::hand_over(lb, observed, owner_tags, &mut ops);
        } else {
            ops.push(share::op(
                ShareStep::Leave,
                Adoptee::LoadBalancer,
                lb,
                (&lb.id, &lb.id),
                None,
                Vec::new(),
                sharer
                    .iter()
                    .flat_map(|s| share::tags_of_sharer(lb, s))
                    .collect(),
            ));
        }
    }
    let vip_ports: HashSet<&str> = owned
        .iter()
        .filter_map(|lb| lb.vip_port_id.as_deref())
        .collect();
    // A user's VIP port (port-id) outlives the load balancer with the
    // floating IP the user bound to it.
    let user_ports: HashSet<&str> = owned
        .iter()
        .filter(|lb| lb.tags.iter().any(|t| t == crate::names::USER_PORT_TAG))
        .filter_map(|lb| lb.vip_port_id.as_deref())
        .collect();
    let mut fip_ops = Vec::new();
    for fip in unique_floating_ips(observed) {
        let port = fip.port_id.as_deref();
        if port.is_some_and(|p| shared_ports.contains(p)) {
            // A shared load balancer's stays with it.
            continue;
        }
        let bound = port.is_some_and(|p| vip_ports.contains(p) && !user_ports.contains(p));
        if is_owned(&fip.tags, owner_tags) {
            if !keep_floating_ip {
                fip_ops.push(delete_fip(fip));
            } else if fip.port_id.is_some() {
                fip_ops.push(disassociate_fip(fip));
            }
        } else if bound {
            fip_ops.push(disassociate_fip(fip));
        }
    }
    fip_ops.append(&mut ops);
    for lb in &owned {
        fip_ops.push(Operation::DeleteLoadBalancer {
            id: lb.id.clone(),
            name: lb.name.clone(),
        });
    }
    // Its VIP security group, once the load balancer (its port) is gone.
    if !owned.is_empty() || observed.load_balancers.is_empty() {
        fip_ops.extend(security_group::removal(observed, owner_tags));
    }
    fip_ops
}

fn delete_fip(fip: &ObservedFloatingIp) -> Operation {
    Operation::DeleteFloatingIp {
        id: fip.id.clone(),
        address: fip.address,
    }
}

fn disassociate_fip(fip: &ObservedFloatingIp) -> Operation {
    Operation::DisassociateFloatingIp {
        id: fip.id.clone(),
        address: fip.address,
    }
}

fn unique_floating_ips(observed: &Observed) -> Vec<&ObservedFloatingIp> {
    let mut seen = HashSet::new();
    let mut fips: Vec<&ObservedFloatingIp> = observed
        .floating_ips
        .iter()
        .filter(|f| seen.insert(f.id.as_str()))
        .collect();
    fips.sort_by(|a, b| (a.address, &a.id).cmp(&(b.address, &b.id)));
    fips
}

fn api_name(caps: Capabilities) -> &'static str {
    if caps == Capabilities::NEUTRON_LBAAS {
        "Neutron LBaaS v2"
    } else {
        "load-balancer"
    }
}

fn check_capabilities(desired: &DesiredLoadBalancer, caps: Capabilities) -> Result<(), PlanError> {
    let api = api_name(caps);
    if !caps.vip_sg_ids && desired.vip_security_group.is_some() {
        return Err(PlanError::Unsupported {
            what: "spec.loadBalancerSourceRanges as a security group on the VIP port (vip_sg_ids, Octavia API 2.29; the ovn provider has no allowed_cidrs)".into(),
            api,
        });
    }
    if !caps.octavia_protocols && desired.vip.port_id.is_some() {
        return Err(PlanError::Unsupported {
            what: "a VIP port (loadbalancer.openstack.org/port-id)".into(),
            api,
        });
    }
    // Its tags would go into the legacy objects' 255-character description.
    if !caps.octavia_protocols && !desired.share_with.is_empty() {
        return Err(PlanError::Unsupported {
            what: "sharing with other namespaces (svc-lbaas.io/share-with-namespaces)".into(),
            api,
        });
    }
    for l in &desired.listeners {
        if !caps.octavia_protocols {
            use crate::model::{HealthMonitorType, ListenerProtocol, PoolProtocol};
            let what = if matches!(l.protocol, ListenerProtocol::Udp | ListenerProtocol::Sctp) {
                Some(format!("{} listeners ({})", l.protocol.as_str(), l.name))
            } else if matches!(l.pool.protocol, PoolProtocol::Proxy | PoolProtocol::ProxyV2) {
                Some(format!(
                    "{} pools (loadbalancer.openstack.org/proxy-protocol)",
                    l.pool.protocol.as_str()
                ))
            } else {
                l.pool
                    .health_monitor
                    .as_ref()
                    .filter(|hm| {
                        !matches!(hm.kind, HealthMonitorType::Tcp | HealthMonitorType::Http)
                    })
                    .map(|hm| format!("{} health monitors", hm.kind.as_str()))
            };
            let what = what.or_else(|| {
                (!l.insert_headers.is_empty()).then(|| {
                    "inserted headers (loadbalancer.openstack.org/x-forwarded-*)".to_string()
                })
            });
            if let Some(what) = what {
                return Err(PlanError::Unsupported { what, api });
            }
        }
        if !caps.sctp && l.protocol == crate::model::ListenerProtocol::Sctp {
            return Err(PlanError::Unsupported {
                what: format!("SCTP listeners ({}; Octavia API 2.23)", l.name),
                api,
            });
        }
        if !caps.allowed_cidrs && !l.allowed_cidrs.is_empty() {
            return Err(PlanError::Unsupported {
                what: "spec.loadBalancerSourceRanges (listener allowed_cidrs)".into(),
                api,
            });
        }
        let o = &l.options;
        if !caps.listener_timeouts
            && (o.timeout_client_data.is_some()
                || o.timeout_member_connect.is_some()
                || o.timeout_member_data.is_some()
                || o.timeout_tcp_inspect.is_some())
        {
            return Err(PlanError::Unsupported {
                what: "listener timeouts (loadbalancer.openstack.org/timeout-*)".into(),
                api,
            });
        }
    }
    Ok(())
}

/// Converges the owned load balancer (creating it when there is none).
pub fn plan_load_balancer(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    caps: Capabilities,
) -> Result<Vec<Operation>, PlanError> {
    check_capabilities(desired, caps)?;
    // What an older Octavia lacks and a Service can do without: left out.
    let fitted;
    let desired = if (!caps.alpn || !caps.persistence_timeout)
        && desired
            .listeners
            .iter()
            .any(|l| !l.alpn_protocols.is_empty() || l.pool.persistence_timeout.is_some())
    {
        let mut d = desired.clone();
        for l in &mut d.listeners {
            if !caps.alpn {
                l.alpn_protocols.clear();
            }
            if !caps.persistence_timeout {
                l.pool.persistence_timeout = None;
            }
        }
        fitted = d;
        &fitted
    } else {
        desired
    };
    // Another tool's load balancer for this Service, taken over: its
    // objects become ours in place, then the plan converges them. Octavia
    // only: the legacy API's objects take no tags.
    if caps.octavia_protocols
        && let Some(adopted) = adopt::adopt(desired, observed, caps.batch_members)
    {
        let mut ops = adopted.ops;
        ops.extend(plan_load_balancer(desired, &adopted.observed, caps)?);
        return Ok(ops);
    }
    let owner = &desired.owner_tags;
    // `load-balancer-id` naming a load balancer this Service does not own:
    // its listeners and pools go on it, shared.
    if let Some(target) = desired.load_balancer_id.as_ref().and_then(|id| {
        observed
            .load_balancers
            .iter()
            .find(|lb| &lb.id == id && !is_owned(&lb.tags, owner))
    }) {
        return share::plan_shared(desired, target, observed, caps);
    }
    let (mut owned, foreign): (Vec<&ObservedLoadBalancer>, Vec<&ObservedLoadBalancer>) = observed
        .load_balancers
        .iter()
        .partition(|lb| is_owned(&lb.tags, owner));
    // Replicas that raced may have made several: all of them keep the same one.
    owned.sort_by(|a, b| a.survival_key().cmp(&b.survival_key()));
    // (One it shares is not in the way: it is left below.)
    if owned.is_empty()
        && let Some(lb) = foreign
            .iter()
            .find(|lb| !crate::names::serves(&lb.tags, owner))
    {
        return Err(PlanError::NotOwned {
            resource: "load balancer",
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    }

    // The one to keep: healthy and with the right VIP if there is such a one;
    // any other owned copy (left by a crash) goes.
    let keep = owned
        .iter()
        .copied()
        .filter(|lb| lb.provisioning_status != "ERROR")
        .find(|lb| !needs_recreate(desired, lb, caps))
        .or_else(|| {
            owned
                .iter()
                .copied()
                .find(|lb| lb.provisioning_status != "ERROR")
        });
    let recreate = keep.is_none_or(|lb| needs_recreate(desired, lb, caps));
    // The one load-balancer-id names is never re-created (its id would change).
    if let Some(lb) =
        keep.filter(|lb| recreate && desired.load_balancer_id.as_deref() == Some(lb.id.as_str()))
    {
        return Err(PlanError::NamedRecreate {
            name: lb.name.clone(),
            id: lb.id.clone(),
        });
    }
    let mut ops = Vec::new();
    let mut gone_vip_ports = Vec::new();
    for lb in &owned {
        if recreate || keep.is_some_and(|k| k.id != lb.id) {
            // A cascade delete would take other Services' listeners too.
            // (One in ERROR takes only a delete: its owner re-creates it.)
            let users = crate::names::users_of(&lb.tags);
            if users > 1 && lb.provisioning_status != "ERROR" {
                return Err(PlanError::SharedRecreate {
                    name: lb.name.clone(),
                    id: lb.id.clone(),
                    others: users - 1,
                });
            }
            ops.push(Operation::DeleteLoadBalancer {
                id: lb.id.clone(),
                name: lb.name.clone(),
            });
            gone_vip_ports.extend(lb.vip_port_id.clone());
        }
    }

    let lb_ref;
    let vip_port;
    let mut tree_ops = Vec::new();
    let (sg_ops, group) = security_group::plan_group(desired, observed);
    ops.splice(0..0, sg_ops);
    match keep.filter(|_| !recreate) {
        Some(lb) => {
            lb_ref = Ref::existing(&lb.id, &lb.name);
            vip_port = match &lb.vip_port_id {
                Some(p) => Ref::existing(p, &lb.name),
                None => Ref::planned(&lb.name),
            };
            share::plan_openings(desired, lb, &mut tree_ops);
            plan_listeners(desired, lb, caps, &lb_ref, &mut tree_ops)?;
            security_group::plan_binding(
                desired,
                observed,
                lb,
                &lb_ref,
                group.as_ref(),
                &mut tree_ops,
            )?;
        }
        None => {
            share::leave_joined(desired, observed, &mut ops);
            ops.push(Operation::CreateLoadBalancer {
                load_balancer: Box::new(desired.clone()),
                populated: caps.fully_populated_create,
                additional_vips: caps.additional_vips,
                vip_security_group: group.clone(),
            });
            lb_ref = Ref::planned(&desired.name);
            // A user's port (port-id) is known before the load balancer is.
            vip_port = match &desired.vip.port_id {
                Some(p) => Ref::existing(p, &desired.name),
                None => Ref::planned(&desired.name),
            };
            if !caps.fully_populated_create {
                for listener in &desired.listeners {
                    create_listener(listener, caps, &lb_ref, &mut tree_ops);
                }
            }
        }
    }
    // Neutron's floating IP calls need no wait for the load balancer: they go
    // right after its creation, while Octavia provisions.
    plan_floating_ips(desired, observed, &vip_port, &gone_vip_ports, &mut ops)?;
    ops.extend(tree_ops);
    Ok(ops)
}

/// Immutable differences: VIP address or subnet, additional VIPs, flavor, AZ.
fn needs_recreate(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    caps: Capabilities,
) -> bool {
    let differs = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().is_some_and(|w| have.as_ref() != Some(w))
    };
    // One taken over from another tool keeps the VIP that tool chose, and
    // one named by load-balancer-id its own (it may have been handed over).
    let adopted = crate::names::is_adopted(&lb.tags)
        || desired.load_balancer_id.as_deref() == Some(lb.id.as_str());
    let vip_differs = !adopted
        && desired
            .vip
            .address
            .is_some_and(|a| lb.vip_address != Some(a));
    let additional_differs = caps.additional_vips
        && (desired.additional_vips.len() != lb.additional_vips.len()
            || desired
                .additional_vips
                .iter()
                .filter_map(|v| v.address)
                .any(|a| !lb.additional_vips.contains(&a)));
    // A VIP port named: that port, whatever its address.
    let port_differs = desired
        .vip
        .port_id
        .as_ref()
        .is_some_and(|p| lb.vip_port_id.as_ref() != Some(p));
    let vip_differs = vip_differs && desired.vip.port_id.is_none();
    port_differs
        || vip_differs
        || additional_differs
        || (!adopted && differs(&desired.vip.subnet_id, &lb.vip_subnet_id))
        || (!adopted && differs(&desired.vip.network_id, &lb.vip_network_id))
        || differs(&desired.flavor_id, &lb.flavor_id)
        || differs(&desired.availability_zone, &lb.availability_zone)
        || provider_differs(desired.provider.as_deref(), lb.provider.as_deref())
}

/// Whether the configured provider is not the load balancer's (immutable:
/// a change re-creates it). `octavia` is Octavia's alias of `amphora`; a
/// load balancer read without one (the legacy API) is taken as it is.
fn provider_differs(want: Option<&str>, have: Option<&str>) -> bool {
    fn canonical(p: &str) -> &str {
        if p == "octavia" { "amphora" } else { p }
    }
    match (want, have) {
        (Some(w), Some(h)) => canonical(w) != canonical(h),
        _ => false,
    }
}

fn create_listener(
    listener: &DesiredListener,
    caps: Capabilities,
    lb: &Ref,
    ops: &mut Vec<Operation>,
) {
    ops.push(Operation::CreateListener {
        load_balancer: lb.clone(),
        listener: Box::new(listener.clone()),
        with_pool: caps.populated_children,
    });
    if !caps.populated_children {
        create_pool(&listener.pool, caps, lb, &Ref::planned(&listener.name), ops);
    }
}

fn create_pool(
    pool: &DesiredPool,
    caps: Capabilities,
    lb: &Ref,
    listener: &Ref,
    ops: &mut Vec<Operation>,
) {
    ops.push(Operation::CreatePool {
        load_balancer: lb.clone(),
        listener: listener.clone(),
        pool: Box::new(pool.clone()),
        populated: caps.populated_children,
    });
    if caps.populated_children {
        return;
    }
    let pool_ref = Ref::planned(&pool.name);
    let members: Vec<&Member> = pool.members.iter().flatten().collect();
    if caps.batch_members && !members.is_empty() {
        // All of a new pool's members in one call.
        ops.push(Operation::ReplaceMembers {
            pool: pool_ref.clone(),
            members: members
                .iter()
                .map(|m| MemberSpec {
                    member: **m,
                    subnet_id: pool.member_subnet.clone(),
                    owned: true,
                })
                .collect(),
        });
    } else {
        for member in members {
            ops.push(Operation::CreateMember {
                pool: pool_ref.clone(),
                member: *member,
                subnet_id: pool.member_subnet.clone(),
            });
        }
    }
    if let Some(monitor) = &pool.health_monitor {
        ops.push(Operation::CreateHealthMonitor {
            pool: pool_ref,
            monitor: monitor.clone(),
        });
    }
}

fn plan_listeners(
    desired: &DesiredLoadBalancer,
    lb: &ObservedLoadBalancer,
    caps: Capabilities,
    lb_ref: &Ref,
    ops: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let owner = &desired.owner_tags;
    let mut removals = Vec::new();
    let mut changes = Vec::new();
    let mut creations = Vec::new();
    let mut matched: HashSet<&str> = HashSet::new();
    for want in &desired.listeners {
        let found = lb.listeners.iter().find(|l| {
            l.protocol == want.protocol.as_str() && l.protocol_port == want.protocol_port
        });
        // Octavia gives a port to one listener of a transport (an HTTP
        // listener takes TCP's port too): someone else's is a conflict.
        fn transport(p: &str) -> &str {
            if matches!(p, "UDP" | "SCTP") {
                p
            } else {
                "TCP"
            }
        }
        let taken = || {
            lb.listeners.iter().find(|l| {
                l.protocol_port == want.protocol_port
                    && transport(&l.protocol) == transport(want.protocol.as_str())
                    && !is_owned(&l.tags, owner)
            })
        };
        let found = found.or_else(taken);
        match found {
            None => create_listener(want, caps, lb_ref, &mut creations),
            Some(have) if !is_owned(&have.tags, owner) => {
                return Err(PlanError::PortTaken {
                    port: want.protocol_port,
                    protocol: want.protocol.as_str(),
                    load_balancer: format!("{} ({})", lb.name, lb.id),
                    listener: have.name.clone(),
                });
            }
            Some(have) => {
                matched.insert(have.id.as_str());
                plan_listener(
                    want,
                    have,
                    lb,
                    caps,
                    owner,
                    lb_ref,
                    &mut removals,
                    &mut changes,
                )?;
            }
        }
    }
    // Listeners of ports the Service no longer has, then their pools.
    let mut kept_pools: HashSet<&str> = HashSet::new();
    for have in &lb.listeners {
        let owned = is_owned(&have.tags, owner);
        if owned && !matched.contains(have.id.as_str()) {
            removals.push(Operation::DeleteListener {
                id: have.id.clone(),
                name: have.name.clone(),
            });
        } else if let Some(pool) = &have.default_pool_id {
            kept_pools.insert(pool.as_str());
        }
    }
    for pool in &lb.pools {
        let deleted_already = removals
            .iter()
            .any(|op| matches!(op, Operation::DeletePool { id, .. } if id == &pool.id));
        if is_owned(&pool.tags, owner) && !kept_pools.contains(pool.id.as_str()) && !deleted_already
        {
            removals.push(Operation::DeletePool {
                id: pool.id.clone(),
                name: pool.name.clone(),
            });
        }
    }
    ops.extend(removals);
    ops.extend(changes);
    ops.extend(creations);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn plan_listener(
    want: &DesiredListener,
    have: &ObservedListener,
    lb: &ObservedLoadBalancer,
    caps: Capabilities,
    owner: &[String],
    lb_ref: &Ref,
    removals: &mut Vec<Operation>,
    changes: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let mut update = ListenerUpdate::default();
    if caps.allowed_cidrs {
        let have_cidrs: BTreeSet<IpNet> = have.allowed_cidrs.iter().map(IpNet::trunc).collect();
        let want_cidrs: BTreeSet<IpNet> = want.allowed_cidrs.iter().copied().collect();
        if have_cidrs != want_cidrs {
            update.allowed_cidrs = Some(want.allowed_cidrs.clone());
        }
    }
    let o = &want.options;
    let changed = |w: Option<u64>, h: Option<u64>| w.filter(|w| h != Some(*w));
    update.connection_limit = o
        .connection_limit
        .filter(|w| have.connection_limit != Some(*w));
    update.timeout_client_data = changed(o.timeout_client_data, have.timeout_client_data);
    update.timeout_member_connect = changed(o.timeout_member_connect, have.timeout_member_connect);
    update.timeout_member_data = changed(o.timeout_member_data, have.timeout_member_data);
    update.timeout_tcp_inspect = changed(o.timeout_tcp_inspect, have.timeout_tcp_inspect);
    if have
        .insert_headers
        .iter()
        .map(String::as_str)
        .ne(want.insert_headers.iter().copied())
    {
        update.insert_headers = Some(want.insert_headers.clone());
    }
    if let Some(tls) = &want.tls
        && (have.default_tls_container_ref.as_deref() != Some(&tls.default_tls_container_ref)
            || have.sni_container_refs != tls.sni_container_refs)
    {
        update.tls = Some(tls.clone());
    }
    if caps.alpn
        && !want.alpn_protocols.is_empty()
        && have
            .alpn_protocols
            .iter()
            .map(String::as_str)
            .ne(want.alpn_protocols.iter().copied())
    {
        update.alpn_protocols = Some(want.alpn_protocols.clone());
    }
    if update != ListenerUpdate::default() {
        changes.push(Operation::UpdateListener {
            id: have.id.clone(),
            name: have.name.clone(),
            update,
        });
    }

    let listener_ref = Ref::existing(&have.id, &have.name);
    let pool = have
        .default_pool_id
        .as_ref()
        .and_then(|id| lb.pools.iter().find(|p| &p.id == id));
    let Some(pool) = pool else {
        create_pool(&want.pool, caps, lb_ref, &listener_ref, changes);
        return Ok(());
    };
    if !is_owned(&pool.tags, owner) {
        return Err(PlanError::NotOwned {
            resource: "pool",
            name: pool.name.clone(),
            id: pool.id.clone(),
        });
    }
    if pool.protocol != want.pool.protocol.as_str() {
        // A pool's protocol is immutable: replace the pool.
        removals.push(Operation::DeletePool {
            id: pool.id.clone(),
            name: pool.name.clone(),
        });
        create_pool(&want.pool, caps, lb_ref, &listener_ref, changes);
        return Ok(());
    }
    plan_pool(&want.pool, pool, caps, owner, changes)
}

fn plan_pool(
    want: &DesiredPool,
    have: &ObservedPool,
    caps: Capabilities,
    owner: &[String],
    changes: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let mut update = PoolUpdate::default();
    if have.lb_algorithm != want.lb_algorithm.as_str() {
        update.lb_algorithm = Some(want.lb_algorithm);
    }
    let timeout = want
        .persistence_timeout
        .filter(|_| caps.persistence_timeout);
    if have.session_persistence.as_deref() != want.session_persistence.map(|p| p.as_str())
        || timeout.is_some_and(|t| have.persistence_timeout != Some(t))
    {
        update.session_persistence = Some(want.session_persistence);
        update.persistence_timeout = timeout;
    }
    if !want.port_tags.iter().all(|t| have.tags.contains(t)) {
        // Record the Service port on pools created before it was recorded, or
        // whose target port changed.
        let mut tags: Vec<String> = have
            .tags
            .iter()
            .filter(|t| !crate::names::is_port_tag(t))
            .cloned()
            .collect();
        tags.extend(want.port_tags.iter().cloned());
        update.tags = Some(tags);
    }
    if update != PoolUpdate::default() {
        changes.push(Operation::UpdatePool {
            id: have.id.clone(),
            name: have.name.clone(),
            update,
        });
    }
    let pool_ref = Ref::existing(&have.id, &have.name);

    match (&want.health_monitor, &have.health_monitor) {
        // Someone else's monitor that already does what we want is left alone.
        (Some(w), Some(h)) if !is_owned(&h.tags, owner) && monitor_matches(w, h) => {}
        (Some(_), Some(h)) if !is_owned(&h.tags, owner) => {
            return Err(PlanError::NotOwned {
                resource: "health monitor",
                name: have.name.clone(),
                id: h.id.clone(),
            });
        }
        (Some(w), Some(h)) if h.kind != w.kind.as_str() => {
            changes.push(Operation::DeleteHealthMonitor {
                id: h.id.clone(),
                pool: have.name.clone(),
            });
            changes.push(Operation::CreateHealthMonitor {
                pool: pool_ref.clone(),
                monitor: w.clone(),
            });
        }
        (Some(w), Some(h)) if !monitor_matches(w, h) => {
            changes.push(Operation::UpdateHealthMonitor {
                id: h.id.clone(),
                pool: have.name.clone(),
                monitor: w.clone(),
            });
        }
        (Some(w), None) => changes.push(Operation::CreateHealthMonitor {
            pool: pool_ref.clone(),
            monitor: w.clone(),
        }),
        (None, Some(h)) if is_owned(&h.tags, owner) => {
            changes.push(Operation::DeleteHealthMonitor {
                id: h.id.clone(),
                pool: have.name.clone(),
            })
        }
        _ => {}
    }

    let Some(want_members) = &want.members else {
        return Ok(());
    };
    plan_pool_members(
        want_members,
        &want.member_subnet,
        have,
        caps,
        owner,
        changes,
    );
    Ok(())
}

/// Member changes for one pool whose members differ: one batch replacement
/// (listing the members this tool does not own, so they stay), or on the
/// legacy API one call per member.
fn plan_pool_members(
    want_members: &BTreeSet<Member>,
    member_subnet: &Option<String>,
    have: &ObservedPool,
    caps: Capabilities,
    owner: &[String],
    changes: &mut Vec<Operation>,
) {
    let pool_ref = Ref::existing(&have.id, &have.name);
    // Both sides sorted by address and port, one merge pass: large pools
    // are the common case.
    let mut present: Vec<&ObservedMember> = have.members.iter().collect();
    present.sort_unstable_by_key(|m| (m.address, m.protocol_port));
    let mut missing: Vec<&Member> = Vec::new();
    let mut extra: Vec<&ObservedMember> = Vec::new();
    // Present with another weight (drained, or serving again).
    let mut reweighed: Vec<(&Member, &ObservedMember)> = Vec::new();
    let mut wanted = want_members.iter().peekable();
    let mut seen = present.iter().copied().peekable();
    loop {
        match (wanted.peek(), seen.peek()) {
            (Some(w), Some(p)) if w.key() == (p.address, p.protocol_port) => {
                // A weight not read (Octavia's status tree) is taken as it is.
                if p.weight.is_some_and(|weight| weight != w.weight) {
                    reweighed.push((w, p));
                }
                // Every observed copy of a wanted member counts as present.
                while seen
                    .peek()
                    .is_some_and(|p| (p.address, p.protocol_port) == w.key())
                {
                    seen.next();
                }
                wanted.next();
            }
            (Some(w), Some(p)) if w.key() < (p.address, p.protocol_port) => {
                missing.push(w);
                wanted.next();
            }
            (_, Some(m)) => {
                if is_owned(&m.tags, owner) {
                    extra.push(m);
                }
                seen.next();
            }
            (Some(w), None) => {
                missing.push(w);
                wanted.next();
            }
            (None, None) => break,
        }
    }
    if missing.is_empty() && extra.is_empty() && reweighed.is_empty() {
        return;
    }
    if caps.batch_members {
        let mut members: Vec<MemberSpec> = want_members
            .iter()
            .map(|m| MemberSpec {
                member: *m,
                subnet_id: member_subnet.clone(),
                owned: true,
            })
            .collect();
        // A batch replacement deletes whatever it does not list: list the
        // members this tool does not own, unchanged, so they stay.
        for m in &have.members {
            let member = Member {
                address: m.address,
                protocol_port: m.protocol_port,
                weight: m.weight.unwrap_or(Member::SERVING),
            };
            let wanted = want_members
                .range(Member::lowest(m.address, m.protocol_port)..)
                .next()
                .is_some_and(|w| w.key() == member.key());
            if !is_owned(&m.tags, owner) && !wanted {
                members.push(MemberSpec {
                    member,
                    subnet_id: None,
                    owned: false,
                });
            }
        }
        changes.push(Operation::ReplaceMembers {
            pool: pool_ref,
            members,
        });
    } else {
        // The legacy API: one call per member; a weight changes in place.
        for (w, p) in reweighed {
            changes.push(Operation::UpdateMember {
                pool: pool_ref.clone(),
                id: p.id.clone(),
                member: *w,
            });
        }
        for m in extra {
            changes.push(Operation::DeleteMember {
                pool: pool_ref.clone(),
                id: m.id.clone(),
                member: Member {
                    address: m.address,
                    protocol_port: m.protocol_port,
                    weight: m.weight.unwrap_or(Member::SERVING),
                },
            });
        }
        for m in missing {
            changes.push(Operation::CreateMember {
                pool: pool_ref.clone(),
                member: *m,
                subnet_id: member_subnet.clone(),
            });
        }
    }
}

/// Member changes only, for an Endpoints change without its Service: the
/// pools are given by id with the members they must have.
pub fn plan_members(
    lb: &ObservedLoadBalancer,
    wanted: &[(String, BTreeSet<Member>, Option<String>)],
    owner: &[String],
    caps: Capabilities,
) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (pool_id, members, subnet) in wanted {
        if let Some(pool) = lb.pools.iter().find(|p| &p.id == pool_id) {
            plan_pool_members(members, subnet, pool, caps, owner, &mut ops);
        }
    }
    ops
}

fn monitor_matches(want: &HealthMonitor, have: &crate::model::ObservedHealthMonitor) -> bool {
    let http = match &want.http {
        None => true,
        Some(h) => {
            have.http_method.as_deref() == Some(h.http_method.as_str())
                && have.url_path.as_deref() == Some(h.url_path.as_str())
                && have.expected_codes.as_deref() == Some(h.expected_codes.as_str())
        }
    };
    have.kind == want.kind.as_str()
        && have.delay == want.delay
        && have.timeout == want.timeout
        && have.max_retries == want.max_retries
        && have.max_retries_down == want.max_retries_down
        && http
}

/// Floating IP operations: removals first, then the association or allocation.
fn plan_floating_ips(
    desired: &DesiredLoadBalancer,
    observed: &Observed,
    vip_port: &Ref,
    gone_vip_ports: &[String],
    ops: &mut Vec<Operation>,
) -> Result<(), PlanError> {
    let owner = &desired.owner_tags;
    let bound = |fip: &ObservedFloatingIp| vip_port.id.is_some() && fip.port_id == vip_port.id;
    let free = |fip: &ObservedFloatingIp| {
        fip.port_id
            .as_ref()
            .is_none_or(|p| gone_vip_ports.contains(p))
    };
    let fips = unique_floating_ips(observed);
    let mut removals = Vec::new();
    let mut binding = Vec::new();
    let user_id = match (&desired.floating_ip, &observed.user_floating_ip) {
        (FloatingIpIntent::User { .. }, FloatingIpLookup::Found(f)) => Some(f.id.as_str()),
        _ => None,
    };
    // A VIP port of the user's (port-id) keeps the floating IP the user bound
    // to it, as OCCM does: it is the Service's, nothing is allocated.
    let users_port = desired.vip.port_id.is_some() && vip_port.id == desired.vip.port_id;
    if users_port
        && matches!(desired.floating_ip, FloatingIpIntent::Pool { .. })
        && fips.iter().any(|f| !is_owned(&f.tags, owner) && bound(f))
    {
        for fip in fips.iter().filter(|f| is_owned(&f.tags, owner)) {
            removals.push(delete_fip(fip));
        }
        ops.extend(removals);
        return Ok(());
    }
    // Unowned floating IPs on our VIP that are not the wanted one: disassociate.
    for fip in &fips {
        if !is_owned(&fip.tags, owner) && bound(fip) && Some(fip.id.as_str()) != user_id {
            removals.push(disassociate_fip(fip));
        }
    }
    let owned: Vec<&ObservedFloatingIp> = fips
        .iter()
        .copied()
        .filter(|f| is_owned(&f.tags, owner) && Some(f.id.as_str()) != user_id)
        .collect();
    let release = |fip: &ObservedFloatingIp, removals: &mut Vec<Operation>| {
        if !desired.keep_floating_ip {
            removals.push(delete_fip(fip));
        } else if fip.port_id.is_some() {
            removals.push(disassociate_fip(fip));
        }
    };
    match &desired.floating_ip {
        FloatingIpIntent::None => {
            for fip in owned {
                release(fip, &mut removals);
            }
        }
        FloatingIpIntent::Pool {
            subnet_id,
            network_id,
            subnet_match,
        } => {
            let usable = |f: &&ObservedFloatingIp| {
                network_id
                    .as_ref()
                    .is_none_or(|n| f.network_id.as_ref() == Some(n))
            };
            let primary = owned
                .iter()
                .copied()
                .filter(usable)
                .find(|f| bound(f))
                .or_else(|| owned.iter().copied().filter(usable).find(|f| free(f)))
                .or_else(|| owned.iter().copied().find(usable));
            for fip in &owned {
                if primary.is_none_or(|p| p.id != fip.id) {
                    // A copy left by a crash, or one on the wrong network.
                    removals.push(delete_fip(fip));
                }
            }
            match primary {
                Some(fip) if bound(fip) => {}
                Some(fip) => binding.push(Operation::AssociateFloatingIp {
                    id: Some(fip.id.clone()),
                    address: fip.address,
                    vip_port: vip_port.clone(),
                }),
                None => binding.push(Operation::CreateFloatingIp {
                    vip_port: vip_port.clone(),
                    subnet_id: subnet_id.clone(),
                    network_id: network_id.clone(),
                    description: format!("svc-lbaas: Service {}", desired.service),
                    subnet_match: subnet_match.clone().map(Box::new),
                    more_subnets: Vec::new(),
                }),
            }
        }
        FloatingIpIntent::User { address } => {
            for fip in owned {
                release(fip, &mut removals);
            }
            let address = IpAddr::V4(*address);
            match &observed.user_floating_ip {
                FloatingIpLookup::NotLookedUp => binding.push(Operation::AssociateFloatingIp {
                    id: None,
                    address,
                    vip_port: vip_port.clone(),
                }),
                FloatingIpLookup::NotFound => {
                    return Err(PlanError::FloatingIpNotFound { address });
                }
                FloatingIpLookup::Found(fip) => {
                    // An address allocated or kept for a Service of another
                    // namespace (or cluster) is not this one's to take.
                    let cluster = names::cluster_of(owner).unwrap_or_default();
                    match names::holder_of_floating_ip(
                        &fip.tags,
                        fip.description.as_deref(),
                        cluster,
                    ) {
                        names::Holder::Namespace(ns) if ns == desired.service.namespace => {}
                        names::Holder::Nobody => {}
                        _ => return Err(PlanError::FloatingIpTaken { address }),
                    }
                    if fip.port_id.is_some() && !bound(fip) && !free(fip) {
                        return Err(PlanError::FloatingIpInUse { address });
                    }
                    if !bound(fip) {
                        binding.push(Operation::AssociateFloatingIp {
                            id: Some(fip.id.clone()),
                            address: fip.address,
                            vip_port: vip_port.clone(),
                        });
                    }
                }
            }
        }
    }
    ops.extend(removals);
    ops.extend(binding);
    Ok(())
}

mod adopt;
mod security_group;
mod share;

#[cfg(test)]
mod tests;
