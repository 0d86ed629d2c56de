//! REST's side of the error classification (`crate::error`): a problem as
//! an `application/problem+json` answer with its kind's status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::Problem;
use crate::reconcile::ReconcileError;

pub use crate::error::{openstack_problem, problem};

/// An RFC 9457 answer.
pub struct ProblemResponse(pub Box<Problem>);

impl ProblemResponse {
    pub fn of(kind: crate::error::Kind, detail: impl Into<String>) -> Self {
        ProblemResponse(Box::new(Problem::of(kind, detail)))
    }
}

impl From<Problem> for ProblemResponse {
    fn from(p: Problem) -> Self {
        ProblemResponse(Box::new(p))
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        crate::error::record(&self.0);
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut res = (status, self.0.to_json()).into_response();
        res.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

impl From<ReconcileError> for ProblemResponse {
    fn from(e: ReconcileError) -> Self {
        ProblemResponse(Box::new(problem(&e)))
    }
}
