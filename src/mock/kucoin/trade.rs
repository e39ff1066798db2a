//! KuCoin's spot order endpoints over the venue, in both families: high-frequency
//! (`/api/v1/hf/orders…`, `/api/v1/hf/fills`) and classic (`/api/v1/orders`,
//! `/api/v1/fills`), plus stop orders (`/api/v1/stop-order`).
//!
//! - Place: `limit` (price and size) or `market` (size, or funds for a quote amount; never
//!   both). Classic orders need a `clientOid`. Prices must sit on `priceIncrement`, sizes on
//!   `baseIncrement`, funds on `quoteIncrement`.
//! - Cancel one (by id or `clientOid`; HF needs `symbol`), cancel all: HF
//!   `DELETE /api/v1/hf/orders/cancelAll` (every symbol) or `DELETE /api/v1/hf/orders?symbol=`,
//!   classic `DELETE /api/v1/orders` (one symbol or all), stops
//!   `DELETE /api/v1/stop-order/cancel`. Each touches its own family only.
//! - History: HF closed orders and fills need `symbol`, page newest first by `lastId`
//!   (`limit` 1–100, default 20) within a window of at most 7 days (`startAt`/`endAt` in ms;
//!   the last 7 days by default). Classic lists page by `currentPage`/`pageSize` (10–500,
//!   default 50); closed orders and fills within the same 7-day window; open orders whatever
//!   their age. Orders are ordered by creation time.
//! - Stop orders are held by the façade as `NEW` until cancelled; the mock never triggers them
//!   and they lock no funds.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::market;
use super::routes::Ctx;
use super::wire::{self, ms};
use crate::mock::http;
use crate::mock::venue::clock::{self, WindowError};
use crate::mock::venue::dec;
use crate::mock::venue::fragments::PageText;
use crate::mock::venue::matching::{self, MarketConf, NewOrder};
use crate::mock::venue::state::{Fill, Market, Order, OrderKind, OrderState, Side, Tif, World};

/// Which endpoints an order belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Hf,
    Classic,
}

/// The longest history window, in days.
pub const WINDOW_DAYS: i64 = 7;

/// A stop order the façade holds.
#[derive(Debug, Clone)]
pub struct Stop {
    pub seq: usize,
    pub account: String,
    pub market: Arc<Market>,
    pub side: Side,
    pub limit: bool,
    pub price: Option<Decimal>,
    pub size: Option<Decimal>,
    pub funds: Option<Decimal>,
    pub stop_price: Decimal,
    /// `loss` or `entry`.
    pub stop: &'static str,
    pub client_oid: String,
    pub created_at: DateTime<Utc>,
    pub cancelled: bool,
}

impl Stop {
    /// Its id (`vs` and 22 hexadecimal digits).
    pub fn id(&self) -> String {
        format!("vs{:022x}", self.seq)
    }

    fn json(&self, fee: Decimal) -> Value {
        let o = json!({"id": self.id(), "symbol": self.market.symbol, "userId": "",
            "status": if self.cancelled { "CANCELLED" } else { "NEW" },
            "type": if self.limit { "limit" } else { "market" }, "side": wire::side(self.side),
            "price": dec(self.price.unwrap_or_default()),
            "size": self.size.map(dec), "funds": self.funds.map(dec), "stp": null,
            "timeInForce": "GTC", "cancelAfter": -1, "postOnly": false, "hidden": false,
            "iceberg": false, "visibleSize": null, "channel": "API", "clientOid": self.client_oid,
            "remark": null, "tags": null});
        let more = json!({"orderTime": ms(self.created_at) * 1_000_000, "domainId": "kucoin",
            "tradeSource": "USER", "tradeType": "TRADE", "feeCurrency": self.market.quote,
            "takerFeeRate": dec(fee), "makerFeeRate": dec(fee), "createdAt": ms(self.created_at),
            "stop": self.stop, "stopTriggerTime": null, "stopPrice": dec(self.stop_price)});
        wire::merge([o, more])
    }
}

/// A decimal parameter (400100 otherwise).
fn decimal(c: &Ctx<'_>, k: &str) -> Result<Option<Decimal>, ApiErr> {
    let Some(s) = c.get(k) else {
        return Ok(None);
    };
    let ok = s.len() <= 40
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|b| *b == b'.').count() <= 1;
    let d: Option<Decimal> = if ok { s.parse().ok() } else { None };
    d.filter(|d| *d > Decimal::ZERO)
        .map(Some)
        .ok_or_else(|| errors::bad_param(k))
}

/// A new order's terms, validated against the symbol's filters.
struct Terms {
    conf: MarketConf,
    side: Side,
    kind: OrderKind,
    price: Option<Decimal>,
    size: Option<Decimal>,
    funds: Option<Decimal>,
    tif: Option<Tif>,
    client_oid: Option<String>,
}

fn terms(c: &Ctx<'_>, family: Option<Family>) -> Result<Terms, ApiErr> {
    let client_oid = match c.get("clientOid") {
        None if family == Some(Family::Classic) => {
            return Err(errors::params("validation.createOrder.clientOidIsRequired"))
        }
        None => None,
        Some(s)
            if s.len() <= 40
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Some(s.to_string())
        }
        Some(_) => return Err(errors::bad_param("clientOid")),
    };
    let side = match c.get("side") {
        Some("buy") => Side::Bid,
        Some("sell") => Side::Ask,
        None => return Err(errors::required("side")),
        Some(_) => return Err(errors::bad_param("side")),
    };
    let conf = c.market()?.clone();
    let limit = match c.get("type") {
        None | Some("limit") => true,
        Some("market") => false,
        Some(_) => return Err(errors::bad_param("type")),
    };
    if c.get("tradeType").is_some_and(|t| t != "TRADE") {
        return Err(errors::params("margin trading is not offered by this mock"));
    }
    let f = market::filters(c.ex, &conf);
    let price = decimal(c, "price")?;
    let size = decimal(c, "size")?;
    let funds = decimal(c, "funds")?;
    let on = |v: Decimal, step: Decimal| (v % step).is_zero();
    if let Some(s) = size {
        if !on(s, f.lot) {
            return Err(errors::size_increment());
        }
        if s < f.min_size {
            return Err(errors::size_too_small());
        }
        if s > f.max_size {
            return Err(errors::params("Order size above the maximum requirement."));
        }
    }
    let post_only = c.get("postOnly") == Some("true");
    let (kind, tif) = if limit {
        let p = price.ok_or_else(|| errors::required("price"))?;
        size.ok_or_else(|| errors::required("size"))?;
        if !on(p, f.tick) {
            return Err(errors::price_increment());
        }
        let tif = match c.get("timeInForce") {
            None | Some("GTC") if post_only => Some(Tif::PostOnly),
            None | Some("GTC") => None,
            Some("IOC") => Some(Tif::Ioc),
            Some("FOK") => Some(Tif::Fok),
            Some("GTT") => return Err(errors::params("GTT orders are not offered by this mock")),
            Some(_) => return Err(errors::bad_param("timeInForce")),
        };
        (OrderKind::Limit, tif)
    } else {
        let kind = match (side, size, funds) {
            (_, Some(_), Some(_)) | (_, None, None) => {
                return Err(errors::params("size or funds is required, but not both"))
            }
            (Side::Bid, None, Some(_)) => OrderKind::MarketBuyQuote,
            (Side::Bid, Some(_), None) => OrderKind::MarketBuyBase,
            (Side::Ask, Some(_), None) => OrderKind::MarketSellBase,
            (Side::Ask, None, Some(_)) => {
                return Err(errors::params(
                    "a market sell by funds is not offered by this mock",
                ))
            }
        };
        if let Some(q) = funds {
            if !on(q, f.quote_step) {
                return Err(errors::funds_increment());
            }
        }
        (kind, None)
    };
    Ok(Terms {
        conf,
        side,
        kind,
        price: price.filter(|_| limit),
        size,
        funds: funds.filter(|_| !limit),
        tif,
        client_oid,
    })
}

/// `POST /api/v1/hf/orders` and `POST /api/v1/orders`.
pub fn create(c: &mut Ctx<'_>, family: Family) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let t = terms(c, Some(family))?;
    if let Some(oid) = &t.client_oid {
        if c.shared
            .stops()
            .iter()
            .any(|s| s.account == key.account && s.client_oid == *oid)
        {
            return Err(errors::duplicate_client_oid());
        }
    }
    let req = NewOrder {
        market: t.conf.market.clone(),
        side: t.side,
        kind: t.kind,
        price: t.price,
        quote_amount: t.funds,
        volume: t.size,
        identifier: t.client_oid.clone(),
        tif: t.tif,
    };
    let mut w = c.ex.world();
    let idx = matching::place(&mut w, &c.ex.markets, &key.account, req, c.now)?;
    if family == Family::Classic {
        c.shared.classic().insert(idx);
    }
    c.fx.created.push(w.orders[idx].uuid);
    Ok(match family {
        Family::Hf => json!({"orderId": wire::order_id(idx),
            "clientOid": t.client_oid.unwrap_or_default()}),
        Family::Classic => json!({"orderId": wire::order_id(idx)}),
    })
}

fn family_of(c: &Ctx<'_>, idx: usize) -> Family {
    if c.shared.classic().contains(&idx) {
        Family::Classic
    } else {
        Family::Hf
    }
}

/// The venue order the path names (by id or `clientOid`) if it is the caller's, of
/// `family`, and (HF) in the `symbol` given.
fn find(c: &Ctx<'_>, w: &World, family: Family, by_client: bool) -> Result<Option<usize>, ApiErr> {
    let key = c.key()?;
    let symbol = match family {
        Family::Hf => Some(c.market()?.market.symbol.clone()),
        Family::Classic => None,
    };
    let id = c.id.unwrap_or_default();
    let idx = if by_client {
        w.find_by_identifier(&key.account, id)
    } else {
        wire::order_idx(id, w.orders.len())
    };
    Ok(idx.filter(|i| {
        let o = &w.orders[*i];
        o.account == key.account
            && symbol.as_deref().map_or(true, |s| o.market.symbol == s)
            && family_of(c, *i) == family
    }))
}

/// `GET /api/v1/hf/orders/{id}`, `…/client-order/{clientOid}`, `GET /api/v1/orders/{id}`,
/// `GET /api/v1/order/client-order/{clientOid}`.
pub fn get(c: &mut Ctx<'_>, family: Family, by_client: bool) -> Result<Value, ApiErr> {
    let w = c.ex.world();
    let idx = find(c, &w, family, by_client)?.ok_or_else(errors::order_not_found)?;
    Ok(wire::order(&w, idx, family == Family::Hf))
}

/// `DELETE /api/v1/hf/orders/{id}` (and by `clientOid`), `DELETE /api/v1/orders/{id}`.
pub fn cancel(c: &mut Ctx<'_>, family: Family, by_client: bool) -> Result<Value, ApiErr> {
    let mut w = c.ex.world();
    let idx = find(c, &w, family, by_client)?
        .filter(|i| w.orders[*i].state == OrderState::Open)
        .ok_or_else(errors::not_cancellable)?;
    matching::cancel(&mut w, idx)?;
    c.fx.cancelled.push(w.orders[idx].uuid);
    let id = wire::order_id(idx);
    Ok(match (family, by_client) {
        (Family::Hf, false) => json!({"orderId": id}),
        (Family::Hf, true) => json!({"clientOid": c.id.unwrap_or_default()}),
        (Family::Classic, _) => json!({"cancelledOrderIds": [id]}),
    })
}

/// The caller's open orders of `family` (in `symbol` when given), newest first.
fn open_orders(c: &Ctx<'_>, w: &World, family: Family, symbol: Option<&str>) -> Vec<usize> {
    let account = c.key.map(|k| k.account.clone()).unwrap_or_default();
    let keep = |o: &Order| symbol.map_or(true, |s| o.market.symbol == s);
    w.list_orders(
        &account,
        &[OrderState::Open],
        None,
        true,
        &keep,
        0,
        usize::MAX,
    )
    .into_iter()
    .filter(|i| family_of(c, *i) == family)
    .collect()
}

/// Cancels the open orders at `idx`; their ids.
fn cancel_each(c: &mut Ctx<'_>, w: &mut World, idx: Vec<usize>) -> Vec<usize> {
    let mut done = Vec::new();
    for i in idx {
        if matching::cancel(w, i).is_ok() {
            c.fx.cancelled.push(w.orders[i].uuid);
            done.push(i);
        }
    }
    done
}

/// `DELETE /api/v1/hf/orders/cancelAll`: every open HF order in every symbol.
pub fn hf_cancel_all(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    c.key()?;
    let mut w = c.ex.world();
    let open = open_orders(c, &w, Family::Hf, None);
    let done = cancel_each(c, &mut w, open);
    let symbols: BTreeSet<String> = done
        .iter()
        .map(|i| w.orders[*i].market.symbol.clone())
        .collect();
    Ok(json!({"succeedSymbols": symbols, "failedSymbols": []}))
}

/// `DELETE /api/v1/hf/orders?symbol=`: every open HF order of one symbol.
pub fn hf_cancel_symbol(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let symbol = c.market()?.market.symbol.clone();
    let mut w = c.ex.world();
    let open = open_orders(c, &w, Family::Hf, Some(&symbol));
    cancel_each(c, &mut w, open);
    Ok(json!("success"))
}

/// `DELETE /api/v1/orders` (`symbol` optional): every open classic order.
pub fn classic_cancel_all(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let symbol = c.market_opt()?.map(|m| m.market.symbol.clone());
    if c.get("tradeType").is_some_and(|t| t != "TRADE") {
        return Ok(json!({"cancelledOrderIds": []}));
    }
    let mut w = c.ex.world();
    let open = open_orders(c, &w, Family::Classic, symbol.as_deref());
    let done = cancel_each(c, &mut w, open);
    let ids: Vec<String> = done.into_iter().map(wire::order_id).collect();
    Ok(json!({"cancelledOrderIds": ids}))
}

/// `GET /api/v1/hf/orders/active?symbol=`: every open HF order of the symbol (no paging).
pub fn hf_active(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let symbol = c.market()?.market.symbol.clone();
    let w = c.ex.world();
    let list: Vec<Value> = open_orders(c, &w, Family::Hf, Some(&symbol))
        .into_iter()
        .map(|i| wire::order(&w, i, true))
        .collect();
    Ok(Value::Array(list))
}

/// `GET /api/v1/hf/orders/active/symbols`: the symbols with open HF orders.
pub fn hf_active_symbols(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let w = c.ex.world();
    let symbols: BTreeSet<String> = open_orders(c, &w, Family::Hf, None)
        .into_iter()
        .map(|i| w.orders[i].market.symbol.clone())
        .collect();
    Ok(json!({"symbols": symbols}))
}

/// `startAt`/`endAt` at most [`WINDOW_DAYS`] apart (the last 7 days when neither is given,
/// 7 days from `startAt` or up to `endAt` when one is).
pub fn window(c: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiErr> {
    let (start, end) = (c.time("startAt")?, c.time("endAt")?);
    clock::window(start, end, c.now, Duration::days(WINDOW_DAYS)).map_err(|e| match e {
        WindowError::Reversed => errors::params("endAt is before startAt"),
        WindowError::TooLong => errors::window_too_long(WINDOW_DAYS),
    })
}

/// Order filters of the lists: side and type.
fn order_filter(c: &Ctx<'_>) -> impl Fn(&Order) -> bool {
    let side = c.get("side").map(str::to_string);
    let kind = c.get("type").map(str::to_string);
    move |o: &Order| {
        side.as_deref().map_or(true, |s| wire::side(o.side) == s)
            && kind.as_deref().map_or(true, |k| {
                (k == "limit") == (o.kind == OrderKind::Limit) && (k == "limit" || k == "market")
            })
    }
}

/// Runs JSON texts through the venue's page memory (the repeat-page fault); the answer's
/// list, its items put aside as JSON text ([`http::raw_list_text`]).
fn remember(c: &mut Ctx<'_>, account: &str, kind: &str, page: PageText, limit: usize) -> Value {
    let text =
        c.ex.world()
            .page_text(account, kind, page, c.repeat_page, limit);
    http::raw_list_text(c.fx, text)
}

/// Appends the text of order `idx` in its HF or classic shape to a page, kept once the
/// order is closed ([`World::fragment_into`]).
fn push_order_text(w: &World, page: &mut PageText, idx: usize, hf: bool) {
    let shape = if hf {
        "kucoin-hf-order"
    } else {
        "kucoin-order"
    };
    w.fragment_into(page, shape, idx, None, |b| wire::push_order(b, w, idx, hf));
}

/// `GET /api/v1/hf/orders/done`: closed HF orders of one symbol, newest first, `limit` per
/// page from `lastId` on, within the window.
pub fn hf_done(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let account = c.key()?.account.clone();
    let symbol = c.market()?.market.symbol.clone();
    let limit = c.bounded("limit", 20, 1, 100)?;
    let (s, e) = window(c)?;
    let last = match c.int("lastId")? {
        None => None,
        Some(n) => Some(
            (n as u64)
                .checked_sub(wire::ORDER_LAST_ID_BASE)
                .map(|i| i as usize)
                .ok_or_else(|| errors::bad_param("lastId"))?,
        ),
    };
    let pick = order_filter(c);
    let items: (Option<usize>, PageText) = {
        let w = c.ex.world();
        let cutoff = match last {
            None => None,
            Some(i) if i < w.orders.len() => Some((w.orders[i].created_at, i)),
            Some(_) => return Err(errors::bad_param("lastId")),
        };
        let keep = |i: usize, o: &Order| {
            o.market.symbol == symbol
                && pick(o)
                && family_of(c, i) == Family::Hf
                && cutoff.map_or(true, |k| (o.created_at, i) < k)
        };
        // Newest first from the `lastId` order's time: the walk stops at the page's end.
        let end = cutoff.map_or(e, |k| e.min(k.0));
        let found = w.list_orders_at(
            &account,
            &[OrderState::Done, OrderState::Cancelled],
            Some((s, end)),
            true,
            &keep,
            0,
            limit,
        );
        let mut page = PageText::enveloped(found.len(), wire::ORDER_BYTES);
        for &i in &found {
            push_order_text(&w, &mut page, i, true);
        }
        (found.last().copied(), page)
    };
    let (newest_last, page) = items;
    let last_id = newest_last
        .map(|i| wire::ORDER_LAST_ID_BASE + i as u64)
        .or(last.map(|i| wire::ORDER_LAST_ID_BASE + i as u64))
        .unwrap_or(0);
    let list = remember(c, &account, "kucoin-hf-done", page, limit);
    Ok(json!({"lastId": last_id, "items": list}))
}

/// Fills of the caller's orders of `family` that `keep` accepts, created within `[s, e]`,
/// newest first: (fill id, order position, fill position); the first `take` of them with a
/// fill id below `below`. HF fills are walked in the account's fill index; classic ones are
/// found through the façade's classic orders, which are few (only those placed through the
/// classic endpoint).
fn fills_of(
    c: &Ctx<'_>,
    w: &World,
    family: Family,
    keep: &dyn Fn(&Order) -> bool,
    order_id: Option<&str>,
    (s, e): (DateTime<Utc>, DateTime<Utc>),
    (below, take): (Option<u64>, usize),
) -> Vec<(u64, usize, usize)> {
    let account = c.key.map(|k| k.account.clone()).unwrap_or_default();
    let keep = |idx: usize, o: &Order, f: &Fill| {
        keep(o)
            && below.map_or(true, |b| wire::fill_id(f) < b)
            && family_of(c, idx) == family
            && order_id.map_or(true, |id| wire::order_id(idx) == id)
    };
    let mut found: Vec<(u64, usize, usize)> = match family {
        Family::Classic => classic_orders(c, w, &account)
            .into_iter()
            .flat_map(|i| {
                let o = &w.orders[i];
                o.trades
                    .iter()
                    .enumerate()
                    .filter(move |(_, f)| f.created_at >= s && f.created_at <= e && keep(i, o, f))
                    .map(move |(j, f)| (wire::fill_id(f), i, j))
            })
            .collect(),
        Family::Hf => {
            // Fill ids are trade ids doubled (ids follow times): nothing newer than the
            // trade `below` names can be below it, so the walk starts at that trade's time.
            let end = match below {
                Some(b) if w.fill_ids_follow_time() => w.fill_time(b / 2).map_or(e, |t| e.min(t)),
                _ => e,
            };
            w.list_fills(&account, (s, end), true, &keep, take)
                .into_iter()
                .map(|(_, _, idx, j)| (wire::fill_id(&w.orders[idx].trades[j]), idx, j))
                .collect()
        }
    };
    found.sort_by_key(|x| std::cmp::Reverse(x.0));
    found.truncate(take);
    found
}

/// Appends the text of fill `j` of order `idx` in its HF or classic shape to a page, kept
/// once the order is closed ([`World::fragment_into`]).
fn push_fill_text(
    c: &Ctx<'_>,
    w: &World,
    page: &mut PageText,
    idx: usize,
    j: usize,
    family: Family,
) {
    let hf = family == Family::Hf;
    let shape = if hf { "kucoin-hf-fill" } else { "kucoin-fill" };
    let fee = c.ex.markets.fee;
    w.fragment_into(page, shape, idx, Some(j), |b| {
        wire::push_fill(b, w, idx, &w.orders[idx].trades[j], fee, hf)
    });
}

/// The positions of the caller's classic orders (any state, in no particular order).
fn classic_orders(c: &Ctx<'_>, w: &World, account: &str) -> Vec<usize> {
    c.shared
        .classic()
        .iter()
        .copied()
        .filter(|&i| w.orders.get(i).is_some_and(|o| o.account == account))
        .collect()
}

/// `GET /api/v1/hf/fills`: fills of one symbol's HF orders (or of one order), newest first,
/// `limit` per page from `lastId` on, within the window.
pub fn hf_fills(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let account = c.key()?.account.clone();
    let symbol = c.market()?.market.symbol.clone();
    let limit = c.bounded("limit", 20, 1, 100)?;
    let span = window(c)?;
    let last = c.int("lastId")?.map(|n| n as u64);
    let pick = order_filter(c);
    let keep = |o: &Order| o.market.symbol == symbol && pick(o);
    let (last_id, texts) = {
        let w = c.ex.world();
        let found = fills_of(
            c,
            &w,
            Family::Hf,
            &keep,
            c.get("orderId"),
            span,
            (last, limit),
        );
        let last_id = found.last().map(|x| x.0).or(last).unwrap_or(0);
        let mut page = PageText::enveloped(found.len(), wire::FILL_BYTES);
        for &(_, i, j) in &found {
            push_fill_text(c, &w, &mut page, i, j, Family::Hf);
        }
        (last_id, page)
    };
    let list = remember(c, &account, "kucoin-hf-fills", texts, limit);
    Ok(json!({"lastId": last_id, "items": list}))
}

/// `currentPage` (from 1) and `pageSize` (10–500, default 50).
fn page_args(c: &Ctx<'_>) -> Result<(usize, usize), ApiErr> {
    let page = c.bounded("currentPage", 1, 1, 1_000_000)?;
    let size = c.bounded("pageSize", 50, 10, 500)?;
    Ok((page, size))
}

/// `GET /api/v1/orders`: classic orders, `status` `active` (every open one), `done` (closed
/// within the window) or both when absent; `symbol`, `side`, `type` filter; page-numbered.
pub fn list(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let account = c.key()?.account.clone();
    let symbol = c.market_opt()?.map(|m| m.market.symbol.clone());
    let (page, size) = page_args(c)?;
    let (active, done) = match c.get("status") {
        None => (true, true),
        Some("active") => (true, false),
        Some("done") => (false, true),
        Some(_) => return Err(errors::bad_param("status")),
    };
    let span = window(c)?;
    let explicit = c.get("startAt").is_some() || c.get("endAt").is_some();
    if c.get("tradeType").is_some_and(|t| t != "TRADE") {
        return Ok(wire::paged(Vec::new(), page, size));
    }
    let pick = order_filter(c);
    let keep = |o: &Order| symbol.as_deref().map_or(true, |s| o.market.symbol == s) && pick(o);
    let in_span = |t: DateTime<Utc>| t >= span.0 && t <= span.1;
    let (total, texts) = {
        let w = c.ex.world();
        // Open ones whatever their age unless a window is given, closed ones in the window.
        let mut idx: Vec<usize> = classic_orders(c, &w, &account)
            .into_iter()
            .filter(|&i| {
                let o = &w.orders[i];
                let wanted = match o.state {
                    OrderState::Open => active && (!explicit || in_span(o.created_at)),
                    _ => done && in_span(o.created_at),
                };
                wanted && keep(o)
            })
            .collect();
        idx.sort_by_key(|i| std::cmp::Reverse((w.orders[*i].created_at, *i)));
        let chosen = page_of(&idx, page, size);
        let mut texts = PageText::enveloped(chosen.len(), wire::ORDER_BYTES);
        for &i in chosen {
            push_order_text(&w, &mut texts, i, false);
        }
        (idx.len(), texts)
    };
    let list = remember(c, &account, "kucoin-orders", texts, size);
    Ok(wire::page_object(total, page, size, list))
}

/// The items of page `page` (from 1) of `size`.
fn page_of<T>(all: &[T], page: usize, size: usize) -> &[T] {
    let from = (page - 1).saturating_mul(size).min(all.len());
    &all[from..(from.saturating_add(size)).min(all.len())]
}

/// `GET /api/v1/fills`: fills of classic orders within the window, newest first;
/// `symbol`, `orderId`, `side`, `type` filter; page-numbered.
pub fn fills(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let account = c.key()?.account.clone();
    let symbol = c.market_opt()?.map(|m| m.market.symbol.clone());
    let (page, size) = page_args(c)?;
    let span = window(c)?;
    let pick = order_filter(c);
    let keep = |o: &Order| symbol.as_deref().map_or(true, |s| o.market.symbol == s) && pick(o);
    let (total, texts) = {
        let w = c.ex.world();
        let found = fills_of(
            c,
            &w,
            Family::Classic,
            &keep,
            c.get("orderId"),
            span,
            (None, usize::MAX),
        );
        let chosen = page_of(&found, page, size);
        let mut texts = PageText::enveloped(chosen.len(), wire::FILL_BYTES);
        for &(_, i, j) in chosen {
            push_fill_text(c, &w, &mut texts, i, j, Family::Classic);
        }
        (found.len(), texts)
    };
    let list = remember(c, &account, "kucoin-fills", texts, size);
    Ok(wire::page_object(total, page, size, list))
}

/// `POST /api/v1/stop-order`: a stop order (`stopPrice` required, `stop` `loss` or `entry`,
/// `loss` by default) held until cancelled.
pub fn stop_create(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let t = terms(c, None)?;
    let stop_price = decimal(c, "stopPrice")?.ok_or_else(|| errors::required("stopPrice"))?;
    let stop = match c.get("stop") {
        None | Some("loss") => "loss",
        Some("entry") => "entry",
        Some(_) => return Err(errors::bad_param("stop")),
    };
    if let Some(oid) = &t.client_oid {
        let used = c.ex.world().identifier_used(&key.account, oid);
        if used
            || c.shared
                .stops()
                .iter()
                .any(|s| s.account == key.account && s.client_oid == *oid)
        {
            return Err(errors::duplicate_client_oid());
        }
    }
    let mut held = c.shared.stops();
    let s = Stop {
        seq: held.len(),
        account: key.account.clone(),
        market: t.conf.market.clone(),
        side: t.side,
        limit: t.kind == OrderKind::Limit,
        price: t.price,
        size: t.size,
        funds: t.funds,
        stop_price,
        stop,
        client_oid: t.client_oid.unwrap_or_default(),
        created_at: c.now,
        cancelled: false,
    };
    let id = s.id();
    held.push(s);
    Ok(json!({"orderId": id}))
}

/// The caller's live stop orders that `keep` accepts, newest first.
fn live_stops(c: &Ctx<'_>, keep: impl Fn(&Stop) -> bool) -> Vec<Stop> {
    let account = c.key.map(|k| k.account.clone()).unwrap_or_default();
    let mut v: Vec<Stop> = c
        .shared
        .stops()
        .iter()
        .filter(|s| s.account == account && !s.cancelled && keep(s))
        .cloned()
        .collect();
    v.reverse();
    v
}

/// `GET /api/v1/stop-order`: live stop orders; `symbol`, `side`, `type`, `orderIds`,
/// `startAt`/`endAt` filter; page-numbered.
pub fn stop_list(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let symbol = c.market_opt()?.map(|m| m.market.symbol.clone());
    let (page, size) = page_args(c)?;
    let (start, end) = (c.time("startAt")?, c.time("endAt")?);
    let ids: Option<Vec<String>> = c
        .get("orderIds")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let side = c.get("side").map(str::to_string);
    let kind = c.get("type").map(str::to_string);
    let fee = c.ex.markets.fee;
    let items: Vec<Value> = live_stops(c, |s| {
        symbol.as_deref().map_or(true, |x| s.market.symbol == x)
            && side.as_deref().map_or(true, |x| wire::side(s.side) == x)
            && kind.as_deref().map_or(true, |x| (x == "limit") == s.limit)
            && ids.as_ref().map_or(true, |v| v.contains(&s.id()))
            && start.map_or(true, |t| s.created_at >= t)
            && end.map_or(true, |t| s.created_at <= t)
    })
    .iter()
    .map(|s| s.json(fee))
    .collect();
    Ok(wire::paged(items, page, size))
}

/// `GET /api/v1/stop-order/{id}`.
pub fn stop_get(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let account = c.key()?.account.clone();
    let id = c.id.unwrap_or_default();
    let fee = c.ex.markets.fee;
    c.shared
        .stops()
        .iter()
        .find(|s| s.account == account && s.id() == id)
        .map(|s| s.json(fee))
        .ok_or_else(errors::order_not_found)
}

/// Cancels the caller's live stop orders `pick` selects; their ids.
fn cancel_stops(c: &Ctx<'_>, pick: impl Fn(&Stop) -> bool) -> Vec<String> {
    let account = c.key.map(|k| k.account.clone()).unwrap_or_default();
    let mut held = c.shared.stops();
    let mut ids = Vec::new();
    for s in held
        .iter_mut()
        .filter(|s| s.account == account && !s.cancelled && pick(s))
    {
        s.cancelled = true;
        ids.push(s.id());
    }
    ids
}

/// `DELETE /api/v1/stop-order/cancel`: the live stop orders of `symbol` (all when absent),
/// or only those in `orderIds` (comma list).
pub fn stop_cancel_many(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    c.key()?;
    let symbol = c.market_opt()?.map(|m| m.market.symbol.clone());
    if c.get("tradeType").is_some_and(|t| t != "TRADE") {
        return Ok(json!({"cancelledOrderIds": []}));
    }
    let ids: Option<Vec<String>> = c
        .get("orderIds")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let done = cancel_stops(c, |s| {
        symbol.as_deref().map_or(true, |x| s.market.symbol == x)
            && ids.as_ref().map_or(true, |v| v.contains(&s.id()))
    });
    Ok(json!({"cancelledOrderIds": done}))
}

/// `DELETE /api/v1/stop-order/{id}`.
pub fn stop_cancel(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    c.key()?;
    let id = c.id.unwrap_or_default().to_string();
    let done = cancel_stops(c, |s| s.id() == id);
    if done.is_empty() {
        return Err(errors::not_cancellable());
    }
    Ok(json!({"cancelledOrderIds": done}))
}
