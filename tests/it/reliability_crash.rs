//! Crash and resume: `respond leak` is SIGKILLed at many points of a run, then
//! `respond resume RUN_DIR` (same environment credentials, same live mock) finishes it.
//!
//! Kill points come from a fixed seed and are chosen from outside the process, with no hook in
//! the product: when the journal reaches line N (polled every millisecond, so often mid-entry),
//! when the raw/ directory holds N files (mid-write of a raw response), or after a random
//! delay. Every fifth point also kills the first resume and resumes again. SIGKILL cannot split
//! a single write of a journal line, so every seventh point also cuts the last journal entry in
//! half after the kill, as a power cut would leave it.
//!
//! After each resume: the bundle flags the same orders with the same totals as an
//! uninterrupted run of the same world, `respond evidence verify` passes (journal chain and
//! hashes), the mock's request log shows no order cancelled twice and no write refused
//! (a refused cancel would be a write sent twice), and `respond analyze` run on a copy of the
//! resumed bundle changes not one byte of its CSVs or reports: a resume is a fresh analysis.
//!
//! The world is a small pump-and-dump (one week of bot history, three markets) with a fixed
//! "now", the live attacker off and a fixed investigation window, so that every run of it sees
//! the same exchange. `RESPOND_CRASH_POINTS` sets the number of kill points (default 5, the
//! fewest that cover every kind: by journal line (0, 3), by raw file (1, 4), by delay (2), a
//! killed resume (4), a torn entry (3); CI runs 50), `RESPOND_CRASH_SEED` the seed.
//!
//! Two more tests here drive the same binary: one writer per run (a second `respond` on a run
//! being written exits 2 at once naming the holder; a SIGKILLed holder never blocks the
//! resume), and the resume of a run whose late export failed for want of a read-only key,
//! which must run again everything that depends on that export.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use respond::mock::{self, MockOptions};

use crate::support::cli::*;
use crate::support::mock::*;
use crate::support::respond::{verify, Respond, Running};
use crate::support::run_dir::*;

const SCENARIO: &str = r#"
name: crash-drill
description: a small pump-and-dump for crash tests
seed: 11
markets:
  - { code: KRW-BTC, korean_name: 비트코인, english_name: Bitcoin, price: "135000000", volatility: 0.025, depth: { levels: 15, step_pct: "0.05", level_krw: "40000000" } }
  - { code: KRW-XRP, korean_name: 리플, english_name: XRP, price: "3100", volatility: 0.04, depth: { levels: 15, step_pct: "0.1", level_krw: "10000000" } }
  - { code: KRW-MOCA, korean_name: 모카, english_name: Moca Network, price: "142", volatility: 0.06, depth: { levels: 12, step_pct: "1.5", level_krw: "300000" } }
accounts:
  - { name: victim, balances: { KRW: "8000000", BTC: "0.12", XRP: "1500" } }
  - { name: attacker, balances: { KRW: "50000000", MOCA: "2000000" } }
keys:
  - { account: victim, label: bot, scopes: [view_account, view_orders, make_orders, view_withdrawals, view_deposits] }
  - { account: victim, label: readonly, scopes: [view_account, view_orders, view_withdrawals, view_deposits] }
  - { account: attacker, label: attacker, scopes: [view_account, view_orders, make_orders] }
bot:
  account: victim
  key: bot
  markets: [KRW-BTC, KRW-XRP]
  days: 6
  orders_per_day: 10
  order_krw: ["50000", "400000"]
  ord_types: [limit, limit, price, market]
  identifier: "grid-{n}"
  open_orders: 3
attack:
  key: bot
  attacker_account: attacker
  start_minutes_before_now: 40
  night_kst: false
  liquidate: [BTC]
  liquidate_fraction: "0.9"
  pump: { market: KRW-MOCA, multiple: "3.0", orders: 6, interval_secs: 45 }
  open_orders: 2
"#;

/// One world: the same exchange every time it is built.
struct World {
    now: chrono::DateTime<Utc>,
}

impl World {
    /// The world as of the current minute.
    fn this_minute() -> World {
        World {
            now: Utc::now()
                .duration_trunc(chrono::Duration::minutes(1))
                .unwrap(),
        }
    }
    fn mock(&self) -> Mock {
        let sc = mock::scenario::parse("crash-drill.yaml", SCENARIO, None).expect("scenario");
        Mock::start(
            sc,
            MockOptions {
                now: Some(self.now),
                live_attacker: false,
                ..MockOptions::default()
            },
        )
    }
    fn window(&self) -> (String, String) {
        let ts = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        (
            ts(self.now - chrono::Duration::days(7)),
            ts(self.now + chrono::Duration::hours(1)),
        )
    }
    fn leak(&self, mock: &Mock, out: &Path, bot: &Path) -> Respond {
        let (from, to) = self.window();
        leak(mock, out, bot, &["--from", &from, "--to", &to])
    }
}

/// Revokes the key (as the user in the console) once cancelling has ended, while `child`
/// runs; returns early when it exits.
fn watch_and_revoke(mock: &Mock, dir_parent: &Path, run: &mut Running, revoked: &mut bool) {
    while !run.exited() {
        if !*revoked && bundle(dir_parent).is_some_and(|d| step_ended(&d, "cancel_orders")) {
            mock.revoke();
            *revoked = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[derive(Debug, Clone, Copy)]
enum KillAt {
    JournalLines(usize),
    RawFiles(usize),
    Delay(u64),
}

/// Waits for the kill point, then SIGKILLs. False when the run ended first.
fn kill_at(run: &mut Running, out: &Path, at: KillAt, mock: &Mock, revoked: &mut bool) -> bool {
    let t0 = Instant::now();
    loop {
        if run.exited() {
            return false;
        }
        let dir = bundle(out);
        if !*revoked
            && dir
                .as_deref()
                .is_some_and(|d| step_ended(d, "cancel_orders"))
        {
            mock.revoke();
            *revoked = true;
        }
        let due = match at {
            KillAt::JournalLines(n) => dir.as_deref().is_some_and(|d| journal_lines(d) >= n),
            KillAt::RawFiles(n) => dir
                .as_deref()
                .is_some_and(|d| std::fs::read_dir(d.join("raw")).map_or(0, |r| r.count()) >= n),
            KillAt::Delay(ms) => t0.elapsed() >= Duration::from_millis(ms),
        };
        if due {
            run.kill();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the kill left half-done: a journal entry without its newline, temp files of
/// atomic writes (a raw response or a report being written).
fn torn_state(dir: &Path) -> String {
    let mut s = String::new();
    let j = std::fs::read(dir.join("journal.jsonl")).unwrap_or_default();
    if !j.is_empty() && !j.ends_with(b"\n") {
        s.push_str(" mid-journal-entry");
    }
    let temps = [dir.to_path_buf(), dir.join("raw")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|r| r.flatten())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count();
    if temps > 0 {
        s.push_str(&format!(" mid-write ({temps} temp file(s))"));
    }
    s
}

fn tear_last_journal_entry(dir: &Path) {
    let p = dir.join("journal.jsonl");
    let j = std::fs::read(&p).unwrap_or_default();
    let body = j.strip_suffix(b"\n").unwrap_or(&j);
    let start = body.iter().rposition(|c| *c == b'\n').map_or(0, |n| n + 1);
    let cut = start + (body.len() - start) / 2;
    if cut > start {
        std::fs::write(&p, &j[..cut]).unwrap();
    }
}

/// The files `respond analyze` rewrites: a resume must leave them exactly as it would.
const DERIVED: &[&str] = respond::report::BUNDLE_FILES;

/// Runs `respond analyze` on a copy of `dir` (same directory name, so the same run id) and
/// compares every derived file byte for byte.
fn analysis_of_a_copy_changes_nothing(dir: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join(dir.file_name().unwrap());
    copy_tree(dir, &copy);
    let r = Respond::new().arg("analyze").arg(&copy).run();
    if r.code != Some(0) {
        return Err(format!("analyze of a copy exit {:?}\n{}", r.code, r.stderr));
    }
    let changed: Vec<&str> = DERIVED
        .iter()
        .copied()
        .filter(|f| std::fs::read(dir.join(f)).ok() != std::fs::read(copy.join(f)).ok())
        .collect();
    if !changed.is_empty() {
        let diff = |f: &str| {
            let a = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let b = std::fs::read_to_string(copy.join(f)).unwrap_or_default();
            let first = a
                .lines()
                .zip(b.lines())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("\n    resumed:  {x}\n    analyzed: {y}"))
                .unwrap_or_else(|| {
                    format!(" ({} vs {} lines)", a.lines().count(), b.lines().count())
                });
            format!("{f}{first}")
        };
        return Err(format!(
            "`respond analyze` after the resume changed {}",
            changed
                .iter()
                .map(|f| diff(f))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(())
}

struct Baseline {
    findings: Findings,
    journal_lines: usize,
    raw_files: usize,
    millis: u64,
}

fn baseline(world: &World) -> Baseline {
    let tmp = tempfile::tempdir().unwrap();
    let mock = world.mock();
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");
    let t0 = Instant::now();
    let mut run = world.leak(&mock, &out, &bot).spawn();
    let mut revoked = false;
    watch_and_revoke(&mock, &out, &mut run, &mut revoked);
    let r = run.finish();
    assert_eq!(r.code, Some(0), "uninterrupted run failed\n{}", r.stderr);
    let dir = bundle(&out).unwrap();
    assert!(missing_attacker_orders(&mock, &dir).is_empty());
    analysis_of_a_copy_changes_nothing(&dir).expect("an uninterrupted run");
    Baseline {
        findings: findings(&dir),
        journal_lines: journal_lines(&dir),
        raw_files: std::fs::read_dir(dir.join("raw")).unwrap().count(),
        millis: t0.elapsed().as_millis() as u64,
    }
}

/// One kill point; Err describes what went wrong.
fn crash_and_resume(
    world: &World,
    base: &Baseline,
    i: usize,
    rng: &mut ChaCha8Rng,
) -> Result<String, String> {
    let mut at = match i % 3 {
        0 => KillAt::JournalLines(rng.gen_range(1..=base.journal_lines.saturating_sub(2).max(1))),
        1 => KillAt::RawFiles(rng.gen_range(1..=base.raw_files.max(1))),
        _ => KillAt::Delay(rng.gen_range(0..=base.millis)),
    };
    let kill_resume_after = (i % 5 == 4).then(|| rng.gen_range(50..=base.millis / 2 + 50));
    // A delay drawn from the baseline's duration can outlast a run on a less loaded machine:
    // halve it and try again (a fresh mock each time) until the kill lands inside the run.
    let (_tmp, mock, out, mut revoked) = loop {
        let tmp = tempfile::tempdir().unwrap();
        let mock = world.mock();
        let bot = mock.write_bot_log(tmp.path());
        let out = tmp.path().join("ev");
        let mut revoked = false;
        let mut run = world.leak(&mock, &out, &bot).spawn();
        if kill_at(&mut run, &out, at, &mock, &mut revoked) {
            break (tmp, mock, out, revoked);
        }
        let r = run.finish();
        match at {
            KillAt::Delay(ms) if ms > 100 => at = KillAt::Delay(ms / 2),
            _ => {
                return Err(format!(
                    "{at:?}: the run ended before the kill point (exit {:?})",
                    r.code
                ))
            }
        }
    };
    let Some(dir) = bundle(&out) else {
        // Killed before the bundle existed: nothing to resume; a new run is the answer.
        return Ok(format!("{at:?}: killed before the bundle existed"));
    };
    if !dir.join("journal.jsonl").exists() {
        // Killed between creating the directory and journaling the start: resume must say
        // that nothing ran and to start again.
        let r = resume(&mock, &dir).run();
        if r.code != Some(2) || !r.stderr.contains("start again with `respond leak`") {
            return Err(format!(
                "{at:?}: no journal, resume said (exit {:?}):\n{}",
                r.code, r.stderr
            ));
        }
        if !mock.victim_writes().is_empty() {
            return Err(format!("{at:?}: writes sent before the journal existed"));
        }
        return Ok(format!(
            "{at:?}: killed before the journal existed; resume says to start again"
        ));
    }
    if i % 7 == 3 {
        // SIGKILL cannot split one write(2) of a journal line, but a power cut or a full disk
        // can: cut the last entry in half, as such a crash would leave it.
        tear_last_journal_entry(&dir);
    }
    let state = torn_state(&dir);
    let mut resumes = 0;
    if let Some(ms) = kill_resume_after {
        let mut c = resume(&mock, &dir).spawn();
        resumes += 1;
        kill_at(&mut c, &out, KillAt::Delay(ms), &mock, &mut revoked);
    }
    let mut c = resume(&mock, &dir).spawn();
    resumes += 1;
    watch_and_revoke(&mock, &out, &mut c, &mut revoked);
    let r = c.finish();
    if r.code != Some(0) {
        return Err(format!("{at:?}: resume exit {:?}\n{}", r.code, r.stderr));
    }
    let f = findings(&dir);
    if f != base.findings {
        return Err(format!(
            "{at:?}: resumed bundle differs from an uninterrupted run:\n  resumed {f:?}\n  baseline {:?}",
            base.findings
        ));
    }
    let v = verify(&dir);
    if v.code != Some(0) {
        return Err(format!(
            "{at:?}: evidence verify failed\n{}{}",
            v.stdout, v.stderr
        ));
    }
    if let Err(e) = analysis_of_a_copy_changes_nothing(&dir) {
        return Err(format!("{at:?}: {e}"));
    }
    let cancelled = mock.cancelled();
    let mut distinct = cancelled.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != cancelled.len() {
        return Err(format!(
            "{at:?}: an order was cancelled twice: {cancelled:?}"
        ));
    }
    let refused: Vec<String> = mock
        .victim_writes()
        .into_iter()
        .filter(|w| !w.ends_with(" 200") && !w.ends_with(" 201"))
        .collect();
    if !refused.is_empty() {
        return Err(format!("{at:?}: writes refused (sent twice?): {refused:?}"));
    }
    Ok(format!(
        "{at:?}: killed{state}, {resumes} resume(s), identical"
    ))
}

#[test]
fn killed_runs_resume_to_the_same_bundle() {
    let points: usize = std::env::var("RESPOND_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("RESPOND_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261123);
    let world = World::this_minute();
    let base = baseline(&world);
    assert!(
        !base.findings.flagged.is_empty(),
        "the baseline flags nothing"
    );
    println!(
        "baseline: {} orders, {} flagged, {} journal lines, {} raw files, {} ms",
        base.findings.orders,
        base.findings.flagged.len(),
        base.journal_lines,
        base.raw_files,
        base.millis
    );
    let next = AtomicUsize::new(0);
    let workers = 3;
    let results: Vec<(usize, Result<String, String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= points {
                            return out;
                        }
                        let mut rng =
                            ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37));
                        out.push((i, crash_and_resume(&world, &base, i, &mut rng)));
                    }
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    for (i, r) in &results {
        match r {
            Ok(m) => println!("point {i}: {m}"),
            Err(e) => failures.push(format!("point {i}: {e}")),
        }
    }
    let count = |w: &str| {
        results
            .iter()
            .filter(|(_, r)| r.as_ref().is_ok_and(|m| m.contains(w)))
            .count()
    };
    println!(
        "{} kill points ({} mid-journal-entry, {} mid-write, {} with the resume killed too), {} failed",
        results.len(),
        count("mid-journal-entry"),
        count("mid-write"),
        count("2 resume(s)"),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn one_writer_per_run_and_a_killed_writer_never_blocks_its_resume() {
    let world = World::this_minute();
    let tmp = tempfile::tempdir().unwrap();
    let mock = world.mock();
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");
    // Nobody deletes the key yet: the run waits for it to die, holding the run's lock.
    let mut leak = world.leak(&mock, &out, &bot).spawn();
    let waiting = leak.wait_for(|| bundle(&out).is_some_and(|d| step_ended(&d, "cancel_orders")));
    assert!(waiting, "the run never reached its wait");
    let dir = bundle(&out).unwrap();
    let pid = leak.id();
    let d = dir.display().to_string();
    let holder = format!("another respond (pid {pid}, since 20");
    for (what, cmd) in [
        ("resume", resume(&mock, &dir)),
        ("analyze", respond(&mock, &["analyze", &d])),
        ("analyze --out", {
            let o = tmp.path().join("copy").display().to_string();
            respond(&mock, &["analyze", &d, "--out", &o])
        }),
    ] {
        let r = cmd.run();
        assert_eq!(r.code, Some(2), "{what} while the run works:\n{}", r.stderr);
        assert!(
            r.stderr.contains(&holder) && r.stderr.contains("is working on this run"),
            "{what}:\n{}",
            r.stderr
        );
    }
    assert!(
        !tmp.path().join("copy").exists(),
        "a refused copy created nothing"
    );
    let v = verify(&dir);
    assert!(
        v.stderr
            .contains("a respond process is writing this run right now"),
        "{}",
        v.stderr
    );
    // The holder is killed: the kernel drops its lock, and the resume goes ahead at once.
    leak.kill();
    let mut revoked = false;
    let mut c = resume(&mock, &dir).spawn();
    watch_and_revoke(&mock, &out, &mut c, &mut revoked);
    let r = c.finish();
    assert_eq!(r.code, Some(0), "resume after SIGKILL:\n{}", r.stderr);
    assert_eq!(verify(&dir).code, Some(0));
    analysis_of_a_copy_changes_nothing(&dir).unwrap();
}

/// Issue 11, point 4: the key dies mid-run with no read-only key, after the first export but
/// while the attacker still trades, so the late export fails (exit 1) and everything after it
/// works on what the first export saw. The resume, with a read-only key, exports again: the
/// triage, the fills of the new orders, the final snapshot, the analysis and the report must
/// all run again on the new data, not be reused.
#[test]
fn a_resume_reruns_everything_the_late_export_touches() {
    let tmp = tempfile::tempdir().unwrap();
    // The crash world, with the attacker trading live until the key is deleted.
    let live = SCENARIO.replace(
        "  open_orders: 2\n",
        "  open_orders: 2\n  live: { enabled: true, min_interval_ms: 200, max_interval_ms: 600, order_krw: \"30000\" }\n",
    );
    assert_ne!(live, SCENARIO);
    let sc = mock::scenario::parse("crash-live.yaml", &live, None).expect("scenario");
    let mock = Mock::start(sc, MockOptions::default());
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");
    let mut child = leak(&mock, &out, &bot, &[])
        .env_remove("UPBIT_READONLY_ACCESS_KEY")
        .env_remove("UPBIT_READONLY_SECRET_KEY")
        .spawn();
    let exported = child.wait_for(|| bundle(&out).is_some_and(|d| step_ended(&d, "export")));
    assert!(exported, "the first export never ended");
    // The attacker places more orders after the first export, then the user deletes the key.
    let seen = mock.state.ground_truth().attacker_order_uuids.len();
    let more = child.wait_for(|| mock.state.ground_truth().attacker_order_uuids.len() >= seen + 2);
    assert!(more, "the live attacker placed no order after the export");
    mock.revoke();
    let r = child.finish();
    assert_eq!(
        r.code,
        Some(1),
        "the late export needs a read-only key\n{}",
        r.stderr
    );
    let dir = bundle(&out).unwrap();
    assert!(
        !missing_attacker_orders(&mock, &dir).is_empty(),
        "the first session cannot have seen the orders placed after its export"
    );

    let r = resume(&mock, &dir).run();
    assert_eq!(r.code, Some(0), "resume with a read-only key\n{}", r.stderr);
    let missing = missing_attacker_orders(&mock, &dir);
    assert!(
        missing.is_empty(),
        "orders.csv lacks attacker orders {missing:?}"
    );
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let session = &journal[journal.rfind(r#""event":"resume""#).unwrap()..];
    for step in [
        "export_late",
        "triage_late",
        "fills_late",
        "final_snapshot",
        "analyze",
        "report",
    ] {
        let ran = format!(r#""event":"step_start","data":{{"step":"{step}""#);
        assert!(
            session.contains(&ran),
            "{step} must run again in the resume"
        );
    }
    assert_eq!(verify(&dir).code, Some(0));
    analysis_of_a_copy_changes_nothing(&dir).unwrap();
}

/// Issue 18: a run an earlier version left unfinished after its export, whose lists it wrote
/// indented (not a record per line), is resumed to a bundle that verifies, keeps those files
/// byte for byte, and analyzes in place and with `--out`.
#[test]
fn a_run_left_indented_by_an_earlier_version_resumes_verifies_and_analyzes() {
    let world = World::this_minute();
    let tmp = tempfile::tempdir().unwrap();
    let mock = world.mock();
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");
    let mut run = world.leak(&mock, &out, &bot).spawn();
    let mut revoked = false;
    let exported = run.wait_for(|| {
        let dir = bundle(&out);
        if !revoked
            && dir
                .as_deref()
                .is_some_and(|d| step_ended(d, "cancel_orders"))
        {
            mock.revoke();
            revoked = true;
        }
        dir.is_some_and(|d| step_ended(&d, "export"))
    });
    assert!(exported, "the export never ended");
    run.kill();
    let dir = bundle(&out).unwrap();
    // What the earlier version wrote: every list of the export indented.
    let mut indented = Vec::new();
    let mut files: Vec<_> = files(&dir.join("export"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.push(dir.join("export-chunks.json"));
    for p in files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let text = serde_json::to_vec_pretty(&v).unwrap();
        std::fs::write(&p, &text).unwrap();
        if text.starts_with(b"[\n  {") || text.starts_with(b"{\n  \"") {
            indented.push((p, text));
        }
    }
    assert!(indented.len() > 1, "the export wrote no list");

    if !revoked {
        mock.revoke();
    }
    let r = resume(&mock, &dir).run();
    assert_eq!(
        r.code,
        Some(0),
        "resume of the earlier version's run\n{}",
        r.stderr
    );
    assert_eq!(verify(&dir).code, Some(0));
    // The finished export's files are evidence as they were written: kept, sealed, verified
    // (the late export, over the same window, writes the shared lists again, a record a line,
    // and its orders to a list of its own).
    let kept: Vec<_> = indented
        .iter()
        .filter(|(p, text)| std::fs::read(p).ok().as_deref() == Some(text.as_slice()))
        .collect();
    assert!(
        kept.iter().any(|(p, _)| p.ends_with("export-chunks.json")),
        "the first export's proof is kept as it was"
    );
    assert!(
        kept.iter().any(|(p, _)| p.ends_with("export/orders.json")),
        "the first export's orders are kept as they were"
    );
    let late = std::fs::read_to_string(dir.join("export/orders-export_late.json")).unwrap();
    assert!(
        late.starts_with("[\n{"),
        "the late export's own list, a record a line"
    );
    analysis_of_a_copy_changes_nothing(&dir).unwrap();
    let copy = tmp.path().join("reanalysis");
    let r = Respond::new()
        .arg("analyze")
        .arg(&dir)
        .arg("--out")
        .arg(&copy)
        .run();
    assert_eq!(r.code, Some(0), "analyze --out\n{}", r.stderr);
    let copy = bundle(&copy).expect("the copy");
    assert_eq!(verify(&copy).code, Some(0));
    for (p, text) in kept {
        let rel = p.strip_prefix(&dir).unwrap();
        assert_eq!(
            &std::fs::read(copy.join(rel)).unwrap(),
            text,
            "{}",
            rel.display()
        );
    }
}
