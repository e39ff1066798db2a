//! The venue's clock: real time, shifted when the scenario (or the caller) fixes "now", and
//! the UTC timestamp format the drill API and the request log write.

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
