//! Octavia's layer 7 policies and rules in the simulated cloud: their data,
//! their validation and their positions, as Octavia 19 keeps them (held to
//! the loopback real cloud by `tests/sim/l7.py`; docs/octavia-l7.md has the
//! sources' reading).

use crate::sim::json::{ApiError, Body};
use crate::sim::meta::Meta;
use axum::http::StatusCode;

pub(crate) const ACTIONS: [&str; 4] = [
    "REJECT",
    "REDIRECT_TO_URL",
    "REDIRECT_TO_POOL",
    "REDIRECT_PREFIX",
];
pub(crate) const REDIRECT_CODES: [i64; 5] = [301, 302, 303, 307, 308];
pub(crate) const RULE_TYPES: [&str; 8] = [
    "SSL_DN_FIELD",
    "COOKIE",
    "HOST_NAME",
    "SSL_CONN_HAS_CERT",
    "FILE_TYPE",
    "SSL_VERIFY_RESULT",
    "HEADER",
    "PATH",
];
pub(crate) const COMPARE_TYPES: [&str; 5] =
    ["REGEX", "EQUAL_TO", "CONTAINS", "ENDS_WITH", "STARTS_WITH"];
/// Octavia's `MAX_L7RULES_PER_L7POLICY`.
pub(crate) const MAX_RULES: usize = 50;
pub(crate) const MAX_POSITION: i64 = 2_147_483_647;

pub(crate) const POLICY_FIELDS: [&str; 13] = [
    "name",
    "description",
    "admin_state_up",
    "listener_id",
    "action",
    "redirect_pool_id",
    "redirect_url",
    "redirect_prefix",
    "redirect_http_code",
    "position",
    "tags",
    "project_id",
    "rules",
];
pub(crate) const POLICY_UPDATE_FIELDS: [&str; 10] = [
    "name",
    "description",
    "admin_state_up",
    "action",
    "redirect_pool_id",
    "redirect_url",
    "redirect_prefix",
    "redirect_http_code",
    "position",
    "tags",
];
pub(crate) const RULE_FIELDS: [&str; 9] = [
    "type",
    "compare_type",
    "key",
    "value",
    "invert",
    "admin_state_up",
    "tags",
    "project_id",
    "tenant_id",
];

#[derive(Debug, Clone)]
pub(crate) struct L7Policy {
    pub(crate) meta: Meta,
    pub(crate) listener_id: String,
    pub(crate) redirect: Redirect,
    /// 1-based and contiguous per listener, as Octavia's ordering list.
    pub(crate) position: i64,
}

/// A policy's action with the fields that fit it; Octavia clears the others.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Redirect {
    Reject { code: Option<i64> },
    ToUrl { url: String, code: Option<i64> },
    ToPool { pool_id: String },
    Prefix { prefix: String, code: Option<i64> },
}

impl Redirect {
    pub(crate) fn action(&self) -> &'static str {
        match self {
            Redirect::Reject { .. } => "REJECT",
            Redirect::ToUrl { .. } => "REDIRECT_TO_URL",
            Redirect::ToPool { .. } => "REDIRECT_TO_POOL",
            Redirect::Prefix { .. } => "REDIRECT_PREFIX",
        }
    }

    pub(crate) fn pool_id(&self) -> Option<&str> {
        match self {
            Redirect::ToPool { pool_id } => Some(pool_id),
            _ => None,
        }
    }

    pub(crate) fn code(&self) -> Option<i64> {
        match self {
            Redirect::Reject { code }
            | Redirect::ToUrl { code, .. }
            | Redirect::Prefix { code, .. } => *code,
            Redirect::ToPool { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct L7Rule {
    pub(crate) meta: Meta,
    pub(crate) policy_id: String,
    pub(crate) kind: String,
    pub(crate) compare_type: String,
    pub(crate) key: Option<String>,
    pub(crate) value: String,
    pub(crate) invert: bool,
}

fn invalid_policy(why: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid L7 Policy arguments: {why}"))
}

/// What a create or an update asks of a policy's action, before it is
/// sanitised: the fields as given (`None`: not in the body).
pub(crate) struct RedirectRequest {
    pub(crate) action: Option<String>,
    pub(crate) pool_id: Option<Option<String>>,
    pub(crate) url: Option<Option<String>>,
    pub(crate) prefix: Option<Option<String>>,
    pub(crate) code: Option<Option<i64>>,
}

impl RedirectRequest {
    pub(crate) fn parse(b: &Body<'_>) -> Result<RedirectRequest, ApiError> {
        let given = |key: &str| b.has(key);
        let url = b.string("redirect_url")?;
        let prefix = b.string("redirect_prefix")?;
        for (key, v) in [("redirect_url", &url), ("redirect_prefix", &prefix)] {
            if let Some(v) = v
                && !is_redirect_url(v)
            {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute {key}. Value: '{v}'. Value must be a valid URL string"
                )));
            }
        }
        let code = match b.value("redirect_http_code") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(c) if REDIRECT_CODES.contains(&c) => Some(c),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for field/attribute redirect_http_code. Value: '{}'. Value should be one of: 301, 302, 303, 307, 308",
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    )));
                }
            },
        };
        Ok(RedirectRequest {
            action: b.choice("action", &ACTIONS)?,
            pool_id: given("redirect_pool_id")
                .then(|| b.string("redirect_pool_id"))
                .transpose()?,
            url: given("redirect_url").then_some(url),
            prefix: given("redirect_prefix").then_some(prefix),
            code: given("redirect_http_code").then_some(code),
        })
    }

    /// Octavia's sanitising (common/validate.py): the fields decide the
    /// action where they say more than it, and the action needs its field.
    /// `current` is the policy an update starts from.
    pub(crate) fn resolve(&self, current: Option<&Redirect>) -> Result<Redirect, ApiError> {
        let (mut pool, mut url, mut prefix, mut code) = match current {
            Some(r) => (
                r.pool_id().map(str::to_string),
                match r {
                    Redirect::ToUrl { url, .. } => Some(url.clone()),
                    _ => None,
                },
                match r {
                    Redirect::Prefix { prefix, .. } => Some(prefix.clone()),
                    _ => None,
                },
                r.code(),
            ),
            None => (None, None, None, None),
        };
        // The action asked, else the one the fields given say (a pool, then
        // a URL, then a prefix), else the policy's own.
        let given = |f: &Option<Option<String>>| f.as_ref().is_some_and(Option::is_some);
        let action = match (&self.action, current) {
            (Some(a), _) => a.clone(),
            (None, _) if given(&self.pool_id) => "REDIRECT_TO_POOL".to_string(),
            (None, _) if given(&self.url) => "REDIRECT_TO_URL".to_string(),
            (None, _) if given(&self.prefix) => "REDIRECT_PREFIX".to_string(),
            (None, Some(r)) => r.action().to_string(),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "Invalid input for field/attribute action. Value: 'None'. Mandatory field missing.",
                ));
            }
        };
        // A new action starts from the fields this request gives.
        if Some(action.as_str()) != current.map(Redirect::action) {
            (pool, url, prefix) = (None, None, None);
        }
        if let Some(p) = &self.pool_id {
            pool = p.clone();
        }
        if let Some(u) = &self.url {
            url = u.clone();
        }
        if let Some(p) = &self.prefix {
            prefix = p.clone();
        }
        if let Some(c) = self.code {
            code = c;
        }
        let explicit_code = self.code.is_some();
        let mut action = action.as_str();
        match action {
            "REJECT" => {
                url = None;
                pool = None;
                // An update to REJECT clears the code; a create keeps it.
                if current.is_some() {
                    code = None;
                }
                if prefix.is_some() {
                    action = "REDIRECT_PREFIX";
                }
            }
            "REDIRECT_TO_URL" => {
                if url.is_none() {
                    return Err(invalid_policy("redirect_url must not be None"));
                }
                prefix = None;
            }
            "REDIRECT_TO_POOL" => {
                url = None;
                if pool.is_none() {
                    return Err(invalid_policy(
                        "redirect_pool_id or redirect_pool must not be None",
                    ));
                }
            }
            "REDIRECT_PREFIX" if prefix.is_none() => {
                return Err(invalid_policy("redirect_prefix must not be None"));
            }
            _ => {}
        }
        if pool.is_some() && (url.is_some() || prefix.is_some()) {
            return Err(invalid_policy(
                "Cannot specify redirect_pool_id and redirect_url or redirect_prefix at the same time",
            ));
        }
        let defaulted = |code: Option<i64>| {
            if code.is_none() && !explicit_code {
                Some(302)
            } else {
                code
            }
        };
        Ok(if let Some(pool_id) = pool {
            Redirect::ToPool { pool_id }
        } else if let Some(url) = url {
            Redirect::ToUrl {
                url,
                code: defaulted(code),
            }
        } else if let Some(prefix) = prefix {
            Redirect::Prefix {
                prefix,
                code: defaulted(code),
            }
        } else {
            debug_assert_eq!(action, "REJECT");
            Redirect::Reject { code }
        })
    }
}

/// Octavia's `URLType`: an http or https URL with a host.
fn is_redirect_url(v: &str) -> bool {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !v.chars().any(|c| c.is_control())
    })
}

fn invalid_rule(why: &str) -> ApiError {
    ApiError::bad_request(format!("Error parsing L7Rule: {why}"))
}

/// Octavia's `HTTP_HEADER_NAME_REGEX` (`+-.` is a range there: a comma too).
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+,-.^_`|~".contains(&b))
}

/// Octavia's header and comparison value: printable ASCII without a space,
/// or a double-quoted string that may hold spaces and tabs.
fn is_comparison_value(s: &str) -> bool {
    let printable = |b: u8| b.is_ascii_graphic();
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return inner
            .bytes()
            .all(|b| (printable(b) && b != b'"') || b == b' ' || b == b'\t');
    }
    !s.is_empty() && s.bytes().all(printable)
}

/// Octavia's `HTTP_COOKIE_VALUE_REGEX`: no space, `"`, `;`, `,` or `\`.
fn is_cookie_value(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\";,\\".contains(&b))
}

/// A rule's fields checked as `validate.l7rule_data` does; `key` is cleared
/// for the types that do not use it (Octavia stores it, and clears it later).
pub(crate) fn check_rule(
    kind: &str,
    compare: &str,
    key: Option<&str>,
    value: &str,
) -> Result<(), ApiError> {
    if value.contains(['\r', '\n']) {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute value. Value: '{value}'. Value should match the pattern ^[^\\r\\n]*$"
        )));
    }
    if value.is_empty() {
        return Err(invalid_rule(
            "Invalid L7 Rule: L7 rule type requires a value",
        ));
    }
    let check_value = |ok: fn(&str) -> bool, what: &str| -> Result<(), ApiError> {
        if compare == "REGEX" {
            if let Some(at) = late_global_flags(value) {
                return Err(invalid_rule(&format!(
                    "Unable to parse regular expression: global flags not at the start of the expression at position {at}"
                )));
            }
            regex::Regex::new(value).map(drop).map_err(|e| {
                invalid_rule(&format!(
                    "Unable to parse regular expression: {}",
                    e.to_string().lines().last().unwrap_or("invalid")
                ))
            })
        } else if ok(value) {
            Ok(())
        } else {
            Err(invalid_rule(&format!("Invalid characters in {what}")))
        }
    };
    let needs_key = || -> Result<&str, ApiError> {
        key.filter(|k| !k.is_empty())
            .ok_or_else(|| invalid_rule("Invalid L7 Rule: L7 rule type requires a key"))
    };
    let only_equal = || -> Result<(), ApiError> {
        if compare == "EQUAL_TO" {
            Ok(())
        } else {
            Err(invalid_rule(&format!(
                "Invalid L7 Rule: L7rule type {kind} only supports the EQUAL_TO compare type."
            )))
        }
    };
    match kind {
        "HOST_NAME" | "PATH" => check_value(is_comparison_value, "comparison value"),
        "FILE_TYPE" => {
            if !matches!(compare, "REGEX" | "EQUAL_TO") {
                return Err(invalid_rule(
                    "Invalid L7 Rule: invalid comparison type for rule type",
                ));
            }
            check_value(is_comparison_value, "comparison value")
        }
        "HEADER" => {
            if !is_header_name(needs_key()?) {
                return Err(invalid_rule("Invalid characters in key"));
            }
            check_value(is_comparison_value, "header value")
        }
        "COOKIE" => {
            if !is_header_name(needs_key()?) {
                return Err(invalid_rule("Invalid characters in key"));
            }
            check_value(is_cookie_value, "cookie value")
        }
        "SSL_CONN_HAS_CERT" => {
            if key.is_some() {
                return Err(invalid_rule(
                    "Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT does not use the \"key\" field.",
                ));
            }
            only_equal()?;
            if value.eq_ignore_ascii_case("true") {
                Ok(())
            } else {
                Err(invalid_rule(&format!(
                    "Invalid L7 Rule: L7rule value {value} is not a boolean True string."
                )))
            }
        }
        "SSL_VERIFY_RESULT" => {
            only_equal()?;
            if value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(invalid_rule(
                    "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0",
                ))
            }
        }
        _ => {
            // SSL_DN_FIELD
            let key = needs_key()?;
            let mut chars = key.chars();
            let good = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !good {
                return Err(invalid_rule(
                    "Invalid L7 Rule: Invalid L7rule distinguished name field.",
                ));
            }
            if compare == "REGEX" {
                check_value(|_| true, "comparison value")
            } else {
                Ok(())
            }
        }
    }
}

/// Where a `(?i)`-like group stands after the start: Python's `re`, which
/// Octavia compiles rules with, refuses it (the `regex` crate takes it).
fn late_global_flags(value: &str) -> Option<usize> {
    value.match_indices("(?").map(|(i, _)| i).find(|&i| {
        let flags = &value[i + 2..];
        let end = flags
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(flags.len());
        i > 0 && end > 0 && flags[end..].starts_with(')')
    })
}

/// Whether a rule type keeps its `key` once stored.
pub(crate) fn uses_key(kind: &str) -> bool {
    !matches!(kind, "HOST_NAME" | "PATH" | "FILE_TYPE")
}

/// Octavia's answer to a policy on a listener its amphora cannot route.
pub(crate) fn unsupported_listener(provider: &str, protocol: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "ProviderUnsupportedOptionError",
        format!(
            "Provider '{provider}' does not support a requested option: {protocol} protocol listeners do not support L7 policies"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_values_are_checked_as_octavia_checks_them() {
        assert!(check_rule("PATH", "STARTS_WITH", None, "/api").is_ok());
        assert!(check_rule("PATH", "EQUAL_TO", None, "/a b").is_err());
        assert!(check_rule("PATH", "EQUAL_TO", None, "\"/a b\"").is_ok());
        assert!(check_rule("PATH", "REGEX", None, "^/a b$").is_ok());
        assert!(check_rule("PATH", "REGEX", None, "bad\\").is_err());
        // Python refuses global flags after the start; a scoped group is fine.
        assert!(check_rule("HOST_NAME", "REGEX", None, "^(?i)a$").is_err());
        assert!(check_rule("HOST_NAME", "REGEX", None, "(?i)^a$").is_ok());
        assert!(check_rule("HOST_NAME", "REGEX", None, "^(?i:a)$").is_ok());
        assert!(check_rule("PATH", "REGEX", None, "^/(?:a|b)$").is_ok());
        assert!(check_rule("HOST_NAME", "REGEX", None, "^a\\.example(:[0-9]+)?$").is_ok());
        // Python refuses global flags after the start; a scoped group is fine.
        assert!(check_rule("HOST_NAME", "REGEX", None, "^(?i)a$").is_err());
        assert!(check_rule("HOST_NAME", "REGEX", None, "(?i)^a$").is_ok());
        assert!(check_rule("HOST_NAME", "REGEX", None, "^(?i:a)$").is_ok());
        assert!(check_rule("PATH", "REGEX", None, "^/(?:a|b)$").is_ok());
        assert!(check_rule("HEADER", "EQUAL_TO", None, "x").is_err());
        assert!(check_rule("HEADER", "EQUAL_TO", Some("X-Env"), "canary").is_ok());
        assert!(check_rule("HEADER", "EQUAL_TO", Some("X Env"), "canary").is_err());
        assert!(check_rule("COOKIE", "EQUAL_TO", Some("c"), "a;b").is_err());
        assert!(check_rule("FILE_TYPE", "STARTS_WITH", None, "jpg").is_err());
        assert!(check_rule("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "True").is_ok());
        assert!(check_rule("SSL_VERIFY_RESULT", "EQUAL_TO", None, "x").is_err());
        assert!(check_rule("PATH", "EQUAL_TO", None, "").is_err());
        assert!(check_rule("PATH", "EQUAL_TO", None, "/a\n").is_err());
    }

    #[test]
    fn fields_decide_the_action_and_clear_what_does_not_fit() {
        let req = |action: Option<&str>, pool: Option<&str>, url: Option<&str>| RedirectRequest {
            action: action.map(str::to_string),
            pool_id: pool.map(|p| Some(p.to_string())),
            url: url.map(|u| Some(u.to_string())),
            prefix: None,
            code: None,
        };
        assert_eq!(
            req(Some("REDIRECT_TO_URL"), None, Some("http://a/"))
                .resolve(None)
                .ok(),
            Some(Redirect::ToUrl {
                url: "http://a/".into(),
                code: Some(302)
            })
        );
        assert!(
            req(Some("REDIRECT_TO_URL"), None, None)
                .resolve(None)
                .is_err()
        );
        assert!(
            req(Some("REDIRECT_TO_POOL"), None, None)
                .resolve(None)
                .is_err()
        );
        let current = Redirect::ToUrl {
            url: "http://a/".into(),
            code: Some(301),
        };
        // A pool alone turns a URL redirect into a pool policy.
        assert_eq!(
            req(None, Some("p"), None).resolve(Some(&current)).ok(),
            Some(Redirect::ToPool {
                pool_id: "p".into()
            })
        );
        assert_eq!(
            req(Some("REJECT"), None, None).resolve(Some(&current)).ok(),
            Some(Redirect::Reject { code: None })
        );
    }

    #[test]
    fn redirect_urls_need_a_scheme_and_a_host() {
        assert!(is_redirect_url("https://b.example/x"));
        assert!(is_redirect_url("http://c.example"));
        assert!(!is_redirect_url("nope"));
        assert!(!is_redirect_url("ftp://a/"));
        assert!(!is_redirect_url("http:///x"));
    }
}
