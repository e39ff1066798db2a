//! KuCoin's JSON shapes over the venue: ids, the HF and classic order objects, fills, stop
//! orders, withdrawal and deposit rows, and the page object of the page-numbered lists.
//!
//! Numbers are decimal strings; times are epoch ms as JSON numbers. An order's id is 24
//! hexadecimal digits counted from [`ORDER_ID_BASE`] by its position in the venue (stable once
//! placed); a withdrawal's from [`WITHDRAWAL_ID_BASE`], a deposit's from [`DEPOSIT_ID_BASE`].
//! A fill's `tradeId` is the venue's trade number (increasing with time) and its `id` is
//! derived from it per side ([`fill_id`]), so the HF fill list's `lastId` is a fill's `id`. Fees are charged in the quote coin on both sides
//! (the venue's rule).

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::mock::venue::dec;
use crate::mock::venue::jsontext::{key, Obj};
use crate::mock::venue::state::{
    Deposit, Fill, Order, OrderKind, OrderState, Side, Tif, Withdrawal, WithdrawalState, World,
};

/// The id of the venue's first order.
pub const ORDER_ID_BASE: u128 = 0x6717_0000_0000_0000_0000_0000;
/// The id of the venue's first withdrawal.
pub const WITHDRAWAL_ID_BASE: u128 = 0x67e6_0000_0000_0000_0000_0000;
/// The id of the venue's first deposit.
pub const DEPOSIT_ID_BASE: u128 = 0x67e7_0000_0000_0000_0000_0000;
/// The `lastId` of the closed order at venue position 0 (order pages count from here).
pub const ORDER_LAST_ID_BASE: u64 = 19_000_000_000_000;

/// Epoch milliseconds.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A time from epoch milliseconds.
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

fn hex_id(base: u128, pos: usize) -> String {
    format!("{:024x}", base + pos as u128)
}

fn hex_pos(base: u128, id: &str, len: usize) -> Option<usize> {
    if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u128::from_str_radix(id, 16).ok()?;
    let i = usize::try_from(n.checked_sub(base)?).ok()?;
    (i < len).then_some(i)
}

/// The id of the venue's order at `idx`.
pub fn order_id(idx: usize) -> String {
    hex_id(ORDER_ID_BASE, idx)
}

/// The venue position an order id names.
pub fn order_idx(id: &str, len: usize) -> Option<usize> {
    hex_pos(ORDER_ID_BASE, &id.to_ascii_lowercase(), len)
}

/// The id of the venue's withdrawal at `pos`.
pub fn withdrawal_id(pos: usize) -> String {
    hex_id(WITHDRAWAL_ID_BASE, pos)
}

/// The venue position a withdrawal id names.
pub fn withdrawal_pos(id: &str, len: usize) -> Option<usize> {
    hex_pos(WITHDRAWAL_ID_BASE, &id.to_ascii_lowercase(), len)
}

/// `buy` / `sell`.
pub fn side(s: Side) -> &'static str {
    match s {
        Side::Bid => "buy",
        Side::Ask => "sell",
    }
}

/// One JSON object from several (json! objects have a size limit).
pub fn merge<const N: usize>(parts: [Value; N]) -> Value {
    let mut out = serde_json::Map::new();
    for p in parts {
        if let Value::Object(m) = p {
            out.extend(m);
        }
    }
    Value::Object(out)
}

/// `timeInForce` of a venue order (market orders are IOC).
fn tif(o: &Order) -> &'static str {
    match (o.kind, o.tif) {
        (OrderKind::Limit, None | Some(Tif::PostOnly)) => "GTC",
        (OrderKind::Limit, Some(Tif::Fok)) => "FOK",
        _ => "IOC",
    }
}

/// What an order's shapes derive from it.
struct Amounts {
    limit: bool,
    size: Decimal,
    funds: Decimal,
    open: bool,
    cancelled: bool,
    cancelled_size: Decimal,
    cancelled_funds: Decimal,
}

impl Amounts {
    fn of(o: &Order) -> Amounts {
        let limit = o.kind == OrderKind::Limit;
        let size = o.volume.unwrap_or_default();
        let funds = match (limit, o.quote_amount) {
            (true, _) => o.price.unwrap_or_default() * size,
            (false, Some(q)) => q,
            (false, None) => Decimal::ZERO,
        };
        let cancelled = o.state == OrderState::Cancelled;
        let (cancelled_size, cancelled_funds) = if cancelled {
            (o.remaining_volume, o.remaining_funds)
        } else {
            (Decimal::ZERO, Decimal::ZERO)
        };
        Amounts {
            limit,
            size,
            funds,
            open: o.state == OrderState::Open,
            cancelled,
            cancelled_size,
            cancelled_funds,
        }
    }
}

/// An order as KuCoin writes it: the HF shape (`active`, `inOrderBook`, `lastUpdatedAt`,
/// remaining and cancelled amounts) or the classic one (`isActive`).
pub fn order(w: &World, idx: usize, hf: bool) -> Value {
    let o = &w.orders[idx];
    let a = Amounts::of(o);
    let common = json!({"id": order_id(idx), "clientOid": o.identifier.clone().unwrap_or_default(),
        "symbol": o.market.symbol, "opType": "DEAL", "type": if a.limit { "limit" } else { "market" },
        "side": side(o.side), "price": dec(o.price.unwrap_or_default()), "size": dec(a.size),
        "funds": dec(a.funds), "fee": dec(o.paid_fee), "feeCurrency": o.market.quote,
        "stp": Value::Null, "timeInForce": tif(o), "postOnly": o.tif == Some(Tif::PostOnly),
        "hidden": false, "iceberg": false, "visibleSize": "0", "cancelAfter": 0,
        "channel": "API", "remark": "", "tags": Value::Null, "cancelExist": a.cancelled,
        "tradeType": "TRADE", "createdAt": ms(o.created_at)});
    let family = if hf {
        json!({"dealSize": dec(o.executed_volume), "dealFunds": dec(o.executed_funds),
            "remainSize": dec(if a.open { o.remaining_volume } else { Decimal::ZERO }),
            "remainFunds": dec(if a.open { o.remaining_funds } else { Decimal::ZERO }),
            "cancelledSize": dec(a.cancelled_size), "cancelledFunds": dec(a.cancelled_funds),
            "inOrderBook": a.open && a.limit, "active": a.open, "tax": "0",
            "lastUpdatedAt": ms(o.updated_at())})
    } else {
        json!({"dealSize": dec(o.executed_volume), "dealFunds": dec(o.executed_funds),
            "stop": "", "stopTriggered": false, "stopPrice": "0", "isActive": a.open})
    };
    merge([common, family])
}

/// A fill as `/api/v1/hf/fills` (numeric ids) or `/api/v1/fills` (string trade id) writes it,
/// as a value: the reference [`push_fill`] is checked against.
#[cfg(test)]
pub fn fill(w: &World, idx: usize, f: &Fill, fee_rate: Decimal, hf: bool) -> Value {
    let o = &w.orders[idx];
    let fee = (f.funds * fee_rate).round_dp(8);
    let maker = f.side != f.taker_side;
    let base = json!({"symbol": f.market.symbol, "orderId": order_id(idx),
        "counterOrderId": "", "side": side(f.side),
        "liquidity": if maker { "maker" } else { "taker" }, "forceTaker": false,
        "price": dec(f.price), "size": dec(f.volume), "funds": dec(f.funds), "fee": dec(fee),
        "feeRate": dec(fee_rate), "feeCurrency": f.market.quote, "stop": "",
        "tradeType": "TRADE", "type": if o.kind == OrderKind::Limit { "limit" } else { "market" },
        "createdAt": ms(f.created_at)});
    let ids = if hf {
        json!({"id": fill_id(f), "tradeId": f.id, "taxRate": "0", "tax": "0"})
    } else {
        json!({"tradeId": f.id.to_string()})
    };
    merge([base, ids])
}

/// About how many bytes an order of a list takes (to size a page's buffer).
pub const ORDER_BYTES: usize = 720;
/// About how many bytes a fill of a list takes.
pub const FILL_BYTES: usize = 480;

/// An order id (24 hex digits) written without a formatter.
fn push_order_id(out: &mut String, idx: usize) {
    let mut n = ORDER_ID_BASE + idx as u128;
    let mut b = [b'0'; 26];
    b[0] = b'"';
    b[25] = b'"';
    for c in b[1..25].iter_mut().rev() {
        *c = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
    }
    crate::mock::venue::jsontext::push_ascii(out, &b);
}

/// [`order`]'s text, written directly (a history page's hot path).
pub fn push_order(s: &mut String, w: &World, idx: usize, hf: bool) {
    let o = &w.orders[idx];
    let a = Amounts::of(o);
    let mut m = Obj::new(s);
    m.key(key!("id"));
    push_order_id(m.out, idx);
    m.str(
        key!("clientOid"),
        o.identifier.as_deref().unwrap_or_default(),
    );
    m.str(key!("symbol"), &o.market.symbol);
    m.raw(key!("opType"), "\"DEAL\"");
    m.plain(key!("type"), if a.limit { "limit" } else { "market" });
    m.plain(key!("side"), side(o.side));
    m.dec(key!("price"), o.price.unwrap_or_default());
    m.dec(key!("size"), a.size);
    m.dec(key!("funds"), a.funds);
    m.dec(key!("fee"), o.paid_fee);
    m.str(key!("feeCurrency"), &o.market.quote);
    m.raw(key!("stp"), "null");
    m.plain(key!("timeInForce"), tif(o));
    m.bool(key!("postOnly"), o.tif == Some(Tif::PostOnly));
    m.raw(
        key!("hidden"),
        "false,\"iceberg\":false,\"visibleSize\":\"0\",\"cancelAfter\":0,\"channel\":\"API\",\"remark\":\"\",\"tags\":null",
    );
    m.bool(key!("cancelExist"), a.cancelled);
    m.raw(key!("tradeType"), "\"TRADE\"");
    m.int(key!("createdAt"), ms(o.created_at));
    m.dec(key!("dealSize"), o.executed_volume);
    m.dec(key!("dealFunds"), o.executed_funds);
    if hf {
        let zero = Decimal::ZERO;
        m.dec(
            key!("remainSize"),
            if a.open { o.remaining_volume } else { zero },
        );
        m.dec(
            key!("remainFunds"),
            if a.open { o.remaining_funds } else { zero },
        );
        m.dec(key!("cancelledSize"), a.cancelled_size);
        m.dec(key!("cancelledFunds"), a.cancelled_funds);
        m.bool(key!("inOrderBook"), a.open && a.limit);
        m.bool(key!("active"), a.open);
        m.raw(key!("tax"), "\"0\"");
        m.int(key!("lastUpdatedAt"), ms(o.updated_at()));
    } else {
        m.raw(
            key!("stop"),
            "\"\",\"stopTriggered\":false,\"stopPrice\":\"0\"",
        );
        m.bool(key!("isActive"), a.open);
    }
    m.end();
}

/// [`fill`]'s text, written directly (a history page's hot path).
pub fn push_fill(s: &mut String, w: &World, idx: usize, f: &Fill, fee_rate: Decimal, hf: bool) {
    let o = &w.orders[idx];
    let fee = (f.funds * fee_rate).round_dp(8);
    let maker = f.side != f.taker_side;
    let mut m = Obj::new(s);
    m.str(key!("symbol"), &f.market.symbol);
    m.key(key!("orderId"));
    push_order_id(m.out, idx);
    m.raw(key!("counterOrderId"), "\"\"");
    m.plain(key!("side"), side(f.side));
    m.plain(key!("liquidity"), if maker { "maker" } else { "taker" });
    m.bool(key!("forceTaker"), false);
    m.dec(key!("price"), f.price);
    m.dec(key!("size"), f.volume);
    m.dec(key!("funds"), f.funds);
    m.dec(key!("fee"), fee);
    m.dec(key!("feeRate"), fee_rate);
    m.str(key!("feeCurrency"), &f.market.quote);
    m.raw(key!("stop"), "\"\",\"tradeType\":\"TRADE\"");
    let limit = o.kind == OrderKind::Limit;
    m.plain(key!("type"), if limit { "limit" } else { "market" });
    m.int(key!("createdAt"), ms(f.created_at));
    if hf {
        m.int(key!("id"), fill_id(f) as i64);
        m.int(key!("tradeId"), f.id as i64);
        m.raw(key!("taxRate"), "\"0\",\"tax\":\"0\"");
    } else {
        m.key(key!("tradeId"));
        m.out.push('"');
        crate::mock::venue::jsontext::push_digits(m.out, f.id, 1);
        m.out.push('"');
    }
    m.end();
}

/// A fill's own `id`: twice the venue's trade number, plus one on the sell side (both sides
/// of a trade share its `tradeId`; each side's fill has its own `id`, increasing with time).
pub fn fill_id(f: &Fill) -> u64 {
    f.id * 2 + u64::from(f.side == Side::Ask)
}

/// KuCoin's withdrawal `status`: `PROCESSING` while it can be cancelled.
pub fn withdrawal_status(s: WithdrawalState) -> &'static str {
    match s {
        WithdrawalState::Waiting => "PROCESSING",
        WithdrawalState::Done => "SUCCESS",
        WithdrawalState::Cancelled => "FAILURE",
    }
}

/// A row of `/api/v1/withdrawals`.
pub fn withdrawal(pos: usize, x: &Withdrawal) -> Value {
    json!({"id": withdrawal_id(pos), "currency": x.currency, "chain": x.net_type.to_lowercase(),
        "status": withdrawal_status(x.state), "address": x.address, "memo": "",
        "isInner": false, "amount": dec(x.amount), "fee": dec(x.fee),
        "walletTxId": if x.state == WithdrawalState::Done { json!(x.txid) } else { Value::Null },
        "createdAt": ms(x.created_at), "updatedAt": ms(x.done_at.unwrap_or(x.created_at)),
        "remark": ""})
}

/// A row of `/api/v1/deposits` (every venue deposit is credited: `SUCCESS`).
pub fn deposit(pos: usize, x: &Deposit) -> Value {
    json!({"id": hex_id(DEPOSIT_ID_BASE, pos), "currency": x.currency,
        "chain": x.net_type.to_lowercase(), "status": "SUCCESS", "address": "", "memo": "",
        "isInner": false, "amount": dec(x.amount), "fee": "0", "walletTxId": x.txid,
        "createdAt": ms(x.created_at), "updatedAt": ms(x.created_at), "remark": "",
        "arrears": false})
}

/// The page object of the page-numbered lists (`currentPage`, `pageSize`, `totalNum`,
/// `totalPage`, `items`).
pub fn paged(items: Vec<Value>, page: usize, size: usize) -> Value {
    let total = items.len();
    let chosen: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect();
    page_object(total, page, size, Value::Array(chosen))
}

/// The page object around the items of page `page` (of `size`) of `total`.
pub fn page_object(total: usize, page: usize, size: usize, items: Value) -> Value {
    let pages = total.div_ceil(size);
    json!({"currentPage": page, "pageSize": size, "totalNum": total, "totalPage": pages,
        "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_pages_count() {
        assert_eq!(order_id(5), "671700000000000000000005");
        assert_eq!(order_idx("671700000000000000000005", 6), Some(5));
        assert_eq!(order_idx("671700000000000000000006", 6), None);
        assert_eq!(order_idx("5", 6), None);
        assert_eq!(order_idx("67170000000000000000000g", 6), None);
        assert_eq!(withdrawal_pos(&withdrawal_id(3), 4), Some(3));
        assert_eq!(withdrawal_pos(&order_id(3), 4), None);
        let p = paged((0..25).map(|i| json!(i)).collect(), 3, 10);
        assert_eq!(p["totalNum"], 25);
        assert_eq!(p["totalPage"], 3);
        assert_eq!(p["items"].as_array().unwrap().len(), 5);
    }

    /// The direct writers write what the value builders write, for every order and fill of
    /// the built-in scenarios, in both shapes.
    #[test]
    fn order_and_fill_texts_are_the_values_written() {
        let fee = "0.001".parse::<Decimal>().unwrap();
        crate::mock::venue::assert_order_texts(&crate::mock::kucoin::Kucoin, |w, i| {
            let mut text = String::new();
            let mut value = String::new();
            for hf in [true, false] {
                push_order(&mut text, w, i, hf);
                value.push_str(&order(w, i, hf).to_string());
                for f in &w.orders[i].trades {
                    push_fill(&mut text, w, i, f, fee, hf);
                    value.push_str(&fill(w, i, f, fee, hf).to_string());
                }
            }
            Some((text, value))
        });
    }
}
