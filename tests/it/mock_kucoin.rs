//! End-to-end tests of the KuCoin mock over real loopback HTTP, signed by a small test signer
//! written here (base64 HMAC-SHA256 over timestamp + method + path?query + body, and the
//! passphrase HMAC-signed), independent from the crate's client and from the mock's own
//! verifier.

use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use respond::mock::kucoin::Kucoin;
use respond::mock::{self, Facade, MockOptions, MockServer, Venue};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::http::{public, Resp};
use crate::support::mock::opts;

async fn serve(sc: mock::Scenario, o: MockOptions) -> MockServer {
    let ex = Venue::new(&Kucoin, sc, o).expect("the scenario fits the kucoin mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Kucoin), ex)
        .await
        .expect("binds")
}

async fn start(scenario: &str) -> MockServer {
    serve(mock::scenario::load(scenario, None).unwrap(), opts()).await
}

async fn start_yaml(yaml: &str) -> MockServer {
    serve(
        mock::scenario::parse("test.yaml", yaml, None).unwrap(),
        opts(),
    )
    .await
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("not a decimal: {s}"))
}

fn dv(v: &Value) -> Decimal {
    d(v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
}

/// KuCoin's envelope on a raw answer.
trait Answer {
    fn code(&self) -> String;
    fn ok(&self) -> Value;
    fn refused(&self, status: u16, code: &str);
}

impl Answer for Resp {
    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }
    /// The `data` of a success (HTTP 200, code 200000).
    fn ok(&self) -> Value {
        assert_eq!(
            (self.status, self.code().as_str()),
            (200, "200000"),
            "{}",
            self.body
        );
        self.json()["data"].clone()
    }
    /// Refused with `status` and `code`, in KuCoin's `{"code","msg"}` body.
    fn refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.body
        );
        let v = self.json();
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(v.get("data").is_none(), "{v}");
    }
}

fn b64_hmac(secret: &str, text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A KuCoin caller: `KC-API-*` headers, key version 2.
#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
    key: String,
    secret: String,
    passphrase: String,
    /// `KC-API-KEY-VERSION` (None: not sent).
    version: Option<String>,
    /// Send the passphrase as is (version 1) instead of signed.
    plain_passphrase: bool,
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
            passphrase: k.passphrase.clone().expect("kucoin keys have a passphrase"),
            version: Some("2".into()),
            plain_passphrase: false,
            clock: s.state.clone(),
            skew_ms: 0,
        }
    }

    /// Sends `query` and `body` as given, signed over `signed` (the path, `?query` and
    /// body the signer saw).
    async fn raw(&self, method: &str, path: &str, query: &str, body: &str, signed: &str) -> Resp {
        let ts = (self.clock.now().timestamp_millis() + self.skew_ms).to_string();
        let sig = b64_hmac(&self.secret, &format!("{ts}{method}{signed}"));
        let pass = if self.plain_passphrase {
            self.passphrase.clone()
        } else {
            b64_hmac(&self.secret, &self.passphrase)
        };
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .http
            .request(m, url)
            .header("KC-API-KEY", &self.key)
            .header("KC-API-TIMESTAMP", ts)
            .header("KC-API-SIGN", sig)
            .header("KC-API-PASSPHRASE", pass);
        if let Some(v) = &self.version {
            rb = rb.header("KC-API-KEY-VERSION", v);
        }
        if method == "POST" {
            rb = rb
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        Resp::read(rb.send().await.unwrap()).await
    }

    fn signed_path(path: &str, query: &str) -> String {
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }

    async fn get(&self, path: &str, query: &str) -> Resp {
        self.raw("GET", path, query, "", &Self::signed_path(path, query))
            .await
    }

    async fn delete(&self, path: &str, query: &str) -> Resp {
        self.raw("DELETE", path, query, "", &Self::signed_path(path, query))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        let b = body.to_string();
        self.raw("POST", path, "", &b, &format!("{path}{b}")).await
    }
}

#[tokio::test]
async fn every_builtin_scenario_runs_in_usdt_with_thin_coins_and_keys_with_passphrases() {
    for name in mock::scenario::builtin_names() {
        let sc = mock::scenario::load(name, None).unwrap();
        let ex = Venue::new(&Kucoin, sc, opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let list = &ex.markets.list;
        assert!(
            list.iter().all(|m| m.market.symbol.ends_with("-USDT")),
            "{name}"
        );
        let thin = list
            .iter()
            .filter(|m| m.depth.level_value < Decimal::from(1000) && m.price < Decimal::ONE)
            .count();
        assert!(thin >= 2, "{name}: {thin} thin coins");
        assert_eq!(ex.ground_truth().loss_currency, "USDT", "{name}");
        for k in ex.keys() {
            assert_eq!(k.passphrase.as_deref().map(str::len), Some(16), "{name}");
            assert!(k.scopes.iter().any(|s| s == "General"), "{name}");
        }
    }
    let s = start("blank").await;
    let banner = serde_json::to_value(s.state.keys()).unwrap();
    let labels: Vec<&str> = banner
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["bot", "readonly", "attacker"]);
    assert!(banner[0]["passphrase"].is_string());
    assert_eq!(banner[1]["scopes"], json!(["General"]));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn public_market_data_in_the_envelope_with_pool_headers() {
    let s = start("blank").await;
    let before = s.state.now().timestamp_millis();
    let r = public(&s, "/api/v1/timestamp").await;
    let t = r.ok().as_i64().expect("epoch ms as a number");
    assert!(before <= t && t <= s.state.now().timestamp_millis());
    assert_eq!(r.header("gw-ratelimit-limit").as_deref(), Some("2000"));
    assert_eq!(r.header("gw-ratelimit-remaining").as_deref(), Some("1997"));
    let r2 = public(&s, "/api/v2/symbols").await;
    assert_eq!(
        r2.header("gw-ratelimit-remaining").as_deref(),
        Some("1993"),
        "symbols weighs 4"
    );
    let syms = r2.ok();
    let btc = syms
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["symbol"] == "BTC-USDT")
        .expect("BTC-USDT listed")
        .clone();
    assert_eq!(btc["baseCurrency"], "BTC");
    assert_eq!(btc["quoteCurrency"], "USDT");
    assert_eq!(btc["priceIncrement"], "0.1");
    assert_eq!(btc["baseIncrement"], "0.000001");
    assert_eq!(btc["minFunds"], "1");
    assert_eq!(btc["enableTrading"], true);
    let cur = public(&s, "/api/v3/currencies").await.ok();
    assert!(cur
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["currency"] == "TOKI" && c["chains"][0]["isWithdrawEnabled"] == true));
    public(&s, "/api/v3/currencies/TOKI").await.ok();
    public(&s, "/api/v3/currencies/NOPE")
        .await
        .refused(400, "400100");
    let all = public(&s, "/api/v1/market/allTickers").await.ok();
    assert_eq!(all["ticker"].as_array().unwrap().len(), 6);
    let l1 = public(&s, "/api/v1/market/orderbook/level1?symbol=BTC-USDT")
        .await
        .ok();
    assert!(dv(&l1["bestBid"]) < dv(&l1["bestAsk"]), "{l1}");
    let k = public(&s, "/api/v1/market/candles?symbol=BTC-USDT&type=1hour")
        .await
        .ok();
    let rows = k.as_array().unwrap();
    assert!(rows.len() > 10);
    let t0: i64 = rows[0][0].as_str().unwrap().parse().unwrap();
    let t1: i64 = rows[1][0].as_str().unwrap().parse().unwrap();
    assert_eq!(t0 - t1, 3600, "newest first, in seconds");
    // [time, open, close, high, low, …]: the high bounds the close.
    assert!(dv(&rows[0][3]) >= dv(&rows[0][2]));
    public(&s, "/api/v1/market/candles?symbol=BTC-USDT&type=1h")
        .await
        .refused(400, "400100");
    public(&s, "/api/v1/market/orderbook/level1?symbol=BTCUSDT")
        .await
        .refused(400, "400100");
    public(&s, "/api/v9/nothing").await.refused(404, "404000");
    s.shutdown().await.unwrap();
}

const FENCED: &str = r#"name: fenced
seed: 3
now: 2026-11-20T18:30:00Z
quote: USDT
markets:
  - { base: BTC, name: Bitcoin, price: "96000" }
  - { base: TOKI, name: Tokicoin, price: "0.0264", depth: { levels: 10, step_pct: "2", level_quote: "100" } }
accounts:
  - { name: victim, balances: { USDT: "10000", BTC: "0.5" } }
  - { name: fund, master: victim, balances: { USDT: "100" } }
  - { name: stranger, balances: { USDT: "100" } }
keys:
  - { account: victim, label: bot, permissions: [read, trade] }
  - { account: victim, label: master, permissions: [read] }
  - { account: victim, label: fenced, permissions: [read, trade], allowed_ips: ["10.1.2.3", "203.0.113.154"] }
  - { account: fund, label: sub, permissions: [read, trade] }
  - { account: stranger, label: stranger, permissions: [read] }
"#;

#[tokio::test]
async fn signing_is_accepted_and_each_failure_has_its_code() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let me = bot.get("/api/v1/user/api-key", "").await.ok();
    assert_eq!(me["apiKey"], bot.key.as_str());
    assert_eq!(me["permission"], "General,Spot,InnerTransfer");
    assert_eq!(me["ipWhitelist"], "");
    assert_eq!(me["isMaster"], true);
    // A header missing: 400001.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/accounts", s.url))
        .header("KC-API-KEY", &bot.key)
        .send()
        .await
        .unwrap();
    Resp::read(r).await.refused(401, "400001");
    // An unknown key: 400003.
    let mut stranger = bot.clone();
    stranger.key = "A".repeat(24);
    stranger
        .get("/api/v1/accounts", "")
        .await
        .refused(401, "400003");
    // A wrong passphrase, a plain (version 1) one, no version: 400004.
    let mut p = bot.clone();
    p.passphrase = "not-the-passphrase".into();
    p.get("/api/v1/accounts", "").await.refused(401, "400004");
    let mut v1 = bot.clone();
    v1.plain_passphrase = true;
    v1.version = Some("1".into());
    v1.get("/api/v1/accounts", "").await.refused(401, "400004");
    let mut none = bot.clone();
    none.version = None;
    none.get("/api/v1/accounts", "")
        .await
        .refused(401, "400004");
    let mut v3 = bot.clone();
    v3.version = Some("3".into());
    v3.get("/api/v1/accounts", "").await.ok();
    // A signature over something else: 400005 (query, method, body).
    bot.raw(
        "GET",
        "/api/v1/accounts",
        "currency=BTC",
        "",
        "/api/v1/accounts?currency=USDT",
    )
    .await
    .refused(401, "400005");
    bot.raw("GET", "/api/v1/accounts", "", "", "/api/v1/accounts?")
        .await
        .refused(401, "400005");
    let body =
        json!({"symbol": "BTC-USDT", "side": "buy", "price": "1000", "size": "0.01"}).to_string();
    bot.raw(
        "POST",
        "/api/v1/hf/orders",
        "",
        &body,
        &format!("/api/v1/hf/orders{}", body.replace(':', ": ")),
    )
    .await
    .refused(401, "400005");
    // The query signed percent-decoded, sent encoded, verifies; so does it signed as sent.
    let a = bot
        .raw(
            "GET",
            "/api/v1/hf/orders/done",
            "symbol=BTC%2DUSDT",
            "",
            "/api/v1/hf/orders/done?symbol=BTC-USDT",
        )
        .await
        .ok();
    assert_eq!(a["items"], json!([]));
    bot.get("/api/v1/hf/orders/done", "symbol=BTC%2DUSDT")
        .await
        .ok();
    // The timestamp within 5 s either way: 400002 beyond.
    for (skew, ok) in [
        (4_000, true),
        (-4_000, true),
        (6_000, false),
        (-6_000, false),
    ] {
        let mut k = bot.clone();
        k.skew_ms = skew;
        let r = k.get("/api/v1/accounts", "").await;
        if ok {
            r.ok();
        } else {
            r.refused(401, "400002");
        }
    }
    // A read-only key trading: 400007 with the permission status (403 by default).
    let ro = Api::new(&s, "readonly");
    ro.post(
        "/api/v1/hf/orders",
        json!({"symbol": "BTC-USDT", "side": "buy", "price": "1000", "size": "0.01"}),
    )
    .await
    .refused(403, "400007");
    ro.get("/api/v1/accounts", "").await.ok();
    // The request log names the key and KuCoin's code.
    let log = s.state.requests();
    assert!(log.iter().any(|r| r.error.as_deref() == Some("400005")
        && r.access_key.as_deref() == Some(bot.key.as_str())));
    s.shutdown().await.unwrap();

    // An IP outside the allowlist: 400006; the list is shown masked.
    let s = start_yaml(FENCED).await;
    let fenced = Api::new(&s, "fenced");
    fenced
        .get("/api/v1/accounts", "")
        .await
        .refused(403, "400006");
    s.shutdown().await.unwrap();
    let s = serve(
        mock::scenario::parse("test.yaml", FENCED, None).unwrap(),
        MockOptions {
            out_of_scope_status: 401,
            ..opts()
        },
    )
    .await;
    Api::new(&s, "fenced")
        .get("/api/v1/accounts", "")
        .await
        .refused(401, "400006");
    let k = s.state.key("fenced").unwrap().access_key.clone();
    s.state.world().keys.get_mut(&k).unwrap().allowed_ips = vec![
        "127.0.0.1".parse().unwrap(),
        "203.0.113.154".parse().unwrap(),
    ];
    let me = Api::new(&s, "fenced")
        .get("/api/v1/user/api-key", "")
        .await
        .ok();
    assert_eq!(me["ipWhitelist"], "127.**.1,203.**.154");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn pools_count_weights_with_headers_then_429000() {
    let s = start("blank").await;
    let ro = Api::new(&s, "readonly");
    // Management pool (2,000 per 30 s per account): user/api-key weighs 20, accounts 5.
    let r = ro.get("/api/v1/user/api-key", "").await;
    r.ok();
    assert_eq!(r.header("gw-ratelimit-limit").as_deref(), Some("2000"));
    assert_eq!(r.header("gw-ratelimit-remaining").as_deref(), Some("1980"));
    let reset: i64 = r.header("gw-ratelimit-reset").unwrap().parse().unwrap();
    assert!(
        reset > 0 && reset <= 30_000,
        "ms to the window's end: {reset}"
    );
    let r = ro.get("/api/v1/accounts", "").await;
    assert_eq!(r.header("gw-ratelimit-remaining").as_deref(), Some("1975"));
    // Spot pool: its own quota.
    let r = ro.get("/api/v1/hf/orders/active", "symbol=BTC-USDT").await;
    r.ok();
    assert_eq!(r.header("gw-ratelimit-limit").as_deref(), Some("4000"));
    assert_eq!(r.header("gw-ratelimit-remaining").as_deref(), Some("3998"));
    // The bot key shares the account's pools.
    let bot = Api::new(&s, "bot");
    let r = bot.get("/api/v1/accounts", "").await;
    assert_eq!(r.header("gw-ratelimit-remaining").as_deref(), Some("1970"));
    let mut refused = None;
    for _ in 0..200 {
        let r = ro.get("/api/v1/user/api-key", "").await;
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the pool runs out");
    r.refused(429, "429000");
    assert_eq!(r.header("gw-ratelimit-limit").as_deref(), Some("2000"));
    let left: u32 = r.header("gw-ratelimit-remaining").unwrap().parse().unwrap();
    assert!(left < 20, "{left}");
    // Another account's pool is untouched; public endpoints count per IP.
    Api::new(&s, "attacker")
        .get("/api/v1/user/api-key", "")
        .await
        .ok();
    public(&s, "/api/v1/timestamp").await.ok();
    assert!(s
        .state
        .requests()
        .iter()
        .any(|r| r.error.as_deref() == Some("429000")));
    s.shutdown().await.unwrap();
}

/// Places an order through `api` at `path` (HF, classic or stop); its `orderId`.
async fn place(api: &Api, path: &str, body: Value) -> String {
    api.post(path, body).await.ok()["orderId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A stop-loss sell of 0.001 BTC-USDT at 40,000 once the price reaches 41,000.
fn stop_loss(oid: &str) -> Value {
    json!({"clientOid": oid, "symbol": "BTC-USDT", "side": "sell", "type": "limit",
        "price": "40000", "size": "0.001", "stopPrice": "41000", "stop": "loss"})
}

fn limit_order(symbol: &str, side: &str, price: &str, size: &str, oid: &str) -> Value {
    json!({"clientOid": oid, "symbol": symbol, "side": side, "type": "limit", "price": price,
        "size": size})
}

#[tokio::test]
async fn orders_in_both_families_and_their_errors() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let hf = bot
        .post(
            "/api/v1/hf/orders",
            limit_order("BTC-USDT", "buy", "50000", "0.001", "c-1"),
        )
        .await
        .ok();
    let id = hf["orderId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    assert_eq!(hf["clientOid"], "c-1");
    let o = bot
        .get(&format!("/api/v1/hf/orders/{id}"), "symbol=BTC-USDT")
        .await
        .ok();
    assert_eq!(
        (o["active"].clone(), o["side"].clone(), o["price"].clone()),
        (json!(true), json!("buy"), json!("50000"))
    );
    assert_eq!(o["cancelExist"], false);
    let by_client = bot
        .get("/api/v1/hf/orders/client-order/c-1", "symbol=BTC-USDT")
        .await
        .ok();
    assert_eq!(by_client["id"], id.as_str());
    // HF reads need the symbol; another symbol does not find it.
    bot.get(&format!("/api/v1/hf/orders/{id}"), "")
        .await
        .refused(400, "400100");
    bot.get(&format!("/api/v1/hf/orders/{id}"), "symbol=ETH-USDT")
        .await
        .refused(404, "400100");
    // The classic endpoints do not see an HF order, and need a clientOid.
    bot.get(&format!("/api/v1/orders/{id}"), "")
        .await
        .refused(404, "400100");
    let mut no_oid = limit_order("BTC-USDT", "buy", "50000", "0.001", "");
    no_oid.as_object_mut().unwrap().remove("clientOid");
    let r = bot.post("/api/v1/orders", no_oid).await;
    r.refused(400, "400100");
    assert!(r.body.contains("clientOidIsRequired"), "{}", r.body);
    // Order errors.
    for (body, code, what) in [
        (
            limit_order("BTC-USDT", "buy", "50000.05", "0.001", "e1"),
            "400100",
            "Price increment invalid.",
        ),
        (
            limit_order("BTC-USDT", "buy", "50000", "0.0000001", "e2"),
            "400100",
            "Order size increment invalid.",
        ),
        (
            limit_order("BTC-USDT", "buy", "50000", "0.000001", "e3"),
            "400100",
            "Order size below the minimum requirement.",
        ),
        (
            limit_order("BTC-USDT", "buy", "50000", "1", "e4"),
            "200004",
            "Balance insufficient!",
        ),
        (
            limit_order("BTCUSDT", "buy", "50000", "0.001", "e5"),
            "400100",
            "Unsupported trading pair.",
        ),
        (
            limit_order("BTC-USDT", "buy", "50000", "0.001", "c-1"),
            "400100",
            "The clientOid already exists.",
        ),
        (
            json!({"symbol": "BTC-USDT", "side": "buy", "type": "market", "size": "0.001",
                "funds": "10"}),
            "400100",
            "size or funds is required, but not both",
        ),
    ] {
        let r = bot.post("/api/v1/hf/orders", body).await;
        r.refused(400, code);
        assert_eq!(r.json()["msg"], what);
    }
    bot.delete(&format!("/api/v1/hf/orders/{id}"), "symbol=BTC-USDT")
        .await
        .ok();
    let o = bot
        .get(&format!("/api/v1/hf/orders/{id}"), "symbol=BTC-USDT")
        .await
        .ok();
    assert_eq!(
        (o["active"].clone(), o["cancelExist"].clone()),
        (json!(false), json!(true))
    );
    let r = bot
        .delete(&format!("/api/v1/hf/orders/{id}"), "symbol=BTC-USDT")
        .await;
    r.refused(400, "400100");
    assert_eq!(r.json()["msg"], "order_not_exist_or_not_allow_to_cancel");
    // A classic order: listed, fetched, cancelled by its own endpoints.
    let c = bot
        .post(
            "/api/v1/orders",
            limit_order("ETH-USDT", "sell", "99999", "0.01", "c-2"),
        )
        .await
        .ok();
    let cid = c["orderId"].as_str().unwrap().to_string();
    let got = bot.get(&format!("/api/v1/orders/{cid}"), "").await.ok();
    assert_eq!(
        (got["isActive"].clone(), got.get("active")),
        (json!(true), None)
    );
    bot.get("/api/v1/order/client-order/c-2", "").await.ok();
    bot.get(&format!("/api/v1/hf/orders/{cid}"), "symbol=ETH-USDT")
        .await
        .refused(404, "400100");
    let r = bot.delete(&format!("/api/v1/orders/{cid}"), "").await.ok();
    assert_eq!(r, json!({"cancelledOrderIds": [cid]}));
    // A market buy by funds fills at once.
    let m = bot
        .post(
            "/api/v1/hf/orders",
            json!({"symbol": "TOKI-USDT", "side": "buy", "type": "market", "funds": "20"}),
        )
        .await
        .ok();
    let mo = bot
        .get(
            &format!("/api/v1/hf/orders/{}", m["orderId"].as_str().unwrap()),
            "symbol=TOKI-USDT",
        )
        .await
        .ok();
    assert_eq!(
        (mo["active"].clone(), mo["cancelExist"].clone()),
        (json!(false), json!(false))
    );
    assert!(
        dv(&mo["dealFunds"]) > d("19.9") && dv(&mo["dealFunds"]) <= d("20"),
        "{mo}"
    );
    let fills = bot.get("/api/v1/hf/fills", "symbol=TOKI-USDT").await.ok();
    let items = fills["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items
        .iter()
        .all(|f| f["orderId"] == m["orderId"] && f["id"].is_u64()));
    assert_eq!(fills["lastId"], items.last().unwrap()["id"]);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_all_touches_one_family_each_hf_classic_and_stop() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let mut hf = Vec::new();
    for (i, sym) in ["BTC-USDT", "BTC-USDT", "ETH-USDT"].iter().enumerate() {
        let price = if sym.starts_with("BTC") {
            "50000"
        } else {
            "1000"
        };
        let order = limit_order(sym, "buy", price, "0.001", &format!("h{i}"));
        hf.push(place(&bot, "/api/v1/hf/orders", order).await);
    }
    let order = limit_order("BTC-USDT", "buy", "50000", "0.001", "k1");
    let classic = place(&bot, "/api/v1/orders", order).await;
    let stop = place(&bot, "/api/v1/stop-order", stop_loss("s1")).await;
    let syms = bot.get("/api/v1/hf/orders/active/symbols", "").await.ok();
    assert_eq!(syms["symbols"], json!(["BTC-USDT", "ETH-USDT"]));
    let active = bot
        .get("/api/v1/hf/orders/active", "symbol=BTC-USDT")
        .await
        .ok();
    assert_eq!(active.as_array().unwrap().len(), 2, "HF only: {active}");
    // HF cancel-all: every symbol, HF only.
    let r = bot.delete("/api/v1/hf/orders/cancelAll", "").await.ok();
    assert_eq!(
        r,
        json!({"succeedSymbols": ["BTC-USDT", "ETH-USDT"], "failedSymbols": []})
    );
    for sym in ["BTC-USDT", "ETH-USDT"] {
        let a = bot
            .get("/api/v1/hf/orders/active", &format!("symbol={sym}"))
            .await
            .ok();
        assert_eq!(a, json!([]));
    }
    let open = bot.get("/api/v1/orders", "status=active").await.ok();
    assert_eq!(
        open["items"][0]["id"],
        classic.as_str(),
        "classic untouched"
    );
    let stops = bot.get("/api/v1/stop-order", "").await.ok();
    assert_eq!(stops["items"][0]["id"], stop.as_str(), "stop untouched");
    assert_eq!(stops["items"][0]["status"], "NEW");
    assert_eq!(stops["items"][0]["stopPrice"], "41000");
    // Classic cancel-all, then stops.
    let r = bot.delete("/api/v1/orders", "tradeType=TRADE").await.ok();
    assert_eq!(r, json!({"cancelledOrderIds": [classic]}));
    assert_eq!(bot.get("/api/v1/stop-order", "").await.ok()["totalNum"], 1);
    let r = bot
        .delete("/api/v1/stop-order/cancel", "symbol=BTC-USDT")
        .await
        .ok();
    assert_eq!(r, json!({"cancelledOrderIds": [stop]}));
    assert_eq!(
        bot.get("/api/v1/stop-order", "").await.ok()["items"],
        json!([])
    );
    bot.delete(&format!("/api/v1/stop-order/{stop}"), "")
        .await
        .refused(400, "400100");
    // Per-symbol HF cancel answers "success"; the read-only key may not cancel.
    bot.post(
        "/api/v1/hf/orders",
        limit_order("BTC-USDT", "buy", "50000", "0.001", "h9"),
    )
    .await
    .ok();
    Api::new(&s, "readonly")
        .delete("/api/v1/hf/orders/cancelAll", "")
        .await
        .refused(403, "400007");
    assert_eq!(
        bot.delete("/api/v1/hf/orders", "symbol=BTC-USDT")
            .await
            .ok(),
        json!("success")
    );
    let cancels: usize = s
        .state
        .requests()
        .iter()
        .map(|r| r.orders_cancelled.len())
        .sum();
    assert_eq!(cancels, 5, "three HF, one classic, one HF by symbol");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn history_takes_seven_days_per_query_and_pages_by_last_id_or_page_number() {
    let s = start("pump-and-dump").await;
    let ro = Api::new(&s, "readonly");
    let now = s.state.now().timestamp_millis();
    let day = 86_400_000i64;
    let symbol = s
        .state
        .bot_log()
        .first()
        .map(|r| r.market.clone())
        .expect("the bot traded");
    for path in [
        "/api/v1/hf/orders/done",
        "/api/v1/hf/fills",
        "/api/v1/fills",
    ] {
        let q = |a: i64, b: i64| format!("symbol={symbol}&startAt={a}&endAt={b}");
        let r = ro.get(path, &q(now - 7 * day - 1, now)).await;
        r.refused(400, "400100");
        assert!(r.body.contains("7 days"), "{}", r.body);
        ro.get(path, &q(now - 7 * day, now)).await.ok();
        ro.get(path, &q(now, now - 1)).await.refused(400, "400100");
        ro.get(path, &format!("symbol={symbol}&startAt={}", now - 30 * day))
            .await
            .ok();
    }
    ro.get("/api/v1/hf/orders/done", "")
        .await
        .refused(400, "400100");
    ro.get("/api/v1/hf/fills", "").await.refused(400, "400100");
    // lastId paging: every closed order of the last seven days once, newest first.
    for (path, max) in [("/api/v1/hf/orders/done", 100), ("/api/v1/hf/fills", 100)] {
        let all = ro
            .get(path, &format!("symbol={symbol}&limit={max}"))
            .await
            .ok();
        let every: Vec<Value> = all["items"].as_array().unwrap().clone();
        assert!(every.len() > 14, "{path}: {}", every.len());
        let mut paged: Vec<Value> = Vec::new();
        let mut last: Option<Value> = None;
        loop {
            let q = match &last {
                None => format!("symbol={symbol}&limit=7"),
                Some(l) => format!("symbol={symbol}&limit=7&lastId={l}"),
            };
            let page = ro.get(path, &q).await.ok();
            let items = page["items"].as_array().unwrap().clone();
            if items.is_empty() {
                break;
            }
            assert!(items.len() <= 7);
            last = Some(page["lastId"].clone());
            paged.extend(items);
        }
        let n = every.len().min(paged.len());
        assert_eq!(paged[..n], every[..n], "{path}");
        let times: Vec<i64> = paged
            .iter()
            .map(|x| x["createdAt"].as_i64().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "{path}: newest first"
        );
        ro.get(path, &format!("symbol={symbol}&limit=101"))
            .await
            .refused(400, "400100");
    }
    ro.get(
        "/api/v1/hf/orders/done",
        &format!("symbol={symbol}&lastId=12"),
    )
    .await
    .refused(400, "400100");
    s.shutdown().await.unwrap();

    // Classic lists page by number: pageSize 10 to 500.
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = bot
            .post(
                "/api/v1/orders",
                limit_order("BTC-USDT", "buy", "50000", "0.001", &format!("p{i}")),
            )
            .await
            .ok();
        ids.push(r["orderId"].as_str().unwrap().to_string());
    }
    let p1 = bot
        .get("/api/v1/orders", "status=active&pageSize=10")
        .await
        .ok();
    assert_eq!(
        (p1["totalNum"].clone(), p1["totalPage"].clone()),
        (json!(12), json!(2))
    );
    let p2 = bot
        .get("/api/v1/orders", "status=active&pageSize=10&currentPage=2")
        .await
        .ok();
    let mut seen: Vec<String> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.len(), 12);
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    for q in ["pageSize=9", "pageSize=501", "currentPage=0", "status=open"] {
        bot.get("/api/v1/orders", q).await.refused(400, "400100");
    }
    bot.delete("/api/v1/orders", "").await.ok();
    let done = bot.get("/api/v1/orders", "status=done").await.ok();
    assert_eq!(done["totalNum"], 12);
    assert_eq!(done["items"][0]["isActive"], false);
    assert_eq!(done["items"][0]["cancelExist"], true);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn balances_and_a_pending_withdrawal_cancelled_once() {
    let s = start("withdrawal").await;
    let bot = Api::new(&s, "bot");
    let acc = bot.get("/api/v1/accounts", "type=trade_hf").await.ok();
    let usdt = acc
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "USDT")
        .expect("USDT account")
        .clone();
    assert_eq!(usdt["type"], "trade_hf");
    assert_eq!(
        dv(&usdt["balance"]),
        dv(&usdt["available"]) + dv(&usdt["holds"])
    );
    assert_eq!(
        bot.get("/api/v1/accounts", "type=main").await.ok(),
        json!([])
    );
    let me = bot.get("/api/v1/user/api-key", "").await.ok();
    assert_eq!(me["permission"], "General,Spot,Withdrawal");
    let addr = "bc1qvictimcoldwallet0000000000000000000";
    bot.post(
        "/api/v3/withdrawals",
        json!({"currency": "BTC", "toAddress": "bc1qnotonthelist", "amount": 0.001,
            "withdrawType": "ADDRESS"}),
    )
    .await
    .refused(400, "400100");
    let made = bot
        .post(
            "/api/v3/withdrawals",
            json!({"currency": "BTC", "toAddress": addr, "amount": 0.001,
                "withdrawType": "ADDRESS"}),
        )
        .await
        .ok();
    let id = made["withdrawalId"].as_str().unwrap().to_string();
    let rec = bot
        .get("/api/v1/withdrawals", "status=PROCESSING")
        .await
        .ok();
    assert_eq!(rec["items"][0]["id"], id.as_str());
    assert_eq!(rec["totalNum"], 1);
    // The read-only key may not cancel it.
    Api::new(&s, "readonly")
        .delete(&format!("/api/v1/withdrawals/{id}"), "")
        .await
        .refused(403, "400007");
    let r = bot
        .delete(&format!("/api/v1/withdrawals/{id}"), "")
        .await
        .ok();
    assert_eq!(r, Value::Null);
    bot.delete(&format!("/api/v1/withdrawals/{id}"), "")
        .await
        .refused(400, "400100");
    bot.delete("/api/v1/withdrawals/123", "")
        .await
        .refused(400, "400100");
    let all = bot.get("/api/v1/withdrawals", "currency=BTC").await.ok();
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0], "FAILURE", "the cancelled one, newest first");
    assert!(statuses.contains(&"SUCCESS"), "{statuses:?}");
    let dep = bot.get("/api/v1/deposits", "pageSize=10").await.ok();
    assert!(dep["items"].as_array().unwrap().len() <= 10);
    bot.get("/api/v1/deposits", "pageSize=5")
        .await
        .refused(400, "400100");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_master_key_deletes_its_sub_accounts_key_which_is_then_refused() {
    let s = start_yaml(FENCED).await;
    let master = Api::new(&s, "master");
    let sub = Api::new(&s, "sub");
    let me = sub.get("/api/v1/user/api-key", "").await.ok();
    assert_eq!(
        (me["isMaster"].clone(), me["subName"].clone()),
        (json!(false), json!("fund"))
    );
    let del = |api: &Api, key: &str, sub_name: &str, pass: &str| {
        let (api, q) = (
            api.clone(),
            format!("apiKey={key}&subName={sub_name}&passphrase={pass}"),
        );
        async move { api.delete("/api/v1/sub/api-key", &q).await }
    };
    // A wrong passphrase, another account's key, an account that is no sub-account of the
    // caller's, a sub-account key deleting itself: all refused, the key lives on.
    del(&master, &sub.key, "fund", "wrong")
        .await
        .refused(400, "400100");
    del(&master, &master.key, "fund", &master.passphrase)
        .await
        .refused(400, "400100");
    let stranger = Api::new(&s, "stranger");
    del(&master, &stranger.key, "stranger", &stranger.passphrase)
        .await
        .refused(400, "400100");
    del(&sub, &sub.key, "fund", &sub.passphrase)
        .await
        .refused(400, "400100");
    sub.get("/api/v1/accounts", "").await.ok();
    let r = del(&master, &sub.key, "fund", &sub.passphrase).await.ok();
    assert_eq!(r, json!({"subName": "fund", "apiKey": sub.key}));
    sub.get("/api/v1/accounts", "").await.refused(401, "400003");
    del(&master, &sub.key, "fund", &sub.passphrase)
        .await
        .refused(400, "400100");
    assert!(s.state.world().keys[&sub.key].is_revoked());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn drill_api_and_injected_faults_in_kucoins_terms() {
    let s = start("pump-and-dump").await;
    let truth = public(&s, "/_mock/ground-truth").await;
    assert_eq!(truth.status, 200);
    assert_eq!(truth.json()["loss_currency"], "USDT");
    let state = public(&s, "/_mock/state").await.json();
    assert_eq!(state["exchange"], "kucoin");
    let log = public(&s, "/_mock/bot-log").await.body;
    assert!(log.lines().nth(1).unwrap().contains("-USDT,"), "{log}");
    // The attacker's orders are found by the id the façade shows for them.
    let t = s.state.ground_truth();
    let (id, symbol) = {
        let w = s.state.world();
        let uuid = t.attacker_order_uuids.last().expect("the attack traded");
        let o = w.order(uuid).unwrap();
        (Kucoin.public_order_id(&w, uuid), o.market.symbol.clone())
    };
    let ro = Api::new(&s, "readonly");
    let o = ro
        .get(
            &format!("/api/v1/hf/orders/{id}"),
            &format!("symbol={symbol}"),
        )
        .await
        .ok();
    assert_eq!(o["id"], id.as_str());
    // An injected server error: 500 with 500000, and nothing placed.
    let set = |rules: Value| {
        let url = format!("{}/_mock/faults", s.url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&rules)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    set(json!([{"path": "/api/v1/hf/orders", "method": "POST", "error_rate": 1.0, "count": 1}]))
        .await;
    let bot = Api::new(&s, "bot");
    let before = s.state.world().orders.len();
    let order = limit_order("BTC-USDT", "buy", "50000", "0.001", "f1");
    bot.post("/api/v1/hf/orders", order.clone())
        .await
        .refused(500, "500000");
    assert_eq!(s.state.world().orders.len(), before);
    bot.post("/api/v1/hf/orders", order).await.ok();
    // A rate-limit storm: 429000 for everyone while it lasts.
    set(json!([{"path": "*", "storm_secs": 60, "count": 1}])).await;
    let r = ro.get("/api/v1/accounts", "").await;
    r.refused(429, "429000");
    assert_eq!(r.header("gw-ratelimit-limit").as_deref(), Some("2000"));
    s.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_live_attacker_trades_on_kucoin_until_the_key_is_revoked() {
    let sc = mock::scenario::load("pump-and-dump", None).unwrap();
    let s = serve(
        sc,
        MockOptions {
            live_attacker: true,
            ..MockOptions::default()
        },
    )
    .await;
    let before = s.state.ground_truth().attacker_order_uuids.len();
    // Paused time: the attacker's waits pass at once.
    for _ in 0..600 {
        if s.state.ground_truth().attacker_order_uuids.len() >= before + 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let truth = s.state.ground_truth();
    assert!(
        truth.attacker_order_uuids.len() >= before + 2,
        "the live attacker placed nothing"
    );
    {
        let w = s.state.world();
        let live = w.order(truth.attacker_order_uuids.last().unwrap()).unwrap();
        assert!(
            live.market.symbol.ends_with("-USDT"),
            "{}",
            live.market.symbol
        );
    }
    // The user deletes the key in the web UI (the drill API): the attacker stops.
    assert!(s.state.revoke_key(&truth.leaked_access_key));
    let after = s.state.ground_truth();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        s.state.ground_truth().attacker_order_uuids.len() <= after.attacker_order_uuids.len(),
        "nothing after the revocation"
    );
    s.shutdown().await.unwrap();
}

/// The adapter against the mock: a stop order is open too (integrity review). It is listed
/// with the open orders (`GET /api/v1/stop-order`), cancelled with them, and the final check
/// that nothing is left open reads the stop orders as well.
#[tokio::test]
async fn the_adapter_lists_cancels_and_checks_stop_orders() {
    use respond::exchange::kucoin::{KucoinClient, KucoinConfig};
    use respond::exchange::{Exchange, OrderState};
    use respond::secret::Secret;
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let order = limit_order("BTC-USDT", "buy", "50000", "0.001", "h1");
    let hf = place(&bot, "/api/v1/hf/orders", order).await;
    let stop = place(&bot, "/api/v1/stop-order", stop_loss("s1")).await;
    let k = s.state.key("bot").unwrap().clone();
    let mut cfg = KucoinConfig::new(k.access_key.clone(), Secret::new(k.secret_key.clone()));
    cfg.passphrase = k.passphrase.clone().map(Secret::new);
    cfg.base_url = Some(s.url.clone());
    let c = KucoinClient::new(cfg).unwrap();
    let open = c.open_orders().await.unwrap();
    let mut ids: Vec<&str> = open.iter().map(|o| o.id.as_str()).collect();
    ids.sort();
    let mut want = vec![hf.as_str(), stop.as_str()];
    want.sort();
    assert_eq!(ids, want, "the stop order is open too");
    let listed = open.iter().find(|o| o.id == stop).unwrap();
    assert_eq!(listed.state, OrderState::Open);
    assert_eq!(listed.market.symbol.as_str(), "BTC-USDT");
    assert_eq!(listed.client_id.as_deref(), Some("s1"));
    let report = c.cancel_all_open_orders().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let stop_after = report
        .cancelled
        .iter()
        .find(|o| o.id == stop)
        .expect("the stop order among the cancelled");
    assert_eq!(stop_after.state, OrderState::Cancelled);
    assert!(c.open_orders().await.unwrap().is_empty());
    assert_eq!(bot.get("/api/v1/stop-order", "").await.ok()["totalNum"], 0);
    // A stop order left open (its cancel not served) is seen by the final check.
    let again = place(&bot, "/api/v1/stop-order", stop_loss("s2")).await;
    let open = c.open_orders().await.unwrap();
    assert_eq!(
        open.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [again]
    );
}

/// After a `429000` the adapter waits the `gw-ratelimit-reset` KuCoin answered (ms until the
/// pool frees weight) before it asks again: not less (it would meet the same refusal), and not
/// a whole window more when the pool's window started earlier. Another key of the account
/// spent the Management pool 20 s ago; on a paused clock the adapter's read is refused once,
/// sent again when the pool resets and answered.
#[tokio::test(start_paused = true)]
async fn a_429000_waits_the_reset_kucoin_answered() {
    use respond::exchange::kucoin::{KucoinClient, KucoinConfig};
    use respond::exchange::Exchange;
    use respond::secret::Secret;
    // The adapter's timestamps follow the paused clock the mock's pools count with.
    respond::time::follow_tokio_clock();
    let s = start("blank").await;
    let ro = Api::new(&s, "readonly");
    let mut reset = None;
    for _ in 0..200 {
        let r = ro.get("/api/v1/user/api-key", "").await;
        if r.status == 429 {
            reset = r.header("gw-ratelimit-reset");
            break;
        }
    }
    let reset: i64 = reset.expect("the pool runs out").parse().unwrap();
    assert!(reset > 25_000, "the pool's window just started: {reset} ms");
    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
    let before = s.state.requests().len();
    let k = s.state.key("bot").unwrap().clone();
    let mut cfg = KucoinConfig::new(k.access_key.clone(), Secret::new(k.secret_key.clone()));
    cfg.passphrase = k.passphrase.clone().map(Secret::new);
    cfg.base_url = Some(s.url.clone());
    let c = KucoinClient::new(cfg).unwrap();
    c.balances().await.expect("answered once the pool reset");
    let log = s.state.requests()[before..].to_vec();
    let at = |r: &respond::mock::venue::state::RequestRecord| {
        chrono::DateTime::parse_from_rfc3339(&r.at).unwrap()
    };
    let calls: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/api/v1/accounts")
        .collect();
    assert_eq!(calls.len(), 2, "refused once, then answered: {log:?}");
    assert_eq!(calls[0].error.as_deref(), Some("429000"));
    assert_eq!(calls[1].status, 200);
    let waited = (at(calls[1]) - at(calls[0])).num_milliseconds();
    // The pool resets `reset` ms after the refusal the readonly key met, 20 s before ours.
    let left = reset - 20_000;
    assert!(
        waited >= left - 1_000 && waited < left + 5_000,
        "waited {waited} ms for a reset {left} ms away"
    );
    s.shutdown().await.unwrap();
}

/// History pages read again are the same bytes (the second read copies the text kept for
/// closed orders), and the classic lists, found through the façade's few classic orders
/// instead of every order of the account, count and page them as before.
#[tokio::test]
async fn history_pages_read_again_are_the_same_bytes_and_classic_lists_page_their_own() {
    let s = start("pump-and-dump").await;
    let bot = Api::new(&s, "bot");
    // Classic orders: three resting (two then cancelled) and a market buy that fills.
    let mut ids = Vec::new();
    for n in 0..3 {
        let price = format!("{}", 50_000 + n);
        let order = limit_order("BTC-USDT", "buy", &price, "0.001", &format!("cl-{n}"));
        ids.push(place(&bot, "/api/v1/orders", order).await);
    }
    for id in &ids[..2] {
        bot.delete(&format!("/api/v1/orders/{id}"), "").await.ok();
    }
    let buy = json!({"clientOid": "cl-m", "symbol": "BTC-USDT", "side": "buy",
        "type": "market", "funds": "100"});
    let market = place(&bot, "/api/v1/orders", buy).await;
    let symbol = s.state.bot_log().first().map(|r| r.market.clone()).unwrap();
    let reads = [
        (
            "/api/v1/hf/orders/done",
            format!("symbol={symbol}&limit=100"),
        ),
        ("/api/v1/hf/fills", format!("symbol={symbol}&limit=100")),
        ("/api/v1/orders", "status=done".to_string()),
        ("/api/v1/orders", "pageSize=10&currentPage=1".to_string()),
        ("/api/v1/orders", "status=active".to_string()),
        ("/api/v1/fills", String::new()),
    ];
    for (path, q) in &reads {
        let first = bot.get(path, q).await;
        let again = bot.get(path, q).await;
        assert_eq!(first.status, 200, "{path}?{q}: {}", first.body);
        assert_eq!(first.body, again.body, "{path}?{q}");
    }
    let done = bot.get("/api/v1/orders", "status=done").await.ok();
    assert_eq!(done["totalNum"], 3, "{done}");
    let listed: Vec<&str> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [market.as_str(), &ids[1], &ids[0]], "newest first");
    let all = bot.get("/api/v1/orders", "").await.ok();
    assert_eq!(
        (all["totalNum"].clone(), all["totalPage"].clone()),
        (json!(4), json!(1))
    );
    let listed: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [market.as_str(), &ids[2], &ids[1], &ids[0]],
        "open and closed together, newest first"
    );
    let page2 = bot
        .get("/api/v1/orders", "pageSize=10&currentPage=2")
        .await
        .ok();
    assert_eq!(page2["items"], json!([]));
    assert_eq!(page2["totalNum"], 4);
    let fills = bot.get("/api/v1/fills", "").await.ok();
    let items = fills["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{fills}");
    assert!(
        items.iter().all(|f| f["orderId"] == market.as_str()),
        "{fills}"
    );
    assert_eq!(fills["totalNum"], items.len());
    // Cancelling the open one moves it to the closed list at once.
    bot.delete(&format!("/api/v1/orders/{}", ids[2]), "")
        .await
        .ok();
    let done = bot.get("/api/v1/orders", "status=done").await.ok();
    assert_eq!(done["totalNum"], 4);
    assert_eq!(done["items"][0]["isActive"], false);
    s.shutdown().await.unwrap();
}
