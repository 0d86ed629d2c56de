//! Settings: a TOML file with kuryr.conf's section and key names, each key
//! overridable by an `SVC_LBAAS_*` environment variable.

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

/// `[neutron_defaults]`: subnet ids, as in kuryr.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeutronDefaults {
    /// Members' subnet.
    pub pod_subnet: Option<String>,
    /// VIPs' subnet.
    pub service_subnet: Option<String>,
    /// An IPv6 subnet for the second VIP of dual-stack Services (not in kuryr).
    pub service_subnet_ipv6: Option<String>,
    /// Pool-method floating IPs come from here.
    pub external_svc_subnet: Option<String>,
}

/// `[octavia_defaults]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
            services_at_once: 1000,
        }
    }
}

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub neutron_defaults: NeutronDefaults,
    pub octavia_defaults: OctaviaDefaults,
    pub cluster: Cluster,
    pub server: Server,
    pub openstack: OpenStack,
    pub adoption: Adoption,
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
pub const ENV_KEYS: [(&str, &str); 10] = [
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
];
/// The numeric settings' environment variables: `[server]`, `[openstack]`
/// and `[cluster] orphan_grace_s`.
pub const ENV_SERVER: [(&str, &str); 9] = [
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
];
/// `[adoption]`'s environment variables.
pub const ENV_ADOPTION: [(&str, &str); 2] = [
    ("SVC_LBAAS_ADOPT_FROM", "adoption.from"),
    (
        "SVC_LBAAS_ADOPTION_OCCM_CLUSTER_NAME",
        "adoption.occm_cluster_name",
    ),
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
        settings.validate()?;
        Ok(settings)
    }

    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string())
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
                "SVC_LBAAS_OPENSTACK_SERVICES_AT_ONCE" => {
                    self.openstack.services_at_once = n as usize
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
                "SVC_LBAAS_API" => {
                    self.octavia_defaults.api = Api::parse(&value).ok_or_else(|| {
                        invalid(key, format!("{value:?} is not octavia or neutron-lbaas"))
                    })?
                }
                "SVC_LBAAS_PROVIDER" => self.octavia_defaults.provider = nonempty(value),
                "SVC_LBAAS_LB_ALGORITHM" => {
                    self.octavia_defaults.lb_algorithm =
                        LbAlgorithm::parse(&value).ok_or_else(|| {
                            invalid(key, format!("{value:?} is not a known lb_algorithm"))
                        })?
                }
                "SVC_LBAAS_VIP_FROM_CLUSTER_IP" | "SVC_LBAAS_NESTED_CREATES" => {
                    let on = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid(key, format!("{value:?} is not true or false"))),
                    };
                    match *var {
                        "SVC_LBAAS_NESTED_CREATES" => self.octavia_defaults.nested_creates = on,
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
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.neutron_defaults;
        for (key, value) in [
            ("neutron_defaults.pod_subnet", &d.pod_subnet),
            ("neutron_defaults.service_subnet", &d.service_subnet),
            (
                "neutron_defaults.service_subnet_ipv6",
                &d.service_subnet_ipv6,
            ),
            (
                "neutron_defaults.external_svc_subnet",
                &d.external_svc_subnet,
            ),
        ] {
            // Subnet ids go into OpenStack URLs: UUIDs, as Neutron makes them.
            if let Some(v) = value
                && !crate::names::is_uuid(v)
            {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: format!("{v:?} is not a subnet id (a UUID)"),
                });
            }
        }
        let server = &self.server;
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
            (
                "openstack.call_timeout_s",
                self.openstack.call_timeout_s,
                3600,
            ),
            (
                "openstack.max_concurrent_calls",
                self.openstack.max_concurrent_calls as u64,
                1024,
            ),
            (
                "openstack.full_read_every_s",
                self.openstack.full_read_every_s,
                86_400,
            ),
            (
                "openstack.services_at_once",
                self.openstack.services_at_once as u64,
                100_000,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: format!("{value} is not from 1 to {max}"),
                });
            }
        }
        let name = &self.cluster.name;
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(ConfigError::Invalid {
                key: "cluster.name".into(),
                message: format!(
                    "{name:?} must be 1-63 characters of letters, digits, '-', '_' or '.' (it goes into tags)"
                ),
            });
        }
        if let Some(occm) = &self.adoption.occm_cluster_name
            && (occm.len() > 200 || occm.chars().any(char::is_control))
        {
            return Err(ConfigError::Invalid {
                key: "adoption.occm_cluster_name".into(),
                message: "must be 1-200 characters, none of them control characters".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            _ => None,
        };
        let s = Settings::load(None, env).unwrap();
        assert_eq!(
            s.neutron_defaults.pod_subnet.as_deref(),
            Some("e0a888ab-9915-4685-a600-bffe240dc58b")
        );
        assert_eq!(s.cluster.name, "east");
        assert_eq!(s.octavia_defaults.lb_algorithm, LbAlgorithm::SourceIp);
        assert!(!s.octavia_defaults.vip_from_cluster_ip);
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
