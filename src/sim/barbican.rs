//! Barbican v1, the subset Octavia and svc-lbaas use: secrets (stored
//! whole, payload never listed) and certificate containers, created, listed
//! by name (names are not unique), read and deleted (never refused: a
//! deleted secret leaves its containers); and the check Octavia makes of a
//! listener's certificate reference before it takes it (a 400 when Barbican
//! cannot give it a certificate and a key). As real Barbican 23 answers in
//! tests/openstack: shapes and messages. Not simulated: ACLs (Octavia adds
//! its user with the caller's token), and Octavia's parse of the
//! certificate (a key that does not match its certificate passes here).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::json::ApiError;

/// Barbican's `secret_type`s.
pub(crate) const SECRET_TYPES: [&str; 7] = [
    "symmetric",
    "public",
    "private",
    "passphrase",
    "certificate",
    "opaque",
    "pkcs12",
];
/// A certificate container's reference names.
pub(crate) const CERTIFICATE_REFS: [&str; 4] = [
    "certificate",
    "private_key",
    "private_key_passphrase",
    "intermediates",
];

#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) secret_type: String,
    pub(crate) payload: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) created: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) kind: String,
    /// `(name, secret id)`.
    pub(crate) refs: Vec<(String, String)>,
    pub(crate) created: String,
}

#[derive(Debug, Default)]
pub struct Barbican {
    pub(crate) secrets: Vec<Secret>,
    pub(crate) containers: Vec<Container>,
}

impl Barbican {
    pub(crate) fn secret_ref(base: &str, id: &str) -> String {
        format!("{base}/key-manager/v1/secrets/{id}")
    }

    pub(crate) fn container_ref(base: &str, id: &str) -> String {
        format!("{base}/key-manager/v1/containers/{id}")
    }

    pub(crate) fn secret_json(base: &str, s: &Secret) -> Value {
        json!({
            "secret_ref": Self::secret_ref(base, &s.id), "name": s.name,
            "secret_type": s.secret_type, "status": "ACTIVE",
            "content_types": s.content_type.as_ref().map(|c| json!({"default": c})),
            "algorithm": null, "bit_length": null, "mode": null, "expiration": null,
            "created": s.created, "updated": s.created, "creator_id": super::keystone::USER_ID,
        })
    }

    pub(crate) fn container_json(base: &str, c: &Container) -> Value {
        let refs: Vec<Value> = c
            .refs
            .iter()
            .map(|(n, id)| json!({"name": n, "secret_ref": Self::secret_ref(base, id)}))
            .collect();
        json!({
            "container_ref": Self::container_ref(base, &c.id), "name": c.name, "type": c.kind,
            "status": "ACTIVE", "secret_refs": refs, "consumers": [],
            "created": c.created, "updated": c.created, "creator_id": super::keystone::USER_ID,
        })
    }

    /// Octavia's check of a listener's certificate reference: a certificate
    /// container with a certificate and a private key, or a PKCS12 secret.
    pub fn check_certificate(&self, reference: &str) -> Result<(), ApiError> {
        let refused =
            || ApiError::bad_request(format!("Could not retrieve certificate: ['{reference}']"));
        // Octavia's Barbican client reads the reference's id, whatever its host.
        let (rest, id) = reference.rsplit_once('/').unwrap_or_default();
        let ok = if rest.ends_with("/containers") {
            self.containers.iter().any(|c| {
                c.id == id
                    && c.kind == "certificate"
                    && ["certificate", "private_key"].iter().all(|n| {
                        c.refs.iter().any(|(rn, sid)| {
                            rn == n
                                && self
                                    .secrets
                                    .iter()
                                    .any(|s| &s.id == sid && s.payload.is_some())
                        })
                    })
            })
        } else if rest.ends_with("/secrets") {
            // A PKCS12 bundle (binary); a PEM secret is "unreadable" to Octavia.
            self.secrets.iter().any(|s| {
                s.id == id
                    && s.payload.is_some()
                    && s.content_type.as_deref() == Some("application/octet-stream")
            })
        } else {
            false
        };
        if ok { Ok(()) } else { Err(refused()) }
    }
}

/// Barbican's 404s: `Secret not found.`, `Secrets container not found.`.
pub(crate) fn not_found(what: &str) -> ApiError {
    let message = match what {
        "secret" => "Secret not found.",
        _ => "Secrets container not found.",
    };
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", message)
}
