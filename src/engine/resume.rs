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
//!
//! A step evaluated again may produce other data than the first time (a late export that now
//! reaches the exchange with a read-only key), so nothing computed from it may be reused:
//! every finished step that depends on a step evaluated again — through `needs`, a
//! `steps.X.outputs` reference, or, for a step that reads the whole bundle (the report), any
//! step not downstream of it — transitively, is run again too ([`invalidate`]); a write step
//! among them checks its post-condition first. A step that was skipped (or only described in
//! a dry run) and whose inputs are all unchanged would be skipped again and changes nothing.
//! So a resumed bundle is what a fresh analysis of the same data gives.
//!
//! Nothing is written before every refusal has been checked; the first write is the journal's
//! `reopen` entry when the caller verified a sealed bundle ([`ResumeOptions::reopen`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Set by a caller that verified a sealed bundle before resuming it: journaled as a
    /// `reopen` entry, the first write of the resume.
    pub reopen: Option<Value>,
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
    // Everything that can refuse the resume is checked before anything is written.
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
    // The stored copy may differ from the original only by masked secrets (see
    // `PlaybookRef::copy_sha256`); it is the same playbook.
    let copy_sha = start["playbook"]["copy_sha256"].as_str();
    let changed = sha != recorded_sha && Some(sha.as_str()) != copy_sha;
    let diff = changed.then(|| line_diff(&original, &source));
    if let (Some(diff), false) = (&diff, opts.accept_changed_playbook) {
        return Err(EngineError::PlaybookChanged { diff: diff.clone() });
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
    // Checked: from here on the resume writes.
    let io = |source| EngineError::Io {
        path: rundir_path.to_path_buf(),
        source,
    };
    let rundir = RunDir::open(rundir_path).map_err(io)?;
    let (journal, entries, torn) = Journal::reopen(rundir_path)?;
    if let Some(bytes) = torn {
        printer.warn(&format!(
            "the journal's last entry was cut short by the interruption; removed {bytes} bytes"
        ));
    }
    if let Some(data) = &opts.reopen {
        journal.append("reopen", data.clone())?;
    }
    if let Some(diff) = &diff {
        printer.warn(&format!(
            "continuing with a changed playbook (--accept-changed-playbook):\n{diff}"
        ));
        rundir
            .write(
                &format!(
                    "playbook-resume-{}.yaml",
                    crate::time::now().format("%Y%m%dT%H%M%S%.3fZ")
                ),
                source.as_bytes(),
            )
            .map_err(io)?;
    }
    let dry_run = start["dry_run"].as_bool().unwrap_or(false);
    let capabilities = start["exchange"].clone();
    let started_at = start["run"]["started_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(crate::time::now);
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
    let ended: HashMap<String, Option<StepStatus>> = last
        .iter()
        .filter(|(_, (ev, _))| ev == "step_end")
        .map(|(id, (_, d))| (id.clone(), serde_json::from_value(d["status"].clone()).ok()))
        .collect();
    let rerun = invalidate(&pb, registry, &mut prior, &ended, &opts.replay);
    for (step, because) in &rerun {
        printer.status(&format!(
            "[rerun] {step}: `{because}` runs again, so `{step}` is not reused"
        ));
    }
    journal.record(&Event::Resume(events::Resume {
        version: env!("CARGO_PKG_VERSION").into(),
        torn_bytes_removed: torn,
        replay: opts.replay.clone(),
        playbook_changed: changed,
        playbook_sha256: sha.clone(),
        inputs: run::journal_inputs(&pb, &inputs),
        rerun: rerun.clone(),
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

/// Decides which finished steps cannot be reused because a step they depend on is evaluated
/// again in this session (see the module documentation), and marks them: a read step runs
/// fresh, a write step ([`Prior::Stale`]) checks its post-condition before running again.
/// Returns each such step with the upstream step that made it stale.
fn invalidate(
    pb: &playbook::Playbook,
    registry: &Registry,
    prior: &mut HashMap<String, Prior>,
    ended: &HashMap<String, Option<StepStatus>>,
    replay: &[String],
) -> BTreeMap<String, String> {
    let mut deps: HashMap<&str, BTreeSet<String>> = pb
        .steps
        .iter()
        .map(|s| {
            let (needs, refs) = run::dependencies(s);
            (s.id.as_str(), needs.into_iter().chain(refs).collect())
        })
        .collect();
    // A step reading the whole bundle depends on every step not downstream of it.
    let downstream = |of: &str, deps: &HashMap<&str, BTreeSet<String>>| {
        let mut down: BTreeSet<String> = BTreeSet::new();
        let mut grew = true;
        while grew {
            grew = false;
            for (id, ds) in deps {
                if !down.contains(*id) && ds.iter().any(|d| d == of || down.contains(d)) {
                    down.insert(id.to_string());
                    grew = true;
                }
            }
        }
        down
    };
    let explicit = deps.clone();
    for s in &pb.steps {
        if registry
            .get(&s.uses)
            .is_some_and(|k| k.reads_whole_bundle())
        {
            let down = downstream(&s.id, &explicit);
            let all = pb
                .steps
                .iter()
                .filter(|o| o.id != s.id && !down.contains(&o.id))
                .map(|o| o.id.clone());
            deps.get_mut(s.id.as_str()).expect("every step").extend(all);
        }
    }
    // Steps whose outcome may differ from the recorded one in this session.
    let mut dirty: BTreeMap<String, Option<String>> = BTreeMap::new();
    loop {
        let mut grew = false;
        for s in &pb.steps {
            if dirty.contains_key(&s.id) {
                continue;
            }
            let upstream = deps[s.id.as_str()]
                .iter()
                .find(|d| dirty.contains_key(*d))
                .cloned();
            let done = matches!(prior.get(&s.id), Some(Prior::Done(_)));
            let same_again = !replay.contains(&s.id)
                && upstream.is_none()
                && matches!(
                    ended.get(&s.id),
                    Some(Some(
                        StepStatus::Skipped | StepStatus::DryRun | StepStatus::NotSimulable
                    ))
                );
            if done {
                if let Some(u) = upstream {
                    dirty.insert(s.id.clone(), Some(u));
                    grew = true;
                }
            } else if !same_again {
                dirty.insert(s.id.clone(), None);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let mut rerun = BTreeMap::new();
    for (id, because) in dirty {
        let Some(because) = because else { continue };
        let step = pb.step(&id).expect("a playbook step");
        let read = registry
            .get(&step.uses)
            .map_or(true, |k| k.effect() == crate::steps::Effect::Read);
        if read {
            prior.remove(&id);
        } else {
            prior.insert(id.clone(), Prior::Stale);
        }
        rerun.insert(id, because);
    }
    rerun
}

/// The outcome of a run whose journal says it is complete (the last session ended with
/// `run_end` and no failed step), rebuilt from the journal: nothing is run. `None` when the
/// run is not complete.
pub fn completed(dir: &Path, entries: &[Entry]) -> Option<RunReport> {
    let last_session = entries
        .iter()
        .rev()
        .find(|e| matches!(e.event.as_str(), "run_start" | "resume" | "run_end"))?;
    if last_session.event != "run_end" || last_session.data["ok"] != true {
        return None;
    }
    let start = entries.iter().find(|e| e.event == "run_start")?;
    let mut steps: Vec<StepRecord> = Vec::new();
    for e in entries.iter().filter(|e| e.event == "step_end") {
        let d = &e.data;
        let Some(id) = d["step"].as_str() else {
            continue;
        };
        let Ok(status) = serde_json::from_value::<StepStatus>(d["status"].clone()) else {
            continue;
        };
        let mut r = StepRecord::new(
            id,
            d["uses"].as_str().unwrap_or_default(),
            status,
            d["summary"].as_str().unwrap_or_default(),
        );
        r.outputs = d["outputs"].as_object().cloned().unwrap_or_default();
        r.artifacts = serde_json::from_value(d["artifacts"].clone()).unwrap_or_default();
        steps.retain(|s| s.id != id);
        steps.push(r);
    }
    Some(RunReport {
        run_id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        playbook: start.data["playbook"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        dry_run: start.data["dry_run"] == true,
        ok: !steps.iter().any(|s| s.status == StepStatus::Failed),
        stopped: None,
        steps,
    })
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

    /// A step kind for [`invalidate`]'s tests: never run, only its metadata matters.
    struct Kind(&'static str, crate::steps::Effect, bool);

    #[async_trait::async_trait]
    impl crate::steps::StepKind for Kind {
        fn info(&self) -> &'static crate::steps::StepInfo {
            const INFO: crate::steps::StepInfo = crate::steps::StepInfo {
                name: "test",
                effect: crate::steps::Effect::Read,
                description: "test",
                args: &[],
                outputs: &["x"],
            };
            &INFO
        }
        // Name and effect vary per instance.
        fn name(&self) -> &'static str {
            self.0
        }
        fn effect(&self) -> crate::steps::Effect {
            self.1
        }
        async fn run(
            &self,
            _ctx: &crate::steps::StepContext,
            _args: &Map<String, Value>,
        ) -> Result<crate::steps::StepOutcome, crate::steps::StepError> {
            unreachable!("invalidate never runs a step")
        }
        fn reads_whole_bundle(&self) -> bool {
            self.2
        }
    }

    fn done(id: &str) -> Prior {
        Prior::Done(Box::new(StepRecord::new(id, "t", StepStatus::Ok, "")))
    }

    #[test]
    fn a_step_reading_the_whole_bundle_reruns_after_any_step_not_downstream_of_it() {
        use crate::steps::Effect;
        let mut registry = Registry::new();
        registry.register(Arc::new(Kind("t.read", Effect::Read, false)));
        registry.register(Arc::new(Kind("t.cancel", Effect::Destructive, false)));
        registry.register(Arc::new(Kind("t.report", Effect::Read, true)));
        let yaml = "name: whole
steps:
  - id: export
    uses: t.read
  - id: side_cancel
    uses: t.cancel
  - id: report
    uses: t.report
    needs: [export]
  - id: notify
    uses: t.cancel
    needs: [report]
";
        let pb = playbook::load_str(Path::new("whole.yaml"), yaml, &registry).unwrap();
        let all_done = || -> HashMap<String, Prior> {
            ["export", "side_cancel", "report", "notify"]
                .iter()
                .map(|id| (id.to_string(), done(id)))
                .collect()
        };
        let ended: HashMap<String, Option<StepStatus>> = HashMap::new();

        // Nothing runs again: everything is reused.
        let mut prior = all_done();
        assert!(invalidate(&pb, &registry, &mut prior, &ended, &[]).is_empty());

        // `side_cancel` is neither needed nor referenced by the report, but it recorded raw
        // responses the report reads: the report runs again, and so does what needs it (a
        // write: it checks its post-condition first). `export` is untouched.
        let mut prior = all_done();
        prior.insert("side_cancel".into(), Prior::Failed);
        let rerun = invalidate(&pb, &registry, &mut prior, &ended, &[]);
        assert_eq!(
            rerun,
            BTreeMap::from([
                ("report".to_string(), "side_cancel".to_string()),
                ("notify".to_string(), "report".to_string()),
            ])
        );
        assert!(!prior.contains_key("report"), "a read runs fresh");
        assert!(matches!(prior.get("notify"), Some(Prior::Stale)));
        assert!(matches!(prior.get("export"), Some(Prior::Done(_))));

        // What is downstream of the report never makes it stale (no cycle).
        let mut prior = all_done();
        prior.remove("notify");
        assert!(invalidate(&pb, &registry, &mut prior, &ended, &[]).is_empty());
        assert!(matches!(prior.get("report"), Some(Prior::Done(_))));
    }

    #[test]
    fn diff_shows_added_and_removed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, "-   2: b\n+   2: B\n+   4: d");
    }
}
