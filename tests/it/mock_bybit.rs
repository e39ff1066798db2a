//! End-to-end tests of the Bybit mock over real loopback HTTP, signed by a small test signer
//! written here (hmac + sha2 over timestamp + key + recv window + payload), independent
//! from the crate's client and from the mock's own verifier.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use respond::mock::bybit::Bybit;
use respond::mock::{self, MockOptions, MockServer, Venue};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::http::{public, Resp};
use crate::support::mock::opts;

async fn serve(sc: mock::Scenario, o: MockOptions) -> MockServer {
    let ex = Venue::new(&Bybit, sc, o).expect("the scenario fits the bybit mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Bybit), ex)
        .await
        .expect("binds")
}

async fn start(scenario: &str) -> MockServer {
    serve(mock::scenario::load(scenario, None).unwrap(), opts()).await
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("not a decimal: {s}"))
}

fn dv(v: &Value) -> Decimal {
    d(v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
}

/// Bybit's envelope on a raw answer.
trait Answer {
    fn code(&self) -> i64;
    fn ok(&self) -> Value;
    fn refused(&self, code: i64);
}

impl Answer for Resp {
    fn code(&self) -> i64 {
        self.json()["retCode"].as_i64().unwrap_or(-1)
    }
    /// The `result` of a success (HTTP 200, retCode 0).
    fn ok(&self) -> Value {
        assert_eq!((self.status, self.code()), (200, 0), "{}", self.body);
        self.json()["result"].clone()
    }
    /// Refused with HTTP 200 and `code`, in Bybit's envelope.
    fn refused(&self, code: i64) {
        assert_eq!((self.status, self.code()), (200, code), "{}", self.body);
        let v = self.json();
        assert!(v["retMsg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(v["result"], json!({}));
        assert!(v["time"].as_i64().is_some(), "{v}");
    }
}

/// A Bybit caller: `X-BAPI-*` headers, hex HMAC-SHA256 over ts + key + window + payload.
struct Api {
    base: String,
    http: reqwest::Client,
    key: String,
    secret: String,
    /// The mock's clock (the scenario fixes "now").
    clock: Arc<Venue>,
    /// Milliseconds added to the timestamp sent.
    skew_ms: i64,
}

impl Api {
    fn new(s: &MockServer, label: &str) -> Api {
        let k = s.state.key(label).expect("key exists");
        Api {
            base: s.url.clone(),
            http: reqwest::Client::new(),
            key: k.access_key.clone(),
            secret: k.secret_key.clone(),
            clock: s.state.clone(),
            skew_ms: 0,
        }
    }

    fn sign(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Sends `payload` (the query of a GET, the body of a POST) signed over `signed`.
    async fn raw(&self, method: &str, path: &str, payload: &str, signed: &str) -> Resp {
        let ts = (self.clock.now().timestamp_millis() + self.skew_ms).to_string();
        let sig = self.sign(&format!("{ts}{}5000{signed}", self.key));
        let url = if method == "GET" && !payload.is_empty() {
            format!("{}{path}?{payload}", self.base)
        } else {
            format!("{}{path}", self.base)
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .http
            .request(m, url)
            .header("X-BAPI-API-KEY", &self.key)
            .header("X-BAPI-TIMESTAMP", ts)
            .header("X-BAPI-RECV-WINDOW", "5000")
            .header("X-BAPI-SIGN", sig);
        if method == "POST" {
            rb = rb
                .header("content-type", "application/json")
                .body(payload.to_string());
        }
        Resp::read(rb.send().await.unwrap()).await
    }

    async fn get(&self, path: &str, query: &str) -> Resp {
        self.raw("GET", path, query, query).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        let b = body.to_string();
        self.raw("POST", path, &b, &b).await
    }
}

#[tokio::test]
async fn every_builtin_scenario_runs_in_usdt_with_thin_coins_and_one_bot_cannot_delete_itself() {
    let mut undeletable = Vec::new();
    for name in mock::scenario::builtin_names() {
        let sc = mock::scenario::load(name, None).unwrap();
        let ex = Venue::new(&Bybit, sc, opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let list = &ex.markets.list;
        assert!(
            list.iter().all(|m| m.market.symbol.ends_with("USDT")),
            "{name}"
        );
        let thin = list
            .iter()
            .filter(|m| m.depth.level_value < Decimal::from(1000) && m.price < Decimal::ONE)
            .count();
        assert!(thin >= 2, "{name}: {thin} thin coins");
        assert_eq!(ex.ground_truth().loss_currency, "USDT", "{name}");
        let bot = ex.key("bot").unwrap();
        let can = bot
            .scopes
            .iter()
            .any(|s| ["AccountTransfer", "SubMemberTransfer", "Withdraw"].contains(&s.as_str()));
        if !can {
            undeletable.push(name);
        }
        if name == "blank" {
            assert!(
                can,
                "blank's leaked key may delete itself: {:?}",
                bot.scopes
            );
        }
    }
    assert!(!undeletable.is_empty(), "some scenario drills the fallback");
}

#[tokio::test]
async fn public_market_data_in_the_envelope() {
    let s = start("blank").await;
    let t = public(&s, "/v5/market/time").await;
    let v = t.json();
    assert_eq!(v["retCode"], 0);
    assert_eq!(
        v["result"]["timeSecond"],
        (v["time"].as_i64().unwrap() / 1000).to_string()
    );
    let info = public(&s, "/v5/market/instruments-info?category=spot")
        .await
        .ok();
    let names: Vec<&str> = info["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["BTCUSDT", "ETHUSDT", "XRPUSDT", "MOCAUSDT", "TOKIUSDT", "SEOLUSDT"]
    );
    let btc = &info["list"][0];
    assert_eq!(btc["priceFilter"]["tickSize"], "0.1");
    assert_eq!(btc["lotSizeFilter"]["basePrecision"], "0.000001");
    assert_eq!(btc["lotSizeFilter"]["minOrderAmt"], "5");
    let linear = public(&s, "/v5/market/instruments-info?category=linear")
        .await
        .ok();
    assert_eq!(linear["list"], json!([]));
    public(&s, "/v5/market/instruments-info")
        .await
        .refused(10001);
    let tk = public(&s, "/v5/market/tickers?category=spot&symbol=TOKIUSDT")
        .await
        .ok();
    let row = &tk["list"][0];
    assert!(dv(&row["bid1Price"]) < dv(&row["ask1Price"]), "{row}");
    let k = public(
        &s,
        "/v5/market/kline?category=spot&symbol=BTCUSDT&interval=1&limit=3",
    )
    .await
    .ok();
    let rows = k["list"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let start = |i: usize| rows[i][0].as_str().unwrap().parse::<i64>().unwrap();
    assert!(start(0) > start(1) && start(1) > start(2), "newest first");
    let ob = public(
        &s,
        "/v5/market/orderbook?category=spot&symbol=BTCUSDT&limit=5",
    )
    .await
    .ok();
    assert_eq!(ob["b"].as_array().unwrap().len(), 5);
    assert!(dv(&ob["b"][0][0]) < dv(&ob["a"][0][0]));
    let nf = public(&s, "/v5/nothing").await;
    assert_eq!((nf.status, nf.code()), (404, 10017));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn signing_is_accepted_and_each_failure_has_its_code() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let me = bot.get("/v5/user/query-api", "").await.ok();
    assert_eq!(me["apiKey"], bot.key.as_str());
    // The query string as sent is signed.
    bot.get("/v5/order/realtime", "category=spot&symbol=BTCUSDT")
        .await
        .ok();
    // A signature over another payload.
    bot.raw(
        "GET",
        "/v5/order/realtime",
        "category=spot",
        "category=spot&x=1",
    )
    .await
    .refused(10004);
    // The JSON body's bytes as sent: re-serialized with a space, it no longer verifies.
    bot.raw(
        "POST",
        "/v5/order/cancel-all",
        r#"{"category": "spot"}"#,
        r#"{"category":"spot"}"#,
    )
    .await
    .refused(10004);
    let wrong = Api {
        secret: "x".repeat(36),
        ..Api::new(&s, "bot")
    };
    wrong.get("/v5/user/query-api", "").await.refused(10004);
    let stranger = Api {
        key: "NOSUCHKEY000000000".into(),
        ..Api::new(&s, "bot")
    };
    stranger.get("/v5/user/query-api", "").await.refused(10003);
    // Without the key header at all.
    let r = reqwest::get(format!("{}/v5/user/query-api", s.url))
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["retCode"], 10003);
    // Too old, and ahead.
    let stale = Api {
        skew_ms: -5001,
        ..Api::new(&s, "bot")
    };
    stale.get("/v5/user/query-api", "").await.refused(10002);
    // (The mock's clock runs on while the request travels: the exact bounds are pinned in
    // the verifier's unit tests.)
    let ahead = Api {
        skew_ms: 2000,
        ..Api::new(&s, "bot")
    };
    ahead.get("/v5/user/query-api", "").await.refused(10002);
    let fine = Api {
        skew_ms: 500,
        ..Api::new(&s, "bot")
    };
    fine.get("/v5/user/query-api", "").await.ok();
    // The permission the endpoint needs.
    let ro = Api::new(&s, "readonly");
    let me = ro.get("/v5/user/query-api", "").await.ok();
    assert_eq!(me["readOnly"], 1);
    ro.post(
        "/v5/order/create",
        json!({"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
            "qty": "0.001", "price": "50000"}),
    )
    .await
    .refused(10005);
    let log = s.state.requests();
    assert!(log.iter().any(|r| r.error.as_deref() == Some("10004")));
    assert!(log.iter().any(|r| r.error.as_deref() == Some("10005")));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_documented_vector_is_accepted_as_sent() {
    // docs/exchanges/bybit.md §3.2 Y4: key, secret and time fixed.
    let yaml = r#"
name: vector
seed: 1
quote: USDT
now: "2025-01-02T00:00:00Z"
markets:
  - { base: BTC, name: Bitcoin, price: "96000", volatility: 0.0, depth: { levels: 5, step_pct: "0.05", level_quote: "100000" } }
accounts:
  - { name: victim, balances: { USDT: "1000" } }
keys:
  - { account: victim, label: bot, access_key: respond-test-bybit-key, secret_key: respond-test-bybit-secret-000000000000, permissions: [read] }
"#;
    let sc = mock::scenario::parse("vector.yaml", yaml, None).unwrap();
    let s = serve(
        sc,
        MockOptions {
            now: None,
            live_attacker: false,
            ..MockOptions::default()
        },
    )
    .await;
    // The mock's clock starts at the scenario's `now` and runs on: within the 5 s window.
    let skew = s.state.now().timestamp_millis() - 1_735_776_000_000;
    assert!((0..5_000).contains(&skew), "{skew} ms");
    let r = reqwest::Client::new()
        .get(format!("{}/v5/user/query-api", s.url))
        .header("X-BAPI-API-KEY", "respond-test-bybit-key")
        .header("X-BAPI-TIMESTAMP", "1735776000000")
        .header("X-BAPI-RECV-WINDOW", "5000")
        .header(
            "X-BAPI-SIGN",
            "fc7ea1f6822d915f1d6ad2efb7ba77e0dda0f83ac9494b8c883bc32f6297f78a",
        )
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["retCode"], 0, "{v}");
    assert_eq!(v["result"]["apiKey"], "respond-test-bybit-key");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn limit_headers_then_10006_per_uid_and_endpoint() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let r = bot.get("/v5/user/query-api", "").await;
    r.ok();
    assert_eq!(r.header("x-bapi-limit").as_deref(), Some("10"));
    let left: u32 = r.header("x-bapi-limit-status").unwrap().parse().unwrap();
    assert!(left < 10);
    let time = r.json()["time"].as_i64().unwrap();
    assert_eq!(
        r.header("x-bapi-limit-reset-timestamp"),
        Some(time.to_string()),
        "under the limit the reset time is now"
    );
    // Ten a second: keep calling until refused (sequential loopback calls run far faster).
    let mut refused = None;
    for _ in 0..200 {
        let r = bot.get("/v5/user/query-api", "").await;
        if r.code() != 0 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("10006 within 200 calls of a 10/s budget");
    r.refused(10006);
    assert_eq!(r.header("x-bapi-limit-status").as_deref(), Some("0"));
    let reset: i64 = r
        .header("x-bapi-limit-reset-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > r.json()["time"].as_i64().unwrap());
    // Another endpoint's budget is untouched.
    let other = bot.get("/v5/order/realtime", "category=spot").await;
    other.ok();
    assert_eq!(other.header("x-bapi-limit").as_deref(), Some("50"));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_600_requests_in_5s_per_ip_is_403_then_banned() {
    use futures::StreamExt;
    let s = start("blank").await;
    // 32 at a time, so well over 600 arrive within 5 s however slow the machine.
    let statuses: Vec<(u16, String)> = futures::stream::iter(0..800)
        .map(|_| async { public(&s, "/v5/market/time").await })
        .buffer_unordered(32)
        .map(|r| (r.status, r.body))
        .collect()
        .await;
    let ok = statuses.iter().filter(|(st, _)| *st == 200).count();
    let refused: Vec<&String> = statuses
        .iter()
        .filter(|(st, _)| *st == 403)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ok + refused.len(), 800, "only 200s and 403s");
    assert!(ok >= 600, "600 allowed first: {ok}");
    assert!(!refused.is_empty(), "then refused");
    assert!(refused[0].contains("access too frequent"), "{}", refused[0]);
    // Banned: signed requests too.
    let again = Api::new(&s, "bot").get("/v5/user/query-api", "").await;
    assert_eq!(again.status, 403);
    s.shutdown().await.unwrap();
}

fn limit_order(symbol: &str, price: &str, qty: &str) -> Value {
    json!({"category": "spot", "symbol": symbol, "side": "Buy", "orderType": "Limit",
        "qty": qty, "price": price})
}

#[tokio::test]
async fn orders_fills_history_and_their_errors() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let mut o = limit_order("BTCUSDT", "50000", "0.001");
    o["orderLinkId"] = json!("grid-1");
    let placed = bot.post("/v5/order/create", o.clone()).await.ok();
    let id = placed["orderId"].as_str().unwrap().to_string();
    assert_eq!(placed["orderLinkId"], "grid-1");
    bot.post("/v5/order/create", o).await.refused(170141);
    let open = bot
        .get("/v5/order/realtime", &format!("category=spot&orderId={id}"))
        .await
        .ok();
    let row = &open["list"][0];
    assert_eq!(row["orderStatus"], "New");
    assert_eq!(row["price"], "50000");
    assert_eq!(row["qty"], "0.001");
    // Errors of order entry.
    for (body, code) in [
        (limit_order("NOPEUSDT", "1", "1"), 170121),
        (limit_order("BTCUSDT", "50000.05", "0.001"), 170134),
        (limit_order("BTCUSDT", "50000", "0.0000001"), 170137),
        (limit_order("BTCUSDT", "1000", "0.001"), 170140),
        (limit_order("BTCUSDT", "50000", "1000"), 170131),
        (
            json!({"category": "spot", "symbol": "BTCUSDT", "side": "Up", "orderType": "Limit",
            "qty": "1", "price": "1"}),
            170117,
        ),
        (
            json!({"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Stop",
            "qty": "1", "price": "1"}),
            170116,
        ),
    ] {
        bot.post("/v5/order/create", body).await.refused(code);
    }
    let cancelled = bot
        .post(
            "/v5/order/cancel",
            json!({"category": "spot", "symbol": "BTCUSDT", "orderLinkId": "grid-1"}),
        )
        .await
        .ok();
    assert_eq!(cancelled["orderId"], id.as_str());
    bot.post(
        "/v5/order/cancel",
        json!({"category": "spot", "symbol": "BTCUSDT", "orderId": id}),
    )
    .await
    .refused(170213);
    // By id, a closed order is still found among the recent ones (ccxt's fetch_order).
    let by_id = bot
        .get("/v5/order/realtime", &format!("category=spot&orderId={id}"))
        .await
        .ok();
    assert_eq!(by_id["list"][0]["orderStatus"], "Cancelled");
    let open = bot.get("/v5/order/realtime", "category=spot").await.ok();
    assert_eq!(open["list"], json!([]), "not among the open ones");
    // A market buy of 20 USDT (the quote amount by default).
    let mkt = bot
        .post(
            "/v5/order/create",
            json!({"category": "spot", "symbol": "TOKIUSDT", "side": "Buy",
                "orderType": "Market", "qty": "20"}),
        )
        .await
        .ok();
    let mid = mkt["orderId"].as_str().unwrap();
    let hist = bot
        .get("/v5/order/history", "category=spot&symbol=TOKIUSDT")
        .await
        .ok();
    let row = &hist["list"][0];
    assert_eq!(row["orderId"], mid);
    assert_eq!(row["orderStatus"], "Filled");
    assert_eq!(row["marketUnit"], "quoteCoin");
    let spent = dv(&row["cumExecValue"]);
    assert!(spent > d("19.9") && spent <= d("20"), "{row}");
    let fills = bot
        .get(
            "/v5/execution/list",
            &format!("category=spot&orderId={mid}"),
        )
        .await
        .ok();
    let list = fills["list"].as_array().unwrap();
    assert!(!list.is_empty());
    let sum: Decimal = list.iter().map(|f| dv(&f["execValue"])).sum();
    assert_eq!(sum, spent);
    assert!(list
        .iter()
        .all(|f| f["feeCurrency"] == "USDT" && f["execType"] == "Trade"));
    let cancelled_hist = bot
        .get("/v5/order/history", "category=spot&orderStatus=Cancelled")
        .await
        .ok();
    assert_eq!(cancelled_hist["list"][0]["orderId"], id.as_str());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn history_and_fills_take_seven_days_per_query_and_page_by_cursor() {
    let s = start("pump-and-dump").await;
    let ro = Api::new(&s, "readonly");
    let now = s.state.now().timestamp_millis();
    let day = 86_400_000i64;
    for path in ["/v5/order/history", "/v5/execution/list"] {
        let q = |a: i64, b: i64| format!("category=spot&startTime={a}&endTime={b}");
        ro.get(path, &q(now - 7 * day - 1, now))
            .await
            .refused(181010);
        ro.get(path, &q(now - 7 * day, now)).await.ok();
        ro.get(path, &q(now, now - 1)).await.refused(10001);
        // A start alone reaches seven days on; an end alone seven days back.
        ro.get(path, &format!("category=spot&startTime={}", now - 30 * day))
            .await
            .ok();
    }
    // Paging: every fill of the last seven days once, newest first, in pages of 7.
    let all = ro
        .get("/v5/execution/list", "category=spot&limit=100")
        .await
        .ok();
    let every: Vec<String> = all["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["execId"].as_str().unwrap().to_string())
        .collect();
    assert!(every.len() > 14, "the scenario has fills: {}", every.len());
    assert!(every.len() < 100 || all["nextPageCursor"] != "");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    let mut last_time = i64::MAX;
    loop {
        let q = if cursor.is_empty() {
            "category=spot&limit=7".to_string()
        } else {
            format!("category=spot&limit=7&cursor={cursor}")
        };
        let page = ro.get("/v5/execution/list", &q).await.ok();
        for f in page["list"].as_array().unwrap() {
            let t: i64 = f["execTime"].as_str().unwrap().parse().unwrap();
            assert!(t <= last_time, "newest first");
            last_time = t;
            paged.push(f["execId"].as_str().unwrap().to_string());
        }
        cursor = page["nextPageCursor"].as_str().unwrap().to_string();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(paged[..every.len().min(paged.len())], every[..]);
    ro.get("/v5/execution/list", "category=spot&cursor=garbage")
        .await
        .refused(10001);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_all_takes_one_order_filter_at_a_time_conditionals_included() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let mut ids = Vec::new();
    for price in ["50000", "51000"] {
        let r = bot
            .post("/v5/order/create", limit_order("BTCUSDT", price, "0.001"))
            .await
            .ok();
        ids.push(r["orderId"].as_str().unwrap().to_string());
    }
    let mut stop = limit_order("BTCUSDT", "52000", "0.001");
    stop["orderFilter"] = json!("StopOrder");
    stop["triggerPrice"] = json!("52000");
    let stop_id = bot.post("/v5/order/create", stop.clone()).await.ok()["orderId"].clone();
    let mut tpsl = stop;
    tpsl["orderFilter"] = json!("tpslOrder");
    let tpsl_id = bot.post("/v5/order/create", tpsl).await.ok()["orderId"].clone();
    let open = bot.get("/v5/order/realtime", "category=spot").await.ok();
    assert_eq!(open["list"].as_array().unwrap().len(), 4);
    let cond = bot
        .get("/v5/order/realtime", "category=spot&orderFilter=StopOrder")
        .await
        .ok();
    assert_eq!(cond["list"][0]["orderStatus"], "Untriggered");
    assert_eq!(cond["list"][0]["orderId"], stop_id);
    // No filter: the plain orders only.
    let r = bot
        .post("/v5/order/cancel-all", json!({"category": "spot"}))
        .await
        .ok();
    let mut got: Vec<String> = r["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, ids);
    assert_eq!(r["success"], "1");
    let left = bot.get("/v5/order/realtime", "category=spot").await.ok();
    assert_eq!(
        left["list"].as_array().unwrap().len(),
        2,
        "the conditionals stay"
    );
    for (filter, id) in [("StopOrder", &stop_id), ("tpslOrder", &tpsl_id)] {
        let r = bot
            .post(
                "/v5/order/cancel-all",
                json!({"category": "spot", "orderFilter": filter}),
            )
            .await
            .ok();
        assert_eq!(r["list"].as_array().unwrap().len(), 1, "{filter}");
        assert_eq!(r["list"][0]["orderId"], *id);
    }
    let none = bot.get("/v5/order/realtime", "category=spot").await.ok();
    assert_eq!(none["list"], json!([]));
    let hist = bot
        .get("/v5/order/history", "category=spot&orderFilter=StopOrder")
        .await
        .ok();
    assert_eq!(hist["list"][0]["orderStatus"], "Deactivated");
    // The venue saw two cancels (the conditionals never reached its book).
    let cancels: usize = s
        .state
        .requests()
        .iter()
        .map(|r| r.orders_cancelled.len())
        .sum();
    assert_eq!(cancels, 2);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_with_a_transfer_permission_deletes_itself_and_is_then_refused() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let ro = Api::new(&s, "readonly");
    // Without a transfer or withdrawal permission the key cannot.
    ro.post("/v5/user/delete-api", json!({}))
        .await
        .refused(10005);
    ro.get("/v5/user/query-api", "").await.ok();
    let me = bot.get("/v5/user/query-api", "").await.ok();
    assert_eq!(
        me["permissions"]["Wallet"],
        json!(["AccountTransfer", "SubMemberTransfer"])
    );
    assert_eq!(me["permissions"]["Spot"], json!(["SpotTrade"]));
    assert_eq!(me["readOnly"], 0);
    assert_eq!(me["isMaster"], true);
    assert_eq!(me["ips"], json!(["*"]));
    let r = bot.raw("POST", "/v5/user/delete-api", "{}", "{}").await;
    assert_eq!(r.ok(), json!({}));
    bot.get("/v5/user/query-api", "").await.refused(10003);
    bot.post("/v5/user/delete-api", json!({}))
        .await
        .refused(10003);
    let truth = s.state.ground_truth();
    assert!(
        truth.revoked_at.is_some(),
        "the leaked key's deletion is in the ground truth"
    );
    // The other key still works.
    ro.get("/v5/user/query-api", "").await.ok();
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bot_key_without_transfer_cannot_delete_itself() {
    let s = start("contra").await;
    let bot = Api::new(&s, "bot");
    bot.post("/v5/user/delete-api", json!({}))
        .await
        .refused(10005);
    bot.post("/v5/user/update-api", json!({"readOnly": 1}))
        .await
        .refused(10005);
    bot.get("/v5/user/query-api", "").await.ok();
    assert!(s.state.ground_truth().revoked_at.is_none());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn update_api_makes_the_key_read_only_or_binds_it_to_an_ip() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let r = bot
        .post("/v5/user/update-api", json!({"readOnly": 1}))
        .await
        .ok();
    assert_eq!(r["readOnly"], 1);
    assert_eq!(r["permissions"]["Spot"], json!([]));
    bot.post("/v5/order/create", limit_order("BTCUSDT", "50000", "0.001"))
        .await
        .refused(10005);
    // Read-only, it may no longer delete (nor change) itself.
    bot.post("/v5/user/delete-api", json!({}))
        .await
        .refused(10005);
    bot.get("/v5/account/wallet-balance", "accountType=UNIFIED")
        .await
        .ok();

    let s2 = start("withdrawal").await;
    let bot = Api::new(&s2, "bot");
    bot.post("/v5/user/update-api", json!({"ips": "abc"}))
        .await
        .refused(10001);
    let r = bot
        .post("/v5/user/update-api", json!({"ips": "10.1.2.3"}))
        .await
        .ok();
    assert_eq!(r["ips"], json!(["10.1.2.3"]));
    // Loopback is not 10.1.2.3.
    bot.get("/v5/user/query-api", "").await.refused(10010);
    // Narrowing permissions: trading dropped, the withdrawal permission kept.
    let ro = Api::new(&s2, "readonly");
    ro.post("/v5/user/update-api", json!({"permissions": {"Spot": []}}))
        .await
        .refused(10005);
    s.shutdown().await.unwrap();
    s2.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pending_withdrawal_is_cancelled_once() {
    let s = start("withdrawal").await;
    let bot = Api::new(&s, "bot");
    let addr = "bc1qvictimcoldwallet0000000000000000000";
    let made = bot
        .post(
            "/v5/asset/withdraw/create",
            json!({"coin": "BTC", "chain": "BTC", "address": addr, "amount": "0.001",
                "timestamp": s.state.now().timestamp_millis()}),
        )
        .await
        .ok();
    let id = made["id"].as_str().unwrap().to_string();
    let rec = bot
        .get(
            "/v5/asset/withdraw/query-record",
            &format!("withdrawID={id}"),
        )
        .await
        .ok();
    assert_eq!(rec["rows"][0]["status"], "Pending");
    // The read-only key may not cancel it.
    Api::new(&s, "readonly")
        .post("/v5/asset/withdraw/cancel", json!({"id": id}))
        .await
        .refused(10005);
    let r = bot
        .post("/v5/asset/withdraw/cancel", json!({"id": id}))
        .await
        .ok();
    assert_eq!(r, json!({"status": 1}));
    let again = bot
        .post("/v5/asset/withdraw/cancel", json!({"id": id}))
        .await
        .ok();
    assert_eq!(again, json!({"status": 0}), "no longer pending");
    bot.post("/v5/asset/withdraw/cancel", json!({"id": "1"}))
        .await
        .refused(131002);
    let rec = bot
        .get(
            "/v5/asset/withdraw/query-record",
            &format!("withdrawID={id}"),
        )
        .await
        .ok();
    assert_eq!(rec["rows"][0]["status"], "CancelByUser");
    // The generated withdrawals are listed (30 days back by default) with their windows.
    let all = bot.get("/v5/asset/withdraw/query-record", "").await.ok();
    assert!(all["rows"].as_array().unwrap().len() >= 2);
    let now = s.state.now().timestamp_millis();
    bot.get(
        "/v5/asset/withdraw/query-record",
        &format!("startTime={}&endTime={now}", now - 31 * 86_400_000),
    )
    .await
    .refused(10001);
    let dep = bot
        .get("/v5/asset/deposit/query-record", "limit=1")
        .await
        .ok();
    assert!(dep["rows"].as_array().unwrap().len() <= 1);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn balance_and_the_calls_ccxt_makes_first() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let b = bot
        .get("/v5/account/wallet-balance", "accountType=UNIFIED")
        .await
        .ok();
    let coins = b["list"][0]["coin"].as_array().unwrap();
    let usdt = coins.iter().find(|c| c["coin"] == "USDT").unwrap();
    assert_eq!(dv(&usdt["walletBalance"]).round_dp(2), d("5714.29"));
    let btc = coins.iter().find(|c| c["coin"] == "BTC").unwrap();
    assert_eq!(btc["walletBalance"], "0.12");
    assert!(coins
        .iter()
        .all(|c| dv(&c["walletBalance"]) > Decimal::ZERO));
    bot.get("/v5/account/wallet-balance", "accountType=SPOT")
        .await
        .refused(10001);
    let info = bot.get("/v5/account/info", "").await.ok();
    assert!(info["unifiedMarginStatus"].as_i64().is_some());
    let coins = bot.get("/v5/asset/coin/query-info", "").await.ok();
    assert!(coins["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["coin"] == "TOKI"));
    s.shutdown().await.unwrap();
}

/// History pages read again are the same bytes (the second read copies the text kept for
/// closed orders), paged by cursor too; `time` aside, which follows the clock.
#[tokio::test]
async fn history_pages_read_again_are_the_same_bytes() {
    let s = start("pump-and-dump").await;
    let ro = Api::new(&s, "readonly");
    let result = |body: &str| -> String {
        let from = body.find("\"result\":").expect("a result");
        let to = body.find(",\"retExtInfo\"").expect("then retExtInfo");
        body[from..to].to_string()
    };
    for (path, limit) in [("/v5/order/history", 12), ("/v5/execution/list", 12)] {
        let mut q = format!("category=spot&limit={limit}");
        for _ in 0..3 {
            let first = ro.get(path, &q).await;
            let again = ro.get(path, &q).await;
            assert_eq!(result(&first.body), result(&again.body), "{path}?{q}");
            let v = first.ok();
            assert_eq!(
                v["list"].as_array().unwrap().len(),
                limit,
                "{path}: a full page"
            );
            let next = v["nextPageCursor"].as_str().unwrap().to_string();
            q = format!("category=spot&limit={limit}&cursor={next}");
        }
    }
    s.shutdown().await.unwrap();
}
