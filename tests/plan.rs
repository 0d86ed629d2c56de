//! `svc-lbaas plan` as CI pipelines use it: the real binary on real-world
//! manifests, its output shape (snapshots), exit codes and problems.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_svc-lbaas");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with no SVC_LBAAS_* variables from the caller's environment.
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("SVC_LBAAS_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("the binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("writes stdin");
    drop(input);
    child.wait_with_output().expect("the binary exits")
}

fn plan_ok(args: &[&str]) -> Value {
    let out = run(args, &[], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn problem(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().expect("a problem on stderr");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

fn write_temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("svc-lbaas-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes temp file");
    path.display().to_string()
}

#[test]
fn the_api_service_gets_the_seeds_hand_made_load_balancer() {
    let plan = plan_ok(&["plan", &fixture("kubernetes-api.yaml")]);
    insta::assert_json_snapshot!("kubernetes_api", plan);
    let listener = &plan[0]["desired"]["listeners"][0];
    assert_eq!(listener["name"], "default/kubernetes:HTTPS:443");
    assert_eq!(listener["pool"]["lbAlgorithm"], "LEAST_CONNECTIONS");
    assert_eq!(listener["pool"]["members"][0]["protocolPort"], 6443);
}

#[test]
fn kube_dns_with_an_endpoint_slice_gets_three_listeners_of_ready_pods() {
    let plan = plan_ok(&["plan", &fixture("kube-dns.yaml")]);
    insta::assert_json_snapshot!("kube_dns", plan);
    let names: Vec<&str> = plan[0]["desired"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "kube-system/kube-dns:TCP:53",
            "kube-system/kube-dns:TCP:9153",
            "kube-system/kube-dns:UDP:53"
        ]
    );
}

#[test]
fn named_target_ports_and_the_pool_method_with_the_seeds_subnets() {
    let plan = plan_ok(&[
        "plan",
        "--config",
        &fixture("seed.toml"),
        &fixture("web-named-ports.json"),
    ]);
    insta::assert_json_snapshot!("web_named_ports", plan);
    assert_eq!(plan[0]["desired"]["floatingIp"]["method"], "pool");
    assert_eq!(
        plan[0]["desired"]["floatingIp"]["subnetId"],
        "48ddcfec-1b29-411b-be92-8329cc09fc12"
    );
}

#[test]
fn the_user_method_associates_the_given_floating_ip() {
    let plan = plan_ok(&["plan", &fixture("user-floating-ip.yaml")]);
    insta::assert_json_snapshot!("user_floating_ip", plan);
    assert_eq!(plan[0]["desired"]["floatingIp"]["address"], "172.24.4.13");
}

#[test]
fn services_without_a_load_balancer_are_skipped_and_other_kinds_noted() {
    let out = run(&["plan", &fixture("skipped.yaml")], &[], None);
    assert_eq!(out.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    insta::assert_json_snapshot!("skipped", plan);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ignored Deployment shop/web"), "{stderr}");
}

#[test]
fn the_legacy_api_plans_one_object_per_call() {
    let out = run(
        &["plan", &fixture("kubernetes-api.yaml")],
        &[("SVC_LBAAS_API", "neutron-lbaas")],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<String> = plan[0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {} {}", o["op"], o["resource"], o["name"]).replace('"', ""))
        .collect();
    assert_eq!(
        ops,
        [
            "create loadbalancer default/kubernetes",
            "create listener default/kubernetes:HTTPS:443",
            "create pool default/kubernetes:HTTPS:443",
            "create member 192.168.1.2:6443",
        ]
    );
}

#[test]
fn services_come_out_in_input_order_with_endpoints_from_other_files() {
    let svc = write_temp(
        "two.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {clusterIP: 10.2.0.2, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.2.0.1, ports: [{port: 80}]}\n",
    );
    let ep = write_temp(
        "ep.json",
        r#"{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "a"}, "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]}"#,
    );
    let plan = plan_ok(&["plan", &svc, &ep]);
    assert_eq!(plan[0]["service"], "default/b");
    assert_eq!(plan[1]["service"], "default/a");
    assert_eq!(
        plan[1]["desired"]["listeners"][0]["pool"]["members"][0]["address"],
        "10.1.0.1"
    );
    // No Endpoints for b: pools without members.
    assert_eq!(
        plan[0]["desired"]["listeners"][0]["pool"]["members"],
        serde_json::json!([])
    );
}

#[test]
fn standard_input_is_read_for_a_dash() {
    let out = run(
        &["plan", "-"],
        &[],
        Some(
            "apiVersion: v1\nkind: Service\nmetadata: {name: piped}\nspec: {clusterIP: 10.2.0.9, ports: [{port: 53, protocol: UDP}]}\n",
        ),
    );
    assert_eq!(out.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan[0]["desired"]["listeners"][0]["name"],
        "default/piped:UDP:53"
    );
}

#[test]
fn a_malformed_field_exits_1_with_a_problem_naming_file_object_and_field() {
    let bad = write_temp(
        "bad-port.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  ports:\n  - port: 80\n  - port: http\n",
    );
    let out = run(&["plan", &bad], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let p = problem(&out);
    assert_eq!(p["status"], 400);
    assert_eq!(p["file"], bad.as_str());
    assert_eq!(p["object"], "Service shop/web");
    assert_eq!(p["field"], "spec.ports[1].port");
}

#[test]
fn an_invalid_value_exits_1_naming_the_field() {
    let bad = write_temp(
        "bad-protocol.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.2.0.1, ports: [{port: 80, protocol: ICMP}]}\n",
    );
    let out = run(&["plan", &bad], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let p = problem(&out);
    assert_eq!(p["field"], "service.spec.ports[0].protocol");
    assert_eq!(p["object"], "Service default/web");
    assert_eq!(p["type"], "urn:svc-lbaas:problem:invalid-service");
}

#[test]
fn a_bad_annotation_exits_1_naming_the_annotation() {
    let bad = write_temp(
        "bad-annotation.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {loadbalancer.openstack.org/lb-method: FASTEST}\nspec: {clusterIP: 10.2.0.1, ports: [{port: 80}]}\n",
    );
    let out = run(&["plan", &bad], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let p = problem(&out);
    assert_eq!(
        p["field"],
        "service.metadata.annotations[\"loadbalancer.openstack.org/lb-method\"]"
    );
    assert!(p["detail"].as_str().unwrap().contains("FASTEST"));
}

#[test]
fn a_bad_endpoint_address_names_the_endpoints_file() {
    let svc = write_temp(
        "svc-ok.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.2.0.1, ports: [{port: 80}]}\n",
    );
    let ep = write_temp(
        "ep-bad.yaml",
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\nsubsets: [{addresses: [{ip: not-an-ip}], ports: [{port: 80}]}]\n",
    );
    let out = run(&["plan", &svc, &ep], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let p = problem(&out);
    assert_eq!(p["file"], ep.as_str());
    assert_eq!(p["field"], "endpoints.subsets[0].addresses[0].ip");
}

#[test]
fn a_missing_file_exits_1_naming_it() {
    let out = run(&["plan", "/nonexistent/service.yaml"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(problem(&out)["file"], "/nonexistent/service.yaml");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["plan"], &[], None).status.code(), Some(2));
    assert_eq!(
        run(&["plan", "--frobnicate", "x.yaml"], &[], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["launch"], &[], None).status.code(), Some(2));
}

#[test]
fn a_bad_configuration_exits_2_with_a_problem() {
    let cfg = write_temp(
        "bad.toml",
        "[octavia_defaults]\nlb_algorithm = \"FASTEST\"\n",
    );
    let out = run(
        &["plan", "--config", &cfg, &fixture("kube-dns.yaml")],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        problem(&out)["detail"]
            .as_str()
            .unwrap()
            .contains("FASTEST")
    );
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        "---\n",
        "{",
        "[1, 2, 3]",
        "42",
        "kind: Service\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 99999999999}]}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: {port: 80}}\n",
        "apiVersion: v1\nkind: List\nitems: 5\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x, annotations: {a: [1]}}\n",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: x}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: 10.2.0.1, ports: [{port: 80, targetPort: -1}]}\n",
        "\u{feff}apiVersion: v1\nkind: Service\nmetadata: {name: \"\u{1F600}\"}\n",
        "a: &a [*a]\n",
    ];
    for (i, text) in inputs.iter().enumerate() {
        let path = write_temp(&format!("garbage-{i}.yaml"), text);
        let out = run(&["plan", &path], &[], None);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "input {i} {text:?}: exit {code:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code == Some(1) {
            problem(&out);
        }
    }
}

#[test]
fn serve_refuses_to_listen_off_loopback_without_tokens_naming_the_exposed_address() {
    // Only gRPC exposed: the message names the gRPC address, not the REST one.
    let out = run(
        &[
            "serve",
            "--rest-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "0.0.0.0:0",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0.0.0.0:0 (gRPC)"), "{err}");
    assert!(!err.contains("127.0.0.1:0"), "{err}");
    let out = run(
        &[
            "serve",
            "--rest-addr",
            "0.0.0.0:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0.0.0.0:0 (REST)"));
}

#[test]
fn a_subnet_setting_that_is_not_an_id_is_a_configuration_error() {
    let out = run(
        &["plan", &fixture("kube-dns.yaml")],
        &[("SVC_LBAAS_SERVICE_SUBNET", "../../v3/auth/tokens")],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neutron_defaults.service_subnet"), "{err}");
}

#[test]
fn serve_keeps_serving_when_whoever_started_it_closed_its_stdout() {
    use std::io::Read as _;
    // A free port (bound, then let go): the server's stdout, where it would
    // say where it listens, is closed before it can say so.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let rest = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--rest-addr", &rest, "--grpc-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("SVC_LBAAS_") || key.starts_with("OS_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().expect("the binary runs");
    drop(child.stdout.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut answer = String::new();
    while std::time::Instant::now() < deadline && !answer.starts_with("HTTP/1.1 200") {
        std::thread::sleep(std::time::Duration::from_millis(100));
        answer.clear();
        if let Ok(mut conn) = std::net::TcpStream::connect(&rest) {
            let _ =
                conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let _ = conn.read_to_string(&mut answer);
        }
    }
    let exited = child.try_wait().expect("its state");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "the server stopped");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[test]
fn gateway_api_files_plan_the_gateways_load_balancer_with_its_l7_policies_and_statuses() {
    let plans = plan_ok(&["plan", &fixture("gateway.yaml")]);
    let plans = plans.as_array().expect("a list of plans");
    // The three backend Services (ClusterIP) come first, then the Gateway.
    let gateway = plans
        .iter()
        .find(|p| p.get("gateway").is_some())
        .expect("the Gateway's plan");
    assert_eq!(gateway["loadBalancer"]["name"], "gateway:shop/edge");
    let listeners = gateway["loadBalancer"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2);
    let http = listeners.iter().find(|l| l["protocol"] == "HTTP").unwrap();
    // /api and /old are prefixes of one length: the earlier rule first;
    // the redirect excludes nothing (/api takes none of its requests), and
    // / comes last.
    let actions: Vec<&str> = http["l7Policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["action"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["REDIRECT_TO_POOL", "REDIRECT_PREFIX", "REDIRECT_TO_POOL"]
    );
    let redirect = &http["l7Policies"][1];
    assert_eq!(redirect["action"]["code"], 301);
    assert_eq!(redirect["action"]["prefix"]["host"], "new.example.com");
    assert!(
        redirect["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["invert"] == false)
    );
    let tcp = listeners.iter().find(|l| l["protocol"] == "TCP").unwrap();
    assert_eq!(tcp["port"], 5432);
    // The TCPRoute's Service has no EndpointSlice: its pool is empty, the
    // route's backends resolved (a Service without endpoints is no error).
    let ops = gateway["operations"].as_array().unwrap();
    assert_eq!(ops[0], "create load balancer gateway:shop/edge");
    assert!(ops.iter().any(|o| o == "create a floating IP for the VIP"));
    assert_eq!(
        ops.iter()
            .filter(|o| o.as_str().unwrap().starts_with("create L7 policy"))
            .count(),
        3
    );
    let accepted: Vec<&str> = gateway["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["status"]["parents"][0]["conditions"][0]["status"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(accepted, vec!["True", "True"]);
    assert_eq!(
        gateway["gateway"]["status"]["conditions"][0]["status"],
        "True"
    );
}
