//! The closed-order export against the mock over loopback with each exchange's rate limits
//! enforced: requests against the minimum and throughput against the ceiling. Run:
//! `cargo bench --bench export` (`EXPORT_BENCH_ORDERS=100000,1000000` picks the sizes for
//! every exchange; the defaults, 20,000 for Upbit and 5,000 for the others, take seconds;
//! `EXPORT_BENCH_EXCHANGES=upbit,bybit,kucoin,coinbase` picks the exchanges).
//!
//! For each exchange and size, a victim whose bot placed that many orders over six days; then
//! `exchange.export_history` (closed orders only: no open orders, transfers or candles) of the
//! last seven days through `session::run_new`. From the mock's request log:
//! - requests: closed-order requests next to the minimum, as a ratio (goal ≤ 1.1). The minimum
//!   is ⌈orders / page⌉ plus the page that proves the list ends (Upbit 1,000 a page, Bybit 50,
//!   Coinbase 100); KuCoin keeps history per symbol: per symbol its HF pages of 100 plus the
//!   empty page that ends the list, and one classic-list request;
//! - throughput: closed-order requests per second, first to last, against the exchange's
//!   ceiling for them (Upbit's `default` group 30/s, Bybit's `order/history` 50/s, Coinbase's
//!   private 30/s, KuCoin's Spot pool 4,000 weight per 30 s at weight 2: 66.7/s sustained)
//!   (goal ≥ 0.9), and the least time that ceiling allows for the minimum. KuCoin's rate is
//!   taken over its whole 30-s windows (the last window's requests may all go out at once at
//!   its start, which no sustained rate allows), so a run must span several windows
//!   (~1,000,000 orders); a run inside one window prints 0;
//! - 429 answers (must be 0), and the process's peak RSS (mock and client together: the mock
//!   holds every order in memory, the client streams each page to disk).
//!
//! A second table says where a page's time went, from the raw sidecars the client recorded
//! (when each closed-order request was sent and answered, as the client saw it): the answer's
//! latency (the mock's work and the loopback, median and 90th percentile), how many requests
//! were in flight on average, and the share of the span with none in flight (the client
//! parsing, writing, or its limiter holding the next request back) or with every lane busy.
//! `EXPORT_BENCH_TRACE=1` also prints the closed-order requests sent in each second;
//! `EXPORT_BENCH_KEEP=1` keeps each run's bundle (its raw answers and sidecars) and names it.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use respond::mock::bybit::Bybit;
use respond::mock::coinbase::Coinbase;
use respond::mock::kucoin::Kucoin;
use respond::mock::upbit::Upbit;
use respond::mock::venue::state::OrderState;
use respond::mock::{self, MockOptions, RequestRecord, Venue};
use respond::output::{Printer, Verbosity};
use respond::session::run_new;

/// How one exchange lists closed orders, and its ceiling for those requests.
struct Spec {
    name: &'static str,
    facade: fn() -> Arc<dyn mock::Facade>,
    /// The closed-order listings (KuCoin: HF, then classic).
    paths: &'static [&'static str],
    /// Orders a page.
    page: usize,
    /// Requests per second the exchange allows for them, sustained (a windowed quota: quota
    /// over window, at the requests' weight).
    ceiling: f64,
    /// The quota's window in seconds when it is longer than a second (KuCoin's 30 s): a run's
    /// rate is then taken over its whole windows only, as the last window's requests may all
    /// go out at once at its start.
    window_s: Option<f64>,
    /// History is kept per symbol, with one classic-list request per symbol.
    per_symbol: bool,
    default_orders: usize,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "upbit",
        facade: || Arc::new(Upbit),
        paths: &["/v1/orders/closed"],
        page: 1000,
        ceiling: 30.0,
        window_s: None,
        per_symbol: false,
        default_orders: 20_000,
    },
    Spec {
        name: "bybit",
        facade: || Arc::new(Bybit),
        paths: &["/v5/order/history"],
        page: 50,
        ceiling: 50.0,
        window_s: None,
        per_symbol: false,
        default_orders: 5_000,
    },
    Spec {
        name: "kucoin",
        facade: || Arc::new(Kucoin),
        paths: &["/api/v1/hf/orders/done", "/api/v1/orders"],
        page: 100,
        ceiling: 4000.0 / 2.0 / 30.0,
        window_s: Some(30.0),
        per_symbol: true,
        default_orders: 5_000,
    },
    Spec {
        name: "coinbase",
        facade: || Arc::new(Coinbase),
        paths: &["/api/v3/brokerage/orders/historical/batch"],
        page: 100,
        ceiling: 30.0,
        window_s: None,
        per_symbol: false,
        default_orders: 5_000,
    },
];

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn scenario(orders: usize) -> mock::Scenario {
    let yaml = common::bot_scenario_yaml("export-bench", "export benchmark", orders);
    mock::scenario::parse("export-bench.yaml", &yaml, None).expect("bench scenario parses")
}

fn at(r: &RequestRecord) -> DateTime<Utc> {
    r.at.parse().expect("request log time")
}

/// The export's closed-order reads at most in flight at once (the step's `CLOSED_IN_FLIGHT`).
const LANES: usize = 6;

/// (sent, answered) of every closed-order request the client recorded under `dir`, from the
/// raw sidecars, in the order sent.
fn recorded_requests(dir: &Path, paths: &[&str]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".meta.json") {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(
                    &std::fs::read(&p).unwrap_or_default(),
                ) else {
                    continue;
                };
                let time = |k: &str| v[k].as_str().and_then(|t| t.parse().ok());
                if v["method"] == "GET"
                    && paths.iter().any(|x| v["endpoint"] == *x)
                    && v["status"] == 200
                {
                    if let (Some(a), Some(b)) = (time("requested_at"), time("responded_at")) {
                        out.push((a, b));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// Where the closed-order requests' time went: latency p50 / p90 (ms), mean requests in
/// flight, and the shares of the span with none and with every lane in flight.
fn profile(reqs: &[(DateTime<Utc>, DateTime<Utc>)]) -> Option<(f64, f64, f64, f64, f64)> {
    let first = reqs.first()?.0;
    let last = reqs.iter().map(|r| r.1).max()?;
    let span = (last - first).num_microseconds()? as f64;
    if span <= 0.0 {
        return None;
    }
    let mut lat: Vec<f64> = reqs
        .iter()
        .map(|(a, b)| (*b - *a).num_microseconds().unwrap_or(0) as f64 / 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    // Sweep the sends (+1) and answers (-1) in time order.
    let mut events: Vec<(DateTime<Utc>, i32)> =
        reqs.iter().flat_map(|(a, b)| [(*a, 1), (*b, -1)]).collect();
    events.sort();
    let (mut level, mut idle, mut full, mut busy) = (0i32, 0.0, 0.0, 0.0);
    for w in events.windows(2) {
        level += w[0].1;
        let d = (w[1].0 - w[0].0).num_microseconds().unwrap_or(0) as f64;
        busy += d * level as f64;
        if level == 0 {
            idle += d;
        } else if level as usize >= LANES {
            full += d;
        }
    }
    Some((pct(0.5), pct(0.9), busy / span, idle / span, full / span))
}

/// The rate over a windowed quota's whole windows: the windows are rebuilt from the
/// closed-order requests as the mock counts them (a window starts at the first request once
/// the last one is over), and the rate is the requests sent before the last window started
/// over the time from the first request to that start. A client that keeps the pool full
/// sends `quota / weight` a window, one window after the other: the sustained ceiling. 0 when
/// the run fits in one window.
fn whole_windows_rate(closed: &[&RequestRecord], window_s: f64) -> f64 {
    let Some(first) = closed.first().map(|r| at(r)) else {
        return 0.0;
    };
    let window = chrono::Duration::microseconds((window_s * 1e6) as i64);
    let (mut start, mut last_start, mut before_last) = (first, first, 0usize);
    for (i, r) in closed.iter().enumerate() {
        let t = at(r);
        if t - start >= window {
            start = t;
            last_start = t;
            before_last = i;
        }
    }
    let whole = (last_start - first).num_microseconds().unwrap_or(0) as f64 / 1e6;
    if whole > 0.0 {
        before_last as f64 / whole
    } else {
        0.0
    }
}

async fn export(spec: &Spec, orders: usize, profiles: &mut Vec<String>) {
    let t_build = Instant::now();
    let facade = (spec.facade)();
    let venue = Venue::new(
        facade.as_ref(),
        scenario(orders),
        MockOptions {
            live_attacker: false,
            ..MockOptions::default()
        },
    )
    .unwrap();
    let built = t_build.elapsed().as_secs_f64();
    let server = mock::serve("127.0.0.1:0".parse().unwrap(), facade, venue)
        .await
        .expect("mock binds");
    let stored = {
        let w = server.state.world();
        w.count_in_state(OrderState::Done) + w.count_in_state(OrderState::Cancelled)
    };
    let k = server.state.key("bot").expect("key").clone();
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("playbook.yaml");
    std::fs::write(&pb, common::EXPORT_PLAYBOOK).unwrap();
    let settings = common::settings(pb, tmp.path().join("evidence"));
    let conn = common::connection(
        spec.name,
        &server.url,
        &k.access_key,
        &k.secret_key,
        k.passphrase.as_deref(),
    );
    let hwm_before = status_kib("VmHWM:");
    let wall = Instant::now();
    let report = run_new(settings, &conn, &Printer::plain(Verbosity::Quiet))
        .await
        .expect("run starts");
    let total = wall.elapsed().as_secs_f64();
    assert!(report.ok, "export run ok");
    let out = &report.step("export").expect("export step").outputs;
    let exported = out["closed_order_count"].as_u64().unwrap_or(0) as usize;
    assert_eq!(exported, stored, "every stored order exported once");
    let log = server.state.requests();
    let closed: Vec<&RequestRecord> = log
        .iter()
        .filter(|r| r.method == "GET" && spec.paths.contains(&r.path.as_str()))
        .collect();
    let s429 = log.iter().filter(|r| r.status == 429).count();
    let n = closed.len();
    let minimum = if spec.per_symbol {
        let time = |k: &str| -> DateTime<Utc> { out[k].as_str().unwrap().parse().unwrap() };
        let (from, to) = (time("window_from"), time("window_to"));
        let symbols = out["symbol_count"].as_u64().unwrap_or(0) as usize;
        let mut per_symbol: BTreeMap<String, usize> = BTreeMap::new();
        let w = server.state.world();
        for o in w.orders.iter().filter(|o| o.account == k.account) {
            if o.created_at >= from && o.created_at < to {
                *per_symbol.entry(o.market.symbol.clone()).or_default() += 1;
            }
        }
        per_symbol
            .values()
            .map(|c| c / spec.page + 1)
            .sum::<usize>()
            + (symbols - per_symbol.len())
            + symbols
    } else {
        stored / spec.page + 1
    };
    let span = closed
        .first()
        .zip(closed.last())
        .map(|(a, b)| (at(b) - at(a)).num_microseconds().unwrap_or(0) as f64 / 1e6)
        .unwrap_or(0.0);
    let rate = match spec.window_s {
        Some(w) => whole_windows_rate(&closed, w),
        None if span > 0.0 => (n - 1) as f64 / span,
        None => 0.0,
    };
    let least = (minimum - 1) as f64 / spec.ceiling;
    let recorded = recorded_requests(tmp.path(), spec.paths);
    if std::env::var("EXPORT_BENCH_TRACE").is_ok_and(|v| v == "1") {
        // Requests sent in each second from the first, and the longest pause between sends.
        if let Some(first) = recorded.first().map(|r| r.0) {
            let mut per_sec: BTreeMap<i64, usize> = BTreeMap::new();
            for (a, _) in &recorded {
                *per_sec.entry((*a - first).num_seconds()).or_default() += 1;
            }
            let secs: Vec<String> = per_sec.values().map(|n| n.to_string()).collect();
            let pause = recorded
                .windows(2)
                .map(|w| (w[1].0 - w[0].0).num_milliseconds())
                .max()
                .unwrap_or(0);
            println!(
                "{} sent per second: {}; longest pause between sends {pause} ms",
                spec.name,
                secs.join(" ")
            );
        }
    }
    if let Some((p50, p90, inflight, idle, full)) = profile(&recorded) {
        profiles.push(format!(
            "{:>8} {:>9} {:>9.1} {:>9.1} {:>9.2} {:>9.3} {:>9.3}",
            spec.name, stored, p50, p90, inflight, idle, full
        ));
    }
    println!(
        "{:>8} {:>9} {:>9} {:>6} {:>7.3} {:>9.2} {:>9.2} {:>7.3} {:>9.2} {:>9.2} {:>5} {:>9} {:>8.1}",
        spec.name,
        stored,
        n,
        minimum,
        n as f64 / minimum as f64,
        rate,
        spec.ceiling,
        rate / spec.ceiling,
        span,
        least,
        s429,
        status_kib("VmHWM:").max(hwm_before) / 1024,
        built + total,
    );
    server.shutdown().await.ok();
    if std::env::var("EXPORT_BENCH_KEEP").is_ok_and(|v| v == "1") {
        println!("{} kept: {}", spec.name, tmp.keep().display());
    }
}

fn main() {
    let sizes: Option<Vec<usize>> = std::env::var("EXPORT_BENCH_ORDERS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    let exchanges: Vec<String> = std::env::var("EXPORT_BENCH_EXCHANGES")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_else(|| SPECS.iter().map(|s| s.name.to_string()).collect());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("closed-order export over loopback, each exchange's rate limits enforced by the mock");
    println!(
        "{:>8} {:>9} {:>9} {:>6} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>5} {:>9} {:>8}",
        "exchange",
        "orders",
        "requests",
        "min",
        "ratio",
        "req/s",
        "ceiling",
        "ratio",
        "span s",
        "least s",
        "429",
        "peak MiB",
        "run s"
    );
    let mut profiles = Vec::new();
    rt.block_on(async {
        for spec in SPECS
            .iter()
            .filter(|s| exchanges.iter().any(|e| e == s.name))
        {
            let sizes = sizes.clone().unwrap_or_else(|| vec![spec.default_orders]);
            for &n in &sizes {
                export(spec, n, &mut profiles).await;
            }
        }
    });
    println!("(min: ⌈orders / page⌉ plus the page that ends the list (KuCoin: per symbol, and one classic request a symbol);");
    println!(" req/s: closed-order requests, first to last (KuCoin: over its whole 30-s windows, against the sustained");
    println!(" 4,000 / 30 s at weight 2; 0 when the run fits in one window); least s: what the ceiling allows for the minimum;");
    println!(" peak MiB: mock and client in one process; run s: mock set-up + export)");
    println!();
    println!("where the closed-order requests' time went, as the client recorded them");
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "exchange", "orders", "p50 ms", "p90 ms", "in flight", "idle", "all lanes"
    );
    for p in &profiles {
        println!("{p}");
    }
    println!("(p50/p90: send to answer, the mock's work and loopback; in flight: mean requests sent and not");
    println!(" answered; idle: share of the span with none; all lanes: with {LANES} in flight, the most the export sends)");
}
