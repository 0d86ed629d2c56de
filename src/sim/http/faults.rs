//! The simulator's fault injection and call counting (a middleware) and its
//! admin routes under `/sim`.

use crate::sim::common::lock;
use crate::sim::faults::*;
use crate::sim::json::{ApiError, ApiKind};
use crate::sim::state::SimState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn api_of(path: &str) -> ApiKind {
    if path.starts_with("/load-balancer") {
        ApiKind::Octavia
    } else if path.starts_with("/network") {
        ApiKind::Neutron
    } else {
        ApiKind::Keystone
    }
}

/// Middleware: counts the call, then applies the first matching fault.
pub async fn inject(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/sim/") || path == "/sim" {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    lock(&state.stats).record(&method, &path);
    let call = match req.uri().query() {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    };
    let began = std::time::Instant::now();
    let answer = faulted(&state, req, next, method, path).await;
    lock(&state.stats).answered(call, began);
    answer
}

/// The call, with the first matching fault applied.
async fn faulted(
    state: &SimState,
    req: Request,
    next: Next,
    method: String,
    path: String,
) -> Response {
    let (fault, roll) = {
        let mut faults = lock(&state.faults);
        let fault = faults.take(&method, &path);
        let roll = faults.roll();
        (fault, roll)
    };
    let Some(fault) = fault else {
        return next.run(req).await;
    };
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    if fault.drop_connection {
        // A body that fails makes hyper close the connection mid-answer.
        let stream = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other(
                "connection dropped by fault injection",
            ))
        });
        return (StatusCode::OK, Body::from_stream(stream)).into_response();
    }
    if roll < fault.error_rate {
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return ApiError::new(
            status,
            "InjectedFault",
            format!("fault injected for {method} {path}"),
        )
        .render(api_of(&path));
    }
    next.run(req).await
}

pub fn admin_router() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/sim/faults/{id}", delete(remove_fault))
        .route("/sim/faults/expire-tokens", post(expire_tokens))
        .route(
            "/sim/faults/loadbalancers/{id}/error",
            post(error_load_balancer),
        )
        .route(
            "/sim/faults/members/{id}/operating-status",
            post(report_member),
        )
        .route("/sim/stats", get(stats).delete(reset_stats))
}

async fn list_faults(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    let faults = lock(&s.faults);
    let list: Vec<_> = faults
        .active
        .iter()
        .map(|(id, f)| json!({"id": id, "fault": f}))
        .collect();
    Json(json!({"faults": list}))
}

async fn add_fault(State(s): State<Arc<SimState>>, Json(fault): Json<Fault>) -> Response {
    if !(0.0..=1.0).contains(&fault.error_rate) || StatusCode::from_u16(fault.status).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "error_rate must be within 0..1 and status a valid HTTP status"})),
        )
            .into_response();
    }
    let id = lock(&s.faults).add(fault);
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn clear_faults(State(s): State<Arc<SimState>>) -> StatusCode {
    lock(&s.faults).active.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(s): State<Arc<SimState>>, Path(id): Path<u64>) -> StatusCode {
    let mut faults = lock(&s.faults);
    let before = faults.active.len();
    faults.active.retain(|(i, _)| *i != id);
    if faults.active.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn expire_tokens(State(s): State<Arc<SimState>>) -> StatusCode {
    lock(&s.tokens).expire_all();
    StatusCode::NO_CONTENT
}

async fn error_load_balancer(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    match s.cloud().octavia.force_error(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.render(ApiKind::Octavia),
    }
}

/// `{"status": "ERROR"}` (or ONLINE, DRAINING, OFFLINE, NO_MONITOR; `null`:
/// healthy again): what Octavia's health manager would report for the member.
async fn report_member(
    State(s): State<Arc<SimState>>,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let status = match &body["status"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(v) => Some(v.as_str()),
        _ => {
            return ApiError::bad_request("status: a member operating status or null")
                .render(ApiKind::Octavia);
        }
    };
    match s.cloud().octavia.report_member(&id, status) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.render(ApiKind::Octavia),
    }
}

async fn stats(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    let stats = lock(&s.stats);
    let total: u64 = stats.calls.values().sum();
    let held = s.cloud_held_us.load(std::sync::atomic::Ordering::Relaxed);
    Json(json!({
        "total": total,
        "calls": stats.calls,
        "journal": stats.journal,
        "cloudLockHeldMs": held / 1000
    }))
}

async fn reset_stats(State(s): State<Arc<SimState>>) -> StatusCode {
    lock(&s.stats).reset();
    s.cloud_held_us
        .store(0, std::sync::atomic::Ordering::Relaxed);
    StatusCode::NO_CONTENT
}
