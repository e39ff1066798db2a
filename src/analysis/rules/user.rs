//! The user-trade model: the account owner's own web and app trades, told apart from both the
//! bot and the thief, so they are never claimed as unauthorized.
//!
//! A person trading by hand sends no identifier (web and app orders carry none), trades at
//! the market's price, in markets the account already trades or holds, in sizes like their
//! own earlier trades, one order at a time. The thief's acts differ in at least one of these:
//! a price far from the reference (R4, R15), a part in a liquidation or contra pattern (R7,
//! R8), a size the account never traded (a near-total sale of a holding during the incident,
//! or a size far beyond the owner's earlier trades), a coin the account never held. A coin
//! new to the account is the owner's only from an owner seen trading coins beyond the bot's by
//! hand, at the market's own price (within [`FAIR`]), in a coin the incident left alone (no
//! order in it far from the reference, in a pattern or a burst). The same order, apart from
//! the incident (for a sale, also half a reference window away from its orders), may exceed
//! the owner's earlier sizes or sell a whole holding: at the market's price, in a coin nobody
//! pumped, it moves no value to a counterparty. An order that matches the model is kept at
//! `review` at most, with the reasons in words ([`UserProfile::explain`]).
//!
//! The owner's earlier trades are the candidate orders without an identifier placed at least
//! one reference window before the incident (the first order priced far from the reference
//! or part of a pattern) at fair prices; without a bot log, the history before the
//! suspicious window's orders without an identifier, when the bot sends one with almost
//! every order.
//!
//! The same file also holds the bot's counterpart, used where no log judges an order: an
//! order carrying an identifier that fits the bot's learned pattern, in the bot's markets,
//! at a fair price and a size within the bot's range looks like the bot's own.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::super::model::RuleHit;
use super::profile::Profile;
use super::{f, Ctx};
use crate::exchange::Side;

/// A sale of at least this share of a holding is a liquidation, not a usual trade.
const NEAR_TOTAL: f64 = 0.9;

/// The owner's trades are "usual" up to this multiple of the largest earlier one.
const USER_SIZE_SLACK: f64 = 2.0;

/// An order by hand fills at most this far from its reference price to stand apart from the
/// incident: a market order pays the spread and some depth, not a pump's premium (R4 starts
/// at 20%).
const FAIR: f64 = 0.03;

/// Hits that rule the user-trade (and the bot) model out: a price far from the reference,
/// a pattern, an identifier the bot would not send.
const NOT_BY_HAND: [&str; 5] = ["R2", "R4", "R7", "R8", "R15"];

/// Hits that place an order in the incident an order by hand must stand apart from: those of
/// [`NOT_BY_HAND`] and a burst (R6: nobody trading by hand places orders that fast).
const INCIDENT: [&str; 6] = ["R2", "R4", "R6", "R7", "R8", "R15"];

fn has_any(h: &[RuleHit], rules: &[&str]) -> bool {
    h.iter().any(|x| rules.contains(&x.rule.as_str()))
}

/// What the owner's own earlier trades look like.
pub(super) struct UserProfile<'a> {
    /// Base assets of the markets the owner traded by hand.
    bases: BTreeSet<&'a str>,
    /// The largest notional among them.
    largest: Option<Decimal>,
    trades: usize,
    /// Markets of those trades that the bot does not trade: the owner trades beyond the bot
    /// by hand.
    beyond_bot: BTreeSet<&'a str>,
    /// Coins (base assets) of the candidates far from the reference, in a pattern or in a
    /// burst: the incident's, whatever the quote currency of the market.
    incident_bases: BTreeSet<&'a str>,
    /// When those candidates were placed, in order.
    incident_times: Vec<DateTime<Utc>>,
    /// One reference window before the first order priced far from the reference or part of
    /// a pattern.
    incident_start: Option<DateTime<Utc>>,
}

/// Learns the owner's earlier hand trades (see the module documentation).
pub(super) fn user_profile<'a>(
    ctx: &Ctx<'a>,
    prof: &Profile<'a>,
    cands: &[usize],
    hits: &[Vec<RuleHit>],
) -> UserProfile<'a> {
    let orders = &ctx.input.orders;
    let window = Duration::minutes(ctx.th.reference_window_minutes.max(0));
    let incident_start = cands
        .iter()
        .filter(|&&i| has_any(&hits[i], &NOT_BY_HAND))
        .map(|&i| orders[i].created_at)
        .min()
        .map(|t| t - window);
    let no_id = |i: usize| {
        orders[i]
            .client_id
            .as_deref()
            .map_or(true, |c| c.is_empty())
    };
    let mut past: Vec<usize> = cands
        .iter()
        .copied()
        .filter(|&i| {
            no_id(i)
                && !has_any(&hits[i], &NOT_BY_HAND)
                && incident_start.map_or(true, |s| orders[i].created_at < s)
        })
        .collect();
    // The bot's markets: the profile's with a log; without one the baseline holds the owner's
    // orders too, and the bot's are those of its orders with an identifier.
    let mut bot_markets: BTreeSet<&str> = BTreeSet::new();
    if ctx.had_log {
        bot_markets.clone_from(&prof.markets);
    } else {
        // Without a log the earlier history is the baseline: its orders without an
        // identifier are the owner's only when the rest (the bot's) almost always carry one.
        let base: Vec<usize> = (0..orders.len()).filter(|&i| ctx.baseline[i]).collect();
        let with_id = base.iter().filter(|&&i| !no_id(i)).count();
        bot_markets.extend(
            base.iter()
                .filter(|&&i| !no_id(i))
                .map(|&i| orders[i].market.as_str()),
        );
        if base.len() >= 20 && with_id as f64 >= 0.95 * base.len() as f64 {
            past.extend(
                base.iter()
                    .copied()
                    .filter(|&i| no_id(i) && !ctx.candidate[i]),
            );
        }
    }
    let mut bases = BTreeSet::new();
    let mut beyond_bot = BTreeSet::new();
    let mut largest: Option<Decimal> = None;
    for &i in &past {
        bases.insert(orders[i].market.base.as_str());
        let market = orders[i].market.as_str();
        if !bot_markets.contains(market) {
            beyond_bot.insert(market);
        }
        if let Some(fu) = ctx.funds(i) {
            largest = Some(largest.map_or(fu, |l| l.max(fu)));
        }
    }
    let incident: Vec<usize> = cands
        .iter()
        .copied()
        .filter(|&i| has_any(&hits[i], &INCIDENT))
        .collect();
    let incident_bases = incident
        .iter()
        .map(|&i| orders[i].market.base.as_str())
        .collect();
    let mut incident_times: Vec<DateTime<Utc>> =
        incident.iter().map(|&i| orders[i].created_at).collect();
    incident_times.sort_unstable();
    UserProfile {
        bases,
        largest,
        trades: past.len(),
        beyond_bot,
        incident_bases,
        incident_times,
        incident_start,
    }
}

impl UserProfile<'_> {
    /// Whether candidate `i` stands apart from an incident (there is one): filled within
    /// [`FAIR`] of a known reference, in a coin no order of the incident (far from the
    /// reference, in a pattern or a burst) traded, and, for a sale (what funds a thief's
    /// buys), more than half a reference window (at least R7's chain gap) away from every
    /// such order: a thief who pauses a few minutes between the liquidation and the pump
    /// breaks R7's chain, not this. An order like that moves no value to a counterparty,
    /// whatever its size or coin.
    fn apart(&self, ctx: &Ctx<'_>, i: usize) -> bool {
        self.apart_or_none(ctx, i).is_some()
    }

    fn apart_or_none(&self, ctx: &Ctx<'_>, i: usize) -> Option<()> {
        let o = &ctx.input.orders[i];
        // Without an incident there is nothing to stand apart from: a lone near-total sale or
        // outsized order is then the only suspicious act, and stays the thief's.
        if self.incident_times.is_empty() || self.incident_bases.contains(o.market.base.as_str()) {
            return None;
        }
        let (r, a) = (ctx.reference(i)?, ctx.avg[i]?);
        if r.price.is_zero() {
            return None;
        }
        if (f(a) / f(r.price) - 1.0).abs() > FAIR {
            return None;
        }
        if o.side == Side::Sell {
            let gap = Duration::minutes(
                ctx.th
                    .chain_gap_minutes
                    .max(1)
                    .max(ctx.th.reference_window_minutes / 2),
            );
            let at = self.incident_times.partition_point(|t| *t < o.created_at);
            let near = |t: &DateTime<Utc>| (*t - o.created_at).abs() <= gap;
            if self.incident_times[at.saturating_sub(1)..]
                .iter()
                .take(2)
                .any(near)
            {
                return None;
            }
        }
        Some(())
    }

    /// Why candidate `i`, in a coin new to the account, may still be the owner's: an owner
    /// seen trading beyond the bot's markets by hand (one earlier trade is enough: the owner's
    /// hand trades are few, a week's export may hold one), and an order
    /// [`apart`](Self::apart) from the incident (`apart`, as the caller found). `None`
    /// otherwise.
    fn new_coin(&self, ctx: &Ctx<'_>, i: usize, apart: bool) -> Option<String> {
        if self.beyond_bot.is_empty() || !apart {
            return None;
        }
        let seen: Vec<&str> = self.beyond_bot.iter().copied().collect();
        Some(format!(
            "{}, new to the account, while you traded beyond the bot's markets by hand before \
             ({})",
            ctx.input.orders[i].market.base.as_str(),
            seen.join(", ")
        ))
    }

    /// Why candidate `i` looks like the owner's own trade, or `None` when it does not.
    pub(super) fn explain(
        &self,
        ctx: &Ctx<'_>,
        prof: &Profile<'_>,
        i: usize,
        hits: &[RuleHit],
    ) -> Option<String> {
        let o = &ctx.input.orders[i];
        if o.client_id.as_deref().is_some_and(|c| !c.is_empty()) || has_any(hits, &NOT_BY_HAND) {
            return None;
        }
        let apart = self.apart(ctx, i);
        let base = o.market.base.as_str();
        let held = ctx.held_base_before(i);
        let market = if self.bases.contains(base) {
            format!("{base}, which you traded by hand before")
        } else if prof.markets.contains(o.market.as_str()) {
            format!("{}, a market the bot trades", o.market)
        } else if held == Some(true) {
            format!("{base}, which the account held")
        } else {
            self.new_coin(ctx, i, apart)?
        };
        let share = ctx.holding_share(i);
        // A near-total sale is the thief's liquidation during the incident; placed before it
        // (one reference window before its first far-priced or patterned order), at a fair
        // price and in a size like the owner's own, it is the owner closing a position.
        // Apart from the incident (the market's price, a market nobody pumped, away from the
        // incident's orders in time), it is the owner's too, whatever its size.
        let before_incident = self.incident_start.is_some_and(|s| o.created_at < s);
        if o.side == Side::Sell
            && share.is_some_and(|s| s >= NEAR_TOTAL)
            && !before_incident
            && !apart
        {
            return None;
        }
        let beyond = "larger than usual, but at the market's price in a coin the incident did \
                      not touch";
        let fu = ctx.funds(i);
        let size = match (fu, self.largest.filter(|_| self.trades >= 2)) {
            (Some(fu), Some(l)) => {
                let large = f(fu) > USER_SIZE_SLACK * f(l);
                if large && !apart {
                    return None;
                }
                format!(
                    "{} (your earlier hand trades went up to {}{})",
                    fu.round_dp(2).normalize(),
                    l.round_dp(2).normalize(),
                    if large {
                        format!("; {beyond}")
                    } else {
                        String::new()
                    }
                )
            }
            (Some(fu), None) => {
                let large = prof
                    .notional_p99
                    .filter(|p| !p.is_zero())
                    .is_some_and(|p| f(fu) > ctx.th.size_ratio * f(p));
                if large && !apart {
                    return None;
                }
                let note = if large {
                    format!("; {beyond}")
                } else {
                    String::new()
                };
                match share {
                    Some(s) => format!(
                        "{} ({:.0}% of what the account held{note})",
                        fu.round_dp(2).normalize(),
                        s * 100.0
                    ),
                    None if large => format!("{} ({beyond})", fu.round_dp(2).normalize()),
                    None => fu.round_dp(2).normalize().to_string(),
                }
            }
            (None, _) => "no size known".to_string(),
        };
        let price = match (ctx.reference(i), ctx.avg[i]) {
            (Some(r), Some(a)) if !r.price.is_zero() => format!(
                "at {} against a reference of {} ({:+.1}%)",
                a.normalize(),
                r.price.normalize(),
                (f(a) / f(r.price) - 1.0) * 100.0
            ),
            _ => "at no price far from its market's".to_string(),
        };
        let during = match self.incident_start {
            Some(s) if o.created_at >= s => "; placed during the incident",
            _ => "",
        };
        Some(format!(
            "looks like your own web or app trade: no identifier (web and app orders carry \
             none), {price}, in {market}, size {size}, not part of a liquidation or contra \
             pattern{during}. Kept at review, not claimed as unauthorized: confirm it was yours"
        ))
    }
}

/// Without a log to judge it (no log, or after the log's end): an order with an identifier
/// that fits the bot's pattern, in the bot's markets, at a fair price and a size within the
/// bot's range looks like the bot's own, and is not claimed.
pub(super) fn looks_like_the_bot(
    ctx: &Ctx<'_>,
    prof: &Profile<'_>,
    i: usize,
    hits: &[RuleHit],
) -> bool {
    let o = &ctx.input.orders[i];
    if ctx.judged_with_log(i) || has_any(hits, &NOT_BY_HAND) {
        return false;
    }
    let fits = match (&ctx.pattern, o.client_id.as_deref()) {
        (Some(p), Some(c)) if !c.is_empty() => p.fits(c),
        _ => false,
    };
    let size_ok = !hits.iter().any(|h| h.rule == "R11" && h.weight >= 0.5);
    fits && prof.markets.contains(o.market.as_str()) && size_ok
}
