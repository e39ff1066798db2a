//! YAML parsing with positions: the only file in the crate that calls `serde_yaml`.
//!
//! `serde_yaml` (archived upstream) gives values without spans, so this file parses the
//! document twice: once with `serde_yaml` for the value (its errors carry their own
//! line:column), and once with a small line scanner over the block-style source that records
//! where each key and value starts, by path (`steps[2].with.url`). Validation looks problems
//! up by path and falls back to the nearest ancestor (flow-style `{…}` values are located at
//! their parent). Keeping both here means swapping the YAML library is a one-file change.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// One segment of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the document.
pub type Path = Vec<Seg>;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where a node's key (or `- ` item marker) and its value start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub key: Pos,
    pub value: Pos,
    /// The value is written in quotes (template columns shift by one).
    pub quoted: bool,
}

/// The positions of every block-style node of a document.
#[derive(Debug, Default)]
pub struct Positions {
    map: HashMap<Path, Span>,
    lines: Vec<String>,
    /// Keys written twice in the same mapping, at their second occurrence.
    duplicates: Vec<Pos>,
}

impl Positions {
    /// The span of `path`, or of its nearest recorded ancestor.
    pub fn span(&self, path: &[Seg]) -> Span {
        let mut p = path.to_vec();
        loop {
            if let Some(s) = self.map.get(&p) {
                return *s;
            }
            if p.pop().is_none() {
                return Span {
                    key: Pos { line: 1, column: 1 },
                    value: Pos { line: 1, column: 1 },
                    quoted: false,
                };
            }
        }
    }
    /// Where the key of `path` is written.
    pub fn key(&self, path: &[Seg]) -> Pos {
        self.span(path).key
    }
    /// Where the value of `path` starts.
    pub fn value(&self, path: &[Seg]) -> Pos {
        self.span(path).value
    }
    /// Where `word` appears in the flow-style value of `path` (`needs: [a, b]`), on the
    /// value's line, as a whole word; else the value's start.
    pub fn word_in_value(&self, path: &[Seg], word: &str) -> Pos {
        let v = self.value(path);
        let Some(line) = self.lines.get(v.line.wrapping_sub(1)) else {
            return v;
        };
        let from = v.column.saturating_sub(1).min(line.len());
        let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        let mut search = from;
        while let Some(i) = line
            .get(search..)
            .and_then(|t| t.find(word))
            .map(|i| i + search)
        {
            let before = line[..i].chars().next_back();
            let after = line[i + word.len()..].chars().next();
            if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
                return Pos {
                    line: v.line,
                    column: i + 1,
                };
            }
            search = i + word.len();
        }
        v
    }
    /// Whether `path` itself (not an ancestor) was located.
    pub fn has(&self, path: &[Seg]) -> bool {
        self.map.contains_key(path)
    }
}

/// Invalid YAML, at its own position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses a document into JSON-shaped data plus the positions of its nodes.
pub fn parse(source: &str) -> Result<(Value, Positions), YamlError> {
    let value: serde_yaml::Value = serde_yaml::from_str(source).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or(Pos { line: 1, column: 1 });
        let message = strip_location(&e.to_string());
        // serde_yaml gives no position for a duplicate key; the scanner finds the second one.
        let pos = if message.contains("duplicate entry with key") {
            scan(source).duplicates.first().copied().unwrap_or(pos)
        } else {
            pos
        };
        YamlError { pos, message }
    })?;
    let json = to_json(value);
    Ok((json, scan(source)))
}

/// Removes serde_yaml's first " at line L column C" (the position is reported separately),
/// keeping any context after it ("while parsing a flow sequence at line 4 column 11").
fn strip_location(message: &str) -> String {
    let Some(i) = message.find(" at line ") else {
        return message.to_string();
    };
    let rest = &message[i + " at line ".len()..];
    let mut words = rest.splitn(4, ' ');
    let (line, col_word, col) = (words.next(), words.next(), words.next());
    let numeric = |w: Option<&str>| {
        w.is_some_and(|w| {
            let w = w.trim_end_matches(',');
            !w.is_empty() && w.chars().all(|c| c.is_ascii_digit())
        })
    };
    if numeric(line) && col_word == Some("column") && numeric(col) {
        let col = col.map_or("", |c| c.trim_end_matches(','));
        let consumed = [line, col_word]
            .iter()
            .map(|w| w.map_or(0, str::len) + 1)
            .sum::<usize>()
            + col.len();
        let tail = &rest[consumed.min(rest.len())..];
        format!("{}{}", &message[..i], tail)
    } else {
        message.to_string()
    }
}

fn to_json(v: serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(s) => Value::Array(s.into_iter().map(to_json).collect()),
        serde_yaml::Value::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Null => "null".to_string(),
                    other => serde_yaml::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        serde_yaml::Value::Tagged(t) => to_json(t.value),
    }
}

struct Frame {
    /// Column (0-based) of the keys of a mapping or the dashes of a sequence.
    col: usize,
    path: Path,
    seq: bool,
    next: usize,
}

/// Records the start of every block-style key and sequence item.
fn scan(source: &str) -> Positions {
    let mut pos = Positions {
        lines: source.lines().map(str::to_string).collect(),
        ..Positions::default()
    };
    let mut stack: Vec<Frame> = Vec::new();
    // The last key whose value is on the following lines: (path, key column).
    let mut pending: Option<(Path, usize)> = None;
    // Inside a block scalar (`|`, `>`): lines indented deeper than this are text.
    let mut block_scalar: Option<usize> = None;
    for (lineno, raw) in source.lines().enumerate() {
        let line = lineno + 1;
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let trimmed = raw.trim();
        if let Some(min) = block_scalar {
            if trimmed.is_empty() || indent > min {
                continue;
            }
            block_scalar = None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" || trimmed == "..." {
            continue;
        }
        let mut c = indent;
        let mut rest = &raw[indent..];
        loop {
            if rest == "-" || rest.starts_with("- ") {
                while stack.last().is_some_and(|f| f.col > c) {
                    stack.pop();
                }
                let item_path = match stack.last_mut() {
                    Some(f) if f.seq && f.col == c => {
                        let mut p = f.path.clone();
                        p.push(Seg::Index(f.next));
                        f.next += 1;
                        p
                    }
                    _ => {
                        let parent = pending.take().map(|(p, _)| p).unwrap_or_default();
                        let mut p = parent.clone();
                        p.push(Seg::Index(0));
                        stack.push(Frame {
                            col: c,
                            path: parent,
                            seq: true,
                            next: 1,
                        });
                        p
                    }
                };
                pending = None;
                let after = &rest[1..];
                let skip = after.len() - after.trim_start_matches(' ').len();
                let vcol = c + 1 + skip;
                let item_rest = &after[skip..];
                pos.map
                    .insert(item_path.clone(), span_at(line, c, vcol, item_rest));
                if item_rest.is_empty() || item_rest.starts_with('#') {
                    pending = Some((item_path, c));
                    break;
                }
                if split_key(item_rest).is_some() {
                    stack.push(Frame {
                        col: vcol,
                        path: item_path,
                        seq: false,
                        next: 0,
                    });
                    c = vcol;
                    rest = item_rest;
                    continue;
                }
                if is_block_indicator(item_rest) {
                    block_scalar = Some(c);
                }
                break;
            }
            let Some((key, vstart)) = split_key(rest) else {
                break;
            };
            while stack
                .last()
                .is_some_and(|f| f.col > c || (f.col == c && f.seq))
            {
                stack.pop();
            }
            let parent = match stack.last() {
                Some(f) if !f.seq && f.col == c => f.path.clone(),
                _ => {
                    let parent = pending.take().map(|(p, _)| p).unwrap_or_default();
                    stack.push(Frame {
                        col: c,
                        path: parent.clone(),
                        seq: false,
                        next: 0,
                    });
                    parent
                }
            };
            pending = None;
            let mut path = parent;
            path.push(Seg::Key(key));
            let value = rest[vstart..].trim_start_matches(' ');
            let vcol = c + rest.len() - value.len();
            if pos
                .map
                .insert(path.clone(), span_at(line, c, vcol, value))
                .is_some()
            {
                pos.duplicates.push(Pos {
                    line,
                    column: c + 1,
                });
            }
            if value.is_empty() || value.starts_with('#') {
                pending = Some((path, c));
            } else if is_block_indicator(value) {
                block_scalar = Some(c);
                pos.map.entry(path).and_modify(|s| {
                    s.value = Pos {
                        line: line + 1,
                        column: s.value.column,
                    }
                });
            }
            break;
        }
    }
    pos
}

/// The span of a node whose key (or dash) is at 0-based column `key_col` and whose value
/// text `value` starts at 0-based column `value_col`.
fn span_at(line: usize, key_col: usize, value_col: usize, value: &str) -> Span {
    Span {
        key: Pos {
            line,
            column: key_col + 1,
        },
        value: Pos {
            line,
            column: value_col + 1,
        },
        quoted: value.starts_with('"') || value.starts_with('\''),
    }
}

fn is_block_indicator(v: &str) -> bool {
    let v = v.split(" #").next().unwrap_or("").trim();
    !v.is_empty()
        && (v.starts_with('|') || v.starts_with('>'))
        && v[1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

/// Splits `key: value` at the separating colon: the key (unquoted) and the byte offset of
/// what follows the colon. `None` when the text is not a block mapping entry.
fn split_key(text: &str) -> Option<(String, usize)> {
    let first = text.chars().next()?;
    if first == '{' || first == '[' || first == '#' || first == '&' || first == '*' {
        return None;
    }
    if first == '"' || first == '\'' {
        let close = text[1..].find(first)? + 1;
        let after = &text[close + 1..];
        let after_trim = after.trim_start_matches(' ');
        if after_trim.starts_with(':') {
            let colon = close + 1 + (after.len() - after_trim.len());
            let next = text[colon + 1..].chars().next();
            if next.is_none() || next == Some(' ') {
                return Some((text[1..close].to_string(), colon + 1));
            }
        }
        return None;
    }
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'#' && i > 0 && bytes[i - 1] == b' ' {
            return None;
        }
        if bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some((text[..i].trim_end().to_string(), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Seg {
        Seg::Key(s.into())
    }

    #[test]
    fn positions_of_nested_keys_and_items() {
        let src = "name: x\nsteps:\n  - id: a\n    uses: manual\n    with:\n      title: \"t\"\n  - id: b\n    needs: [a]\ninputs:\n  url:\n    type: string\n";
        let (_, p) = parse(src).unwrap();
        assert_eq!(p.key(&[k("name")]), Pos { line: 1, column: 1 });
        assert_eq!(
            p.key(&[k("steps"), Seg::Index(0), k("id")]),
            Pos { line: 3, column: 5 }
        );
        assert_eq!(
            p.value(&[k("steps"), Seg::Index(0), k("with"), k("title")]),
            Pos {
                line: 6,
                column: 14
            }
        );
        assert_eq!(
            p.key(&[k("steps"), Seg::Index(1), k("needs")]),
            Pos { line: 8, column: 5 }
        );
        assert_eq!(
            p.key(&[k("inputs"), k("url"), k("type")]),
            Pos {
                line: 11,
                column: 5
            }
        );
    }

    #[test]
    fn compact_sequences_and_block_scalars() {
        let src =
            "steps:\n- id: a\n  with:\n    text: |\n      id: not-a-key\n    other: 1\n- id: b\n";
        let (_, p) = parse(src).unwrap();
        assert_eq!(
            p.key(&[k("steps"), Seg::Index(1), k("id")]),
            Pos { line: 7, column: 3 }
        );
        assert_eq!(
            p.key(&[k("steps"), Seg::Index(0), k("with"), k("other")]),
            Pos { line: 6, column: 5 }
        );
        assert!(!p.has(&[k("steps"), Seg::Index(0), k("with"), k("id")]));
    }

    #[test]
    fn invalid_yaml_has_its_position() {
        let err = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
        assert_eq!(
            err.message,
            "did not find expected ',' or ']', while parsing a flow sequence at line 2 column 4"
        );
        let err = parse("name: x\nsteps:\n  - id: a\n    id: b\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 4, column: 5 });
        assert!(err.message.contains("duplicate entry with key"), "{err:?}");
    }
}

#[cfg(test)]
mod generated {
    //! The scanner against generated block-style documents: every node's recorded position
    //! points at its key (or dash) in the source.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Node {
        Scalar(u32),
        Map(Vec<(String, Node)>),
        Seq(Vec<Node>),
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = (0u32..1000).prop_map(Node::Scalar);
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::btree_map("[a-z][a-z_]{0,5}", inner.clone(), 1..4)
                    .prop_map(|m| Node::Map(m.into_iter().collect())),
                proptest::collection::vec(inner, 1..4).prop_map(Node::Seq),
            ]
        })
    }

    /// Emits `n` as the value of a key (or dash) at column `col`; records expected positions.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        n: &Node,
        col: usize,
        step: usize,
        compact: bool,
        inline: bool,
        under_key: bool,
        path: &mut Path,
        out: &mut String,
        want: &mut Vec<(Path, Pos)>,
    ) {
        match n {
            Node::Scalar(v) => out.push_str(&format!(" {v}\n")),
            Node::Map(m) => {
                out.push('\n');
                for (k, v) in m {
                    let line = out.matches('\n').count() + 1;
                    path.push(Seg::Key(k.clone()));
                    want.push((
                        path.clone(),
                        Pos {
                            line,
                            column: col + step + 1,
                        },
                    ));
                    out.push_str(&format!("{}{k}:", " ".repeat(col + step)));
                    emit(v, col + step, step, compact, inline, true, path, out, want);
                    path.pop();
                }
            }
            Node::Seq(items) => {
                out.push('\n');
                // `key:\n- item` is valid only directly under a key.
                let dash = if compact && under_key {
                    col
                } else {
                    col + step
                };
                for (i, v) in items.iter().enumerate() {
                    let line = out.matches('\n').count() + 1;
                    path.push(Seg::Index(i));
                    want.push((
                        path.clone(),
                        Pos {
                            line,
                            column: dash + 1,
                        },
                    ));
                    if let (Node::Map(m), true) = (v, inline) {
                        // `- first: …` with the other keys aligned under `first`.
                        for (j, (k, vv)) in m.iter().enumerate() {
                            let line = out.matches('\n').count() + 1;
                            let lead = if j == 0 {
                                format!("{}- ", " ".repeat(dash))
                            } else {
                                " ".repeat(dash + 2)
                            };
                            path.push(Seg::Key(k.clone()));
                            want.push((
                                path.clone(),
                                Pos {
                                    line,
                                    column: dash + 3,
                                },
                            ));
                            out.push_str(&format!("{lead}{k}:"));
                            emit(vv, dash + 2, step, compact, inline, true, path, out, want);
                            path.pop();
                        }
                        path.pop();
                        continue;
                    }
                    out.push_str(&format!("{}-", " ".repeat(dash)));
                    // Items are written on their own lines below the dash.
                    emit(v, dash, step, compact, inline, false, path, out, want);
                    path.pop();
                }
            }
        }
    }

    proptest! {
        #[test]
        fn scanner_positions_match_generated_documents(
            top in proptest::collection::btree_map("[a-z][a-z_]{0,5}", node(), 1..4),
            step in prop_oneof![Just(2usize), Just(4usize)],
            compact in any::<bool>(),
            inline in any::<bool>(),
        ) {
            let mut out = String::new();
            let mut want = Vec::new();
            let mut path = Vec::new();
            for (k, v) in &top {
                let line = out.matches('\n').count() + 1;
                path.push(Seg::Key(k.clone()));
                want.push((path.clone(), Pos { line, column: 1 }));
                out.push_str(&format!("{k}:"));
                emit(v, 0, step, compact, inline, true, &mut path, &mut out, &mut want);
                path.pop();
            }
            let (_, pos) = parse(&out).map_err(|e| TestCaseError::fail(format!("{e:?}\n{out}")))?;
            for (p, at) in want {
                prop_assert!(pos.has(&p), "{p:?} not located in\n{out}");
                prop_assert_eq!(pos.key(&p), at, "{:?} in\n{}", p, out);
            }
        }
    }
}
