//! `svc-lbaas watch`: the cluster watcher on kube-rs. One reflector each for
//! Services, EndpointSlices and Endpoints feeds a work queue of Service keys;
//! bounded workers reconcile them through the server's REST API
//! ([`controller`]); after every (re)list of Services and on a period the full
//! list goes to `/v1/sync?orphansOnly=true`, which collects what Services
//! deleted behind the finalizer's back left. Only the replica holding the
//! Lease ([`lease`]) watches and calls the server; it serves `/healthz`,
//! `/readyz` and `/metrics` either way.

pub mod controller;
pub mod gateway_store;
pub mod gateways;
pub mod lease;
pub mod metrics;
pub mod queue;
pub mod server;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;

use controller::{Controller, Stores, key_of, slice_service_key};
use lease::{Elector, LeaseConfig};
use metrics::WatchMetrics;
use queue::{Backoff, Queue};
use server::ServerClient;

/// `svc-lbaas watch`'s options.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// svc-lbaas REST address (http or https); also SVC_LBAAS_URL.
    #[arg(long, env = "SVC_LBAAS_URL")]
    pub server: String,
    /// File holding the bearer token for the server (read at every call); also SVC_LBAAS_TOKEN_FILE.
    #[arg(long, env = "SVC_LBAAS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA bundle (PEM) for an https --server; also SVC_LBAAS_CACERT.
    #[arg(long, env = "SVC_LBAAS_CACERT")]
    pub server_ca: Option<PathBuf>,
    /// Address of /healthz, /readyz and /metrics (port 0 picks a free port).
    #[arg(
        long,
        default_value = "127.0.0.1:9091",
        env = "SVC_LBAAS_WATCH_HEALTH_ADDR"
    )]
    pub health_addr: SocketAddr,
    /// Services reconciled at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds between resyncs (every Service reconciled again, orphans collected).
    #[arg(long, default_value_t = 600)]
    pub sync_period_s: u64,
    /// First pause after a Service's failure, doubling up to --backoff-max-s.
    #[arg(long, default_value_t = 1)]
    pub backoff_base_s: u64,
    #[arg(long, default_value_t = 300)]
    pub backoff_max_s: u64,
    /// The leader election Lease.
    #[arg(long, default_value = "svc-lbaas-watcher")]
    pub lease_name: String,
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's name in the Lease and in Events (default: the pod's name, else host and a random suffix).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    #[arg(long, default_value_t = 15)]
    pub lease_duration_s: u64,
    #[arg(long, default_value_t = 10)]
    pub renew_deadline_s: u64,
    #[arg(long, default_value_t = 2)]
    pub retry_period_s: u64,
}

/// The name in Events' `reportingController`.
pub const CONTROLLER_NAME: &str = "svc-lbaas-watcher";

impl WatchArgs {
    /// The options that make no sense together.
    pub fn check(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if self.sync_period_s == 0 {
            return Err("--sync-period-s must be at least 1".into());
        }
        if self.backoff_base_s == 0 || self.backoff_max_s < self.backoff_base_s {
            return Err("need 1 <= --backoff-base-s <= --backoff-max-s".into());
        }
        if !(self.retry_period_s >= 1
            && self.retry_period_s < self.renew_deadline_s
            && self.renew_deadline_s < self.lease_duration_s)
        {
            return Err(
                "need 1 <= --retry-period-s < --renew-deadline-s < --lease-duration-s".into(),
            );
        }
        Ok(())
    }
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "svc-lbaas".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}_{}", &suffix[..8])
}

/// Runs the watcher until a shutdown signal (Ok) or a lost Lease (Err: the
/// pod restarts and stands as a candidate again).
pub async fn run(args: WatchArgs) -> Result<(), String> {
    args.check()?;
    let ca = match &args.server_ca {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("--server-ca {}: {e}", p.display()))?),
        None => None,
    };
    let server = ServerClient::new(&args.server, args.token_file.clone(), ca.as_deref())?;
    let metrics = Arc::new(WatchMetrics::default());
    let listener = tokio::net::TcpListener::bind(args.health_addr)
        .await
        .map_err(|e| format!("--health-addr {}: {e}", args.health_addr))?;
    let health_addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Tests and scripts read the port picked for :0 from here.
    println!("HEALTH_ADDR={health_addr}");
    let health = health_router(metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, health).await {
            tracing::error!(error = %e, "the health server stopped");
        }
    });
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no Kubernetes configuration (in-cluster or KUBECONFIG): {e}"))?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let mut elector = Elector::new(
        client.clone(),
        LeaseConfig {
            name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            identity: identity.clone(),
            duration: Duration::from_secs(args.lease_duration_s),
            renew_deadline: Duration::from_secs(args.renew_deadline_s),
            retry_period: Duration::from_secs(args.retry_period_s),
        },
    );
    tracing::info!(identity = %identity, lease = %format!("{}/{}", args.lease_namespace, args.lease_name), server = %redacted(&args.server), "svc-lbaas watch: waiting for the lease");
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // Candidate: one round per retry period until the Lease is ours (a
    // round that hangs is given up after the renew deadline).
    let round = elector.config().renew_deadline;
    loop {
        match tokio::time::timeout(round, elector.try_acquire_or_renew()).await {
            Ok(Ok(true)) => break,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not read or write the lease"),
            Err(_) => tracing::warn!("the lease round timed out"),
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(elector.config().retry_period) => {}
        }
    }
    metrics.hold_lease(true);
    tracing::info!(identity = %identity, "holding the lease: watching Services, EndpointSlices and Endpoints");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: Some(identity.clone()),
        },
    );
    enum End {
        Lost,
        Shutdown,
        Failed(String),
    }
    let end = tokio::select! {
        () = keep_lease(&mut elector) => End::Lost,
        r = lead(client, server, recorder, metrics.clone(), &args) => End::Failed(r.err().unwrap_or_default()),
        () = &mut shutdown => End::Shutdown,
    };
    metrics.hold_lease(false);
    match end {
        End::Shutdown => {
            elector.release().await;
            tracing::info!("shut down; lease released");
            Ok(())
        }
        End::Lost => Err("lost the lease (not renewed within the renew deadline)".into()),
        End::Failed(e) => {
            elector.release().await;
            Err(e)
        }
    }
}

/// Renews the Lease every retry period; returns when it could not be renewed
/// within the renew deadline (or another replica holds it). The deadline
/// counts from when the last successful renewal was sent, and a call that
/// hangs is cut at the deadline: a leader never acts on a Lease a standby
/// may already have taken (which waits a whole lease duration, longer).
async fn keep_lease(elector: &mut Elector) {
    let config = elector.config().clone();
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(config.retry_period).await;
        let sent = tokio::time::Instant::now();
        let deadline = renewed + config.renew_deadline;
        match tokio::time::timeout_at(deadline, elector.try_acquire_or_renew()).await {
            Ok(Ok(true)) => renewed = sent,
            Ok(Ok(false)) => {
                tracing::error!("another replica holds the lease");
                return;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the lease"),
            Err(_) => {
                tracing::error!("the lease renewal hung past the renew deadline");
                return;
            }
        }
        if tokio::time::Instant::now() >= renewed + config.renew_deadline {
            return;
        }
    }
}

/// A URL for the log: without user or password.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn health_router(metrics: Arc<WatchMetrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(m): State<Arc<WatchMetrics>>| async move {
                let (ready, says) = if !m.holds_lease() {
                    (true, "standby: another replica holds the lease\n")
                } else if m.synced.load(Ordering::Relaxed) {
                    (true, "leader: lists synced\n")
                } else {
                    (false, "leader: listing\n")
                };
                // The status from the one table (crate::error).
                let status: StatusCode = crate::error::readiness_status(ready)
                    .try_into()
                    .unwrap_or_default();
                (status, says)
            }),
        )
        .route(
            "/metrics",
            get(|State(m): State<Arc<WatchMetrics>>| async move {
                ([("content-type", crate::metrics::CONTENT_TYPE)], m.render())
            }),
        )
        .with_state(metrics)
}

/// The leader's work: the reflectors, the queue's workers and the syncs.
/// Returns only on a failure that stops the watcher.
async fn lead(
    client: kube::Client,
    server: ServerClient,
    recorder: Recorder,
    metrics: Arc<WatchMetrics>,
    args: &WatchArgs,
) -> Result<(), String> {
    let queue = Queue::new(Backoff {
        base: Duration::from_secs(args.backoff_base_s),
        max: Duration::from_secs(args.backoff_max_s),
    });
    let relisted = Arc::new(Notify::new());
    let gateway_stores = Arc::new(gateway_store::GatewayStores::default());
    let (namespaces, namespaces_w) = reflector::store::<k8s_openapi::api::core::v1::Namespace>();
    let (services, services_w) = reflector::store::<Service>();
    let (slices, slices_w) = reflector::store::<EndpointSlice>();
    let (endpoints, endpoints_w) = reflector::store::<Endpoints>();
    let mut tasks = tokio::task::JoinSet::new();
    {
        let stream = watcher(Api::<Service>::all(client.clone()), Default::default())
            .default_backoff()
            .modify(|s| s.managed_fields_mut().clear())
            .reflect(services_w);
        tasks.spawn(follow_services(
            stream,
            queue.clone(),
            relisted.clone(),
            gateway_stores.clone(),
        ));
    }
    {
        let stream = watcher(
            Api::<EndpointSlice>::all(client.clone()),
            Default::default(),
        )
        .default_backoff()
        .modify(|s| s.managed_fields_mut().clear())
        .reflect(slices_w);
        tasks.spawn(follow_members(
            stream,
            queue.clone(),
            gateway_stores.clone(),
            |s: &EndpointSlice| slice_service_key(s),
        ));
    }
    {
        let stream = watcher(Api::<Endpoints>::all(client.clone()), Default::default())
            .default_backoff()
            .modify(|e| e.managed_fields_mut().clear())
            .reflect(endpoints_w);
        tasks.spawn(follow_members(
            stream,
            queue.clone(),
            gateway_stores.clone(),
            |e: &Endpoints| Some(key_of(e.namespace().as_deref()?, &e.name_any())),
        ));
    }
    for (what, ready) in [
        ("Services", services.wait_until_ready().await.is_ok()),
        ("EndpointSlices", slices.wait_until_ready().await.is_ok()),
        ("Endpoints", endpoints.wait_until_ready().await.is_ok()),
    ] {
        if !ready {
            return Err(format!(
                "the {what} reflector stopped before its first list"
            ));
        }
    }
    metrics.synced.store(true, Ordering::Relaxed);
    tracing::info!(
        services = services.len(),
        endpoint_slices = slices.len(),
        endpoints = endpoints.len(),
        "lists synced"
    );
    let controller = Arc::new(Controller {
        client,
        server,
        stores: Stores {
            services: services.clone(),
            slices,
            endpoints,
        },
        recorder,
        metrics: metrics.clone(),
        gateways: gateway_stores.clone(),
        namespaces,
    });
    // Gateway API kinds, when their CRDs are (or get) installed.
    tasks.spawn(gateways::discover_loop(
        controller.client.clone(),
        gateway_stores.clone(),
        queue.clone(),
        relisted.clone(),
        namespaces_w,
    ));
    for _ in 0..args.concurrency {
        let (queue, controller, metrics) = (queue.clone(), controller.clone(), metrics.clone());
        tasks.spawn(async move {
            let gauges = |queue: &Queue| {
                metrics.queue(queue.depth(), queue.in_flight());
            };
            loop {
                let key = queue.next().await;
                gauges(&queue);
                let outcome = match key.strip_prefix(gateway_store::KEY_PREFIX) {
                    Some(gateway) => controller.reconcile_gateway(gateway).await,
                    None => controller.reconcile(&key).await,
                };
                if let Some(pause) = queue.done(&key, outcome) {
                    tracing::debug!(service = %key, ?outcome, ?pause, "back later");
                }
                gauges(&queue);
            }
        });
    }
    tasks.spawn(sync_loop(
        services,
        controller,
        queue,
        relisted,
        Duration::from_secs(args.sync_period_s),
    ));
    // Every task loops for ever: one that ends is a bug worth a restart.
    match tasks.join_next().await {
        Some(Err(e)) => Err(format!("a watcher task failed: {e}")),
        _ => Err("a watcher task ended".into()),
    }
}

type WatchItem<K> = Result<watcher::Event<K>, watcher::Error>;

/// A Service's key queued, and the keys of the Gateways whose routes send
/// to it (its endpoints are their members).
struct Fanout {
    queue: Arc<Queue>,
    gateways: Arc<gateway_store::GatewayStores>,
}

impl Fanout {
    fn add(&self, key: &str) {
        self.queue.add(key);
        if let Some((namespace, name)) = key.split_once('/') {
            for gateway in self.gateways.keys_for_service(namespace, name) {
                self.queue.add(&gateway);
            }
        }
    }
}

/// Services' events to queue keys: a (re)list queues every Service and asks
/// for a sync; an update queues its Service only when what a reconcile reads
/// changed (not for the status this watcher writes).
async fn follow_services(
    stream: impl futures_util::Stream<Item = WatchItem<Service>>,
    queue: Arc<Queue>,
    relisted: Arc<Notify>,
    gateways: Arc<gateway_store::GatewayStores>,
) {
    let queue = Fanout { queue, gateways };
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut listing: HashMap<String, String> = HashMap::new();
    futures_util::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "the Service watch failed; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => listing.clear(),
            watcher::Event::InitApply(s) => {
                listing.insert(service_key(&s), controller::fingerprint(&s));
            }
            watcher::Event::InitDone => {
                // Deleted while unwatched: queued too (the reconcile finds it gone).
                let gone: Vec<String> = seen
                    .keys()
                    .filter(|k| !listing.contains_key(*k))
                    .cloned()
                    .collect();
                seen = std::mem::take(&mut listing);
                for key in seen.keys().chain(gone.iter()) {
                    queue.add(key);
                }
                tracing::info!(services = seen.len(), "Services listed");
                relisted.notify_one();
            }
            watcher::Event::Apply(s) => {
                let key = service_key(&s);
                let print = controller::fingerprint(&s);
                if seen.insert(key.clone(), print.clone()).as_ref() != Some(&print) {
                    queue.add(&key);
                }
            }
            watcher::Event::Delete(s) => {
                let key = service_key(&s);
                seen.remove(&key);
                queue.add(&key);
            }
        }
    }
}

fn service_key(s: &Service) -> String {
    key_of(&s.namespace().unwrap_or_default(), &s.name_any())
}

/// EndpointSlices' or Endpoints' events to their Services' keys; after a
/// re-list, also the Services of objects that went while unwatched.
async fn follow_members<K>(
    stream: impl futures_util::Stream<Item = WatchItem<K>>,
    queue: Arc<Queue>,
    gateways: Arc<gateway_store::GatewayStores>,
    service_of: impl Fn(&K) -> Option<String>,
) where
    K: Resource + ResourceExt,
{
    let queue = Fanout { queue, gateways };
    // Object (namespace/name) -> its Service's key.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut listing: HashMap<String, String> = HashMap::new();
    let object_key = |o: &K| key_of(&o.namespace().unwrap_or_default(), &o.name_any());
    futures_util::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "a member watch failed; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => listing.clear(),
            watcher::Event::InitApply(o) => {
                if let Some(service) = service_of(&o) {
                    listing.insert(object_key(&o), service);
                }
            }
            watcher::Event::InitDone => {
                for (object, service) in &seen {
                    if !listing.contains_key(object) {
                        queue.add(service);
                    }
                }
                seen = std::mem::take(&mut listing);
                let services: HashSet<&String> = seen.values().collect();
                for service in services {
                    queue.add(service);
                }
            }
            watcher::Event::Apply(o) => {
                if let Some(service) = service_of(&o) {
                    // A slice that moves to another Service: both are queued.
                    if let Some(before) = seen.insert(object_key(&o), service.clone())
                        && before != service
                    {
                        queue.add(&before);
                    }
                    queue.add(&service);
                }
            }
            watcher::Event::Delete(o) => {
                seen.remove(&object_key(&o));
                if let Some(service) = service_of(&o) {
                    queue.add(&service);
                }
            }
        }
    }
}

/// After every (re)list of Services and every period: the full list to
/// `/v1/sync?orphansOnly=true`; on the period, every Service queued again.
async fn sync_loop(
    services: Store<Service>,
    controller: Arc<Controller>,
    queue: Arc<Queue>,
    relisted: Arc<Notify>,
    period: Duration,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // After a failed sync: the next try sooner than the period (5 s, doubling).
    let mut retry: Option<Duration> = None;
    loop {
        let pause = retry.unwrap_or(Duration::MAX);
        tokio::select! {
            () = relisted.notified() => {}
            _ = tick.tick() => {
                for s in services.state() {
                    queue.add(&service_key(&s));
                }
                for (namespace, name) in controller.gateways.gateway_names() {
                    queue.add(&gateway_store::gateway_key(&namespace, &name));
                }
            }
            () = tokio::time::sleep(pause), if retry.is_some() => {}
        }
        let items: Vec<serde_json::Value> = services
            .state()
            .iter()
            .filter_map(|s| serde_json::to_value(&**s).ok())
            .collect();
        let count = items.len();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        match controller.server.sync_orphans(&list).await {
            Ok(answer) => {
                let orphans: Vec<String> = answer["orphans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        format!(
                            "{} {}",
                            o["service"].as_str().unwrap_or("?"),
                            o["action"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                tracing::info!(services = count, orphans = ?orphans, "synced");
                controller.metrics.synced_once("ok");
                retry = None;
            }
            Err(e) => {
                let next = retry.map_or(Duration::from_secs(5), |r| (r * 2).min(period));
                tracing::warn!(error = %e.summary(), retry_in = ?next, "sync failed");
                controller.metrics.synced_once("failed");
                retry = Some(next);
            }
        }
        // Gateways deleted while unwatched: only once Gateways were listed
        // (an empty store that never listed would collect every one).
        if controller.gateways.gateways_listed() {
            let names = controller.gateways.gateway_names();
            match controller.server.sync_gateways(&names).await {
                Ok(answer) => {
                    let orphans: Vec<String> = answer["orphans"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|o| {
                            format!(
                                "{} {}",
                                o["gateway"].as_str().unwrap_or("?"),
                                o["action"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    tracing::info!(gateways = names.len(), orphans = ?orphans, "Gateways synced");
                }
                Err(e) => {
                    tracing::warn!(error = %e.summary(), "Gateway sync failed");
                    retry.get_or_insert(Duration::from_secs(5));
                }
            }
        }
    }
}
