//! Replay protection: nonces (or any one-time request tokens) seen per key within a time
//! window. Bounded in count too, so memory stays flat under load. Stores a 64-bit digest of
//! (key, nonce), not the strings: a collision would only make a fresh nonce look replayed,
//! with odds far below anything a test or a drill can reach.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha512};

/// Upper bound on remembered nonces.
pub const NONCE_CAP: usize = 500_000;

pub struct NonceStore {
    window: Duration,
    cap: usize,
    seen: HashSet<u64>,
    order: VecDeque<(Instant, u64)>,
}

fn nonce_digest(key: &str, nonce: &str) -> u64 {
    let d = Sha512::new()
        .chain_update(key.as_bytes())
        .chain_update([0u8])
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

impl NonceStore {
    pub fn new(window: Duration, cap: usize) -> Self {
        NonceStore {
            window,
            cap,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records a nonce; false when it was already used within the window.
    pub fn check_and_insert(&mut self, key: &str, nonce: &str, now: Instant) -> bool {
        while let Some((t, _)) = self.order.front() {
            if now.duration_since(*t) > self.window || self.order.len() >= self.cap {
                if let Some((_, k)) = self.order.pop_front() {
                    self.seen.remove(&k);
                }
            } else {
                break;
            }
        }
        let k = nonce_digest(key, nonce);
        if !self.seen.insert(k) {
            return false;
        }
        self.order.push_back((now, k));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_store_is_bounded() {
        let mut s = NonceStore::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        assert!(s.check_and_insert("k", "a", now));
        assert!(!s.check_and_insert("k", "a", now));
        assert!(s.check_and_insert("k2", "a", now));
        for i in 0..1000 {
            s.check_and_insert("k", &i.to_string(), now);
        }
        assert!(s.len() <= 100);
    }
}
