//! What a Gateway's load balancer has (observed, read by name and tags),
//! and the plan that makes it what the design says (pure): pools and their
//! members, listeners, then each listener's policies (deleted, moved,
//! created, in an order that leaves every position as designed), then
//! what is no longer wanted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::gateway::design::{Design, DesignPolicy, DesignRule, PolicyAction, SecretKey};
use crate::model::{ListenerProtocol, Member};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedGateway {
    pub load_balancer: Option<ObservedGatewayLb>,
    /// The floating IPs made for this Gateway (by description).
    pub floating_ips: Vec<crate::model::ObservedFloatingIp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedGatewayLb {
    pub id: String,
    pub name: String,
    pub vip_address: Option<IpAddr>,
    pub vip_port_id: Option<String>,
    pub provisioning_status: String,
    pub operating_status: String,
    pub tags: Vec<String>,
    pub listeners: Vec<ObservedGwListener>,
    pub pools: Vec<ObservedGwPool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedGwListener {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub default_pool_id: Option<String>,
    pub default_tls_container_ref: Option<String>,
    pub sni_container_refs: Vec<String>,
    /// In position order.
    pub policies: Vec<ObservedPolicy>,
    pub allowed_cidrs: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedPolicy {
    pub id: String,
    pub position: u32,
    pub action: String,
    pub redirect_pool_id: Option<String>,
    pub redirect_url: Option<String>,
    pub redirect_prefix: Option<String>,
    pub redirect_http_code: Option<u16>,
    /// A disabled policy is one whose create did not finish (its rules are
    /// added before it is enabled): never kept as it is.
    pub enabled: bool,
    pub rules: Vec<ObservedRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedRule {
    pub id: String,
    pub kind: String,
    pub compare_type: String,
    pub key: Option<String>,
    pub value: String,
    pub invert: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedGwPool {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

/// One step of a Gateway's convergence. Pools and listeners are named as
/// the design names them; the executor resolves names to ids as it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum GatewayOp {
    CreateLoadBalancer {
        name: String,
    },
    CreateFloatingIp,
    /// The Gateway's floating IP bound to the VIP port again (the load
    /// balancer was made anew, or it was moved by hand).
    BindFloatingIp {
        id: String,
        address: String,
    },
    #[serde(rename_all = "camelCase")]
    CreatePool {
        name: String,
        protocol: String,
    },
    #[serde(rename_all = "camelCase")]
    SetMembers {
        pool: String,
        members: Vec<Member>,
    },
    #[serde(rename_all = "camelCase")]
    CreateListener {
        name: String,
        protocol: String,
        port: u16,
        certificates: Vec<String>,
        default_pool: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    UpdateListener {
        id: String,
        name: String,
        certificates: Option<Vec<String>>,
        default_pool: Option<Option<String>>,
    },
    DeleteListener {
        id: String,
        name: String,
    },
    /// The load balancer's own metrics endpoint (no pool, no policy).
    CreatePrometheusListener {
        listener: crate::model::PrometheusListener,
    },
    /// Who may scrape it.
    SetAllowedCidrs {
        id: String,
        name: String,
        allowed_cidrs: Vec<ipnet::IpNet>,
    },
    DeletePolicy {
        id: String,
        listener: String,
    },
    /// A kept policy's rules changed in place: the new ones added first,
    /// then the old ones removed, so it never matches more than either.
    EditPolicy {
        id: String,
        listener: String,
        source: String,
        add: Vec<DesignRule>,
        remove: Vec<String>,
    },
    MovePolicy {
        id: String,
        listener: String,
        position: u32,
    },
    CreatePolicy {
        listener: String,
        position: u32,
        policy: DesignPolicy,
    },
    DeletePool {
        id: String,
        name: String,
    },
    DeleteFloatingIp {
        id: String,
        address: String,
    },
    DeleteLoadBalancer {
        id: String,
        name: String,
    },
}

fn cidr_list(cidrs: &[ipnet::IpNet]) -> String {
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl GatewayOp {
    /// One line for answers and logs.
    pub fn summary(&self) -> String {
        match self {
            GatewayOp::CreateLoadBalancer { name } => format!("create load balancer {name}"),
            GatewayOp::CreateFloatingIp => "create a floating IP for the VIP".into(),
            GatewayOp::BindFloatingIp { address, .. } => {
                format!("bind floating IP {address} to the VIP port")
            }
            GatewayOp::CreatePool { name, protocol } => format!("create {protocol} pool {name}"),
            GatewayOp::SetMembers { pool, members } => {
                format!("set the {} member(s) of pool {pool}", members.len())
            }
            GatewayOp::CreateListener { name, .. } => format!("create listener {name}"),
            GatewayOp::UpdateListener { name, .. } => format!("update listener {name}"),
            GatewayOp::DeleteListener { name, .. } => format!("delete listener {name}"),
            GatewayOp::CreatePrometheusListener { listener } => format!(
                "create PROMETHEUS listener {} open to {}",
                listener.name,
                cidr_list(&listener.allowed_cidrs)
            ),
            GatewayOp::SetAllowedCidrs {
                name,
                allowed_cidrs,
                ..
            } => format!("open listener {name} to {} only", cidr_list(allowed_cidrs)),
            GatewayOp::DeletePolicy { id, listener } => {
                format!("delete L7 policy {id} of listener {listener}")
            }
            GatewayOp::EditPolicy {
                id,
                listener,
                add,
                remove,
                ..
            } => format!(
                "edit L7 policy {id} of listener {listener}: {} rule(s) added, {} removed",
                add.len(),
                remove.len()
            ),
            GatewayOp::MovePolicy {
                id,
                listener,
                position,
            } => {
                format!("move L7 policy {id} of listener {listener} to position {position}")
            }
            GatewayOp::CreatePolicy {
                listener,
                position,
                policy,
            } => format!(
                "create L7 policy {} ({} rule(s)) at position {position} of listener {listener}",
                policy.source,
                policy.rules.len()
            ),
            GatewayOp::DeletePool { name, .. } => format!("delete pool {name}"),
            GatewayOp::DeleteFloatingIp { address, .. } => format!("delete floating IP {address}"),
            GatewayOp::DeleteLoadBalancer { name, .. } => {
                format!("delete load balancer {name} and everything under it")
            }
        }
    }
}

/// What the plan needs besides the design and what is there.
pub struct PlanContext<'a> {
    pub name: &'a str,
    /// Each certificate Secret's container reference (or a pending marker).
    pub certificates: &'a BTreeMap<SecretKey, String>,
    /// The address a redirect keeping no host sends to (the Gateway's).
    pub address: Option<&'a str>,
    pub floating_ip: bool,
    /// `svc-lbaas.io/prometheus-listener-port` on the Gateway.
    pub prometheus: Option<&'a crate::model::PrometheusListener>,
}

/// A policy as Octavia holds it, to compare a design's with an observed one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    action: &'static str,
    target: String,
    code: Option<u16>,
    rules: BTreeSet<(String, String, Option<String>, String, bool)>,
}

fn rule_key(r: &DesignRule) -> (String, String, Option<String>, String, bool) {
    // Octavia keeps no key on HOST_NAME and PATH rules.
    let key = if r.kind == "HEADER" {
        r.key.clone()
    } else {
        None
    };
    (
        r.kind.into(),
        r.compare_type.into(),
        key,
        r.value.clone(),
        r.invert,
    )
}

fn observed_rule_key(r: &ObservedRule) -> (String, String, Option<String>, String, bool) {
    let key = if r.kind == "HEADER" {
        r.key.clone()
    } else {
        None
    };
    (
        r.kind.clone(),
        r.compare_type.clone(),
        key,
        r.value.clone(),
        r.invert,
    )
}

fn desired_content(p: &DesignPolicy, address: &str) -> Content {
    let rules = p.rules.iter().map(rule_key).collect();
    match &p.action {
        PolicyAction::RedirectToPool { pool } => Content {
            action: "REDIRECT_TO_POOL",
            target: pool.clone(),
            code: None,
            rules,
        },
        PolicyAction::RedirectToUrl { url, code } => Content {
            action: "REDIRECT_TO_URL",
            target: url.render(address),
            code: Some(*code),
            rules,
        },
        PolicyAction::RedirectPrefix { prefix, code } => Content {
            action: "REDIRECT_PREFIX",
            target: prefix.render(address),
            code: Some(*code),
            rules,
        },
    }
}

fn observed_content(p: &ObservedPolicy, pool_names: &BTreeMap<&str, &str>) -> Content {
    let rules = p
        .rules
        .iter()
        .map(|r| {
            let key = if r.kind == "HEADER" {
                r.key.clone()
            } else {
                None
            };
            (
                r.kind.clone(),
                r.compare_type.clone(),
                key,
                r.value.clone(),
                r.invert,
            )
        })
        .collect();
    let (action, target, code) = match p.action.as_str() {
        "REDIRECT_TO_POOL" => (
            "REDIRECT_TO_POOL",
            p.redirect_pool_id
                .as_deref()
                .map(|id| {
                    pool_names
                        .get(id)
                        .map_or(format!("id:{id}"), |n| n.to_string())
                })
                .unwrap_or_default(),
            None,
        ),
        "REDIRECT_TO_URL" => (
            "REDIRECT_TO_URL",
            p.redirect_url.clone().unwrap_or_default(),
            p.redirect_http_code,
        ),
        "REDIRECT_PREFIX" => (
            "REDIRECT_PREFIX",
            p.redirect_prefix.clone().unwrap_or_default(),
            p.redirect_http_code,
        ),
        _ => ("REJECT", String::new(), None),
    };
    // A disabled policy equals no designed one: it is deleted and made again.
    let action = if p.enabled { action } else { "DISABLED" };
    Content {
        action,
        target,
        code,
        rules,
    }
}

/// The steps from what is there to the design.
pub fn plan(design: &Design, observed: &ObservedGateway, cx: &PlanContext<'_>) -> Vec<GatewayOp> {
    let mut ops = Vec::new();
    let empty = ObservedGatewayLb::default();
    let lb = match &observed.load_balancer {
        Some(lb) => lb,
        None => {
            ops.push(GatewayOp::CreateLoadBalancer {
                name: cx.name.to_string(),
            });
            &empty
        }
    };
    if cx.floating_ip && observed.floating_ips.is_empty() {
        ops.push(GatewayOp::CreateFloatingIp);
    }
    if let (Some(fip), Some(port)) = (observed.floating_ips.first(), &lb.vip_port_id)
        && fip.port_id.as_ref() != Some(port)
    {
        ops.push(GatewayOp::BindFloatingIp {
            id: fip.id.clone(),
            address: fip.address.to_string(),
        });
    }
    let address = cx.address.unwrap_or("");
    let pool_names: BTreeMap<&str, &str> = lb
        .pools
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();

    // Pools and their members.
    for p in &design.pools {
        let have = lb.pools.iter().find(|o| o.name == p.name);
        let protocol = serde_json::to_value(p.protocol)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let same_members = have
            .is_some_and(|o| o.members.iter().copied().collect::<BTreeSet<Member>>() == p.members);
        if have.is_none() {
            ops.push(GatewayOp::CreatePool {
                name: p.name.clone(),
                protocol,
            });
        }
        // A new pool without members needs no member write.
        let new_and_empty = have.is_none() && p.members.is_empty();
        if !(same_members || new_and_empty) {
            ops.push(GatewayOp::SetMembers {
                pool: p.name.clone(),
                members: p.members.iter().copied().collect(),
            });
        }
    }

    // Listeners: those no longer designed (or changed in protocol or
    // port, which Octavia cannot update) go first, freeing their ports.
    let metrics = |o: &ObservedGwListener| {
        cx.prometheus.is_some_and(|p| {
            o.protocol == "PROMETHEUS" && o.name == p.name && o.port == p.protocol_port
        })
    };
    let designed = |o: &ObservedGwListener| {
        metrics(o)
            || design
                .listeners
                .iter()
                .any(|d| d.name == o.name && d.protocol.as_str() == o.protocol && d.port == o.port)
    };
    for o in lb.listeners.iter().filter(|o| !designed(o)) {
        ops.push(GatewayOp::DeleteListener {
            id: o.id.clone(),
            name: o.name.clone(),
        });
    }
    for d in &design.listeners {
        let certificates: Vec<String> = d
            .certificates
            .iter()
            .filter_map(|k| cx.certificates.get(k).cloned())
            .collect();
        let have = lb
            .listeners
            .iter()
            .find(|o| designed(o) && o.name == d.name);
        let Some(o) = have else {
            ops.push(GatewayOp::CreateListener {
                name: d.name.clone(),
                protocol: d.protocol.as_str().to_string(),
                port: d.port,
                certificates,
                default_pool: d.default_pool.clone(),
            });
            for (i, p) in d.policies.iter().enumerate() {
                ops.push(GatewayOp::CreatePolicy {
                    listener: d.name.clone(),
                    position: i as u32 + 1,
                    policy: p.clone(),
                });
            }
            continue;
        };
        let observed_certs: Vec<String> = o
            .default_tls_container_ref
            .iter()
            .cloned()
            .chain(o.sni_container_refs.iter().cloned())
            .collect();
        let certs_change = (d.protocol == ListenerProtocol::TerminatedHttps
            && observed_certs != certificates)
            .then(|| certificates.clone());
        let observed_pool = o.default_pool_id.as_deref().map(|id| {
            pool_names
                .get(id)
                .map_or(format!("id:{id}"), |n| n.to_string())
        });
        let pool_change = (observed_pool != d.default_pool).then(|| d.default_pool.clone());
        if certs_change.is_some() || pool_change.is_some() {
            ops.push(GatewayOp::UpdateListener {
                id: o.id.clone(),
                name: d.name.clone(),
                certificates: certs_change,
                default_pool: pool_change,
            });
        }
        policy_steps(
            d.name.as_str(),
            &d.policies,
            o,
            &pool_names,
            address,
            &mut ops,
        );
    }
    if let Some(p) = cx.prometheus {
        match lb.listeners.iter().find(|o| metrics(o)) {
            None => ops.push(GatewayOp::CreatePrometheusListener {
                listener: p.clone(),
            }),
            Some(o) => {
                let have: BTreeSet<ipnet::IpNet> =
                    o.allowed_cidrs.iter().map(ipnet::IpNet::trunc).collect();
                if have != p.allowed_cidrs.iter().copied().collect() {
                    ops.push(GatewayOp::SetAllowedCidrs {
                        id: o.id.clone(),
                        name: o.name.clone(),
                        allowed_cidrs: p.allowed_cidrs.clone(),
                    });
                }
            }
        }
    }

    // Pools no longer designed, once nothing sends to them.
    for o in &lb.pools {
        if !design.pools.iter().any(|p| p.name == o.name) {
            ops.push(GatewayOp::DeletePool {
                id: o.id.clone(),
                name: o.name.clone(),
            });
        }
    }
    ops
}

/// A listener's policies made as designed: unmatched ones deleted, the
/// kept ones moved and the missing ones created in increasing position,
/// so that positions 1..=i are final once step i is done.
fn policy_steps(
    listener: &str,
    designed: &[DesignPolicy],
    o: &ObservedGwListener,
    pool_names: &BTreeMap<&str, &str>,
    address: &str,
    ops: &mut Vec<GatewayOp>,
) {
    let observed: Vec<Content> = o
        .policies
        .iter()
        .map(|p| observed_content(p, pool_names))
        .collect();
    let mut used = vec![false; observed.len()];
    let matched: Vec<Option<usize>> = designed
        .iter()
        .map(|d| {
            let want = desired_content(d, address);
            let j = (0..observed.len()).find(|&j| !used[j] && observed[j] == want);
            if let Some(j) = j {
                used[j] = true;
            }
            j
        })
        .collect();
    // A designed policy no kept one equals takes, in place, an unmatched
    // one of the same action and target whose rules differ: its rules are
    // edited (fewer writes than a delete and a create, and the policy keeps
    // its id), unless the two sets together would pass Octavia's 50.
    let mut matched = matched;
    let mut edits = Vec::new();
    for (i, d) in designed.iter().enumerate() {
        if matched[i].is_some() {
            continue;
        }
        let want = desired_content(d, address);
        let j = (0..observed.len()).find(|&j| {
            !used[j]
                && observed[j].action == want.action
                && observed[j].target == want.target
                && observed[j].code == want.code
                && observed[j].rules.len() + want.rules.len() <= crate::gateway::compile::MAX_RULES
        });
        let Some(j) = j else {
            continue;
        };
        used[j] = true;
        matched[i] = Some(j);
        let add: Vec<DesignRule> = d
            .rules
            .iter()
            .filter(|r| !observed[j].rules.contains(&rule_key(r)))
            .cloned()
            .collect();
        let remove: Vec<String> = o.policies[j]
            .rules
            .iter()
            .filter(|r| !want.rules.contains(&observed_rule_key(r)))
            .map(|r| r.id.clone())
            .collect();
        edits.push(GatewayOp::EditPolicy {
            id: o.policies[j].id.clone(),
            listener: listener.to_string(),
            source: d.source.clone(),
            add,
            remove,
        });
    }
    for (j, p) in o.policies.iter().enumerate() {
        if !used[j] {
            ops.push(GatewayOp::DeletePolicy {
                id: p.id.clone(),
                listener: listener.to_string(),
            });
        }
    }
    ops.extend(edits);
    // The kept policies in their current order, then each step applied.
    let mut order: Vec<Option<usize>> = (0..o.policies.len())
        .filter(|&j| used[j])
        .map(Some)
        .collect();
    for (i, d) in designed.iter().enumerate() {
        match matched[i] {
            Some(j) => {
                let at = order.iter().position(|x| *x == Some(j)).unwrap_or(i);
                if at != i {
                    ops.push(GatewayOp::MovePolicy {
                        id: o.policies[j].id.clone(),
                        listener: listener.to_string(),
                        position: i as u32 + 1,
                    });
                    order.remove(at);
                    order.insert(i.min(order.len()), Some(j));
                }
            }
            None => {
                ops.push(GatewayOp::CreatePolicy {
                    listener: listener.to_string(),
                    position: i as u32 + 1,
                    policy: d.clone(),
                });
                order.insert(i.min(order.len()), None);
            }
        }
    }
}

/// The steps that take a Gateway's cloud objects away: its floating IPs,
/// then the load balancer with everything under it.
pub fn removal(observed: &ObservedGateway) -> Vec<GatewayOp> {
    let mut ops: Vec<GatewayOp> = observed
        .floating_ips
        .iter()
        .map(|f| GatewayOp::DeleteFloatingIp {
            id: f.id.clone(),
            address: f.address.to_string(),
        })
        .collect();
    if let Some(lb) = &observed.load_balancer {
        ops.push(GatewayOp::DeleteLoadBalancer {
            id: lb.id.clone(),
            name: lb.name.clone(),
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::design::*;
    use crate::model::PoolProtocol;

    fn rule(value: &str) -> DesignRule {
        DesignRule {
            kind: "PATH",
            compare_type: "EQUAL_TO",
            key: None,
            value: value.into(),
            invert: false,
        }
    }

    fn to_pool(pool: &str, path: &str) -> DesignPolicy {
        DesignPolicy {
            action: PolicyAction::RedirectToPool { pool: pool.into() },
            rules: vec![rule(path)],
            source: format!("{pool}{path}"),
        }
    }

    fn observed_policy(id: &str, pool_id: &str, path: &str, position: u32) -> ObservedPolicy {
        ObservedPolicy {
            id: id.into(),
            position,
            action: "REDIRECT_TO_POOL".into(),
            redirect_pool_id: Some(pool_id.into()),
            enabled: true,
            rules: vec![ObservedRule {
                id: format!("r-{id}"),
                kind: "PATH".into(),
                compare_type: "EQUAL_TO".into(),
                key: None,
                value: path.into(),
                invert: false,
            }],
            ..Default::default()
        }
    }

    fn design(policies: Vec<DesignPolicy>) -> Design {
        Design {
            listeners: vec![DesignListener {
                name: "gw:HTTP:80".into(),
                protocol: ListenerProtocol::Http,
                port: 80,
                gateway_listeners: vec!["web".into()],
                certificates: vec![],
                default_pool: None,
                policies,
            }],
            pools: ["a", "b", "c"]
                .iter()
                .map(|n| DesignPool {
                    name: n.to_string(),
                    protocol: PoolProtocol::Http,
                    members: BTreeSet::new(),
                })
                .collect(),
            gateway_status: GatewayStatus::default(),
            routes: vec![],
        }
    }

    fn observed(policies: Vec<ObservedPolicy>) -> ObservedGateway {
        ObservedGateway {
            load_balancer: Some(ObservedGatewayLb {
                id: "lb".into(),
                name: "gw".into(),
                provisioning_status: "ACTIVE".into(),
                listeners: vec![ObservedGwListener {
                    id: "l1".into(),
                    name: "gw:HTTP:80".into(),
                    protocol: "HTTP".into(),
                    port: 80,
                    policies,
                    ..Default::default()
                }],
                pools: ["a", "b", "c"]
                    .iter()
                    .map(|n| ObservedGwPool {
                        id: format!("id-{n}"),
                        name: n.to_string(),
                        protocol: "HTTP".into(),
                        members: vec![],
                    })
                    .collect(),
                ..Default::default()
            }),
            floating_ips: vec![],
        }
    }

    fn cx<'a>(certs: &'a BTreeMap<SecretKey, String>) -> PlanContext<'a> {
        PlanContext {
            name: "gw",
            certificates: certs,
            address: Some("192.0.2.1"),
            floating_ip: false,
            prometheus: None,
        }
    }

    #[test]
    fn the_prometheus_listener_is_made_kept_reopened_and_removed() {
        let certs = BTreeMap::new();
        let d = design(vec![to_pool("a", "/a")]);
        let have = observed(vec![observed_policy("p1", "id-a", "/a", 1)]);
        let want = crate::model::PrometheusListener {
            name: "gw:PROMETHEUS:9100".into(),
            protocol_port: 9100,
            allowed_cidrs: vec!["10.9.0.0/24".parse().unwrap()],
        };
        let with = PlanContext {
            prometheus: Some(&want),
            ..cx(&certs)
        };
        assert_eq!(
            plan(&d, &have, &with),
            vec![GatewayOp::CreatePrometheusListener {
                listener: want.clone()
            }]
        );
        // There: kept (not deleted as undesigned); other CIDRs: reopened.
        let mut there = have.clone();
        let lb = there.load_balancer.as_mut().unwrap();
        lb.listeners.push(ObservedGwListener {
            id: "m1".into(),
            name: want.name.clone(),
            protocol: "PROMETHEUS".into(),
            port: 9100,
            allowed_cidrs: want.allowed_cidrs.clone(),
            ..Default::default()
        });
        assert_eq!(plan(&d, &there, &with), vec![]);
        let wider = crate::model::PrometheusListener {
            allowed_cidrs: vec!["10.9.0.0/16".parse().unwrap()],
            ..want.clone()
        };
        assert_eq!(
            plan(
                &d,
                &there,
                &PlanContext {
                    prometheus: Some(&wider),
                    ..cx(&certs)
                }
            ),
            vec![GatewayOp::SetAllowedCidrs {
                id: "m1".into(),
                name: want.name.clone(),
                allowed_cidrs: wider.allowed_cidrs.clone(),
            }]
        );
        // The annotation removed: the listener goes.
        assert_eq!(
            plan(&d, &there, &cx(&certs)),
            vec![GatewayOp::DeleteListener {
                id: "m1".into(),
                name: want.name.clone(),
            }]
        );
    }

    /// Applies the policy steps to positions as Octavia does (deletes
    /// renumber, creates and moves insert) and answers the final order.
    fn replay(start: &[ObservedPolicy], ops: &[GatewayOp]) -> Vec<String> {
        let mut list: Vec<String> = start.iter().map(|p| p.id.clone()).collect();
        let mut created = 0;
        for op in ops {
            match op {
                GatewayOp::DeletePolicy { id, .. } => list.retain(|x| x != id),
                GatewayOp::MovePolicy { id, position, .. } => {
                    list.retain(|x| x != id);
                    let at = (*position as usize - 1).min(list.len());
                    list.insert(at, id.clone());
                }
                GatewayOp::CreatePolicy {
                    position, policy, ..
                } => {
                    created += 1;
                    let at = (*position as usize - 1).min(list.len());
                    list.insert(at, format!("new{created}:{}", policy.source));
                }
                _ => {}
            }
        }
        list
    }

    #[test]
    fn a_converged_gateway_plans_nothing() {
        let certs = BTreeMap::new();
        let d = design(vec![to_pool("a", "/a"), to_pool("b", "/b")]);
        let o = observed(vec![
            observed_policy("p1", "id-a", "/a", 1),
            observed_policy("p2", "id-b", "/b", 2),
        ]);
        assert_eq!(plan(&d, &o, &cx(&certs)), vec![]);
    }

    #[test]
    fn policies_are_kept_moved_created_and_deleted_into_their_positions() {
        let certs = BTreeMap::new();
        // Designed: c, a, b(new path); there: a, x (gone), b(old path), c.
        let d = design(vec![
            to_pool("c", "/c"),
            to_pool("a", "/a"),
            to_pool("b", "/b2"),
        ]);
        let start = vec![
            observed_policy("pa", "id-a", "/a", 1),
            observed_policy("px", "id-a", "/x", 2),
            observed_policy("pb", "id-b", "/b", 3),
            observed_policy("pc", "id-c", "/c", 4),
        ];
        let ops = plan(&d, &observed(start.clone()), &cx(&certs));
        let final_order = replay(&start, &ops);
        // b's path changed, its pool did not: edited in place; x (whose
        // pool is a's, which has its policy already) goes.
        assert_eq!(final_order, vec!["pc", "pa", "pb"], "{ops:#?}");
        let kinds: Vec<&str> = ops
            .iter()
            .map(|o| match o {
                GatewayOp::DeletePolicy { .. } => "delete",
                GatewayOp::EditPolicy { .. } => "edit",
                GatewayOp::MovePolicy { .. } => "move",
                GatewayOp::CreatePolicy { .. } => "create",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, vec!["delete", "edit", "move"]);
        let GatewayOp::EditPolicy {
            id, add, remove, ..
        } = &ops[1]
        else {
            panic!("{ops:#?}");
        };
        assert_eq!((id.as_str(), add[0].value.as_str()), ("pb", "/b2"));
        assert_eq!(remove, &vec!["r-pb".to_string()]);
    }

    #[test]
    fn every_order_of_kept_policies_ends_as_designed() {
        let certs = BTreeMap::new();
        let paths = ["/a", "/b", "/c", "/d"];
        // All 24 orders of four kept policies, each against the design a, b, c, d.
        let mut orders = vec![vec![]];
        for _ in 0..4 {
            orders = orders
                .into_iter()
                .flat_map(|o: Vec<usize>| {
                    (0..4)
                        .filter(|i| !o.contains(i))
                        .map(|i| {
                            let mut n = o.clone();
                            n.push(i);
                            n
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        assert_eq!(orders.len(), 24);
        let d = design(paths.iter().map(|p| to_pool("a", p)).collect());
        for order in orders {
            let start: Vec<ObservedPolicy> = order
                .iter()
                .enumerate()
                .map(|(pos, &i)| {
                    observed_policy(&format!("p{i}"), "id-a", paths[i], pos as u32 + 1)
                })
                .collect();
            let ops = plan(&d, &observed(start.clone()), &cx(&certs));
            assert_eq!(
                replay(&start, &ops),
                vec!["p0", "p1", "p2", "p3"],
                "{order:?}: {ops:#?}"
            );
            assert!(
                ops.iter()
                    .all(|o| matches!(o, GatewayOp::MovePolicy { .. }))
            );
        }
    }

    #[test]
    fn a_policy_left_disabled_is_made_again_and_a_moved_floating_ip_bound_back() {
        let certs = BTreeMap::new();
        let d = design(vec![to_pool("a", "/a")]);
        let mut half = observed_policy("p1", "id-a", "/a", 1);
        half.enabled = false;
        let mut o = observed(vec![half]);
        if let Some(lb) = o.load_balancer.as_mut() {
            lb.vip_port_id = Some("vip".into());
        }
        o.floating_ips.push(crate::model::ObservedFloatingIp {
            id: "f".into(),
            address: "203.0.113.5".parse().unwrap(),
            port_id: Some("elsewhere".into()),
            network_id: None,
            tags: vec![],
            description: None,
        });
        let summaries: Vec<String> = plan(&d, &o, &cx(&certs))
            .iter()
            .map(GatewayOp::summary)
            .collect();
        assert_eq!(
            summaries,
            vec![
                "bind floating IP 203.0.113.5 to the VIP port",
                "delete L7 policy p1 of listener gw:HTTP:80",
                "create L7 policy a/a (1 rule(s)) at position 1 of listener gw:HTTP:80",
            ]
        );
    }

    #[test]
    fn a_new_gateway_is_created_whole_in_order() {
        let certs = BTreeMap::new();
        let mut d = design(vec![to_pool("a", "/a")]);
        d.pools[0]
            .members
            .insert(Member::serving("10.0.0.1".parse().unwrap(), 8080));
        let ops = plan(&d, &ObservedGateway::default(), &cx(&certs));
        let summaries: Vec<String> = ops.iter().map(GatewayOp::summary).collect();
        assert_eq!(
            summaries,
            vec![
                "create load balancer gw",
                "create HTTP pool a",
                "set the 1 member(s) of pool a",
                "create HTTP pool b",
                "create HTTP pool c",
                "create listener gw:HTTP:80",
                "create L7 policy a/a (1 rule(s)) at position 1 of listener gw:HTTP:80",
            ]
        );
    }

    #[test]
    fn what_is_no_longer_designed_goes_after_what_replaces_it() {
        let certs = BTreeMap::new();
        let mut d = design(vec![]);
        d.pools.truncate(1);
        let o = observed(vec![observed_policy("pb", "id-b", "/b", 1)]);
        let ops = plan(&d, &o, &cx(&certs));
        assert_eq!(
            ops.iter().map(GatewayOp::summary).collect::<Vec<_>>(),
            vec![
                "delete L7 policy pb of listener gw:HTTP:80",
                "delete pool b",
                "delete pool c",
            ]
        );
        let mut gone = o.clone();
        gone.floating_ips.push(crate::model::ObservedFloatingIp {
            id: "f".into(),
            address: "203.0.113.5".parse().unwrap(),
            port_id: None,
            network_id: None,
            tags: vec![],
            description: None,
        });
        assert_eq!(
            removal(&gone)
                .iter()
                .map(GatewayOp::summary)
                .collect::<Vec<_>>(),
            vec![
                "delete floating IP 203.0.113.5",
                "delete load balancer gw and everything under it"
            ]
        );
    }
}
