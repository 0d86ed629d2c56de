//! The REST handlers on axum: thin handlers that decode, authorize (the
//! namespace check of `shared`), call the reconciler and encode; every error
//! is an RFC 9457 problem (`error`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth;
use super::error::{ProblemResponse, converged_status};
use crate::error::Kind;
use crate::error::Problem;
use crate::model::ServiceRef;
use crate::reconcile::events::EventItem;
use crate::reconcile::sync::SyncMode;
use crate::reconcile::{ApplyInput, ApplyOptions};

use super::schema;
use super::shared::{
    AppState, answer_status, authorize, gateway_input, named_gateway, put_outcome, sync_json,
    sync_scope,
};

/// `Authorization: Bearer <token>` when tokens are configured: 401 without a
/// known one; the caller goes on to the handler, which checks the namespace.
pub(super) async fn authenticate(
    State(s): State<Arc<AppState>>,
    mut req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let caller = match auth::authenticate(s.tokens.as_ref(), presented) {
        Ok(c) => c,
        Err(detail) => {
            let p = Problem::of(Kind::Unauthenticated, detail);
            let mut res = ProblemResponse(Box::new(p)).into_response();
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return res;
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// `x-request-id` in (or a new one) and out, and a span carrying it.
pub(super) async fn request_id(req: Request<axum::body::Body>, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = req.method().clone();
    let mut res = tracing::Instrument::instrument(next.run(req), span).await;
    crate::metrics::global().http_request(&method, &route, res.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// A path the API does not have: a problem too, never an empty body.
pub(super) async fn no_route(uri: axum::http::Uri) -> ProblemResponse {
    let path: String = uri.path().chars().take(200).collect();
    ProblemResponse::of(
        Kind::NoRoute,
        format!("{path} is not a path of this API (see /openapi.json)"),
    )
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The OpenMetrics text exposition format", content_type = "application/openmetrics-text", body = String)))]
pub(super) async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        crate::metrics::global().render(),
    )
        .into_response()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive", body = Object)))]
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the cloud accepts the credentials.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "ready", body = Object),
    schema::ReadinessProblems))]
pub(super) async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    match s.reconciler.cloud.ready().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => ProblemResponse::from(crate::error::not_ready(&e)).into_response(),
    }
}

/// The body, or the problem to answer (413 past the limit, 400 otherwise).
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ProblemResponse> {
    body.map_err(|e| ProblemResponse::rejected(&e))
}

fn parse_json(bytes: &[u8]) -> Result<Value, ProblemResponse> {
    serde_json::from_slice(bytes).map_err(|e| {
        ProblemResponse::from(Problem::of(Kind::InvalidJson, e.to_string()).with_field("body"))
    })
}

fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ProblemResponse> {
    parse_json(&body_bytes(body)?)
}

fn input(body: Result<Bytes, BytesRejection>) -> Result<ApplyInput, ProblemResponse> {
    let bytes = body_bytes(body)?;
    // A well-formed body is read in one pass; any other is read again the
    // way that names what is wrong.
    if let Some(input) = ApplyInput::from_slice(&bytes) {
        return Ok(input);
    }
    ApplyInput::from_json(parse_json(&bytes)?)
        .map_err(|e| ProblemResponse(Box::new(Problem::from(&e))))
}

#[derive(Debug, Deserialize)]
pub(super) struct PlanQuery {
    #[serde(default)]
    offline: bool,
}

/// What apply would do now, or (`offline=true`) against empty state. No writes.
#[utoipa::path(post, path = "/v1/plan", tag = "services", request_body = schema::ApplyRequest,
    params(("offline" = Option<bool>, Query, description = "plan against empty state, no OpenStack reads")),
    responses((status = 200, description = "the plan", body = crate::response::PlanResponse),
    schema::RequestProblems))]
pub(super) async fn plan(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    q: Result<Query<PlanQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let Query(q) = q.map_err(bad_query)?;
    let input = input(body)?;
    authorize(&caller, input.namespace())?;
    let plan = s.reconciler.plan(&input, q.offline).await?;
    Ok(Json(plan).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ApplyQuery {
    wait: Option<bool>,
    timeout_s: Option<u64>,
    #[serde(rename = "keepFloatingIp")]
    keep_floating_ip: Option<bool>,
}

impl ApplyQuery {
    fn options(&self) -> ApplyOptions {
        ApplyOptions::requested(self.wait, self.timeout_s)
    }
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> ProblemResponse {
    ProblemResponse::from(Problem::of(Kind::InvalidQuery, e.body_text()).with_field("query"))
}

/// Converges OpenStack onto the Service; answers the status to write back.
#[utoipa::path(post, path = "/v1/apply", tag = "services", request_body = schema::ApplyRequest,
    params(
        ("wait" = Option<bool>, Query, description = "wait for ACTIVE (default true)"),
        ("timeout_s" = Option<u64>, Query, description = "the request's deadline in seconds, reads, writes and waits included (default 300)")),
    responses(
        (status = 200, description = "converged", body = crate::reconcile::ApplyResponse),
        (status = 202, description = "not converged yet (wait=false or the wait timed out); re-applying is safe", body = crate::reconcile::ApplyResponse),
    schema::RequestProblems))]
pub(super) async fn apply(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    q: Result<Query<ApplyQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let Query(q) = q.map_err(bad_query)?;
    let input = input(body)?;
    authorize(&caller, input.namespace())?;
    let answer = s.reconciler.apply(&input, q.options()).await?;
    Ok((converged_status(answer.converged), Json(answer)).into_response())
}

/// A Service named by the caller (a path, an event), validated as Kubernetes
/// validates names; `prefix` says where it came from.
fn named_service(namespace: &str, name: &str, prefix: &str) -> Result<ServiceRef, ProblemResponse> {
    crate::translate::parse_service_ref(namespace, name, prefix)
        .map_err(|e| ProblemResponse(Box::new(Problem::from(&e))))
}

/// The load balancer, floating IP and status read from OpenStack.
#[utoipa::path(get, path = "/v1/services/{namespace}/{name}", tag = "services",
    params(("namespace" = String, Path, description = "a DNS-1123 label", pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63),
        ("name" = String, Path, description = "a DNS-1035 label", pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 63)),
    responses(
        (status = 200, description = "found", body = crate::reconcile::ApplyResponse),
        schema::LookupProblems))]
pub(super) async fn get_service(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ProblemResponse> {
    let service = named_service(&namespace, &name, "path.")?;
    authorize(&caller, &namespace)?;
    let answer = s.reconciler.get(&service).await?;
    Ok(Json(answer).into_response())
}

/// Removes what this tool created for the Service.
#[utoipa::path(delete, path = "/v1/services/{namespace}/{name}", tag = "services",
    params(("namespace" = String, Path, description = "a DNS-1123 label", pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63),
        ("name" = String, Path, description = "a DNS-1035 label", pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length = 63),
        ("keepFloatingIp" = Option<bool>, Query, description = "only disassociate a floating IP this tool allocated"),
        ("wait" = Option<bool>, Query, description = "wait until deleted (default true)")),
    responses((status = 200, description = "the operations done (empty when nothing existed)", body = crate::reconcile::ApplyResponse),
    schema::RequestProblems))]
pub(super) async fn delete_service(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    Path((namespace, name)): Path<(String, String)>,
    q: Result<Query<ApplyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ProblemResponse> {
    let service = named_service(&namespace, &name, "path.")?;
    authorize(&caller, &namespace)?;
    let Query(q) = q.map_err(bad_query)?;
    let answer = s
        .reconciler
        .delete(&service, q.keep_floating_ip.unwrap_or(false), q.options())
        .await?;
    Ok(Json(answer).into_response())
}

fn item_json(i: &EventItem) -> Value {
    let mut v = json!({"type": i.event, "kind": i.kind, "namespace": i.namespace, "name": i.name});
    put_outcome(&mut v, &i.outcome);
    v
}

/// `POST /v1/events`: a watch event `{"type", "object"}` or a `List` (of
/// objects, or of events). Services are applied (members left alone) or
/// deleted; Endpoints, and the EndpointSlices of one Service sent together,
/// reconcile members (202 `pending` while the Service has no load balancer).
/// Kubernetes watch events (or a List): Services applied or deleted,
/// Endpoints / EndpointSlices reconciled into members.
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    timeout_s: Option<u64>,
}

#[utoipa::path(post, path = "/v1/events", tag = "services", request_body = schema::WatchEvent,
    params(("timeout_s" = Option<u64>, Query, description = "the deadline of the whole request in seconds, all its items together (default 300)")),
    responses(
        (status = 200, description = "the result of the event (or `results` for a List)", body = Object),
        (status = 202, description = "pending: no load balancer for the Service yet", body = Object),
    schema::BatchProblems))]
pub(super) async fn events(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let value = json_body(body)?;
    let Query(q) = q.map_err(bad_query)?;
    let options = ApplyOptions::requested(None, q.timeout_s);
    let allowed = |ns: &str| authorize(&caller, ns).map_err(|p| p.0);
    let report = s
        .reconciler
        .handle_events(value, &allowed, options)
        .await
        .map_err(ProblemResponse)?;
    if report.single
        && let Some(item) = report.items.first()
    {
        // One event's failure is the answer's: a problem, as any request's.
        return match &item.outcome {
            Ok(answer) => Ok((answer_status(answer), Json(item_json(item))).into_response()),
            Err(p) => Err(ProblemResponse(p.clone())),
        };
    }
    let all: Vec<Value> = report.items.iter().map(item_json).collect();
    Ok(Json(json!({"results": all})).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct SyncQuery {
    #[serde(rename = "dryRun", default)]
    dry_run: bool,
    #[serde(rename = "orphansOnly", default)]
    orphans_only: bool,
    /// `a,b`: sync only these namespaces (a scoped token must name its own).
    namespaces: Option<String>,
    timeout_s: Option<u64>,
}

/// The cluster's full Service list, as a watcher has it after a (re)list:
/// every Service applied, and what this cluster owns for Services not in it
/// deleted (or, `dryRun=true`, what would be; no writes).
#[utoipa::path(post, path = "/v1/sync", tag = "services", request_body = Object,
    params(
        ("dryRun" = Option<bool>, Query, description = "answer what would be applied and deleted; no writes"),
        ("orphansOnly" = Option<bool>, Query, description = "apply none of the listed Services, only collect what this cluster owns for Services not in the list (a watcher that applies each Service itself)"),
        ("namespaces" = Option<String>, Query, description = "comma-separated: sync only these namespaces (default: all the token may touch)"),
        ("timeout_s" = Option<u64>, Query, description = "the deadline of the whole sync in seconds (default 300)")),
    responses(
        (status = 200, description = "per Service the result, per orphan what was (or would be) done", body = Object),
    schema::BatchProblems))]
pub(super) async fn sync(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    q: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let Query(q) = q.map_err(bad_query)?;
    let value = json_body(body)?;
    let namespaces = q.namespaces.map(|n| {
        n.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    });
    let scope = sync_scope(&caller, namespaces)?;
    let options = ApplyOptions::requested(None, q.timeout_s);
    let mode = SyncMode {
        dry_run: q.dry_run,
        orphans_only: q.orphans_only,
    };
    let report = s
        .reconciler
        .sync(value, mode, scope.as_deref(), options)
        .await
        .map_err(ProblemResponse)?;
    Ok(Json(sync_json(&report)).into_response())
}

// ---------------------------------------------------------------------------
// Gateways.

/// Converges a Gateway and its routes onto one load balancer; answers the
/// Gateway's and each route's status as Gateway API defines them.
#[utoipa::path(post, path = "/v1/gateways/apply", tag = "gateways", request_body = schema::GatewayRequest,
    params(
        ("wait" = Option<bool>, Query, description = "wait for ACTIVE (default true)"),
        ("timeout_s" = Option<u64>, Query, description = "the request's deadline in seconds (default 300)")),
    responses(
        (status = 200, description = "converged (semantically invalid Gateway API content is a 200 whose statuses say so)", body = crate::reconcile::gateway::GatewayAnswer),
        (status = 202, description = "not converged yet; re-applying is safe", body = crate::reconcile::gateway::GatewayAnswer),
    schema::RequestProblems))]
pub(super) async fn apply_gateway(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    q: Result<Query<ApplyQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let Query(q) = q.map_err(bad_query)?;
    let input = gateway_input(&caller, json_body(body)?)?;
    let answer = s
        .reconciler
        .gateway_apply(&input, q.options(), true)
        .await?;
    Ok((converged_status(answer.converged), Json(answer)).into_response())
}

/// What a Gateway's apply would do now. No writes.
#[utoipa::path(post, path = "/v1/gateways/plan", tag = "gateways", request_body = schema::GatewayRequest,
    responses((status = 200, description = "the plan and the statuses it would give", body = crate::reconcile::gateway::GatewayAnswer),
    schema::RequestProblems))]
pub(super) async fn plan_gateway(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let input = gateway_input(&caller, json_body(body)?)?;
    let answer = s
        .reconciler
        .gateway_apply(&input, ApplyOptions::requested(Some(false), None), false)
        .await?;
    Ok(Json(answer).into_response())
}

/// A Gateway's load balancer as OpenStack holds it.
#[utoipa::path(get, path = "/v1/gateways/{namespace}/{name}", tag = "gateways",
    params(("namespace" = String, Path, description = "a DNS-1123 label"),
        ("name" = String, Path, description = "a DNS-1123 subdomain")),
    responses((status = 200, description = "found", body = crate::reconcile::gateway::GatewayAnswer),
    schema::LookupProblems))]
pub(super) async fn get_gateway(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ProblemResponse> {
    named_gateway(&namespace, &name)?;
    authorize(&caller, &namespace)?;
    let answer = s.reconciler.gateway_get(&namespace, &name).await?;
    Ok(Json(answer).into_response())
}

/// Removes what this tool created for the Gateway (200 with no operations
/// when it owns nothing).
#[utoipa::path(delete, path = "/v1/gateways/{namespace}/{name}", tag = "gateways",
    params(("namespace" = String, Path, description = "a DNS-1123 label"),
        ("name" = String, Path, description = "a DNS-1123 subdomain"),
        ("wait" = Option<bool>, Query, description = "wait until deleted (default true)")),
    responses((status = 200, description = "the operations done", body = crate::reconcile::gateway::GatewayAnswer),
    schema::RequestProblems))]
pub(super) async fn delete_gateway(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    Path((namespace, name)): Path<(String, String)>,
    q: Result<Query<ApplyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ProblemResponse> {
    named_gateway(&namespace, &name)?;
    authorize(&caller, &namespace)?;
    let Query(q) = q.map_err(bad_query)?;
    let answer = s
        .reconciler
        .gateway_delete(&namespace, &name, q.options())
        .await?;
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct GatewaySyncQuery {
    #[serde(rename = "dryRun", default)]
    dry_run: bool,
    timeout_s: Option<u64>,
}

/// The cluster's Gateways, as a watcher lists them: what this cluster made
/// for Gateways not in the list (within the namespaces the token may touch)
/// is deleted. Services' `/v1/sync` never touches Gateways, nor this one
/// Services.
#[utoipa::path(post, path = "/v1/gateways/sync", tag = "gateways", request_body = schema::GatewaySync,
    params(("dryRun" = Option<bool>, Query, description = "answer what would be deleted; no writes"),
        ("timeout_s" = Option<u64>, Query, description = "the request's deadline in seconds (default 300)")),
    responses((status = 200, description = "what was (or would be) collected", body = crate::reconcile::gateway::GatewaySyncAnswer),
    schema::RequestProblems))]
pub(super) async fn sync_gateways(
    State(s): State<Arc<AppState>>,
    Extension(caller): Extension<auth::Caller>,
    q: Result<Query<GatewaySyncQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ProblemResponse> {
    let Query(q) = q.map_err(bad_query)?;
    let value = json_body(body)?;
    let bad = |message: String, field: String| {
        ProblemResponse(Box::new(
            Problem::of(Kind::InvalidSync, message).with_field(field),
        ))
    };
    let Some(items) = value.get("gateways").and_then(Value::as_array) else {
        return Err(bad(
            "expected {\"gateways\": [{\"namespace\", \"name\"}]}".into(),
            "gateways".into(),
        ));
    };
    let mut listed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (Some(namespace), Some(name)) = (
            item.get("namespace").and_then(Value::as_str),
            item.get("name").and_then(Value::as_str),
        ) else {
            return Err(bad(
                "a Gateway is {\"namespace\", \"name\"}".into(),
                format!("gateways[{i}]"),
            ));
        };
        named_gateway(namespace, name).map_err(|_| {
            bad(
                format!("{namespace:?}/{name:?} is not a Gateway's namespace and name"),
                format!("gateways[{i}]"),
            )
        })?;
        listed.push((namespace.to_string(), name.to_string()));
    }
    let scope = sync_scope(&caller, None)?;
    let answer = s
        .reconciler
        .gateway_orphans(
            &listed,
            scope.as_deref(),
            q.dry_run,
            ApplyOptions::requested(None, q.timeout_s),
        )
        .await?;
    Ok(Json(answer).into_response())
}
