//! The mock's mutable world: accounts and balances, keys, orders and fills, withdrawals,
//! deposits, the public trade tape, the ground truth and the request log.
//!
//! Everything lives behind one mutex in [`crate::mock::MockExchange`]: requests are short and
//! a single lock keeps the matching engine trivially consistent. Logs that grow with traffic
//! (request log, nonces) are bounded so memory stays flat under load.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::mock::matching::Book;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Bid,
    Ask,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Bid => "bid",
            Side::Ask => "ask",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdType {
    Limit,
    Price,
    Market,
    Best,
}

impl OrdType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrdType::Limit => "limit",
            OrdType::Price => "price",
            OrdType::Market => "market",
            OrdType::Best => "best",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "limit" => OrdType::Limit,
            "price" => OrdType::Price,
            "market" => OrdType::Market,
            "best" => OrdType::Best,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdState {
    Wait,
    Done,
    Cancel,
}

impl OrdState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrdState::Wait => "wait",
            OrdState::Done => "done",
            OrdState::Cancel => "cancel",
        }
    }
}

/// One fill as seen by one order.
#[derive(Debug, Clone)]
pub struct Fill {
    pub uuid: Uuid,
    pub market: String,
    pub price: Decimal,
    pub volume: Decimal,
    pub funds: Decimal,
    /// `up` when the taker bought, `down` when it sold.
    pub trend: &'static str,
    pub side: Side,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub uuid: Uuid,
    pub account: String,
    pub market: String,
    pub side: Side,
    pub ord_type: OrdType,
    pub price: Option<Decimal>,
    pub volume: Option<Decimal>,
    pub remaining_volume: Decimal,
    /// For `price` orders (market buy by total): KRW still to spend.
    pub remaining_funds: Decimal,
    pub reserved_fee: Decimal,
    pub remaining_fee: Decimal,
    pub paid_fee: Decimal,
    pub locked: Decimal,
    pub executed_volume: Decimal,
    pub executed_funds: Decimal,
    pub state: OrdState,
    pub created_at: DateTime<Utc>,
    pub identifier: Option<String>,
    pub time_in_force: Option<String>,
    pub trades: Vec<Fill>,
}

#[derive(Debug, Clone, Default)]
pub struct Balance {
    pub balance: Decimal,
    pub locked: Decimal,
    pub avg_buy_price: Decimal,
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub balances: BTreeMap<String, Balance>,
}

impl Account {
    pub fn bal(&mut self, cur: &str) -> &mut Balance {
        self.balances.entry(cur.to_string()).or_default()
    }
}

/// An API key as the exchange stores it. The secret is fake test material but still never
/// shows up in `Debug`.
#[derive(Clone)]
pub struct KeyRec {
    pub account: String,
    pub label: String,
    pub access_key: String,
    pub secret_key: String,
    pub scopes: Vec<String>,
    pub allowed_ips: Vec<std::net::IpAddr>,
    pub expire_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for KeyRec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRec")
            .field("account", &self.account)
            .field("label", &self.label)
            .field("access_key", &self.access_key)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub uuid: Uuid,
    pub account: String,
    pub currency: String,
    pub net_type: String,
    pub address: String,
    pub txid: Option<String>,
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub amount: Decimal,
    pub fee: Decimal,
}

#[derive(Debug, Clone)]
pub struct Deposit {
    pub uuid: Uuid,
    pub account: String,
    pub currency: String,
    pub net_type: String,
    pub txid: String,
    pub created_at: DateTime<Utc>,
    pub amount: Decimal,
}

#[derive(Debug, Clone)]
pub struct CoinAddress {
    pub account: String,
    pub currency: String,
    pub net_type: String,
    pub address: String,
    pub registered_at: DateTime<Utc>,
}

/// A public trade on the tape (one per fill pair).
#[derive(Debug, Clone)]
pub struct Tick {
    pub price: Decimal,
    pub volume: Decimal,
    /// Side of the taker: `BID` or `ASK`.
    pub ask_bid: &'static str,
    pub seq: u64,
}

/// What really happened in the scenario; scored against by drills.
///
/// - `victim_account`, `leaked_access_key`: whose key leaked.
/// - `attack_started_at`: first attacker action (UTC).
/// - `attacker_order_uuids`: every order placed by the attacker with the leaked key, generated
///   history and live orders alike (the attacker's own-account counter-orders are not listed:
///   they are not on the victim's account).
/// - `attacker_withdrawal_uuids`: withdrawals the attacker made with the leaked key.
/// - `user_manual_order_uuids`: the user's own web-UI orders (noisy scenario): NOT attacker
///   orders, absent from the bot log; a detector should flag them at most as "review".
/// - `true_loss_krw`: Σ over attacker fills of the deviation from the reference price times
///   the volume (paid above reference on buys, received below it on sells), plus fees paid,
///   plus withdrawals valued at the reference price; a decimal string.
/// - `revoked_at`: when the leaked key was revoked through `/_mock/keys/{key}/revoke`.
/// - `attacker_orders_by_minute`: attacker order count per UTC minute (`…T05:31Z` → n),
///   so a drill can count orders placed after a given reaction time.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GroundTruth {
    pub victim_account: String,
    pub leaked_access_key: String,
    pub attack_started_at: Option<String>,
    pub attacker_order_uuids: Vec<Uuid>,
    pub attacker_withdrawal_uuids: Vec<Uuid>,
    pub user_manual_order_uuids: Vec<Uuid>,
    pub true_loss_krw: String,
    pub revoked_at: Option<String>,
    pub attacker_orders_by_minute: BTreeMap<String, u32>,
    #[serde(skip)]
    pub loss: Decimal,
}

/// One line of the request log.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub at: String,
    pub method: String,
    pub path: String,
    pub access_key: Option<String>,
    pub status: u16,
    pub error: Option<String>,
    pub orders_created: Vec<Uuid>,
    pub orders_cancelled: Vec<Uuid>,
    pub fault: Option<String>,
}

/// Bound on the request log; older entries are dropped (and counted).
pub const REQUEST_LOG_CAP: usize = 100_000;

/// The whole mutable world.
#[derive(Debug, Default)]
pub struct World {
    pub accounts: BTreeMap<String, Account>,
    pub keys: HashMap<String, KeyRec>,
    pub orders: Vec<Order>,
    pub by_uuid: HashMap<Uuid, usize>,
    pub identifiers: HashSet<(String, String)>,
    pub books: BTreeMap<String, Book>,
    pub tape: BTreeMap<String, BTreeMap<(i64, u64), Tick>>,
    pub withdrawals: Vec<Withdrawal>,
    pub deposits: Vec<Deposit>,
    pub addresses: Vec<CoinAddress>,
    pub truth: GroundTruth,
    pub requests: VecDeque<RequestRecord>,
    pub requests_dropped: u64,
    pub seq: u64,
    /// Last items of the previous list page per (account, list), for the repeat-page fault.
    pub last_pages: HashMap<(String, String), Vec<serde_json::Value>>,
}

impl World {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn order(&self, uuid: &Uuid) -> Option<&Order> {
        self.by_uuid.get(uuid).map(|&i| &self.orders[i])
    }

    pub fn find_by_identifier(&self, account: &str, ident: &str) -> Option<&Order> {
        self.orders
            .iter()
            .rev()
            .find(|o| o.account == account && o.identifier.as_deref() == Some(ident))
    }

    pub fn log_request(&mut self, rec: RequestRecord) {
        if self.requests.len() >= REQUEST_LOG_CAP {
            self.requests.pop_front();
            self.requests_dropped += 1;
        }
        self.requests.push_back(rec);
    }

    /// Records an attacker order in the ground truth.
    pub fn record_attacker_order(&mut self, uuid: Uuid, at: DateTime<Utc>) {
        self.truth.attacker_order_uuids.push(uuid);
        let minute = at.format("%Y-%m-%dT%H:%MZ").to_string();
        *self
            .truth
            .attacker_orders_by_minute
            .entry(minute)
            .or_default() += 1;
    }

    pub fn add_loss(&mut self, d: Decimal) {
        self.truth.loss += d;
        self.truth.true_loss_krw = self.truth.loss.round_dp(0).normalize().to_string();
    }
}
