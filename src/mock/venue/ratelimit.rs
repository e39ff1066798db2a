//! The rate-limit counter core façades configure with their own budgets.
//!
//! A budget is a name, a capacity and a fixed window; a request costs a weight (1 for
//! per-request limits, N for weight-based ones). Counters are kept per (budget, caller), the
//! caller being whatever the façade counts by (an access key, a client IP). Over the budget the
//! verdict is "too many"; a caller that collects too many of those within a strike window is
//! blocked for a while when the façade's [`BlockPolicy`] says so. Counters of idle callers are
//! swept so memory stays flat. A fault can start a "storm": everyone is refused for a while.
//!
//! Windows are measured on tokio's clock (`tokio::time::Instant`), the clock the client's
//! limiter paces itself by: a drill on a paused clock sees the same windows on both sides.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// A rate-limit budget: `limit` units per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub name: &'static str,
    pub limit: u32,
    pub window: Duration,
}

impl Budget {
    pub const fn new(name: &'static str, limit: u32, window_ms: u64) -> Budget {
        Budget {
            name,
            limit,
            window: Duration::from_millis(window_ms),
        }
    }
}

/// When a caller that keeps hitting the limit is blocked outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPolicy {
    /// Refusals tolerated within `strike_window` before the block.
    pub strikes_before_block: u32,
    pub strike_window: Duration,
    pub block_for: Duration,
}

#[derive(Debug)]
struct Counter {
    start: Instant,
    window: Duration,
    used: u32,
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

/// Counters for all budgets and callers.
#[derive(Debug, Default)]
pub struct Limiter {
    counters: HashMap<(&'static str, String), Counter>,
    last_sweep: Option<Instant>,
    block: Option<BlockPolicy>,
    /// While set and in the future, every request is refused (an injected 429 storm).
    pub storm_until: Option<Instant>,
}

impl Limiter {
    pub fn new(block: Option<BlockPolicy>) -> Limiter {
        Limiter {
            block,
            ..Limiter::default()
        }
    }

    /// Counts one request of `caller` costing `weight` units of `budget`.
    pub fn hit(&mut self, budget: Budget, caller: &str, weight: u32, now: Instant) -> Verdict {
        self.sweep(now);
        let block = self.block;
        let storm = self.storm_until.is_some_and(|u| now < u);
        let c = self
            .counters
            .entry((budget.name, caller.to_string()))
            .or_insert(Counter {
                start: now,
                window: budget.window,
                used: 0,
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
        if now.duration_since(c.start) >= budget.window {
            c.start = now;
            c.used = 0;
        }
        if c.used.saturating_add(weight) > budget.limit || storm {
            if let Some(p) = block {
                if now.duration_since(c.strike_start) > p.strike_window {
                    c.strike_start = now;
                    c.strikes = 0;
                }
                c.strikes += 1;
                if c.strikes > p.strikes_before_block {
                    c.blocked_until = Some(now + p.block_for);
                    return Verdict::Blocked {
                        seconds: p.block_for.as_secs(),
                    };
                }
            }
            return Verdict::TooMany;
        }
        c.used += weight;
        Verdict::Allowed {
            remaining: budget.limit - c.used,
        }
    }

    /// Units left in the current window without counting one (for error responses).
    pub fn remaining(&self, budget: Budget, caller: &str, now: Instant) -> u32 {
        match self.counters.get(&(budget.name, caller.to_string())) {
            Some(c) if now.duration_since(c.start) < budget.window => {
                budget.limit.saturating_sub(c.used)
            }
            _ => budget.limit,
        }
    }

    /// What `caller` used of `budget` in the current window, and how long until that window
    /// ends (zero when no window is running).
    pub fn usage(&self, budget: Budget, caller: &str, now: Instant) -> (u32, Duration) {
        match self.counters.get(&(budget.name, caller.to_string())) {
            Some(c) if now.duration_since(c.start) < budget.window => {
                (c.used, budget.window - now.duration_since(c.start))
            }
            _ => (0, Duration::ZERO),
        }
    }

    /// Starts (or keeps) a storm lasting `secs` from now.
    pub fn start_storm(&mut self, secs: u64, now: Instant) {
        if self.storm_until.map_or(true, |u| u < now) {
            self.storm_until = Some(now + Duration::from_secs(secs));
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
        // A counter goes once idle, unless its window still runs (a minute or a day long
        // budget must not reset early) or it holds a block.
        self.counters.retain(|_, c| {
            c.blocked_until.is_some_and(|u| u > now)
                || now.duration_since(c.last) < Duration::from_secs(30)
                || now.duration_since(c.start) < c.window
        });
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget::new("b", 8, 1000);
    const POLICY: BlockPolicy = BlockPolicy {
        strikes_before_block: 20,
        strike_window: Duration::from_secs(10),
        block_for: Duration::from_secs(30),
    };

    #[test]
    fn window_then_too_many_then_blocked() {
        let mut l = Limiter::new(Some(POLICY));
        let t = Instant::now();
        for i in 0..8 {
            assert_eq!(l.hit(B, "k", 1, t), Verdict::Allowed { remaining: 7 - i });
        }
        assert_eq!(l.hit(B, "k", 1, t), Verdict::TooMany);
        // Another caller is independent.
        assert!(matches!(l.hit(B, "k2", 1, t), Verdict::Allowed { .. }));
        // A new window resets the count.
        assert!(matches!(
            l.hit(B, "k", 1, t + Duration::from_millis(1001)),
            Verdict::Allowed { .. }
        ));
        let t2 = t + Duration::from_millis(1002);
        let mut blocked = false;
        for _ in 0..40 {
            if let Verdict::Blocked { .. } = l.hit(B, "k", 1, t2) {
                blocked = true;
            }
        }
        assert!(blocked);
        assert!(matches!(
            l.hit(B, "k", 1, t2 + Duration::from_secs(2)),
            Verdict::Blocked { .. }
        ));
    }

    #[test]
    fn weights_spend_the_budget_and_no_policy_never_blocks() {
        let mut l = Limiter::new(None);
        let t = Instant::now();
        assert_eq!(l.hit(B, "k", 5, t), Verdict::Allowed { remaining: 3 });
        assert_eq!(l.hit(B, "k", 4, t), Verdict::TooMany);
        assert_eq!(l.hit(B, "k", 3, t), Verdict::Allowed { remaining: 0 });
        for _ in 0..100 {
            assert_eq!(l.hit(B, "k", 1, t), Verdict::TooMany);
        }
    }

    #[test]
    fn a_long_window_survives_the_idle_sweep_and_reports_its_usage() {
        const MINUTE: Budget = Budget::new("minute", 100, 60_000);
        let mut l = Limiter::new(None);
        let t = Instant::now();
        assert_eq!(
            l.hit(MINUTE, "ip", 90, t),
            Verdict::Allowed { remaining: 10 }
        );
        assert_eq!(
            l.usage(MINUTE, "ip", t + Duration::from_secs(20)),
            (90, Duration::from_secs(40))
        );
        // 40 s idle: the sweep runs (another caller's request) but the minute is not over.
        let later = t + Duration::from_secs(40);
        assert!(matches!(
            l.hit(MINUTE, "other", 1, later),
            Verdict::Allowed { .. }
        ));
        assert_eq!(l.hit(MINUTE, "ip", 20, later), Verdict::TooMany);
        assert_eq!(l.usage(MINUTE, "ip", t + Duration::from_secs(61)).0, 0);
        assert!(matches!(
            l.hit(MINUTE, "ip", 20, t + Duration::from_secs(61)),
            Verdict::Allowed { remaining: 80 }
        ));
    }

    #[test]
    fn a_storm_refuses_everyone() {
        let mut l = Limiter::new(None);
        let t = Instant::now();
        l.start_storm(2, t);
        assert_eq!(l.hit(B, "k", 1, t), Verdict::TooMany);
        assert!(matches!(
            l.hit(B, "k", 1, t + Duration::from_secs(3)),
            Verdict::Allowed { .. }
        ));
    }
}
