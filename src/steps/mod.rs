//! Step kinds: what a playbook step can `uses:`.
//!
//! Each kind declares its argument schema, the outputs templates may reference, and its
//! effect (read, write, destructive, notify). The effect decides what a dry run does (reads
//! run for real, the rest are only described) and what resume does with a step that started
//! but never recorded its end (reads re-run; others check their post-condition first).
//! The engine knows only this trait; the kinds live in one file per family.

pub mod bot_logs;
pub mod checklist;
pub mod evidence;
pub mod exchange;
pub mod flag;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

pub mod builtin;
pub mod manual;
pub mod notify;

use chrono::{DateTime, Utc};

use crate::exchange::watch::Watched;
use crate::exchange::{Exchange, KeyHistory};
use crate::output::Printer;
use crate::rundir::RunDir;

/// What running a step does to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// A failure that running the step again cannot change (the key it needs is dead).
    #[error("{message}")]
    Permanent {
        message: String,
        hint: Option<String>,
    },
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
    /// A failure running the step again cannot change.
    pub fn permanent(message: impl Into<String>, hint: impl Into<String>) -> Self {
        StepError::Permanent {
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
    /// Never worth another attempt, not even for a read: the retry policy does not apply
    /// (a dead or refused key, a wrong secret, nothing at the API address, an unwritable
    /// bundle, a bad argument).
    pub fn is_permanent(&self) -> bool {
        match self {
            StepError::Exchange(e) => e.is_permanent(),
            StepError::Io(_)
            | StepError::BadArgument { .. }
            | StepError::Permanent { .. }
            | StepError::Undecidable(_) => true,
            StepError::Failed { .. } => false,
        }
    }
    /// The whole run cannot go on (see [`crate::exchange::Error::stops_run`]): the engine
    /// starts no further step and the command exits 2.
    pub fn stops_run(&self) -> bool {
        matches!(self, StepError::Exchange(e) if e.stops_run())
    }
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StepError::Failed { hint, .. } | StepError::Permanent { hint, .. } => hint.clone(),
            StepError::Exchange(e) => Some(e.advice()),
            StepError::Undecidable(_) => Some("check the exchange by hand, then `respond resume RUN_DIR --replay STEP` to run it again".into()),
            _ => None,
        }
    }
}

/// The exchange credentials of a run: the (possibly leaked) key, and optionally a fresh
/// read-only key the run switches to once the old key dies (the race of issue 4).
///
/// Both keys are [`Watched`]: the session knows whether the exchange ever accepted each, so a
/// refusal of the old key reads as "revoked" only after it was seen working, in this run or in
/// the run being resumed ([`ExchangeSession::remember_accepted`]). A resume may have only the
/// read-only key ([`ExchangeSession::readonly_only`]): it then stands in for the old key's
/// reads, and what is known of the old key comes from the run's saved answers.
pub struct ExchangeSession {
    primary: Arc<dyn Exchange>,
    primary_watch: Arc<Watched>,
    readonly: Option<Arc<dyn Exchange>>,
    readonly_watch: Option<Arc<Watched>>,
    switched: AtomicBool,
    /// Set when the old key's credentials were not given: what the run's evidence shows of it.
    absent_old_key: Option<KeyHistory>,
}

/// How messages name the key under investigation.
pub const OLD_KEY_ROLE: &str = "the key under investigation";
/// How messages name the read-only key.
pub const READONLY_KEY_ROLE: &str = "the read-only key";

impl ExchangeSession {
    pub fn new(primary: Arc<dyn Exchange>, readonly: Option<Arc<dyn Exchange>>) -> Self {
        let primary_watch = Arc::new(Watched::new(primary, OLD_KEY_ROLE));
        let readonly_watch = readonly.map(|r| Arc::new(Watched::new(r, READONLY_KEY_ROLE)));
        ExchangeSession {
            primary: primary_watch.clone(),
            primary_watch,
            readonly: readonly_watch.clone().map(|r| r as Arc<dyn Exchange>),
            readonly_watch,
            switched: AtomicBool::new(false),
            absent_old_key: None,
        }
    }
    /// A session with only the read-only key (a resume after the old key was deleted): reads
    /// go to it from the start; `old_key` is what the run's saved answers show of the old key.
    pub fn readonly_only(readonly: Arc<dyn Exchange>, old_key: KeyHistory) -> Self {
        let watch = Arc::new(Watched::new(readonly, READONLY_KEY_ROLE));
        ExchangeSession {
            primary: watch.clone(),
            primary_watch: watch.clone(),
            readonly: Some(watch.clone()),
            readonly_watch: Some(watch),
            switched: AtomicBool::new(true),
            absent_old_key: Some(old_key),
        }
    }
    /// The key under investigation, whatever its state (the read-only key stands in when the
    /// old key's credentials were not given: see [`ExchangeSession::old_key_given`]).
    pub fn primary(&self) -> &Arc<dyn Exchange> {
        &self.primary
    }
    pub fn readonly(&self) -> Option<&Arc<dyn Exchange>> {
        self.readonly.as_ref()
    }
    /// Whether the old key's credentials were given (else only the read-only key is here).
    pub fn old_key_given(&self) -> bool {
        self.absent_old_key.is_none()
    }
    /// What the run's saved answers show of the old key, when its credentials were not given.
    pub fn absent_old_key(&self) -> Option<&KeyHistory> {
        self.absent_old_key.as_ref()
    }
    /// The old key, masked, even when only the read-only key is here.
    pub fn old_key_masked(&self) -> String {
        match &self.absent_old_key {
            Some(h) if !h.key.is_empty() => h.key.clone(),
            Some(_) => "(unknown)".into(),
            None => self.primary.key_id_masked(),
        }
    }
    /// Records what the run being resumed saw: the exchange accepted this key (masked) then.
    pub fn remember_accepted(&self, key_masked: &str, at: DateTime<Utc>) {
        for w in std::iter::once(&self.primary_watch).chain(self.readonly_watch.as_ref()) {
            if w.key_id_masked() == key_masked {
                w.remember_accepted(at);
            }
        }
    }
    /// When the exchange first accepted the old key, in this run or the one resumed.
    pub fn old_key_accepted_at(&self) -> Option<DateTime<Utc>> {
        match &self.absent_old_key {
            Some(h) => h.accepted.as_ref().map(|(t, _)| *t),
            None => self.primary_watch.accepted_at(),
        }
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

/// What a step kind is, declared once per kind (a `const`): its name, effect, description,
/// argument schema and outputs.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    /// The name used in `uses:` (`exchange.snapshot`).
    pub name: &'static str,
    pub effect: Effect,
    /// One sentence for `playbook show` and `--help`-like listings.
    pub description: &'static str,
    pub args: &'static [ArgSpec],
    /// Output names later steps may reference as `steps.<id>.outputs.<name>`.
    pub outputs: &'static [&'static str],
}

/// One kind of step.
#[async_trait]
pub trait StepKind: Send + Sync {
    /// The kind's declaration.
    fn info(&self) -> &'static StepInfo;
    /// The name used in `uses:` (`exchange.snapshot`).
    fn name(&self) -> &'static str {
        self.info().name
    }
    fn effect(&self) -> Effect {
        self.info().effect
    }
    /// One sentence for `playbook show` and `--help`-like listings.
    fn description(&self) -> &'static str {
        self.info().description
    }
    fn args(&self) -> &'static [ArgSpec] {
        self.info().args
    }
    /// Output names later steps may reference as `steps.<id>.outputs.<name>`.
    fn outputs(&self) -> &'static [&'static str] {
        self.info().outputs
    }
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
    /// A kind that waits for something outside the tool (a person deleting a key, the
    /// exchange refusing it) owns its waiting: it returns, for these arguments, the longest it
    /// waits. Such a step says what it waits for at least every [`WAIT_STATUS_EVERY`] (see
    /// [`WaitStatus`]) and ends with its own failure when its time is up. The engine never
    /// retries it (a retry would multiply the wait) and does not cut it off before that time
    /// plus [`WAIT_GRACE`] (or the step's `timeout:`, when longer).
    fn owns_wait(&self, _args: &Map<String, Value>) -> Option<Duration> {
        None
    }
}

/// How often a waiting step says what it waits for, terminal or not.
pub const WAIT_STATUS_EVERY: Duration = Duration::from_secs(30);
/// What the engine adds to a waiting step's own limit before cutting it off: room for its last
/// request to end.
pub const WAIT_GRACE: Duration = Duration::from_secs(30);

/// The status lines of a step that waits: what it waits for, how long so far and at most, and
/// how to stop. Plain lines (they go to logs and CI too), one at the start and one at least
/// every [`WAIT_STATUS_EVERY`] after, also while a single request hangs.
pub struct WaitStatus<'a> {
    ctx: &'a StepContext,
    what: String,
    max: Duration,
    started: tokio::time::Instant,
    next: tokio::time::Instant,
    detail: String,
}

impl<'a> WaitStatus<'a> {
    /// Starts the clock and prints the first line. `what` completes "waiting for …".
    pub fn start(ctx: &'a StepContext, what: impl Into<String>, max: Duration) -> Self {
        let now = tokio::time::Instant::now();
        let mut w = WaitStatus {
            ctx,
            what: what.into(),
            max,
            started: now,
            next: now,
            detail: String::new(),
        };
        w.print();
        w
    }

    /// What the last look found (`12 polls, the key still works`), shown in the next line.
    pub fn set_detail(&mut self, detail: impl Into<String>) {
        self.detail = detail.into();
    }

    /// How long the wait has lasted.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs `fut` to its end, printing a line whenever one is due meanwhile.
    pub async fn during<F: Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tokio::time::sleep_until(self.next) => self.print(),
            }
        }
    }

    fn print(&mut self) {
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!("; {}", self.detail)
        };
        // What follows a Ctrl-C: `respond resume DIR`, unless the run cannot be resumed (a
        // drill), which says so.
        let after = crate::engine::interrupt::resume_line().unwrap_or_else(|| {
            crate::engine::interrupt::AfterStop {
                command: crate::output::respond_command([
                    "resume",
                    &self.ctx.rundir.path().display().to_string(),
                ]),
                resumes: true,
            }
        });
        let stop = if after.resumes {
            format!("To stop: Ctrl-C, then `{}`", after.command)
        } else {
            "To stop: Ctrl-C (a drill cannot be resumed)".to_string()
        };
        self.ctx.printer.status(&format!(
            "[{}] waiting for {}: {} so far, at most {}{detail}. {stop}",
            self.ctx.step_id,
            self.what,
            clock(self.started.elapsed()),
            clock(self.max),
        ));
        self.next = tokio::time::Instant::now() + WAIT_STATUS_EVERY;
    }
}

/// `45s`, `4m05s`, `1h02m`: a wait's length for people.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
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
