//! The annotations a Service carries, read once into typed settings: a
//! typed reader (text, ids, flags, bounded numbers, timeouts, enumerations)
//! and one part per concern (health monitor, TLS, listener options); a bad
//! value is an error naming its annotation. Cross-field rules live with the
//! part they concern.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use super::{TranslateError, annotation, parse_bool};
use crate::config::{OccmLoadBalancer, Settings};
use crate::echo::quote;
use crate::model::{
    HealthMonitor, HealthMonitorType, HttpCheck, INSERT_HEADERS, LbAlgorithm, ListenerOptions,
    ListenerProtocol, ListenerTls, MAX_TIMEOUT_MS, OpenStackId, PlainName, PoolProtocol,
};
use crate::names;

/// Every annotation this tool reads, parsed; a bad value is an error.
#[derive(Debug, Clone, Default)]
pub(super) struct Annotations {
    pub lb_method: Option<LbAlgorithm>,
    pub keep_floating_ip: bool,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub subnet_id: Option<String>,
    pub member_subnet_id: Option<String>,
    pub floating_subnet_id: Option<String>,
    pub floating_subnet: Option<String>,
    pub floating_subnet_tags: Option<String>,
    pub floating_network_id: Option<String>,
    pub health_monitor: Option<HealthMonitorSettings>,
    pub listener_options: ListenerOptions,
    pub proxy_protocol: Option<PoolProtocol>,
    pub load_balancer_id: Option<String>,
    pub internal: bool,
    pub listener_protocol: Option<ListenerProtocol>,
    pub adopt: bool,
    pub hostname: Option<String>,
    pub class: Option<String>,
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    /// `x-forwarded-*`: headers HTTP listeners insert (sorted).
    pub insert_headers: Vec<&'static str>,
    /// `default-tls-container-ref` and `sni-container-refs`.
    pub tls: Option<ListenerTls>,
    /// `default-tls-secret`.
    pub tls_secret: Option<String>,
}

/// Health monitor settings from annotations, before the pool protocol is known.
#[derive(Debug, Clone)]
pub(super) struct HealthMonitorSettings {
    delay: u32,
    timeout: u32,
    max_retries: u32,
    max_retries_down: u32,
    /// For HTTP pools.
    http: HttpCheck,
}

impl HealthMonitorSettings {
    pub fn for_pool(&self, pool: PoolProtocol) -> HealthMonitor {
        let kind = match pool {
            PoolProtocol::Udp => HealthMonitorType::UdpConnect,
            PoolProtocol::Sctp => HealthMonitorType::Sctp,
            PoolProtocol::Https => HealthMonitorType::TlsHello,
            PoolProtocol::Http => HealthMonitorType::Http,
            PoolProtocol::Tcp | PoolProtocol::Proxy | PoolProtocol::ProxyV2 => {
                HealthMonitorType::Tcp
            }
        };
        HealthMonitor {
            kind,
            delay: self.delay,
            timeout: self.timeout,
            max_retries: self.max_retries,
            max_retries_down: self.max_retries_down,
            http: (kind == HealthMonitorType::Http).then(|| self.http.clone()),
        }
    }
}

/// A typed reader over a Service's annotations (values trimmed).
struct Reader<'a> {
    map: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Reader<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.map.and_then(|m| m.get(key)).map(|v| v.trim())
    }

    /// Free text, not empty.
    fn text(&self, key: &str) -> Result<Option<String>, TranslateError> {
        match self.get(key) {
            None => Ok(None),
            Some("") => Err(TranslateError::annotation(key, "must not be empty")),
            Some(v) => Ok(Some(v.to_string())),
        }
    }

    /// Text that must pass `valid`, else `message`.
    fn checked(
        &self,
        key: &str,
        valid: fn(&str) -> bool,
        message: &str,
    ) -> Result<Option<String>, TranslateError> {
        match self.text(key)? {
            Some(v) if !valid(&v) => Err(TranslateError::annotation(key, message)),
            v => Ok(v),
        }
    }

    /// An OpenStack id: it goes into URLs, so a UUID as OpenStack makes them.
    fn id(&self, key: &str) -> Result<Option<String>, TranslateError> {
        self.text(key)?
            .map(|v| {
                OpenStackId::try_new(&v)
                    .map(String::from)
                    .map_err(|e| TranslateError::annotation(key, e.0))
            })
            .transpose()
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, TranslateError> {
        self.get(key)
            .map(|v| {
                parse_bool(v).ok_or_else(|| {
                    TranslateError::annotation(key, format!("{} is not true or false", quote(v)))
                })
            })
            .transpose()
    }

    /// A whole number from `min` to `max`.
    fn number(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, TranslateError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| {
                        TranslateError::annotation(
                            key,
                            format!("{} is not a whole number from {min} to {max}", quote(v)),
                        )
                    })
            })
            .transpose()
    }

    /// A small number, `default` when absent.
    fn small(&self, key: &str, min: i64, max: i64, default: u32) -> Result<u32, TranslateError> {
        Ok(self.number(key, min, max)?.map_or(default, |n| n as u32))
    }

    /// A timeout in milliseconds.
    fn timeout(&self, key: &str) -> Result<Option<u64>, TranslateError> {
        Ok(self
            .number(key, 0, MAX_TIMEOUT_MS as i64)?
            .map(|n| n as u64))
    }

    /// A timeout under OCCM's name or kuryr-kubernetes' (where 0 means
    /// Octavia's default); both given, they must agree.
    fn either_timeout(
        &self,
        ours: &'static str,
        kuryr: &'static str,
    ) -> Result<Option<u64>, TranslateError> {
        let kuryr_value = self.timeout(kuryr)?.filter(|&ms| ms != 0);
        match (self.timeout(ours)?, kuryr_value) {
            (Some(a), Some(b)) if a != b => Err(TranslateError::annotation(
                kuryr,
                format!("{b} disagrees with {ours}: {a}"),
            )),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// One of the values `parse` knows, else a list of them in the error.
    fn one_of<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        known: &str,
    ) -> Result<Option<T>, TranslateError> {
        self.get(key)
            .map(|v| {
                parse(v).ok_or_else(|| {
                    TranslateError::annotation(key, format!("{} is not {known}", quote(v)))
                })
            })
            .transpose()
    }

    /// A Barbican container reference.
    fn container_ref(key: &str, v: &str) -> Result<String, TranslateError> {
        if is_container_ref(v) {
            Ok(v.to_string())
        } else {
            Err(TranslateError::annotation(
                key,
                format!(
                    "{} is not a Barbican reference (an http(s) URL of up to 255 characters)",
                    quote(v)
                ),
            ))
        }
    }
}

impl Annotations {
    /// The Service's annotations over `d`, OCCM's `[LoadBalancer]` defaults.
    pub fn parse(service: &Service, d: &OccmLoadBalancer) -> Result<Self, TranslateError> {
        use annotation::*;
        let r = Reader {
            map: service.metadata.annotations.as_ref(),
        };
        // Read in the order the checks have always run, so that of several bad
        // annotations the same one is named first.
        let lb_method = r.one_of(
            LB_METHOD,
            LbAlgorithm::parse,
            "ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP or SOURCE_IP_PORT",
        )?;
        let health_monitor = health_monitor(&r, d)?;
        let insert_headers = insert_headers(&r)?;
        let tls = tls(&r)?;
        let proxy_protocol = proxy_protocol(&r)?;
        let listener_protocol = r.one_of(
            LISTENER_PROTOCOL,
            listener_protocol,
            "HTTPS, TCP, UDP, SCTP, HTTP or TERMINATED_HTTPS",
        )?;
        Ok(Annotations {
            lb_method,
            keep_floating_ip: r.flag(KEEP_FLOATING_IP)?.unwrap_or(false),
            adopt: r.flag(ADOPT)?.unwrap_or(false),
            flavor_id: r.id(FLAVOR_ID)?.or_else(|| d.flavor_id.clone()),
            availability_zone: r
                .text(AVAILABILITY_ZONE)?
                .map(|z| {
                    PlainName::try_new(&z)
                        .map(String::from)
                        .map_err(|e| TranslateError::annotation(AVAILABILITY_ZONE, e.0))
                })
                .transpose()?
                .or_else(|| d.availability_zone.clone()),
            subnet_id: r.id(SUBNET_ID)?,
            member_subnet_id: r.id(MEMBER_SUBNET_ID)?,
            floating_subnet_id: r.id(FLOATING_SUBNET_ID)?,
            floating_subnet: r.text(FLOATING_SUBNET)?,
            floating_subnet_tags: r.text(FLOATING_SUBNET_TAGS)?,
            floating_network_id: r.id(FLOATING_NETWORK_ID)?,
            health_monitor,
            listener_options: listener_options(&r)?,
            proxy_protocol,
            load_balancer_id: r.id(LOAD_BALANCER_ID)?,
            // OCCM's internal-lb makes every Service internal, whatever it says.
            internal: d.internal_lb || r.flag(INTERNAL)?.unwrap_or(false),
            class: r.text(CLASS)?,
            network_id: r.id(NETWORK_ID)?.or_else(|| d.network_id.clone()),
            port_id: r.id(PORT_ID)?,
            hostname: r.checked(
                HOSTNAME,
                names::is_dns_name,
                "must be a DNS name: 1-253 characters, dot-separated labels of lowercase letters, digits and '-'",
            )?,
            listener_protocol,
            insert_headers,
            tls,
            tls_secret: r.checked(
                DEFAULT_TLS_SECRET,
                names::is_dns_name,
                "must be a Secret's name (a DNS subdomain)",
            )?,
        })
    }

    /// The Service's `loadbalancer.openstack.org/class`: its subnets and
    /// floating network where the Service's own annotations name none.
    pub fn take_class(&mut self, settings: &Settings) -> Result<(), TranslateError> {
        let Some(name) = &self.class else {
            return Ok(());
        };
        let class = settings.load_balancer_classes.get(name).ok_or_else(|| {
            let known: Vec<&str> = settings
                .load_balancer_classes
                .keys()
                .map(String::as_str)
                .collect();
            TranslateError::annotation(
                annotation::CLASS,
                format!(
                    "{} is not a configured class ([LoadBalancerClass.<name>]: {})",
                    quote(name),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        let take = |mine: &mut Option<String>, theirs: &Option<String>| {
            if mine.is_none() {
                *mine = theirs.clone();
            }
        };
        take(&mut self.subnet_id, &class.subnet_id);
        take(&mut self.member_subnet_id, &class.member_subnet_id);
        // The floating subnet is chosen at one level: the Service's own, else its class's.
        if self.floating_subnet_id.is_none()
            && self.floating_subnet.is_none()
            && self.floating_subnet_tags.is_none()
        {
            self.floating_subnet_id = class.floating_subnet_id.clone();
            self.floating_subnet = class.floating_subnet.clone();
            self.floating_subnet_tags = class.floating_subnet_tags.clone();
        }
        take(&mut self.floating_network_id, &class.floating_network_id);
        take(&mut self.network_id, &class.network_id);
        Ok(())
    }
}

/// The health monitor, when enabled (`enable-health-monitor`, else OCCM's
/// `create-monitor`). Bad values are errors whether or not it is enabled.
fn health_monitor(
    r: &Reader<'_>,
    d: &OccmLoadBalancer,
) -> Result<Option<HealthMonitorSettings>, TranslateError> {
    use annotation::*;
    let delay = r.small(HEALTH_MONITOR_DELAY, 1, 2_147_483_647, d.monitor_delay.0)?;
    let timeout = r.small(
        HEALTH_MONITOR_TIMEOUT,
        1,
        2_147_483_647,
        d.monitor_timeout.0,
    )?;
    let max_retries = r.small(HEALTH_MONITOR_MAX_RETRIES, 1, 10, d.monitor_max_retries)?;
    let max_retries_down = r.small(
        HEALTH_MONITOR_MAX_RETRIES_DOWN,
        1,
        10,
        d.monitor_max_retries_down,
    )?;
    if timeout > delay {
        return Err(TranslateError::annotation(
            HEALTH_MONITOR_TIMEOUT,
            format!("{timeout} must not exceed the delay ({delay})"),
        ));
    }
    let http = HttpCheck {
        http_method: r
            .one_of(
                HEALTH_MONITOR_HTTP_METHOD,
                |m| HTTP_METHODS.contains(&m).then(|| m.to_string()),
                &format!("one of {}", HTTP_METHODS.join(", ")),
            )?
            .unwrap_or_else(|| "GET".into()),
        url_path: match r.get(HEALTH_MONITOR_URL_PATH) {
            None => "/".into(),
            Some(p) if is_url_path(p) => p.to_string(),
            Some(_) => {
                return Err(TranslateError::annotation(
                    HEALTH_MONITOR_URL_PATH,
                    "must be a path starting with '/', 1-255 printable ASCII characters without spaces",
                ));
            }
        },
        expected_codes: r
            .one_of(
                HEALTH_MONITOR_EXPECTED_CODES,
                |c| is_expected_codes(c).then(|| c.to_string()),
                "a code (200), a list (200,202) or a range (200-204) of codes 100-599",
            )?
            .unwrap_or_else(|| "200".into()),
    };
    Ok(r.flag(ENABLE_HEALTH_MONITOR)?
        .unwrap_or(d.create_monitor)
        .then_some(HealthMonitorSettings {
            delay,
            timeout,
            max_retries,
            max_retries_down,
            http,
        }))
}

/// The listeners' connection limit and timeouts.
fn listener_options(r: &Reader<'_>) -> Result<ListenerOptions, TranslateError> {
    use annotation::*;
    Ok(ListenerOptions {
        connection_limit: r.number(CONNECTION_LIMIT, -1, 2_147_483_647)?,
        timeout_client_data: r.either_timeout(TIMEOUT_CLIENT_DATA, KURYR_TIMEOUT_CLIENT_DATA)?,
        timeout_member_connect: r.timeout(TIMEOUT_MEMBER_CONNECT)?,
        timeout_member_data: r.either_timeout(TIMEOUT_MEMBER_DATA, KURYR_TIMEOUT_MEMBER_DATA)?,
        timeout_tcp_inspect: r.timeout(TIMEOUT_TCP_INSPECT)?,
    })
}

/// TLS termination from Barbican containers: the default one and those
/// chosen by SNI (which need the default).
fn tls(r: &Reader<'_>) -> Result<Option<ListenerTls>, TranslateError> {
    use annotation::*;
    let sni = match r.get(SNI_CONTAINER_REFS) {
        None => Vec::new(),
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| Reader::container_ref(SNI_CONTAINER_REFS, c))
            .collect::<Result<Vec<_>, _>>()?,
    };
    match r.get(DEFAULT_TLS_CONTAINER_REF) {
        Some(v) => Ok(Some(ListenerTls {
            default_tls_container_ref: Reader::container_ref(DEFAULT_TLS_CONTAINER_REF, v)?,
            sni_container_refs: sni,
        })),
        None if !sni.is_empty() => Err(TranslateError::annotation(
            SNI_CONTAINER_REFS,
            format!("needs {DEFAULT_TLS_CONTAINER_REF} too"),
        )),
        None => Ok(None),
    }
}

/// `proxy-protocol`: v1 (or true), v2, or none.
fn proxy_protocol(r: &Reader<'_>) -> Result<Option<PoolProtocol>, TranslateError> {
    let Some(v) = r.get(annotation::PROXY_PROTOCOL) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "v1" => Ok(Some(PoolProtocol::Proxy)),
        "v2" => Ok(Some(PoolProtocol::ProxyV2)),
        _ => match parse_bool(v) {
            Some(true) => Ok(Some(PoolProtocol::Proxy)),
            Some(false) => Ok(None),
            None => Err(TranslateError::annotation(
                annotation::PROXY_PROTOCOL,
                format!("{} is not true, false, v1 or v2", quote(v)),
            )),
        },
    }
}

fn listener_protocol(v: &str) -> Option<ListenerProtocol> {
    match v {
        "HTTPS" => Some(ListenerProtocol::Https),
        "TCP" => Some(ListenerProtocol::Tcp),
        "UDP" => Some(ListenerProtocol::Udp),
        "SCTP" => Some(ListenerProtocol::Sctp),
        "HTTP" => Some(ListenerProtocol::Http),
        "TERMINATED_HTTPS" => Some(ListenerProtocol::TerminatedHttps),
        _ => None,
    }
}

/// The `x-forwarded-*` headers HTTP listeners insert.
fn insert_headers(r: &Reader<'_>) -> Result<Vec<&'static str>, TranslateError> {
    use annotation::*;
    let mut headers = Vec::new();
    for (key, header) in [X_FORWARDED_FOR, X_FORWARDED_PORT, X_FORWARDED_PROTO]
        .into_iter()
        .zip(INSERT_HEADERS)
    {
        if r.flag(key)?.unwrap_or(false) {
            headers.push(header);
        }
    }
    Ok(headers)
}

/// Octavia's HTTP monitor methods.
const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "PATCH", "CONNECT",
];

/// An HTTP monitor's path: what Octavia's `url_path` takes (and what goes
/// into HAProxy's configuration: no spaces, no control characters).
fn is_url_path(p: &str) -> bool {
    p.starts_with('/') && p.len() <= 255 && p.bytes().all(|b| b.is_ascii_graphic())
}

/// `200`, `200,202`, `200-204`: Octavia's `expected_codes`.
fn is_expected_codes(c: &str) -> bool {
    let code = |s: &str| s.len() == 3 && s.parse::<u16>().is_ok_and(|n| (100..=599).contains(&n));
    match c.split_once('-') {
        Some((a, b)) => code(a) && code(b) && a <= b,
        None => c.len() <= 64 && c.split(',').all(code),
    }
}

/// A Barbican container or secret reference as Octavia takes it: an
/// http(s) URL of at most 255 characters with nothing to unescape.
pub(super) fn is_container_ref(r: &str) -> bool {
    (r.starts_with("https://") || r.starts_with("http://"))
        && r.len() <= 255
        && r.bytes().all(|b| b.is_ascii_graphic())
}
