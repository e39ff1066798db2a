//! `respond evidence verify`: is this bundle exactly what was sealed?
//!
//! Checks every line of `SHA256SUMS` against the file on disk (changed, missing), lists every
//! file not covered by it (extra: nothing is ignored but `SHA256SUMS`, `manifest.json` and
//! the run's lock file), checks `manifest.json` against `SHA256SUMS` and the journal, and verifies the
//! journal's hash chain with [`crate::engine::journal::verify_chain`]. A path in
//! `SHA256SUMS` that would leave the bundle, or a symlink, is a problem, never followed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::engine::journal;
use crate::fsutil;
use crate::report::manifest::{
    hash_file, outside_seal, parse_sums_line, walk, FoundKind, Manifest, MANIFEST_FILE, SUMS_FILE,
};
use crate::report::ReportError;

/// The outcome of verifying one bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// True when nothing below is wrong.
    pub ok: bool,
    /// Files listed in SHA256SUMS whose hash was checked (present and regular).
    pub checked: usize,
    /// Files whose content no longer matches SHA256SUMS.
    pub changed: Vec<ChangedFile>,
    /// Files listed in SHA256SUMS that are gone.
    pub missing: Vec<String>,
    /// Files in the bundle that SHA256SUMS does not list.
    pub extra: Vec<String>,
    /// Problems with SHA256SUMS itself or manifest.json (unreadable lines, disagreement).
    pub manifest_problems: Vec<String>,
    /// Entries of journal.jsonl whose chain verified (0 when it did not).
    pub journal_entries: usize,
    /// Why the journal does not verify.
    pub journal_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    pub path: String,
    pub expected: String,
    /// The hash found, or what is wrong (`symlink`, `not a regular file`).
    pub found: String,
}

/// Verifies the bundle at `run_dir`. `Err` only when it is not a bundle at all (no directory,
/// no `SHA256SUMS`); every mismatch is reported in the [`VerifyReport`].
pub fn verify(run_dir: &Path) -> Result<VerifyReport, ReportError> {
    let not_bundle = |reason: &str| ReportError::NotABundle {
        path: run_dir.to_path_buf(),
        reason: reason.into(),
    };
    match std::fs::symlink_metadata(run_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() => {
            return Err(not_bundle(
                "it is a symlink; pass the bundle directory itself",
            ))
        }
        Ok(_) => return Err(not_bundle("not a directory")),
        Err(e) => return Err(not_bundle(&format!("cannot open it ({e})"))),
    }
    let sums_path = run_dir.join(SUMS_FILE);
    match std::fs::symlink_metadata(&sums_path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(not_bundle("SHA256SUMS is not a regular file")),
        Err(_) => {
            return Err(not_bundle(
                "it has no SHA256SUMS (was the run finished and sealed?)",
            ))
        }
    }
    let sums_bytes = std::fs::read(&sums_path).map_err(|source| ReportError::Read {
        path: sums_path.clone(),
        source,
    })?;
    let mut rep = VerifyReport::default();
    let sums_text = match String::from_utf8(sums_bytes.clone()) {
        Ok(s) => s,
        Err(_) => {
            rep.manifest_problems
                .push("SHA256SUMS is not valid UTF-8".into());
            String::from_utf8_lossy(&sums_bytes).into_owned()
        }
    };

    // Listed files: path → expected hash.
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    for (i, line) in sums_text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        match parse_sums_line(line) {
            Some((hex, path)) => {
                if listed.insert(path.clone(), hex).is_some() {
                    rep.manifest_problems
                        .push(format!("SHA256SUMS line {}: {path} is listed twice", i + 1));
                }
            }
            None => rep
                .manifest_problems
                .push(format!("SHA256SUMS line {}: not `<sha256>  <path>`", i + 1)),
        }
    }

    for (path, expected) in &listed {
        let abs = match fsutil::safe_join(run_dir, path) {
            Ok(p) => p,
            Err(_) => {
                rep.manifest_problems.push(format!(
                    "SHA256SUMS lists {path:?}, which is outside the bundle"
                ));
                continue;
            }
        };
        match std::fs::symlink_metadata(&abs) {
            Err(_) => rep.missing.push(path.clone()),
            Ok(m) if m.file_type().is_symlink() => rep.changed.push(ChangedFile {
                path: path.clone(),
                expected: expected.clone(),
                found: "a symlink (not followed)".into(),
            }),
            Ok(m) if !m.is_file() => rep.changed.push(ChangedFile {
                path: path.clone(),
                expected: expected.clone(),
                found: "not a regular file".into(),
            }),
            Ok(_) => {
                let (_, found) = hash_file(&abs)?;
                rep.checked += 1;
                if &found != expected {
                    rep.changed.push(ChangedFile {
                        path: path.clone(),
                        expected: expected.clone(),
                        found,
                    });
                }
            }
        }
    }

    for f in walk(run_dir)? {
        if outside_seal(&f.rel, &f.kind) || listed.contains_key(&f.rel) {
            continue;
        }
        rep.extra.push(match f.kind {
            FoundKind::File => f.rel,
            FoundKind::Symlink => format!("{} (symlink)", f.rel),
            FoundKind::Other => format!("{} (not a regular file)", f.rel),
        });
    }

    // The journal chain.
    let jpath = run_dir.join(journal::FILE_NAME);
    let mut journal_last: Option<String> = None;
    if std::fs::symlink_metadata(&jpath).is_err() {
        rep.journal_error = Some("journal.jsonl is missing from the bundle".into());
    } else {
        match journal::verify_chain(&jpath) {
            Ok(entries) => {
                rep.journal_entries = entries.len();
                journal_last = entries.last().map(|e| e.hash.clone());
            }
            Err(e) => rep.journal_error = Some(e.to_string()),
        }
    }

    check_manifest(
        run_dir,
        &sums_bytes,
        &listed,
        &journal_last,
        &rep.journal_error,
        &mut rep.manifest_problems,
    );

    rep.ok = rep.changed.is_empty()
        && rep.missing.is_empty()
        && rep.extra.is_empty()
        && rep.manifest_problems.is_empty()
        && rep.journal_error.is_none();
    Ok(rep)
}

fn check_manifest(
    run_dir: &Path,
    sums_bytes: &[u8],
    listed: &BTreeMap<String, String>,
    journal_last: &Option<String>,
    journal_error: &Option<String>,
    problems: &mut Vec<String>,
) {
    let mpath = run_dir.join(MANIFEST_FILE);
    let bytes = match std::fs::symlink_metadata(&mpath) {
        Ok(m) if m.is_file() => match std::fs::read(&mpath) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("manifest.json cannot be read: {e}"));
                return;
            }
        },
        Ok(_) => {
            problems.push("manifest.json is not a regular file".into());
            return;
        }
        Err(_) => {
            problems.push("manifest.json is missing".into());
            return;
        }
    };
    let m: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            problems.push(format!("manifest.json is not a respond manifest: {e}"));
            return;
        }
    };
    if m.sha256sums_sha256 != fsutil::sha256_hex(sums_bytes) {
        problems
            .push("manifest.json records a different SHA256SUMS (SHA256SUMS was edited)".into());
    }
    let in_manifest: BTreeMap<&str, &str> = m
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    for (p, h) in listed {
        match in_manifest.get(p.as_str()) {
            None => problems.push(format!("{p} is in SHA256SUMS but not in manifest.json")),
            Some(mh) if *mh != h.as_str() => problems.push(format!(
                "{p}: manifest.json and SHA256SUMS disagree on its hash"
            )),
            Some(_) => {}
        }
    }
    for p in in_manifest.keys() {
        if !listed.contains_key(*p) {
            problems.push(format!("{p} is in manifest.json but not in SHA256SUMS"));
        }
    }
    if journal_error.is_none() && &m.journal_last_hash != journal_last {
        problems.push(
            "the journal's last entry is not the one manifest.json sealed (entries were added or removed after sealing)"
                .into(),
        );
    }
}
