//! JSON text a façade wrote for a closed order (or one of its fills), kept so that a history
//! page read again copies it instead of rendering the order again.
//!
//! A closed order no longer changes: the engine fills and cancels open orders only, and
//! every change of state or new fill goes through [`World::set_state`] and
//! [`World::push_fill`], which drop what was kept for that order (and [`World::reindex`]
//! drops everything). So only closed orders are kept, and a kept text is the one rendering
//! the order now would write. A façade's rendering may depend only on the order and on
//! constants of the venue (its fee rate, the account's ids), never on the clock.
//!
//! Memory is bounded: past [`CAP_BYTES`] of text everything is dropped and kept anew (an
//! export that reads each order once gains nothing and holds at most the cap). The texts
//! are kept one after another in one string, so keeping one costs a copy and a map entry,
//! not an allocation per item.
//!
//! A page is written into one buffer ([`PageText`]): each item rendered in place or copied
//! from the kept text (borrowed, not cloned), so a page of 1,000 orders costs one growing
//! string rather than a string per item joined afterwards.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::state::{OrderState, World};

/// Bytes of kept text above which everything is dropped.
pub const CAP_BYTES: usize = 64 << 20;

/// What one rendering of an order is: the façade's shape (a name it picks) and the fill
/// (None for the order itself).
type Shape = (&'static str, Option<usize>);

/// A multiply-rotate hasher for the small integer keys of the kept-text map (order
/// positions): the keys are not chosen by a client, so SipHash's flood resistance buys
/// nothing here and costs a noticeable share of a cold page.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map hashed with [`FxHasher`].
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One kept rendering: its shape, where its text is in [`Fragments::text`], and the
/// order's previous rendering (an index into [`Fragments::entries`]).
#[derive(Debug, Clone, Copy)]
struct Entry {
    shape: Shape,
    start: usize,
    end: usize,
    next: Option<u32>,
}

/// Texts kept per order position, all in one string: keeping a text appends it (no
/// allocation per item once the string has grown), dropping everything keeps the string's
/// room for the next texts.
#[derive(Debug, Default)]
pub struct Fragments {
    /// Every kept text, one after another (texts of forgotten orders stay until
    /// [`Fragments::clear`]).
    text: String,
    /// Every kept rendering; an order's form a chain from its newest.
    entries: Vec<Entry>,
    /// Order position → its newest rendering in `entries`.
    by_order: FxMap<usize, u32>,
}

impl Fragments {
    /// Drops what is kept for order `idx`.
    pub fn forget(&mut self, idx: usize) {
        self.by_order.remove(&idx);
    }

    /// Drops everything (the string's room is kept).
    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
        self.by_order.clear();
    }

    fn get(&self, idx: usize, shape: Shape) -> Option<&str> {
        let mut at = self.by_order.get(&idx).copied();
        while let Some(i) = at {
            let e = self.entries.get(i as usize)?;
            if e.shape == shape {
                return self.text.get(e.start..e.end);
            }
            at = e.next;
        }
        None
    }

    fn keep(&mut self, idx: usize, shape: Shape, text: &str) {
        if self.text.len() + text.len() > CAP_BYTES || self.entries.len() >= u32::MAX as usize {
            self.clear();
        }
        let start = self.text.len();
        self.text.push_str(text);
        let next = self.by_order.insert(idx, self.entries.len() as u32);
        self.entries.push(Entry {
            shape,
            start,
            end: self.text.len(),
            next,
        });
    }

    /// Bytes of text kept.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// Room kept before an enveloped page's `[` ([`PageText::enveloped`]): more than any
/// façade's answer writes before its list.
pub const HEAD_ROOM: usize = 128;

/// Room kept after an enveloped page for what its answer writes after the list (a cursor,
/// the envelope's closing members).
const TAIL_ROOM: usize = 256;

/// A JSON array being written item by item into one string, with where each item starts
/// (for the repeat-page fault, which needs the items apart).
#[derive(Debug)]
pub struct PageText {
    buf: String,
    starts: Vec<usize>,
}

impl PageText {
    /// An empty page with room for `items` items of about `item_bytes` bytes each: a page
    /// that is the whole answer.
    pub fn with_capacity(items: usize, item_bytes: usize) -> PageText {
        PageText::with_room(items, item_bytes, 0, 0)
    }

    /// [`PageText::with_capacity`] for a page an answer wraps (the list of an envelope):
    /// its text starts with [`HEAD_ROOM`] spaces (JSON whitespace), where
    /// [`crate::mock::http::Out::json_spliced`] writes the answer's beginning in place instead
    /// of copying the page behind it.
    pub fn enveloped(items: usize, item_bytes: usize) -> PageText {
        PageText::with_room(items, item_bytes, HEAD_ROOM, TAIL_ROOM)
    }

    fn with_room(items: usize, item_bytes: usize, head: usize, tail: usize) -> PageText {
        let bytes = items.saturating_mul(item_bytes + 1).min(1 << 24) + 2;
        let mut buf = String::with_capacity(head + bytes + tail);
        buf.extend(std::iter::repeat(' ').take(head));
        buf.push('[');
        PageText {
            buf,
            starts: Vec::with_capacity(items.min(1 << 16)),
        }
    }

    /// Appends one item that `write` writes (JSON text) at the end of the buffer.
    pub fn item(&mut self, write: impl FnOnce(&mut String)) {
        if !self.starts.is_empty() {
            self.buf.push(',');
        }
        self.starts.push(self.buf.len());
        write(&mut self.buf);
    }

    /// Number of items written.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when no item was written.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The items' texts, in order.
    pub fn items(&self) -> impl Iterator<Item = &str> {
        self.last_items(self.starts.len())
    }

    /// The last `n` items' texts (fewer when the page holds fewer), in order.
    pub fn last_items(&self, n: usize) -> impl Iterator<Item = &str> {
        let skip = self.starts.len().saturating_sub(n);
        let ends = self.starts[skip..]
            .iter()
            .skip(1)
            .map(|s| s - 1)
            .chain(std::iter::once(self.buf.len()));
        self.starts[skip..]
            .iter()
            .zip(ends)
            .map(|(&s, e)| &self.buf[s..e])
    }

    /// The finished JSON array (after its room, for an enveloped page).
    pub fn finish(mut self) -> String {
        self.buf.push(']');
        self.buf
    }
}

impl World {
    /// Appends to `page` the JSON text `render` writes for order `idx` in `shape` (see
    /// [`World::fragment`]): copied from what was kept when the order is closed and was
    /// rendered before, else rendered in place (and kept when closed).
    pub fn fragment_into(
        &self,
        page: &mut PageText,
        shape: &'static str,
        idx: usize,
        fill: Option<usize>,
        render: impl FnOnce(&mut String),
    ) {
        let closed = self
            .orders
            .get(idx)
            .is_some_and(|o| o.state != OrderState::Open);
        if !closed {
            return page.item(render);
        }
        let key = (shape, fill);
        if let Some(t) = self.fragments.borrow().get(idx, key) {
            return page.item(|b| b.push_str(t));
        }
        let mut start = 0;
        page.item(|b| {
            start = b.len();
            render(b);
        });
        self.fragments
            .borrow_mut()
            .keep(idx, key, &page.buf[start..]);
    }

    /// The JSON text `render` writes for order `idx` in `shape` (a façade's name for it;
    /// `fill` names one of its fills): kept from an earlier call when the order is closed,
    /// else rendered (and kept when closed).
    pub fn fragment(
        &self,
        shape: &'static str,
        idx: usize,
        fill: Option<usize>,
        render: impl FnOnce() -> String,
    ) -> String {
        let closed = self
            .orders
            .get(idx)
            .is_some_and(|o| o.state != OrderState::Open);
        if !closed {
            return render();
        }
        let key = (shape, fill);
        if let Some(t) = self.fragments.borrow().get(idx, key) {
            return t.to_string();
        }
        let text = render();
        self.fragments.borrow_mut().keep(idx, key, &text);
        text
    }
}
