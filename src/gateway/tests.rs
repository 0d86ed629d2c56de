//! The translation's tables: listeners, precedence, hostnames, prefixes,
//! weights, redirects, refusals, statuses, references; and the routing
//! check: for a grid of requests, what HAProxy does with the compiled
//! policies (REJECT, then redirects, then pools, each in position order) is
//! what Gateway API's precedence says, computed straight from the routes.

use super::api::*;
use super::design::*;
use super::matching::{self, MatchKey, PathMatch};
use super::translate::{Inputs, spread_weights, translate};
use crate::model::{IpFamily, Member};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const NOW: &str = "2026-12-07T00:00:00Z";

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("fixture")
}

fn gateway(listeners: Value) -> Gateway {
    from(json!({
        "metadata": {"name": "gw", "namespace": "infra", "generation": 3},
        "spec": {"gatewayClassName": "openstack", "listeners": listeners},
    }))
}

fn http_route(ns: &str, name: &str, created: &str, spec: Value) -> Route {
    let mut spec = spec;
    if spec.get("parentRefs").is_none() {
        spec["parentRefs"] = json!([{"name": "gw", "namespace": "infra"}]);
    }
    from(json!({
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "spec": spec,
    }))
}

fn service(ns: &str, name: &str, port: i32, target: i32) -> Service {
    from(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}]},
    }))
}

fn slice(ns: &str, service: &str, port: i32, addresses: &[&str]) -> EndpointSlice {
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"addresses": [a], "conditions": {"ready": true}}))
        .collect();
    from(json!({
        "metadata": {"name": format!("{service}-x"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
    }))
}

struct World {
    gateway: Gateway,
    routes: Vec<Route>,
    grants: Vec<ReferenceGrant>,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
    namespaces: Vec<Namespace>,
    secrets: Vec<Secret>,
}

impl World {
    fn new(gateway: Gateway) -> World {
        World {
            gateway,
            routes: Vec::new(),
            grants: Vec::new(),
            services: ["web", "api", "v1", "admin", "canary", "db", "dns", "tls"]
                .iter()
                .map(|n| service("apps", n, 80, 8080))
                .collect(),
            slices: vec![
                slice("apps", "web", 8080, &["10.0.0.1", "10.0.0.2"]),
                slice("apps", "api", 8080, &["10.0.1.1"]),
                slice("apps", "v1", 8080, &["10.0.2.1"]),
                slice("apps", "admin", 8080, &["10.0.3.1"]),
                slice("apps", "canary", 8080, &["10.0.4.1"]),
                slice("apps", "db", 8080, &["10.0.5.1"]),
                slice("apps", "dns", 8080, &["10.0.6.1"]),
                slice("apps", "tls", 8080, &["10.0.7.1"]),
            ],
            namespaces: Vec::new(),
            secrets: Vec::new(),
        }
    }

    fn design(&self) -> Design {
        translate(&Inputs {
            gateway: &self.gateway,
            routes: &self.routes,
            reference_grants: &self.grants,
            services: &self.services,
            endpoint_slices: &self.slices,
            namespaces: &self.namespaces,
            tls_secrets: &self.secrets,
            member_cidrs: None,
            family: IpFamily::IPv4,
            now: NOW,
        })
    }
}

fn backend(name: &str) -> Value {
    json!([{"name": name, "port": 80}])
}

fn condition<'a>(conditions: &'a [Condition], kind: &str) -> &'a Condition {
    conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {conditions:?}"))
}

fn route_condition(design: &Design, name: &str, kind: &str) -> (String, String, String) {
    let r = design
        .routes
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no route {name}"));
    let c = condition(&r.status.parents[0].conditions, kind);
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn listener_condition(design: &Design, name: &str, kind: &str) -> (String, String) {
    let l = design
        .gateway_status
        .listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name}"));
    let c = condition(&l.conditions, kind);
    (c.status.clone(), c.reason.clone())
}

// ---------------------------------------------------------------------------
// HAProxy and Gateway API, side by side.

#[derive(Debug, Clone)]
struct Request {
    host: String,
    path: String,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pool(String),
    Redirect(String, u16),
    /// No policy took it: Octavia's listener without a default pool, 503.
    Unrouted,
}

fn rule_holds(rule: &DesignRule, req: &Request) -> bool {
    let subject = match rule.kind {
        "HOST_NAME" => Some(req.host.to_ascii_lowercase()),
        "PATH" => Some(req.path.clone()),
        "HEADER" => req
            .headers
            .iter()
            .find(|(k, _)| {
                Some(k.to_ascii_lowercase()) == rule.key.as_ref().map(|k| k.to_ascii_lowercase())
            })
            .map(|(_, v)| v.clone()),
        other => panic!("rule type {other} not compiled here"),
    };
    let holds = subject.is_some_and(|s| match rule.compare_type {
        "EQUAL_TO" => s == rule.value,
        "STARTS_WITH" => s.starts_with(&rule.value),
        // HAProxy's `-m reg` searches; HOST_NAME is compared with `-i`.
        "REGEX" => {
            let pattern = if rule.kind == "HOST_NAME" {
                format!("(?i){}", rule.value)
            } else {
                rule.value.clone()
            };
            regex::Regex::new(&pattern)
                .expect("compiled rule")
                .is_match(&s)
        }
        other => panic!("compare type {other} not compiled here"),
    });
    holds != rule.invert
}

/// What Octavia's haproxy does: redirects first, then pool policies, each
/// in position order; a policy without rules emits nothing.
fn haproxy(policies: &[DesignPolicy], req: &Request, address: &str) -> Outcome {
    let holds =
        |p: &DesignPolicy| !p.rules.is_empty() && p.rules.iter().all(|r| rule_holds(r, req));
    for p in policies
        .iter()
        .filter(|p| !matches!(p.action, PolicyAction::RedirectToPool { .. }))
    {
        if holds(p) {
            return match &p.action {
                PolicyAction::RedirectToUrl { url, code } => {
                    Outcome::Redirect(url.render(address), *code)
                }
                PolicyAction::RedirectPrefix { prefix, code } => {
                    Outcome::Redirect(format!("{}{}", prefix.render(address), req.path), *code)
                }
                PolicyAction::RedirectToPool { .. } => unreachable!(),
            };
        }
    }
    for p in policies {
        if let PolicyAction::RedirectToPool { pool } = &p.action
            && holds(p)
        {
            return Outcome::Pool(pool.clone());
        }
    }
    Outcome::Unrouted
}

/// Gateway API's answer, from the routes themselves: every match of every
/// rule of the routes accepted on the listener that takes the request, the
/// most precedent wins.
fn gateway_api(
    world: &World,
    design: &Design,
    listener_hostname: Option<&str>,
    port: u16,
    req: &Request,
    address: &str,
) -> Outcome {
    let host = req
        .host
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut best: Option<(MatchKey, Outcome)> = None;
    for route in &world.routes {
        let Route::Http(http) = route else { continue };
        let accepted = design.routes.iter().any(|o| {
            o.name == http.metadata.name.clone().unwrap_or_default()
                && o.status.parents.iter().any(|p| {
                    p.conditions
                        .iter()
                        .any(|c| c.kind == "Accepted" && c.status == "True")
                })
        });
        if !accepted {
            continue;
        }
        let Some(hostnames) =
            matching::intersect_hostnames(listener_hostname, &http.spec.hostnames)
        else {
            continue;
        };
        let matched_host: Option<Option<String>> = if hostnames.is_empty() {
            Some(None)
        } else {
            let mut fits: Vec<&String> = hostnames
                .iter()
                .filter(|h| match h.strip_prefix("*.") {
                    Some(s) => host.ends_with(&format!(".{s}")),
                    None => **h == host,
                })
                .collect();
            // The most specific hostname the request matches.
            fits.sort_by_key(|h| (h.starts_with("*."), std::cmp::Reverse(h.len())));
            fits.first().map(|h| Some((*h).clone()))
        };
        let Some(matched_host) = matched_host else {
            continue;
        };
        let meta = &http.metadata;
        for (ri, rule) in http.spec.rules.iter().enumerate() {
            let default = [HttpRouteMatch::default()];
            let matches = if rule.matches.is_empty() {
                &default[..]
            } else {
                &rule.matches[..]
            };
            for (mi, m) in matches.iter().enumerate() {
                let kind = m
                    .path
                    .as_ref()
                    .and_then(|p| p.kind.clone())
                    .unwrap_or("PathPrefix".into());
                let value = m
                    .path
                    .as_ref()
                    .and_then(|p| p.value.clone())
                    .unwrap_or("/".into());
                let (path_ok, path) = match kind.as_str() {
                    "Exact" => (req.path == value, PathMatch::Exact(value.clone())),
                    "PathPrefix" => {
                        let p = value.trim_end_matches('/');
                        (
                            p.is_empty() || req.path == p || req.path.starts_with(&format!("{p}/")),
                            PathMatch::Prefix(value.clone()),
                        )
                    }
                    _ => (
                        regex::Regex::new(&value).unwrap().is_match(&req.path),
                        PathMatch::RegularExpression(value.clone()),
                    ),
                };
                let headers_ok = m.headers.iter().all(|h| {
                    req.headers.iter().any(|(k, v)| {
                        k.eq_ignore_ascii_case(&h.name)
                            && match h.kind.as_deref().unwrap_or("Exact") {
                                "Exact" => *v == h.value,
                                _ => regex::Regex::new(&h.value).unwrap().is_match(v),
                            }
                    })
                });
                if !(path_ok && headers_ok) {
                    continue;
                }
                let key = MatchKey {
                    hostname: matched_host.clone(),
                    path,
                    headers: m.headers.len(),
                    route_created: meta
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .unwrap_or_default(),
                    route: format!(
                        "HTTPRoute/{}/{}",
                        meta.namespace.clone().unwrap_or_default(),
                        meta.name.clone().unwrap_or_default()
                    ),
                    rule: ri,
                    matched: mi,
                };
                let outcome = match rule
                    .filters
                    .iter()
                    .find_map(|f| f.request_redirect.as_ref())
                {
                    None => {
                        let who = key.route.clone();
                        let pool = design
                            .pools
                            .iter()
                            .find(|p| p.name.ends_with(&format!(":{who}:rule{ri}")))
                            .map(|p| p.name.clone())
                            .unwrap_or_default();
                        Outcome::Pool(pool)
                    }
                    Some(r) => {
                        let own = if port == 443 { "https" } else { "http" };
                        let scheme = r.scheme.clone().unwrap_or(own.into());
                        let target_host = r.hostname.clone().unwrap_or_else(|| {
                            if matched_host.is_some() {
                                host.clone()
                            } else {
                                address.to_string()
                            }
                        });
                        let p = r.port.map(|p| p as u16).or(if r.scheme.is_some() {
                            None
                        } else {
                            Some(port)
                        });
                        let p = p.filter(|&p| {
                            !((scheme == "http" && p == 80) || (scheme == "https" && p == 443))
                        });
                        let port_text = p.map(|p| format!(":{p}")).unwrap_or_default();
                        let path = match &r.path {
                            Some(m) => m.replace_full_path.clone().unwrap_or_default(),
                            None => req.path.clone(),
                        };
                        Outcome::Redirect(
                            format!("{scheme}://{target_host}{port_text}{path}"),
                            r.status_code.unwrap_or(302) as u16,
                        )
                    }
                };
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, outcome));
                }
            }
        }
    }
    best.map(|(_, o)| o).unwrap_or(Outcome::Unrouted)
}

fn requests() -> Vec<Request> {
    let hosts = [
        "foo.example.com",
        "bar.example.com",
        "a.b.example.com",
        "other.org",
        "FOO.example.com:8080",
        "10.1.2.3",
    ];
    let paths = [
        "/",
        "/api",
        "/api/",
        "/api/v1",
        "/api/v1/x",
        "/apix",
        "/admin",
        "/x",
        "/old",
        "/old/page",
        "/static/a.css",
    ];
    let headers: [&[(&str, &str)]; 3] = [
        &[],
        &[("X-Env", "canary")],
        &[("x-env", "prod"), ("X-Debug", "1")],
    ];
    let mut out = Vec::new();
    for h in hosts {
        for p in paths {
            for hs in headers {
                out.push(Request {
                    host: h.to_string(),
                    path: p.to_string(),
                    headers: hs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                });
            }
        }
    }
    out
}

/// Every request of the grid routes alike through HAProxy's order and
/// through Gateway API's precedence; answers how many reached a backend or
/// a redirect (so that a check which routes nothing cannot pass).
fn routes_as_gateway_api_says(world: &World, listener_hostname: Option<&str>, port: u16) -> usize {
    let design = world.design();
    let address = "192.0.2.10";
    let policies = design
        .listeners
        .iter()
        .find(|l| l.port == port)
        .map(|l| l.policies.clone())
        .unwrap_or_default();
    let mut routed = 0;
    for req in requests() {
        let want = gateway_api(world, &design, listener_hostname, port, &req, address);
        let got = haproxy(&policies, &req, address);
        assert_eq!(got, want, "request {req:?}\npolicies: {policies:#?}");
        if want != Outcome::Unrouted {
            routed += 1;
        }
    }
    routed
}

fn http_world() -> World {
    let mut w = World::new(gateway(
        json!([{"name": "web", "port": 80, "protocol": "HTTP",
        "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    ));
    let t0 = "2026-01-01T00:00:00Z";
    let t1 = "2026-02-01T00:00:00Z";
    w.routes = vec![
        // Everything on example.com to web; /api (segments) to api; the
        // canary header on /api to canary.
        http_route(
            "apps",
            "site",
            t0,
            json!({
            "hostnames": ["*.example.com"],
            "rules": [
                {"backendRefs": backend("web")},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": backend("api")},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                              "headers": [{"name": "X-Env", "value": "canary"}]}], "backendRefs": backend("canary")},
                {"matches": [{"path": {"type": "Exact", "value": "/api/v1"}}], "backendRefs": backend("v1")},
            ]}),
        ),
        // A newer route for one host: its matches win on that host first.
        http_route(
            "apps",
            "foo",
            t1,
            json!({
            "hostnames": ["foo.example.com"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}], "backendRefs": backend("admin")},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
                 "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]},
            ]}),
        ),
        // Host-less: any host, a redirect of everything under / that must
        // not take what the routes above send to pools.
        http_route(
            "apps",
            "catch",
            t1,
            json!({
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "filters": [{"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/moved"}}}]},
                {"matches": [{"path": {"type": "RegularExpression", "value": "^/static/.*\\.css$"}}], "backendRefs": backend("web")},
            ]}),
        ),
    ];
    w
}

#[test]
fn http_policies_route_every_request_as_gateway_apis_precedence_says() {
    let w = http_world();
    let routed = routes_as_gateway_api_says(&w, None, 80);
    assert!(routed > 100, "only {routed} requests routed");
    let d = w.design();
    assert_eq!(d.listeners.len(), 1);
    let l = &d.listeners[0];
    assert_eq!(
        (l.protocol.as_str(), l.port, l.default_pool.clone()),
        ("HTTP", 80, None)
    );
    // The redirect of `catch` excludes the pool policies above it rather
    // than run first: it carries inverted rules.
    assert!(
        l.policies
            .iter()
            .any(|p| matches!(p.action, PolicyAction::RedirectToUrl { .. })
                && p.rules.iter().any(|r| r.invert)),
        "{:#?}",
        l.policies
    );
}

#[test]
fn the_same_routes_behind_a_wildcard_listener_route_alike() {
    let mut w = http_world();
    w.gateway = gateway(
        json!([{"name": "web", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
        "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    // `catch` keeps no host on a wildcard listener: its redirect is to
    // a fixed URL, so it is compiled per the listener's hostname.
    let routed = routes_as_gateway_api_says(&w, Some("*.example.com"), 80);
    assert!(routed > 50, "only {routed} requests routed");
}

#[test]
fn prefixes_are_segments_and_hosts_take_a_port() {
    let mut w = World::new(gateway(
        json!([{"name": "web", "port": 80, "protocol": "HTTP"}]),
    ));
    w.routes = vec![http_route(
        "infra",
        "r",
        "2026-01-01T00:00:00Z",
        json!({
        "hostnames": ["foo.example.com"],
        "rules": [{"matches": [{"path": {"value": "/foo/"}}, {"path": {"type": "Exact", "value": "/bar"}},
                               {"headers": [{"type": "RegularExpression", "name": "X-V", "value": "^v[0-9]+$"}]}],
                   "backendRefs": backend("web")}]}),
    )];
    w.services.push(service("infra", "web", 80, 8080));
    w.slices.push(slice("infra", "web", 8080, &["10.9.0.1"]));
    let d = w.design();
    let rules: Vec<Vec<(&str, &str, String)>> = d.listeners[0]
        .policies
        .iter()
        .map(|p| {
            p.rules
                .iter()
                .map(|r| (r.kind, r.compare_type, r.value.clone()))
                .collect()
        })
        .collect();
    let host = (
        "HOST_NAME",
        "REGEX",
        "^foo\\.example\\.com(:[0-9]+)?$".to_string(),
    );
    assert_eq!(
        rules,
        vec![
            vec![host.clone(), ("PATH", "EQUAL_TO", "/bar".into())],
            vec![host.clone(), ("PATH", "REGEX", "^/foo(/|$)".into())],
            vec![host.clone(), ("HEADER", "REGEX", "^v[0-9]+$".into())],
        ]
    );
}

#[test]
fn weights_spread_over_each_backends_endpoints() {
    let m = |a: &str, w: u16| Member {
        address: a.parse().unwrap(),
        protocol_port: 80,
        weight: w,
    };
    let set = |v: &[&str]| v.iter().map(|a| m(a, 1)).collect::<BTreeSet<_>>();
    // 90/10 over 3 and 1 endpoints: 30 each vs 10 -> 256, 256, 256, 85.
    let out = spread_weights(&[
        (90, set(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])),
        (10, set(&["10.0.1.1"])),
    ]);
    let w: Vec<u16> = out.iter().map(|m| m.weight).collect();
    assert_eq!(w, vec![256, 256, 256, 85]);
    // One share in a thousand still gets weight 1; weight 0 is 0.
    let out = spread_weights(&[
        (999, set(&["10.0.0.1"])),
        (1, set(&["10.0.1.1"])),
        (0, set(&["10.0.2.1"])),
    ]);
    assert_eq!(
        out.iter().map(|m| m.weight).collect::<Vec<_>>(),
        vec![256, 1, 0]
    );
    // An endpoint behind two backends gets both shares.
    let out = spread_weights(&[(1, set(&["10.0.0.1", "10.0.0.2"])), (1, set(&["10.0.0.2"]))]);
    assert_eq!(
        out.iter().map(|m| m.weight).collect::<Vec<_>>(),
        vec![85, 256]
    );
    assert!(spread_weights(&[]).is_empty());
}

#[test]
fn a_rule_without_valid_backends_keeps_its_place_with_an_empty_pool() {
    let mut w = World::new(gateway(
        json!([{"name": "web", "port": 80, "protocol": "HTTP"}]),
    ));
    w.routes = vec![http_route(
        "infra",
        "r",
        "2026-01-01T00:00:00Z",
        json!({"rules": [
            {"matches": [{"path": {"value": "/a"}}], "backendRefs": [{"name": "missing", "port": 80}]},
            {"backendRefs": [{"name": "web", "port": 80}]},
        ]}),
    )];
    w.services.push(service("infra", "web", 80, 8080));
    w.slices.push(slice("infra", "web", 8080, &["10.9.0.1"]));
    let d = w.design();
    assert_eq!(
        d.listeners[0].policies.len(),
        2,
        "the /a policy stays, before /"
    );
    let first = match &d.listeners[0].policies[0].action {
        PolicyAction::RedirectToPool { pool } => pool.clone(),
        other => panic!("{other:?}"),
    };
    assert!(d.pool(&first).unwrap().members.is_empty());
    assert_eq!(route_condition(&d, "r", "Accepted").0, "True");
    let (status, reason, message) = route_condition(&d, "r", "ResolvedRefs");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "BackendNotFound")
    );
    assert!(
        message.contains("spec.rules[0].backendRefs[0]"),
        "{message}"
    );
    // Counted as attached even so.
    assert_eq!(d.gateway_status.listeners[0].attached_routes, 1);
}

#[test]
fn what_octavia_cannot_express_refuses_the_whole_route_by_field() {
    let cases = [
        (
            json!({"matches": [{"queryParams": [{"name": "a", "value": "b"}]}]}),
            "spec.rules[1].matches[0].queryParams",
        ),
        (
            json!({"matches": [{"method": "GET"}]}),
            "spec.rules[1].matches[0].method",
        ),
        (
            json!({"filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]}),
            "spec.rules[1].filters[0].type: URLRewrite",
        ),
        (
            json!({"filters": [{"type": "RequestHeaderModifier"}]}),
            "spec.rules[1].filters[0].type: RequestHeaderModifier",
        ),
        (
            json!({"filters": [{"type": "RequestMirror"}]}),
            "spec.rules[1].filters[0].type: RequestMirror",
        ),
        (
            json!({"filters": [{"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}}]}),
            "spec.rules[1].filters[0].requestRedirect.path.type: ReplacePrefixMatch",
        ),
        (
            json!({"timeouts": {"request": "10s"}}),
            "spec.rules[1].timeouts",
        ),
        (
            json!({"matches": [{"headers": [{"name": "X-A", "value": "two words"}]}]}),
            "spec.rules[1].matches[0].headers[0].value",
        ),
    ];
    for (rule, field) in cases {
        let mut w = World::new(gateway(
            json!([{"name": "web", "port": 80, "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]),
        ));
        let mut rule = rule.clone();
        if rule
            .get("filters")
            .is_none_or(|f| f[0]["type"] != "RequestRedirect")
        {
            rule["backendRefs"] = backend("web");
        }
        w.routes = vec![
            http_route(
                "apps",
                "bad",
                "2026-01-01T00:00:00Z",
                json!({"rules": [{"backendRefs": backend("api")}, rule]}),
            ),
            http_route(
                "apps",
                "good",
                "2026-01-02T00:00:00Z",
                json!({"hostnames": ["good.example"], "rules": [{"backendRefs": backend("web")}]}),
            ),
        ];
        let d = w.design();
        let (status, reason, message) = route_condition(&d, "bad", "Accepted");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "UnsupportedValue"),
            "{field}"
        );
        assert!(message.starts_with(field), "{message} names {field}");
        assert_eq!(route_condition(&d, "good", "Accepted").0, "True");
        // None of the refused route's rules is programmed; the other is.
        let sources: Vec<&str> = d.listeners[0]
            .policies
            .iter()
            .map(|p| p.source.as_str())
            .collect();
        assert!(
            sources
                .iter()
                .all(|s| s.starts_with("HTTPRoute/apps/good:")),
            "{sources:?}"
        );
        assert_eq!(sources.len(), 1);
        assert_eq!(d.gateway_status.listeners[0].attached_routes, 1);
    }
}

#[test]
fn a_redirect_keeping_the_host_of_a_wildcard_is_refused_and_one_per_host_otherwise() {
    let mut w = World::new(gateway(
        json!([{"name": "web", "port": 8080, "protocol": "HTTP"}]),
    ));
    w.routes = vec![http_route(
        "infra",
        "r",
        "2026-01-01T00:00:00Z",
        json!({
        "hostnames": ["a.example", "b.example"],
        "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}]}]}),
    )];
    let d = w.design();
    let targets: Vec<String> = d.listeners[0]
        .policies
        .iter()
        .map(|p| match &p.action {
            PolicyAction::RedirectPrefix { prefix, code: 301 } => prefix.render("192.0.2.1"),
            other => panic!("{other:?}"),
        })
        .collect();
    // The listener's port is kept when the scheme is not changed.
    assert_eq!(
        targets,
        vec!["http://a.example:8080", "http://b.example:8080"]
    );

    w.routes = vec![http_route(
        "infra",
        "r",
        "2026-01-01T00:00:00Z",
        json!({
        "hostnames": ["*.example"],
        "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]}]}),
    )];
    let d = w.design();
    let (status, reason, message) = route_condition(&d, "r", "Accepted");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "UnsupportedValue")
    );
    assert!(
        message.contains("requestRedirect.hostname") && message.contains("*.example"),
        "{message}"
    );
    assert!(d.listeners.iter().all(|l| l.policies.is_empty()));
}

#[test]
fn redirects_that_cannot_exclude_what_is_above_them_are_refused() {
    let mut w = World::new(gateway(
        json!([{"name": "web", "port": 80, "protocol": "HTTP",
        "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    ));
    // Five pool matches of three rules each above a catch-all redirect:
    // excluding them all would take 3^5 copies of the redirect.
    let matches: Vec<Value> = (0..5)
        .map(|i| json!({"path": {"type": "Exact", "value": format!("/p{i}")},
                        "headers": [{"name": format!("X-A{i}"), "value": "1"}, {"name": format!("X-B{i}"), "value": "2"}]}))
        .collect();
    w.routes = vec![
        http_route(
            "apps",
            "pools",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"matches": matches, "backendRefs": backend("web")}]}),
        ),
        http_route(
            "apps",
            "redirect",
            "2026-01-02T00:00:00Z",
            json!({"rules": [
            {"filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "new.example"}}]}]}),
        ),
    ];
    let d = w.design();
    let (status, reason, message) = route_condition(&d, "redirect", "Accepted");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "UnsupportedValue"),
        "{message}"
    );
    assert!(
        message.contains("HAProxy runs redirects before pool policies"),
        "{message}"
    );
    assert_eq!(route_condition(&d, "pools", "Accepted").0, "True");
    assert_eq!(d.listeners[0].policies.len(), 5);
    // With the redirect refused, HAProxy and Gateway API still agree.
    routes_as_gateway_api_says(&w, None, 80);
}

#[test]
fn listeners_are_checked_grouped_by_port_and_counted() {
    let mut w = World::new(gateway(json!([
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https-a", "port": 443, "protocol": "HTTPS", "hostname": "a.example",
         "tls": {"certificateRefs": [{"name": "a-cert"}]}},
        {"name": "https-any", "port": 443, "protocol": "HTTPS",
         "tls": {"certificateRefs": [{"name": "default-cert"}]}},
        {"name": "clash", "port": 80, "protocol": "TCP"},
        {"name": "db", "port": 5432, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "pass", "port": 8443, "protocol": "TLS", "tls": {"mode": "Passthrough"}},
        {"name": "sctp", "port": 9, "protocol": "SCTP"},
        {"name": "missing-cert", "port": 9443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "nope"}]}},
        {"name": "bad-kinds", "port": 81, "protocol": "HTTP", "allowedRoutes": {"kinds": [{"kind": "TCPRoute"}]}},
    ])));
    let tls = |name: &str| -> Secret {
        from(
            json!({"metadata": {"name": name, "namespace": "infra"}, "type": "kubernetes.io/tls",
                    "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}}),
        )
    };
    w.secrets = vec![tls("a-cert"), tls("default-cert")];
    let l4 = |kind: &str, name: &str, section: &str, svc: &str| -> Route {
        from(
            json!({"kind": kind, "metadata": {"name": name, "namespace": "infra"},
            "spec": {"parentRefs": [{"name": "gw", "sectionName": section}],
                     "rules": [{"backendRefs": [{"name": svc, "namespace": "infra", "port": 80}]}]}}),
        )
    };
    for s in ["db", "dns", "tls", "web"] {
        w.services.push(service("infra", s, 80, 8080));
    }
    w.slices.push(slice("infra", "db", 8080, &["10.8.0.1"]));
    w.routes = vec![
        l4("TCPRoute", "db", "db", "db"),
        l4("TCPRoute", "db2", "db", "db"),
        l4("UDPRoute", "dns", "dns", "dns"),
        l4("TLSRoute", "pass", "pass", "tls"),
        http_route(
            "infra",
            "web",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"backendRefs": backend("web")}]}),
        ),
        http_route(
            "infra",
            "ghost",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": [{"name": "gw", "sectionName": "nope"}], "rules": []}),
        ),
    ];
    let d = w.design();
    let shape: Vec<(&str, u16, usize, bool, Vec<String>)> = d
        .listeners
        .iter()
        .map(|l| {
            (
                l.protocol.as_str(),
                l.port,
                l.policies.len(),
                l.default_pool.is_some(),
                l.certificates.iter().map(|c| c.name.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("TCP", 80, 0, false, vec![]).clone(),
            ("HTTP", 80, 1, false, vec![]),
            (
                "TERMINATED_HTTPS",
                443,
                2,
                false,
                vec!["default-cert".into(), "a-cert".into()]
            ),
            ("TCP", 5432, 0, true, vec![]),
            ("TCP", 8443, 0, true, vec![]),
            ("UDP", 53, 0, true, vec![]),
        ]
        .into_iter()
        .filter(|s| s.1 != 80 || s.0 == "HTTP")
        .collect::<Vec<_>>()
    );
    assert_eq!(
        listener_condition(&d, "clash", "Conflicted"),
        ("True".into(), "ProtocolConflict".into())
    );
    assert_eq!(
        listener_condition(&d, "sctp", "Accepted"),
        ("False".into(), "UnsupportedProtocol".into())
    );
    assert_eq!(
        listener_condition(&d, "missing-cert", "ResolvedRefs"),
        ("False".into(), "InvalidCertificateRef".into())
    );
    assert_eq!(
        listener_condition(&d, "bad-kinds", "ResolvedRefs"),
        ("False".into(), "InvalidRouteKinds".into())
    );
    assert_eq!(listener_condition(&d, "db", "Programmed").1, "Pending");
    let gw_accepted = condition(&d.gateway_status.conditions, "Accepted");
    assert_eq!(
        (gw_accepted.status.as_str(), gw_accepted.reason.as_str()),
        ("True", "ListenersNotValid")
    );
    assert_eq!(gw_accepted.observed_generation, Some(3));
    let attached: BTreeMap<&str, i32> = d
        .gateway_status
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.attached_routes))
        .collect();
    assert_eq!(attached["db"], 1);
    assert_eq!(attached["dns"], 1);
    assert_eq!(attached["pass"], 1);
    assert_eq!(attached["http"], 1);
    assert_eq!(attached["https-a"], 1);
    assert_eq!(attached["https-any"], 1);
    assert_eq!(attached["clash"], 0);
    let (status, reason, message) = route_condition(&d, "db2", "Accepted");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "UnsupportedValue")
    );
    assert!(
        message.contains("already carries TCPRoute/infra/db"),
        "{message}"
    );
    assert_eq!(
        route_condition(&d, "ghost", "Accepted").1,
        "NoMatchingParent"
    );
    let db_pool = d
        .listeners
        .iter()
        .find(|l| l.port == 5432)
        .and_then(|l| l.default_pool.clone())
        .unwrap();
    assert_eq!(
        d.pool(&db_pool)
            .unwrap()
            .members
            .iter()
            .map(|m| m.address.to_string())
            .collect::<Vec<_>>(),
        vec!["10.8.0.1"]
    );
    let kinds: Vec<&str> = d
        .gateway_status
        .listeners
        .iter()
        .find(|l| l.name == "pass")
        .unwrap()
        .supported_kinds
        .iter()
        .map(|k| k.kind.as_str())
        .collect();
    assert_eq!(kinds, vec!["TLSRoute"]);
}

#[test]
fn routes_attach_only_where_listeners_allow_them() {
    let mut w = World::new(gateway(json!([
        {"name": "same", "port": 80, "protocol": "HTTP"},
        {"name": "selected", "port": 81, "protocol": "HTTP",
         "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"gateway": "yes"}}}}},
        {"name": "named", "port": 82, "protocol": "HTTP", "hostname": "only.example",
         "allowedRoutes": {"namespaces": {"from": "All"}}},
    ])));
    w.namespaces = vec![
        from(json!({"metadata": {"name": "apps", "labels": {"gateway": "yes"}}})),
        from(json!({"metadata": {"name": "other"}})),
    ];
    let to = |section: &str| json!([{"name": "gw", "namespace": "infra", "sectionName": section}]);
    w.routes = vec![
        http_route(
            "apps",
            "to-same",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": to("same"), "rules": [{"backendRefs": backend("web")}]}),
        ),
        http_route(
            "apps",
            "to-selected",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": to("selected"), "rules": [{"backendRefs": backend("web")}]}),
        ),
        http_route(
            "other",
            "other-selected",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": to("selected"), "rules": []}),
        ),
        http_route(
            "apps",
            "wrong-host",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": to("named"), "hostnames": ["else.example"], "rules": []}),
        ),
        http_route(
            "apps",
            "elsewhere",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": [{"name": "another-gateway"}], "rules": []}),
        ),
    ];
    let d = w.design();
    assert_eq!(
        route_condition(&d, "to-same", "Accepted").1,
        "NotAllowedByListeners"
    );
    assert_eq!(route_condition(&d, "to-selected", "Accepted").0, "True");
    assert_eq!(
        route_condition(&d, "other-selected", "Accepted").1,
        "NotAllowedByListeners"
    );
    assert_eq!(
        route_condition(&d, "wrong-host", "Accepted").1,
        "NoMatchingListenerHostname"
    );
    assert!(
        d.routes.iter().all(|r| r.name != "elsewhere"),
        "a route of another Gateway gets no status here"
    );
    for r in &d.routes {
        assert_eq!(r.status.parents[0].controller_name, CONTROLLER_NAME);
    }
}

#[test]
fn cross_namespace_backends_and_certificates_need_a_reference_grant() {
    let mut w = World::new(gateway(json!([
        {"name": "https", "port": 443, "protocol": "HTTPS",
         "tls": {"certificateRefs": [{"name": "cert", "namespace": "certs"}]},
         "allowedRoutes": {"namespaces": {"from": "All"}}},
    ])));
    w.secrets = vec![from(
        json!({"metadata": {"name": "cert", "namespace": "certs"}, "type": "kubernetes.io/tls",
                                  "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}}),
    )];
    w.routes = vec![http_route(
        "evil",
        "steal",
        "2026-01-01T00:00:00Z",
        json!({
        "rules": [{"backendRefs": [{"name": "api", "namespace": "apps", "port": 80}]}]}),
    )];
    let d = w.design();
    assert_eq!(
        listener_condition(&d, "https", "ResolvedRefs"),
        ("False".into(), "RefNotPermitted".into())
    );
    assert!(
        d.listeners.is_empty(),
        "a listener without its certificate is not programmed"
    );
    let (status, reason, _) = route_condition(&d, "steal", "ResolvedRefs");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RefNotPermitted")
    );
    assert!(
        d.pools.iter().all(|p| p.members.is_empty()),
        "no member of another namespace without a grant"
    );

    // Grants: the Secret's namespace lets Gateways of infra in; apps lets
    // HTTPRoutes of evil reach Service api only.
    w.grants = vec![
        from(
            json!({"metadata": {"name": "g1", "namespace": "certs"}, "spec": {
            "from": [{"group": GROUP, "kind": "Gateway", "namespace": "infra"}],
            "to": [{"group": "", "kind": "Secret"}]}}),
        ),
        from(
            json!({"metadata": {"name": "g2", "namespace": "apps"}, "spec": {
            "from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": "evil"}],
            "to": [{"group": "", "kind": "Service", "name": "api"}]}}),
        ),
    ];
    let d = w.design();
    assert_eq!(listener_condition(&d, "https", "ResolvedRefs").0, "True");
    assert_eq!(
        d.listeners[0].certificates,
        vec![SecretKey {
            namespace: "certs".into(),
            name: "cert".into()
        }]
    );
    assert_eq!(route_condition(&d, "steal", "ResolvedRefs").0, "True");
    assert_eq!(
        d.pools[0]
            .members
            .iter()
            .map(|m| m.address.to_string())
            .collect::<Vec<_>>(),
        vec!["10.0.1.1"]
    );
    // The grant names Service api: another Service of apps stays closed.
    w.routes = vec![http_route(
        "evil",
        "steal",
        "2026-01-01T00:00:00Z",
        json!({
        "rules": [{"backendRefs": [{"name": "admin", "namespace": "apps", "port": 80}]}]}),
    )];
    assert_eq!(
        route_condition(&w.design(), "steal", "ResolvedRefs").1,
        "RefNotPermitted"
    );
    // A grant in the wrong namespace (the route's own) lets nothing in.
    w.grants = vec![from(
        json!({"metadata": {"name": "g3", "namespace": "evil"}, "spec": {
        "from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": "evil"}],
        "to": [{"group": "", "kind": "Service"}]}}),
    )];
    assert_eq!(
        route_condition(&w.design(), "steal", "ResolvedRefs").1,
        "RefNotPermitted"
    );
}

#[test]
fn names_never_collide_with_a_services() {
    let name = super::translate::load_balancer_name("prod", "web");
    assert_eq!(name, "gateway:prod/web");
    // A Service's load balancer is `namespace/name`, a namespace has no `:`.
    assert!(!crate::model::is_dns_label("gateway:prod"));
    let long = super::translate::load_balancer_name(&"n".repeat(63), &"g".repeat(253));
    assert!(long.len() <= 255);
    let tags = super::translate::owner_tags("c1", "prod", "web");
    assert!(
        tags.iter().any(|t| t == "svc-lbaas-gateway:prod_web"),
        "{tags:?}"
    );
}

#[test]
fn a_narrower_listener_keeps_its_hosts_requests_from_the_broader_ones_routes() {
    // admin.example.com for infra's routes only; any host for everyone.
    let mut w = World::new(gateway(json!([
        {"name": "admin", "port": 80, "protocol": "HTTP", "hostname": "admin.example.com"},
        {"name": "any", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}},
        {"name": "dns", "port": 80, "protocol": "UDP", "allowedRoutes": {"namespaces": {"from": "All"}}},
    ])));
    w.services.push(service("infra", "console", 80, 8080));
    w.slices
        .push(slice("infra", "console", 8080, &["10.9.0.1"]));
    let to = |section: &str| json!([{"name": "gw", "namespace": "infra", "sectionName": section}]);
    w.routes = vec![
        http_route(
            "infra",
            "console",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": to("admin"),
            "rules": [{"backendRefs": backend("console")}]}),
        ),
        // Another namespace claims the admin host on the catch-all listener.
        http_route(
            "apps",
            "evil",
            "2025-01-01T00:00:00Z",
            json!({"parentRefs": to("any"),
            "hostnames": ["admin.example.com"],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/login"}}], "backendRefs": backend("api")}]}),
        ),
        http_route(
            "apps",
            "all",
            "2026-01-01T00:00:00Z",
            json!({"parentRefs": to("any"),
            "rules": [{"backendRefs": backend("web")}]}),
        ),
        from(
            json!({"kind": "UDPRoute", "metadata": {"name": "dns", "namespace": "apps"},
            "spec": {"parentRefs": to("dns"), "rules": [{"backendRefs": [{"name": "dns", "port": 80}]}]}}),
        ),
    ];
    let d = w.design();
    let http = d
        .listeners
        .iter()
        .find(|l| l.protocol.as_str() == "HTTP")
        .expect("HTTP");
    let udp = d
        .listeners
        .iter()
        .find(|l| l.protocol.as_str() == "UDP")
        .expect("UDP on the same port");
    assert!(
        udp.policies.is_empty(),
        "a UDP listener takes no L7 policy: {udp:#?}"
    );
    assert!(udp.default_pool.is_some());
    let req = |host: &str, path: &str| Request {
        host: host.into(),
        path: path.into(),
        headers: vec![],
    };
    let pool_of = |r: Request| match haproxy(&http.policies, &r, "192.0.2.1") {
        Outcome::Pool(p) => p,
        other => panic!("{r:?}: {other:?}"),
    };
    for path in ["/login", "/", "/x"] {
        assert!(
            pool_of(req("admin.example.com", path)).ends_with("HTTPRoute/infra/console:rule0"),
            "{path}"
        );
        assert!(
            pool_of(req("ADMIN.example.com:8080", path)).ends_with("HTTPRoute/infra/console:rule0"),
            "{path}"
        );
    }
    assert!(pool_of(req("shop.example.com", "/login")).ends_with("HTTPRoute/apps/all:rule0"));
    assert!(pool_of(req("10.1.2.3", "/")).ends_with("HTTPRoute/apps/all:rule0"));
    assert!(
        http.policies
            .iter()
            .all(|p| !p.source.starts_with("HTTPRoute/apps/evil")),
        "the claim on the admin host programs nothing: {:#?}",
        http.policies
    );
}

#[test]
fn a_route_refused_on_one_l4_listener_takes_none() {
    let mut w = World::new(gateway(json!([
        {"name": "a", "port": 1000, "protocol": "TCP"},
        {"name": "b", "port": 2000, "protocol": "TCP"},
    ])));
    w.services.push(service("infra", "db", 80, 8080));
    let tcp = |name: &str, created: &str, sections: &[&str]| -> Route {
        let parents: Vec<Value> = sections
            .iter()
            .map(|s| json!({"name": "gw", "sectionName": s}))
            .collect();
        from(
            json!({"kind": "TCPRoute", "metadata": {"name": name, "namespace": "infra", "creationTimestamp": created},
            "spec": {"parentRefs": parents, "rules": [{"backendRefs": [{"name": "db", "port": 80}]}]}}),
        )
    };
    // `old` holds port 2000; `both` wants 1000 and 2000: refused, on 1000 too.
    w.routes = vec![
        tcp("old", "2026-01-01T00:00:00Z", &["b"]),
        tcp("both", "2026-02-01T00:00:00Z", &["a", "b"]),
    ];
    let d = w.design();
    let on = |port: u16| {
        d.listeners
            .iter()
            .find(|l| l.port == port)
            .and_then(|l| l.default_pool.clone())
    };
    assert_eq!(on(1000), None, "{:#?}", d.listeners);
    assert!(on(2000).is_some());
    let both = d.routes.iter().find(|r| r.name == "both").unwrap();
    let accepted = both
        .status
        .parents
        .iter()
        .map(|p| p.conditions[0].status.as_str())
        .collect::<Vec<_>>();
    assert!(accepted.contains(&"False"), "{both:?}");
}
