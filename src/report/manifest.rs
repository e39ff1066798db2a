//! `SHA256SUMS` and `manifest.json`: the seal over a finished bundle.
//!
//! `SHA256SUMS` is in exact coreutils format (`<hex>  <path>`, sorted by path, with
//! coreutils' `\`-prefixed escaping for a name holding `\` or a newline), so a reviewer can
//! run `sha256sum -c SHA256SUMS` with nothing but coreutils. It covers every regular file of
//! the bundle except itself and `manifest.json`; a symlink anywhere makes sealing fail.
//! `manifest.json` repeats the list with sizes, ties in the journal's last entry hash and the
//! hash of `SHA256SUMS`. Neither file holds a time: sealing the same files twice gives the
//! same bytes. Sealing must be the last write of a run.
//!
//! [`seal`] refuses what it must not cover: a symlink or special file, a journal that is
//! missing, empty or broken, and a raw response whose body no longer has the SHA-256 its
//! sidecar recorded when it was saved. The run's lock file ([`crate::rundir::LOCK_FILE`]) is
//! not evidence and is never listed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::journal;
use crate::fsutil;
use crate::report::ReportError;

pub const SUMS_FILE: &str = "SHA256SUMS";
pub const MANIFEST_FILE: &str = "manifest.json";
/// The largest seal file (`SHA256SUMS`, `manifest.json`) read: far past any bundle's (a
/// million orders' bundle lists ~3,000 files in ~0.5 MiB of manifest), so a planted huge
/// file is named as too large instead of being read into memory.
pub const SEAL_FILE_MAX: u64 = 256 << 20;

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub tool: String,
    pub tool_version: String,
    pub files: Vec<ManifestFile>,
    /// Number of entries of `journal.jsonl` and the hash of the last one (`None`: no journal).
    pub journal_entries: u64,
    pub journal_last_hash: Option<String>,
    /// SHA-256 of the `SHA256SUMS` file's bytes.
    pub sha256sums_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// One file found in the bundle.
pub(crate) struct Found {
    pub rel: String,
    pub abs: PathBuf,
    pub kind: FoundKind,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FoundKind {
    File,
    Symlink,
    Other,
}

/// Lists everything under `root` except the directories themselves, sorted by relative path
/// (bytewise, `/`-separated). Does not follow symlinks.
pub(crate) fn walk(root: &Path) -> Result<Vec<Found>, ReportError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|source| ReportError::Read {
            path: dir.clone(),
            source,
        })?;
        for e in rd {
            let e = e.map_err(|source| ReportError::Read {
                path: dir.clone(),
                source,
            })?;
            let abs = e.path();
            let name = match e.file_name().into_string() {
                Ok(n) => n,
                Err(_) => {
                    return Err(ReportError::BadFileName {
                        path: abs,
                        reason: "not valid UTF-8".into(),
                    })
                }
            };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = std::fs::symlink_metadata(&abs)
                .map_err(|source| ReportError::Read {
                    path: abs.clone(),
                    source,
                })?
                .file_type();
            if ft.is_symlink() {
                out.push(Found {
                    rel,
                    abs,
                    kind: FoundKind::Symlink,
                });
            } else if ft.is_dir() {
                stack.push((abs, rel));
            } else if ft.is_file() {
                out.push(Found {
                    rel,
                    abs,
                    kind: FoundKind::File,
                });
            } else {
                out.push(Found {
                    rel,
                    abs,
                    kind: FoundKind::Other,
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    Ok(out)
}

/// Size and lowercase hex SHA-256 of a file, streamed (a bundle may hold large raw files).
/// Opens with `O_NOFOLLOW`, so a symlink swapped in after the walk is refused, not followed.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), ReportError> {
    hash_file_stamped(path).map(|(size, sha, _)| (size, sha))
}

/// [`hash_file`], and the file as it was read when nothing changed it meanwhile (the same
/// inode, size, modification and change times before and after the read): what [`Written`] vouches for.
pub(crate) fn hash_file_stamped(path: &Path) -> Result<Hashed, ReportError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(err)?;
    let before = f.metadata().map_err(err)?;
    let mut hasher = Sha256::new();
    // Large reads: a million-order bundle is gigabytes, and a read per 8 KiB (what
    // `io::copy` into a hasher does) is a system call per 8 KiB.
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha = hex::encode(hasher.finalize());
    let after = f.metadata().map_err(err)?;
    let stamp = WrittenFile::stamp(&before);
    let unchanged = before.is_file() && stamp == WrittenFile::stamp(&after) && stamp.2 == size;
    let read = unchanged.then(|| WrittenFile::stamped(sha.clone(), stamp));
    Ok((size, sha, read))
}

/// What [`hash_file_stamped`] read: size, SHA-256 (hex), and the file as read when nothing
/// changed it meanwhile.
pub(crate) type Hashed = (u64, String, Option<WrittenFile>);

/// The read buffer of [`hash_file_stamped`].
const HASH_BUFFER: usize = 256 * 1024;

/// The SHA-256 of each `(relative path, absolute path)`, hashed on a few threads (largest
/// files first: see [`crate::fsutil::largest_first`]), in the order given. With each hash,
/// whether the file was left unchanged by the read (see [`hash_file_stamped`]).
pub(crate) fn hash_files(files: &[(String, PathBuf)]) -> Vec<Result<Hashed, ReportError>> {
    crate::fsutil::largest_first(
        files,
        crate::fsutil::file_threads(),
        |(_, abs)| std::fs::symlink_metadata(abs).map_or(0, |m| m.len()),
        |(_, abs)| hash_file_stamped(abs),
    )
    .into_iter()
    .zip(files)
    .map(|(r, (_, abs))| {
        r.unwrap_or_else(|| {
            Err(ReportError::Read {
                path: abs.clone(),
                source: std::io::Error::other("a hashing thread panicked"),
            })
        })
    })
    .collect()
}

/// The `SHA256SUMS` line for one file, escaped the way coreutils does.
pub fn sums_line(hex: &str, path: &str) -> String {
    if path.contains('\\') || path.contains('\n') || path.contains('\r') {
        let esc = path
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hex}  {esc}\n")
    } else {
        format!("{hex}  {path}\n")
    }
}

/// Parses one `SHA256SUMS` line into (hex, path); `None` if it is not in the format.
pub fn parse_sums_line(line: &str) -> Option<(String, String)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (hex, rest) = line.split_at_checked(64)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))?;
    if path.is_empty() {
        return None;
    }
    let path = if escaped {
        let mut out = String::new();
        let mut chars = path.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    _ => return None,
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        path.to_string()
    };
    Some((hex.to_ascii_lowercase(), path))
}

/// Whether a path of the bundle is outside the seal by rule: the seal files themselves and
/// the run's lock file (when it is a regular file; anything else in its place is reported).
pub(crate) fn outside_seal(rel: &str, kind: &FoundKind) -> bool {
    rel == SUMS_FILE
        || rel == MANIFEST_FILE
        || (rel == crate::rundir::LOCK_FILE && *kind == FoundKind::File)
}

/// Hashes every regular file of the bundle at `run_dir`, writes `SHA256SUMS` and
/// `manifest.json` (0600), and returns the manifest. Fails on a symlink or special file in the
/// bundle, when `journal.jsonl` is missing, empty or its chain does not verify, and when a raw
/// response does not match its sidecar.
pub fn seal(run_dir: &Path) -> Result<Manifest, ReportError> {
    seal_with(run_dir, &Written::default())
}

/// What this process wrote into a bundle and hashed as it wrote it: relative path → the file
/// as it was left ([`WrittenFile`]). [`seal_with`] takes such a hash instead of reading the
/// file again only while the file is still that same file (same inode, size, modification
/// and change time); anything else is read and hashed.
#[derive(Debug, Clone, Default)]
pub struct Written(std::collections::BTreeMap<String, WrittenFile>);

/// A file as its writer left it, with the SHA-256 of the bytes it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub sha256: String,
    stamp: Stamp,
}

/// What tells one state of a file from another without reading it: its inode, size,
/// modification time and inode change time (the last is set by the kernel on every write
/// and no process can put it back, so a same-size edit that restores the modification time
/// still shows).
type Stamp = (u64, u64, u64, i128, i128);

impl WrittenFile {
    fn stamped(sha256: String, stamp: Stamp) -> Self {
        WrittenFile { sha256, stamp }
    }

    fn stamp(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        (
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        )
    }
}

impl Written {
    /// Records that `abs` (at `rel` in the bundle) now holds bytes with SHA-256 `sha256`.
    pub fn add(&mut self, rel: &str, abs: &Path, sha256: String) -> std::io::Result<()> {
        let stamp = WrittenFile::stamp(&std::fs::symlink_metadata(abs)?);
        self.0
            .insert(rel.to_string(), WrittenFile::stamped(sha256, stamp));
        Ok(())
    }

    /// Relative path → SHA-256 of every file recorded.
    pub fn hashes(&self) -> std::collections::BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(rel, w)| (rel.clone(), w.sha256.clone()))
            .collect()
    }

    /// Records that `rel` held the bytes hashed when it was read ([`hash_file_stamped`]): the
    /// hash stands for the file while it is still that same file, as for one written.
    pub(crate) fn add_read(&mut self, rel: &str, read: WrittenFile) {
        self.0.insert(rel.to_string(), read);
    }

    /// Forgets `rel` (the file was moved or is about to be rewritten).
    pub fn forget(&mut self, rel: &str) -> Option<WrittenFile> {
        self.0.remove(rel)
    }

    /// The SHA-256 recorded for `rel`, while `abs` is still the file that was written.
    pub fn sha256_of(&self, rel: &str, abs: &Path) -> Option<String> {
        self.still(rel, abs).map(|(_, sha)| sha)
    }

    /// The hash recorded for `rel`, while `abs` is still the file that was written.
    fn still(&self, rel: &str, abs: &Path) -> Option<(u64, String)> {
        let w = self.0.get(rel)?;
        let meta = std::fs::symlink_metadata(abs).ok()?;
        (meta.is_file() && WrittenFile::stamp(&meta) == w.stamp)
            .then(|| (w.stamp.2, w.sha256.clone()))
    }
}

/// [`seal`], taking the hashes of the files this process `written` (while they are unchanged)
/// instead of reading them again.
pub fn seal_with(run_dir: &Path, written: &Written) -> Result<Manifest, ReportError> {
    let jpath = run_dir.join(journal::FILE_NAME);
    if !jpath.is_file() {
        return Err(ReportError::NoJournal {
            reason: "journal.jsonl is missing".into(),
        });
    }
    let entries = journal::verify_chain(&jpath)?;
    if entries.is_empty() {
        return Err(ReportError::NoJournal {
            reason: "journal.jsonl is empty".into(),
        });
    }
    let mut found = Vec::new();
    for f in walk(run_dir)? {
        if outside_seal(&f.rel, &f.kind) {
            continue;
        }
        match f.kind {
            FoundKind::Symlink => return Err(ReportError::Symlink { path: f.abs }),
            FoundKind::Other => {
                return Err(ReportError::BadFileName {
                    path: f.abs,
                    reason: "not a regular file".into(),
                })
            }
            FoundKind::File => found.push(f),
        }
    }
    // What this process did not write (or that changed since) is read, on a few threads.
    let known: Vec<Option<(u64, String)>> = found
        .iter()
        .map(|f| written.still(&f.rel, &f.abs))
        .collect();
    let todo: Vec<(String, PathBuf)> = found
        .iter()
        .zip(&known)
        .filter(|(_, k)| k.is_none())
        .map(|(f, _)| (f.rel.clone(), f.abs.clone()))
        .collect();
    let mut hashed = hash_files(&todo).into_iter();
    let mut files = Vec::new();
    let mut sums = String::new();
    for (f, known) in found.into_iter().zip(known) {
        let (size, sha) = match known {
            Some(known) => known,
            None => match hashed.next() {
                Some(r) => r.map(|(size, sha, _)| (size, sha))?,
                None => hash_file(&f.abs)?,
            },
        };
        sums.push_str(&sums_line(&sha, &f.rel));
        files.push(ManifestFile {
            path: f.rel,
            size,
            sha256: sha,
        });
    }
    let known: std::collections::BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    let raw = crate::report::verify::check_raw(run_dir, &known)?;
    if !raw.is_empty() {
        return Err(ReportError::RawMismatch { problems: raw });
    }
    // The journal as hashed above: sealing is the last write, nothing appends meanwhile.
    let manifest = Manifest {
        format: 1,
        tool: "respond".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        files,
        journal_entries: entries.len() as u64,
        journal_last_hash: entries.last().map(|e| e.hash.clone()),
        sha256sums_sha256: fsutil::sha256_hex(sums.as_bytes()),
    };
    let write = |name: &str, bytes: &[u8]| {
        fsutil::write_private(&run_dir.join(name), bytes).map_err(|source| ReportError::Write {
            path: name.into(),
            source,
        })
    };
    write(SUMS_FILE, sums.as_bytes())?;
    let mut json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    json.push(b'\n');
    write(MANIFEST_FILE, &json)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_lines_round_trip_with_escapes() {
        let hex = "a".repeat(64);
        for p in ["raw/x.body", "odd\\name", "new\nline"] {
            let line = sums_line(&hex, p);
            let (h, back) = parse_sums_line(line.trim_end_matches('\n')).unwrap();
            assert_eq!(h, hex);
            assert_eq!(back, p);
        }
        assert!(parse_sums_line("zz  x").is_none());
        assert!(parse_sums_line(&format!("{hex} x")).is_none());
    }

    /// A file read and hashed is vouched for while it stays the same file: a rewrite (even
    /// one of the same size) makes the seal read it again. Many files hashed on several
    /// threads give the hashes one thread gives.
    #[test]
    fn files_read_are_vouched_for_only_while_unchanged() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let files: Vec<(String, PathBuf)> = (0..40)
            .map(|i| {
                let rel = format!("f{i}.bin");
                let abs = dir.join(&rel);
                let body = vec![(i % 251) as u8; i * 997 + HASH_BUFFER * (i % 3)];
                fsutil::write_private(&abs, &body).unwrap();
                (rel, abs)
            })
            .collect();
        let many = hash_files(&files);
        let mut read = Written::default();
        for ((rel, abs), r) in files.iter().zip(many) {
            let (size, sha, unchanged) = r.unwrap();
            let bytes = std::fs::read(abs).unwrap();
            assert_eq!(
                (size, sha.clone()),
                (bytes.len() as u64, fsutil::sha256_hex(&bytes))
            );
            read.add_read(
                rel,
                unchanged.expect("nothing changed the file while it was read"),
            );
            assert_eq!(read.sha256_of(rel, abs), Some(sha));
        }
        let (rel, abs) = &files[5];
        let len = std::fs::metadata(abs).unwrap().len() as usize;
        fsutil::write_private(abs, &vec![0xAA; len]).unwrap();
        assert_eq!(
            read.sha256_of(rel, abs),
            None,
            "a rewritten file is read again"
        );
        assert!(hash_files(&[("gone".into(), dir.join("gone"))])[0].is_err());
    }

    /// A same-size edit that puts the old modification time back (`touch -r`, `cp -p`) is
    /// still a change: the stamp holds the inode's change time too, which no process sets.
    #[test]
    fn an_edit_with_its_modification_time_put_back_is_read_again() {
        let t = tempfile::tempdir().unwrap();
        let abs = t.path().join("raw.body");
        fsutil::write_private(&abs, b"{\"price\":\"100\"}").unwrap();
        let mtime = std::fs::metadata(&abs).unwrap().modified().unwrap();
        let (_, sha, read) = hash_file_stamped(&abs).unwrap();
        let mut written = Written::default();
        written.add_read("raw.body", read.unwrap());
        assert_eq!(written.sha256_of("raw.body", &abs), Some(sha));
        std::thread::sleep(std::time::Duration::from_millis(20));
        {
            use std::io::{Seek, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&abs).unwrap();
            f.seek(std::io::SeekFrom::Start(10)).unwrap();
            f.write_all(b"9").unwrap();
            f.set_modified(mtime).unwrap();
        }
        assert_eq!(std::fs::metadata(&abs).unwrap().modified().unwrap(), mtime);
        assert_eq!(written.sha256_of("raw.body", &abs), None);
    }

    /// The seal takes a hash recorded at write time only while the file is the one written:
    /// a file replaced since (same size, new content) is read again, so the seal states what
    /// is on disk; and the hash taken is what the writer wrote, so a file changed in place
    /// afterwards shows as a mismatch instead of being sealed over.
    #[test]
    fn written_hashes_are_used_only_for_the_file_as_written() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let j = crate::engine::journal::Journal::create(dir).unwrap();
        j.append("run_start", serde_json::json!({})).unwrap();
        drop(j);
        let a = dir.join("a.txt");
        let b = dir.join("b.txt");
        fsutil::write_private(&a, b"same size 1").unwrap();
        fsutil::write_private(&b, b"same size 1").unwrap();
        let mut written = Written::default();
        let sha = fsutil::sha256_hex(b"same size 1");
        written.add("a.txt", &a, sha.clone()).unwrap();
        written.add("b.txt", &b, sha.clone()).unwrap();
        // b is replaced (a new file, same size) after it was recorded.
        fsutil::write_private(&b, b"same size 2").unwrap();
        let m = seal_with(dir, &written).unwrap();
        let of = |p: &str| m.files.iter().find(|f| f.path == p).unwrap().sha256.clone();
        assert_eq!(of("a.txt"), sha);
        assert_eq!(of("b.txt"), fsutil::sha256_hex(b"same size 2"));
        assert!(crate::report::verify::verify(dir).unwrap().ok);
    }
}
