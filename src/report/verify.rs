//! `respond evidence verify`: is this bundle exactly what was sealed? And, for every command
//! about to write into a bundle, [`preflight`]: may it?
//!
//! [`verify`] checks every line of `SHA256SUMS` against the file on disk (changed, missing),
//! lists every file not covered by it (extra: nothing is ignored but `SHA256SUMS`,
//! `manifest.json` and the run's lock file), checks `manifest.json` against `SHA256SUMS` and
//! the journal, verifies the journal's hash chain with
//! [`crate::engine::journal::verify_chain`] (a missing or empty journal does not verify), and
//! checks each raw response's body against the SHA-256 its sidecar recorded when it was saved
//! ([`check_raw`]), and each trusted timestamp under `timestamps/` (its token's signature
//! and imprint, and its stamped manifest against the bundle now:
//! [`crate::report::timestamp::check_all`]). A path in `SHA256SUMS` that would leave the
//! bundle, or a symlink, is a problem, never followed.
//!
//! [`preflight`] is what `resume`, `analyze` and a drill run before their first write: a
//! sealed bundle must pass [`verify`] in full; a bundle sealed and then opened by a command
//! that did not reach its seal (it journaled `reopen` or `resume` after the sealed entry) must
//! still hold every raw response and bot log the seal covered, unchanged; a bundle never
//! sealed (an interrupted run) must have a journal that verifies (a torn last line aside) and
//! raw responses that match their sidecars. Any problem means: write nothing, exit 3.
//! A bundle never sealed that still holds [`COPY_UNFINISHED`] (a copy by `analyze --out`
//! whose `export/` was not finished and checked) is refused the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::engine::journal::{self, Entry};
use crate::fsutil;
use crate::report::manifest::{
    hash_file, hash_files, outside_seal, parse_sums_line, walk, FoundKind, Manifest, Written,
    MANIFEST_FILE, SEAL_FILE_MAX, SUMS_FILE,
};
use crate::report::sanitize::terminal;
use crate::report::ReportError;
use crate::rundir::RawSidecar;

/// The manifest problem of a bundle whose first seal was cut off between its two files.
const MANIFEST_MISSING: &str = "manifest.json is missing";

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
    /// Raw responses whose body does not match the SHA-256 its sidecar recorded, or whose
    /// sidecar is unreadable or names another file.
    pub raw_problems: Vec<String>,
    /// Trusted timestamps whose token verifies and whose stamped manifest agrees with the
    /// bundle as it is now.
    pub timestamps: Vec<crate::report::timestamp::Checked>,
    /// Timestamps that do not hold, one line each naming the token.
    pub timestamp_problems: Vec<String>,
}

impl VerifyReport {
    /// One line per problem, terminal-safe, each naming the file.
    pub fn problem_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.changed {
            out.push(format!(
                "changed   {} (expected sha256 {}, found {})",
                terminal(&c.path),
                c.expected,
                terminal(&c.found)
            ));
        }
        for m in &self.missing {
            out.push(format!("missing   {}", terminal(m)));
        }
        for x in &self.extra {
            out.push(format!("extra     {} (not in SHA256SUMS)", terminal(x)));
        }
        for p in &self.manifest_problems {
            out.push(format!("manifest  {}", terminal(p)));
        }
        if let Some(e) = &self.journal_error {
            out.push(format!("journal   {}", terminal(e)));
        }
        for r in &self.raw_problems {
            out.push(format!("raw       {}", terminal(r)));
        }
        for t in &self.timestamp_problems {
            out.push(format!("timestamp {}", terminal(t)));
        }
        out
    }
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
    verify_known(run_dir, &BTreeMap::new())
}

/// [`verify`], taking the SHA-256 of the files in `known` (relative path → hex) instead of
/// reading them again: hashes the caller computed from the bytes it has just read from
/// `run_dir` (a copy hashes what it copies), so what is checked is what the caller holds.
fn verify_known(
    run_dir: &Path,
    known: &BTreeMap<String, String>,
) -> Result<VerifyReport, ReportError> {
    verify_hashing(run_dir, known).map(|(rep, _)| rep)
}

/// [`verify_known`], also returning the files it read and hashed that no one changed
/// meanwhile ([`Written`]): a command that writes into the bundle after this check seals them
/// without reading them again while they stay the same files.
fn verify_hashing(
    run_dir: &Path,
    known: &BTreeMap<String, String>,
) -> Result<(VerifyReport, Written), ReportError> {
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
    let mut sums_too_large = None;
    let sums_bytes = match read_bounded(&sums_path).map_err(|source| ReportError::Read {
        path: sums_path.clone(),
        source,
    })? {
        Bounded::Bytes(b) => b,
        // Tampering, not a usage error: nothing can be checked against it (every file shows
        // as not listed), and the bundle does not verify (exit 3).
        Bounded::TooLarge(n) => {
            sums_too_large = Some(too_large(SUMS_FILE, n));
            Vec::new()
        }
    };
    let mut rep = VerifyReport::default();
    rep.manifest_problems.extend(sums_too_large);
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

    // Every listed file is read on a few threads first; the checks below take those hashes.
    let (known, read) = prehash(run_dir, listed.keys(), known);
    let known = &known;
    // Hashes computed here (or known), reused by the raw sidecar check.
    let mut hashed: BTreeMap<String, String> = known.clone();
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
                let found = known_or_hash(known, path, &abs)?;
                rep.checked += 1;
                hashed.insert(path.clone(), found.clone());
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
    let mut journal_hashes: Vec<String> = Vec::new();
    if std::fs::symlink_metadata(&jpath).is_err() {
        rep.journal_error = Some("journal.jsonl is missing from the bundle".into());
    } else {
        match journal::verify_chain(&jpath) {
            Ok(entries) if entries.is_empty() => {
                rep.journal_error = Some("journal.jsonl is empty: the run recorded nothing".into())
            }
            Ok(entries) => {
                rep.journal_entries = entries.len();
                journal_last = entries.last().map(|e| e.hash.clone());
                journal_hashes = entries.iter().map(|e| e.hash.clone()).collect();
            }
            Err(e) => rep.journal_error = Some(e.to_string()),
        }
    }

    rep.raw_problems = check_raw(run_dir, &hashed)?;
    (rep.timestamps, rep.timestamp_problems) =
        crate::report::timestamp::check_all(run_dir, &listed, &journal_hashes);

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
        && rep.journal_error.is_none()
        && rep.raw_problems.is_empty()
        && rep.timestamp_problems.is_empty();
    Ok((rep, read))
}

/// Hashes the regular files at `rels` in `run_dir` that `known` lacks, on a few threads
/// ([`hash_files`]). Returns `known` with those hashes added, and the files whose hash stands
/// for them while they are unchanged ([`Written::add_read`]). A path outside the bundle, a
/// file that is not regular or cannot be read is left out: the check that meets it reports
/// it as it always did.
fn prehash<'a>(
    run_dir: &Path,
    rels: impl Iterator<Item = &'a String>,
    known: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Written) {
    let todo: Vec<(String, std::path::PathBuf)> = rels
        .filter(|rel| !known.contains_key(*rel))
        .filter_map(|rel| {
            let abs = fsutil::safe_join(run_dir, rel).ok()?;
            let regular = std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_file());
            regular.then(|| (rel.clone(), abs))
        })
        .collect();
    let mut all = known.clone();
    let mut read = Written::default();
    for ((rel, _), r) in todo.iter().zip(hash_files(&todo)) {
        if let Ok((_, sha, unchanged)) = r {
            if let Some(file) = unchanged {
                read.add_read(rel, file);
            }
            all.insert(rel.clone(), sha);
        }
    }
    (all, read)
}

/// Checks every raw response's sidecar (`raw/*.meta.json`) against its body: the sidecar must
/// parse, name its own body (`raw/<same stem>.body`), and that body must be a regular file
/// with the SHA-256 the sidecar recorded when the response was saved. `known` holds hashes
/// already computed by the caller (relative path → hex). A body without a sidecar is not a
/// problem: a run killed between the two writes leaves one.
pub(crate) fn check_raw(
    run_dir: &Path,
    known: &BTreeMap<String, String>,
) -> Result<Vec<String>, ReportError> {
    Ok(raw_mismatches(run_dir, known)?
        .into_iter()
        .map(|p| p.message)
        .collect())
}

/// One raw response that does not match its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMismatch {
    /// `raw/<stem>.meta.json`
    pub sidecar: String,
    /// `raw/<stem>.body`
    pub body: String,
    /// What is wrong, naming the files.
    pub message: String,
}

/// [`check_raw`], with the files of each problem.
pub(crate) fn raw_mismatches(
    run_dir: &Path,
    known: &BTreeMap<String, String>,
) -> Result<Vec<RawMismatch>, ReportError> {
    let raw = run_dir.join("raw");
    let rd = match std::fs::read_dir(&raw) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ReportError::Read { path: raw, source }),
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".meta.json") && !crate::rundir::is_temp_name(n))
        .collect();
    names.sort();
    let mut problems = Vec::new();
    for name in names {
        let rel = format!("raw/{name}");
        let abs = raw.join(&name);
        let stem = name.trim_end_matches(".meta.json");
        let body_rel = format!("raw/{stem}.body");
        match std::fs::symlink_metadata(&abs) {
            Ok(m) if m.is_file() => {}
            // A symlink or special file is reported by the walk (extra, or changed).
            _ => continue,
        }
        let mut problem = |message: String| {
            problems.push(RawMismatch {
                sidecar: rel.clone(),
                body: body_rel.clone(),
                message,
            })
        };
        let bytes = std::fs::read(&abs).map_err(|source| ReportError::Read {
            path: abs.clone(),
            source,
        })?;
        let side: RawSidecar = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                problem(format!("{rel}: not a raw response sidecar ({e})"));
                continue;
            }
        };
        if side.body_file != body_rel {
            problem(format!(
                "{rel}: names {:?} as its body instead of {body_rel}",
                side.body_file
            ));
        }
        let body_abs = raw.join(format!("{stem}.body"));
        let found = match std::fs::symlink_metadata(&body_abs) {
            Err(_) => {
                problem(format!(
                    "{body_rel}: missing (its sidecar {rel} records sha256 {})",
                    side.body_sha256
                ));
                continue;
            }
            Ok(m) if !m.is_file() => {
                problem(format!("{body_rel}: not a regular file"));
                continue;
            }
            Ok(_) => match known.get(&body_rel) {
                Some(h) => h.clone(),
                None => hash_file(&body_abs)?.1,
            },
        };
        if found != side.body_sha256 {
            problem(format!(
                "{body_rel}: sha256 {found}, but its sidecar {rel} recorded {} when the response was saved",
                side.body_sha256
            ));
        }
    }
    Ok(problems)
}

/// What a bundle is to a command about to write into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SealState {
    /// Never sealed: a run that was interrupted (or is being written).
    Unsealed,
    /// Sealed, and nothing was written since.
    Sealed,
    /// Sealed, then opened for more writes by a command that did not reach its seal.
    Reopened,
}

/// The checks a command runs before writing into a bundle (see the module documentation).
#[derive(Debug, Clone)]
pub struct Preflight {
    pub state: SealState,
    /// Every mismatch, one terminal-safe line each, naming the file. Empty: safe to write.
    pub problems: Vec<String>,
    /// The journal's entries (a torn last line set aside).
    pub entries: Vec<Entry>,
    /// Bytes of a torn last journal line (a write cut short), which a writer trims.
    pub torn_bytes: Option<usize>,
    /// The files the check read and hashed, while they stay the same files: the seal after
    /// the command's writes takes these hashes instead of reading the files again.
    pub read: Written,
}

impl Preflight {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Written by `analyze --out` into its new bundle before its journal, removed once the copy
/// of `export/` is finished and checked: a bundle never sealed that holds it is an unfinished
/// copy, never a run to write into.
pub const COPY_UNFINISHED: &str = "COPY-UNFINISHED";

/// A seal file's bytes, or its size when past [`SEAL_FILE_MAX`].
pub(crate) enum Bounded {
    Bytes(Vec<u8>),
    TooLarge(u64),
}

/// Reads the regular file at `path` (the caller checked it is one) up to [`SEAL_FILE_MAX`]
/// bytes: a larger one (or one that grows past it while read) is never held in memory.
pub(crate) fn read_bounded(path: &Path) -> std::io::Result<Bounded> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > SEAL_FILE_MAX {
        return Ok(Bounded::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(SEAL_FILE_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SEAL_FILE_MAX {
        return Ok(Bounded::TooLarge(bytes.len() as u64));
    }
    Ok(Bounded::Bytes(bytes))
}

/// What is wrong with a seal file of `size` bytes, past [`SEAL_FILE_MAX`].
fn too_large(name: &str, size: u64) -> String {
    format!(
        "{name} is too large ({size} bytes; a seal file is at most {} MiB): it was not read",
        SEAL_FILE_MAX >> 20
    )
}

/// Reads a seal file that must be a regular file; `None` when absent.
pub(crate) fn read_seal_file(path: &Path, problems: &mut Vec<String>) -> Option<Vec<u8>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match std::fs::symlink_metadata(path) {
        Err(_) => None,
        Ok(m) if !m.is_file() => {
            problems.push(format!("manifest  {name} is not a regular file"));
            Some(Vec::new())
        }
        Ok(_) => match read_bounded(path) {
            Ok(Bounded::Bytes(b)) => Some(b),
            Ok(Bounded::TooLarge(n)) => {
                problems.push(format!("manifest  {}", too_large(&name, n)));
                Some(Vec::new())
            }
            Err(e) => {
                problems.push(format!("manifest  {name} cannot be read: {e}"));
                Some(Vec::new())
            }
        },
    }
}

/// How many entries long the journal was when its bytes had SHA-256 `sha` (a prefix at an
/// entry boundary), if it ever was.
fn prefix_with_hash(journal: &[u8], sha: &str) -> Option<usize> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (n, line) in journal.split_inclusive(|b| *b == b'\n').enumerate() {
        if !line.ends_with(b"\n") {
            break;
        }
        h.update(line);
        if hex::encode(h.clone().finalize()) == sha {
            return Some(n + 1);
        }
    }
    None
}

/// The hash of `rel` (at `abs`): from `known` when the caller read it, else read here.
fn known_or_hash(
    known: &BTreeMap<String, String>,
    rel: &str,
    abs: &Path,
) -> Result<String, ReportError> {
    match known.get(rel) {
        Some(h) => Ok(h.clone()),
        None => Ok(hash_file(abs)?.1),
    }
}

/// Runs the checks a command must pass before it writes into (and re-seals) the bundle at
/// `run_dir`. `Err` only when it is not a directory at all.
pub fn preflight(run_dir: &Path) -> Result<Preflight, ReportError> {
    preflight_known(run_dir, &BTreeMap::new())
}

/// [`preflight`], taking the SHA-256 of the files in `known` (relative path → hex) instead of
/// reading them again: only hashes the caller computed from the bytes it has just read from
/// `run_dir` while no writer could change it (`respond analyze` hashes each file as it copies
/// it, under the source's shared lock), so the check covers the bytes the caller holds.
pub fn preflight_known(
    run_dir: &Path,
    known: &BTreeMap<String, String>,
) -> Result<Preflight, ReportError> {
    match std::fs::symlink_metadata(run_dir) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(ReportError::NotABundle {
                path: run_dir.to_path_buf(),
                reason: "not a directory (pass the run directory itself)".into(),
            })
        }
    }
    let mut problems = Vec::new();
    let jpath = run_dir.join(journal::FILE_NAME);
    let journal_bytes = match std::fs::symlink_metadata(&jpath) {
        Ok(m) if m.is_file() => std::fs::read(&jpath).ok(),
        _ => None,
    };
    let (entries, torn_bytes) = match &journal_bytes {
        None => {
            problems.push("journal   journal.jsonl is missing or not a regular file".into());
            (Vec::new(), None)
        }
        Some(_) => match journal::verify_chain_tolerant(&jpath) {
            Ok((e, t)) => {
                if e.is_empty() {
                    problems
                        .push("journal   journal.jsonl is empty: the run recorded nothing".into());
                }
                (e, t)
            }
            Err(e) => {
                problems.push(format!("journal   {}", terminal(&e.to_string())));
                (Vec::new(), None)
            }
        },
    };
    let journal_ok = problems.is_empty();
    let sums = read_seal_file(&run_dir.join(SUMS_FILE), &mut problems);
    let manifest = read_seal_file(&run_dir.join(MANIFEST_FILE), &mut problems);
    let out = |state, problems, read| Preflight {
        state,
        problems,
        entries: entries.clone(),
        torn_bytes,
        read,
    };
    if sums.is_none() && manifest.is_none() {
        if std::fs::symlink_metadata(run_dir.join(COPY_UNFINISHED)).is_ok() {
            problems.push(format!(
                "copy      {COPY_UNFINISHED}: the copy into this bundle was not finished"
            ));
        }
        problems.extend(
            check_raw(run_dir, known)?
                .into_iter()
                .map(|r| format!("raw       {}", terminal(&r))),
        );
        return Ok(out(SealState::Unsealed, problems, Written::default()));
    }
    // What the seal covered: the manifest (written last) when there is one, else SHA256SUMS
    // alone (a first seal cut off between its two files).
    let mut sealed_files: BTreeMap<String, String> = BTreeMap::new();
    let mut sealed_entries: Option<usize> = None;
    if let Some(bytes) = &manifest {
        match serde_json::from_slice::<Manifest>(bytes) {
            Ok(m) => {
                sealed_files = m.files.into_iter().map(|f| (f.path, f.sha256)).collect();
                let n = m.journal_entries as usize;
                if n >= 1 && entries.get(n - 1).map(|e| &e.hash) == m.journal_last_hash.as_ref() {
                    sealed_entries = Some(n);
                }
            }
            Err(e) if !bytes.is_empty() => problems.push(format!(
                "manifest  manifest.json is not a respond manifest: {e}"
            )),
            Err(_) => {}
        }
    } else if let Some(bytes) = &sums {
        let text = String::from_utf8_lossy(bytes);
        sealed_files = text
            .lines()
            .filter_map(parse_sums_line)
            .map(|(h, p)| (p, h))
            .collect();
        if let (Some(sha), Some(jb)) = (sealed_files.get(journal::FILE_NAME), &journal_bytes) {
            sealed_entries = prefix_with_hash(jb, sha);
        }
    }
    let continued = sealed_entries.is_some_and(|n| entries.len() > n || torn_bytes.is_some());
    if journal_ok && problems.is_empty() && continued {
        // Opened after sealing by a command that did not reach its own seal: what it may have
        // rewritten is not checkable, but evidence is never rewritten: every raw response and
        // bot log the seal covered, and the playbook copy, must be there unchanged.
        // Reopened by `analyze` (its entry comes first after the seal), which rewrites only the
        // report files and the bot-log record: every other sealed file (the export, snapshots,
        // cancel answers, chunk and state files) must be unchanged too, except what a step
        // journaled since as its artifact.
        let after = &entries[sealed_entries.unwrap_or(0).min(entries.len())..];
        // A resume run after that (its `resume` entry) continued the run's steps, which
        // rewrite their own resume state (an export's journal, its chunk files): only the
        // evidence is checked then.
        let by_analyze = after
            .first()
            .is_some_and(|e| e.event == "reopen" && e.data["by"] == "analyze")
            && !after.iter().any(|e| e.event == "resume");
        let mut may_change: BTreeSet<String> = crate::report::BUNDLE_FILES
            .iter()
            .chain(["bot_logs.json", journal::FILE_NAME].iter())
            .map(|s| s.to_string())
            .collect();
        for e in after.iter().filter(|e| e.event == "step_end") {
            if let Some(list) = e.data["artifacts"].as_array() {
                may_change.extend(list.iter().filter_map(|a| a.as_str().map(str::to_string)));
            }
        }
        let checked = |path: &String| {
            let evidence =
                path.starts_with("raw/") || path.starts_with("bot/") || path == "playbook.yaml";
            evidence || (by_analyze && !may_change.contains(path))
        };
        let (known, read) = prehash(run_dir, sealed_files.keys().filter(|p| checked(p)), known);
        let known = &known;
        for (path, expected) in &sealed_files {
            if !checked(path) {
                continue;
            }
            let Ok(abs) = fsutil::safe_join(run_dir, path) else {
                problems.push(format!(
                    "manifest  the seal lists {:?}, outside the bundle",
                    terminal(path)
                ));
                continue;
            };
            match std::fs::symlink_metadata(&abs) {
                Err(_) => problems.push(format!("missing   {} (it was sealed)", terminal(path))),
                Ok(m) if !m.is_file() => problems.push(format!(
                    "changed   {} (sealed as a regular file, now a symlink or special file)",
                    terminal(path)
                )),
                Ok(_) => {
                    let found = known_or_hash(known, path, &abs)?;
                    if &found != expected {
                        problems.push(format!(
                            "changed   {} (sealed sha256 {expected}, found {found})",
                            terminal(path)
                        ));
                    }
                }
            }
        }
        problems.extend(
            check_raw(run_dir, known)?
                .into_iter()
                .map(|r| format!("raw       {}", terminal(&r))),
        );
        return Ok(out(SealState::Reopened, problems, read));
    }
    // Sealed (or claiming to be): everything must verify.
    if journal_ok && sealed_entries.is_none() && !entries.is_empty() {
        problems.push(
            "journal   journal.jsonl does not continue the journal the bundle was sealed with (entries were changed or removed after sealing)"
                .into(),
        );
    }
    let mut read = Written::default();
    match verify_hashing(run_dir, known) {
        Ok((rep, hashed)) => {
            read = hashed;
            for line in rep.problem_lines() {
                let tolerated = manifest.is_none()
                    && sealed_entries == Some(entries.len())
                    && line == format!("manifest  {MANIFEST_MISSING}");
                if !tolerated && !problems.contains(&line) {
                    problems.push(line);
                }
            }
        }
        Err(ReportError::NotABundle { .. }) => problems.push(format!("missing   {SUMS_FILE}")),
        Err(e) => return Err(e),
    }
    Ok(out(SealState::Sealed, problems, read))
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
        Ok(m) if m.is_file() => match read_bounded(&mpath) {
            Ok(Bounded::Bytes(b)) => b,
            Ok(Bounded::TooLarge(n)) => {
                problems.push(too_large(MANIFEST_FILE, n));
                return;
            }
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
            problems.push(MANIFEST_MISSING.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The check before writing hands on what it read: each sealed file's hash, standing for
    /// the file only while it is unchanged, so the seal after the command's writes reads only
    /// what changed. A bundle changed after its seal is still refused.
    #[test]
    fn the_check_before_writing_vouches_for_the_files_it_read() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let j = journal::Journal::create(dir).unwrap();
        j.append("run_start", serde_json::json!({})).unwrap();
        drop(j);
        fsutil::create_private_dir(&dir.join("export")).unwrap();
        let big = dir.join("export/orders.json");
        fsutil::write_private(&big, &vec![b'x'; 700_000]).unwrap();
        fsutil::write_private(&dir.join("a.txt"), b"alpha").unwrap();
        crate::report::manifest::seal(dir).unwrap();

        let pf = preflight(dir).unwrap();
        assert_eq!(pf.state, SealState::Sealed);
        assert!(pf.ok(), "{:?}", pf.problems);
        assert_eq!(
            pf.read.sha256_of("export/orders.json", &big),
            Some(fsutil::sha256_hex(&vec![b'x'; 700_000]))
        );
        assert_eq!(
            pf.read.sha256_of("a.txt", &dir.join("a.txt")),
            Some(fsutil::sha256_hex(b"alpha"))
        );
        // Changed after the check: no longer vouched for, and the next check refuses it.
        fsutil::write_private(&dir.join("a.txt"), b"alphb").unwrap();
        assert_eq!(pf.read.sha256_of("a.txt", &dir.join("a.txt")), None);
        let again = preflight(dir).unwrap();
        assert!(!again.ok());
        assert!(
            again.problems.iter().any(|p| p.contains("a.txt")),
            "{:?}",
            again.problems
        );
    }
}
