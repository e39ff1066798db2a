//! The joined, sanitized view the readable reports are rendered from.
//!
//! [`Joined`] pairs each exchange order with its verdict and fills in a deterministic order
//! (time, then id). [`build`] turns it plus the [`RunFacts`] into [`ReportView`]: every string
//! in it has passed [`sanitize::clean`] and every number is pre-formatted, so the templates
//! only place values (each template's escaping does the rest). `keys.json` and
//! `analysis.json` are built here too, from the same joins.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use crate::analysis::{
    AnalysisInput, AnalysisResult, Confidence, MatchKind, OrderVerdict, RuleHit, TransferVerdict,
};
use crate::engine::journal::ts;
use crate::exchange::{Fill, Order, Side, Transfer, Window};
use crate::report::facts::{Revocation, RunFacts};
use crate::report::sanitize::clean;

/// Longest list a readable report shows in full; the CSVs always hold everything.
pub const MAX_LISTED: usize = 1000;

/// Orders with their verdicts and fills, in a deterministic order.
pub struct Joined<'a> {
    pub input: &'a AnalysisInput,
    pub result: &'a AnalysisResult,
    /// Every order, sorted by (created_at, id), with its verdict if analysis gave one.
    pub orders: Vec<(&'a Order, Option<&'a OrderVerdict>)>,
    /// Every fill, sorted by (created_at, id).
    pub fills: Vec<&'a Fill>,
    pub fills_by_order: BTreeMap<&'a str, Vec<&'a Fill>>,
    pub transfer_verdicts: BTreeMap<&'a str, &'a TransferVerdict>,
    flagged_ids: BTreeSet<&'a str>,
}

impl<'a> Joined<'a> {
    pub fn new(input: &'a AnalysisInput, result: &'a AnalysisResult) -> Self {
        // Verdicts sit at their order's index: `analyze` gives one per order, or none at all
        // for a run that never reached analysis (`write_bundle` refuses anything else).
        let mut orders: Vec<(&Order, Option<&OrderVerdict>)> = input
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o, result.verdicts.get(i)))
            .collect();
        orders.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
        let mut fills: Vec<&Fill> = input.fills.iter().collect();
        fills.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut fills_by_order: BTreeMap<&str, Vec<&Fill>> = BTreeMap::new();
        for f in &fills {
            fills_by_order
                .entry(f.order_id.as_str())
                .or_default()
                .push(f);
        }
        let mut transfer_verdicts = BTreeMap::new();
        for t in &result.transfers {
            transfer_verdicts.entry(t.transfer_id.as_str()).or_insert(t);
        }
        let flagged_ids = orders
            .iter()
            .filter(|(_, v)| v.is_some_and(|v| v.flagged))
            .map(|(o, _)| o.id.as_str())
            .collect();
        Joined {
            flagged_ids,
            input,
            result,
            orders,
            fills,
            fills_by_order,
            transfer_verdicts,
        }
    }

    /// Flagged orders with their verdicts, in time order.
    pub fn flagged(&self) -> impl Iterator<Item = (&'a Order, &'a OrderVerdict)> + '_ {
        self.orders
            .iter()
            .filter_map(|(o, v)| v.filter(|v| v.flagged).map(|v| (*o, v)))
    }

    pub fn order_flagged(&self, order_id: &str) -> bool {
        self.flagged_ids.contains(order_id)
    }

    /// `bot/<file>:<line>` of a verdict's matched bot-log row.
    pub fn matched_row(&self, v: &OrderVerdict) -> String {
        match v.matched_row {
            Some((log, line)) => {
                let file = self
                    .input
                    .bot_logs
                    .get(log)
                    .map(|l| l.bundle_path.as_str())
                    .unwrap_or("?");
                format!("{file}:{line}")
            }
            None => String::new(),
        }
    }

    pub fn local_offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.input.local_utc_offset_secs)
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
    }

    /// A time in the exchange's local zone, milliseconds, with its offset.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.local_offset())
            .to_rfc3339_opts(SecondsFormat::Millis, false)
    }

    /// Name of the exchange's local zone (`KST` for +09:00).
    pub fn local_zone(&self) -> String {
        match self.input.local_utc_offset_secs {
            32400 => "KST".into(),
            0 => "UTC".into(),
            s => {
                let sign = if s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                format!("UTC{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
            }
        }
    }
}

/// A decimal cell: empty when unknown.
pub fn dec(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// A computed money figure, rounded for reading.
pub fn money(d: Decimal) -> String {
    d.round_dp(8).normalize().to_string()
}

/// Currencies without a minor unit: amounts in them read as whole units.
const NO_MINOR_UNIT: &[&str] = &["KRW"];

fn whole_units(currency: &str) -> bool {
    NO_MINOR_UNIT
        .iter()
        .any(|c| c.eq_ignore_ascii_case(currency.trim()))
}

/// `1234567.5` → `1,234,567.5` (the sign and the decimals are kept).
fn group_thousands(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(s.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// An amount of `currency` for the readable reports (the CSVs and JSON keep exact values):
/// KRW has no minor unit, so whole won with thousands separators (`15,525,711`); any other
/// currency up to 8 decimals, trailing zeros trimmed.
pub fn amount(d: Decimal, currency: &str) -> String {
    if whole_units(currency) {
        let r = d.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        let r = if r.is_zero() { Decimal::ZERO } else { r };
        group_thousands(&r.normalize().to_string())
    } else {
        money(d)
    }
}

/// A unit price quoted in `currency` for the readable reports: KRW prices of cheap coins have
/// decimals, so they keep up to 8 (trimmed), with thousands separators; other quote
/// currencies as [`money`].
pub fn price(d: Decimal, currency: &str) -> String {
    if whole_units(currency) {
        group_thousands(&money(d))
    } else {
        money(d)
    }
}

/// Rewrites every `<number> KRW` of a sentence (the analysis' and the steps' explanations)
/// as [`amount`] does, so the prose agrees with the figures above it; anything else is kept.
pub fn humanize_amounts(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let currency = next.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let plain = w.contains(|c: char| c.is_ascii_digit())
            && w.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
        let parsed = if whole_units(currency) && plain {
            w.parse::<Decimal>().ok()
        } else {
            None
        };
        out.push(match parsed {
            Some(d) => amount(d, currency),
            None => (*w).to_string(),
        });
    }
    out.join(" ")
}

/// The quote currency of a market: Upbit names markets `QUOTE-BASE` (`KRW-BTC`).
pub fn market_quote(market: &str) -> &str {
    market.split_once('-').map(|(q, _)| q).unwrap_or("")
}

pub fn rule_ids(rules: &[RuleHit]) -> String {
    rules
        .iter()
        .map(|r| r.rule.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

pub fn score(s: f64) -> String {
    format!("{s:.2}")
}

pub fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::None => "none",
        Confidence::Review => "review",
        Confidence::High => "high",
    }
}

pub fn match_kind(m: MatchKind) -> &'static str {
    match m {
        MatchKind::OrderId => "order-id",
        MatchKind::Identifier => "identifier",
        MatchKind::Fuzzy => "fuzzy",
        MatchKind::Unmatched => "unmatched",
    }
}

/// Average execution price of an order (executed funds / executed volume), else its limit.
pub fn order_price(o: &Order) -> Option<Decimal> {
    match o.executed_funds {
        Some(f) if !o.executed_volume.is_zero() => Some(f / o.executed_volume),
        _ => o.price,
    }
}

/// Deviation (%) and estimated loss of one fill against a reference price: buys lose
/// (price − reference) × volume, sells (reference − price) × volume.
pub fn fill_loss(
    side: Side,
    price: Decimal,
    volume: Decimal,
    reference: Decimal,
) -> (Decimal, Decimal) {
    let deviation = if reference.is_zero() {
        Decimal::ZERO
    } else {
        ((price - reference) / reference * Decimal::ONE_HUNDRED).round_dp(4)
    };
    let loss = match side {
        Side::Buy => (price - reference) * volume,
        Side::Sell => (reference - price) * volume,
    };
    (deviation.normalize(), loss.round_dp(8).normalize())
}

fn window_text(w: &Option<Window>) -> String {
    match w {
        Some(w) => format!("{} → {}", ts(w.from), ts(w.to)),
        None => "not set".into(),
    }
}

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

// ---------------------------------------------------------------------------------------
// The view the templates read.

#[derive(Debug, Serialize)]
pub struct ReportView {
    pub run: RunView,
    pub totals: Totals,
    pub flagged: Vec<FlaggedView>,
    pub flagged_more: usize,
    pub markets: Vec<MarketView>,
    pub withdrawals: Vec<TransferView>,
    pub withdrawals_more: usize,
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
    pub ticket: TicketView,
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: String,
    pub exchange: String,
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
    pub flagged: usize,
    pub high: usize,
    pub review: usize,
    pub fills: usize,
    pub withdrawals: usize,
    pub withdrawals_flagged: usize,
    pub deposits: usize,
    pub quote: String,
    pub overpayment: String,
    pub portfolio_delta: String,
    pub withdrawn_value: String,
}

#[derive(Debug, Serialize)]
pub struct FlaggedView {
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

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct TransferView {
    pub id: String,
    pub currency: String,
    pub amount: String,
    pub address: String,
    pub state: String,
    pub created_utc: String,
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

#[derive(Debug, Serialize)]
pub struct TicketView {
    /// Korean text too (Upbit).
    pub korean: bool,
    pub orders: Vec<TicketOrder>,
    pub orders_more: usize,
    pub markets: String,
    pub withdrawal_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TicketOrder {
    pub order_id: String,
    pub market: String,
    pub side: String,
    pub utc: String,
    pub local: String,
}

fn reasons(rules: &[RuleHit]) -> Vec<ReasonView> {
    rules
        .iter()
        .map(|r| ReasonView {
            rule: clean(&r.rule),
            reason: humanize_amounts(&clean(&r.reason)),
        })
        .collect()
}

fn opt_clean<S: AsRef<str>>(s: &Option<S>) -> String {
    s.as_ref().map(|s| clean(s.as_ref())).unwrap_or_default()
}

/// Builds the view of the readable reports.
pub fn build(facts: &RunFacts, j: &Joined<'_>, unauthorized_sha256: &str) -> ReportView {
    let input = j.input;
    let result = j.result;
    let flagged_all: Vec<(&Order, &OrderVerdict)> = j.flagged().collect();
    let flagged: Vec<FlaggedView> = flagged_all
        .iter()
        .take(MAX_LISTED)
        .map(|(o, v)| {
            let quote = market_quote(&o.market);
            FlaggedView {
                order_id: clean(&o.id),
                identifier: opt_clean(&o.client_id),
                market: clean(&o.market),
                side: o.side.as_str().into(),
                ord_type: clean(&o.native_type),
                state: format!("{:?}", o.state).to_lowercase(),
                created_utc: ts(o.created_at),
                created_local: clean(&o.created_at_local),
                // Upbit's `price` type (market buy) gives in `price` the amount to spend.
                price: match o.price {
                    Some(p) if o.native_type == "price" => amount(p, quote),
                    Some(p) => price(p, quote),
                    None => String::new(),
                },
                volume: dec(o.volume),
                executed_volume: o.executed_volume.to_string(),
                funds: o
                    .executed_funds
                    .map(|d| amount(d, quote))
                    .unwrap_or_default(),
                avg_price: match o.executed_funds {
                    Some(f) if !o.executed_volume.is_zero() => {
                        price((f / o.executed_volume).round_dp(8), quote)
                    }
                    _ => String::new(),
                },
                fee: amount(o.paid_fee, quote),
                rules: rule_ids(&v.rules),
                reasons: reasons(&v.rules),
                score: score(v.score),
                confidence: confidence(v.confidence).into(),
                match_kind: match_kind(v.match_kind).into(),
                reference_price: v
                    .reference_price
                    .map(|p| price(p, quote))
                    .unwrap_or_default(),
                deviation_pct: dec(v.deviation_pct),
                est_loss: v
                    .est_loss_quote
                    .map(|d| amount(d, quote))
                    .unwrap_or_default(),
                raw_file: o
                    .provenance
                    .as_ref()
                    .map(|p| clean(&p.raw_file))
                    .unwrap_or_default(),
            }
        })
        .collect();

    let mut markets: BTreeMap<&str, MarketView> = BTreeMap::new();
    for (o, v) in &j.orders {
        let m = markets
            .entry(o.market.as_str())
            .or_insert_with(|| MarketView {
                market: clean(&o.market),
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
    let transfer_view = |t: &Transfer| {
        let v = j.transfer_verdicts.get(t.id.as_str());
        TransferView {
            id: clean(&t.id),
            currency: clean(&t.currency),
            amount: amount(t.amount, &t.currency),
            address: opt_clean(&t.address),
            state: clean(&t.state),
            created_utc: ts(t.created_at),
            flagged: v.is_some_and(|v| v.flagged),
            rules: v.map(|v| rule_ids(&v.rules)).unwrap_or_default(),
            reasons: v.map(|v| reasons(&v.rules)).unwrap_or_default(),
        }
    };
    let withdrawals: Vec<TransferView> = withdrawals_sorted
        .iter()
        .take(MAX_LISTED)
        .map(|t| transfer_view(t))
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
        .map(|(c, (s, e))| {
            let show = |d: Option<Decimal>| match d {
                Some(d) if whole_units(c) => amount(d, c),
                d => dec(d),
            };
            BalanceView {
                currency: clean(c),
                start: show(s),
                end: show(e),
            }
        })
        .collect();

    let keys = input
        .keys
        .iter()
        .map(|k| KeyView {
            masked: clean(&k.access_key_masked),
            current: k.is_current,
            scopes: match &k.scopes {
                Some(s) => clean(&s.join(", ")),
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
    let permissions = match &input.permissions {
        Some(p) => {
            let mut out: Vec<String> = p
                .scopes
                .iter()
                .map(|s| {
                    let held = match s.held {
                        Some(true) => "held",
                        Some(false) => "not held",
                        None => "unknown",
                    };
                    clean(&format!("{}: {held} ({})", s.scope, s.evidence))
                })
                .collect();
            if p.critical {
                out.push("CRITICAL: the key could withdraw or had no IP restriction".into());
            }
            out.extend(p.reasons.iter().map(|r| clean(r)));
            out
        }
        None => vec![],
    };

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
                humanize_amounts(&clean(&if s.summary.trim().is_empty() {
                    format!("step {} ({}): {}", s.id, s.uses, s.status.as_str())
                } else {
                    format!(
                        "step {} ({}): {} — {}",
                        s.id,
                        s.uses,
                        s.status.as_str(),
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
                o.market,
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
            clean(&format!(
                "{} {} {} → {}",
                w.id,
                amount(w.amount, &w.currency),
                w.currency,
                w.address.as_deref().unwrap_or("?")
            )),
        ));
    }
    if let Revocation::Revoked {
        observed_at,
        evidence,
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
            status: s.status.as_str().into(),
            summary: humanize_amounts(&clean(&s.summary)),
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
        } => format!(
            "revoked: first refused at {} ({})",
            ts(*observed_at),
            clean(evidence)
        ),
    };
    let window = facts.investigation_window.or(input.window);
    let run = RunView {
        id: clean(&facts.run_id),
        exchange: clean(&facts.exchange),
        account: facts
            .account_label
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| "(not given)".into()),
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

    let high = flagged_all
        .iter()
        .filter(|(_, v)| v.confidence == Confidence::High)
        .count();
    let loss = &result.loss;
    let quote = if loss.quote_currency.is_empty() {
        "quote".to_string()
    } else {
        clean(&loss.quote_currency)
    };
    let totals = Totals {
        orders: input.orders.len(),
        flagged: flagged_all.len(),
        high,
        review: flagged_all.len() - high,
        fills: input.fills.len(),
        withdrawals: input.withdrawals.len(),
        withdrawals_flagged: result.transfers.iter().filter(|t| t.flagged).count(),
        deposits: input.deposits.len(),
        quote: quote.clone(),
        overpayment: amount(loss.overpayment, &loss.quote_currency),
        portfolio_delta: loss
            .portfolio_delta
            .map(|d| format!("{} {quote}", amount(d, &loss.quote_currency)))
            .unwrap_or_else(|| "not computable (balances or reference prices missing)".into()),
        withdrawn_value: amount(loss.withdrawn_value, &loss.quote_currency),
    };

    let (timeline_svg, timeline_caption) = crate::report::timeline::render(facts, j);

    let mut flagged_markets: Vec<&str> =
        flagged_all.iter().map(|(o, _)| o.market.as_str()).collect();
    flagged_markets.sort_unstable();
    flagged_markets.dedup();
    let ticket = TicketView {
        korean: facts.exchange.eq_ignore_ascii_case("upbit"),
        orders: flagged_all
            .iter()
            .take(MAX_LISTED)
            .map(|(o, _)| TicketOrder {
                order_id: clean(&o.id),
                market: clean(&o.market),
                side: o.side.as_str().into(),
                utc: ts(o.created_at),
                local: j.local(o.created_at),
            })
            .collect(),
        orders_more: flagged_all.len().saturating_sub(MAX_LISTED),
        markets: clean(&flagged_markets.join(", ")),
        withdrawal_ids: result
            .transfers
            .iter()
            .filter(|t| t.flagged)
            .map(|t| clean(&t.transfer_id))
            .collect(),
    };

    ReportView {
        run,
        totals,
        flagged_more: flagged_all.len().saturating_sub(MAX_LISTED),
        flagged,
        markets: markets.into_values().collect(),
        withdrawals_more: withdrawals_sorted.len().saturating_sub(MAX_LISTED),
        withdrawals,
        balances,
        keys,
        permissions,
        key_findings: reasons(&result.key_findings),
        loss_explanation: loss
            .explanation
            .iter()
            .map(|e| humanize_amounts(&clean(e)))
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
        timeline_svg,
        timeline_caption,
        unauthorized_sha256: unauthorized_sha256.to_string(),
        ticket,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn krw_amounts_are_whole_won_with_separators() {
        assert_eq!(amount(d("15525710.50335051"), "KRW"), "15,525,711");
        assert_eq!(amount(d("1412.5"), "KRW"), "1,413");
        assert_eq!(amount(d("-1412.5"), "KRW"), "-1,413");
        assert_eq!(amount(d("-0.4"), "KRW"), "0", "no negative zero");
        assert_eq!(amount(d("999"), "krw"), "999");
        assert_eq!(amount(d("1000"), "KRW"), "1,000");
        assert_eq!(amount(d("123456789012"), "KRW"), "123,456,789,012");
    }

    #[test]
    fn other_quotes_keep_eight_decimals_trimmed() {
        assert_eq!(amount(d("0.123456789"), "BTC"), "0.12345679");
        assert_eq!(amount(d("1500.10000000"), "USDT"), "1500.1");
        assert_eq!(amount(d("2"), ""), "2");
    }

    #[test]
    fn krw_unit_prices_keep_their_decimals() {
        assert_eq!(price(d("135320000"), "KRW"), "135,320,000");
        assert_eq!(price(d("141.85"), "KRW"), "141.85");
        assert_eq!(price(d("0.00012345"), "KRW"), "0.00012345");
        assert_eq!(price(d("-1234.5"), "KRW"), "-1,234.5");
        assert_eq!(market_quote("KRW-BTC"), "KRW");
        assert_eq!(market_quote("nodash"), "");
    }

    #[test]
    fn sentences_get_whole_won_and_keep_everything_else() {
        assert_eq!(
            humanize_amounts("Overpayment 15525710.50335051 KRW: the sum of 19 orders at 187.59"),
            "Overpayment 15,525,711 KRW: the sum of 19 orders at 187.59"
        );
        assert_eq!(
            humanize_amounts("sells for 25206869.64 KRW, then 0.5 BTC; -1412.5 KRW."),
            "sells for 25,206,870 KRW, then 0.5 BTC; -1,413 KRW."
        );
        assert_eq!(
            humanize_amounts("KRW 12 KRWX 1e5 KRW"),
            "KRW 12 KRWX 1e5 KRW"
        );
        assert_eq!(humanize_amounts(""), "");
    }
}
