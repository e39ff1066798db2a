//! Binance's routes and the dispatcher: one fallback handler reads the request as Binance
//! does (GET parameters from the query only; POST and DELETE from the query and a form body,
//! the query winning a name sent in both), counts its weight against the caller's IP before
//! anything else, verifies a signed request's key and signature ([`super::auth`]), then
//! answers from [`super::market`], [`super::trade`] or [`super::wallet`].
//!
//! Every answer, errors included, carries the used weight of the budget the endpoint spends
//! (`X-MBX-USED-WEIGHT-1M` on `/api`, `X-SAPI-USED-IP-WEIGHT-1M` or `-UID-WEIGHT-1M` on
//! `/sapi`). Injected faults work as for every façade ([`crate::mock::http`]); an injected
//! server error is a 500 with `-1000`, and the request is not processed.

use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::auth::{self, first, Params, Signed};
use super::errors::{self, ApiErr};
use super::limits::{self, Cost};
use super::{market, trade, wallet};
use crate::mock::http::{self, Effects, Out};
use crate::mock::venue::keys::{KeyRec, Permission};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::ratelimit::Verdict;
use crate::mock::venue::Venue;

/// The façade's router (the drill API is mounted next to it by [`crate::mock::router`]).
pub fn router(venue: Arc<Venue>) -> Router {
    Router::new().fallback(handle).with_state(venue)
}

/// The endpoints the façade answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ep {
    Ping,
    Time,
    ExchangeInfo,
    Depth,
    Trades,
    Klines,
    AvgPrice,
    TickerPrice,
    Ticker24h,
    Account,
    GetOrder,
    OpenOrders,
    AllOrders,
    MyTrades,
    NewOrder,
    TestOrder,
    CancelOrder,
    CancelOpenOrders,
    NewOco,
    OpenOrderLists,
    CancelOrderList,
    ApiRestrictions,
    ApiTradingStatus,
    CoinConfig,
    AccountSnapshot,
    WithdrawHistory,
    DepositHistory,
    WithdrawAddresses,
    DeleteSubAccountKey,
    MarginPairs,
    IsolatedMarginPairs,
    FuturesExchangeInfo,
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Public,
    /// Signed, with a key allowed this.
    Signed(Permission),
}

/// The endpoint at (method, path).
pub fn route(method: &str, path: &str) -> Option<(Ep, Security)> {
    use Ep::*;
    use Permission::{Read, Trade};
    use Security::{Public, Signed};
    Some(match (method, path) {
        ("GET", "/api/v3/ping") => (Ping, Public),
        ("GET", "/api/v3/time") => (Time, Public),
        ("GET", "/api/v3/exchangeInfo") => (ExchangeInfo, Public),
        ("GET", "/api/v3/depth") => (Depth, Public),
        ("GET", "/api/v3/trades") => (Trades, Public),
        ("GET", "/api/v3/klines") => (Klines, Public),
        ("GET", "/api/v3/avgPrice") => (AvgPrice, Public),
        ("GET", "/api/v3/ticker/price") => (TickerPrice, Public),
        ("GET", "/api/v3/ticker/24hr") => (Ticker24h, Public),
        ("GET", "/api/v3/account") => (Account, Signed(Read)),
        ("GET", "/api/v3/order") => (GetOrder, Signed(Read)),
        ("GET", "/api/v3/openOrders") => (OpenOrders, Signed(Read)),
        ("GET", "/api/v3/allOrders") => (AllOrders, Signed(Read)),
        ("GET", "/api/v3/myTrades") => (MyTrades, Signed(Read)),
        ("POST", "/api/v3/order") => (NewOrder, Signed(Trade)),
        ("POST", "/api/v3/order/test") => (TestOrder, Signed(Trade)),
        ("DELETE", "/api/v3/order") => (CancelOrder, Signed(Trade)),
        ("DELETE", "/api/v3/openOrders") => (CancelOpenOrders, Signed(Trade)),
        ("POST", "/api/v3/orderList/oco") => (NewOco, Signed(Trade)),
        ("GET", "/api/v3/openOrderList") => (OpenOrderLists, Signed(Read)),
        ("DELETE", "/api/v3/orderList") => (CancelOrderList, Signed(Trade)),
        ("GET", "/sapi/v1/account/apiRestrictions") => (ApiRestrictions, Signed(Read)),
        ("GET", "/sapi/v1/account/apiTradingStatus") => (ApiTradingStatus, Signed(Read)),
        ("GET", "/sapi/v1/capital/config/getall") => (CoinConfig, Signed(Read)),
        ("GET", "/sapi/v1/accountSnapshot") => (AccountSnapshot, Signed(Read)),
        ("GET", "/sapi/v1/capital/withdraw/history") => (WithdrawHistory, Signed(Read)),
        ("GET", "/sapi/v1/capital/deposit/hisrec") => (DepositHistory, Signed(Read)),
        ("GET", "/sapi/v1/capital/withdraw/address/list") => (WithdrawAddresses, Signed(Read)),
        ("DELETE", "/sapi/v1/sub-account/subAccountApi") => (DeleteSubAccountKey, Signed(Trade)),
        ("GET", "/sapi/v1/margin/allPairs") => (MarginPairs, Signed(Read)),
        ("GET", "/sapi/v1/margin/isolated/allPairs") => (IsolatedMarginPairs, Signed(Read)),
        ("GET", "/fapi/v1/exchangeInfo") | ("GET", "/dapi/v1/exchangeInfo") => {
            (FuturesExchangeInfo, Public)
        }
        _ => return None,
    })
}

/// What a request to `ep` with these parameters costs (docs/exchanges/binance.md §4).
pub fn cost(ep: Ep, p: &Params) -> Cost {
    use Cost::*;
    let has = |k: &str| first(p, k).is_some_and(|v| !v.is_empty());
    match ep {
        Ep::Ping | Ep::Time => Weight(1),
        Ep::ExchangeInfo | Ep::Account | Ep::AllOrders => Weight(20),
        Ep::Depth => Weight(
            match first(p, "limit").and_then(|l| l.parse::<u32>().ok()) {
                None | Some(0..=100) => 5,
                Some(101..=500) => 25,
                Some(501..=1000) => 50,
                Some(_) => 250,
            },
        ),
        Ep::Trades => Weight(25),
        Ep::Klines | Ep::AvgPrice => Weight(2),
        Ep::TickerPrice => Weight(if has("symbol") { 2 } else { 4 }),
        Ep::Ticker24h => Weight(if has("symbol") {
            2
        } else if let Some(list) = first(p, "symbols") {
            match list.split(',').count() {
                0..=20 => 2 * list.split(',').count() as u32,
                21..=100 => 40,
                _ => 80,
            }
        } else {
            80
        }),
        Ep::GetOrder => Weight(4),
        Ep::OpenOrders => Weight(if has("symbol") { 6 } else { 80 }),
        Ep::OpenOrderLists => Weight(6),
        Ep::MyTrades => Weight(if has("orderId") { 5 } else { 20 }),
        Ep::NewOrder
        | Ep::TestOrder
        | Ep::CancelOrder
        | Ep::CancelOpenOrders
        | Ep::NewOco
        | Ep::CancelOrderList => Weight(1),
        Ep::ApiRestrictions | Ep::ApiTradingStatus | Ep::DepositHistory | Ep::MarginPairs => {
            SapiIp(1)
        }
        Ep::CoinConfig | Ep::WithdrawAddresses | Ep::IsolatedMarginPairs => SapiIp(10),
        Ep::AccountSnapshot => SapiIp(2400),
        Ep::WithdrawHistory => SapiUid(18_000),
        Ep::DeleteSubAccountKey => SapiUid(3000),
        Ep::FuturesExchangeInfo => Free,
    }
}

/// What a handler answers: a JSON value, or JSON text written directly (long lists).
pub enum Reply {
    Value(Value),
    Raw(String),
}

/// One request as the handlers see it.
pub struct Ctx<'a> {
    pub ex: &'a Venue,
    pub p: &'a Params,
    pub now: DateTime<Utc>,
    /// The verified key of a signed request.
    pub key: Option<&'a KeyRec>,
    pub fx: &'a mut Effects,
    /// The repeat-page fault is on for this request.
    pub repeat_page: bool,
    /// Headers the handler adds (order counts).
    pub headers: Vec<(&'static str, String)>,
}

impl Ctx<'_> {
    /// The key of a signed request (the dispatcher verified it before calling; `-2015` if a
    /// public route ever asked).
    pub fn key(&self) -> Result<&KeyRec, ApiErr> {
        self.key.ok_or_else(errors::rejected_key)
    }

    /// A parameter's value (None when absent or empty).
    pub fn get(&self, k: &str) -> Option<&str> {
        first(self.p, k).filter(|v| !v.is_empty())
    }

    /// The market named by `symbol` (`-1102` when missing, `-1121` when unknown).
    pub fn market(&self) -> Result<&MarketConf, ApiErr> {
        let s = self
            .get("symbol")
            .ok_or_else(|| errors::mandatory("symbol"))?;
        self.ex
            .markets
            .get(s)
            .map(|m| m.1)
            .ok_or_else(errors::invalid_symbol)
    }

    /// An integer parameter (`-1100` when not digits).
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiErr> {
        match self.get(k) {
            None => Ok(None),
            Some(s) if s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 18 => Ok(Some(
                s.parse().map_err(|_| errors::illegal(k, "^[0-9]{1,18}$"))?,
            )),
            Some(_) => Err(errors::illegal(k, "^[0-9]{1,18}$")),
        }
    }

    /// A time parameter in epoch milliseconds.
    pub fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiErr> {
        match self.int(k)? {
            None => Ok(None),
            Some(ms) => super::wire::from_ms(ms)
                .map(Some)
                .ok_or_else(|| errors::bad_value(k)),
        }
    }

    /// `limit` between 1 and `max` (`default` when absent).
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiErr> {
        match self.int("limit")? {
            None => Ok(default),
            Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
            Some(_) => Err(errors::bad_value("limit")),
        }
    }
}

async fn handle(State(ex): State<Arc<Venue>>, req: Request) -> Response {
    let r = http::receive(req).await;
    // Bodies are size-limited: one over the limit is refused, never processed as if empty.
    let Some(bytes) = &r.body else {
        http::log_refused_body(&ex, &r);
        return errors::err(413, -1000, "request body over 1 MiB (or unreadable)")
            .out()
            .into_response();
    };
    let api_key = r.header("x-mbx-apikey");
    let raw_body = String::from_utf8_lossy(bytes).into_owned();
    let (decision, fault) = http::inject(&ex, &r.method, &r.path).await;
    if decision.timeout {
        return http::hold(&ex, &r.method, &r.path, fault).await;
    }
    let mut fx = Effects::default();
    let out = if decision.error {
        fx.error = Some("-1000".into());
        errors::unknown(
            "An unknown error occurred while processing the request. (injected server error)",
        )
        .out()
    } else {
        let req = Incoming {
            method: &r.method,
            path: &r.path,
            raw_query: &r.query,
            raw_body: &raw_body,
            api_key: api_key.as_deref(),
            ip: r.ip,
            repeat_page: decision.repeat_page,
        };
        process(&ex, &req, &mut fx)
    };
    http::finish(&ex, &r, out, &fx, &decision, fault)
}

/// A request as it arrived.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    pub raw_body: &'a str,
    pub api_key: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// The repeat-page fault was drawn.
    pub repeat_page: bool,
}

/// Counts `units` of `cost`'s budget for `caller`: the used-weight header, or the 429/418.
fn spend(ex: &Venue, cost: Cost, caller: &str) -> Result<Option<(&'static str, String)>, Out> {
    let Some((budget, header)) = cost.budget() else {
        return Ok(None);
    };
    let now = Instant::now();
    let mut gate = ex.gate();
    let verdict = if ex.opts.rate_limits {
        gate.limiter.hit(budget, caller, cost.units(), now)
    } else {
        Verdict::Allowed {
            remaining: budget.limit,
        }
    };
    let (used, resets) = gate.limiter.usage(budget, caller, now);
    let used_header = (header, used.to_string());
    match verdict {
        Verdict::Allowed { .. } => Ok(Some(used_header)),
        Verdict::TooMany => {
            let (_, _, words) = limits::interval(budget);
            let retry = resets.as_secs_f64().ceil().max(1.0) as u64;
            Err(errors::too_much_weight(budget.limit, words)
                .out()
                .header(header, used.to_string())
                .header("retry-after", retry.to_string()))
        }
        Verdict::Blocked { seconds } => {
            let until = chrono::Utc::now().timestamp_millis() + seconds as i64 * 1000;
            Err(errors::banned(until)
                .out()
                .header(header, used.to_string())
                .header("retry-after", seconds.to_string()))
        }
    }
}

fn with(out: Out, h: &Option<(&'static str, String)>) -> Out {
    match h {
        Some((k, v)) => {
            let out = out.header(k, v.clone());
            if *k == "x-mbx-used-weight-1m" {
                out.header("x-mbx-used-weight", v.clone())
            } else {
                out
            }
        }
        None => out,
    }
}

/// Answers one request (everything but the faults).
pub fn process(ex: &Venue, req: &Incoming<'_>, fx: &mut Effects) -> Out {
    let ipkey = req
        .ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| "local".into());
    let Some((ep, security)) = route(req.method, req.path) else {
        fx.error = Some("not_found".into());
        return errors::err(
            404,
            -1000,
            format!("{} {}: no such endpoint", req.method, req.path),
        )
        .out();
    };
    // GET takes its parameters from the query only.
    let parsed = auth::parse_pairs(req.raw_query).and_then(|q| {
        if req.method == "GET" {
            Ok(q)
        } else {
            auth::parse_pairs(req.raw_body).map(|b| auth::merge(q, b))
        }
    });
    let empty = Params::new();
    let c = cost(ep, parsed.as_ref().unwrap_or(&empty));
    // IP budgets are spent before the key is looked at; a UID budget once the account is known.
    let ip_cost = if matches!(c, Cost::SapiUid(_)) {
        Cost::SapiIp(0)
    } else {
        c
    };
    let mut used = match spend(ex, ip_cost, &ipkey) {
        Ok(h) => h,
        Err(out) => {
            fx.error = Some(out.status.to_string());
            return out;
        }
    };
    let params = match parsed {
        Ok(p) => p,
        Err(e) => {
            fx.error = Some(e.log_name());
            return with(e.out(), &used);
        }
    };
    let now = ex.now();
    let key = match security {
        Security::Public => None,
        Security::Signed(need) => {
            let signed = Signed {
                api_key: req.api_key,
                raw_query: req.raw_query,
                raw_body: if req.method == "GET" {
                    ""
                } else {
                    req.raw_body
                },
                params: &params,
                ip: req.ip,
                need,
            };
            let lookup = |ak: &str| ex.world().keys.get(ak).cloned();
            match auth::authenticate(&signed, lookup, now) {
                Ok(k) => Some(k),
                Err((e, ak)) => {
                    fx.access_key = ak;
                    fx.error = Some(e.log_name());
                    return with(e.out(), &used);
                }
            }
        }
    };
    if let Some(k) = &key {
        fx.access_key = Some(k.access_key.clone());
        if matches!(c, Cost::SapiUid(_)) {
            used = match spend(ex, c, &k.account) {
                Ok(h) => h,
                Err(out) => {
                    fx.error = Some(out.status.to_string());
                    return out;
                }
            };
        }
    }
    let mut ctx = Ctx {
        ex,
        p: &params,
        now,
        key: key.as_ref(),
        fx,
        repeat_page: req.repeat_page,
        headers: Vec::new(),
    };
    let result = dispatch(ep, &mut ctx);
    let headers = std::mem::take(&mut ctx.headers);
    let mut out = match result {
        Ok(Reply::Value(v)) => Out::json(200, &v),
        Ok(Reply::Raw(s)) => Out::raw_json(200, s),
        Err(e) => {
            ctx.fx.error = Some(e.log_name());
            e.out()
        }
    };
    for (k, v) in headers {
        out = out.header(k, v);
    }
    with(out, &used)
}

fn dispatch(ep: Ep, c: &mut Ctx<'_>) -> Result<Reply, ApiErr> {
    let v = |r: Result<Value, ApiErr>| r.map(Reply::Value);
    match ep {
        Ep::Ping => Ok(Reply::Value(Value::Object(Default::default()))),
        Ep::Time => Ok(Reply::Value(
            serde_json::json!({"serverTime": c.now.timestamp_millis()}),
        )),
        Ep::ExchangeInfo => v(market::exchange_info(c)),
        Ep::Depth => v(market::depth(c)),
        Ep::Trades => v(market::trades(c)),
        Ep::Klines => v(market::klines(c)),
        Ep::AvgPrice => v(market::avg_price(c)),
        Ep::TickerPrice => v(market::ticker_price(c)),
        Ep::Ticker24h => v(market::ticker_24h(c)),
        Ep::FuturesExchangeInfo => v(Ok(market::futures_exchange_info(c))),
        Ep::Account => v(trade::account(c)),
        Ep::GetOrder => v(trade::get_order(c)),
        Ep::OpenOrders => trade::open_orders(c),
        Ep::AllOrders => trade::all_orders(c),
        Ep::MyTrades => trade::my_trades(c),
        Ep::NewOrder => v(trade::new_order(c, false)),
        Ep::TestOrder => v(trade::new_order(c, true)),
        Ep::CancelOrder => v(trade::cancel_order(c)),
        Ep::CancelOpenOrders => v(trade::cancel_open_orders(c)),
        Ep::NewOco => v(trade::new_oco(c)),
        Ep::OpenOrderLists => v(trade::open_order_lists(c)),
        Ep::CancelOrderList => v(trade::cancel_order_list(c)),
        Ep::ApiRestrictions => v(wallet::api_restrictions(c)),
        Ep::ApiTradingStatus => v(Ok(wallet::api_trading_status(c))),
        Ep::CoinConfig => v(wallet::coin_config(c)),
        Ep::AccountSnapshot => v(wallet::account_snapshot(c)),
        Ep::WithdrawHistory => wallet::withdraw_history(c),
        Ep::DepositHistory => wallet::deposit_history(c),
        Ep::WithdrawAddresses => v(wallet::withdraw_addresses(c)),
        Ep::DeleteSubAccountKey => v(wallet::delete_sub_account_key(c)),
        Ep::MarginPairs | Ep::IsolatedMarginPairs => Ok(Reply::Value(Value::Array(Vec::new()))),
    }
}
