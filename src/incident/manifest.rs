//! The incident-level seal: `incident-manifest.json` holds the SHA-256 of the incident's own
//! files (`incident.json`, `incident.md`, `incident.html`) and, per bundle, of its
//! `manifest.json` and `SHA256SUMS`, which in turn seal every file of the bundle.
//! [`verify`] checks all of it: the incident's files, each bundle against its own seal (as
//! `respond evidence verify BUNDLE` does), each bundle's seal against the incident's, and no
//! file the seal does not know.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{self, IncidentRecord};
use crate::fsutil::sha256_hex;

/// The seal's file name.
pub const FILE: &str = "incident-manifest.json";
/// The incident's own files, sealed by name.
pub const OWN_FILES: &[&str] = &[
    record::FILE,
    "incident.md",
    "incident.html",
    super::drill::REPORT_MD,
    super::drill::REPORT_JSON,
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentManifest {
    /// `respond-incident-manifest/1`.
    pub format: String,
    pub sealed_at: String,
    pub files: Vec<SealedFile>,
    pub bundles: Vec<SealedBundle>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedBundle {
    pub label: String,
    pub exchange: String,
    /// Relative to the incident folder.
    pub dir: String,
    pub manifest_sha256: String,
    pub sha256sums_sha256: String,
    /// The bundle's journal as its seal recorded it: entries, and the last entry's hash. A
    /// command that writes into a sealed bundle journals first, so a bundle sealed again
    /// legitimately continues this journal.
    #[serde(default)]
    pub journal_entries: u64,
    #[serde(default)]
    pub journal_last_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn hash_file(path: &Path) -> Result<String, ManifestError> {
    std::fs::read(path)
        .map(|b| sha256_hex(&b))
        .map_err(|source| ManifestError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Writes `incident-manifest.json` over the incident's files and its bundles' seals. A bundle
/// that is not sealed (its run ended before sealing) is left out, and its account says so.
pub fn seal(dir: &Path, record: &IncidentRecord) -> Result<IncidentManifest, ManifestError> {
    let mut files = Vec::new();
    for f in OWN_FILES {
        let p = dir.join(f);
        if p.is_file() {
            files.push(SealedFile {
                path: f.to_string(),
                sha256: hash_file(&p)?,
            });
        }
    }
    let mut bundles = Vec::new();
    for (a, b) in record.bundles(dir) {
        let (m, s) = (b.join("manifest.json"), b.join("SHA256SUMS"));
        if !(m.is_file() && s.is_file()) {
            continue;
        }
        let sealed: Option<crate::report::manifest::Manifest> = std::fs::read(&m)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        bundles.push(SealedBundle {
            label: a.label.clone(),
            exchange: a.exchange.clone(),
            dir: a.bundle.clone().unwrap_or_default(),
            manifest_sha256: hash_file(&m)?,
            sha256sums_sha256: hash_file(&s)?,
            journal_entries: sealed.as_ref().map_or(0, |m| m.journal_entries),
            journal_last_hash: sealed.and_then(|m| m.journal_last_hash),
        });
    }
    let manifest = IncidentManifest {
        format: "respond-incident-manifest/1".into(),
        sealed_at: crate::time::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        files,
        bundles,
    };
    let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    crate::fsutil::write_private(&dir.join(FILE), &text).map_err(|source| ManifestError::Io {
        path: dir.join(FILE).display().to_string(),
        source,
    })?;
    Ok(manifest)
}

/// The outcome of verifying an incident folder.
#[derive(Debug, Default)]
pub struct IncidentVerify {
    pub ok: bool,
    /// One line per problem, naming the file (terminal-safe).
    pub problems: Vec<String>,
    /// Per bundle: its label, directory and whether it verified alone.
    pub bundles: Vec<(String, String, bool)>,
}

/// Checks the incident's own files (`incident.json`, its reports, the lock file) against the
/// seal, pushing a line per problem; returns the top-level names the seal knows.
fn own_files(
    dir: &Path,
    manifest: &IncidentManifest,
    problems: &mut Vec<String>,
) -> BTreeSet<String> {
    use crate::report::sanitize::terminal;
    let mut known: BTreeSet<String> = [FILE.to_string()].into();
    let lock = dir.join(crate::rundir::LOCK_FILE);
    match std::fs::symlink_metadata(&lock) {
        Ok(m) if m.is_file() => {
            known.insert(crate::rundir::LOCK_FILE.to_string());
        }
        // Anything else in the lock file's place is reported as an extra file below.
        _ => {}
    }
    for f in &manifest.files {
        known.insert(f.path.clone());
        let Ok(path) = crate::fsutil::safe_join(dir, &f.path) else {
            problems.push(format!(
                "manifest  {} lies outside the incident",
                terminal(&f.path)
            ));
            continue;
        };
        match hash_file(&path) {
            Ok(h) if h == f.sha256 => {}
            Ok(h) => problems.push(format!(
                "changed   {} (expected sha256 {}, found {h})",
                terminal(&f.path),
                f.sha256
            )),
            Err(_) => problems.push(format!("missing   {}", terminal(&f.path))),
        }
    }
    for own in OWN_FILES {
        if !known.contains(*own) && dir.join(own).exists() {
            problems.push(format!("extra     {own} (not in {FILE})"));
            known.insert(own.to_string());
        }
    }
    if !manifest.files.iter().any(|f| f.path == record::FILE) {
        // Sealed first among the own files: without it nothing says which bundles belong.
        problems.push(format!("manifest  {FILE} does not seal {}", record::FILE));
    }
    known
}

/// What a command that writes into a sealed incident (`resume`, `analyze` INCIDENT_DIR) checks
/// first: the incident's own files against `incident-manifest.json`. Each bundle is checked by
/// its own command before it is written (a bundle resumed by a run cut off before the incident
/// was sealed again no longer matches the incident's record of its seal, and that is not
/// tampering). Empty for an incident that was never sealed.
pub fn own_problems(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if std::fs::symlink_metadata(dir.join(FILE)).is_err() {
        return problems;
    }
    match std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<IncidentManifest>(&b).ok())
    {
        Some(m) => {
            own_files(dir, &m, &mut problems);
            for b in &m.bundles {
                resealed_without_continuing(dir, b, &mut problems);
            }
        }
        None => problems.push(format!("manifest  {FILE} is unreadable")),
    }
    problems
}

/// A bundle whose seal changed since the incident was sealed is accepted only when its
/// journal continues the one the incident recorded (a command reopened it, journaling first,
/// and sealed it again); a bundle sealed again over the same journal was rewritten by hand.
fn resealed_without_continuing(dir: &Path, b: &SealedBundle, problems: &mut Vec<String>) {
    use crate::report::sanitize::terminal;
    let Ok(path) = crate::fsutil::safe_join(dir, &b.dir) else {
        problems.push(format!(
            "manifest  bundle {} lies outside the incident",
            terminal(&b.dir)
        ));
        return;
    };
    let same = |name: &str, want: &str| hash_file(&path.join(name)).is_ok_and(|h| h == want);
    if same("manifest.json", &b.manifest_sha256) && same("SHA256SUMS", &b.sha256sums_sha256) {
        return;
    }
    let entries = crate::engine::journal::verify_chain_tolerant(
        &path.join(crate::engine::journal::FILE_NAME),
    )
    .map(|(e, _)| e)
    .unwrap_or_default();
    let n = b.journal_entries as usize;
    let continues =
        n >= 1 && entries.len() > n && b.journal_last_hash.as_ref() == Some(&entries[n - 1].hash);
    if !continues {
        problems.push(format!(
            "changed   {}/SHA256SUMS, manifest.json: the bundle was sealed again since the incident's seal without continuing the journal it had then",
            terminal(&b.dir)
        ));
    }
}

/// Verifies the incident at `dir`: its own files against the seal, every bundle alone and
/// against the seal, and nothing extra.
pub fn verify(dir: &Path) -> IncidentVerify {
    use crate::report::sanitize::terminal;
    let mut out = IncidentVerify::default();
    let manifest: Option<IncidentManifest> = std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(manifest) = manifest else {
        out.problems
            .push(format!("manifest  {FILE} is missing or unreadable"));
        return out;
    };
    let mut known = own_files(dir, &manifest, &mut out.problems);
    let mut bundle_dirs = BTreeSet::new();
    for b in &manifest.bundles {
        let path = match crate::fsutil::safe_join(dir, &b.dir) {
            Ok(p) => p,
            Err(_) => {
                out.problems.push(format!(
                    "manifest  bundle {} lies outside the incident",
                    terminal(&b.dir)
                ));
                continue;
            }
        };
        bundle_dirs.insert(b.dir.clone());
        if let Some(top) = b.dir.split('/').next() {
            known.insert(top.to_string());
        }
        for (name, want) in [
            ("manifest.json", &b.manifest_sha256),
            ("SHA256SUMS", &b.sha256sums_sha256),
        ] {
            match hash_file(&path.join(name)) {
                Ok(h) if &h == want => {}
                Ok(h) => out.problems.push(format!(
                    "changed   {}/{name} (expected sha256 {want}, found {h})",
                    terminal(&b.dir)
                )),
                Err(_) => out
                    .problems
                    .push(format!("missing   {}/{name}", terminal(&b.dir))),
            }
        }
        let alone = match crate::report::verify::verify(&path) {
            Ok(r) => {
                for l in r.problem_lines() {
                    out.problems.push(format!("{}: {l}", terminal(&b.dir)));
                }
                r.ok
            }
            Err(e) => {
                out.problems.push(format!(
                    "{}: {}",
                    terminal(&b.dir),
                    terminal(&e.to_string())
                ));
                false
            }
        };
        out.bundles.push((b.label.clone(), b.dir.clone(), alone));
    }
    // Nothing the seal does not know: at the top, and next to each bundle in its account's
    // folder.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !known.contains(&name) {
                out.problems
                    .push(format!("extra     {} (not in {FILE})", terminal(&name)));
                continue;
            }
            if e.path().is_dir() {
                if let Ok(inner) = std::fs::read_dir(e.path()) {
                    for i in inner.flatten() {
                        let rel = format!("{name}/{}", i.file_name().to_string_lossy());
                        if !bundle_dirs.contains(&rel) {
                            out.problems
                                .push(format!("extra     {} (not in {FILE})", terminal(&rel)));
                        }
                    }
                }
            }
        }
    }
    // Every account of the record with a bundle is sealed.
    if let Ok(rec) = IncidentRecord::read(dir) {
        for a in &rec.accounts {
            match &a.bundle {
                Some(b) if bundle_dirs.contains(b) => {}
                Some(b) => out.problems.push(format!(
                    "manifest  the bundle {} of account {} is not sealed in {FILE}",
                    terminal(b),
                    terminal(&a.label)
                )),
                None => out.problems.push(format!(
                    "manifest  account {} has no bundle",
                    terminal(&a.label)
                )),
            }
        }
    }
    out.ok = out.problems.is_empty();
    out
}
