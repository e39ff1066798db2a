//! End-to-end tests of the Coinbase mock over real loopback HTTP, with CDP JWTs signed here
//! (ring: ES256 with the raw `r‖s`, EdDSA), independent from the crate's client and from the
//! mock's own verifier.

use std::sync::Arc;

use base64::Engine as _;
use respond::mock::coinbase::Coinbase;
use respond::mock::scenario::KeySpec;
use respond::mock::venue::keys;
use respond::mock::{self, KeyType, MockServer, Permission, Venue};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::support::http::{public, Resp};
use crate::support::mock::opts;

/// Scenario `blank` plus an Ed25519 key of the victim's (`ed`, view and trade).
async fn start() -> MockServer {
    let mut sc = mock::scenario::load("blank", None).unwrap();
    sc.keys.push(KeySpec {
        account: "victim".into(),
        label: "ed".into(),
        access_key: None,
        secret_key: None,
        passphrase: None,
        key_type: KeyType::Ed25519,
        permissions: vec![Permission::Read, Permission::Trade],
        scopes: vec![],
        allowed_ips: vec![],
        expires_in_days: 300,
    });
    let ex = Venue::new(&Coinbase, sc, opts()).expect("the scenario fits the coinbase mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Coinbase), ex)
        .await
        .expect("binds")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Es(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A CDP caller: the key name and its private key.
struct Cdp {
    base: String,
    host: String,
    http: reqwest::Client,
    name: String,
    pair: Pair,
    clock: Arc<Venue>,
}

/// What a token says, beyond the defaults (a fresh two-minute token for the request).
#[derive(Default, Clone)]
struct Claims {
    /// Seconds added to `nbf` and `exp`.
    shift: i64,
    /// Lifetime (default 120).
    life: Option<i64>,
    /// The `uri` claim instead of the request's.
    uri: Option<String>,
    /// The key name put in `kid` and `sub` instead of the caller's.
    name: Option<String>,
}

impl Cdp {
    fn new(s: &MockServer, label: &str) -> Cdp {
        let k = s.state.key(label).expect("key exists");
        let pair = match k.key_type {
            KeyType::Es256 => {
                let scalar = keys::p256_scalar(&k.secret_key).expect("a P-256 SEC1 PEM");
                let point = keys::p256_public_point(&scalar).unwrap();
                Pair::Es(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        &ECDSA_P256_SHA256_FIXED_SIGNING,
                        &scalar,
                        &point,
                        &ring::rand::SystemRandom::new(),
                    )
                    .unwrap(),
                )
            }
            KeyType::Ed25519 => Pair::Ed(
                Ed25519KeyPair::from_seed_unchecked(&keys::ed25519_seed(&k.secret_key).unwrap())
                    .unwrap(),
            ),
            KeyType::Hmac => panic!("Coinbase keys are key pairs"),
        };
        Cdp {
            base: s.url.clone(),
            host: s.url.trim_start_matches("http://").to_string(),
            http: reqwest::Client::new(),
            name: k.access_key.clone(),
            pair,
            clock: s.state.clone(),
        }
    }

    /// A token for `method path` (no query) as `c` says.
    fn token(&self, method: &str, path: &str, c: &Claims) -> String {
        let name = c.name.clone().unwrap_or_else(|| self.name.clone());
        let alg = match self.pair {
            Pair::Es(_) => "ES256",
            Pair::Ed(_) => "EdDSA",
        };
        let nonce: [u8; 16] = rand::random();
        let header = json!({"alg": alg, "kid": name, "nonce": hex::encode(nonce), "typ": "JWT"});
        let nbf = self.clock.now().timestamp() + c.shift;
        let uri = c
            .uri
            .clone()
            .unwrap_or_else(|| format!("{method} {}{path}", self.host));
        let claims = json!({"sub": name, "iss": "cdp", "nbf": nbf,
            "exp": nbf + c.life.unwrap_or(120), "uri": uri});
        let signing = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = match &self.pair {
            Pair::Es(p) => p
                .sign(&ring::rand::SystemRandom::new(), signing.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Pair::Ed(p) => p.sign(signing.as_bytes()).as_ref().to_vec(),
        };
        format!("{signing}.{}", b64(&sig))
    }

    async fn call(&self, method: &str, path_q: &str, body: Option<Value>, c: &Claims) -> Resp {
        let path = path_q.split('?').next().unwrap();
        let token = self.token(method, path, c);
        let url = format!("{}{path_q}", self.base);
        let rb = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        }
        .bearer_auth(token);
        let rb = match body {
            Some(b) => rb.json(&b),
            None => rb,
        };
        Resp::read(rb.send().await.unwrap()).await
    }

    async fn get(&self, path_q: &str) -> Resp {
        self.call("GET", path_q, None, &Claims::default()).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body), &Claims::default())
            .await
    }

    /// A limit buy far below the market (it rests): its order id.
    async fn rest_buy(&self, n: usize) -> String {
        let r = self
            .post(
                "/api/v3/brokerage/orders",
                json!({"client_order_id": format!("t-{n}"), "product_id": "BTC-USD", "side": "BUY",
                    "order_configuration": {"limit_limit_gtc": {"base_size": "0.0001",
                        "limit_price": "50000", "post_only": false}}}),
            )
            .await;
        let v = ok(&r);
        assert_eq!(v["success"], true, "{v}");
        v["success_response"]["order_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// The JSON of a 200.
fn ok(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Coinbase's 401: plain text, not saying why.
fn unauthorized(r: &Resp) {
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, "Unauthorized"),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_and_ed25519_tokens_are_accepted_with_rate_limit_headers() {
    let s = start().await;
    for label in ["bot", "ed"] {
        let api = Cdp::new(&s, label);
        let r = api.get("/api/v3/brokerage/key_permissions").await;
        let v = ok(&r);
        assert_eq!(
            (v["can_view"].clone(), v["can_trade"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(v["can_transfer"], json!(label == "bot"), "{v}");
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("30"));
        assert!(
            r.header("x-ratelimit-remaining").is_some() && r.header("x-ratelimit-reset").is_some()
        );
        // The query is not part of the uri claim.
        let v = ok(&api.get("/api/v3/brokerage/accounts?limit=250").await);
        let btc = v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["currency"] == "BTC")
            .cloned()
            .unwrap();
        assert_eq!(btc["available_balance"]["value"], "0.12");
    }
    // A token with the scheme in its uri (as ccxt writes it against http) is the same.
    let api = Cdp::new(&s, "bot");
    let c = Claims {
        uri: Some(format!(
            "GET http://{}/api/v3/brokerage/key_permissions",
            api.host
        )),
        ..Claims::default()
    };
    let r = api
        .call("GET", "/api/v3/brokerage/key_permissions", None, &c)
        .await;
    ok(&r);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_a_bare_401_and_the_reason_logged() {
    let s = start().await;
    let bot = Cdp::new(&s, "bot");
    let path = "/api/v3/brokerage/accounts";
    let name = bot.name.clone();
    let org = name.rsplit_once('/').unwrap().0.to_string();
    let cases: Vec<(&str, Cdp, Claims)> = vec![
        (
            "unknown key",
            Cdp::new(&s, "bot"),
            Claims {
                name: Some(format!("{org}/00000000-0000-4000-8000-000000000000")),
                ..Claims::default()
            },
        ),
        (
            // The attacker's private key under the bot's name.
            "bad signature",
            Cdp {
                name: name.clone(),
                ..Cdp::new(&s, "attacker")
            },
            Claims::default(),
        ),
        (
            "expired",
            Cdp::new(&s, "bot"),
            Claims {
                shift: -300,
                ..Claims::default()
            },
        ),
        (
            "not yet valid",
            Cdp::new(&s, "bot"),
            Claims {
                shift: 300,
                ..Claims::default()
            },
        ),
        (
            "lifetime over 120 s",
            Cdp::new(&s, "bot"),
            Claims {
                life: Some(600),
                ..Claims::default()
            },
        ),
        (
            "uri does not name this request",
            Cdp::new(&s, "bot"),
            Claims {
                uri: Some(format!("GET {}/api/v3/brokerage/key_permissions", bot.host)),
                ..Claims::default()
            },
        ),
        (
            "uri does not name this request",
            Cdp::new(&s, "bot"),
            Claims {
                uri: Some(format!("POST {}{path}", bot.host)),
                ..Claims::default()
            },
        ),
        (
            "uri does not name this request",
            Cdp::new(&s, "bot"),
            Claims {
                uri: Some(format!("GET api.coinbase.com{path}")),
                ..Claims::default()
            },
        ),
    ];
    for (why, api, claims) in &cases {
        let before = s.state.requests().len();
        unauthorized(&api.call("GET", path, None, claims).await);
        let log = s.state.requests();
        let last = &log[before..];
        assert!(
            last.iter()
                .any(|r| r.status == 401
                    && r.error.as_deref() == Some(&format!("unauthorized: {why}"))),
            "{why}: {last:?}"
        );
    }
    // No token, and a token that is not a JWT.
    let r = Resp::read(reqwest::get(format!("{}{path}", s.url)).await.unwrap()).await;
    unauthorized(&r);
    let r = reqwest::Client::new()
        .get(format!("{}{path}", s.url))
        .bearer_auth("a.b.c")
        .send()
        .await
        .unwrap();
    unauthorized(&Resp::read(r).await);
    // The genuine token works once: the same token again is a replay.
    let token = bot.token("GET", path, &Claims::default());
    let send = || async {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", s.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        Resp::read(r).await
    };
    ok(&send().await);
    unauthorized(&send().await);
    assert!(s
        .state
        .requests()
        .iter()
        .any(|r| r.error.as_deref() == Some("unauthorized: nonce reused")));
    ok(&bot.get(path).await);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_only_key_reads_but_is_refused_trading() {
    let s = start().await;
    let ro = Cdp::new(&s, "readonly");
    let v = ok(&ro.get("/api/v3/brokerage/key_permissions").await);
    assert_eq!(
        (
            v["can_view"].clone(),
            v["can_trade"].clone(),
            v["can_transfer"].clone()
        ),
        (json!(true), json!(false), json!(false))
    );
    let r = ro
        .post(
            "/api/v3/brokerage/orders",
            json!({"client_order_id": "ro-1", "product_id": "BTC-USD", "side": "BUY",
                "order_configuration": {"market_market_ioc": {"quote_size": "10"}}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"], "PERMISSION_DENIED");
    assert_eq!(v["error_details"], "Missing required scopes");
    let r = ro
        .post(
            "/api/v3/brokerage/orders/batch_cancel",
            json!({"order_ids": ["x"]}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(s
        .state
        .world()
        .orders
        .iter()
        .all(|o| o.identifier.as_deref() != Some("ro-1")));
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_thirty_a_second_is_429_with_its_headers() {
    let s = start().await;
    let ro = Arc::new(Cdp::new(&s, "readonly"));
    // Sixty at once: more than thirty land within one second however loaded the machine.
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let ro = ro.clone();
        tasks.push(tokio::spawn(async move {
            ro.get("/api/v3/brokerage/key_permissions").await
        }));
    }
    let mut refused = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 429 {
            refused.push(r);
        } else {
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    let r = refused.first().expect("some requests were over the budget");
    assert_eq!(r.json()["error"], "resource_exhausted", "{}", r.body);
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("30"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset >= s.state.now().timestamp() - 1, "{reset}");
    assert!(r.header("retry-after").is_some());
    // The same user's other keys share the budget; the App API says it its own way.
    let bot = Cdp::new(&s, "bot");
    let r = bot.get("/v2/accounts").await;
    if r.status == 429 {
        assert_eq!(
            r.json()["errors"][0]["id"],
            "rate_limit_exceeded",
            "{}",
            r.body
        );
    }
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_cancel_takes_at_most_100_ids_and_answers_per_order() {
    let s = start().await;
    let bot = Cdp::new(&s, "bot");
    let a = bot.rest_buy(1).await;
    let b = bot.rest_buy(2).await;
    let ids: Vec<String> = (0..101).map(|_| a.clone()).collect();
    let r = bot
        .post(
            "/api/v3/brokerage/orders/batch_cancel",
            json!({"order_ids": ids}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "INVALID_ARGUMENT");
    assert_eq!(
        s.state
            .world()
            .count_in_state(respond::mock::venue::state::OrderState::Open),
        2
    );
    let stranger = "00000000-0000-4000-8000-000000000000";
    let v = ok(&bot
        .post(
            "/api/v3/brokerage/orders/batch_cancel",
            json!({"order_ids": [a, stranger, b, a]}),
        )
        .await);
    let res = v["results"].as_array().unwrap();
    let got: Vec<(bool, &str)> = res
        .iter()
        .map(|x| {
            (
                x["success"].as_bool().unwrap(),
                x["failure_reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (true, "UNKNOWN_CANCEL_FAILURE_REASON"),
            (false, "UNKNOWN_CANCEL_ORDER"),
            (true, "UNKNOWN_CANCEL_FAILURE_REASON"),
            (false, "INVALID_CANCEL_REQUEST"),
        ]
    );
    let v = ok(&bot
        .get(&format!("/api/v3/brokerage/orders/historical/{a}"))
        .await);
    assert_eq!(v["order"]["status"], "CANCELLED");
    let v = ok(&bot
        .get("/api/v3/brokerage/orders/historical/batch?order_status=OPEN")
        .await);
    assert_eq!(v["orders"], json!([]));
    // Another user's order cannot be cancelled.
    let att = Cdp::new(&s, "attacker");
    let c = bot.rest_buy(3).await;
    let v = ok(&att
        .post(
            "/api/v3/brokerage/orders/batch_cancel",
            json!({"order_ids": [c]}),
        )
        .await);
    assert_eq!(v["results"][0]["success"], false);
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_fills_page_by_cursor_without_gaps_or_repeats() {
    let s = start().await;
    let bot = Cdp::new(&s, "bot");
    let mut placed = Vec::new();
    for n in 0..7 {
        placed.push(bot.rest_buy(n).await);
    }
    for n in 0..3 {
        let r = bot
            .post(
                "/api/v3/brokerage/orders",
                json!({"client_order_id": format!("m-{n}"), "product_id": "TOKI-USD",
                    "side": "BUY", "order_configuration": {"market_market_ioc": {"quote_size": "5"}}}),
            )
            .await;
        assert_eq!(ok(&r)["success"], true, "{}", r.body);
    }
    // Open orders, three a page.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let q = if cursor.is_empty() {
            String::new()
        } else {
            format!("&cursor={cursor}")
        };
        let v = ok(&bot
            .get(&format!(
                "/api/v3/brokerage/orders/historical/batch?order_status=OPEN&limit=3{q}"
            ))
            .await);
        pages += 1;
        for o in v["orders"].as_array().unwrap() {
            assert_eq!(o["status"], "OPEN");
            seen.push(o["order_id"].as_str().unwrap().to_string());
        }
        cursor = v["cursor"].as_str().unwrap().to_string();
        assert_eq!(v["has_next"].as_bool().unwrap(), !cursor.is_empty());
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let mut want = placed.clone();
    want.reverse(); // newest first
    assert_eq!(seen, want);
    // Fills one a page equal the whole list.
    let all = ok(&bot
        .get("/api/v3/brokerage/orders/historical/fills?limit=1000")
        .await);
    let all: Vec<String> = all["fills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["entry_id"].as_str().unwrap().to_string())
        .collect();
    assert!(all.len() >= 3, "{all:?}");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let v = ok(&bot
            .get(&format!(
                "/api/v3/brokerage/orders/historical/fills?limit=1&cursor={cursor}"
            ))
            .await);
        paged.extend(
            v["fills"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["entry_id"].as_str().unwrap().to_string()),
        );
        cursor = v["cursor"].as_str().unwrap().to_string();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(paged, all);
    let r = bot
        .get("/api/v3/brokerage/orders/historical/batch?cursor=not-ours")
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The filled market orders are FILLED, with their fills.
    let v = ok(&bot
        .get("/api/v3/brokerage/orders/historical/batch?order_status=FILLED&product_ids=TOKI-USD")
        .await);
    assert_eq!(v["orders"].as_array().unwrap().len(), 3, "{v}");
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_from_then_on() {
    let s = start().await;
    let bot = Cdp::new(&s, "bot");
    ok(&bot.get("/api/v3/brokerage/key_permissions").await);
    let r = reqwest::Client::new()
        .post(format!("{}/_mock/keys/{}/revoke", s.url, bot.name))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    unauthorized(&bot.get("/api/v3/brokerage/key_permissions").await);
    unauthorized(&bot.get("/v2/accounts").await);
    // A key name percent-encoded in the drill path is the same key.
    let ro = Cdp::new(&s, "readonly");
    ok(&ro.get("/v2/accounts").await);
    let r = reqwest::Client::new()
        .post(format!(
            "{}/_mock/keys/{}/revoke",
            s.url,
            ro.name.replace('/', "%2F")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    unauthorized(&ro.get("/v2/accounts").await);
    assert!(s
        .state
        .requests()
        .iter()
        .any(|r| r.error.as_deref() == Some("unauthorized: key deleted")));
    // Public endpoints answer without a key.
    let r = public(&s, "/api/v3/brokerage/market/products").await;
    assert_eq!(r.status, 200);
    assert!(r.json()["products"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["product_id"] == "BTC-USD"));
    s.shutdown().await.unwrap();
}

#[test]
fn every_builtin_scenario_runs_in_usd_markets_with_cdp_keys() {
    for name in mock::scenario::builtin_names() {
        let sc = mock::scenario::load(name, None).unwrap();
        let ex = Venue::new(&Coinbase, sc, opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!ex.markets.list.is_empty(), "{name}");
        for m in &ex.markets.list {
            assert_eq!(m.market.quote, "USD", "{name}");
            assert_eq!(m.market.symbol, format!("{}-USD", m.market.base), "{name}");
            assert!(
                m.price > rust_decimal::Decimal::ZERO,
                "{name}: {}",
                m.market.symbol
            );
        }
        for k in ex.keys() {
            assert_eq!(k.key_type, KeyType::Es256, "{name}: {}", k.label);
            assert!(k.access_key.starts_with("organizations/"), "{name}");
            assert!(keys::p256_scalar(&k.secret_key).is_some(), "{name}");
        }
    }
    // The thin coins stay: blank's TOKI (37 KRW) is a USD market under a dollar.
    let ex = Venue::new(
        &Coinbase,
        mock::scenario::load("blank", None).unwrap(),
        opts(),
    )
    .unwrap();
    let toki = ex.markets.get("TOKI-USD").unwrap().1;
    assert!(toki.price < rust_decimal::Decimal::ONE, "{}", toki.price);
}

#[test]
fn an_es256_secret_key_must_be_a_p256_sec1_pem() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/blank.yaml"),
    )
    .unwrap();
    let pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2choAoGCCqGSM49\nAwEHoUQDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Z5A/4QCLi8\nmaQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n-----END EC PRIVATE KEY-----\n";
    let with = |secret: &str| {
        let p = dir.path().join("s.yaml");
        let line = format!(
            "  - {{ account: victim, label: cdp, key_type: es256, access_key: \"organizations/o/apiKeys/k\", secret_key: {}, permissions: [read] }}\n",
            serde_json::to_string(secret).unwrap()
        );
        std::fs::write(&p, format!("{base}{line}")).unwrap();
        mock::scenario::load(p.to_str().unwrap(), None)
    };
    let e = with("not a key").unwrap_err().to_string();
    assert!(e.contains("es256 secret_key must be a P-256"), "{e}");
    assert!(e.contains("s.yaml:"), "file:line:col: {e}");
    let sc = with(pem).unwrap();
    let ex = Venue::new(&Coinbase, sc, opts()).unwrap();
    let k = ex.key("cdp").unwrap();
    assert_eq!(k.access_key, "organizations/o/apiKeys/k");
    assert_eq!(k.secret_key, pem);
    // Another exchange refuses a P-256 key at its line.
    let sc = with(pem).unwrap();
    let e = Venue::new(&respond::mock::bybit::Bybit, sc, opts())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("issues no es256 keys"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_are_sends_in_the_wallets_transactions_paged_by_starting_after() {
    let sc = mock::scenario::load("withdrawal", None).unwrap();
    let ex = Venue::new(&Coinbase, sc, opts()).unwrap();
    let s = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Coinbase), ex)
        .await
        .unwrap();
    let bot = Cdp::new(&s, "bot");
    let v = ok(&bot.get("/api/v3/brokerage/key_permissions").await);
    assert_eq!(v["can_transfer"], true, "a withdraw key may transfer: {v}");
    let want: Vec<String> = {
        let victim = s.state.ground_truth().victim_account;
        let w = s.state.world();
        w.withdrawals
            .iter()
            .filter(|x| x.account == victim && x.currency == "BTC")
            .map(|x| x.uuid.to_string())
            .collect()
    };
    assert!(want.len() >= 2, "{want:?}");
    let accounts = ok(&bot.get("/api/v3/brokerage/accounts?limit=250").await);
    let btc = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "BTC")
        .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    // One a page, following pagination.next_starting_after.
    let path = format!("/v2/accounts/{btc}/transactions");
    let mut got = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("{path}?limit=1&starting_after={a}"),
            None => format!("{path}?limit=1"),
        };
        let v = ok(&bot.get(&q).await);
        for t in v["data"].as_array().unwrap() {
            if t["type"] == "send" {
                assert!(
                    t["amount"]["amount"].as_str().unwrap().starts_with('-'),
                    "{t}"
                );
                assert!(
                    t["to"]["address"].as_str().is_some_and(|a| !a.is_empty()),
                    "{t}"
                );
                got.push(t["id"].as_str().unwrap().to_string());
            }
        }
        match v["pagination"]["next_starting_after"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let mut a = got.clone();
    a.sort();
    let mut b = want.clone();
    b.sort();
    assert_eq!(a, b);
    // Another user's wallet is not found.
    let att = Cdp::new(&s, "attacker");
    let r = att.get(&path).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["errors"][0]["id"], "not_found");
    s.shutdown().await.unwrap();
}

/// As at Coinbase, `OPEN` cannot be combined with other statuses in one listing (400
/// `INVALID_ARGUMENT`); `PENDING`, `QUEUED` and `CANCEL_QUEUED` together are a valid filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_cannot_be_combined_with_other_statuses() {
    let s = start().await;
    let bot = Cdp::new(&s, "bot");
    for q in [
        "order_status=OPEN&order_status=PENDING",
        "order_status=OPEN,QUEUED",
    ] {
        let r = bot
            .get(&format!("/api/v3/brokerage/orders/historical/batch?{q}"))
            .await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.json()["error"], "INVALID_ARGUMENT", "{q}");
    }
    let v = ok(&bot
        .get("/api/v3/brokerage/orders/historical/batch?order_status=PENDING&order_status=QUEUED&order_status=CANCEL_QUEUED")
        .await);
    assert_eq!(v["orders"], json!([]));
    s.shutdown().await.unwrap();
}

/// History pages read again are the same bytes (the second read copies the text kept for
/// closed orders), paged by cursor too.
#[tokio::test]
async fn history_pages_read_again_are_the_same_bytes() {
    let sc = mock::scenario::load("pump-and-dump", None).unwrap();
    let ex = Venue::new(&Coinbase, sc, opts()).expect("the scenario fits the coinbase mock");
    let s = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Coinbase), ex)
        .await
        .expect("binds");
    let ro = Cdp::new(&s, "readonly");
    for (path, list) in [
        ("/api/v3/brokerage/orders/historical/batch", "orders"),
        ("/api/v3/brokerage/orders/historical/fills", "fills"),
    ] {
        let mut q = "limit=25".to_string();
        for _ in 0..3 {
            let first = ro.get(&format!("{path}?{q}")).await;
            let again = ro.get(&format!("{path}?{q}")).await;
            assert_eq!(first.body, again.body, "{path}?{q}");
            let v = ok(&first);
            assert_eq!(v[list].as_array().unwrap().len(), 25, "{path}: a full page");
            q = format!("limit=25&cursor={}", v["cursor"].as_str().unwrap());
        }
    }
    s.shutdown().await.unwrap();
}
