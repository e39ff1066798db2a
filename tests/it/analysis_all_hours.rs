//! Detection does not depend on the time of day: each built-in scenario, served by the mock
//! with its "now" fixed at each hour of one day, exported over loopback by the playbook's own
//! steps (history, bot log, triage, fills) and analyzed as `respond analyze` does, meets its
//! drill thresholds against the mock's ground truth, and never flags the user's own orders.
//!
//! A night-time attack is moved to 03:00 in the victim's zone, so the hour decides where it
//! lands among the user's own recent trades: a drill that passes at one hour of the day and
//! fails at another is a detector that reads coincidence as intent.
//!
//! The default run takes three hours of the day; `RESPOND_ALL_HOURS=1` (set by `.ci/run`) takes
//! all 24.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::support;
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::StreamExt;
use respond::cli::BotLogArgs;
use respond::drill::score::Detection;
use respond::mock::upbit::Upbit;
use respond::mock::{self, MockOptions, Venue};

/// The playbook's investigation steps, without containment: the mock's key stays alive. The
/// snapshot comes first, as in the leak playbook: it preserves the balances and the withdrawal
/// address allowlist, without which a withdrawal's destination (Upbit's withdrawal list names
/// none) and the share of a holding it took cannot be told.
const PLAYBOOK: &str = r#"
name: investigate-only
description: Snapshot, export, bot logs, triage and fills, as the leak playbook runs them.
inputs:
  from: { type: time, description: window start }
  to: { type: time, description: window end }
steps:
  - id: snapshot
    uses: exchange.snapshot
    with: { since: 7d }
  - id: export
    uses: exchange.export_history
    needs: [snapshot]
    with: { from: "{{inputs.from}}", to: "{{inputs.to}}" }
  - id: bot_logs
    uses: analysis.import_bot_logs
  - id: triage
    uses: analysis.flag
    needs: [export, bot_logs]
    with: { final: false }
  - id: fills
    uses: exchange.export_fills
    with: { order_ids: "{{steps.triage.outputs.candidate_order_ids}}" }
"#;

/// One analysis: the scenario's world at `now`, with or without the bot's log.
struct Case {
    scenario: &'static str,
    now: DateTime<Utc>,
    with_bot_log: bool,
}

/// What one case found against the ground truth.
struct Outcome {
    detection: Detection,
    withdrawals: Detection,
    manual_flagged: Vec<String>,
    attack_started_at: Option<String>,
}

async fn analyze_case(case: &Case, dir: &Path, playbook: &Path) -> Outcome {
    let sc = mock::load(case.scenario, None).expect("built-in scenario");
    let opts = MockOptions {
        now: Some(case.now),
        live_attacker: false,
        // The client paces itself by the mock's limits; nothing here measures them.
        rate_limits: false,
        ..MockOptions::default()
    };
    let venue = Venue::new(&Upbit, sc, opts).expect("scenario fits the mock");
    let server = mock::serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Upbit),
        venue.clone(),
    )
    .await
    .expect("bind the mock");
    let truth = venue.ground_truth();
    let key = venue
        .keys()
        .iter()
        .find(|k| k.access_key == truth.leaked_access_key)
        .expect("leaked key")
        .clone();
    std::fs::create_dir_all(dir).unwrap();
    let mut bot_logs = BotLogArgs::default();
    if case.with_bot_log {
        let p = dir.join("bot-orders.csv");
        std::fs::write(&p, venue.bot_log_csv()).unwrap();
        bot_logs.bot_logs.push(p);
    }
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut inputs = BTreeMap::new();
    inputs.insert("from".to_string(), ts(case.now - Duration::days(7)));
    inputs.insert("to".to_string(), ts(case.now + Duration::hours(1)));
    let report = support::mock::run_playbook(
        &server.url,
        &key,
        playbook,
        inputs,
        bot_logs,
        dir.join("out"),
    )
    .await
    .unwrap_or_else(|e| panic!("{} at {}: run failed: {e:?}", case.scenario, case.now));
    let _ = server.shutdown().await;
    let inv = respond::investigation::investigate(&report.dir, &Default::default())
        .unwrap_or_else(|e| panic!("{} at {}: {e}", case.scenario, case.now));
    let exported: BTreeSet<String> = inv.input.orders.iter().map(|o| o.id.clone()).collect();
    let flagged: BTreeSet<String> = inv
        .input
        .orders
        .iter()
        .zip(&inv.result.verdicts)
        .filter(|(_, v)| v.flagged)
        .map(|(o, _)| o.id.clone())
        .collect();
    let actual: BTreeSet<String> = truth
        .attacker_order_uuids
        .iter()
        .map(|u| u.to_string())
        .filter(|u| exported.contains(u))
        .collect();
    let flagged_withdrawals: BTreeSet<String> = inv
        .result
        .transfers
        .iter()
        .filter(|t| t.flagged)
        .map(|t| t.transfer_id.clone())
        .collect();
    let attacker_withdrawals: BTreeSet<String> = truth
        .attacker_withdrawal_uuids
        .iter()
        .map(|u| u.to_string())
        .collect();
    let manual: BTreeSet<String> = truth
        .user_manual_order_uuids
        .iter()
        .map(|u| u.to_string())
        .collect();
    Outcome {
        detection: Detection::compare(&flagged, &actual),
        withdrawals: Detection::compare(&flagged_withdrawals, &attacker_withdrawals),
        manual_flagged: flagged.intersection(&manual).cloned().collect(),
        attack_started_at: truth.attack_started_at.clone(),
    }
}

/// The hours (UTC) of the fixed day to analyze at. The default run takes three: one where a
/// night-time attack happened 40 minutes ago (09:00), and two where it was moved back to
/// 03:00 in the victim's zone (20:00, and 23:00 where the user's own sell once read as part of
/// the attack's liquidation); `RESPOND_ALL_HOURS=1` (CI) takes all 24.
fn hours() -> Vec<i64> {
    if std::env::var("RESPOND_ALL_HOURS").is_ok_and(|v| v == "1") {
        (0..24).collect()
    } else {
        println!("notice: 3 of 24 hours (RESPOND_ALL_HOURS=1 runs all of them, as CI does)");
        vec![9, 20, 23]
    }
}

/// The scenario with the bot log (precision and recall ≥ 0.95) and without it (recall ≥
/// 0.85), at each of [`hours`] of one fixed day (UTC). The user's own orders
/// are never flagged, with or without the log.
fn at_every_hour(scenario: &'static str) {
    let tmp = tempfile::tempdir().unwrap();
    let playbook = tmp.path().join("investigate.yaml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let day = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let cases: Vec<Case> = hours()
        .into_iter()
        .flat_map(|hour| {
            [true, false].into_iter().map(move |with_bot_log| Case {
                scenario,
                now: day + Duration::hours(hour),
                with_bot_log,
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results: Vec<Scored> = rt.block_on(async {
        futures::stream::iter(cases.iter().enumerate())
            .map(|(i, case)| {
                let dir = tmp.path().join(format!("case-{i}"));
                let playbook = playbook.clone();
                async move {
                    let out = analyze_case(case, &dir, &playbook).await;
                    let _ = std::fs::remove_dir_all(&dir);
                    let d = &out.detection;
                    (case.with_bot_log, d.precision, d.recall, judge(case, &out))
                }
            })
            .buffer_unordered(2)
            .collect()
            .await
    });
    // The worst hour, with and without the log (`--no-capture` shows it).
    for log in [true, false] {
        let of = |pick: fn(&Scored) -> f64| {
            results
                .iter()
                .filter(|r| r.0 == log)
                .map(pick)
                .fold(1.0, f64::min)
        };
        println!(
            "{scenario} ({}): worst precision {:.3}, worst recall {:.3}",
            if log { "bot log" } else { "no bot log" },
            of(|r| r.1),
            of(|r| r.2)
        );
    }
    let failures: Vec<String> = results.into_iter().filter_map(|r| r.3).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The night-time pump: the attack moves to 03:00 in the victim's zone.
#[test]
fn pump_and_dump_passes_at_every_hour_of_the_day() {
    at_every_hour("pump-and-dump");
}

/// The night-time pump among the user's own trades by hand: which of them fall near the attack
/// depends on the hour.
#[test]
fn noisy_passes_at_every_hour_of_the_day() {
    at_every_hour("noisy");
}

#[test]
fn contra_passes_at_every_hour_of_the_day() {
    at_every_hour("contra");
}

#[test]
fn withdrawal_passes_at_every_hour_of_the_day() {
    at_every_hour("withdrawal");
}

#[test]
fn blank_passes_at_every_hour_of_the_day() {
    at_every_hour("blank");
}

/// The thief copies the bot's identifier prefix, markets and sizes.
#[test]
fn copycat_passes_at_every_hour_of_the_day() {
    at_every_hour("copycat");
}

/// No sells: idle quote spent on limit bids at 2–2.6× the market.
#[test]
fn idle_bids_passes_at_every_hour_of_the_day() {
    at_every_hour("idle-bids");
}

/// 15 buys over 4 minutes after selling three assets.
#[test]
fn slow_pump_passes_at_every_hour_of_the_day() {
    at_every_hour("slow-pump");
}

/// The bot's bids cancelled and re-posted under its next identifiers at ~2.4×.
#[test]
fn repost_passes_at_every_hour_of_the_day() {
    at_every_hour("repost");
}

/// A pump plus the user's own fair trades in other markets.
#[test]
fn pump_user_trades_passes_at_every_hour_of_the_day() {
    at_every_hour("pump-user-trades");
}

/// The bot log exported hours before the window ends; a pump after the cut.
#[test]
fn log_cut_passes_at_every_hour_of_the_day() {
    at_every_hour("log-cut");
}

/// One case's score: with the bot log, precision, recall, and its failure if any.
type Scored = (bool, f64, f64, Option<String>);

/// The case's failure, if any, in one line.
fn judge(case: &Case, out: &Outcome) -> Option<String> {
    let (min_precision, min_recall) = if case.with_bot_log {
        (0.95, 0.95)
    } else {
        (0.0, 0.85)
    };
    let d = &out.detection;
    let mut why = Vec::new();
    if d.precision < min_precision {
        why.push(format!("precision {:.3}", d.precision));
    }
    if d.recall < min_recall {
        why.push(format!("recall {:.3}", d.recall));
    }
    if out.withdrawals.recall < min_recall {
        why.push(format!("withdrawal recall {:.3}", out.withdrawals.recall));
    }
    if case.with_bot_log && out.withdrawals.false_positives > 0 {
        why.push(format!(
            "{} withdrawals flagged wrongly",
            out.withdrawals.false_positives
        ));
    }
    if !out.manual_flagged.is_empty() {
        why.push(format!(
            "the user's own orders flagged: {}",
            out.manual_flagged.join(", ")
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "{} ({}) now {} attack {}: {} (tp {} fp {} fn {})",
            case.scenario,
            if case.with_bot_log {
                "bot log"
            } else {
                "no bot log"
            },
            case.now.format("%H:%M"),
            out.attack_started_at.as_deref().unwrap_or("-"),
            why.join("; "),
            d.true_positives,
            d.false_positives,
            d.false_negatives
        )
    })
}

/// Withdrawals only, to freshly allowlisted addresses, then the user's own cold-wallet
/// withdrawal: the thief's are claimed without any order, the user's is review.
#[test]
fn withdraw_only_passes_at_every_hour_of_the_day() {
    at_every_hour("withdraw-only");
}

/// Legitimate behaviour around a small pump: bot restart, DCA bursts, rebalancing, hand sells
/// during the pump, a cold-wallet withdrawal; none of it is claimed.
#[test]
fn legit_zoo_passes_at_every_hour_of_the_day() {
    at_every_hour("legit-zoo");
}

/// Each built-in scenario has its test above: a new one must be added there.
#[test]
fn every_built_in_scenario_is_covered() {
    let covered = [
        "pump-and-dump",
        "noisy",
        "contra",
        "withdrawal",
        "blank",
        "copycat",
        "idle-bids",
        "slow-pump",
        "repost",
        "pump-user-trades",
        "log-cut",
        "withdraw-only",
        "legit-zoo",
    ];
    let mut names = mock::scenario::builtin_names();
    names.sort_unstable();
    let mut covered = covered.to_vec();
    covered.sort_unstable();
    assert_eq!(names, covered);
}
