//! The one error classification: every problem svc-lbaas answers has a
//! [`Kind`], and [`Kind::class`] is its row in the one table (problem type,
//! title, HTTP status, gRPC code, retryable, metric label). REST
//! (`api/error.rs`), gRPC (`api/grpc.rs`), the CLI and `/metrics` all read
//! it; no other file maps an error to a status. [`ReconcileError`], what
//! the reconciler fails with, is here too, so that the classification sits
//! below the reconciler in the import graph.

use serde::Serialize;

use crate::k8s::InputError;
use crate::openstack::OpenStackError;
use crate::plan::PlanError;
use crate::translate::{TranslateError, annotation_field};

/// The reconciler's errors, before they are classified for users.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Translate(#[from] TranslateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    OpenStack(#[from] OpenStackError),
    #[error("no load balancer for Service {0}")]
    NotFound(String),
    /// The request's `timeout_s` passed before it was done.
    #[error("the request's deadline ({seconds} s) passed before it was done; re-applying is safe")]
    Deadline { seconds: u64 },
    /// A reference the Service's namespace may not use (`ForbiddenReference`)
    /// or that another user holds (`ReferenceInUse`); `field` names it.
    #[error("{field}: {message}")]
    Reference {
        kind: Kind,
        field: String,
        message: String,
    },
    /// An annotation names a cloud object that does not exist.
    #[error("annotation {annotation}: {kind} {id} does not exist in the cloud")]
    UnknownReference {
        annotation: &'static str,
        kind: &'static str,
        id: String,
    },
}

impl ReconcileError {
    /// `annotation` names what the Service's namespace may not use: a 403.
    pub fn forbidden(annotation: &str, message: impl Into<String>) -> ReconcileError {
        ReconcileError::Reference {
            kind: Kind::ForbiddenReference,
            field: annotation_field(annotation),
            message: message.into(),
        }
    }

    /// `annotation` names what another user holds: a 409.
    pub fn in_use(annotation: &str, message: impl Into<String>) -> ReconcileError {
        ReconcileError::Reference {
            kind: Kind::ReferenceInUse,
            field: annotation_field(annotation),
            message: message.into(),
        }
    }

    /// A cloud object named by `annotation` is missing: the user's mistake.
    pub fn named_by(annotation: &'static str) -> impl Fn(OpenStackError) -> ReconcileError {
        move |e| match e {
            OpenStackError::Missing { kind, id } => ReconcileError::UnknownReference {
                annotation,
                kind,
                id,
            },
            e => ReconcileError::OpenStack(e),
        }
    }
}

/// What every problem's `type` starts with.
pub const TYPE_PREFIX: &str = "urn:svc-lbaas:problem:";

// An RFC 9457 problem: the one error shape users see, on stderr from the
// CLI and as `application/problem+json` from the APIs. (A plain comment: a
// doc comment would become the schema's description in openapi.json.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type", serialize_with = "kind_urn")]
    #[schema(value_type = String)]
    pub kind: Kind,
    #[serde(serialize_with = "bounded_title")]
    pub title: String,
    pub status: u16,
    #[serde(serialize_with = "bounded_detail")]
    pub detail: String,
    /// Where the input came from (a file, `file[2]` for its third document).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_part"
    )]
    pub file: Option<String>,
    /// `Kind namespace/name` of the object at fault.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_part"
    )]
    pub object: Option<String>,
    /// Path of the offending field or annotation.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_part"
    )]
    pub field: Option<String>,
    /// The HTTP status OpenStack answered, when it answered an error.
    #[serde(rename = "openstackStatus", skip_serializing_if = "Option::is_none")]
    pub openstack_status: Option<u16>,
    /// OpenStack's `x-openstack-request-id` of the failed call.
    #[serde(
        rename = "openstackRequestId",
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_part"
    )]
    pub openstack_request_id: Option<String>,
}

// Whatever the input, a problem quotes at most `echo::QUOTE_MAX` characters
// of a value and stays under 4 KB as JSON (a `"` or `\\` doubles when
// escaped): detail 1,000 bytes, title 120, each other part 200.
const DETAIL_MAX: usize = 1000;
const TITLE_MAX: usize = 120;
const PART_MAX: usize = 200;

fn kind_urn<S: serde::Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&kind.urn())
}

fn bounded_detail<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::echo::bounded(v, DETAIL_MAX))
}

fn bounded_title<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::echo::bounded(v, TITLE_MAX))
}

fn bounded_part<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&crate::echo::bounded(v, PART_MAX)),
        None => s.serialize_none(),
    }
}

impl Problem {
    /// A problem of `kind`, with the type, title and status of its row in
    /// the classification (`crate::error`).
    pub fn of(kind: Kind, detail: impl Into<String>) -> Self {
        let class = kind.class();
        Problem {
            kind,
            title: class.title.to_string(),
            status: class.status,
            detail: detail.into(),
            file: None,
            object: None,
            field: None,
            openstack_status: None,
            openstack_request_id: None,
        }
    }

    /// Says more precisely what failed than the kind's title.
    pub fn titled(mut self, title: &str) -> Self {
        self.title = title.to_string();
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and a number always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| self.shown_detail().into_owned())
    }

    /// The detail as users see it: input quoted within `echo`'s limits.
    pub fn shown_detail(&self) -> std::borrow::Cow<'_, str> {
        crate::echo::bounded(&self.detail, DETAIL_MAX)
    }
}

/// Every kind of problem, named as its `type` URN ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    InvalidObject,
    InvalidService,
    InvalidJson,
    InvalidQuery,
    InvalidEvent,
    InvalidSync,
    InvalidConfig,
    DuplicateObject,
    UnreadableBody,
    UnreadableFile,
    TooLarge,
    Unsupported,
    UnknownReference,
    Unauthenticated,
    Forbidden,
    ForbiddenReference,
    ReferenceInUse,
    NotFound,
    NoRoute,
    NotOwned,
    SharedLoadBalancer,
    FloatingIpNotFound,
    FloatingIpInUse,
    Precondition,
    NotInTheCloud,
    OpenStackError,
    OpenStackAuth,
    LoadBalancerError,
    OpenStackUnreachable,
    OpenStackConfig,
    WaitTimeout,
    DeadlineExceeded,
    Internal,
}

/// A kind's row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// The end of the problem's `type` URN, and the metric label.
    pub slug: &'static str,
    /// The default title (a call site may say more precisely what failed).
    pub title: &'static str,
    pub status: u16,
    pub grpc: tonic::Code,
    /// Whether the same request may succeed later unchanged (the cloud busy,
    /// slow or unreachable), as opposed to needing a change of input or setup.
    pub retryable: bool,
}

impl Kind {
    pub const ALL: [Kind; 33] = [
        Kind::InvalidObject,
        Kind::InvalidService,
        Kind::InvalidJson,
        Kind::InvalidQuery,
        Kind::InvalidEvent,
        Kind::InvalidSync,
        Kind::InvalidConfig,
        Kind::DuplicateObject,
        Kind::UnreadableBody,
        Kind::UnreadableFile,
        Kind::TooLarge,
        Kind::Unsupported,
        Kind::UnknownReference,
        Kind::Unauthenticated,
        Kind::Forbidden,
        Kind::ForbiddenReference,
        Kind::ReferenceInUse,
        Kind::NotFound,
        Kind::NoRoute,
        Kind::NotOwned,
        Kind::SharedLoadBalancer,
        Kind::FloatingIpNotFound,
        Kind::FloatingIpInUse,
        Kind::Precondition,
        Kind::NotInTheCloud,
        Kind::OpenStackError,
        Kind::OpenStackAuth,
        Kind::LoadBalancerError,
        Kind::OpenStackUnreachable,
        Kind::OpenStackConfig,
        Kind::WaitTimeout,
        Kind::DeadlineExceeded,
        Kind::Internal,
    ];

    /// The table.
    pub const fn class(self) -> Class {
        use tonic::Code as G;
        let (slug, title, status, grpc, retryable) = match self {
            Kind::InvalidObject => (
                "invalid-object",
                "Invalid Kubernetes object",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::InvalidService => (
                "invalid-service",
                "Invalid Service",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::InvalidJson => (
                "invalid-json",
                "Invalid JSON",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::InvalidQuery => (
                "invalid-query",
                "Invalid query parameter",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::InvalidEvent => (
                "invalid-event",
                "Invalid event",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::InvalidSync => (
                "invalid-sync",
                "Invalid sync request",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::InvalidConfig => (
                "invalid-config",
                "Invalid configuration",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::DuplicateObject => (
                "duplicate-object",
                "Duplicate object",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::UnreadableBody => (
                "unreadable-body",
                "Unreadable request body",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::UnreadableFile => (
                "unreadable-file",
                "Cannot read input",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::TooLarge => (
                "too-large",
                "Request body too large",
                413,
                G::InvalidArgument,
                false,
            ),
            Kind::Unsupported => (
                "unsupported",
                "Not supported by this cloud",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::UnknownReference => (
                "unknown-reference",
                "The annotation names nothing in the cloud",
                400,
                G::InvalidArgument,
                false,
            ),
            Kind::Unauthenticated => (
                "unauthenticated",
                "Unauthenticated",
                401,
                G::Unauthenticated,
                false,
            ),
            Kind::Forbidden => ("forbidden", "Forbidden", 403, G::PermissionDenied, false),
            Kind::ForbiddenReference => (
                "forbidden-reference",
                "The Service's namespace may not use what it names",
                403,
                G::PermissionDenied,
                false,
            ),
            Kind::ReferenceInUse => (
                "reference-in-use",
                "What the Service names is in use by another",
                409,
                G::FailedPrecondition,
                false,
            ),
            Kind::NotFound => ("not-found", "No load balancer", 404, G::NotFound, false),
            Kind::NoRoute => ("no-route", "No such path", 404, G::NotFound, false),
            Kind::NotOwned => (
                "not-owned",
                "Owned by someone else",
                409,
                G::AlreadyExists,
                false,
            ),
            Kind::SharedLoadBalancer => (
                "shared-load-balancer",
                "The shared load balancer cannot take this",
                409,
                G::FailedPrecondition,
                false,
            ),
            Kind::FloatingIpNotFound => (
                "floating-ip-not-found",
                "Floating IP not found",
                409,
                G::FailedPrecondition,
                false,
            ),
            Kind::FloatingIpInUse => (
                "floating-ip-in-use",
                "Floating IP in use",
                409,
                G::FailedPrecondition,
                false,
            ),
            Kind::Precondition => (
                "precondition",
                "OpenStack is not ready for this",
                409,
                G::FailedPrecondition,
                true,
            ),
            Kind::NotInTheCloud => (
                "not-in-the-cloud",
                "Not found in the cloud",
                409,
                G::FailedPrecondition,
                true,
            ),
            Kind::OpenStackError => (
                "openstack-error",
                "OpenStack answered an error",
                502,
                G::Unavailable,
                true,
            ),
            Kind::OpenStackAuth => (
                "openstack-auth",
                "OpenStack refused the credentials",
                502,
                G::Unavailable,
                false,
            ),
            Kind::LoadBalancerError => (
                "load-balancer-error",
                "The load balancer went to ERROR",
                502,
                G::Unavailable,
                true,
            ),
            Kind::OpenStackUnreachable => (
                "openstack-unreachable",
                "OpenStack unreachable",
                503,
                G::Unavailable,
                true,
            ),
            Kind::OpenStackConfig => (
                "openstack-config",
                "OpenStack not usable as configured",
                503,
                G::Unavailable,
                false,
            ),
            Kind::WaitTimeout => (
                "wait-timeout",
                "Timed out waiting for OpenStack",
                504,
                G::DeadlineExceeded,
                true,
            ),
            Kind::DeadlineExceeded => (
                "deadline-exceeded",
                "The request's deadline passed",
                504,
                G::DeadlineExceeded,
                true,
            ),
            Kind::Internal => ("internal", "Internal error", 500, G::Internal, true),
        };
        Class {
            slug,
            title,
            status,
            grpc,
            retryable,
        }
    }

    /// The `type` URN of a problem of this kind.
    pub fn urn(self) -> String {
        format!("{TYPE_PREFIX}{}", self.class().slug)
    }

    /// The kind a problem's `type` URN names.
    pub fn of_type(urn: &str) -> Option<Kind> {
        let slug = urn.strip_prefix(TYPE_PREFIX)?;
        Kind::ALL.into_iter().find(|k| k.class().slug == slug)
    }
}

/// The kind of an OpenStack failure: the cloud said no (502, with its status
/// and request id), could not be reached or is configured wrong (503).
pub fn openstack_kind(e: &OpenStackError) -> Kind {
    match e {
        OpenStackError::Unreachable { .. } => Kind::OpenStackUnreachable,
        OpenStackError::Config(_) | OpenStackError::NoEndpoint { .. } => Kind::OpenStackConfig,
        OpenStackError::Auth { .. } => Kind::OpenStackAuth,
        OpenStackError::Api { .. } | OpenStackError::Decode { .. } => Kind::OpenStackError,
        OpenStackError::LoadBalancerError { .. } => Kind::LoadBalancerError,
        OpenStackError::WaitTimeout { .. } => Kind::WaitTimeout,
        OpenStackError::Precondition(_) => Kind::Precondition,
        OpenStackError::InvalidId(_) => Kind::OpenStackError,
        OpenStackError::Missing { .. } => Kind::NotInTheCloud,
    }
}

pub fn openstack_problem(e: &OpenStackError) -> Problem {
    let mut p = Problem::of(openstack_kind(e), e.to_string());
    if let OpenStackError::Api {
        status, request_id, ..
    } = e
    {
        p.openstack_status = Some(*status);
        p.openstack_request_id = request_id.clone();
    }
    p
}

/// `/readyz`: whatever keeps the cloud from being used, the server is not ready.
pub fn not_ready(e: &OpenStackError) -> Problem {
    let mut p = openstack_problem(e);
    p.status = Kind::OpenStackUnreachable.class().status;
    p
}

/// A request body the HTTP layer could not read: too large, or broken off.
pub fn body_problem(too_large: bool, detail: String) -> Problem {
    Problem::of(
        if too_large {
            Kind::TooLarge
        } else {
            Kind::UnreadableBody
        },
        detail,
    )
}

/// Every error of a request, as the problem users see.
pub fn problem(e: &ReconcileError) -> Problem {
    match e {
        ReconcileError::Input(i) => Problem::from(i),
        ReconcileError::Translate(t) => Problem::from(t),
        ReconcileError::Plan(p) => Problem::from(p),
        ReconcileError::OpenStack(o) => openstack_problem(o),
        ReconcileError::UnknownReference { annotation, .. } => {
            Problem::of(Kind::UnknownReference, e.to_string())
                .with_field(annotation_field(annotation))
        }
        ReconcileError::Reference {
            kind,
            field,
            message,
        } => Problem::of(*kind, message.clone()).with_field(field.clone()),
        ReconcileError::Deadline { .. } => Problem::of(Kind::DeadlineExceeded, e.to_string()),
        ReconcileError::NotFound(s) => {
            Problem::of(Kind::NotFound, format!("no load balancer for Service {s}"))
        }
    }
}

impl From<&InputError> for Problem {
    fn from(e: &InputError) -> Self {
        let mut p = Problem::of(Kind::InvalidObject, e.to_string());
        p.file = Some(e.origin.clone());
        p.object = e.object.clone();
        p.field = e.field.clone();
        p
    }
}

impl From<&TranslateError> for Problem {
    fn from(e: &TranslateError) -> Self {
        let kind = match e {
            TranslateError::Forbidden { .. } => Kind::ForbiddenReference,
            _ => Kind::InvalidService,
        };
        let mut p = Problem::of(kind, e.to_string());
        p.field = Some(e.field_path());
        p
    }
}

impl From<&PlanError> for Problem {
    fn from(e: &PlanError) -> Self {
        let kind = match e {
            PlanError::NotOwned { .. } => Kind::NotOwned,
            PlanError::FloatingIpNotFound { .. } => Kind::FloatingIpNotFound,
            PlanError::FloatingIpInUse { .. } | PlanError::FloatingIpTaken { .. } => {
                Kind::FloatingIpInUse
            }
            PlanError::ShareForbidden { .. } => Kind::ForbiddenReference,
            PlanError::Unsupported { .. } => Kind::Unsupported,
            PlanError::MetricsOfShared { .. } => Kind::InvalidService,
            PlanError::PortTaken { .. }
            | PlanError::SharedFull { .. }
            | PlanError::SharedRecreate { .. }
            | PlanError::NamedRecreate { .. }
            | PlanError::SharedSecurityGroup { .. }
            | PlanError::SharedInError { .. }
            | PlanError::KeptWithSharers { .. } => Kind::SharedLoadBalancer,
        };
        let mut p = Problem::of(kind, e.to_string());
        p.field = match e {
            PlanError::FloatingIpNotFound { .. }
            | PlanError::FloatingIpInUse { .. }
            | PlanError::FloatingIpTaken { .. } => Some("service.spec.loadBalancerIP".into()),
            PlanError::PortTaken { .. } => Some("service.spec.ports".into()),
            PlanError::MetricsOfShared { .. } => Some(annotation_field(
                crate::translate::annotation::PROMETHEUS_LISTENER_PORT,
            )),
            PlanError::SharedFull { .. }
            | PlanError::NamedRecreate { .. }
            | PlanError::ShareForbidden { .. } => Some(annotation_field(
                crate::translate::annotation::LOAD_BALANCER_ID,
            )),
            _ => None,
        };
        p
    }
}

/// A health endpoint's status: 200 when ready, else 503, as `/readyz`
/// answers a cloud it cannot use.
pub fn readiness_status(ready: bool) -> u16 {
    if ready {
        success_status(true)
    } else {
        Kind::OpenStackUnreachable.class().status
    }
}

/// Whether an HTTP status means a success still converging (202) or done (200).
pub fn success_status(converged: bool) -> u16 {
    if converged { 200 } else { 202 }
}

/// Counts a problem answered (REST or gRPC) in `/metrics`, by type and
/// retryability, and logs the server's and the cloud's failures.
pub fn record(p: &Problem) {
    let class = p.kind.class();
    crate::metrics::global().problem(class.slug, class.retryable);
    if p.status >= 500 {
        tracing::warn!(problem = class.slug, detail = %p.shown_detail(), "request failed");
    }
}

/// The gRPC status of a problem: its kind's code, with the field in the message.
pub fn grpc_status(p: &Problem) -> tonic::Status {
    record(p);
    let code = p.kind.class().grpc;
    let shown = p.shown_detail();
    let detail = match &p.field {
        Some(f) => format!("{shown} (field {})", crate::echo::bounded(f, PART_MAX)),
        None => shown.into_owned(),
    };
    tonic::Status::new(code, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_quotes_little_of_its_input_and_stays_under_4_kb() {
        for v in [
            "\"".repeat(300_000),
            "k".repeat(300_000),
            "\\é".repeat(100_000),
        ] {
            let mut p = Problem::of(
                Kind::InvalidService,
                format!("{} is not it; {v}", crate::echo::quote(&v)),
            )
            .with_field(v.clone())
            .with_object(v.clone())
            .with_file(v.clone())
            .titled(&v);
            p.openstack_request_id = Some(v.clone());
            let json = p.to_json();
            assert!(json.len() < 4096, "{}", json.len());
            assert!(!json.contains(&"k".repeat(crate::echo::QUOTE_MAX + 1)));
            assert!(grpc_status(&p).message().len() < 4096);
        }
    }

    #[test]
    fn every_kind_has_its_own_type_and_a_status_that_agrees_with_its_code() {
        let mut slugs = std::collections::HashSet::new();
        for kind in Kind::ALL {
            let c = kind.class();
            assert!(slugs.insert(c.slug), "{} twice", c.slug);
            assert_eq!(Kind::of_type(&kind.urn()), Some(kind));
            assert_eq!(
                serde_json::to_value(Problem::of(kind, "d")).unwrap()["type"],
                kind.urn()
            );
            // Input errors are never worth retrying unchanged; the cloud's may be.
            if (400..500).contains(&c.status) && c.status != 409 {
                assert!(!c.retryable, "{}", c.slug);
            }
            let expected = match c.status {
                400 | 413 => tonic::Code::InvalidArgument,
                401 => tonic::Code::Unauthenticated,
                403 => tonic::Code::PermissionDenied,
                404 => tonic::Code::NotFound,
                409 if kind == Kind::NotOwned => tonic::Code::AlreadyExists,
                409 => tonic::Code::FailedPrecondition,
                500 => tonic::Code::Internal,
                502 | 503 => tonic::Code::Unavailable,
                504 => tonic::Code::DeadlineExceeded,
                s => panic!("{} has status {s}", c.slug),
            };
            assert_eq!(c.grpc, expected, "{}", c.slug);
        }
    }

    #[test]
    fn problems_map_to_grpc_codes_with_the_field_in_the_message() {
        let mut p = Problem::of(Kind::InvalidService, "bad port");
        p.field = Some("service.spec.ports[0]".into());
        let s = grpc_status(&p);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "bad port (field service.spec.ports[0])");
        let s = grpc_status(&Problem::of(Kind::NotOwned, "d"));
        assert_eq!(s.code(), tonic::Code::AlreadyExists);
        let s = grpc_status(&Problem::of(Kind::WaitTimeout, "d"));
        assert_eq!(s.code(), tonic::Code::DeadlineExceeded);
    }

    #[test]
    fn a_cloud_that_refuses_readiness_is_503_whatever_the_failure() {
        let e = OpenStackError::Auth {
            url: "u".into(),
            status: 401,
            message: "no".into(),
        };
        assert_eq!(openstack_problem(&e).status, 502);
        let p = not_ready(&e);
        assert_eq!(p.status, 503);
        assert_eq!(p.kind, Kind::OpenStackAuth);
    }
}
