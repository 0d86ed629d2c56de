//! Octavia's calls (and the legacy Neutron LBaaS v2 API's, the same paths
//! under the network service's `/lbaas`): one function per write, and the
//! request bodies they send. What to call and in which order is decided
//! above this client, not here.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;

use super::cloud::Cloud;
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::Calls;
use super::wire::{self, Tags, envelope};
use crate::config::Api;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, HealthMonitor, ListenerUpdate, Member,
    MemberSpec, PoolUpdate,
};

/// The most pages a status list follows (1,000 load balancers each).
const MAX_PAGES: usize = 100;

/// What a load balancer's create answered: its id, its VIP port and (a
/// fully populated create) its listeners' ids by name.
#[derive(Debug, Default)]
pub struct CreatedLoadBalancer {
    pub id: Option<String>,
    pub vip_port_id: Option<String>,
    pub listeners: Vec<(String, String)>,
}

/// A request body, enveloped: `{"<resource>": body}`.
fn body<T: serde::Serialize>(resource: &str, value: &T) -> Result<Value, OpenStackError> {
    envelope(resource, value).map_err(OpenStackError::Precondition)
}

impl Cloud {
    /// Takes over another tool's object: one PUT of our name and tags (a
    /// floating IP: our tags as its description, as svc-lbaas keeps them).
    pub async fn adopt(
        &self,
        calls: &Calls,
        resource: crate::model::Adoptee,
        id: &str,
        new_name: Option<&str>,
        tags: &[String],
    ) -> Result<(), OpenStackError> {
        use crate::model::Adoptee;
        #[derive(serde::Serialize)]
        struct Change<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
            tags: &'a [String],
        }
        let change = Change {
            name: new_name,
            tags,
        };
        let (path, resource) = match resource {
            Adoptee::LoadBalancer => (
                ApiPath::of("loadbalancers").id("load balancer id", id)?,
                "loadbalancer",
            ),
            Adoptee::Listener => (ApiPath::of("listeners").id("listener id", id)?, "listener"),
            Adoptee::Pool => (ApiPath::of("pools").id("pool id", id)?, "pool"),
            Adoptee::HealthMonitor => (
                ApiPath::of("healthmonitors").id("health monitor id", id)?,
                "healthmonitor",
            ),
            Adoptee::FloatingIp => {
                let description = crate::names::owner_description(tags);
                let body = body(
                    "floatingip",
                    &serde_json::json!({ "description": description }),
                )?;
                let path = ApiPath::of("floatingips").id("floating IP id", id)?;
                return self.net_send(calls, Method::PUT, path, Some(&body)).await;
            }
        };
        self.forget_details(id);
        self.lb_send(calls, Method::PUT, path, Some(&body(resource, &change)?))
            .await
    }

    /// The VIP port's security groups in place of Octavia's (`[]`: Octavia's again).
    pub async fn set_vip_security_groups(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        ids: &[String],
    ) -> Result<(), OpenStackError> {
        let path = ApiPath::of("loadbalancers").id("load balancer id", load_balancer_id)?;
        let body = body("loadbalancer", &serde_json::json!({ "vip_sg_ids": ids }))?;
        self.forget_details(load_balancer_id);
        self.lb_send(calls, Method::PUT, path, Some(&body)).await
    }

    pub async fn create_load_balancer(
        &self,
        calls: &Calls,
        load_balancer: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional_vips: bool,
        vip_sg_ids: &[String],
    ) -> Result<CreatedLoadBalancer, OpenStackError> {
        let mut create = self.load_balancer_body(load_balancer, owner, populated, additional_vips);
        create.vip_sg_ids = vip_sg_ids.to_vec();
        let body = body("loadbalancer", &create)?;
        let created: Option<wire::CreatedLoadBalancer> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("loadbalancers"),
                Some(&body),
            )
            .await?;
        drop(body);
        let Some(lb) = created.map(|c| c.loadbalancer) else {
            return Ok(CreatedLoadBalancer::default());
        };
        if let Some(id) = wire::present(&lb.id) {
            self.keep_created(&id, &lb);
            if self.api == crate::config::Api::Octavia {
                let port = wire::present(&lb.vip_port_id);
                self.saw_load_balancer(&load_balancer.name, Some((&id, port.as_deref())));
            }
        }
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
        self.forget_details(id);
        self.forget_load_balancer(id);
        self.lb_send(
            calls,
            Method::DELETE,
            ApiPath::of("loadbalancers")
                .id("load balancer id", id)?
                .query(&[("cascade", "true")]),
            None,
        )
        .await
    }

    /// The `provisioning_status` of each load balancer in `ids`, in one read
    /// (a load balancer missing from the answer is gone): a GET of the one
    /// when there is one, else a list of them all with only the two fields
    /// (following its pages, which Octavia cuts at 1,000 by default).
    pub async fn load_balancer_statuses(
        &self,
        calls: &Calls,
        ids: &[String],
    ) -> Result<HashMap<String, String>, OpenStackError> {
        let status = |lb: wire::LoadBalancerRead| {
            let (id, status) = (lb.id?, lb.provisioning_status?);
            self.saw_status(&id, &status, lb.updated_at.as_deref());
            Some((id, status))
        };
        if let [id] = ids {
            let path = ApiPath::of("loadbalancers").id("load balancer id", id)?;
            return match self
                .lb_call::<wire::OneLoadBalancer>(calls, Method::GET, path, None)
                .await
            {
                Ok(v) => Ok(v.and_then(|o| status(o.loadbalancer)).into_iter().collect()),
                Err(e) if e.is_not_found() => Ok(HashMap::new()),
                Err(e) => Err(e),
            };
        }
        let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut statuses = HashMap::new();
        let mut marker: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let mut path = ApiPath::of("loadbalancers").query(&[
                ("fields", "id"),
                ("fields", "provisioning_status"),
                ("fields", "updated_at"),
            ]);
            if let Some(m) = &marker {
                path = path.query(&[("marker", m)]);
            }
            let page: wire::LoadBalancers = self
                .lb_call(calls, Method::GET, path, None)
                .await?
                .unwrap_or_default();
            marker = page.next_marker();
            statuses.extend(
                page.loadbalancers
                    .into_iter()
                    .filter_map(status)
                    .filter(|(id, _)| wanted.contains(id.as_str())),
            );
            if marker.is_none() {
                break;
            }
        }
        Ok(statuses)
    }

    pub async fn create_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &DesiredListener,
        owner: &[String],
        with_pool: bool,
    ) -> Result<Option<String>, OpenStackError> {
        let create = self.listener_body(listener, owner, with_pool);
        self.post_listener(calls, load_balancer_id, create).await
    }

    async fn post_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        mut create: wire::ListenerCreate,
    ) -> Result<Option<String>, OpenStackError> {
        self.forget_details(load_balancer_id);
        create.loadbalancer_id = Some(load_balancer_id.to_string());
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("listeners"),
                Some(&body("listener", &create)?),
            )
            .await?;
        Ok(created.and_then(|c| c.id("listener")))
    }

    pub async fn create_prometheus_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &crate::model::PrometheusListener,
        owner: &[String],
    ) -> Result<Option<String>, OpenStackError> {
        // Octavia opens a listener without allowed_cidrs to everyone.
        if listener.allowed_cidrs.is_empty() {
            return Err(OpenStackError::Precondition(
                "a PROMETHEUS listener is never opened to everyone".into(),
            ));
        }
        let create = wire::ListenerCreate {
            name: listener.name.clone(),
            protocol: "PROMETHEUS",
            protocol_port: listener.protocol_port,
            settings: wire::ListenerSettings {
                allowed_cidrs: Some(
                    listener
                        .allowed_cidrs
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
                ..wire::ListenerSettings::default()
            },
            tags: self.tags(owner, "description"),
            default_pool: None,
            loadbalancer_id: None,
        };
        self.post_listener(calls, load_balancer_id, create).await
    }

    pub async fn update_listener(
        &self,
        calls: &Calls,
        id: &str,
        update: &ListenerUpdate,
    ) -> Result<(), OpenStackError> {
        self.forget_details(id);
        let change = wire::ListenerSettings {
            allowed_cidrs: update
                .allowed_cidrs
                .as_ref()
                .map(|c| c.iter().map(ToString::to_string).collect()),
            connection_limit: update.connection_limit,
            timeout_client_data: update.timeout_client_data,
            timeout_member_connect: update.timeout_member_connect,
            timeout_member_data: update.timeout_member_data,
            timeout_tcp_inspect: update.timeout_tcp_inspect,
            insert_headers: update.insert_headers.as_deref().map(insert_headers),
            default_tls_container_ref: update
                .tls
                .as_ref()
                .map(|t| t.default_tls_container_ref.clone()),
            sni_container_refs: update.tls.as_ref().map(|t| t.sni_container_refs.clone()),
            alpn_protocols: update.alpn_protocols.clone(),
        };
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("listeners").id("listener id", id)?,
            Some(&body("listener", &change)?),
        )
        .await
    }

    pub async fn delete_listener(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        self.forget_details(id);
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
        self.forget_details(listener_id);
        let mut create = self.pool_body(pool, owner, populated);
        create.listener_id = Some(listener_id.to_string());
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("pools"),
                Some(&body("pool", &create)?),
            )
            .await?;
        Ok(created.and_then(|c| c.id("pool")))
    }

    pub async fn update_pool(
        &self,
        calls: &Calls,
        id: &str,
        update: &PoolUpdate,
    ) -> Result<(), OpenStackError> {
        self.forget_details(id);
        let change = wire::PoolChange {
            lb_algorithm: update.lb_algorithm.map(|a| a.as_str()),
            session_persistence: update.session_persistence.map(|sp| {
                sp.map(|p| wire::SessionPersistence {
                    kind: p.as_str(),
                    persistence_timeout: update.persistence_timeout,
                })
            }),
            tags: update
                .tags
                .as_ref()
                .map_or(Tags::Untagged, |t| self.tags(t, "description")),
        };
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("pools").id("pool id", id)?,
            Some(&body("pool", &change)?),
        )
        .await
    }

    pub async fn delete_pool(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        self.forget_details(id);
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
        self.members_written(pool_id);
        let batch: Vec<wire::MemberBody> = members
            .iter()
            .map(|m| self.member_body(&m.member, &m.subnet_id, m.owned.then_some(owner)))
            .collect();
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("pools").id("pool id", pool_id)?.then("members"),
            Some(&body("members", &batch)?),
        )
        .await
    }

    pub async fn create_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        member: &Member,
        subnet_id: &Option<String>,
        owner: &[String],
    ) -> Result<Option<String>, OpenStackError> {
        self.members_written(pool_id);
        let create = body("member", &self.member_body(member, subnet_id, Some(owner)))?;
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("pools").id("pool id", pool_id)?.then("members"),
                Some(&create),
            )
            .await?;
        Ok(created.and_then(|c| c.id("member")))
    }

    /// `PUT /pools/{id}/members/{member id}`: its weight and name.
    pub async fn update_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        id: &str,
        member: &Member,
        owner: &[String],
    ) -> Result<(), OpenStackError> {
        self.members_written(pool_id);
        let full = self.member_body(member, &None, Some(owner));
        let change = wire::MemberChange {
            weight: full.weight,
            tags: full.tags,
        };
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("pools")
                .id("pool id", pool_id)?
                .then("members")
                .id("member id", id)?,
            Some(&body("member", &change)?),
        )
        .await
    }

    pub async fn delete_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        id: &str,
    ) -> Result<(), OpenStackError> {
        self.members_written(pool_id);
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
        self.forget_details(pool_id);
        let mut create = self.monitor_body(monitor, owner);
        create.pool_id = Some(pool_id.to_string());
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("healthmonitors"),
                Some(&body("healthmonitor", &create)?),
            )
            .await?;
        Ok(created.and_then(|c| c.id("healthmonitor")))
    }

    pub async fn update_health_monitor(
        &self,
        calls: &Calls,
        id: &str,
        monitor: &HealthMonitor,
    ) -> Result<(), OpenStackError> {
        self.forget_details(id);
        // The type is immutable; tags and name are not the monitor's settings.
        let change = self.monitor_settings(monitor);
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("healthmonitors").id("health monitor id", id)?,
            Some(&body("healthmonitor", &change)?),
        )
        .await
    }

    pub async fn delete_health_monitor(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<(), OpenStackError> {
        self.forget_details(id);
        self.delete_child(
            calls,
            ApiPath::of("healthmonitors").id("health monitor id", id)?,
        )
        .await
    }

    /// Deletes a child object; one already gone is success.
    async fn delete_child(&self, calls: &Calls, path: ApiPath) -> Result<(), OpenStackError> {
        match self.lb_send(calls, Method::DELETE, path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The owner tags as this API takes them: `tags` on Octavia, a text
    /// field on the legacy API.
    pub(super) fn tags(&self, tags: &[String], legacy_field: &'static str) -> Tags {
        match self.api {
            Api::Octavia => Tags::Tags(tags.to_vec()),
            Api::NeutronLbaas => Tags::Legacy(legacy_field, crate::names::owner_description(tags)),
        }
    }

    fn member_body(
        &self,
        m: &Member,
        subnet: &Option<String>,
        tags: Option<&[String]>,
    ) -> wire::MemberBody {
        // Members say whose they are in their name on both APIs: Octavia's
        // status tree shows names, not tags, so a re-apply reads every pool's
        // members in one call (and a 10,000-member create stays as small).
        let owner = |t: &[String]| {
            let mut text = crate::names::owner_description(t);
            if m.weight == Member::DRAINING {
                text.push(',');
                text.push_str(crate::names::DRAINING_TAG);
            }
            Tags::Legacy("name", text)
        };
        wire::MemberBody {
            address: m.address.to_string(),
            protocol_port: m.protocol_port,
            weight: m.weight,
            subnet_id: subnet.clone(),
            tags: tags.map_or(Tags::Untagged, owner),
        }
    }

    fn monitor_settings(&self, hm: &HealthMonitor) -> wire::MonitorSettings {
        wire::MonitorSettings {
            delay: hm.delay,
            timeout: hm.timeout,
            max_retries: hm.max_retries,
            // LBaaS v2 has no max_retries_down.
            max_retries_down: (self.api == Api::Octavia).then_some(hm.max_retries_down),
            http_method: hm.http.as_ref().map(|h| h.http_method.clone()),
            url_path: hm.http.as_ref().map(|h| h.url_path.clone()),
            expected_codes: hm.http.as_ref().map(|h| h.expected_codes.clone()),
        }
    }

    fn monitor_body(&self, hm: &HealthMonitor, tags: &[String]) -> wire::MonitorBody {
        wire::MonitorBody {
            kind: hm.kind.as_str(),
            settings: self.monitor_settings(hm),
            tags: self.tags(tags, "name"),
            pool_id: None,
        }
    }

    fn pool_body(&self, p: &DesiredPool, tags: &[String], populated: bool) -> wire::PoolCreate {
        let pool_tags: Vec<String> = tags.iter().chain(&p.port_tags).cloned().collect();
        wire::PoolCreate {
            name: p.name.clone(),
            protocol: p.protocol.as_str(),
            lb_algorithm: p.lb_algorithm.as_str(),
            session_persistence: p.session_persistence.map(|sp| wire::SessionPersistence {
                kind: sp.as_str(),
                persistence_timeout: p.persistence_timeout,
            }),
            tags: self.tags(&pool_tags, "description"),
            members: if populated {
                p.members
                    .iter()
                    .flatten()
                    .map(|m| self.member_body(m, &p.member_subnet, Some(tags)))
                    .collect()
            } else {
                Vec::new()
            },
            healthmonitor: p
                .health_monitor
                .as_ref()
                .filter(|_| populated)
                .map(|hm| self.monitor_body(hm, tags)),
            listener_id: None,
        }
    }

    fn listener_body(
        &self,
        l: &DesiredListener,
        tags: &[String],
        with_pool: bool,
    ) -> wire::ListenerCreate {
        let o = &l.options;
        wire::ListenerCreate {
            name: l.name.clone(),
            protocol: l.protocol.as_str(),
            protocol_port: l.protocol_port,
            settings: wire::ListenerSettings {
                allowed_cidrs: (!l.allowed_cidrs.is_empty())
                    .then(|| l.allowed_cidrs.iter().map(ToString::to_string).collect()),
                connection_limit: o.connection_limit,
                timeout_client_data: o.timeout_client_data,
                timeout_member_connect: o.timeout_member_connect,
                timeout_member_data: o.timeout_member_data,
                timeout_tcp_inspect: o.timeout_tcp_inspect,
                insert_headers: (!l.insert_headers.is_empty())
                    .then(|| insert_headers(&l.insert_headers)),
                default_tls_container_ref: l
                    .tls
                    .as_ref()
                    .map(|t| t.default_tls_container_ref.clone()),
                sni_container_refs: l
                    .tls
                    .as_ref()
                    .filter(|t| !t.sni_container_refs.is_empty())
                    .map(|t| t.sni_container_refs.clone()),
                alpn_protocols: (!l.alpn_protocols.is_empty()).then(|| l.alpn_protocols.clone()),
            },
            tags: self.tags(tags, "description"),
            default_pool: with_pool.then(|| self.pool_body(&l.pool, tags, true)),
            loadbalancer_id: None,
        }
    }

    fn load_balancer_body(
        &self,
        d: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional: bool,
    ) -> wire::LoadBalancerCreate {
        wire::LoadBalancerCreate {
            name: d.name.clone(),
            vip_subnet_id: d.vip.subnet_id.clone(),
            vip_network_id: d.vip.network_id.clone(),
            vip_port_id: d.vip.port_id.clone(),
            vip_sg_ids: Vec::new(),
            vip_address: d.vip.address.map(|a| a.to_string()),
            provider: d.provider.clone(),
            flavor_id: d.flavor_id.clone(),
            availability_zone: d.availability_zone.clone(),
            additional_vips: if additional {
                d.additional_vips
                    .iter()
                    .map(|v| wire::AdditionalVip {
                        subnet_id: v.subnet_id.clone(),
                        ip_address: v.address.map(|a| a.to_string()),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            tags: self.tags(&d.tags, "description"),
            listeners: if populated {
                d.listeners
                    .iter()
                    .map(|l| self.listener_body(l, owner, true))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// Octavia's `insert_headers` map: each header named, set to `"true"`.
fn insert_headers(
    headers: &[&'static str],
) -> std::collections::BTreeMap<&'static str, &'static str> {
    headers.iter().map(|h| (*h, "true")).collect()
}
