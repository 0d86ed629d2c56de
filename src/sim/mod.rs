//! The simulated OpenStack: Keystone v3, Octavia v2 (and the legacy Neutron
//! LBaaS v2 paths) and Neutron v2.0 on one listener, for a newcomer's first run,
//! the integration tests and the benchmarks. It is a test double that must
//! behave like the real APIs: status machine with 409 while PENDING_*, real
//! IPAM, error bodies shaped like Octavia's and Neutron's, request ids.
//!
//! Layout: `keystone` (tokens, catalog), `neutron` (networks, subnets, ports,
//! floating IPs, routers, tags, IPAM), `octavia` (the load balancer tree and its
//! status machine, also serving the legacy LBaaS v2 paths), `faults` (fault
//! injection and call counters), `json` (request parsing and error shapes).

pub mod barbican;
pub mod faults;
pub mod json;
pub mod keystone;
pub mod neutron;
pub mod octavia;
pub mod security_groups;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::time::Instant;

use self::faults::{Fault, Faults, Stats};

/// How the simulated cloud behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// How long a load balancer tree stays PENDING_* after a write.
    #[serde(with = "millis")]
    pub provisioning_delay: Duration,
    /// Lifetime of a Keystone token.
    #[serde(with = "millis")]
    pub token_ttl: Duration,
    /// Faults active from the start (more can be added at `/sim/faults`).
    pub faults: Vec<Fault>,
    /// Seed of the error-rate dice, so a run can be repeated.
    pub seed: u64,
    /// The newest Octavia API minor version the version document offers
    /// (`v2.N`), to stand in for older clouds.
    pub octavia_minor: u32,
    /// Listeners created with their pool inline, pools with members and a
    /// monitor inline, are taken (a cloud without Octavia 19's 500 there).
    pub nested_creates: bool,
    /// Floating IPs the public pool holds (241: 172.24.4.10-250).
    pub public_addresses: u32,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            provisioning_delay: Duration::from_millis(500),
            token_ttl: Duration::from_secs(3600),
            faults: Vec::new(),
            seed: 1,
            octavia_minor: 29,
            nested_creates: false,
            public_addresses: 241,
        }
    }
}

/// The default credentials (docs/contract.md).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "admin";
pub const PROJECT: &str = "admin";
pub const DOMAIN: &str = "Default";
pub const REGION: &str = "RegionOne";
/// An application credential the simulator accepts.
pub const APP_CREDENTIAL_ID: &str = "svc-lbaas-sim-app-cred";
pub const APP_CREDENTIAL_SECRET: &str = "svc-lbaas-sim-secret";

/// Ids of the seed's topology, printed by `svc-lbaas sim`.
#[derive(Debug, Clone)]
pub struct Seed {
    pub pod_network: String,
    pub pod_subnet: String,
    pub service_network: String,
    pub service_subnet: String,
    pub public_network: String,
    pub public_subnet: String,
    pub router: String,
}

/// All the simulator's state. Handlers lock it briefly, never across an await.
pub struct SimState {
    pub config: SimConfig,
    /// `http://127.0.0.1:PORT`, for the catalog.
    pub base_url: String,
    cloud: Mutex<Cloud>,
    /// Microseconds the cloud's lock has been held, over all requests: the
    /// simulator serves one request's work at a time (`/sim/stats`).
    pub cloud_held_us: std::sync::atomic::AtomicU64,
    pub tokens: Mutex<keystone::Tokens>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<Stats>,
    pub seed: Seed,
}

/// Neutron and Octavia objects together: a load balancer's VIP is a port.
#[derive(Debug, Default)]
pub struct Cloud {
    pub neutron: neutron::Neutron,
    pub octavia: octavia::Octavia,
    pub barbican: barbican::Barbican,
}

impl SimState {
    pub fn new(config: SimConfig, base_url: String) -> Arc<SimState> {
        let mut cloud = Cloud::default();
        let seed = cloud.neutron.seed_topology(config.public_addresses);
        let faults = Faults::new(config.faults.clone(), config.seed);
        Arc::new(SimState {
            config,
            base_url,
            cloud: Mutex::new(cloud),
            cloud_held_us: Default::default(),
            tokens: Mutex::new(keystone::Tokens::default()),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            seed,
        })
    }

    /// The cloud, with every load balancer whose provisioning delay has passed
    /// moved on (lazily, so paused test clocks work and nothing runs in the background).
    pub fn cloud(&self) -> CloudGuard<'_> {
        let mut cloud = lock(&self.cloud);
        let taken = Instant::now();
        let Cloud {
            neutron, octavia, ..
        } = &mut *cloud;
        octavia.settle(taken, neutron);
        CloudGuard {
            cloud,
            taken,
            held_us: &self.cloud_held_us,
        }
    }
}

/// The cloud, locked; counts how long it was held when dropped.
pub struct CloudGuard<'a> {
    cloud: MutexGuard<'a, Cloud>,
    taken: Instant,
    held_us: &'a std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for CloudGuard<'_> {
    type Target = Cloud;
    fn deref(&self) -> &Cloud {
        &self.cloud
    }
}

impl std::ops::DerefMut for CloudGuard<'_> {
    fn deref_mut(&mut self) -> &mut Cloud {
        &mut self.cloud
    }
}

impl Drop for CloudGuard<'_> {
    fn drop(&mut self) {
        let us = u64::try_from(self.taken.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.held_us
            .fetch_add(us, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A poisoned lock only means another handler panicked; the data is still usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The simulator's router: Keystone at `/v3` (and `/`), Octavia at
/// `/load-balancer`, Neutron at `/network`, admin at `/sim`.
pub fn app(state: Arc<SimState>) -> Router {
    let authed = Router::new()
        .nest("/load-balancer", octavia::router())
        .nest("/key-manager", barbican::router())
        // The legacy Neutron LBaaS v2 endpoint: Octavia's handlers on the
        // network service, composed here so neither module imports the other's routes.
        .nest(
            "/network",
            neutron::router().nest("/v2.0/lbaas", octavia::lbaas_router(json::ApiKind::Neutron)),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            keystone::require_token,
        ));
    // The version documents at the services' roots are public, as in OpenStack.
    let versions = Router::new()
        .route("/load-balancer", get(octavia::versions))
        .route("/load-balancer/", get(octavia::versions))
        .route("/network", get(neutron::versions))
        .route("/network/", get(neutron::versions));
    Router::new()
        .merge(keystone::router())
        .merge(versions)
        .merge(authed)
        .merge(faults::admin_router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            faults::inject,
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

/// Now as OpenStack's `2026-11-26T06:28:24` timestamps (UTC).
pub fn timestamp() -> String {
    format_time(std::time::SystemTime::now())
}

/// A time as OpenStack's `2026-11-26T06:28:24` timestamps (UTC).
pub fn format_time(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_look_like_openstacks() {
        let t = super::timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
        assert!(t.as_str() > "2024-01-01T00:00:00", "{t}");
    }

    #[test]
    fn times_format_across_days_months_and_leap_years() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |s: u64| super::format_time(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00");
        assert_eq!(at(951_825_600), "2000-02-29T12:00:00");
        assert_eq!(at(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(at(1_798_761_600), "2027-01-01T00:00:00");
    }
}
