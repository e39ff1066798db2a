//! The run directory: one evidence bundle per run.
//!
//! Owns where a run's files live, their privacy (0700 directory, 0600 files, no symlinks, no
//! path from data escaping it) and the verbatim recording of every exchange response under
//! `raw/` with its sidecar. The journal, reports and manifest are written by their own modules
//! through [`RunDir::write`].

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

/// `evidence/<UTC yyyymmddThhmmssZ>-<exchange>-<key first4…last4>`.
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

    /// Opens an existing run directory (for resume, analyze, verify). Leftover temp files of
    /// an interrupted atomic write are removed; the raw counter continues after the highest.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let meta = std::fs::symlink_metadata(root)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a run directory", root.display()),
            ));
        }
        let mut max = 0u64;
        let raw = root.join("raw");
        if let Ok(rd) = std::fs::read_dir(&raw) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && name.contains(".tmp-") {
                    let _ = std::fs::remove_file(e.path());
                    continue;
                }
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

    /// Saves one raw exchange response verbatim (after redaction) with its sidecar, before
    /// anything parses it. Returns where it went and its hash.
    pub fn record_raw(&self, exchange: RawExchange<'_>) -> std::io::Result<Provenance> {
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
        };
        let json = serde_json::to_vec_pretty(&sidecar).map_err(std::io::Error::other)?;
        self.write(&meta_rel, &json)?;
        Ok(Provenance {
            raw_file: body_rel,
            raw_sha256: sha,
        })
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_responses_are_numbered_and_hashed() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        let now = Utc::now();
        let p = rd
            .record_raw(RawExchange {
                method: "GET",
                path: "/v1/accounts",
                params: &[],
                status: 200,
                requested_at: now,
                responded_at: now,
                key_masked: "abcd…wxyz",
                headers: &[],
                body: b"[]",
            })
            .unwrap();
        assert_eq!(p.raw_file, "raw/000001-GET-v1_accounts.body");
        assert_eq!(p.raw_sha256, fsutil::sha256_hex(b"[]"));
        let reopened = RunDir::open(rd.path()).unwrap();
        let p2 = reopened
            .record_raw(RawExchange {
                method: "GET",
                path: "/v1/api_keys",
                params: &[],
                status: 200,
                requested_at: now,
                responded_at: now,
                key_masked: "abcd…wxyz",
                headers: &[],
                body: b"[]",
            })
            .unwrap();
        assert!(p2.raw_file.starts_with("raw/000002-"));
    }
}
