//! The waits of a process, sharing their reads: every wait registers the
//! load balancer it waits for, and one status read answers all of them
//! (one GET when one load balancer is waited for, else one list with
//! `fields=`), so the read rate stays flat however many applies wait at
//! once: one read per [`StatusBoard`] floor at most (5 a second when
//! several wait, 20 when one does and reads densely; fewer on a cloud slow to
//! answer them).
//! Each wait reads on its own schedule
//! ([`next_read`]), learnt from how long this cloud took recently for the
//! same kind of change ([`Learnt`]), and ends on the first read that shows
//! its end, whichever wait sent it. No task runs in the background: the
//! wait whose turn comes reads for everyone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::cloud::{Calls, LoadBalancing, ProgressEvent};
use super::wait::{Learnt, Verdict, WaitKind, judge, next_read};
use crate::metrics::WaitOutcome;
use crate::openstack::OpenStackError;

type Result<T> = std::result::Result<T, OpenStackError>;

/// The shared reads of one process's waits (one per Reconciler).
pub struct StatusBoard {
    /// Load balancers waited for, with how many waits each.
    waiting: Mutex<HashMap<String, usize>>,
    /// The last read; held while a read is under way, so the waits that
    /// want one meanwhile take its answer instead of reading again.
    last: tokio::sync::Mutex<Reading>,
    learnt: Mutex<Learnt>,
    /// `false`: read at once, no schedule (a cloud where nothing is ever
    /// pending, the in-memory one).
    paced: bool,
    /// This process's load balancer creates on their way to Octavia.
    creates: tokio::sync::watch::Sender<Creates>,
    /// Bumped after every read: a wait whose next read is seconds away
    /// looks at each one (a list of 50 load balancers, read every 200 ms
    /// for the others, shows its end long before its own turn).
    readings: tokio::sync::watch::Sender<()>,
}

/// Load balancer creates waiting for a call slot or sent and not yet
/// answered, numbered in the order they began.
#[derive(Default)]
struct Creates {
    next: u64,
    open: BTreeSet<u64>,
}

/// One load balancer create on its way to Octavia, until dropped.
pub struct CreateUnderWay<'a> {
    board: &'a StatusBoard,
    number: u64,
}

impl Drop for CreateUnderWay<'_> {
    fn drop(&mut self) {
        self.board.creates.send_modify(|c| {
            c.open.remove(&self.number);
        });
    }
}

#[derive(Default)]
struct Reading {
    /// When the read was sent: its answer is at least this recent.
    at: Option<Instant>,
    /// How long it took to answer (queueing for a call slot included).
    took: Duration,
    /// The load balancers it asked about; absent from `statuses`: gone.
    covered: HashSet<String>,
    statuses: HashMap<String, String>,
}

/// The shortest time between two reads: 50 ms while one load balancer is
/// waited for (its wait's dense reads, [`super::wait::DENSE_FLOOR`]), 200 ms
/// (5 reads a second) when several are; and, on a cloud
/// slow to answer them, three times the last read's time (up to 2 s), so
/// that status reads take no more than a third of its API's time. (A list of
/// 50 load balancers takes Octavia 19 six times as long as one GET.)
fn floor(waiting: usize, last_took: Duration) -> Duration {
    let base = if waiting > 1 {
        Duration::from_millis(200)
    } else {
        super::wait::DENSE_FLOOR
    };
    base.max((last_took * 3).min(Duration::from_secs(2)))
}

impl Reading {
    /// The load balancer's status in this read if it was sent at `since` or
    /// later and asked about it (`Some(None)`: gone).
    fn answer(&self, id: &str, since: Instant) -> Option<Option<String>> {
        let at = self.at?;
        (at >= since && self.covered.contains(id)).then(|| self.statuses.get(id).cloned())
    }
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard {
            waiting: Mutex::new(HashMap::new()),
            last: tokio::sync::Mutex::new(Reading::default()),
            learnt: Mutex::new(Learnt::default()),
            paced: true,
            creates: tokio::sync::watch::Sender::new(Creates::default()),
            readings: tokio::sync::watch::Sender::new(()),
        }
    }
}

/// Unregisters a wait however it ends (done, failed, or dropped).
struct Registered<'a> {
    board: &'a StatusBoard,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut waiting = self.board.waiting();
        if let Some(n) = waiting.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.id);
            }
        }
    }
}

impl StatusBoard {
    /// A board that reads at once, without pauses: for the in-memory cloud.
    pub fn unpaced() -> StatusBoard {
        StatusBoard {
            paced: false,
            ..StatusBoard::default()
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn learnt(&self) -> std::sync::MutexGuard<'_, Learnt> {
        self.learnt.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a load balancer create under way until the mark is dropped
    /// (answered, failed or cancelled).
    pub fn create_under_way(&self) -> CreateUnderWay<'_> {
        let mut number = 0;
        self.creates.send_modify(|c| {
            number = c.next;
            c.next += 1;
            c.open.insert(number);
        });
        CreateUnderWay {
            board: self,
            number,
        }
    }

    /// Returns once every load balancer create this process began before
    /// it is first polled has been answered (not those begun since, so a
    /// stream of new creates cannot hold it back), or after half of
    /// `wait_left` (the wait for ACTIVE keeps the rest). Octavia's API
    /// makes each create's VIP port in Neutron before it answers, one
    /// create at a time: a floating IP POST made meanwhile slows each of
    /// them (issue #28).
    pub async fn after_earlier_creates(&self, wait_left: Duration) {
        let limit = wait_left / 2;
        let before = self.creates.borrow().next;
        let mut changes = self.creates.subscribe();
        let earlier_open = |c: &Creates| c.open.first().is_some_and(|first| *first < before);
        if !earlier_open(&changes.borrow_and_update()) {
            return;
        }
        tracing::debug!("a floating IP waits for this process's earlier load balancer creates");
        // The sender lives in `self`: `wait_for` cannot fail.
        let answered = tokio::time::timeout(limit, changes.wait_for(|c| !earlier_open(c))).await;
        if answered.is_err() {
            tracing::info!(
                limit_s = limit.as_secs(),
                "made a floating IP before this process's earlier load balancer creates were answered: they took longer than its limit"
            );
        }
    }

    /// How long `kind` took recently on this cloud.
    pub fn expected(&self, kind: WaitKind) -> Option<Duration> {
        self.learnt().expected(kind)
    }

    /// Waits until the load balancer is ACTIVE (or, `gone`, deleted) after
    /// `kind`; fails on ERROR, on its deletion while waiting for ACTIVE, or
    /// after `timeout`. Counted in `calls` (the reads this wait made) and in
    /// the wait metrics.
    pub async fn wait(
        &self,
        cloud: &dyn LoadBalancing,
        calls: &Calls,
        id: &str,
        kind: WaitKind,
        gone: bool,
        timeout: Duration,
    ) -> Result<()> {
        calls
            .waits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let _waiter = crate::metrics::global().waiter();
        // Recorded however the wait ends, a request's deadline cutting it
        // short included (a timeout).
        let mut record = WaitRecord {
            kind: kind.label(gone),
            started,
            outcome: WaitOutcome::Timeout,
        };
        let result = self
            .poll(cloud, calls, id, kind, gone, timeout, &mut record.kind)
            .await;
        let elapsed = started.elapsed();
        if result.is_ok() {
            self.learnt().record(kind, elapsed);
        }
        calls.report(ProgressEvent::Waited {
            load_balancer_id: id.to_string(),
            status: match &result {
                Ok(()) if gone => "DELETED".into(),
                Ok(()) => "ACTIVE".into(),
                Err(e) => e.to_string(),
            },
            elapsed_ms: elapsed.as_millis() as u64,
        });
        record.outcome = match &result {
            Ok(()) => WaitOutcome::Settled,
            Err(OpenStackError::WaitTimeout { .. }) => WaitOutcome::Timeout,
            Err(_) => WaitOutcome::Error,
        };
        result
    }

    /// `label`: the wait's kind in the metrics, `create` once it reads
    /// PENDING_CREATE (whatever the caller knew of it).
    #[allow(clippy::too_many_arguments)]
    async fn poll(
        &self,
        cloud: &dyn LoadBalancing,
        calls: &Calls,
        id: &str,
        kind: WaitKind,
        gone: bool,
        timeout: Duration,
        label: &mut &'static str,
    ) -> Result<()> {
        *self.waiting().entry(id.to_string()).or_default() += 1;
        let _registered = Registered {
            board: self,
            id: id.to_string(),
        };
        let started = Instant::now();
        let mut readings = self.readings.subscribe();
        let recent = self.learnt().recent(kind);
        let mut due = started;
        if self.paced {
            due += next_read(Duration::ZERO, recent);
        }
        loop {
            // Its own turn, or another wait's read (or this one's, already
            // judged): done if it shows this one's end, else the schedule
            // stands. (The sender lives in `self`: it cannot close.)
            let (status, own) = tokio::select! {
                () = tokio::time::sleep_until(due) => {
                    (self.status_since(cloud, calls, id, due).await?, true)
                }
                Ok(()) = readings.changed() => match self.last.lock().await.answer(id, started) {
                    Some(status) => (status, false),
                    None => continue,
                },
            };
            if status.as_deref() == Some("PENDING_CREATE") {
                *label = "create";
            }
            match judge(id, status.as_deref(), gone) {
                Verdict::Done => return Ok(()),
                Verdict::Fail(e) => return Err(e),
                Verdict::Continue if !own => continue,
                Verdict::Continue => {}
            }
            let next = if self.paced {
                next_read(started.elapsed(), recent)
            } else {
                started.elapsed()
            };
            if next > timeout {
                return Err(OpenStackError::WaitTimeout {
                    id: id.to_string(),
                    status: status.unwrap_or_default(),
                    seconds: timeout.as_secs(),
                });
            }
            due = started + next;
        }
    }

    /// The load balancer's status as read at `not_before` or later (`None`:
    /// gone): the last read's if it is recent enough and asked about it,
    /// else a new read of every load balancer waited for, no sooner than
    /// the floor after the last.
    async fn status_since(
        &self,
        cloud: &dyn LoadBalancing,
        calls: &Calls,
        id: &str,
        not_before: Instant,
    ) -> Result<Option<String>> {
        loop {
            let mut last = self.last.lock().await;
            if let Some(status) = last.answer(id, not_before) {
                return Ok(status);
            }
            let ids: Vec<String> = self.waiting().keys().cloned().collect();
            if self.paced
                && let Some(at) = last.at
            {
                let until = at + floor(ids.len(), last.took);
                if Instant::now() < until {
                    drop(last);
                    tokio::time::sleep_until(until).await;
                    continue;
                }
            }
            let at = Instant::now();
            crate::metrics::global().status_read();
            let statuses = cloud.load_balancer_statuses(calls, &ids).await?;
            *last = Reading {
                at: Some(at),
                took: at.elapsed(),
                covered: ids.into_iter().collect(),
                statuses,
            };
            let status = last.statuses.get(id).cloned();
            // The other waits look at it once it is unlocked.
            drop(last);
            self.readings.send_replace(());
            return Ok(status);
        }
    }
}

/// A wait's observation in the metrics, made when it ends (or is dropped).
struct WaitRecord {
    kind: &'static str,
    started: Instant,
    outcome: WaitOutcome,
}

impl Drop for WaitRecord {
    fn drop(&mut self) {
        crate::metrics::global().waited(self.kind, self.outcome, self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::{StatusBoard, floor};
    use std::time::Duration;

    /// Whether `wait` is still waiting after being polled once more.
    async fn pending(wait: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>) -> bool {
        tokio::time::timeout(Duration::ZERO, wait.as_mut())
            .await
            .is_err()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_floating_ip_waits_for_the_creates_begun_before_it_and_no_later_one() {
        let board = StatusBoard::default();
        // What came before is read when the wait is first polled: each wait
        // below is polled before the creates meant to come after it.
        // None under way: no wait.
        let mut none = std::pin::pin!(board.after_earlier_creates(HOUR));
        assert!(!pending(&mut none).await);

        let first = board.create_under_way();
        let second = board.create_under_way();
        let mut wait = std::pin::pin!(board.after_earlier_creates(HOUR));
        assert!(pending(&mut wait).await);
        let later = board.create_under_way();
        drop(second);
        assert!(pending(&mut wait).await, "the first is still under way");
        drop(first);
        assert!(
            !pending(&mut wait).await,
            "a create begun after the wait does not hold it"
        );
        // The later one is still counted for a wait that begins now.
        let mut next = std::pin::pin!(board.after_earlier_creates(HOUR));
        assert!(pending(&mut next).await);
        drop(later);
        assert!(!pending(&mut next).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_floating_ip_waits_for_earlier_creates_no_longer_than_its_limit() {
        let board = StatusBoard::default();
        let _stuck = board.create_under_way();
        let started = tokio::time::Instant::now();
        board.after_earlier_creates(Duration::from_secs(60)).await;
        // Half of the wait left: 30 s.
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[test]
    fn the_floor_between_reads_grows_with_how_long_the_cloud_takes_to_answer() {
        let ms = Duration::from_millis;
        assert_eq!(floor(1, ms(10)), ms(50));
        assert_eq!(floor(50, ms(10)), ms(200));
        // Octavia 19 listing 50 load balancers: 150 ms a read, 2 reads a second.
        assert_eq!(floor(50, ms(150)), ms(450));
        assert_eq!(floor(1, ms(60)), ms(180));
        // A read queued for a minute behind a busy API: no more than 2 s apart.
        assert_eq!(floor(50, Duration::from_secs(60)), Duration::from_secs(2));
    }
}
