//! Bybit's JSON shapes over the venue: numeric-string order ids, statuses, the order and
//! execution objects, withdrawal and deposit rows, and the opaque list cursors.
//!
//! Numbers are decimal strings and times epoch-ms strings, as v5 writes them. An order's
//! `orderId` is [`ORDER_ID_BASE`] plus its position in the venue (stable once placed); a
//! conditional order the façade holds counts from [`CONDITIONAL_ID_BASE`]. Fees are charged
//! in the quote coin on both sides (the venue's rule), so `cumFeeDetail` and `feeCurrency`
//! name the quote coin.

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::mock::venue::dec;
use crate::mock::venue::jsontext::{key, push_dec, push_digits, push_json_str, Obj};
use crate::mock::venue::state::{
    Deposit, Fill, Order, OrderKind, OrderState, Side, Tif, Withdrawal, WithdrawalState, World,
};

/// `orderId` of the venue's first order.
pub const ORDER_ID_BASE: u64 = 1_800_000_000_000_000_000;
/// `orderId` of the façade's first conditional order.
pub const CONDITIONAL_ID_BASE: u64 = 1_900_000_000_000_000_000;
/// `withdrawId` of the venue's first withdrawal.
pub const WITHDRAW_ID_BASE: u64 = 130_000_000;
/// `id` of the venue's first deposit.
pub const DEPOSIT_ID_BASE: u64 = 160_000_000;

/// Epoch milliseconds.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Epoch milliseconds as a string.
pub fn ms_s(t: DateTime<Utc>) -> String {
    t.timestamp_millis().to_string()
}

/// A time from epoch milliseconds.
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// The `orderId` of the venue's order at `idx`.
pub fn order_id(idx: usize) -> String {
    (ORDER_ID_BASE + idx as u64).to_string()
}

/// The venue position an `orderId` names (None when it names no venue order).
pub fn order_idx(id: &str, len: usize) -> Option<usize> {
    let n: u64 = id.parse().ok()?;
    let i = n.checked_sub(ORDER_ID_BASE)? as usize;
    (i < len && n < CONDITIONAL_ID_BASE).then_some(i)
}

/// `Buy` / `Sell`.
pub fn side(s: Side) -> &'static str {
    match s {
        Side::Bid => "Buy",
        Side::Ask => "Sell",
    }
}

/// Bybit's `orderStatus` of a venue order.
pub fn status(o: &Order) -> &'static str {
    let filled = o.executed_volume > Decimal::ZERO;
    match (o.state, filled) {
        (OrderState::Open, false) => "New",
        (OrderState::Open, true) => "PartiallyFilled",
        (OrderState::Done, _) => "Filled",
        (OrderState::Cancelled, false) => "Cancelled",
        (OrderState::Cancelled, true) => "PartiallyFilledCanceled",
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

/// The fields of an order that take computing, shared by [`order`] and [`order_text`].
struct Fields {
    market: bool,
    qty: Decimal,
    unit: &'static str,
    tif: &'static str,
    /// The average fill price (None before the first fill: written `""`).
    avg: Option<Decimal>,
    leaves_qty: Decimal,
    leaves_value: Decimal,
    cancel_type: &'static str,
}

fn fields(o: &Order) -> Fields {
    let market = !matches!(o.kind, OrderKind::Limit);
    let (qty, unit) = match o.kind {
        OrderKind::MarketBuyQuote | OrderKind::Best if o.side == Side::Bid => {
            (o.quote_amount.unwrap_or_default(), "quoteCoin")
        }
        OrderKind::Limit => (o.volume.unwrap_or_default(), ""),
        _ => (o.volume.unwrap_or_default(), "baseCoin"),
    };
    let tif = match (market, o.tif) {
        (true, _) | (false, Some(Tif::Ioc)) => "IOC",
        (false, Some(Tif::Fok)) => "FOK",
        (false, Some(Tif::PostOnly)) => "PostOnly",
        (false, None) => "GTC",
    };
    let avg = (o.executed_volume > Decimal::ZERO)
        .then(|| (o.executed_funds / o.executed_volume).round_dp(8));
    let (leaves_qty, leaves_value) = if o.state == OrderState::Open {
        match unit {
            "quoteCoin" => (Decimal::ZERO, o.remaining_funds),
            _ => (
                o.remaining_volume,
                o.price.map_or(Decimal::ZERO, |p| p * o.remaining_volume),
            ),
        }
    } else {
        (Decimal::ZERO, Decimal::ZERO)
    };
    let cancel_type = if o.state == OrderState::Cancelled {
        "CancelByUser"
    } else {
        "UNKNOWN"
    };
    Fields {
        market,
        qty,
        unit,
        tif,
        avg,
        leaves_qty,
        leaves_value,
        cancel_type,
    }
}

/// The order object of `/v5/order/realtime` and `/v5/order/history`.
pub fn order(w: &World, idx: usize) -> Value {
    let o = &w.orders[idx];
    let f = fields(o);
    let fee = dec(o.paid_fee);
    let avg = f.avg.map(dec).unwrap_or_default();
    let fee_detail = if o.paid_fee > Decimal::ZERO {
        json!({o.market.quote.clone(): fee})
    } else {
        json!({})
    };
    merge([
        json!({"orderId": order_id(idx), "orderLinkId": o.identifier.clone().unwrap_or_default(),
            "blockTradeId": "", "symbol": o.market.symbol,
            "price": dec(o.price.unwrap_or_default()), "qty": dec(f.qty), "side": side(o.side),
            "isLeverage": "0", "positionIdx": 0, "orderStatus": status(o),
            "cancelType": f.cancel_type, "rejectReason": "EC_NoError", "avgPrice": avg,
            "leavesQty": dec(f.leaves_qty), "leavesValue": dec(f.leaves_value),
            "cumExecQty": dec(o.executed_volume), "cumExecValue": dec(o.executed_funds),
            "cumExecFee": fee, "timeInForce": f.tif,
            "orderType": if f.market { "Market" } else { "Limit" }}),
        json!({"stopOrderType": "", "orderIv": "", "marketUnit": f.unit, "triggerPrice": "0",
            "takeProfit": "0", "stopLoss": "0", "tpslMode": "", "ocoTriggerBy": "",
            "tpLimitPrice": "", "slLimitPrice": "", "tpTriggerBy": "", "slTriggerBy": "",
            "triggerDirection": 0, "triggerBy": "", "lastPriceOnCreated": "", "basePrice": "",
            "reduceOnly": false, "closeOnTrigger": false, "placeType": "", "smpType": "None",
            "smpGroup": 0, "smpOrderId": ""}),
        json!({"createdTime": ms_s(o.created_at), "updatedTime": ms_s(o.updated_at()),
            "cumFeeDetail": fee_detail}),
    ])
}

/// What [`order`] writes, written as text directly (a history page's hot path: no map of
/// values built and then written); [`push_order_text`] into a new string.
#[cfg(test)]
pub fn order_text(w: &World, idx: usize) -> String {
    let mut s = String::with_capacity(ORDER_BYTES);
    push_order_text(&mut s, w, idx);
    s
}

/// About how many bytes [`push_order_text`] writes for one order.
pub const ORDER_BYTES: usize = 1024;

/// Appends what [`order`] writes for order `idx` to `s`, member by member; the constant
/// members between two that vary in one copy.
pub fn push_order_text(s: &mut String, w: &World, idx: usize) {
    let o = &w.orders[idx];
    let f = fields(o);
    let mut m = Obj::new(s);
    m.int_str(key!("orderId"), (ORDER_ID_BASE + idx as u64) as i64);
    m.str(
        key!("orderLinkId"),
        o.identifier.as_deref().unwrap_or_default(),
    );
    m.lit(concat!(key!("blockTradeId"), "\"\""));
    m.str(key!("symbol"), &o.market.symbol);
    m.dec(key!("price"), o.price.unwrap_or_default());
    m.dec(key!("qty"), f.qty);
    m.plain(key!("side"), side(o.side));
    m.lit(concat!(
        key!("isLeverage"),
        "\"0\"",
        key!("positionIdx"),
        "0"
    ));
    m.plain(key!("orderStatus"), status(o));
    m.plain(key!("cancelType"), f.cancel_type);
    m.lit(concat!(key!("rejectReason"), "\"EC_NoError\""));
    match f.avg {
        Some(avg) => m.dec(key!("avgPrice"), avg),
        None => m.lit(concat!(key!("avgPrice"), "\"\"")),
    }
    m.dec(key!("leavesQty"), f.leaves_qty);
    m.dec(key!("leavesValue"), f.leaves_value);
    m.dec(key!("cumExecQty"), o.executed_volume);
    m.dec(key!("cumExecValue"), o.executed_funds);
    m.dec(key!("cumExecFee"), o.paid_fee);
    m.plain(key!("timeInForce"), f.tif);
    m.plain(key!("orderType"), if f.market { "Market" } else { "Limit" });
    m.lit(concat!(
        key!("stopOrderType"),
        "\"\"",
        key!("orderIv"),
        "\"\""
    ));
    m.plain(key!("marketUnit"), f.unit);
    m.lit(concat!(
        key!("triggerPrice"),
        "\"0\"",
        key!("takeProfit"),
        "\"0\"",
        key!("stopLoss"),
        "\"0\"",
        key!("tpslMode"),
        "\"\"",
        key!("ocoTriggerBy"),
        "\"\"",
        key!("tpLimitPrice"),
        "\"\"",
        key!("slLimitPrice"),
        "\"\"",
        key!("tpTriggerBy"),
        "\"\"",
        key!("slTriggerBy"),
        "\"\"",
        key!("triggerDirection"),
        "0",
        key!("triggerBy"),
        "\"\"",
        key!("lastPriceOnCreated"),
        "\"\"",
        key!("basePrice"),
        "\"\"",
        key!("reduceOnly"),
        "false",
        key!("closeOnTrigger"),
        "false",
        key!("placeType"),
        "\"\"",
        key!("smpType"),
        "\"None\"",
        key!("smpGroup"),
        "0",
        key!("smpOrderId"),
        "\"\""
    ));
    m.int_str(key!("createdTime"), ms(o.created_at));
    m.int_str(key!("updatedTime"), ms(o.updated_at()));
    m.key(key!("cumFeeDetail"));
    if o.paid_fee > Decimal::ZERO {
        m.out.push('{');
        push_json_str(m.out, &o.market.quote);
        m.out.push_str(":\"");
        push_dec(m.out, o.paid_fee);
        m.out.push_str("\"}");
    } else {
        m.out.push_str("{}");
    }
    m.end();
}

/// One fill as `/v5/execution/list` writes it, as a value: the reference [`execution_text`]
/// is checked against.
#[cfg(test)]
pub fn execution(w: &World, idx: usize, f: &Fill, fee_rate: Decimal) -> Value {
    let o = &w.orders[idx];
    let fee = (f.funds * fee_rate).round_dp(8);
    merge([
        json!({"symbol": f.market.symbol, "orderId": order_id(idx),
            "orderLinkId": o.identifier.clone().unwrap_or_default(), "side": side(f.side),
            "orderPrice": dec(o.price.unwrap_or_default()),
            "orderQty": dec(o.volume.unwrap_or_default()), "leavesQty": dec(o.remaining_volume),
            "createType": "CreateByUser",
            "orderType": if o.kind == OrderKind::Limit { "Limit" } else { "Market" },
            "stopOrderType": "", "execFee": dec(fee), "execId": f.uuid.to_string(),
            "execPrice": dec(f.price), "execQty": dec(f.volume), "execType": "Trade"}),
        json!({"execValue": dec(f.funds), "execTime": ms_s(f.created_at),
            "feeCurrency": f.market.quote, "isMaker": f.side != f.taker_side,
            "feeRate": dec(fee_rate), "tradeIv": "", "markIv": "", "markPrice": "",
            "indexPrice": "", "underlyingPrice": "", "blockTradeId": "", "closedSize": "",
            "seq": f.id, "extraFees": ""}),
    ])
}

/// [`execution`]'s text, written directly (a history page's hot path);
/// [`push_execution_text`] into a new string.
#[cfg(test)]
pub fn execution_text(w: &World, idx: usize, f: &Fill, fee_rate: Decimal) -> String {
    let mut s = String::with_capacity(EXECUTION_BYTES);
    push_execution_text(&mut s, w, idx, f, fee_rate);
    s
}

/// About how many bytes [`push_execution_text`] writes for one fill.
pub const EXECUTION_BYTES: usize = 640;

/// Appends [`execution`]'s text for fill `f` of order `idx` to `s`.
pub fn push_execution_text(s: &mut String, w: &World, idx: usize, f: &Fill, fee_rate: Decimal) {
    let o = &w.orders[idx];
    let fee = (f.funds * fee_rate).round_dp(8);
    let mut m = Obj::new(s);
    m.str(key!("symbol"), &f.market.symbol);
    m.int_str(key!("orderId"), (ORDER_ID_BASE + idx as u64) as i64);
    m.str(
        key!("orderLinkId"),
        o.identifier.as_deref().unwrap_or_default(),
    );
    m.plain(key!("side"), side(f.side));
    m.dec(key!("orderPrice"), o.price.unwrap_or_default());
    m.dec(key!("orderQty"), o.volume.unwrap_or_default());
    m.dec(key!("leavesQty"), o.remaining_volume);
    m.raw(key!("createType"), "\"CreateByUser\"");
    let kind = if o.kind == OrderKind::Limit {
        "Limit"
    } else {
        "Market"
    };
    m.plain(key!("orderType"), kind);
    m.raw(key!("stopOrderType"), "\"\"");
    m.dec(key!("execFee"), fee);
    let mut uuid = uuid::Uuid::encode_buffer();
    m.plain(key!("execId"), f.uuid.hyphenated().encode_lower(&mut uuid));
    m.dec(key!("execPrice"), f.price);
    m.dec(key!("execQty"), f.volume);
    m.raw(key!("execType"), "\"Trade\"");
    m.dec(key!("execValue"), f.funds);
    m.int_str(key!("execTime"), f.created_at.timestamp_millis());
    m.str(key!("feeCurrency"), &f.market.quote);
    m.bool(key!("isMaker"), f.side != f.taker_side);
    m.dec(key!("feeRate"), fee_rate);
    m.raw(
        key!("tradeIv"),
        "\"\",\"markIv\":\"\",\"markPrice\":\"\",\"indexPrice\":\"\",\"underlyingPrice\":\"\",\"blockTradeId\":\"\",\"closedSize\":\"\"",
    );
    m.key(key!("seq"));
    push_digits(m.out, f.id, 1);
    m.raw(key!("extraFees"), "\"\"");
    m.end();
}

/// A withdrawal's `withdrawId`: [`WITHDRAW_ID_BASE`] plus its position.
pub fn withdraw_id(pos: usize) -> String {
    (WITHDRAW_ID_BASE + pos as u64).to_string()
}

/// The venue position a `withdrawId` names.
pub fn withdraw_pos(id: &str, len: usize) -> Option<usize> {
    let n: u64 = id.parse().ok()?;
    let i = n.checked_sub(WITHDRAW_ID_BASE)? as usize;
    (i < len).then_some(i)
}

/// Bybit's withdrawal `status`.
pub fn withdrawal_status(s: WithdrawalState) -> &'static str {
    match s {
        WithdrawalState::Waiting => "Pending",
        WithdrawalState::Done => "success",
        WithdrawalState::Cancelled => "CancelByUser",
    }
}

/// A row of `/v5/asset/withdraw/query-record`.
pub fn withdrawal(pos: usize, x: &Withdrawal) -> Value {
    json!({"coin": x.currency, "chain": x.net_type, "amount": dec(x.amount),
        "txID": if x.state == WithdrawalState::Done { x.txid.clone().unwrap_or_default() }
            else { String::new() },
        "status": withdrawal_status(x.state), "toAddress": x.address, "tag": "",
        "withdrawFee": dec(x.fee), "createTime": ms_s(x.created_at),
        "updateTime": ms_s(x.done_at.unwrap_or(x.created_at)), "withdrawId": withdraw_id(pos),
        "withdrawType": 0, "fee": "", "tax": "", "taxRate": "", "taxType": ""})
}

/// A row of `/v5/asset/deposit/query-record` (every venue deposit is credited: status 3).
pub fn deposit(pos: usize, x: &Deposit) -> Value {
    json!({"coin": x.currency, "chain": x.net_type, "amount": dec(x.amount), "txID": x.txid,
        "status": 3, "toAddress": "", "tag": "", "depositFee": "",
        "successAt": ms_s(x.created_at), "confirmations": "50", "txIndex": "0",
        "blockHash": "", "batchReleaseLimit": "-1", "depositType": "0", "fromAddress": "",
        "taxDepositRecordsId": "0", "taxStatus": 0,
        "id": (DEPOSIT_ID_BASE + pos as u64).to_string()})
}

/// A list cursor: the sort key of the last item served (time ms, tie-break), opaque to
/// clients and made of URL-safe characters only.
pub fn cursor(t_ms: i64, tie: u64) -> String {
    format!("{t_ms}_{tie}")
}

/// The sort key a cursor carries (None when it is not one of ours).
pub fn parse_cursor(s: &str) -> Option<(i64, u64)> {
    let (a, b) = s.split_once('_')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct writer writes what the value builder writes, for every order of the
    /// built-in scenarios and for client ids that need escaping.
    #[test]
    fn the_order_text_is_the_order_value_written() {
        crate::mock::venue::assert_order_texts(&crate::mock::bybit::Bybit, |w, i| {
            Some((order_text(w, i), order(w, i).to_string()))
        });
    }

    /// The direct writer of an execution writes what the value builder writes, for every
    /// fill of the built-in scenarios.
    #[test]
    fn the_execution_text_is_the_execution_value_written() {
        let fee = "0.001".parse::<Decimal>().unwrap();
        crate::mock::venue::assert_order_texts(&crate::mock::bybit::Bybit, |w, i| {
            let o = &w.orders[i];
            let text: String = o
                .trades
                .iter()
                .map(|f| execution_text(w, i, f, fee))
                .collect();
            let value: String = o
                .trades
                .iter()
                .map(|f| execution(w, i, f, fee).to_string())
                .collect();
            Some((text, value))
        });
    }

    #[test]
    fn ids_and_cursors_round_trip() {
        assert_eq!(order_id(5), "1800000000000000005");
        assert_eq!(order_idx("1800000000000000005", 6), Some(5));
        assert_eq!(order_idx("1800000000000000006", 6), None);
        assert_eq!(order_idx("1900000000000000001", usize::MAX), None);
        assert_eq!(order_idx("12", 6), None);
        assert_eq!(order_idx("x", 6), None);
        assert_eq!(withdraw_pos(&withdraw_id(3), 4), Some(3));
        assert_eq!(withdraw_pos(&withdraw_id(4), 4), None);
        assert_eq!(
            parse_cursor(&cursor(1_735_776_000_000, 42)),
            Some((1_735_776_000_000, 42))
        );
        assert_eq!(parse_cursor("132766%3A2"), None);
    }
}
