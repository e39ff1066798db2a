//! Bybit's rate limits: a budget **per endpoint** and account (UID), mostly per second, and the
//! headers that report it.
//!
//! Every private answer carries `X-Bapi-Limit` (the endpoint's limit), `X-Bapi-Limit-Status`
//! (requests left in the current window) and `X-Bapi-Limit-Reset-Timestamp` (when it resets,
//! ms). The headers do not name the endpoint, so the report is read against the endpoint just
//! called ([`observe`]). Over the limit Bybit answers retCode `10006` inside an HTTP 200; the
//! client turns it into a rate-limit refusal the pipeline waits out. The limits of
//! `docs/exchanges/bybit.md` §6 (default UTA tier).

use std::time::Duration;

use crate::exchange::http::{header, BudgetReport, Call};
use crate::exchange::ratelimit::Budget;

/// The rate-limit headers kept as evidence.
pub const HEADERS: &[&str] = &[
    "x-bapi-limit",
    "x-bapi-limit-status",
    "x-bapi-limit-reset-timestamp",
];

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// The group (the endpoint) a call counts against.
pub fn group(call: &Call) -> String {
    call.path.trim_end_matches('/').to_string()
}

/// The published budget of an endpoint.
pub fn budget_of(group: &str) -> Budget {
    let (limit, window) = match group {
        "/v5/order/create"
        | "/v5/order/cancel"
        | "/v5/order/cancel-all"
        | "/v5/order/cancel-batch" => (20, SECOND),
        "/v5/order/realtime"
        | "/v5/order/history"
        | "/v5/execution/list"
        | "/v5/account/wallet-balance"
        | "/v5/account/info" => (50, SECOND),
        "/v5/user/query-api" => (10, SECOND),
        "/v5/user/delete-api" | "/v5/user/update-api" | "/v5/user/delete-sub-api" => (5, SECOND),
        "/v5/asset/withdraw/query-record" => (300, MINUTE),
        "/v5/asset/deposit/query-record" => (100, MINUTE),
        "/v5/asset/withdraw/cancel" => (60, MINUTE),
        "/v5/asset/withdraw/query-address" => (300, SECOND),
        "/v5/asset/coin/query-info" => (5, SECOND),
        // Public market data: 600 per 5 s per IP shared by every endpoint; 100/s each keeps
        // well under it.
        _ => (100, SECOND),
    };
    Budget { limit, window }
}

/// What an answer says about the budget of the endpoint called: requests left.
pub fn observe(call: &Call, headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
    let remaining = header(headers, "x-bapi-limit-status")?
        .trim()
        .parse::<u32>()
        .ok()?;
    Some(BudgetReport {
        group: group(call),
        remaining: Some(remaining),
    })
}

/// When the endpoint's budget resets, from `X-Bapi-Limit-Reset-Timestamp` (ms), as a wait
/// from `now_ms`; `None` when the header is missing or in the past.
pub fn reset_in(headers: &reqwest::header::HeaderMap, now_ms: i64) -> Option<Duration> {
    let at = header(headers, "x-bapi-limit-reset-timestamp")?
        .trim()
        .parse::<i64>()
        .ok()?;
    (at > now_ms).then(|| Duration::from_millis((at - now_ms) as u64))
}
