//! `respond resume RUN_DIR`: continue an interrupted run.

use crate::cli::ResumeArgs;
use crate::commands::session::{self, Connection};
use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::steps::investigate::JournalFacts;

pub async fn resume(args: ResumeArgs, printer: &Printer) -> Result<Code, Failure> {
    if args.run_dir.is_dir() && !args.run_dir.join("journal.jsonl").exists() {
        // Killed between creating the directory and journaling the start: no step ran.
        return Err(Failure::usage(format!(
            "{} holds no journal: the run was interrupted before its first step, so there is nothing to resume",
            args.run_dir.display()
        ))
        .with_hint("start again with `respond leak` (a new bundle is created)"));
    }
    let facts = JournalFacts::read(&args.run_dir).map_err(|e| {
        Failure::usage(format!(
            "{} is not a run directory: {e}",
            args.run_dir.display()
        ))
    })?;
    let exchange = facts.exchange().ok_or_else(|| {
        Failure::usage(format!(
            "{}: the journal does not name an exchange",
            args.run_dir.display()
        ))
    })?;
    // A bundle that does not match its seal, or a complete one, needs no key to say so.
    if let Some(done) = session::resume_precheck(
        &args.run_dir,
        !args.replay.is_empty(),
        args.playbook.as_deref(),
        printer,
    )? {
        return Ok(session::print_outcome(&done, printer));
    }
    let conn = Connection::load(exchange, &args.connect, printer.interactive())?;
    let opts = crate::engine::ResumeOptions {
        replay: args.replay.clone(),
        accept_changed_playbook: args.accept_changed_playbook,
        secret_inputs: crate::engine::parse_input_flags(&args.inputs)
            .map_err(|e| Failure::usage(e.to_string()))?,
        ..Default::default()
    };
    let report = session::run_resume(
        &args.run_dir,
        &conn,
        args.playbook.as_deref(),
        opts,
        (printer.interactive(), args.yes),
        printer,
    )
    .await?;
    Ok(session::print_outcome(&report, printer))
}
