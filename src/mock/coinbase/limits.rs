//! Coinbase's rate limits on the venue's counter core (docs/exchanges/coinbase.md §6).
//!
//! - Private endpoints (Advanced Trade and App API alike): 30 requests per second per user.
//!   Every signed answer carries `x-ratelimit-limit` (the budget), `x-ratelimit-remaining`
//!   (what is left in the window) and `x-ratelimit-reset` (epoch seconds when the window
//!   ends). Over it the answer is HTTP 429 with the JSON error body, the same headers and
//!   `retry-after`.
//! - Public endpoints: 10 requests per second per IP, the same way.

use crate::mock::venue::ratelimit::Budget;

/// Signed requests per user (account) per second; also what the live attacker's orders
/// count against.
pub const PRIVATE: Budget = Budget::new("coinbase-private", 30, 1_000);
/// Public requests per IP per second.
pub const PUBLIC: Budget = Budget::new("coinbase-public", 10, 1_000);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::ratelimit::{Limiter, Verdict};
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn thirty_per_second_per_user() {
        let mut l = Limiter::new(None);
        let t = Instant::now();
        for _ in 0..30 {
            assert!(matches!(
                l.hit(PRIVATE, "user", 1, t),
                Verdict::Allowed { .. }
            ));
        }
        assert_eq!(l.hit(PRIVATE, "user", 1, t), Verdict::TooMany);
        assert!(matches!(
            l.hit(PRIVATE, "other", 1, t),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            l.hit(PRIVATE, "user", 1, t + Duration::from_millis(1000)),
            Verdict::Allowed { .. }
        ));
    }
}
