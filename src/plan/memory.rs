//! An in-memory cloud that applies plans the way Octavia and Neutron would
//! (cascade delete, default pools, batch member replacement, floating IPs that
//! lose their port with the VIP), and observes itself the way the reconciler
//! observes OpenStack. It proves plans converge and feeds the benchmarks.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::{
    DesiredListener, DesiredPool, FloatingIpLookup, Observed, ObservedFloatingIp,
    ObservedHealthMonitor, ObservedListener, ObservedLoadBalancer, ObservedMember, ObservedPool,
};
use crate::names::is_owned;
use crate::plan::{MemberSpec, Operation, Ref};

#[derive(Debug, Clone, Default)]
pub struct MemoryCloud {
    pub load_balancers: Vec<ObservedLoadBalancer>,
    pub floating_ips: Vec<ObservedFloatingIp>,
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
        let load_balancers: Vec<ObservedLoadBalancer> = self
            .load_balancers
            .iter()
            .filter(|lb| is_owned(&lb.tags, owner_tags) || lb.name == name)
            .cloned()
            .collect();
        let ports: Vec<&String> = load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.as_ref())
            .collect();
        let floating_ips = self
            .floating_ips
            .iter()
            .filter(|f| {
                is_owned(&f.tags, owner_tags)
                    || f.port_id.as_ref().is_some_and(|p| ports.contains(&p))
            })
            .cloned()
            .collect();
        let user_floating_ip = match user_address {
            None => FloatingIpLookup::NotLookedUp,
            Some(a) => self
                .floating_ips
                .iter()
                .find(|f| f.address == IpAddr::V4(a))
                .cloned()
                .map_or(FloatingIpLookup::NotFound, FloatingIpLookup::Found),
        };
        Observed {
            load_balancers,
            floating_ips,
            user_floating_ip,
            deleting: Vec::new(),
        }
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
        });
        id
    }

    /// Applies `ops` in order; created sub-resources carry `owner_tags`.
    /// Panics on an operation OpenStack would refuse (a missing id): plans
    /// that do that are bugs the tests must see.
    pub fn apply(&mut self, ops: &[Operation], owner_tags: &[String]) {
        for op in ops {
            self.apply_one(op, owner_tags);
        }
    }

    fn lb_index(&self, r: &Ref) -> usize {
        let found = match &r.id {
            Some(id) => self.load_balancers.iter().position(|lb| &lb.id == id),
            None => self.load_balancers.iter().rposition(|lb| lb.name == r.name),
        };
        found.unwrap_or_else(|| panic!("no load balancer {r:?}"))
    }

    /// The load balancer holding the pool `r`, and the pool's index in it.
    fn pool_index(&self, r: &Ref) -> (usize, usize) {
        for (i, lb) in self.load_balancers.iter().enumerate().rev() {
            let found = lb.pools.iter().position(|p| match &r.id {
                Some(id) => &p.id == id,
                None => p.name == r.name,
            });
            if let Some(j) = found {
                return (i, j);
            }
        }
        panic!("no pool {r:?}")
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
                    tags: tags.to_vec(),
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
                    tags: tags.to_vec(),
                });
        }
        ObservedPool {
            id: self.id("pool"),
            name: pool.name.clone(),
            protocol: pool.protocol.as_str().to_string(),
            lb_algorithm: pool.lb_algorithm.as_str().to_string(),
            session_persistence: pool.session_persistence.map(|p| p.as_str().to_string()),
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
            default_pool_id: None,
            tags: tags.to_vec(),
        }
    }

    fn apply_one(&mut self, op: &Operation, tags: &[String]) {
        match op {
            Operation::CreateLoadBalancer {
                load_balancer: d,
                populated,
                additional_vips,
            } => {
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
                    id,
                    name: d.name.clone(),
                    vip_address,
                    vip_subnet_id: d.vip.subnet_id.clone(),
                    vip_port_id: Some(port),
                    additional_vips: if *additional_vips {
                        d.additional_vips.iter().filter_map(|v| v.address).collect()
                    } else {
                        Vec::new()
                    },
                    provisioning_status: "ACTIVE".into(),
                    operating_status: "ONLINE".into(),
                    flavor_id: d.flavor_id.clone(),
                    availability_zone: d.availability_zone.clone(),
                    listeners: Vec::new(),
                    pools: Vec::new(),
                    tags: d.tags.clone(),
                    created_at: Some(format!("2026-01-01T00:00:{:02}", self.next_id % 60)),
                };
                if *populated {
                    for l in &d.listeners {
                        let mut listener = self.new_listener(l, tags);
                        let pool = self.new_pool(&l.pool, true, tags);
                        listener.default_pool_id = Some(pool.id.clone());
                        lb.listeners.push(listener);
                        lb.pools.push(pool);
                    }
                }
                self.load_balancers.push(lb);
            }
            Operation::DeleteLoadBalancer { id, .. } => {
                let i = self.lb_index(&Ref::existing(id, ""));
                let lb = self.load_balancers.remove(i);
                for fip in &mut self.floating_ips {
                    if fip.port_id.is_some() && fip.port_id == lb.vip_port_id {
                        fip.port_id = None;
                    }
                }
            }
            Operation::CreateListener {
                load_balancer,
                listener,
                with_pool,
            } => {
                let i = self.lb_index(load_balancer);
                let mut l = self.new_listener(listener, tags);
                if *with_pool {
                    let pool = self.new_pool(&listener.pool, true, tags);
                    l.default_pool_id = Some(pool.id.clone());
                    self.load_balancers[i].pools.push(pool);
                }
                self.load_balancers[i].listeners.push(l);
            }
            Operation::UpdateListener { id, update, .. } => {
                let l = self
                    .load_balancers
                    .iter_mut()
                    .flat_map(|lb| lb.listeners.iter_mut())
                    .find(|l| &l.id == id)
                    .unwrap_or_else(|| panic!("no listener {id}"));
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
            }
            Operation::DeleteListener { id, .. } => {
                for lb in &mut self.load_balancers {
                    lb.listeners.retain(|l| &l.id != id);
                }
            }
            Operation::CreatePool {
                load_balancer,
                listener,
                pool,
                populated,
            } => {
                let i = self.lb_index(load_balancer);
                let p = self.new_pool(pool, *populated, tags);
                let lb = &mut self.load_balancers[i];
                let l = lb
                    .listeners
                    .iter_mut()
                    .find(|l| match &listener.id {
                        Some(id) => &l.id == id,
                        None => l.name == listener.name,
                    })
                    .unwrap_or_else(|| panic!("no listener {listener:?}"));
                l.default_pool_id = Some(p.id.clone());
                lb.pools.push(p);
            }
            Operation::UpdatePool { id, update, .. } => {
                let (i, j) = self.pool_index(&Ref::existing(id, ""));
                let p = &mut self.load_balancers[i].pools[j];
                if let Some(a) = update.lb_algorithm {
                    p.lb_algorithm = a.as_str().to_string();
                }
                if let Some(s) = update.session_persistence {
                    p.session_persistence = s.map(|s| s.as_str().to_string());
                }
                if let Some(t) = &update.tags {
                    p.tags = t.clone();
                }
            }
            Operation::DeletePool { id, .. } => {
                let (i, _) = self.pool_index(&Ref::existing(id, ""));
                let lb = &mut self.load_balancers[i];
                lb.pools.retain(|p| &p.id != id);
                for l in &mut lb.listeners {
                    if l.default_pool_id.as_ref() == Some(id) {
                        l.default_pool_id = None;
                    }
                }
            }
            Operation::ReplaceMembers { pool, members } => {
                let (i, j) = self.pool_index(pool);
                let old = std::mem::take(&mut self.load_balancers[i].pools[j].members);
                let mut new = Vec::with_capacity(members.len());
                for MemberSpec { member, owned, .. } in members {
                    let existing = old.iter().find(|m| {
                        m.address == member.address && m.protocol_port == member.protocol_port
                    });
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
                        tags,
                    });
                }
                self.load_balancers[i].pools[j].members = new;
            }
            Operation::CreateMember { pool, member, .. } => {
                let (i, j) = self.pool_index(pool);
                let id = self.id("member");
                self.load_balancers[i].pools[j]
                    .members
                    .push(ObservedMember {
                        id,
                        address: member.address,
                        protocol_port: member.protocol_port,
                        tags: tags.to_vec(),
                    });
            }
            Operation::DeleteMember { pool, id, .. } => {
                let (i, j) = self.pool_index(pool);
                self.load_balancers[i].pools[j]
                    .members
                    .retain(|m| &m.id != id);
            }
            Operation::CreateHealthMonitor { pool, monitor } => {
                let (i, j) = self.pool_index(pool);
                let id = self.id("hm");
                self.load_balancers[i].pools[j].health_monitor = Some(ObservedHealthMonitor {
                    id,
                    kind: monitor.kind.as_str().to_string(),
                    delay: monitor.delay,
                    timeout: monitor.timeout,
                    max_retries: monitor.max_retries,
                    max_retries_down: monitor.max_retries_down,
                    tags: tags.to_vec(),
                });
            }
            Operation::UpdateHealthMonitor { id, monitor, .. } => {
                let hm = self
                    .load_balancers
                    .iter_mut()
                    .flat_map(|lb| lb.pools.iter_mut())
                    .filter_map(|p| p.health_monitor.as_mut())
                    .find(|hm| &hm.id == id)
                    .unwrap_or_else(|| panic!("no health monitor {id}"));
                hm.delay = monitor.delay;
                hm.timeout = monitor.timeout;
                hm.max_retries = monitor.max_retries;
                hm.max_retries_down = monitor.max_retries_down;
            }
            Operation::DeleteHealthMonitor { id, .. } => {
                for p in self
                    .load_balancers
                    .iter_mut()
                    .flat_map(|lb| lb.pools.iter_mut())
                {
                    if p.health_monitor.as_ref().is_some_and(|hm| &hm.id == id) {
                        p.health_monitor = None;
                    }
                }
            }
            Operation::CreateFloatingIp {
                vip_port,
                network_id,
                ..
            } => {
                let port = self.vip_port(vip_port);
                let id = self.id("fip");
                let address = IpAddr::V4(Ipv4Addr::new(
                    172,
                    24,
                    (self.next_id / 250) as u8 % 250,
                    (self.next_id % 250) as u8 + 1,
                ));
                self.floating_ips.push(ObservedFloatingIp {
                    id,
                    address,
                    port_id: Some(port),
                    network_id: Some(network_id.clone().unwrap_or_else(|| "public".into())),
                    tags: tags.to_vec(),
                });
            }
            Operation::AssociateFloatingIp { id, vip_port, .. } => {
                let port = self.vip_port(vip_port);
                let id = id
                    .as_ref()
                    .expect("an executed plan has looked up its floating IP");
                self.fip(id).port_id = Some(port);
            }
            Operation::DisassociateFloatingIp { id, .. } => self.fip(id).port_id = None,
            Operation::DeleteFloatingIp { id, .. } => self.floating_ips.retain(|f| &f.id != id),
        }
    }

    fn vip_port(&self, r: &Ref) -> String {
        match &r.id {
            Some(port) => port.clone(),
            None => {
                let i = self.lb_index(r);
                self.load_balancers[i]
                    .vip_port_id
                    .clone()
                    .expect("a created load balancer has a VIP port")
            }
        }
    }

    fn fip(&mut self, id: &str) -> &mut ObservedFloatingIp {
        self.floating_ips
            .iter_mut()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no floating IP {id}"))
    }
}
