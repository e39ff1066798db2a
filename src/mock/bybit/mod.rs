//! The Bybit façade: Bybit's v5 REST API for spot on a unified trading account, over the
//! venue, with the endpoints an incident needs, including a key deleting or weakening
//! itself.
//!
//! [`routes`] (the dispatcher: endpoint table, JSON bodies, IP and per-UID limits, signing,
//! the request log), [`auth`] (`X-BAPI-*` headers, hex HMAC-SHA256 over timestamp + key +
//! recv window + query or body; separate from the client's signer on purpose: the mock is the
//! oracle the client is tested against), [`market`] (instruments, tickers, klines, order
//! book), [`trade`] (orders, conditional orders, cancels, order history and fills in 7-day
//! windows), [`wallet`] (balance, coins, withdrawals and deposits, withdrawal cancel, the
//! address book, `query-api`, `update-api`, `delete-api`), [`wire`] (JSON shapes, ids,
//! cursors), [`errors`] (the `retCode` envelope), [`limits`] (600 per 5 s per IP, then
//! 403 and a ten-minute ban; per-UID budgets per endpoint with `X-Bapi-Limit*` headers and
//! 10006).
//!
//! Markets are `BTCUSDT`, quoted in USDT (a scenario written in won is translated at 1,400
//! KRW per dollar, as for Binance). A price of 1 or more keeps six significant digits, a
//! smaller one six decimals: the `tickSize` a market publishes is the one at its reference
//! price.
//! Quantities step by 0.000001; the minimum order value is 5 USDT. Keys are 18 characters,
//! secrets 36 (HMAC keys only).
//!
//! Permissions: `SpotTrade` grants trading, `AccountTransfer` and `SubMemberTransfer` grant
//! the neutral `transfer` class, `Withdraw` grants `withdraw`. Every Bybit key reads. A key
//! holding `transfer` or `withdraw` may delete itself (`POST /v5/user/delete-api`).

pub mod auth;
pub mod errors;
pub mod limits;
pub mod market;
pub mod routes;
pub mod trade;
pub mod wallet;
pub mod wire;

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::mock::venue::keys::Permission;
use crate::mock::venue::ratelimit::{BlockPolicy, Budget};
use crate::mock::venue::rules::{PriceRules, TickRule};
use crate::mock::venue::state::World;
use crate::mock::venue::{KeyFormat, Venue};
use crate::mock::Facade;

/// Bybit's key permissions the mock knows (as `query-api` lists them, without their
/// family), with the class each grants.
pub const SCOPES: &[(&str, Permission)] = &[
    ("SpotTrade", Permission::Trade),
    ("AccountTransfer", Permission::Transfer),
    ("SubMemberTransfer", Permission::Transfer),
    ("Withdraw", Permission::Withdraw),
];

/// KRW per US dollar (and dollar stablecoins), for scenarios written in won.
const KRW_PER_USD: i64 = 1400;

/// Quote coins a symbol may end with (the venue lists USDT markets; the others let a symbol
/// of another quote parse, so it is refused as unknown rather than as malformed).
const QUOTES: &[&str] = &["USDT", "USDC", "USDE", "BTC", "ETH", "EUR", "BRL", "TRY"];

/// The minimum order value (`minOrderAmt`), in USDT.
pub const MIN_ORDER_AMT: i64 = 5;

/// The Bybit façade (USDT spot markets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bybit;

impl Facade for Bybit {
    fn name(&self) -> &'static str {
        "bybit"
    }

    fn quote_currency(&self) -> &'static str {
        "USDT"
    }

    fn quote_rate(&self, scenario_quote: &str) -> Option<Decimal> {
        match scenario_quote {
            "USDT" | "USD" | "USDC" => Some(Decimal::ONE),
            "KRW" => Some(Decimal::from(KRW_PER_USD)),
            _ => None,
        }
    }

    fn symbol(&self, base: &str, quote: &str) -> String {
        format!("{base}{quote}")
    }

    fn parse_symbol(&self, symbol: &str) -> Option<(String, String)> {
        QUOTES.iter().find_map(|q| {
            let base = symbol.strip_suffix(q)?;
            (!base.is_empty() && base.chars().all(|c| c.is_ascii_alphanumeric()))
                .then(|| (base.to_string(), q.to_string()))
        })
    }

    fn price_rules(&self) -> PriceRules {
        PriceRules {
            tick: TickRule::Significant {
                digits: 6,
                max_dp: 8,
            },
            volume_dp: 6,
            quote_dp: 2,
            min_notional: Decimal::from(MIN_ORDER_AMT),
        }
    }

    fn key_format(&self) -> KeyFormat {
        KeyFormat {
            access_len: 18,
            secret_len: 36,
            passphrase_len: None,
        }
    }

    fn scopes(&self) -> &'static [(&'static str, Permission)] {
        SCOPES
    }

    fn order_budget(&self) -> Option<Budget> {
        Some(limits::ORDER_CREATE)
    }

    fn block_policy(&self) -> Option<BlockPolicy> {
        None
    }

    fn router(&self, venue: Arc<Venue>) -> axum::Router {
        routes::router(venue)
    }

    /// `orderId`: [`wire::ORDER_ID_BASE`] plus the order's position in the venue.
    fn public_order_id(&self, world: &World, uuid: &uuid::Uuid) -> String {
        match world.position(uuid) {
            Some(i) => wire::order_id(i),
            None => uuid.to_string(),
        }
    }

    /// `withdrawId`: [`wire::WITHDRAW_ID_BASE`] plus the withdrawal's position.
    fn public_withdrawal_id(&self, world: &World, uuid: &uuid::Uuid) -> String {
        match world.withdrawals.iter().position(|w| w.uuid == *uuid) {
            Some(i) => wire::withdraw_id(i),
            None => uuid.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_base_then_quote_and_prices_keep_six_digits_or_decimals() {
        assert_eq!(Bybit.symbol("BTC", "USDT"), "BTCUSDT");
        assert_eq!(
            Bybit.parse_symbol("BTCUSDT"),
            Some(("BTC".into(), "USDT".into()))
        );
        assert_eq!(Bybit.parse_symbol("USDT"), None);
        assert_eq!(Bybit.parse_symbol("BTC-USDT"), None);
        let rules = Bybit.price_rules();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(rules.round_price(d("96428.5714")), d("96428.6"));
        assert_eq!(rules.tick_at(d("96428.6")), d("0.1"));
        assert_eq!(rules.round_price(d("0.026428571")), d("0.026429"));
        assert_eq!(rules.tick_at(d("0.026429")), d("0.000001"));
        assert_eq!(Bybit.quote_rate("KRW"), Some(Decimal::from(1400)));
    }
}
