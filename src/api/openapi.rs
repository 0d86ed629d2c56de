//! The OpenAPI document of the REST API, generated from the code (utoipa):
//! served at `/openapi.json`, printed by `svc-lbaas openapi`, committed as
//! `openapi/openapi.json` (a test fails when the two drift apart).

use serde::Deserialize;
use serde_json::Value;
use utoipa::OpenApi;

/// The body of `POST /v1/apply` and `POST /v1/plan`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ApplyRequest {
    /// A core/v1 Service.
    #[schema(value_type = Object)]
    service: Value,
    /// Its core/v1 Endpoints; with `endpointSlices` absent too, members are left as they are.
    #[schema(value_type = Option<Object>)]
    endpoints: Option<Value>,
    /// Its discovery/v1 EndpointSlices.
    #[schema(value_type = Option<Vec<Object>>)]
    endpoint_slices: Option<Vec<Value>>,
    /// core/v1 Secrets of type `kubernetes.io/tls`: the one
    /// `loadbalancer.openstack.org/default-tls-secret` names (or the only one,
    /// when a port has `appProtocol: https`) is stored in Barbican as the
    /// TERMINATED_HTTPS listeners' certificate. Never logged, never answered.
    #[schema(value_type = Option<Vec<Object>>)]
    tls_secrets: Option<Vec<Value>>,
}

/// The body of `POST /v1/events`: a watch event, or a `List` of objects or events.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct WatchEvent {
    /// ADDED, MODIFIED or DELETED.
    #[serde(rename = "type")]
    kind: String,
    /// A Service, Endpoints or EndpointSlice.
    #[schema(value_type = Object)]
    object: Value,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "svc-lbaas",
        description = "Kubernetes Services and their Endpoints as OpenStack (Octavia / Neutron LBaaS v2) load balancers. Errors are RFC 9457 problems (application/problem+json).",
        license(name = "Apache-2.0")
    ),
    paths(
        super::apply,
        super::plan,
        super::get_service,
        super::delete_service,
        super::events,
        super::sync,
        super::healthz,
        super::readyz,
        super::metrics
    ),
    components(schemas(ApplyRequest, WatchEvent))
)]
pub struct ApiDoc;

/// The document as pretty JSON, with a trailing newline (as committed).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut text = doc
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_matches_the_code() {
        let committed = include_str!("../../openapi/openapi.json");
        let generated = super::document();
        assert!(
            committed == generated,
            "openapi/openapi.json drifted from the code: run `cargo run -- openapi > openapi/openapi.json`"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        for path in [
            "/v1/apply",
            "/v1/plan",
            "/v1/services/{namespace}/{name}",
            "/v1/events",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(
                doc["paths"].get(path).is_some(),
                "{path} is not in the document"
            );
        }
        assert!(doc["components"]["schemas"].get("ApplyResponse").is_some());
        assert!(doc["components"]["schemas"].get("Problem").is_some());
    }
}
