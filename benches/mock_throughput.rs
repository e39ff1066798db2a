//! Signed private requests per second the mock sustains on loopback, and its memory before,
//! during and after the run. Run manually: `cargo bench --bench mock_throughput`
//! (`MOCK_BENCH_REQUESTS=1000000` for the long memory run, `MOCK_BENCH_CONCURRENCY=64`).
//!
//! The server runs on its own single-threaded tokio runtime (one core); clients run on a
//! second runtime and sign each request with a small HS256 signer (hmac + sha2) over a
//! query with a `query_hash`, so every request goes through the full JWT, nonce and hash
//! checks. Rate limits are disabled for the measurement (they would answer 429 instead).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use respond::mock::{self, MockExchange, MockOptions};
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

/// CPU time (user + system, seconds) of the calling thread, from /proc/thread-self/stat.
fn thread_cpu_secs() -> f64 {
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

fn main() {
    let total: u64 = std::env::var("MOCK_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let conc: u64 = std::env::var("MOCK_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let sc = mock::scenario::load("blank", Some(1)).expect("blank scenario");
    let ex = MockExchange::new(
        sc,
        MockOptions {
            live_attacker: false,
            rate_limits: false,
            ..MockOptions::default()
        },
    );
    let key = ex.key("bot").expect("bot key").clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let (cpu_ask, cpu_ask_rx) = tokio::sync::oneshot::channel::<()>();
    let (cpu_tx, cpu_rx) = std::sync::mpsc::channel::<f64>();
    let server_ex = ex.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let s = mock::serve("127.0.0.1:0".parse().unwrap(), server_ex)
                .await
                .expect("bind");
            let cpu0 = thread_cpu_secs();
            tx.send(s.url.clone()).expect("send url");
            let _ = cpu_ask_rx.await;
            let _ = cpu_tx.send(thread_cpu_secs() - cpu0);
            std::future::pending::<()>().await;
        });
    });
    let url = rx.recv().expect("server url");
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
        let query = "market=KRW-BTC";
        let target = format!("{url}/v1/orders/chance?{query}");
        let mut tasks = Vec::new();
        for c in 0..conc {
            let (client, target, done, failed, key) = (
                client.clone(),
                target.clone(),
                done.clone(),
                failed.clone(),
                key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = c;
                while n < total {
                    let t = sign(&key.access_key, &key.secret_key, query, n);
                    match client.get(&target).bearer_auth(t).send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
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
    let _ = cpu_ask.send(());
    let server_cpu = cpu_rx.recv().unwrap_or(0.0);
    let rss1 = rss_kib();
    let n = done.load(Ordering::Relaxed);
    println!("mock_throughput: {n} signed private requests (GET /v1/orders/chance with query_hash), concurrency {conc}");
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
