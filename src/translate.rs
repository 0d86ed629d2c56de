//! Pure translation: a Kubernetes Service (and its Endpoints / EndpointSlices)
//! plus settings -> the load balancer it must become, following the seed's rules
//! and docs/contract.md's table. No I/O: what is only known online (a subnet's CIDR)
//! comes in through a lookup function.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Endpoints, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::config::Settings;
use crate::echo::quote;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, DnsLabel, FloatingIpIntent,
    FloatingSubnetMatch, IpFamily, LbAlgorithm, ListenerProtocol, ListenerTls, Member,
    PoolProtocol, ServiceRef, SessionPersistence, Translation, Vip,
};
use crate::names::{self, is_dns_label};

/// Annotation names (OCCM's where it has one).
pub mod annotation {
    pub const LB_METHOD: &str = "loadbalancer.openstack.org/lb-method";
    pub const KEEP_FLOATING_IP: &str = "loadbalancer.openstack.org/keep-floatingip";
    pub const FLAVOR_ID: &str = "loadbalancer.openstack.org/flavor-id";
    pub const AVAILABILITY_ZONE: &str = "loadbalancer.openstack.org/availability-zone";
    pub const SUBNET_ID: &str = "loadbalancer.openstack.org/subnet-id";
    pub const MEMBER_SUBNET_ID: &str = "loadbalancer.openstack.org/member-subnet-id";
    pub const FLOATING_SUBNET_ID: &str = "loadbalancer.openstack.org/floating-subnet-id";
    pub const FLOATING_NETWORK_ID: &str = "loadbalancer.openstack.org/floating-network-id";
    /// OCCM's: the floating IP's subnet by name pattern, among the floating network's.
    pub const FLOATING_SUBNET: &str = "loadbalancer.openstack.org/floating-subnet";
    /// OCCM's: the floating IP's subnet by tags, among the floating network's.
    pub const FLOATING_SUBNET_TAGS: &str = "loadbalancer.openstack.org/floating-subnet-tags";
    pub const ENABLE_HEALTH_MONITOR: &str = "loadbalancer.openstack.org/enable-health-monitor";
    pub const HEALTH_MONITOR_DELAY: &str = "loadbalancer.openstack.org/health-monitor-delay";
    pub const HEALTH_MONITOR_TIMEOUT: &str = "loadbalancer.openstack.org/health-monitor-timeout";
    pub const HEALTH_MONITOR_MAX_RETRIES: &str =
        "loadbalancer.openstack.org/health-monitor-max-retries";
    pub const HEALTH_MONITOR_MAX_RETRIES_DOWN: &str =
        "loadbalancer.openstack.org/health-monitor-max-retries-down";
    pub const TIMEOUT_CLIENT_DATA: &str = "loadbalancer.openstack.org/timeout-client-data";
    pub const TIMEOUT_MEMBER_CONNECT: &str = "loadbalancer.openstack.org/timeout-member-connect";
    pub const TIMEOUT_MEMBER_DATA: &str = "loadbalancer.openstack.org/timeout-member-data";
    pub const TIMEOUT_TCP_INSPECT: &str = "loadbalancer.openstack.org/timeout-tcp-inspect";
    /// kuryr-kubernetes' names for two listener timeouts (ms; 0: Octavia's default).
    pub const KURYR_TIMEOUT_CLIENT_DATA: &str = "openstack.org/kuryr-timeout-client-data";
    pub const KURYR_TIMEOUT_MEMBER_DATA: &str = "openstack.org/kuryr-timeout-member-data";
    pub const CONNECTION_LIMIT: &str = "loadbalancer.openstack.org/connection-limit";
    pub const PROXY_PROTOCOL: &str = "loadbalancer.openstack.org/proxy-protocol";
    pub const LOAD_BALANCER_ID: &str = "loadbalancer.openstack.org/load-balancer-id";
    pub const INTERNAL: &str = "service.beta.kubernetes.io/openstack-internal-load-balancer";
    pub const LISTENER_PROTOCOL: &str = "svc-lbaas.io/listener-protocol";
    /// OCCM's: the `[LoadBalancerClass "name"]` of the settings this Service uses.
    pub const CLASS: &str = "loadbalancer.openstack.org/class";
    /// OCCM's: the VIP's network.
    pub const NETWORK_ID: &str = "loadbalancer.openstack.org/network-id";
    /// OCCM's: an existing Neutron port as the VIP.
    pub const PORT_ID: &str = "loadbalancer.openstack.org/port-id";
    /// OCCM's: the status names this hostname instead of the address.
    pub const HOSTNAME: &str = "loadbalancer.openstack.org/hostname";
    /// `"true"`: take over the load balancer OCCM or kuryr-kubernetes made
    /// for this Service (with `[adoption] from` naming the tool).
    pub const ADOPT: &str = "svc-lbaas.io/adopt";
    /// OCCM's: HTTP listeners inserting `X-Forwarded-For`.
    pub const X_FORWARDED_FOR: &str = "loadbalancer.openstack.org/x-forwarded-for";
    /// HTTP listeners inserting `X-Forwarded-Port` / `X-Forwarded-Proto`.
    pub const X_FORWARDED_PORT: &str = "loadbalancer.openstack.org/x-forwarded-port";
    pub const X_FORWARDED_PROTO: &str = "loadbalancer.openstack.org/x-forwarded-proto";
    /// OCCM's: TLS terminated with this Barbican container (TERMINATED_HTTPS).
    pub const DEFAULT_TLS_CONTAINER_REF: &str =
        "loadbalancer.openstack.org/default-tls-container-ref";
    /// The Kubernetes TLS Secret (among the request's `tlsSecrets`) whose
    /// certificate the TERMINATED_HTTPS listeners serve, stored in Barbican.
    pub const DEFAULT_TLS_SECRET: &str = "loadbalancer.openstack.org/default-tls-secret";
    /// More certificates, chosen by SNI: comma-separated container refs.
    pub const SNI_CONTAINER_REFS: &str = "loadbalancer.openstack.org/sni-container-refs";
    /// HTTP health monitors: the request and the healthy answers.
    pub const HEALTH_MONITOR_URL_PATH: &str = "svc-lbaas.io/health-monitor-url-path";
    pub const HEALTH_MONITOR_HTTP_METHOD: &str = "svc-lbaas.io/health-monitor-http-method";
    pub const HEALTH_MONITOR_EXPECTED_CODES: &str = "svc-lbaas.io/health-monitor-expected-codes";
    /// The namespaces (comma-separated, or `*`) whose Services may join this
    /// Service's load balancer with `load-balancer-id`; its own always may.
    pub const SHARE_WITH_NAMESPACES: &str = "svc-lbaas.io/share-with-namespaces";
    /// A `PROMETHEUS` listener on this port: the load balancer's own metrics.
    pub const PROMETHEUS_LISTENER_PORT: &str = "svc-lbaas.io/prometheus-listener-port";
}

mod annotations;
use annotations::Annotations;

pub use crate::model::ReferenceKind;

/// A cloud object a Service's annotation names, to be found before any write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub annotation: &'static str,
    pub kind: ReferenceKind,
    pub id: String,
}

/// The objects a Service's annotations name (already checked for form).
pub fn references(service: &Service) -> Result<Vec<Reference>, TranslateError> {
    use annotation::*;
    let a = Annotations::parse(service, &Default::default())?;
    let all = [
        (SUBNET_ID, ReferenceKind::Subnet, a.subnet_id),
        (MEMBER_SUBNET_ID, ReferenceKind::Subnet, a.member_subnet_id),
        (
            FLOATING_SUBNET_ID,
            ReferenceKind::Subnet,
            a.floating_subnet_id,
        ),
        (
            FLOATING_NETWORK_ID,
            ReferenceKind::Network,
            a.floating_network_id,
        ),
        (NETWORK_ID, ReferenceKind::Network, a.network_id),
        (PORT_ID, ReferenceKind::Port, a.port_id),
        (
            DEFAULT_TLS_CONTAINER_REF,
            ReferenceKind::Certificate,
            a.tls.as_ref().map(|t| t.default_tls_container_ref.clone()),
        ),
        (FLAVOR_ID, ReferenceKind::Flavor, a.flavor_id),
        (
            AVAILABILITY_ZONE,
            ReferenceKind::AvailabilityZone,
            a.availability_zone,
        ),
    ];
    let sni = a.tls.iter().flat_map(|t| t.sni_container_refs.clone());
    Ok(all
        .into_iter()
        .filter_map(|(annotation, kind, id)| {
            id.map(|id| Reference {
                annotation,
                kind,
                id,
            })
        })
        .chain(sni.map(|id| Reference {
            annotation: SNI_CONTAINER_REFS,
            kind: ReferenceKind::Certificate,
            id,
        }))
        .collect())
}

pub use crate::model::MAX_TIMEOUT_MS;

/// Why a Service cannot be translated; always names the field or annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    #[error("annotation {annotation}: {message}")]
    Annotation { annotation: String, message: String },
    /// The annotation names what the Service's namespace may not use.
    #[error("annotation {annotation}: {message}")]
    Forbidden { annotation: String, message: String },
}

impl TranslateError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn annotation(annotation: &str, message: impl Into<String>) -> Self {
        TranslateError::Annotation {
            annotation: annotation.to_string(),
            message: message.into(),
        }
    }

    /// The offending field as a path into the request.
    pub fn field_path(&self) -> String {
        match self {
            TranslateError::Field { field, .. } => field.clone(),
            TranslateError::Annotation { annotation, .. }
            | TranslateError::Forbidden { annotation, .. } => annotation_field(annotation),
        }
    }
}

/// The field path of an annotation, as problems name it.
pub fn annotation_field(annotation: &str) -> String {
    format!("service.metadata.annotations[\"{annotation}\"]")
}

/// The Endpoints / EndpointSlices given with a Service. Absent altogether means
/// members are not managed; present but empty means "no members".
#[derive(Debug, Clone, Copy, Default)]
pub struct Backends<'a> {
    pub endpoints: Option<&'a Endpoints>,
    pub endpoint_slices: &'a [EndpointSlice],
}

/// A VIP taken from the clusterIP must lie in its subnet (`cidr`, as
/// Neutron has it): Octavia would refuse it only after the create began.
pub fn check_vip_in_subnet(vip: &Vip, cidr: IpNet) -> Result<(), TranslateError> {
    match vip.address {
        Some(address) if !cidr.contains(&address) => Err(TranslateError::field(
            "service.spec.clusterIP",
            format!(
                "{address} is outside the service subnet {} ({cidr}); \
                 set [octavia_defaults] vip_from_cluster_ip = false to let Neutron pick the VIP",
                vip.subnet_id.as_deref().unwrap_or_default()
            ),
        )),
        _ => Ok(()),
    }
}

/// Translates one Service, without I/O. Online, the reconciler then checks
/// the VIP against its subnet's CIDR ([`check_vip_in_subnet`]).
pub fn translate(
    settings: &Settings,
    service: &Service,
    backends: Option<Backends<'_>>,
) -> Result<Translation, TranslateError> {
    translate_with(settings, service, backends, TlsInput::default())
}

/// The Kubernetes TLS Secrets a request carries, and the time to check
/// their certificates at.
#[derive(Clone, Copy)]
pub struct TlsInput<'a> {
    /// `None`: the request carries none (an event, a sync): a Secret named
    /// by `default-tls-secret` keeps the certificate stored for it.
    pub secrets: Option<&'a [k8s_openapi::api::core::v1::Secret]>,
    pub now: std::time::SystemTime,
}

impl std::fmt::Debug for TlsInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: a Secret's Debug prints its data.
        let names: Option<Vec<&str>> = self.secrets.map(|s| {
            s.iter()
                .map(|s| s.metadata.name.as_deref().unwrap_or(""))
                .collect()
        });
        f.debug_struct("TlsInput").field("secrets", &names).finish()
    }
}

/// No Secrets, and none kept: what a request without the cloud is (`svc-lbaas plan`).
impl Default for TlsInput<'_> {
    fn default() -> Self {
        TlsInput {
            secrets: Some(&[]),
            now: std::time::UNIX_EPOCH,
        }
    }
}

/// [`translate`], with the request's TLS Secrets.
pub fn translate_with(
    settings: &Settings,
    service: &Service,
    backends: Option<Backends<'_>>,
    tls: TlsInput<'_>,
) -> Result<Translation, TranslateError> {
    let service_ref = service_ref(service)?;
    let owner_tags = names::owner_tags(&settings.cluster.name, &service_ref);
    let mut annotations = Annotations::parse(service, &settings.load_balancer)?;
    vip_references_opened(settings, service)?;
    annotations.take_class(settings)?;
    let (tls_secret, tls_secret_kept) = tls_secret(service, &service_ref, &mut annotations, tls)?;
    // kuryr.conf's listener timeouts, where the Service's annotations set none.
    let o = &mut annotations.listener_options;
    let d = &settings.octavia_defaults;
    if o.timeout_client_data.is_none() && d.timeout_client_data > 0 {
        o.timeout_client_data = Some(d.timeout_client_data);
    }
    if o.timeout_member_data.is_none() && d.timeout_member_data > 0 {
        o.timeout_member_data = Some(d.timeout_member_data);
    }
    if let Some(ports) = service.spec.as_ref().and_then(|s| s.ports.as_deref()) {
        validate_ports(ports)?;
    }
    if let Some(b) = &backends {
        let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
        check_backends(b, ports.map_or(0, Vec::len))?;
    }
    let spec = service.spec.clone().unwrap_or_default();
    let cluster_ips = cluster_ips(&spec);
    if let Some(reason) = skip_reason(settings, &spec, &cluster_ips)? {
        return Ok(Translation::Skip {
            service: service_ref,
            reason,
            keep_floating_ip: annotations.keep_floating_ip,
            owner_tags,
        });
    }
    let is_load_balancer_type = spec.type_.as_deref() == Some("LoadBalancer");
    let mut notes = Vec::new();
    let (family, vip, additional_vips) =
        vips(settings, &spec, &cluster_ips, &annotations, &mut notes)?;
    let listeners = listeners(
        settings,
        &service_ref,
        &spec,
        &annotations,
        backends,
        family,
        is_load_balancer_type,
        &mut notes,
    )?;
    let floating_ip = floating_ip(
        settings,
        &spec,
        &annotations,
        family,
        is_load_balancer_type,
        &mut notes,
    )?;

    let adopt = adoption_candidates(settings, &service_ref, annotations.adopt, &mut notes);
    let proxy = annotations.proxy_protocol.is_some();
    let ingress = crate::model::IngressShape {
        hostname: annotations.hostname.clone(),
        hostname_suffix: (proxy && settings.load_balancer.enable_ingress_hostname)
            .then(|| settings.load_balancer.ingress_hostname_suffix.clone()),
        proxy,
    };
    let mut listeners = listeners;
    fit_provider(settings, &annotations, &mut listeners, &mut notes)?;
    let families: BTreeSet<IpFamily> = std::iter::once(family)
        .chain(
            additional_vips
                .iter()
                .filter_map(|v| v.address.map(|a| IpFamily::of(&a))),
        )
        .collect();
    let prometheus_listener =
        prometheus_listener(settings, service, &service_ref, &spec, &families)?;
    let vip_security_group = vip_security_group(
        settings,
        &names::load_balancer_name(&service_ref),
        &mut listeners,
        prometheus_listener.as_ref(),
        &mut notes,
    );
    let uid = service.metadata.uid.as_deref();
    let share_with = share_with(service)?;
    let user_load_balancers_open = settings
        .tenancy
        .user_load_balancers_open_to(&service_ref.namespace);
    Ok(Translation::LoadBalancer(Box::new(DesiredLoadBalancer {
        name: names::load_balancer_name(&service_ref),
        tags: {
            let mut tags = names::load_balancer_tags(&settings.cluster.name, &service_ref, uid);
            if vip.port_id.is_some() {
                tags.push(names::USER_PORT_TAG.to_string());
            }
            tags.extend(share_with.iter().map(|ns| names::share_with_tag(ns)));
            tags
        },
        owner_tags,
        service: service_ref,
        vip,
        additional_vips,
        provider: settings.octavia_defaults.provider.clone(),
        flavor_id: annotations.flavor_id,
        availability_zone: annotations.availability_zone,
        load_balancer_id: annotations.load_balancer_id,
        max_shared: settings.load_balancer.max_shared_lb,
        share_with,
        user_load_balancers_open,
        occm_cluster: settings
            .adoption
            .occm_cluster(&settings.cluster.name)
            .to_string(),
        listeners,
        prometheus_listener,
        floating_ip,
        keep_floating_ip: annotations.keep_floating_ip,
        notes,
        adopt,
        ingress,
        vip_security_group,
        tls_secret,
        tls_secret_kept,
    })))
}

/// `svc-lbaas.io/prometheus-listener-port`: a PROMETHEUS listener on that
/// port, open only to `[octavia_defaults] prometheus_allowed_cidrs` of the
/// VIPs' families. Refused where it cannot work or would be open to anyone:
/// no such setting, a port the Service serves, the legacy API or the ovn
/// provider (neither has PROMETHEUS listeners). A Service that joins
/// another's load balancer is refused by the plan, which knows whose it is.
fn prometheus_listener(
    settings: &Settings,
    service: &Service,
    service_ref: &ServiceRef,
    spec: &ServiceSpec,
    families: &BTreeSet<IpFamily>,
) -> Result<Option<crate::model::PrometheusListener>, TranslateError> {
    let key = annotation::PROMETHEUS_LISTENER_PORT;
    let Some(value) = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(|v| v.trim())
    else {
        return Ok(None);
    };
    let refuse = |message: String| Err(TranslateError::annotation(key, message));
    // Digits only, no sign nor leading zero: the port as written is the port.
    let digits =
        !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && !value.starts_with('0');
    let Some(port) = value.parse::<u16>().ok().filter(|p| digits && *p > 0) else {
        return refuse(format!(
            "{} is not a port (1-65535)",
            crate::echo::quote(value)
        ));
    };
    if let Some(i) = spec
        .ports
        .iter()
        .flatten()
        .position(|p| p.port == i32::from(port))
    {
        return refuse(format!(
            "{port} is the Service's port (spec.ports[{i}]): the metrics listener needs a port of its own"
        ));
    }
    let d = &settings.octavia_defaults;
    if d.api == crate::config::Api::NeutronLbaas {
        return refuse(
            "the legacy Neutron LBaaS v2 API has no PROMETHEUS listeners (Octavia API 2.25)".into(),
        );
    }
    if d.provider.as_deref() == Some("ovn") {
        return refuse(
            "the ovn provider has no PROMETHEUS listeners ([octavia_defaults] provider = \"ovn\")"
                .into(),
        );
    }
    if d.prometheus_allowed_cidrs.is_empty() {
        return refuse(
            "needs the setting [octavia_defaults] prometheus_allowed_cidrs (env SVC_LBAAS_PROMETHEUS_ALLOWED_CIDRS): who may scrape it; a metrics listener is never open to everyone".into(),
        );
    }
    let allowed_cidrs: BTreeSet<ipnet::IpNet> = d
        .prometheus_allowed_cidrs
        .iter()
        .map(ipnet::IpNet::trunc)
        .filter(|c| {
            families.contains(&match c {
                ipnet::IpNet::V4(_) => IpFamily::IPv4,
                ipnet::IpNet::V6(_) => IpFamily::IPv6,
            })
        })
        .collect();
    if allowed_cidrs.is_empty() {
        let names: Vec<&str> = families
            .iter()
            .map(|f| match f {
                IpFamily::IPv4 => "IPv4",
                IpFamily::IPv6 => "IPv6",
            })
            .collect();
        return refuse(format!(
            "[octavia_defaults] prometheus_allowed_cidrs has no {} CIDR, the family of the load balancer's VIP",
            names.join(" or ")
        ));
    }
    Ok(Some(crate::model::PrometheusListener {
        name: names::fit(format!(
            "{}/{}:PROMETHEUS:{port}",
            service_ref.namespace, service_ref.name
        )),
        protocol_port: port,
        allowed_cidrs: allowed_cidrs.into_iter().collect(),
    }))
}

/// `svc-lbaas.io/share-with-namespaces`: namespace names or `*`, sorted.
fn share_with(service: &Service) -> Result<Vec<String>, TranslateError> {
    let key = annotation::SHARE_WITH_NAMESPACES;
    let Some(value) = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
    else {
        return Ok(Vec::new());
    };
    let mut namespaces = BTreeSet::new();
    for ns in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if ns != "*"
            && let Err(e) = DnsLabel::try_new(ns)
        {
            return Err(TranslateError::annotation(
                key,
                format!("{}: a namespace name, or *", e.0),
            ));
        }
        namespaces.insert(ns.to_string());
    }
    if namespaces.contains("*") {
        namespaces.retain(|n| n == "*");
    }
    Ok(namespaces.into_iter().collect())
}

/// A VIP network or subnet a Service's annotation names must be one the
/// operator opened (`[tenancy] vip_networks` / `vip_subnets`, when set): an
/// external network or another team's subnet is not the Service's to take.
/// The settings' and classes' own values are the operator's, so trusted.
fn vip_references_opened(settings: &Settings, service: &Service) -> Result<(), TranslateError> {
    let given = service.metadata.annotations.as_ref();
    let t = &settings.tenancy;
    for (key, opened, setting) in [
        (
            annotation::NETWORK_ID,
            &t.vip_networks,
            "[tenancy] vip_networks",
        ),
        (
            annotation::SUBNET_ID,
            &t.vip_subnets,
            "[tenancy] vip_subnets",
        ),
    ] {
        let (Some(opened), Some(value)) = (opened, given.and_then(|a| a.get(key))) else {
            continue;
        };
        if !opened.iter().any(|o| o == value.trim()) {
            return Err(TranslateError::Forbidden {
                annotation: key.to_string(),
                message: format!(
                    "{} is not in {setting}, what the operator opened to Services",
                    quote(value)
                ),
            });
        }
    }
    Ok(())
}

/// The TLS Secret the Service's certificate comes from: the one
/// `default-tls-secret` names, or the request's only one when a port says
/// `appProtocol: https`; read and checked (a 400 naming it otherwise). Its
/// listeners then terminate TLS with a pending reference that the apply
/// replaces with the Secret's Barbican container.
#[allow(clippy::type_complexity)]
fn tls_secret(
    service: &Service,
    service_ref: &ServiceRef,
    annotations: &mut Annotations,
    tls: TlsInput<'_>,
) -> Result<(Option<Box<crate::certificate::TlsMaterial>>, Option<String>), TranslateError> {
    use annotation::{DEFAULT_TLS_CONTAINER_REF, DEFAULT_TLS_SECRET};
    let named = annotations.tls_secret.clone();
    let https = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ports| {
            ports
                .iter()
                .any(|p| p.app_protocol.as_deref() == Some("https"))
        });
    let Some(secrets) = tls.secrets else {
        // No Secrets sent (an event, a sync): the named one, or (https
        // ports) the one sent before, keeps what was stored for it; the
        // apply finds none stored for an unnamed one, it has no certificate.
        if named.is_some() && annotations.tls.is_some() {
            return Err(TranslateError::annotation(
                DEFAULT_TLS_SECRET,
                format!("one certificate source: not with {DEFAULT_TLS_CONTAINER_REF}"),
            ));
        }
        if named.is_none() && (!https || annotations.tls.is_some()) {
            return Ok((None, None));
        }
        let name = named.unwrap_or_default();
        annotations.tls = Some(ListenerTls {
            default_tls_container_ref: format!("{}{name}", names::PENDING_CERTIFICATE),
            sni_container_refs: Vec::new(),
        });
        return Ok((None, Some(name)));
    };
    if named.is_none() && https && secrets.len() > 1 {
        return Err(TranslateError::field(
            "tlsSecrets",
            format!(
                "{} Secrets: name the one to serve with {DEFAULT_TLS_SECRET}",
                secrets.len()
            ),
        ));
    }
    let chosen = match &named {
        Some(name) => Some(
            secrets
                .iter()
                .enumerate()
                .find(|(_, s)| s.metadata.name.as_deref() == Some(name.as_str()))
                .ok_or_else(|| {
                    TranslateError::annotation(
                        DEFAULT_TLS_SECRET,
                        format!("the request's tlsSecrets hold no Secret {}", quote(name)),
                    )
                })?,
        ),
        None if secrets.len() == 1 && https => secrets.first().map(|s| (0, s)),
        None => None,
    };
    let Some((i, secret)) = chosen else {
        return Ok((None, None));
    };
    let field = format!("tlsSecrets[{i}]");
    if annotations.tls.is_some() {
        return Err(TranslateError::field(
            field,
            format!("one certificate source: not with {DEFAULT_TLS_CONTAINER_REF}"),
        ));
    }
    if let Some(ns) = secret.metadata.namespace.as_deref()
        && ns != service_ref.namespace
    {
        return Err(TranslateError::field(
            format!("{field}.metadata.namespace"),
            format!("{} is not the Service's namespace", quote(ns)),
        ));
    }
    let name = secret.metadata.name.clone().unwrap_or_default();
    if !names::is_dns_name(&name) {
        return Err(TranslateError::field(
            format!("{field}.metadata.name"),
            "must be a Kubernetes object name",
        ));
    }
    let material = crate::certificate::read(secret, tls.now)
        .map_err(|e| TranslateError::field(field, format!("Secret {name}: {e}")))?;
    annotations.tls = Some(ListenerTls {
        default_tls_container_ref: format!("{}{name}", names::PENDING_CERTIFICATE),
        sni_container_refs: Vec::new(),
    });
    Ok((Some(Box::new(material)), None))
}

/// Source ranges as a security group on the VIP port, where the provider
/// has no `allowed_cidrs` (ovn) or the setting says so: one ingress rule per
/// listener port and range, the listeners' own `allowed_cidrs` then empty.
fn vip_security_group(
    settings: &Settings,
    name: &str,
    listeners: &mut [DesiredListener],
    metrics: Option<&crate::model::PrometheusListener>,
    notes: &mut Vec<String>,
) -> Option<crate::model::VipSecurityGroup> {
    use crate::config::SourceRanges;
    let d = &settings.octavia_defaults;
    let wanted =
        d.source_ranges == SourceRanges::SecurityGroup || d.provider.as_deref() == Some("ovn");
    if !wanted || listeners.iter().all(|l| l.allowed_cidrs.is_empty()) {
        return None;
    }
    let mut rules = std::collections::BTreeSet::new();
    for l in listeners.iter_mut() {
        let protocol = match l.protocol {
            ListenerProtocol::Udp => "udp",
            ListenerProtocol::Sctp => "sctp",
            _ => "tcp",
        };
        for remote in std::mem::take(&mut l.allowed_cidrs) {
            rules.insert(crate::model::SecurityGroupRule {
                protocol,
                port: l.protocol_port,
                remote,
            });
        }
    }
    // The group is the VIP port's only one: the metrics port needs its
    // scrapers let in too (the listener keeps its own allowed_cidrs).
    if let Some(m) = metrics {
        for remote in &m.allowed_cidrs {
            rules.insert(crate::model::SecurityGroupRule {
                protocol: "tcp",
                port: m.protocol_port,
                remote: *remote,
            });
        }
    }
    notes.push(format!(
        "spec.loadBalancerSourceRanges: a security group on the VIP port ({} rules), not listener allowed_cidrs",
        rules.len()
    ));
    Some(crate::model::VipSecurityGroup {
        name: name.to_string(),
        rules,
    })
}

/// What the configured provider (`[octavia_defaults] provider`) cannot do,
/// refused here with the field that asks for it, before any call: OVN
/// balances by SOURCE_IP_PORT only (an algorithm left at its default
/// becomes that, with a note), has no HTTPS (TLS passthrough) listeners,
/// listener timeouts, PROXY pools or source ranges (`allowed_cidrs`), and
/// takes no flavor or availability zone; the amphora provider has no
/// SOURCE_IP_PORT. The cloud's default provider (none configured) is not
/// second-guessed.
fn fit_provider(
    settings: &Settings,
    annotations: &Annotations,
    listeners: &mut [DesiredListener],
    notes: &mut Vec<String>,
) -> Result<(), TranslateError> {
    use annotation::*;
    let Some(provider) = settings.octavia_defaults.provider.as_deref() else {
        return Ok(());
    };
    let refuse = |key: &str, what: &str| {
        let message = format!("the {provider} provider has no {what}");
        if key.starts_with("service.") {
            TranslateError::field(key, message)
        } else {
            TranslateError::annotation(key, message)
        }
    };
    match provider {
        "ovn" => {
            if annotations.flavor_id.is_some() {
                return Err(refuse(FLAVOR_ID, "flavors"));
            }
            if annotations.availability_zone.is_some() {
                return Err(refuse(AVAILABILITY_ZONE, "availability zones"));
            }
            if annotations.proxy_protocol.is_some() {
                return Err(refuse(PROXY_PROTOCOL, "PROXY pools"));
            }
            let mut defaulted = false;
            for l in listeners.iter_mut() {
                if l.protocol == ListenerProtocol::Https {
                    return Err(refuse(
                        LISTENER_PROTOCOL,
                        "HTTPS (TLS passthrough) listeners",
                    ));
                }
                if l.protocol.is_http() {
                    return Err(refuse(
                        "service.spec.ports",
                        &format!(
                            "{} listeners (appProtocol http or https, x-forwarded-*, default-tls-container-ref)",
                            l.protocol.as_str()
                        ),
                    ));
                }
                let o = &l.options;
                for (key, set) in [
                    (TIMEOUT_CLIENT_DATA, o.timeout_client_data.is_some()),
                    (TIMEOUT_MEMBER_CONNECT, o.timeout_member_connect.is_some()),
                    (TIMEOUT_MEMBER_DATA, o.timeout_member_data.is_some()),
                    (TIMEOUT_TCP_INSPECT, o.timeout_tcp_inspect.is_some()),
                ] {
                    if set {
                        return Err(refuse(key, "listener timeouts"));
                    }
                }
                if l.pool.lb_algorithm != LbAlgorithm::SourceIpPort {
                    if annotations.lb_method.is_some() {
                        return Err(refuse(LB_METHOD, "algorithm but SOURCE_IP_PORT"));
                    }
                    l.pool.lb_algorithm = LbAlgorithm::SourceIpPort;
                    defaulted = true;
                }
            }
            if defaulted {
                notes.push(
                    "the ovn provider balances by SOURCE_IP_PORT only: the pools use it".into(),
                );
            }
        }
        "amphora" | "octavia" | "amphorav2"
            if listeners
                .iter()
                .any(|l| l.pool.lb_algorithm == LbAlgorithm::SourceIpPort) =>
        {
            return Err(if annotations.lb_method.is_some() {
                refuse(LB_METHOD, "SOURCE_IP_PORT algorithm")
            } else {
                TranslateError::field(
                    "octavia_defaults.lb_algorithm",
                    format!("the {provider} provider has no SOURCE_IP_PORT algorithm"),
                )
            });
        }
        _ => {}
    }
    Ok(())
}

/// The load balancers of other tools this Service's may be: those of
/// `[adoption] from`, when the Service asks (`svc-lbaas.io/adopt`).
fn adoption_candidates(
    settings: &Settings,
    service: &ServiceRef,
    asked: bool,
    notes: &mut Vec<String>,
) -> Vec<crate::model::AdoptionCandidate> {
    use crate::model::AdoptFrom;
    if !asked {
        return Vec::new();
    }
    let from = &settings.adoption.from;
    if from.is_empty() {
        notes.push(format!(
            "{} is set but [adoption] from names no tool (SVC_LBAAS_ADOPT_FROM): nothing is adopted",
            annotation::ADOPT
        ));
    }
    from.iter()
        .map(|&tool| match tool {
            AdoptFrom::Occm => {
                let cluster = settings.adoption.occm_cluster(&settings.cluster.name);
                crate::model::AdoptionCandidate {
                    from: tool,
                    load_balancer_name: names::occm_load_balancer_name(cluster, service),
                    floating_ip_description: names::occm_floating_ip_description(cluster, service),
                }
            }
            AdoptFrom::Kuryr => crate::model::AdoptionCandidate {
                from: tool,
                load_balancer_name: names::load_balancer_name(service),
                floating_ip_description: names::KURYR_FLOATING_IP_DESCRIPTION.to_string(),
            },
        })
        .collect()
}

/// Why a Service gets no load balancer (ExternalName, headless, no ports,
/// another controller's class), or `None`.
fn skip_reason(
    settings: &Settings,
    spec: &ServiceSpec,
    cluster_ips: &[&str],
) -> Result<Option<String>, TranslateError> {
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    match service_type {
        "ClusterIP" | "NodePort" | "LoadBalancer" => {}
        "ExternalName" => {
            return Ok(Some(
                "ExternalName Service: a DNS alias, nothing to balance".into(),
            ));
        }
        other => {
            return Err(TranslateError::field(
                "service.spec.type",
                format!(
                    "unknown Service type {}; expected ClusterIP, NodePort, LoadBalancer or ExternalName",
                    quote(other)
                ),
            ));
        }
    }

    if cluster_ips.first() == Some(&"None") {
        return Ok(Some(
            "headless Service (clusterIP: None): no VIP to balance".into(),
        ));
    }
    if spec.ports.as_ref().is_none_or(Vec::is_empty) {
        return Ok(Some("Service has no ports".into()));
    }
    if service_type == "LoadBalancer" {
        let wanted = &settings.octavia_defaults.load_balancer_class;
        let class = spec.load_balancer_class.as_deref().unwrap_or("");
        if class != wanted {
            let configured = if wanted.is_empty() {
                "none is configured".to_string()
            } else {
                format!("this one serves {}", quote(wanted))
            };
            return Ok(Some(format!(
                "spec.loadBalancerClass {} belongs to another controller ({configured})",
                quote(class)
            )));
        }
    }
    Ok(None)
}

/// The clusterIPs, first family first.
fn cluster_ips(spec: &ServiceSpec) -> Vec<&str> {
    match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        (_, Some(ip)) if !ip.is_empty() => vec![ip.as_str()],
        _ => Vec::new(),
    }
}

/// The VIP: the first clusterIP, on the service subnet of its family (and
/// the second family's as an additional VIP). Answers the family too.
fn vips(
    settings: &Settings,
    spec: &ServiceSpec,
    cluster_ips: &[&str],
    annotations: &Annotations,
    notes: &mut Vec<String>,
) -> Result<(IpFamily, Vip, Vec<Vip>), TranslateError> {
    let mut addresses = Vec::with_capacity(cluster_ips.len());
    for (i, ip) in cluster_ips.iter().enumerate() {
        let field = if spec.cluster_ips.as_ref().is_some_and(|v| !v.is_empty()) {
            format!("service.spec.clusterIPs[{i}]")
        } else {
            "service.spec.clusterIP".to_string()
        };
        let address: IpAddr = ip.parse().map_err(|_| {
            TranslateError::field(field, format!("{} is not an IP address", quote(ip)))
        })?;
        addresses.push(address);
    }
    let family = match addresses.first() {
        Some(a) => IpFamily::of(a),
        None => match spec
            .ip_families
            .as_ref()
            .and_then(|f| f.first())
            .map(String::as_str)
        {
            Some("IPv6") => IpFamily::IPv6,
            Some("IPv4") | None => IpFamily::IPv4,
            Some(other) => {
                return Err(TranslateError::field(
                    "service.spec.ipFamilies[0]",
                    format!("{} is not IPv4 or IPv6", quote(other)),
                ));
            }
        },
    };
    let defaults = &settings.neutron_defaults;
    let family_subnet = |f: IpFamily| match f {
        IpFamily::IPv4 => defaults.service_subnet.clone(),
        IpFamily::IPv6 => defaults
            .service_subnet_ipv6
            .clone()
            .or_else(|| defaults.service_subnet.clone()),
    };
    // A VIP port named (OCCM's port-id): the port's address, subnet and
    // network, whatever else is set, as OCCM sends it.
    if let Some(port) = &annotations.port_id {
        notes.push(format!(
            "{}: the VIP is port {port}, with its address",
            annotation::PORT_ID
        ));
        return Ok((
            family,
            Vip {
                address: None,
                subnet_id: None,
                network_id: None,
                port_id: Some(port.clone()),
            },
            Vec::new(),
        ));
    }
    // A VIP network named (OCCM's network-id): Neutron picks the address on
    // it, in the subnet named if one is, and no setting's subnet applies.
    if let Some(network) = &annotations.network_id {
        notes.push(format!(
            "{}: the VIP is on network {network}, its address Neutron's pick",
            annotation::NETWORK_ID
        ));
        return Ok((
            family,
            Vip {
                address: None,
                subnet_id: annotations.subnet_id.clone(),
                network_id: Some(network.clone()),
                port_id: None,
            },
            Vec::new(),
        ));
    }
    let vip_subnet = annotations
        .subnet_id
        .clone()
        .or_else(|| family_subnet(family));
    let from_cluster_ip = settings.octavia_defaults.vip_from_cluster_ip;
    let vip_address = if from_cluster_ip {
        addresses.first().copied()
    } else {
        None
    };
    if vip_address.is_none() {
        notes.push(if from_cluster_ip {
            "the Service has no clusterIP yet: Neutron picks the VIP".to_string()
        } else {
            "vip_from_cluster_ip = false: Neutron picks the VIP".to_string()
        });
    }
    let mut additional_vips = Vec::new();
    if let Some(second) = addresses.get(1) {
        if defaults.service_subnet_ipv6.is_some() {
            additional_vips.push(Vip {
                address: from_cluster_ip.then_some(*second),
                subnet_id: family_subnet(IpFamily::of(second)),
                network_id: None,
                port_id: None,
            });
        } else {
            notes.push(format!(
                "dual-stack: the second family ({second}) gets no VIP; set [neutron_defaults] service_subnet_ipv6 to add it as an additional VIP"
            ));
        }
    }
    Ok((
        family,
        Vip {
            address: vip_address,
            subnet_id: vip_subnet,
            network_id: None,
            port_id: None,
        },
        additional_vips,
    ))
}

/// One listener and one pool per port, with the members of each port.
#[allow(clippy::too_many_arguments)]
fn listeners(
    settings: &Settings,
    service_ref: &ServiceRef,
    spec: &ServiceSpec,
    annotations: &Annotations,
    backends: Option<Backends<'_>>,
    family: IpFamily,
    is_load_balancer_type: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<DesiredListener>, TranslateError> {
    let is_api_service = service_ref.namespace == "default" && service_ref.name == "kubernetes";
    let session_persistence = match spec.session_affinity.as_deref() {
        Some("ClientIP") => Some(SessionPersistence::SourceIp),
        Some("None") | None => None,
        Some(other) => {
            return Err(TranslateError::field(
                "service.spec.sessionAffinity",
                format!("{} is not ClientIP or None", quote(other)),
            ));
        }
    };
    // Kubernetes defaults the timeout (10800 s) wherever ClientIP is set.
    let persistence_timeout = session_persistence.and(
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds),
    );
    let persistence_timeout = match persistence_timeout {
        Some(t) if !(1..=86_400).contains(&t) => {
            return Err(TranslateError::field(
                "service.spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                format!("{t} is not 1..86400"),
            ));
        }
        t => t.map(|t| t as u32),
    };
    let shared = PortShared {
        service_ref,
        annotations,
        is_api_service,
        lb_algorithm: annotations.lb_method.unwrap_or(if is_api_service {
            LbAlgorithm::LeastConnections
        } else {
            settings.octavia_defaults.lb_algorithm
        }),
        session_persistence,
        persistence_timeout,
        allowed_cidrs: if is_load_balancer_type {
            source_ranges(spec.load_balancer_source_ranges.as_deref().unwrap_or(&[]))?
        } else {
            Vec::new()
        },
        member_subnet: annotations
            .member_subnet_id
            .clone()
            .or_else(|| settings.neutron_defaults.pod_subnet.clone()),
        groups: backends
            .map(|b| endpoint_groups(b, family, settings.octavia_defaults.drain_terminating))
            .transpose()?,
    };
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let mut listeners: Vec<DesiredListener> = Vec::with_capacity(ports.len());
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let number = port_number(port.port, &format!("service.spec.ports[{i}].port"))?;
        let port_protocol = port_protocol(port, i)?;
        let protocol = shared.listener_protocol(port, port_protocol, i)?;
        if !seen.insert((protocol, number)) {
            return Err(TranslateError::field(
                format!("service.spec.ports[{i}].port"),
                format!("port {} {number} is listed twice", port_protocol.as_str()),
            ));
        }
        listeners.push(shared.listener(port, i, (number, port_protocol, protocol), notes)?);
    }
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    let http = listeners.iter().any(|l| l.protocol.is_http());
    if !annotations.insert_headers.is_empty() && !http {
        notes.push(format!(
            "{}: no HTTP listener to insert headers on",
            annotation::X_FORWARDED_FOR
        ));
    }
    if annotations.tls.is_some()
        && !listeners
            .iter()
            .any(|l| l.protocol == ListenerProtocol::TerminatedHttps)
    {
        notes.push(format!(
            "{}: no TCP port to terminate TLS on",
            annotation::DEFAULT_TLS_CONTAINER_REF
        ));
    }
    if backends.is_none() {
        notes.push("no Endpoints or EndpointSlices given: members are left as they are".into());
    }
    Ok(listeners)
}

/// What the listeners and pools of one Service's ports share.
struct PortShared<'a> {
    service_ref: &'a ServiceRef,
    annotations: &'a Annotations,
    /// `default/kubernetes`: HTTPS listeners, least connections.
    is_api_service: bool,
    lb_algorithm: LbAlgorithm,
    session_persistence: Option<SessionPersistence>,
    persistence_timeout: Option<u32>,
    allowed_cidrs: Vec<IpNet>,
    member_subnet: Option<String>,
    /// `None`: no Endpoints or EndpointSlices given, members left alone.
    groups: Option<Vec<EndpointGroup<'a>>>,
}

impl PortShared<'_> {
    /// The listener, pool and members of `spec.ports[i]`, given its number,
    /// its protocol and the listener's.
    fn listener(
        &self,
        port: &ServicePort,
        i: usize,
        (number, port_protocol, protocol): (u16, ListenerProtocol, ListenerProtocol),
        notes: &mut Vec<String>,
    ) -> Result<DesiredListener, TranslateError> {
        let pool_protocol = self.pool_protocol(protocol, i)?;
        let target_port = target_port(port, i)?;
        let members = match &self.groups {
            Some(g) => Some(members_for_port(
                port,
                i,
                target_port,
                port_protocol,
                g,
                notes,
            )?),
            None => None,
        };
        let target = match (&port.target_port, target_port) {
            (Some(IntOrString::String(name)), _) => name.clone(),
            (_, Some(n)) => n.to_string(),
            (_, None) => number.to_string(),
        };
        let name = names::listener_name(self.service_ref, protocol, number);
        let a = self.annotations;
        if !a.insert_headers.is_empty() && protocol == ListenerProtocol::Https {
            return Err(TranslateError::annotation(
                annotation::X_FORWARDED_FOR,
                format!(
                    "a TLS passthrough (HTTPS) listener inserts no headers (spec.ports[{i}]; terminate TLS with {} or drop appProtocol https)",
                    annotation::DEFAULT_TLS_CONTAINER_REF
                ),
            ));
        }
        let terminated = protocol == ListenerProtocol::TerminatedHttps;
        Ok(DesiredListener {
            name: name.clone(),
            protocol,
            protocol_port: number,
            allowed_cidrs: self.allowed_cidrs.clone(),
            options: a.listener_options.clone(),
            insert_headers: if protocol.is_http() {
                a.insert_headers.clone()
            } else {
                Vec::new()
            },
            tls: a.tls.clone().filter(|_| terminated),
            alpn_protocols: if terminated {
                vec!["h2", "http/1.1", "http/1.0"]
            } else {
                Vec::new()
            },
            pool: DesiredPool {
                name,
                protocol: pool_protocol,
                lb_algorithm: self.lb_algorithm,
                session_persistence: self.session_persistence,
                persistence_timeout: self
                    .persistence_timeout
                    .filter(|_| matches!(pool_protocol, PoolProtocol::Udp | PoolProtocol::Sctp)),
                members,
                member_subnet: self.member_subnet.clone(),
                health_monitor: self
                    .annotations
                    .health_monitor
                    .as_ref()
                    .map(|hm| hm.for_pool(pool_protocol)),
                port_tags: names::port_tags(port.name.as_deref().unwrap_or(""), &target),
            },
        })
    }

    /// The annotation's protocol (which must carry the port's); for a TCP
    /// port its `appProtocol` (`http`, `kubernetes.io/h2c`: HTTP; `https`:
    /// TERMINATED_HTTPS with a certificate, else HTTPS passthrough); the API
    /// server's HTTPS passthrough; OCCM's: TERMINATED_HTTPS with a
    /// certificate, HTTP with headers to insert; else the port's protocol.
    fn listener_protocol(
        &self,
        port: &ServicePort,
        port_protocol: ListenerProtocol,
        i: usize,
    ) -> Result<ListenerProtocol, TranslateError> {
        let tls = self.annotations.tls.is_some();
        match self.annotations.listener_protocol {
            Some(ListenerProtocol::TerminatedHttps) if !tls => Err(TranslateError::annotation(
                annotation::LISTENER_PROTOCOL,
                format!(
                    "TERMINATED_HTTPS needs a certificate ({})",
                    annotation::DEFAULT_TLS_CONTAINER_REF
                ),
            )),
            Some(p) => {
                let carries = match p {
                    ListenerProtocol::Tcp
                    | ListenerProtocol::Https
                    | ListenerProtocol::Http
                    | ListenerProtocol::TerminatedHttps => ListenerProtocol::Tcp,
                    other => other,
                };
                if carries != port_protocol {
                    return Err(TranslateError::annotation(
                        annotation::LISTENER_PROTOCOL,
                        format!(
                            "{} cannot carry the {} port spec.ports[{i}]",
                            p.as_str(),
                            port_protocol.as_str()
                        ),
                    ));
                }
                Ok(p)
            }
            None if port_protocol != ListenerProtocol::Tcp => Ok(port_protocol),
            None => Ok(match port.app_protocol.as_deref() {
                Some("http" | "kubernetes.io/h2c") => ListenerProtocol::Http,
                Some("https") if tls => ListenerProtocol::TerminatedHttps,
                Some("https") => ListenerProtocol::Https,
                _ if self.is_api_service => ListenerProtocol::Https,
                _ if tls => ListenerProtocol::TerminatedHttps,
                _ if !self.annotations.insert_headers.is_empty() => ListenerProtocol::Http,
                _ => ListenerProtocol::Tcp,
            }),
        }
    }

    /// The listener's pool protocol, or PROXY (TCP listeners only).
    fn pool_protocol(
        &self,
        protocol: ListenerProtocol,
        i: usize,
    ) -> Result<PoolProtocol, TranslateError> {
        match self.annotations.proxy_protocol {
            Some(proxy)
                if matches!(
                    protocol,
                    ListenerProtocol::Tcp
                        | ListenerProtocol::Https
                        | ListenerProtocol::Http
                        | ListenerProtocol::TerminatedHttps
                ) =>
            {
                Ok(proxy)
            }
            Some(_) => Err(TranslateError::annotation(
                annotation::PROXY_PROTOCOL,
                format!(
                    "the PROXY protocol needs TCP listeners, not {} (spec.ports[{i}])",
                    protocol.as_str()
                ),
            )),
            None => Ok(PoolProtocol::for_listener(protocol)),
        }
    }
}

/// The external address: none, the user's floating IP, or one from the pool.
fn floating_ip(
    settings: &Settings,
    spec: &ServiceSpec,
    annotations: &Annotations,
    family: IpFamily,
    is_load_balancer_type: bool,
    notes: &mut Vec<String>,
) -> Result<FloatingIpIntent, TranslateError> {
    let defaults = &settings.neutron_defaults;
    Ok(if !is_load_balancer_type {
        FloatingIpIntent::None
    } else if annotations.internal {
        notes.push(format!(
            "{}: no floating IP, the VIP is the ingress",
            annotation::INTERNAL
        ));
        FloatingIpIntent::None
    } else if family == IpFamily::IPv6 {
        notes.push(
            "IPv6 Service: no floating IP (Neutron's are IPv4), the VIP is the ingress".into(),
        );
        FloatingIpIntent::None
    } else {
        match spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
            Some(ip) => FloatingIpIntent::User {
                address: ip.parse().map_err(|_| {
                    TranslateError::field(
                        "service.spec.loadBalancerIP",
                        format!(
                            "{} is not an IPv4 address (floating IPs are IPv4)",
                            quote(ip)
                        ),
                    )
                })?,
            },
            None => {
                let (subnet_id, subnet_match) = floating_subnet(settings, annotations)?;
                // kuryr's external_svc_net, where no subnet is given.
                let network_id = annotations.floating_network_id.clone().or_else(|| {
                    subnet_id
                        .is_none()
                        .then(|| defaults.external_svc_net.clone())
                        .flatten()
                });
                if subnet_match.is_some() && network_id.is_none() {
                    return Err(TranslateError::annotation(
                        annotation::FLOATING_SUBNET,
                        "a floating subnet by name or tags is one of the floating network's: set loadbalancer.openstack.org/floating-network-id, [LoadBalancer] floating-network-id or [neutron_defaults] external_svc_net",
                    ));
                }
                if subnet_id.is_none() && network_id.is_none() {
                    notes.push("no external_svc_subnet configured: the floating IP's network must be found online".into());
                }
                FloatingIpIntent::Pool {
                    subnet_id,
                    network_id,
                    subnet_match,
                }
            }
        }
    })
}

/// The floating IP's subnet: by id, or by OCCM's name pattern / tags among
/// the floating network's; the Service's annotations (its class's merged in)
/// first, then `[LoadBalancer]`'s patterns, then `external_svc_subnet`.
fn floating_subnet(
    settings: &Settings,
    a: &Annotations,
) -> Result<(Option<String>, Option<FloatingSubnetMatch>), TranslateError> {
    use annotation::{FLOATING_SUBNET, FLOATING_SUBNET_TAGS};
    let annotated = FloatingSubnetMatch {
        name: a.floating_subnet.clone(),
        tags: a.floating_subnet_tags.clone(),
    };
    for (key, part) in [
        (
            FLOATING_SUBNET,
            FloatingSubnetMatch {
                tags: None,
                ..annotated.clone()
            },
        ),
        (
            FLOATING_SUBNET_TAGS,
            FloatingSubnetMatch {
                name: None,
                ..annotated.clone()
            },
        ),
    ] {
        part.check()
            .map_err(|e| TranslateError::annotation(key, e))?;
    }
    if a.floating_subnet_id.is_some() && !annotated.is_empty() {
        return Err(TranslateError::annotation(
            FLOATING_SUBNET,
            "loadbalancer.openstack.org/floating-subnet-id is given too: set one or the other",
        ));
    }
    if a.floating_subnet_id.is_some() {
        return Ok((a.floating_subnet_id.clone(), None));
    }
    if !annotated.is_empty() {
        return Ok((None, Some(annotated)));
    }
    let lb = &settings.load_balancer;
    let configured = FloatingSubnetMatch {
        name: lb.floating_subnet.clone(),
        tags: lb.floating_subnet_tags.clone(),
    };
    if !configured.is_empty() {
        return Ok((None, Some(configured)));
    }
    Ok((settings.neutron_defaults.external_svc_subnet.clone(), None))
}

/// The Service's namespace/name, validated as Kubernetes names.
pub fn service_ref(service: &Service) -> Result<ServiceRef, TranslateError> {
    parse_service_ref(
        service.metadata.namespace.as_deref().unwrap_or("default"),
        service.metadata.name.as_deref().unwrap_or(""),
        "service.metadata.",
    )
}

/// A Service's namespace and name, validated as Kubernetes validates them:
/// the namespace a DNS-1123 label, the name a DNS-1035 label. `prefix` is
/// where they came from (`service.metadata.`, `path.`).
pub fn parse_service_ref(
    namespace: &str,
    name: &str,
    prefix: &str,
) -> Result<ServiceRef, TranslateError> {
    if !is_dns_1035_label(name) {
        return Err(TranslateError::field(
            format!("{prefix}name"),
            format!(
                "{} is not a Service name (a DNS-1035 label: lowercase letters, digits and '-', starting with a letter; at most 63)",
                quote(name)
            ),
        ));
    }
    if DnsLabel::try_new(namespace).is_err() {
        return Err(TranslateError::field(
            format!("{prefix}namespace"),
            format!(
                "{} is not a namespace name (a DNS-1123 label: lowercase letters, digits and '-'; at most 63)",
                quote(namespace)
            ),
        ));
    }
    Ok(ServiceRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// Kubernetes' DNS-1035 label (Service names): a DNS-1123 label that starts with a letter.
fn is_dns_1035_label(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Kubernetes' IANA_SVC_NAME (named targetPorts): at most 15 lowercase
/// letters, digits and '-', at least one letter, no '-' at an end or twice in a row.
fn is_iana_service_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The most ports a Service may have here. Kubernetes sets no limit; no real
/// Service comes near, and each port costs a listener and a pool.
pub const MAX_PORTS: usize = 1000;

/// The most endpoint addresses (all subsets and slices together) a request may carry.
pub const MAX_ENDPOINTS: usize = 5_000;

/// The most members (ports x endpoint addresses) one Service may come to:
/// what keeps a request's memory bounded (the fully populated create of
/// 10,000 members is a 1.5 MB body) and Octavia's provisioning in reason.
pub const MAX_MEMBERS: usize = 10_000;

/// The backends within the limits: at most [`MAX_ENDPOINTS`] addresses, and
/// `ports` of them at most [`MAX_MEMBERS`] members.
fn check_backends(b: &Backends<'_>, ports: usize) -> Result<(), TranslateError> {
    let count = b
        .endpoints
        .iter()
        .flat_map(|e| e.subsets.iter().flatten())
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum::<usize>()
        + b.endpoint_slices
            .iter()
            .map(|s| s.endpoints.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
    let field = if b.endpoints.is_some() {
        "endpoints"
    } else {
        "endpointSlices"
    };
    if count > MAX_ENDPOINTS {
        return Err(TranslateError::field(
            field,
            format!("{count} endpoint addresses; at most {MAX_ENDPOINTS} are served"),
        ));
    }
    if count.saturating_mul(ports) > MAX_MEMBERS {
        return Err(TranslateError::field(
            field,
            format!(
                "{count} endpoint addresses for {ports} ports would make more than {MAX_MEMBERS} members"
            ),
        ));
    }
    Ok(())
}

/// The ports as Kubernetes validates them, and within this tool's limit:
/// names DNS-1123 labels, unique, required when there are several; port
/// numbers 1-65535, unique per protocol; nodePort 1-65535 when set.
fn validate_ports(ports: &[ServicePort]) -> Result<(), TranslateError> {
    if ports.len() > MAX_PORTS {
        return Err(TranslateError::field(
            "service.spec.ports",
            format!("{} ports; at most {MAX_PORTS} are served", ports.len()),
        ));
    }
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let field = |f: &str| format!("service.spec.ports[{i}].{f}");
        let name = port.name.as_deref().unwrap_or("");
        if name.is_empty() && ports.len() > 1 {
            return Err(TranslateError::field(
                field("name"),
                "required when a Service has several ports",
            ));
        }
        if !name.is_empty() && !is_dns_label(name) {
            return Err(TranslateError::field(
                field("name"),
                format!(
                    "{} is not a port name (a DNS-1123 label: lowercase letters, digits and '-'; at most 63)",
                    quote(name)
                ),
            ));
        }
        if !names.insert(name) {
            return Err(TranslateError::field(
                field("name"),
                format!("the port name {} is used twice", quote(name)),
            ));
        }
        let number = port_number(port.port, &field("port"))?;
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        if !numbers.insert((protocol, number)) {
            return Err(TranslateError::field(
                field("port"),
                format!("port {protocol} {number} is listed twice"),
            ));
        }
        match port.node_port {
            None | Some(0) => {}
            Some(n) => {
                port_number(n, &field("nodePort"))?;
            }
        }
        if let Some(IntOrString::String(target)) = &port.target_port
            && !target.is_empty()
            && !is_iana_service_name(target)
        {
            return Err(TranslateError::field(
                field("targetPort"),
                format!(
                    "{} is not a port number or name (an IANA service name: at most 15 lowercase letters, digits and '-')",
                    quote(target)
                ),
            ));
        }
    }
    Ok(())
}

fn port_number(value: i32, field: &str) -> Result<u16, TranslateError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| TranslateError::field(field, format!("{value} is not a port (1-65535)")))
}

fn port_protocol(port: &ServicePort, i: usize) -> Result<ListenerProtocol, TranslateError> {
    match port.protocol.as_deref() {
        None | Some("TCP") => Ok(ListenerProtocol::Tcp),
        Some("UDP") => Ok(ListenerProtocol::Udp),
        Some("SCTP") => Ok(ListenerProtocol::Sctp),
        Some(other) => Err(TranslateError::field(
            format!("service.spec.ports[{i}].protocol"),
            format!(
                "{} is not supported; expected TCP, UDP or SCTP",
                quote(other)
            ),
        )),
    }
}

/// A numeric (or absent, meaning `port`) targetPort; `None` for a named one,
/// which only the Endpoints can resolve.
fn target_port(port: &ServicePort, i: usize) -> Result<Option<u16>, TranslateError> {
    let number = match &port.target_port {
        None => port.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) if name.is_empty() => {
            return Err(TranslateError::field(
                format!("service.spec.ports[{i}].targetPort"),
                "must not be empty",
            ));
        }
        Some(IntOrString::String(_)) => return Ok(None),
    };
    port_number(number, &format!("service.spec.ports[{i}].targetPort")).map(Some)
}

fn source_ranges(ranges: &[String]) -> Result<Vec<IpNet>, TranslateError> {
    let mut cidrs = BTreeSet::new();
    for (i, range) in ranges.iter().enumerate() {
        let net: IpNet = range.trim().parse().map_err(|_| {
            TranslateError::field(
                format!("service.spec.loadBalancerSourceRanges[{i}]"),
                format!("{} is not a CIDR", quote(range)),
            )
        })?;
        cidrs.insert(net.trunc());
    }
    Ok(cidrs.into_iter().collect())
}

/// The members of the Service port recorded by a pool's port tags (its name
/// and target port, protocol `protocol`), from Endpoints / EndpointSlices alone:
/// what an Endpoints event needs when the Service itself is not sent.
pub fn members_of_port(
    port_name: &str,
    target: &str,
    protocol: ListenerProtocol,
    family: IpFamily,
    backends: Backends<'_>,
    drain: bool,
) -> Result<BTreeSet<Member>, TranslateError> {
    let fallback = target.parse::<u16>().ok().filter(|n| *n != 0);
    let port = ServicePort {
        name: (!port_name.is_empty()).then(|| port_name.to_string()),
        protocol: Some(protocol.as_str().to_string()),
        ..Default::default()
    };
    check_backends(&backends, 1)?;
    let groups = endpoint_groups(backends, family, drain)?;
    let mut notes = Vec::new();
    members_for_port(&port, 0, fallback, protocol, &groups, &mut notes)
}

/// Whether an endpoint address may become a member. Link-local (the
/// metadata service, 169.254.169.254) and loopback addresses never may; with
/// `allowed` (`[tenancy] member_cidrs`, or the configured member subnets'
/// CIDRs), only addresses inside one of them: a selectorless Service's
/// Endpoints could otherwise name any address and put it behind a public
/// floating IP (the class of CVE-2021-25740).
pub fn member_allowed(address: IpAddr, allowed: Option<&[IpNet]>) -> bool {
    let address = address.to_canonical();
    let special = match address {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    !special && allowed.is_none_or(|cidrs| cidrs.iter().any(|c| c.contains(&address)))
}

/// Takes out of `members` those [`member_allowed`] refuses; returns their
/// addresses.
pub fn leave_out_members(
    members: &mut BTreeSet<Member>,
    allowed: Option<&[IpNet]>,
) -> BTreeSet<IpAddr> {
    let mut left = BTreeSet::new();
    members.retain(|m| {
        let keep = member_allowed(m.address, allowed);
        if !keep {
            left.insert(m.address);
        }
        keep
    });
    left
}

/// [`leave_out_members`] over every pool of `d`, with a note in its answer
/// naming (the first five of) the addresses left out.
pub fn leave_out_desired_members(
    d: &mut DesiredLoadBalancer,
    allowed: Option<&[IpNet]>,
) -> BTreeSet<IpAddr> {
    let mut left = BTreeSet::new();
    for l in &mut d.listeners {
        if let Some(members) = &mut l.pool.members {
            left.extend(leave_out_members(members, allowed));
        }
    }
    if !left.is_empty() {
        d.notes.push(left_out_note(&left));
    }
    left
}

/// The note for endpoint addresses that did not become members.
pub fn left_out_note(left: &BTreeSet<IpAddr>) -> String {
    let shown: Vec<String> = left.iter().take(5).map(ToString::to_string).collect();
    format!(
        "{} endpoint address(es) left out of the members: outside [tenancy] member_cidrs (by default the configured pod and member subnets), or link-local or loopback: {}{}",
        left.len(),
        shown.join(", "),
        if left.len() > 5 { ", ..." } else { "" }
    )
}

/// Whether any EndpointSlice endpoint drains (serving and terminating), so
/// that its member is to be weighed 0: an observation then reads weights.
pub fn drains(backends: Backends<'_>, drain: bool) -> bool {
    drain
        && backends.endpoint_slices.iter().any(|slice| {
            slice.endpoints.iter().flatten().any(|e| {
                e.conditions.as_ref().is_some_and(|c| {
                    c.ready == Some(false) && c.serving == Some(true) && c.terminating == Some(true)
                })
            })
        })
}

/// One Endpoints subset or one EndpointSlice: its ready (and draining)
/// addresses of the VIP's family with their members' weight, parsed once for
/// all the Service's ports, and the ports it serves.
struct EndpointGroup<'a> {
    ports: Vec<GroupPort<'a>>,
    addresses: Vec<(IpAddr, u16)>,
}

struct GroupPort<'a> {
    name: &'a str,
    protocol: &'a str,
    port: Option<i32>,
    /// The port's field path, for errors: the group's path and the port's index.
    field: (GroupSource, usize, usize),
}

#[derive(Clone, Copy)]
enum GroupSource {
    Subset,
    Slice,
}

impl GroupSource {
    fn path(self, group: usize) -> String {
        match self {
            GroupSource::Subset => format!("endpoints.subsets[{group}]"),
            GroupSource::Slice => format!("endpointSlices[{group}]"),
        }
    }

    fn port<'a>(
        self,
        group: usize,
        index: usize,
        name: &'a Option<String>,
        protocol: &'a Option<String>,
        port: Option<i32>,
    ) -> GroupPort<'a> {
        GroupPort {
            name: name.as_deref().unwrap_or(""),
            protocol: protocol.as_deref().unwrap_or("TCP"),
            port,
            field: (self, group, index),
        }
    }

    /// Parses an endpoint address; `at` is its path below the group.
    fn address(
        self,
        group: usize,
        at: impl FnOnce() -> String,
        text: &str,
    ) -> Result<IpAddr, TranslateError> {
        text.parse().map_err(|_| {
            TranslateError::field(
                format!("{}.{}", self.path(group), at()),
                format!("{} is not an IP address", quote(text)),
            )
        })
    }
}

impl GroupPort<'_> {
    fn field(&self) -> String {
        let (source, group, port) = self.field;
        format!("{}.ports[{port}].port", source.path(group))
    }
}

/// Reads the backends into groups of ready addresses of `family`; with
/// `drain`, EndpointSlice endpoints that are serving while terminating too,
/// at weight 0. (Endpoints v1 lists no terminating address: they leave.)
fn endpoint_groups<'a>(
    backends: Backends<'a>,
    family: IpFamily,
    drain: bool,
) -> Result<Vec<EndpointGroup<'a>>, TranslateError> {
    let mut groups = Vec::new();
    if let Some(endpoints) = backends.endpoints {
        for (s, subset) in endpoints.subsets.iter().flatten().enumerate() {
            let mut addresses = Vec::new();
            for (a, address) in subset.addresses.iter().flatten().enumerate() {
                let ip =
                    GroupSource::Subset.address(s, || format!("addresses[{a}].ip"), &address.ip)?;
                if IpFamily::of(&ip) == family {
                    addresses.push((ip, Member::SERVING));
                }
            }
            let ports = subset
                .ports
                .iter()
                .flatten()
                .enumerate()
                .map(|(p, ep)| {
                    GroupSource::Subset.port(s, p, &ep.name, &ep.protocol, Some(ep.port))
                })
                .collect();
            groups.push(EndpointGroup { ports, addresses });
        }
    }
    for (k, slice) in backends.endpoint_slices.iter().enumerate() {
        let slice_family = match slice.address_type.as_str() {
            "IPv4" => IpFamily::IPv4,
            "IPv6" => IpFamily::IPv6,
            _ => continue, // FQDN slices carry no addresses to balance to.
        };
        if slice_family != family {
            continue;
        }
        let mut addresses = Vec::new();
        for (e, endpoint) in slice.endpoints.iter().flatten().enumerate() {
            let conditions = endpoint.conditions.as_ref();
            // Kubernetes: an unknown readiness is to be taken as ready.
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            // Serving while terminating: drains (no new connections).
            let draining = drain
                && !ready
                && conditions
                    .is_some_and(|c| c.serving == Some(true) && c.terminating == Some(true));
            let weight = match (ready, draining) {
                (true, _) => Member::SERVING,
                (false, true) => Member::DRAINING,
                (false, false) => continue,
            };
            // The addresses of one endpoint are fungible: the first is the one to use.
            let Some(first) = endpoint.addresses.first() else {
                continue;
            };
            let ip =
                GroupSource::Slice.address(k, || format!("endpoints[{e}].addresses[0]"), first)?;
            if IpFamily::of(&ip) == family {
                addresses.push((ip, weight));
            }
        }
        let ports = slice
            .ports
            .iter()
            .flatten()
            .enumerate()
            .map(|(p, ep)| GroupSource::Slice.port(k, p, &ep.name, &ep.protocol, ep.port))
            .collect();
        groups.push(EndpointGroup { ports, addresses });
    }
    Ok(groups)
}

/// The members of one Service port: `address:targetPort` for every ready
/// address. Endpoints name their ports after the Service port, with the
/// number the (possibly named) targetPort resolved to in each pod.
fn members_for_port(
    port: &ServicePort,
    index: usize,
    fallback: Option<u16>,
    protocol: ListenerProtocol,
    groups: &[EndpointGroup<'_>],
    notes: &mut Vec<String>,
) -> Result<BTreeSet<Member>, TranslateError> {
    let port_name = port.name.as_deref().unwrap_or("");
    let protocol = protocol.as_str();
    let mut members = Vec::new();
    let mut unresolved = false;
    for group in groups {
        // An endpoint serves a Service port only if its subset or slice lists
        // that port's name (an unnamed port: the unnamed entry).
        let Some(served) = group
            .ports
            .iter()
            .find(|p| p.name == port_name && p.protocol == protocol)
        else {
            unresolved |= !group.addresses.is_empty();
            continue;
        };
        // A slice's port without a number serves whatever the Service says.
        let target = match served.port {
            Some(n) => Some(port_number(n, &served.field())?),
            None => fallback,
        };
        let Some(target) = target else {
            unresolved |= !group.addresses.is_empty();
            continue;
        };
        members.extend(group.addresses.iter().map(|&(address, weight)| Member {
            address,
            protocol_port: target,
            weight,
        }));
    }
    if unresolved && members.is_empty() {
        notes.push(format!(
            "spec.ports[{index}] ({}): no Endpoints subset or EndpointSlice lists this port (by name and protocol); it gets no member",
            if port_name.is_empty() { "unnamed" } else { port_name }
        ));
    }
    // Sorting first lets the set be built in bulk. One member per address
    // and port: serving (the higher weight, sorted last) over draining.
    members.sort_unstable();
    members.dedup_by(|later, earlier| {
        let same = later.key() == earlier.key();
        if same {
            *earlier = *later;
        }
        same
    });
    Ok(members.into_iter().collect())
}

/// Go's strconv.ParseBool, which OCCM uses for its annotations.
/// Kubernetes' (and OCCM's) booleans in annotations.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
