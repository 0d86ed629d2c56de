//! HTTPRoute matches -> Octavia L7 policies, in Gateway API's precedence,
//! correct under HAProxy's own order.
//!
//! Each match of each rule, on each hostname the route serves on a
//! listener, is one policy whose rules are ANDed (Octavia's only way).
//! Their positions follow `matching::MatchKey`. HAProxy, though, runs every
//! redirect before any pool policy whatever their positions, so a redirect
//! below a pool policy that may take the same request would win wrongly:
//! the redirect is given the negation of that pool policy's rules (one
//! inverted rule; for several rules, one copy of the redirect each), or
//! dropped when the pool policy covers it entirely. Where that would take
//! more than `MAX_SPLIT` copies or 50 rules, the route is refused.

use std::collections::BTreeMap;

use crate::gateway::api::{HttpRouteRule, Route};
use crate::gateway::design::{DesignPolicy, DesignRule, PolicyAction, RedirectTarget};
use crate::gateway::matching::{self, MatchKey, PathMatch, host_regex, prefix_regex};
use crate::model::ListenerProtocol;

/// The most copies one redirect may become to exclude the pool policies
/// above it.
pub const MAX_SPLIT: usize = 16;
/// Octavia's `MAX_L7RULES_PER_L7POLICY`.
pub const MAX_RULES: usize = 50;

/// The first field of a route Octavia cannot express, as a path into it.
pub fn refusal(route: &Route) -> Option<String> {
    let Route::Http(http) = route else {
        return None;
    };
    for (ri, rule) in http.spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{ri}]");
        for (what, present) in [
            ("timeouts", rule.timeouts.is_some()),
            ("sessionPersistence", rule.session_persistence.is_some()),
            ("retry", rule.retry.is_some()),
        ] {
            if present {
                return Some(format!("{at}.{what}"));
            }
        }
        for (mi, m) in rule.matches.iter().enumerate() {
            if !m.query_params.is_empty() {
                return Some(format!("{at}.matches[{mi}].queryParams"));
            }
            if m.method.is_some() {
                return Some(format!("{at}.matches[{mi}].method"));
            }
        }
        let mut redirects = 0;
        for (fi, f) in rule.filters.iter().enumerate() {
            if f.kind != "RequestRedirect" {
                return Some(format!("{at}.filters[{fi}].type: {}", f.kind));
            }
            redirects += 1;
            let Some(r) = &f.request_redirect else {
                return Some(format!("{at}.filters[{fi}].requestRedirect"));
            };
            if let Some(p) = &r.path
                && p.kind != "ReplaceFullPath"
            {
                return Some(format!(
                    "{at}.filters[{fi}].requestRedirect.path.type: {}",
                    p.kind
                ));
            }
        }
        if redirects > 1 {
            return Some(format!("{at}.filters: more than one RequestRedirect"));
        }
        if redirects == 1 && !rule.backend_refs.is_empty() {
            return Some(format!("{at}.backendRefs: beside a RequestRedirect"));
        }
        for (bi, b) in rule.backend_refs.iter().enumerate() {
            if !b.filters.is_empty() {
                return Some(format!("{at}.backendRefs[{bi}].filters"));
            }
        }
    }
    None
}

/// What the overlap test reads of a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub host: Option<String>,
    pub path: PathMatch,
    /// Lowercased name, exact?, value.
    pub headers: Vec<(String, bool, String)>,
}

/// One match on one hostname of one listener port, before ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `Kind/namespace/name` of its route.
    pub route: String,
    pub port: u16,
    pub key: MatchKey,
    pub rules: Vec<DesignRule>,
    pub action: PolicyAction,
    pub shape: Shape,
    pub source: String,
}

impl Entry {
    pub fn pool(&self) -> Option<&str> {
        match &self.action {
            PolicyAction::RedirectToPool { pool } => Some(pool),
            _ => None,
        }
    }
}

/// One rule of a route on one hostname of one listener.
pub struct Source<'a> {
    pub route: &'a str,
    pub created: &'a str,
    pub rule_index: usize,
    pub rule: &'a HttpRouteRule,
    pub host: Option<&'a str>,
    /// Hostnames a narrower listener on the port takes: excluded.
    pub exclude: &'a [String],
    pub port: u16,
    pub listener: ListenerProtocol,
    pub pool: &'a str,
}

fn unsupported(field: String, why: &str) -> (String, String) {
    (
        "UnsupportedValue".into(),
        format!("{field}: {why}; no rule of this route is programmed"),
    )
}

/// A value Octavia compares as it is (not a regular expression): printable
/// ASCII without a space.
fn plain_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())
}

/// A regular expression Octavia takes (it compiles them with Python's
/// `re`; HAProxy runs them with PCRE): one the `regex` crate compiles and
/// without inline flags after the start.
fn usable_regex(v: &str) -> bool {
    !v.contains(['\r', '\n'])
        && regex::Regex::new(v).is_ok()
        && !v.match_indices("(?").any(|(i, _)| {
            i > 0 && {
                let rest = &v[i + 2..];
                let end = rest
                    .find(|c: char| !c.is_ascii_alphabetic())
                    .unwrap_or(rest.len());
                end > 0 && rest[end..].starts_with(')')
            }
        })
}

fn rule(kind: &'static str, compare: &'static str, key: Option<&str>, value: String) -> DesignRule {
    DesignRule {
        kind,
        compare_type: compare,
        key: key.map(str::to_string),
        value,
        invert: false,
    }
}

/// The entries of one rule: one a match (a rule without matches matches
/// every request, as a `/` prefix).
pub fn entries(src: Source<'_>) -> Result<Vec<Entry>, (String, String)> {
    let mut out = Vec::new();
    let default = [crate::gateway::api::HttpRouteMatch::default()];
    let matches = if src.rule.matches.is_empty() {
        &default[..]
    } else {
        &src.rule.matches[..]
    };
    let at = format!("spec.rules[{}]", src.rule_index);
    let action = action(&src, &at)?;
    for (mi, m) in matches.iter().enumerate() {
        let mat = format!("{at}.matches[{mi}]");
        let mut rules = Vec::new();
        if let Some(h) = src.host {
            rules.push(rule("HOST_NAME", "REGEX", None, host_regex(h)));
        }
        for x in src.exclude {
            let mut not = rule("HOST_NAME", "REGEX", None, host_regex(x));
            not.invert = true;
            rules.push(not);
        }
        let kind = m
            .path
            .as_ref()
            .and_then(|p| p.kind.as_deref())
            .unwrap_or("PathPrefix");
        let value = m
            .path
            .as_ref()
            .and_then(|p| p.value.clone())
            .unwrap_or_else(|| "/".into());
        let path = match kind {
            "Exact" | "PathPrefix" if !value.starts_with('/') || !plain_value(&value) => {
                return Err(unsupported(
                    format!("{mat}.path.value"),
                    "a path here starts with / and has no space or control character",
                ));
            }
            "Exact" => {
                rules.push(rule("PATH", "EQUAL_TO", None, value.clone()));
                PathMatch::Exact(value)
            }
            "PathPrefix" => {
                if value.trim_end_matches('/').is_empty() {
                    if src.host.is_none() && src.exclude.is_empty() && m.headers.is_empty() {
                        // A policy without rules does nothing in HAProxy.
                        rules.push(rule("PATH", "STARTS_WITH", None, "/".into()));
                    }
                } else {
                    rules.push(rule("PATH", "REGEX", None, prefix_regex(&value)));
                }
                PathMatch::Prefix(value)
            }
            "RegularExpression" => {
                if !usable_regex(&value) {
                    return Err(unsupported(
                        format!("{mat}.path.value"),
                        "a regular expression Octavia does not take",
                    ));
                }
                rules.push(rule("PATH", "REGEX", None, value.clone()));
                PathMatch::RegularExpression(value)
            }
            other => {
                return Err(unsupported(
                    format!("{mat}.path.type"),
                    &format!("{other} is not a path match type"),
                ));
            }
        };
        let mut headers = Vec::new();
        for (hi, h) in m.headers.iter().enumerate() {
            let field = format!("{mat}.headers[{hi}]");
            let name_ok = !h.name.is_empty()
                && h.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !name_ok {
                return Err(unsupported(
                    format!("{field}.name"),
                    "not an HTTP header name",
                ));
            }
            let exact = match h.kind.as_deref().unwrap_or("Exact") {
                "Exact" => {
                    if !plain_value(&h.value) {
                        return Err(unsupported(
                            format!("{field}.value"),
                            "Octavia compares header values without spaces or control characters",
                        ));
                    }
                    rules.push(rule("HEADER", "EQUAL_TO", Some(&h.name), h.value.clone()));
                    true
                }
                "RegularExpression" => {
                    if !usable_regex(&h.value) {
                        return Err(unsupported(
                            format!("{field}.value"),
                            "a regular expression Octavia does not take",
                        ));
                    }
                    rules.push(rule("HEADER", "REGEX", Some(&h.name), h.value.clone()));
                    false
                }
                other => {
                    return Err(unsupported(
                        format!("{field}.type"),
                        &format!("{other} is not a header match type"),
                    ));
                }
            };
            headers.push((h.name.to_ascii_lowercase(), exact, h.value.clone()));
        }
        if rules.len() > MAX_RULES {
            return Err(unsupported(mat, "more than 50 Octavia rules"));
        }
        out.push(Entry {
            route: src.route.to_string(),
            port: src.port,
            key: MatchKey {
                hostname: src.host.map(str::to_string),
                path: path.clone(),
                headers: headers.len(),
                route_created: src.created.to_string(),
                route: src.route.to_string(),
                rule: src.rule_index,
                matched: mi,
            },
            rules,
            action: action.clone(),
            shape: Shape {
                host: src.host.map(str::to_string),
                path,
                headers,
            },
            source: format!("{}:{mat}", src.route),
        });
    }
    Ok(out)
}

/// The rule's action: its pool, or its RequestRedirect as Octavia's
/// REDIRECT_PREFIX (path and query kept) or REDIRECT_TO_URL (ReplaceFullPath).
fn action(src: &Source<'_>, at: &str) -> Result<PolicyAction, (String, String)> {
    let Some((fi, r)) = src
        .rule
        .filters
        .iter()
        .enumerate()
        .find_map(|(i, f)| f.request_redirect.as_ref().map(|r| (i, r)))
    else {
        return Ok(PolicyAction::RedirectToPool {
            pool: src.pool.to_string(),
        });
    };
    let field = format!("{at}.filters[{fi}].requestRedirect");
    let own_scheme = if src.listener == ListenerProtocol::TerminatedHttps {
        "https"
    } else {
        "http"
    };
    let scheme = match r.scheme.as_deref() {
        None => own_scheme,
        Some("http") => "http",
        Some("https") => "https",
        Some(other) => {
            return Err(unsupported(
                format!("{field}.scheme"),
                &format!("{other} is not http or https"),
            ));
        }
    };
    let host = match (&r.hostname, src.host) {
        (Some(h), _) if matching::is_hostname(h) && !h.starts_with("*.") => Some(h.clone()),
        (Some(_), _) => {
            return Err(unsupported(format!("{field}.hostname"), "not a hostname"));
        }
        (None, Some(h)) if h.starts_with("*.") => {
            return Err(unsupported(
                format!("{field}.hostname"),
                &format!(
                    "the redirect keeps the request's host, which Octavia cannot copy, on the wildcard hostname {h}; name the hostname"
                ),
            ));
        }
        (None, h) => h.map(str::to_string),
    };
    let port = match r.port {
        Some(p) => Some(
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| unsupported(format!("{field}.port"), "not a port"))?,
        ),
        // A new scheme: its well-known port; else the listener's.
        None if r.scheme.is_some() => None,
        None => Some(src.port),
    }
    .filter(|&p| !((scheme == "http" && p == 80) || (scheme == "https" && p == 443)));
    let code = match r.status_code.unwrap_or(302) {
        c @ (301 | 302 | 303 | 307 | 308) => c as u16,
        other => {
            return Err(unsupported(
                format!("{field}.statusCode"),
                &format!("{other} is not a redirect code Octavia sends"),
            ));
        }
    };
    Ok(match &r.path {
        Some(p) => {
            let path = p.replace_full_path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') || !plain_value(&path) {
                return Err(unsupported(
                    format!("{field}.path.replaceFullPath"),
                    "not a path",
                ));
            }
            PolicyAction::RedirectToUrl {
                url: RedirectTarget {
                    scheme: scheme.into(),
                    host,
                    port,
                    path,
                },
                code,
            }
        }
        None => PolicyAction::RedirectPrefix {
            prefix: RedirectTarget {
                scheme: scheme.into(),
                host,
                port,
                path: String::new(),
            },
            code,
        },
    })
}

/// Whether `prefix` (a PathPrefix) takes `path` (a path or another prefix).
fn under(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    let path = path.trim_end_matches('/');
    p.is_empty() || path == p || path.starts_with(&format!("{p}/"))
}

fn hosts_meet(a: &str, b: &str) -> bool {
    a == b || matching::covers(a, b) || matching::covers(b, a)
}

/// Whether one request could match both shapes (false only when provably not).
pub fn may_overlap(a: &Shape, b: &Shape) -> bool {
    if let (Some(x), Some(y)) = (&a.host, &b.host)
        && !hosts_meet(x, y)
    {
        return false;
    }
    let paths = match (&a.path, &b.path) {
        (PathMatch::Exact(x), PathMatch::Exact(y)) => x == y,
        (PathMatch::Exact(x), PathMatch::Prefix(p))
        | (PathMatch::Prefix(p), PathMatch::Exact(x)) => under(p, x),
        (PathMatch::Prefix(p), PathMatch::Prefix(q)) => under(p, q) || under(q, p),
        _ => true,
    };
    if !paths {
        return false;
    }
    !a.headers.iter().any(|(n, exact, v)| {
        b.headers
            .iter()
            .any(|(m, exact2, w)| n == m && *exact && *exact2 && v != w)
    })
}

/// Orders the entries of each listener port into policies, and answers the
/// routes refused because a redirect of theirs cannot be compiled.
#[allow(clippy::type_complexity)]
pub fn order(mut entries: Vec<Entry>) -> (BTreeMap<u16, Vec<DesignPolicy>>, Vec<(String, String)>) {
    entries.sort_by(|a, b| a.port.cmp(&b.port).then_with(|| a.key.cmp(&b.key)));
    let mut out: BTreeMap<u16, Vec<DesignPolicy>> = BTreeMap::new();
    let mut refused: Vec<(String, String)> = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        let policies = out.entry(e.port).or_default();
        if e.pool().is_some() {
            policies.push(DesignPolicy {
                action: e.action.clone(),
                rules: e.rules.clone(),
                source: e.source.clone(),
            });
            continue;
        }
        let mut alternatives = vec![e.rules.clone()];
        let above = entries[..k]
            .iter()
            .filter(|p| p.port == e.port && p.pool().is_some() && may_overlap(&p.shape, &e.shape));
        let mut too_many = false;
        for p in above {
            let mut next = Vec::new();
            for alt in alternatives {
                if p.rules.iter().any(|q| alt.contains(&q.inverted())) {
                    next.push(alt);
                    continue;
                }
                for q in &p.rules {
                    // alt already implies q: alt and not q matches nothing.
                    if alt.contains(q) {
                        continue;
                    }
                    let mut a = alt.clone();
                    a.push(q.inverted());
                    next.push(a);
                }
            }
            alternatives = next;
            if alternatives.len() > MAX_SPLIT || alternatives.iter().any(|a| a.len() > MAX_RULES) {
                too_many = true;
                break;
            }
        }
        if too_many {
            if !refused.iter().any(|(r, _)| *r == e.route) {
                refused.push((
                    e.route.clone(),
                    format!(
                        "{}: HAProxy runs redirects before pool policies, and excluding the higher-precedence matches above this redirect takes more than {MAX_SPLIT} Octavia policies or {MAX_RULES} rules; no rule of this route is programmed",
                        e.source
                    ),
                ));
            }
            continue;
        }
        for alt in alternatives {
            policies.push(DesignPolicy {
                action: e.action.clone(),
                rules: alt,
                source: e.source.clone(),
            });
        }
    }
    out.retain(|_, v| !v.is_empty());
    (out, refused)
}
