//! Keystone's HTTP API over the simulated cloud: version documents, tokens
//! and the catalog, and the token check every other route passes.

use crate::sim::common::lock;
use crate::sim::json::{ApiError, ApiKind};
use crate::sim::keystone::*;
use crate::sim::state::SimState;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::time::Instant;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .route("/v3/auth/tokens", get(validate).post(issue).head(validate))
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "The request you have made requires authentication.",
    )
}

fn version_doc(state: &SimState) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", state.base_url)}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(State(state): State<Arc<SimState>>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [version_doc(&state)]}})),
    )
        .into_response()
}

async fn version(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"version": version_doc(&state)}))
}

fn catalog(state: &SimState) -> Value {
    let entry = |kind: &str, name: &str, path: &str| {
        let url = format!("{}{}", state.base_url, path);
        let endpoints: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|interface| {
                json!({
                    "id": format!("{name}-{interface}"),
                    "interface": interface,
                    "region": crate::sim::common::REGION,
                    "region_id": crate::sim::common::REGION,
                    "url": url,
                })
            })
            .collect();
        json!({"id": format!("{name}-service"), "type": kind, "name": name, "endpoints": endpoints})
    };
    json!([
        entry("identity", "keystone", "/v3/"),
        entry("load-balancer", "octavia", "/load-balancer"),
        entry("network", "neutron", "/network"),
        entry("key-manager", "barbican", "/key-manager"),
    ])
}

/// Whether the identity part of an auth request names the simulator's user.
fn authenticate(identity: &Value, state: &SimState) -> bool {
    let methods: Vec<&str> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let now = Instant::now();
    methods.iter().any(|method| match *method {
        "password" => {
            let user = &identity["password"]["user"];
            let name_ok = user["name"].as_str() == Some(crate::sim::common::USER)
                || user["id"].as_str() == Some(USER_ID);
            let domain = &user["domain"];
            let domain_ok = user["id"].as_str() == Some(USER_ID)
                || domain["name"].as_str() == Some(crate::sim::common::DOMAIN)
                || domain["id"].as_str() == Some(DOMAIN_ID);
            name_ok && domain_ok && user["password"].as_str() == Some(crate::sim::common::PASSWORD)
        }
        "application_credential" => {
            let cred = &identity["application_credential"];
            let id_ok = cred["id"].as_str() == Some(crate::sim::common::APP_CREDENTIAL_ID)
                || (cred["name"].as_str() == Some(crate::sim::common::APP_CREDENTIAL_ID)
                    && (cred["user"]["name"].as_str() == Some(crate::sim::common::USER)
                        || cred["user"]["id"].as_str() == Some(USER_ID)));
            id_ok && cred["secret"].as_str() == Some(crate::sim::common::APP_CREDENTIAL_SECRET)
        }
        "token" => identity["token"]["id"]
            .as_str()
            .is_some_and(|t| lock(&state.tokens).valid(t, now).is_some()),
        _ => false,
    })
}

/// `Some(true)`: scoped to the project; `Some(false)`: unscoped; `None`: a scope we do not have.
fn scope(body: &Value, app_credential: bool) -> Option<bool> {
    let Some(scope) = body["auth"].get("scope").filter(|s| !s.is_null()) else {
        // An application credential is always scoped to its project.
        return Some(app_credential);
    };
    let project = &scope["project"];
    let by_id = project["id"].as_str() == Some(PROJECT_ID);
    let by_name = project["name"].as_str() == Some(crate::sim::common::PROJECT)
        && (project["domain"]["name"].as_str() == Some(crate::sim::common::DOMAIN)
            || project["domain"]["id"].as_str() == Some(DOMAIN_ID));
    (by_id || by_name).then_some(true)
}

async fn issue(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!("Invalid JSON body: {e}"))
                .render(ApiKind::Keystone);
        }
    };
    let identity = &body["auth"]["identity"];
    if !authenticate(identity, &state) {
        return unauthorized().render(ApiKind::Keystone);
    }
    let app_credential = identity["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|v| v == "application_credential"));
    let Some(scoped) = scope(&body, app_credential) else {
        return unauthorized().render(ApiKind::Keystone);
    };
    let ttl = state.config.token_ttl;
    let token = format!("gAAAAA{}", uuid::Uuid::new_v4().simple());
    lock(&state.tokens).issued.insert(
        token.clone(),
        Token {
            expires: Instant::now() + ttl,
            scoped,
        },
    );
    let expires_at = format!(
        "{}.000000Z",
        crate::sim::common::format_time(std::time::SystemTime::now() + ttl)
    );
    let mut doc = json!({
        "methods": identity["methods"].clone(),
        "user": {"id": USER_ID, "name": crate::sim::common::USER, "domain": {"id": DOMAIN_ID, "name": crate::sim::common::DOMAIN}, "password_expires_at": null},
        "audit_ids": [uuid::Uuid::new_v4().simple().to_string()],
        "expires_at": expires_at,
        "issued_at": format!("{}.000000Z", crate::sim::common::timestamp()),
    });
    if scoped {
        doc["project"] = json!({"id": PROJECT_ID, "name": crate::sim::common::PROJECT, "domain": {"id": DOMAIN_ID, "name": crate::sim::common::DOMAIN}});
        doc["roles"] =
            json!([{"id": "admin-role", "name": "admin"}, {"id": "member-role", "name": "member"}]);
        doc["catalog"] = catalog(&state);
        doc["is_domain"] = json!(false);
    }
    let mut res = (StatusCode::CREATED, Json(json!({"token": doc}))).into_response();
    if let Ok(v) = token.parse() {
        res.headers_mut().insert("x-subject-token", v);
    }
    res
}

async fn validate(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let now = Instant::now();
    let auth = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    let subject = headers.get("x-subject-token").and_then(|v| v.to_str().ok());
    let tokens = lock(&state.tokens);
    match (auth, subject) {
        (Some(a), Some(s)) if tokens.valid(a, now).is_some() && tokens.valid(s, now).is_some() => {
            StatusCode::OK.into_response()
        }
        (Some(a), Some(_)) if tokens.valid(a, now).is_some() => {
            ApiError::not_found("NotFound", "Could not find token.").render(ApiKind::Keystone)
        }
        _ => unauthorized().render(ApiKind::Keystone),
    }
}

/// Middleware for Octavia and Neutron: a valid, project-scoped `X-Auth-Token`.
pub async fn require_token(
    State(state): State<Arc<SimState>>,
    req: Request,
    next: Next,
) -> Response {
    let ok = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            lock(&state.tokens)
                .valid(t, Instant::now())
                .is_some_and(|t| t.scoped)
        });
    if !ok {
        // keystonemiddleware answers in Keystone's shape for every service.
        return unauthorized().render(ApiKind::Keystone);
    }
    next.run(req).await
}
