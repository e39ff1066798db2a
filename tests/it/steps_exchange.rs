//! The exchange step kinds and the replacement checklist against the fake in-memory exchange
//! of `support::fake_exchange`, which behaves like Upbit where it matters to the steps. Two
//! keys (the leaked one and a read-only one) share one account. End-to-end tests over HTTP
//! against the real mock live elsewhere.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use respond::exchange::*;
use respond::output::{Printer, Verbosity};
use respond::rundir::RunDir;
use respond::steps::{ExchangeSession, Registry, Services, StepContext, StepError};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::support::fake_exchange::*;

const PRIMARY: &str = "LEAKEDaccesskey0000000000000000000000wxyz";
const READONLY: &str = "READaccesskey11111111111111111111111111ro1";

struct Env {
    _tmp: tempfile::TempDir,
    ctx: StepContext,
    reg: Registry,
}

/// Where the export step `s` of these tests merges its orders, and keeps its chunks.
const ORDERS: &str = "export/orders-s.json";
const CHUNKS: &str = "export/chunks/s";

fn env(primary: Arc<Fake>, readonly: Option<Arc<Fake>>) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    env_in(tmp, rd, primary, readonly)
}

fn env_in(
    tmp: tempfile::TempDir,
    rd: RunDir,
    primary: Arc<Fake>,
    readonly: Option<Arc<Fake>>,
) -> Env {
    env_with(tmp, rd, primary, readonly, false)
}

fn env_with(
    tmp: tempfile::TempDir,
    rd: RunDir,
    primary: Arc<Fake>,
    readonly: Option<Arc<Fake>>,
    interactive: bool,
) -> Env {
    let session = ExchangeSession::new(primary, readonly.map(|r| r as Arc<dyn Exchange>));
    let ctx = StepContext {
        step_id: "s".into(),
        rundir: rd.clone(),
        printer: Printer::plain(Verbosity::Quiet),
        services: Arc::new(Services {
            exchange: Some(session),
            bot_logs: Default::default(),
            interactive,
            assume_yes: !interactive,
        }),
        run: json!({"id": "r1", "started_at": "2026-11-20T10:00:00.000Z", "dir": rd.path().display().to_string()}),
        dry_run: false,
    };
    let mut reg = Registry::new();
    respond::steps::exchange::register_exchange(&mut reg);
    Env {
        _tmp: tmp,
        ctx,
        reg,
    }
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

impl Env {
    async fn run(
        &self,
        kind: &str,
        a: Value,
    ) -> std::result::Result<respond::steps::StepOutcome, StepError> {
        self.reg
            .get(kind)
            .expect(kind)
            .run(&self.ctx, &args(a))
            .await
    }
    /// Runs `kind` as the playbook step `step` (state files are per step id).
    async fn run_as(
        &mut self,
        step: &str,
        kind: &str,
        a: Value,
    ) -> std::result::Result<respond::steps::StepOutcome, StepError> {
        let prev = std::mem::replace(&mut self.ctx.step_id, step.into());
        let r = self.run(kind, a).await;
        self.ctx.step_id = prev;
        r
    }
    /// What a resume knows from the run's raw answers: the old key worked before.
    fn seen_accepted(&self) {
        let session = self.ctx.services.exchange.as_ref().unwrap();
        session.remember_accepted(&respond::secret::mask_key(PRIMARY), t0());
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.ctx.rundir.join(rel).unwrap()).unwrap()
    }
}

fn account() -> Arc<Mutex<Account>> {
    Arc::new(Mutex::new(Account::default()))
}

#[tokio::test]
async fn registers_every_kind() {
    let e = env(Arc::new(Fake::new(PRIMARY, account(), 1000)), None);
    let names: Vec<_> = e.reg.names().collect();
    for n in [
        "exchange.snapshot",
        "exchange.probe_permissions",
        "exchange.cancel_open_orders",
        "exchange.cancel_pending_withdrawals",
        "exchange.revoke_key",
        "exchange.verify_key_revoked",
        "exchange.export_history",
        "exchange.export_fills",
        "checklist.replacement",
    ] {
        assert!(names.contains(&n), "{n} missing");
    }
}

#[tokio::test]
async fn snapshot_outputs_and_artifact() {
    let acc = account();
    {
        let mut a = acc.lock().unwrap();
        a.open
            .push(order("o1", "KRW-BTC", Utc::now(), OrderState::Open));
        a.withdrawals = vec![transfer("w1", true), transfer("w2", false)];
        a.addresses.push(WithdrawalAddress {
            currency: "BTC".into(),
            net_type: Some("BTC".into()),
            address: "bc1qownaddress99999999999999999abcd".into(),
            secondary_address: None,
            registered_at: None,
        });
    }
    let e = env(Arc::new(Fake::new(PRIMARY, acc, 1000)), None);
    let out = e
        .run("exchange.snapshot", json!({"since": "7d"}))
        .await
        .unwrap();
    let o = &out.outputs;
    assert_eq!(o["server_offset_ms"], 150);
    assert_eq!(o["balance_count"], 1);
    assert_eq!(o["key_count"], 1);
    assert_eq!(o["key_expire_at"], "2027-08-28T00:00:00.000Z");
    assert_eq!(o["open_order_count"], 1);
    assert_eq!(o["withdrawal_count"], 2);
    assert_eq!(o["pending_withdrawal_count"], 1);
    assert_eq!(o["withdrawal_addresses"], json!(["BTC bc1q...abcd"]));
    assert_eq!(o["switched_to_readonly"], false);
    let file = e.read(o["path"].as_str().unwrap());
    assert!(file.contains("bc1qownaddress99999999999999999abcd"));
    assert!(
        !file.contains(PRIMARY),
        "the full access key must not be written"
    );
}

#[tokio::test]
async fn snapshot_partial_keeps_what_it_read_and_names_what_is_missing() {
    let mut f = Fake::new(PRIMARY, account(), 1000);
    f.denied.insert("view_withdrawals");
    let e = env(Arc::new(f), None);
    let err = e.run("exchange.snapshot", json!({})).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("withdrawals") && msg.contains("withdrawal address allowlist"),
        "{msg}"
    );
    assert!(msg.contains("lacks this permission"), "{msg}");
    let file = e.read("snapshot-s.json");
    assert!(file.contains("\"balances\": ["), "{file}");
    let mut f = Fake::new(PRIMARY, account(), 1000);
    f.unsupported.insert("addresses");
    let e2 = env(Arc::new(f), None);
    let out = e2.run("exchange.snapshot", json!({})).await.unwrap();
    assert_eq!(
        out.outputs["unsupported"],
        json!(["withdrawal address allowlist"])
    );
    assert_eq!(out.outputs["withdrawal_address_count"], Value::Null);
    let ok = e
        .run("exchange.snapshot", json!({"allow_partial": true}))
        .await
        .unwrap();
    assert_eq!(ok.outputs["withdrawal_count"], Value::Null);
    assert_eq!(ok.outputs["missing"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn snapshot_race_without_and_with_a_readonly_key() {
    let acc = account();
    let mut f = Fake::new(PRIMARY, acc.clone(), 1000);
    f.die_after = Some(2); // key list and balances work, then the user deletes the key
    let e = env(Arc::new(f), None);
    let err = e.run("exchange.snapshot", json!({})).await.unwrap_err();
    let msg = err.to_string();
    let dir = e.ctx.rundir.path().display().to_string();
    assert!(
        msg.contains("the old key stopped working (it was deleted: good)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "UPBIT_READONLY_ACCESS_KEY=… UPBIT_READONLY_SECRET_KEY=… respond resume {dir}"
        )),
        "{msg}"
    );
    assert!(e.read("snapshot-s.json").contains("\"balances\": ["));
    assert!(e.ctx.services.exchange.as_ref().unwrap().switched());

    let mut f = Fake::new(PRIMARY, acc.clone(), 1000);
    f.die_after = Some(2);
    let ro = Arc::new(Fake::new(READONLY, acc, 1000));
    let e = env(Arc::new(f), Some(ro.clone()));
    let out = e.run("exchange.snapshot", json!({})).await.unwrap();
    assert_eq!(out.outputs["switched_to_readonly"], true);
    assert!(out.outputs["switched_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ro.calls("open_orders"), 1);
    // The old key's expiry is found by its mask even when read with the other key.
    assert_eq!(out.outputs["key_expire_at"], "2027-08-28T00:00:00.000Z");
}

fn probe(withdraw: Option<bool>, ip: Option<bool>) -> PermissionProbe {
    let sp = |s: &str, held| ScopeProbe {
        scope: s.into(),
        class: respond::exchange::upbit::DESCRIPTOR.scope_class(s),
        held,
        evidence: "test".into(),
    };
    PermissionProbe {
        scopes: vec![
            sp("view_account", Some(true)),
            sp("view_orders", Some(true)),
            sp("make_orders", Some(true)),
            sp("view_withdrawals", Some(false)),
            sp("make_withdrawals", withdraw),
        ],
        ip_restricted: ip,
        expire_at: None,
        critical: withdraw == Some(true) || ip == Some(false),
        reasons: if ip == Some(false) {
            vec!["no IP allowlist".into()]
        } else {
            vec![]
        },
    }
}

#[tokio::test]
async fn probe_outputs_scopes_and_withdraw_state() {
    for (w, expect) in [
        (Some(true), json!(true)),
        (Some(false), json!(false)),
        (None, json!("unknown")),
    ] {
        let mut f = Fake::new(PRIMARY, account(), 1000);
        f.probe = Some(probe(w, Some(false)));
        let e = env(Arc::new(f), None);
        let out = e
            .run("exchange.probe_permissions", json!({}))
            .await
            .unwrap();
        assert_eq!(out.outputs["can_withdraw"], expect);
        assert_eq!(out.outputs["critical"], true);
        assert_eq!(out.outputs["ip_restricted"], false);
        assert_eq!(out.outputs["reasons"], json!(["no IP allowlist"]));
        let held = out.outputs["scopes"].as_array().unwrap();
        assert!(held.contains(&json!("make_orders")));
        assert!(!held.contains(&json!("view_withdrawals")));
    }
}

#[tokio::test]
async fn cancel_is_idempotent_and_checks_its_post_condition() {
    let (acc, primary) = three_open(|acc| Fake::new(PRIMARY, acc, 1000));
    let e = env(primary, None);
    let kind = e.reg.get("exchange.cancel_open_orders").unwrap().clone();
    assert!(kind
        .check_done(&e.ctx, &Map::new())
        .await
        .unwrap()
        .is_none());
    let out = e
        .run("exchange.cancel_open_orders", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["cancelled_count"], 3);
    assert_eq!(out.outputs["cancelled"], json!(["o0", "o1", "o2"]));
    assert_eq!(out.outputs["remaining"], 0);
    assert!(acc.lock().unwrap().open.is_empty());
    let again = e
        .run("exchange.cancel_open_orders", json!({}))
        .await
        .unwrap();
    assert_eq!(again.outputs["cancelled_count"], 0);
    let done = kind.check_done(&e.ctx, &Map::new()).await.unwrap().unwrap();
    assert!(done.summary.contains("already done"));
    assert!(kind
        .describe(&Map::new())
        .contains("would cancel every open order"));
}

/// A refused old key and a read-only key of the same account, which has one open order `o1`.
fn dead_key_and_one_open_order() -> (Arc<Fake>, Arc<Fake>) {
    let acc = account();
    acc.lock()
        .unwrap()
        .open
        .push(order("o1", "KRW-XRP", Utc::now(), OrderState::Open));
    let f = Fake::new(PRIMARY, acc.clone(), 1000);
    f.dead.store(true, Ordering::SeqCst);
    (Arc::new(f), Arc::new(Fake::new(READONLY, acc, 1000)))
}

#[tokio::test]
async fn cancel_stops_clearly_when_the_key_dies() {
    let (f, ro) = dead_key_and_one_open_order();
    let e = env(f, Some(ro));
    e.seen_accepted();
    let msg = e
        .run("exchange.cancel_open_orders", json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("1 are still open") && msg.contains("o1"),
        "{msg}"
    );
}

#[tokio::test]
async fn pending_withdrawals_cancelled_or_skipped_with_a_reason() {
    let acc = account();
    acc.lock().unwrap().withdrawals = vec![transfer("w1", true), transfer("w2", false)];
    let e = env(Arc::new(Fake::new(PRIMARY, acc.clone(), 1000)), None);
    let out = e
        .run("exchange.cancel_pending_withdrawals", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["cancelled"], json!(["w1"]));
    assert_eq!(out.outputs["skipped"], false);

    acc.lock().unwrap().withdrawals = vec![transfer("w3", true)];
    let mut f = Fake::new(PRIMARY, acc.clone(), 1000);
    f.denied.insert("make_withdrawals");
    let e = env(Arc::new(f), None);
    let out = e
        .run("exchange.cancel_pending_withdrawals", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["skipped"], true);
    assert!(out.outputs["skip_reason"]
        .as_str()
        .unwrap()
        .contains("lacks the withdrawal scope"));

    let mut f = Fake::new(PRIMARY, acc, 1000);
    f.caps.cancel_withdrawals = false;
    let e = env(Arc::new(f), None);
    let out = e
        .run("exchange.cancel_pending_withdrawals", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["skipped"], true);
    assert!(out.summary.contains("cannot cancel withdrawals by API"));
}

#[tokio::test]
async fn a_resumed_cancel_looks_as_far_back_as_its_since_argument() {
    // A pending withdrawal 10 days old: with `since: 30d` the step is not done on resume.
    let acc = account();
    let mut old = transfer("w-old", true);
    old.created_at = Utc::now() - Duration::days(10);
    acc.lock().unwrap().withdrawals = vec![old];
    let e = env(Arc::new(Fake::new(PRIMARY, acc, 1000)), None);
    let kind = e.reg.get("exchange.cancel_pending_withdrawals").unwrap();
    let since_30d = args(json!({"since": "30d"}));
    assert!(kind.check_done(&e.ctx, &since_30d).await.unwrap().is_none());
    // With the default week it is out of reach, so nothing is left to do.
    let done = kind.check_done(&e.ctx, &Map::new()).await.unwrap().unwrap();
    assert_eq!(done.outputs["pending_count"], 0);
    assert_eq!(done.summary, "already done: no pending withdrawal is left");
}

#[tokio::test]
async fn revoke_manual_and_by_api() {
    let e = env(Arc::new(Fake::new(PRIMARY, account(), 1000)), None);
    let out = e
        .run("exchange.revoke_key", json!({"timeout": "1s"}))
        .await
        .unwrap();
    assert_eq!(out.outputs["mode"], "manual");
    assert_eq!(out.outputs["confirmed"], false);
    assert_eq!(out.outputs["confirmed_by"], "not_interactive");
    assert_eq!(out.outputs["key"], "LEAK...wxyz");
    assert_eq!(out.outputs["key_expire_at"], "2027-08-28T00:00:00.000Z");

    let mut f = Fake::new(PRIMARY, account(), 1000);
    f.caps.revoke_key_by_api = true;
    let f = Arc::new(f);
    let e = env(f.clone(), None);
    let out = e.run("exchange.revoke_key", json!({})).await.unwrap();
    assert_eq!(out.outputs["mode"], "api");
    assert_eq!(out.outputs["confirmed"], true);
    assert!(f.dead.load(Ordering::SeqCst));
    let kind = e.reg.get("exchange.revoke_key").unwrap();
    assert!(kind
        .check_done(&e.ctx, &Map::new())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn revoke_on_a_terminal_stops_waiting_when_the_key_dies_or_time_is_up() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let e = env_with(
        tmp,
        rd,
        Arc::new(Fake::new(PRIMARY, account(), 1000)),
        None,
        true,
    );
    let services = e.ctx.services.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        services.exchange.as_ref().unwrap().primary_died();
    });
    let out = e
        .run("exchange.revoke_key", json!({"timeout": "30s"}))
        .await
        .unwrap();
    assert_eq!(out.outputs["confirmed"], true);
    assert_eq!(out.outputs["confirmed_by"], "observed");

    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let e = env_with(
        tmp,
        rd,
        Arc::new(Fake::new(PRIMARY, account(), 1000)),
        None,
        true,
    );
    let out = e
        .run("exchange.revoke_key", json!({"timeout": "100ms"}))
        .await
        .unwrap();
    assert_eq!(out.outputs["confirmed"], false);
    assert_eq!(out.outputs["confirmed_by"], "timeout");
}

#[tokio::test]
async fn verify_observes_revocation() {
    let mut f = Fake::new(PRIMARY, account(), 1000);
    f.die_after = Some(3);
    let e = env(Arc::new(f), None);
    let out = e
        .run(
            "exchange.verify_key_revoked",
            json!({"interval": "5ms", "timeout": "5s"}),
        )
        .await
        .unwrap();
    assert_eq!(out.outputs["revoked"], true);
    assert_eq!(out.outputs["polls"], 4);
    assert_eq!(out.outputs["error_name"], "invalid_access_key");
    let at = out.outputs["observed_at"].as_str().unwrap();
    assert!(
        DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z') && at.len() == 24,
        "{at}"
    );
    assert!(e.ctx.services.exchange.as_ref().unwrap().switched());
}

#[tokio::test]
async fn verify_times_out_with_what_to_do() {
    let f = Arc::new(Fake::new(PRIMARY, account(), 1000));
    let e = env(f.clone(), None);
    let err = e
        .run(
            "exchange.verify_key_revoked",
            json!({"interval": "10ms", "timeout": "60ms"}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still works"), "{err}");
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("Open API management") && hint.contains("respond resume"),
        "{hint}"
    );
    assert!(f.calls("api_keys") >= 2);
}

/// 95 closed orders in three days, 40 of them in one hour; the fake truncates at 10.
fn busy_account() -> Arc<Mutex<Account>> {
    let acc = account();
    {
        let mut a = acc.lock().unwrap();
        for i in 0..55 {
            a.closed.push(order(
                &format!("c{i:03}"),
                if i % 2 == 0 { "KRW-BTC" } else { "KRW-ETH" },
                t0() + Duration::minutes(i * 77),
                OrderState::Done,
            ));
        }
        for i in 0..40 {
            a.closed.push(order(
                &format!("p{i:03}"),
                "KRW-PUMP",
                t0() + Duration::days(2) + Duration::seconds(i * 60),
                OrderState::Done,
            ));
        }
        a.open.push(order(
            "open1",
            "KRW-BTC",
            t0() + Duration::days(3),
            OrderState::Open,
        ));
        a.deposits = vec![];
    }
    acc
}

fn window() -> Value {
    json!({
        "from": "2026-10-25T00:00:00Z",
        "to": "2026-11-08T00:00:00Z",
        "candles_margin": "1d",
    })
}

#[tokio::test]
async fn export_splits_full_chunks_and_drops_nothing() {
    let f = Arc::new(Fake::new(PRIMARY, busy_account(), 10));
    let e = env(f.clone(), None);
    let out = e.run("exchange.export_history", window()).await.unwrap();
    let o = &out.outputs;
    assert_eq!(o["closed_order_count"], 95);
    assert_eq!(o["open_order_count"], 1);
    assert_eq!(o["order_count"], 96);
    assert_eq!(o["complete"], true);
    assert_eq!(o["markets"], json!(["KRW-BTC", "KRW-ETH", "KRW-PUMP"]));
    let chunks = o["chunks"].as_array().unwrap();
    assert!(chunks.iter().all(|c| c["count"].as_u64().unwrap() < 10));
    let total: u64 = chunks.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 95);
    // A full answer is continued by cursor, never discarded: one chunk per call.
    assert_eq!(f.calls("closed_orders") as usize, chunks.len());
    assert!(chunks.len() > 2, "full pages were continued");
    assert_eq!(o["window_from"], "2026-10-25T00:00:00.000Z");
    assert_eq!(o["window_to"], "2026-11-08T00:00:00.000Z");
    let proof: Value = serde_json::from_str(&e.read("s-chunks.json")).unwrap();
    assert_eq!(proof["every_chunk_proven"], true);
    assert_eq!(proof["covers_window"], true);
    let orders: Vec<Order> = serde_json::from_str(&e.read(ORDERS)).unwrap();
    let ids: HashSet<_> = orders.iter().map(|o| o.id.clone()).collect();
    assert_eq!(ids.len(), 96);
    assert_eq!(
        o["candle_markets"],
        json!(["KRW-BTC", "KRW-ETH", "KRW-PUMP"])
    );
    let candles: Vec<Candle> =
        serde_json::from_str(&e.read("export/candles/KRW-PUMP.json")).unwrap();
    // 14-day window plus one day of margin, hourly: 360 candles over two pages.
    assert_eq!(candles.len(), 360);
    assert_eq!(f.calls("candles"), 3 * 2);
}

#[tokio::test]
async fn export_with_market_filter() {
    let f = Arc::new(Fake::new(PRIMARY, busy_account(), 10));
    let e = env(f, None);
    let mut a = window();
    a["markets"] = json!(["KRW-PUMP"]);
    a["candles"] = json!(false);
    a["include_open"] = json!("false");
    let out = e.run("exchange.export_history", a).await.unwrap();
    assert_eq!(out.outputs["order_count"], 40);
    assert_eq!(out.outputs["markets"], json!(["KRW-PUMP"]));
}

/// An export on `acc` whose primary key dies after 6 answers, in a run directory of its own:
/// the environment, the run directory, the primary and the error's text.
async fn interrupted_export(acc: &Arc<Mutex<Account>>) -> (Env, RunDir, Arc<Fake>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let mut f = Fake::new(PRIMARY, acc.clone(), 10);
    f.die_after = Some(6);
    let f = Arc::new(f);
    let e = env_in(tmp, rd.clone(), f.clone(), None);
    let err = e
        .run("exchange.export_history", window())
        .await
        .unwrap_err();
    (e, rd, f, err.to_string())
}

/// The run in `rd` reopened as a resume does: the primary key dead (seen accepted before) and
/// a read-only key on `acc`, returned for its call counts.
fn resumed_with_readonly(rd: &RunDir, acc: &Arc<Mutex<Account>>) -> (Env, Arc<Fake>) {
    let primary = Fake::new(PRIMARY, acc.clone(), 10);
    primary.dead.store(true, Ordering::SeqCst);
    let ro = Arc::new(Fake::new(READONLY, acc.clone(), 10));
    let e = env_in(
        tempfile::tempdir().unwrap(),
        RunDir::open(rd.path()).unwrap(),
        Arc::new(primary),
        Some(ro.clone()),
    );
    e.seen_accepted();
    (e, ro)
}

#[tokio::test]
async fn export_resume_skips_completed_chunks() {
    let acc = busy_account();
    let (e, rd, f, msg) = interrupted_export(&acc).await;
    assert!(msg.contains("To finish the export"), "{msg}");
    assert!(
        msg.contains(&format!("respond resume {}", rd.path().display())),
        "{msg}"
    );
    // Reads are in flight together: the 7th and those sent with it fail, 6 were answered.
    let first_calls = f.calls("closed_orders");
    assert!(first_calls >= 7, "{first_calls}");
    // The state is a journal: a line naming the request, then one line per finished piece.
    let journal = e.read("s-export-state.jsonl");
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0].get("start").is_some(), "{journal}");
    let finished: Vec<Value> = lines
        .iter()
        .filter_map(|l| l.get("done").cloned())
        .collect();
    assert_eq!(finished.len(), 6, "every answer saved, those in flight too");
    // A crash cut the next line short: the resume sets it aside.
    let state_path = rd.path().join("s-export-state.jsonl");
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&state_path)
        .unwrap();
    std::io::Write::write_all(&mut torn, br#"{"done":{"from":"2026-10-2"#).unwrap();
    drop(torn);

    // Resume with a read-only key: finished chunks are not fetched again.
    let (e2, ro) = resumed_with_readonly(&rd, &acc);
    let out = e2.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["closed_order_count"], 95);
    assert_eq!(out.outputs["switched_to_readonly"], true);

    // A clean run in a fresh directory needs every call; the resume needed fewer.
    let fresh = Arc::new(Fake::new(READONLY, acc, 10));
    let e3 = env(fresh.clone(), None);
    e3.run("exchange.export_history", window()).await.unwrap();
    let full = fresh.calls("closed_orders");
    // 6 answered before the key died; the resume read only what no finished chunk covers
    // (how it shares that among lanes may cost a partial page more or less than the first
    // attempt would have), and every chunk finished before is part of the proof as it was.
    assert!(ro.calls("closed_orders") < full);
    // (The proof names no chunk file: those are removed once merged.)
    let proof: Value = serde_json::from_str(&e2.read("s-chunks.json")).unwrap();
    let chunks = proof["chunks"].as_array().unwrap();
    for c in &finished {
        let mut c = c.clone();
        assert!(c.as_object_mut().unwrap().remove("file").is_some());
        assert!(chunks.contains(&c), "{c} kept");
    }
    // The journal grew by appending: its first lines are as they were, the torn tail is gone.
    let after = std::fs::read_to_string(&state_path).unwrap();
    let before_torn = journal.trim_end_matches('\n');
    assert!(after.starts_with(before_torn), "{after}");
    assert!(after
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));

    // Run it again once more: nothing left to fetch.
    let before = ro.calls("closed_orders");
    e2.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(ro.calls("closed_orders"), before);
    assert_eq!(ro.calls("candles"), 6);
}

#[tokio::test]
async fn export_race_switches_to_the_readonly_key() {
    let acc = busy_account();
    let mut f = Fake::new(PRIMARY, acc.clone(), 10);
    f.die_after = Some(4);
    let ro = Arc::new(Fake::new(READONLY, acc, 10));
    let e = env(Arc::new(f), Some(ro.clone()));
    let out = e.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["order_count"], 96);
    assert_eq!(out.outputs["complete"], true);
    assert_eq!(out.outputs["switched_to_readonly"], true);
    assert!(ro.calls("closed_orders") > 0);
    assert!(ro.total_calls() > 0);
}

#[tokio::test]
async fn export_refuses_a_reversed_window() {
    let e = env(Arc::new(Fake::new(PRIMARY, account(), 10)), None);
    let err = e
        .run(
            "exchange.export_history",
            json!({"from": "2026-11-08T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StepError::BadArgument { .. }), "{err}");
}

#[tokio::test]
async fn export_fills_resumable() {
    let acc = account_with_fills(3);
    let f = Arc::new(Fake::new(PRIMARY, acc, 10));
    let e = env(f.clone(), None);
    let out = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": ["p000", "p001", "nope"]}),
        )
        .await
        .unwrap();
    assert_eq!(out.outputs["fill_count"], 2);
    assert_eq!(out.outputs["orders_fetched"], 3);
    assert_eq!(out.outputs["not_found"], json!(["nope"]));
    let again = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": ["p000", "p001", "p002"]}),
        )
        .await
        .unwrap();
    assert_eq!(again.outputs["orders_fetched"], 1);
    assert_eq!(again.outputs["orders_resumed"], 2);
    assert_eq!(again.outputs["fill_count"], 3);
    assert_eq!(f.calls("order"), 4);

    let err = e
        .run("exchange.export_fills", json!({"all": true}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no export/orders.json nor export/orders-<step id>.json"),
        "{err}"
    );
    e.run("exchange.export_history", window()).await.unwrap();
    let all = e
        .run("exchange.export_fills", json!({"all": true}))
        .await
        .unwrap();
    assert_eq!(all.outputs["orders_fetched"], 95 - 3);
    assert_eq!(all.outputs["fill_count"], 3);
}

/// The files of `dir` (relative to the run directory) whose names end in `.json`.
fn json_files(e: &Env, dir: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(e.ctx.rundir.join(dir).unwrap())
        .unwrap()
        .map(|f| format!("{dir}/{}", f.unwrap().file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".json"))
        .collect();
    out.sort();
    out
}

/// `rel` is a JSON list written one compact record per line: `[`, then each record on its own
/// line (a comma after all but the last), then `]` and a newline. Returns the records.
fn lined_list(e: &Env, rel: &str) -> Vec<Value> {
    let text = e.read(rel);
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    if all.is_empty() {
        assert_eq!(text, "[]\n", "{rel}");
        return all;
    }
    assert!(
        text.starts_with("[\n") && text.ends_with("\n]\n"),
        "{rel}: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        all.len() + 2,
        "{rel}: one record a line\n{text}"
    );
    for (i, (line, v)) in lines[1..lines.len() - 1].iter().zip(&all).enumerate() {
        let last = i + 1 == all.len();
        assert_eq!(line.ends_with(','), !last, "{rel}: {line}");
        let one: Value = serde_json::from_str(line.trim_end_matches(',')).unwrap();
        assert_eq!(&one, v, "{rel}");
        assert!(
            !line.contains(": ") && !line.starts_with(' '),
            "{rel}: compact: {line}"
        );
    }
    all
}

/// Issue 18: the lists that grow with the history (the merged orders, every chunk, open
/// orders, candles, fills batches, fills, the completeness proof's chunks) are one compact
/// record per line; the small artifacts stay indented.
#[tokio::test]
async fn export_lists_are_one_compact_record_per_line() {
    let f = Arc::new(Fake::new(PRIMARY, account_with_fills(45), 10));
    let e = env(f.clone(), None);
    e.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(lined_list(&e, ORDERS).len(), 101);
    assert_eq!(lined_list(&e, "export/open_orders.json").len(), 1);
    assert_eq!(lined_list(&e, "export/candles/KRW-PUMP.json").len(), 360);
    let chunks = journal_chunk_files(&e);
    assert!(chunks.len() > 2);
    // The chunk files, until merged (then removed): an export the key's death interrupted.
    let (ei, _, _, _) = interrupted_export(&account_with_fills(45)).await;
    let left = json_files(&ei, CHUNKS);
    assert!(!left.is_empty());
    let in_left: usize = left.iter().map(|c| lined_list(&ei, c).len()).sum();
    assert!(in_left > 0);
    for rel in ["export/withdrawals.json", "export/deposits.json"] {
        if e.ctx.rundir.join(rel).unwrap().exists() {
            lined_list(&e, rel);
        }
    }
    // An object holding a list: a member a line, the list's records a line each.
    let proof = e.read("s-chunks.json");
    let v: Value = serde_json::from_str(&proof).unwrap();
    let n = v["chunks"].as_array().unwrap().len();
    assert_eq!(n, chunks.len());
    let in_chunks: u64 = v["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(in_chunks, 100);
    assert_eq!(proof.lines().count(), 2 + 7 + 1 + n + 1, "{proof}");
    assert!(proof.lines().all(|l| !l.starts_with(' ')), "{proof}");

    e.run("exchange.export_fills", json!({"all": true}))
        .await
        .unwrap();
    assert_eq!(lined_list(&e, "export/fills.json").len(), 45);
    let batch = e.read("export/fills/s-batch-000001.json");
    let b: Value = serde_json::from_str(&batch).unwrap();
    let ids = b["order_ids"].as_array().unwrap().len();
    let fills = b["fills"].as_array().unwrap().len();
    assert_eq!(
        batch.lines().count(),
        2 + 2 + ids + 1 + fills + 1,
        "{batch}"
    );
    // The state stays a journal: a line per entry.
    assert!(e.read("s-export-state.jsonl").lines().count() > 1);
}

/// A finished chunk's file gone missing (deleted by hand, lost in a copy) stops the merge with
/// its name: the merged list would otherwise hold fewer orders than the proof says.
#[tokio::test]
async fn a_finished_chunk_whose_file_is_missing_stops_the_merge_naming_it() {
    let acc = busy_account();
    let (e, rd, _, _) = interrupted_export(&acc).await;
    let gone = json_files(&e, CHUNKS)
        .into_iter()
        .find(|c| !lined_list(&e, c).is_empty())
        .expect("a chunk with orders");
    std::fs::remove_file(rd.join(&gone).unwrap()).unwrap();

    let (e2, _) = resumed_with_readonly(&rd, &acc);
    let err = e2
        .run("exchange.export_history", window())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("{gone} is missing")), "{msg}");
    assert!(
        !rd.join(ORDERS).unwrap().exists(),
        "no shorter list written"
    );
}

/// The journal's lines of the export step `s`, parsed.
fn journal_lines(e: &Env) -> Vec<Value> {
    e.read("s-export-state.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `merged` lines of the export's journal.
fn merged_lines(e: &Env) -> Vec<Value> {
    journal_lines(e)
        .into_iter()
        .filter_map(|l| l.get("merged").cloned())
        .collect()
}

/// The chunk files the export's journal lists (`done` lines).
fn journal_chunk_files(e: &Env) -> Vec<String> {
    journal_lines(e)
        .iter()
        .filter_map(|l| l.get("done"))
        .map(|d| d["file"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 18: once merged into the step's list (`export/orders-s.json`), the chunk files
/// (resume state) are removed, so each closed order is stored once; the journal records the
/// merged file and its hash, the proof says where the orders are, and running the step again
/// reads that file back without fetching or merging anything.
#[tokio::test]
async fn a_finished_export_stores_each_closed_order_once() {
    let f = Arc::new(Fake::new(PRIMARY, busy_account(), 10));
    let e = env(f.clone(), None);
    let out = e.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["closed_order_count"], 95);
    let files = journal_chunk_files(&e);
    assert!(files.len() > 2);
    for c in &files {
        assert!(!e.ctx.rundir.join(c).unwrap().exists(), "{c} removed");
    }
    assert!(
        !e.ctx.rundir.join("export/chunks").unwrap().exists(),
        "the emptied chunk folder is removed"
    );
    let orders = std::fs::read(e.ctx.rundir.join(ORDERS).unwrap()).unwrap();
    let merged = merged_lines(&e);
    assert_eq!(
        merged,
        vec![json!({
            "file": ORDERS,
            "sha256": respond::fsutil::sha256_hex(&orders),
            "closed": 95,
            "open": 1,
        })]
    );
    let proof: Value = serde_json::from_str(&e.read("s-chunks.json")).unwrap();
    assert_eq!(proof["orders_file"], ORDERS);
    let chunks = proof["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), files.len());
    for c in chunks {
        assert!(c.get("file").is_none(), "no removed file named: {c}");
        for k in ["from", "to", "count", "saturated", "cursor"] {
            assert!(c.get(k).is_some(), "{k} in {c}");
        }
    }

    // Again: the merged file is read back; nothing is fetched, merged or journaled again.
    let calls = f.calls("closed_orders");
    let again = e.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(f.calls("closed_orders"), calls);
    for k in [
        "closed_order_count",
        "open_order_count",
        "markets",
        "chunks",
    ] {
        assert_eq!(again.outputs[k], out.outputs[k], "{k}");
    }
    assert_eq!(
        std::fs::read(e.ctx.rundir.join(ORDERS).unwrap()).unwrap(),
        orders
    );
    assert_eq!(merged_lines(&e).len(), 1);
}

/// Runs the export step `s` again, which must stop for good with a hint: its message and hint.
async fn stops_for_good(e: &Env) -> (String, String) {
    let err = e
        .run("exchange.export_history", window())
        .await
        .unwrap_err();
    match err {
        StepError::Permanent {
            message,
            hint: Some(hint),
        } => (message, hint),
        err => panic!("{err:?}"),
    }
}

/// Runs the export step `s` again and checks it stops for good saying `says`, that the
/// export must be started over, and which journal to delete for that.
async fn stops_to_start_over(e: &Env, says: &str) {
    let (message, hint) = stops_for_good(e).await;
    assert!(message.contains(says), "{message}");
    assert!(message.contains("must be started over"), "{message}");
    assert!(hint.contains("s-export-state.jsonl"), "{hint}");
}

/// After the merge the chunk files are gone, so a merged file that is missing or not the one
/// written cannot be rebuilt: the step stops naming it and saying to start over, and writes
/// nothing in its place.
#[tokio::test]
async fn a_merged_export_whose_orders_file_is_damaged_or_missing_stops_naming_it() {
    let f = Arc::new(Fake::new(PRIMARY, busy_account(), 10));
    let e = env(f.clone(), None);
    e.run("exchange.export_history", window()).await.unwrap();
    let path = e.ctx.rundir.join(ORDERS).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let calls = f.calls("closed_orders");

    // One order less: still a valid list, not the file merged.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(1);
    let shorter = lines.join("\n") + "\n";
    // Cut short: not JSON at all.
    let cut = text[..text.len() / 2].to_string();
    for damaged in [shorter, cut] {
        std::fs::write(&path, &damaged).unwrap();
        stops_to_start_over(&e, &format!("{ORDERS} is not the file the export merged")).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            damaged,
            "left as found"
        );
    }

    std::fs::remove_file(&path).unwrap();
    stops_to_start_over(&e, &format!("{ORDERS} is missing")).await;
    assert!(!path.exists(), "nothing written in its place");
    assert_eq!(f.calls("closed_orders"), calls, "nothing fetched");
}

/// Two export steps each keep their own merged list (`export/orders-s.json`,
/// `export/orders-late.json`): the later step does not rewrite the first one's, and the
/// first step run again (a resume reruns it when a step it needs runs again) reads its own
/// list back, fetching nothing.
#[tokio::test]
async fn two_export_steps_keep_their_own_chunks_and_merged_lists() {
    let acc = busy_account();
    let f = Arc::new(Fake::new(PRIMARY, acc.clone(), 10));
    let mut e = env(f.clone(), None);
    let first = e.run("exchange.export_history", window()).await.unwrap();
    let first_list = std::fs::read(e.ctx.rundir.join(ORDERS).unwrap()).unwrap();
    // An order after the first window, read by the late export only.
    acc.lock().unwrap().closed.push(order(
        "late1",
        "KRW-BTC",
        t0() + Duration::days(20),
        OrderState::Done,
    ));
    let mut later = window();
    later["to"] = json!("2026-11-30T00:00:00Z");
    let late = e
        .run_as("late", "exchange.export_history", later)
        .await
        .unwrap();
    assert_eq!(late.outputs["closed_order_count"], 96);
    assert_eq!(late.outputs["orders_path"], "export/orders-late.json");
    let late_orders: Vec<Order> = serde_json::from_str(&e.read("export/orders-late.json")).unwrap();
    assert!(late_orders.iter().any(|o| o.id == "late1"));
    assert_eq!(
        std::fs::read(e.ctx.rundir.join(ORDERS).unwrap()).unwrap(),
        first_list,
        "the first step's list is not rewritten by the second"
    );

    let calls = f.calls("closed_orders");
    let again = e.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(f.calls("closed_orders"), calls, "its own list read back");
    assert_eq!(
        again.outputs["closed_order_count"],
        first.outputs["closed_order_count"]
    );
    let orders: Vec<Order> = serde_json::from_str(&e.read(ORDERS)).unwrap();
    assert_eq!(orders.len(), 96);
    assert!(orders.iter().all(|o| o.id != "late1"));
    assert_eq!(merged_lines(&e).len(), 1);
    assert!(!e.ctx.rundir.join("export/chunks").unwrap().exists());

    // `all: true` reads the fills of every export step's orders: the 95 filled orders of
    // both lists, and late1 of the late one only.
    let all = e
        .run("exchange.export_fills", json!({"all": true}))
        .await
        .unwrap();
    assert_eq!(all.outputs["orders_fetched"], 96);
}

/// A merged list damaged after the export (cut short, say) stops the fills step naming it,
/// whether the step reads every order (`all: true`) or only looks up the markets of the ids
/// it was given.
#[tokio::test]
async fn a_damaged_merged_list_stops_the_fills_step_naming_it() {
    let f = Arc::new(Fake::new(PRIMARY, account_with_fills(3), 10));
    let e = env(f.clone(), None);
    e.run("exchange.export_history", window()).await.unwrap();
    let path = e.ctx.rundir.join(ORDERS).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    for args in [json!({"all": true}), json!({"order_ids": ["p000"]})] {
        let err = e
            .run("exchange.export_fills", args.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("orders-s.json is damaged"), "{args}: {err}");
        assert!(
            err.contains("delete it to start this part over"),
            "{args}: {err}"
        );
    }
}

/// One export step's merge leaves another step's chunk files, still waiting for their own
/// merge, where they are.
#[tokio::test]
async fn a_merge_removes_only_its_own_steps_chunks() {
    let acc = busy_account();
    let (e, rd, _, _) = interrupted_export(&acc).await;
    let waiting = json_files(&e, CHUNKS);
    assert!(!waiting.is_empty());
    let (mut e2, _) = resumed_with_readonly(&rd, &acc);
    e2.run_as("late", "exchange.export_history", window())
        .await
        .unwrap();
    assert!(!rd.join("export/chunks/late").unwrap().exists());
    for c in &waiting {
        assert!(rd.join(c).unwrap().exists(), "{c} kept for step s");
    }
}

/// Chunk files an earlier version kept directly under `export/chunks/` (shared by every
/// export step, named by the journal) are read by the resume, and left where they are once
/// merged: another step's journal may name the same file.
#[tokio::test]
async fn chunk_files_of_the_shared_folder_of_earlier_versions_are_read_and_left() {
    let acc = busy_account();
    let (e, rd, _, _) = interrupted_export(&acc).await;
    let ours = json_files(&e, CHUNKS);
    assert!(!ours.is_empty());
    // As an earlier version left them: in export/chunks/ itself, so named in the journal.
    let mut old = Vec::new();
    for c in &ours {
        let to = c.replace("export/chunks/s/", "export/chunks/");
        std::fs::rename(rd.join(c).unwrap(), rd.join(&to).unwrap()).unwrap();
        old.push(to);
    }
    let state = rd.join("s-export-state.jsonl").unwrap();
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replace("export/chunks/s/", "export/chunks/")).unwrap();

    let (e2, ro) = resumed_with_readonly(&rd, &acc);
    let calls = ro.calls("closed_orders");
    let out = e2.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["closed_order_count"], 95);
    let orders: Vec<Order> = serde_json::from_str(&e2.read(ORDERS)).unwrap();
    assert_eq!(orders.len(), 96);
    assert!(
        ro.calls("closed_orders") > calls,
        "the rest of the window read"
    );
    for c in &old {
        assert!(rd.join(c).unwrap().exists(), "{c} left");
    }
    // The chunks this resume read went to its own folder, removed once merged.
    assert!(!rd.join(CHUNKS).unwrap().exists());
    assert_eq!(merged_lines(&e2).len(), 1);
}

/// A journal that records the merge yet leaves spans of the window unread contradicts itself
/// (chunks read now would be left out of the list read back, then removed): the step stops
/// naming the journal to delete, and fetches nothing.
#[tokio::test]
async fn a_merged_journal_with_unread_spans_stops_naming_it() {
    let f = Arc::new(Fake::new(PRIMARY, busy_account(), 10));
    let e = env(f.clone(), None);
    e.run("exchange.export_history", window()).await.unwrap();
    let state = e.ctx.rundir.join("s-export-state.jsonl").unwrap();
    let text = std::fs::read_to_string(&state).unwrap();
    let first_done = text.lines().position(|l| l.contains("\"done\"")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != first_done)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&state, kept.join("\n") + "\n").unwrap();
    let calls = f.calls("closed_orders");
    let (message, hint) = stops_for_good(&e).await;
    assert!(
        message.contains("spans of the window are unread"),
        "{message}"
    );
    assert!(hint.contains("delete s-export-state.jsonl"), "{hint}");
    assert_eq!(f.calls("closed_orders"), calls);
}

/// Whether the merged list holds the open orders is part of the request: an export merged
/// without them, run again asking for them, starts over and merges them in.
#[tokio::test]
async fn asking_for_the_open_orders_after_a_merge_without_them_starts_over() {
    let f = Arc::new(Fake::new(PRIMARY, busy_account(), 10));
    let e = env(f.clone(), None);
    let mut without = window();
    without["include_open"] = json!(false);
    let out = e.run("exchange.export_history", without).await.unwrap();
    assert_eq!(out.outputs["open_order_count"], 0);
    let calls = f.calls("closed_orders");
    let again = e.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(again.outputs["open_order_count"], 1);
    assert_eq!(again.outputs["closed_order_count"], 95);
    assert!(f.calls("closed_orders") > calls, "the window read again");
    let orders: Vec<Order> = serde_json::from_str(&e.read(ORDERS)).unwrap();
    assert_eq!(orders.len(), 96);
}

/// A crash after the merge is journaled, before (or while) the chunk files are removed,
/// leaves some of them behind: the resume removes them and reads the merged file back.
#[tokio::test]
async fn a_crash_between_the_merge_and_the_removals_is_finished_by_the_resume() {
    let acc = busy_account();
    let (_first, rd, _, _) = interrupted_export(&acc).await;
    let (e2, ro) = resumed_with_readonly(&rd, &acc);
    e2.run("exchange.export_history", window()).await.unwrap();
    let orders_path = rd.join(ORDERS).unwrap();
    let merged = std::fs::read(&orders_path).unwrap();
    let orders: Vec<Order> = serde_json::from_slice(&merged).unwrap();

    // What the crash left: half of the chunk files, each with its span's orders.
    let journal = journal_lines(&e2);
    let done: Vec<&Value> = journal.iter().filter_map(|l| l.get("done")).collect();
    assert!(done.len() > 2);
    let left: Vec<String> = done
        .iter()
        .step_by(2)
        .map(|d| {
            let from: DateTime<Utc> = serde_json::from_value(d["from"].clone()).unwrap();
            let to: DateTime<Utc> = serde_json::from_value(d["to"].clone()).unwrap();
            let theirs: Vec<&Order> = orders
                .iter()
                .filter(|o| o.created_at >= from && o.created_at < to)
                .collect();
            let file = d["file"].as_str().unwrap().to_string();
            e2.ctx
                .rundir
                .write(&file, &serde_json::to_vec(&theirs).unwrap())
                .unwrap();
            file
        })
        .collect();

    let calls = ro.calls("closed_orders");
    let out = e2.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["closed_order_count"], 95);
    assert_eq!(ro.calls("closed_orders"), calls, "nothing fetched");
    for c in &left {
        assert!(!rd.join(c).unwrap().exists(), "{c} removed by the resume");
    }
    assert!(!rd.join("export/chunks").unwrap().exists());
    assert_eq!(
        std::fs::read(&orders_path).unwrap(),
        merged,
        "not merged again"
    );
    assert_eq!(merged_lines(&e2).len(), 1);
}

/// Open orders that could not be read leave the merge unfinished: the chunk files stay, no
/// merge is journaled, and the resume that reads the open orders merges again from the
/// chunks, then removes them.
#[tokio::test]
async fn chunks_stay_until_the_open_orders_are_merged_too() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let acc = busy_account();
    let mut f = Fake::new(PRIMARY, acc.clone(), 10);
    f.unsupported.insert("open_orders");
    let e = env_in(tmp, rd.clone(), Arc::new(f), None);
    let err = e
        .run("exchange.export_history", window())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("open orders"), "{err}");
    let files = journal_chunk_files(&e);
    assert!(files.len() > 2);
    for c in &files {
        assert!(rd.join(c).unwrap().exists(), "{c} kept for the resume");
    }
    assert!(merged_lines(&e).is_empty());

    let e2 = env_in(
        tempfile::tempdir().unwrap(),
        RunDir::open(rd.path()).unwrap(),
        Arc::new(Fake::new(PRIMARY, acc, 10)),
        None,
    );
    let out = e2.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["closed_order_count"], 95);
    assert_eq!(out.outputs["open_order_count"], 1);
    let orders: Vec<Order> = serde_json::from_str(&e2.read(ORDERS)).unwrap();
    assert_eq!(orders.len(), 96);
    for c in &files {
        assert!(!rd.join(c).unwrap().exists(), "{c} removed once merged");
    }
    assert_eq!(merged_lines(&e2).len(), 1);
    assert_eq!(merged_lines(&e2)[0]["open"], 1);
}

/// Rewrites a JSON file of the run directory indented, as versions before issue 18 wrote it.
fn as_earlier_version(rd: &RunDir, rel: &str) {
    let p = rd.join(rel).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// A bundle left by an earlier version holds indented lists: an interrupted export resumes from
/// its indented chunks (merging them with new ones into a list a record per line), and the
/// fills step reads an indented `export/orders.json` and indented batches.
#[tokio::test]
async fn an_export_left_indented_by_an_earlier_version_resumes_and_is_read() {
    let acc = account_with_fills(45);
    let (e, rd, _, _) = interrupted_export(&acc).await;
    let old = json_files(&e, CHUNKS);
    assert!(!old.is_empty());
    let mut indented = Vec::new();
    for c in &old {
        as_earlier_version(&rd, c);
        indented.push(e.read(c));
    }
    assert!(indented.iter().any(|t| t.contains("\n  {\n    \"")));

    let (e2, _) = resumed_with_readonly(&rd, &acc);
    let out = e2.run("exchange.export_history", window()).await.unwrap();
    assert_eq!(out.outputs["closed_order_count"], 100);
    let orders = lined_list(&e2, ORDERS);
    let ids: HashSet<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 101);
    // The indented chunks were read, not fetched again (the journal names each once, as
    // before the resume), then removed once merged.
    let named = journal_chunk_files(&e2);
    for c in &old {
        assert_eq!(named.iter().filter(|n| *n == c).count(), 1, "{c} read once");
        assert!(!rd.join(c).unwrap().exists(), "{c} removed once merged");
    }

    // A finished export of an earlier version: indented orders; then indented fills batches.
    as_earlier_version(&rd, ORDERS);
    let all = e2
        .run("exchange.export_fills", json!({"all": true}))
        .await
        .unwrap();
    assert_eq!(all.outputs["fill_count"], 45);
    for b in json_files(&e2, "export/fills") {
        as_earlier_version(&rd, &b);
    }
    let again = e2
        .run("exchange.export_fills", json!({"all": true}))
        .await
        .unwrap();
    assert_eq!(
        again.outputs["orders_resumed"],
        all.outputs["orders_fetched"]
    );
    assert_eq!(again.outputs["orders_fetched"], 0);
    assert_eq!(again.outputs["fill_count"], 45);
    assert_eq!(lined_list(&e2, "export/fills.json").len(), 45);
}

/// The busy account with orders `p000`… `p{n-1}` (more added past its 40), each with one fill.
fn account_with_fills(n: usize) -> Arc<Mutex<Account>> {
    let acc = busy_account();
    {
        let mut a = acc.lock().unwrap();
        for i in 0..n {
            let id = format!("p{i:03}");
            if i >= 40 {
                a.closed.push(order(
                    &id,
                    "KRW-PUMP",
                    t0() + Duration::days(2) + Duration::seconds(i as i64 * 60),
                    OrderState::Done,
                ));
            }
            a.fills.insert(
                id.clone(),
                vec![Fill {
                    id: format!("f{i}"),
                    order_id: id,
                    market: respond::exchange::upbit::market("KRW-PUMP"),
                    side: Side::Buy,
                    price: Decimal::new(100, 0),
                    volume: Decimal::ONE,
                    funds: Decimal::new(100, 0),
                    fee: None,
                    created_at: t0(),
                    created_at_local: String::new(),
                    provenance: None,
                }],
            );
        }
    }
    acc
}

fn fill_ids(n: std::ops::Range<usize>) -> Value {
    json!(n.map(|i| format!("p{i:03}")).collect::<Vec<_>>())
}

#[tokio::test]
async fn export_fills_state_is_a_journal_appended_per_batch() {
    let f = Arc::new(Fake::new(PRIMARY, account_with_fills(95), 10));
    let e = env(f.clone(), None);
    let out = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": fill_ids(0..60)}),
        )
        .await
        .unwrap();
    assert_eq!(out.outputs["fill_count"], 60);
    // One line per batch of 50 (and the last, partial one), nothing rewritten whole.
    let journal = e.read("s-fills-state.jsonl");
    assert_eq!(journal.lines().count(), 2, "{journal}");
    assert!(journal
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    let path = e.ctx.rundir.join("s-fills-state.jsonl").unwrap();

    // A crash cut the next line short: the resume sets it aside and fetches only what no
    // whole line lists.
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut torn, br#"{"batch":{"file":"export/fi"#).unwrap();
    drop(torn);
    let before = f.calls("order");
    let again = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": fill_ids(0..95)}),
        )
        .await
        .unwrap();
    assert_eq!(again.outputs["orders_resumed"], 60);
    assert_eq!(again.outputs["orders_fetched"], 35);
    assert_eq!(f.calls("order") - before, 35, "resume is exact");
    assert_eq!(again.outputs["fill_count"], 95);
    let after = e.read("s-fills-state.jsonl");
    assert!(
        after.starts_with(&journal),
        "appended, never rewritten:\n{after}"
    );
    assert_eq!(after.lines().count(), 3);
    assert!(after
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));

    // A line damaged before the last is named with its file, line and column.
    let mut lines: Vec<&str> = after.lines().collect();
    lines.insert(1, r#"{"batch": 12}"#);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": fill_ids(0..95)}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("s-fills-state.jsonl:2:"), "{err}");
}

#[tokio::test]
async fn a_fills_state_written_whole_by_an_earlier_version_is_resumed_exactly() {
    let f = Arc::new(Fake::new(PRIMARY, account_with_fills(95), 10));
    let e = env(f.clone(), None);
    // The earlier format: one JSON document, rewritten after every batch.
    let batch = json!({"order_ids": ["p000", "p001"], "fills": []});
    e.ctx
        .rundir
        .write(
            "export/fills/s-batch-000001.json",
            &serde_json::to_vec(&batch).unwrap(),
        )
        .unwrap();
    e.ctx
        .rundir
        .write(
            "s-fills-state.json",
            br#"{"done":["p000","p001"],"batches":["export/fills/s-batch-000001.json"]}"#,
        )
        .unwrap();
    let out = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": fill_ids(0..5)}),
        )
        .await
        .unwrap();
    assert_eq!(out.outputs["orders_resumed"], 2);
    assert_eq!(out.outputs["orders_fetched"], 3);
    assert_eq!(f.calls("order"), 3);
    assert!(!e.ctx.rundir.join("s-fills-state.json").unwrap().exists());
    // The next batch is numbered after the converted one: nothing is overwritten.
    assert!(e
        .ctx
        .rundir
        .join("export/fills/s-batch-000002.json")
        .unwrap()
        .exists());
    let again = e
        .run(
            "exchange.export_fills",
            json!({"order_ids": fill_ids(0..5)}),
        )
        .await
        .unwrap();
    assert_eq!(again.outputs["orders_resumed"], 5);
    assert_eq!(f.calls("order"), 3);
}

#[tokio::test]
async fn two_fills_steps_keep_their_own_batches() {
    // The leak playbook runs `fills` and later `fills_late`: resuming the first must find
    // its own fills, not the batch files the second wrote.
    let acc = account_with_fills(3);
    let mut e = env(Arc::new(Fake::new(PRIMARY, acc, 10)), None);
    let first = json!({"order_ids": ["p000"]});
    let out = e
        .run_as("fills", "exchange.export_fills", first.clone())
        .await
        .unwrap();
    assert_eq!(out.outputs["fill_count"], 1);
    let late = e
        .run_as(
            "fills_late",
            "exchange.export_fills",
            json!({"order_ids": ["p001", "p002"]}),
        )
        .await
        .unwrap();
    assert_eq!(late.outputs["fill_count"], 2);
    let again = e
        .run_as("fills", "exchange.export_fills", first)
        .await
        .unwrap();
    assert_eq!(again.outputs["orders_resumed"], 1);
    assert_eq!(again.outputs["fill_count"], 1, "{:?}", again.outputs);
}

#[tokio::test]
async fn a_later_export_counts_only_the_transfers_it_exported() {
    let mut e = env(Arc::new(Fake::new(PRIMARY, busy_account(), 1000)), None);
    let first = e
        .run_as("export", "exchange.export_history", window())
        .await
        .unwrap();
    assert!(first.outputs["withdrawal_count"].is_number());
    let mut late = window();
    late["transfers"] = json!(false);
    let late = e
        .run_as("export_late", "exchange.export_history", late)
        .await
        .unwrap();
    assert_eq!(late.outputs["withdrawal_count"], Value::Null);
    assert_eq!(late.outputs["deposit_count"], Value::Null);
}

#[tokio::test]
async fn checklist_fills_the_key_expiry_into_the_delete_instructions() {
    let acc = account();
    let f = Arc::new(Fake::new(PRIMARY, acc, 1000));
    let e = env(f, None);
    let a = json!({
        "snapshot": {"key_expire_at": "2027-08-28T00:00:00.000Z"},
        "verify": {"revoked": false, "observed_at": null},
    });
    e.run("checklist.replacement", a).await.unwrap();
    let md = e.read("checklist.md");
    assert!(md.contains("**Old key NOT confirmed deleted**"), "{md}");
    assert!(
        md.contains("delete the key (expires 2027-08-28T00:00:00.000Z, 2FA)"),
        "{md}"
    );
    assert!(!md.contains("{expire_at}"), "{md}");
}

#[tokio::test]
async fn checklist_in_english_and_korean() {
    let acc = account();
    let f = Arc::new(Fake::new(PRIMARY, acc, 1000));
    let e = env(f, None);
    let a = json!({
        "probe": {"scopes": ["view_account", "view_orders", "make_orders", "make_withdrawals"],
                  "not_held": ["view_deposits"], "unknown": [], "critical": true,
                  "reasons": ["withdrawal scope"], "can_withdraw": true},
        "bots": [{"name": "{{evil}} `bot`\nnext", "needs": ["view_account", "make_orders"]}],
        "bot_configs": ["config/{{x}}.json"],
        "snapshot": {"withdrawal_addresses": ["BTC bc1q...abcd"], "withdrawal_address_count": 1,
                     "key_expire_at": "2027-08-28T00:00:00.000Z"},
        "verify": {"revoked": true, "observed_at": "2026-11-20T10:03:00.123Z"},
    });
    let out = e.run("checklist.replacement", a).await.unwrap();
    assert_eq!(out.outputs["path"], "checklist.md");
    assert_eq!(out.outputs["rotate_date"], "2027-01-19");
    let md = e.read("checklist.md");
    assert!(md.contains("# Replacement key checklist (upbit)"));
    assert!(md.contains("# 교체 키 체크리스트 (upbit)"));
    assert!(md.contains("Bot `{{evil}} 'bot' next`"), "{md}");
    assert!(md.contains("`config/{{x}}.json`"));
    assert!(md.contains("**2027-01-19**"));
    assert!(md.contains("BTC bc1q...abcd"));
    assert!(md.contains("LEAK...wxyz") && !md.contains(PRIMARY));
    assert!(
        md.contains("[x] The old key is deleted: the exchange refuses it since 2026-11-20 19:03:00 KST (2026-11-20 10:03:00 UTC)"),
        "{md}"
    );
    assert!(
        md.contains("[x] 기존 키 삭제됨: 2026-11-20 19:03:00 KST (2026-11-20 10:03:00 UTC)부터")
    );
    assert!(md.contains("| Make withdrawals (`make_withdrawals`) | **yes** |"));
    assert!(md.contains("| 출금하기 (`make_withdrawals`) | **있음** |"));
    assert!(md.contains("The old key also had View orders (`view_orders`), Make withdrawals (`make_withdrawals`)"), "{md}");
    assert!(md.contains("at most 10 IPs"));
    assert!(md.contains("The old key had it"));
}

#[tokio::test]
async fn checklist_counts_what_the_run_proved_and_shows_the_key_deleted() {
    // The probe could not tell the trading scope (Upbit shows it only by a write); the run's
    // own cancels, accepted by the exchange, prove it. The deletion comes from the journal.
    let acc = account();
    let f = Arc::new(Fake::new(PRIMARY, acc, 1000));
    let e = env(f, None);
    let j = respond::engine::journal::Journal::create(e.ctx.rundir.path()).unwrap();
    let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().unwrap();
    j.append_at(
        at("2026-11-20T10:01:00Z"),
        "step_end",
        json!({"step": "cancel_orders", "uses": "exchange.cancel_open_orders", "status": "ok",
               "outputs": {"cancelled_count": 6}}),
    )
    .unwrap();
    j.append_at(
        at("2026-11-20T10:03:01Z"),
        "step_end",
        json!({"step": "verify_revoked", "uses": "exchange.verify_key_revoked", "status": "ok",
               "outputs": {"revoked": true, "observed_at": "2026-11-20T10:03:00.123Z",
                           "error_name": "invalid_access_key", "polls": 3}}),
    )
    .unwrap();
    drop(j);
    let a = json!({
        "probe": {"scopes": ["view_account", "view_orders"], "not_held": [],
                  "unknown": ["make_orders", "make_withdrawals"], "critical": true,
                  "reasons": ["withdrawal scope unknown"], "can_withdraw": "unknown"},
    });
    e.run("checklist.replacement", a).await.unwrap();
    let md = e.read("checklist.md");
    assert!(
        md.contains("| Make orders (`make_orders`) | **yes** (confirmed: this run cancelled 6 with the key, the exchange accepted it) |"),
        "{md}"
    );
    assert!(md.contains("| Make withdrawals (`make_withdrawals`) | unknown |"));
    assert!(md.contains(
        "| 주문하기 (`make_orders`) | **있음** (확인됨: 이번 대응에서 이 키로 6건 취소 성공) |"
    ));
    assert!(
        md.contains("- [x] The old key is deleted: the exchange refuses it since 2026-11-20 19:03:00 KST (2026-11-20 10:03:00 UTC) (observed by this run)."),
        "{md}"
    );
}

#[tokio::test]
async fn checklist_validates_and_defaults() {
    let mut f = Fake::new(PRIMARY, account(), 1000);
    f.probe = Some(probe(Some(false), Some(true)));
    let e = env(Arc::new(f), None);
    let err = e
        .run("checklist.replacement", json!({"rotate_days": 20}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("30..=90"), "{err}");
    let err = e
        .run(
            "checklist.replacement",
            json!({"bots": [{"name": "b", "needs": ["make_withdrawals"]}]}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("withdrawal scope"), "{err}");
    let text_probe = json!({"probe": "{\"scopes\": [\"view_account\"], \"critical\": false}", "rotate_days": "90"});
    e.run("checklist.replacement", text_probe).await.unwrap();
    assert!(e
        .read("checklist.md")
        .contains("| View account (`view_account`) | **yes** |"));
    let err = e
        .run("checklist.replacement", json!({"probe": "not json"}))
        .await
        .unwrap_err();
    assert!(matches!(err, StepError::BadArgument { .. }), "{err}");
    let out = e
        .run("checklist.replacement", json!({"rotate_days": "90"}))
        .await
        .unwrap();
    assert_eq!(out.outputs["rotate_date"], "2027-02-18");
    let md = e.read("checklist.md");
    assert!(md.contains("Bot `trading bot`: a key with only View account (`view_account`), View orders (`view_orders`), Make orders (`make_orders`)."), "{md}");
    assert!(md.contains("Delete the old key and confirm it is gone"));
    assert!(md.contains("could not be read"));
}

/// Found by the fault matrix (reliability_faults): when the user deletes the key before
/// a step got to it, the step must not fail forever (a resume could never do better).
#[tokio::test]
async fn steps_reached_after_the_key_was_deleted_use_the_readonly_key() {
    let acc = account();
    acc.lock().unwrap().withdrawals = vec![transfer("w1", false)];
    let dead = || {
        let f = Fake::new(PRIMARY, acc.clone(), 1000);
        f.dead.store(true, Ordering::SeqCst);
        Arc::new(f)
    };
    // Withdrawals: nothing pending per the read-only key → done, not failed.
    let ro = Arc::new(Fake::new(READONLY, acc.clone(), 1000));
    let e = env(dead(), Some(ro.clone()));
    e.seen_accepted();
    let out = e
        .run("exchange.cancel_pending_withdrawals", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["pending_count"], 0);
    assert!(out.summary.contains("read-only key"), "{}", out.summary);
    // …and one still pending is named as a failure.
    acc.lock().unwrap().withdrawals = vec![transfer("w2", true)];
    let e = env(dead(), Some(ro));
    e.seen_accepted();
    let msg = e
        .run("exchange.cancel_pending_withdrawals", json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("1 pending withdrawals"), "{msg}");

    // Probe: nothing known, assume the worst; the checklist gets outputs.
    let e = env(dead(), None);
    e.seen_accepted();
    let out = e
        .run("exchange.probe_permissions", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["critical"], true);
    assert_eq!(out.outputs["can_withdraw"], "unknown");

    // Cancel's resume check: the old key is dead, the read-only key sees nothing open.
    let ro = Arc::new(Fake::new(READONLY, acc.clone(), 1000));
    let e = env(dead(), Some(ro.clone()));
    e.seen_accepted();
    let done = e
        .reg
        .get("exchange.cancel_open_orders")
        .unwrap()
        .check_done(&e.ctx, &args(json!({})))
        .await
        .unwrap();
    assert!(done.is_some(), "no open order is left: the cancel is done");
    assert_eq!(ro.calls("open_orders"), 1);
}

/// Issue 11, point 1: a key refused from its very first call was never accepted here. No step
/// reads that refusal as a deletion: each stops the run, and after the first refusal nothing
/// more is sent with the key.
#[tokio::test]
async fn a_key_never_accepted_stops_every_containment_step() {
    let (f, ro) = dead_key_and_one_open_order();
    let e = env(f.clone(), Some(ro.clone()));
    for (kind, a) in [
        ("exchange.revoke_key", json!({"timeout": "1s"})),
        ("exchange.snapshot", json!({})),
        ("exchange.probe_permissions", json!({})),
        ("exchange.cancel_open_orders", json!({})),
        ("exchange.cancel_pending_withdrawals", json!({})),
        (
            "exchange.verify_key_revoked",
            json!({"interval": "1s", "timeout": "1m"}),
        ),
    ] {
        let err = e.run(kind, a).await.unwrap_err();
        assert!(err.stops_run(), "{kind}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("LEAK...wxyz") && msg.contains("was never accepted here"),
            "{kind}: {msg}"
        );
        assert!(!msg.contains("deleted: good"), "{kind}: {msg}");
        let hint = err.hint().unwrap();
        assert!(hint.contains("check the access key you entered"), "{hint}");
    }
    assert_eq!(f.total_calls(), 1, "one refusal, then nothing more sent");
    // The read-only key was never used to paper over it (no switch, no "deleted" reads).
    assert_eq!(ro.total_calls(), 0);
}

/// Point 6(a): the key was deleted (after it worked) before the cancel got to it; the
/// read-only key shows nothing open: nothing to cancel, which is success.
#[tokio::test]
async fn a_cancel_after_the_deletion_is_ok_when_the_readonly_key_sees_nothing_open() {
    let acc = account();
    let f = Fake::new(PRIMARY, acc.clone(), 1000);
    f.dead.store(true, Ordering::SeqCst);
    let ro = Arc::new(Fake::new(READONLY, acc, 1000));
    let e = env(Arc::new(f), Some(ro.clone()));
    e.seen_accepted();
    let out = e
        .run("exchange.cancel_open_orders", json!({}))
        .await
        .unwrap();
    let ro_masked = respond::secret::mask_key(READONLY);
    assert!(
        out.summary.contains(&format!(
            "nothing to cancel, confirmed with the read-only key {ro_masked}"
        )),
        "{}",
        out.summary
    );
    assert!(out.summary.contains("already deleted"), "{}", out.summary);
    assert_eq!(out.outputs["remaining"], 0);
    assert_eq!(out.outputs["confirmed_with"], ro_masked.as_str());
    assert_eq!(ro.calls("open_orders"), 1);
}

/// The deletion wait alone under the default retry policy (3 attempts) and a 10-minute
/// timeout for both the step and its wait.
const WAIT_PLAYBOOK: &str = r#"name: wait
description: the deletion wait under the default retry policy
defaults:
  timeout: 10m
  retry: { attempts: 3, backoff: 1s }
steps:
  - id: verify_revoked
    uses: exchange.verify_key_revoked
    with: { interval: 2s, timeout: "{{inputs.wait}}" }
inputs:
  wait: { type: duration, default: 10m }
"#;

/// Runs WAIT_PLAYBOOK through the engine with `primary` (seen accepted when `accepted`):
/// the report, every line a user would read, and the (paused-clock) time it took.
async fn run_wait(
    primary: Arc<Fake>,
    accepted: bool,
    wait: &str,
) -> (respond::engine::RunReport, Vec<String>, std::time::Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let session = ExchangeSession::new(primary, None);
    if accepted {
        session.remember_accepted(&respond::secret::mask_key(PRIMARY), t0());
    }
    let services = Arc::new(Services {
        exchange: Some(session),
        bot_logs: Default::default(),
        interactive: false,
        assume_yes: true,
    });
    let (printer, lines) = Printer::capturing(Verbosity::Normal);
    let spec = respond::engine::RunSpec {
        playbook_path: "wait.yaml".into(),
        playbook_source: WAIT_PLAYBOOK.into(),
        inputs: [("wait".to_string(), wait.to_string())].into(),
        capabilities: json!({"name": "upbit"}),
        dry_run: false,
    };
    let started = tokio::time::Instant::now();
    let report = respond::engine::start(
        spec,
        &respond::steps::builtin::registry(),
        services,
        &printer,
        rd,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    let lines = lines.lock().unwrap().clone();
    (report, lines, took)
}

/// Seconds of a `45s` / `4m05s` / `1h02m` clock.
fn secs(clock: &str) -> u64 {
    let (h, rest) = clock.split_once('h').unwrap_or(("0", clock));
    let (m, rest) = rest.split_once('m').unwrap_or(("0", rest));
    let s = rest.trim_end_matches('s');
    let n = |x: &str| {
        if x.is_empty() {
            0
        } else {
            x.parse::<u64>().unwrap()
        }
    };
    n(h) * 3600 + n(m) * 60 + n(s)
}

/// The "so far" of every status line of the wait, in seconds.
fn waited(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter(|l| l.starts_with("[verify_revoked] waiting for"))
        .map(|l| {
            let head = l.split(" so far").next().unwrap();
            secs(head.rsplit(": ").next().unwrap())
        })
        .collect()
}

fn assert_every_30s(w: &[u64], all: &[String]) {
    assert_eq!(w.first(), Some(&0), "a line at the start:\n{all:#?}");
    for pair in w.windows(2) {
        assert!(
            pair[1] > pair[0] && pair[1] - pair[0] <= 30,
            "a status line at least every 30 s: {w:?}"
        );
    }
}

/// Point 5: a key that is never deleted. The wait says what it waits for, how long so far and
/// at most, and how to stop, at least every 30 s without a terminal; its 10-minute timeout is
/// not multiplied by the 3 attempts of the retry policy (about 30 minutes before).
#[tokio::test(start_paused = true)]
async fn the_deletion_wait_reports_every_30s_and_its_timeout_is_not_retried() {
    let f = Arc::new(Fake::new(PRIMARY, account(), 1000));
    let (report, lines, took) = run_wait(f.clone(), false, "10m").await;
    let step = report.step("verify_revoked").unwrap();
    assert_eq!(
        step.status,
        respond::engine::StepStatus::Failed,
        "{lines:#?}"
    );
    assert_eq!(step.attempts, 1, "a wait is never retried");
    assert!(
        step.error
            .as_deref()
            .unwrap()
            .contains("still works after 10m00s"),
        "{:?}",
        step.error
    );
    assert!(
        took >= std::time::Duration::from_secs(600) && took < std::time::Duration::from_secs(660),
        "the wait took {took:?} (paused clock)"
    );
    let w = waited(&lines);
    assert_every_30s(&w, &lines);
    assert!(*w.last().unwrap() >= 570, "{w:?}");
    let status: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("[verify_revoked] waiting for"))
        .collect();
    for l in &status {
        assert!(
            l.contains("upbit to refuse key LEAK...wxyz as deleted"),
            "{l}"
        );
        assert!(l.contains("at most 10m00s"), "{l}");
        assert!(l.contains("To stop: Ctrl-C, then `respond resume "), "{l}");
    }
    assert!(status.last().unwrap().contains("the key still works"));
    assert!(
        !lines.iter().any(|l| l.starts_with("[retry]")),
        "{lines:#?}"
    );
    assert!(f.calls("api_keys") >= 290, "polled every 2 s");
}

/// Point 5: a poll that hangs does not silence the status lines, and does not outlast the wait.
#[tokio::test(start_paused = true)]
async fn a_hanging_poll_keeps_the_status_lines_and_ends_with_the_wait() {
    let mut f = Fake::new(PRIMARY, account(), 1000);
    f.api_keys_delay = Some(std::time::Duration::from_secs(45));
    let (report, lines, took) = run_wait(Arc::new(f), false, "3m").await;
    let step = report.step("verify_revoked").unwrap();
    assert_eq!(step.attempts, 1);
    let err = step.error.as_deref().unwrap();
    assert!(err.contains("no answer within"), "{err}");
    assert!(
        took >= std::time::Duration::from_secs(180) && took < std::time::Duration::from_secs(190),
        "{took:?}"
    );
    let w = waited(&lines);
    assert_every_30s(&w, &lines);
    assert!(*w.last().unwrap() >= 150, "{w:?}");
}

/// Point 5: errors that waiting cannot clear end the wait at once, with their advice.
#[tokio::test(start_paused = true)]
async fn errors_that_cannot_clear_end_the_wait_at_once() {
    type Case = (fn() -> Error, &'static str);
    let cases: [Case; 2] = [
        (
            || Error::Unreachable("GET /v1/api_keys: connection refused".into()),
            "check --api-url",
        ),
        (
            || Error::Evidence("raw/000002: permission denied".into()),
            "fix permissions of the output directory",
        ),
    ];
    for (err, advice) in cases {
        let mut f = Fake::new(PRIMARY, account(), 1000);
        f.api_keys_error = Some((2, err));
        let f = Arc::new(f);
        let (report, lines, took) = run_wait(f.clone(), false, "10m").await;
        let step = report.step("verify_revoked").unwrap();
        assert_eq!(step.attempts, 1, "{lines:#?}");
        assert!(
            step.error
                .as_deref()
                .unwrap()
                .contains("cannot tell whether key LEAK...wxyz was deleted"),
            "{:?}",
            step.error
        );
        assert!(
            step.hint.as_deref().unwrap().contains(advice),
            "{:?}",
            step.hint
        );
        assert_eq!(
            f.calls("api_keys"),
            2,
            "the first poll worked, the second ends it"
        );
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        assert!(report.stopped.is_none());
    }
}

/// Point 1 through the engine: a key refused from its first request stops the run at once,
/// exit 2, with no retry and no wait.
#[tokio::test(start_paused = true)]
async fn a_key_never_accepted_stops_the_run_with_exit_2_at_once() {
    let f = Fake::new(PRIMARY, account(), 1000);
    f.dead.store(true, Ordering::SeqCst);
    let f = Arc::new(f);
    let (report, lines, took) = run_wait(f.clone(), false, "10m").await;
    let stop = report.stopped.as_ref().expect("the run stopped");
    assert_eq!(stop.step, "verify_revoked");
    assert!(stop.message.contains("never accepted here"), "{stop:?}");
    assert_eq!(report.exit_code(), respond::exit::Code::Usage);
    assert_eq!(report.step("verify_revoked").unwrap().attempts, 1);
    assert_eq!(f.calls("api_keys"), 1);
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    assert!(
        !lines.iter().any(|l| l.contains("is revoked")),
        "{lines:#?}"
    );
}

/// Three open orders `o0`..`o2` of one account, the old key `Fake` built by `f`, a read-only
/// key of the same account.
fn three_open(f: impl FnOnce(Arc<Mutex<Account>>) -> Fake) -> (Arc<Mutex<Account>>, Arc<Fake>) {
    let acc = account();
    for i in 0..3 {
        acc.lock().unwrap().open.push(order(
            &format!("o{i}"),
            "KRW-XRP",
            Utc::now(),
            OrderState::Open,
        ));
    }
    let primary = Arc::new(f(acc.clone()));
    (acc, primary)
}

fn open_at_start_ids(e: &Env, step: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&e.read(&format!("cancel-{step}.json"))).unwrap();
    v["open_at_start"]
        .as_array()
        .unwrap_or_else(|| panic!("no open_at_start in {v}"))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// The user deletes the key as told while containment cancels: the book the cancel path
/// listed before its first cancel is still the evidence of what was open, and the snapshot
/// takes it from there instead of listing a book the dead key can no longer read.
#[tokio::test]
async fn the_book_listed_before_the_key_died_mid_cancel_is_kept() {
    let (acc, primary) = three_open(|acc| {
        let mut f = Fake::new(PRIMARY, acc, 1000);
        f.die_after = Some(1); // the listing answers, the first cancel finds the key deleted
        f
    });
    let ro = Arc::new(Fake::new(READONLY, acc, 1000));
    let mut e = env(primary, Some(ro));
    e.seen_accepted();
    let _ = e
        .run_as("cancel_orders", "exchange.cancel_open_orders", json!({}))
        .await;
    assert_eq!(open_at_start_ids(&e, "cancel_orders"), ["o0", "o1", "o2"]);
    let snap = e
        .run_as(
            "snapshot",
            "exchange.snapshot",
            json!({"open_orders_from": "cancel_orders", "allow_partial": true}),
        )
        .await;
    let _ = snap;
    let v: Value = serde_json::from_str(&e.read("snapshot-snapshot.json")).unwrap();
    assert!(
        v["open_orders_source"]
            .as_str()
            .unwrap()
            .contains("before its first cancel"),
        "{v}"
    );
    assert_eq!(v["open_orders"].as_array().unwrap().len(), 3, "{v}");
}

/// A cancel step that failed after its listing and runs again (a resume) keeps the first
/// listing as what was open when containment began: the second one no longer shows what the
/// first attempt cancelled or what filled meanwhile.
#[tokio::test]
async fn a_cancel_run_again_keeps_the_first_listing() {
    let (acc, primary) = three_open(|acc| {
        let mut f = Fake::new(PRIMARY, acc, 1000);
        f.unsupported.insert("cancel_all");
        f
    });
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let mut e = env_in(tmp, rd.clone(), primary, None);
    e.run_as("cancel_orders", "exchange.cancel_open_orders", json!({}))
        .await
        .unwrap_err();
    assert_eq!(open_at_start_ids(&e, "cancel_orders"), ["o0", "o1", "o2"]);
    let first: Value = serde_json::from_str(&e.read("cancel-cancel_orders.json")).unwrap();
    // Meanwhile o0 filled; the resumed step lists o1 and o2 only.
    acc.lock().unwrap().open.remove(0);
    e.ctx.services = Arc::new(Services {
        exchange: Some(ExchangeSession::new(
            Arc::new(Fake::new(PRIMARY, acc.clone(), 1000)),
            None,
        )),
        bot_logs: Default::default(),
        interactive: false,
        assume_yes: true,
    });
    let out = e
        .run_as("cancel_orders", "exchange.cancel_open_orders", json!({}))
        .await
        .unwrap();
    assert_eq!(out.outputs["cancelled"], json!(["o1", "o2"]));
    assert_eq!(open_at_start_ids(&e, "cancel_orders"), ["o0", "o1", "o2"]);
    let again: Value = serde_json::from_str(&e.read("cancel-cancel_orders.json")).unwrap();
    assert_eq!(again["began_at"], first["began_at"]);
}
