//! The call budget, measured: OpenStack reads, writes and waits (and wall
//! time) of `POST /v1/apply` for a `type: LoadBalancer` Service with 2 ports
//! and 3 endpoints, against the embedded simulated cloud, on Octavia and on
//! the legacy Neutron LBaaS API. Prints a table; exits non-zero when the
//! Octavia budget (create: 2 writes, 1 wait; unchanged: 0 writes and at most
//! 4 reads with 2 and with 8 ports; one endpoint replaced: 1 write per pool;
//! a port added: 3 writes and 3 waits where the cloud takes no children
//! inline, as Octavia 19, 1 and 1 where it does) is exceeded.
//!
//! `cargo bench --bench apply` (also run once by `cargo test --all-targets`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use svc_lbaas::config::{Api, Settings};

fn request(ips: &[&str]) -> Value {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "service": {"metadata": {"name": "web", "namespace": "bench"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443, "targetPort": 8443}]}},
        "endpoints": {"metadata": {"name": "web", "namespace": "bench"},
            "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]}]}
    })
}

struct Row {
    api: &'static str,
    step: &'static str,
    reads: u64,
    writes: u64,
    waits: u64,
    elapsed: Duration,
}

async fn run(api: Api, delay_ms: u64) -> Vec<Row> {
    let mut settings = Settings::default();
    settings.octavia_defaults.api = api;
    let delay = delay_ms.to_string();
    let env = move |k: &str| (k == "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").then(|| delay.clone());
    let (app, _sim) = svc_lbaas::startup::build_app(settings, None, &env)
        .await
        .expect("builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let name = match api {
        Api::Octavia => "octavia",
        Api::NeutronLbaas => "neutron-lbaas",
    };
    let steps: [(&'static str, Option<Value>); 4] = [
        (
            "create",
            Some(request(&["10.1.0.5", "10.1.0.6", "10.1.0.7"])),
        ),
        (
            "unchanged re-apply",
            Some(request(&["10.1.0.5", "10.1.0.6", "10.1.0.7"])),
        ),
        (
            "one endpoint replaced",
            Some(request(&["10.1.0.5", "10.1.0.6", "10.1.0.8"])),
        ),
        ("delete", None),
    ];
    let mut rows = Vec::new();
    for (step, body) in steps {
        let started = Instant::now();
        let res = match body {
            Some(b) => {
                http.post(format!("http://{addr}/v1/apply"))
                    .json(&b)
                    .send()
                    .await
            }
            None => {
                http.delete(format!("http://{addr}/v1/services/bench/web"))
                    .send()
                    .await
            }
        }
        .expect("answers");
        let status = res.status();
        let answer: Value = res.json().await.expect("JSON");
        assert!(status.is_success(), "{name} {step}: {status} {answer}");
        let c = &answer["openstackCalls"];
        rows.push(Row {
            api: name,
            step,
            reads: c["reads"].as_u64().unwrap_or(0),
            writes: c["writes"].as_u64().unwrap_or(0),
            waits: c["waits"].as_u64().unwrap_or(0),
            elapsed: started.elapsed(),
        });
    }
    rows
}

/// A Service with `ports` ports (80, 81, ...) and 3 endpoints.
fn with_ports(ports: u16) -> Value {
    let spec: Vec<Value> = (0..ports)
        .map(|i| json!({"name": format!("p{i}"), "port": 80 + i, "targetPort": 8080 + i}))
        .collect();
    let endpoint_ports: Vec<Value> = (0..ports)
        .map(|i| json!({"name": format!("p{i}"), "port": 8080 + i}))
        .collect();
    let addresses: Vec<Value> = ["10.1.0.5", "10.1.0.6", "10.1.0.7"]
        .iter()
        .map(|ip| json!({"ip": ip}))
        .collect();
    json!({
        "service": {"metadata": {"name": "wide", "namespace": "bench"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.43", "ports": spec}},
        "endpoints": {"metadata": {"name": "wide", "namespace": "bench"},
            "subsets": [{"addresses": addresses, "ports": endpoint_ports}]}
    })
}

/// The calls (reads, writes, waits) of each apply of `requests`, in order,
/// on a fresh simulator (200 ms delay); `nested`: a cloud that takes
/// listeners and pools with their children inline, and svc-lbaas told so.
async fn calls_of(requests: &[Value], nested: bool) -> Vec<(u64, u64, u64)> {
    let mut settings = Settings::default();
    settings.octavia_defaults.nested_creates = nested;
    let env = move |k: &str| match k {
        "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS" => Some("200".to_string()),
        "SVC_LBAAS_SIM_NESTED_CREATES" => Some(nested.to_string()),
        _ => None,
    };
    let (app, _sim) = svc_lbaas::startup::build_app(settings, None, &env)
        .await
        .expect("builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for body in requests {
        let res = http
            .post(format!("http://{addr}/v1/apply"))
            .json(body)
            .send()
            .await
            .expect("answers");
        let status = res.status();
        let answer: Value = res.json().await.expect("JSON");
        assert!(status.is_success(), "{status} {answer}");
        let c = &answer["openstackCalls"];
        let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
        out.push((n("reads"), n("writes"), n("waits")));
    }
    out
}

/// A Gateway with 2 listeners (HTTP 80, TCP 5432) and 3 routes: `site`
/// (shop.example.com, `/api` to api), `home` (shop.example.com, `/` to
/// web), `db` (a TCPRoute); `api_prefix` lets a step edit `site`.
fn gateway(api_prefix: &str) -> Value {
    let service = |name: &str| {
        json!({"metadata": {"name": name, "namespace": "bench"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    };
    let slice = |name: &str, ip: &str| {
        json!({"metadata": {"name": format!("{name}-1"), "namespace": "bench",
                "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "endpoints": [{"addresses": [ip]}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    };
    let route = |name: &str, path: &str, backend: &str| {
        json!({"kind": "HTTPRoute", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"parentRefs": [{"name": "edge", "sectionName": "web"}], "hostnames": ["shop.example.com"],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                           "backendRefs": [{"name": backend, "port": 80}]}]}})
    };
    json!({
        "gateway": {"metadata": {"name": "edge", "namespace": "bench"},
            "spec": {"gatewayClassName": "openstack", "listeners": [
                {"name": "web", "port": 80, "protocol": "HTTP"},
                {"name": "db", "port": 5432, "protocol": "TCP"}]}},
        "routes": [
            route("site", api_prefix, "api"),
            route("home", "/", "web"),
            {"kind": "TCPRoute", "metadata": {"name": "db", "namespace": "bench"},
             "spec": {"parentRefs": [{"name": "edge", "sectionName": "db"}],
                      "rules": [{"backendRefs": [{"name": "db", "port": 80}]}]}},
        ],
        "services": [service("api"), service("web"), service("db")],
        "endpointSlices": [slice("api", "10.1.0.5"), slice("web", "10.1.0.6"), slice("db", "10.1.0.7")],
    })
}

/// The calls of a Gateway's create, unchanged re-apply, one route edited,
/// and delete, on a fresh simulator (200 ms delay).
async fn gateway_calls() -> Vec<(&'static str, u64, u64, u64)> {
    let env = |k: &str| (k == "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").then(|| "200".to_string());
    let (app, _sim) = svc_lbaas::startup::build_app(Settings::default(), None, &env)
        .await
        .expect("builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (step, body) in [
        ("create", Some(gateway("/api"))),
        ("unchanged re-apply", Some(gateway("/api"))),
        ("one route edited", Some(gateway("/v2"))),
        ("delete", None),
    ] {
        let res = match body {
            Some(b) => {
                http.post(format!("http://{addr}/v1/gateways/apply"))
                    .json(&b)
                    .send()
                    .await
            }
            None => {
                http.delete(format!("http://{addr}/v1/gateways/bench/edge"))
                    .send()
                    .await
            }
        }
        .expect("answers");
        let status = res.status();
        let answer: Value = res.json().await.expect("JSON");
        assert!(status.is_success(), "gateway {step}: {status} {answer}");
        let c = &answer["openstackCalls"];
        let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
        out.push((step, n("reads"), n("writes"), n("waits")));
    }
    out
}

fn main() {
    let delay_ms = 200;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = runtime.block_on(run(Api::Octavia, delay_ms));
    rows.extend(runtime.block_on(run(Api::NeutronLbaas, delay_ms)));
    println!(
        "apply of a type: LoadBalancer Service, 2 ports x 3 endpoints, simulator delay {delay_ms} ms per write"
    );
    println!(
        "{:<14} {:<22} {:>6} {:>7} {:>6} {:>9}",
        "api", "step", "reads", "writes", "waits", "time"
    );
    for r in &rows {
        println!(
            "{:<14} {:<22} {:>6} {:>7} {:>6} {:>7.0}ms",
            r.api,
            r.step,
            r.reads,
            r.writes,
            r.waits,
            r.elapsed.as_secs_f64() * 1000.0
        );
    }
    let octavia = |step: &str| {
        rows.iter()
            .find(|r| r.api == "octavia" && r.step == step)
            .expect("measured")
    };
    let budget = [
        (
            "create: at most 2 writes and 1 wait",
            octavia("create").writes <= 2 && octavia("create").waits <= 1,
        ),
        (
            "unchanged re-apply: 0 writes",
            octavia("unchanged re-apply").writes == 0,
        ),
        (
            "one endpoint replaced: 1 write per pool (2 pools)",
            octavia("one endpoint replaced").writes == 2,
        ),
    ];
    // A no-op re-apply, right after the create, with 2 and with 8 ports.
    let two = runtime.block_on(calls_of(&[with_ports(2), with_ports(2)], false));
    let eight = runtime.block_on(calls_of(&[with_ports(8), with_ports(8)], false));
    // A port added: 3 ports, then 4.
    let refused = runtime.block_on(calls_of(&[with_ports(3), with_ports(4)], false));
    let nested = runtime.block_on(calls_of(&[with_ports(3), with_ports(4)], true));
    println!(
        "unchanged re-apply, 2 ports: {} reads; 8 ports: {} reads",
        two[1].0, eight[1].0
    );
    println!(
        "port added: {} writes, {} waits (Octavia 19: no children inline); {} writes, {} waits (nested creates taken)",
        refused[1].1, refused[1].2, nested[1].1, nested[1].2
    );
    let budget = budget.into_iter().chain([
        (
            "unchanged re-apply: at most 4 reads, 2 ports",
            two[1].0 <= 4,
        ),
        (
            "unchanged re-apply: at most 4 reads, 8 ports",
            eight[1].0 <= 4,
        ),
        (
            "port added, no children inline: 3 writes and 3 waits",
            refused[1].1 == 3 && refused[1].2 == 3,
        ),
        (
            "port added, nested creates: 1 write and 1 wait",
            nested[1].1 == 1 && nested[1].2 == 1,
        ),
    ]);
    // A Gateway: 2 listeners, 3 routes. Octavia 19 takes no children
    // inline (a policy with rules, a pool with members: 500), so a create
    // writes the load balancer, its floating IP, 3 pools and their 3
    // member sets, 2 listeners, 2 policies (made disabled), their 3 rules
    // (site: host and path; home: host, `/` needing no rule beside it) and
    // the 2 policies enabled once their rules are in: 17 writes, and waits
    // before each write on the locked load balancer and after the last (16). Re-applied unchanged: no write, the tree read in three
    // rounds (the load balancer and floating IPs; listeners and pools;
    // members, policies, then rules): 1 + 1 + 2 + 3 + 2 + 2 = 11 reads.
    // `site` edited: its policy keeps its id, a rule added and one removed.
    let gw = runtime.block_on(gateway_calls());
    for (step, reads, writes, waits) in &gw {
        println!(
            "gateway (2 listeners, 3 routes) {step:<20} {reads:>4} reads {writes:>4} writes {waits:>4} waits"
        );
    }
    let gw_step = |step: &str| *gw.iter().find(|g| g.0 == step).expect("measured");
    let budget = budget.chain([
        ("gateway create: 17 writes, at most 16 waits", {
            let (_, _, w, waits) = gw_step("create");
            w == 17 && waits <= 16
        }),
        ("gateway unchanged re-apply: 0 writes, at most 11 reads", {
            let (_, r, w, _) = gw_step("unchanged re-apply");
            w == 0 && r <= 11
        }),
        (
            "gateway route edited: 2 writes (its policy's new path rule added, the old one removed)",
            {
                let (_, _, w, _) = gw_step("one route edited");
                w == 2
            },
        ),
    ]);
    let mut over = false;
    for (what, ok) in budget {
        println!(
            "{} {what}",
            if ok { "within budget:" } else { "OVER BUDGET:" }
        );
        over |= !ok;
    }
    if over {
        std::process::exit(1);
    }
}
