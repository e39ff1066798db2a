//! The diff: which exchange orders the bot's own log accounts for.
//!
//! Matching priority is order uuid, then client id (`identifier`), then fuzzy (same market and
//! side, volume within a relative tolerance, time within a tolerance). Hash maps keyed by id
//! and per-(market, side) time-sorted vectors keep it near-linear (1M orders in well under a
//! second). A bot-log key shared by several rows (Hummingbot logs one row per fill) consumes
//! all those rows at once; otherwise one row matches at most one order. The bot's identifier
//! pattern is learned from the orders matched by id/identifier.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
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
    /// The span the bot log's timed rows cover (first to last row, widened by the fuzzy time
    /// tolerance); `None` when no row has a time.
    pub span: Option<Window>,
    /// Where the log is *cut*: the exchange holds unmatched orders that fit the bot's own
    /// identifiers before the span's start (`cut_before`) or after its end (`cut_after`), so
    /// the bot traded beyond what the log holds (a log exported an hour ago). An order on the
    /// far side of a cut is *not covered* by the log, which is not the same as being absent
    /// from it. A side without such evidence is not cut: a log whose bot merely stopped
    /// trading a while ago still speaks for the time since.
    pub cut_before: Option<DateTime<Utc>>,
    pub cut_after: Option<DateTime<Utc>>,
}

impl DiffResult {
    /// Whether the bot log covers time `t` (see [`DiffResult::cut_after`]).
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.cut_before.map_or(true, |c| t >= c) && self.cut_after.map_or(true, |c| t < c)
    }

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

/// The key indexes' hash: FxHash, then the MurmurHash3 finalizer. FxHash alone leaves the low
/// bits (the table's bucket) of keys that differ only in their last bytes nearly alike: the
/// bot's identifiers `bot-1`…`bot-65536` fell into 1,032 of 65,536 buckets, and indexing a
/// million of them probed and compared keys for about a second.
fn fx_hash(key: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = FxBuild::default().build_hasher();
    h.write(key.as_bytes());
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
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

/// One shape of the bot's client ids: a prefix, a length range, the characters used after the
/// prefix, and whether the ids end in a counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdShape {
    pub prefix: String,
    pub min_len: usize,
    pub max_len: usize,
    /// Characters classes seen after the prefix: `0-9`, `a-f`, `g-z`, `A-Z`, or a literal.
    pub classes: BTreeSet<String>,
    /// The ids end in a decimal counter (`grid-7`, `grid-999`): a counter grows by digits, so
    /// the length may exceed the longest id seen (`grid-1000` fits `grid-1`…`grid-999`).
    pub counter: bool,
    pub samples: usize,
}

/// Digits a counter may grow by beyond the longest id seen (a thousand times more orders).
const COUNTER_GROWTH: usize = 3;

/// The shapes of the bot's client ids, learned from its own orders. A bot that restarted with
/// another prefix, or runs two strategies, has one shape per prefix; an id fits when it fits
/// any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPattern {
    pub shapes: Vec<IdShape>,
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

fn is_sep(c: char) -> bool {
    matches!(c, '-' | '_' | ':' | '.')
}

/// The group an id is learned in: its text up to and including its first separator (within
/// the first 24 characters), else nothing (ids without a separated head form one group).
fn head_of(id: &str) -> &str {
    match id.char_indices().take(24).find(|(_, c)| is_sep(*c)) {
        Some((i, c)) => &id[..i + c.len_utf8()],
        None => "",
    }
}

/// Length of the run of ASCII digits that ends `s` (in characters: a digit is one byte, and
/// no byte of a longer character is an ASCII digit).
fn trailing_digits(s: &str) -> usize {
    s.bytes().rev().take_while(u8::is_ascii_digit).count()
}

/// Length in bytes of the longest common prefix of `a` and `b` that ends on a character
/// boundary (the prefix of whole characters both start with).
fn common_prefix(a: &str, b: &str) -> usize {
    let mut k = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(k) {
        k -= 1;
    }
    k
}

/// Ids a thread learns from at least (fewer: one thread learns them all).
const LEARNED_PER_THREAD: usize = 50_000;

/// The lengths and common prefix of a span of one group's ids.
#[derive(Clone, Copy)]
struct Lengths {
    min_len: usize,
    max_len: usize,
    min_digits: usize,
    max_digits: usize,
    /// Bytes every id shares with the group's first id.
    plen: usize,
}

impl Lengths {
    fn of(first: &str, ids: &[&str]) -> Lengths {
        let mut l = Lengths {
            min_len: usize::MAX,
            max_len: 0,
            min_digits: usize::MAX,
            max_digits: 0,
            plen: first.len(),
        };
        for id in ids {
            let n = id.chars().count();
            l.min_len = l.min_len.min(n);
            l.max_len = l.max_len.max(n);
            let d = trailing_digits(id);
            l.min_digits = l.min_digits.min(d);
            l.max_digits = l.max_digits.max(d);
            l.plen = common_prefix(&first[..l.plen], id);
        }
        l
    }

    fn and(self, o: Lengths) -> Lengths {
        Lengths {
            min_len: self.min_len.min(o.min_len),
            max_len: self.max_len.max(o.max_len),
            min_digits: self.min_digits.min(o.min_digits),
            max_digits: self.max_digits.max(o.max_digits),
            plen: self.plen.min(o.plen),
        }
    }
}

impl IdShape {
    /// Learns one shape from ids of one group (at least one id), reading them in spans on
    /// `threads` threads.
    fn learn(ids: &[&str], threads: usize) -> IdShape {
        let first = ids[0];
        let Lengths {
            min_len,
            max_len,
            min_digits,
            max_digits,
            plen,
        } = crate::par::map_spans(ids, threads, |_, span| Lengths::of(first, span))
            .into_iter()
            .reduce(Lengths::and)
            .expect("one span at least");
        let mut prefix = first[..plen].to_string();
        // Keep the prefix up to its last separator, so `bot-a1` and `bot-a2` give `bot-`.
        if let Some(cut) = prefix.rfind(is_sep) {
            prefix.truncate(cut + 1);
        } else if prefix.chars().count() == min_len {
            prefix.clear();
        }
        let plen = prefix.len();
        let mut seen: BTreeSet<char> = BTreeSet::new();
        for id in ids.iter().take(10_000) {
            seen.extend(id[plen.min(id.len())..].chars());
        }
        // A counter: every id ends in digits, and either the digits vary in length or they
        // are all there is after the prefix.
        // (Read only when the digits alone do not decide.)
        let all_digits_after_prefix = || {
            crate::par::map_spans(ids, threads, |_, span| {
                span.iter().all(|id| {
                    let rest = &id[plen.min(id.len())..];
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .into_iter()
            .all(|all| all)
        };
        let counter = min_digits > 0 && (min_digits < max_digits || all_digits_after_prefix());
        IdShape {
            prefix,
            min_len,
            max_len,
            classes: seen.into_iter().map(class_of).collect(),
            counter,
            samples: ids.len(),
        }
    }

    pub fn fits(&self, id: &str) -> bool {
        let n = id.chars().count();
        let max = if self.counter {
            self.max_len + COUNTER_GROWTH
        } else {
            self.max_len
        };
        id.starts_with(&self.prefix)
            && n >= self.min_len
            && n <= max
            && id[self.prefix.len()..]
                .chars()
                .all(|c| self.classes.contains(&class_of(c)))
    }

    fn describe(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            "no common prefix".to_string()
        } else {
            format!("prefix `{}`", self.prefix)
        };
        let mut len = if self.min_len == self.max_len {
            format!("{} characters", self.min_len)
        } else {
            format!("{}–{} characters", self.min_len, self.max_len)
        };
        if self.counter {
            len.push_str(&format!(
                " (ending in a counter: up to {COUNTER_GROWTH} more digits fit)"
            ));
        }
        let classes: Vec<&str> = self.classes.iter().map(String::as_str).collect();
        format!("{prefix}, {len}, alphabet [{}]", classes.join(" "))
    }
}

impl IdPattern {
    /// Learns the shapes of client ids (`None` when there are fewer than 3). Ids are grouped
    /// by their head (the text up to the first separator); each group of at least 3 ids is one
    /// shape (when none is that large, one shape covers them all). Large lists are read in
    /// spans on `threads` threads; the shapes do not depend on the thread count.
    pub fn learn<'a>(ids: impl Iterator<Item = &'a str>, threads: usize) -> Option<IdPattern> {
        Self::learn_in_spans(ids.collect(), threads, LEARNED_PER_THREAD)
    }

    /// [`IdPattern::learn`] with at least `per_thread` ids in a span (tests make them small).
    fn learn_in_spans(ids: Vec<&str>, threads: usize, per_thread: usize) -> Option<IdPattern> {
        let samples = ids.len();
        if samples < 3 {
            return None;
        }
        // At most `threads`, each with `per_thread` ids or more.
        let threads_for = |n: usize| crate::par::threads_within(threads, n, per_thread);
        let threads = threads_for(samples);
        // Grouped per span, then each span's groups appended in span order: a group keeps
        // its ids in their order (its first id is where its prefix is learned from).
        type Groups<'a> = std::collections::BTreeMap<&'a str, Vec<&'a str>>;
        let mut spans = crate::par::map_spans(&ids, threads, |_, span| {
            let mut groups = Groups::new();
            for id in span {
                groups.entry(head_of(id)).or_default().push(*id);
            }
            groups
        })
        .into_iter();
        let mut groups = spans.next().unwrap_or_default();
        for more in spans {
            for (head, ids) in more {
                groups.entry(head).or_default().extend(ids);
            }
        }
        let mut shapes: Vec<IdShape> = groups
            .values()
            .filter(|g| g.len() >= 3)
            .map(|g| IdShape::learn(g, threads_for(g.len())))
            .collect();
        if shapes.is_empty() {
            // No group is large enough: one shape over every id.
            let all: Vec<&str> = groups.values().flatten().copied().collect();
            shapes.push(IdShape::learn(&all, threads_for(all.len())));
        }
        Some(IdPattern { shapes, samples })
    }

    pub fn fits(&self, id: &str) -> bool {
        self.shapes.iter().any(|s| s.fits(id))
    }

    pub fn describe(&self) -> String {
        let shapes: Vec<String> = self.shapes.iter().map(IdShape::describe).collect();
        format!(
            "{} (learned from {} of the bot's orders)",
            shapes.join("; or "),
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

/// Runs the diff of `orders` against the flattened bot-log `entries`; `events` are the
/// stop/start windows the logs record (they count towards the span the logs cover). The key
/// look-ups are made on `threads` threads.
pub fn diff(
    orders: &[Order],
    entries: &[&BotLogEntry],
    events: &[Window],
    window: Option<Window>,
    th: &Thresholds,
    threads: usize,
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
    let (ids, idents) = crate::par::join(
        || KeyIndex::build(entries, by_id),
        || KeyIndex::build(entries, by_ident),
    );

    // Pass 1 and 2: exact keys. A row whose order id exists on the exchange is always
    // consumed here (by that order), so fuzzy matching never sees it. Each order's first row
    // is looked up on every core (a hash and a string compare each: most of a pass at a
    // million orders); the rows are then taken on one thread in order, so the first order
    // with a key takes its rows.
    for (pass, index) in [(MatchKind::OrderId, &ids), (MatchKind::Identifier, &idents)] {
        let kind_now = &kind;
        let heads: Vec<u32> = crate::par::collect(n, threads, |oi| {
            if kind_now[oi] != MatchKind::Unmatched {
                return NO_ROW;
            }
            let key = match pass {
                MatchKind::OrderId => Some(orders[oi].id.as_str()),
                _ => orders[oi].client_id.as_deref(),
            };
            key.and_then(|k| index.head(entries, k)).unwrap_or(NO_ROW)
        });
        for (oi, &head) in heads.iter().enumerate() {
            if head == NO_ROW {
                continue;
            }
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
        threads,
    )
    .or_else(|| {
        IdPattern::learn(
            entries.iter().filter_map(|e| e.identifier.as_deref()),
            threads,
        )
    });

    let span = log_span(entries, events, th);
    let (cut_before, cut_after) = match (&span, &pattern) {
        (Some(w), Some(p)) => {
            let beyond = |before: bool| {
                orders.iter().zip(&kind).any(|(o, k)| {
                    *k == MatchKind::Unmatched
                        && (if before {
                            o.created_at < w.from
                        } else {
                            o.created_at >= w.to
                        })
                        && o.client_id.as_deref().is_some_and(|c| p.fits(c))
                })
            };
            (
                beyond(true).then_some(w.from),
                beyond(false).then_some(w.to),
            )
        }
        _ => (None, None),
    };

    DiffResult {
        kinds: kind,
        rows: matched_entry,
        gaps,
        outside_window: outside,
        pattern,
        span,
        cut_before,
        cut_after,
    }
}

/// The span of the bot log's timed rows and events, widened by the fuzzy time tolerance.
fn log_span(entries: &[&BotLogEntry], events: &[Window], th: &Thresholds) -> Option<Window> {
    let times = entries
        .iter()
        .filter_map(|e| e.created_at)
        .chain(events.iter().flat_map(|w| [w.from, w.to]));
    let (mut lo, mut hi): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for t in times {
        lo = Some(lo.map_or(t, |l| l.min(t)));
        hi = Some(hi.map_or(t, |h| h.max(t)));
    }
    // An open-ended stop (`stop` without a later `start`) reaches the end of time: the log
    // then speaks for everything after it.
    let tol = Duration::seconds(th.fuzzy_time_tolerance_secs.max(0));
    let (lo, hi) = (lo?, hi?);
    Some(Window {
        from: lo.checked_sub_signed(tol).unwrap_or(lo),
        to: hi
            .checked_add_signed(tol + Duration::milliseconds(1))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Identifiers that differ only in a trailing counter spread over the table's buckets
    /// (the low bits) about as random hashes do (~63% distinct), not into a few (FxHash alone:
    /// 1,032 of 65,536), so indexing a million of them does not probe long runs.
    #[test]
    fn counter_identifiers_spread_over_the_buckets() {
        let n = 1u64 << 16;
        let buckets: BTreeSet<u64> = (1..=n)
            .map(|i| fx_hash(&format!("bot-{i}")) & (n - 1))
            .collect();
        assert!(buckets.len() as u64 > n / 2, "{} of {n}", buckets.len());
    }

    /// The byte-wise common prefix is the prefix of whole characters both ids start with: it
    /// never ends inside a character whose first bytes agree (`é` and `è` share one).
    #[test]
    fn common_prefix_stops_at_a_character_boundary() {
        let by_chars = |a: &str, b: &str| -> usize {
            a.chars()
                .zip(b.chars())
                .take_while(|(x, y)| x == y)
                .map(|(x, _)| x.len_utf8())
                .sum()
        };
        let pairs = [
            ("bé-1", "bè-2"),
            ("grid-10", "grid-11"),
            ("grid-10", "grid-10"),
            ("", "x"),
            ("봇-1", "봇-2"),
            ("봇", "봊"),
            ("abc", "ab"),
        ];
        for (a, b) in pairs {
            assert_eq!(common_prefix(a, b), by_chars(a, b), "{a} / {b}");
            assert_eq!(common_prefix(b, a), by_chars(b, a), "{b} / {a}");
        }
        assert_eq!(common_prefix("bé-1", "bè-2"), 1);
    }

    /// The learned pattern is the same on one thread and on several: the groups keep their
    /// ids in order across spans (a group first met in the second half included), and the
    /// lengths, digits and prefixes merge to what one pass gives, non-ASCII ids included.
    /// Spans of 7 ids, so a few hundred ids are split on any machine.
    #[test]
    fn the_learned_pattern_does_not_depend_on_the_thread_count() {
        let n = 600;
        let ids: Vec<String> = (0..n)
            .map(|i| match i % 5 {
                0 => format!("grid-{i}"),
                1 => format!("dca_é{}", i % 97),
                2 if i > n / 2 => format!("late:{:x}", i * 7919),
                3 => format!("봇-{}x", i % 13),
                _ => format!("grid-{}", i / 3),
            })
            .collect();
        let learn = |ids: &[String], threads| {
            IdPattern::learn_in_spans(ids.iter().map(String::as_str).collect(), threads, 7)
        };
        let one = learn(&ids, 1).expect("a pattern");
        assert!(one.shapes.len() >= 4, "{}", one.describe());
        assert_eq!(
            IdPattern::learn(ids.iter().map(String::as_str), 1),
            Some(one.clone())
        );
        for threads in [2, 3, 8, 200] {
            assert_eq!(
                learn(&ids, threads).as_ref(),
                Some(&one),
                "{threads} threads"
            );
        }
        // No group of 3: one shape over all, the same on any thread count.
        let few = vec!["a-1", "b_22", "c:333", "dé"];
        let one = IdPattern::learn_in_spans(few.clone(), 1, 1).expect("a pattern");
        assert_eq!(one.shapes.len(), 1);
        assert_eq!(IdPattern::learn_in_spans(few, 3, 1), Some(one));
        // Fewer than three ids: nothing to learn from.
        assert_eq!(IdPattern::learn(["a-1", "a-2"].into_iter(), 4), None);
    }

    /// Two orders sending the same identifier, in different spans of the look-ups: the first
    /// in order takes the bot log's one row with it, whatever the thread count, as with one
    /// thread; the other stays unmatched.
    #[test]
    fn a_shared_identifier_goes_to_the_first_order_on_any_thread_count() {
        use crate::exchange::replay::tests::order;
        let orders: Vec<Order> = (0..10)
            .map(|i| {
                let client = if i == 2 || i == 7 {
                    "dup".to_string()
                } else {
                    format!("c{i}")
                };
                order(&format!("o{i}"), i, Some(1), Some(&client))
            })
            .collect();
        let row = BotLogEntry {
            line: 2,
            identifier: Some("dup".into()),
            ..BotLogEntry::default()
        };
        let entries = [&row];
        let th = Thresholds::default();
        let one = diff(&orders, &entries, &[], None, &th, 1);
        assert_eq!(one.kinds[2], MatchKind::Identifier);
        assert_eq!(one.row(2), Some(0));
        assert_eq!(one.kinds[7], MatchKind::Unmatched);
        for threads in [2, 3, 20] {
            let many = diff(&orders, &entries, &[], None, &th, threads);
            assert_eq!(many.kinds, one.kinds, "{threads} threads");
            assert_eq!(many.rows, one.rows, "{threads} threads");
        }
    }
}
