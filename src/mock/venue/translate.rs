//! From a scenario's neutral terms to a façade's: prices and amounts converted from the
//! scenario's quote currency into the façade's by its rate and rounded by its price rules, the
//! quote balance renamed, defaults that depend on the façade's minimum order value resolved,
//! native scope names checked, and the markets named by the façade's symbols.
//!
//! A scenario already written in the façade's quote is taken as is (no rounding), so the
//! built-in scenarios give the same history, bot log and ground truth as before translation
//! existed.

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::mock::venue::keys::KeyType;
use crate::mock::venue::matching::{Depth, MarketConf};
use crate::mock::venue::rules::PriceRules;
use crate::mock::venue::scenario::{Scenario, ScenarioError};
use crate::mock::venue::state::Market;
use crate::mock::Facade;

/// KRW per US dollar (and dollar stablecoins), for scenarios written in won on a façade
/// quoted in dollars.
pub const KRW_PER_USD: i64 = 1400;

/// Units of `scenario_quote` per dollar for a façade quoted in a dollar stablecoin: 1 for
/// dollars and stablecoins, [`KRW_PER_USD`] for won, None for anything else.
pub fn usd_quote_rate(scenario_quote: &str) -> Option<Decimal> {
    match scenario_quote {
        "USDT" | "USD" | "USDC" => Some(Decimal::ONE),
        "KRW" => Some(Decimal::from(KRW_PER_USD)),
        _ => None,
    }
}

/// (base, quote) of a `BASEQUOTE` symbol ending with one of `quotes` (tried in order), the
/// base letters and digits only.
pub fn split_quote_suffix(symbol: &str, quotes: &[&str]) -> Option<(String, String)> {
    quotes.iter().find_map(|q| {
        let base = symbol.strip_suffix(q)?;
        (!base.is_empty() && base.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| (base.to_string(), q.to_string()))
    })
}

/// Default value of a liquidity level, in minimum order values.
const LEVEL_MIN_ORDERS: i64 = 4000;
/// Default size of a live attacker's order, in minimum order values.
const LIVE_MIN_ORDERS: i64 = 4;

/// Converts scenario amounts into the façade's quote.
struct Terms {
    /// Scenario units per façade quote unit; None when the scenario is in the façade's quote.
    rate: Option<Decimal>,
    rules: PriceRules,
}

impl Terms {
    fn price(&self, p: Decimal) -> Decimal {
        match self.rate {
            None => p,
            Some(r) => self.rules.round_price(p / r),
        }
    }
    fn amount(&self, a: Decimal) -> Decimal {
        match self.rate {
            None => a,
            Some(r) => self.rules.round_quote(a / r),
        }
    }
}

/// The scenario in `facade`'s quote currency, with its native scopes checked.
pub fn translate(sc: &Scenario, facade: &dyn Facade) -> Result<Scenario, ScenarioError> {
    if sc.attack.as_ref().is_some_and(|a| a.open_oco > 0) && !facade.order_lists() {
        return Err(sc.error_at(
            "open_oco",
            format!(
                "attack.open_oco places one-cancels-the-other order lists, which the {} mock does not serve: remove it for this exchange, or run the scenario on a mock that serves order lists",
                facade.name()
            ),
        ));
    }
    let to = facade.quote_currency();
    let rules = facade.price_rules();
    let rate = if sc.quote == to {
        None
    } else {
        match facade.quote_rate(&sc.quote) {
            Some(r) if r > Decimal::ZERO => Some(r),
            _ => {
                return Err(sc.error_at(
                    &sc.quote,
                    format!(
                        "the {} mock quotes in {to} and has no rate from {}; write the scenario \
                         in {to}",
                        facade.name(),
                        sc.quote
                    ),
                ))
            }
        }
    };
    let known = facade.scopes();
    for k in &sc.keys {
        for s in &k.scopes {
            if !known.iter().any(|(n, _)| n == s) {
                let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                return Err(sc.error_at(
                    s,
                    format!(
                        "unknown scope `{s}` for {}; known: {} (or use `permissions:` with \
                         read, trade, withdraw, transfer, deposit)",
                        facade.name(),
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    // A key of the default kind (hmac) on a façade whose exchange issues none becomes the
    // exchange's first kind.
    let issued = facade.key_types();
    let native = |t: KeyType| match (t, issued.first()) {
        (KeyType::Hmac, Some(first)) if !issued.contains(&KeyType::Hmac) => *first,
        _ => t,
    };
    for k in &sc.keys {
        if !issued.contains(&native(k.key_type)) {
            return Err(sc.error_at(
                &k.label,
                format!(
                    "key `{}`: the {} mock issues no {} keys",
                    k.label,
                    facade.name(),
                    k.key_type.as_str()
                ),
            ));
        }
    }
    let t = Terms { rate, rules };
    let min = rules.min_notional;
    let mut out = sc.clone();
    out.quote = to.to_string();
    for k in &mut out.keys {
        k.key_type = native(k.key_type);
    }
    for m in &mut out.markets {
        m.price = t.price(m.price);
        m.depth.level_quote = Some(match m.depth.level_quote {
            Some(v) => t.amount(v),
            None => min * Decimal::from(LEVEL_MIN_ORDERS),
        });
    }
    for a in &mut out.accounts {
        let mut balances = BTreeMap::new();
        for (cur, amt) in &a.balances {
            let (cur, amt) = if *cur == sc.quote {
                (to.to_string(), t.amount(*amt))
            } else {
                (cur.clone(), *amt)
            };
            *balances.entry(cur).or_insert(Decimal::ZERO) += amt;
        }
        a.balances = balances;
    }
    if let Some(b) = &mut out.bot {
        b.order_quote = b.order_quote.map(|v| t.amount(v));
    }
    if let Some(m) = &mut out.manual {
        m.order_quote = m.order_quote.map(|v| t.amount(v));
        for x in &mut m.incident {
            x.quote = t.amount(x.quote);
        }
    }
    if let Some(a) = &mut out.attack {
        if let Some(c) = &mut a.contra {
            c.size_quote = t.amount(c.size_quote);
        }
        a.order_quote = a.order_quote.map(|q| q.map(|v| t.amount(v)));
        a.live.order_quote = Some(match a.live.order_quote {
            Some(v) => t.amount(v),
            None => min * Decimal::from(LIVE_MIN_ORDERS),
        });
    }
    Ok(out)
}

/// The venue's markets for a translated scenario, named by the façade's symbols.
pub fn markets(sc: &Scenario, facade: &dyn Facade) -> Vec<MarketConf> {
    sc.markets
        .iter()
        .map(|m| MarketConf {
            market: Arc::new(Market {
                symbol: facade.symbol(&m.base, &sc.quote),
                base: m.base.clone(),
                quote: sc.quote.clone(),
            }),
            name: m.name.clone(),
            local_names: m.names.clone(),
            price: m.price,
            volatility: m.volatility,
            depth: Depth {
                levels: m.depth.levels,
                step_pct: m.depth.step_pct,
                level_value: m.depth.level_quote.unwrap_or_default(),
            },
        })
        .collect()
}
