//! Bearer tokens: a TOML file of tokens, each with the namespaces it may
//! touch (`"*"` for all). No tokens file: no authentication (and then `serve`
//! only listens on loopback unless told `--insecure-no-auth`).
//!
//! ```toml
//! [[tokens]]
//! name = "ci-shop"            # for logs; the token itself is never logged
//! token = "s3cr3t-value"
//! namespaces = ["shop"]
//! ```

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    token: String,
    namespaces: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tokens: Vec<Entry>,
}

/// Who a request is: the token's name and the namespaces it may touch.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    namespaces: Vec<String>,
}

impl Caller {
    /// Anyone, everywhere (no tokens configured).
    pub fn anonymous() -> Caller {
        Caller {
            name: "anonymous".into(),
            namespaces: vec!["*".into()],
        }
    }

    pub fn may_touch(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == namespace)
    }

    /// The namespaces it may touch; `None`: all of them.
    pub fn namespaces(&self) -> Option<&[String]> {
        (!self.namespaces.iter().any(|n| n == "*")).then_some(self.namespaces.as_slice())
    }
}

/// The configured tokens, kept as SHA-256 digests.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.tokens.is_empty() {
            return Err("no [[tokens]]".into());
        }
        let mut entries = Vec::new();
        for (i, e) in file.tokens.into_iter().enumerate() {
            if e.token.len() < 16 {
                return Err(format!(
                    "tokens[{i}]: a token must be at least 16 characters"
                ));
            }
            if e.namespaces.is_empty() {
                return Err(format!(
                    "tokens[{i}]: namespaces must list at least one namespace (or \"*\")"
                ));
            }
            let caller = Caller {
                name: e.name.unwrap_or_else(|| format!("token-{i}")),
                namespaces: e.namespaces,
            };
            entries.push((digest(&e.token), caller));
        }
        Ok(Tokens { entries })
    }

    /// The caller a bearer token belongs to. Digests are compared whole, in
    /// constant time, so timing tells nothing about a token.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let d = digest(token);
        let mut found = None;
        for (known, caller) in &self.entries {
            let diff = known
                .iter()
                .zip(d.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some(caller.clone());
            }
        }
        found
    }
}

/// The token of an `Authorization` value: the `Bearer` scheme, in any case
/// (RFC 9110 makes auth schemes case-insensitive), then the token.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Who is calling, from the `Authorization` value presented (if any): the
/// caller, or the 401 detail.
pub fn authenticate(
    tokens: Option<&Tokens>,
    presented: Option<&str>,
) -> Result<Caller, &'static str> {
    let Some(tokens) = tokens else {
        return Ok(Caller::anonymous());
    };
    match presented.map(bearer) {
        None => Err("an Authorization: Bearer token is required"),
        Some(None) => Err("the Authorization value is not \"Bearer <token>\""),
        Some(Some(token)) => tokens.caller(token).ok_or("unknown bearer token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER  abc ", " BeArEr abc"] {
            assert_eq!(bearer(v), Some("abc"), "{v:?}");
        }
        for v in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer(v), None, "{v:?}");
        }
    }

    const FILE: &str = r#"
[[tokens]]
name = "ci"
token = "0123456789abcdef-ci"
namespaces = ["shop"]
[[tokens]]
token = "0123456789abcdef-admin"
namespaces = ["*"]
"#;

    #[test]
    fn tokens_name_their_namespaces() {
        let t = Tokens::parse(FILE).unwrap();
        let ci = t.caller("0123456789abcdef-ci").unwrap();
        assert_eq!(ci.name, "ci");
        assert!(ci.may_touch("shop"));
        assert!(!ci.may_touch("default"));
        assert!(
            t.caller("0123456789abcdef-admin")
                .unwrap()
                .may_touch("anything")
        );
        assert!(t.caller("wrong").is_none());
    }

    #[test]
    fn weak_or_empty_entries_are_refused() {
        assert!(Tokens::parse("[[tokens]]\ntoken = \"short\"\nnamespaces = [\"a\"]\n").is_err());
        assert!(
            Tokens::parse("[[tokens]]\ntoken = \"0123456789abcdefgh\"\nnamespaces = []\n").is_err()
        );
        assert!(Tokens::parse("tokens = []\n").is_err());
    }
}
