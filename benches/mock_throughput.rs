//! The mock's costs, measured (not timed in tests). Run manually:
//! `cargo bench --bench mock_throughput`; `MOCK_BENCH_CASES=throughput,closed` picks cases.
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
//! - `closed`: with `MOCK_BENCH_STORED_ORDERS` (default 1,000,000) orders stored, the CPU of
//!   the closed-orders listing itself (the index walk, in-process) and the server CPU per HTTP
//!   call (`MOCK_BENCH_CLOSED_CALLS` sequential calls, default 200) for a full page (limit 1000)
//!   in the default 7-day window, a page filtered by market and state, and the default page
//!   (100). Issue 18's goal is well under 1 ms of CPU for the listing at 1M orders; a scan of
//!   every stored order cost 60–160 ms a call. What remains of a call is writing the page,
//!   which grows with the page, not with the orders stored.
//!
//! The server runs on its own single-threaded tokio runtime (one core); clients run on a
//! second runtime and sign each request with a small signer (hmac + sha2): for Upbit an HS256
//! JWT over a query with a `query_hash`, so every request goes through the full JWT, nonce and
//! hash checks; for Binance the hex HMAC-SHA256 of the query, so every request goes through
//! the key, timestamp window and signature checks. Rate limits are disabled for the
//! measurement (they would answer 429 instead).

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

    /// The n-th signed request; `skew_ms` is the mock's clock minus this machine's.
    fn request(
        self,
        client: &reqwest::Client,
        url: &str,
        key: &KeyInfo,
        n: u64,
        skew_ms: i64,
    ) -> reqwest::RequestBuilder {
        match self {
            Exchange::Upbit => {
                let query = "market=KRW-BTC";
                client
                    .get(format!("{url}/v1/orders/chance?{query}"))
                    .bearer_auth(sign(&key.access_key, &key.secret_key, query, n))
            }
            Exchange::Binance => {
                let ts = chrono::Utc::now().timestamp_millis() + skew_ms;
                let query = format!("symbol=BTCUSDT&recvWindow=5000&timestamp={ts}");
                let sig = hmac_hex(&key.secret_key, &query);
                client
                    .get(format!("{url}/api/v3/openOrders?{query}&signature={sig}"))
                    .header("X-MBX-APIKEY", &key.access_key)
            }
            Exchange::Bybit => {
                let ts = (chrono::Utc::now().timestamp_millis() + skew_ms).to_string();
                let query = "category=spot&symbol=BTCUSDT";
                let text = format!("{ts}{}5000{query}", key.access_key);
                client
                    .get(format!("{url}/v5/order/realtime?{query}"))
                    .header("X-BAPI-API-KEY", &key.access_key)
                    .header("X-BAPI-TIMESTAMP", ts)
                    .header("X-BAPI-RECV-WINDOW", "5000")
                    .header("X-BAPI-SIGN", hmac_hex(&key.secret_key, &text))
            }
            Exchange::Coinbase => {
                let path = "/api/v3/brokerage/orders/historical/batch";
                let host = url.trim_start_matches("http://");
                let now_s = (chrono::Utc::now().timestamp_millis() + skew_ms) / 1000;
                client
                    .get(format!("{url}{path}?order_status=OPEN&product_ids=BTC-USD"))
                    .bearer_auth(cdp_token(key, host, path, now_s, n))
            }
            Exchange::Kucoin => {
                let ts = (chrono::Utc::now().timestamp_millis() + skew_ms).to_string();
                let path = "/api/v1/hf/orders/active?symbol=BTC-USDT";
                let b64 = |text: &str| {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(key.secret_key.as_bytes()).expect("key");
                    mac.update(text.as_bytes());
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                };
                let pass = key.passphrase.as_deref().unwrap_or_default();
                client
                    .get(format!("{url}{path}"))
                    .header("KC-API-KEY", &key.access_key)
                    .header("KC-API-TIMESTAMP", &ts)
                    .header("KC-API-SIGN", b64(&format!("{ts}GET{path}")))
                    .header("KC-API-PASSPHRASE", b64(pass))
                    .header("KC-API-KEY-VERSION", "2")
            }
        }
    }
}

fn main() {
    let cases = std::env::var("MOCK_BENCH_CASES").unwrap_or_else(|_| "throughput,closed".into());
    for case in cases.split(',').map(str::trim) {
        match case {
            "throughput" => {
                throughput(Exchange::Upbit);
                throughput(Exchange::Binance);
                throughput(Exchange::Bybit);
                throughput(Exchange::Coinbase);
                throughput(Exchange::Kucoin);
            }
            "closed" => closed_orders_at_scale(),
            other => eprintln!("mock_throughput: unknown case `{other}` (throughput, closed)"),
        }
    }
}

fn opts() -> MockOptions {
    MockOptions {
        live_attacker: false,
        rate_limits: false,
        ..MockOptions::default()
    }
}

fn throughput(exchange: Exchange) {
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
    let ex = Venue::new(facade.as_ref(), sc, opts()).expect("blank fits the mock");
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
    let started = Instant::now();
    let mut marks = Vec::new();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(conc as usize)
            .build()
            .expect("client");
        let mut tasks = Vec::new();
        for c in 0..conc {
            let (client, url, done, failed, key) = (
                client.clone(),
                url.clone(),
                done.clone(),
                failed.clone(),
                key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = c;
                while n < total {
                    let req = exchange.request(&client, &url, &key, n, skew_ms);
                    match req.send().await {
                        Ok(r) if r.status() == 200 => {
                            let body = r.bytes().await.unwrap_or_default();
                            if exchange.refused(&body) {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
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
        "mock_throughput {}: {n} signed private requests, concurrency {conc}",
        exchange.describe()
    );
    println!("  server: one current-thread runtime (one core); clients share the machine");
    println!(
        "  elapsed {secs:.2} s, {:.0} requests/s, failed {}",
        n as f64 / secs,
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

fn closed_orders_at_scale() {
    let stored: u64 = std::env::var("MOCK_BENCH_STORED_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let calls: u32 = std::env::var("MOCK_BENCH_CLOSED_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
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
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let ex = Venue::new(&Upbit, sc, opts()).expect("bench scenario fits the upbit mock");
    let built = t0.elapsed().as_secs_f64();
    let n_orders = ex.world().orders.len();
    let rss1 = rss_kib();
    let key = ex.key("bot").expect("bot key").clone();
    println!(
        "mock_throughput closed: {n_orders} stored orders (generated in {built:.1} s, RSS +{} MiB)",
        rss1.saturating_sub(rss0) / 1024
    );
    // The listing alone, in-process: the index walk that replaced the scan.
    {
        let w = ex.world();
        let account = &ex.keys()[0].account;
        let now = ex.now();
        let from = now - chrono::Duration::days(7);
        let closed = [OrderState::Done, OrderState::Cancelled];
        let any = |_: &Order| true;
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
            "  listing alone (index walk, {found} of the newest closed orders in a 7-day window): \
             {us:.1} µs of CPU per call ({:.3} of the 1 ms goal)",
            us / 1000.0
        );
    }
    let server = Server::start(Arc::new(Upbit), ex);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut nonce = 1u64 << 40;
        for (label, query) in [
            ("full page, default 7-day window", "limit=1000"),
            (
                "one market, cancelled only",
                "market=KRW-XRP&states[]=cancel&limit=1000",
            ),
            ("default page (100)", ""),
        ] {
            let target = if query.is_empty() {
                format!("{}/v1/orders/closed", server.url)
            } else {
                format!("{}/v1/orders/closed?{query}", server.url)
            };
            let mut items = 0usize;
            let cpu0 = server.cpu();
            for _ in 0..calls {
                nonce += 1;
                let t = sign(&key.access_key, &key.secret_key, query, nonce);
                let r = client
                    .get(&target)
                    .bearer_auth(t)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 200, "{label}");
                let v: serde_json::Value = r.json().await.expect("json");
                items = v.as_array().map_or(0, Vec::len);
            }
            let per_call_ms = (server.cpu() - cpu0) * 1000.0 / f64::from(calls);
            println!(
                "  {label}: {items} orders a page, server CPU {per_call_ms:.3} ms per call \
                 over {calls} calls ({:.2} of the 1 ms goal)",
                per_call_ms
            );
        }
    });
}
