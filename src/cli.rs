//! `svc-lbaas plan FILE...`: offline translation for CI pipelines. Reads the
//! files, pairs each Service with its Endpoints / EndpointSlices, and prints a
//! JSON array of PlanResponse against empty state. Exit codes: 0 ok, 1 invalid
//! input (a problem on stderr), 2 usage or configuration.

use std::collections::HashMap;
use std::io::{Read as _, Write};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::Settings;
use crate::k8s::{self, Located, Object};
use crate::model::Observed;
use crate::plan::{self, Capabilities};
use crate::problem::Problem;
use crate::response::PlanResponse;
use crate::translate::{self, Backends};

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID_INPUT: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// The label an EndpointSlice carries naming its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service from the files with its backends, in input order.
pub struct ServiceInput {
    pub origin: String,
    pub service: Service,
    pub endpoints: Option<(String, Endpoints)>,
    pub endpoint_slices: Vec<(String, EndpointSlice)>,
}

fn namespace_of(ns: &Option<String>) -> String {
    ns.clone().unwrap_or_else(|| "default".into())
}

/// Pairs Services with their Endpoints (by namespace/name) and EndpointSlices
/// (by the `kubernetes.io/service-name` label). Notes what matched nothing.
pub fn pair(
    objects: Vec<Located>,
    notes: &mut Vec<String>,
) -> Result<Vec<ServiceInput>, Box<Problem>> {
    let mut services: Vec<ServiceInput> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut endpoints = Vec::new();
    let mut slices = Vec::new();
    for Located { origin, object } in objects {
        match object {
            Object::Service(s) => {
                let key = (
                    namespace_of(&s.metadata.namespace),
                    s.metadata.name.clone().unwrap_or_default(),
                );
                if let Some(&i) = index.get(&key) {
                    return Err(Box::new(
                        Problem::new(
                            "duplicate-object",
                            "Duplicate object",
                            400,
                            format!(
                                "Service {}/{} appears twice: in {} and in {origin}",
                                key.0, key.1, services[i].origin
                            ),
                        )
                        .with_file(origin),
                    ));
                }
                index.insert(key, services.len());
                services.push(ServiceInput {
                    origin,
                    service: *s,
                    endpoints: None,
                    endpoint_slices: Vec::new(),
                });
            }
            Object::Endpoints(e) => endpoints.push((origin, *e)),
            Object::EndpointSlice(s) => slices.push((origin, *s)),
        }
    }
    for (origin, e) in endpoints {
        let key = (
            namespace_of(&e.metadata.namespace),
            e.metadata.name.clone().unwrap_or_default(),
        );
        match index.get(&key) {
            Some(&i) if services[i].endpoints.is_some() => {
                return Err(Box::new(
                    Problem::new(
                        "duplicate-object",
                        "Duplicate object",
                        400,
                        format!("Endpoints {}/{} appear twice", key.0, key.1),
                    )
                    .with_file(origin),
                ));
            }
            Some(&i) => services[i].endpoints = Some((origin, e)),
            None => notes.push(format!(
                "{origin}: Endpoints {}/{} match no Service in the files",
                key.0, key.1
            )),
        }
    }
    for (origin, s) in slices {
        let service = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned();
        let ns = namespace_of(&s.metadata.namespace);
        match service.and_then(|name| index.get(&(ns.clone(), name))) {
            Some(&i) => services[i].endpoint_slices.push((origin, s)),
            None => notes.push(format!(
                "{origin}: EndpointSlice {ns}/{} matches no Service in the files (label {SERVICE_NAME_LABEL})",
                s.metadata.name.as_deref().unwrap_or("")
            )),
        }
    }
    Ok(services)
}

/// Translates and plans one Service against empty state.
pub fn plan_offline(
    input: &ServiceInput,
    settings: &Settings,
) -> Result<PlanResponse, Box<Problem>> {
    let slices: Vec<EndpointSlice> = input
        .endpoint_slices
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    let backends = (input.endpoints.is_some() || !slices.is_empty()).then(|| Backends {
        endpoints: input.endpoints.as_ref().map(|(_, e)| e),
        endpoint_slices: &slices,
    });
    let object = format!(
        "Service {}/{}",
        namespace_of(&input.service.metadata.namespace),
        input.service.metadata.name.as_deref().unwrap_or("")
    );
    let translation =
        translate::translate(settings, &input.service, backends, &|_| None).map_err(|e| {
            // Name the file the field lives in: the Service's, the Endpoints' or a slice's.
            let file = match &e {
                translate::TranslateError::Field { field, .. }
                    if field.starts_with("endpoints.") =>
                {
                    input.endpoints.as_ref().map(|(o, _)| o.clone())
                }
                translate::TranslateError::Field { field, .. }
                    if field.starts_with("endpointSlices[") =>
                {
                    let k: Option<usize> = field["endpointSlices[".len()..]
                        .split(']')
                        .next()
                        .and_then(|n| n.parse().ok());
                    k.and_then(|k| input.endpoint_slices.get(k))
                        .map(|(o, _)| o.clone())
                }
                _ => None,
            };
            Box::new(
                Problem::from(&e)
                    .with_file(file.unwrap_or_else(|| input.origin.clone()))
                    .with_object(object.clone()),
            )
        })?;
    let caps = Capabilities::of(settings.octavia_defaults.api);
    let ops = plan::plan(&translation, &Observed::default(), caps).map_err(|e| {
        Problem::from(&e)
            .with_file(input.origin.clone())
            .with_object(object)
    })?;
    Ok(PlanResponse::new(&translation, &ops, false))
}

/// Runs `plan` over `files` (`-` is standard input); returns the exit code.
pub fn run_plan(
    files: &[PathBuf],
    settings: &Settings,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let fail = |stderr: &mut dyn Write, p: Problem| {
        let _ = writeln!(stderr, "{}", p.to_json());
        EXIT_INVALID_INPUT
    };
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    for path in files {
        let label = path.display().to_string();
        let text = if label == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read_to_string(path)
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                let p = Problem::new(
                    "unreadable-file",
                    "Cannot read input",
                    400,
                    format!("{label}: {e}"),
                )
                .with_file(label);
                return fail(stderr, p);
            }
        };
        match k8s::read(&label, &text) {
            Ok(read) => {
                objects.extend(read.objects);
                notes.extend(read.notes);
            }
            Err(e) => return fail(stderr, Problem::from(&e)),
        }
    }
    let inputs = match pair(objects, &mut notes) {
        Ok(i) => i,
        Err(p) => return fail(stderr, *p),
    };
    let mut plans = Vec::with_capacity(inputs.len());
    for input in &inputs {
        match plan_offline(input, settings) {
            Ok(p) => plans.push(p),
            Err(p) => return fail(stderr, *p),
        }
    }
    for note in notes {
        let _ = writeln!(stderr, "note: {note}");
    }
    match serde_json::to_string_pretty(&plans) {
        Ok(json) => {
            let _ = writeln!(stdout, "{json}");
            EXIT_OK
        }
        Err(e) => fail(
            stderr,
            Problem::new("internal", "Cannot print the plan", 500, e.to_string()),
        ),
    }
}

/// `svc-lbaas sim`: serves the simulated cloud until SIGINT or SIGTERM, after
/// printing the environment a client needs, one `KEY=value` per line.
pub async fn run_sim(
    listen: std::net::SocketAddr,
    config: crate::sim::SimConfig,
) -> std::io::Result<()> {
    use crate::sim;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let running = sim::spawn(listener, config).await?;
    let seed = &running.state.seed;
    let lines = [
        ("OS_AUTH_URL", running.auth_url()),
        ("OS_USERNAME", sim::USER.to_string()),
        ("OS_PASSWORD", sim::PASSWORD.to_string()),
        ("OS_PROJECT_NAME", sim::PROJECT.to_string()),
        ("OS_USER_DOMAIN_NAME", sim::DOMAIN.to_string()),
        ("OS_PROJECT_DOMAIN_NAME", sim::DOMAIN.to_string()),
        ("OS_REGION_NAME", sim::REGION.to_string()),
        ("OS_IDENTITY_API_VERSION", "3".to_string()),
        ("POD_NETWORK", seed.pod_network.clone()),
        ("POD_SUBNET", seed.pod_subnet.clone()),
        ("SERVICE_NETWORK", seed.service_network.clone()),
        ("SERVICE_SUBNET", seed.service_subnet.clone()),
        ("PUBLIC_NETWORK", seed.public_network.clone()),
        ("PUBLIC_SUBNET", seed.public_subnet.clone()),
        ("ROUTER", seed.router.clone()),
    ];
    let mut out = std::io::stdout().lock();
    for (k, v) in lines {
        writeln!(out, "{k}={v}")?;
    }
    out.flush()?;
    drop(out);
    tracing::info!(addr = %running.addr, "simulated OpenStack listening (Keystone /v3, Octavia /load-balancer, Neutron /network)");
    shutdown_signal().await;
    running.task.abort();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Builds the REST app: on the cloud the environment names, or (none named)
/// on an embedded simulated cloud whose seed fills the unset subnets.
pub async fn build_state(
    mut settings: Settings,
    tokens: Option<crate::api::auth::Tokens>,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<(
    std::sync::Arc<crate::api::AppState>,
    Option<crate::sim::RunningSim>,
)> {
    use std::sync::Arc;

    use crate::openstack::{Cloud, Credentials, Session};
    let invalid = |e: crate::openstack::OpenStackError| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    };
    let (credentials, sim) = match Credentials::from_env(env).map_err(invalid)? {
        Some(c) => (c, None),
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let mut config = crate::sim::SimConfig::default();
            if let Some(ms) =
                env("SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").and_then(|v| v.parse().ok())
            {
                config.provisioning_delay = std::time::Duration::from_millis(ms);
            }
            let sim = crate::sim::spawn(listener, config).await?;
            tracing::warn!(
                auth_url = %sim.auth_url(),
                "no OpenStack credentials (OS_CLOUD, OS_AUTH_URL): running on the embedded SIMULATED cloud; nothing real is created"
            );
            let seed = &sim.state.seed;
            let d = &mut settings.neutron_defaults;
            d.pod_subnet.get_or_insert_with(|| seed.pod_subnet.clone());
            d.service_subnet
                .get_or_insert_with(|| seed.service_subnet.clone());
            d.external_svc_subnet
                .get_or_insert_with(|| seed.public_subnet.clone());
            let auth = Credentials::from_env(&|k| match k {
                "OS_AUTH_URL" => Some(sim.auth_url()),
                "OS_USERNAME" => Some(crate::sim::USER.into()),
                "OS_PASSWORD" => Some(crate::sim::PASSWORD.into()),
                "OS_PROJECT_NAME" => Some(crate::sim::PROJECT.into()),
                "OS_USER_DOMAIN_NAME" | "OS_PROJECT_DOMAIN_NAME" => Some(crate::sim::DOMAIN.into()),
                "OS_REGION_NAME" => Some(crate::sim::REGION.into()),
                _ => None,
            })
            .map_err(invalid)?
            .ok_or_else(|| std::io::Error::other("simulator credentials"))?;
            (auth, Some(sim))
        }
    };
    let calls = &settings.openstack;
    let session = Session::new(
        credentials,
        calls.max_concurrent_calls,
        std::time::Duration::from_secs(calls.call_timeout_s),
    )
    .map_err(invalid)?;
    let cloud = Cloud::new(Arc::new(session), settings.octavia_defaults.api);
    let state = Arc::new(crate::api::AppState {
        reconciler: crate::reconcile::Reconciler::new(cloud, settings),
        body_limit: crate::api::DEFAULT_BODY_LIMIT,
        tokens,
    });
    Ok((state, sim))
}

/// The REST app over `build_state` (what the tests drive).
pub async fn build_app(
    settings: Settings,
    tokens: Option<crate::api::auth::Tokens>,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<(axum::Router, Option<crate::sim::RunningSim>)> {
    let (state, sim) = build_state(settings, tokens, env).await?;
    Ok((crate::api::app(state), sim))
}

/// `svc-lbaas serve`: the REST API until SIGINT or SIGTERM.
pub async fn run_serve(
    settings: Settings,
    tokens: Option<crate::api::auth::Tokens>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    rest_addr: std::net::SocketAddr,
    grpc_addr: std::net::SocketAddr,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::io::Result<()> {
    let limits = settings.server.limits();
    if let Some(n) = crate::listener::raise_open_files_limit() {
        tracing::info!(open_files = n, "open-files limit");
    }
    let (state, sim) = build_state(settings, tokens, env).await?;
    let app = crate::api::app(state.clone());
    let listener = tokio::net::TcpListener::bind(rest_addr).await?;
    let addr = listener.local_addr()?;
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr).await?;
    let grpc_bound = grpc_listener.local_addr()?;
    let routes = crate::api::grpc::router(state)
        .await
        .map_err(std::io::Error::other)?;
    let (stop_grpc, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
    // Behind TLS, the same certificate serves gRPC over HTTP/2 (ALPN).
    let grpc = tokio::spawn(crate::listener::serve(
        grpc_listener,
        routes.into_axum_router(),
        tls.clone(),
        limits,
        async {
            let _ = grpc_stopped.await;
        },
    ));
    tracing::info!(addr = %grpc_bound, tls = tls.is_some(), "gRPC listening");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "REST_ADDR={addr}")?;
        writeln!(out, "GRPC_ADDR={grpc_bound}")?;
        if let Some(sim) = &sim {
            writeln!(out, "SIM_AUTH_URL={}", sim.auth_url())?;
        }
        out.flush()?;
    }
    let scheme = if tls.is_some() { "HTTPS" } else { "plain HTTP" };
    tracing::info!(%addr, ?limits, "REST API listening ({scheme})");
    crate::listener::serve(listener, app, tls, limits, shutdown_signal()).await?;
    let _ = stop_grpc.send(());
    if let Ok(Err(e)) = grpc.await {
        tracing::warn!(error = %e, "gRPC server stopped with an error");
    }
    tracing::info!("stopped");
    Ok(())
}
