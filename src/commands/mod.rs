//! One function per command: turn raw flags into settings, run, report. The only layer that
//! talks to the user through the [`Printer`]; everything below returns typed results.

pub mod analyze;
pub mod evidence;
pub mod leak;
pub mod mock;
pub mod playbook;
pub mod resume;
pub mod session;

use crate::cli::{Command, EvidenceCommand, MockCommand, PlaybookCommand};
use crate::exit::{Code, Failure};
use crate::output::Printer;

/// Runs one command. `Ok(code)` for outcomes (including "verification failed"), `Err` for
/// failures with a message.
pub async fn dispatch(command: Command, printer: &Printer) -> Result<Code, Failure> {
    match command {
        Command::Leak(args) => leak::leak(args, printer).await,
        Command::Drill(_) => Err(not_yet("drill", "the drill runner (issue 6)")),
        Command::Mock(MockCommand::Serve(args)) => mock::serve(args, printer).await,
        Command::Analyze(args) => analyze::analyze(args, printer).await,
        Command::Resume(args) => resume::resume(args, printer).await,
        Command::Evidence(EvidenceCommand::Verify { run_dir }) => {
            evidence::verify_command(&run_dir, printer)
        }
        Command::Playbook(PlaybookCommand::Check { files }) => playbook::check(&files, printer),
        Command::Playbook(PlaybookCommand::List) => playbook::list(printer),
        Command::Playbook(PlaybookCommand::Show { name }) => playbook::show(&name, printer),
    }
}

fn not_yet(cmd: &str, what: &str) -> Failure {
    Failure::new(Code::RunFailed, format!("`respond {cmd}` is not available in this build: it needs {what}, which has not landed yet"))
}
