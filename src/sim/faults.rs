//! Fault injection and call accounting. Faults (from the config or
//! `POST /sim/faults`) match a method and a path pattern and add latency,
//! fail a share of calls with a status, or drop the connection; admin calls
//! drive a load balancer to ERROR or expire every token. `/sim/stats` counts
//! calls per method and path (ids folded to `{id}`), resettable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path pattern; `*` matches any run of characters (`/load-balancer/*/members`).
    pub path: String,
    /// Added before answering.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of matching calls (0 to 1) answered with `status`.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Close the connection mid-answer instead of answering.
    #[serde(default)]
    pub drop_connection: bool,
    /// How many matching calls it applies to; every one when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

pub(crate) fn default_status() -> u16 {
    500
}

/// Active faults and the dice for error rates (seeded: runs repeat).
#[derive(Debug)]
pub struct Faults {
    pub(crate) active: Vec<(u64, Fault)>,
    pub(crate) next_id: u64,
    pub(crate) rng: u64,
}

impl Faults {
    pub fn new(initial: Vec<Fault>, seed: u64) -> Self {
        let mut f = Faults {
            active: Vec::new(),
            next_id: 0,
            rng: seed.max(1),
        };
        for fault in initial {
            f.add(fault);
        }
        f
    }

    pub fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        self.active.push((self.next_id, fault));
        self.next_id
    }

    pub(crate) fn roll(&mut self) -> f64 {
        // xorshift64: deterministic for a seed, good enough for dice.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for this call, if any, consuming one of its `times`.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let i = self.active.iter().position(|(_, f)| {
            f.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && glob(&f.path, path)
        })?;
        let fault = self.active[i].1.clone();
        if let Some(times) = &mut self.active[i].1.times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.active.remove(i);
            }
        }
        Some(fault)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Calls per `METHOD /path` with ids folded to `{id}`, and a journal of
/// the last [`JOURNAL`] calls with when each began and ended (a client's
/// round trips: a call that begins after another ended may have waited for
/// its answer).
#[derive(Debug)]
pub struct Stats {
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) journal: std::collections::VecDeque<Call>,
    pub(crate) since: std::time::Instant,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            calls: BTreeMap::new(),
            journal: Default::default(),
            since: std::time::Instant::now(),
        }
    }
}

/// Calls the journal holds at most (the oldest go first).
pub const JOURNAL: usize = 4096;

/// One call in the journal: `METHOD /path?query`, milliseconds since the
/// stats were reset.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub call: String,
    pub began_ms: f64,
    pub ended_ms: f64,
}

impl Stats {
    /// A call answered: into the journal.
    pub(crate) fn answered(&mut self, call: String, began: std::time::Instant) {
        let ms =
            |t: std::time::Instant| t.saturating_duration_since(self.since).as_secs_f64() * 1000.0;
        let (began_ms, ended_ms) = (ms(began), ms(std::time::Instant::now()));
        if self.journal.len() == JOURNAL {
            self.journal.pop_front();
        }
        self.journal.push_back(Call {
            call,
            began_ms,
            ended_ms,
        });
    }

    pub(crate) fn reset(&mut self) {
        *self = Stats::default();
    }

    pub(crate) fn record(&mut self, method: &str, path: &str) {
        let folded: Vec<&str> = path
            .split('/')
            .map(|seg| {
                let hexish =
                    seg.len() >= 32 && seg.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                if hexish { "{id}" } else { seg }
            })
            .collect();
        *self
            .calls
            .entry(format!("{method} {}", folded.join("/")))
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("/load-balancer/*", "/load-balancer/v2/lbaas/pools"));
        assert!(glob(
            "*/members",
            "/load-balancer/v2/lbaas/pools/abc/members"
        ));
        assert!(glob("/a/*/c/*/e", "/a/b/c/d/e"));
        assert!(!glob("/a/*/c", "/a/b/d"));
        assert!(glob("/exact", "/exact"));
        assert!(!glob("/exact", "/exactly"));
    }

    #[test]
    fn faults_apply_a_limited_number_of_times() {
        let fault = Fault {
            method: Some("POST".into()),
            path: "/network/*".into(),
            latency_ms: 0,
            error_rate: 1.0,
            status: 503,
            drop_connection: false,
            times: Some(2),
        };
        let mut f = Faults::new(vec![fault], 7);
        assert!(f.take("GET", "/network/v2.0/ports").is_none());
        assert!(f.take("POST", "/network/v2.0/ports").is_some());
        assert!(f.take("post", "/network/v2.0/ports").is_some());
        assert!(f.take("POST", "/network/v2.0/ports").is_none());
    }

    #[test]
    fn stats_fold_ids() {
        let mut s = Stats::default();
        s.record(
            "GET",
            "/load-balancer/v2/lbaas/loadbalancers/0f3e9c1a-77aa-4e2b-9d4c-5b6a7c8d9e01",
        );
        s.record(
            "GET",
            "/load-balancer/v2/lbaas/loadbalancers/1f3e9c1a-77aa-4e2b-9d4c-5b6a7c8d9e01",
        );
        assert_eq!(
            s.calls
                .get("GET /load-balancer/v2/lbaas/loadbalancers/{id}"),
            Some(&2)
        );
    }

    #[test]
    fn the_dice_are_seeded() {
        let mut a = Faults::new(vec![], 42);
        let mut b = Faults::new(vec![], 42);
        let rolls: Vec<f64> = (0..5).map(|_| a.roll()).collect();
        assert_eq!(rolls, (0..5).map(|_| b.roll()).collect::<Vec<_>>());
        assert!(rolls.iter().all(|r| (0.0..1.0).contains(r)));
    }
}
