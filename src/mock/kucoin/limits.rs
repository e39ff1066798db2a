//! KuCoin's resource pools on the venue's counter core (docs/exchanges/kucoin.md §6).
//!
//! Every request draws its endpoint's weight from one pool over a 30-second window: `Public`
//! per IP, `Spot` and `Management` per account (UID). Quotas are VIP 0's: Public 2,000,
//! Spot 4,000, Management 2,000. Every answer that drew from a pool carries
//! `gw-ratelimit-limit` (the quota), `gw-ratelimit-remaining` (what is left) and
//! `gw-ratelimit-reset` (ms until the window frees weight). Over quota the answer is HTTP 429
//! with code `429000` and the request is not processed.

use crate::mock::venue::ratelimit::Budget;

/// The window of every pool, in ms.
pub const WINDOW_MS: u64 = 30_000;

/// Public endpoints, per IP.
pub const PUBLIC: Budget = Budget::new("kucoin-public", 2_000, WINDOW_MS);
/// Spot trading endpoints, per account (also what the live attacker's orders draw from).
pub const SPOT: Budget = Budget::new("kucoin-spot", 4_000, WINDOW_MS);
/// Account, key and wallet endpoints, per account.
pub const MANAGEMENT: Budget = Budget::new("kucoin-management", 2_000, WINDOW_MS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::ratelimit::{Limiter, Verdict};
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn weights_draw_from_a_thirty_second_pool_per_caller() {
        let mut l = Limiter::new(None);
        let t = Instant::now();
        for _ in 0..100 {
            assert!(matches!(
                l.hit(MANAGEMENT, "uid", 20, t),
                Verdict::Allowed { .. }
            ));
        }
        assert_eq!(l.hit(MANAGEMENT, "uid", 20, t), Verdict::TooMany);
        assert!(matches!(l.hit(SPOT, "uid", 30, t), Verdict::Allowed { .. }));
        assert!(matches!(
            l.hit(MANAGEMENT, "other", 20, t),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            l.hit(MANAGEMENT, "uid", 20, t + Duration::from_millis(WINDOW_MS)),
            Verdict::Allowed { .. }
        ));
    }
}
