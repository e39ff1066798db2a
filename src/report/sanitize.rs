//! Making untrusted text inert in every output the bundle has.
//!
//! Exchange responses and bot logs are attacker-controlled (a market name, an identifier, an
//! address). Each output format has one escaping function here, so a reviewer of the escaping
//! reads one file: [`clean`] (control characters made visible, long values cut, used before
//! every format), [`csv_text`] (formula injection neutralised for Excel), [`md`] (Markdown
//! structure characters) and [`html`] (for the SVG, which is built in Rust; the HTML templates
//! use handlebars' own escaping). Numeric cells never pass through [`csv_text`]: a negative
//! Decimal stays a number.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest text value (in characters) an output cell keeps; the rest is replaced by a marker.
/// The full value stays in the raw response under `raw/`.
pub const MAX_TEXT_CHARS: usize = 1024;

/// Bidirectional and zero-width format characters that can make text read differently from
/// what it is ("Trojan Source"); shown escaped like control characters.
fn is_deceptive_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Makes a data value safe to show as one line of text: control and bidi characters become
/// visible escapes (`\u{1b}`), and a value longer than [`MAX_TEXT_CHARS`] is cut with a marker
/// saying how long it was.
pub fn clean(s: &str) -> String {
    clean_cow(s).into_owned()
}

/// [`clean`], borrowing `s` when it is already clean (short printable ASCII: ids, markets,
/// times), so a million-row sheet copies none of them.
pub fn clean_cow(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_TEXT_CHARS && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Cow::Borrowed(s);
    }
    let total = s.chars().count();
    let mut out = String::with_capacity(s.len().min(MAX_TEXT_CHARS * 4));
    for (i, c) in s.chars().enumerate() {
        if i >= MAX_TEXT_CHARS {
            let _ = write!(
                out,
                "…[truncated: {total} characters in total; the full value is in the raw response]"
            );
            break;
        }
        if c.is_control() || is_deceptive_format(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A text cell for a CSV file: [`clean`], then a leading `'` when the original value starts
/// with a character a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, CR).
pub fn csv_text(s: &str) -> String {
    csv_text_cow(s).into_owned()
}

/// [`csv_text`], borrowing `s` when it needs no change.
pub fn csv_text_cow(s: &str) -> Cow<'_, str> {
    let cleaned = clean_cow(s);
    let risky = matches!(
        s.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n')
    ) || matches!(cleaned.chars().next(), Some('=' | '+' | '-' | '@'));
    if risky {
        Cow::Owned(format!("'{cleaned}"))
    } else {
        cleaned
    }
}

/// Whether `s` is a CSV text cell [`csv_text_cow`] leaves as it is and a CSV writer need not
/// quote: at most [`MAX_TEXT_CHARS`] bytes of printable ASCII, no formula start, no separator
/// or quote (the fast path of a million-row sheet).
pub fn csv_text_is_plain(s: &str) -> bool {
    s.len() <= MAX_TEXT_CHARS
        && !matches!(s.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@'))
        && s.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b',' && b != b'"')
}

/// Escapes a value for Markdown text (tables, lists, paragraphs): backslash-escapes the
/// characters that make structure or markup (`\ | ` < > [ ] &`) and a leading `#` or `=`.
/// Expects [`clean`]ed input (no newlines).
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' | '|' | '`' | '<' | '>' | '[' | ']' | '&' | '*' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '=' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML/SVG element content and attribute values (the same set as
/// handlebars' escaping).
pub fn html(s: &str) -> String {
    handlebars::html_escape(s)
}

/// A line safe for a terminal: [`clean`] (no escape sequences reach the terminal).
pub fn terminal(s: &str) -> String {
    clean(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_become_visible() {
        assert_eq!(clean("a\x1b[31mb\nc"), "a\\u{1b}[31mb\\u{a}c");
        assert_eq!(clean("x\u{202E}y"), "x\\u{202e}y");
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let s = "A".repeat(1 << 20);
        let c = clean(&s);
        assert!(c.len() < 2 * MAX_TEXT_CHARS);
        assert!(c.contains("truncated: 1048576 characters"));
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(csv_text("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_text("+1"), "'+1");
        assert_eq!(csv_text("-1"), "'-1");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("\tx"), "'\\u{9}x");
        assert_eq!(csv_text("BTC-USDT"), "BTC-USDT");
    }

    #[test]
    fn markdown_structure_is_escaped() {
        assert_eq!(md("a|b"), "a\\|b");
        assert_eq!(md("# h"), "\\# h");
        assert_eq!(md("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(md("<b>`c`"), "\\<b\\>\\`c\\`");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn csv_text_is_never_a_formula_nor_carries_controls(s in "\\PC*|[=+\\-@\t\r\n\u{1b}\u{202e}].*") {
            let out = csv_text(&s);
            prop_assert!(!matches!(out.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r')));
            prop_assert!(!out.chars().any(|c| c.is_control()));
        }

        #[test]
        fn md_never_leaves_a_bare_pipe_or_angle(s in ".*") {
            let out = md(&clean(&s));
            let chars: Vec<char> = out.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                if matches!(c, '|' | '<' | '`' | '[') {
                    prop_assert!(i > 0 && chars[i - 1] == '\\', "{out:?}");
                }
            }
        }
    }
}
