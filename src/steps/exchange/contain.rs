//! Containment: cancel open orders and pending withdrawals with the old key, get the key
//! deleted (by API where the adapter can, else a guided manual step), and verify the deletion
//! by watching the old key fail.
//!
//! Cancels always use the old (primary) key: a read-only key cannot cancel. When the old key
//! dies mid-way the attacker lost access, but orders still resting on the book stay there, so
//! the step says exactly which ones to cancel in the web interface.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{args, is_out_of_scope, to_json, ts};
use crate::exchange::{CancelFailure, Exchange, Order};
use crate::steps::{
    ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome, WaitStatus,
};

fn order_line(o: &Order) -> String {
    let opt = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string()).unwrap_or("-".into());
    format!(
        "{} {} {} price {} volume {} ({})",
        o.market,
        o.side.as_str(),
        o.native_type,
        opt(o.price),
        opt(o.volume),
        o.id
    )
}

/// `exchange.cancel_open_orders`.
pub struct CancelOpenOrders;

#[derive(Serialize)]
struct CancelFile<'a> {
    key: String,
    rounds: u32,
    /// When the step began, just before its first listing.
    began_at: String,
    /// What was open when containment began: the cancel path's first listing, before its
    /// first cancel (absent where it could not be listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    open_at_start: Option<&'a [Order]>,
    cancelled: &'a [Order],
    failed: &'a [CancelFailure],
    still_open: &'a [Order],
}

/// The file a cancel step with id `step_id` writes its result to.
pub(super) fn cancel_file(step_id: &str) -> String {
    format!("cancel-{}.json", crate::fsutil::file_component(step_id))
}

/// What the cancel step `step_id` of this run found open before its first cancel: its file,
/// when the step began, and the orders; `None` when it left no such listing (it failed before
/// writing its file, was already done on a resume, or its listing failed).
pub(super) fn open_at_start(
    ctx: &StepContext,
    step_id: &str,
) -> Option<(String, String, Vec<Order>)> {
    #[derive(serde::Deserialize)]
    struct Saved {
        began_at: String,
        open_at_start: Option<Vec<Order>>,
    }
    let rel = cancel_file(step_id);
    let bytes = std::fs::read(ctx.rundir.path().join(&rel)).ok()?;
    let saved: Saved = serde_json::from_slice(&bytes).ok()?;
    Some((rel, saved.began_at, saved.open_at_start?))
}

/// Writes the cancel step's file (before a failure too, so what the cancel path listed is
/// never lost) and returns its path. When an earlier attempt of the step (a resume, a replay)
/// left a listing, that one stays the evidence of what was open when containment began, with
/// its start time, and what it cancelled stays in the file: a later listing no longer shows
/// what the first attempt cancelled or what filled meanwhile.
fn write_cancel_file(ctx: &StepContext, file: CancelFile<'_>) -> Result<String, StepError> {
    #[derive(serde::Deserialize)]
    struct Earlier {
        began_at: String,
        open_at_start: Option<Vec<Order>>,
        #[serde(default)]
        cancelled: Vec<Order>,
    }
    let rel = cancel_file(&ctx.step_id);
    let earlier: Option<Earlier> = std::fs::read(ctx.rundir.path().join(&rel))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let json = match earlier {
        Some(Earlier {
            began_at,
            open_at_start: Some(open),
            cancelled: mut all,
        }) => {
            let mut seen: std::collections::HashSet<String> =
                all.iter().map(|o| o.id.clone()).collect();
            all.extend(
                file.cancelled
                    .iter()
                    .filter(|o| seen.insert(o.id.clone()))
                    .cloned(),
            );
            to_json(&CancelFile {
                began_at,
                open_at_start: Some(&open),
                cancelled: &all,
                ..file
            })?
        }
        _ => to_json(&file)?,
    };
    ctx.rundir.write(&rel, &json)?;
    Ok(rel)
}

const CANCEL_ARGS: &[ArgSpec] = &[ArgSpec {
    name: "max_rounds",
    ty: ArgType::Integer,
    required: false,
    description: "how many times to cancel-all and re-list before giving up (default 5)",
}];

impl CancelOpenOrders {
    const INFO: StepInfo = StepInfo {
        name: "exchange.cancel_open_orders",
        effect: Effect::Destructive,
        description:
            "Cancels every open order of the old key (batch, then one by one) until none is left",
        args: CANCEL_ARGS,
        outputs: &[
            "cancelled_count",
            "cancelled",
            "failed",
            "remaining",
            "rounds",
            "path",
            "confirmed_with",
        ],
    };
}

#[async_trait]
impl StepKind for CancelOpenOrders {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let max_rounds = args::integer(args, "max_rounds", 5)?.clamp(1, 100) as u32;
        let session = ctx.exchange()?;
        if !session.old_key_given() {
            // A resume with only the read-only key: it cannot cancel, but it can tell whether
            // anything is left to cancel.
            return left_open_after_deletion(ctx, 0, "the old key's credentials were not given")
                .await;
        }
        let key = session.primary().clone();
        let began_at = ts(crate::time::now());
        let first = crate::exchange::FirstListing::default();
        let mut open_at_start: Option<Vec<Order>> = None;
        let mut cancelled: Vec<Order> = Vec::new();
        let mut failed: Vec<CancelFailure> = Vec::new();
        let mut still_open: Vec<Order> = Vec::new();
        let mut rounds = 0;
        let mut died = None;
        // Another failure ends the rounds too, once the file holds what was listed and done.
        let mut failure: Option<StepError> = None;
        while rounds < max_rounds {
            rounds += 1;
            // The first round's listing is the evidence of what was open: nothing lists the
            // book before it (the snapshot takes it from here), so cancelling starts at once.
            let res = if rounds == 1 {
                key.cancel_all_open_orders_listed(&first).await
            } else {
                key.cancel_all_open_orders().await
            };
            if rounds == 1 {
                // Kept whatever the cancels did after the listing (a key deleted mid-cancel).
                open_at_start = match &res {
                    Ok(report) => report.open_at_start.clone().or_else(|| first.take()),
                    Err(_) => first.take(),
                };
            }
            match res {
                Ok(report) => {
                    for o in &report.cancelled {
                        ctx.printer.status(&format!(
                            "[{}] cancelled {}",
                            ctx.step_id,
                            order_line(o)
                        ));
                    }
                    cancelled.extend(report.cancelled);
                    failed = report.failed;
                }
                Err(e) if e.is_key_dead() => {
                    died = Some(e);
                    break;
                }
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
            match key.open_orders().await {
                Ok(open) if open.is_empty() => {
                    still_open.clear();
                    break;
                }
                Ok(open) => still_open = open,
                Err(e) if e.is_key_dead() => {
                    died = Some(e);
                    break;
                }
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        cancelled.retain(|o| seen.insert(o.id.clone()));
        let rel = write_cancel_file(
            ctx,
            CancelFile {
                key: key.key_id_masked(),
                rounds,
                began_at,
                open_at_start: open_at_start.as_deref(),
                cancelled: &cancelled,
                failed: &failed,
                still_open: &still_open,
            },
        )?;
        if let Some(e) = failure {
            return Err(self.partial_fail(ctx, &cancelled, e));
        }
        if died.is_some() {
            session.primary_died();
            let why = if cancelled.is_empty() {
                "the old key was already deleted (it no longer works: the attacker lost access)"
                    .to_string()
            } else {
                format!(
                    "the old key stopped working after {} cancellations (it was deleted: good, the attacker lost access)",
                    cancelled.len()
                )
            };
            let mut out = left_open_after_deletion(ctx, cancelled.len(), &why).await?;
            out.outputs.insert(
                "cancelled".into(),
                json!(cancelled.iter().map(|o| o.id.as_str()).collect::<Vec<_>>()),
            );
            out.outputs.insert("rounds".into(), Value::from(rounds));
            out.outputs.insert("path".into(), Value::from(rel.clone()));
            out.artifacts.push(rel);
            return Ok(out);
        }
        if !still_open.is_empty() {
            return Err(StepError::with_hint(
                format!(
                    "{} orders are still open after {rounds} rounds of cancelling: {}",
                    still_open.len(),
                    still_open
                        .iter()
                        .map(order_line)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                "something keeps placing orders or cancels are refused; cancel them in the web interface and get the key deleted",
            ));
        }
        let mut outputs = Map::new();
        outputs.insert("cancelled_count".into(), Value::from(cancelled.len()));
        outputs.insert(
            "cancelled".into(),
            json!(cancelled.iter().map(|o| o.id.as_str()).collect::<Vec<_>>()),
        );
        outputs.insert("failed".into(), json!(failed));
        outputs.insert("remaining".into(), Value::from(0));
        outputs.insert("rounds".into(), Value::from(rounds));
        outputs.insert("path".into(), Value::from(rel.clone()));
        outputs.insert("confirmed_with".into(), Value::Null);
        let summary = if cancelled.is_empty() {
            "no open order to cancel".to_string()
        } else {
            format!("cancelled {} open orders; none is left", cancelled.len())
        };
        Ok(StepOutcome {
            outputs,
            summary,
            artifacts: vec![rel],
        })
    }

    async fn check_done(
        &self,
        ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        let session = ctx.exchange()?;
        // Cancelling is idempotent: whenever we cannot tell, running again is safe.
        // The old key may have been deleted since: then the read-only key tells.
        let mut open = session.reader().open_orders().await;
        if matches!(&open, Err(e) if e.is_key_dead()) && session.primary_died() {
            open = session.reader().open_orders().await;
        }
        match open {
            Ok(open) if open.is_empty() => {
                let mut outputs = Map::new();
                outputs.insert("cancelled_count".into(), Value::from(0));
                outputs.insert("cancelled".into(), json!([]));
                outputs.insert("failed".into(), json!([]));
                outputs.insert("remaining".into(), Value::from(0));
                outputs.insert("rounds".into(), Value::from(0));
                outputs.insert("path".into(), Value::Null);
                outputs.insert("confirmed_with".into(), Value::Null);
                Ok(Some(StepOutcome {
                    outputs,
                    summary: "already done: no open order is left (what the interrupted attempt cancelled is in raw/)".into(),
                    artifacts: vec![],
                }))
            }
            _ => Ok(None),
        }
    }

    fn describe(&self, _args: &Map<String, Value>) -> String {
        "would cancel every open order of the key under investigation (batch cancel, then one by one), re-listing until none is left".into()
    }
}

/// Cancelling is over because the old key is gone (deleted, or not given to a resume): the
/// read-only key says whether anything is left open. Nothing left is success ("nothing to
/// cancel, confirmed with the read-only key"); orders left, or no way to look, is a failure
/// naming what to cancel by hand.
async fn left_open_after_deletion(
    ctx: &StepContext,
    cancelled: usize,
    why: &str,
) -> Result<StepOutcome, StepError> {
    let session = ctx.exchange()?;
    let hint = "cancel any order still open in the exchange's web interface (orders stay on the book after a key is deleted)";
    let Some(r) = session.readonly() else {
        return Err(StepError::with_hint(
            format!(
                "{why}; orders may still be open, and without a read-only key respond cannot look"
            ),
            format!(
                "{hint}; or give a read-only key (view scopes only) and run `respond resume {}`",
                ctx.rundir.path().display()
            ),
        ));
    };
    match r.open_orders().await {
        Ok(o) if o.is_empty() => {
            let mut outputs = Map::new();
            outputs.insert("cancelled_count".into(), Value::from(cancelled));
            outputs.insert("cancelled".into(), json!([]));
            outputs.insert("failed".into(), json!([]));
            outputs.insert("remaining".into(), Value::from(0));
            outputs.insert("rounds".into(), Value::from(0));
            outputs.insert("path".into(), Value::Null);
            outputs.insert("confirmed_with".into(), Value::from(r.key_id_masked()));
            let summary = if cancelled == 0 {
                format!(
                    "nothing to cancel, confirmed with the read-only key {} ({why})",
                    r.key_id_masked()
                )
            } else {
                format!(
                    "cancelled {cancelled} open orders; none is left, confirmed with the read-only key {} ({why})",
                    r.key_id_masked()
                )
            };
            Ok(StepOutcome {
                outputs,
                summary,
                artifacts: vec![],
            })
        }
        Ok(o) => Err(StepError::with_hint(
            format!(
                "{why}; {} are still open (checked with the read-only key): {}",
                o.len(),
                o.iter().map(order_line).collect::<Vec<_>>().join("; ")
            ),
            hint,
        )),
        Err(e) if e.stops_run() => Err(e.into()),
        Err(e) => Err(StepError::with_hint(
            format!("{why}; could not list what is left with the read-only key ({e})"),
            hint,
        )),
    }
}

impl CancelOpenOrders {
    fn partial_fail(&self, ctx: &StepContext, cancelled: &[Order], e: StepError) -> StepError {
        if cancelled.is_empty() {
            return e;
        }
        ctx.printer.warn(&format!(
            "[{}] {} orders were cancelled before the failure (in raw/)",
            ctx.step_id,
            cancelled.len()
        ));
        e
    }
}

/// `exchange.cancel_pending_withdrawals`.
pub struct CancelPendingWithdrawals;

const CANCEL_W_ARGS: &[ArgSpec] = &[ArgSpec {
    name: "since",
    ty: ArgType::Duration,
    required: false,
    description: "how far back to look for pending withdrawals (default 7d)",
}];

fn skipped(reason: String) -> StepOutcome {
    let mut outputs = Map::new();
    outputs.insert("skipped".into(), Value::Bool(true));
    outputs.insert("skip_reason".into(), Value::from(reason.clone()));
    outputs.insert("pending_count".into(), Value::Null);
    outputs.insert("cancelled_count".into(), Value::from(0));
    outputs.insert("cancelled".into(), json!([]));
    outputs.insert("failed".into(), json!([]));
    StepOutcome {
        outputs,
        summary: format!("skipped: {reason}"),
        artifacts: vec![],
    }
}

impl CancelPendingWithdrawals {
    const INFO: StepInfo = StepInfo {
        name: "exchange.cancel_pending_withdrawals",
        effect: Effect::Destructive,
        description: "Cancels pending (cancelable) withdrawals with the old key, where the exchange and the key allow it",
        args: CANCEL_W_ARGS,
        outputs: &[
            "skipped",
            "skip_reason",
            "pending_count",
            "cancelled_count",
            "cancelled",
            "failed",
        ],
    };
}

#[async_trait]
impl StepKind for CancelPendingWithdrawals {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let since_d = args::duration(args, "since", Duration::from_secs(7 * 86_400))?;
        let since = crate::time::now() - args::chrono_dur(since_d);
        let session = ctx.exchange()?;
        let key = session.primary().clone();
        if !session.old_key_given() {
            // A resume with only the read-only key: it cannot cancel, but it can look.
            let l = session.reader().withdrawals(since).await?;
            let pending = l.iter().filter(|t| t.is_cancelable).count();
            if pending > 0 {
                return Err(StepError::with_hint(
                    format!("{pending} withdrawals are pending (checked with the read-only key), and the old key's credentials were not given, so respond cannot cancel them"),
                    "cancel them in the exchange's web interface and contact support at once",
                ));
            }
            let mut out = skipped("the old key's credentials were not given; the read-only key shows no pending withdrawal".into());
            out.outputs.insert("skipped".into(), Value::Bool(false));
            out.outputs.insert("pending_count".into(), Value::from(0));
            out.summary = "no pending withdrawal (checked with the read-only key)".into();
            return Ok(out);
        }
        if !key.capabilities().cancel_withdrawals {
            let out = skipped(format!(
                "{} cannot cancel withdrawals by API: check pending withdrawals in its web interface",
                key.capabilities().name
            ));
            ctx.printer
                .important(&format!("[{}] {}", ctx.step_id, out.summary));
            return Ok(out);
        }
        let list = match key.withdrawals(since).await {
            Ok(l) => l,
            Err(e) if is_out_of_scope(&e) => {
                return Ok(skipped(
                    "the key cannot even list withdrawals (no withdrawal scope), so it cannot have made or cancel any; check pending withdrawals in the web interface".into(),
                ))
            }
            Err(e) if e.is_key_dead() => {
                // Deleted before it could cancel anything: a read-only key can still tell
                // whether anything is pending (then there is nothing left to do here).
                if session.primary_died() {
                    if let Ok(l) = session.reader().withdrawals(since).await {
                        let pending = l.iter().filter(|t| t.is_cancelable).count();
                        if pending == 0 {
                            let mut out = skipped(
                                "the old key was deleted first; the read-only key shows no pending withdrawal".into(),
                            );
                            out.outputs.insert("skipped".into(), Value::Bool(false));
                            out.outputs.insert("pending_count".into(), Value::from(0));
                            out.summary = "no pending withdrawal (checked with the read-only key after the old key was deleted)".into();
                            return Ok(out);
                        }
                        return Err(StepError::with_hint(
                            format!("the old key was deleted before it could cancel {pending} pending withdrawals (checked with the read-only key)"),
                            "cancel them in the exchange's web interface and contact support at once",
                        ));
                    }
                }
                return Err(StepError::with_hint(
                    "the old key stopped working before pending withdrawals could be checked (it was deleted: good)",
                    "check for pending withdrawals in the exchange's web interface and cancel any you did not make",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let pending: Vec<_> = list.into_iter().filter(|t| t.is_cancelable).collect();
        let mut cancelled = Vec::new();
        let mut failed = Vec::new();
        for w in &pending {
            match key.cancel_withdrawal(&w.id).await {
                Ok(t) => {
                    ctx.printer.status(&format!(
                        "[{}] cancelled withdrawal {} {} {} ({})",
                        ctx.step_id, t.amount, t.currency, t.state, t.id
                    ));
                    cancelled.push(w.id.clone());
                }
                Err(e) if is_out_of_scope(&e) => {
                    let out = skipped(format!(
                        "{} pending withdrawals, but the key lacks the withdrawal scope to cancel them (so it could not have made them either): check them in the web interface",
                        pending.len()
                    ));
                    ctx.printer
                        .important(&format!("[{}] {}", ctx.step_id, out.summary));
                    return Ok(out);
                }
                Err(e) if e.is_key_dead() => {
                    session.primary_died();
                    return Err(StepError::with_hint(
                        format!(
                            "the old key stopped working after cancelling {} of {} pending withdrawals (it was deleted: good)",
                            cancelled.len(),
                            pending.len()
                        ),
                        "cancel the remaining pending withdrawals in the exchange's web interface",
                    ));
                }
                Err(e) => failed.push(json!({"id": w.id, "reason": e.to_string()})),
            }
        }
        let mut outputs = Map::new();
        outputs.insert("skipped".into(), Value::Bool(false));
        outputs.insert("skip_reason".into(), Value::Null);
        outputs.insert("pending_count".into(), Value::from(pending.len()));
        outputs.insert("cancelled_count".into(), Value::from(cancelled.len()));
        outputs.insert("cancelled".into(), json!(cancelled));
        outputs.insert("failed".into(), Value::Array(failed.clone()));
        if !failed.is_empty() {
            return Err(StepError::with_hint(
                format!(
                    "{} of {} pending withdrawals could not be cancelled: {}",
                    failed.len(),
                    pending.len(),
                    Value::Array(failed)
                ),
                "cancel them in the exchange's web interface and contact support at once",
            ));
        }
        Ok(StepOutcome {
            summary: if pending.is_empty() {
                "no pending withdrawal".into()
            } else {
                format!("cancelled {} pending withdrawals", cancelled.len())
            },
            outputs,
            artifacts: vec![],
        })
    }

    async fn check_done(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        let session = ctx.exchange()?;
        // The same reach as `run`: a resume must not miss what the first attempt would see.
        let since_d = args::duration(args, "since", Duration::from_secs(7 * 86_400))?;
        let since = crate::time::now() - args::chrono_dur(since_d);
        let mut list = session.reader().withdrawals(since).await;
        if matches!(&list, Err(e) if e.is_key_dead()) && session.primary_died() {
            list = session.reader().withdrawals(since).await;
        }
        match list {
            Ok(l) if !l.iter().any(|t| t.is_cancelable) => {
                let mut out = skipped("already done: no pending withdrawal is left".into());
                out.outputs.insert("skipped".into(), Value::Bool(false));
                out.outputs.insert("pending_count".into(), Value::from(0));
                out.summary = "already done: no pending withdrawal is left".into();
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    fn describe(&self, _args: &Map<String, Value>) -> String {
        "would cancel every pending (cancelable) withdrawal of the account with the key under investigation, where the exchange and the key allow it".into()
    }
}

/// `exchange.revoke_key`.
pub struct RevokeKey;

const REVOKE_ARGS: &[ArgSpec] = &[ArgSpec {
    name: "timeout",
    ty: ArgType::Duration,
    required: false,
    description: "how long to wait for the user's confirmation on a terminal (default 10m)",
}];

/// The manual instructions, in English and the exchange's language.
pub(crate) fn manual_instructions(ex: &dyn Exchange, expire: Option<&str>) -> String {
    manual_instructions_for(ex, &ex.key_id_masked(), expire)
}

/// The manual instructions for the key `masked`, with `ex` (which may be the read-only key
/// standing in for it) giving the exchange's wording.
fn manual_instructions_for(ex: &dyn Exchange, masked: &str, expire: Option<&str>) -> String {
    let caps = ex.capabilities();
    let expiry = expire
        .map(|e| format!(" (expires {e})"))
        .unwrap_or_default();
    let (en, local) = caps.revoke_instructions(expire);
    // An adapter may name its own key in the wording: name the key to delete instead.
    let own = ex.key_id_masked();
    let (en, local) = (en.replace(&own, masked), local.replace(&own, masked));
    let mut s = format!(
        "ACTION NEEDED NOW: delete the leaked {} API key {masked}{expiry}.\n  {en}",
        caps.name,
    );
    if local != en {
        s.push_str(&format!("\n  {local}"));
    }
    s
}

fn revoke_outputs(
    mode: &str,
    confirmed: bool,
    by: &str,
    key: String,
    expire: Option<String>,
) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("mode".into(), Value::from(mode));
    o.insert("confirmed".into(), Value::Bool(confirmed));
    o.insert("confirmed_by".into(), Value::from(by));
    o.insert("key".into(), Value::from(key));
    o.insert(
        "key_expire_at".into(),
        expire.map(Value::from).unwrap_or(Value::Null),
    );
    o
}

/// How a wait for confirmation ended.
enum Wait {
    User,
    Observed,
    Timeout,
}

/// `revoke_key` in a resume without the old key's credentials: what the run's own answers
/// show decides; nothing can be asked of the key itself.
fn revoke_without_old_key(ctx: &StepContext) -> Result<StepOutcome, StepError> {
    let session = ctx.exchange()?;
    let masked = session.old_key_masked();
    let history = session.absent_old_key().cloned().unwrap_or_default();
    if let (true, Some((at, name, file))) = (history.known_dead(), &history.refused) {
        return Ok(StepOutcome {
            outputs: revoke_outputs("manual", true, "observed", masked.clone(), None),
            summary: format!(
                "key {masked} no longer works: refused with {name} at {} ({file}) after it was accepted",
                ts(*at)
            ),
            artifacts: vec![],
        });
    }
    ctx.printer.important(&manual_instructions_for(
        session.primary().as_ref(),
        &masked,
        None,
    ));
    let why = if history.accepted.is_some() {
        "its credentials were not given to this resume, so respond cannot check it"
    } else {
        "it was never accepted in this run (check that the key you delete is the leaked one), and its credentials were not given, so respond cannot check it"
    };
    ctx.printer.important(&format!(
        "  key {masked}: {why}; confirm in the web console that it is gone."
    ));
    Ok(StepOutcome {
        outputs: revoke_outputs("manual", false, "not_verifiable", masked.clone(), None),
        summary: format!("asked to delete key {masked} by hand ({why})"),
        artifacts: vec![],
    })
}

async fn wait_for_confirmation(ctx: &StepContext, timeout: Duration) -> Wait {
    let session = ctx.services.exchange.as_ref();
    // A plain thread, not a tokio blocking task: a read still pending when the run ends must
    // not keep the runtime (and the process) from exiting.
    let (tx, rx) = tokio::sync::oneshot::channel::<bool>();
    std::thread::spawn(move || {
        let mut buf = String::new();
        let got = matches!(std::io::stdin().read_line(&mut buf), Ok(n) if n > 0);
        let _ = tx.send(got);
    });
    let line = async {
        match rx.await {
            Ok(true) => {}
            // End of input or an unreadable stdin is no confirmation: wait for the others.
            _ => std::future::pending::<()>().await,
        }
    };
    let observed = async {
        loop {
            if session.is_some_and(|s| s.switched()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::select! {
        _ = line => Wait::User,
        _ = observed => Wait::Observed,
        _ = tokio::time::sleep(timeout) => Wait::Timeout,
    }
}

impl RevokeKey {
    const INFO: StepInfo = StepInfo {
        name: "exchange.revoke_key",
        effect: Effect::Notify,
        description: "Revokes the old key by API where possible; otherwise shows exact manual instructions at once and keeps going",
        args: REVOKE_ARGS,
        outputs: &["mode", "confirmed", "confirmed_by", "key", "key_expire_at"],
    };
}

#[async_trait]
impl StepKind for RevokeKey {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let timeout = args::duration(args, "timeout", Duration::from_secs(600))?;
        let session = ctx.exchange()?;
        if !session.old_key_given() {
            return revoke_without_old_key(ctx);
        }
        let key = session.primary().clone();
        let masked = key.key_id_masked();
        if key.capabilities().revoke_key_by_api {
            match key.revoke_key().await {
                Ok(()) => {
                    return Ok(StepOutcome {
                        outputs: revoke_outputs("api", true, "api", masked.clone(), None),
                        summary: format!("key {masked} revoked by API"),
                        artifacts: vec![],
                    })
                }
                Err(e) if e.is_key_dead() => {
                    session.primary_died();
                    return Ok(StepOutcome {
                        outputs: revoke_outputs("api", true, "observed", masked.clone(), None),
                        summary: format!("key {masked} already no longer works"),
                        artifacts: vec![],
                    });
                }
                Err(e) if e.stops_run() => return Err(e.into()),
                Err(crate::exchange::Error::Unsupported { what, .. }) => {
                    ctx.printer.warn(&format!(
                        "cannot revoke this key by API ({what}); falling back to the manual steps"
                    ));
                }
                Err(e) => {
                    ctx.printer.warn(&format!(
                        "revoking by API failed ({e}); falling back to the manual steps"
                    ));
                }
            }
        }
        // Manual: the key's expiry makes sure the user deletes the right one.
        // Bounded: the instructions must not wait on a slow exchange.
        let listed = tokio::time::timeout(Duration::from_secs(5), key.api_keys())
            .await
            .unwrap_or_else(|_| Err(crate::exchange::Error::Transport("timed out".into())));
        let expire = match listed {
            Ok(keys) => keys
                .iter()
                .find(|k| k.access_key_masked == masked)
                .or_else(|| keys.iter().find(|k| k.is_current))
                .and_then(|k| k.expire_at)
                .map(ts),
            // Refused before it was ever accepted: nothing was revoked, and nothing can be done
            // with this key (the run stops).
            Err(e) if e.stops_run() => return Err(e.into()),
            Err(e) if e.is_key_dead() => {
                // It was accepted earlier (else the refusal would have stopped the run): the
                // user already deleted it.
                session.primary_died();
                ctx.printer.important(&format!(
                    "key {masked} worked earlier in this run and now fails with {}: it was deleted; verification will confirm",
                    e.code().unwrap_or("an authentication error")
                ));
                return Ok(StepOutcome {
                    outputs: revoke_outputs("manual", true, "observed", masked.clone(), None),
                    summary: format!("key {masked} already no longer works"),
                    artifacts: vec![],
                });
            }
            Err(_) => None,
        };
        ctx.printer
            .important(&manual_instructions(key.as_ref(), expire.as_deref()));
        ctx.printer.important(
            "  respond keeps working meanwhile (snapshot, cancel, export) and notices when the key stops working.",
        );
        let (confirmed, by) = if ctx.services.interactive && !ctx.services.assume_yes {
            ctx.printer.important(&format!(
                "  Press Enter once the key is deleted (respond goes on by itself after {}s).",
                timeout.as_secs()
            ));
            let mut status = WaitStatus::start(
                ctx,
                format!("your confirmation (Enter) that key {masked} is deleted, or for the exchange to refuse it"),
                timeout,
            );
            match status.during(wait_for_confirmation(ctx, timeout)).await {
                Wait::User => (true, "user"),
                Wait::Observed => (true, "observed"),
                Wait::Timeout => (false, "timeout"),
            }
        } else {
            (false, "not_interactive")
        };
        Ok(StepOutcome {
            outputs: revoke_outputs("manual", confirmed, by, masked.clone(), expire),
            summary: format!(
                "asked to delete key {masked} by hand ({})",
                match by {
                    "user" => "the user confirmed",
                    "observed" => "the key stopped working",
                    "timeout" => "no confirmation; verification decides",
                    _ => "not waiting; verification decides",
                }
            ),
            artifacts: vec![],
        })
    }

    async fn check_done(
        &self,
        ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        let session = ctx.exchange()?;
        let key = session.primary();
        match key.api_keys().await {
            Err(e) if e.is_key_dead() => {
                session.primary_died();
                let mode = if key.capabilities().revoke_key_by_api {
                    "api"
                } else {
                    "manual"
                };
                Ok(Some(StepOutcome {
                    outputs: revoke_outputs(mode, true, "observed", key.key_id_masked(), None),
                    summary: "already done: the key no longer works".into(),
                    artifacts: vec![],
                }))
            }
            // Showing the instructions again is harmless.
            _ => Ok(None),
        }
    }

    fn describe(&self, _args: &Map<String, Value>) -> String {
        "would revoke the key under investigation by API where the exchange allows it, else show the exact steps to delete it in the web interface".into()
    }

    fn owns_wait(&self, args: &Map<String, Value>) -> Option<Duration> {
        args::duration(args, "timeout", Duration::from_secs(600)).ok()
    }
}

/// `verify_key_revoked` in a resume without the old key's credentials: the run's own saved
/// answers decide. Revoked only when they show the key accepted and later refused.
fn verify_from_evidence(ctx: &StepContext) -> Result<StepOutcome, StepError> {
    let session = ctx.exchange()?;
    let masked = session.old_key_masked();
    let h = session.absent_old_key().cloned().unwrap_or_default();
    let ex = session.primary().capabilities().name.to_uppercase();
    let dir = ctx.rundir.path().display();
    match (&h.accepted, &h.refused) {
        (Some((acc_at, acc_file)), Some((at, name, file))) if h.known_dead() => {
            let mut outputs = Map::new();
            outputs.insert("revoked".into(), Value::Bool(true));
            outputs.insert("observed_at".into(), Value::from(ts(*at)));
            outputs.insert("polls".into(), Value::from(0));
            outputs.insert("error_name".into(), Value::from(name.clone()));
            outputs.insert("key".into(), Value::from(masked.clone()));
            outputs.insert("accepted_at".into(), Value::from(ts(*acc_at)));
            Ok(StepOutcome {
                summary: format!(
                    "key {masked} is revoked: this run saw it accepted at {} ({acc_file}) and rejected with {name} at {} ({file})",
                    ts(*acc_at),
                    ts(*at)
                ),
                outputs,
                artifacts: vec![],
            })
        }
        (Some(_), Some((at, name, file))) => Err(StepError::permanent(
            format!(
                "cannot verify that key {masked} was deleted: it worked earlier in this run, but its last refusal ({name} at {}, {file}) came with credentials this run never saw accepted (the same key name with another secret is refused the same way), so it proves no deletion",
                ts(*at)
            ),
            format!("check the old key's secret, then resume with it too ({ex}_ACCESS_KEY and {ex}_SECRET_KEY, with the read-only pair) to verify: respond resume {dir}; or confirm in the web console that the key is gone"),
        )),
        (Some(_), None) => Err(StepError::permanent(
            format!("cannot verify that key {masked} was deleted: it worked earlier in this run, and its credentials were not given to this resume"),
            format!("delete it in the web console if not done yet, then resume with the old key too ({ex}_ACCESS_KEY and {ex}_SECRET_KEY, with the read-only pair) to verify: respond resume {dir}"),
        )),
        (None, _) => Err(StepError::permanent(
            format!("key {masked} was never accepted in this run, so respond cannot verify that it was deleted (a key refused from its first request may be mistyped while the real one still works)"),
            "confirm in the exchange's web console (Open API management) that the leaked key is gone",
        )),
    }
}

/// `exchange.verify_key_revoked`.
pub struct VerifyKeyRevoked;

const VERIFY_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "interval",
        ty: ArgType::Duration,
        required: false,
        description: "time between polls (default 2s)",
    },
    ArgSpec {
        name: "timeout",
        ty: ArgType::Duration,
        required: false,
        description: "give up after this long (default 10m)",
    },
];

impl VerifyKeyRevoked {
    const INFO: StepInfo = StepInfo {
        name: "exchange.verify_key_revoked",
        effect: Effect::Read,
        description:
            "Polls with the old key until the exchange rejects it as unknown, and records when",
        args: VERIFY_ARGS,
        outputs: &[
            "revoked",
            "observed_at",
            "polls",
            "error_name",
            "key",
            "accepted_at",
        ],
    };
}

#[async_trait]
impl StepKind for VerifyKeyRevoked {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let interval = args::duration(args, "interval", Duration::from_secs(2))?;
        let timeout = args::duration(args, "timeout", Duration::from_secs(600))?;
        let session = ctx.exchange()?;
        if !session.old_key_given() {
            return verify_from_evidence(ctx);
        }
        let key = session.primary().clone();
        let masked = key.key_id_masked();
        let deadline = tokio::time::Instant::now() + timeout;
        // The journal says whether this run deleted the key by API (no console visit then).
        let by_api = crate::investigation::JournalFacts::read(ctx.rundir.path())
            .map(|f| {
                f.ends_of(RevokeKey::INFO.name)
                    .iter()
                    .any(|(_, d)| d["status"] == "ok" && d["outputs"]["mode"] == "api")
            })
            .unwrap_or(false);
        let what = if by_api {
            "deleted by API; waiting until the deletion takes effect"
        } else {
            "delete it in the web console"
        };
        let mut status = WaitStatus::start(
            ctx,
            format!(
                "{} to refuse key {masked} as deleted ({what})",
                key.capabilities().name
            ),
            timeout,
        );
        let mut polls: u64 = 0;
        let mut use_balances = false;
        let mut last_other: Option<String> = None;
        loop {
            polls += 1;
            let poll = async {
                if use_balances {
                    key.balances().await.map(|_| ())
                } else {
                    key.api_keys().await.map(|_| ())
                }
            };
            // No single poll outlasts the wait: a hanging request ends with the deadline.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = match status.during(tokio::time::timeout(left, poll)).await {
                Ok(r) => r,
                Err(_) => {
                    last_other = Some(format!(
                        "the last poll got no answer within the {} left",
                        crate::steps::clock(left)
                    ));
                    break;
                }
            };
            match r {
                Err(e) if e.is_key_dead() => {
                    let observed = crate::time::now();
                    session.primary_died();
                    // The watch turns a refusal of a key never accepted into `NeverAccepted`,
                    // so a key refused here was accepted before.
                    let accepted = session.old_key_accepted_at();
                    let mut outputs = Map::new();
                    outputs.insert("revoked".into(), Value::Bool(true));
                    outputs.insert("observed_at".into(), Value::from(ts(observed)));
                    outputs.insert("polls".into(), Value::from(polls));
                    outputs.insert(
                        "error_name".into(),
                        e.code().map(Value::from).unwrap_or(Value::Null),
                    );
                    outputs.insert("key".into(), Value::from(masked.clone()));
                    outputs.insert(
                        "accepted_at".into(),
                        accepted.map(|t| Value::from(ts(t))).unwrap_or(Value::Null),
                    );
                    return Ok(StepOutcome {
                        summary: format!(
                            "key {masked} is revoked: accepted{} and then rejected with {} at {}",
                            accepted
                                .map(|t| format!(" at {}", ts(t)))
                                .unwrap_or_default(),
                            e.code().unwrap_or("an authentication error"),
                            ts(observed)
                        ),
                        outputs,
                        artifacts: vec![],
                    });
                }
                Err(crate::exchange::Error::Unsupported { .. }) if !use_balances => {
                    use_balances = true;
                    continue;
                }
                // Never accepted: stops the run with its own message.
                Err(e) if e.stops_run() => return Err(e.into()),
                // Waiting cannot clear it (nothing at the API address, a wrong secret, the
                // bundle cannot be written): say so now, not after the whole wait.
                Err(e) if e.is_permanent() => {
                    return Err(StepError::permanent(
                        format!(
                            "cannot tell whether key {masked} was deleted: {e} (poll {polls}, after {})",
                            crate::steps::clock(status.elapsed())
                        ),
                        format!(
                            "{}; then `respond resume {}` to verify again",
                            e.advice(),
                            ctx.rundir.path().display()
                        ),
                    ));
                }
                Err(e) => {
                    if last_other.as_deref() != Some(&e.to_string()) {
                        ctx.printer.warn(&format!(
                            "[{}] poll {polls}: {e} (still polling)",
                            ctx.step_id
                        ));
                    }
                    status.set_detail(format!("{polls} polls, the last one failed: {e}"));
                    last_other = Some(e.to_string());
                }
                Ok(()) => {
                    status.set_detail(format!("{polls} polls, the key still works"));
                    last_other = None;
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            status
                .during(tokio::time::sleep(interval.min(deadline - now)))
                .await;
        }
        let what = match &last_other {
            None => format!(
                "key {masked} still works after {} ({polls} polls): it has not been deleted",
                crate::steps::clock(timeout)
            ),
            Some(e) => format!(
                "key {masked} was not seen refused within {} ({polls} polls; {e})",
                crate::steps::clock(timeout)
            ),
        };
        Err(StepError::with_hint(
            what,
            format!(
                "{}\n  then run `{}` to verify again",
                manual_instructions(key.as_ref(), None),
                crate::output::respond_command([
                    "resume",
                    &ctx.rundir.path().display().to_string()
                ])
            ),
        ))
    }

    fn owns_wait(&self, args: &Map<String, Value>) -> Option<Duration> {
        args::duration(args, "timeout", Duration::from_secs(600)).ok()
    }

    fn describe(&self, args: &Map<String, Value>) -> String {
        format!(
            "would poll the key under investigation every {} until it is rejected as deleted (up to {})",
            args.get("interval").and_then(Value::as_str).unwrap_or("2s"),
            args.get("timeout").and_then(Value::as_str).unwrap_or("10m")
        )
    }
}
