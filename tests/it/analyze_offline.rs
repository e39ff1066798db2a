//! `respond analyze RUN_DIR` re-runs the investigation offline from a bundle's raw responses:
//! it never calls the exchange (the mock is gone by then), the CSVs and reports come out
//! byte-identical to the run's own, a bot log found later is added, and the bundle still
//! verifies.
//!
//! Nothing re-seals over a mismatch: a bundle whose files no longer match its seal (or whose
//! raw responses no longer match their sidecars) is refused by `analyze` and `resume` with
//! exit 3 and left byte for byte as it was; `analyze --out` analyzes a copy in a new bundle
//! that records the mismatches; `resume` on a complete bundle changes nothing; a journal that
//! is empty or missing does not verify.

use std::path::{Path, PathBuf};

use crate::support::drill::{bundle as drill, run_all, Drill};
use crate::support::respond::Respond;
use crate::support::run_dir::copy_tree;

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
    let reports_before = read_all(&dir, REPORTS);

    Respond::new()
        .arg("analyze")
        .arg(&dir)
        .run()
        .success()
        .stdout_has("orders flagged as unauthorized");
    assert_eq!(
        read_all(&dir, CSVS),
        csv_before,
        "CSVs must be byte-identical offline"
    );
    let reports_first = read_all(&dir, REPORTS);
    assert!(
        reports_first == reports_before,
        "the run's own reports must come out byte-identical offline"
    );

    Respond::new().arg("analyze").arg(&dir).run().success();
    assert_eq!(
        read_all(&dir, REPORTS),
        reports_first,
        "a second pass must give the same reports"
    );

    Respond::new()
        .args(["evidence", "verify"])
        .arg(&dir)
        .run()
        .success();
}

#[test]
fn analyze_adds_a_bot_log_found_later_and_refuses_a_bad_one() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("ev");
    let no_log = Drill::new("pump-and-dump", &out)
        .reaction(1.0)
        .without_bot_log()
        .min(0.0);
    let dir = run_all(&[no_log])
        .pop()
        .unwrap()
        .expect("the drill runs")
        .dir;
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.to_lowercase().contains("heuristics"),
        "the report must say it ran without a bot log"
    );

    // A malformed bot log is refused with its line, and nothing in the bundle changes.
    let bad = t.path().join("bad.csv");
    std::fs::write(&bad, "order_id,identifier,market,side,ord_type,created_at,price,volume\nabc,,KRW-BTC,sideways,limit,notatime,1,1\n").unwrap();
    let before = read_all(&dir, CSVS);
    Respond::new()
        .arg("analyze")
        .arg(&dir)
        .arg("--bot-log")
        .arg(&bad)
        .run()
        .code(2)
        .stderr_has("bad.csv:2");
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
    Respond::new()
        .args(["evidence", "verify"])
        .arg(&dir)
        .run()
        .code(0);

    // An empty bot log is a clear error too.
    let empty = t.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    Respond::new()
        .arg("analyze")
        .arg(&dir)
        .arg("--bot-log")
        .arg(&empty)
        .run()
        .code(2)
        .stderr_has("empty");

    // Not a run directory.
    Respond::new().arg("analyze").arg(t.path()).run().code(2);
}

/// Every file of the bundle, by relative path (the lock file aside when `with_lock` is false:
/// it names the last process that held the run, and is not evidence).
fn snapshot(dir: &Path, with_lock: bool) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    if !with_lock {
        out.remove(respond::rundir::LOCK_FILE);
    }
    out
}

/// `respond ARGS`: exit code, stdout, stderr.
fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let r = Respond::new().args(args).run();
    (r.code, r.stdout, r.stderr)
}

fn raw_bodies(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("raw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".body"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_bundle_that_does_not_match_is_never_resealed_and_a_copy_can_be_analyzed() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let d = dir.as_os_str();
    // One byte of one raw response changes.
    let body = format!("raw/{}", raw_bodies(&dir)[2]);
    let mut bytes = std::fs::read(dir.join(&body)).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(dir.join(&body), bytes).unwrap();
    let before = snapshot(&dir, false);

    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(&format!("raw       {body}: sha256")),
        "verify checks the raw sidecar too:\n{out}"
    );
    let (code, _, err) = run(&["analyze".as_ref(), d]);
    assert_eq!(code, Some(3), "analyze over a mismatch:\n{err}");
    assert!(err.contains(&format!("changed   {body}")), "{err}");
    assert!(
        err.contains("wrote nothing") && err.contains("--out DIR"),
        "{err}"
    );
    assert!(snapshot(&dir, false) == before, "the bundle was changed");
    let (code, _, _) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
    assert_eq!(code, Some(3), "the mismatch must still show");

    // The copy: a new bundle that verifies and says what did not match.
    let re = t.path().join("re");
    let (code, out, err) = run(&[
        "--json".as_ref(),
        "analyze".as_ref(),
        d,
        "--out".as_ref(),
        re.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let copy = PathBuf::from(v["dir"].as_str().unwrap());
    assert!(copy.starts_with(&re), "{}", copy.display());
    assert!(v["source_mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m.as_str().unwrap().contains(&body)));
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), copy.as_os_str()]);
    assert_eq!(code, Some(0), "the copy verifies:\n{out}");
    assert!(copy.join("unverified").join(&body).is_file());
    assert!(!copy.join(&body).exists(), "left out of the analysis");
    let journal = std::fs::read_to_string(copy.join("journal.jsonl")).unwrap();
    let entry = journal
        .lines()
        .find(|l| l.contains(r#""event":"copy""#))
        .expect("a copy entry");
    assert!(entry.contains(&body) && entry.contains(r#""source_verified":false"#));
    let report = std::fs::read_to_string(copy.join("report.md")).unwrap();
    assert!(
        report.contains("did NOT match its seal") && report.contains(&body),
        "the report says which files did not match"
    );
    assert!(snapshot(&dir, false) == before, "the source is only read");
}

#[test]
fn resume_leaves_a_complete_bundle_alone_and_refuses_a_tampered_one() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let d = dir.as_os_str();
    let before = snapshot(&dir, true);
    let (code, out, err) = run(&["resume".as_ref(), d]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("is complete"), "{out}");
    assert!(
        snapshot(&dir, true) == before,
        "a complete bundle is not touched"
    );

    // A row added to a CSV, a raw response deleted: refused, named, untouched.
    let mut csv = std::fs::read(dir.join("orders.csv")).unwrap();
    csv.extend_from_slice(b"upbit,x,order,forged\n");
    std::fs::write(dir.join("orders.csv"), csv).unwrap();
    let gone = format!("raw/{}", raw_bodies(&dir)[0]);
    std::fs::remove_file(dir.join(&gone)).unwrap();
    let before = snapshot(&dir, true);
    let (code, _, err) = run(&["resume".as_ref(), d]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("changed   orders.csv"), "{err}");
    assert!(err.contains(&format!("missing   {gone}")), "{err}");
    assert!(
        snapshot(&dir, true) == before,
        "a refused resume wrote something"
    );
    let (code, _, _) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
    assert_eq!(code, Some(3));
}

#[test]
fn resume_finishes_a_seal_cut_off_between_its_two_files() {
    // Killed after SHA256SUMS was written and before manifest.json: the resume must not call
    // the bundle complete while `evidence verify` fails; it finishes the seal, no key needed.
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let d = dir.as_os_str();
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let (code, _, _) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
    assert_eq!(
        code,
        Some(3),
        "a bundle without manifest.json does not verify"
    );
    let sums = std::fs::read(dir.join("SHA256SUMS")).unwrap();
    let (code, out, err) = run(&["resume".as_ref(), d]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("finished its seal"), "{out}");
    assert!(dir.join("manifest.json").is_file());
    assert_eq!(
        std::fs::read(dir.join("SHA256SUMS")).unwrap(),
        sums,
        "the files SHA256SUMS vouched for are sealed as they were"
    );
    let (code, out, err) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
    assert_eq!(code, Some(0), "{out}\n{err}");

    // Cut off the same way, but a file changed since: refused, nothing written.
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let mut csv = std::fs::read(dir.join("orders.csv")).unwrap();
    csv.extend_from_slice(b"upbit,x,order,forged\n");
    std::fs::write(dir.join("orders.csv"), csv).unwrap();
    let (code, _, err) = run(&["resume".as_ref(), d]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("orders.csv"), "{err}");
    assert!(
        !dir.join("manifest.json").exists(),
        "a refused resume sealed over a change"
    );
}

#[test]
fn a_bundle_analyze_reopened_and_left_unsealed_keeps_its_export_as_sealed() {
    // `analyze` reopened the sealed bundle (its journal entry first) and was cut off before
    // sealing again. It rewrites only the report files: a changed export file is tampering,
    // and resume refuses to seal over it; a half-written report is what resume rewrites.
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let d = dir.as_os_str();
    {
        let (journal, _, _) = respond::engine::journal::Journal::reopen(&dir).unwrap();
        journal
            .record(&respond::engine::events::Event::Reopen(serde_json::json!({
                "by": "analyze",
                "version": env!("CARGO_PKG_VERSION"),
                "verified": true,
            })))
            .unwrap();
    }
    let export = dir.join("export").join("orders.json");
    let original = change_a_digit(&export);
    let (code, _, err) = run(&["resume".as_ref(), d]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("changed   export/orders.json"), "{err}");
    assert!(
        !dir.join("manifest.json").exists() || {
            let (c, _, _) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
            c == Some(3)
        }
    );
    // The export as sealed, a report cut off mid-write: analyzing again rewrites it and seals
    // (a resume would too, with a key; the drill's exchange is gone).
    std::fs::write(&export, &original).unwrap();
    std::fs::write(dir.join("report.md"), b"# cut off").unwrap();
    let (code, out, err) = run(&["analyze".as_ref(), d]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (code, out, err) = run(&["evidence".as_ref(), "verify".as_ref(), d]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_ne!(std::fs::read(dir.join("report.md")).unwrap(), b"# cut off");
}

/// Changes the first digit of the file at `path` (same size, still JSON); returns the bytes
/// it had.
fn change_a_digit(path: &Path) -> Vec<u8> {
    let original = std::fs::read(path).unwrap();
    let mut changed = original.clone();
    let at = changed.iter().position(|b| b.is_ascii_digit()).unwrap();
    changed[at] = if changed[at] == b'9' {
        b'8'
    } else {
        changed[at] + 1
    };
    std::fs::write(path, &changed).unwrap();
    original
}

/// Seals `dir` by hand, as a tool that does not check its journal would.
fn seal_by_hand(dir: &Path) {
    use respond::report::manifest::{sums_line, Manifest, ManifestFile};
    let mut files = Vec::new();
    let mut sums = String::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SHA256SUMS" && n != "manifest.json")
        .collect();
    names.sort();
    for n in names {
        let b = std::fs::read(dir.join(&n)).unwrap();
        let sha = respond::fsutil::sha256_hex(&b);
        sums.push_str(&sums_line(&sha, &n));
        files.push(ManifestFile {
            path: n,
            size: b.len() as u64,
            sha256: sha,
        });
    }
    let m = Manifest {
        format: 1,
        tool: "respond".into(),
        tool_version: "0.1.0".into(),
        files,
        journal_entries: 0,
        journal_last_hash: None,
        sha256sums_sha256: respond::fsutil::sha256_hex(sums.as_bytes()),
    };
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn a_journal_that_is_empty_or_missing_does_not_verify() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("bundle");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("orders.csv"), "order_id\n").unwrap();
    std::fs::write(dir.join("journal.jsonl"), "").unwrap();
    seal_by_hand(&dir);
    let rep = respond::report::verify(&dir).unwrap();
    assert!(!rep.ok, "{rep:?}");
    assert!(
        rep.journal_error.as_deref().unwrap().contains("empty"),
        "{rep:?}"
    );
    let e = respond::report::seal(&dir).unwrap_err().to_string();
    assert!(e.contains("journal.jsonl is empty"), "{e}");

    std::fs::remove_file(dir.join("journal.jsonl")).unwrap();
    seal_by_hand(&dir);
    let rep = respond::report::verify(&dir).unwrap();
    assert!(!rep.ok);
    assert!(rep.journal_error.as_deref().unwrap().contains("missing"));
    assert!(respond::report::seal(&dir).is_err());
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), dir.as_os_str()]);
    assert_eq!(code, Some(3), "{out}");
}

/// `analyze` reopened the sealed bundle and was cut off; a resume then continued the run's
/// steps (its `resume` entry) and was cut off too, after a step had rewritten its own resume
/// state (an export appends to its journal and removes its merged chunk files). That is no
/// tampering: the next resume must not refuse the bundle for it.
#[test]
fn a_resume_after_a_reanalysis_and_a_cut_off_resume_accepts_rewritten_resume_state() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let (j, _, _) = respond::engine::journal::Journal::reopen(&dir).unwrap();
    j.append(
        "reopen",
        serde_json::json!({"by": "analyze", "verified": true}),
    )
    .unwrap();
    j.append("resume", serde_json::json!({"replay": []}))
        .unwrap();
    drop(j);
    let state = dir.join("export-export-state.jsonl");
    let text = std::fs::read_to_string(&state).unwrap();
    let last = text.lines().last().unwrap().to_string();
    std::fs::write(&state, format!("{text}{last}\n")).unwrap();
    let r = Respond::new()
        .args(["resume", "--api-url", "http://127.0.0.1:9"])
        .arg(&dir)
        .env("UPBIT_ACCESS_KEY", "A".repeat(40))
        .env("UPBIT_SECRET_KEY", "B".repeat(40))
        .run();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), dir.as_os_str()]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_resume_after_an_interrupted_reanalysis_rewrites_the_reports_before_sealing() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let report = std::fs::read(dir.join("report.md")).unwrap();
    // `respond analyze` opened the sealed bundle and was killed while rewriting the reports.
    let (j, _, _) = respond::engine::journal::Journal::reopen(&dir).unwrap();
    j.append(
        "reopen",
        serde_json::json!({"by": "analyze", "verified": true}),
    )
    .unwrap();
    drop(j);
    std::fs::write(dir.join("report.md"), &report[..report.len() / 2]).unwrap();
    Respond::new()
        .args(["resume", "--api-url", "http://127.0.0.1:9"])
        .arg(&dir)
        .env("UPBIT_ACCESS_KEY", "A".repeat(40))
        .env("UPBIT_SECRET_KEY", "B".repeat(40))
        .run()
        .success();
    let rebuilt = std::fs::read(dir.join("report.md")).unwrap();
    assert!(
        rebuilt.len() > report.len() / 2 + 100,
        "the half-written report was sealed instead of rebuilt"
    );
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), dir.as_os_str()]);
    assert_eq!(code, Some(0), "{out}");
    // What it holds is what a fresh analysis of the same evidence gives.
    let copy = t.path().join("copy").join(dir.file_name().unwrap());
    copy_tree(&dir, &copy);
    let (code, _, err) = run(&["analyze".as_ref(), copy.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::read(copy.join("report.md")).unwrap() == rebuilt);
    assert_eq!(read_all(&copy, CSVS), read_all(&dir, CSVS));
}

/// `analyze --out` reads each bot log once and reuses that parse for the import and the
/// analysis. A log added to a bundle that already holds one is the bundle's second log: the
/// copy's reports name its rows as that log's, exactly as a fresh pass over the copy (which
/// parses every log from `bot/`) does.
/// The first bot log a drill's bundle imported.
fn imported_bot_log(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("bot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("the drill imported a bot log")
}

/// `respond --json analyze DIR --bot-log LATER --out RE`, which must exit 0: its JSON line.
fn analyze_into_a_copy(dir: &Path, later: &Path, re: &Path) -> serde_json::Value {
    let (code, out, err) = run(&[
        "--json".as_ref(),
        "analyze".as_ref(),
        dir.as_os_str(),
        "--bot-log".as_ref(),
        later.as_os_str(),
        "--out".as_ref(),
        re.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_bot_log_added_by_a_copy_is_analyzed_as_a_fresh_pass_reads_it() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let first = imported_bot_log(&dir);
    // The same rows again, as a log found later.
    let later = t.path().join("later.csv");
    std::fs::copy(&first, &later).unwrap();
    let v = analyze_into_a_copy(&dir, &later, &t.path().join("re"));
    let copy = PathBuf::from(v["dir"].as_str().unwrap());
    let analysis = std::fs::read_to_string(copy.join("analysis.json")).unwrap();
    assert!(analysis.contains("bot/2-later.csv"), "{analysis}");
    let csvs = read_all(&copy, CSVS);
    let reports = read_all(&copy, REPORTS);
    let (code, _, err) = run(&["analyze".as_ref(), copy.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        read_all(&copy, CSVS) == csvs,
        "the CSVs of a fresh pass differ"
    );
    assert!(
        read_all(&copy, REPORTS) == reports,
        "the reports of a fresh pass differ"
    );
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), copy.as_os_str()]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_copy_seals_the_bot_log_bytes_it_holds_not_the_hash_the_source_recorded() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let first = imported_bot_log(&dir);
    let name = format!("bot/{}", first.file_name().unwrap().to_string_lossy());
    // The imported bot log changes after the seal (same size); a later log is added by a copy.
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes.len() - 2;
    bytes[at] ^= 0x01;
    std::fs::write(&first, &bytes).unwrap();
    let later = t.path().join("later.csv");
    std::fs::copy(&first, &later).unwrap();
    let v = analyze_into_a_copy(&dir, &later, &t.path().join("re"));
    assert!(
        v["source_mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains(&name)),
        "{v}"
    );
    // The new bundle's seal is of the bytes it holds: it verifies at once.
    let copy = PathBuf::from(v["dir"].as_str().unwrap());
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), copy.as_os_str()]);
    assert_eq!(code, Some(0), "the copy verifies:\n{out}");
}

/// The new bundles `respond analyze --out re` made under `re`.
fn bundles_in(re: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(re)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Nothing is left under `re` (if it exists at all) that a later command could take for a run.
fn assert_no_bundle_in(re: &Path) {
    let left = if re.exists() {
        bundles_in(re)
    } else {
        Vec::new()
    };
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `export/` is copied beside the analysis, and the source's check waits for its hashes: an
/// export file changed after the seal is still a source mismatch, in the copy's journal entry,
/// its JSON summary and its report's notes, exactly once, and the copy verifies.
#[test]
fn a_changed_export_file_is_a_source_mismatch_of_a_copy() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let export = dir.join("export").join("orders.json");
    change_a_digit(&export);
    let bytes = std::fs::read(&export).unwrap();
    let before = snapshot(&dir, false);
    let re = t.path().join("re");
    let (code, out, err) = run(&[
        "--json".as_ref(),
        "analyze".as_ref(),
        dir.as_os_str(),
        "--out".as_ref(),
        re.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mismatches = v["source_mismatches"].as_array().unwrap();
    assert!(
        mismatches.iter().any(|m| m
            .as_str()
            .unwrap()
            .starts_with("changed   export/orders.json")),
        "{v}"
    );
    let copy = PathBuf::from(v["dir"].as_str().unwrap());
    assert_eq!(bundles_in(&re), vec![copy.clone()], "one new bundle");
    let journal = std::fs::read_to_string(copy.join("journal.jsonl")).unwrap();
    let copies: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains(r#""event":"copy""#))
        .collect();
    assert_eq!(copies.len(), 1, "{journal}");
    assert!(
        copies[0].contains("export/orders.json")
            && copies[0].contains(r#""source_verified":false"#)
    );
    let report = std::fs::read_to_string(copy.join("report.md")).unwrap();
    assert!(
        report.contains("did NOT match its seal") && report.contains("export/orders.json"),
        "the report says which files did not match"
    );
    assert_eq!(
        std::fs::read(copy.join("export/orders.json")).unwrap(),
        bytes
    );
    let (code, out, _) = run(&["evidence".as_ref(), "verify".as_ref(), copy.as_os_str()]);
    assert_eq!(code, Some(0), "the copy verifies:\n{out}");
    assert!(snapshot(&dir, false) == before, "the source is only read");
}

/// An export file that cannot be copied (here: larger than the process may write) fails the
/// analysis, naming it, and leaves no sealed bundle behind.
#[test]
fn an_export_file_that_cannot_be_copied_leaves_no_sealed_bundle() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let export = dir.join("export").join("orders.json");
    let mut bytes = std::fs::read(&export).unwrap();
    bytes.resize(bytes.len() + (8 << 20), b' ');
    std::fs::write(&export, &bytes).unwrap();
    let re = t.path().join("re");
    // A file-size limit of 2 or 4 MiB (512- or 1024-byte blocks), writes past it refused.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 4096; exec "$@""#)
        .arg("sh")
        .arg(crate::support::respond::BIN)
        .arg("analyze")
        .arg(&dir)
        .arg("--out")
        .arg(&re)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("export/orders.json"), "{err}");
    // Nothing is left that a later command could take for a run (and seal in place).
    assert_no_bundle_in(&re);
}

/// A bot log refused with `--out` (parsed while the source is copied) is the error, with its
/// line, and the new bundle copied meanwhile is removed: nothing is left under `--out`, and
/// the source is only read.
#[test]
fn a_refused_bot_log_with_out_leaves_no_bundle() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let before = snapshot(&dir, false);
    let bad = t.path().join("bad.csv");
    std::fs::write(&bad, "order_id,identifier,market,side,ord_type,created_at,price,volume\nabc,,KRW-BTC,sideways,limit,notatime,1,1\n").unwrap();
    let re = t.path().join("re");
    let (code, _, err) = run(&[
        "analyze".as_ref(),
        dir.as_os_str(),
        "--bot-log".as_ref(),
        bad.as_os_str(),
        "--out".as_ref(),
        re.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.csv:2"), "{err}");
    assert_no_bundle_in(&re);
    assert!(snapshot(&dir, false) == before, "the source is only read");
}

/// What a copy killed while its `export/` was copied leaves (a journal, no seal, the
/// `COPY-UNFINISHED` marker) is no run: `analyze` in place refuses it (exit 3), seals nothing.
#[test]
fn an_unfinished_copy_left_by_a_crash_is_refused_in_place() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    for seal in ["SHA256SUMS", "manifest.json"] {
        std::fs::remove_file(dir.join(seal)).unwrap();
    }
    std::fs::write(dir.join("COPY-UNFINISHED"), b"x\n").unwrap();
    let (code, _, err) = run(&["analyze".as_ref(), dir.as_os_str()]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("COPY-UNFINISHED"), "{err}");
    assert!(!dir.join("SHA256SUMS").exists());
}

/// A source whose `manifest.json` is a FIFO (or anything but a regular file) is a source
/// mismatch of the copy, never read: `analyze --out` does not block opening it.
#[test]
fn a_source_manifest_that_is_a_fifo_is_a_mismatch_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    let dir = drill(t.path());
    let manifest = dir.join("manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(made.success());
    let re = t.path().join("re");
    let mut child = std::process::Command::new(crate::support::respond::BIN)
        .arg("--json")
        .arg("analyze")
        .arg(&dir)
        .arg("--out")
        .arg(&re)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A guard only (an old build blocks forever opening the FIFO), no timing assert.
    let mut waited = 0;
    while child.try_wait().unwrap().is_none() && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("analyze --out blocked on a source manifest.json that is a FIFO");
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("manifest.json is not a regular file"),
        "{stdout}"
    );
}
