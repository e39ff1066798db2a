//! Binance's JSON shapes for the venue's orders, fills, balances and transfers.
//!
//! Prices and quantities are strings with eight decimals (`"0.01000000"`); ids and times are
//! numbers (epoch milliseconds, UTC). The venue's orders are numbered by their position:
//! `orderId` is [`ORDER_ID_BASE`] plus it, so ids grow with time like Binance's. Trade ids are
//! the venue's trade numbers. An order placed without a client id shows the one Binance would
//! assign: `web_` and the 32 hex digits of its uuid for the user's own orders in the website,
//! else 22 letters and digits (the uuid in base 62) for an API order; either looks it up.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::mock::venue::fragments::PageText;
use crate::mock::venue::jsontext::{key, Obj};
use crate::mock::venue::state::{
    Deposit, Fill, Order, OrderKind, OrderState, Side, Tif, Withdrawal, WithdrawalState, World,
};

/// `orderId` of the venue's first order.
pub const ORDER_ID_BASE: u64 = 1_000_000;

/// Eight decimals, as Binance writes amounts.
pub fn d8(x: Decimal) -> String {
    let mut x = x.round_dp(8);
    x.rescale(8);
    x.to_string()
}

/// Epoch milliseconds.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A time from epoch milliseconds.
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// `orderId` of the order at `idx`.
pub fn order_id(idx: usize) -> u64 {
    ORDER_ID_BASE + idx as u64
}

/// The position of `orderId` among `len` orders.
pub fn order_idx(id: u64, len: usize) -> Option<usize> {
    let i = usize::try_from(id.checked_sub(ORDER_ID_BASE)?).ok()?;
    (i < len).then_some(i)
}

/// Letters and digits of a Binance-assigned client id, in base-62 digit order.
const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 22-character client id Binance assigns to an API order sent without one (the uuid in
/// base 62, zero-padded: 62^22 > 2^128).
pub fn auto_client_id(u: &uuid::Uuid) -> String {
    let mut n = u.as_u128();
    let mut out = [b'0'; 22];
    for c in out.iter_mut().rev() {
        *c = B62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// The uuid behind an [`auto_client_id`]; None when `id` is not one.
fn parse_auto_client_id(id: &str) -> Option<uuid::Uuid> {
    if id.len() != 22 {
        return None;
    }
    let mut n: u128 = 0;
    for b in id.bytes() {
        let d = B62.iter().position(|&x| x == b)? as u128;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(uuid::Uuid::from_u128(n))
}

/// Whether the order is one the user placed in the website (the scenario's manual orders).
pub fn manual(w: &World, o: &Order) -> bool {
    w.truth.user_manual_order_uuids.contains(&o.uuid)
}

/// The order's client id: the one it was placed with, else the one Binance assigns (`web_`
/// and 32 hex digits in the website, 22 letters and digits through the API).
pub fn client_order_id(w: &World, o: &Order) -> String {
    match &o.identifier {
        Some(id) => id.clone(),
        None if manual(w, o) => format!("web_{}", o.uuid.simple()),
        None => auto_client_id(&o.uuid),
    }
}

/// [`client_order_id`] written into a list's text as a JSON string, without a string of
/// its own.
fn push_client_order_id(out: &mut String, w: &World, o: &Order) {
    use crate::mock::venue::jsontext::push_json_str;
    match &o.identifier {
        Some(id) => push_json_str(out, id),
        None if manual(w, o) => {
            let mut hex = uuid::Uuid::encode_buffer();
            out.push_str("\"web_");
            out.push_str(o.uuid.simple().encode_lower(&mut hex));
            out.push('"');
        }
        None => push_json_str(out, &auto_client_id(&o.uuid)),
    }
}

/// Finds an account's order by client id (given, else the one Binance assigned).
pub fn find_by_client_id(w: &World, account: &str, id: &str) -> Option<usize> {
    if let Some(i) = w.find_by_identifier(account, id) {
        return Some(i);
    }
    let u = match id.strip_prefix("web_") {
        Some(hex) if hex.len() == 32 => uuid::Uuid::try_parse(hex).ok()?,
        Some(_) => return None,
        None => parse_auto_client_id(id)?,
    };
    let i = w.position(&u)?;
    let o = &w.orders[i];
    (o.account == account && o.identifier.is_none() && client_order_id(w, o) == id).then_some(i)
}

pub fn side(s: Side) -> &'static str {
    match s {
        Side::Bid => "BUY",
        Side::Ask => "SELL",
    }
}

/// `type`: `LIMIT`, `LIMIT_MAKER` (post-only) or `MARKET`.
pub fn order_type(o: &Order) -> &'static str {
    match (o.kind, o.tif) {
        (OrderKind::Limit, Some(Tif::PostOnly)) => "LIMIT_MAKER",
        (OrderKind::Limit, _) => "LIMIT",
        _ => "MARKET",
    }
}

/// `timeInForce`.
pub fn time_in_force(o: &Order) -> &'static str {
    match (o.kind, o.tif) {
        (OrderKind::Limit, Some(Tif::Ioc)) => "IOC",
        (OrderKind::Limit, Some(Tif::Fok)) => "FOK",
        _ => "GTC",
    }
}

/// `status`: `NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, or `EXPIRED` for a market or
/// immediate order the book could not fill.
pub fn status(o: &Order) -> &'static str {
    match o.state {
        OrderState::Open if o.executed_volume > Decimal::ZERO => "PARTIALLY_FILLED",
        OrderState::Open => "NEW",
        OrderState::Done => "FILLED",
        OrderState::Cancelled
            if o.kind != OrderKind::Limit || matches!(o.tif, Some(Tif::Ioc | Tif::Fok)) =>
        {
            "EXPIRED"
        }
        OrderState::Cancelled => "CANCELED",
    }
}

/// When the order last changed ([`Order::updated_at`]).
pub fn update_time(o: &Order) -> DateTime<Utc> {
    o.updated_at()
}

/// Whether a cancelled order with nothing filled is over 90 days old (archived by Binance).
pub fn archived(o: &Order, now: DateTime<Utc>) -> bool {
    o.state == OrderState::Cancelled
        && o.executed_volume.is_zero()
        && now - o.created_at > chrono::Duration::days(90)
}

/// The fields every order shape shares, in Binance's order.
fn core(w: &World, idx: usize) -> serde_json::Map<String, Value> {
    let o = &w.orders[idx];
    let mut m = serde_json::Map::new();
    m.insert("symbol".into(), json!(o.market.symbol));
    m.insert("orderId".into(), json!(order_id(idx)));
    m.insert("orderListId".into(), json!(-1));
    m.insert("clientOrderId".into(), json!(client_order_id(w, o)));
    m
}

/// `orderListId` of the venue's order list at `pos`.
pub fn list_id(pos: usize) -> i64 {
    pos as i64 + 1
}

/// The position of `orderListId` among `len` lists.
pub fn list_pos(id: i64, len: usize) -> Option<usize> {
    let i = usize::try_from(id.checked_sub(1)?).ok()?;
    (i < len).then_some(i)
}

/// What a leg of an order list shows beside a plain order: its `orderListId`; a stop leg
/// also its `type` (`STOP_LOSS_LIMIT`, or `STOP_LOSS` for a market stop), `stopPrice`, and
/// `isWorking: false` (the venue never triggers it); a leg ended by its sibling's fill is
/// `EXPIRED`. Orders in no list are left as they are.
fn leg(w: &World, idx: usize, m: &mut serde_json::Map<String, Value>) {
    let Some((pos, list)) = w.list_of(idx) else {
        return;
    };
    m.insert("orderListId".into(), json!(list_id(pos)));
    let o = &w.orders[idx];
    let i = list.legs.iter().position(|&l| l == idx);
    if let Some(stop) = i.and_then(|i| list.stops.get(i).copied().flatten()) {
        let t = if o.kind == OrderKind::Limit {
            "STOP_LOSS_LIMIT"
        } else {
            "STOP_LOSS"
        };
        if m.contains_key("type") {
            m.insert("type".into(), json!(t));
        }
        m.insert("stopPrice".into(), json!(d8(stop)));
        if m.contains_key("isWorking") {
            m.insert("isWorking".into(), json!(false));
        }
    }
    let sibling_filled = list
        .legs
        .iter()
        .any(|&l| l != idx && w.orders[l].executed_volume > Decimal::ZERO);
    if o.state == OrderState::Cancelled && sibling_filled && m.contains_key("status") {
        m.insert("status".into(), json!("EXPIRED"));
    }
}

/// An order list (`contingencyType: OCO`) as `GET /api/v3/openOrderList` shows it, with the
/// `orderReports` the answers to placing and cancelling it carry.
pub fn order_list(w: &World, pos: usize, at: DateTime<Utc>, reports: Option<Vec<Value>>) -> Value {
    let l = &w.order_lists[pos];
    let open = l.is_open(w);
    let orders: Vec<Value> = l
        .legs
        .iter()
        .map(|&i| {
            json!({"symbol": l.market.symbol, "orderId": order_id(i),
                "clientOrderId": client_order_id(w, &w.orders[i])})
        })
        .collect();
    let (list_status, order_status) = if open {
        ("EXEC_STARTED", "EXECUTING")
    } else {
        ("ALL_DONE", "ALL_DONE")
    };
    let mut m = serde_json::Map::new();
    m.insert("orderListId".into(), json!(list_id(pos)));
    m.insert("contingencyType".into(), json!("OCO"));
    m.insert("listStatusType".into(), json!(list_status));
    m.insert("listOrderStatus".into(), json!(order_status));
    m.insert("listClientOrderId".into(), json!(l.identifier));
    m.insert("transactionTime".into(), json!(ms(at)));
    m.insert("symbol".into(), json!(l.market.symbol));
    m.insert("orders".into(), Value::Array(orders));
    if let Some(r) = reports {
        m.insert("orderReports".into(), Value::Array(r));
    }
    Value::Object(m)
}

fn amounts(m: &mut serde_json::Map<String, Value>, o: &Order) {
    m.insert("price".into(), json!(d8(o.price.unwrap_or_default())));
    m.insert(
        "origQty".into(),
        json!(d8(o.volume.unwrap_or(o.executed_volume))),
    );
    m.insert("executedQty".into(), json!(d8(o.executed_volume)));
    m.insert("cummulativeQuoteQty".into(), json!(d8(o.executed_funds)));
    m.insert("status".into(), json!(status(o)));
    m.insert("timeInForce".into(), json!(time_in_force(o)));
    m.insert("type".into(), json!(order_type(o)));
    m.insert("side".into(), json!(side(o.side)));
}

/// An order as `GET /api/v3/order`, `openOrders` and `allOrders` show it.
pub fn order(w: &World, idx: usize) -> Value {
    let o = &w.orders[idx];
    let mut m = core(w, idx);
    amounts(&mut m, o);
    m.insert("stopPrice".into(), json!(d8(Decimal::ZERO)));
    m.insert("icebergQty".into(), json!(d8(Decimal::ZERO)));
    m.insert("time".into(), json!(ms(o.created_at)));
    m.insert("updateTime".into(), json!(ms(update_time(o))));
    m.insert("isWorking".into(), json!(o.kind == OrderKind::Limit));
    m.insert("workingTime".into(), json!(ms(o.created_at)));
    m.insert(
        "origQuoteOrderQty".into(),
        json!(d8(o.quote_amount.unwrap_or_default())),
    );
    m.insert("selfTradePreventionMode".into(), json!("EXPIRE_MAKER"));
    leg(w, idx, &mut m);
    Value::Object(m)
}

/// Order JSON text for a list (written straight into the answer); kept once the order is
/// closed ([`World::fragment`]), unless it is a leg of an order list (its status follows its
/// siblings).
pub fn order_json(w: &World, idx: usize) -> String {
    let mut page = PageText::with_capacity(1, ORDER_BYTES);
    push_list_order(w, &mut page, idx);
    let text = page.items().next().unwrap_or_default().to_string();
    text
}

/// About how many bytes an order of a list takes (to size a page's buffer).
pub const ORDER_BYTES: usize = 420;

/// Appends [`order_json`]'s text to a page written into one buffer.
pub fn push_list_order(w: &World, page: &mut PageText, idx: usize) {
    if w.list_of(idx).is_some() {
        let v = order(w, idx).to_string();
        return page.item(|b| b.push_str(&v));
    }
    w.fragment_into(page, "binance-order", idx, None, |b| {
        push_plain_order(b, w, idx)
    });
}

/// What [`order`] writes for an order in no list, written as text directly (a history
/// page's hot path: no map of values built and then written).
fn push_plain_order(s: &mut String, w: &World, idx: usize) {
    let o = &w.orders[idx];
    let mut m = Obj::new(s);
    m.str(key!("symbol"), &o.market.symbol);
    m.int(key!("orderId"), order_id(idx) as i64);
    m.lit(concat!(key!("orderListId"), "-1", key!("clientOrderId")));
    push_client_order_id(m.out, w, o);
    m.dec_fixed(key!("price"), o.price.unwrap_or_default(), 8);
    m.dec_fixed(key!("origQty"), o.volume.unwrap_or(o.executed_volume), 8);
    m.dec_fixed(key!("executedQty"), o.executed_volume, 8);
    m.dec_fixed(key!("cummulativeQuoteQty"), o.executed_funds, 8);
    m.plain(key!("status"), status(o));
    m.plain(key!("timeInForce"), time_in_force(o));
    m.plain(key!("type"), order_type(o));
    m.plain(key!("side"), side(o.side));
    m.lit(concat!(
        key!("stopPrice"),
        "\"0.00000000\"",
        key!("icebergQty"),
        "\"0.00000000\""
    ));
    m.int(key!("time"), ms(o.created_at));
    m.int(key!("updateTime"), ms(update_time(o)));
    m.bool(key!("isWorking"), o.kind == OrderKind::Limit);
    m.int(key!("workingTime"), ms(o.created_at));
    m.dec_fixed(
        key!("origQuoteOrderQty"),
        o.quote_amount.unwrap_or_default(),
        8,
    );
    m.raw(key!("selfTradePreventionMode"), "\"EXPIRE_MAKER\"");
    m.end();
}

#[cfg(test)]
fn plain_order_json(w: &World, idx: usize) -> String {
    let mut s = String::new();
    push_plain_order(&mut s, w, idx);
    s
}

/// How much detail a new order's answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespType {
    Ack,
    Result,
    Full,
}

/// `POST /api/v3/order`'s answer.
pub fn new_order(w: &World, idx: usize, fee: Decimal, resp: RespType) -> Value {
    let o = &w.orders[idx];
    let mut m = core(w, idx);
    m.insert("transactTime".into(), json!(ms(o.created_at)));
    if resp == RespType::Ack {
        leg(w, idx, &mut m);
        return Value::Object(m);
    }
    amounts(&mut m, o);
    m.insert(
        "origQuoteOrderQty".into(),
        json!(d8(o.quote_amount.unwrap_or_default())),
    );
    m.insert("workingTime".into(), json!(ms(o.created_at)));
    m.insert("selfTradePreventionMode".into(), json!("EXPIRE_MAKER"));
    if resp == RespType::Full {
        let fills: Vec<Value> = o
            .trades
            .iter()
            .map(|f| {
                json!({"price": d8(f.price), "qty": d8(f.volume), "commission": d8(f.funds * fee),
                    "commissionAsset": f.market.quote, "tradeId": f.id})
            })
            .collect();
        m.insert("fills".into(), Value::Array(fills));
    }
    leg(w, idx, &mut m);
    Value::Object(m)
}

/// A cancelled order (`DELETE /api/v3/order` and each item of `DELETE openOrders`).
pub fn cancelled(w: &World, idx: usize, cancel_id: &str, at: DateTime<Utc>) -> Value {
    let o = &w.orders[idx];
    let mut m = serde_json::Map::new();
    m.insert("symbol".into(), json!(o.market.symbol));
    m.insert("origClientOrderId".into(), json!(client_order_id(w, o)));
    m.insert("orderId".into(), json!(order_id(idx)));
    m.insert("orderListId".into(), json!(-1));
    m.insert("clientOrderId".into(), json!(cancel_id));
    m.insert("transactTime".into(), json!(ms(at)));
    amounts(&mut m, o);
    m.insert(
        "origQuoteOrderQty".into(),
        json!(d8(o.quote_amount.unwrap_or_default())),
    );
    m.insert("selfTradePreventionMode".into(), json!("EXPIRE_MAKER"));
    leg(w, idx, &mut m);
    Value::Object(m)
}

/// One fill as `GET /api/v3/myTrades` shows it (the commission in the quote asset: the
/// venue charges fees there on both sides).
pub fn trade(f: &Fill, order_idx: usize, fee: Decimal) -> Value {
    json!({"symbol": f.market.symbol, "id": f.id, "orderId": order_id(order_idx), "orderListId": -1,
        "price": d8(f.price), "qty": d8(f.volume), "quoteQty": d8(f.funds),
        "commission": d8(f.funds * fee), "commissionAsset": f.market.quote, "time": ms(f.created_at),
        "isBuyer": f.side == Side::Bid, "isMaker": f.side != f.taker_side, "isBestMatch": true})
}

/// About how many bytes a fill of `myTrades` takes.
pub const TRADE_BYTES: usize = 300;

/// [`trade`]'s text, written directly into a page's buffer.
pub fn push_trade(s: &mut String, f: &Fill, order_idx: usize, fee: Decimal) {
    let mut m = Obj::new(s);
    m.str(key!("symbol"), &f.market.symbol);
    m.int(key!("id"), f.id as i64);
    m.int(key!("orderId"), order_id(order_idx) as i64);
    m.int(key!("orderListId"), -1);
    m.dec_fixed(key!("price"), f.price, 8);
    m.dec_fixed(key!("qty"), f.volume, 8);
    m.dec_fixed(key!("quoteQty"), f.funds, 8);
    m.dec_fixed(key!("commission"), f.funds * fee, 8);
    m.str(key!("commissionAsset"), &f.market.quote);
    m.int(key!("time"), ms(f.created_at));
    m.bool(key!("isBuyer"), f.side == Side::Bid);
    m.bool(key!("isMaker"), f.side != f.taker_side);
    m.bool(key!("isBestMatch"), true);
    m.end();
}

/// A JSON array of items already written as JSON text.
pub use crate::mock::http::json_array as array;

/// `YYYY-MM-DD HH:MM:SS` in UTC (the withdrawal history writes times this way).
pub fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A withdrawal's `status`: 4 processing, 1 cancelled, 6 completed.
pub fn withdrawal_status(s: WithdrawalState) -> u8 {
    match s {
        WithdrawalState::Waiting => 4,
        WithdrawalState::Cancelled => 1,
        WithdrawalState::Done => 6,
    }
}

/// An item of `GET /sapi/v1/capital/withdraw/history`.
pub fn withdrawal(x: &Withdrawal) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(x.uuid.simple().to_string()));
    m.insert("amount".into(), json!(d8(x.amount)));
    m.insert("transactionFee".into(), json!(d8(x.fee)));
    m.insert("coin".into(), json!(x.currency));
    m.insert("status".into(), json!(withdrawal_status(x.state)));
    m.insert("address".into(), json!(x.address));
    m.insert("addressTag".into(), json!(""));
    m.insert("txId".into(), json!(x.txid.clone().unwrap_or_default()));
    m.insert("applyTime".into(), json!(utc_text(x.created_at)));
    m.insert("network".into(), json!(x.net_type));
    m.insert("transferType".into(), json!(0));
    m.insert("info".into(), json!(""));
    m.insert(
        "confirmNo".into(),
        json!(if x.state == WithdrawalState::Done {
            12
        } else {
            0
        }),
    );
    m.insert("walletType".into(), json!(0));
    m.insert("txKey".into(), json!(""));
    if let Some(t) = x.done_at.filter(|_| x.state == WithdrawalState::Done) {
        m.insert("completeTime".into(), json!(utc_text(t)));
    }
    Value::Object(m)
}

/// An item of `GET /sapi/v1/capital/deposit/hisrec` (times as numbers here).
pub fn deposit(x: &Deposit) -> Value {
    let id = u64::from_be_bytes(x.uuid.as_bytes()[..8].try_into().unwrap_or_default()) >> 4;
    json!({"id": id.to_string(), "amount": d8(x.amount), "coin": x.currency, "network": x.net_type,
        "status": 1, "address": "", "addressTag": "", "txId": x.txid,
        "insertTime": ms(x.created_at), "completeTime": ms(x.created_at + chrono::Duration::minutes(1)),
        "transferType": 0, "confirmTimes": "12/12", "unlockConfirm": 0, "walletType": 0,
        "travelRuleStatus": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct writer of a list's order writes what the value builder writes, for every
    /// order of the built-in scenarios (limit, market, filled, cancelled, expired, manual
    /// ones) and for client ids that need escaping.
    #[test]
    fn the_order_text_is_the_order_value_written() {
        crate::mock::venue::assert_order_texts(&crate::mock::binance::Binance, |w, i| {
            w.list_of(i)
                .is_none()
                .then(|| (plain_order_json(w, i), order(w, i).to_string()))
        });
    }

    /// The direct writer of a `myTrades` fill writes what the value builder writes, for
    /// every fill of the built-in scenarios.
    #[test]
    fn the_trade_text_is_the_trade_value_written() {
        let fee = "0.001".parse::<Decimal>().unwrap();
        let mut checked = 0;
        for name in ["pump-and-dump", "noisy", "legit-zoo", "contra"] {
            let ex = crate::mock::venue::odd_client_ids(&crate::mock::binance::Binance, name);
            let w = ex.world();
            for (i, o) in w.orders.iter().enumerate() {
                for f in &o.trades {
                    let mut s = String::new();
                    push_trade(&mut s, f, i, fee);
                    assert_eq!(s, trade(f, i, fee).to_string(), "{name} #{i}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn amounts_have_eight_decimals_and_ids_round_trip() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(d8(d("0.01")), "0.01000000");
        assert_eq!(d8(d("96428.57")), "96428.57000000");
        assert_eq!(d8(d("0.123456789")), "0.12345679");
        assert_eq!(d8(Decimal::ZERO), "0.00000000");
        assert_eq!(order_idx(order_id(41), 42), Some(41));
        assert_eq!(order_idx(order_id(42), 42), None);
        assert_eq!(order_idx(7, 42), None);
    }

    #[test]
    fn assigned_client_ids_are_22_letters_and_digits_and_round_trip() {
        for u in [uuid::Uuid::nil(), uuid::Uuid::max(), uuid::Uuid::new_v4()] {
            let id = auto_client_id(&u);
            assert_eq!(id.len(), 22, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert_eq!(parse_auto_client_id(&id), Some(u));
        }
        assert_eq!(parse_auto_client_id("zzzzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(parse_auto_client_id("web_0123"), None);
    }
}
