//! The watcher's own Prometheus metrics (OpenMetrics, `prometheus-client`):
//! queue depth, reconciles by result, syncs by result, whether this replica
//! holds the Lease. Labels take a few known values, never a Service's name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    operating_status: &'static str,
}

/// Octavia's operating statuses; anything else counts as `UNKNOWN`.
const OPERATING_STATUSES: [&str; 6] = [
    "ONLINE",
    "DEGRADED",
    "ERROR",
    "OFFLINE",
    "NO_MONITOR",
    "DRAINING",
];

pub struct WatchMetrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    syncs: Family<ResultLabels, Counter>,
    queue_depth: Gauge,
    in_flight: Gauge,
    lease_held: Gauge,
    load_balancers: Family<StatusLabels, Gauge>,
    /// The operating status last answered for each Service's load balancer.
    statuses: Mutex<HashMap<String, &'static str>>,
    /// The lists of Services, EndpointSlices and Endpoints are in.
    pub synced: AtomicBool,
}

impl Default for WatchMetrics {
    fn default() -> Self {
        let mut m = WatchMetrics {
            registry: Registry::default(),
            reconciles: Family::default(),
            syncs: Family::default(),
            queue_depth: Gauge::default(),
            in_flight: Gauge::default(),
            lease_held: Gauge::default(),
            load_balancers: Family::default(),
            statuses: Mutex::default(),
            synced: AtomicBool::new(false),
        };
        let r = &mut m.registry;
        r.register(
            "svc_lbaas_watch_queue_depth",
            "Services and Gateways waiting for a reconcile",
            m.queue_depth.clone(),
        );
        r.register(
            "svc_lbaas_watch_reconciles_in_flight",
            "Services and Gateways being reconciled now",
            m.in_flight.clone(),
        );
        r.register(
            "svc_lbaas_watch_reconciles",
            "Reconciles of Services and Gateways by result (created, updated, unchanged, skipped, deleted, failed, other)",
            m.reconciles.clone(),
        );
        r.register(
            "svc_lbaas_watch_syncs",
            "Orphan collections (/v1/sync) by result (ok, failed)",
            m.syncs.clone(),
        );
        r.register(
            "svc_lbaas_watch_lease_held",
            "1 while this replica holds the leader Lease",
            m.lease_held.clone(),
        );
        r.register(
            "svc_lbaas_watch_load_balancers",
            "Services' load balancers by the operating status last answered for them (ONLINE, DEGRADED, ERROR, OFFLINE, NO_MONITOR, DRAINING, UNKNOWN), counted by the leader",
            m.load_balancers.clone(),
        );
        m
    }
}

impl WatchMetrics {
    pub fn reconciled(&self, result: &'static str) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn synced_once(&self, result: &'static str) {
        self.syncs.get_or_create(&ResultLabels { result }).inc();
    }

    /// The work queue's depth and the reconciles running.
    pub fn queue(&self, depth: usize, in_flight: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }

    /// The leader counts; a replica that stops leading forgets what it counted.
    pub fn hold_lease(&self, held: bool) {
        self.lease_held.set(i64::from(held));
        if !held {
            self.statuses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            self.load_balancers.clear();
        }
    }

    /// The operating status answered for the Service `key`'s load balancer
    /// (`None`: it has none any more).
    pub fn load_balancer(&self, key: &str, status: Option<&str>) {
        let status = status.map(|s| {
            OPERATING_STATUSES
                .into_iter()
                .find(|k| *k == s)
                .unwrap_or("UNKNOWN")
        });
        let mut statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        let before = match status {
            Some(s) => statuses.insert(key.to_string(), s),
            None => statuses.remove(key),
        };
        if before == status {
            return;
        }
        if let Some(b) = before {
            self.load_balancers
                .get_or_create(&StatusLabels {
                    operating_status: b,
                })
                .dec();
        }
        if let Some(s) = status {
            self.load_balancers
                .get_or_create(&StatusLabels {
                    operating_status: s,
                })
                .inc();
        }
    }

    pub fn holds_lease(&self) -> bool {
        self.lease_held.get() == 1
    }

    /// The OpenMetrics text exposition, `# EOF` included.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = WatchMetrics::default();
        m.reconciled("created");
        m.reconciled("created");
        m.reconciled("failed");
        m.synced_once("ok");
        m.hold_lease(true);
        m.queue(3, 1);
        let text = m.render();
        assert!(text.contains("svc_lbaas_watch_reconciles_total{result=\"created\"} 2\n"));
        assert!(text.contains("svc_lbaas_watch_reconciles_total{result=\"failed\"} 1\n"));
        assert!(text.contains("svc_lbaas_watch_syncs_total{result=\"ok\"} 1\n"));
        assert!(text.contains("svc_lbaas_watch_lease_held 1\n"));
        assert!(text.contains("svc_lbaas_watch_queue_depth 3\n"));
        assert!(text.contains("svc_lbaas_watch_reconciles_in_flight 1\n"));
        assert!(text.contains("# TYPE svc_lbaas_watch_lease_held gauge\n"));
        assert!(text.ends_with("# EOF\n"));
        assert!(m.holds_lease());
        m.load_balancer("a/web", Some("ONLINE"));
        m.load_balancer("a/api", Some("ONLINE"));
        m.load_balancer("a/web", Some("ERROR"));
        m.load_balancer("a/web", Some("ERROR"));
        m.load_balancer("a/odd", Some("SOMETHING"));
        let text = m.render();
        let count = |s: &str| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!(
                        "svc_lbaas_watch_load_balancers{{operating_status=\"{s}\"}} "
                    ))
                })
                .unwrap_or_else(|| panic!("no {s} in {text}"))
                .to_string()
        };
        assert_eq!(count("ONLINE"), "1");
        assert_eq!(count("ERROR"), "1");
        assert_eq!(count("UNKNOWN"), "1");
        m.load_balancer("a/web", None);
        m.load_balancer("a/gone", None);
        assert!(
            m.render()
                .contains("svc_lbaas_watch_load_balancers{operating_status=\"ERROR\"} 0\n")
        );
        m.hold_lease(false);
        assert!(!m.holds_lease());
        assert!(!m.render().contains("svc_lbaas_watch_load_balancers{"));
    }
}
