//! The mock Upbit exchange used by drills, tests and `respond mock serve`.
//!
//! One [`MockExchange`] holds a scenario's world behind a mutex; [`router`] turns it into an
//! axum router (the same one in-process and on the command line) and [`serve`] binds it.
//! The drill-only API under `/_mock/` (revoke a key, ground truth, state, faults, request log)
//! is what a drill or a test uses to play the user's web-console part and to score a run.
//!
//! Layout: [`scenario`] (YAML), [`history`] (generated past and ground truth), [`matching`]
//! (books, liquidity provider, reference prices), [`state`] (the world), [`auth`] (JWT and
//! query hash), [`ratelimit`], [`faults`], [`wire`] (Upbit's JSON shapes), [`server`]
//! (routes and handlers), [`live`] (the attacker who keeps trading until the key is revoked).

pub mod auth;
pub mod faults;
pub mod history;
pub mod live;
pub mod matching;
pub mod ratelimit;
pub mod scenario;
pub mod server;
pub mod state;
pub mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use history::{BotLogRow, BOT_LOG_HEADER};
pub use scenario::{load, Scenario, ScenarioError};
pub use server::router;
pub use state::{GroundTruth, RequestRecord};

/// Run-time options that are not part of the scenario.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Serve the `/_mock/` API (off with `--no-drill-api`).
    pub drill_api: bool,
    /// Status for `out_of_scope`: 403 (current docs) or 401 (older docs).
    pub out_of_scope_status: u16,
    /// Fixed "now" (overrides the scenario's); default: real time rounded down to the minute.
    pub now: Option<DateTime<Utc>>,
    /// Start the live attacker when the scenario enables it (tests may turn it off).
    pub live_attacker: bool,
    /// How long a nonce is remembered per key.
    pub nonce_window: Duration,
    /// Enforce rate limits (the benchmark turns them off to measure raw throughput).
    pub rate_limits: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            drill_api: true,
            out_of_scope_status: 403,
            now: None,
            live_attacker: true,
            nonce_window: Duration::from_secs(60),
            rate_limits: true,
        }
    }
}

/// Upper bound on remembered nonces (memory stays flat under load).
pub const NONCE_CAP: usize = 500_000;

/// A key as `respond mock serve` lists it on its first stdout line.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub account: String,
    pub label: String,
    pub access_key: String,
    pub secret_key: String,
    pub scopes: Vec<String>,
}

/// Authentication and rate-limit state (separate lock from the world).
pub struct Gate {
    pub nonces: auth::NonceStore,
    pub limiter: ratelimit::Limiter,
}

/// The mock exchange.
pub struct MockExchange {
    pub scenario: Scenario,
    pub opts: MockOptions,
    pub markets: matching::Markets,
    /// The scenario's "now": history ends here.
    pub scenario_now: DateTime<Utc>,
    clock_offset: chrono::Duration,
    world: Mutex<state::World>,
    gate: Mutex<Gate>,
    faults: Mutex<faults::Faults>,
    bot_log: Vec<BotLogRow>,
    keys: Vec<KeyInfo>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockExchange {
    /// Builds the world from a scenario: accounts, keys, generated history and ground truth.
    pub fn new(scenario: Scenario, opts: MockOptions) -> Arc<MockExchange> {
        let now = history::scenario_now(&scenario, opts.now);
        let real = Utc::now();
        // With a fixed past "now" the clock runs from it; otherwise it is the real clock.
        let clock_offset = if opts.now.is_some() || scenario.now.is_some() {
            now - real
        } else {
            chrono::Duration::zero()
        };
        let markets = matching::Markets {
            specs: scenario.markets.clone(),
            seed: scenario.seed,
            anchor: now,
            fee: scenario.fee,
        };
        let mut world = state::World::default();
        let bot_log = history::build(&scenario, &markets, now, &mut world);
        let mut keys: Vec<KeyInfo> = scenario
            .keys
            .iter()
            .filter_map(|k| {
                world
                    .keys
                    .values()
                    .find(|r| r.label == k.label)
                    .map(|r| KeyInfo {
                        account: r.account.clone(),
                        label: r.label.clone(),
                        access_key: r.access_key.clone(),
                        secret_key: r.secret_key.clone(),
                        scopes: r.scopes.clone(),
                    })
            })
            .collect();
        keys.dedup_by(|a, b| a.access_key == b.access_key);
        let faults = faults::Faults::new(scenario.faults.clone(), scenario.seed);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        Arc::new(MockExchange {
            opts: opts.clone(),
            markets,
            scenario_now: now,
            clock_offset,
            world: Mutex::new(world),
            gate: Mutex::new(Gate {
                nonces: auth::NonceStore::new(opts.nonce_window, NONCE_CAP),
                limiter: ratelimit::Limiter::default(),
            }),
            faults: Mutex::new(faults),
            bot_log,
            keys,
            shutdown,
            scenario,
        })
    }

    /// The mock's clock (real time, shifted when the scenario fixes "now").
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// The keys of the scenario, in scenario order.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    /// A key by its label.
    pub fn key(&self, label: &str) -> Option<&KeyInfo> {
        self.keys.iter().find(|k| k.label == label)
    }

    /// The bot's own log, as rows.
    pub fn bot_log(&self) -> &[BotLogRow] {
        &self.bot_log
    }

    /// The bot's own log in the generic bot-log CSV format.
    pub fn bot_log_csv(&self) -> String {
        history::bot_log_csv(&self.bot_log)
    }

    /// What really happened (grows while the live attacker trades).
    pub fn ground_truth(&self) -> GroundTruth {
        lock(&self.world).truth.clone()
    }

    /// When an order was created (drills score how many attacker orders got through after
    /// the run started).
    pub fn order_created_at(&self, uuid: &uuid::Uuid) -> Option<DateTime<Utc>> {
        lock(&self.world).order(uuid).map(|o| o.created_at)
    }

    /// The request log (most recent [`state::REQUEST_LOG_CAP`] requests).
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.world).requests.iter().cloned().collect()
    }

    /// Revokes a key the way the user does in the web console. False when unknown.
    pub fn revoke_key(&self, access_key: &str) -> bool {
        let now = self.now();
        let mut w = lock(&self.world);
        let revoked = match w.keys.get_mut(access_key) {
            Some(k) => {
                if k.revoked_at.is_none() {
                    k.revoked_at = Some(now);
                }
                true
            }
            None => false,
        };
        if revoked && w.truth.leaked_access_key == access_key && w.truth.revoked_at.is_none() {
            w.truth.revoked_at = Some(crate::engine::journal::ts(now));
        }
        revoked
    }

    /// Replaces the active fault rules.
    pub fn set_faults(&self, rules: Vec<faults::FaultRule>) {
        lock(&self.faults).set(rules);
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, state::World> {
        lock(&self.world)
    }
    pub(crate) fn gate(&self) -> MutexGuard<'_, Gate> {
        lock(&self.gate)
    }
    pub(crate) fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        lock(&self.faults)
    }
    pub(crate) fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// A running server.
pub struct MockServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    pub state: Arc<MockExchange>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    live: Option<tokio::task::JoinHandle<()>>,
}

impl MockServer {
    /// Stops accepting, finishes in-flight requests (pending injected timeouts are released)
    /// and stops the live attacker.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.state.shutdown.send(true);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(l) = self.live.take() {
            l.abort();
        }
        match self.join.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

/// Binds `addr` and serves the mock in the background (use `127.0.0.1:0` for a free port).
/// Starts the live attacker when the scenario and options enable it.
pub async fn serve(addr: SocketAddr, state: Arc<MockExchange>) -> std::io::Result<MockServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    let live = live::spawn(&state);
    Ok(MockServer {
        url: format!("http://{addr}"),
        addr,
        state,
        stop: Some(stop),
        join,
        live,
    })
}
