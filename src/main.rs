//! The `svc-lbaas` command line: argument parsing only; the work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use svc_lbaas::cli;
use svc_lbaas::config::Settings;
use svc_lbaas::problem::Problem;

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
        /// JSON list of faults active from the start (see README, "The simulated cloud").
        #[arg(long)]
        faults: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
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
            let code = cli::run_plan(
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
                .map(svc_lbaas::api::auth::Tokens::load)
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
                return ExitCode::from(cli::EXIT_USAGE as u8);
            }
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => match svc_lbaas::tls::server_config(&cert, &key) {
                    Ok(c) => Some(std::sync::Arc::new(c)),
                    Err(e) => return usage_error("Invalid TLS certificate or key", e),
                },
                _ => None,
            };
            let env = |k: &str| std::env::var(k).ok();
            match runtime().and_then(|rt| {
                rt.block_on(cli::run_serve(
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
        Command::Openapi => {
            print!("{}", svc_lbaas::api::openapi::document());
            ExitCode::SUCCESS
        }
        Command::Sim {
            listen,
            provisioning_delay_ms,
            token_ttl_s,
            faults,
        } => {
            let faults = match faults.map(|p| read_faults(&p)).transpose() {
                Ok(f) => f.unwrap_or_default(),
                Err(e) => return usage_error("Invalid fault list", e),
            };
            let config = svc_lbaas::sim::SimConfig {
                provisioning_delay: std::time::Duration::from_millis(provisioning_delay_ms),
                token_ttl: std::time::Duration::from_secs(token_ttl_s),
                faults,
                ..Default::default()
            };
            match runtime().and_then(|rt| rt.block_on(cli::run_sim(listen, config))) {
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
    let p = Problem::new("invalid-config", title, 400, detail);
    eprintln!("{}", p.to_json());
    ExitCode::from(cli::EXIT_USAGE as u8)
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn read_faults(path: &std::path::Path) -> Result<Vec<svc_lbaas::sim::faults::Fault>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
