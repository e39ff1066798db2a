//! The per-order rules over the candidate orders: R1–R6, R9–R12, R15 (limit price at
//! placement) and R16 (no identifier where the bot always sends one). R7 and R8 look at
//! several orders at once ([`super::patterns`]); the user-trade model and the confidence
//! policy come last ([`super::user`], [`super::scoring`]).

use std::collections::HashMap;

use chrono::Timelike;

use super::super::model::{BotLogEntry, Confidence, RuleHit};
use super::profile::profile;
use super::{deviation, f, hit, limit_price, median, Ctx};
use crate::exchange::{Side, Transfer};
use crate::time::ts;

/// Per-order rule hits and the confidence each order gets.
pub(crate) struct OrderRules {
    pub hits: Vec<Vec<RuleHit>>,
    pub confidence: Vec<Confidence>,
    pub score: Vec<f64>,
    /// Per order: why it is kept at review at most (the user-trade model), if it is.
    pub user_trade: Vec<Option<String>>,
}

/// Share of the baseline's orders that must carry a client id for R16 ("the bot always
/// sends one"), and the least number of them.
const ID_SHARE: f64 = 0.95;
const ID_MIN: usize = 20;

pub(crate) fn order_rules<'a>(
    ctx: &Ctx<'a>,
    entries: &[&'a BotLogEntry],
    suspicious_withdrawals: &[&Transfer],
) -> OrderRules {
    let input = ctx.input;
    let th = ctx.th;
    let n = input.orders.len();
    let mut hits: Vec<Vec<RuleHit>> = vec![Vec::new(); n];
    let prof = profile(ctx, entries);
    let cands: Vec<usize> = (0..n).filter(|&i| ctx.candidate[i]).collect();
    let market_minutes: HashMap<(i64, &str), u32> = {
        let mut m: HashMap<(i64, &str), u32> = HashMap::new();
        for &i in &cands {
            let o = &input.orders[i];
            *m.entry((o.created_at.timestamp() / 60, o.market.as_str()))
                .or_default() += 1;
        }
        m
    };
    let stopped: Vec<crate::exchange::Window> = input
        .bot_logs
        .iter()
        .flat_map(|l| l.stopped.iter().copied())
        .collect();
    let pattern = ctx.pattern.as_ref();
    let always_id = prof.count >= ID_MIN && prof.with_id as f64 >= ID_SHARE * prof.count as f64;

    for &i in &cands {
        let o = &input.orders[i];
        let h = &mut hits[i];
        let client_id = o.client_id.as_deref().filter(|c| !c.is_empty());
        // R1: only where a log covers the order's time; outside it the log cannot tell.
        if ctx.judged_with_log(i) {
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
                    match client_id {
                        Some(c) => format!("identifier `{c}`"),
                        None => "no identifier was sent".to_string(),
                    },
                    o.side.as_str(),
                    th.fuzzy_time_tolerance_secs,
                    th.fuzzy_volume_tolerance * 100.0
                ),
            ));
        }
        // R2: a client id the bot would not have sent: another program used the key.
        if let (Some(c), Some(p)) = (client_id, pattern) {
            if !p.fits(c) {
                h.push(hit(
                    "R2",
                    0.5,
                    format!(
                        "client id `{c}` does not fit the bot's identifiers: {}",
                        p.describe()
                    ),
                ));
            }
        }
        // R3: with a log, the bot's markets; without, the account's history before the window.
        if !prof.markets.contains(o.market.as_str())
            && (ctx.had_log || (prof.count > 0 && !ctx.baseline[i]))
        {
            let new_asset = !prof.assets.contains(o.market.base.as_str());
            let whose = if ctx.had_log {
                "the bot never trades"
            } else {
                "the account never traded, before the suspicious window,"
            };
            h.push(hit(
                "R3",
                if new_asset { 0.7 } else { 0.5 },
                format!(
                    "{whose} {} (its {} markets: {}){}",
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
        // R4: the average fill price, for orders that executed.
        let exec = !ctx.exec_vol(i).is_zero();
        if let (Some(r), Some(a), true) = (ctx.reference(i), ctx.avg[i], exec) {
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
        // R15: the limit price placed. A limit bid far above the market is intent to overpay,
        // however the book filled it.
        if let (Some(r), Some(lp)) = (ctx.reference(i), limit_price(o)) {
            let d = deviation(o.side, lp, r.price);
            if d > th.price_deviation {
                let ratio = f(lp) / f(r.price).max(f64::MIN_POSITIVE);
                let multiple = match o.side {
                    Side::Buy => ratio,
                    Side::Sell => 1.0 / ratio.max(f64::MIN_POSITIVE),
                };
                let hard = multiple >= th.limit_hard_multiple;
                h.push(hit(
                    "R15",
                    if hard { 1.0 } else { 0.6 },
                    format!(
                        "limit {} placed at {} vs a reference {} ({}): {:.2}× the reference{}",
                        o.side.as_str(),
                        lp.normalize(),
                        r.price.normalize(),
                        r.source,
                        ratio,
                        if hard {
                            format!(
                                ", {} {}× (hard flag: intent, however it filled)",
                                if o.side == Side::Buy {
                                    "at least"
                                } else {
                                    "at most 1 /"
                                },
                                th.limit_hard_multiple
                            )
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
        // R6: per market and minute.
        let per_min = market_minutes
            .get(&(o.created_at.timestamp() / 60, o.market.as_str()))
            .copied()
            .unwrap_or(0) as f64;
        let limit = th.burst_multiple * prof.per_minute_p99.max(1.0);
        if per_min > limit {
            h.push(hit(
                "R6",
                0.4,
                format!(
                    "{per_min} suspicious orders in {} in the minute of {}, above {:.1} ({}× the \
                     bot's 99th percentile of {:.0} orders/minute in one market)",
                    o.market,
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
        // R11: the size against the bot's own distribution, and against the holding.
        let share = ctx.holding_share(i);
        let mut size: Vec<String> = Vec::new();
        let mut weight: f64 = 0.0;
        if let Some(fu) = ctx.funds(i) {
            let usual = prof
                .notional_median
                .or_else(|| median(prof.configured.clone()));
            let largest = prof.notional_p99.filter(|p| !p.is_zero());
            match (usual.filter(|u| !u.is_zero()), largest) {
                (_, Some(p)) if f(fu) > th.size_ratio * f(p) => {
                    weight = 0.5;
                    size.push(format!(
                        "notional {} is {:.1}× the largest the bot places ({}, its 99th \
                         percentile), {:.1}× its usual {}",
                        fu.round_dp(2).normalize(),
                        f(fu) / f(p),
                        p.round_dp(2).normalize(),
                        usual.map_or(0.0, |u| f(fu) / f(u).max(f64::MIN_POSITIVE)),
                        usual.unwrap_or_default().round_dp(2).normalize()
                    ));
                }
                (Some(u), _) => {
                    let ratio = f(fu) / f(u);
                    if ratio > th.size_ratio || ratio < 1.0 / th.size_ratio {
                        weight = 0.3;
                        size.push(format!(
                            "notional {} is {:.2}× the bot's usual {}",
                            fu.round_dp(2).normalize(),
                            ratio,
                            u.round_dp(2).normalize()
                        ));
                    }
                }
                _ => {}
            }
        }
        if o.side == Side::Sell && exec && share.is_some_and(|s| s >= 0.98) {
            weight = weight.max(0.3);
            size.push(format!(
                "sold {} {}, ~100% of what the account held just before",
                ctx.exec_vol(i).normalize(),
                o.market.base.as_str()
            ));
        }
        if !size.is_empty() {
            h.push(hit("R11", weight, size.join("; ")));
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
        // R16: no identifier, from a bot that always sends one.
        if client_id.is_none() && always_id {
            h.push(hit(
                "R16",
                0.3,
                format!(
                    "no identifier, while {} of the {} {} carry one",
                    prof.with_id,
                    prof.count,
                    if ctx.had_log {
                        "bot's orders"
                    } else {
                        "orders before the suspicious window"
                    }
                ),
            ));
        }
    }

    let bot_like = |i: usize, h: &[RuleHit]| super::user::looks_like_the_bot(ctx, &prof, i, h);
    super::patterns::rule_r7(ctx, &cands, suspicious_withdrawals, &bot_like, &mut hits);
    super::patterns::rule_r8(ctx, &cands, &mut hits);
    let users = super::user::user_profile(ctx, &prof, &cands, &hits);
    let mut user_trade: Vec<Option<String>> = vec![None; n];
    let mut bot_like: Vec<bool> = vec![false; n];
    for &i in &cands {
        user_trade[i] = users.explain(ctx, &prof, i, &hits[i]);
        bot_like[i] = super::user::looks_like_the_bot(ctx, &prof, i, &hits[i]);
    }
    let (confidence, score) = super::scoring::score(ctx, &mut hits, &user_trade, &bot_like, th);
    OrderRules {
        hits,
        confidence,
        score,
        user_trade,
    }
}
