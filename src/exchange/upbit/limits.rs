//! Upbit's rate limits: the budget of each group, which group an endpoint counts against,
//! and the least time its budgets allow to cancel a book (the containment benchmark's floor).
//!
//! Upbit counts requests per *group* (`default` 30/s, `order` 8/s, `order-cancel-all` 1 per
//! 2 s, quotation groups 10/s) and reports what is left in every response's `Remaining-Req`
//! header; the shared limiter ([`crate::exchange::ratelimit`]) paces by this table.

use std::time::Duration;

use crate::exchange::ratelimit::Budget;

/// The published budget of an Upbit group. Unknown groups get a conservative 5/s.
pub fn budget_of(group: &str) -> Budget {
    let per_sec = Budget::per_sec;
    match group {
        "default" => per_sec(30),
        "order" | "order-test" => per_sec(8),
        "order-cancel-all" => Budget {
            limit: 1,
            window: Duration::from_secs(2),
        },
        "market" | "candle" | "trade" | "ticker" | "orderbook" => per_sec(10),
        _ => per_sec(5),
    }
}

/// The group an endpoint is expected to count against before the server says otherwise.
pub fn group_for(method: &str, path: &str) -> &'static str {
    let path = path.trim_end_matches('/');
    if path.starts_with("/v1/market/") {
        return "market";
    }
    if path.starts_with("/v1/candles/") {
        return "candle";
    }
    if path.starts_with("/v1/trades/") {
        return "trade";
    }
    if path == "/v1/ticker" || path.starts_with("/v1/ticker/") {
        return "ticker";
    }
    if path == "/v1/orderbook" {
        return "orderbook";
    }
    match (method, path) {
        ("DELETE", "/v1/orders/open") => "order-cancel-all",
        ("POST", "/v1/orders/test") => "order-test",
        // Cancels by id (`DELETE /v1/order`, `DELETE /v1/orders/uuids`) count against
        // `default`, not `order` (Upbit's API reference, "Rate Limit" of each endpoint).
        ("POST", "/v1/orders") => "order",
        _ => "default",
    }
}

/// The least time Upbit's published budgets allow to cancel a book of `wait` and `watch`
/// orders, counting from the first listing call to the final listing that sees the book
/// empty (no network or server time): list pages of 100, then batch calls of 300 (only
/// `wait` orders) at 1 per 2 s side by side with calls by id (20 `wait` uuids, or one `watch`
/// order, per call), then one listing. Listings and cancels by id share the `default` group.
/// Every group may spend its whole budget at once, then must wait a window: call `i` and call
/// `i + limit` of a group are at least one window apart. So a small book has a floor of zero
/// (the limits impose no wait); the benchmark reports containment time next to this.
pub fn cancel_all_floor(open_wait: usize, open_watch: usize) -> Duration {
    let default = budget_of("default");
    let batch = budget_of("order-cancel-all");
    // Send time of the k-th `default` call (0-based), bursting a whole budget per window.
    let default_at = |k: usize| default.window * (k / default.limit as usize) as u32;
    let pages = (open_wait + open_watch).div_ceil(100).max(1);
    let mut k = pages;
    let listed = default_at(pages - 1);
    let (mut wait, mut watch) = (open_wait, open_watch);
    let mut next_batch = listed;
    let mut last = listed;
    while wait + watch > 0 {
        let by_id = default_at(k).max(listed);
        if wait > 20 && next_batch <= by_id {
            wait -= wait.min(300);
            last = last.max(next_batch);
            next_batch += batch.window;
            continue;
        }
        if wait > 0 {
            wait -= wait.min(20);
        } else {
            watch -= 1;
        }
        k += 1;
        last = last.max(by_id);
    }
    last.max(default_at(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_groups() {
        assert_eq!(group_for("DELETE", "/v1/orders/open"), "order-cancel-all");
        assert_eq!(group_for("GET", "/v1/orders/open"), "default");
        assert_eq!(group_for("GET", "/v1/candles/minutes/1"), "candle");
        assert_eq!(group_for("POST", "/v1/orders"), "order");
        assert_eq!(group_for("DELETE", "/v1/order"), "default");
        assert_eq!(group_for("DELETE", "/v1/orders/uuids"), "default");
        assert_eq!(budget_of("order-cancel-all").window, Duration::from_secs(2));
    }

    #[test]
    fn cancel_floor_follows_the_budgets() {
        // Small books: one listing, one cancel call, one listing, all within the first
        // window's budget: the limits impose no wait.
        assert_eq!(cancel_all_floor(10, 0), Duration::ZERO);
        assert_eq!(cancel_all_floor(100, 0), Duration::ZERO);
        // 1000: 10 listing pages and a batch of 300 at 0 s; 20 uuid calls (400 orders) fill
        // the first second's `default` budget, 15 more at 1 s finish the book, and the final
        // listing fits in that second's budget too.
        assert_eq!(cancel_all_floor(1000, 0), Duration::from_secs(1));
        // 3000 `wait`: 30 pages fill the first second's `default` budget, with a batch of
        // 300 at 0 s (2700 left); each later second's 30 uuid calls take 600 and batches at
        // 2 s and 4 s take 300: 1 s → 2100, 2 s → 1200, 3 s → 600, 4 s → 0; the final
        // listing fits in the 4 s window.
        assert_eq!(cancel_all_floor(3000, 0), Duration::from_secs(4));
        // `watch` orders go one per `default` call: a listing, 28 cancels and the final
        // listing fill one window; one more order needs the next.
        assert_eq!(cancel_all_floor(0, 28), Duration::ZERO);
        assert_eq!(cancel_all_floor(0, 29), Duration::from_secs(1));
    }
}
