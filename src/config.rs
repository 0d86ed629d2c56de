//! Settings: a TOML file with kuryr.conf's section and key names, each key
//! overridable by an `SVC_LBAAS_*` environment variable.

use crate::model::{DnsLabel, OpenStackId, PlainName};
use std::path::Path;

use serde::Deserialize;

use crate::model::LbAlgorithm;

/// Which load-balancing API the cloud offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Api {
    #[default]
    #[serde(rename = "octavia")]
    Octavia,
    /// The legacy Neutron LBaaS v2 endpoint `/v2.0/lbaas/` on the network service.
    #[serde(rename = "neutron-lbaas")]
    NeutronLbaas,
}

impl Api {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "octavia" => Some(Api::Octavia),
            "neutron-lbaas" => Some(Api::NeutronLbaas),
            _ => None,
        }
    }
}

/// How `spec.loadBalancerSourceRanges` reaches the load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SourceRanges {
    /// The listeners' `allowed_cidrs` (Octavia API 2.12); the ovn provider,
    /// which has none, gets a security group.
    #[default]
    #[serde(rename = "allowed_cidrs")]
    AllowedCidrs,
    /// A security group of the Service's on the VIP port (`vip_sg_ids`,
    /// Octavia API 2.29), whatever the provider.
    #[serde(rename = "security_group")]
    SecurityGroup,
}

impl SourceRanges {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "allowed_cidrs" => Some(SourceRanges::AllowedCidrs),
            "security_group" => Some(SourceRanges::SecurityGroup),
            _ => None,
        }
    }
}

/// A kuryr.conf key svc-lbaas has no use for: accepted, named in one WARN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unused;

impl<'de> Deserialize<'de> for Unused {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unused, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Unused)
    }
}

/// kuryr.conf's keys of `[neutron_defaults]` and `[octavia_defaults]` that
/// svc-lbaas does not use (kuryr-kubernetes' config.py): a kuryr.conf's
/// sections carried over are accepted, these named in one WARN. Any other
/// unknown key stays an error (a typo).
const KURYR_UNUSED_NEUTRON: [&str; 8] = [
    "project",
    "pod_security_groups",
    "ovs_bridge",
    "network_device_mtu",
    "lbaas_activation_timeout",
    "subnet_mapping",
    "resource_tags",
    "external_svc_net_ipv6",
];
const KURYR_UNUSED_OCTAVIA: [&str; 3] = ["member_mode", "sg_mode", "enforce_sg_rules"];

/// `[neutron_defaults]`: subnet ids, as in kuryr.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NeutronDefaults {
    /// Members' subnet.
    pub pod_subnet: Option<String>,
    /// VIPs' subnet.
    pub service_subnet: Option<String>,
    /// An IPv6 subnet for the second VIP of dual-stack Services (not in kuryr).
    pub service_subnet_ipv6: Option<String>,
    /// Pool-method floating IPs come from here.
    pub external_svc_subnet: Option<String>,
    /// kuryr's: the floating network, where no floating subnet is given.
    pub external_svc_net: Option<String>,
    /// kuryr.conf keys svc-lbaas does not use (and, until validated, unknown ones).
    #[serde(flatten)]
    pub unused: std::collections::BTreeMap<String, Unused>,
}

/// `[octavia_defaults]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OctaviaDefaults {
    pub api: Api,
    pub provider: Option<String>,
    pub lb_algorithm: LbAlgorithm,
    /// VIP address = the Service's clusterIP (kuryr's rule); false lets Neutron pick.
    pub vip_from_cluster_ip: bool,
    /// Only `type: LoadBalancer` Services of this class (empty: of no class).
    pub load_balancer_class: String,
    /// The cloud creates a listener with its pool, and a pool with its
    /// members and monitor, in one call (Octavia 19 answers those with a 500:
    /// off by default). On, a port added is one write and one wait.
    pub nested_creates: bool,
    /// kuryr's listener timeouts (ms) where a Service's annotations set
    /// none; 0: Octavia's default.
    pub timeout_client_data: u64,
    pub timeout_member_data: u64,
    pub source_ranges: SourceRanges,
    /// EndpointSlice endpoints that are `serving` and `terminating` stay
    /// members with weight 0 until their slice drops them (open connections
    /// finish, no new ones); off: they leave at once.
    pub drain_terminating: bool,
    /// Who may scrape a load balancer's own PROMETHEUS listener (the
    /// annotation `svc-lbaas.io/prometheus-listener-port`): its
    /// `allowed_cidrs`. Empty: the annotation is refused (never open to all).
    pub prometheus_allowed_cidrs: Vec<ipnet::IpNet>,
    /// kuryr.conf keys svc-lbaas does not use (and, until validated, unknown ones).
    #[serde(flatten)]
    pub unused: std::collections::BTreeMap<String, Unused>,
}

impl Default for OctaviaDefaults {
    fn default() -> Self {
        OctaviaDefaults {
            api: Api::Octavia,
            provider: None,
            lb_algorithm: LbAlgorithm::RoundRobin,
            vip_from_cluster_ip: true,
            load_balancer_class: String::new(),
            nested_creates: false,
            timeout_client_data: 0,
            timeout_member_data: 0,
            source_ranges: SourceRanges::AllowedCidrs,
            prometheus_allowed_cidrs: Vec::new(),
            drain_terminating: true,
            unused: Default::default(),
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Goes into the ownership tags, so clusters sharing a project never collide.
    pub name: String,
    /// `/v1/sync` leaves alone a load balancer younger than this (seconds):
    /// its Service may have been created after the list was taken.
    pub orphan_grace_s: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: "kubernetes".into(),
            orphan_grace_s: 60,
        }
    }
}

/// `[server]`: the REST and gRPC listeners' timeouts (seconds) and connection cap.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// A request's head (and a TLS handshake) must arrive within this.
    pub header_read_timeout_s: u64,
    /// The longest pause between two chunks of a request body.
    pub body_read_timeout_s: u64,
    /// A keep-alive connection with no request is closed after this.
    pub idle_timeout_s: u64,
    /// Connections open at once, per listener.
    pub max_connections: usize,
}

impl Default for Server {
    fn default() -> Self {
        let l = crate::listener::Limits::default();
        Server {
            header_read_timeout_s: l.header_read_timeout.as_secs(),
            body_read_timeout_s: l.body_read_timeout.as_secs(),
            idle_timeout_s: l.idle_timeout.as_secs(),
            max_connections: l.max_connections,
        }
    }
}

impl Server {
    pub fn limits(&self) -> crate::listener::Limits {
        crate::listener::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_s),
            body_read_timeout: std::time::Duration::from_secs(self.body_read_timeout_s),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_s),
            max_connections: self.max_connections,
        }
    }
}

/// `[openstack]`: how svc-lbaas calls the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenStack {
    /// One HTTP call to Keystone, Neutron or Octavia (connect to last byte).
    /// A write that gets no answer within it is observed and planned again,
    /// never sent blindly a second time.
    pub call_timeout_s: u64,
    /// Calls in flight at once, over all requests (the rest queue).
    pub max_concurrent_calls: usize,
    /// The longest a process trusts what it last read of a load balancer's
    /// listeners, pools and monitors while the load balancer's `updated_at`
    /// shows no change (a change made by hand always bumps it); then it
    /// reads them all again.
    pub full_read_every_s: u64,
    /// How long a subnet's network and CIDR, once read, are trusted (0:
    /// read at each apply that needs them, once in that apply). A write the
    /// cloud refuses with a 400 or 404 forgets them all sooner.
    pub subnet_cache_s: u64,
    /// Services an event List or a sync converges at once (their calls
    /// still queue for `max_concurrent_calls`; their waits share reads).
    pub services_at_once: usize,
}

impl Default for OpenStack {
    fn default() -> Self {
        OpenStack {
            call_timeout_s: 60,
            max_concurrent_calls: 16,
            full_read_every_s: 300,
            subnet_cache_s: 300,
            services_at_once: 1000,
        }
    }
}

pub use crate::model::AdoptFrom;

/// `[adoption]`: load balancers OCCM or kuryr-kubernetes made that an apply
/// takes over in place (same VIP, floating IP and id) when the Service also
/// says `svc-lbaas.io/adopt: "true"`. Off (empty) by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adoption {
    pub from: Vec<AdoptFrom>,
    /// The cluster name in OCCM's load balancer names and floating IP
    /// descriptions (OCCM's `--cluster-name`); `[cluster] name` when unset.
    pub occm_cluster_name: Option<String>,
}

impl Adoption {
    /// OCCM's cluster name: `occm_cluster_name`, else `cluster`.
    pub fn occm_cluster<'a>(&'a self, cluster: &'a str) -> &'a str {
        self.occm_cluster_name.as_deref().unwrap_or(cluster)
    }
}

/// `[tenancy]`: what a Service may name beyond what its own namespace owns.
/// A Service's namespace is the principal whatever token carried it; each
/// key widens or narrows what the operator opens to namespaces. Unset keys
/// keep OCCM's behaviour (any namespace, any network), except
/// `member_cidrs`, which defaults to the configured pod and member subnets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tenancy {
    /// Namespaces whose Services may join a load balancer no tool manages
    /// (`load-balancer-id`); `*` for all. Unset: every namespace.
    pub user_load_balancers_namespaces: Option<Vec<String>>,
    /// Namespaces whose Services may name a Barbican container svc-lbaas
    /// did not store (`default-tls-container-ref`, `sni-container-refs`).
    /// Unset: every namespace.
    pub user_containers_namespaces: Option<Vec<String>>,
    /// Networks a `network-id` annotation may name. Unset: any.
    pub vip_networks: Option<Vec<String>>,
    /// Subnets a `subnet-id` annotation may name. Unset: any.
    pub vip_subnets: Option<Vec<String>>,
    /// Addresses endpoints may give as members. Unset: the CIDRs of the pod
    /// subnet and of every class's member subnet.
    pub member_cidrs: Option<Vec<ipnet::IpNet>>,
}

impl Tenancy {
    /// Whether `namespace` may join load balancers nobody manages.
    pub fn user_load_balancers_open_to(&self, namespace: &str) -> bool {
        opens(&self.user_load_balancers_namespaces, namespace)
    }

    /// Whether `namespace` may use Barbican containers svc-lbaas did not store.
    pub fn user_containers_open_to(&self, namespace: &str) -> bool {
        opens(&self.user_containers_namespaces, namespace)
    }
}

fn opens(list: &Option<Vec<String>>, namespace: &str) -> bool {
    list.as_ref()
        .is_none_or(|l| l.iter().any(|n| n == "*" || n == namespace))
}

/// Whole seconds, written as OCCM writes durations (`5s`, `1m`, `1h`) or
/// as a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u32);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        let bad = || serde::de::Error::custom("expected seconds: 5, \"5s\", \"1m\" or \"1h\"");
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Seconds(n)),
            Raw::Text(t) => {
                let t = t.trim();
                let (number, unit) =
                    t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
                let n: u32 = number.parse().map_err(|_| bad())?;
                let factor = match unit {
                    "" | "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    _ => return Err(bad()),
                };
                n.checked_mul(factor).map(Seconds).ok_or_else(bad)
            }
        }
    }
}

/// OCCM's `[LoadBalancer]` keys svc-lbaas does not use (yet): accepted,
/// named in one WARN. Any other unknown key is an error (a typo).
const OCCM_UNUSED: [&str; 10] = [
    "enabled",
    "use-octavia",
    "lb-version",
    "manage-security-groups",
    "cascade-delete",
    "node-selector",
    "provider-requires-serial-api-calls",
    "container-store",
    "default-tls-container-ref",
    "monitor-type",
];

/// `[LoadBalancer]`: OCCM's section, under OCCM's key names and with its
/// defaults, for those coming from openstack-cloud-controller-manager.
/// Monitor, internal, flavor and zone settings are the defaults of the
/// per-Service annotations (which still win; `internal-lb = true` makes
/// every Service internal, as in OCCM); the subnet, network, provider and
/// method keys are svc-lbaas's own settings under OCCM's names (both given,
/// they must agree).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct OccmLoadBalancer {
    pub create_monitor: bool,
    pub monitor_delay: Seconds,
    pub monitor_timeout: Seconds,
    pub monitor_max_retries: u32,
    pub monitor_max_retries_down: u32,
    pub internal_lb: bool,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub lb_provider: Option<String>,
    pub lb_method: Option<LbAlgorithm>,
    pub subnet_id: Option<String>,
    pub member_subnet_id: Option<String>,
    pub floating_network_id: Option<String>,
    pub floating_subnet_id: Option<String>,
    /// The VIPs' network (the `network-id` annotation's default).
    pub network_id: Option<String>,
    /// With PROXY protocol, the status names `<address>.<ingress-hostname-suffix>`
    /// instead of the address (OCCM's workaround for traffic from inside the
    /// cluster, which Kubernetes would otherwise short-cut past the PROXY header).
    pub enable_ingress_hostname: bool,
    pub ingress_hostname_suffix: String,
    /// Services one load balancer may serve (`load-balancer-id` sharing), its
    /// creator included. OCCM's default is 2; ours is 8.
    pub max_shared_lb: u32,
    /// The floating IP's subnet by name pattern / tags (OCCM's syntax, see
    /// [`crate::model::FloatingSubnetMatch`]) among the floating network's.
    pub floating_subnet: Option<String>,
    pub floating_subnet_tags: Option<String>,
    #[serde(flatten)]
    pub unused: std::collections::BTreeMap<String, Unused>,
}

impl Default for OccmLoadBalancer {
    fn default() -> Self {
        OccmLoadBalancer {
            create_monitor: false,
            monitor_delay: Seconds(5),
            monitor_timeout: Seconds(3),
            monitor_max_retries: 1,
            monitor_max_retries_down: 3,
            internal_lb: false,
            flavor_id: None,
            availability_zone: None,
            lb_provider: None,
            lb_method: None,
            subnet_id: None,
            member_subnet_id: None,
            floating_network_id: None,
            floating_subnet_id: None,
            network_id: None,
            enable_ingress_hostname: false,
            ingress_hostname_suffix: "nip.io".into(),
            max_shared_lb: 8,
            floating_subnet: None,
            floating_subnet_tags: None,
            unused: Default::default(),
        }
    }
}

/// OCCM's `[LoadBalancerClass "name"]` (TOML: `[LoadBalancerClass.name]`):
/// what a Service annotated `loadbalancer.openstack.org/class: name` gets
/// where its own annotations say nothing; unset keys fall back to the
/// settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct LoadBalancerClass {
    pub network_id: Option<String>,
    pub floating_network_id: Option<String>,
    pub floating_subnet_id: Option<String>,
    pub subnet_id: Option<String>,
    pub member_subnet_id: Option<String>,
    pub floating_subnet: Option<String>,
    pub floating_subnet_tags: Option<String>,
    #[serde(flatten)]
    pub unused: std::collections::BTreeMap<String, Unused>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub neutron_defaults: NeutronDefaults,
    pub octavia_defaults: OctaviaDefaults,
    pub cluster: Cluster,
    pub server: Server,
    pub openstack: OpenStack,
    pub adoption: Adoption,
    pub tenancy: Tenancy,
    #[serde(rename = "LoadBalancer")]
    pub load_balancer: OccmLoadBalancer,
    #[serde(rename = "LoadBalancerClass")]
    pub load_balancer_classes: std::collections::BTreeMap<String, LoadBalancerClass>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("setting {key}: {message}")]
    Invalid { key: String, message: String },
}

/// Each environment variable and the setting it overrides.
pub const ENV_KEYS: [(&str, &str); 14] = [
    ("SVC_LBAAS_POD_SUBNET", "neutron_defaults.pod_subnet"),
    (
        "SVC_LBAAS_SERVICE_SUBNET",
        "neutron_defaults.service_subnet",
    ),
    (
        "SVC_LBAAS_SERVICE_SUBNET_IPV6",
        "neutron_defaults.service_subnet_ipv6",
    ),
    (
        "SVC_LBAAS_EXTERNAL_SVC_SUBNET",
        "neutron_defaults.external_svc_subnet",
    ),
    (
        "SVC_LBAAS_EXTERNAL_SVC_NET",
        "neutron_defaults.external_svc_net",
    ),
    ("SVC_LBAAS_API", "octavia_defaults.api"),
    ("SVC_LBAAS_PROVIDER", "octavia_defaults.provider"),
    ("SVC_LBAAS_LB_ALGORITHM", "octavia_defaults.lb_algorithm"),
    (
        "SVC_LBAAS_VIP_FROM_CLUSTER_IP",
        "octavia_defaults.vip_from_cluster_ip",
    ),
    (
        "SVC_LBAAS_NESTED_CREATES",
        "octavia_defaults.nested_creates",
    ),
    ("SVC_LBAAS_CLUSTER_NAME", "cluster.name"),
    ("SVC_LBAAS_SOURCE_RANGES", "octavia_defaults.source_ranges"),
    (
        "SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS",
        "octavia_defaults.prometheus_allowed_cidrs",
    ),
    (
        "SVC_LBAAS_DRAIN_TERMINATING",
        "octavia_defaults.drain_terminating",
    ),
];
/// The numeric settings' environment variables: `[server]`, `[openstack]`
/// and `[cluster] orphan_grace_s`.
pub const ENV_SERVER: [(&str, &str); 13] = [
    ("SVC_LBAAS_ORPHAN_GRACE_S", "cluster.orphan_grace_s"),
    (
        "SVC_LBAAS_HEADER_READ_TIMEOUT_S",
        "server.header_read_timeout_s",
    ),
    (
        "SVC_LBAAS_BODY_READ_TIMEOUT_S",
        "server.body_read_timeout_s",
    ),
    ("SVC_LBAAS_IDLE_TIMEOUT_S", "server.idle_timeout_s"),
    ("SVC_LBAAS_MAX_CONNECTIONS", "server.max_connections"),
    (
        "SVC_LBAAS_OPENSTACK_CALL_TIMEOUT_S",
        "openstack.call_timeout_s",
    ),
    (
        "SVC_LBAAS_OPENSTACK_MAX_CONCURRENT_CALLS",
        "openstack.max_concurrent_calls",
    ),
    (
        "SVC_LBAAS_OPENSTACK_FULL_READ_EVERY_S",
        "openstack.full_read_every_s",
    ),
    (
        "SVC_LBAAS_OPENSTACK_SERVICES_AT_ONCE",
        "openstack.services_at_once",
    ),
    ("SVC_LBAAS_SUBNET_CACHE_S", "openstack.subnet_cache_s"),
    (
        "SVC_LBAAS_TIMEOUT_CLIENT_DATA",
        "octavia_defaults.timeout_client_data",
    ),
    (
        "SVC_LBAAS_TIMEOUT_MEMBER_DATA",
        "octavia_defaults.timeout_member_data",
    ),
    ("SVC_LBAAS_MAX_SHARED_LB", "LoadBalancer.max-shared-lb"),
];
/// `[adoption]`'s environment variables.
pub const ENV_ADOPTION: [(&str, &str); 2] = [
    ("SVC_LBAAS_ADOPT_FROM", "adoption.from"),
    (
        "SVC_LBAAS_ADOPTION_OCCM_CLUSTER_NAME",
        "adoption.occm_cluster_name",
    ),
];
/// `[tenancy]`'s environment variables: comma-separated lists.
pub const ENV_TENANCY: [(&str, &str); 5] = [
    (
        "SVC_LBAAS_USER_LOAD_BALANCERS_NAMESPACES",
        "tenancy.user_load_balancers_namespaces",
    ),
    (
        "SVC_LBAAS_USER_CONTAINERS_NAMESPACES",
        "tenancy.user_containers_namespaces",
    ),
    ("SVC_LBAAS_VIP_NETWORKS", "tenancy.vip_networks"),
    ("SVC_LBAAS_VIP_SUBNETS", "tenancy.vip_subnets"),
    ("SVC_LBAAS_MEMBER_CIDRS", "tenancy.member_cidrs"),
];
const ENV_LOAD_BALANCER_CLASS: (&str, &str) = (
    "SVC_LBAAS_LOAD_BALANCER_CLASS",
    "octavia_defaults.load_balancer_class",
);

impl Settings {
    /// Reads `file` (when given), applies overrides from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Settings::from_toml(&text).map_err(|message| ConfigError::Parse {
                    path: path.display().to_string(),
                    message,
                })?
            }
            None => Settings::default(),
        };
        settings.apply_env(env)?;
        settings.take_occm_names()?;
        settings.validate()?;
        let unused = settings.unused_keys();
        if !unused.is_empty() {
            tracing::warn!(
                keys = %unused.join(", "),
                "kuryr.conf or OCCM keys svc-lbaas does not use: ignored"
            );
        }
        Ok(settings)
    }

    pub fn from_toml(text: &str) -> Result<Settings, String> {
        let settings: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        let classes: Vec<(String, &std::collections::BTreeMap<String, Unused>)> = settings
            .load_balancer_classes
            .iter()
            .map(|(name, class)| (format!("LoadBalancerClass.{name}"), &class.unused))
            .collect();
        for (section, unused) in &classes {
            if let Some(key) = unused.keys().next() {
                return Err(format!(
                    "unknown key `{key}` in [{section}] (neither svc-lbaas's nor OCCM's)"
                ));
            }
        }
        for (section, unused, kuryr) in [
            (
                "LoadBalancer",
                &settings.load_balancer.unused,
                &OCCM_UNUSED[..],
            ),
            (
                "neutron_defaults",
                &settings.neutron_defaults.unused,
                &KURYR_UNUSED_NEUTRON[..],
            ),
            (
                "octavia_defaults",
                &settings.octavia_defaults.unused,
                &KURYR_UNUSED_OCTAVIA[..],
            ),
        ] {
            if let Some(key) = unused.keys().find(|k| !kuryr.contains(&k.as_str())) {
                let whose = if section == "LoadBalancer" {
                    "OCCM's"
                } else {
                    "kuryr.conf's"
                };
                return Err(format!(
                    "unknown key `{key}` in [{section}] (neither svc-lbaas's nor {whose})"
                ));
            }
        }
        Ok(settings)
    }

    /// The kuryr.conf and OCCM keys given that svc-lbaas does not use
    /// (`neutron_defaults.ovs_bridge`, ...), for one WARN at start.
    pub fn unused_keys(&self) -> Vec<String> {
        let section = |name: &str, unused: &std::collections::BTreeMap<String, Unused>| {
            unused
                .keys()
                .map(|k| format!("{name}.{k}"))
                .collect::<Vec<_>>()
        };
        let mut keys = section("neutron_defaults", &self.neutron_defaults.unused);
        keys.extend(section("octavia_defaults", &self.octavia_defaults.unused));
        keys.extend(section("LoadBalancer", &self.load_balancer.unused));
        for (name, class) in &self.load_balancer_classes {
            keys.extend(section(&format!("LoadBalancerClass.{name}"), &class.unused));
        }
        keys
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        let nonempty = |v: String| if v.is_empty() { None } else { Some(v) };
        for (var, key) in ENV_SERVER {
            let Some(value) = env(var) else { continue };
            let n: u64 = value
                .parse()
                .map_err(|_| invalid(key, format!("{value:?} is not a whole number")))?;
            let s = &mut self.server;
            match var {
                "SVC_LBAAS_HEADER_READ_TIMEOUT_S" => s.header_read_timeout_s = n,
                "SVC_LBAAS_BODY_READ_TIMEOUT_S" => s.body_read_timeout_s = n,
                "SVC_LBAAS_IDLE_TIMEOUT_S" => s.idle_timeout_s = n,
                "SVC_LBAAS_ORPHAN_GRACE_S" => self.cluster.orphan_grace_s = n,
                "SVC_LBAAS_OPENSTACK_CALL_TIMEOUT_S" => self.openstack.call_timeout_s = n,
                "SVC_LBAAS_OPENSTACK_MAX_CONCURRENT_CALLS" => {
                    self.openstack.max_concurrent_calls = n as usize
                }
                "SVC_LBAAS_OPENSTACK_FULL_READ_EVERY_S" => self.openstack.full_read_every_s = n,
                "SVC_LBAAS_SUBNET_CACHE_S" => self.openstack.subnet_cache_s = n,
                "SVC_LBAAS_OPENSTACK_SERVICES_AT_ONCE" => {
                    self.openstack.services_at_once = n as usize
                }
                "SVC_LBAAS_TIMEOUT_CLIENT_DATA" => self.octavia_defaults.timeout_client_data = n,
                "SVC_LBAAS_TIMEOUT_MEMBER_DATA" => self.octavia_defaults.timeout_member_data = n,
                "SVC_LBAAS_MAX_SHARED_LB" => {
                    self.load_balancer.max_shared_lb = u32::try_from(n).unwrap_or(u32::MAX)
                }
                _ => s.max_connections = n as usize,
            }
        }
        for (var, key) in ENV_KEYS.iter().chain([&ENV_LOAD_BALANCER_CLASS]) {
            let Some(value) = env(var) else { continue };
            match *var {
                "SVC_LBAAS_POD_SUBNET" => self.neutron_defaults.pod_subnet = nonempty(value),
                "SVC_LBAAS_SERVICE_SUBNET" => {
                    self.neutron_defaults.service_subnet = nonempty(value)
                }
                "SVC_LBAAS_SERVICE_SUBNET_IPV6" => {
                    self.neutron_defaults.service_subnet_ipv6 = nonempty(value)
                }
                "SVC_LBAAS_EXTERNAL_SVC_SUBNET" => {
                    self.neutron_defaults.external_svc_subnet = nonempty(value)
                }
                "SVC_LBAAS_EXTERNAL_SVC_NET" => {
                    self.neutron_defaults.external_svc_net = nonempty(value)
                }
                "SVC_LBAAS_API" => {
                    self.octavia_defaults.api = Api::parse(&value).ok_or_else(|| {
                        invalid(key, format!("{value:?} is not octavia or neutron-lbaas"))
                    })?
                }
                "SVC_LBAAS_PROVIDER" => self.octavia_defaults.provider = nonempty(value),
                "SVC_LBAAS_SOURCE_RANGES" => {
                    self.octavia_defaults.source_ranges =
                        SourceRanges::parse(&value).ok_or_else(|| {
                            invalid(
                                key,
                                format!("{value:?} is not allowed_cidrs or security_group"),
                            )
                        })?
                }
                "SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS" => {
                    // Comma-separated; empty: unset.
                    let mut cidrs = Vec::new();
                    for item in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        cidrs.push(item.parse().map_err(|_| {
                            invalid(key, format!("{} is not a CIDR", crate::echo::quote(item)))
                        })?);
                    }
                    self.octavia_defaults.prometheus_allowed_cidrs = cidrs;
                }
                "SVC_LBAAS_LB_ALGORITHM" => {
                    self.octavia_defaults.lb_algorithm =
                        LbAlgorithm::parse(&value).ok_or_else(|| {
                            invalid(key, format!("{value:?} is not a known lb_algorithm"))
                        })?
                }
                "SVC_LBAAS_VIP_FROM_CLUSTER_IP"
                | "SVC_LBAAS_NESTED_CREATES"
                | "SVC_LBAAS_DRAIN_TERMINATING" => {
                    let on = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid(key, format!("{value:?} is not true or false"))),
                    };
                    match *var {
                        "SVC_LBAAS_NESTED_CREATES" => self.octavia_defaults.nested_creates = on,
                        "SVC_LBAAS_DRAIN_TERMINATING" => {
                            self.octavia_defaults.drain_terminating = on
                        }
                        _ => self.octavia_defaults.vip_from_cluster_ip = on,
                    }
                }
                "SVC_LBAAS_LOAD_BALANCER_CLASS" => {
                    self.octavia_defaults.load_balancer_class = value
                }
                "SVC_LBAAS_CLUSTER_NAME" => self.cluster.name = value,
                _ => {}
            }
        }
        for (var, key) in ENV_ADOPTION {
            let Some(value) = env(var) else { continue };
            if var == "SVC_LBAAS_ADOPT_FROM" {
                // `occm,kuryr`; empty: none.
                let mut from = Vec::new();
                for tool in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let tool = AdoptFrom::parse(tool)
                        .ok_or_else(|| invalid(key, format!("{tool:?} is not occm or kuryr")))?;
                    if !from.contains(&tool) {
                        from.push(tool);
                    }
                }
                self.adoption.from = from;
            } else {
                self.adoption.occm_cluster_name = nonempty(value);
            }
        }
        for (var, key) in ENV_TENANCY {
            let Some(value) = env(var) else { continue };
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            let t = &mut self.tenancy;
            match var {
                // An empty list of namespaces opens to none; of networks,
                // subnets or CIDRs, it is unset.
                "SVC_LBAAS_USER_LOAD_BALANCERS_NAMESPACES" => {
                    t.user_load_balancers_namespaces = Some(items)
                }
                "SVC_LBAAS_USER_CONTAINERS_NAMESPACES" => {
                    t.user_containers_namespaces = Some(items)
                }
                "SVC_LBAAS_VIP_NETWORKS" => t.vip_networks = (!items.is_empty()).then_some(items),
                "SVC_LBAAS_VIP_SUBNETS" => t.vip_subnets = (!items.is_empty()).then_some(items),
                _ => {
                    let mut cidrs = Vec::new();
                    for item in &items {
                        cidrs.push(item.parse().map_err(|_| {
                            invalid(key, format!("{} is not a CIDR", crate::echo::quote(item)))
                        })?);
                    }
                    t.member_cidrs = (!cidrs.is_empty()).then_some(cidrs);
                }
            }
        }
        Ok(())
    }

    /// `[LoadBalancer]`'s subnet, network, provider and method keys are our
    /// settings under OCCM's names: taken over, unless ours says otherwise.
    fn take_occm_names(&mut self) -> Result<(), ConfigError> {
        let lb = self.load_balancer.clone();
        let n = &mut self.neutron_defaults;
        let o = &mut self.octavia_defaults;
        for (occm, ours, theirs, mine) in [
            (
                "LoadBalancer.subnet-id",
                "neutron_defaults.service_subnet",
                lb.subnet_id,
                &mut n.service_subnet,
            ),
            (
                "LoadBalancer.member-subnet-id",
                "neutron_defaults.pod_subnet",
                lb.member_subnet_id,
                &mut n.pod_subnet,
            ),
            (
                "LoadBalancer.floating-network-id",
                "neutron_defaults.external_svc_net",
                lb.floating_network_id,
                &mut n.external_svc_net,
            ),
            (
                "LoadBalancer.floating-subnet-id",
                "neutron_defaults.external_svc_subnet",
                lb.floating_subnet_id,
                &mut n.external_svc_subnet,
            ),
            (
                "LoadBalancer.lb-provider",
                "octavia_defaults.provider",
                lb.lb_provider,
                &mut o.provider,
            ),
        ] {
            let Some(theirs) = theirs else { continue };
            match mine {
                Some(m) if *m != theirs => {
                    return Err(ConfigError::Invalid {
                        key: occm.into(),
                        message: format!("{theirs:?} disagrees with {ours}: {m:?}"),
                    });
                }
                _ => *mine = Some(theirs),
            }
        }
        if let Some(method) = lb.lb_method {
            let default = OctaviaDefaults::default().lb_algorithm;
            if o.lb_algorithm != default && o.lb_algorithm != method {
                return Err(ConfigError::Invalid {
                    key: "LoadBalancer.lb-method".into(),
                    message: format!(
                        "{} disagrees with octavia_defaults.lb_algorithm: {}",
                        method.as_str(),
                        o.lb_algorithm.as_str()
                    ),
                });
            }
            o.lb_algorithm = method;
        }
        Ok(())
    }

    /// Every setting checked before anything starts: one part a section,
    /// each refusal naming its key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_tenancy()?;
        self.validate_ids()?;
        self.validate_limits()?;
        self.validate_classes()?;
        self.validate_floating_subnets()?;
        self.validate_monitors()?;
        self.validate_octavia_defaults()?;
        self.validate_names()
    }

    /// `[tenancy]`: namespace names (or `*`) and VIP network and subnet ids.
    fn validate_tenancy(&self) -> Result<(), ConfigError> {
        let t = &self.tenancy;
        for (key, list) in [
            (
                "tenancy.user_load_balancers_namespaces",
                &t.user_load_balancers_namespaces,
            ),
            (
                "tenancy.user_containers_namespaces",
                &t.user_containers_namespaces,
            ),
        ] {
            for n in list.iter().flatten().filter(|n| n.as_str() != "*") {
                DnsLabel::try_new(n)
                    .map_err(|e| invalid(key, format!("{}: a namespace name, or *", e.0)))?;
            }
        }
        for (key, list) in [
            ("tenancy.vip_networks", &t.vip_networks),
            ("tenancy.vip_subnets", &t.vip_subnets),
        ] {
            for v in list.iter().flatten() {
                OpenStackId::try_new(v).map_err(|e| invalid(key, e.0))?;
            }
        }
        Ok(())
    }

    /// Every setting that names an OpenStack object by id: ids go into
    /// OpenStack URLs, so UUIDs as OpenStack makes them.
    fn validate_ids(&self) -> Result<(), ConfigError> {
        let d = &self.neutron_defaults;
        let lb = &self.load_balancer;
        let mut ids: Vec<(String, &Option<String>)> = vec![
            ("neutron_defaults.pod_subnet".into(), &d.pod_subnet),
            ("neutron_defaults.service_subnet".into(), &d.service_subnet),
            (
                "neutron_defaults.service_subnet_ipv6".into(),
                &d.service_subnet_ipv6,
            ),
            (
                "neutron_defaults.external_svc_subnet".into(),
                &d.external_svc_subnet,
            ),
            (
                "neutron_defaults.external_svc_net".into(),
                &d.external_svc_net,
            ),
            ("LoadBalancer.flavor-id".into(), &lb.flavor_id),
            ("LoadBalancer.network-id".into(), &lb.network_id),
        ];
        for (name, class) in &self.load_balancer_classes {
            for (key, value) in [
                ("network-id", &class.network_id),
                ("floating-network-id", &class.floating_network_id),
                ("floating-subnet-id", &class.floating_subnet_id),
                ("subnet-id", &class.subnet_id),
                ("member-subnet-id", &class.member_subnet_id),
            ] {
                ids.push((format!("LoadBalancerClass.{name}.{key}"), value));
            }
        }
        for (key, value) in ids {
            if let Some(Err(e)) = value.as_deref().map(OpenStackId::try_new) {
                return Err(invalid(key, e.0));
            }
        }
        Ok(())
    }

    /// Counts and timeouts of the server and the client: from 1 to a bound.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        let calls = &self.openstack;
        for (key, value, max) in [
            (
                "server.header_read_timeout_s",
                server.header_read_timeout_s,
                3600,
            ),
            (
                "server.body_read_timeout_s",
                server.body_read_timeout_s,
                3600,
            ),
            ("server.idle_timeout_s", server.idle_timeout_s, 3600),
            (
                "server.max_connections",
                server.max_connections as u64,
                1_000_000,
            ),
            ("openstack.call_timeout_s", calls.call_timeout_s, 3600),
            (
                "openstack.max_concurrent_calls",
                calls.max_concurrent_calls as u64,
                1024,
            ),
            (
                "openstack.full_read_every_s",
                calls.full_read_every_s,
                86_400,
            ),
            (
                "openstack.services_at_once",
                calls.services_at_once as u64,
                100_000,
            ),
            (
                "LoadBalancer.max-shared-lb",
                u64::from(self.load_balancer.max_shared_lb),
                1000,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(invalid(key, format!("{value} is not from 1 to {max}")));
            }
        }
        // 0 is allowed: read at every apply.
        if calls.subnet_cache_s > 86_400 {
            return Err(invalid(
                "openstack.subnet_cache_s",
                format!("{} is not from 0 to 86400", calls.subnet_cache_s),
            ));
        }
        Ok(())
    }

    /// `[LoadBalancerClass.<name>]`: names fit for logs and annotations.
    fn validate_classes(&self) -> Result<(), ConfigError> {
        for name in self.load_balancer_classes.keys() {
            if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
                return Err(invalid(
                    "LoadBalancerClass",
                    format!("{name:?}: a class name is 1-253 characters, no control characters"),
                ));
            }
        }
        Ok(())
    }

    /// A floating subnet chosen by name pattern or tags, at one level: not
    /// beside one chosen by id.
    fn validate_floating_subnets(&self) -> Result<(), ConfigError> {
        let lb = &self.load_balancer;
        let mut matches = vec![(
            "LoadBalancer".to_string(),
            &lb.floating_subnet,
            &lb.floating_subnet_tags,
            self.neutron_defaults.external_svc_subnet.is_some(),
        )];
        for (name, class) in &self.load_balancer_classes {
            matches.push((
                format!("LoadBalancerClass.{name}"),
                &class.floating_subnet,
                &class.floating_subnet_tags,
                class.floating_subnet_id.is_some(),
            ));
        }
        for (section, name, tags, by_id) in matches {
            let m = crate::model::FloatingSubnetMatch {
                name: name.clone(),
                tags: tags.clone(),
            };
            if m.is_empty() {
                continue;
            }
            m.check()
                .map_err(|e| invalid(format!("{section}.floating-subnet"), e))?;
            if by_id {
                return Err(invalid(
                    format!("{section}.floating-subnet"),
                    "a floating subnet by id too (floating-subnet-id, [neutron_defaults] external_svc_subnet): set one or the other",
                ));
            }
        }
        Ok(())
    }

    /// OCCM's `[LoadBalancer]` defaults: the zone, the monitors, the
    /// hostname suffix.
    fn validate_monitors(&self) -> Result<(), ConfigError> {
        let lb = &self.load_balancer;
        if let Some(Err(e)) = lb.availability_zone.as_deref().map(PlainName::try_new) {
            return Err(invalid("LoadBalancer.availability-zone", e.0));
        }
        for (key, value) in [
            ("LoadBalancer.monitor-max-retries", lb.monitor_max_retries),
            (
                "LoadBalancer.monitor-max-retries-down",
                lb.monitor_max_retries_down,
            ),
        ] {
            if !(1..=10).contains(&value) {
                return Err(invalid(key, format!("{value} is not from 1 to 10")));
            }
        }
        if lb.monitor_delay.0 == 0 || lb.monitor_timeout.0 == 0 {
            return Err(invalid(
                "LoadBalancer.monitor-delay",
                "delay and timeout must be at least 1s",
            ));
        }
        if lb.monitor_timeout.0 > lb.monitor_delay.0 {
            return Err(invalid(
                "LoadBalancer.monitor-timeout",
                format!(
                    "{}s must not exceed monitor-delay ({}s)",
                    lb.monitor_timeout.0, lb.monitor_delay.0
                ),
            ));
        }
        if !crate::names::is_dns_name(&lb.ingress_hostname_suffix) {
            return Err(invalid(
                "LoadBalancer.ingress-hostname-suffix",
                format!("{:?} is not a DNS name", lb.ingress_hostname_suffix),
            ));
        }
        Ok(())
    }

    /// `[octavia_defaults]`: an algorithm the provider has, timeouts Octavia takes.
    fn validate_octavia_defaults(&self) -> Result<(), ConfigError> {
        let o = &self.octavia_defaults;
        if matches!(
            o.provider.as_deref(),
            Some("amphora" | "octavia" | "amphorav2")
        ) && o.lb_algorithm == LbAlgorithm::SourceIpPort
        {
            return Err(invalid(
                "octavia_defaults.lb_algorithm",
                "the amphora provider has no SOURCE_IP_PORT algorithm",
            ));
        }
        for (key, value) in [
            (
                "octavia_defaults.timeout_client_data",
                o.timeout_client_data,
            ),
            (
                "octavia_defaults.timeout_member_data",
                o.timeout_member_data,
            ),
        ] {
            if value > crate::model::MAX_TIMEOUT_MS {
                return Err(invalid(
                    key,
                    format!(
                        "{value} is over {} ms (0: Octavia's default)",
                        crate::model::MAX_TIMEOUT_MS
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The names that go into tags: this cluster's and OCCM's.
    fn validate_names(&self) -> Result<(), ConfigError> {
        let name = &self.cluster.name;
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(invalid(
                "cluster.name",
                format!(
                    "{name:?} must be 1-63 characters of letters, digits, '-', '_' or '.' (it goes into tags)"
                ),
            ));
        }
        if let Some(occm) = &self.adoption.occm_cluster_name
            && (occm.len() > 200 || occm.chars().any(char::is_control))
        {
            return Err(invalid(
                "adoption.occm_cluster_name",
                "must be 1-200 characters, none of them control characters",
            ));
        }
        Ok(())
    }
}

/// A setting refused: its key and why.
fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kuryr_conf_sections_are_accepted_and_their_unused_keys_named() {
        let text = r#"
[neutron_defaults]
project = "4e2c8b8e-7b0e-4a0e-9f5e-3c6f0a1b2c3d"
pod_subnet = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81"
service_subnet = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82"
external_svc_net = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a83"
pod_security_groups = ["a", "b"]
ovs_bridge = "br-int"
resource_tags = ["k8s"]

[octavia_defaults]
member_mode = "L3"
sg_mode = "update"
enforce_sg_rules = true
lb_algorithm = "SOURCE_IP_PORT"
timeout_client_data = 50000
timeout_member_data = 0
"#;
        let path = std::env::temp_dir().join(format!("kuryr-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("writes");
        let s = Settings::load(Some(&path), no_env).expect("a kuryr.conf's sections");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            s.neutron_defaults.external_svc_net.as_deref(),
            Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a83")
        );
        assert_eq!(s.octavia_defaults.lb_algorithm, LbAlgorithm::SourceIpPort);
        assert_eq!(s.octavia_defaults.timeout_client_data, 50000);
        assert_eq!(
            s.unused_keys(),
            [
                "neutron_defaults.ovs_bridge",
                "neutron_defaults.pod_security_groups",
                "neutron_defaults.project",
                "neutron_defaults.resource_tags",
                "octavia_defaults.enforce_sg_rules",
                "octavia_defaults.member_mode",
                "octavia_defaults.sg_mode",
            ]
        );
        // A key neither svc-lbaas's nor kuryr's is still a typo.
        let err =
            Settings::from_toml("[neutron_defaults]\npod_subnett = \"x\"\n").expect_err("a typo");
        assert!(err.contains("pod_subnett"), "{err}");
        let err = Settings::from_toml("[octavia_defaults]\ntimeout_client_data = \"x\"\n")
            .expect_err("not a number");
        assert!(err.contains("timeout_client_data"), "{err}");
        let big =
            |k: &str| (k == "SVC_LBAAS_TIMEOUT_MEMBER_DATA").then(|| "99999999999999".to_string());
        let err = Settings::load(None, big).expect_err("over a year");
        assert!(
            err.to_string()
                .contains("octavia_defaults.timeout_member_data"),
            "{err}"
        );
        let bad_net = |k: &str| (k == "SVC_LBAAS_EXTERNAL_SVC_NET").then(|| "public".to_string());
        let err = Settings::load(None, bad_net).expect_err("not an id");
        assert!(err.to_string().contains("external_svc_net"), "{err}");
    }

    #[test]
    fn floating_subnet_patterns_are_read_checked_and_exclusive_of_a_subnet_id() {
        let s = Settings::from_toml(
            "[LoadBalancer]\nfloating-subnet = \"pub-*\"\nfloating-subnet-tags = \"&a,b\"\n[LoadBalancerClass.ext]\nfloating-subnet = \"~ext-[0-9]+\"\n",
        )
        .expect("OCCM's keys");
        assert_eq!(s.load_balancer.floating_subnet.as_deref(), Some("pub-*"));
        assert_eq!(
            s.load_balancer.floating_subnet_tags.as_deref(),
            Some("&a,b")
        );
        assert_eq!(
            s.load_balancer_classes["ext"].floating_subnet.as_deref(),
            Some("~ext-[0-9]+")
        );
        assert!(s.unused_keys().is_empty(), "{:?}", s.unused_keys());
        for (text, says) in [
            (
                "[LoadBalancer]\nfloating-subnet = \"~pub-(\"\n",
                "LoadBalancer.floating-subnet",
            ),
            (
                "[neutron_defaults]\nexternal_svc_subnet = \"8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81\"\n[LoadBalancer]\nfloating-subnet = \"pub-*\"\n",
                "set one or the other",
            ),
        ] {
            let path = std::env::temp_dir().join(format!("fsub-{}.toml", std::process::id()));
            std::fs::write(&path, text).expect("writes");
            let err = Settings::load(Some(&path), no_env).expect_err("refused");
            let _ = std::fs::remove_file(&path);
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn occms_load_balancer_section_is_read_under_occms_names() {
        let text = r#"
[LoadBalancer]
create-monitor = true
monitor-delay = "1m"
monitor-timeout = "30s"
monitor-max-retries = 2
lb-method = "SOURCE_IP"
lb-provider = "amphora"
subnet-id = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82"
floating-network-id = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a83"
enable-ingress-hostname = true
max-shared-lb = 3
"#;
        let path = std::env::temp_dir().join(format!("occm-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("writes");
        let s = Settings::load(Some(&path), no_env).expect("OCCM's section");
        let _ = std::fs::remove_file(&path);
        let lb = &s.load_balancer;
        assert!(lb.create_monitor);
        assert_eq!(
            (lb.monitor_delay, lb.monitor_timeout),
            (Seconds(60), Seconds(30))
        );
        assert_eq!(
            (lb.monitor_max_retries, lb.monitor_max_retries_down),
            (2, 3)
        );
        assert_eq!(lb.ingress_hostname_suffix, "nip.io");
        // OCCM's names for svc-lbaas's own settings.
        assert_eq!(
            s.neutron_defaults.service_subnet.as_deref(),
            Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82")
        );
        assert_eq!(
            s.neutron_defaults.external_svc_net.as_deref(),
            Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a83")
        );
        assert_eq!(s.octavia_defaults.lb_algorithm, LbAlgorithm::SourceIp);
        assert_eq!(s.octavia_defaults.provider.as_deref(), Some("amphora"));
        assert_eq!(s.load_balancer.max_shared_lb, 3);
        assert!(s.unused_keys().is_empty(), "{:?}", s.unused_keys());
        // A plain number is seconds too.
        let s = Settings::from_toml("[LoadBalancer]\nmonitor-delay = 7\n").expect("seconds");
        assert_eq!(s.load_balancer.monitor_delay, Seconds(7));
        for (text, named) in [
            ("[LoadBalancer]\nmonitor-dealy = \"5s\"\n", "monitor-dealy"),
            (
                "[LoadBalancer]\nmonitor-delay = \"5 days\"\n",
                "monitor-delay",
            ),
        ] {
            let err = Settings::from_toml(text).expect_err("refused");
            assert!(err.contains(named), "{err}");
        }
        let load = |text: &str| {
            let path = std::env::temp_dir().join(format!("occm-bad-{}.toml", std::process::id()));
            std::fs::write(&path, text).expect("writes");
            let r = Settings::load(Some(&path), no_env);
            let _ = std::fs::remove_file(&path);
            r.expect_err("invalid").to_string()
        };
        let e = load(
            "[neutron_defaults]\nservice_subnet = \"8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81\"\n[LoadBalancer]\nsubnet-id = \"8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82\"\n",
        );
        assert!(
            e.contains("LoadBalancer.subnet-id") && e.contains("disagrees"),
            "{e}"
        );
        let e = load("[LoadBalancer]\nmonitor-delay = \"3s\"\nmonitor-timeout = \"5s\"\n");
        assert!(e.contains("LoadBalancer.monitor-timeout"), "{e}");
        let e = load("[LoadBalancer]\nflavor-id = \"small\"\n");
        assert!(e.contains("LoadBalancer.flavor-id"), "{e}");
        let e = load("[LoadBalancer]\ningress-hostname-suffix = \"Not A Name\"\n");
        assert!(e.contains("ingress-hostname-suffix"), "{e}");
    }

    #[test]
    fn load_balancer_classes_are_tables_under_occms_keys() {
        let s = Settings::from_toml(
            "[LoadBalancerClass.internet]\nfloating-subnet-id = \"8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81\"\n\n[LoadBalancerClass.\"eu west\"]\nsubnet-id = \"8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a82\"\n",
        )
        .expect("two classes");
        assert_eq!(
            s.load_balancer_classes["internet"]
                .floating_subnet_id
                .as_deref(),
            Some("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81")
        );
        assert!(s.load_balancer_classes.contains_key("eu west"));
        assert!(s.unused_keys().is_empty(), "{:?}", s.unused_keys());
        let err =
            Settings::from_toml("[LoadBalancerClass.x]\nsubnet = \"a\"\n").expect_err("a typo");
        assert!(
            err.contains("LoadBalancerClass.x") && err.contains("subnet"),
            "{err}"
        );
        let path = std::env::temp_dir().join(format!("class-{}.toml", std::process::id()));
        std::fs::write(&path, "[LoadBalancerClass.x]\nsubnet-id = \"a-name\"\n").expect("writes");
        let err = Settings::load(Some(&path), no_env)
            .expect_err("not an id")
            .to_string();
        let _ = std::fs::remove_file(&path);
        assert!(err.contains("LoadBalancerClass.x.subnet-id"), "{err}");
    }

    #[test]
    fn adoption_is_off_unless_asked_and_names_its_tools() {
        let s = Settings::load(None, no_env).expect("defaults");
        assert!(s.adoption.from.is_empty());
        assert_eq!(s.adoption.occm_cluster("kubernetes"), "kubernetes");
        let env = |k: &str| match k {
            "SVC_LBAAS_ADOPT_FROM" => Some("occm, kuryr,occm".to_string()),
            "SVC_LBAAS_ADOPTION_OCCM_CLUSTER_NAME" => Some("prod-eu".to_string()),
            _ => None,
        };
        let s = Settings::load(None, env).expect("adoption from env");
        assert_eq!(s.adoption.from, [AdoptFrom::Occm, AdoptFrom::Kuryr]);
        assert_eq!(s.adoption.occm_cluster("kubernetes"), "prod-eu");
        let s = Settings::from_toml("[adoption]\nfrom = [\"kuryr\"]\n").expect("toml");
        assert_eq!(s.adoption.from, [AdoptFrom::Kuryr]);
        assert!(Settings::from_toml("[adoption]\nfrom = [\"rancher\"]\n").is_err());
        let bad = |k: &str| (k == "SVC_LBAAS_ADOPT_FROM").then(|| "occm,rancher".to_string());
        let err = Settings::load(None, bad).expect_err("an unknown tool");
        assert!(err.to_string().contains("adoption.from"), "{err}");
        assert!(err.to_string().contains("rancher"), "{err}");
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn prometheus_allowed_cidrs_come_from_the_file_or_the_environment() {
        let env = |k: &str| {
            (k == "SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS")
                .then(|| " 10.9.0.0/24, fd00:9::/64 ,".to_string())
        };
        let s = Settings::load(None, env).unwrap();
        assert_eq!(
            s.octavia_defaults.prometheus_allowed_cidrs,
            vec![
                "10.9.0.0/24".parse::<ipnet::IpNet>().unwrap(),
                "fd00:9::/64".parse().unwrap()
            ]
        );
        let bad = |k: &str| {
            (k == "SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS").then(|| "10.9.0.0/24,nope".to_string())
        };
        let e = Settings::load(None, bad).unwrap_err().to_string();
        assert!(
            e.contains("octavia_defaults.prometheus_allowed_cidrs") && e.contains("nope"),
            "{e}"
        );
        assert!(
            Settings::load(None, no_env)
                .unwrap()
                .octavia_defaults
                .prometheus_allowed_cidrs
                .is_empty()
        );
    }

    #[test]
    fn defaults_follow_kuryr() {
        let s = Settings::load(None, no_env).unwrap();
        assert_eq!(s.octavia_defaults.api, Api::Octavia);
        assert_eq!(s.octavia_defaults.lb_algorithm, LbAlgorithm::RoundRobin);
        assert!(s.octavia_defaults.vip_from_cluster_ip);
        assert_eq!(s.cluster.name, "kubernetes");
        assert_eq!(s.neutron_defaults.pod_subnet, None);
    }

    #[test]
    fn the_file_uses_kuryr_conf_names() {
        let s = Settings::from_toml(
            r#"
            [neutron_defaults]
            pod_subnet = "e0a888ab"
            service_subnet = "d6438a81"
            external_svc_subnet = "48ddcfec"
            [octavia_defaults]
            api = "neutron-lbaas"
            lb_algorithm = "LEAST_CONNECTIONS"
            vip_from_cluster_ip = false
            load_balancer_class = "openstack"
            [cluster]
            name = "prod"
            "#,
        )
        .unwrap();
        assert_eq!(s.neutron_defaults.pod_subnet.as_deref(), Some("e0a888ab"));
        assert_eq!(
            s.neutron_defaults.service_subnet.as_deref(),
            Some("d6438a81")
        );
        assert_eq!(
            s.neutron_defaults.external_svc_subnet.as_deref(),
            Some("48ddcfec")
        );
        assert_eq!(s.octavia_defaults.api, Api::NeutronLbaas);
        assert_eq!(
            s.octavia_defaults.lb_algorithm,
            LbAlgorithm::LeastConnections
        );
        assert!(!s.octavia_defaults.vip_from_cluster_ip);
        assert_eq!(s.octavia_defaults.load_balancer_class, "openstack");
        assert_eq!(s.cluster.name, "prod");
    }

    #[test]
    fn unknown_keys_and_values_are_errors() {
        let e = Settings::from_toml("[neutron_defaults]\npod_subnett = \"x\"\n").unwrap_err();
        assert!(e.contains("pod_subnett"), "{e}");
        let e = Settings::from_toml("[octavia_defaults]\nlb_algorithm = \"RANDOM\"\n").unwrap_err();
        assert!(e.contains("RANDOM"), "{e}");
    }

    #[test]
    fn env_overrides_the_file() {
        let env = |k: &str| match k {
            "SVC_LBAAS_POD_SUBNET" => Some("e0a888ab-9915-4685-a600-bffe240dc58b".to_string()),
            "SVC_LBAAS_CLUSTER_NAME" => Some("east".to_string()),
            "SVC_LBAAS_LB_ALGORITHM" => Some("SOURCE_IP".to_string()),
            "SVC_LBAAS_VIP_FROM_CLUSTER_IP" => Some("false".to_string()),
            "SVC_LBAAS_SOURCE_RANGES" => Some("security_group".to_string()),
            _ => None,
        };
        let s = Settings::load(None, env).unwrap();
        assert_eq!(
            s.octavia_defaults.source_ranges,
            SourceRanges::SecurityGroup
        );
        let bad = |k: &str| (k == "SVC_LBAAS_SOURCE_RANGES").then(|| "acl".to_string());
        let err = Settings::load(None, bad).expect_err("not a way");
        assert!(
            err.to_string().contains("octavia_defaults.source_ranges"),
            "{err}"
        );
        assert_eq!(
            s.neutron_defaults.pod_subnet.as_deref(),
            Some("e0a888ab-9915-4685-a600-bffe240dc58b")
        );
        assert_eq!(s.cluster.name, "east");
        assert_eq!(s.octavia_defaults.lb_algorithm, LbAlgorithm::SourceIp);
        assert!(!s.octavia_defaults.vip_from_cluster_ip);
    }

    #[test]
    fn tenancy_comes_from_the_file_and_the_env() {
        let s = Settings::from_toml(
            "[tenancy]\nuser_load_balancers_namespaces = [\"prod\"]\nmember_cidrs = [\"10.1.0.0/16\"]\n",
        )
        .unwrap();
        assert!(s.tenancy.user_load_balancers_open_to("prod"));
        assert!(!s.tenancy.user_load_balancers_open_to("evil"));
        assert!(
            s.tenancy.user_containers_open_to("evil"),
            "unset: every namespace"
        );
        assert_eq!(
            s.tenancy.member_cidrs,
            Some(vec!["10.1.0.0/16".parse().unwrap()])
        );
        let env = |k: &str| match k {
            "SVC_LBAAS_USER_CONTAINERS_NAMESPACES" => Some("".to_string()),
            "SVC_LBAAS_USER_LOAD_BALANCERS_NAMESPACES" => Some("*".to_string()),
            "SVC_LBAAS_VIP_NETWORKS" => Some("e0a888ab-9915-4685-a600-bffe240dc58b".to_string()),
            "SVC_LBAAS_MEMBER_CIDRS" => Some("10.1.0.0/16, fd00::/64".to_string()),
            _ => None,
        };
        let s = Settings::load(None, env).unwrap();
        assert!(!s.tenancy.user_containers_open_to("prod"), "empty: none");
        assert!(s.tenancy.user_load_balancers_open_to("evil"));
        assert_eq!(s.tenancy.vip_networks.as_ref().map(Vec::len), Some(1));
        assert_eq!(s.tenancy.member_cidrs.as_ref().map(Vec::len), Some(2));
        for (var, value, key) in [
            ("SVC_LBAAS_VIP_SUBNETS", "../x", "tenancy.vip_subnets"),
            (
                "SVC_LBAAS_MEMBER_CIDRS",
                "10.1.0.0/33",
                "tenancy.member_cidrs",
            ),
            (
                "SVC_LBAAS_USER_LOAD_BALANCERS_NAMESPACES",
                "Prod",
                "tenancy.user_load_balancers_namespaces",
            ),
        ] {
            let env = |k: &str| (k == var).then(|| value.to_string());
            let e = Settings::load(None, env).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn bad_env_values_name_the_setting() {
        let env = |k: &str| (k == "SVC_LBAAS_API").then(|| "lbaas".to_string());
        let e = Settings::load(None, env).unwrap_err().to_string();
        assert!(e.contains("octavia_defaults.api"), "{e}");
        let env = |k: &str| (k == "SVC_LBAAS_CLUSTER_NAME").then(|| "a,b".to_string());
        let e = Settings::load(None, env).unwrap_err().to_string();
        assert!(e.contains("cluster.name"), "{e}");
        let env =
            |k: &str| (k == "SVC_LBAAS_SERVICE_SUBNET").then(|| "../../v3/auth/tokens".to_string());
        let e = Settings::load(None, env).unwrap_err().to_string();
        assert!(e.contains("neutron_defaults.service_subnet"), "{e}");
    }

    #[test]
    fn openstack_call_settings_have_defaults_files_and_env() {
        let s = Settings::load(None, no_env).unwrap();
        assert_eq!(s.openstack.call_timeout_s, 60);
        assert_eq!(s.openstack.max_concurrent_calls, 16);
        assert_eq!(s.openstack.full_read_every_s, 300);
        let s = Settings::from_toml("[openstack]\ncall_timeout_s = 120\n").unwrap();
        assert_eq!(s.openstack.call_timeout_s, 120);
        let env =
            |k: &str| (k == "SVC_LBAAS_OPENSTACK_MAX_CONCURRENT_CALLS").then(|| "4".to_string());
        assert_eq!(
            Settings::load(None, env)
                .unwrap()
                .openstack
                .max_concurrent_calls,
            4
        );
        let env = |k: &str| (k == "SVC_LBAAS_OPENSTACK_CALL_TIMEOUT_S").then(|| "0".to_string());
        let e = Settings::load(None, env).unwrap_err().to_string();
        assert!(e.contains("openstack.call_timeout_s"), "{e}");
    }

    #[test]
    fn subnet_cache_s_defaults_to_300_and_takes_0_to_86400() {
        let s = Settings::load(None, no_env).unwrap();
        assert_eq!(s.openstack.subnet_cache_s, 300);
        let s = Settings::from_toml("[openstack]\nsubnet_cache_s = 0\n").unwrap();
        s.validate().unwrap();
        assert_eq!(s.openstack.subnet_cache_s, 0);
        let env_of = |v: &'static str| {
            move |k: &str| (k == "SVC_LBAAS_SUBNET_CACHE_S").then(|| v.to_string())
        };
        for (value, kept) in [("0", 0), ("86400", 86_400)] {
            let s = Settings::load(None, env_of(value)).unwrap();
            assert_eq!(s.openstack.subnet_cache_s, kept, "{value}");
        }
        for value in ["86401", "-1", "five minutes"] {
            let e = Settings::load(None, env_of(value)).unwrap_err().to_string();
            assert!(e.contains("openstack.subnet_cache_s"), "{value}: {e}");
        }
        let e = Settings::from_toml("[openstack]\nsubnet_cache_s = 86401\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("openstack.subnet_cache_s"), "{e}");
    }

    #[test]
    fn listener_limits_have_defaults_files_and_env() {
        let s = Settings::load(None, no_env).unwrap();
        assert_eq!(s.server.limits(), crate::listener::Limits::default());
        let s =
            Settings::from_toml("[server]\nidle_timeout_s = 5\nmax_connections = 10\n").unwrap();
        assert_eq!(s.server.idle_timeout_s, 5);
        assert_eq!(s.server.max_connections, 10);
        let env = |k: &str| (k == "SVC_LBAAS_HEADER_READ_TIMEOUT_S").then(|| "3".to_string());
        assert_eq!(
            Settings::load(None, env)
                .unwrap()
                .server
                .header_read_timeout_s,
            3
        );
        let env = |k: &str| (k == "SVC_LBAAS_IDLE_TIMEOUT_S").then(|| "0".to_string());
        let e = Settings::load(None, env).unwrap_err().to_string();
        assert!(e.contains("server.idle_timeout_s"), "{e}");
        let env = |k: &str| (k == "SVC_LBAAS_MAX_CONNECTIONS").then(|| "many".to_string());
        let e = Settings::load(None, env).unwrap_err().to_string();
        assert!(e.contains("server.max_connections"), "{e}");
    }

    #[test]
    fn the_example_configuration_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/svc-lbaas.toml");
        let s = Settings::load(Some(Path::new(path)), no_env).unwrap();
        assert_eq!(s.server.limits(), crate::listener::Limits::default());
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let e = Settings::load(Some(Path::new("/nonexistent/svc-lbaas.toml")), no_env).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }
}
