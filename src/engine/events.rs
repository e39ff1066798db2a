//! What the journal records, typed: one [`Event`] per kind of entry, and the one
//! [`StepStatus`] the engine, the journal and the reports share.
//!
//! Each variant serializes as the entry's `event` name and its `data` object, with the fields
//! in the order the journal has always written them, so typed events give the same bytes on
//! disk as before they were typed (a test pins them). Readers decode an [`Entry`] with
//! [`Entry::decode`] and get `None` for an event this build does not know (a later version's),
//! never an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::journal::Entry;
use crate::steps::Effect;

/// How a step ended (or, for [`StepStatus::Pending`], that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Failed,
    Skipped,
    /// A dry run described it instead of running it.
    DryRun,
    /// A dry run cannot describe it faithfully; it did not run.
    NotSimulable,
    /// The run was aborted before it started.
    NotRun,
    /// Finished in an earlier session of this run; its recorded outputs were reused.
    Reused,
    /// Started and not ended (yet): what a reader of the journal sees of a step in flight or
    /// interrupted. Never journaled as an end.
    Pending,
}

impl StepStatus {
    /// The name the journal writes.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::DryRun => "dry_run",
            StepStatus::NotSimulable => "not_simulable",
            StepStatus::NotRun => "not_run",
            StepStatus::Reused => "reused",
            StepStatus::Pending => "pending",
        }
    }

    /// Whether its outputs exist for later steps.
    pub fn has_outputs(self) -> bool {
        matches!(self, StepStatus::Ok | StepStatus::Reused)
    }

    /// The outcome as the reports show it: reused is ok, a dry run is a dry run whether or
    /// not it could be described, a step that never ran was skipped.
    pub fn report_label(self) -> &'static str {
        match self {
            StepStatus::Ok | StepStatus::Reused => "ok",
            StepStatus::Failed => "failed",
            StepStatus::DryRun | StepStatus::NotSimulable => "dry-run",
            StepStatus::Skipped | StepStatus::NotRun => "skipped",
            StepStatus::Pending => "pending",
        }
    }
}

/// The playbook a run was started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookRef {
    pub name: String,
    /// A file path, or `embedded:<name>`.
    pub path: String,
    pub sha256: String,
    /// The hash of the run's copy (`playbook.yaml`) when it differs from `sha256`: the copy is
    /// written through the secret filter, so a secret that appears in the playbook's text is
    /// masked there. Resuming from that copy is not a change of playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_sha256: Option<String>,
}

/// `run_start`: the first entry of every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub version: String,
    /// `id`, `started_at`, `dir`, as templates see them.
    pub run: Value,
    pub playbook: PlaybookRef,
    /// Resolved inputs, secret ones by name only.
    pub inputs: Value,
    /// The adapter's capabilities (its `name` is the exchange's registry name), or `{}`.
    pub exchange: Value,
    pub dry_run: bool,
}

/// `step_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStart {
    pub step: String,
    pub uses: String,
    pub effect: Effect,
    /// The fully resolved arguments.
    pub args: Map<String, Value>,
    /// Described, not executed.
    pub dry_run: bool,
}

/// Why an attempt failed, and when the next one comes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptFailure {
    pub error: String,
    /// `None` when no attempt follows.
    pub backoff_ms: Option<u64>,
}

/// `step_attempt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAttempt {
    pub step: String,
    pub n: u32,
    pub ok: bool,
    /// Present on failed attempts only.
    #[serde(flatten)]
    pub failure: Option<AttemptFailure>,
}

/// `step_end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEnd {
    pub step: String,
    pub uses: String,
    pub status: StepStatus,
    pub summary: String,
    pub error: Option<String>,
    pub hint: Option<String>,
    pub attempts: u32,
    pub outputs: Map<String, Value>,
    pub artifacts: Vec<String>,
    /// Cut off mid-way (timeout, crash): it may have had an effect.
    pub effect_unknown: bool,
    /// Its failure stopped the whole run (a key the exchange never accepted).
    #[serde(default)]
    pub stops_run: bool,
}

/// `run_end`: the playbook finished (a later session may add more after a resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEnd {
    pub ok: bool,
    pub aborted_after: Option<String>,
    /// Steps per status.
    pub counts: BTreeMap<String, usize>,
    /// Why the run stopped as a whole, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<super::RunStop>,
}

/// `run_interrupted`: SIGINT/SIGTERM stopped the run; the steps that were running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInterrupted {
    /// `SIGINT`, `SIGTERM`.
    pub signal: String,
    pub stopped_steps: Vec<String>,
}

/// `resume`: a later session continues the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    pub version: String,
    pub torn_bytes_removed: Option<usize>,
    pub replay: Vec<String>,
    pub playbook_changed: bool,
    pub playbook_sha256: String,
    pub inputs: Value,
    /// Steps that run again because a step they depend on does: step → the cause.
    #[serde(default)]
    pub rerun: BTreeMap<String, String>,
}

/// `analyze`: `respond analyze` rewrote the reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analyze {
    /// Bot logs added by this analysis.
    pub bot_logs: Vec<String>,
    pub files: Vec<String>,
    pub summary: Map<String, Value>,
}

/// `drill_score`: a drill scored the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillScore {
    pub files: Vec<String>,
    pub scorecard: Value,
}

/// One journal entry's event and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum Event {
    RunStart(RunStart),
    StepStart(StepStart),
    StepAttempt(StepAttempt),
    StepEnd(StepEnd),
    RunEnd(RunEnd),
    RunInterrupted(RunInterrupted),
    Resume(Resume),
    /// Free-form remarks (`{"step", "note"}`).
    Note(Value),
    Analyze(Analyze),
    DrillScore(DrillScore),
    /// A sealed bundle was opened again to be written (`{"by", "version", "verified",
    /// "sealed_entries"}`).
    Reopen(Value),
    /// This bundle is a copy of another (`respond analyze RUN_DIR --out DIR`): where from, what
    /// did not match, what was set aside.
    Copy(Value),
    /// `respond evidence timestamp` stored an RFC 3161 token over the sealed manifest
    /// (`{"index", "tsa_url", "tsa", "gen_time", "serial", "manifest_sha256", "files"}`).
    Timestamp(Value),
}

impl Event {
    /// The entry's `event` name and `data` object.
    pub fn parts(&self) -> (String, Value) {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => {
                let name = match m.remove("event") {
                    Some(Value::String(s)) => s,
                    _ => String::new(),
                };
                (name, m.remove("data").unwrap_or(Value::Null))
            }
            _ => (String::new(), Value::Null),
        }
    }
}

impl Entry {
    /// The typed event, or `None` for an event (or a shape) this build does not know.
    pub fn decode(&self) -> Option<Event> {
        let mut m = Map::new();
        m.insert("event".into(), Value::String(self.event.clone()));
        m.insert("data".into(), self.data.clone());
        serde_json::from_value(Value::Object(m)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Typed events write exactly the bytes the untyped `json!` objects wrote.
    #[test]
    fn typed_events_keep_the_journal_bytes() {
        let same = |ev: Event, name: &str, data: Value| {
            let (n, d) = ev.parts();
            assert_eq!(n, name);
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                serde_json::to_string(&data).unwrap()
            );
        };
        same(
            Event::StepAttempt(StepAttempt {
                step: "a".into(),
                n: 1,
                ok: true,
                failure: None,
            }),
            "step_attempt",
            json!({"step": "a", "n": 1, "ok": true}),
        );
        same(
            Event::StepAttempt(StepAttempt {
                step: "a".into(),
                n: 2,
                ok: false,
                failure: Some(AttemptFailure {
                    error: "boom".into(),
                    backoff_ms: None,
                }),
            }),
            "step_attempt",
            json!({"step": "a", "n": 2, "ok": false, "error": "boom", "backoff_ms": null}),
        );
        same(
            Event::StepEnd(StepEnd {
                step: "a".into(),
                uses: "x.y".into(),
                status: StepStatus::DryRun,
                summary: "s".into(),
                error: None,
                hint: Some("h".into()),
                attempts: 0,
                outputs: Map::new(),
                artifacts: vec!["f".into()],
                effect_unknown: false,
                stops_run: true,
            }),
            "step_end",
            json!({"step": "a", "uses": "x.y", "status": "dry_run", "summary": "s", "error": null,
                   "hint": "h", "attempts": 0, "outputs": {}, "artifacts": ["f"],
                   "effect_unknown": false, "stops_run": true}),
        );
        same(
            Event::StepStart(StepStart {
                step: "a".into(),
                uses: "x.y".into(),
                effect: Effect::Destructive,
                args: Map::new(),
                dry_run: true,
            }),
            "step_start",
            json!({"step": "a", "uses": "x.y", "effect": "destructive", "args": {}, "dry_run": true}),
        );
        same(
            Event::RunEnd(RunEnd {
                ok: true,
                aborted_after: None,
                counts: [("ok".to_string(), 3)].into_iter().collect(),
                stopped: None,
            }),
            "run_end",
            json!({"ok": true, "aborted_after": null, "counts": {"ok": 3}}),
        );
        let stop = super::super::RunStop {
            step: "s".into(),
            message: "m".into(),
            hint: None,
        };
        let mut end = json!({"ok": false, "aborted_after": "s", "counts": {"failed": 1}});
        end["stopped"] = json!(stop);
        same(
            Event::RunEnd(RunEnd {
                ok: false,
                aborted_after: Some("s".into()),
                counts: [("failed".to_string(), 1)].into_iter().collect(),
                stopped: Some(stop.clone()),
            }),
            "run_end",
            end,
        );
        same(
            Event::RunInterrupted(RunInterrupted {
                signal: "SIGINT".into(),
                stopped_steps: vec!["a".into()],
            }),
            "run_interrupted",
            json!({"signal": "SIGINT", "stopped_steps": ["a"]}),
        );
        same(
            Event::Note(json!({"step": "a", "note": "n"})),
            "note",
            json!({"step": "a", "note": "n"}),
        );
    }

    #[test]
    fn entries_decode_and_unknown_events_are_none() {
        let entry = |event: &str, data: Value| Entry {
            seq: 1,
            ts: String::new(),
            event: event.into(),
            data,
            prev: String::new(),
            hash: String::new(),
        };
        let e = entry("step_attempt", json!({"step": "a", "n": 1, "ok": true}));
        match e.decode() {
            Some(Event::StepAttempt(a)) => assert!(a.ok && a.failure.is_none()),
            other => panic!("{other:?}"),
        }
        assert_eq!(entry("from_the_future", json!({})).decode(), None);
    }
}
