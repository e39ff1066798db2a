//! Starting a run and the scheduler both `start` and `resume` use.
//!
//! The scheduler is a single loop over a `JoinSet`: a step starts once every step it
//! depends on (its `needs`, and every step whose outputs its templates reference) has
//! finished, so independent steps run concurrently. Each step runs in its own task, and each
//! attempt in a task of its own, so a panicking step kind becomes a recorded failure. After a
//! failing step with `on_error: abort`, no new step starts; running ones finish; the rest are
//! recorded `not_run`. Every transition is journaled before the next one can happen.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::task::JoinSet;

use super::events::{self, Event};
use super::journal::{self, Journal};
use super::{EngineError, RunReport, RunSpec, RunStop, StepRecord, StepStatus};
use crate::output::Printer;
use crate::playbook::template::{self, Renderer};
use crate::playbook::{self, validate, OnError, Playbook, Step};
use crate::rundir::RunDir;
use crate::steps::{Effect, Registry, Services, StepContext, StepError, StepKind, StepOutcome};

/// What resume knows about a step from earlier sessions.
#[derive(Debug, Clone)]
pub(crate) enum Prior {
    /// Finished with outputs: reuse them.
    Done(Box<StepRecord>),
    /// Started, never ended.
    Interrupted,
    /// Started, never ended, and the user asked to run it again (`--replay`).
    Replay,
    /// Ended failed in an earlier session: it may still have taken effect (a cancel that
    /// lost its key half-way); a write step asks `check_done` before running again.
    Failed,
    /// Ended ok in an earlier session, but a step it depends on runs again in this one: its
    /// outcome is not reused; a write step asks `check_done` before running again.
    Stale,
}

/// Everything the steps of one session share.
pub(crate) struct Exec {
    pub playbook: Playbook,
    pub registry: Registry,
    pub services: Arc<Services>,
    pub printer: Printer,
    pub rundir: RunDir,
    pub journal: Arc<Journal>,
    pub inputs: Map<String, Value>,
    pub capabilities: Value,
    pub run: Value,
    pub dry_run: bool,
    pub renderer: Renderer,
}

/// Starts a new run in `rundir` (freshly created): validates the playbook and inputs, copies
/// the playbook into the bundle, journals `run_start`, runs every step, journals `run_end`.
pub async fn start(
    spec: RunSpec,
    registry: &Registry,
    services: Arc<Services>,
    printer: &Printer,
    rundir: RunDir,
) -> Result<RunReport, EngineError> {
    let playbook = playbook::load_str(&spec.playbook_path, &spec.playbook_source, registry)?;
    let inputs = resolve_inputs(&playbook, &spec.inputs, &Map::new())?;
    let started_at = crate::time::now();
    let run = run_facts(&rundir, started_at);
    let io = |source| EngineError::Io {
        path: rundir.path().to_path_buf(),
        source,
    };
    let copy = rundir
        .write("playbook.yaml", spec.playbook_source.as_bytes())
        .map_err(io)?;
    let sha256 = crate::fsutil::sha256_hex(spec.playbook_source.as_bytes());
    let copy_sha256 = std::fs::read(&copy)
        .map(|b| crate::fsutil::sha256_hex(&b))
        .map_err(io)?;
    let journal = Journal::create(rundir.path())?;
    journal.record_at(
        started_at,
        &Event::RunStart(events::RunStart {
            version: env!("CARGO_PKG_VERSION").into(),
            run: run.clone(),
            playbook: events::PlaybookRef {
                name: playbook.name.clone(),
                path: spec.playbook_path.display().to_string(),
                copy_sha256: (copy_sha256 != sha256).then_some(copy_sha256),
                sha256,
            },
            inputs: journal_inputs(&playbook, &inputs),
            exchange: spec.capabilities.clone(),
            dry_run: spec.dry_run,
        }),
    )?;
    printer.status(&format!(
        "run {} ({}{}) in {}",
        run["id"].as_str().unwrap_or(""),
        playbook.name,
        if spec.dry_run { ", dry run" } else { "" },
        rundir.path().display()
    ));
    let exec = Exec {
        playbook,
        registry: registry.clone(),
        services,
        printer: printer.clone(),
        rundir,
        journal: Arc::new(journal),
        inputs,
        capabilities: spec.capabilities,
        run,
        dry_run: spec.dry_run,
        renderer: Renderer::new(),
    };
    execute(Arc::new(exec), HashMap::new()).await
}

/// `run` as templates see it. The run id is the run directory's name.
pub(crate) fn run_facts(rundir: &RunDir, started_at: DateTime<Utc>) -> Value {
    json!({
        "id": rundir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        "started_at": journal::ts(started_at),
        "dir": rundir.path().display().to_string(),
    })
}

/// Inputs as journaled: secret ones by name only.
pub(crate) fn journal_inputs(pb: &Playbook, inputs: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in inputs {
        let secret = pb.input(k).is_some_and(|d| d.secret);
        out.insert(
            k.clone(),
            if secret {
                json!({"secret": true})
            } else {
                v.clone()
            },
        );
    }
    Value::Object(out)
}

/// Types the user's inputs by their declarations, fills defaults, refuses unknown or missing
/// ones and values outside their declared constraints ([`playbook::inputs::resolve`]).
/// `known` holds already-typed values (recovered by resume) used before defaults.
pub(crate) fn resolve_inputs(
    pb: &Playbook,
    given: &BTreeMap<String, String>,
    known: &Map<String, Value>,
) -> Result<Map<String, Value>, EngineError> {
    Ok(playbook::inputs::resolve(
        pb,
        given,
        known,
        crate::time::now(),
    )?)
}

/// The ids a step waits for: its `needs`, and the steps whose outputs it references.
pub(crate) fn dependencies(step: &Step) -> (BTreeSet<String>, BTreeSet<String>) {
    let needs: BTreeSet<String> = step.needs.iter().cloned().collect();
    let mut refs = template::step_references(&Value::Object(step.with.clone()));
    if let Some(c) = &step.condition {
        refs.extend(template::step_references(c));
    }
    (needs, refs)
}

/// Runs every step of the session and journals `run_end`.
pub(crate) async fn execute(
    exec: Arc<Exec>,
    prior: HashMap<String, Prior>,
) -> Result<RunReport, EngineError> {
    let steps = exec.playbook.steps.clone();
    let deps: HashMap<String, (BTreeSet<String>, BTreeSet<String>)> = steps
        .iter()
        .map(|s| (s.id.clone(), dependencies(s)))
        .collect();
    let mut done: HashMap<String, StepRecord> = HashMap::new();
    let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut set: JoinSet<Result<StepRecord, EngineError>> = JoinSet::new();
    let mut aborting: Option<String> = None;
    let mut stopped: Option<RunStop> = None;
    loop {
        if aborting.is_none() {
            for step in &steps {
                if done.contains_key(&step.id) || running.values().any(|r| r == &step.id) {
                    continue;
                }
                let (needs, refs) = &deps[&step.id];
                if !needs.iter().chain(refs).all(|d| done.contains_key(d)) {
                    continue;
                }
                let upstream: HashMap<String, StepRecord> = needs
                    .iter()
                    .chain(refs)
                    .filter_map(|d| done.get(d).map(|r| (d.clone(), r.clone())))
                    .collect();
                let exec2 = exec.clone();
                let step2 = step.clone();
                let prior2 = prior.get(&step.id).cloned();
                let (needs2, refs2) = (needs.clone(), refs.clone());
                let handle = set.spawn(async move {
                    run_step(exec2, step2, prior2, needs2, refs2, upstream).await
                });
                running.insert(handle.id(), step.id.clone());
            }
        }
        let next = tokio::select! {
            biased;
            sig = super::interrupt::wait() => {
                return interrupted(&exec, set, running, sig).await;
            }
            j = set.join_next_with_id() => j,
        };
        let Some(joined) = next else {
            break;
        };
        let record = match joined {
            Ok((id, result)) => {
                running.remove(&id);
                result?
            }
            Err(e) => {
                let id = running.remove(&e.id()).unwrap_or_default();
                let step = exec.playbook.step(&id).cloned();
                let uses = step.map(|s| s.uses).unwrap_or_default();
                let mut r = StepRecord::new(&id, &uses, StepStatus::Failed, "");
                r.error = Some(format!("step crashed: {}", panic_text(e)));
                r.effect_unknown = true;
                r.hint = Some("this is a bug in the step kind; the run can be resumed".into());
                journal_end(&exec, &r)?;
                report_line(&exec.printer, &r);
                r
            }
        };
        if record.status == StepStatus::Failed
            && (record.stops_run
                || exec
                    .playbook
                    .step(&record.id)
                    .is_some_and(|s| s.on_error == OnError::Abort))
            && aborting.is_none()
        {
            aborting = Some(record.id.clone());
        }
        // A failure no step can get past (a key the exchange never accepted) stops the run
        // whatever the step's `on_error`.
        if record.stops_run && stopped.is_none() {
            stopped = Some(RunStop {
                step: record.id.clone(),
                message: record.error.clone().unwrap_or_default(),
                hint: record.hint.clone(),
            });
        }
        done.insert(record.id.clone(), record);
    }
    for step in &steps {
        if !done.contains_key(&step.id) {
            let why = match &aborting {
                Some(a) => format!("not run: the run stopped after `{a}` failed"),
                None => "not run".to_string(),
            };
            let r = StepRecord::new(&step.id, &step.uses, StepStatus::NotRun, why);
            journal_end(&exec, &r)?;
            report_line(&exec.printer, &r);
            done.insert(step.id.clone(), r);
        }
    }
    let records: Vec<StepRecord> = steps.iter().filter_map(|s| done.remove(&s.id)).collect();
    let ok = !records.iter().any(|r| r.status == StepStatus::Failed);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *counts.entry(r.status.as_str().to_string()).or_default() += 1;
    }
    exec.journal.record(&Event::RunEnd(events::RunEnd {
        ok,
        aborted_after: aborting.clone(),
        counts,
        stopped: stopped.clone(),
    }))?;
    Ok(RunReport {
        run_id: exec.run["id"].as_str().unwrap_or_default().to_string(),
        dir: exec.rundir.path().to_path_buf(),
        playbook: exec.playbook.name.clone(),
        dry_run: exec.dry_run,
        steps: records,
        ok,
        stopped,
    })
}

/// Stops every running step after SIGINT/SIGTERM, waits until they are gone (so no entry can
/// follow), and journals `run_interrupted`. Steps cut off mid-way have a start without an end:
/// resume checks a write's effect before running it again, as after a crash.
async fn interrupted(
    exec: &Exec,
    mut set: JoinSet<Result<StepRecord, EngineError>>,
    running: HashMap<tokio::task::Id, String>,
    sig: super::interrupt::Signal,
) -> Result<RunReport, EngineError> {
    set.abort_all();
    while set.join_next().await.is_some() {}
    let mut stopped: Vec<String> = running.into_values().collect();
    stopped.sort();
    exec.journal
        .record(&Event::RunInterrupted(events::RunInterrupted {
            signal: sig.name().to_string(),
            stopped_steps: stopped.clone(),
        }))?;
    Err(EngineError::Interrupted {
        signal: sig,
        stopped,
    })
}

fn panic_text(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "cancelled".into();
    }
    let payload = e.into_panic();
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    };
    crate::secret::redact(&text).into_owned()
}

fn journal_end(exec: &Exec, r: &StepRecord) -> Result<(), EngineError> {
    exec.journal.record(&Event::StepEnd(events::StepEnd {
        step: r.id.clone(),
        uses: r.uses.clone(),
        status: r.status,
        summary: r.summary.clone(),
        error: r.error.clone(),
        hint: r.hint.clone(),
        attempts: r.attempts,
        outputs: r.outputs.clone(),
        artifacts: r.artifacts.clone(),
        effect_unknown: r.effect_unknown,
        stops_run: r.stops_run,
    }))?;
    Ok(())
}

fn report_line(p: &Printer, r: &StepRecord) {
    match r.status {
        StepStatus::Failed => {
            p.error(&format!(
                "step `{}` failed: {}",
                r.id,
                r.error.as_deref().unwrap_or("")
            ));
            if let Some(h) = &r.hint {
                p.important(&format!("  hint: {h}"));
            }
        }
        StepStatus::DryRun | StepStatus::NotSimulable => {
            p.out(&format!("[{}] {}: {}", r.status.as_str(), r.id, r.summary))
        }
        _ => p.status(&format!("[{}] {}: {}", r.status.as_str(), r.id, r.summary)),
    }
}

/// The template context for a step, built from the outputs of the steps it may read.
fn context(exec: &Exec, upstream: &HashMap<String, StepRecord>) -> Value {
    let mut steps = Map::new();
    for (id, r) in upstream {
        if r.status.has_outputs() {
            steps.insert(id.clone(), json!({"outputs": r.outputs}));
        }
    }
    json!({
        "inputs": exec.inputs,
        "steps": steps,
        "exchange": exec.capabilities,
        "run": exec.run,
    })
}

fn finish(exec: &Exec, r: StepRecord, journal: bool) -> Result<StepRecord, EngineError> {
    if journal {
        journal_end(exec, &r)?;
    }
    report_line(&exec.printer, &r);
    Ok(r)
}

fn failed(step: &Step, attempts: u32, e: &StepError) -> StepRecord {
    let mut r = StepRecord::new(&step.id, &step.uses, StepStatus::Failed, "failed");
    r.error = Some(e.to_string());
    r.hint = e.hint();
    r.attempts = attempts;
    r
}

/// Decides, then runs or records, one step.
async fn run_step(
    exec: Arc<Exec>,
    step: Step,
    prior: Option<Prior>,
    needs: BTreeSet<String>,
    refs: BTreeSet<String>,
    upstream: HashMap<String, StepRecord>,
) -> Result<StepRecord, EngineError> {
    let skip = |why: String| StepRecord::new(&step.id, &step.uses, StepStatus::Skipped, why);
    if let Some(Prior::Done(r)) = &prior {
        let mut r = (**r).clone();
        r.status = StepStatus::Reused;
        r.attempts = 0;
        return finish(&exec, r, false);
    }
    for n in &needs {
        let st = upstream[n].status;
        // A failure the playbook declared tolerable (`on_error: continue`) does not stop the
        // steps that need it: `needs` then only orders them after it.
        let tolerated = st == StepStatus::Failed
            && exec
                .playbook
                .step(n)
                .is_some_and(|s| s.on_error == crate::playbook::model::OnError::Continue);
        if matches!(st, StepStatus::Failed | StepStatus::NotRun) && !tolerated {
            return finish(
                &exec,
                skip(format!("skipped: needs `{n}`, which {}", st_phrase(st))),
                true,
            );
        }
    }
    for d in &refs {
        let st = upstream[d].status;
        if !st.has_outputs() {
            return finish(
                &exec,
                skip(format!(
                    "skipped: uses outputs of `{d}`, which {}",
                    st_phrase(st)
                )),
                true,
            );
        }
    }
    let Some(kind) = exec.registry.get(&step.uses).cloned() else {
        let e = StepError::failed(format!("unknown step kind `{}`", step.uses));
        return finish(&exec, failed(&step, 0, &e), true);
    };
    let ctx = context(&exec, &upstream);
    if let Some(cond) = &step.condition {
        match exec.renderer.condition(cond, &ctx) {
            Ok(true) => {}
            Ok(false) => {
                let shown = match cond {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return finish(
                    &exec,
                    skip(format!("skipped: `if: {shown}` is false")),
                    true,
                );
            }
            Err(e) => {
                let e = StepError::with_hint(
                    format!("cannot evaluate `if`: {e}"),
                    "check the references in the step's `if:`",
                );
                return finish(&exec, failed(&step, 0, &e), true);
            }
        }
    }
    let args = match exec.renderer.resolve_map(&step.with, &ctx) {
        Ok(a) => a,
        Err(e) => {
            let e = StepError::with_hint(
                format!("cannot resolve arguments: {e}"),
                "check the templates in the step's `with:`",
            );
            return finish(&exec, failed(&step, 0, &e), true);
        }
    };
    for spec in kind.args() {
        if let Some(v) = args.get(spec.name) {
            if !v.is_null() && !validate::arg_type_accepts(spec.ty, v) {
                let e = StepError::BadArgument {
                    arg: spec.name.to_string(),
                    message: format!(
                        "must be {}, but resolved to {}",
                        validate::arg_type_name(spec.ty),
                        short(v)
                    ),
                };
                return finish(&exec, failed(&step, 0, &e), true);
            }
        } else if spec.required {
            let e = StepError::BadArgument {
                arg: spec.name.to_string(),
                message: "is required".into(),
            };
            return finish(&exec, failed(&step, 0, &e), true);
        }
    }
    let effect = kind.effect();
    let step_ctx = Arc::new(StepContext {
        step_id: step.id.clone(),
        rundir: exec.rundir.clone(),
        printer: exec.printer.clone(),
        services: exec.services.clone(),
        run: exec.run.clone(),
        dry_run: exec.dry_run,
    });
    if matches!(prior, Some(Prior::Failed | Prior::Stale)) && effect != Effect::Read {
        // What it was for may be achieved meanwhile (orders cancelled, key deleted): then the
        // step is done; if not, or when that cannot be told, it simply runs again.
        if let Ok(Some(outcome)) = kind.check_done(&step_ctx, &args).await {
            let why = if matches!(prior, Some(Prior::Stale)) {
                "in effect (checked again on resume, as a step it depends on ran again)"
            } else {
                "failed before, done now (checked on resume)"
            };
            let mut r = StepRecord::new(
                &step.id,
                &step.uses,
                StepStatus::Ok,
                format!("{why}: {}", outcome.summary),
            );
            r.outputs = outcome.outputs;
            r.artifacts = outcome.artifacts;
            return finish(&exec, r, true);
        }
    }
    if matches!(prior, Some(Prior::Interrupted)) && effect != Effect::Read {
        match kind.check_done(&step_ctx, &args).await {
            Ok(Some(outcome)) => {
                let mut r = StepRecord::new(
                    &step.id,
                    &step.uses,
                    StepStatus::Ok,
                    format!(
                        "already done before the interruption (checked on resume): {}",
                        outcome.summary
                    ),
                );
                r.outputs = outcome.outputs;
                r.artifacts = outcome.artifacts;
                return finish(&exec, r, true);
            }
            Ok(None) => {
                exec.journal.record(&Event::Note(
                    json!({"step": step.id, "note": "interrupted step had not taken effect; running it"}),
                ))?;
            }
            Err(e) => {
                let why = match e {
                    StepError::Undecidable(m) => m,
                    other => other.to_string(),
                };
                let e = StepError::with_hint(
                    format!(
                        "step `{}` was interrupted, and whether it took effect cannot be checked: {why}",
                        step.id
                    ),
                    format!(
                        "check by hand, then `{}` to run it again",
                        crate::output::respond_command([
                            "resume",
                            &exec.rundir.path().display().to_string(),
                            "--replay",
                            &step.id,
                        ])
                    ),
                );
                return finish(&exec, failed(&step, 0, &e), true);
            }
        }
    }
    exec.journal.record(&Event::StepStart(events::StepStart {
        step: step.id.clone(),
        uses: step.uses.clone(),
        effect,
        args: args.clone(),
        dry_run: exec.dry_run && effect != Effect::Read,
    }))?;
    if exec.dry_run && effect != Effect::Read {
        let r = if kind.simulable() {
            StepRecord::new(
                &step.id,
                &step.uses,
                StepStatus::DryRun,
                kind.describe(&args),
            )
        } else {
            StepRecord::new(
                &step.id,
                &step.uses,
                StepStatus::NotSimulable,
                format!(
                    "cannot be simulated; in a real run it would: {}",
                    kind.describe(&args)
                ),
            )
        };
        return finish(&exec, r, true);
    }
    exec.printer
        .status(&format!("[start] {} ({})", step.id, step.uses));
    let retry = step.retry.or(exec.playbook.defaults.retry);
    let base = retry.map(|r| r.backoff).unwrap_or(Duration::from_secs(1));
    let timeout = step.timeout.or(exec.playbook.defaults.timeout);
    // A kind that owns its waiting is never retried (a retry would multiply the wait), and
    // not cut off before its own limit plus room for its last request.
    let wait = kind.owns_wait(&args);
    let attempts_max = match wait {
        Some(_) => 1,
        None => retry.map(|r| r.attempts.max(1)).unwrap_or(1),
    };
    let timeout = match wait {
        Some(w) => Some((w + crate::steps::WAIT_GRACE).max(timeout.unwrap_or_default())),
        None => timeout,
    };
    let args = Arc::new(args);
    let mut n = 0u32;
    loop {
        n += 1;
        let result = attempt(kind.clone(), step_ctx.clone(), args.clone(), timeout).await;
        // Whether a failure may have left an effect behind (cut off mid-way).
        let mut cut_off = false;
        let (err, retryable) = match result {
            Ok(outcome) => {
                exec.journal
                    .record(&Event::StepAttempt(events::StepAttempt {
                        step: step.id.clone(),
                        n,
                        ok: true,
                        failure: None,
                    }))?;
                let mut r = StepRecord::new(&step.id, &step.uses, StepStatus::Ok, outcome.summary);
                r.outputs = outcome.outputs;
                r.artifacts = outcome.artifacts;
                r.attempts = n;
                return finish(&exec, r, true);
            }
            Err(AttemptError::Step(e)) => {
                // Reads are retried on any error, other steps on transient ones; an error
                // that cannot clear (a refused key, nothing at the API address) never is.
                let retryable = !e.is_permanent() && (effect == Effect::Read || e.is_retryable());
                (e, retryable)
            }
            Err(AttemptError::Timeout(d)) => (
                {
                    cut_off = true;
                    StepError::with_hint(
                        format!("timed out after {}", playbook::model::format_duration(d)),
                        "raise the step's `timeout:` or check the connection",
                    )
                },
                effect == Effect::Read,
            ),
            Err(AttemptError::Panic(msg)) => {
                cut_off = true;
                (
                    StepError::with_hint(
                        format!("step crashed: {msg}"),
                        "this is a bug in the step kind; the run can be resumed",
                    ),
                    false,
                )
            }
        };
        let again = retryable && n < attempts_max;
        let backoff = again.then(|| backoff_for(base, n));
        exec.journal
            .record(&Event::StepAttempt(events::StepAttempt {
                step: step.id.clone(),
                n,
                ok: false,
                failure: Some(events::AttemptFailure {
                    error: err.to_string(),
                    backoff_ms: backoff.map(|b| b.as_millis() as u64),
                }),
            }))?;
        match backoff {
            Some(b) => {
                exec.printer.status(&format!(
                    "[retry] {}: attempt {n} failed ({err}); retrying in {}",
                    step.id,
                    playbook::model::format_duration(b)
                ));
                tokio::time::sleep(b).await;
            }
            None => {
                let mut r = failed(&step, n, &err);
                r.effect_unknown = cut_off && effect != Effect::Read;
                r.stops_run = err.stops_run();
                return finish(&exec, r, true);
            }
        }
    }
}

/// Exponential backoff with up to 25% jitter: `base · 2^(n-1) · [1, 1.25)`.
fn backoff_for(base: Duration, n: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << (n - 1).min(16));
    let jitter = rand::thread_rng().gen_range(0.0..0.25);
    exp + exp.mul_f64(jitter)
}

fn st_phrase(st: StepStatus) -> &'static str {
    match st {
        StepStatus::Failed => "failed",
        StepStatus::NotRun => "did not run",
        StepStatus::Skipped => "was skipped",
        StepStatus::DryRun => "only ran as a dry run (no outputs)",
        StepStatus::NotSimulable => "cannot be simulated in a dry run (no outputs)",
        StepStatus::Ok | StepStatus::Reused => "finished",
        StepStatus::Pending => "has not finished",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

enum AttemptError {
    Step(StepError),
    Timeout(Duration),
    Panic(String),
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One attempt in its own task (a panic is caught as a `JoinError`), under the timeout.
async fn attempt(
    kind: Arc<dyn StepKind>,
    ctx: Arc<StepContext>,
    args: Arc<Map<String, Value>>,
    timeout: Option<Duration>,
) -> Result<StepOutcome, AttemptError> {
    let handle = tokio::spawn(async move { kind.run(&ctx, &args).await });
    let abort = handle.abort_handle();
    // The step's work stops with its attempt: when SIGINT/SIGTERM aborts the step's task, this
    // future is dropped, and the spawned task must not go on sending requests.
    let _stop_with_attempt = AbortOnDrop(abort.clone());
    let joined = match timeout {
        Some(d) => match tokio::time::timeout(d, handle).await {
            Ok(j) => j,
            Err(_) => {
                abort.abort();
                return Err(AttemptError::Timeout(d));
            }
        },
        None => handle.await,
    };
    match joined {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(AttemptError::Step(e)),
        Err(e) => Err(AttemptError::Panic(panic_text(e))),
    }
}

/// Reads the run's playbook copy (for resume without a path).
pub(crate) fn stored_playbook(dir: &Path) -> Result<String, EngineError> {
    let p = dir.join("playbook.yaml");
    std::fs::read_to_string(&p).map_err(|source| EngineError::Io { path: p, source })
}
