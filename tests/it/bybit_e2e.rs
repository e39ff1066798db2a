//! Bybit end to end (issue 15): `respond leak --exchange bybit` against the Bybit mock over real
//! loopback HTTP, and `respond drill --exchange bybit` on every built-in scenario.
//!
//! The leaks run the built binary with the credentials in the environment, as a user would,
//! against the mock served in-process. A key that may delete itself is deleted by `respond`
//! (`POST /v5/user/delete-api`) with no user action at all; a key that may not falls back to the
//! guided manual step, and a simulated user deletes it through the drill API once the export
//! has started. The drills run as `drill_e2e`'s do: the library's drill on paused tokio clocks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use respond::mock::bybit::Bybit;
use respond::mock::{self, MockOptions, MockServer, Venue};

use crate::support::drill::{run_all, Drill};
use crate::support::mock::calls;
use crate::support::respond::{verify, Respond};
use crate::support::run_dir::{evidence_dir, files, step_ends};

/// Bybit's permissions that let a key delete itself.
const SELF_DELETE: &[&str] = &["AccountTransfer", "SubMemberTransfer", "Withdraw"];

async fn serve(scenario: &str) -> MockServer {
    let sc = mock::load(scenario, None).expect("built-in scenario");
    let state = Venue::new(&Bybit, sc, MockOptions::default()).expect("fits the bybit mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Bybit), state)
        .await
        .expect("bind the mock")
}

/// Whether the scenario's leaked bot key may delete itself on Bybit.
fn self_deletable(scenario: &str) -> bool {
    let sc = mock::load(scenario, None).unwrap();
    let v = Venue::new(&Bybit, sc, MockOptions::default()).unwrap();
    let bot = v.key("bot").unwrap();
    bot.scopes.iter().any(|s| SELF_DELETE.contains(&s.as_str()))
}

/// The revoke steps' `mode` and `confirmed_by`, as journaled.
fn revoke_paths(dir: &Path) -> Vec<(String, String, String)> {
    step_ends(dir)
        .iter()
        .filter(|d| d["uses"] == "exchange.revoke_key")
        .map(|d| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&d["step"]),
                s(&d["outputs"]["mode"]),
                s(&d["outputs"]["confirmed_by"]),
            )
        })
        .collect()
}

/// Whether a run under `out` has journaled the end of its `revoke_key_by_api` step.
fn manual_step_shown(out: &Path) -> bool {
    let Ok(dirs) = std::fs::read_dir(out) else {
        return false;
    };
    dirs.filter_map(|d| d.ok())
        .filter_map(|d| std::fs::read_to_string(d.path().join("journal.jsonl")).ok())
        .any(|j| {
            j.lines()
                .any(|l| l.contains("\"step_end\"") && l.contains("\"revoke_key_by_api\""))
        })
}

/// A key that may delete itself, no read-only key, nobody at the web console: `respond`
/// cancels, exports with the old key, deletes it by API, sees it refused, and seals a bundle
/// that verifies; the checklist says who deleted it, when and with which call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bybit_key_that_may_delete_itself_is_deleted_by_respond() {
    assert!(self_deletable("blank"));
    let server = serve("blank").await;
    let state = server.state.clone();
    let tmp = tempfile::tempdir().unwrap();
    let bot_log = tmp.path().join("bot.csv");
    std::fs::write(&bot_log, state.bot_log_csv()).unwrap();
    let bot = state.key("bot").unwrap().clone();
    let out_dir = tmp.path().join("evidence");
    let cmd = Respond::new()
        .args([
            "leak",
            "--exchange",
            "bybit",
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
        .envs([
            ("BYBIT_ACCESS_KEY", bot.access_key.as_str()),
            ("BYBIT_SECRET_KEY", bot.secret_key.as_str()),
        ]);
    let out = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    let all = out.all();
    assert_eq!(out.code, Some(0), "leak:\n{all}");
    let log = state.requests();
    let key = bot.access_key.as_str();
    // Deleted by the key itself, once, after its cancels and its export.
    let deletes = calls(&log, key, "/v5/user/delete-api");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].status, 200);
    let deleted_at = deletes[0].at.clone();
    assert!(calls(&log, key, "/v5/order/cancel-all")
        .iter()
        .all(|r| r.at <= deleted_at));
    assert!(calls(&log, key, "/v5/order/history")
        .iter()
        .any(|r| r.at <= deleted_at));
    // Then refused (10003 in a 200), and the run saw it.
    assert!(
        log.iter().any(|r| r.access_key.as_deref() == Some(key)
            && r.at > deleted_at
            && r.error.as_deref().is_some_and(|e| e.contains("10003"))),
        "the old key refused after its deletion"
    );
    // No user in this test: the venue's record of the deletion is the run's own call.
    assert!(state.ground_truth().revoked_at.is_some());
    // The wait for the refusal says the key was deleted by API, never to go to the console.
    assert!(
        all.contains("as deleted (deleted by API; waiting until the deletion takes effect)")
            && !all.contains("delete it in the web console"),
        "{all}"
    );
    let dir = evidence_dir(&out.stdout, &all);
    // The figure the README quotes: wall-clock time from the run's start to the deletion.
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    let ts = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let took = ts(&deleted_at) - ts(first["ts"].as_str().unwrap());
    println!(
        "bybit leak, no read-only key: deleted by respond {} ms after the run started",
        took.num_milliseconds()
    );
    let paths = revoke_paths(&dir);
    assert!(
        paths
            .iter()
            .any(|(s, m, c)| s == "revoke_key_by_api" && m == "api" && c == "api"),
        "{paths:?}"
    );
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("- [x] The old key is deleted: respond deleted it at ")
            && checklist.contains("by POST /v5/user/delete-api"),
        "{checklist}"
    );
    assert!(checklist.contains("2FA"), "{checklist}");
    let ticket = std::fs::read_to_string(dir.join("support_ticket.md")).unwrap();
    assert!(
        ticket.contains("deleted by respond at ")
            && ticket.contains("with POST /v5/user/delete-api"),
        "{ticket}"
    );
    // Nothing of the bot's account is left open.
    assert!(state
        .world()
        .orders
        .iter()
        .all(|o| o.account != bot.account
            || o.state != respond::mock::venue::state::OrderState::Open));
    verify(&dir).success();
    // `respond analyze` rebuilds the same history from raw/.
    let again = Respond::new()
        .args(["analyze", dir.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("analyzed"))
        .run();
    assert_eq!(again.code, Some(0), "analyze:\n{}", again.all());
    for f in files(&dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(
            !text.contains(bot.secret_key.as_str()),
            "a secret in {}",
            f.display()
        );
    }
    assert!(!all.contains(bot.secret_key.as_str()));
    server.shutdown().await.unwrap();
}

/// A key without a transfer or withdrawal permission is never sent to `delete-api`: the run
/// shows the manual step, keeps containing, and verifies once the user deleted the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bybit_key_that_may_not_delete_itself_falls_back_to_the_manual_step() {
    let scenario = mock::scenario::builtin_names()
        .into_iter()
        .find(|s| !self_deletable(s))
        .expect("a scenario whose bot key cannot delete itself");
    let server = serve(scenario).await;
    let state = server.state.clone();
    let tmp = tempfile::tempdir().unwrap();
    let bot = state.key("bot").unwrap().clone();
    let ro = state.key("readonly").cloned();
    let key = bot.access_key.clone();
    let out_dir = tmp.path().join("evidence");
    // The user deletes the key in the website once respond has shown the manual step.
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
    let mut cmd = Respond::new()
        .args([
            "leak",
            "--exchange",
            "bybit",
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
        .envs([
            ("BYBIT_ACCESS_KEY", bot.access_key.as_str()),
            ("BYBIT_SECRET_KEY", bot.secret_key.as_str()),
        ]);
    if let Some(ro) = &ro {
        cmd = cmd.envs([
            ("BYBIT_READONLY_ACCESS_KEY", ro.access_key.as_str()),
            ("BYBIT_READONLY_SECRET_KEY", ro.secret_key.as_str()),
        ]);
    }
    let out = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    assert!(user.await.unwrap(), "the simulated user deleted the key");
    let all = out.all();
    assert_eq!(out.code, Some(0), "leak:\n{all}");
    assert!(all.contains("falling back to the manual steps"), "{all}");
    let log = state.requests();
    assert!(calls(&log, &key, "/v5/user/delete-api").is_empty());
    assert!(calls(&log, &key, "/v5/user/update-api").is_empty());
    let dir = evidence_dir(&out.stdout, &all);
    let paths = revoke_paths(&dir);
    assert!(
        paths
            .iter()
            .any(|(s, m, _)| s == "revoke_key_by_api" && m == "manual"),
        "{paths:?}"
    );
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("- [x] The old key is deleted:"),
        "{checklist}"
    );
    assert!(!checklist.contains("respond deleted it"), "{checklist}");
    verify(&dir).success();
    server.shutdown().await.unwrap();
}

/// Every built-in scenario's Bybit drill passes at precision and recall ≥ 0.95 (six by
/// default, every one with `RESPOND_ALL_SCENARIOS=1` as in CI). A key that may
/// delete itself is deleted by `respond` within 3 s of the start with no user in reach (the
/// simulated user would act only after 10 s); the others are deleted by the user.
#[test]
fn every_built_in_scenario_passes_its_bybit_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let names = crate::support::drill::scenarios("bybit");
    let list: Vec<Drill> = names
        .iter()
        .map(|s| {
            Drill::new(s, &tmp.path().join(s))
                .exchange("bybit")
                .reaction(if self_deletable(s) { 10.0 } else { 2.0 })
                .min(0.95)
        })
        .collect();
    for (r, d) in run_all(&list).into_iter().zip(&list) {
        let name = &d.options().scenario;
        let out = r.unwrap_or_else(|e| panic!("bybit drill {name} failed to run: {e:?}"));
        let c = &out.scorecard;
        println!(
            "=== bybit drill {name} ===\n{}",
            respond::drill::scorecard_table(c)
        );
        assert!(c.passed, "{name}: {:?}", c.failures);
        assert!(
            c.detection.precision >= 0.95 && c.detection.recall >= 0.95,
            "{name}: precision {} recall {}",
            c.detection.precision,
            c.detection.recall
        );
        assert!(respond::report::verify(&out.dir).unwrap().ok, "{name}");
        if self_deletable(name) {
            assert_eq!(c.revoked_by, "respond (POST /v5/user/delete-api)", "{name}");
            let ms = c.time_to_revocation_observed_ms.expect("revoked");
            assert!(ms <= 3000, "{name}: revocation observed after {ms} ms");
        } else {
            assert_eq!(c.revoked_by, "the user", "{name}");
        }
    }
}

/// The order of actions, measured (README, Bybit): `pump-and-dump` (its attacker keeps trading
/// with the leaked key until it dies) with a bot key that may delete itself, with and without a
/// read-only key, under the default playbook (the old key cancels, then deletes itself) and
/// under a delete-first variant (the key gone at once; cancels are left to a read-only key,
/// which Bybit does not let cancel). Prints the four scorecards; the README's figures come from
/// this output. Every run must still revoke by API and seal a bundle that verifies.
#[test]
fn both_orders_of_actions_are_measured_in_drills() {
    let tmp = tempfile::tempdir().unwrap();
    let default =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/leak.yaml"))
            .unwrap();
    let first = default
        .replace(
            r#"if: "{{#unless exchange.revoke_after_containment}}yes{{/unless}}""#,
            r#"if: "yes""#,
        )
        .replace(
            r#"if: "{{exchange.revoke_after_containment}}""#,
            r#"if: "no""#,
        );
    assert_ne!(first, default);
    let first_path = tmp.path().join("delete-first.yaml");
    std::fs::write(&first_path, &first).unwrap();
    let sc = mock::scenario::BUILTINS
        .iter()
        .find(|(n, _)| *n == "pump-and-dump")
        .map(|(_, t)| t.to_string())
        .expect("built-in")
        .replace(
            "label: bot, permissions: [read, trade]",
            "label: bot, permissions: [read, trade, transfer]",
        );
    let with_ro = tmp.path().join("pump-transfer.yaml");
    std::fs::write(&with_ro, &sc).unwrap();
    let without_ro = tmp.path().join("pump-transfer-no-readonly.yaml");
    std::fs::write(
        &without_ro,
        sc.lines()
            .filter(|l| !l.contains("label: readonly"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let runs = [
        (
            "read-only key, cancel then delete (default)",
            &with_ro,
            false,
        ),
        ("read-only key, delete first", &with_ro, true),
        (
            "no read-only key, cancel, export, delete (default)",
            &without_ro,
            false,
        ),
        ("no read-only key, delete first", &without_ro, true),
    ];
    let list: Vec<Drill> = runs
        .iter()
        .enumerate()
        .map(|(i, (_, sc, first))| {
            let d = Drill::new(sc.to_str().unwrap(), &tmp.path().join(i.to_string()))
                .exchange("bybit")
                .reaction(600.0)
                .min(0.0);
            if *first {
                d.playbook(&first_path)
            } else {
                d
            }
        })
        .collect();
    for ((label, _, _), r) in runs.iter().zip(run_all(&list)) {
        let out = r.unwrap_or_else(|e| panic!("{label}: drill failed to run: {e:?}"));
        let c = &out.scorecard;
        println!(
            "=== bybit pump-and-dump (bot key may transfer), {label} ===\n{}",
            respond::drill::scorecard_table(c)
        );
        assert_eq!(
            c.revoked_by, "respond (POST /v5/user/delete-api)",
            "{label}"
        );
        assert!(respond::report::verify(&out.dir).unwrap().ok, "{label}");
    }
}
