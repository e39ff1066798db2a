//! The `respond` binary: parse arguments, run the library, map the outcome to an exit code.
//! Everything else lives in the library so tests can call it directly.

fn main() -> std::process::ExitCode {
    respond::secret::install_panic_hook();
    let cli = <respond::cli::Cli as clap::Parser>::parse();
    respond::run(cli)
}
