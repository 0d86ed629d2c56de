//! A Keystone session: a token cached and renewed a minute before it expires
//! (and once on a 401), endpoints from the catalog, a global cap on concurrent
//! OpenStack calls, and call accounting (reads, writes, waits) per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use super::auth::Credentials;
use super::error::{OpenStackError, error_message};
use super::path::ApiPath;

/// Pauses before a failed read is tried again (3 tries in all).
const READ_RETRIES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// The services this tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    LoadBalancer,
    Network,
    /// Barbican: TLS certificates for TERMINATED_HTTPS listeners.
    KeyManager,
}

impl Service {
    pub fn catalog_type(self) -> &'static str {
        match self {
            Service::LoadBalancer => "load-balancer",
            Service::Network => "network",
            Service::KeyManager => "key-manager",
        }
    }
}

/// OpenStack calls made for one request, for the answer's `openstackCalls`.
#[derive(Debug, Default)]
pub struct Calls {
    pub reads: AtomicU32,
    pub writes: AtomicU32,
    pub waits: AtomicU32,
    /// Subnets this request read (or took from the process's cache): none
    /// is read twice in one request, whatever `[openstack] subnet_cache_s`.
    pub(super) subnets:
        std::sync::Mutex<std::collections::HashMap<String, crate::model::SubnetInfo>>,
}

impl Calls {
    pub(super) fn subnet_known(&self, id: &str) -> Option<crate::model::SubnetInfo> {
        let known = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
        known.get(id).cloned()
    }

    pub(super) fn subnet_seen(&self, id: &str, info: &crate::model::SubnetInfo) {
        let mut known = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(id.to_string(), info.clone());
    }

    pub fn snapshot(&self) -> (u32, u32, u32) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
            self.waits.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    renew_at: Instant,
    load_balancer: Option<String>,
    network: Option<String>,
    key_manager: Option<String>,
}

pub struct Session {
    http: reqwest::Client,
    creds: Credentials,
    token: Mutex<Option<Token>>,
    limit: Semaphore,
}

/// Seconds since the epoch of Keystone's `2026-11-26T07:28:24.000000Z`.
pub fn parse_utc(text: &str) -> Option<i64> {
    let num = |a: usize, b: usize| text.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + s)
}

/// The API root of a catalog URL: Octavia's `/v2`, Neutron's `/v2.0`,
/// Barbican's `/v1`.
fn versioned(service: Service, url: &str) -> String {
    let url = url.trim_end_matches('/');
    let suffix = match service {
        Service::LoadBalancer => "/v2",
        Service::Network => "/v2.0",
        Service::KeyManager => "/v1",
    };
    let has_version = match service {
        Service::KeyManager => url.ends_with("/v1"),
        _ => url.ends_with("/v2") || url.ends_with("/v2.0"),
    };
    if has_version {
        url.to_string()
    } else {
        format!("{url}{suffix}")
    }
}

impl Session {
    pub fn new(
        creds: Credentials,
        max_concurrent_calls: usize,
        timeout: Duration,
    ) -> Result<Session, OpenStackError> {
        // No redirect is followed: a 3xx would carry the token (or, from the
        // auth URL, the password) to wherever the answer points.
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(bundle) = &creds.ca_bundle {
            for cert in crate::tls::ca_bundle(bundle).map_err(OpenStackError::Config)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| OpenStackError::Config(format!("HTTP client: {e}")))?;
        Ok(Session {
            http,
            creds,
            token: Mutex::new(None),
            limit: Semaphore::new(max_concurrent_calls.max(1)),
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    async fn authenticate(&self) -> Result<Token, OpenStackError> {
        let url = format!("{}/auth/tokens", self.creds.auth_url.trim_end_matches('/'));
        let res = self
            .http
            .post(&url)
            .json(&self.creds.auth_body())
            .send()
            .await
            .map_err(|e| OpenStackError::Unreachable {
                service: "identity",
                method: "POST".into(),
                url: url.clone(),
                message: e.to_string(),
            })?;
        let status = res.status().as_u16();
        let value = res
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        if status != 201 && status != 200 {
            return Err(OpenStackError::Auth {
                url,
                status,
                message: error_message(&text),
            });
        }
        let (Some(value), Ok(body)) = (value, serde_json::from_str::<Value>(&text)) else {
            return Err(OpenStackError::Auth {
                url,
                status,
                message: "no X-Subject-Token or no token body in the answer".into(),
            });
        };
        let token = &body["token"];
        let now_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let lifetime = token["expires_at"]
            .as_str()
            .and_then(parse_utc)
            .map_or(3600, |exp| exp - now_epoch);
        // Renew a minute early (or halfway through a token shorter than two minutes).
        let margin = if lifetime > 120 { 60 } else { lifetime / 2 };
        let renew_at = Instant::now() + Duration::from_secs((lifetime - margin).max(0) as u64);
        let endpoint = |service: Service| -> Option<String> {
            let entries = token["catalog"].as_array()?;
            let entry = entries
                .iter()
                .find(|e| e["type"] == service.catalog_type())?;
            let ep =
                entry["endpoints"].as_array()?.iter().find(|ep| {
                    ep["interface"] == self.creds.interface.as_str()
                        && self.creds.region.as_ref().is_none_or(|r| {
                            ep["region"] == r.as_str() || ep["region_id"] == r.as_str()
                        })
                })?;
            let url = ep["url"].as_str()?;
            // Tokens go only to http(s) endpoints of the catalog.
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                tracing::warn!(
                    service = service.catalog_type(),
                    url,
                    "catalog endpoint ignored: not http or https"
                );
                return None;
            }
            Some(versioned(service, url))
        };
        Ok(Token {
            value,
            renew_at,
            load_balancer: endpoint(Service::LoadBalancer),
            network: endpoint(Service::Network),
            key_manager: endpoint(Service::KeyManager),
        })
    }

    /// A valid token (a new one when `renew`, or when the cached one is due).
    async fn token(&self, renew: bool) -> Result<Token, OpenStackError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached
            .as_ref()
            .filter(|t| !renew && t.renew_at > Instant::now())
        {
            return Ok(t.clone());
        }
        let fresh = self.authenticate().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// A service's API root from the catalog (`None`: the catalog has none).
    pub async fn endpoint(&self, service: Service) -> Result<Option<String>, OpenStackError> {
        let token = self.token(false).await?;
        Ok(match service {
            Service::LoadBalancer => token.load_balancer,
            Service::Network => token.network,
            Service::KeyManager => token.key_manager,
        })
    }

    /// Authenticates (for readiness checks).
    pub async fn check(&self) -> Result<(), OpenStackError> {
        self.token(false).await.map(|_| ())
    }

    /// One call; `path` is below the service's API root (`/lbaas/...`,
    /// `/floatingips`). Reads (GET) and writes are counted in `calls`; a 401
    /// renews the token once. The answer is read straight into `T` (`None`: no body):
    /// what is not in `T` is skipped, not built, so a big answer (a load
    /// balancer with thousands of members) costs little memory.
    pub async fn call_as<T: serde::de::DeserializeOwned>(
        &self,
        calls: &Calls,
        service: Service,
        method: Method,
        path: &ApiPath,
        body: Option<&Value>,
    ) -> Result<Option<T>, OpenStackError> {
        let counter = if method == Method::GET {
            &calls.reads
        } else {
            &calls.writes
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let name = service.catalog_type();
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| OpenStackError::Config("the call limiter is closed".into()))?;
        let mut renew = false;
        let mut attempt = 0;
        loop {
            let token = self.token(renew).await?;
            let root = match service {
                Service::LoadBalancer => token.load_balancer.clone(),
                Service::Network => token.network.clone(),
                Service::KeyManager => token.key_manager.clone(),
            }
            .ok_or_else(|| OpenStackError::NoEndpoint {
                service: name.into(),
                interface: self.creds.interface.clone(),
                region: self.creds.region.clone(),
            })?;
            let url = format!("{root}{}", path.as_string());
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("x-auth-token", &token.value);
            if let Some(b) = body {
                req = req.json(b);
            }
            // A span per call, carrying OpenStack's request id once answered.
            let span = tracing::debug_span!(
                "openstack",
                service = name,
                method = %method,
                url = %url,
                status = tracing::field::Empty,
                request_id = tracing::field::Empty
            );
            let sent_at = std::time::Instant::now();
            let sent = tracing::Instrument::instrument(req.send(), span.clone()).await;
            let took = sent_at.elapsed();
            // A read that failed on the way (a dropped connection, a 5xx) is
            // tried again after a pause; a write is not: the caller observes
            // and plans again instead. The request's deadline bounds it all.
            let passing = match &sent {
                Err(e) => !e.is_builder(),
                Ok(r) => matches!(r.status().as_u16(), 500 | 502 | 503 | 504),
            };
            if method == Method::GET && passing && attempt < READ_RETRIES.len() {
                let pause = READ_RETRIES[attempt];
                attempt += 1;
                tracing::debug!(service = name, %url, ?pause, "read failed; trying again");
                let (status, took) = match &sent {
                    Err(e) => {
                        span.in_scope(|| tracing::debug!(error = %e, "unreachable"));
                        (0, None)
                    }
                    Ok(r) => (r.status().as_u16(), Some(took)),
                };
                crate::metrics::global().openstack_call(name, &method, status, took);
                calls.reads.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(pause).await;
                continue;
            }
            let res = sent.map_err(|e| {
                crate::metrics::global().openstack_call(name, &method, 0, None);
                OpenStackError::Unreachable {
                    service: name,
                    method: method.to_string(),
                    url: url.clone(),
                    message: e.to_string(),
                }
            })?;
            let status = res.status().as_u16();
            crate::metrics::global().openstack_call(name, &method, status, Some(took));
            let request_id = res
                .headers()
                .get("x-openstack-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            span.record("status", status);
            span.record("request_id", request_id.as_deref().unwrap_or(""));
            span.in_scope(|| tracing::debug!("openstack answered"));
            if status == 401 && !renew {
                renew = true;
                continue;
            }
            let bytes = res.bytes().await.map_err(|e| OpenStackError::Decode {
                service: name,
                method: method.to_string(),
                url: url.clone(),
                message: e.to_string(),
            })?;
            if !(200..300).contains(&status) {
                return Err(OpenStackError::Api {
                    service: name,
                    method: method.to_string(),
                    url,
                    status,
                    request_id,
                    message: error_message(&String::from_utf8_lossy(&bytes)),
                });
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| OpenStackError::Decode {
                    service: name,
                    method: method.to_string(),
                    url,
                    message: e.to_string(),
                });
        }
    }
}

/// Shared ownership for the app state.
pub type SharedSession = Arc<Session>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_times_parse() {
        assert_eq!(parse_utc("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(parse_utc("2027-01-01T00:00:00Z"), Some(1_798_761_600));
        assert_eq!(parse_utc("garbage"), None);
    }

    #[test]
    fn barbicans_catalog_url_gets_v1() {
        assert_eq!(
            versioned(Service::KeyManager, "http://h:9311"),
            "http://h:9311/v1"
        );
        assert_eq!(
            versioned(Service::KeyManager, "http://h/key-manager/v1/"),
            "http://h/key-manager/v1"
        );
    }

    #[test]
    fn catalog_urls_get_the_api_root() {
        assert_eq!(
            versioned(Service::LoadBalancer, "http://h:9876"),
            "http://h:9876/v2"
        );
        assert_eq!(
            versioned(Service::LoadBalancer, "http://h/load-balancer/"),
            "http://h/load-balancer/v2"
        );
        assert_eq!(
            versioned(Service::Network, "http://h:9696/"),
            "http://h:9696/v2.0"
        );
        assert_eq!(
            versioned(Service::Network, "http://h:9696/v2.0"),
            "http://h:9696/v2.0"
        );
    }
}
