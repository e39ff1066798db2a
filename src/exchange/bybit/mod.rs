//! The Bybit (v5, spot, unified trading account) adapter: its descriptor, signer ([`auth`]:
//! HMAC-SHA256 and RSA), wire types ([`wire`]), endpoints ([`client`]), per-endpoint limits
//! ([`limits`]), error map ([`errors`]) and raw decoder for the offline rebuild ([`decode`]).
//! Everything else (pipeline, rate limiter, replay, steps) is shared.
//!
//! Bybit facts this adapter relies on: errors come inside HTTP 200 bodies (`retCode`); symbols
//! carry no separator (`BTCUSDT`) and their coins come from `instruments-info`; history is kept
//! per account (the symbol is optional) in windows of at most 7 days, paged by cursor; times
//! are epoch milliseconds sent as strings. A key **can delete itself** (`POST
//! /v5/user/delete-api`) when it holds a transfer or withdrawal permission, and pending
//! withdrawals can be cancelled by API. The facts with their sources:
//! `docs/exchanges/bybit.md`.

pub mod auth;
pub mod client;
pub mod decode;
pub mod errors;
pub mod limits;
#[cfg(test)]
mod tests;
pub mod wire;

use std::sync::Arc;

pub use client::{BybitClient, BybitConfig};

use crate::exchange::registry::{
    ConnectConfig, CredentialField, Descriptor, ExchangeTexts, KeyMaterial, Locale, RevokeSupport,
    ScopeInfo, SymbolError,
};
use crate::exchange::{Exchange, LocalZone, Market, Result, ScopeClass};

/// The quote coins of Bybit's spot market list (`instruments-info`, 2026): a symbol is split at
/// the longest one it ends with when the market list is not at hand. The list always wins.
pub const QUOTES: &[&str] = &[
    "USDT", "USDC", "USDE", "USDR", "FDUSD", "EUR", "BRL", "PLN", "TRY", "BTC", "ETH", "DAI", "MNT",
];

/// `(base, quote)` of a symbol by the longest quote coin it ends with.
pub fn split_symbol(symbol: &str) -> Option<(&str, &str)> {
    QUOTES
        .iter()
        .filter(|q| symbol.len() > q.len() && symbol.ends_with(*q))
        .max_by_key(|q| q.len())
        .map(|q| symbol.split_at(symbol.len() - q.len()))
}

/// A symbol from elsewhere (a bot log, a playbook argument): `btcusdt` and `BTC/USDT` are read
/// as `BTCUSDT`; a dashed symbol (`KRW-BTC`, `BTC-USDT`) is another exchange's.
fn parse_symbol(s: &str) -> std::result::Result<Market, SymbolError> {
    let t = s.trim().to_ascii_uppercase();
    if t.contains('-') {
        return Err(SymbolError::Foreign(format!(
            "market `{}` is written with a dash, as other exchanges write them; Bybit symbols look like BTCUSDT",
            s.trim()
        )));
    }
    if let Some((b, q)) = t.split_once('/') {
        let ok = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric());
        if ok(b) && ok(q) {
            return Ok(market_of(b, q));
        }
    }
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(SymbolError::Invalid(format!(
            "market `{}` is not a Bybit symbol like BTCUSDT",
            s.trim()
        )));
    }
    match split_symbol(&t) {
        Some((b, q)) => Ok(Market::new(t.as_str(), b, q)),
        None => Err(SymbolError::Invalid(format!(
            "market `{t}` does not end with a quote coin Bybit lists (USDT, USDC, BTC, …)"
        ))),
    }
}

fn market_of(base: &str, quote: &str) -> Market {
    Market::new(format!("{base}{quote}"), base, quote)
}

/// Fiat and dollar stablecoins are shown with cents; crypto quotes keep their decimals.
fn quote_minor_units(currency: &str) -> Option<u32> {
    match currency.to_ascii_uppercase().as_str() {
        "USDT" | "USDC" | "USDE" | "USDR" | "FDUSD" | "DAI" | "EUR" | "BRL" | "PLN" | "TRY" => {
            Some(2)
        }
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

/// A Bybit key's permissions, named `Family.Permission` after the `permissions` object of
/// `GET /v5/user/query-api`, labelled as the API management page shows them.
pub const SCOPES: &[ScopeInfo] = &[
    scope("Spot.SpotTrade", ScopeClass::Trade, "Spot Trade", true),
    scope(
        "ContractTrade.Order",
        ScopeClass::Trade,
        "Contract Orders",
        false,
    ),
    scope(
        "ContractTrade.Position",
        ScopeClass::Trade,
        "Contract Positions",
        false,
    ),
    scope(
        "Derivatives.DerivativesTrade",
        ScopeClass::Trade,
        "Unified Trading (derivatives)",
        false,
    ),
    scope(
        "Options.OptionsTrade",
        ScopeClass::Trade,
        "USDC Contracts / Options",
        false,
    ),
    scope(
        "Exchange.ExchangeHistory",
        ScopeClass::Trade,
        "Convert",
        false,
    ),
    scope(
        "CopyTrading.CopyTrading",
        ScopeClass::Trade,
        "Copy Trading",
        false,
    ),
    scope(
        "BlockTrade.BlockTrade",
        ScopeClass::Trade,
        "Block Trade",
        false,
    ),
    scope("Earn.Earn", ScopeClass::Other, "Earn", false),
    scope("NFT.NFTQueryProductList", ScopeClass::Other, "NFT", false),
    scope("Affiliate.Affiliate", ScopeClass::Read, "Affiliate", false),
    scope(
        "Wallet.AccountTransfer",
        ScopeClass::Transfer,
        "Account Transfer",
        false,
    ),
    scope(
        "Wallet.SubMemberTransfer",
        ScopeClass::Transfer,
        "Subaccount Transfer",
        false,
    ),
    scope(
        "Wallet.SubMemberTransferList",
        ScopeClass::Transfer,
        "Subaccount Transfer (sub-account key)",
        false,
    ),
    scope("Wallet.Withdraw", ScopeClass::Withdraw, "Withdrawal", false),
];

/// The permissions that let a key delete or modify itself by API (any one of them).
pub const SELF_REVOKE_SCOPES: &[&str] = &[
    "Wallet.AccountTransfer",
    "Wallet.SubMemberTransfer",
    "Wallet.SubMemberTransferList",
    "Wallet.Withdraw",
];

/// Bybit in the registry.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "bybit",
    display: "Bybit",
    env_prefix: "BYBIT",
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
    mock: Some(mock_facade),
    scopes: SCOPES,
    locale: Locale {
        zone: LocalZone::UTC,
        language: "en",
    },
    quote_minor_units,
    ip_allowlist_limit: Some(1000),
    revoke: RevokeSupport {
        by_api: true,
        instructions_en: "Delete the key by hand now: on bybit.com, your profile menu → API (API Management); \
         find the key whose API Key starts and ends like {key} (check its note too) and choose Delete, \
         confirming with your 2FA. respond deletes a key by API itself only when the key holds an \
         Account Transfer, Subaccount Transfer or Withdrawal permission (POST /v5/user/delete-api); this \
         one does not, so Bybit lets no API call delete or weaken it. respond keeps containing meanwhile \
         and verifies the deletion by polling with the old key until Bybit refuses it (10003).",
        instructions_local: "",
        api_call: "POST /v5/user/delete-api",
    },
    texts: ExchangeTexts {
        checklist_en: &[
            "Permissions: for a spot trading bot tick only Spot Trade (under Unified Trading); leave Account Transfer, Subaccount Transfer and Withdrawal off. Note that a key without them cannot be deleted by API: respond then needs you to delete it by hand.",
            "IP binding: choose \"Only IPs with permissions granted are allowed to access the OpenAPI\" and enter the bot's server addresses. A key without an IP binding expires after 3 months (deadlineDay) and works from any machine, the thief's included.",
            "Key type: a self-generated (RSA) key keeps the private key on your machine only; a system-generated (HMAC) key's secret is shown once and signs like a password.",
            "Security settings: turn on the withdrawal address whitelist and review the devices logged in to the account.",
        ],
        ticket_en: &[
            "The key's permissions, IP binding and expiry at the time of the incident are in the attached raw answers of GET /v5/user/query-api (readOnly, permissions, ips, expiredAt).",
            "Order and execution ids are Bybit's orderId and execId (category spot); times are UTC.",
        ],
    },
    parse_symbol,
    market_of,
    default_playbook: "leak",
    playbook_aliases: &[],
};

fn connect(cfg: &ConnectConfig, keys: &[KeyMaterial]) -> Result<Vec<Arc<dyn Exchange>>> {
    let primary = |first: &KeyMaterial| {
        let mut c = BybitConfig::new(first.access_key.clone(), first.secret_key.clone());
        c.base_url = cfg.base_url.clone();
        c.recorder = cfg.recorder.clone();
        BybitClient::new(c)
    };
    crate::exchange::registry::primary_and_others(&DESCRIPTOR, keys, primary, |p, k| {
        p.with_key(k.access_key.clone(), k.secret_key.clone())
    })
}

/// The Bybit façade of the mock (`src/mock/bybit/`).
fn mock_facade() -> Arc<dyn crate::mock::Facade> {
    Arc::new(crate::mock::bybit::Bybit)
}

#[cfg(test)]
mod symbol_tests {
    use super::*;

    #[test]
    fn bot_log_spellings() {
        for s in ["BTCUSDT", " btcusdt ", "BTC/USDT", "btc/usdt"] {
            let m = parse_symbol(s).unwrap();
            assert_eq!(
                (m.as_str(), m.base.as_str(), m.quote.as_str()),
                ("BTCUSDT", "BTC", "USDT"),
                "{s}"
            );
        }
        let m = parse_symbol("ETHBTC").unwrap();
        assert_eq!((m.base.as_str(), m.quote.as_str()), ("ETH", "BTC"));
        assert!(matches!(
            parse_symbol("KRW-BTC"),
            Err(SymbolError::Foreign(_))
        ));
        assert!(matches!(
            parse_symbol("BTC USDT"),
            Err(SymbolError::Invalid(_))
        ));
        assert!(matches!(
            parse_symbol("ABCXYZ"),
            Err(SymbolError::Invalid(_))
        ));
        assert_eq!(quote_minor_units("usdt"), Some(2));
        assert_eq!(quote_minor_units("BTC"), None);
    }

    #[test]
    fn scopes_classify_the_permissions() {
        let d = &DESCRIPTOR;
        assert_eq!(d.scope_class("Wallet.Withdraw"), ScopeClass::Withdraw);
        assert_eq!(
            d.scope_class("Wallet.AccountTransfer"),
            ScopeClass::Transfer
        );
        assert_eq!(d.scope_class("Spot.SpotTrade"), ScopeClass::Trade);
        for s in SELF_REVOKE_SCOPES {
            assert!(d.scope_class(s).moves_funds(), "{s}");
        }
        let (en, local) = d.revoke.instructions("abcd…wxyz");
        assert!(
            en.contains("abcd…wxyz") && en.contains("delete-api"),
            "{en}"
        );
        assert!(local.is_empty());
    }
}
