//! An in-memory cloud: a test double of OpenStack for the reconciler. It
//! answers the calls of [`LoadBalancing`] the way Octavia and Neutron would
//! (cascade delete, default pools, batch member replacement, floating IPs
//! that lose their port with the VIP) and observes itself the way the
//! client observes OpenStack ([`Observing`]). [`InMemoryCloud`] adds what a
//! test of the reconcile loop needs: load balancers that stay PENDING_* for
//! a few reads, 409s, ERROR. Plans run through the one interpreter
//! (`execute.rs`): [`MemoryCloud::apply`] proves plans converge and feeds
//! the benchmarks.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use crate::config::Api;
use crate::model::{
    DesiredListener, DesiredLoadBalancer, DesiredPool, HealthMonitor, ListenerUpdate, Lookup,
    Member, MemberSpec, Observed, ObservedFloatingIp, ObservedHealthMonitor, ObservedListener,
    ObservedLoadBalancer, ObservedMember, ObservedPool, PoolUpdate, ReferenceKind,
};
use crate::openstack::OpenStackError;
use crate::reconcile::board::StatusBoard;
use crate::reconcile::cloud::{Calls, LoadBalancing, Observing};
use crate::reconcile::execute::{self, Progress};
use crate::selection::{Selection, TreeRead};

/// The pod subnet's id in the in-memory cloud: 10.1.0.0/16.
pub const POD_SUBNET: &str = "0a5e4a7e-8f0e-4c3e-9d1a-1b2c3d4e5f60";
use crate::openstack::cloud::SubnetInfo;
use crate::openstack::octavia::CreatedLoadBalancer;
use crate::plan::{Adoptee, Operation};

type Result<T> = std::result::Result<T, OpenStackError>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryCloud {
    pub load_balancers: Vec<ObservedLoadBalancer>,
    pub floating_ips: Vec<ObservedFloatingIp>,
    pub security_groups: Vec<crate::model::ObservedSecurityGroup>,
    /// Barbican's certificate containers: (name, reference, digest).
    pub certificates: Vec<(String, String, String)>,
    next_id: u64,
}

impl MemoryCloud {
    pub fn new() -> Self {
        Self::default()
    }

    fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{}", self.next_id)
    }

    /// What the reconciler would read for a Service: load balancers carrying
    /// `owner_tags` or named `name`, floating IPs carrying `owner_tags` or bound
    /// to one of those VIP ports, and the User method's floating IP by address.
    pub fn observe(
        &self,
        owner_tags: &[String],
        name: &str,
        user_address: Option<Ipv4Addr>,
    ) -> Observed {
        self.observe_adoptable(owner_tags, name, &[], user_address)
    }

    /// [`MemoryCloud::observe`], and other tools' load balancers named
    /// one of `adoptable`.
    pub fn observe_adoptable(
        &self,
        owner_tags: &[String],
        name: &str,
        adoptable: &[String],
        user_address: Option<Ipv4Addr>,
    ) -> Observed {
        self.observe_lookup(Lookup {
            adoptable,
            user_address,
            ..Lookup::by_name(name, owner_tags)
        })
    }

    /// What a [`Lookup`] reads: also the load balancer named by id, and with
    /// `shared` those carrying the Service's sharer tag.
    pub fn observe_lookup(&self, lookup: Lookup<'_>) -> Observed {
        // The client's selection rules, over everything this cloud holds.
        let rules = Selection::new(lookup);
        let found = rules.found(
            self.load_balancers
                .iter()
                .filter(|lb| rules.holds(lb, false))
                .map(|lb| (lb.id.as_str(), lb.tags.as_slice())),
        );
        let shared_read = rules.reads_shared(found);
        let load_balancers: Vec<ObservedLoadBalancer> = self
            .load_balancers
            .iter()
            .filter(|lb| rules.holds(lb, shared_read))
            .cloned()
            .map(|mut lb| {
                if rules.tree(&lb) == TreeRead::Nothing {
                    lb.listeners.clear();
                    lb.pools.clear();
                }
                // As on Octavia: the status tree shows no weights; a pool
                // with a member not named as ours has its list read.
                if !lookup.member_weights {
                    for pool in &mut lb.pools {
                        if pool.members.iter().all(|m| !m.tags.is_empty()) {
                            // Drained members say so in their names.
                            pool.members
                                .iter_mut()
                                .filter(|m| m.weight != Some(Member::DRAINING))
                                .for_each(|m| m.weight = None);
                        }
                    }
                }
                // As the simulator's health manager reports them: a member
                // of a monitored pool ONLINE, else NO_MONITOR.
                for pool in &mut lb.pools {
                    let status = if pool.health_monitor.is_some() {
                        "ONLINE"
                    } else {
                        "NO_MONITOR"
                    };
                    for m in &mut pool.members {
                        m.operating_status = status.to_string();
                    }
                }
                lb
            })
            .collect();
        let ports = rules.vip_ports(&load_balancers);
        let read = !lookup.after_writes;
        let floating_ips = self
            .floating_ips
            .iter()
            .filter(|f| read && rules.holds_floating_ip(f, &ports))
            .cloned()
            .collect();
        let user_floating_ip = match read {
            true => rules.user_floating_ip(&self.floating_ips),
            false => crate::model::FloatingIpLookup::NotLookedUp,
        };
        let left = rules.reads_left_security_group(&load_balancers);
        let security_groups = self
            .security_groups
            .iter()
            .filter(|g| rules.holds_security_group(g, left))
            .cloned()
            .collect();
        Observed {
            load_balancers,
            floating_ips,
            user_floating_ip,
            deleting: Vec::new(),
            security_groups,
        }
    }

    /// A security group with `rules` (Neutron's; no port is checked).
    pub fn create_security_group(
        &mut self,
        group: &crate::model::VipSecurityGroup,
        description: &str,
    ) -> String {
        let id = self.id("sg");
        let mut sg = crate::model::ObservedSecurityGroup {
            id: id.clone(),
            name: group.name.clone(),
            description: Some(description.to_string()),
            rules: Vec::new(),
        };
        for r in &group.rules {
            let rule = self.id("rule");
            sg.rules.push((rule, r.clone()));
        }
        self.security_groups.push(sg);
        id
    }

    pub fn add_security_group_rules(
        &mut self,
        id: &str,
        rules: &[crate::model::SecurityGroupRule],
    ) -> Result<()> {
        let ids: Vec<String> = rules.iter().map(|_| self.id("rule")).collect();
        let sg = self
            .security_groups
            .iter_mut()
            .find(|g| g.id == id)
            .ok_or_else(|| not_found("security_group", id))?;
        sg.rules.extend(ids.into_iter().zip(rules.iter().cloned()));
        Ok(())
    }

    /// Adds a floating IP nobody in this tool created (the User method's).
    pub fn add_user_floating_ip(&mut self, address: Ipv4Addr) -> String {
        let id = self.id("fip");
        self.floating_ips.push(ObservedFloatingIp {
            id: id.clone(),
            address: IpAddr::V4(address),
            port_id: None,
            network_id: Some("public".into()),
            tags: Vec::new(),
            description: None,
        });
        id
    }

    /// Applies `ops` in order through the interpreter; created
    /// sub-resources carry `owner_tags`. Panics on an operation OpenStack
    /// would refuse (a missing id): plans that do that are bugs the tests
    /// must see.
    pub fn apply(&mut self, ops: &[Operation], owner_tags: &[String]) {
        let cloud = InMemoryCloud::new(std::mem::take(self));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
        runtime.block_on(async {
            let calls = Calls::default();
            let mut progress = Progress::default();
            // Nothing is ever pending here: no pause before a status read.
            let board = StatusBoard::unpaced();
            for op in ops {
                if let Err(e) = execute::execute(
                    &cloud,
                    &board,
                    &calls,
                    op,
                    owner_tags,
                    &mut progress,
                    std::time::Duration::from_secs(60),
                )
                .await
                {
                    panic!("{op:?}: {e}");
                }
            }
        });
        *self = cloud.into_inner();
    }

    fn lb(&mut self, id: &str) -> Result<&mut ObservedLoadBalancer> {
        self.load_balancers
            .iter_mut()
            .find(|lb| lb.id == id)
            .ok_or_else(|| not_found("loadbalancer", id))
    }

    fn listener(&mut self, id: &str) -> Result<&mut ObservedListener> {
        self.load_balancers
            .iter_mut()
            .flat_map(|lb| lb.listeners.iter_mut())
            .find(|l| l.id == id)
            .ok_or_else(|| not_found("listener", id))
    }

    fn monitor(&mut self, id: &str) -> Result<&mut ObservedHealthMonitor> {
        self.load_balancers
            .iter_mut()
            .flat_map(|lb| lb.pools.iter_mut())
            .filter_map(|p| p.health_monitor.as_mut())
            .find(|hm| hm.id == id)
            .ok_or_else(|| not_found("healthmonitor", id))
    }

    fn pool(&mut self, id: &str) -> Result<&mut ObservedPool> {
        self.load_balancers
            .iter_mut()
            .flat_map(|lb| lb.pools.iter_mut())
            .find(|p| p.id == id)
            .ok_or_else(|| not_found("pool", id))
    }

    pub fn create_load_balancer(
        &mut self,
        d: &DesiredLoadBalancer,
        tags: &[String],
        populated: bool,
        additional_vips: bool,
    ) -> CreatedLoadBalancer {
        let id = self.id("lb");
        let port = self.id("port");
        let vip_address = d.vip.address.or_else(|| {
            Some(IpAddr::V4(Ipv4Addr::new(
                10,
                2,
                128,
                (self.next_id % 250) as u8 + 1,
            )))
        });
        let mut lb = ObservedLoadBalancer {
            id: id.clone(),
            name: d.name.clone(),
            vip_address,
            vip_subnet_id: d.vip.subnet_id.clone(),
            vip_network_id: d.vip.network_id.clone(),
            vip_port_id: Some(port.clone()),
            additional_vips: if additional_vips {
                d.additional_vips.iter().filter_map(|v| v.address).collect()
            } else {
                Vec::new()
            },
            provisioning_status: "ACTIVE".into(),
            operating_status: "ONLINE".into(),
            flavor_id: d.flavor_id.clone(),
            availability_zone: d.availability_zone.clone(),
            // Octavia's default provider when none is asked for.
            provider: Some(d.provider.clone().unwrap_or_else(|| "amphora".into())),
            listeners: Vec::new(),
            pools: Vec::new(),
            tags: d.tags.clone(),
            vip_sg_ids: Vec::new(),
            created_at: Some(format!(
                "2026-01-01T00:{:02}:{:02}",
                self.next_id / 60 % 60,
                self.next_id % 60
            )),
        };
        let mut listeners = Vec::new();
        if populated {
            for l in &d.listeners {
                let mut listener = self.new_listener(l, tags);
                let pool = self.new_pool(&l.pool, true, tags);
                listener.default_pool_id = Some(pool.id.clone());
                listeners.push((listener.name.clone(), listener.id.clone()));
                lb.listeners.push(listener);
                lb.pools.push(pool);
            }
        }
        self.load_balancers.push(lb);
        CreatedLoadBalancer {
            id: Some(id),
            vip_port_id: Some(port),
            listeners,
        }
    }

    pub fn delete_load_balancer(&mut self, id: &str) -> Result<()> {
        let i = self
            .load_balancers
            .iter()
            .position(|lb| lb.id == id)
            .ok_or_else(|| not_found("loadbalancer", id))?;
        let lb = self.load_balancers.remove(i);
        for fip in &mut self.floating_ips {
            if fip.port_id.is_some() && fip.port_id == lb.vip_port_id {
                fip.port_id = None;
            }
        }
        Ok(())
    }

    pub fn create_listener(
        &mut self,
        lb_id: &str,
        listener: &DesiredListener,
        tags: &[String],
        with_pool: bool,
    ) -> Result<String> {
        self.lb(lb_id)?;
        let mut l = self.new_listener(listener, tags);
        let pool = with_pool.then(|| self.new_pool(&listener.pool, true, tags));
        let lb = self.lb(lb_id)?;
        if let Some(pool) = pool {
            l.default_pool_id = Some(pool.id.clone());
            lb.pools.push(pool);
        }
        let id = l.id.clone();
        lb.listeners.push(l);
        Ok(id)
    }

    pub fn create_prometheus_listener(
        &mut self,
        lb_id: &str,
        listener: &crate::model::PrometheusListener,
        tags: &[String],
    ) -> Result<String> {
        self.lb(lb_id)?;
        let id = self.id("listener");
        let lb = self.lb(lb_id)?;
        lb.listeners.push(ObservedListener {
            id: id.clone(),
            name: listener.name.clone(),
            protocol: "PROMETHEUS".into(),
            protocol_port: listener.protocol_port,
            allowed_cidrs: listener.allowed_cidrs.clone(),
            connection_limit: Some(-1),
            timeout_client_data: Some(50_000),
            timeout_member_connect: Some(5_000),
            timeout_member_data: Some(50_000),
            timeout_tcp_inspect: Some(0),
            tags: tags.to_vec(),
            ..ObservedListener::default()
        });
        Ok(id)
    }

    pub fn update_listener(&mut self, id: &str, update: &ListenerUpdate) -> Result<()> {
        let l = self.listener(id)?;
        if let Some(c) = &update.allowed_cidrs {
            l.allowed_cidrs = c.clone();
        }
        let set = |field: &mut Option<u64>, v: Option<u64>| {
            if v.is_some() {
                *field = v;
            }
        };
        if update.connection_limit.is_some() {
            l.connection_limit = update.connection_limit;
        }
        set(&mut l.timeout_client_data, update.timeout_client_data);
        set(&mut l.timeout_member_connect, update.timeout_member_connect);
        set(&mut l.timeout_member_data, update.timeout_member_data);
        set(&mut l.timeout_tcp_inspect, update.timeout_tcp_inspect);
        if let Some(h) = &update.insert_headers {
            l.insert_headers = h.iter().map(ToString::to_string).collect();
        }
        if let Some(t) = &update.tls {
            l.default_tls_container_ref = Some(t.default_tls_container_ref.clone());
            l.sni_container_refs = t.sni_container_refs.clone();
        }
        if let Some(a) = &update.alpn_protocols {
            l.alpn_protocols = a.iter().map(ToString::to_string).collect();
        }
        Ok(())
    }

    pub fn delete_listener(&mut self, id: &str) {
        for lb in &mut self.load_balancers {
            lb.listeners.retain(|l| l.id != id);
        }
    }

    pub fn create_pool(
        &mut self,
        listener_id: &str,
        pool: &DesiredPool,
        tags: &[String],
        populated: bool,
    ) -> Result<String> {
        let p = self.new_pool(pool, populated, tags);
        let lb = self
            .load_balancers
            .iter_mut()
            .find(|lb| lb.listeners.iter().any(|l| l.id == listener_id))
            .ok_or_else(|| not_found("listener", listener_id))?;
        for l in lb.listeners.iter_mut().filter(|l| l.id == listener_id) {
            l.default_pool_id = Some(p.id.clone());
        }
        let id = p.id.clone();
        lb.pools.push(p);
        Ok(id)
    }

    pub fn update_pool(&mut self, id: &str, update: &PoolUpdate) -> Result<()> {
        let p = self.pool(id)?;
        if let Some(a) = update.lb_algorithm {
            p.lb_algorithm = a.as_str().to_string();
        }
        if let Some(s) = update.session_persistence {
            p.session_persistence = s.map(|s| s.as_str().to_string());
            p.persistence_timeout = update.persistence_timeout;
        }
        if let Some(t) = &update.tags {
            p.tags = t.clone();
        }
        Ok(())
    }

    pub fn delete_pool(&mut self, id: &str) {
        for lb in &mut self.load_balancers {
            lb.pools.retain(|p| p.id != id);
            for l in &mut lb.listeners {
                if l.default_pool_id.as_deref() == Some(id) {
                    l.default_pool_id = None;
                }
            }
        }
    }

    pub fn replace_members(
        &mut self,
        pool_id: &str,
        members: &[MemberSpec],
        tags: &[String],
    ) -> Result<()> {
        let old = std::mem::take(&mut self.pool(pool_id)?.members);
        let mut new = Vec::with_capacity(members.len());
        for MemberSpec { member, owned, .. } in members {
            let existing = old
                .iter()
                .find(|m| m.address == member.address && m.protocol_port == member.protocol_port);
            let tags = if *owned {
                tags.to_vec()
            } else {
                existing.map(|m| m.tags.clone()).unwrap_or_default()
            };
            let id = match existing {
                Some(m) => m.id.clone(),
                None => self.id("member"),
            };
            new.push(ObservedMember {
                id,
                address: member.address,
                protocol_port: member.protocol_port,
                weight: Some(member.weight),
                tags,
                operating_status: String::new(),
            });
        }
        self.pool(pool_id)?.members = new;
        Ok(())
    }

    pub fn create_member(
        &mut self,
        pool_id: &str,
        member: &Member,
        tags: &[String],
    ) -> Result<String> {
        self.pool(pool_id)?;
        let id = self.id("member");
        self.pool(pool_id)?.members.push(ObservedMember {
            id: id.clone(),
            address: member.address,
            protocol_port: member.protocol_port,
            weight: Some(member.weight),
            tags: tags.to_vec(),
            operating_status: String::new(),
        });
        Ok(id)
    }

    pub fn delete_member(&mut self, pool_id: &str, id: &str) -> Result<()> {
        self.pool(pool_id)?.members.retain(|m| m.id != id);
        Ok(())
    }

    pub fn create_health_monitor(
        &mut self,
        pool_id: &str,
        monitor: &HealthMonitor,
        tags: &[String],
    ) -> Result<String> {
        self.pool(pool_id)?;
        let id = self.id("hm");
        self.pool(pool_id)?.health_monitor = Some(ObservedHealthMonitor {
            id: id.clone(),
            kind: monitor.kind.as_str().to_string(),
            delay: monitor.delay,
            timeout: monitor.timeout,
            max_retries: monitor.max_retries,
            max_retries_down: monitor.max_retries_down,
            http_method: monitor.http.as_ref().map(|h| h.http_method.clone()),
            url_path: monitor.http.as_ref().map(|h| h.url_path.clone()),
            expected_codes: monitor.http.as_ref().map(|h| h.expected_codes.clone()),
            tags: tags.to_vec(),
        });
        Ok(id)
    }

    pub fn update_health_monitor(&mut self, id: &str, monitor: &HealthMonitor) -> Result<()> {
        let hm = self.monitor(id)?;
        hm.delay = monitor.delay;
        hm.timeout = monitor.timeout;
        hm.max_retries = monitor.max_retries;
        hm.max_retries_down = monitor.max_retries_down;
        if let Some(h) = &monitor.http {
            hm.http_method = Some(h.http_method.clone());
            hm.url_path = Some(h.url_path.clone());
            hm.expected_codes = Some(h.expected_codes.clone());
        }
        Ok(())
    }

    pub fn delete_health_monitor(&mut self, id: &str) {
        for p in self
            .load_balancers
            .iter_mut()
            .flat_map(|lb| lb.pools.iter_mut())
        {
            if p.health_monitor.as_ref().is_some_and(|hm| hm.id == id) {
                p.health_monitor = None;
            }
        }
    }

    pub fn create_floating_ip(
        &mut self,
        network_id: &str,
        port_id: &str,
        tags: &[String],
    ) -> ObservedFloatingIp {
        let id = self.id("fip");
        let address = IpAddr::V4(Ipv4Addr::new(
            172,
            24,
            (self.next_id / 250) as u8 % 250,
            (self.next_id % 250) as u8 + 1,
        ));
        let made = ObservedFloatingIp {
            id,
            address,
            port_id: Some(port_id.to_string()),
            network_id: Some(network_id.to_string()),
            tags: tags.to_vec(),
            description: None,
        };
        self.floating_ips.push(made.clone());
        made
    }

    pub fn set_floating_ip_port(&mut self, id: &str, port_id: Option<&str>) -> Result<()> {
        self.fip(id)?.port_id = port_id.map(str::to_string);
        Ok(())
    }

    pub fn delete_floating_ip(&mut self, id: &str) {
        self.floating_ips.retain(|f| f.id != id);
    }

    /// Another tool's object takes our name and tags (a floating IP, our
    /// tags as its description).
    pub fn adopt(
        &mut self,
        resource: Adoptee,
        id: &str,
        new_name: Option<&str>,
        tags: &[String],
    ) -> Result<()> {
        let rename = |name: &mut String| {
            if let Some(n) = new_name {
                *name = n.to_string();
            }
        };
        match resource {
            Adoptee::LoadBalancer => {
                let lb = self.lb(id)?;
                rename(&mut lb.name);
                lb.tags = tags.to_vec();
            }
            Adoptee::Listener => {
                let l = self.listener(id)?;
                rename(&mut l.name);
                l.tags = tags.to_vec();
            }
            Adoptee::Pool => {
                let p = self.pool(id)?;
                rename(&mut p.name);
                p.tags = tags.to_vec();
            }
            Adoptee::HealthMonitor => {
                self.monitor(id)?.tags = tags.to_vec();
            }
            Adoptee::FloatingIp => {
                let f = self.fip(id)?;
                f.tags = tags.to_vec();
                f.description = Some(crate::names::owner_description(tags));
            }
        }
        Ok(())
    }

    fn new_pool(&mut self, pool: &DesiredPool, populated: bool, tags: &[String]) -> ObservedPool {
        let mut members = Vec::new();
        let mut health_monitor = None;
        if populated {
            for m in pool.members.iter().flatten() {
                members.push(ObservedMember {
                    id: self.id("member"),
                    address: m.address,
                    protocol_port: m.protocol_port,
                    weight: Some(m.weight),
                    tags: tags.to_vec(),
                    operating_status: String::new(),
                });
            }
            health_monitor = pool
                .health_monitor
                .as_ref()
                .map(|hm| ObservedHealthMonitor {
                    id: self.id("hm"),
                    kind: hm.kind.as_str().to_string(),
                    delay: hm.delay,
                    timeout: hm.timeout,
                    max_retries: hm.max_retries,
                    max_retries_down: hm.max_retries_down,
                    http_method: hm.http.as_ref().map(|h| h.http_method.clone()),
                    url_path: hm.http.as_ref().map(|h| h.url_path.clone()),
                    expected_codes: hm.http.as_ref().map(|h| h.expected_codes.clone()),
                    tags: tags.to_vec(),
                });
        }
        ObservedPool {
            id: self.id("pool"),
            name: pool.name.clone(),
            protocol: pool.protocol.as_str().to_string(),
            lb_algorithm: pool.lb_algorithm.as_str().to_string(),
            session_persistence: pool.session_persistence.map(|p| p.as_str().to_string()),
            persistence_timeout: pool.persistence_timeout,
            members,
            health_monitor,
            tags: tags.iter().chain(&pool.port_tags).cloned().collect(),
        }
    }

    fn new_listener(&mut self, l: &DesiredListener, tags: &[String]) -> ObservedListener {
        ObservedListener {
            id: self.id("listener"),
            name: l.name.clone(),
            protocol: l.protocol.as_str().to_string(),
            protocol_port: l.protocol_port,
            allowed_cidrs: l.allowed_cidrs.clone(),
            connection_limit: l.options.connection_limit.or(Some(-1)),
            timeout_client_data: l.options.timeout_client_data.or(Some(50_000)),
            timeout_member_connect: l.options.timeout_member_connect.or(Some(5_000)),
            timeout_member_data: l.options.timeout_member_data.or(Some(50_000)),
            timeout_tcp_inspect: l.options.timeout_tcp_inspect.or(Some(0)),
            insert_headers: l.insert_headers.iter().map(ToString::to_string).collect(),
            default_tls_container_ref: l.tls.as_ref().map(|t| t.default_tls_container_ref.clone()),
            sni_container_refs: l
                .tls
                .as_ref()
                .map(|t| t.sni_container_refs.clone())
                .unwrap_or_default(),
            alpn_protocols: l.alpn_protocols.iter().map(ToString::to_string).collect(),
            default_pool_id: None,
            tags: tags.to_vec(),
        }
    }

    fn fip(&mut self, id: &str) -> Result<&mut ObservedFloatingIp> {
        self.floating_ips
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or_else(|| not_found("floatingip", id))
    }
}

fn not_found(kind: &str, id: &str) -> OpenStackError {
    OpenStackError::Api {
        service: "load-balancer",
        method: "GET".into(),
        url: format!("memory://{kind}/{id}"),
        status: 404,
        request_id: None,
        message: format!("{kind} {id} not found"),
    }
}

fn conflict(id: &str, status: &str) -> OpenStackError {
    OpenStackError::Api {
        service: "load-balancer",
        method: "PUT".into(),
        url: format!("memory://loadbalancer/{id}"),
        status: 409,
        request_id: None,
        message: format!("Invalid state {status} of loadbalancer resource {id}"),
    }
}

/// A [`MemoryCloud`] behind the reconciler's port, with the status machine
/// a test of the reconcile loop needs: after each write a load balancer
/// stays `PENDING_*` for `pending_reads` status reads, writes to it answer
/// 409 meanwhile (as Octavia does), and a test can put one in ERROR or
/// answer the next writes with 409.
#[derive(Debug, Default)]
pub struct InMemoryCloud {
    state: Mutex<Inner>,
    /// Status reads a load balancer stays PENDING_* after a write.
    pub pending_reads: u32,
}

#[derive(Debug, Default)]
struct Inner {
    cloud: MemoryCloud,
    /// Load balancer id -> (status while pending, reads left).
    pending: std::collections::HashMap<String, (&'static str, u32)>,
    /// Writes still to be refused with a 409 (whatever their target).
    conflicts: u32,
    /// Status reads answered so far.
    status_reads: u32,
}

impl InMemoryCloud {
    pub fn new(cloud: MemoryCloud) -> InMemoryCloud {
        InMemoryCloud {
            state: Mutex::new(Inner {
                cloud,
                ..Default::default()
            }),
            pending_reads: 0,
        }
    }

    pub fn into_inner(self) -> MemoryCloud {
        self.state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .cloud
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of what the cloud holds now.
    pub fn snapshot(&self) -> MemoryCloud {
        self.inner().cloud.clone()
    }

    /// How many status reads it has answered (each may cover several load
    /// balancers).
    pub fn status_reads(&self) -> u32 {
        self.inner().status_reads
    }

    /// The next `n` writes answer 409 (another writer busy).
    pub fn refuse_writes(&self, n: u32) {
        self.inner().conflicts = n;
    }

    /// Keeps a load balancer `status` (PENDING_*) for `reads` status reads.
    pub fn hold_pending(&self, id: &str, status: &'static str, reads: u32) {
        self.inner().pending.insert(id.to_string(), (status, reads));
    }

    /// Ends a held status at once: the next read shows what this cloud
    /// holds (nothing, for a load balancer only ever held: gone).
    pub fn end_pending(&self, id: &str) {
        self.inner().pending.remove(id);
    }

    /// Puts a load balancer in ERROR (as Octavia does when an amphora fails).
    pub fn break_load_balancer(&self, id: &str) {
        let mut inner = self.inner();
        inner.pending.remove(id);
        if let Ok(lb) = inner.cloud.lb(id) {
            lb.provisioning_status = "ERROR".into();
        }
    }

    /// Runs a write on the load balancer `lb_id` (and its tree): refused
    /// while it is PENDING_* or a 409 is due, else it becomes PENDING_UPDATE
    /// for `pending_reads` reads.
    fn write<T>(
        &self,
        lb_id: Option<&str>,
        f: impl FnOnce(&mut MemoryCloud) -> Result<T>,
    ) -> Result<T> {
        let mut inner = self.inner();
        if inner.conflicts > 0 {
            inner.conflicts -= 1;
            return Err(conflict(lb_id.unwrap_or("?"), "PENDING_UPDATE"));
        }
        if let Some(id) = lb_id
            && let Some((pending, _)) = inner.pending.get(id)
        {
            return Err(conflict(id, pending));
        }
        let out = f(&mut inner.cloud)?;
        if let Some(id) = lb_id
            && self.pending_reads > 0
        {
            inner
                .pending
                .insert(id.to_string(), ("PENDING_UPDATE", self.pending_reads));
        }
        Ok(out)
    }

    /// A write on a listener, pool or health monitor: on its load balancer.
    fn write_under<T>(
        &self,
        child: &str,
        f: impl FnOnce(&mut MemoryCloud) -> Result<T>,
    ) -> Result<T> {
        let lb = self.lb_of(child);
        self.write(lb.as_deref(), f)
    }

    /// The load balancer holding a listener, a pool or a health monitor
    /// (or the load balancer itself).
    fn lb_of(&self, child: &str) -> Option<String> {
        self.inner()
            .cloud
            .load_balancers
            .iter()
            .find(|lb| {
                lb.id == child
                    || lb.listeners.iter().any(|l| l.id == child)
                    || lb.pools.iter().any(|p| {
                        p.id == child || p.health_monitor.as_ref().is_some_and(|h| h.id == child)
                    })
            })
            .map(|lb| lb.id.clone())
    }
}

#[tonic::async_trait]
impl LoadBalancing for InMemoryCloud {
    async fn store_certificate(
        &self,
        _: &Calls,
        name: &str,
        material: &crate::certificate::TlsMaterial,
    ) -> Result<String> {
        let mut inner = self.inner();
        let reference = format!("memory://containers/{}", inner.cloud.id("container"));
        inner.cloud.certificates.push((
            name.to_string(),
            reference.clone(),
            material.digest.clone(),
        ));
        Ok(reference)
    }
    async fn delete_certificate(&self, _: &Calls, container_ref: &str) -> Result<()> {
        self.inner()
            .cloud
            .certificates
            .retain(|(_, r, _)| r != container_ref);
        Ok(())
    }
    async fn create_load_balancer(
        &self,
        _: &Calls,
        load_balancer: &DesiredLoadBalancer,
        owner: &[String],
        populated: bool,
        additional_vips: bool,
        vip_sg_ids: &[String],
    ) -> Result<CreatedLoadBalancer> {
        let mut inner = self.inner();
        if inner.conflicts > 0 {
            inner.conflicts -= 1;
            return Err(conflict("new", "PENDING_CREATE"));
        }
        let created =
            inner
                .cloud
                .create_load_balancer(load_balancer, owner, populated, additional_vips);
        if let Some(lb) = created.id.as_ref().and_then(|id| {
            inner
                .cloud
                .load_balancers
                .iter_mut()
                .find(|lb| &lb.id == id)
        }) {
            lb.vip_sg_ids = vip_sg_ids.to_vec();
        }
        if let Some(id) = &created.id
            && self.pending_reads > 0
        {
            inner
                .pending
                .insert(id.clone(), ("PENDING_CREATE", self.pending_reads));
        }
        Ok(created)
    }
    async fn create_security_group(
        &self,
        _: &Calls,
        group: &crate::model::VipSecurityGroup,
        description: &str,
    ) -> Result<String> {
        Ok(self.inner().cloud.create_security_group(group, description))
    }
    async fn add_security_group_rules(
        &self,
        _: &Calls,
        id: &str,
        rules: &[crate::model::SecurityGroupRule],
    ) -> Result<()> {
        self.inner().cloud.add_security_group_rules(id, rules)
    }
    async fn delete_security_group_rule(&self, _: &Calls, id: &str) -> Result<()> {
        for g in &mut self.inner().cloud.security_groups {
            g.rules.retain(|(r, _)| r != id);
        }
        Ok(())
    }
    async fn delete_security_group(&self, _: &Calls, id: &str) -> Result<()> {
        let mut inner = self.inner();
        let in_use = inner
            .cloud
            .load_balancers
            .iter()
            .any(|lb| lb.vip_sg_ids.iter().any(|g| g == id));
        if in_use {
            return Err(conflict(id, "in use by a VIP port"));
        }
        inner.cloud.security_groups.retain(|g| g.id != id);
        Ok(())
    }
    async fn load_balancer_tags(&self, _: &Calls, id: &str) -> Result<Vec<String>> {
        Ok(self.inner().cloud.lb(id)?.tags.clone())
    }
    async fn set_vip_security_groups(&self, _: &Calls, id: &str, ids: &[String]) -> Result<()> {
        self.write_under(id, |c| {
            c.lb(id)?.vip_sg_ids = ids.to_vec();
            Ok(())
        })
    }
    async fn delete_load_balancer(&self, _: &Calls, id: &str) -> Result<()> {
        let mut inner = self.inner();
        if let Some((pending, _)) = inner.pending.get(id) {
            return Err(conflict(id, pending));
        }
        inner.cloud.delete_load_balancer(id)
    }
    async fn load_balancer_statuses(
        &self,
        _: &Calls,
        ids: &[String],
    ) -> Result<HashMap<String, String>> {
        let mut inner = self.inner();
        inner.status_reads += 1;
        let mut statuses = HashMap::new();
        for id in ids {
            if let Some((status, left)) = inner.pending.get_mut(id) {
                let status = *status;
                *left -= 1;
                if *left == 0 {
                    inner.pending.remove(id);
                }
                statuses.insert(id.clone(), status.to_string());
            } else if let Some(lb) = inner.cloud.load_balancers.iter().find(|lb| &lb.id == id) {
                statuses.insert(id.clone(), lb.provisioning_status.clone());
            }
        }
        Ok(statuses)
    }
    async fn create_listener(
        &self,
        _: &Calls,
        load_balancer_id: &str,
        listener: &DesiredListener,
        owner: &[String],
        with_pool: bool,
    ) -> Result<Option<String>> {
        self.write(Some(load_balancer_id), |c| {
            c.create_listener(load_balancer_id, listener, owner, with_pool)
                .map(Some)
        })
    }
    async fn create_prometheus_listener(
        &self,
        _: &Calls,
        load_balancer_id: &str,
        listener: &crate::model::PrometheusListener,
        owner: &[String],
    ) -> Result<Option<String>> {
        self.write(Some(load_balancer_id), |c| {
            c.create_prometheus_listener(load_balancer_id, listener, owner)
                .map(Some)
        })
    }
    async fn update_listener(&self, _: &Calls, id: &str, update: &ListenerUpdate) -> Result<()> {
        self.write_under(id, |c| c.update_listener(id, update))
    }
    async fn delete_listener(&self, _: &Calls, id: &str) -> Result<()> {
        self.write_under(id, |c| {
            c.delete_listener(id);
            Ok(())
        })
    }
    async fn create_pool(
        &self,
        _: &Calls,
        listener_id: &str,
        pool: &DesiredPool,
        owner: &[String],
        populated: bool,
    ) -> Result<Option<String>> {
        self.write_under(listener_id, |c| {
            c.create_pool(listener_id, pool, owner, populated).map(Some)
        })
    }
    async fn update_pool(&self, _: &Calls, id: &str, update: &PoolUpdate) -> Result<()> {
        self.write_under(id, |c| c.update_pool(id, update))
    }
    async fn delete_pool(&self, _: &Calls, id: &str) -> Result<()> {
        self.write_under(id, |c| {
            c.delete_pool(id);
            Ok(())
        })
    }
    async fn replace_members(
        &self,
        _: &Calls,
        pool_id: &str,
        members: &[MemberSpec],
        owner: &[String],
    ) -> Result<()> {
        self.write_under(pool_id, |c| c.replace_members(pool_id, members, owner))
    }
    async fn create_member(
        &self,
        _: &Calls,
        pool_id: &str,
        member: &Member,
        _subnet_id: &Option<String>,
        owner: &[String],
    ) -> Result<Option<String>> {
        self.write_under(pool_id, |c| {
            c.create_member(pool_id, member, owner).map(Some)
        })
    }
    async fn update_member(
        &self,
        _: &Calls,
        pool_id: &str,
        id: &str,
        member: &Member,
        _owner: &[String],
    ) -> Result<()> {
        self.write_under(pool_id, |c| {
            let pool = c.pool(pool_id)?;
            let m = pool
                .members
                .iter_mut()
                .find(|m| m.id == id)
                .ok_or_else(|| not_found("member", id))?;
            m.weight = Some(member.weight);
            Ok(())
        })
    }
    async fn delete_member(&self, _: &Calls, pool_id: &str, id: &str) -> Result<()> {
        self.write_under(pool_id, |c| c.delete_member(pool_id, id))
    }
    async fn create_health_monitor(
        &self,
        _: &Calls,
        pool_id: &str,
        monitor: &HealthMonitor,
        owner: &[String],
    ) -> Result<Option<String>> {
        self.write_under(pool_id, |c| {
            c.create_health_monitor(pool_id, monitor, owner).map(Some)
        })
    }
    async fn update_health_monitor(
        &self,
        _: &Calls,
        id: &str,
        monitor: &HealthMonitor,
    ) -> Result<()> {
        self.write_under(id, |c| c.update_health_monitor(id, monitor))
    }
    async fn delete_health_monitor(&self, _: &Calls, id: &str) -> Result<()> {
        self.write_under(id, |c| {
            c.delete_health_monitor(id);
            Ok(())
        })
    }
    async fn floating_network(
        &self,
        _: &Calls,
        network_id: &Option<String>,
        _subnet_id: &Option<String>,
    ) -> Result<String> {
        Ok(network_id.clone().unwrap_or_else(|| "public".into()))
    }
    async fn create_floating_ip(
        &self,
        _: &Calls,
        network_id: &str,
        port_id: &str,
        _subnet_id: &Option<String>,
        description: &str,
    ) -> Result<Option<ObservedFloatingIp>> {
        // The ownership travels in the description, as on Neutron.
        let tags = crate::names::legacy_tags(Some(description));
        Ok(Some(
            self.inner()
                .cloud
                .create_floating_ip(network_id, port_id, &tags),
        ))
    }
    async fn set_floating_ip_port(&self, _: &Calls, id: &str, port_id: Option<&str>) -> Result<()> {
        self.inner().cloud.set_floating_ip_port(id, port_id)
    }
    async fn adopt(
        &self,
        _: &Calls,
        resource: Adoptee,
        id: &str,
        new_name: Option<&str>,
        tags: &[String],
    ) -> Result<()> {
        if resource == Adoptee::FloatingIp {
            return self.inner().cloud.adopt(resource, id, new_name, tags);
        }
        self.write_under(id, |c| c.adopt(resource, id, new_name, tags))
    }
    async fn delete_floating_ip(&self, _: &Calls, id: &str) -> Result<()> {
        self.inner().cloud.delete_floating_ip(id);
        Ok(())
    }
}

#[tonic::async_trait]
impl crate::reconcile::cloud::Gateways for InMemoryCloud {}

#[tonic::async_trait]
impl Observing for InMemoryCloud {
    fn api(&self) -> Api {
        Api::Octavia
    }
    async fn octavia_minor(&self, _: &Calls) -> Result<Option<u32>> {
        Ok(None)
    }
    async fn providers(&self, _: &Calls) -> Result<Option<Vec<String>>> {
        Ok(Some(vec!["amphora".into(), "octavia".into(), "ovn".into()]))
    }
    /// Ports of the in-memory cloud are nobody's.
    async fn port_use(&self, _: &Calls, _id: &str) -> Result<crate::openstack::cloud::PortUse> {
        Ok(Default::default())
    }
    /// [`POD_SUBNET`] is 10.1.0.0/16 (the seed's pods), any other 10.2.0.0/16.
    async fn subnet(&self, _: &Calls, id: &str) -> Result<SubnetInfo> {
        let (network, cidr) = if id == POD_SUBNET {
            ("pods", "10.1.0.0/16")
        } else {
            ("service", "10.2.0.0/16")
        };
        Ok(SubnetInfo {
            network_id: network.into(),
            cidr: cidr
                .parse()
                .map_err(|_| OpenStackError::Precondition("the in-memory subnet's CIDR".into()))?,
        })
    }
    /// The in-memory cloud's one floating subnet, `public-subnet`, where the
    /// pattern takes it.
    async fn matching_subnets(
        &self,
        _: &Calls,
        _network_id: &str,
        m: &crate::model::FloatingSubnetMatch,
    ) -> Result<Vec<(String, String)>> {
        let public = ("public-subnet".to_string(), "public-subnet".to_string());
        Ok(m.name_matches(&public.1)
            .then_some(public)
            .into_iter()
            .collect())
    }
    async fn require(&self, _: &Calls, _kind: ReferenceKind, _id: &str) -> Result<()> {
        Ok(())
    }
    /// The in-memory cloud's references are users' (no name).
    async fn certificate_name(&self, _: &Calls, _reference: &str) -> Result<Option<String>> {
        Ok(None)
    }
    async fn certificates(
        &self,
        _: &Calls,
        name: &str,
    ) -> Result<Vec<crate::model::StoredCertificate>> {
        Ok(self
            .inner()
            .cloud
            .certificates
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, r, d)| crate::model::StoredCertificate {
                container_ref: r.clone(),
                digest: Some(d.clone()),
                created: None,
            })
            .collect())
    }
    async fn observe(&self, _: &Calls, lookup: Lookup<'_>) -> Result<Observed> {
        let mut observed = {
            let inner = self.inner();
            let mut observed = inner.cloud.observe_lookup(lookup);
            // What is PENDING_* shows so, as Octavia's reads do.
            for lb in &mut observed.load_balancers {
                if let Some((status, _)) = inner.pending.get(&lb.id) {
                    lb.provisioning_status = status.to_string();
                }
            }
            observed
        };
        crate::model::in_survival_order(&mut observed.load_balancers);
        // A read takes a while: what it saw may be stale when it answers,
        // which is the window two replicas race in.
        tokio::task::yield_now().await;
        Ok(observed)
    }
    async fn owned_by_cluster(
        &self,
        _: &Calls,
        cluster_tag: &str,
    ) -> Result<(Vec<ObservedLoadBalancer>, Vec<ObservedFloatingIp>)> {
        let inner = self.inner();
        let owned = |tags: &[String]| crate::names::is_cluster_owned(tags, cluster_tag);
        Ok((
            inner
                .cloud
                .load_balancers
                .iter()
                .filter(|lb| owned(&lb.tags))
                .cloned()
                .collect(),
            inner
                .cloud
                .floating_ips
                .iter()
                .filter(|f| owned(&f.tags))
                .cloned()
                .collect(),
        ))
    }
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}
