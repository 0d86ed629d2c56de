//! Prometheus counters, process-wide: HTTP requests by route and status,
//! OpenStack calls by service, method and status, waits and their seconds,
//! applies by action. Rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

const HELP: [(&str, &str); 7] = [
    (
        "svc_lbaas_http_requests_total",
        "REST requests by method, route and status.",
    ),
    (
        "svc_lbaas_openstack_calls_total",
        "OpenStack calls by service, method and status (unreachable: 0).",
    ),
    (
        "svc_lbaas_waits_total",
        "Waits for a load balancer to settle.",
    ),
    (
        "svc_lbaas_wait_seconds_total",
        "Seconds spent waiting for load balancers to settle.",
    ),
    (
        "svc_lbaas_status_reads_total",
        "Status reads of waits (one read answers every wait of the process at once).",
    ),
    (
        "svc_lbaas_applies_total",
        "Applies answered, by action (created, updated, unchanged, skipped; deleted: a Service that no longer gets a load balancer); failures count in svc_lbaas_problems_total.",
    ),
    (
        "svc_lbaas_problems_total",
        "Problems answered (REST, gRPC, event and sync items) by type and whether a retry may succeed.",
    ),
];

#[derive(Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, String), f64>>,
}

pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], by: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *values.entry((name, labels)).or_default() += by;
    }

    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// The sum of a counter over all its labels.
    pub fn total(&self, name: &str) -> f64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, v)| v)
            .sum()
    }

    pub fn render(&self) -> String {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((n, labels), v) in values.iter().filter(|((n, _), _)| *n == name) {
                if labels.is_empty() {
                    let _ = writeln!(out, "{n} {v}");
                } else {
                    let _ = writeln!(out, "{n}{{{labels}}} {v}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let m = Metrics::default();
        m.inc("svc_lbaas_applies_total", &[("action", "created")]);
        m.inc("svc_lbaas_applies_total", &[("action", "created")]);
        m.add("svc_lbaas_wait_seconds_total", &[], 1.5);
        let text = m.render();
        assert!(text.contains("# TYPE svc_lbaas_applies_total counter"));
        assert!(
            text.contains("svc_lbaas_applies_total{action=\"created\"} 2"),
            "{text}"
        );
        assert!(text.contains("svc_lbaas_wait_seconds_total 1.5"), "{text}");
    }
}
