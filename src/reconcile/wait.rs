//! Waiting for a load balancer, without I/O: what a provisioning status
//! means for the wait ([`judge`]) and how long to pause before the next
//! read ([`Backoff`]). `execute::wait_for` runs the loop.

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

/// How long and how often to wait for a load balancer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitPolicy {
    pub first_poll: Duration,
    pub factor: f64,
    pub max_poll: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            first_poll: Duration::from_millis(100),
            factor: 1.5,
            max_poll: Duration::from_secs(3),
        }
    }
}

/// The pauses between reads: `first_poll`, growing by `factor`, capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: WaitPolicy,
    next: Duration,
}

impl Backoff {
    pub fn new(policy: WaitPolicy) -> Backoff {
        Backoff {
            policy,
            next: policy.first_poll,
        }
    }

    /// The pause before the next read.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Takes the pause and grows the next one.
    pub fn advance(&mut self) -> Duration {
        let pause = self.next;
        self.next = pause.mul_f64(self.policy.factor).min(self.policy.max_poll);
        pause
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

    #[test]
    fn pauses_grow_by_the_factor_up_to_the_cap() {
        let mut b = Backoff::new(WaitPolicy::default());
        let pauses: Vec<u128> = (0..12).map(|_| b.advance().as_millis()).collect();
        assert_eq!(&pauses[..4], [100, 150, 225, 337]);
        assert_eq!(*pauses.last().unwrap(), 3000);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
    }
}
