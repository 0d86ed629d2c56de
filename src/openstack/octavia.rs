//! Octavia's calls (and the legacy Neutron LBaaS v2 API's, the same paths
//! under the network service's `/lbaas`): one function per write, and the
//! request bodies they send. What to call and in which order is the
//! reconciler's (`reconcile/execute.rs`).

use reqwest::Method;
use serde_json::{Value, json};

use super::cloud::{Cloud, LEGACY_TAGS, text};
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::Calls;
use super::wire;
use crate::config::Api;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, HealthMonitor, ListenerUpdate, Member,
    MemberSpec, PoolUpdate,
};

/// What a load balancer's create answered: its id, its VIP port and (a
/// fully populated create) its listeners' ids by name.
#[derive(Debug, Default)]
pub struct CreatedLoadBalancer {
    pub id: Option<String>,
    pub vip_port_id: Option<String>,
    pub listeners: Vec<(String, String)>,
}

fn timeouts(b: &mut Value, values: [(&str, Option<u64>); 4]) {
    for (key, value) in values {
        if let Some(v) = value {
            b[key] = json!(v);
        }
    }
}

impl Cloud {
    pub async fn create_load_balancer(
        &self,
        calls: &Calls,
        load_balancer: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional_vips: bool,
    ) -> Result<CreatedLoadBalancer, OpenStackError> {
        let body = json!({"loadbalancer": self.load_balancer_body(load_balancer, owner, populated, additional_vips)});
        let created: Option<wire::CreatedLoadBalancer> = self
            .session()
            .call_as(
                calls,
                self.lb_service(),
                Method::POST,
                &ApiPath::of("loadbalancers").below("/lbaas"),
                Some(&body),
            )
            .await?;
        drop(body);
        let Some(lb) = created.map(|c| c.loadbalancer) else {
            return Ok(CreatedLoadBalancer::default());
        };
        Ok(CreatedLoadBalancer {
            id: wire::present(&lb.id),
            vip_port_id: wire::present(&lb.vip_port_id),
            listeners: lb
                .listeners
                .iter()
                .filter_map(|l| Some((wire::present(&l.name)?, wire::present(&l.id)?)))
                .collect(),
        })
    }

    /// `DELETE` with cascade: the load balancer and everything under it.
    pub async fn delete_load_balancer(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<(), OpenStackError> {
        self.lb_call(
            calls,
            Method::DELETE,
            ApiPath::of("loadbalancers")
                .id("load balancer id", id)?
                .query(&[("cascade", "true")]),
            None,
        )
        .await
        .map(drop)
    }

    /// A load balancer's `provisioning_status`; `None` when it answers 404.
    pub async fn load_balancer_status(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<Option<String>, OpenStackError> {
        match self
            .lb_call(
                calls,
                Method::GET,
                ApiPath::of("loadbalancers").id("load balancer id", id)?,
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(
                text(&v["loadbalancer"], "provisioning_status").unwrap_or_default(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &DesiredListener,
        owner: &[String],
        with_pool: bool,
    ) -> Result<Option<String>, OpenStackError> {
        let mut body = self.listener_body(listener, owner, with_pool);
        body["loadbalancer_id"] = json!(load_balancer_id);
        let v = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("listeners"),
                Some(&json!({"listener": body})),
            )
            .await?;
        Ok(text(&v["listener"], "id"))
    }

    pub async fn update_listener(
        &self,
        calls: &Calls,
        id: &str,
        update: &ListenerUpdate,
    ) -> Result<(), OpenStackError> {
        let mut b = json!({});
        if let Some(c) = &update.allowed_cidrs {
            b["allowed_cidrs"] = json!(c.iter().map(ToString::to_string).collect::<Vec<_>>());
        }
        timeouts(
            &mut b,
            [
                ("timeout_client_data", update.timeout_client_data),
                ("timeout_member_connect", update.timeout_member_connect),
                ("timeout_member_data", update.timeout_member_data),
                ("timeout_tcp_inspect", update.timeout_tcp_inspect),
            ],
        );
        if let Some(c) = update.connection_limit {
            b["connection_limit"] = json!(c);
        }
        self.lb_call(
            calls,
            Method::PUT,
            ApiPath::of("listeners").id("listener id", id)?,
            Some(&json!({"listener": b})),
        )
        .await
        .map(drop)
    }

    pub async fn delete_listener(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        self.delete_child(calls, ApiPath::of("listeners").id("listener id", id)?)
            .await
    }

    pub async fn create_pool(
        &self,
        calls: &Calls,
        listener_id: &str,
        pool: &DesiredPool,
        owner: &[String],
        populated: bool,
    ) -> Result<Option<String>, OpenStackError> {
        let mut body = self.pool_body(pool, owner, populated);
        body["listener_id"] = json!(listener_id);
        let v = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("pools"),
                Some(&json!({"pool": body})),
            )
            .await?;
        Ok(text(&v["pool"], "id"))
    }

    pub async fn update_pool(
        &self,
        calls: &Calls,
        id: &str,
        update: &PoolUpdate,
    ) -> Result<(), OpenStackError> {
        let mut b = json!({});
        if let Some(a) = update.lb_algorithm {
            b["lb_algorithm"] = json!(a.as_str());
        }
        if let Some(sp) = update.session_persistence {
            b["session_persistence"] = sp.map_or(Value::Null, |p| json!({"type": p.as_str()}));
        }
        if let Some(t) = &update.tags {
            self.tag(&mut b, t, "description");
        }
        self.lb_call(
            calls,
            Method::PUT,
            ApiPath::of("pools").id("pool id", id)?,
            Some(&json!({"pool": b})),
        )
        .await
        .map(drop)
    }

    pub async fn delete_pool(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        self.delete_child(calls, ApiPath::of("pools").id("pool id", id)?)
            .await
    }

    /// `PUT /pools/{id}/members`: the pool's members replaced in one call
    /// (members not `owned` are sent back as they are, so they stay).
    pub async fn replace_members(
        &self,
        calls: &Calls,
        pool_id: &str,
        members: &[MemberSpec],
        owner: &[String],
    ) -> Result<(), OpenStackError> {
        let body: Vec<Value> = members
            .iter()
            .map(|m| self.member_body(&m.member, &m.subnet_id, m.owned.then_some(owner)))
            .collect();
        self.lb_call(
            calls,
            Method::PUT,
            ApiPath::of("pools").id("pool id", pool_id)?.then("members"),
            Some(&json!({"members": body})),
        )
        .await
        .map(drop)
    }

    pub async fn create_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        member: &Member,
        subnet_id: &Option<String>,
        owner: &[String],
    ) -> Result<Option<String>, OpenStackError> {
        let body = json!({"member": self.member_body(member, subnet_id, Some(owner))});
        let v = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("pools").id("pool id", pool_id)?.then("members"),
                Some(&body),
            )
            .await?;
        Ok(text(&v["member"], "id"))
    }

    pub async fn delete_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        id: &str,
    ) -> Result<(), OpenStackError> {
        self.delete_child(
            calls,
            ApiPath::of("pools")
                .id("pool id", pool_id)?
                .then("members")
                .id("member id", id)?,
        )
        .await
    }

    pub async fn create_health_monitor(
        &self,
        calls: &Calls,
        pool_id: &str,
        monitor: &HealthMonitor,
        owner: &[String],
    ) -> Result<Option<String>, OpenStackError> {
        let mut body = self.monitor_body(monitor, owner);
        body["pool_id"] = json!(pool_id);
        let v = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("healthmonitors"),
                Some(&json!({"healthmonitor": body})),
            )
            .await?;
        Ok(text(&v["healthmonitor"], "id"))
    }

    pub async fn update_health_monitor(
        &self,
        calls: &Calls,
        id: &str,
        monitor: &HealthMonitor,
    ) -> Result<(), OpenStackError> {
        let mut body = self.monitor_body(monitor, &[]);
        // The type is immutable; tags and name are not the monitor's settings.
        if let Some(o) = body.as_object_mut() {
            o.remove("type");
            o.remove("tags");
            o.remove("name");
        }
        self.lb_call(
            calls,
            Method::PUT,
            ApiPath::of("healthmonitors").id("health monitor id", id)?,
            Some(&json!({"healthmonitor": body})),
        )
        .await
        .map(drop)
    }

    pub async fn delete_health_monitor(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<(), OpenStackError> {
        self.delete_child(
            calls,
            ApiPath::of("healthmonitors").id("health monitor id", id)?,
        )
        .await
    }

    /// Deletes a child object; one already gone is success.
    async fn delete_child(&self, calls: &Calls, path: ApiPath) -> Result<(), OpenStackError> {
        match self.lb_call(calls, Method::DELETE, path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets the owner tags on a request body: `tags` on Octavia, a text
    /// field on the legacy API.
    pub(super) fn tag(&self, body: &mut Value, tags: &[String], legacy_field: &str) {
        match self.api {
            Api::Octavia => body["tags"] = json!(tags),
            Api::NeutronLbaas => {
                body[legacy_field] = json!(format!("{LEGACY_TAGS}{}", tags.join(",")))
            }
        }
    }

    fn member_body(&self, m: &Member, subnet: &Option<String>, tags: Option<&[String]>) -> Value {
        let mut b = json!({"address": m.address.to_string(), "protocol_port": m.protocol_port});
        if let Some(s) = subnet {
            b["subnet_id"] = json!(s);
        }
        if let Some(t) = tags {
            self.tag(&mut b, t, "name");
        }
        b
    }

    fn monitor_body(&self, hm: &HealthMonitor, tags: &[String]) -> Value {
        let mut b = json!({
            "type": hm.kind.as_str(), "delay": hm.delay, "timeout": hm.timeout,
            "max_retries": hm.max_retries, "max_retries_down": hm.max_retries_down,
        });
        if self.api == Api::NeutronLbaas {
            // LBaaS v2 has no max_retries_down.
            if let Some(o) = b.as_object_mut() {
                o.remove("max_retries_down");
            }
        }
        self.tag(&mut b, tags, "name");
        b
    }

    fn pool_body(&self, p: &DesiredPool, tags: &[String], populated: bool) -> Value {
        let mut b = json!({"name": p.name, "protocol": p.protocol.as_str(), "lb_algorithm": p.lb_algorithm.as_str()});
        if let Some(sp) = p.session_persistence {
            b["session_persistence"] = json!({"type": sp.as_str()});
        }
        let pool_tags: Vec<String> = tags.iter().chain(&p.port_tags).cloned().collect();
        self.tag(&mut b, &pool_tags, "description");
        if populated {
            let members: Vec<Value> = p
                .members
                .iter()
                .flatten()
                .map(|m| self.member_body(m, &p.member_subnet, Some(tags)))
                .collect();
            if !members.is_empty() {
                b["members"] = json!(members);
            }
            if let Some(hm) = &p.health_monitor {
                b["healthmonitor"] = self.monitor_body(hm, tags);
            }
        }
        b
    }

    fn listener_body(&self, l: &DesiredListener, tags: &[String], with_pool: bool) -> Value {
        let mut b = json!({"name": l.name, "protocol": l.protocol.as_str(), "protocol_port": l.protocol_port});
        if !l.allowed_cidrs.is_empty() {
            b["allowed_cidrs"] = json!(
                l.allowed_cidrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            );
        }
        let o = &l.options;
        if let Some(c) = o.connection_limit {
            b["connection_limit"] = json!(c);
        }
        for (key, value) in [
            ("timeout_client_data", o.timeout_client_data),
            ("timeout_member_connect", o.timeout_member_connect),
            ("timeout_member_data", o.timeout_member_data),
            ("timeout_tcp_inspect", o.timeout_tcp_inspect),
        ] {
            if let Some(v) = value {
                b[key] = json!(v);
            }
        }
        self.tag(&mut b, tags, "description");
        if with_pool {
            b["default_pool"] = self.pool_body(&l.pool, tags, true);
        }
        b
    }

    fn load_balancer_body(
        &self,
        d: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional: bool,
    ) -> Value {
        let mut b = json!({"name": d.name});
        if let Some(s) = &d.vip.subnet_id {
            b["vip_subnet_id"] = json!(s);
        }
        if let Some(a) = d.vip.address {
            b["vip_address"] = json!(a.to_string());
        }
        for (key, value) in [
            ("provider", &d.provider),
            ("flavor_id", &d.flavor_id),
            ("availability_zone", &d.availability_zone),
        ] {
            if let Some(v) = value {
                b[key] = json!(v);
            }
        }
        if additional && !d.additional_vips.is_empty() {
            let vips: Vec<Value> = d
                .additional_vips
                .iter()
                .map(|v| {
                    let mut x = json!({"subnet_id": v.subnet_id});
                    if let Some(a) = v.address {
                        x["ip_address"] = json!(a.to_string());
                    }
                    x
                })
                .collect();
            b["additional_vips"] = json!(vips);
        }
        self.tag(&mut b, &d.tags, "description");
        if populated && !d.listeners.is_empty() {
            b["listeners"] = json!(
                d.listeners
                    .iter()
                    .map(|l| self.listener_body(l, owner, true))
                    .collect::<Vec<_>>()
            );
        }
        b
    }
}
