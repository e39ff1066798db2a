//! Issue 18's comparison: respond's closed-order export against the natural ccxt loop, on the
//! same Upbit mock with its rate limits on. Run: `cargo bench --bench export_vs_ccxt`
//! (`EXPORT_BENCH_ORDERS=100000,1000000` picks the sizes; the default, 20,000, takes seconds).
//!
//! The mock runs in its OWN process, `respond mock serve --exchange upbit --scenario FILE`
//! (the release binary of this build), holding a victim whose bot placed N orders over six
//! days, so each client's memory is measured apart from the stored orders. Then, one after
//! the other against that mock:
//! - respond: `exchange.export_history` of the last seven days (closed orders only, the same
//!   playbook and call `benches/export.rs` uses), in this process, whose allocator is set up
//!   as the `respond` binary sets its own (`respond::memory`); its peak RSS is this
//!   process's high-water mark, reset just before (`/proc/self/clear_refs`);
//! - ccxt: `upbit.fetch_closed_orders` and then `fetch_canceled_orders` (Upbit's closed list is
//!   `done` and `cancel`; ccxt asks one state per call), 1,000 a page, each paging backwards
//!   by time the way a user writes it: `until` = the oldest order's time of the page (the
//!   boundary second is asked again and de-duplicated by id), until a short page. ccxt's
//!   default options (its own throttle on); a rate-limit refusal is retried after a second.
//!   It keeps the orders in a dict, as such a loop does. Venv: `target/ccxt-venv` (as the
//!   conformance tests set it up); the ccxt side is skipped with a notice when it cannot be.
//!
//! Printed per size: wall seconds, requests to `/v1/orders/closed`, orders each side got,
//! respond's speed-up (ccxt wall / respond wall; the goal is ≥ 1.5), each side's peak RSS,
//! and the mock's own peak RSS. Keys reach the ccxt script through its environment only.
//! `EXPORT_BENCH_CCXT=0` skips the ccxt side (respond's figures alone, e.g. its memory).

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use respond::output::{Printer, Verbosity};
use respond::session::run_new;

fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The bot's N orders over six days on two markets (the scenario `benches/export.rs` uses).
fn scenario_yaml(orders: usize) -> String {
    common::bot_scenario_yaml("export-vs-ccxt", "export comparison", orders)
}

/// The natural ccxt loop. Prints one JSON line: orders, requests, 429 retries, peak RSS.
const CCXT_LOOP: &str = r#"
import json, os, re, resource, sys, time
import ccxt

ex = ccxt.upbit({"apiKey": os.environ["MOCK_KEY"], "secret": os.environ["MOCK_SECRET"]})
ex.urls["api"] = {k: re.sub(r"^https://[^/]+", sys.argv[1], v) for k, v in ex.urls["api"].items()}
since = ex.milliseconds() - 7 * 86400 * 1000
orders, requests, retries = {}, 0, 0
for fetch in (ex.fetch_closed_orders, ex.fetch_canceled_orders):
    until = None
    while True:
        params = {} if until is None else {"until": until}
        try:
            page = fetch(None, None, 1000, params)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            retries += 1
            time.sleep(1)
            continue
        requests += 1
        before = len(orders)
        for o in page:
            orders[o["id"]] = o
        if len(page) < 1000:
            break
        oldest = min(o["timestamp"] for o in page)
        until = oldest if len(orders) > before else oldest - 1
        if until < since:
            break
print(json.dumps({"orders": len(orders), "requests": requests, "retries": retries,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"#;

/// The venv's python with ccxt (as `tests/it/mock_conformance.rs` sets it up); why not.
fn ccxt_python(root: &Path) -> Result<PathBuf, String> {
    let venv = std::env::var_os("CCXT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/ccxt-venv"));
    common::python_with(&venv, "ccxt")
}

/// `respond mock serve` as a child; its URL and the bot's key from its JSON line.
struct MockChild {
    child: Child,
    url: String,
    access: String,
    secret: String,
}

impl MockChild {
    fn start(scenario: &Path) -> MockChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_respond"))
            .args([
                "mock",
                "serve",
                "--exchange",
                "upbit",
                "--addr",
                "127.0.0.1:0",
            ])
            .arg("--scenario")
            .arg(scenario)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("respond mock serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the mock's JSON line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        let bot = v["keys"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["label"] == "bot"))
            .expect("the bot's key");
        MockChild {
            url: v["url"].as_str().expect("url").to_string(),
            access: bot["access_key"].as_str().expect("key").to_string(),
            secret: bot["secret_key"].as_str().expect("secret").to_string(),
            child,
        }
    }

    /// Closed-order requests the mock has logged (its drill API), and its peak RSS.
    async fn closed_requests(&self) -> usize {
        let v: serde_json::Value = reqwest::get(format!("{}/_mock/requests", self.url))
            .await
            .expect("request log")
            .json()
            .await
            .expect("JSON");
        let list = v["requests"].as_array().or(v.as_array()).cloned();
        list.unwrap_or_default()
            .iter()
            .filter(|r| r["path"] == "/v1/orders/closed")
            .count()
    }

    fn peak_mib(&self) -> u64 {
        status_kib(&self.child.id().to_string(), "VmHWM:") / 1024
    }
}

impl Drop for MockChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// respond's export against the mock: (wall seconds, orders exported, peak RSS MiB).
async fn respond_export(mock: &MockChild) -> (f64, u64, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let pb = tmp.path().join("playbook.yaml");
    std::fs::write(&pb, common::EXPORT_PLAYBOOK).unwrap();
    let settings = common::settings(pb, tmp.path().join("evidence"));
    let conn = common::connection("upbit", &mock.url, &mock.access, &mock.secret, None);
    // The high-water mark from here on (5: reset the peak RSS).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let report = run_new(settings, &conn, &Printer::plain(Verbosity::Quiet))
        .await
        .expect("run starts");
    let wall = t.elapsed().as_secs_f64();
    assert!(report.ok, "export run ok");
    let out = &report.step("export").expect("export step").outputs;
    let n = out["closed_order_count"].as_u64().unwrap_or(0);
    (wall, n, status_kib("self", "VmHWM:") / 1024)
}

/// The ccxt loop against the mock: (wall seconds, its JSON summary).
fn ccxt_loop(py: &Path, mock: &MockChild, dir: &Path) -> (f64, serde_json::Value) {
    let script = dir.join("ccxt_loop.py");
    std::fs::write(&script, CCXT_LOOP).unwrap();
    let t = Instant::now();
    let out = Command::new(py)
        .arg(&script)
        .arg(&mock.url)
        .env("MOCK_KEY", &mock.access)
        .env("MOCK_SECRET", &mock.secret)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let wall = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the ccxt loop failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("summary line");
    (wall, v)
}

async fn compare(orders: usize, py: Option<&Path>) {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("scenario.yaml");
    std::fs::write(&sc, scenario_yaml(orders)).unwrap();
    let t = Instant::now();
    let mock = MockChild::start(&sc);
    println!(
        "{orders} orders: the mock (its own process) started in {:.1} s, peak {} MiB",
        t.elapsed().as_secs_f64(),
        mock.peak_mib()
    );
    let (r_wall, r_orders, r_peak) = respond_export(&mock).await;
    let r_req = mock.closed_requests().await;
    println!(
        "  respond export: {r_wall:>8.2} s, {r_req:>6} requests, {r_orders:>8} orders, peak {r_peak} MiB"
    );
    let Some(py) = py else {
        return;
    };
    // A fresh second for the rate limiter.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c_wall, v) = ccxt_loop(py, &mock, dir.path());
    let c_req = mock.closed_requests().await - r_req;
    println!(
        "  ccxt loop:      {c_wall:>8.2} s, {c_req:>6} requests, {:>8} orders, peak {} MiB, {} rate-limit retries",
        v["orders"],
        v["peak_kib"].as_u64().unwrap_or(0) / 1024,
        v["retries"]
    );
    println!(
        "  respond is {:.2}x the ccxt loop's speed (goal >= 1.5); the mock's peak {} MiB",
        c_wall / r_wall,
        mock.peak_mib()
    );
}

fn main() {
    // respond's export runs in this process: its allocator set up as `respond` sets its own.
    respond::memory::fix_mmap_threshold();
    let sizes: Vec<usize> = std::env::var("EXPORT_BENCH_ORDERS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![20_000]);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let skip = std::env::var("EXPORT_BENCH_CCXT").is_ok_and(|v| v == "0");
    let py = match if skip {
        Err("EXPORT_BENCH_CCXT=0".to_string())
    } else {
        ccxt_python(&root)
    } {
        Ok(p) => Some(p),
        Err(why) => {
            println!("notice: the ccxt side is skipped: {why}");
            None
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("closed-order export vs the natural ccxt loop, Upbit mock with its rate limits");
    rt.block_on(async {
        for &n in &sizes {
            compare(n, py.as_deref()).await;
        }
    });
}
