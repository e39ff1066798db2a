//! The playbook engine: runs steps as a DAG with retries, timeouts and `on_error`, journals
//! every transition (hash-chained), supports dry runs and resumes interrupted runs.
//!
//! [`start`] begins a run in a fresh run directory, [`resume`] continues one from its
//! journal. Both return a [`RunReport`]: a failed step is a recorded outcome, never an `Err`;
//! `Err` ([`EngineError`]) means the run could not be carried out at all (invalid playbook,
//! bad input, journal I/O, a changed playbook on resume) or was stopped by SIGINT/SIGTERM
//! ([`interrupt`]: the journal then ends with `run_interrupted`). The caller maps the report to an
//! exit code (1 when [`RunReport::ok`] is false).

pub mod events;
pub mod interrupt;
pub mod journal;
pub mod resume;
pub mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

pub use resume::{resume, ResumeOptions};
pub use run::start;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Where the playbook came from (shown and journaled; `embedded:NAME` for built-ins).
    pub playbook_path: PathBuf,
    pub playbook_source: String,
    /// Inputs given by the user (`--input k=v` and command flags), as text; typed by the
    /// playbook's declarations.
    pub inputs: BTreeMap<String, String>,
    /// The adapter's capabilities (`serde_json::to_value(exchange.capabilities())`), or `{}`.
    pub capabilities: Value,
    pub dry_run: bool,
}

pub use events::StepStatus;

/// One step's outcome in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub id: String,
    pub uses: String,
    pub status: StepStatus,
    pub summary: String,
    pub error: Option<String>,
    pub hint: Option<String>,
    /// Attempts made in this session (0 when it did not run).
    pub attempts: u32,
    pub outputs: Map<String, Value>,
    pub artifacts: Vec<String>,
    /// A non-read step was cut off (timeout, crash) and may have taken effect: resume checks
    /// its post-condition before running it again.
    pub effect_unknown: bool,
    /// Its failure stopped the whole run (see [`RunReport::stopped`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stops_run: bool,
}

impl StepRecord {
    fn new(id: &str, uses: &str, status: StepStatus, summary: impl Into<String>) -> Self {
        StepRecord {
            id: id.to_string(),
            uses: uses.to_string(),
            status,
            summary: summary.into(),
            error: None,
            hint: None,
            attempts: 0,
            outputs: Map::new(),
            artifacts: vec![],
            effect_unknown: false,
            stops_run: false,
        }
    }
}

/// The result of a run (or of one resumed session of it), steps in playbook order.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub dir: PathBuf,
    pub playbook: String,
    pub dry_run: bool,
    pub steps: Vec<StepRecord>,
    /// No step failed.
    pub ok: bool,
    /// A step failed in a way no other step can get past (the exchange never accepted the
    /// key): the run stopped there, and the command exits 2 (bad input, not a run failure).
    pub stopped: Option<RunStop>,
}

/// Why a run stopped early as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RunStop {
    pub step: String,
    pub message: String,
    pub hint: Option<String>,
}

impl RunReport {
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.id == id)
    }
    pub fn failed(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.status == StepStatus::Failed)
    }

    /// 0 when no step failed, 2 when the run stopped on bad input (a key never accepted),
    /// 1 otherwise.
    pub fn exit_code(&self) -> crate::exit::Code {
        if self.stopped.is_some() {
            crate::exit::Code::Usage
        } else if self.ok {
            crate::exit::Code::Ok
        } else {
            crate::exit::Code::RunFailed
        }
    }

    /// The end-of-run summary: one line per step on stdout, and the report as the JSON summary
    /// in `--json` mode.
    pub fn print(&self, printer: &crate::output::Printer) {
        printer.out(&format!(
            "{} {}{}: {}",
            if self.ok { "done" } else { "FAILED" },
            self.playbook,
            if self.dry_run { " (dry run)" } else { "" },
            self.dir.display()
        ));
        for s in &self.steps {
            let mut line = format!("  {:<14} {:<24} {}", s.status.as_str(), s.id, s.summary);
            if let Some(e) = &s.error {
                line.push_str(&format!(" — {e}"));
            }
            printer.out(&line);
            if let Some(h) = &s.hint {
                printer.out(&format!("  {:<14} {:<24} hint: {h}", "", ""));
            }
        }
        if let Some(stop) = &self.stopped {
            printer.out("");
            printer.out(&format!("STOPPED at `{}`: {}", stop.step, stop.message));
            if let Some(h) = &stop.hint {
                let dir = self.dir.display().to_string();
                printer.out(&format!("  next: {}", h.replace("RUN_DIR", &dir)));
            }
        }
        if let Ok(v) = serde_json::to_value(self) {
            printer.summary(&v);
        }
    }
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Playbook(#[from] crate::playbook::Error),
    #[error("input `{name}`: {message}")]
    Input {
        name: String,
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("run directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a resumable run: {1}")]
    NotARun(PathBuf, String),
    #[error("the playbook changed since the run started:\n{diff}")]
    PlaybookChanged { diff: String },
    #[error("`--replay {0}`: the playbook has no step `{0}`")]
    UnknownReplay(String),
    #[error("interrupted by {}{}: the journal is flushed and ends with `run_interrupted`", .signal.describe(), stopped_phrase(.stopped))]
    Interrupted {
        signal: interrupt::Signal,
        /// Steps that were running and were stopped.
        stopped: Vec<String>,
    },
}

fn stopped_phrase(stopped: &[String]) -> String {
    if stopped.is_empty() {
        String::new()
    } else {
        format!(" (stopped: {})", stopped.join(", "))
    }
}

impl EngineError {
    /// What the user should do.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Playbook(_) => Some("fix the playbook; `respond playbook check FILE` lists every problem".into()),
            EngineError::Input { hint, .. } => hint.clone(),
            EngineError::PlaybookChanged { .. } => Some("resume with the original playbook, or pass `--accept-changed-playbook` to continue with the new one".into()),
            EngineError::Journal(_) => Some("the journal is damaged; `respond evidence verify RUN_DIR` shows where".into()),
            _ => None,
        }
    }
    /// Usage-class errors (exit 2) versus run failures (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EngineError::Playbook(_)
                | EngineError::Input { .. }
                | EngineError::PlaybookChanged { .. }
                | EngineError::UnknownReplay(_)
                | EngineError::NotARun(..)
        )
    }
}

impl From<crate::playbook::inputs::InputError> for EngineError {
    fn from(e: crate::playbook::inputs::InputError) -> Self {
        EngineError::Input {
            name: e.name,
            message: e.message,
            hint: e.hint,
        }
    }
}

/// Parses repeated `--input KEY=VALUE` flags. Values are never echoed in errors (they may be
/// secrets); a repeated key is refused.
pub fn parse_input_flags(flags: &[String]) -> Result<BTreeMap<String, String>, EngineError> {
    let mut out = BTreeMap::new();
    for (n, f) in flags.iter().enumerate() {
        let Some((k, v)) = f.split_once('=') else {
            return Err(EngineError::Input {
                name: format!("#{}", n + 1),
                message: "`--input` expects KEY=VALUE".into(),
                hint: Some("for example `--input rotate_days=60`".into()),
            });
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(EngineError::Input {
                name: format!("#{}", n + 1),
                message: "`--input` expects KEY=VALUE (the key is empty)".into(),
                hint: Some("for example `--input rotate_days=60`".into()),
            });
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(EngineError::Input {
                name: k.to_string(),
                message: "given more than once".into(),
                hint: Some("give each input once".into()),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_flags() {
        let m = parse_input_flags(&["a=1".into(), "url=http://x/?q=a=b".into()]).unwrap();
        assert_eq!(m["url"], "http://x/?q=a=b");
        let e = parse_input_flags(&["secretvalue".into()]).unwrap_err();
        assert!(!e.to_string().contains("secretvalue"));
        assert!(parse_input_flags(&["a=1".into(), "a=2".into()]).is_err());
    }
}
