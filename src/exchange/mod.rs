//! The exchange adapter boundary.
//!
//! The engine and the step kinds speak only [`Exchange`] and the normalized types in
//! [`types`]; everything exchange-specific (paths, signing, wire formats, error names, rate
//! limit headers) lives in one folder per exchange family (`upbit/`). Containment differs a lot
//! between exchanges (only some can revoke a key by API, some export fills per symbol), so an
//! adapter declares [`Capabilities`] and playbooks branch on them, never on exchange names.

pub mod types;
pub mod upbit;
pub mod watch;

use async_trait::async_trait;
use serde::Serialize;

pub use types::*;

/// What an adapter can do. Exposed to playbook templates as `exchange.*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    /// Exchange identifier (`upbit`).
    pub name: String,
    /// A key can be revoked through the API (Bybit for some keys); otherwise revocation is a
    /// guided manual step followed by verification.
    pub revoke_key_by_api: bool,
    /// The key's scopes / IP allowlist can be read by API.
    pub read_key_permissions: bool,
    /// Open orders can be cancelled in batches.
    pub batch_cancel: bool,
    /// Pending withdrawals can be cancelled by API.
    pub cancel_withdrawals: bool,
    /// Fills come inside single-order responses (Upbit `trades[]`), not as a fills list.
    pub fills_per_order: bool,
    /// Longest window one closed-order query may span, in seconds (`None` = unlimited).
    pub closed_orders_max_window_secs: Option<u64>,
    /// Most closed orders one query returns.
    pub closed_orders_max_per_call: u32,
    /// The field name of the client id on orders (`identifier`).
    pub client_id_field: String,
    /// UTC offset of the exchange's local time, seconds (Upbit: +09:00 = 32400).
    pub local_utc_offset_secs: i32,
    /// Where a user deletes a key by hand (shown by the manual revoke step), English. May
    /// hold `{expire_at}` for the key's expiry: read it through
    /// [`Capabilities::revoke_instructions`].
    pub manual_revoke_instructions_en: String,
    /// The same, in the exchange's home language.
    pub manual_revoke_instructions_local: String,
    /// The home language code (`ko`).
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

/// Errors from an adapter, classified so callers can decide: retry, switch key, or stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The exchange answered with an error envelope.
    #[error("{exchange} error {name} (HTTP {status}): {message}")]
    Api {
        exchange: String,
        status: u16,
        name: String,
        message: String,
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
    #[error("the exchange refused {role} {key} with {name} from its first request: this key was never accepted here ({message})")]
    NeverAccepted {
        exchange: String,
        /// Which key: `the key under investigation`, `the read-only key`.
        role: String,
        /// The masked key.
        key: String,
        /// The exchange's error name (`invalid_access_key`).
        name: String,
        message: String,
    },
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
            Error::Api { status, name, .. } => *status >= 500 || name == "server_error",
            Error::RateLimited { status, .. } => *status == 429,
            Error::Transport(_) => true,
            Error::Decode { .. } => true,
            _ => false,
        }
    }

    /// Waiting or asking again cannot change the answer: a wrong secret, a key refused before
    /// it ever worked, nothing listening at the API address, a missing permission, evidence
    /// that cannot be saved, a call the exchange does not offer. A poll or a retry stops at
    /// once on these, with [`Error::advice`].
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Api { name, .. } => upbit::errors::is_permanent(name),
            Error::NeverAccepted { .. }
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
        matches!(self, Error::Api { name, .. } if upbit::errors::refuses_key(name))
    }

    /// The answer shows the exchange knew the key and checked its signature (it then refused
    /// only this call: a missing scope, this machine's IP, an unknown order).
    pub fn proves_key_accepted(&self) -> bool {
        matches!(self, Error::Api { name, .. } if upbit::errors::proves_key_accepted(name))
    }

    /// The run cannot go on: no step can do anything useful with this key (see
    /// [`Error::NeverAccepted`]). The engine stops the run and the command exits 2.
    pub fn stops_run(&self) -> bool {
        matches!(self, Error::NeverAccepted { .. })
    }
    /// The key no longer works (deleted, expired): switch keys rather than retry.
    pub fn is_key_dead(&self) -> bool {
        matches!(self, Error::Api { name, .. } if name == "invalid_access_key" || name == "expired_access_key")
    }

    /// The exchange's error name, when it gave one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Error::Api { name, .. } => Some(name),
            _ => None,
        }
    }

    /// What a user should do about this error.
    pub fn advice(&self) -> String {
        match self {
            Error::Api { name, .. } => upbit::errors::advice(name).to_string(),
            Error::RateLimited { .. } => "wait and retry; respond paces itself, so this means another client shares the key or IP".into(),
            Error::Transport(_) => "check the network and --api-url; reads are retried automatically".into(),
            Error::Unreachable(_) => "nothing answers at this address: check --api-url (scheme, host and port) and that the exchange or mock is running; nothing was sent, so nothing took effect".into(),
            Error::NeverAccepted { name, .. } => upbit::errors::never_accepted_advice(name).to_string(),
            Error::Decode { .. } => "the raw answer is saved under raw/; retry, and report it if it persists".into(),
            Error::OutcomeUnknown { .. } => "check the exchange's order list before retrying; `respond resume` checks it for you".into(),
            Error::Unsupported { .. } => "do this step by hand in the exchange's web interface".into(),
            Error::Config(_) => "fix the command line or configuration".into(),
            Error::Evidence(_) => "free disk space or fix permissions of the output directory, then `respond resume RUN_DIR`".into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Query for closed orders.
#[derive(Debug, Clone)]
pub struct ClosedOrdersQuery {
    pub window: Window,
    pub market: Option<String>,
    /// Most to return (≤ `closed_orders_max_per_call`).
    pub limit: u32,
}

/// One exchange adapter. All methods use the adapter's current credentials; the adapter owns
/// rate limiting, retries of reads, raw-response recording and error classification.
#[async_trait]
pub trait Exchange: Send + Sync {
    fn capabilities(&self) -> &Capabilities;

    /// The masked id of the key in use.
    fn key_id_masked(&self) -> String;

    async fn server_time(&self) -> Result<ServerTime>;
    async fn balances(&self) -> Result<Vec<Balance>>;
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>>;
    async fn probe_permissions(&self) -> Result<PermissionProbe>;
    async fn open_orders(&self) -> Result<Vec<Order>>;
    /// Closed orders created inside `query.window` (≤ the adapter's max window), newest first.
    async fn closed_orders(&self, query: &ClosedOrdersQuery) -> Result<Vec<Order>>;
    /// One order with its fills.
    async fn order_with_fills(&self, order_id: &str) -> Result<(Order, Vec<Fill>)>;
    /// Withdrawals, newest first, following the exchange's cursor until `since`.
    async fn withdrawals(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<Transfer>>;
    async fn deposits(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Vec<Transfer>>;
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>>;
    /// Cancels every open order (batch where possible, then one by one), until none is left.
    async fn cancel_all_open_orders(&self) -> Result<CancelReport>;
    async fn cancel_order(&self, order_id: &str) -> Result<Order>;
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer>;
    /// Revokes the current key by API; `Unsupported` where the exchange cannot.
    async fn revoke_key(&self) -> Result<()>;
    /// Public minute candles ending at `to` (newest first), for reference prices.
    async fn candles(
        &self,
        market: &str,
        unit_minutes: u32,
        to: chrono::DateTime<chrono::Utc>,
        count: u32,
    ) -> Result<Vec<Candle>>;

    /// The rate-limit budget in use, for progress bars (`default 27/30 per s`); `None` when
    /// the adapter does not track it.
    fn budget_status(&self) -> Option<String> {
        None
    }

    /// When the exchange first accepted this key (answered a signed request past its key and
    /// signature checks), as the adapter saw it request by request; `None` when it has not, or
    /// when the adapter does not track it. [`watch::Watched`] tracks the same per call for
    /// every adapter; this finer view covers a call whose first request was accepted and a
    /// later one refused.
    fn key_accepted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        None
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
    /// The first answer refusing the key as dead (`invalid_access_key`, `expired_access_key`):
    /// when, the error name, and its raw file.
    pub refused: Option<(chrono::DateTime<chrono::Utc>, String, String)>,
}

impl KeyHistory {
    /// Seen accepted, then refused as dead: the key was revoked (or expired) during the run.
    pub fn known_dead(&self) -> bool {
        self.accepted.is_some() && self.refused.is_some()
    }
}

/// The key under investigation in a run directory (the key of its first signed request, as the
/// offline rebuild counts it) and what its raw responses show, read with the parsers of the
/// adapter family that recorded them. `None` when no signed request was recorded.
pub fn key_history(exchange: &str, run_dir: &std::path::Path) -> Option<KeyHistory> {
    match exchange {
        "upbit" => upbit::offline::key_history(run_dir, None),
        _ => None,
    }
}

/// The same for a given masked key (the read-only key, or the old key when known).
pub fn key_history_of(exchange: &str, run_dir: &std::path::Path, key: &str) -> KeyHistory {
    match exchange {
        "upbit" => upbit::offline::key_history(run_dir, Some(key)),
        _ => None,
    }
    .unwrap_or_else(|| KeyHistory {
        key: key.to_string(),
        ..KeyHistory::default()
    })
}

/// Rebuilds the normalized data of a run from its saved raw responses, with the parsers of the
/// adapter family that recorded them (`exchange` = `Capabilities::name`). No network. Corrupt
/// bodies are left out and listed as `(file, reason)`.
pub fn offline_rebuild(
    exchange: &str,
    run_dir: &std::path::Path,
) -> std::result::Result<(crate::analysis::AnalysisInput, Vec<(String, String)>), String> {
    match exchange {
        "upbit" => {
            let rebuilt = upbit::offline::rebuild_with(
                run_dir,
                upbit::offline::RebuildOptions { skip_corrupt: true },
            )
            .map_err(|e| e.to_string())?;
            let skipped = rebuilt
                .skipped
                .into_iter()
                .map(|s| (s.file, s.reason))
                .collect();
            Ok((rebuilt.input, skipped))
        }
        other => Err(format!("no offline parser for exchange `{other}`")),
    }
}
