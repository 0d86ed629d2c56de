//! Domain types: the load balancer a Service should become (`Desired*`) and what
//! OpenStack reports it has (`Observed*`). Plain data, no I/O, no wire formats.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Octavia's upper bound for listener timeouts (milliseconds, one year).
pub const MAX_TIMEOUT_MS: u64 = 31_536_000_000;

/// A tool whose load balancers svc-lbaas may take over (`[adoption] from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdoptFrom {
    /// openstack-cloud-controller-manager: `kube_service_<cluster>_<ns>_<name>`.
    Occm,
    /// kuryr-kubernetes: `<ns>/<name>`, the name svc-lbaas gives too.
    Kuryr,
}

impl AdoptFrom {
    pub fn parse(value: &str) -> Option<AdoptFrom> {
        match value {
            "occm" => Some(AdoptFrom::Occm),
            "kuryr" => Some(AdoptFrom::Kuryr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AdoptFrom::Occm => "occm",
            AdoptFrom::Kuryr => "kuryr",
        }
    }
}

/// What an adoption or a hand-over changes: a load balancer, one of its
/// children, or its floating IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoptee {
    LoadBalancer,
    Listener,
    Pool,
    HealthMonitor,
    FloatingIp,
}

impl Adoptee {
    pub fn as_str(self) -> &'static str {
        match self {
            Adoptee::LoadBalancer => "loadbalancer",
            Adoptee::Listener => "listener",
            Adoptee::Pool => "pool",
            Adoptee::HealthMonitor => "healthmonitor",
            Adoptee::FloatingIp => "floatingip",
        }
    }
}

/// The Kubernetes Service a load balancer belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Address family of a Service's VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum IpFamily {
    IPv4,
    IPv6,
}

impl IpFamily {
    pub fn of(address: &IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => IpFamily::IPv4,
            IpAddr::V6(_) => IpFamily::IPv6,
        }
    }
}

/// Listener protocols this tool creates (Octavia's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ListenerProtocol {
    Tcp,
    Udp,
    Sctp,
    /// TLS passthrough: Octavia balances TCP without terminating TLS.
    Https,
    /// HTTP: headers can be inserted, monitors probe a path.
    Http,
    /// TLS terminated with a Barbican certificate container, HTTP behind.
    #[serde(rename = "TERMINATED_HTTPS")]
    TerminatedHttps,
}

impl ListenerProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerProtocol::Tcp => "TCP",
            ListenerProtocol::Udp => "UDP",
            ListenerProtocol::Sctp => "SCTP",
            ListenerProtocol::Https => "HTTPS",
            ListenerProtocol::Http => "HTTP",
            ListenerProtocol::TerminatedHttps => "TERMINATED_HTTPS",
        }
    }

    /// HTTP and TERMINATED_HTTPS: layer 7, headers inserted.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            ListenerProtocol::Http | ListenerProtocol::TerminatedHttps
        )
    }
}

/// Pool protocols this tool creates (Octavia's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PoolProtocol {
    Tcp,
    Udp,
    Sctp,
    Https,
    Http,
    Proxy,
    #[serde(rename = "PROXYV2")]
    ProxyV2,
}

impl PoolProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolProtocol::Tcp => "TCP",
            PoolProtocol::Udp => "UDP",
            PoolProtocol::Sctp => "SCTP",
            PoolProtocol::Https => "HTTPS",
            PoolProtocol::Http => "HTTP",
            PoolProtocol::Proxy => "PROXY",
            PoolProtocol::ProxyV2 => "PROXYV2",
        }
    }

    /// The pool protocol that carries a listener's traffic unchanged.
    pub fn for_listener(listener: ListenerProtocol) -> Self {
        match listener {
            ListenerProtocol::Tcp => PoolProtocol::Tcp,
            ListenerProtocol::Udp => PoolProtocol::Udp,
            ListenerProtocol::Sctp => PoolProtocol::Sctp,
            ListenerProtocol::Https => PoolProtocol::Https,
            ListenerProtocol::Http | ListenerProtocol::TerminatedHttps => PoolProtocol::Http,
        }
    }
}

/// Pool load-balancing algorithms (Octavia's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbAlgorithm {
    RoundRobin,
    LeastConnections,
    SourceIp,
    SourceIpPort,
}

impl LbAlgorithm {
    pub const ALL: [LbAlgorithm; 4] = [
        LbAlgorithm::RoundRobin,
        LbAlgorithm::LeastConnections,
        LbAlgorithm::SourceIp,
        LbAlgorithm::SourceIpPort,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LbAlgorithm::RoundRobin => "ROUND_ROBIN",
            LbAlgorithm::LeastConnections => "LEAST_CONNECTIONS",
            LbAlgorithm::SourceIp => "SOURCE_IP",
            LbAlgorithm::SourceIpPort => "SOURCE_IP_PORT",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

/// Pool session persistence; Kubernetes only knows client-IP affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SessionPersistence {
    #[serde(rename = "SOURCE_IP")]
    SourceIp,
}

impl SessionPersistence {
    pub fn as_str(self) -> &'static str {
        "SOURCE_IP"
    }
}

/// Health monitor types (Octavia's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum HealthMonitorType {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP-CONNECT")]
    UdpConnect,
    #[serde(rename = "SCTP")]
    Sctp,
    #[serde(rename = "TLS-HELLO")]
    TlsHello,
    #[serde(rename = "HTTP")]
    Http,
}

impl HealthMonitorType {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthMonitorType::Tcp => "TCP",
            HealthMonitorType::UdpConnect => "UDP-CONNECT",
            HealthMonitorType::Sctp => "SCTP",
            HealthMonitorType::TlsHello => "TLS-HELLO",
            HealthMonitorType::Http => "HTTP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthMonitor {
    #[serde(rename = "type")]
    pub kind: HealthMonitorType,
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u32,
    pub max_retries_down: u32,
    /// An HTTP monitor's request and the answers that count as healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
}

/// What an HTTP health monitor asks and expects (Octavia's defaults: GET /, 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpCheck {
    pub http_method: String,
    pub url_path: String,
    /// `200`, `200,202`, `200-204`.
    pub expected_codes: String,
}

/// The headers an HTTP listener inserts (Octavia's `insert_headers` keys).
pub const INSERT_HEADERS: [&str; 3] = ["X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"];

/// A TERMINATED_HTTPS listener's certificates: Barbican container (or
/// PKCS12 secret) references, as Octavia takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    pub default_tls_container_ref: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sni_container_refs: Vec<String>,
}

/// A pool member: a ready endpoint address and its resolved target port,
/// with its weight: 1 (Octavia's default), or 0 while its endpoint drains
/// (`serving` and `terminating`: open connections finish, no new ones come).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    #[schema(value_type = String)]
    pub address: IpAddr,
    pub protocol_port: u16,
    pub weight: u16,
}

impl Member {
    /// Octavia's default weight: a member that takes new connections.
    pub const SERVING: u16 = 1;
    /// A draining member's: no new connections.
    pub const DRAINING: u16 = 0;

    pub fn serving(address: IpAddr, protocol_port: u16) -> Member {
        Member {
            address,
            protocol_port,
            weight: Member::SERVING,
        }
    }

    /// The first member of this address and port in a sorted set.
    pub fn lowest(address: IpAddr, protocol_port: u16) -> Member {
        Member {
            address,
            protocol_port,
            weight: 0,
        }
    }

    /// What identifies a member in its pool (Octavia refuses a second
    /// member of the same address and port).
    pub fn key(&self) -> (IpAddr, u16) {
        (self.address, self.protocol_port)
    }
}

/// Listener settings from annotations. `None` leaves OpenStack's value alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_client_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_member_connect: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_member_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_tcp_inspect: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPool {
    pub name: String,
    pub protocol: PoolProtocol,
    pub lb_algorithm: LbAlgorithm,
    pub session_persistence: Option<SessionPersistence>,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` on UDP and SCTP pools
    /// (Octavia's `persistence_timeout`; TCP pools have none: HAProxy's
    /// stick table keeps a client 30 minutes).
    pub persistence_timeout: Option<u32>,
    /// `None`: members are not managed by this request (no Endpoints given).
    pub members: Option<BTreeSet<Member>>,
    pub member_subnet: Option<String>,
    pub health_monitor: Option<HealthMonitor>,
    /// The Service port's name and target port, kept on the pool so that an
    /// Endpoints change alone can be turned into members (see names::port_tags).
    pub port_tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredListener {
    pub name: String,
    pub protocol: ListenerProtocol,
    pub protocol_port: u16,
    /// Sorted, deduplicated.
    pub allowed_cidrs: Vec<IpNet>,
    pub options: ListenerOptions,
    /// HTTP listeners' inserted headers ([`INSERT_HEADERS`] names), sorted.
    pub insert_headers: Vec<&'static str>,
    /// TERMINATED_HTTPS listeners' certificates.
    pub tls: Option<ListenerTls>,
    /// TERMINATED_HTTPS listeners' ALPN protocols (Octavia API 2.20).
    pub alpn_protocols: Vec<&'static str>,
    pub pool: DesiredPool,
}

/// A load balancer's own Prometheus endpoint (Octavia API 2.25): a
/// `PROMETHEUS` listener, which takes no pool, open only to `allowed_cidrs`
/// (`[octavia_defaults] prometheus_allowed_cidrs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusListener {
    pub name: String,
    pub protocol_port: u16,
    /// Sorted, deduplicated, of the VIP's family; never empty.
    pub allowed_cidrs: Vec<IpNet>,
}

/// A VIP: the address (None lets Neutron pick) on a subnet (None: unknown offline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vip {
    #[schema(value_type = Option<String>)]
    pub address: Option<IpAddr>,
    pub subnet_id: Option<String>,
    /// `loadbalancer.openstack.org/network-id`: the VIP's network (Neutron
    /// picks the subnet, unless one is named, and the address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// `loadbalancer.openstack.org/port-id`: an existing Neutron port as
    /// the VIP (its address, subnet and network; Octavia leaves it when the
    /// load balancer goes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
}

/// How the Service gets its external address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloatingIpIntent {
    /// No floating IP (not `type: LoadBalancer`, internal, or IPv6).
    None,
    /// Allocate one from the external subnet/network (kuryr's Pool method).
    Pool {
        subnet_id: Option<String>,
        network_id: Option<String>,
        /// OCCM's floating-subnet / floating-subnet-tags (with `network_id`).
        subnet_match: Option<FloatingSubnetMatch>,
    },
    /// Use the existing floating IP the user created (kuryr's User method).
    User { address: Ipv4Addr },
}

/// OCCM's `floating-subnet` and `floating-subnet-tags`: which subnets of
/// the floating network a floating IP may come from. The name pattern is a
/// glob (`*`, `?`) or, after `~`, a regular expression, matching the whole
/// name; `!` first negates it. The tags go to Neutron's list filters as
/// OCCM sends them: `a,b` any of them (`tags-any`), `&a,b` all (`tags`),
/// `!a,b` not all of them (`not-tags`), `!&a,b` none of them
/// (`not-tags-any`). Both given, a subnet must pass both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FloatingSubnetMatch {
    pub name: Option<String>,
    pub tags: Option<String>,
}

impl FloatingSubnetMatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.tags.is_none()
    }

    /// What is wrong with the patterns, if anything.
    pub fn check(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            if name.is_empty() || name.len() > 255 {
                return Err("a subnet name pattern is 1-255 characters".into());
            }
            self.name_regex()?;
        }
        if let Some(tags) = &self.tags {
            let (list, _, _) = Self::tag_list(tags);
            if list.iter().any(|t| t.is_empty() || t.len() > 255) {
                return Err(format!(
                    "{tags:?}: tags are a comma-separated list of 1-255 characters each, after an optional `!` and `&`"
                ));
            }
        }
        Ok(())
    }

    fn name_regex(&self) -> Result<Option<(regex::Regex, bool)>, String> {
        let Some(pattern) = &self.name else {
            return Ok(None);
        };
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        let body = match pattern.strip_prefix('~') {
            Some(re) => re.to_string(),
            None => pattern
                .split('*')
                .map(|part| {
                    part.split('?')
                        .map(regex::escape)
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .collect::<Vec<_>>()
                .join(".*"),
        };
        regex::RegexBuilder::new(&format!("^(?:{body})$"))
            .size_limit(1 << 20)
            .build()
            .map(|r| Some((r, negated)))
            .map_err(|e| format!("{pattern:?} is not a valid pattern: {e}"))
    }

    /// `a,b` / `&a,b` after an optional `!`: the tags, negated, all.
    fn tag_list(tags: &str) -> (Vec<&str>, bool, bool) {
        let (not, tags) = tags.strip_prefix('!').map_or((false, tags), |t| (true, t));
        let (all, tags) = tags.strip_prefix('&').map_or((false, tags), |t| (true, t));
        (tags.split(',').map(str::trim).collect(), not, all)
    }

    /// The Neutron list filter for the tags, as OCCM maps them.
    pub fn tag_filter(&self) -> Option<(&'static str, String)> {
        let (list, not, all) = Self::tag_list(self.tags.as_deref()?);
        let key = match (not, all) {
            (false, false) => "tags-any",
            (false, true) => "tags",
            (true, false) => "not-tags",
            (true, true) => "not-tags-any",
        };
        Some((key, list.join(",")))
    }

    /// Whether a subnet of this name passes the name pattern (the tags are
    /// Neutron's to filter).
    pub fn name_matches(&self, name: &str) -> bool {
        match self.name_regex() {
            Ok(Some((re, negated))) => re.is_match(name) != negated,
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// For plans and errors: `name "pub-*", tags "a,b"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("name {n:?}"));
        }
        if let Some(t) = &self.tags {
            parts.push(format!("tags {t:?}"));
        }
        parts.join(", ")
    }
}

/// `spec.loadBalancerSourceRanges` as a security group of the Service's on
/// the VIP port (`vip_sg_ids`): where the provider has no `allowed_cidrs`
/// (ovn), or `[octavia_defaults] source_ranges = "security_group"`. Octavia
/// adds no rules of its own then: every listener's port is opened here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSecurityGroup {
    /// The load balancer's name; its description carries the owner tags.
    pub name: String,
    pub rules: BTreeSet<SecurityGroupRule>,
}

/// One ingress rule: `protocol` (`tcp`, `udp`, `sctp`) to `port` from `remote`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecurityGroupRule {
    pub protocol: &'static str,
    pub port: u16,
    pub remote: IpNet,
}

impl SecurityGroupRule {
    pub fn ethertype(&self) -> &'static str {
        match self.remote {
            IpNet::V4(_) => "IPv4",
            IpNet::V6(_) => "IPv6",
        }
    }
}

/// A security group read from Neutron: its ingress rules (others ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedSecurityGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `(rule id, rule)`.
    pub rules: Vec<(String, SecurityGroupRule)>,
}

/// The load balancer a Service must become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredLoadBalancer {
    pub service: ServiceRef,
    pub name: String,
    pub vip: Vip,
    /// Dual-stack: the second family's VIP, where configured.
    pub additional_vips: Vec<Vip>,
    pub provider: Option<String>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    /// `loadbalancer.openstack.org/load-balancer-id`, for a direct lookup.
    pub load_balancer_id: Option<String>,
    /// `[LoadBalancer] max-shared-lb`: the most Services one shared load
    /// balancer serves.
    pub max_shared: u32,
    /// The namespaces whose Services may join this one's load balancer
    /// (`svc-lbaas.io/share-with-namespaces`; `*`: every namespace), kept on
    /// it as `svc-lbaas-share-with:` tags so that a DELETE decides from the cloud.
    pub share_with: Vec<String>,
    /// Whether this Service's namespace may join a load balancer no tool
    /// manages (`[tenancy] user_load_balancers_namespaces`).
    pub user_load_balancers_open: bool,
    /// OCCM's cluster name, as its load balancer names hold it: whose one
    /// OCCM made is read from its name.
    pub occm_cluster: String,
    /// Sorted by name.
    pub listeners: Vec<DesiredListener>,
    /// `svc-lbaas.io/prometheus-listener-port`: the load balancer's own
    /// metrics endpoint.
    pub prometheus_listener: Option<PrometheusListener>,
    pub floating_ip: FloatingIpIntent,
    /// On removal keep an allocated floating IP, only disassociated.
    pub keep_floating_ip: bool,
    /// Ownership tags of the load balancer (sub-resources carry `owner_tags`).
    pub tags: Vec<String>,
    /// Tags every sub-resource and floating IP this tool creates carries.
    pub owner_tags: Vec<String>,
    /// Human-readable remarks about choices made in translation.
    pub notes: Vec<String>,
    /// Load balancers of other tools this Service's may be (empty: no adoption).
    pub adopt: Vec<AdoptionCandidate>,
    /// How the status names the load balancer.
    pub ingress: IngressShape,
    /// Source ranges as a security group on the VIP port, not `allowed_cidrs`.
    pub vip_security_group: Option<VipSecurityGroup>,
    /// The Kubernetes TLS Secret the TERMINATED_HTTPS listeners' certificate
    /// comes from (stored in Barbican by the apply; never logged or answered).
    pub tls_secret: Option<Box<crate::certificate::TlsMaterial>>,
    /// The request carried no Secrets (an event, a sync) where a Secret
    /// gave the certificate: the one `default-tls-secret` names, or (empty)
    /// the one an earlier request sent: the certificate stored is kept.
    pub tls_secret_kept: Option<String>,
}

/// A Service's certificate container in Barbican, with the digest of the
/// Secret it was made from (`None`: its name does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    pub container_ref: String,
    pub digest: Option<String>,
    pub created: Option<String>,
}

/// What to observe for a Service.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// Its load balancer's name.
    pub name: &'a str,
    pub owner_tags: &'a [String],
    /// Other tools' names for its load balancer (to take over).
    pub adoptable: &'a [String],
    /// `load-balancer-id`: read by id instead of by name.
    pub id_hint: Option<&'a str>,
    /// `spec.loadBalancerIP`: the user's floating IP to look up.
    pub user_address: Option<std::net::Ipv4Addr>,
    /// Every pool's members too.
    pub members: bool,
    /// `port-id`: the floating IPs on that port too (the VIP's before the
    /// load balancer exists).
    pub vip_port: Option<&'a str>,
    /// The security groups of this name too (a VIP security group's).
    pub security_group: Option<&'a str>,
    /// Members with their weights (every pool's member list, not the
    /// status tree): when a member is to drain (weight 0).
    pub member_weights: bool,
    /// The load balancers it shares too (by its sharer tag): one more read,
    /// for removals and Endpoints-only changes, which carry no annotations.
    pub shared: bool,
    /// Right after this process's own writes settled: the floating IPs are
    /// not read (the caller knows them: those it observed and those it
    /// made), nor the members a fully populated create answered where no
    /// monitor can have changed their status since.
    pub after_writes: bool,
}

impl<'a> Lookup<'a> {
    /// By name, with members, nothing else.
    pub fn by_name(name: &'a str, owner_tags: &'a [String]) -> Lookup<'a> {
        Lookup {
            name,
            owner_tags,
            adoptable: &[],
            id_hint: None,
            user_address: None,
            members: true,
            vip_port: None,
            security_group: None,
            member_weights: false,
            shared: false,
            after_writes: false,
        }
    }

    /// By name with members, and the load balancers it shares (a request
    /// naming only the Service: a read, an Endpoints change).
    pub fn service(name: &'a str, owner_tags: &'a [String]) -> Lookup<'a> {
        Lookup {
            shared: true,
            ..Lookup::by_name(name, owner_tags)
        }
    }

    /// What a removal deletes or leaves: by name, what it shares, its VIP
    /// security group; no members.
    pub fn removal(name: &'a str, owner_tags: &'a [String]) -> Lookup<'a> {
        Lookup {
            members: false,
            security_group: Some(name),
            ..Lookup::service(name, owner_tags)
        }
    }
}

/// How the status to write back names the load balancer, as OCCM does: the
/// `loadbalancer.openstack.org/hostname` annotation's hostname; with PROXY
/// pools and `[LoadBalancer] enable-ingress-hostname`, `<address>.<suffix>`;
/// with PROXY pools otherwise, the address with `ipMode: Proxy`; else the
/// address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngressShape {
    pub hostname: Option<String>,
    pub hostname_suffix: Option<String>,
    pub proxy: bool,
}

impl IngressShape {
    /// One `status.loadBalancer.ingress` entry for `address`.
    pub fn entry(&self, address: std::net::IpAddr) -> serde_json::Value {
        match (&self.hostname, &self.hostname_suffix) {
            (Some(h), _) => serde_json::json!({ "hostname": h }),
            // nip.io-style names are for IPv4 addresses.
            (None, Some(suffix)) if address.is_ipv4() => {
                serde_json::json!({ "hostname": format!("{address}.{suffix}") })
            }
            _ if self.proxy => {
                serde_json::json!({ "ip": address.to_string(), "ipMode": "Proxy" })
            }
            _ => serde_json::json!({ "ip": address.to_string() }),
        }
    }
}

/// A load balancer another tool may have made for this Service, that an
/// apply takes over in place (`[adoption] from` and `svc-lbaas.io/adopt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionCandidate {
    pub from: AdoptFrom,
    /// The name that tool gives the Service's load balancer.
    pub load_balancer_name: String,
    /// The description that tool gives the Service's floating IP.
    pub floating_ip_description: String,
}

/// What translation decided for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    LoadBalancer(Box<DesiredLoadBalancer>),
    /// No load balancer here; any this tool created for the Service is removed.
    Skip {
        service: ServiceRef,
        reason: String,
        keep_floating_ip: bool,
        owner_tags: Vec<String>,
    },
}

// ---------------------------------------------------------------------------
// Observed state: what OpenStack reported. Strings where OpenStack may hold
// values this tool never creates (HTTP listeners, other algorithms...).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedMember {
    pub id: String,
    pub address: IpAddr,
    pub protocol_port: u16,
    /// `None` where it was not read: Octavia's status tree shows no weight
    /// (a Service with a draining member reads its pools' member lists).
    pub weight: Option<u16>,
    pub tags: Vec<String>,
    /// Octavia's `operating_status` (empty where the cloud did not say).
    pub operating_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedHealthMonitor {
    pub id: String,
    pub kind: String,
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u32,
    pub max_retries_down: u32,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedPool {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub lb_algorithm: String,
    pub session_persistence: Option<String>,
    pub persistence_timeout: Option<u32>,
    pub members: Vec<ObservedMember>,
    pub health_monitor: Option<ObservedHealthMonitor>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedListener {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub protocol_port: u16,
    pub allowed_cidrs: Vec<IpNet>,
    pub connection_limit: Option<i64>,
    pub timeout_client_data: Option<u64>,
    pub timeout_member_connect: Option<u64>,
    pub timeout_member_data: Option<u64>,
    pub timeout_tcp_inspect: Option<u64>,
    /// The headers it inserts (those set to `"true"`), sorted.
    pub insert_headers: Vec<String>,
    pub default_tls_container_ref: Option<String>,
    pub sni_container_refs: Vec<String>,
    pub alpn_protocols: Vec<String>,
    pub default_pool_id: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedLoadBalancer {
    pub id: String,
    pub name: String,
    pub vip_address: Option<IpAddr>,
    pub vip_subnet_id: Option<String>,
    pub vip_network_id: Option<String>,
    pub vip_port_id: Option<String>,
    pub additional_vips: Vec<IpAddr>,
    pub provisioning_status: String,
    pub operating_status: String,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    /// Octavia's provider (`amphora`, `ovn`; none on the legacy API).
    pub provider: Option<String>,
    pub listeners: Vec<ObservedListener>,
    /// All pools of the load balancer, attached to a listener or not.
    pub pools: Vec<ObservedPool>,
    pub tags: Vec<String>,
    /// OpenStack's `created_at` (`2026-11-26T07:28:24`, sortable as text).
    pub created_at: Option<String>,
    /// The security groups on its VIP port in place of Octavia's (API 2.29).
    pub vip_sg_ids: Vec<String>,
}

impl ObservedLoadBalancer {
    /// The order every replica agrees on when a Service has several load
    /// balancers (replicas raced to create it): oldest `created_at` first,
    /// then lowest id. The first that is usable survives; the others go.
    pub fn survival_key(&self) -> (Option<&str>, &str) {
        (self.created_at.as_deref(), self.id.as_str())
    }
}

/// Sorts load balancers into survival order ([`ObservedLoadBalancer::survival_key`]).
pub fn in_survival_order(lbs: &mut [ObservedLoadBalancer]) {
    lbs.sort_by(|a, b| a.survival_key().cmp(&b.survival_key()));
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedFloatingIp {
    pub id: String,
    pub address: IpAddr,
    pub port_id: Option<String>,
    pub network_id: Option<String>,
    pub tags: Vec<String>,
    /// As Neutron holds it (another tool's words, or svc-lbaas's tags).
    pub description: Option<String>,
}

/// A Neutron subnet's network and CIDR (what an apply needs of a subnet).
#[derive(Debug, Clone)]
pub struct SubnetInfo {
    pub network_id: String,
    pub cidr: IpNet,
}

/// The User method's floating IP, looked up by address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FloatingIpLookup {
    /// Not looked up (offline planning).
    #[default]
    NotLookedUp,
    NotFound,
    Found(ObservedFloatingIp),
}

/// Everything OpenStack reported about one Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// Load balancers found for the Service: by ownership tags, by name, or by
    /// the id annotation. More than one owned means an earlier crash left a copy.
    pub load_balancers: Vec<ObservedLoadBalancer>,
    /// Floating IPs carrying this Service's ownership tags, and any bound to
    /// the VIP port of one of `load_balancers`.
    pub floating_ips: Vec<ObservedFloatingIp>,
    pub user_floating_ip: FloatingIpLookup,
    /// Ids of this Service's load balancers still being deleted (PENDING_DELETE):
    /// their VIP ports hold the address a new one may need, so writes wait them out.
    pub deleting: Vec<String>,
    /// Security groups of the Service's name (a VIP security group's, read
    /// only when one is wanted or the Service goes).
    pub security_groups: Vec<ObservedSecurityGroup>,
}

/// Changed listener fields; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerUpdate {
    pub allowed_cidrs: Option<Vec<IpNet>>,
    pub connection_limit: Option<i64>,
    pub timeout_client_data: Option<u64>,
    pub timeout_member_connect: Option<u64>,
    pub timeout_member_data: Option<u64>,
    pub timeout_tcp_inspect: Option<u64>,
    /// The whole `insert_headers` map (Octavia replaces it).
    pub insert_headers: Option<Vec<&'static str>>,
    pub tls: Option<ListenerTls>,
    pub alpn_protocols: Option<Vec<&'static str>>,
}

impl ListenerUpdate {
    /// The names of the fields set, for the operation's summary.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let named = [
            (self.allowed_cidrs.is_some(), "allowed_cidrs"),
            (self.connection_limit.is_some(), "connection_limit"),
            (self.timeout_client_data.is_some(), "timeout_client_data"),
            (
                self.timeout_member_connect.is_some(),
                "timeout_member_connect",
            ),
            (self.timeout_member_data.is_some(), "timeout_member_data"),
            (self.timeout_tcp_inspect.is_some(), "timeout_tcp_inspect"),
            (self.insert_headers.is_some(), "insert_headers"),
            (self.tls.is_some(), "default_tls_container_ref"),
            (
                self.tls
                    .as_ref()
                    .is_some_and(|t| !t.sni_container_refs.is_empty()),
                "sni_container_refs",
            ),
            (self.alpn_protocols.is_some(), "alpn_protocols"),
        ];
        for (set, name) in named {
            if set {
                f.push(name);
            }
        }
        f
    }
}

/// Changed pool fields; `session_persistence: Some(None)` removes persistence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolUpdate {
    pub lb_algorithm: Option<LbAlgorithm>,
    pub session_persistence: Option<Option<SessionPersistence>>,
    /// With `session_persistence`: its `persistence_timeout` (UDP pools).
    pub persistence_timeout: Option<u32>,
    /// The pool's whole tag list (owner and port tags, others kept).
    pub tags: Option<Vec<String>>,
}

/// One member in a batch replacement. `owned: false` marks a member this tool
/// did not create, sent back unchanged so the replacement keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    pub member: Member,
    pub subnet_id: Option<String>,
    pub owned: bool,
}

/// What kind of cloud object an annotation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceKind {
    Subnet,
    Network,
    Port,
    Flavor,
    AvailabilityZone,
    /// A Barbican certificate container (or PKCS12 secret), by reference.
    Certificate,
}

impl ReferenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::Subnet => "subnet",
            ReferenceKind::Network => "network",
            ReferenceKind::Port => "port",
            ReferenceKind::Flavor => "flavor",
            ReferenceKind::AvailabilityZone => "availability zone",
            ReferenceKind::Certificate => "certificate container (in this cloud's Barbican)",
        }
    }
}

/// Kubernetes' DNS-1123 label: namespace names, port names.
pub fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The canonical, hyphenated UUID form OpenStack's ids take
/// (`8c8e0a3c-...`, 36 characters).
pub fn is_uuid(value: &str) -> bool {
    value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A name OpenStack keeps as free text but that goes into a URL (an
/// availability zone): 1-255 letters, digits and `-_.:`.
pub fn is_plain_name(value: &str) -> bool {
    (1..=255).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Why a value is not of its kind: the one message configuration and
/// annotations both give for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotValid(pub String);

/// An OpenStack id: the canonical, hyphenated UUID OpenStack makes (ids go
/// into URLs, so nothing else is taken).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpenStackId(String);

impl OpenStackId {
    pub fn try_new(value: &str) -> Result<OpenStackId, NotValid> {
        if is_uuid(value) {
            Ok(OpenStackId(value.to_string()))
        } else {
            Err(NotValid(format!(
                "{} is not an OpenStack id (a UUID like 8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81)",
                crate::echo::quote(value)
            )))
        }
    }
}

/// A Kubernetes DNS-1123 label: a namespace's name, a port's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsLabel(String);

impl DnsLabel {
    pub fn try_new(value: &str) -> Result<DnsLabel, NotValid> {
        if is_dns_label(value) {
            Ok(DnsLabel(value.to_string()))
        } else {
            Err(NotValid(format!(
                "{} is not a DNS-1123 label (lowercase letters, digits and '-'; at most 63)",
                crate::echo::quote(value)
            )))
        }
    }
}

/// A name OpenStack keeps as free text but that goes into a URL (an
/// availability zone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlainName(String);

impl PlainName {
    pub fn try_new(value: &str) -> Result<PlainName, NotValid> {
        if is_plain_name(value) {
            Ok(PlainName(value.to_string()))
        } else {
            Err(NotValid(format!(
                "{} is not a plain name (1-255 letters, digits, '-', '_', '.' or ':')",
                crate::echo::quote(value)
            )))
        }
    }
}

macro_rules! as_text {
    ($($t:ty),*) => {$(
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
as_text!(OpenStackId, DnsLabel, PlainName);
