//! What REST and gRPC share: the app's state, the namespace check a
//! request's caller must pass, and the encoding of a sync's answer.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth;
use super::error::{ProblemResponse, converged_status};
use crate::error::Kind;
use crate::error::Problem;
use crate::reconcile::Reconciler;
use crate::reconcile::events::Answer;
use crate::reconcile::events::Outcome;
use crate::reconcile::sync::SyncReport;

/// Request bodies above this are refused with 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

pub struct AppState {
    pub reconciler: Reconciler,
    pub body_limit: usize,
    /// `None`: no authentication.
    pub tokens: Option<auth::Tokens>,
}

/// 403 unless the caller may touch `namespace`.
pub(crate) fn authorize(caller: &auth::Caller, namespace: &str) -> Result<(), ProblemResponse> {
    if caller.may_touch(namespace) {
        return Ok(());
    }
    let p = Problem::of(
        Kind::Forbidden,
        format!("token {} may not touch namespace {namespace}", caller.name),
    );
    Err(ProblemResponse(Box::new(p)))
}

/// The namespaces a sync covers: those named (each one a namespace name the
/// caller may touch), else all the caller may touch (None: every one).
pub(crate) fn sync_scope(
    caller: &auth::Caller,
    namespaces: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ProblemResponse> {
    match namespaces {
        Some(list) => {
            for ns in &list {
                crate::model::DnsLabel::try_new(ns).map_err(|_| {
                    ProblemResponse::from(
                        Problem::of(Kind::InvalidSync, format!("{ns:?} is not a namespace name"))
                            .with_field("namespaces"),
                    )
                })?;
                authorize(caller, ns)?;
            }
            Ok(Some(list))
        }
        None => Ok(caller.namespaces().map(<[String]>::to_vec)),
    }
}

/// A sync's answer as JSON (REST's body; gRPC's Struct).
pub(crate) fn sync_json(report: &SyncReport) -> Value {
    let services: Vec<Value> = report
        .services
        .iter()
        .map(|item| {
            let mut v = json!({"service": item.service});
            put_outcome(&mut v, &item.outcome);
            v
        })
        .collect();
    json!({
        "dryRun": report.dry_run,
        "services": services,
        "orphans": report.orphans,
        "notes": report.notes,
    })
}

/// An event's or sync item's outcome into its JSON: `status` and `result`,
/// or `status` and `problem` (counted in `/metrics` as any problem answered).
pub(crate) fn put_outcome(v: &mut Value, outcome: &Outcome) {
    match outcome {
        Ok(answer) => {
            v["status"] = json!(answer_status(answer).as_u16());
            v["result"] = answer.to_json();
        }
        Err(p) => {
            crate::error::record(p);
            v["status"] = json!(p.status);
            v["problem"] = serde_json::to_value(&**p).unwrap_or(Value::Null);
        }
    }
}

/// An event's or sync item's HTTP status: 202 while it still converges.
pub(crate) fn answer_status(answer: &Answer) -> StatusCode {
    converged_status(answer.converged())
}

/// A Gateway request's body, each namespace it speaks for checked against
/// the token: a namespace token speaks for no other namespace's route,
/// Service, EndpointSlice, Secret or ReferenceGrant, and only a token of
/// every namespace may say what labels namespaces carry (`namespaces`,
/// which listeners' selectors read).
pub(crate) fn gateway_input(
    caller: &auth::Caller,
    value: serde_json::Value,
) -> Result<crate::reconcile::gateway::GatewayInput, ProblemResponse> {
    let input = crate::reconcile::gateway::GatewayInput::from_json(value)
        .map_err(|e| ProblemResponse(Box::new(Problem::from(&e))))?;
    for (field, namespace) in input.namespaces_named() {
        authorize(caller, &namespace).map_err(|p| {
            let problem = *p.0;
            ProblemResponse(Box::new(problem.with_field(&field)))
        })?;
    }
    if !input.namespaces.is_empty() && caller.namespaces().is_some() {
        let p = Problem::of(
            Kind::Forbidden,
            format!(
                "token {} may not say what labels namespaces carry: only a token of every namespace sends `namespaces`",
                caller.name
            ),
        )
        .with_field("namespaces");
        return Err(ProblemResponse(Box::new(p)));
    }
    Ok(input)
}

/// A Gateway named by a path: its namespace a DNS-1123 label, its name a
/// DNS-1123 subdomain.
pub(crate) fn named_gateway(namespace: &str, name: &str) -> Result<(), ProblemResponse> {
    let bad = |field: &str, message: String| {
        ProblemResponse(Box::new(
            Problem::of(Kind::InvalidObject, message).with_field(field),
        ))
    };
    crate::model::DnsLabel::try_new(namespace).map_err(|_| {
        bad(
            "path.namespace",
            format!("{namespace:?} is not a DNS-1123 label"),
        )
    })?;
    if name.is_empty() || name.len() > 253 || !crate::names::is_dns_name(name) {
        return Err(bad(
            "path.name",
            format!("{name:?} is not a DNS-1123 subdomain"),
        ));
    }
    Ok(())
}
