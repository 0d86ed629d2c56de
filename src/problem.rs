//! RFC 9457 problem details: the one error shape users see, on stderr from the
//! CLI and as `application/problem+json` from the APIs.

use serde::Serialize;

use crate::k8s::InputError;
use crate::plan::PlanError;
use crate::translate::TranslateError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Where the input came from (a file, `file[2]` for its third document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `Kind namespace/name` of the object at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Path of the offending field or annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The HTTP status OpenStack answered, when it answered an error.
    #[serde(rename = "openstackStatus", skip_serializing_if = "Option::is_none")]
    pub openstack_status: Option<u16>,
    /// OpenStack's `x-openstack-request-id` of the failed call.
    #[serde(rename = "openstackRequestId", skip_serializing_if = "Option::is_none")]
    pub openstack_request_id: Option<String>,
}

impl Problem {
    pub fn new(kind: &str, title: &str, status: u16, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:svc-lbaas:problem:{kind}"),
            title: title.to_string(),
            status,
            detail: detail.into(),
            file: None,
            object: None,
            field: None,
            openstack_status: None,
            openstack_request_id: None,
        }
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
        serde_json::to_string(self).unwrap_or_else(|_| self.detail.clone())
    }
}

impl From<&InputError> for Problem {
    fn from(e: &InputError) -> Self {
        let mut p = Problem::new(
            "invalid-object",
            "Invalid Kubernetes object",
            400,
            e.to_string(),
        );
        p.file = Some(e.origin.clone());
        p.object = e.object.clone();
        p.field = e.field.clone();
        p
    }
}

impl From<&TranslateError> for Problem {
    fn from(e: &TranslateError) -> Self {
        let mut p = Problem::new("invalid-service", "Invalid Service", 400, e.to_string());
        p.field = Some(e.field_path());
        p
    }
}

impl From<&PlanError> for Problem {
    fn from(e: &PlanError) -> Self {
        let (kind, title, status) = match e {
            PlanError::NotOwned { .. } => ("not-owned", "Owned by someone else", 409),
            PlanError::FloatingIpNotFound { .. } => {
                ("floating-ip-not-found", "Floating IP not found", 409)
            }
            PlanError::FloatingIpInUse { .. } => ("floating-ip-in-use", "Floating IP in use", 409),
            PlanError::Unsupported { .. } => ("unsupported", "Not supported by this cloud", 400),
        };
        let mut p = Problem::new(kind, title, status, e.to_string());
        if matches!(
            e,
            PlanError::FloatingIpNotFound { .. } | PlanError::FloatingIpInUse { .. }
        ) {
            p.field = Some("service.spec.loadBalancerIP".into());
        }
        p
    }
}
