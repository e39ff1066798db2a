//! Step kinds: what a playbook step can `uses:`.
//!
//! Each kind declares its argument schema, the outputs templates may reference, and its
//! effect (read, write, destructive, notify). The effect decides what a dry run does (reads
//! run for real, the rest are only described) and what resume does with a step that started
//! but never recorded its end (reads re-run; others check their post-condition first).
//! The engine knows only this trait; the kinds live in one file per family.

pub mod checklist;
pub mod exchange;
pub mod investigate;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

pub mod builtin;
pub mod manual;
pub mod notify;

use crate::exchange::Exchange;
use crate::output::Printer;
use crate::rundir::RunDir;

/// What running a step does to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Changes nothing outside the run's own bundle (exchange reads, parsing, writing the
    /// bundle's files); safe to repeat and to run in a dry run.
    Read,
    /// Changes state outside the bundle in a recoverable way (files elsewhere, configuration);
    /// places nothing on the exchange.
    Write,
    /// Changes exchange state irreversibly (cancels orders, withdrawals).
    Destructive,
    /// Tells someone (webhook, a person).
    Notify,
}

/// Argument types a step kind can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgType {
    String,
    Integer,
    Number,
    Boolean,
    /// A duration such as `30s`, `5m`, `7d`.
    Duration,
    List,
    Map,
    Any,
}

/// One declared argument.
#[derive(Debug, Clone, Serialize)]
pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
    pub description: &'static str,
}

/// The result of a successful step: outputs (templatable by later steps), a one-line
/// summary for the user, and the bundle files it wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepOutcome {
    pub outputs: Map<String, Value>,
    pub summary: String,
    pub artifacts: Vec<String>,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Exchange(#[from] crate::exchange::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad argument `{arg}`: {message}")]
    BadArgument { arg: String, message: String },
    /// The post-condition of an interrupted step cannot be checked.
    #[error("cannot tell whether the interrupted step took effect: {0}")]
    Undecidable(String),
}

impl StepError {
    pub fn failed(message: impl Into<String>) -> Self {
        StepError::Failed {
            message: message.into(),
            hint: None,
        }
    }
    pub fn with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        StepError::Failed {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    /// Worth retrying under the step's retry policy.
    pub fn is_retryable(&self) -> bool {
        match self {
            StepError::Exchange(e) => e.is_retryable(),
            StepError::Io(_) => false,
            _ => false,
        }
    }
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StepError::Failed { hint, .. } => hint.clone(),
            StepError::Exchange(e) => Some(e.advice()),
            StepError::Undecidable(_) => Some("check the exchange by hand, then `respond resume RUN_DIR --replay STEP` to run it again".into()),
            _ => None,
        }
    }
}

/// The exchange credentials of a run: the (possibly leaked) key, and optionally a fresh
/// read-only key the run switches to once the old key dies (the race of issue 4).
pub struct ExchangeSession {
    primary: Arc<dyn Exchange>,
    readonly: Option<Arc<dyn Exchange>>,
    switched: AtomicBool,
}

impl ExchangeSession {
    pub fn new(primary: Arc<dyn Exchange>, readonly: Option<Arc<dyn Exchange>>) -> Self {
        ExchangeSession {
            primary,
            readonly,
            switched: AtomicBool::new(false),
        }
    }
    /// The key under investigation, whatever its state.
    pub fn primary(&self) -> &Arc<dyn Exchange> {
        &self.primary
    }
    pub fn readonly(&self) -> Option<&Arc<dyn Exchange>> {
        self.readonly.as_ref()
    }
    /// The key reads should use now.
    pub fn reader(&self) -> Arc<dyn Exchange> {
        if self.switched.load(Ordering::SeqCst) {
            if let Some(r) = &self.readonly {
                return r.clone();
            }
        }
        self.primary.clone()
    }
    /// Marks the primary key dead; returns whether a read-only key is there to take over.
    pub fn primary_died(&self) -> bool {
        self.switched.store(true, Ordering::SeqCst);
        self.readonly.is_some()
    }
    pub fn switched(&self) -> bool {
        self.switched.load(Ordering::SeqCst)
    }
}

/// Run-wide facts and services a step may use.
pub struct Services {
    pub exchange: Option<ExchangeSession>,
    /// Bot logs given on the command line, and how to read them.
    pub bot_logs: crate::cli::BotLogArgs,
    /// A person is at a terminal and may be asked to confirm.
    pub interactive: bool,
    /// `--yes`: never wait for confirmation.
    pub assume_yes: bool,
}

/// What a running step sees.
pub struct StepContext {
    pub step_id: String,
    pub rundir: RunDir,
    pub printer: Printer,
    pub services: Arc<Services>,
    /// The run's facts (`run.id`, `run.started_at`, `run.dir`), as templates see them.
    pub run: Value,
    /// Whether this attempt is part of a dry run (only read steps run in a dry run).
    pub dry_run: bool,
}

impl StepContext {
    /// The run's exchange session, or a clear failure when the playbook needs one and the
    /// command gave none.
    pub fn exchange(&self) -> Result<&ExchangeSession, StepError> {
        self.services.exchange.as_ref().ok_or_else(|| {
            StepError::failed("this step needs an exchange connection, and the run has none")
        })
    }
}

/// One kind of step.
#[async_trait]
pub trait StepKind: Send + Sync {
    /// The name used in `uses:` (`exchange.snapshot`).
    fn name(&self) -> &'static str;
    fn effect(&self) -> Effect;
    /// One sentence for `playbook show` and `--help`-like listings.
    fn description(&self) -> &'static str;
    fn args(&self) -> &'static [ArgSpec];
    /// Output names later steps may reference as `steps.<id>.outputs.<name>`.
    fn outputs(&self) -> &'static [&'static str];
    /// Runs the step.
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError>;
    /// For resume: a non-read step started but never recorded its end. Check whether it took
    /// effect: `Ok(Some(outcome))` done (do not repeat), `Ok(None)` not done (safe to run),
    /// `Err` cannot tell (the user must `--replay` it).
    async fn check_done(
        &self,
        _ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        Err(StepError::Undecidable(format!(
            "{} has no post-condition check",
            self.name()
        )))
    }
    /// For a dry run: what the step would do with these (fully resolved) arguments.
    fn describe(&self, args: &Map<String, Value>) -> String {
        format!(
            "would run {} with {}",
            self.name(),
            Value::Object(args.clone())
        )
    }
    /// Whether a dry run can describe this step faithfully.
    fn simulable(&self) -> bool {
        true
    }
    /// Whether the step reads everything the run gathered (every raw response in the bundle),
    /// not only its own arguments: then it depends on every step that is not downstream of it,
    /// and a resume that runs any of those again runs it again too.
    fn reads_whole_bundle(&self) -> bool {
        false
    }
}

/// The step kinds a playbook may use, by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StepKind>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }
    pub fn register(&mut self, kind: Arc<dyn StepKind>) {
        self.kinds.insert(kind.name(), kind);
    }
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepKind>> {
        self.kinds.get(name)
    }
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn StepKind>> {
        self.kinds.values()
    }
}
