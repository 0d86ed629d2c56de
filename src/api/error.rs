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

    /// A body axum could not read: too large (past the limit), or broken off.
    pub fn rejected(e: &axum::extract::rejection::BytesRejection) -> Self {
        let too_large = e.status() == StatusCode::PAYLOAD_TOO_LARGE;
        ProblemResponse::from(crate::error::body_problem(too_large, e.body_text()))
    }
}

/// 200 when the cloud holds what was asked, 202 while it still converges:
/// the one rule REST and gRPC share (gRPC says it in `converged`).
pub fn converged_status(converged: bool) -> StatusCode {
    http_status(crate::error::success_status(converged))
}

/// The HTTP status of a code of the table.
pub fn http_status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<Problem> for ProblemResponse {
    fn from(p: Problem) -> Self {
        ProblemResponse(Box::new(p))
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        crate::error::record(&self.0);
        let status = http_status(self.0.status);
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
