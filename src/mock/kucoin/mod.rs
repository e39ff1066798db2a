//! The KuCoin façade: KuCoin's spot REST API for a classic account (high-frequency and
//! classic orders, stop orders, fills, balances, withdrawals and deposits, the key's own
//! settings, a master key deleting a sub-account's key), over the venue.
//!
//! [`routes`] (the dispatcher: endpoint table with path ids, JSON bodies, resource pools,
//! signing, the request log), [`auth`] (`KC-API-*` headers: base64 HMAC-SHA256 over
//! timestamp + method + path with query + body, the passphrase HMAC-signed for key version
//! 2 and 3, plain for version 1; separate from the client's signer on purpose: the mock is the
//! oracle the client is tested against), [`market`] (symbols, currencies, tickers, candles),
//! [`trade`] (HF and classic orders, stop orders, cancels, order and fill history),
//! [`wallet`] (accounts, the key's settings, withdrawals and deposits, withdrawal cancel,
//! sub-account key deletion), [`wire`] (JSON shapes and ids), [`errors`] (the
//! `{"code","msg"}` envelope), [`limits`] (resource pools with weights and the
//! `gw-ratelimit-*` headers, 429000 over quota).
//!
//! Markets are `BTC-USDT`, quoted in USDT (a scenario written in won is translated at 1,400
//! KRW per dollar, as for Binance and Bybit). A price of 1 or more keeps six significant
//! digits, a smaller one six decimals: the `priceIncrement` a symbol publishes is the one at
//! its reference price. Sizes step by 0.000001; the minimum order value is 1 USDT
//! (`minFunds`). Keys are 24 characters, secrets 36, passphrases 16 (HMAC keys only).
//!
//! Permissions: `General` grants reading (every KuCoin key has it), `Spot` trading,
//! `InnerTransfer` the neutral `transfer` class, `Withdrawal` withdrawing. A KuCoin key
//! cannot delete itself; a master account's key deletes a sub-account's key
//! (`DELETE /api/v1/sub/api-key`), which is then refused with 400003.
//!
//! Order families: every order the venue holds is a high-frequency order unless it was placed
//! through the classic `POST /api/v1/orders`; each family is listed and cancelled only by its
//! own endpoints, as at KuCoin. Stop orders are held by the façade, never triggered, and lock
//! no funds.

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
use crate::mock::venue::translate;
use crate::mock::venue::{KeyFormat, Venue};
use crate::mock::Facade;

/// KuCoin's key permissions the mock knows (as `GET /api/v1/user/api-key` lists them), with
/// the class each grants.
pub const SCOPES: &[(&str, Permission)] = &[
    ("General", Permission::Read),
    ("Spot", Permission::Trade),
    ("InnerTransfer", Permission::Transfer),
    ("Withdrawal", Permission::Withdraw),
];

/// The minimum order value (`minFunds`), in USDT.
pub const MIN_FUNDS: i64 = 1;

/// The KuCoin façade (USDT spot markets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Kucoin;

impl Facade for Kucoin {
    fn name(&self) -> &'static str {
        "kucoin"
    }

    fn quote_currency(&self) -> &'static str {
        "USDT"
    }

    fn quote_rate(&self, scenario_quote: &str) -> Option<Decimal> {
        translate::usd_quote_rate(scenario_quote)
    }

    fn symbol(&self, base: &str, quote: &str) -> String {
        format!("{base}-{quote}")
    }

    fn parse_symbol(&self, symbol: &str) -> Option<(String, String)> {
        let (b, q) = symbol.split_once('-')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        };
        (ok(b) && ok(q)).then(|| (b.to_string(), q.to_string()))
    }

    fn price_rules(&self) -> PriceRules {
        PriceRules {
            tick: TickRule::Significant {
                digits: 6,
                max_dp: 8,
            },
            volume_dp: 6,
            quote_dp: 2,
            min_notional: Decimal::from(MIN_FUNDS),
        }
    }

    fn key_format(&self) -> KeyFormat {
        KeyFormat {
            access_len: 24,
            secret_len: 36,
            passphrase_len: Some(16),
        }
    }

    fn scopes(&self) -> &'static [(&'static str, Permission)] {
        SCOPES
    }

    fn order_budget(&self) -> Option<Budget> {
        Some(limits::SPOT)
    }

    fn block_policy(&self) -> Option<BlockPolicy> {
        None
    }

    fn router(&self, venue: Arc<Venue>) -> axum::Router {
        routes::router(venue)
    }

    /// `orderId`: 24 hexadecimal digits from the order's position in the venue.
    fn public_order_id(&self, world: &World, uuid: &uuid::Uuid) -> String {
        match world.position(uuid) {
            Some(i) => wire::order_id(i),
            None => uuid.to_string(),
        }
    }

    /// The withdrawal `id`: 24 hexadecimal digits from its position.
    fn public_withdrawal_id(&self, world: &World, uuid: &uuid::Uuid) -> String {
        match world.withdrawals.iter().position(|w| w.uuid == *uuid) {
            Some(i) => wire::withdrawal_id(i),
            None => uuid.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_dash_separated_and_prices_keep_six_digits_or_decimals() {
        assert_eq!(Kucoin.symbol("BTC", "USDT"), "BTC-USDT");
        assert_eq!(
            Kucoin.parse_symbol("BTC-USDT"),
            Some(("BTC".into(), "USDT".into()))
        );
        assert_eq!(Kucoin.parse_symbol("BTCUSDT"), None);
        assert_eq!(Kucoin.parse_symbol("-USDT"), None);
        assert_eq!(Kucoin.parse_symbol("btc-usdt"), None);
        let rules = Kucoin.price_rules();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(rules.round_price(d("96428.5714")), d("96428.6"));
        assert_eq!(rules.tick_at(d("0.026429")), d("0.000001"));
        assert_eq!(Kucoin.quote_rate("KRW"), Some(Decimal::from(1400)));
    }
}
