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
}

impl Default for OctaviaDefaults {
    fn default() -> Self {
        OctaviaDefaults {
            api: Api::Octavia,
            provider: None,
            lb_algorithm: LbAlgorithm::RoundRobin,
            vip_from_cluster_ip: true,
            load_balancer_class: String::new(),
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// Goes into the ownership tags, so clusters sharing a project never collide.
    pub name: String,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: "kubernetes".into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub neutron_defaults: NeutronDefaults,
    pub octavia_defaults: OctaviaDefaults,
    pub cluster: Cluster,
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
pub const ENV_KEYS: [(&str, &str); 9] = [
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
    ("SVC_LBAAS_CLUSTER_NAME", "cluster.name"),
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
                "SVC_LBAAS_VIP_FROM_CLUSTER_IP" => {
                    self.octavia_defaults.vip_from_cluster_ip = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid(key, format!("{value:?} is not true or false"))),
                    }
                }
                "SVC_LBAAS_LOAD_BALANCER_CLASS" => {
                    self.octavia_defaults.load_balancer_class = value
                }
                "SVC_LBAAS_CLUSTER_NAME" => self.cluster.name = value,
                _ => {}
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_missing_file_is_a_read_error() {
        let e = Settings::load(Some(Path::new("/nonexistent/svc-lbaas.toml")), no_env).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }
}
