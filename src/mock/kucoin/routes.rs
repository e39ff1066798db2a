//! KuCoin's routes and the dispatcher: one fallback handler reads a request as KuCoin does
//! (GET and DELETE parameters from the query, POST parameters from a JSON body, ids in the
//! path), verifies a signed request's headers ([`super::auth`]), draws the endpoint's weight
//! from its resource pool ([`super::limits`]: per IP for public endpoints, per account for
//! signed ones), then answers from [`super::market`], [`super::trade`] or [`super::wallet`]
//! in KuCoin's envelope with the pool's `gw-ratelimit-*` headers.
//!
//! The futures host's `GET /api/v1/contracts/active` answers an empty list (the mock is spot
//! only), so a client that loads every market type, as ccxt does by default, finds none.
//!
//! Injected faults work as for every façade ([`crate::mock::http`]); an injected server
//! error is HTTP 500 `500000` and the request is not processed; an injected rate-limit storm
//! answers 429000 to every request while it lasts.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::auth::{self, Signed};
use super::errors::{self, ApiErr};
use super::limits;
use super::trade::Stop;
use super::{market, trade, wallet};
use crate::mock::http::{self, Effects, Out};
use crate::mock::venue::keys::{KeyRec, Permission};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::ratelimit::{Budget, Verdict};
use crate::mock::venue::Venue;

/// What the façade keeps next to the venue: the stop orders it holds (the venue matches plain
/// orders only) and the venue positions of orders placed through the classic endpoints.
pub struct Shared {
    pub ex: Arc<Venue>,
    stops: Mutex<Vec<Stop>>,
    classic: Mutex<HashSet<usize>>,
}

impl Shared {
    pub fn new(ex: Arc<Venue>) -> Arc<Shared> {
        Arc::new(Shared {
            ex,
            stops: Mutex::new(Vec::new()),
            classic: Mutex::new(HashSet::new()),
        })
    }

    /// The stop orders (a poisoned lock still yields them).
    pub fn stops(&self) -> MutexGuard<'_, Vec<Stop>> {
        self.stops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The venue positions of classic orders.
    pub fn classic(&self) -> MutexGuard<'_, HashSet<usize>> {
        self.classic.lock().unwrap_or_else(|e| e.into_inner())
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
    Timestamp,
    Status,
    Symbols,
    Currencies,
    Currency,
    AllTickers,
    Level1,
    Stats,
    Candles,
    Contracts,
    AccountMode,
    MarginSymbols,
    IsolatedSymbols,
    ApiKey,
    Accounts,
    HfOpened,
    HfCreate,
    HfActive,
    HfActiveSymbols,
    HfDone,
    HfGet,
    HfGetByClient,
    HfCancelAll,
    HfCancelSymbol,
    HfCancel,
    HfCancelByClient,
    HfFills,
    Create,
    List,
    Get,
    GetByClient,
    CancelAll,
    Cancel,
    Fills,
    StopCreate,
    StopList,
    StopGet,
    StopCancelMany,
    StopCancel,
    Withdrawals,
    Deposits,
    WithdrawalCreate,
    WithdrawalCancel,
    SubKeyDelete,
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Public,
    /// Signed, with a key allowed this.
    Signed(Permission),
}

/// A matched route: the endpoint, who may call it, its pool and weight, the id in its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub ep: Ep,
    pub security: Security,
    pub pool: Budget,
    pub weight: u32,
    pub id: Option<String>,
}

/// The endpoint at (method, path).
pub fn route(method: &str, path: &str) -> Option<Route> {
    use limits::{MANAGEMENT as M, PUBLIC as P, SPOT as S};
    use Ep::*;
    use Permission::{Read, Trade, Withdraw};
    use Security::{Public, Signed};
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = |i: usize| seg.get(i).map(|s| s.to_string());
    let r = |ep, security, pool, weight, id| {
        Some(Route {
            ep,
            security,
            pool,
            weight,
            id,
        })
    };
    match (method, seg.as_slice()) {
        ("GET", ["api", "v1", "timestamp"]) => r(Timestamp, Public, P, 3, None),
        ("GET", ["api", "v1", "status"]) => r(Status, Public, P, 3, None),
        ("GET", ["api", "v2", "symbols"]) => r(Symbols, Public, P, 4, None),
        ("GET", ["api", "v3", "currencies"]) => r(Currencies, Public, P, 3, None),
        ("GET", ["api", "v3", "currencies", _]) => r(Currency, Public, P, 3, id(3)),
        ("GET", ["api", "v1", "market", "allTickers"]) => r(AllTickers, Public, P, 15, None),
        ("GET", ["api", "v1", "market", "orderbook", "level1"]) => r(Level1, Public, P, 2, None),
        ("GET", ["api", "v1", "market", "stats"]) => r(Stats, Public, P, 15, None),
        ("GET", ["api", "v1", "market", "candles"]) => r(Candles, Public, P, 3, None),
        ("GET", ["api", "v1", "contracts", "active"]) => r(Contracts, Public, P, 3, None),
        ("GET", ["api", "ua", "v1", "account", "mode"]) => r(AccountMode, Signed(Read), M, 5, None),
        ("GET", ["api", "v3", "margin", "symbols"]) => r(MarginSymbols, Signed(Read), S, 3, None),
        ("GET", ["api", "v1", "isolated", "symbols"]) => {
            r(IsolatedSymbols, Signed(Read), S, 20, None)
        }
        ("GET", ["api", "v1", "user", "api-key"]) => r(ApiKey, Signed(Read), M, 20, None),
        ("GET", ["api", "v1", "accounts"]) => r(Accounts, Signed(Read), M, 5, None),
        ("GET", ["api", "v1", "hf", "accounts", "opened"]) => {
            r(HfOpened, Signed(Read), S, 30, None)
        }
        ("POST", ["api", "v1", "hf", "orders"]) => r(HfCreate, Signed(Trade), S, 1, None),
        ("GET", ["api", "v1", "hf", "orders", "active"]) => r(HfActive, Signed(Read), S, 2, None),
        ("GET", ["api", "v1", "hf", "orders", "active", "symbols"]) => {
            r(HfActiveSymbols, Signed(Trade), S, 2, None)
        }
        ("GET", ["api", "v1", "hf", "orders", "done"]) => r(HfDone, Signed(Read), S, 2, None),
        ("GET", ["api", "v1", "hf", "orders", "client-order", _]) => {
            r(HfGetByClient, Signed(Read), S, 2, id(5))
        }
        ("GET", ["api", "v1", "hf", "orders", _]) => r(HfGet, Signed(Read), S, 2, id(4)),
        ("DELETE", ["api", "v1", "hf", "orders", "cancelAll"]) => {
            r(HfCancelAll, Signed(Trade), S, 30, None)
        }
        ("DELETE", ["api", "v1", "hf", "orders"]) => r(HfCancelSymbol, Signed(Trade), S, 2, None),
        ("DELETE", ["api", "v1", "hf", "orders", "client-order", _]) => {
            r(HfCancelByClient, Signed(Trade), S, 1, id(5))
        }
        ("DELETE", ["api", "v1", "hf", "orders", _]) => r(HfCancel, Signed(Trade), S, 1, id(4)),
        ("GET", ["api", "v1", "hf", "fills"]) => r(HfFills, Signed(Read), S, 2, None),
        ("POST", ["api", "v1", "orders"]) => r(Create, Signed(Trade), S, 2, None),
        ("GET", ["api", "v1", "orders"]) => r(List, Signed(Read), S, 2, None),
        ("GET", ["api", "v1", "orders", _]) => r(Get, Signed(Read), S, 2, id(3)),
        ("GET", ["api", "v1", "order", "client-order", _]) => {
            r(GetByClient, Signed(Read), S, 3, id(4))
        }
        ("DELETE", ["api", "v1", "orders"]) => r(CancelAll, Signed(Trade), S, 20, None),
        ("DELETE", ["api", "v1", "orders", _]) => r(Cancel, Signed(Trade), S, 3, id(3)),
        ("GET", ["api", "v1", "fills"]) => r(Fills, Signed(Read), S, 10, None),
        ("POST", ["api", "v1", "stop-order"]) => r(StopCreate, Signed(Trade), S, 2, None),
        ("GET", ["api", "v1", "stop-order"]) => r(StopList, Signed(Read), S, 8, None),
        ("DELETE", ["api", "v1", "stop-order", "cancel"]) => {
            r(StopCancelMany, Signed(Trade), S, 3, None)
        }
        ("GET", ["api", "v1", "stop-order", _]) => r(StopGet, Signed(Read), S, 3, id(3)),
        ("DELETE", ["api", "v1", "stop-order", _]) => r(StopCancel, Signed(Trade), S, 3, id(3)),
        ("GET", ["api", "v1", "withdrawals"]) => r(Withdrawals, Signed(Read), M, 20, None),
        ("GET", ["api", "v1", "deposits"]) => r(Deposits, Signed(Read), M, 5, None),
        ("POST", ["api", "v3", "withdrawals"]) => r(WithdrawalCreate, Signed(Withdraw), M, 5, None),
        ("DELETE", ["api", "v1", "withdrawals", _]) => {
            r(WithdrawalCancel, Signed(Withdraw), M, 20, id(3))
        }
        ("DELETE", ["api", "v1", "sub", "api-key"]) => r(SubKeyDelete, Signed(Read), M, 30, None),
        _ => None,
    }
}

/// Decoded parameters in the order sent (a JSON body's scalars as text).
pub type Params = Vec<(String, String)>;

/// One request as the handlers see it.
pub struct Ctx<'a> {
    pub ex: &'a Venue,
    pub shared: &'a Shared,
    pub p: &'a Params,
    /// The id in the path (order id, client id, currency, withdrawal id).
    pub id: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// The verified key of a signed request.
    pub key: Option<&'a KeyRec>,
    pub fx: &'a mut Effects,
    /// The repeat-page fault is on for this request.
    pub repeat_page: bool,
}

impl Ctx<'_> {
    /// The key of a signed request (400003 if a public route ever asked).
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

    /// The market named by `symbol` (400100 when missing or unknown).
    pub fn market(&self) -> Result<&MarketConf, ApiErr> {
        let s = self
            .get("symbol")
            .ok_or_else(|| errors::required("symbol"))?;
        self.ex
            .markets
            .get(s)
            .map(|m| m.1)
            .ok_or_else(errors::bad_symbol)
    }

    /// The market named by `symbol` when given.
    pub fn market_opt(&self) -> Result<Option<&MarketConf>, ApiErr> {
        match self.get("symbol") {
            Some(_) => self.market().map(Some),
            None => Ok(None),
        }
    }

    /// An integer parameter (400100 when not digits).
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiErr> {
        match self.get(k) {
            None => Ok(None),
            Some(s) if s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) => {
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

    /// An integer parameter within `[min, max]` (`default` when absent).
    pub fn bounded(
        &self,
        k: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ApiErr> {
        match self.int(k)? {
            None => Ok(default),
            Some(n) if n as usize >= min && n as usize <= max => Ok(n as usize),
            Some(_) => Err(errors::params(format!(
                "{k} must be between {min} and {max}"
            ))),
        }
    }
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let ex = sh.ex.clone();
    let r = http::receive(req).await;
    let Some(bytes) = &r.body else {
        http::log_refused_body(&ex, &r);
        return ApiErr {
            status: 413,
            code: "400100",
            msg: "request body over 1 MiB (or unreadable)".into(),
        }
        .out()
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
        e.out()
    } else {
        let h = |n: &str| r.header(n);
        let (key, ts, sign, pass, version) = (
            h("kc-api-key"),
            h("kc-api-timestamp"),
            h("kc-api-sign"),
            h("kc-api-passphrase"),
            h("kc-api-key-version"),
        );
        let req = Incoming {
            method: &r.method,
            path: &r.path,
            raw_query: &r.query,
            raw_body: &raw_body,
            api_key: key.as_deref(),
            timestamp: ts.as_deref(),
            sign: sign.as_deref(),
            passphrase: pass.as_deref(),
            key_version: version.as_deref(),
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
    pub sign: Option<&'a str>,
    pub passphrase: Option<&'a str>,
    pub key_version: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// The repeat-page fault was drawn.
    pub repeat_page: bool,
}

/// The parameters of a request: the query's pairs (GET, DELETE) or the JSON body's scalar
/// members (POST; an empty body is `{}`).
fn parse(req: &Incoming<'_>) -> Result<Params, ApiErr> {
    let mut p: Params = Vec::new();
    for (k, v) in url::form_urlencoded::parse(req.raw_query.as_bytes()) {
        if !p.iter().any(|(a, _)| *a == k) {
            p.push((k.into_owned(), v.into_owned()));
        }
    }
    if req.method != "POST" {
        return Ok(p);
    }
    let text = req.raw_body.trim();
    if text.is_empty() {
        return Ok(p);
    }
    let body: Value =
        serde_json::from_str(text).map_err(|_| errors::params("the body is not JSON"))?;
    let Value::Object(m) = body else {
        return Err(errors::params("the body is not a JSON object"));
    };
    for (k, v) in m {
        let s = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        p.retain(|(a, _)| *a != k);
        p.push((k, s));
    }
    Ok(p)
}

/// The three pool headers.
fn limit_headers(out: Out, pool: Budget, remaining: u32, reset_ms: u128) -> Out {
    out.header("gw-ratelimit-limit", pool.limit.to_string())
        .header("gw-ratelimit-remaining", remaining.to_string())
        .header("gw-ratelimit-reset", reset_ms.to_string())
}

/// Draws `weight` from `pool` for `caller`: Ok((remaining, ms to reset)), or the 429 answer.
fn draw(ex: &Venue, pool: Budget, caller: &str, weight: u32) -> Result<(u32, u128), Out> {
    let t = Instant::now();
    let mut gate = ex.gate();
    let storm = gate.limiter.storm_until.is_some_and(|u| t < u);
    let verdict = if !ex.opts.rate_limits {
        Verdict::Allowed {
            remaining: pool.limit,
        }
    } else if storm {
        Verdict::TooMany
    } else {
        gate.limiter.hit(pool, caller, weight, t)
    };
    let (used, resets) = gate.limiter.usage(pool, caller, t);
    drop(gate);
    let reset = resets.as_millis();
    match verdict {
        Verdict::Allowed { .. } => Ok((pool.limit.saturating_sub(used), reset)),
        _ => Err(limit_headers(
            errors::too_many().out(),
            pool,
            pool.limit.saturating_sub(used),
            reset,
        )),
    }
}

/// Answers one request (everything but the faults).
pub fn process(sh: &Shared, req: &Incoming<'_>, fx: &mut Effects) -> Out {
    let ex = &*sh.ex;
    let now = ex.now();
    let Some(rt) = route(req.method, req.path) else {
        let e = errors::no_route();
        fx.error = Some("not_found".into());
        return e.out();
    };
    let key = match rt.security {
        Security::Public => None,
        Security::Signed(need) => {
            let signed = Signed {
                api_key: req.api_key,
                timestamp: req.timestamp,
                sign: req.sign,
                passphrase: req.passphrase,
                key_version: req.key_version,
                method: req.method,
                path: req.path,
                query: req.raw_query,
                body: if req.method == "POST" {
                    req.raw_body
                } else {
                    ""
                },
                ip: req.ip,
                need,
                denied_status: ex.opts.out_of_scope_status,
            };
            let lookup = |ak: &str| ex.world().keys.get(ak).cloned();
            match auth::authenticate(&signed, lookup, now) {
                Ok(k) => Some(k),
                Err((e, ak)) => {
                    fx.access_key = ak;
                    fx.error = Some(e.log_name());
                    return e.out();
                }
            }
        }
    };
    let caller = match &key {
        Some(k) => {
            fx.access_key = Some(k.access_key.clone());
            k.account.clone()
        }
        None => req
            .ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "local".into()),
    };
    let (remaining, reset) = match draw(ex, rt.pool, &caller, rt.weight) {
        Ok(x) => x,
        Err(out) => {
            fx.error = Some("429000".into());
            return out;
        }
    };
    let params = match parse(req) {
        Ok(p) => p,
        Err(e) => {
            fx.error = Some(e.log_name());
            return limit_headers(e.out(), rt.pool, remaining, reset);
        }
    };
    let mut ctx = Ctx {
        ex,
        shared: sh,
        p: &params,
        id: rt.id.as_deref(),
        now,
        key: key.as_ref(),
        fx,
        repeat_page: req.repeat_page,
    };
    let out = match dispatch(rt.ep, &mut ctx) {
        Ok(v) => Out::json_spliced(200, &errors::ok(v), ctx.fx.raw_list.take()),
        Err(e) => {
            ctx.fx.error = Some(e.log_name());
            e.out()
        }
    };
    limit_headers(out, rt.pool, remaining, reset)
}

fn dispatch(ep: Ep, c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    use serde_json::json;
    Ok(match ep {
        Ep::Timestamp => json!(c.now.timestamp_millis()),
        Ep::Status => json!({"status": "open", "msg": ""}),
        Ep::Symbols => market::symbols(c)?,
        Ep::Currencies => market::currencies(c, None),
        Ep::Currency => market::currency(c)?,
        Ep::AllTickers => market::all_tickers(c),
        Ep::Level1 => market::level1(c)?,
        Ep::Stats => market::stats(c)?,
        Ep::Candles => market::candles(c)?,
        Ep::Contracts => json!([]),
        Ep::AccountMode => json!({"selfAccountMode": "CLASSIC"}),
        Ep::MarginSymbols => json!({"timestamp": c.now.timestamp_millis(), "items": []}),
        Ep::IsolatedSymbols => json!([]),
        Ep::ApiKey => wallet::api_key(c)?,
        Ep::Accounts => wallet::accounts(c)?,
        Ep::HfOpened => json!(true),
        Ep::HfCreate => trade::create(c, trade::Family::Hf)?,
        Ep::HfActive => trade::hf_active(c)?,
        Ep::HfActiveSymbols => trade::hf_active_symbols(c)?,
        Ep::HfDone => trade::hf_done(c)?,
        Ep::HfGet => trade::get(c, trade::Family::Hf, false)?,
        Ep::HfGetByClient => trade::get(c, trade::Family::Hf, true)?,
        Ep::HfCancelAll => trade::hf_cancel_all(c)?,
        Ep::HfCancelSymbol => trade::hf_cancel_symbol(c)?,
        Ep::HfCancel => trade::cancel(c, trade::Family::Hf, false)?,
        Ep::HfCancelByClient => trade::cancel(c, trade::Family::Hf, true)?,
        Ep::HfFills => trade::hf_fills(c)?,
        Ep::Create => trade::create(c, trade::Family::Classic)?,
        Ep::List => trade::list(c)?,
        Ep::Get => trade::get(c, trade::Family::Classic, false)?,
        Ep::GetByClient => trade::get(c, trade::Family::Classic, true)?,
        Ep::CancelAll => trade::classic_cancel_all(c)?,
        Ep::Cancel => trade::cancel(c, trade::Family::Classic, false)?,
        Ep::Fills => trade::fills(c)?,
        Ep::StopCreate => trade::stop_create(c)?,
        Ep::StopList => trade::stop_list(c)?,
        Ep::StopGet => trade::stop_get(c)?,
        Ep::StopCancelMany => trade::stop_cancel_many(c)?,
        Ep::StopCancel => trade::stop_cancel(c)?,
        Ep::Withdrawals => wallet::withdrawals(c)?,
        Ep::Deposits => wallet::deposits(c)?,
        Ep::WithdrawalCreate => wallet::withdrawal_create(c)?,
        Ep::WithdrawalCancel => wallet::withdrawal_cancel(c)?,
        Ep::SubKeyDelete => wallet::delete_sub_key(c)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_ids_route_to_their_endpoint() {
        let ep = |m: &str, p: &str| route(m, p).map(|r| (r.ep, r.id));
        assert_eq!(
            ep("GET", "/api/v1/hf/orders/active"),
            Some((Ep::HfActive, None))
        );
        assert_eq!(
            ep("GET", "/api/v1/hf/orders/abc"),
            Some((Ep::HfGet, Some("abc".into())))
        );
        assert_eq!(
            ep("DELETE", "/api/v1/hf/orders/cancelAll"),
            Some((Ep::HfCancelAll, None))
        );
        assert_eq!(
            ep("DELETE", "/api/v1/stop-order/cancel"),
            Some((Ep::StopCancelMany, None))
        );
        assert_eq!(
            ep("DELETE", "/api/v1/withdrawals/x1"),
            Some((Ep::WithdrawalCancel, Some("x1".into())))
        );
        assert_eq!(ep("POST", "/api/v1/timestamp"), None);
        assert_eq!(ep("GET", "/api/v2/accounts"), None);
    }
}
