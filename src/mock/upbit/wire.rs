//! How the Upbit façade renders the venue in Upbit's wire format: KST timestamps, decimal
//! strings on the exchange API, JSON numbers on the quotation API, omitted nulls.
//!
//! Orders, the bulk of an export, are written straight into a string ([`order_json`]) rather
//! than built as a `serde_json::Value`: a page of 1,000 orders costs a fraction of the time.
//! The bytes are those serde_json writes for the same object (a test checks it).
//!
//! Sample (GET /v1/order):
//! `{"uuid":"…","side":"bid","ord_type":"limit","price":"100000000","state":"done",
//!   "market":"KRW-BTC","created_at":"2026-11-23T14:31:00+09:00","volume":"0.01",
//!   "remaining_volume":"0","reserved_fee":"500","remaining_fee":"0","paid_fee":"500",
//!   "locked":"0","executed_volume":"0.01","trades_count":1,"identifier":"grid-1",
//!   "trades":[{"market":"KRW-BTC","uuid":"…","price":"100000000","volume":"0.01",
//!   "funds":"1000000","trend":"up","side":"bid","created_at":"2026-11-23T14:31:00.123456+09:00"}]}`

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::mock::venue::jsontext::{date_time_micros, key, push_ascii, push_digits, Obj};
use crate::mock::venue::state::{
    Deposit, Order, OrderKind, OrderState, Side, Tif, Withdrawal, WithdrawalState,
};

pub fn kst_offset() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("valid offset")
}

/// Appends `2026-11-23T14:31:00+09:00`, or with `.123456` microseconds.
fn push_kst(out: &mut String, t: DateTime<Utc>, micros: bool) {
    // Written by hand from the epoch seconds (the page writer's hot path: a full page has a
    // time per order): the offset is a fixed +09:00.
    match date_time_micros(t.timestamp() + 9 * 3600, t.timestamp_subsec_nanos()) {
        Some(b) => {
            push_ascii(out, &b[..if micros { 26 } else { 19 }]);
            out.push_str("+09:00");
        }
        None => push_kst_chrono(out, t, micros),
    }
}

/// [`push_kst`] through chrono, for years outside 0..=9999 and leap seconds.
fn push_kst_chrono(out: &mut String, t: DateTime<Utc>, micros: bool) {
    let l = t.with_timezone(&kst_offset());
    match u64::try_from(l.year()) {
        Ok(y) if y <= 9999 => push_digits(out, y, 4),
        _ => {
            let _ = write!(out, "{:04}", l.year());
        }
    }
    out.push('-');
    push_digits(out, u64::from(l.month()), 2);
    out.push('-');
    push_digits(out, u64::from(l.day()), 2);
    out.push('T');
    push_digits(out, u64::from(l.hour()), 2);
    out.push(':');
    push_digits(out, u64::from(l.minute()), 2);
    out.push(':');
    push_digits(out, u64::from(l.second()), 2);
    if micros {
        out.push('.');
        push_digits(out, u64::from(l.nanosecond() % 1_000_000_000 / 1000), 6);
    }
    out.push_str("+09:00");
}

/// `2026-11-23T14:31:00+09:00`
pub fn kst(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(25);
    push_kst(&mut s, t, false);
    s
}

/// `2026-11-23T14:31:00.123456+09:00` (fills carry microseconds).
pub fn kst_micro(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(32);
    push_kst(&mut s, t, true);
    s
}

/// A decimal string as Upbit writes it (no exponent, no trailing zeros).
pub use crate::mock::venue::dec;

/// `ord_type`: `limit`, `price` (market buy by total), `market` (market sell; Upbit has no
/// market buy by volume, the venue's other façades do), `best`.
pub fn ord_type(k: OrderKind) -> &'static str {
    match k {
        OrderKind::Limit => "limit",
        OrderKind::MarketBuyQuote => "price",
        OrderKind::MarketSellBase | OrderKind::MarketBuyBase => "market",
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

/// A KST time member.
fn kst_member(m: &mut Obj<'_>, k: &'static str, t: DateTime<Utc>, micros: bool) {
    m.key(k);
    m.out.push('"');
    push_kst(m.out, t, micros);
    m.out.push('"');
}

/// About how many bytes an order of a list takes (to size a page's buffer).
pub const ORDER_BYTES: usize = 440;

/// An order as JSON text; `with_trades` for the single-order endpoint (with its fills), else
/// the list form with `executed_funds`.
pub fn order_json(o: &Order, with_trades: bool) -> String {
    let mut s = String::with_capacity(if with_trades { 640 } else { 400 });
    push_order(&mut s, o, with_trades);
    s
}

/// Appends [`order_json`]'s text to `s` (a page writes its orders into one buffer).
pub fn push_order(s: &mut String, o: &Order, with_trades: bool) {
    let mut m = Obj::new(s);
    let mut uuid = uuid::Uuid::encode_buffer();
    m.plain(key!("uuid"), o.uuid.hyphenated().encode_lower(&mut uuid));
    m.plain(key!("side"), o.side.as_str());
    m.plain(key!("ord_type"), ord_type(o.kind));
    // `price` is the limit price, or the total of a market buy by total.
    if let Some(p) = o.price.or(o.quote_amount) {
        m.dec(key!("price"), p);
    }
    m.plain(key!("state"), state(o.state));
    m.str(key!("market"), &o.market.symbol);
    kst_member(&mut m, key!("created_at"), o.created_at, false);
    if let Some(v) = o.volume {
        m.dec(key!("volume"), v);
        m.dec(key!("remaining_volume"), o.remaining_volume);
    }
    m.dec(key!("reserved_fee"), o.reserved_fee);
    m.dec(key!("remaining_fee"), o.remaining_fee);
    m.dec(key!("paid_fee"), o.paid_fee);
    m.dec(key!("locked"), o.locked);
    m.dec(key!("executed_volume"), o.executed_volume);
    if !with_trades {
        m.dec(key!("executed_funds"), o.executed_funds);
    }
    m.key(key!("trades_count"));
    push_digits(m.out, o.trades.len() as u64, 1);
    if let Some(i) = &o.identifier {
        m.str(key!("identifier"), i);
    }
    if let Some(t) = o.tif {
        m.plain(key!("time_in_force"), tif(t));
    }
    if with_trades {
        m.key(key!("trades"));
        m.out.push('[');
        for (n, f) in o.trades.iter().enumerate() {
            if n > 0 {
                m.out.push(',');
            }
            let mut t = Obj::new(m.out);
            t.str(key!("market"), &f.market.symbol);
            let mut uuid = uuid::Uuid::encode_buffer();
            t.plain(key!("uuid"), f.uuid.hyphenated().encode_lower(&mut uuid));
            t.dec(key!("price"), f.price);
            t.dec(key!("volume"), f.volume);
            t.dec(key!("funds"), f.funds);
            t.plain(key!("trend"), trend(f.taker_side));
            t.plain(key!("side"), f.side.as_str());
            kst_member(&mut t, key!("created_at"), f.created_at, true);
            t.end();
        }
        m.out.push(']');
    }
    m.end();
}

/// An order as a JSON value (for responses that edit it); see [`order_json`].
pub fn order(o: &Order, with_trades: bool) -> Value {
    serde_json::from_str(&order_json(o, with_trades)).unwrap_or(Value::Null)
}

/// A JSON array of already-rendered items.
pub use crate::mock::http::json_array as array;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::state::{Fill, Market};
    use std::sync::Arc;

    /// The Value-built rendering the mock used before [`order_json`]: the reference.
    fn reference(o: &Order, with_trades: bool) -> Value {
        let kst = |t: DateTime<Utc>| {
            t.with_timezone(&kst_offset())
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        };
        let kst_micro = |t: DateTime<Utc>| {
            t.with_timezone(&kst_offset())
                .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                .to_string()
        };
        let mut m = Map::new();
        m.insert("uuid".into(), json!(o.uuid.to_string()));
        m.insert("side".into(), json!(o.side.as_str()));
        m.insert("ord_type".into(), json!(ord_type(o.kind)));
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

    fn sample(kind: OrderKind, identifier: Option<&str>, micros: u32) -> Order {
        let market = Arc::new(Market {
            symbol: "KRW-BTC".into(),
            base: "BTC".into(),
            quote: "KRW".into(),
        });
        let at: DateTime<Utc> = "2026-12-31T15:59:59Z".parse().unwrap();
        let at = at + chrono::Duration::microseconds(micros as i64);
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        Order {
            uuid: uuid::Uuid::new_v4(),
            account: "a".into(),
            market: market.clone(),
            side: Side::Bid,
            kind,
            price: (kind == OrderKind::Limit).then(|| d("135000000")),
            quote_amount: (kind == OrderKind::MarketBuyQuote).then(|| d("20000.50")),
            volume: (kind != OrderKind::MarketBuyQuote).then(|| d("0.00012300")),
            remaining_volume: d("0.0001"),
            remaining_funds: Decimal::ZERO,
            reserved_fee: d("-0.000"),
            remaining_fee: d("12.5000"),
            paid_fee: d("1E-8"),
            locked: Decimal::ZERO,
            executed_volume: d("99999999999.12345678"),
            executed_funds: d("1000"),
            state: OrderState::Cancelled,
            created_at: at,
            identifier: identifier.map(str::to_string),
            tif: (kind == OrderKind::Best).then_some(Tif::Ioc),
            trades: (0..2)
                .map(|i| Fill {
                    uuid: uuid::Uuid::new_v4(),
                    id: i as u64 + 1,
                    market: market.clone(),
                    price: d("135000000"),
                    volume: d("0.00006150"),
                    funds: d("8302.5"),
                    side: Side::Bid,
                    taker_side: if i == 0 { Side::Bid } else { Side::Ask },
                    created_at: at + chrono::Duration::microseconds(i * 1_234_567),
                })
                .collect(),
        }
    }

    #[test]
    fn times_are_written_as_the_formatter_writes_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        let t0: DateTime<Utc> = "0001-01-01T00:00:00Z".parse().unwrap();
        let days_ahead = |d: i64| t0 + chrono::Duration::days(d);
        let mut times: Vec<DateTime<Utc>> = (0..20_000)
            .map(|_| t0 + chrono::Duration::microseconds(rng.gen_range(0..300_000_000_000_000_000)))
            .collect();
        // Around the ends of the fast path's years, month ends, leap days, KST midnight.
        for s in [
            "0000-01-01T00:00:00Z",
            "-0001-12-31T14:59:59Z",
            "9999-12-31T14:59:59.999999Z",
            "9999-12-31T15:00:00Z",
            "2024-02-28T15:00:00Z",
            "2100-02-28T15:00:00Z",
            "2000-02-28T15:00:00Z",
            "2026-12-31T14:59:59.000001Z",
            "1969-12-31T15:00:00Z",
        ] {
            times.push(s.parse().unwrap());
        }
        times.extend((0..4000).map(|d| days_ahead(d * 183)));
        for t in times {
            for (micros, f) in [
                (false, "%Y-%m-%dT%H:%M:%S%:z"),
                (true, "%Y-%m-%dT%H:%M:%S%.6f%:z"),
            ] {
                let mut s = String::new();
                push_kst(&mut s, t, micros);
                let mut old = String::new();
                push_kst_chrono(&mut old, t, micros);
                assert_eq!(s, old, "{t:?}");
                // chrono signs years past 9999 (`+10000`); both writers, as before, do not.
                if t >= t0 && t.with_timezone(&kst_offset()).year() <= 9999 {
                    assert_eq!(s, t.with_timezone(&kst_offset()).format(f).to_string());
                }
            }
        }
    }

    #[test]
    fn written_orders_are_the_bytes_serde_json_writes() {
        let hostile = "=HYPERLINK(\"x\")\\<script>\u{1b}[2J\u{7f}\t한글-{n}";
        for kind in [
            OrderKind::Limit,
            OrderKind::MarketBuyQuote,
            OrderKind::MarketSellBase,
            OrderKind::Best,
        ] {
            for ident in [None, Some("grid-1"), Some(hostile)] {
                for micros in [0, 1, 999_999, 123_456] {
                    let o = sample(kind, ident, micros);
                    for with_trades in [false, true] {
                        assert_eq!(
                            order_json(&o, with_trades),
                            reference(&o, with_trades).to_string(),
                            "{kind:?} {ident:?} {micros}"
                        );
                    }
                }
            }
        }
    }
}
