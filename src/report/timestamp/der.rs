//! The little DER an RFC 3161 exchange needs: a reader of tag-length-value elements (definite
//! lengths only, single-byte tags, as DER requires) and writers for the few types of a
//! time-stamp request. Every read is bounds-checked and returns [`DerError`] naming what was
//! expected; nothing here allocates more than its input.

use std::fmt;

/// Universal and context tags used by the time-stamp structures.
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[n]` constructed, context-specific.
    pub const fn context(n: u8) -> u8 {
        0xa0 | n
    }
}

/// Malformed or unexpected DER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DerError(pub String);

fn err(what: impl Into<String>) -> DerError {
    DerError(what.into())
}

/// One element: its tag, its content, and its whole encoding (tag and length included).
#[derive(Clone, Copy)]
pub struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

impl fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Element(tag {:#04x}, {} bytes)",
            self.tag,
            self.content.len()
        )
    }
}

/// A cursor over consecutive elements.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag.
    pub fn any(&mut self) -> Result<Element<'a>, DerError> {
        let data = self.rest;
        let (&t, after) = data
            .split_first()
            .ok_or_else(|| err("unexpected end of data"))?;
        if t & 0x1f == 0x1f {
            return Err(err(format!("multi-byte tag {t:#04x} is not supported")));
        }
        let (&first, after) = after
            .split_first()
            .ok_or_else(|| err("unexpected end of data in a length"))?;
        let (len, after) = if first < 0x80 {
            (first as usize, after)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 {
                return Err(err("indefinite length (BER, not DER)"));
            }
            if n > 4 || after.len() < n {
                return Err(err("length too long"));
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &after[n..])
        };
        if after.len() < len {
            return Err(err(format!(
                "element of {len} bytes runs past the end of the data"
            )));
        }
        let header = data.len() - after.len();
        let element = Element {
            tag: t,
            content: &after[..len],
            raw: &data[..header + len],
        };
        self.rest = &after[len..];
        Ok(element)
    }

    /// The next element, which must have tag `t`; `what` names it in the error.
    pub fn expect(&mut self, t: u8, what: &str) -> Result<Element<'a>, DerError> {
        let e = self.any().map_err(|e| err(format!("{what}: {e}")))?;
        if e.tag != t {
            return Err(err(format!(
                "{what}: expected tag {t:#04x}, found {:#04x}",
                e.tag
            )));
        }
        Ok(e)
    }

    /// The next element when it has tag `t`; `None` (nothing consumed) otherwise.
    pub fn optional(&mut self, t: u8) -> Result<Option<Element<'a>>, DerError> {
        match self.rest.first() {
            Some(&x) if x == t => self.any().map(Some),
            _ => Ok(None),
        }
    }

    /// A SEQUENCE's content as a reader.
    pub fn sequence(&mut self, what: &str) -> Result<Reader<'a>, DerError> {
        Ok(Reader::new(self.expect(tag::SEQUENCE, what)?.content))
    }
}

/// The dotted form of an OBJECT IDENTIFIER's content.
pub fn oid_string(content: &[u8]) -> Result<String, DerError> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return Err(err("object identifier arc too large"));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return Err(err("object identifier ends inside an arc"));
        }
    }
    if arcs.is_empty() {
        return Err(err("empty object identifier"));
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// Reads an OBJECT IDENTIFIER as dotted text.
pub fn read_oid(r: &mut Reader<'_>, what: &str) -> Result<String, DerError> {
    oid_string(r.expect(tag::OID, what)?.content)
}

/// An AlgorithmIdentifier's OID (its parameters are read and ignored).
pub fn read_algorithm(r: &mut Reader<'_>, what: &str) -> Result<String, DerError> {
    let mut s = r.sequence(what)?;
    read_oid(&mut s, what)
}

/// A GeneralizedTime (`YYYYMMDDHHMMSS[.fff]Z`) as UTC.
pub fn generalized_time(content: &[u8]) -> Result<chrono::DateTime<chrono::Utc>, DerError> {
    let s = std::str::from_utf8(content).map_err(|_| err("time is not ASCII"))?;
    let body = s
        .strip_suffix('Z')
        .ok_or_else(|| err(format!("time {s:?} is not in UTC (no Z)")))?;
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, f),
        None => (body, ""),
    };
    let naive = chrono::NaiveDateTime::parse_from_str(main, "%Y%m%d%H%M%S")
        .map_err(|e| err(format!("time {s:?}: {e}")))?;
    let mut t = naive.and_utc();
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!("time {s:?}: bad fraction")));
        }
        let nanos: i64 = format!("{frac:0<9}")
            .parse()
            .map_err(|_| err(format!("time {s:?}: bad fraction")))?;
        t += chrono::Duration::nanoseconds(nanos);
    }
    Ok(t)
}

/// Lowercase hex of an INTEGER's content, without leading zero bytes.
pub fn integer_hex(content: &[u8]) -> String {
    let trimmed: &[u8] = match content.iter().position(|b| *b != 0) {
        Some(i) => &content[i..],
        None => &[0],
    };
    hex::encode(trimmed)
}

// ------------------------------------------------------------------------------------------
// Writing.

/// `tag`, the DER length of `content`, then `content`.
pub fn encode(t: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded elements.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    encode(tag::SEQUENCE, &parts.concat())
}

/// A non-negative INTEGER from big-endian bytes (a leading zero added when the top bit is set,
/// leading zeros dropped).
pub fn unsigned_integer(be: &[u8]) -> Vec<u8> {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let mut content: Vec<u8> = be[start..].to_vec();
    if content.is_empty() || content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    encode(tag::INTEGER, &content)
}

/// An OBJECT IDENTIFIER from its dotted form.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("a valid object identifier"))
        .collect();
    let mut content = Vec::new();
    let mut push = |mut v: u64| {
        let mut bytes = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            bytes.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        bytes.reverse();
        content.extend(bytes);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    encode(tag::OID, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_round_trip() {
        for o in [
            "2.16.840.1.101.3.4.2.1",
            "1.2.840.113549.1.9.16.1.4",
            "2.5.4.3",
        ] {
            let der = oid(o);
            let mut r = Reader::new(&der);
            assert_eq!(read_oid(&mut r, "oid").unwrap(), o);
            assert!(r.is_empty());
        }
        // SHA-256's identifier as every DER encoder writes it.
        assert_eq!(
            oid("2.16.840.1.101.3.4.2.1"),
            [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]
        );
    }

    #[test]
    fn long_lengths_and_integers() {
        let big = vec![7u8; 300];
        let e = encode(tag::OCTET_STRING, &big);
        assert_eq!(&e[..4], [0x04, 0x82, 0x01, 0x2c]);
        let mut r = Reader::new(&e);
        let el = r.any().unwrap();
        assert_eq!(el.content.len(), 300);
        assert_eq!(el.raw.len(), e.len());
        assert_eq!(unsigned_integer(&[0x80, 1]), [0x02, 0x03, 0x00, 0x80, 0x01]);
        assert_eq!(unsigned_integer(&[0, 0, 5]), [0x02, 0x01, 0x05]);
        assert_eq!(integer_hex(&[0x00, 0x80, 0x01]), "8001");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(Reader::new(bad).any().is_err(), "{bad:?}");
        }
        assert!(oid_string(&[0x86]).is_err());
    }

    #[test]
    fn generalized_times() {
        let t = generalized_time(b"20261225133500Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-25T13:35:00+00:00");
        let t = generalized_time(b"20261225133500.25Z").unwrap();
        assert_eq!(crate::time::ts(t), "2026-12-25T13:35:00.250Z");
        assert!(generalized_time(b"20261225133500+0900").is_err());
    }
}
