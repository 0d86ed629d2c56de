//! Where the cloud's credentials come from, as every OpenStack client reads
//! them: `OS_CLOUD` with clouds.yaml (`OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`), or the
//! `OS_*` variables. Password, application credential and token methods.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::error::OpenStackError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Password {
        username: Option<String>,
        user_id: Option<String>,
        password: String,
        user_domain_name: Option<String>,
        user_domain_id: Option<String>,
    },
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        username: Option<String>,
        user_domain_name: Option<String>,
        secret: String,
    },
    Token {
        token: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Project {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub auth_url: String,
    pub method: Method,
    pub project: Project,
    pub region: Option<String>,
    /// `public` unless configured.
    pub interface: String,
    pub ca_bundle: Option<PathBuf>,
}

/// Never print secrets.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match &self.method {
            Method::Password { .. } => "password",
            Method::ApplicationCredential { .. } => "application_credential",
            Method::Token { .. } => "token",
        };
        f.debug_struct("Credentials")
            .field("auth_url", &self.auth_url)
            .field("method", &method)
            .field("project", &self.project)
            .field("region", &self.region)
            .field("interface", &self.interface)
            .finish()
    }
}

fn config_error(message: impl Into<String>) -> OpenStackError {
    OpenStackError::Config(message.into())
}

impl Credentials {
    /// The cloud configured in the environment, if any: `OS_CLOUD` first,
    /// then `OS_AUTH_URL` with the other `OS_*` variables.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Credentials>, OpenStackError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(cloud) = get("OS_CLOUD") {
            return clouds_yaml(&cloud, env).map(Some);
        }
        let Some(auth_url) = get("OS_AUTH_URL") else {
            return Ok(None);
        };
        let method = if let Some(secret) = get("OS_APPLICATION_CREDENTIAL_SECRET") {
            Method::ApplicationCredential {
                id: get("OS_APPLICATION_CREDENTIAL_ID"),
                name: get("OS_APPLICATION_CREDENTIAL_NAME"),
                username: get("OS_USERNAME"),
                user_domain_name: get("OS_USER_DOMAIN_NAME"),
                secret,
            }
        } else if let Some(token) = get("OS_TOKEN") {
            Method::Token { token }
        } else {
            Method::Password {
                username: get("OS_USERNAME"),
                user_id: get("OS_USER_ID"),
                password: get("OS_PASSWORD").ok_or_else(|| config_error("OS_AUTH_URL is set but OS_PASSWORD (or OS_APPLICATION_CREDENTIAL_SECRET, or OS_TOKEN) is not"))?,
                user_domain_name: get("OS_USER_DOMAIN_NAME").or_else(|| get("OS_DEFAULT_DOMAIN_NAME")),
                user_domain_id: get("OS_USER_DOMAIN_ID").or_else(|| get("OS_DEFAULT_DOMAIN_ID")),
            }
        };
        Ok(Some(Credentials {
            auth_url,
            method,
            project: Project {
                id: get("OS_PROJECT_ID").or_else(|| get("OS_TENANT_ID")),
                name: get("OS_PROJECT_NAME").or_else(|| get("OS_TENANT_NAME")),
                domain_name: get("OS_PROJECT_DOMAIN_NAME")
                    .or_else(|| get("OS_DEFAULT_DOMAIN_NAME")),
                domain_id: get("OS_PROJECT_DOMAIN_ID").or_else(|| get("OS_DEFAULT_DOMAIN_ID")),
            },
            region: get("OS_REGION_NAME"),
            interface: get("OS_INTERFACE").unwrap_or_else(|| "public".into()),
            ca_bundle: get("OS_CACERT").map(PathBuf::from),
        }))
    }

    /// The `auth` part of `POST /v3/auth/tokens`.
    pub fn auth_body(&self) -> Value {
        let identity = match &self.method {
            Method::Password {
                username,
                user_id,
                password,
                user_domain_name,
                user_domain_id,
            } => {
                let mut user = json!({"password": password});
                if let Some(id) = user_id {
                    user["id"] = json!(id);
                } else {
                    user["name"] = json!(username);
                    user["domain"] = domain(user_domain_name, user_domain_id);
                }
                json!({"methods": ["password"], "password": {"user": user}})
            }
            Method::ApplicationCredential {
                id,
                name,
                username,
                user_domain_name,
                secret,
            } => {
                let mut cred = json!({"secret": secret});
                if let Some(id) = id {
                    cred["id"] = json!(id);
                } else {
                    cred["name"] = json!(name);
                    cred["user"] =
                        json!({"name": username, "domain": domain(user_domain_name, &None)});
                }
                json!({"methods": ["application_credential"], "application_credential": cred})
            }
            Method::Token { token } => json!({"methods": ["token"], "token": {"id": token}}),
        };
        let mut auth = json!({"identity": identity});
        // An application credential carries its own scope.
        if !matches!(self.method, Method::ApplicationCredential { .. }) {
            let p = &self.project;
            if let Some(id) = &p.id {
                auth["scope"] = json!({"project": {"id": id}});
            } else if let Some(name) = &p.name {
                auth["scope"] = json!({"project": {"name": name, "domain": domain(&p.domain_name, &p.domain_id)}});
            }
        }
        json!({"auth": auth})
    }
}

fn domain(name: &Option<String>, id: &Option<String>) -> Value {
    match (name, id) {
        (_, Some(id)) => json!({"id": id}),
        (Some(name), None) => json!({"name": name}),
        (None, None) => json!({"id": "default"}),
    }
}

fn search_paths(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if let Some(file) = env("OS_CLIENT_CONFIG_FILE").filter(|f| !f.is_empty()) {
        return vec![PathBuf::from(file)];
    }
    let mut paths = vec![PathBuf::from("clouds.yaml")];
    let config_home = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(dir) = config_home {
        paths.push(dir.join("openstack/clouds.yaml"));
    }
    paths.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    paths
}

/// The named cloud from the first clouds.yaml on the search path.
fn clouds_yaml(
    cloud: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, OpenStackError> {
    let paths = search_paths(env);
    let Some(path) = paths.iter().find(|p| p.is_file()) else {
        return Err(config_error(format!(
            "OS_CLOUD={cloud} but no clouds.yaml in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
    let doc: Value = serde_saphyr::from_str(&text)
        .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
    let entry = doc
        .get("clouds")
        .and_then(|c| c.get(cloud))
        .ok_or_else(|| config_error(format!("{}: no cloud named {cloud:?}", path.display())))?;
    credentials_from_cloud(entry)
        .map_err(|e| config_error(format!("{} (cloud {cloud}): {e}", path.display())))
}

fn credentials_from_cloud(entry: &Value) -> Result<Credentials, String> {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let auth = entry.get("auth").ok_or("no auth section")?;
    let auth_url = s(auth, "auth_url").ok_or("no auth.auth_url")?;
    let auth_type = s(entry, "auth_type").unwrap_or_else(|| "password".into());
    let method = match auth_type.as_str() {
        "v3applicationcredential" => Method::ApplicationCredential {
            id: s(auth, "application_credential_id"),
            name: s(auth, "application_credential_name"),
            username: s(auth, "username"),
            user_domain_name: s(auth, "user_domain_name"),
            secret: s(auth, "application_credential_secret")
                .ok_or("no auth.application_credential_secret")?,
        },
        "token" | "v3token" => Method::Token {
            token: s(auth, "token").ok_or("no auth.token")?,
        },
        "password" | "v3password" => Method::Password {
            username: s(auth, "username"),
            user_id: s(auth, "user_id"),
            password: s(auth, "password").ok_or("no auth.password")?,
            user_domain_name: s(auth, "user_domain_name").or_else(|| s(auth, "domain_name")),
            user_domain_id: s(auth, "user_domain_id").or_else(|| s(auth, "domain_id")),
        },
        other => {
            return Err(format!(
                "auth_type {other:?} is not supported (password, v3applicationcredential, token)"
            ));
        }
    };
    Ok(Credentials {
        auth_url,
        method,
        project: Project {
            id: s(auth, "project_id"),
            name: s(auth, "project_name"),
            domain_name: s(auth, "project_domain_name").or_else(|| s(auth, "domain_name")),
            domain_id: s(auth, "project_domain_id").or_else(|| s(auth, "domain_id")),
        },
        region: s(entry, "region_name"),
        interface: s(entry, "interface").unwrap_or_else(|| "public".into()),
        ca_bundle: s(entry, "cacert").map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn no_cloud_configured_is_none() {
        assert_eq!(Credentials::from_env(&env_of(&[])).unwrap(), None);
    }

    #[test]
    fn os_variables_give_password_credentials_scoped_to_the_project() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_USERNAME", "admin"),
            ("OS_PASSWORD", "secret"),
            ("OS_PROJECT_NAME", "admin"),
            ("OS_USER_DOMAIN_NAME", "Default"),
            ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ("OS_REGION_NAME", "RegionOne"),
        ]);
        let c = Credentials::from_env(&env).unwrap().unwrap();
        assert_eq!(c.interface, "public");
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        let body = c.auth_body();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["name"],
            "admin"
        );
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(body["auth"]["scope"]["project"]["name"], "admin");
        assert!(!format!("{c:?}").contains("secret"), "no secret in Debug");
    }

    #[test]
    fn application_credentials_carry_their_own_scope() {
        let env = env_of(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "ac1"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s3"),
            ("OS_PROJECT_NAME", "ignored"),
        ]);
        let body = Credentials::from_env(&env).unwrap().unwrap().auth_body();
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["id"],
            "ac1"
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn a_password_is_required_for_the_password_method() {
        let env = env_of(&[("OS_AUTH_URL", "http://k/v3"), ("OS_USERNAME", "u")]);
        assert!(Credentials::from_env(&env).is_err());
    }

    #[test]
    fn clouds_yaml_is_read_from_the_client_config_file() {
        let dir = std::env::temp_dir().join(format!("svc-lbaas-clouds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("clouds.yaml");
        std::fs::write(
            &file,
            "clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: admin\n      password: secret\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: internal\n  appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://k/v3\n      application_credential_id: id1\n      application_credential_secret: sec\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let env = env_of(&[("OS_CLOUD", "lab"), ("OS_CLIENT_CONFIG_FILE", &path)]);
        let c = Credentials::from_env(&env).unwrap().unwrap();
        assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(c.interface, "internal");
        assert_eq!(c.project.name.as_deref(), Some("admin"));
        let env = env_of(&[("OS_CLOUD", "appcred"), ("OS_CLIENT_CONFIG_FILE", &path)]);
        let c = Credentials::from_env(&env).unwrap().unwrap();
        assert!(matches!(c.method, Method::ApplicationCredential { .. }));
        let env = env_of(&[("OS_CLOUD", "missing"), ("OS_CLIENT_CONFIG_FILE", &path)]);
        assert!(
            Credentials::from_env(&env)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }
}
