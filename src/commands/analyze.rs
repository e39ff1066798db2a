//! `respond analyze RUN_DIR`: re-run the diff, rules, loss and reports offline from a run's
//! saved raw responses (never calling the exchange), optionally with bot logs found later.
//!
//! In place, it holds the run's lock and first runs the checks of `respond evidence verify`
//! ([`session::check_before_writing`]): a bundle that does not match its seal (or, never
//! sealed, its own journal and raw sidecars) is refused with exit 3 and left byte for byte as
//! it was, so `verify` still fails. `--out DIR` analyzes a copy instead: RUN_DIR is only read
//! (under a shared lock, so no writer changes it meanwhile), its files are copied into a new
//! bundle under DIR, the journal's verified part continues there (a damaged rest is kept
//! verbatim as `source-journal.jsonl`), raw responses that do not match their own sidecars
//! are kept under `unverified/` and left out of the analysis, and a `copy` entry records which
//! files did not match; the report repeats it in its notes. Trusted timestamps (`timestamps/`)
//! are copied only from a source that matches its seal (they vouch for the source as it was).
//! The new bundle verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::AnalyzeArgs;
use crate::engine::events::{self, Event};
use crate::engine::journal::{self, Journal};
use crate::exit::{Code, Failure};
use crate::fsutil;
use crate::investigation::{self, JournalFacts};
use crate::output::Printer;
use crate::report::manifest::{outside_seal, walk, FoundKind, Written};
use crate::rundir::{self, RunDir, RunLock};
use crate::session;

/// Where a copy keeps the raw responses that did not match their own sidecars.
const UNVERIFIED: &str = "unverified";

/// Where the analysis writes, and what it journals before anything else.
struct Target {
    dir: PathBuf,
    _lock: RunLock,
    first_entries: Vec<Event>,
    /// For a copy: the source's name and its mismatches.
    copy_of: Option<(String, Vec<String>)>,
    /// Files copied and hashed as they were written, for the seal.
    written: Written,
}

pub async fn analyze(args: AnalyzeArgs, printer: &Printer) -> Result<Code, Failure> {
    if crate::incident::record::IncidentRecord::is_incident(&args.run_dir) {
        return Box::pin(super::incident::analyze(args, printer)).await;
    }
    let src = args.run_dir.clone();
    let not_a_run =
        |e: String| Failure::usage(format!("{} is not a run directory: {e}", src.display()));
    let facts = JournalFacts::read(&src).map_err(not_a_run)?;
    for p in &args.bot_log.bot_logs {
        if !p.is_file() {
            return Err(Failure::usage(format!(
                "--bot-log {}: no such file",
                p.display()
            )));
        }
    }
    // The thresholds the run used; Excel-style CSVs when asked now or when the run wrote them so.
    let (thresholds, excel_before) =
        investigation::report_settings(&facts).map_err(Failure::usage)?;
    let excel = args.bot_log.excel || excel_before;
    // Read every log before the first is copied into the bundle: a refused log must leave no
    // unsealed copy behind (the bundle would stop verifying), as `leak` checks them up front.
    let name = facts.exchange().ok_or_else(|| {
        Failure::run("the journal does not name the exchange (was this run started without one?)")
    })?;
    let desc = investigation::exchange_named(&name).map_err(Failure::run)?;
    let parsed = investigation::ParsedLogs::new(
        crate::commands::leak::check_bot_logs(desc, &args.bot_log)?,
        args.bot_log.skip_bad_rows,
    );
    let target = match &args.out {
        None => {
            let lock = session::lock_run(&src)?;
            let pf = session::check_before_writing(&src, "analyze")?;
            Target {
                dir: src.clone(),
                _lock: lock,
                first_entries: session::reopen_entry(&pf, "analyze")
                    .map(Event::Reopen)
                    .into_iter()
                    .collect(),
                copy_of: None,
                written: Written::default(),
            }
        }
        Some(out) => copy_target(&src, out)?,
    };
    let dir = target.dir.clone();
    let rundir = RunDir::open(&dir).map_err(|e| not_a_run(e.to_string()))?;
    let (journal, _, _) = Journal::reopen(&dir).map_err(|e| Failure::run(e.to_string()))?;
    for event in &target.first_entries {
        journal
            .record(event)
            .map_err(|e| Failure::run(e.to_string()))?;
    }
    let bot = args.bot_log.clone();
    let (added, before) = investigation::import_bot_logs(
        desc,
        &rundir,
        &bot.bot_logs,
        crate::steps::bot_logs::forced_format(&bot),
        bot.skip_bad_rows,
        true,
        &parsed,
    )
    .map_err(|m| {
        Failure::usage(m).with_hint(
            "fix the bot log, force its format with --bot-log-format, or pass --skip-bad-rows",
        )
    })?;
    // Each bot log's copy was hashed as it was copied, and each CSV as it is written: the
    // seal takes those hashes while the files are unchanged instead of reading them back.
    // Only the logs imported now: the records of earlier imports carry the hash the source
    // recorded, not one of the bytes this bundle holds (the copy hashed those itself).
    let mut written = target.written;
    for r in &added[before..] {
        let abs = fsutil::safe_join(&dir, &r.bundle_path)
            .map_err(|e| Failure::run(format!("{}: {e}", r.bundle_path)))?;
        written
            .add(&r.bundle_path, &abs, r.sha256.clone())
            .map_err(|e| Failure::run(format!("{}: {e}", r.bundle_path)))?;
    }
    let rd = rundir.clone();
    let (inv, files, written) = tokio::task::spawn_blocking(move || {
        investigation::write_reports_into(&rd, &thresholds, excel, parsed, &mut written)
            .map(|(inv, files)| (inv, files, written))
    })
    .await
    .map_err(|e| Failure::run(format!("analysis crashed: {e}")))?
    .map_err(Failure::run)?;
    let summary = investigation::summary(&inv);
    journal
        .record(&Event::Analyze(events::Analyze {
            bot_logs: added.iter().map(|r| r.bundle_path.clone()).collect(),
            files,
            summary: summary.clone(),
        }))
        .map_err(|e| Failure::run(e.to_string()))?;
    drop(journal);
    session::seal_with(&dir, &written)?;
    printer.out(&format!(
        "{} of {} orders flagged as unauthorized ({} for review); {}",
        summary["flagged_count"],
        summary["order_count"],
        summary["review_count"],
        summary["loss_text"].as_str().unwrap_or_default()
    ));
    for note in &inv.result.notes {
        printer.out(&format!("note: {note}"));
    }
    if let Some((name, problems)) = &target.copy_of {
        if problems.is_empty() {
            printer.out(&format!("a copy of {name}, which matched its seal"));
        } else {
            printer.warn(&format!(
                "{name} did not match its seal ({} problem(s)); the new bundle records them in its journal and report",
                problems.len()
            ));
        }
    }
    printer.out(&format!("evidence: {}", dir.display()));
    let mut out = json!({"ok": true, "dir": dir.display().to_string(), "analysis": summary});
    if let Some((name, problems)) = &target.copy_of {
        out["copy_of"] = json!(name);
        out["source_mismatches"] = json!(problems);
    }
    printer.summary(&out);
    Ok(Code::Ok)
}

/// Copies the run in `src` into a new bundle under `out` for analysis (see the module
/// documentation) and returns it, locked.
fn copy_target(src: &Path, out: &Path) -> Result<Target, Failure> {
    // Readers share: no writer can change the source while it is copied.
    let _reading = RunLock::shared(src).map_err(session::lock_failure)?;
    // Not a directory: the preflight's own error, before anything is created.
    if !std::fs::symlink_metadata(src).is_ok_and(|m| m.is_dir()) {
        crate::report::verify::preflight(src).map_err(|e| Failure::usage(e.to_string()))?;
    }
    let src_journal = src.join(journal::FILE_NAME);
    let (kept, kept_bytes) = journal::verified_prefix(&src_journal)
        .map_err(|e| Failure::usage(format!("{}: {e}", src.display())))?;
    if !kept.iter().any(|e| e.event == "run_start") {
        return Err(Failure::usage(format!(
            "{}: its journal is damaged from its first entry, so there is no run to analyze",
            src.display()
        ))
        .with_hint("`respond evidence verify RUN_DIR` shows where the journal breaks"));
    }
    let journal_bytes =
        std::fs::read(&src_journal).map_err(|e| Failure::run(format!("{}: {e}", src.display())))?;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let dst = out.join(format!(
        "{name}-analysis-{}",
        crate::time::now().format("%Y%m%dT%H%M%SZ")
    ));
    RunDir::create(&dst).map_err(|e| {
        Failure::run(format!(
            "cannot create the new bundle {}: {e}",
            dst.display()
        ))
    })?;
    let lock = session::lock_run(&dst)?;
    let io = |what: &Path, e: std::io::Error| {
        Failure::run(format!(
            "copying into {}: {}: {e}",
            dst.display(),
            what.display()
        ))
    };
    let mut copied = 0usize;
    // Every file is read once: copied, and hashed as it is copied. The source is checked
    // against its seal with those hashes (of the bytes copied, under the shared lock), and the
    // seal of the new bundle takes them (of the bytes written, so a later change still shows
    // as a mismatch) instead of reading a million orders' worth of files twice more.
    let mut written = Written::default();
    let mut to_sync = Vec::new();
    let mut rels = Vec::new();
    let mut pairs = Vec::new();
    for f in walk(src).map_err(|e| Failure::run(e.to_string()))? {
        let base = f.rel.rsplit('/').next().unwrap_or_default();
        if outside_seal(&f.rel, &f.kind)
            || f.kind != FoundKind::File
            || f.rel == journal::FILE_NAME
            || rundir::is_temp_name(base)
        {
            continue;
        }
        let to = fsutil::safe_join(&dst, &f.rel).map_err(|e| io(&f.abs, e))?;
        if let Some(parent) = to.parent() {
            fsutil::create_private_dir(parent).map_err(|e| io(parent, e))?;
        }
        rels.push(f.rel);
        pairs.push((f.abs, to));
    }
    // Copied on several threads; the first failure in walk order is the one reported.
    let shas = fsutil::copy_private_many(&pairs);
    for ((rel, (from, to)), sha) in rels.iter().zip(pairs).zip(shas) {
        let sha = sha.map_err(|e| io(&from, e))?;
        written.add(rel, &to, sha).map_err(|e| io(&to, e))?;
        to_sync.push(to);
        copied += 1;
    }
    let pf = crate::report::verify::preflight_known(src, &written.hashes())
        .map_err(|e| Failure::usage(e.to_string()))?;
    // Trusted timestamps vouch for the source as it was stamped: they carry over to the copy
    // only when the source still matches its seal.
    let timestamps_left_out =
        !pf.ok() && std::fs::symlink_metadata(src.join(crate::report::timestamp::DIR)).is_ok();
    if timestamps_left_out {
        let prefix = format!("{}/", crate::report::timestamp::DIR);
        for rel in written.hashes().keys().filter(|r| r.starts_with(&prefix)) {
            written.forget(rel);
            copied -= 1;
        }
        let stamps = dst.join(crate::report::timestamp::DIR);
        to_sync.retain(|p| !p.starts_with(&stamps));
        if std::fs::symlink_metadata(&stamps).is_ok() {
            std::fs::remove_dir_all(&stamps).map_err(|e| io(&stamps, e))?;
        }
    }
    // A raw response that does not match its own sidecar is not evidence the analysis can use
    // (the rebuild would leave it out anyway): it is kept, under unverified/, and named. The
    // copy is checked with the hashes of the bytes copied: what the source held when read.
    let known: BTreeMap<String, String> = written.hashes();
    let aside: BTreeSet<String> = crate::report::verify::raw_mismatches(&dst, &known)
        .map_err(|e| Failure::run(e.to_string()))?
        .into_iter()
        .flat_map(|m| [m.sidecar, m.body])
        .collect();
    for rel in &aside {
        let (Ok(from), Ok(to)) = (
            fsutil::safe_join(&dst, rel),
            fsutil::safe_join(&dst, &format!("{UNVERIFIED}/{rel}")),
        ) else {
            continue;
        };
        if std::fs::symlink_metadata(&from).is_err() {
            continue;
        }
        if let Some(parent) = to.parent() {
            fsutil::create_private_dir(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::rename(&from, &to).map_err(|e| io(&from, e))?;
        if let Some(w) = written.forget(rel) {
            written
                .add(&format!("{UNVERIFIED}/{rel}"), &to, w.sha256)
                .map_err(|e| io(&to, e))?;
        }
        if let Some(p) = to_sync.iter_mut().find(|p| **p == from) {
            *p = to;
        }
    }
    fsutil::sync_files(&to_sync).map_err(|e| io(&dst, e))?;
    fsutil::write_private(&dst.join(journal::FILE_NAME), &journal_bytes[..kept_bytes])
        .map_err(|e| io(&src_journal, e))?;
    let set_aside = journal_bytes.len() - kept_bytes;
    if set_aside > 0 {
        fsutil::copy_private(&src_journal, &dst.join("source-journal.jsonl"))
            .map_err(|e| io(&src_journal, e))?;
    }
    let record = json!({
        "from": name,
        "source_state": pf.state,
        "source_verified": pf.ok(),
        "mismatches": pf.problems,
        "files_copied": copied,
        "journal_entries_kept": kept.len(),
        "journal_bytes_set_aside": set_aside,
        "set_aside_in": (set_aside > 0).then_some("source-journal.jsonl"),
        "unverified": aside.iter().map(|r| format!("{UNVERIFIED}/{r}")).collect::<Vec<_>>(),
        "timestamps_left_out": timestamps_left_out,
    });
    Ok(Target {
        dir: dst,
        _lock: lock,
        first_entries: vec![Event::Copy(record)],
        copy_of: Some((name, pf.problems)),
        written,
    })
}
