//! Barbican's HTTP API over the simulated cloud: secrets and containers.

use crate::sim::barbican::*;
use crate::sim::common::{new_id, timestamp};
use crate::sim::json::{ApiError, ApiKind, ApiResult, Body, Query, parse_body, respond};
use crate::sim::state::SimState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
type Sim = State<std::sync::Arc<SimState>>;

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
