//! The mock exchange for tests that drive the `respond` binary: served on loopback from its
//! own small runtime (so a test thread can block on a child process while it answers), with
//! the scenario's keys, the user's console actions (`/_mock/` revoke) and readers of its
//! request log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use respond::mock::upbit::Upbit;
use respond::mock::{self, KeyInfo, MockOptions, MockServer, Scenario, Venue};

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
