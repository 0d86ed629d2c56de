//! The REST API of docs/contract.md on axum: thin handlers that parse, call the
//! reconciler and answer; every error is an RFC 9457 problem (`error`).

pub mod auth;
pub mod error;
pub mod grpc;
pub mod openapi;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use self::error::{ProblemResponse, converged_status};
use crate::error::Kind;
use crate::error::Problem;
use crate::model::ServiceRef;
use crate::reconcile::events::{Answer, EventItem};
use crate::reconcile::sync::{SyncMode, SyncReport};
use crate::reconcile::{ApplyInput, ApplyOptions, Reconciler};

/// Request bodies above this are refused with 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

pub struct AppState {
    pub reconciler: Reconciler,
    pub body_limit: usize,
    /// `None`: no authentication.
    pub tokens: Option<auth::Tokens>,
}

pub fn app(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    let v1 = Router::new()
        .route("/v1/plan", post(plan))
        .route("/v1/apply", post(apply))
        .route("/v1/events", post(events))
        .route("/v1/sync", post(sync))
        .route(
            "/v1/services/{namespace}/{name}",
            get(get_service).delete(delete_service),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .merge(v1)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// `Authorization: Bearer <token>` when tokens are configured: 401 without a
/// known one; the caller goes on to the handler, which checks the namespace.
async fn authenticate(
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

/// 403 unless the caller may touch `namespace`.
fn authorize(caller: &auth::Caller, namespace: &str) -> Result<(), ProblemResponse> {
    if caller.may_touch(namespace) {
        return Ok(());
    }
    let p = Problem::of(
        Kind::Forbidden,
        format!("token {} may not touch namespace {namespace}", caller.name),
    );
    Err(ProblemResponse(Box::new(p)))
}

/// `x-request-id` in (or a new one) and out, and a span carrying it.
async fn request_id(req: Request<axum::body::Body>, next: Next) -> Response {
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
    let method = req.method().to_string();
    let mut res = tracing::Instrument::instrument(next.run(req), span).await;
    crate::metrics::global().inc(
        "svc_lbaas_http_requests_total",
        &[
            ("method", &method),
            ("route", &route),
            ("status", res.status().as_str()),
        ],
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// A path the API does not have: a problem too, never an empty body.
async fn no_route(uri: axum::http::Uri) -> ProblemResponse {
    let path: String = uri.path().chars().take(200).collect();
    ProblemResponse::of(
        Kind::NoRoute,
        format!("{path} is not a path of this API (see /openapi.json)"),
    )
}

async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
}

/// Prometheus counters.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::global().render(),
    )
        .into_response()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the cloud accepts the credentials.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "ready", body = Object),
    openapi::ReadinessProblems))]
async fn readyz(State(s): State<Arc<AppState>>) -> Response {
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
struct PlanQuery {
    #[serde(default)]
    offline: bool,
}

/// What apply would do now, or (`offline=true`) against empty state. No writes.
#[utoipa::path(post, path = "/v1/plan", tag = "services", request_body = openapi::ApplyRequest,
    params(("offline" = Option<bool>, Query, description = "plan against empty state, no OpenStack reads")),
    responses((status = 200, description = "the plan", body = crate::response::PlanResponse),
    openapi::RequestProblems))]
async fn plan(
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
struct ApplyQuery {
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
#[utoipa::path(post, path = "/v1/apply", tag = "services", request_body = openapi::ApplyRequest,
    params(
        ("wait" = Option<bool>, Query, description = "wait for ACTIVE (default true)"),
        ("timeout_s" = Option<u64>, Query, description = "the request's deadline in seconds, reads, writes and waits included (default 300)")),
    responses(
        (status = 200, description = "converged", body = crate::reconcile::ApplyResponse),
        (status = 202, description = "not converged yet (wait=false or the wait timed out); re-applying is safe", body = crate::reconcile::ApplyResponse),
    openapi::RequestProblems))]
async fn apply(
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
        openapi::LookupProblems))]
async fn get_service(
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
    openapi::RequestProblems))]
async fn delete_service(
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
    match &i.outcome {
        Ok(answer) => {
            v["status"] = json!(answer_status(answer).as_u16());
            v["result"] = answer.to_json();
        }
        Err(p) => {
            crate::error::record(p);
            v["status"] = json!(p.status);
            v["problem"] = serde_json::to_value(&**p).unwrap_or(Value::Null);
        }
    }
    v
}

/// `POST /v1/events`: a watch event `{"type", "object"}` or a `List` (of
/// objects, or of events). Services are applied (members left alone) or
/// deleted; Endpoints, and the EndpointSlices of one Service sent together,
/// reconcile members (202 `pending` while the Service has no load balancer).
/// Kubernetes watch events (or a List): Services applied or deleted,
/// Endpoints / EndpointSlices reconciled into members.
#[derive(Debug, Deserialize)]
struct EventsQuery {
    timeout_s: Option<u64>,
}

#[utoipa::path(post, path = "/v1/events", tag = "services", request_body = openapi::WatchEvent,
    params(("timeout_s" = Option<u64>, Query, description = "the deadline of the whole request in seconds, all its items together (default 300)")),
    responses(
        (status = 200, description = "the result of the event (or `results` for a List)", body = Object),
        (status = 202, description = "pending: no load balancer for the Service yet", body = Object),
    openapi::BatchProblems))]
async fn events(
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
struct SyncQuery {
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
    openapi::BatchProblems))]
async fn sync(
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

/// The namespaces a sync covers: those named (each one a namespace name the
/// caller may touch), else all the caller may touch (None: every one).
pub(crate) fn sync_scope(
    caller: &auth::Caller,
    namespaces: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ProblemResponse> {
    match namespaces {
        Some(list) => {
            for ns in &list {
                crate::translate::parse_service_ref(ns, "x", "namespaces.").map_err(|_| {
                    ProblemResponse::from(
                        Problem::of(Kind::InvalidSync, format!("{ns:?} is not a namespace name"))
                            .with_field("namespaces"),
                    )
                })?;
                authorize(caller, ns)?;
            }
            Ok(Some(list))
        }
        None => Ok(caller.namespaces().map(<[String]>::to_vec)),
    }
}

/// A sync's answer as JSON (REST's body; gRPC's Struct).
pub(crate) fn sync_json(report: &SyncReport) -> Value {
    let services: Vec<Value> = report
        .services
        .iter()
        .map(|item| match &item.outcome {
            Ok(answer) => json!({"service": item.service, "status": answer_status(answer).as_u16(), "result": answer.to_json()}),
            Err(p) => {
                crate::error::record(p);
                json!({"service": item.service, "status": p.status, "problem": serde_json::to_value(&**p).unwrap_or(Value::Null)})
            }
        })
        .collect();
    json!({
        "dryRun": report.dry_run,
        "services": services,
        "orphans": report.orphans,
        "notes": report.notes,
    })
}

/// An event's or sync item's HTTP status: 202 while it still converges.
pub(crate) fn answer_status(answer: &Answer) -> StatusCode {
    converged_status(answer.converged())
}
