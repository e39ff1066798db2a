//! End-to-end tests of the Binance mock over real loopback HTTP, signed by a small test
//! signer written here (hmac + sha2 for HMAC keys, ring for Ed25519), independent from the
//! crate's client and from the mock's own verifier.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use respond::mock::binance::Binance;
use respond::mock::{self, MockOptions, MockServer, Venue};
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::Sha256;

use crate::support::http::{public, Resp};
use crate::support::mock::{now, opts};

async fn serve(sc: mock::Scenario, o: MockOptions) -> MockServer {
    let ex = Venue::new(&Binance, sc, o).expect("the scenario fits the binance mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Binance), ex)
        .await
        .expect("binds")
}

pub(crate) async fn start(scenario: &str) -> MockServer {
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

/// Binance's error envelope on a raw answer.
pub(crate) trait Answer {
    fn code(&self) -> i64;
    fn ok(&self) -> Value;
    fn refused(&self, status: u16, code: i64);
}

impl Answer for Resp {
    fn code(&self) -> i64 {
        self.json()["code"].as_i64().unwrap_or(0)
    }
    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()
    }
    fn refused(&self, status: u16, code: i64) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.body);
    }
}

enum Signer {
    Hmac(String),
    Ed25519(ring::signature::Ed25519KeyPair),
}

/// A Binance caller: HMAC hex or Ed25519 base64 over `query + body`.
pub(crate) struct Api {
    base: String,
    http: reqwest::Client,
    key: String,
    signer: Signer,
    /// The mock's clock (the scenario fixes "now").
    clock: Arc<Venue>,
}

/// The seed of an Ed25519 PKCS#8 private key PEM: the last 32 bytes of its DER.
fn seed_of(pem: &str) -> [u8; 32] {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    der[der.len() - 32..].try_into().unwrap()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Api {
    pub(crate) fn new(s: &MockServer, label: &str) -> Api {
        let k = s.state.key(label).expect("key exists");
        let signer = match k.public_key {
            Some(_) => Signer::Ed25519(
                ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed_of(&k.secret_key))
                    .unwrap(),
            ),
            None => Signer::Hmac(k.secret_key.clone()),
        };
        Api {
            base: s.url.clone(),
            http: reqwest::Client::new(),
            key: k.access_key.clone(),
            signer,
            clock: s.state.clone(),
        }
    }

    fn with_key(mut self, key: &str) -> Api {
        self.key = key.to_string();
        self
    }

    fn sign(&self, payload: &str) -> String {
        match &self.signer {
            Signer::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(payload.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Signer::Ed25519(pair) => {
                enc(&base64::engine::general_purpose::STANDARD
                    .encode(pair.sign(payload.as_bytes())))
            }
        }
    }

    /// `k=v&…&timestamp=…&recvWindow=5000`, values form-encoded.
    fn query(&self, params: &[(&str, &str)]) -> String {
        let mut q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect();
        q.push(format!("timestamp={}", self.clock.now().timestamp_millis()));
        q.push("recvWindow=5000".into());
        q.join("&")
    }

    async fn send(&self, method: &str, path: &str, query: &str, body: &str) -> Resp {
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.http.request(m, url).header("X-MBX-APIKEY", &self.key);
        if !body.is_empty() {
            rb = rb
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_string());
        }
        Resp::read(rb.send().await.unwrap()).await
    }

    /// A signed request: GET and DELETE in the query, POST in the body (as ccxt sends them).
    pub(crate) async fn call(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Resp {
        let q = self.query(params);
        let signed = format!("{q}&signature={}", self.sign(&q));
        if method == "POST" {
            self.send(method, path, "", &signed).await
        } else {
            self.send(method, path, &signed, "").await
        }
    }

    pub(crate) async fn get(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.call("GET", path, params).await
    }

    /// A `LIMIT` `GTC` buy.
    async fn limit_buy(&self, symbol: &str, quantity: &str, price: &str) -> Resp {
        let p = [
            ("symbol", symbol),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", quantity),
            ("price", price),
        ];
        self.call("POST", "/api/v3/order", &p).await
    }
}

fn filter<'a>(symbol: &'a Value, kind: &str) -> &'a Value {
    symbol["filters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filterType"] == kind)
        .unwrap()
}

#[tokio::test]
async fn every_builtin_scenario_runs_in_usdt_with_thin_coins() {
    for name in mock::scenario::builtin_names() {
        let sc = mock::scenario::load(name, None).unwrap();
        let ex = Venue::new(&Binance, sc, opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
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
        // Every order the generator wrote clears the 5 USDT minimum.
        let w = ex.world();
        for o in w.orders.iter().filter(|o| !o.trades.is_empty()) {
            assert!(o.executed_funds >= Decimal::from(5), "{name}: {o:?}");
        }
    }
}

#[tokio::test]
async fn blank_serves_usdt_markets_filters_and_the_keys() {
    let s = start("blank").await;
    let info = public(&s, "/api/v3/exchangeInfo").await;
    assert_eq!(info.header("x-mbx-used-weight-1m").as_deref(), Some("20"));
    let info = info.ok();
    let symbols = info["symbols"].as_array().unwrap();
    let names: Vec<&str> = symbols
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["BTCUSDT", "ETHUSDT", "XRPUSDT", "MOCAUSDT", "TOKIUSDT", "SEOLUSDT"]
    );
    let btc = &symbols[0];
    assert_eq!(btc["baseAsset"], "BTC");
    assert_eq!(btc["quoteAsset"], "USDT");
    assert_eq!(filter(btc, "PRICE_FILTER")["tickSize"], "0.01000000");
    assert_eq!(filter(btc, "LOT_SIZE")["stepSize"], "0.00001000");
    assert_eq!(filter(btc, "NOTIONAL")["minNotional"], "5.00000000");
    let toki = &symbols[4];
    assert_eq!(filter(toki, "PRICE_FILTER")["tickSize"], "0.00000010");
    let one = public(&s, "/api/v3/exchangeInfo?symbol=TOKIUSDT")
        .await
        .ok();
    assert_eq!(one["symbols"].as_array().unwrap().len(), 1);
    public(&s, "/api/v3/exchangeInfo?symbol=TOKIKRW")
        .await
        .refused(400, -1121);
    let t = public(&s, "/api/v3/time").await.ok();
    let server = t["serverTime"].as_i64().unwrap();
    assert!((server - s.state.now().timestamp_millis()).abs() < 5_000);
    // The keys the brief names, with Binance's permission names.
    let keys: Vec<&str> = s.state.keys().iter().map(|k| k.label.as_str()).collect();
    assert_eq!(keys, ["bot", "readonly", "attacker"]);
    assert_eq!(s.state.key("bot").unwrap().access_key.len(), 64);
    assert_eq!(s.state.key("readonly").unwrap().scopes, ["enableReading"]);
    // The won balance became dollars.
    let acct = Api::new(&s, "bot").get("/api/v3/account", &[]).await.ok();
    let usdt = acct["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "USDT")
        .unwrap();
    assert_eq!(usdt["free"], "5714.29000000");
    assert_eq!(acct["accountType"], "SPOT");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn signatures_keys_and_clocks_are_checked_in_binance_order() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    bot.get("/api/v3/account", &[]).await.ok();
    // Wrong signature: -1022 (400).
    let q = bot.query(&[]);
    let bad = format!("{q}&signature={}", "0".repeat(64));
    bot.send("GET", "/api/v3/account", &bad, "")
        .await
        .refused(400, -1022);
    // A signature over other bytes than sent (a parameter added after signing).
    let signed = format!("{q}&signature={}&omitZeroBalances=true", bot.sign(&q));
    bot.send("GET", "/api/v3/account", &signed, "")
        .await
        .refused(400, -1022);
    // Missing signature, missing timestamp.
    bot.send("GET", "/api/v3/account", &q, "")
        .await
        .refused(400, -1102);
    let no_ts = "recvWindow=5000";
    let r = bot
        .send(
            "GET",
            "/api/v3/account",
            &format!("{no_ts}&signature={}", bot.sign(no_ts)),
            "",
        )
        .await;
    r.refused(400, -1102);
    assert!(r.json()["msg"].as_str().unwrap().contains("'timestamp'"));
    // Clocks: older than recvWindow, a second ahead, recvWindow over a minute.
    let at = |ms: i64, win: &str| {
        let q = format!("timestamp={ms}&recvWindow={win}");
        let sig = bot.sign(&q);
        format!("{q}&signature={sig}")
    };
    let t = s.state.now().timestamp_millis();
    bot.send("GET", "/api/v3/account", &at(t - 6_000, "5000"), "")
        .await
        .refused(400, -1021);
    bot.send("GET", "/api/v3/account", &at(t + 3_000, "5000"), "")
        .await
        .refused(400, -1021);
    bot.send("GET", "/api/v3/account", &at(t - 6_000, "10000"), "")
        .await
        .ok();
    bot.send("GET", "/api/v3/account", &at(t, "60001"), "")
        .await
        .refused(400, -1131);
    // Unknown key: -2015 (401); a malformed one: -2014; none at all: -2014.
    let stranger = Api::new(&s, "bot").with_key(&"A".repeat(64));
    stranger
        .get("/api/v3/account", &[])
        .await
        .refused(401, -2015);
    let malformed = Api::new(&s, "bot").with_key("not-a-key!");
    malformed
        .get("/api/v3/account", &[])
        .await
        .refused(401, -2014);
    let r = reqwest::get(format!("{}/api/v3/account?{}", s.url, bot.query(&[])))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The attacker's own key signs with its own secret: the victim's signature is refused.
    let mut wrong = Api::new(&s, "attacker");
    wrong.key = bot.key.clone();
    wrong.get("/api/v3/account", &[]).await.refused(400, -1022);
    // Parameters split between the query and the body, signature at the end of the body.
    let q = bot.query(&[("symbol", "BTCUSDT")]);
    let b = "side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000";
    let sig = bot.sign(&format!("{q}{b}"));
    let r = bot
        .send("POST", "/api/v3/order", &q, &format!("{b}&signature={sig}"))
        .await
        .ok();
    assert_eq!(r["status"], "NEW");
    // A name in both: the query wins (and the signature still covers both as sent).
    let q = bot.query(&[
        ("symbol", "ETHUSDT"),
        ("orderId", &r["orderId"].to_string()),
    ]);
    let b = "symbol=BTCUSDT";
    let sig = bot.sign(&format!("{q}{b}"));
    bot.send(
        "DELETE",
        "/api/v3/order",
        &q,
        &format!("{b}&signature={sig}"),
    )
    .await
    .refused(400, -2011);
    // Duplicated parameters.
    let q = format!("{}&symbol=BTCUSDT&symbol=ETHUSDT", bot.query(&[]));
    let signed = format!("{q}&signature={}", bot.sign(&q));
    bot.send("GET", "/api/v3/openOrders", &signed, "")
        .await
        .refused(400, -1101);
    // The request log names the key and Binance's code.
    let log = s.state.requests();
    assert!(log.iter().any(|r| r.error.as_deref() == Some("-1022")
        && r.access_key.as_deref() == Some(bot.key.as_str())));
    s.shutdown().await.unwrap();
}

const ED25519_SCENARIO: &str = r#"name: ed25519
seed: 2
now: 2026-11-20T18:30:00Z
quote: USDT
markets:
  - { base: BTC, name: Bitcoin, price: "96000" }
  - { base: TOKI, name: Tokicoin, price: "0.0264", depth: { levels: 10, step_pct: "2", level_quote: "100" } }
accounts:
  - { name: victim, balances: { USDT: "10000", BTC: "0.5" } }
  - { name: fund, email: fund@example.com, master: victim, balances: { USDT: "100" } }
keys:
  - { account: victim, label: bot, key_type: ed25519, permissions: [read, trade] }
  - { account: victim, label: master, permissions: [read, trade] }
  - { account: victim, label: fenced, permissions: [read, trade], allowed_ips: ["10.1.2.3"] }
  - { account: fund, label: sub, permissions: [read, trade] }
  - { account: fund, label: other, permissions: [read] }
"#;

#[tokio::test]
async fn ed25519_keys_sign_with_the_pem_the_banner_gives() {
    let s = start_yaml(ED25519_SCENARIO).await;
    let k = s.state.key("bot").unwrap();
    assert!(k.secret_key.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(k
        .public_key
        .as_deref()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let banner = serde_json::to_value(s.state.keys()).unwrap();
    assert_eq!(banner[0]["key_type"], "ed25519");
    assert!(
        banner[1].get("key_type").is_none(),
        "hmac keys look as before"
    );
    let bot = Api::new(&s, "bot");
    bot.get("/api/v3/account", &[]).await.ok();
    let placed = bot.limit_buy("BTCUSDT", "0.001", "60000").await.ok();
    assert_eq!(placed["status"], "NEW");
    // The base64 signature sent without percent-encoding: `+` becomes a space, refused.
    let mut tries = 0;
    loop {
        let q = bot.query(&[("n", &tries.to_string())]);
        let raw = bot
            .sign(&q)
            .replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=");
        if raw.contains('+') {
            bot.send(
                "GET",
                "/api/v3/account",
                &format!("{q}&signature={raw}"),
                "",
            )
            .await
            .refused(400, -1022);
            break;
        }
        tries += 1;
        assert!(tries < 50, "no signature with a + in 50 tries");
    }
    // An HMAC signature for an Ed25519 key is not valid.
    let mut hmac = Api::new(&s, "master");
    hmac.key = bot.key.clone();
    hmac.get("/api/v3/account", &[]).await.refused(400, -1022);
    s.shutdown().await.unwrap();
}

/// A master deletes its sub-account's API key: `DELETE /sapi/v1/sub-account/subAccountApi`.
async fn delete_sub_key(api: &Api, email: &str, key: &str) -> Resp {
    api.call(
        "DELETE",
        "/sapi/v1/sub-account/subAccountApi",
        &[("email", email), ("subAccountApiKey", key)],
    )
    .await
}

#[tokio::test]
async fn permissions_ips_revocation_and_sub_account_keys() {
    let s = start_yaml(ED25519_SCENARIO).await;
    // A key fenced to another IP is refused like an unknown one.
    Api::new(&s, "fenced")
        .get("/api/v3/account", &[])
        .await
        .refused(401, -2015);
    // A read-only key reads and cannot trade.
    let other = Api::new(&s, "other");
    other
        .get("/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await
        .ok();
    other
        .call("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await
        .refused(401, -2015);
    let r = Api::new(&s, "master")
        .get("/sapi/v1/account/apiRestrictions", &[])
        .await;
    assert_eq!(r.header("x-sapi-used-ip-weight-1m").as_deref(), Some("1"));
    let r = r.ok();
    assert_eq!(r["enableReading"], true);
    assert_eq!(r["enableSpotAndMarginTrading"], true);
    assert_eq!(r["enableWithdrawals"], false);
    assert_eq!(r["ipRestrict"], false);
    assert!(r["tradingAuthorityExpirationTime"].as_i64().is_some());
    // The master deletes its sub-account's key by email; the key is dead at once.
    let sub = Api::new(&s, "sub");
    sub.get("/api/v3/account", &[]).await.ok();
    let master = Api::new(&s, "master");
    let sub_key = sub.key.clone();
    // Not its sub-account, or a key of another account: -1002.
    delete_sub_key(&master, "victim@mock.invalid", &sub_key)
        .await
        .refused(401, -1002);
    delete_sub_key(&master, "fund@example.com", &master.key)
        .await
        .refused(401, -1002);
    delete_sub_key(&sub, "fund@example.com", &sub_key)
        .await
        .refused(401, -1002);
    let r = delete_sub_key(&master, "fund@example.com", &sub_key).await;
    // The two refused calls of the master's account cost their weight too.
    assert_eq!(
        r.header("x-sapi-used-uid-weight-1m").as_deref(),
        Some("9000")
    );
    assert_eq!(r.ok(), serde_json::json!({}));
    sub.get("/api/v3/account", &[]).await.refused(401, -2015);
    // The user deletes a key in the web console (the drill API): refused from then on.
    let revoke = reqwest::Client::new()
        .post(format!("{}/_mock/keys/{}/revoke", s.url, master.key))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    master.get("/api/v3/account", &[]).await.refused(401, -2015);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn new_orders_meet_the_filters_and_market_orders_fill() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let order = |extra: &[(&'static str, &'static str)]| {
        let mut p: Vec<(&str, &str)> = vec![("symbol", "BTCUSDT"), ("side", "BUY")];
        p.extend_from_slice(extra);
        p
    };
    let limit = |q: &'static str, p: &'static str| {
        order(&[
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", q),
            ("price", p),
        ])
    };
    let post = |p: Vec<(&'static str, &'static str)>| {
        let bot = &bot;
        async move { bot.call("POST", "/api/v3/order", &p).await }
    };
    let expect = |r: Resp, code: i64, msg: &str| {
        r.refused(400, code);
        assert!(
            r.json()["msg"].as_str().unwrap().contains(msg),
            "{}",
            r.body
        );
    };
    expect(
        post(limit("0.001", "50000.005")).await,
        -1013,
        "PRICE_FILTER",
    );
    expect(post(limit("0.000105", "50000")).await, -1013, "LOT_SIZE");
    expect(post(limit("0.00005", "50000")).await, -1013, "NOTIONAL");
    expect(post(limit("0.001", "5e4")).await, -1100, "'price'");
    expect(
        post(order(&[
            ("type", "LIMIT"),
            ("quantity", "0.001"),
            ("price", "50000"),
        ]))
        .await,
        -1102,
        "'timeInForce'",
    );
    expect(
        post(order(&[("type", "STOP_LOSS"), ("quantity", "0.001")])).await,
        -1116,
        "orderType",
    );
    expect(
        post(order(&[("type", "MARKET")])).await,
        -1102,
        "quoteOrderQty",
    );
    expect(
        post(limit("10", "90000")).await,
        -2010,
        "insufficient balance",
    );
    let mut sell = limit("0.001", "50000");
    sell[1] = ("side", "SELL");
    sell.push(("newClientOrderId", "my-order-1"));
    // A sell below the market takes at once: a resting buy does not.
    let r = post(limit("0.001", "50000")).await;
    assert_eq!(r.header("x-mbx-order-count-10s").as_deref(), Some("1"));
    assert_eq!(r.header("x-mbx-order-count-1d").as_deref(), Some("1"));
    let resting = r.ok();
    assert_eq!(resting["status"], "NEW");
    assert_eq!(resting["fills"], serde_json::json!([]));
    let taken = post(sell).await.ok();
    assert_eq!(taken["status"], "FILLED");
    assert_eq!(taken["clientOrderId"], "my-order-1");
    let fill = &taken["fills"][0];
    assert_eq!(fill["commissionAsset"], "USDT");
    assert!(fill["tradeId"].as_u64().unwrap() > 0);
    // Post-only orders that would take are refused; IOC takes what is there.
    let mut maker = order(&[
        ("type", "LIMIT_MAKER"),
        ("quantity", "0.001"),
        ("price", "200000"),
    ]);
    expect(post(maker.clone()).await, -2010, "immediately match");
    maker[4] = ("price", "60000");
    let rests = post(maker).await.ok();
    assert_eq!(rests["type"], "LIMIT_MAKER");
    assert_eq!(
        rests["status"], "NEW",
        "a post-only order that would not take rests"
    );
    // A market buy by quote amount spends it; a market buy by quantity gets exactly that.
    let by_quote = post(order(&[("type", "MARKET"), ("quoteOrderQty", "100")]))
        .await
        .ok();
    assert_eq!(by_quote["status"], "FILLED");
    assert_eq!(by_quote["type"], "MARKET");
    assert_eq!(by_quote["origQuoteOrderQty"], "100.00000000");
    let spent = dv(&by_quote["cummulativeQuoteQty"]);
    assert!(spent <= d("100") && spent > d("99"), "{spent}");
    let by_qty = post(order(&[("type", "MARKET"), ("quantity", "0.0025")]))
        .await
        .ok();
    assert_eq!(by_qty["executedQty"], "0.00250000");
    assert_eq!(by_qty["origQty"], "0.00250000");
    let mut sell_quote = order(&[("type", "MARKET"), ("quoteOrderQty", "100")]);
    sell_quote[1] = ("side", "SELL");
    expect(post(sell_quote).await, -1014, "not supported");
    // The test endpoint checks and places nothing.
    let before = s.state.world().orders.len();
    let t = bot
        .call("POST", "/api/v3/order/test", &limit("0.001", "50000"))
        .await
        .ok();
    assert_eq!(t, serde_json::json!({}));
    assert_eq!(s.state.world().orders.len(), before);
    // ACK answers carry only the ids.
    let mut ack = limit("0.001", "50000");
    ack.push(("newOrderRespType", "ACK"));
    let a = post(ack).await.ok();
    assert!(
        a.get("status").is_none() && a["orderId"].as_u64().is_some(),
        "{a}"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn orders_are_queried_cancelled_and_cancelled_per_symbol() {
    let s = start("pump-and-dump").await;
    let bot = Api::new(&s, "bot");
    // The bot's and the attacker's open orders, all symbols (weight 80).
    let r = bot.get("/api/v3/openOrders", &[]).await;
    assert_eq!(r.header("x-mbx-used-weight-1m").as_deref(), Some("80"));
    let open = r.ok();
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 6, "{open:?}");
    let symbols: std::collections::BTreeSet<&str> =
        open.iter().map(|o| o["symbol"].as_str().unwrap()).collect();
    assert!(
        symbols.contains("MOCAUSDT"),
        "the attacker's bids: {symbols:?}"
    );
    // One order, by id and by client id (a bot order has its identifier; the attacker's
    // API orders, sent without one, show the 22 letters and digits Binance assigns).
    let first = open.iter().find(|o| o["symbol"] != "MOCAUSDT").unwrap();
    let id = first["orderId"].to_string();
    let sym = first["symbol"].as_str().unwrap();
    let by_id = bot
        .get("/api/v3/order", &[("symbol", sym), ("orderId", &id)])
        .await
        .ok();
    assert_eq!(&by_id, first);
    let cid = first["clientOrderId"].as_str().unwrap();
    let by_cid = bot
        .get(
            "/api/v3/order",
            &[("symbol", sym), ("origClientOrderId", cid)],
        )
        .await
        .ok();
    assert_eq!(by_cid["orderId"], first["orderId"]);
    let moca: Vec<&Value> = open.iter().filter(|o| o["symbol"] == "MOCAUSDT").collect();
    let auto_id = moca[0]["clientOrderId"].as_str().unwrap();
    assert!(
        auto_id.len() == 22 && auto_id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{auto_id}"
    );
    let by_auto = bot
        .get(
            "/api/v3/order",
            &[("symbol", "MOCAUSDT"), ("origClientOrderId", auto_id)],
        )
        .await
        .ok();
    assert_eq!(by_auto["orderId"], moca[0]["orderId"]);
    bot.get("/api/v3/order", &[("symbol", "TOKIUSDT"), ("orderId", &id)])
        .await
        .refused(400, -2013);
    bot.get("/api/v3/order", &[("symbol", sym)])
        .await
        .refused(400, -1102);
    // Cancel one; cancel it again: -2011.
    let c = bot
        .call(
            "DELETE",
            "/api/v3/order",
            &[("symbol", sym), ("orderId", &id)],
        )
        .await
        .ok();
    assert_eq!(c["status"], "CANCELED");
    assert_eq!(c["origClientOrderId"], first["clientOrderId"]);
    bot.call(
        "DELETE",
        "/api/v3/order",
        &[("symbol", sym), ("orderId", &id)],
    )
    .await
    .refused(400, -2011);
    // Cancel all of a symbol, then nothing is left there: -2011.
    let all = bot
        .call("DELETE", "/api/v3/openOrders", &[("symbol", "MOCAUSDT")])
        .await
        .ok();
    assert_eq!(all.as_array().unwrap().len(), moca.len());
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["status"] == "CANCELED"));
    bot.call("DELETE", "/api/v3/openOrders", &[("symbol", "MOCAUSDT")])
        .await
        .refused(400, -2011);
    bot.call("DELETE", "/api/v3/openOrders", &[])
        .await
        .refused(400, -1102);
    let left = bot.get("/api/v3/openOrders", &[]).await.ok();
    assert_eq!(left.as_array().unwrap().len(), 6 - 1 - moca.len());
    // The cancels are in the request log with the orders they cancelled.
    let cancelled: usize = s
        .state
        .requests()
        .iter()
        .map(|r| r.orders_cancelled.len())
        .sum();
    assert_eq!(cancelled, 1 + moca.len());
    s.shutdown().await.unwrap();
}

/// BTCUSDT's history at `path` over the 31 days before `t` (ms), one 24-hour call a day.
async fn day_by_day(api: &Api, path: &str, t: i64) -> Vec<Value> {
    let day = 86_400_000i64;
    let mut all = Vec::new();
    for k in (0..31).rev() {
        let (a, b) = (t - (k + 1) * day + 1, t - k * day);
        let page = api
            .get(
                path,
                &[
                    ("symbol", "BTCUSDT"),
                    ("startTime", &a.to_string()),
                    ("endTime", &b.to_string()),
                    ("limit", "1000"),
                ],
            )
            .await
            .ok();
        all.extend(page.as_array().unwrap().iter().cloned());
    }
    all
}

/// Every id of BTCUSDT's history at `path`, following the `cursor` parameter from 0 in pages
/// of `limit`; each page ascends.
async fn page_by_cursor(api: &Api, path: &str, cursor: &str, id: &str, limit: usize) -> Vec<u64> {
    let mut all: Vec<u64> = Vec::new();
    let mut from = 0u64;
    loop {
        let page = api
            .get(
                path,
                &[
                    ("symbol", "BTCUSDT"),
                    (cursor, &from.to_string()),
                    ("limit", &limit.to_string()),
                ],
            )
            .await
            .ok();
        let ids: Vec<u64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o[id].as_u64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending");
        let full = ids.len() == limit;
        if let Some(last) = ids.last() {
            from = last + 1;
        }
        all.extend(ids);
        if !full {
            return all;
        }
    }
}

#[tokio::test]
async fn history_takes_a_symbol_and_24_hours_and_pages_by_cursor() {
    let s = start("pump-and-dump").await;
    let bot = Api::new(&s, "bot");
    let t = now().timestamp_millis();
    let day = 86_400_000i64;
    let ms = |v: i64| v.to_string();
    bot.get("/api/v3/allOrders", &[]).await.refused(400, -1102);
    bot.get("/api/v3/allOrders", &[("symbol", "BTCKRW")])
        .await
        .refused(400, -1121);
    bot.get(
        "/api/v3/allOrders",
        &[
            ("symbol", "BTCUSDT"),
            ("startTime", &ms(t - day - 1)),
            ("endTime", &ms(t)),
        ],
    )
    .await
    .refused(400, -1127);
    bot.get(
        "/api/v3/myTrades",
        &[
            ("symbol", "BTCUSDT"),
            ("startTime", &ms(t - 2 * day)),
            ("endTime", &ms(t)),
        ],
    )
    .await
    .refused(400, -1127);
    bot.get(
        "/api/v3/myTrades",
        &[
            ("symbol", "BTCUSDT"),
            ("fromId", "1"),
            ("startTime", &ms(t - day)),
        ],
    )
    .await
    .refused(400, -1128);
    bot.get(
        "/api/v3/allOrders",
        &[("symbol", "BTCUSDT"), ("limit", "1001")],
    )
    .await
    .refused(400, -1130);
    // Every BTC order of 30 days: day by day, and by the orderId cursor: the same orders.
    let by_day: Vec<u64> = day_by_day(&bot, "/api/v3/allOrders", t)
        .await
        .iter()
        .map(|o| o["orderId"].as_u64().unwrap())
        .collect();
    assert!(by_day.len() > 200, "{}", by_day.len());
    let by_cursor = page_by_cursor(&bot, "/api/v3/allOrders", "orderId", "orderId", 100).await;
    assert_eq!(by_day, by_cursor);
    // Without times: the most recent, ascending.
    let recent = bot
        .get(
            "/api/v3/allOrders",
            &[("symbol", "BTCUSDT"), ("limit", "5")],
        )
        .await
        .ok();
    let recent: Vec<u64> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_u64().unwrap())
        .collect();
    assert_eq!(recent, by_cursor[by_cursor.len() - 5..]);
    // Fills: by day and by the fromId cursor agree too; ids ascending; each fill names its
    // order, which is one of the symbol's.
    let mut trades_by_day: Vec<u64> = Vec::new();
    for f in day_by_day(&bot, "/api/v3/myTrades", t).await {
        assert!(by_cursor.contains(&f["orderId"].as_u64().unwrap()));
        assert_eq!(f["commissionAsset"], "USDT");
        trades_by_day.push(f["id"].as_u64().unwrap());
    }
    let trades_by_cursor = page_by_cursor(&bot, "/api/v3/myTrades", "fromId", "id", 1000).await;
    assert!(trades_by_cursor.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(trades_by_day, trades_by_cursor);
    let used = |r: &Resp| -> u32 { r.header("x-mbx-used-weight-1m").unwrap().parse().unwrap() };
    let before = used(&public(&s, "/api/v3/ping").await);
    let r = bot
        .get(
            "/api/v3/myTrades",
            &[
                ("symbol", "BTCUSDT"),
                ("orderId", &by_cursor[10].to_string()),
            ],
        )
        .await;
    assert_eq!(used(&r), before + 5, "weight 5 with an orderId");
    for f in r.ok().as_array().unwrap() {
        assert_eq!(f["orderId"].as_u64(), Some(by_cursor[10]));
    }
    // The pumped coin the attacker bought with the victim's dollars is in the fills.
    let moca = bot
        .get(
            "/api/v3/myTrades",
            &[("symbol", "MOCAUSDT"), ("limit", "1000")],
        )
        .await
        .ok();
    assert!(
        moca.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["isBuyer"] == true)
            .count()
            >= 14
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn wallet_history_snapshots_and_coins() {
    let s = start("withdrawal").await;
    let bot = Api::new(&s, "bot");
    let r = bot.get("/sapi/v1/capital/withdraw/history", &[]).await;
    assert_eq!(
        r.header("x-sapi-used-uid-weight-1m").as_deref(),
        Some("18000")
    );
    let wd = r.ok();
    let wd = wd.as_array().unwrap();
    assert_eq!(
        wd.len(),
        2,
        "the last 90 days: the attacker's and one to the cold wallet"
    );
    assert_eq!(
        wd[0]["address"], "bc1qattackerfresh9999999999999999999999",
        "newest first"
    );
    assert_eq!(wd[1]["address"], "bc1qvictimcoldwallet0000000000000000000");
    assert_eq!(wd[0]["status"], 6);
    assert!(wd[0]["applyTime"].as_str().unwrap().len() == 19);
    let truth = s.state.ground_truth();
    assert_eq!(
        wd[0]["id"],
        truth.attacker_withdrawal_uuids[0].simple().to_string()
    );
    let t = now().timestamp_millis();
    let day = 86_400_000i64;
    bot.get(
        "/sapi/v1/capital/withdraw/history",
        &[
            ("startTime", &(t - 91 * day).to_string()),
            ("endTime", &t.to_string()),
        ],
    )
    .await
    .refused(400, -1127);
    let older = bot
        .get(
            "/sapi/v1/capital/withdraw/history",
            &[
                ("startTime", &(t - 180 * day).to_string()),
                ("endTime", &(t - 90 * day).to_string()),
            ],
        )
        .await
        .ok();
    assert_eq!(older.as_array().unwrap().len(), 2, "{older}");
    let dep = bot.get("/sapi/v1/capital/deposit/hisrec", &[]).await.ok();
    assert_eq!(dep[0]["coin"], "USDT");
    assert!(dep[0]["insertTime"].as_i64().is_some());
    let book = bot
        .get("/sapi/v1/capital/withdraw/address/list", &[])
        .await
        .ok();
    assert_eq!(book.as_array().unwrap().len(), 2);
    let rights = bot.get("/sapi/v1/account/apiRestrictions", &[]).await.ok();
    assert_eq!(rights["enableWithdrawals"], true);
    let coins = bot.get("/sapi/v1/capital/config/getall", &[]).await;
    let ip_used: u32 = coins
        .header("x-sapi-used-ip-weight-1m")
        .unwrap()
        .parse()
        .unwrap();
    let coins = coins.ok();
    let btc = coins
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["coin"] == "BTC")
        .unwrap();
    assert_eq!(btc["name"], "Bitcoin");
    assert_eq!(btc["networkList"][0]["network"], "BTC");
    // Snapshots: ETH was sold in the attack today; the day ends before it still hold it.
    bot.get("/sapi/v1/accountSnapshot", &[])
        .await
        .refused(400, -1102);
    let r = bot
        .get("/sapi/v1/accountSnapshot", &[("type", "SPOT")])
        .await;
    assert_eq!(
        r.header("x-sapi-used-ip-weight-1m"),
        Some((ip_used + 2 * 2400).to_string()),
        "weight 2400, the refused call's too"
    );
    let snap = r.ok();
    let vos = snap["snapshotVos"].as_array().unwrap();
    assert_eq!(vos.len(), 7);
    let times: Vec<i64> = vos
        .iter()
        .map(|v| v["updateTime"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 86_400_000),
        "{times:?}"
    );
    assert_eq!(times[6], t - t.rem_euclid(86_400_000) - 1);
    let held = |v: &Value, asset: &str| -> Decimal {
        v["data"]["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == asset)
            .map_or(Decimal::ZERO, |b| dv(&b["free"]))
    };
    assert_eq!(held(&vos[6], "ETH"), d("2.5"));
    let acct = bot
        .get("/api/v3/account", &[("omitZeroBalances", "true")])
        .await
        .ok();
    assert!(
        acct["balances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["asset"] != "ETH"),
        "sold"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hammered_ip_gets_429_with_retry_after_then_418() {
    let s = start("blank").await;
    let mut used = 0;
    let mut first_429 = None;
    for n in 0..400 {
        let r = public(&s, "/api/v3/exchangeInfo").await;
        if r.status == 429 {
            first_429 = Some((n, r));
            break;
        }
        used = r
            .header("x-mbx-used-weight-1m")
            .unwrap()
            .parse::<u32>()
            .unwrap();
    }
    let (n, r) = first_429.expect("a 429 within 400 calls of weight 20");
    assert_eq!((n, used), (300, 6000), "6,000 weight a minute");
    r.refused(429, -1003);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // A signed call from the same IP is refused the same way (weight is per IP).
    Api::new(&s, "bot")
        .get("/api/v3/account", &[])
        .await
        .refused(429, -1003);
    // Keep going: banned.
    let mut banned = None;
    for _ in 0..20 {
        let r = public(&s, "/api/v3/time").await;
        if r.status == 418 {
            banned = Some(r);
            break;
        }
        r.refused(429, -1003);
    }
    let b = banned.expect("418 after repeated 429s");
    b.refused(418, -1003);
    assert_eq!(b.header("retry-after").as_deref(), Some("120"));
    assert!(b.json()["msg"].as_str().unwrap().contains("banned until"));
    // /sapi has its own IP budget.
    Api::new(&s, "bot")
        .get("/sapi/v1/account/apiRestrictions", &[])
        .await
        .ok();
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn new_orders_are_counted_per_account() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let p = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.0001"),
        ("price", "60000"),
    ];
    for n in 1..=100 {
        let r = bot.call("POST", "/api/v3/order", &p).await;
        assert_eq!(
            r.header("x-mbx-order-count-10s"),
            Some(n.to_string()),
            "{}",
            r.body
        );
    }
    let r = bot.call("POST", "/api/v3/order", &p).await;
    r.refused(429, -1015);
    assert!(r.header("retry-after").is_some());
    // Another account is not affected.
    let attacker = Api::new(&s, "attacker");
    assert_eq!(
        attacker.call("POST", "/api/v3/order", &p).await.ok()["status"],
        "NEW"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn market_data_and_the_drill_api() {
    let s = start("pump-and-dump").await;
    let depth = public(&s, "/api/v3/depth?symbol=MOCAUSDT&limit=5")
        .await
        .ok();
    let bid = dv(&depth["bids"][0][0]);
    let ask = dv(&depth["asks"][0][0]);
    assert!(bid < ask && bid > Decimal::ZERO);
    let k = public(&s, "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=3")
        .await
        .ok();
    let rows = k.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[1][0].as_i64().unwrap() - rows[0][0].as_i64().unwrap(),
        3_600_000
    );
    public(&s, "/api/v3/klines?symbol=BTCUSDT&interval=7m")
        .await
        .refused(400, -1120);
    let p = public(&s, "/api/v3/ticker/price?symbol=BTCUSDT").await.ok();
    assert!(dv(&p["price"]) > d("50000"));
    let all = public(&s, "/api/v3/ticker/price").await.ok();
    assert_eq!(all.as_array().unwrap().len(), 6);
    let t = public(&s, "/api/v3/ticker/24hr?symbol=MOCAUSDT").await.ok();
    assert!(dv(&t["highPrice"]) >= dv(&t["lowPrice"]));
    public(&s, "/api/v3/trades?symbol=XRPUSDT&limit=3")
        .await
        .ok();
    public(&s, "/fapi/v1/exchangeInfo").await.ok();
    let nf = public(&s, "/api/v3/nothing").await;
    assert_eq!(nf.status, 404);
    // The drill API: ground truth in dollars, the state, the bot log with Binance symbols.
    let truth = public(&s, "/_mock/ground-truth").await.ok();
    assert_eq!(truth["loss_currency"], "USDT");
    assert!(d(truth["true_loss"].as_str().unwrap()) > d("1000"));
    let state = public(&s, "/_mock/state").await.ok();
    assert_eq!(state["exchange"], "binance");
    let log = public(&s, "/_mock/bot-log").await.body;
    assert!(log.lines().nth(1).unwrap().contains("USDT,"), "{log}");
    // An injected server error: 500 with -1000, and nothing placed.
    let faults = reqwest::Client::new()
        .post(format!("{}/_mock/faults", s.url))
        .json(&serde_json::json!([{"path": "/api/v3/order", "method": "POST", "error_rate": 1.0, "count": 1}]))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 200);
    let bot = Api::new(&s, "bot");
    let before = s.state.world().orders.len();
    let p = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.0001"),
        ("price", "60000"),
    ];
    bot.call("POST", "/api/v3/order", &p)
        .await
        .refused(500, -1000);
    assert_eq!(s.state.world().orders.len(), before);
    bot.call("POST", "/api/v3/order", &p).await.ok();
    s.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_live_attacker_trades_on_binance_until_the_key_is_revoked() {
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
    // Its orders fill against the book in dollars, numbered after the history's trades.
    {
        let w = s.state.world();
        let live = w.order(truth.attacker_order_uuids.last().unwrap()).unwrap();
        assert_eq!(live.market.symbol, "MOCAUSDT");
        assert!(!live.trades.is_empty() && live.trades.iter().all(|f| f.id > 1000));
    }
    assert!(s.state.revoke_key(&truth.leaked_access_key));
    let after = s.state.ground_truth();
    assert!(after.revoked_at.is_some());
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let n = s.state.ground_truth().attacker_order_uuids.len();
    assert!(
        n <= after.attacker_order_uuids.len(),
        "nothing after the revocation"
    );
    s.shutdown().await.unwrap();
}

#[test]
fn every_price_the_venue_writes_fits_the_published_tick() {
    let sc = mock::scenario::load("noisy", None).unwrap();
    let ex = Venue::new(&Binance, sc, opts()).unwrap();
    let ticks: BTreeMap<String, Decimal> = ex
        .markets
        .list
        .iter()
        .map(|m| (m.market.symbol.clone(), ex.markets.rules.tick_at(m.price)))
        .collect();
    let w = ex.world();
    for o in &w.orders {
        if let Some(p) = o.price {
            let t = ticks[&o.market.symbol];
            assert!(
                (p % t).is_zero(),
                "{} price {p} off the tick {t}",
                o.market.symbol
            );
        }
    }
}

#[tokio::test]
async fn the_users_website_orders_show_the_client_id_binance_gives_them() {
    let s = start("noisy").await;
    let bot = Api::new(&s, "bot");
    let manual = s.state.ground_truth().user_manual_order_uuids;
    assert!(!manual.is_empty(), "noisy has manual orders");
    for u in &manual {
        let (symbol, idx) = {
            let w = s.state.world();
            let i = w.position(u).unwrap();
            (w.orders[i].market.symbol.clone(), i)
        };
        let id = (respond::mock::binance::wire::ORDER_ID_BASE + idx as u64).to_string();
        let o = bot
            .get("/api/v3/order", &[("symbol", &symbol), ("orderId", &id)])
            .await
            .ok();
        let cid = o["clientOrderId"].as_str().unwrap();
        let hex = cid.strip_prefix("web_").unwrap_or_else(|| panic!("{cid}"));
        assert!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{cid}"
        );
        // It finds the order, as Binance's does.
        let by_cid = bot
            .get(
                "/api/v3/order",
                &[("symbol", &symbol), ("origClientOrderId", cid)],
            )
            .await
            .ok();
        assert_eq!(by_cid["orderId"], o["orderId"]);
    }
    s.shutdown().await.unwrap();
}

/// A SELL OCO on BTCUSDT around the book: the `LIMIT_MAKER` leg just under the best ask, the
/// stop 3% under the best bid (`STOP_LOSS_LIMIT` at 4% under).
pub(crate) async fn place_oco(bot: &Api, s: &MockServer, qty: &str) -> Value {
    let depth = public(s, "/api/v3/depth?symbol=BTCUSDT&limit=5").await.ok();
    let ask = dv(&depth["asks"][0][0]);
    let bid = dv(&depth["bids"][0][0]);
    let above = (ask - d("0.01")).to_string();
    let stop = (bid * d("0.97")).round_dp(2).to_string();
    let limit = (bid * d("0.96")).round_dp(2).to_string();
    bot.call(
        "POST",
        "/api/v3/orderList/oco",
        &[
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("quantity", qty),
            ("aboveType", "LIMIT_MAKER"),
            ("abovePrice", &above),
            ("belowType", "STOP_LOSS_LIMIT"),
            ("belowStopPrice", &stop),
            ("belowPrice", &limit),
            ("belowTimeInForce", "GTC"),
        ],
    )
    .await
    .ok()
}

pub(crate) fn leg_ids(list: &Value) -> Vec<String> {
    list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].to_string())
        .collect()
}

/// Order lists as Binance serves them: an OCO is two legs sharing an `orderListId` (one
/// lock for both), `openOrderList` lists it, the first fill of the book leg expires the stop
/// leg, cancelling one leg cancels the list, and `DELETE openOrders` answers a list object
/// (with a report per leg) beside the plain orders it cancelled.
#[tokio::test]
async fn oco_order_lists_are_placed_matched_listed_and_cancelled() {
    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let btc_locked = |acct: Value| {
        acct["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["asset"] == "BTC")
            .map(|b| dv(&b["locked"]))
            .unwrap()
    };
    // Refusals: legs the wrong way round, and prices on the wrong side of the market.
    let sell_oco = |legs: &'static [(&'static str, &'static str)]| {
        let bot = &bot;
        async move {
            let mut p = vec![
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("quantity", "0.001"),
            ];
            p.extend_from_slice(legs);
            bot.call("POST", "/api/v3/orderList/oco", &p).await
        }
    };
    sell_oco(&[
        ("aboveType", "STOP_LOSS"),
        ("aboveStopPrice", "99000"),
        ("belowType", "LIMIT_MAKER"),
        ("belowPrice", "90000"),
    ])
    .await
    .refused(400, -1014);
    let r = sell_oco(&[
        ("aboveType", "LIMIT_MAKER"),
        ("abovePrice", "1000"),
        ("belowType", "STOP_LOSS"),
        ("belowStopPrice", "900"),
    ])
    .await;
    r.refused(400, -2010);
    assert!(r.body.contains("relationship of the prices"), "{}", r.body);

    // Placed: two legs, one list, the quantity locked once.
    let list = place_oco(&bot, &s, "0.001").await;
    assert_eq!(list["contingencyType"], "OCO");
    assert_eq!(list["listStatusType"], "EXEC_STARTED");
    let list_id = list["orderListId"].as_i64().unwrap();
    assert!(list_id > 0);
    let types: Vec<&str> = list["orderReports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]);
    let legs = leg_ids(&list);
    let r = bot.get("/api/v3/openOrders", &[]).await;
    let weight = |r: &Resp| -> u32 { r.header("x-mbx-used-weight-1m").unwrap().parse().unwrap() };
    let used = weight(&r);
    let open = r.ok();
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(open.iter().all(|o| o["orderListId"] == list_id));
    let stop_leg = open
        .iter()
        .find(|o| o["type"] == "STOP_LOSS_LIMIT")
        .unwrap();
    assert!(dv(&stop_leg["stopPrice"]) > Decimal::ZERO);
    assert_eq!(stop_leg["isWorking"], false);
    let r = bot.get("/api/v3/openOrderList", &[]).await;
    assert_eq!(weight(&r), used + 6);
    let lists = r.ok();
    assert_eq!(lists.as_array().unwrap().len(), 1);
    assert_eq!(lists[0]["orderListId"], list_id);
    assert_eq!(
        btc_locked(bot.get("/api/v3/account", &[]).await.ok()),
        d("0.001")
    );

    // The attacker buys into the book leg: it fills, the stop leg expires, the list is over.
    let attacker = Api::new(&s, "attacker");
    let above = open.iter().find(|o| o["type"] == "LIMIT_MAKER").unwrap();
    let price = above["price"].as_str().unwrap().to_string();
    attacker.limit_buy("BTCUSDT", "0.001", &price).await.ok();
    let state = |id: &str| {
        let bot = &bot;
        let id = id.to_string();
        async move {
            bot.get("/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)])
                .await
                .ok()["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(state(&legs[0]).await, "FILLED");
    assert_eq!(state(&legs[1]).await, "EXPIRED");
    assert_eq!(
        bot.get("/api/v3/openOrderList", &[]).await.ok(),
        Value::Array(vec![])
    );
    assert_eq!(
        btc_locked(bot.get("/api/v3/account", &[]).await.ok()),
        Decimal::ZERO
    );

    // Cancel-all per symbol: a plain order and a list, answered side by side.
    let list = place_oco(&bot, &s, "0.001").await;
    bot.limit_buy("BTCUSDT", "0.001", "50000").await.ok();
    let all = bot
        .call("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")])
        .await
        .ok();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let l = all.iter().find(|x| x["contingencyType"] == "OCO").unwrap();
    assert_eq!(l["orderListId"], list["orderListId"]);
    assert_eq!(l["listStatusType"], "ALL_DONE");
    let reports = l["orderReports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|o| o["status"] == "CANCELED"));
    assert!(all
        .iter()
        .any(|x| x["orderListId"] == -1 && x["status"] == "CANCELED"));
    assert_eq!(
        bot.get("/api/v3/openOrderList", &[]).await.ok(),
        Value::Array(vec![])
    );

    // By list id; again: -2011. One leg by its own id: the list goes with it.
    let list = place_oco(&bot, &s, "0.001").await;
    let id = list["orderListId"].to_string();
    let c = bot
        .call(
            "DELETE",
            "/api/v3/orderList",
            &[("symbol", "BTCUSDT"), ("orderListId", &id)],
        )
        .await
        .ok();
    assert_eq!(c["listOrderStatus"], "ALL_DONE");
    bot.call(
        "DELETE",
        "/api/v3/orderList",
        &[("symbol", "BTCUSDT"), ("orderListId", &id)],
    )
    .await
    .refused(400, -2011);
    let list = place_oco(&bot, &s, "0.001").await;
    let legs = leg_ids(&list);
    bot.call(
        "DELETE",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("orderId", &legs[1])],
    )
    .await
    .ok();
    assert_eq!(state(&legs[0]).await, "CANCELED");
    assert_eq!(
        bot.get("/api/v3/openOrders", &[]).await.ok(),
        Value::Array(vec![])
    );
    assert_eq!(
        btc_locked(bot.get("/api/v3/account", &[]).await.ok()),
        Decimal::ZERO
    );
    s.shutdown().await.unwrap();
}

const OCO_SCENARIO: &str = r#"name: oco
seed: 5
now: 2026-11-20T18:30:00Z
quote: USDT
markets:
  - { base: ETH, name: Ethereum, price: "3400" }
  - { base: BTC, name: Bitcoin, price: "96000" }
accounts:
  - { name: victim, balances: { USDT: "10000", BTC: "0.5" } }
  - { name: attacker, balances: { USDT: "100000" } }
keys:
  - { account: victim, label: bot, permissions: [read, trade] }
  - { account: attacker, label: attacker, permissions: [read, trade] }
attack:
  key: bot
  attacker_account: attacker
  start_minutes_before_now: 30
  open_oco: 1
"#;

/// A scenario's `attack.open_oco` leaves an OCO open in the victim's account: both legs
/// listed open under one `orderListId` (the stop leg off the book: the book shows no ask
/// under the market), the quantity locked once, both legs the attacker's in the ground
/// truth. A façade without order lists refuses the scenario, naming the field.
#[tokio::test]
async fn a_scenario_leaves_an_attacker_oco_open_where_the_facade_serves_order_lists() {
    let s = start_yaml(OCO_SCENARIO).await;
    let bot = Api::new(&s, "bot");
    let lists = bot.get("/api/v3/openOrderList", &[]).await.ok();
    let lists = lists.as_array().unwrap();
    assert_eq!(lists.len(), 1, "{lists:?}");
    let id = &lists[0]["orderListId"];
    let open = bot.get("/api/v3/openOrders", &[]).await.ok();
    let legs: Vec<&Value> = open
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| &o["orderListId"] == id)
        .collect();
    let mut types: Vec<&str> = legs.iter().map(|o| o["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]);
    let depth = public(&s, "/api/v3/depth?symbol=BTCUSDT&limit=5")
        .await
        .ok();
    let best_bid = dv(&depth["bids"][0][0]);
    let best_ask = dv(&depth["asks"][0][0]);
    assert!(
        best_ask > best_bid,
        "no ask rests under the market: {depth}"
    );
    let account = bot.get("/api/v3/account", &[]).await.ok();
    let btc = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "BTC")
        .unwrap()
        .clone();
    let qty = dv(&legs[0]["origQty"]);
    assert_eq!(dv(&btc["locked"]), qty, "locked once");
    assert_eq!(dv(&btc["free"]) + qty, d("0.5"));
    let truth = s.state.ground_truth();
    assert!(truth.attacker_order_uuids.len() >= 2);
    s.shutdown().await.unwrap();

    let sc = mock::scenario::parse("oco.yaml", OCO_SCENARIO, None).unwrap();
    let e = Venue::new(&respond::mock::upbit::Upbit, sc, opts())
        .err()
        .expect("the upbit mock refuses an OCO scenario");
    let msg = e.to_string();
    assert!(
        msg.contains("open_oco") && msg.contains("upbit") && msg.contains("oco.yaml:"),
        "{msg}"
    );
}
