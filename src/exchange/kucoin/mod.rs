//! The KuCoin (spot, classic account) adapter: its descriptor, signer ([`auth`]: HMAC-SHA256
//! with a signed passphrase), wire types ([`wire`]), endpoints ([`client`]), resource-pool
//! limits ([`limits`]), error map ([`errors`]) and raw decoder for the offline rebuild
//! ([`decode`]). Everything else (pipeline, rate limiter, replay, steps) is shared.
//!
//! KuCoin facts this adapter relies on: a key has three parts (key, secret, passphrase); errors
//! come as `code` other than `200000`, inside HTTP 200 answers as well as 4xx ones; symbols are
//! dashed (`BTC-USDT`); spot orders come in two families, the high-frequency (`/hf/`) one that
//! keeps history **per symbol** (`lastId` cursor) and the classic one kept per account
//! (numbered pages, 7-day windows). A key **cannot delete itself**: revocation is the guided
//! manual step, except that a master account's key deletes a sub-account's key
//! (`DELETE /api/v1/sub/api-key`). Pending withdrawals can be cancelled by API. The facts with
//! their sources: `docs/exchanges/kucoin.md`.

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

pub use client::{KucoinClient, KucoinConfig};

use crate::exchange::registry::{
    ConnectConfig, CredentialField, Descriptor, ExchangeTexts, KeyMaterial, Locale, RevokeSupport,
    ScopeInfo, SymbolError,
};
use crate::exchange::{Exchange, LocalZone, Market, Result, ScopeClass};

/// The quote currencies of KuCoin's spot market list, for symbols written without a dash.
pub const QUOTES: &[&str] = &[
    "USDT", "USDC", "BTC", "ETH", "KCS", "TRX", "DAI", "EUR", "BRL", "TUSD", "USDD", "DOGE",
];

/// A symbol from elsewhere (a bot log, a playbook argument): `btc-usdt`, `BTC/USDT` and
/// `BTC_USDT` are read as `BTC-USDT`; `BTCUSDT` (no separator) and `KRW-BTC` (quote first) are
/// other exchanges' symbols.
fn parse_symbol(s: &str) -> std::result::Result<Market, SymbolError> {
    let t = s.trim().to_ascii_uppercase();
    let ok = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric());
    let split = t
        .split_once('-')
        .or_else(|| t.split_once('/'))
        .or_else(|| t.split_once('_'));
    match split {
        Some((b, q)) if ok(b) && ok(q) => {
            if b == "KRW" {
                return Err(SymbolError::Foreign(format!(
                    "market `{}` names its quote first, as Upbit writes markets; KuCoin symbols look like BTC-USDT",
                    s.trim()
                )));
            }
            Ok(market_of(b, q))
        }
        None if ok(&t) => {
            let foreign = QUOTES.iter().any(|q| t.len() > q.len() && t.ends_with(q));
            if foreign {
                Err(SymbolError::Foreign(format!(
                    "market `{}` is written without a dash, as Binance and Bybit write symbols; KuCoin symbols look like BTC-USDT",
                    s.trim()
                )))
            } else {
                Err(SymbolError::Invalid(format!(
                    "market `{}` is not a KuCoin symbol like BTC-USDT",
                    s.trim()
                )))
            }
        }
        _ => Err(SymbolError::Invalid(format!(
            "market `{}` is not a KuCoin symbol like BTC-USDT",
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
        "USDT" | "USDC" | "DAI" | "TUSD" | "USDD" | "EUR" | "BRL" => Some(2),
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

/// A KuCoin key's permissions, as `GET /api/v1/user/api-key` lists them in `permission`,
/// labelled as the API management page shows them.
pub const SCOPES: &[ScopeInfo] = &[
    scope("General", ScopeClass::Read, "General (read)", true),
    scope("Spot", ScopeClass::Trade, "Spot Trading", true),
    scope("Margin", ScopeClass::Trade, "Margin Trading", false),
    scope("Futures", ScopeClass::Trade, "Futures Trading", false),
    scope(
        "LeverageToken",
        ScopeClass::Trade,
        "Leveraged Tokens",
        false,
    ),
    scope("Earn", ScopeClass::Other, "Earn", false),
    scope(
        "InnerTransfer",
        ScopeClass::Transfer,
        "Inner Transfer",
        false,
    ),
    scope(
        "Transfer",
        ScopeClass::Transfer,
        "Universal Transfer",
        false,
    ),
    scope("Withdrawal", ScopeClass::Withdraw, "Withdrawal", false),
];

/// KuCoin in the registry.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "kucoin",
    display: "KuCoin",
    env_prefix: "KUCOIN",
    credential_fields: &[
        CredentialField {
            suffix: "ACCESS_KEY",
            secret: false,
        },
        CredentialField {
            suffix: "SECRET_KEY",
            secret: true,
        },
        CredentialField {
            suffix: "PASSPHRASE",
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
    ip_allowlist_limit: Some(20),
    revoke: RevokeSupport {
        by_api: false,
        instructions_en: "Delete the key by hand now: on kucoin.com, your account menu → API Management; \
         find the key whose API Key starts and ends like {key} (check its remark too) and choose Delete, \
         confirming with your trading password and your 2FA (e-mail or Google Authenticator code). \
         KuCoin lets no API call delete an account's own key; a master account deletes a sub-account's \
         key by API (respond does it when KUCOIN_MASTER_ACCESS_KEY, KUCOIN_MASTER_SECRET_KEY, \
         KUCOIN_MASTER_PASSPHRASE and KUCOIN_SUB_ACCOUNT are given). respond keeps containing meanwhile \
         and verifies the deletion by polling with the old key until KuCoin refuses it (400003).",
        instructions_local: "",
        api_call: "DELETE /api/v1/sub/api-key",
    },
    texts: ExchangeTexts {
        checklist_en: &[
            "Permissions: for a spot trading bot tick only General and Spot Trading; leave Withdrawal, Inner Transfer, Universal Transfer, Margin and Futures off.",
            "IP restriction: when creating the key choose \"IP Restriction: Yes\" and enter the bot's server addresses; a key without one works from any machine, the thief's included.",
            "Passphrase: the API passphrase is the key's third part; choose a new one for the new key (never your login or trading password) and store it with the secret.",
            "Trading password: change it if it was ever stored next to the keys; KuCoin asks for it to create or delete keys and to withdraw.",
            "Sub-accounts: give each bot its own sub-account and key, so the master account can delete a leaked key by API (DELETE /api/v1/sub/api-key) and the loss is bounded to that sub-account's funds.",
            "Security settings: turn on the withdrawal address whitelist (Withdrawal Address Management) and review the devices logged in to the account.",
        ],
        ticket_en: &[
            "The key's permissions and IP restriction at the time of the incident are in the attached raw answers of GET /api/v1/user/api-key (permission, ipWhitelist).",
            "Order and fill ids are KuCoin's orderId and tradeId (high-frequency and classic spot); the counterparties' orders are the fills' counterOrderId; times are UTC.",
        ],
    },
    parse_symbol,
    market_of,
    default_playbook: "leak",
    playbook_aliases: &[],
};

fn connect(cfg: &ConnectConfig, keys: &[KeyMaterial]) -> Result<Vec<Arc<dyn Exchange>>> {
    let primary = |first: &KeyMaterial| {
        let mut c = KucoinConfig::new(first.access_key.clone(), first.secret_key.clone());
        c.passphrase = first.passphrase.clone();
        c.base_url = cfg.base_url.clone();
        c.recorder = cfg.recorder.clone();
        c.master = cfg.master.clone();
        KucoinClient::new(c)
    };
    crate::exchange::registry::primary_and_others(&DESCRIPTOR, keys, primary, |p, k| p.with_key(k))
}

/// The KuCoin façade of the mock (`src/mock/kucoin/`).
fn mock_facade() -> Arc<dyn crate::mock::Facade> {
    Arc::new(crate::mock::kucoin::Kucoin)
}

#[cfg(test)]
mod symbol_tests {
    use super::*;

    #[test]
    fn bot_log_spellings() {
        for s in ["BTC-USDT", " btc-usdt ", "BTC/USDT", "btc_usdt"] {
            let m = parse_symbol(s).unwrap();
            assert_eq!(
                (m.as_str(), m.base.as_str(), m.quote.as_str()),
                ("BTC-USDT", "BTC", "USDT"),
                "{s}"
            );
        }
        assert!(matches!(
            parse_symbol("KRW-BTC"),
            Err(SymbolError::Foreign(_))
        ));
        assert!(matches!(
            parse_symbol("BTCUSDT"),
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
        assert_eq!(d.scope_class("Withdrawal"), ScopeClass::Withdraw);
        assert_eq!(d.scope_class("InnerTransfer"), ScopeClass::Transfer);
        assert_eq!(d.scope_class("Spot"), ScopeClass::Trade);
        assert_eq!(d.scope_class("General"), ScopeClass::Read);
        let (en, local) = d.revoke.instructions("abcd…wxyz");
        assert!(
            en.contains("abcd…wxyz") && en.contains("trading password"),
            "{en}"
        );
        assert!(local.is_empty());
        assert!(d
            .credential_fields
            .iter()
            .any(|f| f.suffix == "PASSPHRASE" && f.secret));
    }
}
