//! Barbican, for the certificates of TERMINATED_HTTPS listeners that come
//! from Kubernetes TLS Secrets: a Service's certificate containers are found
//! by their name (Barbican has no tags), made from a Secret (its parts as
//! secrets, then the container), and deleted with their secrets. Payloads
//! go in request bodies only, never into a URL or a log line.

use reqwest::Method;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cloud::Cloud;
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::{Calls, Service};
use crate::certificate::TlsMaterial;
use crate::model::StoredCertificate;

#[derive(Serialize)]
struct SecretCreate<'a> {
    name: String,
    payload: &'a str,
    payload_content_type: &'static str,
    secret_type: &'static str,
}

#[derive(Deserialize)]
struct SecretCreated {
    secret_ref: Option<String>,
}

#[derive(Serialize)]
struct SecretRef<'a> {
    name: &'static str,
    secret_ref: &'a str,
}

#[derive(Serialize)]
struct ContainerCreate<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    secret_refs: Vec<SecretRef<'a>>,
}

#[derive(Deserialize)]
struct ContainerCreated {
    container_ref: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Containers {
    containers: Vec<ContainerRead>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContainerRead {
    container_ref: Option<String>,
    name: Option<String>,
    secret_refs: Vec<SecretRefRead>,
    created: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SecretRefRead {
    name: Option<String>,
    secret_ref: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SecretRead {
    name: Option<String>,
}

/// A container's secrets are named `<container name>:<digest>:<part>`.
fn secret_name(container: &str, digest: &str, part: &str) -> String {
    format!("{container}:{digest}:{part}")
}

impl Cloud {
    /// Barbican's API root (`None`: the catalog has no key-manager).
    async fn key_manager(&self) -> Result<Option<String>, OpenStackError> {
        self.session().endpoint(Service::KeyManager).await
    }

    /// The path of a Barbican reference of `kind` (`containers`,
    /// `secrets`): `…/<kind>/<uuid>`, read below this cloud's Barbican
    /// whatever host the reference names (Barbican writes its own
    /// `host_href`, which may not be the catalog's URL; Octavia too reads
    /// only the id), so the token goes to the catalog's Barbican only.
    pub fn barbican_path(kind: &'static str, reference: &str) -> Result<ApiPath, OpenStackError> {
        let (rest, id) = reference.rsplit_once('/').unwrap_or_default();
        if !rest.ends_with(&format!("/{kind}")) || !crate::names::is_uuid(id) {
            return Err(OpenStackError::Config(format!(
                "{reference} is not a Barbican {kind} reference"
            )));
        }
        Ok(ApiPath::of(kind).id("Barbican id", id)?)
    }

    async fn barbican<T: serde::de::DeserializeOwned>(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<Option<T>, OpenStackError> {
        self.session()
            .call_as(calls, Service::KeyManager, method, &path, body)
            .await
    }

    /// The certificate containers named `name`, each with the digest its
    /// certificate secret's name carries (one read for the list, one per
    /// container). None where the cloud has no Barbican.
    pub async fn certificates(
        &self,
        calls: &Calls,
        name: &str,
    ) -> Result<Vec<StoredCertificate>, OpenStackError> {
        if self.key_manager().await?.is_none() {
            return Ok(Vec::new());
        }
        let path = ApiPath::of("containers").query(&[("name", name), ("limit", "100")]);
        let listed: Containers = self
            .barbican(calls, Method::GET, path, None)
            .await?
            .unwrap_or_default();
        let mut found = Vec::new();
        for c in listed.containers {
            // Barbican matches names exactly; a container of another name is not ours.
            let (Some(container_ref), Some(true)) = (c.container_ref, c.name.map(|n| n == name))
            else {
                continue;
            };
            let certificate = c
                .secret_refs
                .iter()
                .find(|r| r.name.as_deref() == Some("certificate"))
                .and_then(|r| r.secret_ref.clone());
            let digest = match certificate {
                Some(r) => {
                    let path = Self::barbican_path("secrets", &r)?;
                    let read: Option<SecretRead> =
                        match self.barbican(calls, Method::GET, path, None).await {
                            Ok(s) => s,
                            Err(e) if e.is_not_found() => None,
                            Err(e) => return Err(e),
                        };
                    read.and_then(|s| s.name).and_then(|n| {
                        let rest = n.strip_prefix(name)?.strip_prefix(':')?;
                        Some(rest.strip_suffix(":certificate")?.to_string())
                    })
                }
                None => None,
            };
            found.push(StoredCertificate {
                container_ref,
                digest,
                created: c.created,
            });
        }
        Ok(found)
    }

    /// Stores a Secret's certificate as the secrets `certificate`,
    /// `private_key` (and `intermediates`) and a certificate container
    /// `name`; answers the container's reference. What was made before a
    /// failure is deleted again.
    pub async fn store_certificate(
        &self,
        calls: &Calls,
        name: &str,
        material: &TlsMaterial,
    ) -> Result<String, OpenStackError> {
        let parts = [
            ("certificate", "certificate", Some(&material.certificate)),
            ("private_key", "private", Some(&material.private_key)),
            (
                "intermediates",
                "certificate",
                material.intermediates.as_ref(),
            ),
        ];
        let mut made: Vec<(&'static str, String)> = Vec::new();
        let result = async {
            for (part, secret_type, payload) in parts {
                let Some(payload) = payload else { continue };
                let body = serde_json::to_value(SecretCreate {
                    name: secret_name(name, &material.digest, part),
                    payload,
                    payload_content_type: "text/plain",
                    secret_type,
                })
                .map_err(|e| OpenStackError::Config(format!("secret body: {e}")))?;
                let created: Option<SecretCreated> = self
                    .barbican(calls, Method::POST, ApiPath::of("secrets"), Some(&body))
                    .await?;
                let reference = created.and_then(|c| c.secret_ref).ok_or_else(|| {
                    OpenStackError::Config("Barbican answered no secret_ref".into())
                })?;
                made.push((part, reference));
            }
            let body = serde_json::to_value(ContainerCreate {
                name,
                kind: "certificate",
                secret_refs: made
                    .iter()
                    .map(|(part, r)| SecretRef {
                        name: part,
                        secret_ref: r,
                    })
                    .collect(),
            })
            .map_err(|e| OpenStackError::Config(format!("container body: {e}")))?;
            let created: Option<ContainerCreated> = self
                .barbican(calls, Method::POST, ApiPath::of("containers"), Some(&body))
                .await?;
            created
                .and_then(|c| c.container_ref)
                .ok_or_else(|| OpenStackError::Config("Barbican answered no container_ref".into()))
        }
        .await;
        if result.is_err() {
            for (_, r) in &made {
                if let Ok(path) = Self::barbican_path("secrets", r) {
                    let _ = self
                        .barbican::<IgnoredAny>(calls, Method::DELETE, path, None)
                        .await;
                }
            }
        }
        result
    }

    /// Deletes a certificate container and its secrets (gone already:
    /// done). The secrets first: a failure leaves the container, which the
    /// next collection finds by name and tries again.
    pub async fn delete_certificate(
        &self,
        calls: &Calls,
        container_ref: &str,
    ) -> Result<(), OpenStackError> {
        let path = Self::barbican_path("containers", container_ref)?;
        let read: Option<ContainerRead> =
            match self.barbican(calls, Method::GET, path.clone(), None).await {
                Ok(c) => c,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
        let gone = |r: Result<Option<IgnoredAny>, OpenStackError>| match r {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        };
        for r in read.map(|c| c.secret_refs).unwrap_or_default() {
            if let Some(Ok(path)) = r
                .secret_ref
                .as_deref()
                .map(|s| Self::barbican_path("secrets", s))
            {
                gone(self.barbican(calls, Method::DELETE, path, None).await)?;
            }
        }
        gone(self.barbican(calls, Method::DELETE, path, None).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_paths_of_their_kind_and_uuid_on_this_barbican() {
        let id = "6e1b2f0a-1f0e-4f5e-9d4c-3b2a1f0e9d8c";
        for host in [
            "http://127.0.0.1:9311/v1",
            "https://kms.internal:443/key-manager/v1",
        ] {
            let path =
                Cloud::barbican_path("containers", &format!("{host}/containers/{id}")).unwrap();
            assert_eq!(path.as_string(), format!("/containers/{id}"));
        }
        for bad in [
            format!("http://h/v1/containers/../secrets/{id}"),
            format!("http://h/v1/secrets/{id}"),
            format!("http://h/v1/containers/{id}?x=1"),
            format!("http://h/v1/containers/{id}/"),
            "http://h/v1/containers/not-a-uuid".to_string(),
        ] {
            assert!(Cloud::barbican_path("containers", &bad).is_err(), "{bad}");
        }
    }
}
