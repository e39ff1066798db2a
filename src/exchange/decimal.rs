//! Decimals as exchanges send them: as JSON strings (most private APIs) or JSON numbers
//! (market data), sometimes in scientific notation. Adapters' wire types read them through
//! [`Dec`], so an amount never passes through a float.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A decimal sent as a string or as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dec(pub Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let s = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a decimal, found {other}"
                )))
            }
        };
        parse_decimal(&s)
            .map(Dec)
            .ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {s:?}")))
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
