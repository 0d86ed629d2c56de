//! Typed answers of the calls whose bodies grow with a Service's size (a
//! load balancer's create, a pool's members): serde reads only these fields
//! and skips the rest without building it.

use serde::Deserialize;

/// `POST /lbaas/loadbalancers`: Octavia answers the whole tree it made.
#[derive(Debug, Deserialize)]
pub struct CreatedLoadBalancer {
    pub loadbalancer: CreatedTree,
}

#[derive(Debug, Deserialize)]
pub struct CreatedTree {
    pub id: Option<String>,
    pub vip_port_id: Option<String>,
    #[serde(default)]
    pub listeners: Vec<Named>,
}

#[derive(Debug, Deserialize)]
pub struct Named {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// `GET /lbaas/pools/{id}/members`.
#[derive(Debug, Deserialize)]
pub struct MemberList {
    #[serde(default)]
    pub members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub id: Option<String>,
    pub address: Option<String>,
    pub protocol_port: Option<i64>,
    /// The legacy API keeps ownership in the name.
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Empty strings are absent, as OpenStack means them.
pub fn present(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}
