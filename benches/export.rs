//! The closed-order export against the mock over loopback with Upbit's rate limits enforced:
//! requests against the minimum and throughput against the ceiling. Run:
//! `cargo bench --bench export` (`EXPORT_BENCH_ORDERS=100000,1000000` picks the sizes; the
//! default, 20,000, takes seconds).
//!
//! For each size, a victim whose bot placed that many orders over six days; then
//! `exchange.export_history` (closed orders only: no open orders, transfers or candles) of the
//! last seven days through `session::run_new`. From the mock's request log:
//! - requests: closed-order calls next to the minimum, ⌈orders / 1,000⌉ (plus one empty answer
//!   when the count is a multiple of the page), as a ratio (goal ≤ 1.1);
//! - throughput: closed-order calls per second, first to last, against the `default` group's
//!   ceiling of 30/s (goal ≥ 0.9), and the least time that ceiling allows for the minimum;
//! - 429 answers (must be 0), and the process's peak RSS (mock and client together: the mock
//!   holds every order in memory, the client streams each page to disk).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use respond::cli::BotLogArgs;
use respond::credentials::KeyPair;
use respond::mock::upbit::Upbit;
use respond::mock::venue::state::OrderState;
use respond::mock::{self, MockOptions, RequestRecord, Venue};
use respond::output::{Printer, Verbosity};
use respond::secret::Secret;
use respond::session::{run_new, Connection, RunSettings};

/// Upbit's most closed orders per call, and the `default` group's requests per second.
const PAGE: usize = 1000;
const CEILING: f64 = 30.0;

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
    let days = 6;
    let yaml = format!(
        r#"name: export-bench
description: export benchmark
seed: 3
markets:
  - {{ code: KRW-BTC, korean_name: 비트코인, english_name: Bitcoin, price: "135000000", volatility: 0.025, depth: {{ levels: 15, step_pct: "0.05", level_krw: "40000000" }} }}
  - {{ code: KRW-XRP, korean_name: 리플, english_name: XRP, price: "3100", volatility: 0.04, depth: {{ levels: 15, step_pct: "0.1", level_krw: "10000000" }} }}
accounts:
  - {{ name: victim, balances: {{ KRW: "100000000000", BTC: "1000", XRP: "100000000" }} }}
keys:
  - {{ account: victim, label: bot, permissions: [read, trade] }}
bot:
  account: victim
  key: bot
  markets: [KRW-BTC, KRW-XRP]
  days: {days}
  orders_per_day: {}
  order_krw: ["6000", "20000"]
  ord_types: [limit, price, market]
  open_orders: 0
"#,
        orders.div_ceil(days)
    );
    mock::scenario::parse("export-bench.yaml", &yaml, None).expect("bench scenario parses")
}

const PLAYBOOK: &str = r#"name: export-bench
description: Export the closed orders of seven days.
steps:
  - id: export
    uses: exchange.export_history
    with:
      since: 7d
      include_open: false
      transfers: false
      candles: false
"#;

fn at(r: &RequestRecord) -> DateTime<Utc> {
    r.at.parse().expect("request log time")
}

async fn export(orders: usize) {
    let t_build = Instant::now();
    let venue = Venue::new(
        &Upbit,
        scenario(orders),
        MockOptions {
            live_attacker: false,
            ..MockOptions::default()
        },
    )
    .unwrap();
    let built = t_build.elapsed().as_secs_f64();
    let server = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Upbit), venue)
        .await
        .expect("mock binds");
    let stored = {
        let w = server.state.world();
        w.count_in_state(OrderState::Done) + w.count_in_state(OrderState::Cancelled)
    };
    let k = server.state.key("bot").expect("key").clone();
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("playbook.yaml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let settings = RunSettings {
        playbook: Some(pb),
        inputs: BTreeMap::new(),
        bot_logs: BotLogArgs::default(),
        out: tmp.path().join("evidence"),
        dry_run: false,
        assume_yes: true,
        interactive: false,
        rerun: None,
    };
    let conn = Connection {
        exchange: "upbit".into(),
        api_url: Some(server.url.clone()),
        primary: Some(KeyPair {
            access_key: k.access_key.clone(),
            secret_key: Secret::new(k.secret_key.clone()),
            passphrase: k.passphrase.clone().map(Secret::new),
        }),
        readonly: None,
        master: None,
    };
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
        .filter(|r| r.method == "GET" && r.path == "/v1/orders/closed")
        .collect();
    let s429 = log.iter().filter(|r| r.status == 429).count();
    let n = closed.len();
    let minimum = stored / PAGE + 1;
    let span = closed
        .first()
        .zip(closed.last())
        .map(|(a, b)| (at(b) - at(a)).num_microseconds().unwrap_or(0) as f64 / 1e6)
        .unwrap_or(0.0);
    let rate = if span > 0.0 {
        (n - 1) as f64 / span
    } else {
        0.0
    };
    let least = (minimum - 1) as f64 / CEILING;
    println!(
        "{:>9} {:>9} {:>6} {:>7.3} {:>9.2} {:>9.2} {:>7.3} {:>9.2} {:>9.2} {:>5} {:>9} {:>8.1}",
        stored,
        n,
        minimum,
        n as f64 / minimum as f64,
        rate,
        CEILING,
        rate / CEILING,
        span,
        least,
        s429,
        status_kib("VmHWM:").max(hwm_before) / 1024,
        built + total,
    );
    server.shutdown().await.ok();
}

fn main() {
    let sizes: Vec<usize> = std::env::var("EXPORT_BENCH_ORDERS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![20_000]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("closed-order export over loopback, Upbit's rate limits enforced by the mock");
    println!(
        "{:>9} {:>9} {:>6} {:>7} {:>9} {:>9} {:>7} {:>9} {:>9} {:>5} {:>9} {:>8}",
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
    rt.block_on(async {
        for &n in &sizes {
            export(n).await;
        }
    });
    println!("(min: ⌈orders / 1,000⌉, plus one empty answer when a multiple; req/s: closed-order calls, first to last;");
    println!(" least s: what 30/s allows for the minimum; peak MiB: mock and client in one process; run s: mock set-up + export)");
}
