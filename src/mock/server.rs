//! Routes and handlers: one fallback handler that normalizes the request the way real
//! clients send it (double slashes, GET parameters in a form body, JSON bodies on DELETE),
//! then authenticates, rate-limits and dispatches by (method, path).
//!
//! A single dispatcher instead of axum's per-route extractors keeps the quirks in one place,
//! answers unknown paths with Upbit's error envelope, and puts `Remaining-Req` on every
//! response, errors included.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::mock::auth::{self, Params, RequestAuth};
use crate::mock::matching::{self, NewOrder};
use crate::mock::ratelimit::{self, Group, Verdict};
use crate::mock::state::{KeyRec, OrdState, OrdType, RequestRecord, Side, Withdrawal, World};
use crate::mock::wire;
use crate::mock::MockExchange;

/// The mock's router: the same for `respond mock serve`, drills and tests.
pub fn router(state: Arc<MockExchange>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// An API error: status, Upbit error name (a number on the quotation API), message.
#[derive(Debug, Clone)]
pub struct ApiErr {
    pub status: u16,
    pub name: Value,
    pub message: String,
}

fn err(status: u16, name: &str, message: impl Into<String>) -> ApiErr {
    ApiErr {
        status,
        name: json!(name),
        message: message.into(),
    }
}

fn qerr(status: u16, message: &str) -> ApiErr {
    ApiErr {
        status,
        name: json!(status),
        message: message.into(),
    }
}

impl From<matching::OrderError> for ApiErr {
    fn from(e: matching::OrderError) -> Self {
        err(e.status, e.name, e.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
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
    Drill,
}

fn route(method: &str, path: &str) -> Option<Route> {
    use ratelimit::*;
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
        (_, p) if p.starts_with("/_mock/") => Some(Route::Drill),
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

/// Collapses repeated slashes and drops a trailing slash.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut prev = false;
    for c in path.chars() {
        if c == '/' {
            if !prev {
                out.push('/');
            }
            prev = true;
        } else {
            out.push(c);
            prev = false;
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// A response before it becomes HTTP (faults may truncate or drop its body).
struct Out {
    status: u16,
    body: Vec<u8>,
    json: bool,
    rr: Option<String>,
    retry_after: Option<u64>,
}

impl Out {
    fn json(status: u16, v: &Value, rr: Option<String>) -> Out {
        Out {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            json: true,
            rr,
            retry_after: None,
        }
    }
    fn error(e: &ApiErr, rr: Option<String>) -> Out {
        Out::json(
            e.status,
            &json!({"error": {"name": e.name, "message": e.message}}),
            rr,
        )
    }
    fn text(status: u16, t: &str, rr: Option<String>) -> Out {
        Out {
            status,
            body: t.as_bytes().to_vec(),
            json: false,
            rr,
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct Effects {
    created: Vec<Uuid>,
    cancelled: Vec<Uuid>,
    access_key: Option<String>,
    error: Option<String>,
}

fn first<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
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

fn int_param(p: &Params, k: &str, default: usize, max: usize) -> Result<usize, ApiErr> {
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

/// Largest request body accepted (Upbit's own requests are a few KiB).
pub const MAX_BODY: usize = 1 << 20;

async fn handle(State(ex): State<Arc<MockExchange>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let method = parts.method.as_str().to_string();
    let path = normalize(parts.uri.path());
    // Bodies are size-limited: one over the limit is refused, never processed as if empty.
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let out = Out::error(
                &err(
                    413,
                    "payload_too_large",
                    "request body over 1 MiB (or unreadable)",
                ),
                None,
            );
            log(&ex, &method, &path, 413, &Effects::default(), None);
            return finish(out);
        }
    };
    let ctype = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let authz = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body_json: Option<Value> = if bytes.is_empty() {
        None
    } else if ctype.contains("json") || bytes.first() == Some(&b'{') {
        serde_json::from_slice(&bytes).ok()
    } else {
        None
    };
    let params: Params = match parts.uri.query().filter(|q| !q.is_empty()) {
        Some(q) => auth::parse_query(q),
        None => match &body_json {
            Some(v) => auth::json_params(v).unwrap_or_default(),
            None if !bytes.is_empty() => auth::parse_query(&String::from_utf8_lossy(&bytes)),
            None => Vec::new(),
        },
    };
    let drill = path.starts_with("/_mock/");
    let decision = if drill {
        Default::default()
    } else {
        ex.faults().decide(&method, &path)
    };
    let fault = decision.label();
    if let Some(f) = &fault {
        tracing::warn!(target: "respond::mock", "fault injected on {method} {path}: {f}");
    }
    if decision.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(decision.latency_ms)).await;
    }
    if decision.storm_secs > 0 {
        let mut g = ex.gate();
        if g.limiter.storm_until.map_or(true, |u| u < Instant::now()) {
            g.limiter.storm_until =
                Some(Instant::now() + std::time::Duration::from_secs(decision.storm_secs));
        }
    }
    if decision.timeout {
        log(&ex, &method, &path, 0, &Effects::default(), fault.clone());
        let mut rx = ex.shutdown_signal();
        let _ = rx.wait_for(|v| *v).await;
        return finish(Out::text(503, "shutting down", None));
    }
    let mut fx = Effects::default();
    let out = if decision.error {
        let rr = route(&method, &path).map(|r| match r {
            Route::Public(_, g) | Route::Private(_, g, _) => ratelimit::header(g, g.limit),
            Route::Drill => ratelimit::header(ratelimit::DEFAULT, ratelimit::DEFAULT.limit),
        });
        Out::error(
            &err(500, "server_error", "일시적인 서버 오류입니다. (injected)"),
            rr,
        )
    } else {
        process(
            &ex,
            &method,
            &path,
            &params,
            body_json.as_ref(),
            authz.as_deref(),
            ip,
            decision.repeat_page,
            &mut fx,
        )
    };
    log(&ex, &method, &path, out.status, &fx, fault);
    if decision.drop {
        let mut r = Response::new(Body::from_stream(futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other(
                "connection dropped (injected fault)",
            ))
        })));
        *r.status_mut() = StatusCode::OK;
        return r;
    }
    let mut out = out;
    if decision.truncate && out.body.len() > 2 {
        let n = out.body.len() / 2;
        out.body.truncate(n);
    }
    finish(out)
}

fn log(
    ex: &MockExchange,
    method: &str,
    path: &str,
    status: u16,
    fx: &Effects,
    fault: Option<String>,
) {
    if path.starts_with("/_mock/") {
        return;
    }
    let rec = RequestRecord {
        at: crate::engine::journal::ts(ex.now()),
        method: method.to_string(),
        path: path.to_string(),
        access_key: fx.access_key.clone(),
        status,
        error: fx.error.clone(),
        orders_created: fx.created.clone(),
        orders_cancelled: fx.cancelled.clone(),
        fault,
    };
    ex.world().log_request(rec);
}

fn finish(out: Out) -> Response {
    let mut r = Response::new(Body::from(out.body));
    *r.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static(if out.json {
            "application/json; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        }),
    );
    if let Some(rr) = out.rr.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert("remaining-req", rr);
    }
    if let Some(s) = out.retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            h.insert("retry-after", v);
        }
    }
    r
}

fn limited(v: Verdict, group: Group) -> Result<String, Out> {
    match v {
        Verdict::Allowed { remaining } => Ok(ratelimit::header(group, remaining)),
        Verdict::TooMany => Err(Out::text(
            429,
            "Too many API requests.",
            Some(ratelimit::header(group, 0)),
        )),
        Verdict::Blocked { seconds } => {
            let mut o = Out::text(
                418,
                &format!("Too many requests after 429 responses: blocked for {seconds} seconds."),
                Some(ratelimit::header(group, 0)),
            );
            o.retry_after = Some(seconds);
            Err(o)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn process(
    ex: &MockExchange,
    method: &str,
    path: &str,
    params: &Params,
    body: Option<&Value>,
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
                .remaining(ratelimit::DEFAULT, &ipkey, Instant::now());
            let e = err(
                404,
                "not_found",
                format!("{method} {path}: no such endpoint"),
            );
            fx.error = Some("not_found".into());
            Out::error(&e, Some(ratelimit::header(ratelimit::DEFAULT, rr)))
        }
        Some(Route::Drill) => {
            if !ex.opts.drill_api {
                return Out::error(
                    &err(
                        404,
                        "not_found",
                        "the drill API is disabled (--no-drill-api)",
                    ),
                    None,
                );
            }
            drill(ex, method, path, body)
        }
        Some(Route::Public(ep, group)) => {
            let v = if ex.opts.rate_limits {
                ex.gate().limiter.hit(group, &ipkey, Instant::now())
            } else {
                Verdict::Allowed {
                    remaining: group.limit,
                }
            };
            let rr = match limited(v, group) {
                Ok(rr) => rr,
                Err(o) => return o,
            };
            let now = ex.now();
            match public(ex, ep, params, now) {
                Ok(v) => Out::json(200, &v, Some(rr)),
                Err(e) => {
                    fx.error = Some(e.name.to_string());
                    Out::error(&e, Some(rr))
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
                        let rem = gate.limiter.remaining(group, &caller, Instant::now());
                        fx.access_key = ak;
                        fx.error = Some(e.name.to_string());
                        return Out::error(
                            &err(e.status, e.name, e.message),
                            Some(ratelimit::header(group, rem)),
                        );
                    }
                }
            };
            fx.access_key = Some(key.access_key.clone());
            let v = if ex.opts.rate_limits {
                ex.gate()
                    .limiter
                    .hit(group, &key.access_key, Instant::now())
            } else {
                Verdict::Allowed {
                    remaining: group.limit,
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
                Ok((status, v)) => Out::json(status, &v, Some(rr)),
                Err(e) => {
                    fx.error = Some(e.name.as_str().unwrap_or("error").to_string());
                    Out::error(&e, Some(rr))
                }
            }
        }
    }
}

fn drill(ex: &MockExchange, method: &str, path: &str, body: Option<&Value>) -> Out {
    let rest = path.trim_start_matches("/_mock/");
    match (method, rest) {
        ("GET", "ground-truth") => Out::json(200, &json!(ex.ground_truth()), None),
        ("GET", "requests") => Out::json(200, &json!(ex.requests()), None),
        ("GET", "bot-log") => Out::text(200, &ex.bot_log_csv(), None),
        ("GET", "state") => {
            let w = ex.world();
            let accounts: serde_json::Map<String, Value> = w
                .accounts
                .iter()
                .map(|(name, a)| {
                    let bals: serde_json::Map<String, Value> = a
                        .balances
                        .iter()
                        .map(|(c, b)| (c.clone(), json!({"balance": wire::dec(b.balance), "locked": wire::dec(b.locked)})))
                        .collect();
                    (name.clone(), Value::Object(bals))
                })
                .collect();
            let keys: Vec<Value> = ex
                .keys()
                .iter()
                .map(|k| {
                    let rec = w.keys.get(&k.access_key);
                    json!({"account": k.account, "label": k.label, "access_key": k.access_key,
                        "scopes": k.scopes,
                        "revoked_at": rec.and_then(|r| r.revoked_at).map(crate::engine::journal::ts)})
                })
                .collect();
            let open = w
                .orders
                .iter()
                .filter(|o| o.state == OrdState::Wait)
                .count();
            Out::json(
                200,
                &json!({"scenario": ex.scenario.name, "now": crate::engine::journal::ts(ex.now()),
                    "scenario_now": crate::engine::journal::ts(ex.scenario_now),
                    "accounts": accounts, "keys": keys, "orders": w.orders.len(), "open_orders": open,
                    "withdrawals": w.withdrawals.len(), "requests_logged": w.requests.len(),
                    "requests_dropped": w.requests_dropped}),
                None,
            )
        }
        ("GET", "faults") => {
            let rules: Vec<_> = ex
                .faults()
                .rules
                .iter()
                .map(|(r, used)| json!({"rule": r, "used": used}))
                .collect();
            Out::json(200, &json!(rules), None)
        }
        ("POST", "faults") => {
            let parsed: Result<Vec<crate::mock::faults::FaultRule>, _> = match body {
                Some(Value::Array(_)) => {
                    serde_json::from_value(body.cloned().unwrap_or(Value::Null))
                }
                Some(v) => {
                    serde_json::from_value(v.get("rules").cloned().unwrap_or(Value::Array(vec![])))
                }
                None => Ok(Vec::new()),
            };
            match parsed {
                Ok(rules) => {
                    let n = rules.len();
                    ex.set_faults(rules);
                    Out::json(200, &json!({"rules": n}), None)
                }
                Err(e) => Out::error(
                    &err(400, "invalid_parameter", format!("bad fault rules: {e}")),
                    None,
                ),
            }
        }
        ("POST", r) if r.starts_with("keys/") && r.ends_with("/revoke") => {
            let ak = &r["keys/".len()..r.len() - "/revoke".len()];
            if ex.revoke_key(ak) {
                Out::json(200, &json!({"access_key": ak, "revoked": true}), None)
            } else {
                Out::error(&err(404, "invalid_access_key", "no such key"), None)
            }
        }
        _ => Out::error(
            &err(
                404,
                "not_found",
                format!("{method} {path}: no such drill endpoint"),
            ),
            None,
        ),
    }
}

fn account_json(cur: &str, b: &crate::mock::state::Balance) -> Value {
    json!({"currency": cur, "balance": wire::dec(b.balance), "locked": wire::dec(b.locked),
        "avg_buy_price": wire::dec(b.avg_buy_price), "avg_buy_price_modified": false,
        "unit_currency": "KRW"})
}

fn find_order(w: &World, account: &str, p: &Params) -> Result<usize, ApiErr> {
    let nf = || err(404, "order_not_found", "주문을 찾지 못했습니다.");
    if let Some(u) = first(p, "uuid") {
        let u: Uuid = u.parse().map_err(|_| nf())?;
        let i = *w.by_uuid.get(&u).ok_or_else(nf)?;
        if w.orders[i].account != account {
            return Err(nf());
        }
        return Ok(i);
    }
    if let Some(id) = first(p, "identifier") {
        let o = w.find_by_identifier(account, id).ok_or_else(nf)?;
        return Ok(w.by_uuid[&o.uuid]);
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

#[allow(clippy::too_many_arguments)]
fn private(
    ex: &MockExchange,
    w: &mut World,
    ep: Ep,
    key: &KeyRec,
    p: &Params,
    now: DateTime<Utc>,
    fx: &mut Effects,
    repeat_page: bool,
) -> Result<(u16, Value), ApiErr> {
    let acct = key.account.clone();
    let ok = |v: Value| Ok((200, v));
    match ep {
        Ep::Accounts => {
            let a = w.accounts.get(&acct).cloned().unwrap_or_default();
            let v: Vec<Value> = a
                .balances
                .iter()
                .filter(|(c, b)| c.as_str() == "KRW" || !b.balance.is_zero() || !b.locked.is_zero())
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
            let (q, b) = m.split_once('-').unwrap_or(("KRW", ""));
            let a = w.accounts.entry(acct).or_default();
            let qa = account_json(q, a.bal(q));
            let ba = account_json(b, a.bal(b));
            let fee = wire::dec(ex.markets.fee);
            ok(json!({"bid_fee": fee, "ask_fee": fee, "maker_bid_fee": fee, "maker_ask_fee": fee,
                "market": {"id": spec.code, "name": format!("{b}/{q}"),
                    "order_types": ["limit"], "order_sides": ["ask", "bid"],
                    "bid_types": ["limit", "price", "best_fok", "best_ioc", "limit_ioc", "limit_fok"],
                    "ask_types": ["limit", "market", "best_fok", "best_ioc", "limit_ioc", "limit_fok"],
                    "bid": {"currency": q, "min_total": matching::MIN_TOTAL_KRW.to_string()},
                    "ask": {"currency": q, "min_total": matching::MIN_TOTAL_KRW.to_string()},
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
            let mut v: Vec<&crate::mock::state::Order> = w
                .orders
                .iter()
                .filter(|o| o.account == acct && o.state == OrdState::Wait && want_wait)
                .filter(|o| market.map_or(true, |m| o.market == m))
                .collect();
            v.sort_by_key(|o| o.created_at);
            if desc {
                v.reverse();
            }
            let items: Vec<Value> = v.iter().skip((page - 1) * limit).take(limit).map(|o| wire::order(o, false)).collect();
            ok(json!(paged(w, &acct, "open", items, repeat_page, limit)))
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
            let mut v: Vec<&crate::mock::state::Order> = w
                .orders
                .iter()
                .filter(|o| o.account == acct && o.state != OrdState::Wait)
                .filter(|o| states.is_empty() || states.contains(&o.state.as_str()))
                .filter(|o| market.map_or(true, |m| o.market == m))
                .filter(|o| o.created_at >= start && o.created_at <= end)
                .collect();
            v.sort_by_key(|o| o.created_at);
            if desc {
                v.reverse();
            }
            let items: Vec<Value> = v.iter().take(limit).map(|o| wire::order(o, false)).collect();
            ok(json!(paged(w, &acct, "closed", items, repeat_page, limit)))
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
            let mut v: Vec<&crate::mock::state::Order> = w
                .orders
                .iter()
                .filter(|o| o.account == acct)
                .filter(|o| uu.contains(&o.uuid.to_string().as_str()) || o.identifier.as_deref().is_some_and(|i| ids.contains(&i)))
                .filter(|o| market.map_or(true, |m| o.market == m))
                .collect();
            v.sort_by_key(|o| o.created_at);
            if desc {
                v.reverse();
            }
            ok(json!(v.iter().map(|o| wire::order(o, false)).collect::<Vec<_>>()))
        }
        Ep::PostOrders => {
            let req = new_order(p)?;
            let idx = matching::place(w, &ex.markets, &acct, req, now)?;
            let o = &w.orders[idx];
            fx.created.push(o.uuid);
            let mut v = wire::order(o, false);
            if let Some(m) = v.as_object_mut() {
                m.remove("executed_funds");
            }
            Ok((201, v))
        }
        Ep::PostOrdersTest => {
            let o = matching::prepare(w, &ex.markets, &acct, new_order(p)?, now)?;
            let mut v = wire::order(&o, false);
            if let Some(m) = v.as_object_mut() {
                m.remove("executed_funds");
            }
            Ok((201, v))
        }
        Ep::DeleteOrder => {
            let i = find_order(w, &acct, p)?;
            if w.orders[i].state != OrdState::Wait {
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
            let mut idx: Vec<usize> = (0..w.orders.len())
                .filter(|&i| {
                    let o = &w.orders[i];
                    o.account == acct
                        && o.state == OrdState::Wait
                        && (side == "all" || o.side.as_str() == side)
                        && (pairs.is_empty() || pairs.contains(&o.market))
                        && (quotes.is_empty() || quotes.iter().any(|q| o.market.starts_with(&format!("{q}-"))))
                        && !excluded.contains(&o.market)
                })
                .collect();
            idx.sort_by_key(|&i| w.orders[i].created_at);
            if desc {
                idx.reverse();
            }
            idx.truncate(count);
            let mut done = Vec::new();
            for i in idx {
                if matching::cancel(w, i).is_ok() {
                    let o = &w.orders[i];
                    fx.cancelled.push(o.uuid);
                    let mut m = serde_json::Map::new();
                    m.insert("uuid".into(), json!(o.uuid.to_string()));
                    m.insert("market".into(), json!(o.market));
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
                        m.insert("market".into(), json!(o.market));
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
                    .filter(|x| state.map_or(true, |s| x.state.eq_ignore_ascii_case(s)))
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
            let page_items: Vec<Value> = items.into_iter().skip((page - 1) * limit).take(limit).map(|x| x.2).collect();
            let kind = if ep == Ep::Withdraws { "withdraws" } else { "deposits" };
            ok(json!(paged(w, &acct, kind, page_items, repeat_page, limit)))
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
            if !w.addresses.iter().any(|a| a.account == acct && a.currency == cur && a.address == address) {
                return Err(err(400, "withdraw_address_not_registered", "출금 허용 주소로 등록되지 않은 주소입니다."));
            }
            let fee = Decimal::new(5, 4);
            let b = w.accounts.entry(acct.clone()).or_default().bal(&cur);
            if b.balance < amount + fee {
                return Err(err(400, "insufficient_funds_withdraw", "출금 가능 금액이 부족합니다."));
            }
            b.balance -= amount + fee;
            b.locked += amount + fee;
            let x = Withdrawal {
                uuid: Uuid::new_v4(),
                account: acct.clone(),
                currency: cur,
                net_type: net,
                address,
                txid: None,
                state: "WAITING",
                created_at: now,
                done_at: None,
                amount,
                fee,
            };
            let v = wire::withdrawal(&x);
            if w.truth.leaked_access_key == key.access_key {
                w.truth.attacker_withdrawal_uuids.push(x.uuid);
            }
            w.withdrawals.push(x);
            Ok((201, v))
        }
        Ep::DeleteWithdrawCoin => {
            let u = first(p, "uuid").ok_or_else(|| err(400, "validation_error", "uuid is required"))?;
            let i = w
                .withdrawals
                .iter()
                .position(|x| x.account == acct && x.uuid.to_string() == u)
                .ok_or_else(|| err(404, "withdraw_not_found", "출금 내역을 찾지 못했습니다."))?;
            if w.withdrawals[i].state != "WAITING" {
                return Err(err(400, "validation_error", "this withdrawal can no longer be cancelled"));
            }
            w.withdrawals[i].state = "CANCELLED";
            let (cur, amt) = (w.withdrawals[i].currency.clone(), w.withdrawals[i].amount + w.withdrawals[i].fee);
            let b = w.accounts.entry(acct).or_default().bal(&cur);
            b.locked -= amt;
            b.balance += amt;
            let mut v = wire::withdrawal(&w.withdrawals[i]);
            if let Some(m) = v.as_object_mut() {
                m.insert("is_cancelable".into(), json!(false));
            }
            ok(v)
        }
        _ => Err(err(404, "not_found", "no such endpoint")),
    }
}

/// Remembers the last page per (account, list) and, under the repeat-page fault, prepends
/// the previous page's last items to this one.
fn paged(
    w: &mut World,
    acct: &str,
    kind: &str,
    mut items: Vec<Value>,
    repeat: bool,
    limit: usize,
) -> Vec<Value> {
    let key = (acct.to_string(), kind.to_string());
    if repeat {
        if let Some(prev) = w.last_pages.get(&key) {
            let mut out: Vec<Value> = prev.clone();
            out.append(&mut items);
            out.truncate(limit);
            items = out;
        }
    }
    let tail: Vec<Value> = items.iter().rev().take(3).rev().cloned().collect();
    if w.last_pages.len() > 10_000 {
        w.last_pages.clear();
    }
    w.last_pages.insert(key, tail);
    items
}

/// Parses a new order from request parameters.
pub fn new_order(p: &Params) -> Result<NewOrder, ApiErr> {
    let market = first(p, "market")
        .ok_or_else(|| err(400, "validation_error", "market is required"))?
        .to_string();
    let side = match first(p, "side") {
        Some("bid") => Side::Bid,
        Some("ask") => Side::Ask,
        _ => return Err(err(400, "validation_error", "side must be bid or ask")),
    };
    let ord_type = first(p, "ord_type")
        .and_then(OrdType::parse)
        .ok_or_else(|| {
            err(
                400,
                "validation_error",
                "ord_type must be limit, price, market or best",
            )
        })?;
    Ok(NewOrder {
        market,
        side,
        ord_type,
        price: dec_param(p, "price")?,
        volume: dec_param(p, "volume")?,
        identifier: first(p, "identifier")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        time_in_force: first(p, "time_in_force")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

fn markets_param<'a>(ex: &MockExchange, p: &'a Params, k: &str) -> Result<Vec<&'a str>, ApiErr> {
    let ms: Vec<&str> = first(p, k)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ms.is_empty() {
        return Err(qerr(400, &format!("{k} is required")));
    }
    for m in &ms {
        if ex.markets.get(m).is_none() {
            return Err(qerr(404, "Code not found"));
        }
    }
    Ok(ms)
}

/// Synthetic background volume for a market-minute (the reference path's own trading).
fn bg_volume(ex: &MockExchange, code: &str, minute: i64, price: Decimal) -> Decimal {
    let Some((mi, spec)) = ex.markets.get(code) else {
        return Decimal::ZERO;
    };
    let h =
        ((minute as u64).wrapping_mul(2_654_435_761) ^ (mi as u64 * 97) ^ ex.markets.seed) % 1000;
    let krw = spec.depth.level_krw * Decimal::from(h + 50) / Decimal::from(2000);
    matching::round_vol(krw / price.max(Decimal::new(1, 8)))
}

struct Candle {
    start: i64,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    vol: Decimal,
    value: Decimal,
    last_ms: i64,
}

fn candle(
    ex: &MockExchange,
    w: &World,
    code: &str,
    start_min: i64,
    unit: i64,
    now: DateTime<Utc>,
) -> Candle {
    let step = (unit / 48).max(1);
    let mut c = Candle {
        start: start_min,
        open: Decimal::ZERO,
        high: Decimal::ZERO,
        low: Decimal::MAX,
        close: Decimal::ZERO,
        vol: Decimal::ZERO,
        value: Decimal::ZERO,
        last_ms: 0,
    };
    let now_min = now.timestamp().div_euclid(60);
    let mut m = start_min;
    while m < start_min + unit && m <= now_min {
        let t = Utc.timestamp_opt(m * 60, 0).single().unwrap_or(now);
        let px = ex.markets.ref_price(code, t);
        if c.open.is_zero() {
            c.open = px;
        }
        c.high = c.high.max(px);
        c.low = c.low.min(px);
        c.close = px;
        let v = bg_volume(ex, code, m, px) * Decimal::from(step);
        c.vol += v;
        c.value += v * px;
        c.last_ms = m * 60_000 + 30_000;
        m += step;
    }
    if let Some(tape) = w.tape.get(code) {
        let from = start_min * 60_000;
        let to = (start_min + unit) * 60_000;
        for ((ms, _), t) in tape.range((from, 0)..(to, 0)) {
            c.high = c.high.max(t.price);
            c.low = c.low.min(t.price);
            c.vol += t.volume;
            c.value += t.volume * t.price;
            if *ms >= c.last_ms {
                c.close = t.price;
                c.last_ms = *ms;
            }
        }
    }
    if c.low == Decimal::MAX {
        c.low = c.open;
    }
    c
}

fn utc_naive(ms: i64) -> (String, String) {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    (
        t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        t.with_timezone(&wire::kst_offset())
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    )
}

fn public(ex: &MockExchange, ep: Ep, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiErr> {
    let w = ex.world();
    match ep {
        Ep::MarketAll => {
            let details = first(p, "isDetails") == Some("true");
            Ok(json!(ex
                .markets
                .specs
                .iter()
                .map(|m| if details {
                    json!({"market": m.code, "korean_name": m.korean_name, "english_name": m.english_name, "market_warning": "NONE"})
                } else {
                    json!({"market": m.code, "korean_name": m.korean_name, "english_name": m.english_name})
                })
                .collect::<Vec<_>>()))
        }
        Ep::Ticker => {
            let ms = markets_param(ex, p, "markets")?;
            let mut out = Vec::new();
            let day_start = now.timestamp().div_euclid(86_400) * 1440;
            let now_min = now.timestamp().div_euclid(60);
            for m in ms {
                let day = candle(ex, &w, m, day_start, now_min - day_start + 1, now);
                let prev = ex.markets.ref_price(
                    m,
                    Utc.timestamp_opt(day_start * 60 - 60, 0)
                        .single()
                        .unwrap_or(now),
                );
                let last = w
                    .tape
                    .get(m)
                    .and_then(|t| t.iter().next_back())
                    .filter(|((ms, _), _)| now.timestamp_millis() - ms < 120_000);
                let price = last
                    .map(|(_, t)| t.price)
                    .unwrap_or_else(|| ex.markets.ref_price(m, now));
                let change = price - prev;
                let rate = if prev.is_zero() {
                    Decimal::ZERO
                } else {
                    (change / prev).round_dp(8)
                };
                let ts = now.timestamp_millis();
                let (d_utc, t_utc) = (
                    now.format("%Y%m%d").to_string(),
                    now.format("%H%M%S").to_string(),
                );
                let k = now.with_timezone(&wire::kst_offset());
                out.push(json!({
                    "market": m, "trade_date": d_utc, "trade_time": t_utc,
                    "trade_date_kst": k.format("%Y%m%d").to_string(), "trade_time_kst": k.format("%H%M%S").to_string(),
                    "trade_timestamp": ts, "opening_price": wire::num(day.open), "high_price": wire::num(day.high.max(price)),
                    "low_price": wire::num(day.low.min(price)), "trade_price": wire::num(price), "prev_closing_price": wire::num(prev),
                    "change": if change > Decimal::ZERO { "RISE" } else if change < Decimal::ZERO { "FALL" } else { "EVEN" },
                    "change_price": wire::num(change.abs()), "change_rate": wire::num(rate.abs()),
                    "signed_change_price": wire::num(change), "signed_change_rate": wire::num(rate),
                    "trade_volume": wire::num(last.map(|(_, t)| t.volume).unwrap_or(Decimal::new(1, 2))),
                    "acc_trade_price": wire::num(day.value.round_dp(8)), "acc_trade_price_24h": wire::num(day.value.round_dp(8)),
                    "acc_trade_volume": wire::num(day.vol), "acc_trade_volume_24h": wire::num(day.vol),
                    "highest_52_week_price": wire::num(price * Decimal::new(15, 1)), "highest_52_week_date": "2026-03-14",
                    "lowest_52_week_price": wire::num(price * Decimal::new(6, 1)), "lowest_52_week_date": "2025-12-02",
                    "timestamp": ts,
                }));
            }
            Ok(json!(out))
        }
        Ep::Orderbook => {
            let ms = markets_param(ex, p, "markets")?;
            let mut out = Vec::new();
            for m in ms {
                let side = |s: Side| -> Vec<(Decimal, Decimal)> {
                    let mut agg: Vec<(Decimal, Decimal)> = ex.markets.lp_levels(m, s, now);
                    if let Some(b) = w.books.get(m) {
                        let rs = if s == Side::Ask { &b.asks } else { &b.bids };
                        for r in rs {
                            let v = w.orders[r.idx].remaining_volume;
                            match agg.iter_mut().find(|x| x.0 == r.price) {
                                Some(x) => x.1 += v,
                                None => agg.push((r.price, v)),
                            }
                        }
                    }
                    if s == Side::Ask {
                        agg.sort_by_key(|a| a.0);
                    } else {
                        agg.sort_by_key(|b| std::cmp::Reverse(b.0));
                    }
                    agg.truncate(15);
                    agg
                };
                let asks = side(Side::Ask);
                let bids = side(Side::Bid);
                let units: Vec<Value> = asks
                    .iter()
                    .zip(bids.iter())
                    .map(|(a, b)| json!({"ask_price": wire::num(a.0), "bid_price": wire::num(b.0), "ask_size": wire::num(a.1), "bid_size": wire::num(b.1)}))
                    .collect();
                out.push(json!({"market": m, "timestamp": now.timestamp_millis(),
                    "total_ask_size": wire::num(asks.iter().map(|x| x.1).sum()),
                    "total_bid_size": wire::num(bids.iter().map(|x| x.1).sum()),
                    "orderbook_units": units, "level": 0}));
            }
            Ok(json!(out))
        }
        Ep::Trades => {
            let m = markets_param(ex, p, "market")?[0];
            let count = int_param(p, "count", 1, 500).map_err(|e| qerr(400, &e.message))?;
            let to_ms = now.timestamp_millis();
            // Real fills from the tape, plus the reference path's background prints every 20 s.
            let mut v: Vec<(i64, u64, Decimal, Decimal, &str)> = w
                .tape
                .get(m)
                .map(|t| {
                    t.range(..(to_ms + 1, 0))
                        .rev()
                        .take(count)
                        .map(|((ms, s), t)| (*ms, *s + (1 << 40), t.price, t.volume, t.ask_bid))
                        .collect()
                })
                .unwrap_or_default();
            let mut t = to_ms - to_ms.rem_euclid(20_000);
            for _ in 0..count {
                let at = Utc.timestamp_millis_opt(t).single().unwrap_or(now);
                let px = ex.markets.ref_price(m, at);
                let side = if (t / 20_000) % 2 == 0 { "BID" } else { "ASK" };
                v.push((
                    t,
                    (t / 20_000) as u64,
                    px,
                    bg_volume(ex, m, t / 60_000, px),
                    side,
                ));
                t -= 20_000;
            }
            v.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
            v.truncate(count);
            let prev = ex.markets.ref_price(m, now - Duration::days(1));
            Ok(json!(v
                .iter()
                .map(|(ms, seq, px, vol, ab)| {
                    let at = Utc.timestamp_millis_opt(*ms).single().unwrap_or(now);
                    json!({"market": m, "trade_date_utc": at.format("%Y-%m-%d").to_string(),
                        "trade_time_utc": at.format("%H:%M:%S").to_string(), "timestamp": ms,
                        "trade_price": wire::num(*px), "trade_volume": wire::num(*vol),
                        "prev_closing_price": wire::num(prev), "change_price": wire::num(*px - prev),
                        "ask_bid": ab, "sequential_id": (*ms as u64) * 1000 + (seq % 1000)})
                })
                .collect::<Vec<_>>()))
        }
        Ep::Candles(unit) => {
            if ![1, 3, 5, 10, 15, 30, 60, 240].contains(&unit) {
                return Err(qerr(
                    400,
                    "unit must be one of 1, 3, 5, 10, 15, 30, 60, 240",
                ));
            }
            let m = markets_param(ex, p, "market")?[0];
            let count = int_param(p, "count", 1, 200).map_err(|e| qerr(400, &e.message))?;
            let to = match first(p, "to").filter(|s| !s.is_empty()) {
                Some(s) => parse_time(s).ok_or_else(|| qerr(400, "to: not a time"))?,
                None => now + Duration::minutes(unit as i64),
            };
            let u = unit as i64;
            let to_min = (to.timestamp_millis() - 1).div_euclid(60_000);
            let mut start = to_min - to_min.rem_euclid(u);
            let now_min = now.timestamp().div_euclid(60);
            while start > now_min {
                start -= u;
            }
            let mut out = Vec::new();
            for _ in 0..count {
                let c = candle(ex, &w, m, start, u, now);
                let (utc, kst) = utc_naive(c.start * 60_000);
                out.push(json!({"market": m, "candle_date_time_utc": utc, "candle_date_time_kst": kst,
                    "opening_price": wire::num(c.open), "high_price": wire::num(c.high), "low_price": wire::num(c.low),
                    "trade_price": wire::num(c.close), "timestamp": c.last_ms,
                    "candle_acc_trade_price": wire::num(c.value.round_dp(8)), "candle_acc_trade_volume": wire::num(c.vol),
                    "unit": unit}));
                start -= u;
            }
            Ok(json!(out))
        }
        _ => Err(qerr(404, "no such endpoint")),
    }
}

/// The live attacker's order path: the same key checks as a request (known, not revoked,
/// not expired, scope `make_orders`), the `order` rate limit, then the matching engine. The
/// order is logged in the request log and the ground truth.
pub(crate) fn internal_order(
    ex: &MockExchange,
    access_key: &str,
    req: NewOrder,
) -> Result<Uuid, ApiErr> {
    let now = ex.now();
    let key = ex.world().keys.get(access_key).cloned();
    let mut fx = Effects {
        access_key: Some(access_key.to_string()),
        ..Default::default()
    };
    let result = (|| {
        let key = key.ok_or_else(|| err(401, auth::INVALID_KEY.name, auth::INVALID_KEY.message))?;
        if key.revoked_at.is_some() {
            return Err(err(401, auth::INVALID_KEY.name, auth::INVALID_KEY.message));
        }
        if key.expire_at <= now {
            return Err(err(401, auth::EXPIRED_KEY.name, auth::EXPIRED_KEY.message));
        }
        if !key.scopes.iter().any(|s| s == "make_orders") {
            let e = auth::out_of_scope(ex.opts.out_of_scope_status);
            return Err(err(e.status, e.name, e.message));
        }
        if let Verdict::TooMany | Verdict::Blocked { .. } =
            ex.gate()
                .limiter
                .hit(ratelimit::ORDER, access_key, Instant::now())
        {
            return Err(err(429, "too_many_requests", "rate limited"));
        }
        let mut w = ex.world();
        let idx = matching::place(&mut w, &ex.markets, &key.account, req, now)?;
        let o = w.orders[idx].clone();
        w.record_attacker_order(o.uuid, now);
        let mut loss = o.paid_fee;
        for f in &o.trades {
            let r = ex.markets.ref_price(&f.market, now);
            loss += match f.side {
                Side::Bid => (f.price - r) * f.volume,
                Side::Ask => (r - f.price) * f.volume,
            };
        }
        w.add_loss(loss);
        Ok(o.uuid)
    })();
    let status = match &result {
        Ok(u) => {
            fx.created.push(*u);
            201
        }
        Err(e) => {
            fx.error = e.name.as_str().map(str::to_string);
            e.status
        }
    };
    log(
        ex,
        "POST",
        "/v1/orders (live attacker, in-process)",
        status,
        &fx,
        None,
    );
    result
}
