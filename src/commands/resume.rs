//! `respond resume RUN_DIR`: continue an interrupted run.
//!
//! Credentials come as for `leak`. When none are given and the run's own saved answers show
//! the old key refused (deleted), the old key is of no use any more: on a terminal the resume
//! asks for a read-only key instead, and without one it says exactly which variables to set.

use crate::cli::ResumeArgs;
use crate::credentials::CredentialError;
use crate::exchange::KeyHistory;
use crate::exit::{Code, Failure};
use crate::investigation::JournalFacts;
use crate::output::Printer;
use crate::session::{self, Connection};

pub async fn resume(args: ResumeArgs, printer: &Printer) -> Result<Code, Failure> {
    if crate::incident::record::IncidentRecord::is_incident(&args.run_dir) {
        return super::incident::resume(args, printer).await;
    }
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
    let conn = connection(&args, exchange, printer)?;
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

/// The resume's credentials; with none given and the old key refused, the read-only key.
fn connection(
    args: &ResumeArgs,
    exchange: String,
    printer: &Printer,
) -> Result<Connection, Failure> {
    let file = args.connect.credentials.as_deref();
    let creds = match crate::credentials::load(&exchange, file, false) {
        Ok(c) => c,
        Err(CredentialError::Missing { .. }) => {
            let refused = crate::exchange::key_history(&exchange, &args.run_dir)
                .filter(|h| h.refused.is_some());
            match refused {
                // The old key cannot help: ask for (or name) the read-only key.
                Some(h) => readonly_only(args, &exchange, &h, printer)?,
                // As for `leak`: the prompt asks for the old key.
                None => return Connection::load(exchange, &args.connect, printer.interactive()),
            }
        }
        Err(e) => return Err(Failure::usage(e.to_string())),
    };
    Ok(Connection {
        exchange,
        api_url: args.connect.api_url.clone(),
        primary: creds.primary,
        readonly: creds.readonly,
        master: creds.master.map(|m| (m, creds.sub_account)),
    })
}

fn readonly_only(
    args: &ResumeArgs,
    exchange: &str,
    old: &KeyHistory,
    printer: &Printer,
) -> Result<crate::credentials::Credentials, Failure> {
    let up = exchange.to_uppercase();
    let dir = args.run_dir.display();
    let name = old
        .refused
        .as_ref()
        .map_or("an error", |(_, n, _)| n.as_str());
    let why = match (&old.accepted, &old.refused) {
        (Some(_), Some((at, _, _))) if old.known_dead() => format!(
            "the old key {} was deleted (refused with {name} at {}), so this resume needs a read-only key",
            old.key,
            crate::engine::journal::ts(*at)
        ),
        (Some(_), Some((at, _, _))) => format!(
            "the old key {} was last refused with {name} at {} with credentials this run never saw accepted (a wrong secret for the key name, which proves no deletion), and no credentials were given to check it, so this resume needs the old key's right credentials or a read-only key",
            old.key,
            crate::engine::journal::ts(*at)
        ),
        _ => format!(
            "the key {} was refused with {name} from its first request (it was never accepted in this run), so this resume needs a read-only key",
            old.key
        ),
    };
    if printer.interactive() {
        printer.important(&format!(
            "{why}: enter a read-only key (view scopes only; input hidden)."
        ));
        let pair = crate::credentials::prompt_readonly(exchange)
            .map_err(|e| Failure::usage(e.to_string()))?;
        return Ok(crate::credentials::Credentials {
            readonly: Some(pair),
            ..Default::default()
        });
    }
    Err(Failure::usage(format!("{why}, and no credentials were given")).with_hint(format!(
        "create a read-only key (view scopes only) and run: {up}_READONLY_ACCESS_KEY=… {up}_READONLY_SECRET_KEY=… respond resume {dir} (or put both variables in a chmod 600 file and pass --credentials FILE)"
    )))
}
