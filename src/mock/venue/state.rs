//! The venue's mutable world: accounts and balances, keys, orders and fills, withdrawals,
//! deposits, the public trade tape, the ground truth and the request log, in neutral terms
//! (a façade renders them in its exchange's wire format).
//!
//! Everything lives behind one mutex in [`crate::mock::Venue`]: requests are short and a
//! single lock keeps the matching engine trivially consistent. Logs that grow with traffic
//! (request log, nonces) are bounded so memory stays flat under load.
//!
//! Orders are stored once, in order of arrival, and found through indexes: by uuid, by
//! (account, identifier), and by (account, state) ordered by creation time, so listing an
//! account's open or closed orders never scans the orders of everyone. Fills are indexed by
//! account and (fill time, trade id), so a fill history page walks only the fills it shows.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::mock::venue::fragments::{Fragments, PageText};
use crate::mock::venue::keys::KeyRec;
use crate::mock::venue::matching::Book;

/// The side of an order (the generic bot-log format writes `bid` / `ask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
    pub fn opposite(self) -> Side {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

/// What an order asks for, in neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderKind {
    /// A limit price and a base volume.
    Limit,
    /// A market buy spending a quote amount.
    MarketBuyQuote,
    /// A market sell of a base volume.
    MarketSellBase,
    /// A market buy of a base volume (it locks what walking the book costs now).
    MarketBuyBase,
    /// At the best opposite price, immediate (ioc or fok): a bid spends a quote amount, an
    /// ask sells a base volume.
    Best,
}

impl OrderKind {
    /// The generic bot-log format's name (`limit`, `price`, `market`, `best`): `market` is
    /// a market order of a base volume, on either side.
    pub fn bot_log_name(self) -> &'static str {
        match self {
            OrderKind::Limit => "limit",
            OrderKind::MarketBuyQuote => "price",
            OrderKind::MarketSellBase | OrderKind::MarketBuyBase => "market",
            OrderKind::Best => "best",
        }
    }
    /// Parses a generic bot-log order-type name.
    pub fn from_bot_log_name(s: &str) -> Option<Self> {
        Some(match s {
            "limit" => OrderKind::Limit,
            "price" => OrderKind::MarketBuyQuote,
            "market" => OrderKind::MarketSellBase,
            "best" => OrderKind::Best,
            _ => return None,
        })
    }
}

/// Time in force of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tif {
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// Maker only: cancelled when it would take.
    PostOnly,
}

/// The life cycle of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderState {
    /// Resting in the book (or not yet matched).
    Open,
    /// Completely filled.
    Done,
    /// Ended before being completely filled (cancelled, expired, killed).
    Cancelled,
}

impl OrderState {
    pub fn is_closed(self) -> bool {
        self != OrderState::Open
    }
}

/// A market: the façade's native symbol and its base and quote assets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Market {
    /// As the façade writes it (`QUOTE-BASE`, `BASEQUOTE`, …).
    pub symbol: String,
    pub base: String,
    pub quote: String,
}

/// One fill as seen by one order.
#[derive(Debug, Clone)]
pub struct Fill {
    pub uuid: Uuid,
    /// The trade's number: venue-wide, increasing with time, the same for both sides of a
    /// match (façades whose exchange numbers its trades show it).
    pub id: u64,
    pub market: Arc<Market>,
    pub price: Decimal,
    pub volume: Decimal,
    /// Quote amount (price × volume).
    pub funds: Decimal,
    /// This order's side.
    pub side: Side,
    /// The side of the order that took liquidity (the price moved up when it bought).
    pub taker_side: Side,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub uuid: Uuid,
    pub account: String,
    pub market: Arc<Market>,
    pub side: Side,
    pub kind: OrderKind,
    /// The limit price (limit orders only).
    pub price: Option<Decimal>,
    /// The quote amount to spend (market buys by quote amount and best bids).
    pub quote_amount: Option<Decimal>,
    /// The base volume asked for (limit orders, market sells, best asks).
    pub volume: Option<Decimal>,
    pub remaining_volume: Decimal,
    /// For orders sized by quote amount: what is still to spend.
    pub remaining_funds: Decimal,
    pub reserved_fee: Decimal,
    pub remaining_fee: Decimal,
    pub paid_fee: Decimal,
    pub locked: Decimal,
    pub executed_volume: Decimal,
    pub executed_funds: Decimal,
    pub state: OrderState,
    pub created_at: DateTime<Utc>,
    pub identifier: Option<String>,
    pub tif: Option<Tif>,
    pub trades: Vec<Fill>,
}

impl Order {
    /// When the order last changed: its last fill, else its creation (the venue keeps no
    /// cancel time).
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.trades
            .iter()
            .map(|f| f.created_at)
            .max()
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    /// The currency this order locks: the quote for bids, the base for asks.
    pub fn lock_currency(&self) -> &str {
        match self.side {
            Side::Bid => &self.market.quote,
            Side::Ask => &self.market.base,
        }
    }
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
    /// The account's login email (exchanges that name sub-accounts by it).
    pub email: String,
    /// The account that manages this one as its sub-account.
    pub master: Option<String>,
}

impl Account {
    pub fn bal(&mut self, cur: &str) -> &mut Balance {
        self.balances.entry(cur.to_string()).or_default()
    }
}

/// Where a withdrawal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawalState {
    Waiting,
    Done,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub uuid: Uuid,
    pub account: String,
    pub currency: String,
    pub net_type: String,
    pub address: String,
    pub txid: Option<String>,
    pub state: WithdrawalState,
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

/// An address on the withdrawal allowlist.
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
    pub taker_side: Side,
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
/// - `true_loss`: Σ over attacker fills of the deviation from the reference price times
///   the volume (paid above reference on buys, received below it on sells), plus fees paid,
///   plus withdrawals valued at the reference price; a decimal string in `loss_currency`
///   (the façade's quote currency).
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
    /// The user's own withdrawals (e.g. to their long-used cold wallet): not the attacker's.
    pub user_withdrawal_uuids: Vec<Uuid>,
    pub true_loss: String,
    pub loss_currency: String,
    pub revoked_at: Option<String>,
    pub attacker_orders_by_minute: BTreeMap<String, u32>,
    #[serde(skip)]
    pub loss: Decimal,
    /// Decimal places the loss is rounded to (the quote's minor unit).
    #[serde(skip)]
    pub loss_dp: u32,
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

/// Index key of an order among its account's orders in one state: creation time, then
/// position (ties keep arrival order).
pub type OrderSlot = (DateTime<Utc>, usize);

/// Index key of a fill among its account's fills: fill time, trade id, then the position of
/// its order and its position among the order's fills.
pub type FillSlot = (DateTime<Utc>, u64, usize, usize);

/// The whole mutable world.
#[derive(Debug, Default)]
pub struct World {
    pub accounts: BTreeMap<String, Account>,
    pub keys: HashMap<String, KeyRec>,
    /// Every order; positions are stable once [`World::reindex`] ran after generation.
    pub orders: Vec<Order>,
    by_uuid: HashMap<Uuid, usize>,
    by_identifier: HashMap<(String, String), usize>,
    /// Every position of an identifier an account used more than once.
    identifier_reused: HashMap<(String, String), Vec<usize>>,
    by_state: HashMap<(String, OrderState), BTreeSet<OrderSlot>>,
    by_fill: HashMap<String, BTreeSet<FillSlot>>,
    /// Fill time by trade id (ids are dense from 1).
    fill_at: Vec<DateTime<Utc>>,
    /// The highest trade id indexed and its fill time.
    fill_last: Option<(u64, DateTime<Utc>)>,
    /// Set once a fill was indexed older than one with a lower trade id: trade ids then no
    /// longer follow fill times.
    fill_ids_unordered: bool,
    pub books: BTreeMap<String, Book>,
    pub tape: BTreeMap<String, BTreeMap<(i64, u64), Tick>>,
    pub withdrawals: Vec<Withdrawal>,
    pub deposits: Vec<Deposit>,
    pub addresses: Vec<CoinAddress>,
    pub truth: GroundTruth,
    pub requests: VecDeque<RequestRecord>,
    pub requests_dropped: u64,
    pub seq: u64,
    /// The last trade number given ([`Fill::id`]).
    pub trade_seq: u64,
    /// Last items of the previous list page per (account, list), as the façade rendered
    /// them (JSON text), for the repeat-page fault.
    pub last_pages: HashMap<(String, String), Vec<String>>,
    /// Order lists (one-cancels-the-other), in order of arrival.
    pub order_lists: Vec<OrderList>,
    /// The list an order is a leg of (order position → list position).
    pub list_of: HashMap<usize, usize>,
    /// JSON text façades wrote for closed orders ([`World::fragment`]).
    pub fragments: RefCell<Fragments>,
}

/// Orders placed together so that the first fill of one leg cancels the others (an OCO).
/// Neutral: a façade that offers order lists creates them with [`World::push_list`]; the
/// matching engine cancels the other legs ([`crate::mock::venue::matching::end_linked`]).
#[derive(Debug, Clone)]
pub struct OrderList {
    pub account: String,
    pub market: Arc<Market>,
    /// Positions of the legs, in the order the façade placed them.
    pub legs: Vec<usize>,
    /// Per leg: the stop price of a leg held off the book until its stop triggers (the
    /// venue never triggers stops: such a leg stays open until the list ends).
    pub stops: Vec<Option<Decimal>>,
    /// The list's client id.
    pub identifier: String,
    pub created_at: DateTime<Utc>,
}

impl OrderList {
    /// Whether any leg is still open.
    pub fn is_open(&self, w: &World) -> bool {
        self.legs
            .iter()
            .any(|&i| w.orders.get(i).is_some_and(|o| o.state == OrderState::Open))
    }
}

impl World {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The number of the next trade ([`Fill::id`]).
    pub fn next_trade_id(&mut self) -> u64 {
        self.trade_seq += 1;
        self.trade_seq
    }

    /// Records an order list over legs already placed; returns its position.
    pub fn push_list(&mut self, list: OrderList) -> usize {
        let pos = self.order_lists.len();
        for &leg in &list.legs {
            self.list_of.insert(leg, pos);
        }
        self.order_lists.push(list);
        pos
    }

    /// Whether order `idx` is a stop leg of an order list (it waits off the book).
    pub fn held_off_book(&self, idx: usize) -> bool {
        self.list_of(idx).is_some_and(|(_, l)| {
            l.legs
                .iter()
                .position(|&i| i == idx)
                .and_then(|k| l.stops.get(k).copied().flatten())
                .is_some()
        })
    }

    /// The list order `idx` is a leg of.
    pub fn list_of(&self, idx: usize) -> Option<(usize, &OrderList)> {
        let pos = *self.list_of.get(&idx)?;
        Some((pos, self.order_lists.get(pos)?))
    }

    /// Appends an order and indexes it; returns its position.
    pub fn push_order(&mut self, o: Order) -> usize {
        let idx = self.orders.len();
        self.index(idx, &o);
        self.orders.push(o);
        idx
    }

    /// Appends a fill to order `idx` and indexes it. Every fill made after generation goes
    /// through here.
    pub fn push_fill(&mut self, idx: usize, f: Fill) {
        let slot = (f.created_at, f.id, idx, self.orders[idx].trades.len());
        self.fragments.get_mut().forget(idx);
        self.orders[idx].trades.push(f);
        let account = self.orders[idx].account.clone();
        self.index_fill(&account, slot);
    }

    fn index_fill(&mut self, account: &str, slot: FillSlot) {
        let (t, id, _, _) = slot;
        match self.fill_last {
            Some((last, at)) if id < last || (id == last && t != at) || (id > last && t < at) => {
                self.fill_ids_unordered = true;
            }
            _ => {}
        }
        if self.fill_last.map_or(true, |(last, _)| id > last) {
            self.fill_last = Some((id, t));
        }
        let i = id as usize;
        if self.fill_at.len() <= i {
            self.fill_at.resize(i + 1, DateTime::<Utc>::MIN_UTC);
        }
        self.fill_at[i] = t;
        match self.by_fill.get_mut(account) {
            Some(set) => {
                set.insert(slot);
            }
            None => {
                self.by_fill
                    .insert(account.to_string(), BTreeSet::from([slot]));
            }
        }
    }

    /// Rebuilds the fill index (after generation renumbered or moved fills), indexing in
    /// trade-id order so that [`World::fill_ids_follow_time`] tells whether ids follow times.
    fn reindex_fills(&mut self) {
        self.fragments.get_mut().clear();
        self.by_fill.clear();
        self.fill_at.clear();
        self.fill_last = None;
        self.fill_ids_unordered = false;
        let mut all: Vec<(u64, DateTime<Utc>, usize, usize)> = self
            .fills_at()
            .map(|(f, i, j)| (f.id, f.created_at, i, j))
            .collect();
        all.sort_unstable();
        for (id, t, i, j) in all {
            let account = std::mem::take(&mut self.orders[i].account);
            self.index_fill(&account, (t, id, i, j));
            self.orders[i].account = account;
        }
    }

    /// Whether trade ids follow fill times (a fill with a higher id is never older), so an
    /// order by (time, id) is an order by id. True for generated history and for fills the
    /// engine makes on a clock that does not go back.
    pub fn fill_ids_follow_time(&self) -> bool {
        !self.fill_ids_unordered
    }

    /// The time of the fill with trade id `id` (None when no fill has it).
    pub fn fill_time(&self, id: u64) -> Option<DateTime<Utc>> {
        self.fill_at
            .get(usize::try_from(id).ok()?)
            .copied()
            .filter(|t| id > 0 && *t != DateTime::<Utc>::MIN_UTC)
    }

    /// The highest trade id made so far.
    pub fn last_fill_id(&self) -> u64 {
        self.fill_last.map_or(0, |(id, _)| id)
    }

    /// An account's fills made within `[from, to]` (inclusive) that `keep` accepts (order
    /// position, order, fill), by (fill time, trade id), newest first when asked: the first
    /// `take` of them and any after those with the same trade id as the last. When trade ids
    /// do not follow fill times ([`World::fill_ids_follow_time`]) every accepted fill in the
    /// window instead, so a caller that orders by trade id still sees each candidate: callers
    /// sort by their own key and cut.
    pub fn list_fills(
        &self,
        account: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        newest_first: bool,
        keep: &dyn Fn(usize, &Order, &Fill) -> bool,
        take: usize,
    ) -> Vec<FillSlot> {
        let Some(set) = self.by_fill.get(account) else {
            return Vec::new();
        };
        if from > to {
            return Vec::new();
        }
        let range = set.range((from, 0, 0, 0)..=(to, u64::MAX, usize::MAX, usize::MAX));
        let range: Box<dyn Iterator<Item = &FillSlot>> = if newest_first {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let all = !self.fill_ids_follow_time();
        let mut out: Vec<FillSlot> = Vec::new();
        for s in range {
            if !all && out.len() >= take && out.last().is_some_and(|l| l.1 != s.1) {
                break;
            }
            let o = &self.orders[s.2];
            if keep(s.2, o, &o.trades[s.3]) {
                out.push(*s);
            }
        }
        out
    }

    fn index(&mut self, idx: usize, o: &Order) {
        for (j, f) in o.trades.iter().enumerate() {
            self.index_fill(&o.account, (f.created_at, f.id, idx, j));
        }
        self.by_uuid.insert(o.uuid, idx);
        if let Some(id) = &o.identifier {
            let k = (o.account.clone(), id.clone());
            // The latest order with an identifier wins (as a reverse scan would find it);
            // an identifier used again keeps every position in `identifier_reused`.
            match self.by_identifier.entry(k) {
                Entry::Occupied(mut e) => {
                    let prev = *e.get();
                    if prev != idx {
                        self.identifier_reused
                            .entry(e.key().clone())
                            .or_insert_with(|| vec![prev])
                            .push(idx);
                        e.insert(prev.max(idx));
                    }
                }
                Entry::Vacant(e) => {
                    e.insert(idx);
                }
            }
        }
        self.by_state
            .entry((o.account.clone(), o.state))
            .or_default()
            .insert((o.created_at, idx));
    }

    /// Sets an order's state, moving it between the per-state indexes. Every change of state
    /// after generation goes through here.
    pub fn set_state(&mut self, idx: usize, state: OrderState) {
        let (old, at) = (self.orders[idx].state, self.orders[idx].created_at);
        if old == state {
            return;
        }
        self.fragments.get_mut().forget(idx);
        let account = self.orders[idx].account.clone();
        if let Some(s) = self.by_state.get_mut(&(account.clone(), old)) {
            s.remove(&(at, idx));
        }
        self.by_state
            .entry((account, state))
            .or_default()
            .insert((at, idx));
        self.orders[idx].state = state;
    }

    /// Rebuilds every index (after generation sorted the orders by time).
    pub fn reindex(&mut self) {
        self.by_uuid.clear();
        self.by_identifier.clear();
        self.identifier_reused.clear();
        self.by_state.clear();
        let orders = std::mem::take(&mut self.orders);
        for (i, o) in orders.iter().enumerate() {
            self.index(i, o);
        }
        self.orders = orders;
        self.reindex_fills();
    }

    pub fn position(&self, uuid: &Uuid) -> Option<usize> {
        self.by_uuid.get(uuid).copied()
    }

    pub fn order(&self, uuid: &Uuid) -> Option<&Order> {
        self.position(uuid).map(|i| &self.orders[i])
    }

    /// Whether an account already used an identifier.
    pub fn identifier_used(&self, account: &str, ident: &str) -> bool {
        self.by_identifier
            .contains_key(&(account.to_string(), ident.to_string()))
    }

    /// The latest order of an account with this identifier.
    pub fn find_by_identifier(&self, account: &str, ident: &str) -> Option<usize> {
        self.by_identifier
            .get(&(account.to_string(), ident.to_string()))
            .copied()
    }

    /// Every order of an account with this identifier (usually one), in no particular order.
    pub fn find_all_by_identifier(&self, account: &str, ident: &str) -> Vec<usize> {
        let k = (account.to_string(), ident.to_string());
        match self.identifier_reused.get(&k) {
            Some(all) => all.clone(),
            None => self.by_identifier.get(&k).copied().into_iter().collect(),
        }
    }

    /// An account's orders in one state, oldest first: (creation time, position).
    pub fn orders_in_state(
        &self,
        account: &str,
        state: OrderState,
    ) -> impl DoubleEndedIterator<Item = &OrderSlot> + '_ {
        self.by_state
            .get(&(account.to_string(), state))
            .into_iter()
            .flat_map(|s| s.iter())
    }

    /// An account's orders in one state created within `[from, to]`, oldest first.
    pub fn orders_in_state_between(
        &self,
        account: &str,
        state: OrderState,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl DoubleEndedIterator<Item = &OrderSlot> + '_ {
        self.by_state
            .get(&(account.to_string(), state))
            .into_iter()
            .flat_map(move |s| s.range((from, 0)..=(to, usize::MAX)))
    }

    /// A page of an account's orders in `states` (within `between`, inclusive, when given)
    /// that `keep` accepts, by creation time (newest first when `newest_first`; ties by
    /// arrival): positions `skip..skip + take` of that list. Walks only the account's orders
    /// in those states, from the wanted end, and stops once the page is full.
    #[allow(clippy::too_many_arguments)]
    pub fn list_orders(
        &self,
        account: &str,
        states: &[OrderState],
        between: Option<(DateTime<Utc>, DateTime<Utc>)>,
        newest_first: bool,
        keep: &dyn Fn(&Order) -> bool,
        skip: usize,
        take: usize,
    ) -> Vec<usize> {
        let keep = |_: usize, o: &Order| keep(o);
        self.list_orders_at(account, states, between, newest_first, &keep, skip, take)
    }

    /// [`World::list_orders`] with a filter that also sees each order's position.
    #[allow(clippy::too_many_arguments)]
    pub fn list_orders_at(
        &self,
        account: &str,
        states: &[OrderState],
        between: Option<(DateTime<Utc>, DateTime<Utc>)>,
        newest_first: bool,
        keep: &dyn Fn(usize, &Order) -> bool,
        skip: usize,
        take: usize,
    ) -> Vec<usize> {
        // One walk per state, each already in time order from the wanted end; merged (the
        // oldest head first, or the newest when newest first) so the page comes out in order
        // and the walk stops at its last item: nothing collected and sorted.
        let (lo, hi) = match between {
            Some((from, to)) if from <= to => ((from, 0), (to, usize::MAX)),
            Some(_) => return Vec::new(),
            None => (
                (DateTime::<Utc>::MIN_UTC, 0),
                (DateTime::<Utc>::MAX_UTC, usize::MAX),
            ),
        };
        let step = |r: &mut std::collections::btree_set::Range<'_, OrderSlot>| {
            if newest_first {
                r.next_back().copied()
            } else {
                r.next().copied()
            }
        };
        let mut walks: Vec<(
            std::collections::btree_set::Range<'_, OrderSlot>,
            Option<OrderSlot>,
        )> = Vec::with_capacity(states.len());
        for &st in states {
            if let Some(set) = self.by_state.get(&(account.to_string(), st)) {
                let mut r = set.range(lo..=hi);
                let head = step(&mut r);
                walks.push((r, head));
            }
        }
        let mut out = Vec::with_capacity(take.min(4096));
        let mut skipped = 0;
        while out.len() < take {
            let mut best: Option<(usize, OrderSlot)> = None;
            for (n, (_, head)) in walks.iter().enumerate() {
                if let Some(s) = *head {
                    let better =
                        best.map_or(true, |(_, b)| if newest_first { s > b } else { s < b });
                    if better {
                        best = Some((n, s));
                    }
                }
            }
            let Some((n, s)) = best else { break };
            let (r, head) = &mut walks[n];
            *head = step(r);
            if keep(s.1, &self.orders[s.1]) {
                if skipped < skip {
                    skipped += 1;
                } else {
                    out.push(s.1);
                }
            }
        }
        out
    }

    /// Number of orders in a state, over all accounts.
    pub fn count_in_state(&self, state: OrderState) -> usize {
        self.by_state
            .iter()
            .filter(|((_, s), _)| *s == state)
            .map(|(_, v)| v.len())
            .sum()
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

    /// A list page as a façade rendered it (JSON text per item): remembers its last items per
    /// (account, list) and, under the repeat-page fault, puts the previous page's last items
    /// in front of this one (cut to `limit`).
    pub fn page(
        &mut self,
        acct: &str,
        kind: &str,
        mut items: Vec<String>,
        repeat: bool,
        limit: usize,
    ) -> Vec<String> {
        let key = (acct.to_string(), kind.to_string());
        if repeat {
            if let Some(prev) = self.last_pages.get(&key) {
                let mut out: Vec<String> = prev.clone();
                out.append(&mut items);
                out.truncate(limit);
                items = out;
            }
        }
        let tail: Vec<String> = items.iter().rev().take(3).rev().cloned().collect();
        self.remember_page_tail(key, tail);
        items
    }

    /// [`World::page`] for a page written into one buffer: the finished JSON array. Only
    /// the repeat-page fault takes the items apart.
    pub fn page_text(
        &mut self,
        acct: &str,
        kind: &str,
        page: PageText,
        repeat: bool,
        limit: usize,
    ) -> String {
        if repeat {
            let items: Vec<String> = page.items().map(str::to_string).collect();
            return crate::mock::http::json_array(&self.page(acct, kind, items, true, limit));
        }
        let tail: Vec<String> = page.last_items(3).map(str::to_string).collect();
        self.remember_page_tail((acct.to_string(), kind.to_string()), tail);
        page.finish()
    }

    fn remember_page_tail(&mut self, key: (String, String), tail: Vec<String>) {
        if self.last_pages.len() > 10_000 {
            self.last_pages.clear();
        }
        self.last_pages.insert(key, tail);
    }

    /// Revokes a key (the user deleting it, or a master account deleting its sub-account's
    /// key) and, for the leaked key, records when in the ground truth. False when unknown.
    pub fn revoke_key(&mut self, access_key: &str, now: DateTime<Utc>) -> bool {
        let Some(k) = self.keys.get_mut(access_key) else {
            return false;
        };
        if k.revoked_at.is_none() {
            k.revoked_at = Some(now);
        }
        if self.truth.leaked_access_key == access_key && self.truth.revoked_at.is_none() {
            self.truth.revoked_at = Some(crate::mock::venue::clock::ts(now));
        }
        true
    }

    /// Every fill with its order's position and its own position in that order's trades.
    fn fills_at(&self) -> impl Iterator<Item = (&Fill, usize, usize)> {
        self.orders
            .iter()
            .enumerate()
            .flat_map(|(i, o)| o.trades.iter().enumerate().map(move |(j, f)| (f, i, j)))
    }

    /// Numbers every fill in time order (ties by order position, then fill position), after
    /// generation wrote them out of order; trades matched later continue from there.
    pub fn number_fills(&mut self) {
        let mut all: Vec<(DateTime<Utc>, usize, usize)> = self
            .fills_at()
            .map(|(f, i, j)| (f.created_at, i, j))
            .collect();
        all.sort_unstable();
        for (n, (_, i, j)) in all.iter().enumerate() {
            self.orders[*i].trades[*j].id = n as u64 + 1;
        }
        self.trade_seq = all.len() as u64;
        self.reindex_fills();
    }

    pub fn add_loss(&mut self, d: Decimal) {
        self.truth.loss += d;
        self.truth.true_loss = self
            .truth
            .loss
            .round_dp(self.truth.loss_dp)
            .normalize()
            .to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(account: &str, minute: i64, state: OrderState) -> Order {
        let t0: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
        Order {
            uuid: Uuid::new_v4(),
            account: account.into(),
            market: Arc::new(Market {
                symbol: if minute % 2 == 0 { "EVEN" } else { "ODD" }.into(),
                base: "B".into(),
                quote: "Q".into(),
            }),
            side: Side::Bid,
            kind: OrderKind::Limit,
            price: Some(Decimal::ONE),
            quote_amount: None,
            volume: Some(Decimal::ONE),
            remaining_volume: Decimal::ONE,
            remaining_funds: Decimal::ZERO,
            reserved_fee: Decimal::ZERO,
            remaining_fee: Decimal::ZERO,
            paid_fee: Decimal::ZERO,
            locked: Decimal::ZERO,
            executed_volume: Decimal::ZERO,
            executed_funds: Decimal::ZERO,
            state,
            created_at: t0 + chrono::Duration::minutes(minute),
            identifier: Some(format!("id-{minute}")),
            tif: None,
            trades: Vec::new(),
        }
    }

    /// The merged walk of the per-state indexes gives what a scan of every order, sorted by
    /// (time, position) and cut, gives: on a randomized store with ties, three states, windows,
    /// a filter, skips and takes, both directions.
    #[test]
    fn the_merged_index_walk_is_the_sorted_scan() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        let states = [OrderState::Open, OrderState::Done, OrderState::Cancelled];
        let mut w = World::default();
        for _ in 0..600 {
            let acct = if rng.gen_bool(0.8) { "a" } else { "b" };
            let st = states[rng.gen_range(0..3)];
            w.push_order(order(acct, rng.gen_range(0..120), st));
        }
        let t = |m: i64| {
            "2026-11-20T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(m)
        };
        for round in 0..400 {
            let wanted: Vec<OrderState> = states
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.6))
                .collect();
            let between = match rng.gen_range(0..3) {
                0 => None,
                _ => {
                    let a = rng.gen_range(-5..125);
                    Some((t(a), t(a + rng.gen_range(-3..60))))
                }
            };
            let newest = rng.gen_bool(0.5);
            let even_only = rng.gen_bool(0.3);
            let keep = |o: &Order| !even_only || o.market.symbol == "EVEN";
            let (skip, take) = (rng.gen_range(0..40), rng.gen_range(0..200));
            let mut scan: Vec<OrderSlot> = w
                .orders
                .iter()
                .enumerate()
                .filter(|(_, o)| o.account == "a" && wanted.contains(&o.state) && keep(o))
                .filter(|(_, o)| {
                    between.map_or(true, |(f, to)| o.created_at >= f && o.created_at <= to)
                })
                .map(|(i, o)| (o.created_at, i))
                .collect();
            scan.sort_unstable();
            if newest {
                scan.reverse();
            }
            let scan: Vec<usize> = scan
                .into_iter()
                .skip(skip)
                .take(take)
                .map(|s| s.1)
                .collect();
            let walked = w.list_orders("a", &wanted, between, newest, &keep, skip, take);
            assert_eq!(walked, scan, "round {round}");
        }
    }

    #[test]
    fn a_page_written_in_one_buffer_is_the_joined_items_and_keeps_them_apart() {
        use crate::mock::venue::fragments::PageText;
        let mut w = World::default();
        let done = w.push_order(order("a", 1, OrderState::Done));
        let open = w.push_order(order("a", 2, OrderState::Open));
        let items = ["{\"n\":1}", "{\"n\":[2,3]}", "\"x,y\"", "{}"];
        let mut page = PageText::with_capacity(2, 8);
        assert!(page.is_empty());
        for (n, t) in items.iter().enumerate() {
            let idx = if n % 2 == 0 { done } else { open };
            w.fragment_into(&mut page, "p", idx, Some(n), |b| b.push_str(t));
        }
        assert_eq!(page.len(), 4);
        assert_eq!(page.items().collect::<Vec<_>>(), items);
        let owned: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        let text = w.page_text("a", "k", page, false, 10);
        assert_eq!(text, crate::mock::http::json_array(&owned));
        assert_eq!(PageText::with_capacity(0, 0).finish(), "[]");
        // A kept text is copied into the next page, not rendered again.
        let mut again = PageText::with_capacity(1, 8);
        w.fragment_into(&mut again, "p", done, Some(0), |_| panic!("kept"));
        assert_eq!(again.items().collect::<Vec<_>>(), [items[0]]);
        // The repeat-page fault puts the last page's last three items in front, cut to the
        // limit, as for pages of separate items.
        let text = w.page_text("a", "k", again, true, 3);
        let repeated =
            crate::mock::http::json_array(&[owned[1].clone(), owned[2].clone(), owned[3].clone()]);
        assert_eq!(text, repeated);
    }

    #[test]
    fn listings_follow_state_changes_time_order_and_windows() {
        let mut w = World::default();
        let t = |m: i64| {
            "2026-11-20T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(m)
        };
        for m in 0..10 {
            let st = if m % 3 == 0 {
                OrderState::Cancelled
            } else {
                OrderState::Done
            };
            w.push_order(order("a", m, st));
            w.push_order(order("b", m, OrderState::Done));
        }
        // Two orders of the same minute keep their arrival order.
        let tie = w.push_order(order("a", 4, OrderState::Open));
        let any = |_: &Order| true;
        let closed = [OrderState::Done, OrderState::Cancelled];
        let newest = w.list_orders("a", &closed, None, true, &any, 0, 3);
        let minutes: Vec<i64> = newest
            .iter()
            .map(|&i| (w.orders[i].created_at - t(0)).num_minutes())
            .collect();
        assert_eq!(minutes, [9, 8, 7], "both states merged, newest first");
        assert_eq!(
            w.list_orders("a", &[OrderState::Open], None, true, &any, 0, 10),
            [tie]
        );
        // Cancelling moves it between indexes.
        w.set_state(tie, OrderState::Cancelled);
        assert!(w
            .list_orders("a", &[OrderState::Open], None, true, &any, 0, 10)
            .is_empty());
        let window = w.list_orders(
            "a",
            &[OrderState::Cancelled],
            Some((t(3), t(6))),
            false,
            &any,
            0,
            10,
        );
        let got: Vec<(i64, usize)> = window
            .iter()
            .map(|&i| ((w.orders[i].created_at - t(0)).num_minutes(), i))
            .collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [3, 4, 6],
            "inclusive bounds"
        );
        assert!(got[1].1 == tie);
        // A filter, a skip, and another account untouched.
        let even = |o: &Order| o.market.symbol == "EVEN";
        let page = w.list_orders("a", &closed, None, false, &even, 1, 2);
        let minutes: Vec<i64> = page
            .iter()
            .map(|&i| (w.orders[i].created_at - t(0)).num_minutes())
            .collect();
        assert_eq!(minutes, [2, 4]);
        let same_minute = w.list_orders("a", &closed, None, false, &even, 2, 2);
        assert_eq!(same_minute[1], tie, "a tie keeps arrival order");
        assert_eq!(
            w.orders[same_minute[0]].created_at,
            w.orders[tie].created_at
        );
        assert_eq!(
            w.list_orders("b", &closed, None, true, &any, 0, 100).len(),
            10
        );
        assert_eq!(w.count_in_state(OrderState::Open), 0);
        assert_eq!(
            w.find_by_identifier("a", "id-4"),
            Some(tie),
            "the latest wins"
        );
        // Rebuilding the indexes gives the same answers.
        let before = w.list_orders("a", &closed, None, true, &any, 0, 100);
        w.reindex();
        assert_eq!(
            w.list_orders("a", &closed, None, true, &any, 0, 100),
            before
        );
    }

    #[test]
    fn kept_texts_are_those_of_closed_orders_and_go_when_the_order_changes() {
        use crate::mock::venue::fragments::CAP_BYTES;
        use std::cell::Cell;
        let mut w = World::default();
        let open = w.push_order(order("a", 1, OrderState::Open));
        let done = w.push_order(order("a", 2, OrderState::Done));
        let renders = Cell::new(0);
        let text = |w: &World, i: usize| {
            renders.set(renders.get() + 1);
            let o = &w.orders[i];
            format!("{i}:{:?}:{}", o.state, o.trades.len())
        };
        // A closed order is rendered once per shape and fill, then copied.
        for _ in 0..3 {
            assert_eq!(w.fragment("s", done, None, || text(&w, done)), "1:Done:0");
        }
        assert_eq!(renders.get(), 1);
        assert_eq!(w.fragment("t", done, None, || text(&w, done)), "1:Done:0");
        assert_eq!(
            w.fragment("s", done, Some(0), || text(&w, done)),
            "1:Done:0"
        );
        assert_eq!(renders.get(), 3, "each shape and fill kept apart");
        // An open order is rendered every time.
        w.fragment("s", open, None, || text(&w, open));
        w.fragment("s", open, None, || text(&w, open));
        assert_eq!(renders.get(), 5);
        // Closing it, closing it otherwise, or a new fill: the next text is the new one.
        w.set_state(open, OrderState::Cancelled);
        assert_eq!(
            w.fragment("s", open, None, || text(&w, open)),
            "0:Cancelled:0"
        );
        w.set_state(open, OrderState::Done);
        assert_eq!(w.fragment("s", open, None, || text(&w, open)), "0:Done:0");
        let market = w.orders[open].market.clone();
        w.push_fill(
            open,
            Fill {
                uuid: Uuid::new_v4(),
                id: 1,
                market,
                price: Decimal::ONE,
                volume: Decimal::ONE,
                funds: Decimal::ONE,
                side: Side::Bid,
                taker_side: Side::Bid,
                created_at: w.orders[open].created_at,
            },
        );
        assert_eq!(w.fragment("s", open, None, || text(&w, open)), "0:Done:1");
        let before = renders.get();
        assert_eq!(w.fragment("s", open, None, || text(&w, open)), "0:Done:1");
        assert_eq!(renders.get(), before, "kept again");
        // Rebuilding the indexes drops everything.
        w.reindex();
        w.fragment("s", done, None, || text(&w, done));
        assert_eq!(renders.get(), before + 1);
        // Memory stays under the cap.
        let big = "x".repeat(1 << 20);
        for n in 0..(CAP_BYTES >> 20) + 8 {
            w.fragment("big", done, Some(n), || big.clone());
            assert!(w.fragments.borrow().bytes() <= CAP_BYTES);
        }
    }

    /// Every fill of `account` in `[from, to]` that `keep` accepts, by scanning every order:
    /// what the fill index must agree with.
    fn scan_fills(
        w: &World,
        account: &str,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        newest_first: bool,
        keep: &dyn Fn(usize, &Order, &Fill) -> bool,
    ) -> Vec<FillSlot> {
        let mut v: Vec<FillSlot> = Vec::new();
        for (i, o) in w.orders.iter().enumerate() {
            for (j, f) in o.trades.iter().enumerate() {
                if o.account == account
                    && f.created_at >= from
                    && f.created_at <= to
                    && keep(i, o, f)
                {
                    v.push((f.created_at, f.id, i, j));
                }
            }
        }
        v.sort_unstable();
        if newest_first {
            v.reverse();
        }
        v
    }

    #[test]
    fn the_fill_index_returns_what_a_scan_of_every_order_returns() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        let t0: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        let mut w = World::default();
        // A generated past: orders with fills at random times, numbered afterwards.
        for n in 0..600 {
            let account = ["a", "b", "c"][rng.gen_range(0..3)];
            let mut o = order(account, n, OrderState::Done);
            for _ in 0..rng.gen_range(0..4) {
                o.trades.push(Fill {
                    uuid: Uuid::new_v4(),
                    id: 0,
                    market: o.market.clone(),
                    price: Decimal::ONE,
                    volume: Decimal::ONE,
                    funds: Decimal::ONE,
                    side: Side::Bid,
                    taker_side: Side::Bid,
                    created_at: at(rng.gen_range(0..5_000)),
                });
            }
            w.push_order(o);
        }
        w.number_fills();
        let check = |w: &World, rng: &mut rand_chacha::ChaCha8Rng| {
            for _ in 0..300 {
                let account = ["a", "b", "c", "nobody"][rng.gen_range(0..4)];
                let (x, y) = (rng.gen_range(-100..6_100), rng.gen_range(-100..6_100));
                let window = (at(x.min(y)), at(x.max(y)));
                let newest = rng.gen_bool(0.5);
                let take = rng.gen_range(0..40);
                let even = rng.gen_bool(0.5);
                let min_id = rng.gen_range(0..w.last_fill_id() + 2);
                let keep = |_: usize, o: &Order, f: &Fill| {
                    (!even || o.market.symbol == "EVEN") && f.id >= min_id
                };
                let all = scan_fills(w, account, window, newest, &keep);
                let got = w.list_fills(account, window, newest, &keep, take);
                if !w.fill_ids_follow_time() {
                    assert_eq!(got, all, "unordered ids: every candidate");
                    continue;
                }
                assert!(got.len() >= take.min(all.len()), "at least the page");
                assert_eq!(got[..], all[..got.len()], "a prefix of the scan's order");
                if let (Some(last), Some(next)) = (got.last(), all.get(got.len())) {
                    assert_ne!(last.1, next.1, "ties of the last trade id come along");
                }
                // Ids follow times: the first `take` by trade id are among those walked.
                let mut by_id: Vec<u64> = all.iter().map(|s| s.1).collect();
                by_id.sort_unstable();
                if newest {
                    by_id.reverse();
                }
                let mut walked: Vec<u64> = got.iter().map(|s| s.1).collect();
                walked.sort_unstable();
                if newest {
                    walked.reverse();
                }
                let n = take.min(by_id.len());
                assert_eq!(walked[..n], by_id[..n]);
                if let Some(&id) = got.first().map(|s| &s.1) {
                    assert_eq!(w.fill_time(id), Some(got[0].0));
                }
            }
        };
        assert!(w.fill_ids_follow_time(), "numbered in time order");
        check(&w, &mut rng);
        // Fills the engine makes later, on a clock that goes forward, keep ids in order;
        // one older than the newest fill breaks the order and the index says so.
        for k in 0..40 {
            let i = rng.gen_range(0..w.orders.len());
            let id = w.next_trade_id();
            let f = Fill {
                uuid: Uuid::new_v4(),
                id,
                market: w.orders[i].market.clone(),
                price: Decimal::ONE,
                volume: Decimal::ONE,
                funds: Decimal::ONE,
                side: Side::Ask,
                taker_side: Side::Bid,
                created_at: at(6_000 + k * 3),
            };
            w.push_fill(i, f.clone());
            if k % 5 == 0 {
                // The maker's side of the same trade.
                w.push_fill(rng.gen_range(0..w.orders.len()), f);
            }
        }
        assert!(w.fill_ids_follow_time());
        check(&w, &mut rng);
        let id = w.next_trade_id();
        let mut late = w
            .orders
            .iter()
            .find_map(|o| o.trades.first().cloned())
            .expect("a fill");
        late.id = id;
        late.created_at = at(100);
        w.push_fill(3, late);
        assert!(!w.fill_ids_follow_time());
        check(&w, &mut rng);
    }
}
