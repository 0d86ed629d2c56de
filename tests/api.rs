//! The REST API end to end, black box: the server on 127.0.0.1:0 driven over
//! HTTP, and the cloud's own APIs checked for what was really created. By
//! default the cloud is the embedded simulator (as `svc-lbaas serve` runs with no
//! credentials), one per test. With `SVC_LBAAS_TEST_CLOUD=real` it is the
//! loopback Keystone/Neutron/Octavia of tests/openstack/up.sh (its openrc
//! exported): the same tests run one at a time on it, each starting from a
//! cloud emptied of load balancers and floating IPs; those that need the
//! simulator's fault injection say so and are skipped.
//!
//! Among what it covers: two replicas racing on five new Services without a
//! clusterIP (simulator) and on two (real cloud) end with one load balancer
//! and one floating IP on its VIP port, both answers 200 with the same
//! ingress (`two_replicas_racing_on_a_new_service_leave_one_load_balancer_and_one_floating_ip`);
//! stalled connections are closed while `/healthz` keeps answering, and
//! connections past the cap wait for a free slot (short `[server]` limits);
//! a load balancer in ERROR is replaced, its floating IP moved over; the
//! rows of the translation table (docs/contract.md) end to end.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use svc_lbaas::config::{AdoptFrom, Settings};
use svc_lbaas::sim::RunningSim;

fn real_cloud() -> bool {
    std::env::var("SVC_LBAAS_TEST_CLOUD").as_deref() == Ok("real")
}

/// How a test reaches the cloud directly, as an admin would.
struct CloudAccess {
    auth_url: String,
    password: String,
    load_balancer: String,
    network: String,
    /// Barbican's endpoint (`None`: the cloud's catalog has none).
    key_manager: Option<String>,
    public_network: String,
    service_network: String,
}

struct App {
    addr: SocketAddr,
    /// The gRPC API of the same server.
    grpc: String,
    sim: Option<RunningSim>,
    cloud_access: CloudAccess,
    http: reqwest::Client,
    /// On the shared real cloud, tests run one at a time.
    _serial: Option<tokio::sync::MutexGuard<'static, ()>>,
}

fn env_var(k: &str) -> String {
    std::env::var(k)
        .unwrap_or_else(|_| panic!("{k} must be set (source the openrc of tests/openstack/up.sh)"))
}

async fn spawn_app() -> App {
    spawn_app_with(None).await
}

async fn spawn_app_with(tokens: Option<svc_lbaas::api::auth::Tokens>) -> App {
    spawn_app_configured(tokens, SIM_DELAY_MS, |_| {}).await
}

async fn spawn_app_with_settings(change: impl FnOnce(&mut Settings)) -> App {
    spawn_app_configured(None, SIM_DELAY_MS, change).await
}

/// The simulator's provisioning delay: short, so the suite runs fast.
const SIM_DELAY_MS: u64 = 30;

/// `delay_ms` is the simulator's provisioning delay (the real cloud takes its own).
async fn spawn_app_configured(
    tokens: Option<svc_lbaas::api::auth::Tokens>,
    delay_ms: u64,
    change: impl FnOnce(&mut Settings),
) -> App {
    static SERIAL: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    let real = real_cloud();
    let mut settings = Settings::default();
    change(&mut settings);
    let serial = if real {
        settings.neutron_defaults.pod_subnet = Some(env_var("POD_SUBNET_ID"));
        settings.neutron_defaults.service_subnet = Some(env_var("SERVICE_SUBNET_ID"));
        settings.neutron_defaults.external_svc_subnet = Some(env_var("PUBLIC_SUBNET_ID"));
        Some(SERIAL.get_or_init(Default::default).lock().await)
    } else {
        None
    };
    let env = move |k: &str| {
        if real {
            std::env::var(k).ok()
        } else {
            (k == "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").then(|| delay_ms.to_string())
        }
    };
    let (state, sim) = svc_lbaas::startup::build_state(settings, tokens, &env)
        .await
        .expect("builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("has an address");
    // gRPC over the same state (the same cloud, settings and tokens).
    let routes = svc_lbaas::api::grpc::router(state.clone())
        .await
        .expect("gRPC routes");
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let grpc = format!(
        "http://{}",
        grpc_listener.local_addr().expect("has an address")
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                grpc_listener,
            )),
    );
    let app = svc_lbaas::api::app(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let cloud_access = match &sim {
        Some(sim) => CloudAccess {
            auth_url: sim.auth_url(),
            password: "admin".into(),
            load_balancer: format!("{}/load-balancer", sim.state.base_url),
            network: format!("{}/network", sim.state.base_url),
            key_manager: Some(format!("{}/key-manager", sim.state.base_url)),
            public_network: sim.state.seed.public_network.clone(),
            service_network: sim.state.seed.service_network.clone(),
        },
        None => {
            let auth_url = env_var("OS_AUTH_URL");
            let password = env_var("OS_PASSWORD");
            let (_, catalog) = admin_token(&http, &auth_url, &password).await;
            let find = |kind: &str| {
                catalog
                    .as_array()
                    .and_then(|c| c.iter().find(|e| e["type"] == kind))
                    .and_then(|e| e["endpoints"].as_array())
                    .and_then(|eps| eps.iter().find(|ep| ep["interface"] == "public"))
                    .and_then(|ep| ep["url"].as_str())
                    .map(|u| u.trim_end_matches('/').to_string())
            };
            let url = |kind: &str| {
                find(kind).unwrap_or_else(|| panic!("no {kind} endpoint in the catalog"))
            };
            CloudAccess {
                load_balancer: url("load-balancer"),
                network: url("network"),
                key_manager: find("key-manager"),
                auth_url,
                password,
                public_network: env_var("PUBLIC_NET_ID"),
                service_network: env_var("SERVICE_NET_ID"),
            }
        }
    };
    let app = App {
        addr,
        grpc,
        sim,
        cloud_access,
        http,
        _serial: serial,
    };
    if real {
        app.empty_the_cloud().await;
    }
    app
}

async fn admin_token(http: &reqwest::Client, auth_url: &str, password: &str) -> (String, Value) {
    let res = http
        .post(format!("{auth_url}/auth/tokens"))
        .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}))
        .send()
        .await
        .expect("keystone answers");
    let token = res
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .expect("a token")
        .to_string();
    let body: Value = res.json().await.expect("a token body");
    (token, body["token"]["catalog"].clone())
}

struct Answer {
    status: StatusCode,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl App {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<String>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    async fn apply(&self, request: Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            "/v1/apply",
            Some(request.to_string()),
        )
        .await
    }

    /// A call straight to the cloud, as an admin would look: `/load-balancer/...`
    /// and `/network/...` go to the catalog's endpoints.
    async fn cloud(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let c = &self.cloud_access;
        let (token, _) = admin_token(&self.http, &c.auth_url, &c.password).await;
        let url = match (
            path.strip_prefix("/load-balancer"),
            path.strip_prefix("/network"),
            path.strip_prefix("/key-manager"),
        ) {
            (Some(rest), _, _) => format!("{}{rest}", c.load_balancer),
            (_, Some(rest), _) => format!("{}{rest}", c.network),
            (_, _, Some(rest)) => format!(
                "{}{rest}",
                c.key_manager.as_deref().expect("the cloud has Barbican")
            ),
            _ => panic!("not a cloud path: {path}"),
        };
        let mut req = self.http.request(method, url).header("x-auth-token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let text = req.send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The simulator, for fault injection; `None` (and a line saying so) on the real cloud.
    fn sim_only(&self, what: &str) -> Option<&RunningSim> {
        if self.sim.is_none() {
            eprintln!("skipped on the real cloud: {what} needs the simulator's fault injection");
        }
        self.sim.as_ref()
    }

    /// Real cloud: every load balancer (cascade) and floating IP goes, and the
    /// test waits until the load balancers are gone.
    async fn empty_the_cloud(&self) {
        for lb in self.load_balancers().await {
            let id = lb["id"].as_str().unwrap_or_default().to_string();
            self.cloud(
                reqwest::Method::DELETE,
                &format!("/load-balancer/v2/lbaas/loadbalancers/{id}?cascade=true"),
                None,
            )
            .await;
        }
        for fip in self.floating_ips().await {
            let id = fip["id"].as_str().unwrap_or_default().to_string();
            self.cloud(
                reqwest::Method::DELETE,
                &format!("/network/v2.0/floatingips/{id}"),
                None,
            )
            .await;
        }
        for _ in 0..600 {
            if self.load_balancers().await.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        panic!("the real cloud could not be emptied of load balancers");
    }

    async fn pools(&self) -> Value {
        self.cloud(reqwest::Method::GET, "/load-balancer/v2/lbaas/pools", None)
            .await["pools"]
            .clone()
    }

    async fn listeners(&self) -> Value {
        self.cloud(
            reqwest::Method::GET,
            "/load-balancer/v2/lbaas/listeners",
            None,
        )
        .await["listeners"]
            .clone()
    }

    async fn floating_ips(&self) -> Vec<Value> {
        self.cloud(reqwest::Method::GET, "/network/v2.0/floatingips", None)
            .await["floatingips"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn load_balancers(&self) -> Vec<Value> {
        self.cloud(
            reqwest::Method::GET,
            "/load-balancer/v2/lbaas/loadbalancers",
            None,
        )
        .await["loadbalancers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn service(kind: &str, ports: Value, extra: Value) -> Value {
    let mut spec = json!({"type": kind, "clusterIP": "10.2.0.42", "ports": ports});
    if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
        s.extend(e);
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}, "spec": spec})
}

fn one_port() -> Value {
    json!([{"name": "http", "port": 80, "targetPort": 8080}])
}

fn two_ports() -> Value {
    json!([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}])
}

fn endpoints(ips: &[&str]) -> Value {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "shop"},
        "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]}]})
}

fn calls(a: &Answer) -> (u64, u64) {
    let c = &a.body["openstackCalls"];
    (
        c["writes"].as_u64().unwrap_or(99),
        c["waits"].as_u64().unwrap_or(99),
    )
}

fn ingress(a: &Answer) -> String {
    a.body["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_load_balancer_service_gets_a_floating_ip_in_two_writes_and_one_wait() {
    let app = spawn_app().await;
    let a = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.5", "10.1.0.6", "10.1.0.7"])}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["action"], "created");
    assert_eq!(a.body["converged"], true);
    assert_eq!(
        calls(&a),
        (2, 1),
        "one fully-populated create, one floating IP, one wait"
    );
    let fip = &a.body["floatingIp"];
    assert_eq!(fip["method"], "pool");
    assert_eq!(ingress(&a), fip["address"].as_str().unwrap());
    let lb = &a.body["loadBalancer"];
    assert_eq!(lb["name"], "shop/web");
    assert_eq!(lb["vipAddress"], "10.2.0.42");
    assert_eq!(lb["provisioningStatus"], "ACTIVE");
    let names: Vec<&str> = lb["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"shop/web:TCP:80") && names.contains(&"shop/web:TCP:443"),
        "{names:?}"
    );
    assert_eq!(
        lb["listeners"][0]["pool"]["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // In the cloud: the floating IP is marked as ours (in its description: Neutron
    // takes no tags in a create) and bound to the VIP port.
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1);
    assert_eq!(fips[0]["port_id"], lb["vipPortId"]);
    assert_eq!(
        fips[0]["description"],
        "svc-lbaas-tags:svc-lbaas,svc-lbaas-cluster:kubernetes,svc-lbaas-service:shop_web"
    );
}

#[tokio::test]
async fn an_unchanged_service_makes_no_writes_and_an_endpoint_change_one_per_pool() {
    let app = spawn_app().await;
    let request = json!({"service": service("LoadBalancer", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.5", "10.1.0.6", "10.1.0.7"])});
    app.apply(request.clone()).await;
    let again = app.apply(request).await;
    assert_eq!(again.body["action"], "unchanged");
    assert_eq!(calls(&again), (0, 0));
    assert_eq!(again.body["operations"], json!([]));
    let changed = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.5", "10.1.0.6", "10.1.0.8"])}))
        .await;
    assert_eq!(changed.body["action"], "updated");
    assert_eq!(
        calls(&changed).0,
        2,
        "one batch member write per changed pool: {}",
        changed.body
    );
    let ops: Vec<&str> = changed.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["replace", "replace"]);
    let members = &changed.body["loadBalancer"]["listeners"][0]["pool"]["members"];
    let addresses: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["address"].as_str().unwrap())
        .collect();
    assert!(
        addresses.contains(&"10.1.0.8") && !addresses.contains(&"10.1.0.7"),
        "{addresses:?}"
    );
    // Without Endpoints, members are left alone.
    let no_endpoints = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    assert_eq!(calls(&no_endpoints).0, 0);
}

/// `op resource` of each operation an answer lists.
fn op_resources(answer: &Value) -> Vec<String> {
    answer["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["op"].as_str().unwrap(),
                o["resource"].as_str().unwrap()
            )
        })
        .collect()
}

fn reads(a: &Answer) -> u64 {
    a.body["openstackCalls"]["reads"].as_u64().unwrap_or(99)
}

impl App {
    /// Waits until a load balancer changed by hand is ACTIVE again.
    async fn until_active(&self, lb_id: &str) {
        for _ in 0..600 {
            let lb = self
                .cloud(
                    reqwest::Method::GET,
                    &format!("/load-balancer/v2/lbaas/loadbalancers/{lb_id}"),
                    None,
                )
                .await;
            if lb["loadbalancer"]["provisioning_status"] == "ACTIVE" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("load balancer {lb_id} did not become ACTIVE");
    }
}

/// A re-apply that changes nothing reads four times (the load balancer and
/// this Service's floating IPs, then the status tree and the floating IPs on
/// the VIP port), after a create and after a member change alike; what is
/// changed by hand in OpenStack is still found: a listener option (the load
/// balancer's `updated_at` moves, so listeners and pools are read again)
/// and a member (the status tree shows every member).
/// The simulator's `/sim/stats`.
async fn sim_stats(app: &App) -> Value {
    let sim = app.sim.as_ref().expect("the simulator");
    app.http
        .get(format!("{}/sim/stats", sim.state.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// One call of the simulator's journal: `METHOD /path?query`, when it began
/// and ended (ms).
type Journaled = (String, f64, f64);

/// The simulator's journal of calls since its stats were reset, in the
/// order they began.
async fn journal(app: &App) -> Vec<Journaled> {
    let stats = sim_stats(app).await;
    let mut calls: Vec<Journaled> = stats["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["call"].as_str().unwrap().to_string(),
                c["beganMs"].as_f64().unwrap(),
                c["endedMs"].as_f64().unwrap(),
            )
        })
        .filter(|(c, _, _)| !c.contains("/v3/"))
        .collect();
    calls.sort_by(|a, b| a.1.total_cmp(&b.1));
    calls
}

/// A burst of three creates, from the journal: each create's floating IP
/// POST comes after every load balancer create begun before the first
/// create was answered (before any floating IP's wait began) has been
/// answered; at least `overlapping` creates were begun so.
fn assert_floating_ips_after_earlier_creates(calls: &[Journaled], overlapping: usize) {
    let posts = |path: &str| -> Vec<&Journaled> {
        calls
            .iter()
            .filter(|c| c.0.starts_with("POST ") && c.0.ends_with(path))
            .collect()
    };
    let (creates, floating) = (posts("/lbaas/loadbalancers"), posts("/floatingips"));
    assert_eq!((creates.len(), floating.len()), (3, 3), "{calls:?}");
    let first_answered = creates.iter().map(|c| c.2).fold(f64::MAX, f64::min);
    let early: Vec<&&Journaled> = creates.iter().filter(|c| c.1 < first_answered).collect();
    assert!(
        early.len() >= overlapping,
        "the creates overlapped: {creates:?}"
    );
    let early_answered = early.iter().map(|c| c.2).fold(f64::MIN, f64::max);
    for f in &floating {
        assert!(
            f.1 >= early_answered,
            "{f:?} before {early_answered}: {calls:?}"
        );
    }
}

/// An app on the simulator whose load balancer creates are answered
/// `latency_ms` late; `None` on a real cloud.
async fn with_slow_creates(latency_ms: u64) -> Option<App> {
    let app = spawn_app().await;
    let sim = app.sim_only("the simulator's journal of calls")?;
    add_fault(
        &app,
        sim,
        json!({"method": "POST", "path": "*/lbaas/loadbalancers", "latency_ms": latency_ms}),
    )
    .await;
    Some(app)
}

/// Sends a `type: LoadBalancer` Service `name` (cluster IP `10.2.0.{ip}`,
/// one endpoint) after `after_ms`: one create of a burst.
async fn apply_after(app: &App, name: &str, ip: u64, after_ms: u64) -> Answer {
    tokio::time::sleep(std::time::Duration::from_millis(after_ms)).await;
    let mut s = service("LoadBalancer", one_port(), json!({}));
    s["metadata"]["name"] = json!(name);
    s["spec"]["clusterIP"] = json!(format!("10.2.0.{ip}"));
    s["metadata"]["uid"] = json!(format!("u-{name}"));
    app.apply(json!({"service": s, "endpoints": endpoints(&["10.1.0.5"])}))
        .await
}

async fn reset_journal(app: &App) {
    let sim = app.sim.as_ref().expect("the simulator");
    app.http
        .delete(format!("{}/sim/stats", sim.state.base_url))
        .send()
        .await
        .unwrap();
}

/// Round trips: the longest chain of calls each begun after the one before
/// it was answered (calls sent together count once).
fn round_trips(calls: &[Journaled]) -> usize {
    let mut depth: Vec<usize> = Vec::with_capacity(calls.len());
    for (i, (_, began, _)) in calls.iter().enumerate() {
        let after = (0..i)
            .filter(|&j| calls[j].2 <= *began)
            .map(|j| depth[j])
            .max()
            .unwrap_or(0);
        depth.push(after + 1);
    }
    depth.into_iter().max().unwrap_or(0)
}

/// The calls before the first write, and those begun after the last write
/// was answered other than the waits' status reads (`GET` of one load
/// balancer): the observation and the answer's reads.
fn before_and_after_the_writes(calls: &[Journaled]) -> (Vec<Journaled>, Vec<Journaled>) {
    let write = |c: &Journaled| !c.0.starts_with("GET ");
    let first = calls.iter().position(write).unwrap_or(calls.len());
    let last_end = calls
        .iter()
        .filter(|c| write(c))
        .map(|c| c.2)
        .fold(f64::MIN, f64::max);
    let status_read = |c: &str| {
        c.strip_prefix("GET /load-balancer/v2/lbaas/loadbalancers/")
            .is_some_and(|rest| !rest.contains('/') && !rest.contains('?'))
    };
    let after = calls
        .iter()
        .filter(|c| c.1 >= last_end && !status_read(&c.0))
        .cloned()
        .collect();
    (calls[..first].to_vec(), after)
}

/// Octavia's API makes each create's VIP port in Neutron before it answers,
/// one create at a time: a burst's floating IPs wait until the creates sent
/// before them are answered, so that they do not slow those (issue #28).
#[tokio::test]
async fn a_bursts_floating_ips_wait_for_the_load_balancer_creates_sent_before_them() {
    // Each create answered 600 ms late; the three sent 200 ms apart (room
    // for a loaded machine's jitter in the observations before them).
    let Some(app) = with_slow_creates(600).await else {
        return;
    };
    reset_journal(&app).await;
    let answers = tokio::join!(
        apply_after(&app, "a", 50, 0),
        apply_after(&app, "b", 51, 200),
        apply_after(&app, "c", 52, 400)
    );

    for a in [&answers.0, &answers.1, &answers.2] {
        assert_eq!(a.body["action"], "created", "{}", a.body);
    }
    // The creates begun before the first was answered were begun before
    // any floating IP's wait: every floating IP POST comes after them all.
    assert_floating_ips_after_earlier_creates(&journal(&app).await, 2);
}

#[tokio::test]
async fn an_apply_observes_in_one_round_trip_and_answers_after_one_more() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("the simulator's journal of calls") else {
        return;
    };
    // Every read answered 40 ms late: calls sent together overlap, one
    // sent after another's answer does not.
    add_fault(
        &app,
        sim,
        json!({"method": "GET", "path": "*", "latency_ms": 40}),
    )
    .await;
    let request = |ips: &[&str]| json!({"service": service("LoadBalancer", two_ports(), json!({})), "endpoints": endpoints(ips)});
    let show = |calls: &[Journaled]| {
        calls
            .iter()
            .map(|(c, b, e)| format!("{b:.0}-{e:.0} {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // A create by a process that has read nothing yet (its subnets too).
    reset_journal(&app).await;
    let created = app
        .apply(request(&["10.1.0.5", "10.1.0.6", "10.1.0.7"]))
        .await;
    assert_eq!(created.body["action"], "created", "{}", created.body);
    let calls = journal(&app).await;
    let (before, after) = before_and_after_the_writes(&calls);
    assert_eq!(
        round_trips(&before),
        1,
        "before the first write:\n{}",
        show(&calls)
    );
    assert!(
        before.iter().any(|c| c.0.contains("/subnets/")),
        "the subnets are read with the lookups:\n{}",
        show(&before)
    );
    assert_eq!(
        round_trips(&after),
        1,
        "after the last write:\n{}",
        show(&calls)
    );
    // Nothing read twice: each subnet once; the load balancer by name once
    // to observe and once after ACTIVE (a racing replica's copy).
    let count =
        |calls: &[Journaled], part: &str| calls.iter().filter(|c| c.0.contains(part)).count();
    for (c, _, _) in calls.iter().filter(|c| c.0.contains("/subnets/")) {
        assert_eq!(count(&calls, c), 1, "{c} read twice:\n{}", show(&calls));
    }
    assert_eq!(count(&calls, "loadbalancers?name="), 2, "{}", show(&calls));
    // After ACTIVE, only the lookup by name (a racing replica's copy): the
    // tree is the create's answer (no monitor: the members' statuses stay),
    // the floating IP the POST's.
    let after: Vec<&str> = after.iter().map(|c| c.0.as_str()).collect();
    assert!(
        matches!(after.as_slice(), [one] if one.contains("loadbalancers?name=")),
        "{after:?}"
    );
    let fip = created.body["floatingIp"]["address"]
        .as_str()
        .unwrap_or_default();
    assert!(
        fip.parse::<std::net::Ipv4Addr>().is_ok(),
        "{}",
        created.body
    );
    assert_eq!(
        created.body["status"]["loadBalancer"]["ingress"][0]["ip"],
        fip
    );
    let pools = created.body["loadBalancer"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["pool"]["members"]);
    for members in pools {
        let members = members.as_array().unwrap();
        assert_eq!(members.len(), 3, "{}", created.body);
        for m in members {
            assert_eq!(m["operatingStatus"], "NO_MONITOR", "{}", created.body);
            assert!(m["id"].as_str().is_some_and(|id| !id.is_empty()));
        }
    }

    // A no-op: at most 4 reads, one round trip, no subnet read again.
    reset_journal(&app).await;
    let again = app
        .apply(request(&["10.1.0.5", "10.1.0.6", "10.1.0.7"]))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    let calls = journal(&app).await;
    assert!(calls.len() <= 4 && reads(&again) <= 4, "{}", show(&calls));
    assert_eq!(round_trips(&calls), 1, "{}", show(&calls));

    // One endpoint replaced: one round trip before the first member write,
    // one after the last (the waits between them are Octavia's).
    reset_journal(&app).await;
    let changed = app
        .apply(request(&["10.1.0.5", "10.1.0.6", "10.1.0.8"]))
        .await;
    assert_eq!(changed.body["action"], "updated", "{}", changed.body);
    let calls = journal(&app).await;
    let (before, after) = before_and_after_the_writes(&calls);
    assert!(before.len() <= 4, "{}", show(&calls));
    assert_eq!(round_trips(&before), 1, "{}", show(&calls));
    assert_eq!(round_trips(&after), 1, "{}", show(&calls));
    // The new member's id is Octavia's: the tree is read; the floating IPs
    // are as observed (no write touched them).
    assert!(
        !after.iter().any(|c| c.0.contains("floatingips")),
        "{}",
        show(&after)
    );
    // The answer shows the members the writes made.
    let members: Vec<&str> = changed.body["loadBalancer"]["listeners"][0]["pool"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["address"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 3, "{}", changed.body);
    assert!(members.contains(&"10.1.0.8"), "{}", changed.body);
}

#[tokio::test]
async fn subnets_are_kept_for_subnet_cache_s_read_once_an_apply_and_forgotten_on_a_refused_write() {
    let subnet_reads = |calls: &[Journaled]| {
        calls
            .iter()
            .filter(|c| c.0.starts_with("GET /network/v2.0/subnets/"))
            .map(|c| c.0.clone())
            .collect::<Vec<_>>()
    };
    let request = |name: &str| {
        let mut s = service("LoadBalancer", two_ports(), json!({}));
        s["metadata"]["name"] = json!(name);
        s["metadata"]["uid"] = json!(format!("u-{name}"));
        let ip = match name {
            "a" => "10.2.0.50",
            "b" => "10.2.0.51",
            _ => "10.2.0.52",
        };
        s["spec"]["clusterIP"] = json!(ip);
        let mut e = endpoints(&["10.1.0.5"]);
        e["metadata"]["name"] = json!(name);
        json!({"service": s, "endpoints": e})
    };
    // 0: every apply reads them, each once.
    let app = spawn_app_with_settings(|s| s.openstack.subnet_cache_s = 0).await;
    if app.sim_only("the simulator's journal of calls").is_none() {
        return;
    }
    for (name, expect) in [("a", "created"), ("a", "unchanged"), ("b", "created")] {
        reset_journal(&app).await;
        let a = app.apply(request(name)).await;
        assert_eq!(a.body["action"], expect, "{}", a.body);
        let read = subnet_reads(&journal(&app).await);
        let once: std::collections::BTreeSet<&String> = read.iter().collect();
        assert!(!read.is_empty(), "{name} {expect}: no subnet read");
        assert_eq!(
            once.len(),
            read.len(),
            "{name} {expect}: read twice: {read:?}"
        );
    }

    // The default: kept; a write refused with a 400 forgets them.
    let app = spawn_app().await;
    let sim = app.sim.as_ref().expect("the simulator");
    let a = app.apply(request("a")).await;
    assert_eq!(a.body["action"], "created", "{}", a.body);
    reset_journal(&app).await;
    let a = app.apply(request("b")).await;
    assert_eq!(a.body["action"], "created", "{}", a.body);
    let calls = journal(&app).await;
    assert_eq!(subnet_reads(&calls), Vec::<String>::new());
    add_fault(&app, sim, json!({"method": "POST", "path": "/load-balancer/*/loadbalancers", "error_rate": 1.0, "status": 400, "times": 1})).await;
    let refused = app.apply(request("c")).await;
    assert!(
        refused.status.is_client_error() || refused.status.is_server_error(),
        "{}",
        refused.body
    );
    reset_journal(&app).await;
    let a = app.apply(request("c")).await;
    assert_eq!(a.body["action"], "created", "{}", a.body);
    assert!(
        !subnet_reads(&journal(&app).await).is_empty(),
        "read again after the refusal"
    );
}

#[tokio::test]
async fn a_re_apply_reads_four_times_and_still_finds_what_was_changed_by_hand() {
    let app = spawn_app().await;
    let request = |ips: &[&str]| json!({"service": service("LoadBalancer", two_ports(), json!({})), "endpoints": endpoints(ips)});
    let first = app.apply(request(&["10.1.0.5", "10.1.0.6"])).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let lb_id = first.body["loadBalancer"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = app.apply(request(&["10.1.0.5", "10.1.0.6"])).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    assert!(
        reads(&again) <= 4,
        "after a create: {}",
        again.body["openstackCalls"]
    );
    let changed = app.apply(request(&["10.1.0.5", "10.1.0.7"])).await;
    assert_eq!(changed.body["action"], "updated");
    let again = app.apply(request(&["10.1.0.5", "10.1.0.7"])).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    assert!(
        reads(&again) <= 4,
        "after a member change: {}",
        again.body["openstackCalls"]
    );

    // Timestamps are to the second: a change by hand a second later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let listeners = app.listeners().await;
    let http = listeners
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "shop/web:TCP:80")
        .expect("the port 80 listener")["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.cloud(
        reqwest::Method::PUT,
        &format!("/load-balancer/v2/lbaas/listeners/{http}"),
        Some(json!({"listener": {"allowed_cidrs": ["192.0.2.0/24"]}})),
    )
    .await;
    app.until_active(&lb_id).await;
    let fixed = app.apply(request(&["10.1.0.5", "10.1.0.7"])).await;
    assert_eq!(fixed.body["action"], "updated", "{}", fixed.body);
    let ops = op_resources(&fixed.body);
    assert_eq!(ops, ["update listener"], "{}", fixed.body);
    let listener = app
        .cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/listeners/{http}"),
            None,
        )
        .await;
    let cidrs = &listener["listener"]["allowed_cidrs"];
    assert!(cidrs.is_null() || cidrs == &json!([]), "{listener}");

    // One of this Service's members deleted by hand comes back.
    let pool = app.pools().await.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let members = app
        .cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/pools/{pool}/members"),
            None,
        )
        .await;
    let gone = members["members"][0]["id"].as_str().unwrap().to_string();
    app.cloud(
        reqwest::Method::DELETE,
        &format!("/load-balancer/v2/lbaas/pools/{pool}/members/{gone}"),
        None,
    )
    .await;
    app.until_active(&lb_id).await;
    let back = app.apply(request(&["10.1.0.5", "10.1.0.7"])).await;
    assert_eq!(back.body["action"], "updated", "{}", back.body);
    let members = app
        .cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/pools/{pool}/members"),
            None,
        )
        .await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2, "{members}");
}

#[tokio::test]
async fn ports_added_and_removed_change_listeners_only() {
    let app = spawn_app().await;
    app.apply(json!({"service": service("ClusterIP", two_ports(), json!({}))}))
        .await;
    let a = app
        .apply(json!({"service": service("ClusterIP", json!([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]), json!({}))}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let ops: Vec<String> = a.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {} {}",
                o["op"].as_str().unwrap(),
                o["resource"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            "delete listener shop/web:TCP:443",
            "delete pool shop/web:TCP:443",
            "create listener shop/web:UDP:53",
            "create pool shop/web:UDP:53"
        ]
    );
    let names: Vec<&str> = a.body["loadBalancer"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"shop/web:UDP:53"));
}

#[tokio::test]
async fn load_balancer_to_cluster_ip_releases_the_floating_ip() {
    let app = spawn_app().await;
    app.apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    assert_eq!(app.floating_ips().await.len(), 1);
    let a = app
        .apply(json!({"service": service("ClusterIP", two_ports(), json!({}))}))
        .await;
    assert_eq!(a.body["action"], "updated");
    assert_eq!(ingress(&a), "10.2.0.42", "the VIP is the ingress now");
    assert!(app.floating_ips().await.is_empty(), "no leaked floating IP");
}

#[tokio::test]
async fn the_user_method_binds_the_users_floating_ip_and_never_deletes_it() {
    let app = spawn_app().await;
    let user = service(
        "LoadBalancer",
        two_ports(),
        json!({"loadBalancerIP": "172.24.4.13"}),
    );
    let missing = app.apply(json!({"service": user.clone()})).await;
    assert_eq!(missing.status, StatusCode::CONFLICT, "{}", missing.body);
    assert_eq!(missing.body["field"], "service.spec.loadBalancerIP");
    assert!(
        app.load_balancers().await.is_empty(),
        "nothing created before the check"
    );
    let public = app.cloud_access.public_network.clone();
    app.cloud(reqwest::Method::POST, "/network/v2.0/floatingips", Some(json!({"floatingip": {"floating_network_id": public, "floating_ip_address": "172.24.4.13"}})))
        .await;
    let a = app.apply(json!({"service": user})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(ingress(&a), "172.24.4.13");
    assert_eq!(a.body["floatingIp"]["method"], "user");
    let d = app
        .send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
    assert_eq!(d.status, StatusCode::OK);
    let ops: Vec<&str> = d.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["disassociate", "delete"]);
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1, "the user's floating IP stays");
    assert_eq!(fips[0]["port_id"], Value::Null);
}

#[tokio::test]
async fn a_users_floating_ip_bound_to_another_port_is_a_conflict() {
    let app = spawn_app().await;
    let public_network = app.cloud_access.public_network.clone();
    let service_network = app.cloud_access.service_network.clone();
    let port = app
        .cloud(
            reqwest::Method::POST,
            "/network/v2.0/ports",
            Some(json!({"port": {"network_id": service_network}})),
        )
        .await;
    app.cloud(
        reqwest::Method::POST,
        "/network/v2.0/floatingips",
        Some(json!({"floatingip": {"floating_network_id": public_network, "floating_ip_address": "172.24.4.13", "port_id": port["port"]["id"]}})),
    )
    .await;
    let a = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({"loadBalancerIP": "172.24.4.13"}))}))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap()
            .contains("bound to another port")
    );
}

#[tokio::test]
async fn headless_services_are_skipped_and_an_earlier_load_balancer_removed() {
    let app = spawn_app().await;
    app.apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    let a = app
        .apply(json!({"service": service("ClusterIP", two_ports(), json!({"clusterIP": "None"}))}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["action"], "skipped");
    assert!(a.body["reason"].as_str().unwrap().contains("headless"));
    assert!(app.load_balancers().await.is_empty());
    assert!(app.floating_ips().await.is_empty());
}

#[tokio::test]
async fn delete_cascades_and_answers_an_empty_list_when_nothing_existed() {
    let app = spawn_app().await;
    let nothing = app
        .send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert_eq!(nothing.body["operations"], json!([]));
    app.apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    let d = app
        .send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
    assert_eq!(d.body["converged"], true);
    assert!(app.load_balancers().await.is_empty());
    assert!(app.floating_ips().await.is_empty());
    let gone = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
}

#[tokio::test]
async fn the_api_service_gets_the_seeds_https_listener() {
    // The API server's endpoints are node addresses, outside the pod subnet:
    // the operator lists the node network in [tenancy] member_cidrs.
    let app = spawn_app_with_settings(|s| {
        s.tenancy.member_cidrs = Some(vec![
            "10.1.0.0/16".parse().unwrap(),
            "192.168.1.0/24".parse().unwrap(),
        ])
    })
    .await;
    let svc = json!({"metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"clusterIP": "10.2.0.1", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}});
    let ep = json!({"metadata": {"name": "kubernetes", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "192.168.1.2"}], "ports": [{"name": "https", "port": 6443}]}]});
    let a = app.apply(json!({"service": svc, "endpoints": ep})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let l = &a.body["loadBalancer"]["listeners"][0];
    assert_eq!(l["name"], "default/kubernetes:HTTPS:443");
    assert_eq!(l["protocol"], "HTTPS");
    assert_eq!(l["pool"]["lbAlgorithm"], "LEAST_CONNECTIONS");
    assert_eq!(l["pool"]["members"][0]["protocolPort"], 6443);
    assert_eq!(ingress(&a), "10.2.0.1");
}

#[tokio::test]
async fn bad_requests_are_problems_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"service": {"metadata": {"name": "x"}, "spec": {"ports": [{"port": "eighty"}]}}}).to_string(), 400, Some("service.spec.ports[0].port")),
        (json!({"service": service("ClusterIP", json!([{"port": 80, "protocol": "ICMP"}]), json!({}))}).to_string(), 400, Some("service.spec.ports[0].protocol")),
        (json!({"service": service("ClusterIP", two_ports(), json!({"clusterIP": "10.9.0.1"}))}).to_string(), 400, Some("service.spec.clusterIP")),
        (json!({"endpoints": {}}).to_string(), 400, Some("service")),
        ("{not json".to_string(), 400, Some("body")),
        ("x".repeat(2 * 1024 * 1024), 413, None),
    ];
    for (body, status, field) in cases {
        let a = app
            .send(reqwest::Method::POST, "/v1/apply", Some(body))
            .await;
        assert_eq!(a.status.as_u16(), status, "{}", a.body);
        assert_eq!(
            a.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        assert_eq!(a.body["status"], status);
        if let Some(f) = field {
            assert_eq!(a.body["field"], f, "{}", a.body);
        }
    }
    let mut annotated = service("ClusterIP", two_ports(), json!({}));
    annotated["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/lb-method": "FASTEST"});
    let a = app.apply(json!({"service": annotated})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.body["field"],
        "service.metadata.annotations[\"loadbalancer.openstack.org/lb-method\"]"
    );
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn a_cluster_ip_outside_the_vip_subnet_is_refused_before_any_write() {
    let app = spawn_app().await;
    let svc = service(
        "LoadBalancer",
        two_ports(),
        json!({"clusterIP": "192.0.2.10"}),
    );
    let a = app.apply(json!({"service": svc})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["field"], "service.spec.clusterIP", "{}", a.body);
    assert!(app.load_balancers().await.is_empty());
    assert!(app.floating_ips().await.is_empty());
}

#[tokio::test]
async fn annotated_ids_are_checked_before_any_url_and_any_write() {
    let app = spawn_app().await;
    let missing = "0c5e7c1e-2b9a-4f1e-9a7d-3f1d2c3b4a59";
    let cases = [
        // Malformed: never reach a URL.
        (
            "loadbalancer.openstack.org/subnet-id",
            "../../../v3/auth/tokens",
        ),
        (
            "loadbalancer.openstack.org/load-balancer-id",
            "x?fields=id#",
        ),
        (
            "loadbalancer.openstack.org/flavor-id",
            "../../v3/auth/tokens",
        ),
        ("loadbalancer.openstack.org/availability-zone", "../../v3"),
        // Well-formed, but naming nothing in the cloud.
        ("loadbalancer.openstack.org/subnet-id", missing),
        ("loadbalancer.openstack.org/member-subnet-id", missing),
        ("loadbalancer.openstack.org/floating-subnet-id", missing),
        ("loadbalancer.openstack.org/floating-network-id", missing),
        ("loadbalancer.openstack.org/flavor-id", missing),
        (
            "loadbalancer.openstack.org/availability-zone",
            "no-such-zone",
        ),
        ("loadbalancer.openstack.org/load-balancer-id", missing),
    ];
    for (annotation, value) in cases {
        let mut svc = service("LoadBalancer", two_ports(), json!({}));
        svc["metadata"]["annotations"] = json!({ annotation: value });
        let a = app
            .apply(json!({"service": svc, "endpoints": endpoints(&["10.1.0.5"])}))
            .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{annotation}={value}: {}",
            a.body
        );
        assert_eq!(
            a.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        assert_eq!(
            a.body["field"],
            format!("service.metadata.annotations[\"{annotation}\"]"),
            "{}",
            a.body
        );
    }
    assert!(app.load_balancers().await.is_empty());
    assert!(app.floating_ips().await.is_empty());
    if app.sim.is_some() {
        // Nothing but token requests reached Keystone.
        let stats = sim_stats(&app).await;
        let calls = stats["calls"].as_object().unwrap();
        let keystone: Vec<&String> = calls
            .keys()
            .filter(|k| k.contains("/v3") && *k != "POST /v3/auth/tokens")
            .collect();
        assert!(keystone.is_empty(), "{keystone:?}");
        assert!(
            !calls.keys().any(|k| k.starts_with("POST /load-balancer")),
            "{calls:?}"
        );
    }
}

#[tokio::test]
async fn openstack_errors_are_502_with_openstacks_status_and_request_id() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("a 500 from Octavia") else {
        return;
    };
    add_fault(&app, sim, json!({"method": "POST", "path": "/load-balancer/*/loadbalancers", "error_rate": 1.0, "status": 500, "times": 1})).await;
    let a = app
        .apply(json!({"service": service("ClusterIP", two_ports(), json!({}))}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.body);
    assert_eq!(a.body["openstackStatus"], 500);
    assert!(
        a.body["openstackRequestId"]
            .as_str()
            .is_some_and(|r| r.starts_with("req-"))
    );
    // A retry converges: the failed call created nothing.
    let again = app
        .apply(json!({"service": service("ClusterIP", two_ports(), json!({}))}))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(app.load_balancers().await.len(), 1);
}

/// The answer's listeners as `PROTOCOL:port`, sorted.
fn listener_ports(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["loadBalancer"]["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "{}:{}",
                l["protocol"].as_str().unwrap_or("?"),
                l["protocolPort"]
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_prometheus_listener_exposes_the_load_balancers_metrics_to_the_allowed_cidrs_only() {
    let key = "svc-lbaas.io/prometheus-listener-port";
    let svc = |annotations: Value| {
        let mut s = service("ClusterIP", one_port(), json!({}));
        s["metadata"]["annotations"] = annotations;
        s
    };
    // Without prometheus_allowed_cidrs the annotation is refused, naming both.
    let closed = spawn_app().await;
    let refused = closed
        .apply(json!({"service": svc(json!({key: "9100"}))}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        refused.body["field"],
        format!("service.metadata.annotations[\"{key}\"]")
    );
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("prometheus_allowed_cidrs")
            && detail.contains("SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS"),
        "{detail}"
    );
    assert!(
        closed.load_balancers().await.is_empty(),
        "nothing half-made"
    );
    drop(closed);

    let app = spawn_app_with_settings(|s| {
        s.octavia_defaults.prometheus_allowed_cidrs = vec![
            "10.9.0.0/24".parse().unwrap(),
            "fd00:9::/64".parse().unwrap(),
        ];
    })
    .await;
    // Not a port; a port the Service serves; a Service joining a load balancer.
    for (value, extra, says) in [
        ("metrics", json!({}), "is not a port"),
        ("0", json!({}), "is not a port"),
        ("+9100", json!({}), "is not a port"),
        ("80", json!({}), "the Service's port"),
    ] {
        let mut annotations = extra.clone();
        annotations[key] = json!(value);
        let r = app.apply(json!({"service": svc(annotations)})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{value}: {}", r.body);
        assert_eq!(
            r.body["field"],
            format!("service.metadata.annotations[\"{key}\"]"),
            "{}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(says),
            "{}",
            r.body
        );
    }
    assert!(app.load_balancers().await.is_empty());
    // Created with the load balancer: PROMETHEUS on 9100, no pool, open to
    // the IPv4 CIDR only (the VIP's family).
    let created = app
        .apply(json!({"service": svc(json!({key: "9100"}))}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(
        listener_ports(&created.body),
        ["PROMETHEUS:9100", "TCP:80"],
        "{}",
        created.body
    );
    let metrics = created.body["loadBalancer"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "PROMETHEUS")
        .unwrap()
        .clone();
    assert_eq!(metrics["allowedCidrs"], json!(["10.9.0.0/24"]), "{metrics}");
    assert!(metrics["pool"].is_null(), "{metrics}");
    // Unchanged: no write.
    let again = app
        .apply(json!({"service": svc(json!({key: "9100"}))}))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    assert_eq!(again.body["openstackCalls"]["writes"], 0);
    // Moved to another port: the old one goes, the new one comes.
    let moved = app
        .apply(json!({"service": svc(json!({key: "9200"}))}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(
        listener_ports(&moved.body),
        ["PROMETHEUS:9200", "TCP:80"],
        "{}",
        moved.body
    );
    // The owner naming its own load balancer by id keeps it; a Service
    // joining it cannot add one: the metrics are the whole load balancer's.
    let id = moved.body["loadBalancer"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = app
        .apply(json!({"service": svc(json!({key: "9200", "loadbalancer.openstack.org/load-balancer-id": id}))}))
        .await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.body);
    assert_eq!(by_id.body["action"], "unchanged", "{}", by_id.body);
    let mut joiner = svc(json!({key: "9300", "loadbalancer.openstack.org/load-balancer-id": id}));
    joiner["metadata"]["name"] = json!("other");
    joiner["metadata"]["uid"] = json!("u-2");
    joiner["spec"]["ports"] = json!([{"name": "http", "port": 81, "targetPort": 8080}]);
    let joins = app.apply(json!({"service": joiner})).await;
    assert_eq!(joins.status, StatusCode::BAD_REQUEST, "{}", joins.body);
    assert_eq!(
        joins.body["field"],
        format!("service.metadata.annotations[\"{key}\"]"),
        "{}",
        joins.body
    );
    assert!(
        joins.body["detail"]
            .as_str()
            .unwrap()
            .contains("its owner's to expose"),
        "{}",
        joins.body
    );
    // The annotation removed: the listener goes.
    let removed = app.apply(json!({"service": svc(json!({}))})).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(
        listener_ports(&removed.body),
        ["TCP:80"],
        "{}",
        removed.body
    );
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

/// Each member's `address operatingStatus`, sorted.
fn member_health(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["loadBalancer"]["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["pool"]["members"].as_array().cloned().unwrap_or_default())
        .map(|m| {
            format!(
                "{} {}",
                m["address"].as_str().unwrap_or("?"),
                m["operatingStatus"].as_str().unwrap_or("?")
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn member_and_load_balancer_health_are_answered_as_octavia_reports_them() {
    let app = spawn_app().await;
    let svc = || {
        service(
            "ClusterIP",
            json!([{"name": "http", "port": 80, "targetPort": 8080}]),
            json!({}),
        )
    };
    let created = app
        .apply(json!({"service": svc(), "endpoints": endpoints(&["10.1.0.5", "10.1.0.6"])}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    // No health monitor: Octavia checks nothing (both clouds say NO_MONITOR).
    assert_eq!(
        member_health(&created.body),
        ["10.1.0.5 NO_MONITOR", "10.1.0.6 NO_MONITOR"],
        "{}",
        created.body
    );
    assert!(created.body["loadBalancer"]["operatingStatus"].is_string());
    let Some(sim) = app.sim_only("members reported down") else {
        app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
            .await;
        return;
    };
    let id_of = |body: &Value, address: &str| {
        body["loadBalancer"]["listeners"][0]["pool"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["address"] == address)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // What Octavia's health manager would report from the amphora's
    // heartbeat (the simulator's fault injection stands for it).
    let report = |member: String, status: Value| {
        let url = format!(
            "{}/sim/faults/members/{member}/operating-status",
            sim.state.base_url
        );
        let http = app.http.clone();
        async move {
            http.post(url)
                .json(&json!({"status": status}))
                .send()
                .await
                .unwrap()
        }
    };
    // No health monitor checks them: Octavia cannot find them down.
    let unchecked = report(id_of(&created.body, "10.1.0.6"), json!("ERROR")).await;
    assert_eq!(unchecked.status(), StatusCode::CONFLICT);
    // With a health monitor, members are checked: ONLINE.
    let mut monitored = svc();
    monitored["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/enable-health-monitor": "true"});
    let members = || endpoints(&["10.1.0.5", "10.1.0.6"]);
    let checked = app
        .apply(json!({"service": monitored.clone(), "endpoints": members()}))
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert_eq!(
        member_health(&checked.body),
        ["10.1.0.5 ONLINE", "10.1.0.6 ONLINE"],
        "{}",
        checked.body
    );
    // 10.1.0.6 found down: it is ERROR, the load balancer DEGRADED.
    let (five, six) = (
        id_of(&checked.body, "10.1.0.5"),
        id_of(&checked.body, "10.1.0.6"),
    );
    assert_eq!(
        report(six.clone(), json!("ERROR")).await.status(),
        StatusCode::NO_CONTENT
    );
    let got = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(
        member_health(&got.body),
        ["10.1.0.5 ONLINE", "10.1.0.6 ERROR"],
        "{}",
        got.body
    );
    assert_eq!(
        got.body["loadBalancer"]["operatingStatus"], "DEGRADED",
        "{}",
        got.body
    );
    // A re-apply (the watcher's resync) answers it too, and changes nothing.
    let again = app
        .apply(json!({"service": monitored.clone(), "endpoints": members()}))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    assert_eq!(
        member_health(&again.body),
        ["10.1.0.5 ONLINE", "10.1.0.6 ERROR"]
    );
    assert_eq!(again.body["loadBalancer"]["operatingStatus"], "DEGRADED");
    // Both down: the pool and the load balancer ERROR.
    assert_eq!(
        report(five.clone(), json!("ERROR")).await.status(),
        StatusCode::NO_CONTENT
    );
    let got = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(
        member_health(&got.body),
        ["10.1.0.5 ERROR", "10.1.0.6 ERROR"]
    );
    assert_eq!(
        got.body["loadBalancer"]["operatingStatus"], "ERROR",
        "{}",
        got.body
    );
    // Reported healthy again.
    for id in [five, six.clone()] {
        assert_eq!(
            report(id, Value::Null).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let got = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(
        member_health(&got.body),
        ["10.1.0.5 ONLINE", "10.1.0.6 ONLINE"]
    );
    assert_eq!(got.body["loadBalancer"]["operatingStatus"], "ONLINE");
    // What is no member status is refused, naming the choices.
    let bad = report(six, json!("SICK")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("NO_MONITOR"));
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

#[tokio::test]
async fn a_409_from_a_busy_load_balancer_is_waited_out_and_planned_again() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("a 409 from a busy load balancer") else {
        return;
    };
    let base = sim.state.base_url.clone();
    app.apply(json!({"service": service("ClusterIP", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.5"])})).await;
    add_fault(
        &app,
        sim,
        json!({"method": "PUT", "path": "*/members", "error_rate": 1.0, "status": 409, "times": 1}),
    )
    .await;
    let a = app
        .apply(json!({"service": service("ClusterIP", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.6"])}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let members = &a.body["loadBalancer"]["listeners"][0]["pool"]["members"];
    assert_eq!(members[0]["address"], "10.1.0.6");
    let faults: Value = app
        .http
        .get(format!("{}/sim/faults", base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        faults["faults"],
        json!([]),
        "the 409 was served, then waited out"
    );
    assert!(calls(&a).1 >= 2, "waited after the conflict: {}", a.body);
}

#[tokio::test]
async fn a_floating_ip_left_unbound_by_a_crash_is_reused_not_allocated_again() {
    let app = spawn_app().await;
    app.apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    let fip = app.floating_ips().await[0].clone();
    let id = fip["id"].as_str().unwrap().to_string();
    app.cloud(
        reqwest::Method::PUT,
        &format!("/network/v2.0/floatingips/{id}"),
        Some(json!({"floatingip": {"port_id": null}})),
    )
    .await;
    let a = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    assert_eq!(calls(&a).0, 1, "{}", a.body);
    assert_eq!(a.body["operations"][0]["op"], "associate");
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1);
    assert_eq!(fips[0]["id"], json!(id));
}

#[tokio::test]
async fn plans_show_what_apply_would_do_without_writing() {
    let app = spawn_app().await;
    let request = json!({"service": service("LoadBalancer", two_ports(), json!({}))}).to_string();
    let p = app
        .send(reqwest::Method::POST, "/v1/plan", Some(request.clone()))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["action"], "create");
    let ops: Vec<&str> = p.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["resource"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["loadbalancer", "floatingip"]);
    assert!(
        app.load_balancers().await.is_empty(),
        "a plan writes nothing"
    );
    let offline = app
        .send(
            reqwest::Method::POST,
            "/v1/plan?offline=true",
            Some(request),
        )
        .await;
    assert_eq!(offline.body["action"], "create");
}

#[tokio::test]
async fn request_ids_come_back_and_health_answers() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(format!("http://{}/healthz", app.addr))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get("x-request-id").unwrap(), "abc-123");
    let ready = app.send(reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn bearer_tokens_are_401_when_missing_or_unknown_and_403_outside_their_namespaces() {
    let tokens = svc_lbaas::api::auth::Tokens::parse(
        "[[tokens]]\nname = \"shop-ci\"\ntoken = \"shop-token-0123456789\"\nnamespaces = [\"shop\"]\n",
    )
    .unwrap();
    let app = spawn_app_with(Some(tokens)).await;
    let body = json!({"service": service("ClusterIP", two_ports(), json!({}))}).to_string();
    let url = format!("http://{}/v1/apply", app.addr);
    let none = app.http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers().get("www-authenticate").unwrap(), "Bearer");
    let wrong = app
        .http
        .post(&url)
        .bearer_auth("not-a-known-token")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let ok = app
        .http
        .post(&url)
        .bearer_auth("shop-token-0123456789")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let mut other = service("ClusterIP", two_ports(), json!({}));
    other["metadata"]["namespace"] = json!("billing");
    let forbidden = app
        .http
        .post(&url)
        .bearer_auth("shop-token-0123456789")
        .body(json!({"service": other}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let get = app
        .http
        .get(format!("http://{}/v1/services/billing/web", app.addr))
        .bearer_auth("shop-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::FORBIDDEN);
    // The auth scheme is case-insensitive (RFC 9110).
    let lowercase = app
        .http
        .get(format!("http://{}/v1/services/shop/web", app.addr))
        .header("authorization", "bearer shop-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(lowercase.status(), StatusCode::OK);
    assert_eq!(
        app.load_balancers().await.len(),
        1,
        "only the allowed apply created anything"
    );
    // Health needs no token.
    let health = app
        .http
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_openstack_calls_waits_and_applies() {
    let app = spawn_app().await;
    app.apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    // A refused request is counted by its problem type and retryability.
    let bad = app.apply(json!({"service": {"kind": "Service"}})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let res = app
        .http
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = res.text().await.unwrap();
    // Counters are process-wide (tests share the process): check presence, not totals.
    for needle in [
        "# TYPE svc_lbaas_applies counter",
        "svc_lbaas_apply_duration_seconds_count{kind=\"service\",action=\"created\",outcome=\"ok\"}",
        "svc_lbaas_openstack_call_duration_seconds_count{service=\"load-balancer\",method=\"POST\"}",
        "svc_lbaas_wait_duration_seconds_count{kind=\"create\",outcome=\"settled\"}",
        "svc_lbaas_applies_in_flight ",
        "svc_lbaas_applies_total{action=\"created\"}",
        "svc_lbaas_http_requests_total{method=\"POST\",route=\"/v1/apply\",status=\"200\"}",
        "svc_lbaas_openstack_calls_total{service=\"load-balancer\",method=\"POST\",status=\"201\"}",
        "svc_lbaas_openstack_calls_total{service=\"network\",method=\"POST\",status=\"201\"}",
        "svc_lbaas_waits_total",
        "svc_lbaas_problems_total{type=\"invalid-service\",retryable=\"false\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

async fn event(app: &App, body: Value) -> Answer {
    app.send(reqwest::Method::POST, "/v1/events", Some(body.to_string()))
        .await
}

#[tokio::test]
async fn watch_events_apply_services_reconcile_endpoints_and_delete() {
    let app = spawn_app().await;
    let named = json!([{"name": "http", "port": 80, "targetPort": "web"}, {"name": "https", "port": 443, "targetPort": 8443}]);
    let svc = service("LoadBalancer", named, json!({}));
    let early = event(
        &app,
        json!({"type": "ADDED", "object": endpoints(&["10.1.0.5"])}),
    )
    .await;
    assert_eq!(early.status, StatusCode::ACCEPTED, "{}", early.body);
    assert!(early.body["result"]["pending"].is_string());

    let added = event(&app, json!({"type": "ADDED", "object": svc})).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["result"]["action"], "created");
    assert_eq!(added.body["kind"], "Service");

    let ep = event(
        &app,
        json!({"type": "MODIFIED", "object": endpoints(&["10.1.0.5", "10.1.0.6", "10.1.0.7"])}),
    )
    .await;
    assert_eq!(ep.status, StatusCode::OK, "{}", ep.body);
    assert_eq!(
        ep.body["result"]["openstackCalls"]["writes"], 2,
        "one batch write per pool: {}",
        ep.body
    );
    let listeners = ep.body["result"]["loadBalancer"]["listeners"]
        .as_array()
        .unwrap();
    let http = listeners.iter().find(|l| l["protocolPort"] == 80).unwrap();
    let ports: Vec<u64> = http["pool"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["protocolPort"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ports,
        [8080, 8080, 8080],
        "the named targetPort resolved through the Endpoints' port names"
    );

    let same = event(
        &app,
        json!({"type": "MODIFIED", "object": endpoints(&["10.1.0.5", "10.1.0.6", "10.1.0.7"])}),
    )
    .await;
    assert_eq!(same.body["result"]["action"], "unchanged");
    assert_eq!(same.body["result"]["openstackCalls"]["writes"], 0);

    let deleted = event(
        &app,
        json!({"type": "DELETED", "object": service("LoadBalancer", two_ports(), json!({}))}),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["result"]["action"], "deleted");
    assert!(app.load_balancers().await.is_empty());
    assert!(app.floating_ips().await.is_empty());
}

#[tokio::test]
async fn a_list_of_endpoint_slices_of_one_service_is_reconciled_together() {
    let app = spawn_app().await;
    app.apply(json!({"service": service("ClusterIP", two_ports(), json!({}))}))
        .await;
    let slice = |name: &str, ips: &[&str]| {
        let endpoints: Vec<Value> = ips
            .iter()
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}], "endpoints": endpoints})
    };
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"type": "MODIFIED", "object": slice("web-a", &["10.1.0.5", "10.1.0.6"])},
        {"type": "MODIFIED", "object": slice("web-b", &["10.1.0.7"])},
        {"type": "ADDED", "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}}}
    ]});
    let a = event(&app, list).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let results = a.body["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        2,
        "one result for the ConfigMap, one for the Service's slices: {}",
        a.body
    );
    assert!(results[0]["result"]["ignored"].is_string());
    let members = &results[1]["result"]["loadBalancer"]["listeners"][0]["pool"]["members"];
    assert_eq!(members.as_array().unwrap().len(), 3, "{}", a.body);
}

/// An EndpointSlice of `web` serving `http` (8080) with `endpoints`.
fn web_slice(endpoints: Value) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-a", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": endpoints})
}

fn serving(ip: &str) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}})
}

fn draining(ip: &str) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": false, "serving": true, "terminating": true}})
}

/// `address weight` of each member of the answer's first listener's pool.
fn member_weights(answer: &Value) -> Vec<String> {
    let mut m: Vec<String> = answer["loadBalancer"]["listeners"][0]["pool"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| format!("{} {}", m["address"].as_str().unwrap_or(""), m["weight"]))
        .collect();
    m.sort();
    m
}

/// `(address, id, weight)` of each member of a pool's member list, sorted.
fn pool_members(list: &Value) -> Vec<(String, String, u64)> {
    let mut m: Vec<(String, String, u64)> = list["members"]
        .as_array()
        .unwrap_or_else(|| panic!("a member list: {list}"))
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().to_string(),
                m["id"].as_str().unwrap().to_string(),
                m["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    m.sort();
    m
}

#[tokio::test]
async fn a_terminating_endpoint_drains_at_weight_zero_then_leaves() {
    let app = spawn_app().await;
    let svc = service("ClusterIP", one_port(), json!({}));
    let a = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), serving("10.1.0.6")]))]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pool_id = a.body["loadBalancer"]["listeners"][0]["pool"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app
        .cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/pools/{pool_id}/members"),
            None,
        )
        .await;
    // 10.1.0.6's pod starts terminating: it stays, at weight 0, in place.
    let a = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), draining("10.1.0.6")]))]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["action"], "updated", "{}", a.body);
    assert_eq!(
        a.body["operations"][0]["detail"], "2 members (1 draining, weight 0)",
        "{}",
        a.body
    );
    assert_eq!(member_weights(&a.body), ["10.1.0.5 1", "10.1.0.6 0"]);
    let after = app
        .cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/pools/{pool_id}/members"),
            None,
        )
        .await;
    let (before, after) = (pool_members(&before), pool_members(&after));
    assert_eq!(before.iter().map(|m| m.2).collect::<Vec<_>>(), [1, 1]);
    assert_eq!(
        after.iter().map(|m| (&m.1, m.2)).collect::<Vec<_>>(),
        [(&before[0].1, 1), (&before[1].1, 0)],
        "the same members, one drained"
    );
    let again = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), draining("10.1.0.6")]))]}))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    // GET shows the weights too.
    let got = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(member_weights(&got.body), ["10.1.0.5 1", "10.1.0.6 0"]);
    // The slice drops it (an EndpointSlice event alone): it goes.
    let gone = event(
        &app,
        json!({"type": "MODIFIED", "object": web_slice(json!([serving("10.1.0.5")]))}),
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.body["result"]["action"], "updated", "{}", gone.body);
    let got = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(member_weights(&got.body), ["10.1.0.5 1"]);
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

#[tokio::test]
async fn an_endpoints_event_alone_drains_a_member() {
    let app = spawn_app().await;
    let svc = service("ClusterIP", one_port(), json!({}));
    let a = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), serving("10.1.0.6")]))]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let drained = event(
        &app,
        json!({"type": "MODIFIED", "object": web_slice(json!([serving("10.1.0.5"), draining("10.1.0.6")]))}),
    )
    .await;
    assert_eq!(drained.status, StatusCode::OK, "{}", drained.body);
    assert_eq!(
        drained.body["result"]["action"], "updated",
        "{}",
        drained.body
    );
    assert_eq!(
        member_weights(&drained.body["result"]),
        ["10.1.0.5 1", "10.1.0.6 0"]
    );
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

#[tokio::test]
async fn malformed_events_are_400() {
    let app = spawn_app().await;
    let a = event(&app, json!({"kind": "Service"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["field"], "type");
    let b = event(&app, json!({"type": "ADDED", "object": {"kind": "Endpoints", "metadata": {"name": "web"}, "subsets": "nope"}})).await;
    assert_eq!(b.status, StatusCode::BAD_REQUEST, "{}", b.body);
    // One event's failure is a problem at the top, as any request's.
    assert_eq!(
        b.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    assert_eq!(b.body["field"], "object.subsets", "{}", b.body);
    // An unknown event type is refused, not taken for ADDED.
    let svc = service("LoadBalancer", two_ports(), json!({}));
    let c = event(&app, json!({"type": "UPSERTED", "object": svc})).await;
    assert_eq!(c.status, StatusCode::BAD_REQUEST, "{}", c.body);
    assert_eq!(c.body["field"], "type");
    let d = event(
        &app,
        json!({"kind": "List", "items": [{"type": "ADDDED", "object": svc}]}),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body["results"][0]["status"], 400, "{}", d.body);
    assert_eq!(d.body["results"][0]["problem"]["field"], "items[0].type");
    // A DELETED event naming no valid Service is refused, not "deleted".
    for name in [json!(""), json!("x".repeat(10_000)), json!("../..")] {
        let mut gone = svc.clone();
        gone["metadata"]["name"] = name;
        let e = event(&app, json!({"type": "DELETED", "object": gone})).await;
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{}", e.body);
        assert_eq!(e.body["field"], "object.metadata.name", "{}", e.body);
    }
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn service_paths_are_validated_as_kubernetes_names() {
    let app = spawn_app().await;
    let long = "x".repeat(10_000);
    for (path, field) in [
        ("/v1/services/shop/..%2F..".to_string(), Some("path.name")),
        (format!("/v1/services/shop/{long}"), Some("path.name")),
        ("/v1/services/shop/Web".to_string(), Some("path.name")),
        (
            "/v1/services/..%2F../web".to_string(),
            Some("path.namespace"),
        ),
        ("/v1/services/shop/".to_string(), None),
    ] {
        for method in [reqwest::Method::DELETE, reqwest::Method::GET] {
            let a = app.send(method.clone(), &path, None).await;
            assert!(a.status.is_client_error(), "{method} {path}: {}", a.status);
            assert_eq!(
                a.headers.get("content-type").unwrap(),
                "application/problem+json",
                "{method} {path}"
            );
            if let Some(f) = field {
                assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {path}");
                assert_eq!(a.body["field"], f, "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_as_committed() {
    let app = spawn_app().await;
    let served = app
        .http
        .get(format!("http://{}/openapi.json", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert_eq!(served, committed);
}

/// The rows of docs/contract.md's translation table not covered above, end to end:
/// what the cloud holds after the apply.
#[tokio::test]
async fn translation_rows_end_to_end() {
    let app = spawn_app().await;
    let one_port = one_port();
    // sessionAffinity: ClientIP -> SOURCE_IP persistence; loadBalancerSourceRanges -> allowed_cidrs.
    let a = app
        .apply(
            json!({"service": service("LoadBalancer", one_port.clone(), json!({
            "sessionAffinity": "ClientIP", "loadBalancerSourceRanges": ["203.0.113.0/24"]}))}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        app.pools().await[0]["session_persistence"]["type"],
        "SOURCE_IP"
    );
    assert_eq!(
        app.listeners().await[0]["allowed_cidrs"],
        json!(["203.0.113.0/24"])
    );

    // Annotations: algorithm, health monitor, listener timeout, PROXY pool (replaced: immutable).
    let mut annotated = service("LoadBalancer", one_port.clone(), json!({}));
    annotated["metadata"]["annotations"] = json!({
        "loadbalancer.openstack.org/lb-method": "LEAST_CONNECTIONS",
        "loadbalancer.openstack.org/enable-health-monitor": "true",
        "loadbalancer.openstack.org/timeout-client-data": "12345",
        "loadbalancer.openstack.org/proxy-protocol": "v2",
    });
    let b = app.apply(json!({"service": annotated})).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let pool = app.pools().await[0].clone();
    assert_eq!(pool["protocol"], "PROXYV2");
    assert_eq!(pool["lb_algorithm"], "LEAST_CONNECTIONS");
    assert!(pool["healthmonitor_id"].is_string(), "{pool}");
    let l = app.listeners().await[0].clone();
    assert_eq!(l["timeout_client_data"], 12345);
    assert_eq!(l["allowed_cidrs"], Value::Null, "no source ranges any more");

    // The internal annotation: no floating IP; the VIP is the ingress.
    let mut internal = service("LoadBalancer", one_port.clone(), json!({}));
    internal["metadata"]["annotations"] =
        json!({"service.beta.kubernetes.io/openstack-internal-load-balancer": "true"});
    let c = app.apply(json!({"service": internal})).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!(ingress(&c), "10.2.0.42");
    assert!(app.floating_ips().await.is_empty());

    // keep-floatingip: on removal the allocated floating IP is only disassociated.
    let mut keep = service("LoadBalancer", one_port.clone(), json!({}));
    keep["metadata"]["annotations"] = json!({"loadbalancer.openstack.org/keep-floatingip": "true"});
    app.apply(json!({"service": keep.clone()})).await;
    let address = app.floating_ips().await[0]["floating_ip_address"].clone();
    keep["spec"]["type"] = json!("ClusterIP");
    let d = app.apply(json!({"service": keep})).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1);
    assert_eq!(fips[0]["floating_ip_address"], address);
    assert_eq!(fips[0]["port_id"], Value::Null);

    // A foreign loadBalancerClass: skipped, and what we had is removed.
    let foreign = service(
        "LoadBalancer",
        one_port,
        json!({"loadBalancerClass": "example.com/other"}),
    );
    let e = app.apply(json!({"service": foreign})).await;
    assert_eq!(e.body["action"], "skipped");
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn a_service_deleted_and_created_again_waits_for_the_old_load_balancer() {
    let app = spawn_app().await;
    let request = json!({"service": service("LoadBalancer", two_ports(), json!({}))});
    app.apply(request.clone()).await;
    // The delete returns at once: the old load balancer, with its VIP port on
    // 10.2.0.42, is still PENDING_DELETE when the Service comes back.
    let d = app
        .send(
            reqwest::Method::DELETE,
            "/v1/services/shop/web?wait=false",
            None,
        )
        .await;
    assert_eq!(d.body["converged"], false, "{}", d.body);
    let again = app.apply(request).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["action"], "created");
    assert_eq!(again.body["loadBalancer"]["vipAddress"], "10.2.0.42");
    assert_eq!(app.load_balancers().await.len(), 1);
}

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/cert.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/key.pem");

fn trusting_client() -> reqwest::Client {
    let pem = std::fs::read(CA).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// Serves `app` over TLS with the test certificate on 127.0.0.1:0.
async fn serve_tls(app: axum::Router) -> SocketAddr {
    let config = std::sync::Arc::new(
        svc_lbaas::tls::server_config(std::path::Path::new(CERT), std::path::Path::new(KEY))
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(svc_lbaas::listener::serve(
        listener,
        app,
        Some(config),
        Default::default(),
        std::future::pending(),
    ));
    addr
}

#[tokio::test]
async fn the_rest_api_serves_https_with_the_configured_certificate() {
    let (app, _sim) = svc_lbaas::startup::build_app(Settings::default(), None, &|_| None)
        .await
        .unwrap();
    let addr = serve_tls(app).await;
    let res = trusting_client()
        .get(format!("https://127.0.0.1:{}/healthz", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Neither plain HTTP nor a client that does not trust the certificate gets through.
    assert!(
        reqwest::Client::new()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    assert!(
        reqwest::Client::new()
            .get(format!("https://127.0.0.1:{}/healthz", addr.port()))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_cloud_over_https_is_trusted_through_os_cacert() {
    // The simulated cloud behind TLS, its catalog pointing at https URLs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let state =
        svc_lbaas::sim::SimState::new(Default::default(), format!("https://127.0.0.1:{port}"));
    let config = std::sync::Arc::new(
        svc_lbaas::tls::server_config(std::path::Path::new(CERT), std::path::Path::new(KEY))
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(svc_lbaas::listener::serve(
        listener,
        svc_lbaas::sim::app(state),
        Some(config),
        Default::default(),
        std::future::pending(),
    ));
    let auth_url = format!("https://127.0.0.1:{port}/v3");
    for (ca, ready) in [
        (Some(CA), StatusCode::OK),
        (None, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let env = |k: &str| match k {
            "OS_AUTH_URL" => Some(auth_url.clone()),
            "OS_USERNAME" | "OS_PASSWORD" | "OS_PROJECT_NAME" => Some("admin".to_string()),
            "OS_USER_DOMAIN_NAME" | "OS_PROJECT_DOMAIN_NAME" => Some("Default".to_string()),
            "OS_CACERT" => ca.map(str::to_string),
            _ => None,
        };
        let (app, sim) = svc_lbaas::startup::build_app(Settings::default(), None, &env)
            .await
            .unwrap();
        assert!(sim.is_none(), "credentials given: no embedded simulator");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let res = reqwest::Client::new()
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), ready, "CA bundle {ca:?}");
    }
}

#[tokio::test]
async fn an_expired_keystone_token_is_renewed_once_and_the_call_retried() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("expiring every token") else {
        return;
    };
    let base = sim.state.base_url.clone();
    let request = json!({"service": service("ClusterIP", two_ports(), json!({}))});
    assert_eq!(app.apply(request.clone()).await.status, StatusCode::OK);
    let res = app
        .http
        .post(format!("{}/sim/faults/expire-tokens", base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let again = app.apply(request).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["action"], "unchanged");
}

#[tokio::test]
async fn a_load_balancer_in_error_is_replaced() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("driving a load balancer to ERROR") else {
        return;
    };
    let base = sim.state.base_url.clone();
    let request = json!({"service": service("LoadBalancer", two_ports(), json!({}))});
    let first = app.apply(request.clone()).await;
    let id = first.body["loadBalancer"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let address = first.body["floatingIp"]["address"].clone();
    let res = app
        .http
        .post(format!("{}/sim/faults/loadbalancers/{id}/error", base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let got = app
        .send(reqwest::Method::GET, "/v1/services/shop/web", None)
        .await;
    assert_eq!(got.body["loadBalancer"]["provisioningStatus"], "ERROR");
    assert_eq!(got.body["converged"], false);
    let fixed = app.apply(request).await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    assert_eq!(fixed.body["action"], "updated");
    assert_ne!(
        fixed.body["loadBalancer"]["id"],
        json!(id),
        "a new load balancer"
    );
    assert_eq!(fixed.body["loadBalancer"]["provisioningStatus"], "ACTIVE");
    assert_eq!(
        fixed.body["floatingIp"]["address"], address,
        "the same floating IP, moved over"
    );
    assert_eq!(app.load_balancers().await.len(), 1);
}

/// A racing replica's copy is still PENDING_CREATE when this replica, whose
/// own load balancer is older and ACTIVE, wants to delete it: Octavia answers
/// 409 to that DELETE until the copy settles. The apply waits it out.
#[tokio::test]
async fn a_copy_still_being_created_is_waited_for_then_deleted() {
    // Provisioning long enough that the copy is PENDING_CREATE when the apply plans.
    let app = spawn_app_configured(None, 1500, |_| {}).await;
    let request = json!({"service": service("ClusterIP", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.5"])});
    let first = app.apply(request.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let survivor = first.body["loadBalancer"]["id"].clone();
    let lbs = app.load_balancers().await;
    assert_eq!(lbs.len(), 1);
    // What a racing replica posts: the same name and owner tags, a later created_at.
    let copy = app
        .cloud(
            reqwest::Method::POST,
            "/load-balancer/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {
                "name": lbs[0]["name"],
                "tags": lbs[0]["tags"],
                "vip_subnet_id": lbs[0]["vip_subnet_id"],
            }})),
        )
        .await;
    assert_eq!(
        copy["loadbalancer"]["provisioning_status"], "PENDING_CREATE",
        "{copy}"
    );
    let a = app.apply(request).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["loadBalancer"]["id"], survivor,
        "the older one stays"
    );
    assert_eq!(a.body["converged"], true, "{}", a.body);
    let ops: Vec<(&Value, &Value)> = a.body["operations"]
        .as_array()
        .map(|o| o.iter().map(|op| (&op["op"], &op["resource"])).collect())
        .unwrap_or_default();
    assert_eq!(
        ops,
        [(&json!("delete"), &json!("loadbalancer"))],
        "only the copy goes: {}",
        a.body
    );
    assert_eq!(a.body["operations"][0]["id"], copy["loadbalancer"]["id"]);
    let left: Vec<Value> = app.load_balancers().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], survivor);
}

/// The gRPC API over the same state as REST, with the generated client.
async fn spawn_grpc(tokens: Option<svc_lbaas::api::auth::Tokens>) -> (String, RunningSim) {
    let env = |k: &str| (k == "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").then(|| "30".to_string());
    let (state, sim) = svc_lbaas::startup::build_state(Settings::default(), tokens, &env)
        .await
        .unwrap();
    let routes = svc_lbaas::api::grpc::router(state).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), sim.unwrap())
}

fn grpc_apply_request(svc: Value) -> svc_lbaas::api::grpc::pb::ApplyRequest {
    svc_lbaas::api::grpc::pb::ApplyRequest {
        service: Some(svc_lbaas::api::grpc::json_to_struct(&svc)),
        endpoints: Some(svc_lbaas::api::grpc::json_to_struct(&endpoints(&[
            "10.1.0.5", "10.1.0.6",
        ]))),
        ..Default::default()
    }
}

#[tokio::test]
async fn grpc_apply_get_and_delete_over_the_same_core() {
    use svc_lbaas::api::grpc::pb::{
        DeleteRequest, ServiceKey, translator_client::TranslatorClient,
    };
    let (url, _sim) = spawn_grpc(None).await;
    let mut client = TranslatorClient::connect(url).await.unwrap();
    let answer = client
        .apply(grpc_apply_request(service(
            "LoadBalancer",
            two_ports(),
            json!({}),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.action, "created");
    assert_eq!(answer.openstack_calls.unwrap().writes, 2);
    let status = svc_lbaas::api::grpc::struct_to_json(answer.status.as_ref().unwrap());
    assert!(
        status["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .unwrap()
            .starts_with("172.24.4.")
    );
    let key = ServiceKey {
        namespace: "shop".into(),
        name: "web".into(),
    };
    let got = client.get(key.clone()).await.unwrap().into_inner();
    assert_eq!(got.load_balancer.unwrap().listeners.len(), 2);
    // Delete takes REST's options: keep the floating IP (disassociated), don't wait.
    let deleted = client
        .delete(DeleteRequest {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            keep_floating_ip: Some(true),
            wait: Some(false),
            timeout_s: Some(30),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.action, "deleted");
    let ops: Vec<(&str, &str)> = deleted
        .operations
        .iter()
        .map(|o| (o.op.as_str(), o.resource.as_str()))
        .collect();
    assert!(ops.contains(&("disassociate", "floatingip")), "{ops:?}");
    assert!(!ops.contains(&("delete", "floatingip")), "{ops:?}");
    assert!(!deleted.converged, "not waited for: {deleted:?}");
    let missing = client.get(key).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn grpc_bearer_tokens_travel_in_metadata() {
    use svc_lbaas::api::grpc::pb::translator_client::TranslatorClient;
    let tokens = svc_lbaas::api::auth::Tokens::parse(
        "[[tokens]]\ntoken = \"grpc-token-0123456789\"\nnamespaces = [\"shop\"]\n",
    )
    .unwrap();
    let (url, _sim) = spawn_grpc(Some(tokens)).await;
    let mut client = TranslatorClient::connect(url).await.unwrap();
    let unauthenticated = || {
        svc_lbaas::metrics::global()
            .render()
            .lines()
            .filter(|l| {
                l.starts_with("svc_lbaas_problems_total{") && l.contains("\"unauthenticated\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let counted = unauthenticated();
    let none = client
        .apply(grpc_apply_request(service(
            "ClusterIP",
            two_ports(),
            json!({}),
        )))
        .await
        .unwrap_err();
    assert_eq!(none.code(), tonic::Code::Unauthenticated);
    // Counted as REST's are (other tests of this binary may add theirs).
    assert!(unauthenticated() > counted, "the refusal is counted");
    let mut req = tonic::Request::new(grpc_apply_request(service(
        "ClusterIP",
        two_ports(),
        json!({}),
    )));
    req.metadata_mut().insert(
        "authorization",
        "Bearer grpc-token-0123456789".parse().unwrap(),
    );
    assert_eq!(
        client.apply(req).await.unwrap().into_inner().action,
        "created"
    );
    let mut other = service("ClusterIP", two_ports(), json!({}));
    other["metadata"]["namespace"] = json!("billing");
    let mut req = tonic::Request::new(grpc_apply_request(other));
    req.metadata_mut().insert(
        "authorization",
        "Bearer grpc-token-0123456789".parse().unwrap(),
    );
    assert_eq!(
        client.apply(req).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
}

#[tokio::test]
async fn grpc_refuses_undecodable_oversized_and_misnamed_requests_as_the_clients_fault() {
    use svc_lbaas::api::grpc::pb::translator_client::TranslatorClient;
    let tokens = svc_lbaas::api::auth::Tokens::parse(
        "[[tokens]]\ntoken = \"grpc-token-0123456789\"\nnamespaces = [\"*\"]\n",
    )
    .unwrap();
    let (url, _sim) = spawn_grpc(Some(tokens)).await;
    let mut client = TranslatorClient::connect(url)
        .await
        .unwrap()
        .max_encoding_message_size(64 * 1024 * 1024);
    fn with_token<T>(msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.metadata_mut().insert(
            "authorization",
            "bEaReR grpc-token-0123456789".parse().unwrap(),
        );
        req
    }
    // A Struct nested past prost's recursion limit: INVALID_ARGUMENT, not INTERNAL.
    let mut deep = json!("leaf");
    for _ in 0..200 {
        deep = json!({ "a": deep });
    }
    let mut svc = service("ClusterIP", two_ports(), json!({}));
    svc["metadata"]["labels"] = deep;
    let e = client
        .apply(with_token(grpc_apply_request(svc)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    // Over the REST body limit (1 MiB): refused before it is decoded.
    let mut big = service("ClusterIP", two_ports(), json!({}));
    big["metadata"]["annotations"] = json!({"x": "y".repeat(2 * 1024 * 1024)});
    let e = client
        .apply(with_token(grpc_apply_request(big)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e}");
    // Names are validated as Kubernetes does (the lowercase scheme was accepted above).
    for (namespace, name) in [("shop", ""), ("shop", "../.."), ("../..", "web")] {
        let key = svc_lbaas::api::grpc::pb::DeleteRequest {
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        };
        let e = client.delete(with_token(key)).await.unwrap_err();
        assert_eq!(
            e.code(),
            tonic::Code::InvalidArgument,
            "{namespace}/{name}: {e}"
        );
    }
}

/// A loopback server that answers every request with `answer` and records
/// what it was sent (method, path, whether a token or a password came with it).
#[derive(Default)]
struct Recorder {
    seen: std::sync::Mutex<Vec<String>>,
}

async fn fake_server(
    answer: impl Fn(&str, &str) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (SocketAddr, std::sync::Arc<Recorder>) {
    let recorder = std::sync::Arc::new(Recorder::default());
    let rec = recorder.clone();
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let rec = rec.clone();
            let answer = answer.clone();
            async move {
                let token = headers.contains_key("x-auth-token");
                let password = String::from_utf8_lossy(&body).contains("password");
                rec.seen.lock().unwrap().push(format!(
                    "{method} {} token={token} password={password}",
                    uri.path()
                ));
                answer(method.as_str(), uri.path())
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, recorder)
}

fn redirect_to(status: u16, location: String) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("location", location)
        .body(axum::body::Body::empty())
        .unwrap()
}

/// A Keystone that issues a token whose catalog points both services at `api`.
fn keystone_with_catalog(api: String) -> axum::response::Response {
    let endpoints = |t: &str| json!({"type": t, "endpoints": [{"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": api}]});
    let body = json!({"token": {"expires_at": "2099-01-01T00:00:00.000000Z",
        "catalog": [endpoints("load-balancer"), endpoints("network")]}});
    axum::response::Response::builder()
        .status(201)
        .header("x-subject-token", "gAAAAAfake-token")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

/// How a replica reads its environment.
type Env = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The OS_* variables of the admin password at `auth_url`.
fn password_env(auth_url: String) -> Env {
    Box::new(move |k: &str| match k {
        "OS_AUTH_URL" => Some(auth_url.clone()),
        "OS_USERNAME" | "OS_PASSWORD" | "OS_PROJECT_NAME" => Some("admin".to_string()),
        "OS_USER_DOMAIN_NAME" | "OS_PROJECT_DOMAIN_NAME" => Some("Default".to_string()),
        "OS_REGION_NAME" => Some("RegionOne".to_string()),
        _ => None,
    })
}

/// The REST app of `settings` on the cloud `env` names, served on 127.0.0.1:0.
async fn serve_on(settings: Settings, env: Env) -> SocketAddr {
    let (app, _) = svc_lbaas::startup::build_app(settings, None, &*env)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn app_on_cloud(auth_url: String) -> SocketAddr {
    let mut settings = Settings::default();
    settings.neutron_defaults.service_subnet = Some("d6438a81-22fa-4a88-9b05-c4723662ef36".into());
    serve_on(settings, password_env(auth_url)).await
}

#[tokio::test]
async fn a_redirect_from_the_auth_url_does_not_carry_the_password_away() {
    let (elsewhere, thief) =
        fake_server(|_, _| keystone_with_catalog("http://127.0.0.1:9/".into())).await;
    let (keystone, _) =
        fake_server(move |_, path| redirect_to(307, format!("http://{elsewhere}{path}"))).await;
    let addr = app_on_cloud(format!("http://{keystone}/v3")).await;
    let res = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("307"), "{body}");
    assert!(
        thief.seen.lock().unwrap().is_empty(),
        "{:?}",
        thief.seen.lock().unwrap()
    );
}

#[tokio::test]
async fn a_redirect_from_an_api_endpoint_does_not_carry_the_token_away() {
    let (elsewhere, thief) = fake_server(|_, _| {
        axum::response::IntoResponse::into_response((
            StatusCode::OK,
            axum::Json(json!({"subnet": {"cidr": "10.2.0.0/16", "network_id": "n"}})),
        ))
    })
    .await;
    for status in [301, 302, 303, 307, 308] {
        let (api, _) =
            fake_server(move |_, path| redirect_to(status, format!("http://{elsewhere}{path}")))
                .await;
        let (keystone, _) =
            fake_server(move |_, _| keystone_with_catalog(format!("http://{api}/"))).await;
        let addr = app_on_cloud(format!("http://{keystone}/v3")).await;
        let res = reqwest::Client::new()
            .post(format!("http://{addr}/v1/apply"))
            .json(&json!({"service": service("ClusterIP", two_ports(), json!({}))}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY, "{status}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["openstackStatus"], status, "{body}");
    }
    assert!(
        thief.seen.lock().unwrap().is_empty(),
        "{:?}",
        thief.seen.lock().unwrap()
    );
}

#[tokio::test]
async fn a_cloud_that_never_answers_is_given_up_on_after_the_call_timeout() {
    // A Keystone that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let keystone = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mut settings = Settings::default();
    settings.openstack.call_timeout_s = 1;
    let addr = serve_on(settings, password_env(format!("http://{keystone}/v3"))).await;
    let started = std::time::Instant::now();
    let res = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    // The default (60 s) would still be waiting.
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn catalog_endpoints_other_than_http_and_https_are_not_used() {
    let (keystone, seen) =
        fake_server(|_, _| keystone_with_catalog("file:///etc/passwd".into())).await;
    let addr = app_on_cloud(format!("http://{keystone}/v3")).await;
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/apply"))
        .json(&json!({"service": service("ClusterIP", two_ports(), json!({}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no network endpoint"),
        "{body}"
    );
    // Only the token request reached anything.
    assert!(
        seen.seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.starts_with("POST /v3/auth/tokens"))
    );
}

/// The REST app on the simulator behind `svc_lbaas::listener::serve` with `limits`.
async fn serve_with_limits(
    limits: svc_lbaas::listener::Limits,
) -> (SocketAddr, Option<RunningSim>) {
    let (app, sim) = svc_lbaas::startup::build_app(Settings::default(), None, &|_| None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(svc_lbaas::listener::serve(
        listener,
        app,
        None,
        limits,
        std::future::pending(),
    ));
    (addr, sim)
}

/// Reads until the server closes the connection; fails past `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {within:?}"
    );
    got
}

#[tokio::test]
async fn stalled_connections_are_closed_while_health_keeps_answering() {
    use tokio::io::AsyncWriteExt as _;
    let limits = svc_lbaas::listener::Limits {
        header_read_timeout: std::time::Duration::from_secs(1),
        body_read_timeout: std::time::Duration::from_secs(1),
        idle_timeout: std::time::Duration::from_secs(2),
        max_connections: 1024,
    };
    let (addr, _sim) = serve_with_limits(limits).await;
    // 300 stalled connections: silent, half a head, half a body.
    let mut stalled = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        match i % 3 {
            0 => {}
            1 => s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap(),
            _ => s
                .write_all(b"POST /v1/plan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"serv")
                .await
                .unwrap(),
        }
        stalled.push((i % 3, s));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    for _ in 0..5 {
        let health = client.get(format!("http://{addr}/healthz")).send().await;
        assert_eq!(health.expect("healthz within 1 s").status(), StatusCode::OK);
    }
    // Each is closed by the server: within the idle timeout (silent), the header
    // read timeout (half a head), the body read timeout (half a body, answered 4xx).
    for (kind, mut s) in stalled {
        let got = closed_within(&mut s, std::time::Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&got);
        match kind {
            2 => assert!(text.starts_with("HTTP/1.1 4"), "{text}"),
            _ => assert!(!text.contains(" 200 "), "{text}"),
        }
    }
    // An idle keep-alive connection is closed after the idle timeout.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let got = closed_within(&mut s, std::time::Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "kept for the idle timeout"
    );
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let limits = svc_lbaas::listener::Limits {
        max_connections: 2,
        ..Default::default()
    };
    let (addr, _sim) = serve_with_limits(limits).await;
    let a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(
        client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    drop((a, b));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let ok = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

/// POSTs a fault to the simulator.
async fn add_fault(app: &App, sim: &RunningSim, fault: Value) {
    let res = app
        .http
        .post(format!("{}/sim/faults", sim.state.base_url))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
}

#[tokio::test]
async fn timeout_s_bounds_the_whole_request_not_only_its_waits() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("20 s of latency on one list call") else {
        return;
    };
    add_fault(
        &app,
        sim,
        json!({"method": "GET", "path": "/load-balancer/v2/lbaas/loadbalancers", "latency_ms": 20000, "times": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    let a = app
        .send(
            reqwest::Method::POST,
            "/v1/apply?timeout_s=2",
            Some(json!({"service": service("LoadBalancer", two_ports(), json!({}))}).to_string()),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT, "{}", a.body);
    assert_eq!(a.body["type"], "urn:svc-lbaas:problem:deadline-exceeded");
    assert!(
        took < std::time::Duration::from_secs(5),
        "answered after {took:?}"
    );
    // Nothing half-done stays in the way: the next apply converges.
    let again = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(app.load_balancers().await.len(), 1);
}

#[tokio::test]
async fn a_read_that_fails_once_is_tried_again_and_a_write_is_not() {
    let app = spawn_app().await;
    let Some(sim) = app.sim_only("a 503 and a dropped connection on reads") else {
        return;
    };
    add_fault(
        &app,
        sim,
        json!({"method": "GET", "path": "/load-balancer/v2/lbaas/loadbalancers", "error_rate": 1.0, "status": 503, "times": 1}),
    )
    .await;
    add_fault(
        &app,
        sim,
        json!({"method": "GET", "path": "/network/v2.0/floatingips", "drop_connection": true, "times": 1}),
    )
    .await;
    let a = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({}))}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["action"], "created");
    // A failed write is the answer (re-applying is safe), not tried blindly again.
    add_fault(
        &app,
        sim,
        json!({"method": "PUT", "path": "/load-balancer/*/members", "error_rate": 1.0, "status": 503, "times": 1}),
    )
    .await;
    let b = app
        .apply(json!({"service": service("LoadBalancer", two_ports(), json!({})), "endpoints": endpoints(&["10.1.0.9"])}))
        .await;
    assert_eq!(b.status, StatusCode::BAD_GATEWAY, "{}", b.body);
    assert_eq!(b.body["openstackStatus"], 503);
}

#[tokio::test]
async fn sctp_is_refused_naming_the_port_on_clouds_below_octavia_2_23() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = svc_lbaas::sim::SimConfig {
        octavia_minor: 22,
        provisioning_delay: std::time::Duration::from_millis(30),
        ..Default::default()
    };
    let sim = svc_lbaas::sim::spawn(listener, config).await.unwrap();
    let mut settings = Settings::default();
    settings.neutron_defaults.service_subnet = Some(sim.state.seed.service_subnet.clone());
    settings.neutron_defaults.pod_subnet = Some(sim.state.seed.pod_subnet.clone());
    let addr = serve_on(settings, password_env(sim.auth_url())).await;
    let ports =
        json!([{"name": "http", "port": 80}, {"name": "sig", "port": 3868, "protocol": "SCTP"}]);
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/apply"))
        .json(&json!({"service": service("ClusterIP", ports, json!({}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["field"], "service.spec.ports[1].protocol", "{body}");
    // TCP alone is fine there.
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/apply"))
        .json(&json!({"service": service("ClusterIP", json!([{"name": "http", "port": 80}]), json!({}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn typed_lists_as_the_api_server_sends_them_are_read() {
    let app = spawn_app().await;
    // `GET /api/v1/services`: a ServiceList whose items carry no kind or apiVersion.
    let mut item = service("ClusterIP", two_ports(), json!({}));
    item.as_object_mut().unwrap().remove("kind");
    item.as_object_mut().unwrap().remove("apiVersion");
    let list = json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "42"}, "items": [item]});
    let a = event(&app, list).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["results"][0]["kind"], "Service", "{}", a.body);
    assert_eq!(
        a.body["results"][0]["result"]["action"], "created",
        "{}",
        a.body
    );
    // An EndpointSliceList (items without kind) as an apply's endpointSlices.
    let slices = json!({"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1", "items": [
        {"metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.1.0.5"]}, {"addresses": ["10.1.0.6"]}]}]});
    let b = app
        .apply(json!({"service": service("ClusterIP", two_ports(), json!({})), "endpointSlices": slices}))
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let listeners = b.body["loadBalancer"]["listeners"].as_array().unwrap();
    let http = listeners.iter().find(|l| l["protocolPort"] == 80).unwrap();
    assert_eq!(
        http["pool"]["members"].as_array().unwrap().len(),
        2,
        "{}",
        b.body
    );
    // The slice lists only `http`: the `https` pool gets no member from it.
    let https = listeners.iter().find(|l| l["protocolPort"] == 443).unwrap();
    assert!(
        https["pool"]["members"].as_array().unwrap().is_empty(),
        "{}",
        b.body
    );
}

/// A second `serve` replica on the same cloud as `app` (its own process state).
async fn second_replica(app: &App) -> SocketAddr {
    let mut settings = Settings::default();
    let env: Env = match &app.sim {
        Some(sim) => {
            let seed = &sim.state.seed;
            settings.neutron_defaults.pod_subnet = Some(seed.pod_subnet.clone());
            settings.neutron_defaults.service_subnet = Some(seed.service_subnet.clone());
            settings.neutron_defaults.external_svc_subnet = Some(seed.public_subnet.clone());
            password_env(sim.auth_url())
        }
        None => {
            settings.neutron_defaults.pod_subnet = Some(env_var("POD_SUBNET_ID"));
            settings.neutron_defaults.service_subnet = Some(env_var("SERVICE_SUBNET_ID"));
            settings.neutron_defaults.external_svc_subnet = Some(env_var("PUBLIC_SUBNET_ID"));
            Box::new(|k: &str| std::env::var(k).ok())
        }
    };
    serve_on(settings, env).await
}

#[tokio::test]
async fn two_replicas_racing_on_a_new_service_leave_one_load_balancer_and_one_floating_ip() {
    let app = spawn_app().await;
    let other = second_replica(&app).await;
    let rounds = if app.sim.is_some() { 5 } else { 2 };
    for round in 0..rounds {
        let name = format!("race-{round}");
        // No clusterIP: nothing in the cloud refuses the second copy.
        let mut svc = service("LoadBalancer", two_ports(), json!({}));
        svc["metadata"]["name"] = json!(name);
        svc["spec"].as_object_mut().unwrap().remove("clusterIP");
        let body = json!({"service": svc, "endpoints": endpoints(&["10.1.0.5"])}).to_string();
        let ((sa, a), (sb, b)) = tokio::join!(
            apply_at(&app.http, app.addr, &body),
            apply_at(&app.http, other, &body)
        );
        assert_eq!(sa, StatusCode::OK, "{a}");
        assert_eq!(sb, StatusCode::OK, "{b}");
        assert!(!ingress_of(&a).is_empty(), "{a}");
        assert_eq!(
            ingress_of(&a),
            ingress_of(&b),
            "both answers report the survivor's ingress"
        );
        assert_eq!(a["loadBalancer"]["id"], b["loadBalancer"]["id"]);
        let lb_name = format!("shop/{name}");
        let lbs: Vec<Value> = app
            .load_balancers()
            .await
            .into_iter()
            .filter(|lb| lb["name"] == lb_name.as_str())
            .collect();
        assert_eq!(lbs.len(), 1, "round {round}: {lbs:?}");
        assert_eq!(lbs[0]["id"], a["loadBalancer"]["id"]);
        let vip_port = lbs[0]["vip_port_id"].as_str().unwrap().to_string();
        let fips: Vec<Value> = app
            .floating_ips()
            .await
            .into_iter()
            .filter(|f| {
                let tag = format!("svc-lbaas-service:shop_{name}");
                f["description"]
                    .as_str()
                    .is_some_and(|d| d.split(',').any(|t| t == tag))
            })
            .collect();
        assert_eq!(fips.len(), 1, "round {round}: {fips:?}");
        assert_eq!(fips[0]["port_id"], vip_port.as_str());
        assert_eq!(fips[0]["floating_ip_address"], ingress_of(&a).as_str());
    }
}

#[tokio::test]
async fn sync_applies_the_list_and_collects_what_the_list_no_longer_has() {
    let app = spawn_app_with_settings(|s| s.cluster.orphan_grace_s = 0).await;
    let svc = |name: &str, ip: &str| {
        let mut s = service("LoadBalancer", two_ports(), json!({"clusterIP": ip}));
        s["metadata"]["name"] = json!(name);
        s.as_object_mut().unwrap().remove("kind");
        s.as_object_mut().unwrap().remove("apiVersion");
        s
    };
    let list =
        |items: Vec<Value>| json!({"kind": "ServiceList", "apiVersion": "v1", "items": items});
    let sync = |body: Value, query: &str| {
        let q = query.to_string();
        let app = &app;
        async move {
            app.send(
                reqwest::Method::POST,
                &format!("/v1/sync{q}"),
                Some(body.to_string()),
            )
            .await
        }
    };
    let a = sync(list(vec![svc("a", "10.2.0.51"), svc("b", "10.2.0.52")]), "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["services"].as_array().unwrap().len(),
        2,
        "{}",
        a.body
    );
    assert_eq!(
        a.body["services"][0]["result"]["action"], "created",
        "{}",
        a.body
    );
    assert!(a.body["orphans"].as_array().unwrap().is_empty());
    assert_eq!(app.load_balancers().await.len(), 2);
    assert_eq!(app.floating_ips().await.len(), 2);
    // A load balancer of another tool, of the same name pattern, is never touched.
    // `b` leaves the list: a dry run says what would go, and writes nothing.
    let dry = sync(list(vec![svc("a", "10.2.0.51")]), "?dryRun=true").await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["dryRun"], true);
    let orphans = dry.body["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{}", dry.body);
    assert_eq!(orphans[0]["service"], "shop/b");
    assert_eq!(orphans[0]["action"], "would delete");
    let ops = op_resources(&orphans[0]);
    assert_eq!(
        ops,
        ["delete floatingip", "delete loadbalancer"],
        "{}",
        dry.body
    );
    assert_eq!(
        dry.body["services"][0]["result"]["action"], "unchanged",
        "{}",
        dry.body
    );
    assert_eq!(app.load_balancers().await.len(), 2);
    // The real sync deletes it and its floating IP.
    let real = sync(list(vec![svc("a", "10.2.0.51")]), "").await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.body);
    assert_eq!(
        real.body["orphans"][0]["action"], "deleted",
        "{}",
        real.body
    );
    for _ in 0..100 {
        if app.load_balancers().await.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lbs = app.load_balancers().await;
    assert_eq!(lbs.len(), 1);
    assert_eq!(lbs[0]["name"], "shop/a");
    assert_eq!(app.floating_ips().await.len(), 1);
    // `orphansOnly=true` (a watcher that applies each Service itself): `b`
    // listed but not created, `a` kept, nothing applied.
    let only = sync(
        list(vec![svc("a", "10.2.0.51"), svc("b", "10.2.0.52")]),
        "?orphansOnly=true",
    )
    .await;
    assert_eq!(only.status, StatusCode::OK, "{}", only.body);
    assert_eq!(only.body["services"], json!([]), "{}", only.body);
    assert_eq!(only.body["orphans"], json!([]), "{}", only.body);
    assert_eq!(app.load_balancers().await.len(), 1);
    // ... and `a` listed as a Service that no longer gets a load balancer
    // (headless now) is collected too: no apply would remove it.
    let mut headless = svc("a", "None");
    headless["spec"]["clusterIPs"] = json!(["None"]);
    let only = sync(
        list(vec![headless, svc("b", "10.2.0.52")]),
        "?orphansOnly=true",
    )
    .await;
    assert_eq!(only.body["services"], json!([]), "{}", only.body);
    assert_eq!(
        only.body["orphans"][0]["service"], "shop/a",
        "{}",
        only.body
    );
    assert_eq!(
        only.body["orphans"][0]["action"], "deleted",
        "{}",
        only.body
    );
    for _ in 0..100 {
        if app.load_balancers().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(app.load_balancers().await.is_empty());
    // Adding them back creates them again.
    let back = sync(list(vec![svc("a", "10.2.0.51"), svc("b", "10.2.0.52")]), "").await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(
        back.body["services"][1]["result"]["action"], "created",
        "{}",
        back.body
    );
    assert_eq!(
        back.body["services"][0]["result"]["action"], "created",
        "{}",
        back.body
    );
    assert_eq!(app.load_balancers().await.len(), 2);
    // Not a List: refused.
    let bad = sync(svc("a", "10.2.0.51"), "").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["field"], "kind");
}

#[tokio::test]
async fn a_scoped_token_syncs_only_its_namespaces() {
    let tokens = svc_lbaas::api::auth::Tokens::parse(
        "[[tokens]]\ntoken = \"shop-token-0123456789\"\nnamespaces = [\"shop\"]\n[[tokens]]\ntoken = \"admin-token-0123456789\"\nnamespaces = [\"*\"]\n",
    )
    .unwrap();
    let app = spawn_app_with(Some(tokens)).await;
    let mut billing = service(
        "LoadBalancer",
        two_ports(),
        json!({"clusterIP": "10.2.0.61"}),
    );
    billing["metadata"]["namespace"] = json!("billing");
    let created = app
        .http
        .post(format!("http://{}/v1/apply", app.addr))
        .bearer_auth("admin-token-0123456789")
        .json(&json!({"service": billing}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let empty = json!({"kind": "List", "apiVersion": "v1", "items": []});
    let post = |token: &'static str, query: &'static str| {
        let app = &app;
        let empty = empty.clone();
        async move {
            app.http
                .post(format!("http://{}/v1/sync{query}", app.addr))
                .bearer_auth(token)
                .json(&empty)
                .send()
                .await
                .unwrap()
        }
    };
    // The shop token may not name billing, and its own sync leaves billing alone.
    assert_eq!(
        post("shop-token-0123456789", "?namespaces=billing")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let own = post("shop-token-0123456789", "").await;
    assert_eq!(own.status(), StatusCode::OK);
    let body: Value = own.json().await.unwrap();
    assert!(body["orphans"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(app.load_balancers().await.len(), 1);
}

#[tokio::test]
async fn grpc_sync_answers_what_rest_answers() {
    use svc_lbaas::api::grpc::pb::translator_client::TranslatorClient;
    let (url, _sim) = spawn_grpc(None).await;
    let mut client = TranslatorClient::connect(url).await.unwrap();
    let list = json!({"kind": "List", "apiVersion": "v1", "items": [service("ClusterIP", two_ports(), json!({}))]});
    let req = svc_lbaas::api::grpc::pb::SyncRequest {
        list: Some(svc_lbaas::api::grpc::json_to_struct(&list)),
        dry_run: true,
        ..Default::default()
    };
    let answer = client.sync(req).await.unwrap().into_inner();
    let v = svc_lbaas::api::grpc::struct_to_json(&answer.result.unwrap());
    assert_eq!(v["dryRun"], true, "{v}");
    assert_eq!(v["services"][0]["result"]["action"], "create", "{v}");
    let bad = svc_lbaas::api::grpc::pb::SyncRequest {
        list: Some(svc_lbaas::api::grpc::json_to_struct(
            &json!({"kind": "Service"}),
        )),
        ..Default::default()
    };
    assert_eq!(
        client.sync(bad).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}

#[tokio::test]
async fn a_list_of_events_keeps_each_services_order_and_answers_in_input_order() {
    let app = spawn_app().await;
    let svc = |name: &str, ip: &str| {
        let mut s = service("ClusterIP", two_ports(), json!({"clusterIP": ip}));
        s["metadata"]["name"] = json!(name);
        s
    };
    let list = json!({"kind": "List", "apiVersion": "v1", "items": [
        {"type": "ADDED", "object": svc("a", "10.2.0.71")},
        {"type": "ADDED", "object": svc("b", "10.2.0.72")},
        {"type": "DELETED", "object": svc("a", "10.2.0.71")},
        {"type": "ADDED", "object": svc("c", "10.2.0.73")},
        {"type": "MODIFIED", "object": svc("b", "10.2.0.72")}]});
    let a = event(&app, list).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let got: Vec<(String, String)> = a.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["result"]["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("a", "created"),
        ("b", "created"),
        ("a", "deleted"),
        ("c", "created"),
        ("b", "unchanged"),
    ];
    assert_eq!(
        got,
        want.map(|(n, w)| (n.to_string(), w.to_string())),
        "{}",
        a.body
    );
    let mut names: Vec<String> = app
        .load_balancers()
        .await
        .iter()
        .filter(|lb| lb["provisioning_status"] != "PENDING_DELETE")
        .map(|lb| lb["name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["shop/b", "shop/c"]);
}

#[tokio::test]
async fn two_replicas_racing_to_give_a_load_balancer_its_floating_ip_leave_one() {
    let app = spawn_app().await;
    let other = second_replica(&app).await;
    // The load balancer exists without a floating IP (a ClusterIP Service)...
    let cluster_ip = service("ClusterIP", two_ports(), json!({}));
    assert_eq!(
        app.apply(json!({"service": cluster_ip})).await.status,
        StatusCode::OK
    );
    // ... then both replicas see it become type LoadBalancer at once.
    let body = json!({"service": service("LoadBalancer", two_ports(), json!({}))}).to_string();
    let ((sa, a), (sb, b)) = tokio::join!(
        apply_at(&app.http, app.addr, &body),
        apply_at(&app.http, other, &body)
    );
    assert_eq!(sa, StatusCode::OK, "{a}");
    assert_eq!(sb, StatusCode::OK, "{b}");
    assert_eq!(ingress_of(&a), ingress_of(&b));
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1, "{fips:?}");
    assert_eq!(fips[0]["floating_ip_address"], ingress_of(&a).as_str());
}

/// POSTs an apply body to the replica at `addr`: its status and answer.
async fn apply_at(http: &reqwest::Client, addr: SocketAddr, body: &str) -> (StatusCode, Value) {
    let res = http
        .post(format!("http://{addr}/v1/apply"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

/// The ingress IP of an answer's status.
fn ingress_of(v: &Value) -> String {
    v["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

const OCCM_NAME: &str = "kube_service_kubernetes_shop_web";

impl App {
    /// A load balancer made the way another tool makes it, in one fully
    /// populated create, then its floating IP on the VIP port (`fip`
    /// description): answers the load balancer's id, VIP and the floating
    /// IP's id and address, once ACTIVE.
    async fn made_by_another_tool(
        &self,
        load_balancer: Value,
        fip_description: &str,
    ) -> (String, String, String, String) {
        let created = self
            .cloud(
                reqwest::Method::POST,
                "/load-balancer/v2/lbaas/loadbalancers",
                Some(json!({ "loadbalancer": load_balancer })),
            )
            .await;
        let lb = &created["loadbalancer"];
        let id = lb["id"].as_str().expect("a load balancer id").to_string();
        let vip = lb["vip_address"].as_str().expect("a VIP").to_string();
        let port = lb["vip_port_id"].as_str().expect("a VIP port").to_string();
        self.until_active(&id).await;
        let fip = self
            .cloud(
                reqwest::Method::POST,
                "/network/v2.0/floatingips",
                Some(json!({"floatingip": {
                    "floating_network_id": self.cloud_access.public_network,
                    "port_id": port,
                    "description": fip_description}})),
            )
            .await;
        let fip = &fip["floatingip"];
        (
            id,
            vip,
            fip["id"].as_str().expect("a floating IP id").to_string(),
            fip["floating_ip_address"]
                .as_str()
                .expect("an address")
                .to_string(),
        )
    }

    async fn load_balancer(&self, id: &str) -> Value {
        self.cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/loadbalancers/{id}"),
            None,
        )
        .await["loadbalancer"]
            .clone()
    }

    async fn members_of_the_pool(&self) -> Vec<String> {
        let pools = self.pools().await;
        let pool = pools.as_array().expect("pools")[0]["id"]
            .as_str()
            .expect("a pool id")
            .to_string();
        let members = self
            .cloud(
                reqwest::Method::GET,
                &format!("/load-balancer/v2/lbaas/pools/{pool}/members"),
                None,
            )
            .await;
        let mut seen: Vec<String> = members["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["address"].as_str().unwrap_or(""),
                    m["protocol_port"]
                )
            })
            .collect();
        seen.sort();
        seen
    }
}

fn adopting(mut service: Value) -> Value {
    service["metadata"]["annotations"] = json!({"svc-lbaas.io/adopt": "true"});
    service
}

/// Adoption keeps what the old tool's users depend on: the load balancer,
/// its VIP and the floating IP; then the load balancer is ours like any
/// other, and deleting the Service leaves nothing behind.
async fn adopted_in_place(app: &App, (lb_id, vip, fip_id, fip): (String, String, String, String)) {
    let request = json!({
        "service": adopting(service("LoadBalancer", json!([{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]), json!({}))),
        "endpoints": endpoints(&["10.1.0.5", "10.1.0.6"])});
    let plan = app
        .send(reqwest::Method::POST, "/v1/plan", Some(request.to_string()))
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let steps = op_resources(&plan.body);
    assert_eq!(steps[0], "adopt loadbalancer", "{}", plan.body);
    assert!(
        steps
            .iter()
            .all(|s| s != "create loadbalancer" && s != "create floatingip"),
        "{}",
        plan.body
    );
    let a = app.apply(request.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["loadBalancer"]["id"], lb_id.as_str(), "{}", a.body);
    assert_eq!(ingress(&a), fip);
    let lb = app.load_balancer(&lb_id).await;
    assert_eq!(lb["vip_address"], vip.as_str(), "{lb}");
    assert_eq!(lb["name"], "shop/web", "{lb}");
    let tags: Vec<&str> = lb["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tags.contains(&"svc-lbaas") && tags.iter().any(|t| t.starts_with("svc-lbaas-adopted:")),
        "{lb}"
    );
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1, "{fips:?}");
    assert_eq!(fips[0]["id"], fip_id.as_str());
    assert_eq!(
        app.members_of_the_pool().await,
        ["10.1.0.5:8080", "10.1.0.6:8080"]
    );
    let listeners = app.listeners().await;
    assert_eq!(listeners.as_array().map(Vec::len), Some(1), "{listeners}");
    assert_eq!(listeners[0]["name"], "shop/web:TCP:80");
    let again = app.apply(request).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    let gone = app
        .send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    app.until_all_gone().await;
}

#[tokio::test]
async fn an_occm_load_balancer_is_adopted_with_its_vip_and_floating_ip() {
    let app = spawn_app_with_settings(|s| s.adoption.from = vec![AdoptFrom::Occm]).await;
    // As OCCM leaves it: its names and tag, the nodes' InternalIP:nodePort
    // as members, a TCP monitor, a VIP Neutron chose.
    let made = app
        .made_by_another_tool(
            json!({
                "name": OCCM_NAME,
                "description": "Kubernetes external service shop/web from cluster kubernetes",
                "vip_network_id": app.cloud_access.service_network,
                "tags": [OCCM_NAME],
                "listeners": [{
                    "name": format!("listener_0_{OCCM_NAME}"),
                    "protocol": "TCP", "protocol_port": 80, "tags": [OCCM_NAME],
                    "default_pool": {
                        "name": format!("pool_0_{OCCM_NAME}"),
                        "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "tags": [OCCM_NAME],
                        "members": [
                            {"name": "node-1", "address": "10.1.0.20", "protocol_port": 30080},
                            {"name": "node-2", "address": "10.1.0.21", "protocol_port": 30080}],
                        "healthmonitor": {"name": format!("monitor_0_{OCCM_NAME}"), "type": "TCP",
                            "delay": 5, "timeout": 3, "max_retries": 1}}}]}),
            "Floating IP for Kubernetes external service shop/web from cluster kubernetes",
        )
        .await;
    // Without the annotation OCCM's load balancer is not even looked at.
    let plan = app
        .send(
            reqwest::Method::POST,
            "/v1/plan",
            Some(json!({"service": service("LoadBalancer", one_port(), json!({}))}).to_string()),
        )
        .await;
    assert_eq!(
        op_resources(&plan.body)[0],
        "create loadbalancer",
        "{}",
        plan.body
    );
    adopted_in_place(&app, made).await;
}

#[tokio::test]
async fn a_kuryr_load_balancer_is_adopted_with_its_vip_and_floating_ip() {
    let app = spawn_app_with_settings(|s| s.adoption.from = vec![AdoptFrom::Kuryr]).await;
    // As kuryr-kubernetes leaves it: `ns/name` names, the clusterIP as VIP,
    // pods as members named after them, no monitor.
    let made = app
        .made_by_another_tool(
            json!({
                "name": "shop/web",
                "vip_network_id": app.cloud_access.service_network,
                "vip_address": "10.2.0.42",
                "tags": ["kuryr-cluster"],
                "listeners": [{
                    "name": "shop/web:TCP:80",
                    "protocol": "TCP", "protocol_port": 80, "tags": ["kuryr-cluster"],
                    "default_pool": {
                        "name": "shop/web:TCP:80",
                        "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "tags": ["kuryr-cluster"],
                        "members": [
                            {"name": "shop/web-1:8080", "address": "10.1.0.5", "protocol_port": 8080}]}}]}),
            "kuryr_lb",
        )
        .await;
    // Not annotated, it is someone else's load balancer: a 409.
    let refused = app
        .apply(json!({"service": service("LoadBalancer", one_port(), json!({}))}))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    adopted_in_place(&app, made).await;
}

#[tokio::test]
async fn the_status_names_the_hostname_annotation_as_occm_does() {
    let app = spawn_app().await;
    let mut svc = service("LoadBalancer", one_port(), json!({}));
    svc["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/hostname": "web.example.com"});
    let a = app
        .apply(json!({"service": svc, "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["status"],
        json!({"loadBalancer": {"ingress": [{"hostname": "web.example.com"}]}}),
        "{}",
        a.body
    );
    // The addresses are still in the answer.
    assert!(a.body["floatingIp"]["address"].is_string(), "{}", a.body);
}

#[tokio::test]
async fn a_provider_the_cloud_does_not_offer_is_refused_before_any_write() {
    let app = spawn_app_with_settings(|s| s.octavia_defaults.provider = Some("ovn".into())).await;
    let a = app
        .apply(json!({"service": service("LoadBalancer", one_port(), json!({})), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    let detail = a.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("[octavia_defaults] provider") && detail.contains("amphora"),
        "{}",
        a.body
    );
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn a_network_id_annotation_puts_the_vip_on_that_network() {
    let app = spawn_app().await;
    let mut svc = service("LoadBalancer", one_port(), json!({}));
    svc["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/network-id": app.cloud_access.service_network});
    let request = json!({"service": svc, "endpoints": endpoints(&["10.1.0.5"])});
    let a = app.apply(request.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id = a.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let lb = app.load_balancer(&id).await;
    assert_eq!(
        lb["vip_network_id"],
        app.cloud_access.service_network.as_str(),
        "{lb}"
    );
    // Neutron picked the address: not the clusterIP, and kept on re-apply.
    let again = app.apply(request).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    // A network that does not exist is a 400 naming the annotation, before any write.
    let mut other = service("LoadBalancer", one_port(), json!({}));
    other["metadata"]["name"] = json!("api");
    other["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/network-id": "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81"});
    let refused = app.apply(json!({"service": other})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body["field"]
            .as_str()
            .unwrap_or("")
            .contains("network-id"),
        "{}",
        refused.body
    );
    assert_eq!(app.load_balancers().await.len(), 1);
}

/// `shop/<name>` with one port, on the load balancer `shared` when given.
fn sharing(name: &str, port: u16, shared: Option<&str>) -> Value {
    let mut svc = service(
        "LoadBalancer",
        json!([{"name": "http", "port": port, "targetPort": 8080}]),
        json!({}),
    );
    svc["metadata"]["name"] = json!(name);
    svc["metadata"]["uid"] = json!(format!("u-{name}"));
    // A clusterIP of its own (the VIP of a load balancer it creates).
    svc["spec"]["clusterIP"] = json!(format!("10.2.{}.{}", name.len(), port % 256));
    if let Some(id) = shared {
        svc["metadata"]["annotations"] = json!({"loadbalancer.openstack.org/load-balancer-id": id});
    }
    json!({ "service": svc })
}

impl App {
    /// Every load balancer gone (waited for, 2 minutes at most).
    async fn until_no_load_balancers(&self) {
        for _ in 0..600 {
            if self.load_balancers().await.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(
            self.load_balancers().await.is_empty(),
            "a load balancer stayed"
        );
    }

    /// Every load balancer gone and no floating IP left behind.
    async fn until_all_gone(&self) {
        self.until_no_load_balancers().await;
        assert!(self.floating_ips().await.is_empty(), "a floating IP leaked");
    }

    async fn delete_service(&self, name: &str) {
        let gone = self
            .send(
                reqwest::Method::DELETE,
                &format!("/v1/services/shop/{name}"),
                None,
            )
            .await;
        assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    }

    /// The listeners' `name:port` on load balancer `id`, sorted.
    async fn listener_ports(&self, id: &str) -> Vec<String> {
        let mut ports: Vec<String> = self
            .listeners()
            .await
            .as_array()
            .expect("listeners")
            .iter()
            .filter(|l| l["loadbalancers"][0]["id"] == id)
            .map(|l| {
                format!(
                    "{}:{}",
                    l["name"].as_str().unwrap_or(""),
                    l["protocol_port"]
                )
            })
            .collect();
        ports.sort();
        ports
    }

    async fn tags_of(&self, id: &str) -> Vec<String> {
        let lb = self.load_balancer(id).await;
        lb["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect()
    }
}

/// OCCM's `test_shared_lb` (tests/e2e/cloudprovider/test-lb-service.sh), step
/// by step: a second Service joins the first one's load balancer by id, moves
/// its port, leaves; a third joins; a fourth on a taken port is refused; the
/// creator leaves first and the load balancer stays for the third, with its
/// address; the last one out deletes it and its floating IP.
#[tokio::test]
async fn load_balancers_are_shared_by_id_as_occms_end_to_end_test_shares_them() {
    let app = spawn_app().await;
    let web = app.apply(sharing("web", 80, None)).await;
    assert_eq!(web.status, StatusCode::OK, "{}", web.body);
    let id = web.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let address = ingress(&web);

    let api = app.apply(sharing("api", 8080, Some(&id))).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    assert_eq!(api.body["loadBalancer"]["id"], id.as_str(), "{}", api.body);
    assert_eq!(ingress(&api), address, "the shared load balancer's address");
    assert_eq!(api.body["floatingIp"]["method"], "shared", "{}", api.body);
    assert_eq!(app.load_balancers().await.len(), 1);
    assert_eq!(app.floating_ips().await.len(), 1);
    assert!(
        app.tags_of(&id)
            .await
            .contains(&"svc-lbaas-sharer:shop_api".to_string())
    );
    let again = app.apply(sharing("api", 8080, Some(&id))).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);

    let moved = app.apply(sharing("api", 8081, Some(&id))).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(
        app.listener_ports(&id).await,
        ["shop/api:TCP:8081:8081", "shop/web:TCP:80:80"]
    );
    app.delete_service("api").await;
    app.until_active(&id).await;
    assert_eq!(app.listener_ports(&id).await, ["shop/web:TCP:80:80"]);
    assert!(
        !app.tags_of(&id)
            .await
            .iter()
            .any(|t| t.ends_with("shop_api"))
    );

    let third = app.apply(sharing("third", 8080, Some(&id))).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
    let taken = app.apply(sharing("fourth", 8080, Some(&id))).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(
        taken.body["type"], "urn:svc-lbaas:problem:shared-load-balancer",
        "{}",
        taken.body
    );
    let detail = taken.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("port 8080/TCP") && detail.contains("shop/third:TCP:8080"),
        "{detail}"
    );
    assert!(
        !app.tags_of(&id)
            .await
            .iter()
            .any(|t| t.ends_with("shop_fourth"))
    );
    assert_eq!(
        app.listener_ports(&id).await,
        ["shop/third:TCP:8080:8080", "shop/web:TCP:80:80"]
    );

    // The creator leaves first: the load balancer stays, the third's now.
    app.delete_service("web").await;
    app.until_active(&id).await;
    assert_eq!(app.listener_ports(&id).await, ["shop/third:TCP:8080:8080"]);
    assert_eq!(app.load_balancer(&id).await["name"], "shop/third");
    let kept = app.apply(sharing("third", 8080, Some(&id))).await;
    assert_eq!(kept.body["action"], "unchanged", "{}", kept.body);
    assert_eq!(ingress(&kept), address, "the address survived its creator");
    assert_eq!(kept.body["floatingIp"]["method"], "pool", "{}", kept.body);
    // A Service of the creator's name is new: a load balancer of its own.
    let web_again = app.apply(sharing("web", 81, None)).await;
    assert_eq!(web_again.status, StatusCode::OK, "{}", web_again.body);
    assert_ne!(web_again.body["loadBalancer"]["id"], id.as_str());
    assert_ne!(ingress(&web_again), address);
    app.delete_service("web").await;

    // The last one out deletes it, and its floating IP.
    app.delete_service("third").await;
    app.until_all_gone().await;
}

/// OCCM's `test_shared_user_lb`: a load balancer a user made (with a listener
/// and a floating IP of their own) takes a Service's listener; the Service's
/// deletion takes only its listener and its tag, never the load balancer.
#[tokio::test]
async fn a_load_balancer_made_by_hand_is_shared_and_outlives_its_services() {
    let app = spawn_app().await;
    let created = app
        .cloud(
            reqwest::Method::POST,
            "/load-balancer/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"name": "made-by-hand",
                "vip_network_id": app.cloud_access.service_network, "tags": ["team-a"]}})),
        )
        .await;
    let id = created["loadbalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let port = created["loadbalancer"]["vip_port_id"]
        .as_str()
        .expect("a VIP port")
        .to_string();
    app.until_active(&id).await;
    app.cloud(
        reqwest::Method::POST,
        "/load-balancer/v2/lbaas/listeners",
        Some(json!({"listener": {"loadbalancer_id": id, "protocol": "HTTP", "protocol_port": 80}})),
    )
    .await;
    app.until_active(&id).await;
    let fip = app
        .cloud(
            reqwest::Method::POST,
            "/network/v2.0/floatingips",
            Some(json!({"floatingip": {
                "floating_network_id": app.cloud_access.public_network, "port_id": port}})),
        )
        .await;
    let address = fip["floatingip"]["floating_ip_address"]
        .as_str()
        .expect("an address")
        .to_string();

    // Its own HTTP:80 is the user's: the Service on 80 is refused.
    let taken = app.apply(sharing("web", 80, Some(&id))).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    let a = app.apply(sharing("web", 8080, Some(&id))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["loadBalancer"]["id"], id.as_str());
    assert_eq!(ingress(&a), address);
    assert_eq!(
        app.floating_ips().await.len(),
        1,
        "no floating IP of its own"
    );
    assert!(
        app.tags_of(&id)
            .await
            .contains(&"svc-lbaas-sharer:shop_web".to_string())
    );

    app.delete_service("web").await;
    app.until_active(&id).await;
    assert_eq!(app.tags_of(&id).await, ["team-a"]);
    let listeners = app.listener_ports(&id).await;
    assert_eq!(
        listeners.len(),
        1,
        "the user's listener only: {listeners:?}"
    );
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1);
    assert_eq!(
        fips[0]["port_id"],
        port.as_str(),
        "the user's floating IP stays bound"
    );
    app.empty_the_cloud().await;
}

/// `/v1/sync` collects what Services gone from the list left on a shared
/// load balancer: the creator's part (handing it over to its first
/// sharer), a sharer's part, and the last one's load balancer.
#[tokio::test]
async fn a_sync_collects_gone_services_parts_of_a_shared_load_balancer() {
    let app = spawn_app_with_settings(|s| s.cluster.orphan_grace_s = 0).await;
    let web = app.apply(sharing("web", 80, None)).await;
    let id = web.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let item = |name: &str, port: u16| {
        let mut s = sharing(name, port, Some(&id))["service"].clone();
        s.as_object_mut().unwrap().remove("kind");
        s.as_object_mut().unwrap().remove("apiVersion");
        s
    };
    for (name, port) in [("api", 8080), ("fourth", 9090)] {
        let a = app.apply(json!({"service": item(name, port)})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let sync = |items: Vec<Value>| {
        let body = json!({"kind": "ServiceList", "apiVersion": "v1", "items": items});
        let app = &app;
        async move {
            let a = app
                .send(reqwest::Method::POST, "/v1/sync", Some(body.to_string()))
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            a.body["orphans"].clone()
        }
    };
    let orphans = sync(vec![item("api", 8080), item("fourth", 9090)]).await;
    assert_eq!(orphans[0]["service"], "shop/web", "{orphans}");
    assert_eq!(
        op_resources(&orphans[0]),
        [
            "delete listener",
            "delete pool",
            "hand over floatingip",
            "hand over loadbalancer"
        ],
        "{orphans}"
    );
    app.until_active(&id).await;
    assert_eq!(app.load_balancer(&id).await["name"], "shop/api");
    let orphans = sync(vec![item("api", 8080)]).await;
    assert_eq!(orphans[0]["service"], "shop/fourth", "{orphans}");
    assert_eq!(
        op_resources(&orphans[0]),
        ["delete listener", "delete pool", "leave loadbalancer"],
        "{orphans}"
    );
    app.until_active(&id).await;
    assert_eq!(app.listener_ports(&id).await, ["shop/api:TCP:8080:8080"]);
    let orphans = sync(Vec::new()).await;
    assert_eq!(
        op_resources(&orphans[0]),
        ["delete floatingip", "delete loadbalancer"],
        "{orphans}"
    );
    app.until_all_gone().await;
}

/// OCCM's `floating-subnet` (a name pattern) and `floating-subnet-tags`
/// choose among the floating network's subnets; a subnet with no address
/// left gives way to the next match; no match is a 400 before any write.
#[tokio::test]
async fn floating_subnets_are_chosen_by_name_pattern_and_tags_among_the_floating_networks() {
    let app = spawn_app().await;
    let public = app.cloud_access.public_network.clone();
    let subnet = |name: &str, cidr: &str, pool: Value| {
        let (app, public) = (&app, &public);
        let mut body = json!({"name": name, "network_id": public, "cidr": cidr,
            "ip_version": 4, "gateway_ip": null, "enable_dhcp": false});
        if !pool.is_null() {
            body["allocation_pools"] = pool;
        }
        async move {
            let made = app
                .cloud(
                    reqwest::Method::POST,
                    "/network/v2.0/subnets",
                    Some(json!({"subnet": body})),
                )
                .await;
            made["subnet"]["id"].as_str().expect("a subnet").to_string()
        }
    };
    // pub-a holds one address, taken by hand; pub-b is tagged.
    let a = subnet(
        "pub-a",
        "198.51.100.0/30",
        json!([{"start": "198.51.100.1", "end": "198.51.100.1"}]),
    )
    .await;
    let b = subnet("pub-b", "198.51.100.16/28", Value::Null).await;
    app.cloud(
        reqwest::Method::PUT,
        &format!("/network/v2.0/subnets/{b}/tags/svc-lbaas-test"),
        None,
    )
    .await;
    let taken = app
        .cloud(
            reqwest::Method::POST,
            "/network/v2.0/floatingips",
            Some(json!({"floatingip": {"floating_network_id": public, "subnet_id": a}})),
        )
        .await;
    assert_eq!(
        taken["floatingip"]["floating_ip_address"], "198.51.100.1",
        "{taken}"
    );
    let taken_id = taken["floatingip"]["id"]
        .as_str()
        .expect("an id")
        .to_string();

    let with = |name: &str, port: u16, annotations: Value| {
        let mut request = sharing(name, port, None);
        let mut all = json!({"loadbalancer.openstack.org/floating-network-id": public});
        if let (Some(m), Value::Object(extra)) = (all.as_object_mut(), annotations) {
            m.extend(extra);
        }
        request["service"]["metadata"]["annotations"] = all;
        request
    };
    let by_name = with(
        "web",
        80,
        json!({"loadbalancer.openstack.org/floating-subnet": "pub-*"}),
    );
    let plan = app
        .send(reqwest::Method::POST, "/v1/plan", Some(by_name.to_string()))
        .await;
    assert!(
        plan.body
            .to_string()
            .contains("matching name \\\"pub-*\\\""),
        "{}",
        plan.body
    );
    let web = app.apply(by_name).await;
    assert_eq!(web.status, StatusCode::OK, "{}", web.body);
    assert!(ingress(&web).starts_with("198.51.100."), "{}", web.body);
    assert_ne!(ingress(&web), "198.51.100.1", "pub-a is full: pub-b's");
    let tagged = app
        .apply(with(
            "api",
            81,
            json!({"loadbalancer.openstack.org/floating-subnet-tags": "svc-lbaas-test"}),
        ))
        .await;
    assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.body);
    assert!(
        ingress(&tagged).starts_with("198.51.100."),
        "{}",
        tagged.body
    );
    let before = app.load_balancers().await.len();
    let none = app
        .apply(with(
            "third",
            82,
            json!({"loadbalancer.openstack.org/floating-subnet": "~nothing-[0-9]+"}),
        ))
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
    assert_eq!(
        none.body["field"],
        "service.metadata.annotations[\"loadbalancer.openstack.org/floating-subnet\"]",
        "{}",
        none.body
    );
    assert_eq!(
        app.load_balancers().await.len(),
        before,
        "nothing was created"
    );

    for name in ["web", "api"] {
        app.delete_service(name).await;
    }
    app.cloud(
        reqwest::Method::DELETE,
        &format!("/network/v2.0/floatingips/{taken_id}"),
        None,
    )
    .await;
    app.empty_the_cloud().await;
    for id in [a, b] {
        app.cloud(
            reqwest::Method::DELETE,
            &format!("/network/v2.0/subnets/{id}"),
            None,
        )
        .await;
    }
}

/// OCCM's `port-id`: a Neutron port the user made is the VIP (its address);
/// a floating IP the user bound to it is the Service's and stays theirs; the
/// port outlives the load balancer.
#[tokio::test]
async fn a_users_port_is_the_vip_and_outlives_the_load_balancer() {
    let app = spawn_app().await;
    let port = app
        .cloud(
            reqwest::Method::POST,
            "/network/v2.0/ports",
            Some(
                json!({"port": {"network_id": app.cloud_access.service_network, "name": "my-vip"}}),
            ),
        )
        .await;
    let port_id = port["port"]["id"].as_str().expect("a port").to_string();
    let address = port["port"]["fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("an address")
        .to_string();
    let with_port = |name: &str| {
        let mut request = sharing(name, 80, None);
        request["service"]["metadata"]["annotations"] =
            json!({"loadbalancer.openstack.org/port-id": port_id});
        request
    };
    // No floating IP on it: one of ours, on the user's port.
    let a = app.apply(with_port("web")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["loadBalancer"]["vipAddress"],
        address.as_str(),
        "{}",
        a.body
    );
    let lb = app
        .load_balancer(a.body["loadBalancer"]["id"].as_str().unwrap_or(""))
        .await;
    assert_eq!(lb["vip_port_id"], port_id.as_str(), "{lb}");
    assert_eq!(a.body["floatingIp"]["method"], "pool", "{}", a.body);
    let again = app.apply(with_port("web")).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    app.delete_service("web").await;
    app.until_all_gone().await;
    let kept = app
        .cloud(
            reqwest::Method::GET,
            &format!("/network/v2.0/ports/{port_id}"),
            None,
        )
        .await;
    assert_eq!(
        kept["port"]["id"],
        port_id.as_str(),
        "the user's port stays: {kept}"
    );

    // The user's floating IP on it: the Service's address, never touched.
    let fip = app
        .cloud(
            reqwest::Method::POST,
            "/network/v2.0/floatingips",
            Some(json!({"floatingip": {"floating_network_id": app.cloud_access.public_network, "port_id": port_id}})),
        )
        .await;
    let fip_address = fip["floatingip"]["floating_ip_address"]
        .as_str()
        .expect("an address")
        .to_string();
    let b = app.apply(with_port("api")).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(ingress(&b), fip_address, "{}", b.body);
    assert_eq!(app.floating_ips().await.len(), 1, "nothing allocated");
    app.delete_service("api").await;
    app.until_no_load_balancers().await;
    let fips = app.floating_ips().await;
    assert_eq!(fips.len(), 1, "{fips:?}");
    assert_eq!(
        fips[0]["port_id"],
        port_id.as_str(),
        "still bound to the user's port"
    );
    app.empty_the_cloud().await;
    app.cloud(
        reqwest::Method::DELETE,
        &format!("/network/v2.0/ports/{port_id}"),
        None,
    )
    .await;
}

/// Source ranges as a security group on the VIP port (`vip_sg_ids`, Octavia
/// 2.29), as the ovn provider needs them (here forced by the setting, on
/// the harness's amphora provider): made before the load balancer, its
/// rules converged in place, let go when no longer wanted, deleted with the
/// Service.
#[tokio::test]
async fn source_ranges_can_be_a_security_group_on_the_vip_port() {
    let app = spawn_app_with_settings(|s| {
        s.octavia_defaults.source_ranges = svc_lbaas::config::SourceRanges::SecurityGroup;
        s.cluster.orphan_grace_s = 0;
    })
    .await;
    let ranged = |ranges: Value| {
        let mut request = sharing("web", 80, None);
        request["service"]["spec"]["loadBalancerSourceRanges"] = ranges;
        request
    };
    let groups = || async {
        app.cloud(
            reqwest::Method::GET,
            "/network/v2.0/security-groups?name=shop/web",
            None,
        )
        .await["security_groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let ingress_rules = |g: &Value| {
        let mut rules: Vec<String> = g["security_group_rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["direction"] == "ingress")
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["protocol"].as_str().unwrap_or(""),
                    r["port_range_min"],
                    r["remote_ip_prefix"].as_str().unwrap_or("")
                )
            })
            .collect();
        rules.sort();
        rules
    };
    let a = app.apply(ranged(json!(["192.0.2.0/24"]))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id = a.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let found = groups().await;
    assert_eq!(found.len(), 1, "{found:?}");
    let sg = found[0]["id"].as_str().expect("a group").to_string();
    assert_eq!(ingress_rules(&found[0]), ["tcp 80 192.0.2.0/24"]);
    let lb = app.load_balancer(&id).await;
    assert_eq!(lb["vip_sg_ids"], json!([sg]), "{lb}");
    let port = app
        .cloud(
            reqwest::Method::GET,
            &format!(
                "/network/v2.0/ports/{}",
                lb["vip_port_id"].as_str().unwrap_or("")
            ),
            None,
        )
        .await;
    assert!(
        port["port"]["security_groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|x| x == sg.as_str())),
        "the VIP port has the group: {port}"
    );
    let cidrs = app.listeners().await[0]["allowed_cidrs"].clone();
    assert!(
        cidrs.is_null() || cidrs == json!([]),
        "no allowed_cidrs: {cidrs}"
    );
    let again = app.apply(ranged(json!(["192.0.2.0/24"]))).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);

    let moved = app
        .apply(ranged(json!(["198.51.100.0/24", "203.0.113.0/24"])))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let found = groups().await;
    assert_eq!(found[0]["id"], sg.as_str(), "the same group");
    assert_eq!(
        ingress_rules(&found[0]),
        ["tcp 80 198.51.100.0/24", "tcp 80 203.0.113.0/24"]
    );

    let open = app.apply(ranged(json!([]))).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    assert_eq!(app.load_balancer(&id).await["vip_sg_ids"], json!([]));
    assert!(groups().await.is_empty(), "the group went");

    let again = app.apply(ranged(json!(["192.0.2.0/24"]))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(groups().await.len(), 1);
    // A Service gone from a sync's list: its group goes too.
    let gone = app
        .send(
            reqwest::Method::POST,
            "/v1/sync",
            Some(json!({"kind": "ServiceList", "apiVersion": "v1", "items": []}).to_string()),
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let steps = op_resources(&gone.body["orphans"][0]);
    assert_eq!(
        steps.last().map(String::as_str),
        Some("delete securitygroup"),
        "{}",
        gone.body
    );
    assert!(groups().await.is_empty(), "the group went with the orphan");
    app.until_all_gone().await;
    let again = app.apply(ranged(json!(["192.0.2.0/24"]))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    app.delete_service("web").await;
    assert!(app.load_balancers().await.is_empty(), "deleted, waited for");
    assert!(groups().await.is_empty(), "the group went with the Service");
    assert!(app.floating_ips().await.is_empty());
}

/// A Service with a load balancer of its own that joins another's by
/// `load-balancer-id`, then drops the annotation: its own goes when it joins
/// (with its floating IP), its part of the shared one when it leaves.
#[tokio::test]
async fn a_service_moves_onto_a_shared_load_balancer_and_back() {
    let app = spawn_app().await;
    let web = app.apply(sharing("web", 80, None)).await;
    let id = web.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let own = app.apply(sharing("api", 8080, None)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(app.load_balancers().await.len(), 2);
    let joined = app.apply(sharing("api", 8080, Some(&id))).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(joined.body["loadBalancer"]["id"], id.as_str());
    assert!(
        op_resources(&joined.body).contains(&"delete loadbalancer".to_string()),
        "{}",
        joined.body
    );
    app.until_active(&id).await;
    for _ in 0..600 {
        if app.load_balancers().await.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(app.load_balancers().await.len(), 1, "its own went");
    assert_eq!(app.floating_ips().await.len(), 1, "with its floating IP");
    let alone = app.apply(sharing("api", 8080, None)).await;
    assert_eq!(alone.status, StatusCode::OK, "{}", alone.body);
    assert_ne!(alone.body["loadBalancer"]["id"], id.as_str());
    app.until_active(&id).await;
    assert_eq!(app.listener_ports(&id).await, ["shop/web:TCP:80:80"]);
    assert!(
        !app.tags_of(&id)
            .await
            .iter()
            .any(|t| t.ends_with("shop_api"))
    );
    for name in ["api", "web"] {
        app.delete_service(name).await;
    }
    app.until_all_gone().await;
}

impl App {
    /// A certificate container in the cloud's Barbican, as a user makes one
    /// (`openstack secret store` twice, `openstack secret container create`):
    /// the test TLS material of tests/fixtures/tls. Returns its reference
    /// and what to delete afterwards.
    async fn certificate_container(&self, name: &str) -> (String, Vec<String>) {
        let fixture = |f: &str| {
            std::fs::read_to_string(format!(
                "{}/tests/fixtures/tls/{f}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("the test TLS material")
        };
        let mut refs = Vec::new();
        for (file, kind) in [("cert.pem", "certificate"), ("key.pem", "private")] {
            let created = self
                .cloud(
                    reqwest::Method::POST,
                    "/key-manager/v1/secrets",
                    Some(
                        json!({"name": format!("{name}-{kind}"), "payload": fixture(file),
                        "payload_content_type": "text/plain", "secret_type": kind}),
                    ),
                )
                .await;
            refs.push(
                created["secret_ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a secret: {created}"))
                    .to_string(),
            );
        }
        let container = self
            .cloud(
                reqwest::Method::POST,
                "/key-manager/v1/containers",
                Some(json!({"name": name, "type": "certificate", "secret_refs": [
                    {"name": "certificate", "secret_ref": refs[0]},
                    {"name": "private_key", "secret_ref": refs[1]}
                ]})),
            )
            .await;
        let container = container["container_ref"]
            .as_str()
            .unwrap_or_else(|| panic!("a container: {container}"))
            .to_string();
        refs.insert(0, container.clone());
        (container, refs)
    }

    /// The secrets of a certificate container, by reference.
    async fn secrets_of(&self, container: &str) -> Vec<String> {
        let root = self.cloud_access.key_manager.clone().unwrap_or_default();
        let path = container
            .strip_prefix(&root)
            .expect("a reference of this Barbican");
        let c = self
            .cloud(reqwest::Method::GET, &format!("/key-manager{path}"), None)
            .await;
        c["secret_refs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r["secret_ref"].as_str().map(str::to_string))
            .collect()
    }

    /// Whether Barbican still has the object a reference names.
    async fn barbican_has(&self, reference: &str) -> bool {
        let root = self.cloud_access.key_manager.clone().unwrap_or_default();
        let path = reference
            .strip_prefix(&root)
            .expect("a reference of this Barbican");
        let got = self
            .cloud(reqwest::Method::GET, &format!("/key-manager{path}"), None)
            .await;
        got.get("code").is_none_or(|c| c != 404)
    }

    /// Deletes Barbican objects by reference.
    async fn delete_barbican(&self, refs: &[String]) {
        let root = self.cloud_access.key_manager.clone().unwrap_or_default();
        for r in refs {
            let path = r.strip_prefix(&root).expect("a reference of this Barbican");
            self.cloud(
                reqwest::Method::DELETE,
                &format!("/key-manager{path}"),
                None,
            )
            .await;
        }
    }

    /// The cloud's one listener on `port`.
    async fn listener_on(&self, port: u16) -> Value {
        self.listeners()
            .await
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["protocol_port"] == port).cloned())
            .unwrap_or_else(|| panic!("a listener on {port}"))
    }
}

fn annotated_service(ports: Value, annotations: Value) -> Value {
    let mut svc = service("ClusterIP", ports, json!({}));
    svc["metadata"]["annotations"] = annotations;
    svc
}

#[tokio::test]
async fn http_listeners_insert_headers_and_their_monitors_probe_a_path() {
    let app = spawn_app().await;
    let ports = json!([{"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"}]);
    let annotations = |extra: Value| {
        let mut a = json!({
            "loadbalancer.openstack.org/x-forwarded-for": "true",
            "loadbalancer.openstack.org/enable-health-monitor": "true",
            "svc-lbaas.io/health-monitor-url-path": "/healthz",
            "svc-lbaas.io/health-monitor-expected-codes": "200-204",
        });
        if let (Some(a), Value::Object(e)) = (a.as_object_mut(), extra) {
            a.extend(e);
        }
        a
    };
    let a = app
        .apply(json!({"service": annotated_service(ports.clone(), annotations(json!({}))), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let listener = &a.body["loadBalancer"]["listeners"][0];
    assert_eq!(listener["protocol"], "HTTP", "{}", a.body);
    assert_eq!(listener["insertHeaders"], json!(["X-Forwarded-For"]));
    assert_eq!(listener["pool"]["protocol"], "HTTP");
    let on_cloud = app.listener_on(80).await;
    assert_eq!(
        on_cloud["insert_headers"],
        json!({"X-Forwarded-For": "true"})
    );
    let monitors = app
        .cloud(
            reqwest::Method::GET,
            "/load-balancer/v2/lbaas/healthmonitors",
            None,
        )
        .await;
    let hm = &monitors["healthmonitors"][0];
    assert_eq!(
        (
            &hm["type"],
            &hm["http_method"],
            &hm["url_path"],
            &hm["expected_codes"]
        ),
        (
            &json!("HTTP"),
            &json!("GET"),
            &json!("/healthz"),
            &json!("200-204")
        ),
        "{monitors}"
    );
    let again = app
        .apply(json!({"service": annotated_service(ports.clone(), annotations(json!({}))), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    // A header more and another path: the listener and monitor change in place.
    let changed = app
        .apply(
            json!({"service": annotated_service(ports.clone(), annotations(json!({
            "loadbalancer.openstack.org/x-forwarded-proto": "true",
            "svc-lbaas.io/health-monitor-url-path": "/ready",
        }))), "endpoints": endpoints(&["10.1.0.5"])}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        op_resources(&changed.body),
        ["update listener", "update healthmonitor"],
        "{}",
        changed.body
    );
    let after = app.listener_on(80).await;
    assert_eq!(after["id"], on_cloud["id"], "the same listener");
    assert_eq!(
        after["insert_headers"],
        json!({"X-Forwarded-For": "true", "X-Forwarded-Proto": "true"})
    );
    let monitors = app
        .cloud(
            reqwest::Method::GET,
            "/load-balancer/v2/lbaas/healthmonitors",
            None,
        )
        .await;
    assert_eq!(monitors["healthmonitors"][0]["url_path"], "/ready");
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

#[tokio::test]
async fn tls_is_terminated_with_the_users_barbican_container() {
    let app = spawn_app().await;
    let (container, barbican) = app.certificate_container("web-tls").await;
    let ports = json!([
        {"name": "https", "port": 443, "targetPort": 8080, "appProtocol": "https"},
        {"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"}
    ]);
    let svc = |reference: &str| {
        annotated_service(
            ports.clone(),
            json!({"loadbalancer.openstack.org/default-tls-container-ref": reference}),
        )
    };
    // A container that does not exist, and one of another host: 400s
    // naming the annotation, before any write.
    let root = app.cloud_access.key_manager.clone().unwrap_or_default();
    for bad in [
        format!("{root}/v1/containers/6e1b2f0a-1f0e-4f5e-9d4c-3b2a1f0e9d8c"),
        "https://barbican.elsewhere.example/v1/containers/6e1b2f0a-1f0e-4f5e-9d4c-3b2a1f0e9d8c"
            .to_string(),
    ] {
        let refused = app
            .apply(json!({"service": svc(&bad), "endpoints": endpoints(&["10.1.0.5"])}))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("default-tls-container-ref"),
            "{}",
            refused.body
        );
        assert!(app.load_balancers().await.is_empty(), "nothing written");
    }
    let a = app
        .apply(json!({"service": svc(&container), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["converged"], true, "{}", a.body);
    let listeners = a.body["loadBalancer"]["listeners"].as_array().unwrap();
    let tls = listeners.iter().find(|l| l["protocolPort"] == 443).unwrap();
    assert_eq!(tls["protocol"], "TERMINATED_HTTPS", "{}", a.body);
    assert_eq!(tls["defaultTlsContainerRef"], container.as_str());
    assert_eq!(tls["pool"]["protocol"], "HTTP");
    let plain = listeners.iter().find(|l| l["protocolPort"] == 80).unwrap();
    assert_eq!(plain["protocol"], "HTTP");
    let on_cloud = app.listener_on(443).await;
    assert_eq!(
        (&on_cloud["protocol"], &on_cloud["provisioning_status"]),
        (&json!("TERMINATED_HTTPS"), &json!("ACTIVE")),
        "{on_cloud}"
    );
    assert_eq!(on_cloud["default_tls_container_ref"], container.as_str());
    let again = app
        .apply(json!({"service": svc(&container), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
    app.until_no_load_balancers().await;
    app.delete_barbican(&barbican).await;
}

#[tokio::test]
async fn udp_client_ip_affinity_keeps_its_timeout_on_the_pool() {
    let app = spawn_app().await;
    let svc = service(
        "ClusterIP",
        json!([{"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"}]),
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}}),
    );
    let a = app.apply(json!({"service": svc})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pools = app.pools().await;
    let sp = &pools[0]["session_persistence"];
    assert_eq!(
        (&sp["type"], &sp["persistence_timeout"]),
        (&json!("SOURCE_IP"), &json!(600)),
        "{pools}"
    );
    let again = app.apply(json!({"service": svc})).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

/// A `kubernetes.io/tls` Secret of the test TLS material, as the API server
/// serves it (`data`, base64), with `extra` appended to its key (another
/// content, same certificate).
fn tls_secret(name: &str, extra: &str) -> Value {
    use base64::Engine;
    let read = |f: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/tls/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("the test TLS material")
    };
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(read("cert.pem")), "tls.key": b64(format!("{}{extra}", read("key.pem")))}})
}

impl App {
    /// `shop/web`'s certificate containers in Barbican (names and references).
    async fn containers(&self) -> Vec<(String, String)> {
        let owner = svc_lbaas::names::owner_tags(
            "kubernetes",
            &svc_lbaas::model::ServiceRef {
                namespace: "shop".into(),
                name: "web".into(),
            },
        );
        let name = svc_lbaas::names::certificate_name(&owner);
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("name", &name)
            .append_pair("limit", "100")
            .finish();
        let listed = self
            .cloud(
                reqwest::Method::GET,
                &format!("/key-manager/v1/containers?{query}"),
                None,
            )
            .await;
        listed["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["container_ref"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn a_kubernetes_tls_secret_is_stored_in_barbican_replaced_and_deleted_with_the_service() {
    let app = spawn_app().await;
    let ports = json!([{"name": "https", "port": 443, "targetPort": 8080, "appProtocol": "https"}]);
    let ours = |containers: &[(String, String)]| -> Vec<String> {
        containers.iter().map(|(_, r)| r.clone()).collect()
    };
    let before = ours(&app.containers().await);
    assert!(before.is_empty(), "{before:?}");
    // A Secret that is not a TLS Secret: a 400 naming it, nothing written.
    let mut opaque = tls_secret("web-tls", "");
    opaque["type"] = json!("Opaque");
    let refused = app
        .apply(json!({"service": service("ClusterIP", ports.clone(), json!({})), "tlsSecrets": [opaque]}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["field"], "tlsSecrets[0]", "{}", refused.body);
    assert!(app.load_balancers().await.is_empty());
    assert!(ours(&app.containers().await).is_empty());
    // The one Secret, a port with appProtocol https: TLS terminated with it.
    let request = |secret: Value| json!({"service": service("ClusterIP", ports.clone(), json!({})), "endpoints": endpoints(&["10.1.0.5"]), "tlsSecrets": [secret]});
    let a = app.apply(request(tls_secret("web-tls", ""))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let text = a.body.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("BEGIN") && !text.contains("LS0t"),
        "the answer carries no key nor certificate"
    );
    let stored = ours(&app.containers().await);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let listener = &a.body["loadBalancer"]["listeners"][0];
    assert_eq!(listener["protocol"], "TERMINATED_HTTPS", "{}", a.body);
    assert_eq!(listener["defaultTlsContainerRef"], stored[0].as_str());
    let on_cloud = app.listener_on(443).await;
    assert_eq!(on_cloud["provisioning_status"], "ACTIVE", "{on_cloud}");
    assert_eq!(on_cloud["default_tls_container_ref"], stored[0].as_str());
    // Again: found by name and digest, nothing made.
    let again = app.apply(request(tls_secret("web-tls", ""))).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    assert_eq!(again.body["openstackCalls"]["writes"], 0, "{}", again.body);
    assert_eq!(ours(&app.containers().await), stored);
    // A request without tlsSecrets (a watcher's event, an older client):
    // the certificate stored is kept, not TLS passthrough.
    let without = app
        .apply(json!({"service": service("ClusterIP", ports.clone(), json!({})), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(without.body["action"], "unchanged", "{}", without.body);
    // An event (no tlsSecrets) with default-tls-secret naming it: kept.
    let mut named = service("ClusterIP", ports.clone(), json!({}));
    named["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/default-tls-secret": "web-tls"});
    let kept = event(&app, json!({"type": "MODIFIED", "object": named})).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(kept.body["result"]["action"], "unchanged", "{}", kept.body);
    // The Secret's content changes: a new container, the listener moved onto
    // it in place, the old one deleted.
    let changed = app.apply(request(tls_secret("web-tls", "\n"))).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        op_resources(&changed.body),
        ["update listener"],
        "{}",
        changed.body
    );
    let now = ours(&app.containers().await);
    assert_eq!(now.len(), 1, "the old container deleted: {now:?}");
    assert_ne!(now[0], stored[0]);
    assert!(!app.barbican_has(&stored[0]).await);
    let after = app.listener_on(443).await;
    assert_eq!(after["id"], on_cloud["id"]);
    assert_eq!(after["default_tls_container_ref"], now[0].as_str());
    let secrets = app.secrets_of(&now[0]).await;
    assert_eq!(secrets.len(), 2, "certificate and private_key");
    // The port stops terminating TLS (no appProtocol, no Secret): its
    // container and secrets go once the listener no longer uses them.
    let plain = app
        .apply(json!({"service": service("ClusterIP", json!([{"name": "https", "port": 443, "targetPort": 8080}]), json!({})),
            "endpoints": endpoints(&["10.1.0.5"]), "tlsSecrets": []}))
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert_eq!(
        plain.body["loadBalancer"]["listeners"][0]["protocol"],
        "TCP"
    );
    assert!(ours(&app.containers().await).is_empty());
    for r in secrets.iter().chain(&now) {
        assert!(!app.barbican_has(r).await, "{r} is left");
    }
    // TLS again, then the Service goes: its container and secrets too.
    let again = app.apply(request(tls_secret("web-tls", ""))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let last = ours(&app.containers().await);
    assert_eq!(last.len(), 1);
    let secrets = app.secrets_of(&last[0]).await;
    let gone = app
        .send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert!(ours(&app.containers().await).is_empty());
    for r in secrets.iter().chain(&last) {
        assert!(!app.barbican_has(r).await, "{r} is left");
    }
    app.until_no_load_balancers().await;
}

#[tokio::test]
async fn on_the_legacy_api_a_draining_member_keeps_its_id_and_connections() {
    if real_cloud() {
        eprintln!("skipped on the real cloud: it serves no Neutron LBaaS v2");
        return;
    }
    let app = spawn_app_with_settings(|s| {
        s.octavia_defaults.api = svc_lbaas::config::Api::NeutronLbaas;
    })
    .await;
    let svc = service("ClusterIP", one_port(), json!({}));
    let a = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), serving("10.1.0.6")]))]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pool = a.body["loadBalancer"]["listeners"][0]["pool"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/network/v2.0/lbaas/pools/{pool}/members");
    let before = pool_members(&app.cloud(reqwest::Method::GET, &path, None).await);
    let drained = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), draining("10.1.0.6")]))]}))
        .await;
    assert_eq!(drained.status, StatusCode::OK, "{}", drained.body);
    assert_eq!(
        op_resources(&drained.body),
        ["update member"],
        "{}",
        drained.body
    );
    let after = pool_members(&app.cloud(reqwest::Method::GET, &path, None).await);
    assert_eq!(after[0], before[0]);
    assert_eq!(
        (&after[1].1, after[1].2),
        (&before[1].1, 0),
        "the same member, drained"
    );
    let again = app
        .apply(json!({"service": svc, "endpointSlices": [web_slice(json!([serving("10.1.0.5"), draining("10.1.0.6")]))]}))
        .await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

// ---------------------------------------------------------------- tenancy
// The Service's namespace is the principal, whatever token carried it: a
// namespace `evil` names `prod`'s load balancer, certificate, floating IP
// and VIP port through its own Services' annotations, with its own token,
// with the watcher's cluster-wide token, and over gRPC; each is refused
// naming the field, with nothing written and `prod` unchanged, and the
// allowed path (same namespace, `share-with-namespaces`, what the operator
// opened) still works.

const TENANCY_TOKENS: &str = "[[tokens]]\nname = \"prod\"\ntoken = \"prod-token-0123456789\"\nnamespaces = [\"prod\"]\n\
[[tokens]]\nname = \"evil\"\ntoken = \"evil-token-0123456789\"\nnamespaces = [\"evil\"]\n\
[[tokens]]\nname = \"watcher\"\ntoken = \"watcher-token-0123456789\"\nnamespaces = [\"*\"]\n";
const PROD: &str = "prod-token-0123456789";
const EVIL: &str = "evil-token-0123456789";
const WATCHER: &str = "watcher-token-0123456789";

/// How `evil`'s request travels.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// REST with a token scoped to `evil`.
    Namespace,
    /// REST with a cluster-wide token, as the watcher sends every Service.
    Cluster,
    /// gRPC with the `evil` token.
    Grpc,
}
const VIAS: [Via; 3] = [Via::Namespace, Via::Cluster, Via::Grpc];

async fn spawn_tenancy(change: impl FnOnce(&mut Settings)) -> App {
    let tokens = svc_lbaas::api::auth::Tokens::parse(TENANCY_TOKENS).expect("tokens");
    spawn_app_configured(Some(tokens), SIM_DELAY_MS, change).await
}

/// `ns/name` as an apply request: a LoadBalancer Service with one port (a
/// clusterIP of its own) and one pod as its member.
fn tenant(ns: &str, name: &str, port: u16, annotations: Value, extra: Value) -> Value {
    let mut svc = service(
        "LoadBalancer",
        json!([{"name": "http", "port": port, "targetPort": 8080}]),
        extra,
    );
    svc["metadata"] = json!({"name": name, "namespace": ns, "uid": format!("u-{ns}-{name}"),
        "annotations": annotations});
    if svc["spec"]["clusterIP"] == "10.2.0.42" {
        let octet = format!("{ns}/{name}").bytes().map(u32::from).sum::<u32>() % 250;
        svc["spec"]["clusterIP"] = json!(format!("10.2.{octet}.{}", port % 250 + 1));
    }
    let mut ep = endpoints(&["10.1.0.5"]);
    ep["metadata"] = json!({"name": name, "namespace": ns});
    json!({"service": svc, "endpoints": ep})
}

impl App {
    async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        assert!(
            text.len() < 64 * 1024 || status.is_success(),
            "a problem of {} bytes",
            text.len()
        );
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    /// An apply with `token`.
    async fn apply_as(&self, token: &str, request: &Value) -> Answer {
        self.send_as(token, reqwest::Method::POST, "/v1/apply", Some(request))
            .await
    }

    /// `prod/web`, one port, made with prod's token.
    async fn prod_web(&self) -> Answer {
        let a = self
            .apply_as(PROD, &tenant("prod", "web", 80, json!({}), json!({})))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a
    }

    /// `evil`'s apply by `via`; a gRPC failure as `{"code", "message"}` with
    /// the HTTP status its code stands for.
    async fn apply_via(&self, via: Via, request: &Value) -> (u16, Value) {
        match via {
            Via::Namespace | Via::Cluster => {
                let token = if matches!(via, Via::Namespace) {
                    EVIL
                } else {
                    WATCHER
                };
                let a = self.apply_as(token, request).await;
                (a.status.as_u16(), a.body)
            }
            Via::Grpc => {
                use svc_lbaas::api::grpc::{json_to_struct, pb};
                let mut client =
                    pb::translator_client::TranslatorClient::connect(self.grpc.clone())
                        .await
                        .expect("gRPC connects");
                let mut req = tonic::Request::new(pb::ApplyRequest {
                    service: Some(json_to_struct(&request["service"])),
                    endpoints: request.get("endpoints").map(json_to_struct),
                    ..Default::default()
                });
                req.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {EVIL}").parse().expect("metadata"),
                );
                match client.apply(req).await {
                    Ok(answer) => {
                        let a = answer.into_inner();
                        (
                            200,
                            json!({"action": a.action, "loadBalancer": {"id": a.load_balancer.map(|l| l.id)}}),
                        )
                    }
                    Err(status) => {
                        let http = match status.code() {
                            tonic::Code::PermissionDenied => 403,
                            tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists => 409,
                            tonic::Code::InvalidArgument => 400,
                            _ => 500,
                        };
                        (
                            http,
                            json!({"code": status.code() as i32, "message": status.message()}),
                        )
                    }
                }
            }
        }
    }

    /// What the cloud holds that a refused request must leave as it was:
    /// load balancers (name, tags, status), listeners (name, port, load
    /// balancer), floating IPs (address, port, description), sorted.
    async fn snapshot(&self) -> Value {
        let mut lbs: Vec<Value> = self
            .load_balancers()
            .await
            .iter()
            .map(|lb| {
                let mut tags: Vec<String> = lb["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                tags.sort();
                json!([lb["id"], lb["name"], tags, lb["provisioning_status"]])
            })
            .collect();
        lbs.sort_by_key(|v| v.to_string());
        let mut listeners: Vec<Value> = self
            .listeners()
            .await
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                json!([
                    l["name"],
                    l["protocol_port"],
                    l["loadbalancers"][0]["id"],
                    l["default_tls_container_ref"]
                ])
            })
            .collect();
        listeners.sort_by_key(|v| v.to_string());
        let mut fips: Vec<Value> = self
            .floating_ips()
            .await
            .iter()
            .map(|f| json!([f["floating_ip_address"], f["port_id"], f["description"]]))
            .collect();
        fips.sort_by_key(|v| v.to_string());
        json!({"loadBalancers": lbs, "listeners": listeners, "floatingIps": fips})
    }

    /// `evil`'s `request` by every way: refused with `status`, the problem
    /// `kind` naming `field`, nothing written.
    async fn refused_every_way(&self, request: &Value, status: u16, kind: &str, field: &str) {
        let before = self.snapshot().await;
        for via in VIAS {
            let (got, body) = self.apply_via(via, request).await;
            assert_eq!(got, status, "{via:?}: {body}");
            match via {
                Via::Grpc => {
                    let message = body["message"].as_str().unwrap_or_default();
                    assert!(message.contains(field), "{via:?}: {message}");
                }
                _ => {
                    assert_eq!(
                        body["type"],
                        format!("urn:svc-lbaas:problem:{kind}"),
                        "{via:?}: {body}"
                    );
                    assert_eq!(body["field"], field, "{via:?}: {body}");
                }
            }
            assert_eq!(
                self.snapshot().await,
                before,
                "{via:?}: nothing written, prod unchanged"
            );
        }
    }
}

fn annotation_field(annotation: &str) -> String {
    format!("service.metadata.annotations[\"{annotation}\"]")
}

const LB_ID: &str = "loadbalancer.openstack.org/load-balancer-id";
const SHARE_WITH: &str = "svc-lbaas.io/share-with-namespaces";

/// Sharing: another namespace's load balancer is refused until its owner
/// opens it (`share-with-namespaces`), its own namespace's is not; a sharer
/// sees only its own part; narrowing evicts; an owner with sharers cannot
/// keep its floating IP; the hand-over goes to an allowed sharer.
#[tokio::test]
async fn a_namespace_joins_another_namespaces_load_balancer_only_when_its_owner_opens_it() {
    let app = spawn_tenancy(|_| {}).await;
    let prod = app.prod_web().await;
    let id = prod.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let address = ingress(&prod);

    let attack = tenant("evil", "web", 8081, json!({LB_ID: id}), json!({}));
    app.refused_every_way(
        &attack,
        403,
        "forbidden-reference",
        &annotation_field(LB_ID),
    )
    .await;
    // On a port prod holds too: still the namespace's refusal, not the port's.
    let squat = tenant("evil", "web", 80, json!({LB_ID: id}), json!({}));
    app.refused_every_way(&squat, 403, "forbidden-reference", &annotation_field(LB_ID))
        .await;

    // Its own namespace may: a second prod Service joins without asking.
    let api = app
        .apply_as(
            PROD,
            &tenant("prod", "api", 8080, json!({LB_ID: id}), json!({})),
        )
        .await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.body);
    assert_eq!(ingress(&api), address);

    // The owner opens it to evil: evil joins, and sees only its own part.
    let opened = tenant("prod", "web", 80, json!({SHARE_WITH: "evil"}), json!({}));
    let o = app.apply_as(PROD, &opened).await;
    assert_eq!(o.status, StatusCode::OK, "{}", o.body);
    assert!(
        app.tags_of(&id)
            .await
            .contains(&"svc-lbaas-share-with:evil".to_string())
    );
    let evil = app.apply_as(EVIL, &attack).await;
    assert_eq!(evil.status, StatusCode::OK, "{}", evil.body);
    assert_eq!(ingress(&evil), address);
    for view in [
        evil.body.clone(),
        app.send_as(EVIL, reqwest::Method::GET, "/v1/services/evil/web", None)
            .await
            .body,
    ] {
        let lb = &view["loadBalancer"];
        assert_eq!(lb["id"], id.as_str(), "{view}");
        assert!(
            lb.get("name").is_none() && lb["vipPortId"].is_null(),
            "{view}"
        );
        assert!(
            !view.to_string().contains("prod/"),
            "nothing of prod's: {view}"
        );
        let names: Vec<&str> = lb["listeners"]
            .as_array()
            .expect("listeners")
            .iter()
            .filter_map(|l| l["name"].as_str())
            .collect();
        assert_eq!(names, ["evil/web:TCP:8081"], "{view}");
        assert!(view["floatingIp"].get("id").is_none(), "{view}");
    }
    // The owner sees everything.
    let owner_view = app
        .send_as(PROD, reqwest::Method::GET, "/v1/services/prod/web", None)
        .await;
    assert_eq!(
        owner_view.body["loadBalancer"]["listeners"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // prod keeping its floating IP while others share: a 409 naming them.
    let kept = app
        .send_as(
            PROD,
            reqwest::Method::DELETE,
            "/v1/services/prod/web?keepFloatingIp=true",
            None,
        )
        .await;
    assert_eq!(kept.status, StatusCode::CONFLICT, "{}", kept.body);
    let detail = kept.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("prod/api") && detail.contains("evil/web"),
        "{detail}"
    );
    assert_eq!(
        app.load_balancer(&id).await["name"],
        "prod/web",
        "nothing changed"
    );

    // The owner narrows: evil's part goes at prod's next apply.
    let n = app
        .apply_as(PROD, &tenant("prod", "web", 80, json!({}), json!({})))
        .await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.body);
    app.until_active(&id).await;
    assert_eq!(
        app.listener_ports(&id).await,
        ["prod/api:TCP:8080:8080", "prod/web:TCP:80:80"]
    );
    let tags = app.tags_of(&id).await;
    assert!(!tags.iter().any(|t| t.contains("evil")), "{tags:?}");
    app.refused_every_way(
        &attack,
        403,
        "forbidden-reference",
        &annotation_field(LB_ID),
    )
    .await;
    // evil's delete finds nothing of its own there.
    let gone = app
        .send_as(EVIL, reqwest::Method::DELETE, "/v1/services/evil/web", None)
        .await;
    assert!(gone.status.is_success(), "{}", gone.body);
    assert_eq!(app.listener_ports(&id).await.len(), 2);

    // prod/web leaves: the load balancer and its address go to prod/api.
    let left = app
        .send_as(PROD, reqwest::Method::DELETE, "/v1/services/prod/web", None)
        .await;
    assert_eq!(left.status, StatusCode::OK, "{}", left.body);
    app.until_active(&id).await;
    assert_eq!(app.load_balancer(&id).await["name"], "prod/api");
    let api_now = app
        .send_as(PROD, reqwest::Method::GET, "/v1/services/prod/api", None)
        .await;
    assert_eq!(ingress(&api_now), address);
    let last = app
        .send_as(PROD, reqwest::Method::DELETE, "/v1/services/prod/api", None)
        .await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    app.until_all_gone().await;
}

/// A load balancer no tool manages is open to the namespaces the operator
/// lists (`[tenancy] user_load_balancers_namespaces`; unset: every one, as
/// OCCM shares); one OCCM made and svc-lbaas has not adopted belongs to the
/// namespace in its name (`kube_service_<cluster>_<namespace>_<name>`).
#[tokio::test]
async fn a_users_or_occms_load_balancer_is_shared_only_with_the_namespaces_it_is_open_to() {
    let app = spawn_tenancy(|s| {
        s.tenancy.user_load_balancers_namespaces = Some(vec!["prod".into()]);
    })
    .await;
    let occm = "kube_service_kubernetes_prod_web";
    for (name, tags) in [("made-by-hand", "team-a"), (occm, occm)] {
        let created = app
            .cloud(
                reqwest::Method::POST,
                "/load-balancer/v2/lbaas/loadbalancers",
                Some(json!({"loadbalancer": {"name": name,
                    "vip_network_id": app.cloud_access.service_network, "tags": [tags]}})),
            )
            .await;
        let id = created["loadbalancer"]["id"]
            .as_str()
            .expect("an id")
            .to_string();
        app.until_active(&id).await;
        let attack = tenant("evil", "web", 8081, json!({LB_ID: id}), json!({}));
        app.refused_every_way(
            &attack,
            403,
            "forbidden-reference",
            &annotation_field(LB_ID),
        )
        .await;
        let prod = tenant("prod", "api", 8082, json!({LB_ID: id}), json!({}));
        let joined = app.apply_as(PROD, &prod).await;
        assert_eq!(joined.status, StatusCode::OK, "{name}: {}", joined.body);
        let left = app
            .send_as(PROD, reqwest::Method::DELETE, "/v1/services/prod/api", None)
            .await;
        assert_eq!(left.status, StatusCode::OK, "{}", left.body);
        app.until_active(&id).await;
        assert_eq!(app.tags_of(&id).await, [tags], "the tags, as they were");
        app.cloud(
            reqwest::Method::DELETE,
            &format!("/load-balancer/v2/lbaas/loadbalancers/{id}?cascade=true"),
            None,
        )
        .await;
        app.until_all_gone().await;
    }
}

/// A container svc-lbaas stored from prod's TLS Secret serves only prod; a
/// user's container follows `[tenancy] user_containers_namespaces`.
#[tokio::test]
async fn a_certificate_stored_for_another_namespace_is_refused() {
    let app = spawn_tenancy(|s| {
        s.tenancy.user_containers_namespaces = Some(vec!["prod".into()]);
    })
    .await;
    let https = json!([{"name": "https", "port": 443, "targetPort": 8443, "appProtocol": "https"}]);
    let mut request = tenant("prod", "web", 443, json!({}), json!({}));
    request["service"]["spec"]["ports"] = https.clone();
    let mut secret = tls_secret("web-tls", "");
    secret["metadata"]["namespace"] = json!("prod");
    request["tlsSecrets"] = json!([secret]);
    let prod = app.apply_as(PROD, &request).await;
    assert_eq!(prod.status, StatusCode::OK, "{}", prod.body);
    let stored = prod.body["loadBalancer"]["listeners"][0]["defaultTlsContainerRef"]
        .as_str()
        .expect("prod's stored container")
        .to_string();
    let ref_field = annotation_field("loadbalancer.openstack.org/default-tls-container-ref");
    let mut attack = tenant(
        "evil",
        "certsteal",
        443,
        json!({"loadbalancer.openstack.org/default-tls-container-ref": stored}),
        json!({}),
    );
    attack["service"]["spec"]["ports"] = https.clone();
    app.refused_every_way(&attack, 403, "forbidden-reference", &ref_field)
        .await;

    // A user's container: prod may (the operator opened them to prod), evil may not.
    let (users, barbican) = app.certificate_container("user-tls").await;
    let mut theirs = attack.clone();
    theirs["service"]["metadata"]["annotations"] =
        json!({"loadbalancer.openstack.org/default-tls-container-ref": users});
    app.refused_every_way(&theirs, 403, "forbidden-reference", &ref_field)
        .await;
    let mut mine = tenant(
        "prod",
        "api",
        443,
        json!({"loadbalancer.openstack.org/default-tls-container-ref": users}),
        json!({}),
    );
    mine["service"]["spec"]["ports"] = https;
    let ok = app.apply_as(PROD, &mine).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    for name in ["web", "api"] {
        let gone = app
            .send_as(
                PROD,
                reqwest::Method::DELETE,
                &format!("/v1/services/prod/{name}"),
                None,
            )
            .await;
        assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    }
    app.until_all_gone().await;
    app.delete_barbican(&barbican).await;
}

/// A floating IP svc-lbaas allocated (or kept) for prod is not evil's to
/// take with `loadBalancerIP`; no message names prod's port.
#[tokio::test]
async fn a_floating_ip_of_another_namespace_is_not_taken() {
    let app = spawn_tenancy(|_| {}).await;
    let prod = app.prod_web().await;
    let address = ingress(&prod);
    let vip_port = prod.body["loadBalancer"]["vipPortId"]
        .as_str()
        .expect("a VIP port")
        .to_string();
    let attack = tenant(
        "evil",
        "web",
        80,
        json!({}),
        json!({"loadBalancerIP": address}),
    );
    let field = "service.spec.loadBalancerIP";
    // Bound to prod's load balancer.
    for via in VIAS {
        let (status, body) = app.apply_via(via, &attack).await;
        assert_eq!(status, 409, "{via:?}: {body}");
        assert!(
            !body.to_string().contains(&vip_port),
            "{via:?} names prod's port: {body}"
        );
    }
    assert_eq!(
        app.load_balancers().await.len(),
        1,
        "a refused request made none"
    );
    // Kept after prod's deletion: still prod's.
    let kept = app
        .send_as(
            PROD,
            reqwest::Method::DELETE,
            "/v1/services/prod/web?keepFloatingIp=true",
            None,
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    app.until_no_load_balancers().await;
    app.refused_every_way(&attack, 409, "floating-ip-in-use", field)
        .await;
    // prod takes it back.
    let back = tenant(
        "prod",
        "web",
        80,
        json!({}),
        json!({"loadBalancerIP": address}),
    );
    let b = app.apply_as(PROD, &back).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(ingress(&b), address);
    let gone = app
        .send_as(PROD, reqwest::Method::DELETE, "/v1/services/prod/web", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    app.until_no_load_balancers().await;
    // The user method never deletes the address: the test does.
    for fip in app.floating_ips().await {
        let id = fip["id"].as_str().unwrap_or_default();
        app.cloud(
            reqwest::Method::DELETE,
            &format!("/network/v2.0/floatingips/{id}"),
            None,
        )
        .await;
    }
    app.until_all_gone().await;
}

/// `port-id` naming another load balancer's VIP port: a 409 before any
/// write; the simulator refuses a port in use as Octavia does.
#[tokio::test]
async fn a_port_another_load_balancer_uses_is_refused() {
    let app = spawn_tenancy(|_| {}).await;
    let prod = app.prod_web().await;
    let vip_port = prod.body["loadBalancer"]["vipPortId"]
        .as_str()
        .expect("a VIP port")
        .to_string();
    let attack = tenant(
        "evil",
        "web",
        80,
        json!({"loadbalancer.openstack.org/port-id": vip_port}),
        json!({}),
    );
    app.refused_every_way(
        &attack,
        409,
        "reference-in-use",
        &annotation_field("loadbalancer.openstack.org/port-id"),
    )
    .await;
    // A port that does not exist: the 400 naming the annotation.
    let missing = tenant(
        "evil",
        "web",
        80,
        json!({"loadbalancer.openstack.org/port-id": "6e1b2f0a-1f0e-4f5e-9d4c-3b2a1f0e9d8c"}),
        json!({}),
    );
    app.refused_every_way(
        &missing,
        400,
        "unknown-reference",
        &annotation_field("loadbalancer.openstack.org/port-id"),
    )
    .await;
    // Octavia itself refuses a port a device uses.
    let direct = app
        .cloud(
            reqwest::Method::POST,
            "/load-balancer/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"name": "second", "vip_port_id": vip_port}})),
        )
        .await;
    assert!(
        direct["faultstring"]
            .as_str()
            .unwrap_or_default()
            .contains("already used by device")
            || direct["description"]
                .as_str()
                .unwrap_or_default()
                .contains("already used by device"),
        "{direct}"
    );
    let gone = app
        .send_as(PROD, reqwest::Method::DELETE, "/v1/services/prod/web", None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    app.until_all_gone().await;
}

/// VIP networks and subnets an annotation names: only those the operator
/// opened, when `[tenancy] vip_networks` / `vip_subnets` are set.
#[tokio::test]
async fn a_vip_network_the_operator_did_not_open_is_refused() {
    // One network opened (not the public one the attack names); the
    // allowed path is translate's unit test.
    let opened = "8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81".to_string();
    let app = spawn_tenancy(move |s| s.tenancy.vip_networks = Some(vec![opened])).await;
    let public = app.cloud_access.public_network.clone();
    let attack = tenant(
        "evil",
        "web",
        80,
        json!({"loadbalancer.openstack.org/network-id": public}),
        json!({}),
    );
    app.refused_every_way(
        &attack,
        403,
        "forbidden-reference",
        &annotation_field("loadbalancer.openstack.org/network-id"),
    )
    .await;
    assert!(app.load_balancers().await.is_empty());
}

/// Endpoint addresses outside the pod subnet (a public address, another
/// Service's VIP, the metadata service, loopback) never become members; the
/// Service converges with the rest, saying what was left out.
#[tokio::test]
async fn endpoint_addresses_outside_the_member_cidrs_are_left_out() {
    let app = spawn_tenancy(|_| {}).await;
    let mut request = tenant("evil", "web", 80, json!({}), json!({}));
    request["endpoints"]["subsets"][0]["addresses"] = json!([
        {"ip": "10.1.0.5"}, {"ip": "8.8.8.8"}, {"ip": "10.2.0.9"},
        {"ip": "169.254.169.254"}, {"ip": "127.0.0.1"}
    ]);
    let a = app.apply_as(EVIL, &request).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let members: Vec<&str> = a.body["loadBalancer"]["listeners"][0]["pool"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["address"].as_str())
        .collect();
    assert_eq!(members, ["10.1.0.5"], "{}", a.body);
    let notes = a.body["notes"].to_string();
    assert!(
        notes.contains("4 endpoint address(es) left out") && notes.contains("169.254.169.254"),
        "{notes}"
    );
    let members_of = |view: &Value| -> Vec<String> {
        view["loadBalancer"]["listeners"][0]["pool"]["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["address"].as_str().map(str::to_string))
            .collect()
    };
    // An Endpoints change alone (an event): the same rule.
    let mut changed = request["endpoints"].clone();
    changed["subsets"][0]["addresses"] = json!([{"ip": "10.1.0.6"}, {"ip": "169.254.169.254"}]);
    let e = app
        .send_as(
            EVIL,
            reqwest::Method::POST,
            "/v1/events",
            Some(&json!({"type": "MODIFIED", "object": changed})),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    let view = app
        .send_as(EVIL, reqwest::Method::GET, "/v1/services/evil/web", None)
        .await;
    assert_eq!(members_of(&view.body), ["10.1.0.6"], "{}", view.body);
    // An https port without a Secret (translated twice on the way): the same.
    let mut tls = tenant("evil", "tls", 443, json!({}), json!({}));
    tls["service"]["spec"]["ports"] =
        json!([{"name": "http", "port": 443, "targetPort": 8080, "appProtocol": "https"}]);
    tls["endpoints"]["subsets"][0]["addresses"] =
        json!([{"ip": "10.1.0.5"}, {"ip": "169.254.169.254"}]);
    let t = app.apply_as(EVIL, &tls).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(members_of(&t.body), ["10.1.0.5"], "{}", t.body);
    for name in ["web", "tls"] {
        let gone = app
            .send_as(
                EVIL,
                reqwest::Method::DELETE,
                &format!("/v1/services/evil/{name}"),
                None,
            )
            .await;
        assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    }
    app.until_all_gone().await;
}

/// A shared load balancer in ERROR: a sharer's apply is told why, its owner's
/// re-creates it (the sharers' parts with it), a sharer whose annotation
/// then names nothing gets the 400, every delete succeeds, nothing leaks.
#[tokio::test]
async fn a_shared_load_balancer_in_error_is_recreated_by_its_owner() {
    let app = spawn_tenancy(|_| {}).await;
    let Some(sim) = app.sim_only("driving a shared load balancer to ERROR") else {
        return;
    };
    let base = sim.state.base_url.clone();
    let web = tenant("prod", "web", 80, json!({}), json!({}));
    let first = app.apply_as(PROD, &web).await;
    let id = first.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let address = ingress(&first);
    let api = tenant("prod", "api", 8080, json!({LB_ID: id}), json!({}));
    let joined = app.apply_as(PROD, &api).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    let res = app
        .http
        .post(format!("{base}/sim/faults/loadbalancers/{id}/error"))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let stuck = app.apply_as(PROD, &api).await;
    assert_eq!(stuck.status, StatusCode::CONFLICT, "{}", stuck.body);
    assert!(
        stuck.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ERROR"),
        "{}",
        stuck.body
    );
    let fixed = app.apply_as(PROD, &web).await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    let new_id = fixed.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    assert_ne!(new_id, id);
    assert_eq!(
        ingress(&fixed),
        address,
        "the floating IP moved to the new one"
    );
    let orphaned = app.apply_as(PROD, &api).await;
    assert_eq!(
        orphaned.status,
        StatusCode::BAD_REQUEST,
        "{}",
        orphaned.body
    );
    assert_eq!(
        orphaned.body["type"],
        "urn:svc-lbaas:problem:unknown-reference"
    );
    for name in ["api", "web"] {
        let gone = app
            .send_as(
                PROD,
                reqwest::Method::DELETE,
                &format!("/v1/services/prod/{name}"),
                None,
            )
            .await;
        assert!(gone.status.is_success(), "{name}: {}", gone.body);
    }
    app.until_all_gone().await;

    // In ERROR again, deleted by its owner first: both deletes succeed.
    let first = app.apply_as(PROD, &web).await;
    let id = first.body["loadBalancer"]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let api = tenant("prod", "api", 8080, json!({LB_ID: id}), json!({}));
    let joined = app.apply_as(PROD, &api).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    app.http
        .post(format!("{base}/sim/faults/loadbalancers/{id}/error"))
        .send()
        .await
        .expect("the simulator answers");
    for name in ["web", "api"] {
        let gone = app
            .send_as(
                PROD,
                reqwest::Method::DELETE,
                &format!("/v1/services/prod/{name}"),
                None,
            )
            .await;
        assert!(gone.status.is_success(), "{name}: {}", gone.body);
    }
    app.until_all_gone().await;
}

/// A problem quotes at most 200 characters of a value and stays under 4 KB,
/// and never a Secret's field.
#[tokio::test]
async fn problems_quote_little_of_their_input() {
    let app = spawn_tenancy(|_| {}).await;
    let pasted = "K".repeat(300_000);
    let request = tenant(
        "evil",
        "web",
        80,
        json!({"loadbalancer.openstack.org/lb-method": pasted}),
        json!({}),
    );
    let a = app.apply_as(EVIL, &request).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let text = a.body.to_string();
    assert!(text.len() < 4096, "{} bytes", text.len());
    assert!(!text.contains(&"K".repeat(201)), "{text}");
    let mut secret = tls_secret("web-tls", "");
    secret["metadata"]["namespace"] = json!("evil");
    secret["type"] = json!(format!("-----BEGIN PRIVATE KEY-----{}", "S".repeat(300)));
    let mut request = tenant("evil", "web", 443, json!({}), json!({}));
    request["service"]["spec"]["ports"] =
        json!([{"name": "https", "port": 443, "targetPort": 8443, "appProtocol": "https"}]);
    request["tlsSecrets"] = json!([secret]);
    let a = app.apply_as(EVIL, &request).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["field"], "tlsSecrets[0]", "{}", a.body);
    assert!(
        !a.body.to_string().contains("BEGIN PRIVATE KEY"),
        "{}",
        a.body
    );
    assert!(app.load_balancers().await.is_empty());
}

#[path = "api/gateway.rs"]
mod gateway;
