//! The watcher's client of `svc-lbaas serve`'s REST API: apply, plan
//! (offline, to tell a Service to skip), delete and sync. The bearer token is
//! read from its file on every call (projected tokens rotate) and never
//! follows a redirect.

use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// How long the server may take for one apply or delete (its `timeout_s`).
pub const SERVER_TIMEOUT_S: u64 = 300;

/// What a call to the server came to when it did not succeed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No answer (connection refused, timeout, unreadable token file).
    Transport(String),
    /// An RFC 9457 problem (or an answer that was not one).
    Problem {
        status: u16,
        title: String,
        detail: String,
    },
}

impl CallError {
    /// Whether the same call may succeed later without the Service changing:
    /// no answer, the server or the cloud busy or failing (5xx, 408, 429), a
    /// conflict that may clear (409), a token not (yet) known (401: tokens
    /// rotate). Other 4xx wait for the Service to change, or the resync.
    pub fn retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Problem { status, .. } => {
                *status >= 500 || matches!(status, 401 | 408 | 409 | 429)
            }
        }
    }

    /// The problem's title and detail, for an Event and a log line: no URL,
    /// no path of this pod's files, nothing but what the server's problem said.
    pub fn summary(&self) -> String {
        match self {
            CallError::Transport(e) => format!("svc-lbaas unreachable: {e}"),
            CallError::Problem {
                status,
                title,
                detail,
            } => format!("{title} ({status}): {detail}"),
        }
    }
}

pub struct ServerClient {
    http: reqwest::Client,
    base: String,
    token_file: Option<PathBuf>,
}

/// A path segment (a namespace or a name) escaped for a URL.
fn segment(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl ServerClient {
    pub fn new(base: &str, token_file: Option<PathBuf>, ca: Option<&[u8]>) -> Result<Self, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("--server {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("--server {base:?}: expected an http or https URL"));
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(SERVER_TIMEOUT_S + 30));
        if let Some(pem) = ca {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| format!("--server-ca: not a PEM certificate: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(ServerClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token_file,
        })
    }

    fn token(&self) -> Result<Option<String>, CallError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path).map_err(|e| {
            // The path goes to the log only (Events are read by the namespace).
            tracing::warn!(path = %path.display(), error = %e, "cannot read the token file");
            CallError::Transport(format!("the token file could not be read ({})", e.kind()))
        })?;
        Ok(Some(token.trim().to_string()))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.token()? {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        // reqwest's messages name the URL: left out (they go to Events).
        let transport = |e: reqwest::Error| CallError::Transport(e.without_url().to_string());
        let answer = req.send().await.map_err(transport)?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(transport)?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        // An RFC 9457 problem's title and detail; anything else (a proxy's
        // page) is not repeated.
        let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        Err(CallError::Problem {
            status,
            title: field("title").unwrap_or_else(|| format!("HTTP {status}")),
            detail: field("detail")
                .unwrap_or_else(|| "the answer was not a problem document".into()),
        })
    }

    /// `POST /v1/apply`: the answer (converged or not).
    pub async fn apply(&self, request: &Value) -> Result<Value, CallError> {
        let path = format!("/v1/apply?timeout_s={SERVER_TIMEOUT_S}");
        self.call(reqwest::Method::POST, &path, Some(request)).await
    }

    /// `POST /v1/plan?offline=true`: translation only, no OpenStack call.
    pub async fn plan_offline(&self, request: &Value) -> Result<Value, CallError> {
        self.call(
            reqwest::Method::POST,
            "/v1/plan?offline=true",
            Some(request),
        )
        .await
    }

    /// `DELETE /v1/services/{namespace}/{name}` (`keepFloatingIp`: the
    /// Service's `loadbalancer.openstack.org/keep-floatingip`).
    pub async fn delete(
        &self,
        namespace: &str,
        name: &str,
        keep_floating_ip: bool,
    ) -> Result<Value, CallError> {
        let path = format!(
            "/v1/services/{}/{}?timeout_s={SERVER_TIMEOUT_S}&keepFloatingIp={keep_floating_ip}",
            segment(namespace),
            segment(name)
        );
        self.call(reqwest::Method::DELETE, &path, None).await
    }

    /// `POST /v1/gateways/apply`: a Gateway with its routes and backends.
    pub async fn apply_gateway(&self, request: &Value) -> Result<Value, CallError> {
        let path = format!("/v1/gateways/apply?timeout_s={SERVER_TIMEOUT_S}");
        self.call(reqwest::Method::POST, &path, Some(request)).await
    }

    /// `DELETE /v1/gateways/{namespace}/{name}`.
    pub async fn delete_gateway(&self, namespace: &str, name: &str) -> Result<Value, CallError> {
        let path = format!(
            "/v1/gateways/{}/{}?timeout_s={SERVER_TIMEOUT_S}",
            segment(namespace),
            segment(name)
        );
        self.call(reqwest::Method::DELETE, &path, None).await
    }

    /// `POST /v1/gateways/sync`: what the cluster made for Gateways not in
    /// the list is deleted.
    pub async fn sync_gateways(&self, gateways: &[(String, String)]) -> Result<Value, CallError> {
        let list: Vec<Value> = gateways
            .iter()
            .map(|(namespace, name)| serde_json::json!({"namespace": namespace, "name": name}))
            .collect();
        let path = format!("/v1/gateways/sync?timeout_s={SERVER_TIMEOUT_S}");
        self.call(
            reqwest::Method::POST,
            &path,
            Some(&serde_json::json!({"gateways": list})),
        )
        .await
    }

    /// `POST /v1/sync?orphansOnly=true`: what the cluster owns for Services
    /// not in the list is deleted; the listed ones are left to the queue.
    pub async fn sync_orphans(&self, list: &Value) -> Result<Value, CallError> {
        let path = format!("/v1/sync?orphansOnly=true&timeout_s={SERVER_TIMEOUT_S}");
        self.call(reqwest::Method::POST, &path, Some(list)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("shop"), "shop");
        assert_eq!(segment("a/../b?c"), "a%2F%2E%2E%2Fb%3Fc");
    }

    #[test]
    fn transport_errors_5xx_and_passing_conflicts_are_retried() {
        let p = |status| CallError::Problem {
            status,
            title: "t".into(),
            detail: "d".into(),
        };
        assert!(CallError::Transport("refused".into()).retryable());
        assert!(p(502).retryable());
        assert!(p(429).retryable());
        assert!(p(409).retryable());
        assert!(p(401).retryable());
        assert!(!p(400).retryable());
        assert!(!p(403).retryable());
        assert!(!p(404).retryable());
        assert_eq!(p(400).summary(), "t (400): d");
    }

    #[test]
    fn a_server_url_must_be_http() {
        assert!(ServerClient::new("ftp://x", None, None).is_err());
        assert!(ServerClient::new("not a url", None, None).is_err());
        assert!(ServerClient::new("http://127.0.0.1:8080/", None, None).is_ok());
    }
}
