//! End-to-end tests of `respond leak` against the mock exchange over real loopback HTTP.
//!
//! The mock runs in-process on 127.0.0.1:0; the leak runs either through the library
//! (`session::run_new`, to inspect every step's record) or through the built binary
//! with the credentials in the environment, as a user would. A simulated user deletes the key
//! through the mock's drill API (`POST /_mock/keys/{key}/revoke`) at a chosen moment, and the
//! mock's request log and ground truth are the referee: what was cancelled and how often, which
//! statuses the exchange answered, which orders really were the attacker's. The library's runs
//! share one paused tokio runtime with the mock, so backoffs, storms, the live attacker and the
//! deletion polls take no real time; the binary's runs wait on real time and on events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use respond::cli::BotLogArgs;
use respond::credentials::KeyPair;
use respond::engine::{RunReport, StepStatus};
use respond::exchange::upbit::{UpbitClient, UpbitConfig};
use respond::exchange::Exchange;
use respond::investigation::investigate;
use respond::mock::faults::FaultRule;
use respond::mock::{self, MockOptions, MockServer, RequestRecord, Venue};
use respond::output::{Printer, Verbosity};
use respond::secret::Secret;
use respond::session::{run_new, Connection, RunSettings};

use crate::support;
use crate::support::respond::{verify, Ran, Respond};

/// A running mock, its scenario's bot log on disk and a place for evidence.
struct Env {
    server: MockServer,
    tmp: tempfile::TempDir,
    bot_log: PathBuf,
}

impl Env {
    async fn start(scenario: &str, live_attacker: bool) -> Env {
        let opts = MockOptions {
            live_attacker,
            ..MockOptions::default()
        };
        // Timestamps follow tokio's clock: paused in the tests of the library's run, so the
        // user's reaction, backoffs and deletion polls take no real time.
        respond::time::follow_tokio_clock();
        let server = support::mock::serve_builtin(scenario, opts).await;
        let tmp = tempfile::tempdir().unwrap();
        let bot_log = tmp.path().join("bot.csv");
        std::fs::write(&bot_log, server.state.bot_log_csv()).unwrap();
        Env {
            server,
            tmp,
            bot_log,
        }
    }

    fn state(&self) -> &Arc<Venue> {
        &self.server.state
    }

    fn key(&self, label: &str) -> KeyPair {
        let k = self.state().key(label).expect("scenario key");
        KeyPair {
            access_key: k.access_key.clone(),
            secret_key: Secret::new(k.secret_key.clone()),
            passphrase: None,
        }
    }

    fn leaked(&self) -> String {
        self.state().key("bot").unwrap().access_key.clone()
    }

    fn conn(&self, readonly: bool) -> Connection {
        Connection {
            exchange: "upbit".into(),
            api_url: Some(self.server.url.clone()),
            primary: Some(self.key("bot")),
            readonly: readonly.then(|| self.key("readonly")),
            master: None,
        }
    }

    fn settings(&self, dry_run: bool, inputs: &[(&str, &str)]) -> RunSettings {
        let mut map: BTreeMap<String, String> =
            [("revoke_interval", "200ms"), ("revoke_timeout", "20s")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        for (k, v) in inputs {
            map.insert(k.to_string(), v.to_string());
        }
        RunSettings {
            playbook: None,
            inputs: map,
            bot_logs: BotLogArgs {
                bot_logs: vec![self.bot_log.clone()],
                ..BotLogArgs::default()
            },
            out: self.tmp.path().join("evidence"),
            dry_run,
            assume_yes: true,
            interactive: false,
            rerun: None,
        }
    }

    async fn leak(&self, readonly: bool, dry_run: bool, inputs: &[(&str, &str)]) -> RunReport {
        run_new(
            self.settings(dry_run, inputs),
            &self.conn(readonly),
            &Printer::plain(Verbosity::Quiet),
        )
        .await
        .unwrap_or_else(|f| panic!("the run could not start or finish: {f:?}"))
    }

    /// The victim's open orders, read with the read-only key (no recording).
    async fn open_orders(&self) -> Vec<String> {
        let k = self.state().key("readonly").expect("scenario key").clone();
        support::mock::open_orders(&self.server.url, &k).await
    }

    /// Requests of the leaked key.
    fn leaked_requests(&self) -> Vec<RequestRecord> {
        let key = self.leaked();
        self.state()
            .requests()
            .into_iter()
            .filter(|r| r.access_key.as_deref() == Some(key.as_str()))
            .collect()
    }

    /// The simulated user: deletes the leaked key through the drill API (over HTTP, as a
    /// browser would) once `when` holds for the request log and at least `after` has passed.
    fn revoke_when(
        &self,
        after: Duration,
        when: impl Fn(&[RequestRecord]) -> bool + Send + 'static,
    ) -> tokio::task::JoinHandle<bool> {
        let state = self.state().clone();
        let (url, leaked) = (self.server.url.clone(), self.leaked());
        tokio::spawn(async move {
            let start = Instant::now();
            // A deadline so a test never hangs on a condition that never comes.
            while start.elapsed() < Duration::from_secs(30) {
                if start.elapsed() >= after && when(&state.requests()) {
                    support::mock::revoke(&url, &leaked).await;
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        })
    }
}

/// Containment with the leaked key is over: `cancel_orders` cancelled, read the orders back
/// and listed the book once more (its last call), `cancel_withdrawals` listed withdrawals, and
/// the snapshot and the permission probe, which run after the cancels, listed them once each.
/// Revoking earlier would make those steps fail, which is right but not what a test of "every
/// step ok" wants.
fn cancelled(key: String) -> impl Fn(&[RequestRecord]) -> bool + Send + 'static {
    move |log| {
        let mine: Vec<&RequestRecord> = log
            .iter()
            .filter(|r| r.access_key.as_deref() == Some(key.as_str()) && r.status == 200)
            .collect();
        let withdrawal_lists = mine
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/v1/withdraws")
            .count();
        let Some(first_delete) = mine.iter().position(|r| r.method == "DELETE") else {
            return false;
        };
        let Some(read_back) = mine[first_delete..]
            .iter()
            .position(|r| r.method == "GET" && r.path == "/v1/orders/uuids")
        else {
            return false;
        };
        withdrawal_lists >= 3
            && mine[first_delete + read_back..]
                .iter()
                .any(|r| r.method == "GET" && r.path == "/v1/orders/open")
    }
}

/// The export of the leaked key has started (after containment).
fn exporting(key: String) -> impl Fn(&[RequestRecord]) -> bool + Send + 'static {
    move |log| {
        log.iter().any(|r| {
            r.access_key.as_deref() == Some(key.as_str())
                && r.method == "GET"
                && r.path == "/v1/orders/closed"
                && r.status == 200
        })
    }
}

/// With `LEAK_E2E_TRACE` set, prints the mock's request log (to see where a run's time went).
fn trace(log: &[RequestRecord]) {
    if std::env::var_os("LEAK_E2E_TRACE").is_some() {
        for (i, r) in log.iter().enumerate() {
            println!(
                "{i:4} {} {} {} {} {:?}",
                r.at, r.method, r.path, r.status, r.fault
            );
        }
    }
}

fn status_of(report: &RunReport, id: &str) -> StepStatus {
    report
        .step(id)
        .unwrap_or_else(|| panic!("step {id} in the report"))
        .status
}

fn describe(report: &RunReport) -> String {
    report
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {} {}",
                s.id,
                s.status,
                s.summary,
                s.error.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every step ran and ended ok; `notify` is skipped by its `if` (no webhook given), and so are
/// the steps of the branch for exchanges whose key deletes itself after containment.
fn assert_all_ok(report: &RunReport) {
    for s in &report.steps {
        let expected = if [
            "notify",
            "export_before_revoke",
            "revoke_key_by_api",
            "fills_before_revoke",
        ]
        .contains(&s.id.as_str())
        {
            StepStatus::Skipped
        } else {
            StepStatus::Ok
        };
        assert_eq!(s.status, expected, "step {}:\n{}", s.id, describe(report));
    }
    assert!(report.ok, "{}", describe(report));
}

/// Runs the binary with a clean credential environment plus `env` (never in argv), off the
/// runtime's threads (the mock it talks to is served by this runtime).
async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let cmd = Respond::new().args(args).envs(env.iter().copied());
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.run()),
    )
    .await
    .expect("the binary finished within 60 s")
    .expect("the binary runs");
    for (k, v) in env {
        if k.contains("SECRET") {
            assert!(!out.all().contains(v), "{k} leaked into the output");
        }
    }
    out
}

/// `respond resume DIR --api-url URL --yes` with these credentials only.
async fn resume_bin(dir: &Path, url: &str, env: &[(&str, &str)]) -> Ran {
    run_bin(
        &["resume", dir.to_str().unwrap(), "--api-url", url, "--yes"],
        env,
    )
    .await
}

/// `respond evidence verify DIR` exits 0.
fn verify_bundle(dir: &Path) {
    verify(dir).success();
}

/// Precision and recall of "flagged" against the mock's ground truth.
fn precision_recall(dir: &Path, truth: &BTreeSet<String>) -> (f64, f64, String) {
    let inv = investigate(dir, &respond::analysis::Thresholds::default()).expect("investigate");
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut fps = Vec::new();
    let mut seen = BTreeSet::new();
    for (o, v) in inv.input.orders.iter().zip(&inv.result.verdicts) {
        seen.insert(o.id.clone());
        if v.flagged {
            if truth.contains(&o.id) {
                tp += 1;
            } else {
                fp += 1;
                fps.push(o.id.clone());
            }
        }
    }
    let missing: Vec<&String> = truth.iter().filter(|u| !seen.contains(*u)).collect();
    let fn_ = truth.len() - tp;
    let p = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let r = if truth.is_empty() {
        1.0
    } else {
        tp as f64 / truth.len() as f64
    };
    let detail = format!(
        "tp {tp} fp {fp} fn {fn_}; false positives {fps:?}; attacker orders not exported {missing:?}"
    );
    (p, r, detail)
}

#[tokio::test(start_paused = true)]
async fn every_step_ok_on_a_live_pump_and_dump_and_detection_matches_ground_truth() {
    let env = Env::start("pump-and-dump", true).await;
    let open_before = env.open_orders().await;
    assert_eq!(open_before.len(), 6, "4 bot and 2 attacker orders rest");
    let user = env.revoke_when(Duration::from_millis(1500), cancelled(env.leaked()));
    let report = env.leak(true, false, &[]).await;
    assert!(user.await.unwrap(), "the simulated user revoked the key");
    assert_all_ok(&report);

    // Contained: nothing open, each order cancelled exactly once.
    assert!(env.open_orders().await.is_empty());
    let cancelled: Vec<_> = env
        .leaked_requests()
        .into_iter()
        .flat_map(|r| r.orders_cancelled)
        .map(|u| u.to_string())
        .collect();
    let unique: BTreeSet<_> = cancelled.iter().cloned().collect();
    assert_eq!(
        cancelled.len(),
        unique.len(),
        "an order was cancelled twice"
    );
    assert_eq!(
        unique,
        open_before.iter().cloned().collect(),
        "exactly the open orders were cancelled"
    );
    let c = report.step("cancel_orders").unwrap();
    assert_eq!(c.outputs["cancelled_count"], 6);

    // Revocation observed, checklist and bundle written, bundle verifies.
    let v = report.step("verify_revoked").unwrap();
    assert!(!v.outputs.is_empty(), "verify_revoked outputs");
    for f in [
        "checklist.md",
        "orders.csv",
        "unauthorized_trades.csv",
        "report.html",
        "support_ticket.md",
        "SHA256SUMS",
        "manifest.json",
        "journal.jsonl",
    ] {
        assert!(report.dir.join(f).is_file(), "{f} in the bundle");
    }
    verify_bundle(&report.dir);

    // Detection: ground truth includes the live attacker's orders up to revocation, which
    // only the export after revocation (with the read-only key) can see.
    let gt = env.state().ground_truth();
    assert!(gt.revoked_at.is_some());
    let truth: BTreeSet<String> = gt
        .attacker_order_uuids
        .iter()
        .map(|u| u.to_string())
        .collect();
    let (p, r, detail) = precision_recall(&report.dir, &truth);
    println!(
        "pump-and-dump with bot log: precision {p:.3} recall {r:.3} over {} attacker orders ({detail})",
        truth.len()
    );
    assert!(
        p >= 0.95 && r >= 0.95,
        "precision {p:.3} recall {r:.3}: {detail}"
    );
}

// Real time: the user must delete the key while the export's pages are being fetched, a race
// a paused clock would settle before the user's next look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_mid_export_with_a_readonly_key_switches_and_completes() {
    let env = Env::start("pump-and-dump", false).await;
    // The export's calls after its closed orders (open orders first) take longer than the
    // user's look (every 20 ms) and the deletion: without it, a history of one page let the
    // export finish with the old key in ~15 ms, before the key was gone (~1 run in 4).
    env.state().set_faults(vec![FaultRule {
        path: "/v1/orders/open".into(),
        method: Some("GET".into()),
        latency_ms: 200,
        ..FaultRule::default()
    }]);
    let user = env.revoke_when(Duration::ZERO, exporting(env.leaked()));
    let report = env.leak(true, false, &[]).await;
    assert!(user.await.unwrap());
    assert_all_ok(&report);
    let export = report.step("export").unwrap();
    assert_eq!(
        export.outputs["switched_to_readonly"], true,
        "the export switched keys: {:?}",
        export.outputs
    );
    // The read-only key really did the rest of the export: the mock saw it list closed orders.
    let ro = env.key("readonly").access_key;
    assert!(env.state().requests().iter().any(|r| {
        r.access_key.as_deref() == Some(ro.as_str()) && r.path == "/v1/orders/closed"
    }));
    // After the revocation the old key was only used to see it fail, never successfully
    // (a request already past the key check when it was revoked may still be answered 200).
    let revoked_at: chrono::DateTime<chrono::Utc> = env
        .state()
        .ground_truth()
        .revoked_at
        .unwrap()
        .parse()
        .unwrap();
    let settled = revoked_at + chrono::Duration::milliseconds(500);
    let after: Vec<_> = env
        .leaked_requests()
        .into_iter()
        .filter(|r| r.at.parse::<chrono::DateTime<chrono::Utc>>().unwrap() > settled)
        .collect();
    assert!(after.iter().all(|r| r.status == 401), "{after:?}");
    verify_bundle(&report.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_mid_export_without_a_readonly_key_keeps_everything_and_resume_completes() {
    let env = Env::start("pump-and-dump", false).await;
    let user = env.revoke_when(Duration::ZERO, exporting(env.leaked()));
    let report = env.leak(false, false, &[]).await;
    assert!(user.await.unwrap());
    assert!(!report.ok, "{}", describe(&report));
    let dir = report.dir.clone();
    let export = report.step("export").unwrap();
    assert_eq!(export.status, StepStatus::Failed, "{}", describe(&report));
    let msg = export.error.clone().unwrap_or_default();
    let expected = format!(
        "the old key stopped working (it was deleted: good). To finish the export, create a read-only key (view scopes only) and run: UPBIT_READONLY_ACCESS_KEY=… UPBIT_READONLY_SECRET_KEY=… respond resume {}",
        dir.display()
    );
    assert!(
        msg.contains(&expected),
        "export error:\n{msg}\nexpected to contain:\n{expected}"
    );
    // Everything gathered is kept: containment done, the export's first pieces on disk.
    assert_eq!(status_of(&report, "snapshot"), StepStatus::Ok);
    assert_eq!(status_of(&report, "cancel_orders"), StepStatus::Ok);
    assert!(dir.join("journal.jsonl").is_file());
    let raw_before = std::fs::read_dir(dir.join("raw")).unwrap().count();
    assert!(raw_before > 0);
    let closed_raw = |d: &Path| {
        std::fs::read_dir(d.join("raw"))
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                let n = n.to_string_lossy().to_string();
                n.contains("orders") && n.contains("closed")
            })
            .count()
    };
    let closed_before = closed_raw(&dir);
    assert!(
        closed_before > 0,
        "the closed-orders answers before the key died are kept"
    );

    // Point 6(b): a resume with no credentials at all, without a terminal, knows the old key
    // is dead and says exactly which variables to set (not the old key's).
    let out = resume_bin(&dir, &env.server.url, &[]).await;
    let stderr = out.stderr;
    assert_eq!(out.code, Some(2), "{stderr}");
    let expected = format!(
        "UPBIT_READONLY_ACCESS_KEY=… UPBIT_READONLY_SECRET_KEY=… respond resume {}",
        dir.display()
    );
    assert!(
        stderr.contains(&expected),
        "{stderr}\nexpected:\n{expected}"
    );
    assert!(stderr.contains("was deleted"), "{stderr}");
    assert!(!stderr.contains("set UPBIT_ACCESS_KEY"), "{stderr}");

    // The user creates a read-only key and resumes with it in the environment.
    let ro = env.key("readonly");
    let out = resume_bin(
        &dir,
        &env.server.url,
        &[
            ("UPBIT_READONLY_ACCESS_KEY", &ro.access_key),
            ("UPBIT_READONLY_SECRET_KEY", ro.secret_key.expose()),
        ],
    )
    .await;
    let stdout = out.stdout;
    let stderr = out.stderr;
    assert!(out.code == Some(0), "resume:\n{stdout}\n{stderr}");
    assert!(std::fs::read_dir(dir.join("raw")).unwrap().count() > raw_before);
    assert!(closed_raw(&dir) >= closed_before);
    for f in ["orders.csv", "report.html", "checklist.md", "SHA256SUMS"] {
        assert!(dir.join(f).is_file(), "{f} after resume");
    }
    verify_bundle(&dir);
    // The resumed export found every attacker order (all of them predate the revocation).
    let truth: BTreeSet<String> = env
        .state()
        .ground_truth()
        .attacker_order_uuids
        .iter()
        .map(|u| u.to_string())
        .collect();
    let (p, r, detail) = precision_recall(&dir, &truth);
    assert!(p >= 0.95 && r >= 0.95, "after resume: {detail}");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_and_server_error_storms_are_survived_without_a_418() {
    let env = Env::start("pump-and-dump", false).await;
    env.state().set_faults(vec![
        // Everyone gets 429 for 2 s as soon as the run's first private list is asked for.
        FaultRule {
            path: "/v1/orders/open".into(),
            method: Some("GET".into()),
            storm_secs: 2,
            count: Some(1),
            ..FaultRule::default()
        },
        // Then bursts of 500s on the reads of every phase (capped, so backoffs stay short).
        FaultRule {
            path: "/v1/accounts".into(),
            error_rate: 0.5,
            count: Some(3),
            ..FaultRule::default()
        },
        FaultRule {
            path: "/v1/orders/closed".into(),
            error_rate: 0.5,
            count: Some(3),
            ..FaultRule::default()
        },
        FaultRule {
            path: "/v1/order".into(),
            method: Some("GET".into()),
            error_rate: 0.3,
            count: Some(4),
            ..FaultRule::default()
        },
    ]);
    let user = env.revoke_when(Duration::ZERO, exporting(env.leaked()));
    let report = env.leak(true, false, &[]).await;
    assert!(user.await.unwrap());
    assert_all_ok(&report);
    let log = env.state().requests();
    let count = |s: u16| log.iter().filter(|r| r.status == s).count();
    println!(
        "storms: {} answers 429, {} answers 500, {} answers 418, {} requests",
        count(429),
        count(500),
        count(418),
        log.len()
    );
    trace(&log);
    assert!(count(429) > 0, "the 429 storm happened");
    assert!(count(500) > 0, "the 5xx storm happened");
    assert_eq!(count(418), 0, "the client was blocked");
    assert!(env.open_orders().await.is_empty());
    verify_bundle(&report.dir);
}

/// Asserts from the mock's log that no order was the target of two cancelling requests and
/// that no cancel was refused because the order was already cancelled (a blind resend).
fn assert_no_duplicate_cancel(env: &Env) {
    let log = env.leaked_requests();
    let mut times: HashMap<String, u32> = HashMap::new();
    for r in log.iter().filter(|r| r.method == "DELETE") {
        for u in &r.orders_cancelled {
            *times.entry(u.to_string()).or_default() += 1;
        }
        assert!(
            r.error.as_deref() != Some("order_not_found"),
            "a DELETE hit an order already cancelled: {r:?}"
        );
    }
    assert!(times.values().all(|&n| n == 1), "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_with_an_unknown_outcome_is_not_sent_twice() {
    let env = Env::start("pump-and-dump", false).await;
    let open_before = env.open_orders().await;
    // The exchange cancels, then the connection drops before the answer arrives.
    env.state().set_faults(vec![FaultRule {
        path: "/v1/orders/uuids".into(),
        method: Some("DELETE".into()),
        drop_rate: 1.0,
        count: Some(1),
        ..FaultRule::default()
    }]);
    let user = env.revoke_when(Duration::ZERO, exporting(env.leaked()));
    let report = env.leak(true, false, &[]).await;
    assert!(user.await.unwrap());
    assert_all_ok(&report);
    let deletes: Vec<RequestRecord> = env
        .leaked_requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(
        deletes.len(),
        1,
        "one cancel request; its outcome was settled by reading state: {deletes:?}"
    );
    assert_eq!(deletes[0].fault.as_deref(), Some("dropped connection"));
    assert_eq!(deletes[0].orders_cancelled.len(), open_before.len());
    assert_no_duplicate_cancel(&env);
    assert!(env.open_orders().await.is_empty());
    // The report still lists what was cancelled (read back from the exchange).
    let c = report.step("cancel_orders").unwrap();
    assert_eq!(c.outputs["cancelled_count"], open_before.len());
}

#[tokio::test(start_paused = true)]
async fn a_single_cancel_with_an_unknown_outcome_is_settled_by_reading_the_order() {
    let env = Env::start("pump-and-dump", false).await;
    let open_before = env.open_orders().await;
    // A single cancel (DELETE /v1/order) whose answer is lost; the adapter must read the
    // order back, never DELETE it again.
    let k = env.key("bot");
    let mut cfg = UpbitConfig::new(k.access_key, k.secret_key);
    cfg.base_url = Some(env.server.url.clone());
    let client = UpbitClient::new(cfg).unwrap();
    env.state().set_faults(vec![FaultRule {
        path: "/v1/order".into(),
        method: Some("DELETE".into()),
        drop_rate: 1.0,
        count: Some(1),
        ..FaultRule::default()
    }]);
    let target = &open_before[0];
    let o = client
        .cancel_order(&respond::exchange::OrderRef {
            id: target.clone(),
            market: None,
        })
        .await
        .expect("settled");
    assert_eq!(o.id, *target);
    assert_ne!(o.state, respond::exchange::OrderState::Open);
    let deletes: Vec<_> = env
        .leaked_requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_no_duplicate_cancel(&env);
    assert_eq!(env.open_orders().await.len(), open_before.len() - 1);
}

#[tokio::test(start_paused = true)]
async fn dry_run_cancels_nothing() {
    let env = Env::start("pump-and-dump", false).await;
    let open_before = env.open_orders().await;
    assert!(!open_before.is_empty());
    let report = env.leak(false, true, &[("revoke_timeout", "1s")]).await;
    assert!(report.dry_run);
    assert_eq!(status_of(&report, "cancel_orders"), StepStatus::DryRun);
    assert_eq!(
        env.open_orders().await,
        open_before,
        "open orders untouched"
    );
    let log = env.state().requests();
    trace(&log);
    assert!(
        log.iter().all(|r| r.method == "GET"),
        "only reads in a dry run: {:?}",
        log.iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert!(log.iter().all(|r| r.orders_cancelled.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_contains_a_live_attack_with_the_binary() {
    let env = Env::start("pump-and-dump", true).await;
    let bot = env.key("bot");
    let ro = env.key("readonly");
    let user = env.revoke_when(Duration::from_millis(1000), cancelled(env.leaked()));
    let out_dir = env.tmp.path().join("evidence");
    let out = run_bin(
        &[
            "leak",
            "--exchange",
            "upbit",
            "--api-url",
            &env.server.url,
            "--bot-log",
            env.bot_log.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--yes",
            "--input",
            "revoke_interval=200ms",
            "--input",
            "revoke_timeout=20s",
        ],
        &[
            ("UPBIT_ACCESS_KEY", &bot.access_key),
            ("UPBIT_SECRET_KEY", bot.secret_key.expose()),
            ("UPBIT_READONLY_ACCESS_KEY", &ro.access_key),
            ("UPBIT_READONLY_SECRET_KEY", ro.secret_key.expose()),
        ],
    )
    .await;
    assert!(user.await.unwrap());
    let stdout = out.stdout;
    let stderr = out.stderr;
    assert!(out.code == Some(0), "leak:\n{stdout}\n{stderr}");
    // The live attacker stopped at revocation and nothing is left open.
    let gt = env.state().ground_truth();
    assert!(gt.revoked_at.is_some());
    assert!(env.open_orders().await.is_empty());
    let line = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label).map(|s| s.trim().to_string()))
            .unwrap_or_else(|| panic!("{label} line in:\n{stdout}"))
    };
    let dir = PathBuf::from(line("evidence:"));
    assert!(dir.starts_with(&out_dir));
    assert!(PathBuf::from(line("checklist:")).is_file());
    // The claim, first among the closing lines, formatted as the report writes it: whole won
    // with separators, the total then its parts.
    let loss = line("loss:");
    assert!(
        loss.starts_with("estimated loss ") && loss.contains(" KRW = overpayment "),
        "{loss}"
    );
    assert!(!loss.contains('.'), "whole won, no decimals: {loss}");
    assert!(
        stdout.find("loss:").unwrap() < stdout.find("evidence:").unwrap(),
        "the loss comes first"
    );
    let analysis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("analysis.json")).unwrap()).unwrap();
    let total: rust_decimal::Decimal = analysis["loss"]["total"].as_str().unwrap().parse().unwrap();
    let shown: String = loss["estimated loss ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "");
    assert_eq!(
        shown,
        total
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            .to_string(),
        "{loss}"
    );
    assert!(dir.join("report.html").is_file());
    verify_bundle(&dir);
}

#[tokio::test(start_paused = true)]
async fn a_key_deleted_at_once_still_gets_its_replacement_checklist() {
    // The user follows the instructions shown at the very start and deletes the key before
    // the permission probe could read anything: the probe cannot say which scopes the key
    // had, but the replacement checklist must still be written (scopes listed as unknown).
    let env = Env::start("pump-and-dump", false).await;
    let key = env.leaked();
    let user = env.revoke_when(Duration::ZERO, move |log| {
        log.iter()
            .any(|r| r.access_key.as_deref() == Some(key.as_str()))
    });
    let report = env.leak(true, false, &[]).await;
    assert!(user.await.unwrap());
    assert_eq!(
        status_of(&report, "probe"),
        StepStatus::Ok,
        "{}",
        describe(&report)
    );
    assert_eq!(
        status_of(&report, "checklist"),
        StepStatus::Ok,
        "{}",
        describe(&report)
    );
    let probe = report.step("probe").unwrap();
    assert_eq!(probe.outputs["can_withdraw"], "unknown");
    let text = std::fs::read_to_string(report.dir.join("checklist.md")).unwrap();
    assert!(
        text.contains("make_withdrawals"),
        "every scope is listed:\n{text}"
    );
    // Everything the read-only key can do was done; cancelling needed the old key.
    for id in [
        "snapshot",
        "export",
        "fills",
        "verify_revoked",
        "analyze",
        "report",
    ] {
        assert_eq!(
            status_of(&report, id),
            StepStatus::Ok,
            "{}",
            describe(&report)
        );
    }
    verify_bundle(&report.dir);
}

#[tokio::test(start_paused = true)]
async fn a_batch_cancel_with_an_unknown_outcome_is_not_sent_again() {
    // 50 resting orders: the adapter uses the batch endpoint (DELETE /v1/orders/open), whose
    // answer is lost after the exchange cancelled them all.
    let yaml = r#"name: batch
description: a victim with 50 resting orders
seed: 5
markets:
  - { code: KRW-XRP, korean_name: 리플, english_name: XRP, price: "3100", volatility: 0.04, depth: { levels: 15, step_pct: "0.1", level_krw: "10000000" } }
accounts:
  - { name: victim, balances: { KRW: "100000000", XRP: "100000" } }
keys:
  - { account: victim, label: bot, scopes: [view_account, view_orders, make_orders] }
bot: { account: victim, key: bot, markets: [KRW-XRP], days: 1, orders_per_day: 2, order_krw: ["6000", "9000"], open_orders: 50 }
"#;
    let sc = mock::scenario::parse("batch.yaml", yaml, None).unwrap();
    let server = support::mock::serve(sc, MockOptions::default()).await;
    let k = server.state.key("bot").unwrap().clone();
    let mut cfg = UpbitConfig::new(k.access_key.clone(), Secret::new(k.secret_key.clone()));
    cfg.base_url = Some(server.url.clone());
    let client = UpbitClient::new(cfg).unwrap();
    assert_eq!(client.open_orders().await.unwrap().len(), 50);
    server.state.set_faults(vec![FaultRule {
        path: "/v1/orders/open".into(),
        method: Some("DELETE".into()),
        drop_rate: 1.0,
        count: Some(1),
        ..FaultRule::default()
    }]);
    let report = client.cancel_all_open_orders().await.unwrap();
    assert_eq!(report.cancelled.len(), 50, "read back as cancelled");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let deletes: Vec<RequestRecord> = server
        .state
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].path, "/v1/orders/open");
    assert_eq!(deletes[0].fault.as_deref(), Some("dropped connection"));
    assert_eq!(deletes[0].orders_cancelled.len(), 50);
    assert!(client.open_orders().await.unwrap().is_empty());
}

/// `respond leak` over the last hour against `url`, bundle under `out`, with only this key.
async fn leak_with_key(url: &str, out: &Path, access: &str, secret: &str) -> Ran {
    run_bin(
        &[
            "leak",
            "--exchange",
            "upbit",
            "--api-url",
            url,
            "--since",
            "1h",
            "--yes",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("UPBIT_ACCESS_KEY", access), ("UPBIT_SECRET_KEY", secret)],
    )
    .await
}

/// The bundle directory a binary run printed on its `evidence:` line.
fn evidence_line(stdout: &str) -> PathBuf {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("evidence:").map(|s| PathBuf::from(s.trim())))
        .unwrap_or_else(|| panic!("an evidence: line in:\n{stdout}"))
}

/// Requests the mock saw signed with `access_key`.
fn requests_of(env: &Env, access_key: &str) -> Vec<RequestRecord> {
    env.state()
        .requests()
        .into_iter()
        .filter(|r| r.access_key.as_deref() == Some(access_key))
        .collect()
}

/// Issue 11, point 1: a mistyped key (40 × `Z`) is refused with `invalid_access_key` from its
/// very first request. That proves nothing about a revocation: the real key keeps trading. The
/// run says the key was never accepted here and what to do, stops at once (a handful of
/// requests, no retries, no polling) and exits 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_from_its_first_request_is_never_reported_revoked() {
    let env = Env::start("pump-and-dump", false).await;
    let typo = "Z".repeat(40);
    let out_dir = env.tmp.path().join("evidence");
    let out = leak_with_key(
        &env.server.url,
        &out_dir,
        &typo,
        "any-secret-for-a-mistyped-key",
    )
    .await;
    let stdout = out.stdout.clone();
    let stderr = out.stderr.clone();
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(out.code, Some(2), "leak:\n{all}");
    for lie in [
        "appears deleted",
        "is revoked",
        "deleted: good",
        "revocation worked",
    ] {
        assert!(!all.contains(lie), "claims `{lie}`:\n{all}");
    }
    assert!(all.contains("was never accepted here"), "{all}");
    assert!(all.contains("check the access key you entered"), "{all}");
    assert!(
        all.contains("confirm in Upbit's web console") && all.contains("read-only key"),
        "{all}"
    );
    // Stopped within seconds: each first read tried once, nothing retried or polled.
    let tried = requests_of(&env, &typo);
    assert!(
        !tried.is_empty() && tried.len() <= 4,
        "{} requests with the refused key: {:?}",
        tried.len(),
        tried
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert!(!stderr.contains("[retry]"), "{stderr}");
    // The journal agrees: no verification claimed, the run stopped.
    let dir = evidence_line(&stdout);
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!entries.iter().any(|e| e["event"] == "step_end"
        && e["data"]["step"] == "verify_revoked"
        && e["data"]["status"] == "ok"));
    let end = entries
        .iter()
        .rev()
        .find(|e| e["event"] == "run_end")
        .unwrap();
    assert!(
        end["data"]["stopped"]["message"]
            .as_str()
            .unwrap()
            .contains("never accepted"),
        "{end}"
    );
    // The real key was never touched and still works.
    assert!(!env.open_orders().await.is_empty());
}

/// Point 5: a wrong secret (`jwt_verification`) cannot clear by waiting: the run stops at once
/// with the advice, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_stops_the_run_at_once_with_its_advice() {
    let env = Env::start("pump-and-dump", false).await;
    let bot = env.key("bot");
    let out_dir = env.tmp.path().join("evidence");
    let out = leak_with_key(
        &env.server.url,
        &out_dir,
        &bot.access_key,
        "not-the-secret-of-this-key-000000000000",
    )
    .await;
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(2), "{all}");
    assert!(all.contains("jwt_verification"), "{all}");
    assert!(
        all.contains("the secret key does not match the access key"),
        "{all}"
    );
    assert!(
        !all.contains("[retry]") && !all.contains("still polling"),
        "{all}"
    );
    assert!(requests_of(&env, &bot.access_key).len() <= 4);
    // Nothing was cancelled with a key that was never accepted.
    assert_eq!(env.open_orders().await.len(), 6);
}

/// Point 5: nothing listening at `--api-url` (connection refused) is a local problem waiting
/// cannot fix: no step retries it and the deletion is not polled for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_fails_at_once_with_its_advice() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let out = leak_with_key(
        &url,
        &tmp.path().join("ev"),
        "KEYaccesskey000000000000000000000000abcd",
        "secret-for-a-closed-port-000000000000000",
    )
    .await;
    let stderr = out.stderr.clone();
    let all = format!("{}\n{stderr}", out.stdout);
    assert_eq!(out.code, Some(1), "{all}");
    assert!(all.contains("cannot reach the exchange"), "{all}");
    assert!(all.contains("check --api-url"), "{all}");
    assert!(!stderr.contains("[retry]"), "{stderr}");
    assert!(!stderr.contains("still polling"), "{stderr}");
    // The instructions to delete the key were shown all the same.
    assert!(stderr.contains("ACTION NEEDED NOW"), "{stderr}");
}

/// Point 1 across a resume: the raw answers of the run being resumed show the key accepted,
/// so its refusal now is a verified revocation; the same refusal in a fresh run is not.
#[tokio::test(start_paused = true)]
async fn a_resume_remembers_that_the_key_worked_and_a_fresh_run_does_not_claim_revocation() {
    use respond::rundir::RunDir;
    use respond::steps::{builtin, Services, StepContext};

    let env = Env::start("pump-and-dump", false).await;
    let conn = env.conn(false);
    let verify = |rundir: RunDir| {
        let conn = &conn;
        async move {
            let (session, _) = conn.session(&rundir).unwrap();
            let ctx = StepContext {
                step_id: "verify_revoked".into(),
                rundir: rundir.clone(),
                printer: Printer::plain(Verbosity::Quiet),
                services: Arc::new(Services {
                    exchange: Some(session),
                    bot_logs: BotLogArgs::default(),
                    interactive: false,
                    assume_yes: true,
                }),
                run: serde_json::json!({}),
                dry_run: false,
            };
            let args = serde_json::json!({"interval": "100ms", "timeout": "10s"});
            builtin::registry()
                .get("exchange.verify_key_revoked")
                .unwrap()
                .run(&ctx, args.as_object().unwrap())
                .await
        }
    };
    // The first session: the key answers (recorded in raw/), then the process dies.
    let first = env.tmp.path().join("run-resumed");
    let rundir = RunDir::create(&first).unwrap();
    {
        let (session, _) = conn.session(&rundir).unwrap();
        session.primary().api_keys().await.unwrap();
    }
    // The user deletes the key; the resumed session (a new process) verifies.
    let r = reqwest::Client::new()
        .post(format!(
            "{}/_mock/keys/{}/revoke",
            env.server.url,
            env.leaked()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let out = verify(RunDir::open(&first).unwrap()).await.unwrap();
    assert_eq!(out.outputs["revoked"], true, "{}", out.summary);
    assert!(out.outputs["accepted_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(out.outputs["error_name"], "invalid_access_key");

    // A fresh run meeting the same dead key never saw it work: no revocation is claimed.
    let fresh = RunDir::create(&env.tmp.path().join("run-fresh")).unwrap();
    let err = verify(fresh).await.unwrap_err();
    assert!(err.stops_run(), "{err}");
    assert!(err.to_string().contains("never accepted here"), "{err}");
}
