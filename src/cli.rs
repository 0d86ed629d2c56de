//! The `svc-lbaas` command line (clap), and `svc-lbaas plan FILE...`:
//! offline translation for CI pipelines. `plan` reads the files, pairs each
//! Service with its Endpoints / EndpointSlices, and prints a JSON array of
//! PlanResponse against empty state. Exit codes: 0 ok, 1 invalid input (a
//! problem on stderr), 2 usage or configuration.

use std::io::{Read as _, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::Settings;
use crate::error::{Kind, Problem};
use crate::input::{ServiceInput, namespace_of, pair};
use crate::k8s;
use crate::model::Observed;
use crate::plan::{self, Capabilities};
use crate::response::PlanResponse;
use crate::translate::{self, Backends};

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID_INPUT: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser)]
#[command(
    name = "svc-lbaas",
    version,
    about = "Kubernetes Services -> OpenStack load balancers"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate Service / Endpoints / EndpointSlice files offline and print the plan as JSON.
    Plan {
        /// Settings file (TOML, kuryr.conf section names); also SVC_LBAAS_CONFIG.
        #[arg(long, env = "SVC_LBAAS_CONFIG")]
        config: Option<PathBuf>,
        /// JSON or YAML files: single objects, Lists, multi-document YAML; `-` reads stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Serve the REST API. With no OpenStack credentials, on the embedded simulated cloud.
    Serve {
        /// Settings file (TOML, kuryr.conf section names); also SVC_LBAAS_CONFIG.
        #[arg(long, env = "SVC_LBAAS_CONFIG")]
        config: Option<PathBuf>,
        /// REST address (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080", env = "SVC_LBAAS_REST_ADDR")]
        rest_addr: std::net::SocketAddr,
        /// gRPC address (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:50051", env = "SVC_LBAAS_GRPC_ADDR")]
        grpc_addr: std::net::SocketAddr,
        /// Bearer tokens and their namespaces (TOML, see README); also SVC_LBAAS_TOKENS_FILE.
        #[arg(long, env = "SVC_LBAAS_TOKENS_FILE")]
        tokens_file: Option<PathBuf>,
        /// Allow listening beyond loopback without a tokens file.
        #[arg(long)]
        insecure_no_auth: bool,
        /// Serve HTTPS with this certificate chain (PEM); also SVC_LBAAS_TLS_CERT.
        #[arg(long, env = "SVC_LBAAS_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM); also SVC_LBAAS_TLS_KEY.
        #[arg(long, env = "SVC_LBAAS_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Watch the cluster (kube-rs) and feed a `svc-lbaas serve`: finalizers, status, Events, a leader Lease.
    Watch(crate::watch::WatchArgs),
    /// Print the OpenAPI document of the REST API (identical to openapi/openapi.json).
    Openapi,
    /// Run the simulated OpenStack (Keystone v3, Octavia v2, Neutron v2.0) alone.
    Sim {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:5000", env = "SVC_LBAAS_SIM_LISTEN")]
        listen: std::net::SocketAddr,
        /// How long a load balancer stays PENDING_* after each write.
        #[arg(long, default_value_t = 1000)]
        provisioning_delay_ms: u64,
        /// Lifetime of a Keystone token.
        #[arg(long, default_value_t = 3600)]
        token_ttl_s: u64,
        /// Floating IPs the public subnet holds (from 172.24.4.10 on).
        #[arg(long, env = "SVC_LBAAS_SIM_PUBLIC_ADDRESSES")]
        public_addresses: Option<u32>,
        /// JSON list of faults active from the start (see README, "The simulated cloud").
        #[arg(long)]
        faults: Option<PathBuf>,
    },
}

/// The command line: parses the arguments, sets up logging, runs the command.
pub fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SVC_LBAAS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match args.command {
        Command::Plan { config, files } => {
            let settings = match Settings::load(config.as_deref(), |k| std::env::var(k).ok()) {
                Ok(s) => s,
                Err(e) => return usage_error("Invalid configuration", e.to_string()),
            };
            let code = run_plan(
                &files,
                &settings,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(code as u8)
        }
        Command::Serve {
            config,
            rest_addr,
            grpc_addr,
            tokens_file,
            insecure_no_auth,
            tls_cert,
            tls_key,
        } => {
            let settings = match Settings::load(config.as_deref(), |k| std::env::var(k).ok()) {
                Ok(s) => s,
                Err(e) => return usage_error("Invalid configuration", e.to_string()),
            };
            let tokens = match tokens_file
                .as_deref()
                .map(crate::api::auth::Tokens::load)
                .transpose()
            {
                Ok(t) => t,
                Err(e) => return usage_error("Invalid tokens file", e),
            };
            // Name the address that is exposed (REST, gRPC or both).
            let exposed: Vec<String> = [("REST", rest_addr), ("gRPC", grpc_addr)]
                .iter()
                .filter(|(_, a)| !a.ip().is_loopback())
                .map(|(what, a)| format!("{a} ({what})"))
                .collect();
            if !exposed.is_empty() && tokens.is_none() && !insecure_no_auth {
                eprintln!(
                    "svc-lbaas serve: refusing to listen on {} without authentication: give --tokens-file, listen on loopback, or pass --insecure-no-auth",
                    exposed.join(" and ")
                );
                return ExitCode::from(EXIT_USAGE as u8);
            }
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => match crate::tls::server_config(&cert, &key) {
                    Ok(c) => Some(std::sync::Arc::new(c)),
                    Err(e) => return usage_error("Invalid TLS certificate or key", e),
                },
                _ => None,
            };
            let env = |k: &str| std::env::var(k).ok();
            match runtime().and_then(|rt| {
                rt.block_on(crate::startup::run_serve(
                    settings, tokens, tls, rest_addr, grpc_addr, &env,
                ))
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("svc-lbaas serve: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Watch(args) => {
            if let Err(e) = args.check() {
                return usage_error("Invalid watch options", e);
            }
            let outcome = runtime()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(crate::watch::run(args)));
            match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("svc-lbaas watch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Openapi => {
            print!("{}", crate::api::openapi::document());
            ExitCode::SUCCESS
        }
        Command::Sim {
            listen,
            provisioning_delay_ms,
            token_ttl_s,
            public_addresses,
            faults,
        } => {
            let faults = match faults.map(|p| read_faults(&p)).transpose() {
                Ok(f) => f.unwrap_or_default(),
                Err(e) => return usage_error("Invalid fault list", e),
            };
            let mut config = crate::sim::SimConfig {
                provisioning_delay: std::time::Duration::from_millis(provisioning_delay_ms),
                token_ttl: std::time::Duration::from_secs(token_ttl_s),
                faults,
                ..Default::default()
            };
            if let Some(n) = public_addresses {
                config.public_addresses = n;
            }
            match runtime().and_then(|rt| rt.block_on(crate::startup::run_sim(listen, config))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("svc-lbaas sim: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A configuration problem: an RFC 9457 problem on stderr, exit 2.
fn usage_error(title: &str, detail: String) -> ExitCode {
    let p = Problem::of(crate::error::Kind::InvalidConfig, detail).titled(title);
    eprintln!("{}", p.to_json());
    ExitCode::from(EXIT_USAGE as u8)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn read_faults(path: &std::path::Path) -> Result<Vec<crate::sim::faults::Fault>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
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
    let translation = translate::translate(settings, &input.service, backends).map_err(|e| {
        // Name the file the field lives in: the Service's, the Endpoints' or a slice's.
        let file = match &e {
            translate::TranslateError::Field { field, .. } if field.starts_with("endpoints.") => {
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

/// Each Gateway in the files planned against empty state, with the
/// routes, grants, Services, EndpointSlices, Namespaces and Secrets the
/// files hold: its design (listeners, L7 policies, pools), the operations
/// and the statuses it would get. A Gateway of a class another controller
/// names is noted and left out.
pub fn plan_gateways_offline(
    objects: &[crate::k8s::Located],
    settings: &Settings,
    notes: &mut Vec<String>,
) -> Result<Vec<serde_json::Value>, Box<Problem>> {
    use crate::gateway::plan::{ObservedGateway, PlanContext, plan as gateway_plan};
    use crate::gateway::translate as gw;
    use serde_json::{Value, json};
    let mut by_field: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    let mut gateways: Vec<(String, Value)> = Vec::new();
    for located in objects {
        let value = match &located.object {
            crate::k8s::Object::ForGateways(v) => (**v).clone(),
            crate::k8s::Object::Service(s) => {
                by_field
                    .entry("services")
                    .or_default()
                    .push(serde_json::to_value(s).unwrap_or_default());
                continue;
            }
            crate::k8s::Object::EndpointSlice(s) => {
                by_field
                    .entry("endpointSlices")
                    .or_default()
                    .push(serde_json::to_value(s).unwrap_or_default());
                continue;
            }
            crate::k8s::Object::Endpoints(_) => continue,
        };
        let field = match value["kind"].as_str().unwrap_or("") {
            "Gateway" => {
                gateways.push((located.origin.clone(), value));
                continue;
            }
            "GatewayClass" => "gatewayClasses",
            "ReferenceGrant" => "referenceGrants",
            "Secret" => "tlsSecrets",
            "Namespace" => "namespaces",
            _ => "routes",
        };
        by_field.entry(field).or_default().push(value);
    }
    if gateways.is_empty() {
        for field in [
            "gatewayClasses",
            "routes",
            "referenceGrants",
            "tlsSecrets",
            "namespaces",
        ] {
            if let Some(v) = by_field.get(field) {
                notes.push(format!(
                    "ignored {} {field}: no Gateway in the files",
                    v.len()
                ));
            }
        }
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (origin, gateway) in gateways {
        let class_name = gateway["spec"]["gatewayClassName"].clone();
        let class = by_field
            .get("gatewayClasses")
            .and_then(|c| c.iter().find(|c| c["metadata"]["name"] == class_name))
            .cloned();
        let mut body = serde_json::Map::new();
        body.insert("gateway".into(), gateway);
        if let Some(c) = class {
            body.insert("gatewayClass".into(), c);
        }
        for field in [
            "routes",
            "referenceGrants",
            "services",
            "endpointSlices",
            "namespaces",
            "tlsSecrets",
        ] {
            body.insert(
                field.into(),
                Value::Array(by_field.get(field).cloned().unwrap_or_default()),
            );
        }
        let input = crate::reconcile::gateway::GatewayInput::from_json(Value::Object(body))
            .map_err(|e| Box::new(Problem::from(&e).with_file(origin.clone())))?;
        let object = format!("Gateway {}/{}", input.namespace(), input.name());
        if let Some(c) = &input.gateway_class
            && c.spec.controller_name != crate::gateway::api::CONTROLLER_NAME
        {
            notes.push(format!(
                "{origin}: {object} is of a class of controller {:?}: left out",
                c.spec.controller_name
            ));
            continue;
        }
        let service = gw::as_service(&input.gateway);
        let translation = translate::translate(settings, &service, None).map_err(|e| {
            Box::new(
                Problem::from(&e)
                    .with_file(origin.clone())
                    .with_object(object.clone()),
            )
        })?;
        let floating_ip = matches!(
            &translation,
            crate::model::Translation::LoadBalancer(d) if !matches!(d.floating_ip, crate::model::FloatingIpIntent::None)
        );
        let now = crate::sim::format_time(std::time::SystemTime::now());
        let design = gw::translate(&input.translation_inputs(
            settings.tenancy.member_cidrs.as_deref(),
            crate::model::IpFamily::IPv4,
            &now,
        ));
        let certificates = design
            .listeners
            .iter()
            .flat_map(|l| &l.certificates)
            .map(|k| {
                (
                    k.clone(),
                    format!(
                        "{}{}/{}",
                        crate::names::PENDING_CERTIFICATE,
                        k.namespace,
                        k.name
                    ),
                )
            })
            .collect();
        let name = gw::load_balancer_name(&input.namespace(), &input.name());
        let read = match &translation {
            crate::model::Translation::LoadBalancer(d) => d.prometheus_listener.as_ref(),
            _ => None,
        };
        let prometheus = gw::prometheus_listener(&name, read, &design).map_err(|e| {
            Box::new(
                Problem::from(&e)
                    .with_file(origin.clone())
                    .with_object(object.clone()),
            )
        })?;
        let ops = gateway_plan(
            &design,
            &ObservedGateway::default(),
            &PlanContext {
                name: &name,
                certificates: &certificates,
                address: None,
                floating_ip,
                prometheus: prometheus.as_ref(),
            },
        );
        out.push(json!({
            "gateway": {"namespace": input.namespace(), "name": input.name(), "status": design.gateway_status},
            "routes": design.routes,
            "loadBalancer": {"name": name, "listeners": design.listeners, "pools": design.pools},
            "operations": ops.iter().map(|o| o.summary()).collect::<Vec<_>>(),
        }));
    }
    Ok(out)
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
                let p = Problem::of(Kind::UnreadableFile, format!("{label}: {e}")).with_file(label);
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
    let gateway_plans = match plan_gateways_offline(&objects, settings, &mut notes) {
        Ok(p) => p,
        Err(p) => return fail(stderr, *p),
    };
    let inputs = match pair(objects, &mut notes) {
        Ok(i) => i,
        Err(p) => return fail(stderr, *p),
    };
    let mut plans = Vec::with_capacity(inputs.len());
    for input in &inputs {
        match plan_offline(input, settings) {
            Ok(p) => plans.push(serde_json::to_value(p).unwrap_or_default()),
            Err(p) => return fail(stderr, *p),
        }
    }
    plans.extend(gateway_plans);
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
            Problem::of(Kind::Internal, e.to_string()).titled("Cannot print the plan"),
        ),
    }
}
