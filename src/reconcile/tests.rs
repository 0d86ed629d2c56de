//! The reconcile loop without I/O: the Reconciler over the in-memory cloud,
//! in virtual time (`tokio::time::pause`), so replans, waits and races run
//! in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{ApplyAction, ApplyInput, ApplyOptions, CloudPort, Reconciler};
use crate::config::Settings;
use crate::testing::memory::{InMemoryCloud, MemoryCloud};

fn settings() -> Settings {
    let mut s = Settings::default();
    let d = &mut s.neutron_defaults;
    d.pod_subnet = Some(crate::testing::memory::POD_SUBNET.into());
    d.service_subnet = Some("1b5e4a7e-8f0e-4c3e-9d1a-1b2c3d4e5f61".into());
    d.external_svc_subnet = Some("2c5e4a7e-8f0e-4c3e-9d1a-1b2c3d4e5f62".into());
    s
}

/// A `type: LoadBalancer` Service with two ports and `endpoints` as members.
fn request(name: &str, endpoints: &[&str]) -> ApplyInput {
    let addresses: Vec<_> = endpoints.iter().map(|ip| json!({"ip": ip})).collect();
    ApplyInput::from_json(json!({
        "service": {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "https", "port": 443, "targetPort": 8443}]}},
        "endpoints": {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "shop"},
            "subsets": [{"addresses": addresses, "ports": [
                {"name": "http", "port": 8080}, {"name": "https", "port": 8443}]}]},
    }))
    .expect("a valid request")
}

fn options() -> ApplyOptions {
    ApplyOptions::new(true, Duration::from_secs(300))
}

/// A cloud whose load balancers stay PENDING_* for `pending_reads` reads.
fn cloud(pending_reads: u32) -> Arc<InMemoryCloud> {
    let mut cloud = InMemoryCloud::new(MemoryCloud::new());
    cloud.pending_reads = pending_reads;
    Arc::new(cloud)
}

fn reconciler(cloud: &Arc<InMemoryCloud>) -> Reconciler {
    Reconciler::shared(cloud.clone() as Arc<dyn CloudPort>, settings())
}

fn ingress(a: &super::ApplyResponse) -> String {
    a.status["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(start_paused = true)]
async fn a_create_waits_for_active_then_an_unchanged_apply_writes_nothing() {
    let cloud = cloud(3);
    let r = reconciler(&cloud);
    let first = r
        .apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    assert_eq!(first.action, ApplyAction::Created);
    assert!(first.converged);
    assert!(
        first.openstack_calls.waits >= 1,
        "{:?}",
        first.openstack_calls
    );
    assert!(!ingress(&first).is_empty());
    let again = r
        .apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    assert_eq!(again.action, ApplyAction::Unchanged);
    assert!(again.operations.is_empty(), "{:?}", again.operations);
}

#[tokio::test(start_paused = true)]
async fn a_409_is_waited_out_and_planned_again() {
    let cloud = cloud(2);
    let r = reconciler(&cloud);
    r.apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    // Another writer is busy: the next two writes answer 409.
    cloud.refuse_writes(2);
    let a = r
        .apply(&request("web", &["10.1.0.6"]), options())
        .await
        .unwrap();
    assert_eq!(a.action, ApplyAction::Updated);
    assert!(a.converged);
    let state = cloud.snapshot();
    let members: Vec<String> = state.load_balancers[0]
        .pools
        .iter()
        .flat_map(|p| p.members.iter().map(|m| m.address.to_string()))
        .collect();
    assert_eq!(
        members,
        ["10.1.0.6", "10.1.0.6"],
        "one member per pool, the new one"
    );
}

#[tokio::test(start_paused = true)]
async fn a_load_balancer_in_error_is_replaced_and_keeps_its_floating_ip() {
    let cloud = cloud(1);
    let r = reconciler(&cloud);
    let first = r
        .apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    let broken = first.load_balancer.as_ref().unwrap().id.clone();
    cloud.break_load_balancer(&broken);
    let fixed = r
        .apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    assert_eq!(fixed.action, ApplyAction::Updated);
    let lb = fixed.load_balancer.as_ref().unwrap();
    assert_ne!(lb.id, broken, "a new load balancer");
    assert_eq!(
        ingress(&fixed),
        ingress(&first),
        "the same floating IP, moved"
    );
    let state = cloud.snapshot();
    assert_eq!(state.load_balancers.len(), 1);
    assert_eq!(state.floating_ips.len(), 1);
    assert_eq!(state.floating_ips[0].port_id, lb.vip_port_id);
}

#[tokio::test(start_paused = true)]
async fn two_replicas_racing_on_a_new_service_leave_one_of_everything() {
    for pending_reads in [0, 1, 3, 6] {
        let cloud = cloud(pending_reads);
        // Two replicas: two reconcilers (their own locks) over one cloud.
        let (a, b) = (reconciler(&cloud), reconciler(&cloud));
        let input = request("race", &["10.1.0.5"]);
        let (x, y) = tokio::join!(a.apply(&input, options()), b.apply(&input, options()));
        let (x, y) = (x.unwrap(), y.unwrap());
        let state = cloud.snapshot();
        assert_eq!(
            state.load_balancers.len(),
            1,
            "pending {pending_reads}: {state:?}"
        );
        assert_eq!(
            state.floating_ips.len(),
            1,
            "pending {pending_reads}: {state:?}"
        );
        let survivor = &state.load_balancers[0];
        assert_eq!(state.floating_ips[0].port_id, survivor.vip_port_id);
        assert_eq!(ingress(&x), ingress(&y), "pending {pending_reads}");
        assert_eq!(
            ingress(&x),
            state.floating_ips[0].address.to_string(),
            "pending {pending_reads}"
        );
        assert_eq!(x.load_balancer.as_ref().unwrap().id, survivor.id);
        assert_eq!(y.load_balancer.as_ref().unwrap().id, survivor.id);
    }
}

#[tokio::test(start_paused = true)]
async fn provisioning_past_the_deadline_answers_not_converged() {
    // 1,000 reads PENDING_CREATE: longer than any wait budget of 5 s.
    let cloud = cloud(1_000);
    let r = reconciler(&cloud);
    let started = tokio::time::Instant::now();
    let a = r
        .apply(
            &request("slow", &["10.1.0.5"]),
            ApplyOptions::new(true, Duration::from_secs(5)),
        )
        .await;
    match a {
        Ok(a) => assert!(!a.converged, "{a:?}"),
        Err(e) => assert!(matches!(e, super::ReconcileError::Deadline { .. }), "{e}"),
    }
    assert!(
        started.elapsed() <= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_copy_still_pending_create_is_waited_for_then_deleted() {
    let cloud = cloud(0);
    let r = reconciler(&cloud);
    let first = r
        .apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    let survivor = first.load_balancer.as_ref().unwrap().id.clone();
    // A racing replica's copy, younger, PENDING_CREATE for 20 reads: Octavia
    // answers 409 to its DELETE until then.
    let desired = match crate::translate::translate(&settings(), &request("web", &[]).service, None)
        .unwrap()
    {
        crate::model::Translation::LoadBalancer(d) => d,
        other => panic!("{other:?}"),
    };
    let copy = super::LoadBalancing::create_load_balancer(
        &*cloud,
        &Default::default(),
        &desired,
        &desired.owner_tags,
        true,
        false,
        &[],
    )
    .await
    .unwrap()
    .id
    .unwrap();
    cloud.hold_pending(&copy, "PENDING_CREATE", 20);
    let a = r
        .apply(&request("web", &["10.1.0.5"]), options())
        .await
        .unwrap();
    assert!(a.converged, "{a:?}");
    assert_eq!(a.load_balancer.as_ref().unwrap().id, survivor);
    let deleted: Vec<_> = a
        .operations
        .iter()
        .filter(|o| o.op == "delete" && o.resource == "loadbalancer")
        .map(|o| o.id.clone())
        .collect();
    assert_eq!(deleted, [Some(copy)]);
    assert_eq!(cloud.snapshot().load_balancers.len(), 1);
}

/// A load balancer id of the in-memory cloud's shape.
fn lb_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_waits_share_five_status_reads_a_second() {
    let cloud = cloud(0);
    let board = super::board::StatusBoard::default();
    let waits = 1000;
    for i in 0..waits {
        // Each is deleted after its own number of reads (5 to 44).
        cloud.hold_pending(&lb_id(i), "PENDING_DELETE", 5 + (i % 40) as u32);
    }
    let started = tokio::time::Instant::now();
    let results = futures_util::future::join_all((0..waits).map(|i| {
        let (cloud, board) = (&cloud, &board);
        async move {
            // Waits begin 7 ms apart: their schedules differ.
            tokio::time::sleep(Duration::from_millis(7 * i as u64)).await;
            let calls = super::cloud::Calls::default();
            let id = lb_id(i);
            let kind = super::execute::DELETE;
            let timeout = Duration::from_secs(600);
            board.wait(&**cloud, &calls, &id, kind, true, timeout).await
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(results.iter().all(Result::is_ok), "every wait ends");
    let reads = f64::from(cloud.status_reads());
    assert!(reads >= 44.0, "the slowest needed 44 reads: {reads}");
    assert!(
        reads <= 5.0 * elapsed + 1.0,
        "{reads} status reads in {elapsed:.1} s for {waits} waits"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_on_the_first_read_that_shows_its_end_whichever_wait_sent_it() {
    let cloud = cloud(0);
    let board = super::board::StatusBoard::default();
    let kind = super::wait::WaitKind::Delete;
    let timeout = Duration::from_secs(600);
    let (long, short) = (lb_id(1), lb_id(2));
    cloud.hold_pending(&long, "PENDING_DELETE", u32::MAX);
    cloud.hold_pending(&short, "PENDING_DELETE", u32::MAX);
    let started = tokio::time::Instant::now();
    let secs = Duration::from_secs_f64;
    let at = |t: f64| tokio::time::sleep_until(started + secs(t));
    let calls = super::cloud::Calls::default();
    // Waited for 30 s, the long wait reads every 8% of that (at 28.2, 30.7
    // and 33.2 s: the short one's reads push it by the floor between reads);
    // the short one, begun at 30 s, every 100-200 ms.
    let long_wait = async {
        board
            .wait(&*cloud, &calls, &long, kind, true, timeout)
            .await?;
        Ok::<_, crate::openstack::OpenStackError>(started.elapsed())
    };
    let short_wait = async {
        at(30.0).await;
        board
            .wait(&*cloud, &calls, &short, kind, true, timeout)
            .await?;
        Ok::<_, crate::openstack::OpenStackError>(started.elapsed())
    };
    let ends = async {
        at(30.8).await;
        cloud.end_pending(&long);
        at(31.5).await;
        cloud.end_pending(&short);
    };
    let (long_took, short_took, ()) = tokio::join!(long_wait, short_wait, ends);
    let (long_took, short_took) = (long_took.expect("deleted"), short_took.expect("deleted"));
    // Seen by the short wait's next read (200 ms apart while two wait),
    // not by the long one's own, at 33.2 s.
    assert!(
        long_took > secs(30.8) && long_took <= secs(31.1),
        "{long_took:?}"
    );
    assert!(
        short_took > secs(31.5) && short_took <= secs(31.7),
        "{short_took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_wait_reads_more_often_than_many_and_learns_how_long_a_change_takes() {
    let cloud = cloud(0);
    let board = super::board::StatusBoard::default();
    let calls = super::cloud::Calls::default();
    let kind = super::wait::WaitKind::Delete;
    cloud.hold_pending(&lb_id(1), "PENDING_DELETE", 10);
    let started = tokio::time::Instant::now();
    let timeout = Duration::from_secs(60);
    board
        .wait(&*cloud, &calls, &lb_id(1), kind, true, timeout)
        .await
        .expect("deleted after 10 reads");
    let took = started.elapsed();
    // Alone, it reads every 100 ms at first: 11 reads in about 1.1 s.
    assert_eq!(cloud.status_reads(), 11);
    assert!(took <= Duration::from_millis(1200), "{took:?}");
    assert_eq!(board.expected(kind), Some(took));
    assert_eq!(calls.snapshot().2, 1, "one wait");
}
