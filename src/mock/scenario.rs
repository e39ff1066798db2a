//! Scenario files: the one place that calls `serde_yaml` for the mock.
//!
//! A scenario describes the world the mock starts in (accounts, keys, markets, withdrawal
//! allowlists) and the generators that fill its past (a bot profile, an attack profile, the
//! user's own manual trades). Built-ins live in `scenarios/*.yaml` and are embedded with
//! `include_str!`; any other argument is read as a file path. Parse errors and semantic errors
//! both come back as [`ScenarioError`] displaying `file:line:column: message`, so a bad file is
//! rejected before anything starts.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

/// Built-in scenarios: (name, YAML text).
pub const BUILTINS: &[(&str, &str)] = &[
    ("blank", include_str!("../../scenarios/blank.yaml")),
    (
        "pump-and-dump",
        include_str!("../../scenarios/pump-and-dump.yaml"),
    ),
    ("contra", include_str!("../../scenarios/contra.yaml")),
    (
        "withdrawal",
        include_str!("../../scenarios/withdrawal.yaml"),
    ),
    ("noisy", include_str!("../../scenarios/noisy.yaml")),
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

/// Scopes as Upbit names them in the key list (`respond mock serve` prints these).
pub const SCOPES: &[&str] = &[
    "view_account",
    "view_orders",
    "make_orders",
    "view_withdrawals",
    "make_withdrawals",
    "view_deposits",
    "make_deposits",
];

/// A loaded, validated scenario with its seed resolved.
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
    pub faults: Vec<crate::mock::faults::FaultRule>,
    /// Where the scenario came from (built-in name or path), for messages.
    #[serde(skip)]
    pub source: String,
}

fn default_fee() -> Decimal {
    Decimal::new(5, 4)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    pub code: String,
    pub korean_name: String,
    pub english_name: String,
    /// Reference price at "now" (KRW).
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
/// worth `level_krw`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSpec {
    #[serde(default = "default_levels")]
    pub levels: u32,
    #[serde(default = "default_step")]
    pub step_pct: Decimal,
    #[serde(default = "default_level_krw")]
    pub level_krw: Decimal,
}

fn default_levels() -> u32 {
    15
}
fn default_step() -> Decimal {
    Decimal::new(1, 1)
}
fn default_level_krw() -> Decimal {
    Decimal::from(20_000_000)
}

impl Default for DepthSpec {
    fn default() -> Self {
        DepthSpec {
            levels: default_levels(),
            step_pct: default_step(),
            level_krw: default_level_krw(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub name: String,
    #[serde(default)]
    pub balances: BTreeMap<String, Decimal>,
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
    pub markets: Vec<String>,
    #[serde(default = "default_days")]
    pub days: u32,
    #[serde(default = "default_per_day")]
    pub orders_per_day: u32,
    /// Order size range in KRW: [min, max].
    pub order_krw: [Decimal; 2],
    /// Order types the bot uses (`limit`, `price`, `market`).
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
    /// ... or, when set, at the latest 03:00 KST at least that long before "now".
    #[serde(default)]
    pub night_kst: bool,
    /// Currencies of the victim sold at market first.
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
    #[serde(default)]
    pub live: LiveSpec,
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
    pub market: String,
    /// Final fill price as a multiple of the reference price.
    pub multiple: Decimal,
    pub orders: u32,
    #[serde(default = "default_interval")]
    pub interval_secs: i64,
}

fn default_interval() -> i64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContraSpec {
    pub market: String,
    pub round_trips: u32,
    /// Loss per round trip, percent of its size.
    pub loss_pct: Decimal,
    pub size_krw: Decimal,
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
    #[serde(default = "default_live_krw")]
    pub order_krw: Decimal,
}

fn default_min_ms() -> u64 {
    500
}
fn default_max_ms() -> u64 {
    2000
}
fn default_live_krw() -> Decimal {
    Decimal::from(20_000)
}

/// The user's own trades in the web UI: no identifier, unusual markets and sizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualSpec {
    pub account: String,
    pub markets: Vec<String>,
    pub orders: u32,
    pub order_krw: [Decimal; 2],
    /// Manual orders placed in the last day (the rest spread over the bot's history).
    #[serde(default = "default_recent")]
    pub recent: u32,
}

fn default_recent() -> u32 {
    3
}

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
    validate(&sc).map_err(|(needle, message)| {
        let (line, column) = locate(text, &needle);
        ScenarioError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
        }
    })?;
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

/// Semantic checks; an error is (text to locate in the file, message).
fn validate(sc: &Scenario) -> Result<(), (String, String)> {
    let market = |m: &str| -> Result<(), (String, String)> {
        if sc.markets.iter().any(|x| x.code == m) {
            Ok(())
        } else {
            Err((
                m.to_string(),
                format!("unknown market `{m}`: add it under `markets`"),
            ))
        }
    };
    let account = |a: &str| -> Result<(), (String, String)> {
        if sc.accounts.iter().any(|x| x.name == a) {
            Ok(())
        } else {
            Err((
                a.to_string(),
                format!("unknown account `{a}`: add it under `accounts`"),
            ))
        }
    };
    let key = |l: &str| -> Result<(), (String, String)> {
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
    for m in &sc.markets {
        let ok = m
            .code
            .split_once('-')
            .is_some_and(|(q, b)| !q.is_empty() && !b.is_empty());
        if !ok {
            return Err((
                m.code.clone(),
                format!("market code `{}` must look like KRW-BTC", m.code),
            ));
        }
        if m.price <= Decimal::ZERO {
            return Err((
                m.code.clone(),
                format!("market {}: price must be > 0", m.code),
            ));
        }
        if m.depth.levels == 0 || m.depth.step_pct <= Decimal::ZERO {
            return Err((
                m.code.clone(),
                format!("market {}: depth needs levels > 0 and step_pct > 0", m.code),
            ));
        }
    }
    let mut labels = std::collections::HashSet::new();
    for k in &sc.keys {
        account(&k.account)?;
        if !labels.insert(k.label.clone()) {
            return Err((
                k.label.clone(),
                format!("duplicate key label `{}`", k.label),
            ));
        }
        for s in &k.scopes {
            if !SCOPES.contains(&s.as_str()) {
                return Err((
                    s.clone(),
                    format!("unknown scope `{s}`; known: {}", SCOPES.join(", ")),
                ));
            }
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
        if b.order_krw[0] > b.order_krw[1] || b.order_krw[0] <= Decimal::ZERO {
            return Err((
                "order_krw".into(),
                "bot.order_krw must be [min, max] with 0 < min <= max".into(),
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
    }
    if let Some(a) = &sc.attack {
        key(&a.key)?;
        account(&a.attacker_account)?;
        if let Some(p) = &a.pump {
            market(&p.market)?;
            if p.multiple <= Decimal::ONE {
                return Err(("multiple".into(), "attack.pump.multiple must be > 1".into()));
            }
        }
        if let Some(c) = &a.contra {
            market(&c.market)?;
        }
        if let Some(m) = &a.live.market {
            market(m)?;
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
