//! Leader election on a `coordination.k8s.io/v1` Lease, client-go's way: a
//! holder renews the Lease every retry period; another replica takes it over
//! once it has seen the same record unchanged for the Lease's duration
//! (measured on its own clock, so clock skew between nodes does not matter).
//! Writes carry the resourceVersion read, so two candidates never both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What a candidate does with the record it read.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// Write it held by us (`takeover`: from another holder, or free).
    Write { takeover: bool },
    /// Another replica holds it and renews it.
    Wait,
}

/// When this replica first saw the current record (its resourceVersion).
#[derive(Debug, Clone)]
pub struct Observed {
    pub resource_version: String,
    pub at: Instant,
}

/// The pure rule: who may write the Lease now.
pub fn decide(
    spec: Option<&LeaseSpec>,
    me: &str,
    observed: Option<&Observed>,
    now: Instant,
    default_duration: Duration,
) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == me {
        return Decision::Write { takeover: false };
    }
    if holder.is_empty() {
        return Decision::Write { takeover: true };
    }
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default_duration, Duration::from_secs);
    match observed {
        Some(o) if now.duration_since(o.at) >= duration => Decision::Write { takeover: true },
        _ => Decision::Wait,
    }
}

pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observed>,
}

impl Elector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One round: reads the Lease and takes or renews it when the rule
    /// allows. `Ok(true)`: we hold it now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        // Observed when read: a slow read does not age another's record.
        let now = Instant::now();
        let rv = current
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone())
            .unwrap_or_default();
        if self
            .observed
            .as_ref()
            .is_none_or(|o| o.resource_version != rv)
        {
            self.observed = Some(Observed {
                resource_version: rv,
                at: now,
            });
        }
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let decision = decide(
            spec,
            &self.config.identity,
            self.observed.as_ref(),
            now,
            self.config.duration,
        );
        let stamp = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.config.duration.as_secs()).unwrap_or(i32::MAX);
        let written = match decision {
            Decision::Wait => return Ok(false),
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(stamp.clone()),
                        renew_time: Some(stamp),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Decision::Write { takeover } => {
                let Some(mut lease) = current else {
                    return Ok(false);
                };
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.holder_identity = Some(self.config.identity.clone());
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(stamp.clone());
                if takeover {
                    spec.acquire_time = Some(stamp);
                    spec.lease_transitions =
                        Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => {
                self.observed = lease.metadata.resource_version.map(|rv| Observed {
                    resource_version: rv,
                    at: Instant::now(),
                });
                Ok(true)
            }
            // Another candidate wrote first (409 on the resourceVersion, or
            // an AlreadyExists on create).
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (shutdown): the next candidate need not wait for
    /// it to expire. Best effort.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "could not release the lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(who: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(who.into()),
            lease_duration_seconds: Some(seconds),
            ..Default::default()
        }
    }

    #[test]
    fn no_lease_is_created_and_ours_is_renewed() {
        let now = Instant::now();
        let d = Duration::from_secs(15);
        assert_eq!(decide(None, "a", None, now, d), Decision::Create);
        let spec = held_by("a", 15);
        assert_eq!(
            decide(Some(&spec), "a", None, now, d),
            Decision::Write { takeover: false }
        );
    }

    #[test]
    fn another_holder_is_waited_out_for_the_leases_duration_on_our_clock() {
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        let spec = held_by("b", 4);
        let seen = Observed {
            resource_version: "7".into(),
            at: t0,
        };
        assert_eq!(decide(Some(&spec), "a", Some(&seen), t0, d), Decision::Wait);
        assert_eq!(
            decide(
                Some(&spec),
                "a",
                Some(&seen),
                t0 + Duration::from_millis(3999),
                d
            ),
            Decision::Wait
        );
        // The record has not changed for the Lease's own duration (4 s, not ours).
        assert_eq!(
            decide(
                Some(&spec),
                "a",
                Some(&seen),
                t0 + Duration::from_secs(4),
                d
            ),
            Decision::Write { takeover: true }
        );
        // Never seen before: wait one whole duration from now.
        assert_eq!(decide(Some(&spec), "a", None, t0, d), Decision::Wait);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let spec = LeaseSpec {
            holder_identity: None,
            ..held_by("", 15)
        };
        assert_eq!(
            decide(
                Some(&spec),
                "a",
                None,
                Instant::now(),
                Duration::from_secs(15)
            ),
            Decision::Write { takeover: true }
        );
    }
}
