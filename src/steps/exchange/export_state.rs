//! The resume state of `exchange.export_history` as an append-only journal
//! (`<step id>-export-state.jsonl`): one JSON line per finished piece (a chunk, a split, open
//! orders, a transfer list, one market's candles, a window of fills), after a first line that
//! names the request. Each write appends one short line and syncs it, so saving after every
//! chunk costs the same at the thousandth chunk as at the first (the whole state rewritten
//! after every chunk grew quadratically with the number of orders).
//!
//! `exchange.export_fills` keeps its state the same way (`<step id>-fills-state.jsonl`): one
//! line per saved batch of fills, naming the batch file and the orders it settled.
//!
//! A crash can cut the last line short: a last line without its newline is set aside when the
//! journal is read and cut off before the next append (what it recorded is read again). Any
//! other line that does not parse is damage, reported with `file:line:column`.

use std::io::Write;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::export::{ChunkRecord, MergedRecord, Span};
use super::scan::FillChunk;
use super::serialize_error;
use crate::exchange::{MarketScan, Window};
use crate::rundir::RunDir;
use crate::steps::StepError;

/// What the resume of `export_history` reads: the journal's lines folded together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ExportState {
    /// The arguments that produced the window; a different request starts over.
    pub request: Value,
    pub window: Option<Window>,
    pub cap: u32,
    pub done: Vec<ChunkRecord>,
    /// Spans that came back full and were split.
    pub split: Vec<Span>,
    pub open_orders_done: bool,
    pub withdrawals_done: bool,
    pub deposits_done: bool,
    pub candles_done: Vec<String>,
    /// The markets chosen where history is kept per market.
    #[serde(default)]
    pub scan: Option<MarketScan>,
    /// Windows whose fills were read, where fills are listed per window.
    #[serde(default)]
    pub fills_done: Vec<FillChunk>,
    /// The closed orders were merged into one file and the chunk files removed: a resume
    /// reads that file instead of the chunks.
    #[serde(default)]
    pub merged: Option<MergedRecord>,
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StateEntry {
    /// The first line: the request, its window and the exchange's cap per call.
    Start {
        request: Value,
        window: Window,
        cap: u32,
    },
    Scan(MarketScan),
    Done(ChunkRecord),
    Split(Span),
    OpenOrdersDone,
    WithdrawalsDone,
    DepositsDone,
    CandlesDone(String),
    FillsDone(FillChunk),
    /// The merged orders were written and synced; the chunk files listed by `Done` lines are
    /// removed after this line (a crash may leave some of them behind).
    Merged(MergedRecord),
}

/// A state kept as a journal of entries: folded from its lines, written back as lines.
pub(super) trait Journaled: Default + DeserializeOwned {
    type Entry: Serialize + DeserializeOwned;
    /// Whether the journal's first line must be an entry that starts the state ([`Self::starts`]).
    const NEEDS_START: bool;
    /// Whether `e` starts the state over (what follows it is folded into a fresh state).
    fn starts(e: &Self::Entry) -> bool;
    fn apply(&mut self, e: Self::Entry);
    /// The journal lines that rebuild this state.
    fn entries(&self) -> Vec<Self::Entry>;
}

impl Journaled for ExportState {
    type Entry = StateEntry;
    const NEEDS_START: bool = true;

    fn starts(e: &StateEntry) -> bool {
        matches!(e, StateEntry::Start { .. })
    }

    fn apply(&mut self, e: StateEntry) {
        match e {
            StateEntry::Start {
                request,
                window,
                cap,
            } => {
                *self = ExportState {
                    request,
                    window: Some(window),
                    cap,
                    ..ExportState::default()
                }
            }
            StateEntry::Scan(s) => self.scan = Some(s),
            StateEntry::Done(c) => self.done.push(c),
            StateEntry::Split(s) => self.split.push(s),
            StateEntry::OpenOrdersDone => self.open_orders_done = true,
            StateEntry::WithdrawalsDone => self.withdrawals_done = true,
            StateEntry::DepositsDone => self.deposits_done = true,
            StateEntry::CandlesDone(m) => self.candles_done.push(m),
            StateEntry::FillsDone(f) => self.fills_done.push(f),
            StateEntry::Merged(m) => self.merged = Some(m),
        }
    }

    fn entries(&self) -> Vec<StateEntry> {
        let mut out = Vec::new();
        if let Some(window) = self.window {
            out.push(StateEntry::Start {
                request: self.request.clone(),
                window,
                cap: self.cap,
            });
        }
        out.extend(self.scan.clone().map(StateEntry::Scan));
        out.extend(self.split.iter().cloned().map(StateEntry::Split));
        out.extend(self.done.iter().cloned().map(StateEntry::Done));
        out.extend(self.merged.clone().map(StateEntry::Merged));
        for (flag, e) in [
            (self.open_orders_done, StateEntry::OpenOrdersDone),
            (self.withdrawals_done, StateEntry::WithdrawalsDone),
            (self.deposits_done, StateEntry::DepositsDone),
        ] {
            if flag {
                out.push(e);
            }
        }
        out.extend(
            self.candles_done
                .iter()
                .cloned()
                .map(StateEntry::CandlesDone),
        );
        out.extend(self.fills_done.iter().cloned().map(StateEntry::FillsDone));
        out
    }
}

/// The resume state of `export_fills`: the orders whose fills are saved, and the batch
/// files that hold them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct FillsState {
    pub done: Vec<String>,
    pub batches: Vec<String>,
}

/// One line of the fills journal: a saved batch (`file`) and the orders it settled. A line
/// without a file lists orders settled in batches named by earlier lines (a converted
/// earlier-format state).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FillsEntry {
    Batch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        order_ids: Vec<String>,
    },
}

impl Journaled for FillsState {
    type Entry = FillsEntry;
    const NEEDS_START: bool = false;

    fn starts(_: &FillsEntry) -> bool {
        false
    }

    fn apply(&mut self, e: FillsEntry) {
        let FillsEntry::Batch { file, order_ids } = e;
        self.batches.extend(file);
        self.done.extend(order_ids);
    }

    fn entries(&self) -> Vec<FillsEntry> {
        let mut out: Vec<FillsEntry> = self
            .batches
            .iter()
            .map(|f| FillsEntry::Batch {
                file: Some(f.clone()),
                order_ids: Vec::new(),
            })
            .collect();
        if !self.done.is_empty() {
            out.push(FillsEntry::Batch {
                file: None,
                order_ids: self.done.clone(),
            });
        }
        out
    }
}

/// The journal of one step's state `S`, open for appending.
pub(super) struct Journal<S> {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    _state: std::marker::PhantomData<S>,
}

/// The export's journal.
pub(super) type StateLog = Journal<ExportState>;

fn line<E: Serialize>(e: &E) -> Result<Vec<u8>, StepError> {
    let mut v = serde_json::to_vec(e).map_err(serialize_error)?;
    v.push(b'\n');
    Ok(v)
}

impl<S: Journaled> Journal<S> {
    /// The journal at `rel` and what it holds: `None` when there is none yet. A last line cut
    /// short is set aside (and cut off at the first append); a state written whole by an
    /// earlier version at `legacy` is read and turned into a journal.
    pub fn open(rd: &RunDir, rel: &str, legacy: &str) -> Result<(Self, Option<S>), StepError> {
        let path = rd.join(rel)?;
        let mut log = Journal {
            path,
            file: None,
            _state: std::marker::PhantomData,
        };
        let bytes = match std::fs::read(&log.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let old = rd.join(legacy)?;
                return match std::fs::read(&old) {
                    Ok(b) => {
                        let state: S = serde_json::from_slice(&b).map_err(|e| {
                            StepError::failed(format!(
                                "{} is damaged ({e}); delete it to start this part over",
                                old.display()
                            ))
                        })?;
                        log.rewrite(&state.entries())?;
                        std::fs::remove_file(&old)?;
                        Ok((log, Some(state)))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((log, None)),
                    Err(e) => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        };
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut state: Option<S> = None;
        for (i, l) in bytes[..whole].split(|&b| b == b'\n').enumerate() {
            if l.is_empty() {
                continue;
            }
            let e: S::Entry = serde_json::from_slice(l).map_err(|e| {
                StepError::failed(format!(
                    "{}:{}:{} is damaged ({e}); delete the file to start this part over",
                    log.path.display(),
                    i + 1,
                    e.column()
                ))
            })?;
            match (&mut state, e) {
                (s, e) if S::starts(&e) => {
                    let mut fresh = S::default();
                    fresh.apply(e);
                    *s = Some(fresh);
                }
                (Some(s), e) => s.apply(e),
                (s @ None, e) if !S::NEEDS_START => {
                    let mut fresh = S::default();
                    fresh.apply(e);
                    *s = Some(fresh);
                }
                (None, _) => {
                    return Err(StepError::failed(format!(
                        "{}:{}: the first line must name the request; delete the file to start this part over",
                        log.path.display(),
                        i + 1
                    )))
                }
            }
        }
        if whole < bytes.len() {
            // A line cut short by a crash: what it recorded is read again.
            let f = crate::fsutil::open_append_private(&log.path)?;
            f.set_len(whole as u64)?;
            f.sync_all()?;
            log.file = Some(f);
        }
        Ok((log, state))
    }

    /// Starts the journal over with `state`'s lines (a new request, or a legacy state).
    pub fn start(&mut self, state: &S) -> Result<(), StepError> {
        self.rewrite(&state.entries())
    }

    fn rewrite(&mut self, entries: &[S::Entry]) -> Result<(), StepError> {
        self.file = None;
        let mut bytes = Vec::new();
        for e in entries {
            bytes.extend(line(e)?);
        }
        if let Some(parent) = self.path.parent() {
            crate::fsutil::create_private_dir(parent)?;
        }
        crate::fsutil::write_private(&self.path, &bytes)?;
        Ok(())
    }

    /// Appends one line and syncs it.
    pub fn append(&mut self, e: &S::Entry) -> Result<(), StepError> {
        let bytes = line(e)?;
        let bytes = crate::secret::redactor().redact_bytes(&bytes);
        if self.file.is_none() {
            self.file = Some(crate::fsutil::open_append_private(&self.path)?);
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(&bytes)?;
        f.sync_data()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn span(h: u32) -> Span {
        let t = |h| chrono::Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap();
        Span {
            from: t(h),
            to: t(h + 1),
            market: Some("AAA-BBB".into()),
        }
    }

    fn chunk(h: u32) -> ChunkRecord {
        ChunkRecord {
            span: span(h),
            count: 7,
            saturated: false,
            cursor: h % 2 == 0,
            file: format!("export/chunks/{h}.json"),
        }
    }

    fn started() -> ExportState {
        let s = span(0);
        ExportState {
            request: serde_json::json!({"since": "1d"}),
            window: Some(Window {
                from: s.from,
                to: s.to,
            }),
            cap: 1000,
            ..ExportState::default()
        }
    }

    #[test]
    fn appends_one_line_per_piece_and_reads_them_back_past_a_torn_last_line() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&tmp.path().join("run")).unwrap();
        let (mut log, none) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        assert!(none.is_none());
        log.start(&started()).unwrap();
        for h in 1..4 {
            log.append(&StateEntry::Done(chunk(h))).unwrap();
        }
        log.append(&StateEntry::Split(span(5))).unwrap();
        log.append(&StateEntry::CandlesDone("AAA-BBB".into()))
            .unwrap();
        let path = rd.join("s.jsonl").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 6, "one line per piece:\n{text}");
        // Each write appends: the first lines are never rewritten.
        let first_line = text.lines().next().unwrap().to_string();

        // A crash cut the next line short.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"done":{"from":"2026-11-01T0"#).unwrap();
        drop(f);
        let (mut log, state) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        let state = state.unwrap();
        assert_eq!(state.done, vec![chunk(1), chunk(2), chunk(3)]);
        assert_eq!(state.split, vec![span(5)]);
        assert_eq!(state.candles_done, vec!["AAA-BBB".to_string()]);
        assert_eq!(state.window, started().window);
        // The torn tail is cut off; the next append follows the last whole line.
        log.append(&StateEntry::Done(chunk(4))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(r#""2026-11-01T0""#) && text.ends_with('\n'));
        assert_eq!(text.lines().next().unwrap(), first_line);
        let (_, state) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        assert_eq!(state.unwrap().done.len(), 4);
    }

    #[test]
    fn the_merge_is_read_back_and_kept_when_the_journal_is_written_again() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&tmp.path().join("run")).unwrap();
        let (mut log, _) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        log.start(&started()).unwrap();
        log.append(&StateEntry::Done(chunk(1))).unwrap();
        let merged = MergedRecord {
            file: "export/orders.json".into(),
            sha256: "ab".repeat(32),
            closed: 7,
            open: 1,
        };
        log.append(&StateEntry::Merged(merged.clone())).unwrap();
        let (mut log, state) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        let state = state.unwrap();
        assert_eq!(state.merged.as_ref(), Some(&merged));
        assert_eq!(state.done, vec![chunk(1)]);
        log.start(&state).unwrap();
        let (_, again) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        assert_eq!(again.unwrap().merged, Some(merged));
    }

    #[test]
    fn a_damaged_line_before_the_last_is_named_with_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&tmp.path().join("run")).unwrap();
        let (mut log, _) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        log.start(&started()).unwrap();
        let path = rd.join("s.jsonl").unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"done\": 12}\n").unwrap();
        drop(f);
        log.append(&StateEntry::OpenOrdersDone).unwrap();
        let err = StateLog::open(&rd, "s.jsonl", "s.json").err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("s.jsonl:2:"), "{msg}");
    }

    #[test]
    fn a_state_written_whole_by_an_earlier_version_becomes_a_journal() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&tmp.path().join("run")).unwrap();
        let mut old = started();
        old.done = vec![chunk(1), chunk(2)];
        old.withdrawals_done = true;
        rd.write("s.json", &serde_json::to_vec_pretty(&old).unwrap())
            .unwrap();
        let (_, state) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        let state = state.unwrap();
        assert_eq!(state.done, old.done);
        assert!(state.withdrawals_done && !state.deposits_done);
        assert!(!rd.join("s.json").unwrap().exists());
        let (_, again) = StateLog::open(&rd, "s.jsonl", "s.json").unwrap();
        assert_eq!(again.unwrap().done, old.done);
    }
}
