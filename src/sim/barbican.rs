//! Barbican v1, the subset Octavia and svc-lbaas use: secrets (stored
//! whole, payload never listed) and certificate containers, created, listed
//! by name (names are not unique), read and deleted (never refused: a
//! deleted secret leaves its containers); and the check Octavia makes of a
//! listener's certificate reference before it takes it (a 400 when Barbican
//! cannot give it a certificate and a key). As real Barbican 23 answers in
//! tests/openstack: shapes and messages. Not simulated: ACLs (Octavia adds
//! its user with the caller's token), and Octavia's parse of the
//! certificate (a key that does not match its certificate passes here).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::json::{ApiError, ApiKind, ApiResult, Body, Query, parse_body, respond};
use super::{SimState, new_id, timestamp};

type Sim = State<std::sync::Arc<SimState>>;

/// Barbican's `secret_type`s.
const SECRET_TYPES: [&str; 7] = [
    "symmetric",
    "public",
    "private",
    "passphrase",
    "certificate",
    "opaque",
    "pkcs12",
];
/// A certificate container's reference names.
const CERTIFICATE_REFS: [&str; 4] = [
    "certificate",
    "private_key",
    "private_key_passphrase",
    "intermediates",
];

#[derive(Debug, Clone)]
struct Secret {
    id: String,
    name: Option<String>,
    secret_type: String,
    payload: Option<String>,
    content_type: Option<String>,
    created: String,
}

#[derive(Debug, Clone)]
struct Container {
    id: String,
    name: Option<String>,
    kind: String,
    /// `(name, secret id)`.
    refs: Vec<(String, String)>,
    created: String,
}

#[derive(Debug, Default)]
pub struct Barbican {
    secrets: Vec<Secret>,
    containers: Vec<Container>,
}

impl Barbican {
    fn secret_ref(base: &str, id: &str) -> String {
        format!("{base}/key-manager/v1/secrets/{id}")
    }

    fn container_ref(base: &str, id: &str) -> String {
        format!("{base}/key-manager/v1/containers/{id}")
    }

    fn secret_json(base: &str, s: &Secret) -> Value {
        json!({
            "secret_ref": Self::secret_ref(base, &s.id), "name": s.name,
            "secret_type": s.secret_type, "status": "ACTIVE",
            "content_types": s.content_type.as_ref().map(|c| json!({"default": c})),
            "algorithm": null, "bit_length": null, "mode": null, "expiration": null,
            "created": s.created, "updated": s.created, "creator_id": super::keystone::USER_ID,
        })
    }

    fn container_json(base: &str, c: &Container) -> Value {
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
fn not_found(what: &str) -> ApiError {
    let message = match what {
        "secret" => "Secret not found.",
        _ => "Secrets container not found.",
    };
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", message)
}

pub fn router() -> Router<std::sync::Arc<SimState>> {
    Router::new()
        .route("/v1/secrets", get(list_secrets).post(create_secret))
        .route("/v1/secrets/{id}", get(show_secret).delete(delete_secret))
        .route(
            "/v1/containers",
            get(list_containers).post(create_container),
        )
        .route(
            "/v1/containers/{id}",
            get(show_container).delete(delete_container),
        )
}

async fn create_secret(State(s): Sim, body: Bytes) -> Response {
    respond(
        ApiKind::Barbican,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::object(
                &body,
                "secret",
                &[
                    "name",
                    "payload",
                    "payload_content_type",
                    "payload_content_encoding",
                    "secret_type",
                    "algorithm",
                    "bit_length",
                    "mode",
                    "expiration",
                ],
            )?;
            let payload = b.string("payload")?;
            let content_type = b.string("payload_content_type")?;
            if payload.is_some() != content_type.is_some() {
                return Err(ApiError::bad_request(
                    "Provided object does not match schema 'Secret': If 'payload' is supplied, 'payload_content_type' must also be supplied.",
                ));
            }
            if payload.as_deref() == Some("") {
                return Err(ApiError::bad_request(
                    "Provided object does not match schema 'Secret': If 'payload' specified, must be non empty.",
                ));
            }
            let secret_type = b
                .choice("secret_type", &SECRET_TYPES)?
                .unwrap_or_else(|| "opaque".into());
            let secret = Secret {
                id: new_id(),
                name: b.string("name")?,
                secret_type,
                payload,
                content_type,
                created: timestamp(),
            };
            let reference = Barbican::secret_ref(&s.base_url, &secret.id);
            s.cloud().barbican.secrets.push(secret);
            Ok((StatusCode::CREATED, json!({ "secret_ref": reference })))
        })(),
    )
}

/// `?name=` (exact), `limit`, `offset`: Barbican's list filters.
fn listed<'a, T>(
    items: impl Iterator<Item = &'a T>,
    name_of: impl Fn(&T) -> Option<&str>,
    query: &Query,
) -> Result<(Vec<&'a T>, usize), ApiError>
where
    T: 'a,
{
    let name = query.get("name");
    let matching: Vec<&T> = items
        .filter(|i| name.is_none_or(|n| name_of(i) == Some(n)))
        .collect();
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match query.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad_request(format!("Invalid input for field/attribute {key}."))
            }),
        }
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", 10)?.min(100);
    let total = matching.len();
    Ok((
        matching.into_iter().skip(offset).take(limit).collect(),
        total,
    ))
}

async fn list_secrets(State(s): Sim, RawQuery(q): RawQuery) -> Response {
    list(
        &s,
        q.as_deref(),
        "secrets",
        |b| &b.secrets,
        |x| x.name.as_deref(),
        Barbican::secret_json,
    )
}

/// `GET /v1/<kind>`: the page the query asks for, and the total.
fn list<T>(
    s: &SimState,
    query: Option<&str>,
    kind: &str,
    items: impl Fn(&Barbican) -> &Vec<T>,
    name_of: impl Fn(&T) -> Option<&str>,
    json_of: impl Fn(&str, &T) -> Value,
) -> Response {
    respond(
        ApiKind::Barbican,
        (|| -> ApiResult {
            let query = Query::parse(query);
            let cloud = s.cloud();
            let (page, total) = listed(items(&cloud.barbican).iter(), name_of, &query)?;
            let page: Vec<Value> = page.into_iter().map(|x| json_of(&s.base_url, x)).collect();
            let mut body = serde_json::Map::new();
            body.insert(kind.to_string(), Value::Array(page));
            body.insert("total".into(), json!(total));
            Ok((StatusCode::OK, Value::Object(body)))
        })(),
    )
}

async fn show_secret(State(s): Sim, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let found = cloud.barbican.secrets.iter().find(|x| x.id == id);
    respond(
        ApiKind::Barbican,
        found
            .map(|x| (StatusCode::OK, Barbican::secret_json(&s.base_url, x)))
            .ok_or_else(|| not_found("secret")),
    )
}

async fn delete_secret(State(s): Sim, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let barbican = &mut cloud.barbican;
    let before = barbican.secrets.len();
    barbican.secrets.retain(|x| x.id != id);
    // Barbican never refuses it: a container loses its reference instead.
    for c in &mut barbican.containers {
        c.refs.retain(|(_, sid)| sid != &id);
    }
    let result = if barbican.secrets.len() < before {
        Ok((StatusCode::NO_CONTENT, Value::Null))
    } else {
        Err(not_found("secret"))
    };
    respond(ApiKind::Barbican, result)
}

async fn create_container(State(s): Sim, body: Bytes) -> Response {
    respond(
        ApiKind::Barbican,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::object(&body, "container", &["name", "type", "secret_refs"])?;
            let kind = b
                .choice("type", &["generic", "rsa", "certificate"])?
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Provided object does not match schema 'Container': 'type' is a required property.",
                    )
                })?;
            let mut cloud = s.cloud();
            let prefix = format!("{}/key-manager/v1/secrets/", s.base_url);
            let mut refs = Vec::new();
            for r in b
                .value("secret_refs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                let reference = r
                    .get("secret_ref")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if kind == "certificate" && !CERTIFICATE_REFS.contains(&name) {
                    return Err(ApiError::bad_request(format!(
                        "Provided object does not match schema 'Container': only 'private_key', 'certificate', 'private_key_passphrase', or 'intermediates' reference names are allowed for Certificate type, not {name}."
                    )));
                }
                let id = reference.strip_prefix(&prefix).unwrap_or_default();
                if !cloud.barbican.secrets.iter().any(|x| x.id == id) {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("Secret provided for '{name}' doesn't exist."),
                    ));
                }
                refs.push((name.to_string(), id.to_string()));
            }
            if kind == "certificate" && !refs.iter().any(|(n, _)| n == "certificate") {
                return Err(ApiError::bad_request(
                    "Provided object does not match schema 'Container': 'certificate' reference is required for Certificate type.",
                ));
            }
            let container = Container {
                id: new_id(),
                name: b.string("name")?,
                kind,
                refs,
                created: timestamp(),
            };
            let reference = Barbican::container_ref(&s.base_url, &container.id);
            cloud.barbican.containers.push(container);
            Ok((StatusCode::CREATED, json!({ "container_ref": reference })))
        })(),
    )
}

async fn list_containers(State(s): Sim, RawQuery(q): RawQuery) -> Response {
    list(
        &s,
        q.as_deref(),
        "containers",
        |b| &b.containers,
        |x| x.name.as_deref(),
        Barbican::container_json,
    )
}

async fn show_container(State(s): Sim, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let found = cloud.barbican.containers.iter().find(|x| x.id == id);
    respond(
        ApiKind::Barbican,
        found
            .map(|x| (StatusCode::OK, Barbican::container_json(&s.base_url, x)))
            .ok_or_else(|| not_found("container")),
    )
}

async fn delete_container(State(s): Sim, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let containers = &mut cloud.barbican.containers;
    let before = containers.len();
    containers.retain(|x| x.id != id);
    let result = if containers.len() < before {
        Ok((StatusCode::NO_CONTENT, Value::Null))
    } else {
        Err(not_found("container"))
    };
    respond(ApiKind::Barbican, result)
}
