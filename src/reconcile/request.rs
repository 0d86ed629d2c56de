//! What a request asks: its input (a Service and its backends, decoded
//! from JSON) and its options (wait, deadline).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::error::ReconcileError;
use crate::k8s::{self, InputError};
use crate::translate::Backends;

/// What an apply request carries: a Service and, optionally, its backends.
#[derive(Debug, Clone)]
pub struct ApplyInput {
    pub service: Service,
    pub endpoints: Option<Endpoints>,
    pub endpoint_slices: Option<Vec<EndpointSlice>>,
    /// `tlsSecrets`: Kubernetes TLS Secrets for TERMINATED_HTTPS listeners
    /// (never logged: their `Debug` names them only).
    pub tls_secrets: Option<crate::certificate::TlsSecrets>,
}

impl ApplyInput {
    /// The Service's namespace (`default` when absent, as Kubernetes reads it).
    pub fn namespace(&self) -> &str {
        self.service
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }

    /// Reads a request body in one pass when it is well formed in the common
    /// shape (`endpointSlices`, if any, a plain list): `None` otherwise, and
    /// then [`ApplyInput::from_json`] reads it again to name what is wrong.
    pub fn from_slice(body: &[u8]) -> Option<ApplyInput> {
        #[derive(serde::Deserialize)]
        struct Body {
            service: Option<Service>,
            #[serde(default)]
            endpoints: Option<Endpoints>,
            #[serde(default, rename = "endpointSlices")]
            endpoint_slices: Option<Vec<EndpointSlice>>,
            #[serde(default, rename = "tlsSecrets")]
            tls_secrets: Option<Vec<k8s_openapi::api::core::v1::Secret>>,
        }
        let body: Body = serde_json::from_slice(body).ok()?;
        Some(ApplyInput {
            service: body.service?,
            endpoints: body.endpoints,
            endpoint_slices: body.endpoint_slices,
            tls_secrets: body.tls_secrets.map(crate::certificate::TlsSecrets),
        })
    }

    /// Reads `{"service": ..., "endpoints": ..., "endpointSlices": [...]}`.
    pub fn from_json(body: Value) -> Result<ApplyInput, InputError> {
        let Value::Object(mut map) = body else {
            return Err(InputError {
                origin: "request".into(),
                object: None,
                field: None,
                message: "expected a JSON object with a \"service\"".into(),
            });
        };
        let service = map
            .remove("service")
            .filter(|v| !v.is_null())
            .ok_or_else(|| InputError {
                origin: "request".into(),
                object: None,
                field: Some("service".into()),
                message: "missing".into(),
            })?;
        let service: Service = k8s::decode("request", "service.", service)?;
        let endpoints = match map.remove("endpoints").filter(|v| !v.is_null()) {
            Some(e) => Some(k8s::decode("request", "endpoints.", e)?),
            None => None,
        };
        let endpoint_slices = match map.remove("endpointSlices").filter(|v| !v.is_null()) {
            // An EndpointSliceList as the API server answers it is taken too.
            Some(list @ Value::Object(_)) if list.get("items").is_some_and(Value::is_array) => {
                Some(
                    k8s::list_items(&list)
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| {
                            k8s::decode("request", &format!("endpointSlices.items[{i}]."), s)
                        })
                        .collect::<Result<Vec<EndpointSlice>, _>>()?,
                )
            }
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| k8s::decode("request", &format!("endpointSlices[{i}]."), s))
                    .collect::<Result<Vec<EndpointSlice>, _>>()?,
            ),
            Some(_) => {
                return Err(InputError {
                    origin: "request".into(),
                    object: None,
                    field: Some("endpointSlices".into()),
                    message: "must be a list (or an EndpointSliceList)".into(),
                });
            }
            None => None,
        };
        let tls_secrets = match map.remove("tlsSecrets").filter(|v| !v.is_null()) {
            Some(Value::Array(items)) => Some(crate::certificate::TlsSecrets(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        // serde's message may quote a value: the Secret's content.
                        k8s::decode("request", &format!("tlsSecrets[{i}]."), s).map_err(|_| {
                            InputError {
                                origin: "request".into(),
                                object: None,
                                field: Some(format!("tlsSecrets[{i}]")),
                                message: "is not a core/v1 Secret (metadata, type, data of base64 strings)".into(),
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            Some(_) => {
                return Err(InputError {
                    origin: "request".into(),
                    object: None,
                    field: Some("tlsSecrets".into()),
                    message: "must be a list of core/v1 Secrets".into(),
                });
            }
            None => None,
        };
        Ok(ApplyInput {
            service,
            endpoints,
            endpoint_slices,
            tls_secrets,
        })
    }

    pub(super) fn backends(&self) -> Option<Backends<'_>> {
        (self.endpoints.is_some() || self.endpoint_slices.is_some()).then(|| Backends {
            endpoints: self.endpoints.as_ref(),
            endpoint_slices: self.endpoint_slices.as_deref().unwrap_or(&[]),
        })
    }
}

/// Options of one apply. `timeout` is a deadline for the whole request
/// (reads, writes and waits), counted from when the options were made.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    pub wait: bool,
    pub timeout: Duration,
    deadline: tokio::time::Instant,
}

impl ApplyOptions {
    pub fn new(wait: bool, timeout: Duration) -> ApplyOptions {
        let now = tokio::time::Instant::now();
        ApplyOptions {
            wait,
            timeout,
            deadline: now.checked_add(timeout).unwrap_or(now + DEFAULT_TIMEOUT),
        }
    }

    /// What is left for a wait: the time to the deadline, less a moment for
    /// the reads that make the answer after it.
    pub(super) fn wait_budget(&self) -> Duration {
        let left = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        left.saturating_sub((self.timeout / 10).min(ANSWER_RESERVE))
    }

    /// Runs `work` within the deadline: 504 `deadline-exceeded` past it.
    pub(super) async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, ReconcileError>>,
    ) -> Result<T, ReconcileError> {
        tokio::time::timeout_at(self.deadline, work)
            .await
            .unwrap_or(Err(ReconcileError::Deadline {
                seconds: self.timeout.as_secs(),
            }))
    }
}

/// Ends an apply's or delete's timer with its answer's action (`none`
/// when it failed) and the status it is answered with.
pub(super) fn timed<T>(
    timer: crate::metrics::InFlight<'_>,
    result: &Result<T, ReconcileError>,
    action: impl Fn(&T) -> &'static str,
) {
    match result {
        Ok(answer) => timer.end(action(answer), 200),
        Err(e) => timer.end("none", crate::error::problem(e).status),
    }
}

impl ApplyOptions {
    /// The options a request gives (REST query or gRPC fields): wait by
    /// default, within `timeout_s` or [`DEFAULT_TIMEOUT`].
    pub fn requested(wait: Option<bool>, timeout_s: Option<u64>) -> ApplyOptions {
        ApplyOptions::new(
            wait.unwrap_or(true),
            timeout_s.map_or(DEFAULT_TIMEOUT, Duration::from_secs),
        )
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions::new(true, DEFAULT_TIMEOUT)
    }
}

/// The default deadline of a request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Kept from a wait for the reads that make the answer.
const ANSWER_RESERVE: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::ApplyInput;
    use serde_json::{Value, json};

    fn service() -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    }

    fn slice() -> Value {
        json!({"metadata": {"name": "web-abc", "namespace": "ns",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.5"]}],
            "ports": [{"name": "http", "port": 8080}]})
    }

    #[test]
    fn the_one_pass_read_gives_what_the_field_naming_read_gives() {
        let endpoints = json!({"metadata": {"name": "web", "namespace": "ns"},
            "subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "http", "port": 8080}]}]});
        for body in [
            json!({"service": service()}),
            json!({"service": service(), "endpoints": endpoints}),
            json!({"service": service(), "endpoints": null, "endpointSlices": [slice()]}),
            json!({"service": service(), "endpointSlices": [], "extra": 1}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap();
            let fast = ApplyInput::from_slice(&bytes).expect("read in one pass");
            let slow = ApplyInput::from_json(body).expect("read by value");
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        }
    }

    #[test]
    fn what_the_one_pass_read_declines_is_read_again_or_named() {
        // An EndpointSliceList is valid but read the other way.
        let list = json!({"service": service(),
            "endpointSlices": {"kind": "EndpointSliceList", "items": [slice()]}});
        let bytes = serde_json::to_vec(&list).unwrap();
        assert!(ApplyInput::from_slice(&bytes).is_none());
        assert_eq!(
            ApplyInput::from_json(list)
                .unwrap()
                .endpoint_slices
                .map(|s| s.len()),
            Some(1)
        );
        // Bad input: declined, and the field-naming read says where.
        for (body, field) in [
            (json!({"service": null}), Some("service")),
            (json!({"endpoints": {}}), Some("service")),
            (json!([1]), None),
            (
                json!({"service": {"spec": {"ports": [{"port": "eighty"}]}}}),
                Some("service.spec.ports[0].port"),
            ),
            (
                json!({"service": service(), "endpointSlices": 3}),
                Some("endpointSlices"),
            ),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap();
            assert!(ApplyInput::from_slice(&bytes).is_none(), "{body}");
            let e = ApplyInput::from_json(body).unwrap_err();
            assert_eq!(e.field.as_deref(), field);
        }
        assert!(ApplyInput::from_slice(b"{\"service\": ").is_none());
    }
}
