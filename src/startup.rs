//! The composition root: settings, the cloud (real or the embedded
//! simulator), the reconciler, and the REST and gRPC servers with their
//! shutdown. Nothing else wires these together.

use std::io::Write;

use crate::config::Settings;

/// `svc-lbaas sim`: serves the simulated cloud until SIGINT or SIGTERM, after
/// printing the environment a client needs, one `KEY=value` per line.
pub async fn run_sim(
    listen: std::net::SocketAddr,
    config: crate::sim::SimConfig,
) -> std::io::Result<()> {
    use crate::sim;
    let listener = crate::listener::bind(listen)?;
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
            let listener = crate::listener::bind(([127, 0, 0, 1], 0).into())?;
            let mut config = crate::sim::SimConfig::default();
            if let Some(ms) =
                env("SVC_LBAAS_SIM_PROVISIONING_DELAY_MS").and_then(|v| v.parse().ok())
            {
                config.provisioning_delay = std::time::Duration::from_millis(ms);
            }
            config.nested_creates = env("SVC_LBAAS_SIM_NESTED_CREATES").as_deref() == Some("true");
            if let Some(n) = env("SVC_LBAAS_SIM_PUBLIC_ADDRESSES").and_then(|v| v.parse().ok()) {
                config.public_addresses = n;
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
    let cloud = Cloud::new(Arc::new(session), settings.octavia_defaults.api)
        .with_full_read_every(std::time::Duration::from_secs(calls.full_read_every_s))
        .with_subnet_cache(std::time::Duration::from_secs(calls.subnet_cache_s));
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
    let listener = crate::listener::bind(rest_addr)?;
    let addr = listener.local_addr()?;
    let grpc_listener = crate::listener::bind(grpc_addr)?;
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
    // For whoever started us (tests, scripts); a reader that has gone (a
    // closed pipe) is no reason to stop serving.
    let said = (|| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "REST_ADDR={addr}")?;
        writeln!(out, "GRPC_ADDR={grpc_bound}")?;
        if let Some(sim) = &sim {
            writeln!(out, "SIM_AUTH_URL={}", sim.auth_url())?;
        }
        out.flush()
    })();
    if let Err(e) = said {
        tracing::warn!(error = %e, "could not write the listening addresses to stdout");
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
