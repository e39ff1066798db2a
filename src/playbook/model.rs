//! The playbook model: what a validated playbook is.
//!
//! These types are built by [`crate::playbook::validate`] from positioned YAML (so every
//! problem can be reported at once with its line:column), not deserialized directly; they
//! serialize for `--json` output and for the journal. Templated fields (`with`, `if`) stay
//! raw JSON values here: they are resolved at run time by [`crate::playbook::template`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A validated playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// In declaration order.
    #[serde(default)]
    pub inputs: Vec<InputDecl>,
    #[serde(default)]
    pub defaults: Defaults,
    pub steps: Vec<Step>,
}

impl Playbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    pub fn input(&self, name: &str) -> Option<&InputDecl> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

/// The type of a playbook input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Integer,
    Number,
    Boolean,
    Duration,
    /// An RFC 3339 instant (`2026-11-20T00:00:00Z`).
    Time,
    List,
}

impl InputType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => InputType::String,
            "integer" => InputType::Integer,
            "number" => InputType::Number,
            "boolean" => InputType::Boolean,
            "duration" => InputType::Duration,
            "time" => InputType::Time,
            "list" => InputType::List,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Integer => "integer",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Duration => "duration",
            InputType::Time => "time",
            InputType::List => "list",
        }
    }

    /// Every type name, for hints.
    pub const NAMES: &'static [&'static str] = &[
        "string", "integer", "number", "boolean", "duration", "time", "list",
    ];

    /// The step-argument type with the same values.
    pub fn as_arg_type(self) -> crate::steps::ArgType {
        use crate::steps::ArgType;
        match self {
            InputType::String => ArgType::String,
            InputType::Integer => ArgType::Integer,
            InputType::Number => ArgType::Number,
            InputType::Boolean => ArgType::Boolean,
            InputType::Duration => ArgType::Duration,
            // A time reaches steps as its RFC 3339 text.
            InputType::Time => ArgType::String,
            InputType::List => ArgType::List,
        }
    }

    /// Whether a YAML value has this type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            InputType::Time => v.as_str().is_some_and(|s| parse_time(s).is_ok()),
            other => crate::playbook::validate::arg_type_accepts(other.as_arg_type(), v),
        }
    }

    /// Converts a value given on the command line (`--input k=v`) to this type.
    pub fn from_cli(self, s: &str) -> Result<Value, String> {
        match self {
            InputType::String => Ok(Value::String(s.to_string())),
            InputType::Integer => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("`{s}` is not an integer")),
            InputType::Number => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{s}` is not a number")),
            InputType::Boolean => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
                "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
                _ => Err(format!("`{s}` is not a boolean (true/false)")),
            },
            InputType::Duration => parse_duration(s)
                .map(|_| Value::String(s.trim().to_string()))
                .map_err(|e| e.to_string()),
            // Empty means "not given" (`--input from=`), like an input without a default.
            InputType::Time if s.trim().is_empty() => Ok(Value::Null),
            InputType::Time => parse_time(s).map(|_| Value::String(s.trim().to_string())),
            InputType::List => {
                let t = s.trim();
                if t.starts_with('[') {
                    match serde_json::from_str::<Value>(t) {
                        Ok(v @ Value::Array(_)) => Ok(v),
                        _ => Err(format!("`{s}` is not a JSON list")),
                    }
                } else if t.is_empty() {
                    Ok(Value::Array(vec![]))
                } else {
                    Ok(Value::Array(
                        t.split(',')
                            .map(|x| Value::String(x.trim().to_string()))
                            .collect(),
                    ))
                }
            }
        }
    }
}

/// One declared input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: InputType,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: Option<String>,
    /// Never written to the journal or printed; must be re-supplied on resume.
    #[serde(default)]
    pub secret: bool,
    /// The smallest value allowed (integer, number, duration and time inputs; a time bound
    /// may be `now` or `now-7d`). Checked by `playbook check` and before a run's first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    /// The largest value allowed (as `min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    /// Time inputs only: when both are given, this one must be earlier than the named input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// Playbook-wide defaults for steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retry: Option<Retry>,
}

/// How often to try a retryable step, and the first backoff (doubled each attempt, jittered).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    pub attempts: u32,
    #[serde(with = "duration")]
    pub backoff: Duration,
}

/// What a failed step does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// No new steps start; running ones finish; the rest are `not_run`.
    #[default]
    Abort,
    /// The failure is recorded and the run goes on; steps that `needs` it still run after it.
    Continue,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub uses: String,
    #[serde(default)]
    pub with: Map<String, Value>,
    /// A template rendering to a truthy string, or a bool.
    #[serde(default, rename = "if")]
    pub condition: Option<Value>,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retry: Option<Retry>,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub description: Option<String>,
}

/// A duration that could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{0}` is not a duration (use a number and a unit: 500ms, 30s, 5m, 2h, 7d, 1w)")]
pub struct BadDuration(pub String);

/// Parses `500ms`, `30s`, `5m`, `2h`, `7d`, `1w` (and sums like `1h30m`). A bare number is
/// refused: in a playbook a unit must be explicit.
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(s.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            "d" => Duration::from_secs(n.checked_mul(86400).ok_or_else(bad)?),
            "w" => Duration::from_secs(n.checked_mul(604_800).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(d).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Parses an RFC 3339 time (`2026-11-20T00:00:00Z`, any offset) to UTC.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-20T00:00:00Z ({e})"))
}

/// Renders a duration the way playbooks write it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs())
    }
}

mod duration {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn cli_inputs_are_typed() {
        assert_eq!(InputType::Integer.from_cli("42").unwrap(), Value::from(42));
        assert!(InputType::Integer.from_cli("4x").is_err());
        assert_eq!(
            InputType::List.from_cli("a, b").unwrap(),
            serde_json::json!(["a", "b"])
        );
        assert_eq!(
            InputType::Boolean.from_cli("no").unwrap(),
            Value::Bool(false)
        );
    }
}
