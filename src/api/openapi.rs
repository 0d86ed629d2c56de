//! The OpenAPI document of the REST API, generated from the code (utoipa):
//! served at `/openapi.json`, printed by `svc-lbaas openapi`, committed as
//! `openapi/openapi.json` (a test fails when the two drift apart).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "svc-lbaas",
        description = "Kubernetes Services and their Endpoints as OpenStack (Octavia / Neutron LBaaS v2) load balancers. Errors are RFC 9457 problems (application/problem+json).",
        license(name = "Apache-2.0")
    ),
    paths(
        super::rest::apply,
        super::rest::plan,
        super::rest::get_service,
        super::rest::delete_service,
        super::rest::events,
        super::rest::sync,
        super::rest::apply_gateway,
        super::rest::plan_gateway,
        super::rest::get_gateway,
        super::rest::delete_gateway,
        super::rest::sync_gateways,
        super::rest::healthz,
        super::rest::readyz,
        super::rest::metrics
    ),
    components(schemas(
        super::schema::ApplyRequest,
        super::schema::WatchEvent,
        super::schema::GatewayRequest,
        super::schema::GatewaySync,
        crate::error::Problem
    ))
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
