//! `respond analyze RUN_DIR` re-runs the investigation offline from a bundle's raw responses:
//! it never calls the exchange (the mock is gone by then), the CSVs come out byte-identical to
//! the run's own, a second pass gives byte-identical reports, a bot log found later is added,
//! and the bundle still verifies.

use std::path::{Path, PathBuf};
use std::process::Command;

fn respond() -> Command {
    Command::new(env!("CARGO_BIN_EXE_respond"))
}

fn drill(out: &Path) -> PathBuf {
    let o = respond()
        .args([
            "--json",
            "drill",
            "--exchange",
            "upbit",
            "--reaction",
            "1",
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "drill failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    PathBuf::from(v["dir"].as_str().unwrap())
}

const CSVS: &[&str] = &[
    "unauthorized_trades.csv",
    "orders.csv",
    "fills.csv",
    "withdrawals.csv",
    "deposits.csv",
    "balances.csv",
];
const REPORTS: &[&str] = &[
    "report.md",
    "report.html",
    "support_ticket.md",
    "analysis.json",
];

fn read_all(dir: &Path, names: &[&str]) -> Vec<Vec<u8>> {
    names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect()
}

#[test]
fn analyze_is_offline_reproducible_and_keeps_the_bundle_verifiable() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let csv_before = read_all(&dir, CSVS);

    let first = respond().arg("analyze").arg(&dir).output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("orders flagged as unauthorized"),
        "{stdout}"
    );
    assert_eq!(
        read_all(&dir, CSVS),
        csv_before,
        "CSVs must be byte-identical offline"
    );
    let reports_first = read_all(&dir, REPORTS);

    let second = respond().arg("analyze").arg(&dir).output().unwrap();
    assert!(second.status.success());
    assert_eq!(
        read_all(&dir, REPORTS),
        reports_first,
        "a second pass must give the same reports"
    );

    let v = respond()
        .args(["evidence", "verify"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn analyze_adds_a_bot_log_found_later_and_refuses_a_bad_one() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("ev");
    let o = respond()
        .args([
            "--json",
            "drill",
            "--exchange",
            "upbit",
            "--reaction",
            "1",
            "--no-bot-log",
            "--min-recall",
            "0",
            "--min-precision",
            "0",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let dir = PathBuf::from(v["dir"].as_str().unwrap());
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.to_lowercase().contains("heuristics"),
        "the report must say it ran without a bot log"
    );

    // A malformed bot log is refused with its line, and nothing in the bundle changes.
    let bad = t.path().join("bad.csv");
    std::fs::write(&bad, "order_id,identifier,market,side,ord_type,created_at,price,volume\nabc,,KRW-BTC,sideways,limit,notatime,1,1\n").unwrap();
    let before = read_all(&dir, CSVS);
    let o = respond()
        .arg("analyze")
        .arg(&dir)
        .arg("--bot-log")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.csv:2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read_all(&dir, CSVS), before);
    // No stray copy of the refused log: the bundle still verifies as it was sealed.
    let bot_dir = dir.join("bot");
    let copies = std::fs::read_dir(&bot_dir).map_or(0, |d| d.count());
    assert_eq!(
        copies,
        0,
        "a refused bot log left a copy in {}",
        bot_dir.display()
    );
    let o = respond()
        .args(["evidence", "verify"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // An empty bot log is a clear error too.
    let empty = t.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let o = respond()
        .arg("analyze")
        .arg(&dir)
        .arg("--bot-log")
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Not a run directory.
    let o = respond().arg("analyze").arg(t.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
