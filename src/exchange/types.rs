//! Normalized exchange data: what every adapter returns and what analysis and reports read.
//!
//! The vocabulary is the exchanges' common denominator, never one exchange's: a [`Market`]
//! carries its base and quote currencies beside the native symbol (`BTC-USDT`, `BTCUSDT`), so no
//! shared code ever parses a symbol; an [`Order`] keeps its limit price and the quote amount
//! of a market order apart; a [`ScopeProbe`] says what class of permission a native scope name
//! grants. Adapters map their wire formats into these types; everything after them is
//! exchange-neutral.
//!
//! Amounts are `rust_decimal::Decimal` (exchanges send decimal strings; floats would lose the
//! evidence). Times are UTC; the exchange-local rendering is kept beside them as the exchange
//! sent it, so a reviewer can match the exchange's own UI.
//!
//! Histories run to millions of orders, so the records are kept compact: short codes (order
//! types, client ids) are [`CompactString`]s, stored inline up to 24 bytes with no heap
//! allocation, a [`Market`] is one shared allocation per market (8 bytes per record), and every
//! record parsed from one raw response shares that response's [`Provenance`] through an
//! `Arc`. All of them serialize exactly as their plain contents do.

use std::collections::BTreeMap;
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
    /// Any taker order without a limit price (a market buy for a quote amount, a market sell
    /// of a base volume).
    Market,
    /// A marketable order at the best price with a time-in-force (immediate-or-cancel,
    /// fill-or-kill).
    Best,
    Other,
}

impl OrderType {
    /// Takes liquidity by construction (no limit price to rest at).
    pub fn is_taker(self) -> bool {
        matches!(self, OrderType::Market | OrderType::Best)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Resting, partially filled, or waiting for a trigger.
    Open,
    /// Fully filled.
    Done,
    /// Cancelled, possibly after partial fills.
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

/// A market: the symbol as the exchange writes it, and the two currencies it trades.
///
/// One allocation per market, shared by every record in it (cloning is a reference count).
/// Serializes as `{"symbol", "base", "quote"}`. Adapters build markets from their own symbol
/// formats; shared code reads `base` and `quote` and never parses `symbol`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Market(Arc<MarketData>);

/// The contents of a [`Market`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MarketData {
    /// The exchange's own symbol (`BTCUSDT`, `BTC-USDT`, quote first on some exchanges).
    pub symbol: CompactString,
    /// The traded asset (`BTC`).
    pub base: CompactString,
    /// The currency prices and amounts are quoted in.
    pub quote: CompactString,
}

impl Market {
    pub fn new(
        symbol: impl Into<CompactString>,
        base: impl Into<CompactString>,
        quote: impl Into<CompactString>,
    ) -> Self {
        Market(Arc::new(MarketData {
            symbol: symbol.into(),
            base: base.into(),
            quote: quote.into(),
        }))
    }

    /// The native symbol.
    pub fn as_str(&self) -> &str {
        &self.0.symbol
    }

    /// The market's shared allocation, as a number: two markets with one identity are the
    /// same market (the identity of a market stays unique while it lives). Equal markets
    /// built apart have two identities, so this only finds repeats faster than comparing.
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl std::ops::Deref for Market {
    type Target = MarketData;
    fn deref(&self) -> &MarketData {
        &self.0
    }
}

impl std::fmt::Debug for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({}/{})", self.symbol, self.base, self.quote)
    }
}

impl std::fmt::Display for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.symbol)
    }
}

/// Hands out one shared [`Market`] per symbol while a response is parsed, so a page of a
/// thousand orders in three markets holds three allocations, not a thousand.
#[derive(Default)]
pub struct MarketCache(BTreeMap<CompactString, Market>);

impl MarketCache {
    /// The market of `symbol`, built by `make` the first time it is seen.
    pub fn get<E>(
        &mut self,
        symbol: &str,
        make: impl FnOnce(&str) -> Result<Market, E>,
    ) -> Result<Market, E> {
        if let Some(m) = self.0.get(symbol) {
            return Ok(m.clone());
        }
        let m = make(symbol)?;
        self.0.insert(symbol.into(), m.clone());
        Ok(m)
    }
}

/// What an exchange lists about one market (its public market list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketInfo {
    pub market: Market,
    /// The exchange's status word (`TRADING`, `active`, …), when it gives one.
    pub status: Option<String>,
    /// Smallest price step, when known.
    pub tick_size: Option<Decimal>,
    /// Smallest base-volume step, when known.
    pub lot_size: Option<Decimal>,
    /// Smallest order value in the quote currency, when known.
    pub min_notional: Option<Decimal>,
}

/// A reference to one order. Exchanges that keep orders per market need its market to find
/// it, and refuse a reference without one ([`crate::exchange::Error::Config`]); others read
/// only the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    pub id: String,
    /// The order's market, when known (an id from a bot log or a playbook may come alone).
    pub market: Option<Market>,
}

impl OrderRef {
    pub fn of(o: &Order) -> Self {
        OrderRef {
            id: o.id.clone(),
            market: Some(o.market.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The exchange's order id.
    pub id: String,
    /// The client-chosen id, when one was sent.
    pub client_id: Option<CompactString>,
    pub market: Market,
    pub side: Side,
    pub order_type: OrderType,
    /// The exchange's own type name, for display only: shared code branches on `order_type`.
    pub native_type: CompactString,
    pub state: OrderState,
    /// The limit price; `None` for orders without one (market orders).
    pub price: Option<Decimal>,
    /// The quote amount to spend (a market buy for an amount) or receive, when the order was
    /// placed by amount rather than by volume.
    pub quote_amount: Option<Decimal>,
    pub volume: Option<Decimal>,
    pub remaining_volume: Option<Decimal>,
    pub executed_volume: Decimal,
    /// Quote spent/received by the fills so far, when the exchange reports it.
    pub executed_funds: Option<Decimal>,
    pub paid_fee: Decimal,
    pub created_at: DateTime<Utc>,
    /// The creation time exactly as the exchange sent it (often in its local zone).
    pub created_at_local: String,
    pub trades_count: u32,
    pub provenance: Option<Arc<Provenance>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// The exchange's trade id.
    pub id: String,
    pub order_id: String,
    pub market: Market,
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
    /// Masked to first4...last4; never the full key.
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
    /// The exchange's withdrawal/deposit id.
    pub id: String,
    pub kind: TransferKind,
    pub currency: String,
    pub net_type: Option<String>,
    pub txid: Option<String>,
    /// The exchange's state name (`WAITING`, `DONE`, `CANCELLED`, …), as it gave it.
    pub state: String,
    /// What that state means in every exchange's terms (the adapter maps its own names):
    /// shared code reads this, never `state`.
    #[serde(default)]
    pub status: TransferStatus,
    pub amount: Decimal,
    pub fee: Option<Decimal>,
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_at_local: String,
    pub done_at: Option<DateTime<Utc>>,
    pub is_cancelable: bool,
    pub provenance: Option<Arc<Provenance>>,
}

/// A transfer's state in neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Not final yet (waiting, processing, awaiting approval).
    Pending,
    /// Sent (a withdrawal) or credited (a deposit).
    Completed,
    /// Cancelled, rejected or failed: nothing moved.
    Failed,
    /// A state the adapter does not know.
    #[default]
    Unknown,
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
    /// When the address was added to the allowlist, where the exchange says (not every one does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<DateTime<Utc>>,
}

/// One candle of public market data (used for reference prices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub market: Market,
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
    /// The open orders as the cancel path's first listing showed them, before its first
    /// cancel: the evidence of what was open when containment began
    /// ([`super::Exchange::cancel_all_open_orders_listed`]). `None` where nothing was listed
    /// first (or that listing failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_at_start: Option<Vec<Order>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelFailure {
    pub order_id: String,
    pub reason: String,
}

impl CancelReport {
    fn fail(&mut self, order_id: &str, reason: String) {
        self.failed.push(CancelFailure {
            order_id: order_id.to_string(),
            reason,
        });
    }

    /// An order still listed open after the last cancel round, with why (the cancel's refusal,
    /// else `default`).
    pub fn still_open(&mut self, order_id: &str, refusal: Option<&String>, default: &str) {
        self.fail(
            order_id,
            refusal.cloned().unwrap_or_else(|| default.to_string()),
        );
    }

    /// An order seen open that is no longer listed: filed by its final state as read back
    /// (cancelled, or why not: filled first, another state with the cancel's refusal if any),
    /// or, when it could not be read, as unsettled. A dead key ends the containment (`Err`).
    pub fn settle(
        &mut self,
        order_id: &str,
        read_back: super::Result<Order>,
        refusal: Option<&String>,
    ) -> super::Result<()> {
        let o = match read_back {
            Ok(o) => o,
            Err(e) if e.is_key_dead() => return Err(e),
            Err(e) => {
                self.fail(
                    order_id,
                    format!("not open any more, but its final state could not be read: {e}"),
                );
                return Ok(());
            }
        };
        match o.state {
            OrderState::Cancelled => self.cancelled.push(o),
            OrderState::Done => self.fail(order_id, "filled before the cancel took effect".into()),
            state => self.fail(
                order_id,
                refusal
                    .cloned()
                    .unwrap_or_else(|| format!("state {state:?} after the cancels")),
            ),
        }
        Ok(())
    }

    /// Settles every order the cancel rounds listed (`ids`): those in `open_ids` as still
    /// open after the cancels, the others from `finals` (their states read after the cancels)
    /// or else read back one by one with `get_order`; `failed` holds each cancel's refusal. A
    /// dead key stops it.
    pub async fn settle_listed<'a, F, Fut>(
        &mut self,
        ids: &'a std::collections::BTreeSet<String>,
        open_ids: &std::collections::BTreeSet<String>,
        finals: &BTreeMap<String, Order>,
        failed: &BTreeMap<String, String>,
        get_order: F,
    ) -> super::Result<()>
    where
        F: Fn(&'a str) -> Fut,
        Fut: std::future::Future<Output = super::Result<Order>>,
    {
        for id in ids {
            if open_ids.contains(id) {
                self.still_open(id, failed.get(id), "still open after the cancels");
                continue;
            }
            let read_back = match finals.get(id) {
                Some(f) => Ok(f.clone()),
                None => get_order(id).await,
            };
            self.settle(id, read_back, failed.get(id))?;
        }
        Ok(())
    }

    /// After the rounds: when they ran out (`!done`) with nothing listed open and nothing
    /// failed, the report says so rather than passing for a complete containment.
    pub fn rounds_ran_out(&mut self, done: bool, nothing_listed: bool, rounds: usize) {
        if !done && nothing_listed && self.failed.is_empty() {
            self.fail("", format!("orders still open after {rounds} rounds"));
        }
    }
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
    /// The exchange's own scope name.
    pub scope: String,
    /// What the scope allows, set by the adapter: shared code reads this, never the name.
    pub class: ScopeClass,
    pub held: Option<bool>,
    /// How it was determined ("GET /v1/accounts answered 200", "inferred: …").
    pub evidence: String,
}

/// What a permission scope allows, whatever the exchange calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeClass {
    /// Reading balances, orders, history.
    Read,
    /// Placing and cancelling orders.
    Trade,
    /// Sending funds off the exchange.
    Withdraw,
    /// Moving funds between accounts or sub-accounts of the exchange.
    Transfer,
    /// Creating deposit addresses.
    Deposit,
    Other,
}

impl ScopeClass {
    /// Funds can leave the account with it.
    pub fn moves_funds(self) -> bool {
        matches!(self, ScopeClass::Withdraw | ScopeClass::Transfer)
    }

    /// The class a scope name suggests when the exchange's own vocabulary does not list it
    /// (a name from a bot configuration, or an exchange that is not registered): read-only
    /// names (`view…`, `read…`) are [`ScopeClass::Read`] whatever they read, then withdrawal,
    /// transfer, deposit and trading words.
    pub fn guess(name: &str) -> ScopeClass {
        let n = name.to_ascii_lowercase();
        if n.starts_with("view") || n.starts_with("read") {
            ScopeClass::Read
        } else if n.contains("withdraw") {
            ScopeClass::Withdraw
        } else if n.contains("transfer") {
            ScopeClass::Transfer
        } else if n.contains("deposit") {
            ScopeClass::Deposit
        } else if n.contains("trade") || n.contains("order") {
            ScopeClass::Trade
        } else {
            ScopeClass::Other
        }
    }
}

/// The exchange's home time zone, as its UI and its timestamps show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LocalZone {
    /// Offset from UTC, seconds (+09:00 = 32400).
    pub utc_offset_secs: i32,
    /// The zone's usual abbreviation, for column headers.
    pub name: &'static str,
}

impl LocalZone {
    pub const UTC: LocalZone = LocalZone {
        utc_offset_secs: 0,
        name: "UTC",
    };
}

/// A time window, UTC, half-open [from, to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A raw response left out of an offline rebuild, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRaw {
    /// The body file, relative to the run directory.
    pub file: String,
    pub reason: String,
}

/// Everything a run's saved raw responses say, rebuilt without the network by
/// [`crate::exchange::replay`]: the normalized records of every successful answer, merged
/// (the later record of an order wins; the first key list is kept), sorted, and the files
/// that were left out.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The exchange that recorded the run (its registry name).
    pub exchange: String,
    /// The masked key of the first authenticated request: the key under investigation.
    pub key_masked: String,
    /// UTC offset of the exchange's local time, seconds.
    pub local_utc_offset_secs: i32,
    /// Sorted by (created_at, id).
    pub orders: Vec<Order>,
    /// Sorted by (created_at, id).
    pub fills: Vec<Fill>,
    /// Newest first.
    pub withdrawals: Vec<Transfer>,
    /// Newest first.
    pub deposits: Vec<Transfer>,
    /// The first balance list of the run, and the last one after it.
    pub balances_start: Vec<Balance>,
    pub balances_end: Vec<Balance>,
    /// Keys in the order first seen; `is_current` marks the key under investigation.
    pub keys: Vec<ApiKeyInfo>,
    pub withdrawal_addresses: Vec<WithdrawalAddress>,
    /// Candles per market symbol, newest first.
    pub candles: BTreeMap<String, Vec<Candle>>,
    /// The exchange's market list, when the run read it.
    pub markets: Vec<MarketInfo>,
    /// Raw files left out (corrupt, truncated, superseded by a retry).
    pub skipped: Vec<SkippedRaw>,
}
