//! Coinbase's routes and the dispatcher: one fallback handler reads a request as Coinbase
//! does (GET parameters from the query, repeatable as `k=a&k=b`; POST parameters from a JSON
//! body; a body on a GET is ignored, as the official SDK sends `{}`), authenticates a private
//! request's bearer JWT ([`super::auth`]), checks the key's permission, counts the request
//! against the caller's budget ([`super::limits`]), then answers from [`super::market`],
//! [`super::trade`] or [`super::wallet`].
//!
//! Injected faults work as for every façade ([`crate::mock::http`]); an injected server
//! error is a 500 and the request is not processed; an injected rate-limit storm answers 429
//! to every request while it lasts.

use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::auth::{self, Presented};
use super::errors::{self, Api, ApiErr};
use super::limits;
use super::{market, trade, wallet};
use crate::mock::http::{self, Effects, Out};
use crate::mock::venue::keys::{KeyProblem, KeyRec, Permission};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::ratelimit::{Budget, Verdict};
use crate::mock::venue::Venue;

/// The façade's router (the drill API is mounted next to it by [`crate::mock::router`]).
pub fn router(venue: Arc<Venue>) -> Router {
    Router::new().fallback(handle).with_state(venue)
}

/// The endpoints the façade answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ep {
    Time,
    Products,
    Product,
    Candles,
    Ticker,
    BestBidAsk,
    TransactionSummary,
    KeyPermissions,
    Accounts,
    Account,
    OrderCreate,
    OrdersBatch,
    OrderOne,
    Fills,
    BatchCancel,
    V2Time,
    V2Currencies,
    V2CryptoCurrencies,
    V2ExchangeRates,
    V2Accounts,
    V2Account,
    V2Transactions,
    V2FiatWithdrawals,
    V2FiatDeposits,
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Public,
    /// Signed by any valid key (`key_permissions`).
    AnyKey,
    /// Signed, with a key allowed this.
    Signed(Permission),
}

/// The endpoint at (method, path), its security, its API family and the path's variable
/// segment (a product, order or account id).
pub fn route(method: &str, path: &str) -> Option<(Ep, Security, Api, Option<String>)> {
    use Ep::*;
    use Permission::{Read, Trade};
    use Security::{AnyKey, Public, Signed};
    if let Some(rest) = path.strip_prefix("/api/v3/brokerage/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let (ep, sec, arg) = match (method, segs.as_slice()) {
            ("GET", ["time"]) => (Time, Public, None),
            ("GET", ["market", "products"]) => (Products, Public, None),
            ("GET", ["market", "products", id]) => (Product, Public, Some(*id)),
            ("GET", ["market", "products", id, "candles"]) => (Candles, Public, Some(*id)),
            ("GET", ["market", "products", id, "ticker"]) => (Ticker, Public, Some(*id)),
            ("GET", ["products"]) => (Products, Signed(Read), None),
            ("GET", ["products", id]) => (Product, Signed(Read), Some(*id)),
            ("GET", ["products", id, "candles"]) => (Candles, Signed(Read), Some(*id)),
            ("GET", ["products", id, "ticker"]) => (Ticker, Signed(Read), Some(*id)),
            ("GET", ["best_bid_ask"]) => (BestBidAsk, Signed(Read), None),
            ("GET", ["transaction_summary"]) => (TransactionSummary, Signed(Read), None),
            ("GET", ["key_permissions"]) => (KeyPermissions, AnyKey, None),
            ("GET", ["accounts"]) => (Accounts, Signed(Read), None),
            ("GET", ["accounts", id]) => (Account, Signed(Read), Some(*id)),
            ("POST", ["orders"]) => (OrderCreate, Signed(Trade), None),
            ("POST", ["orders", "batch_cancel"]) => (BatchCancel, Signed(Trade), None),
            ("GET", ["orders", "historical", "batch"]) => (OrdersBatch, Signed(Read), None),
            ("GET", ["orders", "historical", "fills"]) => (Fills, Signed(Read), None),
            ("GET", ["orders", "historical", id]) => (OrderOne, Signed(Read), Some(*id)),
            _ => return None,
        };
        return Some((ep, sec, Api::V3, arg.map(str::to_string)));
    }
    let rest = path.strip_prefix("/v2/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    let (ep, sec, arg) = match (method, segs.as_slice()) {
        ("GET", ["time"]) => (V2Time, Public, None),
        ("GET", ["currencies"]) => (V2Currencies, Public, None),
        ("GET", ["currencies", "crypto"]) => (V2CryptoCurrencies, Public, None),
        ("GET", ["exchange-rates"]) => (V2ExchangeRates, Public, None),
        ("GET", ["accounts"]) => (V2Accounts, Signed(Read), None),
        ("GET", ["accounts", id]) => (V2Account, Signed(Read), Some(*id)),
        ("GET", ["accounts", id, "transactions"]) => (V2Transactions, Signed(Read), Some(*id)),
        ("GET", ["accounts", id, "withdrawals"]) => (V2FiatWithdrawals, Signed(Read), Some(*id)),
        ("GET", ["accounts", id, "deposits"]) => (V2FiatDeposits, Signed(Read), Some(*id)),
        _ => return None,
    };
    Some((ep, sec, Api::V2, arg.map(str::to_string)))
}

/// Decoded parameters in the order sent (repeats kept; a JSON body's scalars as text).
pub type Params = Vec<(String, String)>;

/// One request as the handlers see it.
pub struct Ctx<'a> {
    pub ex: &'a Venue,
    pub p: &'a Params,
    /// The JSON body of a POST.
    pub body: &'a Value,
    pub now: DateTime<Utc>,
    /// The verified key of a signed request.
    pub key: Option<&'a KeyRec>,
    /// The path's variable segment.
    pub arg: Option<&'a str>,
    pub fx: &'a mut Effects,
    /// The repeat-page fault is on for this request.
    pub repeat_page: bool,
}

impl Ctx<'_> {
    /// The key of a signed request (401 if a public route ever asked).
    pub fn key(&self) -> Result<&KeyRec, ApiErr> {
        self.key.ok_or_else(|| errors::unauthorized("no key"))
    }

    /// A parameter's first value (None when absent or empty).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.p
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of a repeatable parameter (`k=a&k=b`; a comma-separated value is split
    /// too), under any of `names`.
    pub fn all(&self, names: &[&str]) -> Vec<String> {
        self.p
            .iter()
            .filter(|(a, _)| names.contains(&a.as_str()))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The market a product id names (404 `NOT_FOUND` when unknown).
    pub fn product(&self, id: &str) -> Result<&MarketConf, ApiErr> {
        self.ex
            .markets
            .get(id)
            .map(|m| m.1)
            .ok_or_else(|| errors::not_found(format!("product {id} not found")))
    }

    /// `limit` between 1 and `max` (`default` when absent; 400 otherwise).
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiErr> {
        match self.get("limit") {
            None => Ok(default),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n.min(max)),
                _ => Err(errors::invalid(format!("invalid limit {s}"))),
            },
        }
    }

    /// An RFC 3339 time parameter (400 when it does not parse).
    pub fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiErr> {
        match self.get(k) {
            None => Ok(None),
            Some(s) => super::wire::parse_ts(s)
                .map(Some)
                .ok_or_else(|| errors::invalid(format!("invalid {k}: {s}"))),
        }
    }
}

async fn handle(State(ex): State<Arc<Venue>>, req: Request) -> Response {
    let r = http::receive(req).await;
    let api = if r.path.starts_with("/v2/") {
        Api::V2
    } else {
        Api::V3
    };
    let Some(bytes) = &r.body else {
        http::log_refused_body(&ex, &r);
        return errors::invalid("request body over 1 MiB (or unreadable)")
            .out(api)
            .into_response();
    };
    let raw_body = String::from_utf8_lossy(bytes).into_owned();
    let (decision, fault) = http::inject(&ex, &r.method, &r.path).await;
    if decision.timeout {
        return http::hold(&ex, &r.method, &r.path, fault).await;
    }
    let mut fx = Effects::default();
    let out = if decision.error {
        let e = errors::internal();
        fx.error = Some(e.log_name());
        e.out(api)
    } else {
        let authorization = r.header("authorization");
        let host = r.header("host");
        let incoming = Incoming {
            method: &r.method,
            path: &r.path,
            raw_query: &r.query,
            raw_body: &raw_body,
            authorization: authorization.as_deref(),
            host: host.as_deref(),
            ip: r.ip,
            repeat_page: decision.repeat_page,
        };
        process(&ex, &incoming, &mut fx)
    };
    http::finish(&ex, &r, out, &fx, &decision, fault)
}

/// A request as it arrived.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    pub raw_body: &'a str,
    pub authorization: Option<&'a str>,
    pub host: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// The repeat-page fault was drawn.
    pub repeat_page: bool,
}

/// The parameters of a request: the query's pairs (GET; repeats kept) or the JSON body's
/// scalar members (POST; an empty body is `{}`), and the body itself.
fn parse(req: &Incoming<'_>) -> Result<(Params, Value), ApiErr> {
    let empty = || Value::Object(Default::default());
    if req.method == "GET" {
        let p = url::form_urlencoded::parse(req.raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        return Ok((p, empty()));
    }
    let text = req.raw_body.trim();
    let body: Value = if text.is_empty() {
        empty()
    } else {
        serde_json::from_str(text).map_err(|_| errors::invalid("the body is not JSON"))?
    };
    let Value::Object(m) = &body else {
        return Err(errors::invalid("the body is not a JSON object"));
    };
    let p = http::scalar_members(m);
    Ok((p, body))
}

/// The three rate-limit headers.
fn limit_headers(out: Out, budget: Budget, remaining: u32, reset_s: i64) -> Out {
    out.header("x-ratelimit-limit", budget.limit.to_string())
        .header("x-ratelimit-remaining", remaining.to_string())
        .header("x-ratelimit-reset", reset_s.to_string())
}

/// Counts a request against `budget` for `caller`: the headers' (remaining, reset) when
/// allowed, else the 429 with its headers.
fn count(
    ex: &Venue,
    budget: Budget,
    caller: &str,
    now: DateTime<Utc>,
    api: Api,
) -> Result<(u32, i64), Out> {
    let t = Instant::now();
    let mut gate = ex.gate();
    if gate.limiter.storm_until.is_some_and(|u| t < u) {
        drop(gate);
        return Err(limit_headers(
            errors::rate_limited().out(api).header("retry-after", "1"),
            budget,
            0,
            now.timestamp() + 1,
        ));
    }
    let verdict = if ex.opts.rate_limits {
        gate.limiter.hit(budget, caller, 1, t)
    } else {
        Verdict::Allowed {
            remaining: budget.limit,
        }
    };
    let (used, resets) = gate.limiter.usage(budget, caller, t);
    drop(gate);
    let reset = now.timestamp() + resets.as_secs_f64().ceil() as i64;
    match verdict {
        Verdict::Allowed { .. } => Ok((budget.limit.saturating_sub(used), reset)),
        _ => Err(limit_headers(
            errors::rate_limited().out(api).header(
                "retry-after",
                resets.as_secs_f64().ceil().max(1.0).to_string(),
            ),
            budget,
            0,
            reset,
        )),
    }
}

/// Answers one request (everything but the faults).
pub fn process(ex: &Venue, req: &Incoming<'_>, fx: &mut Effects) -> Out {
    let now = ex.now();
    let api = if req.path.starts_with("/v2/") {
        Api::V2
    } else {
        Api::V3
    };
    let Some((ep, security, api, arg)) = route(req.method, req.path) else {
        let e = errors::no_route(req.method, req.path);
        fx.error = Some("not_found".into());
        return e.out(api);
    };
    let key = match security {
        Security::Public => None,
        Security::AnyKey | Security::Signed(_) => {
            let presented = Presented {
                authorization: req.authorization,
                method: req.method,
                host: req.host,
                path: req.path,
                ip: req.ip,
            };
            let lookup = |name: &str| ex.world().keys.get(name).cloned();
            match auth::authenticate(&presented, lookup, now) {
                Ok((k, nonce)) => {
                    let fresh = ex.gate().nonces.check_and_insert(
                        &k.access_key,
                        &nonce,
                        std::time::Instant::now(),
                    );
                    if !fresh {
                        let e = errors::unauthorized("nonce reused");
                        fx.access_key = Some(k.access_key.clone());
                        fx.error = Some(e.log_name());
                        return e.out(api);
                    }
                    Some(k)
                }
                Err((e, name)) => {
                    fx.access_key = name;
                    fx.error = Some(e.log_name());
                    return e.out(api);
                }
            }
        }
    };
    let (budget, caller) = match &key {
        Some(k) => {
            fx.access_key = Some(k.access_key.clone());
            (limits::PRIVATE, k.account.clone())
        }
        None => (
            limits::PUBLIC,
            req.ip
                .map(|i| i.to_string())
                .unwrap_or_else(|| "local".into()),
        ),
    };
    let (remaining, reset) = match count(ex, budget, &caller, now, api) {
        Ok(x) => x,
        Err(out) => {
            fx.error = Some(errors::rate_limited().log_name());
            return out;
        }
    };
    let with_headers = |out: Out| limit_headers(out, budget, remaining, reset);
    if let (Security::Signed(need), Some(k)) = (security, &key) {
        if let Err(KeyProblem::Missing(_)) = k.check(need, now) {
            let e = errors::permission_denied();
            fx.error = Some(e.log_name());
            return with_headers(e.out(api));
        }
    }
    let (params, body) = match parse(req) {
        Ok(x) => x,
        Err(e) => {
            fx.error = Some(e.log_name());
            return with_headers(e.out(api));
        }
    };
    let mut ctx = Ctx {
        ex,
        p: &params,
        body: &body,
        now,
        key: key.as_ref(),
        arg: arg.as_deref(),
        fx,
        repeat_page: req.repeat_page,
    };
    let out = match dispatch(ep, &mut ctx) {
        Ok(v) => Out::json_spliced(200, &v, ctx.fx.raw_list.take()),
        Err(e) => {
            ctx.fx.error = Some(e.log_name());
            e.out(api)
        }
    };
    with_headers(out)
}

fn dispatch(ep: Ep, c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    match ep {
        Ep::Time => Ok(market::time(c)),
        Ep::Products => market::products(c),
        Ep::Product => market::product(c),
        Ep::Candles => market::candles(c),
        Ep::Ticker => market::ticker(c),
        Ep::BestBidAsk => market::best_bid_ask(c),
        Ep::TransactionSummary => Ok(market::transaction_summary(c)),
        Ep::KeyPermissions => wallet::key_permissions(c),
        Ep::Accounts => wallet::accounts(c),
        Ep::Account => wallet::account(c),
        Ep::OrderCreate => trade::create(c),
        Ep::OrdersBatch => trade::historical_batch(c),
        Ep::OrderOne => trade::historical_one(c),
        Ep::Fills => trade::fills(c),
        Ep::BatchCancel => trade::batch_cancel(c),
        Ep::V2Time => Ok(market::v2_time(c)),
        Ep::V2Currencies => Ok(wallet::v2_currencies(c, false)),
        Ep::V2CryptoCurrencies => Ok(wallet::v2_currencies(c, true)),
        Ep::V2ExchangeRates => Ok(market::v2_exchange_rates(c)),
        Ep::V2Accounts => wallet::v2_accounts(c),
        Ep::V2Account => wallet::v2_account(c),
        Ep::V2Transactions => wallet::v2_transactions(c),
        Ep::V2FiatWithdrawals | Ep::V2FiatDeposits => wallet::v2_fiat(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_take_their_variable_segment() {
        let (ep, sec, api, arg) = route("GET", "/api/v3/brokerage/orders/historical/abc").unwrap();
        assert_eq!(
            (ep, sec, api),
            (Ep::OrderOne, Security::Signed(Permission::Read), Api::V3)
        );
        assert_eq!(arg.as_deref(), Some("abc"));
        assert_eq!(
            route("GET", "/api/v3/brokerage/orders/historical/batch")
                .unwrap()
                .0,
            Ep::OrdersBatch
        );
        assert_eq!(
            route("POST", "/api/v3/brokerage/orders").unwrap().1,
            Security::Signed(Permission::Trade)
        );
        assert_eq!(
            route("GET", "/v2/accounts/x/transactions").unwrap().0,
            Ep::V2Transactions
        );
        assert!(route("DELETE", "/api/v3/brokerage/orders").is_none());
        assert!(route("GET", "/api/v3/brokerage/nothing").is_none());
    }
}
