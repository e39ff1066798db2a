//! Readers for what a run leaves behind: its bundle directory, journal, CSV columns and the
//! analysis totals that an interrupted run must reproduce.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::mock::Mock;

/// The one bundle directory under `out` (None before the run created it).
pub fn bundle(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Lines of the bundle's journal so far.
pub fn journal_lines(dir: &Path) -> usize {
    std::fs::read(dir.join("journal.jsonl"))
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// The `data` of every `step_end` the bundle's journal records, in order (none when it has no
/// journal yet).
pub fn step_ends(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step_end")
        .map(|mut e| e["data"].take())
        .collect()
}

/// Whether the journal records the end of `step`.
pub fn step_ended(dir: &Path, step: &str) -> bool {
    let needle = format!("\"event\":\"step_end\",\"data\":{{\"step\":\"{step}\"");
    std::fs::read_to_string(dir.join("journal.jsonl")).is_ok_and(|j| j.contains(&needle))
}
/// `order_id` column of a bundle CSV.
pub fn csv_column(path: &Path, column: &str) -> Vec<String> {
    let Ok(mut r) = csv::Reader::from_path(path) else {
        return vec![];
    };
    let idx = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("{}: no column {column}", path.display()));
    r.records()
        .map(|rec| rec.unwrap().get(idx).unwrap_or_default().to_string())
        .collect()
}

/// Ground-truth attacker orders absent from the bundle's `orders.csv`.
pub fn missing_attacker_orders(mock: &Mock, dir: &Path) -> Vec<String> {
    let have: BTreeSet<String> = csv_column(&dir.join("orders.csv"), "order_id")
        .into_iter()
        .collect();
    mock.state
        .ground_truth()
        .attacker_order_uuids
        .iter()
        .map(|u| u.to_string())
        .filter(|u| !have.contains(u))
        .collect()
}

/// What the final analysis found: flagged order ids and the loss estimate, for comparing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub flagged: BTreeSet<String>,
    pub orders: usize,
    pub totals: BTreeMap<String, String>,
}

pub fn findings(dir: &Path) -> Findings {
    let flagged = csv_column(&dir.join("unauthorized_trades.csv"), "order_id")
        .into_iter()
        .collect();
    let orders = csv_column(&dir.join("orders.csv"), "order_id").len();
    let analysis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap_or_default())
            .unwrap_or(serde_json::Value::Null);
    let mut totals = BTreeMap::new();
    collect_totals(&analysis, "", &mut totals);
    Findings {
        flagged,
        orders,
        totals,
    }
}

/// The analysis totals an interrupted run must reproduce: counts and the loss estimate
/// (the total, overpayment, withdrawn value and fees; not the change during the response,
/// which depends on when the first snapshot happened to be taken relative to the cancels).
fn collect_totals(v: &serde_json::Value, _at: &str, out: &mut BTreeMap<String, String>) {
    for ptr in [
        "/counts/orders",
        "/counts/fills",
        "/counts/withdrawals",
        "/counts/deposits",
        "/counts/flagged",
        "/loss/total",
        "/loss/overpayment",
        "/loss/withdrawn_value",
        "/loss/fees",
    ] {
        if let Some(x) = v.pointer(ptr) {
            out.insert(ptr.to_string(), x.to_string());
        }
    }
}

pub use super::tree::copy_tree;

/// Every file under `dir`, at any depth.
pub fn files(dir: &Path) -> Vec<PathBuf> {
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

/// The bundle a run's stdout names on its `evidence:` line (`all`: the whole output, shown
/// when the line is missing).
pub fn evidence_dir(stdout: &str, all: &str) -> PathBuf {
    PathBuf::from(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("evidence:").map(|s| s.trim().to_string()))
            .unwrap_or_else(|| panic!("an evidence line in:\n{all}")),
    )
}
