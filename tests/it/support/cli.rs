//! `respond` runs against the mock of [`super::mock::Mock`], built with
//! [`super::respond::Respond`]: the mock's leaked key (and read-only key) in the environment,
//! `--api-url` pointing at it, and the user deleting the key in the console while a run works.
//!
//! The binary (not the library) is what the reliability suites run, because what they check
//! is what a user gets: exit codes, printed messages, a process that can be SIGKILLed.

use std::path::Path;
use std::time::{Duration, Instant};

use super::mock::Mock;
use super::respond::{Respond, Running};
use super::run_dir::{bundle, step_ended};

/// `respond ARGS` with the mock's leaked key (and read-only key) in the environment.
pub fn respond(mock: &Mock, args: &[&str]) -> Respond {
    let bot = mock.key("bot");
    let ro = mock.key("readonly");
    Respond::new()
        .args(args)
        .env("UPBIT_ACCESS_KEY", &bot.access_key)
        .env("UPBIT_SECRET_KEY", &bot.secret_key)
        .env("UPBIT_READONLY_ACCESS_KEY", &ro.access_key)
        .env("UPBIT_READONLY_SECRET_KEY", &ro.secret_key)
}

/// `respond leak --exchange upbit` against the mock, writing under `out`, with `extra` flags.
fn leak_command(mock: &Mock, out: &Path, extra: &[&str]) -> Respond {
    respond(
        mock,
        &[
            "leak",
            "--exchange",
            "upbit",
            "--api-url",
            &mock.url,
            "--out",
        ],
    )
    .arg(out)
    .args(extra)
}

/// `respond leak` against the mock, writing under `out`, fast polling of the old key.
pub fn leak(mock: &Mock, out: &Path, bot_log: &Path, extra: &[&str]) -> Respond {
    leak_command(mock, out, &[])
        .arg("--bot-log")
        .arg(bot_log)
        .args([
            "--input",
            "revoke_interval=100ms",
            "--input",
            "revoke_timeout=60s",
        ])
        .args(extra)
}

/// `respond leak --dry-run` against the mock (reads only, nothing cancelled) writing under
/// `out`, polling the old key for one second only, with `extra` flags.
pub fn dry_leak(mock: &Mock, out: &Path, extra: &[&str]) -> Respond {
    leak_command(mock, out, &["--dry-run", "--input", "revoke_timeout=1s"]).args(extra)
}

/// `respond resume DIR` against the mock.
pub fn resume(mock: &Mock, dir: &Path) -> Respond {
    respond(mock, &["resume"])
        .arg(dir)
        .args(["--api-url", &mock.url])
}

/// Revokes the leaked key once `cancel_orders` has ended in the newest bundle under `out` (the
/// user deletes it in the console while respond works), or after `max` at the latest, or
/// when the run exits. Returns whether it revoked.
pub fn revoke_after_cancel(mock: &Mock, out: &Path, run: &mut Running, max: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if bundle(out).is_some_and(|d| step_ended(&d, "cancel_orders")) || t0.elapsed() > max {
            mock.revoke();
            return true;
        }
        if run.exited() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
