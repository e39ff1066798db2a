//! `respond evidence verify RUN_DIR`: check a sealed bundle and say, line by line, what does
//! not match (every hash, the journal's chain, each raw response against its sidecar, each
//! trusted timestamp). Exit 0 when everything matches, 3 on any mismatch, 2 when RUN_DIR is
//! not a bundle. File names come from the bundle, so every one is made terminal-safe first.
//!
//! `respond evidence timestamp RUN_DIR --tsa URL`: have a time-stamping authority sign the
//! SHA-256 of the sealed `manifest.json` (RFC 3161, see [`crate::report::timestamp`]). It
//! takes the run's lock, refuses a bundle that does not verify or is not sealed, and writes
//! nothing until the authority's answer verifies (its token stamps this manifest's hash with
//! our nonce, and its signature holds); then it keeps the answer under `timestamps/<n>/`,
//! journals it, writes the reports again (they name the authority and the time) and seals.
//! An authority that cannot be reached leaves the bundle exactly as it was, and its reports
//! keep saying that no trusted timestamp exists yet.

use std::path::Path;

use serde_json::json;

use crate::engine::events::Event;
use crate::engine::journal::Journal;
use crate::exit::{Code, Failure};
use crate::investigation::{self, JournalFacts};
use crate::output::Printer;
use crate::report::sanitize::terminal;
use crate::report::timestamp::{self, token, TsaRecord};
use crate::report::{verify, ReportError};
use crate::rundir::RunDir;
use crate::session;

/// Runs `respond evidence verify`.
pub fn verify_command(run_dir: &Path, printer: &Printer) -> Result<Code, Failure> {
    // A run being written does not match its (old or absent) seal until its writer seals it.
    if let Err(crate::rundir::LockError::Busy { .. }) = crate::rundir::RunLock::shared(run_dir) {
        printer.warn(&format!(
            "a respond process is writing this run right now: verify {} again when it has finished",
            terminal(&run_dir.display().to_string())
        ));
    }
    let rep = match verify(run_dir) {
        Ok(r) => r,
        Err(e @ ReportError::NotABundle { .. }) => {
            return Err(Failure::usage(terminal(&e.to_string())).with_hint(
                "pass the run directory that holds SHA256SUMS, manifest.json and journal.jsonl",
            ))
        }
        Err(e) => return Err(Failure::run(terminal(&e.to_string()))),
    };
    for line in rep.problem_lines() {
        printer.out(&line);
    }
    for t in &rep.timestamps {
        printer.out(&format!("timestamp {}", terminal(&t.line())));
    }
    let dir = terminal(&run_dir.display().to_string());
    if rep.ok {
        printer.out(&format!(
            "OK: {dir}: {} files match SHA256SUMS, manifest.json agrees, the journal chain of {} entries verifies{}",
            rep.checked,
            rep.journal_entries,
            match rep.timestamps.len() {
                0 => ", no trusted timestamp".to_string(),
                n => format!(", {n} trusted timestamp(s) verify"),
            }
        ));
    } else {
        printer.out(&format!(
            "MISMATCH: {dir}: {} changed, {} missing, {} extra, {} manifest problem(s), {} raw response(s) not matching their sidecar, {} timestamp problem(s), journal {}",
            rep.changed.len(),
            rep.missing.len(),
            rep.extra.len(),
            rep.manifest_problems.len(),
            rep.raw_problems.len(),
            rep.timestamp_problems.len(),
            if rep.journal_error.is_some() {
                "BROKEN"
            } else {
                "ok"
            }
        ));
    }
    printer.summary(&json!({
        "ok": rep.ok,
        "exit_code": if rep.ok { 0 } else { 3 },
        "run_dir": dir,
        "checked": rep.checked,
        "changed": rep.changed,
        "missing": rep.missing,
        "extra": rep.extra,
        "manifest_problems": rep.manifest_problems,
        "journal_entries": rep.journal_entries,
        "journal_error": rep.journal_error,
        "raw_problems": rep.raw_problems,
        "timestamps": rep.timestamps,
        "timestamp_problems": rep.timestamp_problems,
    }));
    Ok(if rep.ok {
        Code::Ok
    } else {
        Code::EvidenceMismatch
    })
}

/// How long the authority may take to answer.
const TSA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest answer accepted (a token with a certificate chain is a few kilobytes).
const MAX_ANSWER: usize = 1 << 20;

/// Runs `respond evidence timestamp`.
pub async fn timestamp_command(
    run_dir: &Path,
    tsa: &str,
    printer: &Printer,
) -> Result<Code, Failure> {
    let url = tsa_url(tsa)?;
    let shown = terminal(&run_dir.display().to_string());
    JournalFacts::read(run_dir)
        .map_err(|e| Failure::usage(format!("{shown} is not a run directory: {e}")))?;
    let _lock = session::lock_run(run_dir)?;
    let pf = session::check_before_writing(run_dir, "evidence timestamp")?;
    if pf.state != crate::report::verify::SealState::Sealed {
        return Err(Failure::usage(format!(
            "{shown} is not sealed: a timestamp would stamp a manifest that does not cover what the run wrote since"
        ))
        .with_hint(format!(
            "finish it first (`respond resume {shown}` or `respond analyze {shown}`), then timestamp it"
        )));
    }
    let (hash, manifest) = timestamp::manifest_hash(run_dir)
        .map_err(|e| Failure::run(format!("{shown}: cannot read manifest.json ({e})")))?;
    let nonce: [u8; 8] = rand::random();
    let request = token::request(&hash, &nonce);
    let requested_at = chrono::Utc::now();
    let nothing_written = format!(
        "nothing was written: {shown} is as it was, and its report still says it has no trusted timestamp"
    );
    let response = post(&url, request)
        .await
        .map_err(|e| Failure::run(e).with_hint(nothing_written.clone()))?;
    let verified = token::verify_response(&response, &hash, Some(&nonce)).map_err(|e| {
        Failure::run(format!(
            "the answer of {} is not accepted: {e}",
            url.as_str()
        ))
        .with_hint(nothing_written.clone())
    })?;

    // From here on the bundle changes: journal, token, reports, seal.
    let facts = JournalFacts::read(run_dir).map_err(Failure::run)?;
    let (thresholds, excel) = investigation::report_settings(&facts).map_err(Failure::usage)?;
    let rundir = RunDir::open(run_dir).map_err(|e| Failure::run(e.to_string()))?;
    let (journal, _, _) = Journal::reopen(run_dir).map_err(|e| Failure::run(e.to_string()))?;
    if let Some(reopen) = session::reopen_entry(&pf, "evidence timestamp") {
        journal
            .record(&Event::Reopen(reopen))
            .map_err(|e| Failure::run(e.to_string()))?;
    }
    let n = timestamp::next_index(run_dir);
    let record = TsaRecord {
        tsa_url: url.to_string(),
        nonce: hex::encode(nonce),
        requested_at: crate::time::ts(requested_at),
    };
    let mut files = timestamp::store(&rundir, n, &manifest, &response, &record)
        .map_err(|e| Failure::run(format!("{shown}: cannot store the timestamp ({e})")))?;
    let rd = rundir.clone();
    let (_, reports) =
        tokio::task::spawn_blocking(move || investigation::write_reports(&rd, &thresholds, excel))
            .await
            .map_err(|e| Failure::run(format!("the reports crashed: {e}")))?
            .map_err(Failure::run)?;
    files.extend(reports);
    journal
        .record(&Event::Timestamp(json!({
            "index": n,
            "tsa_url": record.tsa_url,
            "tsa": verified.signer,
            "gen_time": crate::time::ts(verified.gen_time),
            "serial": verified.serial,
            "manifest_sha256": hex::encode(hash),
            "files": files,
        })))
        .map_err(|e| Failure::run(e.to_string()))?;
    drop(journal);
    session::seal(run_dir)?;

    let token_file = format!("{}/{n}/{}", timestamp::DIR, timestamp::RESPONSE);
    printer.out(&format!(
        "timestamped: {} vouches that manifest.json (SHA-256 {}) existed at {}",
        terminal(&verified.signer),
        hex::encode(hash),
        crate::time::ts(verified.gen_time)
    ));
    printer.out(&format!(
        "token: {token_file} ({}, serial {}); the signer's certificate has SHA-256 {}: compare it with the authority's published certificate",
        verified.signature, verified.serial, verified.signer_sha256
    ));
    if !verified.time_stamping_usage {
        printer.warn("the signer's certificate does not state the time-stamping usage (extended key usage id-kp-timeStamping)");
    }
    printer.out(&format!("evidence: {shown}"));
    printer.summary(&json!({
        "ok": true,
        "run_dir": shown,
        "token_file": token_file,
        "tsa_url": record.tsa_url,
        "timestamp": verified,
    }));
    Ok(Code::Ok)
}

/// The authority's URL: http or https, no credentials (they would be written to the bundle).
fn tsa_url(tsa: &str) -> Result<reqwest::Url, Failure> {
    let url = reqwest::Url::parse(tsa)
        .map_err(|e| Failure::usage(format!("--tsa {}: not a URL ({e})", terminal(tsa))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::usage(format!(
            "--tsa: {} is not an http or https URL",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Failure::usage(
            "--tsa: the URL holds credentials, which would be written into the bundle and its report",
        ));
    }
    Ok(url)
}

/// Sends a `TimeStampReq` and returns the body of the authority's answer.
async fn post(url: &reqwest::Url, request: Vec<u8>) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(TSA_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot set up HTTP: {e}"))?;
    let resp = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
        .header(reqwest::header::ACCEPT, "application/timestamp-reply")
        .body(request)
        .send()
        .await
        .map_err(|e| format!("the time-stamping authority {url} cannot be reached: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "the time-stamping authority {url} answered HTTP {status}"
        ));
    }
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("the answer of {url} was cut off: {e}"))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!(
                "the answer of {url} is larger than {MAX_ANSWER} bytes: not a time-stamp response"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
