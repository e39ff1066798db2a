//! The baseline's profile: what the bot normally does (its markets and assets, how often it
//! takes liquidity, the distribution of its order sizes, whether it always sends an
//! identifier, its pace per market and its hours), from its matched orders and its own log.

use std::collections::{BTreeSet, HashMap};

use chrono::Timelike;
use rust_decimal::Decimal;

use super::super::diff::FxBuild;
use super::super::model::BotLogEntry;
use super::{median, Ctx};
use crate::exchange::Order;

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

/// Notionals from which the median and the 99th percentile are selected on two threads.
const SELECTED_APART: usize = 100_000;

/// Taker order types as bot logs name them (the generic CSV's `price` is a market buy by
/// amount; freqtrade and Hummingbot write `market`).
fn is_taker_name(t: &str) -> bool {
    matches!(t, "price" | "market" | "best")
}

/// What one span of the baseline's orders shows; spans are merged into the [`Profile`].
#[derive(Default)]
struct Seen<'a> {
    markets: BTreeSet<&'a str>,
    assets: BTreeSet<&'a str>,
    taker: usize,
    notionals: Vec<Decimal>,
    minutes: HashMap<(i64, &'a str), u32, FxBuild>,
    with_id: usize,
    hours: BTreeSet<u32>,
    count: usize,
}

/// The baseline orders among `orders` (the span starting at index `first`).
fn seen<'a>(ctx: &Ctx<'a>, first: usize, orders: &'a [Order]) -> Seen<'a> {
    let mut s = Seen::default();
    let mut markets = super::NewMarkets::default();
    for (j, o) in orders.iter().enumerate() {
        let i = first + j;
        if !ctx.baseline[i] {
            continue;
        }
        s.count += 1;
        if markets.is_new(&o.market) {
            s.markets.insert(o.market.as_str());
            s.assets.insert(o.market.base.as_str());
        }
        if o.order_type.is_taker() {
            s.taker += 1;
        }
        if let Some(fu) = ctx.funds(i) {
            s.notionals.push(fu);
        }
        *s.minutes
            .entry((o.created_at.timestamp() / 60, o.market.as_str()))
            .or_default() += 1;
        if o.client_id.as_deref().is_some_and(|c| !c.is_empty()) {
            s.with_id += 1;
        }
        s.hours.insert(o.created_at.hour());
    }
    s
}

/// What a span of the bot log's rows adds to the profile.
#[derive(Default)]
struct Logged<'a> {
    /// The markets the rows name, each once.
    markets: Vec<&'a crate::exchange::Market>,
    /// Rows with an order type other than a configured deal, and of those the taker ones.
    typed: usize,
    taker: usize,
    /// The configured amounts of deal rows, in row order.
    configured: Vec<Decimal>,
}

fn logged<'a>(entries: &[&'a BotLogEntry]) -> Logged<'a> {
    let mut out = Logged::default();
    let mut new = super::NewMarkets::default();
    for e in entries {
        if let Some(m) = e.market.as_ref().filter(|m| new.is_new(m)) {
            out.markets.push(m);
        }
        if let Some(t) = &e.ord_type {
            if t == "deal" {
                if let Some(fu) = e.funds {
                    out.configured.push(fu);
                }
            } else {
                out.typed += 1;
                if is_taker_name(t) {
                    out.taker += 1;
                }
            }
        }
    }
    out
}

pub(super) fn profile<'a>(ctx: &Ctx<'a>, entries: &[&'a BotLogEntry]) -> Profile<'a> {
    let input = ctx.input;
    let orders: &'a [Order] = &input.orders;
    // The orders are read in spans on the context's threads, merged in span order (the
    // notionals keep the orders' order; the sets and counts do not depend on it).
    let mut spans =
        crate::par::map_spans(orders, ctx.threads, |first, span| seen(ctx, first, span))
            .into_iter();
    let mut all = spans.next().unwrap_or_default();
    for s in spans {
        all.markets.extend(s.markets);
        all.assets.extend(s.assets);
        all.taker += s.taker;
        all.notionals.extend(s.notionals);
        for (k, c) in s.minutes {
            *all.minutes.entry(k).or_default() += c;
        }
        all.with_id += s.with_id;
        all.hours.extend(s.hours);
        all.count += s.count;
    }
    let Seen {
        mut markets,
        assets: mut seen_assets,
        mut taker,
        notionals,
        minutes,
        with_id,
        hours,
        count,
    } = all;
    let mut assets: BTreeSet<&str> = input
        .balances_start
        .iter()
        .filter(|b| !(b.free + b.locked).is_zero())
        .map(|b| b.currency.as_str())
        .collect();
    assets.append(&mut seen_assets);
    // The bot's own rows, read in spans on the context's threads too.
    let mut typed = count;
    let mut configured = Vec::new();
    for part in crate::par::map_spans(entries, ctx.threads, |_, span| logged(span)) {
        for m in part.markets {
            markets.insert(m.as_str());
            assets.insert(m.base.as_str());
        }
        typed += part.typed;
        taker += part.taker;
        configured.extend(part.configured);
    }
    let mut counts: Vec<u32> = minutes.into_values().collect();
    counts.sort_unstable();
    let per_minute_p99 = if counts.is_empty() {
        1.0
    } else {
        counts[((counts.len() as f64 * 0.99).ceil() as usize).clamp(1, counts.len()) - 1] as f64
    };
    let (notional_median, notional_p99) = median_and_p99(notionals, SELECTED_APART);
    Profile {
        markets,
        assets,
        typed,
        taker,
        notional_median,
        notional_p99,
        configured,
        per_minute_p99,
        with_id,
        hours,
        count,
    }
}

/// The median and the 99th percentile of `notionals` (`None` when empty). Two selections over
/// every notional, and a Decimal compare is slow: from `apart` notionals on, one runs beside
/// the other (on a copy).
fn median_and_p99(mut notionals: Vec<Decimal>, apart: usize) -> (Option<Decimal>, Option<Decimal>) {
    if notionals.len() >= apart {
        let copy = notionals.clone();
        crate::par::join(|| median(copy), || percentile(&mut notionals, 0.99))
    } else {
        let p99 = percentile(&mut notionals, 0.99);
        (median(notionals), p99)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The median and the 99th percentile are the same selected apart or one after the other,
    /// for odd and even counts, with repeats and with equal values written at other scales.
    #[test]
    fn median_and_p99_do_not_depend_on_selecting_apart() {
        let mut seed = 3u64;
        for n in [0usize, 1, 2, 3, 100, 1001] {
            let notionals: Vec<Decimal> = (0..n)
                .map(|i| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let v = Decimal::from((seed >> 40) % 50);
                    // Every third value carries two more decimal places (1.00 = 1).
                    if i % 3 == 0 {
                        Decimal::new(v.mantissa() as i64 * 100, 2)
                    } else {
                        v
                    }
                })
                .collect();
            let one_after = median_and_p99(notionals.clone(), usize::MAX);
            let apart = median_and_p99(notionals.clone(), 0);
            assert_eq!(apart, one_after, "{n} notionals");
            let mut sorted = notionals;
            sorted.sort();
            if n > 0 {
                let k = ((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1;
                assert_eq!(one_after.1, Some(sorted[k]), "{n} notionals");
            } else {
                assert_eq!(one_after, (None, None));
            }
        }
    }
}
