//! The adapter against a tiny Binance stub over real loopback HTTP: signing and headers as a
//! server checks them (the stub verifies signatures with its own code, not the client's), the
//! clock correction, `-2015` read by what the key can still do, weights and `Retry-After`, the
//! cancel rounds, the trade cursor, the transfer windows, the symbol scan, and the offline
//! rebuild of what the client recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::client::{BinanceClient, BinanceConfig};
use crate::exchange::registry::{KeyMaterial, MasterKey};
use crate::exchange::{
    ClosedOrdersQuery, Error, ErrorKind, Exchange, FillsQuery, Market, MarketHint,
    MarketScanRequest, MarketSelection, OrderState, Window,
};
use crate::secret::Secret;

const KEY: &str = "stubkey0000000000000000000000000000000000000000000000000000000001";
const SECRET: &str = "respond-test-binance-secret-0000000000000000000000000000000000";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----\n";
const PUBLIC: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const MASTER_KEY: &str = "masterkey000000000000000000000000000000000000000000000000000000001";
const MASTER_SECRET: &str = "respond-test-binance-master-secret-00000000000000000000000000000";

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    params: Vec<(String, String)>,
    api_key: Option<String>,
}

impl Seen {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// An answer: status, extra headers, body.
type Reply = (u16, Vec<(&'static str, String)>, String);
type Route = Box<dyn FnMut(&Seen) -> Reply + Send>;

struct Stub {
    seen: Mutex<Vec<Seen>>,
    route: Mutex<Route>,
    /// Server clock − real clock, ms.
    skew_ms: i64,
}

fn ok(body: &str) -> Reply {
    (200, vec![], body.to_string())
}

fn err(status: u16, code: i64, msg: &str) -> Reply {
    (
        status,
        vec![],
        format!(r#"{{"code":{code},"msg":"{msg}"}}"#),
    )
}

/// Checks the signature the way Binance documents it, with code of its own: HMAC-SHA256 hex
/// for the test's HMAC keys, Ed25519 over the same bytes for the PEM key.
fn verify(api_key: &str, query: &str) -> bool {
    let Some((payload, sig)) = query.rsplit_once("&signature=") else {
        return false;
    };
    let sig = percent_encoding::percent_decode_str(sig)
        .decode_utf8_lossy()
        .to_string();
    let hmac_with = |secret: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes()).eq_ignore_ascii_case(&sig)
    };
    match api_key {
        KEY => hmac_with(SECRET),
        MASTER_KEY => hmac_with(MASTER_SECRET),
        "edkey" => {
            use base64::Engine as _;
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&sig) else {
                return false;
            };
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ED25519,
                hex::decode(PUBLIC).unwrap(),
            )
            .verify(payload.as_bytes(), &raw)
            .is_ok()
        }
        _ => false,
    }
}

async fn handle(
    axum::extract::State(stub): axum::extract::State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = uri.query().unwrap_or("").to_string();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        params,
        api_key: headers
            .get("x-mbx-apikey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    stub.seen.lock().unwrap().push(seen.clone());
    if seen.path == "/api/v3/time" {
        let now = Utc::now().timestamp_millis() + stub.skew_ms;
        return (
            [("x-mbx-used-weight-1m", "1")],
            format!(r#"{{"serverTime":{now}}}"#),
        )
            .into_response();
    }
    if seen.param("signature").is_some() {
        let key = seen.api_key.clone().unwrap_or_default();
        if !verify(&key, &query) {
            let (s, h, b) = err(400, -1022, "Signature for this request is not valid.");
            return reply(s, h, b);
        }
        // recvWindow, then timestamp, then the signature: the client's documented order.
        let names: Vec<&str> = seen.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            &names[names.len() - 3..],
            ["recvWindow", "timestamp", "signature"]
        );
    }
    let (s, h, b) = (stub.route.lock().unwrap())(&seen);
    reply(s, h, b)
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
    fn client(&self, key: &str, secret: &str) -> BinanceClient {
        let mut cfg = BinanceConfig::new(key, Secret::new(secret));
        cfg.base_url = Some(self.url.clone());
        cfg.retry_base_delay = std::time::Duration::from_millis(1);
        BinanceClient::new(cfg).unwrap()
    }
    fn hmac(&self) -> BinanceClient {
        self.client(KEY, SECRET)
    }
}

async fn stub(skew_ms: i64, route: impl FnMut(&Seen) -> Reply + Send + 'static) -> Running {
    let stub = Arc::new(Stub {
        seen: Mutex::new(Vec::new()),
        route: Mutex::new(Box::new(route)),
        skew_ms,
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

const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","serverTime":1,"rateLimits":[],"exchangeFilters":[],"symbols":[
 {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","filters":[]},
 {"symbol":"PUMPUSDT","status":"TRADING","baseAsset":"PUMP","quoteAsset":"USDT","filters":[]},
 {"symbol":"PUMPBTC","status":"TRADING","baseAsset":"PUMP","quoteAsset":"BTC","filters":[]},
 {"symbol":"ETHUSDT","status":"TRADING","baseAsset":"ETH","quoteAsset":"USDT","filters":[]}]}"#;
const ACCOUNT: &str = r#"{"balances":[{"asset":"USDT","free":"10","locked":"0"},{"asset":"PUMP","free":"5000","locked":"0"},{"asset":"ETH","free":"0","locked":"0"}]}"#;
const RESTRICTED_TRADING_OFF: &str = r#"{"ipRestrict":false,"enableReading":true,"enableSpotAndMarginTrading":false,"enableWithdrawals":false}"#;
const RESTRICTIONS_OPEN: &str = r#"{"ipRestrict":false,"enableReading":true,"enableSpotAndMarginTrading":true,"enableWithdrawals":false,"tradingAuthorityExpirationTime":1767225600000}"#;

fn order(symbol: &str, id: i64, status: &str, time: i64) -> String {
    format!(
        r#"{{"symbol":"{symbol}","orderId":{id},"orderListId":-1,"clientOrderId":"c{id}","price":"1.00000000","origQty":"2.00000000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000","status":"{status}","timeInForce":"GTC","type":"LIMIT","side":"BUY","time":{time},"updateTime":{time},"origQuoteOrderQty":"0.00000000"}}"#
    )
}

#[tokio::test]
async fn signed_reads_carry_the_key_header_and_a_timestamp_on_binances_clock() {
    let s = stub(5_000, |r| {
        if r.is("GET", "/api/v3/account") {
            ok(ACCOUNT)
        } else {
            err(404, -1, "no")
        }
    })
    .await;
    let c = s.hmac();
    let b = c.balances().await.unwrap();
    assert_eq!(b.len(), 2, "zero balances are left out");
    let seen = s.seen();
    assert_eq!(seen[0].path, "/api/v3/time", "the clock is read first");
    let acct = seen.iter().find(|r| r.path == "/api/v3/account").unwrap();
    assert_eq!(acct.api_key.as_deref(), Some(KEY));
    assert_eq!(acct.param("recvWindow"), Some("5000"));
    let ts: i64 = acct.param("timestamp").unwrap().parse().unwrap();
    // Signed on Binance's clock (5 s ahead of ours), within the request's round trip.
    let drift = ts - (Utc::now().timestamp_millis() + 5_000);
    assert!(
        drift.abs() < 2_000,
        "timestamp {drift} ms off the server clock"
    );
    assert!((4_000..6_000).contains(&c.clock_offset_ms()));
}

#[tokio::test]
async fn ed25519_keys_sign_requests_the_server_verifies() {
    let s = stub(0, |r| {
        if r.is("GET", "/sapi/v1/account/apiRestrictions") {
            ok(RESTRICTIONS_OPEN)
        } else {
            err(404, -1, "no")
        }
    })
    .await;
    let c = s.client("edkey", PEM);
    let keys = c.api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].is_current);
    // A wrong secret is refused as a bad signature, and the run never learns the key works.
    let wrong = s.client("edkey", SECRET);
    let e = wrong.api_keys().await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::BadSignature), "{e}");
    assert!(wrong.key_accepted_at().is_none());
}

/// `-1021` is corrected once from GET /api/v3/time; a clock that stays refused is not looped on.
#[tokio::test]
async fn a_refused_timestamp_is_corrected_once_not_looped_on() {
    let mut refusals = 1;
    let s = stub(0, move |r| {
        if r.is("GET", "/api/v3/account") {
            if refusals > 0 {
                refusals -= 1;
                return err(
                    400,
                    -1021,
                    "Timestamp for this request is outside of the recvWindow.",
                );
            }
            return ok(ACCOUNT);
        }
        err(404, -1, "no")
    })
    .await;
    s.hmac().balances().await.unwrap();
    assert_eq!(s.count("GET", "/api/v3/account"), 2);
    assert_eq!(s.count("GET", "/api/v3/time"), 2, "read again after -1021");

    let s = stub(0, |r| {
        if r.is("GET", "/api/v3/account") {
            return err(
                400,
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
            );
        }
        err(404, -1, "no")
    })
    .await;
    let e = s.hmac().balances().await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::ClockSkew));
    assert!(e.advice().contains("NTP"), "{}", e.advice());
    assert_eq!(
        s.count("GET", "/api/v3/account"),
        2,
        "one correction, no loop"
    );
}

/// A cancel refused with -2015 while the same key still reads: the permission is missing. When
/// the read is refused too, the key is dead.
#[tokio::test]
async fn a_refused_write_is_read_by_what_the_key_still_does() {
    for (restrictions, kind) in [
        (ok(RESTRICTED_TRADING_OFF), ErrorKind::PermissionDenied),
        (
            err(
                401,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ),
            ErrorKind::KeyInvalid,
        ),
    ] {
        let restrictions = restrictions.clone();
        let s = stub(0, move |r| {
            if r.is("GET", "/api/v3/openOrders") {
                ok(&format!(
                    "[{}]",
                    order("BTCUSDT", 7, "NEW", 1_735_775_000_000)
                ))
            } else if r.is("DELETE", "/api/v3/openOrders") {
                err(
                    401,
                    -2015,
                    "Invalid API-key, IP, or permissions for action.",
                )
            } else if r.is("GET", "/sapi/v1/account/apiRestrictions") {
                restrictions.clone()
            } else if r.is("GET", "/api/v3/exchangeInfo") {
                ok(EXCHANGE_INFO)
            } else {
                err(404, -1, "no")
            }
        })
        .await;
        let e = s.hmac().cancel_all_open_orders().await.unwrap_err();
        assert_eq!(e.kind(), Some(kind), "{e}");
        assert_eq!(
            s.count("DELETE", "/api/v3/openOrders"),
            1,
            "a refused write is not resent"
        );
    }
}

#[tokio::test]
async fn a_read_refused_with_2015_is_a_key_that_no_longer_works() {
    let s = stub(0, |_| {
        err(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        )
    })
    .await;
    let e = s.hmac().api_keys().await.unwrap_err();
    assert!(e.is_key_dead() && e.refuses_key(), "{e}");
    assert_eq!(e.code(), Some("-2015"));
}

/// The answers' used weight feeds the budget: a server count this client's own calls do not
/// explain (another client on the IP) holds the group back; a 429's Retry-After parks it at
/// least that long, and the read is not sent again meanwhile.
#[tokio::test]
async fn retry_after_and_used_weight_pace_the_next_request() {
    let s = stub(0, |r| {
        if r.is("GET", "/api/v3/account") {
            (
                429,
                vec![
                    ("retry-after", "30".into()),
                    ("x-mbx-used-weight-1m", "6000".into()),
                ],
                r#"{"code":-1003,"msg":"Too much request weight used"}"#.into(),
            )
        } else if r.is("GET", "/sapi/v1/account/apiRestrictions") {
            (
                200,
                vec![("x-mbx-used-weight-1m", "6000".into())],
                RESTRICTIONS_OPEN.into(),
            )
        } else {
            err(404, -1, "no")
        }
    })
    .await;
    let client = || {
        let mut cfg = BinanceConfig::new(KEY, Secret::new(SECRET));
        cfg.base_url = Some(s.url.clone());
        cfg.max_read_retries = 0;
        BinanceClient::new(cfg).unwrap()
    };
    // The server counts all 6,000 used, more than this client sent: the group waits.
    let c = client();
    assert!(c.rate_limiter().ready_in("weight").is_zero());
    c.api_keys().await.unwrap();
    assert!(c.rate_limiter().ready_in("weight") >= std::time::Duration::from_secs(50));

    let c = client();
    let e = c.balances().await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::RateLimited {
                status: 429,
                retry_after_ms: Some(30_000)
            }
        ),
        "{e}"
    );
    assert!(c.rate_limiter().ready_in("weight") >= std::time::Duration::from_secs(29));
    assert_eq!(s.count("GET", "/api/v3/account"), 1);
}

/// Open orders in two symbols (one an order list): one cancel-all per symbol, then a listing
/// that finds none. A 500 on one symbol's cancel is settled by the next listing and the
/// order's own state, never by a second DELETE.
#[tokio::test]
async fn cancel_all_goes_symbol_by_symbol_and_settles_unknown_outcomes_by_reading() {
    let book = Arc::new(Mutex::new(vec![
        order("BTCUSDT", 1, "NEW", 1_735_775_000_000),
        order("PUMPUSDT", 2, "NEW", 1_735_775_000_001),
        order("PUMPUSDT", 3, "NEW", 1_735_775_000_002),
    ]));
    let b = book.clone();
    let s = stub(0, move |r| {
        let mut book = b.lock().unwrap();
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v3/exchangeInfo") => ok(EXCHANGE_INFO),
            ("GET", "/api/v3/openOrders") => ok(&format!("[{}]", book.join(","))),
            ("GET", "/api/v3/openOrderList") => ok("[]"),
            ("DELETE", "/api/v3/openOrders") => {
                let sym = r.param("symbol").unwrap().to_string();
                book.retain(|o| !o.contains(&format!(r#""symbol":"{sym}""#)));
                if sym == "PUMPUSDT" {
                    // Cancelled, but the answer is lost: outcome unknown.
                    return err(500, -1007, "Timeout waiting for response from backend server.");
                }
                ok(r#"[{"symbol":"BTCUSDT","origClientOrderId":"c1","orderId":1,"orderListId":-1,"clientOrderId":"x","transactTime":5,"price":"1","origQty":"2","executedQty":"0","cummulativeQuoteQty":"0","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY"}]"#)
            }
            ("GET", "/api/v3/order") => read_back(r, "CANCELED"),
            _ => err(404, -1, "no"),
        }
    })
    .await;
    let report = s.hmac().cancel_all_open_orders().await.unwrap();
    let mut ids: Vec<&str> = report.cancelled.iter().map(|o| o.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report
        .cancelled
        .iter()
        .all(|o| o.state == OrderState::Cancelled));
    let pump = report.cancelled.iter().find(|o| o.id == "2").unwrap();
    assert_eq!(
        (pump.market.base.as_str(), pump.market.quote.as_str()),
        ("PUMP", "USDT")
    );
    assert_eq!(
        s.count("DELETE", "/api/v3/openOrders"),
        2,
        "one per symbol, none resent"
    );
    assert_eq!(s.count("GET", "/api/v3/openOrders"), 2);
    assert_eq!(
        s.count("GET", "/api/v3/openOrderList"),
        1,
        "no order list is left: verified once the orders are gone"
    );
    assert_eq!(
        s.count("GET", "/api/v3/order"),
        2,
        "the unknown outcomes are read back"
    );
}

/// `GET /api/v3/order` of a PUMPUSDT order in `status`.
fn read_back(r: &Seen, status: &str) -> Reply {
    let id: i64 = r.param("orderId").unwrap().parse().unwrap();
    ok(&order("PUMPUSDT", id, status, 1_735_775_000_000 + id))
}

fn open_list(id: i64, legs: [i64; 2]) -> String {
    format!(
        r#"{{"orderListId":{id},"contingencyType":"OCO","listStatusType":"EXEC_STARTED","listOrderStatus":"EXECUTING","listClientOrderId":"l{id}","transactionTime":5,"symbol":"PUMPUSDT","orders":[{{"symbol":"PUMPUSDT","orderId":{},"clientOrderId":"a"}},{{"symbol":"PUMPUSDT","orderId":{},"clientOrderId":"b"}}]}}"#,
        legs[0], legs[1]
    )
}

/// An order list Binance still reports executing once no order is listed open is cancelled
/// by its id, its legs are read for the report, and the lists are listed again until none
/// is left; a list that stays open whatever is sent is a failure naming it, not a success.
#[tokio::test]
async fn order_lists_left_after_the_orders_are_cancelled_by_id_until_none_is_open() {
    let lists = Arc::new(Mutex::new(vec![open_list(31, [12, 13])]));
    let l = lists.clone();
    let s = stub(0, move |r| {
        let mut lists = l.lock().unwrap();
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v3/exchangeInfo") => ok(EXCHANGE_INFO),
            ("GET", "/api/v3/openOrders") => ok("[]"),
            ("GET", "/api/v3/openOrderList") => ok(&format!("[{}]", lists.join(","))),
            ("DELETE", "/api/v3/orderList") => {
                assert_eq!(r.param("symbol"), Some("PUMPUSDT"));
                assert_eq!(r.param("orderListId"), Some("31"));
                lists.clear();
                ok(r#"{"orderListId":31,"contingencyType":"OCO","listStatusType":"ALL_DONE","listOrderStatus":"ALL_DONE","listClientOrderId":"l31","transactionTime":6,"symbol":"PUMPUSDT","orders":[],"orderReports":[{"symbol":"PUMPUSDT","orderId":12,"orderListId":31,"status":"CANCELED","executedQty":"0"},{"symbol":"PUMPUSDT","orderId":13,"orderListId":31,"status":"CANCELED","executedQty":"0"}]}"#)
            }
            ("GET", "/api/v3/order") => read_back(r, "CANCELED"),
            _ => err(404, -1, "no"),
        }
    })
    .await;
    let report = s.hmac().cancel_all_open_orders().await.unwrap();
    let ids: Vec<&str> = report.cancelled.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["12", "13"], "{report:?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(s.count("DELETE", "/api/v3/orderList"), 1);
    assert_eq!(s.count("GET", "/api/v3/openOrderList"), 2);

    // A list that never goes away: a bounded number of cancels, then a failure naming it.
    let s = stub(0, move |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v3/exchangeInfo") => ok(EXCHANGE_INFO),
        ("GET", "/api/v3/openOrders") => ok("[]"),
        ("GET", "/api/v3/openOrderList") => ok(&format!("[{}]", open_list(32, [14, 15]))),
        ("DELETE", "/api/v3/orderList") => err(400, -2011, "Unknown order sent."),
        ("GET", "/api/v3/order") => read_back(r, "NEW"),
        _ => err(404, -1, "no"),
    })
    .await;
    let report = s.hmac().cancel_all_open_orders().await.unwrap();
    assert!(report.cancelled.is_empty(), "{report:?}");
    let failed: Vec<&str> = report.failed.iter().map(|f| f.order_id.as_str()).collect();
    assert!(failed.contains(&"orderList 32"), "{failed:?}");
    assert!(
        failed.contains(&"14") && failed.contains(&"15"),
        "{failed:?}"
    );
    assert_eq!(s.count("DELETE", "/api/v3/orderList"), 3);
}

/// `-1007` says the outcome is unknown whatever HTTP status carries it: a cancel answered so
/// is settled by reading the order, never reported as refused.
#[tokio::test]
async fn a_cancel_answered_1007_with_a_4xx_is_settled_by_reading() {
    let s = stub(0, |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v3/exchangeInfo") => ok(EXCHANGE_INFO),
        ("DELETE", "/api/v3/order") => err(
            408,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        ),
        ("GET", "/api/v3/order") => ok(&order("PUMPUSDT", 9, "CANCELED", 1_735_775_000_009)),
        _ => err(404, -1, "no"),
    })
    .await;
    let c = s.hmac();
    let m = c.market("PUMPUSDT").unwrap();
    let o = c
        .cancel_order(&crate::exchange::OrderRef {
            id: "9".into(),
            market: Some(m),
        })
        .await
        .unwrap();
    assert_eq!(o.state, OrderState::Cancelled);
    assert_eq!(s.count("DELETE", "/api/v3/order"), 1, "never resent");
}

fn trade(id: i64, order_id: i64, time: i64) -> String {
    format!(
        r#"{{"symbol":"PUMPUSDT","id":{id},"orderId":{order_id},"orderListId":-1,"price":"2.0","qty":"3.0","quoteQty":"6.0","commission":"0.006","commissionAsset":"USDT","time":{time},"isBuyer":true,"isMaker":false,"isBestMatch":true}}"#
    )
}

/// A full page of trades continues with fromId alone (Binance takes no times beside it) until
/// a trade passes the window; trades outside the window are dropped.
#[tokio::test]
async fn trades_follow_the_from_id_cursor_to_the_end_of_the_window() {
    let from = 1_735_689_600_000i64;
    let to = from + 86_400_000;
    let s = stub(0, move |r| {
        if r.is("GET", "/api/v3/exchangeInfo") {
            return ok(EXCHANGE_INFO);
        }
        if !r.is("GET", "/api/v3/myTrades") {
            return err(404, -1, "no");
        }
        match r.param("fromId") {
            None => {
                assert_eq!(r.param("startTime"), Some(from.to_string().as_str()));
                assert_eq!(r.param("endTime"), Some((to - 1).to_string().as_str()));
                ok(&format!(
                    "[{},{}]",
                    trade(10, 1, from + 5),
                    trade(11, 1, from + 6)
                ))
            }
            Some(id) => {
                assert!(r.param("startTime").is_none() && r.param("endTime").is_none());
                assert_eq!(id, "12");
                ok(&format!(
                    "[{},{}]",
                    trade(12, 2, to - 1),
                    trade(13, 3, to + 10)
                ))
            }
        }
    })
    .await;
    let w = Window {
        from: Utc.timestamp_millis_opt(from).unwrap(),
        to: Utc.timestamp_millis_opt(to).unwrap(),
    };
    let fills = s
        .hmac()
        .fills(&FillsQuery {
            window: w,
            market: Some(Market::new("PUMPUSDT", "PUMP", "USDT")),
            limit: 2,
        })
        .await
        .unwrap();
    let ids: Vec<&str> = fills.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["12", "11", "10"],
        "newest first, the one past the window dropped"
    );
    assert_eq!(fills[0].fee.unwrap().normalize().to_string(), "0.006");
    assert_eq!(s.count("GET", "/api/v3/myTrades"), 2);
}

#[tokio::test]
async fn history_needs_a_symbol_and_a_day_at_most() {
    let s = stub(0, |_| err(404, -1, "no")).await;
    let c = s.hmac();
    let now = Utc::now();
    let day = Window {
        from: now - chrono::Duration::hours(24),
        to: now,
    };
    let q = |window, market| ClosedOrdersQuery {
        window,
        market,
        limit: 1000,
    };
    assert!(matches!(
        c.closed_orders(&q(day, None)).await,
        Err(Error::Config(_))
    ));
    let long = Window {
        from: now - chrono::Duration::hours(25),
        to: now,
    };
    let m = Some(Market::new("BTCUSDT", "BTC", "USDT"));
    let e = c.closed_orders(&q(long, m)).await.unwrap_err();
    assert!(e.to_string().contains("24-hour"), "{e}");
    assert!(s.seen().is_empty(), "refused before any request");
}

/// Withdrawals since 200 days ago: three calls of at most 90 days each.
#[tokio::test]
async fn transfers_are_read_in_windows_of_ninety_days() {
    let s = stub(0, |r| {
        if r.is("GET", "/sapi/v1/capital/withdraw/history") {
            let start: i64 = r.param("startTime").unwrap().parse().unwrap();
            let end: i64 = r.param("endTime").unwrap().parse().unwrap();
            assert!(end - start < 90 * 86_400_000, "{start}..{end}");
            ok("[]")
        } else {
            err(404, -1, "no")
        }
    })
    .await;
    let since = Utc::now() - chrono::Duration::days(200);
    assert!(s.hmac().withdrawals(since).await.unwrap().is_empty());
    assert_eq!(s.count("GET", "/sapi/v1/capital/withdraw/history"), 3);
}

/// The touched scan reads the account's traces and pairs each asset with every quote; the
/// pumped coin held now is found in both its markets; ETH (a zero balance) and a symbol nobody
/// touched are not read.
#[tokio::test]
async fn the_scan_reads_every_symbol_of_every_touched_asset() {
    let s = stub(0, |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v3/exchangeInfo") => ok(EXCHANGE_INFO),
        ("GET", "/api/v3/account") => ok(ACCOUNT),
        ("GET", "/sapi/v1/accountSnapshot") => {
            assert_eq!(r.param("type"), Some("SPOT"));
            ok(r#"{"code":200,"msg":"","snapshotVos":[]}"#)
        }
        ("GET", "/sapi/v1/capital/deposit/hisrec") => ok("[]"),
        ("GET", "/sapi/v1/capital/withdraw/history") => ok("[]"),
        // The probe of ETHUSDT (quoted in USDT, held): no order there.
        ("GET", "/api/v3/allOrders") => ok("[]"),
        _ => err(404, -1, "no"),
    })
    .await;
    let now = Utc::now();
    let scan = touched_week(
        &s,
        now,
        vec![MarketHint {
            market: Market::new("BTCUSDT", "BTC", "USDT"),
            source: "named by the bot log bot/1-log.csv".into(),
        }],
    )
    .await;
    let symbols: Vec<&str> = scan.markets.iter().map(|m| m.market.as_str()).collect();
    assert_eq!(symbols, ["BTCUSDT", "PUMPBTC", "PUMPUSDT"]);
    assert!(scan.sources.iter().all(|s| s.read), "{:?}", scan.sources);
    let plan = s
        .hmac()
        .history_plan(
            scan.markets.len(),
            Window {
                from: now - chrono::Duration::days(7),
                to: now,
            },
        )
        .unwrap();
    assert_eq!((plan.calls, plan.cost), (42, 840));
    let probes: Vec<Option<String>> = s
        .seen()
        .iter()
        .filter(|r| r.is("GET", "/api/v3/allOrders"))
        .map(|r| r.param("symbol").map(String::from))
        .collect();
    assert_eq!(probes, [Some("ETHUSDT".to_string())]);
}

/// The `touched` scan of the week before `now`, with `hints`.
async fn touched_week(
    s: &Running,
    now: chrono::DateTime<Utc>,
    hints: Vec<MarketHint>,
) -> crate::exchange::MarketScan {
    s.hmac()
        .history_markets(&MarketScanRequest {
            window: Window {
                from: now - chrono::Duration::days(7),
                to: now,
            },
            selection: MarketSelection::Touched,
            hints,
        })
        .await
        .unwrap()
}

/// The contra attack: the thief buys a thin coin with the victim's USDT and sells it back
/// within the day, so no balance, snapshot or transfer names the coin. The symbols quoted in a
/// touched asset are asked for the account's latest order, and the coin's markets are read,
/// with the coins traded against it in turn.
#[tokio::test]
async fn a_coin_bought_and_sold_within_the_day_is_found_by_its_latest_order() {
    const INFO: &str = r#"{"timezone":"UTC","serverTime":1,"rateLimits":[],"exchangeFilters":[],"symbols":[
 {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","filters":[]},
 {"symbol":"TOKIUSDT","status":"TRADING","baseAsset":"TOKI","quoteAsset":"USDT","filters":[]},
 {"symbol":"TOKIBTC","status":"TRADING","baseAsset":"TOKI","quoteAsset":"BTC","filters":[]},
 {"symbol":"MOCATOKI","status":"TRADING","baseAsset":"MOCA","quoteAsset":"TOKI","filters":[]},
 {"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC","filters":[]}]}"#;
    let now = Utc::now();
    let hour_ago = (now - chrono::Duration::hours(1)).timestamp_millis();
    let month_ago = (now - chrono::Duration::days(30)).timestamp_millis();
    let s = stub(0, move |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v3/exchangeInfo") => ok(INFO),
        ("GET", "/api/v3/account") => {
            ok(r#"{"balances":[{"asset":"USDT","free":"10","locked":"0"}]}"#)
        }
        ("GET", "/sapi/v1/accountSnapshot") => ok(r#"{"code":200,"msg":"","snapshotVos":[]}"#),
        ("GET", "/sapi/v1/capital/deposit/hisrec") => ok("[]"),
        ("GET", "/sapi/v1/capital/withdraw/history") => ok("[]"),
        ("GET", "/api/v3/allOrders") => {
            // Binance's "most recent orders": no window, one order.
            assert_eq!(r.param("limit"), Some("1"));
            assert_eq!(r.param("startTime"), None);
            match r.param("symbol").unwrap_or_default() {
                "TOKIUSDT" => ok(&format!("[{}]", order("TOKIUSDT", 7, "FILLED", hour_ago))),
                "MOCATOKI" => ok(&format!("[{}]", order("MOCATOKI", 8, "FILLED", hour_ago))),
                // Traded, but before the window.
                "BTCUSDT" => ok(&format!("[{}]", order("BTCUSDT", 1, "FILLED", month_ago))),
                _ => ok("[]"),
            }
        }
        _ => err(404, -1, "no"),
    })
    .await;
    let scan = touched_week(&s, now, Vec::new()).await;
    let symbols: Vec<&str> = scan.markets.iter().map(|m| m.market.as_str()).collect();
    assert_eq!(symbols, ["MOCATOKI", "TOKIBTC", "TOKIUSDT"]);
    let mut probes: Vec<String> = s
        .seen()
        .iter()
        .filter(|r| r.is("GET", "/api/v3/allOrders"))
        .filter_map(|r| r.param("symbol").map(String::from))
        .collect();
    probes.sort();
    // ETHBTC is quoted in BTC, which the account never touched: not asked.
    assert_eq!(probes, ["BTCUSDT", "MOCATOKI", "TOKIUSDT"]);
    let probe = scan.sources.last().unwrap();
    assert!(probe.read, "{probe:?}");
    assert_eq!(probe.found, ["TOKIUSDT", "MOCATOKI"]);
    assert!(
        scan.markets[2].reasons[0].contains("TOKI traded in TOKIUSDT"),
        "{:?}",
        scan.markets[2].reasons
    );
}

/// A parent account deletes the leaked sub-account key: the key is read first (evidence it
/// worked), then the parent signs the deletion with its own key.
#[tokio::test]
async fn a_parent_account_deletes_the_sub_account_key() {
    let s = stub(0, |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/sapi/v1/account/apiRestrictions") => ok(RESTRICTIONS_OPEN),
        ("DELETE", "/sapi/v1/sub-account/subAccountApi") => {
            assert_eq!(r.api_key.as_deref(), Some(MASTER_KEY));
            assert_eq!(r.param("email"), Some("bot@example.com"));
            assert_eq!(r.param("subAccountApiKey"), Some(KEY));
            ok("{}")
        }
        _ => err(404, -1, "no"),
    })
    .await;
    let mut cfg = BinanceConfig::new(KEY, Secret::new(SECRET));
    cfg.base_url = Some(s.url.clone());
    cfg.master = Some(MasterKey {
        key: KeyMaterial {
            access_key: MASTER_KEY.into(),
            secret_key: Secret::new(MASTER_SECRET),
            passphrase: None,
        },
        sub_account: Some("bot@example.com".into()),
    });
    let c = BinanceClient::new(cfg).unwrap();
    assert!(c.capabilities().revoke_key_by_api);
    c.revoke_key().await.unwrap();
    let order: Vec<String> = s
        .seen()
        .iter()
        .filter(|r| r.path != "/api/v3/time")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        order,
        [
            "GET /sapi/v1/account/apiRestrictions",
            "DELETE /sapi/v1/sub-account/subAccountApi"
        ]
    );
    // Without a parent account it is a guided manual step.
    assert!(matches!(
        s.hmac().revoke_key().await,
        Err(Error::Unsupported { .. })
    ));
    assert!(!s.hmac().capabilities().revoke_key_by_api);
}

/// What the client recorded rebuilds offline into the same orders and fills, markets split by
/// the recorded market list (PUMPBTC would be PUMP/BTC by its suffix too; WEIRDUSDTX only by
/// the list).
#[tokio::test]
async fn the_raw_answers_rebuild_to_what_the_client_parsed() {
    let info = EXCHANGE_INFO.replace(
        r#"{"symbol":"ETHUSDT""#,
        r#"{"symbol":"WEIRDUSDTX","status":"BREAK","baseAsset":"WEIRDUSDT","quoteAsset":"X","filters":[]},{"symbol":"ETHUSDT""#,
    );
    let s = stub(0, move |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v3/exchangeInfo") => ok(&info),
        ("GET", "/api/v3/allOrders") => ok(&format!(
            "[{},{}]",
            order("WEIRDUSDTX", 5, "FILLED", 1_735_775_000_000),
            order("WEIRDUSDTX", 6, "CANCELED", 1_735_775_000_500)
        )),
        ("GET", "/api/v3/myTrades") => ok(&format!(
            "[{}]",
            trade(77, 5, 1_735_775_000_100).replace("PUMPUSDT", "WEIRDUSDTX")
        )),
        _ => err(404, -1, "no"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
    let mut cfg = BinanceConfig::new(KEY, Secret::new(SECRET));
    cfg.base_url = Some(s.url.clone());
    cfg.recorder = Some(rd.clone());
    let c = BinanceClient::new(cfg).unwrap();
    let w = Window {
        from: Utc.timestamp_millis_opt(1_735_689_600_000).unwrap(),
        to: Utc.timestamp_millis_opt(1_735_776_000_000).unwrap(),
    };
    let m = Market::new("WEIRDUSDTX", "WEIRDUSDT", "X");
    let mut live = c
        .closed_orders(&ClosedOrdersQuery {
            window: w,
            market: Some(m.clone()),
            limit: 1000,
        })
        .await
        .unwrap();
    let fills = c
        .fills(&FillsQuery {
            window: w,
            market: Some(m),
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(live[0].market.quote.as_str(), "X");
    let h = crate::exchange::replay::rebuild(
        &super::DESCRIPTOR,
        rd.path(),
        crate::exchange::replay::RebuildOptions::default(),
    )
    .unwrap();
    live.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    assert_eq!(
        serde_json::to_string(&h.orders).unwrap(),
        serde_json::to_string(&live).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&h.fills).unwrap(),
        serde_json::to_string(&fills).unwrap()
    );
    let by_symbol: BTreeMap<&str, &str> = h
        .markets
        .iter()
        .map(|m| (m.market.as_str(), m.market.quote.as_str()))
        .collect();
    assert_eq!(by_symbol.get("WEIRDUSDTX"), Some(&"X"));
}

/// Answers recorded after a market list are decoded with its markets and those before it
/// without, wherever the list falls among the batches the rebuild reads ahead: first, inside
/// a batch, last of a batch, first of the next (the read ahead decoded without the list is
/// discarded and read again).
#[test]
fn a_market_list_anywhere_in_the_recording_splits_only_the_answers_after_it() {
    let info = EXCHANGE_INFO.replace(
        r#"{"symbol":"ETHUSDT""#,
        r#"{"symbol":"WEIRDUSDTX","status":"BREAK","baseAsset":"WEIRDUSDT","quoteAsset":"X","filters":[]},{"symbol":"ETHUSDT""#,
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = threads * crate::exchange::replay::BATCH_PER_THREAD;
    for at in [0, 1, batch - 1, batch, batch + 1, batch + 5] {
        let dir = tempfile::tempdir().unwrap();
        let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
        let record = |path: &str, body: &str| {
            rd.record_test_answer("GET", path, 200, body.as_bytes());
        };
        let answers = batch + 8;
        for k in 0..answers {
            if k == at {
                record("/api/v3/exchangeInfo", &info);
            }
            let o = order(
                "WEIRDUSDTX",
                k as i64,
                "FILLED",
                1_735_775_000_000 + k as i64,
            );
            record("/api/v3/allOrders", &format!("[{o}]"));
        }
        let h = crate::exchange::replay::rebuild(
            &super::DESCRIPTOR,
            rd.path(),
            crate::exchange::replay::RebuildOptions::default(),
        )
        .unwrap();
        assert_eq!(h.orders.len(), answers, "list at {at}");
        for o in &h.orders {
            let k: usize = o.id.parse().unwrap();
            assert_eq!(
                o.market.quote.as_str() == "X",
                k >= at,
                "list at {at}: order {k} is {:?}",
                o.market
            );
        }
    }
}
