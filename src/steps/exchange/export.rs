//! `exchange.export_history` and `exchange.export_fills`: the investigation's data.
//!
//! Closed orders are fetched in spans no longer than the adapter's longest window. Many
//! exchanges silently drop what exceeds the per-call cap, so a *full* answer is only evidence
//! for the part of its span it provably holds: where the adapter says which orders a full
//! answer keeps ([`FullPage`]: e.g. newest first), that is everything after the answer's
//! oldest order (its whole second, as times may be shown to the second, is left to the next
//! call), and the rest of the span is read next by that cursor. Where the adapter cannot say,
//! or the cursor cannot move (a page within one second), the span is halved and both halves
//! are read again (a short call, below, is first read again at the whole size). The chunks, each answered below the cap or continued
//! by cursor, tile the window exactly: the completeness proof (`<step id>-chunks.json`).
//!
//! Several reads are in flight at once (`CLOSED_IN_FLIGHT`), so the rate budget stays busy:
//! spans run side by side, and a long remainder is shared among idle lanes (each part costs at
//! most one partial page more). While lanes would stand idle, a span's first call, where it
//! follows the exchange's cursor over many pages, asks for a few pages only (`PROBE_PAGES`),
//! so its remainder is shared out after those instead of after the whole call. Every answer is
//! recorded in `raw/` by the adapter before it is parsed.
//!
//! Resume: every finished piece (a chunk, a split, open orders, transfers, one market's
//! candles, a batch of fills) is written to its own file under `export/` and recorded in a
//! state file before the next request, so an interrupted or key-dead export restarts where it
//! stopped (the raw responses of finished pieces are already in `raw/`): it reads only what no
//! finished chunk covers, however the interrupted attempt had divided its spans.
//!
//! Each export step has its own chunk folder (`export/chunks/<step id>/`) and merged list
//! ([`orders_file`]). The chunk files are resume state only: once their orders are merged
//! (the list written and synced, its SHA-256 recorded in the state), they are removed, so
//! every closed order is stored once per step. A resume after that reads the merged list back
//! (checked against the recorded SHA-256) instead of merging again.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Timelike, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::export_state::{ExportState, FillsEntry, FillsState, Journal, StateEntry, StateLog};
use super::records::{to_records_json, RecordList};
use super::scan::{self, WindowFills};
use super::{args, is_out_of_scope, ts, Race, ReadError};
use crate::exchange::{
    Candle, ClosedOrdersQuery, ErrorKind, Fill, FillsSource, FullPage, Market, MarketSelection,
    Order, OrderRef, Transfer, Window,
};
use crate::rundir::RunDir;
use crate::steps::{
    ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome,
};

/// Per-step files (a playbook may export twice, e.g. again after the key died): the resume
/// state and the completeness proof of step `id`.
fn state_file(step_id: &str) -> String {
    format!("{step_id}-export-state.jsonl")
}
/// Where an earlier version kept the whole state in one JSON document.
fn legacy_state_file(step_id: &str) -> String {
    format!("{step_id}-export-state.json")
}
fn fills_state_file(step_id: &str) -> String {
    format!("{step_id}-fills-state.jsonl")
}
/// Where an earlier version kept the fills state in one JSON document, rewritten whole after
/// every batch.
fn legacy_fills_state_file(step_id: &str) -> String {
    format!("{step_id}-fills-state.json")
}
fn chunks_file(step_id: &str) -> String {
    format!("{step_id}-chunks.json")
}

/// Reads a JSON file of the run directory, `None` when absent.
fn read_json<T: for<'de> Deserialize<'de>>(rd: &RunDir, rel: &str) -> Result<Option<T>, StepError> {
    let p = rd.join(rel)?;
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            StepError::failed(format!(
                "{} is damaged ({e}); delete it to start this part over",
                p.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes one of the export's lists (or an object holding one) a record per line
/// ([`super::records`]): every file this module writes grows with the account's history.
fn write_json<T: Serialize>(rd: &RunDir, rel: &str, v: &T) -> Result<(), StepError> {
    rd.write(rel, &to_records_json(v)?)?;
    Ok(())
}

/// One closed-orders query span.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub market: Option<String>,
}

/// A finished chunk: its answer was below the cap, or it is the provably whole part of a full
/// page continued by cursor (`cursor`), or it is `saturated` (full and too short to split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    #[serde(flatten)]
    pub span: Span,
    /// Orders of the chunk (those of its span; a cursor chunk leaves the boundary second to
    /// the next page).
    pub count: u32,
    /// The chunk was full and too short to split: orders may be missing.
    #[serde(default)]
    pub saturated: bool,
    /// The answer was a full page whose provable part is the chunk: newest first, every order
    /// after its oldest was in it, so the chunk starts just after that oldest order and the
    /// next page reads what is older; oldest first, the chunk ends just before the newest
    /// order and the next page reads what is newer.
    #[serde(default)]
    pub cursor: bool,
    /// Normalized orders of the chunk, relative to the run directory: resume state, removed
    /// once the export's orders are merged ([`MergedRecord`]).
    pub file: String,
}

/// The merged orders of an export, recorded once they are written and synced and before the
/// chunk files they came from are removed: where they are, the SHA-256 of the file as
/// written, and how many closed and open orders it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MergedRecord {
    pub file: String,
    pub sha256: String,
    pub closed: usize,
    pub open: usize,
}

/// Why a resume cannot read the merged orders its state records: the chunk files they came
/// from are gone, so nothing short of exporting again can rebuild them.
#[derive(Debug, thiserror::Error)]
enum MergedFileError {
    #[error("{file} is missing: the export merged its closed orders into it and removed the chunk files, so the export must be started over")]
    Missing { file: String, state: String },
    #[error("{file} is not the file the export merged (SHA-256 {found}, recorded {recorded}) and the chunk files it came from were removed, so the export must be started over")]
    Differs {
        file: String,
        state: String,
        recorded: String,
        found: String,
    },
}

impl From<MergedFileError> for StepError {
    fn from(e: MergedFileError) -> Self {
        let (MergedFileError::Missing { file, state }
        | MergedFileError::Differs { file, state, .. }) = &e;
        let hint = format!(
            "restore {file} from a copy of this run directory, or delete {state} to export the window again"
        );
        StepError::permanent(e.to_string(), hint)
    }
}

impl ChunkRecord {
    /// Whether the chunk's answer provably holds every order of its span.
    pub fn proven(&self, cap: u32) -> bool {
        !self.saturated && (self.cursor || self.count < cap)
    }
}

/// One chunk as the completeness proof states it: its span, the orders its answer held and
/// how it is proven. Its orders are in the proof's `orders_file` (the chunk's own file is
/// resume state, removed once merged; proofs written before that named it in `file`).
#[derive(Debug, Serialize)]
struct ProofChunk<'a> {
    #[serde(flatten)]
    span: &'a Span,
    count: u32,
    saturated: bool,
    cursor: bool,
}

impl<'a> From<&'a ChunkRecord> for ProofChunk<'a> {
    fn from(c: &'a ChunkRecord) -> Self {
        ProofChunk {
            span: &c.span,
            count: c.count,
            saturated: c.saturated,
            cursor: c.cursor,
        }
    }
}

/// The completeness proof written to `<step id>-chunks.json`.
#[derive(Debug, Serialize)]
struct ChunkProof<'a> {
    window_from: String,
    window_to: String,
    cap: u32,
    max_window_secs: Option<u64>,
    /// Every chunk is proven whole: its answer held fewer orders than the cap, or it is the
    /// provable part of a full page continued by cursor (newest first: after that page's oldest
    /// order; oldest first: before its newest).
    every_chunk_proven: bool,
    /// The chunks tile the window with no gap and no overlap (per market).
    covers_window: bool,
    /// Where the closed orders of every chunk are, merged (with the open orders).
    orders_file: &'a str,
    chunks: Vec<ProofChunk<'a>>,
}

/// Splits `[from, to)` into consecutive spans of at most `max_secs`.
pub fn initial_spans(w: Window, max_secs: Option<u64>, markets: &[Option<String>]) -> Vec<Span> {
    let max_secs = max_secs.filter(|s| *s > 0);
    let mut out = Vec::new();
    for m in markets {
        let mut from = w.from;
        loop {
            let to = match max_secs {
                Some(s) => (from + chrono::Duration::seconds(s as i64)).min(w.to),
                None => w.to,
            };
            out.push(Span {
                from,
                to,
                market: m.clone(),
            });
            if to >= w.to {
                break;
            }
            from = to;
        }
    }
    out
}

/// The parts of `spans` no finished chunk covers yet: what is left to read (all of it on a
/// fresh start; on a resume, whatever the interrupted export had not finished, however it had
/// divided its spans).
pub fn pending_spans(spans: &[Span], done: &[ChunkRecord]) -> Vec<Span> {
    let mut by_market: BTreeMap<Option<&str>, Vec<&Span>> = BTreeMap::new();
    for c in done {
        by_market
            .entry(c.span.market.as_deref())
            .or_default()
            .push(&c.span);
    }
    for v in by_market.values_mut() {
        v.sort();
    }
    let mut out = Vec::new();
    for s in spans {
        let mut cur = s.from;
        for d in by_market.get(&s.market.as_deref()).into_iter().flatten() {
            if d.to <= cur || d.from >= s.to {
                continue;
            }
            if d.from > cur {
                out.push(Span {
                    from: cur,
                    to: d.from,
                    market: s.market.clone(),
                });
            }
            cur = cur.max(d.to);
        }
        if cur < s.to {
            out.push(Span {
                from: cur,
                to: s.to,
                market: s.market.clone(),
            });
        }
    }
    out
}

/// Halves a span at the millisecond; `None` when it is too short to split.
fn halve(s: &Span) -> Option<(Span, Span)> {
    let ms = (s.to - s.from).num_milliseconds();
    if ms < 2 {
        return None;
    }
    let mid = s.from + chrono::Duration::milliseconds(ms / 2);
    Some((
        Span {
            from: s.from,
            to: mid,
            market: s.market.clone(),
        },
        Span {
            from: mid,
            to: s.to,
            market: s.market.clone(),
        },
    ))
}

/// Whether the chunks tile the window exactly, market by market.
pub fn covers(w: Window, chunks: &[ChunkRecord]) -> bool {
    let mut by_market: BTreeMap<Option<&str>, Vec<&Span>> = BTreeMap::new();
    for c in chunks {
        by_market
            .entry(c.span.market.as_deref())
            .or_default()
            .push(&c.span);
    }
    !by_market.is_empty()
        && by_market.values_mut().all(|spans| {
            spans.sort();
            spans.first().is_some_and(|s| s.from == w.from)
                && spans.last().is_some_and(|s| s.to == w.to)
                && spans.windows(2).all(|p| p[0].to == p[1].from)
        })
}

/// Where the chunk files of all export steps are kept until their orders are merged.
const CHUNKS_ROOT: &str = "export/chunks";

/// The chunk folder of export step `step_id` (a playbook's step ids are letters, digits, `_`
/// and `-`, checked when it is loaded, and are used as they are, as in [`state_file`]): every
/// step has its own, so one step's merge never removes what another still needs (bundles of
/// earlier versions kept every step's chunks in [`CHUNKS_ROOT`] itself; their journals name
/// those files, which stay).
fn chunks_dir(step_id: &str) -> String {
    format!("{CHUNKS_ROOT}/{step_id}")
}

fn chunk_file(step_id: &str, s: &Span) -> String {
    span_file(&chunks_dir(step_id), s)
}

/// Where export step `step_id` merges its orders: `export/orders.json` for the step named
/// `export` (the shipped playbook's), `export/orders-<step id>.json` for any other, so a
/// second export step (`export_late`) keeps its own list beside the first.
pub(crate) fn orders_file(step_id: &str) -> String {
    if step_id == "export" {
        "export/orders.json".to_string()
    } else {
        format!("export/orders-{step_id}.json")
    }
}

/// The merged order lists of every export step of the run ([`orders_file`]), sorted.
fn merged_order_files(rd: &RunDir) -> Result<Vec<String>, StepError> {
    let dir = rd.join("export")?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours =
            name == "orders.json" || (name.starts_with("orders-") && name.ends_with(".json"));
        if ours && entry.file_type()?.is_file() {
            out.push(format!("export/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes this step's chunk files of `done` once their orders are merged (one already gone
/// is fine: a crash may have come after the `Merged` line, during the removals), then its
/// chunk folder and the root folder if nothing else is in them. Files in the shared folder of
/// earlier versions (outside [`chunks_dir`]) are left: another step's journal may name the
/// same file.
fn remove_chunks(rd: &RunDir, step_id: &str, done: &[ChunkRecord]) -> Result<(), StepError> {
    let dir = chunks_dir(step_id);
    let prefix = format!("{dir}/");
    let paths = done
        .iter()
        .filter(|c| c.file.starts_with(&prefix))
        .map(|c| rd.join(&c.file))
        .collect::<Result<Vec<_>, _>>()?;
    crate::fsutil::remove_files(&paths)?;
    if crate::fsutil::remove_dir_if_empty(&rd.join(&dir)?)? {
        crate::fsutil::remove_dir_if_empty(&rd.join(CHUNKS_ROOT)?)?;
    }
    Ok(())
}

/// `DIR/<from ms>-<to ms>[-<market>].json`: where one span's records are kept.
pub(crate) fn span_file(dir: &str, s: &Span) -> String {
    format!(
        "{dir}/{}-{}{}.json",
        s.from.timestamp_millis(),
        s.to.timestamp_millis(),
        s.market
            .as_deref()
            .map(|m| format!("-{}", crate::fsutil::file_component(m)))
            .unwrap_or_default()
    )
}

/// Closed-order reads in flight at once: enough to keep a 30-per-second budget busy while each
/// answer is parsed and written.
const CLOSED_IN_FLIGHT: usize = 6;

/// A span left to read is shared among idle lanes only when each part still holds about this
/// many full pages, counted in requests (each part ends with one partial page: at most 1/16
/// more requests), so an exchange whose call follows its cursor over many pages (for example 20
/// pages of 50) shares a span its one lane would read one request at a time.
const PAGES_PER_LANE: i64 = 16;

/// Pages a span's first call asks for while lanes would stand idle (where one call follows
/// the exchange's cursor over several pages): one lane reading 20 pages of 50 in a row leaves
/// the budget idle; after a few pages the span's density is known and its remainder is shared
/// out, read by calls at the cap (short calls all along would cost a chunk file and a state
/// line each, written between reads). A full short call is continued by cursor like a full
/// long one; one whose cursor cannot move is read again at the cap before any halving.
const PROBE_PAGES: u32 = 2;

/// How far after the oldest order of a full page the next page reaches back: the exchange may
/// show creation times to the second, so the whole second of that order is read again by the
/// next page (and left out of this one's chunk: nothing is counted twice).
fn cursor_overlap() -> chrono::Duration {
    chrono::Duration::seconds(1)
}

/// Why the closed-order lanes stopped.
enum LaneError {
    Step(StepError),
    Read(ReadError),
}

impl From<StepError> for LaneError {
    fn from(e: StepError) -> Self {
        LaneError::Step(e)
    }
}

impl From<std::io::Error> for LaneError {
    fn from(e: std::io::Error) -> Self {
        LaneError::Step(e.into())
    }
}

/// What one answer of a span means for the export.
#[derive(Debug, PartialEq)]
enum Next {
    /// Below the cap: the span is whole.
    Done,
    /// Full, newest first: `[cursor, to)` is whole; `[from, cursor)` is read next.
    Continue(DateTime<Utc>),
    /// Full, oldest first: `[from, cursor)` is whole; `[cursor, to)` is read next.
    ContinueAfter(DateTime<Utc>),
    /// Full and the cursor cannot move (a page within one second): halve the span.
    Halve(Span, Span),
    /// Full, within one millisecond: orders may be missing.
    Saturated,
    /// A call asked for fewer orders than the cap, came back full and its cursor cannot move:
    /// a call at the cap may hold the whole span, so it is read again at the cap before it is
    /// halved or given up on.
    AtCap,
}

/// Decides how a span goes on after an answer of `orders` to a call that asked for at most
/// `limit` (at most the exchange's `cap`), given which orders a full answer keeps.
fn next_step(span: &Span, orders: &[Order], limit: u32, cap: u32, keeps: FullPage) -> Next {
    if (orders.len() as u32) < limit {
        return Next::Done;
    }
    let cursor = match keeps {
        FullPage::Newest => orders
            .iter()
            .map(|o| o.created_at)
            .min()
            .map(|t| Next::Continue(t + cursor_overlap())),
        // Every order before the newest one's whole second is in the answer: the chunk is
        // `[from, cursor)` and `[cursor, to)` is read next.
        FullPage::Oldest => orders
            .iter()
            .map(|o| o.created_at)
            .max()
            .and_then(|t| t.with_nanosecond(0))
            .map(Next::ContinueAfter),
        FullPage::Unknown => None,
    };
    match cursor {
        Some(Next::Continue(c) | Next::ContinueAfter(c)) if c > span.from && c < span.to => {
            cursor.unwrap()
        }
        _ if limit < cap => Next::AtCap,
        _ => match halve(span) {
            Some((a, b)) => Next::Halve(a, b),
            None => Next::Saturated,
        },
    }
}

/// Splits `[from, to)` into `k` consecutive parts.
fn split_even(s: &Span, k: i64) -> Vec<Span> {
    let ms = (s.to - s.from).num_milliseconds();
    let k = k.clamp(1, ms.max(1));
    let mut out = Vec::new();
    let mut from = s.from;
    for i in 1..=k {
        let to = if i == k {
            s.to
        } else {
            s.from + chrono::Duration::milliseconds(ms * i / k)
        };
        out.push(Span {
            from,
            to,
            market: s.market.clone(),
        });
        from = to;
    }
    out
}

/// The closed-order part of `export_history`: spans read by cursor, several at once.
struct ClosedLanes<'a> {
    ctx: &'a StepContext,
    scanned: &'a BTreeMap<String, Market>,
    state: &'a mut ExportState,
    log: &'a mut StateLog,
    cap: u32,
    plan_text: &'a str,
    /// Which orders a full answer keeps.
    keeps: FullPage,
    /// Orders a request of the exchange holds (a call may follow its cursor over several).
    page: u32,
    /// When a lane switched to the read-only key.
    switched_at: Option<DateTime<Utc>>,
}

impl ClosedLanes<'_> {
    /// The most orders a call asks for: the cap while every lane is busy, a few pages while
    /// some would stand idle (`spare`) and a full short answer can be continued by cursor.
    fn limit(&self, spare: bool) -> u32 {
        if spare && !matches!(self.keeps, FullPage::Unknown) {
            self.page
                .saturating_mul(PROBE_PAGES)
                .clamp(1, self.cap.max(1))
        } else {
            self.cap
        }
    }

    fn query(&self, span: &Span, limit: u32) -> Result<ClosedOrdersQuery, StepError> {
        let ctx = self.ctx;
        Ok(ClosedOrdersQuery {
            window: Window {
                from: span.from,
                to: span.to,
            },
            market: match span.market.as_deref() {
                Some(m) => Some(match self.scanned.get(m) {
                    Some(known) => known.clone(),
                    None => ctx.exchange()?.primary().market(m)?,
                }),
                None => None,
            },
            limit,
        })
    }

    /// Reads every span of `todo` to the end. Each answer is saved (its chunk file, then the
    /// state) as it arrives; on a failure the reads in flight are finished and saved first.
    async fn run(&mut self, todo: Vec<Span>) -> Result<(), LaneError> {
        let ctx = self.ctx;
        let mut queue: std::collections::VecDeque<Span> = todo.into();
        let split: HashSet<Span> = self.state.split.iter().cloned().collect();
        // Spans read at the cap: the rest of a span already read (each short call costs a
        // chunk and a state line more), or one a short call found full within one second.
        let mut at_cap: HashSet<Span> = HashSet::new();
        let bar = ctx
            .printer
            .progress(Some(queue.len() as u64), "export orders");
        if !self.plan_text.is_empty() {
            bar.set_message(self.plan_text.trim_start_matches("; ").to_string());
        }
        let mut fetched: u64 = self.state.done.iter().map(|c| c.count as u64).sum();
        let mut running = futures::stream::FuturesUnordered::new();
        let mut failure: Option<LaneError> = None;
        loop {
            while failure.is_none() && running.len() < CLOSED_IN_FLIGHT {
                let Some(span) = queue.pop_front() else { break };
                if split.contains(&span) {
                    if let Some((a, b)) = halve(&span) {
                        bar.inc_length(1);
                        queue.push_front(b);
                        queue.push_front(a);
                        continue;
                    }
                }
                let spare = running.len() + queue.len() + 1 < CLOSED_IN_FLIGHT;
                let limit = self.limit(spare && !at_cap.contains(&span));
                let q = match self.query(&span, limit) {
                    Ok(q) => q,
                    Err(e) => {
                        failure = Some(e.into());
                        break;
                    }
                };
                running.push(async move {
                    let mut race = Race::new(ctx).map_err(LaneError::Step)?;
                    let r = race
                        .read(|ex| {
                            let q = q.clone();
                            async move { ex.closed_orders(&q).await }
                        })
                        .await;
                    Ok::<_, LaneError>((span, limit, r, race.switched_at))
                });
            }
            let Some(next) = running.next().await else {
                break;
            };
            let (span, limit, r, switched) = match next {
                Ok(v) => v,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            };
            self.switched_at = self.switched_at.or(switched);
            let orders = match r {
                Ok(o) => o,
                Err(e) => {
                    failure.get_or_insert(LaneError::Read(e));
                    continue;
                }
            };
            match next_step(&span, &orders, limit, self.cap, self.keeps) {
                Next::AtCap => {
                    at_cap.insert(span.clone());
                    queue.push_front(span);
                    continue;
                }
                Next::Halve(a, b) => {
                    self.log.append(&StateEntry::Split(span.clone()))?;
                    // Its halves are as dense: read at the cap too.
                    if at_cap.contains(&span) {
                        at_cap.insert(a.clone());
                        at_cap.insert(b.clone());
                    }
                    self.state.split.push(span);
                    bar.inc_length(1);
                    queue.push_front(b);
                    queue.push_front(a);
                    continue;
                }
                step @ (Next::Continue(c) | Next::ContinueAfter(c)) => {
                    let newest = matches!(step, Next::Continue(_));
                    let (chunk, rest) = if newest {
                        (
                            Span {
                                from: c,
                                to: span.to,
                                market: span.market.clone(),
                            },
                            Span {
                                from: span.from,
                                to: c,
                                market: span.market,
                            },
                        )
                    } else {
                        (
                            Span {
                                from: span.from,
                                to: c,
                                market: span.market.clone(),
                            },
                            Span {
                                from: c,
                                to: span.to,
                                market: span.market,
                            },
                        )
                    };
                    let kept: Vec<Order> = orders
                        .into_iter()
                        .filter(|o| o.created_at >= chunk.from && o.created_at < chunk.to)
                        .collect();
                    // The page just read spans about the chunk plus the boundary second: how
                    // many pages the rest holds, to share it among idle lanes when long enough.
                    let page_ms = ((chunk.to - chunk.from) + cursor_overlap())
                        .num_milliseconds()
                        .max(1);
                    fetched += kept.len() as u64;
                    self.finish(chunk, kept, false, true)?;
                    let pages = (rest.to - rest.from).num_milliseconds() / page_ms
                        * (limit / self.page.max(1)).max(1) as i64;
                    let idle = CLOSED_IN_FLIGHT.saturating_sub(running.len() + queue.len()) as i64;
                    let k = (pages / PAGES_PER_LANE).min(idle).max(1);
                    bar.inc_length(k as u64);
                    for part in split_even(&rest, k).into_iter().rev() {
                        // Its density is known now: only a span's first call is short.
                        at_cap.insert(part.clone());
                        queue.push_front(part);
                    }
                }
                Next::Done => {
                    fetched += orders.len() as u64;
                    self.finish(span, orders, false, false)?;
                }
                Next::Saturated => {
                    fetched += orders.len() as u64;
                    self.finish(span, orders, true, false)?;
                }
            }
            bar.inc(1);
            bar.set_message(format!("{fetched} orders{}", self.plan_text));
        }
        match failure {
            Some(e) => {
                bar.abandon();
                Err(e)
            }
            None => {
                bar.finish_and_clear();
                Ok(())
            }
        }
    }

    /// Saves a finished chunk: its orders, then the state that lists it.
    fn finish(
        &mut self,
        span: Span,
        orders: Vec<Order>,
        saturated: bool,
        cursor: bool,
    ) -> Result<(), StepError> {
        let rd = &self.ctx.rundir;
        let file = chunk_file(&self.ctx.step_id, &span);
        write_json(rd, &file, &orders)?;
        let record = ChunkRecord {
            span,
            count: orders.len() as u32,
            saturated,
            cursor,
            file,
        };
        self.log.append(&StateEntry::Done(record.clone()))?;
        self.state.done.push(record);
        Ok(())
    }
}

/// `exchange.export_history`.
pub struct ExportHistory;

const EXPORT_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "from",
        ty: ArgType::String,
        required: false,
        description: "window start, RFC 3339 (else `since`)",
    },
    ArgSpec {
        name: "to",
        ty: ArgType::String,
        required: false,
        description: "window end, RFC 3339 (default: now)",
    },
    ArgSpec {
        name: "since",
        ty: ArgType::Duration,
        required: false,
        description: "window length back from `to` when `from` is not given (default 7d)",
    },
    ArgSpec {
        name: "markets",
        ty: ArgType::List,
        required: false,
        description: "only these markets (default: all)",
    },
    ArgSpec {
        name: "symbols",
        ty: ArgType::String,
        required: false,
        description: "where history is kept per market: `touched` (default: every market of an asset the account touched), `all`, or a comma-separated list",
    },
    ArgSpec {
        name: "include_open",
        ty: ArgType::Boolean,
        required: false,
        description: "also export open orders (default true)",
    },
    ArgSpec {
        name: "transfers",
        ty: ArgType::Boolean,
        required: false,
        description: "also export withdrawals and deposits (default true)",
    },
    ArgSpec {
        name: "transfers_history",
        ty: ArgType::Duration,
        required: false,
        description: "withdrawals and deposits reach at least this far back from the window's end (default 180d): the destinations the owner used before tell their own addresses from a thief's new ones",
    },
    ArgSpec {
        name: "candles",
        ty: ArgType::Boolean,
        required: false,
        description: "hourly candles of every traded market, for reference prices (default true)",
    },
    ArgSpec {
        name: "candles_margin",
        ty: ArgType::Duration,
        required: false,
        description: "candles also cover this long before the window (default 3d)",
    },
    ArgSpec {
        name: "allow_partial",
        ty: ArgType::Boolean,
        required: false,
        description: "succeed although transfers could not be read (default false)",
    },
];

struct Plan {
    window: Window,
    request: Value,
    markets: Option<Vec<String>>,
    symbols: MarketSelection,
    include_open: bool,
    transfers: bool,
    /// Where the withdrawal and deposit history starts (at or before the window's start).
    transfers_from: DateTime<Utc>,
    candles: bool,
    margin: chrono::Duration,
    allow_partial: bool,
}

fn plan(args: &Map<String, Value>, now: DateTime<Utc>) -> Result<Plan, StepError> {
    let from = args::time(args, "from")?;
    let to = args::time(args, "to")?;
    let since = args::duration(args, "since", Duration::from_secs(7 * 86_400))?;
    let markets = args::string_list(args, "markets")?.filter(|m| !m.is_empty());
    // A minute past now, so a skewed local clock cannot cut off the newest orders.
    let to_t = to.unwrap_or(now + chrono::Duration::seconds(60));
    let from_t = from.unwrap_or(to_t - args::chrono_dur(since));
    if from_t >= to_t {
        return Err(StepError::BadArgument {
            arg: "from".into(),
            message: format!(
                "the window start {} is not before its end {}",
                ts(from_t),
                ts(to_t)
            ),
        });
    }
    let symbols_arg = match args.get("symbols") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(StepError::BadArgument {
                arg: "symbols".into(),
                message: format!("expected `touched`, `all` or a list of symbols, not {other}"),
            })
        }
    };
    let symbols =
        MarketSelection::parse(&symbols_arg).map_err(|message| StepError::BadArgument {
            arg: "symbols".into(),
            message,
        })?;
    let mut request = json!({
        "from": args.get("from"), "to": args.get("to"), "since": args.get("since"),
        "markets": markets,
    });
    if symbols != MarketSelection::Touched {
        request["symbols"] = json!(symbols);
    }
    // Whether the merged list holds the open orders: a resume asking otherwise starts over
    // (recorded only when off, so states written before keep matching).
    let include_open = args::boolean(args, "include_open", true)?;
    if !include_open {
        request["include_open"] = json!(false);
    }
    Ok(Plan {
        window: Window {
            from: from_t,
            to: to_t,
        },
        request,
        markets,
        symbols,
        include_open,
        transfers: args::boolean(args, "transfers", true)?,
        transfers_from: from_t.min(
            to_t - args::chrono_dur(args::duration(
                args,
                "transfers_history",
                Duration::from_secs(180 * 86_400),
            )?),
        ),
        candles: args::boolean(args, "candles", true)?,
        margin: args::chrono_dur(args::duration(
            args,
            "candles_margin",
            Duration::from_secs(3 * 86_400),
        )?),
        allow_partial: args::boolean(args, "allow_partial", false)?,
    })
}

/// Pages hourly candles back from `to` until `floor`.
async fn fetch_candles(
    race: &mut Race<'_>,
    market: &Market,
    to: DateTime<Utc>,
    floor: DateTime<Utc>,
) -> Result<Vec<Candle>, ReadError> {
    const PER_CALL: u32 = 200;
    let mut out: BTreeMap<DateTime<Utc>, Candle> = BTreeMap::new();
    let mut cursor = to;
    loop {
        let m = market.clone();
        let batch = race
            .read(|ex| {
                let m = m.clone();
                async move { ex.candles(&m, 60, cursor, PER_CALL).await }
            })
            .await?;
        let n = batch.len();
        let oldest = batch.iter().map(|c| c.start).min();
        for c in batch {
            out.insert(c.start, c);
        }
        match oldest {
            Some(o) if o > floor && n as u32 >= PER_CALL && o < cursor => cursor = o,
            _ => break,
        }
    }
    Ok(out.into_values().filter(|c| c.start >= floor).collect())
}

impl ExportHistory {
    const INFO: StepInfo = StepInfo {
        name: "exchange.export_history",
        effect: Effect::Read,
        description: "Exports closed and open orders (provably complete), withdrawals, deposits and reference candles for a window; resumable",
        args: EXPORT_ARGS,
        outputs: &[
            "order_count",
            "closed_order_count",
            "open_order_count",
            "markets",
            "chunks",
            "chunk_count",
            "cap",
            "complete",
            "withdrawal_count",
            "deposit_count",
            "candle_markets",
            "window_from",
            "window_to",
            "switched_to_readonly",
            "missing",
            "symbol_count",
            "symbols_path",
            "fill_count",
            "fills_path",
            "orders_path",
            "path",
        ],
    };
}

#[async_trait]
impl StepKind for ExportHistory {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let mut p = plan(args, crate::time::now())?;
        let mut race = Race::new(ctx)?;
        let caps = race.session().primary().capabilities().clone();
        let cap = caps.closed_orders_max_per_call.max(1);
        let rd = &ctx.rundir;
        let state_rel = state_file(&ctx.step_id);
        let chunks_rel = chunks_file(&ctx.step_id);
        let orders_rel = orders_file(&ctx.step_id);
        let (mut log, earlier) = StateLog::open(rd, &state_rel, &legacy_state_file(&ctx.step_id))?;
        let mut state: ExportState = match earlier {
            Some(s) if s.request == p.request && s.window.is_some() && s.cap == cap => {
                ctx.printer.status(&format!(
                    "[{}] resuming the export: {} chunks already done",
                    ctx.step_id,
                    s.done.len()
                ));
                s
            }
            earlier => {
                if earlier.is_some() {
                    ctx.printer.warn(&format!(
                        "[{}] an earlier export with other arguments is in {state_rel}; starting over",
                        ctx.step_id
                    ));
                }
                let fresh = ExportState {
                    request: p.request.clone(),
                    window: Some(p.window),
                    cap,
                    ..ExportState::default()
                };
                log.start(&fresh)?;
                fresh
            }
        };
        if let Some(w) = state.window {
            p.window = w;
        }

        // Where history is kept per market, the adapter chooses the markets (with the run's own
        // evidence as hints) and the choice is the bundle's completeness statement.
        let mut scanned: BTreeMap<String, Market> = BTreeMap::new();
        let mut plan_text = String::new();
        let markets: Vec<Option<String>> = if caps.history_needs_symbol {
            let selection = match &p.markets {
                Some(ms) => MarketSelection::Listed(ms.clone()),
                None => p.symbols.clone(),
            };
            let (chosen, plan) =
                scan::choose(ctx, &mut race, p.window, selection, state.scan.clone()).await?;
            if state.scan.is_none() {
                log.append(&StateEntry::Scan(chosen.clone()))?;
                state.scan = Some(chosen.clone());
            }
            if let Some(plan) = plan {
                plan_text = format!("; plan: {}", plan.describe());
            }
            for m in &chosen.markets {
                scanned.insert(m.market.symbol.to_string(), m.market.clone());
            }
            scanned.keys().cloned().map(Some).collect()
        } else {
            match &p.markets {
                Some(ms) => ms.iter().cloned().map(Some).collect(),
                None => vec![None],
            }
        };
        let todo = pending_spans(
            &initial_spans(p.window, caps.closed_orders_max_window_secs, &markets),
            &state.done,
        );
        if let (Some(m), false) = (&state.merged, todo.is_empty()) {
            // Chunks read now would be left out of the merged list (read back, not merged
            // again) and then removed: the state contradicts itself.
            return Err(StepError::permanent(
                format!(
                    "{state_rel} records the closed orders as merged into {}, yet {} spans of the window are unread",
                    m.file,
                    todo.len()
                ),
                format!("delete {state_rel} to export the window again"),
            ));
        }
        let mut lanes = ClosedLanes {
            ctx,
            scanned: &scanned,
            state: &mut state,
            log: &mut log,
            cap,
            plan_text: &plan_text,
            keeps: race.session().primary().closed_orders_full_page(),
            page: race.session().primary().closed_orders_page().max(1),
            switched_at: None,
        };
        let result = lanes.run(todo).await;
        race.switched_at = race.switched_at.or(lanes.switched_at);
        match result {
            Ok(()) => {}
            Err(LaneError::Step(e)) => return Err(e),
            Err(LaneError::Read(e)) => return Err(race.fail(e, "export")),
        }

        // Completeness proof.
        let mut chunks = state.done.clone();
        chunks.sort_by(|a, b| a.span.cmp(&b.span));
        let all_below = chunks.iter().all(|c| c.proven(cap));
        let covers_window = covers(p.window, &chunks);
        write_json(
            rd,
            &chunks_rel,
            &ChunkProof {
                window_from: ts(p.window.from),
                window_to: ts(p.window.to),
                cap,
                max_window_secs: caps.closed_orders_max_window_secs,
                every_chunk_proven: all_below,
                covers_window,
                orders_file: &orders_rel,
                chunks: chunks.iter().map(ProofChunk::from).collect(),
            },
        )?;

        let mut missing: Vec<String> = Vec::new();
        // Open orders.
        let open_rel = "export/open_orders.json";
        if p.include_open && !state.open_orders_done {
            match race.read(|ex| async move { ex.open_orders().await }).await {
                Ok(o) => {
                    write_json(rd, open_rel, &o)?;
                    log.append(&StateEntry::OpenOrdersDone)?;
                    state.open_orders_done = true;
                }
                Err(ReadError::Other(e)) => missing.push(format!("open orders: {e}")),
                Err(e) => return Err(race.fail(e, "export")),
            }
        }
        // Transfers, from further back than the window: earlier destinations are the baseline.
        let from = p.transfers_from;
        for (kind, rel) in [
            ("withdrawals", "export/withdrawals.json"),
            ("deposits", "export/deposits.json"),
        ] {
            let is_w = kind == "withdrawals";
            let already = if is_w {
                state.withdrawals_done
            } else {
                state.deposits_done
            };
            if !p.transfers || already {
                continue;
            }
            let r = race
                .read(|ex| async move {
                    if is_w {
                        ex.withdrawals(from).await
                    } else {
                        ex.deposits(from).await
                    }
                })
                .await;
            match r {
                Ok(list) => {
                    write_json(rd, rel, &list)?;
                    if is_w {
                        log.append(&StateEntry::WithdrawalsDone)?;
                        state.withdrawals_done = true;
                    } else {
                        log.append(&StateEntry::DepositsDone)?;
                        state.deposits_done = true;
                    }
                }
                Err(ReadError::Other(e)) => {
                    let note = if is_out_of_scope(&e) {
                        " (the key lacks this view permission)"
                    } else {
                        ""
                    };
                    missing.push(format!("{kind}: {e}{note}"));
                }
                Err(e) => return Err(race.fail(e, "export")),
            }
        }

        // Merge orders: streamed to disk in time order (see [`merge_orders`]); kept in memory
        // only where fills are listed by window and need them. Once merged with every part
        // (the open orders too, when asked for), the merge is recorded and the chunk files
        // removed; a resume after that reads the merged file back.
        let keep = matches!(caps.fills, FillsSource::PerWindow { .. });
        let merged = match state.merged.clone() {
            Some(rec) => read_merged(rd, &rec, &state_rel, keep)?,
            None => {
                let open_list: Vec<Order> = if p.include_open {
                    read_json(rd, open_rel)?.unwrap_or_default()
                } else {
                    Vec::new()
                };
                let merged = merge_orders(rd, &chunks, open_list, &orders_rel, keep)?;
                // Open orders still missing are read by the resume and merged again, from the
                // chunks: those stay until then. So do chunks holding orders outside their own
                // span (a faulty answer), which the merged list leaves out.
                if merged.set_aside > 0 {
                    ctx.printer.warn(&format!(
                        "[{}] {} orders of the chunk files lie outside their chunk's span and are not in {orders_rel}; the chunk files under {} are kept",
                        ctx.step_id,
                        merged.set_aside,
                        chunks_dir(&ctx.step_id)
                    ));
                }
                if (!p.include_open || state.open_orders_done) && merged.set_aside == 0 {
                    if let Some(dir) = rd.join(&orders_rel)?.parent() {
                        crate::fsutil::sync_dir(dir)?;
                    }
                    let rec = MergedRecord {
                        file: orders_rel.clone(),
                        sha256: merged.sha256.clone(),
                        closed: merged.closed,
                        open: merged.open,
                    };
                    log.append(&StateEntry::Merged(rec.clone()))?;
                    state.merged = Some(rec);
                }
                merged
            }
        };
        if state.merged.is_some() {
            remove_chunks(rd, &ctx.step_id, &state.done)?;
        }
        let (closed_count, open_count) = (merged.closed, merged.open);
        let orders = merged.kept;
        let mut market_of = merged.markets;
        for m in p.markets.iter().flatten() {
            if !market_of.contains_key(m) {
                let market = race.session().primary().market(m)?;
                market_of.insert(m.clone(), market);
            }
        }
        let market_set: BTreeSet<String> = market_of.keys().cloned().collect();

        // Fills, where the exchange lists them by window: every window of every market with a
        // filled order, each saved before the next call.
        let mut window_fills: Option<WindowFills> = None;
        if let source @ FillsSource::PerWindow { .. } = caps.fills {
            let mut fills_done = state.fills_done.clone();
            let merged = scan::window_fills(
                ctx,
                &mut race,
                source,
                p.window,
                &orders,
                &market_of,
                &mut fills_done,
                |d| {
                    // Each call adds the windows finished since the last.
                    for f in d.iter().skip(state.fills_done.len()) {
                        log.append(&StateEntry::FillsDone(f.clone()))?;
                    }
                    state.fills_done = d.to_vec();
                    Ok(())
                },
            )
            .await?;
            state.fills_done = fills_done;
            window_fills = Some(merged);
        }

        // Reference candles.
        let mut candle_markets = Vec::new();
        if p.candles {
            let floor = p.window.from - p.margin;
            let todo: Vec<String> = market_set
                .iter()
                .filter(|m| !state.candles_done.contains(m))
                .cloned()
                .collect();
            let cbar = ctx
                .printer
                .progress(Some(todo.len() as u64), "export candles");
            for m in todo {
                match fetch_candles(&mut race, &market_of[&m], p.window.to, floor).await {
                    Ok(c) => {
                        let rel =
                            format!("export/candles/{}.json", crate::fsutil::file_component(&m));
                        write_json(rd, &rel, &c)?;
                        log.append(&StateEntry::CandlesDone(m.clone()))?;
                        state.candles_done.push(m.clone());
                    }
                    Err(ReadError::Other(e)) => missing.push(format!("candles of {m}: {e}")),
                    Err(e) => {
                        cbar.abandon();
                        return Err(race.fail(e, "export"));
                    }
                }
                cbar.inc(1);
            }
            cbar.finish_and_clear();
            candle_markets = state.candles_done.clone();
            candle_markets.sort();
        }

        // The transfer files are shared by every export step: count one only when this step
        // wrote it, so a late export whose transfers failed does not report earlier counts.
        let count_file = |rel: &str, done: bool| -> Result<Value, StepError> {
            if !done {
                return Ok(Value::Null);
            }
            Ok(read_json::<Vec<Transfer>>(rd, rel)?
                .map(|l| Value::from(l.len()))
                .unwrap_or(Value::Null))
        };
        let mut outputs = Map::new();
        outputs.insert("order_count".into(), Value::from(closed_count + open_count));
        outputs.insert("closed_order_count".into(), Value::from(closed_count));
        outputs.insert("open_order_count".into(), Value::from(open_count));
        outputs.insert("markets".into(), json!(market_set));
        outputs.insert(
            "chunks".into(),
            json!(chunks
                .iter()
                .map(|c| json!({"from": ts(c.span.from), "to": ts(c.span.to), "market": c.span.market, "count": c.count}))
                .collect::<Vec<_>>()),
        );
        outputs.insert("chunk_count".into(), Value::from(chunks.len()));
        outputs.insert("cap".into(), Value::from(cap));
        outputs.insert("complete".into(), Value::Bool(all_below && covers_window));
        outputs.insert(
            "withdrawal_count".into(),
            count_file("export/withdrawals.json", state.withdrawals_done)?,
        );
        outputs.insert(
            "deposit_count".into(),
            count_file("export/deposits.json", state.deposits_done)?,
        );
        outputs.insert("candle_markets".into(), json!(candle_markets));
        outputs.insert("window_from".into(), Value::from(ts(p.window.from)));
        outputs.insert("window_to".into(), Value::from(ts(p.window.to)));
        outputs.insert(
            "switched_to_readonly".into(),
            Value::Bool(race.on_readonly()),
        );
        if let Some(at) = race.switched_at {
            outputs.insert("switched_at".into(), Value::from(ts(at)));
        }
        outputs.insert("missing".into(), json!(missing));
        if let Some(scan) = &state.scan {
            outputs.insert("symbol_count".into(), Value::from(scan.markets.len()));
            outputs.insert(
                "symbols_path".into(),
                Value::from(scan::symbols_file(&ctx.step_id)),
            );
        }
        if let Some(wf) = &window_fills {
            outputs.insert("fill_count".into(), Value::from(wf.fills.len()));
            outputs.insert("fills_path".into(), Value::from(scan::WINDOW_FILLS));
        }
        outputs.insert("orders_path".into(), Value::from(orders_rel.clone()));
        outputs.insert("path".into(), Value::from(chunks_rel.clone()));

        if !(all_below && covers_window) {
            let bad: Vec<String> = chunks
                .iter()
                .filter(|c| c.saturated)
                .map(|c| {
                    format!(
                        "{}..{} ({} orders)",
                        ts(c.span.from),
                        ts(c.span.to),
                        c.count
                    )
                })
                .collect();
            return Err(StepError::with_hint(
                format!(
                    "the closed-order export cannot prove it is complete: {}",
                    if bad.is_empty() {
                        "the chunks do not cover the window".to_string()
                    } else {
                        format!(
                            "these spans hold at least {cap} orders within one millisecond: {}",
                            bad.join(", ")
                        )
                    }
                ),
                format!(
                    "see {chunks_rel}; ask the exchange's support for a full export of these spans"
                ),
            ));
        }
        if !missing.is_empty() && !p.allow_partial {
            return Err(StepError::with_hint(
                format!("the export is incomplete; missing: {}", missing.join("; ")),
                "give a read-only key with the missing view permissions (or fix the cause), then `respond resume RUN_DIR`: finished parts are not fetched again",
            ));
        }
        let mut artifacts = vec![chunks_rel.clone(), orders_rel];
        if state.scan.is_some() {
            artifacts.push(scan::symbols_file(&ctx.step_id));
        }
        if window_fills.is_some() {
            artifacts.push(scan::WINDOW_FILLS.to_string());
        }
        Ok(StepOutcome {
            summary: format!(
                "{} orders ({} closed in {} chunks, each proven whole; {} open) in {} markets, {} withdrawals, {} deposits, {} ..{}",
                closed_count + open_count,
                closed_count,
                chunks.len(),
                open_count,
                outputs["markets"].as_array().map_or(0, Vec::len),
                outputs["withdrawal_count"],
                outputs["deposit_count"],
                ts(p.window.from),
                ts(p.window.to),
            ),
            outputs,
            artifacts,
        })
    }
}

/// What [`merge_orders`] wrote (or [`read_merged`] read back).
struct Merged {
    closed: usize,
    open: usize,
    /// The market of every order written.
    markets: BTreeMap<String, Market>,
    /// The orders written, when asked to keep them.
    kept: Vec<Order>,
    /// SHA-256 of the file, lowercase hex.
    sha256: String,
    /// Orders of the chunk files left out for lying outside their chunk's span (no answer to
    /// its query) that the list does not hold under their id either: the chunk files must
    /// then stay.
    set_aside: usize,
}

impl Merged {
    fn new() -> Self {
        Merged {
            closed: 0,
            open: 0,
            markets: BTreeMap::new(),
            kept: Vec::new(),
            sha256: String::new(),
            set_aside: 0,
        }
    }

    /// Notes one order of the file: its market, and the order itself with `keep`.
    fn note(&mut self, o: Order, keep: bool) {
        if !self.markets.contains_key(o.market.as_str()) {
            self.markets.insert(o.market.to_string(), o.market.clone());
        }
        if keep {
            self.kept.push(o);
        }
    }
}

/// A reader that hashes (SHA-256) every byte read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

/// Calls its function on each order of a JSON list as it is parsed: the list is never held
/// whole.
struct EachOrder<F>(F);

impl<'de, F: FnMut(Order)> serde::de::Visitor<'de> for EachOrder<F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of orders")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(o) = seq.next_element::<Order>()? {
            (self.0)(o);
        }
        Ok(())
    }
}

/// Parses the JSON list of orders `r` holds, handing each to `f` as it is read.
fn stream_orders<R: std::io::Read>(r: R, f: impl FnMut(Order)) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(r);
    serde::Deserializer::deserialize_seq(&mut de, EachOrder(f))?;
    de.end()
}

/// Hands each order of the JSON list `rel` to `f`, streamed (the list is never held whole);
/// returns whether the file is there. A damaged list is named as [`read_json`] names it.
fn each_order_of(rd: &RunDir, rel: &str, f: impl FnMut(Order)) -> Result<bool, StepError> {
    let p = rd.join(rel)?;
    let file = match std::fs::File::open(&p) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    stream_orders(std::io::BufReader::with_capacity(1 << 20, file), f).map_err(|e| {
        if e.is_io() {
            std::io::Error::other(e.to_string()).into()
        } else {
            StepError::failed(format!(
                "{} is damaged ({e}); delete it to start this part over",
                p.display()
            ))
        }
    })?;
    Ok(true)
}

/// Hands each order of every export step's merged list ([`merged_order_files`]) to `f`,
/// streamed; returns whether there was any list.
fn each_exported_order(rd: &RunDir, mut f: impl FnMut(Order)) -> Result<bool, StepError> {
    let files = merged_order_files(rd)?;
    for rel in &files {
        each_order_of(rd, rel, &mut f)?;
    }
    Ok(!files.is_empty())
}

/// The merged orders recorded by `rec` read back for the rest of the step (a resume after the
/// merge: the chunk files are gone): their markets and, with `keep`, the orders, streamed.
/// The file must be the one written, byte for byte (its SHA-256), or the step stops naming it
/// ([`MergedFileError`]; `state_rel` is the journal to delete to start over).
fn read_merged(
    rd: &RunDir,
    rec: &MergedRecord,
    state_rel: &str,
    keep: bool,
) -> Result<Merged, StepError> {
    let path = rd.join(&rec.file)?;
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MergedFileError::Missing {
                file: rec.file.clone(),
                state: state_rel.to_string(),
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let mut reader = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: sha2::Digest::new(),
    };
    let mut m = Merged::new();
    let parsed = stream_orders(&mut reader, |o| m.note(o, keep));
    if let Err(e) = &parsed {
        if e.is_io() {
            return Err(std::io::Error::other(e.to_string()).into());
        }
    }
    // What the parser left (after a damaged part) is hashed too.
    std::io::copy(&mut reader, &mut std::io::sink())?;
    let found = hex::encode(sha2::Digest::finalize(reader.hasher));
    if parsed.is_err() || found != rec.sha256 {
        return Err(MergedFileError::Differs {
            file: rec.file.clone(),
            state: state_rel.to_string(),
            recorded: rec.sha256.clone(),
            found,
        }
        .into());
    }
    m.closed = rec.closed;
    m.open = rec.open;
    m.sha256 = found;
    Ok(m)
}

/// One order waiting in [`merge_orders`]'s heap, smallest (time, id, closed before open) first.
struct Pending {
    key: (DateTime<Utc>, String, u8),
    order: Order,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.key.cmp(&self.key)
    }
}

/// Writes the closed orders of `chunks` and the `open` ones to `rel` as one JSON list sorted
/// by (creation time, id), each order once (a closed record before an open one of the same
/// id), holding only the chunks near the point being written: memory is flat in the number
/// of orders. A chunk's orders were created inside its span, though shown as much as a second
/// earlier (times to the second), so once every chunk starting more than a second after an
/// order is still unread, nothing older than it can turn up. An order outside that range is
/// no answer to the chunk's query (a faulty page repeating another's) and is left to the
/// chunk whose span holds it.
fn merge_orders(
    rd: &RunDir,
    chunks: &[ChunkRecord],
    open: Vec<Order>,
    rel: &str,
    keep: bool,
) -> Result<Merged, StepError> {
    let slack = cursor_overlap();
    let mut by_market: BTreeMap<Option<&str>, std::collections::VecDeque<&ChunkRecord>> =
        BTreeMap::new();
    for c in chunks {
        by_market
            .entry(c.span.market.as_deref())
            .or_default()
            .push_back(c);
    }
    for q in by_market.values_mut() {
        q.make_contiguous().sort_by(|a, b| a.span.cmp(&b.span));
    }
    let mut heap: std::collections::BinaryHeap<Pending> = open
        .into_iter()
        .map(|o| Pending {
            key: (o.created_at, o.id.clone(), 1),
            order: o,
        })
        .collect();
    let mut out = rd.write_pieces(rel)?;
    let mut list = RecordList::new();
    out.piece(RecordList::OPEN)?;
    let mut m = Merged::new();
    let mut last: Option<(DateTime<Utc>, String)> = None;
    // Ids of orders a chunk file holds outside its span.
    let mut strays: HashSet<String> = HashSet::new();
    loop {
        // The earliest a still unread chunk's order can be.
        let next = by_market
            .iter()
            .filter_map(|(k, q)| q.front().map(|c| (c.span.from - slack, *k)))
            .min();
        let ready = match (heap.peek(), next) {
            (None, None) => break,
            (Some(p), Some((floor, _))) => p.key.0 < floor,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if !ready {
            let (_, k) = next.expect("an unread chunk");
            let c = by_market
                .get_mut(&k)
                .and_then(|q| q.pop_front())
                .expect("the chunk");
            // A finished chunk's file is its orders: without it the merge would say less than
            // the proof claims, so it stops instead of writing a shorter list.
            let list: Vec<Order> = read_json(rd, &c.file)?.ok_or_else(|| {
                StepError::permanent(
                    format!(
                        "{} is missing: the export's state lists it as a finished chunk of {} orders ({}..{})",
                        c.file,
                        c.count,
                        ts(c.span.from),
                        ts(c.span.to)
                    ),
                    "restore it from a copy of this run directory, or delete the step's *-export-state.jsonl to export the window again",
                )
            })?;
            for o in list {
                if o.created_at >= c.span.from - slack && o.created_at < c.span.to {
                    heap.push(Pending {
                        key: (o.created_at, o.id.clone(), 0),
                        order: o,
                    });
                } else {
                    strays.insert(o.id);
                }
            }
            continue;
        }
        let Some(p) = heap.pop() else { break };
        let (at, id, rank) = p.key;
        if last.as_ref().is_some_and(|(t, i)| *t == at && *i == id) {
            continue;
        }
        out.piece(&list.push(&p.order)?)?;
        if !strays.is_empty() {
            strays.remove(&id);
        }
        if rank == 0 {
            m.closed += 1;
        } else {
            m.open += 1;
        }
        m.note(p.order, keep);
        last = Some((at, id));
    }
    out.piece(list.close())?;
    m.sha256 = out.commit_hashed()?;
    if !strays.is_empty() {
        // A stray may be an order another chunk holds and the list has (written before the
        // stray was read): only those it lacks are set aside.
        each_order_of(rd, rel, |o| {
            strays.remove(&o.id);
        })?;
    }
    m.set_aside = strays.len();
    Ok(m)
}

/// The market of each order id (exchanges that keep orders per market need it): from the
/// exported order lists, else from the run's raw responses (the orders an analysis step
/// picked the ids from).
fn order_markets(
    ctx: &StepContext,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Market>, StepError> {
    let rd = &ctx.rundir;
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut out = std::collections::HashMap::new();
    let mut note = |o: Order| {
        if wanted.contains(o.id.as_str()) {
            out.entry(o.id).or_insert(o.market);
        }
    };
    each_exported_order(rd, &mut note)?;
    each_order_of(rd, "export/open_orders.json", &mut note)?;
    if ids.iter().all(|i| out.contains_key(i)) {
        return Ok(out);
    }
    let name = ctx.exchange()?.primary().capabilities().name.clone();
    if let Some(desc) = crate::exchange::registry::get(&name) {
        let opts = crate::exchange::replay::RebuildOptions { skip_corrupt: true };
        if let Ok(h) = crate::exchange::replay::rebuild(desc, rd.path(), opts) {
            for o in h.orders {
                out.entry(o.id).or_insert(o.market);
            }
        }
    }
    Ok(out)
}

/// The fills of `ids` an export already read by window ([`scan::WINDOW_FILLS`]), for each
/// order it covers (orders it did not cover are absent).
fn exported_fills(
    ctx: &StepContext,
    ids: &[String],
) -> Result<Vec<(String, Vec<Fill>)>, StepError> {
    let by_window = matches!(
        ctx.exchange()?.primary().capabilities().fills,
        FillsSource::PerWindow { .. }
    );
    if !by_window || ids.is_empty() {
        return Ok(Vec::new());
    }
    let rd = &ctx.rundir;
    let Some(wf) = read_json::<WindowFills>(rd, scan::WINDOW_FILLS)? else {
        return Ok(Vec::new());
    };
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut orders: BTreeMap<String, Order> = BTreeMap::new();
    each_exported_order(rd, |o| {
        if wanted.contains(o.id.as_str()) {
            orders.insert(o.id.clone(), o);
        }
    })?;
    let by_id: BTreeMap<String, &Order> = orders.iter().map(|(k, o)| (k.clone(), o)).collect();
    Ok(ids
        .iter()
        .filter_map(|id| {
            scan::covered_fills(&wf, &by_id, id)
                .map(|f| (id.clone(), f.into_iter().cloned().collect()))
        })
        .collect())
}

/// `exchange.export_fills`.
pub struct ExportFills;

const FILLS_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "order_ids",
        ty: ArgType::List,
        required: false,
        description: "orders whose fills to fetch",
    },
    ArgSpec {
        name: "all",
        ty: ArgType::Boolean,
        required: false,
        description:
            "fetch fills of every exported order that traded (needs exchange.export_history first)",
    },
];

/// Fills are saved in batches this large; an interruption refetches at most one batch.
const FILL_BATCH: usize = 50;

/// Order reads in flight at once while fetching fills.
const FILLS_IN_FLIGHT: usize = 4;

#[derive(Debug, Serialize, Deserialize)]
struct FillBatch {
    order_ids: Vec<String>,
    fills: Vec<Fill>,
}

impl ExportFills {
    const INFO: StepInfo = StepInfo {
        name: "exchange.export_fills",
        effect: Effect::Read,
        description:
            "Fetches the fills of given orders (or of every exported order that traded); resumable",
        args: FILLS_ARGS,
        outputs: &[
            "fill_count",
            "orders_fetched",
            "orders_resumed",
            "orders_from_export",
            "not_found",
            "switched_to_readonly",
            "path",
        ],
    };
}

#[async_trait]
impl StepKind for ExportFills {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let rd = &ctx.rundir;
        let all = args::boolean(args, "all", false)?;
        let mut ids: Vec<String> = args::string_list(args, "order_ids")?.unwrap_or_default();
        if all {
            let exported = each_exported_order(rd, |o| {
                if o.trades_count > 0 || !o.executed_volume.is_zero() {
                    ids.push(o.id);
                }
            })?;
            if !exported {
                return Err(StepError::with_hint(
                    "`all: true` needs the orders exported first (no export/orders.json nor export/orders-<step id>.json)",
                    "run exchange.export_history before this step (`needs:`)",
                ));
            }
        } else if !args.contains_key("order_ids") {
            return Err(StepError::BadArgument {
                arg: "order_ids".into(),
                message: "give `order_ids` (a list) or `all: true`".into(),
            });
        }
        let mut uniq = HashSet::new();
        ids.retain(|i| uniq.insert(i.clone()));
        let markets = order_markets(ctx, &ids)?;

        let (mut journal, earlier) = Journal::<FillsState>::open(
            rd,
            &fills_state_file(&ctx.step_id),
            &legacy_fills_state_file(&ctx.step_id),
        )?;
        let mut state = earlier.unwrap_or_default();
        let done: HashSet<String> = state.done.iter().cloned().collect();
        let mut todo: Vec<String> = ids.iter().filter(|i| !done.contains(*i)).cloned().collect();
        let resumed = ids.len() - todo.len();
        // Where the export read fills by window, the fills of the orders it covered are here
        // already: only the others are asked for one by one.
        let covered = exported_fills(ctx, &todo)?;
        let from_export = covered.len();
        todo.retain(|id| !covered.iter().any(|(c, _)| c == id));
        let race = Race::new(ctx)?;
        let bar = ctx.printer.progress(Some(ids.len() as u64), "export fills");
        bar.inc(resumed as u64);
        let mut not_found: Vec<String> = Vec::new();
        let mut fetched_fills = 0usize;
        let mut batch = FillBatch {
            order_ids: vec![],
            fills: vec![],
        };
        // Each batch is written whole, then one line naming it is appended to the journal: a
        // batch without its line is fetched again (and its file, numbered the same, rewritten).
        let mut flush = |state: &mut FillsState, batch: &mut FillBatch| -> Result<(), StepError> {
            if batch.order_ids.is_empty() {
                return Ok(());
            }
            // Named by step: a playbook's second fills step (`fills_late`) must not overwrite
            // the batches the first one's state lists.
            let rel = format!(
                "export/fills/{}-batch-{:06}.json",
                ctx.step_id,
                state.batches.len() + 1
            );
            write_json(rd, &rel, &*batch)?;
            journal.append(&FillsEntry::Batch {
                file: Some(rel.clone()),
                order_ids: batch.order_ids.clone(),
            })?;
            state.done.append(&mut batch.order_ids);
            state.batches.push(rel);
            batch.fills.clear();
            Ok(())
        };
        for (id, fills) in covered {
            fetched_fills += fills.len();
            batch.fills.extend(fills);
            batch.order_ids.push(id);
            bar.inc(1);
            if batch.order_ids.len() >= FILL_BATCH {
                flush(&mut state, &mut batch)?;
            }
        }
        // A few reads in flight: each answer is written to disk (fsync) before the next read
        // could start, which alone held the export well under the rate limit; the limiter
        // still keeps the group within its budget. Results are taken in order, so the batches
        // and a resume after an error are as with one read at a time.
        let fetches = futures::stream::iter(todo.iter().cloned())
            .map(|id| {
                let order = OrderRef {
                    market: markets.get(&id).cloned(),
                    id,
                };
                async move {
                    let mut r = Race::new(ctx)?;
                    let res = r
                        .read(|ex| {
                            let order = order.clone();
                            async move { ex.order_with_fills(&order).await }
                        })
                        .await;
                    Ok::<_, StepError>((order.id, res))
                }
            })
            .buffered(FILLS_IN_FLIGHT);
        futures::pin_mut!(fetches);
        while let Some(next) = fetches.next().await {
            let (id, r) = next?;
            let id = &id;
            match r {
                Ok((_, fills)) => {
                    fetched_fills += fills.len();
                    batch.fills.extend(fills);
                    batch.order_ids.push(id.clone());
                }
                Err(ReadError::Other(e)) if e.kind() == Some(ErrorKind::NotFound) => {
                    not_found.push(id.clone());
                    batch.order_ids.push(id.clone());
                }
                Err(e) => {
                    flush(&mut state, &mut batch)?;
                    bar.abandon();
                    return Err(race.fail(e, "fills export"));
                }
            }
            bar.inc(1);
            bar.set_message(format!("{fetched_fills} fills{}", race.budget()));
            if batch.order_ids.len() >= FILL_BATCH {
                flush(&mut state, &mut batch)?;
            }
        }
        flush(&mut state, &mut batch)?;
        bar.finish_and_clear();

        let wanted: HashSet<&String> = ids.iter().collect();
        let mut fills: Vec<Fill> = Vec::new();
        let mut fill_ids = HashSet::new();
        for b in &state.batches {
            let fb: FillBatch = read_json(rd, b)?.unwrap_or(FillBatch {
                order_ids: vec![],
                fills: vec![],
            });
            for f in fb.fills {
                if wanted.contains(&f.order_id)
                    && fill_ids.insert((f.order_id.clone(), f.id.clone()))
                {
                    fills.push(f);
                }
            }
        }
        fills.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let rel = "export/fills.json";
        write_json(rd, rel, &fills)?;
        let mut outputs = Map::new();
        outputs.insert("fill_count".into(), Value::from(fills.len()));
        outputs.insert("orders_fetched".into(), Value::from(todo.len()));
        outputs.insert("orders_resumed".into(), Value::from(resumed));
        outputs.insert("orders_from_export".into(), Value::from(from_export));
        outputs.insert("not_found".into(), json!(not_found));
        outputs.insert(
            "switched_to_readonly".into(),
            Value::Bool(race.on_readonly()),
        );
        outputs.insert("path".into(), Value::from(rel));
        Ok(StepOutcome {
            summary: format!(
                "{} fills of {} orders ({} fetched now, {} from an earlier attempt{}{})",
                fills.len(),
                ids.len(),
                todo.len(),
                resumed,
                if from_export > 0 {
                    format!(", {from_export} from the export's fills by window")
                } else {
                    String::new()
                },
                if not_found.is_empty() {
                    String::new()
                } else {
                    format!(", {} not found", not_found.len())
                }
            ),
            outputs,
            artifacts: vec![rel.to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn w(days: i64) -> Window {
        let from = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        Window {
            from,
            to: from + chrono::Duration::days(days),
        }
    }

    fn rec(s: Span) -> ChunkRecord {
        ChunkRecord {
            span: s,
            count: 0,
            saturated: false,
            cursor: false,
            file: String::new(),
        }
    }

    fn at(s: &Span, secs: i64) -> Order {
        Order {
            id: format!("o{secs}"),
            client_id: None,
            market: Market::new("BTC-QQQ", "BTC", "QQQ"),
            side: crate::exchange::Side::Buy,
            order_type: crate::exchange::OrderType::Limit,
            native_type: "limit".into(),
            state: crate::exchange::OrderState::Done,
            price: None,
            quote_amount: None,
            volume: None,
            remaining_volume: None,
            executed_volume: Default::default(),
            executed_funds: None,
            paid_fee: Default::default(),
            created_at: s.from + chrono::Duration::seconds(secs),
            created_at_local: String::new(),
            trades_count: 0,
            provenance: None,
        }
    }

    #[test]
    fn a_full_page_continues_after_its_oldest_second_and_a_short_one_ends_the_span() {
        let s = initial_spans(w(1), None, &[None]).remove(0);
        let page: Vec<Order> = (100..110).map(|i| at(&s, i)).collect();
        let newest = FullPage::Newest;
        assert_eq!(next_step(&s, &page[..9], 10, 10, newest), Next::Done);
        assert_eq!(
            next_step(&s, &page, 10, 10, newest),
            Next::Continue(s.from + chrono::Duration::seconds(101))
        );
        assert_eq!(
            next_step(&s, &page, 10, 10, FullPage::Oldest),
            Next::ContinueAfter(s.from + chrono::Duration::seconds(109))
        );
        // Where the adapter cannot say which orders a full answer keeps, it proves nothing.
        assert!(matches!(
            next_step(&s, &page, 10, 10, FullPage::Unknown),
            Next::Halve(..)
        ));
        // Ten orders within one second: the page after them asks for `[from, that second
        // + 1 s)`, gets them again, the cursor cannot move and the span is halved.
        let dense: Vec<Order> = (0..10).map(|_| at(&s, 5)).collect();
        let c = s.from + chrono::Duration::seconds(6);
        assert_eq!(next_step(&s, &dense, 10, 10, newest), Next::Continue(c));
        let rest = Span {
            from: s.from,
            to: c,
            market: None,
        };
        assert!(matches!(
            next_step(&rest, &dense, 10, 10, newest),
            Next::Halve(..)
        ));
        let tiny = Span {
            from: s.from,
            to: s.from + chrono::Duration::milliseconds(1),
            market: None,
        };
        assert_eq!(next_step(&tiny, &dense, 10, 10, newest), Next::Saturated);
    }

    #[test]
    fn a_short_call_is_continued_like_a_full_one_and_read_again_at_the_cap_when_stuck() {
        let s = initial_spans(w(1), None, &[None]).remove(0);
        let newest = FullPage::Newest;
        // Asked for 4 of a cap of 10: 3 orders end the span, 4 are continued by cursor.
        let page: Vec<Order> = (100..104).map(|i| at(&s, i)).collect();
        assert_eq!(next_step(&s, &page[..3], 4, 10, newest), Next::Done);
        assert_eq!(
            next_step(&s, &page, 4, 10, newest),
            Next::Continue(s.from + chrono::Duration::seconds(101))
        );
        // Four orders within one second fill the short call: the cursor cannot move, but a
        // call at the cap may hold them all, so the span is not halved nor given up on.
        let dense: Vec<Order> = (0..4).map(|_| at(&s, 5)).collect();
        let rest = Span {
            from: s.from,
            to: s.from + chrono::Duration::seconds(6),
            market: None,
        };
        assert_eq!(next_step(&rest, &dense, 4, 10, newest), Next::AtCap);
        let tiny = Span {
            from: s.from,
            to: s.from + chrono::Duration::milliseconds(1),
            market: None,
        };
        assert_eq!(next_step(&tiny, &dense, 4, 10, newest), Next::AtCap);
        // At the cap, as before.
        assert_eq!(next_step(&tiny, &dense, 4, 4, newest), Next::Saturated);
    }

    #[test]
    fn merged_orders_are_sorted_once_each_without_holding_them_all() {
        let tmp = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&tmp.path().join("run")).unwrap();
        let s = initial_spans(w(1), None, &[None]).remove(0);
        let ms = |n: i64| s.from + chrono::Duration::milliseconds(n);
        let mk = |id: &str, t: DateTime<Utc>, market: &str| {
            let mut o = at(&s, 0);
            o.id = id.into();
            o.created_at = t;
            o.market = Market::new(market, market, "QQQ");
            o
        };
        let span = |a: i64, b: i64, m: &str| Span {
            from: ms(a),
            to: ms(b),
            market: Some(m.into()),
        };
        // BTC: [0, 10 s) and [10.5 s, 20 s) (its first order shown a second early, at 10 s, to
        // the second); a stray order of another span repeated in the second chunk. XRP:
        // [0, 20 s) interleaved in time. An open order also seen closed.
        let chunks = [
            (
                span(0, 10_000, "BTC-QQQ"),
                vec![
                    mk("b2", ms(9_000), "BTC-QQQ"),
                    mk("b1", ms(1_000), "BTC-QQQ"),
                ],
            ),
            (
                span(10_500, 20_000, "BTC-QQQ"),
                vec![
                    mk("b3", ms(10_000), "BTC-QQQ"),
                    mk("b1", ms(1_000), "BTC-QQQ"),
                ],
            ),
            (
                span(0, 20_000, "XRP-QQQ"),
                vec![
                    mk("x1", ms(9_500), "XRP-QQQ"),
                    mk("x2", ms(15_000), "XRP-QQQ"),
                ],
            ),
        ];
        let mut records = Vec::new();
        for (i, (sp, orders)) in chunks.into_iter().enumerate() {
            let file = chunk_file("s", &sp);
            if i == 0 {
                // Written by an earlier version: indented.
                rd.write(&file, &serde_json::to_vec_pretty(&orders).unwrap())
                    .unwrap();
            } else {
                write_json(&rd, &file, &orders).unwrap();
            }
            records.push(ChunkRecord {
                count: orders.len() as u32,
                file,
                ..rec(sp)
            });
        }
        let open = vec![
            mk("x2", ms(15_000), "XRP-QQQ"),
            mk("o1", ms(12_000), "BTC-QQQ"),
        ];
        let m = merge_orders(&rd, &records, open, "export/orders.json", false).unwrap();
        let written: Vec<Order> =
            serde_json::from_slice(&std::fs::read(rd.join("export/orders.json").unwrap()).unwrap())
                .unwrap();
        let ids: Vec<&str> = written.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["b1", "b2", "x1", "b3", "o1", "x2"]);
        // One compact order per line, between the brackets' own lines.
        let text = std::fs::read_to_string(rd.join("export/orders.json").unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), written.len() + 2, "{text}");
        assert_eq!((lines[0], lines[lines.len() - 1]), ("[", "]"));
        for (line, o) in lines[1..lines.len() - 1].iter().zip(&written) {
            let one: Order = serde_json::from_str(line.trim_end_matches(',')).unwrap();
            assert_eq!(&one, o);
        }
        assert!(text.ends_with("\n]\n"));
        assert_eq!((m.closed, m.open), (5, 1));
        assert_eq!(m.markets.len(), 2);
        assert!(m.kept.is_empty());
        // The stray b1 repeated in BTC's second chunk is in the list (from its own chunk).
        assert_eq!(m.set_aside, 0);

        // A stray no chunk holds in its span is set aside: the chunk files must stay.
        let mut lone = records.clone();
        let stray = span(20_000, 30_000, "BTC-QQQ");
        let file = chunk_file("s", &stray);
        write_json(&rd, &file, &vec![mk("b9", ms(2_000), "BTC-QQQ")]).unwrap();
        lone.push(ChunkRecord {
            count: 1,
            saturated: false,
            cursor: false,
            file,
            span: stray,
        });
        let m = merge_orders(&rd, &lone, Vec::new(), "export/orders.json", false).unwrap();
        assert_eq!((m.closed, m.set_aside), (5, 1));
    }

    #[test]
    fn a_resume_reads_only_what_no_chunk_covers() {
        let spans = initial_spans(w(14), Some(7 * 86_400), &[None]);
        assert_eq!(pending_spans(&spans, &[]), spans);
        let day = chrono::Duration::days(1);
        let first = &spans[0];
        // A cursor chunk at the end of the first span and a whole second span are done.
        let done = vec![
            rec(Span {
                from: first.to - day,
                to: first.to,
                market: None,
            }),
            rec(spans[1].clone()),
        ];
        assert_eq!(
            pending_spans(&spans, &done),
            vec![Span {
                from: first.from,
                to: first.to - day,
                market: None,
            }]
        );
        let parts = split_even(&spans[1], 3);
        assert_eq!(parts.len(), 3);
        assert!(covers(
            Window {
                from: spans[1].from,
                to: spans[1].to
            },
            &parts.into_iter().map(rec).collect::<Vec<_>>()
        ));
    }

    #[test]
    fn spans_respect_the_longest_window_and_tile_it() {
        let spans = initial_spans(w(15), Some(7 * 86_400), &[None]);
        assert_eq!(spans.len(), 3);
        assert!(covers(
            w(15),
            &spans.iter().cloned().map(rec).collect::<Vec<_>>()
        ));
        assert_eq!(initial_spans(w(15), None, &[None]).len(), 1);
        assert_eq!(initial_spans(w(15), Some(0), &[None]).len(), 1);
        let two = initial_spans(w(3), None, &[Some("A".into()), Some("B".into())]);
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn halves_tile_and_gaps_are_caught() {
        let s = initial_spans(w(1), None, &[None]).remove(0);
        let (a, b) = halve(&s).unwrap();
        assert_eq!(a.to, b.from);
        assert!(covers(w(1), &[rec(a.clone()), rec(b.clone())]));
        assert!(!covers(w(1), &[rec(a.clone())]));
        assert!(!covers(w(1), &[rec(b)]));
        let tiny = Span {
            from: s.from,
            to: s.from + chrono::Duration::milliseconds(1),
            market: None,
        };
        assert!(halve(&tiny).is_none());
    }
}
