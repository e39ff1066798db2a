//! Upbit's rate-limit groups, configured on the venue's counter core.
//!
//! Exchange groups count per access key, quotation groups per client IP. Each counter is a
//! fixed window (one second, two for `order-cancel-all`). Every response carries
//! `Remaining-Req: group=<name>; min=<n>; sec=<n>`. Over the limit the answer is 429 with a
//! plain-text body; a caller that collects more than 20 429s within 10 s is blocked with 418
//! for 30 s.

use std::time::Duration;

use crate::mock::venue::ratelimit::{BlockPolicy, Budget};

/// A rate-limit group: its budget and the legacy `min` value shown in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub budget: Budget,
    pub min: u32,
}

const fn g(name: &'static str, limit: u32, window_ms: u64, min: u32) -> Group {
    Group {
        budget: Budget::new(name, limit, window_ms),
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

/// 429s tolerated within 10 s before the caller is blocked for 30 s with 418.
pub const BLOCK: BlockPolicy = BlockPolicy {
    strikes_before_block: 20,
    strike_window: Duration::from_secs(10),
    block_for: Duration::from_secs(30),
};

/// The `Remaining-Req` header value.
pub fn header(group: Group, remaining: u32) -> String {
    format!(
        "group={}; min={}; sec={}",
        group.budget.name, group.min, remaining
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::ratelimit::{Limiter, Verdict};
    use tokio::time::Instant;

    #[test]
    fn order_group_is_eight_per_second_then_429_then_418() {
        let mut l = Limiter::new(Some(BLOCK));
        let t = Instant::now();
        for i in 0..8 {
            assert_eq!(
                l.hit(ORDER.budget, "k", 1, t),
                Verdict::Allowed { remaining: 7 - i }
            );
        }
        assert_eq!(l.hit(ORDER.budget, "k", 1, t), Verdict::TooMany);
        let mut blocked = false;
        for _ in 0..25 {
            blocked |= matches!(
                l.hit(ORDER.budget, "k", 1, t),
                Verdict::Blocked { seconds: 30 }
            );
        }
        assert!(blocked);
    }

    #[test]
    fn cancel_all_is_one_per_two_seconds() {
        let mut l = Limiter::new(Some(BLOCK));
        let t = Instant::now();
        assert!(matches!(
            l.hit(ORDER_CANCEL_ALL.budget, "k", 1, t),
            Verdict::Allowed { remaining: 0 }
        ));
        assert_eq!(
            l.hit(
                ORDER_CANCEL_ALL.budget,
                "k",
                1,
                t + Duration::from_millis(1500)
            ),
            Verdict::TooMany
        );
        assert!(matches!(
            l.hit(
                ORDER_CANCEL_ALL.budget,
                "k",
                1,
                t + Duration::from_millis(2100)
            ),
            Verdict::Allowed { .. }
        ));
        assert_eq!(
            header(ORDER_CANCEL_ALL, 0),
            "group=order-cancel-all; min=30; sec=0"
        );
    }
}
