//! The work queue of Services to reconcile, client-go's rules: a key is
//! queued at most once, a key being reconciled is not handed to a second
//! worker (a change meanwhile queues it again when the first is done), and a
//! failing key comes back after its own backoff, so it never blocks others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// What a reconcile asks of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Converged (or nothing to do): the key's failure count is reset.
    Done,
    /// Failed, may succeed later: back after this key's next backoff.
    Retry,
    /// Not converged yet (the load balancer is still settling): back after this.
    After(Duration),
}

/// Exponential backoff per key: `base`, doubling, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The pause before the `failures`-th retry (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[derive(Default)]
struct State {
    ready: VecDeque<String>,
    /// Keys in `ready`.
    queued: HashSet<String>,
    /// Keys a worker holds.
    active: HashSet<String>,
    /// Keys added while a worker held them.
    again: HashSet<String>,
    failures: HashMap<String, u32>,
}

pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
    backoff: Backoff,
}

impl Queue {
    pub fn new(backoff: Backoff) -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            backoff,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a key (once, however often it is added before a worker takes it).
    pub fn add(&self, key: &str) {
        let mut s = self.lock();
        if s.active.contains(key) {
            s.again.insert(key.to_string());
            return;
        }
        if s.queued.insert(key.to_string()) {
            s.ready.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues a key after a pause.
    pub fn add_after(self: &Arc<Self>, key: &str, pause: Duration) {
        let queue = Arc::clone(self);
        let key = key.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            queue.add(&key);
        });
    }

    /// The next key, held by the caller until `done`.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(key) = s.ready.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    let more = !s.ready.is_empty();
                    drop(s);
                    if more {
                        // Another worker may take the next one.
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Gives a key back with its reconcile's outcome; returns the pause
    /// before it comes back, if it does.
    pub fn done(self: &Arc<Self>, key: &str, outcome: Outcome) -> Option<Duration> {
        let (again, pause) = {
            let mut s = self.lock();
            s.active.remove(key);
            let pause = match outcome {
                Outcome::Done => {
                    s.failures.remove(key);
                    None
                }
                Outcome::Retry => {
                    let n = s.failures.entry(key.to_string()).or_insert(0);
                    *n = n.saturating_add(1);
                    Some(self.backoff.delay(*n))
                }
                Outcome::After(pause) => Some(pause),
            };
            (s.again.remove(key), pause)
        };
        if again {
            // Changed while it was reconciled: at once, whatever the outcome.
            self.add(key);
        } else if let Some(pause) = pause {
            self.add_after(key, pause);
        }
        pause
    }

    /// Keys waiting for a worker.
    pub fn depth(&self) -> usize {
        self.lock().ready.len()
    }

    /// Keys workers hold now.
    pub fn in_flight(&self) -> usize {
        self.lock().active.len()
    }

    /// Failures in a row of a key (0 after a success).
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Arc<Queue> {
        Queue::new(Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
        })
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
        };
        let d: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 8, 8, 8]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(8));
    }

    #[tokio::test]
    async fn a_key_added_twice_is_queued_once_in_order() {
        let q = queue();
        q.add("a/x");
        q.add("a/y");
        q.add("a/x");
        assert_eq!(q.depth(), 2);
        assert_eq!(q.next().await, "a/x");
        assert_eq!(q.next().await, "a/y");
        assert_eq!(q.depth(), 0);
    }

    #[tokio::test]
    async fn a_key_changed_while_held_comes_back_once_it_is_done() {
        let q = queue();
        q.add("a/x");
        let k = q.next().await;
        // Not handed to a second worker while the first holds it.
        q.add("a/x");
        q.add("a/x");
        assert_eq!(q.depth(), 0);
        assert_eq!(q.done(&k, Outcome::Done), None);
        assert_eq!(q.depth(), 1);
        assert_eq!(q.next().await, "a/x");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_key_backs_off_alone_and_a_success_resets_it() {
        let q = queue();
        q.add("a/bad");
        q.add("a/good");
        let bad = q.next().await;
        assert_eq!(q.done(&bad, Outcome::Retry), Some(Duration::from_secs(1)));
        // The other key is served at once.
        let good = q.next().await;
        assert_eq!(good, "a/good");
        q.done(&good, Outcome::Done);
        // The failing one is back after its pause, then waits twice as long.
        let t0 = tokio::time::Instant::now();
        let bad = q.next().await;
        assert_eq!(bad, "a/bad");
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        assert_eq!(q.done(&bad, Outcome::Retry), Some(Duration::from_secs(2)));
        assert_eq!(q.failures("a/bad"), 2);
        let bad = q.next().await;
        assert_eq!(q.done(&bad, Outcome::Done), None);
        assert_eq!(q.failures("a/bad"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn workers_share_the_keys_each_held_by_one() {
        let q = queue();
        for k in ["n/a", "n/b", "n/c"] {
            q.add(k);
        }
        let (a, b) = tokio::join!(q.next(), q.next());
        assert_ne!(a, b);
        let c = q.next().await;
        let mut all = vec![a, b, c];
        all.sort();
        assert_eq!(all, ["n/a", "n/b", "n/c"]);
    }
}
