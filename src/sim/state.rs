//! The simulator's state: its configuration, the cloud (Neutron's, Octavia's
//! and Barbican's objects together, behind one lock), tokens, faults and
//! call counters.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::common::{Seed, lock};
use super::faults::{Fault, Faults, Stats};
use super::{barbican, keystone, neutron, octavia};

/// How the simulated cloud behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// How long a load balancer tree stays PENDING_* after a write.
    #[serde(with = "millis")]
    pub provisioning_delay: Duration,
    /// Lifetime of a Keystone token.
    #[serde(with = "millis")]
    pub token_ttl: Duration,
    /// Faults active from the start (more can be added at `/sim/faults`).
    pub faults: Vec<Fault>,
    /// Seed of the error-rate dice, so a run can be repeated.
    pub seed: u64,
    /// The newest Octavia API minor version the version document offers
    /// (`v2.N`), to stand in for older clouds.
    pub octavia_minor: u32,
    /// Listeners created with their pool inline, pools with members and a
    /// monitor inline, are taken (a cloud without Octavia 19's 500 there).
    pub nested_creates: bool,
    /// Floating IPs the public pool holds (241: 172.24.4.10-250).
    pub public_addresses: u32,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            provisioning_delay: Duration::from_millis(500),
            token_ttl: Duration::from_secs(3600),
            faults: Vec::new(),
            seed: 1,
            octavia_minor: 29,
            nested_creates: false,
            public_addresses: 241,
        }
    }
}

/// All the simulator's state. Handlers lock it briefly, never across an await.
pub struct SimState {
    pub config: SimConfig,
    /// `http://127.0.0.1:PORT`, for the catalog.
    pub base_url: String,
    cloud: Mutex<Cloud>,
    /// Microseconds the cloud's lock has been held, over all requests: the
    /// simulator serves one request's work at a time (`/sim/stats`).
    pub cloud_held_us: std::sync::atomic::AtomicU64,
    pub tokens: Mutex<keystone::Tokens>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<Stats>,
    pub seed: Seed,
}

/// Neutron and Octavia objects together: a load balancer's VIP is a port.
#[derive(Debug, Default)]
pub struct Cloud {
    pub neutron: neutron::Neutron,
    pub octavia: octavia::Octavia,
    pub barbican: barbican::Barbican,
}

impl SimState {
    pub fn new(config: SimConfig, base_url: String) -> Arc<SimState> {
        let mut cloud = Cloud::default();
        let seed = cloud.neutron.seed_topology(config.public_addresses);
        let faults = Faults::new(config.faults.clone(), config.seed);
        Arc::new(SimState {
            config,
            base_url,
            cloud: Mutex::new(cloud),
            cloud_held_us: Default::default(),
            tokens: Mutex::new(keystone::Tokens::default()),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            seed,
        })
    }

    /// The cloud, with every load balancer whose provisioning delay has passed
    /// moved on (lazily, so paused test clocks work and nothing runs in the background).
    pub fn cloud(&self) -> CloudGuard<'_> {
        let mut cloud = lock(&self.cloud);
        let taken = Instant::now();
        let Cloud {
            neutron, octavia, ..
        } = &mut *cloud;
        octavia.settle(taken, neutron);
        CloudGuard {
            cloud,
            taken,
            held_us: &self.cloud_held_us,
        }
    }
}

/// The cloud, locked; counts how long it was held when dropped.
pub struct CloudGuard<'a> {
    cloud: MutexGuard<'a, Cloud>,
    taken: Instant,
    held_us: &'a std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for CloudGuard<'_> {
    type Target = Cloud;
    fn deref(&self) -> &Cloud {
        &self.cloud
    }
}

impl std::ops::DerefMut for CloudGuard<'_> {
    fn deref_mut(&mut self) -> &mut Cloud {
        &mut self.cloud
    }
}

impl Drop for CloudGuard<'_> {
    fn drop(&mut self) {
        let us = u64::try_from(self.taken.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.held_us
            .fetch_add(us, std::sync::atomic::Ordering::Relaxed);
    }
}
