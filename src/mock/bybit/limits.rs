//! Bybit's rate limits on the venue's counter core (docs/exchanges/bybit.md §6).
//!
//! - Per IP: 600 requests in 5 s, counted before anything else (public and private alike).
//!   Over it the answer is HTTP 403 "access too frequent" and the IP stays banned for ten
//!   minutes (the façade keeps the ban; the counter core has no per-budget block).
//! - Per UID and endpoint: a rolling one-second budget (`order/create` 20/s, `query-api`
//!   10/s, `delete-api` 5/s, …; the asset histories count per minute). A signed answer
//!   carries `X-Bapi-Limit` (the budget), `X-Bapi-Limit-Status` (what is left) and
//!   `X-Bapi-Limit-Reset-Timestamp` (ms when the window ends; now while under the limit).
//!   Over it the answer is `retCode` 10006 with HTTP 200.

use std::time::Duration;

use crate::mock::venue::ratelimit::Budget;

/// Requests per IP in 5 s.
pub const IP: Budget = Budget::new("bybit-ip", 600, 5_000);
/// How long an IP over [`IP`] is refused.
pub const IP_BAN: Duration = Duration::from_secs(600);

/// Spot `order/create` per UID (also what the live attacker's orders count against).
pub const ORDER_CREATE: Budget = Budget::new("bybit-order-create", 20, 1_000);
pub const ORDER_CANCEL: Budget = Budget::new("bybit-order-cancel", 20, 1_000);
pub const ORDER_CANCEL_ALL: Budget = Budget::new("bybit-order-cancel-all", 20, 1_000);
pub const ORDER_REALTIME: Budget = Budget::new("bybit-order-realtime", 50, 1_000);
pub const ORDER_HISTORY: Budget = Budget::new("bybit-order-history", 50, 1_000);
pub const EXECUTION_LIST: Budget = Budget::new("bybit-execution-list", 50, 1_000);
pub const WALLET_BALANCE: Budget = Budget::new("bybit-wallet-balance", 50, 1_000);
pub const ACCOUNT_INFO: Budget = Budget::new("bybit-account-info", 50, 1_000);
pub const QUERY_API: Budget = Budget::new("bybit-query-api", 10, 1_000);
pub const UPDATE_API: Budget = Budget::new("bybit-update-api", 5, 1_000);
pub const DELETE_API: Budget = Budget::new("bybit-delete-api", 5, 1_000);
pub const COIN_INFO: Budget = Budget::new("bybit-coin-query-info", 5, 1_000);
pub const WITHDRAW_RECORD: Budget = Budget::new("bybit-withdraw-record", 300, 60_000);
pub const DEPOSIT_RECORD: Budget = Budget::new("bybit-deposit-record", 100, 60_000);
pub const WITHDRAW_CREATE: Budget = Budget::new("bybit-withdraw-create", 5, 1_000);
pub const WITHDRAW_CANCEL: Budget = Budget::new("bybit-withdraw-cancel", 60, 60_000);
pub const WITHDRAW_ADDRESS: Budget = Budget::new("bybit-withdraw-address", 300, 1_000);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::ratelimit::{Limiter, Verdict};
    use tokio::time::Instant;

    #[test]
    fn a_one_second_budget_per_uid_and_endpoint() {
        let mut l = Limiter::new(None);
        let t = Instant::now();
        for _ in 0..5 {
            assert!(matches!(
                l.hit(DELETE_API, "uid", 1, t),
                Verdict::Allowed { .. }
            ));
        }
        assert_eq!(l.hit(DELETE_API, "uid", 1, t), Verdict::TooMany);
        // Another endpoint and another UID have their own budgets.
        assert!(matches!(
            l.hit(UPDATE_API, "uid", 1, t),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            l.hit(DELETE_API, "other", 1, t),
            Verdict::Allowed { .. }
        ));
        assert!(matches!(
            l.hit(DELETE_API, "uid", 1, t + Duration::from_millis(1000)),
            Verdict::Allowed { remaining: 4 }
        ));
    }
}
