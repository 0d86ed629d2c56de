//! Octavia's HTTP API over the simulated cloud (and the legacy Neutron
//! LBaaS v2 paths): routes, listing, and each create, update and delete.

use crate::sim::common::timestamp;
use crate::sim::json::{ApiError, ApiKind, ApiResult, Body, Query, parse_body, respond};
use crate::sim::neutron::Neutron;
use crate::sim::octavia::*;
use crate::sim::state::SimState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

// ---------------------------------------------------------------------------
// Routes.

pub async fn versions(State(state): State<Arc<SimState>>) -> Response {
    let newest = state.config.octavia_minor;
    let mut versions: Vec<Value> = (0..=newest)
        .map(|minor| {
            json!({
                "id": format!("v2.{minor}"),
                "status": if minor == newest { "CURRENT" } else { "SUPPORTED" },
                "updated": "2024-01-01T00:00:00Z",
                "links": [{"href": format!("{}/load-balancer/v2", state.base_url), "rel": "self"}],
            })
        })
        .collect();
    versions.reverse();
    respond(
        ApiKind::Octavia,
        Ok((StatusCode::OK, json!({"versions": versions}))),
    )
}

/// Octavia's routes under `/load-balancer`: `/v2/lbaas/...` and its `/v2.0` alias.
pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .nest("/v2/lbaas", lbaas_router(ApiKind::Octavia))
        .nest("/v2.0/lbaas", lbaas_router(ApiKind::Octavia))
}

/// The load balancer resources; `ApiKind::Neutron` serves the legacy LBaaS v2
/// API: Neutron's error shape, no fully-populated create, no batch members.
pub fn lbaas_router(api: ApiKind) -> Router<Arc<SimState>> {
    let mut members = get(list_members).post(create_member);
    if api == ApiKind::Octavia {
        members = members.put(batch_members);
    }
    Router::new()
        .route("/loadbalancers", get(list_lbs).post(create_lb))
        .route(
            "/loadbalancers/{id}",
            get(show_lb).put(update_lb).delete(delete_lb),
        )
        .route("/loadbalancers/{id}/status", get(lb_status))
        .route("/listeners", get(list_listeners).post(create_listener))
        .route(
            "/listeners/{id}",
            get(show_listener)
                .put(update_listener)
                .delete(delete_listener),
        )
        .route("/pools", get(list_pools).post(create_pool))
        .route(
            "/pools/{id}",
            get(show_pool).put(update_pool).delete(delete_pool),
        )
        .route("/pools/{id}/members", members)
        .route(
            "/pools/{id}/members/{member_id}",
            get(show_member).put(update_member).delete(delete_member),
        )
        .route("/healthmonitors", get(list_monitors).post(create_monitor))
        .route(
            "/healthmonitors/{id}",
            get(show_monitor).put(update_monitor).delete(delete_monitor),
        )
        .route("/providers", get(list_providers))
        .route("/flavors/{id}", get(show_flavor))
        .route("/availabilityzones/{name}", get(show_availability_zone))
        .merge(crate::sim::http::l7::router())
        .layer(Extension(api))
}

/// The providers enabled, as Octavia lists them (amphora and its alias).
async fn list_providers(Extension(api): Api) -> Response {
    let providers: Vec<Value> = PROVIDERS
        .iter()
        .map(|name| {
            let description = if *name == "amphora" {
                "The Octavia Amphora driver."
            } else {
                "Deprecated alias of the Octavia Amphora driver."
            };
            json!({"name": name, "description": description})
        })
        .collect();
    respond(api, Ok((StatusCode::OK, json!({ "providers": providers }))))
}

/// The simulator has no flavors: every one is Octavia's 404.
async fn show_flavor(Extension(api): Api, Path(id): Path<String>) -> Response {
    ApiError::not_found("FlavorNotFound", format!("Flavor {id} not found.")).render(api)
}

/// Nor availability zones.
async fn show_availability_zone(Extension(api): Api, Path(name): Path<String>) -> Response {
    ApiError::not_found(
        "AvailabilityZoneNotFound",
        format!("Availability Zone {name} not found."),
    )
    .render(api)
}

type Api = Extension<ApiKind>;
type Sim = State<Arc<SimState>>;

/// A list answer: `view` builds what the query may match (a prefilter on
/// the typed records, so that a lookup among thousands builds few), and
/// the query's filters and `fields=` apply after, as Octavia's do.
fn list(
    state: &SimState,
    api: ApiKind,
    query: &Query,
    key: &str,
    view: impl Fn(&Octavia) -> Vec<Value>,
) -> Response {
    let cloud = state.cloud();
    let items = query.apply(view(&cloud.octavia));
    respond(api, Ok((StatusCode::OK, json!({ key: items }))))
}

/// The prefilter of a list: what a record must have to match the query's
/// `key=` values (none given: anything) and its `tags=` (all of them);
/// gathered once, each record checked without allocating.
struct Prefilter<'q> {
    values: Option<Vec<&'q str>>,
    tags: Option<Vec<&'q str>>,
}

impl<'q> Prefilter<'q> {
    fn new(query: &'q Query, key: &str) -> Prefilter<'q> {
        Prefilter {
            values: query.values(key),
            tags: query.all_tags(),
        }
    }

    fn admits(&self, have: &str, meta: &Meta) -> bool {
        self.values.as_ref().is_none_or(|v| v.contains(&have))
            && self
                .tags
                .as_ref()
                .is_none_or(|t| t.iter().all(|t| meta.tags.iter().any(|h| h == t)))
    }
}

async fn list_lbs(State(s): Sim, Extension(api): Api, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    let pre = Prefilter::new(&query, "name");
    list(&s, api, &query, "loadbalancers", |o| {
        o.load_balancers
            .iter()
            .filter(|lb| pre.admits(&lb.meta.name, &lb.meta))
            .map(|lb| o.lb_json(lb))
            .collect()
    })
}
async fn list_listeners(State(s): Sim, Extension(api): Api, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    let pre = Prefilter::new(&query, "loadbalancer_id");
    list(&s, api, &query, "listeners", |o| {
        o.listeners
            .iter()
            .filter(|l| pre.admits(&l.lb_id, &l.meta))
            .map(|l| o.listener_json(l))
            .collect()
    })
}
async fn list_pools(State(s): Sim, Extension(api): Api, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    let pre = Prefilter::new(&query, "loadbalancer_id");
    list(&s, api, &query, "pools", |o| {
        o.pools
            .iter()
            .filter(|p| pre.admits(&p.lb_id, &p.meta))
            .map(|p| o.pool_json(p))
            .collect()
    })
}
async fn list_monitors(State(s): Sim, Extension(api): Api, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    let pre = Prefilter::new(&query, "pool_id");
    list(&s, api, &query, "healthmonitors", |o| {
        o.monitors
            .iter()
            .filter(|m| pre.admits(&m.pool_id, &m.meta))
            .map(|m| o.monitor_json(m))
            .collect()
    })
}
async fn list_members(
    State(s): Sim,
    Extension(api): Api,
    Path(pool): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    if !o.pools.iter().any(|p| p.meta.id == pool) {
        return respond(api, Err(pool_not_found(&pool)));
    }
    let items = Query::parse(q.as_deref()).apply(
        o.members
            .iter()
            .filter(|m| m.pool_id == pool)
            .map(Octavia::member_json)
            .collect(),
    );
    respond(api, Ok((StatusCode::OK, json!({"members": items}))))
}

/// What Octavia 19 answers to a listener or pool created with children inline.
fn octavia_19_nested_create() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "'dict' object has no attribute '_sa_instance_state'",
    )
}

fn pool_not_found(id: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", format!("Pool {id} could not be found."))
}
fn listener_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotFound",
        format!("Listener {id} could not be found."),
    )
}
fn member_not_found(id: &str) -> ApiError {
    ApiError::not_found("EntityNotFound", format!("Member {id} could not be found."))
}
fn monitor_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotFound",
        format!("Health Monitor {id} could not be found."),
    )
}

async fn show_lb(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    respond(
        api,
        o.lb_index(&id).map(|i| {
            (
                StatusCode::OK,
                json!({"loadbalancer": o.lb_json(&o.load_balancers[i])}),
            )
        }),
    )
}
async fn lb_status(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    respond(
        api,
        o.lb_index(&id)
            .map(|i| (StatusCode::OK, o.status_tree(&o.load_balancers[i]))),
    )
}
async fn show_listener(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    let l = o
        .listeners
        .iter()
        .find(|l| l.meta.id == id)
        .ok_or_else(|| listener_not_found(&id));
    respond(
        api,
        l.map(|l| (StatusCode::OK, json!({"listener": o.listener_json(l)}))),
    )
}
async fn show_pool(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    let p = o
        .pools
        .iter()
        .find(|p| p.meta.id == id)
        .ok_or_else(|| pool_not_found(&id));
    respond(
        api,
        p.map(|p| (StatusCode::OK, json!({"pool": o.pool_json(p)}))),
    )
}
async fn show_member(
    State(s): Sim,
    Extension(api): Api,
    Path((pool, id)): Path<(String, String)>,
) -> Response {
    let cloud = s.cloud();
    let m = cloud
        .octavia
        .members
        .iter()
        .find(|m| m.meta.id == id && m.pool_id == pool)
        .ok_or_else(|| member_not_found(&id));
    respond(
        api,
        m.map(|m| (StatusCode::OK, json!({"member": Octavia::member_json(m)}))),
    )
}
async fn show_monitor(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let cloud = s.cloud();
    let o = &cloud.octavia;
    let m = o
        .monitors
        .iter()
        .find(|m| m.meta.id == id)
        .ok_or_else(|| monitor_not_found(&id));
    respond(
        api,
        m.map(|m| (StatusCode::OK, json!({"healthmonitor": o.monitor_json(m)}))),
    )
}

/// `POST /loadbalancers`: parse -> validate -> commit -> render, as
/// Octavia's API does (every refusal before anything of the cloud changes).
async fn create_lb(State(s): Sim, Extension(api): Api, body: Bytes) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let populated = api == ApiKind::Octavia;
            let fields: Vec<&str> = LB_FIELDS
                .iter()
                .copied()
                .filter(|f| populated || !matches!(*f, "listeners" | "pools" | "additional_vips"))
                .collect();
            let b = Body::wrapped(&body, "loadbalancer", &fields)?;
            let request = LbRequest::parse(&b)?;
            let mut cloud = s.cloud();
            let crate::sim::state::Cloud {
                neutron,
                octavia,
                barbican,
            } = &mut *cloud;
            let create = request.validate(&b, neutron, barbican)?;
            let lb_id = create.commit(octavia, neutron, s.config.provisioning_delay)?;
            // A fully-populated create answers with the whole graph.
            let graph = populated && (b.has("listeners") || b.has("pools"));
            Ok((
                StatusCode::CREATED,
                json!({"loadbalancer": render_lb(octavia, &lb_id, graph)?}),
            ))
        })(),
    )
}

/// What a load balancer create asks that needs no look at the cloud.
struct LbRequest {
    provider: String,
    vip_address: Option<IpAddr>,
    vip_sg_ids: Vec<String>,
    vip_port_id: Option<String>,
    vip_subnet_id: Option<String>,
    vip_network_id: Option<String>,
    meta: Meta,
}

/// A create checked against the cloud: committing it cannot be refused,
/// except by IPAM running out (then nothing is left behind).
struct LbCreate {
    request: LbRequest,
    /// The user's VIP port: (id, network, subnet, address).
    user_port: Option<(String, String, String, IpAddr)>,
    network_id: String,
    subnet_id: String,
    additional: Vec<(String, Option<IpAddr>)>,
    listeners: Vec<ListenerSpec>,
    pools: Vec<PoolSpec>,
}

impl LbRequest {
    fn parse(b: &Body<'_>) -> Result<LbRequest, ApiError> {
        let provider = b.string("provider")?.unwrap_or_else(|| "amphora".into());
        if !PROVIDERS.contains(&provider.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Provider '{provider}' is not enabled."
            )));
        }
        if let Some(f) = b.string("flavor_id")? {
            return Err(ApiError::bad_request(format!(
                "Validation failure: Invalid flavor_id {f}: the simulator has no flavors."
            )));
        }
        if let Some(az) = b.string("availability_zone")? {
            return Err(ApiError::bad_request(format!(
                "Validation failure: Invalid availability zone {az}: the simulator has none."
            )));
        }
        let vip_address = match b.string("vip_address")? {
            Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid input for field/attribute vip_address. Value: '{a}'. Value should be IPv4 or IPv6 format"
                ))
            })?),
            None => None,
        };
        Ok(LbRequest {
            provider,
            vip_address,
            vip_sg_ids: b.strings("vip_sg_ids")?.unwrap_or_default(),
            vip_port_id: b.string("vip_port_id")?,
            vip_subnet_id: b.string("vip_subnet_id")?,
            vip_network_id: b.string("vip_network_id")?,
            meta: Meta::new(b)?,
        })
    }

    /// Checks the request against the cloud: security groups, the VIP's
    /// port, subnet or network, the additional VIPs, and the tree (listeners
    /// and pools, their certificates, duplicates, default pools).
    fn validate(
        self,
        b: &Body<'_>,
        neutron: &Neutron,
        barbican: &crate::sim::barbican::Barbican,
    ) -> Result<LbCreate, ApiError> {
        check_security_groups(&neutron.security_groups, &self.vip_sg_ids)?;
        let user_port = match &self.vip_port_id {
            Some(id) => {
                let port = neutron.port(id).map_err(|_| {
                    ApiError::bad_request(format!("Validation failure: Port {id} not found."))
                })?;
                // Octavia's validate.check_port_in_use.
                if !port.device_id.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "Validation failure: Port {id} is already used by device {}.",
                        port.device_id
                    )));
                }
                let (sub, address) = port.fixed_ips.first().cloned().ok_or_else(|| {
                    ApiError::bad_request(format!("Validation failure: Port {id} has no fixed IP."))
                })?;
                Some((port.id.clone(), port.network_id.clone(), sub, address))
            }
            None => None,
        };
        let (network_id, subnet_id) = match (&user_port, &self.vip_subnet_id, &self.vip_network_id)
        {
            (Some((_, net, sub, _)), _, _) => (net.clone(), sub.clone()),
            (None, Some(sub), _) => {
                let subnet = neutron.subnet(sub).map_err(|_| {
                    ApiError::bad_request(format!("Validation failure: Subnet {sub} not found."))
                })?;
                (subnet.network_id.clone(), sub.clone())
            }
            (None, None, Some(net)) => {
                neutron.network(net).map_err(|_| {
                    ApiError::bad_request(format!("Validation failure: Network {net} not found."))
                })?;
                let sub = neutron
                    .subnets
                    .iter()
                    .find(|s| {
                        &s.network_id == net && self.vip_address.is_none_or(|a| s.cidr.contains(&a))
                    })
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Validation failure: Supplied network {net} does not have any subnets."
                        ))
                    })?;
                (net.clone(), sub.id.clone())
            }
            (None, None, None) => {
                return Err(ApiError::bad_request(
                    "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.",
                ));
            }
        };
        let mut additional = Vec::new();
        if let Some(Value::Array(items)) = b.value("additional_vips") {
            for item in items {
                let a = Body::object(item, "additional_vip", &["subnet_id", "ip_address"])?;
                let sub = a.required_string("subnet_id")?;
                let subnet = neutron.subnet(&sub).map_err(|_| {
                    ApiError::bad_request(format!("Validation failure: Subnet {sub} not found."))
                })?;
                if subnet.network_id != network_id {
                    return Err(ApiError::bad_request(
                        "Validation failure: All VIP subnets must belong to the same network.",
                    ));
                }
                let ip = match a.string("ip_address")? {
                    Some(t) => Some(t.parse::<IpAddr>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "Invalid input for field/attribute ip_address. Value: '{t}'."
                        ))
                    })?),
                    None => None,
                };
                additional.push((sub, ip));
            }
        }
        // A placeholder VIP for parsing listeners: the family is what matters.
        let family_vip = self.vip_address.unwrap_or_else(|| {
            neutron
                .subnet(&subnet_id)
                .map(|s| s.cidr.addr())
                .unwrap_or(IpAddr::from([0, 0, 0, 0]))
        });
        let provider = self.provider.as_str();
        let mut listeners = Vec::new();
        if let Some(Value::Array(items)) = b.value("listeners") {
            for l in items {
                let spec = parse_listener(l, family_vip, provider, true, neutron)?;
                for r in spec.l7.certificate_refs() {
                    barbican.check_certificate(r)?;
                }
                listeners.push(spec);
            }
        }
        let mut pools = Vec::new();
        if let Some(Value::Array(items)) = b.value("pools") {
            for p in items {
                pools.push(parse_pool(p, None, provider, true, neutron)?);
            }
        }
        check_tree(&listeners, &pools)?;
        Ok(LbCreate {
            request: self,
            user_port,
            network_id,
            subnet_id,
            additional,
            listeners,
            pools,
        })
    }
}

/// A populated create's tree: no two listeners on one port, default pools
/// among the load balancer's and of a fitting protocol, no member twice.
/// Octavia 19's DuplicateListenerEntry: it names the listener there.
fn duplicate_listener(protocol: &str, port: i64) -> ApiError {
    ApiError::conflict(
        "DuplicateListenerEntry",
        format!(
            "Another Listener on this Load Balancer is already using protocol {protocol} and protocol_port {port}"
        ),
    )
}

fn check_tree(listeners: &[ListenerSpec], pools: &[PoolSpec]) -> Result<(), ApiError> {
    for (i, l) in listeners.iter().enumerate() {
        if let Some(o) = listeners[..i]
            .iter()
            .find(|o| o.protocol_port == l.protocol_port && port_clash(&o.protocol, &l.protocol))
        {
            return Err(duplicate_listener(&o.protocol, l.protocol_port));
        }
    }
    for l in listeners {
        if let Some(name) = &l.default_pool_name {
            let pool = pools.iter().find(|p| &p.meta.name == name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Validation failure: Listener default_pool {name} is not in the load balancer's pools."
                ))
            })?;
            if !pool_fits_listener(&l.protocol, &pool.protocol) {
                return Err(ApiError::bad_request(format!(
                    "Validation failure: The pool protocol '{}' is invalid while the listener protocol is '{}'.",
                    pool.protocol, l.protocol
                )));
            }
        }
    }
    for pool in pools {
        let mut seen = Vec::new();
        for m in &pool.members {
            if seen.contains(&(m.address, m.protocol_port)) {
                return Err(ApiError::conflict(
                    "DuplicateMemberEntry",
                    format!(
                        "Another member on this pool is already using ip {} on protocol_port {}",
                        m.address, m.protocol_port
                    ),
                ));
            }
            seen.push((m.address, m.protocol_port));
        }
    }
    Ok(())
}

impl LbCreate {
    /// Makes it so: the VIP port (and its additional addresses, undone if
    /// IPAM runs out), then the load balancer and its tree, PENDING_CREATE
    /// for `delay`. Answers the load balancer's id.
    fn commit(
        self,
        octavia: &mut Octavia,
        neutron: &mut Neutron,
        delay: std::time::Duration,
    ) -> Result<String, ApiError> {
        let LbCreate {
            request,
            user_port,
            network_id,
            subnet_id,
            additional,
            listeners,
            pools,
        } = self;
        let lb_id = request.meta.id.clone();
        let port = match &user_port {
            Some((id, ..)) => neutron.port(id)?.clone(),
            None => neutron.create_port(
                &network_id,
                Some(&subnet_id),
                request.vip_address,
                &format!("octavia-lb-{lb_id}"),
                "Octavia",
                &format!("lb-{lb_id}"),
                "",
            )?,
        };
        let mut additional_vips = Vec::new();
        for (sub, ip) in additional {
            match neutron.allocate(&sub, ip, false) {
                Ok(a) => {
                    if let Some(p) = neutron.ports.iter_mut().find(|p| p.id == port.id) {
                        p.fixed_ips.push((sub.clone(), a));
                    }
                    additional_vips.push((sub, a));
                }
                Err(e) => {
                    if user_port.is_none() {
                        neutron.delete_port(&port.id);
                    }
                    return Err(e);
                }
            }
        }
        if let Some(p) = neutron.ports.iter_mut().find(|p| p.id == port.id) {
            p.security_groups = request.vip_sg_ids.clone();
        }
        octavia.load_balancers.push(LoadBalancer {
            meta: request.meta,
            vip_address: port.fixed_ips[0].1,
            vip_port_id: port.id.clone(),
            vip_port_owned: user_port.is_none(),
            vip_sg_ids: request.vip_sg_ids,
            vip_subnet_id: subnet_id,
            vip_network_id: network_id,
            additional_vips,
            provider: request.provider,
            pending_until: Some(Instant::now() + delay),
        });
        // Top-level pools may be referenced by name from listeners' default_pool.
        let mut named: Vec<(String, String)> = Vec::new();
        for p in pools {
            let name = p.meta.name.clone();
            let id = octavia.insert_pool(&lb_id, p);
            named.push((name, id));
        }
        for mut l in listeners {
            if let Some(name) = &l.default_pool_name {
                l.default_pool_id = named
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, id)| id.clone());
            }
            octavia.insert_listener(&lb_id, l);
        }
        Ok(lb_id)
    }
}

/// A load balancer's document; with `graph`, its listeners and pools too
/// (a fully-populated create's answer).
fn render_lb(octavia: &Octavia, lb_id: &str, graph: bool) -> Result<Value, ApiError> {
    let i = octavia.lb_index(lb_id)?;
    let mut doc = octavia.lb_json(&octavia.load_balancers[i]);
    if graph {
        doc["listeners"] = json!(
            octavia
                .listeners
                .iter()
                .filter(|l| l.lb_id == lb_id)
                .map(|l| octavia.listener_json(l))
                .collect::<Vec<_>>()
        );
        // As Octavia's graph answer: each pool's members and monitor whole.
        doc["pools"] = json!(
            octavia
                .pools
                .iter()
                .filter(|p| p.lb_id == lb_id)
                .map(|p| {
                    let mut v = octavia.pool_json(p);
                    v["members"] = json!(
                        octavia
                            .members
                            .iter()
                            .filter(|m| m.pool_id == p.meta.id)
                            .map(Octavia::member_json)
                            .collect::<Vec<_>>()
                    );
                    v["healthmonitor"] = octavia
                        .monitors
                        .iter()
                        .find(|m| m.pool_id == p.meta.id)
                        .map_or(Value::Null, |m| octavia.monitor_json(m));
                    v
                })
                .collect::<Vec<_>>()
        );
    }
    Ok(doc)
}

/// Octavia's check of `vip_sg_ids`: each must exist.
fn check_security_groups(
    groups: &[crate::sim::security_groups::SecurityGroup],
    ids: &[String],
) -> Result<(), ApiError> {
    match ids.iter().find(|id| !groups.iter().any(|g| &g.id == *id)) {
        Some(id) => Err(ApiError::bad_request(format!(
            "Security Group {id} not found."
        ))),
        None => Ok(()),
    }
}

async fn update_lb(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "loadbalancer",
                &[
                    "name",
                    "description",
                    "admin_state_up",
                    "tags",
                    "vip_qos_policy_id",
                    "vip_sg_ids",
                ],
            )?;
            let mut cloud = s.cloud();
            let groups = b.strings("vip_sg_ids")?;
            if let Some(g) = &groups {
                check_security_groups(&cloud.neutron.security_groups, g)?;
            }
            let crate::sim::state::Cloud {
                neutron,
                octavia: o,
                ..
            } = &mut *cloud;
            o.begin_write(&id, s.config.provisioning_delay)?;
            let i = o.lb_index(&id)?;
            let lb = &mut o.load_balancers[i];
            lb.meta.update(&b)?;
            if let Some(g) = groups {
                if let Some(p) = neutron.ports.iter_mut().find(|p| p.id == lb.vip_port_id) {
                    p.security_groups = g.clone();
                }
                lb.vip_sg_ids = g;
            }
            Ok((
                StatusCode::OK,
                json!({"loadbalancer": o.lb_json(&o.load_balancers[i])}),
            ))
        })(),
    )
}

async fn delete_lb(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let cascade = Query::parse(q.as_deref()).flag("cascade");
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let i = o.lb_index(&id)?;
        let status = o.load_balancers[i].meta.provisioning;
        if status != ACTIVE && status != ERROR {
            return Err(ApiError::conflict(
                "StateInvalid",
                format!("Invalid state {status} of loadbalancer resource {id}"),
            ));
        }
        let has_children =
            o.listeners.iter().any(|l| l.lb_id == id) || o.pools.iter().any(|p| p.lb_id == id);
        if has_children && !cascade {
            return Err(ApiError::bad_request(format!(
                "Cannot delete Load Balancer {id} - it has children"
            )));
        }
        let lb = &mut o.load_balancers[i];
        lb.meta.provisioning = PENDING_DELETE;
        lb.pending_until = Some(Instant::now() + s.config.provisioning_delay);
        for l in o.listeners.iter_mut().filter(|l| l.lb_id == id) {
            l.meta.provisioning = PENDING_DELETE;
        }
        for p in o.pools.iter_mut().filter(|p| p.lb_id == id) {
            p.meta.provisioning = PENDING_DELETE;
        }
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}

async fn create_listener(State(s): Sim, Extension(api): Api, body: Bytes) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            // Octavia 19 (as tests/openstack runs it) fails a listener created
            // with its default pool inline; only the load balancer's own
            // fully-populated create takes nested objects.
            if api == ApiKind::Octavia
                && !s.config.nested_creates
                && body["listener"].get("default_pool").is_some()
            {
                return Err(octavia_19_nested_create());
            }
            let b = Body::wrapped(&body, "listener", &LISTENER_FIELDS)?;
            let lb_id = b.required_string("loadbalancer_id")?;
            let mut cloud = s.cloud();
            let crate::sim::state::Cloud {
                neutron,
                octavia,
                barbican,
            } = &mut *cloud;
            let i = octavia.lb_index(&lb_id).map_err(|_| {
                ApiError::bad_request(format!(
                    "Validation failure: Load Balancer {lb_id} not found."
                ))
            })?;
            let (vip, provider) = (
                octavia.load_balancers[i].vip_address,
                octavia.load_balancers[i].provider.clone(),
            );
            let spec = parse_listener(
                &body["listener"],
                vip,
                &provider,
                api == ApiKind::Octavia,
                neutron,
            )?;
            for r in spec.l7.certificate_refs() {
                barbican.check_certificate(r)?;
            }
            if let Some(taken) = octavia.listeners.iter().find(|l| {
                l.lb_id == lb_id
                    && l.protocol_port == spec.protocol_port
                    && port_clash(&l.protocol, &spec.protocol)
            }) {
                return Err(duplicate_listener(&taken.protocol, spec.protocol_port));
            }
            if let Some(pid) = &spec.default_pool_id {
                let pool = octavia
                    .pools
                    .iter()
                    .find(|p| &p.meta.id == pid && p.lb_id == lb_id)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("Validation failure: Pool {pid} not found."))
                    })?;
                if !pool_fits_listener(&spec.protocol, &pool.protocol) {
                    return Err(ApiError::bad_request(format!(
                        "Validation failure: The pool protocol '{}' is invalid while the listener protocol is '{}'.",
                        pool.protocol, spec.protocol
                    )));
                }
                if octavia
                    .listeners
                    .iter()
                    .any(|l| l.default_pool_id.as_deref() == Some(pid))
                {
                    return Err(ApiError::conflict(
                        "DuplicatePoolEntry",
                        format!("Pool {pid} is already used by another listener."),
                    ));
                }
            }
            octavia.begin_write(&lb_id, s.config.provisioning_delay)?;
            let id = octavia.insert_listener(&lb_id, spec);
            let l = octavia
                .listeners
                .iter()
                .find(|l| l.meta.id == id)
                .ok_or_else(|| listener_not_found(&id))?;
            Ok((
                StatusCode::CREATED,
                json!({"listener": octavia.listener_json(l)}),
            ))
        })(),
    )
}

async fn update_listener(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let allowed: Vec<&str> = LISTENER_FIELDS
                .iter()
                .copied()
                .filter(|f| {
                    !matches!(
                        *f,
                        "protocol"
                            | "protocol_port"
                            | "loadbalancer_id"
                            | "default_pool"
                            | "project_id"
                            | "tenant_id"
                    )
                })
                .collect();
            let b = Body::wrapped(&body, "listener", &allowed)?;
            let mut cloud = s.cloud();
            let crate::sim::state::Cloud {
                octavia: o,
                barbican,
                ..
            } = &mut *cloud;
            let li = o
                .listeners
                .iter()
                .position(|l| l.meta.id == id)
                .ok_or_else(|| listener_not_found(&id))?;
            let lb_id = o.listeners[li].lb_id.clone();
            let vip = o.load_balancers[o.lb_index(&lb_id)?].vip_address;
            let cidrs = allowed_cidrs(&b, vip)?;
            let t = timeouts(&b, o.listeners[li].timeouts)?;
            let l7 = layer7(&b, &o.listeners[li].protocol, &o.listeners[li].l7)?;
            // Octavia checks the references an update sends, not the others.
            if b.has("default_tls_container_ref") || b.has("sni_container_refs") {
                for r in l7.certificate_refs() {
                    barbican.check_certificate(r)?;
                }
            }
            let limit = b.integer("connection_limit", -1, 2_147_483_647)?;
            if b.has("default_pool_id")
                && let Some(pid) = b.string("default_pool_id")?
                && !o.pools.iter().any(|p| p.meta.id == pid && p.lb_id == lb_id)
            {
                return Err(ApiError::bad_request(format!(
                    "Validation failure: Pool {pid} not found."
                )));
            }
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let l = &mut o.listeners[li];
            l.meta.update(&b)?;
            if b.has("allowed_cidrs") {
                l.allowed_cidrs = cidrs;
            }
            l.timeouts = t;
            l.l7 = l7;
            if let Some(limit) = limit {
                l.connection_limit = limit;
            }
            if b.has("default_pool_id") {
                l.default_pool_id = b.string("default_pool_id")?;
            }
            Ok((
                StatusCode::OK,
                json!({"listener": o.listener_json(&o.listeners[li])}),
            ))
        })(),
    )
}

async fn delete_listener(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let li = o
            .listeners
            .iter()
            .position(|l| l.meta.id == id)
            .ok_or_else(|| listener_not_found(&id))?;
        let lb_id = o.listeners[li].lb_id.clone();
        o.begin_write(&lb_id, s.config.provisioning_delay)?;
        o.listeners[li].meta.provisioning = PENDING_DELETE;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}

async fn create_pool(State(s): Sim, Extension(api): Api, body: Bytes) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            if api == ApiKind::Octavia
                && !s.config.nested_creates
                && (body["pool"].get("members").is_some()
                    || body["pool"].get("healthmonitor").is_some())
            {
                return Err(octavia_19_nested_create());
            }
            let b = Body::wrapped(&body, "pool", &POOL_FIELDS)?;
            let mut cloud = s.cloud();
            let crate::sim::state::Cloud {
                neutron, octavia, ..
            } = &mut *cloud;
            let listener_id = b.string("listener_id")?;
            let (lb_id, listener_protocol) = match (&listener_id, b.string("loadbalancer_id")?) {
                (Some(lid), _) => {
                    let l = octavia
                        .listeners
                        .iter()
                        .find(|l| &l.meta.id == lid)
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "Validation failure: Listener {lid} not found."
                            ))
                        })?;
                    if let Some(existing) = &l.default_pool_id {
                        return Err(ApiError::conflict(
                            "DuplicatePoolEntry",
                            format!("Listener {lid} already has default pool {existing}."),
                        ));
                    }
                    (l.lb_id.clone(), Some(l.protocol.clone()))
                }
                (None, Some(lb)) => (lb, None),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "Validation failure: loadbalancer_id or listener_id must be specified.",
                    ));
                }
            };
            let i = octavia.lb_index(&lb_id).map_err(|_| {
                ApiError::bad_request(format!(
                    "Validation failure: Load Balancer {lb_id} not found."
                ))
            })?;
            let provider = octavia.load_balancers[i].provider.clone();
            let spec = parse_pool(
                &body["pool"],
                listener_protocol.as_deref(),
                &provider,
                api == ApiKind::Octavia,
                neutron,
            )?;
            octavia.check_member_duplicates("", &spec.members)?;
            octavia.begin_write(&lb_id, s.config.provisioning_delay)?;
            let id = octavia.insert_pool(&lb_id, spec);
            if let Some(lid) = listener_id
                && let Some(l) = octavia.listeners.iter_mut().find(|l| l.meta.id == lid)
            {
                l.default_pool_id = Some(id.clone());
            }
            let p = octavia
                .pools
                .iter()
                .find(|p| p.meta.id == id)
                .ok_or_else(|| pool_not_found(&id))?;
            Ok((StatusCode::CREATED, json!({"pool": octavia.pool_json(p)})))
        })(),
    )
}

async fn update_pool(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "pool",
                &[
                    "name",
                    "description",
                    "admin_state_up",
                    "lb_algorithm",
                    "session_persistence",
                    "tags",
                    "tls_enabled",
                    "tls_container_ref",
                    "ca_tls_container_ref",
                    "crl_container_ref",
                    "tls_ciphers",
                    "tls_versions",
                    "alpn_protocols",
                ],
            )?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let pi = o
                .pools
                .iter()
                .position(|p| p.meta.id == id)
                .ok_or_else(|| pool_not_found(&id))?;
            let lb_id = o.pools[pi].lb_id.clone();
            let provider = o.load_balancers[o.lb_index(&lb_id)?].provider.clone();
            let algorithm = b.choice("lb_algorithm", &ALGORITHMS)?;
            if algorithm.as_deref() == Some("SOURCE_IP_PORT")
                && PROVIDERS.contains(&provider.as_str())
            {
                return Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "ProviderUnsupportedOptionError",
                    format!(
                        "Provider '{provider}' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm."
                    ),
                ));
            }
            let persistence = match b.map.get("session_persistence") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(sp) => Some(Some(parse_persistence(sp, &o.pools[pi].protocol)?)),
            };
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let p = &mut o.pools[pi];
            p.meta.update(&b)?;
            if let Some(a) = algorithm {
                p.lb_algorithm = a;
            }
            if let Some(sp) = persistence {
                p.session_persistence = sp;
            }
            Ok((StatusCode::OK, json!({"pool": o.pool_json(&o.pools[pi])})))
        })(),
    )
}

async fn delete_pool(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let pi = o
            .pools
            .iter()
            .position(|p| p.meta.id == id)
            .ok_or_else(|| pool_not_found(&id))?;
        if let Some(p) = o
            .l7policies
            .iter()
            .find(|p| p.redirect.pool_id() == Some(id.as_str()))
        {
            return Err(ApiError::conflict(
                "PoolInUseByL7Policy",
                format!("Pool {id} is in use by L7 policy {}", p.meta.id),
            ));
        }
        let lb_id = o.pools[pi].lb_id.clone();
        o.begin_write(&lb_id, s.config.provisioning_delay)?;
        o.pools[pi].meta.provisioning = PENDING_DELETE;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}

async fn create_member(
    State(s): Sim,
    Extension(api): Api,
    Path(pool): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let mut cloud = s.cloud();
            let crate::sim::state::Cloud {
                neutron, octavia, ..
            } = &mut *cloud;
            let lb_id = octavia
                .pool_lb(&pool)
                .ok_or_else(|| pool_not_found(&pool))?
                .to_string();
            let inner = body
                .get("member")
                .ok_or_else(|| ApiError::bad_request("Missing argument: \"member\""))?;
            let spec = parse_member(inner, neutron)?;
            octavia.check_member_duplicates(&pool, std::slice::from_ref(&spec))?;
            octavia.begin_write(&lb_id, s.config.provisioning_delay)?;
            let id = spec.meta.id.clone();
            let mut meta = spec.meta;
            meta.operating = member_created_status(octavia.monitored(&pool));
            octavia.members.push(Member {
                meta,
                pool_id: pool.clone(),
                address: spec.address,
                protocol_port: spec.protocol_port,
                subnet_id: spec.subnet_id,
                weight: spec.weight,
                backup: spec.backup,
            });
            let m = octavia
                .members
                .iter()
                .find(|m| m.meta.id == id)
                .ok_or_else(|| member_not_found(&id))?;
            Ok((
                StatusCode::CREATED,
                json!({"member": Octavia::member_json(m)}),
            ))
        })(),
    )
}

/// `PUT /pools/{id}/members`: the given list replaces the pool's members
/// (matched by address and port); `?additive_only=true` deletes nothing.
async fn batch_members(
    State(s): Sim,
    Extension(api): Api,
    Path(pool): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let additive_only = Query::parse(q.as_deref()).flag("additive_only");
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let mut cloud = s.cloud();
            let crate::sim::state::Cloud {
                neutron, octavia, ..
            } = &mut *cloud;
            let lb_id = octavia
                .pool_lb(&pool)
                .ok_or_else(|| pool_not_found(&pool))?
                .to_string();
            let items = body["members"].as_array().ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input for field/attribute members. Value should be a list",
                )
            })?;
            let specs: Vec<MemberSpec> = items
                .iter()
                .map(|m| parse_member(m, neutron))
                .collect::<Result<_, _>>()?;
            for (i, m) in specs.iter().enumerate() {
                if specs[..i]
                    .iter()
                    .any(|o| o.address == m.address && o.protocol_port == m.protocol_port)
                {
                    return Err(ApiError::bad_request(format!(
                        "Validation failure: Duplicate member {}:{} in the request.",
                        m.address, m.protocol_port
                    )));
                }
            }
            octavia.begin_write(&lb_id, s.config.provisioning_delay)?;
            let monitored = octavia.monitored(&pool);
            let mut keep = Vec::new();
            for spec in specs {
                let existing = octavia.members.iter_mut().find(|m| {
                    m.pool_id == pool
                        && m.address == spec.address
                        && m.protocol_port == spec.protocol_port
                });
                match existing {
                    Some(m) => {
                        m.meta.provisioning = PENDING_UPDATE;
                        m.meta.name = spec.meta.name;
                        m.meta.tags = spec.meta.tags;
                        m.meta.admin_state_up = spec.meta.admin_state_up;
                        m.meta.updated_at = Some(timestamp());
                        m.weight = spec.weight;
                        m.backup = spec.backup;
                        keep.push(m.meta.id.clone());
                    }
                    None => {
                        keep.push(spec.meta.id.clone());
                        let mut meta = spec.meta;
                        meta.operating = member_created_status(monitored);
                        octavia.members.push(Member {
                            meta,
                            pool_id: pool.clone(),
                            address: spec.address,
                            protocol_port: spec.protocol_port,
                            subnet_id: spec.subnet_id,
                            weight: spec.weight,
                            backup: spec.backup,
                        });
                    }
                }
            }
            if !additive_only {
                for m in octavia
                    .members
                    .iter_mut()
                    .filter(|m| m.pool_id == pool && !keep.contains(&m.meta.id))
                {
                    m.meta.provisioning = PENDING_DELETE;
                }
            }
            Ok((StatusCode::ACCEPTED, Value::Null))
        })(),
    )
}

async fn update_member(
    State(s): Sim,
    Extension(api): Api,
    Path((pool, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "member",
                &[
                    "name",
                    "admin_state_up",
                    "weight",
                    "backup",
                    "monitor_address",
                    "monitor_port",
                    "tags",
                ],
            )?;
            let weight = b.integer("weight", 0, 256)?;
            let backup = b.boolean("backup")?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let mi = o
                .members
                .iter()
                .position(|m| m.meta.id == id && m.pool_id == pool)
                .ok_or_else(|| member_not_found(&id))?;
            let lb_id = o
                .pool_lb(&pool)
                .ok_or_else(|| pool_not_found(&pool))?
                .to_string();
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let m = &mut o.members[mi];
            m.meta.update(&b)?;
            if let Some(w) = weight {
                m.weight = w;
            }
            if let Some(bk) = backup {
                m.backup = bk;
            }
            Ok((StatusCode::OK, json!({"member": Octavia::member_json(m)})))
        })(),
    )
}

async fn delete_member(
    State(s): Sim,
    Extension(api): Api,
    Path((pool, id)): Path<(String, String)>,
) -> Response {
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let mi = o
            .members
            .iter()
            .position(|m| m.meta.id == id && m.pool_id == pool)
            .ok_or_else(|| member_not_found(&id))?;
        let lb_id = o
            .pool_lb(&pool)
            .ok_or_else(|| pool_not_found(&pool))?
            .to_string();
        o.begin_write(&lb_id, s.config.provisioning_delay)?;
        o.members[mi].meta.provisioning = PENDING_DELETE;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}

async fn create_monitor(State(s): Sim, Extension(api): Api, body: Bytes) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(&body, "healthmonitor", &MONITOR_FIELDS)?;
            let pool_id = b.required_string("pool_id")?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let pool = o
                .pools
                .iter()
                .find(|p| p.meta.id == pool_id)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("Validation failure: Pool {pool_id} not found."))
                })?;
            let (lb_id, protocol) = (pool.lb_id.clone(), pool.protocol.clone());
            let spec = parse_monitor(&body["healthmonitor"], Some(&protocol))?;
            if o.monitors.iter().any(|m| m.pool_id == pool_id) {
                return Err(ApiError::conflict(
                    "DuplicateHealthMonitor",
                    format!("This pool already has a health monitor: {pool_id}"),
                ));
            }
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let id = spec.meta.id.clone();
            o.monitors.push(Monitor {
                meta: spec.meta,
                pool_id,
                kind: spec.kind,
                delay: spec.delay,
                timeout: spec.timeout,
                max_retries: spec.max_retries,
                max_retries_down: spec.max_retries_down,
                http: spec.http,
            });
            let m = o
                .monitors
                .iter()
                .find(|m| m.meta.id == id)
                .ok_or_else(|| monitor_not_found(&id))?;
            Ok((
                StatusCode::CREATED,
                json!({"healthmonitor": o.monitor_json(m)}),
            ))
        })(),
    )
}

async fn update_monitor(
    State(s): Sim,
    Extension(api): Api,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        api,
        (|| -> ApiResult {
            let body = parse_body(&body)?;
            let b = Body::wrapped(
                &body,
                "healthmonitor",
                &[
                    "name",
                    "admin_state_up",
                    "delay",
                    "timeout",
                    "max_retries",
                    "max_retries_down",
                    "http_method",
                    "url_path",
                    "expected_codes",
                    "tags",
                    "domain_name",
                    "http_version",
                ],
            )?;
            let delay = b.integer("delay", 0, 2_147_483_647)?;
            let timeout = b.integer("timeout", 0, 2_147_483_647)?;
            let retries = b.integer("max_retries", 1, 10)?;
            let retries_down = b.integer("max_retries_down", 1, 10)?;
            let mut cloud = s.cloud();
            let o = &mut cloud.octavia;
            let mi = o
                .monitors
                .iter()
                .position(|m| m.meta.id == id)
                .ok_or_else(|| monitor_not_found(&id))?;
            let lb_id = o
                .pool_lb(&o.monitors[mi].pool_id)
                .ok_or_else(|| monitor_not_found(&id))?
                .to_string();
            let http = http_check(&b, &o.monitors[mi].kind, o.monitors[mi].http.as_ref())?;
            o.begin_write(&lb_id, s.config.provisioning_delay)?;
            let m = &mut o.monitors[mi];
            m.meta.update(&b)?;
            m.http = http;
            m.delay = delay.unwrap_or(m.delay);
            m.timeout = timeout.unwrap_or(m.timeout);
            m.max_retries = retries.unwrap_or(m.max_retries);
            m.max_retries_down = retries_down.unwrap_or(m.max_retries_down);
            Ok((
                StatusCode::OK,
                json!({"healthmonitor": o.monitor_json(&o.monitors[mi])}),
            ))
        })(),
    )
}

async fn delete_monitor(State(s): Sim, Extension(api): Api, Path(id): Path<String>) -> Response {
    let mut cloud = s.cloud();
    let o = &mut cloud.octavia;
    let result = (|| -> ApiResult {
        let mi = o
            .monitors
            .iter()
            .position(|m| m.meta.id == id)
            .ok_or_else(|| monitor_not_found(&id))?;
        let lb_id = o
            .pool_lb(&o.monitors[mi].pool_id)
            .ok_or_else(|| monitor_not_found(&id))?
            .to_string();
        o.begin_write(&lb_id, s.config.provisioning_delay)?;
        o.monitors[mi].meta.provisioning = PENDING_DELETE;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(api, result)
}
