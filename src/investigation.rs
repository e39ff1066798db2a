//! The investigation pipeline, shared by the `analysis.*` and `report.*` steps, `respond
//! analyze` and the drill's scoring.
//!
//! An investigation never trusts derived state: every pass rebuilds the exchange data from the
//! run's saved raw responses (with the decoder of the exchange named in the journal, through
//! the registry), re-parses the bot logs from their copies in `bot/`, and reads the run's facts
//! (window, revocation, server time, step outcomes) from the journal. That is what makes
//! `respond analyze` reproduce the same bundle offline, byte for byte.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::analysis::{self, AnalysisInput, AnalysisResult, BotLog, BotLogFormat, Thresholds};
use crate::engine::journal::{self, Entry};
use crate::exchange::{registry, Descriptor, ServerTime, Window};
use crate::report::{self, Revocation, RunFacts};
use crate::rundir::RunDir;

/// The list of imported bot logs, at the bundle's root.
pub const BOT_LOGS_FILE: &str = "bot_logs.json";

/// One imported bot log, as recorded in [`BOT_LOGS_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotLogRecord {
    /// The copy inside the bundle (`bot/<n>-<name>`).
    pub bundle_path: String,
    /// The file name the user gave (no directories: they may name the user's home).
    pub original_name: String,
    pub format: BotLogFormat,
    /// SHA-256 of the original bytes, taken before parsing.
    pub sha256: String,
    pub skip_bad_rows: bool,
    pub entries: usize,
    pub skipped_rows: usize,
}

pub(crate) fn read_records(run_dir: &Path) -> Result<Vec<BotLogRecord>, String> {
    let p = run_dir.join(BOT_LOGS_FILE);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// Bot logs this process already parsed, each with the row policy it was parsed with
/// (`skip_bad_rows`): `respond analyze` reads every log before it writes anything (a bad log
/// must leave no copy behind), and importing and analyzing the very same bytes again reuses
/// that parse instead of reading a million rows three times. A log is reused only for bytes
/// with its SHA-256, parsed the same way; anything else is parsed again. The copies
/// [`import_bot_logs`] made of such bytes (hashed as they were copied) are remembered, so the
/// analysis takes their parse without reading and hashing them once more, while each copy is
/// still the file written (same inode, size and modification time).
#[derive(Default)]
pub struct ParsedLogs(
    Vec<(BotLog, bool)>,
    std::sync::Mutex<crate::report::manifest::Written>,
);

impl ParsedLogs {
    /// Logs parsed with row policy `skip_bad_rows`.
    pub fn new(logs: Vec<BotLog>, skip_bad_rows: bool) -> Self {
        ParsedLogs(
            logs.into_iter().map(|l| (l, skip_bad_rows)).collect(),
            Default::default(),
        )
    }

    /// Remembers that this process copied bytes with `sha256` to `bundle_path` (at `abs`).
    fn copied(&self, bundle_path: &str, abs: &Path, sha256: &str) {
        let mut copies = self.1.lock().unwrap_or_else(|e| e.into_inner());
        // A copy that cannot be stamped is simply read again.
        if copies.add(bundle_path, abs, sha256.to_string()).is_err() {
            copies.forget(bundle_path);
        }
    }

    /// The SHA-256 of the bytes this process copied to `bundle_path`, if it did and `abs` is
    /// still the file it wrote.
    fn copy_at(&self, bundle_path: &str, abs: &Path) -> Option<String> {
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sha256_of(bundle_path, abs)
    }

    fn position(
        &self,
        sha256: &str,
        format: Option<BotLogFormat>,
        skip_bad_rows: bool,
    ) -> Option<usize> {
        self.0.iter().position(|(l, skip)| {
            l.sha256 == sha256
                && format.map_or(true, |f| f == l.format)
                && *skip == skip_bad_rows
                // A database is read from its file, not its bytes: always read again.
                && l.format != BotLogFormat::Freqtrade
        })
    }

    /// The log parsed from bytes with `sha256` (in `format` when given) the same way, as log
    /// number `index` of the bundle.
    fn take(
        &mut self,
        sha256: &str,
        format: Option<BotLogFormat>,
        skip_bad_rows: bool,
        index: usize,
    ) -> Option<BotLog> {
        let at = self.position(sha256, format, skip_bad_rows)?;
        let (mut log, _) = self.0.swap_remove(at);
        for e in &mut log.entries {
            e.log = index;
        }
        Some(log)
    }
}

/// Copies each bot log into the bundle (hashed before parsing), parses it, and records it in
/// [`BOT_LOGS_FILE`]: appended to the logs already there (`append`, for `respond analyze`), or
/// replacing them (the run's own import, which may be repeated). A malformed row fails with
/// `file:line` unless `skip_bad_rows`. A log whose copy has the bytes of one in `parsed` is
/// not parsed again. Returns every record and how many of them were there before this call
/// (the records after those are the logs imported now).
pub fn import_bot_logs(
    exchange: &'static Descriptor,
    rundir: &RunDir,
    paths: &[PathBuf],
    forced: Option<BotLogFormat>,
    skip_bad_rows: bool,
    append: bool,
    parsed: &ParsedLogs,
) -> Result<(Vec<BotLogRecord>, usize), String> {
    let mut records = if append {
        read_records(rundir.path())?
    } else {
        Vec::new()
    };
    let before = records.len();
    for path in paths {
        let index = records.len();
        let (bundle_path, sha256) =
            analysis::import::copy_in(path, index, rundir).map_err(|e| e.to_string())?;
        let record = match parsed.position(&sha256, forced, skip_bad_rows) {
            Some(at) => {
                if let Ok(abs) = crate::fsutil::safe_join(rundir.path(), &bundle_path) {
                    parsed.copied(&bundle_path, &abs, &sha256);
                }
                let mut log = BotLogRecord::of(path, &parsed.0[at].0, skip_bad_rows);
                log.bundle_path = bundle_path;
                log
            }
            None => {
                let log = analysis::import::parse_copy(
                    exchange,
                    path,
                    &bundle_path,
                    sha256,
                    forced,
                    skip_bad_rows,
                    index,
                    rundir,
                )
                .map_err(|e| e.to_string())?;
                record_of(path, &log, skip_bad_rows)
            }
        };
        records.push(record);
    }
    let json = serde_json::to_vec_pretty(&records).map_err(|e| e.to_string())?;
    rundir
        .write(BOT_LOGS_FILE, &json)
        .map_err(|e| e.to_string())?;
    Ok((records, before))
}

/// A bot log the run could not import: the run goes on without it (containment does not wait
/// for a bot log), and the problem is journaled (as the import step's `rejected` output),
/// printed, and noted in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedBotLog {
    /// The file name the user gave (no directories).
    pub original_name: String,
    /// Where its unmodified copy is kept (`bot/rejected-<n>-<name>`), when it could be read.
    pub bundle_copy: Option<String>,
    /// What is wrong, as `name:line: message`.
    pub error: String,
    /// The path as given on the command line (printed, never stored: it may name a home).
    #[serde(skip)]
    pub given: PathBuf,
}

/// The run's own import (`analysis.import_bot_logs`): like [`import_bot_logs`], except that a
/// log that cannot be imported does not stop the others or the run. Its copy is moved aside to
/// `bot/rejected-<n>-<name>` (kept as evidence, out of the way of a corrected log added later
/// by `respond analyze`), and it is returned as rejected.
pub fn import_run_bot_logs(
    exchange: &'static Descriptor,
    rundir: &RunDir,
    paths: &[PathBuf],
    forced: Option<BotLogFormat>,
    skip_bad_rows: bool,
) -> Result<(Vec<BotLogRecord>, Vec<RejectedBotLog>), String> {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for path in paths {
        let index = records.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        match analysis::import::import(exchange, path, forced, skip_bad_rows, index, rundir) {
            Ok(log) => records.push(record_of(path, &log, skip_bad_rows)),
            Err(e) => {
                // The message starts with the path as given; the bundle keeps only its name.
                let full = e.to_string();
                let shown = path.display().to_string();
                let error = match full.strip_prefix(&shown) {
                    Some(rest) => format!("{name}{rest}"),
                    None => full,
                };
                let component = crate::fsutil::file_component(&name);
                let copy = format!("bot/{}-{component}", index + 1);
                let kept = format!("bot/rejected-{}-{component}", rejected.len() + 1);
                let bundle_copy = match (rundir.join(&copy), rundir.join(&kept)) {
                    (Ok(from), Ok(to)) if from.is_file() => {
                        std::fs::rename(&from, &to).map_err(|e| format!("{kept}: {e}"))?;
                        Some(kept)
                    }
                    _ => None,
                };
                rejected.push(RejectedBotLog {
                    original_name: name,
                    bundle_copy,
                    error,
                    given: path.clone(),
                });
            }
        }
    }
    let json = serde_json::to_vec_pretty(&records).map_err(|e| e.to_string())?;
    rundir
        .write(BOT_LOGS_FILE, &json)
        .map_err(|e| e.to_string())?;
    Ok((records, rejected))
}

fn record_of(path: &Path, log: &BotLog, skip_bad_rows: bool) -> BotLogRecord {
    BotLogRecord::of(path, log, skip_bad_rows)
}

impl BotLogRecord {
    fn of(path: &Path, log: &BotLog, skip_bad_rows: bool) -> BotLogRecord {
        BotLogRecord {
            bundle_path: log.bundle_path.clone(),
            original_name: path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            format: log.format,
            sha256: log.sha256.clone(),
            skip_bad_rows,
            entries: log.entries.len(),
            skipped_rows: log.skipped.len(),
        }
    }
}

/// Parses every bot log recorded in the bundle from its copy, with the format and row policy
/// used at import, in the markets of `exchange`.
pub fn load_bot_logs(exchange: &'static Descriptor, run_dir: &Path) -> Result<Vec<BotLog>, String> {
    load_bot_logs_with(exchange, run_dir, &mut ParsedLogs::default())
}

/// [`load_bot_logs`], taking a log from `parsed` instead of parsing its copy when the copy
/// holds the very bytes it was parsed from.
fn load_bot_logs_with(
    exchange: &'static Descriptor,
    run_dir: &Path,
    parsed: &mut ParsedLogs,
) -> Result<Vec<BotLog>, String> {
    let mut out = Vec::new();
    for (i, rec) in read_records(run_dir)?.into_iter().enumerate() {
        let copy =
            crate::fsutil::safe_join(run_dir, &rec.bundle_path).map_err(|e| e.to_string())?;
        // A copy this process made and hashed: its parse is taken without reading it again.
        let copied = parsed.copy_at(&rec.bundle_path, &copy);
        if let Some(mut log) =
            copied.and_then(|sha| parsed.take(&sha, Some(rec.format), rec.skip_bad_rows, i))
        {
            log.bundle_path = rec.bundle_path.clone();
            out.push(log);
            continue;
        }
        let bytes = std::fs::read(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
        if let Some(mut log) = parsed.take(
            &crate::fsutil::sha256_hex(&bytes),
            Some(rec.format),
            rec.skip_bad_rows,
            i,
        ) {
            log.bundle_path = rec.bundle_path.clone();
            out.push(log);
            continue;
        }
        let mut log = analysis::import::parse_bytes(
            exchange,
            Path::new(&rec.bundle_path),
            &copy,
            &bytes,
            Some(rec.format),
            rec.skip_bad_rows,
            i,
        )
        .map_err(|e| e.to_string())?;
        log.bundle_path = rec.bundle_path.clone();
        out.push(log);
    }
    Ok(out)
}

/// Reads the journal's complete entries; tolerates an entry being written right now (a step
/// reading the journal of its own run) by ignoring an unterminated last line.
pub fn read_journal(run_dir: &Path) -> Result<Vec<Entry>, String> {
    let p = run_dir.join(journal::FILE_NAME);
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut out = Vec::new();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        let e: Entry = serde_json::from_slice(&line[..line.len() - 1])
            .map_err(|e| format!("{}: {e}", p.display()))?;
        out.push(e);
    }
    Ok(out)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The facts of a run as its journal tells them.
pub struct JournalFacts {
    entries: Vec<Entry>,
}

impl JournalFacts {
    pub fn read(run_dir: &Path) -> Result<Self, String> {
        Ok(JournalFacts {
            entries: read_journal(run_dir)?,
        })
    }

    fn run_start(&self) -> Option<&Value> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.event == "run_start")
            .map(|e| &e.data)
    }

    /// The exchange that recorded the run (its registry name), from the capabilities journaled
    /// at run start.
    pub fn exchange(&self) -> Option<String> {
        self.run_start()?
            .get("exchange")?
            .get("name")?
            .as_str()
            .map(str::to_string)
    }

    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.entries
            .iter()
            .find(|e| e.event == "run_start")
            .and_then(|e| parse_ts(&e.ts))
    }

    /// The latest time the engine stamped (a run's start or end, a resume, a step event).
    /// Later entries of other commands (`reopen`, `analyze`, `copy`, `drill_score`) do not
    /// move it, so re-analysis reproduces the same reports.
    pub fn last_ts(&self) -> Option<DateTime<Utc>> {
        self.entries
            .iter()
            .rev()
            .find(|e| {
                e.event.starts_with("step_")
                    || matches!(e.event.as_str(), "run_start" | "resume" | "run_end")
            })
            .and_then(|e| parse_ts(&e.ts))
    }

    /// The facts as the evidence report states them: the journal up to the last start of the
    /// report step (`report.evidence`), the moment the report was written; all of it when no
    /// report step ever started. What the journal records after that (the end of the run,
    /// `respond analyze`) is not in the report, so re-analysing the same data reproduces the
    /// run's own report byte for byte.
    pub fn as_of_report(mut self) -> JournalFacts {
        if let Some(i) = self.entries.iter().rposition(|e| {
            e.event == "step_start"
                && e.data.get("uses").and_then(Value::as_str) == Some("report.evidence")
        }) {
            self.entries.truncate(i + 1);
        }
        self
    }

    /// Where the evidence came from, when it is not where it was gathered: for a bundle that
    /// is a copy of another (`respond analyze RUN_DIR --out DIR`), which files of the original
    /// did not match its seal or its own records.
    pub fn provenance_notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.entries.iter().filter(|e| e.event == "copy") {
            let from = e.data["from"].as_str().unwrap_or("another bundle");
            let problems: Vec<&str> = e.data["mismatches"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if problems.is_empty() {
                out.push(format!(
                    "this bundle is a copy of {from}, which matched its seal when it was copied"
                ));
            } else {
                let aside = e.data["unverified"].as_array().map_or(0, Vec::len);
                out.push(format!(
                    "this bundle is a copy of {from}, which did NOT match its seal or its own records when it was copied ({} problem(s)); {}: {}",
                    problems.len(),
                    if aside > 0 {
                        "raw responses that did not match their own sidecars are kept under unverified/ and left out of the analysis; the other files were used as they were"
                    } else {
                        "the files were used as they were"
                    },
                    problems
                        .iter()
                        .map(|p| match p.split_once(char::is_whitespace) {
                            Some((kind, rest)) => format!("{kind}: {}", rest.trim_start()),
                            None => p.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        out
    }

    /// `(ended at, step_end data)` of every step of kind `uses` that ended, in journal order.
    pub fn ends_of(&self, uses: &str) -> Vec<(DateTime<Utc>, &Value)> {
        self.entries
            .iter()
            .filter(|e| {
                e.event == "step_end" && e.data.get("uses").and_then(Value::as_str) == Some(uses)
            })
            .filter_map(|e| Some((parse_ts(&e.ts)?, &e.data)))
            .collect()
    }

    /// The bot logs the run's last import could not use (see [`RejectedBotLog`]).
    pub fn rejected_bot_logs(&self) -> Vec<RejectedBotLog> {
        self.ends_of("analysis.import_bot_logs")
            .last()
            .and_then(|(_, d)| d.get("outputs")?.get("rejected").cloned())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    /// Resolved arguments of the last start of a step of kind `uses`.
    pub fn last_args_of(&self, uses: &str) -> Option<&Map<String, Value>> {
        self.entries
            .iter()
            .rev()
            .find(|e| {
                e.event == "step_start" && e.data.get("uses").and_then(Value::as_str) == Some(uses)
            })
            .and_then(|e| e.data.get("args")?.as_object())
    }

    /// The investigation window the last successful export used.
    pub fn export_window(&self) -> Option<Window> {
        let (_, end) = self
            .ends_of("exchange.export_history")
            .into_iter()
            .rev()
            .find(|(_, d)| d.get("status").and_then(Value::as_str) == Some("ok"))?;
        let out = end.get("outputs")?;
        let from = parse_ts(out.get("window_from")?.as_str()?)?;
        let to = parse_ts(out.get("window_to")?.as_str()?)?;
        Some(Window { from, to })
    }

    /// What the last revocation check found.
    pub fn revocation(&self) -> Revocation {
        match self.ends_of("exchange.verify_key_revoked").last() {
            None => Revocation::NotChecked,
            Some((at, d)) => {
                let out = d.get("outputs");
                let revoked =
                    out.and_then(|o| o.get("revoked")).and_then(Value::as_bool) == Some(true);
                let observed = out
                    .and_then(|o| o.get("observed_at"))
                    .and_then(Value::as_str)
                    .and_then(parse_ts);
                match (revoked, observed) {
                    (true, Some(observed_at)) => {
                        let polls = out
                            .and_then(|o| o.get("polls"))
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        let name = out
                            .and_then(|o| o.get("error_name"))
                            .and_then(Value::as_str);
                        let accepted_at = out
                            .and_then(|o| o.get("accepted_at"))
                            .and_then(Value::as_str)
                            .and_then(parse_ts);
                        // The run's own API call deleted it: the revoke step's `mode` and
                        // `confirmed_by` are both `api`; when that step ended.
                        let deleted_by_api_at = self
                            .ends_of("exchange.revoke_key")
                            .into_iter()
                            .find(|(_, d)| {
                                let o = |k: &str| {
                                    d.get("outputs")
                                        .and_then(|o| o.get(k))
                                        .and_then(Value::as_str)
                                };
                                o("mode") == Some("api") && o("confirmed_by") == Some("api")
                            })
                            .map(|(t, _)| t);
                        Revocation::Revoked {
                            deleted_by_api_at,
                            observed_at,
                            evidence: format!(
                                "the old key{} was refused with {} (poll {polls})",
                                accepted_at
                                    .map(|a| format!(", accepted at {}", crate::time::ts(a)))
                                    .unwrap_or_default(),
                                name.unwrap_or("an authentication error")
                            ),
                            refused_with: name.map(str::to_string),
                            accepted_at,
                        }
                    }
                    _ => Revocation::StillValid { checked_at: *at },
                }
            }
        }
    }

    /// The incident as the user described it (playbook inputs `account`, `discovered_at`,
    /// `leak_vector`, `contact`, `bot_ips`), from the run's start.
    pub fn incident(&self) -> report::facts::IncidentInputs {
        let inputs = self.run_start().and_then(|s| s.get("inputs"));
        let text = |name: &str| {
            inputs
                .and_then(|i| i.get(name))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let bot_ips = match inputs.and_then(|i| i.get("bot_ips")) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => s
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        report::facts::IncidentInputs {
            account: text("account"),
            discovered_at: text("discovered_at"),
            leak_vector: text("leak_vector"),
            contact: text("contact"),
            bot_ips,
        }
    }

    /// Open orders cancelled by the run: the last end of each cancel step, added up.
    pub fn cancelled_orders(&self) -> usize {
        self.last_end_per_step("exchange.cancel_open_orders")
            .iter()
            .filter_map(|(_, d)| d.get("outputs")?.get("cancelled_count")?.as_u64())
            .sum::<u64>() as usize
    }

    /// The last end of every step of kind `uses`, one per step id, in journal order.
    fn last_end_per_step(&self, uses: &str) -> Vec<(DateTime<Utc>, &Value)> {
        let mut out: Vec<(DateTime<Utc>, &Value)> = Vec::new();
        for (at, d) in self.ends_of(uses) {
            let id = d.get("step").and_then(Value::as_str);
            out.retain(|(_, e)| e.get("step").and_then(Value::as_str) != id);
            out.push((at, d));
        }
        out
    }

    /// Scopes of the exchange `desc` that the run's own actions proved the key held: a cancel
    /// of open orders that succeeded proves the trading scopes, one of pending withdrawals the
    /// withdrawal scopes.
    pub fn proven_scopes(&self, desc: &Descriptor) -> Vec<report::facts::ProvenScope> {
        use crate::exchange::ScopeClass;
        let mut out = Vec::new();
        for (uses, class, what) in [
            (
                "exchange.cancel_open_orders",
                ScopeClass::Trade,
                "open orders",
            ),
            (
                "exchange.cancel_pending_withdrawals",
                ScopeClass::Withdraw,
                "pending withdrawals",
            ),
        ] {
            let done: Vec<(DateTime<Utc>, u64)> = self
                .last_end_per_step(uses)
                .into_iter()
                .filter_map(|(at, d)| {
                    let n = d.get("outputs")?.get("cancelled_count")?.as_u64()?;
                    (n > 0).then_some((at, n))
                })
                .collect();
            let Some(&(at, _)) = done.first() else {
                continue;
            };
            let n: u64 = done.iter().map(|(_, n)| n).sum();
            for scope in desc.scopes.iter().filter(|s| s.class == class) {
                out.push(report::facts::ProvenScope {
                    scope: scope.name.to_string(),
                    evidence: format!(
                        "this run cancelled {n} {what} with the key (the exchange accepted the cancels, finished at {})",
                        crate::time::ts(at)
                    ),
                    at,
                    cancelled: n,
                });
            }
        }
        out
    }

    /// Steps of the run's playbook (the copy in the bundle) that never started, leaving out
    /// the report step and everything that comes after it.
    pub fn not_started(&self, run_dir: &Path) -> Vec<String> {
        #[derive(Deserialize)]
        struct Pb {
            #[serde(default)]
            steps: Vec<PbStep>,
        }
        #[derive(Deserialize)]
        struct PbStep {
            id: String,
            uses: String,
            #[serde(default)]
            needs: Vec<String>,
        }
        let Ok(text) = std::fs::read_to_string(run_dir.join("playbook.yaml")) else {
            return Vec::new();
        };
        let Ok(pb) = serde_yaml::from_str::<Pb>(&text) else {
            return Vec::new();
        };
        let started: std::collections::BTreeSet<String> =
            self.steps().into_iter().map(|s| s.id).collect();
        // The report step and what needs it, transitively.
        let mut after: std::collections::BTreeSet<&str> = pb
            .steps
            .iter()
            .filter(|s| s.uses == "report.evidence")
            .map(|s| s.id.as_str())
            .collect();
        loop {
            let more: Vec<&str> = pb
                .steps
                .iter()
                .filter(|s| !after.contains(s.id.as_str()))
                .filter(|s| s.needs.iter().any(|n| after.contains(n.as_str())))
                .map(|s| s.id.as_str())
                .collect();
            if more.is_empty() {
                break;
            }
            after.extend(more);
        }
        pb.steps
            .iter()
            .filter(|s| !after.contains(s.id.as_str()) && !started.contains(&s.id))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Server time against the local clock, from the first (`first = true`) or last snapshot.
    pub fn server_time(&self, first: bool) -> Option<ServerTime> {
        let ends = self.ends_of("exchange.snapshot");
        let pick = if first { ends.first() } else { ends.last() }?;
        let offset_ms = pick.1.get("outputs")?.get("server_offset_ms")?.as_i64()?;
        Some(ServerTime {
            server: pick.0 + Duration::milliseconds(offset_ms),
            local: pick.0,
            offset_ms,
        })
    }

    /// Every step's outcome so far, in the order the steps started.
    pub fn steps(&self) -> Vec<report::StepRecord> {
        let mut out: Vec<report::StepRecord> = Vec::new();
        for e in &self.entries {
            let Some(id) = e.data.get("step").and_then(Value::as_str) else {
                continue;
            };
            let at = parse_ts(&e.ts);
            match e.event.as_str() {
                "step_start" => {
                    out.retain(|r| r.id != id);
                    out.push(report::StepRecord {
                        id: id.to_string(),
                        uses: e
                            .data
                            .get("uses")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        status: report::StepStatus::Pending,
                        summary: String::new(),
                        started_at: at,
                        finished_at: None,
                    });
                }
                "step_end" => {
                    let status = e
                        .data
                        .get("status")
                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                        .unwrap_or(report::StepStatus::Skipped);
                    let summary = e
                        .data
                        .get("summary")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    match out.iter_mut().find(|r| r.id == id) {
                        Some(r) => {
                            r.status = status;
                            r.summary = summary;
                            r.finished_at = at;
                        }
                        None => out.push(report::StepRecord {
                            id: id.to_string(),
                            uses: e
                                .data
                                .get("uses")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            status,
                            summary,
                            started_at: None,
                            finished_at: at,
                        }),
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// Reads a `thresholds` argument (a map of [`Thresholds`] fields) over the defaults.
pub fn thresholds_from(value: Option<&Value>) -> Result<Thresholds, String> {
    let mut base = serde_json::to_value(Thresholds::default()).map_err(|e| e.to_string())?;
    if let Some(v) = value {
        let Some(over) = v.as_object() else {
            return Err("`thresholds` must be a map of threshold names to numbers".into());
        };
        let obj = base
            .as_object_mut()
            .expect("thresholds serialize to an object");
        for (k, val) in over {
            if !obj.contains_key(k) {
                let known: Vec<&str> = obj.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown threshold `{k}` (known: {})",
                    known.join(", ")
                ));
            }
            obj.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(base).map_err(|e| format!("bad threshold value: {e}"))
}

/// The thresholds a run's analysis used (journaled with the report step's arguments) and
/// whether it wrote Excel-style CSVs: what rewrites its reports the same way.
pub fn report_settings(facts: &JournalFacts) -> Result<(Thresholds, bool), String> {
    let thresholds = thresholds_from(
        facts
            .last_args_of("report.evidence")
            .or_else(|| facts.last_args_of("analysis.flag"))
            .and_then(|a| a.get("thresholds")),
    )?;
    let excel = facts
        .last_args_of("report.evidence")
        .and_then(|a| a.get("excel"))
        .and_then(Value::as_bool)
        == Some(true);
    Ok((thresholds, excel))
}

/// The data and conclusions of one investigation pass.
pub struct Investigation {
    pub input: AnalysisInput,
    pub result: AnalysisResult,
    pub facts: JournalFacts,
}

/// The registered exchange called `name`, or a message naming the known ones.
pub fn exchange_named(name: &str) -> Result<&'static Descriptor, String> {
    registry::get(name).ok_or_else(|| {
        format!(
            "no adapter for exchange `{name}` in this build (known: {})",
            registry::names().join(", ")
        )
    })
}

/// Rebuilds the run's data from `raw/` and `bot/`, and analyzes it.
pub fn investigate(run_dir: &Path, thresholds: &Thresholds) -> Result<Investigation, String> {
    investigate_with(
        run_dir,
        thresholds,
        JournalFacts::read(run_dir)?,
        ParsedLogs::default(),
        &report::manifest::Written::default(),
        HistorySource::Raw(None),
    )
}

/// Where an investigation's history comes from.
pub enum HistorySource {
    /// Rebuilt from `raw/` by the investigation, which opens the gate (if any) once the
    /// rebuild is done (the rebuild is parallel: work that waits on the gate leaves it the
    /// cores).
    Raw(Option<crate::fsutil::Gate>),
    /// Rebuilt already, by [`rebuild`] (while other work ran beside it).
    Rebuilt(Box<crate::exchange::History>),
}

/// The run's history rebuilt from `raw/` (corrupt answers skipped and listed), taking the
/// hashes of the files in `vouched` instead of reading them again; `gate` is opened once the
/// rebuild is done, or on an error.
pub fn rebuild(
    desc: &'static Descriptor,
    run_dir: &Path,
    vouched: &report::manifest::Written,
    gate: Option<crate::fsutil::Gate>,
) -> Result<crate::exchange::History, String> {
    let history = crate::exchange::replay::rebuild_with(
        desc,
        run_dir,
        crate::exchange::replay::RebuildOptions { skip_corrupt: true },
        vouched,
    )
    .map_err(|e| e.to_string());
    // The rebuild is done: the copy waiting for it starts.
    if let Some(gate) = gate {
        gate.open();
    }
    history
}

/// [`investigate`] with the journal's `facts`, bot logs already `parsed`, the files whose
/// hashes are `vouched` for, and the history from `source`.
fn investigate_with(
    run_dir: &Path,
    thresholds: &Thresholds,
    facts: JournalFacts,
    mut parsed: ParsedLogs,
    vouched: &report::manifest::Written,
    source: HistorySource,
) -> Result<Investigation, String> {
    let exchange = facts
        .exchange()
        .ok_or("the journal does not name the exchange (was this run started without one?)")?;
    let desc = exchange_named(&exchange)?;
    let history = match source {
        HistorySource::Raw(gate) => rebuild(desc, run_dir, vouched, gate)?,
        HistorySource::Rebuilt(history) => *history,
    };
    let skipped = history.skipped.clone();
    let mut input = AnalysisInput::from(history);
    input.window = facts.export_window();
    input.bot_logs = load_bot_logs_with(desc, run_dir, &mut parsed)?;
    drop(parsed);
    let mut result = analysis::analyze(&input, thresholds);
    // Logs added by `respond analyze` after the run's import, if any.
    let imported_at_run = facts
        .ends_of("analysis.import_bot_logs")
        .last()
        .and_then(|(_, d)| d.get("outputs")?.get("count")?.as_u64())
        .unwrap_or(0) as usize;
    let added: Vec<&str> = input
        .bot_logs
        .iter()
        .skip(imported_at_run)
        .map(|l| l.bundle_path.as_str())
        .collect();
    for r in facts.rejected_bot_logs() {
        let kept = r
            .bundle_copy
            .map(|c| format!(" (its original is kept as {c})"))
            .unwrap_or_default();
        let next = if added.is_empty() {
            "add a corrected copy with `respond analyze RUN_DIR --bot-log FIXED_FILE`".to_string()
        } else {
            format!("bot logs added since: {}", added.join(", "))
        };
        result.notes.push(format!(
            "bot log `{}` was left out of the run's analysis: {}{kept}; {next}",
            r.original_name, r.error
        ));
    }
    for s in skipped {
        result.notes.push(format!(
            "raw response {} was left out: {}",
            s.file, s.reason
        ));
    }
    Ok(Investigation {
        input,
        result,
        facts,
    })
}

/// The facts a report states about the run, from the journal and the rebuilt data.
pub fn run_facts(run_dir: &Path, inv: &Investigation) -> Result<RunFacts, String> {
    let facts = &inv.facts;
    let start = facts
        .run_start()
        .ok_or("the journal has no run_start entry")?
        .clone();
    let started_at = facts
        .started_at()
        .ok_or("the journal's run_start has no time")?;
    let minutes = inv.result.thresholds.reference_window_minutes;
    let incident = facts.incident();
    let proven_scopes = registry::get(&inv.input.exchange)
        .map(|d| facts.proven_scopes(d))
        .unwrap_or_default();
    Ok(RunFacts {
        run_id: run_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        exchange: facts.exchange().unwrap_or_default(),
        account_label: incident.account.clone(),
        key_masked: inv.input.key_masked.clone(),
        tool_version: start
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        playbook_path: start["playbook"]["path"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        playbook_sha256: start["playbook"]["sha256"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        started_at,
        finished_at: facts.last_ts().unwrap_or(started_at),
        server_time_start: facts.server_time(true),
        server_time_end: facts.server_time(false),
        investigation_window: inv.input.window,
        reference_window: inv.result.suspicious_window.map(|w| Window {
            from: w.from - Duration::minutes(minutes),
            to: w.from,
        }),
        revocation: facts.revocation(),
        dry_run: start
            .get("dry_run")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        steps: facts.steps(),
        not_started: facts.not_started(run_dir),
        incident,
        cancelled_orders: facts.cancelled_orders(),
        proven_scopes,
        timestamps: report::timestamp::read_all(run_dir),
        history_markets: history_markets(run_dir, facts),
    })
}

/// The markets the run's last history export read and its completeness statement, when the
/// exchange keeps history per market (the export wrote `<step id>-symbols.json`). An
/// unreadable statement file gives none: the ticket then names no markets.
fn history_markets(run_dir: &Path, facts: &JournalFacts) -> Option<report::facts::HistoryMarkets> {
    let file = facts
        .ends_of("exchange.export_history")
        .last()
        .and_then(|(_, d)| {
            d.get("outputs")?
                .get("symbols_path")?
                .as_str()
                .map(str::to_string)
        })?;
    let v: Value = serde_json::from_slice(&std::fs::read(run_dir.join(&file)).ok()?).ok()?;
    let symbols = v
        .get("markets")?
        .as_array()?
        .iter()
        .filter_map(|m| m.get("symbol")?.as_str().map(str::to_string))
        .collect();
    Some(report::facts::HistoryMarkets {
        file,
        symbols,
        statement: v.get("statement")?.as_str()?.to_string(),
    })
}

/// Writes the whole evidence bundle for the run (not the manifest: sealing is the last write
/// of a run, done by the command once the journal is closed).
pub fn write_reports(
    rundir: &RunDir,
    thresholds: &Thresholds,
    excel: bool,
) -> Result<(Investigation, Vec<String>), String> {
    write_reports_with(rundir, thresholds, excel, ParsedLogs::default())
}

/// [`write_reports`], reusing the bot logs in `parsed` (see [`ParsedLogs`]).
pub fn write_reports_with(
    rundir: &RunDir,
    thresholds: &Thresholds,
    excel: bool,
    parsed: ParsedLogs,
) -> Result<(Investigation, Vec<String>), String> {
    write_reports_into(
        rundir,
        thresholds,
        excel,
        parsed,
        &mut report::manifest::Written::default(),
        HistorySource::Raw(None),
    )
}

/// [`write_reports_with`], recording in `hashed` the report files whose hashes were taken as
/// they were written (for the seal: see [`report::manifest::seal_with`]), with the history
/// from `source`.
pub fn write_reports_into(
    rundir: &RunDir,
    thresholds: &Thresholds,
    excel: bool,
    parsed: ParsedLogs,
    hashed: &mut report::manifest::Written,
    source: HistorySource,
) -> Result<(Investigation, Vec<String>), String> {
    let all = JournalFacts::read(rundir.path())?;
    let provenance = all.provenance_notes();
    let mut inv = investigate_with(
        rundir.path(),
        thresholds,
        all.as_of_report(),
        parsed,
        hashed,
        source,
    )?;
    inv.result.notes.extend(provenance);
    let facts = run_facts(rundir.path(), &inv)?;
    let files = report::write_bundle_into(
        rundir,
        &facts,
        &inv.input,
        &inv.result,
        &report::ReportOptions { excel },
        hashed,
    )
    .map_err(|e| e.to_string())?;
    Ok((inv, files))
}

/// A short machine-readable summary of an analysis, as step outputs and `--json` show it.
pub fn summary(inv: &Investigation) -> Map<String, Value> {
    let r = &inv.result;
    let flagged: Vec<&str> = inv
        .input
        .orders
        .iter()
        .zip(&r.verdicts)
        .filter(|(_, v)| v.flagged)
        .map(|(o, _)| o.id.as_str())
        .collect();
    let review = r
        .verdicts
        .iter()
        .filter(|v| !v.flagged && v.confidence == analysis::Confidence::Review)
        .count();
    let flagged_transfers: Vec<&str> = r
        .transfers
        .iter()
        .filter(|t| t.flagged)
        .map(|t| t.transfer_id.as_str())
        .collect();
    let mut m = Map::new();
    m.insert("order_count".into(), json!(inv.input.orders.len()));
    m.insert("fill_count".into(), json!(inv.input.fills.len()));
    m.insert("flagged_count".into(), json!(flagged.len()));
    m.insert("flagged_order_ids".into(), json!(flagged));
    m.insert("review_count".into(), json!(review));
    m.insert("flagged_withdrawal_ids".into(), json!(flagged_transfers));
    m.insert("had_bot_log".into(), json!(r.had_bot_log));
    m.insert("quote_currency".into(), json!(r.loss.quote_currency));
    let d = |v: rust_decimal::Decimal| json!(v.normalize().to_string());
    m.insert("loss_total".into(), d(r.loss.total));
    m.insert("overpayment".into(), d(r.loss.overpayment));
    m.insert("withdrawn_value".into(), d(r.loss.withdrawn_value));
    m.insert("fees".into(), d(r.loss.fees));
    m.insert("loss_unpriced".into(), json!(r.loss.unpriced));
    m.insert(
        "change_during_response".into(),
        json!(r
            .loss
            .change_during_response
            .map(|v| v.normalize().to_string())),
    );
    let money = report::format::Money::of(&inv.input.exchange);
    m.insert("loss_text".into(), json!(money.loss_line(&r.loss)));
    m.insert("notes".into(), json!(r.notes));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_override_and_refuse_unknown_names() {
        let t = thresholds_from(Some(&json!({"price_deviation": 0.5}))).unwrap();
        assert_eq!(t.price_deviation, 0.5);
        assert_eq!(t.flag_score, Thresholds::default().flag_score);
        let e = thresholds_from(Some(&json!({"price_deviaton": 0.5}))).unwrap_err();
        assert!(e.contains("unknown threshold `price_deviaton`"), "{e}");
        assert!(thresholds_from(Some(&json!({"price_deviation": "x"}))).is_err());
    }

    /// A log `respond analyze` parsed, then copied into the bundle with the same hash, is
    /// analyzed from that parse while its copy is still the file written (same inode, size,
    /// modification and change times): its copy is not read (nor hashed) a third time. A copy changed
    /// since, or one this process did not make, is read and parsed.
    #[test]
    fn a_copy_made_of_parsed_bytes_is_not_read_again() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("bot.csv");
        std::fs::write(
            &src,
            "order_id,side,created_at\nA-1,bid,2026-11-20T14:03:07Z\n",
        )
        .unwrap();
        let desc = registry::all()[0];
        let bytes = std::fs::read(&src).unwrap();
        let other = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("A-1", "B-2");
        for (n, unchanged) in [(0, true), (1, false)] {
            let log =
                analysis::import::parse_bytes(desc, &src, &src, &bytes, None, false, 0).unwrap();
            let parsed = ParsedLogs::new(vec![log], false);
            let rundir = RunDir::create(&t.path().join(format!("run{n}"))).unwrap();
            let (records, before) = import_bot_logs(
                desc,
                &rundir,
                std::slice::from_ref(&src),
                None,
                false,
                false,
                &parsed,
            )
            .unwrap();
            assert_eq!((records.len(), before), (1, 0));
            // Unchanged: the parse stands for the copy.
            let mut again = ParsedLogs::new(
                vec![
                    analysis::import::parse_bytes(desc, &src, &src, &bytes, None, false, 0)
                        .unwrap(),
                ],
                false,
            );
            let logs = load_bot_logs_with(desc, rundir.path(), &mut again).unwrap();
            assert_eq!(logs[0].entries[0].order_id.as_deref(), Some("A-1"));
            // Other bytes of the same size in the same file: noticed, even with the
            // modification time put back (the inode's change time moved).
            let copy = rundir.path().join(&records[0].bundle_path);
            let mtime = std::fs::metadata(&copy).unwrap().modified().unwrap();
            let mut perms = std::fs::metadata(&copy).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&copy, perms).unwrap();
            let mut f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
            f.write_all(other.as_bytes()).unwrap();
            let when = match unchanged {
                true => mtime,
                false => mtime + std::time::Duration::from_secs(1),
            };
            f.set_modified(when).unwrap();
            drop(f);
            let mut parsed = parsed;
            let logs = load_bot_logs_with(desc, rundir.path(), &mut parsed).unwrap();
            assert_eq!(logs.len(), 1);
            assert_eq!(logs[0].entries[0].order_id.as_deref(), Some("B-2"));
            assert_eq!(logs[0].bundle_path, records[0].bundle_path);
            // Without the parse, the copy is read.
            let logs = load_bot_logs(desc, rundir.path()).unwrap();
            assert_eq!(logs[0].entries[0].order_id.as_deref(), Some("B-2"));
        }
    }

    #[test]
    fn journal_reader_ignores_an_entry_being_written() {
        let t = tempfile::tempdir().unwrap();
        let j = journal::Journal::create(t.path()).unwrap();
        j.append("run_start", json!({"exchange": {"name": "example"}}))
            .unwrap();
        drop(j);
        let p = t.path().join(journal::FILE_NAME);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(b"{\"seq\":2,");
        std::fs::write(&p, bytes).unwrap();
        let facts = JournalFacts::read(t.path()).unwrap();
        assert_eq!(facts.exchange().as_deref(), Some("example"));
        assert_eq!(facts.steps().len(), 0);
        assert_eq!(facts.revocation(), Revocation::NotChecked);
    }
}
