//! Decimals as exchanges send them: as JSON strings (most private APIs) or JSON numbers
//! (market data), sometimes in scientific notation. Adapters' wire types read them through
//! [`Dec`] (or [`ODec`], where an empty string or `null` means none), so an amount never passes
//! through a float.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A decimal sent as a string (or a number); `""` and `null` are none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ODec(pub Option<Decimal>);

impl<'de> Deserialize<'de> for ODec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(serde_json::Value::deserialize(d)?, true)
            .map(ODec)
            .map_err(serde::de::Error::custom)
    }
}

/// The decimal in a JSON string or number; with `empty_is_none`, `""` and `null` are none
/// (without, they are refused).
fn read(v: serde_json::Value, empty_is_none: bool) -> Result<Option<Decimal>, String> {
    let s = match v {
        serde_json::Value::Null if empty_is_none => return Ok(None),
        serde_json::Value::String(s) if empty_is_none && s.trim().is_empty() => return Ok(None),
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("expected a decimal, found {other}")),
    };
    parse_decimal(&s)
        .map(Some)
        .ok_or_else(|| format!("not a decimal: {s:?}"))
}

/// A string or a number, as text (ids and times come both ways); `null` is empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }))
    }
}

/// A decimal sent as a string or as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dec(pub Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match read(serde_json::Value::deserialize(d)?, false) {
            Ok(Some(v)) => Ok(Dec(v)),
            Ok(None) => Err(serde::de::Error::custom("expected a decimal")),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

/// A decimal in plain or scientific notation.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

/// The value of an optional [`Dec`].
pub fn dec(v: Option<Dec>) -> Option<Decimal> {
    v.map(|d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_numbers_and_exponents() {
        let v: Vec<Dec> = serde_json::from_str(r#"["0.10000000", 12.5, "1e-8", 3]"#).unwrap();
        let d: Vec<String> = v.iter().map(|d| d.0.normalize().to_string()).collect();
        assert_eq!(d, ["0.1", "12.5", "0.00000001", "3"]);
        assert!(serde_json::from_str::<Dec>("true").is_err());
        assert!(serde_json::from_str::<Dec>(r#""abc""#).is_err());
    }
}
