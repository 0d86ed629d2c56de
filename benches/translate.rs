//! translate + plan, the pure core on every request's path:
//! - a Service with 8 ports and 1,000 ready endpoints (target: < 1 ms),
//!   against empty state (create) and against its converged state (no-op);
//! - 10,000 small Services, one after the other (target: < 50 ms).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use serde_json::{Value, json};
use svc_lbaas::config::Settings;
use svc_lbaas::model::{Observed, Translation};
use svc_lbaas::plan::{Capabilities, plan};
use svc_lbaas::testing::memory::MemoryCloud;
use svc_lbaas::translate::{Backends, translate};

fn settings() -> Settings {
    let mut s = Settings::default();
    s.neutron_defaults.pod_subnet = Some("pod-subnet".into());
    s.neutron_defaults.service_subnet = Some("service-subnet".into());
    s.neutron_defaults.external_svc_subnet = Some("public-subnet".into());
    s
}

fn big_service() -> (Service, Endpoints) {
    let ports: Vec<Value> = (0..8)
        .map(|i| json!({"name": format!("p{i}"), "port": 8000 + i, "targetPort": format!("t{i}")}))
        .collect();
    let svc = serde_json::from_value(json!({
        "metadata": {"name": "big", "namespace": "bench", "uid": "b-1"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.100", "ports": ports}
    }))
    .expect("bench Service");
    let addresses: Vec<Value> = (0..1000)
        .map(|i| json!({"ip": format!("10.1.{}.{}", i / 250, i % 250 + 1)}))
        .collect();
    let endpoint_ports: Vec<Value> = (0..8)
        .map(|i| json!({"name": format!("p{i}"), "port": 9000 + i}))
        .collect();
    let ep = serde_json::from_value(json!({
        "metadata": {"name": "big", "namespace": "bench"},
        "subsets": [{"addresses": addresses, "ports": endpoint_ports}]
    }))
    .expect("bench Endpoints");
    (svc, ep)
}

fn small_services(n: usize) -> Vec<(Service, Endpoints)> {
    (0..n)
        .map(|i| {
            let name = format!("svc-{i}");
            let svc = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "bench"},
                "spec": {"clusterIP": format!("10.2.{}.{}", i / 250, i % 250 + 1),
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
            }))
            .expect("small Service");
            let ep = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "bench"},
                "subsets": [{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}],
                    "ports": [{"name": "http", "port": 8080}]}]
            }))
            .expect("small Endpoints");
            (svc, ep)
        })
        .collect()
}

fn translate_and_plan(
    settings: &Settings,
    svc: &Service,
    ep: &Endpoints,
    observed: &Observed,
) -> usize {
    let backends = Backends {
        endpoints: Some(ep),
        endpoint_slices: &[],
    };
    let t = translate(settings, svc, Some(backends)).expect("translates");
    plan(&t, observed, Capabilities::OCTAVIA)
        .expect("plans")
        .len()
}

fn bench(c: &mut Criterion) {
    let settings = settings();
    let (svc, ep) = big_service();

    let empty = Observed::default();
    c.bench_function("8 ports x 1000 endpoints: translate + plan (create)", |b| {
        b.iter(|| translate_and_plan(&settings, black_box(&svc), black_box(&ep), &empty))
    });

    // The steady state: the load balancer exists and matches.
    let backends = Backends {
        endpoints: Some(&ep),
        endpoint_slices: &[],
    };
    let t = translate(&settings, &svc, Some(backends)).expect("translates");
    let Translation::LoadBalancer(d) = &t else {
        panic!("the bench Service gets a load balancer")
    };
    let mut cloud = MemoryCloud::new();
    let ops = plan(&t, &empty, Capabilities::OCTAVIA).expect("plans");
    cloud.apply(&ops, &d.owner_tags);
    let converged = cloud.observe(&d.owner_tags, &d.name, None);
    assert_eq!(translate_and_plan(&settings, &svc, &ep, &converged), 0);
    c.bench_function(
        "8 ports x 1000 endpoints: translate + plan (converged)",
        |b| b.iter(|| translate_and_plan(&settings, black_box(&svc), black_box(&ep), &converged)),
    );

    let services = small_services(10_000);
    let mut group = c.benchmark_group("10000 small Services");
    group.sample_size(20);
    group.bench_function("translate + plan each (create)", |b| {
        b.iter(|| {
            services
                .iter()
                .map(|(s, e)| translate_and_plan(&settings, black_box(s), black_box(e), &empty))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
