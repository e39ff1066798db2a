//! How the reports write numbers and labels: money in a currency's own minor units, unit
//! prices, rule lists, confidence and match names, and the figures derived per order and per
//! fill. The CSVs and JSON keep exact values; these are for the readable reports.
//!
//! Which currencies have no minor unit is the exchange's to say
//! ([`crate::exchange::Descriptor::quote_minor_units`]): a [`Money`] is built for the run's
//! exchange and formats every amount of the report.

use rust_decimal::Decimal;

use crate::analysis::{Confidence, MatchKind, RuleHit};
use crate::exchange::{Order, Side};

/// A decimal cell: empty when unknown.
pub fn dec(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// A computed money figure, rounded for reading.
pub fn money(d: Decimal) -> String {
    d.round_dp(8).normalize().to_string()
}

/// `1234567.5` → `1,234,567.5` (the sign and the decimals are kept).
fn group_thousands(s: &str) -> String {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", s),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(s.len() + int.len() / 3);
    out.push_str(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// Money formatting for one exchange's currencies.
#[derive(Clone, Copy)]
pub struct Money {
    /// Minor units of a currency, `None` when unknown.
    minor_units: fn(&str) -> Option<u32>,
}

impl std::fmt::Debug for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Money").finish_non_exhaustive()
    }
}

impl Money {
    /// With the minor units `minor_units` gives.
    pub fn new(minor_units: fn(&str) -> Option<u32>) -> Self {
        Money { minor_units }
    }

    /// For the exchange registered as `exchange`; every currency unknown for any other.
    pub fn of(exchange: &str) -> Self {
        match crate::exchange::registry::get(exchange) {
            Some(d) => Money::new(d.quote_minor_units),
            None => Money::new(|_| None),
        }
    }

    /// Amounts in `currency` read as whole units.
    pub fn whole_units(&self, currency: &str) -> bool {
        (self.minor_units)(currency.trim()) == Some(0)
    }

    /// An amount of `currency`: in the currency's minor units, with thousands separators
    /// (`15,525,711` for a currency without minor unit, `1,500.10` with two); a currency whose
    /// minor units the exchange does not give (a coin) up to 8 decimals, trailing zeros trimmed.
    pub fn amount(&self, d: Decimal, currency: &str) -> String {
        match (self.minor_units)(currency.trim()) {
            Some(units) => {
                let r = d.round_dp_with_strategy(
                    units,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                );
                let r = if r.is_zero() { Decimal::ZERO } else { r };
                group_thousands(&format!("{:.*}", units as usize, r))
            }
            None => money(d),
        }
    }

    /// An amount followed by its currency (`15,525,711.25 USD`).
    pub fn with_currency(&self, d: Decimal, currency: &str) -> String {
        format!("{} {}", self.amount(d, currency), currency.trim())
    }

    /// A unit price quoted in `currency`: prices of cheap coins have decimals, so a price keeps
    /// up to 8 (trimmed), with thousands separators when the currency's minor units are known;
    /// other quote currencies as [`money`].
    pub fn price(&self, d: Decimal, currency: &str) -> String {
        if (self.minor_units)(currency.trim()).is_some() {
            group_thousands(&money(d))
        } else {
            money(d)
        }
    }

    /// The estimated loss in one line, total first, then its parts (`estimated loss 1,234 USD =
    /// overpayment 1,000 + withdrawn 200 + fees 34`), and what could not be priced.
    pub fn loss_line(&self, loss: &crate::analysis::LossSummary) -> String {
        let q = loss.quote_currency.as_str();
        let mut s = format!(
            "estimated loss {} = overpayment {} + withdrawn {} + fees {}",
            self.with_currency(loss.total, q),
            self.amount(loss.overpayment, q),
            self.amount(loss.withdrawn_value, q),
            self.amount(loss.fees, q)
        );
        if !loss.unpriced.is_empty() {
            s.push_str(&format!(
                " (the priced parts only; not priced: {})",
                loss.unpriced.join("; ")
            ));
        }
        s
    }

    /// A balance cell: whole units where the currency has no minor unit, else exact.
    pub fn balance(&self, d: Option<Decimal>, currency: &str) -> String {
        match d {
            Some(d) if self.whole_units(currency) => self.amount(d, currency),
            d => dec(d),
        }
    }

    /// Rewrites every `<number> <CUR>` of a sentence (the analysis' and the steps'
    /// explanations) for a currency without minor unit as [`Money::amount`] does, so the prose
    /// agrees with the figures above it; anything else is kept.
    pub fn humanize(&self, text: &str) -> String {
        let words: Vec<&str> = text.split(' ').collect();
        let mut out: Vec<String> = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).copied().unwrap_or("");
            let currency = next.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            let plain = w.contains(|c: char| c.is_ascii_digit())
                && w.chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
            let parsed = if plain && self.whole_units(currency) {
                w.parse::<Decimal>().ok()
            } else {
                None
            };
            out.push(match parsed {
                Some(d) => self.amount(d, currency),
                None => (*w).to_string(),
            });
        }
        out.join(" ")
    }
}

pub fn rule_ids(rules: &[RuleHit]) -> String {
    rules
        .iter()
        .map(|r| r.rule.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// A score with two decimals; never `-0.00` (a sum of weights that cancel out is zero).
pub fn score(s: f64) -> String {
    format!("{:.2}", score_value(s))
}

/// The value [`score`] shows with two decimals: rounded to hundredths, and zero for a zero
/// (never `-0`) or a value that is not finite.
pub fn score_value(s: f64) -> f64 {
    let r = (s * 100.0).round() / 100.0;
    if r == 0.0 || !r.is_finite() {
        0.0
    } else {
        r
    }
}

pub fn confidence(c: Confidence) -> &'static str {
    match c {
        Confidence::None => "none",
        Confidence::Review => "review",
        Confidence::High => "high",
    }
}

pub fn match_kind(m: MatchKind) -> &'static str {
    match m {
        MatchKind::OrderId => "order-id",
        MatchKind::Identifier => "identifier",
        MatchKind::Fuzzy => "fuzzy",
        MatchKind::Unmatched => "unmatched",
    }
}

/// Average execution price of an order (executed funds / executed volume), else its limit.
pub fn order_price(o: &Order) -> Option<Decimal> {
    match o.executed_funds {
        Some(f) if !o.executed_volume.is_zero() => Some(f / o.executed_volume),
        _ => o.price,
    }
}

/// A fill's share of its order's fee total, by amount (funds, else volume): what a fill row
/// shows when the exchange reports fees per order only. `None` when there is nothing to share.
pub fn fee_share(
    order_fee: Decimal,
    fill: &crate::exchange::Fill,
    fills: &[&crate::exchange::Fill],
) -> Option<Decimal> {
    if order_fee.is_zero() {
        return Some(Decimal::ZERO);
    }
    let funds: Decimal = fills.iter().map(|f| f.funds).sum();
    let volume: Decimal = fills.iter().map(|f| f.volume).sum();
    let share = if !funds.is_zero() {
        fill.funds / funds
    } else if !volume.is_zero() {
        fill.volume / volume
    } else {
        return None;
    };
    Some((order_fee * share).round_dp(8).normalize())
}

/// Deviation (%) and estimated loss of one fill against a reference price: buys lose
/// (price − reference) × volume, sells (reference − price) × volume.
pub fn fill_loss(
    side: Side,
    price: Decimal,
    volume: Decimal,
    reference: Decimal,
) -> (Decimal, Decimal) {
    let deviation = if reference.is_zero() {
        Decimal::ZERO
    } else {
        ((price - reference) / reference * Decimal::ONE_HUNDRED).round_dp(4)
    };
    let loss = match side {
        Side::Buy => (price - reference) * volume,
        Side::Sell => (reference - price) * volume,
    };
    (deviation.normalize(), loss.round_dp(8).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// A currency without minor unit (`ZMU`) and everything else unknown.
    fn money() -> Money {
        Money::new(|c| c.eq_ignore_ascii_case("ZMU").then_some(0))
    }

    #[test]
    fn whole_unit_amounts_have_separators_and_no_decimals() {
        let m = money();
        assert_eq!(m.amount(d("15525710.50335051"), "ZMU"), "15,525,711");
        assert_eq!(m.amount(d("1412.5"), "ZMU"), "1,413");
        assert_eq!(m.amount(d("-1412.5"), "ZMU"), "-1,413");
        assert_eq!(m.amount(d("-0.4"), "ZMU"), "0", "no negative zero");
        assert_eq!(m.amount(d("999"), "zmu"), "999");
        assert_eq!(m.amount(d("1000"), "ZMU"), "1,000");
        assert_eq!(m.amount(d("123456789012"), "ZMU"), "123,456,789,012");
    }

    #[test]
    fn other_quotes_keep_eight_decimals_trimmed() {
        let m = money();
        assert_eq!(m.amount(d("0.123456789"), "BTC"), "0.12345679");
        assert_eq!(m.amount(d("1500.10000000"), "USDT"), "1500.1");
        assert_eq!(m.amount(d("2"), ""), "2");
    }

    #[test]
    fn whole_unit_prices_keep_their_decimals() {
        let m = money();
        assert_eq!(m.price(d("135320000"), "ZMU"), "135,320,000");
        assert_eq!(m.price(d("141.85"), "ZMU"), "141.85");
        assert_eq!(m.price(d("0.00012345"), "ZMU"), "0.00012345");
        assert_eq!(m.price(d("-1234.5"), "ZMU"), "-1,234.5");
        assert_eq!(m.balance(Some(d("1.5")), "ZMU"), "2");
        assert_eq!(m.balance(Some(d("1.5")), "BTC"), "1.5");
    }

    #[test]
    fn sentences_get_whole_units_and_keep_everything_else() {
        let m = money();
        assert_eq!(
            m.humanize("Overpayment 15525710.50335051 ZMU: the sum of 19 orders at 187.59"),
            "Overpayment 15,525,711 ZMU: the sum of 19 orders at 187.59"
        );
        assert_eq!(
            m.humanize("sells for 25206869.64 ZMU, then 0.5 BTC; -1412.5 ZMU."),
            "sells for 25,206,870 ZMU, then 0.5 BTC; -1,413 ZMU."
        );
        assert_eq!(m.humanize("ZMU 12 ZMUX 1e5 ZMU"), "ZMU 12 ZMUX 1e5 ZMU");
        assert_eq!(m.humanize(""), "");
    }

    #[test]
    fn known_minor_units_round_and_group() {
        let m = Money::new(|c| match c {
            "ZMU" => Some(0),
            "TWO" => Some(2),
            _ => None,
        });
        assert_eq!(m.amount(d("1500.1"), "TWO"), "1,500.10");
        assert_eq!(m.amount(d("-0.004"), "TWO"), "0.00", "no negative zero");
        assert_eq!(m.amount(d("1234567.125"), "TWO"), "1,234,567.13");
        assert_eq!(
            m.with_currency(d("15443567.12504236"), "ZMU"),
            "15,443,567 ZMU"
        );
        assert_eq!(m.price(d("1234.56789"), "TWO"), "1,234.56789");
    }

    #[test]
    fn scores_never_read_negative_zero() {
        assert_eq!(score(-0.0), "0.00");
        assert_eq!(score(-0.001), "0.00");
        assert_eq!(score(2.404), "2.40");
        assert_eq!(score(-0.5), "-0.50");
    }

    #[test]
    fn the_loss_line_states_the_total_first_with_its_parts() {
        let m = money();
        let loss = crate::analysis::LossSummary {
            quote_currency: "ZMU".into(),
            total: d("15443567.4"),
            overpayment: d("15430000.2"),
            withdrawn_value: d("0"),
            fees: d("13567.2"),
            ..Default::default()
        };
        assert_eq!(
            m.loss_line(&loss),
            "estimated loss 15,443,567 ZMU = overpayment 15,430,000 + withdrawn 0 + fees 13,567"
        );
        let partial = crate::analysis::LossSummary {
            unpriced: vec!["flagged withdrawals of XYZ have no reference price".into()],
            ..loss
        };
        assert!(m
            .loss_line(&partial)
            .ends_with("(the priced parts only; not priced: flagged withdrawals of XYZ have no reference price)"));
    }

    #[test]
    fn an_unknown_exchange_formats_every_currency_exactly() {
        let m = Money::of("no-such-exchange");
        assert_eq!(m.amount(d("1412.5"), "ZMU"), "1412.5");
    }
}
