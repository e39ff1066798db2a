//! Input values: typing what the user gave, filling defaults, and the declared constraints
//! (`min`, `max`, `before`).
//!
//! Constraints live in the playbook, next to the input they constrain, so "rotate the key in
//! 30 to 90 days" or "investigate at most a year back" is one line of YAML that both
//! `respond playbook check` (the declaration: bounds of the input's type, `min` ≤ `max`, a
//! default inside them, `before` naming another time input) and the start of every run (the
//! values) enforce. A value that could only fail once a step runs (a zero-length window, a
//! window start after its end) is refused before the first request instead.
//!
//! Bounds are written in the input's own type: numbers for `integer` and `number`, durations
//! (`1m`, `366d`) for `duration`, and for `time` an RFC 3339 instant, `now`, or `now` plus or
//! minus a duration (`now-366d`), resolved when the run starts.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::model::{parse_duration, parse_time, InputDecl, InputType, Playbook};
use super::validate::nearest;
use crate::secret::Secret;

/// An input value the playbook does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input `{name}`: {message}")]
pub struct InputError {
    pub name: String,
    pub message: String,
    pub hint: Option<String>,
}

impl InputError {
    fn new(name: &str, message: impl Into<String>, hint: Option<String>) -> Self {
        InputError {
            name: name.to_string(),
            message: message.into(),
            hint,
        }
    }
}

/// Which inputs take `min`/`max`.
pub fn bounded(ty: InputType) -> bool {
    matches!(
        ty,
        InputType::Integer | InputType::Number | InputType::Duration | InputType::Time
    )
}

/// A value reduced to something ordered.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Scalar {
    Num(f64),
    Dur(Duration),
    Time(DateTime<Utc>),
}

/// A time bound as written: an instant, or an offset from the run's start.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeBound {
    At(DateTime<Utc>),
    Now(chrono::Duration),
}

fn time_bound(s: &str) -> Result<TimeBound, String> {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("now") else {
        return parse_time(t).map(TimeBound::At);
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(TimeBound::Now(chrono::Duration::zero()));
    }
    let (sign, d) = match (rest.strip_prefix('-'), rest.strip_prefix('+')) {
        (Some(d), _) => (-1, d),
        (_, Some(d)) => (1, d),
        _ => return Err(format!("`{s}`: write `now`, `now-7d` or `now+1h`")),
    };
    let d = parse_duration(d.trim()).map_err(|e| format!("`{s}`: {e}"))?;
    let d = chrono::Duration::from_std(d).map_err(|_| format!("`{s}`: too far from now"))?;
    Ok(TimeBound::Now(d * sign))
}

/// The ordered form of a value (or a bound) of type `ty`; `now` resolves relative times.
fn scalar(ty: InputType, v: &Value, now: DateTime<Utc>) -> Result<Scalar, String> {
    let text = || {
        v.as_str()
            .ok_or_else(|| format!("expected a {}", ty.name()))
    };
    match ty {
        InputType::Integer | InputType::Number => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Scalar::Num)
            .ok_or_else(|| format!("expected a {}", ty.name())),
        InputType::Duration => parse_duration(text()?)
            .map(Scalar::Dur)
            .map_err(|e| e.to_string()),
        InputType::Time => match time_bound(text()?)? {
            TimeBound::At(t) => Ok(Scalar::Time(t)),
            TimeBound::Now(off) => now
                .checked_add_signed(off)
                .map(Scalar::Time)
                .ok_or_else(|| "out of range".to_string()),
        },
        _ => Err(format!("a {} input takes no bounds", ty.name())),
    }
}

/// Checks one bound of a declaration: is it of the input's type? (For `playbook check`.)
pub fn check_bound(ty: InputType, bound: &Value) -> Result<(), String> {
    if !bounded(ty) {
        return Err(format!(
            "only integer, number, duration and time inputs take bounds, not a {} input",
            ty.name()
        ));
    }
    if ty == InputType::Integer && !(bound.is_i64() || bound.is_u64()) {
        return Err(format!("must be an integer, not `{}`", text_of(bound)));
    }
    if ty == InputType::Number && !bound.is_number() {
        return Err(format!("must be a number, not `{}`", text_of(bound)));
    }
    scalar(ty, bound, crate::time::now()).map(|_| ())
}

/// `min` ≤ `max`, when both are valid bounds; the problem otherwise.
pub fn check_range(ty: InputType, min: &Value, max: &Value) -> Result<(), String> {
    let now = crate::time::now();
    match (scalar(ty, min, now), scalar(ty, max, now)) {
        (Ok(a), Ok(b)) if a.partial_cmp(&b) == Some(Ordering::Greater) => Err(format!(
            "`min` ({}) is above `max` ({})",
            text_of(min),
            text_of(max)
        )),
        _ => Ok(()),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The allowed range in words, for messages.
fn allowed(d: &InputDecl) -> String {
    match (&d.min, &d.max) {
        (Some(a), Some(b)) => format!("allowed: {} to {}", text_of(a), text_of(b)),
        (Some(a), None) => format!("allowed: at least {}", text_of(a)),
        (None, Some(b)) => format!("allowed: at most {}", text_of(b)),
        (None, None) => String::new(),
    }
}

/// Checks a typed value against the declaration's `min` and `max`. The message never shows the
/// value of a secret input.
pub fn check_value(d: &InputDecl, v: &Value, now: DateTime<Utc>) -> Result<(), String> {
    if v.is_null() || (d.min.is_none() && d.max.is_none()) {
        return Ok(());
    }
    let shown = if d.secret {
        "the value".to_string()
    } else {
        format!("`{}`", text_of(v))
    };
    let x = scalar(d.ty, v, now)?;
    let (below, above) = match d.ty {
        InputType::Duration => ("shorter than", "longer than"),
        InputType::Time => ("earlier than", "later than"),
        _ => ("below", "above"),
    };
    for (bound, want, word, label) in [
        (&d.min, Ordering::Less, below, "minimum"),
        (&d.max, Ordering::Greater, above, "maximum"),
    ] {
        let Some(b) = bound else { continue };
        let limit = scalar(d.ty, b, now)?;
        if x.partial_cmp(&limit) == Some(want) {
            let resolved = match limit {
                Scalar::Time(t) if text_of(b).trim().starts_with("now") => {
                    format!(" ({})", crate::engine::journal::ts(t))
                }
                _ => String::new(),
            };
            return Err(format!(
                "{shown} is {word} the {label} {}{resolved} ({})",
                text_of(b),
                allowed(d)
            ));
        }
    }
    Ok(())
}

/// Types the user's inputs by their declarations, fills defaults, refuses unknown or missing
/// ones and values outside the declared constraints. `known` holds values already typed and
/// checked when the run started (a resume): they are used before defaults and not checked
/// again (a bound relative to `now` has moved since).
pub fn resolve(
    pb: &Playbook,
    given: &BTreeMap<String, String>,
    known: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, InputError> {
    for name in given.keys() {
        if pb.input(name).is_none() {
            let near = nearest(name, pb.inputs.iter().map(|i| i.name.as_str()));
            let names: Vec<&str> = pb.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(InputError::new(
                name,
                match &near {
                    Some(h) => format!("the playbook has no such input (did you mean `{h}`?)"),
                    None => "the playbook has no such input".into(),
                },
                Some(if names.is_empty() {
                    format!("playbook `{}` declares no inputs", pb.name)
                } else {
                    format!("its inputs: {}", names.join(", "))
                }),
            ));
        }
    }
    let mut out = Map::new();
    let mut fresh: Vec<&str> = Vec::new();
    for d in &pb.inputs {
        let name = d.name.as_str();
        let hint = || d.description.as_ref().map(|t| format!("`{name}`: {t}"));
        let (value, is_fresh) = if let Some(raw) = given.get(name) {
            if d.secret {
                let _ = Secret::new(raw.clone());
            }
            let v =
                d.ty.from_cli(raw)
                    .map_err(|m| InputError::new(name, m, hint()))?;
            (v, true)
        } else if let Some(v) = known.get(name) {
            (v.clone(), false)
        } else if let Some(v) = &d.default {
            (v.clone(), true)
        } else {
            (Value::Null, true)
        };
        if value.is_null() && d.required {
            return Err(InputError::new(
                name,
                if d.secret {
                    "is required (secret inputs are never stored, so a resumed run needs it again)"
                } else {
                    "is required"
                },
                Some(format!("pass it as `--input {name}=VALUE`")),
            ));
        }
        if is_fresh {
            fresh.push(name);
            check_value(d, &value, now).map_err(|m| InputError::new(name, m, hint()))?;
        }
        out.insert(name.to_string(), value);
    }
    for d in &pb.inputs {
        let Some(other) = &d.before else { continue };
        if !fresh.contains(&d.name.as_str()) && !fresh.contains(&other.as_str()) {
            continue;
        }
        let (Some(a), Some(b)) = (out.get(&d.name), out.get(other)) else {
            continue;
        };
        let (Some(ta), Some(tb)) = (
            a.as_str().and_then(|s| parse_time(s).ok()),
            b.as_str().and_then(|s| parse_time(s).ok()),
        ) else {
            continue;
        };
        if ta >= tb {
            return Err(InputError::new(
                &d.name,
                format!(
                    "`{}` ({}) must be earlier than `{other}` ({})",
                    d.name,
                    text_of(a),
                    text_of(b)
                ),
                Some(format!("swap the two, or correct `{}`", d.name)),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(name: &str, ty: InputType, min: Option<Value>, max: Option<Value>) -> InputDecl {
        InputDecl {
            name: name.into(),
            ty,
            default: None,
            required: false,
            description: None,
            secret: false,
            min,
            max,
            before: None,
        }
    }

    fn pb(inputs: Vec<InputDecl>) -> Playbook {
        Playbook {
            name: "t".into(),
            description: None,
            inputs,
            defaults: Default::default(),
            steps: vec![],
        }
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bounds_of_each_type() {
        let now = Utc::now();
        let days = decl(
            "rotate_days",
            InputType::Integer,
            Some(json!(30)),
            Some(json!(90)),
        );
        assert!(check_value(&days, &json!(60), now).is_ok());
        let e = check_value(&days, &json!(5), now).unwrap_err();
        assert!(e.contains("`5` is below the minimum 30"), "{e}");
        assert!(e.contains("allowed: 30 to 90"), "{e}");
        let since = decl(
            "since",
            InputType::Duration,
            Some(json!("1m")),
            Some(json!("366d")),
        );
        assert!(check_value(&since, &json!("7d"), now).is_ok());
        assert!(check_value(&since, &json!("0d"), now)
            .unwrap_err()
            .contains("shorter than the minimum 1m"));
        assert!(check_value(&since, &json!("100000d"), now)
            .unwrap_err()
            .contains("longer than the maximum 366d"));
        let from = decl(
            "from",
            InputType::Time,
            Some(json!("now-366d")),
            Some(json!("now")),
        );
        assert!(check_value(&from, &json!("2999-01-01T00:00:00Z"), now)
            .unwrap_err()
            .contains("later than the maximum now"));
        let recent = (now - chrono::Duration::days(2)).to_rfc3339();
        assert!(check_value(&from, &json!(recent), now).is_ok());
    }

    #[test]
    fn secret_values_are_not_shown() {
        let mut d = decl("pin", InputType::Integer, Some(json!(1000)), None);
        d.secret = true;
        let e = check_value(&d, &json!(123), Utc::now()).unwrap_err();
        assert!(!e.contains("123"), "{e}");
    }

    #[test]
    fn time_bounds_parse() {
        assert!(matches!(time_bound("now"), Ok(TimeBound::Now(d)) if d.is_zero()));
        assert!(
            matches!(time_bound("now-1d"), Ok(TimeBound::Now(d)) if d == chrono::Duration::days(-1))
        );
        assert!(time_bound("now*2").is_err());
        assert!(time_bound("tomorrow").is_err());
        assert!(check_bound(InputType::String, &json!(1)).is_err());
        assert!(check_bound(InputType::Integer, &json!(1.5)).is_err());
        assert!(check_range(InputType::Integer, &json!(90), &json!(30)).is_err());
    }

    #[test]
    fn resolve_checks_given_values_and_order() {
        let mut from = decl("from", InputType::Time, None, None);
        from.before = Some("to".into());
        let p = pb(vec![
            from,
            decl("to", InputType::Time, None, None),
            decl(
                "rotate_days",
                InputType::Integer,
                Some(json!(30)),
                Some(json!(90)),
            ),
        ]);
        let now = Utc::now();
        let e = resolve(&p, &given(&[("rotate_dayz", "40")]), &Map::new(), now).unwrap_err();
        assert!(e.message.contains("did you mean `rotate_days`"), "{e}");
        let e = resolve(&p, &given(&[("rotate_days", "5")]), &Map::new(), now).unwrap_err();
        assert_eq!(e.name, "rotate_days");
        let e = resolve(
            &p,
            &given(&[
                ("from", "2026-11-22T00:00:00Z"),
                ("to", "2026-11-20T00:00:00Z"),
            ]),
            &Map::new(),
            now,
        )
        .unwrap_err();
        assert!(e.message.contains("must be earlier than `to`"), "{e}");
        let ok = resolve(&p, &given(&[("from", "")]), &Map::new(), now).unwrap();
        assert_eq!(ok["from"], Value::Null);
        // Values recovered by a resume are not checked again.
        let known: Map<String, Value> = [("rotate_days".to_string(), json!(5))]
            .into_iter()
            .collect();
        assert!(resolve(&p, &BTreeMap::new(), &known, now).is_ok());
    }
}
