//! How late a wait notices ACTIVE: the overshoot (the time from the load
//! balancer turning ACTIVE to the wait's end) of every wait of a create and
//! of endpoint changes, on the embedded simulator with provisioning delays
//! of 1 s, 5 s and 30 s. The simulator turns a load balancer ACTIVE exactly
//! `delay` after it took the write, and the wait begins when the write's
//! answer is back, so a wait's elapsed time minus the delay is its
//! overshoot (within the loopback round trip). Many Services at once (their
//! waits sharing status reads) are `benches/scale.rs`.
//! Exits non-zero when a wait overshoots by more than 10% of the delay plus
//! 100 ms.
//!
//! `cargo bench --bench waits` (about 3 minutes); `cargo test --all-targets`
//! runs it once with the 1 s delay only.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use svc_lbaas::config::Settings;
use svc_lbaas::reconcile::{ApplyInput, ApplyOptions, ProgressEvent};

fn request(ip: &str) -> ApplyInput {
    named_request("web", "10.2.0.42", ip)
}

fn named_request(name: &str, cluster_ip: &str, ip: &str) -> ApplyInput {
    ApplyInput::from_json(json!({
        "service": {"metadata": {"name": name, "namespace": "bench"},
            "spec": {"type": "LoadBalancer", "clusterIP": cluster_ip,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
        "endpoints": {"metadata": {"name": name, "namespace": "bench"},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "http", "port": 8080}]}]}
    }))
    .expect("a valid request")
}

struct Wait {
    delay: Duration,
    step: String,
    elapsed: Duration,
}

/// A create then `changes` endpoint changes, each with its wait measured,
/// then a delete; the status reads per second over the run.
async fn run(delay: Duration, changes: usize) -> (Vec<Wait>, f64) {
    let settings = Settings::default();
    let ms = delay.as_millis().to_string();
    let env = move |k: &str| (k == "SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").then(|| ms.clone());
    let (state, sim) = svc_lbaas::startup::build_state(settings, None, &env)
        .await
        .expect("builds");
    let sim = sim.expect("the embedded simulator");
    let options = ApplyOptions::new(true, Duration::from_secs(300));
    let started = Instant::now();
    let mut waits = Vec::new();
    for (i, step) in std::iter::once("create".to_string())
        .chain((1..=changes).map(|n| format!("endpoint change {n}")))
        .enumerate()
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let input = request(&format!("10.1.0.{}", 5 + i));
        let answer = state
            .reconciler
            .apply_reporting(&input, options, Some(tx))
            .await
            .expect("applies");
        assert!(answer.converged, "{step}: not converged");
        while let Ok(event) = rx.try_recv() {
            if let ProgressEvent::Waited { elapsed_ms, .. } = event {
                waits.push(Wait {
                    delay,
                    step: step.clone(),
                    elapsed: Duration::from_millis(elapsed_ms),
                });
            }
        }
    }
    let service = svc_lbaas::model::ServiceRef {
        namespace: "bench".into(),
        name: "web".into(),
    };
    state
        .reconciler
        .delete(&service, false, options)
        .await
        .expect("deletes");
    let seconds = started.elapsed().as_secs_f64();
    let stats: Value = reqwest::get(format!("{}/sim/stats", sim.state.base_url))
        .await
        .expect("the simulator's stats")
        .json()
        .await
        .expect("JSON");
    (waits, status_reads(&stats) / seconds)
}

/// A wait's status reads in the simulator's stats: GETs of one load
/// balancer (one wait at a time here; several share a list).
fn status_reads(stats: &Value) -> f64 {
    stats["calls"]["GET /load-balancer/v2/lbaas/loadbalancers/{id}"]
        .as_f64()
        .unwrap_or(0.0)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let delays: &[(u64, usize)] = if benching {
        &[(1, 4), (5, 3), (30, 2)]
    } else {
        &[(1, 2)]
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("overshoot of each wait: its elapsed time minus the simulator's provisioning delay");
    println!(
        "{:>6} {:<20} {:>10} {:>10} {:>10}",
        "delay", "step", "waited", "overshoot", "allowed"
    );
    let mut over = false;
    for &(secs, changes) in delays {
        let delay = Duration::from_secs(secs);
        let (waits, reads_per_s) = runtime.block_on(run(delay, changes));
        assert!(!waits.is_empty(), "no wait measured");
        for w in &waits {
            let overshoot = w.elapsed.saturating_sub(w.delay);
            let allowed = w.delay.mul_f64(0.1) + Duration::from_millis(100);
            let ok = overshoot <= allowed;
            over |= !ok;
            println!(
                "{:>5}s {:<20} {:>8}ms {:>8}ms {:>8}ms{}",
                secs,
                w.step,
                w.elapsed.as_millis(),
                overshoot.as_millis(),
                allowed.as_millis(),
                if ok { "" } else { "  OVER" }
            );
        }
        println!("{secs:>5}s status reads of one wait at a time: {reads_per_s:.2} a second");
    }
    if over {
        println!("OVER: a wait overshot 10% of the delay + 100 ms");
        std::process::exit(1);
    }
}
