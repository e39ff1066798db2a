//! Conformance: ccxt's `upbit`, `binance`, `bybit`, `coinbase` and `kucoin` classes (an independent client from PyPI) drive
//! the mock over loopback. The virtual environment lives in `target/ccxt-venv` (created with
//! `python3 -m venv` and `pip install ccxt` when missing; `.ci/run` installs it). If it cannot
//! be set up (no Python, no network) each test prints a notice that it skipped, which nextest
//! shows (`.config/nextest.toml`); with `RESPOND_REQUIRE_CCXT=1` (`.ci/run`) that is a
//! failure. Keys go to the scripts through the environment, never argv.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use respond::mock::binance::Binance;
use respond::mock::bybit::Bybit;
use respond::mock::coinbase::Coinbase;
use respond::mock::kucoin::Kucoin;
use respond::mock::upbit::Upbit;
use respond::mock::{self, Facade, MockOptions, Venue};

/// The venv's python with ccxt, set up when missing; why not, when it cannot be.
fn venv_python() -> Result<PathBuf, String> {
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
        return Ok(py);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return Err(format!(
            "cannot create the ccxt virtual environment at {}: is python3 with venv installed?",
            venv.display()
        ));
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "ccxt"])
        .status();
    if !(pip.is_ok_and(|s| s.success()) && has_ccxt(&py)) {
        return Err(format!(
            "cannot `pip install ccxt` into {} (no package registry?): run `python3 -m venv \
             target/ccxt-venv && target/ccxt-venv/bin/pip install ccxt`",
            venv.display()
        ));
    }
    Ok(py)
}

/// The venv's python with ccxt; None (after a notice on stdout) when it cannot be set up and
/// `RESPOND_REQUIRE_CCXT` is not set.
async fn ccxt_or_skip(test: &str) -> Option<PathBuf> {
    match tokio::task::spawn_blocking(venv_python).await.unwrap() {
        Ok(py) => Some(py),
        Err(why) => {
            assert!(
                std::env::var_os("RESPOND_REQUIRE_CCXT").is_none(),
                "RESPOND_REQUIRE_CCXT is set but ccxt cannot be set up: {why}"
            );
            println!("notice: skipping {test}: {why}");
            None
        }
    }
}

/// Runs a conformance script; it must succeed, and its last stdout line is its JSON summary.
async fn run_script(mut cmd: tokio::process::Command) -> serde_json::Value {
    // The scripts import `common.py`: no bytecode cache left in the source tree.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let out = cmd.output().await.expect("runs the script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ccxt conformance failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

/// Serves scenario `blank` through `facade` (no live attacker) and runs the conformance
/// `script` against it with the `bot`, `readonly` and `attacker` keys in the environment
/// (`MOCK_BOT_KEY`, `MOCK_BOT_SECRET`, `MOCK_BOT_PASSPHRASE` where keys have one, …): the venue, the server and the script's summary.
async fn drive(
    py: PathBuf,
    facade: Arc<dyn Facade>,
    script: &str,
) -> (Arc<Venue>, mock::MockServer, serde_json::Value) {
    let sc = mock::scenario::load("blank", None).unwrap();
    let opts = MockOptions {
        live_attacker: false,
        ..MockOptions::default()
    };
    let ex = Venue::new(facade.as_ref(), sc, opts).unwrap();
    let server = mock::serve("127.0.0.1:0".parse().unwrap(), facade, ex.clone())
        .await
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(script);
    let mut cmd = tokio::process::Command::new(py);
    cmd.arg(script).arg(&server.url);
    for (label, var) in [
        ("bot", "BOT"),
        ("readonly", "READONLY"),
        ("attacker", "ATTACKER"),
    ] {
        let k = ex.key(label).unwrap();
        cmd.env(format!("MOCK_{var}_KEY"), &k.access_key)
            .env(format!("MOCK_{var}_SECRET"), &k.secret_key);
        if let Some(p) = &k.passphrase {
            cmd.env(format!("MOCK_{var}_PASSPHRASE"), p);
        }
    }
    let v = run_script(cmd).await;
    (ex, server, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccxt_upbit_drives_the_mock() {
    let Some(py) = ccxt_or_skip("ccxt_upbit_drives_the_mock").await else {
        return;
    };
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
    let mut cmd = tokio::process::Command::new(py);
    cmd.arg(script)
        .arg(&server.url)
        .env("MOCK_ACCESS_KEY", &key.access_key)
        .env("MOCK_SECRET_KEY", &key.secret_key);
    let v = run_script(cmd).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccxt_binance_drives_the_mock() {
    let Some(py) = ccxt_or_skip("ccxt_binance_drives_the_mock").await else {
        return;
    };
    let (ex, server, v) = drive(py, Arc::new(Binance), "ccxt_binance.py").await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"].as_array().unwrap().len(), 14, "{v}");
    // The writes reached the mock once each: five orders, three cancelled (one alone, two by
    // symbol), and the attacker's key revoked.
    let log = ex.requests();
    let posts = log
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v3/order" && r.status == 200)
        .count();
    assert_eq!(posts, 4, "three limit orders and the market buy");
    let cancels: usize = log.iter().map(|r| r.orders_cancelled.len()).sum();
    assert_eq!(cancels, 3);
    assert!(log
        .iter()
        .any(|r| r.path == "/sapi/v1/capital/config/getall" && r.status == 200));
    assert!(log.iter().any(|r| r.status == 429) && log.iter().any(|r| r.status == 418));
    assert!(ex.world().keys[&ex.key("attacker").unwrap().access_key].is_revoked());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccxt_bybit_drives_the_mock() {
    let Some(py) = ccxt_or_skip("ccxt_bybit_drives_the_mock").await else {
        return;
    };
    let (ex, server, v) = drive(py, Arc::new(Bybit), "ccxt_bybit.py").await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"].as_array().unwrap().len(), 14, "{v}");
    // The writes reached the mock once each: four orders, three cancelled (one alone, two
    // by cancel-all), and both keys gone (the attacker's revoked, the bot's deleted itself).
    let log = ex.requests();
    let placed = log
        .iter()
        .filter(|r| r.path == "/v5/order/create" && r.error.is_none())
        .count();
    assert_eq!(placed, 4, "three limit orders and the market buy");
    let cancels: usize = log.iter().map(|r| r.orders_cancelled.len()).sum();
    assert_eq!(cancels, 3);
    assert!(log
        .iter()
        .any(|r| r.path == "/v5/asset/coin/query-info" && r.error.is_none()));
    assert!(log.iter().any(|r| r.error.as_deref() == Some("10006")));
    let revoked = |label: &str| ex.world().keys[&ex.key(label).unwrap().access_key].is_revoked();
    assert!(revoked("attacker") && revoked("bot"));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccxt_coinbase_drives_the_mock() {
    let Some(py) = ccxt_or_skip("ccxt_coinbase_drives_the_mock").await else {
        return;
    };
    let (ex, server, v) = drive(py, Arc::new(Coinbase), "ccxt_coinbase.py").await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"].as_array().unwrap().len(), 14, "{v}");
    // The writes reached the mock once each: four orders placed, three cancelled (one alone,
    // two in one batch), and the attacker's key revoked.
    let log = ex.requests();
    let placed: usize = log
        .iter()
        .filter(|r| r.path == "/api/v3/brokerage/orders")
        .map(|r| r.orders_created.len())
        .sum();
    assert_eq!(placed, 4, "three limit orders and the market buy");
    let cancels: usize = log.iter().map(|r| r.orders_cancelled.len()).sum();
    assert_eq!(cancels, 3);
    assert!(log
        .iter()
        .any(|r| r.path.ends_with("/transactions") && r.error.is_none()));
    assert!(log.iter().any(|r| r.status == 429));
    assert!(log.iter().any(|r| r.status == 403));
    assert!(ex.world().keys[&ex.key("attacker").unwrap().access_key].is_revoked());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccxt_kucoin_drives_the_mock() {
    let Some(py) = ccxt_or_skip("ccxt_kucoin_drives_the_mock").await else {
        return;
    };
    let (ex, server, v) = drive(py, Arc::new(Kucoin), "ccxt_kucoin.py").await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"].as_array().unwrap().len(), 15, "{v}");
    // The writes reached the mock once each: four HF orders (two cancelled alone or by
    // cancel-all, one more by cancel-all, the market buy filled) and one stop order
    // cancelled by the stop cancel-all; the attacker's key is revoked.
    let log = ex.requests();
    let placed = |method: &str, path: &str| {
        log.iter()
            .filter(|r| r.method == method && r.path == path && r.error.is_none())
            .count()
    };
    assert_eq!(placed("POST", "/api/v1/hf/orders"), 4);
    assert_eq!(placed("POST", "/api/v1/stop-order"), 1);
    assert_eq!(placed("DELETE", "/api/v1/stop-order/cancel"), 1);
    assert_eq!(placed("DELETE", "/api/v1/hf/orders/cancelAll"), 1);
    let cancels: usize = log.iter().map(|r| r.orders_cancelled.len()).sum();
    assert_eq!(cancels, 3);
    assert!(placed("GET", "/api/v3/currencies") >= 1);
    for code in ["400003", "400004", "400005", "400007", "429000"] {
        assert!(
            log.iter().any(|r| r.error.as_deref() == Some(code)),
            "{code} answered"
        );
    }
    assert!(ex.world().keys[&ex.key("attacker").unwrap().access_key].is_revoked());
    server.shutdown().await.unwrap();
}
