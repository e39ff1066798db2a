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
use crate::support::run_dir::files;

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

/// Every built-in scenario's Binance drill passes at precision and recall ≥ 0.95 and its
/// bundle verifies (six by default, every one with `RESPOND_ALL_SCENARIOS=1` as in CI).
#[test]
fn every_built_in_scenario_passes_its_binance_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let list: Vec<Drill> = crate::support::drill::scenarios("binance")
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
        binance_claim_holds(name, &out.dir, &ticket);
    }
}

/// What Binance's support desk and the user need on top of the generic claim: the ticket
/// names the symbols whose history was read (every market of an unauthorized order among
/// them) and the completeness statement; the checklist says Binance requires an IP
/// restriction before a key may withdraw, and that a pending withdrawal cannot be cancelled
/// by API.
fn binance_claim_holds(name: &str, dir: &Path, ticket: &str) {
    let line = |prefix: &str| {
        ticket
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{name}: no `{prefix}` in the ticket:\n{ticket}"))
            .to_string()
    };
    let read = line("- Markets whose orders and fills were read (");
    let (count, rest) = read.split_once("): ").unwrap();
    let listed: Vec<&str> = rest
        .split("; each with the reason")
        .next()
        .unwrap()
        .split(", ")
        .collect();
    assert_eq!(
        count.parse::<usize>().unwrap(),
        listed.len(),
        "{name}: {read}"
    );
    assert!(rest.contains("-symbols.json"), "{name}: {read}");
    let statement: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            files(dir)
                .into_iter()
                .find(|p| p.to_string_lossy().ends_with("-symbols.json"))
                .unwrap_or_else(|| panic!("{name}: the statement file is in the bundle")),
        )
        .unwrap(),
    )
    .unwrap();
    let in_file: Vec<&str> = statement["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed, in_file,
        "{name}: the ticket names the file's markets"
    );
    if let Some(m) = ticket
        .lines()
        .find_map(|l| l.strip_prefix("- Unauthorized orders: "))
        .and_then(|l| l.split("(markets: ").nth(1))
    {
        for market in m
            .trim_end_matches(')')
            .split(", ")
            .filter(|s| !s.is_empty())
        {
            assert!(
                listed.contains(&market),
                "{name}: {market} traded but not read"
            );
        }
    }
    let completeness = line("- Completeness of the history: ");
    assert!(
        completeness.starts_with(&format!(
            "Orders and fills were read for exactly the {} markets",
            listed.len()
        )),
        "{name}: {completeness}"
    );
    let checklist = std::fs::read_to_string(dir.join("checklist.md")).unwrap();
    assert!(
        checklist.contains("Binance requires it before Enable Withdrawals can be ticked"),
        "{name}: IP restriction for withdrawal keys:\n{checklist}"
    );
    assert!(
        checklist.contains("Binance cannot cancel a pending withdrawal by API"),
        "{name}: pending withdrawals:\n{checklist}"
    );
}

/// The raw answers recorded under `run/raw` for `method path` (path as the recorder slugs
/// it: `api_v3_openOrderList`), oldest first.
fn raw_answers(run: &Path, method: &str, slug: &str) -> Vec<String> {
    let mut names: Vec<PathBuf> = files(&run.join("raw"))
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(&format!("-{method}-{slug}.body"))
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A resting OCO (Binance's order list) in the leaked account: containment cancels both legs,
/// proves with `GET /api/v3/openOrderList` that no list is left, and keeps the cancel answer
/// naming the list in `raw/` as the evidence of what was open.
#[tokio::test]
async fn containment_cancels_an_oco_and_proves_no_order_list_is_left() {
    use crate::mock_binance::{leg_ids, place_oco, start, Answer, Api};
    use respond::exchange::binance::{BinanceClient, BinanceConfig};
    use respond::exchange::Exchange;

    let s = start("blank").await;
    let bot = Api::new(&s, "bot");
    let list = place_oco(&bot, &s, "0.001").await;
    let legs = leg_ids(&list);
    let tmp = tempfile::tempdir().unwrap();
    let run = respond::rundir::RunDir::create(&tmp.path().join("run")).unwrap();
    let k = s.state.key("bot").unwrap().clone();
    let mut cfg = BinanceConfig::new(k.access_key, respond::secret::Secret::new(k.secret_key));
    cfg.base_url = Some(s.url.clone());
    cfg.recorder = Some(run);
    let client = BinanceClient::new(cfg).unwrap();

    let report = client.cancel_all_open_orders().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut ids: Vec<String> = report.cancelled.iter().map(|o| o.id.clone()).collect();
    ids.sort();
    let mut want = legs.clone();
    want.sort();
    assert_eq!(ids, want, "both legs reported cancelled");

    // The venue: nothing open, no list executing.
    assert_eq!(
        bot.get("/api/v3/openOrders", &[]).await.ok(),
        serde_json::Value::Array(vec![])
    );
    assert_eq!(
        bot.get("/api/v3/openOrderList", &[]).await.ok(),
        serde_json::Value::Array(vec![])
    );
    // The evidence: the cancel answer naming the list and its legs, then the empty listing.
    let run_dir = tmp.path().join("run");
    let cancels = raw_answers(&run_dir, "DELETE", "api_v3_openOrders");
    assert_eq!(cancels.len(), 1, "one cancel-all for the one symbol");
    let answer: serde_json::Value = serde_json::from_str(&cancels[0]).unwrap();
    let l = &answer[0];
    assert_eq!(l["contingencyType"], "OCO");
    assert_eq!(l["orderListId"], list["orderListId"]);
    assert_eq!(l["orderReports"].as_array().unwrap().len(), 2);
    let proofs = raw_answers(&run_dir, "GET", "api_v3_openOrderList");
    assert_eq!(
        proofs,
        ["[]"],
        "the lists were listed once, and none was left"
    );
    s.shutdown().await.unwrap();
}

/// The Binance drill of a scenario whose attacker also leaves an OCO open (`idle-bids` with
/// `attack.open_oco: 1`): the run cancels the list with its legs, the cancel answer naming
/// the list and the empty order-list listing are in the bundle's `raw/`, and the drill still
/// passes.
#[test]
fn a_binance_drill_contains_an_attacker_oco() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/idle-bids.yaml"),
    )
    .unwrap()
    .replace("name: idle-bids", "name: idle-bids-oco")
    .replace("\nattack:\n", "\nattack:\n  open_oco: 1\n");
    assert!(text.contains("open_oco: 1"));
    let file = tmp.path().join("idle-bids-oco.yaml");
    std::fs::write(&file, text).unwrap();
    let list = vec![Drill::new(file.to_str().unwrap(), &tmp.path().join("out"))
        .exchange("binance")
        .reaction(2.0)
        .min(0.95)];
    let out = run_all(&list)
        .pop()
        .unwrap()
        .unwrap_or_else(|e| panic!("the drill ran: {e:?}"));
    assert!(out.scorecard.passed, "{:?}", out.scorecard.failures);
    let cancels = raw_answers(&out.dir, "DELETE", "api_v3_openOrders").join("\n");
    assert!(
        cancels.contains(r#""contingencyType":"OCO""#),
        "the cancel answers name the list:\n{cancels}"
    );
    let proofs = raw_answers(&out.dir, "GET", "api_v3_openOrderList");
    assert_eq!(proofs.last().map(String::as_str), Some("[]"), "{proofs:?}");
}
