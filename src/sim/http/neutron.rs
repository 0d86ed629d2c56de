//! Neutron's HTTP API over the simulated cloud: networks, subnets, ports,
//! floating IPs, routers and tags.

use crate::sim::common::{new_id, timestamp};
use crate::sim::json::{ApiError, Body, Query, parse_body, respond};
use crate::sim::keystone::PROJECT_ID;
use crate::sim::neutron::*;
use crate::sim::state::SimState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use ipnet::IpNet;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;

pub fn router() -> Router<Arc<SimState>> {
    let mut r = Router::new()
        .route("/v2.0", get(v2))
        .route("/v2.0/", get(v2))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/networks", get(list_networks).post(create_network))
        .route(
            "/v2.0/networks/{id}",
            get(show_network).delete(delete_network),
        )
        .route("/v2.0/subnets", get(list_subnets).post(create_subnet))
        .route("/v2.0/subnets/{id}", get(show_subnet).delete(delete_subnet))
        .route("/v2.0/ports", get(list_ports).post(create_port))
        .route(
            "/v2.0/ports/{id}",
            get(show_port).put(update_port).delete(delete_port),
        )
        .route("/v2.0/floatingips", get(list_fips).post(create_fip))
        .route(
            "/v2.0/floatingips/{id}",
            get(show_fip).put(update_fip).delete(delete_fip),
        )
        .route("/v2.0/routers", get(list_routers))
        .route("/v2.0/routers/{id}", get(show_router))
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(add_interface),
        );
    for resource in TAGGABLE {
        r = r
            .route(
                &format!("/v2.0/{resource}/{{id}}/tags"),
                get(move |s, p| get_tags(s, resource, p))
                    .put(move |s, p, b| replace_tags(s, resource, p, b))
                    .delete(move |s, p| delete_tags(s, resource, p)),
            )
            .route(
                &format!("/v2.0/{resource}/{{id}}/tags/{{tag}}"),
                get(move |s, p| check_tag(s, resource, p))
                    .put(move |s, p| add_tag(s, resource, p))
                    .delete(move |s, p| remove_tag(s, resource, p)),
            );
    }
    r.merge(super::security_groups::router())
}

pub async fn versions(State(state): State<Arc<SimState>>) -> Response {
    let href = format!("{}/network/v2.0/", state.base_url);
    respond(
        N,
        Ok((
            StatusCode::OK,
            json!({"versions": [{"status": "CURRENT", "id": "v2.0", "links": [{"href": href, "rel": "self"}]}]}),
        )),
    )
}

async fn v2(State(state): State<Arc<SimState>>) -> Response {
    let href = format!("{}/network/v2.0/", state.base_url);
    let resources: Vec<Value> = ["network", "subnet", "port", "floatingip", "router"]
        .iter()
        .map(|r| json!({"name": r, "collection": format!("{r}s"), "links": [{"href": format!("{href}{r}s"), "rel": "self"}]}))
        .collect();
    respond(N, Ok((StatusCode::OK, json!({"resources": resources}))))
}

async fn extensions() -> Response {
    let aliases = [
        ("external-net", "Neutron external network"),
        ("router", "Neutron L3 Router"),
        (
            "standard-attr-tag",
            "Tag support for resources with standard attribute",
        ),
        ("standard-attr-description", "standard-attr-description"),
        ("standard-attr-timestamp", "Resource timestamps"),
        ("lbaasv2", "LoadBalancing service v2"),
    ];
    let ext: Vec<Value> = aliases
        .iter()
        .map(|(a, n)| json!({"alias": a, "name": n, "description": n, "updated": "2026-01-01T00:00:00-00:00", "links": []}))
        .collect();
    respond(N, Ok((StatusCode::OK, json!({"extensions": ext}))))
}

/// A list answer: `view` builds what the query may match (a prefilter on
/// the typed records), the query's filters and `fields=` apply after.
fn list(
    state: &SimState,
    query: &Query,
    key: &str,
    view: impl Fn(&Neutron) -> Vec<Value>,
) -> Response {
    let cloud = state.cloud();
    let items = query.apply(view(&cloud.neutron));
    respond(N, Ok((StatusCode::OK, json!({ key: items }))))
}

async fn list_networks(State(s): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    list(&s, &Query::parse(q.as_deref()), "networks", |n| {
        n.networks.iter().map(|x| network_json(n, x)).collect()
    })
}
async fn list_subnets(State(s): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    list(&s, &Query::parse(q.as_deref()), "subnets", |n| {
        n.subnets.iter().map(subnet_json).collect()
    })
}
async fn list_ports(State(s): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    list(&s, &Query::parse(q.as_deref()), "ports", |n| {
        n.ports.iter().map(port_json).collect()
    })
}
async fn list_fips(State(s): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    // A lookup by description, port (`port_id=`: none) or address builds
    // only the floating IPs it can match (the filters still apply after):
    // thousands stay cheap.
    let query = Query::parse(q.as_deref());
    let (descriptions, ports) = (query.values("description"), query.values("port_id"));
    // Addresses parsed once; one that does not parse leaves the prefilter
    // to the filter after (which compares text).
    let addresses: Option<Vec<std::net::IpAddr>> = query
        .values("floating_ip_address")
        .and_then(|a| a.iter().map(|a| a.parse().ok()).collect());
    let matches = |f: &FloatingIp| {
        descriptions
            .as_ref()
            .is_none_or(|d| d.contains(&f.description.as_str()))
            && ports
                .as_ref()
                .is_none_or(|p| p.contains(&f.port_id.as_deref().unwrap_or("")))
            && addresses.as_ref().is_none_or(|a| a.contains(&f.address))
    };
    list(&s, &query, "floatingips", |n| {
        n.floating_ips
            .iter()
            .filter(|f| matches(f))
            .map(floating_ip_json)
            .collect()
    })
}
async fn list_routers(State(s): State<Arc<SimState>>, RawQuery(q): RawQuery) -> Response {
    list(&s, &Query::parse(q.as_deref()), "routers", |n| {
        n.routers.iter().map(|r| router_json(n, r)).collect()
    })
}

async fn show_network(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let n = &cloud.neutron;
    respond(
        N,
        n.network(&id)
            .map(|x| (StatusCode::OK, json!({"network": network_json(n, x)}))),
    )
}
async fn show_subnet(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    respond(
        N,
        cloud
            .neutron
            .subnet(&id)
            .map(|x| (StatusCode::OK, json!({"subnet": subnet_json(x)}))),
    )
}
async fn show_port(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    respond(
        N,
        cloud
            .neutron
            .port(&id)
            .map(|x| (StatusCode::OK, json!({"port": port_json(x)}))),
    )
}
async fn show_router(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let n = &cloud.neutron;
    let r = n.routers.iter().find(|r| r.id == id).ok_or_else(|| {
        ApiError::not_found("RouterNotFound", format!("Router {id} could not be found."))
    });
    respond(
        N,
        r.map(|r| (StatusCode::OK, json!({"router": router_json(n, r)}))),
    )
}

fn fip_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "FloatingIPNotFound",
        format!("Floating IP {id} could not be found"),
    )
}

async fn show_fip(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let f = cloud
        .neutron
        .floating_ips
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| fip_not_found(&id));
    respond(
        N,
        f.map(|f| (StatusCode::OK, json!({"floatingip": floating_ip_json(f)}))),
    )
}

async fn create_network(State(s): State<Arc<SimState>>, body: Bytes) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "network",
                &[
                    "name",
                    "router:external",
                    "admin_state_up",
                    "shared",
                    "description",
                    "tags",
                    "mtu",
                    "port_security_enabled",
                ],
            )?;
            let net = Network {
                id: new_id(),
                name: b.string("name")?.unwrap_or_default(),
                external: b.boolean("router:external")?.unwrap_or(false),
                tags: b.strings("tags")?.unwrap_or_default(),
                description: b.string("description")?.unwrap_or_default(),
                created_at: timestamp(),
            };
            let mut cloud = s.cloud();
            let n = &mut cloud.neutron;
            n.networks.push(net.clone());
            Ok((
                StatusCode::CREATED,
                json!({"network": network_json(n, &net)}),
            ))
        })(),
    )
}

async fn delete_network(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let n = &mut cloud.neutron;
    let result = n.network(&id).map(|_| ()).and_then(|()| {
        if n.ports.iter().any(|p| p.network_id == id && !p.device_owner.starts_with("network:router")) {
            return Err(ApiError::conflict("NetworkInUse", format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network.")));
        }
        n.networks.retain(|x| x.id != id);
        n.subnets.retain(|x| x.network_id != id);
        Ok((StatusCode::NO_CONTENT, Value::Null))
    });
    respond(N, result)
}

async fn delete_subnet(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let n = &mut cloud.neutron;
    let result = n.subnet(&id).map(|_| ()).and_then(|()| {
        // Neutron refuses while an address is allocated from it (a router's too).
        if n.ports.iter().any(|p| p.fixed_ips.iter().any(|(s, _)| *s == id)) {
            return Err(ApiError::conflict("SubnetInUse", format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet.")));
        }
        n.subnets.retain(|x| x.id != id);
        Ok((StatusCode::NO_CONTENT, Value::Null))
    });
    respond(N, result)
}

async fn create_subnet(State(s): State<Arc<SimState>>, body: Bytes) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "subnet",
                &[
                    "name",
                    "network_id",
                    "cidr",
                    "ip_version",
                    "gateway_ip",
                    "allocation_pools",
                    "enable_dhcp",
                    "description",
                    "tags",
                    "dns_nameservers",
                    "host_routes",
                ],
            )?;
            let network_id = b.required_string("network_id")?;
            let cidr: IpNet = b
                .required_string("cidr")?
                .parse()
                .map_err(|_| ApiError::bad_request("Invalid input for cidr."))?;
            let cidr = cidr.trunc();
            let gateway_ip = match b.map.get("gateway_ip") {
                Some(Value::Null) => None,
                Some(Value::String(g)) => Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("Invalid input for gateway_ip: {g}"))
                })?),
                _ => cidr.hosts().next(),
            };
            let mut pools = Vec::new();
            if let Some(Value::Array(items)) = b.value("allocation_pools") {
                for p in items {
                    let start: IpAddr = p["start"]
                        .as_str()
                        .and_then(|x| x.parse().ok())
                        .ok_or_else(|| ApiError::bad_request("Invalid allocation pool start."))?;
                    let end: IpAddr = p["end"]
                        .as_str()
                        .and_then(|x| x.parse().ok())
                        .ok_or_else(|| ApiError::bad_request("Invalid allocation pool end."))?;
                    if !cidr.contains(&start)
                        || !cidr.contains(&end)
                        || to_u128(start) > to_u128(end)
                    {
                        return Err(ApiError::bad_request(format!(
                            "The allocation pool {start}-{end} spans beyond the subnet cidr {cidr}."
                        ))
                        .with_kind("OutOfBoundsAllocationPool"));
                    }
                    pools.push((start, end));
                }
            } else {
                let mut hosts = cidr.hosts().filter(|h| Some(*h) != gateway_ip);
                if let Some(first) = hosts.next() {
                    pools.push((first, hosts.next_back().unwrap_or(first)));
                }
            }
            let mut cloud = s.cloud();
            let n = &mut cloud.neutron;
            n.network(&network_id)?;
            let subnet = Subnet {
                id: new_id(),
                name: b.string("name")?.unwrap_or_default(),
                network_id,
                cidr,
                gateway_ip,
                allocation_pools: pools,
                tags: b.strings("tags")?.unwrap_or_default(),
                description: b.string("description")?.unwrap_or_default(),
                created_at: timestamp(),
            };
            n.subnets.push(subnet.clone());
            Ok((StatusCode::CREATED, json!({"subnet": subnet_json(&subnet)})))
        })(),
    )
}

const PORT_FIELDS: [&str; 12] = [
    "name",
    "network_id",
    "fixed_ips",
    "device_id",
    "device_owner",
    "description",
    "tags",
    "admin_state_up",
    "security_groups",
    "port_security_enabled",
    "allowed_address_pairs",
    "binding:vnic_type",
];

async fn create_port(State(s): State<Arc<SimState>>, body: Bytes) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let b = Body::wrapped(&body, "port", &PORT_FIELDS)?;
            let network_id = b.required_string("network_id")?;
            let (subnet, address) = match b
                .value("fixed_ips")
                .and_then(Value::as_array)
                .and_then(|f| f.first())
            {
                Some(f) => (
                    f["subnet_id"].as_str().map(str::to_string),
                    match f["ip_address"].as_str() {
                        Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                            ApiError::bad_request(format!("Invalid input for ip_address: {a}"))
                        })?),
                        None => None,
                    },
                ),
                None => (None, None),
            };
            let mut cloud = s.cloud();
            let mut port = cloud.neutron.create_port(
                &network_id,
                subnet.as_deref(),
                address,
                &b.string("name")?.unwrap_or_default(),
                &b.string("device_owner")?.unwrap_or_default(),
                &b.string("device_id")?.unwrap_or_default(),
                &b.string("description")?.unwrap_or_default(),
            )?;
            if let Some(tags) = b.strings("tags")? {
                port.tags = tags.clone();
                if let Some(p) = cloud.neutron.ports.iter_mut().find(|p| p.id == port.id) {
                    p.tags = tags;
                }
            }
            Ok((StatusCode::CREATED, json!({"port": port_json(&port)})))
        })(),
    )
}

async fn update_port(
    State(s): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let b = Body::wrapped(&body, "port", &PORT_FIELDS)?;
            let mut cloud = s.cloud();
            cloud.neutron.port(&id)?;
            let port = cloud
                .neutron
                .ports
                .iter_mut()
                .find(|p| p.id == id)
                .ok_or_else(|| {
                    ApiError::not_found("PortNotFound", format!("Port {id} could not be found."))
                })?;
            if let Some(name) = b.string("name")? {
                port.name = name;
            }
            if let Some(d) = b.string("description")? {
                port.description = d;
            }
            if let Some(d) = b.string("device_id")? {
                port.device_id = d;
            }
            if let Some(d) = b.string("device_owner")? {
                port.device_owner = d;
            }
            Ok((StatusCode::OK, json!({"port": port_json(port)})))
        })(),
    )
}

async fn delete_port(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let result = cloud.neutron.port(&id).map(|_| ());
    respond(
        N,
        result.map(|()| {
            cloud.neutron.delete_port(&id);
            (StatusCode::NO_CONTENT, Value::Null)
        }),
    )
}

async fn create_fip(State(s): State<Arc<SimState>>, body: Bytes) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            // Neutron 29: tags only through the tag API, never in a create.
            if body["floatingip"].get("tags").is_some() {
                return Err(ApiError::bad_request(
                    "Attribute 'tags' not allowed in POST",
                ));
            }
            let b = Body::wrapped(
                &body,
                "floatingip",
                &[
                    "floating_network_id",
                    "subnet_id",
                    "port_id",
                    "fixed_ip_address",
                    "floating_ip_address",
                    "description",
                    "project_id",
                    "tenant_id",
                    "dns_domain",
                    "dns_name",
                    "qos_policy_id",
                ],
            )?;
            let network_id = b.required_string("floating_network_id")?;
            let requested = match b.string("floating_ip_address")? {
                Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                    ApiError::bad_request(format!("Invalid input for floating_ip_address: {a}"))
                })?),
                None => None,
            };
            let fixed = match b.string("fixed_ip_address")? {
                Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                    ApiError::bad_request(format!("Invalid input for fixed_ip_address: {a}"))
                })?),
                None => None,
            };
            let mut cloud = s.cloud();
            let n = &mut cloud.neutron;
            if !n.network(&network_id)?.external {
                return Err(ApiError::bad_request(format!(
                    "Bad floatingip request: Network {network_id} is not a valid external network."
                )));
            }
            let subnet = b.string("subnet_id")?;
            if let Some(sub) = &subnet
                && n.subnet(sub)?.network_id != network_id
            {
                return Err(ApiError::bad_request(format!(
                    "Bad floatingip request: Subnet {sub} is not on network {network_id}."
                )));
            }
            let id = new_id();
            let own = n.create_port(
                &network_id,
                subnet.as_deref(),
                requested,
                "",
                "network:floatingip",
                &id,
                "",
            )?;
            let now = timestamp();
            n.floating_ips.push(FloatingIp {
                id: id.clone(),
                address: own.fixed_ips[0].1,
                network_id,
                own_port_id: own.id.clone(),
                port_id: None,
                fixed_ip_address: None,
                router_id: None,
                tags: Vec::new(),
                description: b.string("description")?.unwrap_or_default(),
                created_at: now.clone(),
                updated_at: now,
                revision: 0,
            });
            let index = n.floating_ips.len() - 1;
            if let Some(port_id) = b.string("port_id")?
                && let Err(e) = n.associate(index, &port_id, fixed)
            {
                // Nothing half-created: the address goes back to the pool.
                n.floating_ips.pop();
                n.ports.retain(|p| p.id != own.id);
                return Err(e);
            }
            Ok((
                StatusCode::CREATED,
                json!({"floatingip": floating_ip_json(&n.floating_ips[index])}),
            ))
        })(),
    )
}

async fn update_fip(
    State(s): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "floatingip",
                &[
                    "port_id",
                    "fixed_ip_address",
                    "description",
                    "qos_policy_id",
                ],
            )?;
            let fixed = match b.string("fixed_ip_address")? {
                Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                    ApiError::bad_request(format!("Invalid input for fixed_ip_address: {a}"))
                })?),
                None => None,
            };
            let mut cloud = s.cloud();
            let n = &mut cloud.neutron;
            let index = n
                .floating_ips
                .iter()
                .position(|f| f.id == id)
                .ok_or_else(|| fip_not_found(&id))?;
            if b.has("port_id") {
                match b.string("port_id")? {
                    Some(port) => n.associate(index, &port, fixed)?,
                    None => {
                        let f = &mut n.floating_ips[index];
                        f.port_id = None;
                        f.fixed_ip_address = None;
                        f.router_id = None;
                    }
                }
            }
            let f = &mut n.floating_ips[index];
            if let Some(d) = b.string("description")? {
                f.description = d;
            }
            f.updated_at = timestamp();
            f.revision += 1;
            Ok((StatusCode::OK, json!({"floatingip": floating_ip_json(f)})))
        })(),
    )
}

async fn delete_fip(State(s): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let n = &mut cloud.neutron;
    let result = match n.floating_ips.iter().position(|f| f.id == id) {
        None => Err(fip_not_found(&id)),
        Some(i) => {
            let fip = n.floating_ips.remove(i);
            n.ports.retain(|p| p.id != fip.own_port_id);
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
    };
    respond(N, result)
}

async fn add_interface(
    State(s): State<Arc<SimState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let subnet = body["subnet_id"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request("Bad router request: subnet_id is required."))?
                .to_string();
            let mut cloud = s.cloud();
            let port = cloud.neutron.add_router_interface(&id, &subnet)?;
            Ok((
                StatusCode::OK,
                json!({"id": id, "subnet_id": subnet, "port_id": port, "tenant_id": PROJECT_ID, "project_id": PROJECT_ID}),
            ))
        })(),
    )
}

// ---------------------------------------------------------------------------
// The tag API: /v2.0/{resource}/{id}/tags[/{tag}].

fn tags_mut<'a>(
    n: &'a mut Neutron,
    resource: &str,
    id: &str,
) -> Result<&'a mut Vec<String>, ApiError> {
    let found = match resource {
        "networks" => n
            .networks
            .iter_mut()
            .find(|x| x.id == id)
            .map(|x| &mut x.tags),
        "subnets" => n
            .subnets
            .iter_mut()
            .find(|x| x.id == id)
            .map(|x| &mut x.tags),
        "ports" => n.ports.iter_mut().find(|x| x.id == id).map(|x| &mut x.tags),
        "floatingips" => n
            .floating_ips
            .iter_mut()
            .find(|x| x.id == id)
            .map(|x| &mut x.tags),
        _ => n
            .routers
            .iter_mut()
            .find(|x| x.id == id)
            .map(|x| &mut x.tags),
    };
    found.ok_or_else(|| {
        ApiError::not_found("NotFound", format!("{resource} {id} could not be found."))
    })
}

fn check_tag_value(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.len() > 255 || tag.contains(',') || tag.contains('/') {
        return Err(
            ApiError::bad_request(format!("Invalid tag: '{tag}'")).with_kind("InvalidInput")
        );
    }
    Ok(())
}

async fn get_tags(
    State(s): State<Arc<SimState>>,
    resource: &'static str,
    Path(id): Path<String>,
) -> Response {
    let mut cloud = s.cloud();
    respond(
        N,
        tags_mut(&mut cloud.neutron, resource, &id).map(|t| (StatusCode::OK, json!({"tags": t}))),
    )
}

async fn replace_tags(
    State(s): State<Arc<SimState>>,
    resource: &'static str,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        N,
        (|| {
            let body = parse_body(&body)?;
            let tags: Vec<String> = body["tags"]
                .as_array()
                .ok_or_else(|| ApiError::bad_request("Invalid input: tags must be a list."))?
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::bad_request("Invalid tag."))
                })
                .collect::<Result<_, _>>()?;
            for t in &tags {
                check_tag_value(t)?;
            }
            let mut cloud = s.cloud();
            let slot = tags_mut(&mut cloud.neutron, resource, &id)?;
            *slot = tags.clone();
            Ok((StatusCode::OK, json!({"tags": tags})))
        })(),
    )
}

async fn delete_tags(
    State(s): State<Arc<SimState>>,
    resource: &'static str,
    Path(id): Path<String>,
) -> Response {
    let mut cloud = s.cloud();
    respond(
        N,
        tags_mut(&mut cloud.neutron, resource, &id).map(|t| {
            t.clear();
            (StatusCode::NO_CONTENT, Value::Null)
        }),
    )
}

async fn check_tag(
    State(s): State<Arc<SimState>>,
    resource: &'static str,
    Path((id, tag)): Path<(String, String)>,
) -> Response {
    let mut cloud = s.cloud();
    let result = tags_mut(&mut cloud.neutron, resource, &id).and_then(|t| {
        if t.contains(&tag) {
            Ok((StatusCode::NO_CONTENT, Value::Null))
        } else {
            Err(ApiError::not_found(
                "TagNotFound",
                format!("Tag {tag} could not be found for {resource} {id}."),
            ))
        }
    });
    respond(N, result)
}

async fn add_tag(
    State(s): State<Arc<SimState>>,
    resource: &'static str,
    Path((id, tag)): Path<(String, String)>,
) -> Response {
    let mut cloud = s.cloud();
    let result = check_tag_value(&tag)
        .and_then(|()| tags_mut(&mut cloud.neutron, resource, &id))
        .map(|t| {
            if !t.contains(&tag) {
                t.push(tag);
            }
            (StatusCode::CREATED, Value::Null)
        });
    respond(N, result)
}

async fn remove_tag(
    State(s): State<Arc<SimState>>,
    resource: &'static str,
    Path((id, tag)): Path<(String, String)>,
) -> Response {
    let mut cloud = s.cloud();
    let result = tags_mut(&mut cloud.neutron, resource, &id).and_then(|t| {
        let before = t.len();
        t.retain(|x| x != &tag);
        if t.len() == before {
            Err(ApiError::not_found(
                "TagNotFound",
                format!("Tag {tag} could not be found for {resource} {id}."),
            ))
        } else {
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
    });
    respond(N, result)
}
