//! Detection rules R1–R14 of the reference, over the diff's result.
//!
//! Shaped around two order sets: the *baseline* (what the bot normally does: orders matched
//! to its log, or, without a log, the account's orders before the suspicious window) and the
//! *candidates* (unmatched orders, or, without a log, the orders in the window around the
//! price anomalies). Every relative rule compares a candidate with the baseline; every rule
//! that fires writes a sentence with the numbers it used. Reference prices come from the
//! public candles *before* the first candidate order of a market, because the pump moves the
//! live price.
//!
//! Confidence (documented for the report): with a bot log, `High` = R1 plus any of R2, R4, R9
//! or one of the low-false-positive pattern rules R6, R7, R8. R1 with only R3 and the weak
//! rules (R5, R10, R11, R12) is `Review`: this departs from the reference's "R1 plus R3 = high"
//! on purpose, because the user's own web-UI trades are unmatched (R1) and usually in markets
//! the bot never trades (R3), often with odd sizes (R11) and market orders (R12), while being
//! at market prices, alone, and outside any liquidation pattern. An order in a market the bot
//! never trades is therefore claimed as unauthorized only when it is also abnormal in a way a
//! person trading by hand is not: far from the reference price (R4), a foreign client id (R2),
//! a burst (R6), part of a liquidate-then-concentrate or liquidate-then-withdraw episode (R7),
//! contra round trips (R8) or placed while the bot was stopped (R9). R3 still fires, adds its
//! weight and is listed, so a reviewer sees it. Without a bot log, `High` = a hard
//! R4 (≥ the hard multiple), or R7/R8 with any other rule, or a score ≥ `flag_score` that
//! includes R4 or R6; otherwise `Review` when the score reaches half of `flag_score`.
//! Only `High` counts as flagged: `Review` orders are listed for a human but are not claimed as
//! unauthorized, which keeps the user's own manual trades out of the claim.
//!
//! Withdrawals (R13): some exchanges' withdrawal lists carry no address, so besides a new or
//! unlisted address, a withdrawal is flagged when it was made during the incident (at or after
//! one reference window before the first order flagged `High`), unless the address is
//! allowlisted, carries no memo/tag, and a completed withdrawal used it before the incident
//! (then it is listed with a low-weight hit: the victim moving funds to safety looks the
//! same); older ones, the user's own cash-outs, are listed but not flagged.
//!
//! Reference prices use only candles that had *closed* before the anchor order.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Timelike, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::diff::{order_funds, DiffResult, FxBuild};
use super::model::{
    AnalysisInput, BotLogEntry, Confidence, MatchKind, RuleHit, Thresholds, TransferVerdict,
};
use crate::exchange::{Candle, OrderType, Side};
use crate::time::ts;

/// A reference price and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct RefPrice {
    pub price: Decimal,
    pub source: String,
    /// Quote value traded in the reference candles (for R5), when candles were used.
    pub candle_value: Option<Decimal>,
}

/// Everything the rules share, computed once.
pub(crate) struct Ctx<'a> {
    pub input: &'a AnalysisInput,
    pub th: &'a Thresholds,
    pub had_log: bool,
    pub candidate: Vec<bool>,
    pub baseline: Vec<bool>,
    /// Average execution price (fills, then executed funds, then limit price) of the
    /// candidate orders (all orders without a bot log); computed lazily for the others.
    pub avg: Vec<Option<Decimal>>,
    /// Fill totals (volume, funds) per order id, when fills were exported. Executed
    /// volume and funds are read through it on demand rather than kept per order (three
    /// vectors of decimals would cost 56 MiB at a million orders).
    fills: HashMap<&'a str, (Decimal, Decimal), FxBuild>,
    /// Candles per market, sorted by start.
    pub candles: BTreeMap<&'a str, Vec<&'a Candle>>,
    /// The baseline's average prices per market, sorted by time.
    base_prices: OnceCell<PriceIndex<'a>>,
    /// Reference per market of its earliest suspicious cluster (for valuation fallbacks).
    pub refs: BTreeMap<String, RefPrice>,
    /// Reference per order: fixed at the first candidate order of its cluster in its market.
    order_ref: Vec<u32>,
    /// The distinct references `order_ref` points into.
    ref_store: Vec<RefPrice>,
    /// Market symbol by (base, quote), from the orders, candles and market list seen.
    symbols: BTreeMap<(&'a str, &'a str), &'a str>,
}

const NO_REF: u32 = u32::MAX;

/// Average prices per market, sorted by time.
type PriceIndex<'a> = BTreeMap<&'a str, Vec<(DateTime<Utc>, Decimal)>>;

/// Median (mean of the two middle values for an even count), in linear time.
fn median(mut v: Vec<Decimal>) -> Option<Decimal> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (lo, mid, _) = v.select_nth_unstable(n / 2);
    let mid = *mid;
    Some(if n % 2 == 1 {
        mid
    } else {
        let below = lo.iter().max().copied().unwrap_or(mid);
        (below + mid) / Decimal::TWO
    })
}

fn f(x: Decimal) -> f64 {
    x.to_f64().unwrap_or(0.0)
}

/// The length of one candle in a market's series (sorted by start): the smallest gap between
/// consecutive starts among the first ones (a missing candle only widens a gap); one minute
/// for a single candle.
fn candle_len(candles: &[&Candle]) -> Duration {
    candles
        .windows(2)
        .take(64)
        .map(|w| w[1].start - w[0].start)
        .filter(|d| *d > Duration::zero())
        .min()
        .unwrap_or_else(|| Duration::minutes(1))
}

/// Reference price from `candles` (sorted by start) before `anchor`: the median close of the
/// candles that *closed* within the reference window before it; else the last closed candles
/// before it. A candle still open at `anchor` is never used: its close already holds the
/// prices the anchored order moved (an hourly candle starting at 05:00 closes with the pump
/// that began at 05:56).
pub(crate) fn candle_ref(
    candles: &[&Candle],
    anchor: DateTime<Utc>,
    window_min: i64,
) -> Option<RefPrice> {
    let from = anchor - Duration::minutes(window_min);
    let len = candle_len(candles);
    let end = candles.partition_point(|c| c.start + len <= anchor);
    let start = candles[..end].partition_point(|c| c.start + len <= from);
    let (used, how) = if start < end {
        (
            &candles[start..end],
            format!("in the {window_min} min before {}", ts(anchor)),
        )
    } else {
        let k = end.saturating_sub(window_min.clamp(1, 1440) as usize);
        if k == end {
            return None;
        }
        (
            &candles[k..end],
            format!(
                "before {} (none in the {window_min} min before it)",
                ts(anchor)
            ),
        )
    };
    let price = median(used.iter().map(|c| c.close).collect())?;
    let value: Decimal = used.iter().map(|c| c.value).sum();
    Some(RefPrice {
        price,
        source: format!("median close of {} candles {how}", used.len()),
        candle_value: Some(value),
    })
}

/// Market symbol by (base, quote): every market the input names.
fn symbols<'a>(input: &'a AnalysisInput) -> BTreeMap<(&'a str, &'a str), &'a str> {
    let mut out = BTreeMap::new();
    let mut add = |m: &'a crate::exchange::Market| {
        out.entry((m.base.as_str(), m.quote.as_str()))
            .or_insert(m.symbol.as_str());
    };
    for m in &input.markets {
        add(&m.market);
    }
    for cs in input.candles.values() {
        if let Some(c) = cs.first() {
            add(&c.market);
        }
    }
    let mut last: Option<&str> = None;
    for o in &input.orders {
        // Orders come in runs of one market: skip the map lookup while it repeats.
        if last != Some(o.market.as_str()) {
            add(&o.market);
            last = Some(o.market.as_str());
        }
    }
    out
}

impl<'a> Ctx<'a> {
    /// The symbol of the market trading `base` in `quote`, when the input names one.
    pub(crate) fn symbol_of(&self, base: &str, quote: &str) -> Option<&'a str> {
        self.symbols.get(&(base, quote)).copied()
    }

    pub(crate) fn build(
        input: &'a AnalysisInput,
        th: &'a Thresholds,
        diff: Option<&DiffResult>,
    ) -> Ctx<'a> {
        let n = input.orders.len();
        // Fill aggregates per order id.
        let mut fills: HashMap<&str, (Decimal, Decimal), FxBuild> = HashMap::default();
        for fl in &input.fills {
            let e = fills.entry(fl.order_id.as_str()).or_default();
            e.0 += fl.volume;
            e.1 += fl.funds;
        }
        let mut ctx = Ctx {
            input,
            th,
            had_log: diff.is_some(),
            candidate: vec![false; n],
            baseline: vec![false; n],
            avg: vec![None; n],
            fills,
            candles: input
                .candles
                .iter()
                .map(|(m, cs)| {
                    let mut v: Vec<&Candle> = cs.iter().collect();
                    v.sort_by_key(|c| c.start);
                    (m.as_str(), v)
                })
                .collect(),
            base_prices: OnceCell::new(),
            refs: BTreeMap::new(),
            order_ref: vec![NO_REF; n],
            ref_store: Vec::new(),
            symbols: symbols(input),
        };
        match diff {
            Some(d) => {
                for (i, k) in d.kinds.iter().enumerate() {
                    ctx.candidate[i] = *k == MatchKind::Unmatched;
                    ctx.baseline[i] = *k != MatchKind::Unmatched;
                    if ctx.candidate[i] {
                        ctx.avg[i] = ctx.avg_price(i);
                    }
                }
            }
            None => {
                for i in 0..n {
                    ctx.avg[i] = ctx.avg_price(i);
                }
                ctx.no_log_sets();
            }
        }
        ctx.anchor_refs();
        ctx
    }

    /// Without a log: per-order candle references find price anomalies; the window around
    /// them (± the reference window) holds the candidates, everything before is baseline.
    fn no_log_sets(&mut self) {
        let w = self.th.reference_window_minutes;
        let mut hits: Vec<DateTime<Utc>> = Vec::new();
        for (i, o) in self.input.orders.iter().enumerate() {
            let r = self.market_ref(o.market.as_str(), o.created_at);
            if let (Some(r), Some(a)) = (&r, self.avg[i]) {
                if deviation(o.side, a, r.price) > self.th.price_deviation {
                    hits.push(o.created_at);
                }
            }
            self.order_ref[i] = self.store(r);
        }
        let (Some(first), Some(last)) = (hits.iter().min(), hits.iter().max()) else {
            for i in 0..self.input.orders.len() {
                self.candidate[i] = true;
                self.baseline[i] = true;
            }
            return;
        };
        let from = *first - Duration::minutes(w);
        let to = *last + Duration::minutes(w);
        for (i, o) in self.input.orders.iter().enumerate() {
            self.candidate[i] = o.created_at >= from && o.created_at <= to;
            self.baseline[i] = o.created_at < from;
        }
    }

    fn market_ref(&self, market: &str, t: DateTime<Utc>) -> Option<RefPrice> {
        self.candles
            .get(market)
            .and_then(|c| candle_ref(c, t, self.th.reference_window_minutes))
    }

    /// Reference prices of candidate orders, fixed per market at the first order of each
    /// cluster of candidates (a new cluster starts after a gap longer than the reference
    /// window): candles before it, else the baseline's own recent prices in that market.
    fn anchor_refs(&mut self) {
        if !self.had_log
            && self
                .baseline
                .iter()
                .zip(&self.candidate)
                .all(|(b, c)| *b && *c)
        {
            // No anomaly window: the per-order references of the pre-pass stay.
            return;
        }
        let gap = Duration::minutes(self.th.reference_window_minutes.max(1));
        let mut by_market: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, o) in self.input.orders.iter().enumerate() {
            if self.candidate[i] {
                by_market.entry(o.market.as_str()).or_default().push(i);
            }
        }
        for (m, mut list) in by_market {
            list.sort_by_key(|&i| (self.input.orders[i].created_at, i));
            let mut cur = NO_REF;
            let mut last_t: Option<DateTime<Utc>> = None;
            for i in list {
                let t = self.input.orders[i].created_at;
                if last_t.map_or(true, |lt| t - lt > gap) {
                    let r = self.market_ref(m, t).or_else(|| self.own_ref(m, t));
                    if let Some(r) = &r {
                        self.refs.entry(m.to_string()).or_insert_with(|| r.clone());
                    }
                    cur = self.store(r);
                }
                last_t = Some(t);
                self.order_ref[i] = cur;
            }
        }
    }

    /// The baseline's own average prices in `market` before `t` (last 20, median).
    fn own_ref(&self, market: &str, t: DateTime<Utc>) -> Option<RefPrice> {
        let prior = self.baseline_prices().get(market)?;
        let end = prior.partition_point(|p| p.0 < t);
        let k = end.saturating_sub(20);
        let price = median(prior[k..end].iter().map(|p| p.1).collect())?;
        Some(RefPrice {
            price,
            source: format!(
                "median price of the bot's own last {} orders in {market} before {} (no candles)",
                end - k,
                ts(t)
            ),
            candle_value: None,
        })
    }

    fn store(&mut self, r: Option<RefPrice>) -> u32 {
        match r {
            Some(r) => {
                self.ref_store.push(r);
                (self.ref_store.len() - 1) as u32
            }
            None => NO_REF,
        }
    }

    /// Fill totals of order `i`, when its fills were exported and show a volume.
    fn fill(&self, i: usize) -> Option<(Decimal, Decimal)> {
        if self.fills.is_empty() {
            return None;
        }
        let id = self.input.orders[i].id.as_str();
        self.fills.get(id).copied().filter(|f| !f.0.is_zero())
    }

    /// Executed base volume of order `i` (its fills, else the order's executed volume).
    pub(crate) fn exec_vol(&self, i: usize) -> Decimal {
        self.fill(i)
            .map_or(self.input.orders[i].executed_volume, |f| f.0)
    }

    /// Quote actually exchanged (fills, else the order's executed funds).
    pub(crate) fn exec_funds(&self, i: usize) -> Option<Decimal> {
        match self.fill(i) {
            Some(f) => Some(f.1),
            None => self.input.orders[i].executed_funds.filter(|f| !f.is_zero()),
        }
    }

    /// Notional of order `i`: quote exchanged, else what its price and volume imply.
    pub(crate) fn funds(&self, i: usize) -> Option<Decimal> {
        match self.fill(i) {
            Some(f) => Some(f.1),
            None => order_funds(&self.input.orders[i]),
        }
    }

    /// Average execution price of order `i`.
    fn avg_price(&self, i: usize) -> Option<Decimal> {
        let o = &self.input.orders[i];
        let v = self.exec_vol(i);
        let limit = o.price.filter(|_| o.order_type == OrderType::Limit);
        if v.is_zero() {
            return limit;
        }
        match self.exec_funds(i) {
            Some(f) => Some(f / v),
            None => limit,
        }
    }

    /// Baseline prices per market, sorted by time; built on first use (only when a market
    /// has no candles), so a large matched history costs nothing here.
    fn baseline_prices(&self) -> &PriceIndex<'a> {
        self.base_prices.get_or_init(|| {
            let mut m: PriceIndex<'a> = BTreeMap::new();
            for (i, o) in self.input.orders.iter().enumerate() {
                if !self.baseline[i] {
                    continue;
                }
                if let Some(a) = self.avg[i].or_else(|| self.avg_price(i)) {
                    m.entry(o.market.as_str())
                        .or_default()
                        .push((o.created_at, a));
                }
            }
            for v in m.values_mut() {
                v.sort();
            }
            m
        })
    }

    /// The reference that applies to order `i`.
    pub(crate) fn reference(&self, i: usize) -> Option<&RefPrice> {
        self.ref_store.get(self.order_ref[i] as usize)
    }
}

/// How far `avg` is from `reference` in the direction that hurts the account.
fn deviation(side: Side, avg: Decimal, reference: Decimal) -> f64 {
    if reference.is_zero() {
        return 0.0;
    }
    let r = f(avg) / f(reference);
    match side {
        Side::Buy => r - 1.0,
        Side::Sell => 1.0 - r,
    }
}

fn hit(rule: &str, weight: f64, reason: String) -> RuleHit {
    RuleHit {
        rule: rule.to_string(),
        weight,
        reason,
    }
}

/// What the baseline (the bot's normal behaviour) looks like.
struct Profile<'a> {
    markets: BTreeSet<&'a str>,
    assets: BTreeSet<&'a str>,
    typed: usize,
    taker: usize,
    notional_median: Option<Decimal>,
    configured: Vec<Decimal>,
    per_minute_p99: f64,
    hours: BTreeSet<u32>,
    count: usize,
}

/// Taker order types as bot logs name them (the generic CSV's `price` is a market buy by
/// amount; freqtrade and Hummingbot write `market`).
fn is_taker_name(t: &str) -> bool {
    matches!(t, "price" | "market" | "best")
}

fn profile<'a>(ctx: &Ctx<'a>, entries: &[&'a BotLogEntry]) -> Profile<'a> {
    let input = ctx.input;
    let mut markets = BTreeSet::new();
    let mut assets: BTreeSet<&str> = input
        .balances_start
        .iter()
        .filter(|b| !(b.free + b.locked).is_zero())
        .map(|b| b.currency.as_str())
        .collect();
    let (mut typed, mut taker) = (0, 0);
    let mut notionals = Vec::new();
    let mut minutes: HashMap<i64, u32, FxBuild> = HashMap::default();
    let mut hours = BTreeSet::new();
    let mut count = 0;
    for (i, o) in input.orders.iter().enumerate() {
        if !ctx.baseline[i] {
            continue;
        }
        count += 1;
        markets.insert(o.market.as_str());
        assets.insert(o.market.base.as_str());
        typed += 1;
        if o.order_type.is_taker() {
            taker += 1;
        }
        if let Some(fu) = ctx.funds(i) {
            notionals.push(fu);
        }
        *minutes.entry(o.created_at.timestamp() / 60).or_default() += 1;
        hours.insert(o.created_at.hour());
    }
    let mut configured = Vec::new();
    for e in entries {
        if let Some(m) = &e.market {
            markets.insert(m.as_str());
            assets.insert(m.base.as_str());
        }
        if let Some(t) = &e.ord_type {
            if t == "deal" {
                if let Some(fu) = e.funds {
                    configured.push(fu);
                }
            } else {
                typed += 1;
                if is_taker_name(t) {
                    taker += 1;
                }
            }
        }
    }
    let mut counts: Vec<u32> = minutes.into_values().collect();
    counts.sort_unstable();
    let per_minute_p99 = if counts.is_empty() {
        1.0
    } else {
        counts[((counts.len() as f64 * 0.99).ceil() as usize).clamp(1, counts.len()) - 1] as f64
    };
    Profile {
        markets,
        assets,
        typed,
        taker,
        notional_median: median(notionals),
        configured,
        per_minute_p99,
        hours,
        count,
    }
}

/// Per-order rule hits (R1–R12) and the confidence each order gets.
pub(crate) struct OrderRules {
    pub hits: Vec<Vec<RuleHit>>,
    pub confidence: Vec<Confidence>,
    pub score: Vec<f64>,
}

pub(crate) fn order_rules<'a>(
    ctx: &Ctx<'a>,
    diff: Option<&DiffResult>,
    entries: &[&'a BotLogEntry],
) -> OrderRules {
    let input = ctx.input;
    let th = ctx.th;
    let n = input.orders.len();
    let mut hits: Vec<Vec<RuleHit>> = vec![Vec::new(); n];
    let prof = profile(ctx, entries);
    let cands: Vec<usize> = (0..n).filter(|&i| ctx.candidate[i]).collect();
    let all_minutes: HashMap<i64, u32> = {
        let mut m: HashMap<i64, u32> = HashMap::new();
        for &i in &cands {
            *m.entry(input.orders[i].created_at.timestamp() / 60)
                .or_default() += 1;
        }
        m
    };
    let start_balance: BTreeMap<&str, Decimal> = input
        .balances_start
        .iter()
        .map(|b| (b.currency.as_str(), b.free + b.locked))
        .collect();
    let stopped: Vec<crate::exchange::Window> = input
        .bot_logs
        .iter()
        .flat_map(|l| l.stopped.iter().copied())
        .collect();
    let pattern = diff.and_then(|d| d.pattern.as_ref());

    for &i in &cands {
        let o = &input.orders[i];
        let h = &mut hits[i];
        // R1
        if ctx.had_log {
            h.push(hit(
                "R1",
                0.5,
                format!(
                    "order {} ({} {} {}) is not in the bot log: no row with this order id, {}, \
                     nor a {} within ±{} s and ±{}% volume",
                    o.id,
                    o.market,
                    o.side.as_str(),
                    o.native_type,
                    match &o.client_id {
                        Some(c) => format!("identifier `{c}`"),
                        None => "no identifier was sent".to_string(),
                    },
                    o.side.as_str(),
                    th.fuzzy_time_tolerance_secs,
                    th.fuzzy_volume_tolerance * 100.0
                ),
            ));
        }
        // R2
        if let (Some(c), Some(p)) = (&o.client_id, pattern) {
            if !p.fits(c) {
                h.push(hit(
                    "R2",
                    0.3,
                    format!(
                        "client id `{c}` does not fit the bot's pattern: {}",
                        p.describe()
                    ),
                ));
            }
        }
        // R3
        if ctx.had_log && !prof.markets.contains(o.market.as_str()) {
            let new_asset = !prof.assets.contains(o.market.base.as_str());
            h.push(hit(
                "R3",
                if new_asset { 0.7 } else { 0.5 },
                format!(
                    "the bot never trades {} (its {} markets: {}){}",
                    o.market,
                    prof.markets.len(),
                    prof.markets
                        .iter()
                        .take(8)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if new_asset {
                        format!("; {} is also new to the account", o.market.base.as_str())
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        // R4
        if let (Some(r), Some(a)) = (ctx.reference(i), ctx.avg[i]) {
            let d = deviation(o.side, a, r.price);
            if d > th.price_deviation {
                let ratio = f(a) / f(r.price).max(f64::MIN_POSITIVE);
                let hard = match o.side {
                    Side::Buy => ratio >= th.price_hard_multiple,
                    Side::Sell => ratio > 0.0 && 1.0 / ratio >= th.price_hard_multiple,
                };
                h.push(hit(
                    "R4",
                    if hard { 1.0 } else { 0.6 },
                    format!(
                        "{} at an average {} vs a reference {} ({}): {:.1}% {} the reference{}",
                        o.side.as_str(),
                        a.normalize(),
                        r.price.normalize(),
                        r.source,
                        (ratio - 1.0).abs() * 100.0,
                        if ratio >= 1.0 { "above" } else { "below" },
                        if hard {
                            format!(", at least {}× (hard flag)", th.price_hard_multiple)
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
        }
        // R5
        if let (Some(r), Some(fu)) = (ctx.reference(i), ctx.funds(i)) {
            if let Some(v) = r.candle_value {
                let share = if v.is_zero() {
                    f64::INFINITY
                } else {
                    f(fu) / f(v)
                };
                if share > th.footprint_share {
                    h.push(hit(
                        "R5",
                        0.3,
                        format!(
                            "notional {} is {} of the {} traded in {} over the reference candles",
                            fu.round_dp(2).normalize(),
                            if share.is_finite() {
                                format!("{:.0}%", share * 100.0)
                            } else {
                                "all".to_string()
                            },
                            v.round_dp(2).normalize(),
                            o.market
                        ),
                    ));
                }
            }
        }
        // R6
        let per_min = all_minutes
            .get(&(o.created_at.timestamp() / 60))
            .copied()
            .unwrap_or(0) as f64;
        let limit = th.burst_multiple * prof.per_minute_p99.max(1.0);
        if per_min > limit {
            h.push(hit(
                "R6",
                0.4,
                format!(
                    "{per_min} suspicious orders in the minute of {}, above {:.1} ({}× the bot's \
                     99th percentile of {:.0} orders/minute)",
                    ts(o.created_at),
                    limit,
                    th.burst_multiple,
                    prof.per_minute_p99
                ),
            ));
        }
        // R9
        if let Some(w) = stopped
            .iter()
            .find(|w| o.created_at >= w.from && o.created_at < w.to)
        {
            h.push(hit(
                "R9",
                0.7,
                format!(
                    "placed at {} while the bot log says the bot was stopped (since {})",
                    ts(o.created_at),
                    ts(w.from)
                ),
            ));
        }
        // R10
        if prof.count >= 50 && !prof.hours.contains(&o.created_at.hour()) {
            h.push(hit(
                "R10",
                0.1,
                format!(
                    "placed at {:02}:xx UTC, an hour in which the bot placed none of its {} orders",
                    o.created_at.hour(),
                    prof.count
                ),
            ));
        }
        // R11
        if let Some(fu) = ctx.funds(i) {
            let usual = prof
                .notional_median
                .or_else(|| median(prof.configured.clone()));
            if let Some(u) = usual.filter(|u| !u.is_zero()) {
                let ratio = f(fu) / f(u);
                if ratio > th.size_ratio || ratio < 1.0 / th.size_ratio {
                    h.push(hit(
                        "R11",
                        0.3,
                        format!(
                            "notional {} is {:.2}× the bot's usual {}",
                            fu.round_dp(2).normalize(),
                            ratio,
                            u.round_dp(2).normalize()
                        ),
                    ));
                }
            }
        }
        if o.side == Side::Sell {
            let bal = start_balance.get(o.market.base.as_str()).copied();
            if let Some(b) = bal.filter(|b| !b.is_zero()) {
                if f(ctx.exec_vol(i)) >= 0.98 * f(b) && !h.iter().any(|x| x.rule == "R11") {
                    h.push(hit(
                        "R11",
                        0.3,
                        format!(
                            "sold {} {}, ~100% of the {} held at the start",
                            ctx.exec_vol(i).normalize(),
                            o.market.base.as_str(),
                            b.normalize()
                        ),
                    ));
                }
            }
        }
        // R12
        if o.order_type.is_taker() && prof.typed >= 5 && prof.taker == 0 {
            h.push(hit(
                "R12",
                0.3,
                format!(
                    "`{}` (taker) order, while all {} of the bot's orders are limit orders",
                    o.native_type, prof.typed
                ),
            ));
        }
    }

    rule_r7(ctx, &cands, &mut hits);
    rule_r8(ctx, &cands, &mut hits);

    let mut confidence = vec![Confidence::None; n];
    let mut score = vec![0.0; n];
    for i in 0..n {
        let h = &mut hits[i];
        h.sort_by_key(|x| x.rule[1..].parse::<u32>().unwrap_or(99));
        let s: f64 = h.iter().map(|x| x.weight).sum();
        score[i] = (s * 1000.0).round() / 1000.0;
        let has = |r: &str| h.iter().any(|x| x.rule == r);
        confidence[i] = if h.is_empty() {
            Confidence::None
        } else if ctx.had_log {
            // R3 (a market the bot never trades) is what the user's own manual trades look
            // like too, so it corroborates but does not lift R1 to High on its own.
            let core = ["R2", "R4", "R9", "R6", "R7", "R8"].iter().any(|r| has(r));
            if has("R1") && core {
                Confidence::High
            } else {
                Confidence::Review
            }
        } else {
            let hard_r4 = h.iter().any(|x| x.rule == "R4" && x.weight >= 1.0);
            let pattern = (has("R7") || has("R8")) && h.len() >= 2;
            let strong = score[i] >= th.flag_score && (has("R4") || has("R6"));
            if hard_r4 || pattern || strong {
                Confidence::High
            } else if score[i] >= th.flag_score / 2.0 {
                Confidence::Review
            } else {
                Confidence::None
            }
        };
    }
    OrderRules {
        hits,
        confidence,
        score,
    }
}

/// R7: candidate sells across ≥ 2 assets (or one asset, when the bought coin is new to the
/// account's history), then buys of one asset taking ≥ half the proceeds. Marks the sells and
/// every candidate order of the episode in the bought market.
fn rule_r7(ctx: &Ctx<'_>, cands: &[usize], hits: &mut [Vec<RuleHit>]) {
    let orders = &ctx.input.orders;
    // Inserted one by one: collecting would first sort a million copies of a few names.
    let mut base_markets: BTreeSet<&str> = BTreeSet::new();
    for (o, _) in orders.iter().zip(&ctx.baseline).filter(|(_, b)| **b) {
        base_markets.insert(o.market.as_str());
    }
    let mut sorted: Vec<usize> = cands.to_vec();
    sorted.sort_by_key(|&i| (orders[i].created_at, i));
    let gap = Duration::minutes(ctx.th.reference_window_minutes.max(1));
    let mut episodes: Vec<Vec<usize>> = Vec::new();
    for &i in &sorted {
        match episodes.last_mut() {
            Some(ep)
                if orders[i].created_at - orders[*ep.last().unwrap_or(&i)].created_at <= gap =>
            {
                ep.push(i)
            }
            _ => episodes.push(vec![i]),
        }
    }
    for ep in &episodes {
        liquidate_then_withdraw(ctx, ep, gap, hits);
    }
    for ep in episodes {
        let mut buys: BTreeMap<&str, Decimal> = BTreeMap::new();
        for &i in &ep {
            if orders[i].side == Side::Buy {
                *buys.entry(orders[i].market.as_str()).or_default() +=
                    ctx.funds(i).unwrap_or_default();
            }
        }
        let Some((target, bought)) = buys
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(m, v)| (*m, *v))
        else {
            continue;
        };
        let target_quote = ep
            .iter()
            .find(|&&i| orders[i].market.as_str() == target)
            .map(|&i| orders[i].market.quote.as_str())
            .unwrap_or_default();
        let first_buy = ep
            .iter()
            .filter(|&&i| orders[i].market.as_str() == target && orders[i].side == Side::Buy)
            .map(|&i| orders[i].created_at)
            .min();
        let sells: Vec<usize> = ep
            .iter()
            .copied()
            .filter(|&i| {
                orders[i].side == Side::Sell
                    && orders[i].market.as_str() != target
                    && first_buy.is_some_and(|fb| orders[i].created_at <= fb + gap)
            })
            .collect();
        let assets: BTreeSet<&str> = sells
            .iter()
            .map(|&i| orders[i].market.base.as_str())
            .collect();
        let sold: Decimal = sells
            .iter()
            .map(|&i| ctx.funds(i).unwrap_or_default())
            .sum();
        // Several assets sold, or one asset sold into a market the account never traded
        // before: either way the proceeds concentrate in one coin.
        let new_target = !base_markets.contains(target);
        if assets.is_empty()
            || (assets.len() < 2 && !new_target)
            || sold.is_zero()
            || f(bought) < 0.5 * f(sold)
        {
            continue;
        }
        let reason = format!(
            "liquidate then concentrate: sells of {} asset(s) ({}) for {} {}, then buys of {}{} \
             for {} ({:.0}% of the proceeds)",
            assets.len(),
            assets.iter().copied().collect::<Vec<_>>().join(", "),
            sold.round_dp(2).normalize(),
            target_quote,
            target,
            if new_target {
                ", a market the account never traded before"
            } else {
                ""
            },
            bought.round_dp(2).normalize(),
            f(bought) / f(sold) * 100.0
        );
        for &i in &ep {
            let o = &orders[i];
            // The sells that paid for it, and every order of the episode in the target market:
            // the buys concentrate, and the attacker's sells there churn the same coin.
            let already = hits[i].iter().any(|h| h.rule == "R7");
            if !already && (sells.contains(&i) || o.market.as_str() == target) {
                hits[i].push(hit("R7", 0.6, reason.clone()));
            }
        }
    }
}

/// R7, the cash-out variant (step 5 of the reference's attack): taker sells of the account's
/// holdings, then a withdrawal within the reference window after the last of them. A bot
/// trading with limit orders never does this, and a person selling by hand rarely withdraws
/// within the hour; the withdrawal itself is judged by R13.
fn liquidate_then_withdraw(ctx: &Ctx<'_>, ep: &[usize], gap: Duration, hits: &mut [Vec<RuleHit>]) {
    let orders = &ctx.input.orders;
    let sells: Vec<usize> = ep
        .iter()
        .copied()
        .filter(|&i| {
            let o = &orders[i];
            o.side == Side::Sell && o.order_type.is_taker() && !ctx.exec_vol(i).is_zero()
        })
        .collect();
    let (Some(first), Some(last)) = (
        sells.iter().map(|&i| orders[i].created_at).min(),
        sells.iter().map(|&i| orders[i].created_at).max(),
    ) else {
        return;
    };
    let Some(w) = ctx
        .input
        .withdrawals
        .iter()
        .filter(|w| w.created_at >= first && w.created_at <= last + gap)
        .min_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
    else {
        return;
    };
    let assets: BTreeSet<&str> = sells
        .iter()
        .map(|&i| orders[i].market.base.as_str())
        .collect();
    let sold: Decimal = sells
        .iter()
        .map(|&i| ctx.funds(i).unwrap_or_default())
        .sum();
    let reason = format!(
        "liquidate then withdraw: taker sells of {} ({} {}) from {}, then a withdrawal of {} {} \
         at {}",
        assets.iter().copied().collect::<Vec<_>>().join(", "),
        sold.round_dp(2).normalize(),
        orders[sells[0]].market.quote,
        ts(first),
        w.amount.normalize(),
        w.currency,
        ts(w.created_at)
    );
    for i in sells {
        hits[i].push(hit("R7", 0.6, reason.clone()));
    }
}

/// R8: repeated losing buy/sell round trips in one market among the candidates.
fn rule_r8(ctx: &Ctx<'_>, cands: &[usize], hits: &mut [Vec<RuleHit>]) {
    let orders = &ctx.input.orders;
    let mut by_market: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in cands {
        if ctx.avg[i].is_some() && !ctx.exec_vol(i).is_zero() {
            by_market
                .entry(orders[i].market.as_str())
                .or_default()
                .push(i);
        }
    }
    for (market, mut list) in by_market {
        list.sort_by_key(|&i| (orders[i].created_at, i));
        let mut losing: Vec<(usize, usize, f64)> = Vec::new();
        for w in list.windows(2) {
            let (a, b) = (w[0], w[1]);
            if orders[a].side == orders[b].side {
                continue;
            }
            let (buy, sell) = if orders[a].side == Side::Buy {
                (a, b)
            } else {
                (b, a)
            };
            let (Some(bp), Some(sp)) = (ctx.avg[buy], ctx.avg[sell]) else {
                continue;
            };
            let loss = (f(bp) - f(sp)) / f(bp).max(f64::MIN_POSITIVE);
            if loss > ctx.th.contra_loss {
                losing.push((a, b, loss));
            }
        }
        if losing.len() < 2 {
            continue;
        }
        let mean = losing.iter().map(|l| l.2).sum::<f64>() / losing.len() as f64;
        let reason = format!(
            "contra trading: {} losing buy/sell round trips in {market}, losing {:.1}% each on \
             average (threshold {:.1}%)",
            losing.len(),
            mean * 100.0,
            ctx.th.contra_loss * 100.0
        );
        let mut marked = BTreeSet::new();
        for (a, b, _) in losing {
            marked.insert(a);
            marked.insert(b);
        }
        for i in marked {
            hits[i].push(hit("R8", 0.6, reason.clone()));
        }
    }
}

/// R13: every withdrawal, with the anomalies found. Flagged when the address is new (not used
/// by an earlier withdrawal in the export) or not on the exchange's allowlist. Upbit's
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

/// R14: key-hygiene findings, always reported.
pub(crate) fn key_rules(input: &AnalysisInput) -> Vec<RuleHit> {
    let mut out = Vec::new();
    for k in &input.keys {
        if let Some(ips) = &k.allowed_ips {
            if ips.is_empty() {
                out.push(hit(
                    "R14",
                    0.0,
                    format!(
                        "key {} has no IP allowlist: anyone holding it can call the API from anywhere",
                        k.access_key_masked
                    ),
                ));
            }
        }
        if let Some(scopes) = &k.scopes {
            if scopes
                .iter()
                .any(|s| s.to_ascii_lowercase().contains("withdraw"))
            {
                out.push(hit(
                    "R14",
                    0.0,
                    format!(
                        "key {} holds a withdrawal scope, which a trading bot never needs",
                        k.access_key_masked
                    ),
                ));
            }
        }
    }
    if input.keys.len() > 1 {
        out.push(hit(
            "R14",
            0.0,
            format!(
                "the account has {} API keys ({}): confirm you created each one",
                input.keys.len(),
                input
                    .keys
                    .iter()
                    .map(|k| k.access_key_masked.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(p) = &input.permissions {
        for r in &p.reasons {
            out.push(hit("R14", 0.0, format!("key permissions: {r}")));
        }
    }
    out
}

/// Helper for loss valuation: a reference price of `currency` in `quote` at `anchor`.
pub(crate) fn currency_ref(
    ctx: &Ctx<'_>,
    currency: &str,
    quote: &str,
    anchor: Option<DateTime<Utc>>,
) -> Option<RefPrice> {
    if currency == quote {
        return Some(RefPrice {
            price: Decimal::ONE,
            source: "the quote currency itself".into(),
            candle_value: None,
        });
    }
    let market = ctx.symbol_of(currency, quote)?;
    anchor
        .and_then(|a| ctx.market_ref(market, a).or_else(|| ctx.own_ref(market, a)))
        .or_else(|| ctx.refs.get(market).cloned())
}
