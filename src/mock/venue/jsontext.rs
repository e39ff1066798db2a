//! JSON text written by hand for the façades' list pages (the history endpoints an export
//! reads page after page): the same bytes serde_json writes for the same object, without
//! building a `serde_json::Value` or going through a formatter.
//!
//! [`Obj`] writes an object member by member with keys given as [`key!`] strings; numbers are
//! written from their digits ([`push_digits`], [`push_dec`], [`push_dec_fixed`]). Each
//! façade's test compares its writer with the `Value` it replaced.

use std::fmt::Write as _;

use rust_decimal::Decimal;

pub use crate::digits::{push_ascii, push_digits};
use crate::digits::{push_scaled, scaled};
pub use crate::time::date_time_micros;

/// `,"name":`: a member's key as one static string ([`Obj`] drops the comma for the first).
macro_rules! key {
    ($k:literal) => {
        concat!(",\"", $k, "\":")
    };
}
pub(crate) use key;

/// Appends a signed integer as serde_json writes it.
pub fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_digits(out, n.unsigned_abs(), 1);
}

/// Appends a JSON string (escaped like serde_json when it needs escaping).
pub fn push_json_str(out: &mut String, v: &str) {
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(v);
        out.push('"');
    } else {
        // Escaping a string cannot fail.
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
}

/// What [`crate::mock::venue::dec`] writes (normalized, no exponent, `0` for any zero),
/// without the formatter: the mantissa's digits with the point put in by hand, assembled on
/// the stack and appended in one copy.
pub fn push_dec(out: &mut String, d: Decimal) {
    let mut buf = [b'0'; 64];
    match dec_digits(&mut buf, d) {
        Some(i) => push_ascii(out, &buf[i..]),
        None => {
            let _ = write!(out, "{}", d.normalize());
        }
    }
}

/// Writes the text [`push_dec`] appends for `d` at the end of `buf`; where it starts. None for a mantissa
/// wider than 64 bits (the formatter writes those).
fn dec_digits(buf: &mut [u8; 64], d: Decimal) -> Option<usize> {
    let mut scale = d.scale() as usize;
    let mut m = u64::try_from(d.mantissa().unsigned_abs()).ok()?;
    if m == 0 {
        buf[63] = b'0';
        return Some(63);
    }
    while scale > 0 && m % 10 == 0 {
        m /= 10;
        scale -= 1;
    }
    Some(scaled(buf, m, scale, d.is_sign_negative()))
}

/// What `Decimal::to_string` writes for `d` rounded (half to even) and rescaled to `scale`
/// decimals (Binance's `d8`: `0.10000000`).
pub fn push_dec_fixed(out: &mut String, d: Decimal, scale: u32) {
    let d = if d.scale() > scale {
        d.round_dp(scale)
    } else {
        d
    };
    let up = scale - d.scale().min(scale);
    // A zero too (`0.00000000`, the most common amount of a list: no price, nothing
    // filled), unless its sign is negative.
    let m = u64::try_from(d.mantissa())
        .ok()
        .filter(|_| !d.is_sign_negative())
        .and_then(|m| 10u64.checked_pow(up).and_then(|p| m.checked_mul(p)));
    match m {
        Some(m) => push_scaled(out, m, scale as usize, false),
        None => {
            // A negative zero, negative or wide mantissas: the formatter.
            let mut d = d;
            d.rescale(scale);
            let _ = write!(out, "{d}");
        }
    }
}

/// Appends `t` as RFC 3339 in UTC with microseconds (`2026-11-20T18:30:00.123456Z`, what
/// chrono's `to_rfc3339_opts(SecondsFormat::Micros, true)` writes), as a JSON string.
pub fn push_utc_micros(out: &mut String, t: chrono::DateTime<chrono::Utc>) {
    out.push('"');
    match date_time_micros(t.timestamp(), t.timestamp_subsec_nanos()) {
        Some(b) => {
            push_ascii(out, &b);
            out.push('Z');
        }
        None => out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    }
    out.push('"');
}

/// A JSON object written member by member, as serde_json writes it compactly. Keys are
/// [`key!`] strings.
pub struct Obj<'a> {
    pub out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }
    /// Writes a key; its value follows.
    pub fn key(&mut self, k: &'static str) {
        self.out.push_str(if self.first { &k[1..] } else { k });
        self.first = false;
    }
    /// A string value.
    pub fn str(&mut self, k: &'static str, v: &str) {
        self.key(k);
        push_json_str(self.out, v);
    }
    /// A string value known to need no escaping (a name of the façade's own).
    pub fn plain(&mut self, k: &'static str, v: &str) {
        self.key(k);
        self.out.push('"');
        self.out.push_str(v);
        self.out.push('"');
    }
    /// A decimal as a string, normalized ([`push_dec`]).
    pub fn dec(&mut self, k: &'static str, d: Decimal) {
        self.key(k);
        self.out.push('"');
        push_dec(self.out, d);
        self.out.push('"');
    }
    /// A decimal as a string with `scale` decimals ([`push_dec_fixed`]).
    pub fn dec_fixed(&mut self, k: &'static str, d: Decimal, scale: u32) {
        self.key(k);
        self.out.push('"');
        push_dec_fixed(self.out, d, scale);
        self.out.push('"');
    }
    /// An integer.
    pub fn int(&mut self, k: &'static str, n: i64) {
        self.key(k);
        push_int(self.out, n);
    }
    /// An integer as a string (`"17"`: ids and epoch milliseconds some exchanges quote).
    pub fn int_str(&mut self, k: &'static str, n: i64) {
        self.key(k);
        self.out.push('"');
        push_int(self.out, n);
        self.out.push('"');
    }
    /// A boolean.
    pub fn bool(&mut self, k: &'static str, b: bool) {
        self.key(k);
        self.out.push_str(if b { "true" } else { "false" });
    }
    /// Members written as they are: constant text starting with a comma (`concat!` of
    /// [`key!`]s and their values), after the object's first member.
    pub fn lit(&mut self, members: &'static str) {
        debug_assert!(!self.first && members.starts_with(','));
        self.out.push_str(members);
    }
    /// JSON text written as it is.
    pub fn raw(&mut self, k: &'static str, json: &str) {
        self.key(k);
        self.out.push_str(json);
    }
    pub fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn decimals() -> Vec<Decimal> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        let mut cases: Vec<Decimal> = [
            "0",
            "-0.000",
            "1E-8",
            "-0.5",
            "100",
            "1.10",
            "12.5000",
            "0.000000005",
            "0.000000015",
            "0.000000025",
            "-0.000000005",
            "123456789012.123456789",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        cases.push(Decimal::MAX);
        cases.push(Decimal::MIN);
        cases.push(Decimal::from_i128_with_scale(i128::from(u64::MAX) + 7, 9));
        cases.push(Decimal::from_i128_with_scale(i128::from(u64::MAX), 2));
        for _ in 0..20_000 {
            let m: i64 = match rng.gen_range(0..3) {
                0 => rng.gen_range(-1000..1000),
                1 => rng.gen_range(-10_000_000_000..10_000_000_000),
                _ => rng.gen(),
            };
            cases.push(Decimal::new(m, rng.gen_range(0..=28)));
        }
        cases
    }

    #[test]
    fn decimals_are_written_as_the_formatter_writes_them() {
        for d in decimals() {
            let mut s = String::new();
            push_dec(&mut s, d);
            assert_eq!(s, crate::mock::venue::dec(d), "{d:?}");
            for scale in [0, 2, 8] {
                let mut s = String::new();
                push_dec_fixed(&mut s, d, scale);
                let mut r = d.round_dp(scale);
                r.rescale(scale);
                assert_eq!(s, r.to_string(), "{d:?} at {scale}");
            }
        }
    }

    #[test]
    fn integers_are_written_as_the_formatter_writes_them() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        let mut cases = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, u64::MAX, u64::MAX - 1];
        cases.extend((0..20_000).map(|n| match n % 3 {
            0 => rng.gen_range(0..1000),
            1 => rng.gen_range(0..10_000_000_000),
            _ => rng.gen(),
        }));
        for n in cases {
            for width in [0, 1, 2, 3, 7, 19, 20, 25] {
                let mut s = String::new();
                push_digits(&mut s, n, width);
                let want = format!("{n:0w$}", w = width.min(20));
                assert_eq!(s, want, "{n} at width {width}");
            }
        }
    }

    #[test]
    fn utc_times_are_written_as_chrono_writes_them() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
        let t0: chrono::DateTime<chrono::Utc> = "0001-01-01T00:00:00Z".parse().unwrap();
        for n in 0..20_000 {
            let t = if n % 2 == 0 {
                t0 + chrono::Duration::microseconds(rng.gen_range(0..300_000_000_000_000_000))
            } else {
                t0 + chrono::Duration::nanoseconds(rng.gen_range(0..i64::MAX))
            };
            let mut s = String::new();
            push_utc_micros(&mut s, t);
            let want = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            assert_eq!(s, format!("\"{want}\""), "{t:?}");
        }
    }

    #[test]
    fn objects_are_the_bytes_serde_json_writes() {
        let hostile = "=HYPERLINK(\"x\")\\<script>\u{1b}[2J\u{7f}\t한글";
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str(key!("a"), hostile);
        o.plain(key!("b"), "BUY");
        o.dec(key!("c"), "1.500".parse().unwrap());
        o.dec_fixed(key!("d"), "0.1".parse().unwrap(), 8);
        o.int(key!("e"), -1);
        o.int(key!("f"), i64::MAX);
        o.bool(key!("g"), true);
        o.bool(key!("h"), false);
        o.raw(key!("i"), "[1,{}]");
        o.lit(concat!(key!("j"), "\"\"", key!("k"), "false"));
        o.end();
        let v = serde_json::json!({"a": hostile, "b": "BUY", "c": "1.5", "d": "0.10000000",
            "e": -1, "f": i64::MAX, "g": true, "h": false, "i": [1, {}], "j": "", "k": false});
        assert_eq!(s, v.to_string());
    }
}
