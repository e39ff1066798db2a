//! The run directory: one evidence bundle per run.
//!
//! Owns where a run's files live, their privacy (0700 directory, 0600 files, no symlinks, no
//! path from data escaping it), the verbatim recording of every exchange response under
//! `raw/` with its sidecar, and the one-writer-per-run lock ([`RunLock`]). The journal,
//! reports and manifest are written by their own modules through [`RunDir::write`].
//!
//! Every command that writes a run directory holds its [`RunLock`] for as long as it writes:
//! an exclusive `flock(2)` on [`LOCK_FILE`] inside the directory. The kernel drops it when the
//! process ends, however it ends, so a SIGKILLed run never blocks its resume; a second
//! process is refused at once with the holder's pid and start time. The lock file is not
//! evidence: it only names the last holder, `SHA256SUMS` never lists it and `respond evidence
//! verify` ignores it (and only it, and only as a regular file).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::exchange::Provenance;
use crate::fsutil;

/// A run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    raw_seq: Arc<AtomicU64>,
}

/// `evidence/<UTC yyyymmddThhmmssZ>-<exchange>-<key first4...last4>`.
pub fn bundle_name(started: DateTime<Utc>, exchange: &str, masked_key: &str) -> String {
    format!(
        "{}-{}-{}",
        started.format("%Y%m%dT%H%M%SZ"),
        fsutil::file_component(exchange),
        masked_key.replace('/', "_")
    )
}

impl RunDir {
    /// Creates a new run directory (it must not exist).
    pub fn create(root: &Path) -> std::io::Result<Self> {
        fsutil::create_new_private_dir(root)?;
        for sub in ["raw", "bot"] {
            fsutil::create_private_dir(&root.join(sub))?;
        }
        Ok(RunDir {
            root: root.to_path_buf(),
            raw_seq: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Opens an existing run directory to write more into it (resume, analyze, a drill's
    /// scorecard); the caller holds its [`RunLock`]. Leftover temp files of an interrupted
    /// atomic write are removed anywhere in the bundle (they are never evidence: the file
    /// they were to replace is still there); the raw counter continues after the highest.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let meta = std::fs::symlink_metadata(root)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a run directory", root.display()),
            ));
        }
        remove_temp_files(root);
        let mut max = 0u64;
        let raw = root.join("raw");
        if let Ok(rd) = std::fs::read_dir(&raw) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(n) = name.split('-').next().and_then(|n| n.parse::<u64>().ok()) {
                    max = max.max(n);
                }
            }
        }
        Ok(RunDir {
            root: root.to_path_buf(),
            raw_seq: Arc::new(AtomicU64::new(max)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a file inside the bundle; refuses paths that would escape it.
    pub fn join(&self, rel: &str) -> std::io::Result<PathBuf> {
        fsutil::safe_join(&self.root, rel)
    }

    /// Writes a private file (atomically, redacted) at `rel`, creating parent folders.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let p = self.join(rel)?;
        if let Some(parent) = p.parent() {
            fsutil::create_private_dir(parent)?;
        }
        fsutil::write_private(&p, bytes)?;
        Ok(p)
    }

    /// A private file at `rel` written piece by piece ([`fsutil::PieceWriter`]), creating
    /// parent folders.
    pub fn write_pieces(&self, rel: &str) -> std::io::Result<fsutil::PieceWriter> {
        let p = self.join(rel)?;
        if let Some(parent) = p.parent() {
            fsutil::create_private_dir(parent)?;
        }
        fsutil::PieceWriter::create(&p)
    }

    /// Saves one raw exchange response verbatim (after redaction) with its sidecar, before
    /// anything parses it. Returns where it went and its hash.
    pub fn record_raw(&self, exchange: RawExchange<'_>) -> std::io::Result<Provenance> {
        self.record_raw_with(exchange, "")
    }

    /// [`RunDir::record_raw`] naming, beside the masked key, the fingerprint of the
    /// credentials that signed the request ([`RawSidecar::credentials`]; empty: not told).
    pub fn record_raw_with(
        &self,
        exchange: RawExchange<'_>,
        credentials: &str,
    ) -> std::io::Result<Provenance> {
        let n = self.raw_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let slug = fsutil::file_component(&exchange.path.trim_start_matches('/').replace('/', "_"));
        let base = format!("raw/{n:06}-{}-{slug}", exchange.method);
        let body_rel = format!("{base}.body");
        let meta_rel = format!("{base}.meta.json");
        let body = crate::secret::redactor()
            .redact_bytes(exchange.body)
            .into_owned();
        let sha = fsutil::sha256_hex(&body);
        self.write(&body_rel, &body)?;
        let sidecar = RawSidecar {
            seq: n,
            method: exchange.method.to_string(),
            endpoint: exchange.path.to_string(),
            params: exchange.params.to_vec(),
            status: exchange.status,
            requested_at: exchange
                .requested_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            responded_at: exchange
                .responded_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            key: exchange.key_masked.to_string(),
            body_file: body_rel.clone(),
            body_sha256: sha.clone(),
            headers: exchange.headers.to_vec(),
            credentials: credentials.to_string(),
        };
        let json = serde_json::to_vec_pretty(&sidecar).map_err(std::io::Error::other)?;
        self.write(&meta_rel, &json)?;
        Ok(Provenance {
            raw_file: body_rel,
            raw_sha256: sha,
        })
    }
}

/// Whether a file name is one of [`fsutil::write_private`]'s temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Removes temp files of interrupted atomic writes under `dir`, never following a symlink.
fn remove_temp_files(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            remove_temp_files(&e.path());
        } else if ft.is_file() && is_temp_name(&e.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The lock file inside every run directory (see the module documentation).
pub const LOCK_FILE: &str = ".respond.lock";

/// The process holding a run's lock, as it wrote itself into [`LOCK_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    /// When it took the lock (UTC, milliseconds).
    pub since: String,
}

/// Why a run's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another respond ({}) is working on this run ({})", holder_text(.holder), .dir.display())]
    Busy {
        dir: PathBuf,
        holder: Option<LockHolder>,
    },
    #[error("cannot lock the run directory ({}): {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn holder_text(h: &Option<LockHolder>) -> String {
    match h {
        Some(h) => format!("pid {}, since {}", h.pid, h.since),
        None => "pid not recorded yet".into(),
    }
}

impl LockError {
    /// What the user can do.
    pub fn hint(&self) -> String {
        match self {
            LockError::Busy { holder, .. } => {
                let stop = match holder {
                    Some(h) => format!("stop it (`kill {}`)", h.pid),
                    None => "stop it".into(),
                };
                format!("wait for it to finish, or {stop} and then `respond resume` the run; one process writes a run at a time")
            }
            LockError::Io { .. } => {
                "check the permissions of the run directory (it must be yours)".into()
            }
        }
    }
}

/// An advisory lock on a run directory, held until dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// `flock(2)` without waiting: `Ok(false)` when another open file holds a conflicting lock.
/// (`File::try_lock` does the same safely, but only from Rust 1.89, above this crate's
/// declared minimum; this is the crate's one `unsafe` block.)
#[allow(unsafe_code)]
fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: `flock` only reads its two integer arguments; the descriptor is owned by `file`,
    // which outlives the call, and no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Reads the holder from the lock file. The holder writes itself right after locking, so an
/// empty file is given a moment to fill.
fn read_holder(path: &Path) -> Option<LockHolder> {
    for _ in 0..20 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut pid = None;
        let mut since = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("pid ") {
                pid = v.trim().parse::<u32>().ok();
            } else if let Some(v) = line.strip_prefix("since ") {
                since = Some(v.trim().to_string());
            }
        }
        if let (Some(pid), Some(since)) = (pid, since) {
            return Some(LockHolder { pid, since });
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

impl RunLock {
    /// Takes the exclusive lock of the run in `dir` without waiting, and records this
    /// process's pid and the time in the lock file. `Busy` names the holder.
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        if !flock(&file, libc::LOCK_EX).map_err(io)? {
            return Err(LockError::Busy {
                dir: dir.to_path_buf(),
                holder: read_holder(&path),
            });
        }
        let since = crate::time::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let text = format!("pid {}\nsince {since}\n", std::process::id());
        file.set_len(0).map_err(io)?;
        file.write_all_at(text.as_bytes(), 0).map_err(io)?;
        Ok(RunLock { _file: file })
    }

    /// Takes a shared lock of the run in `dir`, for reading it whole (copying it) while no
    /// writer works on it. `Ok(None)` when the run has no lock file (nothing ever locked it).
    pub fn shared(dir: &Path) -> Result<Option<RunLock>, LockError> {
        let path = dir.join(LOCK_FILE);
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Io { path, source }),
        };
        match flock(&file, libc::LOCK_SH) {
            Ok(true) => Ok(Some(RunLock { _file: file })),
            Ok(false) => Err(LockError::Busy {
                dir: dir.to_path_buf(),
                holder: read_holder(&path),
            }),
            Err(source) => Err(LockError::Io { path, source }),
        }
    }
}

/// One request/response pair to record.
pub struct RawExchange<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Parameters in the order sent; never the token or key.
    pub params: &'a [(String, String)],
    pub status: u16,
    pub requested_at: DateTime<Utc>,
    pub responded_at: DateTime<Utc>,
    /// Masked id of the key used.
    pub key_masked: &'a str,
    /// Response headers worth keeping (rate-limit, date), never Authorization.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The sidecar written next to each raw body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawSidecar {
    pub seq: u64,
    pub method: String,
    pub endpoint: String,
    pub params: Vec<(String, String)>,
    pub status: u16,
    pub requested_at: String,
    pub responded_at: String,
    pub key: String,
    pub body_file: String,
    pub body_sha256: String,
    pub headers: Vec<(String, String)>,
    /// A fingerprint of the credentials that signed the request (never the secret: a hash the
    /// adapter derives from it, or from its public key), so a resume tells the same key name
    /// signed with other credentials apart. Empty for public calls, for adapters that do not
    /// give one, and in bundles written before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub credentials: String,
}

#[cfg(test)]
impl RunDir {
    /// Records an answer as a test needs one: now, no parameters or headers, a fixed masked
    /// key.
    pub(crate) fn record_test_answer(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &[u8],
    ) -> Provenance {
        let now = Utc::now();
        self.record_raw(RawExchange {
            method,
            path,
            params: &[],
            status,
            requested_at: now,
            responded_at: now,
            key_masked: "abcd...wxyz",
            headers: &[],
            body,
        })
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_responses_are_numbered_and_hashed() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        let p = rd.record_test_answer("GET", "/v1/accounts", 200, b"[]");
        assert_eq!(p.raw_file, "raw/000001-GET-v1_accounts.body");
        assert_eq!(p.raw_sha256, fsutil::sha256_hex(b"[]"));
        let reopened = RunDir::open(rd.path()).unwrap();
        let p2 = reopened.record_test_answer("GET", "/v1/api_keys", 200, b"[]");
        assert!(p2.raw_file.starts_with("raw/000002-"));
    }

    #[test]
    fn one_lock_holder_at_a_time_and_dropping_releases() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        let first = RunLock::acquire(rd.path()).unwrap();
        // flock is per open file: a second acquisition conflicts even in the same process.
        let err = RunLock::acquire(rd.path()).unwrap_err();
        let LockError::Busy { holder, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(holder.as_ref().unwrap().pid, std::process::id());
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "another respond (pid {}, since 20",
                std::process::id()
            )),
            "{msg}"
        );
        assert!(matches!(
            RunLock::shared(rd.path()),
            Err(LockError::Busy { .. })
        ));
        drop(first);
        let shared = RunLock::shared(rd.path()).unwrap().unwrap();
        assert!(
            RunLock::acquire(rd.path()).is_err(),
            "a reader keeps writers out"
        );
        drop(shared);
        let _again = RunLock::acquire(rd.path()).unwrap();
        // A symlink in place of the lock file is refused, not followed.
        let other = tempfile::tempdir().unwrap();
        let d2 = other.path().join("run2");
        std::fs::create_dir(&d2).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), d2.join(LOCK_FILE)).unwrap();
        assert!(matches!(RunLock::acquire(&d2), Err(LockError::Io { .. })));
        assert!(!t.path().join("elsewhere").exists());
    }

    #[test]
    fn reopening_removes_temp_files_everywhere_but_keeps_evidence() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        rd.write("export/orders.json", b"[]").unwrap();
        for rel in [
            ".orders.csv.tmp-1-2",
            "raw/.000001-GET-x.body.tmp-1-3",
            "export/.orders.json.tmp-9-9",
        ] {
            std::fs::write(rd.path().join(rel), b"partial").unwrap();
        }
        RunDir::open(rd.path()).unwrap();
        assert!(!rd.path().join(".orders.csv.tmp-1-2").exists());
        assert!(!rd.path().join("raw/.000001-GET-x.body.tmp-1-3").exists());
        assert!(!rd.path().join("export/.orders.json.tmp-9-9").exists());
        assert!(rd.path().join("export/orders.json").exists());
    }
}
