//! Binance's rate limits: request weight per IP and minute, the `/sapi` IP and UID weights,
//! the weight of each call, the headers that report them, and what a plan of calls costs.
//!
//! Binance counts *weight*, not requests: `REQUEST_WEIGHT` 6,000 per minute per IP for
//! `/api/v3` (a listing of every open order costs 80, a day of one symbol's orders 20), the
//! `/sapi` endpoints 12,000 per minute of IP weight and 180,000 of UID weight (the withdrawal
//! history costs 18,000 of it). Each answer reports the weight used so far in its minute
//! (`X-MBX-USED-WEIGHT-1M`, `X-SAPI-USED-IP-WEIGHT-1M`, `X-SAPI-USED-UID-WEIGHT-1M`) and, after
//! an order, the order counts (`X-MBX-ORDER-COUNT-10S`, `…-1D`); the shared limiter paces by
//! this table and adopts the server's count when another client shares the IP. Over the limit
//! Binance answers 429 with `Retry-After`, and bans the IP with 418 when a client insists: the
//! limiter never sends what the budget would refuse, so the 418 is never reached.

use std::time::Duration;

use crate::exchange::http::{header, BudgetReport, Call};
use crate::exchange::ratelimit::Budget;

/// `/api/v3` request weight per IP.
pub const WEIGHT: &str = "weight";
/// `/sapi` IP weight.
pub const SAPI_IP: &str = "sapi-ip";
/// `/sapi` UID (account) weight.
pub const SAPI_UID: &str = "sapi-uid";
/// New orders per 10 s and per day (reported after orders; respond places none).
pub const ORDERS_10S: &str = "orders-10s";
pub const ORDERS_1D: &str = "orders-1d";

/// The per-minute `/api/v3` weight budget.
pub const WEIGHT_PER_MINUTE: u32 = 6000;

const MINUTE: Duration = Duration::from_secs(60);

/// The published budget of a group.
pub fn budget_of(group: &str) -> Budget {
    match group {
        WEIGHT => Budget {
            limit: WEIGHT_PER_MINUTE,
            window: MINUTE,
        },
        SAPI_IP => Budget {
            limit: 12_000,
            window: MINUTE,
        },
        SAPI_UID => Budget {
            limit: 180_000,
            window: MINUTE,
        },
        ORDERS_10S => Budget {
            limit: 100,
            window: Duration::from_secs(10),
        },
        ORDERS_1D => Budget {
            limit: 200_000,
            window: Duration::from_secs(86_400),
        },
        _ => Budget {
            limit: 1200,
            window: MINUTE,
        },
    }
}

fn has(call: &Call, name: &str) -> bool {
    call.params.iter().any(|(k, _)| k == name)
}

/// The group and weight of a call (the published weights of docs/exchanges/binance.md §4).
pub fn cost(call: &Call) -> (&'static str, u32) {
    let path = call.path.trim_end_matches('/');
    match (call.method.as_str(), path) {
        ("GET", "/api/v3/time") => (WEIGHT, 1),
        ("GET", "/api/v3/exchangeInfo") => (WEIGHT, 20),
        ("GET", "/api/v3/account") => (WEIGHT, 20),
        ("GET", "/api/v3/openOrders") => (WEIGHT, if has(call, "symbol") { 6 } else { 80 }),
        ("DELETE", "/api/v3/openOrders") => (WEIGHT, 1),
        ("GET", "/api/v3/order") => (WEIGHT, 4),
        ("DELETE", "/api/v3/order") => (WEIGHT, 1),
        ("GET", "/api/v3/openOrderList") => (WEIGHT, 6),
        ("DELETE", "/api/v3/orderList") => (WEIGHT, 1),
        ("GET", "/api/v3/allOrders") => (WEIGHT, 20),
        ("GET", "/api/v3/myTrades") => (WEIGHT, if has(call, "orderId") { 5 } else { 20 }),
        ("GET", "/api/v3/klines") => (WEIGHT, 2),
        ("GET", "/sapi/v1/account/apiRestrictions") => (SAPI_IP, 1),
        ("GET", "/sapi/v1/accountSnapshot") => (SAPI_IP, 2400),
        ("GET", "/sapi/v1/capital/withdraw/history") => (SAPI_UID, 18_000),
        ("GET", "/sapi/v1/capital/deposit/hisrec") => (SAPI_IP, 1),
        ("GET", "/sapi/v1/capital/withdraw/address/list") => (SAPI_IP, 10),
        ("DELETE", "/sapi/v1/sub-account/subAccountApi") => (SAPI_UID, 3000),
        (_, p) if p.starts_with("/sapi/") => (SAPI_IP, 1),
        _ => (WEIGHT, 1),
    }
}

fn used(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u32> {
    header(headers, name).and_then(|v| v.trim().parse::<u32>().ok())
}

fn report(group: &str, used: u32) -> BudgetReport {
    BudgetReport {
        group: group.into(),
        remaining: Some(budget_of(group).limit.saturating_sub(used)),
    }
}

/// The budget an answer reports first, as units left in its minute: the `/sapi` UID or IP
/// weight when the answer carries one (a `/sapi` answer), else `X-MBX-USED-WEIGHT-1M`. The
/// report also names the group the call counts against, so a call Binance counts as request
/// weight is paced as such, whatever the table says.
pub fn observe(headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
    if let Some(u) = used(headers, "x-sapi-used-uid-weight-1m") {
        return Some(report(SAPI_UID, u));
    }
    if let Some(u) = used(headers, "x-sapi-used-ip-weight-1m") {
        return Some(report(SAPI_IP, u));
    }
    used(headers, "x-mbx-used-weight-1m").map(|u| report(WEIGHT, u))
}

/// The other budgets the answer reports: the order counts (after an order), and the request
/// weight when a `/sapi` weight came first.
pub fn observe_more(headers: &reqwest::header::HeaderMap) -> Vec<BudgetReport> {
    let mut out = Vec::new();
    let sapi = used(headers, "x-sapi-used-uid-weight-1m").is_some()
        || used(headers, "x-sapi-used-ip-weight-1m").is_some();
    if let (true, Some(u)) = (sapi, used(headers, "x-mbx-used-weight-1m")) {
        out.push(report(WEIGHT, u));
    }
    for (name, group) in [
        ("x-mbx-order-count-10s", ORDERS_10S),
        ("x-mbx-order-count-1d", ORDERS_1D),
    ] {
        if let Some(u) = used(headers, name) {
            out.push(report(group, u));
        }
    }
    out
}

/// The headers kept as evidence in each raw sidecar.
pub const HEADERS: &[&str] = &[
    "x-mbx-used-weight-1m",
    "x-mbx-order-count-10s",
    "x-mbx-order-count-1d",
    "x-sapi-used-ip-weight-1m",
    "x-sapi-used-uid-weight-1m",
    "retry-after",
];

/// Weight of one day of one symbol's history: `allOrders` and `myTrades`.
pub const WEIGHT_PER_SYMBOL_DAY: u32 = 20 + 20;

/// The least time the `/api/v3` weight budget allows for `weight` units of calls: every full
/// budget after the first waits a minute.
pub fn floor(weight: u64) -> Duration {
    let per = u64::from(WEIGHT_PER_MINUTE);
    Duration::from_secs((weight.saturating_sub(1) / per) * 60)
}

/// Containment's weight for a book of open orders over `symbols` symbols, cancelled in
/// `rounds` rounds: a listing of every open order (80) per round and the final one, one
/// cancel-all (1) per symbol, and the listing of open order lists (6) that proves none is
/// left.
pub fn containment_weight(symbols: u64, rounds: u64) -> u64 {
    80 * (rounds + 1) + symbols + 6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::http::p;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn weights_follow_the_published_table() {
        assert_eq!(cost(&Call::get("/api/v3/openOrders", vec![])), (WEIGHT, 80));
        assert_eq!(
            cost(&Call::get(
                "/api/v3/openOrders",
                vec![p("symbol", "BTCUSDT")]
            )),
            (WEIGHT, 6)
        );
        assert_eq!(
            cost(&Call::get(
                "/api/v3/myTrades",
                vec![p("symbol", "X"), p("orderId", 1)]
            )),
            (WEIGHT, 5)
        );
        assert_eq!(
            cost(&Call::get("/sapi/v1/capital/withdraw/history", vec![])),
            (SAPI_UID, 18_000)
        );
        assert_eq!(
            cost(&Call::get("/sapi/v1/accountSnapshot", vec![])),
            (SAPI_IP, 2400)
        );
    }

    #[test]
    fn used_weight_headers_become_units_left() {
        let mut h = HeaderMap::new();
        h.insert("x-mbx-used-weight-1m", HeaderValue::from_static("5900"));
        let r = observe(&h).unwrap();
        assert_eq!((r.group.as_str(), r.remaining), (WEIGHT, Some(100)));
        assert!(observe_more(&h).is_empty());
        h.insert(
            "x-sapi-used-ip-weight-1m",
            HeaderValue::from_static("11000"),
        );
        let r = observe(&h).unwrap();
        assert_eq!((r.group.as_str(), r.remaining), (SAPI_IP, Some(1000)));
        h.insert("x-mbx-order-count-10s", HeaderValue::from_static("100"));
        h.insert("x-mbx-order-count-1d", HeaderValue::from_static("7"));
        let more = observe_more(&h);
        let got: Vec<(&str, Option<u32>)> = more
            .iter()
            .map(|r| (r.group.as_str(), r.remaining))
            .collect();
        assert_eq!(
            got,
            [
                (WEIGHT, Some(100)),
                (ORDERS_10S, Some(0)),
                (ORDERS_1D, Some(199_993))
            ]
        );
        assert!(observe(&HeaderMap::new()).is_none());
    }

    #[test]
    fn floors_count_whole_minutes() {
        assert_eq!(floor(6000), Duration::ZERO);
        assert_eq!(floor(6001), Duration::from_secs(60));
        assert_eq!(floor(18_000), Duration::from_secs(120));
        assert_eq!(containment_weight(3, 1), 169);
    }
}
