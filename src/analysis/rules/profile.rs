//! The baseline's profile: what the bot normally does (its markets and assets, how often it
//! takes liquidity, the distribution of its order sizes, whether it always sends an
//! identifier, its pace per market and its hours), from its matched orders and its own log.

use std::collections::{BTreeSet, HashMap};

use chrono::Timelike;
use rust_decimal::Decimal;

use super::super::diff::FxBuild;
use super::super::model::BotLogEntry;
use super::{median, Ctx};

/// What the baseline (the bot's normal behaviour) looks like.
pub(super) struct Profile<'a> {
    pub(super) markets: BTreeSet<&'a str>,
    pub(super) assets: BTreeSet<&'a str>,
    pub(super) typed: usize,
    pub(super) taker: usize,
    pub(super) notional_median: Option<Decimal>,
    /// The 99th percentile of the baseline's notionals: "the largest the bot places".
    pub(super) notional_p99: Option<Decimal>,
    pub(super) configured: Vec<Decimal>,
    /// 99th percentile of the baseline's orders per minute in one market.
    pub(super) per_minute_p99: f64,
    /// Baseline orders that carry a client id.
    pub(super) with_id: usize,
    pub(super) hours: BTreeSet<u32>,
    pub(super) count: usize,
}

/// Taker order types as bot logs name them (the generic CSV's `price` is a market buy by
/// amount; freqtrade and Hummingbot write `market`).
fn is_taker_name(t: &str) -> bool {
    matches!(t, "price" | "market" | "best")
}

pub(super) fn profile<'a>(ctx: &Ctx<'a>, entries: &[&'a BotLogEntry]) -> Profile<'a> {
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
    let mut minutes: HashMap<(i64, &str), u32, FxBuild> = HashMap::default();
    let mut with_id = 0;
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
        *minutes
            .entry((o.created_at.timestamp() / 60, o.market.as_str()))
            .or_default() += 1;
        if o.client_id.as_deref().is_some_and(|c| !c.is_empty()) {
            with_id += 1;
        }
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
    let notional_p99 = percentile(&mut notionals, 0.99);
    Profile {
        markets,
        assets,
        typed,
        taker,
        notional_median: median(notionals),
        notional_p99,
        configured,
        per_minute_p99,
        with_id,
        hours,
        count,
    }
}

/// The `q` quantile (nearest rank) of `v`, reordering it.
fn percentile(v: &mut [Decimal], q: f64) -> Option<Decimal> {
    if v.is_empty() {
        return None;
    }
    let k = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    let (_, x, _) = v.select_nth_unstable(k);
    Some(*x)
}
