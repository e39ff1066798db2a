//! `respond evidence verify RUN_DIR`: check a sealed bundle and say, line by line, what does
//! not match (every hash, the journal's chain, each raw response against its sidecar). Exit 0
//! when everything matches, 3 on any mismatch, 2 when RUN_DIR is not a bundle. File names
//! come from the bundle, so every one is made terminal-safe first.

use std::path::Path;

use serde_json::json;

use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::report::sanitize::terminal;
use crate::report::{verify, ReportError};

/// Runs `respond evidence verify`.
pub fn verify_command(run_dir: &Path, printer: &Printer) -> Result<Code, Failure> {
    // A run being written does not match its (old or absent) seal until its writer seals it.
    if let Err(crate::rundir::LockError::Busy { .. }) = crate::rundir::RunLock::shared(run_dir) {
        printer.warn(&format!(
            "a respond process is writing this run right now: verify {} again when it has finished",
            terminal(&run_dir.display().to_string())
        ));
    }
    let rep = match verify(run_dir) {
        Ok(r) => r,
        Err(e @ ReportError::NotABundle { .. }) => {
            return Err(Failure::usage(terminal(&e.to_string())).with_hint(
                "pass the run directory that holds SHA256SUMS, manifest.json and journal.jsonl",
            ))
        }
        Err(e) => return Err(Failure::run(terminal(&e.to_string()))),
    };
    for line in rep.problem_lines() {
        printer.out(&line);
    }
    let dir = terminal(&run_dir.display().to_string());
    if rep.ok {
        printer.out(&format!(
            "OK: {dir}: {} files match SHA256SUMS, manifest.json agrees, the journal chain of {} entries verifies",
            rep.checked, rep.journal_entries
        ));
    } else {
        printer.out(&format!(
            "MISMATCH: {dir}: {} changed, {} missing, {} extra, {} manifest problem(s), {} raw response(s) not matching their sidecar, journal {}",
            rep.changed.len(),
            rep.missing.len(),
            rep.extra.len(),
            rep.manifest_problems.len(),
            rep.raw_problems.len(),
            if rep.journal_error.is_some() {
                "BROKEN"
            } else {
                "ok"
            }
        ));
    }
    printer.summary(&json!({
        "ok": rep.ok,
        "exit_code": if rep.ok { 0 } else { 3 },
        "run_dir": dir,
        "checked": rep.checked,
        "changed": rep.changed,
        "missing": rep.missing,
        "extra": rep.extra,
        "manifest_problems": rep.manifest_problems,
        "journal_entries": rep.journal_entries,
        "journal_error": rep.journal_error,
        "raw_problems": rep.raw_problems,
    }));
    Ok(if rep.ok {
        Code::Ok
    } else {
        Code::EvidenceMismatch
    })
}
