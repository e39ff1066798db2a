//! The closed-order export against the mock over loopback, with more orders in the window
//! than one page holds: a full page is continued by cursor (never split and discarded), so the
//! export sends the least number of requests (counted in the mock's request log) and every
//! order arrives exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use respond::exchange::Order;
use respond::mock::upbit::Upbit;
use respond::mock::venue::state::OrderState;
use respond::mock::{self, MockOptions, Venue};

use crate::support;
use serde_json::Value;

/// Upbit's most closed orders per call.
const PAGE: usize = 1000;

/// A victim whose bot placed `per_day` orders a day for two days, none left open.
fn scenario(per_day: u32) -> mock::Scenario {
    let yaml = format!(
        r#"name: paging
description: more closed orders than one page
seed: 5
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
  days: 2
  orders_per_day: {per_day}
  order_krw: ["6000", "20000"]
  ord_types: [limit, price, market]
  open_orders: 0
"#
    );
    mock::scenario::parse("paging.yaml", &yaml, None).expect("scenario parses")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_over_one_page_is_read_by_cursor_with_the_fewest_requests() {
    let venue = Venue::new(
        &Upbit,
        scenario(1_300),
        MockOptions {
            live_attacker: false,
            ..MockOptions::default()
        },
    )
    .unwrap();
    let server = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Upbit), venue)
        .await
        .unwrap();
    let stored = {
        let w = server.state.world();
        w.count_in_state(OrderState::Done) + w.count_in_state(OrderState::Cancelled)
    };
    assert!(
        stored > 2 * PAGE,
        "the window holds {stored} orders: over two pages"
    );
    let k = server.state.key("bot").unwrap().clone();
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("playbook.yaml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let report = support::mock::run_playbook(
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
    let out = &report.step("export").unwrap().outputs;
    assert_eq!(out["complete"], true);
    assert_eq!(out["closed_order_count"], stored as u64);

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

    // Every order once, in the merged list and across the chunk files.
    let orders: Vec<Order> =
        serde_json::from_slice(&std::fs::read(report.dir.join("export/orders.json")).unwrap())
            .unwrap();
    let ids: HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(orders.len(), stored);
    assert_eq!(ids.len(), stored);
    let proof: Value =
        serde_json::from_slice(&std::fs::read(report.dir.join("export-chunks.json")).unwrap())
            .unwrap();
    assert_eq!(proof["every_chunk_proven"], true);
    assert_eq!(proof["covers_window"], true);
    let chunks = proof["chunks"].as_array().unwrap();
    let in_chunks: u64 = chunks.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(in_chunks, stored as u64, "the chunks do not overlap");
    assert!(chunks.iter().any(|c| c["cursor"] == true));
    server.shutdown().await.ok();
}
