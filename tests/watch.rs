//! `svc-lbaas watch` end to end: the watcher binary against a fake Kubernetes
//! API with watch semantics (tests/fake_kube) and a real `svc-lbaas serve` on
//! its embedded simulated cloud, all on loopback (the server's calls pass
//! through the fake, which orders them among the Kubernetes calls). Every
//! wait is bounded.
//!
//! Covered: create, update and delete through the finalizer (its patch
//! before the server's first apply; status by server-side apply with the
//! field manager; one Event per change, a repeat as a series, none for an
//! unchanged re-list; a skipped Service carries nothing); the watcher killed
//! while a Service is deleted (the Service and its load balancer stay until a
//! watcher is back, then both go); a 410 Gone mid-watch (re-list, the Service
//! created meanwhile applied, the sync collecting an orphan, an EndpointSlice
//! whose deletion was never seen noticed by its re-list); the periodic resync
//! (re-apply and collection without a re-list); the status's shapes (`ipMode:
//! Proxy`, a hostname); Endpoints without slices; a Service's several
//! EndpointSlices; a refused Service (a Warning with the problem, the others
//! go on, fixed it goes through); Services turning ExternalName, with and
//! without the finalizer; an owner keeping its floating IP while it has
//! sharers; two replicas (only the leader calls the server and Kubernetes
//! beyond the Lease; the standby takes over within the Lease's duration
//! after the leader is killed); a leader whose Lease calls hang (it stops
//! within the renew deadline); and that the RBAC of docker/k8s/watcher.yaml
//! allows every call the watcher made and nothing it did not use.
//!
//! Not covered (the fake's limits, see tests/fake_kube): authentication and
//! RBAC enforcement by an API server, admission webhooks, pagination, field
//! selectors, server-side apply's field ownership, strategic merge patches,
//! API priority and fairness (429s), watch-list streaming, and a real API
//! server's timing.

mod fake_kube;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_kube::{FakeKube, Kind};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_svc-lbaas");
const FINALIZER: &str = "svc-lbaas.io/load-balancer";
/// The longest any condition below is waited for.
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process, killed (SIGKILL) when dropped; its output in files.
struct Proc {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, dir: &Path, name: &str) -> Proc {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(&err).expect("err file"))
            .spawn()
            .expect("spawn svc-lbaas");
        Proc { child, out, err }
    }

    /// The `PREFIX=value` line the process prints once it listens.
    async fn printed(&self, prefix: &str) -> String {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix(prefix)) {
                return v.to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {prefix} line; stderr:\n{}", self.stderr());
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "svc-lbaas-watch-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `svc-lbaas serve` on its simulator (no OpenStack variables reach it).
async fn serve(dir: &Path) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--rest-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ]);
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") || k.starts_with("SVC_LBAAS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SVC_LBAAS_SIM_PROVISIONING_DELAY_MS", "50")
        .env("SVC_LBAAS_ORPHAN_GRACE_S", "0")
        .env("SVC_LBAAS_LOG", "warn");
    let p = Proc::spawn(cmd, dir, "serve");
    let addr = p.printed("REST_ADDR=").await;
    (p, addr)
}

/// What every test starts with: a directory, the fake API, a server.
struct Rig {
    dir: TempDir,
    fake: FakeKube,
    serve: Proc,
    server: String,
}

async fn rig(name: &str) -> Rig {
    let dir = TempDir::new(name);
    let fake = FakeKube::start().await;
    let (serve, server) = serve(&dir.0).await;
    Rig {
        dir,
        fake,
        serve,
        server,
    }
}

/// `svc-lbaas watch` against the fake, as replica `identity`.
async fn watch(dir: &Path, fake: &FakeKube, server: &str, identity: &str) -> (Proc, String) {
    watch_every(dir, fake, server, identity, 3600).await
}

/// `svc-lbaas watch` with a resync every `sync_period_s` seconds.
async fn watch_every(
    dir: &Path,
    fake: &FakeKube,
    server: &str,
    identity: &str,
    sync_period_s: u32,
) -> (Proc, String) {
    let kubeconfig = dir.join(format!("kubeconfig-{identity}"));
    std::fs::write(&kubeconfig, fake.kubeconfig(&format!("token-{identity}"))).expect("write");
    // The server through the fake (which logs each call in order); each
    // replica with its own server token, to tell who called.
    fake.set_upstream(server);
    let token_file = dir.join(format!("server-token-{identity}"));
    std::fs::write(&token_file, format!("server-token-{identity}\n")).expect("write");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "watch",
        "--server",
        &format!("http://{}/svc-lbaas", fake.addr),
    ])
    .arg("--token-file")
    .arg(&token_file)
    .args(["--health-addr", "127.0.0.1:0", "--identity", identity])
    .args(["--lease-namespace", "svc-lbaas"])
    .args(["--lease-duration-s", "3", "--renew-deadline-s", "2"])
    .args(["--retry-period-s", "1"])
    .args(["--sync-period-s", &sync_period_s.to_string()])
    .args(["--backoff-base-s", "1", "--backoff-max-s", "2"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("SVC_LBAAS_") || k.starts_with("POD_") || k == "HOME" {
            cmd.env_remove(k);
        }
    }
    cmd.env("KUBECONFIG", &kubeconfig)
        .env("SVC_LBAAS_LOG", "info,kube=warn");
    let p = Proc::spawn(cmd, dir, &format!("watch-{identity}"));
    let health = p.printed("HEALTH_ADDR=").await;
    (p, health)
}

/// Waits for `what` to hold (checked every 100 ms), or fails naming it.
async fn eventually<F: FnMut() -> bool>(what: &str, logs: &[&Proc], mut f: F) {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs: Vec<String> = logs.iter().map(|p| p.stderr()).collect();
    panic!(
        "timed out waiting for: {what}\n--- logs\n{}",
        logs.join("\n---\n")
    );
}

fn service(name: &str, cluster_ip: &str, ports: &[u16]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"name": format!("p{p}"), "port": p, "protocol": "TCP", "targetPort": 8000 + p}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"type": "LoadBalancer", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": ports, "selector": {"app": name}}})
}

fn slice(service: &str, ports: &[u16], addresses: &[&str]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"name": format!("p{p}"), "port": 8000 + p, "protocol": "TCP"}))
        .collect();
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"addresses": [a], "conditions": {"ready": true}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abcde"), "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
}

fn finalizers(fake: &FakeKube, name: &str) -> Vec<String> {
    fake.get(Kind::Service, "shop", name)
        .and_then(|s| serde_json::from_value(s["metadata"]["finalizers"].clone()).ok())
        .unwrap_or_default()
}

fn ingress_ip(fake: &FakeKube, name: &str) -> Option<String> {
    fake.get(Kind::Service, "shop", name)?
        .pointer("/status/loadBalancer/ingress/0/ip")?
        .as_str()
        .map(str::to_string)
}

/// Events about `shop/name` with this reason.
fn events(fake: &FakeKube, name: &str, reason: &str) -> Vec<Value> {
    fake.all(Kind::Event)
        .into_iter()
        .filter(|e| e["regarding"]["name"] == name && e["reason"] == reason)
        .collect()
}

fn all_events(fake: &FakeKube) -> usize {
    fake.all(Kind::Event).len()
}

/// The server's view of a Service: (HTTP status, body).
async fn server_view(server: &str, name: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{server}/v1/services/shop/{name}"))
        .await
        .expect("server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn members(view: &Value) -> Vec<usize> {
    view["loadBalancer"]["listeners"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| l["pool"]["members"].as_array().map_or(0, Vec::len))
                .collect()
        })
        .unwrap_or_default()
}

async fn metrics(health: &str) -> String {
    reqwest::get(format!("http://{health}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default()
}

/// A counter's value (0 until it is first counted).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A gauge's value: it must be there.
fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// The server calls (through the fake) made with this replica's token.
fn server_calls(fake: &FakeKube, identity: &str) -> Vec<fake_kube::Request> {
    let token = format!("server-token-{identity}");
    fake.requests()
        .into_iter()
        .filter(|r| r.uri.starts_with("/svc-lbaas/") && r.token == token)
        .collect()
}

/// Waits until the watcher is idle: nothing queued, nothing being
/// reconciled, and no reconcile ended for a second.
async fn settled(health: &str) {
    let state = |text: String| -> (f64, f64, f64) {
        let total = text
            .lines()
            .filter(|l| l.starts_with("svc_lbaas_watch_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (
            total,
            gauge(&text, "svc_lbaas_watch_queue_depth"),
            gauge(&text, "svc_lbaas_watch_reconciles_in_flight"),
        )
    };
    let mut last = state(metrics(health).await);
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = state(metrics(health).await);
        if now == last && now.1 == 0.0 && now.2 == 0.0 {
            return;
        }
        last = now;
    }
    panic!("the watcher never went idle");
}

fn lease_holder(fake: &FakeKube) -> Option<String> {
    fake.get(Kind::Lease, "svc-lbaas", "svc-lbaas-watcher")?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

/// What RBAC sees of a request: (apiGroup, resource[/subresource], verb, name).
/// A call's RBAC attributes; `None` for discovery (`/api`, `/apis`,
/// `/apis/<group>/<version>`), which every authenticated user may read
/// (Kubernetes' `system:discovery`).
fn rbac_attributes(r: &fake_kube::Request) -> Option<(String, String, String, Option<String>)> {
    let (path, query) = r.uri.split_once('?').unwrap_or((&r.uri, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api"] | ["apis"] | ["apis", _] | ["apis", _, _] => return None,
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("not an API path: {}", r.uri),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, name) = match rest {
        [resource] => (resource.to_string(), None),
        [resource, name] => (resource.to_string(), Some(name.to_string())),
        [resource, name, sub] => (format!("{resource}/{sub}"), Some(name.to_string())),
        _ => panic!("not a resource path: {}", r.uri),
    };
    let watching = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (r.method.as_str(), name.is_some()) {
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (m, _) => panic!("unexpected method {m}"),
    };
    Some((group.to_string(), resource, verb.to_string(), name))
}

/// The rules of `docker/k8s/watcher.yaml`'s ClusterRole and Role, one
/// (apiGroup, resource, verb, resourceNames) per combination.
fn manifest_rules() -> Vec<(String, String, String, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/k8s/watcher.yaml"
    ))
    .expect("watcher.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        for rule in doc["rules"].as_array().expect("rules") {
            for g in strings(&rule["apiGroups"]) {
                for res in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        out.push((
                            g.clone(),
                            res.clone(),
                            verb,
                            strings(&rule["resourceNames"]),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Every call the watcher made is allowed by the manifest's RBAC, and every
/// rule the manifest grants that `exercised` (group, resource, verb) says
/// this test exercises was used by one of them.
fn check_rbac(requests: &[fake_kube::Request], exercised: impl Fn(&str, &str, &str) -> bool) {
    let rules = manifest_rules();
    let mut used = vec![false; rules.len()];
    for r in requests {
        let Some((group, resource, verb, name)) = rbac_attributes(r) else {
            continue;
        };
        let allowed = rules.iter().position(|(g, res, v, names)| {
            *g == group
                && *res == resource
                && *v == verb
                && (names.is_empty() || name.as_ref().is_some_and(|n| names.contains(n)))
        });
        match allowed {
            Some(i) => used[i] = true,
            None => panic!(
                "RBAC in watcher.yaml does not allow {verb} {group}/{resource} ({} {})",
                r.method, r.uri
            ),
        }
    }
    let unused: Vec<_> = rules
        .iter()
        .zip(&used)
        .filter(|((g, res, v, _), u)| !**u && exercised(g, res, v))
        .map(|(r, _)| r)
        .collect();
    assert!(
        unused.is_empty(),
        "watcher.yaml grants what the watcher never used: {unused:?}"
    );
}

/// Polls an async condition (the server's view) until it holds.
macro_rules! eventually_async {
    ($what:expr, $logs:expr, $cond:expr) => {{
        let start = Instant::now();
        loop {
            if $cond {
                break;
            }
            if start.elapsed() > PATIENCE {
                let logs: Vec<String> = $logs.iter().map(|p: &&Proc| p.stderr()).collect();
                panic!(
                    "timed out waiting for: {}\n--- logs\n{}",
                    $what,
                    logs.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_created_updated_and_deleted_through_the_finalizer() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("crud").await;
    let (watcher, health) = watch(&dir.0, &fake, &server, "a").await;
    let logs = [&watcher, &serve];

    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    fake.put(
        Kind::EndpointSlice,
        slice("web", &[80], &["10.1.0.5", "10.1.0.6"]),
    );
    // Headless: the server skips it, so it never carries the finalizer.
    let mut db = service("db", "None", &[5432]);
    db["spec"]["clusterIPs"] = json!(["None"]);
    fake.put(Kind::Service, db);

    eventually("web's ingress IP in its status", &logs, || {
        ingress_ip(&fake, "web").is_some_and(|ip| ip.starts_with("172.24.4."))
    })
    .await;
    let ip = ingress_ip(&fake, "web").unwrap();
    assert_eq!(finalizers(&fake, "web"), [FINALIZER]);
    eventually_async!("both members on the load balancer", logs, {
        members(&server_view(&server, "web").await.1) == [2]
    });
    // The finalizer came before the first apply: the first write the
    // watcher made to web was the finalizer's patch, and the server's first
    // apply of web came after it (the fake orders both).
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.uri.contains("/services/web"))
        .collect();
    assert!(
        writes[0].body["metadata"]["finalizers"] == json!([FINALIZER])
            && writes[0].body["metadata"]["resourceVersion"].is_string(),
        "{:?}",
        writes[0]
    );
    let first_apply = server_calls(&fake, "a")
        .into_iter()
        .find(|r| {
            r.uri.starts_with("/svc-lbaas/v1/apply")
                && r.body["service"]["metadata"]["name"] == "web"
        })
        .expect("an apply of web");
    assert!(
        writes[0].seq < first_apply.seq,
        "{writes:?} {first_apply:?}"
    );
    // The status as the API server keeps it: the same again is not written.
    assert_eq!(
        fake.get(Kind::Service, "shop", "web").unwrap()["status"]["loadBalancer"]["ingress"][0]["ipMode"],
        "VIP"
    );
    // The status by server-side apply with the watcher's field manager.
    let status_write = writes
        .iter()
        .find(|r| r.uri.contains("/status"))
        .expect("a status write");
    assert_eq!(status_write.content_type, "application/apply-patch+yaml");
    assert!(
        status_write.uri.contains("fieldManager=svc-lbaas-watcher"),
        "{}",
        status_write.uri
    );
    let created = events(&fake, "web", "LoadBalancerCreated");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["type"], "Normal");
    assert_eq!(created[0]["reportingController"], "svc-lbaas-watcher");
    assert_eq!(created[0]["reportingInstance"], "a");
    assert!(
        created[0]["note"].as_str().unwrap().contains(&ip),
        "{:?}",
        created[0]
    );
    // db: skipped, no finalizer, no status, no event.
    eventually_async!("the skip of db", logs, {
        metric(
            &metrics(&health).await,
            "svc_lbaas_watch_reconciles_total{result=\"skipped\"}",
        ) >= 1.0
    });
    assert!(finalizers(&fake, "db").is_empty());
    assert!(ingress_ip(&fake, "db").is_none());
    assert!(
        fake.all(Kind::Event)
            .iter()
            .all(|e| e["regarding"]["name"] != "db")
    );
    assert_eq!(server_view(&server, "db").await.0, 404);

    // An update: a second port.
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80, 443]));
    fake.put(
        Kind::EndpointSlice,
        slice("web", &[80, 443], &["10.1.0.5", "10.1.0.6", "10.1.0.7"]),
    );
    // (On a timeout: the server's view and the applies the watcher sent.)
    let start = Instant::now();
    loop {
        let view = server_view(&server, "web").await.1;
        if members(&view) == [3, 3] {
            break;
        }
        if start.elapsed() > PATIENCE {
            let applies: Vec<String> = server_calls(&fake, "a")
                .iter()
                .filter(|r| r.uri.starts_with("/svc-lbaas/v1/apply"))
                .map(|r| {
                    format!(
                        "#{} ports {} slices {} -> {}",
                        r.seq,
                        r.body["service"]["spec"]["ports"],
                        r.body["endpointSlices"],
                        r.status
                    )
                })
                .collect();
            panic!(
                "web never had [3, 3] members: {view}\napplies: {applies:#?}\n--- logs\n{}\n{}",
                watcher.stderr(),
                serve.stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("an Updated event", &logs, || {
        !events(&fake, "web", "LoadBalancerUpdated").is_empty()
    })
    .await;
    assert_eq!(ingress_ip(&fake, "web").as_deref(), Some(ip.as_str()));
    // Another member: the same Event again, as a series (a patch of it).
    settled(&health).await;
    fake.put(
        Kind::EndpointSlice,
        slice(
            "web",
            &[80, 443],
            &["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"],
        ),
    );
    eventually_async!("four members", logs, {
        members(&server_view(&server, "web").await.1) == [4, 4]
    });
    eventually("the Updated event's series", &logs, || {
        events(&fake, "web", "LoadBalancerUpdated")
            .iter()
            .any(|e| e["series"]["count"].as_u64() >= Some(2))
    })
    .await;

    // Nothing changed: a re-list re-applies every Service, and writes no
    // event and no status. (Measured once the watcher is idle: no reconcile
    // for a second.)
    settled(&health).await;
    let service_lists = |fake: &FakeKube| {
        fake.requests()
            .iter()
            .filter(|r| r.uri.starts_with("/api/v1/services?") && !r.uri.contains("watch="))
            .count()
    };
    let lists_before = service_lists(&fake);
    let unchanged_before = metric(
        &metrics(&health).await,
        "svc_lbaas_watch_reconciles_total{result=\"unchanged\"}",
    );
    let events_before = all_events(&fake);
    let status_writes = |fake: &FakeKube| {
        fake.requests()
            .iter()
            .filter(|r| r.uri.contains("/status"))
            .count()
    };
    let status_before = status_writes(&fake);
    fake.compact();
    // (Each reflector re-lists; any of them queues web again.)
    eventually_async!(
        "the Services re-listed and web re-applied, unchanged",
        logs,
        {
            service_lists(&fake) > lists_before
                && metric(
                    &metrics(&health).await,
                    "svc_lbaas_watch_reconciles_total{result=\"unchanged\"}",
                ) > unchanged_before
        }
    );
    settled(&health).await;
    assert_eq!(
        all_events(&fake),
        events_before,
        "no event for an unchanged apply"
    );
    assert_eq!(status_writes(&fake), status_before, "no status write");
    // The leader counts web's load balancer by the operating status answered.
    let online = "svc_lbaas_watch_load_balancers{operating_status=\"ONLINE\"}";
    assert_eq!(gauge(&metrics(&health).await, online), 1.0);

    // Deletion: held by the finalizer until the load balancer is gone.
    fake.delete(Kind::Service, "shop", "web");
    eventually("web gone from the cluster", &logs, || {
        fake.get(Kind::Service, "shop", "web").is_none()
    })
    .await;
    assert_eq!(server_view(&server, "web").await.0, 404);
    assert_eq!(events(&fake, "web", "LoadBalancerDeleted").len(), 1);
    let text = metrics(&health).await;
    assert_eq!(gauge(&text, "svc_lbaas_watch_lease_held"), 1.0);
    assert_eq!(gauge(&text, online), 0.0, "web's load balancer is gone");
    assert!(
        metric(
            &text,
            "svc_lbaas_watch_reconciles_total{result=\"created\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            "svc_lbaas_watch_reconciles_total{result=\"deleted\"}"
        ) >= 1.0
    );
    let ready = reqwest::get(format!("http://{health}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    // No call the watcher made was malformed: the only refusals are a 409
    // on a stale resourceVersion (retried by design) and a 404 (the Lease's
    // first read; a Service patch from a stale view of a Service already gone).
    let refused: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| {
            let expected_404 = r.status == 404
                && ((r.method == "GET" && r.uri.contains("/leases/"))
                    || (r.method == "PATCH" && r.uri.contains("/services/web")));
            r.status >= 400 && r.status != 409 && !expected_404
        })
        .map(|r| format!("{} {} -> {}", r.method, r.uri, r.status))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    // Gateways, Namespaces and Secrets are exercised by the Gateway test.
    check_rbac(
        &fake
            .requests()
            .into_iter()
            .filter(|r| !r.uri.starts_with("/svc-lbaas/"))
            .collect::<Vec<_>>(),
        |group, resource, _| {
            group != "gateway.networking.k8s.io"
                && resource != "namespaces"
                && resource != "secrets"
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_while_the_watcher_is_down_waits_for_it() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("down").await;
    let (mut watcher, _) = watch(&dir.0, &fake, &server, "a").await;
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    fake.put(Kind::EndpointSlice, slice("web", &[80], &["10.1.0.5"]));
    eventually("web's ingress IP", &[&watcher, &serve], || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    watcher.kill();
    fake.delete(Kind::Service, "shop", "web");
    // The finalizer holds it: the Service stays (being deleted) and so does
    // its load balancer, as long as the watcher is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = fake.get(Kind::Service, "shop", "web").expect("still there");
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(server_view(&server, "web").await.0, 200);
    // Back (another replica name: it waits out the dead one's lease).
    let (watcher, _) = watch(&dir.0, &fake, &server, "b").await;
    eventually(
        "web deleted once the watcher is back",
        &[&watcher, &serve],
        || fake.get(Kind::Service, "shop", "web").is_none(),
    )
    .await;
    assert_eq!(server_view(&server, "web").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_mid_watch_relists_and_the_sync_collects_orphans() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("gone").await;
    let (watcher, health) = watch(&dir.0, &fake, &server, "a").await;
    let logs = [&watcher, &serve];
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    fake.put(Kind::EndpointSlice, slice("web", &[80], &["10.1.0.5"]));
    eventually("web's ingress IP", &logs, || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    eventually_async!("the first sync", logs, {
        metric(
            &metrics(&health).await,
            "svc_lbaas_watch_syncs_total{result=\"ok\"}",
        ) >= 1.0
    });
    eventually_async!("web's member", logs, {
        members(&server_view(&server, "web").await.1) == [1]
    });
    // web's slice goes and its event is lost; only the EndpointSlice watch
    // is compacted: its re-list alone must tell that web lost its members.
    fake.delete_unseen(Kind::EndpointSlice, "shop", "web-abcde");
    fake.compact_kind(Kind::EndpointSlice);
    eventually_async!("web without members after the slices' re-list", logs, {
        members(&server_view(&server, "web").await.1) == [0]
    });
    // A load balancer of this cluster whose Service the cluster no longer has.
    let ghost = reqwest::Client::new()
        .post(format!("http://{server}/v1/apply"))
        .json(&json!({"service": service("ghost", "10.2.0.77", &[80])}))
        .send()
        .await
        .unwrap();
    assert_eq!(ghost.status().as_u16(), 200);
    assert_eq!(server_view(&server, "ghost").await.0, 200);
    // The API server loses its watch cache: open watches end, resuming
    // answers 410 Gone; a Service created meanwhile is seen by the re-list.
    fake.compact();
    fake.put(Kind::Service, service("late", "10.2.0.43", &[80]));
    eventually("late's ingress IP", &logs, || {
        ingress_ip(&fake, "late").is_some()
    })
    .await;
    eventually_async!("the ghost collected by the sync after the re-list", logs, {
        server_view(&server, "ghost").await.0 == 404
    });
    assert!(fake.gone_answers() >= 1, "a watch was answered 410 Gone");
    assert_eq!(server_view(&server, "web").await.0, 200, "web kept");
    assert!(
        metric(
            &metrics(&health).await,
            "svc_lbaas_watch_syncs_total{result=\"ok\"}"
        ) >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_the_other_takes_over() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("lease").await;
    let (a, health_a) = watch(&dir.0, &fake, &server, "a").await;
    let (b, health_b) = watch(&dir.0, &fake, &server, "b").await;
    let mut replicas = [(a, health_a, "a"), (b, health_b, "b")];
    eventually("a leader", &[], || lease_holder(&fake).is_some()).await;
    let leader = lease_holder(&fake).unwrap();
    let (li, si) = if leader == "a" { (0, 1) } else { (1, 0) };
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    eventually("web's ingress IP", &[&replicas[li].0, &serve], || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    // Only the leader called the server; the standby never did.
    assert!(server_calls(&fake, replicas[si].2).is_empty());
    assert!(!server_calls(&fake, replicas[li].2).is_empty());
    // Only the leader watched and wrote; the standby only read the Lease.
    let standby_token = format!("token-{}", replicas[si].2);
    let standby_calls: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.token == standby_token && !r.uri.contains("/leases"))
        .map(|r| format!("{} {}", r.method, r.uri))
        .collect();
    assert!(standby_calls.is_empty(), "{standby_calls:?}");
    let standby = metrics(&replicas[si].1).await;
    assert_eq!(gauge(&standby, "svc_lbaas_watch_lease_held"), 0.0);
    assert!(
        !standby.contains("svc_lbaas_watch_reconciles_total{"),
        "{standby}"
    );
    let ready = reqwest::get(format!("http://{}/readyz", replicas[si].1))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200, "a standby is ready");
    assert_eq!(
        gauge(
            &metrics(&replicas[li].1).await,
            "svc_lbaas_watch_lease_held"
        ),
        1.0
    );
    // The leader dies; the standby takes over within the lease's duration
    // (3 s) and a retry period or two.
    replicas[li].0.kill();
    let killed = Instant::now();
    let standby_name = replicas[si].2;
    eventually("the standby holds the lease", &[&replicas[si].0], || {
        lease_holder(&fake).as_deref() == Some(standby_name)
    })
    .await;
    let took = killed.elapsed();
    eprintln!("takeover after the leader was killed: {took:?} (lease 3 s, retry 1 s)");
    assert!(took < Duration::from_secs(8), "takeover took {took:?}");
    fake.put(Kind::Service, service("api", "10.2.0.44", &[80]));
    eventually(
        "api's ingress IP from the new leader",
        &[&replicas[si].0, &serve],
        || ingress_ip(&fake, "api").is_some(),
    )
    .await;
    let created = events(&fake, "api", "LoadBalancerCreated");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["reportingInstance"], standby_name);
    let lease = fake
        .get(Kind::Lease, "svc-lbaas", "svc-lbaas-watcher")
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_takes_the_answers_shape_and_a_failure_is_a_warning() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("shape").await;
    let (watcher, health) = watch(&dir.0, &fake, &server, "a").await;
    let logs = [&watcher, &serve];
    // A Service the server refuses comes first: the others are not held up.
    let mut bad = service("bad", "10.2.0.50", &[80]);
    bad["metadata"]["annotations"] = json!({"svc-lbaas.io/listener-protocol": "BOGUS"});
    fake.put(Kind::Service, bad);
    let mut proxied = service("proxied", "10.2.0.51", &[80]);
    proxied["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/proxy-protocol": "true"});
    fake.put(Kind::Service, proxied);
    let mut named = service("named", "10.2.0.52", &[80]);
    named["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/hostname": "web.example.com"});
    fake.put(Kind::Service, named);
    // Endpoints only (no EndpointSlice): its members come from them.
    fake.put(Kind::Service, service("legacy", "10.2.0.53", &[80]));
    fake.put(
        Kind::Endpoints,
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "legacy", "namespace": "shop"},
               "subsets": [{"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}],
                            "ports": [{"name": "p80", "port": 8080, "protocol": "TCP"}]}]}),
    );
    let ingress = |name: &str| {
        fake.get(Kind::Service, "shop", name)
            .and_then(|s| s.pointer("/status/loadBalancer/ingress/0").cloned())
    };
    eventually("proxied's ingress with ipMode Proxy", &logs, || {
        ingress("proxied").is_some_and(|i| {
            i["ipMode"] == "Proxy"
                && i["ip"]
                    .as_str()
                    .is_some_and(|ip| ip.starts_with("172.24.4."))
        })
    })
    .await;
    eventually("named's ingress hostname", &logs, || {
        ingress("named") == Some(json!({"hostname": "web.example.com"}))
    })
    .await;
    eventually_async!("legacy's two members from its Endpoints", logs, {
        members(&server_view(&server, "legacy").await.1) == [2]
    });
    let warnings = events(&fake, "bad", "LoadBalancerFailed");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["type"], "Warning");
    let note = warnings[0]["note"].as_str().unwrap();
    // The problem's title, status and detail (which names the annotation).
    assert!(
        note.contains("(400)") && note.contains("svc-lbaas.io/listener-protocol"),
        "{note}"
    );
    // Refused before any write: no finalizer, no load balancer, no status.
    assert!(finalizers(&fake, "bad").is_empty());
    assert!(ingress("bad").is_none());
    assert_eq!(server_view(&server, "bad").await.0, 404);
    assert!(
        metric(
            &metrics(&health).await,
            "svc_lbaas_watch_reconciles_total{result=\"failed\"}"
        ) >= 1.0
    );
    // Fixed, it goes through.
    fake.put(Kind::Service, service("bad", "10.2.0.50", &[80]));
    eventually("bad, fixed, gets its ingress IP", &logs, || {
        ingress_ip(&fake, "bad").is_some()
    })
    .await;
    assert_eq!(finalizers(&fake, "bad"), [FINALIZER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_period_services_are_reapplied_and_orphans_collected() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("period").await;
    let (watcher, health) = watch_every(&dir.0, &fake, &server, "a", 2).await;
    let logs = [&watcher, &serve];
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    eventually("web's ingress IP", &logs, || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    eventually_async!("the first sync", logs, {
        metric(
            &metrics(&health).await,
            "svc_lbaas_watch_syncs_total{result=\"ok\"}",
        ) >= 1.0
    });
    let lists = |fake: &FakeKube| {
        fake.requests()
            .iter()
            .filter(|r| r.uri.starts_with("/api/v1/services?") && !r.uri.contains("watch="))
            .count()
    };
    let lists_before = lists(&fake);
    // Behind the watcher's back: an orphan made, web's load balancer deleted.
    let http = reqwest::Client::new();
    let ghost = http
        .post(format!("http://{server}/v1/apply"))
        .json(&json!({"service": service("ghost", "10.2.0.77", &[80])}))
        .send()
        .await
        .unwrap();
    assert_eq!(ghost.status().as_u16(), 200);
    let gone = http
        .delete(format!("http://{server}/v1/services/shop/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 200);
    assert_eq!(server_view(&server, "web").await.0, 404);
    // The period alone (no re-list) puts both right.
    eventually_async!("ghost collected and web made again", logs, {
        server_view(&server, "ghost").await.0 == 404 && server_view(&server, "web").await.0 == 200
    });
    assert_eq!(lists(&fake), lists_before, "no re-list: the period did it");
    eventually("a second Created event for web", &logs, || {
        events(&fake, "web", "LoadBalancerCreated")
            .iter()
            .any(|e| e["series"]["count"].as_u64() >= Some(2))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_calls_hang_stops_within_the_renew_deadline() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("hang").await;
    let (mut watcher, _) = watch(&dir.0, &fake, &server, "a").await;
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    eventually("web's ingress IP", &[&watcher, &serve], || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    // The API server stops answering Lease calls: the leader cannot know
    // whether another replica took over, so it stops (renew deadline 2 s,
    // before a standby could take over after the lease duration, 3 s).
    fake.hang_leases(true);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = watcher.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running:\n{}",
            watcher.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        watcher.stderr().contains("lost the lease"),
        "{}",
        watcher.stderr()
    );
    let calls = server_calls(&fake, "a").len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        server_calls(&fake, "a").len(),
        calls,
        "no server call after it stopped"
    );
    fake.hang_leases(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_turns_skipped_loses_its_load_balancer_and_finalizer() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("skip").await;
    // `old`: a load balancer an earlier watcher made (no finalizer), its
    // ingress in the status.
    let http = reqwest::Client::new();
    let made = http
        .post(format!("http://{server}/v1/apply"))
        .json(&json!({"service": service("old", "10.2.0.45", &[80])}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 200);
    let made: Value = made.json().await.unwrap();
    let external = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com",
                     "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}]}})
    };
    let mut old = external("old");
    old["status"] = made["status"].clone();
    assert!(
        old["status"]["loadBalancer"]["ingress"][0]["ip"].is_string(),
        "{made}"
    );
    fake.put(Kind::Service, old);
    let (watcher, _) = watch(&dir.0, &fake, &server, "a").await;
    let logs = [&watcher, &serve];
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80]));
    eventually("web's ingress IP", &logs, || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    assert_eq!(finalizers(&fake, "web"), [FINALIZER]);
    // web becomes an ExternalName Service: no load balancer, no finalizer,
    // no ingress.
    fake.put(Kind::Service, external("web"));
    eventually_async!("web's load balancer deleted", logs, {
        server_view(&server, "web").await.0 == 404
    });
    eventually("web without finalizer nor ingress", &logs, || {
        finalizers(&fake, "web").is_empty()
            && fake
                .get(Kind::Service, "shop", "web")
                .is_some_and(|s| s.pointer("/status/loadBalancer/ingress").is_none())
    })
    .await;
    assert_eq!(events(&fake, "web", "LoadBalancerDeleted").len(), 1);
    // old: skipped, without a finalizer, but it showed an ingress: applied,
    // which removed its load balancer and the ingress; never a finalizer.
    eventually_async!("old's load balancer deleted", logs, {
        server_view(&server, "old").await.0 == 404
    });
    eventually("old's ingress cleared", &logs, || {
        fake.get(Kind::Service, "shop", "old")
            .is_some_and(|s| s.pointer("/status/loadBalancer/ingress").is_none())
    })
    .await;
    assert!(finalizers(&fake, "old").is_empty());
    // Cleared with a merge patch (an apply cannot remove another manager's fields).
    assert!(fake.requests().iter().any(|r| r.method == "PATCH"
        && r.uri.contains("/services/old/status")
        && r.content_type == "application/merge-patch+json"));
}

/// An owner whose keep-floatingip annotation cannot hold (a sharer would
/// take its load balancer and address) keeps its finalizer, with a Warning
/// naming the sharer, until the sharer leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_keeping_its_floating_ip_waits_for_its_sharers_with_a_warning() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("keep").await;
    let (watcher, _) = watch(&dir.0, &fake, &server, "a").await;
    let mut web = service("web", "10.2.0.42", &[80]);
    web["metadata"]["annotations"] = json!({"loadbalancer.openstack.org/keep-floatingip": "true"});
    fake.put(Kind::Service, web);
    fake.put(Kind::EndpointSlice, slice("web", &[80], &["10.1.0.5"]));
    eventually("web's ingress IP", &[&watcher, &serve], || {
        ingress_ip(&fake, "web").is_some()
    })
    .await;
    let (_, view) = server_view(&server, "web").await;
    let id = view["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let mut api = service("api", "10.2.0.43", &[8080]);
    api["metadata"]["annotations"] = json!({"loadbalancer.openstack.org/load-balancer-id": id});
    fake.put(Kind::Service, api);
    fake.put(Kind::EndpointSlice, slice("api", &[8080], &["10.1.0.6"]));
    eventually("api on web's load balancer", &[&watcher, &serve], || {
        ingress_ip(&fake, "api").is_some() && ingress_ip(&fake, "api") == ingress_ip(&fake, "web")
    })
    .await;
    fake.delete(Kind::Service, "shop", "web");
    eventually("a Warning naming the sharer", &[&watcher, &serve], || {
        events(&fake, "web", "LoadBalancerDeleteFailed")
            .iter()
            .any(|e| e["note"].as_str().unwrap_or_default().contains("shop/api"))
    })
    .await;
    assert!(
        finalizers(&fake, "web").contains(&"svc-lbaas.io/load-balancer".to_string()),
        "the finalizer holds web"
    );
    assert_eq!(
        server_view(&server, "web").await.0,
        200,
        "nothing handed over"
    );
    // The sharer leaves: the owner goes, its floating IP kept.
    fake.delete(Kind::Service, "shop", "api");
    eventually("web deleted once api left", &[&watcher, &serve], || {
        fake.get(Kind::Service, "shop", "web").is_none()
    })
    .await;
    assert_eq!(server_view(&server, "web").await.0, 404);
}

/// A Service's EndpointSlices, all of them: the ready endpoints of each are
/// members of every pool (as the retired bash watcher's test checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpointslice_of_a_service_gives_members() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("slices").await;
    let (watcher, _) = watch(&dir.0, &fake, &server, "a").await;
    fake.put(Kind::Service, service("web", "10.2.0.42", &[80, 443]));
    fake.put(
        Kind::EndpointSlice,
        slice("web", &[80, 443], &["10.1.0.5", "10.1.0.6"]),
    );
    let mut second = slice("web", &[80, 443], &["10.1.0.7"]);
    second["metadata"]["name"] = json!("web-fghij");
    fake.put(Kind::EndpointSlice, second);
    let logs = [&watcher, &serve];
    eventually_async!("three members in each pool", logs, {
        members(&server_view(&server, "web").await.1) == [3, 3]
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reported_down_is_one_warning_event_and_its_recovery_one_normal_event() {
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("health").await;
    let sim = serve
        .printed("SIM_AUTH_URL=")
        .await
        .trim_end_matches("/v3")
        .to_string();
    // A resync every 2 s: a change nobody applied is noticed by it.
    let (watcher, health) = watch_every(&dir.0, &fake, &server, "a", 2).await;
    let logs = [&watcher, &serve];
    // A health monitor checks the members: Octavia can find one down.
    let mut web = service("web", "10.2.0.42", &[80]);
    web["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/enable-health-monitor": "true"});
    fake.put(Kind::Service, web);
    fake.put(
        Kind::EndpointSlice,
        slice("web", &[80], &["10.1.0.5", "10.1.0.6"]),
    );
    eventually_async!("two members", logs, {
        members(&server_view(&server, "web").await.1) == [2]
    });
    let view = server_view(&server, "web").await.1;
    let down = view["loadBalancer"]["listeners"][0]["pool"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "10.1.0.6")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let report = |status: Value| {
        let url = format!("{sim}/sim/faults/members/{down}/operating-status");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&json!({"status": status}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 204);
        }
    };
    let annotation = |fake: &FakeKube| {
        fake.get(Kind::Service, "shop", "web").unwrap()["metadata"]["annotations"]
            ["svc-lbaas.io/operating-status"]
            .clone()
    };
    assert!(annotation(&fake).is_null(), "healthy: no annotation");
    assert!(fake.all(Kind::Event).iter().all(|e| e["type"] != "Warning"));
    // Octavia's health manager finds 10.1.0.6 down.
    report(json!("ERROR")).await;
    eventually("a Warning naming the member", &logs, || {
        events(&fake, "web", "LoadBalancerDegraded").len() == 1
    })
    .await;
    let warning = &events(&fake, "web", "LoadBalancerDegraded")[0];
    assert_eq!(warning["type"], "Warning");
    assert_eq!(
        warning["note"],
        "Octavia reports the load balancer DEGRADED; members down: 10.1.0.6:8080"
    );
    assert_eq!(annotation(&fake), "DEGRADED; members down: 10.1.0.6:8080");
    let degraded = "svc_lbaas_watch_load_balancers{operating_status=\"DEGRADED\"}";
    assert_eq!(gauge(&metrics(&health).await, degraded), 1.0);
    // Resyncs (every 2 s) see the same: no second Event, no re-count.
    let syncs = |text: &str| metric(text, "svc_lbaas_watch_syncs_total{result=\"ok\"}");
    let before = syncs(&metrics(&health).await);
    eventually_async!("two more resyncs", logs, {
        syncs(&metrics(&health).await) >= before + 2.0
    });
    let warning = &events(&fake, "web", "LoadBalancerDegraded")[0];
    assert!(
        warning["series"].is_null(),
        "one Event, not repeated: {warning}"
    );
    // A new leader reads the annotation: it repeats nothing either.
    drop(watcher);
    let (second, health_b) = watch_every(&dir.0, &fake, &server, "b", 2).await;
    let logs = [&second, &serve];
    eventually_async!("b leads and re-applies web twice", logs, {
        metric(
            &metrics(&health_b).await,
            "svc_lbaas_watch_reconciles_total{result=\"unchanged\"}",
        ) >= 2.0
    });
    assert_eq!(events(&fake, "web", "LoadBalancerDegraded").len(), 1);
    assert!(
        events(&fake, "web", "LoadBalancerDegraded")[0]["series"].is_null(),
        "b repeated the Warning"
    );
    // Reported healthy again: one Normal Event, the annotation gone.
    report(Value::Null).await;
    eventually("a Normal recovery", &logs, || {
        events(&fake, "web", "LoadBalancerRecovered").len() == 1
    })
    .await;
    let normal = &events(&fake, "web", "LoadBalancerRecovered")[0];
    assert_eq!(normal["type"], "Normal");
    assert_eq!(
        normal["note"],
        "the load balancer is healthy again (was DEGRADED; members down: 10.1.0.6:8080)"
    );
    assert!(annotation(&fake).is_null());
}

/// A Gateway API object of the fake's kinds.
fn gateway_object(
    kind: &str,
    api_version: &str,
    namespace: &str,
    name: &str,
    spec: Value,
) -> Value {
    json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

fn condition_status(status: &Value, kind: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
        .map(str::to_string)
}

async fn gateway_view(server: &str, namespace: &str, name: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{server}/v1/gateways/{namespace}/{name}"))
        .await
        .expect("server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn gateway_members(view: &Value) -> Vec<String> {
    let mut out: Vec<String> = view["loadBalancer"]["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["address"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_are_driven_from_kubernetes_with_statuses_a_finalizer_and_their_orphans_collected()
{
    let Rig {
        dir,
        fake,
        serve,
        server,
    } = rig("gateways").await;
    fake.serve_gateway_api();
    // A Gateway applied while no watcher ran and deleted meanwhile: its
    // load balancer is an orphan the watcher's first Gateway sync collects.
    let ghost = json!({"gateway": {"metadata": {"name": "ghost", "namespace": "shop"},
        "spec": {"gatewayClassName": "openstack", "listeners": [{"name": "web", "port": 80, "protocol": "HTTP"}]}}});
    let applied = reqwest::Client::new()
        .post(format!("http://{server}/v1/gateways/apply"))
        .json(&ghost)
        .send()
        .await
        .expect("server answers");
    assert_eq!(applied.status().as_u16(), 200);
    assert_eq!(gateway_view(&server, "shop", "ghost").await.0, 200);

    fake.put(
        Kind::Namespace,
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "shop"}}}),
    );
    fake.put(Kind::GatewayClass, json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "openstack"}, "spec": {"controllerName": "svc-lbaas.io/gateway-controller"}}));
    fake.put(
        Kind::Gateway,
        gateway_object(
            "Gateway",
            "gateway.networking.k8s.io/v1",
            "shop",
            "edge",
            json!({
        "gatewayClassName": "openstack",
        "listeners": [{"name": "web", "port": 80, "protocol": "HTTP",
                       "allowedRoutes": {"namespaces": {"from": "Selector",
                           "selector": {"matchLabels": {"team": "shop"}}}}}]}),
        ),
    );
    let route = |prefix: &str| {
        gateway_object(
            "HTTPRoute",
            "gateway.networking.k8s.io/v1",
            "shop",
            "site",
            json!({
            "parentRefs": [{"name": "edge"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                       "backendRefs": [{"name": "web", "port": 80}]}]}),
        )
    };
    fake.put(Kind::HttpRoute, route("/api"));
    let mut web = service("web", "10.2.0.42", &[80]);
    web["spec"]["type"] = json!("ClusterIP");
    fake.put(Kind::Service, web);
    fake.put(Kind::EndpointSlice, slice("web", &[80], &["10.1.0.5"]));

    let (watcher, health) = watch(&dir.0, &fake, &server, "a").await;
    let logs = [&watcher, &serve];

    eventually(
        "the Gateway carries the finalizer and is Programmed with an address",
        &logs,
        || {
            fake.get(Kind::Gateway, "shop", "edge").is_some_and(|g| {
                g["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "svc-lbaas.io/gateway"))
                    && condition_status(&g["status"], "Programmed").as_deref() == Some("True")
                    && g["status"]["addresses"][0]["value"].is_string()
            })
        },
    )
    .await;
    eventually("the route is Accepted by this controller", &logs, || {
        fake.get(Kind::HttpRoute, "shop", "site").is_some_and(|r| {
            let parent = &r["status"]["parents"][0];
            parent["controllerName"] == "svc-lbaas.io/gateway-controller"
                && condition_status(parent, "Accepted").as_deref() == Some("True")
                && condition_status(parent, "ResolvedRefs").as_deref() == Some("True")
        })
    })
    .await;
    eventually("the GatewayClass is Accepted", &logs, || {
        fake.get(Kind::GatewayClass, "", "openstack")
            .is_some_and(|c| condition_status(&c["status"], "Accepted").as_deref() == Some("True"))
    })
    .await;
    let (code, view) = gateway_view(&server, "shop", "edge").await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(gateway_members(&view), vec!["10.1.0.5"]);
    eventually_async!(
        "the ghost Gateway's load balancer is collected",
        logs,
        gateway_view(&server, "shop", "ghost").await.0 == 404
    );
    assert!(
        fake.all(Kind::Event)
            .iter()
            .any(|e| e["regarding"]["kind"] == "Gateway" && e["reason"] == "LoadBalancerCreated"),
        "a Normal Event on the Gateway"
    );

    // A backend's endpoints change: the Gateway's pool follows.
    fake.put(
        Kind::EndpointSlice,
        slice("web", &[80], &["10.1.0.5", "10.1.0.6"]),
    );
    eventually_async!(
        "the new endpoint is a member",
        logs,
        gateway_members(&gateway_view(&server, "shop", "edge").await.1)
            == vec!["10.1.0.5", "10.1.0.6"]
    );
    // The route is edited: its policy follows.
    fake.put(Kind::HttpRoute, route("/v2"));
    eventually_async!("the edited route's path is the policy's rule", logs, {
        let view = gateway_view(&server, "shop", "edge").await.1;
        view["loadBalancer"]["listeners"][0]["l7Policies"][0]["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["value"] == "^/v2(/|$)"))
    });

    // Deleted: the finalizer holds the Gateway until its load balancer is gone.
    fake.delete(Kind::Gateway, "shop", "edge");
    eventually(
        "the Gateway is gone once its finalizer is removed",
        &logs,
        || fake.get(Kind::Gateway, "shop", "edge").is_none(),
    )
    .await;
    assert_eq!(gateway_view(&server, "shop", "edge").await.0, 404);
    settled(&health).await;

    let refused: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.status >= 400 && r.status != 409 && !(r.status == 404 && r.uri.contains("/leases/"))
        })
        .map(|r| format!("{} {} -> {}", r.method, r.uri, r.status))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    // Every call is allowed by watcher.yaml, and what Gateways need is used:
    // the Gateway API kinds, their statuses, namespaces, the Gateway's patch.
    check_rbac(
        &fake
            .requests()
            .into_iter()
            .filter(|r| !r.uri.starts_with("/svc-lbaas/"))
            .collect::<Vec<_>>(),
        |group, resource, verb| {
            (group == "gateway.networking.k8s.io"
                && !resource.starts_with("tlsroutes")
                && !resource.starts_with("udproutes")
                && resource != "tcproutes/status")
                || resource == "namespaces"
                || (resource == "services" && verb != "patch")
        },
    );
}
