//! The load-balancing cloud as the reconciler sees it: observe what exists
//! for a Service in as few reads as the API allows, execute one planned
//! operation, wait for a load balancer with bounded backoff. Octavia or the
//! legacy Neutron LBaaS v2 API (which has no tags: ownership goes into the
//! description, and into the name of members).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::{Calls, Service, SharedSession};
use super::wire;
use crate::config::Api;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, FloatingIpLookup, HealthMonitor, Member,
    Observed, ObservedFloatingIp, ObservedHealthMonitor, ObservedListener, ObservedLoadBalancer,
    ObservedMember, ObservedPool,
};
use crate::plan::{Capabilities, MemberSpec, Operation, Ref};
use crate::translate::ReferenceKind;

/// Legacy objects carry tags as `svc-lbaas-tags:a,b,c` in a text field.
const LEGACY_TAGS: &str = "svc-lbaas-tags:";

#[derive(Debug, Clone)]
pub struct SubnetInfo {
    pub network_id: String,
    pub cidr: IpNet,
}

/// How long and how often to wait for a load balancer.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub first_poll: Duration,
    pub factor: f64,
    pub max_poll: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            first_poll: Duration::from_millis(100),
            factor: 1.5,
            max_poll: Duration::from_secs(3),
        }
    }
}

pub struct Cloud {
    session: SharedSession,
    pub api: Api,
    /// What the configured API offers at most; narrowed by discovery.
    pub caps: Capabilities,
    discovered: Mutex<Option<Capabilities>>,
    pub wait: WaitPolicy,
    subnets: Mutex<HashMap<String, SubnetInfo>>,
    external_network: Mutex<Option<String>>,
    /// User-named networks, flavors and availability zones found to exist.
    known: Mutex<std::collections::HashSet<String>>,
}

/// What the execution of a plan has learnt so far: ids of what it created.
#[derive(Debug, Default)]
pub struct Progress {
    pub load_balancer: Option<String>,
    pub vip_port: Option<String>,
    listeners: HashMap<String, String>,
    pools: HashMap<String, String>,
    /// A load balancer write awaits ACTIVE before the next one.
    pub dirty: bool,
    /// A load balancer being deleted, to wait out before a re-create.
    pub deleting: Option<String>,
    /// Ids of what each operation touched, in order, for the answer.
    pub ids: Vec<Option<String>>,
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Ownership written where an API takes no tags: `svc-lbaas-tags:a,b,c`.
pub fn owner_description(owner: &[String]) -> String {
    format!("{LEGACY_TAGS}{}", owner.join(","))
}

fn tags_of(v: &Value, legacy_field: &str) -> Vec<String> {
    if let Some(tags) = v.get("tags").and_then(Value::as_array)
        && !tags.is_empty()
    {
        return tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    legacy_tags(v.get(legacy_field).and_then(Value::as_str))
}

/// Tags kept in a text field by the legacy API: `svc-lbaas-tags:a,b,c`.
fn legacy_tags(field: Option<&str>) -> Vec<String> {
    match field {
        Some(d) if d.starts_with(LEGACY_TAGS) => d[LEGACY_TAGS.len()..]
            .split(',')
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn ip(v: &Value, k: &str) -> Option<IpAddr> {
    v.get(k)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn number(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

impl Cloud {
    pub fn new(session: SharedSession, api: Api) -> Cloud {
        Cloud {
            session,
            api,
            caps: Capabilities::of(api),
            wait: WaitPolicy::default(),
            subnets: Mutex::new(HashMap::new()),
            external_network: Mutex::new(None),
            known: Mutex::new(Default::default()),
            discovered: Mutex::new(None),
        }
    }

    pub fn session(&self) -> &SharedSession {
        &self.session
    }

    /// Where load balancer objects live: Octavia's endpoint or Neutron's `/lbaas`.
    fn lb_service(&self) -> Service {
        match self.api {
            Api::Octavia => Service::LoadBalancer,
            Api::NeutronLbaas => Service::Network,
        }
    }

    async fn lb_call(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<Value, OpenStackError> {
        self.session
            .call(
                calls,
                self.lb_service(),
                method,
                &path.below("/lbaas"),
                body,
            )
            .await
    }

    /// `DELETE` with cascade: the load balancer and everything under it.
    async fn delete_load_balancer(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        self.lb_call(
            calls,
            Method::DELETE,
            ApiPath::of("loadbalancers")
                .id("load balancer id", id)?
                .query(&[("cascade", "true")]),
            None,
        )
        .await
        .map(drop)
    }

    async fn net_call(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<Value, OpenStackError> {
        self.session
            .call(calls, Service::Network, method, &path, body)
            .await
    }

    /// What the cloud's load-balancing API offers, from Octavia's version
    /// document (read once): batch members and listener timeouts from 2.1,
    /// `allowed_cidrs` from 2.12, `additional_vips` from 2.26. The legacy API
    /// offers none of them.
    pub async fn capabilities(&self, calls: &Calls) -> Result<Capabilities, OpenStackError> {
        if self.api == Api::NeutronLbaas {
            return Ok(self.caps);
        }
        if let Some(c) = *self.discovered.lock().await {
            return Ok(c);
        }
        // The version document is at the endpoint's root, one level above `/v2`.
        let doc = self
            .session
            .call(
                calls,
                Service::LoadBalancer,
                Method::GET,
                &ApiPath::version_document(),
                None,
            )
            .await;
        let minor = match doc {
            Ok(v) => max_minor(&v),
            Err(e) => {
                tracing::warn!(error = %e, "could not read Octavia's versions; assuming the newest API");
                None
            }
        };
        let caps = match minor {
            Some(m) => Capabilities {
                fully_populated_create: true,
                populated_children: self.caps.populated_children,
                batch_members: m >= 1,
                listener_timeouts: m >= 1,
                allowed_cidrs: m >= 12,
                additional_vips: m >= 26,
                octavia_protocols: true,
                sctp: m >= 23,
            },
            None => self.caps,
        };
        tracing::info!(?minor, ?caps, "load-balancer API capabilities");
        *self.discovered.lock().await = Some(caps);
        Ok(caps)
    }

    /// A subnet's network and CIDR (cached: they never change).
    pub async fn subnet(&self, calls: &Calls, id: &str) -> Result<SubnetInfo, OpenStackError> {
        if let Some(s) = self.subnets.lock().await.get(id) {
            return Ok(s.clone());
        }
        let v = self
            .net_call(
                calls,
                Method::GET,
                ApiPath::of("subnets").id("subnet id", id)?,
                None,
            )
            .await?;
        let s = &v["subnet"];
        let info = SubnetInfo {
            network_id: text(s, "network_id").unwrap_or_default(),
            cidr: s["cidr"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| {
                    OpenStackError::Precondition(format!("subnet {id} has no readable CIDR"))
                })?,
        };
        self.subnets
            .lock()
            .await
            .insert(id.to_string(), info.clone());
        Ok(info)
    }

    /// Checks that a user-named object exists: `Missing` on a 404. Found ones
    /// are remembered (subnets with their CIDR), so a Service re-applied pays
    /// nothing. Flavors and availability zones are Octavia's: on the legacy
    /// API the create itself is the check.
    pub async fn require(
        &self,
        calls: &Calls,
        kind: ReferenceKind,
        id: &str,
    ) -> Result<(), OpenStackError> {
        let missing = |e: OpenStackError| {
            if e.is_not_found() {
                OpenStackError::Missing {
                    kind: kind.as_str(),
                    id: id.to_string(),
                }
            } else {
                e
            }
        };
        if kind == ReferenceKind::Subnet {
            return self.subnet(calls, id).await.map(|_| ()).map_err(missing);
        }
        let key = format!("{}:{id}", kind.as_str());
        if self.known.lock().await.contains(&key) {
            return Ok(());
        }
        let result = match (kind, self.api) {
            (ReferenceKind::Network, _) => {
                let path = ApiPath::of("networks")
                    .id("network id", id)?
                    .query(&[("fields", "id")]);
                self.net_call(calls, Method::GET, path, None).await
            }
            (ReferenceKind::Flavor, Api::Octavia) => {
                let path = ApiPath::of("flavors")
                    .id("flavor id", id)?
                    .query(&[("fields", "id")]);
                self.lb_call(calls, Method::GET, path, None).await
            }
            (ReferenceKind::AvailabilityZone, Api::Octavia) => {
                let path = ApiPath::of("availabilityzones")
                    .name(id)
                    .query(&[("fields", "name")]);
                self.lb_call(calls, Method::GET, path, None).await
            }
            _ => return Ok(()),
        };
        result.map_err(missing)?;
        self.known.lock().await.insert(key);
        Ok(())
    }

    /// The external network for floating IPs when neither a subnet nor a
    /// network is configured: the only `router:external` network.
    async fn external_network(&self, calls: &Calls) -> Result<String, OpenStackError> {
        if let Some(n) = self.external_network.lock().await.clone() {
            return Ok(n);
        }
        let v = self
            .net_call(
                calls,
                Method::GET,
                ApiPath::of("networks").query(&[("router:external", "true"), ("fields", "id")]),
                None,
            )
            .await?;
        let ids: Vec<String> = list(&v, "networks")
            .iter()
            .filter_map(|n| text(n, "id"))
            .collect();
        match ids.as_slice() {
            [one] => {
                *self.external_network.lock().await = Some(one.clone());
                Ok(one.clone())
            }
            [] => Err(OpenStackError::Precondition("no external network for floating IPs: set [neutron_defaults] external_svc_subnet".into())),
            _ => Err(OpenStackError::Precondition("several external networks: set [neutron_defaults] external_svc_subnet or the floating-network-id annotation".into())),
        }
    }

    // ---------------------------------------------------------------- observe

    /// Reads what exists for a Service: load balancers named `name` (or the
    /// one with `id_hint`), their listeners and pools, members only when
    /// `members` is true, floating IPs with the owner tags or bound to a VIP.
    pub async fn observe(
        &self,
        calls: &Calls,
        name: &str,
        owner_tags: &[String],
        id_hint: Option<&str>,
        user_address: Option<Ipv4Addr>,
        members: bool,
    ) -> Result<Observed, OpenStackError> {
        let found = match id_hint {
            Some(id) => match self
                .lb_call(
                    calls,
                    Method::GET,
                    ApiPath::of("loadbalancers").id("load balancer id", id)?,
                    None,
                )
                .await
            {
                Ok(v) => vec![v["loadbalancer"].clone()],
                // The user named it: a 404 is their mistake, not a reason to create another.
                Err(e) if e.is_not_found() => {
                    return Err(OpenStackError::Missing {
                        kind: "load balancer",
                        id: id.to_string(),
                    });
                }
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        let found = if found.is_empty() {
            let v = self
                .lb_call(
                    calls,
                    Method::GET,
                    ApiPath::of("loadbalancers").query(&[("name", name)]),
                    None,
                )
                .await?;
            list(&v, "loadbalancers").to_vec()
        } else {
            found
        };
        let mut load_balancers = Vec::new();
        let mut deleting = Vec::new();
        for lb in &found {
            let mut observed = self.parse_lb(lb);
            if observed.provisioning_status == "PENDING_DELETE"
                && crate::names::is_owned(&observed.tags, owner_tags)
            {
                deleting.push(observed.id.clone());
            }
            if crate::names::is_owned(&observed.tags, owner_tags)
                && observed.provisioning_status != "PENDING_DELETE"
            {
                match self.read_tree(calls, &mut observed, members).await {
                    Ok(()) => {}
                    // Its children went while they were read: another replica
                    // is deleting it (a copy it raced). Count it as going.
                    Err(e) if e.is_not_found() => {
                        deleting.push(observed.id.clone());
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if observed.provisioning_status != "PENDING_DELETE"
                && observed.provisioning_status != "DELETED"
            {
                load_balancers.push(observed);
            }
        }
        // Every reader sees several copies in the same order: the survivor first.
        crate::model::in_survival_order(&mut load_balancers);

        let mut floating_ips: Vec<ObservedFloatingIp> = Vec::new();
        let v = self
            .net_call(
                calls,
                Method::GET,
                ApiPath::of("floatingips")
                    .query(&[("description", &owner_description(owner_tags))]),
                None,
            )
            .await?;
        floating_ips.extend(list(&v, "floatingips").iter().filter_map(parse_fip));
        for port in load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.clone())
        {
            let v = self
                .net_call(
                    calls,
                    Method::GET,
                    ApiPath::of("floatingips").query(&[("port_id", &port)]),
                    None,
                )
                .await?;
            for f in list(&v, "floatingips").iter().filter_map(parse_fip) {
                if !floating_ips.iter().any(|o| o.id == f.id) {
                    floating_ips.push(f);
                }
            }
        }
        let user_floating_ip = match user_address {
            None => FloatingIpLookup::NotLookedUp,
            Some(a) => {
                let address = a.to_string();
                let known = floating_ips
                    .iter()
                    .find(|f| f.address == IpAddr::V4(a))
                    .cloned();
                match known {
                    Some(f) => FloatingIpLookup::Found(f),
                    None => {
                        let v = self
                            .net_call(
                                calls,
                                Method::GET,
                                ApiPath::of("floatingips")
                                    .query(&[("floating_ip_address", &address)]),
                                None,
                            )
                            .await?;
                        list(&v, "floatingips")
                            .iter()
                            .filter_map(parse_fip)
                            .next()
                            .map_or(FloatingIpLookup::NotFound, FloatingIpLookup::Found)
                    }
                }
            }
        };
        Ok(Observed {
            load_balancers,
            floating_ips,
            user_floating_ip,
            deleting,
        })
    }

    /// Everything this tool made for a cluster (`cluster_tag`): its load
    /// balancers (without their trees) and floating IPs, and every floating
    /// IP bound to one of those load balancers' VIP ports (a user's, maybe).
    pub async fn owned_by_cluster(
        &self,
        calls: &Calls,
        cluster_tag: &str,
    ) -> Result<(Vec<ObservedLoadBalancer>, Vec<ObservedFloatingIp>), OpenStackError> {
        let owned = |tags: &[String]| {
            tags.iter().any(|t| t == crate::names::TOOL_TAG)
                && tags.iter().any(|t| t == cluster_tag)
        };
        // Octavia filters by tag; the legacy API keeps tags in descriptions.
        let path = match self.api {
            Api::Octavia => ApiPath::of("loadbalancers").query(&[("tags", cluster_tag)]),
            Api::NeutronLbaas => ApiPath::of("loadbalancers"),
        };
        let v = self.lb_call(calls, Method::GET, path, None).await?;
        let mut load_balancers: Vec<ObservedLoadBalancer> = list(&v, "loadbalancers")
            .iter()
            .map(|lb| self.parse_lb(lb))
            .filter(|lb| owned(&lb.tags))
            .collect();
        crate::model::in_survival_order(&mut load_balancers);
        let vip_ports: Vec<&str> = load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.as_deref())
            .collect();
        // Neutron cannot filter descriptions by part: read them all, once.
        let v = self
            .net_call(calls, Method::GET, ApiPath::of("floatingips"), None)
            .await?;
        let floating_ips = list(&v, "floatingips")
            .iter()
            .filter_map(parse_fip)
            .filter(|f| {
                owned(&f.tags) || f.port_id.as_deref().is_some_and(|p| vip_ports.contains(&p))
            })
            .collect();
        Ok((load_balancers, floating_ips))
    }

    fn parse_lb(&self, v: &Value) -> ObservedLoadBalancer {
        ObservedLoadBalancer {
            id: text(v, "id").unwrap_or_default(),
            name: text(v, "name").unwrap_or_default(),
            vip_address: ip(v, "vip_address"),
            vip_subnet_id: text(v, "vip_subnet_id"),
            vip_port_id: text(v, "vip_port_id"),
            additional_vips: list(v, "additional_vips")
                .iter()
                .filter_map(|a| ip(a, "ip_address"))
                .collect(),
            provisioning_status: text(v, "provisioning_status").unwrap_or_default(),
            operating_status: text(v, "operating_status").unwrap_or_default(),
            flavor_id: text(v, "flavor_id"),
            availability_zone: text(v, "availability_zone"),
            listeners: Vec::new(),
            pools: Vec::new(),
            tags: tags_of(v, "description"),
            created_at: text(v, "created_at"),
        }
    }

    async fn read_tree(
        &self,
        calls: &Calls,
        lb: &mut ObservedLoadBalancer,
        members: bool,
    ) -> Result<(), OpenStackError> {
        let q = [("loadbalancer_id", lb.id.as_str())];
        let v = self
            .lb_call(calls, Method::GET, ApiPath::of("listeners").query(&q), None)
            .await?;
        lb.listeners = list(&v, "listeners")
            .iter()
            .map(|l| ObservedListener {
                id: text(l, "id").unwrap_or_default(),
                name: text(l, "name").unwrap_or_default(),
                protocol: text(l, "protocol").unwrap_or_default(),
                protocol_port: number(l, "protocol_port")
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                allowed_cidrs: list(l, "allowed_cidrs")
                    .iter()
                    .filter_map(|c| c.as_str()?.parse().ok())
                    .collect(),
                connection_limit: number(l, "connection_limit"),
                timeout_client_data: number(l, "timeout_client_data").map(|t| t as u64),
                timeout_member_connect: number(l, "timeout_member_connect").map(|t| t as u64),
                timeout_member_data: number(l, "timeout_member_data").map(|t| t as u64),
                timeout_tcp_inspect: number(l, "timeout_tcp_inspect").map(|t| t as u64),
                default_pool_id: text(l, "default_pool_id"),
                tags: tags_of(l, "description"),
            })
            .collect();
        let v = self
            .lb_call(calls, Method::GET, ApiPath::of("pools").query(&q), None)
            .await?;
        for p in list(&v, "pools") {
            let id = text(p, "id").unwrap_or_default();
            let mut pool = ObservedPool {
                id: id.clone(),
                name: text(p, "name").unwrap_or_default(),
                protocol: text(p, "protocol").unwrap_or_default(),
                lb_algorithm: text(p, "lb_algorithm").unwrap_or_default(),
                session_persistence: p.get("session_persistence").and_then(|s| text(s, "type")),
                members: Vec::new(),
                health_monitor: None,
                tags: tags_of(p, "description"),
            };
            if members {
                let m: Option<wire::MemberList> = self
                    .session
                    .call_as(
                        calls,
                        self.lb_service(),
                        Method::GET,
                        &ApiPath::of("pools")
                            .id("pool id", &id)?
                            .then("members")
                            .below("/lbaas"),
                        None,
                    )
                    .await?;
                pool.members = m
                    .map(|m| m.members)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| {
                        let tags = match m.tags.filter(|t| !t.is_empty()) {
                            Some(t) => t,
                            None => legacy_tags(m.name.as_deref()),
                        };
                        Some(ObservedMember {
                            id: wire::present(&m.id)?,
                            address: m.address.as_deref()?.parse().ok()?,
                            protocol_port: m.protocol_port.and_then(|p| u16::try_from(p).ok())?,
                            tags,
                        })
                    })
                    .collect();
            }
            if let Some(hm_id) = text(p, "healthmonitor_id") {
                let h = self
                    .lb_call(
                        calls,
                        Method::GET,
                        ApiPath::of("healthmonitors").id("health monitor id", &hm_id)?,
                        None,
                    )
                    .await?;
                let h = &h["healthmonitor"];
                let n = |k: &str| {
                    number(h, k)
                        .and_then(|x| u32::try_from(x).ok())
                        .unwrap_or(0)
                };
                pool.health_monitor = Some(ObservedHealthMonitor {
                    id: hm_id,
                    kind: text(h, "type").unwrap_or_default(),
                    delay: n("delay"),
                    timeout: n("timeout"),
                    max_retries: n("max_retries"),
                    max_retries_down: n("max_retries_down"),
                    tags: tags_of(h, "name"),
                });
            }
            lb.pools.push(pool);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- bodies

    /// Sets the owner tags on a request body: `tags` on Octavia, a text
    /// field on the legacy API.
    fn tag(&self, body: &mut Value, tags: &[String], legacy_field: &str) {
        match self.api {
            Api::Octavia => body["tags"] = json!(tags),
            Api::NeutronLbaas => {
                body[legacy_field] = json!(format!("{LEGACY_TAGS}{}", tags.join(",")))
            }
        }
    }

    fn member_body(&self, m: &Member, subnet: &Option<String>, tags: Option<&[String]>) -> Value {
        let mut b = json!({"address": m.address.to_string(), "protocol_port": m.protocol_port});
        if let Some(s) = subnet {
            b["subnet_id"] = json!(s);
        }
        if let Some(t) = tags {
            self.tag(&mut b, t, "name");
        }
        b
    }

    fn monitor_body(&self, hm: &HealthMonitor, tags: &[String]) -> Value {
        let mut b = json!({
            "type": hm.kind.as_str(), "delay": hm.delay, "timeout": hm.timeout,
            "max_retries": hm.max_retries, "max_retries_down": hm.max_retries_down,
        });
        if self.api == Api::NeutronLbaas {
            // LBaaS v2 has no max_retries_down.
            if let Some(o) = b.as_object_mut() {
                o.remove("max_retries_down");
            }
        }
        self.tag(&mut b, tags, "name");
        b
    }

    fn pool_body(&self, p: &DesiredPool, tags: &[String], populated: bool) -> Value {
        let mut b = json!({"name": p.name, "protocol": p.protocol.as_str(), "lb_algorithm": p.lb_algorithm.as_str()});
        if let Some(sp) = p.session_persistence {
            b["session_persistence"] = json!({"type": sp.as_str()});
        }
        let pool_tags: Vec<String> = tags.iter().chain(&p.port_tags).cloned().collect();
        self.tag(&mut b, &pool_tags, "description");
        if populated {
            let members: Vec<Value> = p
                .members
                .iter()
                .flatten()
                .map(|m| self.member_body(m, &p.member_subnet, Some(tags)))
                .collect();
            if !members.is_empty() {
                b["members"] = json!(members);
            }
            if let Some(hm) = &p.health_monitor {
                b["healthmonitor"] = self.monitor_body(hm, tags);
            }
        }
        b
    }

    fn listener_body(&self, l: &DesiredListener, tags: &[String], with_pool: bool) -> Value {
        let mut b = json!({"name": l.name, "protocol": l.protocol.as_str(), "protocol_port": l.protocol_port});
        if !l.allowed_cidrs.is_empty() {
            b["allowed_cidrs"] = json!(
                l.allowed_cidrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            );
        }
        let o = &l.options;
        if let Some(c) = o.connection_limit {
            b["connection_limit"] = json!(c);
        }
        for (key, value) in [
            ("timeout_client_data", o.timeout_client_data),
            ("timeout_member_connect", o.timeout_member_connect),
            ("timeout_member_data", o.timeout_member_data),
            ("timeout_tcp_inspect", o.timeout_tcp_inspect),
        ] {
            if let Some(v) = value {
                b[key] = json!(v);
            }
        }
        self.tag(&mut b, tags, "description");
        if with_pool {
            b["default_pool"] = self.pool_body(&l.pool, tags, true);
        }
        b
    }

    fn load_balancer_body(
        &self,
        d: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional: bool,
    ) -> Value {
        let mut b = json!({"name": d.name});
        if let Some(s) = &d.vip.subnet_id {
            b["vip_subnet_id"] = json!(s);
        }
        if let Some(a) = d.vip.address {
            b["vip_address"] = json!(a.to_string());
        }
        for (key, value) in [
            ("provider", &d.provider),
            ("flavor_id", &d.flavor_id),
            ("availability_zone", &d.availability_zone),
        ] {
            if let Some(v) = value {
                b[key] = json!(v);
            }
        }
        if additional && !d.additional_vips.is_empty() {
            let vips: Vec<Value> = d
                .additional_vips
                .iter()
                .map(|v| {
                    let mut x = json!({"subnet_id": v.subnet_id});
                    if let Some(a) = v.address {
                        x["ip_address"] = json!(a.to_string());
                    }
                    x
                })
                .collect();
            b["additional_vips"] = json!(vips);
        }
        self.tag(&mut b, &d.tags, "description");
        if populated && !d.listeners.is_empty() {
            b["listeners"] = json!(
                d.listeners
                    .iter()
                    .map(|l| self.listener_body(l, owner, true))
                    .collect::<Vec<_>>()
            );
        }
        b
    }

    // ---------------------------------------------------------------- execute

    fn resolve(r: &Ref, map: &HashMap<String, String>) -> Result<String, OpenStackError> {
        r.id.clone()
            .or_else(|| map.get(&r.name).cloned())
            .ok_or_else(|| {
                OpenStackError::Precondition(format!(
                    "{} was to be created earlier in this plan but was not",
                    r.name
                ))
            })
    }

    fn lb_id(r: &Ref, progress: &Progress) -> Result<String, OpenStackError> {
        r.id.clone()
            .or_else(|| progress.load_balancer.clone())
            .ok_or_else(|| {
                OpenStackError::Precondition(format!(
                    "load balancer {} was to be created earlier in this plan but was not",
                    r.name
                ))
            })
    }

    /// Before a load balancer write: the previous one must have settled.
    pub async fn settle(
        &self,
        calls: &Calls,
        progress: &mut Progress,
        timeout: Duration,
    ) -> Result<(), OpenStackError> {
        if let Some(id) = progress.deleting.take() {
            self.wait_for(calls, &id, timeout, true).await?;
        }
        if progress.dirty
            && let Some(id) = progress.load_balancer.clone()
        {
            self.wait_for(calls, &id, timeout, false).await?;
            progress.dirty = false;
        }
        Ok(())
    }

    /// Executes one operation; records what it created in `progress`.
    pub async fn execute(
        &self,
        calls: &Calls,
        op: &Operation,
        owner: &[String],
        progress: &mut Progress,
        timeout: Duration,
    ) -> Result<Option<String>, OpenStackError> {
        if op.is_load_balancer_write() {
            self.settle(calls, progress, timeout).await?;
        }
        let touched = match op {
            Operation::CreateLoadBalancer {
                load_balancer,
                populated,
                additional_vips,
            } => {
                let body = json!({"loadbalancer": self.load_balancer_body(load_balancer, owner, *populated, *additional_vips)});
                let created: Option<wire::CreatedLoadBalancer> = self
                    .session
                    .call_as(
                        calls,
                        self.lb_service(),
                        Method::POST,
                        &ApiPath::of("loadbalancers").below("/lbaas"),
                        Some(&body),
                    )
                    .await?;
                drop(body);
                let lb = created.map(|c| c.loadbalancer);
                let id = lb.as_ref().and_then(|lb| wire::present(&lb.id));
                progress.load_balancer = id.clone();
                progress.vip_port = lb.as_ref().and_then(|lb| wire::present(&lb.vip_port_id));
                for l in lb.iter().flat_map(|lb| &lb.listeners) {
                    if let (Some(n), Some(i)) = (wire::present(&l.name), wire::present(&l.id)) {
                        progress.listeners.insert(n, i);
                    }
                }
                id
            }
            Operation::DeleteLoadBalancer { id, .. } => {
                let mut deleted = self.delete_load_balancer(calls, id).await;
                // Octavia refuses to delete a load balancer while it is
                // PENDING_*: a racing replica's copy still being created, or
                // one it is changing. Wait it out, then delete it.
                if matches!(&deleted, Err(e) if e.is_conflict()) {
                    deleted = match self.wait_for(calls, id, timeout, false).await {
                        Ok(()) | Err(OpenStackError::LoadBalancerError { .. }) => {
                            self.delete_load_balancer(calls, id).await
                        }
                        // Another replica deleted it meanwhile.
                        Err(e) if e.is_vanished() => Ok(()),
                        Err(e) => Err(e),
                    };
                }
                match deleted {
                    Ok(()) => progress.deleting = Some(id.clone()),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                if progress.load_balancer.as_deref() == Some(id) {
                    progress.load_balancer = None;
                }
                Some(id.clone())
            }
            Operation::CreateListener {
                load_balancer,
                listener,
                with_pool,
            } => {
                let lb = Self::lb_id(load_balancer, progress)?;
                progress.load_balancer.get_or_insert(lb.clone());
                let mut body = self.listener_body(listener, owner, *with_pool);
                body["loadbalancer_id"] = json!(lb);
                let v = self
                    .lb_call(
                        calls,
                        Method::POST,
                        ApiPath::of("listeners"),
                        Some(&json!({"listener": body})),
                    )
                    .await?;
                let id = text(&v["listener"], "id");
                if let Some(i) = &id {
                    progress.listeners.insert(listener.name.clone(), i.clone());
                }
                id
            }
            Operation::UpdateListener { id, update, .. } => {
                let mut b = json!({});
                if let Some(c) = &update.allowed_cidrs {
                    b["allowed_cidrs"] =
                        json!(c.iter().map(ToString::to_string).collect::<Vec<_>>());
                }
                for (key, value) in [
                    ("timeout_client_data", update.timeout_client_data),
                    ("timeout_member_connect", update.timeout_member_connect),
                    ("timeout_member_data", update.timeout_member_data),
                    ("timeout_tcp_inspect", update.timeout_tcp_inspect),
                ] {
                    if let Some(v) = value {
                        b[key] = json!(v);
                    }
                }
                if let Some(c) = update.connection_limit {
                    b["connection_limit"] = json!(c);
                }
                self.lb_call(
                    calls,
                    Method::PUT,
                    ApiPath::of("listeners").id("listener id", id)?,
                    Some(&json!({"listener": b})),
                )
                .await?;
                Some(id.clone())
            }
            Operation::DeleteListener { id, .. } => {
                self.delete_child(calls, ApiPath::of("listeners").id("listener id", id)?)
                    .await?;
                Some(id.clone())
            }
            Operation::CreatePool {
                load_balancer,
                listener,
                pool,
                populated,
            } => {
                let _ = Self::lb_id(load_balancer, progress)?;
                let listener_id = Self::resolve(listener, &progress.listeners)?;
                let mut body = self.pool_body(pool, owner, *populated);
                body["listener_id"] = json!(listener_id);
                let v = self
                    .lb_call(
                        calls,
                        Method::POST,
                        ApiPath::of("pools"),
                        Some(&json!({"pool": body})),
                    )
                    .await?;
                let id = text(&v["pool"], "id");
                if let Some(i) = &id {
                    progress.pools.insert(pool.name.clone(), i.clone());
                }
                id
            }
            Operation::UpdatePool { id, update, .. } => {
                let mut b = json!({});
                if let Some(a) = update.lb_algorithm {
                    b["lb_algorithm"] = json!(a.as_str());
                }
                if let Some(sp) = update.session_persistence {
                    b["session_persistence"] =
                        sp.map_or(Value::Null, |p| json!({"type": p.as_str()}));
                }
                if let Some(t) = &update.tags {
                    self.tag(&mut b, t, "description");
                }
                self.lb_call(
                    calls,
                    Method::PUT,
                    ApiPath::of("pools").id("pool id", id)?,
                    Some(&json!({"pool": b})),
                )
                .await?;
                Some(id.clone())
            }
            Operation::DeletePool { id, .. } => {
                self.delete_child(calls, ApiPath::of("pools").id("pool id", id)?)
                    .await?;
                Some(id.clone())
            }
            Operation::ReplaceMembers { pool, members } => {
                let pool_id = Self::resolve(pool, &progress.pools)?;
                let body: Vec<Value> = members
                    .iter()
                    .map(
                        |MemberSpec {
                             member,
                             subnet_id,
                             owned,
                         }| {
                            self.member_body(member, subnet_id, owned.then_some(owner))
                        },
                    )
                    .collect();
                self.lb_call(
                    calls,
                    Method::PUT,
                    ApiPath::of("pools")
                        .id("pool id", &pool_id)?
                        .then("members"),
                    Some(&json!({"members": body})),
                )
                .await?;
                Some(pool_id)
            }
            Operation::CreateMember {
                pool,
                member,
                subnet_id,
            } => {
                let pool_id = Self::resolve(pool, &progress.pools)?;
                let body = json!({"member": self.member_body(member, subnet_id, Some(owner))});
                let v = self
                    .lb_call(
                        calls,
                        Method::POST,
                        ApiPath::of("pools")
                            .id("pool id", &pool_id)?
                            .then("members"),
                        Some(&body),
                    )
                    .await?;
                text(&v["member"], "id")
            }
            Operation::DeleteMember { pool, id, .. } => {
                let pool_id = Self::resolve(pool, &progress.pools)?;
                self.delete_child(
                    calls,
                    ApiPath::of("pools")
                        .id("pool id", &pool_id)?
                        .then("members")
                        .id("member id", id)?,
                )
                .await?;
                Some(id.clone())
            }
            Operation::CreateHealthMonitor { pool, monitor } => {
                let pool_id = Self::resolve(pool, &progress.pools)?;
                let mut body = self.monitor_body(monitor, owner);
                body["pool_id"] = json!(pool_id);
                let v = self
                    .lb_call(
                        calls,
                        Method::POST,
                        ApiPath::of("healthmonitors"),
                        Some(&json!({"healthmonitor": body})),
                    )
                    .await?;
                text(&v["healthmonitor"], "id")
            }
            Operation::UpdateHealthMonitor { id, monitor, .. } => {
                let mut body = self.monitor_body(monitor, owner);
                if let Some(o) = body.as_object_mut() {
                    o.remove("type");
                    o.remove("tags");
                    o.remove("name");
                }
                self.lb_call(
                    calls,
                    Method::PUT,
                    ApiPath::of("healthmonitors").id("health monitor id", id)?,
                    Some(&json!({"healthmonitor": body})),
                )
                .await?;
                Some(id.clone())
            }
            Operation::DeleteHealthMonitor { id, .. } => {
                self.delete_child(
                    calls,
                    ApiPath::of("healthmonitors").id("health monitor id", id)?,
                )
                .await?;
                Some(id.clone())
            }
            Operation::CreateFloatingIp {
                vip_port,
                subnet_id,
                network_id,
                description: _,
            } => {
                let port = vip_port
                    .id
                    .clone()
                    .or_else(|| progress.vip_port.clone())
                    .ok_or_else(|| {
                        OpenStackError::Precondition(format!(
                            "the VIP port of {} is not known yet",
                            vip_port.name
                        ))
                    })?;
                let network = match (network_id, subnet_id) {
                    (Some(n), _) => n.clone(),
                    (None, Some(s)) => self.subnet(calls, s).await?.network_id,
                    (None, None) => self.external_network(calls).await?,
                };
                // Neutron takes no tags in a create: the ownership goes into the
                // description, set in the same call, so no crash can leave an
                // allocated floating IP that no later run recognises.
                let mut body = json!({"floating_network_id": network, "port_id": port, "description": owner_description(owner)});
                if let Some(s) = subnet_id {
                    body["subnet_id"] = json!(s);
                }
                let v = self
                    .net_call(
                        calls,
                        Method::POST,
                        ApiPath::of("floatingips"),
                        Some(&json!({"floatingip": body})),
                    )
                    .await?;
                text(&v["floatingip"], "id")
            }
            Operation::AssociateFloatingIp {
                id,
                address,
                vip_port,
            } => {
                let id = id.clone().ok_or_else(|| {
                    OpenStackError::Precondition(format!("floating IP {address} was not looked up"))
                })?;
                let port = vip_port
                    .id
                    .clone()
                    .or_else(|| progress.vip_port.clone())
                    .ok_or_else(|| {
                        OpenStackError::Precondition(format!(
                            "the VIP port of {} is not known yet",
                            vip_port.name
                        ))
                    })?;
                self.net_call(
                    calls,
                    Method::PUT,
                    ApiPath::of("floatingips").id("floating IP id", &id)?,
                    Some(&json!({"floatingip": {"port_id": port}})),
                )
                .await?;
                Some(id)
            }
            Operation::DisassociateFloatingIp { id, .. } => {
                self.net_call(
                    calls,
                    Method::PUT,
                    ApiPath::of("floatingips").id("floating IP id", id)?,
                    Some(&json!({"floatingip": {"port_id": null}})),
                )
                .await?;
                Some(id.clone())
            }
            Operation::DeleteFloatingIp { id, .. } => {
                match self
                    .net_call(
                        calls,
                        Method::DELETE,
                        ApiPath::of("floatingips").id("floating IP id", id)?,
                        None,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                Some(id.clone())
            }
        };
        // Every load balancer write but a delete leaves the tree PENDING_* for a while.
        if op.is_load_balancer_write() && !matches!(op, Operation::DeleteLoadBalancer { .. }) {
            progress.dirty = true;
        }
        progress.ids.push(touched.clone());
        Ok(touched)
    }

    /// Deletes a child object; one already gone is success.
    async fn delete_child(&self, calls: &Calls, path: ApiPath) -> Result<(), OpenStackError> {
        match self.lb_call(calls, Method::DELETE, path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the load balancer is ACTIVE (or, `gone`, deleted): polls
    /// with backoff, fails on ERROR or after `timeout`.
    pub async fn wait_for(
        &self,
        calls: &Calls,
        id: &str,
        timeout: Duration,
        gone: bool,
    ) -> Result<(), OpenStackError> {
        calls
            .waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let result = self.poll(calls, id, timeout, gone, started).await;
        calls.report(super::session::ProgressEvent::Waited {
            load_balancer_id: id.to_string(),
            status: match &result {
                Ok(()) if gone => "DELETED".into(),
                Ok(()) => "ACTIVE".into(),
                Err(e) => e.to_string(),
            },
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        let m = crate::metrics::global();
        m.inc("svc_lbaas_waits_total", &[]);
        m.add(
            "svc_lbaas_wait_seconds_total",
            &[],
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn poll(
        &self,
        calls: &Calls,
        id: &str,
        timeout: Duration,
        gone: bool,
        started: Instant,
    ) -> Result<(), OpenStackError> {
        let mut pause = self.wait.first_poll;
        loop {
            let status = match self
                .lb_call(
                    calls,
                    Method::GET,
                    ApiPath::of("loadbalancers").id("load balancer id", id)?,
                    None,
                )
                .await
            {
                Ok(v) => text(&v["loadbalancer"], "provisioning_status").unwrap_or_default(),
                Err(e) if e.is_not_found() && gone => return Ok(()),
                // Deleted while waited for: a replica that raced this one
                // removed its copy. The caller observes and plans again.
                Err(e) if e.is_not_found() => return Err(vanished(id)),
                Err(e) => return Err(e),
            };
            if !gone && matches!(status.as_str(), "PENDING_DELETE" | "DELETED") {
                return Err(vanished(id));
            }
            match status.as_str() {
                "ACTIVE" if !gone => return Ok(()),
                "ERROR" if !gone => {
                    return Err(OpenStackError::LoadBalancerError { id: id.to_string() });
                }
                "DELETED" if gone => return Ok(()),
                _ => {}
            }
            if started.elapsed() + pause > timeout {
                return Err(OpenStackError::WaitTimeout {
                    id: id.to_string(),
                    status,
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = pause.mul_f64(self.wait.factor).min(self.wait.max_poll);
        }
    }
}

fn vanished(id: &str) -> OpenStackError {
    OpenStackError::Missing {
        kind: "load balancer",
        id: id.to_string(),
    }
}

/// The highest `v2.N` in a version document (`{"versions": [{"id": "v2.29", ...}]}`).
fn max_minor(doc: &Value) -> Option<u32> {
    list(doc, "versions")
        .iter()
        .filter_map(|v| v["id"].as_str()?.strip_prefix("v2.")?.parse::<u32>().ok())
        .max()
}

fn parse_fip(v: &Value) -> Option<ObservedFloatingIp> {
    Some(ObservedFloatingIp {
        id: text(v, "id")?,
        address: ip(v, "floating_ip_address")?,
        port_id: text(v, "port_id"),
        network_id: text(v, "floating_network_id"),
        tags: tags_of(v, "description"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_newest_octavia_version_is_found() {
        let doc =
            json!({"versions": [{"id": "v2.0"}, {"id": "v2.29"}, {"id": "v2.12"}, {"id": "v1"}]});
        assert_eq!(super::max_minor(&doc), Some(29));
        assert_eq!(super::max_minor(&json!({})), None);
    }

    #[test]
    fn legacy_tags_round_trip_through_text_fields() {
        let v = json!({"description": "svc-lbaas-tags:svc-lbaas,svc-lbaas-cluster:k"});
        assert_eq!(
            super::tags_of(&v, "description"),
            ["svc-lbaas", "svc-lbaas-cluster:k"]
        );
        let v = json!({"tags": ["a"], "description": "svc-lbaas-tags:b"});
        assert_eq!(super::tags_of(&v, "description"), ["a"]);
    }
}
