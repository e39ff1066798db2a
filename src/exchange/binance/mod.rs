//! The Binance spot adapter: its descriptor, signer ([`auth`]: HMAC-SHA256 and Ed25519), wire
//! types ([`wire`]), endpoints ([`client`]), weights ([`limits`]), error map ([`errors`]),
//! symbol scan ([`scan`]) and raw decoder for the offline rebuild ([`decode`]). Everything else
//! (pipeline, rate limiter, replay, steps) is shared.
//!
//! Binance facts this adapter relies on: symbols carry no separator (`BTCUSDT`), so base and
//! quote come from `exchangeInfo` (with a split at the quote assets Binance lists as the
//! fallback); history is kept per symbol, in windows of at most 24 hours; times are UTC epoch
//! milliseconds and the API's language is English; a key's permissions can be read
//! (`apiRestrictions`) but one's own key cannot be deleted by API, only a sub-account's by its
//! parent account; pending withdrawals cannot be cancelled by API. The facts with their sources:
//! `docs/exchanges/binance.md`.

pub mod auth;
pub mod client;
pub mod decode;
pub mod errors;
pub mod limits;
pub mod scan;
#[cfg(test)]
mod tests;
pub mod wire;

use std::sync::Arc;

pub use client::{BinanceClient, BinanceConfig};

use crate::exchange::registry::{
    ConnectConfig, CredentialField, Descriptor, ExchangeTexts, KeyMaterial, Locale, RevokeSupport,
    ScopeInfo, SymbolError,
};
use crate::exchange::{Exchange, LocalZone, Market, Result, ScopeClass};

/// The quote assets Binance lists (its `exchangeInfo`, 2025): a symbol is split at the
/// longest one it ends with when the market list is not at hand (a bot log read before
/// any answer, a run whose market list could not be read). The market list always wins.
pub const QUOTES: &[&str] = &[
    "FDUSD", "BIDR", "BKRW", "BUSD", "BVND", "EURI", "GYEN", "IDRT", "TUSD", "USDC", "USDP",
    "USDS", "USDT", "AEUR", "ARS", "AUD", "BNB", "BRL", "BTC", "COP", "CZK", "DAI", "DOGE", "DOT",
    "ETH", "EUR", "GBP", "IDR", "JPY", "MXN", "NGN", "PAX", "PLN", "RON", "RUB", "TRX", "TRY",
    "UAH", "UST", "VAI", "XRP", "ZAR",
];

/// `(base, quote)` of a symbol by the longest quote asset it ends with; `None` when it ends
/// with none, or is nothing but one.
pub fn split_symbol(symbol: &str) -> Option<(&str, &str)> {
    QUOTES
        .iter()
        .filter(|q| symbol.len() > q.len() && symbol.ends_with(*q))
        .max_by_key(|q| q.len())
        .map(|q| symbol.split_at(symbol.len() - q.len()))
}

/// A symbol from elsewhere (a bot log, a playbook argument): `btcusdt` is read as `BTCUSDT`;
/// a symbol with a dash (`KRW-BTC`, `BTC-USDT`) is another exchange's.
fn parse_symbol(s: &str) -> std::result::Result<Market, SymbolError> {
    let m = s.trim().to_ascii_uppercase();
    if m.contains('-') {
        return Err(SymbolError::Foreign(format!(
            "market `{}` is written with a dash, as other exchanges write them; Binance symbols look like BTCUSDT",
            s.trim()
        )));
    }
    if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(SymbolError::Invalid(format!(
            "market `{}` is not a Binance symbol like BTCUSDT",
            s.trim()
        )));
    }
    match split_symbol(&m) {
        Some((b, q)) => Ok(Market::new(m.as_str(), b, q)),
        None => Err(SymbolError::Invalid(format!(
            "market `{m}` does not end with a quote asset Binance lists (USDT, BTC, FDUSD, …)"
        ))),
    }
}

fn market_of(base: &str, quote: &str) -> Market {
    Market::new(format!("{base}{quote}"), base, quote)
}

/// Fiat and dollar stablecoins are shown with cents; crypto quotes keep their decimals.
fn quote_minor_units(currency: &str) -> Option<u32> {
    match currency.to_ascii_uppercase().as_str() {
        "USDT" | "USDC" | "FDUSD" | "TUSD" | "BUSD" | "USDP" | "DAI" | "USDS" | "EUR" | "EURI"
        | "AEUR" | "GBP" | "TRY" | "BRL" | "AUD" | "UAH" | "PLN" | "RON" | "ZAR" | "MXN"
        | "ARS" | "CZK" => Some(2),
        "JPY" | "IDR" | "IDRT" | "BIDR" | "NGN" | "COP" | "BKRW" | "BVND" => Some(0),
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

/// The permissions of a Binance API key, named as `GET /sapi/v1/account/apiRestrictions`
/// names them, labelled as API Management shows them.
pub const SCOPES: &[ScopeInfo] = &[
    scope("enableReading", ScopeClass::Read, "Enable Reading", true),
    scope(
        "enableSpotAndMarginTrading",
        ScopeClass::Trade,
        "Enable Spot & Margin Trading",
        true,
    ),
    scope(
        "enableWithdrawals",
        ScopeClass::Withdraw,
        "Enable Withdrawals",
        false,
    ),
    scope(
        "enableInternalTransfer",
        ScopeClass::Transfer,
        "Enable Internal Transfer",
        false,
    ),
    scope(
        "permitsUniversalTransfer",
        ScopeClass::Transfer,
        "Permits Universal Transfer",
        false,
    ),
    scope(
        "enableMargin",
        ScopeClass::Trade,
        "Enable Margin Loan, Repay & Transfer",
        false,
    ),
    scope("enableFutures", ScopeClass::Trade, "Enable Futures", false),
    scope(
        "enableVanillaOptions",
        ScopeClass::Trade,
        "Enable European Options",
        false,
    ),
    scope(
        "enablePortfolioMarginTrading",
        ScopeClass::Trade,
        "Enable Portfolio Margin Trading",
        false,
    ),
    scope(
        "enableFixApiTrade",
        ScopeClass::Trade,
        "Enable FIX API Trade",
        false,
    ),
    scope(
        "enableFixReadOnly",
        ScopeClass::Read,
        "Enable FIX API Read Only",
        false,
    ),
];

/// Binance in the registry.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "binance",
    display: "Binance",
    env_prefix: "BINANCE",
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
    ip_allowlist_limit: Some(30),
    revoke: RevokeSupport {
        by_api: false,
        instructions_en: "Binance has no API to delete your own API key. Delete it by hand now: in the Binance app, \
         Profile → Account → API Management (on the web: your profile menu → Account → API Management); \
         find the key whose API Key starts and ends like {key} (check its label too) and choose Delete, \
         confirming with your 2FA. If the key was linked to a third-party platform (a bot service's \
         one-click \"Link API\" or another third-party API key programme), unlink it there too. \
         A sub-account's key can also be deleted by its parent account: set BINANCE_MASTER_ACCESS_KEY, \
         BINANCE_MASTER_SECRET_KEY and BINANCE_SUB_ACCOUNT (the sub-account's email) and respond does it. \
         respond keeps containing meanwhile and verifies the deletion by polling with the old key until \
         Binance refuses it (-2015).",
        instructions_local: "",
        api_call: "DELETE /sapi/v1/sub-account/subAccountApi",
    },
    texts: ExchangeTexts {
        checklist_en: &[
            "Key type: create the replacement as a Self-generated (Ed25519) key where your bot supports it, as Binance recommends; a System-generated (HMAC) key's secret signs like a password and is shown once.",
            "Permissions: tick only Enable Reading and Enable Spot & Margin Trading for a trading bot; leave Enable Withdrawals, Enable Internal Transfer, Permits Universal Transfer, Enable Margin Loan, Repay & Transfer and Enable Futures off.",
            "IP restriction: choose Restrict access to trusted IPs only and enter the bot's server addresses. Binance requires it before Enable Withdrawals can be ticked, and limits how long an Unrestricted key keeps its trading permission.",
            "Third-party API key programmes: a key created for a partner platform (a bot service linked with one click) is bound to that platform; under API Management delete every key and link you do not use, and create the bot's key again only on the platform you trust.",
            "Security settings: turn on the withdrawal whitelist (Address Management) and review the devices and sessions logged in to the account.",
        ],
        ticket_en: &[
            "The key's permissions and IP restriction at the time of the incident are in the attached raw answers of GET /sapi/v1/account/apiRestrictions (enableSpotAndMarginTrading, enableWithdrawals, ipRestrict).",
            "Order and trade ids are Binance's orderId and trade id per symbol; times are UTC.",
            "If the key was linked to a third-party platform through a third-party API key programme, please tell me which platform and which IP addresses used it.",
        ],
    },
    parse_symbol,
    market_of,
    default_playbook: "leak",
    playbook_aliases: &[],
};

fn connect(cfg: &ConnectConfig, keys: &[KeyMaterial]) -> Result<Vec<Arc<dyn Exchange>>> {
    let primary = |first: &KeyMaterial| {
        let mut c = BinanceConfig::new(first.access_key.clone(), first.secret_key.clone());
        c.base_url = cfg.base_url.clone();
        c.recorder = cfg.recorder.clone();
        c.master = cfg.master.clone();
        BinanceClient::new(c)
    };
    crate::exchange::registry::primary_and_others(&DESCRIPTOR, keys, primary, |p, k| {
        p.with_key(k.access_key.clone(), k.secret_key.clone())
    })
}

/// The Binance façade of the mock (`src/mock/binance/`).
fn mock_facade() -> Arc<dyn crate::mock::Facade> {
    Arc::new(crate::mock::binance::Binance)
}

#[cfg(test)]
mod symbol_tests {
    use super::*;

    #[test]
    fn symbols_split_at_the_longest_quote() {
        for (s, b, q) in [
            ("BTCUSDT", "BTC", "USDT"),
            ("ETHBTC", "ETH", "BTC"),
            ("WBTCBTC", "WBTC", "BTC"),
            ("BTCFDUSD", "BTC", "FDUSD"),
            ("BTCTUSD", "BTC", "TUSD"),
            ("USDTTRY", "USDT", "TRY"),
            ("BTCAEUR", "BTC", "AEUR"),
            ("PUMPUSDT", "PUMP", "USDT"),
        ] {
            assert_eq!(split_symbol(s), Some((b, q)), "{s}");
        }
        assert_eq!(split_symbol("USDT"), None);
        assert_eq!(split_symbol("ABCXYZ"), None);
    }

    #[test]
    fn bot_log_spellings() {
        let m = parse_symbol(" btcusdt ").unwrap();
        assert_eq!(
            (m.as_str(), m.base.as_str(), m.quote.as_str()),
            ("BTCUSDT", "BTC", "USDT")
        );
        assert!(matches!(
            parse_symbol("KRW-BTC"),
            Err(SymbolError::Foreign(_))
        ));
        assert!(matches!(
            parse_symbol("BTC-USDT"),
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
        assert_eq!(market_of("ETH", "USDT").as_str(), "ETHUSDT");
        assert_eq!(quote_minor_units("usdt"), Some(2));
        assert_eq!(quote_minor_units("BTC"), None);
    }

    #[test]
    fn scopes_classify_the_restrictions() {
        let d = &DESCRIPTOR;
        assert_eq!(d.scope_class("enableWithdrawals"), ScopeClass::Withdraw);
        assert_eq!(
            d.scope_class("permitsUniversalTransfer"),
            ScopeClass::Transfer
        );
        assert_eq!(
            d.scope_class("enableSpotAndMarginTrading"),
            ScopeClass::Trade
        );
        // Every field apiRestrictions answers is a scope of the table.
        let r = wire::Restrictions::default();
        for (name, _) in r.scopes() {
            assert!(SCOPES.iter().any(|s| s.name == name), "{name}");
        }
        let (en, local) = d.revoke.instructions("abcd…wxyz");
        assert!(
            en.contains("abcd…wxyz") && en.contains("API Management"),
            "{en}"
        );
        assert!(local.is_empty());
    }
}
