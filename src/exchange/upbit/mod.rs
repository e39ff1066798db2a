//! The Upbit adapter: its descriptor, JWT signer ([`auth`]), wire types ([`wire`]), endpoints
//! ([`client`]), limits table ([`limits`]), error map ([`errors`]) and raw decoder for the
//! offline rebuild ([`decode`]). Everything else (pipeline, rate limiter, replay) is shared.
//!
//! Upbit facts this adapter relies on: markets are written `QUOTE-BASE` (`KRW-BTC`); local
//! time is KST (+09:00) and the home language Korean; KRW has no minor unit; a key's IP
//! allowlist holds at most 10 addresses; keys cannot be deleted by API, only in the web
//! console (My Page → Open API management). The facts with their sources:
//! `docs/exchanges/upbit.md`.

pub mod auth;
pub mod client;
pub mod decode;
pub mod errors;
pub mod limits;
pub mod wire;

use std::sync::Arc;

pub use client::{UpbitClient, UpbitConfig};

use crate::exchange::registry::{
    ConnectConfig, CredentialField, Descriptor, ExchangeTexts, KeyMaterial, Locale, RevokeSupport,
    ScopeInfo, SymbolError,
};
use crate::exchange::{Exchange, LocalZone, Market, Result, ScopeClass};

/// Upbit's local time: KST, +09:00.
pub const KST: LocalZone = LocalZone {
    utc_offset_secs: 9 * 3600,
    name: "KST",
};

/// Upbit's API key scopes, with English and Korean labels as its console shows them.
pub const SCOPES: &[ScopeInfo] = &[
    scope(
        "view_account",
        ScopeClass::Read,
        "View account",
        "자산조회",
        true,
    ),
    scope(
        "view_orders",
        ScopeClass::Read,
        "View orders",
        "주문조회",
        true,
    ),
    scope(
        "make_orders",
        ScopeClass::Trade,
        "Make orders",
        "주문하기",
        true,
    ),
    scope(
        "view_withdrawals",
        ScopeClass::Read,
        "View withdrawals",
        "출금조회",
        false,
    ),
    scope(
        "make_withdrawals",
        ScopeClass::Withdraw,
        "Make withdrawals",
        "출금하기",
        false,
    ),
    scope(
        "view_deposits",
        ScopeClass::Read,
        "View deposits",
        "입금조회",
        false,
    ),
    scope(
        "make_deposits",
        ScopeClass::Deposit,
        "Make deposits",
        "입금하기",
        false,
    ),
];

const fn scope(
    name: &'static str,
    class: ScopeClass,
    label_en: &'static str,
    label_local: &'static str,
    bot_default: bool,
) -> ScopeInfo {
    ScopeInfo {
        name,
        class,
        label_en,
        label_local,
        bot_default,
    }
}

/// Upbit in the registry.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "upbit",
    display: "Upbit",
    env_prefix: "UPBIT",
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
        zone: KST,
        language: "ko",
    },
    quote_minor_units,
    ip_allowlist_limit: Some(10),
    revoke: RevokeSupport {
        by_api: false,
        instructions_en: "Upbit has no API to delete a key. Delete it by hand now: sign in at upbit.com → My Page → \
         Open API management → find the key {key} (expires {expire_at}) → Delete, and confirm \
         with your two-factor authentication. respond keeps containing meanwhile and verifies the \
         deletion by polling with the old key.",
        instructions_local: "업비트에는 API 키를 삭제하는 API가 없습니다. 지금 직접 삭제하세요: upbit.com 로그인 → 마이페이지 → \
         Open API 관리 → {key} 키 (만료 {expire_at}) → 삭제, 2단계 인증으로 확인. respond는 그동안 \
         주문 취소 등 확산 방지를 계속하고, 이전 키로 조회하여 삭제를 확인합니다.",
        api_call: "",
    },
    texts: ExchangeTexts {
        checklist_en: &[],
        ticket_en: &[],
    },
    parse_symbol,
    market_of,
    default_playbook: "leak",
    playbook_aliases: &["upbit-leak"],
};

/// The market of an Upbit symbol as the exchange sends it (`KRW-BTC`: quote first). A symbol
/// without a dash (never sent by Upbit) is its own base and quote.
pub fn market(symbol: &str) -> Market {
    match symbol.split_once('-') {
        Some((q, b)) => Market::new(symbol, b, q),
        None => Market::new(symbol, symbol, symbol),
    }
}

/// A symbol from elsewhere (a bot log, a playbook argument): `krw-btc` is read as `KRW-BTC`;
/// a symbol without separator (`BTCUSDT`) is another exchange's.
fn parse_symbol(s: &str) -> std::result::Result<Market, SymbolError> {
    let m = s.trim();
    if m.contains('-') {
        return Ok(market(&m.to_ascii_uppercase()));
    }
    if !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(SymbolError::Foreign(format!(
            "market `{m}` is a Binance-style symbol; Upbit markets look like KRW-BTC"
        )));
    }
    Err(SymbolError::Invalid(format!(
        "market `{m}` is not a market code like KRW-BTC"
    )))
}

fn market_of(base: &str, quote: &str) -> Market {
    Market::new(format!("{quote}-{base}"), base, quote)
}

/// KRW has no minor unit; others are not Upbit's to say.
fn quote_minor_units(currency: &str) -> Option<u32> {
    currency.eq_ignore_ascii_case("KRW").then_some(0)
}

fn connect(cfg: &ConnectConfig, keys: &[KeyMaterial]) -> Result<Vec<Arc<dyn Exchange>>> {
    let primary = |first: &KeyMaterial| {
        let mut c = UpbitConfig::new(first.access_key.clone(), first.secret_key.clone());
        c.base_url = cfg.base_url.clone();
        c.recorder = cfg.recorder.clone();
        UpbitClient::new(c)
    };
    crate::exchange::registry::primary_and_others(&DESCRIPTOR, keys, primary, |p, k| {
        p.with_key(k.access_key.clone(), k.secret_key.clone())
    })
}

fn mock_facade() -> Arc<dyn crate::mock::Facade> {
    Arc::new(crate::mock::upbit::Upbit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_quote_first() {
        let m = market("KRW-BTC");
        assert_eq!((m.base.as_str(), m.quote.as_str()), ("BTC", "KRW"));
        assert_eq!(parse_symbol(" krw-eth ").unwrap().as_str(), "KRW-ETH");
        assert!(matches!(
            parse_symbol("BTCUSDT"),
            Err(SymbolError::Foreign(_))
        ));
        assert!(matches!(
            parse_symbol("BTC KRW"),
            Err(SymbolError::Invalid(_))
        ));
        assert_eq!(market_of("ETH", "KRW").as_str(), "KRW-ETH");
        assert_eq!(quote_minor_units("krw"), Some(0));
        assert_eq!(quote_minor_units("BTC"), None);
    }

    #[test]
    fn revoke_instructions_name_the_key_and_keep_the_expiry_slot() {
        let (en, ko) = DESCRIPTOR.revoke.instructions("abcd...wxyz");
        assert!(
            en.contains("abcd...wxyz") && en.contains("{expire_at}"),
            "{en}"
        );
        assert!(
            ko.contains("abcd...wxyz") && ko.contains("마이페이지"),
            "{ko}"
        );
    }
}
