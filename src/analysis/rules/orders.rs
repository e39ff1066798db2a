//! The per-order rules R1–R12 over the candidate orders (R7 and R8 look at several orders at
//! once: [`super::patterns`]).

use std::collections::{BTreeMap, HashMap};

use chrono::Timelike;
use rust_decimal::Decimal;

use super::super::diff::DiffResult;
use super::super::model::{BotLogEntry, Confidence, RuleHit};
use super::profile::profile;
use super::{deviation, f, hit, median, Ctx};
use crate::exchange::Side;
use crate::time::ts;

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

    super::patterns::rule_r7(ctx, &cands, &mut hits);
    super::patterns::rule_r8(ctx, &cands, &mut hits);
    let (confidence, score) = super::scoring::score(&mut hits, ctx.had_log, th);
    OrderRules {
        hits,
        confidence,
        score,
    }
}
