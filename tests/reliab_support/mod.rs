//! Shared harness of the reliability suites (faults, crash/resume, secrets, untrusted data):
//! an in-process mock exchange on its own runtime, the `respond` binary driven with
//! credentials in the ENVIRONMENT (never argv), and readers for what a run leaves behind
//! (bundle directory, `orders.csv`, journal, the mock's request log).
//!
//! The binary (not the library) is what these suites run, because what they check is what a
//! user gets: exit codes, printed messages, a process that can be SIGKILLed.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use respond::mock::upbit::Upbit;
use respond::mock::{self, KeyInfo, MockOptions, MockServer, Scenario, Venue};

pub const BIN: &str = env!("CARGO_BIN_EXE_respond");

/// A mock exchange served on loopback from its own small runtime.
pub struct Mock {
    pub rt: tokio::runtime::Runtime,
    server: Option<MockServer>,
    pub url: String,
    pub state: Arc<Venue>,
}

impl Mock {
    pub fn start(scenario: Scenario, opts: MockOptions) -> Mock {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Venue::new(&Upbit, scenario, opts).expect("the scenario fits the upbit mock");
        let server = rt
            .block_on(mock::serve(
                "127.0.0.1:0".parse().unwrap(),
                Arc::new(Upbit),
                state.clone(),
            ))
            .expect("bind the mock");
        Mock {
            url: server.url.clone(),
            state,
            server: Some(server),
            rt,
        }
    }

    /// The built-in `pump-and-dump` scenario with the given options.
    pub fn pump_and_dump(opts: MockOptions) -> Mock {
        Mock::start(mock::load("pump-and-dump", None).expect("scenario"), opts)
    }

    pub fn key(&self, label: &str) -> KeyInfo {
        self.state.key(label).expect("key label").clone()
    }

    /// The user deletes the leaked key in the web console: `POST /_mock/keys/{key}/revoke`.
    pub fn revoke(&self) {
        let url = format!(
            "{}/_mock/keys/{}/revoke",
            self.url,
            self.key("bot").access_key
        );
        let status = self
            .rt
            .block_on(async { reqwest::Client::new().post(url).send().await })
            .expect("revoke request")
            .status();
        assert!(status.is_success(), "revoke answered {status}");
    }

    /// Writes the bot's own log where `respond leak --bot-log` reads it.
    pub fn write_bot_log(&self, dir: &Path) -> PathBuf {
        let p = dir.join("bot.csv");
        std::fs::write(&p, self.state.bot_log_csv()).unwrap();
        p
    }

    /// Uuids of every order the mock cancelled, in request order (duplicates kept).
    pub fn cancelled(&self) -> Vec<String> {
        self.state
            .requests()
            .iter()
            .flat_map(|r| r.orders_cancelled.iter().map(|u| u.to_string()))
            .collect()
    }

    /// Write requests (anything but GET) sent with the victim's keys, as `METHOD path status`.
    pub fn victim_writes(&self) -> Vec<String> {
        let keys: BTreeSet<String> = ["bot", "readonly"]
            .iter()
            .map(|l| self.key(l).access_key)
            .collect();
        self.state
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .filter(|r| r.access_key.as_ref().is_some_and(|k| keys.contains(k)))
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}

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

/// The one bundle directory under `out` (None before the run created it).
pub fn bundle(out: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Lines of the bundle's journal so far.
pub fn journal_lines(dir: &Path) -> usize {
    std::fs::read(dir.join("journal.jsonl"))
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// Whether the journal records the end of `step`.
pub fn step_ended(dir: &Path, step: &str) -> bool {
    let needle = format!("\"event\":\"step_end\",\"data\":{{\"step\":\"{step}\"");
    std::fs::read_to_string(dir.join("journal.jsonl")).is_ok_and(|j| j.contains(&needle))
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

/// `order_id` column of a bundle CSV.
pub fn csv_column(path: &Path, column: &str) -> Vec<String> {
    let Ok(mut r) = csv::Reader::from_path(path) else {
        return vec![];
    };
    let idx = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("{}: no column {column}", path.display()));
    r.records()
        .map(|rec| rec.unwrap().get(idx).unwrap_or_default().to_string())
        .collect()
}

/// Ground-truth attacker orders absent from the bundle's `orders.csv`.
pub fn missing_attacker_orders(mock: &Mock, dir: &Path) -> Vec<String> {
    let have: BTreeSet<String> = csv_column(&dir.join("orders.csv"), "order_id")
        .into_iter()
        .collect();
    mock.state
        .ground_truth()
        .attacker_order_uuids
        .iter()
        .map(|u| u.to_string())
        .filter(|u| !have.contains(u))
        .collect()
}

/// What the final analysis found: flagged order ids and the loss estimate, for comparing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub flagged: BTreeSet<String>,
    pub orders: usize,
    pub totals: BTreeMap<String, String>,
}

pub fn findings(dir: &Path) -> Findings {
    let flagged = csv_column(&dir.join("unauthorized_trades.csv"), "order_id")
        .into_iter()
        .collect();
    let orders = csv_column(&dir.join("orders.csv"), "order_id").len();
    let analysis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap_or_default())
            .unwrap_or(serde_json::Value::Null);
    let mut totals = BTreeMap::new();
    collect_totals(&analysis, "", &mut totals);
    Findings {
        flagged,
        orders,
        totals,
    }
}

/// The analysis totals an interrupted run must reproduce: counts and the loss estimate
/// (the total, overpayment, withdrawn value and fees; not the change during the response,
/// which depends on when the first snapshot happened to be taken relative to the cancels).
fn collect_totals(v: &serde_json::Value, _at: &str, out: &mut BTreeMap<String, String>) {
    for ptr in [
        "/counts/orders",
        "/counts/fills",
        "/counts/withdrawals",
        "/counts/deposits",
        "/counts/flagged",
        "/loss/total",
        "/loss/overpayment",
        "/loss/withdrawn_value",
        "/loss/fees",
    ] {
        if let Some(x) = v.pointer(ptr) {
            out.insert(ptr.to_string(), x.to_string());
        }
    }
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
