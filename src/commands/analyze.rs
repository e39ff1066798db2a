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
//!
//! The bot logs are parsed on a thread of their own while the target is checked or copied (a
//! refused log is still the error, and a new bundle copied meanwhile is removed). The copy's
//! `export/` (most of a large bundle's bytes, and no input of the analysis) is copied and
//! hashed on its own thread beside the analysis, from when the rebuild from `raw/` (which
//! takes every core) is done: a gate the rebuild opens then, or on its own error or panic
//! (it opens when dropped). The bot logs are copied into `bot/` beside the rebuild (the
//! disk's work beside the cores'); a refused log is the error once the rebuild ends. The
//! source's check, which
//! needs every hash, is made at first with the hashes the source's seal records for those
//! files; before anything is sealed the copy is finished and checked against them. A file
//! that differs and changes the check's outcome discards the new bundle and analyzes the
//! source again with every file copied first, so the journal, notes and reports are always
//! those of the check with the bytes copied. Until that check, the new bundle holds
//! [`crate::report::verify::COPY_UNFINISHED`] (written before its journal): a copy cut short
//! is never taken for a run, and one whose export files could not be copied is removed.

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
    /// Taken out before the analysis: held until the export copy is finished and any
    /// discarded bundle removed.
    lock: Option<RunLock>,
    first_entries: Vec<Event>,
    /// For a copy: the source's name and its mismatches.
    copy_of: Option<(String, Vec<String>)>,
    /// Files copied and hashed as they were written, for the seal.
    written: Written,
    /// The copy of `export/` still under way.
    export: Option<ExportCopy>,
    /// The bundle, when already opened.
    rundir: Option<RunDir>,
}

/// What a copy thread returns: each file's hash, then whether they were synced to disk.
type Copied = (Vec<std::io::Result<String>>, std::io::Result<()>);

/// The source's `export/` being copied on its own thread, and what the source's check
/// assumed of it.
struct ExportCopy {
    /// The source's shared lock: no writer changes it until its check is final.
    _reading: Option<RunLock>,
    src: PathBuf,
    rels: Vec<String>,
    pairs: Vec<(PathBuf, PathBuf)>,
    /// Each file's hash, in order, and the sync of them all (once all are copied).
    copying: std::thread::JoinHandle<Copied>,
    /// The copy starts when this opens: when the rebuild from `raw/` (parallel, on every
    /// core) is done, or the analysis ends before it. Taken out for the analysis.
    gate: Option<fsutil::Gate>,
    /// The hashes of every other file copied, as copied.
    known: BTreeMap<String, String>,
    /// What the source's seal records for these files: the check took them as their hashes.
    assumed: BTreeMap<String, String>,
    /// The check's outcome with `assumed`.
    state: crate::report::verify::SealState,
    problems: Vec<String>,
}

/// Removes the new bundle `dir` of a copy that is discarded.
fn remove_bundle(dir: &Path) -> Result<(), Failure> {
    std::fs::remove_dir_all(dir)
        .map_err(|e| Failure::run(format!("removing {}: {e}", dir.display())))
}

/// A file that could not be copied into the new bundle `dst`.
fn copy_failure(dst: &Path, what: &Path, e: std::io::Error) -> Failure {
    Failure::run(format!(
        "copying into {}: {}: {e}",
        dst.display(),
        what.display()
    ))
}

impl ExportCopy {
    /// The copy is not wanted (the analysis is refused before it starts): stops it, or waits
    /// for it when it already started. The caller removes the new bundle.
    fn abandon(mut self) {
        if let Some(gate) = self.gate.take() {
            gate.cancel();
        }
        let _ = self.copying.join();
    }

    /// Waits for the copy, records each file's hash in `written` and syncs the files. `true`
    /// when the source's check with the hashes of the bytes copied comes out as it did with
    /// the assumed ones (so everything written since stands). A file that could not be copied
    /// is the error.
    fn finish(self, dst: &Path, written: &mut Written) -> Result<bool, Failure> {
        let io = |what: &Path, e| copy_failure(dst, what, e);
        let (shas, synced) = self.copying.join().unwrap_or_else(|_| {
            let panicked = || std::io::Error::other("a copy thread panicked");
            (
                (0..self.pairs.len()).map(|_| Err(panicked())).collect(),
                Ok(()),
            )
        });
        let mut known = self.known;
        let mut same = true;
        for ((rel, (from, to)), sha) in self.rels.iter().zip(&self.pairs).zip(shas) {
            let sha = sha.map_err(|e| io(from, e))?;
            written.add(rel, to, sha.clone()).map_err(|e| io(to, e))?;
            // A file the check took no hash for (the seal does not list it) is checked again.
            same &= self.assumed.get(rel).is_some_and(|a| *a == sha);
            known.insert(rel.clone(), sha);
        }
        synced.map_err(|e| io(dst, e))?;
        if same {
            return Ok(true);
        }
        let pf = crate::report::verify::preflight_known(&self.src, &known)
            .map_err(|e| Failure::usage(e.to_string()))?;
        Ok(pf.state == self.state && pf.problems == self.problems)
    }
}

pub async fn analyze(args: AnalyzeArgs, printer: &Printer) -> Result<Code, Failure> {
    if crate::incident::record::IncidentRecord::is_incident(&args.run_dir) {
        return Box::pin(super::incident::analyze(args, printer)).await;
    }
    if let Some(code) = analyze_once(&args, printer, true).await? {
        return Ok(code);
    }
    // The source's export did not match what its check assumed: every file copied first.
    analyze_once(&args, printer, false)
        .await?
        .ok_or_else(|| Failure::run("the copy of the source changed while it was analyzed"))
}

/// One analysis. With `overlap`, a copy's `export/` is copied beside the analysis; `None`
/// when the source's check with its bytes differs from the one assumed (the new bundle is
/// removed again: analyze once more without `overlap`).
async fn analyze_once(
    args: &AnalyzeArgs,
    printer: &Printer,
    overlap: bool,
) -> Result<Option<Code>, Failure> {
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
    // The logs are parsed on a thread of their own while the target is checked or copied
    // (one core each); a refused log is still the error, and nothing of the target is left.
    let (logs, target) = std::thread::scope(|s| {
        let parsing = s.spawn(|| crate::commands::leak::check_bot_logs(desc, &args.bot_log));
        let target = match &args.out {
            None => in_place_target(&src),
            Some(out) => copy_target(&src, out, overlap),
        };
        let logs = parsing
            .join()
            .unwrap_or_else(|_| Err(Failure::run("parsing the bot logs crashed")));
        (logs, target)
    });
    let logs = match logs {
        Ok(logs) => logs,
        Err(e) => {
            if let Ok(mut target) = target {
                if let Some(export) = target.export.take() {
                    export.abandon();
                }
                if target.copy_of.is_some() {
                    remove_bundle(&target.dir)?;
                }
            }
            return Err(e);
        }
    };
    let parsed = investigation::ParsedLogs::new(logs, args.bot_log.skip_bad_rows);
    let mut target = target?;
    let mut export = target.export.take();
    let rebuilt = export.as_mut().and_then(|e| e.gate.take());
    // The bundle stays locked until its export copy is finished and any discarded copy removed.
    let _lock = target.lock.take();
    let dir = target.dir.clone();
    let analyzed = analyze_into(args, target, desc, parsed, thresholds, excel, rebuilt).await;
    let (target, mut inv, summary, written) = match export {
        None => analyzed?,
        Some(export) => {
            // A file that could not be copied is the error, as when it is copied first; the
            // new bundle, its copy unfinished, is removed.
            let mut scratch = Written::default();
            let finished = match analyzed {
                Ok((target, inv, summary, mut written)) => export
                    .finish(&dir, &mut written)
                    .map(|held| Ok(held.then_some((target, inv, summary, written)))),
                // An error after a check that no longer holds: the analysis without overlap
                // meets it again, with the journal of the right check.
                Err(e) => {
                    export
                        .finish(&dir, &mut scratch)
                        .map(|held| if held { Err(e) } else { Ok(None) })
                }
            };
            let held = match finished {
                Ok(analysis) => analysis?,
                Err(e) => {
                    remove_bundle(&dir)?;
                    return Err(e);
                }
            };
            match held {
                Some(done) => {
                    let marker = dir.join(crate::report::verify::COPY_UNFINISHED);
                    std::fs::remove_file(&marker)
                        .map_err(|e| Failure::run(format!("removing {}: {e}", marker.display())))?;
                    done
                }
                None => {
                    remove_bundle(&dir)?;
                    return Ok(None);
                }
            }
        }
    };
    // A million orders take a third of a second to free: that is done beside the seal and
    // the summary, never in their way (the process may exit first, which frees them at once).
    let notes = std::mem::take(&mut inv.result.notes);
    crate::memory::drop_beside(inv);
    session::seal_with(&dir, &written)?;
    printer.out(&format!(
        "{} of {} orders flagged as unauthorized ({} for review); {}",
        summary["flagged_count"],
        summary["order_count"],
        summary["review_count"],
        summary["loss_text"].as_str().unwrap_or_default()
    ));
    for note in &notes {
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
    Ok(Some(Code::Ok))
}

/// Journals the target's first entries, imports the bot logs, writes the reports and journals
/// the analysis: everything but the seal.
async fn analyze_into(
    args: &AnalyzeArgs,
    mut target: Target,
    desc: &'static crate::exchange::Descriptor,
    parsed: investigation::ParsedLogs,
    thresholds: crate::analysis::Thresholds,
    excel: bool,
    rebuilt: Option<fsutil::Gate>,
) -> Result<
    (
        Target,
        investigation::Investigation,
        serde_json::Map<String, serde_json::Value>,
        Written,
    ),
    Failure,
> {
    let dir = target.dir.clone();
    let rundir = match target.rundir.take() {
        Some(rundir) => rundir,
        None => RunDir::open(&dir).map_err(|e| {
            Failure::usage(format!(
                "{} is not a run directory: {e}",
                args.run_dir.display()
            ))
        })?,
    };
    let (journal, _, _) = Journal::reopen(&dir).map_err(|e| Failure::run(e.to_string()))?;
    for event in &target.first_entries {
        journal
            .record(event)
            .map_err(|e| Failure::run(e.to_string()))?;
    }
    let bot = args.bot_log.clone();
    let mut written = std::mem::take(&mut target.written);
    let rd = rundir.clone();
    let (added, inv, files, written) = tokio::task::spawn_blocking(move || {
        // The bot logs are copied in (mostly the disk's work) while the history is rebuilt
        // from raw/ (the cores'): neither reads what the other writes.
        let (imported, history) = std::thread::scope(|s| {
            let rebuilding = s.spawn(|| investigation::rebuild(desc, rd.path(), &written, rebuilt));
            let imported = investigation::import_bot_logs(
                desc,
                &rd,
                &bot.bot_logs,
                crate::steps::bot_logs::forced_format(&bot),
                bot.skip_bad_rows,
                true,
                &parsed,
            );
            (imported, rebuilding.join())
        });
        // A refused bot log is the error first, as when it was imported before the rebuild
        // (even if the rebuild crashed meanwhile).
        let (added, before) = imported.map_err(|m| {
            Failure::usage(m).with_hint(
                "fix the bot log, force its format with --bot-log-format, or pass --skip-bad-rows",
            )
        })?;
        let history = history
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map_err(Failure::run)?;
        // Each bot log's copy was hashed as it was copied, and each CSV as it is written: the
        // seal takes those hashes while the files are unchanged instead of reading them back.
        // Only the logs imported now: the records of earlier imports carry the hash the source
        // recorded, not one of the bytes this bundle holds (the copy hashed those itself).
        for r in &added[before..] {
            let abs = fsutil::safe_join(rd.path(), &r.bundle_path)
                .map_err(|e| Failure::run(format!("{}: {e}", r.bundle_path)))?;
            written
                .add(&r.bundle_path, &abs, r.sha256.clone())
                .map_err(|e| Failure::run(format!("{}: {e}", r.bundle_path)))?;
        }
        let (inv, files) = investigation::write_reports_into(
            &rd,
            &thresholds,
            excel,
            parsed,
            &mut written,
            investigation::HistorySource::Rebuilt(Box::new(history)),
        )
        .map_err(Failure::run)?;
        Ok::<_, Failure>((added, inv, files, written))
    })
    .await
    .map_err(|e| Failure::run(format!("analysis crashed: {e}")))??;
    let summary = investigation::summary(&inv);
    journal
        .record(&Event::Analyze(events::Analyze {
            bot_logs: added.iter().map(|r| r.bundle_path.clone()).collect(),
            files,
            summary: summary.clone(),
        }))
        .map_err(|e| Failure::run(e.to_string()))?;
    drop(journal);
    Ok((target, inv, summary, written))
}

/// The run in `src` itself, locked and checked as `respond evidence verify` checks it.
fn in_place_target(src: &Path) -> Result<Target, Failure> {
    let lock = session::lock_run(src)?;
    let mut pf = session::check_before_writing(src, "analyze")?;
    // What the check read stays vouched for while unchanged: the rebuild and the seal take
    // those hashes instead of reading `raw/` and `export/` twice more.
    let written = std::mem::take(&mut pf.read);
    Ok(Target {
        dir: src.to_path_buf(),
        lock: Some(lock),
        first_entries: session::reopen_entry(&pf, "analyze")
            .map(Event::Reopen)
            .into_iter()
            .collect(),
        copy_of: None,
        written,
        export: None,
        rundir: None,
    })
}

/// Copies the run in `src` into a new bundle under `out` for analysis (see the module
/// documentation) and returns it, locked.
/// With `overlap`, `export/` is still being copied when it returns ([`Target::export`]).
fn copy_target(src: &Path, out: &Path, overlap: bool) -> Result<Target, Failure> {
    // Readers share: no writer can change the source while it is copied.
    let reading = RunLock::shared(src).map_err(session::lock_failure)?;
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
    let io = |what: &Path, e| copy_failure(&dst, what, e);
    let mut copied = 0usize;
    // Every file is read once: copied, and hashed as it is copied. The source is checked
    // against its seal with those hashes (of the bytes copied, under the shared lock), and the
    // seal of the new bundle takes them (of the bytes written, so a later change still shows
    // as a mismatch) instead of reading a million orders' worth of files twice more.
    let mut written = Written::default();
    let mut to_sync = Vec::new();
    let mut rels = Vec::new();
    let mut pairs = Vec::new();
    let (mut later_rels, mut later) = (Vec::new(), Vec::new());
    for f in walk(src).map_err(|e| Failure::run(e.to_string()))? {
        let base = f.rel.rsplit('/').next().unwrap_or_default();
        if outside_seal(&f.rel, &f.kind)
            || f.kind != FoundKind::File
            || f.rel == journal::FILE_NAME
            || f.rel == crate::report::verify::COPY_UNFINISHED
            || rundir::is_temp_name(base)
        {
            continue;
        }
        let to = fsutil::safe_join(&dst, &f.rel).map_err(|e| io(&f.abs, e))?;
        if let Some(parent) = to.parent() {
            fsutil::create_private_dir(parent).map_err(|e| io(parent, e))?;
        }
        if overlap && f.rel.starts_with("export/") {
            later_rels.push(f.rel);
            later.push((f.abs, to));
        } else {
            rels.push(f.rel);
            pairs.push((f.abs, to));
        }
    }
    // Copied on several threads; the first failure in walk order is the one reported.
    let shas = fsutil::copy_private_many(&pairs);
    if shas.iter().any(Result::is_err) {
        let later_shas = fsutil::copy_private_many(&later);
        let failed = rels
            .iter()
            .zip(&pairs)
            .zip(shas)
            .chain(later_rels.iter().zip(&later).zip(later_shas))
            .filter_map(|((rel, (from, _)), sha)| sha.err().map(|e| (rel, from, e)))
            .min_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if let Some((_, from, e)) = failed {
            return Err(io(from, e));
        }
        return Err(Failure::run("a copy failed"));
    }
    for ((rel, (_, to)), sha) in rels.iter().zip(pairs).zip(shas) {
        let sha = sha.map_err(|e| io(&to, e))?;
        written.add(rel, &to, sha).map_err(|e| io(&to, e))?;
        to_sync.push(to);
        copied += 1;
    }
    copied += later.len();
    // The source's check needs every hash: while export/ is copied, it takes the ones the
    // source's seal records for its files ([`ExportCopy::finish`] checks them).
    let copied_known = written.hashes();
    let assumed: BTreeMap<String, String> = {
        let sealed = sealed_hashes(src);
        later_rels
            .iter()
            .filter_map(|r| Some((r.clone(), sealed.get(r)?.clone())))
            .collect()
    };
    let mut known = copied_known.clone();
    known.extend(assumed.clone());
    let pf = crate::report::verify::preflight_known(src, &known)
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
    // Until export/ is copied and checked, the bundle is marked unfinished (before its journal
    // exists): left by a crash, nothing takes it for a run.
    if !later.is_empty() {
        let marker = dst.join(crate::report::verify::COPY_UNFINISHED);
        fsutil::write_private(
            &marker,
            b"analyze --out did not finish copying export/ into this bundle: delete it\n",
        )
        .map_err(|e| io(&marker, e))?;
    }
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
    // Opened (which clears leftover temp files) before export/ is copied: from here on, the
    // copy's own temp files are in the bundle until it finishes.
    let rundir = RunDir::open(&dst)
        .map_err(|e| Failure::usage(format!("{} is not a run directory: {e}", src.display())))?;
    // export/ on a thread of its own, beside everything that follows until the seal, from
    // when the gate opens (the rebuild from raw/ is done).
    let (gate, wait) = fsutil::gate();
    let copying = (!later.is_empty()).then(|| {
        let later = later.clone();
        std::thread::spawn(move || {
            if !wait.wait() {
                let cancelled = || Err(std::io::Error::other("the copy was cancelled"));
                return (later.iter().map(|_| cancelled()).collect(), Ok(()));
            }
            let shas = fsutil::copy_private_many_on(&later, 1);
            let to: Vec<PathBuf> = later.into_iter().map(|(_, to)| to).collect();
            let synced = match shas.iter().all(Result::is_ok) {
                true => fsutil::sync_files(&to),
                false => Ok(()),
            };
            (shas, synced)
        })
    });
    let export = copying.map(|copying| ExportCopy {
        _reading: reading,
        src: src.to_path_buf(),
        rels: later_rels,
        pairs: later,
        copying,
        gate: Some(gate),
        known: copied_known,
        assumed,
        state: pf.state,
        problems: pf.problems.clone(),
    });
    Ok(Target {
        dir: dst,
        lock: Some(lock),
        first_entries: vec![Event::Copy(record)],
        copy_of: Some((name, pf.problems)),
        written,
        export,
        rundir: Some(rundir),
    })
}

/// Relative path → SHA-256 of the files the seal of `run_dir` lists (its manifest, else its
/// `SHA256SUMS`); empty when it has no readable seal. Read as the check reads them: a seal
/// file that is not a regular file (a symlink, a FIFO, a device) is never opened.
fn sealed_hashes(run_dir: &Path) -> BTreeMap<String, String> {
    use crate::report::manifest::{parse_sums_line, Manifest, MANIFEST_FILE, SUMS_FILE};
    use crate::report::verify::read_seal_file;
    // The check itself reports what is wrong with them.
    let mut ignored = Vec::new();
    if let Some(m) = read_seal_file(&run_dir.join(MANIFEST_FILE), &mut ignored)
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
    {
        return m.files.into_iter().map(|f| (f.path, f.sha256)).collect();
    }
    read_seal_file(&run_dir.join(SUMS_FILE), &mut ignored)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .filter_map(parse_sums_line)
                .map(|(h, p)| (p, h))
                .collect()
        })
        .unwrap_or_default()
}
