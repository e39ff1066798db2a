//! Offline rebuild: a run's normalized exchange data from its `raw/` files, with no network.
//!
//! `respond analyze` and the investigation steps must reach the same data as the live run, so
//! this reads the verbatim bodies the adapter recorded (each `*.body` with its `*.meta.json`
//! sidecar, in recording order), checks each body against the hash in its sidecar, and hands
//! it to the exchange's decoder ([`super::Descriptor::decode_raw`], the same parsers the live
//! adapter uses). What the decoders return is merged here, the same way for every exchange,
//! into a [`History`]: the later record of an order wins (keeping fields only some endpoints
//! send), the first key list is kept (it predates the leaked key's deletion), the first
//! balance list is the start and the last the end.
//!
//! Error answers (status outside 2xx, or no answer at all) are not data and are skipped. A
//! body that is truncated, corrupt or does not match its hash is an error naming the file,
//! unless the caller asks to skip and note it; a read the live client retried is superseded
//! by its retry's answer.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use crate::report::manifest::Written;
use std::path::{Path, PathBuf};

use super::{
    ApiKeyInfo, Balance, Candle, Descriptor, ErrorKind, Fill, History, KeyHistory, MarketInfo,
    Order, Provenance, SkippedRaw, Transfer, TransferKind, WithdrawalAddress,
};
use crate::rundir::RawSidecar;

/// A body that could not be read as the expected shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct DecodeError {
    pub detail: String,
    /// The body ended early (a truncated transfer), as opposed to a wrong shape.
    pub truncated: bool,
}

impl DecodeError {
    /// A body of the wrong shape.
    pub fn shape(detail: impl Into<String>) -> Self {
        DecodeError {
            detail: detail.into(),
            truncated: false,
        }
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(e: serde_json::Error) -> Self {
        DecodeError {
            detail: format!("{e} (line {}, column {})", e.line(), e.column()),
            truncated: e.is_eof(),
        }
    }
}

/// `body` read as JSON into `T`. A body that is UTF-8 (every exchange's answers) is checked
/// once, whole, and read as text: read as bytes, every string in it is checked again on its
/// own (a million orders' ids, times and states one by one). A body that is not UTF-8 is read
/// as bytes, for the error's line and column.
pub fn json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// What the rebuild knows when it decodes one answer: the markets listed by the answers
/// recorded before it. Exchanges whose symbols carry no separator (`BTCUSDT`) need their market
/// list to tell base from quote; their live adapter reads the list before any answer that
/// names a symbol, so the raw files hold it earlier in the recording order.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext<'a> {
    /// By native symbol.
    pub markets: &'a BTreeMap<String, MarketInfo>,
}

impl DecodeContext<'_> {
    /// A context that knows no market (a decoder's unit tests, a single answer).
    pub fn empty() -> DecodeContext<'static> {
        static EMPTY: BTreeMap<String, MarketInfo> = BTreeMap::new();
        DecodeContext { markets: &EMPTY }
    }
}

/// What one raw response holds, normalized by the exchange's decoder.
#[derive(Debug, Clone)]
pub enum Decoded {
    /// Not data the investigation uses (probes, cancels of many orders, unknown endpoints).
    Nothing,
    Balances(Vec<Balance>),
    /// The account's keys; `is_current` as the adapter saw it.
    Keys(Vec<ApiKeyInfo>),
    Orders(Vec<Order>),
    /// One order with its fills (per-order fill sources).
    Order(Box<Order>, Vec<Fill>),
    /// A fills listing (per-window fill sources).
    Fills(Vec<Fill>),
    /// A transfers listing of the kind the call asked for; each transfer is filed by its own
    /// [`Transfer::kind`] (a listing may hold both kinds).
    Transfers(TransferKind, Vec<Transfer>),
    WithdrawalAddresses(Vec<WithdrawalAddress>),
    Candles(Vec<Candle>),
    Markets(Vec<MarketInfo>),
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {detail} (pass the skip option to leave it out and note it)")]
    Corrupt { file: String, detail: String },
}

/// How strict the rebuild is.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildOptions {
    /// Skip a truncated/corrupt/mismatched body (noting it) instead of failing.
    pub skip_corrupt: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every sidecar under `raw/`, in recording order.
pub fn sidecars(run_dir: &Path) -> Result<Vec<RawSidecar>, ReplayError> {
    let raw = run_dir.join("raw");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&raw) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(&raw)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io(&raw))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".meta.json") || name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let side: RawSidecar =
            serde_json::from_slice(&bytes).map_err(|e| ReplayError::Corrupt {
                file: format!("raw/{name}"),
                detail: format!(
                    "unreadable sidecar: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        out.push(side);
    }
    out.sort_by_key(|s| s.seq);
    Ok(out)
}

/// Every order seen, by id, in the order first seen: the index holds each order's place in
/// the list, found by the hash of its id and confirmed by comparing the id in the list (ids
/// that share a hash stay apart), not a second copy of every id. The list is moved into time
/// order at the end (see [`sort_by_time_then_id`]).
#[derive(Default)]
struct Orders {
    list: Vec<Order>,
    /// The recording sequence of the record each order in `list` was last taken from.
    seqs: Vec<u64>,
    /// The hash of each order's id, kept so that growing the index hashes no id again.
    hashes: Vec<u64>,
    index: hashbrown::HashTable<u32>,
}

impl Orders {
    fn hash(id: &str) -> u64 {
        // Fixed keys: the same id always hashes the same within a run.
        BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
    }

    fn slot(&self, id: &str, h: u64) -> Option<usize> {
        self.index
            .find(h, |&i| self.list[i as usize].id == id)
            .map(|&i| i as usize)
    }

    /// Appends a page of orders when every id in it is new (and none repeats in it): each
    /// order is moved once, with the page. Otherwise the page is returned, untouched, with
    /// the hashes of its ids.
    fn extend_new(&mut self, seq: u64, orders: Vec<Order>) -> Option<(Vec<Order>, Vec<u64>)> {
        let hashes: Vec<u64> = orders.iter().map(|o| Orders::hash(&o.id)).collect();
        let mut sorted = hashes.clone();
        sorted.sort_unstable();
        // Two equal hashes may be one id twice: the page then goes order by order.
        let repeated = sorted.windows(2).any(|w| w[0] == w[1]);
        if repeated
            || orders
                .iter()
                .zip(&hashes)
                .any(|(o, &h)| self.slot(&o.id, h).is_some())
        {
            return Some((orders, hashes));
        }
        let start = self.list.len();
        u32::try_from(start + orders.len()).expect("fewer than 2^32 orders in one run");
        self.hashes.extend_from_slice(&hashes);
        let all = &self.hashes;
        for (k, &h) in hashes.iter().enumerate() {
            self.index
                .insert_unique(h, (start + k) as u32, |&j| all[j as usize]);
        }
        self.seqs.resize(self.seqs.len() + orders.len(), seq);
        self.list.extend(orders);
        None
    }

    fn insert(&mut self, seq: u64, o: Order, h: u64) {
        let i = u32::try_from(self.list.len()).expect("fewer than 2^32 orders in one run");
        let hashes = &self.hashes;
        self.index.insert_unique(h, i, |&j| hashes[j as usize]);
        self.hashes.push(h);
        self.list.push(o);
        self.seqs.push(seq);
    }
}

/// The merge of decoded records into a [`History`].
#[derive(Default)]
struct Acc {
    history: History,
    orders: Orders,
    fills: BTreeMap<String, Fill>,
    withdrawals: BTreeMap<String, Transfer>,
    deposits: BTreeMap<String, Transfer>,
    markets: BTreeMap<String, MarketInfo>,
    balances_seen: usize,
}

impl Acc {
    fn order(&mut self, seq: u64, o: Order) {
        let h = Orders::hash(&o.id);
        self.order_hashed(seq, o, h);
    }

    /// [`Acc::order`] with the hash of the order's id.
    fn order_hashed(&mut self, seq: u64, mut o: Order, h: u64) {
        let Some(i) = self.orders.slot(&o.id, h) else {
            self.orders.insert(seq, o, h);
            return;
        };
        if self.orders.seqs[i] > seq {
            return;
        }
        // The later record wins; fields only some endpoints send are kept.
        let old = &mut self.orders.list[i];
        if o.executed_funds.is_none() {
            o.executed_funds = old.executed_funds;
        }
        if o.client_id.is_none() {
            o.client_id = old.client_id.take();
        }
        self.orders.seqs[i] = seq;
        *old = o;
    }

    fn apply(&mut self, seq: u64, decoded: Decoded) {
        match decoded {
            Decoded::Nothing => {}
            Decoded::Balances(b) => {
                self.balances_seen += 1;
                if self.balances_seen == 1 {
                    self.history.balances_start = b;
                } else {
                    self.history.balances_end = b;
                }
            }
            Decoded::Keys(keys) => {
                // Preserve first: the key list from before the leaked key was deleted is the
                // evidence; later lists (read with another key, or after the deletion) only add
                // keys not seen before. "Current" means the key under investigation.
                for k in keys {
                    if !self
                        .history
                        .keys
                        .iter()
                        .any(|e| e.access_key_masked == k.access_key_masked)
                    {
                        self.history.keys.push(k);
                    }
                }
                let investigated = self.history.key_masked.clone();
                for k in &mut self.history.keys {
                    k.is_current = k.access_key_masked == investigated;
                }
            }
            Decoded::Orders(orders) => {
                // Most pages hold only orders not seen before: those move into the list at
                // once; a page with a known id (or one id twice) goes order by order.
                if let Some((orders, hashes)) = self.orders.extend_new(seq, orders) {
                    for (o, h) in orders.into_iter().zip(hashes) {
                        self.order_hashed(seq, o, h);
                    }
                }
            }
            Decoded::Order(o, fills) => {
                self.order(seq, *o);
                for f in fills {
                    self.fills.insert(f.id.clone(), f);
                }
            }
            Decoded::Fills(fills) => {
                for f in fills {
                    self.fills.insert(f.id.clone(), f);
                }
            }
            // Each transfer goes by its own kind: one listing may hold both (an account's
            // transactions).
            Decoded::Transfers(_, ts) => {
                for t in ts {
                    let map = match t.kind {
                        TransferKind::Withdrawal => &mut self.withdrawals,
                        TransferKind::Deposit => &mut self.deposits,
                    };
                    map.insert(t.id.clone(), t);
                }
            }
            Decoded::WithdrawalAddresses(a) => self.history.withdrawal_addresses = a,
            Decoded::Candles(cs) => {
                for c in cs {
                    let list = self
                        .history
                        .candles
                        .entry(c.market.symbol.to_string())
                        .or_default();
                    list.retain(|x| x.start != c.start);
                    list.push(c);
                }
            }
            Decoded::Markets(ms) => {
                for m in ms {
                    self.markets.insert(m.market.symbol.to_string(), m);
                }
            }
        }
    }

    /// Merges answer `i` of `all` (read, checked and decoded): data is applied; an answer
    /// that does not match its sidecar or cannot be decoded is skipped with its reason, or is
    /// the error (`skip_corrupt` off, and no later good answer to the same request).
    fn merge_answer(
        &mut self,
        skipped: &mut Vec<SkippedRaw>,
        all: &[RawSidecar],
        i: usize,
        answer: Result<Answer, ReplayError>,
        opts: RebuildOptions,
    ) -> Result<Merged, ReplayError> {
        let side = &all[i];
        if self.history.key_masked.is_empty() && !side.key.is_empty() {
            self.history.key_masked = side.key.clone();
        }
        let detail = match answer? {
            Answer::NoData => return Ok(Merged::Answer),
            Answer::Data(d) => {
                let markets = matches!(d, Decoded::Markets(_));
                self.apply(side.seq, d);
                return Ok(if markets {
                    Merged::MarketList
                } else {
                    Merged::Answer
                });
            }
            Answer::Mismatch => {
                let detail = "body does not match the SHA-256 in its sidecar (modified or damaged)"
                    .to_string();
                if !opts.skip_corrupt {
                    return Err(ReplayError::Corrupt {
                        file: side.body_file.clone(),
                        detail,
                    });
                }
                skipped.push(SkippedRaw {
                    file: side.body_file.clone(),
                    reason: detail,
                });
                return Ok(Merged::Answer);
            }
            Answer::Undecodable(detail) => detail,
        };
        // The live client retried reads it could not parse: a later good answer to the same
        // request supersedes this one.
        let retry = all[i + 1..].iter().find(|later| {
            later.method == side.method
                && later.endpoint == side.endpoint
                && later.params == side.params
                && (200..300).contains(&later.status)
        });
        if let Some(later) = retry {
            skipped.push(SkippedRaw {
                file: side.body_file.clone(),
                reason: format!("{detail}; superseded by the retry {}", later.body_file),
            });
        } else if opts.skip_corrupt {
            skipped.push(SkippedRaw {
                file: side.body_file.clone(),
                reason: detail,
            });
        } else {
            return Err(ReplayError::Corrupt {
                file: side.body_file.clone(),
                detail,
            });
        }
        Ok(Merged::Answer)
    }

    fn finish(mut self) -> History {
        // The index goes first: only the list of orders itself lives on, moved into time order
        // (ids are unique, so there is one order).
        let Orders {
            list: orders,
            seqs,
            hashes,
            index,
        } = self.orders;
        drop((seqs, hashes, index));
        let orders = sort_by_time_then_id(orders);
        let mut fills: Vec<Fill> = self.fills.into_values().collect();
        fills.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let newest_first = |mut v: Vec<Transfer>| {
            v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
            v
        };
        self.history.withdrawals = newest_first(self.withdrawals.into_values().collect());
        self.history.deposits = newest_first(self.deposits.into_values().collect());
        for list in self.history.candles.values_mut() {
            list.sort_by_key(|c| std::cmp::Reverse(c.start));
        }
        self.history.orders = orders;
        self.history.fills = fills;
        self.history.markets = self.markets.into_values().collect();
        self.history
    }
}

/// What merging one answer did.
enum Merged {
    /// Applied, skipped or no data.
    Answer,
    /// A market list: answers after it must be decoded with its markets.
    MarketList,
}

/// Keys one thread sorts at least (fewer: one thread sorts them all).
const SORTED_PER_THREAD: usize = 100_000;

/// Sorts orders by creation time, then id (ids are unique, so there is one order). The keys
/// are sorted, not the orders (an order is a few hundred bytes, moved many times by a sort of
/// a million), and each order is then moved once, straight to its place in a new list, on
/// every core. The two lists live together for that moment (a million orders: ~260 MB more,
/// under the peak the reports reach later).
fn sort_by_time_then_id(orders: Vec<Order>) -> Vec<Order> {
    let mut keys: Vec<(chrono::DateTime<chrono::Utc>, &str, u32)> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| (o.created_at, o.id.as_str(), i as u32))
        .collect();
    // Sorted in spans on every core, then merged: the stable sort finds the sorted spans as
    // runs and merges them in one pass.
    let threads = crate::par::threads_for(keys.len(), SORTED_PER_THREAD);
    crate::par::fill_spans(&mut keys, threads, |_, span| span.sort_unstable());
    keys.sort();
    let from: Vec<u32> = keys.into_iter().map(|(_, _, i)| i).collect();
    crate::par::permuted(orders, &from, threads)
}

/// What reading one recorded answer gave, before it is merged.
enum Answer {
    /// Not data: an error status, or an exchange's error inside a 2xx answer.
    NoData,
    Data(Decoded),
    /// The body does not match its sidecar's hash.
    Mismatch,
    /// The body could not be decoded (`detail`).
    Undecodable(String),
}

/// Reads, checks and decodes one recorded answer with the markets known before it.
fn read_answer(
    desc: &Descriptor,
    run_dir: &Path,
    side: &RawSidecar,
    ctx: &DecodeContext<'_>,
    vouched: &Written,
) -> Result<Answer, ReplayError> {
    if !(200..300).contains(&side.status) {
        return Ok(Answer::NoData);
    }
    let body_path =
        crate::fsutil::safe_join(run_dir, &side.body_file).map_err(|e| ReplayError::Corrupt {
            file: side.body_file.clone(),
            detail: format!("sidecar names an unsafe body path: {e}"),
        })?;
    let body = std::fs::read(&body_path).map_err(io(&body_path))?;
    // Checked after the read: a file replaced meanwhile is no longer the one hashed.
    let hashed = vouched.sha256_of(&side.body_file, &body_path);
    if hashed.as_deref() != Some(side.body_sha256.as_str())
        && crate::fsutil::sha256_hex(&body) != side.body_sha256
    {
        return Ok(Answer::Mismatch);
    }
    // An error the exchange wrote inside a 2xx answer (an exchange's own error code) is no data.
    if (desc.error_of)(side, &body).is_some() {
        return Ok(Answer::NoData);
    }
    Ok(match (desc.decode_raw)(side, &body, ctx) {
        Ok(d) => Answer::Data(d),
        Err(e) if e.truncated => Answer::Undecodable(format!("truncated body: {e}")),
        Err(e) => Answer::Undecodable(format!(
            "unexpected content for {} {}: {e}",
            side.method, side.endpoint
        )),
    })
}

/// Answers read ahead per thread: the rebuild reads, hashes and decodes a batch of answers on
/// several threads, then merges them in recording order.
pub(crate) const BATCH_PER_THREAD: usize = 32;

/// Reads `sides` on up to `threads` threads, each with the same markets; results in order.
fn read_batch(
    desc: &Descriptor,
    run_dir: &Path,
    sides: &[RawSidecar],
    ctx: &DecodeContext<'_>,
    threads: usize,
    vouched: &Written,
) -> Vec<Result<Answer, ReplayError>> {
    crate::par::collect(sides.len(), threads, |i| {
        read_answer(desc, run_dir, &sides[i], ctx, vouched)
    })
}

/// Rebuilds the normalized data of a run of exchange `desc` from `run_dir/raw/`.
///
/// Answers are read, checked and decoded in batches on several threads, the next batch while
/// the current one is merged, in recording order, so the result is the one a single pass
/// gives: an answer is decoded with the markets listed before it (after a market list, every
/// answer after it that was read already is read again with the new markets), and the first
/// damaged answer in recording order is the error.
pub fn rebuild(
    desc: &Descriptor,
    run_dir: &Path,
    opts: RebuildOptions,
) -> Result<History, ReplayError> {
    rebuild_with(desc, run_dir, opts, &Written::default())
}

/// [`rebuild`], taking the hash of a body from `vouched` (what this process wrote and hashed,
/// while the file is still the one written) instead of hashing it again.
pub fn rebuild_with(
    desc: &Descriptor,
    run_dir: &Path,
    opts: RebuildOptions,
    vouched: &Written,
) -> Result<History, ReplayError> {
    let mut acc = Acc::default();
    acc.history.exchange = desc.name.to_string();
    acc.history.local_utc_offset_secs = desc.locale.zone.utc_offset_secs;
    let mut skipped = Vec::new();
    let all = sidecars(run_dir)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = threads * BATCH_PER_THREAD;
    // The batch after the one being merged is read meanwhile, with the markets known before
    // the merge (a copy: the merge may add to them). A batch merged with a market list in it
    // discards the read ahead, which did not know those markets, and reads on from after the
    // list, as without the read ahead.
    std::thread::scope(|scope| -> Result<(), ReplayError> {
        let read_ahead = |from: usize, markets: BTreeMap<String, MarketInfo>| {
            let end = (from + batch).min(all.len());
            let all = &all;
            scope.spawn(move || {
                let ctx = DecodeContext { markets: &markets };
                (
                    from,
                    read_batch(desc, run_dir, &all[from..end], &ctx, threads, vouched),
                )
            })
        };
        let mut ahead = (!all.is_empty()).then(|| read_ahead(0, acc.markets.clone()));
        // Every batch merged in recording order; the read of the next one starts first.
        let merged = 'merge: {
            while let Some(reading) = ahead.take() {
                let (start, read) = reading
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                let end = start + read.len();
                if end < all.len() {
                    ahead = Some(read_ahead(end, acc.markets.clone()));
                }
                for (j, answer) in read.into_iter().enumerate() {
                    let i = start + j;
                    match acc.merge_answer(&mut skipped, &all, i, answer, opts) {
                        Err(e) => break 'merge Err(e),
                        Ok(Merged::Answer) => {}
                        Ok(Merged::MarketList) => {
                            // Later answers (of this batch and the one read ahead) were
                            // decoded without these markets: read on from the next one. What
                            // the stale read met (a panic included) does not count: its
                            // answers are read again.
                            if let Some(stale) = ahead.take() {
                                let _ = stale.join();
                            }
                            if i + 1 < all.len() {
                                ahead = Some(read_ahead(i + 1, acc.markets.clone()));
                            }
                            break;
                        }
                    }
                }
            }
            Ok(())
        };
        // An error ends the merge with a batch still being read: it is waited for here, and
        // whatever it met (a panic included) is not this error.
        if let Some(unwanted) = ahead.take() {
            let _ = unwanted.join();
        }
        merged
    })?;
    let mut history = acc.finish();
    history.skipped = skipped;
    Ok(history)
}

/// What `run_dir/raw/` shows about one key (`key`, or the key of the first signed request):
/// its first accepted answer, and its first refusal as dead (see [`KeyHistory`]), with the
/// exchange's error map ([`Descriptor::error_of`]). Unreadable or damaged files are passed
/// over: a run killed mid-write leaves one, and the verdict only needs the answers that are
/// intact. `None` when no signed request was recorded and no key was named.
///
/// A key name is not its credentials: a resume may sign with the same key name and another
/// secret, which some exchanges refuse exactly as they refuse a deleted key (the same bare
/// status and body). So each answer is taken with the fingerprint of the credentials that signed it
/// ([`RawSidecar::credentials`]). With `credentials` given, only that fingerprint's answers
/// count (what these credentials did in the run). Without, the refusal counts as a deletion
/// only when the credentials it was refused with had been accepted before it
/// ([`KeyHistory::refused_after_accepted`]). Any accepted answer of the key name after a
/// refusal shows the key was not deleted then.
pub fn key_history(
    desc: &Descriptor,
    run_dir: &Path,
    key: Option<&str>,
    credentials: Option<&str>,
) -> Option<KeyHistory> {
    let raw = run_dir.join("raw");
    let mut sides: Vec<RawSidecar> = std::fs::read_dir(&raw)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".meta.json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    sides.sort_by_key(|s: &RawSidecar| s.seq);
    let key = match key {
        Some(k) => k.to_string(),
        None => sides.iter().find(|s| !s.key.is_empty())?.key.clone(),
    };
    let at = |s: &RawSidecar| {
        chrono::DateTime::parse_from_rfc3339(&s.responded_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    type When = chrono::DateTime<chrono::Utc>;
    // (when, raw file, credentials) of each accepted answer; (when, code, raw file,
    // credentials) of each refusal as dead.
    let mut accepted: Vec<(When, String, String)> = Vec::new();
    // The order of answers: their time, then the record's sequence number (two answers within
    // one millisecond, as over loopback, keep the order they were recorded in).
    let mut last_accepted: Option<(When, u64)> = None;
    let mut refusals: Vec<(When, String, String, String, u64)> = Vec::new();
    for side in sides.iter().filter(|s| s.key == key) {
        let Some(t) = at(side) else { continue };
        let body = crate::fsutil::safe_join(run_dir, &side.body_file)
            .ok()
            .and_then(|p| std::fs::read(p).ok())
            .filter(|b| crate::fsutil::sha256_hex(b) == side.body_sha256);
        // An error inside a 2xx answer (an exchange's own error code) is read as the error it is.
        let error = body.as_deref().and_then(|b| (desc.error_of)(side, b));
        let cred = side.credentials.clone();
        match error {
            None if (200..300).contains(&side.status) => {
                last_accepted = last_accepted.max(Some((t, side.seq)));
                accepted.push((t, side.body_file.clone(), cred));
            }
            Some((_, kind)) if kind.proves_key_accepted() => {
                last_accepted = last_accepted.max(Some((t, side.seq)));
                accepted.push((t, side.body_file.clone(), cred));
            }
            Some((code, ErrorKind::KeyInvalid | ErrorKind::KeyExpired)) => {
                refusals.push((t, code, side.body_file.clone(), cred, side.seq));
            }
            _ => {}
        }
    }
    let ours = |c: &str| credentials.map_or(true, |want| want == c);
    let first_of = |c: Option<&str>| {
        accepted
            .iter()
            .filter(|(_, _, ac)| ours(ac.as_str()) && c.map_or(true, |c| c == ac.as_str()))
            .min_by_key(|(t, _, _)| *t)
            .map(|(t, f, _)| (*t, f.clone()))
    };
    // A refusal the key answered past (accepted again later, with any credentials) was no
    // deletion: the refusals that count come after the last accepted answer. The first of
    // them refused with credentials that had been accepted is the deletion; without one, the
    // first of them is kept, as a refusal that proves none.
    let after: Vec<_> = refusals
        .into_iter()
        .filter(|(t, _, _, c, seq)| {
            ours(c.as_str()) && last_accepted.map_or(true, |a| (*t, *seq) > a)
        })
        .map(|(t, code, file, c, _)| (t, code, file, c))
        .collect();
    let proven = |c: &String| first_of(Some(c.as_str())).is_some();
    let refused = after
        .iter()
        .filter(|(_, _, _, c)| proven(c))
        .min_by_key(|(t, _, _, _)| *t)
        .or_else(|| after.iter().min_by_key(|(t, _, _, _)| *t));
    let refused_after_accepted = refused.is_some_and(|(_, _, _, c)| proven(c));
    // The acceptance that makes the refusal a deletion is the one of the same credentials.
    let accepted = match refused {
        Some((_, _, _, c)) if refused_after_accepted => first_of(Some(c.as_str())),
        _ => first_of(None),
    };
    Some(KeyHistory {
        key,
        accepted,
        refused: refused.map(|(t, code, file, _)| (*t, code.clone(), file.clone())),
        refused_after_accepted,
    })
}

/// The provenance of a recorded body: its file and hash, as every record parsed from it
/// carries.
pub fn provenance(side: &RawSidecar) -> Provenance {
    Provenance {
        raw_file: side.body_file.clone(),
        raw_sha256: side.body_sha256.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exchange::{Market, OrderState, OrderType, Side};
    use rust_decimal::Decimal;

    /// A done limit buy of one unit in market AAA-BBB, `minute` minutes into the test day.
    pub(crate) fn order(id: &str, minute: i64, funds: Option<i64>, client: Option<&str>) -> Order {
        let at = chrono::DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap();
        Order {
            id: id.into(),
            client_id: client.map(Into::into),
            market: Market::new("AAA-BBB", "BBB", "AAA"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            native_type: "limit".into(),
            state: OrderState::Done,
            price: Some(Decimal::ONE),
            quote_amount: None,
            volume: Some(Decimal::ONE),
            remaining_volume: None,
            executed_volume: Decimal::ONE,
            executed_funds: funds.map(Decimal::from),
            paid_fee: Decimal::ZERO,
            created_at: at,
            created_at_local: at.to_rfc3339(),
            trades_count: 1,
            provenance: None,
        }
    }

    /// A body is read the same whether it is checked as text first or not: the same value,
    /// and the same error (with its line and column) for bad JSON and for bytes that are not
    /// UTF-8.
    #[test]
    fn json_reads_a_body_as_serde_json_reads_its_bytes() {
        let bodies: [&[u8]; 5] = [
            br#"[{"uuid":"a","state":"done","n":1.5,"s":"caf\u00e9"}]"#,
            "[{\"market\":\"AAA-비\"}]".as_bytes(),
            br#"[{"uuid":"a",}]"#,
            b"[{\"uuid\":\"\xff\xfe\"}]",
            b"[{\"uuid\":\"a\"}",
        ];
        for body in bodies {
            let ours = json::<serde_json::Value>(body).map_err(|e| e.to_string());
            let theirs =
                serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(body));
        }
        assert!(json::<serde_json::Value>(bodies[3]).is_err(), "not UTF-8");
    }

    /// The orders end in the order a plain sort by (time, id) gives, whatever order they came
    /// in: shuffled, reversed, already sorted, with many sharing a second.
    #[test]
    fn orders_sort_by_time_then_id() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for n in [0usize, 1, 2, 3, 17, 500] {
            let shuffled: Vec<Order> = (0..n)
                .map(|i| {
                    order(
                        &format!("o{}", next() % 1000 + i as u64 * 1000),
                        (next() % 7) as i64,
                        None,
                        None,
                    )
                })
                .collect();
            let mut reversed = shuffled.clone();
            reversed.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
            for orders in [shuffled.clone(), reversed] {
                let mut expected = orders.clone();
                expected.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
                let orders = sort_by_time_then_id(orders);
                assert_eq!(orders, expected, "{n} orders");
                let orders = sort_by_time_then_id(orders);
                assert_eq!(orders, expected, "{n} orders, sorted again");
            }
        }
    }

    /// A page of new orders is appended whole; a page with a known id, or with one id twice,
    /// goes order by order, where the later record wins: the history is the same as merging
    /// every page order by order.
    #[test]
    fn a_page_of_new_orders_is_the_same_as_order_by_order() {
        let page = |ids: &[(&str, i64)]| -> Vec<Order> {
            ids.iter()
                .map(|&(id, minute)| order(id, minute, None, None))
                .collect()
        };
        let pages: Vec<(u64, Vec<Order>)> = vec![
            (1, page(&[("a", 3), ("b", 1), ("c", 2)])),
            (2, page(&[("d", 4), ("e", 0)])),
            // A known id: order by order.
            (3, page(&[("f", 5), ("b", 9)])),
            // One id twice: order by order, the later of the two wins.
            (4, page(&[("g", 6), ("g", 7)])),
            (5, page(&[])),
        ];
        let mut whole = Acc::default();
        let mut one_by_one = Acc::default();
        for (seq, orders) in pages {
            whole.apply(seq, Decoded::Orders(orders.clone()));
            for o in orders {
                one_by_one.order(seq, o);
            }
        }
        assert_eq!(whole.orders.list, one_by_one.orders.list);
        assert_eq!(whole.orders.seqs, one_by_one.orders.seqs);
        for o in &one_by_one.orders.list {
            let h = Orders::hash(&o.id);
            assert_eq!(
                whole.orders.slot(&o.id, h),
                one_by_one.orders.slot(&o.id, h)
            );
        }
        let h = whole.finish();
        let ids: Vec<&str> = h.orders.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["e", "c", "a", "d", "f", "g", "b"]);
    }

    /// Two ids whose index hashes collide are still two orders, each found by its own id; and
    /// of two records of one order, the later wins (keeping what only the earlier one sent).
    #[test]
    fn orders_sharing_an_index_hash_stay_apart() {
        let mut o = Orders::default();
        o.insert(1, order("a", 2, Some(5), Some("mine")), 7);
        assert_eq!(o.slot("b", 7), None, "same hash, other id: not found");
        o.insert(2, order("b", 1, None, None), 7);
        assert_eq!(o.slot("a", 7), Some(0));
        assert_eq!(o.slot("b", 7), Some(1));
        assert_eq!(o.slot("c", 7), None);

        // The later record of an order wins, an earlier one loses (by recording sequence).
        let mut acc = Acc::default();
        acc.order(1, order("a", 2, Some(5), Some("mine")));
        acc.order(2, order("b", 1, None, None));
        let mut later = order("a", 2, None, None);
        later.state = OrderState::Cancelled;
        acc.order(3, later);
        let mut stale = order("b", 1, None, None);
        stale.state = OrderState::Cancelled;
        acc.order(0, stale);
        let h = acc.finish();
        let ids: Vec<&str> = h.orders.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"], "sorted by creation time");
        assert_eq!(
            h.orders[0].state,
            OrderState::Done,
            "an earlier record loses"
        );
        assert_eq!(
            h.orders[1].state,
            OrderState::Cancelled,
            "the later record wins"
        );
        assert_eq!(h.orders[1].executed_funds, Some(Decimal::from(5)));
        assert_eq!(h.orders[1].client_id.as_deref(), Some("mine"));
    }
}
