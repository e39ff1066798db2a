//! Attack patterns over several candidate orders: R7 (liquidate then concentrate, liquidate
//! then withdraw) and R8 (contra round trips).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::super::model::RuleHit;
use super::{f, hit, Ctx};
use crate::exchange::Side;
use crate::time::ts;

/// R7: a chain of executed candidate sells across ≥ 2 assets (or one asset, when the bought
/// coin is new to the account's history), each close in time to the next act of the chain
/// (see [`funding_chain`]), then buys of one asset taking ≥ half the proceeds. Marks the sells
/// of the chain and every candidate order of the episode in the bought market.
pub(super) fn rule_r7(ctx: &Ctx<'_>, cands: &[usize], hits: &mut [Vec<RuleHit>]) {
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
    // Target market → when its concentration began, and why: later episodes that keep
    // buying it continue the same concentration (see `continue_concentration`).
    let mut concentrated: BTreeMap<&str, (DateTime<Utc>, String)> = BTreeMap::new();
    for ep in &episodes {
        let mut buys: BTreeMap<&str, Decimal> = BTreeMap::new();
        for &i in ep {
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
        let target_buys = ep
            .iter()
            .filter(|&&i| orders[i].market.as_str() == target && orders[i].side == Side::Buy)
            .map(|&i| orders[i].created_at);
        let (Some(first_buy), Some(last_buy)) = (target_buys.clone().min(), target_buys.max())
        else {
            continue;
        };
        let sells = funding_chain(ctx, ep, target, first_buy, last_buy);
        let (assets, sold) = sold_assets(ctx, &sells);
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
        for &i in ep {
            let o = &orders[i];
            // The sells that paid for it, and every order of the episode in the target market:
            // the buys concentrate, and the attacker's sells there churn the same coin.
            let already = hits[i].iter().any(|h| h.rule == "R7");
            if !already && (sells.contains(&i) || o.market.as_str() == target) {
                hits[i].push(hit("R7", 0.6, reason.clone()));
            }
        }
        concentrated.entry(target).or_insert((first_buy, reason));
    }
    continue_concentration(ctx, &episodes, &concentrated, hits);
}

/// The sells that funded buys of `target` from `first_buy` to `last_buy`: executed sells in
/// other markets, walking back from the first buy while each is at most `chain_gap_minutes`
/// before the next act of the chain (a scripted liquidation sells one holding after another
/// within seconds and buys at once), plus those placed among the buys. A sell that never
/// filled funded nothing, a sell placed after the last buy funded nothing, and a sell long
/// before the chain (the user's own trade an hour earlier, in the same reference window) is
/// another story.
fn funding_chain(
    ctx: &Ctx<'_>,
    ep: &[usize],
    target: &str,
    first_buy: DateTime<Utc>,
    last_buy: DateTime<Utc>,
) -> Vec<usize> {
    let orders = &ctx.input.orders;
    let chain_gap = Duration::minutes(ctx.th.chain_gap_minutes.max(1));
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
    let mut chain = Vec::new();
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
    chain
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
                    0.6,
                    format!(
                        "continues the concentration into {target} that began at {}: {why}",
                        ts(*began)
                    ),
                ));
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
    let (assets, sold) = sold_assets(ctx, &sells);
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

/// R8: repeated losing buy/sell round trips in one market among the candidates.
pub(super) fn rule_r8(ctx: &Ctx<'_>, cands: &[usize], hits: &mut [Vec<RuleHit>]) {
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
