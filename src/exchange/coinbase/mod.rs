//! The Coinbase Advanced Trade (spot) adapter: its descriptor, JWT signer ([`auth`]: ES256 and
//! EdDSA CDP keys), wire types ([`wire`]), endpoints ([`client`]), limits ([`limits`]), error
//! map ([`errors`]) and raw decoder for the offline rebuild ([`decode`]). Everything else
//! (pipeline, rate limiter, replay, steps) is shared.
//!
//! Coinbase facts this adapter relies on: every private request carries a fresh two-minute JWT
//! naming its method and path; errors come with HTTP status codes (a plain-text `401
//! Unauthorized` for any authentication failure); products are written `BTC-USD`; orders and
//! fills are kept per account (no symbol needed), paged by an opaque cursor; crypto sends and
//! receives live in the Coinbase App (v2) API, one currency account at a time. No API call
//! deletes a key, cancels a withdrawal or reads a key's IP allowlist. The facts with their
//! sources: `docs/exchanges/coinbase.md`.

pub mod auth;
pub mod client;
pub mod decode;
pub mod errors;
pub mod limits;
#[cfg(test)]
mod tests;
pub mod wire;

use std::sync::Arc;

pub use client::{CoinbaseClient, CoinbaseConfig};

use crate::exchange::registry::{
    ConnectConfig, CredentialField, Descriptor, ExchangeTexts, KeyMaterial, Locale, RevokeSupport,
    ScopeInfo, SymbolError,
};
use crate::exchange::{Exchange, LocalZone, Market, Result, ScopeClass};

/// `(base, quote)` of a product id (`BTC-USD`).
pub fn split_product(product: &str) -> Option<(&str, &str)> {
    let (b, q) = product.split_once('-')?;
    let ok = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric());
    (ok(b) && ok(q)).then_some((b, q))
}

/// A symbol from elsewhere (a bot log, a playbook argument): `btc-usd` and `BTC/USD` are read as
/// `BTC-USD`; a symbol without a separator (`BTCUSDT`) is another exchange's.
fn parse_symbol(s: &str) -> std::result::Result<Market, SymbolError> {
    let t = s.trim().to_ascii_uppercase();
    let pair = t.split_once('-').or_else(|| t.split_once('/'));
    match pair {
        Some((b, q)) => match split_product(&format!("{b}-{q}")) {
            Some(_) => Ok(market_of(b, q)),
            None => Err(SymbolError::Invalid(format!(
                "market `{}` is not a Coinbase product id like BTC-USD",
                s.trim()
            ))),
        },
        None if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Err(SymbolError::Foreign(format!(
                "market `{}` has no dash, as other exchanges write them; Coinbase product ids look like BTC-USD",
                s.trim()
            )))
        }
        None => Err(SymbolError::Invalid(format!(
            "market `{}` is not a Coinbase product id like BTC-USD",
            s.trim()
        ))),
    }
}

fn market_of(base: &str, quote: &str) -> Market {
    Market::new(format!("{base}-{quote}"), base, quote)
}

/// Fiat and dollar stablecoins are shown with cents; crypto quotes keep their decimals.
fn quote_minor_units(currency: &str) -> Option<u32> {
    match currency.to_ascii_uppercase().as_str() {
        "USD" | "USDC" | "USDT" | "EUR" | "GBP" | "DAI" => Some(2),
        _ => None,
    }
}

const fn scope(
    name: &'static str,
    class: ScopeClass,
    label_en: &'static str,
    bot_default: bool,
) -> ScopeInfo {
    ScopeInfo {
        name,
        class,
        label_en,
        label_local: label_en,
        bot_default,
    }
}

/// A CDP key's permissions, named after the fields of `GET /api/v3/brokerage/key_permissions`
/// and labelled as the key's settings show them. `can_transfer` covers sends (withdrawals).
pub const SCOPES: &[ScopeInfo] = &[
    scope("can_view", ScopeClass::Read, "View", true),
    scope("can_trade", ScopeClass::Trade, "Trade", true),
    scope("can_transfer", ScopeClass::Withdraw, "Transfer", false),
];

/// Coinbase Advanced Trade in the registry.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "coinbase",
    display: "Coinbase",
    env_prefix: "COINBASE",
    credential_fields: &[
        CredentialField {
            suffix: "ACCESS_KEY",
            secret: false,
        },
        CredentialField {
            suffix: "SECRET_KEY",
            secret: true,
        },
    ],
    default_base_url: client::DEFAULT_BASE_URL,
    connect,
    decode_raw: decode::decode_raw,
    error_of: errors::error_of,
    never_accepted_advice: errors::never_accepted_advice,
    mock: Some(crate::mock::coinbase::hook),
    scopes: SCOPES,
    locale: Locale {
        zone: LocalZone::UTC,
        language: "en",
    },
    quote_minor_units,
    ip_allowlist_limit: None,
    revoke: RevokeSupport {
        by_api: false,
        instructions_en: "Delete the key by hand now: sign in to the Coinbase Developer Platform \
         (portal.cdp.coinbase.com) with the account that owns it, open API Keys (Secret API Keys), \
         find the key whose name starts and ends like {key} (organizations/…/apiKeys/…; check its \
         nickname and portfolio too) and delete it, confirming with your 2-step verification. If \
         you cannot reach the portal, at least edit the key and remove its Trade and Transfer \
         permissions. Coinbase has no API call that deletes or weakens a key. respond keeps \
         containing meanwhile and verifies the deletion by polling with the old key until Coinbase \
         refuses it (401 Unauthorized).",
        instructions_local: "",
        api_call: "",
    },
    texts: ExchangeTexts {
        checklist_en: &[
            "Permissions: a spot trading bot's CDP key needs View and Trade only; leave Transfer off (it lets the key send crypto off Coinbase).",
            "IP allowlist: in the key's advanced settings list the bot's server addresses, so the key works from nowhere else. Coinbase does not show the allowlist by API: check it in the portal.",
            "Portfolio: create the bot's key scoped to a separate portfolio holding only the funds the bot trades; a key of the default portfolio reaches every fund of it.",
            "Key type: an ECDSA key's secret is a PEM private key and an Ed25519 key's a base64 string; both are shown once. Store them in a 0600 file, never in the bot's repository or command line.",
            "Account security: turn on the withdrawal allowlist (address book) and review the devices and sessions signed in to the Coinbase account.",
        ],
        ticket_en: &[
            "The key's permissions and portfolio at the time of the incident are in the attached raw answer of GET /api/v3/brokerage/key_permissions (can_view, can_trade, can_transfer, portfolio_uuid, portfolio_type).",
            "Order and fill ids are Coinbase's order_id and trade_id (Advanced Trade, spot); sends are the Coinbase App transaction ids; times are UTC.",
        ],
    },
    parse_symbol,
    market_of,
    default_playbook: "leak",
    playbook_aliases: &[],
};

fn connect(cfg: &ConnectConfig, keys: &[KeyMaterial]) -> Result<Vec<Arc<dyn Exchange>>> {
    let primary = |first: &KeyMaterial| {
        let mut c = CoinbaseConfig::new(first.access_key.clone(), first.secret_key.clone());
        c.base_url = cfg.base_url.clone();
        c.recorder = cfg.recorder.clone();
        CoinbaseClient::new(c)
    };
    crate::exchange::registry::primary_and_others(&DESCRIPTOR, keys, primary, |p, k| {
        p.with_key(k.access_key.clone(), k.secret_key.clone())
    })
}

#[cfg(test)]
mod symbol_tests {
    use super::*;

    #[test]
    fn bot_log_spellings() {
        for (s, sym, b, q) in [
            ("BTC-USD", "BTC-USD", "BTC", "USD"),
            (" btc-usd ", "BTC-USD", "BTC", "USD"),
            ("BTC/USD", "BTC-USD", "BTC", "USD"),
            ("BTC-USDC", "BTC-USDC", "BTC", "USDC"),
            ("btc/usdc", "BTC-USDC", "BTC", "USDC"),
        ] {
            let m = parse_symbol(s).unwrap();
            assert_eq!(
                (m.as_str(), m.base.as_str(), m.quote.as_str()),
                (sym, b, q),
                "{s}"
            );
        }
        assert!(matches!(
            parse_symbol("BTCUSDT"),
            Err(SymbolError::Foreign(_))
        ));
        for bad in ["BTC USD", "-USD", "BTC-", "BTC-US D", ""] {
            assert!(
                matches!(parse_symbol(bad), Err(SymbolError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(quote_minor_units("usd"), Some(2));
        assert_eq!(quote_minor_units("BTC"), None);
    }

    #[test]
    fn scopes_classify_the_permissions() {
        let d = &DESCRIPTOR;
        assert_eq!(d.scope_class("can_transfer"), ScopeClass::Withdraw);
        assert!(d.scope_class("can_transfer").moves_funds());
        assert_eq!(d.scope_class("can_trade"), ScopeClass::Trade);
        assert_eq!(d.scope_class("can_view"), ScopeClass::Read);
        let (en, local) = d.revoke.instructions("orga…1111");
        assert!(en.contains("orga…1111") && en.contains("401"), "{en}");
        assert!(local.is_empty());
        assert!(!d.revoke.by_api);
    }
}
