//! `exchange.snapshot` and `exchange.probe_permissions`: what the account and the key look like
//! before anything is changed ("preserve first, then remediate").
//!
//! The snapshot is a set of independent reads; one failing read does not stop the others (a
//! partial snapshot is evidence too). The normalized result goes to `snapshot-<step>.json`; the
//! raw responses behind it are saved by the adapter.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::args;
use super::{is_out_of_scope, to_json, ts, Race, ReadError};
use crate::exchange::{
    ApiKeyInfo, Balance, Order, PermissionProbe, ServerTime, Transfer, WithdrawalAddress,
};
use crate::secret::mask_key;
use crate::steps::{
    ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome,
};

/// `exchange.snapshot`.
pub struct Snapshot;

/// One read of the snapshot that failed.
#[derive(Debug, Clone, Serialize)]
struct Missing {
    what: &'static str,
    error: String,
    /// The exchange has no such read: not a gap in the evidence.
    unsupported: bool,
    /// Asking again cannot fill the gap (nothing at the API address, a missing scope).
    #[serde(skip)]
    permanent: bool,
}

#[derive(Debug, Default, Serialize)]
struct SnapshotFile {
    exchange: String,
    key: String,
    reader_key: String,
    switched_to_readonly: bool,
    withdrawals_since: String,
    server_time: Option<ServerTime>,
    api_keys: Option<Vec<ApiKeyInfo>>,
    balances: Option<Vec<Balance>>,
    open_orders: Option<Vec<Order>>,
    /// Where `open_orders` comes from and when it was listed.
    open_orders_source: String,
    withdrawals: Option<Vec<Transfer>>,
    withdrawal_addresses: Option<Vec<WithdrawalAddress>>,
    missing: Vec<Missing>,
}

const SNAPSHOT_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "since",
        ty: ArgType::Duration,
        required: false,
        description: "how far back to list withdrawals (default 7d)",
    },
    ArgSpec {
        name: "open_orders_from",
        ty: ArgType::String,
        required: false,
        description: "the id of a cancel step (`exchange.cancel_open_orders`) this snapshot runs after: the open orders are that step's listing from before its first cancel, not listed again (listed here when it left none)",
    },
    ArgSpec {
        name: "allow_partial",
        ty: ArgType::Boolean,
        required: false,
        description: "succeed even when some reads failed (default false: fail listing them)",
    },
];

/// Masks a withdrawal address for display: first 4 and last 4 characters.
pub(crate) fn mask_address(a: &WithdrawalAddress) -> String {
    let net = a
        .net_type
        .as_deref()
        .filter(|n| *n != a.currency)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!("{}{net} {}", a.currency, mask_key(&a.address))
}

/// Records one sub-read's result; returns `Err` only when the step must stop (key death).
fn settle<T>(
    slot: &mut Option<T>,
    missing: &mut Vec<Missing>,
    what: &'static str,
    r: Result<T, ReadError>,
) -> Result<(), ReadError> {
    match r {
        Ok(v) => {
            *slot = Some(v);
            Ok(())
        }
        Err(ReadError::Other(e)) => {
            let scope = if is_out_of_scope(&e) {
                " (the key lacks this permission)"
            } else {
                ""
            };
            missing.push(Missing {
                what,
                unsupported: matches!(e, crate::exchange::Error::Unsupported { .. }),
                permanent: e.is_permanent(),
                error: format!("{e}{scope}"),
            });
            Ok(())
        }
        Err(fatal) => Err(fatal),
    }
}

impl Snapshot {
    const INFO: StepInfo = StepInfo {
        name: "exchange.snapshot",
        effect: Effect::Read,
        description: "Records server time, balances, keys, open orders, recent withdrawals and the withdrawal address allowlist",
        args: SNAPSHOT_ARGS,
        outputs: &[
            "server_offset_ms",
            "balance_count",
            "key_count",
            "key_expire_at",
            "open_order_count",
            "withdrawal_count",
            "pending_withdrawal_count",
            "withdrawal_address_count",
            "withdrawal_addresses",
            "missing",
            "unsupported",
            "switched_to_readonly",
            "path",
        ],
    };
}

#[async_trait]
impl StepKind for Snapshot {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let since_d = args::duration(args, "since", Duration::from_secs(7 * 86_400))?;
        let allow_partial = args::boolean(args, "allow_partial", false)?;
        let cancel_step = args::string(args, "open_orders_from")?.filter(|s| !s.is_empty());
        let cancel_step = cancel_step.as_deref();
        let from_cancel = cancel_step.and_then(|id| super::contain::open_at_start(ctx, id));
        let since = crate::time::now() - args::chrono_dur(since_d);
        let mut race = Race::new(ctx)?;
        let primary = race.session().primary().clone();
        let caps = primary.capabilities().clone();
        let mut snap = SnapshotFile {
            exchange: caps.name.clone(),
            key: primary.key_id_masked(),
            withdrawals_since: ts(since),
            ..Default::default()
        };
        let rel = format!(
            "snapshot-{}.json",
            crate::fsutil::file_component(&ctx.step_id)
        );
        let mut m = Vec::new();
        let fatal = async {
            let r = race.read(|ex| async move { ex.server_time().await }).await;
            settle(&mut snap.server_time, &mut m, "server time", r)?;
            let r = race.read(|ex| async move { ex.api_keys().await }).await;
            settle(&mut snap.api_keys, &mut m, "key list", r)?;
            let r = race.read(|ex| async move { ex.balances().await }).await;
            settle(&mut snap.balances, &mut m, "balances", r)?;
            match &from_cancel {
                Some((rel, began_at, open)) => {
                    snap.open_orders = Some(open.clone());
                    snap.open_orders_source = format!(
                        "listed by `{}` before its first cancel (it began at {began_at}; {rel}, its raw answers under raw/)",
                        cancel_step.unwrap_or_default()
                    );
                }
                None => {
                    let r = race.read(|ex| async move { ex.open_orders().await }).await;
                    settle(&mut snap.open_orders, &mut m, "open orders", r)?;
                    snap.open_orders_source = match cancel_step {
                        Some(id) => format!("listed by this snapshot at {}, after `{id}`, which left no listing of its own (what it cancelled is in its answers under raw/)", ts(crate::time::now())),
                        None => format!("listed by this snapshot at {}", ts(crate::time::now())),
                    };
                }
            }
            let r = race
                .read(|ex| async move { ex.withdrawals(since).await })
                .await;
            settle(&mut snap.withdrawals, &mut m, "withdrawals", r)?;
            let r = race
                .read(|ex| async move { ex.withdrawal_addresses().await })
                .await;
            settle(
                &mut snap.withdrawal_addresses,
                &mut m,
                "withdrawal address allowlist",
                r,
            )
        }
        .await;
        snap.missing = m;
        snap.switched_to_readonly = race.on_readonly();
        snap.reader_key = race.session().reader().key_id_masked();
        ctx.rundir.write(&rel, &to_json(&snap)?)?;
        if let Err(e) = fatal {
            return Err(race.fail(e, "snapshot"));
        }

        let key_expire_at = snap.api_keys.as_ref().and_then(|keys| {
            keys.iter()
                .find(|k| k.access_key_masked == snap.key)
                .or_else(|| {
                    if snap.switched_to_readonly {
                        None
                    } else {
                        keys.iter().find(|k| k.is_current)
                    }
                })
                .and_then(|k| k.expire_at)
        });
        let count = |n: Option<usize>| n.map(Value::from).unwrap_or(Value::Null);
        let pending = snap
            .withdrawals
            .as_ref()
            .map(|w| w.iter().filter(|t| t.is_cancelable).count());
        let addresses: Vec<String> = snap
            .withdrawal_addresses
            .iter()
            .flatten()
            .map(mask_address)
            .collect();
        let missing: Vec<String> = snap
            .missing
            .iter()
            .filter(|m| !m.unsupported)
            .map(|m| format!("{}: {}", m.what, m.error))
            .collect();
        let unsupported: Vec<&str> = snap
            .missing
            .iter()
            .filter(|m| m.unsupported)
            .map(|m| m.what)
            .collect();
        let mut outputs = Map::new();
        outputs.insert(
            "server_offset_ms".into(),
            snap.server_time
                .as_ref()
                .map(|s| Value::from(s.offset_ms))
                .unwrap_or(Value::Null),
        );
        outputs.insert(
            "balance_count".into(),
            count(snap.balances.as_ref().map(Vec::len)),
        );
        outputs.insert(
            "key_count".into(),
            count(snap.api_keys.as_ref().map(Vec::len)),
        );
        outputs.insert(
            "key_expire_at".into(),
            key_expire_at
                .map(|t| Value::from(ts(t)))
                .unwrap_or(Value::Null),
        );
        outputs.insert(
            "open_order_count".into(),
            count(snap.open_orders.as_ref().map(Vec::len)),
        );
        outputs.insert(
            "withdrawal_count".into(),
            count(snap.withdrawals.as_ref().map(Vec::len)),
        );
        outputs.insert("pending_withdrawal_count".into(), count(pending));
        outputs.insert(
            "withdrawal_address_count".into(),
            count(snap.withdrawal_addresses.as_ref().map(Vec::len)),
        );
        outputs.insert("withdrawal_addresses".into(), json!(addresses));
        outputs.insert("missing".into(), json!(missing));
        outputs.insert("unsupported".into(), json!(unsupported));
        outputs.insert(
            "switched_to_readonly".into(),
            Value::Bool(snap.switched_to_readonly),
        );
        if let Some(at) = race.switched_at {
            outputs.insert("switched_at".into(), Value::from(ts(at)));
        }
        outputs.insert("path".into(), Value::from(rel.clone()));

        if !missing.is_empty() && !allow_partial {
            let message = format!(
                "the snapshot is incomplete; missing: {} (what was read is saved in {rel})",
                missing.join("; ")
            );
            let hint = "give the key the missing view permissions or a read-only key with them, then `respond resume RUN_DIR`; or set `allow_partial: true`";
            // Another attempt cannot fill gaps that asking again does not fill.
            if snap.missing.iter().all(|m| m.unsupported || m.permanent) {
                return Err(StepError::permanent(message, hint));
            }
            return Err(StepError::with_hint(message, hint));
        }
        let fmt_n = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        let summary = format!(
            "{} balances, {} keys, {} open orders, {} withdrawals ({} pending), {} allowlisted addresses; server clock {}{}",
            fmt_n(snap.balances.as_ref().map(Vec::len)),
            fmt_n(snap.api_keys.as_ref().map(Vec::len)),
            fmt_n(snap.open_orders.as_ref().map(Vec::len)),
            fmt_n(snap.withdrawals.as_ref().map(Vec::len)),
            fmt_n(pending),
            fmt_n(snap.withdrawal_addresses.as_ref().map(Vec::len)),
            snap.server_time
                .as_ref()
                .map(|s| format!("{:+} ms from ours", s.offset_ms))
                .unwrap_or_else(|| "unknown".into()),
            if missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", missing.join("; "))
            }
        );
        Ok(StepOutcome {
            outputs,
            summary,
            artifacts: vec![rel],
        })
    }
}

/// `exchange.probe_permissions`.
pub struct ProbePermissions;

/// Whether a scope of `exchange` lets the key move funds out: by its class in the exchange's
/// vocabulary, or what its name suggests where the exchange does not list it.
pub(crate) fn is_withdraw_scope(exchange: &str, scope: &str) -> bool {
    crate::exchange::registry::scope_class(exchange, scope).moves_funds()
}

/// Outputs of a permission probe, as the step and the checklist show them.
pub(crate) fn probe_outputs(p: &PermissionProbe) -> Map<String, Value> {
    let held: Vec<&str> = p
        .scopes
        .iter()
        .filter(|s| s.held == Some(true))
        .map(|s| s.scope.as_str())
        .collect();
    let not_held: Vec<&str> = p
        .scopes
        .iter()
        .filter(|s| s.held == Some(false))
        .map(|s| s.scope.as_str())
        .collect();
    let unknown: Vec<&str> = p
        .scopes
        .iter()
        .filter(|s| s.held.is_none())
        .map(|s| s.scope.as_str())
        .collect();
    let withdraw: Vec<Option<bool>> = p
        .scopes
        .iter()
        .filter(|s| s.class.moves_funds())
        .map(|s| s.held)
        .collect();
    let can_withdraw = if withdraw.contains(&Some(true)) {
        Value::Bool(true)
    } else if !withdraw.is_empty() && withdraw.iter().all(|h| *h == Some(false)) {
        Value::Bool(false)
    } else {
        Value::from("unknown")
    };
    let mut o = Map::new();
    o.insert("scopes".into(), json!(held));
    o.insert("not_held".into(), json!(not_held));
    o.insert("unknown".into(), json!(unknown));
    o.insert("critical".into(), Value::Bool(p.critical));
    o.insert("reasons".into(), json!(p.reasons));
    o.insert("can_withdraw".into(), can_withdraw);
    o.insert(
        "ip_restricted".into(),
        p.ip_restricted
            .map(Value::Bool)
            .unwrap_or_else(|| Value::from("unknown")),
    );
    o.insert(
        "expire_at".into(),
        p.expire_at
            .map(|t| Value::from(ts(t)))
            .unwrap_or(Value::Null),
    );
    o
}

impl ProbePermissions {
    const INFO: StepInfo = StepInfo {
        name: "exchange.probe_permissions",
        effect: Effect::Read,
        description: "Finds which scopes the old key holds by harmless reads; flags withdrawal scope or no IP allowlist as critical",
        args: &[],
        outputs: &[
            "scopes",
            "not_held",
            "unknown",
            "critical",
            "reasons",
            "can_withdraw",
            "ip_restricted",
            "expire_at",
            "path",
        ],
    };
}

#[async_trait]
impl StepKind for ProbePermissions {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let session = ctx.exchange()?;
        let primary = session.primary().clone();
        // A key deleted before it could be probed (the user acted at once, as told) is not a
        // failure of this step: its scopes are unknown, and saying so lets the replacement
        // checklist, which uses these outputs, still be written with every scope as unknown
        // and the key treated as critical (nothing is known, so assume the worst).
        let probed = if session.old_key_given() {
            primary.probe_permissions().await
        } else {
            Err(crate::exchange::Error::Config(
                "its credentials were not given to this resume".into(),
            ))
        };
        let (probe, deleted) = match probed {
            Ok(p) => (p, None),
            Err(e) if e.is_key_dead() || !session.old_key_given() => {
                session.primary_died();
                let why = if session.old_key_given() {
                    format!(
                        "the old key no longer works ({e}), so its permissions could not be probed: it was deleted, which is what containment needs; treat every scope as possibly held"
                    )
                } else {
                    format!("the old key's permissions could not be probed ({e}); treat every scope as possibly held")
                };
                let p = PermissionProbe {
                    scopes: Vec::new(),
                    ip_restricted: None,
                    expire_at: None,
                    critical: true,
                    reasons: vec![why.clone()],
                };
                (p, Some(why))
            }
            Err(e) => return Err(e.into()),
        };
        let rel = "permissions.json".to_string();
        ctx.rundir.write(&rel, &to_json(&probe)?)?;
        let mut outputs = probe_outputs(&probe);
        outputs.insert("path".into(), Value::from(rel.clone()));
        if let Some(why) = deleted {
            let masked = session.old_key_masked();
            ctx.printer
                .warn(&format!("[{}] key {masked}: {why}", ctx.step_id));
            return Ok(StepOutcome {
                outputs,
                summary: format!(
                    "key {masked}: scopes unknown ({})",
                    if session.old_key_given() {
                        "deleted before they could be probed"
                    } else {
                        "its credentials were not given to this resume"
                    }
                ),
                artifacts: vec![rel],
            });
        }
        let held = outputs["scopes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if probe.critical {
            ctx.printer.important(&format!(
                "CRITICAL: key {}: {}",
                primary.key_id_masked(),
                probe.reasons.join("; ")
            ));
        }
        let summary = format!(
            "key {} holds: {}{}",
            primary.key_id_masked(),
            if held.is_empty() {
                "no scope found"
            } else {
                &held
            },
            if probe.critical { " (critical)" } else { "" }
        );
        Ok(StepOutcome {
            outputs,
            summary,
            artifacts: vec![rel],
        })
    }
}
