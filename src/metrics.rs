//! The server's Prometheus metrics, process-wide, on the Prometheus
//! project's client (`prometheus-client`), served at `/metrics` in the
//! OpenMetrics text format: HTTP requests, OpenStack calls and their
//! latency, applies and deletes and their duration, waits and their
//! duration, problems, and what runs now. No label takes a Service's name,
//! a namespace or an id: every label has a few known values (the README's
//! "Metrics and alerts" lists them), so a series count never grows with the
//! cluster.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// OpenStack calls take milliseconds; the slowest (a load balancer POST
/// under load) a few seconds.
pub const CALL_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Waits for a load balancer to settle take seconds (an update) to minutes
/// (an amphora booting).
pub const WAIT_BUCKETS: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// An apply answers in milliseconds (unchanged) to minutes (a create waited for).
pub const APPLY_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLatencyLabels {
    service: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProblemLabels {
    r#type: &'static str,
    retryable: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    action: &'static str,
    outcome: &'static str,
}

/// What an apply or a delete is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Service,
    Gateway,
}

/// Which request an [`InFlight`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Delete,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// ACTIVE, or gone when waited to go.
    Settled,
    /// Still PENDING_* when the wait's budget ran out.
    Timeout,
    /// ERROR, vanished, or the status could not be read.
    Error,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    openstack_calls: Family<CallLabels, Counter>,
    openstack_call_duration: Histograms<CallLatencyLabels>,
    waits: Counter,
    wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    wait_duration: Histograms<WaitLabels>,
    status_reads: Counter,
    applies: Family<ActionLabels, Counter>,
    problems: Family<ProblemLabels, Counter>,
    apply_duration: Histograms<RequestLabels>,
    delete_duration: Histograms<RequestLabels>,
    in_flight: Gauge,
    waiters: Gauge,
}

pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// A method's label: one of HTTP's own, or `other`.
fn known_method(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
    KNOWN.into_iter().find(|k| *k == method).unwrap_or("other")
}

fn histograms<L: Clone + std::hash::Hash + Eq>(buckets: fn() -> Histogram) -> Histograms<L> {
    Family::new_with_constructor(buckets)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            http_requests: Family::default(),
            openstack_calls: Family::default(),
            openstack_call_duration: histograms(|| Histogram::new(CALL_BUCKETS)),
            waits: Counter::default(),
            wait_seconds: Counter::default(),
            wait_duration: histograms(|| Histogram::new(WAIT_BUCKETS)),
            status_reads: Counter::default(),
            applies: Family::default(),
            problems: Family::default(),
            apply_duration: histograms(|| Histogram::new(APPLY_BUCKETS)),
            delete_duration: histograms(|| Histogram::new(APPLY_BUCKETS)),
            in_flight: Gauge::default(),
            waiters: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "svc_lbaas_http_requests",
            "REST requests by method, route (the route's template, never a name) and status",
            m.http_requests.clone(),
        );
        r.register(
            "svc_lbaas_openstack_calls",
            "OpenStack calls by service, method and status (unreachable: 0)",
            m.openstack_calls.clone(),
        );
        r.register_with_unit(
            "svc_lbaas_openstack_call_duration",
            "OpenStack call latency, from the request sent to the answer's headers, by service and method (answered calls only)",
            Unit::Seconds,
            m.openstack_call_duration.clone(),
        );
        r.register(
            "svc_lbaas_waits",
            "Waits for a load balancer to settle",
            m.waits.clone(),
        );
        r.register_with_unit(
            "svc_lbaas_wait",
            "Seconds spent waiting for load balancers to settle",
            Unit::Seconds,
            m.wait_seconds.clone(),
        );
        r.register_with_unit(
            "svc_lbaas_wait_duration",
            "Waits for a load balancer to settle, by kind (create, update, delete) and outcome (settled, timeout, error)",
            Unit::Seconds,
            m.wait_duration.clone(),
        );
        r.register(
            "svc_lbaas_status_reads",
            "Status reads of waits (one read answers every wait of the process at once)",
            m.status_reads.clone(),
        );
        r.register(
            "svc_lbaas_applies",
            "Service applies answered, by action (created, updated, unchanged, skipped; deleted: a Service that no longer gets a load balancer); failures count in svc_lbaas_problems_total",
            m.applies.clone(),
        );
        r.register(
            "svc_lbaas_problems",
            "Problems answered (REST, gRPC, event and sync items) by type and whether a retry may succeed",
            m.problems.clone(),
        );
        r.register_with_unit(
            "svc_lbaas_apply_duration",
            "Applies (Services' and Gateways') from the request to the answer, by kind, action (none when it failed) and outcome (ok; refused: a 4xx; failed: a 5xx)",
            Unit::Seconds,
            m.apply_duration.clone(),
        );
        r.register_with_unit(
            "svc_lbaas_delete_duration",
            "Deletes (Services' and Gateways') from the request to the answer, by kind, action and outcome",
            Unit::Seconds,
            m.delete_duration.clone(),
        );
        r.register(
            "svc_lbaas_applies_in_flight",
            "Applies and deletes running now",
            m.in_flight.clone(),
        );
        r.register(
            "svc_lbaas_waiters",
            "Waits on the wait board now (each load balancer waited for counts once per wait)",
            m.waiters.clone(),
        );
        m
    }

    /// A REST request answered. The method is one the API serves or
    /// `other`: a client's made-up method never becomes a series.
    pub fn http_request(&self, method: &axum::http::Method, route: &str, status: u16) {
        let method = known_method(method.as_str());
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// An OpenStack call: `status` 0 when it never got an answer;
    /// `took` (to the answer's headers) when it got one.
    pub fn openstack_call(
        &self,
        service: &'static str,
        method: &reqwest::Method,
        status: u16,
        took: Option<Duration>,
    ) {
        let method = known_method(method.as_str());
        self.openstack_calls
            .get_or_create(&CallLabels {
                service,
                method,
                status,
            })
            .inc();
        if let Some(took) = took {
            self.openstack_call_duration
                .get_or_create(&CallLatencyLabels { service, method })
                .observe(took.as_secs_f64());
        }
    }

    pub fn problem(&self, slug: &'static str, retryable: bool) {
        self.problems
            .get_or_create(&ProblemLabels {
                r#type: slug,
                retryable: if retryable { "true" } else { "false" },
            })
            .inc();
    }

    /// A Service apply answered with `action`.
    pub fn applied(&self, action: &'static str) {
        self.applies.get_or_create(&ActionLabels { action }).inc();
    }

    /// A wait ended: `kind` is create, update or delete.
    pub fn waited(&self, kind: &'static str, outcome: WaitOutcome, took: Duration) {
        self.waits.inc();
        self.wait_seconds.inc_by(took.as_secs_f64());
        let outcome = match outcome {
            WaitOutcome::Settled => "settled",
            WaitOutcome::Timeout => "timeout",
            WaitOutcome::Error => "error",
        };
        self.wait_duration
            .get_or_create(&WaitLabels { kind, outcome })
            .observe(took.as_secs_f64());
    }

    pub fn status_read(&self) {
        self.status_reads.inc();
    }

    /// The status reads of waits so far.
    pub fn status_reads(&self) -> u64 {
        self.status_reads.get()
    }

    /// An apply or delete begins: counted in flight until the returned
    /// guard ends it (or is dropped: a cancelled request is not timed).
    pub fn start(&self, verb: Verb, subject: Subject) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight {
            metrics: self,
            verb,
            subject,
            started: std::time::Instant::now(),
        }
    }

    /// A wait joins the board until the guard drops.
    pub fn waiter(&self) -> Waiter<'_> {
        self.waiters.inc();
        Waiter(self)
    }

    /// The OpenMetrics text exposition, `# EOF` included.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// An apply or delete running; [`InFlight::end`] times it.
pub struct InFlight<'m> {
    metrics: &'m Metrics,
    verb: Verb,
    subject: Subject,
    started: std::time::Instant,
}

impl InFlight<'_> {
    /// Ends it with the answer's action (`none` when it failed) and the
    /// answer's HTTP status (2xx ok, 4xx refused, 5xx failed).
    pub fn end(self, action: &'static str, status: u16) {
        let outcome = match status {
            ..400 => "ok",
            400..500 => "refused",
            _ => "failed",
        };
        let family = match self.verb {
            Verb::Apply => &self.metrics.apply_duration,
            Verb::Delete => &self.metrics.delete_duration,
        };
        let kind = match self.subject {
            Subject::Service => "service",
            Subject::Gateway => "gateway",
        };
        family
            .get_or_create(&RequestLabels {
                kind,
                action,
                outcome,
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

pub struct Waiter<'m>(&'m Metrics);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.waiters.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'t>(text: &'t str, prefix: &str) -> &'t str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn counters_histograms_and_gauges_render_as_openmetrics() {
        let m = Metrics::new();
        m.applied("created");
        m.applied("created");
        m.waited("create", WaitOutcome::Settled, Duration::from_millis(1500));
        m.openstack_call(
            "load-balancer",
            &reqwest::Method::POST,
            201,
            Some(Duration::from_millis(30)),
        );
        m.openstack_call("network", &reqwest::Method::GET, 0, None);
        m.http_request(
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            "unmatched",
            404,
        );
        let running = m.start(Verb::Apply, Subject::Service);
        let _waiter = m.waiter();
        let text = m.render();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE svc_lbaas_applies counter"), "{text}");
        assert_eq!(
            line(&text, "svc_lbaas_applies_total{"),
            "svc_lbaas_applies_total{action=\"created\"} 2"
        );
        assert_eq!(
            line(&text, "svc_lbaas_wait_seconds_total"),
            "svc_lbaas_wait_seconds_total 1.5"
        );
        assert_eq!(
            line(&text, "svc_lbaas_waits_total"),
            "svc_lbaas_waits_total 1"
        );
        // 1.5 s falls in the 2 s bucket, not the 1 s one.
        assert_eq!(
            line(
                &text,
                "svc_lbaas_wait_duration_seconds_bucket{le=\"1.0\",kind=\"create\",outcome=\"settled\"}"
            ),
            "svc_lbaas_wait_duration_seconds_bucket{le=\"1.0\",kind=\"create\",outcome=\"settled\"} 0"
        );
        assert_eq!(
            line(
                &text,
                "svc_lbaas_wait_duration_seconds_bucket{le=\"2.0\",kind=\"create\",outcome=\"settled\"}"
            ),
            "svc_lbaas_wait_duration_seconds_bucket{le=\"2.0\",kind=\"create\",outcome=\"settled\"} 1"
        );
        assert!(
            text.contains("# UNIT svc_lbaas_wait_duration_seconds seconds"),
            "{text}"
        );
        assert_eq!(
            line(&text, "svc_lbaas_openstack_call_duration_seconds_count"),
            "svc_lbaas_openstack_call_duration_seconds_count{service=\"load-balancer\",method=\"POST\"} 1"
        );
        // An unanswered call counts, with no latency.
        assert!(text.contains(
            "svc_lbaas_openstack_calls_total{service=\"network\",method=\"GET\",status=\"0\"} 1"
        ));
        assert!(
            !text.contains("service=\"network\",method=\"GET\"}"),
            "{text}"
        );
        assert!(text.contains("svc_lbaas_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1"), "{text}");
        assert_eq!(
            line(&text, "svc_lbaas_applies_in_flight "),
            "svc_lbaas_applies_in_flight 1"
        );
        assert_eq!(line(&text, "svc_lbaas_waiters "), "svc_lbaas_waiters 1");
        running.end("created", 200);
        drop(_waiter);
        let text = m.render();
        assert_eq!(
            line(&text, "svc_lbaas_applies_in_flight "),
            "svc_lbaas_applies_in_flight 0"
        );
        assert_eq!(line(&text, "svc_lbaas_waiters "), "svc_lbaas_waiters 0");
        assert_eq!(
            line(&text, "svc_lbaas_apply_duration_seconds_count"),
            "svc_lbaas_apply_duration_seconds_count{kind=\"service\",action=\"created\",outcome=\"ok\"} 1"
        );
    }

    #[test]
    fn outcomes_follow_the_answers_status_and_a_cancelled_request_is_not_timed() {
        let m = Metrics::new();
        m.start(Verb::Delete, Subject::Gateway).end("none", 403);
        m.start(Verb::Delete, Subject::Gateway).end("none", 502);
        drop(m.start(Verb::Apply, Subject::Service));
        let text = m.render();
        assert!(text.contains("svc_lbaas_delete_duration_seconds_count{kind=\"gateway\",action=\"none\",outcome=\"refused\"} 1"), "{text}");
        assert!(text.contains("svc_lbaas_delete_duration_seconds_count{kind=\"gateway\",action=\"none\",outcome=\"failed\"} 1"), "{text}");
        assert!(
            !text.contains("svc_lbaas_apply_duration_seconds_count"),
            "{text}"
        );
        assert_eq!(
            line(&text, "svc_lbaas_applies_in_flight "),
            "svc_lbaas_applies_in_flight 0"
        );
    }
}
