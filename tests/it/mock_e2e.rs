//! End-to-end tests of the mock exchange over real loopback HTTP, signed by a small test
//! signer written here (jsonwebtoken + sha2), independent from the crate's client.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use respond::mock::upbit::Upbit;
use respond::mock::{self, MockOptions, MockServer, Venue};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use crate::support::mock::{now, opts};

async fn start(scenario: &str, o: MockOptions) -> MockServer {
    let sc = mock::scenario::load(scenario, None).expect("scenario loads");
    let ex = Venue::new(&Upbit, sc, o).unwrap();
    mock::serve(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        Arc::new(Upbit),
        ex,
    )
    .await
    .expect("binds")
}

async fn start_yaml(yaml: &str, o: MockOptions) -> MockServer {
    let sc = mock::scenario::parse("test.yaml", yaml, None).expect("scenario parses");
    mock::serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Upbit),
        Venue::new(&Upbit, sc, o).unwrap(),
    )
    .await
    .unwrap()
}

/// GET on the mock (public or drill API), parsed as JSON.
async fn public_json(s: &MockServer, path: &str) -> Value {
    let url = format!("{}{path}", s.url);
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[derive(Clone, Copy)]
enum Alg {
    Hs256,
    Hs512,
}

/// The test signer: claims in the order access_key, nonce, query_hash, query_hash_alg.
fn token(ak: &str, sk: &str, hash_input: Option<&str>, alg: Alg, nonce: Option<&str>) -> String {
    let nonce = nonce
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut claims = serde_json::Map::new();
    claims.insert("access_key".into(), json!(ak));
    claims.insert("nonce".into(), json!(nonce));
    if let Some(h) = hash_input {
        claims.insert(
            "query_hash".into(),
            json!(hex::encode(Sha512::digest(h.as_bytes()))),
        );
        claims.insert("query_hash_alg".into(), json!("SHA512"));
    }
    let a = match alg {
        Alg::Hs256 => jsonwebtoken::Algorithm::HS256,
        Alg::Hs512 => jsonwebtoken::Algorithm::HS512,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(a),
        &Value::Object(claims),
        &jsonwebtoken::EncodingKey::from_secret(sk.as_bytes()),
    )
    .unwrap()
}

struct Resp {
    status: u16,
    rr: Option<String>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn err_name(&self) -> String {
        self.json()["error"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
    ak: String,
    sk: String,
}

impl Api {
    fn new(s: &MockServer, label: &str) -> Api {
        let k = s.state.key(label).expect("key exists");
        Api {
            base: s.url.clone(),
            http: reqwest::Client::new(),
            ak: k.access_key.clone(),
            sk: k.secret_key.clone(),
        }
    }
    async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let rr = r
            .headers()
            .get("remaining-req")
            .map(|v| v.to_str().unwrap().to_string());
        Resp {
            status,
            rr,
            body: r.text().await.unwrap_or_default(),
        }
    }
    /// Signed request with parameters in the query string (decoded form hashed).
    async fn q(&self, method: reqwest::Method, path: &str, query: &str) -> Resp {
        let h = (!query.is_empty()).then_some(query);
        let t = token(&self.ak, &self.sk, h, Alg::Hs256, None);
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        self.send(self.http.request(method, url).bearer_auth(t))
            .await
    }
    async fn get(&self, path: &str, query: &str) -> Resp {
        self.q(reqwest::Method::GET, path, query).await
    }
    async fn post(&self, path: &str, body: Value) -> Resp {
        let input: Vec<String> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map(str::to_string).unwrap_or(v.to_string())
                )
            })
            .collect();
        let t = token(&self.ak, &self.sk, Some(&input.join("&")), Alg::Hs256, None);
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(t)
                .json(&body),
        )
        .await
    }
    async fn bearer(&self, path: &str, token: &str) -> Resp {
        self.raw(reqwest::Method::GET, path, Some(format!("Bearer {token}")))
            .await
    }
    async fn raw(&self, method: reqwest::Method, path: &str, auth: Option<String>) -> Resp {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        self.send(rb).await
    }
}

const EXTRA_KEYS: &str = r#"
  - { account: victim, label: expired, scopes: [view_account], expires_in_days: -1 }
  - { account: victim, label: ipbound, scopes: [view_account], allowed_ips: ["10.1.2.3"] }
  - { account: victim, label: loopback, scopes: [view_account], allowed_ips: ["127.0.0.1"] }
"#;

fn blank_plus(extra_keys: &str, tail: &str) -> String {
    let base = mock::scenario::BUILTINS
        .iter()
        .find(|(n, _)| *n == "blank")
        .unwrap()
        .1;
    let mut s = base.replace("name: blank", "name: test");
    s = s.replacen(
        "keys:\n",
        &format!("keys:\n{}", extra_keys.trim_start_matches('\n')),
        1,
    );
    s.push_str(tail);
    s
}

#[tokio::test]
async fn auth_failures_have_their_documented_names_and_statuses() {
    let s = start_yaml(&blank_plus(EXTRA_KEYS, ""), opts()).await;
    let bot = Api::new(&s, "bot");
    let b64 = |x: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x)
    };
    let check = |r: &Resp, status: u16, name: &str| {
        assert_eq!(
            (r.status, r.err_name().as_str()),
            (status, name),
            "{}",
            r.body
        );
        assert!(
            r.rr.as_deref()
                .unwrap_or("")
                .starts_with("group=default; min="),
            "Remaining-Req on errors"
        );
    };
    let get = reqwest::Method::GET;
    check(
        &bot.raw(get.clone(), "/v1/accounts", None).await,
        401,
        "no_authorization_token",
    );
    check(
        &bot.raw(get.clone(), "/v1/accounts", Some("Bearer not.a.jwt".into()))
            .await,
        401,
        "jwt_verification",
    );
    let claims = b64(&format!(r#"{{"access_key":"{}","nonce":"n1"}}"#, bot.ak));
    let none = format!("Bearer {}.{claims}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
    check(
        &bot.raw(get.clone(), "/v1/accounts", Some(none)).await,
        401,
        "jwt_verification",
    );
    let rs = format!(
        "Bearer {}.{claims}.c2ln",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#)
    );
    check(
        &bot.raw(get.clone(), "/v1/accounts", Some(rs)).await,
        401,
        "jwt_verification",
    );
    let unknown = token("no-such-key", "x", None, Alg::Hs256, None);
    check(
        &bot.bearer("/v1/accounts", &unknown).await,
        401,
        "invalid_access_key",
    );
    let badsig = token(&bot.ak, "wrong-secret", None, Alg::Hs256, None);
    check(
        &bot.bearer("/v1/accounts", &badsig).await,
        401,
        "jwt_verification",
    );
    check(
        &Api::new(&s, "expired").get("/v1/accounts", "").await,
        401,
        "expired_access_key",
    );
    check(
        &Api::new(&s, "ipbound").get("/v1/accounts", "").await,
        401,
        "no_authorization_i_p",
    );
    assert_eq!(
        Api::new(&s, "loopback")
            .get("/v1/accounts", "")
            .await
            .status,
        200
    );
    // Nonce replay.
    let t = token(&bot.ak, &bot.sk, None, Alg::Hs256, Some("fixed-nonce-1"));
    assert_eq!(bot.bearer("/v1/accounts", &t).await.status, 200);
    check(&bot.bearer("/v1/accounts", &t).await, 401, "nonce_used");
    // Hash over other parameters, or missing.
    let t = token(&bot.ak, &bot.sk, Some("market=KRW-ETH"), Alg::Hs256, None);
    check(
        &bot.bearer("/v1/orders/chance?market=KRW-BTC", &t).await,
        401,
        "invalid_query_payload",
    );
    let t = token(&bot.ak, &bot.sk, None, Alg::Hs256, None);
    check(
        &bot.bearer("/v1/orders/chance?market=KRW-BTC", &t).await,
        401,
        "invalid_query_payload",
    );
    // HS512 is accepted.
    let t = token(&bot.ak, &bot.sk, Some("market=KRW-BTC"), Alg::Hs512, None);
    assert_eq!(
        bot.bearer("/v1/orders/chance?market=KRW-BTC", &t)
            .await
            .status,
        200
    );
    // Scope.
    let ro = Api::new(&s, "readonly");
    let r = ro
        .post("/v1/orders", json!({"market":"KRW-BTC","side":"bid","volume":"0.001","price":"100000000","ord_type":"limit"}))
        .await;
    assert_eq!((r.status, r.err_name().as_str()), (403, "out_of_scope"));
    assert!(r.rr.as_deref().unwrap().starts_with("group=order;"));
    // Revoked through the drill API.
    let http = reqwest::Client::new();
    let rv = http
        .post(format!("{}/_mock/keys/{}/revoke", s.url, bot.ak))
        .send()
        .await
        .unwrap();
    assert_eq!(rv.status(), 200);
    check(
        &bot.get("/v1/accounts", "").await,
        401,
        "invalid_access_key",
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn out_of_scope_status_is_configurable() {
    let s = start(
        "blank",
        MockOptions {
            out_of_scope_status: 401,
            ..opts()
        },
    )
    .await;
    let r = Api::new(&s, "readonly")
        .q(
            reqwest::Method::DELETE,
            "/v1/order",
            "uuid=00000000-0000-4000-8000-000000000000",
        )
        .await;
    assert_eq!((r.status, r.err_name().as_str()), (401, "out_of_scope"));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn orders_limits_windows_identifiers_and_batch_cancel() {
    let s = start("blank", opts()).await;
    let bot = Api::new(&s, "bot");
    let r = bot
        .post("/v1/orders", json!({"market":"KRW-BTC","side":"bid","volume":"0.001","price":"100000000","ord_type":"limit","identifier":"my-1"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let o = r.json();
    assert_eq!(o["state"], "wait");
    assert_eq!(o["price"], "100000000");
    assert!(o["created_at"].as_str().unwrap().ends_with("+09:00"));
    let uuid = o["uuid"].as_str().unwrap().to_string();
    let dup = bot
        .post("/v1/orders", json!({"market":"KRW-BTC","side":"bid","volume":"0.001","price":"100000000","ord_type":"limit","identifier":"my-1"}))
        .await;
    assert_eq!(
        (dup.status, dup.err_name().as_str()),
        (400, "duplicated_identifier")
    );
    let test = bot
        .post("/v1/orders/test", json!({"market":"KRW-BTC","side":"bid","volume":"0.001","price":"100000000","ord_type":"limit","identifier":"my-1"}))
        .await;
    assert_eq!(
        test.err_name(),
        "duplicated_identifier",
        "order test validates"
    );
    let test = bot
        .post("/v1/orders/test", json!({"market":"KRW-BTC","side":"bid","volume":"0.001","price":"100000000","ord_type":"limit"}))
        .await;
    assert_eq!(test.status, 201);
    assert!(test.rr.unwrap().starts_with("group=order-test;"));
    let small = bot
        .post(
            "/v1/orders",
            json!({"market":"KRW-BTC","side":"bid","price":"1000","ord_type":"price"}),
        )
        .await;
    assert_eq!(small.err_name(), "under_min_total_bid");
    // Accounts show the lock.
    let acc = bot.get("/v1/accounts", "").await.json();
    let krw = acc
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "KRW")
        .unwrap();
    assert_eq!(krw["locked"], "100050");
    // Single order by identifier, with trades[]; list form has executed_funds and no trades.
    let one = bot.get("/v1/order", "identifier=my-1").await.json();
    assert_eq!(one["uuid"], uuid.as_str());
    assert!(one["trades"].is_array());
    let open = bot
        .get("/v1/orders/open", "market=KRW-BTC&states[]=wait")
        .await
        .json();
    assert_eq!(open[0]["uuid"], uuid.as_str());
    assert!(open[0].get("trades").is_none() && open[0].get("executed_funds").is_some());
    // Limits and the 7-day window.
    assert_eq!(
        bot.get("/v1/orders/open", "limit=101").await.err_name(),
        "validation_error"
    );
    assert_eq!(
        bot.get("/v1/orders/closed", "limit=1001").await.err_name(),
        "validation_error"
    );
    let start = now().timestamp_millis() - 8 * 86_400_000;
    let r = bot
        .get(
            "/v1/orders/closed",
            &format!("start_time={start}&end_time={}", now().timestamp_millis()),
        )
        .await;
    assert_eq!((r.status, r.err_name().as_str()), (400, "validation_error"));
    // Quirk: DELETE /v1/order with a JSON body.
    let t = token(
        &bot.ak,
        &bot.sk,
        Some(&format!("uuid={uuid}")),
        Alg::Hs256,
        None,
    );
    let r = bot
        .send(
            bot.http
                .delete(format!("{}/v1/order", bot.base))
                .bearer_auth(t)
                .json(&json!({"uuid": uuid})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let again = bot
        .q(
            reqwest::Method::DELETE,
            "/v1/order",
            &format!("uuid={uuid}"),
        )
        .await;
    assert_eq!(again.status, 400);
    let closed = bot.get("/v1/orders/closed", "states[]=cancel").await.json();
    assert_eq!(closed[0]["uuid"], uuid.as_str());
    assert_eq!(closed[0]["state"], "cancel");
    // Batch cancel: 1 call per 2 s.
    for i in 0..3 {
        let r = bot
            .post("/v1/orders", json!({"market":"KRW-ETH","side":"bid","volume":"0.01","price":"1000000","ord_type":"limit","identifier":format!("b-{i}")}))
            .await;
        assert_eq!(r.status, 201);
    }
    let r = bot
        .q(
            reqwest::Method::DELETE,
            "/v1/orders/open",
            "cancel_side=all&count=300",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["success"]["count"], 3);
    assert!(r.rr.unwrap().starts_with("group=order-cancel-all; min="));
    let r = bot
        .q(
            reqwest::Method::DELETE,
            "/v1/orders/open",
            "cancel_side=all",
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(
        serde_json::from_str::<Value>(&r.body).is_err(),
        "429 body is plain text"
    );
    assert_eq!(
        r.rr.as_deref(),
        Some("group=order-cancel-all; min=30; sec=0")
    );
    // The request log proves each order was cancelled once.
    let log = s.state.requests();
    let mut cancelled: Vec<_> = log
        .iter()
        .flat_map(|r| r.orders_cancelled.clone())
        .collect();
    let n = cancelled.len();
    cancelled.sort();
    cancelled.dedup();
    assert_eq!(n, cancelled.len());
    assert_eq!(n, 4);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn order_rate_limit_gives_429_then_418() {
    let s = start("blank", opts()).await;
    let bot = Api::new(&s, "bot");
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = bot
            .post(
                "/v1/orders",
                json!({"market":"KRW-XRP","side":"bid","price":"5000","ord_type":"price"}),
            )
            .await;
        assert!(r.rr.is_some());
        statuses.push(r.status);
    }
    assert!(
        statuses.iter().filter(|&&s| s == 201).count() <= 16,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429));
    assert_eq!(*statuses.last().unwrap(), 418, "{statuses:?}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_quirks_form_body_double_slash_unknown_path() {
    let s = start("blank", opts()).await;
    let bot = Api::new(&s, "bot");
    // pyupbit: GET parameters in a form-encoded body.
    let t = token(&bot.ak, &bot.sk, Some("market=KRW-BTC"), Alg::Hs256, None);
    let r = bot
        .send(
            bot.http
                .get(format!("{}/v1/orders/chance", bot.base))
                .bearer_auth(t)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("market=KRW-BTC"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["market"]["id"], "KRW-BTC");
    // pyupbit: //v1/deposits.
    let r = bot.get("//v1/deposits", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["currency"], "KRW");
    // Unknown path: the error envelope, with Remaining-Req.
    let r = bot.get("/v1/nope", "").await;
    assert_eq!((r.status, r.err_name().as_str()), (404, "not_found"));
    assert!(r.rr.is_some());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn big_market_buy_walks_the_thin_book() {
    let s = start("blank", opts()).await;
    let atk = Api::new(&s, "attacker");
    let ob: Value = public_json(&s, "/v1/orderbook?markets=KRW-MOCA").await;
    let best_ask = ob[0]["orderbook_units"][0]["ask_price"].as_f64().unwrap();
    let r = atk
        .post(
            "/v1/orders",
            json!({"market":"KRW-MOCA","side":"bid","price":"2000000","ord_type":"price"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let u = r.json()["uuid"].as_str().unwrap().to_string();
    let o = atk.get("/v1/order", &format!("uuid={u}")).await.json();
    let trades = o["trades"].as_array().unwrap();
    assert!(trades.len() > 3, "walked {} levels", trades.len());
    let prices: Vec<f64> = trades
        .iter()
        .map(|t| t["price"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(prices.windows(2).all(|w| w[0] < w[1]), "{prices:?}");
    assert_eq!(prices[0], best_ask);
    let uuids: std::collections::HashSet<_> =
        trades.iter().map(|t| t["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids.len(), trades.len(), "each fill has its own uuid");
    assert_eq!(o["state"], "done");
    // Fills between accounts: the victim's resting ask is taken by the attacker's buy.
    let bot = Api::new(&s, "bot");
    let ob: Value = public_json(&s, "/v1/orderbook?markets=KRW-XRP").await;
    let u0 = &ob[0]["orderbook_units"][0];
    let mid =
        ((u0["ask_price"].as_f64().unwrap() + u0["bid_price"].as_f64().unwrap()) / 2.0).round();
    let mid = format!("{mid}");
    let r = bot
        .post(
            "/v1/orders",
            json!({"market":"KRW-XRP","side":"ask","volume":"10","price":mid,"ord_type":"limit"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let ask = r.json()["uuid"].as_str().unwrap().to_string();
    let r = atk
        .post(
            "/v1/orders",
            json!({"market":"KRW-XRP","side":"bid","volume":"10","price":mid,"ord_type":"limit"}),
        )
        .await;
    assert_eq!(r.json()["state"], "done", "{}", r.body);
    let filled = bot.get("/v1/order", &format!("uuid={ask}")).await.json();
    assert_eq!(filled["state"], "done");
    assert_eq!(filled["trades"][0]["price"], mid.as_str());
    s.shutdown().await.unwrap();
}

#[test]
fn scenario_history_is_deterministic_per_seed() {
    let mk = |seed| {
        let sc = mock::scenario::load("pump-and-dump", Some(seed)).unwrap();
        Venue::new(&Upbit, sc, opts()).unwrap()
    };
    let (a, b, c) = (mk(9), mk(9), mk(10));
    assert_eq!(a.bot_log_csv(), b.bot_log_csv());
    assert_ne!(a.bot_log_csv(), c.bot_log_csv());
    assert_eq!(
        a.ground_truth().attacker_order_uuids,
        b.ground_truth().attacker_order_uuids
    );
    assert_eq!(a.keys()[0].secret_key, b.keys()[0].secret_key);
    let csv = a.bot_log_csv();
    assert!(csv.starts_with("order_id,identifier,market,side,ord_type,created_at,price,volume\n"));
    let last7 = a
        .bot_log()
        .iter()
        .filter(|r| r.created_at > now() - chrono::Duration::days(7))
        .count();
    assert!(
        (100..=400).contains(&last7),
        "{last7} bot orders in the last 7 days"
    );
}

#[test]
fn bad_scenario_files_are_rejected_with_file_line_column() {
    let e =
        mock::scenario::parse("bad.yaml", "name: x\nmarkets: [\n  {code: 1\n", None).unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("bad.yaml:"), "{m}");
    assert!(m.split(':').nth(1).unwrap().parse::<usize>().is_ok(), "{m}");
    let text = blank_plus(
        "",
        "bot:\n  account: victim\n  key: bot\n  markets: [KRW-NOPE]\n  order_krw: [\"1\", \"2\"]\n",
    );
    let e = mock::scenario::parse("sc.yaml", &text, None)
        .unwrap_err()
        .to_string();
    let line = text.lines().position(|l| l.contains("KRW-NOPE")).unwrap() + 1;
    assert!(e.starts_with(&format!("sc.yaml:{line}:")), "{e}");
    assert!(e.contains("unknown market"), "{e}");
    let e = mock::scenario::parse("t.yaml", &blank_plus("", "surprise: 1\n"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field"), "{e}");
    // Shapes the generator cannot draw from are refused at parse time, not by a panic when
    // the mock builds the history.
    let bot = "bot:\n  account: victim\n  key: bot\n  order_krw: [\"10000\", \"20000\"]\n";
    let manual = "manual:\n  account: victim\n  order_krw: [\"10000\", \"20000\"]\n";
    for (tail, says) in [
        (format!("{bot}  markets: []\n"), "bot.markets"),
        (
            format!("{bot}  markets: [KRW-BTC]\n  ord_types: []\n"),
            "bot.ord_types",
        ),
        (
            format!("{bot}  markets: [KRW-BTC]\n  cancel_rate: 1.5\n"),
            "cancel_rate",
        ),
        (format!("{manual}  markets: []\n  orders: 5\n"), "manual.markets"),
        (
            format!(
                "{bot}  markets: [KRW-BTC]\n  days: 1\n{manual}  markets: [KRW-BTC]\n  orders: 5\n  recent: 3\n"
            ),
            "manual.recent",
        ),
    ] {
        let text = blank_plus("", &tail);
        let e = mock::scenario::parse("sc.yaml", &text, None)
            .expect_err(&tail)
            .to_string();
        assert!(e.starts_with("sc.yaml:") && e.contains(says), "{tail}: {e}");
    }
    assert!(mock::scenario::load("/no/such/file.yaml", None)
        .unwrap_err()
        .to_string()
        .contains("built-in scenarios are: blank"));
}

#[tokio::test]
async fn pump_and_dump_history_ground_truth_and_candles() {
    let s = start("pump-and-dump", opts()).await;
    let gt = s.state.ground_truth();
    assert!(gt.attacker_order_uuids.len() >= 14);
    let log = s.state.bot_log_csv();
    for u in &gt.attacker_order_uuids {
        assert!(!log.contains(&u.to_string()), "attacker order in bot log");
    }
    assert!(
        gt.true_loss.parse::<f64>().unwrap() > 100_000.0,
        "{}",
        gt.true_loss
    );
    let http = reqwest::Client::new();
    let via_http: Value = public_json(&s, "/_mock/ground-truth").await;
    assert_eq!(via_http["leaked_access_key"], gt.leaked_access_key.as_str());
    // The attack is visible in the closed orders of the leaked key's account.
    let ro = Api::new(&s, "readonly");
    let closed = ro.get("/v1/orders/closed", "limit=1000").await.json();
    let ids: Vec<&str> = closed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["uuid"].as_str().unwrap())
        .collect();
    let found = gt
        .attacker_order_uuids
        .iter()
        .filter(|u| ids.contains(&u.to_string().as_str()))
        .count();
    assert!(found >= 14, "{found}");
    // Pre-attack price is normal, the pump shows in the candles.
    let start =
        chrono::DateTime::parse_from_rfc3339(gt.attack_started_at.as_deref().unwrap()).unwrap();
    let to = (start + chrono::Duration::minutes(30))
        .with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%SZ");
    let c: Value = http
        .get(format!(
            "{}/v1/candles/minutes/1?market=KRW-MOCA&to={to}&count=200",
            s.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = c.as_array().unwrap();
    assert_eq!(c.len(), 200);
    assert!(
        c[0]["candle_date_time_utc"].as_str() > c[1]["candle_date_time_utc"].as_str(),
        "newest first"
    );
    let max_high = c
        .iter()
        .map(|x| x["high_price"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let before = c.last().unwrap()["trade_price"].as_f64().unwrap();
    assert!(
        max_high > before * 2.0,
        "pump visible: {max_high} vs {before}"
    );
    assert!(
        (before - 142.0).abs() / 142.0 < 0.3,
        "normal pre-attack price {before}"
    );
    s.shutdown().await.unwrap();
}

// On a paused clock: the attacker's 20–40 ms pauses and the test's waits take no real time,
// and a loaded machine cannot starve the attacker of its turn within the wait.
#[tokio::test(start_paused = true)]
async fn live_attacker_trades_until_the_key_is_revoked() {
    let mut sc = mock::scenario::load("pump-and-dump", None).unwrap();
    if let Some(a) = sc.attack.as_mut() {
        a.live.min_interval_ms = 20;
        a.live.max_interval_ms = 40;
    }
    let ex: Arc<Venue> = Venue::new(
        &Upbit,
        sc,
        MockOptions {
            live_attacker: true,
            ..opts()
        },
    )
    .unwrap();
    let before = ex.ground_truth().attacker_order_uuids.len();
    let s = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Upbit), ex.clone())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let during = ex.ground_truth().attacker_order_uuids.len();
    assert!(during > before, "live attacker placed orders");
    let leaked = ex.ground_truth().leaked_access_key;
    let r = reqwest::Client::new()
        .post(format!("{}/_mock/keys/{leaked}/revoke", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = ex.ground_truth();
    assert!(after.revoked_at.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        ex.ground_truth().attacker_order_uuids.len(),
        after.attacker_order_uuids.len(),
        "stopped after revocation"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_scenarios_withdrawal_noisy_contra() {
    let s = start("withdrawal", opts()).await;
    let gt = s.state.ground_truth();
    assert_eq!(gt.attacker_withdrawal_uuids.len(), 1);
    let ro = Api::new(&s, "readonly");
    let ws = ro.get("/v1/withdraws", "currency=BTC").await.json();
    let fresh = "bc1qattackerfresh9999999999999999999999";
    assert_eq!(ws.as_array().unwrap().len(), 4);
    let addrs = ro.get("/v1/withdraws/coin_addresses", "").await.json();
    assert!(addrs
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["withdraw_address"] == fresh));
    let bot = Api::new(&s, "bot");
    let r = bot
        .post(
            "/v1/withdraws/coin",
            json!({"currency":"BTC","net_type":"BTC","amount":"0.001","address":"bc1qnotallowed"}),
        )
        .await;
    assert_eq!(r.err_name(), "withdraw_address_not_registered");
    s.shutdown().await.unwrap();

    let s = start("noisy", opts()).await;
    let gt = s.state.ground_truth();
    assert_eq!(gt.user_manual_order_uuids.len(), 14);
    let log = s.state.bot_log_csv();
    for u in &gt.user_manual_order_uuids {
        assert!(!log.contains(&u.to_string()));
        assert!(!gt.attacker_order_uuids.contains(u));
    }
    s.shutdown().await.unwrap();

    let s = start("contra", opts()).await;
    assert_eq!(s.state.ground_truth().attacker_order_uuids.len(), 20);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn faults_are_injected_and_logged() {
    let s = start("blank", opts()).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_mock/faults", s.url))
        .json(
            &json!([{"path": "/v1/accounts", "error_rate": 1.0, "count": 1},
                      {"path": "/v1/api_keys", "truncate_rate": 1.0, "count": 1}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bot = Api::new(&s, "bot");
    let r = bot.get("/v1/accounts", "").await;
    assert_eq!((r.status, r.err_name().as_str()), (500, "server_error"));
    assert_eq!(bot.get("/v1/accounts", "").await.status, 200);
    let r = bot.get("/v1/api_keys", "").await;
    assert!(serde_json::from_str::<Value>(&r.body).is_err(), "truncated");
    // Dropped connection, timeout, 429 storm.
    s.state.set_faults(vec![
        mock::faults::FaultRule {
            path: "/v1/accounts".into(),
            drop_rate: 1.0,
            count: Some(1),
            ..Default::default()
        },
        mock::faults::FaultRule {
            path: "/v1/api_keys".into(),
            timeout_rate: 1.0,
            count: Some(1),
            ..Default::default()
        },
    ]);
    let t = token(&bot.ak, &bot.sk, None, Alg::Hs256, None);
    let dropped = async {
        let r = bot
            .http
            .get(format!("{}/v1/accounts", bot.base))
            .bearer_auth(t)
            .send()
            .await?;
        r.bytes().await
    };
    assert!(dropped.await.is_err(), "connection dropped");
    let t = token(&bot.ak, &bot.sk, None, Alg::Hs256, None);
    let timed_out = bot
        .http
        .get(format!("{}/v1/api_keys", bot.base))
        .bearer_auth(t)
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    s.state.set_faults(vec![mock::faults::FaultRule {
        path: "*".into(),
        storm_secs: 5,
        count: Some(1),
        ..Default::default()
    }]);
    assert_eq!(bot.get("/v1/accounts", "").await.status, 429);
    assert_eq!(bot.get("/v1/accounts", "").await.status, 429, "storm lasts");
    let log = s.state.requests();
    assert_eq!(log.iter().filter(|r| r.fault.is_some()).count(), 5);
    // Shutdown releases the request held by the timeout fault.
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn repeat_page_fault_repeats_the_previous_pages_items() {
    let s = start("pump-and-dump", opts()).await;
    let ro = Api::new(&s, "readonly");
    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ids(ro.get("/v1/orders/closed", "limit=5").await.json());
    assert_eq!(first.len(), 5);
    s.state.set_faults(vec![mock::faults::FaultRule {
        path: "/v1/orders/closed".into(),
        repeat_page_rate: 1.0,
        count: Some(1),
        ..Default::default()
    }]);
    let second = ids(ro.get("/v1/orders/closed", "limit=5").await.json());
    assert_eq!(
        second[..3],
        first[2..],
        "previous page's last items come first"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn drill_api_can_be_disabled() {
    let s = start(
        "blank",
        MockOptions {
            drill_api: false,
            ..opts()
        },
    )
    .await;
    let ak = s.state.key("bot").unwrap().access_key.clone();
    let r = reqwest::Client::new()
        .post(format!("{}/_mock/keys/{ak}/revoke", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        Api::new(&s, "bot").get("/v1/accounts", "").await.status,
        200,
        "key still works"
    );
    assert_eq!(
        public_json(&s, "/_mock/ground-truth").await["error"]["name"],
        "not_found"
    );
    s.shutdown().await.unwrap();
}

#[test]
fn neutral_builtins_match_their_legacy_spelling() {
    // The built-in scenarios are written with base assets, `*_quote` amounts and permission
    // classes; the same scenario in the older spelling (`code: KRW-…`, `*_krw`, Upbit scope
    // names, `night_kst`) must give the same world.
    let legacy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mock/legacy-pump-and-dump.yaml"
    );
    let build = |sc| Venue::new(&Upbit, sc, opts()).unwrap();
    let old = build(mock::scenario::load(legacy, None).unwrap());
    let new = build(mock::scenario::load("pump-and-dump", None).unwrap());
    assert_eq!(old.bot_log_csv(), new.bot_log_csv());
    let json = |v: &Venue| {
        (
            serde_json::to_string(&v.ground_truth()).unwrap(),
            serde_json::to_string(v.keys()).unwrap(),
        )
    };
    assert_eq!(json(&old), json(&new));
    let gt = new.ground_truth();
    assert_eq!(gt.loss_currency, "KRW");
    assert!(gt.attacker_order_uuids.len() >= 14);
    assert_eq!(
        new.key("bot").unwrap().scopes,
        [
            "view_account",
            "view_orders",
            "make_orders",
            "view_withdrawals",
            "view_deposits"
        ]
    );
}

const DOLLAR_SCENARIO: &str = r#"name: dollars
seed: 4
now: 2026-11-20T18:30:00Z
quote: USDT
markets:
  - { base: BTC, name: Bitcoin, price: "96000", depth: { level_quote: "20000" } }
  - { base: XRP, name: XRP, names: { ko: 리플 }, price: "2.2" }
accounts:
  - { name: victim, balances: { USDT: "10000", BTC: "0.5" } }
keys:
  - { account: victim, label: bot, permissions: [read, trade] }
bot: { account: victim, key: bot, markets: [BTC, XRP], days: 2, orders_per_day: 20, order_quote: ["40", "200"] }
"#;

#[tokio::test]
async fn a_scenario_in_dollars_is_served_in_won() {
    let s = start_yaml(DOLLAR_SCENARIO, opts()).await;
    // 1 USDT = 1,400 KRW, prices snapped to five significant digits, amounts to whole won.
    let btc = s.state.markets.get("KRW-BTC").expect("KRW-BTC").1;
    assert_eq!(btc.price, Decimal::from(134_400_000));
    assert_eq!(btc.depth.level_value, Decimal::from(28_000_000));
    let xrp = s.state.markets.get("KRW-XRP").expect("KRW-XRP").1;
    assert_eq!(xrp.price, Decimal::from(3080));
    let markets = public_json(&s, "/v1/market/all").await;
    assert_eq!(markets[0]["market"], "KRW-BTC");
    assert_eq!(
        markets[0]["korean_name"], "Bitcoin",
        "no Korean name: the English one"
    );
    assert_eq!(markets[1]["korean_name"], "리플");
    let bot = Api::new(&s, "bot");
    let accounts = bot.get("/v1/accounts", "").await.json();
    let krw = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "KRW")
        .expect("the dollar balance became won");
    assert_eq!(krw["balance"], "14000000");
    assert_eq!(s.state.ground_truth().loss_currency, "KRW");
    // The bot's orders are sized in won and clear Upbit's 5,000 KRW minimum.
    let closed = bot
        .get("/v1/orders/closed", "limit=1000&state=done")
        .await
        .json();
    for o in closed.as_array().unwrap() {
        let value: Decimal = o["executed_funds"].as_str().unwrap().parse().unwrap();
        assert!(value >= Decimal::from(5000), "{o}");
    }
    s.shutdown().await.unwrap();
}

#[test]
fn scenarios_the_facade_cannot_take_are_refused_with_file_line_column() {
    let refuse = |text: &str, needle: &str, says: &str| {
        let sc = mock::scenario::parse("f.yaml", text, None).expect("parses");
        let e = Venue::new(&Upbit, sc, opts())
            .err()
            .expect("refused")
            .to_string();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert!(e.starts_with(&format!("f.yaml:{line}:")), "{e}");
        assert!(e.contains(says), "{e}");
    };
    refuse(
        &DOLLAR_SCENARIO.replace("quote: USDT", "quote: JPY"),
        "quote: JPY",
        "no rate from JPY",
    );
    refuse(
        &DOLLAR_SCENARIO.replace("permissions: [read, trade]", "scopes: [trade_spot]"),
        "trade_spot",
        "unknown scope `trade_spot` for upbit",
    );
    refuse(
        &DOLLAR_SCENARIO.replace(
            "label: bot, permissions",
            "label: bot, key_type: ed25519, permissions",
        ),
        "key_type: ed25519",
        "the upbit mock issues no ed25519 keys",
    );
}

#[test]
fn generated_fills_are_numbered_in_time_order() {
    let sc = mock::scenario::load("pump-and-dump", None).unwrap();
    let ex = Venue::new(&Upbit, sc, opts()).unwrap();
    let w = ex.world();
    let mut fills: Vec<(DateTime<Utc>, u64)> = w
        .orders
        .iter()
        .flat_map(|o| o.trades.iter().map(|f| (f.created_at, f.id)))
        .collect();
    assert!(fills.len() > 1000, "{}", fills.len());
    fills.sort();
    let ids: Vec<u64> = fills.iter().map(|f| f.1).collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "1, 2, 3, … in time order");
    assert_eq!(
        w.trade_seq,
        ids.len() as u64,
        "the next trade continues from there"
    );
}

/// A closed-orders page, written into one buffer from the merged index walk, is byte for
/// byte the orders a scan of the whole store finds (sorted, cut), each rendered alone and
/// joined: cold (nothing kept) and warm (copied from what the first call kept), for both
/// directions, a state, a market and a window.
#[tokio::test]
async fn closed_order_pages_are_the_scanned_orders_rendered_one_by_one() {
    use respond::mock::upbit::wire;
    use respond::mock::venue::state::OrderState;
    let s = start("pump-and-dump", opts()).await;
    let ro = Api::new(&s, "readonly");
    let account = s.state.key("readonly").unwrap().account.clone();
    let now = s.state.now();
    let market = s.state.world().orders[0].market.symbol.clone();
    // Windows given explicitly, in whole seconds (the mock's clock may move meanwhile).
    let at = |days: i64| {
        let t = now - chrono::Duration::days(days);
        t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos()))
    };
    let window = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "start_time={}&end_time={}",
            from.timestamp(),
            to.timestamp()
        )
    };
    let week = (at(7), at(0));
    let queries = [
        ("limit=1000", None, None, true, week),
        ("limit=7&order_by=asc", None, None, false, week),
        (
            "states[]=cancel&limit=300",
            Some(OrderState::Cancelled),
            None,
            true,
            week,
        ),
        (
            "state=done&limit=1000",
            Some(OrderState::Done),
            Some(market),
            true,
            week,
        ),
        ("limit=1000&order_by=asc", None, None, false, (at(3), at(1))),
    ];
    for (q, state, market, newest, (from, to)) in queries {
        let limit: usize = q
            .split("limit=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut q = format!("{q}&{}", window(from, to));
        if let Some(m) = &market {
            q = format!("{q}&market={m}");
        }
        let expected = {
            let w = s.state.world();
            let mut found: Vec<(DateTime<Utc>, usize)> = w
                .orders
                .iter()
                .enumerate()
                .filter(|(_, o)| o.account == account && o.state != OrderState::Open)
                .filter(|(_, o)| state.map_or(true, |st| o.state == st))
                .filter(|(_, o)| market.as_ref().map_or(true, |m| &o.market.symbol == m))
                .filter(|(_, o)| o.created_at >= from && o.created_at <= to)
                .map(|(i, o)| (o.created_at, i))
                .collect();
            found.sort_unstable();
            if newest {
                found.reverse();
            }
            let items: Vec<String> = found
                .iter()
                .take(limit)
                .map(|&(_, i)| wire::order_json(&w.orders[i], false))
                .collect();
            assert!(!items.is_empty(), "{q}: a query that finds orders");
            respond::mock::http::json_array(&items)
        };
        s.state.world().fragments.borrow_mut().clear();
        let cold = ro.get("/v1/orders/closed", &q).await;
        assert_eq!(cold.status, 200, "{q}: {}", cold.body);
        assert!(cold.body == expected, "{q}: cold page differs");
        let warm = ro.get("/v1/orders/closed", &q).await;
        assert!(warm.body == expected, "{q}: warm page differs");
    }
    s.shutdown().await.unwrap();
}
