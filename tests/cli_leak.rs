//! `respond leak` refuses bad input before it touches the exchange or creates a bundle:
//! a malformed bot log (file:line), missing credentials, a loose credentials file, plain http
//! to a remote host. Each is exit 2 with a hint, and no evidence directory appears.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn leak(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_respond"));
    c.current_dir(dir)
        .args(["leak", "--exchange", "upbit", "--out", "ev"])
        .args(extra);
    for k in [
        "UPBIT_ACCESS_KEY",
        "UPBIT_SECRET_KEY",
        "UPBIT_READONLY_ACCESS_KEY",
        "UPBIT_READONLY_SECRET_KEY",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn malformed_bot_log_is_refused_with_its_line_before_anything_runs() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("bot.csv"),
        "order_id,identifier,market,side,ord_type,created_at,price,volume\n\
         a1,grid-1,KRW-BTC,bid,limit,2026-11-20T00:00:00Z,100,1\n\
         a2,grid-2,KRW-BTC,sideways,limit,2026-11-20T00:01:00Z,100,1\n",
    )
    .unwrap();
    let o = leak(
        t.path(),
        &["--bot-log", "bot.csv"],
        &[
            ("UPBIT_ACCESS_KEY", "k"),
            ("UPBIT_SECRET_KEY", "canary-secret-value-123"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bot.csv:3"), "{}", stderr(&o));
    assert!(
        !t.path().join("ev").exists(),
        "no bundle may be created for bad input"
    );
}

#[test]
fn missing_credentials_are_a_usage_error_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    let o = leak(t.path(), &[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("UPBIT_ACCESS_KEY"), "{}", stderr(&o));
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
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("canary-secret-loose-file"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("canary-secret-loose-file"));
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
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("loopback") || stderr(&o).contains("http"),
        "{}",
        stderr(&o)
    );
    assert!(!t.path().join("ev").exists());
}

#[test]
fn a_bad_window_is_a_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let o = leak(t.path(), &["--since", "7 parsecs"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = leak(t.path(), &["--from", "yesterday", "--to", "today"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RFC 3339"), "{}", stderr(&o));
}
