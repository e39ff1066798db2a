//! The exchange adapter boundary.
//!
//! The engine and the step kinds speak only [`Exchange`] and the normalized types in
//! [`types`]; everything exchange-specific (paths, signing, wire formats, error codes, limits
//! tables, symbol formats) lives in one folder per exchange, listed in [`registry`] with its
//! [`Descriptor`]. Containment differs a lot between exchanges (only some can revoke a key by
//! API, some export fills per symbol), so an adapter declares [`Capabilities`] and playbooks
//! branch on them, never on exchange names.
//!
//! The machinery every adapter shares lives here too: the request pipeline ([`http`]: pace,
//! sign, send, record, classify, retry), the rate limiter core ([`ratelimit`]), and the
//! offline rebuild of a run from its raw responses ([`replay`]).

pub mod decimal;
pub mod http;
pub mod ratelimit;
pub mod registry;
pub mod replay;
pub mod types;
pub mod watch;

pub use registry::adapters::*;

use async_trait::async_trait;
use serde::Serialize;

pub use registry::Descriptor;
pub use types::*;

/// Where an adapter gets fills from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FillsSource {
    /// Inside single-order answers ([`Exchange::order_with_fills`]); no fills listing.
    PerOrder,
    /// A fills listing by time window ([`Exchange::fills`]).
    PerWindow {
        /// Longest window one query may span, seconds.
        max_window_secs: u64,
        /// Most fills one query returns.
        page_size: u32,
        /// Every query names one market.
        needs_symbol: bool,
    },
}

/// What an adapter can do. Exposed to playbook templates as `exchange.*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    /// The exchange's registry name ([`registry::get`]).
    pub name: String,
    /// A key can be revoked through the API (on some exchanges, for some keys); otherwise
    /// revocation is a guided manual step followed by verification.
    pub revoke_key_by_api: bool,
    /// The API revocation is the key deleting itself, and no other key of the account can
    /// cancel orders in its place (the exchange's read-only keys cannot): the default playbook
    /// cancels with the old key first and revokes right after ([`Capabilities::revoke_key_by_api`]
    /// keys only). `false`: revoke (or show the manual steps) first.
    pub revoke_after_containment: bool,
    /// The key's scopes / IP allowlist can be read by API.
    pub read_key_permissions: bool,
    /// Open orders can be cancelled in batches.
    pub batch_cancel: bool,
    /// Pending withdrawals can be cancelled by API.
    pub cancel_withdrawals: bool,
    /// Where fills come from.
    pub fills: FillsSource,
    /// Longest window one closed-order query may span, in seconds (`None` = unlimited).
    pub closed_orders_max_window_secs: Option<u64>,
    /// Most closed orders one query returns.
    pub closed_orders_max_per_call: u32,
    /// Every closed-order query must name a market (the exchange keeps history per symbol).
    pub history_needs_symbol: bool,
    /// The field name of the client id on orders, as the exchange calls it.
    pub client_id_field: String,
    /// The exchange's local time zone.
    pub local_zone: LocalZone,
    /// Where a user deletes a key by hand (shown by the manual revoke step), English. May
    /// hold `{expire_at}` for the key's expiry: read it through
    /// [`Capabilities::revoke_instructions`].
    pub manual_revoke_instructions_en: String,
    /// The same, in the exchange's home language.
    pub manual_revoke_instructions_local: String,
    /// The home language code (`en`, `ko`).
    pub local_language: String,
}

impl Capabilities {
    /// The manual revocation instructions (English, home language), with `{expire_at}`
    /// filled in (`unknown` when the expiry is not known). The home-language text falls back
    /// to English when the adapter gives none.
    pub fn revoke_instructions(&self, expire_at: Option<&str>) -> (String, String) {
        let fill = |t: &str| t.replace("{expire_at}", expire_at.unwrap_or("unknown"));
        let local = if self.manual_revoke_instructions_local.is_empty() {
            &self.manual_revoke_instructions_en
        } else {
            &self.manual_revoke_instructions_local
        };
        (fill(&self.manual_revoke_instructions_en), fill(local))
    }
}

/// What kind of refusal an exchange's error is, whatever its native code. Each adapter maps
/// its codes to these; shared code decides on the kind, never on a native code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The key is unknown to the exchange (deleted, or mistyped).
    KeyInvalid,
    /// The key expired.
    KeyExpired,
    /// The signature did not verify: the secret does not match the key.
    BadSignature,
    /// The request's timestamp or nonce was refused (clock skew, a replayed nonce).
    ClockSkew,
    /// The key lacks the permission for this call.
    PermissionDenied,
    /// This machine's IP is not on the key's allowlist.
    IpNotAllowed,
    /// No such order, withdrawal, …
    NotFound,
    InsufficientFunds,
    RateLimited,
    /// The exchange refused the request's parameters.
    InvalidRequest,
    /// The exchange failed internally; worth retrying a read.
    ServerError,
    Other,
}

impl ErrorKind {
    /// The exchange refused the key itself (unknown, expired, a signature that does not verify
    /// with it, no credentials).
    pub fn refuses_key(self) -> bool {
        matches!(
            self,
            ErrorKind::KeyInvalid | ErrorKind::KeyExpired | ErrorKind::BadSignature
        )
    }

    /// Only given after the exchange found the key and checked its signature: the key's own
    /// scopes or IP allowlist refused the call, or the call reached the business logic.
    pub fn proves_key_accepted(self) -> bool {
        matches!(
            self,
            ErrorKind::PermissionDenied | ErrorKind::IpNotAllowed | ErrorKind::NotFound
        )
    }

    /// Asking again cannot clear it.
    pub fn is_permanent(self) -> bool {
        self.refuses_key()
            || matches!(
                self,
                ErrorKind::PermissionDenied | ErrorKind::IpNotAllowed | ErrorKind::InvalidRequest
            )
    }
}

/// A key refused from its very first request ([`Error::NeverAccepted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRefusal {
    pub exchange: String,
    /// Which key: `the key under investigation`, `the read-only key`.
    pub role: String,
    /// The masked key.
    pub key: String,
    /// The exchange's own error code, as evidence.
    pub code: String,
    pub kind: ErrorKind,
    pub message: String,
    /// What to do about a key refused from its first request (the exchange's words).
    pub advice: String,
}

/// Errors from an adapter, classified so callers can decide: retry, switch key, or stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The exchange answered with an error.
    #[error("{exchange} error {code} (HTTP {status}): {message}")]
    Api {
        exchange: String,
        status: u16,
        /// The exchange's own error name or number, as evidence.
        code: String,
        kind: ErrorKind,
        message: String,
        /// What a user should do about it (the adapter's words).
        advice: String,
    },
    /// Over the rate limit (429) or blocked (418).
    #[error("rate limited by the exchange (HTTP {status}){}", retry_after_ms.map(|m| format!("; retry after {m} ms")).unwrap_or_default())]
    RateLimited {
        status: u16,
        retry_after_ms: Option<u64>,
    },
    /// No usable answer: connection dropped, timeout, TLS. Worth retrying.
    #[error("transport error: {0}")]
    Transport(String),
    /// Nothing listens at the API address (connection refused): the URL or the port is wrong,
    /// or the service is down. Waiting does not fix a wrong `--api-url`, so this is not
    /// retried; the request never reached the exchange, so nothing took effect.
    #[error("cannot reach the exchange: {0}")]
    Unreachable(String),
    /// The exchange refused a key before it ever accepted it in this run (or in the run being
    /// resumed): the key is mistyped, was deleted before the run, expired, or its secret is
    /// wrong. Nothing can be done with it, and its refusal proves nothing about a revocation.
    #[error("the exchange refused {} {} with {} from its first request: this key was never accepted here ({})", .0.role, .0.key, .0.code, .0.message)]
    NeverAccepted(Box<KeyRefusal>),
    /// The answer could not be parsed (truncated JSON, unexpected shape).
    #[error("could not parse the exchange's answer from {endpoint}: {detail}")]
    Decode { endpoint: String, detail: String },
    /// A write was sent but no answer came back, and the exchange's state could not settle
    /// whether it happened. Never resent blindly.
    #[error("outcome unknown for {what}: {detail}")]
    OutcomeUnknown { what: String, detail: String },
    /// The adapter cannot do this on this exchange.
    #[error("not supported by {exchange}: {what}")]
    Unsupported { exchange: String, what: String },
    /// Client-side refusal (bad URL, plain http to a remote host, bad argument).
    #[error("{0}")]
    Config(String),
    /// Saving the raw response failed: the evidence would be incomplete, so the call fails.
    #[error("could not save the raw response: {0}")]
    Evidence(String),
}

impl Error {
    /// Worth retrying the same request (reads) after a backoff.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, kind, .. } => *status >= 500 || *kind == ErrorKind::ServerError,
            Error::RateLimited { status, .. } => *status == 429,
            Error::Transport(_) => true,
            Error::Decode { .. } => true,
            _ => false,
        }
    }

    /// The kind of an exchange's refusal of one call (a key never accepted is not one: its
    /// refusal's kind is in the [`KeyRefusal`]).
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(*kind),
            Error::RateLimited { .. } => Some(ErrorKind::RateLimited),
            _ => None,
        }
    }

    /// Waiting or asking again cannot change the answer: a wrong secret, a key refused before
    /// it ever worked, nothing listening at the API address, a missing permission, a request
    /// the exchange rejects as malformed, evidence that cannot be saved, a call the exchange
    /// does not offer. A poll or a retry stops at once on these, with [`Error::advice`].
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Api { kind, .. } => kind.is_permanent(),
            Error::NeverAccepted(_)
            | Error::Unreachable(_)
            | Error::Config(_)
            | Error::Evidence(_)
            | Error::Unsupported { .. } => true,
            _ => false,
        }
    }

    /// The exchange refused the key itself (unknown, expired, bad signature, no token), as
    /// opposed to refusing one call. Before the key was ever accepted this means the key was
    /// never usable here; after, the key died ([`Error::is_key_dead`]) or its secret changed.
    pub fn refuses_key(&self) -> bool {
        matches!(self, Error::Api { kind, .. } if kind.refuses_key())
    }

    /// The answer shows the exchange knew the key and checked its signature (it then refused
    /// only this call: a missing scope, this machine's IP, an unknown order).
    pub fn proves_key_accepted(&self) -> bool {
        matches!(self, Error::Api { kind, .. } if kind.proves_key_accepted())
    }

    /// The run cannot go on: no step can do anything useful with this key (see
    /// [`Error::NeverAccepted`]). The engine stops the run and the command exits 2.
    pub fn stops_run(&self) -> bool {
        matches!(self, Error::NeverAccepted(_))
    }

    /// The key no longer works (deleted, expired): switch keys rather than retry.
    pub fn is_key_dead(&self) -> bool {
        matches!(
            self.kind(),
            Some(ErrorKind::KeyInvalid | ErrorKind::KeyExpired)
        )
    }

    /// The key lacks the permission for the call.
    pub fn is_out_of_scope(&self) -> bool {
        self.kind() == Some(ErrorKind::PermissionDenied)
    }

    /// The exchange's own error code, when it gave one (evidence, not for decisions).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            Error::NeverAccepted(r) => Some(&r.code),
            _ => None,
        }
    }

    /// What a user should do about this error.
    pub fn advice(&self) -> String {
        match self {
            Error::Api { advice, .. } => advice.clone(),
            Error::RateLimited { .. } => "wait and retry; respond paces itself, so this means another client shares the key or IP".into(),
            Error::Transport(_) => "check the network and --api-url; reads are retried automatically".into(),
            Error::Unreachable(_) => "nothing answers at this address: check --api-url (scheme, host and port) and that the exchange or mock is running; nothing was sent, so nothing took effect".into(),
            Error::NeverAccepted(r) => r.advice.clone(),
            Error::Decode { .. } => "the raw answer is saved under raw/; retry, and report it if it persists".into(),
            Error::OutcomeUnknown { .. } => "check the exchange's order list before retrying; `respond resume` checks it for you".into(),
            Error::Unsupported { .. } => "do this step by hand in the exchange's web interface".into(),
            Error::Config(_) => "fix the command line or configuration".into(),
            Error::Evidence(_) => "free disk space or fix permissions of the output directory, then `respond resume RUN_DIR`".into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where a cancel path puts its first listing of the open orders, the evidence of what was
/// open when containment began, as soon as it has read it: before its first cancel, so the
/// caller keeps it whatever the cancels that follow do.
#[derive(Debug, Default)]
pub struct FirstListing(std::sync::Mutex<Option<Vec<Order>>>);

impl FirstListing {
    /// Keeps `open` unless a listing was already kept (the first one is the evidence).
    pub fn keep(&self, open: &[Order]) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(open.to_vec());
        }
    }
    /// The kept listing, if any.
    pub fn take(&self) -> Option<Vec<Order>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Which orders a closed-orders answer holds when the window has more than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPage {
    /// The newest: every order after the answer's oldest one is in it (a list sorted newest first).
    Newest,
    /// The oldest: every order before the answer's newest one is in it (a list read from the
    /// window's start).
    Oldest,
    /// Not known: a full answer proves nothing, its window is halved and read again.
    Unknown,
}

/// Query for closed orders.
#[derive(Debug, Clone)]
pub struct ClosedOrdersQuery {
    pub window: Window,
    /// Required when [`Capabilities::history_needs_symbol`].
    pub market: Option<Market>,
    /// Most to return (≤ `closed_orders_max_per_call`).
    pub limit: u32,
}

/// Query for fills by time window ([`FillsSource::PerWindow`]).
#[derive(Debug, Clone)]
pub struct FillsQuery {
    pub window: Window,
    /// Required when the source says `needs_symbol`.
    pub market: Option<Market>,
    /// Page size (≤ the source's `page_size`); the adapter follows the exchange's cursor until
    /// the window is covered, so the answer is every fill of the window.
    pub limit: u32,
}

/// Which markets an export reads where the exchange keeps history per market
/// ([`Capabilities::history_needs_symbol`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "symbols")]
pub enum MarketSelection {
    /// Every market of an asset the account touched (held now or on a day the exchange kept a
    /// snapshot of, deposited, withdrawn, named by the bot log or by an order of this run),
    /// paired with every quote the exchange lists for it.
    Touched,
    /// Every market the exchange lists.
    All,
    /// These native symbols only.
    Listed(Vec<String>),
}

impl MarketSelection {
    /// `touched`, `all`, or a comma-separated list of symbols (any case).
    pub fn parse(s: &str) -> std::result::Result<MarketSelection, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "touched" => Ok(MarketSelection::Touched),
            "all" => Ok(MarketSelection::All),
            _ => {
                let list: Vec<String> = s
                    .split(',')
                    .map(|x| x.trim().to_ascii_uppercase())
                    .filter(|x| !x.is_empty())
                    .collect();
                if list.iter().all(|x| {
                    x.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c))
                }) {
                    Ok(MarketSelection::Listed(list))
                } else {
                    Err(format!(
                        "`{s}` is neither `touched`, `all` nor a comma-separated list of market symbols"
                    ))
                }
            }
        }
    }
}

/// A market the run's own evidence names (the bot log, an order this run saw), and where.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketHint {
    pub market: Market,
    /// Where it was named, for the scan's reasons (`bot log bot/1-trades.csv`).
    pub source: String,
}

/// What [`Exchange::history_markets`] is asked.
#[derive(Debug, Clone)]
pub struct MarketScanRequest {
    pub window: Window,
    pub selection: MarketSelection,
    pub hints: Vec<MarketHint>,
}

/// The markets an export reads, each with why, and what was read to find them: the bundle's
/// statement of which markets the history covers.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MarketScan {
    pub selection: MarketSelection,
    pub markets: Vec<ScannedMarket>,
    /// Every source the scan read (or could not read).
    pub sources: Vec<ScanSource>,
    /// What a scan in this mode cannot see, in words (a market of an asset the account held
    /// only between two snapshots, say).
    pub limits: Vec<String>,
}

/// One market of a [`MarketScan`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ScannedMarket {
    pub market: Market,
    /// Why it is scanned (`PUMP held now (GET /api/v3/account)`).
    pub reasons: Vec<String>,
}

/// One source of a [`MarketScan`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ScanSource {
    /// What was read (`balances now`, `daily account snapshots`).
    pub source: String,
    /// The call, as `GET /path`, when the source is an exchange call.
    pub call: Option<String>,
    /// Whether it was read; when not, `detail` says why.
    pub read: bool,
    pub detail: String,
    /// The assets (or markets) it named.
    pub found: Vec<String>,
}

/// What exporting history costs against the exchange's rate limits, planned before the first
/// call ([`Exchange::history_plan`]), for the progress bar and the estimate of a wide scan.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CallPlan {
    /// Calls at most (history and fills listings, before any page is split).
    pub calls: u64,
    /// Their cost in the exchange's unit.
    pub cost: u64,
    /// The unit (`request weight`).
    pub unit: String,
    /// The budget the calls share, per `budget_window_secs`.
    pub budget: u64,
    pub budget_window_secs: u64,
}

impl CallPlan {
    /// The least time the budget allows for the whole plan, seconds.
    pub fn min_secs(&self) -> u64 {
        if self.budget == 0 {
            return 0;
        }
        // Every full budget's worth after the first waits a window.
        (self.cost.saturating_sub(1) / self.budget) * self.budget_window_secs
    }

    /// `~1,234 calls, ~24,680 request weight: at least 4 min at 6,000 per 60 s`.
    pub fn describe(&self) -> String {
        let group = |n: u64| {
            let s = n.to_string();
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        let secs = self.min_secs();
        let time = if secs == 0 {
            "within one budget window".to_string()
        } else if secs < 120 {
            format!("at least {secs} s")
        } else {
            format!("at least {} min", secs.div_ceil(60))
        };
        format!(
            "up to {} calls, {} {}: {time} at {} per {} s",
            group(self.calls),
            group(self.cost),
            self.unit,
            group(self.budget),
            self.budget_window_secs
        )
    }
}

/// One exchange adapter. All methods use the adapter's current credentials; the adapter owns
/// rate limiting, retries of reads, raw-response recording and error classification.
#[async_trait]
pub trait Exchange: Send + Sync {
    fn capabilities(&self) -> &Capabilities;

    /// The signed-request pipeline behind the adapter, when it has one: the masked key, the
    /// budget in use and the key's first acceptance are read from it by default.
    fn pipeline(&self) -> Option<&http::Pipeline> {
        None
    }

    /// The masked id of the key in use (from [`Exchange::pipeline`] by default).
    fn key_id_masked(&self) -> String {
        self.pipeline()
            .map(|p| p.key_masked().to_string())
            .unwrap_or_default()
    }

    async fn server_time(&self) -> Result<ServerTime>;
    async fn balances(&self) -> Result<Vec<Balance>>;
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>>;
    async fn probe_permissions(&self) -> Result<PermissionProbe>;
    async fn open_orders(&self) -> Result<Vec<Order>>;
    /// Closed orders created inside `query.window` (≤ the adapter's max window), newest first.
    async fn closed_orders(&self, query: &ClosedOrdersQuery) -> Result<Vec<Order>>;
    /// One order with its fills ([`FillsSource::PerOrder`]; otherwise the fills may be empty).
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)>;
    /// Fills inside a window ([`FillsSource::PerWindow`]), newest first.
    async fn fills(&self, query: &FillsQuery) -> Result<Vec<Fill>> {
        let _ = query;
        Err(Error::Unsupported {
            exchange: self.capabilities().name.clone(),
            what: "listing fills by time window (this exchange gives fills per order)".into(),
        })
    }
    /// Which markets to read history of where the exchange keeps it per market
    /// ([`Capabilities::history_needs_symbol`]), each with why: the completeness statement of
    /// an export. Unsupported where history is kept per account.
    async fn history_markets(&self, request: &MarketScanRequest) -> Result<MarketScan> {
        let _ = request;
        Err(Error::Unsupported {
            exchange: self.capabilities().name.clone(),
            what: "choosing markets to scan (this exchange keeps history per account)".into(),
        })
    }
    /// Which orders a full closed-orders answer keeps when the window holds more than the cap:
    /// what lets the export continue a full page by cursor instead of halving its window.
    fn closed_orders_full_page(&self) -> FullPage {
        FullPage::Unknown
    }
    /// Most closed orders one request returns, where a call follows the exchange's cursor over
    /// several pages: the export shares a long span among idle lanes by requests, not calls.
    fn closed_orders_page(&self) -> u32 {
        self.capabilities().closed_orders_max_per_call
    }
    /// What exporting closed orders and fills of `markets` markets over `window` costs against
    /// the exchange's limits; `None` when the adapter cannot tell.
    fn history_plan(&self, markets: usize, window: Window) -> Option<CallPlan> {
        let _ = (markets, window);
        None
    }
    /// The exchange's public market list.
    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        Err(Error::Unsupported {
            exchange: self.capabilities().name.clone(),
            what: "listing markets".into(),
        })
    }
    /// The market of a native symbol (a playbook's `markets:` argument), as the exchange
    /// writes it; a [`Error::Config`] when it is not one of this exchange's symbols.
    fn market(&self, symbol: &str) -> Result<Market> {
        registry::get(&self.capabilities().name)
            .and_then(|d| (d.parse_symbol)(symbol).ok())
            .ok_or_else(|| {
                Error::Config(format!(
                    "`{symbol}` is not a market symbol of {}",
                    self.capabilities().name
                ))
            })
    }
    /// Withdrawals, newest first, following the exchange's cursor until `since`.
    async fn withdrawals(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<Transfer>>;
    async fn deposits(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<Transfer>>;
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>>;
    /// Cancels every open order (batch where possible, then one by one), until none is left.
    async fn cancel_all_open_orders(&self) -> Result<CancelReport>;
    /// [`Exchange::cancel_all_open_orders`], keeping what was open when it began in
    /// [`CancelReport::open_at_start`]: the listing containment starts from is the evidence of
    /// the book, so nothing lists it separately before. This default lists once
    /// ([`Exchange::open_orders`]) and then cancels; a listing that fails for another reason
    /// than the key's death does not hold the cancels back (`open_at_start` stays `None`).
    /// Adapters whose cancel path lists first anyway keep that listing instead.
    ///
    /// The listing is also put in `first` as soon as it is read, before the first cancel, so a
    /// caller keeps it when the cancels fail after it (the user deleting the key mid-cancel).
    async fn cancel_all_open_orders_listed(&self, first: &FirstListing) -> Result<CancelReport> {
        let listed = match self.open_orders().await {
            Ok(open) => Some(open),
            Err(e) if e.is_key_dead() || e.stops_run() => return Err(e),
            Err(_) => None,
        };
        if let Some(open) = &listed {
            first.keep(open);
        }
        let mut report = self.cancel_all_open_orders().await?;
        if report.open_at_start.is_none() {
            report.open_at_start = listed;
        }
        Ok(report)
    }
    async fn cancel_order(&self, order: &OrderRef) -> Result<Order>;
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer>;
    /// Revokes the current key by API; `Unsupported` where the exchange cannot.
    async fn revoke_key(&self) -> Result<()>;
    /// Public minute candles ending at `to` (newest first), for reference prices.
    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: chrono::DateTime<chrono::Utc>,
        count: u32,
    ) -> Result<Vec<Candle>>;

    /// The rate-limit budget in use, for progress bars (`default 27/30 per s`); `None` when
    /// the adapter does not track it.
    fn budget_status(&self) -> Option<String> {
        self.pipeline().and_then(http::Pipeline::budget_status)
    }

    /// When the exchange first accepted this key (answered a signed request past its key and
    /// signature checks), as the adapter saw it request by request; `None` when it has not, or
    /// when the adapter does not track it. [`watch::Watched`] tracks the same per call for
    /// every adapter; this finer view covers a call whose first request was accepted and a
    /// later one refused.
    fn key_accepted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.pipeline().and_then(http::Pipeline::key_accepted_at)
    }

    /// The fingerprint of the credentials this adapter signs with
    /// ([`http::credentials_fingerprint`], recorded beside each signed answer); empty when the
    /// adapter gives none.
    fn credentials_fingerprint(&self) -> String {
        self.pipeline()
            .map(|p| p.fingerprint().to_string())
            .unwrap_or_default()
    }
}

/// What a run's saved raw responses show about one key: whether the exchange ever accepted it
/// and whether it refused it as unknown or expired afterwards. A resume reads this, so a key
/// seen working before an interruption still counts as seen working.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHistory {
    /// The masked key.
    pub key: String,
    /// The first accepted answer: when, and its raw file.
    pub accepted: Option<(chrono::DateTime<chrono::Utc>, String)>,
    /// The first answer refusing the key as dead (`invalid_access_key`, `expired_access_key`)
    /// after the last answer that accepted it (a refusal the key answered past is no deletion):
    /// when, the error name, and its raw file.
    pub refused: Option<(chrono::DateTime<chrono::Utc>, String, String)>,
    /// Whether the credentials `refused` was refused with (the fingerprint recorded beside each
    /// signed answer) had been accepted before: only then is the refusal the key's deletion. A
    /// resume that signed the same key name with another secret is refused too (some exchanges
    /// answer both with the same error), which proves nothing about the key.
    pub refused_after_accepted: bool,
}

impl KeyHistory {
    /// Seen accepted, then refused as dead with the same credentials: the key was revoked (or
    /// expired) during the run.
    pub fn known_dead(&self) -> bool {
        self.accepted.is_some() && self.refused.is_some() && self.refused_after_accepted
    }
}

/// The key under investigation in a run directory (the key of its first signed request, as the
/// offline rebuild counts it) and what its raw responses show, read with the error map of the
/// exchange that recorded them ([`replay::key_history`]). `None` when no signed request was
/// recorded or the exchange is not registered.
pub fn key_history(exchange: &str, run_dir: &std::path::Path) -> Option<KeyHistory> {
    replay::key_history(registry::get(exchange)?, run_dir, None, None)
}

/// What the run's raw responses show of the credentials of `key` ([`Exchange::key_id_masked`]
/// and [`Exchange::credentials_fingerprint`]): only the answers signed with these credentials
/// count, so the same key name given with another secret was not "seen accepted".
pub fn key_history_of(exchange: &str, run_dir: &std::path::Path, key: &dyn Exchange) -> KeyHistory {
    let masked = key.key_id_masked();
    let credentials = key.credentials_fingerprint();
    registry::get(exchange)
        .and_then(|d| replay::key_history(d, run_dir, Some(&masked), Some(&credentials)))
        .unwrap_or_else(|| KeyHistory {
            key: masked,
            ..KeyHistory::default()
        })
}
