//! Coinbase's wire details: RFC 3339 times with microseconds, stable account uuids, the
//! opaque list cursors, and the order and fill names.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::mock::venue::state::{Order, OrderKind, OrderState, Side, Tif};

/// `2025-01-02T00:05:12.123456Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An RFC 3339 time parameter; None when it does not parse.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A stable uuid for a name (an account's currency wallet, a user, a portfolio).
pub fn stable_uuid(parts: &[&str]) -> Uuid {
    use sha2::Digest;
    let d = sha2::Sha256::digest(parts.join("\u{1f}").as_bytes());
    let bytes: [u8; 16] = d[..16].try_into().unwrap_or_default();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A list position as an opaque cursor: the sort key of the last item given.
pub fn cursor(key: (i64, u64)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", key.0, key.1))
}

/// The sort key a cursor holds; None when it is not one of ours.
pub fn parse_cursor(s: &str) -> Option<(i64, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (a, b) = text.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub fn side(s: Side) -> &'static str {
    match s {
        Side::Bid => "BUY",
        Side::Ask => "SELL",
    }
}

/// `OPEN`, `FILLED`, `CANCELLED` (an immediate order that ended unfilled is `CANCELLED`
/// too, as Coinbase shows an IOC remainder).
pub fn status(o: &Order) -> &'static str {
    match o.state {
        OrderState::Open => "OPEN",
        OrderState::Done => "FILLED",
        OrderState::Cancelled => "CANCELLED",
    }
}

/// The statuses a `order_status` filter value selects in the venue (None: unknown value).
pub fn states_for(status: &str) -> Option<&'static [OrderState]> {
    Some(match status {
        "OPEN" => &[OrderState::Open],
        "FILLED" => &[OrderState::Done],
        "CANCELLED" => &[OrderState::Cancelled],
        "EXPIRED" | "FAILED" | "PENDING" | "QUEUED" | "CANCEL_QUEUED" | "UNKNOWN_ORDER_STATUS" => {
            &[]
        }
        _ => return None,
    })
}

/// `LIMIT` or `MARKET`.
pub fn order_type(o: &Order) -> &'static str {
    match o.kind {
        OrderKind::Limit => "LIMIT",
        _ => "MARKET",
    }
}

/// The order configuration's kind.
pub fn config_kind(o: &Order) -> &'static str {
    match (o.kind, o.tif) {
        (OrderKind::Limit, Some(Tif::Ioc)) => "sor_limit_ioc",
        (OrderKind::Limit, Some(Tif::Fok)) => "limit_limit_fok",
        (OrderKind::Limit, _) => "limit_limit_gtc",
        _ => "market_market_ioc",
    }
}

/// `time_in_force`.
pub fn time_in_force(o: &Order) -> &'static str {
    match (o.kind, o.tif) {
        (OrderKind::Limit, None | Some(Tif::PostOnly)) => "GOOD_UNTIL_CANCELLED",
        (OrderKind::Limit, Some(Tif::Fok)) => "FILL_OR_KILL",
        _ => "IMMEDIATE_OR_CANCEL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_times_keep_microseconds() {
        let c = cursor((1_735_776_000_123_456, 42));
        assert_eq!(parse_cursor(&c), Some((1_735_776_000_123_456, 42)));
        assert_eq!(parse_cursor("not a cursor"), None);
        let t = parse_ts("2025-01-02T00:05:12.123456Z").unwrap();
        assert_eq!(ts(t), "2025-01-02T00:05:12.123456Z");
        assert_eq!(stable_uuid(&["a", "BTC"]), stable_uuid(&["a", "BTC"]));
        assert_ne!(stable_uuid(&["a", "BTC"]), stable_uuid(&["a", "ETH"]));
    }
}
