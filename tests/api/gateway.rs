//! Gateways end to end (`/v1/gateways/...`), on the simulator and, with
//! `SVC_LBAAS_TEST_CLOUD=real`, on the loopback Octavia 19 with Barbican:
//! one Gateway with HTTP, HTTPS (SNI) and TCP listeners routing by host,
//! path and header as L7 policies in their positions, a refused route, a
//! route edited in place; TLS passthrough and UDP; a
//! cross-namespace backend with and without a ReferenceGrant, tokens that
//! speak only for their namespace, and the Gateway deleted with nothing left.

use super::*;

fn gateway(listeners: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "shop", "generation": 1},
        "spec": {"gatewayClassName": "openstack", "listeners": listeners}})
}

fn class() -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "openstack"},
        "spec": {"controllerName": "svc-lbaas.io/gateway-controller"}})
}

fn http_route(ns: &str, name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["parentRefs"] = json!([{"name": "edge", "namespace": "shop"}]);
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-12-01T00:00:00Z"},
        "spec": spec})
}

fn backend_service(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
}

fn slice(ns: &str, service: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abc"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
}

fn backend(name: &str) -> Value {
    json!([{"name": name, "port": 80}])
}

fn condition<'a>(conditions: &'a Value, kind: &str) -> &'a Value {
    conditions
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {conditions}"))
}

impl App {
    async fn gateway(&self, body: Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            "/v1/gateways/apply",
            Some(body.to_string()),
        )
        .await
    }

    async fn l7policies(&self, listener: &str) -> Vec<Value> {
        let mut list = self
            .cloud(
                reqwest::Method::GET,
                &format!("/load-balancer/v2/lbaas/l7policies?listener_id={listener}"),
                None,
            )
            .await["l7policies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        list.sort_by_key(|p| p["position"].as_u64());
        list
    }

    async fn l7rules(&self, policy: &str) -> Vec<Value> {
        self.cloud(
            reqwest::Method::GET,
            &format!("/load-balancer/v2/lbaas/l7policies/{policy}/rules"),
            None,
        )
        .await["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The site: a HTTP listener on 80 and a TCP one on 5432; routes by host,
/// path prefix and header; a TCPRoute to the database.
fn site(api_prefix: &str) -> Value {
    json!({
        "gateway": gateway(json!([
            {"name": "web", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
            {"name": "websecure", "port": 443, "protocol": "HTTPS", "hostname": "*.example.com",
             "tls": {"certificateRefs": [{"name": "shop-cert"}]}},
            // The same port for one host with its own certificate: SNI.
            {"name": "shop-secure", "port": 443, "protocol": "HTTPS", "hostname": "shop.example.com",
             "tls": {"certificateRefs": [{"name": "shop-only"}]}},
            {"name": "db", "port": 5432, "protocol": "TCP"},
        ])),
        "gatewayClass": class(),
        "tlsSecrets": [tls_secret("shop-cert", ""), tls_secret("shop-only", "\n")],
        "routes": [
            http_route("shop", "site", json!({
                "hostnames": ["shop.example.com"],
                "rules": [
                    {"backendRefs": backend("web")},
                    {"matches": [{"path": {"type": "PathPrefix", "value": api_prefix}}], "backendRefs": backend("api")},
                    {"matches": [{"path": {"type": "PathPrefix", "value": api_prefix},
                                  "headers": [{"name": "X-Canary", "value": "yes"}]}],
                     "backendRefs": [{"name": "api", "port": 80, "weight": 1}, {"name": "web", "port": 80, "weight": 3}]},
                ]})),
            {"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute",
             "metadata": {"name": "db", "namespace": "shop"},
             "spec": {"parentRefs": [{"name": "edge", "sectionName": "db"}],
                      "rules": [{"backendRefs": [{"name": "db", "port": 80}]}]}},
            // Octavia cannot match a method: refused whole, the rest served.
            http_route("shop", "bad", json!({
                "hostnames": ["bad.example.com"],
                "rules": [{"matches": [{"method": "GET"}], "backendRefs": backend("web")}]})),
        ],
        "services": [backend_service("shop", "web"), backend_service("shop", "api"), backend_service("shop", "db")],
        "endpointSlices": [
            slice("shop", "web", &["10.1.0.5", "10.1.0.6"]),
            slice("shop", "api", &["10.1.0.7"]),
            slice("shop", "db", &["10.1.0.8"]),
        ],
    })
}

#[tokio::test]
async fn a_gateway_routes_by_host_path_and_header_converges_and_is_deleted_whole() {
    let app = spawn_app().await;
    let a = app.gateway(site("/api")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["action"], "created");
    let status = &a.body["gateway"]["status"];
    assert_eq!(
        condition(&status["conditions"], "Accepted")["status"],
        "True",
        "{status}"
    );
    assert_eq!(
        condition(&status["conditions"], "Programmed")["status"],
        "True",
        "{status}"
    );
    let address = status["addresses"][0]["value"]
        .as_str()
        .expect("an address")
        .to_string();
    assert_eq!(status["addresses"][0]["type"], "IPAddress");
    let fip = a.body["loadBalancer"]["floatingIp"]
        .as_str()
        .expect("a floating IP");
    assert_eq!(address, fip, "the floating IP is the Gateway's address");
    let attached: Vec<i64> = status["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attachedRoutes"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attached,
        vec![1, 1, 1, 1],
        "the refused route is not counted"
    );
    let bad = a.body["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "bad")
        .expect("the refused route's status");
    let refused = condition(&bad["status"]["parents"][0]["conditions"], "Accepted");
    assert_eq!(
        (refused["status"].as_str(), refused["reason"].as_str()),
        (Some("False"), Some("UnsupportedValue")),
        "{bad}"
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.rules[0].matches[0].method"),
        "{refused}"
    );
    for r in a.body["routes"].as_array().unwrap() {
        if r["name"] == "bad" {
            continue;
        }
        let c = &r["status"]["parents"][0];
        assert_eq!(c["controllerName"], "svc-lbaas.io/gateway-controller");
        assert_eq!(
            condition(&c["conditions"], "Accepted")["status"],
            "True",
            "{r}"
        );
        assert_eq!(
            condition(&c["conditions"], "ResolvedRefs")["status"],
            "True",
            "{r}"
        );
    }

    // In the cloud: one load balancer named for the Gateway; its HTTP
    // listener has no default pool and three policies in precedence order
    // (the header match first, then the longer prefix, then /), the TCP
    // listener the database as its default pool.
    let lbs = app.load_balancers().await;
    assert_eq!(lbs.len(), 1);
    assert_eq!(lbs[0]["name"], "gateway:shop/edge");
    let listeners = app.listeners().await;
    let http = listeners
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "HTTP")
        .expect("an HTTP listener");
    assert_eq!(http["protocol_port"], 80);
    assert!(http["default_pool_id"].is_null());
    let tcp = listeners
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "TCP")
        .expect("a TCP listener");
    assert_eq!(tcp["protocol_port"], 5432);
    assert!(tcp["default_pool_id"].is_string());
    let https = listeners
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "TERMINATED_HTTPS")
        .expect("a TERMINATED_HTTPS listener");
    assert_eq!(https["protocol_port"], 443);
    // One listener for both HTTPS listeners of port 443: the first one's
    // certificate the default, the host's one by SNI.
    assert!(https["default_tls_container_ref"].is_string(), "{https}");
    assert_eq!(
        https["sni_container_refs"].as_array().unwrap().len(),
        1,
        "{https}"
    );
    assert_ne!(
        https["default_tls_container_ref"],
        https["sni_container_refs"][0]
    );
    assert_eq!(
        app.l7policies(https["id"].as_str().unwrap()).await.len(),
        3,
        "the route serves HTTPS too"
    );
    let policies = app.l7policies(http["id"].as_str().unwrap()).await;
    assert_eq!(policies.len(), 3, "{policies:#?}");
    let positions: Vec<u64> = policies
        .iter()
        .map(|p| p["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, vec![1, 2, 3]);
    assert!(policies.iter().all(|p| p["action"] == "REDIRECT_TO_POOL"));
    let mut shapes = Vec::new();
    for p in &policies {
        let mut rules: Vec<String> = app
            .l7rules(p["id"].as_str().unwrap())
            .await
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["type"].as_str().unwrap(),
                    r["compare_type"].as_str().unwrap(),
                    r["value"].as_str().unwrap()
                )
            })
            .collect();
        rules.sort();
        shapes.push(rules);
    }
    let host = r"HOST_NAME REGEX ^shop\.example\.com(:[0-9]+)?$".to_string();
    assert_eq!(
        shapes,
        vec![
            vec![
                "HEADER EQUAL_TO yes".to_string(),
                host.clone(),
                "PATH REGEX ^/api(/|$)".into()
            ],
            vec![host.clone(), "PATH REGEX ^/api(/|$)".into()],
            vec![host.clone()],
        ]
    );
    // The canary rule's pool: web's two endpoints weigh 3/2 each, api's
    // one 1: scaled to 256.
    let pools = a.body["loadBalancer"]["pools"].as_array().unwrap();
    let canary = pools
        .iter()
        .find(|p| p["name"].as_str().unwrap().ends_with(":rule2"))
        .expect("the canary rule's pool");
    let mut weights: Vec<(String, u64)> = canary["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().to_string(),
                m["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    weights.sort();
    assert_eq!(
        weights,
        vec![
            ("10.1.0.5".into(), 256),
            ("10.1.0.6".into(), 256),
            ("10.1.0.7".into(), 171)
        ]
    );

    // Again: nothing to do.
    let again = app.gateway(site("/api")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    assert_eq!(again.body["openstackCalls"]["writes"], 0);

    // The route edited in place: on each HTTP(S) listener the two /api
    // policies get the /v2 rule and lose the /api one (the same policies,
    // their rules changed); nothing else is touched.
    let before: Vec<Value> = policies.iter().map(|p| p["id"].clone()).collect();
    let edited = app.gateway(site("/v2")).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    assert_eq!(edited.body["action"], "updated");
    let ops: Vec<String> = edited.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops.len(), 4, "{ops:#?}");
    assert!(
        ops.iter()
            .all(|o| o.starts_with("edit L7 policy") && o.ends_with("1 rule(s) added, 1 removed")),
        "{ops:#?}"
    );
    assert_eq!(
        edited.body["openstackCalls"]["writes"], 8,
        "a rule added and one removed a policy"
    );
    let policies = app.l7policies(http["id"].as_str().unwrap()).await;
    let after: Vec<Value> = policies.iter().map(|p| p["id"].clone()).collect();
    assert_eq!(after, before, "the same policies, in the same positions");
    let got = app
        .send(reqwest::Method::GET, "/v1/gateways/shop/edge", None)
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let read_back = &got.body["loadBalancer"]["listeners"];
    let http_view = read_back
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "HTTP")
        .unwrap();
    assert_eq!(http_view["l7Policies"].as_array().unwrap().len(), 3);
    assert!(
        http_view["l7Policies"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["value"] == "^/v2(/|$)"),
        "{http_view}"
    );

    // Deleted: the floating IP and the load balancer with everything under it.
    let d = app
        .send(reqwest::Method::DELETE, "/v1/gateways/shop/edge", None)
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["action"], "deleted");
    let containers = d.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o.as_str()
                .is_some_and(|o| o.starts_with("delete certificate container"))
        })
        .count();
    assert_eq!(containers, 2, "{}", d.body);
    assert!(app.load_balancers().await.is_empty());
    assert!(app.floating_ips().await.is_empty());
    let again = app
        .send(reqwest::Method::DELETE, "/v1/gateways/shop/edge", None)
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["action"], "absent");
    assert_eq!(again.body["operations"], json!([]));
    let gone = app
        .send(reqwest::Method::GET, "/v1/gateways/shop/edge", None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}

#[tokio::test]
async fn a_backend_of_another_namespace_needs_its_reference_grant() {
    let app = spawn_app().await;
    let body = |grants: Value| {
        json!({
            "gateway": gateway(json!([{"name": "web", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "All"}}}])),
            "routes": [http_route("evil", "steal", json!({
                "rules": [{"backendRefs": [{"name": "api", "namespace": "shop", "port": 80}]}]}))],
            "referenceGrants": grants,
            "services": [backend_service("shop", "api")],
            // An address outside the pod subnet never becomes a member.
            "endpointSlices": [slice("shop", "api", &["10.1.0.7", "192.0.2.99"])],
        })
    };
    let a = app.gateway(body(json!([]))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let parent = &a.body["routes"][0]["status"]["parents"][0];
    assert_eq!(
        condition(&parent["conditions"], "Accepted")["status"],
        "True"
    );
    let resolved = condition(&parent["conditions"], "ResolvedRefs");
    assert_eq!(
        (resolved["status"].as_str(), resolved["reason"].as_str()),
        (Some("False"), Some("RefNotPermitted"))
    );
    let pools = app.pools().await;
    let members = app
        .cloud(
            reqwest::Method::GET,
            &format!(
                "/load-balancer/v2/lbaas/pools/{}/members",
                pools[0]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        members["members"],
        json!([]),
        "no member of shop without a grant"
    );

    let grant = json!([{"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": "let-evil-in", "namespace": "shop"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "evil"}],
                 "to": [{"group": "", "kind": "Service", "name": "api"}]}}]);
    let b = app.gateway(body(grant)).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let parent = &b.body["routes"][0]["status"]["parents"][0];
    assert_eq!(
        condition(&parent["conditions"], "ResolvedRefs")["status"],
        "True"
    );
    let members = app
        .cloud(
            reqwest::Method::GET,
            &format!(
                "/load-balancer/v2/lbaas/pools/{}/members",
                pools[0]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(members["members"][0]["address"], "10.1.0.7");
    assert_eq!(members["members"].as_array().unwrap().len(), 1, "{members}");
    app.send(reqwest::Method::DELETE, "/v1/gateways/shop/edge", None)
        .await;
}

#[tokio::test]
async fn a_gateway_exposes_its_load_balancers_metrics_on_a_prometheus_listener() {
    let app = spawn_app_with_settings(|s| {
        s.octavia_defaults.prometheus_allowed_cidrs = vec!["10.9.0.0/24".parse().unwrap()];
    })
    .await;
    let key = "svc-lbaas.io/prometheus-listener-port";
    let body = |port: &str| {
        let mut gw = gateway(json!([{"name": "web", "port": 80, "protocol": "HTTP"},
            {"name": "alt", "port": 8080, "protocol": "HTTP"}]));
        gw["metadata"]["annotations"] = json!({key: port});
        json!({"gateway": gw, "gatewayClass": class()})
    };
    // A port one of the Gateway's listeners takes: refused, naming the
    // annotation in the Gateway's words, nothing made.
    for port in ["80", "8080"] {
        let taken = app.gateway(body(port)).await;
        assert_eq!(
            taken.status,
            StatusCode::BAD_REQUEST,
            "{port}: {}",
            taken.body
        );
        assert_eq!(
            taken.body["field"],
            format!("gateway.metadata.annotations[\"{key}\"]"),
            "{}",
            taken.body
        );
    }
    assert!(app.load_balancers().await.is_empty(), "nothing half-made");
    let a = app.gateway(body("9100")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let listeners = a.body["loadBalancer"]["listeners"].as_array().unwrap();
    let metrics = listeners
        .iter()
        .find(|l| l["protocol"] == "PROMETHEUS")
        .unwrap_or_else(|| panic!("no PROMETHEUS listener: {}", a.body));
    assert_eq!(metrics["port"], 9100, "{metrics}");
    assert_eq!(metrics["allowedCidrs"], json!(["10.9.0.0/24"]), "{metrics}");
    assert!(
        a.body["operations"].as_array().unwrap().iter().any(|o| o
            .as_str()
            .is_some_and(|o| o.contains("PROMETHEUS") && o.contains("10.9.0.0/24"))),
        "{}",
        a.body
    );
    let listed = app
        .cloud(
            reqwest::Method::GET,
            &format!(
                "/load-balancer/v2/lbaas/listeners/{}",
                metrics["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        listed["listener"]["allowed_cidrs"],
        json!(["10.9.0.0/24"]),
        "{listed}"
    );
    assert!(listed["listener"]["default_pool_id"].is_null());
    // Unchanged: no write; another port: the listener moves.
    let again = app.gateway(body("9100")).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    let moved = app.gateway(body("9200")).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let ports: Vec<u64> = moved.body["loadBalancer"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["protocol"] == "PROMETHEUS")
        .filter_map(|l| l["port"].as_u64())
        .collect();
    assert_eq!(ports, [9200], "{}", moved.body);
    app.send(reqwest::Method::DELETE, "/v1/gateways/shop/edge", None)
        .await;
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn a_namespace_token_speaks_only_for_its_namespace() {
    let tokens = svc_lbaas::api::auth::Tokens::parse(
        "[[tokens]]\nname = \"shop-team\"\ntoken = \"shop-token-0123456789\"\nnamespaces = [\"shop\"]\n\
         [[tokens]]\nname = \"cluster\"\ntoken = \"cluster-token-0123456789\"\nnamespaces = [\"*\"]\n",
    )
    .expect("tokens");
    let app = spawn_app_with(Some(tokens)).await;
    let send = |token: &'static str, body: Value| {
        let http = app.http.clone();
        let url = format!("http://{}/v1/gateways/plan", app.addr);
        async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("answers");
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let mut body = site("/api");
    body["routes"][0]["metadata"]["namespace"] = json!("evil");
    let (status, problem) = send("shop-token-0123456789", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["field"], "routes[0]", "{problem}");
    let mut labels = site("/api");
    labels["namespaces"] = json!([{"metadata": {"name": "shop", "labels": {"gateway": "yes"}}}]);
    let (status, problem) = send("shop-token-0123456789", labels.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["field"], "namespaces");
    let (status, plan) = send("cluster-token-0123456789", labels).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["action"], "planned");
    assert!(
        app.load_balancers().await.is_empty(),
        "a plan writes nothing"
    );
}

#[tokio::test]
async fn malformed_gateway_requests_are_problems_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        ("not json", None),
        ("{}", Some("gateway")),
        (
            r#"{"gateway": {"metadata": {"name": "Bad_Name"}, "spec": {"gatewayClassName": "x"}}}"#,
            Some("gateway.metadata.name"),
        ),
        (
            r#"{"gateway": {"metadata": {"name": "g"}, "spec": {}}}"#,
            Some("gateway.spec"),
        ),
        (
            r#"{"gateway": {"metadata": {"name": "g"}, "spec": {"gatewayClassName": "x"}}, "routes": [{"kind": "GRPCRoute"}]}"#,
            Some("routes[0]"),
        ),
        (
            r#"{"gateway": {"metadata": {"name": "g"}, "spec": {"gatewayClassName": "x"}}, "routes": {}}"#,
            Some("routes"),
        ),
        (
            r#"{"gateway": {"metadata": {"name": "g"}, "spec": {"gatewayClassName": "x"}}, "extra": 1}"#,
            Some("extra"),
        ),
    ];
    for (body, field) in cases {
        let a = app
            .send(
                reqwest::Method::POST,
                "/v1/gateways/apply",
                Some(body.to_string()),
            )
            .await;
        assert!(
            a.status.is_client_error(),
            "{body}: {} {}",
            a.status,
            a.body
        );
        if let Some(f) = field {
            let got = a.body["field"].as_str().unwrap_or_default();
            assert!(
                got.starts_with(f),
                "{body}: field {got:?}, wanted {f}: {}",
                a.body
            );
        }
    }
    let bad_path = app
        .send(reqwest::Method::GET, "/v1/gateways/Bad_NS/edge", None)
        .await;
    assert_eq!(
        bad_path.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_path.body
    );
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn a_gateway_of_another_controllers_class_is_left_alone() {
    let app = spawn_app().await;
    let mut body = site("/api");
    body["gatewayClass"]["spec"]["controllerName"] = json!("example.com/other");
    let a = app.gateway(body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["action"], "ignored");
    assert_eq!(a.body["operations"], json!([]));
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn tls_passthrough_and_udp_listeners_carry_one_route_each_and_services_syncs_leave_them() {
    let app = spawn_app().await;
    let l4 = |kind: &str, name: &str, section: &str, service: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": kind,
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"parentRefs": [{"name": "edge", "sectionName": section}],
                     "rules": [{"backendRefs": [{"name": service, "port": 80}]}]}})
    };
    let mut dns = backend_service("shop", "dns");
    dns["spec"]["ports"][0]["protocol"] = json!("UDP");
    let mut dns_slice = slice("shop", "dns", &["10.1.0.9"]);
    dns_slice["ports"][0]["protocol"] = json!("UDP");
    let body = json!({
        "gateway": gateway(json!([
            {"name": "tls", "port": 8443, "protocol": "TLS", "tls": {"mode": "Passthrough"}},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ])),
        "routes": [
            l4("TLSRoute", "tls", "tls", "web"),
            l4("TLSRoute", "tls-too", "tls", "web"),
            l4("UDPRoute", "dns", "dns", "dns"),
        ],
        "services": [backend_service("shop", "web"), dns],
        "endpointSlices": [slice("shop", "web", &["10.1.0.5"]), dns_slice],
    });
    let a = app.gateway(body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let accepted = |name: &str| {
        let r = a.body["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap();
        condition(&r["status"]["parents"][0]["conditions"], "Accepted").clone()
    };
    assert_eq!(accepted("tls")["status"], "True");
    assert_eq!(accepted("dns")["status"], "True");
    let second = accepted("tls-too");
    assert_eq!(
        (second["status"].as_str(), second["reason"].as_str()),
        (Some("False"), Some("UnsupportedValue"))
    );
    let listeners = app.listeners().await;
    let mut shapes: Vec<(String, u64, bool)> = listeners
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["protocol"].as_str().unwrap().to_string(),
                l["protocol_port"].as_u64().unwrap(),
                l["default_pool_id"].is_string(),
            )
        })
        .collect();
    shapes.sort();
    assert_eq!(
        shapes,
        vec![("TCP".into(), 8443, true), ("UDP".into(), 53, true)]
    );
    let pools = app.pools().await;
    let udp = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["protocol"] == "UDP")
        .expect("a UDP pool");
    let members = app
        .cloud(
            reqwest::Method::GET,
            &format!(
                "/load-balancer/v2/lbaas/pools/{}/members",
                udp["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(members["members"][0]["address"], "10.1.0.9");
    assert_eq!(members["members"][0]["protocol_port"], 8080);

    // A sync of Services that lists none collects no Gateway's objects.
    let sync = app
        .send(
            reqwest::Method::POST,
            "/v1/sync?orphansOnly=true",
            Some(json!({"apiVersion": "v1", "kind": "List", "items": []}).to_string()),
        )
        .await;
    assert_eq!(sync.status, StatusCode::OK, "{}", sync.body);
    assert_eq!(app.load_balancers().await.len(), 1);
    assert_eq!(app.floating_ips().await.len(), 1);
    let again = app.gateway(body).await;
    assert_eq!(again.body["action"], "unchanged", "{}", again.body);
    app.send(reqwest::Method::DELETE, "/v1/gateways/shop/edge", None)
        .await;
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn grpc_applies_plans_reads_and_deletes_gateways_over_the_same_core() {
    use svc_lbaas::api::grpc::pb::{
        GatewayDeleteRequest, GatewayKey, GatewayRequest, translator_client::TranslatorClient,
    };
    use svc_lbaas::api::grpc::{json_to_struct, struct_to_json};
    let app = spawn_app().await;
    let mut client = TranslatorClient::connect(app.grpc.clone()).await.unwrap();
    let request = |wait| GatewayRequest {
        request: Some(json_to_struct(&site("/api"))),
        wait,
        timeout_s: None,
    };
    let plan = client
        .plan_gateway(request(None))
        .await
        .unwrap()
        .into_inner();
    let plan = struct_to_json(plan.result.as_ref().unwrap());
    assert_eq!(plan["action"], "planned");
    assert!(plan["operations"].as_array().unwrap().len() > 5, "{plan}");
    assert!(app.load_balancers().await.is_empty());
    let applied = client
        .apply_gateway(request(Some(true)))
        .await
        .unwrap()
        .into_inner();
    assert!(applied.converged);
    let result = struct_to_json(applied.result.as_ref().unwrap());
    assert_eq!(result["action"], "created");
    let got = client
        .get_gateway(GatewayKey {
            namespace: "shop".into(),
            name: "edge".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let got = struct_to_json(got.result.as_ref().unwrap());
    assert_eq!(got["loadBalancer"]["name"], "gateway:shop/edge");
    // Malformed: the problem names the field, as REST's.
    let bad = client
        .apply_gateway(GatewayRequest {
            request: Some(json_to_struct(&json!({"routes": []}))),
            wait: None,
            timeout_s: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("gateway"), "{bad:?}");
    let deleted = client
        .delete_gateway(GatewayDeleteRequest {
            namespace: "shop".into(),
            name: "edge".into(),
            wait: None,
            timeout_s: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        struct_to_json(deleted.result.as_ref().unwrap())["action"],
        "deleted"
    );
    assert!(app.load_balancers().await.is_empty());
}

#[tokio::test]
async fn a_gateway_sync_collects_what_gateways_not_listed_left_and_nothing_else() {
    let app = spawn_app_with_settings(|s| s.cluster.orphan_grace_s = 0).await;
    let a = app.gateway(site("/api")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let sync = |body: Value, query: &'static str| {
        let app = &app;
        async move {
            app.send(
                reqwest::Method::POST,
                &format!("/v1/gateways/sync{query}"),
                Some(body.to_string()),
            )
            .await
        }
    };
    let listed = sync(
        json!({"gateways": [{"namespace": "shop", "name": "edge"}]}),
        "",
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["orphans"], json!([]));
    let dry = sync(json!({"gateways": []}), "?dryRun=true").await;
    assert_eq!(
        dry.body["orphans"][0]["gateway"], "shop/edge",
        "{}",
        dry.body
    );
    assert_eq!(dry.body["orphans"][0]["action"], "would delete");
    assert_eq!(
        app.load_balancers().await.len(),
        1,
        "a dry run writes nothing"
    );
    let bad = sync(
        json!({"gateways": [{"namespace": "Shop!", "name": "edge"}]}),
        "",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["field"], "gateways[0]");
    // A Service's load balancer is never a Gateway's orphan.
    let svc = app
        .apply(json!({"service": service("LoadBalancer", one_port(), json!({})), "endpoints": endpoints(&["10.1.0.5"])}))
        .await;
    assert_eq!(svc.status, StatusCode::OK, "{}", svc.body);
    let collected = sync(json!({"gateways": []}), "").await;
    assert_eq!(
        collected.body["orphans"][0]["action"], "deleted",
        "{}",
        collected.body
    );
    let names: Vec<String> = app
        .load_balancers()
        .await
        .iter()
        .map(|lb| lb["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["shop/web"]);
    assert_eq!(
        app.floating_ips().await.len(),
        1,
        "the Gateway's floating IP went with it"
    );
    app.send(reqwest::Method::DELETE, "/v1/services/shop/web", None)
        .await;
}

/// A Gateway's create takes part in a burst's ordering as a Service's
/// does (issue #28): its floating IP waits for the load balancer creates
/// begun before it, and its own create, marked under way, holds back the
/// floating IPs of the Services begun before it was answered.
#[tokio::test]
async fn a_gateways_create_and_floating_ip_keep_a_bursts_order_with_services() {
    // Each create answered 900 ms late; three sent 300 ms apart: all three
    // begun before the first answer.
    let Some(app) = with_slow_creates(900).await else {
        return;
    };
    let gateway_at = |name: &'static str, after_ms: u64| {
        let app = &app;
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(after_ms)).await;
            let mut g = gateway(json!([{"name": "web", "port": 80, "protocol": "HTTP"}]));
            g["metadata"]["name"] = json!(name);
            let mut route = http_route(
                "shop",
                name,
                json!({"rules": [{"backendRefs": backend("web")}]}),
            );
            route["spec"]["parentRefs"][0]["name"] = json!(name);
            app.gateway(json!({
                "gateway": g,
                "gatewayClass": class(),
                "routes": [route],
                "services": [backend_service("shop", "web")],
                "endpointSlices": [slice("shop", "web", &["10.1.0.9"])],
            }))
            .await
        }
    };
    // The Gateway second: its floating IP waits for the Service sent after
    // it. The Gateway last: the first Service's floating IP waits for it.
    for (round, gateway_slot) in [(0u64, 1u64), (1, 2)] {
        reset_journal(&app).await;
        let name = ["edge-a", "edge-b"][round as usize];
        // The two Services in the other slots: (name, slot).
        let others: Vec<(String, u64)> = (0..3u64)
            .filter(|slot| *slot != gateway_slot)
            .map(|slot| (format!("web-{round}-{slot}"), slot))
            .collect();
        let ((first, at_first), (second, at_second)) = (&others[0], &others[1]);
        let (one, two, edge) = tokio::join!(
            apply_after(&app, first, 60 + 3 * round + at_first, at_first * 300),
            apply_after(&app, second, 60 + 3 * round + at_second, at_second * 300),
            gateway_at(name, gateway_slot * 300)
        );
        for a in [&one, &two, &edge] {
            assert_eq!(a.body["action"], "created", "round {round}: {}", a.body);
        }
        assert!(
            edge.body["loadBalancer"]["floatingIp"].is_string(),
            "{}",
            edge.body
        );
        // All three creates, the Gateway's among them, were begun before
        // the first was answered, so before any floating IP's wait: every
        // floating IP POST comes after the last of them was answered.
        assert_floating_ips_after_earlier_creates(&journal(&app).await, 3);
    }
}
