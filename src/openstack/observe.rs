//! Observing what exists for a Service, in as few calls and round trips as
//! the API allows.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::cloud::Cloud;
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::Calls;
use super::wire;
use crate::config::Api;
use crate::model::{
    FloatingIpLookup, Observed, ObservedFloatingIp, ObservedHealthMonitor, ObservedListener,
    ObservedLoadBalancer, ObservedMember, ObservedPool,
};
use crate::names::{legacy_tags, owner_description};

impl Cloud {
    /// Reads what exists for a Service: load balancers named `name` (or the
    /// one with `id_hint`), their listeners and pools, members only when
    /// `members` is true, floating IPs with the owner tags or bound to a VIP.
    pub async fn observe(
        &self,
        calls: &Calls,
        name: &str,
        owner_tags: &[String],
        id_hint: Option<&str>,
        user_address: Option<Ipv4Addr>,
        members: bool,
    ) -> Result<Observed, OpenStackError> {
        let found = match id_hint {
            Some(id) => match self
                .lb_read::<wire::OneLoadBalancer>(
                    calls,
                    ApiPath::of("loadbalancers").id("load balancer id", id)?,
                )
                .await
            {
                Ok(Some(one)) => vec![one.loadbalancer],
                Ok(None) => Vec::new(),
                // The user named it: a 404 is their mistake, not a reason to create another.
                Err(e) if e.is_not_found() => {
                    return Err(OpenStackError::Missing {
                        kind: "load balancer",
                        id: id.to_string(),
                    });
                }
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        let found = if found.is_empty() {
            self.lb_read::<wire::LoadBalancers>(
                calls,
                ApiPath::of("loadbalancers").query(&[("name", name)]),
            )
            .await?
            .unwrap_or_default()
            .loadbalancers
        } else {
            found
        };
        let mut load_balancers = Vec::new();
        let mut deleting = Vec::new();
        for lb in &found {
            let mut observed = parse_lb(lb);
            if observed.provisioning_status == "PENDING_DELETE"
                && crate::names::is_owned(&observed.tags, owner_tags)
            {
                deleting.push(observed.id.clone());
            }
            if crate::names::is_owned(&observed.tags, owner_tags)
                && observed.provisioning_status != "PENDING_DELETE"
            {
                match self.read_tree(calls, &mut observed, members).await {
                    Ok(()) => {}
                    // Its children went while they were read: another replica
                    // is deleting it (a copy it raced). Count it as going.
                    Err(e) if e.is_not_found() => {
                        deleting.push(observed.id.clone());
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if observed.provisioning_status != "PENDING_DELETE"
                && observed.provisioning_status != "DELETED"
            {
                load_balancers.push(observed);
            }
        }
        // Every reader sees several copies in the same order: the survivor first.
        crate::model::in_survival_order(&mut load_balancers);

        let mut floating_ips: Vec<ObservedFloatingIp> = self
            .floating_ips(
                calls,
                ApiPath::of("floatingips")
                    .query(&[("description", &owner_description(owner_tags))]),
            )
            .await?;
        for port in load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.clone())
        {
            let bound = self
                .floating_ips(
                    calls,
                    ApiPath::of("floatingips").query(&[("port_id", &port)]),
                )
                .await?;
            for f in bound {
                if !floating_ips.iter().any(|o| o.id == f.id) {
                    floating_ips.push(f);
                }
            }
        }
        let user_floating_ip = match user_address {
            None => FloatingIpLookup::NotLookedUp,
            Some(a) => {
                let address = a.to_string();
                let known = floating_ips
                    .iter()
                    .find(|f| f.address == IpAddr::V4(a))
                    .cloned();
                match known {
                    Some(f) => FloatingIpLookup::Found(f),
                    None => self
                        .floating_ips(
                            calls,
                            ApiPath::of("floatingips").query(&[("floating_ip_address", &address)]),
                        )
                        .await?
                        .into_iter()
                        .next()
                        .map_or(FloatingIpLookup::NotFound, FloatingIpLookup::Found),
                }
            }
        };
        Ok(Observed {
            load_balancers,
            floating_ips,
            user_floating_ip,
            deleting,
        })
    }

    /// Everything this tool made for a cluster (`cluster_tag`): its load
    /// balancers (without their trees) and floating IPs, and every floating
    /// IP bound to one of those load balancers' VIP ports (a user's, maybe).
    pub async fn owned_by_cluster(
        &self,
        calls: &Calls,
        cluster_tag: &str,
    ) -> Result<(Vec<ObservedLoadBalancer>, Vec<ObservedFloatingIp>), OpenStackError> {
        let owned = |tags: &[String]| crate::names::is_cluster_owned(tags, cluster_tag);
        // Octavia filters by tag; the legacy API keeps tags in descriptions.
        let path = match self.api {
            Api::Octavia => ApiPath::of("loadbalancers").query(&[("tags", cluster_tag)]),
            Api::NeutronLbaas => ApiPath::of("loadbalancers"),
        };
        let mut load_balancers: Vec<ObservedLoadBalancer> = self
            .lb_read::<wire::LoadBalancers>(calls, path)
            .await?
            .unwrap_or_default()
            .loadbalancers
            .iter()
            .map(parse_lb)
            .filter(|lb| owned(&lb.tags))
            .collect();
        crate::model::in_survival_order(&mut load_balancers);
        let vip_ports: Vec<&str> = load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.as_deref())
            .collect();
        // Neutron cannot filter descriptions by part: read them all, once.
        let floating_ips = self
            .floating_ips(calls, ApiPath::of("floatingips"))
            .await?
            .into_iter()
            .filter(|f| {
                owned(&f.tags) || f.port_id.as_deref().is_some_and(|p| vip_ports.contains(&p))
            })
            .collect();
        Ok((load_balancers, floating_ips))
    }

    /// A typed GET of the load-balancing API (`None`: no body).
    async fn lb_read<T: DeserializeOwned>(
        &self,
        calls: &Calls,
        path: ApiPath,
    ) -> Result<Option<T>, OpenStackError> {
        self.lb_call(calls, Method::GET, path, None).await
    }

    /// Floating IPs a Neutron list answers.
    async fn floating_ips(
        &self,
        calls: &Calls,
        path: ApiPath,
    ) -> Result<Vec<ObservedFloatingIp>, OpenStackError> {
        let list: Option<wire::FloatingIps> = self.net_call(calls, Method::GET, path, None).await?;
        Ok(list
            .unwrap_or_default()
            .floatingips
            .iter()
            .filter_map(parse_fip)
            .collect())
    }

    async fn read_tree(
        &self,
        calls: &Calls,
        lb: &mut ObservedLoadBalancer,
        members: bool,
    ) -> Result<(), OpenStackError> {
        let q = [("loadbalancer_id", lb.id.as_str())];
        let listeners: wire::Listeners = self
            .lb_read(calls, ApiPath::of("listeners").query(&q))
            .await?
            .unwrap_or_default();
        let timeout = |t: Option<i64>| t.and_then(|t| u64::try_from(t).ok());
        lb.listeners = listeners
            .listeners
            .into_iter()
            .map(|l| ObservedListener {
                id: l.id.unwrap_or_default(),
                name: l.name.unwrap_or_default(),
                protocol: l.protocol.unwrap_or_default(),
                protocol_port: l
                    .protocol_port
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                allowed_cidrs: l
                    .allowed_cidrs
                    .iter()
                    .flatten()
                    .filter_map(|c| c.parse().ok())
                    .collect(),
                connection_limit: l.connection_limit,
                timeout_client_data: timeout(l.timeout_client_data),
                timeout_member_connect: timeout(l.timeout_member_connect),
                timeout_member_data: timeout(l.timeout_member_data),
                timeout_tcp_inspect: timeout(l.timeout_tcp_inspect),
                default_pool_id: wire::present(&l.default_pool_id),
                tags: tags_or(&l.tags, &l.description),
            })
            .collect();
        let pools: wire::Pools = self
            .lb_read(calls, ApiPath::of("pools").query(&q))
            .await?
            .unwrap_or_default();
        for p in pools.pools {
            let id = p.id.clone().unwrap_or_default();
            let mut pool = ObservedPool {
                id: id.clone(),
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_default(),
                lb_algorithm: p.lb_algorithm.clone().unwrap_or_default(),
                session_persistence: p
                    .session_persistence
                    .as_ref()
                    .and_then(|s| wire::present(&s.kind)),
                members: Vec::new(),
                health_monitor: None,
                tags: tags_or(&p.tags, &p.description),
            };
            if members {
                let m: Option<wire::MemberList> = self
                    .lb_read(
                        calls,
                        ApiPath::of("pools").id("pool id", &id)?.then("members"),
                    )
                    .await?;
                pool.members = m
                    .map(|m| m.members)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| {
                        let tags = match m.tags.filter(|t| !t.is_empty()) {
                            Some(t) => t,
                            None => legacy_tags(m.name.as_deref()),
                        };
                        Some(ObservedMember {
                            id: wire::present(&m.id)?,
                            address: m.address.as_deref()?.parse().ok()?,
                            protocol_port: m.protocol_port.and_then(|p| u16::try_from(p).ok())?,
                            tags,
                        })
                    })
                    .collect();
            }
            if let Some(hm_id) = wire::present(&p.healthmonitor_id) {
                let h: Option<wire::OneMonitor> = self
                    .lb_read(
                        calls,
                        ApiPath::of("healthmonitors").id("health monitor id", &hm_id)?,
                    )
                    .await?;
                let h = h.map(|h| h.healthmonitor).unwrap_or_default();
                let n = |x: Option<i64>| x.and_then(|x| u32::try_from(x).ok()).unwrap_or(0);
                pool.health_monitor = Some(ObservedHealthMonitor {
                    id: hm_id,
                    kind: h.kind.clone().unwrap_or_default(),
                    delay: n(h.delay),
                    timeout: n(h.timeout),
                    max_retries: n(h.max_retries),
                    max_retries_down: n(h.max_retries_down),
                    tags: tags_or(&h.tags, &h.name),
                });
            }
            lb.pools.push(pool);
        }
        Ok(())
    }
}

fn parse_lb(v: &wire::LoadBalancerRead) -> ObservedLoadBalancer {
    ObservedLoadBalancer {
        id: v.id.clone().unwrap_or_default(),
        name: v.name.clone().unwrap_or_default(),
        vip_address: v.vip_address.as_deref().and_then(|a| a.parse().ok()),
        vip_subnet_id: wire::present(&v.vip_subnet_id),
        vip_port_id: wire::present(&v.vip_port_id),
        additional_vips: v
            .additional_vips
            .iter()
            .flatten()
            .filter_map(|a| a.ip_address.as_deref()?.parse().ok())
            .collect(),
        provisioning_status: v.provisioning_status.clone().unwrap_or_default(),
        operating_status: v.operating_status.clone().unwrap_or_default(),
        flavor_id: wire::present(&v.flavor_id),
        availability_zone: wire::present(&v.availability_zone),
        listeners: Vec::new(),
        pools: Vec::new(),
        tags: tags_or(&v.tags, &v.description),
        created_at: wire::present(&v.created_at),
    }
}

/// Octavia's and Neutron's `tags`, else the legacy text field's.
fn tags_or(tags: &Option<Vec<String>>, legacy: &Option<String>) -> Vec<String> {
    match tags {
        Some(t) if !t.is_empty() => t.clone(),
        _ => legacy_tags(legacy.as_deref()),
    }
}

fn parse_fip(v: &wire::FloatingIpRead) -> Option<ObservedFloatingIp> {
    Some(ObservedFloatingIp {
        id: wire::present(&v.id)?,
        address: v.floating_ip_address.as_deref()?.parse().ok()?,
        port_id: wire::present(&v.port_id),
        network_id: wire::present(&v.floating_network_id),
        tags: tags_or(&v.tags, &v.description),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn legacy_tags_round_trip_through_text_fields() {
        let text = Some("svc-lbaas-tags:svc-lbaas,svc-lbaas-cluster:k".to_string());
        assert_eq!(
            super::tags_or(&None, &text),
            ["svc-lbaas", "svc-lbaas-cluster:k"]
        );
        assert_eq!(super::tags_or(&Some(Vec::new()), &text).len(), 2);
        let b = Some("svc-lbaas-tags:b".to_string());
        assert_eq!(super::tags_or(&Some(vec!["a".into()]), &b), ["a"]);
        assert!(super::tags_or(&None, &Some("a user's words".into())).is_empty());
    }

    #[test]
    fn reads_take_what_openstack_omits_or_nulls() {
        let lb: super::wire::LoadBalancerRead = serde_json::from_value(json!({
            "id": "4d3c", "name": "shop/web", "vip_address": "10.2.0.42", "vip_port_id": "",
            "additional_vips": null, "tags": ["svc-lbaas"], "provisioning_status": "ACTIVE",
            "created_at": "2026-12-01T12:00:00", "something_newer": {"x": 1}
        }))
        .unwrap();
        let o = super::parse_lb(&lb);
        assert_eq!(o.vip_address, Some("10.2.0.42".parse().unwrap()));
        assert_eq!(o.vip_port_id, None, "an empty string is absent");
        assert!(o.additional_vips.is_empty());
        assert_eq!(o.tags, ["svc-lbaas"]);
        let fip: super::wire::FloatingIpRead = serde_json::from_value(json!({
            "id": "f1", "floating_ip_address": "172.24.4.7", "port_id": null,
            "description": "svc-lbaas-tags:svc-lbaas", "tags": []
        }))
        .unwrap();
        let f = super::parse_fip(&fip).unwrap();
        assert_eq!(f.port_id, None);
        assert_eq!(f.tags, ["svc-lbaas"]);
    }
}
