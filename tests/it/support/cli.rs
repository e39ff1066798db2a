//! The `respond` binary driven as a user drives it: credentials in the ENVIRONMENT (never
//! argv), output collected as text, the user deleting the key in the console while a run works.
//!
//! The binary (not the library) is what the reliability suites run, because what they check
//! is what a user gets: exit codes, printed messages, a process that can be SIGKILLed.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::mock::Mock;
use super::run_dir::{bundle, step_ended};

pub const BIN: &str = env!("CARGO_BIN_EXE_respond");
/// A `respond` command with the mock's leaked key (and read-only key) in the environment.
pub fn respond(mock: &Mock, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("UPBIT_ACCESS_KEY")
        .env_remove("UPBIT_SECRET_KEY")
        .env_remove("UPBIT_READONLY_ACCESS_KEY")
        .env_remove("UPBIT_READONLY_SECRET_KEY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    let bot = mock.key("bot");
    let ro = mock.key("readonly");
    c.env("UPBIT_ACCESS_KEY", &bot.access_key)
        .env("UPBIT_SECRET_KEY", &bot.secret_key)
        .env("UPBIT_READONLY_ACCESS_KEY", &ro.access_key)
        .env("UPBIT_READONLY_SECRET_KEY", &ro.secret_key);
    c
}

/// `respond leak --exchange upbit` against the mock, writing under `out`, with `extra` flags.
fn leak_command(mock: &Mock, out: &Path, extra: &[&str]) -> Command {
    let out = out.display().to_string();
    let mut args = vec![
        "leak",
        "--exchange",
        "upbit",
        "--api-url",
        &mock.url,
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    respond(mock, &args)
}

/// `respond leak` against the mock, writing under `out`, fast polling of the old key.
pub fn leak(mock: &Mock, out: &Path, bot_log: &Path, extra: &[&str]) -> Command {
    let bot_log = bot_log.display().to_string();
    let mut args = vec![
        "--bot-log",
        &bot_log,
        "--input",
        "revoke_interval=100ms",
        "--input",
        "revoke_timeout=60s",
    ];
    args.extend_from_slice(extra);
    leak_command(mock, out, &args)
}

/// `respond leak --dry-run` against the mock (reads only, nothing cancelled) writing under
/// `out`, polling the old key for one second only, with `extra` flags.
pub fn dry_leak(mock: &Mock, out: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["--dry-run", "--input", "revoke_timeout=1s"];
    args.extend_from_slice(extra);
    leak_command(mock, out, &args)
}

/// `respond resume DIR` against the mock.
pub fn resume(mock: &Mock, dir: &Path) -> Command {
    let d = dir.display().to_string();
    respond(mock, &["resume", &d, "--api-url", &mock.url])
}

/// Output of a finished process as text.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn ran(o: Output) -> Ran {
    Ran {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Spawns with piped output.
pub fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn respond")
}
/// Revokes the leaked key once `cancel_orders` has ended in the newest bundle under `out` (the
/// user deletes it in the console while respond works), or after `max` at the latest, or
/// when `child` exits. Returns whether it revoked.
pub fn revoke_after_cancel(mock: &Mock, out: &Path, child: &mut Child, max: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if bundle(out).is_some_and(|d| step_ended(&d, "cancel_orders")) || t0.elapsed() > max {
            mock.revoke();
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the child and collects its output.
pub fn finish(child: Child) -> Ran {
    ran(child.wait_with_output().expect("wait respond"))
}
/// `respond evidence verify DIR` exit code and output.
pub fn verify(dir: &Path) -> Ran {
    ran(Command::new(BIN)
        .args(["evidence", "verify"])
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap())
}
