//! The exchanges `respond` speaks: one [`Descriptor`] per exchange, and the only place that
//! lists them.
//!
//! A descriptor holds everything shared code needs to know about an exchange without naming
//! it: how to connect, which environment variables hold its keys, how to decode its raw
//! responses offline, its mock façade, its scope vocabulary, its home zone and language, its
//! quote currencies' minor units, its IP-allowlist limit, how a key is revoked, and how its
//! market symbols are written. Adding an exchange is one folder under `src/exchange/` with a
//! `DESCRIPTOR`, one folder under `src/mock/` for its façade, and two lines here: the module
//! and its entry in [`all`].

use std::sync::Arc;

use super::replay::{DecodeContext, DecodeError, Decoded};
use super::{ErrorKind, Exchange, LocalZone, Market, Result, ScopeClass};
use crate::rundir::{RawSidecar, RunDir};
use crate::secret::Secret;

// The adapters, one folder each. Declared here so that this file is the one list of them.
#[path = "binance/mod.rs"]
pub mod binance;
#[path = "bybit/mod.rs"]
pub mod bybit;
#[path = "coinbase/mod.rs"]
pub mod coinbase;
#[path = "kucoin/mod.rs"]
pub mod kucoin;
#[path = "upbit/mod.rs"]
pub mod upbit;

/// Re-exports of the adapter modules under `crate::exchange::`.
pub mod adapters {
    pub use super::binance;
    pub use super::bybit;
    pub use super::coinbase;
    pub use super::kucoin;
    pub use super::upbit;
}

/// The class of a scope name of the exchange called `exchange` ([`Descriptor::scope_class`]),
/// or what the name suggests when the exchange is not registered.
pub fn scope_class(exchange: &str, name: &str) -> ScopeClass {
    match get(exchange) {
        Some(d) => d.scope_class(name),
        None => ScopeClass::guess(name),
    }
}

/// Every registered exchange, in the order `--exchange` lists them.
pub fn all() -> &'static [&'static Descriptor] {
    &[
        &upbit::DESCRIPTOR,
        &binance::DESCRIPTOR,
        &bybit::DESCRIPTOR,
        &coinbase::DESCRIPTOR,
        &kucoin::DESCRIPTOR,
    ]
}

/// The exchange registered under `name` (case-insensitive).
pub fn get(name: &str) -> Option<&'static Descriptor> {
    all()
        .iter()
        .copied()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

/// The registered names, for `--exchange` and error messages.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|d| d.name).collect()
}

/// One credential an exchange's keys consist of, read from `<ENV_PREFIX>_<suffix>` (and
/// `<ENV_PREFIX>_READONLY_<suffix>` for the read-only key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialField {
    /// `ACCESS_KEY`, `SECRET_KEY`, `PASSPHRASE`.
    pub suffix: &'static str,
    /// Never printed, never logged.
    pub secret: bool,
}

/// One key's credentials, as [`Descriptor::connect`] takes them.
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    pub access_key: String,
    pub secret_key: Secret,
    /// Exchanges whose keys carry a third part (a passphrase).
    pub passphrase: Option<Secret>,
}

/// What every adapter's `connect` returns: the client `primary` makes from the first key,
/// then one client per further key, made by `with_key` from the primary so that all of them
/// share its rate budget and recorder. No key at all is a configuration error naming the
/// exchange's variables.
pub fn primary_and_others<C: super::Exchange + 'static>(
    exchange: &Descriptor,
    keys: &[KeyMaterial],
    primary: impl FnOnce(&KeyMaterial) -> super::Result<C>,
    with_key: impl Fn(&C, &KeyMaterial) -> super::Result<C>,
) -> super::Result<Vec<std::sync::Arc<dyn super::Exchange>>> {
    let Some((first, others)) = keys.split_first() else {
        let prefix = exchange.env_prefix;
        return Err(super::Error::Config(format!(
            "no {} key was given ({prefix}_ACCESS_KEY, {prefix}_SECRET_KEY)",
            exchange.display
        )));
    };
    let primary = primary(first)?;
    let mut out: Vec<std::sync::Arc<dyn super::Exchange>> = Vec::with_capacity(keys.len());
    for k in others {
        out.push(std::sync::Arc::new(with_key(&primary, k)?));
    }
    out.insert(0, std::sync::Arc::new(primary));
    Ok(out)
}

/// A parent account's key, for exchanges where a parent account can delete a sub-account's
/// key by API (`<ENV_PREFIX>_MASTER_ACCESS_KEY`, `…_MASTER_SECRET_KEY`, `…_SUB_ACCOUNT`).
#[derive(Debug, Clone)]
pub struct MasterKey {
    pub key: KeyMaterial,
    /// The sub-account the leaked key belongs to, as the parent account names it (an email
    /// on some exchanges); `None` when not given.
    pub sub_account: Option<String>,
}

/// How to reach an exchange.
#[derive(Debug, Clone, Default)]
pub struct ConnectConfig {
    /// `--api-url`; `None` = the exchange's production URL. https anywhere, plain http only to
    /// loopback ([`super::http::validate_base_url`]).
    pub base_url: Option<String>,
    /// Where raw responses are recorded; `None` records nothing.
    pub recorder: Option<RunDir>,
    /// A parent account's key, when the user gave one: adapters that can delete the leaked
    /// key through it report [`super::Capabilities::revoke_key_by_api`].
    pub master: Option<MasterKey>,
}

/// One of an exchange's permission scopes, for the checklist and the permission probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeInfo {
    /// The exchange's own name for it.
    pub name: &'static str,
    pub class: ScopeClass,
    /// A short label in English (`Make orders`).
    pub label_en: &'static str,
    /// The same in the exchange's home language (English again where that is English).
    pub label_local: &'static str,
    /// What a trading bot needs by default.
    pub bot_default: bool,
}

/// The exchange's home zone and language: what the reports show beside UTC and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale {
    pub zone: LocalZone,
    /// ISO 639-1 code of the home language (`en`, `ko`); reports and the checklist add a
    /// block in it when it is not English and a text exists for it.
    pub language: &'static str,
}

/// What an exchange's users need told in the exchange's own terms (English), beyond what
/// the shared texts say: the checklist lists them in a section of their own, the support
/// ticket after its requests. Empty where the shared texts say it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExchangeTexts {
    pub checklist_en: &'static [&'static str],
    pub ticket_en: &'static [&'static str],
}

/// How a leaked key is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokeSupport {
    /// The exchange has an API to delete a key.
    pub by_api: bool,
    /// What to do by hand, English: `{key}` is replaced by the masked key, `{expire_at}` (left
    /// for [`super::Capabilities::revoke_instructions`]) by its expiry.
    pub instructions_en: &'static str,
    /// The same in the home language (empty = English only).
    pub instructions_local: &'static str,
    /// The call that deletes a key by API (`POST /v5/user/delete-api`), named by the checklist
    /// when `respond` deleted the key; empty where there is none.
    pub api_call: &'static str,
}

impl RevokeSupport {
    /// The instructions (English, home language) for one key, `{expire_at}` kept.
    pub fn instructions(&self, key_masked: &str) -> (String, String) {
        (
            self.instructions_en.replace("{key}", key_masked),
            self.instructions_local.replace("{key}", key_masked),
        )
    }
}

/// Why a string is not one of an exchange's market symbols.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// Written the way another exchange writes symbols: a file of another exchange.
    #[error("{0}")]
    Foreign(String),
    /// Not a market symbol at all.
    #[error("{0}")]
    Invalid(String),
}

/// Reads a saved error answer (see [`Descriptor::error_of`]).
pub type ErrorOfFn = fn(&RawSidecar, &[u8]) -> Option<(String, ErrorKind)>;

/// Decodes one saved answer (see [`Descriptor::decode_raw`]).
pub type DecodeRawFn =
    fn(&RawSidecar, &[u8], &DecodeContext<'_>) -> std::result::Result<Decoded, DecodeError>;

/// Connects one adapter per key (see [`Descriptor::connect`]).
pub type ConnectFn = fn(&ConnectConfig, &[KeyMaterial]) -> Result<Vec<Arc<dyn Exchange>>>;

/// The exchange's mock façade (its REST API over the exchange-neutral venue).
pub type MockHook = fn() -> Arc<dyn crate::mock::Facade>;

/// Everything shared code knows about one exchange.
pub struct Descriptor {
    /// The registry name (`--exchange NAME`, `Capabilities::name`, bundle names).
    pub name: &'static str,
    /// How people write it.
    pub display: &'static str,
    /// Prefix of the credential environment variables (`<PREFIX>_ACCESS_KEY`).
    pub env_prefix: &'static str,
    pub credential_fields: &'static [CredentialField],
    /// The production API.
    pub default_base_url: &'static str,
    /// One adapter per key, all sharing one connection pool, rate limiter and recorder (the
    /// budgets are the account's and the IP's, not the key's). The first key is the one under
    /// investigation.
    pub connect: ConnectFn,
    /// Decodes one saved raw response for the offline rebuild ([`super::replay`]); the same
    /// parsers the live adapter uses, with the markets listed by earlier answers.
    pub decode_raw: DecodeRawFn,
    /// The exchange's error code and its kind in a saved error answer (its sidecar: the call
    /// and the status; its body), as the live adapter classifies it; `None` when the body is
    /// not an error the exchange wrote.
    pub error_of: ErrorOfFn,
    /// What to do about a key refused from its very first request, by the refusal's kind and
    /// code.
    pub never_accepted_advice: fn(ErrorKind, &str) -> &'static str,
    /// The mock exchange a drill runs against: the façade of `src/mock/<name>/` (`None` while
    /// an exchange's façade is not built yet: its drills and `mock serve` say so).
    pub mock: Option<MockHook>,
    /// The exchange's permission scopes.
    pub scopes: &'static [ScopeInfo],
    pub locale: Locale,
    /// Minor units of a quote currency as the exchange settles it (`Some(0)`: whole units
    /// only), `None` when unknown (amounts are then shown with up to 8 decimals).
    pub quote_minor_units: fn(&str) -> Option<u32>,
    /// Most IPs one key's allowlist may hold.
    pub ip_allowlist_limit: Option<u32>,
    pub revoke: RevokeSupport,
    /// Checklist and ticket texts in the exchange's own terms.
    pub texts: ExchangeTexts,
    /// A native symbol as a [`Market`], or why it is not one of this exchange's.
    pub parse_symbol: fn(&str) -> std::result::Result<Market, SymbolError>,
    /// The market of a (base, quote) pair, in this exchange's symbol format.
    pub market_of: fn(base: &str, quote: &str) -> Market,
    /// The embedded playbook `respond leak` runs by default.
    pub default_playbook: &'static str,
    /// Other names that resolve to `default_playbook` (names users already call it by).
    pub playbook_aliases: &'static [&'static str],
}

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descriptor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Descriptor {
    /// The class of a scope name: the exchange's own, else what the name suggests
    /// ([`ScopeClass::guess`]).
    pub fn scope_class(&self, name: &str) -> ScopeClass {
        self.scopes
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.class)
            .unwrap_or_else(|| ScopeClass::guess(name))
    }

    /// Whether amounts in `currency` have no minor unit.
    pub fn whole_units(&self, currency: &str) -> bool {
        (self.quote_minor_units)(currency.trim()) == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_descriptor_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for d in all() {
            assert!(seen.insert(d.name), "{} registered twice", d.name);
            assert_eq!(get(&d.name.to_uppercase()).map(|g| g.name), Some(d.name));
            assert!(!d.credential_fields.is_empty());
            assert!(d.scopes.iter().any(|s| s.bot_default));
            assert!(
                crate::playbook::embedded_named(d.default_playbook).is_some(),
                "{}: playbook {} is not embedded",
                d.name,
                d.default_playbook
            );
            for a in d.playbook_aliases {
                let pb = crate::playbook::embedded_named(a).map(|p| p.name);
                assert_eq!(pb, Some(d.default_playbook), "alias {a}");
            }
            // A quote every exchange lists: symbols without a separator split only at a
            // quote the exchange knows.
            let m = (d.market_of)("BTC", "USDT");
            assert_eq!((m.base.as_str(), m.quote.as_str()), ("BTC", "USDT"));
            assert_eq!((d.parse_symbol)(m.as_str()).as_ref(), Ok(&m));
        }
        assert!(get("no-such-exchange").is_none());
    }
}
