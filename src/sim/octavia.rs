//! Octavia v2 (and, with Neutron's error shape and without Octavia's
//! extensions, the legacy LBaaS v2 paths): load balancers with fully-populated
//! create and cascade delete, the status tree, listeners, pools, members with
//! batch replacement, health monitors. Every write moves the tree to PENDING_*
//! for the configured delay; a write meanwhile answers 409.

use std::net::IpAddr;

use axum::http::StatusCode;
use ipnet::IpNet;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::common::timestamp;
use super::json::{ApiError, Body};
use super::l7::{L7Policy, L7Rule, Redirect};
pub use super::meta::{ACTIVE, ERROR};
pub(crate) use super::meta::{Meta, PENDING_DELETE, PENDING_UPDATE, merge};
use super::neutron::Neutron;

pub(crate) const LISTENER_PROTOCOLS: [&str; 7] = [
    "HTTP",
    "HTTPS",
    "TCP",
    "UDP",
    "SCTP",
    "TERMINATED_HTTPS",
    "PROMETHEUS",
];
pub(crate) const POOL_PROTOCOLS: [&str; 7] =
    ["HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP"];
pub(crate) const ALGORITHMS: [&str; 4] = [
    "ROUND_ROBIN",
    "LEAST_CONNECTIONS",
    "SOURCE_IP",
    "SOURCE_IP_PORT",
];
pub(crate) const MONITOR_TYPES: [&str; 7] = [
    "HTTP",
    "HTTPS",
    "PING",
    "TCP",
    "TLS-HELLO",
    "UDP-CONNECT",
    "SCTP",
];
pub(crate) const PROVIDERS: [&str; 2] = ["amphora", "octavia"];
pub(crate) const MAX_TIMEOUT: i64 = 31_536_000_000;

/// Octavia's VALID_LISTENER_POOL_PROTOCOL_MAP.
pub(crate) fn pool_fits_listener(listener: &str, pool: &str) -> bool {
    let ok: &[&str] = match listener {
        "TCP" => &["HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"],
        "HTTP" | "TERMINATED_HTTPS" => &["HTTP", "PROXY", "PROXYV2"],
        "HTTPS" => &["HTTPS", "PROXY", "PROXYV2", "TCP"],
        "UDP" => &["UDP"],
        "SCTP" => &["SCTP"],
        _ => &[],
    };
    ok.contains(&pool)
}

#[derive(Debug, Clone)]
pub struct LoadBalancer {
    pub(crate) meta: Meta,
    pub vip_address: IpAddr,
    pub vip_port_id: String,
    /// Octavia made the VIP port (not given as `vip_port_id`): it goes with
    /// the load balancer; a user's port stays.
    pub(crate) vip_port_owned: bool,
    /// `vip_sg_ids` (API 2.29): the VIP port's security groups in place of Octavia's.
    pub(crate) vip_sg_ids: Vec<String>,
    pub(crate) vip_subnet_id: String,
    pub(crate) vip_network_id: String,
    pub(crate) additional_vips: Vec<(String, IpAddr)>,
    pub(crate) provider: String,
    pub(crate) pending_until: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub(crate) meta: Meta,
    pub(crate) lb_id: String,
    pub(crate) protocol: String,
    pub(crate) protocol_port: i64,
    pub(crate) connection_limit: i64,
    pub(crate) default_pool_id: Option<String>,
    pub(crate) allowed_cidrs: Option<Vec<String>>,
    pub(crate) timeouts: [i64; 4],
    pub(crate) l7: Layer7,
}

/// A listener's layer-7 settings: inserted headers, certificates, ALPN.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layer7 {
    pub(crate) insert_headers: serde_json::Map<String, Value>,
    pub(crate) default_tls_container_ref: Option<String>,
    pub(crate) sni_container_refs: Vec<String>,
    pub(crate) alpn_protocols: Option<Vec<String>>,
}

/// The headers Octavia's listeners insert (octavia_lib's
/// SUPPORTED_HTTP_HEADERS), and the client certificate ones
/// (SUPPORTED_SSL_HEADERS, TERMINATED_HTTPS only).
pub(crate) const INSERT_HEADERS: [&str; 6] = [
    "X-Forwarded-For",
    "X-Forwarded-Port",
    "X-Forwarded-Proto",
    "X-Forwarded-IP",
    "X-Client-IP",
    "X-Real-IP",
];
pub(crate) const SSL_HEADERS: [&str; 8] = [
    "X-SSL-Client-Verify",
    "X-SSL-Client-Has-Cert",
    "X-SSL-Client-DN",
    "X-SSL-Client-CN",
    "X-SSL-Issuer",
    "X-SSL-Client-SHA1",
    "X-SSL-Client-Not-Before",
    "X-SSL-Client-Not-After",
];
pub(crate) const ALPN_PROTOCOLS: [&str; 3] = ["h2", "http/1.1", "http/1.0"];

/// The layer-7 fields of a listener body over `current` (a create: the
/// defaults), as Octavia validates them for `protocol`. Certificate
/// references are checked against Barbican by the caller.
pub(crate) fn layer7(b: &Body<'_>, protocol: &str, current: &Layer7) -> Result<Layer7, ApiError> {
    let mut l7 = current.clone();
    let http = matches!(protocol, "HTTP" | "TERMINATED_HTTPS");
    if let Some(v) = b.value("insert_headers") {
        let Some(map) = v.as_object() else {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute insert_headers. Value should be a dict",
            ));
        };
        // Octavia's _validate_insert_headers (an empty map is not checked).
        if !map.is_empty() && !http {
            return Err(ApiError::bad_request(format!(
                "insert-headers is not a valid option for a {protocol} protocol listener."
            )));
        }
        let python_list = |names: &[&String]| {
            let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let keys: Vec<&String> = map.keys().collect();
        if keys
            .iter()
            .any(|k| !INSERT_HEADERS.contains(&k.as_str()) && !SSL_HEADERS.contains(&k.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "{} is not a valid option for insert_headers",
                python_list(&keys)
            )));
        }
        let ssl: Vec<&String> = keys
            .iter()
            .copied()
            .filter(|k| SSL_HEADERS.contains(&k.as_str()))
            .collect();
        if protocol != "TERMINATED_HTTPS" && !ssl.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} is not a valid option for {protocol} protocol listener.",
                python_list(&ssl)
            )));
        }
        if let Some((_, v)) = map.iter().find(|(_, v)| !v.is_string()) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute insert_headers. Value: '{v}'. Value should be a string"
            )));
        }
        l7.insert_headers = map.clone();
    }
    if b.has("default_tls_container_ref") {
        l7.default_tls_container_ref = b.string("default_tls_container_ref")?;
    }
    if let Some(sni) = b.strings("sni_container_refs")? {
        l7.sni_container_refs = sni;
    }
    let has_certs = l7.default_tls_container_ref.is_some() || !l7.sni_container_refs.is_empty();
    if protocol == "TERMINATED_HTTPS" && !has_certs {
        return Err(ApiError::bad_request(
            "Validation failure: An SNI or default certificate container reference must be provided for TERMINATED_HTTPS listeners.",
        ));
    }
    if protocol != "TERMINATED_HTTPS" && has_certs {
        return Err(ApiError::bad_request(format!(
            "Validation failure: Certificate container references are only allowed on TERMINATED_HTTPS protocol listeners, not {protocol}."
        )));
    }
    if let Some(alpn) = b.strings("alpn_protocols")? {
        if let Some(bad) = alpn.iter().find(|p| !ALPN_PROTOCOLS.contains(&p.as_str())) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute alpn_protocols. Value: '{bad}'. Value should be one of {ALPN_PROTOCOLS:?}"
            )));
        }
        l7.alpn_protocols = Some(alpn);
    } else if protocol == "TERMINATED_HTTPS" && l7.alpn_protocols.is_none() {
        // Octavia's [api_settings] default_listener_alpn_protocols.
        l7.alpn_protocols = Some(ALPN_PROTOCOLS.iter().map(|p| p.to_string()).collect());
    }
    Ok(l7)
}

impl Layer7 {
    pub(crate) fn certificate_refs(&self) -> impl Iterator<Item = &String> {
        self.default_tls_container_ref
            .iter()
            .chain(&self.sni_container_refs)
    }
}

/// A pool's `session_persistence` as Octavia takes it: the timeout and
/// granularity only on UDP and SCTP pools.
pub(crate) fn parse_persistence(sp: &Value, protocol: &str) -> Result<Value, ApiError> {
    let s = Body::object(
        sp,
        "session_persistence",
        &[
            "type",
            "cookie_name",
            "persistence_timeout",
            "persistence_granularity",
        ],
    )?;
    let kind = s
        .choice("type", &["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"])?
        .ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute type. Value: 'None'. Mandatory field missing.",
            )
        })?;
    let timeout = s.integer("persistence_timeout", 0, 2_147_483_647)?;
    let granularity = s.string("persistence_granularity")?;
    if (timeout.is_some() || granularity.is_some()) && !matches!(protocol, "UDP" | "SCTP") {
        return Err(ApiError::bad_request(
            "Validation failure: persistence_timeout and persistence_granularity is only for UDP and SCTP protocol pools.",
        ));
    }
    Ok(
        json!({"type": kind, "cookie_name": s.string("cookie_name")?, "persistence_timeout": timeout, "persistence_granularity": granularity}),
    )
}

#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) meta: Meta,
    pub(crate) lb_id: String,
    pub(crate) protocol: String,
    pub(crate) lb_algorithm: String,
    pub(crate) session_persistence: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) meta: Meta,
    pub(crate) pool_id: String,
    pub(crate) address: IpAddr,
    pub(crate) protocol_port: i64,
    pub(crate) subnet_id: Option<String>,
    pub(crate) weight: i64,
    pub(crate) backup: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub(crate) meta: Meta,
    pub(crate) pool_id: String,
    pub(crate) kind: String,
    pub(crate) delay: i64,
    pub(crate) timeout: i64,
    pub(crate) max_retries: i64,
    pub(crate) max_retries_down: i64,
    pub(crate) http: Option<HttpCheck>,
}

/// An HTTP(S) monitor's request and healthy codes.
#[derive(Debug, Clone)]
pub(crate) struct HttpCheck {
    pub(crate) method: String,
    pub(crate) url_path: String,
    pub(crate) expected_codes: String,
}

/// The HTTP fields of a monitor body: Octavia's defaults (GET, /, 200) for
/// HTTP and HTTPS monitors, a 400 for any other type.
pub(crate) fn http_check(
    b: &Body<'_>,
    kind: &str,
    current: Option<&HttpCheck>,
) -> Result<Option<HttpCheck>, ApiError> {
    let fields = ["http_method", "url_path", "expected_codes"];
    if !matches!(kind, "HTTP" | "HTTPS") {
        if let Some(f) = fields.iter().find(|f| b.string(f).ok().flatten().is_some()) {
            return Err(ApiError::bad_request(format!(
                "Validation failure: {f} is not a valid option for health monitors of type {kind}"
            )));
        }
        return Ok(None);
    }
    let method = b.choice(
        "http_method",
        &[
            "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
        ],
    )?;
    let url_path = b.string("url_path")?;
    if let Some(p) = &url_path
        && (!p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute url_path. Value: '{p}'. Not a valid URL path"
        )));
    }
    let codes = b.string("expected_codes")?;
    if let Some(c) = &codes {
        let code =
            |s: &str| s.len() == 3 && s.parse::<u16>().is_ok_and(|n| (100..=599).contains(&n));
        let ok = match c.split_once('-') {
            Some((a, z)) => code(a) && code(z),
            None => c.split(',').all(code),
        };
        if !ok {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute expected_codes. Value: '{c}'. Value should match the pattern ^(\\d{{3}}(\\s*,\\s*\\d{{3}})*)$|^(\\d{{3}}-\\d{{3}})$"
            )));
        }
    }
    let base = current.cloned().unwrap_or(HttpCheck {
        method: "GET".into(),
        url_path: "/".into(),
        expected_codes: "200".into(),
    });
    Ok(Some(HttpCheck {
        method: method.unwrap_or(base.method),
        url_path: url_path.unwrap_or(base.url_path),
        expected_codes: codes.unwrap_or(base.expected_codes),
    }))
}

#[derive(Debug, Default)]
pub struct Octavia {
    pub load_balancers: Vec<LoadBalancer>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) pools: Vec<Pool>,
    pub(crate) members: Vec<Member>,
    pub(crate) monitors: Vec<Monitor>,
    pub(crate) l7policies: Vec<L7Policy>,
    pub(crate) l7rules: Vec<L7Rule>,
    /// Members' operating statuses as a health manager would report them
    /// from the amphorae's heartbeats (set by a test: fault injection).
    pub(crate) health: std::collections::HashMap<String, &'static str>,
}

/// The operating statuses a member can be reported in.
pub const MEMBER_OPERATING_STATUSES: [&str; 5] =
    ["ONLINE", "ERROR", "DRAINING", "OFFLINE", "NO_MONITOR"];

pub(crate) fn lb_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotFound",
        format!("Load Balancer {id} could not be found."),
    )
}

pub(crate) fn immutable(id: &str) -> ApiError {
    ApiError::conflict(
        "StateInvalid",
        format!("Load Balancer {id} is immutable and cannot be updated."),
    )
}

impl Octavia {
    /// Moves on every load balancer whose delay has passed: PENDING_* to ACTIVE,
    /// PENDING_DELETE objects gone (the VIP port with a deleted load balancer).
    pub fn settle(&mut self, now: Instant, neutron: &mut Neutron) {
        use std::collections::HashSet;
        let due: HashSet<String> = self
            .load_balancers
            .iter()
            .filter(|lb| lb.pending_until.is_some_and(|t| t <= now))
            .map(|lb| lb.meta.id.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        // All that is due in one pass over each kind (thousands of load
        // balancers turn ACTIVE in the same moment at scale).
        let gone: HashSet<String> = self
            .load_balancers
            .iter()
            .filter(|lb| due.contains(&lb.meta.id) && lb.meta.provisioning == PENDING_DELETE)
            .map(|lb| lb.meta.id.clone())
            .collect();
        if !gone.is_empty() {
            for lb in self
                .load_balancers
                .iter()
                .filter(|lb| gone.contains(&lb.meta.id) && lb.vip_port_owned)
            {
                neutron.delete_port(&lb.vip_port_id);
            }
            self.load_balancers.retain(|lb| !gone.contains(&lb.meta.id));
            self.listeners.retain(|l| !gone.contains(&l.lb_id));
            let pools: HashSet<String> = self
                .pools
                .iter()
                .filter(|p| gone.contains(&p.lb_id))
                .map(|p| p.meta.id.clone())
                .collect();
            self.remove_pools(&pools);
            self.collect_policies();
        }
        // Of the rest, children pending deletion go; the others become ACTIVE.
        // Only the due load balancers' pools are gathered: load balancers
        // fall due a few at a time while thousands are live.
        let due_pools: HashSet<String> = self
            .pools
            .iter()
            .filter(|p| due.contains(&p.lb_id))
            .map(|p| p.meta.id.clone())
            .collect();
        let settles = |pool_id: &str| due_pools.contains(pool_id);
        self.members
            .retain(|m| !(m.meta.provisioning == PENDING_DELETE && settles(&m.pool_id)));
        self.monitors
            .retain(|m| !(m.meta.provisioning == PENDING_DELETE && settles(&m.pool_id)));
        let deleted_pools: HashSet<String> = self
            .pools
            .iter()
            .filter(|p| due.contains(&p.lb_id) && p.meta.provisioning == PENDING_DELETE)
            .map(|p| p.meta.id.clone())
            .collect();
        self.remove_pools(&deleted_pools);
        self.listeners
            .retain(|l| !(due.contains(&l.lb_id) && l.meta.provisioning == PENDING_DELETE));
        self.settle_policies(&due);
        for lb in self
            .load_balancers
            .iter_mut()
            .filter(|lb| due.contains(&lb.meta.id))
        {
            lb.pending_until = None;
            if lb.meta.provisioning != ERROR {
                lb.meta.provisioning = ACTIVE;
                lb.meta.operating = "ONLINE";
            }
            // Octavia's row changes again when the worker is done.
            lb.meta.updated_at = Some(timestamp());
        }
        let monitored: HashSet<&str> = self
            .monitors
            .iter()
            .filter(|m| settles(&m.pool_id))
            .map(|m| m.pool_id.as_str())
            .collect();
        for l in self.listeners.iter_mut().filter(|l| due.contains(&l.lb_id)) {
            l.meta.provisioning = ACTIVE;
            l.meta.operating = "ONLINE";
        }
        for p in self.pools.iter_mut().filter(|p| due.contains(&p.lb_id)) {
            p.meta.provisioning = ACTIVE;
            p.meta.operating = "ONLINE";
        }
        for m in self.members.iter_mut().filter(|m| settles(&m.pool_id)) {
            m.meta.provisioning = ACTIVE;
            m.meta.operating = if monitored.contains(m.pool_id.as_str()) {
                "ONLINE"
            } else {
                "NO_MONITOR"
            };
        }
        for m in self.monitors.iter_mut().filter(|m| settles(&m.pool_id)) {
            m.meta.provisioning = ACTIVE;
            m.meta.operating = "ONLINE";
        }
        if !self.health.is_empty() {
            for id in &due {
                self.derive_health(id);
            }
        }
    }

    /// Reports a member's operating status as Octavia's health manager
    /// would (`None`: reported healthy again), then derives its pool's and
    /// load balancer's.
    pub fn report_member(&mut self, id: &str, status: Option<&str>) -> Result<(), ApiError> {
        let Some(member) = self.members.iter().find(|m| m.meta.id == id) else {
            return Err(ApiError::not_found(
                "EntityNotFound",
                format!("Member {id} could not be found."),
            ));
        };
        let Some(pool) = self.pools.iter().find(|p| p.meta.id == member.pool_id) else {
            return Err(ApiError::not_found(
                "EntityNotFound",
                format!("Pool {} could not be found.", member.pool_id),
            ));
        };
        let lb_id = pool.lb_id.clone();
        let monitored = self.monitored(&pool.meta.id);
        match status {
            Some(s) => {
                let Some(s) = MEMBER_OPERATING_STATUSES.into_iter().find(|k| *k == s) else {
                    return Err(ApiError::bad_request(format!(
                        "{s:?} is not a member operating status (one of {})",
                        MEMBER_OPERATING_STATUSES.join(", ")
                    )));
                };
                // No health monitor checks it: Octavia reports NO_MONITOR,
                // never ONLINE or ERROR.
                if !monitored && matches!(s, "ONLINE" | "ERROR") {
                    return Err(ApiError::conflict(
                        "StateInvalid",
                        format!(
                            "Member {id}'s pool has no health monitor: Octavia reports it NO_MONITOR, never {s}"
                        ),
                    ));
                }
                self.health.insert(id.to_string(), s);
            }
            None => {
                self.health.remove(id);
            }
        }
        self.derive_health(&lb_id);
        Ok(())
    }

    /// The operating statuses of one settled load balancer's tree, from its
    /// members' reports, as Octavia's health manager derives them: a member
    /// ERROR makes its pool DEGRADED (ERROR when all its members are), a
    /// pool ERROR makes the load balancer ERROR, a DEGRADED one DEGRADED.
    fn derive_health(&mut self, lb_id: &str) {
        let Some(lb) = self.load_balancers.iter().find(|l| l.meta.id == lb_id) else {
            return;
        };
        if lb.meta.provisioning != ACTIVE {
            return;
        }
        // Reports of members gone meanwhile are forgotten.
        let members: std::collections::HashSet<&str> =
            self.members.iter().map(|m| m.meta.id.as_str()).collect();
        self.health.retain(|id, _| members.contains(id.as_str()));
        let monitored: std::collections::HashSet<String> =
            self.monitors.iter().map(|m| m.pool_id.clone()).collect();
        let mut worst = "ONLINE";
        for pool in self.pools.iter_mut().filter(|p| p.lb_id == lb_id) {
            let (mut total, mut down) = (0, 0);
            for m in self
                .members
                .iter_mut()
                .filter(|m| m.pool_id == pool.meta.id)
            {
                m.meta.operating = self.health.get(&m.meta.id).copied().unwrap_or(
                    if monitored.contains(&pool.meta.id) {
                        "ONLINE"
                    } else {
                        "NO_MONITOR"
                    },
                );
                total += 1;
                down += usize::from(m.meta.operating == ERROR);
            }
            pool.meta.operating = match down {
                0 => "ONLINE",
                d if d == total => ERROR,
                _ => "DEGRADED",
            };
            worst = match (worst, pool.meta.operating) {
                (ERROR, _) | (_, ERROR) => ERROR,
                ("DEGRADED", _) | (_, "DEGRADED") => "DEGRADED",
                _ => "ONLINE",
            };
        }
        if let Some(lb) = self.load_balancers.iter_mut().find(|l| l.meta.id == lb_id) {
            lb.meta.operating = worst;
        }
    }

    /// Pools go with their members and monitors; listeners keep no default.
    pub(crate) fn remove_pools(&mut self, pools: &std::collections::HashSet<String>) {
        if pools.is_empty() {
            return;
        }
        self.pools.retain(|p| !pools.contains(&p.meta.id));
        self.members.retain(|m| !pools.contains(&m.pool_id));
        self.monitors.retain(|m| !pools.contains(&m.pool_id));
        for l in &mut self.listeners {
            if l.default_pool_id
                .as_ref()
                .is_some_and(|p| pools.contains(p))
            {
                l.default_pool_id = None;
            }
        }
    }

    pub(crate) fn pool_lb(&self, pool_id: &str) -> Option<&str> {
        self.pools
            .iter()
            .find(|p| p.meta.id == pool_id)
            .map(|p| p.lb_id.as_str())
    }

    pub(crate) fn lb_index(&self, id: &str) -> Result<usize, ApiError> {
        self.load_balancers
            .iter()
            .position(|lb| lb.meta.id == id)
            .ok_or_else(|| lb_not_found(id))
    }

    /// Octavia's lock on the tree: only an ACTIVE load balancer takes a write,
    /// which moves it to PENDING_UPDATE until the delay has passed.
    pub(crate) fn begin_write(
        &mut self,
        lb_id: &str,
        delay: std::time::Duration,
    ) -> Result<(), ApiError> {
        let i = self.lb_index(lb_id)?;
        let lb = &mut self.load_balancers[i];
        if lb.meta.provisioning != ACTIVE {
            return Err(immutable(lb_id));
        }
        lb.meta.provisioning = PENDING_UPDATE;
        lb.meta.updated_at = Some(timestamp());
        lb.pending_until = Some(Instant::now() + delay);
        Ok(())
    }

    /// Forces a load balancer to ERROR (fault injection).
    pub fn force_error(&mut self, id: &str) -> Result<(), ApiError> {
        let i = self.lb_index(id)?;
        let lb = &mut self.load_balancers[i];
        lb.meta.provisioning = ERROR;
        lb.meta.operating = ERROR;
        lb.pending_until = None;
        Ok(())
    }

    // ----- views

    pub(crate) fn lb_json(&self, lb: &LoadBalancer) -> Value {
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .filter(|l| l.lb_id == lb.meta.id)
            .map(|l| json!({"id": l.meta.id}))
            .collect();
        let pools: Vec<Value> = self
            .pools
            .iter()
            .filter(|p| p.lb_id == lb.meta.id)
            .map(|p| json!({"id": p.meta.id}))
            .collect();
        let additional: Vec<Value> = lb
            .additional_vips
            .iter()
            .map(|(s, a)| json!({"subnet_id": s, "ip_address": a.to_string()}))
            .collect();
        merge(
            lb.meta.fields(),
            json!({
                "vip_address": lb.vip_address.to_string(), "vip_port_id": lb.vip_port_id,
                "vip_sg_ids": lb.vip_sg_ids,
                "vip_subnet_id": lb.vip_subnet_id, "vip_network_id": lb.vip_network_id,
                "vip_qos_policy_id": null, "vip_vnic_type": "normal",
                "additional_vips": additional, "listeners": listeners, "pools": pools,
                "provider": lb.provider, "flavor_id": null, "availability_zone": null,
            }),
        )
    }

    pub(crate) fn listener_json(&self, l: &Listener) -> Value {
        let policies: Vec<Value> = self
            .listener_policies(&l.meta.id)
            .into_iter()
            .map(|p| json!({"id": p.meta.id}))
            .collect();
        merge(
            l.meta.fields(),
            json!({
                "protocol": l.protocol, "protocol_port": l.protocol_port,
                "connection_limit": l.connection_limit, "default_pool_id": l.default_pool_id,
                "loadbalancers": [{"id": l.lb_id}], "l7policies": policies, "insert_headers": l.l7.insert_headers,
                "default_tls_container_ref": l.l7.default_tls_container_ref, "sni_container_refs": l.l7.sni_container_refs,
                "timeout_client_data": l.timeouts[0], "timeout_member_connect": l.timeouts[1],
                "timeout_member_data": l.timeouts[2], "timeout_tcp_inspect": l.timeouts[3],
                "allowed_cidrs": l.allowed_cidrs, "client_ca_tls_container_ref": null,
                "client_authentication": "NONE", "client_crl_container_ref": null,
                "tls_ciphers": null, "tls_versions": null, "alpn_protocols": l.l7.alpn_protocols,
                "hsts_max_age": null, "hsts_include_subdomains": null, "hsts_preload": null,
            }),
        )
    }

    pub(crate) fn pool_json(&self, p: &Pool) -> Value {
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .filter(|l| {
                l.default_pool_id.as_deref() == Some(&p.meta.id)
                    || self.policy_pools(&l.meta.id).contains(&p.meta.id.as_str())
            })
            .map(|l| json!({"id": l.meta.id}))
            .collect();
        let members: Vec<Value> = self
            .members
            .iter()
            .filter(|m| m.pool_id == p.meta.id)
            .map(|m| json!({"id": m.meta.id}))
            .collect();
        let hm = self
            .monitors
            .iter()
            .find(|m| m.pool_id == p.meta.id)
            .map(|m| m.meta.id.clone());
        merge(
            p.meta.fields(),
            json!({
                "protocol": p.protocol, "lb_algorithm": p.lb_algorithm,
                "session_persistence": p.session_persistence, "loadbalancers": [{"id": p.lb_id}],
                "listeners": listeners, "members": members, "healthmonitor_id": hm,
                "tls_enabled": false, "tls_container_ref": null, "ca_tls_container_ref": null,
                "crl_container_ref": null, "tls_ciphers": null, "tls_versions": null, "alpn_protocols": null,
            }),
        )
    }

    pub(crate) fn member_json(m: &Member) -> Value {
        merge(
            m.meta.fields(),
            json!({
                "address": m.address.to_string(), "protocol_port": m.protocol_port,
                "subnet_id": m.subnet_id, "weight": m.weight, "backup": m.backup,
                "monitor_address": null, "monitor_port": null, "vnic_type": "normal",
            }),
        )
    }

    pub(crate) fn monitor_json(&self, m: &Monitor) -> Value {
        merge(
            m.meta.fields(),
            json!({
                "type": m.kind, "delay": m.delay, "timeout": m.timeout, "max_retries": m.max_retries,
                "max_retries_down": m.max_retries_down, "pools": [{"id": m.pool_id}],
                "http_method": m.http.as_ref().map(|h| &h.method),
                "url_path": m.http.as_ref().map(|h| &h.url_path),
                "expected_codes": m.http.as_ref().map(|h| &h.expected_codes),
                "domain_name": null, "http_version": null,
            }),
        )
    }

    pub(crate) fn status_tree(&self, lb: &LoadBalancer) -> Value {
        let status = |m: &Meta| json!({"id": m.id, "name": m.name, "provisioning_status": m.provisioning, "operating_status": m.operating});
        let pool_status = |p: &Pool| {
            let mut v = status(&p.meta);
            let members: Vec<Value> = self
                .members
                .iter()
                .filter(|m| m.pool_id == p.meta.id)
                .map(|m| {
                    merge(
                        status(&m.meta),
                        json!({"address": m.address.to_string(), "protocol_port": m.protocol_port}),
                    )
                })
                .collect();
            v["members"] = json!(members);
            if let Some(hm) = self.monitors.iter().find(|m| m.pool_id == p.meta.id) {
                v["health_monitor"] = merge(status(&hm.meta), json!({"type": hm.kind}));
            }
            v
        };
        let listeners: Vec<Value> = self
            .listeners
            .iter()
            .filter(|l| l.lb_id == lb.meta.id)
            .map(|l| {
                let mut v = status(&l.meta);
                let policy_pools = self.policy_pools(&l.meta.id);
                let pools: Vec<Value> = self
                    .pools
                    .iter()
                    .filter(|p| {
                        l.default_pool_id.as_deref() == Some(&p.meta.id)
                            || policy_pools.contains(&p.meta.id.as_str())
                    })
                    .map(pool_status)
                    .collect();
                v["pools"] = json!(pools);
                v
            })
            .collect();
        let mut root = status(&lb.meta);
        root["listeners"] = json!(listeners);
        json!({"statuses": {"loadbalancer": root}})
    }
}

// ---------------------------------------------------------------------------
// Validated specs: everything checked before anything is created.

pub(crate) const LB_FIELDS: [&str; 19] = [
    "name",
    "description",
    "admin_state_up",
    "vip_address",
    "vip_port_id",
    "vip_subnet_id",
    "vip_network_id",
    "vip_qos_policy_id",
    "project_id",
    "tenant_id",
    "listeners",
    "pools",
    "provider",
    "flavor_id",
    "availability_zone",
    "tags",
    "additional_vips",
    "vip_sg_ids",
    "vip_vnic_type",
];
pub(crate) const LISTENER_FIELDS: [&str; 30] = [
    "name",
    "description",
    "admin_state_up",
    "protocol",
    "protocol_port",
    "connection_limit",
    "default_pool_id",
    "default_pool",
    "loadbalancer_id",
    "project_id",
    "tenant_id",
    "tags",
    "allowed_cidrs",
    "timeout_client_data",
    "timeout_member_connect",
    "timeout_member_data",
    "timeout_tcp_inspect",
    "insert_headers",
    "default_tls_container_ref",
    "sni_container_refs",
    "client_ca_tls_container_ref",
    "client_authentication",
    "client_crl_container_ref",
    "tls_ciphers",
    "tls_versions",
    "alpn_protocols",
    "l7policies",
    "hsts_max_age",
    "hsts_include_subdomains",
    "hsts_preload",
];
pub(crate) const POOL_FIELDS: [&str; 20] = [
    "name",
    "description",
    "admin_state_up",
    "protocol",
    "lb_algorithm",
    "session_persistence",
    "listener_id",
    "loadbalancer_id",
    "project_id",
    "tenant_id",
    "tags",
    "members",
    "healthmonitor",
    "tls_enabled",
    "tls_container_ref",
    "ca_tls_container_ref",
    "crl_container_ref",
    "tls_ciphers",
    "tls_versions",
    "alpn_protocols",
];
pub(crate) const MEMBER_FIELDS: [&str; 13] = [
    "name",
    "admin_state_up",
    "address",
    "protocol_port",
    "subnet_id",
    "weight",
    "backup",
    "monitor_address",
    "monitor_port",
    "project_id",
    "tenant_id",
    "tags",
    "vnic_type",
];
pub(crate) const MONITOR_FIELDS: [&str; 16] = [
    "name",
    "admin_state_up",
    "pool_id",
    "type",
    "delay",
    "timeout",
    "max_retries",
    "max_retries_down",
    "http_method",
    "url_path",
    "expected_codes",
    "project_id",
    "tenant_id",
    "tags",
    "domain_name",
    "http_version",
];

pub(crate) struct MemberSpec {
    pub(crate) meta: Meta,
    pub(crate) address: IpAddr,
    pub(crate) protocol_port: i64,
    pub(crate) subnet_id: Option<String>,
    pub(crate) weight: i64,
    pub(crate) backup: bool,
}

pub(crate) struct MonitorSpec {
    pub(crate) meta: Meta,
    pub(crate) kind: String,
    pub(crate) delay: i64,
    pub(crate) timeout: i64,
    pub(crate) max_retries: i64,
    pub(crate) max_retries_down: i64,
    pub(crate) http: Option<HttpCheck>,
}

pub(crate) struct PoolSpec {
    pub(crate) meta: Meta,
    pub(crate) protocol: String,
    pub(crate) lb_algorithm: String,
    pub(crate) session_persistence: Option<Value>,
    pub(crate) members: Vec<MemberSpec>,
    pub(crate) monitor: Option<MonitorSpec>,
}

pub(crate) struct ListenerSpec {
    pub(crate) meta: Meta,
    pub(crate) protocol: String,
    pub(crate) protocol_port: i64,
    pub(crate) connection_limit: i64,
    pub(crate) allowed_cidrs: Option<Vec<String>>,
    pub(crate) timeouts: [i64; 4],
    pub(crate) l7: Layer7,
    pub(crate) default_pool: Option<PoolSpec>,
    pub(crate) default_pool_id: Option<String>,
    /// Fully-populated create: `default_pool: {"name": ...}` names a top-level pool.
    pub(crate) default_pool_name: Option<String>,
}

pub(crate) fn parse_member(v: &Value, neutron: &Neutron) -> Result<MemberSpec, ApiError> {
    let b = Body::object(v, "member", &MEMBER_FIELDS)?;
    let address_text = b.required_string("address")?;
    let address: IpAddr = address_text.parse().map_err(|_| {
        ApiError::bad_request(format!("Invalid input for field/attribute address. Value: '{address_text}'. Value should be IPv4 or IPv6 format"))
    })?;
    let protocol_port = b
        .integer("protocol_port", 1, 65535)?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."))?;
    let subnet_id = b.string("subnet_id")?;
    if let Some(s) = &subnet_id {
        let subnet = neutron.subnet(s).map_err(|_| {
            ApiError::bad_request(format!("Validation failure: Subnet {s} not found."))
        })?;
        if subnet.cidr.addr().is_ipv4() != address.is_ipv4() {
            return Err(ApiError::bad_request(format!(
                "Validation failure: Member address {address} and subnet {s} have mismatched IP versions."
            )));
        }
    }
    Ok(MemberSpec {
        meta: Meta::new(&b)?,
        address,
        protocol_port,
        subnet_id,
        weight: b.integer("weight", 0, 256)?.unwrap_or(1),
        backup: b.boolean("backup")?.unwrap_or(false),
    })
}

pub(crate) fn parse_monitor(
    v: &Value,
    pool_protocol: Option<&str>,
) -> Result<MonitorSpec, ApiError> {
    let b = Body::object(v, "healthmonitor", &MONITOR_FIELDS)?;
    let kind = b.choice("type", &MONITOR_TYPES)?.ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input for field/attribute type. Value: 'None'. Mandatory field missing.",
        )
    })?;
    let required = |key: &str, min: i64, max: i64| -> Result<i64, ApiError> {
        b.integer(key, min, max)?.ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: 'None'. Mandatory field missing."
            ))
        })
    };
    let delay = required("delay", 0, 2_147_483_647)?;
    let timeout = required("timeout", 0, 2_147_483_647)?;
    let max_retries = required("max_retries", 1, 10)?;
    if let Some(p) = pool_protocol
        && p == "UDP"
        && !matches!(kind.as_str(), "UDP-CONNECT" | "HTTP" | "TCP" | "PING")
    {
        return Err(ApiError::bad_request(format!(
            "Validation failure: The associated pool protocol is UDP, so only a UDP-CONNECT, HTTP, TCP or PING type health monitor is supported, not {kind}."
        )));
    }
    let http = http_check(&b, &kind, None)?;
    Ok(MonitorSpec {
        meta: Meta::new(&b)?,
        http,
        kind,
        delay,
        timeout,
        max_retries,
        max_retries_down: b.integer("max_retries_down", 1, 10)?.unwrap_or(3),
    })
}

pub(crate) fn parse_pool(
    v: &Value,
    listener_protocol: Option<&str>,
    provider: &str,
    populated: bool,
    neutron: &Neutron,
) -> Result<PoolSpec, ApiError> {
    let b = Body::object(v, "pool", &POOL_FIELDS)?;
    let protocol = b.choice("protocol", &POOL_PROTOCOLS)?.ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing.",
        )
    })?;
    let lb_algorithm = b
        .choice("lb_algorithm", &ALGORITHMS)?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute lb_algorithm. Value: 'None'. Mandatory field missing."))?;
    if lb_algorithm == "SOURCE_IP_PORT" && PROVIDERS.contains(&provider) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "ProviderUnsupportedOptionError",
            format!(
                "Provider '{provider}' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm."
            ),
        ));
    }
    if listener_protocol == Some("PROMETHEUS") {
        return Err(no_children());
    }
    if let Some(l) = listener_protocol
        && !pool_fits_listener(l, &protocol)
    {
        return Err(ApiError::bad_request(format!(
            "Validation failure: The pool protocol '{protocol}' is invalid while the listener protocol is '{l}'."
        )));
    }
    let session_persistence = match b.value("session_persistence") {
        None | Some(Value::Null) => None,
        Some(sp) => Some(parse_persistence(sp, &protocol)?),
    };
    if !populated && (b.has("members") || b.has("healthmonitor")) {
        return Err(ApiError::bad_request(
            "Invalid input for field/attribute pool. Unknown attribute for argument pool: members",
        ));
    }
    let members = match b.value("members") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| parse_member(m, neutron))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute members. Value should be a list",
            ));
        }
    };
    let monitor = b
        .value("healthmonitor")
        .map(|m| parse_monitor(m, Some(&protocol)))
        .transpose()?;
    Ok(PoolSpec {
        meta: Meta::new(&b)?,
        protocol,
        lb_algorithm,
        session_persistence,
        members,
        monitor,
    })
}

pub(crate) fn timeouts(b: &Body<'_>, current: [i64; 4]) -> Result<[i64; 4], ApiError> {
    let keys = [
        "timeout_client_data",
        "timeout_member_connect",
        "timeout_member_data",
        "timeout_tcp_inspect",
    ];
    let mut t = current;
    for (i, key) in keys.iter().enumerate() {
        if let Some(v) = b.integer(key, 0, MAX_TIMEOUT)? {
            t[i] = v;
        }
    }
    Ok(t)
}

pub(crate) fn allowed_cidrs(b: &Body<'_>, vip: IpAddr) -> Result<Option<Vec<String>>, ApiError> {
    let Some(cidrs) = b.strings("allowed_cidrs")? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for c in cidrs {
        let net: IpNet = c.parse().map_err(|_| {
            ApiError::bad_request(format!("Invalid input for field/attribute allowed_cidrs. Value: '{c}'. Value should be IPv4 or IPv6 CIDR format"))
        })?;
        if net.addr().is_ipv4() != vip.is_ipv4() {
            return Err(ApiError::bad_request(format!(
                "Validation failure: CIDR {c} IP version incompatible with all VIPs ['{vip}'] IP version."
            )));
        }
        let normal = net.trunc().to_string();
        if !out.contains(&normal) {
            out.push(normal);
        }
    }
    // Octavia keeps no rows for an empty list and reports `null`.
    Ok((!out.is_empty()).then_some(out))
}

pub(crate) fn parse_listener(
    v: &Value,
    vip: IpAddr,
    provider: &str,
    populated: bool,
    neutron: &Neutron,
) -> Result<ListenerSpec, ApiError> {
    let b = Body::object(v, "listener", &LISTENER_FIELDS)?;
    let protocol = b.choice("protocol", &LISTENER_PROTOCOLS)?.ok_or_else(|| {
        ApiError::bad_request(
            "Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing.",
        )
    })?;
    let protocol_port = b
        .integer("protocol_port", 1, 65535)?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."))?;
    if !populated && b.has("default_pool") {
        return Err(ApiError::bad_request(
            "Invalid input for field/attribute listener. Unknown attribute for argument listener: default_pool",
        ));
    }
    // Octavia's ListenerNoChildren, before any pool is looked up.
    if protocol == "PROMETHEUS"
        && (b.value("default_pool").is_some_and(|v| !v.is_null())
            || b.value("default_pool_id").is_some_and(|v| !v.is_null()))
    {
        return Err(no_children());
    }
    let reference = b
        .value("default_pool")
        .and_then(Value::as_object)
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let default_pool = match reference {
        Some(_) => None,
        None => b
            .value("default_pool")
            .map(|p| parse_pool(p, Some(&protocol), provider, true, neutron))
            .transpose()?,
    };
    Ok(ListenerSpec {
        meta: Meta::new(&b)?,
        protocol_port,
        connection_limit: b
            .integer("connection_limit", -1, 2_147_483_647)?
            .unwrap_or(-1),
        allowed_cidrs: allowed_cidrs(&b, vip)?,
        timeouts: timeouts(&b, [50_000, 5_000, 50_000, 0])?,
        l7: layer7(&b, &protocol, &Layer7::default())?,
        default_pool,
        default_pool_id: b.string("default_pool_id")?,
        default_pool_name: reference,
        protocol,
    })
}

/// Octavia's ListenerNoChildren: a PROMETHEUS listener takes no pool nor policy.
pub(crate) fn no_children() -> ApiError {
    ApiError::bad_request("Protocol PROMETHEUS listeners cannot have child objects.")
}

/// A member's operating status as Octavia answers its create: `NO_MONITOR`
/// in a pool no monitor watches (and so it stays), `OFFLINE` until the
/// health manager reports it otherwise.
pub(crate) fn member_created_status(monitored: bool) -> &'static str {
    if monitored { "OFFLINE" } else { "NO_MONITOR" }
}

pub(crate) fn port_clash(a: &str, b: &str) -> bool {
    let family = |p: &str| match p {
        "UDP" => "UDP",
        "SCTP" => "SCTP",
        _ => "TCP",
    };
    family(a) == family(b)
}

impl Octavia {
    /// Whether a health monitor watches the pool `pool_id`.
    pub(crate) fn monitored(&self, pool_id: &str) -> bool {
        self.monitors.iter().any(|m| m.pool_id == pool_id)
    }

    pub(crate) fn insert_pool(&mut self, lb_id: &str, spec: PoolSpec) -> String {
        let id = spec.meta.id.clone();
        let monitored = spec.monitor.is_some();
        for mut m in spec.members {
            m.meta.operating = member_created_status(monitored);
            self.members.push(Member {
                meta: m.meta,
                pool_id: id.clone(),
                address: m.address,
                protocol_port: m.protocol_port,
                subnet_id: m.subnet_id,
                weight: m.weight,
                backup: m.backup,
            });
        }
        if let Some(m) = spec.monitor {
            self.monitors.push(Monitor {
                meta: m.meta,
                pool_id: id.clone(),
                kind: m.kind,
                delay: m.delay,
                timeout: m.timeout,
                max_retries: m.max_retries,
                max_retries_down: m.max_retries_down,
                http: m.http,
            });
        }
        self.pools.push(Pool {
            meta: spec.meta,
            lb_id: lb_id.to_string(),
            protocol: spec.protocol,
            lb_algorithm: spec.lb_algorithm,
            session_persistence: spec.session_persistence,
        });
        id
    }

    pub(crate) fn insert_listener(&mut self, lb_id: &str, spec: ListenerSpec) -> String {
        let default_pool_id = match spec.default_pool {
            Some(p) => Some(self.insert_pool(lb_id, p)),
            None => spec.default_pool_id,
        };
        let id = spec.meta.id.clone();
        self.listeners.push(Listener {
            meta: spec.meta,
            lb_id: lb_id.to_string(),
            protocol: spec.protocol,
            protocol_port: spec.protocol_port,
            connection_limit: spec.connection_limit,
            default_pool_id,
            allowed_cidrs: spec.allowed_cidrs,
            timeouts: spec.timeouts,
            l7: spec.l7,
        });
        id
    }

    pub(crate) fn check_member_duplicates(
        &self,
        pool_id: &str,
        members: &[MemberSpec],
    ) -> Result<(), ApiError> {
        for (i, m) in members.iter().enumerate() {
            let dup_new = members[..i]
                .iter()
                .any(|o| o.address == m.address && o.protocol_port == m.protocol_port);
            let dup_old = self.members.iter().any(|o| {
                o.pool_id == pool_id && o.address == m.address && o.protocol_port == m.protocol_port
            });
            if dup_new || dup_old {
                return Err(ApiError::conflict(
                    "DuplicateMemberEntry",
                    format!(
                        "Another member on this pool is already using ip {} on protocol_port {}",
                        m.address, m.protocol_port
                    ),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Layer 7: the policies and rules of `l7.rs` in the tree.

impl Octavia {
    /// The listener's policies in position order.
    pub(crate) fn listener_policies(&self, listener_id: &str) -> Vec<&L7Policy> {
        let mut v: Vec<&L7Policy> = self
            .l7policies
            .iter()
            .filter(|p| p.listener_id == listener_id)
            .collect();
        v.sort_by_key(|p| p.position);
        v
    }

    /// Puts `policy_id` at `position` among its listener's policies (past
    /// the end: last) and renumbers them 1..n, as Octavia's ordering list.
    pub(crate) fn place_policy(&mut self, policy_id: &str, position: i64) {
        let Some(listener_id) = self
            .l7policies
            .iter()
            .find(|p| p.meta.id == policy_id)
            .map(|p| p.listener_id.clone())
        else {
            return;
        };
        let mut order: Vec<String> = self
            .listener_policies(&listener_id)
            .into_iter()
            .filter(|p| p.meta.id != policy_id)
            .map(|p| p.meta.id.clone())
            .collect();
        let at = usize::try_from(position.saturating_sub(1))
            .unwrap_or(0)
            .min(order.len());
        order.insert(at, policy_id.to_string());
        self.number_policies(&order);
    }

    fn number_policies(&mut self, order: &[String]) {
        for p in &mut self.l7policies {
            if let Some(i) = order.iter().position(|id| *id == p.meta.id) {
                p.position = i as i64 + 1;
            }
        }
    }

    /// Drops the policies of listeners gone and the rules of policies gone,
    /// and renumbers what is left (the worker's cascade and `reorder()`).
    pub(crate) fn collect_policies(&mut self) {
        let listeners: std::collections::HashSet<&str> =
            self.listeners.iter().map(|l| l.meta.id.as_str()).collect();
        self.l7policies
            .retain(|p| listeners.contains(p.listener_id.as_str()));
        let policies: std::collections::HashSet<String> =
            self.l7policies.iter().map(|p| p.meta.id.clone()).collect();
        self.l7rules.retain(|r| policies.contains(&r.policy_id));
        let mut listener_ids: Vec<String> = self
            .l7policies
            .iter()
            .map(|p| p.listener_id.clone())
            .collect();
        listener_ids.sort();
        listener_ids.dedup();
        for l in listener_ids {
            let order: Vec<String> = self
                .listener_policies(&l)
                .into_iter()
                .map(|p| p.meta.id.clone())
                .collect();
            self.number_policies(&order);
        }
    }

    /// The worker's part for the load balancers `due`: their policies and
    /// rules pending deletion go, the others become ACTIVE.
    pub(crate) fn settle_policies(&mut self, due: &std::collections::HashSet<String>) {
        if self.l7policies.is_empty() {
            return;
        }
        let listeners: std::collections::HashSet<&str> = self
            .listeners
            .iter()
            .filter(|l| due.contains(&l.lb_id))
            .map(|l| l.meta.id.as_str())
            .collect();
        let policies: std::collections::HashSet<String> = self
            .l7policies
            .iter()
            .filter(|p| listeners.contains(p.listener_id.as_str()))
            .map(|p| p.meta.id.clone())
            .collect();
        let settle = |m: &mut Meta| {
            m.provisioning = ACTIVE;
            m.operating = if m.admin_state_up {
                "ONLINE"
            } else {
                "OFFLINE"
            };
        };
        self.l7rules.retain(|r| {
            !(policies.contains(&r.policy_id) && r.meta.provisioning == PENDING_DELETE)
        });
        for r in self
            .l7rules
            .iter_mut()
            .filter(|r| policies.contains(&r.policy_id))
        {
            settle(&mut r.meta);
        }
        self.l7policies
            .retain(|p| !(policies.contains(&p.meta.id) && p.meta.provisioning == PENDING_DELETE));
        for p in self
            .l7policies
            .iter_mut()
            .filter(|p| policies.contains(&p.meta.id))
        {
            settle(&mut p.meta);
        }
        self.collect_policies();
    }

    /// The pools a listener sends to through its enabled policies that have
    /// rules (Octavia's `Listener.pools` beside the default pool).
    pub(crate) fn policy_pools(&self, listener_id: &str) -> Vec<&str> {
        self.listener_policies(listener_id)
            .into_iter()
            .filter(|p| {
                p.meta.admin_state_up && self.l7rules.iter().any(|r| r.policy_id == p.meta.id)
            })
            .filter_map(|p| p.redirect.pool_id())
            .collect()
    }

    pub(crate) fn policy_json(&self, p: &L7Policy) -> Value {
        let rules: Vec<Value> = self
            .l7rules
            .iter()
            .filter(|r| r.policy_id == p.meta.id)
            .map(|r| json!({"id": r.meta.id}))
            .collect();
        let (url, prefix) = match &p.redirect {
            Redirect::ToUrl { url, .. } => (Some(url), None),
            Redirect::Prefix { prefix, .. } => (None, Some(prefix)),
            _ => (None, None),
        };
        merge(
            p.meta.fields(),
            json!({
                "action": p.redirect.action(), "listener_id": p.listener_id,
                "redirect_pool_id": p.redirect.pool_id(), "redirect_url": url,
                "redirect_prefix": prefix, "redirect_http_code": p.redirect.code(),
                "position": p.position, "rules": rules,
            }),
        )
    }

    pub(crate) fn rule_json(r: &L7Rule) -> Value {
        merge(
            r.meta.fields(),
            json!({
                "type": r.kind, "compare_type": r.compare_type, "key": r.key,
                "value": r.value, "invert": r.invert,
            }),
        )
    }
}
