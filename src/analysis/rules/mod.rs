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
//! Confidence: each kind of act is judged on its own evidence (the policy per act is in
//! `docs/detection.md` §5.0, the code in [`scoring`]). `High` needs a score of at least
//! `flag_score` and an act a person trading by hand does not commit: with a log, R1 plus a
//! foreign identifier (R2), a price far from the reference at fill (R4) or at placement (R15),
//! a burst (R6), a liquidation chained to the buys it funded (R7), contra round trips (R8),
//! trading while the bot was stopped (R9) or a size far beyond the bot's own (R11 at 0.5);
//! without a log (or beyond a log that was cut early), the same acts less R1 and R2. R1 with
//! only R3 and the weak rules (R5, R10, R11, R12, R16) stays `Review`: the user's own web-UI
//! trades are unmatched and usually in markets the bot never trades. An order that fits the
//! user-trade model ([`user`]) is `Review` at most and says why; one judged without a log that
//! looks like the bot's own is `None`. Only `High` counts as flagged.
//!
//! Withdrawals (R13) are judged on the withdrawal itself, with or without a flagged order
//! ([`withdrawals`]): a never-used destination with recent registration, most of the holding,
//! an outsized amount or company is `High`; the long-used destination during the incident is
//! `Review` (the owner moving funds to safety looks the same).
//!
//! Reference prices use only candles that had *closed* before the anchor order.
//!
//! Layout: this module holds what every rule shares (`Ctx`: candidate and baseline sets,
//! reference prices, fill totals); `profile` what the bot normally does; `orders` the
//! per-order rules R1–R12, R15 and R16; `patterns` the multi-order patterns R7 and R8; `withdrawals` R13;
//! `keys` R14; `user` the user-trade model; `scoring` the confidence policy.

mod keys;
mod orders;
mod patterns;
mod profile;
mod scoring;
mod user;
mod withdrawals;

pub(crate) use keys::key_rules;
pub(crate) use orders::{order_rules, OrderRules};
pub(crate) use withdrawals::{assess as assess_withdrawals, withdrawal_rules};

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::diff::{order_funds, DiffResult, FxBuild, IdPattern};
use super::model::{AnalysisInput, MatchKind, RuleHit, Thresholds};
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
    /// The threads a pass over the orders may use (the profile's).
    pub threads: usize,
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
    base_prices: OnceLock<PriceIndex<'a>>,
    /// Reference per market of its earliest suspicious cluster (for valuation fallbacks).
    pub refs: BTreeMap<String, RefPrice>,
    /// Reference per order: fixed at the first candidate order of its cluster in its market.
    order_ref: Vec<u32>,
    /// The distinct references `order_ref` points into.
    ref_store: Vec<RefPrice>,
    /// Market symbol by (base, quote), from the orders, candles and market list seen.
    symbols: BTreeMap<(&'a str, &'a str), &'a str>,
    /// Per order: inside the span a bot log covers (always false without a log). A candidate
    /// outside it is judged without the log: the log cannot say it is absent.
    pub in_log_span: Vec<bool>,
    /// The shapes of the bot's client ids: learned from its matched orders (with a log) or
    /// from the history before the suspicious window (without one).
    pub pattern: Option<IdPattern>,
    /// Per candidate order: the share of the account's holding it spent (a buy: of the quote
    /// held just before it; a sell: of the base held just before it), and whether the base
    /// asset was held just before it. Reconstructed backwards from the start snapshot
    /// through the executed orders; absent without a snapshot.
    holding: HashMap<usize, (f64, bool), FxBuild>,
    /// Per withdrawal (index into the input's withdrawals): the share of its currency's
    /// holding it took, reconstructed the same way.
    withdrawal_share: HashMap<usize, f64, FxBuild>,
}

const NO_REF: u32 = u32::MAX;

/// Average prices per market, sorted by time.
type PriceIndex<'a> = BTreeMap<&'a str, Vec<(DateTime<Utc>, Decimal)>>;

/// Median (mean of the two middle values for an even count), in linear time.
pub(super) fn median(mut v: Vec<Decimal>) -> Option<Decimal> {
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

pub(super) fn f(x: Decimal) -> f64 {
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

/// Finds each market's first record: records share one [`crate::exchange::Market`] per
/// market, so over a million orders this costs a pointer look-up each, and names are compared
/// only for the few distinct markets. Equal markets built apart count as two (callers collect
/// names into sets).
#[derive(Default)]
pub(super) struct NewMarkets {
    seen: std::collections::HashSet<usize, FxBuild>,
    last: Option<usize>,
}

impl NewMarkets {
    /// Whether `m` is met for the first time.
    pub(super) fn is_new(&mut self, m: &crate::exchange::Market) -> bool {
        let id = m.identity();
        let new = self.last != Some(id) && self.seen.insert(id);
        self.last = Some(id);
        new
    }
}

/// Each market of `markets` once (see [`NewMarkets`]), in first-seen order.
pub(super) fn distinct_markets<'a>(
    markets: impl IntoIterator<Item = &'a crate::exchange::Market>,
) -> Vec<&'a crate::exchange::Market> {
    let mut new = NewMarkets::default();
    markets.into_iter().filter(|m| new.is_new(m)).collect()
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
    for m in distinct_markets(input.orders.iter().map(|o| &o.market)) {
        add(m);
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
        threads: usize,
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
            threads,
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
            base_prices: OnceLock::new(),
            refs: BTreeMap::new(),
            order_ref: vec![NO_REF; n],
            ref_store: Vec::new(),
            symbols: symbols(input),
            in_log_span: vec![false; n],
            pattern: diff.and_then(|d| d.pattern.clone()),
            holding: HashMap::default(),
            withdrawal_share: HashMap::default(),
        };
        match diff {
            Some(d) => {
                for (i, k) in d.kinds.iter().enumerate() {
                    ctx.candidate[i] = *k == MatchKind::Unmatched;
                    ctx.baseline[i] = *k != MatchKind::Unmatched;
                    ctx.in_log_span[i] = d.covers(input.orders[i].created_at);
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
                // Without a log, the bot's identifiers are learned from the history before
                // the suspicious window (when there is one).
                if ctx
                    .baseline
                    .iter()
                    .zip(&ctx.candidate)
                    .any(|(b, c)| *b != *c)
                {
                    ctx.pattern = IdPattern::learn(
                        input
                            .orders
                            .iter()
                            .zip(&ctx.baseline)
                            .filter(|(_, b)| **b)
                            .filter_map(|(o, _)| o.client_id.as_deref())
                            .filter(|c| !c.is_empty()),
                        threads,
                    );
                }
            }
        }
        ctx.anchor_refs();
        ctx.holdings();
        ctx
    }

    /// Reconstructs what the account held just before each candidate order and each
    /// withdrawal: the start snapshot, with every executed order, withdrawal and deposit from
    /// the latest back undone (a buy gave base and took quote, a sell the reverse, a
    /// withdrawal took its amount and fee, a deposit gave its amount; trading fees left out).
    /// Events after the snapshot are undone too, a small error on a live attack's last
    /// orders.
    fn holdings(&mut self) {
        if self.input.balances_start.is_empty() {
            return;
        }
        let mut held: BTreeMap<&str, Decimal> = BTreeMap::new();
        for b in &self.input.balances_start {
            *held.entry(b.currency.as_str()).or_default() += b.free + b.locked;
        }
        let input = self.input;
        let orders = &input.orders;
        // (kind, index): kind 0 = order, 1 = withdrawal, 2 = deposit; 8 bytes each, sorted
        // by time through the records (a million orders cost 8 MB here, not 24).
        let moved = |t: &crate::exchange::Transfer| {
            let s = t.state.to_ascii_lowercase();
            !(s.contains("cancel") || s.contains("reject") || s.contains("fail"))
        };
        let mut events: Vec<(u8, u32)> = (0..orders.len() as u32).map(|i| (0, i)).collect();
        for (i, w) in input.withdrawals.iter().enumerate() {
            if moved(w) {
                events.push((1, i as u32));
            }
        }
        for (i, d) in input.deposits.iter().enumerate() {
            if moved(d) {
                events.push((2, i as u32));
            }
        }
        let at = |&(k, i): &(u8, u32)| match k {
            0 => orders[i as usize].created_at,
            1 => input.withdrawals[i as usize].created_at,
            _ => input.deposits[i as usize].created_at,
        };
        events.sort_by_key(|e| std::cmp::Reverse((at(e), e.0, e.1)));
        let mut out: HashMap<usize, (f64, bool), FxBuild> = HashMap::default();
        let mut wout: HashMap<usize, f64, FxBuild> = HashMap::default();
        let share = |spent: Decimal, of: Decimal| {
            if of.is_zero() {
                if spent.is_zero() {
                    0.0
                } else {
                    1.0
                }
            } else {
                (f(spent) / f(of)).min(1.0)
            }
        };
        for (kind, i) in events {
            let i = i as usize;
            match kind {
                1 => {
                    let w = &input.withdrawals[i];
                    let e = held.entry(w.currency.as_str()).or_default();
                    *e += w.amount + w.fee.unwrap_or_default();
                    wout.insert(i, share(w.amount, *e));
                    continue;
                }
                2 => {
                    let d = &input.deposits[i];
                    let e = held.entry(d.currency.as_str()).or_default();
                    *e = (*e - d.amount).max(Decimal::ZERO);
                    continue;
                }
                _ => {}
            }
            let o = &orders[i];
            let vol = self.exec_vol(i);
            let funds = self.exec_funds(i).unwrap_or_default();
            let (base, quote) = (o.market.base.as_str(), o.market.quote.as_str());
            if !vol.is_zero() {
                let (b, q) = match o.side {
                    Side::Buy => (-vol, funds),
                    Side::Sell => (vol, -funds),
                };
                let e = held.entry(base).or_default();
                *e = (*e + b).max(Decimal::ZERO);
                let e = held.entry(quote).or_default();
                *e = (*e + q).max(Decimal::ZERO);
            }
            if !self.candidate[i] {
                continue;
            }
            let base_before = held.get(base).copied().unwrap_or_default();
            let (spent, of) = match o.side {
                Side::Buy => (
                    self.funds(i).unwrap_or_default(),
                    held.get(quote).copied().unwrap_or_default(),
                ),
                Side::Sell => (
                    if vol.is_zero() {
                        o.volume.unwrap_or_default()
                    } else {
                        vol
                    },
                    base_before,
                ),
            };
            out.insert(i, (share(spent, of), !base_before.is_zero()));
        }
        self.holding = out;
        self.withdrawal_share = wout;
    }

    /// The share of its currency's holding withdrawal `i` (index into the input's
    /// withdrawals) took, when the start snapshot allows the reconstruction.
    pub(crate) fn withdrawal_share(&self, i: usize) -> Option<f64> {
        self.withdrawal_share.get(&i).copied()
    }

    /// The share of the holding candidate `i` spent (see [`Ctx::holding`]).
    pub(crate) fn holding_share(&self, i: usize) -> Option<f64> {
        self.holding.get(&i).map(|h| h.0)
    }

    /// Whether the account held candidate `i`'s base asset just before it.
    pub(crate) fn held_base_before(&self, i: usize) -> Option<bool> {
        self.holding.get(&i).map(|h| h.1)
    }

    /// Whether candidate `i` is judged against the bot log (a log exists and covers its time).
    pub(crate) fn judged_with_log(&self, i: usize) -> bool {
        self.had_log && self.in_log_span[i]
    }

    /// Without a log: per-order candle references find price anomalies (an average fill, or
    /// a limit placed, beyond `price_deviation` in the harmful direction) and contra round
    /// trips; the window around them (± the reference window) holds the candidates,
    /// everything before is baseline.
    fn no_log_sets(&mut self) {
        let w = self.th.reference_window_minutes;
        let mut hits: Vec<DateTime<Utc>> = Vec::new();
        for (i, o) in self.input.orders.iter().enumerate() {
            let r = self.market_ref(o.market.as_str(), o.created_at);
            if let Some(r) = &r {
                let fill = self.avg[i].filter(|_| !self.exec_vol(i).is_zero());
                let limit = limit_price(o);
                if [fill, limit]
                    .into_iter()
                    .flatten()
                    .any(|p| deviation(o.side, p, r.price) > self.th.price_deviation)
                {
                    hits.push(o.created_at);
                }
            }
            self.order_ref[i] = self.store(r);
        }
        let all: Vec<usize> = (0..self.input.orders.len()).collect();
        for trips in patterns::contra_trips(self, &all).into_values() {
            for (a, b, _) in trips {
                hits.push(self.input.orders[a].created_at);
                hits.push(self.input.orders[b].created_at);
            }
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

/// The limit price of a limit order.
pub(super) fn limit_price(o: &crate::exchange::Order) -> Option<Decimal> {
    o.price.filter(|_| o.order_type == OrderType::Limit)
}

/// How far `avg` is from `reference` in the direction that hurts the account.
pub(super) fn deviation(side: Side, avg: Decimal, reference: Decimal) -> f64 {
    if reference.is_zero() {
        return 0.0;
    }
    let r = f(avg) / f(reference);
    match side {
        Side::Buy => r - 1.0,
        Side::Sell => 1.0 - r,
    }
}

pub(super) fn hit(rule: &str, weight: f64, reason: String) -> RuleHit {
    RuleHit {
        rule: rule.to_string(),
        weight,
        reason,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Market;
    use std::collections::BTreeSet;

    /// Each market is returned once, in first-seen order, however its records interleave;
    /// an equal market built apart is another allocation, so it is returned too (callers
    /// collect names into sets, where the two are one).
    #[test]
    fn distinct_markets_finds_each_shared_market_once() {
        let a = Market::new("QQ-AAA", "AAA", "QQ");
        let b = Market::new("QQ-BBB", "BBB", "QQ");
        let a_again = Market::new("QQ-AAA", "AAA", "QQ");
        let records = [&a, &b, &a, &a, &b, &b, &a, &a_again, &a];
        let found: Vec<usize> = distinct_markets(records)
            .into_iter()
            .map(Market::identity)
            .collect();
        assert_eq!(found, [a.identity(), b.identity(), a_again.identity()]);
        let names: BTreeSet<&str> = distinct_markets(records)
            .into_iter()
            .map(Market::as_str)
            .collect();
        assert_eq!(names, BTreeSet::from(["QQ-AAA", "QQ-BBB"]));
        assert!(distinct_markets([]).is_empty());
    }
}
