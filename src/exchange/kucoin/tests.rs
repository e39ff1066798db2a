//! The adapter's pieces over the documented samples (`docs/exchanges/kucoin.md`), and the
//! client against a tiny KuCoin stub over real loopback HTTP: signing and the signed
//! passphrase as a server checks them (the stub verifies with its own code), errors inside 200
//! and 4xx answers, the limit headers, `lastId` and page-number paging, the cancel rounds, the
//! master key's deletion of a sub-account key, and the offline rebuild of what the client
//! recorded.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::client::{KucoinClient, KucoinConfig, KucoinProtocol};
use super::{auth, errors, wire};
use crate::exchange::http::{Call, Protocol};
use crate::exchange::registry::{KeyMaterial, MasterKey};
use crate::exchange::{
    ClosedOrdersQuery, Error, ErrorKind, Exchange, FillsQuery, Market, OrderRef, OrderState,
    OrderType, ScopeClass, Side, TransferKind, TransferStatus, Window,
};
use crate::secret::Secret;

const KEY: &str = "respond-test-kucoin-key";
const SECRET: &str = "respond-test-kucoin-secret-0000";
const PASS: &str = "respond-test-passphrase";
const MKEY: &str = "respond-test-kucoin-master";
const MSECRET: &str = "respond-test-kucoin-master-secret";
const MPASS: &str = "respond-test-master-passphrase";

// ---------------------------------------------------------------- signing

#[test]
fn signing_matches_the_documented_vectors() {
    let secret = Secret::new(SECRET);
    let ts = 1735776000000;
    let sign = |m: &str, path: &str, q: &str, body: &str| {
        auth::hmac_b64(&secret, &auth::prehash(ts, m, path, q, body))
    };
    assert_eq!(
        sign(
            "GET",
            "/api/v1/hf/fills",
            "symbol=BTC-USDT&startAt=1735171200000&endAt=1735775999999&limit=100",
            ""
        ),
        "m/9MaIYX3ngrrQAWFMN88g94oj4ob+tyJXC04bdhmDY="
    );
    assert_eq!(
        sign("delete", "/api/v1/hf/orders/cancelAll", "", ""),
        "U7vOe/GTlpU+3mbEwVoUsQ7NtImrjq0NKYd5PzO2WQU="
    );
    assert_eq!(
        sign(
            "POST",
            "/api/v1/hf/orders",
            "",
            r#"{"clientOid":"5c52e11203aa677f33e493fb","side":"buy","symbol":"BTC-USDT","type":"market","funds":"100"}"#
        ),
        "fsTtknEnvCaO8VUQ1vnrgVdZRJr6qCHTSrcLxQ/CD7w="
    );
    let prehash = auth::prehash(ts, "GET", "/api/v1/user/api-key", "", "");
    assert_eq!(
        auth::hmac_b64(&secret, &prehash),
        "WJKg2nrzsfwpeI1N//IDUOUtOdlP4xnX8thPQayn4Mk="
    );
    let h = auth::headers(KEY, &secret, &Secret::new(PASS), ts, &prehash);
    let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(
        get("KC-API-PASSPHRASE"),
        Some("kCWWLPv4LR7jfzwfPybYXqOcPh4jNwvhNdTKhMS6Zy4=")
    );
    assert_eq!(get("KC-API-KEY-VERSION"), Some("2"));
    assert_eq!(get("KC-API-TIMESTAMP"), Some("1735776000000"));
    assert_eq!(get("KC-API-KEY"), Some(KEY));
    assert!(h.iter().all(|(_, v)| !v.contains(PASS)));
    assert_eq!(
        auth::raw_query(&[("a".into(), "x,y".into()), ("b".into(), "1".into())]),
        "a=x,y&b=1"
    );
}

// ---------------------------------------------------------------- wire samples

const API_KEY: &str = r#"{"code":"200000","data":{"remark":"grid bot","apiKey":"6705f5c311545b000157d3eb","apiVersion":3,
 "permission":"General,Spot","ipWhitelist":"","createdAt":1728443843000,"uid":165111215,"isMaster":true}}"#;

fn order_json(id: &str, active: bool, cancel: bool, typ: &str, size: &str, funds: &str) -> String {
    format!(
        r#"{{"id":"{id}","clientOid":"c-{id}","symbol":"BTC-USDT","opType":"DEAL","type":"{typ}","side":"buy","price":"95000","size":"{size}","funds":"{funds}","dealSize":"0.004","dealFunds":"380","remainSize":"0.006","remainFunds":"570","cancelledSize":"0","cancelledFunds":"0","fee":"0.38","feeCurrency":"USDT","stp":null,"timeInForce":"GTC","postOnly":false,"hidden":false,"iceberg":false,"visibleSize":"0","cancelAfter":0,"channel":"API","remark":"","tags":null,"cancelExist":{cancel},"tradeType":"TRADE","inOrderBook":true,"active":{active},"tax":"0","createdAt":1735775000000,"lastUpdatedAt":1735775100000}}"#
    )
}

const FILLS: &str = r#"{"code":"200000","data":{"items":[{"id":19814995255305,"orderId":"6717422bd51c29000775ea03","counterOrderId":"67174228135f9e000709da8c",
 "tradeId":11029373945659392,"symbol":"BTC-USDT","side":"buy","liquidity":"maker","type":"limit","forceTaker":false,
 "price":"95000","size":"0.004","funds":"380","fee":"0.38","feeRate":"0.001","feeCurrency":"USDT","stop":"",
 "tradeType":"TRADE","taxRate":"0","tax":"0","createdAt":1735775100000}],"lastId":19814995255305}}"#;

const WITHDRAWALS: &str = r#"{"code":"200000","data":{"currentPage":1,"pageSize":50,"totalNum":1,"totalPage":1,"items":[{"id":"67e6515f7960ba0007b42025",
 "currency":"USDT","chain":"trx","status":"PROCESSING","address":"TSv3L1fS7yA3SxzKD8c1qdX4nLP6rqNxYz","memo":"","isInner":false,
 "amount":"100.00000000","fee":"1.00000000","walletTxId":null,"createdAt":1735770000000,"updatedAt":1735770300000,
 "remark":""}]}}"#;

const SYMBOLS: &str = r#"{"code":"200000","data":[{"symbol":"BTC-USDT","name":"BTC-USDT","baseCurrency":"BTC","quoteCurrency":"USDT","feeCurrency":"USDT","market":"USDS","baseIncrement":"0.00000001","priceIncrement":"0.1","minFunds":"0.1","enableTrading":true},
 {"symbol":"PUMP-USDT","name":"PUMP-USDT","baseCurrency":"PUMP","quoteCurrency":"USDT","baseIncrement":"0.01","priceIncrement":"0.0001","enableTrading":true},
 {"symbol":"ETH-BTC","name":"ETH-BTC","baseCurrency":"ETH","quoteCurrency":"BTC","enableTrading":true}]}"#;

fn env_err(code: &str, msg: &str) -> String {
    format!(r#"{{"code":"{code}","msg":"{msg}"}}"#)
}

#[test]
fn samples_parse() {
    let k = wire::parse_key(API_KEY.as_bytes()).unwrap();
    assert_eq!(k.held(), ["General", "Spot"]);
    assert!(k.bound_ips().is_empty() && !k.is_read_only());

    let markets: wire::Markets = wire::parse_symbols(SYMBOLS.as_bytes())
        .unwrap()
        .into_iter()
        .map(|m| (m.market.symbol.to_string(), m))
        .collect();
    assert_eq!(markets["ETH-BTC"].market.quote.as_str(), "BTC");

    let one = format!(
        r#"{{"code":"200000","data":{}}}"#,
        order_json(
            "6717422bd51c29000775ea03",
            true,
            false,
            "limit",
            "0.01",
            "950"
        )
    );
    let o = wire::parse_order(one.as_bytes(), &markets, None).unwrap();
    assert_eq!(o.state, OrderState::Open);
    assert_eq!(o.order_type, OrderType::Limit);
    assert_eq!(o.side, Side::Buy);
    assert_eq!(o.price.unwrap().to_string(), "95000");
    assert_eq!(o.remaining_volume.unwrap().to_string(), "0.006");
    assert_eq!(o.client_id.as_deref(), Some("c-6717422bd51c29000775ea03"));

    // Done (by lastId), a cancelled market buy by funds, and a filled one.
    let done = format!(
        r#"{{"code":"200000","data":{{"lastId":19814995255305,"items":[{},{}]}}}}"#,
        order_json("a", false, true, "market", "", "100"),
        order_json("b", false, false, "limit", "0.01", "950")
    );
    let page = wire::parse_orders(done.as_bytes(), &markets, None).unwrap();
    assert_eq!(page.next.as_deref(), Some("19814995255305"));
    assert_eq!(page.rows[0].state, OrderState::Cancelled);
    assert_eq!(page.rows[0].quote_amount.unwrap().to_string(), "100");
    assert!(page.rows[0].volume.is_none() && page.rows[0].price.is_none());
    assert_eq!(page.rows[1].state, OrderState::Done);

    // A fill id beyond 2^53 keeps every digit.
    let f = wire::parse_fills(FILLS.as_bytes(), &markets, None).unwrap();
    assert_eq!(f.rows[0].id, "11029373945659392");
    assert_eq!(f.rows[0].fee.unwrap().to_string(), "0.38");
    assert_eq!(f.next.as_deref(), Some("19814995255305"));

    let w = wire::parse_transfers(WITHDRAWALS.as_bytes(), TransferKind::Withdrawal, None).unwrap();
    assert_eq!(w.rows[0].status, TransferStatus::Pending);
    assert!(w.rows[0].is_cancelable);
    assert!(w.rows[0].txid.is_none());
    assert!(w.next.is_none());

    // Candles: [time (s), open, close, high, low, volume, turnover].
    let c = wire::parse_candles(
        br#"{"code":"200000","data":[["1735775940","95100","95218","95240","95080","12.345","1174563.21"]]}"#,
        &Market::new("BTC-USDT", "BTC", "USDT"),
    )
    .unwrap();
    assert_eq!(c[0].start.timestamp(), 1735775940);
    assert_eq!(
        (
            c[0].close.to_string(),
            c[0].high.to_string(),
            c[0].low.to_string()
        ),
        ("95218".into(), "95240".into(), "95080".into())
    );

    let failed = wire::parse_cancel_all_failed(
        br#"{"code":"200000","data":{"succeedSymbols":["ETH-USDT"],"failedSymbols":[{"symbol":"XYZ-USDT","error":"busy"}]}}"#,
    )
    .unwrap();
    assert_eq!(failed, [("XYZ-USDT".to_string(), "busy".to_string())]);
    assert_eq!(
        wire::parse_active_symbols(
            br#"{"code":"200000","data":{"symbols":["ETH-USDT","BTC-USDT"]}}"#
        )
        .unwrap(),
        ["ETH-USDT", "BTC-USDT"]
    );
    assert_eq!(
        wire::parse_cancelled(br#"{"code":"200000","data":{"cancelledOrderIds":["x","y"]}}"#)
            .unwrap(),
        ["x", "y"]
    );
    let b = wire::parse_balances(
        br#"{"code":"200000","data":[{"id":"1","currency":"USDT","type":"trade","balance":"1750","available":"1500","holds":"250"},
        {"id":"2","currency":"USDT","type":"main","balance":"10","available":"10","holds":"0"},
        {"id":"3","currency":"BTC","type":"trade","balance":"0","available":"0","holds":"0"}]}"#,
    )
    .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].free.to_string(), b[0].locked.to_string()),
        ("1510".into(), "250".into())
    );
    assert!(wire::data::<bool>(env_err("400003", "x").as_bytes()).is_err());
}

#[test]
fn codes_map_to_kinds() {
    for (code, kind) in [
        ("400003", ErrorKind::KeyInvalid),
        // A missing header (a proxy may strip one) is no proof that the key is gone.
        ("400001", ErrorKind::BadSignature),
        ("400004", ErrorKind::BadSignature),
        ("400005", ErrorKind::BadSignature),
        ("400002", ErrorKind::ClockSkew),
        ("400006", ErrorKind::IpNotAllowed),
        ("400007", ErrorKind::PermissionDenied),
        ("429000", ErrorKind::RateLimited),
        ("200004", ErrorKind::InsufficientFunds),
        ("400100", ErrorKind::InvalidRequest),
        ("order_not_exist", ErrorKind::NotFound),
        ("999999", ErrorKind::Other),
    ] {
        assert_eq!(errors::kind_of(400, code), kind, "{code}");
        assert!(!errors::classify(code).1.is_empty());
    }
    assert_eq!(errors::kind_of(503, "999999"), ErrorKind::ServerError);
    assert_eq!(
        errors::kind_of_msg(400, "400100", "The order does not exist."),
        ErrorKind::NotFound
    );
    assert_eq!(
        errors::kind_of_msg(400, "400100", "Order size below the minimum requirement."),
        ErrorKind::InvalidRequest
    );
    let call = Call::get("/api/v1/accounts", vec![]);
    // An error inside an HTTP 200 answer.
    let e = KucoinProtocol
        .classify(&call, 200, env_err("400007", "Access Denied").as_bytes())
        .unwrap_err();
    assert!(e.is_out_of_scope(), "{e}");
    let e = KucoinProtocol
        .classify(
            &call,
            401,
            env_err("400003", "KC-API-KEY not exists").as_bytes(),
        )
        .unwrap_err();
    assert!(e.is_key_dead() && e.refuses_key(), "{e}");
    assert!(matches!(
        KucoinProtocol.classify(&call, 429, env_err("429000", "Too many").as_bytes()),
        Err(Error::RateLimited { .. })
    ));
    assert!(KucoinProtocol
        .classify(&call, 200, br#"{"code":"200000","data":[]}"#)
        .is_ok());
    assert!(
        errors::never_accepted_advice(ErrorKind::BadSignature, "400004")
            .contains("KUCOIN_PASSPHRASE")
    );
}

// ---------------------------------------------------------------- the client against a stub

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: String,
    headers: HeaderMap,
}

impl Seen {
    fn param(&self, k: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
    }
    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
    fn header(&self, n: &str) -> Option<String> {
        self.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

type Reply = (u16, Vec<(&'static str, String)>, String);
type Route = Box<dyn FnMut(&Seen) -> Reply + Send>;

struct Stub {
    seen: Mutex<Vec<Seen>>,
    route: Mutex<Route>,
}

fn b64_hmac(secret: &str, text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks the five headers the way KuCoin documents it, with code of its own: the key, the
/// signed passphrase, then the signature over the percent-decoded query.
fn verify(s: &Seen) -> Result<(), &'static str> {
    let (Some(key), Some(ts), Some(sign), Some(pass)) = (
        s.header("kc-api-key"),
        s.header("kc-api-timestamp"),
        s.header("kc-api-sign"),
        s.header("kc-api-passphrase"),
    ) else {
        return Err("400001");
    };
    let (secret, passphrase) = match key.as_str() {
        KEY => (SECRET, PASS),
        MKEY => (MSECRET, MPASS),
        _ => return Err("400003"),
    };
    if s.header("kc-api-key-version").as_deref() != Some("2")
        || pass != b64_hmac(secret, passphrase)
    {
        return Err("400004");
    }
    let q: Vec<String> = url::form_urlencoded::parse(s.query.as_bytes())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let q = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    if sign != b64_hmac(secret, &format!("{ts}{}{}{q}{}", s.method, s.path, s.body)) {
        return Err("400005");
    }
    Ok(())
}

async fn handle(
    axum::extract::State(stub): axum::extract::State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        body,
        headers,
    };
    stub.seen.lock().unwrap().push(seen.clone());
    if seen.path == "/api/v1/timestamp" {
        let now = Utc::now().timestamp_millis();
        return reply(200, vec![], format!(r#"{{"code":"200000","data":{now}}}"#));
    }
    if seen.path == "/api/v2/symbols" {
        return reply(200, vec![], SYMBOLS.into());
    }
    if let Err(code) = verify(&seen) {
        return reply(401, vec![], env_err(code, "refused by the stub"));
    }
    let (st, h, b) = (stub.route.lock().unwrap())(&seen);
    reply(st, h, b)
}

fn reply(status: u16, headers: Vec<(&'static str, String)>, body: String) -> Response {
    let mut r = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    for (k, v) in headers {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

struct Running {
    url: String,
    stub: Arc<Stub>,
}

impl Running {
    fn seen(&self) -> Vec<Seen> {
        self.stub.seen.lock().unwrap().clone()
    }
    fn count(&self, method: &str, path: &str) -> usize {
        self.seen().iter().filter(|s| s.is(method, path)).count()
    }
    fn config(&self, rundir: Option<crate::rundir::RunDir>) -> KucoinConfig {
        let mut cfg = KucoinConfig::new(KEY, Secret::new(SECRET));
        cfg.passphrase = Some(Secret::new(PASS));
        cfg.base_url = Some(self.url.clone());
        cfg.retry_base_delay = std::time::Duration::from_millis(1);
        cfg.recorder = rundir;
        cfg
    }
    fn client(&self, rundir: Option<crate::rundir::RunDir>) -> KucoinClient {
        KucoinClient::new(self.config(rundir)).unwrap()
    }
}

async fn stub(route: impl FnMut(&Seen) -> Reply + Send + 'static) -> Running {
    let stub = Arc::new(Stub {
        seen: Mutex::new(Vec::new()),
        route: Mutex::new(Box::new(route)),
    });
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Running { url, stub }
}

fn ok(data: &str) -> Reply {
    (200, vec![], format!(r#"{{"code":"200000","data":{data}}}"#))
}

fn window() -> Window {
    let to = Utc.timestamp_millis_opt(1735776000000).unwrap();
    Window {
        from: to - chrono::Duration::days(1),
        to,
    }
}

/// A KuCoin key has three parts: without the passphrase the client refuses to start, naming
/// the variable and never a value.
#[test]
fn a_key_without_its_passphrase_is_refused_by_name() {
    let cfg = KucoinConfig::new(KEY, Secret::new(SECRET));
    let e = KucoinClient::new(cfg).unwrap_err().to_string();
    assert!(e.contains("KUCOIN_PASSPHRASE"), "{e}");
    assert!(!e.contains(SECRET) && !e.contains(KEY), "{e}");
}

/// Every signed request verifies at a server (signature over the decoded query, passphrase
/// HMAC-signed, version 2), and the passphrase itself never crosses the wire.
#[tokio::test]
async fn requests_are_signed_as_kucoin_checks_them() {
    let s = stub(|seen| {
        if seen.is("GET", "/api/v1/accounts") {
            (
                200,
                vec![
                    ("gw-ratelimit-limit", "2000".into()),
                    ("gw-ratelimit-remaining", "1995".into()),
                    ("gw-ratelimit-reset", "29000".into()),
                ],
                r#"{"code":"200000","data":[{"currency":"USDT","type":"trade","available":"10","holds":"0"}]}"#.into(),
            )
        } else if seen.is("GET", "/api/v1/hf/fills") {
            ok(r#"{"items":[],"lastId":0}"#)
        } else if seen.is("GET", "/api/v1/fills") {
            ok(r#"{"currentPage":1,"pageSize":500,"totalNum":0,"totalPage":0,"items":[]}"#)
        } else {
            panic!("unexpected {} {}", seen.method, seen.path)
        }
    })
    .await;
    let c = s.client(None);
    assert_eq!(c.balances().await.unwrap()[0].currency, "USDT");
    assert!(c.key_accepted_at().is_some());
    assert!(c.budget_status().unwrap_or_default().contains("Management"));
    c.fills(&FillsQuery {
        window: window(),
        market: Some(Market::new("BTC-USDT", "BTC", "USDT")),
        limit: 100,
    })
    .await
    .unwrap();
    let fills = s
        .seen()
        .into_iter()
        .find(|x| x.path == "/api/v1/hf/fills")
        .unwrap();
    assert_eq!(fills.param("symbol").as_deref(), Some("BTC-USDT"));
    assert_eq!(fills.param("endAt").as_deref(), Some("1735775999999"));
    for x in s.seen() {
        assert!(!x.query.contains(PASS) && !format!("{:?}", x.headers).contains(PASS));
    }
    // The fills query must name a symbol (HF history is kept per symbol).
    let e = c
        .fills(&FillsQuery {
            window: window(),
            market: None,
            limit: 100,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

/// Errors inside 200 answers and 4xx ones are classified by code. (A 429000 parks the pool
/// for its 30-second window in the shared limiter: pinned by `codes_map_to_kinds`, not waited
/// out here.)
#[tokio::test]
async fn errors_in_any_answer_are_classified() {
    let s = stub(move |seen| match seen.path.as_str() {
        "/api/v1/accounts" => ok("[]"),
        "/api/v1/user/api-key" => (200, vec![], env_err("400007", "Access Denied")),
        "/api/v1/withdrawals" => (403, vec![], env_err("400006", "ip not in whitelist")),
        _ => panic!("unexpected {}", seen.path),
    })
    .await;
    let c = s.client(None);
    assert!(c.balances().await.unwrap().is_empty());
    assert_eq!(s.count("GET", "/api/v1/accounts"), 1);
    let e = c.probe_permissions().await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::PermissionDenied), "{e}");
    assert!(e.proves_key_accepted());
    let e = c.withdrawals(window().from).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::IpNotAllowed), "{e}");
    // A wrong passphrase is the stub's 400004.
    let mut cfg = s.config(None);
    cfg.passphrase = Some(Secret::new("respond-wrong-passphrase"));
    let e = KucoinClient::new(cfg)
        .unwrap()
        .balances()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("400004"));
    assert!(e.refuses_key() && !e.to_string().contains("respond-wrong-passphrase"));
}

/// HF closed orders follow `lastId` until an empty page; the classic family is read page by
/// page too. A classic path KuCoin does not serve (404000) on its first page counts as no
/// classic orders; refused on a later page, it is an error, never a short list.
#[tokio::test]
async fn hf_cursor_and_classic_pages_are_followed() {
    let s = stub(|seen| {
        let symbol = seen.param("symbol").unwrap_or_default();
        match (seen.path.as_str(), seen.param("lastId")) {
            ("/api/v1/hf/orders/done", None) => ok(&format!(
                r#"{{"lastId":5,"items":[{}]}}"#,
                order_json("h1", false, false, "limit", "0.01", "950")
            )),
            ("/api/v1/hf/orders/done", Some(l)) if l == "5" => ok(r#"{"lastId":0,"items":[]}"#),
            ("/api/v1/orders", _) if symbol == "ETH-BTC" => {
                (404, vec![], env_err("404000", "Url Not Found"))
            }
            ("/api/v1/orders", _) => match (symbol.as_str(), seen.param("currentPage").as_deref()) {
                (_, Some("1")) => ok(&format!(
                    r#"{{"currentPage":1,"pageSize":500,"totalNum":2,"totalPage":2,"items":[{}]}}"#,
                    order_json("c1", false, true, "limit", "0.01", "950")
                        .replace("\"active\"", "\"isActive\"")
                )),
                ("BTC-USDT", Some("2")) => ok(&format!(
                    r#"{{"currentPage":2,"pageSize":500,"totalNum":2,"totalPage":2,"items":[{}]}}"#,
                    order_json("c2", false, false, "limit", "0.01", "950")
                )),
                _ => (404, vec![], env_err("404000", "Url Not Found")),
            },
            _ => panic!("unexpected {} {:?}", seen.path, seen.query),
        }
    })
    .await;
    let c = s.client(None);
    let q = |market| ClosedOrdersQuery {
        window: window(),
        market,
        limit: 1000,
    };
    let e = c.closed_orders(&q(None)).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let got = c
        .closed_orders(&q(Some(Market::new("BTC-USDT", "BTC", "USDT"))))
        .await
        .unwrap();
    let mut ids: Vec<&str> = got.iter().map(|o| o.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["c1", "c2", "h1"]);
    assert_eq!(s.count("GET", "/api/v1/hf/orders/done"), 2);
    let eth = c
        .closed_orders(&q(Some(Market::new("ETH-BTC", "ETH", "BTC"))))
        .await
        .unwrap();
    assert_eq!(eth.len(), 1, "HF only: the classic path is not served");
    let e = c
        .closed_orders(&q(Some(Market::new("PUMP-USDT", "PUMP", "USDT"))))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
}

/// KuCoin lists HF closed orders newest first by their last update. A call cut at its limit
/// reads on until `limit` orders are provably whole (created after the oldest update read)
/// and answers only those: a long-lived order updated late never makes the call claim older
/// orders it has not read. The classic list of a span read to its end is not read again for a
/// query inside that span.
#[tokio::test]
async fn a_cut_hf_list_answers_only_what_it_provably_holds() {
    let to = window().to.timestamp_millis();
    let min = 60_000;
    // (id, created, last updated), minutes before the window's end, newest update first.
    let rows = [
        ("a", 120, 0),
        ("b", 240, 60),
        ("c", 90, 89),
        ("d", 100, 99),
        ("e", 130, 110),
        ("f", 115, 114),
        ("g", 118, 117),
        ("h", 119, 118),
    ];
    let order = move |(id, created, updated): (&str, i64, i64)| {
        order_json(id, false, false, "limit", "0.01", "950").replace(
            r#""createdAt":1735775000000,"lastUpdatedAt":1735775100000"#,
            &format!(
                r#""createdAt":{},"lastUpdatedAt":{}"#,
                to - created * min,
                to - updated * min
            ),
        )
    };
    let s = stub(move |seen| match seen.path.as_str() {
        "/api/v1/hf/orders/done" => {
            let from: usize = seen
                .param("lastId")
                .map_or(0, |l| l.parse::<usize>().unwrap());
            let page: Vec<String> = rows.iter().skip(from).take(3).map(|r| order(*r)).collect();
            ok(&format!(
                r#"{{"lastId":{},"items":[{}]}}"#,
                from + page.len(),
                page.join(",")
            ))
        }
        "/api/v1/orders" => {
            ok(r#"{"currentPage":1,"pageSize":500,"totalNum":0,"totalPage":0,"items":[]}"#)
        }
        _ => panic!("unexpected {}", seen.path),
    })
    .await;
    let c = s.client(None);
    assert_eq!(
        c.closed_orders_full_page(),
        crate::exchange::FullPage::Newest
    );
    let btc = Market::new("BTC-USDT", "BTC", "USDT");
    let got = c
        .closed_orders(&ClosedOrdersQuery {
            window: window(),
            market: Some(btc.clone()),
            limit: 3,
        })
        .await
        .unwrap();
    // After a, b, c the oldest update is c's and nothing was created since: read on. After
    // d, e, f: c and d only. After g, h: the oldest update is h's, 118 minutes back, and c, d,
    // f and g (created then) were created since; a, b and e are left to the next query.
    let mut ids: Vec<&str> = got.iter().map(|o| o.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["c", "d", "f", "g"]);
    assert_eq!(s.count("GET", "/api/v1/hf/orders/done"), 3);
    assert_eq!(s.count("GET", "/api/v1/orders"), 1);
    // The export reads the rest of the span next: the classic list is known for it.
    let rest = Window {
        from: window().from,
        to: window().to - chrono::Duration::minutes(100),
    };
    c.closed_orders(&ClosedOrdersQuery {
        window: rest,
        market: Some(btc),
        limit: 3,
    })
    .await
    .unwrap();
    assert_eq!(s.count("GET", "/api/v1/orders"), 1, "classic read once");
}

/// Containment: every open order (HF from its symbols, classic, stop orders not triggered) is
/// cancelled by the cancel-all calls, the book listed again until empty, and each order's
/// final state read back. A stop order KuCoin named among the cancelled and no longer knows
/// when read back counts as cancelled.
#[tokio::test]
async fn cancel_rounds_cover_hf_classic_and_stop_orders() {
    let mut cancelled = false;
    let mut stop_cancelled = false;
    let stop = r#"{"id":"vs1","symbol":"BTC-USDT","userId":"u","status":"NEW","type":"limit","side":"sell","price":"90000","size":"0.01","funds":null,"stp":null,"timeInForce":"GTC","cancelAfter":-1,"postOnly":false,"hidden":false,"iceberg":false,"visibleSize":null,"channel":"API","clientOid":"s-1","remark":null,"tags":null,"orderTime":1735775000000000000,"domainId":"kucoin","tradeSource":"USER","tradeType":"TRADE","feeCurrency":"USDT","takerFeeRate":"0.001","makerFeeRate":"0.001","createdAt":1735775000000,"stop":"loss","stopTriggerTime":null,"stopPrice":"91000"}"#;
    let s = stub(
        move |seen| match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/api/v1/stop-order") => {
                assert_eq!(seen.param("tradeType").as_deref(), Some("TRADE"));
                let items = if stop_cancelled { "" } else { stop };
                ok(&format!(
                    r#"{{"currentPage":1,"pageSize":500,"totalNum":{},"totalPage":1,"items":[{items}]}}"#,
                    u8::from(!stop_cancelled)
                ))
            }
            ("DELETE", "/api/v1/stop-order/cancel") => {
                let ids = if stop_cancelled { "" } else { r#""vs1""# };
                stop_cancelled = true;
                ok(&format!(r#"{{"cancelledOrderIds":[{ids}]}}"#))
            }
            ("GET", "/api/v1/stop-order/vs1") => {
                (400, vec![], env_err("400100", "order not exist."))
            }
            ("GET", "/api/v1/hf/orders/active/symbols") if !cancelled => {
                ok(r#"{"symbols":["BTC-USDT"]}"#)
            }
            ("GET", "/api/v1/hf/orders/active/symbols") => ok(r#"{"symbols":[]}"#),
            ("GET", "/api/v1/hf/orders/active") => ok(&format!(
                "[{}]",
                order_json("h1", true, false, "limit", "0.01", "950")
            )),
            ("GET", "/api/v1/orders") => {
                ok(r#"{"currentPage":1,"pageSize":500,"totalNum":0,"totalPage":1,"items":[]}"#)
            }
            ("DELETE", "/api/v1/hf/orders/cancelAll") => {
                cancelled = true;
                ok(r#"{"succeedSymbols":["BTC-USDT"],"failedSymbols":[]}"#)
            }
            ("DELETE", "/api/v1/orders") => ok(r#"{"cancelledOrderIds":[]}"#),
            ("GET", "/api/v1/hf/orders/h1") => {
                ok(&order_json("h1", false, true, "limit", "0.01", "950"))
            }
            _ => panic!("unexpected {} {}", seen.method, seen.path),
        },
    )
    .await;
    let c = s.client(None);
    let open = c.open_orders().await.unwrap();
    let listed = open
        .iter()
        .find(|o| o.id == "vs1")
        .expect("the stop order is open");
    assert_eq!(
        (listed.state, listed.native_type.as_str(), listed.price),
        (
            OrderState::Open,
            "stop_limit",
            Some("90000".parse().unwrap())
        )
    );
    let r = c.cancel_all_open_orders().await.unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let mut ids: Vec<&str> = r.cancelled.iter().map(|o| o.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["h1", "vs1"]);
    assert!(r.cancelled.iter().all(|o| o.state == OrderState::Cancelled));
    for (m, p) in [
        ("DELETE", "/api/v1/hf/orders/cancelAll"),
        ("DELETE", "/api/v1/orders"),
        ("DELETE", "/api/v1/stop-order/cancel"),
    ] {
        assert_eq!(s.count(m, p), 1, "{m} {p}");
    }
    let h1 = s
        .seen()
        .into_iter()
        .find(|x| x.path == "/api/v1/hf/orders/h1")
        .unwrap();
    assert_eq!(h1.param("symbol").as_deref(), Some("BTC-USDT"));
    // One order by id needs its symbol for the HF family.
    let e = c
        .cancel_order(&OrderRef {
            id: "zz".into(),
            market: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

/// Without master credentials the key cannot be deleted by API (manual step). With them, the
/// master key deletes the sub-account's key with `DELETE /api/v1/sub/api-key`, naming the key,
/// its passphrase and the sub-account; the passphrase is redacted from the recorded sidecar.
#[tokio::test]
async fn a_master_key_deletes_the_sub_account_key() {
    let s = stub(|seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/api/v1/user/api-key") => (
            200,
            vec![],
            API_KEY.replace(
                "\"isMaster\":true",
                "\"isMaster\":false,\"subName\":\"bot1\"",
            ),
        ),
        ("DELETE", "/api/v1/sub/api-key") => {
            assert_eq!(seen.header("kc-api-key").as_deref(), Some(MKEY));
            ok(r#"{"subName":"bot1","apiKey":"respond-test-kucoin-key"}"#)
        }
        _ => panic!("unexpected {} {}", seen.method, seen.path),
    })
    .await;
    let plain = s.client(None);
    assert!(!plain.capabilities().revoke_key_by_api);
    assert!(matches!(
        plain.revoke_key().await,
        Err(Error::Unsupported { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
    let mut cfg = s.config(Some(rd.clone()));
    cfg.master = Some(MasterKey {
        key: KeyMaterial {
            access_key: MKEY.into(),
            secret_key: Secret::new(MSECRET),
            passphrase: Some(Secret::new(MPASS)),
        },
        sub_account: Some("bot1".into()),
    });
    let c = KucoinClient::new(cfg).unwrap();
    assert!(c.capabilities().revoke_key_by_api);
    c.revoke_key().await.unwrap();
    let del = s
        .seen()
        .into_iter()
        .find(|x| x.is("DELETE", "/api/v1/sub/api-key"))
        .unwrap();
    assert_eq!(del.param("apiKey").as_deref(), Some(KEY));
    assert_eq!(del.param("subName").as_deref(), Some("bot1"));
    assert_eq!(del.param("passphrase").as_deref(), Some(PASS));
    // Nothing the run wrote holds a passphrase or a secret.
    for e in walkdir(rd.path()) {
        let text = std::fs::read_to_string(&e).unwrap_or_default();
        for secret in [PASS, MPASS, SECRET, MSECRET] {
            assert!(!text.contains(secret), "{} holds a secret", e.display());
        }
    }
    // A master key without the sub-account's name is a configuration error.
    let mut cfg = s.config(None);
    cfg.master = Some(MasterKey {
        key: KeyMaterial {
            access_key: MKEY.into(),
            secret_key: Secret::new(MSECRET),
            passphrase: Some(Secret::new(MPASS)),
        },
        sub_account: None,
    });
    let e = KucoinClient::new(cfg)
        .unwrap()
        .revoke_key()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("KUCOIN_SUB_ACCOUNT"), "{e}");
}

fn walkdir(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// What the client recorded rebuilds offline into the same records, and a 401 carrying
/// 400003 after the key worked counts as the key's deletion.
#[tokio::test]
async fn recorded_answers_rebuild_offline() {
    let mut dead = false;
    let s = stub(move |seen| match seen.path.as_str() {
        "/api/v1/user/api-key" if dead => (401, vec![], env_err("400003", "KC-API-KEY not exists")),
        "/api/v1/user/api-key" => {
            dead = true;
            (200, vec![], API_KEY.into())
        }
        "/api/v1/hf/orders/done" => ok(&format!(
            r#"{{"lastId":0,"items":[{}]}}"#,
            order_json("h7", false, false, "limit", "0.01", "950")
        )),
        "/api/v1/orders" => {
            ok(r#"{"currentPage":1,"pageSize":500,"totalNum":0,"totalPage":1,"items":[]}"#)
        }
        "/api/v1/hf/fills" => (200, vec![], FILLS.replace("19814995255305}}", "0}}")),
        "/api/v1/fills" => {
            ok(r#"{"currentPage":1,"pageSize":500,"totalNum":0,"totalPage":1,"items":[]}"#)
        }
        _ => panic!("unexpected {}", seen.path),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
    let c = s.client(Some(rd.clone()));
    let btc = Market::new("BTC-USDT", "BTC", "USDT");
    let live = c
        .closed_orders(&ClosedOrdersQuery {
            window: window(),
            market: Some(btc.clone()),
            limit: 100,
        })
        .await
        .unwrap();
    let w = Window {
        from: Utc.timestamp_millis_opt(1735700000000).unwrap(),
        to: Utc.timestamp_millis_opt(1735776000000).unwrap(),
    };
    let fills = c
        .fills(&FillsQuery {
            window: w,
            market: Some(btc),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(fills.len(), 1);
    let probe = c.probe_permissions().await.unwrap();
    assert!(probe.critical, "trades with no IP restriction");
    assert!(probe
        .scopes
        .iter()
        .any(|x| x.scope == "Spot" && x.held == Some(true) && x.class == ScopeClass::Trade));
    assert!(c.api_keys().await.unwrap_err().is_key_dead());
    let h = crate::exchange::replay::rebuild(
        &super::DESCRIPTOR,
        rd.path(),
        crate::exchange::replay::RebuildOptions::default(),
    )
    .unwrap();
    assert_eq!(h.orders.len(), 1);
    assert_eq!(h.orders[0].id, live[0].id);
    assert_eq!(h.orders[0].market.base.as_str(), "BTC");
    assert_eq!(h.fills.len(), 1);
    assert_eq!(h.fills[0].id, "11029373945659392");
    let kh = crate::exchange::key_history("kucoin", rd.path()).unwrap();
    assert!(kh.known_dead(), "{kh:?}");
    assert_eq!(kh.refused.as_ref().map(|r| r.1.as_str()), Some("400003"));
}

/// A fills list whose cursor comes back to one it sent before (1 → 2 → 1) never ends: it is
/// refused naming the repeated `lastId` after three pages, not read until the page cap and
/// not passed off as the whole list.
/// A stub whose `hf/fills` page n (`lastId` absent for the first) holds trade n and points at
/// `next(n)` (0: no next page); the classic `fills` list is empty.
async fn fills_cursor_stub(next: fn(u64) -> u64) -> Running {
    stub(move |seen| match seen.path.as_str() {
        "/api/v1/hf/fills" => {
            let n: u64 = seen.param("lastId").map_or(1, |l| l.parse().unwrap());
            let page = FILLS.replace("11029373945659392", &n.to_string()).replace(
                r#""lastId":19814995255305}}"#,
                &format!(r#""lastId":{}}}}}"#, next(n)),
            );
            (200, vec![], page)
        }
        "/api/v1/fills" => {
            ok(r#"{"currentPage":1,"pageSize":500,"totalNum":0,"totalPage":1,"items":[]}"#)
        }
        _ => panic!("unexpected {}", seen.path),
    })
    .await
}

/// The fills of BTC-USDT in one day's window, 100 a page.
fn btc_day_fills() -> FillsQuery {
    FillsQuery {
        window: Window {
            from: Utc.timestamp_millis_opt(1735700000000).unwrap(),
            to: Utc.timestamp_millis_opt(1735776000000).unwrap(),
        },
        market: Some(Market::new("BTC-USDT", "BTC", "USDT")),
        limit: 100,
    }
}

#[tokio::test]
async fn a_fills_cursor_that_comes_back_is_refused_not_followed() {
    // Page 1 points at 2, 2 at 1, ...
    let s = fills_cursor_stub(|n| if n == 1 { 2 } else { 1 }).await;
    let c = s.client(None);
    let err = c.fills(&btc_day_fills()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("had sent before"), "{err}");
    assert_eq!(s.count("GET", "/api/v1/hf/fills"), 3);
}

/// A window's fills are every fill of it, however many pages KuCoin's `lastId` cursor takes:
/// a symbol's 1,001 pages of fills (100,100 at 100 a page, as a bot's week at a million
/// orders gives) are read to their end, not refused as a list that never ends.
#[tokio::test]
async fn a_fills_list_longer_than_a_thousand_pages_is_read_to_its_end() {
    const PAGES: u64 = 1001;
    let s = fills_cursor_stub(|n| if n < PAGES { n + 1 } else { 0 }).await;
    let c = s.client(None);
    let fills = c.fills(&btc_day_fills()).await.unwrap();
    assert_eq!(fills.len() as u64, PAGES);
    assert_eq!(s.count("GET", "/api/v1/hf/fills") as u64, PAGES);
}
