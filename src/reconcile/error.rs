//! The reconciler's errors, before they are classified for users
//! (`crate::error`).

use crate::k8s::InputError;
use crate::openstack::OpenStackError;
use crate::plan::PlanError;
use crate::translate::TranslateError;

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
    /// An annotation names a cloud object that does not exist.
    #[error("annotation {annotation}: {kind} {id} does not exist in the cloud")]
    UnknownReference {
        annotation: &'static str,
        kind: &'static str,
        id: String,
    },
}

impl ReconcileError {
    /// A cloud object named by `annotation` is missing: the user's mistake.
    pub(super) fn named_by(annotation: &'static str) -> impl Fn(OpenStackError) -> ReconcileError {
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
