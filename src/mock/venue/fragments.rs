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
//! export that reads each order once gains nothing and holds at most the cap).

use std::collections::HashMap;

use super::state::{OrderState, World};

/// Bytes of kept text above which everything is dropped.
pub const CAP_BYTES: usize = 64 << 20;

/// What one rendering of an order is: the façade's shape (a name it picks) and the fill
/// (None for the order itself).
type Shape = (&'static str, Option<usize>);

/// Texts kept per order position.
#[derive(Debug, Default)]
pub struct Fragments {
    by_order: HashMap<usize, Vec<(Shape, Box<str>)>>,
    bytes: usize,
}

impl Fragments {
    /// Drops what is kept for order `idx`.
    pub fn forget(&mut self, idx: usize) {
        if let Some(v) = self.by_order.remove(&idx) {
            self.bytes -= v.iter().map(|(_, t)| t.len()).sum::<usize>();
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.by_order.clear();
        self.bytes = 0;
    }

    fn get(&self, idx: usize, shape: Shape) -> Option<&str> {
        self.by_order
            .get(&idx)?
            .iter()
            .find(|(s, _)| *s == shape)
            .map(|(_, t)| &**t)
    }

    fn keep(&mut self, idx: usize, shape: Shape, text: &str) {
        if self.bytes + text.len() > CAP_BYTES {
            self.clear();
        }
        self.bytes += text.len();
        self.by_order
            .entry(idx)
            .or_default()
            .push((shape, text.into()));
    }

    /// Bytes of text kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl World {
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
