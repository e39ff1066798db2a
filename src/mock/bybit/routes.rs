//! Bybit's routes and the dispatcher: one fallback handler reads a request as Bybit v5 does
//! (GET parameters from the query, POST parameters from a JSON body), counts it against the
//! caller's IP before anything else, verifies a signed request's headers ([`super::auth`]),
//! counts it against the endpoint's per-UID budget, then answers from [`super::market`],
//! [`super::trade`] or [`super::wallet`] inside Bybit's envelope.
//!
//! Injected faults work as for every façade ([`crate::mock::http`]); an injected server
//! error is `retCode` 10016 and the request is not processed; an injected rate-limit storm
//! answers 10006 to every request while it lasts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::auth::{self, Signed};
use super::errors::{self, ApiErr};
use super::limits;
use super::trade::Conditional;
use super::{market, trade, wallet};
use crate::mock::http::{self, Effects, Out};
use crate::mock::venue::keys::{KeyRec, Permission};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::ratelimit::{Budget, Verdict};
use crate::mock::venue::Venue;

/// What the façade keeps next to the venue: the conditional orders it holds (the venue
/// matches plain orders only) and the IPs banned for exceeding the IP limit.
pub struct Shared {
    pub ex: Arc<Venue>,
    pub conditionals: Mutex<Vec<Conditional>>,
    ip_bans: Mutex<HashMap<String, Instant>>,
}

impl Shared {
    pub fn new(ex: Arc<Venue>) -> Arc<Shared> {
        Arc::new(Shared {
            ex,
            conditionals: Mutex::new(Vec::new()),
            ip_bans: Mutex::new(HashMap::new()),
        })
    }

    /// The conditional orders (a poisoned lock still yields them).
    pub fn conditionals(&self) -> std::sync::MutexGuard<'_, Vec<Conditional>> {
        self.conditionals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The façade's router (the drill API is mounted next to it by [`crate::mock::router`]).
pub fn router(venue: Arc<Venue>) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(Shared::new(venue))
}

/// The endpoints the façade answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ep {
    Time,
    Instruments,
    Tickers,
    Kline,
    Orderbook,
    WalletBalance,
    AccountInfo,
    CoinInfo,
    QueryApi,
    UpdateApi,
    DeleteApi,
    OrderCreate,
    OrderCancel,
    OrderCancelAll,
    OrderRealtime,
    OrderHistory,
    ExecutionList,
    WithdrawRecord,
    DepositRecord,
    WithdrawCreate,
    WithdrawCancel,
    WithdrawAddress,
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
    use Permission::{Read, Trade, Withdraw};
    use Security::{Public, Signed};
    Some(match (method, path) {
        ("GET", "/v5/market/time") => (Time, Public),
        ("GET", "/v5/market/instruments-info") => (Instruments, Public),
        ("GET", "/v5/market/tickers") => (Tickers, Public),
        ("GET", "/v5/market/kline") => (Kline, Public),
        ("GET", "/v5/market/orderbook") => (Orderbook, Public),
        ("GET", "/v5/account/wallet-balance") => (WalletBalance, Signed(Read)),
        ("GET", "/v5/account/info") => (AccountInfo, Signed(Read)),
        ("GET", "/v5/asset/coin/query-info") => (CoinInfo, Signed(Read)),
        ("GET", "/v5/user/query-api") => (QueryApi, Signed(Read)),
        ("POST", "/v5/user/update-api") => (UpdateApi, Signed(Read)),
        ("POST", "/v5/user/delete-api") => (DeleteApi, Signed(Read)),
        ("POST", "/v5/order/create") => (OrderCreate, Signed(Trade)),
        ("POST", "/v5/order/cancel") => (OrderCancel, Signed(Trade)),
        ("POST", "/v5/order/cancel-all") => (OrderCancelAll, Signed(Trade)),
        ("GET", "/v5/order/realtime") => (OrderRealtime, Signed(Read)),
        ("GET", "/v5/order/history") => (OrderHistory, Signed(Read)),
        ("GET", "/v5/execution/list") => (ExecutionList, Signed(Read)),
        ("GET", "/v5/asset/withdraw/query-record") => (WithdrawRecord, Signed(Read)),
        ("GET", "/v5/asset/deposit/query-record") => (DepositRecord, Signed(Read)),
        ("POST", "/v5/asset/withdraw/create") => (WithdrawCreate, Signed(Withdraw)),
        ("POST", "/v5/asset/withdraw/cancel") => (WithdrawCancel, Signed(Withdraw)),
        ("GET", "/v5/asset/withdraw/query-address") => (WithdrawAddress, Signed(Withdraw)),
        _ => return None,
    })
}

/// The per-UID budget of a signed endpoint (None for public ones).
pub fn budget(ep: Ep) -> Option<Budget> {
    use Ep::*;
    Some(match ep {
        Time | Instruments | Tickers | Kline | Orderbook => return None,
        WalletBalance => limits::WALLET_BALANCE,
        AccountInfo => limits::ACCOUNT_INFO,
        CoinInfo => limits::COIN_INFO,
        QueryApi => limits::QUERY_API,
        UpdateApi => limits::UPDATE_API,
        DeleteApi => limits::DELETE_API,
        OrderCreate => limits::ORDER_CREATE,
        OrderCancel => limits::ORDER_CANCEL,
        OrderCancelAll => limits::ORDER_CANCEL_ALL,
        OrderRealtime => limits::ORDER_REALTIME,
        OrderHistory => limits::ORDER_HISTORY,
        ExecutionList => limits::EXECUTION_LIST,
        WithdrawRecord => limits::WITHDRAW_RECORD,
        DepositRecord => limits::DEPOSIT_RECORD,
        WithdrawCreate => limits::WITHDRAW_CREATE,
        WithdrawCancel => limits::WITHDRAW_CANCEL,
        WithdrawAddress => limits::WITHDRAW_ADDRESS,
    })
}

/// Decoded parameters in the order sent (a JSON body's scalars as text).
pub type Params = Vec<(String, String)>;

/// One request as the handlers see it.
pub struct Ctx<'a> {
    pub ex: &'a Venue,
    pub shared: &'a Shared,
    pub p: &'a Params,
    /// The JSON body of a POST (objects such as `permissions` are read from it).
    pub body: &'a Value,
    pub now: DateTime<Utc>,
    /// The verified key of a signed request.
    pub key: Option<&'a KeyRec>,
    /// The caller's address.
    pub ip: Option<IpAddr>,
    pub fx: &'a mut Effects,
    /// The repeat-page fault is on for this request.
    pub repeat_page: bool,
}

impl Ctx<'_> {
    /// The key of a signed request (10003 if a public route ever asked).
    pub fn key(&self) -> Result<&KeyRec, ApiErr> {
        self.key.ok_or_else(errors::invalid_key)
    }

    /// A parameter's value (None when absent or empty).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.p
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// `category`: true for `spot`, false for a derivatives category the mock lists nothing
    /// in; 10001 when missing or unknown.
    pub fn spot(&self) -> Result<bool, ApiErr> {
        match self.get("category") {
            Some("spot") => Ok(true),
            Some("linear" | "inverse" | "option") => Ok(false),
            Some(_) => Err(errors::bad_param("category")),
            None => Err(errors::params("params error: category is required")),
        }
    }

    /// The market named by `symbol` (`missing` when absent, 170121 when unknown).
    pub fn market(&self) -> Result<&MarketConf, ApiErr> {
        let s = self.get("symbol").ok_or_else(|| errors::empty("symbol"))?;
        self.ex
            .markets
            .get(s)
            .map(|m| m.1)
            .ok_or_else(errors::bad_symbol)
    }

    /// An integer parameter (10001 when not digits).
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiErr> {
        match self.get(k) {
            None => Ok(None),
            Some(s) if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(s.parse().map_err(|_| errors::bad_param(k))?))
            }
            Some(_) => Err(errors::bad_param(k)),
        }
    }

    /// A time parameter in epoch milliseconds.
    pub fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiErr> {
        match self.int(k)? {
            None => Ok(None),
            Some(ms) => super::wire::from_ms(ms)
                .map(Some)
                .ok_or_else(|| errors::bad_param(k)),
        }
    }

    /// `limit` between 1 and `max` (`default` when absent).
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiErr> {
        match self.int("limit")? {
            None => Ok(default),
            Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
            Some(_) => Err(errors::bad_param("limit")),
        }
    }

    /// The envelope around a successful `result`.
    pub fn ok(&self, result: Value) -> Value {
        errors::envelope(0, "OK", result, json!({}), self.now.timestamp_millis())
    }
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let ex = sh.ex.clone();
    let r = http::receive(req).await;
    let now_ms = ex.now().timestamp_millis();
    let Some(bytes) = &r.body else {
        http::log_refused_body(&ex, &r);
        return ApiErr {
            status: 413,
            code: 10001,
            msg: "request body over 1 MiB (or unreadable)".into(),
        }
        .out(now_ms)
        .into_response();
    };
    let raw_body = String::from_utf8_lossy(bytes).into_owned();
    let (decision, fault) = http::inject(&ex, &r.method, &r.path).await;
    if decision.timeout {
        return http::hold(&ex, &r.method, &r.path, fault).await;
    }
    let mut fx = Effects::default();
    let out = if decision.error {
        let e = errors::server_error();
        fx.error = Some(e.log_name());
        e.out(now_ms)
    } else {
        let h = |n: &str| r.header(n);
        let (key, ts, recv, sign) = (
            h("x-bapi-api-key"),
            h("x-bapi-timestamp"),
            h("x-bapi-recv-window"),
            h("x-bapi-sign"),
        );
        let req = Incoming {
            method: &r.method,
            path: &r.path,
            raw_query: &r.query,
            raw_body: &raw_body,
            api_key: key.as_deref(),
            timestamp: ts.as_deref(),
            recv_window: recv.as_deref(),
            sign: sign.as_deref(),
            ip: r.ip,
            repeat_page: decision.repeat_page,
        };
        process(&sh, &req, &mut fx)
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
    pub timestamp: Option<&'a str>,
    pub recv_window: Option<&'a str>,
    pub sign: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// The repeat-page fault was drawn.
    pub repeat_page: bool,
}

/// The parameters of a request: the query's pairs (GET) or the JSON body's scalar members
/// (POST; an empty body is `{}`), and the body itself.
fn parse(req: &Incoming<'_>) -> Result<(Params, Value), ApiErr> {
    if req.method == "GET" {
        let mut p: Params = Vec::new();
        for (k, v) in url::form_urlencoded::parse(req.raw_query.as_bytes()) {
            if !p.iter().any(|(a, _)| *a == k) {
                p.push((k.into_owned(), v.into_owned()));
            }
        }
        return Ok((p, Value::Object(Default::default())));
    }
    let text = req.raw_body.trim();
    let body: Value = if text.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(text)
            .map_err(|_| errors::params("params error: the body is not JSON"))?
    };
    let Value::Object(m) = &body else {
        return Err(errors::params(
            "params error: the body is not a JSON object",
        ));
    };
    let p = http::scalar_members(m);
    Ok((p, body))
}

/// The three limit headers of a UID budget.
fn limit_headers(out: Out, budget: Budget, remaining: u32, reset_ms: i64) -> Out {
    out.header("x-bapi-limit", budget.limit.to_string())
        .header("x-bapi-limit-status", remaining.to_string())
        .header("x-bapi-limit-reset-timestamp", reset_ms.to_string())
}

/// Counts the request against the IP limit: None when allowed, else the 403.
fn ip_gate(sh: &Shared, ip: &str, now_ms: i64) -> Option<Out> {
    let ex = &sh.ex;
    if !ex.opts.rate_limits {
        return None;
    }
    let now = Instant::now();
    {
        let mut bans = sh.ip_bans.lock().unwrap_or_else(|e| e.into_inner());
        match bans.get(ip) {
            Some(until) if now < *until => {
                return Some(ip_refusal(*until - now));
            }
            Some(_) => {
                bans.remove(ip);
            }
            None => {}
        }
    }
    let mut gate = ex.gate();
    if gate.limiter.storm_until.is_some_and(|u| now < u) {
        return Some(errors::too_many_visits().out(now_ms));
    }
    match gate.limiter.hit(limits::IP, ip, 1, now) {
        Verdict::Allowed { .. } => None,
        _ => {
            drop(gate);
            sh.ip_bans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ip.to_string(), now + limits::IP_BAN);
            Some(ip_refusal(limits::IP_BAN))
        }
    }
}

fn ip_refusal(left: std::time::Duration) -> Out {
    Out::text(403, "403 Forbidden: access too frequent").header(
        "retry-after",
        left.as_secs_f64().ceil().max(1.0).to_string(),
    )
}

/// Answers one request (everything but the faults).
pub fn process(sh: &Shared, req: &Incoming<'_>, fx: &mut Effects) -> Out {
    let ex = &*sh.ex;
    let now = ex.now();
    let now_ms = now.timestamp_millis();
    let ipkey = req
        .ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| "local".into());
    if let Some(out) = ip_gate(sh, &ipkey, now_ms) {
        fx.error = Some(if out.status == 403 {
            "403".into()
        } else {
            "10006".into()
        });
        return out;
    }
    let Some((ep, security)) = route(req.method, req.path) else {
        let e = errors::no_route(req.method, req.path);
        fx.error = Some("not_found".into());
        return e.out(now_ms);
    };
    let (params, body) = match parse(req) {
        Ok(x) => x,
        Err(e) => {
            fx.error = Some(e.log_name());
            return e.out(now_ms);
        }
    };
    let key = match security {
        Security::Public => None,
        Security::Signed(need) => {
            let signed = Signed {
                api_key: req.api_key,
                timestamp: req.timestamp,
                recv_window: req.recv_window,
                sign: req.sign,
                payload: if req.method == "GET" {
                    req.raw_query
                } else {
                    req.raw_body
                },
                ip: req.ip,
                need,
            };
            let lookup = |ak: &str| ex.world().keys.get(ak).cloned();
            match auth::authenticate(&signed, lookup, now) {
                Ok(k) => Some(k),
                Err((e, ak)) => {
                    fx.access_key = ak;
                    fx.error = Some(e.log_name());
                    return e.out(now_ms);
                }
            }
        }
    };
    let mut limit = None;
    if let (Some(k), Some(b)) = (&key, budget(ep)) {
        fx.access_key = Some(k.access_key.clone());
        let t = Instant::now();
        let mut gate = ex.gate();
        let verdict = if ex.opts.rate_limits {
            gate.limiter.hit(b, &k.account, 1, t)
        } else {
            Verdict::Allowed { remaining: b.limit }
        };
        let (used, resets) = gate.limiter.usage(b, &k.account, t);
        drop(gate);
        let remaining = b.limit.saturating_sub(used);
        match verdict {
            Verdict::Allowed { .. } => limit = Some((b, remaining, now_ms)),
            _ => {
                let e = errors::too_many_visits();
                fx.error = Some(e.log_name());
                let reset = now_ms + resets.as_millis() as i64;
                return limit_headers(e.out(now_ms), b, 0, reset);
            }
        }
    }
    let mut ctx = Ctx {
        ex,
        shared: sh,
        p: &params,
        body: &body,
        now,
        key: key.as_ref(),
        ip: req.ip,
        fx,
        repeat_page: req.repeat_page,
    };
    let out = match dispatch(ep, &mut ctx) {
        Ok(v) => Out::json_spliced(200, &v, ctx.fx.raw_list.take()),
        Err(e) => {
            ctx.fx.error = Some(e.log_name());
            e.out(now_ms)
        }
    };
    match limit {
        Some((b, remaining, reset)) => limit_headers(out, b, remaining, reset),
        None => out,
    }
}

fn dispatch(ep: Ep, c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let result = match ep {
        Ep::Time => {
            let s = c.now.timestamp();
            json!({"timeSecond": s.to_string(),
                "timeNano": format!("{}", c.now.timestamp_nanos_opt().unwrap_or(s * 1_000_000_000))})
        }
        Ep::Instruments => market::instruments(c)?,
        Ep::Tickers => market::tickers(c)?,
        Ep::Kline => market::kline(c)?,
        Ep::Orderbook => market::orderbook(c)?,
        Ep::WalletBalance => wallet::wallet_balance(c)?,
        Ep::AccountInfo => wallet::account_info(c),
        Ep::CoinInfo => wallet::coin_info(c)?,
        Ep::QueryApi => wallet::query_api(c)?,
        Ep::UpdateApi => wallet::update_api(c)?,
        Ep::DeleteApi => wallet::delete_api(c)?,
        Ep::OrderCreate => trade::create(c)?,
        Ep::OrderCancel => trade::cancel(c)?,
        Ep::OrderCancelAll => trade::cancel_all(c)?,
        Ep::OrderRealtime => trade::realtime(c)?,
        Ep::OrderHistory => trade::history(c)?,
        Ep::ExecutionList => trade::executions(c)?,
        Ep::WithdrawRecord => wallet::withdrawals(c)?,
        Ep::DepositRecord => wallet::deposits(c)?,
        Ep::WithdrawCreate => wallet::withdraw_create(c)?,
        Ep::WithdrawCancel => wallet::withdraw_cancel(c)?,
        Ep::WithdrawAddress => wallet::withdraw_addresses(c)?,
    };
    Ok(c.ok(result))
}
