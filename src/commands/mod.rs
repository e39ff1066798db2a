//! One function per command: turn raw flags into settings, run, report. The only layer that
//! talks to the user through the [`Printer`]; everything below returns typed results.

pub mod analyze;
pub mod drill;
pub mod evidence;
pub mod incident;
pub mod leak;
pub mod mock;
pub mod playbook;
pub mod resume;

use crate::cli::{Command, EvidenceCommand, MockCommand, PlaybookCommand};
use crate::exit::{Code, Failure};
use crate::output::Printer;

/// Runs one command. `Ok(code)` for outcomes (including "verification failed"), `Err` for
/// failures with a message.
pub async fn dispatch(command: Command, printer: &Printer) -> Result<Code, Failure> {
    match command {
        Command::Leak(args) => leak::leak(args, printer).await,
        Command::Drill(args) => drill::drill(args, printer).await,
        Command::Mock(MockCommand::Serve(args)) => mock::serve(args, printer).await,
        Command::Analyze(args) => analyze::analyze(args, printer).await,
        Command::Resume(args) => resume::resume(args, printer).await,
        Command::Evidence(EvidenceCommand::Verify { run_dir })
            if crate::incident::record::IncidentRecord::is_incident(&run_dir) =>
        {
            incident::verify(&run_dir, printer)
        }
        Command::Evidence(EvidenceCommand::Verify { run_dir }) => {
            evidence::verify_command(&run_dir, printer)
        }
        Command::Evidence(EvidenceCommand::Timestamp { run_dir, tsa }) => {
            evidence::timestamp_command(&run_dir, &tsa, printer).await
        }
        Command::Playbook(PlaybookCommand::Check { files }) => playbook::check(&files, printer),
        Command::Playbook(PlaybookCommand::List) => playbook::list(printer),
        Command::Playbook(PlaybookCommand::Show { name }) => playbook::show(&name, printer),
    }
}
