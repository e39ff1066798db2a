//! The diff: which exchange orders the bot's own log accounts for.
//!
//! Matching priority is order uuid, then client id (`identifier`), then fuzzy (same market and
//! side, volume within a relative tolerance, time within a tolerance). Hash maps keyed by id
//! and per-(market, side) time-sorted vectors keep it near-linear (1M orders in well under a
//! second). A bot-log key shared by several rows (Hummingbot logs one row per fill) consumes
//! all those rows at once; otherwise one row matches at most one order. The bot's identifier
//! pattern is learned from the orders matched by id/identifier.

use std::collections::{BTreeSet, HashMap};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::model::{BotLogEntry, BotLogGap, MatchKind, Thresholds};
use crate::exchange::{Order, Side, Window};
use crate::time::ts;

/// What the diff found.
#[derive(Debug, Clone, Default)]
pub struct DiffResult {
    /// Per order (same order as the input): how it matched.
    pub kinds: Vec<MatchKind>,
    /// Per order: the index (into the flattened entries) of the row it matched, or
    /// [`NO_ROW`]. Read it through [`DiffResult::row`].
    rows: Vec<u32>,
    pub gaps: Vec<BotLogGap>,
    /// Bot rows outside the exported window, not compared (not gaps).
    pub outside_window: usize,
    pub pattern: Option<IdPattern>,
}

impl DiffResult {
    /// The flattened-entries index of the bot-log row order `i` matched.
    pub fn row(&self, i: usize) -> Option<usize> {
        self.rows
            .get(i)
            .filter(|&&r| r != NO_ROW)
            .map(|&r| r as usize)
    }
}

/// A small, fast, deterministic string hasher (FxHash) for the key indexes: SipHash's DoS
/// resistance buys nothing on a local file and costs a third of the diff's time.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.write(&[b]);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// "No row" in the diff's row-index vectors (rows are counted in `u32`: four billion rows
/// are beyond any bot log, and halving the index vectors matters at a million rows).
pub const NO_ROW: u32 = u32::MAX;

fn fx_hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = FxBuild::default().build_hasher();
    h.write(key.as_bytes());
    h.finish()
}

/// Bot-log rows by one key (order id or identifier): the table holds each key's first row
/// as a bare `u32` (the key is read from the row itself, so a million keys cost about
/// 10 MiB rather than 50), and `next` chains the further rows with the same key.
struct KeyIndex {
    table: hashbrown::HashTable<u32>,
    next: Vec<u32>,
    key: fn(&BotLogEntry) -> Option<&str>,
}

impl KeyIndex {
    fn build(entries: &[&BotLogEntry], key: fn(&BotLogEntry) -> Option<&str>) -> KeyIndex {
        let mut table = hashbrown::HashTable::with_capacity(entries.len());
        let mut next = vec![NO_ROW; entries.len()];
        let rehash = |&r: &u32| key(entries[r as usize]).map_or(0, fx_hash);
        for (i, e) in entries.iter().enumerate() {
            let Some(k) = key(e) else { continue };
            let h = fx_hash(k);
            match table.find(h, |&r: &u32| key(entries[r as usize]) == Some(k)) {
                Some(&head) => {
                    next[i] = next[head as usize];
                    next[head as usize] = i as u32;
                }
                None => {
                    table.insert_unique(h, i as u32, rehash);
                }
            }
        }
        KeyIndex { table, next, key }
    }

    /// The first row with `k`, if any.
    fn head(&self, entries: &[&BotLogEntry], k: &str) -> Option<u32> {
        self.table
            .find(fx_hash(k), |&r| (self.key)(entries[r as usize]) == Some(k))
            .copied()
    }
}

/// The shape of the bot's client ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPattern {
    pub prefix: String,
    pub min_len: usize,
    pub max_len: usize,
    /// Characters classes seen after the prefix: `0-9`, `a-f`, `g-z`, `A-Z`, or a literal.
    pub classes: BTreeSet<String>,
    pub samples: usize,
}

fn class_of(c: char) -> String {
    match c {
        '0'..='9' => "0-9".into(),
        'a'..='f' => "a-f".into(),
        'g'..='z' => "g-z".into(),
        'A'..='Z' => "A-Z".into(),
        other => other.to_string(),
    }
}

impl IdPattern {
    /// Learns a pattern from client ids (`None` when there are fewer than 3).
    pub fn learn<'a>(ids: impl Iterator<Item = &'a str>) -> Option<IdPattern> {
        let mut first: Option<&str> = None;
        let mut plen = 0usize; // common prefix length in bytes (on char boundaries)
        let mut min_len = usize::MAX;
        let mut max_len = 0;
        let mut samples = 0;
        let mut sample: Vec<&str> = Vec::new();
        for id in ids {
            samples += 1;
            let n = id.chars().count();
            min_len = min_len.min(n);
            max_len = max_len.max(n);
            match first {
                None => {
                    first = Some(id);
                    plen = id.len();
                }
                Some(f) => {
                    plen = f
                        .char_indices()
                        .zip(id.chars())
                        .take_while(|((_, a), b)| a == b)
                        .last()
                        .map_or(0, |((i, a), _)| i + a.len_utf8())
                        .min(plen);
                }
            }
            if sample.len() < 10_000 {
                sample.push(id);
            }
        }
        if samples < 3 {
            return None;
        }
        let mut prefix = first.map_or(String::new(), |f| f[..plen].to_string());
        // Keep the prefix up to its last separator, so `bot-a1` and `bot-a2` give `bot-`.
        if let Some(cut) = prefix.rfind(['-', '_', ':', '.']) {
            prefix.truncate(cut + 1);
        } else if prefix.chars().count() == min_len {
            prefix.clear();
        }
        let plen = prefix.len();
        let mut seen: BTreeSet<char> = BTreeSet::new();
        for id in &sample {
            seen.extend(id[plen.min(id.len())..].chars());
        }
        let classes = seen.into_iter().map(class_of).collect();
        Some(IdPattern {
            prefix,
            min_len,
            max_len,
            classes,
            samples,
        })
    }

    pub fn fits(&self, id: &str) -> bool {
        let n = id.chars().count();
        id.starts_with(&self.prefix)
            && n >= self.min_len
            && n <= self.max_len
            && id[self.prefix.len()..]
                .chars()
                .all(|c| self.classes.contains(&class_of(c)))
    }

    pub fn describe(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            "no common prefix".to_string()
        } else {
            format!("prefix `{}`", self.prefix)
        };
        let len = if self.min_len == self.max_len {
            format!("{} characters", self.min_len)
        } else {
            format!("{}–{} characters", self.min_len, self.max_len)
        };
        let classes: Vec<&str> = self.classes.iter().map(String::as_str).collect();
        format!(
            "{prefix}, {len}, alphabet [{}] (learned from {} of the bot's orders)",
            classes.join(" "),
            self.samples
        )
    }
}

/// Quantity of an order for fuzzy matching: base volume and quote funds, when known.
pub(crate) fn order_volume(o: &Order) -> Option<Decimal> {
    o.volume
        .or(if o.executed_volume.is_zero() {
            None
        } else {
            Some(o.executed_volume)
        })
        .filter(|v| !v.is_zero())
}

pub(crate) fn order_funds(o: &Order) -> Option<Decimal> {
    if let Some(f) = o.executed_funds.filter(|f| !f.is_zero()) {
        return Some(f);
    }
    match (o.price, order_volume(o)) {
        (Some(p), Some(v)) => Some(p * v),
        // Orders placed by amount (a market buy for a quote amount).
        _ => o.quote_amount.or(o.price),
    }
}

fn close(a: Decimal, b: Decimal, tol: f64) -> bool {
    let (Some(a), Some(b)) = (a.to_f64(), b.to_f64()) else {
        return false;
    };
    if b == 0.0 {
        return a == 0.0;
    }
    ((a - b) / b).abs() <= tol + 1e-12
}

/// Runs the diff of `orders` against the flattened bot-log `entries`.
pub fn diff(
    orders: &[Order],
    entries: &[&BotLogEntry],
    window: Option<Window>,
    th: &Thresholds,
) -> DiffResult {
    let n = orders.len();
    let mut kind = vec![MatchKind::Unmatched; n];
    let mut matched_entry: Vec<u32> = vec![NO_ROW; n];
    let mut used = vec![false; entries.len()];

    assert!(
        entries.len() < NO_ROW as usize,
        "a bot log of {} rows is beyond the diff's u32 row indexes",
        entries.len()
    );
    // The two key indexes (order id, identifier), built on both cores at once (one after the
    // other if no thread can be started).
    let by_id: fn(&BotLogEntry) -> Option<&str> = |e| e.order_id.as_deref();
    let by_ident: fn(&BotLogEntry) -> Option<&str> = |e| e.identifier.as_deref();
    let (ids, idents) = std::thread::scope(|s| {
        let ids = std::thread::Builder::new()
            .name("diff-index".into())
            .spawn_scoped(s, || KeyIndex::build(entries, by_id));
        let idents = KeyIndex::build(entries, by_ident);
        let ids = match ids {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => KeyIndex::build(entries, by_id),
        };
        (ids, idents)
    });

    // Pass 1 and 2: exact keys. A row whose order id exists on the exchange is always
    // consumed here (by that order), so fuzzy matching never sees it.
    for (pass, index) in [(MatchKind::OrderId, &ids), (MatchKind::Identifier, &idents)] {
        for (oi, o) in orders.iter().enumerate() {
            if kind[oi] != MatchKind::Unmatched {
                continue;
            }
            let key = match pass {
                MatchKind::OrderId => Some(o.id.as_str()),
                _ => o.client_id.as_deref(),
            };
            let Some(head) = key.and_then(|k| index.head(entries, k)) else {
                continue;
            };
            let mut r = head;
            let mut first = NO_ROW;
            while r != NO_ROW {
                if !used[r as usize] {
                    used[r as usize] = true;
                    if first == NO_ROW {
                        first = r;
                    }
                }
                r = index.next[r as usize];
            }
            if first != NO_ROW {
                kind[oi] = pass;
                matched_entry[oi] = first;
            }
        }
    }
    drop((ids, idents));

    // Pass 3: fuzzy, rows whose keys do not contradict the order.
    let mut by_ms: HashMap<(&str, Side), Vec<(i64, usize)>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if used[i] {
            continue;
        }
        if let (Some(m), Some(s), Some(t)) =
            (e.market.as_ref().map(|m| m.as_str()), e.side, e.created_at)
        {
            by_ms
                .entry((m, s))
                .or_default()
                .push((t.timestamp_millis(), i));
        }
    }
    for v in by_ms.values_mut() {
        v.sort_unstable();
    }
    let tol_ms = th.fuzzy_time_tolerance_secs.saturating_mul(1000);
    for (oi, o) in orders.iter().enumerate() {
        if kind[oi] != MatchKind::Unmatched {
            continue;
        }
        let Some(list) = by_ms.get(&(o.market.as_str(), o.side)) else {
            continue;
        };
        let t = o.created_at.timestamp_millis();
        let start = list.partition_point(|&(rt, _)| rt < t - tol_ms);
        let vol = order_volume(o);
        let funds = order_funds(o);
        let mut best: Option<(i64, usize)> = None;
        for &(rt, ri) in &list[start..] {
            if rt > t + tol_ms {
                break;
            }
            if used[ri] {
                continue;
            }
            let e = entries[ri];
            if e.identifier.is_some() && o.client_id.is_some() {
                continue;
            }
            let qty_ok = match (e.volume, vol, e.funds, funds) {
                (Some(a), Some(b), _, _) => close(a, b, th.fuzzy_volume_tolerance),
                (_, _, Some(a), Some(b)) => close(a, b, th.fuzzy_volume_tolerance),
                _ => false,
            };
            if !qty_ok {
                continue;
            }
            let d = (rt - t).abs();
            if best.map_or(true, |(bd, _)| d < bd) {
                best = Some((d, ri));
            }
        }
        if let Some((_, ri)) = best {
            used[ri] = true;
            kind[oi] = MatchKind::Fuzzy;
            matched_entry[oi] = ri as u32;
        }
    }

    // Gaps: unused rows inside the exported window.
    let mut gaps = Vec::new();
    let mut outside = 0;
    for (i, e) in entries.iter().enumerate() {
        if used[i] {
            continue;
        }
        if let (Some(w), Some(t)) = (window, e.created_at) {
            if t < w.from || t >= w.to {
                outside += 1;
                continue;
            }
        }
        gaps.push(BotLogGap {
            log: e.log,
            line: e.line,
            reason: gap_reason(e, window),
        });
    }

    let pattern = IdPattern::learn(
        orders
            .iter()
            .zip(&kind)
            .filter(|(_, k)| matches!(k, MatchKind::OrderId | MatchKind::Identifier))
            .filter_map(|(o, _)| o.client_id.as_deref()),
    )
    .or_else(|| IdPattern::learn(entries.iter().filter_map(|e| e.identifier.as_deref())));

    DiffResult {
        kinds: kind,
        rows: matched_entry,
        gaps,
        outside_window: outside,
        pattern,
    }
}

fn gap_reason(e: &BotLogEntry, window: Option<Window>) -> String {
    let mut what = Vec::new();
    if let Some(id) = &e.order_id {
        what.push(format!("order id {id}"));
    }
    if let Some(id) = &e.identifier {
        what.push(format!("identifier {id}"));
    }
    if let Some(m) = &e.market {
        what.push(m.to_string());
    }
    if let Some(s) = e.side {
        what.push(s.as_str().to_string());
    }
    if let Some(t) = e.created_at {
        what.push(format!("at {}", ts(t)));
    }
    let when = match (window, e.created_at) {
        (Some(_), Some(_)) => "inside the exported window",
        (Some(_), None) => "without a time (cannot tell whether it is inside the window)",
        (None, _) => "(no export window known)",
    };
    format!(
        "bot-log row ({}) {when} has no matching exchange order: a gap in the data (the export \
         or the log is incomplete, or the order was never accepted)",
        what.join(", ")
    )
}
