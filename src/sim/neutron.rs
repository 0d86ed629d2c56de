//! Neutron v2.0: networks, subnets with allocation pools and real IPAM (no
//! address handed out twice), ports, floating IPs (create with `port_id`,
//! associate and disassociate by PUT, reachability through a router), routers,
//! the tag API, and the legacy LBaaS v2 paths (served by `octavia`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Value, json};

use super::common::{Seed, new_id, timestamp};
use super::json::{ApiError, ApiKind};
use super::keystone::PROJECT_ID;

#[derive(Debug, Clone)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub external: bool,
    pub tags: Vec<String>,
    pub description: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub allocation_pools: Vec<(IpAddr, IpAddr)>,
    pub tags: Vec<String>,
    pub description: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct Port {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub fixed_ips: Vec<(String, IpAddr)>,
    pub device_id: String,
    pub device_owner: String,
    pub mac_address: String,
    pub tags: Vec<String>,
    pub description: String,
    pub created_at: String,
    /// Its security groups' ids (a VIP port's are Octavia's `vip_sg_ids`).
    pub security_groups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FloatingIp {
    pub id: String,
    pub address: IpAddr,
    pub network_id: String,
    /// The port Neutron creates on the external network to hold the address.
    pub own_port_id: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<IpAddr>,
    pub router_id: Option<String>,
    pub tags: Vec<String>,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision: u64,
}

#[derive(Debug, Clone)]
pub struct RouterRecord {
    pub id: String,
    pub name: String,
    pub gateway_network_id: Option<String>,
    /// Subnets with an interface on this router.
    pub interfaces: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub created_at: String,
}

#[derive(Debug, Default)]
pub struct Neutron {
    pub networks: Vec<Network>,
    pub subnets: Vec<Subnet>,
    pub ports: Vec<Port>,
    pub floating_ips: Vec<FloatingIp>,
    pub routers: Vec<RouterRecord>,
    pub security_groups: Vec<super::security_groups::SecurityGroup>,
    pub(crate) next_mac: u32,
}

pub(crate) fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub(crate) fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(n))
    }
}

impl Neutron {
    /// The seed's topology: pod 10.1.0.0/16, services 10.2.0.0/16 (pool
    /// 10.2.128.1-10.2.255.253), external `public` 172.24.4.0/24 (241
    /// floating IPs from 172.24.4.10; more, `public_addresses` of them from
    /// there, make it 172.24.0.0/16), one router.
    pub fn seed_topology(&mut self, public_addresses: u32) -> Seed {
        let net = |n: &mut Neutron, name: &str, external: bool| {
            let id = new_id();
            n.networks.push(Network {
                id: id.clone(),
                name: name.into(),
                external,
                tags: vec![],
                description: String::new(),
                created_at: timestamp(),
            });
            id
        };
        let sub = |n: &mut Neutron,
                   name: &str,
                   network: &str,
                   cidr: &str,
                   gw: &str,
                   pool: (&str, &str)| {
            let id = new_id();
            let parse = |s: &str| s.parse::<IpAddr>().expect("seed addresses are valid");
            n.subnets.push(Subnet {
                id: id.clone(),
                name: name.into(),
                network_id: network.into(),
                cidr: cidr.parse().expect("seed CIDRs are valid"),
                gateway_ip: Some(parse(gw)),
                allocation_pools: vec![(parse(pool.0), parse(pool.1))],
                tags: vec![],
                description: String::new(),
                created_at: timestamp(),
            });
            id
        };
        let pod_network = net(self, "pod", false);
        let pod_subnet = sub(
            self,
            "pod_subnet",
            &pod_network,
            "10.1.0.0/16",
            "10.1.255.254",
            ("10.1.0.1", "10.1.255.253"),
        );
        let service_network = net(self, "services", false);
        let service_subnet = sub(
            self,
            "service_subnet",
            &service_network,
            "10.2.0.0/16",
            "10.2.255.254",
            ("10.2.128.1", "10.2.255.253"),
        );
        let public_network = net(self, "public", true);
        let first = std::net::Ipv4Addr::new(172, 24, 4, 10);
        let (cidr, last) = if public_addresses <= 241 {
            ("172.24.4.0/24", std::net::Ipv4Addr::new(172, 24, 4, 250))
        } else {
            let n = public_addresses.min(60_000);
            (
                "172.24.0.0/16",
                std::net::Ipv4Addr::from(u32::from(first) + n - 1),
            )
        };
        let last = last.to_string();
        let public_subnet = sub(
            self,
            "public_subnet",
            &public_network,
            cidr,
            "172.24.4.1",
            ("172.24.4.10", &last),
        );
        let router = new_id();
        self.routers.push(RouterRecord {
            id: router.clone(),
            name: "kuryr-kubernetes".into(),
            gateway_network_id: Some(public_network.clone()),
            interfaces: vec![],
            tags: vec![],
            created_at: timestamp(),
        });
        for subnet in [&pod_subnet, &service_subnet] {
            // The seed's router ports take each subnet's gateway address.
            let _ = self.add_router_interface(&router, subnet);
        }
        Seed {
            pod_network,
            pod_subnet,
            service_network,
            service_subnet,
            public_network,
            public_subnet,
            router,
        }
    }

    pub(crate) fn mac(&mut self) -> String {
        self.next_mac += 1;
        let n = self.next_mac;
        format!(
            "fa:16:3e:{:02x}:{:02x}:{:02x}",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        )
    }

    pub fn subnet(&self, id: &str) -> Result<&Subnet, ApiError> {
        self.subnets.iter().find(|s| s.id == id).ok_or_else(|| {
            ApiError::not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
        })
    }

    pub fn network(&self, id: &str) -> Result<&Network, ApiError> {
        self.networks.iter().find(|n| n.id == id).ok_or_else(|| {
            ApiError::not_found(
                "NetworkNotFound",
                format!("Network {id} could not be found."),
            )
        })
    }

    pub fn port(&self, id: &str) -> Result<&Port, ApiError> {
        self.ports.iter().find(|p| p.id == id).ok_or_else(|| {
            ApiError::not_found("PortNotFound", format!("Port {id} could not be found."))
        })
    }

    pub(crate) fn in_use(&self, subnet_id: &str, address: IpAddr) -> bool {
        self.ports.iter().any(|p| {
            p.fixed_ips
                .iter()
                .any(|(s, a)| s == subnet_id && *a == address)
        })
    }

    /// IPAM: `requested` if it is in the subnet and free, else the first free
    /// address of the allocation pools. Never the same address twice.
    pub fn allocate(
        &self,
        subnet_id: &str,
        requested: Option<IpAddr>,
        router_port: bool,
    ) -> Result<IpAddr, ApiError> {
        let subnet = self.subnet(subnet_id)?;
        if let Some(address) = requested {
            let reserved = subnet.cidr.network() == address
                || (matches!(subnet.cidr, IpNet::V4(_)) && subnet.cidr.broadcast() == address);
            if !subnet.cidr.contains(&address) || reserved {
                return Err(ApiError::bad_request(format!(
                    "IP address {address} is not a valid IP for the specified subnet."
                ))
                .with_kind("InvalidIpForSubnet"));
            }
            if self.in_use(subnet_id, address)
                || (subnet.gateway_ip == Some(address) && !router_port)
            {
                return Err(ApiError::conflict(
                    "IpAddressAlreadyAllocated",
                    format!("IP address {address} already allocated in subnet {subnet_id}"),
                ));
            }
            return Ok(address);
        }
        let v4 = matches!(subnet.cidr, IpNet::V4(_));
        // The subnet's addresses in use, gathered once for the scan.
        let used: std::collections::HashSet<IpAddr> = self
            .ports
            .iter()
            .flat_map(|p| p.fixed_ips.iter())
            .filter(|(s, _)| s == subnet_id)
            .map(|(_, a)| *a)
            .collect();
        for (start, end) in &subnet.allocation_pools {
            let (mut n, end) = (to_u128(*start), to_u128(*end));
            while n <= end {
                let a = from_u128(n, v4);
                if Some(a) != subnet.gateway_ip && !used.contains(&a) {
                    return Ok(a);
                }
                n += 1;
            }
        }
        Err(ApiError::conflict(
            "IpAddressGenerationFailure",
            format!(
                "No more IP addresses available on network {}.",
                subnet.network_id
            ),
        ))
    }

    /// Creates a port on `network_id` with one address from `subnet_id` (or
    /// the network's first subnet).
    #[allow(clippy::too_many_arguments)]
    pub fn create_port(
        &mut self,
        network_id: &str,
        subnet_id: Option<&str>,
        address: Option<IpAddr>,
        name: &str,
        device_owner: &str,
        device_id: &str,
        description: &str,
    ) -> Result<Port, ApiError> {
        self.network(network_id)?;
        let subnet_id = match subnet_id {
            Some(s) => {
                if self.subnet(s)?.network_id != network_id {
                    return Err(ApiError::bad_request(format!(
                        "Subnet {s} is not on network {network_id}."
                    )));
                }
                s.to_string()
            }
            None => {
                let by_address = address.and_then(|a| {
                    self.subnets
                        .iter()
                        .find(|s| s.network_id == network_id && s.cidr.contains(&a))
                });
                let first = || self.subnets.iter().find(|s| s.network_id == network_id);
                match by_address.or_else(first) {
                    Some(s) => s.id.clone(),
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "Network {network_id} has no subnet."
                        )));
                    }
                }
            }
        };
        let address = self.allocate(
            &subnet_id,
            address,
            device_owner.starts_with("network:router"),
        )?;
        let port = Port {
            id: new_id(),
            name: name.into(),
            network_id: network_id.into(),
            fixed_ips: vec![(subnet_id, address)],
            device_id: device_id.into(),
            device_owner: device_owner.into(),
            mac_address: self.mac(),
            tags: vec![],
            description: description.into(),
            created_at: timestamp(),
            security_groups: Vec::new(),
        };
        self.ports.push(port.clone());
        Ok(port)
    }

    /// Deletes a port; floating IPs on it are disassociated, as in Neutron.
    pub fn delete_port(&mut self, id: &str) {
        self.ports.retain(|p| p.id != id);
        for fip in &mut self.floating_ips {
            if fip.port_id.as_deref() == Some(id) {
                fip.port_id = None;
                fip.fixed_ip_address = None;
                fip.router_id = None;
                fip.updated_at = timestamp();
                fip.revision += 1;
            }
        }
    }

    pub(crate) fn add_router_interface(
        &mut self,
        router_id: &str,
        subnet_id: &str,
    ) -> Result<String, ApiError> {
        let subnet = self.subnet(subnet_id)?.clone();
        if !self.routers.iter().any(|r| r.id == router_id) {
            return Err(ApiError::not_found(
                "RouterNotFound",
                format!("Router {router_id} could not be found."),
            ));
        }
        let port = self.create_port(
            &subnet.network_id,
            Some(subnet_id),
            subnet.gateway_ip,
            "",
            "network:router_interface",
            router_id,
            "",
        )?;
        if let Some(r) = self.routers.iter_mut().find(|r| r.id == router_id) {
            r.interfaces.push((subnet_id.to_string(), port.id.clone()));
        }
        Ok(port.id)
    }

    /// Neutron's check before associating a floating IP: a router with its
    /// gateway on the floating network and an interface on the port's subnet.
    pub(crate) fn router_for(&self, floating_network: &str, subnet_id: &str) -> Option<String> {
        self.routers
            .iter()
            .find(|r| {
                r.gateway_network_id.as_deref() == Some(floating_network)
                    && r.interfaces.iter().any(|(s, _)| s == subnet_id)
            })
            .map(|r| r.id.clone())
    }

    pub(crate) fn associate(
        &mut self,
        fip_index: usize,
        port_id: &str,
        fixed: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let port = self.port(port_id)?.clone();
        let fip = &self.floating_ips[fip_index];
        let (subnet_id, fixed_ip) = port
            .fixed_ips
            .iter()
            .find(|(_, a)| a.is_ipv4() && fixed.is_none_or(|f| f == *a))
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Port {port_id} does not have a fixed IPv4 address for a floating IP."
                ))
            })?;
        if let Some(other) = self.floating_ips.iter().find(|f| {
            f.id != fip.id
                && f.port_id.as_deref() == Some(port_id)
                && f.fixed_ip_address == Some(fixed_ip)
        }) {
            return Err(ApiError::conflict(
                "FloatingIPPortAlreadyAssociated",
                format!(
                    "Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {fixed_ip}, as that fixed IP already has a floating IP on external network {}.",
                    fip.address, fip.id, other.network_id
                ),
            ));
        }
        let router = self.router_for(&fip.network_id, &subnet_id).ok_or_else(|| {
            ApiError::not_found(
                "ExternalGatewayForFloatingIPNotFound",
                format!(
                    "External network {} is not reachable from subnet {subnet_id}.  Therefore, cannot associate Port {port_id} with a Floating IP.",
                    fip.network_id
                ),
            )
        })?;
        let fip = &mut self.floating_ips[fip_index];
        fip.port_id = Some(port_id.to_string());
        fip.fixed_ip_address = Some(fixed_ip);
        fip.router_id = Some(router);
        Ok(())
    }
}

impl ApiError {
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }
}

// ---------------------------------------------------------------------------
// JSON views.

pub(crate) fn network_json(n: &Neutron, net: &Network) -> Value {
    let subnets: Vec<&str> = n
        .subnets
        .iter()
        .filter(|s| s.network_id == net.id)
        .map(|s| s.id.as_str())
        .collect();
    json!({
        "id": net.id, "name": net.name, "status": "ACTIVE", "admin_state_up": true,
        "router:external": net.external, "shared": false, "subnets": subnets, "mtu": 1450,
        "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "tags": net.tags, "description": net.description,
        "created_at": net.created_at, "updated_at": net.created_at, "revision_number": 1,
        "availability_zone_hints": [], "availability_zones": [], "port_security_enabled": true,
        "is_default": false, "ipv4_address_scope": null, "ipv6_address_scope": null,
    })
}

pub(crate) fn subnet_json(s: &Subnet) -> Value {
    let pools: Vec<Value> = s
        .allocation_pools
        .iter()
        .map(|(a, b)| json!({"start": a.to_string(), "end": b.to_string()}))
        .collect();
    json!({
        "id": s.id, "name": s.name, "network_id": s.network_id, "cidr": s.cidr.to_string(),
        "ip_version": if matches!(s.cidr, IpNet::V4(_)) { 4 } else { 6 },
        "gateway_ip": s.gateway_ip.map(|g| g.to_string()), "allocation_pools": pools,
        "enable_dhcp": false, "dns_nameservers": [], "host_routes": [], "ipv6_address_mode": null,
        "ipv6_ra_mode": null, "subnetpool_id": null, "service_types": [], "segment_id": null,
        "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "tags": s.tags, "description": s.description,
        "created_at": s.created_at, "updated_at": s.created_at, "revision_number": 0,
    })
}

pub(crate) fn port_json(p: &Port) -> Value {
    let fixed: Vec<Value> = p
        .fixed_ips
        .iter()
        .map(|(s, a)| json!({"subnet_id": s, "ip_address": a.to_string()}))
        .collect();
    json!({
        "id": p.id, "name": p.name, "network_id": p.network_id, "fixed_ips": fixed,
        "device_id": p.device_id, "device_owner": p.device_owner, "mac_address": p.mac_address,
        "status": "DOWN", "admin_state_up": true, "allowed_address_pairs": [], "security_groups": p.security_groups,
        "port_security_enabled": true, "binding:vnic_type": "normal",
        "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "tags": p.tags, "description": p.description,
        "created_at": p.created_at, "updated_at": p.created_at, "revision_number": 1,
    })
}

pub(crate) fn floating_ip_json(f: &FloatingIp) -> Value {
    json!({
        "id": f.id, "floating_ip_address": f.address.to_string(), "floating_network_id": f.network_id,
        "router_id": f.router_id, "port_id": f.port_id,
        "fixed_ip_address": f.fixed_ip_address.map(|a| a.to_string()),
        // No L3 agent here: associated floating IPs are reported ACTIVE, others DOWN.
        "status": if f.port_id.is_some() { "ACTIVE" } else { "DOWN" },
        "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "tags": f.tags, "description": f.description,
        "created_at": f.created_at, "updated_at": f.updated_at, "revision_number": f.revision,
        "port_details": null, "port_forwardings": [], "dns_domain": "", "dns_name": "", "qos_policy_id": null,
    })
}

pub(crate) fn router_json(n: &Neutron, r: &RouterRecord) -> Value {
    let gateway = r.gateway_network_id.as_ref().map(|net| {
        let fixed: Vec<Value> = n
            .subnets
            .iter()
            .filter(|s| &s.network_id == net)
            .take(1)
            .map(|s| json!({"subnet_id": s.id, "ip_address": s.gateway_ip.map(|g| g.to_string())}))
            .collect();
        json!({"network_id": net, "enable_snat": true, "external_fixed_ips": fixed})
    });
    json!({
        "id": r.id, "name": r.name, "status": "ACTIVE", "admin_state_up": true,
        "external_gateway_info": gateway, "routes": [], "distributed": false, "ha": false,
        "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "tags": r.tags, "description": "",
        "created_at": r.created_at, "updated_at": r.created_at, "revision_number": 1,
        "availability_zone_hints": [], "availability_zones": [], "flavor_id": null,
    })
}

// ---------------------------------------------------------------------------
// Routes.

pub(crate) const N: ApiKind = ApiKind::Neutron;
pub(crate) const TAGGABLE: [&str; 5] = ["networks", "subnets", "ports", "floatingips", "routers"];
