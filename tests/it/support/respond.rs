//! The `respond` binary run as a user runs it, through one fluent builder:
//!
//! ```ignore
//! Respond::new().args(["leak", "--exchange", "upbit"]).env("K", "v").run().code(2).stderr_has("K");
//! ```
//!
//! Every run starts from a clean credential environment (no `<PREFIX>_*` variable of any
//! registered exchange is inherited from the test's environment), `NO_COLOR=1` and stdin from
//! `/dev/null` (or the bytes given to [`Respond::stdin`]); credentials go in through the
//! environment, never argv. [`Ran`] holds what a finished run printed and asserts on it with
//! the whole output in the failure message; [`Running`] is a run in the background that a test
//! can watch, signal or kill.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_respond");

/// A `respond` command being built.
pub struct Respond {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Default for Respond {
    fn default() -> Self {
        Self::new()
    }
}

impl Respond {
    /// `respond` with no arguments yet, a clean credential environment and `NO_COLOR=1`.
    pub fn new() -> Respond {
        let mut cmd = Command::new(BIN);
        let prefixes: Vec<String> = respond::exchange::registry::all()
            .iter()
            .map(|d| format!("{}_", d.env_prefix))
            .collect();
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                cmd.env_remove(&k);
            }
        }
        cmd.env("NO_COLOR", "1");
        Respond { cmd, stdin: None }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.cmd.envs(vars);
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(mut self, d: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(d);
        self
    }

    /// What the process reads on stdin (else `/dev/null`).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to the end and collects the output.
    pub fn run(self) -> Ran {
        let running = self.spawn();
        running.finish()
    }

    /// Starts the process with piped output; [`Running::finish`] collects it.
    pub fn spawn(mut self) -> Running {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn respond");
        if let Some(bytes) = self.stdin {
            let mut input = child.stdin.take().expect("piped stdin");
            // From a thread: a process that reads late must not block the test on a full pipe,
            // and one that exits without reading is not an error of the test.
            std::thread::spawn(move || {
                let _ = input.write_all(&bytes);
            });
        }
        Running { child }
    }
}

/// A `respond` process running in the background.
pub struct Running {
    pub child: Child,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// Polls `done` until it holds (true), the process exits first or a minute passes (false).
    pub fn wait_for(&mut self, mut done: impl FnMut() -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            if done() {
                return true;
            }
            if self.exited() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Sends `signal` (`"INT"`, `"TERM"`, …) with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let st = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{signal} {}", self.id());
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// Waits for the end and collects the output.
    pub fn finish(self) -> Ran {
        let o = self.child.wait_with_output().expect("wait for respond");
        Ran {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// What a finished `respond` printed, and its exit code (`None`: killed by a signal).
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts exit 0.
    #[track_caller]
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(self, s: &str) -> Self {
        assert!(
            self.stdout.contains(s),
            "no `{s}` in stdout:\n{}",
            self.stdout
        );
        self
    }

    /// Asserts that stderr contains `s`.
    #[track_caller]
    pub fn stderr_has(self, s: &str) -> Self {
        assert!(
            self.stderr.contains(s),
            "no `{s}` in stderr:\n{}",
            self.stderr
        );
        self
    }

    /// stdout, then stderr.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.stdout))
    }
}

/// `respond evidence verify DIR`.
pub fn verify(dir: &Path) -> Ran {
    Respond::new().args(["evidence", "verify"]).arg(dir).run()
}
