//! The in-memory cloud held to the simulator: the same scenarios run through
//! the Reconciler on both, and the answers must match once what each cloud
//! picks for itself (ids, addresses, call counts) is set aside. When they
//! differ, the simulator (itself held to real OpenStack by the real-cloud
//! stage) is right and the in-memory cloud changes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::memory::{InMemoryCloud, MemoryCloud, POD_SUBNET};
use crate::config::Settings;
use crate::model::ServiceRef;
use crate::reconcile::{ApplyInput, ApplyOptions, ApplyResponse, CloudPort, Reconciler};

/// A Service of `ports` (name, port) with `endpoints` as members.
fn service(name: &str, ports: &[(&str, u16)], endpoints: &[&str], extra: Value) -> ApplyInput {
    let addresses: Vec<_> = endpoints.iter().map(|ip| json!({"ip": ip})).collect();
    let service_ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "targetPort": p + 8000}))
        .collect();
    let endpoint_ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p + 8000}))
        .collect();
    let mut spec = json!({"type": "LoadBalancer", "ports": service_ports});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    ApplyInput::from_json(json!({
        "service": {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"}, "spec": spec},
        "endpoints": {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "shop"},
            "subsets": [{"addresses": addresses, "ports": endpoint_ports}]},
    }))
    .expect("a valid request")
}

fn options() -> ApplyOptions {
    ApplyOptions::new(true, Duration::from_secs(60))
}

/// The answer without what each cloud picks for itself: ids, addresses it
/// allocates, call counts and timings.
fn comparable(answer: &ApplyResponse) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| {
                    !(k == "id"
                        || k.ends_with("Id")
                        || k.ends_with("Ids")
                        || k == "vipAddress"
                        || k == "address"
                        || k == "openstackCalls")
                });
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(answer).expect("an answer serializes");
    strip(&mut v);
    // A floating IP's operation is named by the address each cloud picks.
    for op in v["operations"].as_array_mut().into_iter().flatten() {
        if op["resource"] == "floatingip" && op["op"] != "create" {
            op["name"] = json!("(its address)");
        }
    }
    // The status names an address of each cloud's: only its shape counts.
    let ingress = answer.status["loadBalancer"]["ingress"]
        .as_array()
        .map_or(0, Vec::len);
    v["status"] = json!({"ingress": ingress});
    v
}

/// The members' addresses per pool (they are the Service's, not the cloud's).
fn members(answer: &ApplyResponse) -> Vec<Vec<String>> {
    let mut pools: Vec<Vec<String>> = answer
        .load_balancer
        .iter()
        .flat_map(|lb| &lb.listeners)
        .filter_map(|l| l.pool.as_ref())
        .map(|p| {
            let mut m: Vec<String> = p.members.iter().map(|m| m.address.to_string()).collect();
            m.sort();
            m
        })
        .collect();
    pools.sort();
    pools
}

/// Both clouds: the in-memory one and the simulator, each behind a Reconciler.
async fn both() -> (Reconciler, Reconciler, crate::sim::RunningSim) {
    let env = |k: &str| (k == "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").then(|| "20".to_string());
    let (state, sim) = crate::startup::build_state(Settings::default(), None, &env)
        .await
        .expect("the simulator starts");
    let sim = sim.expect("no credentials: the simulator");
    let settings = state.reconciler.settings.clone();
    let simulated = Reconciler::shared(state.reconciler.cloud.clone(), settings.clone());
    // The same settings, but the in-memory cloud's pod subnet (its CIDR is
    // the seed's 10.1.0.0/16 too).
    let mut in_memory = settings;
    in_memory.neutron_defaults.pod_subnet = Some(POD_SUBNET.into());
    let memory = Reconciler::shared(
        Arc::new(InMemoryCloud::new(MemoryCloud::new())) as Arc<dyn CloudPort>,
        in_memory,
    );
    (memory, simulated, sim)
}

/// Applies `input` on both clouds and requires the same answer.
async fn same_apply(memory: &Reconciler, sim: &Reconciler, input: &ApplyInput) -> ApplyResponse {
    let on_memory = memory
        .apply(input, options())
        .await
        .expect("applies in memory");
    let on_sim = sim
        .apply(input, options())
        .await
        .expect("applies on the simulator");
    assert_eq!(
        comparable(&on_memory),
        comparable(&on_sim),
        "the in-memory cloud answers as the simulator does"
    );
    assert_eq!(members(&on_memory), members(&on_sim));
    on_sim
}

#[tokio::test]
async fn a_service_created_changed_and_deleted_answers_alike_on_both_clouds() {
    let (memory, sim, _running) = both().await;
    let web =
        |ports: &[(&str, u16)], endpoints: &[&str]| service("web", ports, endpoints, json!({}));
    let two = [("http", 80), ("https", 443)];
    let created = same_apply(&memory, &sim, &web(&two, &["10.1.0.5", "10.1.0.6"])).await;
    assert_eq!(created.action.as_str(), "created");
    assert_eq!(
        created.load_balancer.as_ref().map(|l| l.listeners.len()),
        Some(2)
    );
    // One endpoint replaced: the members only.
    let replaced = same_apply(&memory, &sim, &web(&two, &["10.1.0.5", "10.1.0.7"])).await;
    assert_eq!(replaced.action.as_str(), "updated");
    // The same again: nothing written.
    let unchanged = same_apply(&memory, &sim, &web(&two, &["10.1.0.5", "10.1.0.7"])).await;
    assert_eq!(unchanged.action.as_str(), "unchanged");
    assert!(unchanged.operations.is_empty());
    // A port added, one removed.
    let moved = [("http", 80), ("metrics", 9090)];
    let changed = same_apply(&memory, &sim, &web(&moved, &["10.1.0.5"])).await;
    assert_eq!(changed.action.as_str(), "updated");
    // Source ranges: the listeners' allowed CIDRs.
    let ranges = service(
        "web",
        &moved,
        &["10.1.0.5"],
        json!({"loadBalancerSourceRanges": ["192.0.2.0/24"]}),
    );
    same_apply(&memory, &sim, &ranges).await;
    // Deleted on both, then nothing left to find.
    let web_ref = ServiceRef {
        namespace: "shop".into(),
        name: "web".into(),
    };
    let on_memory = memory
        .delete(&web_ref, false, options())
        .await
        .expect("deletes in memory");
    let on_sim = sim
        .delete(&web_ref, false, options())
        .await
        .expect("deletes on the simulator");
    assert_eq!(comparable(&on_memory), comparable(&on_sim));
    assert!(memory.get(&web_ref).await.is_err());
    assert!(sim.get(&web_ref).await.is_err());
}

#[tokio::test]
async fn a_service_turned_cluster_ip_loses_its_floating_ip_alike_on_both_clouds() {
    let (memory, sim, _running) = both().await;
    let two = [("http", 80), ("https", 443)];
    same_apply(
        &memory,
        &sim,
        &service("api", &two, &["10.1.0.9"], json!({})),
    )
    .await;
    // Turned ClusterIP: its floating IP goes, its load balancer stays.
    let cluster_ip = service("api", &two, &["10.1.0.9"], json!({"type": "ClusterIP"}));
    let turned = same_apply(&memory, &sim, &cluster_ip).await;
    assert!(turned.floating_ip.is_none());
    assert_eq!(
        turned
            .operations
            .iter()
            .map(|o| (o.op, o.resource))
            .collect::<Vec<_>>(),
        [("delete", "floatingip")]
    );
}
