//! Time as `respond` reads and writes it, on the ground floor (no dependency on anything else
//! in the crate): the clock every timestamp comes from ([`now`]), UTC with milliseconds and `Z`
//! everywhere in the bundle, and an exchange's local rendering beside it where a reviewer
//! compares with the exchange's own UI.
//!
//! Waits, polls, timeouts and pacing run on tokio's timers; timestamps come from [`now`], the
//! system's clock. A test that pauses tokio's clock (`tokio::time::pause`) calls
//! [`follow_tokio_clock`] so that the timestamps follow the same paused clock as the waits: a
//! drill's 12 s user reaction then takes no wall-clock time, and its journal still says 12 s.

use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// Set by [`follow_tokio_clock`]: the UTC time and the tokio instant it was called at.
static TOKIO_ANCHOR: OnceLock<(DateTime<Utc>, tokio::time::Instant)> = OnceLock::new();

/// Now, in UTC: what every journal entry, raw-response sidecar, lock file and mock record is
/// stamped with. The system clock, unless [`follow_tokio_clock`] was called.
pub fn now() -> DateTime<Utc> {
    match TOKIO_ANCHOR.get() {
        None => Utc::now(),
        Some((at, instant)) => {
            let i = tokio::time::Instant::now();
            let since = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or_default();
            if i >= *instant {
                *at + since(i - *instant)
            } else {
                *at - since(*instant - i)
            }
        }
    }
}

/// From now on (for the rest of the process), [`now`] is the system time of this call plus
/// the time tokio's clock has moved since: for tests on a paused tokio clock, whose sleeps,
/// timeouts and polls take no real time. Call it inside the paused runtime, before the run.
/// On a clock that is not paused the two agree, so other runtimes of the process keep stamping
/// (nearly) the system time. Later calls change nothing.
pub fn follow_tokio_clock() {
    TOKIO_ANCHOR.get_or_init(|| (Utc::now(), tokio::time::Instant::now()));
}

/// UTC with milliseconds and `Z` (`2026-11-20T14:03:07.120Z`), as everywhere in the bundle.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The fixed offset of `utc_offset_secs`, UTC when out of range.
pub fn offset(utc_offset_secs: i32) -> FixedOffset {
    FixedOffset::east_opt(utc_offset_secs)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"))
}

/// `t` in a zone `utc_offset_secs` east of UTC, milliseconds, with its offset
/// (`2026-11-20T23:03:07.120+09:00`).
pub fn local(t: DateTime<Utc>, utc_offset_secs: i32) -> String {
    t.with_timezone(&offset(utc_offset_secs))
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// A zone's name for column headers: `name` when the offset is the zone's, `UTC` for zero,
/// else `UTC±hh:mm`.
pub fn zone_label(utc_offset_secs: i32, known: Option<(i32, &str)>) -> String {
    match known {
        Some((off, name)) if off == utc_offset_secs && !name.is_empty() => name.to_string(),
        _ if utc_offset_secs == 0 => "UTC".into(),
        _ => {
            let sign = if utc_offset_secs < 0 { '-' } else { '+' };
            let a = utc_offset_secs.unsigned_abs();
            format!("UTC{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
        }
    }
}

/// The proleptic Gregorian (year, month, day) of a day number counted from 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` for `secs` seconds (and `nanos`) after 1970-01-01 in the
/// proleptic Gregorian calendar, digits written by hand; None for years outside 0..=9999
/// and leap seconds (callers then use chrono).
pub fn date_time_micros(secs: i64, nanos: u32) -> Option<[u8; 26]> {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&y) || nanos >= 1_000_000_000 {
        return None;
    }
    let sod = secs.rem_euclid(86_400) as u32;
    let us = nanos / 1000;
    let mut b = *b"0000-00-00T00:00:00.000000";
    let mut two = |at: usize, n: u32| {
        b[at] = b'0' + (n / 10) as u8;
        b[at + 1] = b'0' + (n % 10) as u8;
    };
    two(0, (y / 100) as u32);
    two(2, (y % 100) as u32);
    two(5, mo);
    two(8, d);
    two(11, sod / 3600);
    two(14, sod / 60 % 60);
    two(17, sod % 60);
    two(20, us / 10_000);
    two(22, us / 100 % 100);
    two(24, us % 100);
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn utc_and_local_renderings() {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 14, 3, 7).unwrap()
            + chrono::Duration::milliseconds(120);
        assert_eq!(ts(t), "2026-11-20T14:03:07.120Z");
        assert_eq!(local(t, 9 * 3600), "2026-11-20T23:03:07.120+09:00");
        assert_eq!(local(t, 10 * 3600), "2026-11-21T00:03:07.120+10:00");
        assert_eq!(local(t, -5 * 3600), "2026-11-20T09:03:07.120-05:00");
        assert_eq!(zone_label(32400, Some((32400, "JST"))), "JST");
        assert_eq!(zone_label(0, Some((32400, "JST"))), "UTC");
        assert_eq!(zone_label(-16200, None), "UTC-04:30");
        assert_eq!(zone_label(19800, None), "UTC+05:30");
    }
}
