//! One function per command: turn raw flags into settings, run, report. The only layer that
//! talks to the user through the [`Printer`]; everything below returns typed results.

pub mod mock;

use crate::cli::{Command, EvidenceCommand, MockCommand, PlaybookCommand};
use crate::exit::{Code, Failure};
use crate::output::Printer;

/// Runs one command. `Ok(code)` for outcomes (including "verification failed"), `Err` for
/// failures with a message.
pub async fn dispatch(command: Command, printer: &Printer) -> Result<Code, Failure> {
    match command {
        Command::Leak(_) => Err(not_yet(
            "leak",
            "the Upbit client and containment steps (issue 4)",
        )),
        Command::Drill(_) => Err(not_yet("drill", "the drill runner (issue 6)")),
        Command::Mock(MockCommand::Serve(args)) => mock::serve(args, printer).await,
        Command::Analyze(_) => Err(not_yet("analyze", "investigation (issue 5)")),
        Command::Resume(_) => Err(not_yet("resume", "the engine")),
        Command::Evidence(EvidenceCommand::Verify { .. }) => {
            Err(not_yet("evidence verify", "the evidence bundle (issue 5)"))
        }
        Command::Playbook(
            PlaybookCommand::Check { .. } | PlaybookCommand::List | PlaybookCommand::Show { .. },
        ) => {
            let _ = printer;
            Err(not_yet("playbook", "the playbook engine"))
        }
    }
}

fn not_yet(cmd: &str, what: &str) -> Failure {
    Failure::new(Code::RunFailed, format!("`respond {cmd}` is not available in this build: it needs {what}, which has not landed yet"))
}
