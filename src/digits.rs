//! Numbers as text, written by hand from their digits: integers zero-padded, and decimals as
//! `rust_decimal`'s `Display` writes them, without the formatting machinery (a mock's page of
//! orders and the reports' sheet of a million orders write millions of them). Owns the digit
//! tables and the one unsafe line that appends checked ASCII.

use rust_decimal::Decimal;

/// Appends ASCII bytes in one copy (a `push` per byte checks capacity each time). Bytes
/// that are not all ASCII append nothing (the writers pass digits, signs, points and date
/// separators only).
pub fn push_ascii(out: &mut String, ds: &[u8]) {
    // `is_ascii` is a few word compares inlined; `str::from_utf8` was an out-of-line call
    // per number, 5–8% of a cold page of 1,000.
    if ds.is_ascii() {
        #[allow(unsafe_code)]
        // SAFETY: every byte is ASCII (checked just above), and ASCII is valid UTF-8.
        out.push_str(unsafe { std::str::from_utf8_unchecked(ds) });
    }
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
pub fn push_digits(out: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let start = digits_back(&mut buf, 20, n, width.min(20));
    push_ascii(out, &buf[start..]);
}

/// Appends `d` as its `Display` writes it (`to_string()`): the mantissa's digits with the
/// point `scale` digits from the end, `0.` and zeros first when it has fewer, and `-` for a
/// negative sign, zero included. Mantissas past 64 bits go through the formatter.
pub fn push_decimal(out: &mut String, d: Decimal) {
    match u64::try_from(d.mantissa().unsigned_abs()) {
        Ok(m) => push_scaled(out, m, d.scale() as usize, d.is_sign_negative()),
        Err(_) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{d}");
        }
    }
}

/// Appends `m` with a point before its last `scale` digits, `0.` and zeros
/// first when it has fewer, `-` first when `negative`.
pub fn push_scaled(out: &mut String, m: u64, scale: usize, negative: bool) {
    let mut buf = [b'0'; 64];
    let i = scaled(&mut buf, m, scale, negative);
    push_ascii(out, &buf[i..]);
}

/// Writes what [`push_scaled`] appends at the end of `buf` (all `0` before); where it starts.
pub fn scaled(buf: &mut [u8; 64], m: u64, scale: usize, negative: bool) -> usize {
    // Right to left: the `scale` decimals (zero-padded), the point, the integer part (`0`
    // when the digits are all decimals), a sign. At most 20 digits, a scale of 28.
    let end = buf.len();
    let (int, frac) = match POW10.get(scale) {
        Some(&p) if m >= p => (m / p, m % p),
        // Below one (a volume of a fraction of a coin) or a scale past 10^19: every digit a
        // decimal, no division.
        _ => (0, m),
    };
    let mut i = end;
    if scale > 0 {
        i = digits_back(buf, end, frac, scale);
        i -= 1;
        buf[i] = b'.';
    }
    i = digits_back(buf, i, int, 1);
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    i
}

/// `10^n` for every `n` a `u64` holds (0 to 19): a scale's power without `checked_pow`'s
/// loop.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Two-digit pairs `00`..`99`, so that a number costs a division per two digits.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `n` in decimal ending before `buf[end]`, zero-padded to at least `width` digits
/// (`buf` holds `0` where the padding goes); where it starts.
fn digits_back(buf: &mut [u8], end: usize, mut n: u64, width: usize) -> usize {
    let mut i = end;
    while n >= 100 {
        let r = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if n >= 10 {
        let r = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    i.min(end.saturating_sub(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decimal is written as its `Display` writes it: zero and negative zero at every
    /// scale, digits fewer than the scale, and mantissas past 64 bits up to the largest.
    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let mut cases: Vec<Decimal> = Vec::new();
        for scale in 0..=28u32 {
            for m in [
                0i128,
                1,
                -1,
                5,
                150,
                -150,
                99_999,
                i64::MAX as i128,
                i64::MIN as i128,
            ] {
                cases.push(Decimal::from_i128_with_scale(m, scale));
            }
            for m in [
                u64::MAX as i128 + 1,
                -(u64::MAX as i128) - 7,
                (1i128 << 96) - 1,
            ] {
                cases.push(Decimal::from_i128_with_scale(m, scale));
            }
            let mut negative_zero = Decimal::new(0, scale);
            negative_zero.set_sign_negative(true);
            cases.push(negative_zero);
        }
        cases.extend([Decimal::MAX, Decimal::MIN, Decimal::ONE_HUNDRED]);
        for d in cases {
            let mut ours = String::new();
            push_decimal(&mut ours, d);
            assert_eq!(ours, d.to_string(), "{d:?}");
        }
    }
}
