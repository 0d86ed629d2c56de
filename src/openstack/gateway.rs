//! A Gateway's load balancer as Octavia holds it: the read of its whole
//! tree (listeners with their L7 policies and rules, pools with members,
//! floating IPs by description), and the writes only Gateways make (pools
//! on the load balancer, listeners without a default pool, L7 policies and
//! rules). Octavia only: the legacy LBaaS v2 API is not served Gateways.

use std::net::IpAddr;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::cloud::Cloud;
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::Calls;
use super::wire;
use crate::config::Api;
use crate::gateway::design::DesignRule;
use crate::gateway::plan::{
    ObservedGateway, ObservedGatewayLb, ObservedGwListener, ObservedGwPool, ObservedPolicy,
    ObservedRule,
};
use crate::model::Member;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PolicyRead {
    id: Option<String>,
    position: Option<u32>,
    action: Option<String>,
    redirect_pool_id: Option<String>,
    redirect_url: Option<String>,
    redirect_prefix: Option<String>,
    redirect_http_code: Option<u16>,
    provisioning_status: Option<String>,
    admin_state_up: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Policies {
    l7policies: Vec<PolicyRead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RuleRead {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    compare_type: Option<String>,
    key: Option<String>,
    value: Option<String>,
    invert: Option<bool>,
    provisioning_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Rules {
    rules: Vec<RuleRead>,
}

#[derive(Debug, Serialize)]
struct PoolCreate<'a> {
    name: &'a str,
    protocol: &'a str,
    lb_algorithm: &'static str,
    loadbalancer_id: &'a str,
    tags: &'a [String],
}

#[derive(Debug, Serialize)]
struct ListenerCreate<'a> {
    name: &'a str,
    protocol: &'a str,
    protocol_port: u16,
    loadbalancer_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_pool_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_tls_container_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    sni_container_refs: &'a [String],
    tags: &'a [String],
}

#[derive(Debug, Serialize)]
struct ListenerChange<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    default_pool_id: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_tls_container_ref: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni_container_refs: Option<&'a [String]>,
}

/// What an L7 policy does, as its create says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyWrite<'a> {
    ToPool(&'a str),
    ToUrl(String, u16),
    Prefix(String, u16),
}

#[derive(Debug, Serialize)]
struct PolicyCreate<'a> {
    listener_id: &'a str,
    position: u32,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_pool_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_http_code: Option<u16>,
    description: &'a str,
    tags: &'a [String],
    /// Created disabled, enabled once its rules are all there: a policy
    /// without all its ANDed rules would match more than it should.
    admin_state_up: bool,
}

#[derive(Debug, Serialize)]
struct PolicyMove {
    position: u32,
}

#[derive(Debug, Serialize)]
struct PolicyEnable {
    admin_state_up: bool,
}

#[derive(Debug, Serialize)]
struct RuleCreate<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    compare_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    value: &'a str,
    invert: bool,
    tags: &'a [String],
}

fn body<T: Serialize>(resource: &str, value: &T) -> Result<serde_json::Value, OpenStackError> {
    wire::envelope(resource, value).map_err(OpenStackError::Precondition)
}

/// Octavia's description holds 255 characters.
fn description(text: &str) -> &str {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Cloud {
    fn octavia_only(&self) -> Result<(), OpenStackError> {
        match self.api {
            Api::Octavia => Ok(()),
            Api::NeutronLbaas => Err(OpenStackError::Precondition(
                "Gateways need Octavia's L7 API; the legacy Neutron LBaaS v2 API is not served Gateways".into(),
            )),
        }
    }

    /// The Gateway's load balancer (by `name`, carrying every one of
    /// `owner`'s tags) with its whole tree, and the floating IPs whose
    /// description is `fip_description`.
    pub async fn read_gateway(
        &self,
        calls: &Calls,
        name: &str,
        owner: &[String],
        fip_description: &str,
    ) -> Result<ObservedGateway, OpenStackError> {
        self.octavia_only()?;
        let lbs = async {
            let list: Option<wire::LoadBalancers> = self
                .lb_call(
                    calls,
                    Method::GET,
                    ApiPath::of("loadbalancers").query(&[("name", name)]),
                    None,
                )
                .await?;
            Ok::<_, OpenStackError>(list.unwrap_or_default().loadbalancers)
        };
        let fips = async {
            let list: Option<wire::FloatingIps> = self
                .net_call(
                    calls,
                    Method::GET,
                    ApiPath::of("floatingips").query(&[("description", fip_description)]),
                    None,
                )
                .await?;
            Ok::<_, OpenStackError>(list.unwrap_or_default().floatingips)
        };
        let (lbs, fips) = tokio::try_join!(lbs, fips)?;
        let floating_ips = fips
            .iter()
            .filter(|f| f.description.as_deref() == Some(fip_description))
            .filter_map(|f| {
                Some(crate::model::ObservedFloatingIp {
                    id: wire::present(&f.id)?,
                    address: f.floating_ip_address.as_deref()?.parse().ok()?,
                    port_id: wire::present(&f.port_id),
                    network_id: wire::present(&f.floating_network_id),
                    tags: f.tags.clone().unwrap_or_default(),
                    description: f.description.clone(),
                })
            })
            .collect();
        // Octavia's name filter matches exactly, but a case-insensitive
        // database may match more: the owner's tags decide.
        let lb = lbs.into_iter().find(|lb| {
            lb.name.as_deref() == Some(name)
                && owner
                    .iter()
                    .all(|t| lb.tags.as_ref().is_some_and(|have| have.contains(t)))
                && lb.provisioning_status.as_deref() != Some("DELETED")
        });
        let Some(lb) = lb else {
            return Ok(ObservedGateway {
                load_balancer: None,
                floating_ips,
            });
        };
        let id = wire::present(&lb.id).unwrap_or_default();
        let mut observed = ObservedGatewayLb {
            id: id.clone(),
            name: lb.name.clone().unwrap_or_default(),
            vip_address: lb
                .vip_address
                .as_deref()
                .and_then(|a| a.parse::<IpAddr>().ok()),
            vip_port_id: wire::present(&lb.vip_port_id),
            provisioning_status: lb.provisioning_status.clone().unwrap_or_default(),
            operating_status: lb.operating_status.clone().unwrap_or_default(),
            tags: lb.tags.clone().unwrap_or_default(),
            ..Default::default()
        };
        self.read_gateway_tree(calls, &mut observed).await?;
        Ok(ObservedGateway {
            load_balancer: Some(observed),
            floating_ips,
        })
    }

    async fn read_gateway_tree(
        &self,
        calls: &Calls,
        lb: &mut ObservedGatewayLb,
    ) -> Result<(), OpenStackError> {
        let q = [("loadbalancer_id", lb.id.as_str())];
        let (listeners, pools) = tokio::try_join!(
            self.lb_call::<wire::Listeners>(
                calls,
                Method::GET,
                ApiPath::of("listeners").query(&q),
                None
            ),
            self.lb_call::<wire::Pools>(calls, Method::GET, ApiPath::of("pools").query(&q), None),
        )?;
        let listeners = listeners.unwrap_or_default().listeners;
        let pools = pools.unwrap_or_default().pools;
        let member_reads = pools.iter().map(|p| async move {
            let id = wire::present(&p.id).unwrap_or_default();
            let path = ApiPath::of("pools").id("pool id", &id)?.then("members");
            let list: Option<wire::MemberList> =
                self.lb_call(calls, Method::GET, path, None).await?;
            let members: Vec<Member> = list
                .map(|m| m.members)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| {
                    Some(Member {
                        address: m.address.as_deref()?.parse().ok()?,
                        protocol_port: u16::try_from(m.protocol_port?).ok()?,
                        weight: u16::try_from(m.weight.unwrap_or(1)).unwrap_or(1),
                    })
                })
                .collect();
            Ok::<_, OpenStackError>(ObservedGwPool {
                id,
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_default(),
                members,
            })
        });
        let policy_reads = listeners.iter().map(|l| async move {
            let id = wire::present(&l.id).unwrap_or_default();
            let path = ApiPath::of("l7policies").query(&[("listener_id", id.as_str())]);
            let list: Option<Policies> = self.lb_call(calls, Method::GET, path, None).await?;
            let mut policies: Vec<PolicyRead> = list
                .unwrap_or_default()
                .l7policies
                .into_iter()
                .filter(|p| p.provisioning_status.as_deref() != Some("DELETED"))
                .collect();
            policies.sort_by_key(|p| p.position.unwrap_or(u32::MAX));
            let rule_reads = policies.iter().map(|p| async move {
                let pid = wire::present(&p.id).unwrap_or_default();
                let path = ApiPath::of("l7policies")
                    .id("L7 policy id", &pid)?
                    .then("rules");
                let list: Option<Rules> = self.lb_call(calls, Method::GET, path, None).await?;
                Ok::<_, OpenStackError>(
                    list.unwrap_or_default()
                        .rules
                        .into_iter()
                        .filter(|r| r.provisioning_status.as_deref() != Some("DELETED"))
                        .map(|r| ObservedRule {
                            id: r.id.unwrap_or_default(),
                            kind: r.kind.unwrap_or_default(),
                            compare_type: r.compare_type.unwrap_or_default(),
                            key: r.key.filter(|k| !k.is_empty()),
                            value: r.value.unwrap_or_default(),
                            invert: r.invert.unwrap_or(false),
                        })
                        .collect::<Vec<_>>(),
                )
            });
            let rules = futures_util::future::try_join_all(rule_reads).await?;
            Ok::<_, OpenStackError>(ObservedGwListener {
                id,
                name: l.name.clone().unwrap_or_default(),
                protocol: l.protocol.clone().unwrap_or_default(),
                port: l
                    .protocol_port
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                default_pool_id: wire::present(&l.default_pool_id),
                default_tls_container_ref: wire::present(&l.default_tls_container_ref),
                sni_container_refs: l.sni_container_refs.clone().unwrap_or_default(),
                allowed_cidrs: wire::cidrs(&l.allowed_cidrs),
                policies: policies
                    .into_iter()
                    .zip(rules)
                    .map(|(p, rules)| ObservedPolicy {
                        id: p.id.unwrap_or_default(),
                        position: p.position.unwrap_or(0),
                        action: p.action.unwrap_or_default(),
                        redirect_pool_id: p.redirect_pool_id,
                        redirect_url: p.redirect_url,
                        redirect_prefix: p.redirect_prefix,
                        redirect_http_code: p.redirect_http_code,
                        enabled: p.admin_state_up.unwrap_or(true),
                        rules,
                    })
                    .collect(),
            })
        });
        let (pools, listeners) = tokio::try_join!(
            futures_util::future::try_join_all(member_reads),
            futures_util::future::try_join_all(policy_reads)
        )?;
        lb.pools = pools;
        lb.listeners = listeners;
        Ok(())
    }

    /// A pool on the load balancer (not a listener's default): L7
    /// policies send to it. Answers its id.
    pub async fn create_gateway_pool(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        name: &str,
        protocol: &str,
        owner: &[String],
    ) -> Result<String, OpenStackError> {
        self.octavia_only()?;
        let create = PoolCreate {
            name,
            protocol,
            lb_algorithm: "ROUND_ROBIN",
            loadbalancer_id: load_balancer_id,
            tags: owner,
        };
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("pools"),
                Some(&body("pool", &create)?),
            )
            .await?;
        created.and_then(|c| c.id("pool")).ok_or_else(|| {
            OpenStackError::Precondition(format!("Octavia answered no id for pool {name}"))
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_gateway_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        name: &str,
        protocol: &str,
        port: u16,
        certificates: &[String],
        default_pool_id: Option<&str>,
        owner: &[String],
    ) -> Result<String, OpenStackError> {
        self.octavia_only()?;
        let create = ListenerCreate {
            name,
            protocol,
            protocol_port: port,
            loadbalancer_id: load_balancer_id,
            default_pool_id,
            default_tls_container_ref: certificates.first().map(String::as_str),
            sni_container_refs: certificates.get(1..).unwrap_or(&[]),
            tags: owner,
        };
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("listeners"),
                Some(&body("listener", &create)?),
            )
            .await?;
        created.and_then(|c| c.id("listener")).ok_or_else(|| {
            OpenStackError::Precondition(format!("Octavia answered no id for listener {name}"))
        })
    }

    /// A Gateway listener's certificates (`Some`: default then SNI) and
    /// default pool (`Some(None)`: none).
    pub async fn update_gateway_listener(
        &self,
        calls: &Calls,
        id: &str,
        certificates: Option<&[String]>,
        default_pool_id: Option<Option<&str>>,
    ) -> Result<(), OpenStackError> {
        let change = ListenerChange {
            default_pool_id,
            default_tls_container_ref: certificates.map(|c| c.first().map(String::as_str)),
            sni_container_refs: certificates.map(|c| c.get(1..).unwrap_or(&[])),
        };
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("listeners").id("listener id", id)?,
            Some(&body("listener", &change)?),
        )
        .await
    }

    /// An L7 policy at `position`, without its rules (Octavia 19 fails a
    /// create with rules inline: docs/octavia-l7.md). Answers its id.
    pub async fn create_l7_policy(
        &self,
        calls: &Calls,
        listener_id: &str,
        position: u32,
        action: &PolicyWrite<'_>,
        source: &str,
        owner: &[String],
    ) -> Result<String, OpenStackError> {
        self.octavia_only()?;
        let (kind, pool, url, prefix, code) = match action {
            PolicyWrite::ToPool(p) => ("REDIRECT_TO_POOL", Some(*p), None, None, None),
            PolicyWrite::ToUrl(u, c) => ("REDIRECT_TO_URL", None, Some(u.as_str()), None, Some(*c)),
            PolicyWrite::Prefix(p, c) => {
                ("REDIRECT_PREFIX", None, None, Some(p.as_str()), Some(*c))
            }
        };
        let create = PolicyCreate {
            listener_id,
            position,
            action: kind,
            redirect_pool_id: pool,
            redirect_url: url,
            redirect_prefix: prefix,
            redirect_http_code: code,
            description: description(source),
            tags: owner,
            admin_state_up: false,
        };
        let created: Option<wire::Created> = self
            .lb_call(
                calls,
                Method::POST,
                ApiPath::of("l7policies"),
                Some(&body("l7policy", &create)?),
            )
            .await?;
        created.and_then(|c| c.id("l7policy")).ok_or_else(|| {
            OpenStackError::Precondition("Octavia answered no id for an L7 policy".into())
        })
    }

    pub async fn move_l7_policy(
        &self,
        calls: &Calls,
        id: &str,
        position: u32,
    ) -> Result<(), OpenStackError> {
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("l7policies").id("L7 policy id", id)?,
            Some(&body("l7policy", &PolicyMove { position })?),
        )
        .await
    }

    /// Turns on a policy created disabled, once its rules are there.
    pub async fn enable_l7_policy(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        self.lb_send(
            calls,
            Method::PUT,
            ApiPath::of("l7policies").id("L7 policy id", id)?,
            Some(&body(
                "l7policy",
                &PolicyEnable {
                    admin_state_up: true,
                },
            )?),
        )
        .await
    }

    pub async fn delete_l7_policy(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        match self
            .lb_send(
                calls,
                Method::DELETE,
                ApiPath::of("l7policies").id("L7 policy id", id)?,
                None,
            )
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    pub async fn create_l7_rule(
        &self,
        calls: &Calls,
        policy_id: &str,
        rule: &DesignRule,
        owner: &[String],
    ) -> Result<(), OpenStackError> {
        let create = RuleCreate {
            kind: rule.kind,
            compare_type: rule.compare_type,
            key: rule.key.as_deref(),
            value: &rule.value,
            invert: rule.invert,
            tags: owner,
        };
        self.lb_send(
            calls,
            Method::POST,
            ApiPath::of("l7policies")
                .id("L7 policy id", policy_id)?
                .then("rules"),
            Some(&body("rule", &create)?),
        )
        .await
    }

    /// A rule of a policy; one already gone is done.
    pub async fn delete_l7_rule(
        &self,
        calls: &Calls,
        policy_id: &str,
        id: &str,
    ) -> Result<(), OpenStackError> {
        let path = ApiPath::of("l7policies")
            .id("L7 policy id", policy_id)?
            .then("rules")
            .id("L7 rule id", id)?;
        match self.lb_send(calls, Method::DELETE, path, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}
