//! The Coinbase façade: Coinbase Advanced Trade's REST API (`/api/v3/brokerage/…`) for spot,
//! plus the parts of the Coinbase App API (`/v2/…`) that clients use for currencies,
//! balances and transfers, over the venue.
//!
//! [`routes`] (the dispatcher: endpoint table, parameters, JWT authentication, per-user and
//! per-IP limits, the request log), [`auth`] (CDP keys: `Authorization: Bearer <JWT>` signed
//! ES256 or EdDSA, verified with the public key only; separate from the client's signer on
//! purpose: the mock is the oracle the client is tested against), [`market`] (products,
//! candles, ticker, best bid and ask, time), [`trade`] (orders, batch cancel, order history
//! and fills with cursors), [`wallet`] (accounts, key permissions, the App API's accounts and
//! transactions, currencies), [`wire`] (time formats, ids, cursors), [`errors`] (the
//! `{"error", "message"}` bodies, the App API's `{"errors": […]}`, the plain-text 401),
//! [`limits`] (30 requests/s per user on private endpoints, 10/s per IP on public ones, with
//! `x-ratelimit-*` headers, then 429).
//!
//! Markets are `BTC-USD`, quoted in US dollars (a scenario written in won is translated at
//! 1,400 KRW per dollar, as for Binance and Bybit). Prices keep six significant digits (at
//! most eight decimals), sizes step by 0.00000001, the minimum order value is 1 USD.
//!
//! Keys are CDP keys: the key name `organizations/{org}/apiKeys/{id}` is the access key, the
//! secret is a P-256 private key in SEC1 PEM (a scenario key of the default kind), or an
//! Ed25519 key (`key_type: ed25519`). Scopes: `view` (read), `trade`, `transfer` (which on
//! Coinbase covers sending funds off the exchange: it grants both the neutral `withdraw` and
//! `transfer` classes). Keys are deleted in the CDP portal only: the drill API's revoke is
//! that deletion.

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
use crate::mock::venue::translate;
use crate::mock::venue::{KeyFormat, Venue};
use crate::mock::Facade;

/// Coinbase's key permissions as the mock names them (the CDP portal's View, Trade and
/// Transfer boxes), with the class each grants. `transfer` is listed twice: a key holding it
/// may withdraw and move funds, and a scenario key asking for either gets it.
pub const SCOPES: &[(&str, Permission)] = &[
    ("view", Permission::Read),
    ("trade", Permission::Trade),
    ("transfer", Permission::Withdraw),
    ("transfer", Permission::Transfer),
];

/// Quote currencies a product id may end with (the venue lists USD markets; the others let
/// a product of another quote parse, so it is refused as unknown rather than malformed).
const QUOTES: &[&str] = &["USD", "USDC", "USDT", "EUR", "GBP", "BTC", "ETH"];

/// The minimum order value (`quote_min_size`), in USD.
pub const MIN_ORDER_VALUE: i64 = 1;

/// The Coinbase façade (USD spot markets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Coinbase;

/// The façade as the façade lookup hands it out.
pub fn hook() -> Arc<dyn Facade> {
    Arc::new(Coinbase)
}

/// A CDP key name: `organizations/{uuid}/apiKeys/{uuid}`, both drawn from `rng`.
fn key_name(rng: &mut dyn rand::RngCore) -> String {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut a);
    rng.fill_bytes(&mut b);
    let org = uuid::Builder::from_random_bytes(a).into_uuid();
    let id = uuid::Builder::from_random_bytes(b).into_uuid();
    format!("organizations/{org}/apiKeys/{id}")
}

impl Facade for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    fn quote_currency(&self) -> &'static str {
        "USD"
    }

    fn quote_rate(&self, scenario_quote: &str) -> Option<Decimal> {
        translate::usd_quote_rate(scenario_quote)
    }

    fn symbol(&self, base: &str, quote: &str) -> String {
        format!("{base}-{quote}")
    }

    fn parse_symbol(&self, symbol: &str) -> Option<(String, String)> {
        let (base, quote) = symbol.split_once('-')?;
        (!base.is_empty()
            && base.chars().all(|c| c.is_ascii_alphanumeric())
            && QUOTES.contains(&quote))
        .then(|| (base.to_string(), quote.to_string()))
    }

    fn price_rules(&self) -> PriceRules {
        PriceRules {
            tick: TickRule::Significant {
                digits: 6,
                max_dp: 8,
            },
            volume_dp: 8,
            quote_dp: 2,
            min_notional: Decimal::from(MIN_ORDER_VALUE),
        }
    }

    fn key_format(&self) -> KeyFormat {
        // The key name is built by `key_name`; the lengths matter for HMAC keys only,
        // which Coinbase's CDP does not issue.
        KeyFormat {
            access_len: 36,
            secret_len: 64,
            passphrase_len: None,
        }
    }

    fn scopes(&self) -> &'static [(&'static str, Permission)] {
        SCOPES
    }

    fn key_types(&self) -> &'static [KeyType] {
        &[KeyType::Es256, KeyType::Ed25519]
    }

    fn key_name(&self) -> Option<fn(&mut dyn rand::RngCore) -> String> {
        Some(key_name)
    }

    fn order_budget(&self) -> Option<Budget> {
        Some(limits::PRIVATE)
    }

    fn block_policy(&self) -> Option<BlockPolicy> {
        None
    }

    fn router(&self, venue: Arc<Venue>) -> axum::Router {
        routes::router(venue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn products_are_base_dash_quote_and_keys_are_named_like_cdp_keys() {
        assert_eq!(Coinbase.symbol("BTC", "USD"), "BTC-USD");
        assert_eq!(
            Coinbase.parse_symbol("BTC-USD"),
            Some(("BTC".into(), "USD".into()))
        );
        assert_eq!(Coinbase.parse_symbol("BTCUSD"), None);
        assert_eq!(Coinbase.parse_symbol("-USD"), None);
        assert_eq!(Coinbase.parse_symbol("BTC-XYZ"), None);
        assert_eq!(Coinbase.quote_rate("KRW"), Some(Decimal::from(1400)));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let name = key_name(&mut rng);
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(parts.len(), 4, "{name}");
        assert_eq!((parts[0], parts[2]), ("organizations", "apiKeys"));
        assert!(uuid::Uuid::parse_str(parts[1]).is_ok());
        assert!(uuid::Uuid::parse_str(parts[3]).is_ok());
    }
}
