//! `respond drill` end to end: every built-in scenario passes its drill at the issue-5
//! accuracy thresholds (with the bot log: precision and recall ≥ 0.95; without it on
//! `pump-and-dump`: recall ≥ 0.8), a slower user lets more attacker orders through, and the
//! CLI prints one JSON scorecard, leaves a bundle `respond evidence verify` accepts, and exits
//! 4 when the detection cannot meet the thresholds.
//!
//! Each drill runs the mock in-process on its own paused tokio runtime (the reaction, the live
//! attacker's pauses and the deletion polls take no real time; only the CPU work does), and the
//! drills of one test run at once on their own threads. The CLI test runs the binary on real
//! time.

use std::path::Path;

use respond::drill::score::Scorecard;
use respond::drill::scorecard_table;

use crate::support::drill::{run_all, Drill};
use crate::support::respond::{verify, Respond};

/// What a support desk receives holds on a drill's bundle (issue 16): one estimated loss,
/// stated first; the ticket's local block free of English escapes, asking for compensation
/// only when something was found; the CSVs for Korean Excel; the same counts everywhere; the
/// old key shown deleted; stolen withdrawals traced and marked.
fn claim_holds(dir: &Path, card: &Scorecard) {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.is_ascii(), "bundle folder name {name:?} is ASCII");
    let analysis: serde_json::Value = serde_json::from_str(&read("analysis.json")).unwrap();
    let loss = &analysis["loss"];
    let keys: Vec<&str> = loss
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(&keys[..2], ["quote_currency", "total"], "{name}");
    let dec = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    assert_eq!(
        dec(&loss["total"]),
        dec(&loss["overpayment"]) + dec(&loss["withdrawn_value"]) + dec(&loss["fees"]),
        "{name}"
    );
    assert_eq!(
        card.estimated_loss,
        loss["total"].as_str().unwrap(),
        "{name}"
    );
    // The total as the reports write it (`15,443,567 KRW`) leads the first screen, the
    // scorecard and the ticket.
    let total = card
        .loss_text
        .strip_prefix("estimated loss ")
        .and_then(|t| t.split(" = ").next())
        .unwrap_or_else(|| panic!("{name}: {}", card.loss_text))
        .to_string();
    assert!(!total.contains('.'), "{name}: whole won: {total}");
    let html = read("report.html");
    let first = &html[..html.find(r#"<section id="timeline-picture">"#).unwrap()];
    assert!(
        first.contains(&format!("<b>{total}</b>estimated loss")),
        "{name}: {total}"
    );
    let ticket = read("support_ticket.md");
    let ko = &ticket[..ticket.find("\n---\n").expect("a Korean block")];
    assert!(
        !ko.contains('\\'),
        "{name}: an escape in the Korean block:\n{ko}"
    );
    let found = analysis["counts"]["flagged"].as_u64().unwrap() > 0
        || card.withdrawals.true_positives + card.withdrawals.false_positives > 0;
    assert_eq!(
        ticket.contains(&format!("compensation of the estimated loss of {total}")),
        found,
        "{name}"
    );
    assert_eq!(
        ticket.contains("found no unauthorized order or withdrawal"),
        !found,
        "{name}"
    );
    // The CSV Korean Excel opens: a byte-order mark, time first, fees on fill rows, no -0.00.
    let csv = std::fs::read(dir.join("unauthorized_trades.csv")).unwrap();
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "{name}: BOM");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..2], ["created_at_local", "created_at_utc"]);
    let at = |c: &str| header.iter().position(|h| h == c).unwrap();
    for row in rd.records() {
        let row = row.unwrap();
        if &row[at("row_kind")] == "fill" {
            assert!(!row[at("fee")].is_empty(), "{name}: fee on a fill row");
        }
        assert_ne!(&row[at("score")], "-0.00");
        assert!(row[at("key_masked")].contains("..."), "{name}: ASCII mask");
    }
    // One count of review orders: the report's, and orders.csv's.
    let orders = read("orders.csv");
    let mut rd = csv::Reader::from_reader(orders.trim_start_matches('\u{feff}').as_bytes());
    let h: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let (conf, flagged) = (
        h.iter().position(|c| c == "confidence").unwrap(),
        h.iter().position(|c| c == "flagged").unwrap(),
    );
    let review = rd
        .records()
        .filter(|r| {
            let r = r.as_ref().unwrap();
            &r[conf] == "review" && &r[flagged] == "false"
        })
        .count();
    assert!(
        html.contains(&format!(
            r#"<h3 id="review">Orders for review ({review}): not in the claim"#
        )),
        "{name}: {review} review orders"
    );
    // The old key shows as deleted in the checklist, with the time the exchange refused it.
    let checklist = read("checklist.md");
    assert!(
        checklist.contains("- [x] The old key is deleted"),
        "{name}:\n{checklist}"
    );
    // A stolen withdrawal is traced and marked.
    if card.withdrawals.true_positives > 0 {
        let withdrawals = read("withdrawals.csv");
        let txid = withdrawals
            .lines()
            .find(|l| l.contains(",true,R13"))
            .and_then(|l| l.split(',').nth(9))
            .unwrap_or_else(|| panic!("{name}: a flagged withdrawal in withdrawals.csv"))
            .to_string();
        assert!(
            html.contains(&txid) && ticket.contains(&txid),
            "{name}: txid {txid}"
        );
        assert!(
            html.contains("unauthorized withdrawal "),
            "{name}: the timeline marks it"
        );
        assert!(ticket.contains("trace the withdrawal's transaction (txid)"));
    }
}

/// Runs the drills concurrently and returns their scorecards in input order, printing each.
/// The CLI test uses a longer reaction, so the key dies after the playbook's containment
/// steps even in a debug build under load and the exit code reflects only the score.
fn drills(list: Vec<Drill>) -> Vec<Scorecard> {
    run_all(&list)
        .into_iter()
        .zip(&list)
        .map(|(r, d)| {
            let o = d.options();
            let out = r.unwrap_or_else(|e| panic!("drill {} failed to run: {e}", o.scenario));
            println!(
                "=== drill {} ({}) ===\n{}",
                o.scenario,
                if o.with_bot_log {
                    "bot log"
                } else {
                    "no bot log"
                },
                scorecard_table(&out.scorecard)
            );
            // Under load (debug build, drills in parallel) the simulated user can delete
            // the key before the playbook's cancel step: that step then fails, as it
            // would for a real user who was faster than the tool. The score still holds.
            if !out.report.ok {
                println!(
                    "({}: some playbook steps failed after the key died)",
                    o.scenario
                );
            }
            assert!(
                respond::report::verify(&out.dir).unwrap().ok,
                "{}: bundle does not verify",
                o.scenario
            );
            claim_holds(&out.dir, &out.scorecard);
            out.scorecard
        })
        .collect()
}

#[test]
fn every_built_in_scenario_passes_its_drill() {
    let tmp = tempfile::tempdir().unwrap();
    let mut list: Vec<Drill> = respond::mock::scenario::builtin_names()
        .into_iter()
        .map(|s| Drill::new(s, &tmp.path().join(s)).reaction(2.0).min(0.95))
        .collect();
    list.push(
        Drill::new("pump-and-dump", &tmp.path().join("no-log"))
            .reaction(2.0)
            .without_bot_log()
            .min(0.8),
    );
    let cards = drills(list);
    for c in &cards {
        assert!(
            c.passed,
            "{} ({}): {:?}",
            c.scenario,
            if c.with_bot_log {
                "bot log"
            } else {
                "no bot log"
            },
            c.failures
        );
        assert!(c.evidence_verified);
        assert_eq!(c.user_manual_orders_flagged, 0, "{}", c.scenario);
        assert!(c.time_to_first_containment_ms.is_some(), "{}", c.scenario);
        assert!(c.time_to_revocation_observed_ms.is_some(), "{}", c.scenario);
        // Per-rule numbers are reported for every rule that fired.
        for (rule, d) in &c.per_rule {
            assert!((0.0..=1.0).contains(&d.precision), "{rule}");
        }
        if c.scenario != "blank" {
            // The thief traded, or withdrew (`withdraw-only` does nothing else).
            let stolen = c.withdrawals.true_positives + c.withdrawals.false_negatives;
            assert!(c.attacker_orders_total > 0 || stolen > 0, "{}", c.scenario);
            // The loss estimate is within 10% of the truth.
            let r = c.loss_ratio.expect("a true loss");
            assert!((0.9..=1.1).contains(&r), "{}: loss ratio {r}", c.scenario);
        } else {
            assert_eq!(c.attacker_orders_total, 0);
            assert_eq!(c.detection.false_positives, 0);
        }
    }
    let withdrawal = cards.iter().find(|c| c.scenario == "withdrawal").unwrap();
    assert_eq!(withdrawal.withdrawals.true_positives, 1);
    assert_eq!(withdrawal.withdrawals.false_positives, 0);
    let noisy = cards.iter().find(|c| c.scenario == "noisy").unwrap();
    assert!(noisy.per_rule.contains_key("R3"), "R3 still reported");
}

#[test]
fn a_slower_user_lets_more_attacker_orders_through() {
    let tmp = tempfile::tempdir().unwrap();
    let cards = drills(vec![
        Drill::new("pump-and-dump", &tmp.path().join("fast"))
            .reaction(1.0)
            .min(0.95),
        Drill::new("pump-and-dump", &tmp.path().join("slow"))
            .reaction(12.0)
            .min(0.95),
    ]);
    let (fast, slow) = (&cards[0], &cards[1]);
    // The live attacker trades every 0.5–2 s until the key dies: ~1 order in 1 s, ~6–24 in
    // 12 s (the reaction is measured from the drill's start; the run starts just before).
    assert!(
        slow.attacker_orders_after_start >= fast.attacker_orders_after_start + 4,
        "fast {} vs slow {}",
        fast.attacker_orders_after_start,
        slow.attacker_orders_after_start
    );
    assert!(
        slow.time_to_revocation_observed_ms.unwrap()
            > fast.time_to_revocation_observed_ms.unwrap() + 5_000
    );
    // The orders that got through are still found.
    assert!(slow.passed, "{}", scorecard_table(slow));
}

/// Runs `respond drill --exchange upbit --json --reaction 4 ARGS --out OUT`, checks the exit
/// code and returns the one JSON object it printed.
fn drill_json(args: &[&str], out: &Path, code: i32) -> serde_json::Value {
    Respond::new()
        .args(["drill", "--exchange", "upbit", "--json", "--reaction", "4"])
        .args(args)
        .arg("--out")
        .arg(out)
        .run()
        .code(code)
        .json()
}

/// The passing drill and the one that cannot pass run at once (two processes on two cores).
#[test]
fn cli_prints_one_json_scorecard_and_gates_on_thresholds() {
    let tmp = tempfile::tempdir().unwrap();
    // Out-of-range thresholds are a usage error.
    Respond::new()
        .args(["drill", "--exchange", "upbit", "--min-precision", "1.01"])
        .run()
        .code(2);

    // A playbook whose thresholds switch off the contra rules (R8 never fires, R4 never
    // fires, no bursts): the contra round trips are only unmatched orders in a market the bot
    // never trades (R1 + R3), which is "review", not a claim. Recall 0, exit 4.
    let pb = include_str!("../../playbooks/leak.yaml");
    let th = "      thresholds: { contra_loss: 100, price_deviation: 100, burst_multiple: 1000 }\n";
    let patched = pb
        .replace(
            "    with:\n      final: true\n",
            &format!("    with:\n      final: true\n{th}"),
        )
        .replace(
            "    with:\n      excel: \"{{inputs.excel}}\"\n",
            &format!("    with:\n      excel: \"{{{{inputs.excel}}}}\"\n{th}"),
        );
    assert_eq!(patched.matches("contra_loss: 100").count(), 2, "patched");
    let pb_path = tmp.path().join("absurd.yaml");
    std::fs::write(&pb_path, patched).unwrap();
    let pb_arg = pb_path.to_str().unwrap();
    // One directory each: two drills starting in the same second would want one bundle name.
    let (good_out, gated_out) = (tmp.path().join("good"), tmp.path().join("gated"));
    std::fs::create_dir_all(&good_out).unwrap();
    std::fs::create_dir_all(&gated_out).unwrap();
    let (good, gated) = std::thread::scope(|s| {
        let good = s.spawn(|| drill_json(&[], &good_out, 0));
        let gated = s.spawn(|| {
            drill_json(
                &["--scenario", "contra", "--playbook", pb_arg],
                &gated_out,
                4,
            )
        });
        (good.join().unwrap(), gated.join().unwrap())
    });

    let v = good;
    assert_eq!(v["scorecard"]["scenario"], "pump-and-dump");
    assert_eq!(v["scorecard"]["passed"], true);
    assert!(v["scorecard"]["detection"]["precision"].as_f64().unwrap() >= 0.95);
    let dir = v["dir"].as_str().unwrap();
    assert!(Path::new(dir).join("drill_report.json").is_file());
    assert!(Path::new(dir).join("drill_report.md").is_file());
    verify(Path::new(dir)).code(0);

    assert_eq!(gated["scorecard"]["passed"], false);
    assert_eq!(gated["scorecard"]["detection"]["recall"], 0.0);
}

/// An interrupted drill cannot be resumed (its mock exchange stops with it): instead of a
/// `respond resume` line that would fail, it prints where the partial bundle is and the exact
/// command that runs the drill again.
#[test]
fn an_interrupted_drill_prints_how_to_run_it_again_not_a_resume_line() {
    use crate::support::run_dir::{bundle, step_ended};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("drill out");
    let mut child = Respond::new()
        .args(["drill", "--exchange", "upbit", "--reaction", "60", "--out"])
        .arg(&out)
        .spawn();
    // Containment is done and the old key is being polled: the simulated user waits 60 s.
    let mut dir = None;
    let reached = child.wait_for(|| {
        dir = bundle(&out).filter(|d| step_ended(d, "cancel_orders"));
        dir.is_some()
    });
    assert!(
        reached,
        "the drill ended early or cancelled nothing within a minute"
    );
    let dir = dir.unwrap();
    child.signal("INT");
    let o = child.finish().code(130);
    let (stdout, stderr) = (&o.stdout, &o.stderr);
    assert!(!stdout.contains("respond resume"), "{stdout}");
    assert!(!stderr.contains("respond resume"), "{stderr}");
    // The printed command, as a shell splits it, is a drill with the same options.
    let again = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run again: "))
        .unwrap_or_else(|| panic!("no `run again:` line in\n{stdout}"));
    let words = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("for w in {again}; do printf '%s\\0' \"$w\"; done"))
        .output()
        .unwrap()
        .stdout;
    let words: Vec<String> = String::from_utf8(words)
        .unwrap()
        .split_terminator('\0')
        .map(str::to_string)
        .collect();
    assert_eq!(words[0], "respond", "{again}");
    let cli = <respond::cli::Cli as clap::Parser>::try_parse_from(&words)
        .unwrap_or_else(|e| panic!("`{again}` does not parse: {e}"));
    let respond::cli::Command::Drill(d) = cli.command else {
        panic!("`{again}` is not a drill");
    };
    assert_eq!(d.out, out);
    assert_eq!(d.reaction, 60.0);
    assert_eq!(d.scenario, "pump-and-dump");
    assert!(!d.no_bot_log && !d.excel);
    assert!(stdout.contains(&dir.display().to_string()), "{stdout}");
    assert!(stderr.contains("cannot be resumed"), "{stderr}");
}
