//! `respond`: incident response for leaked exchange API keys.
//!
//! Architecture, outermost first:
//! - [`cli`] parses flags; [`commands`] turns them into settings and runs one command;
//!   [`session`] assembles a run (playbook, exchange connection, engine, sealing); [`exit`]
//!   maps failures to exit codes; [`output`] owns stdout/stderr.
//! - [`playbook`] loads, validates and templates YAML playbooks; [`engine`] runs them as a DAG
//!   with a hash-chained journal of typed events, retries, timeouts, dry runs and resume.
//! - [`steps`] holds the step kinds a playbook can use (exchange, analysis, report, manual,
//!   notify); [`exchange`] is the adapter boundary, exchange-neutral, with one folder per
//!   exchange listed in [`exchange::registry`] (Upbit first); [`mock`] is the mock exchange
//!   used by drills and tests.
//! - [`investigation`] rebuilds a run's data from its raw responses and analyzes it;
//!   [`analysis`] diffs history against bot logs and runs the detection rules; [`report`]
//!   writes the evidence bundle and verifies it; [`rundir`] owns the bundle directory.
//! - [`secret`] keeps credentials out of every byte the tool writes; [`time`] formats times;
//!   [`memory`] sets the allocator up so long runs stay flat in memory.

pub mod analysis;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod digits;
pub mod drill;
pub mod engine;
pub mod exchange;
pub mod exit;
pub mod fsutil;
pub mod incident;
pub mod investigation;
pub mod memory;
pub mod mock;
pub mod output;
pub mod par;
pub mod playbook;
pub mod report;
pub mod rundir;
pub mod secret;
pub mod session;
pub mod steps;
pub mod time;

use std::process::ExitCode;

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    if memory::streams(&cli.command) {
        memory::fix_mmap_threshold();
    }
    let printer = output::Printer::from_args(&cli.global);
    printer.init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(exit::Code::RunFailed.as_u8());
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli.command, &printer)) {
        Ok(code) => code,
        Err(failure) => {
            printer.error(&failure.to_string());
            if printer.json() {
                printer.summary(&serde_json::json!({
                    "ok": false,
                    "exit_code": failure.code as i32,
                    "error": failure.message,
                    "hint": failure.hint,
                }));
            }
            failure.code
        }
    };
    ExitCode::from(code.as_u8())
}
