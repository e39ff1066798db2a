//! The printer: the one owner of stdout and stderr.
//!
//! It decides what is shown (quiet, verbose, JSON mode), redacts every line before it leaves
//! the process, owns the indicatif style (bars only when stderr is a terminal, plain lines
//! otherwise) and installs the tracing subscriber whose output passes the same redaction.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::GlobalArgs;
use crate::secret::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Where output goes; cloned freely (shared inner state).
#[derive(Clone)]
pub struct Printer {
    inner: Arc<Inner>,
    /// `[label] ` before every line: one account's lines among an incident's.
    prefix: Option<Arc<str>>,
}

struct Inner {
    verbosity: Verbosity,
    json: bool,
    color: bool,
    progress: bool,
    lock: Mutex<()>,
    /// When set, lines are kept here instead of printed (tests).
    capture: Option<Captured>,
}

/// The lines a capturing printer kept (stdout and stderr in order, redacted).
pub type Captured = Arc<Mutex<Vec<String>>>;

impl Printer {
    pub fn from_args(g: &GlobalArgs) -> Self {
        let verbosity = if g.quiet {
            Verbosity::Quiet
        } else if g.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let no_color = g.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let tty = std::io::stderr().is_terminal();
        Printer {
            inner: Arc::new(Inner {
                verbosity,
                json: g.json,
                color: tty && !no_color,
                progress: tty && verbosity != Verbosity::Quiet,
                lock: Mutex::new(()),
                capture: None,
            }),
            prefix: None,
        }
    }

    /// A printer for tests and library use: quiet progress, plain text.
    pub fn plain(verbosity: Verbosity) -> Self {
        Self::plain_to(verbosity, None)
    }

    /// A plain printer that keeps its lines instead of printing them: for tests that assert
    /// what a user would read.
    pub fn capturing(verbosity: Verbosity) -> (Self, Captured) {
        let lines: Captured = Arc::default();
        (Self::plain_to(verbosity, Some(lines.clone())), lines)
    }

    fn plain_to(verbosity: Verbosity, capture: Option<Captured>) -> Self {
        Printer {
            inner: Arc::new(Inner {
                verbosity,
                json: false,
                color: false,
                progress: false,
                lock: Mutex::new(()),
                capture,
            }),
            prefix: None,
        }
    }

    /// The same printer with `[label] ` before every line it prints (stdout and stderr).
    pub fn labelled(&self, label: &str) -> Printer {
        Printer {
            inner: self.inner.clone(),
            prefix: Some(Arc::from(format!("[{label}] "))),
        }
    }

    /// `text` with the label before each of its lines.
    fn prefixed<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.prefix {
            None => std::borrow::Cow::Borrowed(text),
            Some(p) => std::borrow::Cow::Owned(
                text.split('\n')
                    .map(|l| format!("{p}{l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }

    /// Keeps `text` when capturing; true when it did.
    fn captured(&self, text: &str) -> bool {
        let owned = self.prefixed(text);
        let text: &str = &owned;
        match &self.inner.capture {
            Some(c) => {
                c.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(redact(text).into_owned());
                true
            }
            None => false,
        }
    }

    pub fn json(&self) -> bool {
        self.inner.json
    }
    pub fn color(&self) -> bool {
        self.inner.color
    }
    pub fn verbosity(&self) -> Verbosity {
        self.inner.verbosity
    }
    pub fn interactive(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    /// A result line for the user on stdout (suppressed in JSON mode, where only the summary
    /// goes to stdout).
    pub fn out(&self, text: &str) {
        if self.inner.json {
            return self.status(text);
        }
        if self.captured(text) {
            return;
        }
        let _g = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}", redact(&self.prefixed(text)));
        let _ = o.flush();
    }

    /// Progress and status on stderr (hidden with -q).
    pub fn status(&self, text: &str) {
        if self.inner.verbosity == Verbosity::Quiet {
            return;
        }
        self.err_line(text);
    }

    /// Something the user must see even with -q (warnings, manual steps).
    pub fn important(&self, text: &str) {
        self.err_line(text);
    }

    /// An error on stderr.
    pub fn error(&self, text: &str) {
        let prefix = if self.inner.color {
            "\x1b[1;31merror:\x1b[0m "
        } else {
            "error: "
        };
        self.err_line(&format!("{prefix}{text}"));
    }

    /// A warning on stderr.
    pub fn warn(&self, text: &str) {
        let prefix = if self.inner.color {
            "\x1b[1;33mwarning:\x1b[0m "
        } else {
            "warning: "
        };
        self.err_line(&format!("{prefix}{text}"));
    }

    fn err_line(&self, text: &str) {
        if self.captured(text) {
            return;
        }
        let _g = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{}", redact(&self.prefixed(text)));
    }

    /// The machine-readable summary (only in JSON mode), one line on stdout.
    pub fn summary(&self, value: &serde_json::Value) {
        if !self.inner.json {
            return;
        }
        let _g = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}", redact(&value.to_string()));
        let _ = o.flush();
    }

    /// A progress bar with the house style; hidden when stderr is not a terminal.
    pub fn progress(&self, len: Option<u64>, what: &str) -> ProgressBar {
        let pb = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if self.inner.progress {
            pb.set_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {prefix:.bold} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            pb.set_style(style);
        } else {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        pb.set_prefix(what.to_string());
        pb
    }

    /// Installs the tracing subscriber (diagnostics under -v), writing through redaction.
    pub fn init_tracing(&self, verbose: u8) {
        let level = match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        };
        let filter =
            tracing_subscriber::EnvFilter::try_from_env("RESPOND_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!("respond={level},warn"))
            });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(|| RedactingWriter)
            .with_ansi(self.inner.color)
            .with_target(false)
            .try_init();
    }
}

/// A stderr writer that redacts each write.
pub struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let red = crate::secret::redactor().redact_bytes(buf);
        std::io::stderr().write_all(&red)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Characters a POSIX shell takes literally in an unquoted word (`…` is the mask of a key in
/// bundle names: no shell gives it a meaning).
fn shell_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:=@%+,…".contains(c)
}

/// One word as a POSIX shell reads it back: unchanged when every character is literal, else in
/// single quotes (a `'` inside becomes `'\''`).
pub fn shell_word(word: &str) -> std::borrow::Cow<'_, str> {
    if !word.is_empty() && word.chars().all(shell_safe) {
        return std::borrow::Cow::Borrowed(word);
    }
    std::borrow::Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
}

/// A command line to paste into a shell, each word quoted as needed. The one place that prints
/// commands for the user (resume, analyze, verify, chmod lines, environment-variable hints):
/// a leading `NAME=VALUE` word is an environment assignment, so only its value is quoted.
pub fn shell_command<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    let mut assignments = true;
    for w in words {
        let w = w.as_ref();
        if !out.is_empty() {
            out.push(' ');
        }
        let assignment = w.split_once('=').filter(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match assignment {
            Some((name, value)) if assignments => {
                out.push_str(name);
                out.push('=');
                out.push_str(&shell_word(value));
            }
            _ => {
                assignments = false;
                out.push_str(&shell_word(w));
            }
        }
    }
    out
}

/// `respond ARGS…` as a command line to paste; paths are shown as the OS gives them.
pub fn respond_command<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let words: Vec<String> = std::iter::once("respond".to_string())
        .chain(args.into_iter().map(|a| a.as_ref().to_string()))
        .collect();
    shell_command(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` makes of a command line: its words, one per line.
    fn sh_words(line: &str) -> Vec<String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("for w in {line}; do printf '%s\\0' \"$w\"; done"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn words_survive_the_shell() {
        for w in [
            "evidence/20261123T052100Z-example-abcd...wxyz",
            "my evidence/run 1",
            "it's here",
            "$HOME/`id`/$(id)",
            "a\"b\\c",
            "tab\there",
            "semi;colon&amp|pipe>out<in",
            "~user",
            "#not-a-comment",
            "*glob?[x]",
            "",
            "line\nbreak",
            "한글 경로",
        ] {
            let q = shell_word(w);
            assert_eq!(sh_words(&q), vec![w.to_string()], "{w:?} quoted as {q}");
        }
        assert_eq!(
            shell_word("ev/2026-example-ab...yz"),
            "ev/2026-example-ab...yz"
        );
    }

    #[test]
    fn commands_quote_paths_and_keep_assignments() {
        let c = shell_command([
            "EXAMPLE_READONLY_ACCESS_KEY=…",
            "respond",
            "resume",
            "/tmp/my ev'dir/x",
        ]);
        assert_eq!(
            c,
            r"EXAMPLE_READONLY_ACCESS_KEY=… respond resume '/tmp/my ev'\''dir/x'"
        );
        assert_eq!(
            respond_command(["analyze", "a b", "--bot-log", "FIXED_FILE"]),
            "respond analyze 'a b' --bot-log FIXED_FILE"
        );
        // After the program name, `a=b` is an argument: quoted as a whole when needed.
        assert_eq!(shell_command(["respond", "x=a b"]), "respond 'x=a b'");
    }
}
