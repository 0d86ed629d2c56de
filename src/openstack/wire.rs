//! Wire types: the bodies svc-lbaas sends to Octavia and Neutron, and every
//! answer it reads, which serde reads field by field, skipping the rest
//! without building it (a load balancer's create, a pool's thousands of
//! members).

use std::collections::HashMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

// ---------------------------------------------------------------- bodies sent

/// Where an object's ownership tags go: Octavia's `tags`, or (the legacy
/// API has no tags) `svc-lbaas-tags:a,b` in a text field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tags {
    #[default]
    Untagged,
    Tags(Vec<String>),
    /// The legacy API's text field and its `svc-lbaas-tags:` text.
    Legacy(&'static str, String),
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Tags::Untagged => {}
            Tags::Tags(t) => m.serialize_entry("tags", t)?,
            Tags::Legacy(field, text) => m.serialize_entry(field, text)?,
        }
        m.end()
    }
}

fn no<T>(v: &Option<T>) -> bool {
    v.is_none()
}

#[derive(Debug, Serialize)]
pub struct LoadBalancerCreate {
    pub name: String,
    #[serde(skip_serializing_if = "no")]
    pub vip_subnet_id: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub vip_network_id: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub vip_address: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub vip_port_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vip_sg_ids: Vec<String>,
    #[serde(skip_serializing_if = "no")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub flavor_id: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_vips: Vec<AdditionalVip>,
    #[serde(flatten)]
    pub tags: Tags,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerCreate>,
}

#[derive(Debug, Serialize)]
pub struct AdditionalVip {
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub ip_address: Option<String>,
}

/// Listener settings a create and an update share (`None`: left alone).
#[derive(Debug, Default, Serialize)]
pub struct ListenerSettings {
    #[serde(skip_serializing_if = "no")]
    pub allowed_cidrs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "no")]
    pub connection_limit: Option<i64>,
    #[serde(skip_serializing_if = "no")]
    pub timeout_client_data: Option<u64>,
    #[serde(skip_serializing_if = "no")]
    pub timeout_member_connect: Option<u64>,
    #[serde(skip_serializing_if = "no")]
    pub timeout_member_data: Option<u64>,
    #[serde(skip_serializing_if = "no")]
    pub timeout_tcp_inspect: Option<u64>,
    /// `{"X-Forwarded-For": "true", ...}`: Octavia replaces the whole map.
    #[serde(skip_serializing_if = "no")]
    pub insert_headers: Option<std::collections::BTreeMap<&'static str, &'static str>>,
    #[serde(skip_serializing_if = "no")]
    pub default_tls_container_ref: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub sni_container_refs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "no")]
    pub alpn_protocols: Option<Vec<&'static str>>,
}

#[derive(Debug, Serialize)]
pub struct ListenerCreate {
    pub name: String,
    pub protocol: &'static str,
    pub protocol_port: u16,
    #[serde(flatten)]
    pub settings: ListenerSettings,
    #[serde(flatten)]
    pub tags: Tags,
    #[serde(skip_serializing_if = "no")]
    pub default_pool: Option<PoolCreate>,
    #[serde(skip_serializing_if = "no")]
    pub loadbalancer_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SessionPersistence {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// UDP pools only (Octavia refuses it on others).
    #[serde(skip_serializing_if = "no")]
    pub persistence_timeout: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct PoolCreate {
    pub name: String,
    pub protocol: &'static str,
    pub lb_algorithm: &'static str,
    #[serde(skip_serializing_if = "no")]
    pub session_persistence: Option<SessionPersistence>,
    #[serde(flatten)]
    pub tags: Tags,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberBody>,
    #[serde(skip_serializing_if = "no")]
    pub healthmonitor: Option<MonitorBody>,
    #[serde(skip_serializing_if = "no")]
    pub listener_id: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct PoolChange {
    #[serde(skip_serializing_if = "no")]
    pub lb_algorithm: Option<&'static str>,
    /// `Some(None)` removes the persistence (`null`).
    #[serde(skip_serializing_if = "no")]
    pub session_persistence: Option<Option<SessionPersistence>>,
    #[serde(flatten)]
    pub tags: Tags,
}

#[derive(Debug, Serialize)]
pub struct MemberBody {
    pub address: String,
    pub protocol_port: u16,
    pub weight: u16,
    #[serde(skip_serializing_if = "no")]
    pub subnet_id: Option<String>,
    #[serde(flatten)]
    pub tags: Tags,
}

/// A member's update: its weight, and the name that carries ownership
/// (and draining).
#[derive(Debug, Serialize)]
pub struct MemberChange {
    pub weight: u16,
    #[serde(flatten)]
    pub tags: Tags,
}

/// A monitor's settings (an update sends these alone).
#[derive(Debug, Serialize)]
pub struct MonitorSettings {
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u32,
    /// `None` on the legacy API, which has no such field.
    #[serde(skip_serializing_if = "no")]
    pub max_retries_down: Option<u32>,
    /// HTTP monitors'.
    #[serde(skip_serializing_if = "no")]
    pub http_method: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub url_path: Option<String>,
    #[serde(skip_serializing_if = "no")]
    pub expected_codes: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MonitorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub settings: MonitorSettings,
    #[serde(flatten)]
    pub tags: Tags,
    #[serde(skip_serializing_if = "no")]
    pub pool_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FloatingIpCreate<'a> {
    pub floating_network_id: &'a str,
    pub port_id: &'a str,
    pub description: &'a str,
    #[serde(skip_serializing_if = "no")]
    pub subnet_id: Option<&'a str>,
}

/// `port_id: null` unbinds.
#[derive(Debug, Serialize)]
pub struct FloatingIpPort<'a> {
    pub port_id: Option<&'a str>,
}

/// `{"<resource>": body}`, as OpenStack wants a body.
pub fn envelope<T: Serialize>(resource: &str, body: &T) -> Result<serde_json::Value, String> {
    let value = serde_json::to_value(body).map_err(|e| format!("{resource} body: {e}"))?;
    let mut map = serde_json::Map::new();
    map.insert(resource.to_string(), value);
    Ok(serde_json::Value::Object(map))
}

// ---------------------------------------------------------------- answers read

/// An object's id: the one field read of a create's answer, a network
/// list or a version document.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Identified {
    pub id: Option<String>,
}

/// A create's answer, `{"<resource>": {"id": ...}}`.
#[derive(Debug, Deserialize)]
pub struct Created(HashMap<String, Identified>);

impl Created {
    /// The id of the `resource` made.
    pub fn id(mut self, resource: &str) -> Option<String> {
        present(&self.0.remove(resource)?.id)
    }
}

/// `GET /v2.0/subnets/{id}`.
#[derive(Debug, Deserialize)]
pub struct OneSubnet {
    pub subnet: SubnetRead,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubnetRead {
    pub network_id: Option<String>,
    pub cidr: Option<String>,
}

/// `GET /v2.0/ports/{id}`: who uses it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OnePort {
    pub port: PortRead,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortRead {
    pub device_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub network_id: Option<String>,
    pub fixed_ips: Option<Vec<FixedIp>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FixedIp {
    pub subnet_id: Option<String>,
}

/// `GET /v2.0/subnets?network_id=...&fields=id&fields=name`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubnetList {
    pub subnets: Vec<NamedSubnet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamedSubnet {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// `GET /v2.0/networks?router:external=true&fields=id`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Networks {
    pub networks: Vec<Identified>,
}

/// Octavia's version document, `{"versions": [{"id": "v2.29", ...}]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Versions {
    pub versions: Vec<Identified>,
}

impl Versions {
    /// The highest `v2.N` offered.
    pub fn max_minor(&self) -> Option<u32> {
        self.versions
            .iter()
            .filter_map(|v| v.id.as_deref()?.strip_prefix("v2.")?.parse().ok())
            .max()
    }
}

/// `POST /lbaas/loadbalancers`: Octavia answers the whole tree it made.
#[derive(Debug, Deserialize)]
pub struct CreatedLoadBalancer {
    pub loadbalancer: CreatedTree,
}

#[derive(Debug, Deserialize)]
pub struct CreatedTree {
    pub id: Option<String>,
    pub vip_port_id: Option<String>,
    /// A fully populated create answers its listeners and pools whole.
    #[serde(default)]
    pub listeners: Vec<ListenerRead>,
    #[serde(default)]
    pub pools: Vec<PoolWithMonitor>,
}

/// A pool as a fully populated create answers it: its monitor inline.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PoolWithMonitor {
    #[serde(flatten)]
    pub pool: PoolRead,
    pub healthmonitor: Option<MonitorRead>,
    /// Its members whole (ids, names, tags, operating statuses).
    pub members: Vec<Member>,
}

/// `GET /lbaas/loadbalancers/{id}/status`: the tree of a load balancer's
/// listeners, their pools, each pool's monitor and members (ids, names,
/// addresses and ports; no tags).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatusTree {
    pub statuses: TreeStatuses,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TreeStatuses {
    pub loadbalancer: TreeLoadBalancer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TreeLoadBalancer {
    pub listeners: Vec<TreeListener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TreeListener {
    pub id: Option<String>,
    pub pools: Vec<TreePool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TreePool {
    pub id: Option<String>,
    pub members: Vec<Member>,
}

/// `GET /lbaas/healthmonitors?tags=...`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Monitors {
    pub healthmonitors: Vec<MonitorRead>,
}

/// `GET /lbaas/pools/{id}/members`.
#[derive(Debug, Deserialize)]
pub struct MemberList {
    #[serde(default)]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub id: Option<String>,
    pub address: Option<String>,
    pub protocol_port: Option<i64>,
    /// Not in Octavia's status tree.
    #[serde(default)]
    pub weight: Option<i64>,
    /// The legacy API keeps ownership in the name.
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// In Octavia's member lists and status tree; not in the legacy API's.
    #[serde(default)]
    pub operating_status: Option<String>,
}

/// The reads of `observe`: every field optional (OpenStack omits, nulls or
/// adds fields by version and API); unknown fields are skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancerRead {
    pub id: Option<String>,
    pub name: Option<String>,
    pub vip_address: Option<String>,
    pub vip_subnet_id: Option<String>,
    pub vip_network_id: Option<String>,
    pub vip_port_id: Option<String>,
    pub additional_vips: Option<Vec<AdditionalVipRead>>,
    pub provisioning_status: Option<String>,
    pub operating_status: Option<String>,
    pub flavor_id: Option<String>,
    pub availability_zone: Option<String>,
    pub provider: Option<String>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    pub created_at: Option<String>,
    /// Bumped by every change of the load balancer or of anything under it.
    pub updated_at: Option<String>,
    pub vip_sg_ids: Option<Vec<String>>,
}

/// `GET /v2.0/security-groups?name=...`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecurityGroups {
    pub security_groups: Vec<SecurityGroupRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OneSecurityGroup {
    pub security_group: SecurityGroupRead,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecurityGroupRead {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub security_group_rules: Vec<SecurityGroupRuleRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecurityGroupRuleRead {
    pub id: Option<String>,
    pub direction: Option<String>,
    pub protocol: Option<String>,
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote_ip_prefix: Option<String>,
}

/// One rule to create (`POST /v2.0/security-group-rules`, bulk).
#[derive(Debug, Serialize)]
pub struct SecurityGroupRuleCreate<'a> {
    pub security_group_id: &'a str,
    pub direction: &'static str,
    pub ethertype: &'static str,
    pub protocol: &'static str,
    pub port_range_min: u16,
    pub port_range_max: u16,
    pub remote_ip_prefix: String,
}

/// `GET /v2/lbaas/providers`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Providers {
    pub providers: Vec<ProviderRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProviderRead {
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdditionalVipRead {
    pub ip_address: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OneLoadBalancer {
    pub loadbalancer: LoadBalancerRead,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancers {
    pub loadbalancers: Vec<LoadBalancerRead>,
    /// Octavia's pages: `rel: next` while there are more.
    pub loadbalancers_links: Vec<Link>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Link {
    pub href: Option<String>,
    pub rel: Option<String>,
}

impl LoadBalancers {
    /// The `marker` of the next page, if there is one.
    pub fn next_marker(&self) -> Option<String> {
        let next = self
            .loadbalancers_links
            .iter()
            .find(|l| l.rel.as_deref() == Some("next"))?;
        let href = next.href.as_deref()?;
        let query = href.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "marker")
            .map(|(_, v)| v.into_owned())
            .filter(|m| !m.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListenerRead {
    pub id: Option<String>,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub protocol_port: Option<i64>,
    pub allowed_cidrs: Option<Vec<String>>,
    pub connection_limit: Option<i64>,
    pub timeout_client_data: Option<i64>,
    pub timeout_member_connect: Option<i64>,
    pub timeout_member_data: Option<i64>,
    pub timeout_tcp_inspect: Option<i64>,
    pub insert_headers: Option<HashMap<String, String>>,
    pub default_tls_container_ref: Option<String>,
    pub sni_container_refs: Option<Vec<String>>,
    pub alpn_protocols: Option<Vec<String>>,
    pub default_pool_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Listeners {
    pub listeners: Vec<ListenerRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionPersistenceRead {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub persistence_timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PoolRead {
    pub id: Option<String>,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub lb_algorithm: Option<String>,
    pub session_persistence: Option<SessionPersistenceRead>,
    pub healthmonitor_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pools {
    pub pools: Vec<PoolRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MonitorRead {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub delay: Option<i64>,
    pub timeout: Option<i64>,
    pub max_retries: Option<i64>,
    pub max_retries_down: Option<i64>,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OneMonitor {
    pub healthmonitor: MonitorRead,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FloatingIpRead {
    pub id: Option<String>,
    pub floating_ip_address: Option<String>,
    pub port_id: Option<String>,
    pub floating_network_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OneFloatingIp {
    pub floatingip: FloatingIpRead,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FloatingIps {
    pub floatingips: Vec<FloatingIpRead>,
}

/// Empty strings are absent, as OpenStack means them.
pub fn present(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.is_empty()).cloned()
}

/// A listener's `allowed_cidrs` as read (`null`: none); what does not parse is left out.
pub fn cidrs(read: &Option<Vec<String>>) -> Vec<ipnet::IpNet> {
    read.iter()
        .flatten()
        .filter_map(|c| c.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tags_go_to_tags_or_to_the_legacy_text_field() {
        let member = |tags| MemberBody {
            address: "10.1.0.5".into(),
            protocol_port: 8080,
            weight: 1,
            subnet_id: None,
            tags,
        };
        assert_eq!(
            envelope("member", &member(Tags::Tags(vec!["a".into()]))).unwrap(),
            json!({"member": {"address": "10.1.0.5", "protocol_port": 8080, "weight": 1, "tags": ["a"]}})
        );
        assert_eq!(
            envelope(
                "member",
                &member(Tags::Legacy("name", "svc-lbaas-tags:a".into()))
            )
            .unwrap(),
            json!({"member": {"address": "10.1.0.5", "protocol_port": 8080, "weight": 1, "name": "svc-lbaas-tags:a"}})
        );
        assert_eq!(
            envelope("member", &member(Tags::Untagged)).unwrap(),
            json!({"member": {"address": "10.1.0.5", "protocol_port": 8080, "weight": 1}})
        );
    }

    #[test]
    fn a_list_names_the_marker_of_its_next_page() {
        let page = |links| {
            serde_json::from_value::<LoadBalancers>(
                json!({"loadbalancers": [], "loadbalancers_links": links}),
            )
            .unwrap()
        };
        let next = json!([{"rel": "previous", "href": "http://o/v2/lbaas/loadbalancers?marker=a&page_reverse=True"},
            {"rel": "next", "href": "http://o/v2/lbaas/loadbalancers?fields=id&limit=1000&marker=4d3c-9e"}]);
        assert_eq!(page(next).next_marker().as_deref(), Some("4d3c-9e"));
        assert_eq!(page(json!([])).next_marker(), None);
        assert_eq!(
            page(json!([{"rel": "next", "href": "http://o/x"}])).next_marker(),
            None
        );
        assert_eq!(LoadBalancers::default().next_marker(), None);
    }

    #[test]
    fn a_create_is_read_for_the_id_of_what_it_made() {
        let created = |v| serde_json::from_value::<Created>(v).unwrap();
        let pool = json!({"pool": {"id": "8f1e", "name": "p", "members": [{"id": "x"}]}});
        assert_eq!(created(pool.clone()).id("pool").as_deref(), Some("8f1e"));
        assert_eq!(
            created(pool).id("listener"),
            None,
            "another resource's answer"
        );
        assert_eq!(created(json!({"member": {"id": ""}})).id("member"), None);
        assert!(serde_json::from_value::<Created>(json!({"pool": "8f1e"})).is_err());
    }

    #[test]
    fn an_update_sends_only_what_changes_and_null_to_remove() {
        let change = PoolChange {
            session_persistence: Some(None),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            json!({"session_persistence": null})
        );
        assert_eq!(
            serde_json::to_value(FloatingIpPort { port_id: None }).unwrap(),
            json!({"port_id": null})
        );
    }
}
