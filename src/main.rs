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
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Plan { config, files } => {
            let settings = match Settings::load(config.as_deref(), |k| std::env::var(k).ok()) {
                Ok(s) => s,
                Err(e) => {
                    let p = Problem::new(
                        "invalid-config",
                        "Invalid configuration",
                        400,
                        e.to_string(),
                    );
                    eprintln!("{}", p.to_json());
                    return ExitCode::from(cli::EXIT_USAGE as u8);
                }
            };
            let code = cli::run_plan(
                &files,
                &settings,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(code as u8)
        }
    }
}
