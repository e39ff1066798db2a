//! Loss estimates: one total claimed, made of the overpayment of the flagged orders against
//! pre-attack reference prices, the value of flagged withdrawals at those prices and the fees
//! the flagged orders paid; what could not be priced is named and left out of the total. The
//! change of the portfolio's value during the response (start and end balances at the same
//! prices) is reported beside it, never in it. Every figure comes with a sentence that says how
//! it was computed, so a support agent can redo the arithmetic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::model::{LossSummary, OrderVerdict, TransferVerdict};
use super::rules::{currency_ref, Ctx};
use crate::exchange::{Balance, Side};

/// Fills `est_loss_quote` of flagged verdicts and returns the totals. `flagged` holds the
/// indexes of the flagged verdicts, in order (the analysis lists them once; a million orders
/// are read only where flagged).
pub(crate) fn loss(
    ctx: &Ctx<'_>,
    verdicts: &mut [OrderVerdict],
    flagged: &[usize],
    transfers: &[TransferVerdict],
    attack_start: Option<DateTime<Utc>>,
) -> LossSummary {
    let input = ctx.input;
    let mut quotes: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in flagged {
        *quotes
            .entry(input.orders[i].market.quote.as_str())
            .or_default() += 1;
    }
    // The quote most flagged orders are in; else the first order's; else the currency the
    // exchange values the balances in; else none is known.
    let quote = quotes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(q, _)| q.to_string())
        .or_else(|| input.orders.first().map(|o| o.market.quote.to_string()))
        .or_else(|| valuation_currency(input))
        .unwrap_or_default();
    let mut explanation = Vec::new();

    // Fees of the flagged orders' fills, for orders whose own fee total is zero.
    let mut fill_fees: HashMap<&str, Decimal> = HashMap::new();
    for &i in flagged {
        let o = &input.orders[i];
        if o.paid_fee.is_zero() {
            fill_fees.insert(o.id.as_str(), Decimal::ZERO);
        }
    }
    if !fill_fees.is_empty() {
        for f in &input.fills {
            if let (Some(sum), Some(fee)) = (fill_fees.get_mut(f.order_id.as_str()), f.fee) {
                *sum += fee;
            }
        }
    }

    // Overpayment and fees.
    let mut total = Decimal::ZERO;
    let mut fees = Decimal::ZERO;
    let (mut counted, mut no_ref, mut other_quote) = (0usize, 0usize, 0usize);
    let mut no_ref_markets: BTreeSet<&str> = BTreeSet::new();
    let mut other_quotes: BTreeSet<&str> = BTreeSet::new();
    for &i in flagged {
        let (o, v) = (&input.orders[i], &mut verdicts[i]);
        if o.market.quote != quote {
            other_quote += 1;
            other_quotes.insert(o.market.quote.as_str());
            continue;
        }
        fees += if o.paid_fee.is_zero() {
            fill_fees.get(o.id.as_str()).copied().unwrap_or_default()
        } else {
            o.paid_fee
        };
        let vol = ctx.exec_vol(i);
        let (Some(r), false) = (v.reference_price, vol.is_zero()) else {
            if !vol.is_zero() {
                no_ref += 1;
                no_ref_markets.insert(o.market.as_str());
            }
            continue;
        };
        let funds = match (ctx.exec_funds(i), ctx.avg[i]) {
            (Some(f), _) => f,
            (None, Some(a)) => a * vol,
            (None, None) => continue,
        };
        let est = match o.side {
            Side::Buy => funds - r * vol,
            Side::Sell => r * vol - funds,
        }
        .round_dp(8)
        .normalize();
        v.est_loss_quote = Some(est);
        total += est;
        counted += 1;
    }
    explanation.push(format!(
        "Overpayment {} {quote}: the sum over {counted} flagged orders of (average fill price − \
         reference price) × executed volume for buys, and (reference − average) × volume for \
         sells; each order's reference is the market's price before the suspicious window (see \
         its reference_price). A negative term means the order got a better price than the reference.",
        total.normalize()
    ));
    let fees = fees.round_dp(8).normalize();
    explanation.push(format!(
        "Fees {fees} {quote}: the trading fees the flagged orders in {quote} paid (their fee \
         totals as the exchange reported them)."
    ));
    let mut unpriced = Vec::new();
    if no_ref > 0 {
        let text = format!(
            "{no_ref} flagged orders with fills in {} have no reference price (no candles and no \
             earlier orders in their market), so their overpayment is not estimated",
            no_ref_markets.into_iter().collect::<Vec<_>>().join(", ")
        );
        explanation.push(format!("{text}."));
        unpriced.push(text);
    }
    if other_quote > 0 {
        let text = format!(
            "{other_quote} flagged orders are quoted in {} rather than {quote}, so their \
             overpayment and fees are not in the {quote} total",
            other_quotes.into_iter().collect::<Vec<_>>().join(", ")
        );
        explanation.push(format!("{text}."));
        unpriced.push(text);
    }

    // Change during the response.
    let anchor = attack_start.or_else(|| input.orders.iter().map(|o| o.created_at).min());
    let before = value(ctx, &input.balances_start, &quote, anchor);
    let after = value(ctx, &input.balances_end, &quote, anchor);
    let change_during_response = match (&before, &after) {
        _ if input.balances_start.is_empty() || input.balances_end.is_empty() => {
            explanation.push(
                "Change during the response not computed: the start or end balances were not \
                 captured."
                    .to_string(),
            );
            None
        }
        (Ok(b), Ok(a)) => {
            let d = (*b - *a).round_dp(8).normalize();
            explanation.push(format!(
                "Change during the response {d} {quote} (not part of the estimated loss): \
                 balances when the response started valued {} {quote} minus balances when it \
                 ended valued {} {quote}, both at the same pre-attack reference prices. The \
                 response starts after the attack, so this covers only its own minutes.",
                b.round_dp(8).normalize(),
                a.round_dp(8).normalize()
            ));
            Some(d)
        }
        (Err(m), _) | (_, Err(m)) => {
            explanation.push(format!(
                "Change during the response not computed: no pre-attack reference price for {}.",
                m.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
            None
        }
    };

    // Withdrawn value.
    let mut withdrawn = Decimal::ZERO;
    let mut missing = BTreeSet::new();
    let mut n = 0;
    for t in transfers.iter().filter(|t| t.flagged) {
        let Some(w) = input.withdrawals.iter().find(|w| w.id == t.transfer_id) else {
            continue;
        };
        let at = Some(anchor.map_or(w.created_at, |a| a.min(w.created_at)));
        match currency_ref(ctx, &w.currency, &quote, at) {
            Some(r) => {
                withdrawn += w.amount * r.price;
                n += 1;
            }
            None => {
                missing.insert(w.currency.clone());
            }
        }
    }
    let withdrawn = withdrawn.round_dp(8).normalize();
    explanation.push(format!(
        "Withdrawn value {withdrawn} {quote}: {n} flagged withdrawals, amount × the currency's \
         reference price before the attack."
    ));
    if !missing.is_empty() {
        let text = format!(
            "flagged withdrawals of {} have no reference price in {quote} and are not valued",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        );
        explanation.push(format!("{}.", capitalized(&text)));
        unpriced.push(text);
    }
    let overpayment = total.normalize();
    let sum = (overpayment + withdrawn + fees).round_dp(8).normalize();
    explanation.insert(
        0,
        format!(
            "Estimated loss {sum} {quote} = overpayment {overpayment} + withdrawn value \
             {withdrawn} + fees {fees}{}.",
            if unpriced.is_empty() {
                String::new()
            } else {
                format!(
                    "; this is the total of the parts that could be priced ({} not priced: {})",
                    unpriced.len(),
                    unpriced.join("; ")
                )
            }
        ),
    );
    LossSummary {
        quote_currency: quote,
        total: sum,
        overpayment,
        withdrawn_value: withdrawn,
        fees,
        unpriced,
        change_during_response,
        explanation,
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The currency most balances are valued in by the exchange (`unit_currency`).
fn valuation_currency(input: &super::model::AnalysisInput) -> Option<String> {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for b in input.balances_start.iter().chain(&input.balances_end) {
        if let Some(u) = b.unit_currency.as_deref().filter(|u| !u.is_empty()) {
            *n.entry(u).or_default() += 1;
        }
    }
    n.into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(u, _)| u.to_string())
}

/// Value of balances at reference prices; the currencies lacking a price on failure.
fn value(
    ctx: &Ctx<'_>,
    balances: &[Balance],
    quote: &str,
    anchor: Option<DateTime<Utc>>,
) -> Result<Decimal, BTreeSet<String>> {
    let mut total = Decimal::ZERO;
    let mut missing = BTreeSet::new();
    for b in balances {
        let amount = b.free + b.locked;
        if amount.is_zero() {
            continue;
        }
        match currency_ref(ctx, &b.currency, quote, anchor) {
            Some(r) => total += amount * r.price,
            None => {
                missing.insert(b.currency.clone());
            }
        }
    }
    if missing.is_empty() {
        Ok(total)
    } else {
        Err(missing)
    }
}
