//! The REST API of docs/contract.md (axum: `rest.rs`, its router here) and
//! gRPC (tonic: `grpc.rs`) over the same reconciler; `shared.rs` holds what
//! both use, `schema.rs` and `openapi.rs` the OpenAPI document.

pub mod auth;
pub mod error;
pub mod grpc;
pub mod openapi;
mod rest;
mod schema;
mod shared;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use rest::*;
pub use shared::{AppState, DEFAULT_BODY_LIMIT};

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
        .route("/v1/gateways/apply", post(apply_gateway))
        .route("/v1/gateways/plan", post(plan_gateway))
        .route("/v1/gateways/sync", post(sync_gateways))
        .route(
            "/v1/gateways/{namespace}/{name}",
            get(get_gateway).delete(delete_gateway),
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

async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
}
