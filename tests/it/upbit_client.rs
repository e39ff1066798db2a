//! The Upbit client against a small axum fixture over real loopback.
//!
//! The fixture verifies every request's JWT (with the `jsonwebtoken` crate, independent of the
//! client's hand-written signer) and its query hash, enforces Upbit's per-group budgets with a
//! sliding window (429 when exceeded, 418 when a client sends again inside the block window
//! after a 429), counts hits, and can script failures per endpoint: canned statuses, 429,
//! 500, truncated JSON, a dropped connection (the handler panics, which closes the
//! connection), a slow answer, or "apply the write, then drop the connection".

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{TimeZone, Utc};
use respond::exchange::replay::{self, RebuildOptions};
use respond::exchange::upbit::{market, UpbitClient, UpbitConfig, DESCRIPTOR};
use respond::exchange::{ClosedOrdersQuery, Error, Exchange, OrderRef, OrderState, Window};
use respond::rundir::RunDir;
use respond::secret::Secret;
use sha2::{Digest, Sha512};

const ACCESS: &str = "fixture-access-key-0123456789";
const SECRET: &str = "fixture-secret-key-abcdefghijklmnopqrstuv";

#[derive(Clone, Debug)]
enum Script {
    Status(u16, &'static str),
    /// An error envelope with this name.
    Envelope(u16, &'static str),
    Truncated,
    Drop,
    Slow(Duration),
    /// Perform the request's effect, then drop the connection.
    ApplyThenDrop,
    /// Answer as usual (a place in a script).
    Pass,
    /// An error envelope with this status whose `Remaining-Req` reports the whole budget
    /// left, a count the server did not keep (an overloaded front, the mock's injected 500).
    FullCount(u16),
    /// A refusal with this status (418) whose `Remaining-Req` reports the whole budget left
    /// and whose `Retry-After` is 0: counted as a grant, it would let the rest of the window
    /// out at once.
    RefusalWithFullCount(u16),
}

#[derive(Clone)]
struct Fx(Arc<Mutex<FxState>>);

#[derive(Default)]
struct FxState {
    hits: Vec<(String, String)>,
    auth_failures: Vec<String>,
    nonces: HashSet<String>,
    arrivals: HashMap<String, VecDeque<Instant>>,
    max_in_window: HashMap<String, usize>,
    block_until: Option<Instant>,
    count_429: usize,
    count_418: usize,
    scripts: HashMap<(String, String), VecDeque<Script>>,
    /// State of the one withdrawal `w1` (WAITING until cancelled).
    withdrawal_state: Option<String>,
    /// Requests another client (sharing the key) uses from each window, per group.
    phantom: HashMap<String, usize>,
    /// uuid → state (wait, watch, cancel, done), creation order.
    orders: BTreeMap<String, String>,
}

impl Fx {
    fn lock(&self) -> std::sync::MutexGuard<'_, FxState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn script(&self, method: &str, path: &str, steps: Vec<Script>) {
        self.lock()
            .scripts
            .insert((method.into(), path.into()), steps.into());
    }
    /// Adds `wait` orders `w-0000…` and `watch` orders `x-0000…`.
    fn seed(&self, wait: usize, watch: usize) {
        let mut st = self.lock();
        for i in 0..wait {
            st.orders.insert(format!("w-{i:04}"), "wait".into());
        }
        for i in 0..watch {
            st.orders.insert(format!("x-{i:04}"), "watch".into());
        }
    }
    fn hits(&self, method: &str, path: &str) -> usize {
        self.lock()
            .hits
            .iter()
            .filter(|(m, p)| m == method && p == path)
            .count()
    }
}

/// A reference to an order of the fixture by id alone (Upbit finds orders by id).
fn oref(id: &str) -> OrderRef {
    OrderRef {
        id: id.into(),
        market: None,
    }
}

fn group(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("DELETE", "/v1/orders/open") => "order-cancel-all",
        ("DELETE", "/v1/order") | ("DELETE", "/v1/orders/uuids") | ("POST", "/v1/orders") => {
            "order"
        }
        (_, p) if p.starts_with("/v1/candles/") => "candle",
        _ => "default",
    }
}

fn budget(g: &str) -> (usize, Duration) {
    match g {
        "order" => (8, Duration::from_secs(1)),
        "order-cancel-all" => (1, Duration::from_secs(2)),
        "candle" => (10, Duration::from_secs(1)),
        _ => (30, Duration::from_secs(1)),
    }
}

/// How long after a 429 any request is answered 418.
const BLOCK_WINDOW: Duration = Duration::from_millis(100);

fn decoded_query(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn order_json(uuid: &str, state: &str) -> serde_json::Value {
    serde_json::json!({
        "uuid": uuid, "side": "bid", "ord_type": "limit", "price": "100.0", "state": state,
        "market": "KRW-BTC", "created_at": "2024-03-01T09:00:00+09:00", "volume": "1.0",
        "remaining_volume": if state == "done" { "0" } else { "1.0" }, "reserved_fee": "0",
        "remaining_fee": "0", "paid_fee": "0", "locked": "100", "executed_volume": "0",
        "trades_count": 0, "trades": []
    })
}

fn reply(status: u16, group: &str, remaining: usize, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "remaining-req",
        HeaderValue::from_str(&format!("group={group}; min=1800; sec={remaining}")).unwrap(),
    );
    r
}

fn err(status: u16, g: &str, rem: usize, name: &str) -> Response {
    reply(
        status,
        g,
        rem,
        format!(r#"{{"error":{{"name":"{name}","message":"fixture"}}}}"#),
    )
}

async fn handle(State(fx): State<Fx>, req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let params = decoded_query(&raw_query);
    let g = group(&method, &path);
    let (limit, window) = budget(g);
    let now = Instant::now();

    // Rate limits first, like a gateway would.
    let (remaining, script) = {
        let mut st = fx.lock();
        st.hits.push((method.clone(), path.clone()));
        if st.block_until.is_some_and(|b| now < b) {
            st.count_418 += 1;
            return reply(418, g, 0, "blocked");
        }
        let phantom = st.phantom.get(g).copied().unwrap_or(0);
        let q = st.arrivals.entry(g.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        let used = q.len();
        if used + phantom >= limit {
            st.count_429 += 1;
            st.block_until = Some(now + BLOCK_WINDOW);
            return reply(429, g, 0, "Too many requests");
        }
        q.push_back(now);
        let n = used + 1 + phantom;
        let m = st.max_in_window.entry(g.to_string()).or_default();
        *m = (*m).max(n);
        let script = st
            .scripts
            .get_mut(&(method.clone(), path.clone()))
            .and_then(|s| s.pop_front());
        (limit - n, script)
    };

    // Authentication, verified independently of the client's signer.
    if !path.starts_with("/v1/candles/") {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.algorithms = vec![
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::HS512,
        ];
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let claims = token.and_then(|t| {
            jsonwebtoken::decode::<serde_json::Value>(
                &t,
                &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
                &v,
            )
            .ok()
        });
        let Some(c) = claims.map(|c| c.claims) else {
            fx.lock().auth_failures.push(format!("jwt {method} {path}"));
            return err(401, g, remaining, "jwt_verification");
        };
        let input = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let expected = (!params.is_empty()).then(|| hex::encode(Sha512::digest(input.as_bytes())));
        let nonce = c["nonce"].as_str().unwrap_or("").to_string();
        let mut st = fx.lock();
        if c["access_key"] != ACCESS
            || c["query_hash"].as_str().map(str::to_string) != expected
            || (expected.is_some() && c["query_hash_alg"] != "SHA512")
            || !st.nonces.insert(nonce)
        {
            st.auth_failures
                .push(format!("claims {method} {path}?{input}: {c}"));
            return err(401, g, remaining, "invalid_query_payload");
        }
    }

    match script {
        Some(Script::Status(code, body)) => {
            if code == 429 {
                let mut st = fx.lock();
                st.count_429 += 1;
                st.block_until = Some(Instant::now() + BLOCK_WINDOW);
            }
            return reply(code, g, remaining, body);
        }
        Some(Script::Envelope(code, name)) => return err(code, g, remaining, name),
        Some(Script::Truncated) => {
            return reply(200, g, remaining, r#"[{"currency":"KRW","balance":"10"#)
        }
        Some(Script::Drop) => panic!("fixture: dropping the connection"),
        Some(Script::Slow(d)) => tokio::time::sleep(d).await,
        Some(Script::FullCount(code)) => return err(code, g, limit, "server_error"),
        Some(Script::RefusalWithFullCount(code)) => {
            let mut r = err(code, g, limit, "too_many_requests");
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("0"));
            return r;
        }
        Some(Script::Pass) => {}
        Some(Script::ApplyThenDrop) => {
            let _ = exchange(&fx, &method, &path, &params);
            panic!("fixture: applied, now dropping the connection");
        }
        None => {}
    }
    let (status, body) = exchange(&fx, &method, &path, &params);
    if status >= 400 {
        return err(status, g, remaining, &body);
    }
    let mut r = reply(status, g, remaining, body);
    r.headers_mut()
        .insert("date", HeaderValue::from_str(&httpdate()).unwrap());
    r
}

fn httpdate() -> String {
    Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// The simulated exchange: (status, body or error name).
fn exchange(fx: &Fx, method: &str, path: &str, params: &[(String, String)]) -> (u16, String) {
    let mut st = fx.lock();
    let list = |st: &FxState, pred: &dyn Fn(&str, &str) -> bool| {
        let v: Vec<_> = st
            .orders
            .iter()
            .filter(|(u, s)| pred(u, s))
            .map(|(u, s)| order_json(u, s))
            .collect();
        serde_json::Value::Array(v).to_string()
    };
    match (method, path) {
        ("GET", "/v1/accounts") => (
            200,
            r#"[{"currency":"KRW","balance":"1000000.0","locked":"0","avg_buy_price":"0","avg_buy_price_modified":false,"unit_currency":"KRW"},{"currency":"BTC","balance":"0.5","locked":"0.1","avg_buy_price":"50000000","avg_buy_price_modified":false,"unit_currency":"KRW"}]"#.into(),
        ),
        ("GET", "/v1/api_keys") => (
            200,
            format!(r#"[{{"access_key":"{ACCESS}","expire_at":"2027-01-01T00:00:00+09:00"}},{{"access_key":"other-key-zzzzzzzzzzzz","expire_at":"2026-12-01T00:00:00+09:00"}}]"#),
        ),
        ("GET", "/v1/orders/open") => {
            let page: usize = param(params, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let limit: usize = param(params, "limit").and_then(|p| p.parse().ok()).unwrap_or(100);
            // Keys sort by creation; `order_by=desc` lists the newest first, like Upbit.
            let mut all: Vec<_> = st.orders.iter().collect();
            if param(params, "order_by") == Some("desc") {
                all.reverse();
            }
            let open: Vec<_> = all
                .into_iter()
                .filter(|(_, s)| *s == "wait" || *s == "watch")
                .skip((page - 1) * limit)
                .take(limit)
                .map(|(u, s)| order_json(u, s))
                .collect();
            (200, serde_json::Value::Array(open).to_string())
        }
        ("GET", "/v1/orders/closed") => {
            assert!(param(params, "start_time").unwrap().chars().all(|c| c.is_ascii_digit()));
            (200, list(&st, &|_, s| s == "done" || s == "cancel"))
        }
        ("GET", "/v1/orders/uuids") => {
            let ids: HashSet<&str> = params
                .iter()
                .filter(|(k, _)| k == "uuids[]")
                .map(|(_, v)| v.as_str())
                .collect();
            (200, list(&st, &|u, _| ids.contains(u)))
        }
        ("GET", "/v1/order") => {
            let u = param(params, "uuid").unwrap_or("");
            match st.orders.get(u) {
                Some(s) => (200, order_json(u, s).to_string()),
                None => (404, "order_not_found".into()),
            }
        }
        ("DELETE", "/v1/order") => {
            let u = param(params, "uuid").unwrap_or("").to_string();
            match st.orders.get(&u).cloned() {
                Some(s) if s == "wait" || s == "watch" => {
                    st.orders.insert(u.clone(), "cancel".into());
                    (200, order_json(&u, &s).to_string())
                }
                Some(_) => (400, "validation_error".into()),
                None => (404, "order_not_found".into()),
            }
        }
        ("DELETE", "/v1/orders/open") => {
            let count: usize = param(params, "count").and_then(|c| c.parse().ok()).unwrap_or(20);
            let ids: Vec<String> = st
                .orders
                .iter()
                .rev()
                .filter(|(_, s)| *s == "wait")
                .take(count)
                .map(|(u, _)| u.clone())
                .collect();
            cancel_ids(&mut st, &ids)
        }
        ("DELETE", "/v1/orders/uuids") => {
            let ids: Vec<String> = params
                .iter()
                .filter(|(k, _)| k == "uuids[]")
                .map(|(_, v)| v.clone())
                .collect();
            assert!(ids.len() <= 20, "more than 20 uuids in one cancel");
            cancel_ids(&mut st, &ids)
        }
        ("GET", "/v1/withdraws") => (200, format!("[{}]", withdrawal(&st))),
        ("GET", "/v1/withdraw") => (200, withdrawal(&st)),
        ("DELETE", "/v1/withdraws/coin") => {
            st.withdrawal_state = Some("CANCELLED".into());
            (200, withdrawal(&st))
        }
        ("GET", "/v1/deposits") => (200, "[]".into()),
        ("GET", "/v1/candles/minutes/1") => {
            assert!(param(params, "to").unwrap().ends_with('Z'));
            let m = param(params, "market").unwrap_or("");
            (
                200,
                format!(r#"[{{"market":"{m}","candle_date_time_utc":"2024-03-01T00:01:00","candle_date_time_kst":"2024-03-01T09:01:00","opening_price":100.5,"high_price":101,"low_price":100,"trade_price":100.7,"timestamp":1709251260000,"candle_acc_trade_price":1007.0,"candle_acc_trade_volume":10.0,"unit":1}},{{"market":"{m}","candle_date_time_utc":"2024-03-01T00:00:00","candle_date_time_kst":"2024-03-01T09:00:00","opening_price":100,"high_price":100.5,"low_price":99,"trade_price":100.5,"timestamp":1709251200000,"candle_acc_trade_price":502.5,"candle_acc_trade_volume":5.0,"unit":1}}]"#),
            )
        }
        ("GET", "/v1/withdraws/coin_addresses") => (
            200,
            r#"[{"currency":"BTC","net_type":"BTC","network_name":"Bitcoin","withdraw_address":"bc1qexample","secondary_address":null}]"#.into(),
        ),
        _ => (404, "not_found".into()),
    }
}

fn withdrawal(st: &FxState) -> String {
    let state = st.withdrawal_state.as_deref().unwrap_or("WAITING");
    serde_json::json!({"type":"withdraw","uuid":"w1","currency":"BTC","net_type":"BTC","txid":null,
        "state": state,"created_at":"2024-03-01T10:00:00+09:00","done_at":null,"amount":"0.1",
        "fee":"0.0005","transaction_type":"default","is_cancelable": state == "WAITING"})
    .to_string()
}

fn cancel_ids(st: &mut FxState, ids: &[String]) -> (u16, String) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for u in ids {
        match st.orders.get(u).map(String::as_str) {
            Some("wait") => {
                st.orders.insert(u.clone(), "cancel".into());
                ok.push(serde_json::json!({"uuid": u, "market": "KRW-BTC"}));
            }
            _ => failed.push(serde_json::json!({"uuid": u, "market": "KRW-BTC", "error_code": "not_cancelable", "error_message": "state"})),
        }
    }
    (
        200,
        serde_json::json!({"success": {"count": ok.len(), "orders": ok}, "failed": {"count": failed.len(), "orders": failed}}).to_string(),
    )
}

async fn start(fx: &Fx) -> String {
    let app = axum::Router::new().fallback(handle).with_state(fx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn fixture() -> Fx {
    Fx(Arc::new(Mutex::new(FxState::default())))
}

fn client(url: &str, recorder: Option<RunDir>, retries: u32) -> UpbitClient {
    let mut cfg = UpbitConfig::new(ACCESS, Secret::new(SECRET));
    cfg.base_url = Some(url.to_string());
    cfg.recorder = recorder;
    cfg.max_read_retries = retries;
    cfg.request_timeout = Duration::from_millis(500);
    // Longer than the fixture's 418 block window, short enough for fast tests.
    cfg.retry_base_delay = Duration::from_millis(150);
    UpbitClient::new(cfg).unwrap()
}

fn run_dir() -> (tempfile::TempDir, RunDir) {
    let t = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&t.path().join("run")).unwrap();
    (t, rd)
}

fn raw_files(rd: &RunDir) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(rd.path().join("raw"))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn quiet_panics() {
    // The fixture drops connections by panicking in a handler; keep the output readable.
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !msg.starts_with("fixture:") {
            prev(info);
        }
    }));
}

#[tokio::test]
async fn signed_reads_are_recorded_without_secrets_and_rebuild_offline() {
    let fx = fixture();
    {
        let mut st = fx.lock();
        st.orders.insert("o-1".into(), "wait".into());
        st.orders.insert("o-2".into(), "done".into());
    }
    let url = start(&fx).await;
    let (_t, rd) = run_dir();
    let c = client(&url, Some(rd.clone()), 2);

    let st = c.server_time().await.unwrap();
    assert!(st.offset_ms.abs() < 5_000, "{st:?}");
    let balances = c.balances().await.unwrap();
    assert_eq!(balances.len(), 2);
    let keys = c.api_keys().await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.is_current).count(), 1);
    assert!(keys
        .iter()
        .all(|k| !k.access_key_masked.contains("0123456")));
    let open = c.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    let to = Utc.with_ymd_and_hms(2024, 3, 5, 0, 0, 0).unwrap();
    let closed = c
        .closed_orders(&ClosedOrdersQuery {
            window: Window {
                from: to - chrono::Duration::days(7),
                to,
            },
            market: Some(market("KRW-BTC")),
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    let too_long = c
        .closed_orders(&ClosedOrdersQuery {
            window: Window {
                from: to - chrono::Duration::days(8),
                to,
            },
            market: None,
            limit: 10,
        })
        .await;
    assert!(matches!(too_long, Err(Error::Config(_))));
    let (o, fills) = c
        .order_with_fills(&OrderRef {
            id: "o-2".into(),
            market: Some(market("KRW-BTC")),
        })
        .await
        .unwrap();
    assert_eq!((o.state, fills.len()), (OrderState::Done, 0));
    let since = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(c.withdrawals(since).await.unwrap().len(), 1);
    assert_eq!(c.deposits(since).await.unwrap().len(), 0);
    assert_eq!(c.withdrawal_addresses().await.unwrap().len(), 1);
    let probe = c.probe_permissions().await.unwrap();
    assert!(probe.critical);
    assert!(probe.expire_at.is_some());
    let held = |s: &str| probe.scopes.iter().find(|p| p.scope == s).unwrap().held;
    assert_eq!(held("view_account"), Some(true));
    assert_eq!(held("make_withdrawals"), None);
    assert!(matches!(
        c.revoke_key().await,
        Err(Error::Unsupported { .. })
    ));
    let candles = c.candles(&market("KRW-BTC"), 1, to, 2).await.unwrap();
    assert_eq!(candles.len(), 2);
    assert!(candles[0].start > candles[1].start, "newest first");
    assert!(matches!(
        c.candles(&market("KRW-BTC"), 1, to, 201).await,
        Err(Error::Config(_))
    ));

    let state = fx.lock();
    assert!(state.auth_failures.is_empty(), "{:?}", state.auth_failures);
    let hits = state.hits.len();
    drop(state);
    // Every request left a body and a sidecar; none contains the secret or a token. The
    // full access key appears only where Upbit itself sent it (the verbatim key list), never
    // in what the client wrote about its requests.
    let files = raw_files(&rd);
    assert_eq!(files.len(), hits * 2, "one body + one sidecar per request");
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(SECRET), "secret in {name}");
        assert!(!text.to_lowercase().contains("bearer"), "token in {name}");
        assert!(!text.contains("eyJ"), "a JWT in {name}");
        if name.ends_with(".meta.json") {
            assert!(!text.contains(ACCESS), "full access key in {name}");
        } else if text.contains(ACCESS) {
            assert!(name.contains("v1_api_keys"), "full access key in {name}");
        }
    }
    // The offline rebuild sees what the live calls saw.
    let input = replay::rebuild(&DESCRIPTOR, rd.path(), RebuildOptions::default()).unwrap();
    assert_eq!(input.exchange, "upbit");
    assert_eq!(input.balances_start, balances);
    assert_eq!(
        input.balances_end.len(),
        2,
        "a second /v1/accounts (the probe)"
    );
    assert_eq!(input.orders.len(), 2);
    assert_eq!(input.withdrawals.len(), 1);
    assert_eq!(input.withdrawal_addresses.len(), 1);
    assert_eq!(input.keys.iter().filter(|k| k.is_current).count(), 1);
    assert_eq!(input.key_masked, c.key_id_masked());
    assert_eq!(input.local_utc_offset_secs, 9 * 3600);
    assert_eq!(input.candles["KRW-BTC"], candles);
    assert!(input.orders[0]
        .provenance
        .as_ref()
        .unwrap()
        .raw_file
        .starts_with("raw/"));
}

#[tokio::test]
async fn reads_retry_through_500_truncation_drop_timeout_and_429_without_418() {
    quiet_panics();
    let fx = fixture();
    fx.script(
        "GET",
        "/v1/accounts",
        vec![
            Script::Envelope(500, "server_error"),
            Script::Truncated,
            Script::Drop,
            Script::Slow(Duration::from_millis(800)),
            Script::Status(429, "Too many requests"),
        ],
    );
    let url = start(&fx).await;
    let (_t, rd) = run_dir();
    let c = client(&url, Some(rd.clone()), 6);
    let b = c.balances().await.unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(fx.hits("GET", "/v1/accounts"), 6);
    let st = fx.lock();
    assert_eq!(st.count_418, 0, "the client sent into a block");
    assert!(st.auth_failures.is_empty());
    drop(st);
    // The truncated body is on disk even though it never parsed; the drop is recorded as
    // status 0 with an empty body.
    let files = raw_files(&rd);
    assert!(files
        .iter()
        .any(|(n, b)| n.ends_with(".body") && b == br#"[{"currency":"KRW","balance":"10"#));
    assert!(files
        .iter()
        .any(|(n, b)| n.ends_with(".meta.json")
            && String::from_utf8_lossy(b).contains("\"status\": 0")));
    // Offline, the truncated answer is superseded by the retry that parsed.
    let r = replay::rebuild(&DESCRIPTOR, rd.path(), RebuildOptions::default()).unwrap();
    assert_eq!(r.balances_start, b);
    assert_eq!(r.skipped.len(), 1);
    assert!(
        r.skipped[0].reason.contains("superseded"),
        "{:?}",
        r.skipped
    );
}

#[tokio::test]
async fn a_storm_of_429_is_survived_without_418() {
    let fx = fixture();
    fx.script(
        "GET",
        "/v1/api_keys",
        vec![
            Script::Status(429, "Too many requests"),
            Script::Status(429, "Too many requests"),
            Script::Status(429, "Too many requests"),
        ],
    );
    let url = start(&fx).await;
    let c = client(&url, None, 5);
    // Each scripted 429 arms the fixture's block: a request inside it would get 418.
    assert_eq!(c.api_keys().await.unwrap().len(), 2);
    assert_eq!(fx.hits("GET", "/v1/api_keys"), 4);
    assert_eq!(fx.lock().count_418, 0);
}

#[tokio::test]
async fn a_truncated_body_fails_parsing_but_is_on_disk_and_offline_names_it() {
    let fx = fixture();
    fx.script("GET", "/v1/accounts", vec![Script::Truncated]);
    let url = start(&fx).await;
    let (_t, rd) = run_dir();
    let c = client(&url, Some(rd.clone()), 0);
    match c.balances().await {
        Err(Error::Decode { endpoint, detail }) => {
            assert!(
                endpoint.contains("raw/000001-GET-v1_accounts.body"),
                "{endpoint}"
            );
            assert!(detail.contains("EOF"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let body = std::fs::read(rd.path().join("raw/000001-GET-v1_accounts.body")).unwrap();
    assert_eq!(body, br#"[{"currency":"KRW","balance":"10"#);
    let e = replay::rebuild(&DESCRIPTOR, rd.path(), RebuildOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("raw/000001-GET-v1_accounts.body") && e.contains("truncated"),
        "{e}"
    );
    let r = replay::rebuild(
        &DESCRIPTOR,
        rd.path(),
        RebuildOptions { skip_corrupt: true },
    )
    .unwrap();
    assert_eq!(r.skipped.len(), 1);
    assert!(r.balances_start.is_empty());
}

#[tokio::test]
async fn a_cancel_with_unknown_outcome_is_checked_not_resent() {
    quiet_panics();
    let fx = fixture();
    {
        let mut st = fx.lock();
        st.orders.insert("o-applied".into(), "wait".into());
        st.orders.insert("o-lost".into(), "wait".into());
    }
    // First: the exchange cancels, then the connection drops before the answer.
    fx.script(
        "DELETE",
        "/v1/order",
        vec![Script::ApplyThenDrop, Script::Envelope(500, "server_error")],
    );
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    let o = c.cancel_order(&oref("o-applied")).await.unwrap();
    assert_eq!(o.state, OrderState::Cancelled);
    assert_eq!(fx.hits("DELETE", "/v1/order"), 1, "the cancel was resent");
    // Second: a 500 and the order is still open: outcome unknown, still one DELETE.
    match c.cancel_order(&oref("o-lost")).await {
        Err(Error::OutcomeUnknown { what, .. }) => assert!(what.contains("o-lost")),
        other => panic!("{other:?}"),
    }
    assert_eq!(fx.hits("DELETE", "/v1/order"), 2);
    assert!(fx.lock().auth_failures.is_empty());
}

#[tokio::test]
async fn cancel_all_empties_the_book_within_budgets_and_is_idempotent() {
    let fx = fixture();
    fx.seed(340, 3);
    fx.lock().orders.insert("d-0001".into(), "done".into());
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    let report = c.cancel_all_open_orders().await.unwrap();
    assert_eq!(report.cancelled.len(), 343, "failed: {:?}", report.failed);
    assert!(report.failed.is_empty());
    assert!(report
        .cancelled
        .iter()
        .all(|o| o.state == OrderState::Cancelled));
    assert_eq!(fx.hits("DELETE", "/v1/orders/open"), 1);
    assert_eq!(
        fx.hits("DELETE", "/v1/orders/uuids"),
        2,
        "40 left after the batch"
    );
    assert_eq!(fx.hits("DELETE", "/v1/order"), 3, "the watch orders");
    let budgets = c.budget_snapshot();
    assert!(budgets
        .iter()
        .any(|b| b.group == "order-cancel-all" && b.limit == 1));
    // Again: nothing open, nothing sent but the listing.
    let again = c.cancel_all_open_orders().await.unwrap();
    assert!(again.cancelled.is_empty() && again.failed.is_empty());
    assert_eq!(fx.hits("DELETE", "/v1/orders/open"), 1);
    let st = fx.lock();
    assert_eq!((st.count_429, st.count_418), (0, 0));
    for (g, max) in &st.max_in_window {
        assert!(*max <= budget(g).0, "group {g}: {max} in one window");
    }
    assert!(st.auth_failures.is_empty(), "{:?}", st.auth_failures);
}

#[tokio::test]
async fn a_burst_of_reads_never_exceeds_the_group_budget() {
    let fx = fixture();
    let url = start(&fx).await;
    let c = Arc::new(client(&url, None, 0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..12 {
                c.balances().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st = fx.lock();
    assert_eq!(st.hits.len(), 48);
    assert_eq!((st.count_429, st.count_418), (0, 0));
    assert!(st.max_in_window["default"] <= 30);
}

/// Six readers of eight balances each, `/v1/accounts` answering as usual 27 times and then
/// `then`: the fixture afterwards, and how many reads a 418 refused (never retried).
async fn readers_once_the_window_fills(then: Vec<Script>) -> (Fx, usize) {
    let fx = fixture();
    let mut script = vec![Script::Pass; 27];
    script.extend(then);
    fx.script("GET", "/v1/accounts", script);
    let url = start(&fx).await;
    let c = Arc::new(client(&url, None, 3));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..8 {
                match c.balances().await {
                    Ok(_) => {}
                    Err(Error::RateLimited { status: 418, .. }) => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    (fx, refused)
}

#[tokio::test]
async fn a_count_on_a_server_error_grants_no_sends() {
    // The window fills, then three 500s say the whole budget is left while reads wait.
    let (fx, refused) =
        readers_once_the_window_fills(std::iter::repeat_n(Script::FullCount(500), 3).collect())
            .await;
    assert_eq!(refused, 0);
    let st = fx.lock();
    assert_eq!((st.count_429, st.count_418), (0, 0));
    assert!(st.max_in_window["default"] <= 30);
}

#[tokio::test]
async fn a_count_on_a_418_grants_no_sends() {
    // The window fills, then the 28th read is refused with 418 and "30 left" (no block: its
    // Retry-After is 0). Counted as a grant, that count would let the readers' next sends
    // out inside the window that already holds 28, and the fixture would refuse them with 429.
    let (fx, refused) =
        readers_once_the_window_fills(vec![Script::RefusalWithFullCount(418)]).await;
    assert_eq!(refused, 1, "the refused read reaches its reader");
    let st = fx.lock();
    assert_eq!((st.count_429, st.count_418), (0, 0));
    assert!(st.max_in_window["default"] <= 30);
}

#[tokio::test]
async fn the_servers_remaining_count_is_adopted_when_another_client_shares_the_key() {
    let fx = fixture();
    // Another client uses 22 of the 30 default requests in every window.
    fx.lock().phantom.insert("default".into(), 22);
    let url = start(&fx).await;
    let c = client(&url, None, 0);
    for _ in 0..14 {
        c.balances().await.unwrap();
    }
    let st = fx.lock();
    assert_eq!(st.hits.len(), 14);
    assert_eq!((st.count_429, st.count_418), (0, 0));
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let mut cfg = UpbitConfig::new(ACCESS, Secret::new(SECRET));
    cfg.base_url = Some("http://api.upbit.com".into());
    match UpbitClient::new(cfg) {
        Err(Error::Config(m)) => assert!(m.contains("loopback"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_batch_cancel_with_unknown_outcome_is_settled_by_listing_not_resent() {
    quiet_panics();
    let fx = fixture();
    fx.seed(50, 0);
    fx.script("DELETE", "/v1/orders/open", vec![Script::ApplyThenDrop]);
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    let report = c.cancel_all_open_orders().await.unwrap();
    assert_eq!(report.cancelled.len(), 50, "failed: {:?}", report.failed);
    assert!(report.failed.is_empty());
    assert_eq!(fx.hits("DELETE", "/v1/orders/open"), 1);
    assert_eq!(fx.hits("DELETE", "/v1/orders/uuids"), 0);
    let st = fx.lock();
    assert_eq!((st.count_429, st.count_418), (0, 0));
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_not_retried() {
    let fx = fixture();
    fx.script(
        "GET",
        "/v1/accounts",
        vec![Script::Status(200, r#"{"unexpected":true}"#)],
    );
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    assert!(matches!(c.balances().await, Err(Error::Decode { .. })));
    assert_eq!(fx.hits("GET", "/v1/accounts"), 1);
    // Error envelopes are classified by name, whatever the status: out_of_scope at 401 too.
    fx.script(
        "GET",
        "/v1/accounts",
        vec![Script::Envelope(401, "out_of_scope")],
    );
    match c.balances().await {
        Err(e) => {
            assert_eq!((e.code(), e.is_retryable()), (Some("out_of_scope"), false));
            assert!(e.is_out_of_scope());
        }
        Ok(_) => panic!("expected out_of_scope"),
    }
}

#[tokio::test]
async fn probe_reads_scopes_from_error_names_at_either_status() {
    let fx = fixture();
    fx.script(
        "GET",
        "/v1/withdraws",
        vec![Script::Envelope(403, "out_of_scope")],
    );
    fx.script(
        "GET",
        "/v1/withdraws/coin_addresses",
        vec![Script::Envelope(401, "out_of_scope")],
    );
    fx.script(
        "GET",
        "/v1/deposits",
        vec![Script::Envelope(401, "no_authorization_ip")],
    );
    let url = start(&fx).await;
    let c = client(&url, None, 1);
    let probe = c.probe_permissions().await.unwrap();
    let held = |s: &str| probe.scopes.iter().find(|p| p.scope == s).unwrap().held;
    assert_eq!(held("view_account"), Some(true));
    assert_eq!(held("view_orders"), Some(true));
    assert_eq!(held("view_withdrawals"), Some(false));
    assert_eq!(held("view_deposits"), None);
    assert_eq!(held("make_orders"), None);
    assert_eq!(probe.ip_restricted, Some(true));
    assert!(probe.critical);
    // Nothing but reads was sent.
    assert!(fx.lock().hits.iter().all(|(m, _)| m == "GET"));
}

#[tokio::test]
async fn a_big_book_is_cancelled_by_batch_and_uuid_calls_together_within_both_budgets() {
    let fx = fixture();
    fx.seed(700, 0);
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    let report = c.cancel_all_open_orders().await.unwrap();
    assert_eq!(report.cancelled.len(), 700, "failed: {:?}", report.failed);
    assert!(fx.hits("DELETE", "/v1/orders/open") >= 1);
    assert!(fx.hits("DELETE", "/v1/orders/uuids") >= 1);
    let st = fx.lock();
    assert_eq!((st.count_429, st.count_418), (0, 0));
    for (g, max) in &st.max_in_window {
        assert!(*max <= budget(g).0, "group {g}: {max} in one window");
    }
    assert!(st.orders.values().all(|s| s == "cancel"));
}

#[tokio::test]
async fn a_second_key_shares_the_budget_and_the_run_directory() {
    let fx = fixture();
    let url = start(&fx).await;
    let (_t, rd) = run_dir();
    let c = client(&url, Some(rd.clone()), 0);
    c.balances().await.unwrap();
    let other = c
        .with_key(
            "readonly-access-key-987654321",
            Secret::new("readonly-secret-value-0009"),
        )
        .unwrap();
    assert_ne!(other.key_id_masked(), c.key_id_masked());
    // The fixture only knows the primary key's secret: the other key's token fails to verify,
    // which proves it signs with its own secret.
    let e = other.balances().await.unwrap_err();
    assert_eq!(e.code(), Some("jwt_verification"));
    assert_eq!(e.kind(), Some(respond::exchange::ErrorKind::BadSignature));
    let files = raw_files(&rd);
    assert!(
        files.iter().any(|(n, _)| n.starts_with("000002-")),
        "numbering continues"
    );
    assert!(files.iter().any(|(n, b)| n.starts_with("000002-")
        && n.ends_with(".meta.json")
        && String::from_utf8_lossy(b).contains(&other.key_id_masked())));
    assert!(std::ptr::eq(c.rate_limiter(), other.rate_limiter()));
}

#[tokio::test]
async fn a_batch_cancel_that_did_not_take_is_finished_by_uuid_after_the_state_says_so() {
    let fx = fixture();
    fx.seed(50, 1);
    fx.script(
        "DELETE",
        "/v1/orders/open",
        vec![Script::Envelope(500, "server_error")],
    );
    fx.script(
        "DELETE",
        "/v1/order",
        vec![Script::Envelope(500, "server_error")],
    );
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    let report = c.cancel_all_open_orders().await.unwrap();
    assert_eq!(report.cancelled.len(), 51, "failed: {:?}", report.failed);
    // The failed batch is followed by listings; what is still open is then cancelled again
    // (by uuid, or by a batch if its 2 s slot came round first on a slow machine).
    let batches = fx.hits("DELETE", "/v1/orders/open");
    assert!((1..=2).contains(&batches), "{batches} batch calls");
    assert!(fx.hits("GET", "/v1/orders/open") >= 3);
    assert_eq!(fx.hits("DELETE", "/v1/order"), 2);
    let st = fx.lock();
    assert_eq!((st.count_429, st.count_418), (0, 0));
}

#[tokio::test]
async fn a_withdrawal_cancel_with_unknown_outcome_is_read_back_not_resent() {
    quiet_panics();
    let fx = fixture();
    fx.script("DELETE", "/v1/withdraws/coin", vec![Script::ApplyThenDrop]);
    let url = start(&fx).await;
    let c = client(&url, None, 3);
    let w = c.cancel_withdrawal("w1").await.unwrap();
    assert_eq!(w.state, "CANCELLED");
    assert!(!w.is_cancelable);
    assert_eq!(fx.hits("DELETE", "/v1/withdraws/coin"), 1);
    assert_eq!(fx.hits("GET", "/v1/withdraw"), 1);
}

#[tokio::test]
async fn hs512_tokens_verify_too() {
    let fx = fixture();
    let url = start(&fx).await;
    let mut cfg = UpbitConfig::new(ACCESS, Secret::new(SECRET));
    cfg.base_url = Some(url);
    cfg.jwt_alg = respond::exchange::upbit::auth::JwtAlg::Hs512;
    let c = UpbitClient::new(cfg).unwrap();
    assert_eq!(c.open_orders().await.unwrap().len(), 0);
    assert!(fx.lock().auth_failures.is_empty());
}

/// The export's progress bar shows the rate-limit budget in use: the adapter must report it
/// (the trait's default says nothing).
#[tokio::test]
async fn the_budget_in_use_is_reported_for_progress_bars() {
    let fx = fixture();
    let url = start(&fx).await;
    let c = client(&url, None, 0);
    c.balances().await.unwrap();
    let status = c.budget_status().expect("a request was just sent");
    assert!(status.starts_with("default 1/30"), "{status}");
}
