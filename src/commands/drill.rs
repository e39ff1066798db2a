//! `respond drill`: rehearse a leak end to end against the built-in mock, with a score.

use crate::cli::DrillArgs;
use crate::drill::run::{self, DrillOptions};
use crate::exit::{Code, Failure};
use crate::output::Printer;

/// `--min-recall` and `--min-precision` are fractions.
pub(crate) fn check_thresholds(args: &DrillArgs) -> Result<(), Failure> {
    for (name, v) in [
        ("--min-recall", args.min_recall),
        ("--min-precision", args.min_precision),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(Failure::usage(format!(
                "{name} must be between 0 and 1, got {v}"
            )));
        }
    }
    Ok(())
}

pub async fn drill(args: DrillArgs, printer: &Printer) -> Result<Code, Failure> {
    check_thresholds(&args)?;
    let exchange = match args.exchange.as_slice() {
        [one] => one.as_str().to_string(),
        _ => return super::incident::drill(args, printer).await,
    };
    let opts = DrillOptions {
        exchange,
        scenario: args.scenario.clone(),
        playbook: args.playbook.clone(),
        out: args.out.clone(),
        seed: args.seed,
        reaction_secs: args.reaction,
        min_recall: args.min_recall,
        min_precision: args.min_precision,
        with_bot_log: !args.no_bot_log,
        excel: args.excel,
    };
    let outcome = run::run(&opts, printer).await?;
    let verified = crate::report::verify(&outcome.dir)
        .map(|r| r.ok)
        .unwrap_or(false);
    let card = &outcome.scorecard;
    if printer.json() {
        printer.summary(&serde_json::json!({
            "ok": card.passed && outcome.report.ok && verified,
            "dir": outcome.dir.display().to_string(),
            "scorecard": card,
            "run_ok": outcome.report.ok,
        }));
    } else {
        printer.out(&format!(
            "\nDrill scorecard\n{}",
            crate::drill::scorecard_table(card)
        ));
        printer.out(&format!("evidence:  {}", outcome.dir.display()));
        printer.out(&format!(
            "report:    {}/drill_report.md",
            outcome.dir.display()
        ));
        printer.out(&format!("verify:    {}", verify_command(&outcome.dir)));
    }
    if !verified {
        // The summary above already says ok: false; an Err would print a second one.
        printer.error(&format!(
            "the drill's evidence bundle does not verify: {}",
            verify_command(&outcome.dir)
        ));
        return Ok(Code::EvidenceMismatch);
    }
    if !outcome.report.ok {
        printer.warn("the playbook run had failed steps (see the step table above)");
        return Ok(Code::RunFailed);
    }
    Ok(if card.passed {
        Code::Ok
    } else {
        Code::DrillBelowThreshold
    })
}

/// `respond evidence verify DIR`, quoted for the shell.
fn verify_command(dir: &std::path::Path) -> String {
    crate::output::respond_command(["evidence", "verify", &dir.display().to_string()])
}
