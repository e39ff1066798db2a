//! KuCoin end to end (issue 14): `respond leak --exchange kucoin` against the KuCoin mock over
//! real loopback HTTP, and `respond drill --exchange kucoin` on the built-in scenarios.
//!
//! The leaks run the built binary with the three-part credentials (key, secret, passphrase) in
//! the environment, as a user would, against the mock served in-process. An account's own key
//! cannot be deleted by API: the run shows the guided manual step, keeps containing, and a
//! simulated user deletes the key through the drill API. With a master account's key and the
//! sub-account's name, `respond` deletes the sub-account's key itself
//! (`DELETE /api/v1/sub/api-key`). The drills run as `drill_e2e`'s do.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use respond::mock::kucoin::Kucoin;
use respond::mock::{self, KeyInfo, MockOptions, MockServer, Venue};

use crate::support::drill::{run_all, Drill};
use crate::support::mock::calls;
use crate::support::respond::{verify, Respond};
use crate::support::run_dir::{evidence_dir, files, step_ends};

async fn serve(scenario: &str) -> MockServer {
    let sc = mock::load(scenario, None).expect("scenario");
    let state = Venue::new(&Kucoin, sc, MockOptions::default()).expect("fits the kucoin mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Kucoin), state)
        .await
        .expect("bind the mock")
}

/// The revoke steps' `mode`, as journaled.
fn revoke_modes(dir: &Path) -> Vec<(String, String)> {
    step_ends(dir)
        .iter()
        .filter(|d| d["uses"] == "exchange.revoke_key")
        .map(|d| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (s(&d["step"]), s(&d["outputs"]["mode"]))
        })
        .collect()
}

/// Whether a run under `out` has journaled the end of a revoke step (the manual step shown)
/// and of its cancels: a user takes a while to reach the web console.
fn manual_step_shown(out: &Path) -> bool {
    let Ok(dirs) = std::fs::read_dir(out) else {
        return false;
    };
    dirs.filter_map(|d| d.ok())
        .filter_map(|d| std::fs::read_to_string(d.path().join("journal.jsonl")).ok())
        .any(|j| {
            let ended = |uses: &str| {
                j.lines()
                    .any(|l| l.contains("\"step_end\"") && l.contains(uses))
            };
            ended("exchange.revoke_key") && ended("exchange.cancel_open_orders")
        })
}

fn env_of(prefix: &str, k: &KeyInfo) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}_ACCESS_KEY"), k.access_key.clone()),
        (format!("{prefix}_SECRET_KEY"), k.secret_key.clone()),
        (
            format!("{prefix}_PASSPHRASE"),
            k.passphrase.clone().expect("a KuCoin key has a passphrase"),
        ),
    ]
}

/// No file of the bundle and no line of output holds a secret or a passphrase.
fn no_secret_anywhere(dir: &Path, output: &str, keys: &[&KeyInfo]) {
    for k in keys {
        let pass = k.passphrase.clone().unwrap();
        for s in [k.secret_key.as_str(), pass.as_str()] {
            assert!(!output.contains(s), "a secret in the output");
            for f in files(dir) {
                let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
                assert!(!text.contains(s), "a secret in {}", f.display());
            }
        }
    }
}

/// The account's own key: the run cancels both order families and the stop orders, exports,
/// shows KuCoin's manual steps, verifies the deletion once the user made it, and seals a
/// bundle that verifies and rebuilds offline; the bot log's `BTC-USDT` symbols are read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kucoin_leak_is_contained_with_the_manual_revocation_verified() {
    let server = serve("pump-and-dump").await;
    let state = server.state.clone();
    let tmp = tempfile::tempdir().unwrap();
    let bot_log = tmp.path().join("bot.csv");
    std::fs::write(&bot_log, state.bot_log_csv()).unwrap();
    assert!(state.bot_log_csv().contains("-USDT"));
    let bot = state.key("bot").unwrap().clone();
    let ro = state.key("readonly").unwrap().clone();
    let key = bot.access_key.clone();
    let out_dir = tmp.path().join("evidence");
    let user = {
        let (url, key, out_dir) = (server.url.clone(), key.clone(), out_dir.clone());
        tokio::spawn(async move {
            for _ in 0..3000 {
                if manual_step_shown(&out_dir) {
                    crate::support::mock::revoke(&url, &key).await;
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        })
    };
    let mut env = env_of("KUCOIN", &bot);
    env.extend(env_of("KUCOIN_READONLY", &ro));
    let cmd = Respond::new()
        .args([
            "leak",
            "--exchange",
            "kucoin",
            "--api-url",
            &server.url,
            "--bot-log",
            bot_log.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--yes",
            "--input",
            "revoke_interval=200ms",
            "--input",
            "revoke_timeout=30s",
        ])
        .envs(env);
    let out = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    assert!(user.await.unwrap(), "the simulated user deleted the key");
    let all = out.all();
    assert_eq!(out.code, Some(0), "leak:\n{all}");
    let log = state.requests();
    assert!(!calls(&log, &key, "/api/v1/hf/orders/cancelAll").is_empty());
    assert!(!calls(&log, &key, "/api/v1/stop-order/cancel").is_empty());
    assert!(calls(&log, &key, "/api/v1/sub/api-key").is_empty());
    // Refused with 400003 after the user's deletion, and the run saw it.
    assert!(
        log.iter()
            .any(|r| r.access_key.as_deref() == Some(key.as_str())
                && r.error.as_deref().is_some_and(|e| e.contains("400003"))),
        "the old key refused after its deletion"
    );
    assert!(state
        .world()
        .orders
        .iter()
        .all(|o| o.account != bot.account
            || o.state != respond::mock::venue::state::OrderState::Open));
    let dir = evidence_dir(&out.stdout, &all);
    assert!(
        revoke_modes(&dir).iter().any(|(_, m)| m == "manual"),
        "{:?}",
        revoke_modes(&dir)
    );
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("- [x] The old key is deleted:"),
        "{checklist}"
    );
    assert!(
        checklist.contains("trading password") && checklist.contains("IP Restriction"),
        "{checklist}"
    );
    let ticket = std::fs::read_to_string(dir.join("support_ticket.md")).unwrap();
    assert!(ticket.contains("GET /api/v1/user/api-key"), "{ticket}");
    verify(&dir).success();
    let again = Respond::new()
        .args(["analyze", dir.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("analyzed"))
        .run();
    assert_eq!(again.code, Some(0), "analyze:\n{}", again.all());
    no_secret_anywhere(&dir, &all, &[&bot, &ro]);
    server.shutdown().await.unwrap();
}

/// The leaked key belongs to a sub-account and the master account's key is given: `respond`
/// deletes the sub-account's key itself (`DELETE /api/v1/sub/api-key`, signed by the master
/// key, naming the key, its passphrase and the sub-account), sees it refused, and seals a
/// bundle that verifies with no passphrase in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_deletes_the_leaked_sub_account_key() {
    let blank = mock::scenario::BUILTINS
        .iter()
        .find(|(n, _)| *n == "blank")
        .map(|(_, t)| t.to_string())
        .unwrap();
    let sc = blank
        .replace(
            "  - name: victim\n",
            "  - name: parent\n    balances: { KRW: \"1000\" }\n  - name: victim\n    master: parent\n",
        )
        .replace(
            "  - { account: victim, label: readonly, permissions: [read] }\n",
            "  - { account: victim, label: readonly, permissions: [read] }\n  - { account: parent, label: master, permissions: [read] }\n",
        );
    assert!(sc.contains("master: parent") && sc.contains("label: master"));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sub.yaml");
    std::fs::write(&file, sc).unwrap();
    let server = serve(file.to_str().unwrap()).await;
    let state = server.state.clone();
    let bot = state.key("bot").unwrap().clone();
    let master = state.key("master").unwrap().clone();
    let ro = state.key("readonly").unwrap().clone();
    let out_dir = tmp.path().join("evidence");
    // The key is deleted first: the read-only key contains and exports after it.
    let mut env = env_of("KUCOIN", &bot);
    env.extend(env_of("KUCOIN_READONLY", &ro));
    env.extend(env_of("KUCOIN_MASTER", &master));
    env.push(("KUCOIN_SUB_ACCOUNT".into(), "victim".into()));
    let cmd = Respond::new()
        .args([
            "leak",
            "--exchange",
            "kucoin",
            "--api-url",
            &server.url,
            "--out",
            out_dir.to_str().unwrap(),
            "--yes",
            "--input",
            "revoke_interval=200ms",
            "--input",
            "revoke_timeout=30s",
        ])
        .envs(env);
    let out = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    let all = out.all();
    assert_eq!(out.code, Some(0), "leak:\n{all}");
    let log = state.requests();
    let deletes = calls(&log, &master.access_key, "/api/v1/sub/api-key");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].status, 200);
    assert!(state.ground_truth().revoked_at.is_some());
    let dir = evidence_dir(&out.stdout, &all);
    assert!(
        revoke_modes(&dir).iter().any(|(_, m)| m == "api"),
        "{:?}",
        revoke_modes(&dir)
    );
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("respond deleted it")
            && checklist.contains("DELETE /api/v1/sub/api-key"),
        "{checklist}"
    );
    verify(&dir).success();
    no_secret_anywhere(&dir, &all, &[&bot, &ro, &master]);
    server.shutdown().await.unwrap();
}

/// The built-in scenarios' KuCoin drills pass at precision and recall ≥ 0.95 (six by
/// default, every one with `RESPOND_ALL_SCENARIOS=1` as in CI), each bundle verifying; the
/// user deletes the key (KuCoin has no API for an account's own key).
#[test]
fn every_built_in_scenario_passes_its_kucoin_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let names = crate::support::drill::scenarios("kucoin");
    let list: Vec<Drill> = names
        .iter()
        .map(|s| {
            Drill::new(s, &tmp.path().join(s))
                .exchange("kucoin")
                .reaction(2.0)
                .min(0.95)
        })
        .collect();
    for (r, d) in run_all(&list).into_iter().zip(&list) {
        let name = &d.options().scenario;
        let out = r.unwrap_or_else(|e| panic!("kucoin drill {name} failed to run: {e:?}"));
        let c = &out.scorecard;
        println!(
            "=== kucoin drill {name} ===\n{}",
            respond::drill::scorecard_table(c)
        );
        assert!(respond::report::verify(&out.dir).unwrap().ok, "{name}");
        assert_eq!(c.revoked_by, "the user", "{name}");
        assert!(c.passed, "{name}: {:?}", c.failures);
        assert!(
            c.detection.precision >= 0.95 && c.detection.recall >= 0.95,
            "{name}: precision {} recall {}",
            c.detection.precision,
            c.detection.recall
        );
    }
}
