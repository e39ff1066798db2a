//! `respond analyze RUN_DIR`: re-run the diff, rules, loss and reports offline from a run's
//! saved raw responses (never calling the exchange), optionally with bot logs found later.

use serde_json::json;

use crate::cli::AnalyzeArgs;
use crate::commands::session;
use crate::engine::journal::Journal;
use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::rundir::RunDir;
use crate::steps::investigate::{self, JournalFacts};

pub async fn analyze(args: AnalyzeArgs, printer: &Printer) -> Result<Code, Failure> {
    let dir = args.run_dir.clone();
    let not_a_run =
        |e: String| Failure::usage(format!("{} is not a run directory: {e}", dir.display()));
    let facts = JournalFacts::read(&dir).map_err(not_a_run)?;
    for p in &args.bot_log.bot_logs {
        if !p.is_file() {
            return Err(Failure::usage(format!(
                "--bot-log {}: no such file",
                p.display()
            )));
        }
    }
    let _lock = session::lock_run(&dir)?;
    let rundir = RunDir::open(&dir).map_err(|e| not_a_run(e.to_string()))?;
    // The thresholds the run used (journaled with the report step's arguments).
    let thresholds = investigate::thresholds_from(
        facts
            .last_args_of("report.evidence")
            .or_else(|| facts.last_args_of("analysis.flag"))
            .and_then(|a| a.get("thresholds")),
    )
    .map_err(Failure::usage)?;
    let excel = args.bot_log.excel;
    let (journal, _, _) = Journal::reopen(&dir).map_err(|e| Failure::run(e.to_string()))?;
    // Read every log before the first is copied into the bundle: a refused log must leave no
    // unsealed copy behind (the bundle would stop verifying), as `leak` checks them up front.
    crate::commands::leak::check_bot_logs(&args.bot_log)?;
    let bot = args.bot_log.clone();
    let added = investigate::import_bot_logs(
        &rundir,
        &bot.bot_logs,
        investigate::forced_format(&bot),
        bot.skip_bad_rows,
        true,
    )
    .map_err(|m| {
        Failure::usage(m).with_hint(
            "fix the bot log, force its format with --bot-log-format, or pass --skip-bad-rows",
        )
    })?;
    let rd = rundir.clone();
    let (inv, files) =
        tokio::task::spawn_blocking(move || investigate::write_reports(&rd, &thresholds, excel))
            .await
            .map_err(|e| Failure::run(format!("analysis crashed: {e}")))?
            .map_err(Failure::run)?;
    let summary = investigate::summary(&inv);
    journal
        .append(
            "analyze",
            json!({
                "bot_logs": added.iter().map(|r| r.bundle_path.clone()).collect::<Vec<_>>(),
                "files": files,
                "summary": summary,
            }),
        )
        .map_err(|e| Failure::run(e.to_string()))?;
    drop(journal);
    session::seal(&dir, printer);
    printer.out(&format!(
        "{} of {} orders flagged as unauthorized ({} for review); estimated overpayment {} {}",
        summary["flagged_count"],
        summary["order_count"],
        summary["review_count"],
        summary["overpayment"].as_str().unwrap_or("0"),
        summary["quote_currency"].as_str().unwrap_or("")
    ));
    for note in &inv.result.notes {
        printer.out(&format!("note: {note}"));
    }
    printer.out(&format!("evidence: {}", dir.display()));
    printer.summary(&json!({"ok": true, "dir": dir.display().to_string(), "analysis": summary}));
    Ok(Code::Ok)
}
