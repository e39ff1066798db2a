//! How the Upbit façade renders the venue in Upbit's wire format: KST timestamps, decimal strings on the exchange
//! API, JSON numbers on the quotation API, omitted nulls, and the error envelope.
//!
//! Sample (GET /v1/order):
//! `{"uuid":"…","side":"bid","ord_type":"limit","price":"100000000","state":"done",
//!   "market":"KRW-BTC","created_at":"2026-11-23T14:31:00+09:00","volume":"0.01",
//!   "remaining_volume":"0","reserved_fee":"500","remaining_fee":"0","paid_fee":"500",
//!   "locked":"0","executed_volume":"0.01","trades_count":1,"identifier":"grid-1",
//!   "trades":[{"market":"KRW-BTC","uuid":"…","price":"100000000","volume":"0.01",
//!   "funds":"1000000","trend":"up","side":"bid","created_at":"2026-11-23T14:31:00.123456+09:00"}]}`

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::mock::venue::state::{
    Deposit, Order, OrderKind, OrderState, Side, Tif, Withdrawal, WithdrawalState,
};

pub fn kst_offset() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("valid offset")
}

/// `2026-11-23T14:31:00+09:00`
pub fn kst(t: DateTime<Utc>) -> String {
    t.with_timezone(&kst_offset())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// `2026-11-23T14:31:00.123456+09:00` (fills carry microseconds).
pub fn kst_micro(t: DateTime<Utc>) -> String {
    t.with_timezone(&kst_offset())
        .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
        .to_string()
}

/// A decimal string as Upbit writes it (no exponent, no trailing zeros).
pub use crate::mock::venue::dec;

/// `ord_type`: `limit`, `price` (market buy by total), `market` (market sell), `best`.
pub fn ord_type(k: OrderKind) -> &'static str {
    match k {
        OrderKind::Limit => "limit",
        OrderKind::MarketBuyQuote => "price",
        OrderKind::MarketSellBase => "market",
        OrderKind::Best => "best",
    }
}

/// Parses `ord_type`.
pub fn parse_ord_type(s: &str) -> Option<OrderKind> {
    Some(match s {
        "limit" => OrderKind::Limit,
        "price" => OrderKind::MarketBuyQuote,
        "market" => OrderKind::MarketSellBase,
        "best" => OrderKind::Best,
        _ => return None,
    })
}

/// `state`: `wait`, `done`, `cancel`.
pub fn state(s: OrderState) -> &'static str {
    match s {
        OrderState::Open => "wait",
        OrderState::Done => "done",
        OrderState::Cancelled => "cancel",
    }
}

/// `time_in_force`: `ioc`, `fok`, `post_only`.
pub fn tif(t: Tif) -> &'static str {
    match t {
        Tif::Ioc => "ioc",
        Tif::Fok => "fok",
        Tif::PostOnly => "post_only",
    }
}

pub fn parse_tif(s: &str) -> Option<Tif> {
    Some(match s {
        "ioc" => Tif::Ioc,
        "fok" => Tif::Fok,
        "post_only" => Tif::PostOnly,
        _ => return None,
    })
}

/// A fill's `trend`: `up` when the taker bought, `down` when it sold.
pub fn trend(taker: Side) -> &'static str {
    match taker {
        Side::Bid => "up",
        Side::Ask => "down",
    }
}

/// A public trade's `ask_bid`: the taker's side, upper case.
pub fn ask_bid(taker: Side) -> &'static str {
    match taker {
        Side::Bid => "BID",
        Side::Ask => "ASK",
    }
}

/// A withdrawal's `state`.
pub fn withdrawal_state(s: WithdrawalState) -> &'static str {
    match s {
        WithdrawalState::Waiting => "WAITING",
        WithdrawalState::Done => "DONE",
        WithdrawalState::Cancelled => "CANCELLED",
    }
}

/// A quotation-API number.
pub fn num(d: Decimal) -> Value {
    use rust_decimal::prelude::ToPrimitive;
    let n = d.normalize();
    if n.fract().is_zero() {
        if let Some(i) = n.to_i64() {
            return json!(i);
        }
    }
    json!(n.to_f64().unwrap_or(0.0))
}

pub fn error_body(name: &str, message: &str) -> Value {
    json!({"error": {"name": name, "message": message}})
}

/// An order; `with_trades` for the single-order endpoint, else list form with
/// `executed_funds`.
pub fn order(o: &Order, with_trades: bool) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(o.uuid.to_string()));
    m.insert("side".into(), json!(o.side.as_str()));
    m.insert("ord_type".into(), json!(ord_type(o.kind)));
    // `price` is the limit price, or the total of a market buy by total.
    if let Some(p) = o.price.or(o.quote_amount) {
        m.insert("price".into(), json!(dec(p)));
    }
    m.insert("state".into(), json!(state(o.state)));
    m.insert("market".into(), json!(o.market.symbol));
    m.insert("created_at".into(), json!(kst(o.created_at)));
    if let Some(v) = o.volume {
        m.insert("volume".into(), json!(dec(v)));
        m.insert("remaining_volume".into(), json!(dec(o.remaining_volume)));
    }
    m.insert("reserved_fee".into(), json!(dec(o.reserved_fee)));
    m.insert("remaining_fee".into(), json!(dec(o.remaining_fee)));
    m.insert("paid_fee".into(), json!(dec(o.paid_fee)));
    m.insert("locked".into(), json!(dec(o.locked)));
    m.insert("executed_volume".into(), json!(dec(o.executed_volume)));
    if !with_trades {
        m.insert("executed_funds".into(), json!(dec(o.executed_funds)));
    }
    m.insert("trades_count".into(), json!(o.trades.len()));
    if let Some(i) = &o.identifier {
        m.insert("identifier".into(), json!(i));
    }
    if let Some(t) = o.tif {
        m.insert("time_in_force".into(), json!(tif(t)));
    }
    if with_trades {
        let trades: Vec<Value> = o
            .trades
            .iter()
            .map(|f| {
                json!({
                    "market": f.market.symbol, "uuid": f.uuid.to_string(), "price": dec(f.price),
                    "volume": dec(f.volume), "funds": dec(f.funds), "trend": trend(f.taker_side),
                    "side": f.side.as_str(), "created_at": kst_micro(f.created_at),
                })
            })
            .collect();
        m.insert("trades".into(), Value::Array(trades));
    }
    Value::Object(m)
}

pub fn withdrawal(w: &Withdrawal) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("withdraw"));
    m.insert("uuid".into(), json!(w.uuid.to_string()));
    m.insert("currency".into(), json!(w.currency));
    m.insert("net_type".into(), json!(w.net_type));
    if let Some(t) = &w.txid {
        m.insert("txid".into(), json!(t));
    }
    m.insert("state".into(), json!(withdrawal_state(w.state)));
    m.insert("created_at".into(), json!(kst(w.created_at)));
    if let Some(d) = w.done_at {
        m.insert("done_at".into(), json!(kst(d)));
    }
    m.insert("amount".into(), json!(dec(w.amount)));
    m.insert("fee".into(), json!(dec(w.fee)));
    m.insert("transaction_type".into(), json!("default"));
    m.insert(
        "is_cancelable".into(),
        json!(w.state == WithdrawalState::Waiting),
    );
    Value::Object(m)
}

pub fn deposit(d: &Deposit) -> Value {
    json!({
        "type": "deposit", "uuid": d.uuid.to_string(), "currency": d.currency,
        "net_type": d.net_type, "txid": d.txid, "state": "ACCEPTED",
        "created_at": kst(d.created_at), "done_at": kst(d.created_at),
        "amount": dec(d.amount), "fee": "0", "transaction_type": "default",
    })
}
