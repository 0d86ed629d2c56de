//! The watcher's own Prometheus metrics: queue depth, reconciles by result,
//! syncs by result, whether this replica holds the Lease.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Default)]
pub struct WatchMetrics {
    reconciles: Mutex<BTreeMap<String, u64>>,
    syncs: Mutex<BTreeMap<&'static str, u64>>,
    pub queue_depth: AtomicU64,
    pub in_flight: AtomicU64,
    pub lease_held: AtomicBool,
    /// The lists of Services, EndpointSlices and Endpoints are in.
    pub synced: AtomicBool,
}

impl WatchMetrics {
    pub fn reconciled(&self, result: &str) {
        let mut m = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(result.to_string()).or_default() += 1;
    }

    pub fn synced_once(&self, result: &'static str) {
        let mut m = self.syncs.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(result).or_default() += 1;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP svc_lbaas_watch_queue_depth Services waiting for a reconcile.\n# TYPE svc_lbaas_watch_queue_depth gauge\nsvc_lbaas_watch_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP svc_lbaas_watch_reconciles_in_flight Services being reconciled now.\n# TYPE svc_lbaas_watch_reconciles_in_flight gauge\nsvc_lbaas_watch_reconciles_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP svc_lbaas_watch_reconciles_total Service reconciles by result (created, updated, unchanged, skipped, deleted, failed).\n# TYPE svc_lbaas_watch_reconciles_total counter"
        );
        for (result, n) in self
            .reconciles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let result = result.replace(['\\', '"', '\n'], "_");
            let _ = writeln!(
                out,
                "svc_lbaas_watch_reconciles_total{{result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP svc_lbaas_watch_syncs_total Orphan collections (/v1/sync) by result.\n# TYPE svc_lbaas_watch_syncs_total counter"
        );
        for (result, n) in self.syncs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "svc_lbaas_watch_syncs_total{{result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP svc_lbaas_watch_lease_held 1 while this replica holds the leader Lease.\n# TYPE svc_lbaas_watch_lease_held gauge\nsvc_lbaas_watch_lease_held {}",
            u8::from(self.lease_held.load(Ordering::Relaxed))
        );
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
        m.lease_held.store(true, Ordering::Relaxed);
        m.queue_depth.store(3, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("svc_lbaas_watch_reconciles_total{result=\"created\"} 2\n"));
        assert!(text.contains("svc_lbaas_watch_reconciles_total{result=\"failed\"} 1\n"));
        assert!(text.contains("svc_lbaas_watch_syncs_total{result=\"ok\"} 1\n"));
        assert!(text.contains("svc_lbaas_watch_lease_held 1\n"));
        assert!(text.contains("svc_lbaas_watch_queue_depth 3\n"));
    }
}
