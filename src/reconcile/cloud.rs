//! The cloud as the reconciler needs it: the writes ([`LoadBalancing`], one
//! method per call) and the reads ([`Observing`]). The OpenStack client
//! implements both here; a test double can stand in for it.

use std::collections::HashMap;

use crate::config::Api;
use crate::gateway::design::DesignRule;
use crate::gateway::plan::ObservedGateway;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, FloatingSubnetMatch, HealthMonitor,
    ListenerUpdate, Lookup, Member, MemberSpec, Observed, ObservedFloatingIp, ObservedLoadBalancer,
    PoolUpdate, ReferenceKind, SecurityGroupRule, StoredCertificate, VipSecurityGroup,
};
use crate::openstack::cloud::SubnetInfo;
use crate::openstack::gateway::PolicyWrite;
use crate::openstack::octavia::CreatedLoadBalancer;
use crate::openstack::{Cloud, OpenStackError};
use crate::plan::{Adoptee, OperationSummary};

type Result<T> = std::result::Result<T, OpenStackError>;

/// Progress of an apply, for streaming answers (gRPC `ApplyStream`).
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    Started(OperationSummary),
    Finished(OperationSummary),
    Waited {
        load_balancer_id: String,
        status: String,
        elapsed_ms: u64,
    },
}

/// One request's OpenStack call counts, and where to report progress if
/// anyone listens.
#[derive(Debug, Default)]
pub struct Calls {
    pub counts: crate::openstack::Calls,
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<ProgressEvent>>,
}

impl std::ops::Deref for Calls {
    type Target = crate::openstack::Calls;
    fn deref(&self) -> &crate::openstack::Calls {
        &self.counts
    }
}

impl Calls {
    pub fn report(&self, event: ProgressEvent) {
        if let Some(tx) = &self.progress {
            // A listener that went away only means nobody watches any more.
            let _ = tx.send(event);
        }
    }
}

/// The writes a plan needs, and the one read the waits need: one method per
/// cloud call.
#[tonic::async_trait]
pub trait LoadBalancing: Send + Sync {
    #[allow(clippy::too_many_arguments)]
    async fn create_load_balancer(
        &self,
        calls: &Calls,
        load_balancer: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional_vips: bool,
        vip_sg_ids: &[String],
    ) -> Result<CreatedLoadBalancer>;
    /// A Kubernetes TLS Secret's certificate as a Barbican container named
    /// `name`; answers its reference.
    async fn store_certificate(
        &self,
        calls: &Calls,
        name: &str,
        material: &crate::certificate::TlsMaterial,
    ) -> Result<String>;
    /// A certificate container and its secrets (gone already: done).
    async fn delete_certificate(&self, calls: &Calls, container_ref: &str) -> Result<()>;
    /// The VIP security group with its rules; answers its id.
    async fn create_security_group(
        &self,
        calls: &Calls,
        group: &VipSecurityGroup,
        description: &str,
    ) -> Result<String>;
    async fn add_security_group_rules(
        &self,
        calls: &Calls,
        id: &str,
        rules: &[SecurityGroupRule],
    ) -> Result<()>;
    async fn delete_security_group_rule(&self, calls: &Calls, id: &str) -> Result<()>;
    async fn delete_security_group(&self, calls: &Calls, id: &str) -> Result<()>;
    /// The VIP port's security groups (`vip_sg_ids`; empty: Octavia's).
    async fn set_vip_security_groups(&self, calls: &Calls, id: &str, ids: &[String]) -> Result<()>;
    /// A load balancer's tags as they are now (a shared one's, before a change).
    async fn load_balancer_tags(&self, calls: &Calls, id: &str) -> Result<Vec<String>>;
    async fn delete_load_balancer(&self, calls: &Calls, id: &str) -> Result<()>;
    /// The `provisioning_status` of each of `ids`, in one read; a load
    /// balancer missing from the answer is gone.
    async fn load_balancer_statuses(
        &self,
        calls: &Calls,
        ids: &[String],
    ) -> Result<HashMap<String, String>>;
    async fn create_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &DesiredListener,
        owner: &[String],
        with_pool: bool,
    ) -> Result<Option<String>>;
    /// A `PROMETHEUS` listener (no pool, `allowed_cidrs` only).
    async fn create_prometheus_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &crate::model::PrometheusListener,
        owner: &[String],
    ) -> Result<Option<String>>;
    async fn update_listener(&self, calls: &Calls, id: &str, update: &ListenerUpdate)
    -> Result<()>;
    async fn delete_listener(&self, calls: &Calls, id: &str) -> Result<()>;
    async fn create_pool(
        &self,
        calls: &Calls,
        listener_id: &str,
        pool: &DesiredPool,
        owner: &[String],
        populated: bool,
    ) -> Result<Option<String>>;
    async fn update_pool(&self, calls: &Calls, id: &str, update: &PoolUpdate) -> Result<()>;
    async fn delete_pool(&self, calls: &Calls, id: &str) -> Result<()>;
    async fn replace_members(
        &self,
        calls: &Calls,
        pool_id: &str,
        members: &[MemberSpec],
        owner: &[String],
    ) -> Result<()>;
    async fn create_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        member: &Member,
        subnet_id: &Option<String>,
        owner: &[String],
    ) -> Result<Option<String>>;
    async fn delete_member(&self, calls: &Calls, pool_id: &str, id: &str) -> Result<()>;
    /// A member's weight (and its name: ownership, draining or not).
    async fn update_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        id: &str,
        member: &Member,
        owner: &[String],
    ) -> Result<()>;
    async fn create_health_monitor(
        &self,
        calls: &Calls,
        pool_id: &str,
        monitor: &HealthMonitor,
        owner: &[String],
    ) -> Result<Option<String>>;
    async fn update_health_monitor(
        &self,
        calls: &Calls,
        id: &str,
        monitor: &HealthMonitor,
    ) -> Result<()>;
    async fn delete_health_monitor(&self, calls: &Calls, id: &str) -> Result<()>;
    async fn floating_network(
        &self,
        calls: &Calls,
        network_id: &Option<String>,
        subnet_id: &Option<String>,
    ) -> Result<String>;
    async fn create_floating_ip(
        &self,
        calls: &Calls,
        network_id: &str,
        port_id: &str,
        subnet_id: &Option<String>,
        description: &str,
    ) -> Result<Option<crate::model::ObservedFloatingIp>>;
    async fn set_floating_ip_port(
        &self,
        calls: &Calls,
        id: &str,
        port_id: Option<&str>,
    ) -> Result<()>;
    async fn delete_floating_ip(&self, calls: &Calls, id: &str) -> Result<()>;
    /// Takes over another tool's object: `new_name` (when given) and `tags`
    /// on a load-balancing object; on a floating IP, `tags` as its description.
    async fn adopt(
        &self,
        calls: &Calls,
        resource: Adoptee,
        id: &str,
        new_name: Option<&str>,
        tags: &[String],
    ) -> Result<()>;
}

/// The OpenStack client, call for call.
#[tonic::async_trait]
impl LoadBalancing for Cloud {
    async fn create_load_balancer(
        &self,
        calls: &Calls,
        load_balancer: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional_vips: bool,
        vip_sg_ids: &[String],
    ) -> Result<CreatedLoadBalancer> {
        Cloud::create_load_balancer(
            self,
            calls,
            load_balancer,
            owner,
            populated,
            additional_vips,
            vip_sg_ids,
        )
        .await
    }
    async fn create_security_group(
        &self,
        calls: &Calls,
        group: &VipSecurityGroup,
        description: &str,
    ) -> Result<String> {
        Cloud::create_security_group(self, calls, group, description).await
    }
    async fn add_security_group_rules(
        &self,
        calls: &Calls,
        id: &str,
        rules: &[SecurityGroupRule],
    ) -> Result<()> {
        Cloud::add_security_group_rules(self, calls, id, rules).await
    }
    async fn store_certificate(
        &self,
        calls: &Calls,
        name: &str,
        material: &crate::certificate::TlsMaterial,
    ) -> Result<String> {
        Cloud::store_certificate(self, calls, name, material).await
    }
    async fn delete_certificate(&self, calls: &Calls, container_ref: &str) -> Result<()> {
        Cloud::delete_certificate(self, calls, container_ref).await
    }
    async fn delete_security_group_rule(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_security_group_rule(self, calls, id).await
    }
    async fn delete_security_group(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_security_group(self, calls, id).await
    }
    async fn set_vip_security_groups(&self, calls: &Calls, id: &str, ids: &[String]) -> Result<()> {
        Cloud::set_vip_security_groups(self, calls, id, ids).await
    }
    async fn load_balancer_tags(&self, calls: &Calls, id: &str) -> Result<Vec<String>> {
        Cloud::load_balancer_tags(self, calls, id).await
    }
    async fn delete_load_balancer(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_load_balancer(self, calls, id).await
    }
    async fn load_balancer_statuses(
        &self,
        calls: &Calls,
        ids: &[String],
    ) -> Result<HashMap<String, String>> {
        Cloud::load_balancer_statuses(self, calls, ids).await
    }
    async fn create_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &DesiredListener,
        owner: &[String],
        with_pool: bool,
    ) -> Result<Option<String>> {
        Cloud::create_listener(self, calls, load_balancer_id, listener, owner, with_pool).await
    }
    async fn create_prometheus_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        listener: &crate::model::PrometheusListener,
        owner: &[String],
    ) -> Result<Option<String>> {
        Cloud::create_prometheus_listener(self, calls, load_balancer_id, listener, owner).await
    }
    async fn update_listener(
        &self,
        calls: &Calls,
        id: &str,
        update: &ListenerUpdate,
    ) -> Result<()> {
        Cloud::update_listener(self, calls, id, update).await
    }
    async fn delete_listener(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_listener(self, calls, id).await
    }
    async fn create_pool(
        &self,
        calls: &Calls,
        listener_id: &str,
        pool: &DesiredPool,
        owner: &[String],
        populated: bool,
    ) -> Result<Option<String>> {
        Cloud::create_pool(self, calls, listener_id, pool, owner, populated).await
    }
    async fn update_pool(&self, calls: &Calls, id: &str, update: &PoolUpdate) -> Result<()> {
        Cloud::update_pool(self, calls, id, update).await
    }
    async fn delete_pool(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_pool(self, calls, id).await
    }
    async fn replace_members(
        &self,
        calls: &Calls,
        pool_id: &str,
        members: &[MemberSpec],
        owner: &[String],
    ) -> Result<()> {
        Cloud::replace_members(self, calls, pool_id, members, owner).await
    }
    async fn create_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        member: &Member,
        subnet_id: &Option<String>,
        owner: &[String],
    ) -> Result<Option<String>> {
        Cloud::create_member(self, calls, pool_id, member, subnet_id, owner).await
    }
    async fn update_member(
        &self,
        calls: &Calls,
        pool_id: &str,
        id: &str,
        member: &Member,
        owner: &[String],
    ) -> Result<()> {
        Cloud::update_member(self, calls, pool_id, id, member, owner).await
    }
    async fn delete_member(&self, calls: &Calls, pool_id: &str, id: &str) -> Result<()> {
        Cloud::delete_member(self, calls, pool_id, id).await
    }
    async fn create_health_monitor(
        &self,
        calls: &Calls,
        pool_id: &str,
        monitor: &HealthMonitor,
        owner: &[String],
    ) -> Result<Option<String>> {
        Cloud::create_health_monitor(self, calls, pool_id, monitor, owner).await
    }
    async fn update_health_monitor(
        &self,
        calls: &Calls,
        id: &str,
        monitor: &HealthMonitor,
    ) -> Result<()> {
        Cloud::update_health_monitor(self, calls, id, monitor).await
    }
    async fn delete_health_monitor(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_health_monitor(self, calls, id).await
    }
    async fn floating_network(
        &self,
        calls: &Calls,
        network_id: &Option<String>,
        subnet_id: &Option<String>,
    ) -> Result<String> {
        Cloud::floating_network(self, calls, network_id, subnet_id).await
    }
    async fn create_floating_ip(
        &self,
        calls: &Calls,
        network_id: &str,
        port_id: &str,
        subnet_id: &Option<String>,
        description: &str,
    ) -> Result<Option<crate::model::ObservedFloatingIp>> {
        Cloud::create_floating_ip(self, calls, network_id, port_id, subnet_id, description).await
    }
    async fn set_floating_ip_port(
        &self,
        calls: &Calls,
        id: &str,
        port_id: Option<&str>,
    ) -> Result<()> {
        Cloud::set_floating_ip_port(self, calls, id, port_id).await
    }
    async fn delete_floating_ip(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_floating_ip(self, calls, id).await
    }
    async fn adopt(
        &self,
        calls: &Calls,
        resource: Adoptee,
        id: &str,
        new_name: Option<&str>,
        tags: &[String],
    ) -> Result<()> {
        Cloud::adopt(self, calls, resource, id, new_name, tags).await
    }
}

/// What the reconciler reads.
#[tonic::async_trait]
pub trait Observing: Send + Sync {
    fn api(&self) -> Api;
    /// Octavia's newest API minor version (`None`: legacy API or unknown).
    async fn octavia_minor(&self, calls: &Calls) -> Result<Option<u32>>;
    /// The providers the load-balancing API offers (`None`: unknown).
    async fn providers(&self, calls: &Calls) -> Result<Option<Vec<String>>>;
    async fn subnet(&self, calls: &Calls, id: &str) -> Result<SubnetInfo>;
    /// Who uses a port (a `port-id` annotation's).
    async fn port_use(&self, calls: &Calls, id: &str) -> Result<crate::openstack::cloud::PortUse>;
    /// The subnets of a network a floating-subnet pattern selects, `(id, name)` by name.
    async fn matching_subnets(
        &self,
        calls: &Calls,
        network_id: &str,
        m: &FloatingSubnetMatch,
    ) -> Result<Vec<(String, String)>>;
    /// `Missing` when a user-named object does not exist.
    async fn require(&self, calls: &Calls, kind: ReferenceKind, id: &str) -> Result<()>;
    /// A Barbican reference's name (`Missing` when it does not exist).
    async fn certificate_name(&self, calls: &Calls, reference: &str) -> Result<Option<String>>;
    /// What exists for a Service: its load balancers (by id hint, owner tags
    /// or name), their trees, and its floating IPs; and load balancers named
    /// one of `adoptable` (another tool's, to take over), with their trees.
    async fn observe(&self, calls: &Calls, lookup: Lookup<'_>) -> Result<Observed>;
    /// The certificate containers named `name` (none without Barbican).
    async fn certificates(&self, calls: &Calls, name: &str) -> Result<Vec<StoredCertificate>>;
    /// Everything this cluster owns (for `/v1/sync`'s collection).
    async fn owned_by_cluster(
        &self,
        calls: &Calls,
        cluster_tag: &str,
    ) -> Result<(Vec<ObservedLoadBalancer>, Vec<ObservedFloatingIp>)>;
    /// Whether the cloud can be used now (`/readyz`).
    async fn ready(&self) -> Result<()>;
}

/// What only Gateways need: their tree read whole, pools on the load
/// balancer, listeners without a default pool, L7 policies and rules. A
/// cloud without them (the in-memory test double) answers every call with
/// a precondition error.
#[tonic::async_trait]
pub trait Gateways: Send + Sync {
    async fn read_gateway(
        &self,
        _calls: &Calls,
        _name: &str,
        _owner: &[String],
        _fip_description: &str,
    ) -> Result<ObservedGateway> {
        Err(no_gateways())
    }
    async fn create_gateway_pool(
        &self,
        _calls: &Calls,
        _load_balancer_id: &str,
        _name: &str,
        _protocol: &str,
        _owner: &[String],
    ) -> Result<String> {
        Err(no_gateways())
    }
    #[allow(clippy::too_many_arguments)]
    async fn create_gateway_listener(
        &self,
        _calls: &Calls,
        _load_balancer_id: &str,
        _name: &str,
        _protocol: &str,
        _port: u16,
        _certificates: &[String],
        _default_pool_id: Option<&str>,
        _owner: &[String],
    ) -> Result<String> {
        Err(no_gateways())
    }
    async fn update_gateway_listener(
        &self,
        _calls: &Calls,
        _id: &str,
        _certificates: Option<&[String]>,
        _default_pool_id: Option<Option<&str>>,
    ) -> Result<()> {
        Err(no_gateways())
    }
    async fn create_l7_policy(
        &self,
        _calls: &Calls,
        _listener_id: &str,
        _position: u32,
        _action: &PolicyWrite<'_>,
        _source: &str,
        _owner: &[String],
    ) -> Result<String> {
        Err(no_gateways())
    }
    async fn move_l7_policy(&self, _calls: &Calls, _id: &str, _position: u32) -> Result<()> {
        Err(no_gateways())
    }
    async fn delete_l7_policy(&self, _calls: &Calls, _id: &str) -> Result<()> {
        Err(no_gateways())
    }
    async fn create_l7_rule(
        &self,
        _calls: &Calls,
        _policy_id: &str,
        _rule: &DesignRule,
        _owner: &[String],
    ) -> Result<()> {
        Err(no_gateways())
    }
    async fn delete_l7_rule(&self, _calls: &Calls, _policy_id: &str, _id: &str) -> Result<()> {
        Err(no_gateways())
    }
    async fn enable_l7_policy(&self, _calls: &Calls, _id: &str) -> Result<()> {
        Err(no_gateways())
    }
}

fn no_gateways() -> OpenStackError {
    OpenStackError::Precondition("this cloud does not serve Gateways".into())
}

#[tonic::async_trait]
impl Gateways for Cloud {
    async fn read_gateway(
        &self,
        calls: &Calls,
        name: &str,
        owner: &[String],
        fip_description: &str,
    ) -> Result<ObservedGateway> {
        Cloud::read_gateway(self, calls, name, owner, fip_description).await
    }
    async fn create_gateway_pool(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        name: &str,
        protocol: &str,
        owner: &[String],
    ) -> Result<String> {
        Cloud::create_gateway_pool(self, calls, load_balancer_id, name, protocol, owner).await
    }
    async fn create_gateway_listener(
        &self,
        calls: &Calls,
        load_balancer_id: &str,
        name: &str,
        protocol: &str,
        port: u16,
        certificates: &[String],
        default_pool_id: Option<&str>,
        owner: &[String],
    ) -> Result<String> {
        Cloud::create_gateway_listener(
            self,
            calls,
            load_balancer_id,
            name,
            protocol,
            port,
            certificates,
            default_pool_id,
            owner,
        )
        .await
    }
    async fn update_gateway_listener(
        &self,
        calls: &Calls,
        id: &str,
        certificates: Option<&[String]>,
        default_pool_id: Option<Option<&str>>,
    ) -> Result<()> {
        Cloud::update_gateway_listener(self, calls, id, certificates, default_pool_id).await
    }
    async fn create_l7_policy(
        &self,
        calls: &Calls,
        listener_id: &str,
        position: u32,
        action: &PolicyWrite<'_>,
        source: &str,
        owner: &[String],
    ) -> Result<String> {
        Cloud::create_l7_policy(self, calls, listener_id, position, action, source, owner).await
    }
    async fn move_l7_policy(&self, calls: &Calls, id: &str, position: u32) -> Result<()> {
        Cloud::move_l7_policy(self, calls, id, position).await
    }
    async fn delete_l7_policy(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::delete_l7_policy(self, calls, id).await
    }
    async fn create_l7_rule(
        &self,
        calls: &Calls,
        policy_id: &str,
        rule: &DesignRule,
        owner: &[String],
    ) -> Result<()> {
        Cloud::create_l7_rule(self, calls, policy_id, rule, owner).await
    }
    async fn delete_l7_rule(&self, calls: &Calls, policy_id: &str, id: &str) -> Result<()> {
        Cloud::delete_l7_rule(self, calls, policy_id, id).await
    }
    async fn enable_l7_policy(&self, calls: &Calls, id: &str) -> Result<()> {
        Cloud::enable_l7_policy(self, calls, id).await
    }
}

/// All three: what the [`Reconciler`](super::Reconciler) holds.
pub trait CloudPort: LoadBalancing + Observing + Gateways {}
impl<T: LoadBalancing + Observing + Gateways> CloudPort for T {}

#[tonic::async_trait]
impl Observing for Cloud {
    fn api(&self) -> Api {
        self.api
    }
    async fn octavia_minor(&self, calls: &Calls) -> Result<Option<u32>> {
        Cloud::octavia_minor(self, calls).await
    }
    async fn providers(&self, calls: &Calls) -> Result<Option<Vec<String>>> {
        Cloud::providers(self, calls).await
    }
    async fn port_use(&self, calls: &Calls, id: &str) -> Result<crate::openstack::cloud::PortUse> {
        Cloud::port_use(self, calls, id).await
    }
    async fn subnet(&self, calls: &Calls, id: &str) -> Result<SubnetInfo> {
        Cloud::subnet(self, calls, id).await
    }
    async fn matching_subnets(
        &self,
        calls: &Calls,
        network_id: &str,
        m: &FloatingSubnetMatch,
    ) -> Result<Vec<(String, String)>> {
        Cloud::matching_subnets(self, calls, network_id, m).await
    }
    async fn require(&self, calls: &Calls, kind: ReferenceKind, id: &str) -> Result<()> {
        Cloud::require(self, calls, kind, id).await
    }
    async fn certificate_name(&self, calls: &Calls, reference: &str) -> Result<Option<String>> {
        Cloud::certificate_name(self, calls, reference).await
    }
    async fn observe(&self, calls: &Calls, lookup: Lookup<'_>) -> Result<Observed> {
        Cloud::observe(self, calls, lookup).await
    }
    async fn certificates(&self, calls: &Calls, name: &str) -> Result<Vec<StoredCertificate>> {
        Cloud::certificates(self, calls, name).await
    }
    async fn owned_by_cluster(
        &self,
        calls: &Calls,
        cluster_tag: &str,
    ) -> Result<(Vec<ObservedLoadBalancer>, Vec<ObservedFloatingIp>)> {
        Cloud::owned_by_cluster(self, calls, cluster_tag).await
    }
    async fn ready(&self) -> Result<()> {
        self.session().check().await
    }
}
