//! Bybit's spot order endpoints over the venue: place, cancel one, cancel all (per
//! `orderFilter`), open and recent orders (`/v5/order/realtime`), closed orders
//! (`/v5/order/history`) and fills (`/v5/execution/list`), both within windows of at most
//! seven days, newest first, paged by an opaque cursor.
//!
//! Plain orders (`orderFilter` `Order`, the default) go to the venue's matching engine. A
//! conditional or TP/SL order (`StopOrder`, `tpslOrder`, with a `triggerPrice`) is held by
//! the façade as `Untriggered` until it is cancelled (then `Deactivated`): the mock never
//! triggers it and it locks no funds. It is listed and cancelled like Bybit's, one
//! `orderFilter` at a time, which is what an incident needs to drill (`cancel-all` without
//! a filter leaves it in place).
//!
//! A market buy's `qty` is a quote amount unless `marketUnit` is `baseCoin`; a market sell's
//! is a base quantity unless `marketUnit` is `quoteCoin`, which the mock refuses.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::market;
use super::routes::Ctx;
use super::wire::{self, ms, ms_s};
use crate::mock::http;
use crate::mock::venue::clock::{self, WindowError};
use crate::mock::venue::dec;
use crate::mock::venue::fragments::PageText;
use crate::mock::venue::matching::{self, NewOrder};
use crate::mock::venue::state::{Fill, Market, Order, OrderKind, OrderState, Side, Tif, World};

/// Closed orders `/v5/order/realtime` keeps (`openOnly=1`).
const RECENT_CLOSED: usize = 500;

/// The names under which the venue keeps the text of a closed order and of its fills
/// ([`World::fragment_into`]; both depend only on the order and the venue's fee rate).
const ORDER_SHAPE: &str = "bybit-order";
const EXECUTION_SHAPE: &str = "bybit-execution";

/// A conditional or TP/SL order the façade holds.
#[derive(Debug, Clone)]
pub struct Conditional {
    pub id: u64,
    pub account: String,
    pub market: Arc<Market>,
    pub side: Side,
    /// `StopOrder` or `tpslOrder`.
    pub filter: &'static str,
    pub limit: bool,
    pub qty: Decimal,
    pub price: Option<Decimal>,
    pub trigger: Decimal,
    pub link_id: String,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Conditional {
    fn json(&self) -> Value {
        let status = if self.cancelled_at.is_some() {
            "Deactivated"
        } else {
            "Untriggered"
        };
        let stop_type = if self.filter == "tpslOrder" {
            "tpslOrder"
        } else {
            "Stop"
        };
        let cancel_type = if self.cancelled_at.is_some() {
            "CancelByUser"
        } else {
            "UNKNOWN"
        };
        let tif = if self.limit { "GTC" } else { "IOC" };
        let order_type = if self.limit { "Limit" } else { "Market" };
        wire::merge([
            json!({"orderId": self.id.to_string(), "orderLinkId": self.link_id,
                "blockTradeId": "", "symbol": self.market.symbol,
                "price": dec(self.price.unwrap_or_default()), "qty": dec(self.qty),
                "side": wire::side(self.side), "isLeverage": "0", "positionIdx": 0,
                "orderStatus": status, "cancelType": cancel_type, "rejectReason": "EC_NoError",
                "avgPrice": "", "leavesQty": dec(self.qty), "leavesValue": "0",
                "cumExecQty": "0", "cumExecValue": "0", "cumExecFee": "0", "timeInForce": tif,
                "orderType": order_type, "stopOrderType": stop_type}),
            json!({"orderIv": "", "marketUnit": "", "triggerPrice": dec(self.trigger),
                "takeProfit": "0", "stopLoss": "0", "tpslMode": "", "ocoTriggerBy": "",
                "tpLimitPrice": "", "slLimitPrice": "", "tpTriggerBy": "", "slTriggerBy": "",
                "triggerDirection": 0, "triggerBy": "LastPrice", "lastPriceOnCreated": "",
                "basePrice": "", "reduceOnly": false, "closeOnTrigger": false, "placeType": "",
                "smpType": "None", "smpGroup": 0, "smpOrderId": ""}),
            json!({"createdTime": ms_s(self.created_at),
                "updatedTime": ms_s(self.cancelled_at.unwrap_or(self.created_at)),
                "cumFeeDetail": {}}),
        ])
    }
}

/// The conditional filter an `orderFilter` names: None for plain orders (`Order` or
/// absent), 10001 for a kind the mock does not hold.
fn conditional_filter(f: Option<&str>) -> Result<Option<&'static str>, ApiErr> {
    match f {
        None | Some("Order") => Ok(None),
        Some("StopOrder") => Ok(Some("StopOrder")),
        Some("tpslOrder") => Ok(Some("tpslOrder")),
        Some("OcoOrder" | "BidirectionalTpslOrder") => Ok(Some("unsupported")),
        Some(_) => Err(errors::bad_param("orderFilter")),
    }
}

/// A decimal parameter (170130 otherwise).
fn decimal(c: &Ctx<'_>, k: &str) -> Result<Option<Decimal>, ApiErr> {
    let Some(s) = c.get(k) else {
        return Ok(None);
    };
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1;
    if !ok {
        return Err(errors::bad_value(k));
    }
    s.parse().map(Some).map_err(|_| errors::bad_value(k))
}

/// Spot only: a derivatives category is refused for writes.
fn spot_only(c: &Ctx<'_>) -> Result<(), ApiErr> {
    if c.spot()? {
        Ok(())
    } else {
        Err(errors::params(
            "params error: this mock serves category spot only",
        ))
    }
}

/// `POST /v5/order/create`.
pub fn create(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    spot_only(c)?;
    let key = c.key()?.clone();
    let conf = c.market()?.clone();
    let side = match c.get("side") {
        None => return Err(errors::empty("side")),
        Some("Buy") => Side::Bid,
        Some("Sell") => Side::Ask,
        Some(_) => return Err(errors::bad_side()),
    };
    let limit = match c.get("orderType") {
        None => return Err(errors::empty("orderType")),
        Some("Limit") => true,
        Some("Market") => false,
        Some(_) => return Err(errors::bad_order_type()),
    };
    let qty = decimal(c, "qty")?.ok_or_else(|| errors::empty("qty"))?;
    let price = decimal(c, "price")?;
    let link_id = match c.get("orderLinkId") {
        None => None,
        Some(s)
            if s.len() <= 36
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Some(s.to_string())
        }
        Some(_) => return Err(errors::bad_value("orderLinkId")),
    };
    if c.get("isLeverage").is_some_and(|v| v != "0") {
        return Err(errors::params(
            "params error: margin trading is not offered by this mock",
        ));
    }
    let tif = match (limit, c.get("timeInForce")) {
        (false, _) | (true, None | Some("GTC")) => None,
        (true, Some("IOC")) => Some(Tif::Ioc),
        (true, Some("FOK")) => Some(Tif::Fok),
        (true, Some("PostOnly")) => Some(Tif::PostOnly),
        (true, Some(_)) => return Err(errors::bad_tif()),
    };
    let f = market::filters(c.ex, &conf);
    let lot_ok = |q: Decimal| (q % f.lot).is_zero();
    if limit {
        let p = price.ok_or_else(|| errors::empty("price"))?;
        if p <= Decimal::ZERO {
            return Err(errors::bad_value("price"));
        }
        if !(p % f.tick).is_zero() {
            return Err(errors::price_decimals());
        }
    }
    let unit = c.get("marketUnit");
    let kind = if limit {
        OrderKind::Limit
    } else {
        match (side, unit) {
            (Side::Bid, None | Some("quoteCoin")) => OrderKind::MarketBuyQuote,
            (Side::Bid, Some("baseCoin")) => OrderKind::MarketBuyBase,
            (Side::Ask, None | Some("baseCoin")) => OrderKind::MarketSellBase,
            (Side::Ask, Some("quoteCoin")) => {
                return Err(errors::params(
                    "params error: a market sell by quote amount is not offered by this mock",
                ))
            }
            (_, Some(_)) => return Err(errors::bad_value("marketUnit")),
        }
    };
    if kind == OrderKind::MarketBuyQuote {
        if qty.scale() > 8 {
            return Err(errors::err(170148, "Market order amount decimal too long"));
        }
        if qty < f.min_amt {
            return Err(errors::value_too_small());
        }
    } else {
        if !lot_ok(qty) {
            return Err(errors::qty_decimals());
        }
        if qty < f.min_qty {
            return Err(errors::qty_too_small());
        }
        if qty > f.max_qty {
            return Err(errors::err(170135, "Order quantity too large."));
        }
        if let Some(p) = price.filter(|_| limit) {
            if p * qty < f.min_amt {
                return Err(errors::value_too_small());
            }
        }
    }
    if let Some(filter) = conditional_filter(c.get("orderFilter"))? {
        if filter == "unsupported" {
            return Err(errors::params(
                "params error: OCO and bidirectional TP/SL orders are not offered by this mock",
            ));
        }
        let trigger = decimal(c, "triggerPrice")?.ok_or_else(|| errors::empty("triggerPrice"))?;
        return Ok(place_conditional(
            c,
            &key.account,
            conf.market.clone(),
            side,
            filter,
            limit,
            qty,
            price,
            trigger,
            link_id,
        ));
    }
    let req = NewOrder {
        market: conf.market.clone(),
        side,
        kind,
        price: price.filter(|_| limit),
        quote_amount: (kind == OrderKind::MarketBuyQuote).then_some(qty),
        volume: (kind != OrderKind::MarketBuyQuote).then_some(qty),
        identifier: link_id,
        tif,
    };
    let mut w = c.ex.world();
    if let Some(l) = &req.identifier {
        if c.shared
            .conditionals()
            .iter()
            .any(|x| x.account == key.account && x.link_id == *l)
        {
            return Err(errors::duplicate_link_id());
        }
    }
    let idx = matching::place(&mut w, &c.ex.markets, &key.account, req, c.now)?;
    c.fx.created.push(w.orders[idx].uuid);
    Ok(json!({"orderId": wire::order_id(idx),
        "orderLinkId": w.orders[idx].identifier.clone().unwrap_or_default()}))
}

#[allow(clippy::too_many_arguments)]
fn place_conditional(
    c: &Ctx<'_>,
    account: &str,
    market: Arc<Market>,
    side: Side,
    filter: &'static str,
    limit: bool,
    qty: Decimal,
    price: Option<Decimal>,
    trigger: Decimal,
    link_id: Option<String>,
) -> Value {
    let mut held = c.shared.conditionals();
    let id = wire::CONDITIONAL_ID_BASE + held.len() as u64;
    let link_id = link_id.unwrap_or_default();
    held.push(Conditional {
        id,
        account: account.to_string(),
        market,
        side,
        filter,
        limit,
        qty,
        price: price.filter(|_| limit),
        trigger,
        link_id: link_id.clone(),
        created_at: c.now,
        cancelled_at: None,
    });
    json!({"orderId": id.to_string(), "orderLinkId": link_id})
}

/// `POST /v5/order/cancel`: by `orderId` (wins) or `orderLinkId`, within `orderFilter`.
pub fn cancel(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    spot_only(c)?;
    let key = c.key()?.clone();
    let symbol = c.market()?.market.symbol.clone();
    let by_id = c.get("orderId");
    let by_link = c.get("orderLinkId");
    if by_id.is_none() && by_link.is_none() {
        return Err(errors::params(
            "params error: orderId or orderLinkId is required",
        ));
    }
    if let Some(_filter) = conditional_filter(c.get("orderFilter"))? {
        let mut held = c.shared.conditionals();
        let x = held
            .iter_mut()
            .find(|x| {
                x.account == key.account
                    && x.market.symbol == symbol
                    && x.cancelled_at.is_none()
                    && match by_id {
                        Some(id) => x.id.to_string() == id,
                        None => Some(x.link_id.as_str()) == by_link,
                    }
            })
            .ok_or_else(errors::order_not_found)?;
        x.cancelled_at = Some(c.now);
        return Ok(json!({"orderId": x.id.to_string(), "orderLinkId": x.link_id}));
    }
    let mut w = c.ex.world();
    let idx = match by_id {
        Some(id) => wire::order_idx(id, w.orders.len()),
        None => by_link.and_then(|l| w.find_by_identifier(&key.account, l)),
    }
    .ok_or_else(errors::order_not_found)?;
    let o = &w.orders[idx];
    if o.account != key.account || o.market.symbol != symbol || o.state != OrderState::Open {
        return Err(errors::order_not_found());
    }
    matching::cancel(&mut w, idx)?;
    c.fx.cancelled.push(w.orders[idx].uuid);
    Ok(json!({"orderId": wire::order_id(idx),
        "orderLinkId": w.orders[idx].identifier.clone().unwrap_or_default()}))
}

/// `POST /v5/order/cancel-all`: every open order of one `orderFilter` (plain orders by
/// default), of one symbol or all; no count limit for spot.
pub fn cancel_all(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    spot_only(c)?;
    let key = c.key()?.clone();
    let symbol = match c.get("symbol") {
        Some(_) => Some(c.market()?.market.symbol.clone()),
        None => None,
    };
    if c.get("baseCoin").is_some() || c.get("settleCoin").is_some() {
        return Err(errors::params(
            "params error: baseCoin and settleCoin are not offered for spot",
        ));
    }
    let in_symbol = |s: &str| symbol.as_deref().map_or(true, |x| x == s);
    let mut list = Vec::new();
    if let Some(filter) = conditional_filter(c.get("orderFilter"))? {
        let mut held = c.shared.conditionals();
        for x in held.iter_mut().filter(|x| {
            x.account == key.account
                && x.filter == filter
                && x.cancelled_at.is_none()
                && in_symbol(&x.market.symbol)
        }) {
            x.cancelled_at = Some(c.now);
            list.push(json!({"orderId": x.id.to_string(), "orderLinkId": x.link_id}));
        }
        return Ok(json!({"list": list, "success": "1"}));
    }
    let mut w = c.ex.world();
    let keep = |o: &Order| in_symbol(&o.market.symbol);
    let open = w.list_orders(
        &key.account,
        &[OrderState::Open],
        None,
        false,
        &keep,
        0,
        usize::MAX,
    );
    for idx in open {
        if matching::cancel(&mut w, idx).is_ok() {
            c.fx.cancelled.push(w.orders[idx].uuid);
            list.push(json!({"orderId": wire::order_id(idx),
                "orderLinkId": w.orders[idx].identifier.clone().unwrap_or_default()}));
        }
    }
    Ok(json!({"list": list, "success": "1"}))
}

/// What a listed item is: a venue order, one of its fills, or an item written already (its
/// JSON text: a conditional order the façade holds, a withdrawal, a deposit).
pub enum Listed {
    Order(usize),
    Execution(usize, usize),
    Text(String),
}

/// One listed item: sort key (time ms, tie-break) and what it is.
pub type Item = ((i64, u64), Listed);

/// Newest first from the cursor on: a page of `limit` (the answer's list, its items written
/// into one buffer and put aside as JSON text, [`http::raw_list_text`]) and the next cursor
/// ("" at the end). Only the page's items are written; a closed order's text (and its
/// fills') is kept and copied when read again ([`World::fragment_into`]).
pub fn page(
    c: &mut Ctx<'_>,
    account: &str,
    kind: &str,
    mut items: Vec<Item>,
    limit: usize,
) -> Result<(Value, String), ApiErr> {
    let after = cursor_arg(c)?;
    items.sort_by_key(|b| std::cmp::Reverse(b.0));
    let mut rest = items
        .into_iter()
        .filter(|(k, _)| after.map_or(true, |a| *k < a));
    let chosen: Vec<Item> = rest.by_ref().take(limit).collect();
    let next = match (rest.next(), chosen.last()) {
        (Some(_), Some((k, _))) => wire::cursor(k.0, k.1),
        _ => String::new(),
    };
    let fee = c.ex.markets.fee;
    let mut w = c.ex.world();
    let mut text = PageText::enveloped(chosen.len(), wire::ORDER_BYTES);
    for (_, item) in &chosen {
        match item {
            Listed::Order(i) => w.fragment_into(&mut text, ORDER_SHAPE, *i, None, |b| {
                wire::push_order_text(b, &w, *i)
            }),
            Listed::Execution(i, j) => {
                w.fragment_into(&mut text, EXECUTION_SHAPE, *i, Some(*j), |b| {
                    wire::push_execution_text(b, &w, *i, &w.orders[*i].trades[*j], fee)
                })
            }
            Listed::Text(t) => text.item(|b| b.push_str(t)),
        }
    }
    let list = w.page_text(account, kind, text, c.repeat_page, limit);
    drop(w);
    Ok((http::raw_list_text(c.fx, list), next))
}

/// The `cursor` parameter: the sort key of the last item of the previous page.
fn cursor_arg(c: &Ctx<'_>) -> Result<Option<(i64, u64)>, ApiErr> {
    match c.get("cursor") {
        None => Ok(None),
        Some(s) => Ok(Some(
            wire::parse_cursor(s).ok_or_else(|| errors::bad_param("cursor"))?,
        )),
    }
}

/// The end of a window cut at a cursor: nothing after the cursor's millisecond can follow it
/// on a newest-first page, so an index walk starts there instead of at the window's end.
fn cut_at(end: DateTime<Utc>, after: Option<(i64, u64)>) -> DateTime<Utc> {
    after
        .and_then(|(t, _)| DateTime::<Utc>::from_timestamp_millis(t.checked_add(1)?))
        .map_or(end, |next_ms| end.min(next_ms - Duration::nanoseconds(1)))
}

/// `startTime`/`endTime` at most seven days apart: the last seven days when neither is
/// given, seven days from `startTime` or up to `endTime` when only one is (181010 when
/// longer, 10001 when reversed).
pub fn seven_days(c: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiErr> {
    window(c, Duration::days(7), errors::window_too_long)
}

/// A window of at most `span` (see [`seven_days`]; `too_long` when longer, 10001 when
/// reversed).
pub fn window(
    c: &Ctx<'_>,
    span: Duration,
    too_long: fn() -> ApiErr,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiErr> {
    let (start, end) = (c.time("startTime")?, c.time("endTime")?);
    clock::window(start, end, c.now, span).map_err(|e| match e {
        WindowError::Reversed => errors::params("params error: endTime is before startTime"),
        WindowError::TooLong => too_long(),
    })
}

/// Filters of the order lists: symbol, baseCoin, orderId, orderLinkId.
struct Pick {
    symbol: Option<String>,
    base: Option<String>,
    id: Option<String>,
    link: Option<String>,
}

impl Pick {
    fn from(c: &Ctx<'_>) -> Pick {
        let s = |k: &str| c.get(k).map(str::to_string);
        Pick {
            symbol: s("symbol"),
            base: s("baseCoin"),
            id: s("orderId"),
            link: s("orderLinkId"),
        }
    }
    fn market(&self, m: &Market) -> bool {
        self.symbol.as_deref().map_or(true, |s| m.symbol == s)
            && self.base.as_deref().map_or(true, |b| m.base == b)
    }
    fn order(&self, w: &World, idx: usize) -> bool {
        let o = &w.orders[idx];
        self.market(&o.market)
            && self
                .id
                .as_deref()
                .map_or(true, |id| wire::order_id(idx) == id)
            && self
                .link
                .as_deref()
                .map_or(true, |l| o.identifier.as_deref() == Some(l))
    }
    fn conditional(&self, x: &Conditional) -> bool {
        self.market(&x.market)
            && self.id.as_deref().map_or(true, |id| x.id.to_string() == id)
            && self.link.as_deref().map_or(true, |l| x.link_id == l)
    }
}

/// The answer of a list for a derivatives category: nothing.
fn nothing(c: &Ctx<'_>) -> Value {
    json!({"category": c.get("category"), "list": [], "nextPageCursor": ""})
}

/// The held conditional orders of `account` in `filter` (any when None) that `pick` selects
/// and `keep` accepts.
fn held(
    c: &Ctx<'_>,
    account: &str,
    filter: Option<&str>,
    pick: &Pick,
    keep: impl Fn(&Conditional) -> bool,
) -> Vec<Item> {
    c.shared
        .conditionals()
        .iter()
        .filter(|x| x.account == account && filter.map_or(true, |f| x.filter == f))
        .filter(|x| pick.conditional(x) && keep(x))
        .map(conditional_item)
        .collect()
}

fn venue_item(w: &World, idx: usize) -> Item {
    (
        (ms(w.orders[idx].created_at), idx as u64),
        Listed::Order(idx),
    )
}

fn conditional_item(x: &Conditional) -> Item {
    ((ms(x.created_at), x.id), Listed::Text(x.json().to_string()))
}

/// `GET /v5/order/realtime`: open orders (`openOnly=0`, the default) or the account's
/// most recent 500 closed ones (`openOnly=1`), plain and conditional per `orderFilter`; an
/// order named by `orderId` or `orderLinkId` is found in either.
pub fn realtime(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    if !c.spot()? {
        return Ok(nothing(c));
    }
    let key = c.key()?.clone();
    let limit = c.limit(20, 50)?;
    let filter = conditional_filter(c.get("orderFilter"))?;
    let all_kinds = c.get("orderFilter").is_none();
    let closed = match c.get("openOnly") {
        None | Some("0") => false,
        Some("1" | "2") => true,
        Some(_) => return Err(errors::bad_param("openOnly")),
    };
    let pick = Pick::from(c);
    // By id the order is found open or among the recent closed ones, whatever `openOnly`.
    let by_id = pick.id.is_some() || pick.link.is_some();
    let mut items = Vec::new();
    {
        let w = c.ex.world();
        if filter.is_none() {
            let keep = |o: &Order| pick.market(&o.market);
            let mut idx = Vec::new();
            if closed || by_id {
                idx = w.list_orders(
                    &key.account,
                    &[OrderState::Done, OrderState::Cancelled],
                    None,
                    true,
                    &keep,
                    0,
                    RECENT_CLOSED,
                );
            }
            if !closed || by_id {
                idx.extend(w.list_orders(
                    &key.account,
                    &[OrderState::Open],
                    None,
                    true,
                    &keep,
                    0,
                    usize::MAX,
                ));
            }
            items.extend(
                idx.into_iter()
                    .filter(|i| pick.order(&w, *i))
                    .map(|i| venue_item(&w, i)),
            );
        }
        if filter.is_some() || all_kinds {
            items.extend(held(c, &key.account, filter, &pick, |x| {
                by_id || x.cancelled_at.is_some() == closed
            }));
        }
    }
    let (list, next) = page(c, &key.account, "bybit-realtime", items, limit)?;
    Ok(json!({"category": "spot", "list": list, "nextPageCursor": next}))
}

/// `GET /v5/order/history`: closed orders created within a window of at most seven days,
/// newest first, filtered by symbol, coin, id, client id, `orderStatus` and `orderFilter`.
pub fn history(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    if !c.spot()? {
        return Ok(nothing(c));
    }
    let key = c.key()?.clone();
    let limit = c.limit(20, 50)?;
    let (s, e) = seven_days(c)?;
    let filter = conditional_filter(c.get("orderFilter"))?;
    let all_kinds = c.get("orderFilter").is_none();
    let status = c.get("orderStatus").map(str::to_string);
    let pick = Pick::from(c);
    let after = cursor_arg(c)?;
    let mut items = Vec::new();
    {
        let w = c.ex.world();
        if filter.is_none() {
            // The page and one more (whether a next page exists), walked newest first from
            // the cursor; the held orders below join them and `page` cuts the union.
            let keep = |i: usize, o: &Order| {
                pick.order(&w, i)
                    && status.as_deref().map_or(true, |st| wire::status(o) == st)
                    && after.map_or(true, |a| (ms(o.created_at), i as u64) < a)
            };
            let states = [OrderState::Done, OrderState::Cancelled];
            let idx = w.list_orders_at(
                &key.account,
                &states,
                Some((s, cut_at(e, after))),
                true,
                &keep,
                0,
                limit + 1,
            );
            items.extend(idx.into_iter().map(|i| venue_item(&w, i)));
        }
        if filter.is_some() || all_kinds {
            items.extend(held(c, &key.account, filter, &pick, |x| {
                x.cancelled_at.is_some()
                    && x.created_at >= s
                    && x.created_at <= e
                    && status.as_deref().map_or(true, |st| st == "Deactivated")
            }));
        }
    }
    let (list, next) = page(c, &key.account, "bybit-history", items, limit)?;
    Ok(json!({"category": "spot", "list": list, "nextPageCursor": next}))
}

/// `GET /v5/execution/list`: fills within a window of at most seven days, newest first.
pub fn executions(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    if !c.spot()? {
        return Ok(nothing(c));
    }
    let key = c.key()?.clone();
    let limit = c.limit(50, 100)?;
    let (s, e) = seven_days(c)?;
    if c.get("execType").is_some_and(|t| t != "Trade") {
        return Ok(json!({"category": "spot", "list": [], "nextPageCursor": ""}));
    }
    let pick = Pick::from(c);
    let after = cursor_arg(c)?;
    let mut items = Vec::new();
    {
        let w = c.ex.world();
        // The page and one more, walked newest first from the cursor in the fill index.
        let keep = |i: usize, _: &Order, f: &Fill| {
            pick.order(&w, i) && after.map_or(true, |a| (ms(f.created_at), f.id) < a)
        };
        let mut slots = w.list_fills(&key.account, (s, cut_at(e, after)), true, &keep, limit + 1);
        // Fills of one trade (both sides in this account) keep their orders' order under
        // `page`'s stable sort, as when the account's orders were read oldest first.
        slots.sort_by_key(|x| (w.orders[x.2].created_at, x.2, x.3));
        for (_, _, idx, j) in slots {
            let f = &w.orders[idx].trades[j];
            items.push(((ms(f.created_at), f.id), Listed::Execution(idx, j)));
        }
    }
    let (list, next) = page(c, &key.account, "bybit-executions", items, limit)?;
    Ok(json!({"category": "spot", "list": list, "nextPageCursor": next}))
}
