//! The live Binance spot adapter: [`BinanceClient`] implements [`Exchange`] over the shared
//! request pipeline ([`crate::exchange::http`]), with Binance's signer ([`super::auth`]),
//! weights ([`super::limits`]), error map ([`super::errors`]) and wire formats
//! ([`super::wire`], shared with the offline rebuild).
//!
//! What Binance adds to the pipeline, and where it is handled here:
//! - **Clock.** Every signed request carries `timestamp`, checked against Binance's clock
//!   within `recvWindow`. The offset is read from `GET /api/v3/time` before the first signed
//!   request; a `-1021` refusal reads it again and sends the request once more, never in a
//!   loop (the refusal happened before Binance acted, so even a write is safe to resend).
//! - **Symbols.** Orders and trades name symbols (`BTCUSDT`) whose base and quote only the
//!   market list tells: `exchangeInfo` is read once, before the first answer that names a
//!   symbol, so the offline rebuild finds it earlier in the raw files.
//! - **`-2015`.** On a read it means the key no longer works from here. On a write the key
//!   may only lack the permission: the client reads `apiRestrictions` with the same key and
//!   decides by what it can still do ([`super::errors::on_write`]).
//! - **Writes.** A cancel whose outcome is unknown (no answer, 5xx, an unreadable answer) is
//!   settled by reading the open orders or the order, never by sending it again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use super::auth::{self, KeySigner};
use super::errors;
use super::limits;
use super::wire::{self, Markets, Restrictions, WireError};
use crate::exchange::http::{
    outcome_unknown, p, Answer, BudgetReport, Call, Pipeline, Protocol, RetryPolicy, ServerClock,
    Signed, Signer, Transport,
};
use crate::exchange::registry::MasterKey;
use crate::exchange::{
    ApiKeyInfo, Balance, CallPlan, CancelFailure, CancelReport, Candle, Capabilities,
    ClosedOrdersQuery, Error, ErrorKind, Exchange, Fill, FillsQuery, FillsSource, Market,
    MarketInfo, MarketScan, MarketScanRequest, Order, OrderRef, OrderState, PermissionProbe,
    Result, ScopeProbe, ServerTime, Transfer, TransferKind, Window, WithdrawalAddress,
};
use crate::rundir::RunDir;
use crate::secret::{mask_key, Secret};

/// Binance's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.binance.com";
/// Longest window of one `allOrders` or `myTrades` query.
pub const HISTORY_WINDOW_MAX: chrono::Duration = chrono::Duration::hours(24);
/// Most orders or trades per query.
pub const HISTORY_MAX_PER_CALL: u32 = 1000;
/// Longest window of one withdrawal or deposit history query.
pub const TRANSFER_WINDOW_MAX: chrono::Duration = chrono::Duration::days(90);
/// Most withdrawals or deposits per page.
pub const TRANSFER_PAGE: usize = 1000;
/// Safety bound on pages followed by one listing.
const MAX_PAGES: usize = 1000;
/// Safety bound on cancel rounds (list → cancel per symbol → list).
const MAX_CANCEL_ROUNDS: usize = 50;
/// Cancel attempts per symbol before its orders are reported as failed.
const MAX_TRIES_PER_SYMBOL: u32 = 3;

/// How to reach Binance and with which key.
#[derive(Debug, Clone)]
pub struct BinanceConfig {
    /// `--api-url`; `None` = [`DEFAULT_BASE_URL`]. https anywhere, plain http only to loopback.
    pub base_url: Option<String>,
    pub access_key: String,
    /// The HMAC secret, or the Ed25519 private key in PEM form.
    pub secret_key: Secret,
    /// Where raw responses are recorded; `None` records nothing (tests, probes).
    pub recorder: Option<RunDir>,
    pub request_timeout: Duration,
    pub max_read_retries: u32,
    pub retry_base_delay: Duration,
    /// A parent account's key that can delete the leaked key (a sub-account's).
    pub master: Option<MasterKey>,
}

impl BinanceConfig {
    /// Defaults: production URL, no recorder, 10 s timeout, 4 read retries, 250 ms backoff.
    pub fn new(access_key: impl Into<String>, secret_key: Secret) -> Self {
        BinanceConfig {
            base_url: None,
            access_key: access_key.into(),
            secret_key,
            recorder: None,
            request_timeout: Duration::from_secs(10),
            max_read_retries: 4,
            retry_base_delay: Duration::from_millis(250),
            master: None,
        }
    }
}

/// Binance's side of the pipeline: weights, used-weight headers, error bodies.
struct BinanceProtocol;

impl Protocol for BinanceProtocol {
    fn exchange(&self) -> &'static str {
        super::DESCRIPTOR.name
    }
    fn budget(&self, group: &str) -> crate::exchange::ratelimit::Budget {
        limits::budget_of(group)
    }
    fn group(&self, call: &Call) -> String {
        limits::cost(call).0.into()
    }
    fn weight(&self, call: &Call) -> u32 {
        limits::cost(call).1
    }
    fn observe(&self, headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
        limits::observe(headers)
    }
    fn observe_more(&self, headers: &reqwest::header::HeaderMap) -> Vec<BudgetReport> {
        limits::observe_more(headers)
    }
    fn rate_limit_headers(&self) -> &'static [&'static str] {
        limits::HEADERS
    }
    fn classify(&self, call: &Call, status: u16, body: &[u8]) -> Result<()> {
        let ok = (200..300).contains(&status);
        // Only `/sapi` answers can hide an error in a 200 (`{"success": false}`); the big
        // `/api/v3` lists are not parsed twice.
        if ok && !call.path.starts_with("/sapi/") {
            return Ok(());
        }
        let parsed = wire::parse_error(body);
        if ok && parsed.is_none() {
            return Ok(());
        }
        let (code, message) = parsed.unwrap_or_else(|| {
            (
                format!("http_{status}"),
                String::from_utf8_lossy(body).chars().take(200).collect(),
            )
        });
        let method = call.method.as_str();
        let kind = errors::kind_of(method, status, &code, &message);
        let advice = if code == errors::INVALID_KEY_IP_OR_PERMISSION && method != "GET" {
            errors::on_write(None).1
        } else if status == 403 && code.starts_with("http_") {
            "Binance's firewall refused the request (HTTP 403): too many requests from this IP or a security rule; wait, and check that no other client hammers the API from here"
        } else {
            errors::classify(&code, &message).1
        };
        Err(Error::Api {
            exchange: self.exchange().into(),
            status,
            code,
            kind,
            message: format!("{message} ({})", call.what()),
            advice: advice.into(),
        })
    }
}

/// What every key of one connection shares: the server-time offset and the market list.
#[derive(Default)]
struct Shared {
    clock: ServerClock,
    markets: OnceCell<Arc<Markets>>,
}

/// Signs with `X-MBX-APIKEY` and `recvWindow`, `timestamp`, `signature` in the query.
struct BinanceSigner {
    access_key: String,
    key: KeySigner,
    shared: Arc<Shared>,
}

impl Signer for BinanceSigner {
    fn sign(&self, call: &Call) -> Signed {
        let now = self.shared.clock.now_ms();
        Signed {
            headers: vec![("X-MBX-APIKEY".into(), self.access_key.clone())],
            extra_params: auth::signed_params(&self.key, &call.params, now),
        }
    }
}

/// The Binance spot adapter.
pub struct BinanceClient {
    pipe: Pipeline,
    caps: Capabilities,
    shared: Arc<Shared>,
    /// The key in full: the parent account names it to delete it.
    access_key: String,
    /// The parent account's pipeline and the sub-account, when given.
    master: Option<(Pipeline, Option<String>)>,
    /// The key's permissions as last read.
    restrictions: Mutex<Option<Restrictions>>,
}

impl std::fmt::Debug for BinanceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceClient")
            .field("base", &self.pipe.transport().base())
            .field("key", &self.pipe.key_masked())
            .finish_non_exhaustive()
    }
}

fn check_key(access_key: &str, secret: &Secret, what: &str) -> Result<KeySigner> {
    if access_key.trim().is_empty() || secret.is_empty() {
        return Err(Error::Config(what.into()));
    }
    KeySigner::from_secret(secret).map_err(|e| Error::Config(format!("BINANCE secret: {e}")))
}

fn capabilities(key_masked: &str, revoke_by_api: bool) -> Capabilities {
    let d = &super::DESCRIPTOR;
    let (en, _) = d.revoke.instructions(key_masked);
    Capabilities {
        name: d.name.into(),
        revoke_key_by_api: revoke_by_api,
        revoke_after_containment: false,
        read_key_permissions: true,
        batch_cancel: true,
        cancel_withdrawals: false,
        fills: FillsSource::PerWindow {
            max_window_secs: HISTORY_WINDOW_MAX.num_seconds() as u64,
            page_size: HISTORY_MAX_PER_CALL,
            needs_symbol: true,
        },
        closed_orders_max_window_secs: Some(HISTORY_WINDOW_MAX.num_seconds() as u64),
        closed_orders_max_per_call: HISTORY_MAX_PER_CALL,
        history_needs_symbol: true,
        client_id_field: "clientOrderId".into(),
        local_zone: d.locale.zone,
        manual_revoke_instructions_en: en,
        manual_revoke_instructions_local: String::new(),
        local_language: d.locale.language.into(),
    }
}

/// `startTime`/`endTime` of a half-open window: Binance's times are inclusive.
fn span_params(w: Window) -> [(String, String); 2] {
    [
        p("startTime", w.from.timestamp_millis()),
        p("endTime", w.to.timestamp_millis() - 1),
    ]
}

fn needs_market<'a>(m: Option<&'a Market>, what: &str) -> Result<&'a Market> {
    m.ok_or_else(|| {
        Error::Config(format!(
            "Binance keeps {what} per symbol: the query must name one"
        ))
    })
}

fn check_window(w: Window, what: &str) -> Result<()> {
    let span = w.to - w.from;
    if span <= chrono::Duration::zero() {
        return Err(Error::Config(format!(
            "{what} window is empty or reversed ({} → {})",
            crate::time::ts(w.from),
            crate::time::ts(w.to)
        )));
    }
    if span > HISTORY_WINDOW_MAX {
        return Err(Error::Config(format!(
            "{what} window of {} h exceeds Binance's 24-hour maximum; split it",
            span.num_hours()
        )));
    }
    Ok(())
}

impl BinanceClient {
    pub fn new(cfg: BinanceConfig) -> Result<Self> {
        let transport = Transport::new(
            cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            cfg.request_timeout,
            cfg.recorder,
            Arc::new(BinanceProtocol),
            RetryPolicy {
                max_read_retries: cfg.max_read_retries,
                base_delay: cfg.retry_base_delay,
            },
        )?;
        let key = check_key(
            &cfg.access_key,
            &cfg.secret_key,
            "the Binance API key and secret key must both be set (BINANCE_ACCESS_KEY, BINANCE_SECRET_KEY)",
        )?;
        let shared = Arc::new(Shared::default());
        let master = match cfg.master {
            Some(m) => {
                let signer = check_key(
                    &m.key.access_key,
                    &m.key.secret_key,
                    "the parent account's API key and secret key must both be set (BINANCE_MASTER_ACCESS_KEY, BINANCE_MASTER_SECRET_KEY)",
                )?;
                let masked = mask_key(&m.key.access_key);
                let pipe = Pipeline::new(
                    transport.clone(),
                    Arc::new(BinanceSigner {
                        access_key: m.key.access_key.clone(),
                        key: signer,
                        shared: shared.clone(),
                    }),
                    masked,
                );
                Some((pipe, m.sub_account))
            }
            None => None,
        };
        Ok(Self::on(transport, shared, cfg.access_key, key, master))
    }

    fn on(
        transport: Arc<Transport>,
        shared: Arc<Shared>,
        access_key: String,
        key: KeySigner,
        master: Option<(Pipeline, Option<String>)>,
    ) -> Self {
        let key_masked = mask_key(&access_key);
        let by_api = master.as_ref().is_some_and(|(_, sub)| sub.is_some());
        BinanceClient {
            caps: capabilities(&key_masked, by_api),
            pipe: Pipeline::new(
                transport,
                Arc::new(BinanceSigner {
                    access_key: access_key.clone(),
                    key,
                    shared: shared.clone(),
                }),
                key_masked,
            ),
            shared,
            access_key,
            master,
            restrictions: Mutex::new(None),
        }
    }

    /// A client for another key of the same account (the read-only key), sharing this one's
    /// connection pool, rate limiter (Binance counts weight per IP), clock offset, market list
    /// and run directory.
    pub fn with_key(&self, access_key: impl Into<String>, secret_key: Secret) -> Result<Self> {
        let access_key = access_key.into();
        let key = check_key(
            &access_key,
            &secret_key,
            "the other key's API key and secret key must both be set",
        )?;
        Ok(Self::on(
            self.pipe.transport().clone(),
            self.shared.clone(),
            access_key,
            key,
            None,
        ))
    }

    /// The limiter, to adjust a budget (tests).
    pub fn rate_limiter(&self) -> &crate::exchange::ratelimit::RateLimiter {
        self.pipe.limiter()
    }

    /// The clock offset in use (server − local), milliseconds.
    pub fn clock_offset_ms(&self) -> i64 {
        self.shared.clock.offset_ms()
    }

    /// Reads Binance's clock and adopts the offset.
    async fn sync_time(&self) -> Result<ServerTime> {
        let call = Call::public("/api/v3/time", vec![]);
        let st = self
            .pipe
            .read(call, |a: &Answer| {
                let server = wire::ms(wire::parse_server_time(&a.body)?)?;
                Ok(a.server_time(server))
            })
            .await?;
        self.shared.clock.set(&st);
        Ok(st)
    }

    /// The first signed request of a connection reads the clock first; a failure leaves the
    /// local clock in use (a `-1021` then reads it again).
    async fn ensure_time(&self) {
        self.shared
            .clock
            .ensure("Binance", || self.sync_time())
            .await;
    }

    /// The market list, read once per connection before the first answer that names a
    /// symbol. When it cannot be read, symbols are split at the quote assets Binance lists
    /// ([`super::split_symbol`]), as the offline rebuild does without it.
    async fn markets_table(&self) -> Arc<Markets> {
        self.shared
            .markets
            .get_or_init(|| async {
                let call = Call::public("/api/v3/exchangeInfo", vec![]);
                match self
                    .pipe
                    .read(call, |a| wire::parse_exchange_info(&a.body))
                    .await
                {
                    Ok(list) => Arc::new(
                        list.into_iter()
                            .map(|m| (m.market.symbol.to_string(), m))
                            .collect(),
                    ),
                    Err(e) => {
                        tracing::warn!("could not read Binance's market list: {e}");
                        Arc::new(Markets::new())
                    }
                }
            })
            .await
            .clone()
    }

    /// A signed read: the clock first, one more try after `-1021`.
    async fn read<T>(
        &self,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, WireError>,
    ) -> Result<T> {
        self.ensure_time().await;
        match self.pipe.read(call.clone(), &parse).await {
            Err(e) if e.kind() == Some(ErrorKind::ClockSkew) => {
                self.sync_time().await?;
                self.pipe.read(call, &parse).await
            }
            other => other,
        }
    }

    /// A signed write: never resent, except once after `-1021` (refused before Binance
    /// acted). A `-2015` is classified by what the same key can still read.
    async fn write(&self, call: Call) -> Result<Answer> {
        self.ensure_time().await;
        let res = match self.pipe.write(call.clone()).await {
            Err(e) if e.kind() == Some(ErrorKind::ClockSkew) => {
                self.sync_time().await?;
                self.pipe.write(call).await
            }
            other => other,
        };
        match res {
            Err(Error::Api {
                exchange,
                status,
                code,
                message,
                ..
            }) if code == errors::INVALID_KEY_IP_OR_PERMISSION => {
                let still_reads = match self.restrictions_now().await {
                    Ok(_) => Some(true),
                    Err(e) if e.is_key_dead() => Some(false),
                    Err(_) => None,
                };
                let (kind, advice) = errors::on_write(still_reads);
                Err(Error::Api {
                    exchange,
                    status,
                    code,
                    kind,
                    message,
                    advice: advice.into(),
                })
            }
            other => other,
        }
    }

    /// Sends one cancel (`DELETE /api/v3/openOrders` of a symbol, `DELETE /api/v3/orderList`)
    /// and notes what its answer says about each order. An unreadable answer, nothing left to
    /// cancel (filled or cancelled meanwhile) and an unknown outcome are left to the next
    /// listing; a refusal is returned for the report; a dead key or an error that ends the
    /// run is the error.
    async fn cancel_and_note(
        &self,
        call: Call,
        answered: &mut HashMap<String, wire::Cancelled>,
    ) -> Result<Option<Error>> {
        match self.write(call).await {
            Ok(a) => {
                if let Ok(list) = wire::parse_cancelled(&a.body) {
                    for c in list {
                        answered.insert(c.order_id.clone(), c);
                    }
                }
                Ok(None)
            }
            Err(e) if e.kind() == Some(ErrorKind::NotFound) => Ok(None),
            Err(e) if outcome_unknown(&e) => Ok(None),
            Err(e @ Error::Api { .. }) if !e.is_key_dead() && !e.is_out_of_scope() => Ok(Some(e)),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v3/openOrderList`: the order lists still executing, every symbol (weight 6).
    async fn open_order_lists(&self) -> Result<Vec<wire::OpenList>> {
        self.read(Call::get("/api/v3/openOrderList", vec![]), |a| {
            wire::parse_open_lists(&a.body)
        })
        .await
    }

    /// `GET /sapi/v1/account/apiRestrictions`, remembered.
    async fn restrictions_now(&self) -> Result<Restrictions> {
        let r = self
            .read(Call::get("/sapi/v1/account/apiRestrictions", vec![]), |a| {
                wire::parse_restrictions(&a.body)
            })
            .await?;
        *self.restrictions.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.clone());
        Ok(r)
    }

    async fn get_order(&self, market: &Market, id: &str) -> Result<Order> {
        let markets = self.markets_table().await;
        self.read(
            Call::get(
                "/api/v3/order",
                vec![p("symbol", &market.symbol), p("orderId", id)],
            ),
            |a| wire::parse_order(&a.body, &markets, a.prov.clone()),
        )
        .await
    }

    /// Every withdrawal or deposit since `since`, in windows of ≤ 90 days, pages of 1000.
    async fn transfers(
        &self,
        path: &str,
        kind: TransferKind,
        since: DateTime<Utc>,
    ) -> Result<Vec<Transfer>> {
        let now = crate::time::now() + chrono::Duration::seconds(60);
        let mut out: Vec<Transfer> = Vec::new();
        let mut from = since;
        while from < now {
            let to = (from + TRANSFER_WINDOW_MAX).min(now);
            for page in 0..MAX_PAGES {
                let mut params = span_params(Window { from, to }).to_vec();
                params.push(p("offset", page * TRANSFER_PAGE));
                params.push(p("limit", TRANSFER_PAGE));
                let rows = self
                    .read(Call::get(path, params), |a| match kind {
                        TransferKind::Withdrawal => {
                            wire::parse_withdrawals(&a.body, a.prov.clone())
                        }
                        TransferKind::Deposit => wire::parse_deposits(&a.body, a.prov.clone()),
                    })
                    .await?;
                let n = rows.len();
                out.extend(rows);
                if n < TRANSFER_PAGE {
                    break;
                }
            }
            from = to;
        }
        let mut seen = BTreeSet::new();
        out.retain(|t| t.created_at >= since && seen.insert(t.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `GET /sapi/v1/accountSnapshot?type=SPOT` over the window's last 30 days.
    async fn snapshots(&self, window: Window) -> Result<(Vec<wire::DaySnapshot>, Window)> {
        let now = crate::time::now();
        // "The query time period must be less than 30 days": a minute short of it.
        let from = window.from.max(
            now - chrono::Duration::days(super::scan::SNAPSHOT_DAYS) + chrono::Duration::minutes(1),
        );
        let to = window.to.min(now);
        let span = Window {
            from,
            to: to.max(from),
        };
        let params = vec![
            p("type", "SPOT"),
            p("startTime", span.from.timestamp_millis()),
            p("endTime", span.to.timestamp_millis()),
            p("limit", 30),
        ];
        let days = self
            .read(Call::get("/sapi/v1/accountSnapshot", params), |a| {
                wire::parse_snapshots(&a.body)
            })
            .await?;
        Ok((days, span))
    }

    /// Asks every listed symbol quoted in a touched asset for the account's latest order
    /// (`allOrders` with `limit=1` and no window: Binance answers the most recent), and adds
    /// those with one in the window; the bases found are touched in turn, until no new one
    /// turns up. A coin bought with the victim's USDT and sold again before the next daily
    /// snapshot is found this way, though no balance, snapshot or transfer shows it.
    async fn probe_quoted(
        &self,
        markets: &Markets,
        scan: &mut MarketScan,
        assets: &mut BTreeSet<String>,
        window: Window,
    ) -> Result<()> {
        let mut probed: BTreeSet<String> = BTreeSet::new();
        let mut found = Vec::new();
        let mut failed = Vec::new();
        loop {
            let todo: Vec<Market> = super::scan::quoted_in(markets, assets, scan)
                .into_iter()
                .filter(|m| !probed.contains(m.as_str()))
                .collect();
            if todo.is_empty() {
                break;
            }
            tracing::info!(
                "asking {} symbols quoted in a touched asset for the account's latest order (weight 20 each)",
                todo.len()
            );
            for m in todo {
                probed.insert(m.to_string());
                let call = Call::get(
                    "/api/v3/allOrders",
                    vec![p("symbol", &m.symbol), p("limit", 1)],
                );
                match self
                    .read(call, |a| wire::parse_latest_order_time(&a.body))
                    .await
                {
                    Ok(Some(t)) if t >= window.from => {
                        found.push(m.to_string());
                        assets.insert(m.base.to_string());
                        super::scan::add_probed(scan, markets, m, t);
                    }
                    Ok(_) => {}
                    Err(e) if e.is_key_dead() || e.stops_run() => return Err(e),
                    Err(e) => failed.push((m.to_string(), e.to_string())),
                }
            }
        }
        super::scan::record_probe(scan, probed.len(), found, failed);
        Ok(())
    }

    /// The parent account deletes the leaked sub-account key; then the key must be refused.
    async fn revoke_by_master(&self, master: &Pipeline, sub_account: &str) -> Result<()> {
        // The key's full id goes into the call: keep it out of the saved sidecars.
        let _ = Secret::new(self.access_key.clone());
        let call = Call::delete(
            "/sapi/v1/sub-account/subAccountApi",
            vec![
                p("email", sub_account),
                p("subAccountApiKey", &self.access_key),
            ],
        );
        let what = call.what();
        self.ensure_time().await;
        let err = match master.write(call).await {
            Ok(_) => return Ok(()),
            Err(e) if outcome_unknown(&e) => e,
            Err(e) => return Err(e),
        };
        // Unknown outcome: the key itself says whether it is gone.
        let check = self.restrictions_now().await;
        crate::exchange::http::settle_deletion(what, &err, check, Error::is_key_dead)
    }
}

#[async_trait]
impl Exchange for BinanceClient {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn pipeline(&self) -> Option<&crate::exchange::http::Pipeline> {
        Some(&self.pipe)
    }

    /// `GET /api/v3/time` (milliseconds; local time is the midpoint of the exchange), adopted
    /// as the signing clock's offset.
    async fn server_time(&self) -> Result<ServerTime> {
        self.sync_time().await
    }

    async fn balances(&self) -> Result<Vec<Balance>> {
        self.read(Call::get("/api/v3/account", vec![]), |a| {
            wire::parse_balances(&a.body)
        })
        .await
    }

    /// Binance shows one key only: the one signing, through `apiRestrictions`.
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let r = self.restrictions_now().await?;
        Ok(vec![wire::key_of(&r, self.pipe.key_masked())])
    }

    /// Harmless reads only: `apiRestrictions` says what the key may do. It is critical when it
    /// can withdraw or move funds, or trade with no IP restriction (then it trades from
    /// anywhere, the thief's machine included).
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        let r = self.restrictions_now().await?;
        let evidence = "GET /sapi/v1/account/apiRestrictions answered 200";
        let scopes: Vec<ScopeProbe> = r
            .scopes()
            .into_iter()
            .map(|(name, held)| ScopeProbe {
                scope: name.into(),
                class: super::DESCRIPTOR.scope_class(name),
                held,
                evidence: match held {
                    Some(h) => format!("{evidence}: {name}={h}"),
                    None => format!("{evidence} without {name}"),
                },
            })
            .collect();
        let held = |n: &str| scopes.iter().any(|s| s.scope == n && s.held == Some(true));
        let moves: Vec<&str> = scopes
            .iter()
            .filter(|s| s.held == Some(true) && s.class.moves_funds())
            .map(|s| s.scope.as_str())
            .collect();
        let trades = held("enableSpotAndMarginTrading")
            || held("enableMargin")
            || held("enableFutures")
            || held("enableVanillaOptions")
            || held("enablePortfolioMarginTrading")
            || held("enableFixApiTrade");
        let mut reasons = Vec::new();
        if !moves.is_empty() {
            reasons.push(format!(
                "the key can move funds off the account ({})",
                moves.join(", ")
            ));
        }
        match r.ip_restrict {
            Some(false) if trades => reasons.push(
                "the key can trade and has no IP restriction (Unrestricted): it works from any machine, the thief's included".into(),
            ),
            Some(false) => reasons.push("the key has no IP restriction (Unrestricted)".into()),
            Some(true) => reasons.push("the key is restricted to trusted IPs (Binance does not show the list)".into()),
            None => reasons.push("Binance did not say whether the key is IP-restricted: assume it is not".into()),
        }
        if let Some(t) = r.trading_authority_expiration_time {
            if let Ok(at) = wire::ms(t) {
                reasons.push(format!(
                    "its trading permission expires at {} (tradingAuthorityExpirationTime)",
                    crate::time::ts(at)
                ));
            }
        }
        let critical = !moves.is_empty() || (trades && r.ip_restrict != Some(true));
        Ok(PermissionProbe {
            scopes,
            ip_restricted: r.ip_restrict,
            expire_at: None,
            critical,
            reasons,
        })
    }

    /// Every open order of every symbol in one call (weight 80).
    async fn open_orders(&self) -> Result<Vec<Order>> {
        let markets = self.markets_table().await;
        let mut out = self
            .read(Call::get("/api/v3/openOrders", vec![]), |a| {
                wire::parse_orders(&a.body, &markets, a.prov.clone())
            })
            .await?;
        let mut seen = BTreeSet::new();
        out.retain(|o| seen.insert(o.id.clone()));
        Ok(out)
    }

    /// `GET /api/v3/allOrders` for one symbol and a window of ≤ 24 h. Binance lists open
    /// orders there too; they are kept, so the caller's count against the cap is the count
    /// Binance returned.
    async fn closed_orders(&self, q: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        let market = needs_market(q.market.as_ref(), "orders")?;
        check_window(q.window, "orders")?;
        if q.limit == 0 || q.limit > HISTORY_MAX_PER_CALL {
            return Err(Error::Config(format!(
                "orders limit {} must be between 1 and {HISTORY_MAX_PER_CALL}",
                q.limit
            )));
        }
        let markets = self.markets_table().await;
        let mut params = vec![p("symbol", &market.symbol)];
        params.extend(span_params(q.window));
        params.push(p("limit", q.limit));
        let mut out = self
            .read(Call::get("/api/v3/allOrders", params), |a| {
                wire::parse_orders(&a.body, &markets, a.prov.clone())
            })
            .await?;
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// `allOrders` with `startTime`/`endTime` answers from the window's start, by `orderId`
    /// ascending: a full answer holds the window's oldest orders.
    fn closed_orders_full_page(&self) -> crate::exchange::FullPage {
        crate::exchange::FullPage::Oldest
    }

    /// `GET /api/v3/order`, and its trades (`myTrades` by `orderId`) when it filled.
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        let market = needs_market(order.market.as_ref(), "orders")?;
        let o = self.get_order(market, &order.id).await?;
        if o.executed_volume.is_zero() {
            return Ok((o, Vec::new()));
        }
        let markets = self.markets_table().await;
        let fills = self
            .read(
                Call::get(
                    "/api/v3/myTrades",
                    vec![p("symbol", &market.symbol), p("orderId", &order.id)],
                ),
                |a| wire::parse_trades(&a.body, &markets, a.prov.clone()),
            )
            .await?;
        Ok((o, fills))
    }

    /// `GET /api/v3/myTrades` for one symbol and a window of ≤ 24 h; a full page continues
    /// with `fromId` (Binance takes no times beside it) until a trade passes the window.
    async fn fills(&self, q: &FillsQuery) -> Result<Vec<Fill>> {
        let market = needs_market(q.market.as_ref(), "trades")?;
        check_window(q.window, "trades")?;
        let limit = q.limit.clamp(1, HISTORY_MAX_PER_CALL);
        let markets = self.markets_table().await;
        let parse = |a: &Answer| wire::parse_trades(&a.body, &markets, a.prov.clone());
        let mut params = vec![p("symbol", &market.symbol)];
        params.extend(span_params(q.window));
        params.push(p("limit", limit));
        let mut page = self
            .read(Call::get("/api/v3/myTrades", params), parse)
            .await?;
        let mut out: Vec<Fill> = Vec::new();
        for _ in 0..MAX_PAGES {
            let full = page.len() as u32 >= limit;
            let last = page.iter().filter_map(|f| f.id.parse::<i64>().ok()).max();
            let past = page.iter().any(|f| f.created_at >= q.window.to);
            out.extend(
                page.into_iter()
                    .filter(|f| f.created_at >= q.window.from && f.created_at < q.window.to),
            );
            let (true, Some(last), false) = (full, last, past) else {
                break;
            };
            let params = vec![
                p("symbol", &market.symbol),
                p("fromId", last + 1),
                p("limit", limit),
            ];
            page = self
                .read(Call::get("/api/v3/myTrades", params), parse)
                .await?;
        }
        let mut seen = BTreeSet::new();
        out.retain(|f| seen.insert(f.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn history_markets(&self, req: &MarketScanRequest) -> Result<MarketScan> {
        let markets = self.markets_table().await;
        if markets.is_empty() {
            return Err(Error::Transport(
                "Binance's market list (GET /api/v3/exchangeInfo) could not be read, so the symbols to scan are unknown; retry".into(),
            ));
        }
        if req.selection != crate::exchange::MarketSelection::Touched {
            return super::scan::choose(
                &req.selection,
                &markets,
                req.window,
                super::scan::Sources {
                    balances: Ok(Vec::new()),
                    snapshots: Ok((Vec::new(), req.window)),
                    deposits: Ok(Vec::new()),
                    withdrawals: Ok(Vec::new()),
                    hints: &req.hints,
                },
            );
        }
        // A key refused while scanning stops the scan (the caller switches keys); any other
        // failure of one source is stated, and the others still count.
        fn soft<T>(r: Result<T>) -> Result<std::result::Result<T, String>> {
            match r {
                Err(e) if e.is_key_dead() || e.stops_run() => Err(e),
                Err(e) => Ok(Err(e.to_string())),
                Ok(v) => Ok(Ok(v)),
            }
        }
        let balances = soft(self.balances().await)?;
        let snapshots = soft(self.snapshots(req.window).await)?;
        let deposits = soft(self.deposits(req.window.from).await)?;
        let withdrawals = soft(self.withdrawals(req.window.from).await)?;
        let (mut scan, mut assets) = super::scan::choose_with_assets(
            &req.selection,
            &markets,
            req.window,
            super::scan::Sources {
                balances,
                snapshots,
                deposits,
                withdrawals,
                hints: &req.hints,
            },
        )?;
        self.probe_quoted(&markets, &mut scan, &mut assets, req.window)
            .await?;
        Ok(scan)
    }

    /// Per symbol and 24-hour window: `allOrders` (20) and, for the symbols that traded,
    /// `myTrades` (20), against 6,000 a minute.
    fn history_plan(&self, markets: usize, window: Window) -> Option<CallPlan> {
        let secs = (window.to - window.from).num_seconds().max(1) as u64;
        let windows = secs.div_ceil(HISTORY_WINDOW_MAX.num_seconds() as u64);
        let pairs = markets as u64 * windows;
        Some(CallPlan {
            calls: pairs * 2,
            cost: pairs * u64::from(limits::WEIGHT_PER_SYMBOL_DAY),
            unit: "request weight".into(),
            budget: u64::from(limits::WEIGHT_PER_MINUTE),
            budget_window_secs: 60,
        })
    }

    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        let m = self.markets_table().await;
        if m.is_empty() {
            return Err(Error::Transport(
                "Binance's market list could not be read".into(),
            ));
        }
        Ok(m.values().cloned().collect())
    }

    fn market(&self, symbol: &str) -> Result<Market> {
        if let Some(m) = self.shared.markets.get().and_then(|t| t.get(symbol)) {
            return Ok(m.market.clone());
        }
        (super::DESCRIPTOR.parse_symbol)(symbol).map_err(|e| Error::Config(e.to_string()))
    }

    async fn withdrawals(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers(
            "/sapi/v1/capital/withdraw/history",
            TransferKind::Withdrawal,
            since,
        )
        .await
    }

    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers(
            "/sapi/v1/capital/deposit/hisrec",
            TransferKind::Deposit,
            since,
        )
        .await
    }

    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        self.read(
            Call::get("/sapi/v1/capital/withdraw/address/list", vec![]),
            |a| wire::parse_addresses(&a.body),
        )
        .await
    }

    /// Rounds of: list every open order (one call) → `DELETE /api/v3/openOrders` for each
    /// symbol with open orders (order lists included: Binance cancels a list's legs together
    /// and answers with the list) → list again, until none is left. Then the order lists:
    /// `GET /api/v3/openOrderList` must answer none; a list still executing is cancelled with
    /// `DELETE /api/v3/orderList` and everything is listed again. A cancel whose outcome is
    /// unknown is settled by the next listing, never sent blindly again; orders that left the
    /// book without a cancel answer are read back for their final state. Running it with
    /// nothing open does nothing but the two listings.
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        // Every order listed open, as first seen, and what the cancels answered about it.
        let mut seen: BTreeMap<String, Order> = BTreeMap::new();
        let mut answered: HashMap<String, wire::Cancelled> = HashMap::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut tries: HashMap<String, u32> = HashMap::new();
        let mut still_open: Vec<Order> = Vec::new();
        // Order lists cancelled by id: tries, the refusal, the lists left open at the end.
        let mut list_tries: HashMap<String, u32> = HashMap::new();
        let mut list_failed: BTreeMap<String, String> = BTreeMap::new();
        let mut lists_left: Vec<wire::OpenList> = Vec::new();
        // Legs of lists cancelled by id that no order listing showed: (symbol, order id).
        let mut unlisted_legs: BTreeSet<(String, String)> = BTreeSet::new();
        let mut done = false;
        for _round in 0..MAX_CANCEL_ROUNDS {
            let open = self.open_orders().await?;
            for o in &open {
                seen.entry(o.id.clone()).or_insert_with(|| o.clone());
            }
            let symbols: BTreeSet<String> = open
                .iter()
                .map(|o| o.market.symbol.to_string())
                .filter(|s| tries.get(s).copied().unwrap_or(0) < MAX_TRIES_PER_SYMBOL)
                .collect();
            if open.is_empty() {
                let lists = self.open_order_lists().await?;
                if lists.is_empty() {
                    done = true;
                    break;
                }
                let (to_cancel, spent): (Vec<_>, Vec<_>) = lists.into_iter().partition(|l| {
                    list_tries.get(&l.list_id).copied().unwrap_or(0) < MAX_TRIES_PER_SYMBOL
                });
                if to_cancel.is_empty() {
                    lists_left = spent;
                    break;
                }
                for l in to_cancel {
                    *list_tries.entry(l.list_id.clone()).or_default() += 1;
                    for id in &l.order_ids {
                        unlisted_legs.insert((l.symbol.clone(), id.clone()));
                    }
                    let call = Call::delete(
                        "/api/v3/orderList",
                        vec![p("symbol", &l.symbol), p("orderListId", &l.list_id)],
                    );
                    if let Some(e) = self.cancel_and_note(call, &mut answered).await? {
                        list_failed.insert(l.list_id.clone(), e.to_string());
                    }
                }
                continue;
            }
            if symbols.is_empty() {
                still_open = open;
                break;
            }
            for symbol in symbols {
                *tries.entry(symbol.clone()).or_default() += 1;
                let call = Call::delete("/api/v3/openOrders", vec![p("symbol", &symbol)]);
                if let Some(e) = self.cancel_and_note(call, &mut answered).await? {
                    for o in open.iter().filter(|o| o.market.symbol == symbol.as_str()) {
                        failed.insert(o.id.clone(), e.to_string());
                    }
                }
            }
        }
        let mut report = CancelReport::default();
        // A list's legs no listing showed open are read once, for the report.
        for (symbol, id) in unlisted_legs {
            if seen.contains_key(&id) {
                continue;
            }
            let read = match self.market(&symbol) {
                Ok(m) => self.get_order(&m, &id).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(o) => {
                    seen.insert(id, o);
                }
                Err(e) if e.is_key_dead() => return Err(e),
                Err(e) => report.failed.push(CancelFailure {
                    order_id: id,
                    reason: format!("a leg of an order list; its state could not be read: {e}"),
                }),
            }
        }
        for l in &lists_left {
            report.failed.push(CancelFailure {
                order_id: format!("orderList {}", l.list_id),
                reason: list_failed.get(&l.list_id).cloned().unwrap_or_else(|| {
                    format!(
                        "order list on {} still open after its cancels (orders {})",
                        l.symbol,
                        l.order_ids.join(", ")
                    )
                }),
            });
        }
        let open_ids: BTreeSet<&String> = still_open.iter().map(|o| &o.id).collect();
        for (id, o) in &seen {
            if open_ids.contains(id) {
                report.still_open(id, failed.get(id), "still open after its symbol's cancels");
                continue;
            }
            let read_back = match answered.get(id) {
                Some(c) => {
                    let mut o = o.clone();
                    o.state = wire::order_state(&c.status);
                    o.executed_volume = c.executed_volume;
                    o.remaining_volume = o
                        .volume
                        .map(|v| (v - c.executed_volume).max(rust_decimal::Decimal::ZERO));
                    if c.executed_funds.is_some() {
                        o.executed_funds = c.executed_funds;
                    }
                    Ok(o)
                }
                // Left the book without a cancel answer naming it: read its final state.
                None => self.get_order(&o.market, id).await,
            };
            report.settle(id, read_back, failed.get(id))?;
        }
        report.rounds_ran_out(done, still_open.is_empty(), MAX_CANCEL_ROUNDS);
        Ok(report)
    }

    async fn cancel_order(&self, order: &OrderRef) -> Result<Order> {
        let market = needs_market(order.market.as_ref(), "orders")?;
        let call = Call::delete(
            "/api/v3/order",
            vec![p("symbol", &market.symbol), p("orderId", &order.id)],
        );
        let what = format!(
            "{} symbol={} orderId={}",
            call.what(),
            market.symbol,
            order.id
        );
        let err = match self.write(call.clone()).await {
            Ok(a) => match wire::parse_cancelled(&a.body) {
                Ok(_) => None,
                Err(e) => Some(Pipeline::decode_error(&call, &a, e)),
            },
            Err(e) if outcome_unknown(&e) => Some(e),
            Err(e) => return Err(e),
        };
        // The cancel answer carries no creation time: the order is read back either way, and
        // after an unknown outcome its state decides, never a second DELETE.
        match (self.get_order(market, &order.id).await, err) {
            (Ok(o), None) => Ok(o),
            (Ok(o), Some(_)) if o.state != OrderState::Open => Ok(o),
            (Ok(_), Some(err)) => Err(Error::OutcomeUnknown {
                what,
                detail: format!(
                    "{err}; the order is still open, so the cancel did not take effect yet"
                ),
            }),
            (Err(e2), Some(err)) => Err(Error::OutcomeUnknown {
                what,
                detail: format!("{err}; reading the order back also failed: {e2}"),
            }),
            (Err(e2), None) => Err(e2),
        }
    }

    async fn cancel_withdrawal(&self, _id: &str) -> Result<Transfer> {
        Err(Error::Unsupported {
            exchange: super::DESCRIPTOR.name.into(),
            what: "cancelling a withdrawal (Binance has no API for it: contact Binance support at once)".into(),
        })
    }

    /// Only a parent account can delete a key by API (a sub-account's). The key is read once
    /// first, so the run's evidence shows it accepted before the deletion.
    async fn revoke_key(&self) -> Result<()> {
        let Some((master, sub)) = &self.master else {
            return Err(Error::Unsupported {
                exchange: super::DESCRIPTOR.name.into(),
                what: "deleting your own API key by API (Binance allows it only under API Management in the app or on the web)".into(),
            });
        };
        let Some(sub) = sub else {
            return Err(Error::Config(
                "to delete a sub-account's key with the parent account's key, set BINANCE_SUB_ACCOUNT to the sub-account's email".into(),
            ));
        };
        self.restrictions_now().await?;
        self.revoke_by_master(master, sub).await
    }

    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        let interval = match unit_minutes {
            1 => "1m",
            3 => "3m",
            5 => "5m",
            15 => "15m",
            30 => "30m",
            60 => "1h",
            120 => "2h",
            240 => "4h",
            _ => {
                return Err(Error::Config(format!(
                    "candle unit {unit_minutes} min is not one of Binance's 1, 3, 5, 15, 30, 60, 120, 240"
                )))
            }
        };
        if count == 0 || count > 1000 {
            return Err(Error::Config(format!(
                "candle count {count} must be between 1 and 1000"
            )));
        }
        let params = vec![
            p("symbol", &market.symbol),
            p("interval", interval),
            p("endTime", to.timestamp_millis() - 1),
            p("limit", count),
        ];
        self.pipe
            .read(Call::public("/api/v3/klines", params), |a| {
                wire::parse_klines(&a.body, market)
            })
            .await
    }
}
