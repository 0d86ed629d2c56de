//! What every part of the simulated cloud uses: its credentials, the seed's
//! ids, locks, ids and OpenStack's timestamps.

use std::sync::{Mutex, MutexGuard};

/// The default credentials (docs/contract.md).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "admin";
pub const PROJECT: &str = "admin";
pub const DOMAIN: &str = "Default";
pub const REGION: &str = "RegionOne";
/// An application credential the simulator accepts.
pub const APP_CREDENTIAL_ID: &str = "svc-lbaas-sim-app-cred";
pub const APP_CREDENTIAL_SECRET: &str = "svc-lbaas-sim-secret";

/// Ids of the seed's topology, printed by `svc-lbaas sim`.
#[derive(Debug, Clone)]
pub struct Seed {
    pub pod_network: String,
    pub pod_subnet: String,
    pub service_network: String,
    pub service_subnet: String,
    pub public_network: String,
    pub public_subnet: String,
    pub router: String,
}

/// A poisoned lock only means another handler panicked; the data is still usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Now as OpenStack's `2026-11-26T06:28:24` timestamps (UTC).
pub fn timestamp() -> String {
    format_time(std::time::SystemTime::now())
}

/// A time as OpenStack's `2026-11-26T06:28:24` timestamps (UTC).
pub fn format_time(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_look_like_openstacks() {
        let t = super::timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
        assert!(t.as_str() > "2024-01-01T00:00:00", "{t}");
    }

    #[test]
    fn times_format_across_days_months_and_leap_years() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |s: u64| super::format_time(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00");
        assert_eq!(at(951_825_600), "2000-02-29T12:00:00");
        assert_eq!(at(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(at(1_798_761_600), "2027-01-01T00:00:00");
    }
}
