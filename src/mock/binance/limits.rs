//! Binance's rate limits, configured on the venue's counter core.
//!
//! - `/api/v3`: request weight per client IP, 6,000 a minute (`X-MBX-USED-WEIGHT-1M` on every
//!   answer, errors included), and new orders per account, 100 per 10 s and 200,000 a day
//!   (`X-MBX-ORDER-COUNT-10S`, `-1D` on an accepted order). Every placed order counts (a
//!   refused one does not); Binance gives back the count of orders that fill, the mock does
//!   not.
//! - `/sapi/v1`: IP weight, 12,000 a minute (`X-SAPI-USED-IP-WEIGHT-1M`), or UID weight per
//!   account, 180,000 a minute (`X-SAPI-USED-UID-WEIGHT-1M`), as each endpoint says (the
//!   withdrawal history costs 18,000 UID weight: ten calls a minute).
//!
//! Weight is counted when the request arrives, before its key is checked, so refused requests
//! cost too. Over a budget the answer is 429 with `Retry-After` (seconds until the window
//! ends) and `-1003` (`-1015` for orders); a caller that collects more than 10 of those
//! within a minute is banned for two minutes: 418 with `Retry-After` until the ban ends.

use std::time::Duration;

use crate::mock::venue::ratelimit::{BlockPolicy, Budget};

/// `/api/v3` request weight per IP.
pub const REQUEST_WEIGHT: Budget = Budget::new("binance-request-weight", 6000, 60_000);
/// `/sapi` IP weight per IP.
pub const SAPI_IP: Budget = Budget::new("binance-sapi-ip-weight", 12_000, 60_000);
/// `/sapi` UID weight per account.
pub const SAPI_UID: Budget = Budget::new("binance-sapi-uid-weight", 180_000, 60_000);
/// New orders per account in 10 s.
pub const ORDERS_10S: Budget = Budget::new("binance-orders-10s", 100, 10_000);
/// New orders per account in a day.
pub const ORDERS_1D: Budget = Budget::new("binance-orders-1d", 200_000, 86_400_000);

/// 429s tolerated within a minute before the caller is banned for two minutes with 418
/// (Binance escalates bans from two minutes to three days; the mock stays at the first step).
pub const BAN: BlockPolicy = BlockPolicy {
    strikes_before_block: 10,
    strike_window: Duration::from_secs(60),
    block_for: Duration::from_secs(120),
};

/// What a request costs, and against which budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// `/api/v3` request weight (per IP).
    Weight(u32),
    /// `/sapi` IP weight.
    SapiIp(u32),
    /// `/sapi` UID weight (per account: counted once the key is known).
    SapiUid(u32),
    /// Not counted (the futures hosts ccxt asks for while loading markets).
    Free,
}

impl Cost {
    /// The budget and its response header.
    pub fn budget(self) -> Option<(Budget, &'static str)> {
        match self {
            Cost::Weight(_) => Some((REQUEST_WEIGHT, "x-mbx-used-weight-1m")),
            Cost::SapiIp(_) => Some((SAPI_IP, "x-sapi-used-ip-weight-1m")),
            Cost::SapiUid(_) => Some((SAPI_UID, "x-sapi-used-uid-weight-1m")),
            Cost::Free => None,
        }
    }

    pub fn units(self) -> u32 {
        match self {
            Cost::Weight(n) | Cost::SapiIp(n) | Cost::SapiUid(n) => n,
            Cost::Free => 0,
        }
    }
}

/// The `interval` words of the messages and of `exchangeInfo.rateLimits` for a budget.
pub fn interval(b: Budget) -> (&'static str, u32, &'static str) {
    match b.window.as_millis() {
        10_000 => ("SECOND", 10, "10 SECOND"),
        86_400_000 => ("DAY", 1, "1 DAY"),
        _ => ("MINUTE", 1, "1 MINUTE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::ratelimit::{Limiter, Verdict};
    use tokio::time::Instant;

    #[test]
    fn a_minute_of_weight_then_429s_then_a_two_minute_ban() {
        let mut l = Limiter::new(Some(BAN));
        let t = Instant::now();
        for _ in 0..300 {
            assert!(matches!(
                l.hit(REQUEST_WEIGHT, "ip", 20, t),
                Verdict::Allowed { .. }
            ));
        }
        assert_eq!(l.usage(REQUEST_WEIGHT, "ip", t).0, 6000);
        for _ in 0..10 {
            assert_eq!(l.hit(REQUEST_WEIGHT, "ip", 1, t), Verdict::TooMany);
        }
        assert_eq!(
            l.hit(REQUEST_WEIGHT, "ip", 1, t),
            Verdict::Blocked { seconds: 120 }
        );
        // Still banned after the minute is over.
        assert!(matches!(
            l.hit(REQUEST_WEIGHT, "ip", 1, t + Duration::from_secs(90)),
            Verdict::Blocked { seconds: 30 }
        ));
        assert!(matches!(
            l.hit(REQUEST_WEIGHT, "ip", 1, t + Duration::from_secs(121)),
            Verdict::Allowed { .. }
        ));
        assert_eq!(interval(ORDERS_10S).2, "10 SECOND");
        assert_eq!(Cost::SapiUid(18_000).budget().unwrap().0, SAPI_UID);
    }
}
