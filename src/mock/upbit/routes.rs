//! Upbit's routes and handlers: one fallback handler that normalizes the request the way real
//! clients send it (double slashes, GET parameters in a form body, JSON bodies on DELETE),
//! then authenticates, rate-limits and dispatches by (method, path).
//!
//! A single dispatcher instead of axum's per-route extractors keeps the quirks in one place,
//! answers unknown paths with Upbit's error envelope, and puts `Remaining-Req` on every
//! response, errors included. Quotation (public) endpoints are in [`super::quotation`].

use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::{self, Params, RequestAuth};
use super::errors::{err, ApiErr, MIN_TOTAL_KRW};
use super::limits::{self, Group};
use super::{quotation, wire, Upbit};
use crate::mock::http::{self, Effects, Out};
use crate::mock::venue::fragments::PageText;
use crate::mock::venue::keys::KeyRec;
use crate::mock::venue::matching::{self, NewOrder};
use crate::mock::venue::ratelimit::Verdict;
use crate::mock::venue::state::{Order, OrderKind, OrderState, Side, Tif, World};
use crate::mock::venue::transfers::{self, TransferError, WithdrawalRequest};
use crate::mock::venue::Venue;
use crate::mock::Facade;

/// The façade's router (the drill API is mounted next to it by [`crate::mock::router`]).
pub fn router(venue: Arc<Venue>) -> Router {
    Router::new().fallback(handle).with_state(venue)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ep {
    Accounts,
    ApiKeys,
    Chance,
    Order,
    OrdersOpen,
    OrdersClosed,
    OrdersUuids,
    PostOrders,
    PostOrdersTest,
    DeleteOrder,
    DeleteOrdersOpen,
    DeleteOrdersUuids,
    Withdraws,
    Withdraw,
    CoinAddresses,
    PostWithdrawCoin,
    DeleteWithdrawCoin,
    Deposits,
    Deposit,
    MarketAll,
    Ticker,
    Orderbook,
    Trades,
    Candles(u32),
}

enum Route {
    Public(Ep, Group),
    Private(Ep, Group, Option<&'static str>),
}

fn route(method: &str, path: &str) -> Option<Route> {
    use limits::*;
    use Ep::*;
    let p = |e, g, s| Some(Route::Private(e, g, s));
    match (method, path) {
        ("GET", "/v1/accounts") => p(Accounts, DEFAULT, Some("view_account")),
        ("GET", "/v1/api_keys") => p(ApiKeys, DEFAULT, None),
        ("GET", "/v1/orders/chance") => p(Chance, DEFAULT, Some("view_orders")),
        ("GET", "/v1/order") => p(Order, DEFAULT, Some("view_orders")),
        ("GET", "/v1/orders/open") => p(OrdersOpen, DEFAULT, Some("view_orders")),
        ("GET", "/v1/orders/closed") => p(OrdersClosed, DEFAULT, Some("view_orders")),
        ("GET", "/v1/orders/uuids") => p(OrdersUuids, DEFAULT, Some("view_orders")),
        ("POST", "/v1/orders") => p(PostOrders, ORDER, Some("make_orders")),
        ("POST", "/v1/orders/test") => p(PostOrdersTest, ORDER_TEST, Some("make_orders")),
        ("DELETE", "/v1/order") => p(DeleteOrder, DEFAULT, Some("make_orders")),
        ("DELETE", "/v1/orders/open") => p(DeleteOrdersOpen, ORDER_CANCEL_ALL, Some("make_orders")),
        ("DELETE", "/v1/orders/uuids") => p(DeleteOrdersUuids, DEFAULT, Some("make_orders")),
        ("GET", "/v1/withdraws") => p(Withdraws, DEFAULT, Some("view_withdrawals")),
        ("GET", "/v1/withdraw") => p(Withdraw, DEFAULT, Some("view_withdrawals")),
        ("GET", "/v1/withdraws/coin_addresses") => {
            p(CoinAddresses, DEFAULT, Some("view_withdrawals"))
        }
        ("POST", "/v1/withdraws/coin") => p(PostWithdrawCoin, DEFAULT, Some("make_withdrawals")),
        ("DELETE", "/v1/withdraws/coin") => {
            p(DeleteWithdrawCoin, DEFAULT, Some("make_withdrawals"))
        }
        ("GET", "/v1/deposits") => p(Deposits, DEFAULT, Some("view_deposits")),
        ("GET", "/v1/deposit") => p(Deposit, DEFAULT, Some("view_deposits")),
        ("GET", "/v1/market/all") => Some(Route::Public(MarketAll, MARKET)),
        ("GET", "/v1/ticker") => Some(Route::Public(Ticker, TICKER)),
        ("GET", "/v1/orderbook") => Some(Route::Public(Orderbook, ORDERBOOK)),
        ("GET", "/v1/trades/ticks") => Some(Route::Public(Trades, TRADE)),
        ("GET", p) => {
            let unit = p
                .strip_prefix("/v1/candles/minutes/")?
                .parse::<u32>()
                .ok()?;
            Some(Route::Public(Candles(unit), CANDLE))
        }
        _ => None,
    }
}

/// Upbit's error envelope with a `Remaining-Req` header when known.
fn error_out(e: &ApiErr, rr: Option<String>) -> Out {
    with_rr(e.out(), rr)
}

fn with_rr(out: Out, rr: Option<String>) -> Out {
    match rr {
        Some(v) => out.header("remaining-req", v),
        None => out,
    }
}

pub(super) fn first<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

fn all<'a>(p: &'a Params, k: &str) -> Vec<&'a str> {
    let arr = format!("{k}[]");
    p.iter()
        .filter(|(a, _)| *a == arr || a == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn dec_param(p: &Params, k: &str) -> Result<Option<Decimal>, ApiErr> {
    match first(p, k) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<Decimal>()
            .map(Some)
            .map_err(|_| err(400, "invalid_parameter", format!("{k} must be a number"))),
    }
}

pub(super) fn int_param(p: &Params, k: &str, default: usize, max: usize) -> Result<usize, ApiErr> {
    match first(p, k) {
        None | Some("") => Ok(default),
        Some(s) => {
            let n: usize = s
                .parse()
                .map_err(|_| err(400, "invalid_parameter", format!("{k} must be an integer")))?;
            if n == 0 || n > max {
                return Err(err(
                    400,
                    "validation_error",
                    format!("{k} must be between 1 and {max}"),
                ));
            }
            Ok(n)
        }
    }
}

/// Parses a time filter: millisecond (or second) epoch, RFC 3339, or a naive UTC time.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        return if s.len() <= 10 {
            Utc.timestamp_opt(n, 0).single()
        } else {
            Utc.timestamp_millis_opt(n).single()
        };
    }
    // A `+` decoded from an unencoded query arrives as a space.
    let fixed = s.replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&fixed) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

async fn handle(State(ex): State<Arc<Venue>>, req: Request) -> Response {
    let r = http::receive(req).await;
    let (method, path) = (r.method.as_str(), r.path.as_str());
    // Bodies are size-limited: one over the limit is refused, never processed as if empty.
    let Some(bytes) = &r.body else {
        http::log_refused_body(&ex, &r);
        return err(
            413,
            "payload_too_large",
            "request body over 1 MiB (or unreadable)",
        )
        .out()
        .into_response();
    };
    let ctype = r.header("content-type").unwrap_or_default();
    let authz = r.header("authorization");
    let body_json: Option<Value> = if bytes.is_empty() {
        None
    } else if ctype.contains("json") || bytes.first() == Some(&b'{') {
        serde_json::from_slice(bytes).ok()
    } else {
        None
    };
    let params: Params = match Some(r.query.as_str()).filter(|q| !q.is_empty()) {
        Some(q) => auth::parse_query(q),
        None => match &body_json {
            Some(v) => auth::json_params(v).unwrap_or_default(),
            None if !bytes.is_empty() => auth::parse_query(&String::from_utf8_lossy(bytes)),
            None => Vec::new(),
        },
    };
    let (decision, fault) = http::inject(&ex, method, path).await;
    if decision.timeout {
        return http::hold(&ex, method, path, fault).await;
    }
    let mut fx = Effects::default();
    let out = if decision.error {
        let rr = route(method, path).map(|r| match r {
            Route::Public(_, g) | Route::Private(_, g, _) => limits::header(g, g.budget.limit),
        });
        error_out(
            &err(500, "server_error", "일시적인 서버 오류입니다. (injected)"),
            rr,
        )
    } else {
        process(
            &ex,
            method,
            path,
            &params,
            authz.as_deref(),
            r.ip,
            decision.repeat_page,
            &mut fx,
        )
    };
    http::finish(&ex, &r, out, &fx, &decision, fault)
}

fn limited(v: Verdict, group: Group) -> Result<String, Out> {
    match v {
        Verdict::Allowed { remaining } => Ok(limits::header(group, remaining)),
        Verdict::TooMany => Err(Out::text(429, "Too many API requests.")
            .header("remaining-req", limits::header(group, 0))),
        Verdict::Blocked { seconds } => Err(Out::text(
            418,
            &format!("Too many requests after 429 responses: blocked for {seconds} seconds."),
        )
        .header("remaining-req", limits::header(group, 0))
        .header("retry-after", seconds.to_string())),
    }
}

#[allow(clippy::too_many_arguments)]
fn process(
    ex: &Venue,
    method: &str,
    path: &str,
    params: &Params,
    authz: Option<&str>,
    ip: Option<IpAddr>,
    repeat_page: bool,
    fx: &mut Effects,
) -> Out {
    let ipkey = ip.map(|i| i.to_string()).unwrap_or_else(|| "local".into());
    match route(method, path) {
        None => {
            let rr = ex
                .gate()
                .limiter
                .remaining(limits::DEFAULT.budget, &ipkey, Instant::now());
            let e = err(
                404,
                "not_found",
                format!("{method} {path}: no such endpoint"),
            );
            fx.error = Some("not_found".into());
            error_out(&e, Some(limits::header(limits::DEFAULT, rr)))
        }
        Some(Route::Public(ep, group)) => {
            let v = if ex.opts.rate_limits {
                ex.gate()
                    .limiter
                    .hit(group.budget, &ipkey, 1, Instant::now())
            } else {
                Verdict::Allowed {
                    remaining: group.budget.limit,
                }
            };
            let rr = match limited(v, group) {
                Ok(rr) => rr,
                Err(o) => return o,
            };
            let now = ex.now();
            match quotation::public(ex, ep, params, now) {
                Ok(v) => with_rr(Out::json(200, &v), Some(rr)),
                Err(e) => {
                    fx.error = Some(e.log_name());
                    error_out(&e, Some(rr))
                }
            }
        }
        Some(Route::Private(ep, group, scope)) => {
            let now = ex.now();
            let key = {
                let req = RequestAuth {
                    authorization: authz,
                    params,
                    ip,
                    scope,
                };
                let lookup = |ak: &str| ex.world().keys.get(ak).cloned();
                let mut gate = ex.gate();
                match auth::authenticate(
                    &req,
                    lookup,
                    &mut gate.nonces,
                    now,
                    ex.opts.out_of_scope_status,
                ) {
                    Ok(k) => k,
                    Err((e, ak)) => {
                        let caller = ak.clone().unwrap_or(ipkey);
                        let rem = gate
                            .limiter
                            .remaining(group.budget, &caller, Instant::now());
                        fx.access_key = ak;
                        fx.error = Some(e.name.to_string());
                        return error_out(
                            &err(e.status, e.name, e.message),
                            Some(limits::header(group, rem)),
                        );
                    }
                }
            };
            fx.access_key = Some(key.access_key.clone());
            let v = if ex.opts.rate_limits {
                ex.gate()
                    .limiter
                    .hit(group.budget, &key.access_key, 1, Instant::now())
            } else {
                Verdict::Allowed {
                    remaining: group.budget.limit,
                }
            };
            let rr = match limited(v, group) {
                Ok(rr) => rr,
                Err(o) => {
                    fx.error = Some(o.status.to_string());
                    return o;
                }
            };
            let mut w = ex.world();
            match private(ex, &mut w, ep, &key, params, now, fx, repeat_page) {
                Ok((status, Reply::Value(v))) => with_rr(Out::json(status, &v), Some(rr)),
                Ok((status, Reply::Raw(body))) => with_rr(Out::raw_json(status, body), Some(rr)),
                Err(e) => {
                    fx.error = Some(e.name.as_str().unwrap_or("error").to_string());
                    error_out(&e, Some(rr))
                }
            }
        }
    }
}

fn account_json(cur: &str, b: &crate::mock::venue::state::Balance) -> Value {
    json!({"currency": cur, "balance": wire::dec(b.balance), "locked": wire::dec(b.locked),
        "avg_buy_price": wire::dec(b.avg_buy_price), "avg_buy_price_modified": false,
        "unit_currency": Upbit.quote_currency()})
}

fn find_order(w: &World, account: &str, p: &Params) -> Result<usize, ApiErr> {
    let nf = || err(404, "order_not_found", "주문을 찾지 못했습니다.");
    if let Some(u) = first(p, "uuid") {
        let u: Uuid = u.parse().map_err(|_| nf())?;
        let i = w.position(&u).ok_or_else(nf)?;
        if w.orders[i].account != account {
            return Err(nf());
        }
        return Ok(i);
    }
    if let Some(id) = first(p, "identifier") {
        return w.find_by_identifier(account, id).ok_or_else(nf);
    }
    Err(err(
        400,
        "validation_error",
        "uuid or identifier is required",
    ))
}

fn sort_desc(p: &Params) -> Result<bool, ApiErr> {
    match first(p, "order_by") {
        None | Some("desc") => Ok(true),
        Some("asc") => Ok(false),
        Some(_) => Err(err(
            400,
            "invalid_parameter",
            "order_by must be asc or desc",
        )),
    }
}

/// A private endpoint's answer: a JSON value, or JSON text written directly (lists of orders).
enum Reply {
    Value(Value),
    Raw(String),
}

#[allow(clippy::too_many_arguments)]
fn private(
    ex: &Venue,
    w: &mut World,
    ep: Ep,
    key: &KeyRec,
    p: &Params,
    now: DateTime<Utc>,
    fx: &mut Effects,
    repeat_page: bool,
) -> Result<(u16, Reply), ApiErr> {
    let acct = key.account.clone();
    let ok = |v: Value| Ok((200, Reply::Value(v)));
    let raw = |items: &[String]| Ok((200, Reply::Raw(wire::array(items))));
    match ep {
        Ep::Accounts => {
            let a = w.accounts.get(&acct).cloned().unwrap_or_default();
            let v: Vec<Value> = a
                .balances
                .iter()
                .filter(|(c, b)| c.as_str() == Upbit.quote_currency() || !b.balance.is_zero() || !b.locked.is_zero())
                .map(|(c, b)| account_json(c, b))
                .collect();
            ok(json!(v))
        }
        Ep::ApiKeys => {
            let mut ks: Vec<&KeyRec> = w.keys.values().filter(|k| k.account == acct && k.revoked_at.is_none()).collect();
            ks.sort_by(|a, b| a.label.cmp(&b.label));
            ok(json!(ks.iter().map(|k| json!({"access_key": k.access_key, "expire_at": wire::kst(k.expire_at)})).collect::<Vec<_>>()))
        }
        Ep::Chance => {
            let m = first(p, "market").ok_or_else(|| err(400, "validation_error", "market is required"))?;
            let (_, spec) = ex.markets.get(m).ok_or_else(|| err(404, "market_does_not_exist", "market does not exist"))?;
            let (q, b) = (spec.market.quote.as_str(), spec.market.base.as_str());
            let a = w.accounts.entry(acct).or_default();
            let qa = account_json(q, a.bal(q));
            let ba = account_json(b, a.bal(b));
            let fee = wire::dec(ex.markets.fee);
            ok(json!({"bid_fee": fee, "ask_fee": fee, "maker_bid_fee": fee, "maker_ask_fee": fee,
                "market": {"id": spec.market.symbol, "name": format!("{b}/{q}"),
                    "order_types": ["limit"], "order_sides": ["ask", "bid"],
                    "bid_types": ["limit", "price", "best_fok", "best_ioc", "limit_ioc", "limit_fok"],
                    "ask_types": ["limit", "market", "best_fok", "best_ioc", "limit_ioc", "limit_fok"],
                    "bid": {"currency": q, "min_total": MIN_TOTAL_KRW.to_string()},
                    "ask": {"currency": q, "min_total": MIN_TOTAL_KRW.to_string()},
                    "max_total": "1000000000", "state": "active"},
                "bid_account": qa, "ask_account": ba}))
        }
        Ep::Order => {
            let i = find_order(w, &acct, p)?;
            ok(wire::order(&w.orders[i], true))
        }
        Ep::OrdersOpen => {
            let market = first(p, "market");
            let mut states = all(p, "states");
            if let Some(s) = first(p, "state") {
                states.push(s);
            }
            for s in &states {
                if !["wait", "watch"].contains(s) {
                    return Err(err(400, "invalid_parameter", "state must be wait or watch"));
                }
            }
            let want_wait = states.is_empty() || states.contains(&"wait");
            let page = int_param(p, "page", 1, usize::MAX)?;
            let limit = int_param(p, "limit", 100, 100)?;
            let desc = sort_desc(p)?;
            let states: &[OrderState] = if want_wait { &[OrderState::Open] } else { &[] };
            let keep = |o: &Order| market.map_or(true, |m| o.market.symbol == m);
            let skip = (page - 1).saturating_mul(limit);
            let items: Vec<String> = w
                .list_orders(&acct, states, None, desc, &keep, skip, limit)
                .into_iter()
                .map(|i| wire::order_json(&w.orders[i], false))
                .collect();
            raw(&w.page(&acct, "open", items, repeat_page, limit))
        }
        Ep::OrdersClosed => {
            let market = first(p, "market");
            let mut states = all(p, "states");
            if let Some(s) = first(p, "state") {
                states.push(s);
            }
            for s in &states {
                if !["done", "cancel"].contains(s) {
                    return Err(err(400, "invalid_parameter", "state must be done or cancel"));
                }
            }
            let limit = int_param(p, "limit", 100, 1000)?;
            let desc = sort_desc(p)?;
            let t = |k: &str| -> Result<Option<DateTime<Utc>>, ApiErr> {
                match first(p, k) {
                    None | Some("") => Ok(None),
                    Some(s) => parse_time(s).map(Some).ok_or_else(|| err(400, "invalid_parameter", format!("{k}: not a time"))),
                }
            };
            let week = Duration::days(7);
            let (start, end) = match (t("start_time")?, t("end_time")?) {
                (Some(s), Some(e)) => (s, e),
                (Some(s), None) => (s, s + week),
                (None, Some(e)) => (e - week, e),
                (None, None) => (now - week, now),
            };
            if end < start {
                return Err(err(400, "validation_error", "end_time is before start_time"));
            }
            if end - start > week {
                return Err(err(400, "validation_error", "start_time and end_time must be at most 7 days apart"));
            }
            let wanted: Vec<OrderState> = [OrderState::Done, OrderState::Cancelled]
                .into_iter()
                .filter(|st| states.is_empty() || states.contains(&wire::state(*st)))
                .collect();
            let keep = |o: &Order| market.map_or(true, |m| o.market.symbol == m);
            let found = w.list_orders(&acct, &wanted, Some((start, end)), desc, &keep, 0, limit);
            let mut page = PageText::with_capacity(found.len(), wire::ORDER_BYTES);
            for i in found {
                w.fragment_into(&mut page, "upbit-order", i, None, |b| wire::push_order(b, &w.orders[i], false));
            }
            Ok((200, Reply::Raw(w.page_text(&acct, "closed", page, repeat_page, limit))))
        }
        Ep::OrdersUuids => {
            let uu = all(p, "uuids");
            let ids = all(p, "identifiers");
            if uu.is_empty() == ids.is_empty() {
                return Err(err(400, "validation_error", "give uuids[] or identifiers[] (one of them)"));
            }
            if uu.len() > 100 || ids.len() > 100 {
                return Err(err(400, "validation_error", "at most 100 uuids or identifiers"));
            }
            let market = first(p, "market");
            let desc = sort_desc(p)?;
            // Found through the uuid and identifier indexes: each order once, in position
            // order, then by creation time (ties keep position order).
            let mut found: std::collections::BTreeSet<usize> = uu
                .iter()
                .filter_map(|s| Uuid::parse_str(s).ok().filter(|u| u.to_string() == *s))
                .filter_map(|u| w.position(&u))
                .collect();
            found.extend(ids.iter().flat_map(|i| w.find_all_by_identifier(&acct, i)));
            let mut v: Vec<&crate::mock::venue::state::Order> = found
                .into_iter()
                .map(|i| &w.orders[i])
                .filter(|o| o.account == acct)
                .filter(|o| market.map_or(true, |m| o.market.symbol == m))
                .collect();
            v.sort_by_key(|o| o.created_at);
            if desc {
                v.reverse();
            }
            raw(&v.iter().map(|o| wire::order_json(o, false)).collect::<Vec<_>>())
        }
        Ep::PostOrders => {
            let req = new_order(ex, p)?;
            let idx = matching::place(w, &ex.markets, &acct, req, now)?;
            let o = &w.orders[idx];
            fx.created.push(o.uuid);
            let mut v = wire::order(o, false);
            if let Some(m) = v.as_object_mut() {
                m.remove("executed_funds");
            }
            Ok((201, Reply::Value(v)))
        }
        Ep::PostOrdersTest => {
            let o = matching::prepare(w, &ex.markets, &acct, new_order(ex, p)?, now)?;
            let mut v = wire::order(&o, false);
            if let Some(m) = v.as_object_mut() {
                m.remove("executed_funds");
            }
            Ok((201, Reply::Value(v)))
        }
        Ep::DeleteOrder => {
            let i = find_order(w, &acct, p)?;
            if w.orders[i].state != OrderState::Open {
                return Err(err(400, "order_not_found", "이미 체결되었거나 취소된 주문입니다."));
            }
            let v = wire::order(&w.orders[i], false);
            matching::cancel(w, i)?;
            fx.cancelled.push(w.orders[i].uuid);
            ok(v)
        }
        Ep::DeleteOrdersOpen => {
            let side = first(p, "cancel_side").unwrap_or("all");
            if !["all", "ask", "bid"].contains(&side) {
                return Err(err(400, "invalid_parameter", "cancel_side must be all, ask or bid"));
            }
            let list = |k: &str| -> Vec<String> {
                first(p, k).map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()).unwrap_or_default()
            };
            let pairs = list("pairs");
            let quotes = list("quote_currencies");
            let excluded = list("excluded_pairs");
            if !pairs.is_empty() && !quotes.is_empty() {
                return Err(err(400, "invalid_parameter", "pairs and quote_currencies cannot be combined"));
            }
            if pairs.len() > 20 || excluded.len() > 20 {
                return Err(err(400, "validation_error", "at most 20 pairs"));
            }
            let count = int_param(p, "count", 20, 300)?;
            let desc = sort_desc(p)?;
            let keep = |o: &Order| {
                (side == "all" || o.side.as_str() == side)
                    && (pairs.is_empty() || pairs.contains(&o.market.symbol))
                    && (quotes.is_empty() || quotes.contains(&o.market.quote))
                    && !excluded.contains(&o.market.symbol)
            };
            let idx = w.list_orders(&acct, &[OrderState::Open], None, desc, &keep, 0, count);
            let mut done = Vec::new();
            for i in idx {
                if matching::cancel(w, i).is_ok() {
                    let o = &w.orders[i];
                    fx.cancelled.push(o.uuid);
                    let mut m = serde_json::Map::new();
                    m.insert("uuid".into(), json!(o.uuid.to_string()));
                    m.insert("market".into(), json!(o.market.symbol));
                    if let Some(id) = &o.identifier {
                        m.insert("identifier".into(), json!(id));
                    }
                    done.push(Value::Object(m));
                }
            }
            ok(json!({"success": {"count": done.len(), "orders": done}, "failed": {"count": 0, "orders": []}}))
        }
        Ep::DeleteOrdersUuids => {
            let uu = all(p, "uuids");
            let ids = all(p, "identifiers");
            if uu.is_empty() == ids.is_empty() {
                return Err(err(400, "validation_error", "give uuids[] or identifiers[] (one of them)"));
            }
            if uu.len() > 20 || ids.len() > 20 {
                return Err(err(400, "validation_error", "at most 20 uuids or identifiers"));
            }
            let mut ok_list = Vec::new();
            let mut failed = Vec::new();
            let targets: Vec<(String, bool)> = uu
                .iter()
                .map(|u| (u.to_string(), true))
                .chain(ids.iter().map(|i| (i.to_string(), false)))
                .collect();
            for (t, is_uuid) in targets {
                let pp: Params = vec![(if is_uuid { "uuid" } else { "identifier" }.to_string(), t.clone())];
                let r = find_order(w, &acct, &pp).and_then(|i| matching::cancel(w, i).map(|_| i).map_err(ApiErr::from));
                match r {
                    Ok(i) => {
                        let o = &w.orders[i];
                        fx.cancelled.push(o.uuid);
                        let mut m = serde_json::Map::new();
                        m.insert("uuid".into(), json!(o.uuid.to_string()));
                        m.insert("market".into(), json!(o.market.symbol));
                        if let Some(id) = &o.identifier {
                            m.insert("identifier".into(), json!(id));
                        }
                        ok_list.push(Value::Object(m));
                    }
                    Err(e) => failed.push(if is_uuid {
                        json!({"uuid": t, "error": {"name": e.name, "message": e.message}})
                    } else {
                        json!({"identifier": t, "error": {"name": e.name, "message": e.message}})
                    }),
                }
            }
            ok(json!({"success": {"count": ok_list.len(), "orders": ok_list}, "failed": {"count": failed.len(), "orders": failed}}))
        }
        Ep::Withdraws | Ep::Deposits => {
            let limit = int_param(p, "limit", 100, 100)?;
            let page = int_param(p, "page", 1, usize::MAX)?;
            let desc = sort_desc(p)?;
            let cur = first(p, "currency");
            let state = first(p, "state");
            let uu = all(p, "uuids");
            let tx = all(p, "txids");
            let items: Vec<(DateTime<Utc>, String, Value)> = if ep == Ep::Withdraws {
                w.withdrawals
                    .iter()
                    .filter(|x| x.account == acct)
                    .filter(|x| cur.map_or(true, |c| x.currency == c))
                    .filter(|x| state.map_or(true, |s| wire::withdrawal_state(x.state).eq_ignore_ascii_case(s)))
                    .filter(|x| uu.is_empty() || uu.contains(&x.uuid.to_string().as_str()))
                    .filter(|x| tx.is_empty() || x.txid.as_deref().is_some_and(|t| tx.contains(&t)))
                    .map(|x| (x.created_at, x.uuid.to_string(), wire::withdrawal(x)))
                    .collect()
            } else {
                w.deposits
                    .iter()
                    .filter(|x| x.account == acct)
                    .filter(|x| cur.map_or(true, |c| x.currency == c))
                    .filter(|_| state.map_or(true, |s| s.eq_ignore_ascii_case("ACCEPTED")))
                    .filter(|x| uu.is_empty() || uu.contains(&x.uuid.to_string().as_str()))
                    .filter(|x| tx.is_empty() || tx.contains(&x.txid.as_str()))
                    .map(|x| (x.created_at, x.uuid.to_string(), wire::deposit(x)))
                    .collect()
            };
            let mut items = items;
            items.sort_by_key(|x| x.0);
            if desc {
                items.reverse();
            }
            // Cursor paging: `from` / `to` are uuids bounding the page (exclusive).
            if let Some(f) = first(p, "from") {
                if let Some(pos) = items.iter().position(|x| x.1 == f) {
                    items.drain(..=pos);
                }
            }
            if let Some(t) = first(p, "to") {
                if let Some(pos) = items.iter().position(|x| x.1 == t) {
                    items.truncate(pos);
                }
            }
            let page_items: Vec<String> = items.into_iter().skip((page - 1).saturating_mul(limit)).take(limit).map(|x| x.2.to_string()).collect();
            let kind = if ep == Ep::Withdraws { "withdraws" } else { "deposits" };
            raw(&w.page(&acct, kind, page_items, repeat_page, limit))
        }
        Ep::Withdraw => {
            let nf = || err(404, "withdraw_not_found", "출금 내역을 찾지 못했습니다.");
            let u = first(p, "uuid");
            let t = first(p, "txid");
            let x = w
                .withdrawals
                .iter()
                .find(|x| x.account == acct && (u.is_some_and(|u| x.uuid.to_string() == u) || (t.is_some() && x.txid.as_deref() == t)))
                .ok_or_else(nf)?;
            ok(wire::withdrawal(x))
        }
        Ep::Deposit => {
            let u = first(p, "uuid");
            let t = first(p, "txid");
            let x = w
                .deposits
                .iter()
                .find(|x| x.account == acct && (u.is_some_and(|u| x.uuid.to_string() == u) || t.is_some_and(|t| x.txid == t)))
                .ok_or_else(|| err(404, "deposit_not_found", "입금 내역을 찾지 못했습니다."))?;
            ok(wire::deposit(x))
        }
        Ep::CoinAddresses => ok(json!(w
            .addresses
            .iter()
            .filter(|a| a.account == acct)
            .map(|a| json!({"currency": a.currency, "net_type": a.net_type, "network_name": a.net_type,
                "withdraw_address": a.address}))
            .collect::<Vec<_>>())),
        Ep::PostWithdrawCoin => {
            let cur = first(p, "currency").ok_or_else(|| err(400, "validation_error", "currency is required"))?.to_string();
            let amount = dec_param(p, "amount")?.filter(|a| *a > Decimal::ZERO).ok_or_else(|| err(400, "validation_error", "amount must be positive"))?;
            let address = first(p, "address").ok_or_else(|| err(400, "validation_error", "address is required"))?.to_string();
            let net = first(p, "net_type").unwrap_or(&cur).to_string();
            let req = WithdrawalRequest { currency: cur, net_type: net, address, amount };
            let i = transfers::request_withdrawal(w, &acct, &key.access_key, req, now).map_err(|e| match e {
                TransferError::NotAllowlisted => err(400, "withdraw_address_not_registered", "출금 허용 주소로 등록되지 않은 주소입니다."),
                _ => err(400, "insufficient_funds_withdraw", "출금 가능 금액이 부족합니다."),
            })?;
            Ok((201, Reply::Value(wire::withdrawal(&w.withdrawals[i]))))
        }
        Ep::DeleteWithdrawCoin => {
            let u = first(p, "uuid").ok_or_else(|| err(400, "validation_error", "uuid is required"))?;
            let i = transfers::cancel_withdrawal(w, &acct, u).map_err(|e| match e {
                TransferError::NotCancellable => err(400, "validation_error", "this withdrawal can no longer be cancelled"),
                _ => err(404, "withdraw_not_found", "출금 내역을 찾지 못했습니다."),
            })?;
            let mut v = wire::withdrawal(&w.withdrawals[i]);
            if let Some(m) = v.as_object_mut() {
                m.insert("is_cancelable".into(), json!(false));
            }
            ok(v)
        }
        _ => Err(err(404, "not_found", "no such endpoint")),
    }
}

/// Parses and checks a new order the way Upbit does, in Upbit's order of checks: required
/// fields, number formats, the market's shape and existence, `time_in_force`, the amounts
/// each `ord_type` needs; the venue then checks the minimum total, the identifier and funds.
pub fn new_order(ex: &Venue, p: &Params) -> Result<NewOrder, ApiErr> {
    let market = first(p, "market")
        .ok_or_else(|| err(400, "validation_error", "market is required"))?
        .to_string();
    let side = match first(p, "side") {
        Some("bid") => Side::Bid,
        Some("ask") => Side::Ask,
        _ => return Err(err(400, "validation_error", "side must be bid or ask")),
    };
    let kind = first(p, "ord_type")
        .and_then(wire::parse_ord_type)
        .ok_or_else(|| {
            err(
                400,
                "validation_error",
                "ord_type must be limit, price, market or best",
            )
        })?;
    let price = dec_param(p, "price")?;
    let volume = dec_param(p, "volume")?;
    let identifier = first(p, "identifier")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let tif = first(p, "time_in_force").filter(|s| !s.is_empty());
    if Upbit.parse_symbol(&market).is_none() {
        return Err(err(
            400,
            "invalid_parameter",
            "market must look like KRW-BTC",
        ));
    }
    let (_, conf) = ex.markets.get(&market).ok_or_else(|| {
        err(
            404,
            "market_does_not_exist",
            format!("market {market} does not exist"),
        )
    })?;
    let tif = match tif {
        None => None,
        Some(t) => Some(wire::parse_tif(t).ok_or_else(|| {
            err(
                400,
                "invalid_parameter",
                "time_in_force must be ioc, fok or post_only",
            )
        })?),
    };
    let pos = |d: Option<Decimal>, what: &str| -> Result<Decimal, ApiErr> {
        match d {
            Some(v) if v > Decimal::ZERO => Ok(v),
            Some(_) => Err(err(
                400,
                "invalid_parameter",
                format!("{what} must be positive"),
            )),
            None => Err(err(
                400,
                "validation_error",
                format!("{what} is required for this ord_type"),
            )),
        }
    };
    let mut req = NewOrder {
        market: conf.market.clone(),
        side,
        kind,
        price: None,
        quote_amount: None,
        volume: None,
        identifier,
        tif,
    };
    match (kind, side) {
        (OrderKind::Limit, _) => {
            req.price = Some(pos(price, "price")?);
            req.volume = Some(pos(volume, "volume")?);
        }
        (OrderKind::MarketBuyQuote, Side::Bid) | (OrderKind::Best, Side::Bid) => {
            if volume.is_some() {
                return Err(err(
                    400,
                    "validation_error",
                    "volume must be empty for a market buy by total",
                ));
            }
            req.quote_amount = Some(pos(price, "price")?);
        }
        (OrderKind::MarketSellBase, Side::Ask) | (OrderKind::Best, Side::Ask) => {
            if price.is_some() {
                return Err(err(
                    400,
                    "validation_error",
                    "price must be empty for a market sell",
                ));
            }
            req.volume = Some(pos(volume, "volume")?);
        }
        (OrderKind::MarketBuyQuote, Side::Ask) => {
            return Err(err(
                400,
                "invalid_parameter",
                "ord_type price is for bids (market buy by total)",
            ))
        }
        // `parse_ord_type` never gives a market buy by volume: Upbit has none.
        (OrderKind::MarketSellBase, Side::Bid) | (OrderKind::MarketBuyBase, _) => {
            return Err(err(
                400,
                "invalid_parameter",
                "ord_type market is for asks (market sell by volume)",
            ))
        }
    }
    if kind == OrderKind::Best && !matches!(tif, Some(Tif::Ioc) | Some(Tif::Fok)) {
        return Err(err(
            400,
            "invalid_parameter",
            "ord_type best needs time_in_force ioc or fok",
        ));
    }
    Ok(req)
}
