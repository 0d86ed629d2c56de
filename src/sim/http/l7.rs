//! Octavia's `/v2/lbaas/l7policies` and their `/rules` over the simulated
//! cloud: the checks in Octavia 19's order, the load balancer's lock, and
//! positions kept 1..n per listener.

use crate::sim::json::{ApiError, ApiKind, ApiResult, Body, Query, parse_body, respond};
use crate::sim::l7::*;
use crate::sim::octavia::{
    ACTIVE, Meta, Octavia, PENDING_DELETE, PENDING_UPDATE, immutable, pool_fits_listener,
};
use crate::sim::state::SimState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

type Api = Extension<ApiKind>;
type Sim = State<Arc<SimState>>;

/// The routes, nested in the load balancer API's router.
pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/l7policies", get(list_policies).post(create_policy))
        .route(
            "/l7policies/{id}",
            get(show_policy).put(update_policy).delete(delete_policy),
        )
        .route("/l7policies/{id}/rules", get(list_rules).post(create_rule))
        .route(
            "/l7policies/{id}/rules/{rule}",
            get(show_rule).put(update_rule).delete(delete_rule),
        )
}

fn policy_not_found(id: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", format!("L7 Policy {id} not found."))
}
/// The rules' routes name the policy so (Octavia's `_lookup`).
fn parent_not_found(id: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", format!("L7Policy {id} not found."))
}
fn rule_not_found(id: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", format!("L7 Rule {id} not found."))
}
fn policy_immutable(id: &str) -> ApiError {
    ApiError::conflict(
        "StateInvalid",
        format!("L7Policy {id} is immutable and cannot be updated."),
    )
}

fn policy_index(o: &Octavia, id: &str) -> Option<usize> {
    o.l7policies.iter().position(|p| p.meta.id == id)
}

/// The load balancer under a listener, which must be ACTIVE to take a write.
fn listener_lb(o: &Octavia, listener_id: &str) -> Result<String, ApiError> {
    let l = o
        .listeners
        .iter()
        .find(|l| l.meta.id == listener_id)
        .ok_or_else(|| {
            ApiError::not_found(
                "EntityNotFound",
                format!("Listener {listener_id} not found."),
            )
        })?;
    Ok(l.lb_id.clone())
}

fn check_active(o: &Octavia, lb_id: &str) -> Result<(), ApiError> {
    let lb = &o.load_balancers[o.lb_index(lb_id)?];
    if lb.meta.provisioning == ACTIVE {
        Ok(())
    } else {
        Err(immutable(lb_id))
    }
}

/// A pool a policy sends to: it exists (404), takes the listener's traffic
/// (400), and is on the listener's load balancer (404, as Octavia's DB check).
fn check_pool(o: &Octavia, pool_id: &str, listener_id: &str) -> Result<(), ApiError> {
    let not_found = || ApiError::not_found("EntityNotFound", format!("Pool {pool_id} not found."));
    let pool = o
        .pools
        .iter()
        .find(|p| p.meta.id == pool_id)
        .ok_or_else(not_found)?;
    let l = o
        .listeners
        .iter()
        .find(|l| l.meta.id == listener_id)
        .ok_or_else(not_found)?;
    if !pool_fits_listener(&l.protocol, &pool.protocol) {
        return Err(ApiError::bad_request(format!(
            "Validation failure: The pool protocol '{}' is invalid while the listener protocol is '{}'.",
            pool.protocol, l.protocol
        )));
    }
    if pool.lb_id != l.lb_id {
        return Err(not_found());
    }
    Ok(())
}

async fn list_policies(State(s): Sim, Extension(api): Api, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    let listeners = query.values("listener_id");
    let cloud = s.cloud();
    let o = &cloud.octavia;
    let items = query.apply(
        o.l7policies
            .iter()
            .filter(|p| {
                listeners
                    .as_ref()
                    .is_none_or(|l| l.contains(&p.listener_id.as_str()))
            })
            .map(|p| o.policy_json(p))
            .collect(),
    );
    respond(
        api,
        Ok((
            StatusCode::OK,
            json!({"l7policies": items, "l7policies_links": []}),
        )),
    )
}

async fn show_policy(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    respond(
        api,
        policy_index(o, &id)
            .map(|i| {
                (
                    StatusCode::OK,
                    json!({"l7policy": o.policy_json(&o.l7policies[i])}),
                )
            })
            .ok_or_else(|| policy_not_found(&id)),
    )
}

async fn create_policy(State(s): Sim, Extension(api): Api, body: Bytes) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(&body, "l7policy", &POLICY_FIELDS)?;
            let listener_id = b.required_string("listener_id")?;
            let request = RedirectRequest::parse(&b)?;
            if request.action.is_none() {
                return Err(ApiError::bad_request(
                    "Invalid input for field/attribute action. Value: 'None'. Mandatory field missing.",
                ));
            }
            let position = b.integer("position", 1, MAX_POSITION)?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let lb_id = listener_lb(o, &listener_id)?;
            let protocol = o
                .listeners
                .iter()
                .find(|l| l.meta.id == listener_id)
                .map(|l| l.protocol.clone())
                .unwrap_or_default();
            if protocol == "PROMETHEUS" {
                return Err(ApiError::bad_request(
                    "Protocol PROMETHEUS listeners cannot have child objects.",
                ));
            }
            if let Some(Some(pool)) = &request.pool_id {
                check_pool(o, pool, &listener_id)?;
            }
            let redirect = request.resolve(None)?;
            check_active(o, &lb_id)?;
            let provider = o.load_balancers[o.lb_index(&lb_id)?].provider.clone();
            if !matches!(protocol.as_str(), "HTTP" | "TERMINATED_HTTPS") {
                return Err(unsupported_listener(&provider, &protocol));
            }
            // Octavia 19 hands inline rules to its ORM as dicts and fails.
            if !s.config.nested_creates
                && b.value("rules")
                    .and_then(Value::as_array)
                    .is_some_and(|r| !r.is_empty())
            {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "'dict' object has no attribute '_sa_instance_state'",
                ));
            }
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let meta = Meta::new(&b)?;
            let id = meta.id.clone();
            o.l7policies.push(L7Policy {
                meta,
                listener_id,
                redirect,
                position: MAX_POSITION,
            });
            o.place_policy(&id, position.unwrap_or(MAX_POSITION));
            let i = policy_index(o, &id).ok_or_else(|| policy_not_found(&id))?;
            Ok((
                StatusCode::CREATED,
                json!({"l7policy": o.policy_json(&o.l7policies[i])}),
            ))
        })(),
    )
}

async fn update_policy(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(&body, "l7policy", &POLICY_UPDATE_FIELDS)?;
            if b.map.is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid L7 Policy arguments: Invalid update options",
                ));
            }
            let request = RedirectRequest::parse(&b)?;
            let position = b.integer("position", 1, MAX_POSITION)?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let i = policy_index(o, &id).ok_or_else(|| policy_not_found(&id))?;
            let listener_id = o.l7policies[i].listener_id.clone();
            let redirect = request.resolve(Some(&o.l7policies[i].redirect))?;
            if let Some(Some(pool)) = &request.pool_id {
                check_pool(o, pool, &listener_id)?;
            }
            let lb_id = listener_lb(o, &listener_id)?;
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let p = &mut o.l7policies[i];
            p.meta.update(&b)?;
            p.redirect = redirect;
            if let Some(position) = position {
                o.place_policy(&id, position);
            }
            Ok((
                StatusCode::OK,
                json!({"l7policy": o.policy_json(&o.l7policies[i])}),
            ))
        })(),
    )
}

async fn delete_policy(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let i = policy_index(o, &id)
            .filter(|i| o.l7policies[*i].meta.provisioning != PENDING_DELETE)
            .ok_or_else(|| policy_not_found(&id))?;
        let lb_id = listener_lb(o, &o.l7policies[i].listener_id.clone())?;
        o.begin_write(&lb_id, s.config.provisioning_delay)?;
        o.l7policies[i].meta.provisioning = PENDING_DELETE;
        o.l7policies[i].meta.updated_at = Some(crate::sim::common::timestamp());
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}

/// A rule answer: Octavia's rules have no name nor description.
fn rule_view(r: &L7Rule) -> Value {
    let mut v = Octavia::rule_json(r);
    if let Some(m) = v.as_object_mut() {
        m.remove("name");
        m.remove("description");
    }
    v
}

async fn list_rules(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    if policy_index(o, &id).is_none() {
        return respond(api, Err(parent_not_found(&id)));
    }
    let items = Query::parse(q.as_deref()).apply(
        o.l7rules
            .iter()
            .filter(|r| r.policy_id == id)
            .map(rule_view)
            .collect(),
    );
    respond(
        api,
        Ok((StatusCode::OK, json!({"rules": items, "rules_links": []}))),
    )
}

async fn show_rule(
    State(s): Sim,
    Extension(api): Api,
    Path((id, rule)): Path<(String, String)>,
) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    let result = (|| -> ApiResult {
        policy_index(o, &id).ok_or_else(|| parent_not_found(&id))?;
        let r = o
            .l7rules
            .iter()
            .find(|r| r.meta.id == rule && r.policy_id == id)
            .ok_or_else(|| rule_not_found(&rule))?;
        Ok((StatusCode::OK, json!({"rule": rule_view(r)})))
    })();
    respond(api, result)
}

/// The checks before a rule is written: the policy ACTIVE, then its load
/// balancer; both locked on success, the policy as PENDING_UPDATE.
fn lock_policy(o: &mut Octavia, i: usize, delay: std::time::Duration) -> Result<(), ApiError> {
    if o.l7policies[i].meta.provisioning != ACTIVE {
        return Err(policy_immutable(&o.l7policies[i].meta.id));
    }
    let lb_id = listener_lb(o, &o.l7policies[i].listener_id.clone())?;
    o.begin_write(&lb_id, delay)?;
    o.l7policies[i].meta.provisioning = PENDING_UPDATE;
    Ok(())
}

async fn create_rule(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let i = policy_index(o, &id).ok_or_else(|| parent_not_found(&id))?;
            let b = Body::wrapped(&body, "rule", &RULE_FIELDS)?;
            let kind = b.choice("type", &RULE_TYPES)?;
            let compare = b.choice("compare_type", &COMPARE_TYPES)?;
            let (Some(kind), Some(compare)) = (kind, compare) else {
                let missing = if b.value("type").is_none() {
                    "type"
                } else {
                    "compare_type"
                };
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute {missing}. Value: 'None'. Mandatory field missing."
                )));
            };
            let value = b.required_string("value")?;
            let key = b.string("key")?;
            check_rule(&kind, &compare, key.as_deref(), &value)?;
            let invert = b.boolean("invert")?.unwrap_or(false);
            if o.l7rules.iter().filter(|r| r.policy_id == id).count() >= MAX_RULES {
                return Err(ApiError::conflict(
                    "TooManyL7RulesOnL7Policy",
                    format!("Too many rules on L7 policy {id}"),
                ));
            }
            lock_policy(o, i, s.config.provisioning_delay)?;
            let rule = L7Rule {
                meta: Meta::new(&b)?,
                policy_id: id.clone(),
                key: key.filter(|_| uses_key(&kind)),
                kind,
                compare_type: compare,
                value,
                invert,
            };
            let view = rule_view(&rule);
            o.l7rules.push(rule);
            Ok((StatusCode::CREATED, json!({"rule": view})))
        })(),
    )
}

async fn update_rule(
    State(s): Sim,
    Extension(api): Api,
    Path((id, rule)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let i = policy_index(o, &id).ok_or_else(|| parent_not_found(&id))?;
            let ri = o
                .l7rules
                .iter()
                .position(|r| r.meta.id == rule && r.policy_id == id)
                .ok_or_else(|| rule_not_found(&rule))?;
            let b = Body::wrapped(&body, "rule", &RULE_FIELDS)?;
            let current = &o.l7rules[ri];
            let kind = b
                .choice("type", &RULE_TYPES)?
                .unwrap_or(current.kind.clone());
            let compare = b
                .choice("compare_type", &COMPARE_TYPES)?
                .unwrap_or(current.compare_type.clone());
            let value = b.string("value")?.unwrap_or(current.value.clone());
            let key = if b.has("key") {
                b.string("key")?
            } else {
                current.key.clone()
            };
            check_rule(&kind, &compare, key.as_deref(), &value)?;
            let invert = b.boolean("invert")?.unwrap_or(if b.has("invert") {
                false
            } else {
                current.invert
            });
            lock_policy(o, i, s.config.provisioning_delay)?;
            let r = &mut o.l7rules[ri];
            r.meta.update(&b)?;
            r.key = key.filter(|_| uses_key(&kind));
            r.kind = kind;
            r.compare_type = compare;
            r.value = value;
            r.invert = invert;
            Ok((StatusCode::OK, json!({"rule": rule_view(r)})))
        })(),
    )
}

async fn delete_rule(
    State(s): Sim,
    Extension(api): Api,
    Path((id, rule)): Path<(String, String)>,
) -> Response {
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let i = policy_index(o, &id).ok_or_else(|| parent_not_found(&id))?;
        let ri = o
            .l7rules
            .iter()
            .position(|r| {
                r.meta.id == rule && r.policy_id == id && r.meta.provisioning != PENDING_DELETE
            })
            .ok_or_else(|| rule_not_found(&rule))?;
        lock_policy(o, i, s.config.provisioning_delay)?;
        o.l7rules[ri].meta.provisioning = PENDING_DELETE;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}
