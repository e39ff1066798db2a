//! Rate limits per group and caller, as Upbit documents them.
//!
//! Exchange groups count per access key, quotation groups per client IP. Each counter is a
//! fixed window (one second, two for `order-cancel-all`). Every response carries
//! `Remaining-Req: group=<name>; min=<n>; sec=<n>`. Over the limit the answer is 429 with a
//! plain-text body; a caller that collects too many 429s in a row is blocked with 418 for a
//! while. Counters for idle callers are swept so memory stays flat.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A rate-limit group: name, allowed requests per window, window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub name: &'static str,
    pub limit: u32,
    pub window: Duration,
    /// Legacy `min` value shown in the header.
    pub min: u32,
}

const fn g(name: &'static str, limit: u32, window_ms: u64, min: u32) -> Group {
    Group {
        name,
        limit,
        window: Duration::from_millis(window_ms),
        min,
    }
}

pub const MARKET: Group = g("market", 10, 1000, 600);
pub const CANDLE: Group = g("candle", 10, 1000, 600);
pub const TRADE: Group = g("trade", 10, 1000, 600);
pub const TICKER: Group = g("ticker", 10, 1000, 600);
pub const ORDERBOOK: Group = g("orderbook", 10, 1000, 600);
pub const DEFAULT: Group = g("default", 30, 1000, 1800);
pub const ORDER: Group = g("order", 8, 1000, 480);
pub const ORDER_TEST: Group = g("order-test", 8, 1000, 480);
pub const ORDER_CANCEL_ALL: Group = g("order-cancel-all", 1, 2000, 30);

/// 429s tolerated (within the strike window) before the caller is blocked.
pub const STRIKES_BEFORE_BLOCK: u32 = 20;
pub const STRIKE_WINDOW: Duration = Duration::from_secs(10);
pub const BLOCK_FOR: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Counter {
    start: Instant,
    count: u32,
    strikes: u32,
    strike_start: Instant,
    blocked_until: Option<Instant>,
    last: Instant,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed { remaining: u32 },
    TooMany,
    Blocked { seconds: u64 },
}

/// Counters for all groups and callers.
#[derive(Debug, Default)]
pub struct Limiter {
    counters: HashMap<(&'static str, String), Counter>,
    last_sweep: Option<Instant>,
    /// Multiplies every limit (faults can shrink it to 0 for a 429 storm via `storm`).
    pub storm_until: Option<Instant>,
}

impl Limiter {
    /// Counts one request of `caller` in `group`.
    pub fn hit(&mut self, group: Group, caller: &str, now: Instant) -> Verdict {
        self.sweep(now);
        let c = self
            .counters
            .entry((group.name, caller.to_string()))
            .or_insert(Counter {
                start: now,
                count: 0,
                strikes: 0,
                strike_start: now,
                blocked_until: None,
                last: now,
            });
        c.last = now;
        if let Some(until) = c.blocked_until {
            if now < until {
                return Verdict::Blocked {
                    seconds: (until - now).as_secs().max(1),
                };
            }
            c.blocked_until = None;
            c.strikes = 0;
        }
        if now.duration_since(c.start) >= group.window {
            c.start = now;
            c.count = 0;
        }
        let storm = self.storm_until.is_some_and(|u| now < u);
        if c.count >= group.limit || storm {
            if now.duration_since(c.strike_start) > STRIKE_WINDOW {
                c.strike_start = now;
                c.strikes = 0;
            }
            c.strikes += 1;
            if c.strikes > STRIKES_BEFORE_BLOCK {
                c.blocked_until = Some(now + BLOCK_FOR);
                return Verdict::Blocked {
                    seconds: BLOCK_FOR.as_secs(),
                };
            }
            return Verdict::TooMany;
        }
        c.count += 1;
        Verdict::Allowed {
            remaining: group.limit - c.count,
        }
    }

    /// Requests left in the current window without counting one (for error responses).
    pub fn remaining(&self, group: Group, caller: &str, now: Instant) -> u32 {
        match self.counters.get(&(group.name, caller.to_string())) {
            Some(c) if now.duration_since(c.start) < group.window => {
                group.limit.saturating_sub(c.count)
            }
            _ => group.limit,
        }
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(5))
        {
            return;
        }
        self.last_sweep = Some(now);
        self.counters.retain(|_, c| {
            c.blocked_until.is_some_and(|u| u > now)
                || now.duration_since(c.last) < Duration::from_secs(30)
        });
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

/// The header value.
pub fn header(group: Group, remaining: u32) -> String {
    format!("group={}; min={}; sec={}", group.name, group.min, remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_then_429_then_418() {
        let mut l = Limiter::default();
        let t = Instant::now();
        for i in 0..8 {
            assert_eq!(l.hit(ORDER, "k", t), Verdict::Allowed { remaining: 7 - i });
        }
        assert_eq!(l.hit(ORDER, "k", t), Verdict::TooMany);
        // Another key is independent.
        assert!(matches!(l.hit(ORDER, "k2", t), Verdict::Allowed { .. }));
        // A new second resets the window.
        assert!(matches!(
            l.hit(ORDER, "k", t + Duration::from_millis(1001)),
            Verdict::Allowed { .. }
        ));
        let t2 = t + Duration::from_millis(1002);
        let mut blocked = false;
        for _ in 0..40 {
            if let Verdict::Blocked { .. } = l.hit(ORDER, "k", t2) {
                blocked = true;
            }
        }
        assert!(blocked);
        assert!(matches!(
            l.hit(ORDER, "k", t2 + Duration::from_secs(2)),
            Verdict::Blocked { .. }
        ));
    }

    #[test]
    fn cancel_all_is_one_per_two_seconds() {
        let mut l = Limiter::default();
        let t = Instant::now();
        assert!(matches!(
            l.hit(ORDER_CANCEL_ALL, "k", t),
            Verdict::Allowed { remaining: 0 }
        ));
        assert_eq!(
            l.hit(ORDER_CANCEL_ALL, "k", t + Duration::from_millis(1500)),
            Verdict::TooMany
        );
        assert!(matches!(
            l.hit(ORDER_CANCEL_ALL, "k", t + Duration::from_millis(2100)),
            Verdict::Allowed { .. }
        ));
    }
}
