//! R13: every withdrawal, judged on the evidence of the withdrawal itself, with or without an
//! order flagged.
//!
//! First the destination: the address the exchange gives; else, since withdrawals go only to
//! allowlisted addresses, the only allowlisted address of that currency (and network) when
//! there is one ("inferred"); else several candidates ("ambiguous"); else nothing is known.
//! A destination is *established* when a completed withdrawal went there at least a day
//! earlier (a tagged allowlist entry never is: it is a shared address, such as an exchange's
//! deposit wallet, whose owner the list cannot tell).
//!
//! Then the policy, per withdrawal (`high` is claimed, `review` listed for the user to
//! confirm):
//!
//! | destination | outcome |
//! |---|---|
//! | an address given, not on a known allowlist | high |
//! | an address given, allowlist unknown, no earlier withdrawal in the export used it, inside the investigation window | high |
//! | new (never used; with the allowlist unknown and before the investigation window, an address no earlier withdrawal in the export used) and one of: added to the allowlist within 7 days, taking at least half of what the account held of the currency, more than `size_ratio` × the largest earlier withdrawal of the currency, or one of several withdrawals to never-used destinations within one reference window | high |
//! | new, ambiguous with a never-used candidate, or unknown, during the incident | high |
//! | the same, before the incident | none: listed with the reason (the owner's first use of an address) |
//! | established (or ambiguous among established ones), during the incident | review: the owner moving funds to safety looks the same |
//! | established, before the incident | none: the owner's cash-out |
//!
//! The incident starts one reference window before the first order flagged `high` or the
//! first withdrawal made `high` by its destination alone, so a thief who only withdraws is
//! found without any order.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::super::model::{Confidence, RuleHit, TransferVerdict};
use super::{f, hit, Ctx};
use crate::exchange::Transfer;
use crate::time::ts;

/// An earlier completed withdrawal vouches for a destination after this long.
const ESTABLISHED_AFTER_HOURS: i64 = 24;
/// An allowlist entry this recent is "recently registered".
const RECENT_DAYS: i64 = 7;
/// A withdrawal taking this share of the currency held is "most of it".
const MOST_OF_HOLDING: f64 = 0.5;

/// Where a withdrawal went, as far as the data tells.
#[derive(Debug, Clone, PartialEq)]
enum Dest<'a> {
    Known(&'a str),
    /// The only allowlisted address of the currency (and network).
    Inferred(&'a str),
    /// Several allowlisted addresses of the currency.
    Ambiguous(Vec<&'a str>),
    Unknown,
}

/// What the destination alone says about one withdrawal.
#[derive(Debug)]
enum Judgement {
    /// Claimed whatever the timing: the reason.
    High(String),
    /// To a destination the account used before (or only such candidates): review during
    /// the incident, nothing before it.
    Established(String),
    /// A new or unknown destination without further evidence: high during the incident,
    /// review before it.
    Pending(String),
}

/// Every withdrawal's destination assessment, in time order.
pub(crate) struct Assessment<'a> {
    items: Vec<(&'a Transfer, Judgement, bool)>,
}

impl<'a> Assessment<'a> {
    /// The withdrawals whose destination the account never used before (or cannot be told):
    /// what R7's liquidate-then-withdraw variant looks for.
    pub(crate) fn to_new_destinations(&self) -> Vec<&'a Transfer> {
        self.items
            .iter()
            .filter(|(_, _, new)| *new)
            .map(|(w, _, _)| *w)
            .collect()
    }
}

fn done(w: &Transfer) -> bool {
    w.status == crate::exchange::TransferStatus::Completed
}

fn describe(d: &Dest<'_>) -> String {
    match d {
        Dest::Known(a) => (*a).to_string(),
        Dest::Inferred(a) => format!(
            "{a} (inferred: the only allowlisted address of the currency, and withdrawals go \
             only to allowlisted addresses)"
        ),
        Dest::Ambiguous(c) => format!("one of the {} allowlisted addresses", c.len()),
        Dest::Unknown => "an address the exchange's withdrawal list does not give".to_string(),
    }
}

/// Judges every withdrawal's destination (see the module documentation).
pub(crate) fn assess<'a>(ctx: &Ctx<'a>) -> Assessment<'a> {
    let input = ctx.input;
    let window = Duration::minutes(ctx.th.reference_window_minutes.max(1));
    let mut idx: Vec<usize> = (0..input.withdrawals.len()).collect();
    idx.sort_by(|&a, &b| {
        let (a, b) = (&input.withdrawals[a], &input.withdrawals[b]);
        a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))
    });
    let allow = &input.withdrawal_addresses;
    let listed: BTreeSet<(&str, &str)> = allow
        .iter()
        .map(|a| (a.currency.as_str(), a.address.as_str()))
        .collect();
    let tagged: BTreeSet<(&str, &str)> = allow
        .iter()
        .filter(|a| {
            a.secondary_address
                .as_deref()
                .is_some_and(|t| !t.is_empty())
        })
        .map(|a| (a.currency.as_str(), a.address.as_str()))
        .collect();
    let resolve = |w: &'a Transfer| -> Dest<'a> {
        if let Some(a) = w.address.as_deref().filter(|a| !a.is_empty()) {
            return Dest::Known(a);
        }
        let cands: Vec<&str> = allow
            .iter()
            .filter(|a| a.currency == w.currency)
            .filter(|a| match (&a.net_type, &w.net_type) {
                (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                _ => true,
            })
            .map(|a| a.address.as_str())
            .collect();
        match cands.len() {
            0 => Dest::Unknown,
            1 => Dest::Inferred(cands[0]),
            _ => Dest::Ambiguous(cands),
        }
    };
    let dests: Vec<Dest<'a>> = idx
        .iter()
        .map(|&i| resolve(&input.withdrawals[i]))
        .collect();
    // Completed withdrawals per (currency, address) with a known or inferred destination.
    let mut uses: BTreeMap<(&str, &str), Vec<DateTime<Utc>>> = BTreeMap::new();
    for (k, &i) in idx.iter().enumerate() {
        let w = &input.withdrawals[i];
        if let (Dest::Known(a) | Dest::Inferred(a), true) = (&dests[k], done(w)) {
            uses.entry((w.currency.as_str(), a))
                .or_default()
                .push(w.created_at);
        }
    }
    let established_before =
        |cur: &str, addr: &str, t: DateTime<Utc>| -> (usize, Option<DateTime<Utc>>) {
            if tagged.contains(&(cur, addr)) {
                return (0, None);
            }
            let limit = t - Duration::hours(ESTABLISHED_AFTER_HOURS);
            let before: Vec<&DateTime<Utc>> = uses
                .get(&(cur, addr))
                .map(|v| v.iter().filter(|u| **u <= limit).collect())
                .unwrap_or_default();
            (before.len(), before.iter().max().map(|t| **t))
        };
    // Which withdrawals go to a destination never used before (for the burst evidence).
    let new_dest: Vec<bool> = idx
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let w = &input.withdrawals[i];
            match &dests[k] {
                Dest::Known(a) | Dest::Inferred(a) => {
                    established_before(&w.currency, a, w.created_at).0 == 0
                }
                Dest::Ambiguous(c) => c
                    .iter()
                    .any(|a| established_before(&w.currency, a, w.created_at).0 == 0),
                Dest::Unknown => true,
            }
        })
        .collect();
    // The investigation window (none known: all of it counts as inside). The transfer history
    // reaches further back (§7.1) only to show which destinations the owner used before.
    let in_window = |t: DateTime<Utc>| {
        input
            .window
            .as_ref()
            .map_or(true, |v| v.from <= t && t < v.to)
    };
    let mut items = Vec::with_capacity(idx.len());
    for (k, &i) in idx.iter().enumerate() {
        let w = &input.withdrawals[i];
        let what = format!(
            "withdrawal of {} {} at {}",
            w.amount.normalize(),
            w.currency,
            ts(w.created_at)
        );
        let dest = &dests[k];
        let j = match dest {
            Dest::Known(a) if !allow.is_empty() && !listed.contains(&(w.currency.as_str(), a)) => {
                Judgement::High(format!(
                    "{what} to {a}, an address that is not on the account's withdrawal \
                     allowlist{}",
                    if new_dest[k] {
                        " and that no earlier withdrawal used"
                    } else {
                        ""
                    }
                ))
            }
            Dest::Known(a) | Dest::Inferred(a) => {
                let (n, last) = established_before(&w.currency, a, w.created_at);
                // An address the exchange gave, with no allowlist to hold it against.
                let unlisted = allow.is_empty() && matches!(dest, Dest::Known(_));
                if n > 0 {
                    Judgement::Established(format!(
                        "{what} to {}, a destination {n} completed withdrawal(s) used before \
                         (the last at {})",
                        describe(dest),
                        last.map(ts).unwrap_or_default()
                    ))
                } else if unlisted && in_window(w.created_at) {
                    Judgement::High(format!(
                        "{what} to {a}, an address no earlier withdrawal in the export used \
                         (allowlist unknown), inside the investigation window"
                    ))
                } else {
                    // A destination never used before, outside the investigation window (the
                    // older history read as the baseline) or with a known allowlist: claimed
                    // on its own evidence, else during the incident; before it, the owner's
                    // own first use, listed.
                    let evidence = evidence(ctx, i, w, &idx, &new_dest, k, window);
                    let base = if unlisted {
                        format!(
                            "{what} to {a}, an address no earlier withdrawal in the export \
                             used (allowlist unknown), before the investigation window"
                        )
                    } else {
                        format!(
                            "{what} to {}, a destination no completed withdrawal used before",
                            describe(dest)
                        )
                    };
                    if evidence.is_empty() {
                        Judgement::Pending(base)
                    } else {
                        Judgement::High(format!("{base}: {}", evidence.join("; ")))
                    }
                }
            }
            Dest::Ambiguous(c) => {
                let never: Vec<&str> = c
                    .iter()
                    .copied()
                    .filter(|a| established_before(&w.currency, a, w.created_at).0 == 0)
                    .collect();
                if never.is_empty() {
                    Judgement::Established(format!(
                        "{what} to {}, each of which completed withdrawals used before (the \
                         exchange's list does not say which)",
                        describe(dest)
                    ))
                } else {
                    Judgement::Pending(format!(
                        "{what} to {} (the exchange's list does not say which), {} of them never \
                         used before: {}; ask the exchange for the destination",
                        describe(dest),
                        never.len(),
                        never.join(", ")
                    ))
                }
            }
            Dest::Unknown => Judgement::Pending(format!("{what} to {}", describe(dest))),
        };
        items.push((w, j, new_dest[k]));
    }
    Assessment { items }
}

/// What makes a withdrawal to a new destination a claim on its own.
fn evidence(
    ctx: &Ctx<'_>,
    i: usize,
    w: &Transfer,
    idx: &[usize],
    new_dest: &[bool],
    k: usize,
    window: Duration,
) -> Vec<String> {
    let input = ctx.input;
    let mut out = Vec::new();
    if let Some(r) = input
        .withdrawal_addresses
        .iter()
        .filter(|a| a.currency == w.currency && Some(a.address.as_str()) == dest_addr(w, input))
        .find_map(|a| a.registered_at)
    {
        let age = w.created_at - r;
        if age < Duration::days(RECENT_DAYS) {
            out.push(format!(
                "the address was added to the allowlist at {}, {} before",
                ts(r),
                human(age)
            ));
        }
    }
    if let Some(s) = ctx.withdrawal_share(i).filter(|s| *s >= MOST_OF_HOLDING) {
        out.push(format!(
            "it took {:.0}% of the {} the account held",
            s * 100.0,
            w.currency
        ));
    }
    let limit = w.created_at - Duration::hours(ESTABLISHED_AFTER_HOURS);
    let largest: Option<Decimal> = input
        .withdrawals
        .iter()
        .filter(|x| x.currency == w.currency && done(x) && x.created_at <= limit)
        .map(|x| x.amount)
        .max();
    if let Some(l) = largest.filter(|l| !l.is_zero()) {
        let ratio = f(w.amount) / f(l);
        if ratio > ctx.th.size_ratio {
            out.push(format!(
                "{:.1}× the largest earlier withdrawal of {} ({})",
                ratio,
                w.currency,
                l.normalize()
            ));
        }
    }
    let burst = idx
        .iter()
        .enumerate()
        .filter(|(m, _)| *m != k && new_dest[*m])
        .filter(|(_, &j)| {
            let t = input.withdrawals[j].created_at;
            (t - w.created_at).abs() <= window
        })
        .count();
    if burst > 0 {
        out.push(format!(
            "one of {} withdrawals to never-used destinations within {} min",
            burst + 1,
            window.num_minutes()
        ));
    }
    out
}

/// The address a withdrawal names, or the only allowlisted one of its currency.
fn dest_addr<'a>(
    w: &'a Transfer,
    input: &'a super::super::model::AnalysisInput,
) -> Option<&'a str> {
    if let Some(a) = w.address.as_deref().filter(|a| !a.is_empty()) {
        return Some(a);
    }
    let mut c = input
        .withdrawal_addresses
        .iter()
        .filter(|a| a.currency == w.currency);
    match (c.next(), c.next()) {
        (Some(a), None) => Some(a.address.as_str()),
        _ => None,
    }
}

fn human(d: Duration) -> String {
    let m = d.num_minutes();
    if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h", m / 60)
    } else {
        format!("{} days", m / (24 * 60))
    }
}

/// The verdicts, given the first order flagged `high` (the incident starts one reference
/// window before the earliest of it and the first withdrawal `high` on its own evidence).
pub(crate) fn withdrawal_rules(
    ctx: &Ctx<'_>,
    assessment: &Assessment<'_>,
    first_high_order: Option<DateTime<Utc>>,
) -> Vec<TransferVerdict> {
    let input = ctx.input;
    let window = Duration::minutes(ctx.th.reference_window_minutes.max(0));
    let first_high_withdrawal = assessment
        .items
        .iter()
        .filter(|(_, j, _)| matches!(j, Judgement::High(_)))
        .map(|(w, _, _)| w.created_at)
        .min();
    let first = [first_high_order, first_high_withdrawal]
        .into_iter()
        .flatten()
        .min();
    let incident_start = first.map(|t| t - window);
    let during = |t: DateTime<Utc>| incident_start.is_some_and(|s| t >= s);
    let since = || {
        format!(
            "during the incident (from {}, one reference window before the first act claimed \
             as unauthorized at {})",
            incident_start.map(ts).unwrap_or_default(),
            first.map(ts).unwrap_or_default()
        )
    };
    let mut out: BTreeMap<&str, TransferVerdict> = BTreeMap::new();
    for (w, j, _) in &assessment.items {
        let mut rules: Vec<RuleHit> = Vec::new();
        let confidence = match j {
            Judgement::High(r) => {
                rules.push(hit("R13", 1.0, r.clone()));
                Confidence::High
            }
            Judgement::Pending(r) if during(w.created_at) => {
                rules.push(hit("R13", 1.0, format!("{r}; {}", since())));
                Confidence::High
            }
            Judgement::Pending(r) => {
                // Before any incident: the owner's own first use of an address, listed.
                rules.push(hit(
                    "R13",
                    0.3,
                    format!("{r}; not during an incident: listed, not claimed"),
                ));
                Confidence::None
            }
            Judgement::Established(r) if during(w.created_at) => {
                rules.push(hit(
                    "R13",
                    0.3,
                    format!(
                        "{r}; {}: your own move to safety looks the same, so it is listed for \
                         you to confirm, not claimed",
                        since()
                    ),
                ));
                Confidence::Review
            }
            Judgement::Established(_) => Confidence::None,
        };
        if ctx.had_log {
            rules.push(hit(
                "R13",
                0.2,
                "the bot log records no withdrawals: this one was made by a person or another tool"
                    .to_string(),
            ));
        }
        out.insert(
            w.id.as_str(),
            TransferVerdict {
                transfer_id: w.id.clone(),
                rules,
                flagged: confidence == Confidence::High,
                confidence,
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
