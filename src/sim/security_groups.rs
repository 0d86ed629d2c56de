//! Neutron's security groups and their rules, as much as a VIP security
//! group needs: list (filters), create (with Neutron's two default egress
//! rules), show, delete (409 `SecurityGroupInUse` while a port has it), and
//! rules created one by one or in bulk, deleted by id.

use serde_json::{Value, json};

use super::json::ApiKind;
use super::keystone::PROJECT_ID;

pub(crate) const N: ApiKind = ApiKind::Neutron;

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule>,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
}

pub(crate) fn rule_json(group: &str, r: &Rule) -> Value {
    json!({"id": r.id, "security_group_id": group, "direction": r.direction,
        "ethertype": r.ethertype, "protocol": r.protocol, "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": null, "project_id": PROJECT_ID, "tenant_id": PROJECT_ID})
}

pub(crate) fn group_json(g: &SecurityGroup) -> Value {
    let rules: Vec<Value> = g.rules.iter().map(|r| rule_json(&g.id, r)).collect();
    json!({"id": g.id, "name": g.name, "description": g.description,
        "security_group_rules": rules, "stateful": true, "tags": [],
        "project_id": PROJECT_ID, "tenant_id": PROJECT_ID,
        "created_at": g.created_at, "updated_at": g.created_at, "revision_number": 1})
}
