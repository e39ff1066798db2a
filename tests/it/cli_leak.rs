//! `respond leak` refuses bad input before it touches the exchange or creates a bundle:
//! missing credentials, a loose credentials file, plain http to a remote host, and every
//! input that could only fail later (a zero or endless window, a window that ends before it
//! starts, values outside the playbook's declared bounds, unknown inputs). Each is exit 2 with
//! a hint, no evidence directory appears and the mock exchange sees no request.
//!
//! What is not input to containment never stops it (issue 11): a malformed bot log and an
//! unwritable `--out` are reported while the cancels go ahead against a live mock over
//! loopback. Ctrl-C and SIGTERM stop a run with a flushed journal and the exact resume line.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use respond::mock::MockOptions;

use crate::support::respond::{verify, Ran, Respond};
use crate::support::{cli, mock::Mock, run_dir};

/// `respond leak --exchange upbit --out ev EXTRA` in `dir` with only `env` as credentials.
fn leak(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Ran {
    Respond::new()
        .current_dir(dir)
        .args(["leak", "--exchange", "upbit", "--out", "ev"])
        .args(extra)
        .envs(env.iter().copied())
        .run()
}

#[test]
fn missing_credentials_are_a_usage_error_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let o = leak(t.path(), &[], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("UPBIT_ACCESS_KEY"), "{}", o.stderr);
    assert!(!t.path().join("ev").exists());
}

#[test]
fn a_loose_credentials_file_is_refused_and_its_secret_never_printed() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("creds.env");
    std::fs::write(
        &f,
        "UPBIT_ACCESS_KEY=access-key-0001\nUPBIT_SECRET_KEY=canary-secret-loose-file\n",
    )
    .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = leak(t.path(), &["--credentials", "creds.env"], &[]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("chmod 600"), "{}", o.stderr);
    assert!(!o.stderr.contains("canary-secret-loose-file"));
    assert!(!o.stdout.contains("canary-secret-loose-file"));
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let o = leak(
        t.path(),
        &["--api-url", "http://example.com"],
        &[
            ("UPBIT_ACCESS_KEY", "access-key-0002"),
            ("UPBIT_SECRET_KEY", "canary-secret-remote-http"),
        ],
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains("loopback") || o.stderr.contains("http"),
        "{}",
        o.stderr
    );
    assert!(!t.path().join("ev").exists());
}

#[test]
fn a_bad_window_is_a_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let o = leak(t.path(), &["--since", "7 parsecs"], &[]);
    assert_eq!(o.code, Some(2));
    let o = leak(t.path(), &["--from", "yesterday", "--to", "today"], &[]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("RFC 3339"), "{}", o.stderr);
}

/// `respond leak --dry-run` against the mock, in `dir`, writing under `dir/ev`.
fn dry_leak(mock: &Mock, dir: &Path, extra: &[&str]) -> Ran {
    cli::dry_leak(mock, Path::new("ev"), extra)
        .current_dir(dir)
        .run()
}

/// Issue 11, point 6: each of these could only fail once a step runs (or never: a 100,000-day
/// window pages for hours); each is refused before the first request, exit 2, no bundle.
#[test]
fn inputs_that_could_only_fail_later_are_refused_before_the_first_request() {
    let mock = Mock::pump_and_dump(MockOptions::default());
    let t = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--since", "0d"],
            "--since: `0d` is shorter than the minimum 1m",
        ),
        (
            &["--since", "100000d"],
            "--since: `100000d` is longer than the maximum 366d",
        ),
        (
            &[
                "--from",
                "2026-11-22T00:00:00Z",
                "--to",
                "2026-11-20T00:00:00Z",
            ],
            "must be earlier than `to`",
        ),
        (&["--from", "2026-11-22T00:00:00Z"], "--to"),
        (
            &["--input", "from=2999-01-01T00:00:00Z"],
            "later than the maximum now",
        ),
        (
            &["--input", "rotate_days=5"],
            "`5` is below the minimum 30 (allowed: 30 to 90)",
        ),
        (&["--input", "rotat_days=60"], "did you mean `rotate_days`?"),
        (
            &["--input", "revoke_interval=0s"],
            "shorter than the minimum 100ms",
        ),
        (
            &["--since", "5d", "--input", "since=3d"],
            "`since` is given twice: by --since and by --input since=",
        ),
    ];
    for (args, said) in cases {
        let o = dry_leak(&mock, t.path(), args);
        let err = o.stderr;
        assert_eq!(o.code, Some(2), "{args:?}\n{err}");
        assert!(err.contains(said), "{args:?}: expected `{said}` in\n{err}");
        assert!(
            !t.path().join("ev").exists(),
            "{args:?}: a bundle was created"
        );
        // The mock's own live attacker logs its in-process orders too (after a few seconds,
        // which a loaded machine reaches): only requests over HTTP are respond's.
        let called: Vec<_> = mock
            .state
            .requests()
            .into_iter()
            .filter(|r| !r.path.starts_with("(live attacker"))
            .collect();
        assert!(
            called.is_empty(),
            "{args:?}: the exchange was called: {called:?}"
        );
    }
}

/// Issue 11, point 6: `--input since=3d` was silently replaced by the `--since` default (7d).
#[test]
fn an_explicit_input_wins_over_a_flags_default() {
    let mock = Mock::pump_and_dump(MockOptions::default());
    let t = tempfile::tempdir().unwrap();
    let o = dry_leak(&mock, t.path(), &["--input", "since=3d"]);
    assert!(o.code.is_some(), "{}", o.stderr);
    let dir = run_dir::bundle(&t.path().join("ev")).expect("a bundle");
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let start: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(start["data"]["inputs"]["since"], "3d", "{start}");
}

/// A pump-and-dump mock, its bot log with one malformed row appended, and the line number.
fn bad_bot_log(mock: &Mock, dir: &Path) -> (PathBuf, usize) {
    let p = mock.write_bot_log(dir);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("bad-1,grid-x,KRW-BTC,sideways,limit,2026-11-20T00:00:00Z,100,1\n");
    let line = text.lines().count();
    std::fs::write(&p, text).unwrap();
    (p, line)
}

/// The victim's open orders now, read with the read-only key (nothing recorded).
fn open_orders(mock: &Mock) -> usize {
    mock.open_orders().len()
}

/// Runs `respond leak` against `mock`, deleting the key once the cancels are done.
fn contained_run(
    mock: &Mock,
    out: &Path,
    watch: &Path,
    bot_log: &Path,
    env: &[(&str, &Path)],
) -> Ran {
    let mut run = cli::leak(mock, out, bot_log, &[])
        .envs(env.iter().copied())
        .spawn();
    cli::revoke_after_cancel(mock, watch, &mut run, Duration::from_secs(60));
    run.finish()
}

/// Issue 11, point 5: a malformed bot log used to refuse the whole run (exit 2) before the
/// first cancel. Now the cancels go ahead, the log is left out of the analysis and reported
/// (terminal, journal, report, with file:line), and the closing lines give the exact
/// `respond analyze` command that adds a fixed copy. Exit 2: the input was bad.
#[test]
fn a_malformed_bot_log_does_not_stop_the_cancels() {
    let mock = Mock::pump_and_dump(MockOptions::default());
    assert!(
        open_orders(&mock) > 0,
        "the scenario starts with open orders"
    );
    let t = tempfile::tempdir().unwrap();
    let (bot, line) = bad_bot_log(&mock, t.path());
    let out = t.path().join("ev");
    let ran = contained_run(&mock, &out, &out, &bot, &[]);
    let at = format!("bot.csv:{line}");
    assert_eq!(ran.code, Some(2), "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(open_orders(&mock), 0, "every open order is cancelled");
    assert!(!mock.cancelled().is_empty());
    assert!(ran.stderr.contains(&at), "{}", ran.stderr);
    let dir = run_dir::bundle(&out).expect("a bundle");
    for f in ["journal.jsonl", "report.md", "analysis.json"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.contains(&at), "{f} does not name {at}");
    }
    assert!(
        dir.join("bot/rejected-1-bot.csv").is_file(),
        "the bad log is kept"
    );
    let analyze = format!("respond analyze {} --bot-log FIXED_FILE", dir.display());
    assert!(ran.stdout.contains(&analyze), "{}", ran.stdout);
    assert_eq!(verify(&dir).code, Some(0));
    // The printed command adds the fixed log.
    let fixed = t.path().join("fixed.csv");
    std::fs::write(&fixed, mock.state.bot_log_csv()).unwrap();
    Respond::new()
        .arg("analyze")
        .arg(&dir)
        .arg("--bot-log")
        .arg(&fixed)
        .run()
        .success();
    let logs = std::fs::read_to_string(dir.join("bot_logs.json")).unwrap();
    assert!(logs.contains("fixed.csv"), "{logs}");
}

/// Issue 11, point 5: an `--out` that cannot be created used to end the run (exit 1) before
/// the first cancel. Now the bundle goes to the private fallback directory under the user's
/// state directory, the run says so loudly, and the cancels go ahead.
#[test]
fn an_unwritable_out_does_not_stop_the_cancels() {
    use std::os::unix::fs::PermissionsExt;
    let mock = Mock::pump_and_dump(MockOptions::default());
    let t = tempfile::tempdir().unwrap();
    let bot = mock.write_bot_log(t.path());
    // A directory cannot be created under a regular file (whoever runs the test, root too).
    std::fs::write(t.path().join("file"), "").unwrap();
    let out = t.path().join("file").join("ev");
    let state = t.path().join("state");
    let fallback = state.join("respond").join("evidence");
    let ran = contained_run(&mock, &out, &fallback, &bot, &[("XDG_STATE_HOME", &state)]);
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(open_orders(&mock), 0, "every open order is cancelled");
    let dir = run_dir::bundle(&fallback).expect("a bundle in the fallback directory");
    assert!(
        ran.stderr
            .contains(&format!("the evidence is kept in {}", dir.display())),
        "{}",
        ran.stderr
    );
    assert!(ran
        .stdout
        .contains(&format!("evidence:  {}", dir.display())));
    for d in [&fallback, &dir] {
        let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    assert_eq!(verify(&dir).code, Some(0));
}

/// Issue 11, point 6: Ctrl-C (SIGINT) and SIGTERM stop a run with its journal flushed (the
/// last entry `run_interrupted`), print the exact resume command (quoted for a shell: the
/// output path has a space and a quote), and exit 130 / 143; the printed resume finishes it.
/// The two signals stop two runs at once, each against its own mock.
#[test]
fn ctrl_c_and_sigterm_leave_a_flushed_journal_and_the_resume_line() {
    std::thread::scope(|s| {
        for (signal, code) in [("INT", 130), ("TERM", 143)] {
            s.spawn(move || interrupted_run_resumes(signal, code));
        }
    });
}

/// One run stopped by SIG`signal`: exit `code`, the journal and resume line, the resume.
fn interrupted_run_resumes(signal: &str, code: i32) {
    let mock = Mock::pump_and_dump(MockOptions::default());
    let t = tempfile::tempdir().unwrap();
    let bot = mock.write_bot_log(t.path());
    let out = t.path().join("my ev'idence");
    let mut child = cli::leak(&mock, &out, &bot, &[]).spawn();
    // Wait until containment is done and the key is being polled (the key is never
    // deleted here, so the run would wait a minute).
    let contained = child.wait_for(|| {
        run_dir::bundle(&out).is_some_and(|d| run_dir::step_ended(&d, "cancel_orders"))
    });
    assert!(contained, "the run ended early or no cancel after 60 s");
    let dir = run_dir::bundle(&out).unwrap();
    child.signal(signal);
    let ran = child.finish();
    assert_eq!(
        ran.code,
        Some(code),
        "SIG{signal}\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run_interrupted", "SIG{signal}: {last}");
    assert_eq!(last["data"]["signal"], format!("SIG{signal}"));
    let quoted = format!("'{}'", dir.display().to_string().replace('\'', r"'\''"));
    let line = format!("resume:    respond resume {quoted}");
    assert!(
        ran.stdout.contains(&line),
        "SIG{signal}: no `{line}` in\n{}",
        ran.stdout
    );
    // The printed command, as a shell reads it, resumes and completes the run.
    mock.revoke();
    let o = cli::resume(&mock, &dir).run();
    assert_eq!(o.code, Some(0), "resume after SIG{signal}\n{}", o.stderr);
}
