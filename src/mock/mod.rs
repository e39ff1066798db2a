//! The mock exchange used by drills, tests and `respond mock serve`: an exchange-neutral
//! [`venue`] behind a per-exchange [`Facade`].
//!
//! The venue holds a scenario's world (accounts, markets, matching, history, keys, faults,
//! ground truth, the live attacker); a façade speaks one exchange's REST API over it (routes,
//! authentication, wire format, error names, rate-limit headers). [`router`] puts the façade's
//! routes and the shared drill API ([`drill_api`], under `/_mock/`) into one axum router, the
//! same in-process and on the command line; [`serve`] binds it.
//!
//! Adding an exchange's mock is one folder `src/mock/<name>/` implementing [`Facade`], named
//! by the exchange's descriptor in [`crate::exchange::registry`] (or, while the exchange has
//! no client adapter, listed in this file's façades without a client). [`http`] has the request
//! plumbing façades share (path normalization, body limit, injected faults, the request log).

pub mod binance;
pub mod bybit;
pub mod coinbase;
pub mod drill_api;
pub mod http;
pub mod kucoin;
pub mod upbit;
pub mod venue;

pub use venue::{faults, scenario};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use venue::history::{BotLogRow, BOT_LOG_HEADER};
pub use venue::keys::{KeyType, Permission};
pub use venue::ratelimit::{BlockPolicy, Budget};
pub use venue::rules::{PriceRules, TickRule};
pub use venue::scenario::{load, Scenario, ScenarioError};
pub use venue::state::{GroundTruth, RequestRecord};
pub use venue::{KeyFormat, KeyInfo, Venue};

/// Run-time options that are not part of the scenario.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Serve the `/_mock/` API (off with `--no-drill-api`).
    pub drill_api: bool,
    /// Status of a permission error, for façades whose exchange documented two (older and
    /// current docs): 403 or 401.
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

/// One exchange's face on the venue.
///
/// The venue asks a façade for its terms when it is built (quote currency and rate, symbols,
/// price rules, key format, scope names, the budget in-process orders count against); the
/// façade's router then serves the venue in the exchange's wire format.
pub trait Facade: Send + Sync + 'static {
    /// The exchange name (`--exchange`).
    fn name(&self) -> &'static str;
    /// The quote currency of its markets.
    fn quote_currency(&self) -> &'static str;
    /// Units of `scenario_quote` per one unit of [`Facade::quote_currency`] (a scenario
    /// written in another currency is translated by it); None when there is no rate.
    fn quote_rate(&self, scenario_quote: &str) -> Option<Decimal>;
    /// The native symbol of a market.
    fn symbol(&self, base: &str, quote: &str) -> String;
    /// (base, quote) of a native symbol; None when it is not shaped like one.
    fn parse_symbol(&self, symbol: &str) -> Option<(String, String)>;
    /// Tick, lot and minimum order value.
    fn price_rules(&self) -> PriceRules;
    /// How generated keys look.
    fn key_format(&self) -> KeyFormat;
    /// The native scope names and the permission class each grants, in the exchange's order.
    fn scopes(&self) -> &'static [(&'static str, Permission)];
    /// The kinds of key the exchange issues (a scenario key of another kind is refused).
    fn key_types(&self) -> &'static [KeyType] {
        &[KeyType::Hmac]
    }
    /// How the exchange names a new key (its access key), drawn from the scenario's random
    /// stream; None: a random token of [`KeyFormat::access_len`] characters.
    fn key_name(&self) -> Option<fn(&mut dyn rand::RngCore) -> String> {
        None
    }
    /// The rate-limit budget an in-process order (the live attacker's) counts against.
    fn order_budget(&self) -> Option<Budget>;
    /// Whether it serves order lists (one-cancels-the-other pairs): a scenario's
    /// `attack.open_oco` needs them.
    fn order_lists(&self) -> bool {
        false
    }
    /// When a caller that keeps exceeding its budget is blocked (None: never).
    fn block_policy(&self) -> Option<BlockPolicy>;
    /// The exchange's REST API over the venue (without `/_mock/`).
    fn router(&self, venue: Arc<Venue>) -> axum::Router;
    /// The id the exchange shows for the venue's order `uuid` (what an export of it carries,
    /// so what a drill scores against); the uuid itself by default.
    fn public_order_id(&self, world: &venue::state::World, uuid: &uuid::Uuid) -> String {
        let _ = world;
        uuid.to_string()
    }
    /// The id the exchange shows for the venue's withdrawal `uuid`; the uuid by default.
    fn public_withdrawal_id(&self, world: &venue::state::World, uuid: &uuid::Uuid) -> String {
        let _ = world;
        uuid.to_string()
    }
}

/// Façades whose exchange has no client adapter in [`crate::exchange::registry`] yet: they
/// serve `respond mock serve` (for bots and client libraries) until the exchange's descriptor
/// names them, and the registry then takes over. Empty while every façade has its client.
const MOCK_ONLY: &[(&str, crate::exchange::registry::MockHook)] = &[];

/// The façade of an exchange, by name (case-insensitive): its descriptor's [`Descriptor::mock`]
/// in the registry first, else a façade that has no client yet; None when neither exists.
///
/// [`Descriptor::mock`]: crate::exchange::Descriptor::mock
pub fn facade(exchange: &str) -> Option<Arc<dyn Facade>> {
    crate::exchange::registry::get(exchange)
        .and_then(|d| d.mock)
        .map(|f| f())
        .or_else(|| {
            MOCK_ONLY
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(exchange))
                .map(|(_, f)| f())
        })
}

/// The names [`facade`] answers: the registered exchanges with a façade, then the façades
/// without a client.
pub fn facade_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = crate::exchange::registry::names()
        .into_iter()
        .filter(|n| crate::exchange::registry::get(n).is_some_and(|d| d.mock.is_some()))
        .collect();
    for (n, _) in MOCK_ONLY {
        if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
            names.push(n);
        }
    }
    names
}

/// The mock's router: the façade's API plus, unless disabled, the drill API under `/_mock/`.
/// The same for `respond mock serve`, drills and tests.
pub fn router(facade: &dyn Facade, venue: Arc<Venue>) -> axum::Router {
    let api = facade.router(venue.clone());
    if venue.opts.drill_api {
        drill_api::router(venue).merge(api)
    } else {
        api
    }
}

/// A running server.
pub struct MockServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    pub state: Arc<Venue>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    live: Option<tokio::task::JoinHandle<()>>,
}

impl MockServer {
    /// Stops accepting, finishes in-flight requests (pending injected timeouts are released)
    /// and stops the live attacker.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.state.begin_shutdown();
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

/// Binds `addr` and serves `venue` through `facade` in the background (use `127.0.0.1:0` for
/// a free port). Starts the live attacker when the scenario and options enable it. The venue
/// must have been built for this façade.
pub async fn serve(
    addr: SocketAddr,
    facade: Arc<dyn Facade>,
    venue: Arc<Venue>,
) -> std::io::Result<MockServer> {
    if venue.exchange() != facade.name() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the venue was built for the {} mock, not {}",
                venue.exchange(),
                facade.name()
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app =
        router(facade.as_ref(), venue.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    let live = venue::live::spawn(&venue);
    Ok(MockServer {
        url: format!("http://{addr}"),
        addr,
        state: venue,
        stop: Some(stop),
        join,
        live,
    })
}
