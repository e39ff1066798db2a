//! Conformance: ccxt's `upbit` class (an independent client from PyPI) drives the mock over
//! loopback. The virtual environment lives in `target/ccxt-venv` (created with `python3 -m
//! venv` and `pip install ccxt` when missing; `.ci/run` installs it). If it cannot be set up
//! the test fails with a clear message instead of passing silently. Keys go to the script
//! through the environment, never argv.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use respond::mock::upbit::Upbit;
use respond::mock::{self, MockOptions, Venue};

fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("CCXT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/ccxt-venv"));
    let py = venv.join("bin/python");
    let has_ccxt = |py: &PathBuf| {
        Command::new(py)
            .args(["-c", "import ccxt"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if py.exists() && has_ccxt(&py) {
        return py;
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "cannot create the ccxt virtual environment at {}: is python3 with venv installed?",
        venv.display()
    );
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "ccxt"])
        .status();
    assert!(
        pip.is_ok_and(|s| s.success()) && has_ccxt(&py),
        "cannot `pip install ccxt` into {} (no package registry?). The conformance test needs \
         it: run `python3 -m venv target/ccxt-venv && target/ccxt-venv/bin/pip install ccxt`",
        venv.display()
    );
    py
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccxt_upbit_drives_the_mock() {
    let py = tokio::task::spawn_blocking(venv_python).await.unwrap();
    let sc = mock::scenario::load("blank", None).unwrap();
    let ex = Venue::new(
        &Upbit,
        sc,
        MockOptions {
            live_attacker: false,
            ..MockOptions::default()
        },
    )
    .unwrap();
    let key = ex.key("bot").unwrap().clone();
    let server = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Upbit), ex.clone())
        .await
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/ccxt_upbit.py");
    let out = tokio::process::Command::new(py)
        .arg(script)
        .arg(&server.url)
        .env("MOCK_ACCESS_KEY", &key.access_key)
        .env("MOCK_SECRET_KEY", &key.secret_key)
        .output()
        .await
        .expect("runs the script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ccxt conformance failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"].as_array().unwrap().len(), 9);
    // The script's writes reached the mock exactly once each.
    let log = ex.requests();
    let posts = log
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/orders")
        .count();
    assert_eq!(posts, 2);
    let cancels: usize = log.iter().map(|r| r.orders_cancelled.len()).sum();
    assert_eq!(cancels, 1);
    server.shutdown().await.unwrap();
}
