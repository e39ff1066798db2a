//! The order of calls during containment (issue 18): with a big book, the default leak
//! playbook sends its first cancel before any read only the snapshot needs (balances, key
//! list, address allowlist), lists the book once before cancelling (the cancel path's own
//! listing, not a second one for the snapshot), and still loses no evidence of what was open:
//! the snapshot names every order open at the start, taken from that listing and labelled so,
//! and every listing and cancel answer the mock sent is under `raw/`. The mock enforces Upbit's
//! limits: the run gets no 429, and every order the mock's log shows cancelled is named in a
//! cancel answer under `raw/`. On Coinbase (30 signed requests a second, no cancel-all) the
//! cancel step's own listing is the evidence too, so 1,000 orders are listed once and all
//! cancelled within the first second's budget.
//!
//! Real HTTP over loopback to the in-process mock; the run shares the test's paused tokio
//! clock, so the rate limiter's waits take no real time. `RESPOND_CONTAIN_ORDERS` sizes the
//! book (default 320: four listing pages, a batch cancel and uuid cancels; CI runs 1,000).

use std::collections::{BTreeMap, BTreeSet};

use respond::engine::StepStatus;
use respond::mock::{MockOptions, RequestRecord};

use crate::support;

fn book_size() -> usize {
    std::env::var("RESPOND_CONTAIN_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(320)
}

/// The default leak playbook's inputs: nobody deletes the key, so the verification gives up
/// after a second (after containment, which is what these tests look at).
fn leak_inputs() -> BTreeMap<String, String> {
    [
        ("since", "1h"),
        ("revoke_interval", "200ms"),
        ("revoke_timeout", "1s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The `id` of every order in a JSON array of orders.
fn ids(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn is_cancel(r: &RequestRecord) -> bool {
    r.method == "DELETE" && r.path.starts_with("/v1/order")
}

#[tokio::test(start_paused = true)]
async fn the_first_cancel_goes_before_the_snapshot_and_no_open_order_is_lost() {
    respond::time::follow_tokio_clock();
    let n = book_size();
    let sc = support::mock::two_markets("big-book", 1, 4, n);
    let server = support::mock::serve(sc, MockOptions::default()).await;
    let bot = server.state.key("bot").unwrap();
    let open_before: BTreeSet<String> = support::mock::open_orders(&server.url, bot)
        .await
        .into_iter()
        .collect();
    assert_eq!(open_before.len(), n, "the scenario rests {n} orders");
    let skip = server.state.requests().len();

    let tmp = tempfile::tempdir().unwrap();
    let inputs = leak_inputs();
    let report = support::mock::run_leak(&server.url, bot, inputs, tmp.path().join("ev"))
        .await
        .unwrap_or_else(|f| panic!("the run could not start: {f:?}"));
    for id in ["cancel_orders", "snapshot", "probe"] {
        let s = report.step(id).unwrap();
        assert_eq!(s.status, StepStatus::Ok, "{id}: {:?}", s.error);
    }

    // The order of calls, from the mock's log.
    let log: Vec<RequestRecord> = server.state.requests().into_iter().skip(skip).collect();
    let first_cancel = log.iter().position(is_cancel).expect("a cancel was sent");
    let before = &log[..first_cancel];
    let seen = |path: &str| before.iter().filter(|r| r.path == path).count();
    // Balances and the address allowlist are read by the snapshot (and the permission probe),
    // never by the cancel path: none before the first cancel.
    assert_eq!(seen("/v1/accounts"), 0, "{before:#?}");
    assert_eq!(seen("/v1/withdraws/coin_addresses"), 0);
    // The key list: only the revocation step's one read (it shows what to delete at once);
    // the snapshot's clock and key list come after.
    assert!(seen("/v1/api_keys") <= 1, "{}", seen("/v1/api_keys"));
    // The book is listed once, by the cancel path: pages of 100 until one is not full (the
    // first alone, then four at a time: at most three read past the end).
    let pages = n / 100 + 1;
    let listed = seen("/v1/orders/open");
    assert!(
        (pages..pages + 4).contains(&listed),
        "{listed} listing calls"
    );

    // No order that was open is missing from the evidence: the snapshot names each, from the
    // cancel path's listing, and says so; the cancel step cancelled each.
    let dir = &report.dir;
    let snap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("snapshot-snapshot.json")).unwrap())
            .unwrap();
    assert_eq!(ids(&snap["open_orders"]), open_before);
    let source = snap["open_orders_source"].as_str().unwrap_or_default();
    assert!(
        source.contains("cancel_orders") && source.contains("before its first cancel"),
        "{source}"
    );
    let cancel: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cancel-cancel_orders.json")).unwrap())
            .unwrap();
    assert_eq!(ids(&cancel["open_at_start"]), open_before);
    assert_eq!(ids(&cancel["cancelled"]), open_before);

    // Every listing page and cancel answer is under raw/, as sent.
    let raw: Vec<String> = std::fs::read_dir(dir.join("raw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".body"))
        .collect();
    let raw_count = |kind: &str| raw.iter().filter(|f| f.contains(kind)).count();
    let ours = |f: &dyn Fn(&RequestRecord) -> bool| {
        log.iter()
            .filter(|r| r.access_key.as_deref() == Some(bot.access_key.as_str()))
            .filter(|r| f(r))
            .count()
    };
    assert_eq!(
        raw_count("-GET-v1_orders_open"),
        ours(&|r| r.method == "GET" && r.path == "/v1/orders/open")
    );
    assert_eq!(raw_count("-DELETE-"), ours(&is_cancel));

    // The limiter's bursts (the server's own count releases the next window's cancels at
    // once) stayed inside the mock's windows: not one request refused.
    let refused: Vec<&RequestRecord> = log
        .iter()
        .filter(|r| r.status == 429 || r.status == 418)
        .collect();
    assert!(
        refused.is_empty(),
        "{} refused: {refused:#?}",
        refused.len()
    );
    // What the mock cancelled, from its own log, is every order open at the start, and each
    // is named in a cancel answer kept under raw/ (what a cancel answers is the evidence).
    let by_mock: BTreeSet<String> = log
        .iter()
        .filter(|r| is_cancel(r))
        .flat_map(|r| r.orders_cancelled.iter().map(|u| u.to_string()))
        .collect();
    assert_eq!(by_mock, open_before);
    let answers: String = raw
        .iter()
        .filter(|f| f.contains("-DELETE-"))
        .map(|f| std::fs::read_to_string(dir.join("raw").join(f)).unwrap())
        .collect();
    let unanswered: Vec<&String> = open_before
        .iter()
        .filter(|id| !answers.contains(id.as_str()))
        .collect();
    assert!(
        unanswered.is_empty(),
        "not in any cancel answer: {unanswered:?}"
    );
    assert!(support::mock::open_orders(&server.url, bot)
        .await
        .is_empty());
}

/// The Coinbase façade's orders listing (every status group, by cursor) and its batch cancel.
const CB_ORDERS: &str = "/api/v3/brokerage/orders/historical/batch";
const CB_BATCH_CANCEL: &str = "/api/v3/brokerage/orders/batch_cancel";

/// Issue 18 on Coinbase, whose per-user budget is 30 signed requests a second and which has no
/// cancel-all: 1,000 open orders take ten listing pages of `OPEN`, one of the other open
/// statuses and ten `batch_cancel` calls of 100. The cancel step's own listing is the evidence
/// of the book (no second listing before its first cancel), so every cancel of the default
/// leak playbook goes out within the first second's 30 signed requests, none refused, and the
/// snapshot and the cancel report still name every order open at the start.
#[tokio::test(start_paused = true)]
async fn coinbase_cancels_a_thousand_orders_within_the_first_seconds_budget() {
    use respond::exchange::coinbase::{CoinbaseClient, CoinbaseConfig};
    use respond::mock::coinbase::Coinbase;
    use std::sync::Arc;

    respond::time::follow_tokio_clock();
    let n = 1000;
    let sc = support::mock::two_markets("big-book", 1, 4, n);
    let state = respond::mock::Venue::new(&Coinbase, sc, MockOptions::default()).unwrap();
    let server = respond::mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Coinbase), state)
        .await
        .unwrap();
    let bot = server.state.key("bot").unwrap().clone();
    let mut cfg = CoinbaseConfig::new(
        bot.access_key.clone(),
        respond::secret::Secret::new(bot.secret_key.clone()),
    );
    cfg.base_url = Some(server.url.clone());
    let open_before: BTreeSet<String> =
        support::mock::open_order_ids(&CoinbaseClient::new(cfg).unwrap())
            .await
            .into_iter()
            .collect();
    assert_eq!(open_before.len(), n, "the scenario rests {n} orders");
    // The check's listing spent the account's budget: the run starts on a fresh second.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let skip = server.state.requests().len();

    let tmp = tempfile::tempdir().unwrap();
    let inputs = leak_inputs();
    let report =
        support::mock::run_leak_on("coinbase", &server.url, &bot, inputs, tmp.path().join("ev"))
            .await
            .unwrap_or_else(|f| panic!("the run could not start: {f:?}"));
    for id in ["cancel_orders", "snapshot"] {
        let s = report.step(id).unwrap();
        assert_eq!(s.status, StepStatus::Ok, "{id}: {:?}", s.error);
    }

    let log: Vec<RequestRecord> = server.state.requests().into_iter().skip(skip).collect();
    let last_cancel = log
        .iter()
        .rposition(|r| r.path == CB_BATCH_CANCEL)
        .expect("a batch_cancel was sent");
    let upto = &log[..=last_cancel];
    let sequence: Vec<String> = upto
        .iter()
        .map(|r| format!("{} {} {}", r.status, r.method, r.path))
        .collect();
    // One listing of the book (ten full pages of `OPEN`, one page of the other open statuses),
    // then the cancels: no second listing for the snapshot.
    let listings = upto.iter().filter(|r| r.path == CB_ORDERS).count();
    assert_eq!(listings, n / 100 + 1, "{sequence:#?}");
    assert_eq!(
        upto.iter().filter(|r| r.path == CB_BATCH_CANCEL).count(),
        n / 100
    );
    // Every signed request up to the last cancel fits in the first second's budget.
    let signed = upto
        .iter()
        .filter(|r| r.access_key.as_deref() == Some(bot.access_key.as_str()))
        .count();
    assert!(signed <= 30, "{signed} signed requests: {sequence:#?}");
    let refused: Vec<&RequestRecord> = log.iter().filter(|r| r.status == 429).collect();
    assert!(refused.is_empty(), "{refused:#?}");

    // Preserve-first: the cancel step's listing, taken before its first cancel, is the
    // evidence of the book, and the snapshot's open orders are it, labelled so.
    let dir = &report.dir;
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap()
    };
    let snap = json("snapshot-snapshot.json");
    assert_eq!(ids(&snap["open_orders"]), open_before);
    let source = snap["open_orders_source"].as_str().unwrap_or_default();
    assert!(
        source.contains("cancel_orders") && source.contains("before its first cancel"),
        "{source}"
    );
    let cancel = json("cancel-cancel_orders.json");
    assert_eq!(ids(&cancel["open_at_start"]), open_before);
    assert_eq!(ids(&cancel["cancelled"]), open_before);
    let by_mock: BTreeSet<String> = log
        .iter()
        .flat_map(|r| r.orders_cancelled.iter().map(|u| u.to_string()))
        .collect();
    assert_eq!(by_mock, open_before);
    server.shutdown().await.ok();
}
