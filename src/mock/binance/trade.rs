//! Binance's account and order endpoints over the venue: balances, one order, open orders,
//! all orders and fills of a symbol (24 hours at most per call, cursors by `orderId` and
//! `fromId`), new orders checked against the symbol's filters, cancels, and the cancel of
//! every open order of a symbol.
//!
//! Orders are refused in Binance's order of checks: mandatory parameters and their format,
//! the symbol, side and type, the parameters each type takes, the filters (`PRICE_FILTER`,
//! `LOT_SIZE`, `NOTIONAL`), the account's order count, then the venue (funds, a post-only
//! order that would take). A `MARKET` buy takes `quantity` (the venue walks the book for it)
//! or `quoteOrderQty`; a `MARKET` sell takes `quantity` only.
//!
//! Order lists: `POST /api/v3/orderList/oco` places a one-cancels-the-other pair, one leg
//! `LIMIT_MAKER` (resting in the book) and one stop leg (`STOP_LOSS_LIMIT` or `STOP_LOSS`),
//! above and below the price as the side requires; the list locks what its book leg locks.
//! The venue never triggers stops: the stop leg stays open, off the book, until the list
//! ends. A fill of the book leg (even partial) expires the stop leg; cancelling either leg
//! (`DELETE /api/v3/order`) cancels the list. `GET /api/v3/openOrderList`,
//! `DELETE /api/v3/orderList`, and `DELETE /api/v3/openOrders`, whose answer mixes plain
//! cancelled orders with order-list objects (`orderReports` naming each leg), as Binance's.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::limits;
use super::market;
use super::routes::{Ctx, Reply};
use super::wire::{self, RespType};
use crate::mock::venue::fragments::PageText;
use crate::mock::venue::market_data::book_side;
use crate::mock::venue::matching::{self, NewOrder};
use crate::mock::venue::state::{Fill, Order, OrderKind, OrderList, OrderState, Side, Tif, World};

const ALL_STATES: [OrderState; 3] = [OrderState::Open, OrderState::Done, OrderState::Cancelled];

/// `GET /api/v3/account`.
pub fn account(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let omit_zero = match c.get("omitZeroBalances") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(errors::illegal("omitZeroBalances", "^(true|false)$")),
    };
    let w = c.ex.world();
    let empty = Default::default();
    let acct = w.accounts.get(&key.account).unwrap_or(&empty);
    let mut assets: std::collections::BTreeSet<&str> =
        c.ex.markets
            .list
            .iter()
            .flat_map(|m| [m.market.base.as_str(), m.market.quote.as_str()])
            .collect();
    assets.extend(acct.balances.keys().map(String::as_str));
    let balances: Vec<Value> = assets
        .into_iter()
        .filter_map(|a| {
            let (free, locked) = acct
                .balances
                .get(a)
                .map_or((Decimal::ZERO, Decimal::ZERO), |b| (b.balance, b.locked));
            (!(omit_zero && free.is_zero() && locked.is_zero()))
                .then(|| json!({"asset": a, "free": wire::d8(free), "locked": wire::d8(locked)}))
        })
        .collect();
    let fee = c.ex.markets.fee;
    let bps = (fee * Decimal::from(10_000)).round();
    Ok(
        json!({"makerCommission": bps, "takerCommission": bps, "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": wire::d8(fee), "taker": wire::d8(fee),
            "buyer": wire::d8(Decimal::ZERO), "seller": wire::d8(Decimal::ZERO)},
        "canTrade": true, "canWithdraw": true, "canDeposit": true, "brokered": false,
        "requireSelfTradePrevention": false, "preventSor": false,
        "updateTime": wire::ms(c.now), "accountType": "SPOT", "balances": balances,
        "permissions": ["SPOT"], "uid": uid(&key.account)}),
    )
}

/// A stable user id for an account.
pub fn uid(account: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(account.as_bytes());
    100_000_000 + u64::from_be_bytes(d[..8].try_into().unwrap_or_default()) % 900_000_000
}

/// Finds the order named by `orderId` or `origClientOrderId` among the account's orders in
/// the symbol; `missing` when there is none (both given: the id must match the client id).
fn find(
    c: &Ctx<'_>,
    w: &World,
    account: &str,
    symbol: &str,
    missing: fn() -> ApiErr,
) -> Result<usize, ApiErr> {
    let by_id = c.int("orderId")?;
    let by_client = c.get("origClientOrderId");
    let idx = match (by_id, by_client) {
        (None, None) => return Err(errors::one_of("origClientOrderId", "orderId")),
        (Some(id), _) => wire::order_idx(id as u64, w.orders.len()).ok_or_else(missing)?,
        (None, Some(cid)) => wire::find_by_client_id(w, account, cid).ok_or_else(missing)?,
    };
    let o = &w.orders[idx];
    if o.account != account || o.market.symbol != symbol {
        return Err(missing());
    }
    if by_client.is_some_and(|cid| wire::client_order_id(w, o) != cid) {
        return Err(missing());
    }
    Ok(idx)
}

/// `GET /api/v3/order`.
pub fn get_order(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let m = c.market()?;
    let w = c.ex.world();
    let idx = find(c, &w, &key.account, &m.market.symbol, errors::no_such_order)?;
    if wire::archived(&w.orders[idx], c.now) {
        return Err(errors::archived());
    }
    Ok(wire::order(&w, idx))
}

/// An account's open orders (of one symbol), oldest first.
fn open_in(w: &World, account: &str, symbol: Option<&str>) -> Vec<usize> {
    let keep = |o: &Order| symbol.map_or(true, |s| o.market.symbol == s);
    w.list_orders(
        account,
        &[OrderState::Open],
        None,
        false,
        &keep,
        0,
        usize::MAX,
    )
}

/// `GET /api/v3/openOrders`: of one symbol, or of all (weight 80), oldest first.
pub fn open_orders(c: &Ctx<'_>) -> Result<Reply, ApiErr> {
    let key = c.key()?;
    let symbol = match c.get("symbol") {
        Some(_) => Some(c.market()?.market.symbol.clone()),
        None => None,
    };
    let w = c.ex.world();
    let items: Vec<String> = open_in(&w, &key.account, symbol.as_deref())
        .into_iter()
        .map(|i| wire::order_json(&w, i))
        .collect();
    Ok(Reply::Raw(wire::array(&items)))
}

/// An optional time bound.
type Bound = Option<DateTime<Utc>>;

/// `startTime`/`endTime`: at most `hours` apart, in order.
fn window(c: &Ctx<'_>, hours: i64) -> Result<(Bound, Bound), ApiErr> {
    let start = c.time("startTime")?;
    let end = c.time("endTime")?;
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(errors::bad_combination());
        }
        if e - s > Duration::hours(hours) {
            return Err(errors::window_too_long(hours as u32));
        }
    }
    Ok((start, end))
}

fn far_past() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC
}

fn far_future() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
}

/// `GET /api/v3/allOrders`: a symbol's orders in any state, by `orderId` ascending: from
/// `orderId` on, or within a window of at most 24 hours (from `startTime` on when only it is
/// given), else the most recent. Cancelled orders with nothing filled vanish after 90 days.
pub fn all_orders(c: &mut Ctx<'_>) -> Result<Reply, ApiErr> {
    let key = c.key()?.clone();
    let symbol = c.market()?.market.symbol.clone();
    let limit = c.limit(500, 1000)?;
    let from_id = c.int("orderId")?;
    let (start, end) = window(c, 24)?;
    let now = c.now;
    let mut w = c.ex.world();
    let keep = |o: &Order| o.market.symbol == symbol && !wire::archived(o, now);
    let acct = key.account.as_str();
    let mut idx: Vec<usize> = match (from_id, start, end) {
        (Some(id), _, _) => {
            let from = (id - wire::ORDER_ID_BASE as i64).max(0) as usize;
            match w.orders.get(from) {
                None => Vec::new(),
                Some(o) => {
                    let lo = start.map_or(o.created_at, |s| s.max(o.created_at));
                    let hi = end.unwrap_or_else(far_future);
                    // Orders created in the same millisecond as the cursor's but before it
                    // are dropped after the walk: take a few more.
                    let mut v = w.list_orders(
                        acct,
                        &ALL_STATES,
                        Some((lo, hi)),
                        false,
                        &keep,
                        0,
                        limit + 64,
                    );
                    v.retain(|i| *i >= from);
                    v.truncate(limit);
                    v
                }
            }
        }
        (None, Some(s), e) => w.list_orders(
            acct,
            &ALL_STATES,
            Some((s, e.unwrap_or_else(far_future))),
            false,
            &keep,
            0,
            limit,
        ),
        (None, None, e) => {
            let mut v = w.list_orders(
                acct,
                &ALL_STATES,
                Some((far_past(), e.unwrap_or_else(far_future))),
                true,
                &keep,
                0,
                limit,
            );
            v.reverse();
            v
        }
    };
    idx.sort_unstable();
    let mut page = PageText::with_capacity(idx.len(), wire::ORDER_BYTES);
    for &i in &idx {
        wire::push_list_order(&w, &mut page, i);
    }
    let text = w.page_text(acct, "binance-all-orders", page, c.repeat_page, limit);
    Ok(Reply::Raw(text))
}

/// `GET /api/v3/myTrades`: a symbol's fills by trade id ascending: of one order, from
/// `fromId` on, within a window of at most 24 hours (from `startTime` on when only it is
/// given), else the most recent. Other combinations are refused (`-1128`).
pub fn my_trades(c: &mut Ctx<'_>) -> Result<Reply, ApiErr> {
    let key = c.key()?.clone();
    let symbol = c.market()?.market.symbol.clone();
    let limit = c.limit(500, 1000)?;
    let order_id = c.int("orderId")?;
    let from_id = c.int("fromId")?.map(|v| v as u64);
    let (start, end) = window(c, 24)?;
    let timed = start.is_some() || end.is_some();
    if (order_id.is_some() || from_id.is_some()) && timed {
        return Err(errors::bad_combination());
    }
    let fee = c.ex.markets.fee;
    let mut w = c.ex.world();
    let acct = key.account.as_str();
    // (trade id, fill time, order position, fill position)
    let mut fills: Vec<(u64, DateTime<Utc>, usize, usize)> = Vec::new();
    let mut collect = |w: &World, i: usize| {
        for (j, f) in w.orders[i].trades.iter().enumerate() {
            fills.push((f.id, f.created_at, i, j));
        }
    };
    match order_id {
        Some(id) => {
            if let Some(i) = wire::order_idx(id as u64, w.orders.len()) {
                let o = &w.orders[i];
                if o.account == acct && o.market.symbol == symbol {
                    collect(&w, i);
                }
            }
        }
        None => {
            // Walk the account's fill index from the wanted end: by time from `startTime`,
            // from the time of trade `fromId` (ids follow times), or back from `endTime`.
            let keep = |_: usize, o: &Order, f: &Fill| {
                o.market.symbol == symbol && from_id.map_or(true, |id| f.id >= id)
            };
            let until = end.unwrap_or_else(far_future);
            let oldest_first = from_id.is_some() || start.is_some();
            let from = match (from_id, start) {
                (_, Some(s)) => s,
                (Some(id), None) if id > w.last_fill_id() => far_future(),
                (Some(id), None) if w.fill_ids_follow_time() => {
                    w.fill_time(id).unwrap_or_else(far_past)
                }
                _ => far_past(),
            };
            for (_, id, i, j) in w.list_fills(acct, (from, until), !oldest_first, &keep, limit) {
                fills.push((id, w.orders[i].trades[j].created_at, i, j));
            }
        }
    }
    fills.sort_unstable();
    let in_window =
        |t: &DateTime<Utc>| start.map_or(true, |s| *t >= s) && end.map_or(true, |e| *t <= e);
    let chosen: Vec<_> = if order_id.is_some() || from_id.is_some() || start.is_some() {
        fills
            .into_iter()
            .filter(|f| from_id.map_or(true, |id| f.0 >= id) && in_window(&f.1))
            .take(limit)
            .collect()
    } else {
        // The most recent (up to `endTime`).
        let v: Vec<_> = fills.into_iter().filter(|f| in_window(&f.1)).collect();
        v[v.len().saturating_sub(limit)..].to_vec()
    };
    let mut page = PageText::with_capacity(chosen.len(), wire::TRADE_BYTES);
    for &(_, _, i, j) in &chosen {
        w.fragment_into(&mut page, "binance-trade", i, Some(j), |b| {
            wire::push_trade(b, &w.orders[i].trades[j], i, fee)
        });
    }
    let text = w.page_text(acct, "binance-my-trades", page, c.repeat_page, limit);
    Ok(Reply::Raw(text))
}

/// A decimal parameter in Binance's format (`-1100` otherwise).
fn decimal(c: &Ctx<'_>, k: &str) -> Result<Option<Decimal>, ApiErr> {
    let Some(s) = c.get(k) else {
        return Ok(None);
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |x: &str, min: usize| {
        x.len() >= min && x.len() <= 20 && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(int, 1) || (s.contains('.') && !digits(frac, 1)) {
        return Err(errors::illegal(k, "^([0-9]{1,20})(\\.[0-9]{1,20})?$"));
    }
    s.parse()
        .map(Some)
        .map_err(|_| errors::illegal(k, "^([0-9]{1,20})(\\.[0-9]{1,20})?$"))
}

/// A client order id in Binance's alphabet.
fn client_id(c: &Ctx<'_>, k: &str) -> Result<Option<String>, ApiErr> {
    match c.get(k) {
        None => Ok(None),
        Some(s)
            if s.len() <= 36
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b)) =>
        {
            Ok(Some(s.to_string()))
        }
        Some(_) => Err(errors::illegal(k, "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")),
    }
}

const ORDER_BUDGETS: [(crate::mock::venue::ratelimit::Budget, &str); 2] = [
    (limits::ORDERS_10S, "x-mbx-order-count-10s"),
    (limits::ORDERS_1D, "x-mbx-order-count-1d"),
];

/// Refuses a new order when the account's order budgets are spent (`-1015`, 429).
fn check_order_budget(c: &mut Ctx<'_>, account: &str) -> Result<(), ApiErr> {
    if !c.ex.opts.rate_limits {
        return Ok(());
    }
    let now = tokio::time::Instant::now();
    let gate = c.ex.gate();
    let storm = gate.limiter.storm_until.is_some_and(|u| now < u);
    for (budget, header) in ORDER_BUDGETS {
        let (used, resets) = gate.limiter.usage(budget, account, now);
        if used >= budget.limit || storm {
            c.headers.push((header, used.to_string()));
            let retry = resets.as_secs_f64().ceil().max(1.0) as u64;
            c.headers.push(("retry-after", retry.to_string()));
            return Err(errors::too_many_orders(
                budget.limit,
                limits::interval(budget).2,
            ));
        }
    }
    Ok(())
}

/// Counts a placed order against the account's order budgets; the counts go in the headers
/// (refused orders are not counted).
fn count_order(c: &mut Ctx<'_>, account: &str) {
    if !c.ex.opts.rate_limits {
        return;
    }
    let now = tokio::time::Instant::now();
    let mut gate = c.ex.gate();
    for (budget, header) in ORDER_BUDGETS {
        let _ = gate.limiter.hit(budget, account, 1, now);
        let (used, _) = gate.limiter.usage(budget, account, now);
        c.headers.push((header, used.to_string()));
    }
}

/// `side`: `BUY` or `SELL` (`-1102` when missing, `-1117` otherwise).
fn side_param(c: &Ctx<'_>) -> Result<Side, ApiErr> {
    match c.get("side") {
        None => Err(errors::mandatory("side")),
        Some("BUY") => Ok(Side::Bid),
        Some("SELL") => Ok(Side::Ask),
        Some(_) => Err(errors::bad_side()),
    }
}

/// `POST /api/v3/order` (and `/order/test`, which checks everything and places nothing).
pub fn new_order(c: &mut Ctx<'_>, test: bool) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let conf = c.market()?.clone();
    let side = side_param(c)?;
    let typ = c.get("type").ok_or_else(|| errors::mandatory("type"))?;
    let qty = decimal(c, "quantity")?;
    let price = decimal(c, "price")?;
    let quote = decimal(c, "quoteOrderQty")?;
    let tif = c.get("timeInForce");
    let identifier = client_id(c, "newClientOrderId")?;
    let resp = match c.get("newOrderRespType") {
        None | Some("FULL") => RespType::Full,
        Some("RESULT") => RespType::Result,
        Some("ACK") => RespType::Ack,
        Some(_) => return Err(errors::bad_value("newOrderRespType")),
    };
    let f = market::filters(c.ex, &conf);
    let (kind, tif) = match typ {
        "LIMIT" | "LIMIT_MAKER" => {
            if quote.is_some() {
                return Err(errors::not_required("quoteOrderQty"));
            }
            let tif = match (typ, tif) {
                ("LIMIT_MAKER", None) => Some(Tif::PostOnly),
                ("LIMIT_MAKER", Some(_)) => return Err(errors::not_required("timeInForce")),
                (_, None) => return Err(errors::mandatory("timeInForce")),
                (_, Some("GTC")) => None,
                (_, Some("IOC")) => Some(Tif::Ioc),
                (_, Some("FOK")) => Some(Tif::Fok),
                (_, Some(_)) => return Err(errors::bad_tif()),
            };
            let p = price.ok_or_else(|| errors::mandatory("price"))?;
            let q = qty.ok_or_else(|| errors::mandatory("quantity"))?;
            if !f.price_ok(p) {
                return Err(errors::filter("PRICE_FILTER"));
            }
            if !f.qty_ok(q) {
                return Err(errors::filter("LOT_SIZE"));
            }
            if p * q < f.min_notional || p * q > f.max_notional {
                return Err(errors::filter("NOTIONAL"));
            }
            (OrderKind::Limit, tif)
        }
        "MARKET" => {
            if tif.is_some() {
                return Err(errors::not_required("timeInForce"));
            }
            if price.is_some() {
                return Err(errors::not_required("price"));
            }
            match (qty, quote, side) {
                (None, None, _) => return Err(errors::one_of("quantity", "quoteOrderQty")),
                (Some(_), Some(_), _) => return Err(errors::not_required("quoteOrderQty")),
                (Some(q), None, _) => {
                    if !f.qty_ok(q) {
                        return Err(errors::filter("LOT_SIZE"));
                    }
                    let kind = match side {
                        Side::Bid => OrderKind::MarketBuyBase,
                        Side::Ask => OrderKind::MarketSellBase,
                    };
                    (kind, None)
                }
                (None, Some(q), Side::Bid) => {
                    if q.scale() > 8 {
                        return Err(errors::illegal(
                            "quoteOrderQty",
                            "^([0-9]{1,20})(\\.[0-9]{1,8})?$",
                        ));
                    }
                    (OrderKind::MarketBuyQuote, None)
                }
                (None, Some(_), Side::Ask) => {
                    return Err(errors::unsupported("MARKET SELL by quoteOrderQty"))
                }
            }
        }
        _ => return Err(errors::bad_order_type()),
    };
    let req = NewOrder {
        market: conf.market.clone(),
        side,
        kind,
        price: (kind == OrderKind::Limit).then_some(price).flatten(),
        quote_amount: (kind == OrderKind::MarketBuyQuote)
            .then_some(quote)
            .flatten(),
        volume: (kind != OrderKind::MarketBuyQuote).then_some(qty).flatten(),
        identifier,
        tif,
    };
    if !test {
        check_order_budget(c, &key.account)?;
    }
    let now = c.now;
    let mut w = c.ex.world();
    if tif == Some(Tif::PostOnly) {
        let opp = side.opposite();
        let best = book_side(&c.ex.markets, &w, &conf.market.symbol, opp, now, 1);
        let limit = req.price.unwrap_or_default();
        let takes = best.first().is_some_and(|(p, _)| match side {
            Side::Bid => *p <= limit,
            Side::Ask => *p >= limit,
        });
        if takes {
            return Err(errors::rejected("Order would immediately match and take."));
        }
    }
    if test {
        matching::prepare(&mut w, &c.ex.markets, &key.account, req, now)?;
        return Ok(json!({}));
    }
    let idx = matching::place(&mut w, &c.ex.markets, &key.account, req, now)?;
    c.fx.created.push(w.orders[idx].uuid);
    let v = wire::new_order(&w, idx, c.ex.markets.fee, resp);
    drop(w);
    count_order(c, &key.account);
    Ok(v)
}

/// The id of a cancel: the one sent, else a new random one.
fn cancel_id(c: &Ctx<'_>) -> Result<String, ApiErr> {
    Ok(client_id(c, "newClientOrderId")?
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..22].to_string()))
}

/// `DELETE /api/v3/order`.
pub fn cancel_order(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let symbol = c.market()?.market.symbol.clone();
    let id = cancel_id(c)?;
    let restriction = c.get("cancelRestrictions").map(str::to_string);
    let mut w = c.ex.world();
    let idx = find(c, &w, &key.account, &symbol, errors::unknown_order)?;
    let o = &w.orders[idx];
    if o.state != OrderState::Open {
        return Err(errors::unknown_order());
    }
    let filled = o.executed_volume > Decimal::ZERO;
    match restriction.as_deref() {
        None => {}
        Some("ONLY_NEW") if !filled => {}
        Some("ONLY_PARTIALLY_FILLED") if filled => {}
        Some("ONLY_NEW" | "ONLY_PARTIALLY_FILLED") => {
            return Err(errors::err(
                400,
                -2011,
                "Order was not canceled due to cancel restrictions.",
            ))
        }
        Some(_) => return Err(errors::bad_value("cancelRestrictions")),
    }
    matching::cancel(&mut w, idx)?;
    c.fx.cancelled.push(w.orders[idx].uuid);
    // Cancelling a leg cancels its list.
    let siblings: Vec<usize> = w
        .list_of(idx)
        .map(|(_, l)| l.legs.iter().copied().filter(|&i| i != idx).collect())
        .unwrap_or_default();
    for s in siblings {
        if matching::cancel(&mut w, s).is_ok() {
            c.fx.cancelled.push(w.orders[s].uuid);
        }
    }
    Ok(wire::cancelled(&w, idx, &id, c.now))
}

/// `DELETE /api/v3/openOrders`: every open order of the symbol (`-2011` when there is none).
pub fn cancel_open_orders(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let symbol = c.market()?.market.symbol.clone();
    let mut w = c.ex.world();
    let open = open_in(&w, &key.account, Some(&symbol));
    if open.is_empty() {
        return Err(errors::unknown_order());
    }
    let mut out = Vec::new();
    let mut lists_done = std::collections::BTreeSet::new();
    for idx in open {
        if let Some((pos, _)) = w.list_of(idx) {
            // The list's legs are cancelled together and answered as one list object.
            if lists_done.insert(pos) {
                out.push(cancel_list(c, &mut w, pos));
            }
            continue;
        }
        if matching::cancel(&mut w, idx).is_ok() {
            c.fx.cancelled.push(w.orders[idx].uuid);
            out.push(wire::cancelled(&w, idx, &new_cancel_id(), c.now));
        }
    }
    Ok(Value::Array(out))
}

/// A random 22-character id for a cancel sent without one.
fn new_cancel_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..22].to_string()
}

/// Cancels every open leg of list `pos`; its list object with a report per leg.
fn cancel_list(c: &mut Ctx<'_>, w: &mut World, pos: usize) -> Value {
    let legs = w.order_lists[pos].legs.clone();
    let mut reports = Vec::new();
    for idx in legs {
        if matching::cancel(w, idx).is_ok() {
            c.fx.cancelled.push(w.orders[idx].uuid);
        }
        reports.push(wire::cancelled(w, idx, &new_cancel_id(), c.now));
    }
    wire::order_list(w, pos, c.now, Some(reports))
}

/// The order list named by `orderListId` or `listClientOrderId` among the account's lists in
/// the symbol (`-2011` when there is none).
fn find_list(c: &Ctx<'_>, w: &World, account: &str, symbol: &str) -> Result<usize, ApiErr> {
    let pos = match (c.int("orderListId")?, c.get("listClientOrderId")) {
        (None, None) => return Err(errors::one_of("orderListId", "listClientOrderId")),
        (Some(id), _) => wire::list_pos(id, w.order_lists.len()),
        (None, Some(cid)) => w
            .order_lists
            .iter()
            .rposition(|l| l.account == account && l.identifier == cid),
    }
    .ok_or_else(errors::unknown_order)?;
    let l = &w.order_lists[pos];
    if l.account != account || l.market.symbol != symbol {
        return Err(errors::unknown_order());
    }
    Ok(pos)
}

/// `GET /api/v3/openOrderList`: the account's order lists with a leg still open, oldest first.
pub fn open_order_lists(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let w = c.ex.world();
    let lists: Vec<Value> = (0..w.order_lists.len())
        .filter(|&p| w.order_lists[p].account == key.account && w.order_lists[p].is_open(&w))
        .map(|p| wire::order_list(&w, p, w.order_lists[p].created_at, None))
        .collect();
    Ok(Value::Array(lists))
}

/// `DELETE /api/v3/orderList`: cancels an open list (`-2011` when it is over or unknown).
pub fn cancel_order_list(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let symbol = c.market()?.market.symbol.clone();
    let ex = c.ex;
    let mut w = ex.world();
    let pos = find_list(c, &w, &key.account, &symbol)?;
    if !w.order_lists[pos].is_open(&w) {
        return Err(errors::unknown_order());
    }
    Ok(cancel_list(c, &mut w, pos))
}

/// One leg of a new OCO as sent: its type, limit price, stop price, time in force, client id.
struct LegSpec {
    typ: String,
    price: Option<Decimal>,
    stop: Option<Decimal>,
    tif: Option<String>,
    client_id: Option<String>,
}

fn leg_spec(c: &Ctx<'_>, at: &str) -> Result<LegSpec, ApiErr> {
    let k = |s: &str| format!("{at}{s}");
    Ok(LegSpec {
        typ: c
            .get(&k("Type"))
            .ok_or_else(|| errors::mandatory(&k("Type")))?
            .to_string(),
        price: decimal(c, &k("Price"))?,
        stop: decimal(c, &k("StopPrice"))?,
        tif: c.get(&k("TimeInForce")).map(str::to_string),
        client_id: client_id(c, &k("ClientOrderId"))?,
    })
}

/// `POST /api/v3/orderList/oco`: a `LIMIT_MAKER` leg and a stop leg on one side, the limit
/// above the price and the stop below for a sell (the reverse for a buy). Counts as two
/// orders.
pub fn new_oco(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let conf = c.market()?.clone();
    let side = side_param(c)?;
    let qty = decimal(c, "quantity")?.ok_or_else(|| errors::mandatory("quantity"))?;
    let above = leg_spec(c, "above")?;
    let below = leg_spec(c, "below")?;
    let list_client_id = client_id(c, "listClientOrderId")?;
    // The book leg sits where the side wants its fill (above for a sell), the stop opposite.
    let (book, stop, book_first) = match side {
        Side::Ask => (&above, &below, true),
        Side::Bid => (&below, &above, false),
    };
    if book.typ != "LIMIT_MAKER" || !matches!(stop.typ.as_str(), "STOP_LOSS_LIMIT" | "STOP_LOSS") {
        return Err(errors::unsupported(&format!(
            "an OCO {} with above {} and below {} (the mock takes LIMIT_MAKER {} a STOP_LOSS or STOP_LOSS_LIMIT)",
            wire::side(side),
            above.typ,
            below.typ,
            if side == Side::Ask { "above" } else { "below" }
        )));
    }
    let f = market::filters(c.ex, &conf);
    let book_price = book.price.ok_or_else(|| errors::mandatory("price"))?;
    if book.stop.is_some() {
        return Err(errors::not_required("stopPrice"));
    }
    let stop_price = stop.stop.ok_or_else(|| errors::mandatory("stopPrice"))?;
    let stop_limit = match stop.typ.as_str() {
        "STOP_LOSS_LIMIT" => {
            match stop.tif.as_deref() {
                None => return Err(errors::mandatory("timeInForce")),
                Some("GTC" | "IOC" | "FOK") => {}
                Some(_) => return Err(errors::bad_tif()),
            }
            Some(stop.price.ok_or_else(|| errors::mandatory("price"))?)
        }
        _ => {
            if stop.price.is_some() {
                return Err(errors::not_required("price"));
            }
            None
        }
    };
    for p in [Some(book_price), Some(stop_price), stop_limit]
        .into_iter()
        .flatten()
    {
        if !f.price_ok(p) {
            return Err(errors::filter("PRICE_FILTER"));
        }
    }
    if !f.qty_ok(qty) {
        return Err(errors::filter("LOT_SIZE"));
    }
    let last = c.ex.markets.ref_price(&conf.market.symbol, c.now);
    let ordered = match side {
        Side::Ask => book_price > last && last > stop_price,
        Side::Bid => book_price < last && last < stop_price,
    };
    if !ordered {
        return Err(errors::rejected(
            "The relationship of the prices for the orders is not correct.",
        ));
    }
    let leg_req =
        |price: Decimal, kind: OrderKind, tif: Option<Tif>, id: &Option<String>| NewOrder {
            market: conf.market.clone(),
            side,
            kind,
            price: (kind == OrderKind::Limit).then_some(price),
            quote_amount: None,
            volume: Some(qty),
            identifier: id.clone(),
            tif,
        };
    let stop_kind = match (stop_limit, side) {
        (Some(_), _) => OrderKind::Limit,
        (None, Side::Ask) => OrderKind::MarketSellBase,
        (None, Side::Bid) => OrderKind::MarketBuyBase,
    };
    let stop_req = leg_req(
        stop_limit.unwrap_or(stop_price),
        stop_kind,
        None,
        &stop.client_id,
    );
    let book_req = leg_req(
        book_price,
        OrderKind::Limit,
        Some(Tif::PostOnly),
        &book.client_id,
    );
    check_order_budget(c, &key.account)?;
    let now = c.now;
    let ex = c.ex;
    let mut w = ex.world();
    let best = book_side(
        &ex.markets,
        &w,
        &conf.market.symbol,
        side.opposite(),
        now,
        1,
    );
    let takes = best.first().is_some_and(|(p, _)| match side {
        Side::Bid => *p <= book_price,
        Side::Ask => *p >= book_price,
    });
    if takes {
        return Err(errors::rejected("Order would immediately match and take."));
    }
    // The stop leg is checked while the funds are still free, then held off the book
    // locking nothing: the list locks what its book leg locks.
    let mut stop_order = matching::prepare(&mut w, &ex.markets, &key.account, stop_req, now)?;
    stop_order.locked = Decimal::ZERO;
    stop_order.reserved_fee = Decimal::ZERO;
    stop_order.remaining_fee = Decimal::ZERO;
    let book_idx = matching::place(&mut w, &ex.markets, &key.account, book_req, now)?;
    let stop_idx = w.push_order(stop_order);
    let (legs, stops) = if book_first {
        (vec![book_idx, stop_idx], vec![None, Some(stop_price)])
    } else {
        (vec![stop_idx, book_idx], vec![Some(stop_price), None])
    };
    let pos = w.push_list(OrderList {
        account: key.account.clone(),
        market: conf.market.clone(),
        legs: legs.clone(),
        stops,
        identifier: list_client_id.unwrap_or_else(new_cancel_id),
        created_at: now,
    });
    let fee = ex.markets.fee;
    let reports: Vec<Value> = legs
        .iter()
        .map(|&i| {
            c.fx.created.push(w.orders[i].uuid);
            wire::new_order(&w, i, fee, RespType::Result)
        })
        .collect();
    let v = wire::order_list(&w, pos, now, Some(reports));
    drop(w);
    count_order(c, &key.account);
    count_order(c, &key.account);
    Ok(v)
}
