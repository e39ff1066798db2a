//! Time as `respond` writes it, on the ground floor (no dependency on anything else in the
//! crate): UTC with milliseconds and `Z` everywhere in the bundle, and an exchange's local
//! rendering beside it where a reviewer compares with the exchange's own UI.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

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
