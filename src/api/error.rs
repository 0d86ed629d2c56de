//! The one place where errors become HTTP statuses and problem bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::openstack::OpenStackError;
use crate::problem::Problem;
use crate::reconcile::ReconcileError;

/// An RFC 9457 answer.
pub struct ProblemResponse(pub Box<Problem>);

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut res = (status, self.0.to_json()).into_response();
        res.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

/// Maps an OpenStack failure: the cloud said no (502, with its status and
/// request id), could not be reached (503), or is configured wrong (503).
pub fn openstack_problem(e: &OpenStackError) -> Problem {
    let (kind, title, status) = match e {
        OpenStackError::Unreachable { .. } => {
            ("openstack-unreachable", "OpenStack unreachable", 503)
        }
        OpenStackError::Config(_) | OpenStackError::NoEndpoint { .. } => (
            "openstack-config",
            "OpenStack not usable as configured",
            503,
        ),
        OpenStackError::Auth { .. } => ("openstack-auth", "OpenStack refused the credentials", 502),
        OpenStackError::Api { .. } | OpenStackError::Decode { .. } => {
            ("openstack-error", "OpenStack answered an error", 502)
        }
        OpenStackError::LoadBalancerError { .. } => (
            "load-balancer-error",
            "The load balancer went to ERROR",
            502,
        ),
        OpenStackError::WaitTimeout { .. } => {
            ("wait-timeout", "Timed out waiting for OpenStack", 504)
        }
        OpenStackError::Precondition(_) => ("precondition", "OpenStack is not ready for this", 409),
        OpenStackError::InvalidId(_) => ("openstack-error", "OpenStack answered an error", 502),
        OpenStackError::Missing { .. } => ("not-in-the-cloud", "Not found in the cloud", 409),
    };
    let mut p = Problem::new(kind, title, status, e.to_string());
    if let OpenStackError::Api {
        status, request_id, ..
    } = e
    {
        p.openstack_status = Some(*status);
        p.openstack_request_id = request_id.clone();
    }
    p
}

pub fn problem(e: &ReconcileError) -> Problem {
    match e {
        ReconcileError::Input(i) => Problem::from(i),
        ReconcileError::Translate(t) => Problem::from(t),
        ReconcileError::Plan(p) => Problem::from(p),
        ReconcileError::OpenStack(o) => openstack_problem(o),
        ReconcileError::UnknownReference { annotation, .. } => {
            let mut p = Problem::new(
                "unknown-reference",
                "The annotation names nothing in the cloud",
                400,
                e.to_string(),
            );
            p.field = Some(format!("service.metadata.annotations[\"{annotation}\"]"));
            p
        }
        ReconcileError::Deadline { .. } => Problem::new(
            "deadline-exceeded",
            "The request's deadline passed",
            504,
            e.to_string(),
        ),
        ReconcileError::NotFound(s) => Problem::new(
            "not-found",
            "No load balancer",
            404,
            format!("no load balancer for Service {s}"),
        ),
    }
}

impl From<ReconcileError> for ProblemResponse {
    fn from(e: ReconcileError) -> Self {
        let p = problem(&e);
        if p.status >= 500 {
            tracing::warn!(error = %e, "request failed");
        }
        ProblemResponse(Box::new(p))
    }
}
