//! Trusted timestamps (RFC 3161) of a sealed bundle: proof from a time-stamping authority
//! (TSA) that the evidence existed at a given time, before any claim.
//!
//! `respond evidence timestamp RUN_DIR --tsa URL` asks the authority to sign the SHA-256 of
//! `manifest.json` (which holds every file's hash and the journal's last hash, so it stands
//! for the whole bundle). The answer is kept under `timestamps/<n>/`:
//!
//! - `manifest.json`: the manifest exactly as the token stamped it;
//! - `response.tsr`: the authority's answer verbatim (a DER `TimeStampResp`; `openssl ts
//!   -verify -in response.tsr -digest <sha256 of manifest.json> -CAfile <TSA CA>` reads it);
//! - `tsa.json`: where it was asked, when, and the request's nonce.
//!
//! The command then writes the reports again (they name the authority and the time) and seals
//! the bundle again, so `SHA256SUMS` lists these files like any other and `sha256sum -c`
//! covers them. The token does not cover the new seal; it covers the copy of the manifest it
//! stamped, and [`check_all`] relates that copy to the bundle as it is now: every file the
//! stamped manifest lists must still have its hash, except the files a later seal rewrites
//! from the evidence ([`derived`]: the reports, CSVs and JSON summaries, the checklist, the
//! drill's scorecard), which are listed as rewritten, and the journal, which may only have
//! grown (the stamped manifest's last entry must still be in its chain).

pub mod der;
pub mod token;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::report::manifest::Manifest;

/// Where the timestamps live in a bundle.
pub const DIR: &str = "timestamps";
/// The files of one timestamp, under `timestamps/<n>/`.
pub const MANIFEST_COPY: &str = "manifest.json";
pub const RESPONSE: &str = "response.tsr";
pub const RECORD: &str = "tsa.json";

/// One trusted timestamp of the bundle, as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampInfo {
    /// The authority's answer, relative to the bundle (`timestamps/1/response.tsr`).
    pub token_file: String,
    /// The manifest it covers (`timestamps/1/manifest.json`) and that file's SHA-256.
    pub manifest_file: String,
    pub manifest_sha256: String,
    /// The time-stamping authority: its certificate's subject.
    pub tsa: String,
    /// Where the token was requested, when recorded.
    pub tsa_url: Option<String>,
    /// The time the authority stated (`genTime`).
    pub gen_time: DateTime<Utc>,
    /// The token's serial number (hex) and policy (dotted OID).
    pub serial: String,
    pub policy: String,
}

/// `tsa.json`: how a timestamp was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TsaRecord {
    pub tsa_url: String,
    /// The request's nonce (hex): the token must carry it.
    pub nonce: String,
    /// When the request was sent (our clock, UTC).
    pub requested_at: String,
}

/// Files a seal made after a timestamp may have rewritten from the evidence: the report
/// writers' outputs, the checklist, the drill's scorecard and the list of bot logs.
pub fn derived(path: &str) -> bool {
    crate::report::BUNDLE_FILES.contains(&path)
        || matches!(
            path,
            "checklist.md" | "drill_report.json" | "drill_report.md" | "bot_logs.json"
        )
}

/// The timestamp directories of the bundle, by number.
fn entries(run_dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(run_dir.join(DIR))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n: u32 = e.file_name().to_str()?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The number the next timestamp gets.
pub fn next_index(run_dir: &Path) -> u32 {
    entries(run_dir).last().map_or(1, |(n, _)| n + 1)
}

/// One timestamp of the bundle, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub info: TimestampInfo,
    pub verified: token::Verified,
    /// Files a later seal rewrote from the evidence since the stamp (allowed).
    pub rewritten: Vec<String>,
}

impl Checked {
    /// What `evidence verify` prints for it.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}: signed by {} at {} over {} (SHA-256 {}); the signer's certificate has SHA-256 {}",
            self.info.token_file,
            self.info.tsa,
            crate::time::ts(self.info.gen_time),
            self.info.manifest_file,
            self.info.manifest_sha256,
            self.verified.signer_sha256,
        );
        if !self.rewritten.is_empty() {
            line.push_str(&format!(
                "; rewritten from the evidence since: {}",
                self.rewritten.join(", ")
            ));
        }
        line
    }
}

/// Reads and verifies timestamp `n` against its own manifest copy (not yet against the rest
/// of the bundle).
fn read_one(n: u32, dir: &Path) -> Result<(TimestampInfo, token::Verified, Manifest), String> {
    let rel = |f: &str| format!("{DIR}/{n}/{f}");
    // Each file is read only when it is a regular file, and at most as much as a seal file.
    let read = |f: &str| {
        let path = dir.join(f);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(format!("{}: not a regular file", rel(f))),
            Err(e) => return Err(format!("{}: cannot read it ({e})", rel(f))),
        }
        match crate::report::verify::read_bounded(&path) {
            Ok(crate::report::verify::Bounded::Bytes(b)) => Ok(b),
            Ok(crate::report::verify::Bounded::TooLarge(n)) => {
                Err(format!("{}: too large ({n} bytes), not read", rel(f)))
            }
            Err(e) => Err(format!("{}: cannot read it ({e})", rel(f))),
        }
    };
    let manifest_bytes = read(MANIFEST_COPY)?;
    let response = read(RESPONSE)?;
    let record: Option<TsaRecord> = read(RECORD)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let nonce = record.as_ref().and_then(|r| hex::decode(&r.nonce).ok());
    let sha = ring::digest::digest(&ring::digest::SHA256, &manifest_bytes);
    let verified = token::verify_response(&response, sha.as_ref(), nonce.as_deref())
        .map_err(|e| format!("{}: {e}", rel(RESPONSE)))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("{}: not a manifest ({e})", rel(MANIFEST_COPY)))?;
    Ok((
        TimestampInfo {
            token_file: rel(RESPONSE),
            manifest_file: rel(MANIFEST_COPY),
            manifest_sha256: hex::encode(sha.as_ref()),
            tsa: verified.signer.clone(),
            tsa_url: record.map(|r| r.tsa_url),
            gen_time: verified.gen_time,
            serial: verified.serial.clone(),
            policy: verified.policy.clone(),
        },
        verified,
        manifest,
    ))
}

/// Every timestamp whose token verifies against the manifest it stamped, oldest first: what
/// the reports name. (`evidence verify` checks them against the bundle with [`check_all`].)
pub fn read_all(run_dir: &Path) -> Vec<TimestampInfo> {
    entries(run_dir)
        .into_iter()
        .filter_map(|(n, dir)| read_one(n, &dir).ok().map(|(info, _, _)| info))
        .collect()
}

/// Checks every timestamp of the bundle at `run_dir` offline: its token (signature, imprint,
/// nonce), and the files its manifest lists against `listed` (the bundle's `SHA256SUMS`: path
/// → hash) and `journal_hashes` (every entry hash of the current journal). Returns the
/// timestamps that hold and one line per problem.
pub fn check_all(
    run_dir: &Path,
    listed: &BTreeMap<String, String>,
    journal_hashes: &[String],
) -> (Vec<Checked>, Vec<String>) {
    let (mut ok, mut problems) = (Vec::new(), Vec::new());
    for (n, dir) in entries(run_dir) {
        let (info, verified, manifest) = match read_one(n, &dir) {
            Ok(x) => x,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let mut rewritten = Vec::new();
        let mut bad = Vec::new();
        for f in &manifest.files {
            match listed.get(&f.path) {
                Some(h) if *h == f.sha256 => {}
                _ if derived(&f.path) => rewritten.push(f.path.clone()),
                // The journal is checked by its chain below.
                _ if f.path == crate::engine::journal::FILE_NAME => {}
                Some(_) => bad.push(format!("{} changed", f.path)),
                None => bad.push(format!("{} is gone", f.path)),
            }
        }
        if let Some(last) = &manifest.journal_last_hash {
            if !journal_hashes.contains(last) {
                bad.push("journal.jsonl no longer holds the entries it had".into());
            }
        }
        if bad.is_empty() {
            ok.push(Checked {
                info,
                verified,
                rewritten,
            });
        } else {
            problems.push(format!(
                "{}: since it was stamped at {}: {}",
                info.token_file,
                crate::time::ts(info.gen_time),
                bad.join("; ")
            ));
        }
    }
    (ok, problems)
}

/// Stores a granted answer as timestamp number `n` and returns the files written (relative).
pub fn store(
    rundir: &crate::rundir::RunDir,
    n: u32,
    manifest: &[u8],
    response: &[u8],
    record: &TsaRecord,
) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let record = serde_json::to_vec_pretty(record).expect("a record serializes");
    for (name, bytes) in [
        (MANIFEST_COPY, manifest),
        (RESPONSE, response),
        (RECORD, record.as_slice()),
    ] {
        let rel = format!("{DIR}/{n}/{name}");
        rundir.write(&rel, bytes)?;
        out.push(rel);
    }
    Ok(out)
}

/// The SHA-256 of `manifest.json` of the bundle, and its bytes.
pub fn manifest_hash(run_dir: &Path) -> std::io::Result<([u8; 32], Vec<u8>)> {
    let bytes = std::fs::read(run_dir.join(crate::report::manifest::MANIFEST_FILE))?;
    let mut h = [0u8; 32];
    h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    Ok((h, bytes))
}
