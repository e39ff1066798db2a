//! The sanitized view the readable reports (`report.html`, `report.md`, `support_ticket.md`)
//! are rendered from.
//!
//! [`summary`] builds the first screen (what happened, how much, what was done, whether the
//! run is complete, what to do next, in English and the exchange's language) and
//! [`ticket`] the support ticket's data; this module builds the rest and puts them together.
//!
//! [`build`] turns the [`Joined`] orders plus the [`RunFacts`] into [`ReportView`]: every
//! string in it has passed [`sanitize::clean`](crate::report::sanitize::clean) and every
//! number is pre-formatted ([`crate::report::format`]), so the templates only place values
//! (each template's escaping does the rest). The local zone and language come from the run's
//! exchange.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

pub mod summary;
pub mod ticket;

use crate::analysis::{OrderVerdict, RuleHit};
use crate::exchange::{Order, Side, Transfer, Window, WithdrawalAddress};
use crate::report::facts::{Revocation, RunFacts};
use crate::report::format::{confidence, dec, match_kind, rule_ids, score, Money};
pub use crate::report::joined::Joined;
use crate::report::sanitize::clean;
use crate::time::ts;

/// Longest list a readable report shows in full; the CSVs always hold everything.
pub const MAX_LISTED: usize = 1000;

fn window_text(w: &Option<Window>) -> String {
    match w {
        Some(w) => format!("{} → {}", ts(w.from), ts(w.to)),
        None => "not set".into(),
    }
}

// ---------------------------------------------------------------------------------------
// The view the templates read.

#[derive(Debug, Serialize)]
pub struct ReportView {
    pub run: RunView,
    /// The first screen.
    pub summary: summary::SummaryView,
    /// The estimated loss, total first.
    pub loss: LossView,
    pub totals: Totals,
    pub flagged: Vec<FlaggedView>,
    pub flagged_more: usize,
    /// Orders left for a human to review (not in the claim), in their own table.
    pub review: Vec<FlaggedView>,
    pub review_more: usize,
    pub markets: Vec<MarketView>,
    pub withdrawals: Vec<TransferView>,
    pub withdrawals_more: usize,
    /// The flagged withdrawals in full: destination, network, txid, the allowlist entry.
    pub flagged_withdrawals: Vec<TransferView>,
    pub balances: Vec<BalanceView>,
    pub keys: Vec<KeyView>,
    pub permissions: Vec<String>,
    pub key_findings: Vec<ReasonView>,
    pub loss_explanation: Vec<String>,
    pub notes: Vec<String>,
    pub gaps: Vec<GapView>,
    pub gaps_more: usize,
    pub bot_logs: Vec<BotLogView>,
    pub had_bot_log: bool,
    pub identifier_pattern: String,
    pub thresholds: Vec<NameValue>,
    pub timeline: Vec<EventView>,
    pub timeline_more: usize,
    pub steps: Vec<StepView>,
    /// Built in Rust by [`crate::report::timeline`] with every text escaped; the only value a
    /// template inserts unescaped.
    pub timeline_svg: String,
    pub timeline_caption: String,
    pub unauthorized_sha256: String,
    /// Trusted timestamps of the bundle (RFC 3161), oldest first.
    pub timestamps: Vec<TimestampView>,
    pub ticket: ticket::TicketView,
}

/// The estimated loss as the reports state it: the total first, then its parts, all in the
/// quote currency's units.
#[derive(Debug, Serialize)]
pub struct LossView {
    pub quote: String,
    /// `15,443,567.12 USD`
    pub total: String,
    pub overpayment: String,
    pub withdrawn: String,
    pub fees: String,
    /// Everything could be priced.
    pub complete: bool,
    /// What could not be priced (then `total` is the total of the rest).
    pub unpriced: Vec<String>,
    /// The portfolio's change during the response (not part of the claim).
    pub change_during_response: String,
}

/// One trusted timestamp, as the report names it.
#[derive(Debug, Serialize)]
pub struct TimestampView {
    pub tsa: String,
    pub tsa_url: String,
    pub time_utc: String,
    pub time_local: String,
    pub token_file: String,
    pub manifest_file: String,
    pub manifest_sha256: String,
    pub serial: String,
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: String,
    pub exchange: String,
    /// The exchange's display name (as its descriptor spells it).
    pub exchange_display: String,
    pub account: String,
    pub key_masked: String,
    pub tool_version: String,
    pub playbook_path: String,
    pub playbook_sha256: String,
    pub started_at: String,
    pub finished_at: String,
    pub dry_run: bool,
    pub local_zone: String,
    pub window: String,
    pub window_local: String,
    pub reference_window: String,
    pub suspicious_window: String,
    pub server_time: Vec<ServerTimeView>,
    pub revocation: String,
    /// The exchange's home language (`ko`; `en` when unknown): the `lang` of the local blocks.
    pub language: String,
    /// A block in the exchange's home language exists (it is not English).
    pub has_local: bool,
}

#[derive(Debug, Serialize)]
pub struct ServerTimeView {
    pub when: String,
    pub server: String,
    pub local: String,
    pub offset_ms: String,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub orders: usize,
    /// Orders flagged as unauthorized (high confidence): the claim.
    pub flagged: usize,
    /// Flagged orders that filled, at least in part.
    pub flagged_filled: usize,
    /// Orders left for a human to review (not in the claim).
    pub review: usize,
    pub fills: usize,
    pub withdrawals: usize,
    pub withdrawals_flagged: usize,
    pub deposits: usize,
    pub quote: String,
}

#[derive(Debug, Serialize)]
pub struct FlaggedView {
    pub created: String,
    pub order_id: String,
    pub identifier: String,
    pub market: String,
    pub side: String,
    pub ord_type: String,
    pub state: String,
    pub created_utc: String,
    pub created_local: String,
    pub price: String,
    pub volume: String,
    pub executed_volume: String,
    pub funds: String,
    /// Executed funds / executed volume (empty when nothing executed).
    pub avg_price: String,
    pub fee: String,
    pub rules: String,
    pub reasons: Vec<ReasonView>,
    pub score: String,
    pub confidence: String,
    pub match_kind: String,
    pub reference_price: String,
    pub deviation_pct: String,
    pub est_loss: String,
    pub raw_file: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReasonView {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct MarketView {
    pub market: String,
    pub orders: usize,
    pub flagged: usize,
    pub buys: usize,
    pub sells: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferView {
    pub id: String,
    pub currency: String,
    pub amount: String,
    pub fee: String,
    /// The network (`net_type`), or empty.
    pub network: String,
    pub txid: String,
    /// The destination address: from the record, else inferred from the allowlist snapshot
    /// (see `address_source`); empty when neither tells.
    pub address: String,
    /// Where `address` comes from, or why it is unknown.
    pub address_source: String,
    /// `address` is the withdrawal record's own (not inferred from the allowlist).
    pub address_from_record: bool,
    /// Allowlisted addresses it may have gone to, when the record names none and the
    /// allowlist has several for its currency and network.
    pub address_candidates: Vec<String>,
    /// When the allowlist entry was registered, or why that is not known.
    pub registered: String,
    pub state: String,
    pub created_utc: String,
    pub created_local: String,
    /// Both, for reading: `2026-11-29 21:46:38 CET (2026-11-29 20:46:38 UTC)`.
    pub created: String,
    pub done_utc: String,
    pub flagged: bool,
    pub rules: String,
    pub reasons: Vec<ReasonView>,
}

#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub currency: String,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub masked: String,
    pub current: bool,
    /// The scopes the exchange listed, else those the run proved (`make_orders (proven by
    /// this run)`), else `unknown`.
    pub scopes: String,
    pub allowed_ips: String,
    pub expire_at: String,
}

#[derive(Debug, Serialize)]
pub struct GapView {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct BotLogView {
    pub path: String,
    pub format: String,
    pub sha256: String,
    pub entries: usize,
    pub skipped: Vec<GapView>,
    pub skipped_more: usize,
}

#[derive(Debug, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub at_utc: String,
    pub at_local: String,
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct StepView {
    pub id: String,
    pub uses: String,
    pub status: String,
    pub summary: String,
    pub started: String,
    pub finished: String,
}

fn reasons(money: &Money, rules: &[RuleHit]) -> Vec<ReasonView> {
    rules
        .iter()
        .map(|r| ReasonView {
            rule: clean(&r.rule),
            reason: money.humanize(&clean(&r.reason)),
        })
        .collect()
}

fn opt_clean<S: AsRef<str>>(s: &Option<S>) -> String {
    s.as_ref().map(|s| clean(s.as_ref())).unwrap_or_default()
}

/// One order with its verdict, as the flag and review tables show it.
fn order_view(j: &Joined<'_>, o: &Order, v: &OrderVerdict) -> FlaggedView {
    let m = &j.money;
    let quote = o.market.quote.as_str();
    FlaggedView {
        created: j.when(o.created_at),
        order_id: clean(&o.id),
        identifier: opt_clean(&o.client_id),
        market: clean(o.market.as_str()),
        side: o.side.as_str().into(),
        ord_type: clean(&o.native_type),
        state: format!("{:?}", o.state).to_lowercase(),
        created_utc: ts(o.created_at),
        created_local: clean(&o.created_at_local),
        // The limit price, or the amount to spend of an order placed by amount.
        price: match (o.price, o.quote_amount) {
            (Some(p), _) => m.price(p, quote),
            (None, Some(a)) => m.amount(a, quote),
            (None, None) => String::new(),
        },
        volume: dec(o.volume),
        executed_volume: o.executed_volume.normalize().to_string(),
        funds: o
            .executed_funds
            .map(|d| m.amount(d, quote))
            .unwrap_or_default(),
        avg_price: match o.executed_funds {
            Some(f) if !o.executed_volume.is_zero() => {
                m.price((f / o.executed_volume).round_dp(8), quote)
            }
            _ => String::new(),
        },
        fee: m.amount(o.paid_fee, quote),
        rules: rule_ids(&v.rules),
        reasons: reasons(m, &v.rules),
        score: score(v.score),
        confidence: confidence(v.confidence).into(),
        match_kind: match_kind(v.match_kind).into(),
        reference_price: v
            .reference_price
            .map(|p| m.price(p, quote))
            .unwrap_or_default(),
        deviation_pct: dec(v.deviation_pct),
        est_loss: v
            .est_loss_quote
            .map(|d| m.amount(d, quote))
            .unwrap_or_default(),
        raw_file: o
            .provenance
            .as_ref()
            .map(|p| clean(&p.raw_file))
            .unwrap_or_default(),
    }
}

/// Where a withdrawal went: its record's address; else, when the allowlist snapshot holds
/// exactly one address for its currency and network, that one; else the candidates.
pub(crate) fn destination<'a>(
    t: &'a Transfer,
    allowlist: &'a [WithdrawalAddress],
) -> (Option<&'a str>, String, Vec<&'a WithdrawalAddress>) {
    if let Some(a) = t.address.as_deref().filter(|a| !a.is_empty()) {
        let entry: Vec<&WithdrawalAddress> = allowlist
            .iter()
            .filter(|e| e.currency == t.currency && e.address == a)
            .collect();
        return (Some(a), "the withdrawal record".into(), entry);
    }
    let candidates: Vec<&WithdrawalAddress> = allowlist
        .iter()
        .filter(|e| e.currency == t.currency)
        .filter(|e| match (&e.net_type, &t.net_type) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .collect();
    let net = t.net_type.as_deref().unwrap_or("?");
    match candidates.as_slice() {
        [] => (
            None,
            format!(
                "not in the withdrawal record, and the allowlist snapshot holds no {} address on network {net}",
                t.currency
            ),
            candidates,
        ),
        [one] => (
            Some(one.address.as_str()),
            format!(
                "the allowlist snapshot: the withdrawal record names no address, and the only allowlisted {} address on network {net} is this one",
                t.currency
            ),
            candidates,
        ),
        _ => (
            None,
            format!(
                "not in the withdrawal record; the allowlist snapshot holds {} {} addresses on network {net} (below): the txid shows which one received it",
                candidates.len(),
                t.currency
            ),
            candidates,
        ),
    }
}

fn transfer_view(j: &Joined<'_>, t: &Transfer) -> TransferView {
    let m = &j.money;
    let v = j.transfer_verdicts.get(t.id.as_str());
    let (address, source, entries) = destination(t, &j.input.withdrawal_addresses);
    let candidates = if address.is_none() && entries.len() > 1 {
        entries
            .iter()
            .map(|e| {
                clean(&match &e.secondary_address {
                    Some(tag) if !tag.is_empty() => format!("{} (memo/tag {tag})", e.address),
                    _ => e.address.clone(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let registered = if entries.is_empty() {
        "no allowlist entry matches".to_string()
    } else {
        "not reported by the exchange's API; the exchange's withdrawal-address settings show \
         it, and the ticket asks for it"
            .to_string()
    };
    TransferView {
        id: clean(&t.id),
        currency: clean(&t.currency),
        amount: m.amount(t.amount, &t.currency),
        fee: t.fee.map(|f| m.amount(f, &t.currency)).unwrap_or_default(),
        network: opt_clean(&t.net_type),
        txid: opt_clean(&t.txid),
        address_from_record: t.address.as_deref().is_some_and(|a| !a.is_empty()),
        address: address.map(clean).unwrap_or_default(),
        address_source: clean(&source),
        address_candidates: candidates,
        registered,
        state: clean(&t.state),
        created_utc: ts(t.created_at),
        created_local: j.local(t.created_at),
        created: j.when(t.created_at),
        done_utc: t.done_at.map(ts).unwrap_or_default(),
        flagged: v.is_some_and(|v| v.flagged),
        rules: v.map(|v| rule_ids(&v.rules)).unwrap_or_default(),
        reasons: v.map(|v| reasons(m, &v.rules)).unwrap_or_default(),
    }
}

/// The estimated loss, formatted.
fn loss_view(j: &Joined<'_>) -> LossView {
    let m = &j.money;
    let loss = &j.result.loss;
    let q = loss.quote_currency.as_str();
    let quote = if q.is_empty() {
        "quote".to_string()
    } else {
        clean(q)
    };
    LossView {
        total: format!("{} {quote}", m.amount(loss.total, q)),
        overpayment: format!("{} {quote}", m.amount(loss.overpayment, q)),
        withdrawn: format!("{} {quote}", m.amount(loss.withdrawn_value, q)),
        fees: format!("{} {quote}", m.amount(loss.fees, q)),
        complete: loss.unpriced.is_empty(),
        unpriced: loss
            .unpriced
            .iter()
            .map(|u| m.humanize(&clean(u)))
            .collect(),
        change_during_response: loss
            .change_during_response
            .map(|d| format!("{} {quote}", m.amount(d, q)))
            .unwrap_or_else(|| "not computable (balances or reference prices missing)".into()),
        quote,
    }
}

/// Builds the view of the readable reports.
pub fn build(facts: &RunFacts, j: &Joined<'_>, unauthorized_sha256: &str) -> ReportView {
    // The timeline reads every order (a million take a good part of the reports' time): it is
    // drawn on a thread of its own while the rest of the view is built.
    let ((timeline_svg, timeline_caption), view) = crate::par::join(
        || crate::report::timeline::render(facts, j),
        || build_without_timeline(facts, j, unauthorized_sha256),
    );
    ReportView {
        timeline_svg,
        timeline_caption,
        ..view
    }
}

/// [`build`] with the timeline left empty.
fn build_without_timeline(
    facts: &RunFacts,
    j: &Joined<'_>,
    unauthorized_sha256: &str,
) -> ReportView {
    let input = j.input;
    let result = j.result;
    let m = &j.money;
    let flagged_all: Vec<(&Order, &OrderVerdict)> = j.flagged().collect();
    let review_all: Vec<(&Order, &OrderVerdict)> = j.review().collect();
    let flagged: Vec<FlaggedView> = flagged_all
        .iter()
        .take(MAX_LISTED)
        .map(|(o, v)| order_view(j, o, v))
        .collect();
    let review: Vec<FlaggedView> = review_all
        .iter()
        .take(MAX_LISTED)
        .map(|(o, v)| order_view(j, o, v))
        .collect();

    let mut markets: BTreeMap<&str, MarketView> = BTreeMap::new();
    for (o, v) in &j.orders {
        let m = markets
            .entry(o.market.as_str())
            .or_insert_with(|| MarketView {
                market: clean(o.market.as_str()),
                orders: 0,
                flagged: 0,
                buys: 0,
                sells: 0,
            });
        m.orders += 1;
        if v.is_some_and(|v| v.flagged) {
            m.flagged += 1;
        }
        match o.side {
            Side::Buy => m.buys += 1,
            Side::Sell => m.sells += 1,
        }
    }

    let mut withdrawals_sorted: Vec<&Transfer> = input.withdrawals.iter().collect();
    withdrawals_sorted.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let withdrawals: Vec<TransferView> = withdrawals_sorted
        .iter()
        .take(MAX_LISTED)
        .map(|t| transfer_view(j, t))
        .collect();
    let mut flagged_sorted: Vec<&Transfer> = j.flagged_withdrawals().collect();
    flagged_sorted.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let flagged_withdrawals: Vec<TransferView> = flagged_sorted
        .iter()
        .take(MAX_LISTED)
        .map(|t| transfer_view(j, t))
        .collect();

    let mut balances: BTreeMap<&str, (Option<Decimal>, Option<Decimal>)> = BTreeMap::new();
    for b in &input.balances_start {
        balances.entry(b.currency.as_str()).or_default().0 = Some(b.free + b.locked);
    }
    for b in &input.balances_end {
        balances.entry(b.currency.as_str()).or_default().1 = Some(b.free + b.locked);
    }
    let balances = balances
        .into_iter()
        .map(|(c, (s, e))| BalanceView {
            currency: clean(c),
            start: m.balance(s, c),
            end: m.balance(e, c),
        })
        .collect();

    let proven: Vec<&str> = facts
        .proven_scopes
        .iter()
        .map(|p| p.scope.as_str())
        .collect();
    let keys = input
        .keys
        .iter()
        .map(|k| KeyView {
            masked: clean(&k.access_key_masked),
            current: k.is_current,
            scopes: match &k.scopes {
                Some(s) => clean(&s.join(", ")),
                None if k.is_current && !proven.is_empty() => clean(&format!(
                    "at least {} (proven by this run's actions); the others unknown",
                    proven.join(", ")
                )),
                None => "unknown".into(),
            },
            allowed_ips: match &k.allowed_ips {
                Some(ips) if ips.is_empty() => "none (any IP may use the key)".into(),
                Some(ips) => clean(&ips.join(", ")),
                None => "unknown".into(),
            },
            expire_at: k.expire_at.map(ts).unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    let mut permissions = match &input.permissions {
        Some(p) => {
            let mut out: Vec<String> = p
                .scopes
                .iter()
                .map(
                    |s| match facts.proven_scopes.iter().find(|x| x.scope == s.scope) {
                        Some(x) if s.held != Some(true) => {
                            clean(&format!("{}: held (confirmed: {})", s.scope, x.evidence))
                        }
                        _ => {
                            let held = match s.held {
                                Some(true) => "held",
                                Some(false) => "not held",
                                None => "unknown",
                            };
                            clean(&format!("{}: {held} ({})", s.scope, s.evidence))
                        }
                    },
                )
                .collect();
            if p.critical {
                out.push("CRITICAL: the key could withdraw or had no IP restriction".into());
            }
            out.extend(p.reasons.iter().map(|r| clean(r)));
            out
        }
        None => vec![],
    };
    for x in &facts.proven_scopes {
        let listed = input
            .permissions
            .as_ref()
            .is_some_and(|p| p.scopes.iter().any(|s| s.scope == x.scope));
        if !listed {
            permissions.push(clean(&format!(
                "{}: held (confirmed: {})",
                x.scope, x.evidence
            )));
        }
    }

    let log_path = |log: usize| {
        input
            .bot_logs
            .get(log)
            .map(|l| clean(&l.bundle_path))
            .unwrap_or_else(|| format!("bot log #{log}"))
    };
    let gaps = result
        .gaps
        .iter()
        .take(MAX_LISTED)
        .map(|g| GapView {
            file: log_path(g.log),
            line: g.line,
            reason: clean(&g.reason),
        })
        .collect();
    let bot_logs = input
        .bot_logs
        .iter()
        .map(|l| BotLogView {
            path: clean(&l.bundle_path),
            format: serde_json::to_value(l.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            sha256: clean(&l.sha256),
            entries: l.entries.len(),
            skipped: l
                .skipped
                .iter()
                .take(MAX_LISTED)
                .map(|s| GapView {
                    file: clean(&l.bundle_path),
                    line: s.line,
                    reason: clean(&s.reason),
                })
                .collect(),
            skipped_more: l.skipped.len().saturating_sub(MAX_LISTED),
        })
        .collect();

    let t = &result.thresholds;
    let thresholds = [
        (
            "fuzzy volume tolerance (fraction)",
            t.fuzzy_volume_tolerance.to_string(),
        ),
        (
            "fuzzy time tolerance (s)",
            t.fuzzy_time_tolerance_secs.to_string(),
        ),
        (
            "R4 price deviation (fraction)",
            t.price_deviation.to_string(),
        ),
        ("R4 hard multiple", t.price_hard_multiple.to_string()),
        ("R5 footprint share", t.footprint_share.to_string()),
        ("R6 burst multiple", t.burst_multiple.to_string()),
        ("R8 contra loss (fraction)", t.contra_loss.to_string()),
        ("R11 size ratio", t.size_ratio.to_string()),
        (
            "reference window (min before)",
            t.reference_window_minutes.to_string(),
        ),
        ("flag score", t.flag_score.to_string()),
    ]
    .into_iter()
    .map(|(n, v)| NameValue {
        name: n.into(),
        value: v,
    })
    .collect();

    // The UTC timeline: the response's steps, flagged orders and withdrawals, revocation.
    let mut events: Vec<(DateTime<Utc>, u8, String, String)> = Vec::new();
    events.push((facts.started_at, 0, "response".into(), "run started".into()));
    for s in &facts.steps {
        if let Some(at) = s.started_at.or(s.finished_at) {
            events.push((
                at,
                1,
                "response".into(),
                m.humanize(&clean(&if s.summary.trim().is_empty() {
                    format!("step {} ({}): {}", s.id, s.uses, s.status.report_label())
                } else {
                    format!(
                        "step {} ({}): {} — {}",
                        s.id,
                        s.uses,
                        s.status.report_label(),
                        s.summary
                    )
                })),
            ));
        }
    }
    // Only the earliest MAX_LISTED of each list can be among the first MAX_LISTED events.
    for (o, v) in flagged_all.iter().take(MAX_LISTED) {
        events.push((
            o.created_at,
            2,
            "flagged order".into(),
            clean(&format!(
                "{} {} {} {} [{}] {}",
                o.market.as_str(),
                o.side.as_str(),
                o.native_type,
                o.id,
                rule_ids(&v.rules),
                confidence(v.confidence)
            )),
        ));
    }
    for w in withdrawals_sorted.iter().take(MAX_LISTED) {
        let flagged = j
            .transfer_verdicts
            .get(w.id.as_str())
            .is_some_and(|v| v.flagged);
        events.push((
            w.created_at,
            3,
            if flagged {
                "flagged withdrawal"
            } else {
                "withdrawal"
            }
            .into(),
            clean(&{
                let (to, _, candidates) = destination(w, &input.withdrawal_addresses);
                format!(
                    "{} {} {}{} → {}{}",
                    w.id,
                    m.amount(w.amount, &w.currency),
                    w.currency,
                    w.net_type
                        .as_deref()
                        .map(|n| format!(" (network {n})"))
                        .unwrap_or_default(),
                    match to {
                        Some(a) => a.to_string(),
                        None if candidates.len() > 1 => format!(
                            "one of {} allowlisted addresses (see Withdrawals)",
                            candidates.len()
                        ),
                        None => "address not recorded".into(),
                    },
                    w.txid
                        .as_deref()
                        .map(|t| format!("; txid {t}"))
                        .unwrap_or_default()
                )
            }),
        ));
    }
    if let Revocation::Revoked {
        observed_at,
        evidence,
        ..
    } = &facts.revocation
    {
        events.push((
            *observed_at,
            4,
            "key revoked".into(),
            clean(&format!("leaked key refused by the exchange: {evidence}")),
        ));
    }
    events.push((
        facts.finished_at,
        9,
        "response".into(),
        "run finished".into(),
    ));
    events.sort_by_key(|e| (e.0, e.1));
    let timeline_more = events.len().saturating_sub(MAX_LISTED)
        + flagged_all.len().saturating_sub(MAX_LISTED)
        + withdrawals_sorted.len().saturating_sub(MAX_LISTED);
    let timeline = events
        .into_iter()
        .take(MAX_LISTED)
        .map(|(at, _, kind, text)| EventView {
            at_utc: ts(at),
            at_local: j.local(at),
            kind,
            text,
        })
        .collect();

    let steps = facts
        .steps
        .iter()
        .map(|s| StepView {
            id: clean(&s.id),
            uses: clean(&s.uses),
            status: s.status.report_label().into(),
            summary: m.humanize(&clean(&s.summary)),
            started: s.started_at.map(ts).unwrap_or_default(),
            finished: s.finished_at.map(ts).unwrap_or_default(),
        })
        .collect();

    let mut server_time = Vec::new();
    for (when, st) in [
        ("start", &facts.server_time_start),
        ("end", &facts.server_time_end),
    ] {
        if let Some(st) = st {
            server_time.push(ServerTimeView {
                when: when.into(),
                server: ts(st.server),
                local: ts(st.local),
                offset_ms: st.offset_ms.to_string(),
            });
        }
    }
    let revocation = match &facts.revocation {
        Revocation::NotChecked => "not checked by this run".to_string(),
        Revocation::StillValid { checked_at } => {
            format!(
                "STILL VALID when last checked at {} — delete it now",
                ts(*checked_at)
            )
        }
        Revocation::Revoked {
            observed_at,
            evidence,
            ..
        } => format!(
            "deleted: refused by the exchange from {} on ({})",
            j.when(*observed_at),
            clean(evidence)
        ),
    };
    let window = facts.investigation_window.or(input.window);
    let run = RunView {
        id: clean(&facts.run_id),
        exchange: clean(&facts.exchange),
        exchange_display: clean(
            j.exchange
                .map(|d| d.display)
                .unwrap_or(facts.exchange.as_str()),
        ),
        language: j.language().unwrap_or("en").into(),
        has_local: j.language().is_some_and(|l| l != "en"),
        account: facts
            .account_label
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| "(not given; set it with --input account=...)".into()),
        key_masked: clean(&facts.key_masked),
        tool_version: clean(&facts.tool_version),
        playbook_path: clean(&facts.playbook_path),
        playbook_sha256: clean(&facts.playbook_sha256),
        started_at: ts(facts.started_at),
        finished_at: ts(facts.finished_at),
        dry_run: facts.dry_run,
        local_zone: j.local_zone(),
        window: window_text(&window),
        window_local: match window {
            Some(w) => format!("{} → {}", j.local(w.from), j.local(w.to)),
            None => "not set".into(),
        },
        reference_window: window_text(&facts.reference_window),
        suspicious_window: window_text(&result.suspicious_window),
        server_time,
        revocation,
    };

    let loss = loss_view(j);
    let totals = Totals {
        orders: input.orders.len(),
        flagged: flagged_all.len(),
        flagged_filled: flagged_all
            .iter()
            .filter(|(o, _)| !o.executed_volume.is_zero())
            .count(),
        review: review_all.len(),
        fills: input.fills.len(),
        withdrawals: input.withdrawals.len(),
        withdrawals_flagged: result.transfers.iter().filter(|t| t.flagged).count(),
        deposits: input.deposits.len(),
        quote: loss.quote.clone(),
    };

    let timestamps: Vec<TimestampView> = facts
        .timestamps
        .iter()
        .map(|t| TimestampView {
            tsa: clean(&t.tsa),
            tsa_url: opt_clean(&t.tsa_url),
            time_utc: ts(t.gen_time),
            time_local: j.local(t.gen_time),
            token_file: clean(&t.token_file),
            manifest_file: clean(&t.manifest_file),
            manifest_sha256: clean(&t.manifest_sha256),
            serial: clean(&t.serial),
        })
        .collect();
    let summary = summary::build(facts, j, &loss, &totals);
    let ticket = ticket::build(facts, j, &loss, &totals, &flagged_withdrawals);

    ReportView {
        run,
        summary,
        loss,
        totals,
        flagged_more: flagged_all.len().saturating_sub(MAX_LISTED),
        flagged,
        review_more: review_all.len().saturating_sub(MAX_LISTED),
        review,
        flagged_withdrawals,
        markets: markets.into_values().collect(),
        withdrawals_more: withdrawals_sorted.len().saturating_sub(MAX_LISTED),
        withdrawals,
        balances,
        keys,
        permissions,
        key_findings: reasons(m, &result.key_findings),
        loss_explanation: result
            .loss
            .explanation
            .iter()
            .map(|e| m.humanize(&clean(e)))
            .collect(),
        notes: result.notes.iter().map(|n| clean(n)).collect(),
        gaps_more: result.gaps.len().saturating_sub(MAX_LISTED),
        gaps,
        bot_logs,
        had_bot_log: result.had_bot_log,
        identifier_pattern: result
            .identifier_pattern
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| "not learned".into()),
        thresholds,
        timeline,
        timeline_more,
        steps,
        timeline_svg: String::new(),
        timeline_caption: String::new(),
        unauthorized_sha256: unauthorized_sha256.to_string(),
        timestamps,
        ticket,
    }
}
