//! The pieces of the OpenAPI document the handlers name: request bodies
//! and each route's problem responses, read from the one error table.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::error::Kind;

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

/// The body of `POST /v1/gateways/apply` and `/v1/gateways/plan`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct GatewayRequest {
    /// A gateway.networking.k8s.io/v1 Gateway.
    #[schema(value_type = Object)]
    gateway: Value,
    /// Its GatewayClass: one naming another controller leaves the Gateway
    /// alone (`action: ignored`).
    #[schema(value_type = Option<Object>)]
    gateway_class: Option<Value>,
    /// HTTPRoutes, TLSRoutes, TCPRoutes and UDPRoutes (told apart by `kind`).
    #[schema(value_type = Option<Vec<Object>>)]
    routes: Option<Vec<Value>>,
    /// ReferenceGrants that let routes reach Services, and the Gateway
    /// Secrets, of other namespaces.
    #[schema(value_type = Option<Vec<Object>>)]
    reference_grants: Option<Vec<Value>>,
    /// core/v1 Services the routes name as backends.
    #[schema(value_type = Option<Vec<Object>>)]
    services: Option<Vec<Value>>,
    /// Their discovery/v1 EndpointSlices: the members.
    #[schema(value_type = Option<Vec<Object>>)]
    endpoint_slices: Option<Vec<Value>>,
    /// core/v1 Namespaces with their labels (listeners' `from: Selector`);
    /// only from a token of every namespace.
    #[schema(value_type = Option<Vec<Object>>)]
    namespaces: Option<Vec<Value>>,
    /// core/v1 `kubernetes.io/tls` Secrets the HTTPS listeners name; stored
    /// in Barbican, never logged, never answered.
    #[schema(value_type = Option<Vec<Object>>)]
    tls_secrets: Option<Vec<Value>>,
}

/// The body of `POST /v1/gateways/sync`: every Gateway of the cluster.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct GatewaySync {
    /// `[{"namespace", "name"}]`.
    #[schema(value_type = Vec<Object>)]
    gateways: Vec<Value>,
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

/// The problems a route may answer, as OpenAPI responses read from the one
/// table (`crate::error::Kind::class`): one response a status, describing
/// every kind of that status.
fn problem_responses(
    kinds: &[Kind],
) -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>> {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for kind in kinds {
        let class = kind.class();
        let titles = by_status.entry(class.status).or_default();
        if !titles.contains(&class.title) {
            titles.push(class.title);
        }
    }
    by_status
        .into_iter()
        .map(|(status, titles)| {
            let problem = utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build();
            let response = utoipa::openapi::ResponseBuilder::new()
                .description(titles.join("; "))
                .content("application/problem+json", problem)
                .build();
            (status.to_string(), response.into())
        })
        .collect()
}

/// What every request that reaches the cloud may fail with: bad input, an
/// unknown token or another namespace, a reference refused, a conflict, the
/// cloud's failures, the deadline.
const REQUEST_PROBLEMS: [Kind; 24] = [
    Kind::InvalidService,
    Kind::InvalidJson,
    Kind::InvalidQuery,
    Kind::UnreadableBody,
    Kind::Unsupported,
    Kind::UnknownReference,
    Kind::Unauthenticated,
    Kind::Forbidden,
    Kind::ForbiddenReference,
    Kind::NotOwned,
    Kind::SharedLoadBalancer,
    Kind::FloatingIpNotFound,
    Kind::FloatingIpInUse,
    Kind::ReferenceInUse,
    Kind::Precondition,
    Kind::TooLarge,
    Kind::Internal,
    Kind::OpenStackError,
    Kind::LoadBalancerError,
    Kind::OpenStackAuth,
    Kind::OpenStackUnreachable,
    Kind::OpenStackConfig,
    Kind::WaitTimeout,
    Kind::DeadlineExceeded,
];

/// `POST /v1/plan`, `/v1/apply`, `DELETE /v1/services/...`.
pub struct RequestProblems;

impl utoipa::IntoResponses for RequestProblems {
    fn responses() -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
    {
        problem_responses(&REQUEST_PROBLEMS)
    }
}

/// `GET /v1/services/...`: also no load balancer.
pub struct LookupProblems;

impl utoipa::IntoResponses for LookupProblems {
    fn responses() -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
    {
        let mut kinds = REQUEST_PROBLEMS.to_vec();
        kinds.push(Kind::NotFound);
        problem_responses(&kinds)
    }
}

/// `POST /v1/events` and `/v1/sync`: also a malformed event or list.
pub struct BatchProblems;

impl utoipa::IntoResponses for BatchProblems {
    fn responses() -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
    {
        let mut kinds = REQUEST_PROBLEMS.to_vec();
        kinds.extend([
            Kind::InvalidObject,
            Kind::InvalidEvent,
            Kind::InvalidSync,
            Kind::DuplicateObject,
        ]);
        problem_responses(&kinds)
    }
}

/// `GET /readyz`: the cloud cannot be used.
pub struct ReadinessProblems;

impl utoipa::IntoResponses for ReadinessProblems {
    fn responses() -> BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
    {
        problem_responses(&[Kind::OpenStackUnreachable])
    }
}
