//! The mock's costs, measured (not timed in tests). Run manually:
//! `cargo bench --bench mock_throughput`; `MOCK_BENCH_CASES=throughput,limited,closed` picks
//! cases.
//!
//! - `throughput`: signed private requests per second the mock sustains on loopback, and its
//!   memory before, during and after the run (`MOCK_BENCH_REQUESTS=1000000` for the long memory
//!   run, `MOCK_BENCH_CONCURRENCY=64`), one row per façade: Upbit (`GET /v1/orders/chance`, a
//!   JWT with a `query_hash`), Binance (`GET /api/v3/openOrders?symbol=BTCUSDT`, an HMAC
//!   hex signature, `timestamp` and `recvWindow`), Bybit (`GET /v5/order/realtime?
//!   category=spot&symbol=BTCUSDT`, `X-BAPI-*` headers with a hex HMAC over timestamp, key,
//!   window and query; a `retCode` other than 0 counts as failed, as Bybit answers errors
//!   with HTTP 200), Coinbase (`GET /api/v3/brokerage/orders/historical/batch?
//!   order_status=OPEN&product_ids=BTC-USD`, a fresh ES256 JWT per request, verified with the
//!   key's P-256 public key) and KuCoin
//!   (`GET /api/v1/hf/orders/active?symbol=BTC-USDT`, `KC-API-*` headers with a base64 HMAC over
//!   timestamp, method, path and query, and the passphrase HMAC-signed).
//! - `limited`: the same run with rate limits ON, as `respond mock serve` runs: each façade's
//!   own budgets (Upbit's per-second groups with its 418 block, Binance's request weight per
//!   minute, Bybit's IP limit (HTTP 403) and per-endpoint limit (`retCode` 10006), KuCoin's
//!   weight quota,
//!   Coinbase's requests per second). The clients do not back off: a refused request is
//!   counted and the next goes out at once, so the row is what the mock spends serving and
//!   refusing a client that ignores its limits (requests per server-CPU-second, all answers).
//! - `closed`: per façade (`MOCK_BENCH_EXCHANGES=upbit,binance,...` picks), with
//!   `MOCK_BENCH_STORED_ORDERS` (default 1,000,000) orders of one account stored: the CPU of
//!   the listing itself (the order and fill index walks, in-process) and the server CPU per
//!   HTTP call (`MOCK_BENCH_CLOSED_CALLS` sequential calls, default 200) of each history
//!   endpoint an export reads, at its largest page (Upbit `orders/closed`; Binance
//!   `allOrders` and `myTrades`; Bybit `order/history` and `execution/list`; KuCoin
//!   `hf/orders/done`, `hf/fills` and the classic `orders` and `fills`; Coinbase
//!   `orders/historical/batch` and `.../fills`; for Coinbase also at 100, the page respond's
//!   own client asks for), some from a cursor halfway through the history, and Upbit's
//!   `orders/uuids` with 100 uuids. Each twice: cold (the JSON text
//!   the venue keeps for closed orders dropped before every call, so every item is
//!   rendered, as for an export reading each page once) and warm (the same page again).
//!   Issue 18's goal is under 1 ms of CPU per call at 1M orders; a scan of every stored
//!   order cost 60–160 ms a call.
//!
//! The server runs on its own single-threaded tokio runtime (one core); clients run on a
//! second runtime and sign each request with a small signer (hmac + sha2): for Upbit an HS256
//! JWT over a query with a `query_hash`, so every request goes through the full JWT, nonce and
//! hash checks; for Binance the hex HMAC-SHA256 of the query, so every request goes through
//! the key, timestamp window and signature checks. Rate limits are disabled for the
//! measurement except in `limited` (they would answer 429 instead).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use respond::mock::binance::Binance;
use respond::mock::bybit::Bybit;
use respond::mock::coinbase::Coinbase;
use respond::mock::kucoin::Kucoin;
use respond::mock::upbit::Upbit;
use respond::mock::venue::state::{Order, OrderState};
use respond::mock::{self, Facade, KeyInfo, MockOptions, Venue};
use sha2::{Digest, Sha256, Sha512};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user + system, seconds) of the calling thread: nanoseconds from
/// /proc/thread-self/schedstat when the kernel keeps them, else 10 ms ticks from .../stat.
fn thread_cpu_secs() -> f64 {
    if let Some(ns) = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .filter(|ns| *ns > 0)
    {
        return ns as f64 / 1e9;
    }
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // CLK_TCK is 100 on Linux for every supported architecture.
    (ticks(11) + ticks(12)) / 100.0
}

fn sign(ak: &str, sk: &str, query: &str, n: u64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let hash = hex::encode(Sha512::digest(query.as_bytes()));
    let claims = format!(
        r#"{{"access_key":"{ak}","nonce":"bench-{n:016x}-{:08x}","query_hash":"{hash}","query_hash_alg":"SHA512"}}"#,
        std::process::id()
    );
    let msg = format!("{header}.{}", b64.encode(claims.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(sk.as_bytes()).expect("hmac key");
    mac.update(msg.as_bytes());
    format!("{msg}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// Binance's signature (hex HMAC-SHA256 of the query) and Bybit's (of timestamp, key,
/// window and query), keyed with the secret.
fn hmac_hex(sk: &str, query: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(sk.as_bytes()).expect("hmac key");
    mac.update(query.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The exchange whose façade a throughput row measures.
#[derive(Clone, Copy)]
enum Exchange {
    Upbit,
    Binance,
    Bybit,
    Coinbase,
    Kucoin,
}

/// A CDP bearer token (ES256, raw `r‖s`) for `GET {host}{path}`, signed with the key's
/// P-256 private key (the pair is built once per run).
fn cdp_token(key: &KeyInfo, host: &str, path: &str, now_s: i64, n: u64) -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    static PAIR: std::sync::OnceLock<EcdsaKeyPair> = std::sync::OnceLock::new();
    let rng = ring::rand::SystemRandom::new();
    let pair = PAIR.get_or_init(|| {
        let scalar = respond::mock::venue::keys::p256_scalar(&key.secret_key).expect("P-256 key");
        let point = respond::mock::venue::keys::p256_public_point(&scalar).expect("its point");
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            &point,
            &rng,
        )
        .expect("a key pair")
    });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let name = &key.access_key;
    let header = format!(r#"{{"alg":"ES256","kid":"{name}","nonce":"{n:032x}","typ":"JWT"}}"#);
    let claims = format!(
        r#"{{"sub":"{name}","iss":"cdp","nbf":{now_s},"exp":{},"uri":"GET {host}{path}"}}"#,
        now_s + 120
    );
    let msg = format!(
        "{}.{}",
        b64.encode(header.as_bytes()),
        b64.encode(claims.as_bytes())
    );
    let sig = pair.sign(&rng, msg.as_bytes()).expect("signs");
    format!("{msg}.{}", b64.encode(sig.as_ref()))
}

impl Exchange {
    fn facade(self) -> Arc<dyn Facade> {
        match self {
            Exchange::Upbit => Arc::new(Upbit),
            Exchange::Binance => Arc::new(Binance),
            Exchange::Bybit => Arc::new(Bybit),
            Exchange::Coinbase => Arc::new(Coinbase),
            Exchange::Kucoin => Arc::new(Kucoin),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Exchange::Upbit => "upbit: GET /v1/orders/chance with query_hash",
            Exchange::Binance => "binance: GET /api/v3/openOrders?symbol=BTCUSDT, HMAC hex",
            Exchange::Bybit => {
                "bybit: GET /v5/order/realtime?category=spot&symbol=BTCUSDT, HMAC hex"
            }
            Exchange::Coinbase => {
                "coinbase: GET /api/v3/brokerage/orders/historical/batch?order_status=OPEN, ES256 JWT"
            }
            Exchange::Kucoin => {
                "kucoin: GET /api/v1/hf/orders/active?symbol=BTC-USDT, HMAC base64 + passphrase"
            }
        }
    }

    /// Whether an HTTP 200 answer is still a refusal (Bybit's `retCode`).
    fn refused(self, body: &[u8]) -> bool {
        match self {
            Exchange::Bybit => serde_json::from_slice::<serde_json::Value>(body)
                .map_or(true, |v| v["retCode"] != 0),
            _ => false,
        }
    }

    /// Whether an HTTP status is a rate-limit refusal: 429, 418 (a caller blocked for
    /// ignoring 429s), and Bybit's 403 "access too frequent" (its IP limit).
    fn limited_status(self, status: u16) -> bool {
        status == 429 || status == 418 || (matches!(self, Exchange::Bybit) && status == 403)
    }

    /// Whether an HTTP 200 answer is a rate-limit refusal (Bybit's `retCode` 10006).
    fn limited_in_body(self, body: &[u8]) -> bool {
        match self {
            Exchange::Bybit => serde_json::from_slice::<serde_json::Value>(body)
                .is_ok_and(|v| v["retCode"] == 10006),
            _ => false,
        }
    }

    /// The n-th signed request of the throughput run; `skew_ms` is the mock's clock minus
    /// this machine's.
    fn request(
        self,
        client: &reqwest::Client,
        url: &str,
        key: &KeyInfo,
        n: u64,
        skew_ms: i64,
    ) -> reqwest::RequestBuilder {
        let (path, query) = match self {
            Exchange::Upbit => ("/v1/orders/chance", "market=KRW-BTC"),
            Exchange::Binance => ("/api/v3/openOrders", "symbol=BTCUSDT"),
            Exchange::Bybit => ("/v5/order/realtime", "category=spot&symbol=BTCUSDT"),
            Exchange::Coinbase => (
                "/api/v3/brokerage/orders/historical/batch",
                "order_status=OPEN&product_ids=BTC-USD",
            ),
            Exchange::Kucoin => ("/api/v1/hf/orders/active", "symbol=BTC-USDT"),
        };
        self.signed_get(client, url, key, n, skew_ms, path, query)
    }

    /// A signed `GET path?query` as the exchange wants it signed.
    #[allow(clippy::too_many_arguments)]
    fn signed_get(
        self,
        client: &reqwest::Client,
        url: &str,
        key: &KeyInfo,
        n: u64,
        skew_ms: i64,
        path: &str,
        query: &str,
    ) -> reqwest::RequestBuilder {
        let with_query = |q: &str| {
            if q.is_empty() {
                format!("{url}{path}")
            } else {
                format!("{url}{path}?{q}")
            }
        };
        match self {
            Exchange::Upbit => client.get(with_query(query)).bearer_auth(sign(
                &key.access_key,
                &key.secret_key,
                query,
                n,
            )),
            Exchange::Binance => {
                let ts = chrono::Utc::now().timestamp_millis() + skew_ms;
                let query = format!("{query}&recvWindow=5000&timestamp={ts}");
                let sig = hmac_hex(&key.secret_key, &query);
                client
                    .get(with_query(&format!("{query}&signature={sig}")))
                    .header("X-MBX-APIKEY", &key.access_key)
            }
            Exchange::Bybit => {
                let ts = (chrono::Utc::now().timestamp_millis() + skew_ms).to_string();
                let text = format!("{ts}{}5000{query}", key.access_key);
                client
                    .get(with_query(query))
                    .header("X-BAPI-API-KEY", &key.access_key)
                    .header("X-BAPI-TIMESTAMP", ts)
                    .header("X-BAPI-RECV-WINDOW", "5000")
                    .header("X-BAPI-SIGN", hmac_hex(&key.secret_key, &text))
            }
            Exchange::Coinbase => {
                let host = url.trim_start_matches("http://");
                let now_s = (chrono::Utc::now().timestamp_millis() + skew_ms) / 1000;
                client
                    .get(with_query(query))
                    .bearer_auth(cdp_token(key, host, path, now_s, n))
            }
            Exchange::Kucoin => {
                let ts = (chrono::Utc::now().timestamp_millis() + skew_ms).to_string();
                let target = if query.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{query}")
                };
                let b64 = |text: &str| {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(key.secret_key.as_bytes()).expect("key");
                    mac.update(text.as_bytes());
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                };
                let pass = key.passphrase.as_deref().unwrap_or_default();
                client
                    .get(with_query(query))
                    .header("KC-API-KEY", &key.access_key)
                    .header("KC-API-TIMESTAMP", &ts)
                    .header("KC-API-SIGN", b64(&format!("{ts}GET{target}")))
                    .header("KC-API-PASSPHRASE", b64(pass))
                    .header("KC-API-KEY-VERSION", "2")
            }
        }
    }

    /// The history endpoints an export reads, at their largest page: (label, path, query,
    /// what the page holds). `now_ms` is the mock's clock.
    fn history_calls(
        self,
        ex: &Venue,
        now_ms: i64,
    ) -> Vec<(&'static str, &'static str, String, Held)> {
        let day = 86_400_000;
        // An order halfway through the account's history (a page deep into an export).
        let (mid_ms, mid_nanos, mid_idx, newest) = {
            let w = ex.world();
            let i = w.orders.len() / 2;
            let t = w.orders[i].created_at;
            let newest: Vec<String> = w.orders[w.orders.len().saturating_sub(100)..]
                .iter()
                .map(|o| format!("uuids[]={}", o.uuid))
                .collect();
            (
                t.timestamp_millis(),
                t.timestamp_nanos_opt().unwrap_or_default(),
                i,
                newest.join("&"),
            )
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        match self {
            Exchange::Upbit => vec![
                (
                    "closed orders, full page, default 7-day window",
                    "/v1/orders/closed",
                    "limit=1000".into(),
                    Held::Orders,
                ),
                (
                    "closed orders, one market, cancelled only",
                    "/v1/orders/closed",
                    "market=KRW-XRP&states[]=cancel&limit=1000".into(),
                    Held::Orders,
                ),
                (
                    "closed orders, default page (100)",
                    "/v1/orders/closed",
                    String::new(),
                    Held::Orders,
                ),
                (
                    "orders/uuids, 100 uuids",
                    "/v1/orders/uuids",
                    newest,
                    Held::Orders,
                ),
            ],
            Exchange::Binance => vec![
                (
                    "allOrders, full page, a 24-hour window",
                    "/api/v3/allOrders",
                    format!(
                        "symbol=BTCUSDT&startTime={}&endTime={}&limit=1000",
                        now_ms - 2 * day,
                        now_ms - day
                    ),
                    Held::Orders,
                ),
                (
                    "allOrders, full page, the most recent",
                    "/api/v3/allOrders",
                    "symbol=BTCUSDT&limit=1000".into(),
                    Held::Orders,
                ),
                (
                    "myTrades, full page, a 24-hour window",
                    "/api/v3/myTrades",
                    format!(
                        "symbol=BTCUSDT&startTime={}&endTime={}&limit=1000",
                        now_ms - 2 * day,
                        now_ms - day
                    ),
                    Held::Fills,
                ),
                (
                    "myTrades, full page from fromId 1",
                    "/api/v3/myTrades",
                    "symbol=BTCUSDT&fromId=1&limit=1000".into(),
                    Held::Fills,
                ),
            ],
            Exchange::Bybit => vec![
                (
                    "order/history, full page (50), default 7-day window",
                    "/v5/order/history",
                    "category=spot&limit=50".into(),
                    Held::Orders,
                ),
                (
                    "order/history, full page (50), from a cursor halfway through",
                    "/v5/order/history",
                    format!(
                        "category=spot&limit=50&startTime={}&endTime={}&cursor={mid_ms}_{mid_idx}",
                        mid_ms - 6 * day,
                        mid_ms + day
                    ),
                    Held::Orders,
                ),
                (
                    "execution/list, full page (100), default 7-day window",
                    "/v5/execution/list",
                    "category=spot&limit=100".into(),
                    Held::Fills,
                ),
            ],
            Exchange::Kucoin => vec![
                (
                    "hf/orders/done, full page (100), default window",
                    "/api/v1/hf/orders/done",
                    "symbol=BTC-USDT&limit=100".into(),
                    Held::Orders,
                ),
                (
                    "hf/fills, full page (100), default window",
                    "/api/v1/hf/fills",
                    "symbol=BTC-USDT&limit=100".into(),
                    Held::Fills,
                ),
                (
                    "classic orders (status=done, pageSize 500; every stored order is HF)",
                    "/api/v1/orders",
                    "status=done&pageSize=500".into(),
                    Held::Orders,
                ),
                (
                    "classic fills (pageSize 500; every stored order is HF)",
                    "/api/v1/fills",
                    "pageSize=500".into(),
                    Held::Fills,
                ),
            ],
            Exchange::Coinbase => vec![
                (
                    "orders/historical/batch, full page (1000)",
                    "/api/v3/brokerage/orders/historical/batch",
                    "limit=1000".into(),
                    Held::Orders,
                ),
                (
                    "orders/historical/batch, full page (1000), from a cursor halfway through",
                    "/api/v3/brokerage/orders/historical/batch",
                    format!(
                        "limit=1000&cursor={}",
                        b64.encode(format!("{mid_nanos}:{mid_idx}"))
                    ),
                    Held::Orders,
                ),
                (
                    "orders/historical/fills, full page (1000)",
                    "/api/v3/brokerage/orders/historical/fills",
                    "limit=1000".into(),
                    Held::Fills,
                ),
                // What respond's own client asks for (`ORDERS_PAGE`, `FILLS_PAGE`: 100), next
                // to the mock's largest page above.
                (
                    "orders/historical/batch, respond's client page (100)",
                    "/api/v3/brokerage/orders/historical/batch",
                    "limit=100".into(),
                    Held::Orders,
                ),
                (
                    "orders/historical/fills, respond's client page (100)",
                    "/api/v3/brokerage/orders/historical/fills",
                    "limit=100".into(),
                    Held::Fills,
                ),
            ],
        }
    }
}

/// What a history page lists.
#[derive(Clone, Copy)]
enum Held {
    Orders,
    Fills,
}

/// The number of items in a history answer, wherever the exchange puts its list.
fn items_in(v: &serde_json::Value) -> usize {
    let list = |v: &serde_json::Value| v.as_array().map_or(0, Vec::len);
    if v.is_array() {
        return list(v);
    }
    for path in [
        &["result", "list"][..],
        &["data", "items"][..],
        &["orders"][..],
        &["fills"][..],
    ] {
        let mut x = v;
        for k in path {
            x = &x[*k];
        }
        if x.is_array() {
            return list(x);
        }
    }
    0
}

fn main() {
    let cases =
        std::env::var("MOCK_BENCH_CASES").unwrap_or_else(|_| "throughput,limited,closed".into());
    let all = [
        Exchange::Upbit,
        Exchange::Binance,
        Exchange::Bybit,
        Exchange::Coinbase,
        Exchange::Kucoin,
    ];
    let picked: Vec<Exchange> = match std::env::var("MOCK_BENCH_EXCHANGES") {
        Ok(v) => all
            .into_iter()
            .filter(|e| v.split(',').any(|n| n.trim() == e.facade().name()))
            .collect(),
        Err(_) => all.to_vec(),
    };
    for case in cases.split(',').map(str::trim) {
        match case {
            "throughput" => picked.iter().for_each(|e| throughput(*e, false)),
            "limited" => picked.iter().for_each(|e| throughput(*e, true)),
            "closed" => picked.iter().for_each(|e| history_at_scale(*e)),
            other => {
                eprintln!("mock_throughput: unknown case `{other}` (throughput, limited, closed)")
            }
        }
    }
}

fn opts(rate_limits: bool) -> MockOptions {
    MockOptions {
        live_attacker: false,
        rate_limits,
        ..MockOptions::default()
    }
}

/// `rate_limits`: as `respond mock serve` runs (the exchange's budgets enforced, a 429 or
/// the exchange's refusal past them); the clients do not back off: a refused request counts
/// and the next one goes out at once, so the row measures what the mock spends answering a
/// client that ignores its limits, refusals included.
fn throughput(exchange: Exchange, rate_limits: bool) {
    let total: u64 = std::env::var("MOCK_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let conc: u64 = std::env::var("MOCK_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let sc = mock::scenario::load("blank", Some(1)).expect("blank scenario");
    let facade = exchange.facade();
    let ex = Venue::new(facade.as_ref(), sc, opts(rate_limits)).expect("blank fits the mock");
    let key = ex.key("bot").expect("bot key").clone();
    let skew_ms = (ex.now() - chrono::Utc::now()).num_milliseconds();
    let server = Server::start(facade, ex);
    let cpu0 = server.cpu();
    let url = server.url.clone();
    let rss0 = rss_kib();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut marks = Vec::new();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(conc as usize)
            .build()
            .expect("client");
        let mut tasks = Vec::new();
        for c in 0..conc {
            let (client, url, done, failed, limited, key) = (
                client.clone(),
                url.clone(),
                done.clone(),
                failed.clone(),
                limited.clone(),
                key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = c;
                while n < total {
                    let req = exchange.request(&client, &url, &key, n, skew_ms);
                    match req.send().await {
                        Ok(r) if r.status() == 200 => {
                            let body = r.bytes().await.unwrap_or_default();
                            if exchange.limited_in_body(&body) {
                                limited.fetch_add(1, Ordering::Relaxed);
                            } else if exchange.refused(&body) {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(r) if exchange.limited_status(r.status().as_u16()) => {
                            let _ = r.bytes().await;
                            limited.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    n += conc;
                }
            }));
        }
        let mut next = total / 4;
        while done.load(Ordering::Relaxed) < total {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if done.load(Ordering::Relaxed) >= next && next <= total {
                marks.push((done.load(Ordering::Relaxed), rss_kib()));
                next += total / 4;
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let server_cpu = server.cpu() - cpu0;
    let rss1 = rss_kib();
    let n = done.load(Ordering::Relaxed);
    println!(
        "mock_throughput {}: {n} signed private requests, concurrency {conc}, rate limits {}",
        exchange.describe(),
        if rate_limits {
            "ON (as `respond mock serve` runs; clients do not back off)"
        } else {
            "off"
        }
    );
    println!("  server: one current-thread runtime (one core); clients share the machine");
    println!(
        "  elapsed {secs:.2} s, {:.0} requests/s, refused by a rate limit (429/418) {}, \
         other failures {}",
        n as f64 / secs,
        limited.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    println!(
        "  server thread CPU {server_cpu:.2} s: {:.0} requests per server-CPU-second (one core)",
        n as f64 / server_cpu.max(0.001)
    );
    println!("  RSS (whole process, KiB): before {rss0}, after {rss1}");
    for (k, r) in marks {
        println!("  RSS at {k} requests: {r} KiB");
    }
}

/// A server on its own current-thread runtime whose thread CPU can be read at any time.
struct Server {
    url: String,
    ask: tokio::sync::mpsc::UnboundedSender<std::sync::mpsc::Sender<f64>>,
}

impl Server {
    fn start(facade: Arc<dyn Facade>, ex: Arc<Venue>) -> Server {
        let (tx, rx) = std::sync::mpsc::channel();
        let (ask, mut asks) =
            tokio::sync::mpsc::unbounded_channel::<std::sync::mpsc::Sender<f64>>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let s = mock::serve("127.0.0.1:0".parse().unwrap(), facade, ex)
                    .await
                    .expect("bind");
                tx.send(s.url.clone()).expect("send url");
                while let Some(reply) = asks.recv().await {
                    let _ = reply.send(thread_cpu_secs());
                }
            });
        });
        Server {
            url: rx.recv().expect("server url"),
            ask,
        }
    }

    /// The server thread's CPU seconds so far.
    fn cpu(&self) -> f64 {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ask.send(tx).expect("server alive");
        rx.recv().expect("server answers")
    }
}

/// A venue of `exchange` holding `MOCK_BENCH_STORED_ORDERS` orders of one account (the bot's
/// 30 days on two markets), rate limits off.
fn stored_venue(exchange: Exchange, stored: u64) -> (Arc<Venue>, f64) {
    let days = 30u64;
    let yaml = format!(
        r#"name: closed-orders-bench
seed: 1
now: 2026-11-20T18:30:00Z
quote: KRW
markets:
  - {{ base: BTC, name: Bitcoin, price: "135000000", depth: {{ levels: 15, step_pct: "0.05", level_quote: "40000000" }} }}
  - {{ base: XRP, name: XRP, price: "3100" }}
accounts:
  - {{ name: victim, balances: {{ KRW: "100000000", BTC: "1", XRP: "100000" }} }}
keys:
  - {{ account: victim, label: bot, permissions: [read, trade] }}
bot: {{ account: victim, key: bot, markets: [BTC, XRP], days: {days}, orders_per_day: {}, order_quote: ["6000", "20000"], ord_types: [limit, price, market] }}
"#,
        stored.div_ceil(days)
    );
    let sc = mock::scenario::parse("closed-bench.yaml", &yaml, None).expect("bench scenario");
    let t0 = Instant::now();
    let ex = Venue::new(exchange.facade().as_ref(), sc, opts(false))
        .expect("the bench scenario fits every mock");
    (ex, t0.elapsed().as_secs_f64())
}

/// Issue 18's goal at scale, per façade: with `MOCK_BENCH_STORED_ORDERS` orders stored, the
/// CPU of the listing alone (the index walk, in-process, for the page of orders and of
/// fills) and the server CPU per HTTP call of each history endpoint at its largest page.
fn history_at_scale(exchange: Exchange) {
    let stored: u64 = std::env::var("MOCK_BENCH_STORED_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let calls: u32 = std::env::var("MOCK_BENCH_CLOSED_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rss0 = rss_kib();
    let (ex, built) = stored_venue(exchange, stored);
    let n_orders = ex.world().orders.len();
    let n_fills: usize = ex.world().orders.iter().map(|o| o.trades.len()).sum();
    let rss1 = rss_kib();
    let key = ex.key("bot").expect("bot key").clone();
    let name = exchange.facade().name();
    println!(
        "mock_throughput closed {name}: {n_orders} stored orders, {n_fills} fills (generated in \
         {built:.1} s, RSS +{} MiB)",
        rss1.saturating_sub(rss0) / 1024
    );
    // The listings alone, in-process: the index walks that replaced the scans.
    {
        let w = ex.world();
        let account = &ex.keys()[0].account;
        let now = ex.now();
        let from = now - chrono::Duration::days(7);
        let closed = [OrderState::Done, OrderState::Cancelled];
        let any = |_: &Order| true;
        let any_fill = |_: usize, _: &Order, _: &respond::mock::venue::state::Fill| true;
        let rounds = 2000u32;
        let cpu0 = thread_cpu_secs();
        let mut found = 0;
        for _ in 0..rounds {
            found = w
                .list_orders(account, &closed, Some((from, now)), true, &any, 0, 1000)
                .len();
        }
        let us = (thread_cpu_secs() - cpu0) * 1e6 / f64::from(rounds);
        println!(
            "  listing alone (order index walk, {found} of the newest closed orders in a 7-day \
             window): {us:.1} µs of CPU per call ({:.3} of the 1 ms goal)",
            us / 1000.0
        );
        let cpu0 = thread_cpu_secs();
        for _ in 0..rounds {
            found = w
                .list_fills(account, (from, now), true, &any_fill, 1000)
                .len();
        }
        let us = (thread_cpu_secs() - cpu0) * 1e6 / f64::from(rounds);
        println!(
            "  listing alone (fill index walk, {found} of the newest fills in a 7-day window): \
             {us:.1} µs of CPU per call ({:.3} of the 1 ms goal)",
            us / 1000.0
        );
    }
    let now_ms = ex.now().timestamp_millis();
    let skew_ms = (ex.now() - chrono::Utc::now()).num_milliseconds();
    let calls_list = exchange.history_calls(&ex, now_ms);
    let venue = ex.clone();
    let server = Server::start(exchange.facade(), ex);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut nonce = 1u64 << 40;
        for (label, path, query, held) in calls_list {
            // Cold: the texts kept for closed orders dropped before each call, so every
            // item is rendered (what an export reading each page once pays); warm: the same
            // page again, its items copied from what the first call kept.
            let mut per_call = [0.0f64; 2];
            let mut items = 0usize;
            for (k, cold) in [true, false].into_iter().enumerate() {
                let cpu0 = server.cpu();
                for _ in 0..calls {
                    if cold {
                        venue.world().fragments.borrow_mut().clear();
                    }
                    nonce += 1;
                    let r = exchange
                        .signed_get(&client, &server.url, &key, nonce, skew_ms, path, &query)
                        .send()
                        .await
                        .expect("request");
                    let status = r.status();
                    let body = r.bytes().await.expect("body");
                    assert_eq!(status, 200, "{name} {label}");
                    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    assert!(!exchange.refused(&body), "{name} {label}: {v}");
                    items = items_in(&v);
                }
                per_call[k] = (server.cpu() - cpu0) * 1000.0 / f64::from(calls);
            }
            let what = match held {
                Held::Orders => "orders",
                Held::Fills => "fills",
            };
            let [cold, warm] = per_call;
            println!(
                "  {label}: {items} {what} a page, server CPU per call over {calls} calls: \
                 cold {cold:.3} ms ({cold:.2} of the 1 ms goal), warm {warm:.3} ms ({warm:.2})"
            );
        }
    });
}
