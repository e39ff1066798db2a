//! Secrets and their redaction.
//!
//! [`Secret`] holds a credential. It has no `Display`, its `Debug` prints a placeholder, and it
//! does not implement `Serialize`: the only way to read it is [`Secret::expose`], which the
//! signer calls. Every secret is registered with the process-wide [`Redactor`] when it is
//! created, and every sink the tool writes to (the printer, tracing, the journal, run files,
//! the panic hook) passes its text through [`redact`] first, which replaces the value and its
//! base64 and percent-encoded forms.

use std::borrow::Cow;
use std::fmt;
use std::sync::{OnceLock, RwLock};

use base64::Engine as _;

/// What a redacted secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// A credential value. Cannot be displayed, debug-printed or serialized.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it (and its encodings) for redaction.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        redactor().add(&value);
        Secret(value)
    }

    /// The raw value, for the signer only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Process-wide set of strings that must never be written anywhere.
#[derive(Default)]
pub struct Redactor {
    needles: RwLock<Vec<String>>,
}

/// Shortest value worth redacting: shorter strings would mangle ordinary text.
const MIN_SECRET_LEN: usize = 6;

impl Redactor {
    /// Registers a secret value and its common encodings.
    pub fn add(&self, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut forms = vec![value.to_string()];
        let b = value.as_bytes();
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            forms.push(engine.encode(b));
        }
        let pct = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        forms.push(pct.clone());
        forms.push(pct.to_lowercase_hex());
        let form_pct = url::form_urlencoded::byte_serialize(b).collect::<String>();
        forms.push(form_pct);
        // As it stands inside a JSON string (a recorded request's parameters): `"`, `\` and
        // control characters escaped.
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json[1..json.len() - 1].to_string());
        }
        let mut needles = self.needles.write().unwrap_or_else(|e| e.into_inner());
        for f in forms {
            // Trim base64 padding variants to their stable prefix too: a secret embedded in a
            // longer base64 blob shifts alignment, so we also keep the unpadded form (above).
            if f.len() >= MIN_SECRET_LEN && !needles.contains(&f) {
                needles.push(f);
            }
        }
        // Longest first, so a form that contains another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    /// Replaces every registered form in `text`, and every signed token (JWT) in it.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let text: Cow<'a, str> = match mask_jwts(text) {
            Some(masked) => Cow::Owned(masked),
            None => Cow::Borrowed(text),
        };
        let needles = self.needles.read().unwrap_or_else(|e| e.into_inner());
        if needles.is_empty() || !needles.iter().any(|n| text.contains(n.as_str())) {
            return text;
        }
        let mut out = text.into_owned();
        for n in needles.iter() {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        Cow::Owned(out)
    }

    /// Redacts bytes that are valid UTF-8; other bytes are checked as lossy text and, when a
    /// secret is found, returned redacted in lossy form.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        match std::str::from_utf8(bytes) {
            Ok(s) => match self.redact(s) {
                Cow::Borrowed(_) => Cow::Borrowed(bytes),
                Cow::Owned(o) => Cow::Owned(o.into_bytes()),
            },
            Err(_) => {
                let lossy = String::from_utf8_lossy(bytes);
                match self.redact(&lossy) {
                    Cow::Borrowed(_) => Cow::Borrowed(bytes),
                    Cow::Owned(o) => Cow::Owned(o.into_bytes()),
                }
            }
        }
    }
}

/// Masks signed tokens: `eyJ….eyJ….<signature>`, i.e. base64url JSON header and payload (a
/// JWT such as a bearer `Authorization` token). A token is a credential until its nonce is
/// spent and carries the full access key; an exchange or proxy that echoes the request in an
/// error page must not get it written into the evidence or printed. None when there is none.
pub fn mask_jwts(text: &str) -> Option<String> {
    if !text.contains("eyJ") {
        return None;
    }
    let b = text.as_bytes();
    let part = |from: usize| -> usize {
        let mut i = from;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b'_') {
            i += 1;
        }
        i
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    let mut found = false;
    while let Some(off) = text[i..].find("eyJ") {
        let start = i + off;
        let starts_word =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let h_end = part(start);
        let is_token =
            starts_word && b.get(h_end) == Some(&b'.') && text[h_end + 1..].starts_with("eyJ") && {
                let p_end = part(h_end + 1);
                b.get(p_end) == Some(&b'.') && part(p_end + 1) > p_end + 1
            };
        if is_token {
            let p_end = part(h_end + 1);
            let end = part(p_end + 1);
            out.push_str(&text[last..start]);
            out.push_str(MASK);
            last = end;
            i = end;
            found = true;
        } else {
            i = start + 3;
        }
    }
    if !found {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

trait LowerHex {
    fn to_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    /// `%2F` and `%2f` are the same percent-encoding; clients emit either.
    fn to_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut chars = self.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                for _ in 0..2 {
                    if let Some(h) = chars.next() {
                        out.push(h.to_ascii_lowercase());
                    }
                }
            }
        }
        out
    }
}

/// The process-wide redactor.
pub fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(Redactor::default)
}

/// Shorthand for `redactor().redact(text)`.
pub fn redact(text: &str) -> Cow<'_, str> {
    redactor().redact(text)
}

/// Masks an access key to its first and last four characters: `abcd...wxyz`.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "...".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// Installs a panic hook that redacts the panic message before printing it.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_string()
        };
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "respond: internal error{loc}: {}\n  This is a bug; evidence gathered so far is kept in the run directory and the run can be resumed with `respond resume RUN_DIR`.",
            redact(&payload)
        );
    }));
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_secret_with_quotes_or_backslashes_is_redacted_inside_json_too() {
        let r = Redactor::default();
        let pass = r#"pa"ss\word-77"#;
        r.add(pass);
        let recorded = serde_json::json!({ "params": [["passphrase", pass]] }).to_string();
        let out = r.redact(&recorded);
        assert!(!out.contains("word-77"), "{out}");
        assert!(out.contains(MASK), "{out}");
    }

    use super::*;

    #[test]
    fn signed_tokens_are_masked_wherever_they_appear() {
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJhY2Nlc3Nfa2V5IjoiYSJ9.c2lnbmF0dXJl_-x";
        let masked = mask_jwts(&format!("auth=Bearer {t} and \"{t}\"")).unwrap();
        assert!(!masked.contains("eyJ"), "{masked}");
        assert!(masked.starts_with("auth=Bearer "));
        assert_eq!(mask_jwts("eyJ alone, eyJa.eyJb. no signature"), None);
        assert_eq!(mask_jwts("plain text"), None);
        assert!(!redactor().redact(t).contains("eyJhbGci"));
    }

    #[test]
    fn secret_is_not_printed_by_debug() {
        let s = Secret::new("unit-test-secret-debug-0001");
        assert!(!format!("{s:?}").contains("unit-test-secret-debug-0001"));
    }

    #[test]
    fn redacts_plain_base64_and_percent_forms() {
        let v = "unit+test/secret=0002";
        let _s = Secret::new(v);
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        let pct = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        for form in [v.to_string(), b64, pct.clone(), pct.to_lowercase_hex()] {
            let text = format!("before {form} after");
            let out = redact(&text);
            assert!(!out.contains(&form), "{form} leaked in {out}");
            assert!(out.contains(MASK));
        }
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask_key("abcdefghijklmnopwxyz"), "abcd...wxyz");
        assert_eq!(mask_key("short"), "...");
    }
}
