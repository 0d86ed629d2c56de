//! Gateway API's matching rules, as Octavia's L7 rules can express them.
//!
//! - Hostnames: a route's hostnames are intersected with its listener's
//!   (`*.example.com` matches one or more labels before `example.com`, never
//!   `example.com` itself); each result becomes a `HOST_NAME REGEX` rule that
//!   accepts an optional `:port`, since HAProxy compares the whole Host header.
//! - Paths: `Exact` is `PATH EQUAL_TO`; `PathPrefix` a segment-aware
//!   `PATH REGEX` (`/foo` matches `/foo`, `/foo/` and `/foo/bar`, not
//!   `/foobar`; a trailing `/` in the prefix is ignored; `/` matches all).
//! - Precedence: Gateway API orders matches by hostname (exact, then longer
//!   wildcards), then an exact path before a prefix, a longer prefix first,
//!   more header matches first; ties across routes go to the oldest route,
//!   then by `namespace/name`; within a route, to the first rule and match.

use std::cmp::Ordering;

/// A hostname as Gateway API takes it: a DNS-1123 subdomain, or one with a
/// leading `*.` label (lowercase; no port, no trailing dot).
pub fn is_hostname(h: &str) -> bool {
    crate::names::is_dns_name(h.strip_prefix("*.").unwrap_or(h)) && h.len() <= 253
}

/// Whether `pattern` (a hostname, or `*.` and a suffix) matches the
/// concrete or wildcard hostname `name`: a wildcard stands for one or more
/// labels, so `*.example.com` matches `a.example.com` and `a.b.example.com`
/// (and the wildcard `*.a.example.com`), not `example.com`.
pub(crate) fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        None => pattern == name,
        Some(suffix) => {
            let bare = name.strip_prefix("*.").unwrap_or(name);
            let under = bare.len() > suffix.len()
                && bare.ends_with(suffix)
                && bare.as_bytes()[bare.len() - suffix.len() - 1] == b'.';
            // The same wildcard covers itself.
            under || (name.starts_with("*.") && bare == suffix)
        }
    }
}

/// The hostnames a route serves on a listener: `Some(vec![])` when every
/// host matches (neither names any), `Some(names)` the intersection, `None`
/// when they have none in common (the route does not attach: Gateway API's
/// `NoMatchingListenerHostname`). Where one side is a wildcard covering the
/// other, the narrower is kept; the result is sorted and without repeats.
pub fn intersect_hostnames(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = match listener {
        None => route.to_vec(),
        Some(l) if route.is_empty() => vec![l.to_string()],
        Some(l) => route
            .iter()
            .filter_map(|r| {
                if covers(l, r) {
                    Some(r.clone())
                } else if covers(r, l) {
                    Some(l.to_string())
                } else {
                    None
                }
            })
            .collect(),
    };
    if listener.is_some() && out.is_empty() {
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// A `HOST_NAME REGEX` value for a concrete or wildcard hostname: the whole
/// Host header, an optional `:port` after it.
pub fn host_regex(hostname: &str) -> String {
    match hostname.strip_prefix("*.") {
        Some(suffix) => format!("^([a-z0-9-]+\\.)+{}(:[0-9]+)?$", regex::escape(suffix)),
        None => format!("^{}(:[0-9]+)?$", regex::escape(hostname)),
    }
}

/// A `PATH REGEX` value for a `PathPrefix`: whole segments only.
pub fn prefix_regex(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return "^/".to_string();
    }
    format!("^{}(/|$)", regex::escape(trimmed))
}

/// How a match names its path, for precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    /// Its precedence is the implementation's: after every prefix here.
    RegularExpression(String),
}

impl PathMatch {
    /// Exact first, then prefixes longest first (a trailing `/` aside),
    /// then regular expressions.
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>) {
        match self {
            PathMatch::Exact(p) => (0, std::cmp::Reverse(p.len())),
            PathMatch::Prefix(p) => (1, std::cmp::Reverse(p.trim_end_matches('/').len())),
            PathMatch::RegularExpression(_) => (2, std::cmp::Reverse(0)),
        }
    }
}

/// How specific a hostname is: an exact name before any wildcard, a longer
/// wildcard before a shorter, "any host" last.
fn hostname_rank(hostname: Option<&str>) -> (u8, std::cmp::Reverse<usize>) {
    match hostname {
        Some(h) if !h.starts_with("*.") => (0, std::cmp::Reverse(h.len())),
        Some(h) => (1, std::cmp::Reverse(h.len())),
        None => (2, std::cmp::Reverse(0)),
    }
}

/// One match of one rule of one route, with what orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchKey {
    /// The hostname this match is programmed for (`None`: any host).
    pub hostname: Option<String>,
    pub path: PathMatch,
    pub headers: usize,
    /// The route's creation timestamp (RFC 3339 sorts as text).
    pub route_created: String,
    /// `namespace/name` of the route.
    pub route: String,
    pub rule: usize,
    pub matched: usize,
}

impl Ord for MatchKey {
    fn cmp(&self, other: &Self) -> Ordering {
        hostname_rank(self.hostname.as_deref())
            .cmp(&hostname_rank(other.hostname.as_deref()))
            .then_with(|| self.path.rank().cmp(&other.path.rank()))
            .then_with(|| other.headers.cmp(&self.headers))
            .then_with(|| self.route_created.cmp(&other.route_created))
            .then_with(|| self.route.cmp(&other.route))
            .then_with(|| self.rule.cmp(&other.rule))
            .then_with(|| self.matched.cmp(&other.matched))
            // Equal in all Gateway API orders by: a stable total order.
            .then_with(|| self.hostname.cmp(&other.hostname))
    }
}

impl PartialOrd for MatchKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hostnames_are_subdomains_or_one_leading_wildcard() {
        for ok in [
            "example.com",
            "a-b.example.com",
            "*.example.com",
            "localhost",
            "x1",
        ] {
            assert!(is_hostname(ok), "{ok}");
        }
        for bad in [
            "",
            "*",
            "*.",
            "a.*.com",
            "Example.com",
            "-a.com",
            "a-.com",
            "a..com",
            "a.com.",
            "a.com:80",
            "*example.com",
            "a b",
        ] {
            assert!(!is_hostname(bad), "{bad:?}");
        }
        assert!(!is_hostname(&format!("{}.com", "a".repeat(64))));
    }

    #[test]
    fn hostnames_intersect_as_gateway_api_says() {
        let any = Some(vec![]);
        // Neither names one: any host.
        assert_eq!(intersect_hostnames(None, &[]), any);
        // Only one side names them: those.
        assert_eq!(
            intersect_hostnames(None, &names(&["a.com"])),
            Some(names(&["a.com"]))
        );
        assert_eq!(
            intersect_hostnames(Some("*.a.com"), &[]),
            Some(names(&["*.a.com"]))
        );
        // A wildcard listener keeps the route's names under it, and narrower wildcards.
        assert_eq!(
            intersect_hostnames(
                Some("*.example.com"),
                &names(&[
                    "foo.example.com",
                    "a.b.example.com",
                    "example.com",
                    "other.org",
                    "*.x.example.com"
                ])
            ),
            Some(names(&[
                "*.x.example.com",
                "a.b.example.com",
                "foo.example.com"
            ]))
        );
        // A route's wildcard over the listener's name: the listener's name.
        assert_eq!(
            intersect_hostnames(Some("foo.example.com"), &names(&["*.example.com"])),
            Some(names(&["foo.example.com"]))
        );
        // A broader wildcard on the route: the listener's narrower one.
        assert_eq!(
            intersect_hostnames(Some("*.foo.example.com"), &names(&["*.example.com"])),
            Some(names(&["*.foo.example.com"]))
        );
        // Nothing in common: the route does not attach.
        assert_eq!(intersect_hostnames(Some("a.com"), &names(&["b.com"])), None);
        assert_eq!(
            intersect_hostnames(Some("*.example.com"), &names(&["example.com"])),
            None
        );
        // The same name twice is one rule.
        assert_eq!(
            intersect_hostnames(Some("*.a.com"), &names(&["x.a.com", "x.a.com"])),
            Some(names(&["x.a.com"]))
        );
    }

    /// Whether the expression accepts `text`, by a real regex engine (the
    /// `regex` crate; HAProxy's PCRE reads these simple forms alike).
    fn accepts(re: &str, text: &str) -> bool {
        regex::Regex::new(re)
            .unwrap_or_else(|e| panic!("{re} compiles: {e}"))
            .is_match(text)
    }

    #[test]
    fn a_path_prefix_matches_whole_segments() {
        let re = prefix_regex("/foo");
        assert_eq!(re, "^/foo(/|$)");
        for yes in ["/foo", "/foo/", "/foo/bar", "/foo/bar/baz"] {
            assert!(accepts(&re, yes), "{yes}");
        }
        for no in ["/foobar", "/fo", "/", "/bar/foo"] {
            assert!(!accepts(&re, no), "{no}");
        }
        // A trailing slash is ignored; `/` is every path.
        assert_eq!(prefix_regex("/foo/"), re);
        assert_eq!(prefix_regex("/"), "^/");
        assert!(accepts("^/", "/anything"));
        // Regular-expression syntax in a path is text.
        assert_eq!(prefix_regex("/v1.0/a+b"), "^/v1\\.0/a\\+b(/|$)");
        assert!(accepts(&prefix_regex("/v1.0"), "/v1.0/x"));
        assert!(!accepts(&prefix_regex("/v1.0"), "/v1x0/x"));
    }

    #[test]
    fn host_rules_take_an_optional_port() {
        let exact = host_regex("foo.example.com");
        assert_eq!(exact, "^foo\\.example\\.com(:[0-9]+)?$");
        for yes in ["foo.example.com", "foo.example.com:8080"] {
            assert!(accepts(&exact, yes), "{yes}");
        }
        for no in [
            "bar.example.com",
            "foo.example.com.evil.org",
            "foo.example.com:x",
        ] {
            assert!(!accepts(&exact, no), "{no}");
        }
        let wild = host_regex("*.example.com");
        assert_eq!(wild, "^([a-z0-9-]+\\.)+example\\.com(:[0-9]+)?$");
        for yes in ["a.example.com", "a.b.example.com:443"] {
            assert!(accepts(&wild, yes), "{yes}");
        }
        for no in [
            "example.com",
            "aexample.com",
            "a.example.org",
            ".example.com",
        ] {
            assert!(!accepts(&wild, no), "{no}");
        }
    }

    fn key(
        host: Option<&str>,
        path: PathMatch,
        headers: usize,
        created: &str,
        route: &str,
        rule: usize,
    ) -> MatchKey {
        MatchKey {
            hostname: host.map(str::to_string),
            path,
            headers,
            route_created: created.into(),
            route: route.into(),
            rule,
            matched: 0,
        }
    }

    #[test]
    fn matches_are_ordered_by_gateway_apis_precedence() {
        use PathMatch::*;
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-02-01T00:00:00Z";
        let mut keys = vec![
            key(None, Prefix("/".into()), 0, t0, "a/r", 0),
            key(Some("*.example.com"), Prefix("/".into()), 0, t0, "a/r", 1),
            key(Some("foo.example.com"), Prefix("/".into()), 0, t0, "a/r", 2),
            key(Some("*.a.example.com"), Prefix("/".into()), 0, t0, "a/r", 3),
            key(None, Exact("/x".into()), 0, t1, "b/r", 0),
            key(None, Prefix("/api/v1/".into()), 0, t1, "b/r", 1),
            key(None, Prefix("/api".into()), 2, t1, "b/r", 2),
            key(None, Prefix("/api".into()), 1, t0, "c/r", 0),
            key(None, RegularExpression("^/re".into()), 5, t0, "c/r", 1),
            key(None, Prefix("/api".into()), 1, t1, "a/z", 0),
            key(None, Prefix("/api".into()), 1, t1, "a/y", 0),
        ];
        keys.sort();
        let order: Vec<(Option<&str>, &PathMatch, usize, &str)> = keys
            .iter()
            .map(|k| (k.hostname.as_deref(), &k.path, k.headers, k.route.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                // An exact hostname, then wildcards longest first.
                (Some("foo.example.com"), &Prefix("/".into()), 0, "a/r"),
                (Some("*.a.example.com"), &Prefix("/".into()), 0, "a/r"),
                (Some("*.example.com"), &Prefix("/".into()), 0, "a/r"),
                // Any host: exact path, the longest prefix, more headers,
                (None, &Exact("/x".into()), 0, "b/r"),
                (None, &Prefix("/api/v1/".into()), 0, "b/r"),
                (None, &Prefix("/api".into()), 2, "b/r"),
                // then the oldest route, then by namespace/name,
                (None, &Prefix("/api".into()), 1, "c/r"),
                (None, &Prefix("/api".into()), 1, "a/y"),
                (None, &Prefix("/api".into()), 1, "a/z"),
                // the catch-all prefix, and regular expressions last.
                (None, &Prefix("/".into()), 0, "a/r"),
                (None, &RegularExpression("^/re".into()), 5, "c/r"),
            ]
        );
    }

    #[test]
    fn within_a_route_the_first_rule_and_match_win_a_tie() {
        let a = key(None, PathMatch::Prefix("/a".into()), 0, "t", "n/r", 1);
        let mut b = key(None, PathMatch::Prefix("/b".into()), 0, "t", "n/r", 0);
        assert!(b < a, "rule 0 before rule 1 at equal precedence");
        b.rule = 1;
        b.matched = 1;
        assert!(a < b, "match 0 before match 1");
    }
}
