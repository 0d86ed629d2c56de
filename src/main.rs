//! The `svc-lbaas` binary: the command line lives in the library (`cli`).

fn main() -> std::process::ExitCode {
    svc_lbaas::cli::main()
}
