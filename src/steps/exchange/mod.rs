//! Exchange step kinds: containment (snapshot, permissions, cancel, revoke, verify) and
//! investigation (history and fills export), plus the shared pieces they all need.
//!
//! Every kind speaks only the [`Exchange`] trait, so the same steps drive every registered
//! adapter; differences are read from [`crate::exchange::Capabilities`] and refusals are told
//! apart by their [`crate::exchange::ErrorKind`], never by an exchange's error names.
//!
//! The one subtle rule lives here, in [`Race`]: reads go through `session.reader()`. When a read
//! fails because the old key died (the user deleted it while the tool was working), the session
//! is told (`primary_died`), and either the read is retried with the fresh read-only key, or the
//! step stops with the exact command that resumes it. Whatever was gathered before is already
//! on disk (raw responses by the adapter, state files by the steps), so nothing is lost.

mod args;
mod contain;
mod export;
mod export_state;
mod records;
mod scan;
mod snapshot;

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::exchange::{Error as ExError, Exchange};
use crate::steps::{ExchangeSession, Registry, StepContext, StepError};

pub use args::parse_duration;
pub(crate) use args::{
    boolean as arg_boolean, integer as arg_integer, string_list as arg_string_list,
};
pub use contain::{CancelOpenOrders, CancelPendingWithdrawals, RevokeKey, VerifyKeyRevoked};
pub use export::{ExportFills, ExportHistory};
pub(crate) use snapshot::{is_withdraw_scope, probe_outputs};
pub use snapshot::{ProbePermissions, Snapshot};

/// Registers every exchange step kind and `checklist.replacement`.
pub fn register_exchange(reg: &mut Registry) {
    reg.register(Arc::new(Snapshot));
    reg.register(Arc::new(ProbePermissions));
    reg.register(Arc::new(CancelOpenOrders));
    reg.register(Arc::new(CancelPendingWithdrawals));
    reg.register(Arc::new(RevokeKey));
    reg.register(Arc::new(VerifyKeyRevoked));
    reg.register(Arc::new(ExportHistory));
    reg.register(Arc::new(ExportFills));
    reg.register(Arc::new(crate::steps::checklist::ReplacementChecklist));
}

/// Why a read through [`Race`] failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The old key died and no read-only key was given.
    PrimaryDead,
    /// The read-only key died too.
    ReadonlyDead(ExError),
    /// The run cannot go on (a key the exchange never accepted): see
    /// [`ExError::stops_run`].
    Stop(ExError),
    /// Any other failure of this one read.
    Other(ExError),
}

/// Reads with the key-death fallback of the race (issue 4): see the module doc.
pub(crate) struct Race<'a> {
    ctx: &'a StepContext,
    session: &'a ExchangeSession,
    /// When this step switched to the read-only key.
    pub switched_at: Option<DateTime<Utc>>,
}

impl<'a> Race<'a> {
    pub fn new(ctx: &'a StepContext) -> Result<Self, StepError> {
        Ok(Race {
            ctx,
            session: ctx.exchange()?,
            switched_at: None,
        })
    }

    pub fn session(&self) -> &'a ExchangeSession {
        self.session
    }

    /// Whether reads now go to the read-only key.
    pub fn on_readonly(&self) -> bool {
        self.session.switched() && self.session.readonly().is_some()
    }

    /// The reader's rate-limit budget for a progress message (empty when unknown).
    pub fn budget(&self) -> String {
        self.session
            .reader()
            .budget_status()
            .map(|b| format!(", rate limit {b}"))
            .unwrap_or_default()
    }

    /// Runs one read with the current reader; on key death switches keys once and retries.
    pub async fn read<T, F, Fut>(&mut self, f: F) -> Result<T, ReadError>
    where
        F: Fn(Arc<dyn Exchange>) -> Fut,
        Fut: Future<Output = crate::exchange::Result<T>>,
    {
        loop {
            let on_readonly = self.on_readonly();
            match f(self.session.reader()).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_key_dead() => {
                    if on_readonly {
                        return Err(ReadError::ReadonlyDead(e));
                    }
                    if self.session.primary_died() {
                        let now = crate::time::now();
                        self.switched_at = Some(now);
                        self.ctx.printer.warn(&format!(
                            "[{}] the old key {} stopped working at {} (deleted: good); continuing with the read-only key {}",
                            self.ctx.step_id,
                            self.session.primary().key_id_masked(),
                            crate::engine::journal::ts(now),
                            self.session.reader().key_id_masked()
                        ));
                        continue;
                    }
                    return Err(ReadError::PrimaryDead);
                }
                Err(e) if e.stops_run() => return Err(ReadError::Stop(e)),
                Err(e) => return Err(ReadError::Other(e)),
            }
        }
    }

    /// Turns a fatal read error into the step's failure; `task` names what is unfinished.
    pub fn fail(&self, err: ReadError, task: &str) -> StepError {
        match err {
            ReadError::PrimaryDead => key_dead_failure(self.ctx, task),
            ReadError::ReadonlyDead(e) => StepError::permanent(
                format!(
                    "the read-only key {} stopped working too ({e})",
                    self.session.reader().key_id_masked()
                ),
                format!(
                    "create another read-only key (view scopes only) and run `{}`",
                    crate::output::respond_command([
                        "resume",
                        &self.ctx.rundir.path().display().to_string()
                    ])
                ),
            ),
            ReadError::Other(e) | ReadError::Stop(e) => StepError::Exchange(e),
        }
    }
}

/// The environment-variable prefix of an exchange's credentials (its descriptor's).
pub(crate) fn env_prefix(ctx: &StepContext) -> String {
    ctx.services
        .exchange
        .as_ref()
        .map(|s| {
            let name = &s.primary().capabilities().name;
            crate::exchange::registry::get(name)
                .map(|d| d.env_prefix.to_string())
                .unwrap_or_else(|| name.to_uppercase())
        })
        .unwrap_or_else(|| "EXCHANGE".into())
}

/// The exact failure a step reports when the old key died and no read-only key exists.
pub fn key_dead_failure(ctx: &StepContext, task: &str) -> StepError {
    let ex = env_prefix(ctx);
    let dir = ctx.rundir.path().display();
    let cmd = crate::output::shell_command([
        format!("{ex}_READONLY_ACCESS_KEY=…"),
        format!("{ex}_READONLY_SECRET_KEY=…"),
        "respond".into(),
        "resume".into(),
        dir.to_string(),
    ]);
    StepError::permanent(
        format!(
            "the old key stopped working (it was deleted: good). To finish the {task}, create a read-only key (view scopes only) and run: {cmd}"
        ),
        format!("everything gathered so far is kept in {dir}; the resume continues where this step stopped"),
    )
}

/// Whether an error says the key lacks the permission for the call.
pub(crate) fn is_out_of_scope(e: &ExError) -> bool {
    e.is_out_of_scope()
}

/// UTC with milliseconds and `Z`, as everywhere in the bundle.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    crate::engine::journal::ts(t)
}

/// A record that could not be serialized, as a step error.
pub(crate) fn serialize_error(e: serde_json::Error) -> StepError {
    StepError::failed(format!("cannot serialize: {e}"))
}

/// Serializes to pretty JSON for a small artifact (a snapshot, a state, a report); the lists
/// that grow with the history use [`records::to_records_json`].
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StepError> {
    serde_json::to_vec_pretty(v).map_err(serialize_error)
}
