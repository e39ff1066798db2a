//! The data analysis reads and writes: imported bot logs, the diff, flags and loss.
//! Reports read only these types (and the normalized exchange types), never the clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::exchange::{
    ApiKeyInfo, Balance, Candle, CompactString, Fill, History, Market, MarketInfo, Order,
    PermissionProbe, Side, Transfer, Window, WithdrawalAddress,
};

/// Bot-log formats the importer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BotLogFormat {
    /// respond's own documented CSV.
    Generic,
    /// freqtrade `tradesv3.sqlite`, table `orders`.
    Freqtrade,
    /// Hummingbot `trades_<config>.csv` (current header).
    Hummingbot,
    /// Hummingbot's 2020 header.
    Hummingbot2020,
    /// 3Commas deal-history CSV (deal level, no order ids).
    ThreeCommas,
}

/// One row of a bot log, normalized. Every field but `line` is optional: formats differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BotLogEntry {
    /// Which imported file (index into `AnalysisInput::bot_logs`).
    pub log: usize,
    /// 1-based line (CSV) or row id (SQLite) in the original file.
    pub line: u64,
    pub order_id: Option<String>,
    pub identifier: Option<CompactString>,
    /// The market in the exchange's own symbols (the importer converts other spellings).
    pub market: Option<Market>,
    pub side: Option<Side>,
    pub ord_type: Option<CompactString>,
    pub created_at: Option<DateTime<Utc>>,
    pub price: Option<Decimal>,
    pub volume: Option<Decimal>,
    /// Quote amount (3Commas deal volumes, `cost`).
    pub funds: Option<Decimal>,
}

/// A row the importer could not read, kept when `--skip-bad-rows` was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedRow {
    pub line: u64,
    pub reason: String,
}

/// An imported bot log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotLog {
    pub format: BotLogFormat,
    /// Path of the copy inside the bundle (`bot/<name>`).
    pub bundle_path: String,
    /// SHA-256 of the original bytes, taken before parsing.
    pub sha256: String,
    pub entries: Vec<BotLogEntry>,
    pub skipped: Vec<SkippedRow>,
    /// Windows during which the bot reported itself stopped (R9), if the log says so.
    pub stopped: Vec<Window>,
}

/// Thresholds of the diff and rules; written into the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Fuzzy match: relative volume tolerance (0.001 = ±0.1%).
    pub fuzzy_volume_tolerance: f64,
    /// Fuzzy match: time tolerance, seconds.
    pub fuzzy_time_tolerance_secs: i64,
    /// R4 (average fill) and R15 (limit at placement): buy above / sell below reference by
    /// more than this fraction.
    pub price_deviation: f64,
    /// R4 hard flag multiple.
    pub price_hard_multiple: f64,
    /// R15 hard flag multiple: a limit buy placed at this multiple of the reference or more (a
    /// sell at its inverse or less) is intent, however it filled.
    #[serde(default = "default_limit_hard_multiple")]
    pub limit_hard_multiple: f64,
    /// R5: share of the market's volume that counts as outsized.
    pub footprint_share: f64,
    /// R6: multiple of the bot's p99 orders/minute that counts as a burst.
    pub burst_multiple: f64,
    /// R8: a round trip losing more than this fraction counts.
    pub contra_loss: f64,
    /// R11: relative distance from the bot's usual notional that counts as unlike.
    pub size_ratio: f64,
    /// Reference price: candles ending this many minutes before the suspicious window.
    pub reference_window_minutes: i64,
    /// Score at or above which an order is flagged.
    pub flag_score: f64,
    /// R7: the longest pause, in minutes, between the sells of a liquidation and the next
    /// action of the same chain (another sell, or the first buy they funded).
    #[serde(default = "default_chain_gap_minutes")]
    pub chain_gap_minutes: i64,
}

fn default_limit_hard_multiple() -> f64 {
    2.0
}

fn default_chain_gap_minutes() -> i64 {
    10
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            fuzzy_volume_tolerance: 0.001,
            fuzzy_time_tolerance_secs: 120,
            price_deviation: 0.20,
            price_hard_multiple: 3.0,
            limit_hard_multiple: default_limit_hard_multiple(),
            footprint_share: 0.25,
            burst_multiple: 3.0,
            contra_loss: 0.05,
            size_ratio: 5.0,
            reference_window_minutes: 60,
            flag_score: 1.0,
            chain_gap_minutes: default_chain_gap_minutes(),
        }
    }
}

/// Everything analysis reads. Built from the run's raw responses, so `respond analyze` can
/// rebuild it offline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AnalysisInput {
    pub exchange: String,
    pub key_masked: String,
    pub window: Option<Window>,
    pub orders: Vec<Order>,
    pub fills: Vec<Fill>,
    pub withdrawals: Vec<Transfer>,
    pub deposits: Vec<Transfer>,
    pub balances_start: Vec<Balance>,
    pub balances_end: Vec<Balance>,
    pub keys: Vec<ApiKeyInfo>,
    pub permissions: Option<PermissionProbe>,
    pub withdrawal_addresses: Vec<WithdrawalAddress>,
    /// Public candles per market, for reference prices.
    pub candles: BTreeMap<String, Vec<Candle>>,
    pub bot_logs: Vec<BotLog>,
    /// UTC offset of the exchange's local time, seconds.
    pub local_utc_offset_secs: i32,
    /// The exchange's market list, when the run read it (to value currencies no order traded).
    pub markets: Vec<MarketInfo>,
}

impl From<History> for AnalysisInput {
    /// The exchange data of a rebuilt run; the window, permissions and bot logs are the
    /// caller's to add.
    fn from(h: History) -> Self {
        AnalysisInput {
            exchange: h.exchange,
            key_masked: h.key_masked,
            window: None,
            orders: h.orders,
            fills: h.fills,
            withdrawals: h.withdrawals,
            deposits: h.deposits,
            balances_start: h.balances_start,
            balances_end: h.balances_end,
            keys: h.keys,
            permissions: None,
            withdrawal_addresses: h.withdrawal_addresses,
            candles: h.candles,
            bot_logs: Vec::new(),
            local_utc_offset_secs: h.local_utc_offset_secs,
            markets: h.markets,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchKind {
    OrderId,
    Identifier,
    Fuzzy,
    Unmatched,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Not flagged.
    None,
    /// Flagged, needs a human look.
    Review,
    /// Flagged with strong evidence.
    High,
}

/// One rule that fired, with its reason in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleHit {
    /// `R1` … `R14`.
    pub rule: String,
    pub weight: f64,
    pub reason: String,
}

/// The verdict on one exchange order. Verdicts sit at the same index as their order in
/// [`AnalysisInput::orders`] (the order id is not repeated: at a million orders the copies
/// alone cost 70 MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderVerdict {
    pub match_kind: MatchKind,
    /// (log index, line) of the bot-log row it matched.
    pub matched_row: Option<(usize, u64)>,
    pub rules: Vec<RuleHit>,
    pub score: f64,
    pub confidence: Confidence,
    pub flagged: bool,
    pub reference_price: Option<Decimal>,
    /// (average fill price − reference) / reference × 100; sign as the price moved.
    pub deviation_pct: Option<Decimal>,
    /// Overpayment (buys) or underpayment (sells) vs the reference, in the quote currency.
    pub est_loss_quote: Option<Decimal>,
    /// Why the order is kept at review at most: it looks like the user's own web or app trade
    /// (no identifier, fair prices, a usual market and size). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_trade: Option<String>,
    /// The order falls outside every bot log's span: the log cannot say whether the bot
    /// placed it, so it was judged without the log (never "absent from the log").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_covered_by_log: bool,
}

impl OrderVerdict {
    /// A verdict of no match, no rule hit and no flag: where a verdict starts from.
    pub fn unflagged() -> Self {
        OrderVerdict {
            match_kind: MatchKind::Unmatched,
            matched_row: None,
            rules: Vec::new(),
            score: 0.0,
            confidence: Confidence::None,
            flagged: false,
            reference_price: None,
            deviation_pct: None,
            est_loss_quote: None,
            user_trade: None,
            not_covered_by_log: false,
        }
    }
}

/// A bot-log row with no exchange order: a gap in the data, reported, never dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotLogGap {
    pub log: usize,
    pub line: u64,
    pub reason: String,
}

/// The verdict on one withdrawal (R13): `flagged` when the confidence is `high` (claimed as
/// unauthorized); `review` is listed for the user to confirm, not claimed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferVerdict {
    pub transfer_id: String,
    pub rules: Vec<RuleHit>,
    pub flagged: bool,
    #[serde(default = "confidence_none")]
    pub confidence: Confidence,
}

fn confidence_none() -> Confidence {
    Confidence::None
}

/// Loss estimate, in one quote currency, each figure explained.
///
/// The claim is [`LossSummary::total`]: overpayment + withdrawn value + fees of the flagged
/// orders. Parts that could not be priced are named in [`LossSummary::unpriced`], and the total
/// is then the total of the rest. [`LossSummary::change_during_response`] is not part of it: it
/// covers only the minutes of the response, which starts after the attack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossSummary {
    pub quote_currency: String,
    /// The estimated loss: `overpayment + withdrawn_value + fees`.
    pub total: Decimal,
    /// Σ over flagged buys (fill − reference) × volume, mirrored for sells.
    pub overpayment: Decimal,
    /// Value of flagged withdrawals at reference prices.
    pub withdrawn_value: Decimal,
    /// Trading fees the flagged orders paid, in the quote currency.
    pub fees: Decimal,
    /// What could not be priced and is left out of `total`, one sentence each (empty: the
    /// total is complete).
    pub unpriced: Vec<String>,
    /// Portfolio value at the start of the response minus at its end, both at pre-attack
    /// prices (`None` when balances or reference prices are missing). Not part of the claim:
    /// the response starts after the attack, so this shows only what changed meanwhile.
    pub change_during_response: Option<Decimal>,
    pub explanation: Vec<String>,
}

/// What analysis concludes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    /// One per exchange order, in the order of `AnalysisInput::orders`.
    pub verdicts: Vec<OrderVerdict>,
    pub gaps: Vec<BotLogGap>,
    pub transfers: Vec<TransferVerdict>,
    /// R14 findings about keys.
    pub key_findings: Vec<RuleHit>,
    pub loss: LossSummary,
    pub thresholds: Thresholds,
    pub had_bot_log: bool,
    /// The suspicious window the rules settled on (first to last flagged order).
    pub suspicious_window: Option<Window>,
    /// Plain statements about limits of the analysis ("no bot log: heuristics only").
    pub notes: Vec<String>,
    /// The learned identifier pattern of the bot, described.
    pub identifier_pattern: Option<String>,
    /// The span of the bot log's timed rows (first to last, ± the fuzzy time tolerance);
    /// absent without a log or without times. Orders beyond it count as not covered only
    /// where the log is cut (see the notes and each verdict's `not_covered_by_log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_log_coverage: Option<Window>,
}
