//! Neutron's security group routes over the simulated cloud.

use crate::sim::common::{new_id, timestamp};
use crate::sim::json::{ApiError, Body, Query, parse_body, respond};
use crate::sim::security_groups::*;
use crate::sim::state::SimState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use ipnet::IpNet;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v2.0/security-groups", get(list).post(create))
        .route("/v2.0/security-groups/{id}", get(show).delete(delete))
        .route("/v2.0/security-group-rules", post(create_rules))
        .route(
            "/v2.0/security-group-rules/{id}",
            axum::routing::delete(delete_rule),
        )
}

async fn list(State(s): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    let cloud = s.cloud();
    let all = cloud
        .neutron
        .security_groups
        .iter()
        .map(group_json)
        .collect();
    let items = Query::parse(q.as_deref()).apply(all);
    respond(N, Ok((StatusCode::OK, json!({ "security_groups": items }))))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "SecurityGroupNotFound",
        format!("Security group {id} does not exist"),
    )
}

async fn show(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let found = cloud.neutron.security_groups.iter().find(|g| g.id == id);
    respond(
        N,
        found
            .map(|g| (StatusCode::OK, json!({"security_group": group_json(g)})))
            .ok_or_else(|| not_found(&id)),
    )
}

async fn create(State(s): State<Arc<SimState>>, body: Bytes) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        let b = Body::wrapped(
            &body,
            "security_group",
            &["name", "description", "stateful"],
        )?;
        let egress = |ethertype: &str| Rule {
            id: new_id(),
            direction: "egress".into(),
            ethertype: ethertype.into(),
            protocol: None,
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
        };
        let group = SecurityGroup {
            id: new_id(),
            name: b.string("name")?.unwrap_or_default(),
            description: b.string("description")?.unwrap_or_default(),
            rules: vec![egress("IPv4"), egress("IPv6")],
            created_at: timestamp(),
        };
        let answer = group_json(&group);
        s.cloud().neutron.security_groups.push(group);
        Ok((StatusCode::CREATED, json!({ "security_group": answer })))
    })();
    respond(N, result)
}

async fn delete(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let n = &mut cloud.neutron;
    let result = if !n.security_groups.iter().any(|g| g.id == id) {
        Err(not_found(&id))
    } else if n.ports.iter().any(|p| p.security_groups.contains(&id)) {
        Err(ApiError::conflict(
            "SecurityGroupInUse",
            format!("Security Group {id} in use."),
        ))
    } else {
        n.security_groups.retain(|g| g.id != id);
        Ok((StatusCode::NO_CONTENT, Value::Null))
    };
    respond(N, result)
}

/// One rule (`security_group_rule`) or many (`security_group_rules`).
async fn create_rules(State(s): State<Arc<SimState>>, body: Bytes) -> Response {
    let result = (|| {
        let body = parse_body(&body)?;
        let (items, bulk): (Vec<&Value>, bool) = match body.get("security_group_rules") {
            Some(Value::Array(items)) => (items.iter().collect(), true),
            _ => (
                vec![body.get("security_group_rule").unwrap_or(&Value::Null)],
                false,
            ),
        };
        let mut cloud = s.cloud();
        let groups = &mut cloud.neutron.security_groups;
        let mut made = Vec::new();
        for item in items {
            let b = Body::object(
                item,
                "security_group_rule",
                &[
                    "security_group_id",
                    "direction",
                    "ethertype",
                    "protocol",
                    "port_range_min",
                    "port_range_max",
                    "remote_ip_prefix",
                    "description",
                ],
            )?;
            let group_id = b.required_string("security_group_id")?;
            let direction = b
                .choice("direction", &["ingress", "egress"])?
                .ok_or_else(|| ApiError::bad_request("Invalid input for direction."))?;
            let ethertype = b
                .choice("ethertype", &["IPv4", "IPv6"])?
                .unwrap_or_else(|| "IPv4".into());
            let remote = b.string("remote_ip_prefix")?;
            if let Some(r) = &remote {
                let net: IpNet = r.parse().map_err(|_| {
                    ApiError::bad_request(format!("'{r}' is not a valid IP prefix"))
                })?;
                if (net.addr().is_ipv4()) != (ethertype == "IPv4") {
                    return Err(ApiError::bad_request(format!(
                        "Conflicting value ethertype {ethertype} for CIDR {r}"
                    )));
                }
            }
            let rule = Rule {
                id: new_id(),
                direction,
                ethertype,
                protocol: b.string("protocol")?,
                port_range_min: b.integer("port_range_min", 0, 65535)?,
                port_range_max: b.integer("port_range_max", 0, 65535)?,
                remote_ip_prefix: remote,
            };
            let group = groups
                .iter_mut()
                .find(|g| g.id == group_id)
                .ok_or_else(|| not_found(&group_id))?;
            made.push(rule_json(&group.id, &rule));
            group.rules.push(rule);
        }
        Ok(if bulk {
            (StatusCode::CREATED, json!({ "security_group_rules": made }))
        } else {
            (
                StatusCode::CREATED,
                json!({ "security_group_rule": made.remove(0) }),
            )
        })
    })();
    respond(N, result)
}

async fn delete_rule(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let mut found = false;
    for g in &mut cloud.neutron.security_groups {
        let before = g.rules.len();
        g.rules.retain(|r| r.id != id);
        found |= g.rules.len() != before;
    }
    let result = if found {
        Ok((StatusCode::NO_CONTENT, Value::Null))
    } else {
        Err(ApiError::not_found(
            "SecurityGroupRuleNotFound",
            format!("Security group rule {id} does not exist"),
        ))
    };
    respond(N, result)
}
