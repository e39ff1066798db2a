//! Binance end to end (issue 13): `respond leak --exchange binance` against the Binance mock
//! over real loopback HTTP, and `respond drill --exchange binance` on every built-in scenario.
//!
//! The leak runs the built binary with the credentials in the environment, as a user would,
//! against the mock served in-process; a simulated user deletes the key through the drill API
//! (`POST /_mock/keys/{key}/revoke`) once the export has started. The drills run as
//! `drill_e2e`'s do: the library's drill on paused tokio clocks, one thread each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use respond::mock::binance::Binance;
use respond::mock::{self, MockOptions, MockServer, RequestRecord, Venue};

use crate::support::drill::{run_all, Drill};
use crate::support::respond::{verify, Respond};

/// The Binance mock of the built-in `scenario`, live attacker on, served on `127.0.0.1:0`.
async fn serve(scenario: &str) -> MockServer {
    let sc = mock::load(scenario, None).expect("built-in scenario");
    let state = Venue::new(&Binance, sc, MockOptions::default()).expect("fits the binance mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Binance), state)
        .await
        .expect("bind the mock")
}

/// The leaked key's export has started: it listed an order history (containment is over).
fn exporting(log: &[RequestRecord], key: &str) -> bool {
    log.iter().any(|r| {
        r.access_key.as_deref() == Some(key)
            && r.method == "GET"
            && r.path == "/api/v3/allOrders"
            && r.status == 200
    })
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binance_leak_is_contained_and_documented_with_the_binary() {
    let server = serve("pump-and-dump").await;
    let state = server.state.clone();
    let tmp = tempfile::tempdir().unwrap();
    let bot_log = tmp.path().join("bot.csv");
    std::fs::write(&bot_log, state.bot_log_csv()).unwrap();
    let bot = state.key("bot").unwrap().clone();
    let ro = state.key("readonly").unwrap().clone();
    assert!(!bot.secret_key.is_empty() && !ro.secret_key.is_empty());

    // The user deletes the key in the website once the export has begun.
    let user = {
        let (state, url, key) = (state.clone(), server.url.clone(), bot.access_key.clone());
        tokio::spawn(async move {
            for _ in 0..3000 {
                if exporting(&state.requests(), &key) {
                    crate::support::mock::revoke(&url, &key).await;
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        })
    };
    let out_dir = tmp.path().join("evidence");
    let cmd = Respond::new()
        .args([
            "leak",
            "--exchange",
            "binance",
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
            ("BINANCE_ACCESS_KEY", bot.access_key.as_str()),
            ("BINANCE_SECRET_KEY", bot.secret_key.as_str()),
            ("BINANCE_READONLY_ACCESS_KEY", ro.access_key.as_str()),
            ("BINANCE_READONLY_SECRET_KEY", ro.secret_key.as_str()),
        ]);
    let out = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    assert!(user.await.unwrap(), "the simulated user deleted the key");
    let all = out.all();
    assert_eq!(out.code, Some(0), "leak:\n{all}");

    // The key is refused after the deletion, and the run saw it.
    let gt = state.ground_truth();
    let revoked_at = gt.revoked_at.clone().expect("revoked through /_mock/");
    let refused_after = state.requests().iter().any(|r| {
        r.access_key.as_deref() == Some(bot.access_key.as_str())
            && r.at >= revoked_at
            && r.status == 401
    });
    assert!(refused_after, "the old key was refused after its deletion");
    let dir = PathBuf::from(
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("evidence:").map(|s| s.trim().to_string()))
            .unwrap_or_else(|| panic!("an evidence line in:\n{all}")),
    );
    assert!(dir.starts_with(&out_dir));
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("- [x] The old key is deleted"),
        "{checklist}"
    );
    // Nothing is left open, and what the attacker placed is in the export under Binance ids.
    assert!(state
        .world()
        .orders
        .iter()
        .all(|o| o.account != bot.account
            || o.state != respond::mock::venue::state::OrderState::Open));
    let orders = std::fs::read_to_string(dir.join("orders.csv")).unwrap();
    let attacker = &gt.attacker_order_uuids;
    assert!(!attacker.is_empty());
    for u in attacker {
        let id =
            state.world().position(u).unwrap() as u64 + respond::mock::binance::wire::ORDER_ID_BASE;
        assert!(
            orders.contains(&format!("{id}")),
            "attacker order {id} exported"
        );
    }
    verify(&dir).success();

    // No secret anywhere: output, or any file of the bundle.
    for secret in [&bot.secret_key, &ro.secret_key] {
        assert!(!all.contains(secret.as_str()), "a secret in the output");
        for f in files(&dir) {
            let bytes = std::fs::read(&f).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(secret.as_str()),
                "a secret in {}",
                f.display()
            );
        }
    }
    server.shutdown().await.unwrap();
}

#[test]
fn every_built_in_scenario_passes_its_binance_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let list: Vec<Drill> = respond::mock::scenario::builtin_names()
        .into_iter()
        .map(|s| {
            Drill::new(s, &tmp.path().join(s))
                .exchange("binance")
                .reaction(2.0)
                .min(0.95)
        })
        .collect();
    for (r, d) in run_all(&list).into_iter().zip(&list) {
        let name = &d.options().scenario;
        let out = r.unwrap_or_else(|e| panic!("binance drill {name} failed to run: {e:?}"));
        let c = &out.scorecard;
        println!(
            "=== binance drill {name} ===\n{}",
            respond::drill::scorecard_table(c)
        );
        assert!(c.passed, "{name}: {:?}", c.failures);
        assert!(
            c.detection.precision >= 0.95 && c.detection.recall >= 0.95,
            "{name}: precision {} recall {}",
            c.detection.precision,
            c.detection.recall
        );
        assert!(
            respond::report::verify(&out.dir).unwrap().ok,
            "{name}: the bundle verifies"
        );
        // Binance's support desk reads English: the ticket has no Korean, not even in its
        // table headers.
        let ticket = std::fs::read_to_string(out.dir.join("support_ticket.md")).unwrap();
        assert!(
            !ticket
                .chars()
                .any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
            "{name}: Korean in the Binance ticket:\n{ticket}"
        );
        assert!(ticket.contains("Requests:"), "{name}");
        // Binance calls it an API key (Open API is Upbit's name).
        assert!(!ticket.contains("Open API"), "{name}");
        // Binance keeps UTC: one time column, one investigation window, times not repeated.
        for f in ["support_ticket.md", "report.md", "checklist.md"] {
            let text = std::fs::read_to_string(out.dir.join(f)).unwrap();
            assert!(!text.contains(" UTC (20"), "{name}: {f}:\n{text}");
        }
        assert!(!ticket.contains("| UTC | UTC |"), "{name}:\n{ticket}");
        assert_eq!(
            ticket.matches("Investigation window").count(),
            1,
            "{name}:\n{ticket}"
        );
    }
}
