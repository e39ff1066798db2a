//! Coinbase end to end (issue 14): `respond leak --exchange coinbase` against the Coinbase mock
//! over real loopback HTTP, and `respond drill --exchange coinbase` on the built-in scenarios.
//!
//! The leak runs the built binary with the CDP key name and its PEM private key in the
//! environment, as a user would, against the mock served in-process. Coinbase has no API to
//! delete a key: the run shows the guided manual step, contains with the old key (open orders
//! listed and cancelled by `batch_cancel` in calls of at most 100 ids until none is left), and
//! a simulated user deletes the key through the drill API once the cancels are done; the run
//! then verifies the deletion by polling and seals a bundle that verifies. The drills run as
//! `drill_e2e`'s do: the library's drill on paused tokio clocks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use respond::mock::coinbase::Coinbase;
use respond::mock::{self, MockOptions, MockServer, Venue};

use crate::support::drill::{run_all, Drill};
use crate::support::mock::calls;
use crate::support::respond::{verify, Respond};
use crate::support::run_dir::{evidence_dir, files, step_ends};

const BATCH_CANCEL: &str = "/api/v3/brokerage/orders/batch_cancel";

async fn serve(scenario: &str) -> MockServer {
    let sc = mock::load(scenario, None).expect("scenario");
    let state = Venue::new(&Coinbase, sc, MockOptions::default()).expect("fits the coinbase mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Coinbase), state)
        .await
        .expect("bind the mock")
}

/// Whether a run under `out` has journaled the end of step `step`.
fn step_ended(out: &Path, step: &str) -> bool {
    let Ok(dirs) = std::fs::read_dir(out) else {
        return false;
    };
    let needle = format!("\"{step}\"");
    dirs.filter_map(|d| d.ok())
        .filter_map(|d| std::fs::read_to_string(d.path().join("journal.jsonl")).ok())
        .any(|j| {
            j.lines()
                .any(|l| l.contains("\"step_end\"") && l.contains(&needle))
        })
}

/// `contra` with a bot that left 150 orders open: more than one `batch_cancel` call's worth.
fn many_open_orders(dir: &Path) -> PathBuf {
    let text = mock::scenario::BUILTINS
        .iter()
        .find(|(n, _)| *n == "contra")
        .map(|(_, t)| t.to_string())
        .expect("built-in");
    let changed = text.replace("open_orders: 2", "open_orders: 150");
    assert_ne!(changed, text);
    let p = dir.join("contra-150-open.yaml");
    std::fs::write(&p, changed).unwrap();
    p
}

/// A leaked CDP key with 150 open orders: `respond` shows the manual deletion steps, cancels
/// every open order with `batch_cancel` calls of at most 100 ids until the listing is empty,
/// exports, and once the user deleted the key in the developer platform verifies it refused
/// (401) and seals a bundle that verifies; `analyze` rebuilds it offline; no secret (the PEM or
/// any line of it) is anywhere in the bundle or the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coinbase_leak_is_contained_in_batches_and_the_manual_deletion_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = many_open_orders(tmp.path());
    let server = serve(scenario.to_str().unwrap()).await;
    let state = server.state.clone();
    let bot = state.key("bot").unwrap().clone();
    let ro = state.key("readonly").unwrap().clone();
    assert!(
        bot.access_key.starts_with("organizations/"),
        "{}",
        bot.access_key
    );
    assert!(bot.secret_key.contains("-----BEGIN"), "a PEM secret");
    let open_before = state
        .world()
        .orders
        .iter()
        .filter(|o| {
            o.account == bot.account && o.state == respond::mock::venue::state::OrderState::Open
        })
        .count();
    assert!(open_before > 100, "{open_before} open orders");
    let bot_log = tmp.path().join("bot.csv");
    std::fs::write(&bot_log, state.bot_log_csv()).unwrap();
    let key = bot.access_key.clone();
    let out_dir = tmp.path().join("evidence");
    // The user deletes the key in the developer platform once the cancels are done.
    let user = {
        let (url, key, out_dir) = (server.url.clone(), key.clone(), out_dir.clone());
        tokio::spawn(async move {
            for _ in 0..3000 {
                if step_ended(&out_dir, "cancel_orders") {
                    crate::support::mock::revoke(&url, &key).await;
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        })
    };
    let cmd = Respond::new()
        .args([
            "leak",
            "--exchange",
            "coinbase",
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
            ("COINBASE_ACCESS_KEY", bot.access_key.as_str()),
            ("COINBASE_SECRET_KEY", bot.secret_key.as_str()),
            ("COINBASE_READONLY_ACCESS_KEY", ro.access_key.as_str()),
            ("COINBASE_READONLY_SECRET_KEY", ro.secret_key.as_str()),
        ]);
    let out = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    let all = out.all();
    assert!(
        user.await.unwrap(),
        "the simulated user deleted the key:\n{all}"
    );
    assert_eq!(out.code, Some(0), "leak:\n{all}");
    let log = state.requests();
    // Every open order cancelled, in calls of at most 100, by the old key before its deletion.
    let cancels = calls(&log, &key, BATCH_CANCEL);
    assert!(cancels.len() >= 2, "{} batch_cancel calls", cancels.len());
    assert!(
        cancels.iter().all(|r| r.orders_cancelled.len() <= 100),
        "{:?}",
        cancels
            .iter()
            .map(|r| r.orders_cancelled.len())
            .collect::<Vec<_>>()
    );
    let cancelled: usize = cancels.iter().map(|r| r.orders_cancelled.len()).sum();
    assert!(cancelled >= open_before, "{cancelled} of {open_before}");
    assert!(state
        .world()
        .orders
        .iter()
        .all(|o| o.account != bot.account
            || o.state != respond::mock::venue::state::OrderState::Open));
    // The deletion came from the user, and the run saw the old key refused after it.
    let revoked_at = state.ground_truth().revoked_at.expect("revoked");
    assert!(
        log.iter()
            .any(|r| r.access_key.as_deref() == Some(key.as_str())
                && r.status == 401
                && r.at.as_str() >= revoked_at.as_str()),
        "the old key refused after its deletion"
    );
    let dir = evidence_dir(&out.stdout, &all);
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("- [x] The old key is deleted:"),
        "{checklist}"
    );
    assert!(checklist.contains("Transfer"), "{checklist}");
    assert!(!checklist.contains("respond deleted it"), "{checklist}");
    verify(&dir).success();
    let again = Respond::new()
        .args(["analyze", dir.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("analyzed"))
        .run();
    assert_eq!(again.code, Some(0), "analyze:\n{}", again.all());
    let pem_lines: Vec<&str> = bot
        .secret_key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 8)
        .collect();
    for f in files(&dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        for l in &pem_lines {
            assert!(!text.contains(l), "a line of the secret in {}", f.display());
        }
        assert!(!text.contains("eyJhbGci"), "a token in {}", f.display());
    }
    for l in &pem_lines {
        assert!(!all.contains(l), "a line of the secret in the output");
    }
    server.shutdown().await.unwrap();
}

/// The built-in scenarios' Coinbase drills pass at precision and recall ≥ 0.95 (six by
/// default, every one with `RESPOND_ALL_SCENARIOS=1` as in CI), the manual deletion verified
/// and the bundle verifying.
#[test]
fn every_built_in_scenario_passes_its_coinbase_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let names = crate::support::drill::scenarios("coinbase");
    let list: Vec<Drill> = names
        .iter()
        .map(|s| {
            Drill::new(s, &tmp.path().join(s))
                .exchange("coinbase")
                .min(0.95)
        })
        .collect();
    for (r, d) in run_all(&list).into_iter().zip(&list) {
        let name = &d.options().scenario;
        let out = r.unwrap_or_else(|e| panic!("coinbase drill {name} failed to run: {e:?}"));
        let c = &out.scorecard;
        println!(
            "=== coinbase drill {name} ===\n{}",
            respond::drill::scorecard_table(c)
        );
        assert!(c.passed, "{name}: {:?}", c.failures);
        assert!(
            c.detection.precision >= 0.95 && c.detection.recall >= 0.95,
            "{name}: precision {} recall {}",
            c.detection.precision,
            c.detection.recall
        );
        assert_eq!(c.revoked_by, "the user", "{name}");
        assert!(respond::report::verify(&out.dir).unwrap().ok, "{name}");
    }
}

/// Whether the journal claims the key deleted: a `exchange.verify_key_revoked` step that ended
/// ok with `revoked` true, or a `exchange.revoke_key` step that saw the key refused
/// (`confirmed_by` `observed`).
fn claims_deleted(dir: &Path) -> bool {
    step_ends(dir)
        .iter()
        .filter(|d| d["status"] == "ok")
        .any(|d| {
            let (uses, out) = (&d["uses"], &d["outputs"]);
            (uses == "exchange.verify_key_revoked" && out["revoked"] == true)
                || (uses == "exchange.revoke_key"
                    && out["confirmed"] == true
                    && out["confirmed_by"] == "observed")
        })
}

/// No false revocation from a wrong private key (integrity review): Coinbase answers the same
/// bare 401 to a deleted key and to a token signed with a private key that is not the key
/// name's. A run saw the key work and stopped before the key was deleted; a resume given the
/// same key name with another EC private key is refused with 401, and must not read that as
/// the key deleted: it stops as a key never accepted with these credentials. A later resume
/// without the old key's credentials must not read the run's saved answers (accepted with the
/// right private key, refused with the wrong one) as a deletion either. The key was never
/// deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_private_key_on_resume_is_no_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve("contra").await;
    let state = server.state.clone();
    let bot = state.key("bot").unwrap().clone();
    let ro = state.key("readonly").unwrap().clone();
    assert_ne!(bot.secret_key, ro.secret_key);
    assert!(ro.secret_key.contains("-----BEGIN"), "another EC key");
    let out_dir = tmp.path().join("evidence");
    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let cmd = Respond::new().args(args).envs(env);
        tokio::task::spawn_blocking(move || cmd.run())
    };
    let ro_env = || {
        vec![
            ("COINBASE_READONLY_ACCESS_KEY", ro.access_key.clone()),
            ("COINBASE_READONLY_SECRET_KEY", ro.secret_key.clone()),
        ]
    };
    // The key works throughout the first run; nobody deletes it, so the verification gives up.
    let mut env = vec![
        ("COINBASE_ACCESS_KEY", bot.access_key.clone()),
        ("COINBASE_SECRET_KEY", bot.secret_key.clone()),
    ];
    env.extend(ro_env());
    let first = run(
        [
            "leak",
            "--exchange",
            "coinbase",
            "--api-url",
            &server.url,
            "--out",
            out_dir.to_str().unwrap(),
            "--yes",
            "--input",
            "revoke_interval=100ms",
            "--input",
            "revoke_timeout=1s",
        ]
        .map(String::from)
        .to_vec(),
        env,
    )
    .await
    .unwrap();
    let all = first.all();
    assert_ne!(first.code, Some(0), "the key was never deleted:\n{all}");
    let dir = evidence_dir(&first.stdout, &all);
    assert!(!claims_deleted(&dir), "{all}");
    // The resume: the same key name, the read-only key's private key.
    let resume = || {
        [
            "resume",
            dir.to_str().unwrap(),
            "--api-url",
            &server.url,
            "--yes",
        ]
        .map(String::from)
        .to_vec()
    };
    let mut env = vec![
        ("COINBASE_ACCESS_KEY", bot.access_key.clone()),
        ("COINBASE_SECRET_KEY", ro.secret_key.clone()),
    ];
    env.extend(ro_env());
    let wrong = run(resume(), env).await.unwrap();
    let all = wrong.all();
    // A key never accepted with these credentials: the run stops at once (exit 2).
    assert_eq!(wrong.code, Some(2), "{all}");
    assert!(all.contains("never accepted"), "{all}");
    let log = state.requests();
    assert!(
        log.iter()
            .any(|r| r.access_key.as_deref() == Some(bot.access_key.as_str()) && r.status == 401),
        "the wrong private key was refused"
    );
    assert!(
        !claims_deleted(&dir),
        "a wrong private key read as the key deleted:\n{all}"
    );
    assert!(!all.contains("is revoked"), "{all}");
    // Without the old key's credentials the saved answers decide: still no deletion.
    let evidence_only = run(resume(), ro_env()).await.unwrap();
    let all = evidence_only.all();
    assert!(
        !claims_deleted(&dir),
        "the saved answers read as a deletion:\n{all}"
    );
    assert!(all.contains("proves no deletion"), "{all}");
    assert!(!all.contains("is revoked"), "{all}");
    assert!(!all.contains("no longer works"), "{all}");
    assert!(state.ground_truth().revoked_at.is_none());
    server.shutdown().await.unwrap();
}
