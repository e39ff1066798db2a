//! Attack patterns over several candidate orders: R7 (liquidate then concentrate, liquidate
//! then withdraw) and R8 (contra round trips). A pattern is an operation, not one odd order:
//! each rule fires only when several acts line up in market, time and money, so a pattern
//! hit stands on its own (weight = the flag score).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::super::model::RuleHit;
use super::{f, hit, Ctx};
use crate::exchange::{Side, Transfer};
use crate::time::ts;

/// Weight of a pattern hit: a pattern stands on its own.
const PATTERN: f64 = 1.0;

/// Weight of the liquidate-then-withdraw variant: the sells alone are ordinary; it is the
/// withdrawal that follows them that makes them suspicious.
const THEN_WITHDRAW: f64 = 0.6;

/// A market whose sells paid for less than this share of the concentrated buys, and sold
/// less than [`LIQUIDATED_SHARE`] of the holding, did not fund them (a bot's or a person's
/// small sell that happened to fall in the chain).
const FUNDING_SHARE: f64 = 0.10;
const LIQUIDATED_SHARE: f64 = 0.5;

/// R7: a chain of executed sells in other markets, each no more than `chain_gap_minutes`
/// before the next act of the chain, funding buys of one market in which some buys were
/// placed or filled far above the reference (R4 or R15; or, for a coin the account never
/// traded, with no reference price to show they were fair): the proceeds went into a pump.
/// Fires when the funding sells cover ≥ 2 assets (or one, when the bought market is new to
/// the account's history) and the buys took ≥ half their proceeds. Marks the funding sells,
/// and the candidate orders of the bought market from the chain's start to its last buy.
///
/// Per market and in time: a sell placed after the last buy funded nothing, a sell that never
/// filled funded nothing, a sell long before the chain is another story, and a market whose
/// sells brought less than a tenth of what the buys spent did not fund them.
pub(super) fn rule_r7(
    ctx: &Ctx<'_>,
    cands: &[usize],
    suspicious_withdrawals: &[&Transfer],
    bot_like: &dyn Fn(usize, &[RuleHit]) -> bool,
    hits: &mut [Vec<RuleHit>],
) {
    let orders = &ctx.input.orders;
    let base_markets: BTreeSet<&str> = super::distinct_markets(
        orders
            .iter()
            .zip(&ctx.baseline)
            .filter(|(_, b)| **b)
            .map(|(o, _)| &o.market),
    )
    .into_iter()
    .map(|m| m.as_str())
    .collect();
    let mut sorted: Vec<usize> = cands.to_vec();
    sorted.sort_by_key(|&i| (orders[i].created_at, i));
    let gap = Duration::minutes(ctx.th.reference_window_minutes.max(1));
    let chain_gap = Duration::minutes(ctx.th.chain_gap_minutes.max(1));
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
        liquidate_then_withdraw(ctx, ep, gap, suspicious_withdrawals, hits);
    }
    let abnormal = |h: &[RuleHit]| h.iter().any(|x| x.rule == "R4" || x.rule == "R15");
    // Target market → when its concentration began, and why: later episodes that keep
    // buying it continue the same concentration (see `continue_concentration`).
    let mut concentrated: BTreeMap<&str, (DateTime<Utc>, String)> = BTreeMap::new();
    for ep in &episodes {
        // The bought market: the one with the largest bought notional among those with buys
        // placed or filled far above the reference, or, in a coin the account never traded,
        // with no reference price at all to show the buys were fair.
        let mut buys: BTreeMap<&str, (Decimal, bool, bool)> = BTreeMap::new();
        for &i in ep {
            if orders[i].side == Side::Buy {
                let e = buys.entry(orders[i].market.as_str()).or_default();
                e.0 += ctx.funds(i).unwrap_or_default();
                e.1 |= abnormal(&hits[i]);
                e.2 |= ctx.reference(i).is_some();
            }
        }
        let Some((target, bought)) = buys
            .iter()
            .filter(|(m, (_, ab, priced))| *ab || (!*priced && !base_markets.contains(*m)))
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.0.cmp(a.0)))
            .map(|(m, (v, _, _))| (*m, *v))
        else {
            continue;
        };
        let target_buys: Vec<DateTime<Utc>> = ep
            .iter()
            .filter(|&&i| orders[i].market.as_str() == target && orders[i].side == Side::Buy)
            .map(|&i| orders[i].created_at)
            .collect();
        let (Some(&first_buy), Some(&last_buy)) =
            (target_buys.iter().min(), target_buys.iter().max())
        else {
            continue;
        };
        // The chain: executed sells in other markets, walking back from the first buy while
        // each is close enough to the next act; sells between the first and last buy belong
        // to it too (a liquidation interleaved with the buys).
        let mut sells: Vec<usize> = ep
            .iter()
            .copied()
            .filter(|&i| {
                let o = &orders[i];
                o.side == Side::Sell
                    && o.market.as_str() != target
                    && !ctx.exec_vol(i).is_zero()
                    && o.created_at <= last_buy
            })
            .collect();
        sells.sort_by_key(|&i| std::cmp::Reverse((orders[i].created_at, i)));
        let mut chain: Vec<usize> = Vec::new();
        let mut next = first_buy;
        for i in sells {
            let t = orders[i].created_at;
            if t >= first_buy {
                chain.push(i);
            } else if next - t <= chain_gap {
                chain.push(i);
                next = t;
            } else {
                break;
            }
        }
        // Per market: did its sells fund the buys? They did when they brought a tenth of
        // what the buys spent, or sold most of what the account held of the asset.
        let mut per_market: BTreeMap<&str, (Decimal, f64)> = BTreeMap::new();
        for &i in &chain {
            let e = per_market.entry(orders[i].market.as_str()).or_default();
            e.0 += ctx.funds(i).unwrap_or_default();
            e.1 = e.1.max(ctx.holding_share(i).unwrap_or(0.0));
        }
        let funding: BTreeSet<&str> = per_market
            .iter()
            .filter(|(_, (v, share))| {
                f(*v) >= FUNDING_SHARE * f(bought) || *share >= LIQUIDATED_SHARE
            })
            .map(|(m, _)| *m)
            .collect();
        chain.retain(|&i| funding.contains(orders[i].market.as_str()));
        // Judged without a log, a sell that looks like the bot's own (its identifiers, its
        // markets and sizes) is the bot's, unless every sell of its market looks so (a thief
        // copying the bot).
        let botlike: BTreeSet<usize> = chain
            .iter()
            .copied()
            .filter(|&i| bot_like(i, &hits[i]))
            .collect();
        let mixed: BTreeSet<&str> = chain
            .iter()
            .filter(|i| !botlike.contains(i))
            .map(|&i| orders[i].market.as_str())
            .collect();
        chain.retain(|&i| !botlike.contains(&i) || !mixed.contains(orders[i].market.as_str()));
        let in_chain: BTreeSet<usize> = chain.iter().copied().collect();
        let (assets, sold) = sold_assets(ctx, &chain);
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
        let start = chain
            .iter()
            .map(|&i| orders[i].created_at)
            .min()
            .unwrap_or(first_buy)
            .min(first_buy);
        let target_quote = ep
            .iter()
            .find(|&&i| orders[i].market.as_str() == target)
            .map(|&i| orders[i].market.quote.as_str())
            .unwrap_or_default();
        let reason = format!(
            "liquidate then concentrate: sells of {} asset(s) ({}) for {} {} from {}, each \
             within {} min of the next act, then buys of {}{} placed or filled far above the \
             reference, for {} ({:.0}% of the proceeds) until {}",
            assets.len(),
            assets.iter().copied().collect::<Vec<_>>().join(", "),
            sold.round_dp(2).normalize(),
            target_quote,
            ts(start),
            chain_gap.num_minutes(),
            target,
            if new_target {
                ", a market the account never traded before"
            } else {
                ""
            },
            bought.round_dp(2).normalize(),
            f(bought) / f(sold) * 100.0,
            ts(last_buy)
        );
        for &i in ep {
            let o = &orders[i];
            // The sells that paid for it, and the orders of the bought market during the
            // operation: the buys concentrate, and sells there churn the same coin.
            let in_target =
                o.market.as_str() == target && o.created_at >= start && o.created_at <= last_buy;
            let already = hits[i].iter().any(|h| h.rule == "R7");
            if !already && (in_chain.contains(&i) || in_target) {
                hits[i].push(hit("R7", PATTERN, reason.clone()));
            }
        }
        concentrated.entry(target).or_insert((first_buy, reason));
    }
    continue_concentration(ctx, &episodes, &concentrated, hits);
}

/// R7, continued: a later episode that buys a coin an earlier episode concentrated the proceeds
/// in, after that concentration began, however much later (the thief keeps trading the same
/// coin with the leaked key until it dies), continues it: its orders in that market (the buys,
/// and the sells that churn the same coin among them) carry R7 as the first episode's did. An
/// episode that only sells the coin does not: that is the user's own exit as often as not.
fn continue_concentration(
    ctx: &Ctx<'_>,
    episodes: &[Vec<usize>],
    concentrated: &BTreeMap<&str, (DateTime<Utc>, String)>,
    hits: &mut [Vec<RuleHit>],
) {
    let orders = &ctx.input.orders;
    for ep in episodes {
        for (target, (began, why)) in concentrated {
            let in_target = |i: &usize| orders[*i].market.as_str() == *target;
            let buys_after = ep.iter().filter(|i| in_target(i)).any(|&i| {
                orders[i].side == Side::Buy
                    && orders[i].created_at >= *began
                    && !hits[i].iter().any(|h| h.rule == "R7")
            });
            if !buys_after {
                continue;
            }
            for &i in ep.iter().filter(|i| in_target(i)) {
                if orders[i].created_at < *began || hits[i].iter().any(|h| h.rule == "R7") {
                    continue;
                }
                hits[i].push(hit(
                    "R7",
                    PATTERN,
                    format!(
                        "continues the concentration into {target} that began at {}: {why}",
                        ts(*began)
                    ),
                ));
            }
        }
    }
}

/// R7, the cash-out variant (step 5 of the reference's attack): executed taker sells, then a
/// withdrawal whose destination is not one the account used before, within the reference
/// window after the last of them. A bot trading with limit orders never does this, and a
/// person selling by hand then moving funds to their own long-used wallet is not it; the
/// withdrawal itself is judged by R13.
fn liquidate_then_withdraw(
    ctx: &Ctx<'_>,
    ep: &[usize],
    gap: Duration,
    suspicious_withdrawals: &[&Transfer],
    hits: &mut [Vec<RuleHit>],
) {
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
    let Some(w) = suspicious_withdrawals
        .iter()
        .filter(|w| w.created_at >= first && w.created_at <= last + gap)
        .min_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
    else {
        return;
    };
    let (assets, sold) = sold_assets(ctx, &sells);
    let reason = format!(
        "liquidate then withdraw: taker sells of {} ({} {}) from {}, then a withdrawal of {} {} \
         at {} to a destination the account never used before",
        assets.iter().copied().collect::<Vec<_>>().join(", "),
        sold.round_dp(2).normalize(),
        orders[sells[0]].market.quote,
        ts(first),
        w.amount.normalize(),
        w.currency,
        ts(w.created_at)
    );
    for i in sells {
        hits[i].push(hit("R7", THEN_WITHDRAW, reason.clone()));
    }
}

/// The assets a set of sells sold, and the quote they brought.
fn sold_assets<'a>(ctx: &Ctx<'a>, sells: &[usize]) -> (BTreeSet<&'a str>, Decimal) {
    let orders = &ctx.input.orders;
    let assets = sells
        .iter()
        .map(|&i| orders[i].market.base.as_str())
        .collect();
    let sold = sells
        .iter()
        .map(|&i| ctx.funds(i).unwrap_or_default())
        .sum();
    (assets, sold)
}

/// Losing round trips per market among `orders`: consecutive executed orders on opposite
/// sides, the second within `chain_gap_minutes` of the first, losing more than `contra_loss`
/// ((buy average − sell average) / buy average). Only markets with at least 2 are kept.
pub(super) fn contra_trips<'a>(
    ctx: &Ctx<'a>,
    among: &[usize],
) -> BTreeMap<&'a str, Vec<(usize, usize, f64)>> {
    let orders = &ctx.input.orders;
    let chain_gap = Duration::minutes(ctx.th.chain_gap_minutes.max(1));
    let mut by_market: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in among {
        if ctx.avg[i].is_some() && !ctx.exec_vol(i).is_zero() {
            by_market
                .entry(orders[i].market.as_str())
                .or_default()
                .push(i);
        }
    }
    let mut out = BTreeMap::new();
    for (market, mut list) in by_market {
        list.sort_by_key(|&i| (orders[i].created_at, i));
        let mut losing: Vec<(usize, usize, f64)> = Vec::new();
        for w in list.windows(2) {
            let (a, b) = (w[0], w[1]);
            if orders[a].side == orders[b].side
                || orders[b].created_at - orders[a].created_at > chain_gap
            {
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
        if losing.len() >= 2 {
            out.insert(market, losing);
        }
    }
    out
}

/// R8: repeated losing buy/sell round trips in one market among the candidates, each leg
/// close in time to the other (see [`contra_trips`]).
pub(super) fn rule_r8(ctx: &Ctx<'_>, cands: &[usize], hits: &mut [Vec<RuleHit>]) {
    for (market, losing) in contra_trips(ctx, cands) {
        let mean = losing.iter().map(|l| l.2).sum::<f64>() / losing.len() as f64;
        let reason = format!(
            "contra trading: {} losing buy/sell round trips in {market}, each within {} min, \
             losing {:.1}% each on average (threshold {:.1}%)",
            losing.len(),
            ctx.th.chain_gap_minutes.max(1),
            mean * 100.0,
            ctx.th.contra_loss * 100.0
        );
        let mut marked = BTreeSet::new();
        for (a, b, _) in losing {
            marked.insert(a);
            marked.insert(b);
        }
        for i in marked {
            hits[i].push(hit("R8", PATTERN, reason.clone()));
        }
    }
}
