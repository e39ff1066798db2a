//! `keys.json` and `analysis.json`: the key facts and the provenance of the analysis, built
//! from the same joins as the readable reports.

use serde_json::json;

use crate::analysis::{AnalysisInput, AnalysisResult, OrderVerdict, TransferVerdict};
use crate::report::facts::RunFacts;
use crate::report::joined::Joined;

/// `keys.json`: the key facts, masked (keys as the exchange listed them, the probed
/// permissions, the withdrawal allowlist, R14 findings and what the run saw of revocation).
pub fn keys_json(facts: &RunFacts, input: &AnalysisInput, result: &AnalysisResult) -> Vec<u8> {
    let v = json!({
        "exchange": input.exchange,
        "key_masked": facts.key_masked,
        "revocation": facts.revocation,
        "keys": input.keys,
        "permissions": input.permissions,
        "withdrawal_addresses": input.withdrawal_addresses,
        "key_findings": result.key_findings,
    });
    pretty(&v)
}

/// `analysis.json`: the provenance of the analysis: thresholds, windows, identifier pattern,
/// bot logs (hashes, skipped rows), gaps, notes, loss, and every flag with its reasons.
pub fn analysis_json(facts: &RunFacts, j: &Joined<'_>) -> Vec<u8> {
    let (input, result) = (j.input, j.result);
    let bot_logs: Vec<_> = input
        .bot_logs
        .iter()
        .map(|l| {
            json!({
                "format": l.format,
                "bundle_path": l.bundle_path,
                "sha256": l.sha256,
                "entries": l.entries.len(),
                "skipped": l.skipped,
                "stopped": l.stopped,
            })
        })
        .collect();
    /// A flag as `analysis.json` writes it: the order it is about, then the verdict.
    #[derive(serde::Serialize)]
    struct Flag<'a> {
        order_id: &'a str,
        #[serde(flatten)]
        verdict: &'a OrderVerdict,
    }
    let flags: Vec<Flag<'_>> = j
        .flagged()
        .map(|(o, v)| Flag {
            order_id: &o.id,
            verdict: v,
        })
        .collect();
    let transfers: Vec<&TransferVerdict> = j.transfer_verdicts.values().copied().collect();
    let v = json!({
        "tool_version": facts.tool_version,
        "playbook": {"path": facts.playbook_path, "sha256": facts.playbook_sha256},
        "exchange": input.exchange,
        "key_masked": input.key_masked,
        "investigation_window": facts.investigation_window.or(input.window),
        "reference_window": facts.reference_window,
        "suspicious_window": result.suspicious_window,
        "thresholds": result.thresholds,
        "had_bot_log": result.had_bot_log,
        "identifier_pattern": result.identifier_pattern,
        "bot_logs": bot_logs,
        "notes": result.notes,
        "gaps": result.gaps,
        "loss": result.loss,
        "key_findings": result.key_findings,
        "transfers": transfers,
        "counts": {
            "orders": input.orders.len(),
            "fills": input.fills.len(),
            "withdrawals": input.withdrawals.len(),
            "deposits": input.deposits.len(),
            "flagged": flags.len(),
        },
        "flags": flags,
        "unauthorized_trades_rows": "one row per fill of a flagged order when its fills are known (row_kind=fill, figures per fill against the order's reference price); one row per flagged order otherwise (row_kind=order, figures from analysis)",
    });
    pretty(&v)
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("json value serializes");
    out.push(b'\n');
    out
}
