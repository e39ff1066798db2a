//! R13: every withdrawal, with the anomalies found.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::super::model::{AnalysisInput, TransferVerdict};
use super::hit;
use crate::time::ts;

/// R13: every withdrawal, with the anomalies found. Flagged when the address is new (not used
/// by an earlier withdrawal in the export) or not on the exchange's allowlist. Some exchanges'
/// withdrawal list carries no address, so a withdrawal is also flagged when it was made
/// inside the incident: at or after `reference_window` before the first order flagged as
/// unauthorized (`incident_from`), when the attacker held the key, unless its address is
/// allowlisted, untagged, and the destination of a completed withdrawal from before the
/// incident (a low-weight hit instead). Earlier withdrawals (the user's own cash-outs) are
/// listed but not flagged.
pub(crate) fn withdrawal_rules(
    input: &AnalysisInput,
    had_log: bool,
    incident_from: Option<DateTime<Utc>>,
    reference_window: Duration,
) -> Vec<TransferVerdict> {
    let mut ws: Vec<&crate::exchange::Transfer> = input.withdrawals.iter().collect();
    ws.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let allow: BTreeSet<(&str, &str)> = input
        .withdrawal_addresses
        .iter()
        .map(|a| (a.currency.as_str(), a.address.as_str()))
        .collect();
    // Addresses known to be the user's own destinations: a completed withdrawal went there
    // before the incident began. A probe during the incident, or an attempt that never
    // completed, proves nothing.
    let incident_start = incident_from.map(|f| f - reference_window);
    let settled_before: BTreeSet<(&str, &str)> = ws
        .iter()
        .filter(|w| incident_start.is_some_and(|s| w.created_at < s))
        .filter(|w| w.state.eq_ignore_ascii_case("done"))
        .filter_map(|w| Some((w.currency.as_str(), w.address.as_deref()?)))
        .filter(|(_, a)| !a.is_empty())
        .collect();
    // Allowlist entries with a memo/tag: a shared address (an exchange's deposit wallet) whose
    // owner the withdrawal list, carrying no tag, cannot tell.
    let tagged: BTreeSet<(&str, &str)> = input
        .withdrawal_addresses
        .iter()
        .filter(|a| {
            a.secondary_address
                .as_deref()
                .is_some_and(|t| !t.is_empty())
        })
        .map(|a| (a.currency.as_str(), a.address.as_str()))
        .collect();
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut out: BTreeMap<&str, TransferVerdict> = BTreeMap::new();
    for w in ws {
        let mut rules = Vec::new();
        let addr = w.address.as_deref().unwrap_or("");
        let key = (w.currency.as_str(), addr);
        let listed = allow.contains(&key);
        let new = !addr.is_empty() && !seen.contains(&key);
        let mut flagged = false;
        if !addr.is_empty() && !listed && !allow.is_empty() {
            flagged = true;
            rules.push(hit(
                "R13",
                1.0,
                format!(
                    "withdrawal of {} {} at {} to {addr}, an address that is not on the \
                     account's withdrawal allowlist{}",
                    w.amount.normalize(),
                    w.currency,
                    ts(w.created_at),
                    if new {
                        " and that no earlier withdrawal used"
                    } else {
                        ""
                    }
                ),
            ));
        } else if new && !listed {
            flagged = true;
            rules.push(hit(
                "R13",
                1.0,
                format!(
                    "withdrawal of {} {} at {} to {addr}, an address no earlier withdrawal in \
                     the export used (allowlist unknown)",
                    w.amount.normalize(),
                    w.currency,
                    ts(w.created_at)
                ),
            ));
        } else if new {
            rules.push(hit(
                "R13",
                0.3,
                format!(
                    "first withdrawal to {addr} in the export (the address is on the allowlist)"
                ),
            ));
        }
        if let Some(from) = incident_from.filter(|f| w.created_at >= *f - reference_window) {
            if !flagged && listed && settled_before.contains(&key) && !tagged.contains(&key) {
                // An allowlisted address that earlier withdrawals used: as likely the
                // victim moving funds to safety as the attacker. Reported, not claimed.
                rules.push(hit(
                    "R13",
                    0.3,
                    format!(
                        "withdrawal of {} {} at {}, during the incident (the first order flagged \
                         as unauthorized was placed at {}), but to {addr}, an allowlisted \
                         address a completed withdrawal used before the incident: check \
                         whether you made it",
                        w.amount.normalize(),
                        w.currency,
                        ts(w.created_at),
                        ts(from),
                    ),
                ));
            } else if !flagged {
                flagged = true;
                rules.push(hit(
                    "R13",
                    1.0,
                    format!(
                        "withdrawal of {} {} at {}, during the incident: the first order flagged \
                         as unauthorized was placed at {}{}",
                        w.amount.normalize(),
                        w.currency,
                        ts(w.created_at),
                        ts(from),
                        if addr.is_empty() {
                            " (the exchange's withdrawal list gives no address to check)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        if had_log {
            rules.push(hit(
                "R13",
                0.2,
                "the bot log records no withdrawals: this one was made by a person or another tool"
                    .to_string(),
            ));
        }
        seen.insert(key);
        out.insert(
            w.id.as_str(),
            TransferVerdict {
                transfer_id: w.id.clone(),
                rules,
                flagged,
            },
        );
    }
    // Keep the input order.
    input
        .withdrawals
        .iter()
        .filter_map(|w| out.remove(w.id.as_str()))
        .collect()
}
