//! The mock exchange in tests: [`serve`]d in-process on a loopback port of the test's own
//! runtime (real HTTP, the router of `respond mock serve`), or, for tests that drive the
//! `respond` binary, a [`Mock`] on its own small runtime (so a test thread can block on a child
//! process while it answers). Both come with the user's console action (`/_mock/` revoke) and a
//! look at the victim's open orders through the read-only key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use respond::exchange::upbit::{UpbitClient, UpbitConfig};
use respond::exchange::Exchange;
use respond::exit::Failure;
use respond::mock::upbit::Upbit;
use respond::mock::{self, KeyInfo, MockOptions, MockServer, Scenario, Venue};
use respond::secret::Secret;
use respond::session::{run_new, Connection, RunSettings};

/// Serves `scenario` on `127.0.0.1:0` from the current runtime.
pub async fn serve(scenario: Scenario, opts: MockOptions) -> MockServer {
    let state = Venue::new(&Upbit, scenario, opts).expect("the scenario fits the upbit mock");
    mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Upbit), state)
        .await
        .expect("bind the mock")
}

/// A victim on two markets (KRW-BTC, KRW-XRP) with ample balances and one trading key, `bot`,
/// whose bot placed `per_day` orders a day for `days` days and left `open` resting.
pub fn two_markets(name: &str, days: u32, per_day: u32, open: usize) -> Scenario {
    let yaml = mock::scenario::SyntheticVictim {
        name,
        description: "a victim trading two markets",
        seed: 5,
        days,
        orders_per_day: per_day as usize,
        open_orders: open,
        readonly_key: false,
    }
    .yaml();
    mock::scenario::parse(&format!("{name}.yaml"), &yaml, None).expect("scenario parses")
}

/// Serves the built-in scenario `name`.
pub async fn serve_builtin(name: &str, opts: MockOptions) -> MockServer {
    serve(mock::load(name, None).expect("built-in scenario"), opts).await
}

/// The user deletes `access_key` in the web console: `POST /_mock/keys/{key}/revoke`.
pub async fn revoke(url: &str, access_key: &str) {
    let r = reqwest::Client::new()
        .post(format!("{url}/_mock/keys/{access_key}/revoke"))
        .send()
        .await
        .expect("revoke request");
    assert!(r.status().is_success(), "drill API revoke: {}", r.status());
}

/// The ids of the open orders `key` sees, sorted (a read: nothing is recorded).
pub async fn open_orders(url: &str, key: &KeyInfo) -> Vec<String> {
    let mut cfg = UpbitConfig::new(key.access_key.clone(), Secret::new(key.secret_key.clone()));
    cfg.base_url = Some(url.to_string());
    open_order_ids(&UpbitClient::new(cfg).unwrap()).await
}

/// The ids of the open orders an adapter lists, sorted.
pub async fn open_order_ids(c: &dyn Exchange) -> Vec<String> {
    let mut ids: Vec<String> = c
        .open_orders()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    ids.sort();
    ids
}

/// The pinned "now" of the mock's end-to-end tests: 2026-11-20 18:30 UTC (03:30 KST).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-20T18:30:00Z".parse().unwrap()
}

/// Mock options for end-to-end tests: the clock pinned at [`now`], no live attacker.
pub fn opts() -> MockOptions {
    MockOptions {
        now: Some(now()),
        live_attacker: false,
        ..MockOptions::default()
    }
}

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
        let server = rt.block_on(serve(scenario, opts));
        Mock {
            url: server.url.clone(),
            state: server.state.clone(),
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
        self.rt
            .block_on(revoke(&self.url, &self.key("bot").access_key));
    }

    /// The victim's open orders now, read with the read-only key.
    pub fn open_orders(&self) -> Vec<String> {
        self.rt
            .block_on(open_orders(&self.url, &self.key("readonly")))
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

/// Runs `playbook` as `respond leak` would (non-interactive, `--yes`, quiet) against the mock
/// at `url`, with `key` as the only key, its output under `out`.
pub async fn run_playbook(
    url: &str,
    key: &KeyInfo,
    playbook: &Path,
    inputs: BTreeMap<String, String>,
    bot_logs: respond::cli::BotLogArgs,
    out: PathBuf,
) -> Result<respond::engine::RunReport, Failure> {
    run_playbook_on("upbit", url, key, playbook, inputs, bot_logs, out).await
}

/// [`run_playbook`] against the mock's `exchange` façade (`upbit`, `binance`, …).
pub async fn run_playbook_on(
    exchange: &str,
    url: &str,
    key: &KeyInfo,
    playbook: &Path,
    inputs: BTreeMap<String, String>,
    bot_logs: respond::cli::BotLogArgs,
    out: PathBuf,
) -> Result<respond::engine::RunReport, Failure> {
    let playbook = Some(playbook.to_path_buf());
    run_on(exchange, url, key, playbook, inputs, bot_logs, out).await
}

/// The default leak playbook, run as [`run_playbook`] runs one, without bot logs.
pub async fn run_leak(
    url: &str,
    key: &KeyInfo,
    inputs: BTreeMap<String, String>,
    out: PathBuf,
) -> Result<respond::engine::RunReport, Failure> {
    run_leak_on("upbit", url, key, inputs, out).await
}

/// [`run_leak`] against the mock's `exchange` façade.
pub async fn run_leak_on(
    exchange: &str,
    url: &str,
    key: &KeyInfo,
    inputs: BTreeMap<String, String>,
    out: PathBuf,
) -> Result<respond::engine::RunReport, Failure> {
    let no_logs = respond::cli::BotLogArgs::default();
    run_on(exchange, url, key, None, inputs, no_logs, out).await
}

async fn run_on(
    exchange: &str,
    url: &str,
    key: &KeyInfo,
    playbook: Option<PathBuf>,
    inputs: BTreeMap<String, String>,
    bot_logs: respond::cli::BotLogArgs,
    out: PathBuf,
) -> Result<respond::engine::RunReport, Failure> {
    let settings = RunSettings {
        playbook,
        inputs,
        bot_logs,
        out,
        dry_run: false,
        assume_yes: true,
        interactive: false,
        rerun: None,
    };
    let conn = Connection {
        exchange: exchange.into(),
        api_url: Some(url.to_string()),
        primary: Some(respond::credentials::KeyPair {
            access_key: key.access_key.clone(),
            secret_key: Secret::new(key.secret_key.clone()),
            passphrase: key.passphrase.clone().map(Secret::new),
        }),
        readonly: None,
        master: None,
    };
    run_new(
        settings,
        &conn,
        &respond::output::Printer::plain(respond::output::Verbosity::Quiet),
    )
    .await
}

/// The requests of the mock's log made with `key` to `path`.
pub fn calls<'a>(
    log: &'a [mock::RequestRecord],
    key: &str,
    path: &str,
) -> Vec<&'a mock::RequestRecord> {
    log.iter()
        .filter(|r| r.access_key.as_deref() == Some(key) && r.path == path)
        .collect()
}
