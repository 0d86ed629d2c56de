//! Waiting for a load balancer, without I/O: what a provisioning status
//! means for the wait ([`judge`]), when to read next ([`next_read`]), and
//! how long this cloud took recently ([`Learnt`]). `board.rs` runs the
//! waits, sharing one status read among all that wait at once.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::openstack::OpenStackError;

/// What one status read means for a wait.
#[derive(Debug)]
pub enum Verdict {
    /// Still PENDING_* (or, waiting for it to go, still there): read again.
    Continue,
    Done,
    Fail(OpenStackError),
}

/// A load balancer deleted while it was waited for (by a racing replica):
/// the caller observes and plans again.
pub fn vanished(id: &str) -> OpenStackError {
    OpenStackError::Missing {
        kind: "load balancer",
        id: id.to_string(),
    }
}

/// Judges a load balancer's `provisioning_status` (`None`: it answered
/// 404) for a wait until it is ACTIVE or, `gone`, until it is deleted.
pub fn judge(id: &str, status: Option<&str>, gone: bool) -> Verdict {
    match (status, gone) {
        (None | Some("DELETED"), true) => Verdict::Done,
        (None | Some("PENDING_DELETE" | "DELETED"), false) => Verdict::Fail(vanished(id)),
        (Some("ACTIVE"), false) => Verdict::Done,
        (Some("ERROR"), false) => {
            Verdict::Fail(OpenStackError::LoadBalancerError { id: id.to_string() })
        }
        _ => Verdict::Continue,
    }
}

/// What a wait follows, for learning how long this cloud takes: the kind of
/// operation (a create of a load balancer, an update of a pool, ...) that
/// left the load balancer PENDING_*, keyed by its variant (never by how it
/// is shown), or a wait that follows no operation of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitKind {
    /// A load balancer being created.
    Create,
    After(std::mem::Discriminant<crate::plan::Operation>),
    /// Another writer's change, settling.
    Update,
    /// A load balancer going away.
    Delete,
}

impl WaitKind {
    pub fn after(op: &crate::plan::Operation) -> WaitKind {
        match op {
            crate::plan::Operation::CreateLoadBalancer { .. } => WaitKind::Create,
            _ => WaitKind::After(std::mem::discriminant(op)),
        }
    }

    /// The wait's kind in the metrics: create, update or delete (`gone`:
    /// waited until the load balancer is deleted).
    pub fn label(self, gone: bool) -> &'static str {
        match self {
            WaitKind::Create => "create",
            WaitKind::Delete => "delete",
            _ if gone => "delete",
            WaitKind::After(_) | WaitKind::Update => "update",
        }
    }
}

/// The shortest pause between reads of one wait, but where it reads densely.
pub const FLOOR: Duration = Duration::from_millis(100);
/// The shortest pause where a wait reads densely (where recent changes of its
/// kind ended): 3% of their median down to changes of 1.7 s; a quick cloud
/// deletes a load balancer in 1.2 s, where a 100 ms floor saw it 7% late.
pub const DENSE_FLOOR: Duration = Duration::from_millis(50);
/// The longest pause between reads.
pub const MAX_PAUSE: Duration = Duration::from_secs(3);
/// Without a learnt duration (and past the dense reads) a wait reads every
/// 8% of the time it has waited: it notices the change at most 8% late
/// (plus [`FLOOR`]).
const STRIDE: f64 = 0.08;
/// Dense reads: every 3% of the median recent duration.
const DENSE: f64 = 0.03;
/// How many recent durations of each kind are kept.
const SAMPLES: usize = 5;

/// How long this cloud took for the last few changes of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recent {
    pub shortest: Duration,
    pub median: Duration,
    pub longest: Duration,
}

impl Recent {
    /// The same duration every time.
    pub fn steady(took: Duration) -> Recent {
        Recent {
            shortest: took,
            median: took,
            longest: took,
        }
    }
}

/// When a wait reads next: the time since the wait began at which to read,
/// given that it has waited `elapsed` and how long this kind of change took
/// recently. Sparse while it is early (at half the start of the dense
/// reads, then at it), dense where recent changes ended (from just before
/// the shortest to the longest: one cloud provisions the same body in 4 s
/// or in 8 s, and a change ending between two sparse reads would be seen
/// late), then proportional to the time waited; never closer than
/// [`FLOOR`] ([`DENSE_FLOOR`] where dense) nor further than [`MAX_PAUSE`]
/// apart.
pub fn next_read(elapsed: Duration, recent: Option<Recent>) -> Duration {
    let (pause, floor) = match recent {
        Some(r) => {
            let median = r.median;
            // One quick change does not make every wait read densely from
            // the start, nor one slow change until late.
            let dense_from = r.shortest.mul_f64(0.9).max(median.mul_f64(0.5));
            let dense_to = r.longest.max(median.mul_f64(1.15)).min(median.mul_f64(1.5));
            if elapsed < dense_from {
                let mark = if elapsed < dense_from / 2 {
                    dense_from / 2
                } else {
                    dense_from
                };
                return mark.clamp(elapsed + FLOOR, elapsed + MAX_PAUSE);
            }
            if elapsed < dense_to {
                (median.mul_f64(DENSE), DENSE_FLOOR)
            } else {
                (elapsed.mul_f64(STRIDE), FLOOR)
            }
        }
        None => (elapsed.mul_f64(STRIDE), FLOOR),
    };
    elapsed + pause.clamp(floor, MAX_PAUSE)
}

/// How long this cloud took recently for each kind of change: the last few
/// waits of that kind.
#[derive(Debug, Default)]
pub struct Learnt {
    durations: HashMap<WaitKind, VecDeque<Duration>>,
}

impl Learnt {
    pub fn record(&mut self, kind: WaitKind, took: Duration) {
        let recent = self.durations.entry(kind).or_default();
        if recent.len() == SAMPLES {
            recent.pop_front();
        }
        recent.push_back(took);
    }

    /// The shortest, median and longest of the last few waits of `kind`.
    pub fn recent(&self, kind: WaitKind) -> Option<Recent> {
        let mut recent: Vec<Duration> = self.durations.get(&kind)?.iter().copied().collect();
        recent.sort();
        Some(Recent {
            shortest: *recent.first()?,
            median: recent[recent.len() / 2],
            longest: *recent.last()?,
        })
    }

    pub fn expected(&self, kind: WaitKind) -> Option<Duration> {
        self.recent(kind).map(|r| r.median)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(v: Verdict) -> bool {
        matches!(v, Verdict::Done)
    }

    #[test]
    fn a_wait_for_active_ends_on_active_fails_on_error_and_on_a_deletion() {
        assert!(done(judge("lb", Some("ACTIVE"), false)));
        assert!(matches!(
            judge("lb", Some("PENDING_CREATE"), false),
            Verdict::Continue
        ));
        assert!(matches!(
            judge("lb", Some("PENDING_UPDATE"), false),
            Verdict::Continue
        ));
        assert!(matches!(
            judge("lb", Some("ERROR"), false),
            Verdict::Fail(OpenStackError::LoadBalancerError { .. })
        ));
        for gone in [None, Some("PENDING_DELETE"), Some("DELETED")] {
            match judge("lb", gone, false) {
                Verdict::Fail(e) => assert!(e.is_vanished(), "{gone:?}"),
                v => panic!("{gone:?}: {v:?}"),
            }
        }
    }

    #[test]
    fn a_wait_for_a_deletion_ends_on_404_or_deleted_only() {
        assert!(done(judge("lb", None, true)));
        assert!(done(judge("lb", Some("DELETED"), true)));
        for still in ["PENDING_DELETE", "ACTIVE", "ERROR", "PENDING_UPDATE"] {
            assert!(
                matches!(judge("lb", Some(still), true), Verdict::Continue),
                "{still}"
            );
        }
    }

    /// The reads of a wait that ends at `end`, and how late the first read
    /// at or after `end` is.
    fn reads_until(end: Duration, recent: Option<Recent>) -> (usize, Duration) {
        let mut t = next_read(Duration::ZERO, recent);
        let mut reads = 1;
        while t < end {
            let next = next_read(t, recent);
            assert!(
                next - t >= DENSE_FLOOR && next - t <= MAX_PAUSE,
                "{t:?} -> {next:?}"
            );
            t = next;
            reads += 1;
        }
        (reads, t - end)
    }

    #[test]
    fn without_a_learnt_duration_a_wait_notices_the_end_within_8_percent() {
        for secs in [1.0, 5.0, 30.0, 0.35, 12.5] {
            let end = Duration::from_secs_f64(secs);
            let (reads, late) = reads_until(end, None);
            assert!(late <= end.mul_f64(0.08) + FLOOR, "{secs} s: {late:?} late");
            assert!(reads < 60, "{secs} s: {reads} reads");
        }
    }

    #[test]
    fn a_learnt_duration_makes_early_reads_sparse_and_late_ones_dense() {
        for secs in [1.0, 5.0, 30.0] {
            let end = Duration::from_secs_f64(secs);
            let (cold, cold_late) = reads_until(end, None);
            let (warm, warm_late) = reads_until(end, Some(Recent::steady(end)));
            assert!(
                warm < cold,
                "{secs} s: {warm} reads, {cold} without learning"
            );
            assert!(
                warm_late <= end.mul_f64(0.04) + FLOOR,
                "{secs} s: {warm_late:?} late"
            );
            assert!(warm_late <= cold_late + FLOOR, "{secs} s");
            // A change slower than learnt is still noticed within 8%.
            let slow = end.mul_f64(2.0);
            let (_, late) = reads_until(slow, Some(Recent::steady(end)));
            assert!(
                late <= slow.mul_f64(0.08) + FLOOR,
                "{secs} s slow: {late:?}"
            );
        }
    }

    #[test]
    fn a_change_ending_anywhere_recent_changes_ended_is_noticed_within_3_percent() {
        // This cloud took 4 to 8 s lately (median 6 s): a change ending at
        // any time between is seen within 3% of 6 s (plus the floor), where
        // reads at 50%, 70% and 85% of the median saw one ending at 4.3 s
        // 0.8 s late.
        let recent = Recent {
            shortest: Duration::from_secs(4),
            median: Duration::from_secs(6),
            longest: Duration::from_secs(8),
        };
        for tenths in 36..=80 {
            let end = Duration::from_millis(tenths * 100);
            let (reads, late) = reads_until(end, Some(recent));
            assert!(
                late <= Duration::from_secs(6).mul_f64(0.03) + FLOOR,
                "{end:?}: {late:?} late"
            );
            // Two sparse reads, then one every 180 ms.
            assert!(reads <= 2 + 25, "{end:?}: {reads} reads");
        }
    }

    #[test]
    fn on_a_quick_cloud_dense_reads_come_every_50_ms_and_sparse_ones_no_closer_than_100() {
        // Deletes of 1.2-1.4 s (median 1.3 s): a delete ending anywhere
        // between is seen within 50 ms (3% of 1.3 s is 39 ms), where a 100 ms
        // floor saw it up to 100 ms late.
        let recent = Recent {
            shortest: Duration::from_millis(1200),
            median: Duration::from_millis(1300),
            longest: Duration::from_millis(1400),
        };
        for ms in (1080..=1400).step_by(10) {
            let end = Duration::from_millis(ms);
            let (reads, late) = reads_until(end, Some(recent));
            assert!(late <= DENSE_FLOOR, "{end:?}: {late:?} late");
            // Two sparse reads (540 ms, 1080 ms), then one every 50 ms.
            assert!(reads <= 2 + 7, "{end:?}: {reads} reads");
        }
        // Before the dense reads and without a learnt duration: 100 ms apart
        // at least.
        assert_eq!(
            next_read(Duration::ZERO, Some(recent)),
            Duration::from_millis(540)
        );
        assert_eq!(
            next_read(Duration::from_millis(100), None),
            Duration::from_millis(200)
        );
        assert_eq!(
            next_read(Duration::from_millis(1500), Some(recent)),
            Duration::from_millis(1620)
        );
    }

    #[test]
    fn one_odd_recent_change_neither_makes_reads_dense_early_nor_keeps_them_dense() {
        let median = Duration::from_secs(6);
        // One change took 0.3 s: the reads are still sparse until half the
        // median (2 reads by then).
        let quick = Recent {
            shortest: Duration::from_millis(300),
            median,
            longest: median,
        };
        assert_eq!(reads_until(Duration::from_secs(3), Some(quick)).0, 2);
        // One took 60 s: dense reads end at 1.5 times the median; after,
        // every 8% of the time waited (a 30 s change: ~20 reads past 9 s,
        // not 500).
        let slow = Recent {
            shortest: median,
            median,
            longest: Duration::from_secs(60),
        };
        let (reads, late) = reads_until(Duration::from_secs(30), Some(slow));
        assert!(reads < 50, "{reads} reads");
        assert!(
            late <= Duration::from_secs(30).mul_f64(0.08) + FLOOR,
            "{late:?}"
        );
    }

    #[test]
    fn the_recent_durations_are_the_last_five() {
        let mut l = Learnt::default();
        let kind = WaitKind::Update;
        assert_eq!(l.recent(kind), None);
        for ms in [900, 5000, 1000, 1100, 1000, 1200] {
            l.record(kind, Duration::from_millis(ms));
        }
        // 900 fell out: of 5000, 1000, 1100, 1000, 1200.
        assert_eq!(
            l.recent(kind),
            Some(Recent {
                shortest: Duration::from_millis(1000),
                median: Duration::from_millis(1100),
                longest: Duration::from_millis(5000),
            })
        );
        assert_eq!(l.recent(WaitKind::Delete), None);
    }

    #[test]
    fn the_expected_duration_is_the_median_of_the_last_five() {
        let mut l = Learnt::default();
        let kind = WaitKind::Update;
        assert_eq!(l.expected(kind), None);
        for ms in [900, 5000, 1000, 1100, 1000, 1200] {
            l.record(kind, Duration::from_millis(ms));
        }
        // 900 fell out; of 5000, 1000, 1100, 1000, 1200 the median is 1100.
        assert_eq!(l.expected(kind), Some(Duration::from_millis(1100)));
        assert_eq!(l.expected(WaitKind::Delete), None);
    }
}
