//! The Upbit façade: Upbit's REST API over the venue.
//!
//! [`routes`] (the exchange API: dispatcher, accounts, orders, withdrawals, deposits),
//! [`quotation`] (public market data), [`auth`] (JWT with HS256/HS512, query hash, nonce
//! replay; separate from the client's signer on purpose), [`wire`] (Upbit's JSON shapes, KST
//! timestamps), [`errors`] (error envelope and names), [`limits`] (rate-limit groups and the
//! `Remaining-Req` header). Markets are `KRW-BTC`; prices snap to five significant digits, a
//! stand-in for the KRW tick table; the minimum order total is 5,000 KRW.

pub mod auth;
pub mod errors;
pub mod limits;
pub mod quotation;
pub mod routes;
pub mod wire;

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::mock::venue::keys::Permission;
use crate::mock::venue::ratelimit::{BlockPolicy, Budget};
use crate::mock::venue::rules::{PriceRules, TickRule};
use crate::mock::venue::{KeyFormat, Venue};
use crate::mock::Facade;

/// Upbit's scopes as it names them in the key list, with the class each grants.
pub const SCOPES: &[(&str, Permission)] = &[
    ("view_account", Permission::Read),
    ("view_orders", Permission::Read),
    ("make_orders", Permission::Trade),
    ("view_withdrawals", Permission::Read),
    ("make_withdrawals", Permission::Withdraw),
    ("view_deposits", Permission::Read),
    ("make_deposits", Permission::Deposit),
];

/// KRW per US dollar (and dollar stablecoins), for scenarios written in dollars.
use crate::mock::venue::translate::KRW_PER_USD;

/// The Upbit façade (KRW markets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Upbit;

impl Facade for Upbit {
    fn name(&self) -> &'static str {
        "upbit"
    }

    fn quote_currency(&self) -> &'static str {
        "KRW"
    }

    fn quote_rate(&self, scenario_quote: &str) -> Option<Decimal> {
        match scenario_quote {
            "KRW" => Some(Decimal::ONE),
            "USD" | "USDT" | "USDC" => Some(Decimal::ONE / Decimal::from(KRW_PER_USD)),
            _ => None,
        }
    }

    fn symbol(&self, base: &str, quote: &str) -> String {
        format!("{quote}-{base}")
    }

    fn parse_symbol(&self, symbol: &str) -> Option<(String, String)> {
        let (q, b) = symbol.split_once('-')?;
        (!q.is_empty() && !b.is_empty()).then(|| (b.to_string(), q.to_string()))
    }

    fn price_rules(&self) -> PriceRules {
        PriceRules {
            tick: TickRule::Significant {
                digits: 5,
                max_dp: 4,
            },
            volume_dp: 8,
            quote_dp: 0,
            min_notional: Decimal::from(errors::MIN_TOTAL_KRW),
        }
    }

    fn key_format(&self) -> KeyFormat {
        KeyFormat {
            access_len: 40,
            secret_len: 40,
            passphrase_len: None,
        }
    }

    fn scopes(&self) -> &'static [(&'static str, Permission)] {
        SCOPES
    }

    fn order_budget(&self) -> Option<Budget> {
        Some(limits::ORDER.budget)
    }

    fn block_policy(&self) -> Option<BlockPolicy> {
        Some(limits::BLOCK)
    }

    fn router(&self, venue: Arc<Venue>) -> axum::Router {
        routes::router(venue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_quote_dash_base() {
        assert_eq!(Upbit.symbol("BTC", "KRW"), "KRW-BTC");
        assert_eq!(
            Upbit.parse_symbol("KRW-BTC"),
            Some(("BTC".to_string(), "KRW".to_string()))
        );
        assert_eq!(Upbit.parse_symbol("KRWBTC"), None);
        assert_eq!(Upbit.parse_symbol("-BTC"), None);
    }

    #[test]
    fn dollar_scenarios_translate_at_a_fixed_rate() {
        assert_eq!(Upbit.quote_rate("KRW"), Some(Decimal::ONE));
        let r = Upbit.quote_rate("USDT").unwrap();
        assert_eq!((Decimal::from(100) / r).round(), Decimal::from(140_000));
        assert_eq!(Upbit.quote_rate("JPY"), None);
    }
}
