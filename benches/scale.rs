//! Many `type: LoadBalancer` Services at once on the embedded simulator (1 s
//! provisioning, OpenStack calls limited to 16 in flight, the default):
//! 1,000 (50 under `cargo test`) applied over REST, each its own
//! `POST /v1/apply` at the same moment, then as one `POST /v1/sync`, each
//! run on a fresh simulator (`svc-lbaas sim`, a process of its own) behind
//! the server on loopback.
//!
//! The ideal for the concurrency limit: every Service needs `calls` calls
//! besides its wait's status reads (observation, creates, the answer's
//! reads) of `call` each when alone (the median of three lone applies: the
//! time outside the wait over those calls, as if none ran side by side), so `count` of them need
//! `count x calls x call / 16` of call time in all, plus one provisioning
//! delay (every wait overlaps the others): `ideal = 1 s + count x calls x
//! call / 16`. Prints the total against it, p50/p99 of the REST applies,
//! errors, the status reads a second, the CPU time and the peak RSS of
//! the server (`svc-lbaas serve`, a process of its own as in production:
//! neither the load's client nor the simulator is counted) of each run.
//! Exits non-zero on an error or on more than 5 status reads a second.
//!
//! `cargo bench --bench scale` (about a minute; each run in a process of
//! its own).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use svc_lbaas::config::Settings;
use svc_lbaas::reconcile::{ApplyInput, ApplyOptions, ProgressEvent};

const DELAY: Duration = Duration::from_secs(1);
const CALL_SLOTS: f64 = 16.0;
/// The server's warm-up Services; 9997..10000 are [`alone`]'s.
const WARM_UP: std::ops::Range<usize> = 9994..9997;

fn service(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("web-{i}"), "namespace": "bench"},
        "spec": {"type": "LoadBalancer", "clusterIP": format!("10.2.{}.{}", 10 + i / 250, 1 + i % 250),
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

fn endpoints(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": format!("web-{i}"), "namespace": "bench"},
        "subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "http", "port": 8080}]}]})
}

/// A simulator in a process of its own (`svc-lbaas sim`), so that the CPU
/// and memory measured here are the server's (and the client's); killed
/// when dropped.
struct Simulator {
    child: std::process::Child,
    env: std::collections::HashMap<String, String>,
}

impl Simulator {
    fn start(count: usize, delay: Duration) -> Simulator {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_svc-lbaas"))
            .args(["sim", "--listen", "127.0.0.1:0", "--provisioning-delay-ms"])
            .arg(delay.as_millis().to_string())
            .arg("--public-addresses")
            .arg((count + 50).to_string())
            .env("SVC_LBAAS_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starts the simulator");
        let mut env = std::collections::HashMap::new();
        let out = child.stdout.take().expect("its stdout");
        for line in std::io::BufReader::new(out).lines() {
            let line = line.expect("a line");
            let (k, v) = line.split_once('=').expect("KEY=value");
            let service = |name: &str| (name.to_string(), v.to_string());
            match k {
                "SERVICE_SUBNET" => env.extend([service("SVC_LBAAS_SERVICE_SUBNET")]),
                "POD_SUBNET" => env.extend([service("SVC_LBAAS_POD_SUBNET")]),
                "PUBLIC_SUBNET" => env.extend([service("SVC_LBAAS_EXTERNAL_SVC_SUBNET")]),
                k if k.starts_with("OS_") => env.extend([service(k)]),
                _ => {}
            }
            if k == "ROUTER" {
                break;
            }
        }
        Simulator { child, env }
    }

    /// The simulator's root URL (`http://127.0.0.1:PORT`).
    fn base(&self) -> String {
        let auth = self.env.get("OS_AUTH_URL").cloned().unwrap_or_default();
        let after_scheme = auth.find("://").map_or(0, |i| i + 3);
        let end = auth[after_scheme..]
            .find('/')
            .map_or(auth.len(), |i| after_scheme + i);
        auth[..end].to_string()
    }

    /// How long requests have held the simulated cloud (`/sim/stats`).
    async fn lock_held(&self, http: &reqwest::Client) -> Duration {
        let stats: Value = match http.get(format!("{}/sim/stats", self.base())).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        Duration::from_millis(stats["cloudLockHeldMs"].as_u64().unwrap_or(0))
    }
}

impl Simulator {
    fn cpu_time(&self) -> Duration {
        process_cpu_time(self.child.id())
    }
}

/// A process's CPU time so far (`/proc/PID/stat`, in clock ticks of 10 ms).
fn process_cpu_time(pid: u32) -> Duration {
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime, stime are 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|t| t.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `svc-lbaas serve` on the simulator, a process of its own with the
/// image's environment (`MALLOC_ARENA_MAX=2`, docker/Dockerfile), default
/// settings; killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    fn start(sim: &Simulator) -> Server {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_svc-lbaas"))
            .args([
                "serve",
                "--rest-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .envs(&sim.env)
            .env("MALLOC_ARENA_MAX", "2")
            .env("SVC_LBAAS_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starts the server");
        let out = child.stdout.take().expect("its stdout");
        let mut base = None;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("REST_ADDR=") {
                base = Some(format!("http://{a}"));
            }
            if line.starts_with("GRPC_ADDR=") {
                break;
            }
        }
        let base = base.expect("the server says where it listens");
        Server { child, base }
    }

    fn cpu_time(&self) -> Duration {
        process_cpu_time(self.child.id())
    }

    /// Three Services applied one after the other ([`WARM_UP`]), as a
    /// server that has run a while has seen creates: its waits have learnt
    /// how long this cloud takes to provision (a fresh one reads densely
    /// at first).
    async fn warm_up(&self) {
        let http = reqwest::Client::new();
        for i in WARM_UP {
            let answer = http
                .post(format!("{}/v1/apply", self.base))
                .json(&json!({"service": service(i), "endpoints": endpoints(i)}))
                .send()
                .await
                .expect("warms up");
            assert_eq!(answer.status(), 200, "warm-up: not converged");
        }
    }

    /// Peak RSS since the last reset (`VmHWM`).
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    fn reset_peak_rss(&self) {
        // "5" resets VmHWM to the current RSS; without the file the figure
        // is the process's peak so far, an upper bound.
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    /// `svc_lbaas_status_reads_total` from its `/metrics`.
    async fn status_reads(&self, http: &reqwest::Client) -> f64 {
        let text = match http.get(format!("{}/metrics", self.base)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| l.starts_with("svc_lbaas_status_reads_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh simulator, the server on it, and this process's own state on
/// the same simulator for [`alone`]'s lone applies.
async fn server(
    count: usize,
    delay: Duration,
) -> (Server, Simulator, std::sync::Arc<svc_lbaas::api::AppState>) {
    let sim = Simulator::start(count, delay);
    let env = |k: &str| sim.env.get(k).cloned();
    let settings = Settings::load(None, env).expect("settings");
    let (state, embedded) = svc_lbaas::startup::build_state(settings, None, &env)
        .await
        .expect("builds");
    assert!(embedded.is_none(), "the simulator runs apart");
    let server = Server::start(&sim);
    server.warm_up().await;
    (server, sim, state)
}

/// This process's status reads (the lone applies').
fn status_reads() -> f64 {
    svc_lbaas::metrics::global().status_reads() as f64
}

/// What a run's figures are counted from.
struct Start {
    at: Instant,
    reads: f64,
    cpu: Duration,
    sim_cpu: Duration,
    sim_lock: Duration,
}

impl Start {
    async fn now(server: &Server, sim: &Simulator, http: &reqwest::Client) -> Start {
        server.reset_peak_rss();
        Start {
            reads: server.status_reads(http).await,
            cpu: server.cpu_time(),
            sim_cpu: sim.cpu_time(),
            sim_lock: sim.lock_held(http).await,
            at: Instant::now(),
        }
    }

    /// The run's figures, now that it is over (`lone`: the calls a Service
    /// needs and a call's time, from [`alone`]).
    async fn run(
        self,
        (server, sim): (&Server, &Simulator),
        http: &reqwest::Client,
        count: usize,
        (calls, call): (u64, Duration),
        latencies: Vec<Duration>,
        errors: usize,
    ) -> Run {
        let total = self.at.elapsed();
        Run {
            total,
            ideal: ideal(count, calls, call),
            cpu: server.cpu_time().saturating_sub(self.cpu),
            sim_cpu: sim.cpu_time().saturating_sub(self.sim_cpu),
            sim_lock: sim.lock_held(http).await.saturating_sub(self.sim_lock),
            calls,
            call,
            latencies,
            errors,
            reads_per_s: (server.status_reads(http).await - self.reads) / total.as_secs_f64(),
            peak_rss_kib: server.peak_rss_kib(),
        }
    }
}

struct Run {
    total: Duration,
    ideal: Duration,
    /// The server's CPU time over the run.
    cpu: Duration,
    /// The simulator's CPU time over the run.
    sim_cpu: Duration,
    /// How long the run's requests held the simulated cloud, one at a time.
    sim_lock: Duration,
    calls: u64,
    call: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    reads_per_s: f64,
    peak_rss_kib: u64,
}

impl Run {
    fn print(&self, what: &str, count: usize) {
        let at = |q: f64| {
            self.latencies
                .get(((self.latencies.len().max(1) - 1) as f64 * q) as usize)
                .map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
        };
        println!(
            "{what}: {count} Services, {:.2} s in all; ideal {:.2} s = 1 s + {count} x {} calls x {:.2} ms / 16 call slots: {:.2}x; \
             CPU over the run: server {:.2} s ({:.1} ms a Service), simulator {:.2} s; the simulator's one lock held {:.2} s in all; {:.0}% of the {} cores busy; \
             apply p50 {}, p99 {}; {} errors; {:.2} status reads a second; the server's peak RSS {:.0} MiB",
            self.total.as_secs_f64(),
            self.ideal.as_secs_f64(),
            self.calls,
            self.call.as_secs_f64() * 1000.0,
            self.total.as_secs_f64() / self.ideal.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 1000.0 / count as f64,
            self.sim_cpu.as_secs_f64(),
            self.sim_lock.as_secs_f64(),
            100.0 * (self.cpu + self.sim_cpu).as_secs_f64()
                / (self.total.as_secs_f64() * cores() as f64),
            cores(),
            at(0.5),
            at(0.99),
            self.errors,
            self.reads_per_s,
            self.peak_rss_kib as f64 / 1024.0
        );
    }
}

/// Three Services alone, one after the other: the calls one needs besides
/// its wait's status reads, and the median time of one call (a lone apply's
/// time outside its wait, over those calls, as if none ran side by side).
async fn alone(state: &svc_lbaas::api::AppState) -> (u64, Duration) {
    let options = ApplyOptions::new(true, Duration::from_secs(60));
    let mut runs = Vec::new();
    for i in 9997..10_000 {
        let input =
            ApplyInput::from_json(json!({"service": service(i), "endpoints": endpoints(i)}))
                .expect("a valid request");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let reads_before = status_reads();
        let started = Instant::now();
        let answer = state
            .reconciler
            .apply_reporting(&input, options, Some(tx))
            .await
            .expect("applies alone");
        let took = started.elapsed();
        assert!(answer.converged, "alone: not converged");
        let mut waited = Duration::ZERO;
        while let Ok(event) = rx.try_recv() {
            if let ProgressEvent::Waited { elapsed_ms, .. } = event {
                waited += Duration::from_millis(elapsed_ms);
            }
        }
        let reads = (status_reads() - reads_before) as u32;
        let c = answer.openstack_calls;
        let calls = (c.reads + c.writes).saturating_sub(reads).max(1);
        runs.push((took.saturating_sub(waited) / calls, u64::from(calls)));
    }
    runs.sort();
    let (call, calls) = runs[runs.len() / 2];
    (calls, call)
}

/// The ideal for the call slots: one provisioning delay (every wait
/// overlaps the others) plus every Service's calls, each as long as alone,
/// 16 in flight at all times.
fn ideal(count: usize, calls: u64, call: Duration) -> Duration {
    DELAY + call.mul_f64(count as f64 * calls as f64 / CALL_SLOTS)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn over_rest(count: usize) -> Run {
    let (server, sim, state) = server(count, DELAY).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(count + 10)
        .timeout(Duration::from_secs(600))
        .build()
        .expect("a client");
    let lone = alone(&state).await;
    let start = Start::now(&server, &sim, &http).await;
    let applies = (0..count).map(|i| {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let sent = http
                .post(format!("{base}/v1/apply"))
                .json(&json!({"service": service(i), "endpoints": endpoints(i)}))
                .send()
                .await;
            let ok = match sent {
                Ok(r) if r.status() == 200 => true,
                Ok(r) => {
                    eprintln!(
                        "web-{i}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                    false
                }
                Err(e) => {
                    eprintln!("web-{i}: {e}");
                    false
                }
            };
            (t.elapsed(), ok)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for done in futures_util::future::join_all(applies).await {
        let (took, ok) = done.expect("the apply task");
        latencies.push(took);
        errors += usize::from(!ok);
    }
    latencies.sort();
    start
        .run((&server, &sim), &http, count, lone, latencies, errors)
        .await
}

async fn as_one_sync(count: usize) -> Run {
    let (server, sim, state) = server(count, DELAY).await;
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("a client");
    let lone = alone(&state).await;
    let mut items: Vec<Value> = (0..count).map(service).collect();
    items.extend((0..count).map(endpoints));
    // The warm-up and lone Services stay listed, so the sync keeps them.
    items.extend((WARM_UP.start..10_000).map(service));
    items.extend((WARM_UP.start..10_000).map(endpoints));
    // Sent as bytes, the JSON value dropped first: the peak RSS measured
    // is the server's, not the load's copy of the request.
    let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
        .expect("a request body");
    let start = Start::now(&server, &sim, &http).await;
    let answer: Value = http
        .post(format!("{base}/v1/sync?timeout_s=600"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("syncs")
        .json()
        .await
        .expect("a sync answer");
    let services = answer["services"].as_array().cloned().unwrap_or_default();
    let converged = services.iter().filter(|s| s["status"] == 200).count();
    let errors = (count + 10_000 - WARM_UP.start).saturating_sub(converged);
    if errors > 0 {
        let first = services.iter().find(|s| s["status"] != 200);
        eprintln!("sync: {errors} not converged; first: {first:?}");
    }
    start
        .run((&server, &sim), &http, count, lone, Vec::new(), errors)
        .await
}

/// Each run in a process of its own (this program again, with `--only`),
/// on a simulator and a server of its own.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let count = if benching { 1000 } else { 50 };
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let Some(only) = only else {
        let me = std::env::current_exe().expect("this program");
        let mut failed = false;
        for run in ["rest", "sync"] {
            let mut child = std::process::Command::new(&me);
            child.args(["--only", run]);
            if benching {
                child.arg("--bench");
            }
            failed |= !child.status().expect("runs").success();
        }
        if failed {
            println!(
                "OVER: an apply failed, or the waits read the status more than 5 times a second"
            );
            std::process::exit(1);
        }
        return;
    };
    svc_lbaas::listener::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let run = if only == "rest" {
        let r = runtime.block_on(over_rest(count));
        r.print("REST, one apply each", count);
        r
    } else {
        let r = runtime.block_on(as_one_sync(count));
        r.print("one /v1/sync", count);
        r
    };
    if run.errors > 0 || run.reads_per_s > 5.0 {
        std::process::exit(1);
    }
}
