//! The closed-order export against the mock over loopback, with more orders in the window
//! than one page holds: a full page is continued by cursor (never split and discarded), so the
//! export sends the least number of requests (counted in the mock's request log) and every
//! order arrives exactly once. Upbit answers a full page with the window's newest orders,
//! Binance's `allOrders` with its oldest: both are continued by cursor. Bybit and Coinbase
//! follow their own page cursor inside one call (50 and 100 orders a page, up to 1,000 a
//! call) newest first: a full call is continued by cursor too, and while lanes stand idle a
//! call asks for a few pages only, so the rest of the window is shared among lanes read at
//! once (each part its own span, continued by its own cursor). KuCoin's HF list (100 a page)
//! is read per symbol, its classic list once per span.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use respond::exchange::Order;
use respond::mock::binance::Binance;
use respond::mock::bybit::Bybit;
use respond::mock::coinbase::Coinbase;
use respond::mock::kucoin::Kucoin;
use respond::mock::upbit::Upbit;
use respond::mock::venue::state::OrderState;
use respond::mock::{self, MockOptions, Venue};

use crate::support;
use serde_json::Value;

/// Upbit's most closed orders per call.
const PAGE: usize = 1000;

/// A victim whose bot placed `per_day` orders a day for two days, none left open.
fn scenario(per_day: u32) -> mock::Scenario {
    support::mock::two_markets("paging", 2, per_day, 0)
}

const PLAYBOOK: &str = r#"name: export-paging
description: Export the closed orders of three days.
steps:
  - id: export
    uses: exchange.export_history
    with:
      since: 3d
      include_open: false
      transfers: false
      candles: false
"#;

/// Serves `facade` with [`scenario`]`(per_day)` and runs [`PLAYBOOK`] against it (the run must
/// succeed); the temporary directory holds the evidence.
async fn export(
    facade: Arc<dyn mock::Facade>,
    per_day: u32,
) -> (
    mock::MockServer,
    respond::engine::RunReport,
    tempfile::TempDir,
) {
    let venue = Venue::new(
        facade.as_ref(),
        scenario(per_day),
        MockOptions {
            live_attacker: false,
            ..MockOptions::default()
        },
    )
    .unwrap();
    let exchange = facade.name();
    let server = mock::serve("127.0.0.1:0".parse().unwrap(), facade, venue)
        .await
        .unwrap();
    let k = server.state.key("bot").unwrap().clone();
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("playbook.yaml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let report = support::mock::run_playbook_on(
        exchange,
        &server.url,
        &k,
        &pb,
        BTreeMap::new(),
        Default::default(),
        tmp.path().join("evidence"),
    )
    .await
    .unwrap_or_else(|f| panic!("run failed to start: {f:?}"));
    assert!(
        report.ok,
        "export ok: {:?}",
        report.failed().collect::<Vec<_>>()
    );
    (server, report, tmp)
}

/// Every one of the `stored` orders once, in the merged list and across the chunks the proof
/// counts (their files are removed once merged), and the completeness proof holds with at
/// least one page continued by cursor.
fn exported_once(dir: &std::path::Path, stored: usize) {
    let orders: Vec<Order> =
        serde_json::from_slice(&std::fs::read(dir.join("export/orders.json")).unwrap()).unwrap();
    let ids: HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(orders.len(), stored);
    assert_eq!(ids.len(), stored);
    let proof: Value =
        serde_json::from_slice(&std::fs::read(dir.join("export-chunks.json")).unwrap()).unwrap();
    assert_eq!(proof["every_chunk_proven"], true);
    assert_eq!(proof["covers_window"], true);
    let chunks = proof["chunks"].as_array().unwrap();
    let in_chunks: u64 = chunks.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(in_chunks, stored as u64, "the chunks do not overlap");
    assert!(chunks.iter().any(|c| c["cursor"] == true));
    assert!(!dir.join("export/chunks").exists(), "merged, then removed");
}

/// The closed orders the mock stores, after checking there are more than `over` (two `what`)
/// and that the export step completed with every one of them.
fn exported_every_closed_order(
    server: &mock::MockServer,
    report: &respond::engine::RunReport,
    over: usize,
    what: &str,
) -> usize {
    let stored = {
        let w = server.state.world();
        w.count_in_state(OrderState::Done) + w.count_in_state(OrderState::Cancelled)
    };
    assert!(
        stored > over,
        "the window holds {stored} orders: over two {what}"
    );
    let out = &report.step("export").unwrap().outputs;
    assert_eq!(out["complete"], true);
    assert_eq!(out["closed_order_count"], stored as u64);
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_over_one_page_is_read_by_cursor_with_the_fewest_requests() {
    let (server, report, _tmp) = export(Arc::new(Upbit), 1_300).await;
    let stored = exported_every_closed_order(&server, &report, 2 * PAGE, "pages");

    // One request per page: ⌈stored / page⌉ (a last page that happens to be full needs one
    // more, empty, answer to prove the window ends there).
    let log = server.state.requests();
    let closed = log
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/v1/orders/closed")
        .count();
    assert_eq!(
        closed,
        stored / PAGE + 1,
        "closed-order requests for {stored} orders"
    );
    assert!(log.iter().all(|r| r.status == 200), "no refusal, no 429");

    exported_once(&report.dir, stored);
    server.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binance_window_over_one_page_is_read_oldest_first_with_the_fewest_requests() {
    // About 2,500 orders per symbol and 24-hour window: three `allOrders` pages each.
    let (server, report, _tmp) = export(Arc::new(Binance), 5_000).await;
    let k = server.state.key("bot").unwrap().clone();
    let out = &report.step("export").unwrap().outputs;
    assert_eq!(out["complete"], true);
    let time =
        |k: &str| -> chrono::DateTime<chrono::Utc> { out[k].as_str().unwrap().parse().unwrap() };
    let (from, to) = (time("window_from"), time("window_to"));
    let symbols = out["symbol_count"].as_u64().unwrap() as usize;

    // The stored orders per market and 24-hour span of the window (as the export reads it).
    let day = chrono::Duration::hours(24);
    let mut spans = Vec::new();
    let mut t = from;
    while t < to {
        spans.push((t, (t + day).min(to)));
        t += day;
    }
    let mut per_span: BTreeMap<(String, usize), usize> = BTreeMap::new();
    let mut stored = 0;
    {
        let w = server.state.world();
        for o in w.orders.iter().filter(|o| o.account == k.account) {
            if let Some(i) = spans
                .iter()
                .position(|(a, b)| o.created_at >= *a && o.created_at < *b)
            {
                *per_span.entry((o.market.symbol.clone(), i)).or_default() += 1;
                stored += 1;
            }
        }
    }
    let traded: HashSet<&str> = per_span.keys().map(|(m, _)| m.as_str()).collect();
    assert!(
        per_span.values().any(|n| *n > 2 * PAGE),
        "a symbol's 24 hours hold over two pages: {per_span:?}"
    );
    assert_eq!(out["order_count"], stored as u64);

    // One request per page of each symbol and span (⌊n / page⌋ full pages and the partial
    // one that ends the span); a symbol that did not trade, one empty answer per span.
    let minimum: usize = (0..spans.len())
        .map(|i| {
            traded
                .iter()
                .map(|m| per_span.get(&(m.to_string(), i)).copied().unwrap_or(0) / PAGE + 1)
                .sum::<usize>()
        })
        .sum::<usize>()
        + (symbols - traded.len()) * spans.len();
    let log = server.state.requests();
    let all_orders = log
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v3/allOrders")
        .count();
    assert_eq!(
        all_orders, minimum,
        "allOrders requests for {stored} orders"
    );
    assert!(log.iter().all(|r| r.status == 200), "no refusal, no 429");

    exported_once(&report.dir, stored);
    server.shutdown().await.ok();
}

/// The windows (query parameters `start` and `end`) of the closed-order requests (`path`) the
/// run recorded in `dir/raw/`, with how many requests each.
fn request_windows(
    dir: &std::path::Path,
    path: &str,
    [start, end]: [&str; 2],
) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("raw")).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".meta.json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        if v["endpoint"] != path {
            continue;
        }
        let param = |name: &str| {
            v["params"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv[0] == name)
                .and_then(|kv| kv[1].as_str())
                .unwrap_or_else(|| panic!("{} names no {name}", p.display()))
                .to_string()
        };
        *out.entry((param(start), param(end))).or_default() += 1;
    }
    out
}

/// Exports [`scenario`]`(per_day)` from an exchange that keeps history per account (one
/// listing, `path`, `page` orders a request, `cap` a call, the window sent as `bounds`) and
/// checks the request count against the floor: ⌈stored / page⌉ (one more when
/// the last page is full), plus at most one page per full call continued by cursor (its
/// boundary second is read again by the next call) and one partial page per part the window
/// was shared into; within 1.1× of the floor. The window is one span the exchange allows, yet
/// its first call, alone in flight, is not followed over a whole call's pages one after the
/// other: after a few pages its rest is shared among lanes (requests starting inside the
/// window), read at once.
async fn per_account_export(
    facade: Arc<dyn mock::Facade>,
    per_day: u32,
    path: &str,
    bounds: [&str; 2],
    page: usize,
    cap: usize,
) {
    let (server, report, _tmp) = export(facade, per_day).await;
    let stored = exported_every_closed_order(&server, &report, 2 * cap, "calls");

    let log = server.state.requests();
    let sent = log
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count();
    let windows = request_windows(&report.dir, path, bounds);
    assert_eq!(
        windows.values().sum::<usize>(),
        sent,
        "every request recorded"
    );
    // The first call reads the whole window: the earliest start with the latest end.
    let first = windows
        .iter()
        .min_by(|a, b| a.0 .0.cmp(&b.0 .0).then(b.0 .1.cmp(&a.0 .1)))
        .map(|(_, n)| *n)
        .unwrap();
    assert!(
        first < cap / page,
        "{path}: the first call, alone in flight, read {first} pages in a row before the rest \
         was shared (a call holds {} pages): {windows:?}",
        cap / page
    );
    let starts: HashSet<&str> = windows.keys().map(|(s, _)| s.as_str()).collect();
    assert!(
        starts.len() >= 2,
        "{path}: the window's rest is shared among lanes, each part from its own start: \
         {windows:?}"
    );
    let floor = stored / page + 1;
    let continued = stored / cap;
    let parts = starts.len() - 1;
    assert!(
        (floor..=floor + continued + parts).contains(&sent),
        "{path}: {sent} requests for {stored} orders (floor {floor}, {continued} full calls, \
         {parts} parts)"
    );
    assert!(
        sent as f64 <= 1.1 * floor as f64,
        "{path}: {sent} requests against a floor of {floor}"
    );
    assert!(log.iter().all(|r| r.status == 200), "no refusal, no 429");

    exported_once(&report.dir, stored);
    server.shutdown().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bybit_window_over_one_call_is_continued_by_cursor_with_the_fewest_requests() {
    per_account_export(
        Arc::new(Bybit),
        1_200,
        "/v5/order/history",
        ["startTime", "endTime"],
        50,
        1000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coinbase_window_over_one_call_is_continued_by_cursor_with_the_fewest_requests() {
    per_account_export(
        Arc::new(Coinbase),
        2_000,
        "/api/v3/brokerage/orders/historical/batch",
        ["start_date", "end_date"],
        100,
        1000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kucoin_symbol_over_one_call_is_continued_by_cursor_with_the_fewest_requests() {
    const HF_PAGE: usize = 100;
    const CALL: usize = 950;
    let (server, report, _tmp) = export(Arc::new(Kucoin), 2_200).await;
    let k = server.state.key("bot").unwrap().clone();
    let out = &report.step("export").unwrap().outputs;
    assert_eq!(out["complete"], true);
    let time =
        |k: &str| -> chrono::DateTime<chrono::Utc> { out[k].as_str().unwrap().parse().unwrap() };
    let (from, to) = (time("window_from"), time("window_to"));
    let symbols = out["symbol_count"].as_u64().unwrap() as usize;
    let mut per_symbol: BTreeMap<String, usize> = BTreeMap::new();
    {
        let w = server.state.world();
        for o in w.orders.iter().filter(|o| o.account == k.account) {
            if o.created_at >= from && o.created_at < to {
                *per_symbol.entry(o.market.symbol.clone()).or_default() += 1;
            }
        }
    }
    let stored: usize = per_symbol.values().sum();
    assert!(
        per_symbol.values().any(|n| *n > 2 * CALL),
        "a symbol holds over two calls: {per_symbol:?}"
    );
    assert_eq!(out["order_count"], stored as u64);

    // Each symbol's HF list: its full pages, then the page that ends it (short or empty); a
    // call cut at its limit may read its boundary page again. The classic list once a symbol.
    let floor: usize =
        per_symbol.values().map(|n| n / HF_PAGE + 1).sum::<usize>() + (symbols - per_symbol.len());
    let continued: usize = per_symbol.values().map(|n| n / CALL).sum();
    let log = server.state.requests();
    let count = |path: &str| {
        log.iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .count()
    };
    let hf = count("/api/v1/hf/orders/done");
    assert!(
        (floor..=floor + continued).contains(&hf),
        "{hf} HF requests for {stored} orders (floor {floor}, {continued} full calls)"
    );
    assert_eq!(
        count("/api/v1/orders"),
        symbols,
        "the classic list once a symbol"
    );
    assert!(log.iter().all(|r| r.status == 200), "no refusal, no 429");

    exported_once(&report.dir, stored);
    server.shutdown().await.ok();
}
