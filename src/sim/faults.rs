//! Fault injection and call accounting. Faults (from the config or
//! `POST /sim/faults`) match a method and a path pattern and add latency,
//! fail a share of calls with a status, or drop the connection; admin calls
//! drive a load balancer to ERROR or expire every token. `/sim/stats` counts
//! calls per method and path (ids folded to `{id}`), resettable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::json::{ApiError, ApiKind};
use super::{SimState, lock};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path pattern; `*` matches any run of characters (`/load-balancer/*/members`).
    pub path: String,
    /// Added before answering.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of matching calls (0 to 1) answered with `status`.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Close the connection mid-answer instead of answering.
    #[serde(default)]
    pub drop_connection: bool,
    /// How many matching calls it applies to; every one when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

fn default_status() -> u16 {
    500
}

/// Active faults and the dice for error rates (seeded: runs repeat).
#[derive(Debug)]
pub struct Faults {
    active: Vec<(u64, Fault)>,
    next_id: u64,
    rng: u64,
}

impl Faults {
    pub fn new(initial: Vec<Fault>, seed: u64) -> Self {
        let mut f = Faults {
            active: Vec::new(),
            next_id: 0,
            rng: seed.max(1),
        };
        for fault in initial {
            f.add(fault);
        }
        f
    }

    pub fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        self.active.push((self.next_id, fault));
        self.next_id
    }

    fn roll(&mut self) -> f64 {
        // xorshift64: deterministic for a seed, good enough for dice.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for this call, if any, consuming one of its `times`.
    fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.active.iter().position(|(_, f)| {
            f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && glob(&f.path, path)
        })?;
        let fault = self.active[i].1.clone();
        if let Some(times) = &mut self.active[i].1.times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.active.remove(i);
            }
        }
        Some(fault)
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Calls per `METHOD /path` with ids folded to `{id}`.
#[derive(Debug, Default)]
pub struct Stats {
    calls: BTreeMap<String, u64>,
}

impl Stats {
    fn record(&mut self, method: &str, path: &str) {
        let folded: Vec<&str> = path
            .split('/')
            .map(|seg| {
                let hexish =
                    seg.len() >= 32 && seg.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                if hexish { "{id}" } else { seg }
            })
            .collect();
        *self
            .calls
            .entry(format!("{method} {}", folded.join("/")))
            .or_default() += 1;
    }
}

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

async fn stats(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    let stats = lock(&s.stats);
    let total: u64 = stats.calls.values().sum();
    let held = s.cloud_held_us.load(std::sync::atomic::Ordering::Relaxed);
    Json(json!({"total": total, "calls": stats.calls, "cloudLockHeldMs": held / 1000}))
}

async fn reset_stats(State(s): State<Arc<SimState>>) -> StatusCode {
    lock(&s.stats).calls.clear();
    s.cloud_held_us
        .store(0, std::sync::atomic::Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("/load-balancer/*", "/load-balancer/v2/lbaas/pools"));
        assert!(glob(
            "*/members",
            "/load-balancer/v2/lbaas/pools/abc/members"
        ));
        assert!(glob("/a/*/c/*/e", "/a/b/c/d/e"));
        assert!(!glob("/a/*/c", "/a/b/d"));
        assert!(glob("/exact", "/exact"));
        assert!(!glob("/exact", "/exactly"));
    }

    #[test]
    fn faults_apply_a_limited_number_of_times() {
        let fault = Fault {
            method: Some("POST".into()),
            path: "/network/*".into(),
            latency_ms: 0,
            error_rate: 1.0,
            status: 503,
            drop_connection: false,
            times: Some(2),
        };
        let mut f = Faults::new(vec![fault], 7);
        assert!(f.take("GET", "/network/v2.0/ports").is_none());
        assert!(f.take("POST", "/network/v2.0/ports").is_some());
        assert!(f.take("post", "/network/v2.0/ports").is_some());
        assert!(f.take("POST", "/network/v2.0/ports").is_none());
    }

    #[test]
    fn stats_fold_ids() {
        let mut s = Stats::default();
        s.record(
            "GET",
            "/load-balancer/v2/lbaas/loadbalancers/0f3e9c1a-77aa-4e2b-9d4c-5b6a7c8d9e01",
        );
        s.record(
            "GET",
            "/load-balancer/v2/lbaas/loadbalancers/1f3e9c1a-77aa-4e2b-9d4c-5b6a7c8d9e01",
        );
        assert_eq!(
            s.calls
                .get("GET /load-balancer/v2/lbaas/loadbalancers/{id}"),
            Some(&2)
        );
    }

    #[test]
    fn the_dice_are_seeded() {
        let mut a = Faults::new(vec![], 42);
        let mut b = Faults::new(vec![], 42);
        let rolls: Vec<f64> = (0..5).map(|_| a.roll()).collect();
        assert_eq!(rolls, (0..5).map(|_| b.roll()).collect::<Vec<_>>());
        assert!(rolls.iter().all(|r| (0.0..1.0).contains(r)));
    }
}
