//! One Gateway, its routes and their backends -> the Octavia design and the
//! statuses (pure; docs in the README's Gateway API section):
//!
//! 1. Gateway listeners are checked (protocol, TLS, certificates, route
//!    kinds) and grouped one Octavia listener per (transport, port); a
//!    listener that cannot share its port is `Conflicted`.
//! 2. Each route attaches to the listeners its parentRefs name that allow
//!    it (kind, namespace, hostname); a route using what Octavia cannot
//!    express is refused whole (`Accepted: False`, `UnsupportedValue`).
//! 3. Backends resolve to members (cross-namespace only with a
//!    ReferenceGrant); one pool a rule (HTTP) or a listener (TCP, UDP, TLS).
//! 4. HTTP matches become policies in Gateway API's precedence; a redirect
//!    is made to exclude the pool policies above it, since HAProxy runs
//!    every redirect before any pool policy (compile.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::gateway::api::*;
use crate::gateway::compile::{self, Entry};
use crate::gateway::design::*;
use crate::gateway::matching::{self, intersect_hostnames};
use crate::model::{IpFamily, ListenerProtocol, Member, PoolProtocol};
use crate::names;
use crate::translate::{Backends, member_allowed, members_of_port};

/// Everything one Gateway's translation reads.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub gateway: &'a Gateway,
    pub routes: &'a [Route],
    pub reference_grants: &'a [ReferenceGrant],
    pub services: &'a [Service],
    pub endpoint_slices: &'a [EndpointSlice],
    pub namespaces: &'a [Namespace],
    pub tls_secrets: &'a [Secret],
    /// `[tenancy] member_cidrs` (or the member subnets'): where members may be.
    pub member_cidrs: Option<&'a [IpNet]>,
    /// The VIP's family: members of the other are left out.
    pub family: IpFamily,
    /// The time written as the conditions' lastTransitionTime.
    pub now: &'a str,
}

/// The load balancer's name: `gateway:namespace/name`, which no Service's
/// `namespace/name` can be (a namespace holds no `:`).
pub fn load_balancer_name(namespace: &str, name: &str) -> String {
    names::fit(format!("gateway:{namespace}/{name}"))
}

/// The Service a Gateway's annotations would be on: the load balancer's
/// VIP, floating IP, flavor and the rest are read from them by the same
/// rules, and the same tenancy checks apply.
pub fn as_service(gw: &Gateway) -> Service {
    let port = gw
        .spec
        .listeners
        .iter()
        .find(|l| (1..=65535).contains(&l.port))
        .map_or(80, |l| l.port);
    Service {
        metadata: gw.metadata.clone(),
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                name: Some("gateway".into()),
                port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// The Gateway's PROMETHEUS listener (`svc-lbaas.io/prometheus-listener-port`,
/// read as a Service's), named for its load balancer `lb_name`: refused on a
/// port one of the Gateway's TCP-borne listeners takes (Octavia counts
/// PROMETHEUS as TCP).
pub fn prometheus_listener(
    lb_name: &str,
    read: Option<&crate::model::PrometheusListener>,
    design: &Design,
) -> Result<Option<crate::model::PrometheusListener>, crate::translate::TranslateError> {
    let Some(p) = read else {
        return Ok(None);
    };
    if let Some(l) = design
        .listeners
        .iter()
        .find(|l| l.port == p.protocol_port && l.protocol != ListenerProtocol::Udp)
    {
        return Err(crate::translate::TranslateError::Field {
            field: format!(
                "gateway.metadata.annotations[\"{}\"]",
                crate::translate::annotation::PROMETHEUS_LISTENER_PORT
            ),
            message: format!(
                "{} is the port of the Gateway's listener {}: the metrics listener needs a port of its own",
                p.protocol_port, l.name
            ),
        });
    }
    Ok(Some(crate::model::PrometheusListener {
        name: names::fit(format!("{lb_name}:PROMETHEUS:{}", p.protocol_port)),
        ..p.clone()
    }))
}

/// The tags that say a cloud object belongs to this Gateway of `cluster`.
pub fn owner_tags(cluster: &str, namespace: &str, name: &str) -> Vec<String> {
    vec![
        names::TOOL_TAG.to_string(),
        names::cluster_tag(cluster),
        names::fit(format!("svc-lbaas-gateway:{namespace}_{name}")),
    ]
}

fn ns_of(meta: &ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".into())
}

fn name_of(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    meta: &ObjectMeta,
    now: &str,
) -> Condition {
    Condition {
        kind: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: meta.generation,
        last_transition_time: now.into(),
    }
}

/// Octavia's transport for port clashes: everything but UDP is TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Transport {
    Tcp,
    Udp,
}

/// A Gateway listener once checked.
#[derive(Debug, Clone)]
struct Checked<'a> {
    spec: &'a crate::gateway::api::Listener,
    protocol: Option<ListenerProtocol>,
    kinds: Vec<RouteGroupKind>,
    certificates: Vec<SecretKey>,
    accepted: Result<(), (String, String)>,
    resolved: Result<(), (String, String)>,
    conflict: Option<(String, String)>,
    attached: i32,
}

impl Checked<'_> {
    /// Whether routes may attach: accepted, not conflicted. (Unresolved
    /// certificates still take routes; the listener is not programmed.)
    fn usable(&self) -> bool {
        self.accepted.is_ok() && self.conflict.is_none() && self.protocol.is_some()
    }
    fn programmed(&self) -> bool {
        self.usable() && self.resolved.is_ok()
    }
}

fn route_kind(kind: &str) -> RouteGroupKind {
    RouteGroupKind {
        group: Some(GROUP.into()),
        kind: kind.into(),
    }
}

/// The route kinds a Gateway listener protocol can carry here.
fn kinds_for(protocol: &str) -> &'static [&'static str] {
    match protocol {
        "HTTP" | "HTTPS" => &["HTTPRoute"],
        "TLS" => &["TLSRoute"],
        "TCP" => &["TCPRoute"],
        "UDP" => &["UDPRoute"],
        _ => &[],
    }
}

fn check_listener<'a>(
    l: &'a crate::gateway::api::Listener,
    gw_ns: &str,
    inputs: &Inputs<'_>,
) -> Checked<'a> {
    let mut c = Checked {
        spec: l,
        protocol: None,
        kinds: Vec::new(),
        certificates: Vec::new(),
        accepted: Ok(()),
        resolved: Ok(()),
        conflict: None,
        attached: 0,
    };
    let unsupported = |m: String| Err(("UnsupportedProtocol".to_string(), m));
    if !(1..=65535).contains(&l.port) {
        c.accepted = Err((
            "PortUnavailable".into(),
            format!("port {} is not in 1-65535", l.port),
        ));
        return c;
    }
    if let Some(h) = &l.hostname
        && !matching::is_hostname(h)
    {
        c.accepted = Err((
            "UnsupportedValue".into(),
            format!("hostname {h:?} is not a DNS name (or *. and one)"),
        ));
        return c;
    }
    let mode = l
        .tls
        .as_ref()
        .and_then(|t| t.mode.clone())
        .unwrap_or_else(|| "Terminate".into());
    c.protocol = match (l.protocol.as_str(), mode.as_str()) {
        ("HTTP", _) => Some(ListenerProtocol::Http),
        ("HTTPS", "Terminate") => Some(ListenerProtocol::TerminatedHttps),
        ("TLS", "Passthrough") => Some(ListenerProtocol::Tcp),
        ("TCP", _) => Some(ListenerProtocol::Tcp),
        ("UDP", _) => Some(ListenerProtocol::Udp),
        ("HTTPS", m) => {
            c.accepted = unsupported(format!(
                "HTTPS with tls.mode {m}: only Terminate (Octavia's TERMINATED_HTTPS); use a TLS listener to pass TLS through"
            ));
            None
        }
        ("TLS", m) => {
            c.accepted = unsupported(format!(
                "TLS with tls.mode {m}: Octavia terminates TLS only in front of HTTP (use HTTPS) and passes it through as TCP (use Passthrough)"
            ));
            None
        }
        (p, _) => {
            c.accepted = unsupported(format!(
                "protocol {p}: Octavia serves HTTP, HTTPS, TLS (Passthrough), TCP and UDP here"
            ));
            None
        }
    };
    let supported = kinds_for(&l.protocol);
    let asked = l
        .allowed_routes
        .as_ref()
        .map(|a| a.kinds.clone())
        .unwrap_or_default();
    if asked.is_empty() {
        c.kinds = supported.iter().map(|k| route_kind(k)).collect();
    } else {
        let mut bad = Vec::new();
        for k in asked {
            let group_ok = k.group.as_deref().is_none_or(|g| g == GROUP);
            if group_ok && supported.contains(&k.kind.as_str()) {
                c.kinds.push(route_kind(&k.kind));
            } else {
                bad.push(k.kind);
            }
        }
        if !bad.is_empty() {
            c.resolved = Err((
                "InvalidRouteKinds".into(),
                format!(
                    "route kinds {} cannot attach to a {} listener",
                    bad.join(", "),
                    l.protocol
                ),
            ));
        }
    }
    if c.protocol == Some(ListenerProtocol::TerminatedHttps) {
        let refs = l
            .tls
            .as_ref()
            .map(|t| t.certificate_refs.as_slice())
            .unwrap_or(&[]);
        if refs.is_empty() {
            c.resolved = Err((
                "InvalidCertificateRef".into(),
                "an HTTPS listener needs tls.certificateRefs".into(),
            ));
        }
        for (i, r) in refs.iter().enumerate() {
            match certificate(r, gw_ns, inputs) {
                Ok(key) => c.certificates.push(key),
                Err(e) => {
                    c.resolved = Err((e.0, format!("tls.certificateRefs[{i}]: {}", e.1)));
                    break;
                }
            }
        }
    }
    c
}

/// A certificateRef: a `kubernetes.io/tls` Secret given in `tlsSecrets`, in
/// the Gateway's namespace or one whose ReferenceGrant lets the Gateway in.
fn certificate(
    r: &ObjectReference,
    gw_ns: &str,
    inputs: &Inputs<'_>,
) -> Result<SecretKey, (String, String)> {
    let invalid = |m: String| Err(("InvalidCertificateRef".to_string(), m));
    if r.group.as_deref().is_some_and(|g| !g.is_empty())
        || r.kind.as_deref().is_some_and(|k| k != "Secret")
    {
        return invalid(format!(
            "{}/{}: only core Secrets are read",
            r.group.as_deref().unwrap_or(""),
            r.kind.as_deref().unwrap_or("Secret")
        ));
    }
    let ns = r.namespace.clone().unwrap_or_else(|| gw_ns.to_string());
    if ns != gw_ns
        && !granted(
            inputs.reference_grants,
            "Gateway",
            gw_ns,
            "",
            "Secret",
            &ns,
            &r.name,
        )
    {
        return Err((
            "RefNotPermitted".into(),
            format!(
                "Secret {ns}/{}: no ReferenceGrant in {ns} lets Gateways of {gw_ns} use it",
                r.name
            ),
        ));
    }
    let secret = inputs
        .tls_secrets
        .iter()
        .find(|s| ns_of(&s.metadata) == ns && name_of(&s.metadata) == r.name);
    let Some(secret) = secret else {
        return invalid(format!("Secret {ns}/{} is not among tlsSecrets", r.name));
    };
    let data = secret.data.as_ref();
    let has = |k: &str| data.is_some_and(|d| d.get(k).is_some_and(|v| !v.0.is_empty()));
    if secret.type_.as_deref() != Some("kubernetes.io/tls") || !has("tls.crt") || !has("tls.key") {
        return invalid(format!(
            "Secret {ns}/{} is not a kubernetes.io/tls Secret with tls.crt and tls.key",
            r.name
        ));
    }
    Ok(SecretKey {
        namespace: ns,
        name: r.name.clone(),
    })
}

/// Whether a ReferenceGrant in `to_ns` lets `from_kind` objects of
/// `from_ns` reference the `to_kind` object `to_name` there.
fn granted(
    grants: &[ReferenceGrant],
    from_kind: &str,
    from_ns: &str,
    to_group: &str,
    to_kind: &str,
    to_ns: &str,
    to_name: &str,
) -> bool {
    grants.iter().any(|g| {
        ns_of(&g.metadata) == to_ns
            && g.spec
                .from
                .iter()
                .any(|f| f.group == GROUP && f.kind == from_kind && f.namespace == from_ns)
            && g.spec.to.iter().any(|t| {
                t.group == to_group
                    && t.kind == to_kind
                    && t.name.as_deref().is_none_or(|n| n == to_name)
            })
    })
}

/// Groups the usable listeners by (transport, port); marks the ones that
/// cannot share a port with an earlier one.
fn group_listeners(checked: &mut [Checked<'_>]) -> BTreeMap<(Transport, u16), Vec<usize>> {
    let mut slots: BTreeMap<(Transport, u16), Vec<usize>> = BTreeMap::new();
    for i in 0..checked.len() {
        let Some(protocol) = checked[i].protocol.filter(|_| checked[i].accepted.is_ok()) else {
            continue;
        };
        let transport = if protocol == ListenerProtocol::Udp {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let port = checked[i].spec.port as u16;
        let slot = slots.entry((transport, port)).or_default();
        let conflict = slot.iter().find_map(|&j| {
            let other = &checked[j];
            if other.protocol != Some(protocol) {
                Some(("ProtocolConflict", format!(
                    "listener {} already serves port {port} with {}",
                    other.spec.name, other.spec.protocol
                )))
            } else if !protocol.is_http() {
                Some(("HostnameConflict", format!(
                    "listener {} already serves port {port}: Octavia cannot tell {} connections apart by hostname",
                    other.spec.name, other.spec.protocol
                )))
            } else if other.spec.hostname == checked[i].spec.hostname {
                Some(("HostnameConflict", format!(
                    "listener {} already serves port {port} for the same hostname",
                    other.spec.name
                )))
            } else {
                None
            }
        });
        match conflict {
            Some((reason, message)) => checked[i].conflict = Some((reason.into(), message)),
            None => slot.push(i),
        }
    }
    slots.retain(|_, v| !v.is_empty());
    slots
}

/// Whether `parent` names this Gateway.
fn names_gateway(parent: &ParentReference, route_ns: &str, gw_ns: &str, gw_name: &str) -> bool {
    parent.group.as_deref().is_none_or(|g| g == GROUP)
        && parent.kind.as_deref().is_none_or(|k| k == "Gateway")
        && parent.namespace.as_deref().unwrap_or(route_ns) == gw_ns
        && parent.name == gw_name
}

/// Whether a listener's allowedRoutes.namespaces admits `route_ns`.
fn namespace_allowed(
    l: &crate::gateway::api::Listener,
    gw_ns: &str,
    route_ns: &str,
    namespaces: &[Namespace],
) -> bool {
    let from = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match from.and_then(|f| f.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Selector" => {
            let selector = from.and_then(|f| f.selector.as_ref());
            let labels = namespaces
                .iter()
                .find(|n| name_of(&n.metadata) == route_ns)
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default();
            selector.is_some_and(|s| selects(s, &labels))
        }
        _ => route_ns == gw_ns,
    }
}

/// A label selector's matchLabels and matchExpressions against `labels`.
fn selects(s: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = s.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// What a route's backendRefs resolve to: the members, and the first
/// reason one did not resolve.
struct Resolved {
    members: BTreeSet<Member>,
    problem: Option<(String, String)>,
}

/// A rule's backends: each a Service port in the route's namespace or a
/// granted one, its endpoints from the EndpointSlices, the backend's weight
/// spread over its endpoints (Octavia weights 1-256, 0 for weight 0).
fn resolve_backends(
    refs: &[BackendRef],
    route_kind: &str,
    route_ns: &str,
    protocol: ListenerProtocol,
    inputs: &Inputs<'_>,
    field: &str,
) -> Resolved {
    let mut problem = None;
    let mut per_backend: Vec<(u32, BTreeSet<Member>)> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let fail = |reason: &str, m: String| Some((reason.to_string(), format!("{at}: {m}")));
        if r.group.as_deref().is_some_and(|g| !g.is_empty())
            || r.kind.as_deref().is_some_and(|k| k != "Service")
        {
            problem = problem.or(fail(
                "InvalidKind",
                format!(
                    "{}/{} is not a backend svc-lbaas resolves (core Services only)",
                    r.group.as_deref().unwrap_or(""),
                    r.kind.as_deref().unwrap_or("")
                ),
            ));
            continue;
        }
        let ns = r.namespace.clone().unwrap_or_else(|| route_ns.to_string());
        if ns != route_ns
            && !granted(
                inputs.reference_grants,
                route_kind,
                route_ns,
                "",
                "Service",
                &ns,
                &r.name,
            )
        {
            problem = problem.or(fail(
                "RefNotPermitted",
                format!("Service {ns}/{}: no ReferenceGrant in {ns} lets {route_kind}s of {route_ns} use it", r.name),
            ));
            continue;
        }
        let Some(port) = r.port else {
            problem = problem.or(fail(
                "BackendNotFound",
                "a Service backend needs a port".into(),
            ));
            continue;
        };
        let Some(service) = inputs
            .services
            .iter()
            .find(|s| ns_of(&s.metadata) == ns && name_of(&s.metadata) == r.name)
        else {
            problem = problem.or(fail(
                "BackendNotFound",
                format!("Service {ns}/{} is not among services", r.name),
            ));
            continue;
        };
        let Some(sp) = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.iter().find(|p| p.port == port))
        else {
            problem = problem.or(fail(
                "BackendNotFound",
                format!("Service {ns}/{} has no port {port}", r.name),
            ));
            continue;
        };
        let target = match &sp.target_port {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                n.to_string()
            }
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => s.clone(),
            None => port.to_string(),
        };
        let slices: Vec<EndpointSlice> = inputs
            .endpoint_slices
            .iter()
            .filter(|s| {
                ns_of(&s.metadata) == ns
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        == Some(&r.name)
            })
            .cloned()
            .collect();
        let backends = Backends {
            endpoints: None,
            endpoint_slices: &slices,
        };
        let transport = if protocol == ListenerProtocol::Udp {
            ListenerProtocol::Udp
        } else {
            ListenerProtocol::Tcp
        };
        let members = match members_of_port(
            sp.name.as_deref().unwrap_or(""),
            &target,
            transport,
            inputs.family,
            backends,
            false,
        ) {
            Ok(m) => m,
            Err(e) => {
                problem = problem.or(fail("BackendNotFound", e.to_string()));
                continue;
            }
        };
        let members: BTreeSet<Member> = members
            .into_iter()
            .filter(|m| member_allowed(m.address, inputs.member_cidrs))
            .collect();
        let weight = r.weight.unwrap_or(1).clamp(0, 1_000_000) as u32;
        per_backend.push((weight, members));
    }
    Resolved {
        members: spread_weights(&per_backend),
        problem,
    }
}

/// Octavia member weights from backend weights: a backend's share split
/// evenly over its endpoints, scaled so the heaviest member weighs 256
/// (Octavia's most), never below 1 for a backend that has a share. An
/// endpoint two backends name gets both shares.
pub fn spread_weights(backends: &[(u32, BTreeSet<Member>)]) -> BTreeSet<Member> {
    let mut sum: BTreeMap<(IpAddr, u16), f64> = BTreeMap::new();
    for (w, members) in backends {
        for m in members {
            *sum.entry((m.address, m.protocol_port)).or_default() +=
                f64::from(*w) / members.len() as f64;
        }
    }
    let top = sum.values().copied().fold(0.0_f64, f64::max);
    sum.iter()
        .map(|(&(address, protocol_port), &share)| Member {
            address,
            protocol_port,
            weight: if share == 0.0 {
                0
            } else {
                ((share / top * 256.0).round() as u16).clamp(1, 256)
            },
        })
        .collect()
}

/// One route's attachment to the Gateway: per parentRef naming it, the
/// listeners (by index) it attaches to, or why none.
struct Attachment {
    parent: ParentReference,
    listeners: Vec<usize>,
    refused: Option<(String, String)>,
}

fn attach(
    route: &Route,
    gw_ns: &str,
    gw_name: &str,
    checked: &[Checked<'_>],
    namespaces: &[Namespace],
) -> Vec<Attachment> {
    let route_ns = ns_of(route.metadata());
    let mut out = Vec::new();
    for parent in route.parent_refs() {
        if !names_gateway(parent, &route_ns, gw_ns, gw_name) {
            continue;
        }
        let candidates: Vec<usize> = (0..checked.len())
            .filter(|&i| {
                parent
                    .section_name
                    .as_deref()
                    .is_none_or(|s| s == checked[i].spec.name)
                    && parent.port.is_none_or(|p| p == checked[i].spec.port)
            })
            .collect();
        let mut att = Attachment {
            parent: parent.clone(),
            listeners: Vec::new(),
            refused: None,
        };
        if candidates.is_empty() {
            att.refused = Some((
                "NoMatchingParent".into(),
                "no listener of the Gateway has this sectionName / port".into(),
            ));
            out.push(att);
            continue;
        }
        let mut why = ("NotAllowedByListeners", String::new());
        for i in candidates {
            let l = &checked[i];
            if !l.usable() {
                why.1 = format!("listener {} is not accepted or is conflicted", l.spec.name);
                continue;
            }
            if !l.kinds.iter().any(|k| k.kind == route.kind()) {
                why.1 = format!("listener {} does not allow {}s", l.spec.name, route.kind());
                continue;
            }
            if !namespace_allowed(l.spec, gw_ns, &route_ns, namespaces) {
                why.1 = format!(
                    "listener {} does not allow routes from namespace {route_ns}",
                    l.spec.name
                );
                continue;
            }
            let hostnames_matter = matches!(route, Route::Http(_) | Route::Tls(_));
            if hostnames_matter
                && intersect_hostnames(l.spec.hostname.as_deref(), route.hostnames()).is_none()
            {
                why = (
                    "NoMatchingListenerHostname",
                    format!(
                        "no hostname of the route is under listener {}'s",
                        l.spec.name
                    ),
                );
                continue;
            }
            att.listeners.push(i);
        }
        if att.listeners.is_empty() {
            att.refused = Some((why.0.into(), why.1));
        }
        out.push(att);
    }
    out
}

/// Translates one Gateway. `Err` only for input that is not Gateway API's
/// (the request is malformed); everything semantic is in the statuses.
pub fn translate(inputs: &Inputs<'_>) -> Design {
    let gw = inputs.gateway;
    let gw_ns = ns_of(&gw.metadata);
    let gw_name = name_of(&gw.metadata);
    let now = inputs.now;
    let mut checked: Vec<Checked<'_>> = gw
        .spec
        .listeners
        .iter()
        .map(|l| check_listener(l, &gw_ns, inputs))
        .collect();
    let slots = group_listeners(&mut checked);

    // Routes, oldest first (then namespace/name): the order of precedence
    // ties and of who keeps an L4 listener.
    let mut order: Vec<usize> = (0..inputs.routes.len()).collect();
    order.sort_by_key(|&i| {
        let m = inputs.routes[i].metadata();
        (
            m.creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            ns_of(m),
            name_of(m),
        )
    });
    let mut outcomes: Vec<Option<RouteOutcome>> = vec![None; inputs.routes.len()];
    let mut entries: Vec<Entry> = Vec::new();
    let mut pools: Vec<DesignPool> = Vec::new();
    let mut l4_routes: BTreeMap<(Transport, u16), (String, String)> = BTreeMap::new();
    let mut default_pools: BTreeMap<(Transport, u16), String> = BTreeMap::new();
    for &ri in &order {
        let route = &inputs.routes[ri];
        let meta = route.metadata();
        let route_ns = ns_of(meta);
        let route_name = name_of(meta);
        let who = format!("{}/{route_ns}/{route_name}", route.kind());
        let attachments = attach(route, &gw_ns, &gw_name, &checked, inputs.namespaces);
        if attachments.is_empty() {
            continue;
        }
        let refusal = compile::refusal(route);
        // What this route programs, to take back if any of its parents
        // refuses it: a refusal covers the whole route.
        let saved = (
            entries.len(),
            pools.len(),
            l4_routes.clone(),
            default_pools.clone(),
            checked.iter().map(|c| c.attached).collect::<Vec<_>>(),
        );
        let mut failed: Option<(String, String)> = None;
        let mut parents = Vec::new();
        for att in attachments {
            let mut conditions = Vec::new();
            let mut resolved: Result<(), (String, String)> = Ok(());
            let accepted = match (&att.refused, &refusal) {
                (Some(r), _) => Err(r.clone()),
                (None, Some(field)) => Err((
                    "UnsupportedValue".to_string(),
                    format!(
                        "{field}: Octavia cannot express it; no rule of this route is programmed"
                    ),
                )),
                (None, None) => {
                    match program(
                        route,
                        &att,
                        &who,
                        &checked,
                        &slots,
                        inputs,
                        &mut entries,
                        &mut pools,
                        &mut l4_routes,
                        &mut default_pools,
                    ) {
                        Ok(problem) => {
                            if let Some(p) = problem {
                                resolved = Err(p);
                            }
                            for &i in &att.listeners {
                                checked[i].attached += 1;
                            }
                            Ok(())
                        }
                        Err(e) => {
                            failed.get_or_insert(e.clone());
                            Err(e)
                        }
                    }
                }
            };
            conditions.push(match &accepted {
                Ok(()) => condition("Accepted", true, "Accepted", "attached", meta, now),
                Err((reason, m)) => condition("Accepted", false, reason, m.clone(), meta, now),
            });
            conditions.push(match &resolved {
                Ok(()) => condition(
                    "ResolvedRefs",
                    true,
                    "ResolvedRefs",
                    "every backendRef resolved",
                    meta,
                    now,
                ),
                Err((reason, m)) => condition("ResolvedRefs", false, reason, m.clone(), meta, now),
            });
            parents.push(RouteParentStatus {
                parent_ref: att.parent,
                controller_name: CONTROLLER_NAME.into(),
                conditions,
            });
        }
        if let Some((reason, message)) = failed {
            let (e, p, l4, defaults, attached) = saved;
            entries.truncate(e);
            pools.truncate(p);
            l4_routes = l4;
            default_pools = defaults;
            for (c, a) in checked.iter_mut().zip(attached) {
                c.attached = a;
            }
            // Every parent that had taken it says why it no longer does.
            for parent in &mut parents {
                if let Some(c) = parent
                    .conditions
                    .iter_mut()
                    .find(|c| c.kind == "Accepted" && c.status == "True")
                {
                    c.status = "False".into();
                    c.reason = reason.clone();
                    c.message = message.clone();
                }
            }
        }
        outcomes[ri] = Some(RouteOutcome {
            kind: route.kind().into(),
            namespace: route_ns,
            name: route_name,
            status: RouteStatus { parents },
        });
    }

    // Redirects that would run before a pool policy above them (HAProxy's
    // order) exclude it; those that cannot are refused with their route.
    let (policies, refused) = compile::order(entries.clone());
    let policies = if refused.is_empty() {
        policies
    } else {
        for (who, message) in &refused {
            for o in outcomes.iter_mut().flatten() {
                if format!("{}/{}/{}", o.kind, o.namespace, o.name) == *who {
                    for p in &mut o.status.parents {
                        if let Some(c) = p.conditions.iter_mut().find(|c| c.kind == "Accepted") {
                            c.status = "False".into();
                            c.reason = "UnsupportedValue".into();
                            c.message = message.clone();
                        }
                    }
                }
            }
        }
        let kept: Vec<Entry> = entries
            .into_iter()
            .filter(|e| !refused.iter().any(|(w, _)| *w == e.route))
            .collect();
        let kept_pools: BTreeSet<String> = kept
            .iter()
            .filter_map(|e| e.pool().map(str::to_string))
            .collect();
        pools.retain(|p| {
            kept_pools.contains(&p.name) || default_pools.values().any(|d| *d == p.name)
        });
        compile::order(kept).0
    };

    let mut listeners = Vec::new();
    for (&(transport, port), members) in &slots {
        let protocol = checked[members[0]]
            .protocol
            .unwrap_or(ListenerProtocol::Tcp);
        if !members.iter().any(|&i| checked[i].programmed()) {
            continue;
        }
        // The default certificate: a listener's without hostname first.
        let mut certificates: Vec<SecretKey> = Vec::new();
        let mut by_default: Vec<usize> = members.clone();
        by_default.sort_by_key(|&i| checked[i].spec.hostname.is_some());
        for &i in &by_default {
            for c in &checked[i].certificates {
                if !certificates.contains(c) {
                    certificates.push(c.clone());
                }
            }
        }
        listeners.push(DesignListener {
            name: names::fit(format!(
                "{}:{}:{port}",
                load_balancer_name(&gw_ns, &gw_name),
                protocol.as_str()
            )),
            protocol,
            port,
            gateway_listeners: members
                .iter()
                .map(|&i| checked[i].spec.name.clone())
                .collect(),
            certificates,
            default_pool: default_pools.get(&(transport, port)).cloned(),
            // Only an HTTP or TERMINATED_HTTPS listener takes L7 policies
            // (a UDP one may share the port number).
            policies: if protocol.is_http() {
                policies.get(&port).cloned().unwrap_or_default()
            } else {
                Vec::new()
            },
        });
    }

    let gateway_status = gateway_status(gw, &checked, now);
    Design {
        listeners,
        pools,
        gateway_status,
        routes: outcomes.into_iter().flatten().collect(),
    }
}

/// Programs one attachment of an accepted route: HTTP matches as entries
/// (ordered later), L4 routes as their listener's default pool. Answers the
/// backends' first problem (ResolvedRefs), or why the route is refused.
#[allow(clippy::too_many_arguments)]
fn program(
    route: &Route,
    att: &Attachment,
    who: &str,
    checked: &[Checked<'_>],
    slots: &BTreeMap<(Transport, u16), Vec<usize>>,
    inputs: &Inputs<'_>,
    entries: &mut Vec<Entry>,
    pools: &mut Vec<DesignPool>,
    l4_routes: &mut BTreeMap<(Transport, u16), (String, String)>,
    default_pools: &mut BTreeMap<(Transport, u16), String>,
) -> Result<Option<(String, String)>, (String, String)> {
    let meta = route.metadata();
    let route_ns = ns_of(meta);
    let gw_ns = ns_of(&inputs.gateway.metadata);
    let gw_name = name_of(&inputs.gateway.metadata);
    let lb = load_balancer_name(&gw_ns, &gw_name);
    let created = meta
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    match route {
        Route::Http(http) => {
            // Built aside and kept only if every rule compiles: a refusal
            // covers the whole route.
            let mut problem = None;
            let mut new_entries: Vec<Entry> = Vec::new();
            let mut new_pools: Vec<DesignPool> = Vec::new();
            for (ri, rule) in http.spec.rules.iter().enumerate() {
                let pool_name = names::fit(format!("{lb}:{who}:rule{ri}"));
                let resolved = resolve_backends(
                    &rule.backend_refs,
                    "HTTPRoute",
                    &route_ns,
                    ListenerProtocol::Http,
                    inputs,
                    &format!("spec.rules[{ri}].backendRefs"),
                );
                problem = problem.or(resolved.problem);
                let redirect = rule
                    .filters
                    .iter()
                    .find_map(|f| f.request_redirect.as_ref());
                if redirect.is_none()
                    && !pools.iter().chain(&new_pools).any(|p| p.name == pool_name)
                {
                    new_pools.push(DesignPool {
                        name: pool_name.clone(),
                        protocol: PoolProtocol::Http,
                        members: resolved.members,
                    });
                }
                for &li in &att.listeners {
                    let l = &checked[li];
                    let Some(hostnames) =
                        intersect_hostnames(l.spec.hostname.as_deref(), &http.spec.hostnames)
                    else {
                        continue;
                    };
                    let port = l.spec.port as u16;
                    // Listeners sharing this Octavia listener with a
                    // narrower hostname take their hosts' requests: this
                    // one's routes must not (Gateway API matches a request
                    // to the most specific listener first).
                    let narrower: Vec<String> = slots
                        .get(&(Transport::Tcp, port))
                        .into_iter()
                        .flatten()
                        .filter(|&&j| j != li)
                        .filter_map(|&j| checked[j].spec.hostname.clone())
                        .filter(|h| match l.spec.hostname.as_deref() {
                            None => true,
                            Some(own) => h != own && matching::covers(own, h),
                        })
                        .collect();
                    let hosts: Vec<Option<String>> = if hostnames.is_empty() {
                        vec![None]
                    } else {
                        hostnames.into_iter().map(Some).collect()
                    };
                    for host in hosts {
                        // A host a narrower listener covers is that one's.
                        if let Some(h) = &host
                            && narrower.iter().any(|n| matching::covers(n, h))
                        {
                            continue;
                        }
                        let exclude: Vec<String> = narrower
                            .iter()
                            .filter(|n| host.as_deref().is_none_or(|h| matching::covers(h, n)))
                            .cloned()
                            .collect();
                        let built = compile::entries(compile::Source {
                            exclude: &exclude,
                            route: who,
                            created: &created,
                            rule_index: ri,
                            rule,
                            host: host.as_deref(),
                            port,
                            listener: l.protocol.unwrap_or(ListenerProtocol::Http),
                            pool: &pool_name,
                        })?;
                        for e in built {
                            if !entries
                                .iter()
                                .chain(&new_entries)
                                .any(|x| x.port == e.port && x.key == e.key)
                            {
                                new_entries.push(e);
                            }
                        }
                    }
                }
            }
            entries.extend(new_entries);
            pools.extend(new_pools);
            Ok(problem)
        }
        Route::Tls(r) | Route::Tcp(r) | Route::Udp(r) => {
            if r.spec.rules.len() != 1 {
                return Err((
                    "UnsupportedValue".into(),
                    format!(
                        "spec.rules: a {} takes exactly one rule here (Octavia's listener has one default pool); it has {}",
                        route.kind(),
                        r.spec.rules.len()
                    ),
                ));
            }
            // Built aside and kept only if every listener takes it: a
            // refused route gets no listener at all.
            let mut problem = None;
            let mut taken: Vec<((Transport, u16), String, DesignPool)> = Vec::new();
            for &li in &att.listeners {
                let l = &checked[li];
                let protocol = l.protocol.unwrap_or(ListenerProtocol::Tcp);
                let transport = if protocol == ListenerProtocol::Udp {
                    Transport::Udp
                } else {
                    Transport::Tcp
                };
                let port = l.spec.port as u16;
                if !slots.contains_key(&(transport, port)) {
                    continue;
                }
                if let Some((holder, _)) = l4_routes.get(&(transport, port))
                    && holder != who
                {
                    return Err((
                        "UnsupportedValue".into(),
                        format!(
                            "listener {} already carries {holder}: an Octavia {} listener has one default pool",
                            l.spec.name,
                            protocol.as_str()
                        ),
                    ));
                }
                let resolved = resolve_backends(
                    &r.spec.rules[0].backend_refs,
                    route.kind(),
                    &route_ns,
                    protocol,
                    inputs,
                    "spec.rules[0].backendRefs",
                );
                problem = problem.or(resolved.problem);
                let pool = names::fit(format!("{lb}:{}:{port}", protocol.as_str()));
                let design = DesignPool {
                    name: pool.clone(),
                    protocol: if protocol == ListenerProtocol::Udp {
                        PoolProtocol::Udp
                    } else {
                        PoolProtocol::Tcp
                    },
                    members: resolved.members,
                };
                taken.push(((transport, port), pool, design));
            }
            for (slot, pool, design) in taken {
                l4_routes.insert(slot, (who.to_string(), pool.clone()));
                default_pools.insert(slot, pool.clone());
                if !pools.iter().any(|p| p.name == pool) {
                    pools.push(design);
                }
            }
            Ok(problem)
        }
    }
}

fn gateway_status(gw: &Gateway, checked: &[Checked<'_>], now: &str) -> GatewayStatus {
    let meta = &gw.metadata;
    let invalid = checked.iter().filter(|c| !c.programmed()).count();
    let accepted = if checked.is_empty() || invalid == checked.len() {
        condition(
            "Accepted",
            false,
            "ListenersNotValid",
            "no listener can be programmed",
            meta,
            now,
        )
    } else if invalid > 0 {
        condition(
            "Accepted",
            true,
            "ListenersNotValid",
            format!("{invalid} listener(s) cannot be programmed; the others are"),
            meta,
            now,
        )
    } else {
        condition(
            "Accepted",
            true,
            "Accepted",
            "every listener is valid",
            meta,
            now,
        )
    };
    let programmed = condition(
        "Programmed",
        false,
        "Pending",
        "the load balancer is not converged yet",
        meta,
        now,
    );
    let listeners = checked
        .iter()
        .map(|c| {
            let mut conditions = vec![match &c.accepted {
                Ok(()) => condition("Accepted", true, "Accepted", "accepted", meta, now),
                Err((r, m)) => condition("Accepted", false, r, m.clone(), meta, now),
            }];
            conditions.push(match &c.resolved {
                Ok(()) => condition(
                    "ResolvedRefs",
                    true,
                    "ResolvedRefs",
                    "references resolved",
                    meta,
                    now,
                ),
                Err((r, m)) => condition("ResolvedRefs", false, r, m.clone(), meta, now),
            });
            conditions.push(match &c.conflict {
                None => condition("Conflicted", false, "NoConflicts", "no conflict", meta, now),
                Some((r, m)) => condition("Conflicted", true, r, m.clone(), meta, now),
            });
            conditions.push(if c.programmed() {
                condition(
                    "Programmed",
                    false,
                    "Pending",
                    "the load balancer is not converged yet",
                    meta,
                    now,
                )
            } else {
                condition(
                    "Programmed",
                    false,
                    "Invalid",
                    "the listener is not valid",
                    meta,
                    now,
                )
            });
            ListenerStatus {
                name: c.spec.name.clone(),
                supported_kinds: c.kinds.clone(),
                attached_routes: c.attached,
                conditions,
            }
        })
        .collect();
    GatewayStatus {
        addresses: Vec::new(),
        conditions: vec![accepted, programmed],
        listeners,
    }
}
