//! Keystone v3, enough for clients: version discovery, `POST /v3/auth/tokens`
//! (password, application_credential and token methods, project scope) with
//! `X-Subject-Token` and a catalog pointing back here, token validation, and
//! 401 for unknown or expired tokens on every other API.

use std::collections::HashMap;

use tokio::time::Instant;

pub const PROJECT_ID: &str = "5f1c0a3e9b7d4e2c8a6b4d2f0e8c6a42";
pub const USER_ID: &str = "7d2e4f6a8c0b4e1d9f3a5c7e9b1d3f57";
pub const DOMAIN_ID: &str = "default";

#[derive(Debug)]
pub(crate) struct Token {
    pub(crate) expires: Instant,
    pub(crate) scoped: bool,
}

/// Issued tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    pub(crate) issued: HashMap<String, Token>,
}

impl Tokens {
    /// Expires every token now (fault injection: clients must re-authenticate).
    pub fn expire_all(&mut self) {
        self.issued.clear();
    }

    pub(crate) fn valid(&self, token: &str, now: Instant) -> Option<&Token> {
        self.issued.get(token).filter(|t| t.expires > now)
    }
}
