//! Coinbase's rate limits and the headers that report them.
//!
//! Advanced Trade counts private requests per user (about 30 per second) and public ones per IP
//! (about 10 per second). The App API (v2) documents 10,000 requests per hour per key; its calls
//! are signed with the same key and are counted here against the same per-user second budget,
//! the stricter reading: `x-ratelimit-remaining` on a v2 answer then cannot park a separate
//! hour-long budget. Answers may carry `x-ratelimit-limit`, `x-ratelimit-remaining` and
//! `x-ratelimit-reset`; the report is read against the group of the call just made
//! ([`observe`]). Over the limit Coinbase answers 429, which the pipeline waits out. The
//! figures of `docs/exchanges/coinbase.md` §6.

use crate::exchange::http::{header, BudgetReport, Call};
use crate::exchange::ratelimit::Budget;

/// The rate-limit headers kept as evidence.
pub const HEADERS: &[&str] = &[
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// Signed requests, Advanced Trade and App API alike (per user).
pub const PRIVATE: &str = "private";
/// Unsigned market data (per IP).
pub const PUBLIC: &str = "public";

/// The group a call counts against.
pub fn group(call: &Call) -> String {
    if call.auth { PRIVATE } else { PUBLIC }.to_string()
}

/// The published budget of a group.
pub fn budget_of(group: &str) -> Budget {
    match group {
        PRIVATE => Budget::per_sec(30),
        _ => Budget::per_sec(10),
    }
}

/// What an answer says about the budget of the call's group: requests left.
pub fn observe(call: &Call, headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
    let remaining = header(headers, "x-ratelimit-remaining")?
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(BudgetReport {
        group: group(call),
        remaining: Some(remaining.max(0.0) as u32),
    })
}
