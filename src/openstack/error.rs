//! Errors talking to OpenStack: each keeps the status, the URL and
//! OpenStack's request id, so a user can find the call in the cloud's logs.

use serde_json::Value;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenStackError {
    #[error("cloud configuration: {0}")]
    Config(String),
    #[error("{service} is unreachable ({method} {url}): {message}")]
    Unreachable {
        service: &'static str,
        method: String,
        url: String,
        message: String,
    },
    #[error("authentication failed at {url} (HTTP {status}): {message}")]
    Auth {
        url: String,
        status: u16,
        message: String,
    },
    #[error("no {service} endpoint (interface {interface}{}) in the service catalog", region.as_ref().map(|r| format!(", region {r}")).unwrap_or_default())]
    NoEndpoint {
        service: String,
        interface: String,
        region: Option<String>,
    },
    #[error("{service} answered {status} to {method} {url}: {message}{}", request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Api {
        service: &'static str,
        method: String,
        url: String,
        status: u16,
        request_id: Option<String>,
        message: String,
    },
    #[error("{service} answered {method} {url} with a body that could not be read: {message}")]
    Decode {
        service: &'static str,
        method: String,
        url: String,
        message: String,
    },
    #[error("load balancer {id} is still {status} after {seconds}s")]
    WaitTimeout {
        id: String,
        status: String,
        seconds: u64,
    },
    #[error("load balancer {id} went to provisioning status ERROR")]
    LoadBalancerError { id: String },
    #[error("{0}")]
    Precondition(String),
    /// An id that cannot go into a URL (from an answer of the cloud: inputs
    /// are checked before they get here).
    #[error("refusing to put it into a URL: {0}")]
    InvalidId(#[from] super::path::InvalidId),
    /// A user-named object the cloud does not have (404 on its read).
    #[error("{kind} {id} does not exist")]
    Missing { kind: &'static str, id: String },
}

impl OpenStackError {
    pub fn status(&self) -> Option<u16> {
        match self {
            OpenStackError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Neutron's 409 when a subnet (or network) has no address left.
    pub fn is_address_exhausted(&self) -> bool {
        matches!(self, OpenStackError::Api { status: 409, message, .. } if message.contains("No more IP addresses"))
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// A load balancer deleted while it was waited for (by a racing replica).
    pub fn is_vanished(&self) -> bool {
        matches!(
            self,
            OpenStackError::Missing {
                kind: "load balancer",
                ..
            }
        )
    }
}

/// The human message inside an OpenStack error body: Octavia's
/// `faultstring`, Neutron's `NeutronError.message`, Keystone's `error.message`.
pub fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.get("faultstring")
            .or_else(|| v.pointer("/NeutronError/message"))
            .or_else(|| v.pointer("/error/message"))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    found.unwrap_or_else(|| body.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn messages_come_out_of_each_apis_error_shape() {
        assert_eq!(
            error_message(
                r#"{"faultcode": "Client", "faultstring": "immutable", "debuginfo": null}"#
            ),
            "immutable"
        );
        assert_eq!(
            error_message(r#"{"NeutronError": {"type": "X", "message": "no port", "detail": ""}}"#),
            "no port"
        );
        assert_eq!(
            error_message(
                r#"{"error": {"code": 401, "message": "auth", "title": "Unauthorized"}}"#
            ),
            "auth"
        );
        assert_eq!(error_message("plain text"), "plain text");
    }
}
