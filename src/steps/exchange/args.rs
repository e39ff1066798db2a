//! Reading step arguments.
//!
//! Arguments arrive after templating, so a number or a boolean may come as a JSON value or as
//! its text (`"true"`, `"60"`); both are accepted, anything else is a `BadArgument` naming the
//! argument.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::steps::StepError;

fn bad(arg: &str, message: impl Into<String>) -> StepError {
    StepError::BadArgument {
        arg: arg.to_string(),
        message: message.into(),
    }
}

fn present<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    match args.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => Some(v),
    }
}

pub(crate) fn string(args: &Map<String, Value>, name: &str) -> Result<Option<String>, StepError> {
    match present(args, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(bad(name, "expected a string")),
    }
}

pub(crate) fn boolean(
    args: &Map<String, Value>,
    name: &str,
    default: bool,
) -> Result<bool, StepError> {
    match present(args, name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            other => Err(bad(name, format!("expected true or false, got `{other}`"))),
        },
        Some(_) => Err(bad(name, "expected true or false")),
    }
}

pub(crate) fn integer(
    args: &Map<String, Value>,
    name: &str,
    default: i64,
) -> Result<i64, StepError> {
    match present(args, name) {
        None => Ok(default),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad(name, format!("expected a whole number, got {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| bad(name, format!("expected a whole number, got `{s}`"))),
        Some(_) => Err(bad(name, "expected a whole number")),
    }
}

/// A duration: `500ms`, `30s`, `5m`, `2h`, `7d`, `1w`, combinations such as `1h30m`, or a bare
/// number of seconds. The one parser is the playbook's; this adapts its error to text.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    crate::playbook::model::parse_duration(text).map_err(|e| e.to_string())
}

pub(crate) fn duration(
    args: &Map<String, Value>,
    name: &str,
    default: Duration,
) -> Result<Duration, StepError> {
    match present(args, name) {
        None => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| bad(name, format!("expected a duration, got {n}"))),
        Some(Value::String(s)) => parse_duration(s).map_err(|m| bad(name, m)),
        Some(_) => Err(bad(name, "expected a duration such as 30s, 5m, 7d")),
    }
}

pub(crate) fn time(
    args: &Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, StepError> {
    match string(args, name)? {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                bad(
                    name,
                    format!("`{s}` is not an RFC 3339 time such as 2026-11-20T00:00:00Z ({e})"),
                )
            }),
    }
}

/// A list of strings: a JSON array, or a comma-separated string.
pub(crate) fn string_list(
    args: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, StepError> {
    match present(args, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(bad(name, "expected a list of strings")),
            })
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )),
        Some(_) => Err(bad(name, "expected a list of strings")),
    }
}

/// Converts a std duration to a chrono one (saturating).
pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("7x").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn typed_and_text_values() {
        let mut m = Map::new();
        m.insert("a".into(), Value::String("true".into()));
        m.insert("b".into(), Value::String("60".into()));
        m.insert("c".into(), serde_json::json!(["x", " y "]));
        m.insert("d".into(), Value::String("BTC-USDT, ETH-USDT".into()));
        assert!(boolean(&m, "a", false).unwrap());
        assert_eq!(integer(&m, "b", 0).unwrap(), 60);
        assert_eq!(string_list(&m, "c").unwrap().unwrap(), vec!["x", "y"]);
        assert_eq!(
            string_list(&m, "d").unwrap().unwrap(),
            vec!["BTC-USDT", "ETH-USDT"]
        );
        assert!(integer(&m, "a", 0).is_err());
        assert_eq!(integer(&m, "missing", 7).unwrap(), 7);
    }
}
