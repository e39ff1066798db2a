//! KuCoin's rate limits: request **weight** drawn from **resource pools** (`Spot`,
//! `Management`, `Public`; per account, the public pool per IP), each a quota per 30-second
//! window, and the headers that report them.
//!
//! Every answer carries `gw-ratelimit-limit` (the pool's quota), `gw-ratelimit-remaining`
//! (quota left) and `gw-ratelimit-reset` (ms until the window resets). The headers do not name
//! the pool, so the report is read against the pool of the endpoint just called
//! ([`observe`]). Over a quota KuCoin answers HTTP 429 with code `429000`. Weights and pools:
//! `docs/exchanges/kucoin.md` §4 and §6 (VIP0 quotas).

use std::time::Duration;

use crate::exchange::http::{header, BudgetReport, Call};
use crate::exchange::ratelimit::Budget;

/// The rate-limit headers kept as evidence.
pub const HEADERS: &[&str] = &[
    "gw-ratelimit-limit",
    "gw-ratelimit-remaining",
    "gw-ratelimit-reset",
];

/// Every pool's window.
pub const WINDOW: Duration = Duration::from_secs(30);
pub const SPOT: &str = "Spot";
pub const MANAGEMENT: &str = "Management";
pub const PUBLIC: &str = "Public";

/// The pool a call draws from.
pub fn group(call: &Call) -> String {
    if !call.auth {
        return PUBLIC.into();
    }
    let p = call.path.as_str();
    let management = p.starts_with("/api/v1/user/")
        || p.starts_with("/api/v2/user")
        || p.starts_with("/api/v1/accounts")
        || p.starts_with("/api/v1/withdrawals")
        || p.starts_with("/api/v1/deposits")
        || p.starts_with("/api/v1/hist-")
        || p.starts_with("/api/v1/sub/");
    if management { MANAGEMENT } else { SPOT }.into()
}

/// The weight of a call in its pool (§4 of the facts).
pub fn weight(call: &Call) -> u32 {
    let m = call.method.as_str();
    let p = call.path.as_str();
    match (m, p) {
        ("DELETE", "/api/v1/hf/orders/cancelAll") | ("GET", "/api/v1/hf/accounts/opened") => 30,
        ("DELETE", "/api/v1/sub/api-key") => 30,
        ("GET", "/api/v1/user/api-key") | ("GET", "/api/v1/withdrawals") => 20,
        ("DELETE", "/api/v1/orders") => 20,
        ("GET", "/api/v1/market/allTickers") => 15,
        ("GET", "/api/v1/fills") => 10,
        ("GET", "/api/v1/accounts") | ("GET", "/api/v1/deposits") => 5,
        ("GET", "/api/v2/symbols") => 4,
        ("DELETE", "/api/v1/stop-order/cancel") | ("GET", "/api/v1/timestamp") => 3,
        ("GET", "/api/v1/market/candles") => 3,
        ("DELETE", p) if p.starts_with("/api/v1/withdrawals/") => 20,
        ("DELETE", p) if p.starts_with("/api/v1/hf/orders/") => 1,
        _ => 2,
    }
}

/// The quota of a pool per [`WINDOW`] (VIP0).
pub fn budget_of(group: &str) -> Budget {
    let limit = match group {
        SPOT => 4000,
        MANAGEMENT | PUBLIC => 2000,
        _ => 2000,
    };
    Budget {
        limit,
        window: WINDOW,
    }
}

/// How long to wait after a `429000`: the `gw-ratelimit-reset` it carried (ms until the pool
/// frees weight, at most the 30-second window), or a standard `Retry-After` when that is longer. Without either, the
/// limiter's own backoff applies.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let reset = header(headers, "gw-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        // A pool frees weight within its window: a larger value is no wait in ms (another
        // unit, or a time of day), and waiting the whole window is the safe reading of it.
        .map(|d| d.min(WINDOW));
    let standard = crate::exchange::http::retry_after_header(headers);
    match (reset, standard) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// What is left of the pool's window that counted the call: `gw-ratelimit-reset`, in ms.
/// KuCoin's pools (and the mock's) are fixed 30-second windows whose weight all frees when the
/// time runs out (docs/exchanges/kucoin.md §6), so the limiter may send the next window's
/// budget then ([`crate::exchange::ratelimit::RateLimiter::window_ends`]). A value beyond the
/// window is no such time (another unit, a time of day) and grants nothing.
pub fn window_left(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let left = Duration::from_millis(
        header(headers, "gw-ratelimit-reset")?
            .trim()
            .parse::<u64>()
            .ok()?,
    );
    (left <= WINDOW).then_some(left)
}

/// What an answer says about the pool of the endpoint called: quota left.
pub fn observe(call: &Call, headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
    let remaining = header(headers, "gw-ratelimit-remaining")?
        .trim()
        .parse::<u32>()
        .ok()?;
    Some(BudgetReport {
        group: group(call),
        remaining: Some(remaining),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn reset(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("gw-ratelimit-reset", HeaderValue::from_str(v).unwrap());
        h
    }

    /// Milliseconds left inside the 30 s window are the time left; a value past the window
    /// (a time of day, another unit), an unreadable one or none grants nothing.
    #[test]
    fn only_a_time_inside_the_window_is_the_time_left() {
        assert_eq!(
            window_left(&reset("29000")),
            Some(Duration::from_millis(29_000))
        );
        assert_eq!(window_left(&reset(" 30000 ")), Some(WINDOW));
        assert_eq!(window_left(&reset("30001")), None);
        assert_eq!(window_left(&reset("1735700000000")), None);
        assert_eq!(window_left(&reset("soon")), None);
        assert_eq!(window_left(&HeaderMap::new()), None);
    }
}
