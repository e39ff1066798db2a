//! The on-disk form of the export's large lists (orders, chunks, transfers, candles, fills):
//! one compact record per line, `[\n` + records joined by `,\n` + `\n]\n`.
//!
//! These lists grow with the account's history (a million orders is ~1.4 GB pretty-printed),
//! and every byte is hashed, copied by `analyze --out` and read by `evidence verify`. A record
//! per line is still valid JSON, still greps and diffs line by line, and is less than half the
//! bytes of the indented form. An object holding such a list (a fills batch, the completeness
//! proof, the window fills) gets one member per line and its lists one element per line.
//! Small artifacts (snapshots, state, reports) stay indented.
//!
//! Readers parse JSON, so a bundle written by an earlier version (indented lists) reads the
//! same: nothing here is needed to read either form.

use std::io::Write;

use serde::Serialize;
use serde_json::ser::Formatter;

use super::serialize_error;
use crate::steps::StepError;

/// One open container while writing.
struct Level {
    /// Its elements (or members) each go on a line of their own.
    lined: bool,
    /// It has at least one element so far.
    any: bool,
    object: bool,
}

/// A `serde_json` formatter that puts each element of the top-level container on its own
/// line, and each element of a list that is a member of a top-level object; everything deeper
/// is compact (no spaces, no indentation).
#[derive(Default)]
struct LinesFormatter {
    open: Vec<Level>,
}

impl LinesFormatter {
    fn begin(&mut self, object: bool) {
        let lined = match self.open.as_slice() {
            [] => true,
            [top] => top.object && !object,
            _ => false,
        };
        self.open.push(Level {
            lined,
            any: false,
            object,
        });
    }

    fn element<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        let top = self.open.last_mut().expect("inside a container");
        top.any = true;
        match (top.lined, first) {
            (true, true) => w.write_all(b"\n"),
            (true, false) => w.write_all(b",\n"),
            (false, true) => Ok(()),
            (false, false) => w.write_all(b","),
        }
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> std::io::Result<()> {
        let level = self.open.pop().expect("inside a container");
        if level.lined && level.any {
            w.write_all(b"\n")?;
        }
        w.write_all(close)
    }
}

impl Formatter for LinesFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.begin(false);
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.end(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.element(w, first)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.begin(true);
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.end(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.element(w, first)
    }
}

/// `v` as one record per line (see the module doc), ending with a newline.
pub(crate) fn to_records_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, StepError> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, LinesFormatter::default());
    v.serialize(&mut ser).map_err(serialize_error)?;
    out.push(b'\n');
    Ok(out)
}

/// Streams a list in the same form, record by record, to any sink of byte pieces: the
/// opening bracket first, then [`RecordList::push`] for each record, then
/// [`RecordList::close`].
pub(crate) struct RecordList {
    any: bool,
}

impl RecordList {
    /// The bytes that open the list.
    pub const OPEN: &'static [u8] = b"[";

    pub fn new() -> Self {
        RecordList { any: false }
    }

    /// The bytes of the next record, its separator first.
    pub fn push<T: Serialize>(&mut self, record: &T) -> Result<Vec<u8>, StepError> {
        let mut out = if self.any {
            b",\n".to_vec()
        } else {
            b"\n".to_vec()
        };
        self.any = true;
        serde_json::to_writer(&mut out, record).map_err(serialize_error)?;
        Ok(out)
    }

    /// The bytes that close the list.
    pub fn close(&self) -> &'static [u8] {
        if self.any {
            b"\n]\n"
        } else {
            b"]\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn a_list_is_one_compact_record_per_line() {
        let v = json!([{"id": "a", "n": [1, 2], "m": {"x": "y"}}, {"id": "b"}]);
        let text = String::from_utf8(to_records_json(&v).unwrap()).unwrap();
        assert_eq!(
            text,
            "[\n{\"id\":\"a\",\"n\":[1,2],\"m\":{\"x\":\"y\"}},\n{\"id\":\"b\"}\n]\n"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        assert_eq!(to_records_json(&json!([])).unwrap(), b"[]\n");
    }

    #[test]
    fn an_object_has_a_member_per_line_and_its_lists_a_record_per_line() {
        let v = json!({"cap": 3, "chunks": [{"a": [1]}, {"b": {"c": []}}], "empty": [], "o": {"k": [1, 2]}});
        let text = String::from_utf8(to_records_json(&v).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\n\"cap\":3,\n\"chunks\":[\n{\"a\":[1]},\n{\"b\":{\"c\":[]}}\n],\n\"empty\":[],\n\"o\":{\"k\":[1,2]}\n}\n"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn a_streamed_list_is_the_same_bytes() {
        for v in [json!([]), json!([{"a": 1}]), json!([{"a": 1}, [2, 3], "x"])] {
            let mut list = RecordList::new();
            let mut out = RecordList::OPEN.to_vec();
            for r in v.as_array().unwrap() {
                out.extend(list.push(r).unwrap());
            }
            out.extend_from_slice(list.close());
            assert_eq!(out, to_records_json(&v).unwrap(), "{v}");
        }
    }
}
