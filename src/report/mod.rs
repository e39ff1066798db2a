//! The evidence bundle: CSVs, JSON facts, the readable reports, the support ticket, the
//! SHA-256 manifest and its verification.
//!
//! Writers read only [`RunFacts`] (stamped by the engine), the [`AnalysisInput`] and the
//! [`AnalysisResult`]: never the clock, never a `HashMap`, so identical inputs give
//! byte-identical files (`respond analyze` relies on it). All untrusted text passes through
//! [`sanitize`] before it reaches any format; templates are fixed files embedded in the binary,
//! and data is only ever substituted into them, never parsed as a template.
//!
//! [`write_bundle`] writes the report files; [`manifest::seal`] then hashes the whole
//! directory and must be the last write of a run; [`verify::verify`] checks a sealed bundle.

pub mod csv;
pub mod facts;
pub mod format;
pub mod html;
pub mod joined;
pub mod json;
pub mod manifest;
pub mod markdown;
pub mod sanitize;
pub mod ticket;
pub mod timeline;
pub mod timestamp;
pub mod verify;
pub mod view;

use std::path::PathBuf;

use crate::analysis::{AnalysisInput, AnalysisResult};
use crate::rundir::RunDir;

pub use facts::{Revocation, RunFacts, StepRecord, StepStatus};
pub use manifest::{seal, Manifest};
pub use verify::{verify, VerifyReport};

/// Options of the bundle writers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// Write CSVs with a UTF-8 byte-order mark, so Excel reads non-ASCII text correctly.
    /// [`write_bundle`] turns it on by itself for an exchange whose home language is not
    /// English.
    pub excel: bool,
}

/// Errors of the report writers, the manifest and verification.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CSV error in {file}: {message}")]
    Csv { file: String, message: String },
    #[error(
        "template {template} failed: {message} (this is a bug in respond; the CSVs are complete)"
    )]
    Template { template: String, message: String },
    #[error("{path} is a symlink; the bundle must contain only regular files (remove it, or restore the bundle from a copy)")]
    Symlink { path: PathBuf },
    #[error("{path}: file name cannot be listed in SHA256SUMS ({reason})")]
    BadFileName { path: PathBuf, reason: String },
    #[error("{path} is not an evidence bundle: {reason}")]
    NotABundle { path: PathBuf, reason: String },
    #[error("the journal does not verify, refusing to seal the bundle: {0}")]
    Journal(#[from] crate::engine::journal::JournalError),
    #[error("refusing to seal the bundle: {reason}")]
    NoJournal { reason: String },
    #[error("refusing to seal the bundle: raw responses no longer match their sidecars:\n  {}", .problems.join("\n  "))]
    RawMismatch { problems: Vec<String> },
    #[error("the analysis holds {verdicts} verdicts for {orders} orders (this is a bug in respond; raw/ and the journal are intact, `respond analyze RUN_DIR` re-runs it)")]
    Misaligned { verdicts: usize, orders: usize },
}

/// Every file [`write_bundle`] writes, relative to the run directory, in writing order: all a
/// command that reopens a sealed bundle to analyze it again may change (besides the bot-log
/// record and the journal; see [`verify::preflight`]).
pub const BUNDLE_FILES: &[&str] = &[
    "unauthorized_trades.csv",
    "orders.csv",
    "fills.csv",
    "withdrawals.csv",
    "deposits.csv",
    "balances.csv",
    "keys.json",
    "analysis.json",
    "report.md",
    "report.html",
    "support_ticket.md",
];

/// Writes the report files of the bundle into `rundir` (see [`BUNDLE_FILES`]) and returns
/// their relative paths. Does not seal: call [`manifest::seal`] after the last write.
pub fn write_bundle(
    rundir: &RunDir,
    facts: &RunFacts,
    input: &AnalysisInput,
    result: &AnalysisResult,
    opts: &ReportOptions,
) -> Result<Vec<String>, ReportError> {
    write_bundle_into(
        rundir,
        facts,
        input,
        result,
        opts,
        &mut manifest::Written::default(),
    )
}

/// [`write_bundle`], recording in `hashed` each CSV with the SHA-256 of the bytes written
/// (taken as they were written), so the seal need not read a million rows back.
pub fn write_bundle_into(
    rundir: &RunDir,
    facts: &RunFacts,
    input: &AnalysisInput,
    result: &AnalysisResult,
    opts: &ReportOptions,
    hashed: &mut manifest::Written,
) -> Result<Vec<String>, ReportError> {
    if !result.verdicts.is_empty() && result.verdicts.len() != input.orders.len() {
        return Err(ReportError::Misaligned {
            verdicts: result.verdicts.len(),
            orders: input.orders.len(),
        });
    }
    let joined = joined::Joined::new(input, result);
    // Excel in a non-English locale reads a CSV without a byte-order mark in its legacy code
    // page: the mark is the default there.
    let opts = &ReportOptions {
        excel: opts.excel || joined.language().is_some_and(|l| l != "en"),
    };
    let mut written: Vec<String> = Vec::with_capacity(BUNDLE_FILES.len());
    // The CSVs go to their files as they are made (a million orders are never one buffer),
    // each atomically: a temp file put in place once complete.
    let mut sheet = |rel: &str,
                     make: &mut dyn FnMut(&mut dyn csv::Sink) -> Result<(), ReportError>|
     -> Result<String, ReportError> {
        debug_assert!(BUNDLE_FILES.contains(&rel), "{rel} not in BUNDLE_FILES");
        let write_err = |source| ReportError::Write {
            path: rel.to_string(),
            source,
        };
        let mut out = rundir.write_pieces(rel).map_err(write_err)?;
        make(&mut out)?;
        let sha = out.commit_hashed().map_err(write_err)?;
        let abs = rundir.join(rel).map_err(write_err)?;
        hashed.add(rel, &abs, sha.clone()).map_err(write_err)?;
        written.push(rel.to_string());
        Ok(sha)
    };
    let unauthorized_sha = sheet("unauthorized_trades.csv", &mut |o| {
        csv::unauthorized_trades(&joined, opts, o)
    })?;
    // The readable reports are rendered (in memory: they are small) while the sheets are
    // written, and written after them.
    let render = || -> Result<Vec<(String, Vec<u8>)>, ReportError> {
        let report = view::build(facts, &joined, &unauthorized_sha);
        Ok(vec![
            ("keys.json".into(), json::keys_json(facts, input, result)),
            ("analysis.json".into(), json::analysis_json(facts, &joined)),
            ("report.md".into(), markdown::render(&report)?.into_bytes()),
            ("report.html".into(), html::render(&report)?.into_bytes()),
            (
                "support_ticket.md".into(),
                ticket::render(&report)?.into_bytes(),
            ),
        ])
    };
    let (sheets, files) = std::thread::scope(|scope| {
        let rendering = scope.spawn(render);
        let sheets = (|| {
            sheet("orders.csv", &mut |o| csv::orders(&joined, opts, o))?;
            sheet("fills.csv", &mut |o| csv::fills(&joined, opts, o))?;
            sheet("withdrawals.csv", &mut |o| {
                csv::transfers(&joined, &input.withdrawals, "withdrawals.csv", opts, o)
            })?;
            sheet("deposits.csv", &mut |o| {
                csv::transfers(&joined, &input.deposits, "deposits.csv", opts, o)
            })?;
            sheet("balances.csv", &mut |o| csv::balances(input, opts, o))
        })();
        let files = rendering
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (sheets, files)
    });
    sheets?;
    let files = files?;
    for (rel, bytes) in files {
        debug_assert!(
            BUNDLE_FILES.contains(&rel.as_str()),
            "{rel} not in BUNDLE_FILES"
        );
        rundir
            .write(&rel, &bytes)
            .map_err(|source| ReportError::Write {
                path: rel.clone(),
                source,
            })?;
        written.push(rel);
    }
    Ok(written)
}
