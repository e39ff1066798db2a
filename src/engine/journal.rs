//! The run journal: `journal.jsonl`, append-only and hash-chained.
//!
//! Each line is one compact JSON object with the fields, in this order:
//! `seq` (1-based), `ts` (UTC, milliseconds, `Z`), `event` (`run_start`, `step_start`,
//! `step_attempt`, `step_end`, `run_end`, `note`, `reopen` (a sealed bundle was verified and
//! opened for more writes), `analyze`, `copy`, …), `data` (event-specific object), `prev`
//! (the previous entry's `hash`, or 64 zeros for the first) and `hash`: the lowercase hex
//! SHA-256 of the line's bytes as serialized *without* the `hash` field (the same object
//! with `seq, ts, event, data, prev` only, compact). Text is redacted before it is hashed, so
//! the chain covers exactly what is on disk. Every append is flushed and fsynced: a killed
//! process loses at most the entry being written, and a torn last line (no newline) is
//! detected, and trimmed on resume.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::events::Event;
use crate::fsutil;

pub const FILE_NAME: &str = "journal.jsonl";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One journal entry as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub ts: String,
    pub event: String,
    pub data: Value,
    pub prev: String,
    pub hash: String,
}

#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    ts: &'a str,
    event: &'a str,
    data: &'a Value,
    prev: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Broken {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// The journal of one run, open for appending.
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    file: File,
    seq: u64,
    last_hash: String,
}

fn hash_of(seq: u64, ts: &str, event: &str, data: &Value, prev: &str) -> String {
    let unsealed = Unsealed {
        seq,
        ts,
        event,
        data,
        prev,
    };
    let bytes = serde_json::to_vec(&unsealed).expect("journal entry serializes");
    fsutil::sha256_hex(&bytes)
}

/// Formats a time the way the journal and the bundle do: UTC, milliseconds, `Z`.
pub use crate::time::ts;

impl Journal {
    /// Creates a new, empty journal in `dir`.
    pub fn create(dir: &Path) -> Result<Self, JournalError> {
        let path = dir.join(FILE_NAME);
        if path.exists() {
            return Err(JournalError::Broken {
                path,
                line: 0,
                message: "journal already exists".into(),
            });
        }
        let file = fsutil::open_append_private(&path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Journal {
            path,
            state: Mutex::new(State {
                file,
                seq: 0,
                last_hash: GENESIS.to_string(),
            }),
        })
    }

    /// Opens an existing journal to continue it: verifies the chain, trims a torn last line
    /// (returned as `Some(bytes_removed)`), and positions after the last entry.
    pub fn reopen(dir: &Path) -> Result<(Self, Vec<Entry>, Option<usize>), JournalError> {
        let path = dir.join(FILE_NAME);
        let torn = trim_torn_tail(&path)?;
        let entries = verify_chain(&path)?;
        let file = fsutil::open_append_private(&path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        let (seq, last_hash) = entries
            .last()
            .map(|e| (e.seq, e.hash.clone()))
            .unwrap_or((0, GENESIS.to_string()));
        Ok((
            Journal {
                path,
                state: Mutex::new(State {
                    file,
                    seq,
                    last_hash,
                }),
            },
            entries,
            torn,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry stamped `at`, flushed and fsynced before returning.
    pub fn append_at(
        &self,
        at: DateTime<Utc>,
        event: &str,
        data: Value,
    ) -> Result<Entry, JournalError> {
        // Redact the data's text before hashing, so the chain covers what is on disk.
        let text = serde_json::to_string(&data).expect("json value serializes");
        let red = crate::secret::redact(&text);
        let data: Value = match red {
            std::borrow::Cow::Borrowed(_) => data,
            std::borrow::Cow::Owned(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let seq = st.seq + 1;
        let ts = ts(at);
        let hash = hash_of(seq, &ts, event, &data, &st.last_hash);
        let entry = Entry {
            seq,
            ts,
            event: event.to_string(),
            data,
            prev: st.last_hash.clone(),
            hash,
        };
        let mut line = serde_json::to_vec(&entry).expect("entry serializes");
        line.push(b'\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        st.file.write_all(&line).map_err(io)?;
        st.file.flush().map_err(io)?;
        st.file.sync_data().map_err(io)?;
        st.seq = seq;
        st.last_hash = entry.hash.clone();
        Ok(entry)
    }

    /// Appends one entry stamped now.
    pub fn append(&self, event: &str, data: Value) -> Result<Entry, JournalError> {
        self.append_at(crate::time::now(), event, data)
    }

    /// Appends one typed event stamped `at`.
    pub fn record_at(&self, at: DateTime<Utc>, event: &Event) -> Result<Entry, JournalError> {
        let (name, data) = event.parts();
        self.append_at(at, &name, data)
    }

    /// Appends one typed event stamped now.
    pub fn record(&self, event: &Event) -> Result<Entry, JournalError> {
        self.record_at(crate::time::now(), event)
    }
}

/// Removes an unterminated last line (a write cut short by a crash). Returns bytes removed.
pub fn trim_torn_tail(path: &Path) -> Result<Option<usize>, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(None);
    }
    let keep = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io)?;
    f.set_len(keep as u64).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(Some(bytes.len() - keep))
}

/// Like [`verify_chain`], but an unterminated last line (a write cut short by a crash, which
/// [`Journal::reopen`] trims) is set aside instead of failing: returns the entries before it
/// and the torn tail's length. Reads only; changes nothing on disk.
pub fn verify_chain_tolerant(path: &Path) -> Result<(Vec<Entry>, Option<usize>), JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let keep = if bytes.is_empty() || bytes.ends_with(b"\n") {
        bytes.len()
    } else {
        bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0)
    };
    let torn = (keep < bytes.len()).then(|| bytes.len() - keep);
    let entries = verify_reader(path, &bytes[..keep])?;
    Ok((entries, torn))
}

/// Reads and checks the whole chain: sequence numbers, `prev` links and every hash.
pub fn verify_chain(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let f = File::open(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    verify_reader(path, f)
}

fn verify_reader(path: &Path, f: impl std::io::Read) -> Result<Vec<Entry>, JournalError> {
    let (entries, _, err) = walk_chain(path, f)?;
    match err {
        Some(e) => Err(e),
        None => Ok(entries),
    }
}

/// The longest prefix of the journal at `path` whose chain verifies: its entries and its
/// length in bytes (to keep what is sound of a damaged journal; the rest is the caller's to
/// preserve as it is).
pub fn verified_prefix(path: &Path) -> Result<(Vec<Entry>, usize), JournalError> {
    let f = File::open(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (entries, bytes, _) = walk_chain(path, f)?;
    Ok((entries, bytes))
}

/// Checks entry after entry until the first that does not verify: the good entries, their
/// length in bytes, and what is wrong with the next line, if anything. `Err` only on I/O.
fn walk_chain(
    path: &Path,
    f: impl std::io::Read,
) -> Result<(Vec<Entry>, usize, Option<JournalError>), JournalError> {
    let mut out: Vec<Entry> = Vec::new();
    let mut prev = GENESIS.to_string();
    let broken = |line: u64, message: String| JournalError::Broken {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = BufReader::new(f);
    let mut buf = Vec::new();
    let mut lineno = 0u64;
    let mut good = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        lineno += 1;
        if !buf.ends_with(b"\n") {
            let e = broken(
                lineno,
                "last entry is incomplete (the run was interrupted while writing it)".into(),
            );
            return Ok((out, good, Some(e)));
        }
        let entry: Entry = match serde_json::from_slice(&buf[..buf.len() - 1]) {
            Ok(e) => e,
            Err(e) => {
                let e = broken(lineno, format!("not a journal entry: {e}"));
                return Ok((out, good, Some(e)));
            }
        };
        let problem = if entry.seq != lineno {
            Some(format!(
                "sequence number {} where {} was expected (an entry was removed or reordered)",
                entry.seq, lineno
            ))
        } else if entry.prev != prev {
            Some("chain broken: `prev` does not match the previous entry's hash".into())
        } else if hash_of(entry.seq, &entry.ts, &entry.event, &entry.data, &entry.prev)
            != entry.hash
        {
            Some("entry was altered: its hash does not match its content".into())
        } else {
            None
        };
        if let Some(m) = problem {
            return Ok((out, good, Some(broken(lineno, m))));
        }
        prev = entry.hash.clone();
        good += n;
        out.push(entry);
    }
    Ok((out, good, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chain_verifies_and_detects_changes() {
        let t = tempfile::tempdir().unwrap();
        let j = Journal::create(t.path()).unwrap();
        j.append("run_start", json!({"version": "x"})).unwrap();
        j.append("step_start", json!({"step": "a"})).unwrap();
        j.append("step_end", json!({"step": "a", "status": "ok"}))
            .unwrap();
        let p = t.path().join(FILE_NAME);
        assert_eq!(verify_chain(&p).unwrap().len(), 3);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("\"ok\"", "\"failed\"")).unwrap();
        let err = verify_chain(&p).unwrap_err().to_string();
        assert!(err.contains(":3:"), "{err}");
    }

    #[test]
    fn torn_tail_is_detected_then_trimmed_on_reopen() {
        let t = tempfile::tempdir().unwrap();
        let j = Journal::create(t.path()).unwrap();
        j.append("run_start", json!({})).unwrap();
        drop(j);
        let p = t.path().join(FILE_NAME);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":2,\"ts\":\"2026").unwrap();
        drop(f);
        assert!(verify_chain(&p).is_err());
        let (j, entries, torn) = Journal::reopen(t.path()).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(torn.is_some());
        j.append("note", json!({"torn": true})).unwrap();
        assert_eq!(verify_chain(&p).unwrap().len(), 2);
    }
}

#[cfg(test)]
mod float_tests {
    use super::*;
    use serde_json::json;

    /// Regression: a float that the default (fast, inexact) float parser reads back a bit
    /// off made a drill's journal entry fail verification. Floats must round-trip exactly.
    #[test]
    fn floats_in_entries_round_trip_through_verification() {
        let t = tempfile::tempdir().unwrap();
        let j = Journal::create(t.path()).unwrap();
        let values: Vec<f64> = (1..200).map(|i| 1.0 / i as f64 * 0.987_654_321).collect();
        j.append(
            "note",
            json!({"recall": 20.0 / 22.0, "f1": 0.952_380_952_380_952_4, "many": values}),
        )
        .unwrap();
        verify_chain(&t.path().join(FILE_NAME)).unwrap();
    }
}
