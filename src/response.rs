//! The answers users read: PlanResponse (docs/contract.md's shape, camelCase).

use std::net::IpAddr;

use serde::Serialize;

use crate::model::{
    DesiredListener, DesiredLoadBalancer, FloatingIpIntent, HealthMonitor, ListenerOptions, Member,
    Translation, Vip,
};
use crate::plan::{Operation, OperationSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    Create,
    Update,
    Unchanged,
    Delete,
    Skip,
}

impl PlanAction {
    /// As serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanAction::Create => "create",
            PlanAction::Update => "update",
            PlanAction::Unchanged => "unchanged",
            PlanAction::Delete => "delete",
            PlanAction::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanResponse {
    pub service: String,
    pub action: PlanAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<DesiredView>,
    pub operations: Vec<OperationSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl PlanResponse {
    /// `existed`: whether an owned load balancer was observed before planning.
    pub fn new(translation: &Translation, operations: &[Operation], existed: bool) -> Self {
        let operations: Vec<OperationSummary> = operations.iter().map(Operation::summary).collect();
        match translation {
            Translation::Skip {
                service, reason, ..
            } => PlanResponse {
                service: service.to_string(),
                action: PlanAction::Skip,
                reason: Some(reason.clone()),
                desired: None,
                operations,
                notes: Vec::new(),
            },
            Translation::LoadBalancer(d) => PlanResponse {
                service: d.service.to_string(),
                action: match (existed, operations.is_empty()) {
                    (false, _) => PlanAction::Create,
                    (true, true) => PlanAction::Unchanged,
                    (true, false) => PlanAction::Update,
                },
                reason: None,
                desired: Some(DesiredView::from(d.as_ref())),
                operations,
                notes: d.notes.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DesiredView {
    pub name: String,
    #[schema(value_type = Option<String>)]
    pub vip_address: Option<IpAddr>,
    pub vip_subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_vips: Vec<Vip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    pub listeners: Vec<ListenerView>,
    pub floating_ip: FloatingIpView,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DesiredListener)]
#[serde(rename_all = "camelCase")]
pub struct ListenerView {
    pub name: String,
    pub protocol: &'static str,
    pub protocol_port: u16,
    pub allowed_cidrs: Vec<String>,
    #[serde(flatten)]
    pub options: ListenerOptions,
    pub pool: PoolView,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DesiredPool)]
#[serde(rename_all = "camelCase")]
pub struct PoolView {
    pub name: String,
    pub protocol: &'static str,
    pub lb_algorithm: &'static str,
    pub session_persistence: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_monitor: Option<HealthMonitor>,
    pub member_subnet_id: Option<String>,
    /// False when no Endpoints were given: existing members are left alone.
    pub members_managed: bool,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DesiredFloatingIp)]
#[serde(rename_all = "camelCase")]
pub struct FloatingIpView {
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

impl From<&DesiredListener> for ListenerView {
    fn from(l: &DesiredListener) -> Self {
        ListenerView {
            name: l.name.clone(),
            protocol: l.protocol.as_str(),
            protocol_port: l.protocol_port,
            allowed_cidrs: l.allowed_cidrs.iter().map(ToString::to_string).collect(),
            options: l.options.clone(),
            pool: PoolView {
                name: l.pool.name.clone(),
                protocol: l.pool.protocol.as_str(),
                lb_algorithm: l.pool.lb_algorithm.as_str(),
                session_persistence: l.pool.session_persistence.map(|p| p.as_str()),
                health_monitor: l.pool.health_monitor.clone(),
                member_subnet_id: l.pool.member_subnet.clone(),
                members_managed: l.pool.members.is_some(),
                members: l.pool.members.iter().flatten().copied().collect(),
            },
        }
    }
}

impl From<&DesiredLoadBalancer> for DesiredView {
    fn from(d: &DesiredLoadBalancer) -> Self {
        let floating_ip = match &d.floating_ip {
            FloatingIpIntent::None => FloatingIpView {
                method: "none",
                address: None,
                subnet_id: None,
                network_id: None,
            },
            FloatingIpIntent::Pool {
                subnet_id,
                network_id,
                ..
            } => FloatingIpView {
                method: "pool",
                address: None,
                subnet_id: subnet_id.clone(),
                network_id: network_id.clone(),
            },
            FloatingIpIntent::User { address } => FloatingIpView {
                method: "user",
                address: Some(address.to_string()),
                subnet_id: None,
                network_id: None,
            },
        };
        DesiredView {
            name: d.name.clone(),
            vip_address: d.vip.address,
            vip_subnet_id: d.vip.subnet_id.clone(),
            additional_vips: d.additional_vips.clone(),
            provider: d.provider.clone(),
            flavor_id: d.flavor_id.clone(),
            availability_zone: d.availability_zone.clone(),
            listeners: d.listeners.iter().map(ListenerView::from).collect(),
            floating_ip,
            tags: d.tags.clone(),
        }
    }
}
