//! Normalized exchange data: what every adapter returns and what analysis and reports read.
//!
//! Amounts are `rust_decimal::Decimal` (exchanges send decimal strings; floats would lose the
//! evidence). Times are UTC; the exchange-local rendering is kept beside them as the exchange
//! sent it, so a reviewer can match the exchange's own UI.
//!
//! Histories run to millions of orders, so the records are kept compact: short codes
//! (markets, order types, client ids) are [`CompactString`]s, stored inline up to 24 bytes
//! with no heap allocation, and every record parsed from one raw response shares that
//! response's [`Provenance`] through an `Arc`. Both serialize exactly as `String` and
//! `Provenance` do.

use std::sync::Arc;

use chrono::{DateTime, Utc};
pub use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// Normalized order type; the exchange-native name is kept in [`Order::native_type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    Limit,
    /// Any taker order without a limit price (Upbit `price`, `market`).
    Market,
    /// Upbit `best`: a marketable order at the best price with a time-in-force.
    Best,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Resting or partially filled (Upbit `wait`, `watch`).
    Open,
    /// Fully filled (Upbit `done`).
    Done,
    /// Cancelled, possibly after partial fills (Upbit `cancel`).
    Cancelled,
    Other,
}

/// Where a record came from in the evidence bundle: the raw response file and its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Path relative to the run directory, e.g. `raw/0007-GET-v1_orders_closed.json`.
    pub raw_file: String,
    pub raw_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The exchange's order id (Upbit `uuid`).
    pub id: String,
    /// The client-chosen id (Upbit `identifier`), when one was sent.
    pub client_id: Option<CompactString>,
    /// Quote-first market code as the exchange writes it (`KRW-BTC`).
    pub market: CompactString,
    pub side: Side,
    pub order_type: OrderType,
    /// The exchange's own type name (`limit`, `price`, `market`, `best`).
    pub native_type: CompactString,
    pub state: OrderState,
    pub price: Option<Decimal>,
    pub volume: Option<Decimal>,
    pub remaining_volume: Option<Decimal>,
    pub executed_volume: Decimal,
    /// Quote spent/received by the fills so far, when the exchange reports it.
    pub executed_funds: Option<Decimal>,
    pub paid_fee: Decimal,
    pub created_at: DateTime<Utc>,
    /// The creation time exactly as the exchange sent it (Upbit: KST, `+09:00`).
    pub created_at_local: String,
    pub trades_count: u32,
    pub provenance: Option<Arc<Provenance>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// The exchange's trade id (Upbit trade `uuid`).
    pub id: String,
    pub order_id: String,
    pub market: CompactString,
    pub side: Side,
    pub price: Decimal,
    pub volume: Decimal,
    /// price × volume in the quote currency.
    pub funds: Decimal,
    pub fee: Option<Decimal>,
    pub created_at: DateTime<Utc>,
    pub created_at_local: String,
    pub provenance: Option<Arc<Provenance>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    pub currency: String,
    pub free: Decimal,
    pub locked: Decimal,
    pub avg_buy_price: Option<Decimal>,
    pub unit_currency: Option<String>,
}

/// What an exchange tells about one API key of the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// Masked to first4…last4; never the full key.
    pub access_key_masked: String,
    /// True when this is the key the run is using.
    pub is_current: bool,
    pub expire_at: Option<DateTime<Utc>>,
    /// Scope names, when the exchange can tell (`None` = unknown, not "none").
    pub scopes: Option<Vec<String>>,
    /// IP allowlist, when the exchange can tell (`Some(vec![])` = no restriction).
    pub allowed_ips: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Upbit withdrawal/deposit `uuid`.
    pub id: String,
    pub kind: TransferKind,
    pub currency: String,
    pub net_type: Option<String>,
    pub txid: Option<String>,
    /// The exchange's state name (`WAITING`, `DONE`, `CANCELLED`, …).
    pub state: String,
    pub amount: Decimal,
    pub fee: Option<Decimal>,
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_at_local: String,
    pub done_at: Option<DateTime<Utc>>,
    pub is_cancelable: bool,
    pub provenance: Option<Arc<Provenance>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    Withdrawal,
    Deposit,
}

/// One entry of the withdrawal address allowlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalAddress {
    pub currency: String,
    pub net_type: Option<String>,
    pub address: String,
    pub secondary_address: Option<String>,
}

/// One candle of public market data (used for reference prices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub market: String,
    pub start: DateTime<Utc>,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Base-currency volume traded in the candle.
    pub volume: Decimal,
    /// Quote-currency value traded in the candle.
    pub value: Decimal,
}

/// The exchange clock against ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerTime {
    pub server: DateTime<Utc>,
    pub local: DateTime<Utc>,
    /// server − local, milliseconds.
    pub offset_ms: i64,
}

/// The result of cancelling open orders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CancelReport {
    pub cancelled: Vec<Order>,
    pub failed: Vec<CancelFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelFailure {
    pub order_id: String,
    pub reason: String,
}

/// What a key could do, found by harmless reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionProbe {
    /// Scope name → held? (`None` when it could not be determined without a write.)
    pub scopes: Vec<ScopeProbe>,
    pub ip_restricted: Option<bool>,
    pub expire_at: Option<DateTime<Utc>>,
    /// Withdrawal scope or no IP restriction.
    pub critical: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeProbe {
    pub scope: String,
    pub held: Option<bool>,
    /// How it was determined ("GET /v1/accounts answered 200", "inferred: …").
    pub evidence: String,
}

/// A time window, UTC, half-open [from, to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}
