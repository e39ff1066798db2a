//! The venue's clock: real time, shifted when the scenario (or the caller) fixes "now", and
//! the UTC timestamp format the drill API and the request log write, and the default history
//! window façades share.

use chrono::{DateTime, Timelike, Utc};

/// Real time plus a fixed offset.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    offset: chrono::Duration,
}

impl Clock {
    /// A clock whose "now" is `anchor` at the moment of the call when `fixed`, else real time.
    pub fn new(anchor: DateTime<Utc>, fixed: bool) -> Clock {
        Clock {
            offset: if fixed {
                anchor - crate::time::now()
            } else {
                chrono::Duration::zero()
            },
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        crate::time::now() + self.offset
    }
}

/// The scenario's "now" rounded down to the minute: `explicit`, else the scenario's, else the
/// real time.
pub fn scenario_now(
    explicit: Option<DateTime<Utc>>,
    scenario: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let t = explicit.or(scenario).unwrap_or_else(crate::time::now);
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// UTC with milliseconds and `Z`, as the journal writes times.
pub fn ts(t: DateTime<Utc>) -> String {
    crate::engine::journal::ts(t)
}

/// Why a history window was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowError {
    /// The end is before the start.
    Reversed,
    /// Longer than the endpoint allows.
    TooLong,
}

/// A history window of at most `span`: the ends as given, `start + span` or `end - span` when
/// one is missing, the last `span` up to `now` when both are.
pub fn window(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    span: chrono::Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), WindowError> {
    let (s, e) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + span),
        (None, Some(e)) => (e - span, e),
        (None, None) => (now - span, now),
    };
    if e < s {
        return Err(WindowError::Reversed);
    }
    if e - s > span {
        return Err(WindowError::TooLong);
    }
    Ok((s, e))
}
