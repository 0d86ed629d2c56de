//! What a Gateway becomes on Octavia (the translation's answer, pure data):
//! listeners one per (protocol, port), their L7 policies in position order
//! with ANDed rules, pools with members; and the statuses Gateway API
//! defines for the Gateway and each route.

use crate::gateway::api::{Condition, ParentReference, RouteGroupKind};
use crate::model::{ListenerProtocol, Member, PoolProtocol};
use serde::Serialize;
use std::collections::BTreeSet;

/// A Secret a listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKey {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignListener {
    pub name: String,
    #[schema(value_type = String)]
    pub protocol: ListenerProtocol,
    pub port: u16,
    /// The Gateway listeners (by name) this Octavia listener serves.
    pub gateway_listeners: Vec<String>,
    /// TERMINATED_HTTPS: the default certificate, then the SNI ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<SecretKey>,
    /// TCP, UDP and TLS passthrough: the one route's pool. HTTP listeners
    /// have none: a request no policy takes is answered 503 by Octavia.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pool: Option<String>,
    /// In position order (position = index + 1).
    #[serde(rename = "l7Policies", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<DesignPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignPolicy {
    pub action: PolicyAction,
    pub rules: Vec<DesignRule>,
    /// `Kind/namespace/name` of the route, its rule and match (for reading
    /// the answer; Octavia gets it as the policy's description).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicyAction {
    /// REDIRECT_TO_POOL, the pool by name.
    RedirectToPool {
        pool: String,
    },
    /// REDIRECT_TO_URL (a fixed URL) or REDIRECT_PREFIX (the request's path
    /// and query kept), with Octavia's redirect_http_code.
    RedirectToUrl {
        url: RedirectTarget,
        code: u16,
    },
    RedirectPrefix {
        prefix: RedirectTarget,
        code: u16,
    },
}

/// A redirect's URL; its host may be the Gateway's address, known once
/// Octavia has allocated the VIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedirectTarget {
    pub scheme: String,
    /// `None`: the Gateway's address.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// REDIRECT_TO_URL's path; empty for a prefix.
    pub path: String,
}

impl RedirectTarget {
    /// The URL Octavia is given, `address` standing for the Gateway's.
    pub fn render(&self, address: &str) -> String {
        let host = match &self.host {
            Some(h) => h.clone(),
            None if address.contains(':') => format!("[{address}]"),
            None => address.to_string(),
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{host}{port}{}", self.scheme, self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignRule {
    /// Octavia's rule type: HOST_NAME, PATH or HEADER.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// EQUAL_TO, STARTS_WITH or REGEX.
    pub compare_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
    pub invert: bool,
}

impl DesignRule {
    pub fn inverted(&self) -> DesignRule {
        DesignRule {
            invert: !self.invert,
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesignPool {
    pub name: String,
    #[schema(value_type = String)]
    pub protocol: PoolProtocol,
    /// Every backend's endpoints, weights spread as the route asks.
    pub members: BTreeSet<Member>,
}

/// The Gateway's status as Gateway API defines it (`addresses` filled once
/// the load balancer exists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[schema(value_type = Vec<Object>)]
    pub addresses: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    #[schema(value_type = Vec<Object>)]
    pub supported_kinds: Vec<RouteGroupKind>,
    pub attached_routes: i32,
    #[schema(value_type = Vec<Object>)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    #[schema(value_type = Object)]
    pub parent_ref: ParentReference,
    pub controller_name: String,
    #[schema(value_type = Vec<Object>)]
    pub conditions: Vec<Condition>,
}

/// A route's outcome: which it is and its status for this Gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteOutcome {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub status: RouteStatus,
}

/// The whole translation of one Gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Design {
    pub listeners: Vec<DesignListener>,
    pub pools: Vec<DesignPool>,
    pub gateway_status: GatewayStatus,
    pub routes: Vec<RouteOutcome>,
}

impl Design {
    pub fn pool(&self, name: &str) -> Option<&DesignPool> {
        self.pools.iter().find(|p| p.name == name)
    }
}
