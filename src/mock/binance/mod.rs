//! The Binance façade: Binance's spot REST API (`/api/v3`) and the wallet and sub-account
//! endpoints (`/sapi/v1`) an incident needs, over the venue.
//!
//! [`routes`] (the dispatcher: endpoint table, parameters, rate limits, signing, the
//! request log), [`auth`] (HMAC-SHA256 hex and Ed25519 base64 signatures over `query + body`,
//! `timestamp`/`recvWindow`; separate from the client's signer on purpose: the mock is the
//! oracle the client is tested against), [`market`] (public market data and
//! `exchangeInfo` with its filters), [`trade`] (account, orders, fills), [`wallet`]
//! (`/sapi`: key permissions, coins, daily snapshots, withdrawals, deposits, the address
//! book, deleting a sub-account's key), [`wire`] (JSON shapes, numeric ids), [`errors`]
//! (`{"code", "msg"}` with Binance's codes and statuses), [`limits`] (request weight per IP,
//! `/sapi` IP and UID weight, order counts, 429 then 418).
//!
//! Markets are `BTCUSDT`, quoted in USDT (a scenario written in won is translated at 1,400 KRW
//! per dollar). Prices keep seven significant digits (at most eight decimals): the tick a
//! market publishes in `PRICE_FILTER` is the one at its reference price. Quantities step by
//! 0.00001; the minimum order value is 5 USDT. The venue charges fees in the quote asset on
//! both sides, so fills report their commission in USDT. Keys are 64 characters; a scenario
//! key may be `key_type: ed25519`, whose secret is an Ed25519 private key (PEM) while the mock
//! keeps the public key.

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

use crate::mock::venue::keys::{KeyType, Permission};
use crate::mock::venue::ratelimit::{BlockPolicy, Budget};
use crate::mock::venue::rules::{PriceRules, TickRule};
use crate::mock::venue::state::World;
use crate::mock::venue::translate;
use crate::mock::venue::{KeyFormat, Venue};
use crate::mock::Facade;

/// Binance's key permissions as `GET /sapi/v1/account/apiRestrictions` names them, with the
/// class each grants (reading is always on for a Binance key; a scenario grants it with
/// `read`).
pub const SCOPES: &[(&str, Permission)] = &[
    ("enableReading", Permission::Read),
    ("enableSpotAndMarginTrading", Permission::Trade),
    ("enableWithdrawals", Permission::Withdraw),
    ("enableInternalTransfer", Permission::Transfer),
    ("permitsUniversalTransfer", Permission::Transfer),
];

/// Quote assets a symbol may end with (the venue lists USDT markets; the others let a symbol
/// of another quote parse, so it is refused as unknown rather than as malformed).
const QUOTES: &[&str] = &[
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY",
];

/// The minimum order value (NOTIONAL filter), in USDT.
pub const MIN_NOTIONAL: i64 = 5;

/// The Binance façade (USDT markets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Binance;

impl Facade for Binance {
    fn name(&self) -> &'static str {
        "binance"
    }

    fn quote_currency(&self) -> &'static str {
        "USDT"
    }

    fn quote_rate(&self, scenario_quote: &str) -> Option<Decimal> {
        translate::usd_quote_rate(scenario_quote)
    }

    fn symbol(&self, base: &str, quote: &str) -> String {
        format!("{base}{quote}")
    }

    fn parse_symbol(&self, symbol: &str) -> Option<(String, String)> {
        translate::split_quote_suffix(symbol, QUOTES)
    }

    fn price_rules(&self) -> PriceRules {
        PriceRules {
            tick: TickRule::Significant {
                digits: 7,
                max_dp: 8,
            },
            volume_dp: 5,
            quote_dp: 2,
            min_notional: Decimal::from(MIN_NOTIONAL),
        }
    }

    fn key_format(&self) -> KeyFormat {
        KeyFormat {
            access_len: 64,
            secret_len: 64,
            passphrase_len: None,
        }
    }

    fn scopes(&self) -> &'static [(&'static str, Permission)] {
        SCOPES
    }

    fn key_types(&self) -> &'static [KeyType] {
        &[KeyType::Hmac, KeyType::Ed25519]
    }

    fn order_budget(&self) -> Option<Budget> {
        Some(limits::ORDERS_10S)
    }

    fn order_lists(&self) -> bool {
        true
    }

    fn block_policy(&self) -> Option<BlockPolicy> {
        Some(limits::BAN)
    }

    fn router(&self, venue: Arc<Venue>) -> axum::Router {
        routes::router(venue)
    }

    /// `orderId`: [`wire::ORDER_ID_BASE`] plus the order's position in the venue.
    fn public_order_id(&self, world: &World, uuid: &uuid::Uuid) -> String {
        match world.position(uuid) {
            Some(i) => wire::order_id(i).to_string(),
            None => uuid.to_string(),
        }
    }

    /// A withdrawal's `id`: the 32 hex digits of its uuid.
    fn public_withdrawal_id(&self, _world: &World, uuid: &uuid::Uuid) -> String {
        uuid.simple().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_base_then_quote() {
        assert_eq!(Binance.symbol("BTC", "USDT"), "BTCUSDT");
        let p = |s: &str| Binance.parse_symbol(s);
        assert_eq!(p("BTCUSDT"), Some(("BTC".into(), "USDT".into())));
        assert_eq!(p("ETHBTC"), Some(("ETH".into(), "BTC".into())));
        assert_eq!(p("USDT"), None);
        assert_eq!(p("BTC-USDT"), None);
        assert_eq!(p("KRW-BTC"), None);
    }

    #[test]
    fn won_scenarios_translate_at_a_fixed_rate_and_prices_keep_seven_digits() {
        let r = Binance.quote_rate("KRW").unwrap();
        assert_eq!(
            Decimal::from(135_000_000) / r,
            "96428.571428571428571428571429".parse::<Decimal>().unwrap()
        );
        let rules = Binance.price_rules();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(rules.round_price(d("96428.5714")), d("96428.57"));
        assert_eq!(rules.tick_at(d("96428.57")), d("0.01"));
        assert_eq!(rules.round_price(d("0.026428571")), d("0.0264286"));
        assert_eq!(rules.tick_at(d("0.0264286")), d("0.0000001"));
        assert_eq!(Binance.quote_rate("JPY"), None);
    }
}
