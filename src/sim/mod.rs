//! The simulated OpenStack: Keystone v3, Octavia v2 (and the legacy Neutron
//! LBaaS v2 paths) and Neutron v2.0 on one listener, for a newcomer's first run,
//! the integration tests and the benchmarks. It is a test double that must
//! behave like the real APIs: status machine with 409 while PENDING_*, real
//! IPAM, error bodies shaped like Octavia's and Neutron's, request ids.
//!
//! Layout, one floor at a time: `common` (credentials, seed ids, locks, ids,
//! timestamps) and `json` (request parsing and error shapes); each service's
//! objects and rules (`keystone` tokens, `faults` and call counters,
//! `security_groups`, `barbican`, `neutron` with its IPAM, `octavia` with the
//! load balancer tree and its status machine); `state` (the cloud of them
//! all, behind one lock); `http/` (each service's routes and handlers over
//! the state); this module composes the router and serves it.

pub mod barbican;
pub mod common;
pub mod faults;
pub mod http;
pub mod json;
pub mod keystone;
pub mod l7;
pub mod meta;
pub mod neutron;
pub mod octavia;
pub mod security_groups;
pub mod state;

pub use common::{
    APP_CREDENTIAL_ID, APP_CREDENTIAL_SECRET, DOMAIN, PASSWORD, PROJECT, REGION, Seed, USER,
    format_time, lock, new_id, timestamp,
};
pub use state::{Cloud, CloudGuard, SimConfig, SimState};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;

/// The simulator's router: Keystone at `/v3` (and `/`), Octavia at
/// `/load-balancer`, Neutron at `/network`, admin at `/sim`.
pub fn app(state: Arc<SimState>) -> Router {
    let authed = Router::new()
        .nest("/load-balancer", http::octavia::router())
        .nest("/key-manager", http::barbican::router())
        // The legacy Neutron LBaaS v2 endpoint: Octavia's handlers on the
        // network service, composed here so neither module imports the other's routes.
        .nest(
            "/network",
            http::neutron::router().nest(
                "/v2.0/lbaas",
                http::octavia::lbaas_router(json::ApiKind::Neutron),
            ),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::keystone::require_token,
        ));
    // The version documents at the services' roots are public, as in OpenStack.
    let versions = Router::new()
        .route("/load-balancer", get(http::octavia::versions))
        .route("/load-balancer/", get(http::octavia::versions))
        .route("/network", get(http::neutron::versions))
        .route("/network/", get(http::neutron::versions));
    Router::new()
        .merge(http::keystone::router())
        .merge(versions)
        .merge(authed)
        .merge(http::faults::admin_router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::faults::inject,
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Every answer carries `x-openstack-request-id`, as OpenStack's do.
async fn request_id(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let id = format!("req-{}", uuid::Uuid::new_v4());
    if let Ok(value) = id.parse() {
        res.headers_mut().insert("x-openstack-request-id", value);
    }
    res
}

/// A simulator serving on its own task.
pub struct RunningSim {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    pub fn auth_url(&self) -> String {
        format!("{}/v3", self.state.base_url)
    }
}

/// Serves the simulator on `listener` (the caller owns the socket: port 0 in tests).
pub async fn spawn(listener: TcpListener, config: SimConfig) -> std::io::Result<RunningSim> {
    let addr = listener.local_addr()?;
    let state = SimState::new(config, format!("http://{addr}"));
    let app = app(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulated cloud stopped");
        }
    });
    Ok(RunningSim { addr, state, task })
}
