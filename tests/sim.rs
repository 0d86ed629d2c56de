//! The simulated OpenStack through HTTP, as a client sees it: Keystone tokens,
//! Octavia's status machine and shapes, Neutron's IPAM, floating IPs and tags,
//! faults and call counters, the legacy Neutron LBaaS paths. Each test runs
//! its own simulator on 127.0.0.1:0. (Its fidelity to real clients is
//! tests/sim/fidelity.py's: python-openstackclient and python-octaviaclient.)

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use svc_lbaas::sim::{self, RunningSim, SimConfig};

struct Client {
    http: reqwest::Client,
    sim: RunningSim,
    token: String,
}

struct Answer {
    status: StatusCode,
    body: Value,
    request_id: Option<String>,
}

async fn spawn_sim(delay: Duration) -> RunningSim {
    spawn_with(SimConfig {
        provisioning_delay: delay,
        ..Default::default()
    })
    .await
}

async fn spawn_with(config: SimConfig) -> RunningSim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds a loopback port");
    sim::spawn(listener, config).await.expect("serves")
}

fn password_auth(password: &str, project: &str) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
    }})
}

impl Client {
    async fn new(delay: Duration) -> Client {
        Client::on(spawn_sim(delay).await).await
    }

    async fn on(sim: RunningSim) -> Client {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{}/auth/tokens", sim.auth_url()))
            .json(&password_auth("admin", "admin"))
            .send()
            .await
            .expect("keystone answers");
        assert_eq!(res.status(), StatusCode::CREATED);
        let token = res
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_string();
        Client { http, sim, token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.state.base_url)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("x-auth-token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the simulator answers");
        let status = res.status();
        let request_id = res
            .headers()
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            request_id,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    fn seed(&self) -> &sim::Seed {
        &self.sim.state.seed
    }

    async fn create_lb(&self, body: Value) -> Answer {
        self.post(
            "/load-balancer/v2/lbaas/loadbalancers",
            json!({"loadbalancer": body}),
        )
        .await
    }

    async fn lb(&self, id: &str) -> Value {
        self.get(&format!("/load-balancer/v2/lbaas/loadbalancers/{id}"))
            .await
            .body["loadbalancer"]
            .clone()
    }
}

const LB: &str = "/load-balancer/v2/lbaas";

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn keystone_issues_scoped_tokens_with_a_catalog_pointing_back_here() {
    let sim = spawn_sim(Duration::ZERO).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/auth/tokens", sim.auth_url()))
        .json(&password_auth("admin", "admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("x-subject-token"));
    let body: Value = res.json().await.unwrap();
    let catalog = body["token"]["catalog"].as_array().unwrap();
    let url_of = |kind: &str| {
        catalog.iter().find(|e| e["type"] == kind).unwrap()["endpoints"][0]["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        url_of("load-balancer"),
        format!("{}/load-balancer", sim.state.base_url)
    );
    assert_eq!(url_of("network"), format!("{}/network", sim.state.base_url));
    assert_eq!(body["token"]["project"]["name"], "admin");
    let version: Value = http
        .get(sim.auth_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"]["id"], "v3.14");
}

#[tokio::test]
async fn wrong_credentials_are_401_and_application_credentials_work() {
    let sim = spawn_sim(Duration::ZERO).await;
    let http = reqwest::Client::new();
    let url = format!("{}/auth/tokens", sim.auth_url());
    for body in [
        password_auth("wrong", "admin"),
        password_auth("admin", "other"),
    ] {
        let res = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["error"]["code"], 401);
    }
    let app = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": sim::APP_CREDENTIAL_ID, "secret": sim::APP_CREDENTIAL_SECRET}}}});
    let res = http.post(&url).json(&app).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert!(body["token"]["catalog"].is_array());
}

#[tokio::test]
async fn calls_without_a_valid_token_are_401() {
    let c = Client::new(Duration::ZERO).await;
    let res = c
        .http
        .get(c.url("/network/v2.0/networks"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .http
        .get(c.url("/network/v2.0/networks"))
        .header("x-auth-token", "made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.get("/network/v2.0/networks").await.status, StatusCode::OK);
    // Fault injection: every token expires now.
    let res = c
        .http
        .post(c.url("/sim/faults/expire-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get("/network/v2.0/networks").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let sim = spawn_with(SimConfig {
        token_ttl: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let c = Client::on(sim).await;
    assert_eq!(
        c.get("/network/v2.0/networks").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let c = Client::new(Duration::ZERO).await;
    for path in [
        "/network/v2.0/networks",
        "/network/v2.0/ports/nope",
        "/load-balancer/v2/lbaas/loadbalancers",
    ] {
        let a = c.get(path).await;
        assert!(
            a.request_id
                .as_deref()
                .is_some_and(|r| r.starts_with("req-")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_write_while_pending_is_409_in_octavias_shape() {
    let c = Client::new(Duration::from_secs(3600)).await;
    let lb = c
        .create_lb(json!({"name": "lb", "vip_subnet_id": c.seed().service_subnet}))
        .await;
    assert_eq!(lb.status, StatusCode::CREATED);
    assert_eq!(
        lb.body["loadbalancer"]["provisioning_status"],
        "PENDING_CREATE"
    );
    let lb_id = id(&lb.body["loadbalancer"]);
    let l = c
        .post(
            &format!("{LB}/listeners"),
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(l.status, StatusCode::CONFLICT);
    assert_eq!(l.body["faultcode"], "Client");
    assert_eq!(
        l.body["faultstring"],
        format!("Load Balancer {lb_id} is immutable and cannot be updated.")
    );
    assert!(l.body.get("debuginfo").is_some());
    let d = c.delete(&format!("{LB}/loadbalancers/{lb_id}")).await;
    assert_eq!(d.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn writes_settle_to_active_after_the_delay() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c
        .create_lb(json!({"name": "lb", "vip_subnet_id": c.seed().service_subnet, "tags": ["a"]}))
        .await;
    assert_eq!(
        lb.body["loadbalancer"]["provisioning_status"],
        "PENDING_CREATE"
    );
    let lb_id = id(&lb.body["loadbalancer"]);
    let now = c.lb(&lb_id).await;
    assert_eq!(now["provisioning_status"], "ACTIVE");
    assert_eq!(now["operating_status"], "ONLINE");
    let l = c
        .post(
            &format!("{LB}/listeners"),
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(l.status, StatusCode::CREATED);
    assert_eq!(l.body["listener"]["provisioning_status"], "PENDING_CREATE");
    assert_eq!(c.lb(&lb_id).await["provisioning_status"], "ACTIVE");
}

fn populated(c: &Client) -> Value {
    json!({
        "name": "shop/web", "vip_subnet_id": c.seed().service_subnet, "vip_address": "10.2.0.42",
        "tags": ["svc-lbaas"],
        "listeners": [{
            "name": "shop/web:TCP:80", "protocol": "TCP", "protocol_port": 80, "allowed_cidrs": ["10.0.0.0/8"],
            "default_pool": {
                "name": "shop/web:TCP:80", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
                "session_persistence": {"type": "SOURCE_IP"},
                "members": [
                    {"address": "10.1.0.5", "protocol_port": 8080, "subnet_id": c.seed().pod_subnet},
                    {"address": "10.1.0.6", "protocol_port": 8080, "subnet_id": c.seed().pod_subnet}
                ],
                "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 1}
            }
        }, {
            "name": "shop/web:UDP:53", "protocol": "UDP", "protocol_port": 53,
            "default_pool": {"name": "shop/web:UDP:53", "protocol": "UDP", "lb_algorithm": "SOURCE_IP"}
        }]
    })
}

#[tokio::test]
async fn a_fully_populated_create_builds_the_whole_tree() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c.create_lb(populated(&c)).await;
    assert_eq!(lb.status, StatusCode::CREATED, "{}", lb.body);
    let doc = &lb.body["loadbalancer"];
    assert_eq!(doc["vip_address"], "10.2.0.42");
    assert_eq!(doc["listeners"].as_array().unwrap().len(), 2);
    let lb_id = id(doc);
    let status = c
        .get(&format!("{LB}/loadbalancers/{lb_id}/status"))
        .await
        .body;
    let tree = &status["statuses"]["loadbalancer"];
    assert_eq!(tree["provisioning_status"], "ACTIVE");
    let tcp = tree["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "shop/web:TCP:80")
        .unwrap();
    let pool = &tcp["pools"][0];
    assert_eq!(pool["members"].as_array().unwrap().len(), 2);
    assert_eq!(pool["members"][0]["operating_status"], "ONLINE");
    assert_eq!(pool["health_monitor"]["type"], "TCP");
    let listeners = c
        .get(&format!("{LB}/listeners?loadbalancer_id={lb_id}"))
        .await
        .body;
    let allowed: Vec<&Value> = listeners["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["allowed_cidrs"])
        .collect();
    assert!(allowed.contains(&&json!(["10.0.0.0/8"])));
}

#[tokio::test]
async fn a_fully_populated_create_may_name_top_level_pools() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c
        .create_lb(json!({
            "name": "lb", "vip_subnet_id": c.seed().service_subnet,
            "pools": [{"name": "rr", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}],
            "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": {"name": "rr"}}]
        }))
        .await;
    assert_eq!(lb.status, StatusCode::CREATED, "{}", lb.body);
    let listener = &lb.body["loadbalancer"]["listeners"][0];
    let pool = &lb.body["loadbalancer"]["pools"][0];
    assert_eq!(listener["default_pool_id"], pool["id"]);
    let bad = c
        .create_lb(json!({
            "name": "lb2", "vip_subnet_id": c.seed().service_subnet,
            "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": {"name": "missing"}}]
        }))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Nothing half-created: no second load balancer, no second VIP port.
    let lbs = c.get(&format!("{LB}/loadbalancers")).await.body;
    assert_eq!(lbs["loadbalancers"].as_array().unwrap().len(), 1);
    let ports = c.get("/network/v2.0/ports?device_owner=Octavia").await.body;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn batch_member_updates_replace_or_only_add() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c.create_lb(populated(&c)).await;
    let lb_id = id(&lb.body["loadbalancer"]);
    let pools = c
        .get(&format!(
            "{LB}/pools?loadbalancer_id={lb_id}&name=shop/web:TCP:80"
        ))
        .await
        .body;
    let pool_id = id(&pools["pools"][0]);
    let members_path = format!("{LB}/pools/{pool_id}/members");
    let before = c.get(&members_path).await.body;
    let kept_id = before["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "10.1.0.6")
        .map(id)
        .unwrap();
    let put = c
        .put(
            &members_path,
            json!({"members": [
                {"address": "10.1.0.6", "protocol_port": 8080},
                {"address": "10.1.0.7", "protocol_port": 8080, "tags": ["svc-lbaas"]}
            ]}),
        )
        .await;
    assert_eq!(put.status, StatusCode::ACCEPTED);
    let listed = c.get(&members_path).await.body;
    let mut addresses: Vec<&str> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["address"].as_str().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["10.1.0.6", "10.1.0.7"]);
    assert!(
        listed["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| id(m) == kept_id),
        "matched members keep their id"
    );
    let put = c
        .put(
            &format!("{members_path}?additive_only=true"),
            json!({"members": [{"address": "10.1.0.8", "protocol_port": 8080}]}),
        )
        .await;
    assert_eq!(put.status, StatusCode::ACCEPTED);
    assert_eq!(
        c.get(&members_path).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn cascade_delete_removes_the_tree_and_the_vip_port_and_unbinds_floating_ips() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c.create_lb(populated(&c)).await;
    let doc = &lb.body["loadbalancer"];
    let (lb_id, port) = (id(doc), doc["vip_port_id"].as_str().unwrap().to_string());
    let fip = c
        .post("/network/v2.0/floatingips", json!({"floatingip": {"floating_network_id": c.seed().public_network, "port_id": port}}))
        .await;
    assert_eq!(fip.status, StatusCode::CREATED, "{}", fip.body);
    assert_eq!(fip.body["floatingip"]["fixed_ip_address"], "10.2.0.42");
    let fip_id = id(&fip.body["floatingip"]);
    let plain = c.delete(&format!("{LB}/loadbalancers/{lb_id}")).await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    let d = c
        .delete(&format!("{LB}/loadbalancers/{lb_id}?cascade=true"))
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&format!("{LB}/loadbalancers/{lb_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(&format!("{LB}/listeners")).await.body["listeners"],
        json!([])
    );
    assert_eq!(c.get(&format!("{LB}/pools")).await.body["pools"], json!([]));
    assert_eq!(
        c.get(&format!("/network/v2.0/ports/{port}")).await.status,
        StatusCode::NOT_FOUND
    );
    let f = c
        .get(&format!("/network/v2.0/floatingips/{fip_id}"))
        .await
        .body;
    assert_eq!(f["floatingip"]["port_id"], Value::Null);
}

#[tokio::test]
async fn vips_come_from_ipam_and_no_address_is_handed_out_twice() {
    let c = Client::new(Duration::ZERO).await;
    let subnet = c.seed().service_subnet.clone();
    let a = c.create_lb(json!({"vip_subnet_id": subnet})).await;
    let b = c.create_lb(json!({"vip_subnet_id": subnet})).await;
    assert_eq!(a.body["loadbalancer"]["vip_address"], "10.2.128.1");
    assert_eq!(b.body["loadbalancer"]["vip_address"], "10.2.128.2");
    let taken = c
        .create_lb(json!({"vip_subnet_id": subnet, "vip_address": "10.2.128.1"}))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let outside = c
        .create_lb(json!({"vip_subnet_id": subnet, "vip_address": "10.3.0.1"}))
        .await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    // The seed's kuryr layout: clusterIPs below the allocation pool are requestable.
    let cluster_ip = c
        .create_lb(json!({"vip_subnet_id": subnet, "vip_address": "10.2.0.10"}))
        .await;
    assert_eq!(cluster_ip.status, StatusCode::CREATED);
    let gateway = c
        .create_lb(json!({"vip_subnet_id": subnet, "vip_address": "10.2.255.254"}))
        .await;
    assert_eq!(
        gateway.status,
        StatusCode::CONFLICT,
        "the router holds the gateway"
    );
}

#[tokio::test]
async fn an_exhausted_allocation_pool_is_409() {
    let c = Client::new(Duration::ZERO).await;
    let net = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "tiny"}}),
        )
        .await;
    let net_id = id(&net.body["network"]);
    let sub = c
        .post(
            "/network/v2.0/subnets",
            json!({"subnet": {"network_id": net_id, "cidr": "192.168.9.0/30", "ip_version": 4}}),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.body);
    let sub_id = id(&sub.body["subnet"]);
    // /30: .1 is the gateway, .2 the only address left.
    let first = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net_id}}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        first.body["port"]["fixed_ips"][0]["ip_address"],
        "192.168.9.2"
    );
    let second = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net_id, "fixed_ips": [{"subnet_id": sub_id}]}}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(
        second.body["NeutronError"]["type"],
        "IpAddressGenerationFailure"
    );
}

/// Neutron refuses a fixed IP already allocated on the subnet, Octavia a
/// VIP port a device uses (`validate.check_port_in_use`).
#[tokio::test]
async fn an_allocated_address_and_a_port_in_use_are_refused() {
    let c = Client::new(Duration::ZERO).await;
    let subnet = c.seed().service_subnet.clone();
    let lb = c
        .create_lb(json!({"vip_subnet_id": subnet, "vip_address": "10.2.5.5"}))
        .await;
    assert_eq!(lb.status, StatusCode::CREATED, "{}", lb.body);
    let vip_port = lb.body["loadbalancer"]["vip_port_id"]
        .as_str()
        .expect("a port")
        .to_string();
    let taken = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": c.seed().service_network,
                "fixed_ips": [{"subnet_id": subnet, "ip_address": "10.2.5.5"}]}}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(
        taken.body["NeutronError"]["type"],
        "IpAddressAlreadyAllocated"
    );
    let second = c.create_lb(json!({"vip_port_id": vip_port})).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.body);
    let message = second.body["faultstring"].as_str().unwrap_or_default();
    assert!(message.contains("is already used by device"), "{message}");
}

#[tokio::test]
async fn bad_requests_are_400_in_octavias_shape() {
    let c = Client::new(Duration::ZERO).await;
    let cases = [
        json!({"vip_subnet_id": c.seed().service_subnet, "colour": "blue"}),
        json!({"name": "no-vip"}),
        json!({"vip_subnet_id": "no-such-subnet"}),
        json!({"vip_subnet_id": c.seed().service_subnet, "vip_address": "not-an-ip"}),
        json!({"vip_subnet_id": c.seed().service_subnet, "listeners": [{"protocol": "QUIC", "protocol_port": 80}]}),
        json!({"vip_subnet_id": c.seed().service_subnet, "listeners": [{"protocol": "TCP", "protocol_port": 70000}]}),
        json!({"vip_subnet_id": c.seed().service_subnet, "listeners": [{"protocol": "UDP", "protocol_port": 53,
            "default_pool": {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}]}),
        json!({"vip_subnet_id": c.seed().service_subnet, "listeners": [{"protocol": "TCP", "protocol_port": 80, "allowed_cidrs": ["fd00::/8"]}]}),
        json!({"vip_subnet_id": c.seed().service_subnet, "provider": "f5"}),
    ];
    for body in cases {
        let a = c.create_lb(body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        assert_eq!(a.body["faultcode"], "Client", "{body}");
        assert!(
            a.body["faultstring"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
    }
    assert_eq!(
        c.get(&format!("{LB}/loadbalancers")).await.body["loadbalancers"],
        json!([])
    );
}

#[tokio::test]
async fn source_ip_port_is_not_implemented_by_the_amphora_provider() {
    let c = Client::new(Duration::ZERO).await;
    let a = c
        .create_lb(json!({"vip_subnet_id": c.seed().service_subnet, "listeners": [{"protocol": "TCP", "protocol_port": 80,
            "default_pool": {"protocol": "TCP", "lb_algorithm": "SOURCE_IP_PORT"}}]}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED);
    assert!(a.body["faultstring"].as_str().unwrap().contains("amphora"));
}

#[tokio::test]
async fn lists_filter_by_name_tags_and_fields() {
    let c = Client::new(Duration::ZERO).await;
    let subnet = c.seed().service_subnet.clone();
    c.create_lb(
        json!({"name": "a", "vip_subnet_id": subnet, "tags": ["svc-lbaas", "svc-lbaas-cluster:x"]}),
    )
    .await;
    c.create_lb(
        json!({"name": "b", "vip_subnet_id": subnet, "tags": ["svc-lbaas", "svc-lbaas-cluster:y"]}),
    )
    .await;
    c.create_lb(json!({"name": "c", "vip_subnet_id": subnet}))
        .await;
    let names = |body: &Value| -> Vec<String> {
        body["loadbalancers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        names(&c.get(&format!("{LB}/loadbalancers?name=b")).await.body),
        ["b"]
    );
    assert_eq!(
        names(
            &c.get(&format!(
                "{LB}/loadbalancers?tags=svc-lbaas,svc-lbaas-cluster:x"
            ))
            .await
            .body
        ),
        ["a"]
    );
    assert_eq!(
        names(
            &c.get(&format!(
                "{LB}/loadbalancers?tags-any=svc-lbaas-cluster:x,svc-lbaas-cluster:y"
            ))
            .await
            .body
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            &c.get(&format!("{LB}/loadbalancers?not-tags=svc-lbaas"))
                .await
                .body
        ),
        ["c"]
    );
    let trimmed = c
        .get(&format!(
            "{LB}/loadbalancers?name=a&fields=id&fields=provisioning_status"
        ))
        .await
        .body;
    let keys: Vec<&String> = trimmed["loadbalancers"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["id", "provisioning_status"]);
    let project = c
        .get(&format!("{LB}/loadbalancers?project_id=nope"))
        .await
        .body;
    assert_eq!(project["loadbalancers"], json!([]));
}

#[tokio::test]
async fn floating_ips_filter_and_carry_tags() {
    let c = Client::new(Duration::ZERO).await;
    let public = c.seed().public_network.clone();
    let a = c
        .post("/network/v2.0/floatingips", json!({"floatingip": {"floating_network_id": public, "description": "svc-lbaas: Service shop/web"}}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a_id = id(&a.body["floatingip"]);
    let a_address = a.body["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a_address, "172.24.4.10");
    let b = c
        .post("/network/v2.0/floatingips", json!({"floatingip": {"floating_network_id": public, "floating_ip_address": "172.24.4.13"}}))
        .await;
    assert_eq!(b.body["floatingip"]["floating_ip_address"], "172.24.4.13");
    let again = c
        .post("/network/v2.0/floatingips", json!({"floatingip": {"floating_network_id": public, "floating_ip_address": "172.24.4.13"}}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let tagged = c
        .put(
            &format!("/network/v2.0/floatingips/{a_id}/tags"),
            json!({"tags": ["svc-lbaas", "svc-lbaas-service:shop_web"]}),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::OK);
    let count = |body: &Value| body["floatingips"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count(&c.get("/network/v2.0/floatingips?tags=svc-lbaas").await.body),
        1
    );
    assert_eq!(
        count(
            &c.get("/network/v2.0/floatingips?floating_ip_address=172.24.4.13")
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(
            &c.get("/network/v2.0/floatingips?description=svc-lbaas:%20Service%20shop/web")
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(&c.get("/network/v2.0/floatingips?port_id=").await.body),
        2
    );
    let one_tag = c
        .call(
            reqwest::Method::PUT,
            &format!("/network/v2.0/floatingips/{a_id}/tags/extra"),
            None,
        )
        .await;
    assert_eq!(one_tag.status, StatusCode::CREATED);
    let tags = c
        .get(&format!("/network/v2.0/floatingips/{a_id}/tags"))
        .await
        .body;
    assert_eq!(
        tags["tags"],
        json!(["svc-lbaas", "svc-lbaas-service:shop_web", "extra"])
    );
    let not_external = c
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": c.seed().pod_network}}),
        )
        .await;
    assert_eq!(not_external.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn association_needs_a_router_and_one_floating_ip_per_port() {
    let c = Client::new(Duration::ZERO).await;
    let public = c.seed().public_network.clone();
    // A network no router joins to the external one.
    let net = c
        .post(
            "/network/v2.0/networks",
            json!({"network": {"name": "island"}}),
        )
        .await;
    let net_id = id(&net.body["network"]);
    c.post(
        "/network/v2.0/subnets",
        json!({"subnet": {"network_id": net_id, "cidr": "192.168.50.0/24", "ip_version": 4}}),
    )
    .await;
    let port = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": net_id}}),
        )
        .await;
    let port_id = id(&port.body["port"]);
    let fip = c
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public, "port_id": port_id}}),
        )
        .await;
    assert_eq!(fip.status, StatusCode::NOT_FOUND);
    assert_eq!(
        fip.body["NeutronError"]["type"],
        "ExternalGatewayForFloatingIPNotFound"
    );
    let fips = c.get("/network/v2.0/floatingips").await.body;
    assert_eq!(fips["floatingips"], json!([]), "nothing half-created");
    // On the service network (joined by the router): one floating IP per port.
    let vip = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": c.seed().service_network}}),
        )
        .await;
    let vip_id = id(&vip.body["port"]);
    let first = c
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public, "port_id": vip_id}}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body["floatingip"]["status"], "ACTIVE");
    let second = c
        .post(
            "/network/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public, "port_id": vip_id}}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(
        second.body["NeutronError"]["type"],
        "FloatingIPPortAlreadyAssociated"
    );
    let unbound = c
        .put(
            &format!(
                "/network/v2.0/floatingips/{}",
                id(&first.body["floatingip"])
            ),
            json!({"floatingip": {"port_id": null}}),
        )
        .await;
    assert_eq!(unbound.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(unbound.body["floatingip"]["status"], "DOWN");
}

#[tokio::test]
async fn neutron_errors_take_neutrons_shape() {
    let c = Client::new(Duration::ZERO).await;
    let a = c.get("/network/v2.0/ports/no-such-port").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body["NeutronError"]["type"], "PortNotFound");
    assert_eq!(
        a.body["NeutronError"]["message"],
        "Port no-such-port could not be found."
    );
    let b = c
        .post(
            "/network/v2.0/ports",
            json!({"port": {"network_id": c.seed().pod_network, "bogus": 1}}),
        )
        .await;
    assert_eq!(b.status, StatusCode::BAD_REQUEST);
    assert!(b.body["NeutronError"].is_object());
}

async fn add_fault(c: &Client, fault: Value) {
    let res = c
        .http
        .post(c.url("/sim/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn faults_fail_delay_or_drop_matching_calls() {
    let c = Client::new(Duration::ZERO).await;
    add_fault(&c, json!({"method": "POST", "path": "/load-balancer/*/loadbalancers", "error_rate": 1.0, "status": 503, "times": 1})).await;
    let body = json!({"vip_subnet_id": c.seed().service_subnet});
    let failed = c.create_lb(body.clone()).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.body["faultcode"], "Server");
    assert_eq!(
        c.create_lb(body.clone()).await.status,
        StatusCode::CREATED,
        "only once"
    );

    add_fault(
        &c,
        json!({"path": "/network/v2.0/networks", "latency_ms": 300, "times": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    assert_eq!(c.get("/network/v2.0/networks").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    add_fault(
        &c,
        json!({"path": "/network/v2.0/subnets", "drop_connection": true, "times": 1}),
    )
    .await;
    let dropped = async {
        let res = c
            .http
            .get(c.url("/network/v2.0/subnets"))
            .header("x-auth-token", &c.token)
            .send()
            .await?;
        res.text().await
    };
    assert!(
        dropped.await.is_err(),
        "the connection is dropped mid-answer"
    );
    assert_eq!(c.get("/network/v2.0/subnets").await.status, StatusCode::OK);

    let listed: Value = c
        .http
        .get(c.url("/sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"], json!([]), "used-up faults are gone");
}

#[tokio::test]
async fn a_load_balancer_in_error_refuses_writes_but_can_be_deleted() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c
        .create_lb(json!({"vip_subnet_id": c.seed().service_subnet}))
        .await;
    let lb_id = id(&lb.body["loadbalancer"]);
    let res = c
        .http
        .post(c.url(&format!("/sim/faults/loadbalancers/{lb_id}/error")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(c.lb(&lb_id).await["provisioning_status"], "ERROR");
    let l = c
        .post(
            &format!("{LB}/listeners"),
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(l.status, StatusCode::CONFLICT);
    assert_eq!(
        c.delete(&format!("{LB}/loadbalancers/{lb_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&format!("{LB}/loadbalancers/{lb_id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn stats_count_calls_per_method_and_path() {
    let c = Client::new(Duration::ZERO).await;
    c.http.delete(c.url("/sim/stats")).send().await.unwrap();
    let lb = c
        .create_lb(json!({"vip_subnet_id": c.seed().service_subnet}))
        .await;
    let lb_id = id(&lb.body["loadbalancer"]);
    c.lb(&lb_id).await;
    c.lb(&lb_id).await;
    let stats: Value = c
        .http
        .get(c.url("/sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["calls"]["POST /load-balancer/v2/lbaas/loadbalancers"],
        1
    );
    assert_eq!(
        stats["calls"]["GET /load-balancer/v2/lbaas/loadbalancers/{id}"],
        2
    );
    assert_eq!(stats["total"], 3);
    c.http.delete(c.url("/sim/stats")).send().await.unwrap();
    let stats: Value = c
        .http
        .get(c.url("/sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total"], 0);
}

#[tokio::test]
async fn the_legacy_lbaas_paths_have_neutrons_shape_and_no_octavia_extensions() {
    let c = Client::new(Duration::ZERO).await;
    let legacy = "/network/v2.0/lbaas";
    let lb = c
        .post(
            &format!("{legacy}/loadbalancers"),
            json!({"loadbalancer": {"name": "old", "vip_subnet_id": c.seed().service_subnet}}),
        )
        .await;
    assert_eq!(lb.status, StatusCode::CREATED, "{}", lb.body);
    let lb_id = id(&lb.body["loadbalancer"]);
    let populated = c
        .post(
            &format!("{legacy}/loadbalancers"),
            json!({"loadbalancer": {"vip_subnet_id": c.seed().service_subnet, "listeners": []}}),
        )
        .await;
    assert_eq!(populated.status, StatusCode::BAD_REQUEST);
    assert!(populated.body["NeutronError"].is_object());
    let l = c
        .post(
            &format!("{legacy}/listeners"),
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(l.status, StatusCode::CREATED);
    let p = c
        .post(&format!("{legacy}/pools"), json!({"pool": {"listener_id": id(&l.body["listener"]), "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}))
        .await;
    let pool_id = id(&p.body["pool"]);
    let batch = c
        .put(
            &format!("{legacy}/pools/{pool_id}/members"),
            json!({"members": []}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::METHOD_NOT_ALLOWED);
    let m = c
        .post(
            &format!("{legacy}/pools/{pool_id}/members"),
            json!({"member": {"address": "10.1.0.5", "protocol_port": 80}}),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED);
    let missing = c.get(&format!("{legacy}/loadbalancers/nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
}

#[tokio::test]
async fn like_octavia_19_listeners_and_pools_take_no_children_inline() {
    let c = Client::new(Duration::ZERO).await;
    let lb = c
        .create_lb(json!({"vip_subnet_id": c.seed().service_subnet}))
        .await;
    let lb_id = id(&lb.body["loadbalancer"]);
    let listener = c
        .post(
            &format!("{LB}/listeners"),
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80,
            "default_pool": {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}}),
        )
        .await;
    assert_eq!(listener.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(listener.body["faultcode"], "Server");
    let plain = c
        .post(
            &format!("{LB}/listeners"),
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    let pool = c
        .post(&format!("{LB}/pools"), json!({"pool": {"listener_id": id(&plain.body["listener"]), "protocol": "TCP",
            "lb_algorithm": "ROUND_ROBIN", "members": [{"address": "10.1.0.5", "protocol_port": 80}]}}))
        .await;
    assert_eq!(pool.status, StatusCode::INTERNAL_SERVER_ERROR);
}
