//! Resuming an interrupted run from its journal.
//!
//! The journal is the only source of truth: its chain is verified (a torn last line is
//! trimmed), the inputs, capabilities and dry-run flag come from `run_start`, and each step's
//! last journaled event decides what happens to it: finished `ok` steps keep their recorded
//! outputs (`reused`, not re-run); a read step that started but never ended runs again; a
//! write, destructive or notify step that started but never ended is never repeated blindly —
//! its kind's post-condition check decides, and when it cannot tell, the step fails until the
//! user checks by hand and passes `--replay STEP`. Failed, skipped and not-run steps are
//! evaluated again. A playbook that changed since `run_start` is refused (with a line diff)
//! unless the user accepts the change.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::events::{self, Event};
use super::journal::{Entry, Journal};
use super::run::{self, Exec, Prior};
use super::{EngineError, RunReport, StepRecord, StepStatus};
use crate::output::Printer;
use crate::playbook::{self, template::Renderer};
use crate::rundir::RunDir;
use crate::steps::{Registry, Services};

/// How to resume.
#[derive(Debug, Clone, Default)]
pub struct ResumeOptions {
    /// Steps to run again even though they may have taken effect.
    pub replay: Vec<String>,
    /// Continue with a playbook whose hash differs from the one the run started with.
    pub accept_changed_playbook: bool,
    /// Secret inputs (never journaled), re-supplied as text; non-secret inputs come from the
    /// journal.
    pub secret_inputs: BTreeMap<String, String>,
}

/// Continues the run in `rundir_path`. `playbook_source` overrides the copy saved in the run
/// directory (it must be the same playbook unless `accept_changed_playbook`).
pub async fn resume(
    rundir_path: &Path,
    playbook_source: Option<(&Path, String)>,
    registry: &Registry,
    services: Arc<Services>,
    printer: &Printer,
    opts: ResumeOptions,
) -> Result<RunReport, EngineError> {
    let not_a_run = |why: &str| EngineError::NotARun(rundir_path.to_path_buf(), why.to_string());
    if !rundir_path.join(super::journal::FILE_NAME).is_file() {
        return Err(not_a_run("it has no journal.jsonl"));
    }
    let rundir = RunDir::open(rundir_path).map_err(|source| EngineError::Io {
        path: rundir_path.to_path_buf(),
        source,
    })?;
    // Everything that can refuse the resume is checked before the journal is touched.
    let start = first_entry(rundir_path)
        .filter(|e| e.event == "run_start")
        .ok_or_else(|| not_a_run("its journal does not begin with run_start"))?
        .data;
    let original = run::stored_playbook(rundir_path)?;
    let recorded_sha = start["playbook"]["sha256"].as_str().unwrap_or_default();
    let (path, source) = match playbook_source {
        Some((p, s)) => (p.to_path_buf(), s),
        None => (
            Path::new(
                start["playbook"]["path"]
                    .as_str()
                    .unwrap_or("playbook.yaml"),
            )
            .to_path_buf(),
            original.clone(),
        ),
    };
    let sha = crate::fsutil::sha256_hex(source.as_bytes());
    let changed = sha != recorded_sha;
    if changed {
        let diff = line_diff(&original, &source);
        if !opts.accept_changed_playbook {
            return Err(EngineError::PlaybookChanged { diff });
        }
        printer.warn(&format!(
            "continuing with a changed playbook (--accept-changed-playbook):\n{diff}"
        ));
        rundir
            .write(
                &format!(
                    "playbook-resume-{}.yaml",
                    Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
                ),
                source.as_bytes(),
            )
            .map_err(|source| EngineError::Io {
                path: rundir_path.to_path_buf(),
                source,
            })?;
    }
    let pb = playbook::load_str(&path, &source, registry)?;
    for r in &opts.replay {
        if pb.step(r).is_none() {
            return Err(EngineError::UnknownReplay(r.clone()));
        }
    }
    // Inputs: non-secret ones from the journal, secret ones re-supplied.
    let mut known = Map::new();
    if let Some(m) = start["inputs"].as_object() {
        for (k, v) in m {
            let secret_marker = v == &json!({"secret": true});
            let declared_secret = pb.input(k).is_some_and(|d| d.secret);
            if !secret_marker && !declared_secret {
                known.insert(k.clone(), v.clone());
            }
        }
    }
    let inputs = run::resolve_inputs(&pb, &opts.secret_inputs, &known)?;
    let (journal, entries, torn) = Journal::reopen(rundir_path)?;
    if let Some(bytes) = torn {
        printer.warn(&format!(
            "the journal's last entry was cut short by the interruption; removed {bytes} bytes"
        ));
    }
    let dry_run = start["dry_run"].as_bool().unwrap_or(false);
    let capabilities = start["exchange"].clone();
    let started_at = start["run"]["started_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let run_facts = run::run_facts(&rundir, started_at);

    // Each step's last journaled state.
    let mut last: HashMap<String, (String, Value)> = HashMap::new();
    for e in &entries {
        if e.event == "step_start" || e.event == "step_end" {
            if let Some(id) = e.data["step"].as_str() {
                last.insert(id.to_string(), (e.event.clone(), e.data.clone()));
            }
        }
    }
    let mut prior = HashMap::new();
    for step in &pb.steps {
        let replay = opts.replay.contains(&step.id);
        match last.get(&step.id) {
            Some((ev, data)) if ev == "step_end" => {
                let status: Option<StepStatus> =
                    serde_json::from_value(data["status"].clone()).ok();
                if data["effect_unknown"] == true && !replay && !dry_run {
                    // Cut off mid-way (timeout, crash): treated like an interrupted step.
                    prior.insert(step.id.clone(), Prior::Interrupted);
                } else if matches!(status, Some(StepStatus::Ok | StepStatus::Reused)) && !replay {
                    let mut r = StepRecord::new(
                        &step.id,
                        &step.uses,
                        StepStatus::Reused,
                        data["summary"].as_str().unwrap_or_default(),
                    );
                    r.outputs = data["outputs"].as_object().cloned().unwrap_or_default();
                    r.artifacts =
                        serde_json::from_value(data["artifacts"].clone()).unwrap_or_default();
                    prior.insert(step.id.clone(), Prior::Done(Box::new(r)));
                } else if matches!(status, Some(StepStatus::Failed)) && !replay && !dry_run {
                    prior.insert(step.id.clone(), Prior::Failed);
                }
            }
            Some(_) => {
                // Started, never ended. A dry run never had an effect to check.
                let p = if replay || dry_run {
                    Prior::Replay
                } else {
                    Prior::Interrupted
                };
                prior.insert(step.id.clone(), p);
            }
            None => {}
        }
    }
    journal.record(&Event::Resume(events::Resume {
        version: env!("CARGO_PKG_VERSION").into(),
        torn_bytes_removed: torn,
        replay: opts.replay.clone(),
        playbook_changed: changed,
        playbook_sha256: sha.clone(),
        inputs: run::journal_inputs(&pb, &inputs),
    }))?;
    printer.status(&format!(
        "resuming run {} ({} step(s) already done)",
        run_facts["id"].as_str().unwrap_or_default(),
        prior
            .values()
            .filter(|p| matches!(p, Prior::Done(_)))
            .count()
    ));
    let exec = Arc::new(Exec {
        playbook: pb,
        registry: registry.clone(),
        services,
        printer: printer.clone(),
        rundir,
        journal: Arc::new(journal),
        inputs,
        capabilities,
        run: run_facts,
        dry_run,
        renderer: Renderer::new(),
    });
    run::execute(exec, prior).await
}

/// The journal's first entry, read without verifying or trimming anything.
fn first_entry(dir: &Path) -> Option<Entry> {
    use std::io::BufRead;
    let f = std::fs::File::open(dir.join(super::journal::FILE_NAME)).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(f).read_line(&mut line).ok()?;
    serde_json::from_str(line.trim_end()).ok()
}

/// A minimal line diff (longest common subsequence): `- removed`, `+ added`, with line numbers.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{:>4}: {}", i + 1, a[i]));
            i += 1;
        } else {
            out.push(format!("+{:>4}: {}", j + 1, b[j]));
            j += 1;
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_added_and_removed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, "-   2: b\n+   2: B\n+   4: d");
    }
}
