//! Scenario files: the one place that calls `serde_yaml` for the mock.
//!
//! A scenario describes the world the venue starts in (accounts, keys, markets, withdrawal
//! allowlists) and the generators that fill its past (a bot profile, an attack profile, the
//! user's own manual trades), in neutral terms: markets by base asset, prices and amounts in
//! the scenario's declared `quote` currency, keys by permission class. The venue translates it
//! into a façade's quote currency when it starts ([`crate::mock::venue::translate`]).
//!
//! Older files name markets by a `QUOTE-BASE` code and amounts as `*_krw`; they keep loading
//! (their quote is the one of their codes), and the two spellings may be mixed.
//!
//! Built-ins live in `scenarios/*.yaml` and are embedded with `include_str!`; any other
//! argument is read as a file path. Parse errors and semantic errors both come back as
//! [`ScenarioError`] displaying `file:line:column: message`, so a bad file is rejected before
//! anything starts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::mock::venue::keys::{KeyType, Permission};

/// Built-in scenarios: (name, YAML text).
pub const BUILTINS: &[(&str, &str)] = &[
    ("blank", include_str!("../../../scenarios/blank.yaml")),
    (
        "pump-and-dump",
        include_str!("../../../scenarios/pump-and-dump.yaml"),
    ),
    ("contra", include_str!("../../../scenarios/contra.yaml")),
    (
        "withdrawal",
        include_str!("../../../scenarios/withdrawal.yaml"),
    ),
    ("noisy", include_str!("../../../scenarios/noisy.yaml")),
    ("copycat", include_str!("../../../scenarios/copycat.yaml")),
    (
        "idle-bids",
        include_str!("../../../scenarios/idle-bids.yaml"),
    ),
    (
        "slow-pump",
        include_str!("../../../scenarios/slow-pump.yaml"),
    ),
    ("repost", include_str!("../../../scenarios/repost.yaml")),
    (
        "pump-user-trades",
        include_str!("../../../scenarios/pump-user-trades.yaml"),
    ),
    ("log-cut", include_str!("../../../scenarios/log-cut.yaml")),
    (
        "withdraw-only",
        include_str!("../../../scenarios/withdraw-only.yaml"),
    ),
    (
        "legit-zoo",
        include_str!("../../../scenarios/legit-zoo.yaml"),
    ),
];

/// Names of the built-in scenarios.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}

/// A scenario that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot read scenario file {file}: {source}; built-in scenarios are: {builtins}")]
    Read {
        file: String,
        source: std::io::Error,
        builtins: String,
    },
}

/// A loaded, validated scenario with its seed resolved, markets named by base asset and
/// amounts in [`Scenario::quote`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: u64,
    /// Fixed "now" for reproducible history; default: the real time rounded down to the minute.
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
    /// The currency prices and amounts are written in (required unless the markets are given
    /// by `QUOTE-BASE` code, whose quote it then is).
    #[serde(default)]
    pub quote: String,
    /// The victim's local time zone (`+09:00`), for attacks at night.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// Trading fee rate (0.0005 = 0.05 %).
    #[serde(default = "default_fee")]
    pub fee: Decimal,
    pub markets: Vec<MarketSpec>,
    pub accounts: Vec<AccountSpec>,
    pub keys: Vec<KeySpec>,
    #[serde(default)]
    pub withdraw_addresses: Vec<AddressSpec>,
    #[serde(default)]
    pub bot: Option<BotSpec>,
    #[serde(default)]
    pub attack: Option<AttackSpec>,
    #[serde(default)]
    pub manual: Option<ManualSpec>,
    #[serde(default)]
    pub faults: Vec<crate::mock::venue::faults::FaultRule>,
    /// Where the scenario came from (built-in name or path), for messages.
    #[serde(skip)]
    pub source: String,
    /// The file's text, to point at a line when a façade refuses something later.
    #[serde(skip)]
    pub text: Arc<str>,
}

fn default_fee() -> Decimal {
    Decimal::new(5, 4)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    /// The base asset (`BTC`); the market trades it against the scenario's quote.
    #[serde(default)]
    pub base: String,
    /// Older files: `QUOTE-BASE` (`KRW-BTC`); read into `base` and the scenario's quote.
    #[serde(default)]
    pub code: Option<String>,
    /// Display name (English).
    #[serde(default, alias = "english_name")]
    pub name: String,
    /// Display names by language code: `{ ko: 비트코인 }`.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// Older files: the Korean name (read into `names.ko`).
    #[serde(default)]
    pub korean_name: Option<String>,
    /// Reference price at "now", in the scenario's quote.
    pub price: Decimal,
    /// Daily volatility of the reference path (0.03 = 3 %).
    #[serde(default = "default_vol")]
    pub volatility: f64,
    #[serde(default)]
    pub depth: DepthSpec,
}

fn default_vol() -> f64 {
    0.03
}

/// The liquidity provider's book: `levels` price levels per side, `step_pct` apart, each
/// worth `level_quote` (default: 4,000 times the façade's minimum order value).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSpec {
    #[serde(default = "default_levels")]
    pub levels: u32,
    #[serde(default = "default_step")]
    pub step_pct: Decimal,
    #[serde(default, alias = "level_krw")]
    pub level_quote: Option<Decimal>,
}

fn default_levels() -> u32 {
    15
}
fn default_step() -> Decimal {
    Decimal::new(1, 1)
}

impl Default for DepthSpec {
    fn default() -> Self {
        DepthSpec {
            levels: default_levels(),
            step_pct: default_step(),
            level_quote: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub name: String,
    /// Balances by asset; the scenario's quote currency is translated with the prices.
    #[serde(default)]
    pub balances: BTreeMap<String, Decimal>,
    /// The account's login email, for exchanges that name sub-accounts by it (default
    /// `<name>@mock.invalid`).
    #[serde(default)]
    pub email: Option<String>,
    /// The account that manages this one as a sub-account (it may delete this account's keys
    /// where the exchange has an API for that).
    #[serde(default)]
    pub master: Option<String>,
}

impl AccountSpec {
    /// The login email: the given one, else `<name>@mock.invalid`.
    pub fn email(&self) -> String {
        self.email
            .clone()
            .unwrap_or_else(|| format!("{}@mock.invalid", self.name))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub account: String,
    pub label: String,
    /// Generated from the seed when absent.
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub passphrase: Option<String>,
    /// `hmac` (default: a shared secret; on a façade whose exchange issues no HMAC keys, its
    /// own first kind), `ed25519` (a key pair: `secret_key`, when given, is the private key as
    /// PKCS#8 PEM) or `es256` (a P-256 pair: SEC1 PEM). Only for façades whose exchange
    /// issues that kind.
    #[serde(default)]
    pub key_type: KeyType,
    /// What the key may do, whatever the exchange calls it: `read`, `trade`, `withdraw`,
    /// `transfer`, `deposit`. The façade grants its native scopes for each.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Native scope names of the façade (older files); checked against the façade.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// Days until the key expires (negative: already expired).
    #[serde(default = "default_expiry")]
    pub expires_in_days: i64,
}

fn default_expiry() -> i64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressSpec {
    pub account: String,
    pub currency: String,
    #[serde(default)]
    pub net_type: Option<String>,
    pub address: String,
    /// How long before "now" the address was added to the allowlist.
    #[serde(default = "default_registered")]
    pub registered_minutes_ago: i64,
    /// Past withdrawals already sent to this address (0: never used).
    #[serde(default)]
    pub past_withdrawals: u32,
}

fn default_registered() -> i64 {
    200 * 24 * 60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotSpec {
    pub account: String,
    /// Label of the key the bot trades with.
    pub key: String,
    /// Base assets (or, in older files, `QUOTE-BASE` codes).
    pub markets: Vec<String>,
    #[serde(default = "default_days")]
    pub days: u32,
    #[serde(default = "default_per_day")]
    pub orders_per_day: u32,
    /// Order size range in the quote: [min, max].
    #[serde(alias = "order_krw")]
    pub order_quote: [Decimal; 2],
    /// Order types the bot uses, by their bot-log names: `limit`, `price` (market buy by
    /// quote amount), `market` (market sell by volume).
    #[serde(default = "default_ord_types")]
    pub ord_types: Vec<String>,
    /// Identifier pattern; `{n}` is the order's sequence number.
    #[serde(default = "default_ident")]
    pub identifier: String,
    /// Fraction of limit orders that end cancelled.
    #[serde(default = "default_cancel_rate")]
    pub cancel_rate: f64,
    /// Limit orders still open at "now".
    #[serde(default)]
    pub open_orders: u32,
    /// The bot's log was exported this long before "now": its rows stop there while the bot
    /// keeps trading (a log exported an hour ago).
    #[serde(default)]
    pub log_ends_minutes_before_now: Option<i64>,
    /// The bot restarted with another identifier pattern (its counter starts again at 1).
    #[serde(default)]
    pub restart: Option<RestartSpec>,
    /// Bursts of orders in quick succession (a DCA bot buying in steps).
    #[serde(default)]
    pub bursts: Vec<BurstSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    pub minutes_before_now: i64,
    /// The new identifier pattern; `{n}` counts again from 1.
    pub identifier: String,
}

/// `orders` bot orders `interval_secs` apart from `minutes_before_now`, in one market and
/// side, sized within the bot's range, at the market's price.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    pub minutes_before_now: i64,
    /// Base asset (or `QUOTE-BASE` code).
    pub market: String,
    pub orders: u32,
    #[serde(default = "default_burst_interval")]
    pub interval_secs: i64,
    /// `buy` or `sell`.
    #[serde(default = "default_buy")]
    pub side: String,
    /// `limit` or `price` (a buy by quote amount) / `market` (a sell by volume).
    #[serde(default = "default_limit")]
    pub ord_type: String,
}

fn default_burst_interval() -> i64 {
    4
}
fn default_buy() -> String {
    "buy".into()
}
fn default_limit() -> String {
    "limit".into()
}

fn default_days() -> u32 {
    30
}
fn default_per_day() -> u32 {
    30
}
fn default_ord_types() -> Vec<String> {
    vec!["limit".into()]
}
fn default_ident() -> String {
    "bot-{n}".into()
}
fn default_cancel_rate() -> f64 {
    0.15
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackSpec {
    /// Label of the leaked key (owned by the victim).
    pub key: String,
    pub attacker_account: String,
    /// The attack starts this long before "now" ...
    #[serde(default = "default_attack_start")]
    pub start_minutes_before_now: i64,
    /// ... or, when set, at the latest 03:00 victim's time (`utc_offset`) at least that long
    /// before "now". Older files: `night_kst` (03:00 at +09:00).
    #[serde(default)]
    pub night: bool,
    #[serde(default)]
    pub night_kst: bool,
    /// Assets of the victim sold at market first.
    #[serde(default)]
    pub liquidate: Vec<String>,
    #[serde(default = "default_liq_fraction")]
    pub liquidate_fraction: Decimal,
    #[serde(default)]
    pub pump: Option<PumpSpec>,
    #[serde(default)]
    pub contra: Option<ContraSpec>,
    #[serde(default)]
    pub withdrawals: Vec<WithdrawalAttackSpec>,
    /// Limit orders the attacker leaves open (the cancel step must find them).
    #[serde(default)]
    pub open_orders: u32,
    /// One-cancels-the-other sell pairs the attacker leaves open on the victim's first held
    /// market: a limit leg 5% above the reference and a stop-limit leg 5% below (stop) and 6%
    /// below (limit). Only façades with order lists take it
    /// ([`crate::mock::Facade::order_lists`]); the others refuse the scenario.
    #[serde(default)]
    pub open_oco: u32,
    #[serde(default)]
    pub live: LiveSpec,
    /// The identifiers the attacker sends, copying the bot's: `{n}` continues the bot's
    /// counter past its last order (`grid-{n}`). Without it the attacker sends none.
    #[serde(default)]
    pub identifier: Option<String>,
    /// Order sizes copied from the bot, in the quote: the liquidation is split into orders of
    /// this size (at most 20 per asset) and each pump buy is this size.
    #[serde(default, alias = "order_krw")]
    pub order_quote: Option<[Decimal; 2]>,
    /// Limit bids far above the market, spending the idle quote balance.
    #[serde(default)]
    pub bids: Option<BidsSpec>,
    /// Cancel the bot's resting bids and re-post them, under the bot's next identifiers, far
    /// above the market.
    #[serde(default)]
    pub repost: Option<RepostSpec>,
}

/// Limit bids at `multiple` (a range) times the reference. A share `fair_fill_share` of them
/// fill against the liquidity provider's best ask (near the fair price); the others against
/// the attacker's own ask a little below the bid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidsSpec {
    /// Base asset (or `QUOTE-BASE` code).
    pub market: String,
    pub orders: u32,
    /// [min, max] multiple of the reference price.
    pub multiple: [Decimal; 2],
    #[serde(default = "default_fair_share")]
    pub fair_fill_share: f64,
    /// Share of the quote balance the bids may spend.
    #[serde(default = "default_spend")]
    pub spend_fraction: Decimal,
    #[serde(default = "default_interval")]
    pub interval_secs: i64,
}

/// Re-post up to `orders` of the bot's resting bids at `multiple` times the reference (fills
/// as for [`BidsSpec`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepostSpec {
    pub orders: u32,
    pub multiple: Decimal,
    #[serde(default = "default_fair_share")]
    pub fair_fill_share: f64,
    #[serde(default = "default_interval")]
    pub interval_secs: i64,
}

fn default_fair_share() -> f64 {
    0.75
}
fn default_spend() -> Decimal {
    Decimal::new(9, 1)
}

fn default_attack_start() -> i64 {
    50
}
fn default_liq_fraction() -> Decimal {
    Decimal::new(9, 1)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpSpec {
    /// Base asset (or `QUOTE-BASE` code).
    pub market: String,
    /// Final fill price as a multiple of the reference price.
    pub multiple: Decimal,
    pub orders: u32,
    #[serde(default = "default_interval")]
    pub interval_secs: i64,
    /// `price` (market buys by quote amount, the default) or `limit` (limit buys at the
    /// ladder's prices).
    #[serde(default = "default_price")]
    pub ord_type: String,
}

fn default_interval() -> i64 {
    30
}
fn default_price() -> String {
    "price".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContraSpec {
    /// Base asset (or `QUOTE-BASE` code).
    pub market: String,
    pub round_trips: u32,
    /// Loss per round trip, percent of its size.
    pub loss_pct: Decimal,
    /// Size of a round trip in the quote.
    #[serde(alias = "size_krw")]
    pub size_quote: Decimal,
    #[serde(default = "default_interval")]
    pub interval_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalAttackSpec {
    pub currency: String,
    pub amount: Decimal,
    /// Must name an address in `withdraw_addresses`.
    pub address: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LiveSpec {
    /// Keep trading with the leaked key until it is revoked.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_min_ms")]
    pub min_interval_ms: u64,
    #[serde(default = "default_max_ms")]
    pub max_interval_ms: u64,
    /// Market the live attacker buys (default: the pump market).
    #[serde(default)]
    pub market: Option<String>,
    /// Size of each order in the quote (default: 4 times the façade's minimum order value).
    #[serde(default, alias = "order_krw")]
    pub order_quote: Option<Decimal>,
}

fn default_min_ms() -> u64 {
    500
}
fn default_max_ms() -> u64 {
    2000
}

/// The user's own trades in the web UI: no identifier, unusual markets and sizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualSpec {
    pub account: String,
    /// Base assets (or `QUOTE-BASE` codes).
    pub markets: Vec<String>,
    pub orders: u32,
    #[serde(alias = "order_krw")]
    pub order_quote: [Decimal; 2],
    /// Manual orders placed in the last day (the rest spread over the bot's history).
    #[serde(default = "default_recent")]
    pub recent: u32,
    /// The user's own trades around the attack, each placed as given.
    #[serde(default)]
    pub incident: Vec<ManualTradeSpec>,
    /// The user's own withdrawals around the attack (e.g. to their long-used cold wallet).
    #[serde(default)]
    pub withdrawals: Vec<ManualWithdrawalSpec>,
}

/// One trade of the user's, `minutes_after_attack` after the attack starts (negative:
/// before it; without an attack, before "now").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualTradeSpec {
    pub minutes_after_attack: Decimal,
    /// Base asset (or `QUOTE-BASE` code).
    pub market: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `limit` or `market`.
    #[serde(default = "default_limit")]
    pub ord_type: String,
    /// Size in the quote.
    #[serde(alias = "krw")]
    pub quote: Decimal,
    /// `false`: a limit order left resting, unfilled.
    #[serde(default = "default_true")]
    pub fill: bool,
    /// A limit price this many percent from the reference (positive: above).
    #[serde(default)]
    pub price_pct: Decimal,
}

fn default_true() -> bool {
    true
}

/// One withdrawal of the user's to an allowlisted address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualWithdrawalSpec {
    pub minutes_after_attack: i64,
    pub currency: String,
    pub amount: Decimal,
    /// Must name an address in `withdraw_addresses`.
    pub address: String,
}

fn default_recent() -> u32 {
    3
}

impl Scenario {
    /// An error pointing at the first line of the file that contains `needle`.
    pub fn error_at(&self, needle: &str, message: impl Into<String>) -> ScenarioError {
        let (line, column) = locate(&self.text, needle);
        ScenarioError::Invalid {
            file: self.source.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The victim's local offset (+00:00 when the file gives none).
    pub fn local_offset(&self) -> FixedOffset {
        self.utc_offset
            .as_deref()
            .and_then(parse_offset)
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
    }
}

/// `+09:00`, `-05:30`, `Z`.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    if s == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if (0..=14).contains(&h) && (0..60).contains(&m) {
        FixedOffset::east_opt(sign * (h * 3600 + m * 60))
    } else {
        None
    }
}

/// The offset older files' `night_kst` stands for.
const LEGACY_NIGHT_OFFSET: &str = "+09:00";

/// Loads a built-in scenario by name, or a YAML file by path. `seed` overrides the file's.
pub fn load(name_or_path: &str, seed: Option<u64>) -> Result<Scenario, ScenarioError> {
    let (file, text) = match BUILTINS.iter().find(|(n, _)| *n == name_or_path) {
        Some((n, t)) => (format!("<builtin>/scenarios/{n}.yaml"), t.to_string()),
        None => {
            let text = std::fs::read_to_string(Path::new(name_or_path)).map_err(|source| {
                ScenarioError::Read {
                    file: name_or_path.to_string(),
                    source,
                    builtins: builtin_names().join(", "),
                }
            })?;
            (name_or_path.to_string(), text)
        }
    };
    parse(&file, &text, seed)
}

/// A synthetic victim for scale runs (benchmarks, paging and containment tests): two
/// markets (KRW-BTC, KRW-XRP) with ample balances and a trading key `bot` (and a read-only
/// key `readonly` when asked), whose bot placed `orders_per_day` orders a day for `days` days
/// and left `open_orders` resting. [`SyntheticVictim::yaml`] writes it as scenario text.
#[derive(Debug, Clone)]
pub struct SyntheticVictim<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub seed: u64,
    pub days: u32,
    pub orders_per_day: usize,
    pub open_orders: usize,
    pub readonly_key: bool,
}

impl SyntheticVictim<'_> {
    /// The scenario text (parse it with [`parse`]).
    pub fn yaml(&self) -> String {
        let Self {
            name,
            description,
            seed,
            days,
            orders_per_day,
            open_orders,
            readonly_key,
        } = self;
        let readonly = if *readonly_key {
            "  - { account: victim, label: readonly, permissions: [read] }\n"
        } else {
            ""
        };
        format!(
            r#"name: {name}
description: {description}
seed: {seed}
markets:
  - {{ code: KRW-BTC, korean_name: 비트코인, english_name: Bitcoin, price: "135000000", volatility: 0.025, depth: {{ levels: 15, step_pct: "0.05", level_krw: "40000000" }} }}
  - {{ code: KRW-XRP, korean_name: 리플, english_name: XRP, price: "3100", volatility: 0.04, depth: {{ levels: 15, step_pct: "0.1", level_krw: "10000000" }} }}
accounts:
  - {{ name: victim, balances: {{ KRW: "100000000000", BTC: "1000", XRP: "100000000" }} }}
keys:
  - {{ account: victim, label: bot, permissions: [read, trade] }}
{readonly}bot:
  account: victim
  key: bot
  markets: [KRW-BTC, KRW-XRP]
  days: {days}
  orders_per_day: {orders_per_day}
  order_krw: ["6000", "20000"]
  ord_types: [limit, price, market]
  open_orders: {open_orders}
"#
        )
    }
}

/// Parses and validates scenario text; `file` is used in error messages.
pub fn parse(file: &str, text: &str, seed: Option<u64>) -> Result<Scenario, ScenarioError> {
    let mut sc: Scenario = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ScenarioError::Invalid {
            file: file.to_string(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    if let Some(s) = seed {
        sc.seed = s;
    }
    sc.source = file.to_string();
    sc.text = Arc::from(text);
    normalize(&mut sc).map_err(|(needle, message)| sc.error_at(&needle, message))?;
    validate(&sc).map_err(|(needle, message)| sc.error_at(&needle, message))?;
    Ok(sc)
}

/// Finds the first occurrence of `needle` as 1-based line and column (1:1 if absent).
fn locate(text: &str, needle: &str) -> (usize, usize) {
    if needle.is_empty() {
        return (1, 1);
    }
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (i + 1, line[..c].chars().count() + 1);
        }
    }
    (1, 1)
}

/// An error: (text to locate in the file, message).
type Located = (String, String);

/// Reads the older spellings into the neutral ones: `code: QUOTE-BASE` into `base` and the
/// scenario's quote, market references by code into bases, `korean_name` into `names.ko`,
/// `night_kst` into `night` at +09:00.
fn normalize(sc: &mut Scenario) -> Result<(), Located> {
    let mut code_quote: Option<String> = None;
    for m in &mut sc.markets {
        if let Some(code) = m.code.take() {
            if !m.base.is_empty() {
                return Err((
                    code,
                    "a market has either `base` or `code`, not both".into(),
                ));
            }
            let Some((q, b)) = code
                .split_once('-')
                .filter(|(q, b)| !q.is_empty() && !b.is_empty())
            else {
                return Err((
                    code.clone(),
                    format!("market code `{code}` must look like QUOTE-BASE"),
                ));
            };
            match &code_quote {
                Some(cq) if cq != q => {
                    return Err((
                        code.clone(),
                        format!("market `{code}`: every market must share one quote ({cq})"),
                    ))
                }
                _ => code_quote = Some(q.to_string()),
            }
            m.base = b.to_string();
        }
        if m.base.is_empty() {
            return Err(("markets".into(), "every market needs a `base`".into()));
        }
        if let Some(k) = m.korean_name.take() {
            m.names.entry("ko".into()).or_insert(k);
        }
        if m.name.is_empty() {
            m.name = m.base.clone();
        }
    }
    match (&code_quote, sc.quote.is_empty()) {
        (Some(q), true) => sc.quote = q.clone(),
        (Some(q), false) if *q != sc.quote => {
            return Err((
                q.clone(),
                format!(
                    "market codes are quoted in {q} but the scenario declares `quote: {}`",
                    sc.quote
                ),
            ))
        }
        (None, true) => {
            return Err((
                "markets".into(),
                "declare the currency prices and amounts are written in with `quote:`".into(),
            ))
        }
        _ => {}
    }
    let quote = sc.quote.clone();
    let base_of = |r: &mut String| {
        if let Some(b) = r
            .strip_prefix(quote.as_str())
            .and_then(|x| x.strip_prefix('-'))
        {
            *r = b.to_string();
        }
    };
    if let Some(b) = &mut sc.bot {
        b.markets.iter_mut().for_each(base_of);
    }
    if let Some(b) = &mut sc.bot {
        for x in &mut b.bursts {
            base_of(&mut x.market);
        }
    }
    if let Some(m) = &mut sc.manual {
        m.markets.iter_mut().for_each(base_of);
        for t in &mut m.incident {
            base_of(&mut t.market);
        }
    }
    if let Some(a) = &mut sc.attack {
        if let Some(p) = &mut a.pump {
            base_of(&mut p.market);
        }
        if let Some(c) = &mut a.contra {
            base_of(&mut c.market);
        }
        if let Some(m) = &mut a.live.market {
            base_of(m);
        }
        if let Some(b) = &mut a.bids {
            base_of(&mut b.market);
        }
        if a.night_kst {
            if sc.utc_offset.is_some() {
                return Err((
                    "night_kst".into(),
                    "`night_kst` fixes the time zone: use `night` with `utc_offset` instead".into(),
                ));
            }
            a.night = true;
            a.night_kst = false;
            sc.utc_offset = Some(LEGACY_NIGHT_OFFSET.into());
        }
    }
    Ok(())
}

/// `buy` or `sell`.
fn side_of(s: &str, what: &str) -> Result<(), Located> {
    if s == "buy" || s == "sell" {
        Ok(())
    } else {
        Err((
            s.to_string(),
            format!("{what}: side `{s}` must be buy or sell"),
        ))
    }
}

/// Semantic checks.
fn validate(sc: &Scenario) -> Result<(), Located> {
    let market = |m: &str| -> Result<(), Located> {
        if sc.markets.iter().any(|x| x.base == m) {
            Ok(())
        } else {
            Err((
                m.to_string(),
                format!("unknown market `{m}`: add it under `markets`"),
            ))
        }
    };
    let account = |a: &str| -> Result<(), Located> {
        if sc.accounts.iter().any(|x| x.name == a) {
            Ok(())
        } else {
            Err((
                a.to_string(),
                format!("unknown account `{a}`: add it under `accounts`"),
            ))
        }
    };
    let key = |l: &str| -> Result<(), Located> {
        if sc.keys.iter().any(|k| k.label == l) {
            Ok(())
        } else {
            Err((l.to_string(), format!("unknown key label `{l}`")))
        }
    };
    if sc.markets.is_empty() {
        return Err((
            "markets".into(),
            "a scenario needs at least one market".into(),
        ));
    }
    if let Some(o) = &sc.utc_offset {
        if parse_offset(o).is_none() {
            return Err((o.clone(), format!("utc_offset `{o}` must look like +09:00")));
        }
    }
    let mut bases = std::collections::HashSet::new();
    for m in &sc.markets {
        if m.base == sc.quote {
            return Err((
                m.base.clone(),
                format!("market {}: the base cannot be the quote", m.base),
            ));
        }
        if !bases.insert(m.base.as_str()) {
            return Err((m.base.clone(), format!("duplicate market {}", m.base)));
        }
        if m.price <= Decimal::ZERO {
            return Err((
                m.base.clone(),
                format!("market {}: price must be > 0", m.base),
            ));
        }
        if m.depth.levels == 0 || m.depth.step_pct <= Decimal::ZERO {
            return Err((
                m.base.clone(),
                format!("market {}: depth needs levels > 0 and step_pct > 0", m.base),
            ));
        }
        if m.depth.level_quote.is_some_and(|v| v <= Decimal::ZERO) {
            return Err((
                m.base.clone(),
                format!("market {}: depth.level_quote must be > 0", m.base),
            ));
        }
    }
    let mut emails = std::collections::HashSet::new();
    for a in &sc.accounts {
        if !emails.insert(a.email()) {
            return Err((
                a.name.clone(),
                format!("duplicate account email {}", a.email()),
            ));
        }
        if let Some(m) = &a.master {
            account(m)?;
            if *m == a.name {
                return Err((m.clone(), format!("account {m} cannot be its own master")));
            }
        }
    }
    let mut labels = std::collections::HashSet::new();
    for k in &sc.keys {
        account(&k.account)?;
        if k.key_type == KeyType::Ed25519 {
            if let Some(sk) = &k.secret_key {
                if crate::mock::venue::keys::ed25519_seed(sk).is_none() {
                    return Err((
                        k.label.clone(),
                        format!(
                            "key `{}`: an ed25519 secret_key must be an Ed25519 private key \
                             (PKCS#8 PEM, -----BEGIN PRIVATE KEY-----)",
                            k.label
                        ),
                    ));
                }
            }
        }
        if k.key_type == KeyType::Es256 {
            if let Some(sk) = &k.secret_key {
                if crate::mock::venue::keys::p256_scalar(sk).is_none() {
                    return Err((
                        k.label.clone(),
                        format!(
                            "key `{}`: an es256 secret_key must be a P-256 private key \
                             (SEC1 PEM with its public key, -----BEGIN EC PRIVATE KEY-----)",
                            k.label
                        ),
                    ));
                }
            }
        }
        if !labels.insert(k.label.clone()) {
            return Err((
                k.label.clone(),
                format!("duplicate key label `{}`", k.label),
            ));
        }
        for ip in &k.allowed_ips {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err((ip.clone(), format!("`{ip}` is not an IP address")));
            }
        }
        if k.allowed_ips.len() > 10 {
            return Err((k.label.clone(), "at most 10 allowed IPs per key".into()));
        }
    }
    for a in &sc.withdraw_addresses {
        account(&a.account)?;
    }
    if let Some(b) = &sc.bot {
        account(&b.account)?;
        key(&b.key)?;
        for m in &b.markets {
            market(m)?;
        }
        if b.order_quote[0] > b.order_quote[1] || b.order_quote[0] <= Decimal::ZERO {
            return Err((
                "order_".into(),
                "bot.order_quote must be [min, max] with 0 < min <= max".into(),
            ));
        }
        if b.markets.is_empty() {
            return Err((
                "bot".into(),
                "bot.markets must name at least one market".into(),
            ));
        }
        if b.ord_types.is_empty() {
            return Err((
                "ord_types".into(),
                "bot.ord_types must name at least one order type".into(),
            ));
        }
        if !(0.0..=1.0).contains(&b.cancel_rate) {
            return Err((
                "cancel_rate".into(),
                "bot.cancel_rate must be between 0 and 1".into(),
            ));
        }
        for t in &b.ord_types {
            if !["limit", "price", "market"].contains(&t.as_str()) {
                return Err((
                    t.clone(),
                    format!("bot ord_type `{t}` must be limit, price or market"),
                ));
            }
        }
        if let Some(r) = &b.restart {
            if r.minutes_before_now <= 0 || r.minutes_before_now >= b.days as i64 * 1440 {
                return Err((
                    "restart".into(),
                    "bot.restart.minutes_before_now must fall inside the bot's history".into(),
                ));
            }
        }
        if b.log_ends_minutes_before_now.is_some_and(|m| m <= 0) {
            return Err((
                "log_ends_minutes_before_now".into(),
                "bot.log_ends_minutes_before_now must be > 0".into(),
            ));
        }
        for x in &b.bursts {
            market(&x.market)?;
            side_of(&x.side, "bursts")?;
            if !["limit", "price", "market"].contains(&x.ord_type.as_str()) {
                return Err((
                    x.ord_type.clone(),
                    format!(
                        "burst ord_type `{}` must be limit, price or market",
                        x.ord_type
                    ),
                ));
            }
            if x.orders == 0 || x.interval_secs <= 0 || x.minutes_before_now <= 0 {
                return Err((
                    "bursts".into(),
                    "a burst needs orders > 0, interval_secs > 0, minutes_before_now > 0".into(),
                ));
            }
        }
    }
    if let Some(a) = &sc.attack {
        key(&a.key)?;
        account(&a.attacker_account)?;
        for cur in &a.liquidate {
            market(cur)?;
        }
        if let Some(p) = &a.pump {
            market(&p.market)?;
            if p.multiple <= Decimal::ONE {
                return Err(("multiple".into(), "attack.pump.multiple must be > 1".into()));
            }
        }
        if let Some(c) = &a.contra {
            market(&c.market)?;
        }
        if let Some(p) = &a.pump {
            if !["price", "limit"].contains(&p.ord_type.as_str()) {
                return Err((
                    p.ord_type.clone(),
                    "attack.pump.ord_type must be price or limit".into(),
                ));
            }
        }
        if let Some(q) = &a.order_quote {
            if q[0] > q[1] || q[0] <= Decimal::ZERO {
                return Err((
                    "order_quote".into(),
                    "attack.order_quote must be [min, max] with 0 < min <= max".into(),
                ));
            }
        }
        if let Some(b) = &a.bids {
            market(&b.market)?;
            if b.multiple[0] > b.multiple[1] || b.multiple[0] <= Decimal::ONE {
                return Err((
                    "multiple".into(),
                    "attack.bids.multiple must be [min, max] with 1 < min <= max".into(),
                ));
            }
            if !(0.0..=1.0).contains(&b.fair_fill_share) {
                return Err((
                    "fair_fill_share".into(),
                    "attack.bids.fair_fill_share must be between 0 and 1".into(),
                ));
            }
        }
        if let Some(r) = &a.repost {
            if r.multiple <= Decimal::ONE || !(0.0..=1.0).contains(&r.fair_fill_share) {
                return Err((
                    "repost".into(),
                    "attack.repost needs multiple > 1 and fair_fill_share between 0 and 1".into(),
                ));
            }
        }
        if let Some(m) = &a.live.market {
            market(m)?;
        }
        if a.live.order_quote.is_some_and(|v| v <= Decimal::ZERO) {
            return Err(("live".into(), "attack.live.order_quote must be > 0".into()));
        }
        if a.live.enabled && a.live.min_interval_ms > a.live.max_interval_ms {
            return Err((
                "min_interval_ms".into(),
                "live.min_interval_ms must be <= max_interval_ms".into(),
            ));
        }
        for w in &a.withdrawals {
            if !sc.withdraw_addresses.iter().any(|x| x.address == w.address) {
                return Err((
                    w.address.clone(),
                    format!(
                        "withdrawal address `{}` is not in withdraw_addresses",
                        w.address
                    ),
                ));
            }
        }
    }
    if let Some(m) = &sc.manual {
        account(&m.account)?;
        for x in &m.markets {
            market(x)?;
        }
        for t in &m.incident {
            market(&t.market)?;
            side_of(&t.side, "incident")?;
            if !["limit", "market"].contains(&t.ord_type.as_str()) {
                return Err((
                    t.ord_type.clone(),
                    "manual.incident ord_type must be limit or market".into(),
                ));
            }
            if t.quote <= Decimal::ZERO || (!t.fill && t.ord_type != "limit") {
                return Err((
                    "incident".into(),
                    "a manual trade needs quote > 0, and only a limit order can stay unfilled"
                        .into(),
                ));
            }
        }
        for w in &m.withdrawals {
            if !sc
                .withdraw_addresses
                .iter()
                .any(|x| x.address == w.address && x.currency == w.currency)
            {
                return Err((
                    w.address.clone(),
                    format!(
                        "withdrawal address `{}` is not a {} address in withdraw_addresses",
                        w.address, w.currency
                    ),
                ));
            }
        }
        if m.orders > 0 && m.markets.is_empty() {
            return Err((
                "manual".into(),
                "manual.markets must name at least one market".into(),
            ));
        }
        // Orders beyond `recent` spread over the bot's history (30 days without a bot),
        // before its last day: that needs at least two days.
        let days = sc.bot.as_ref().map_or(30, |b| b.days);
        if m.orders > m.recent && days < 2 {
            return Err((
                "recent".into(),
                format!(
                    "manual.recent ({}) must cover all {} manual orders when bot.days is {days} \
                     (older manual orders need a history of at least 2 days)",
                    m.recent, m.orders
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synthetic_victim_parses_with_and_without_its_readonly_key() {
        for readonly_key in [false, true] {
            let v = SyntheticVictim {
                name: "scale",
                description: "a scale run",
                seed: 7,
                days: 2,
                orders_per_day: 10,
                open_orders: 3,
                readonly_key,
            };
            let sc = parse("scale.yaml", &v.yaml(), None).unwrap();
            assert_eq!(sc.keys.len(), 1 + readonly_key as usize);
        }
    }

    const OLD: &str = r#"name: old
seed: 1
markets:
  - { code: AAA-COIN, korean_name: 코인, english_name: Coin, price: "100" }
accounts: [{ name: v, balances: { AAA: "1000" } }]
keys: [{ account: v, label: bot, scopes: [native_scope] }]
bot: { account: v, key: bot, markets: [AAA-COIN], order_krw: ["10", "20"] }
attack: { key: bot, attacker_account: v, night_kst: true, live: { order_krw: "30" } }
"#;

    const NEW: &str = r#"name: new
seed: 1
quote: AAA
utc_offset: "+09:00"
markets:
  - { base: COIN, name: Coin, names: { ko: 코인 }, price: "100" }
accounts: [{ name: v, balances: { AAA: "1000" } }]
keys: [{ account: v, label: bot, permissions: [read, trade] }]
bot: { account: v, key: bot, markets: [COIN], order_quote: ["10", "20"] }
attack: { key: bot, attacker_account: v, night: true, live: { order_quote: "30" } }
"#;

    #[test]
    fn old_and_new_spellings_read_the_same() {
        let old = parse("old.yaml", OLD, None).unwrap();
        let new = parse("new.yaml", NEW, None).unwrap();
        for sc in [&old, &new] {
            assert_eq!(sc.quote, "AAA");
            assert_eq!(sc.markets[0].base, "COIN");
            assert_eq!(sc.markets[0].name, "Coin");
            assert_eq!(sc.markets[0].names["ko"], "코인");
            assert_eq!(sc.bot.as_ref().unwrap().markets, vec!["COIN".to_string()]);
            assert_eq!(sc.bot.as_ref().unwrap().order_quote[1], Decimal::from(20));
            let a = sc.attack.as_ref().unwrap();
            assert!(a.night);
            assert_eq!(a.live.order_quote, Some(Decimal::from(30)));
            assert_eq!(sc.local_offset().local_minus_utc(), 9 * 3600);
        }
        assert_eq!(old.keys[0].scopes, vec!["native_scope".to_string()]);
        assert_eq!(
            new.keys[0].permissions,
            vec![Permission::Read, Permission::Trade]
        );
    }

    #[test]
    fn a_neutral_file_must_declare_its_quote() {
        let text = NEW.replace("quote: AAA\n", "");
        let e = parse("n.yaml", &text, None).unwrap_err().to_string();
        assert!(e.starts_with("n.yaml:") && e.contains("quote:"), "{e}");
        let text = OLD.replace("code: AAA-COIN", "code: AAACOIN");
        let e = parse("o.yaml", &text, None).unwrap_err().to_string();
        assert!(
            e.starts_with("o.yaml:4:") && e.contains("QUOTE-BASE"),
            "{e}"
        );
        let text = NEW.replace("permissions: [read, trade]", "permissions: [read, fly]");
        let e = parse("n.yaml", &text, None).unwrap_err().to_string();
        assert!(e.starts_with("n.yaml:8:"), "{e}");
    }
}
