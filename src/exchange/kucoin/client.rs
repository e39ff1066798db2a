//! The live KuCoin spot adapter: [`KucoinClient`] implements [`Exchange`] over the shared
//! request pipeline ([`crate::exchange::http`]), with KuCoin's signer ([`super::auth`]),
//! resource-pool limits ([`super::limits`]), error map ([`super::errors`]) and wire formats
//! ([`super::wire`], shared with the offline rebuild).
//!
//! What KuCoin adds to the pipeline, and where it is handled here:
//! - **Errors in any answer.** Every body's `code` is checked ([`KucoinProtocol`]); `429000`
//!   is a rate-limit refusal the pipeline waits out.
//! - **Clock.** Every signed request carries `KC-API-TIMESTAMP`; the offset is read from
//!   `GET /api/v1/timestamp` before the first signed request, and a `400002` reads it again and
//!   sends the request once more (refused before KuCoin acted).
//! - **Two order families.** High-frequency (`/api/v1/hf/…`) orders and fills are kept per
//!   symbol and paged by `lastId`; classic (`/api/v1/orders`, `/api/v1/fills`) ones per
//!   account, in numbered pages. Both are read and merged; a path KuCoin does not serve
//!   (`404000`) for the classic family counts as "no classic orders" and is logged.
//! - **Windows.** Order and fill queries span at most 7 days; so do the wallet histories
//!   respond asks for.
//! - **Revocation.** A key cannot delete itself; a master account's key deletes a
//!   sub-account's key ([`KucoinClient::revoke_key`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use super::auth;
use super::errors;
use super::limits;
use super::wire::{self, KeyInfo, Markets, Page, WireError};
use crate::exchange::http::{
    outcome_unknown, p, Answer, BudgetReport, Call, Pipeline, Protocol, RetryPolicy, ServerClock,
    Signed, Signer, Transport,
};
use crate::exchange::registry::{KeyMaterial, MasterKey};
use crate::exchange::{
    ApiKeyInfo, Balance, CallPlan, CancelReport, Candle, Capabilities, ClosedOrdersQuery, Error,
    ErrorKind, Exchange, Fill, FillsQuery, FillsSource, Market, MarketInfo, MarketScan,
    MarketScanRequest, MarketSelection, Order, OrderRef, OrderState, PermissionProbe, Result,
    ScopeProbe, ServerTime, Transfer, TransferKind, TransferStatus, Window, WithdrawalAddress,
};
use crate::rundir::RunDir;
use crate::secret::{mask_key, Secret};

/// KuCoin's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.kucoin.com";
/// Longest window of one order or fill query.
pub const HISTORY_WINDOW_MAX: chrono::Duration = chrono::Duration::days(7);
/// Rows per HF page (`limit`, at most 100).
pub const HF_PAGE: u32 = 100;
/// Rows per classic or wallet page (`pageSize`, 10 to 500).
pub const CLASSIC_PAGE: u32 = 500;
/// Transfers per page.
pub const TRANSFER_PAGE: u32 = 100;
/// Longest window of one withdrawal or deposit query respond sends.
pub const TRANSFER_WINDOW_MAX: chrono::Duration = chrono::Duration::days(7);
/// Most closed orders one [`Exchange::closed_orders`] call collects (pages followed): the
/// export halves a window that reaches it.
pub const CLOSED_ORDERS_MAX: u32 = 1000;
/// What the export asks one closed-orders call for: a call cut at its limit answers only the
/// orders it provably holds ([`provable`]), usually all but a few of its ten pages of 100, so
/// a limit a little under ten pages lets a call end on a whole page.
pub const CLOSED_ORDERS_CALL: u32 = 950;
/// Classic spans read to their end kept to answer the export's later queries inside them.
const CLASSIC_KEPT: usize = 32;
/// Safety bound on pages followed by one listing: 10 million rows at 100 a page. A cursor
/// that comes back is caught at once ([`KucoinClient::walk`]); this only stops a list whose
/// cursor never repeats and never ends. It is no limit on real history: a symbol's fills of
/// one 7-day window run past 100,000 (1,000 pages) for a bot placing a million orders a week.
const MAX_PAGES: usize = 100_000;
/// The listing of stop orders not triggered yet (page-numbered).
const STOP_ORDERS: &str = "/api/v1/stop-order";
/// Safety bound on cancel rounds (cancel all → list → again).
const MAX_CANCEL_ROUNDS: usize = 10;

/// How to reach KuCoin and with which key.
#[derive(Debug, Clone)]
pub struct KucoinConfig {
    /// `--api-url`; `None` = [`DEFAULT_BASE_URL`]. https anywhere, plain http only to loopback.
    pub base_url: Option<String>,
    pub access_key: String,
    pub secret_key: Secret,
    /// The key's passphrase (its third part).
    pub passphrase: Option<Secret>,
    /// Where raw responses are recorded; `None` records nothing (tests, probes).
    pub recorder: Option<RunDir>,
    /// A master account's key and the sub-account the leaked key belongs to.
    pub master: Option<MasterKey>,
    pub request_timeout: Duration,
    pub max_read_retries: u32,
    pub retry_base_delay: Duration,
}

impl KucoinConfig {
    /// Defaults: production URL, no recorder, 10 s timeout, 4 read retries, 250 ms backoff.
    pub fn new(access_key: impl Into<String>, secret_key: Secret) -> Self {
        KucoinConfig {
            base_url: None,
            access_key: access_key.into(),
            secret_key,
            passphrase: None,
            recorder: None,
            master: None,
            request_timeout: Duration::from_secs(10),
            max_read_retries: 4,
            retry_base_delay: Duration::from_millis(250),
        }
    }
}

/// KuCoin's side of the pipeline: resource pools, `gw-ratelimit-remaining`, `code`.
pub struct KucoinProtocol;

impl Protocol for KucoinProtocol {
    fn exchange(&self) -> &'static str {
        super::DESCRIPTOR.name
    }
    fn budget(&self, group: &str) -> crate::exchange::ratelimit::Budget {
        limits::budget_of(group)
    }
    fn group(&self, call: &Call) -> String {
        limits::group(call)
    }
    fn weight(&self, call: &Call) -> u32 {
        limits::weight(call)
    }
    fn observe(&self, _headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
        None
    }
    fn observe_call(
        &self,
        call: &Call,
        headers: &reqwest::header::HeaderMap,
    ) -> Option<BudgetReport> {
        limits::observe(call, headers)
    }
    fn rate_limit_headers(&self) -> &'static [&'static str] {
        limits::HEADERS
    }
    fn window_left(&self, _call: &Call, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        limits::window_left(headers)
    }
    fn retry_after(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        limits::retry_after(headers)
    }
    fn classify(&self, call: &Call, status: u16, body: &[u8]) -> Result<()> {
        let ok = (200..300).contains(&status);
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
        if code == errors::RATE_LIMIT {
            return Err(Error::RateLimited {
                status: 429,
                retry_after_ms: None,
            });
        }
        let kind = if code == "http_404" {
            ErrorKind::InvalidRequest
        } else {
            errors::kind_of_msg(status, &code, &message)
        };
        Err(Error::Api {
            exchange: self.exchange().into(),
            status,
            advice: errors::advice_msg(&code, &message).into(),
            code,
            kind,
            message: format!("{message} ({})", call.what()),
        })
    }
}

/// What every key of one connection shares: the server-time offset and the market list.
#[derive(Default)]
struct Shared {
    clock: ServerClock,
    markets: OnceCell<Arc<Markets>>,
}

/// Signs with the five `KC-API-*` headers over the unencoded query or the JSON body.
struct KucoinSigner {
    access_key: String,
    secret: Secret,
    passphrase: Secret,
    shared: Arc<Shared>,
}

impl Signer for KucoinSigner {
    fn sign(&self, call: &Call) -> Signed {
        let now = self.shared.clock.now_ms();
        let (query, body) = match &call.body {
            Some(b) => (String::new(), b.clone()),
            None => (auth::raw_query(&call.params), String::new()),
        };
        Signed {
            headers: auth::headers(
                &self.access_key,
                &self.secret,
                &self.passphrase,
                now,
                &auth::prehash(now, call.method.as_str(), &call.path, &query, &body),
            ),
            extra_params: Vec::new(),
        }
    }
}

/// Which family an order belongs to: where to read it back and cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hf,
    Classic,
    /// A stop order not triggered yet (`/api/v1/stop-order`).
    Stop,
}

/// The KuCoin spot adapter.
pub struct KucoinClient {
    pipe: Pipeline,
    caps: Capabilities,
    shared: Arc<Shared>,
    /// The key in full and its passphrase: a master account names both to delete it.
    access_key: String,
    passphrase: Secret,
    /// The master account's pipeline and the sub-account, when given.
    master: Option<(Pipeline, Option<String>)>,
    /// The key's settings as last read.
    key_info: Mutex<Option<KeyInfo>>,
    /// The family of every order seen, by id.
    families: Mutex<BTreeMap<String, Family>>,
    /// Classic closed orders of spans read to their end, by symbol, newest span last.
    classic_read: Mutex<std::collections::VecDeque<ClassicSpan>>,
}

/// One symbol's classic closed orders of a span, read to the end of the list.
struct ClassicSpan {
    symbol: String,
    window: Window,
    orders: Vec<(Order, DateTime<Utc>)>,
}

/// How much of a list read newest first and cut at its limit is provably whole. The list is
/// ordered by a time no earlier than each order's creation (KuCoin's HF done list by last
/// update, classic lists by creation): every order whose time is after the rows' oldest one is
/// in the rows, and so is every order *created* after it. Answers that oldest time and how
/// many rows were created from it on.
fn provable(rows: &[(Order, DateTime<Utc>)]) -> (Option<DateTime<Utc>>, usize) {
    let bound = rows.iter().map(|(_, t)| *t).min();
    let n = bound.map_or(0, |b| {
        rows.iter().filter(|(o, _)| o.created_at >= b).count()
    });
    (bound, n)
}

impl std::fmt::Debug for KucoinClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KucoinClient")
            .field("base", &self.pipe.transport().base())
            .field("key", &self.pipe.key_masked())
            .finish_non_exhaustive()
    }
}

/// The three parts of a key, or which one is missing (named, never shown).
fn check_key(
    access_key: &str,
    secret: &Secret,
    passphrase: Option<&Secret>,
    prefix: &str,
) -> Result<Secret> {
    if access_key.trim().is_empty() || secret.is_empty() {
        return Err(Error::Config(format!(
            "the KuCoin API key and secret key must both be set ({prefix}_ACCESS_KEY, {prefix}_SECRET_KEY)"
        )));
    }
    match passphrase {
        Some(p) if !p.is_empty() => Ok(p.clone()),
        _ => Err(Error::Config(format!(
            "a KuCoin key has three parts: set {prefix}_PASSPHRASE too (the API passphrase chosen when the key was created)"
        ))),
    }
}

fn capabilities(key_masked: &str, revoke_by_api: bool) -> Capabilities {
    let d = &super::DESCRIPTOR;
    let (en, _) = d.revoke.instructions(key_masked);
    let week = HISTORY_WINDOW_MAX.num_seconds() as u64;
    Capabilities {
        name: d.name.into(),
        revoke_key_by_api: revoke_by_api,
        revoke_after_containment: false,
        read_key_permissions: true,
        batch_cancel: true,
        cancel_withdrawals: true,
        fills: FillsSource::PerWindow {
            max_window_secs: week,
            page_size: HF_PAGE,
            needs_symbol: true,
        },
        closed_orders_max_window_secs: Some(week),
        closed_orders_max_per_call: CLOSED_ORDERS_CALL,
        history_needs_symbol: true,
        client_id_field: "clientOid".into(),
        local_zone: d.locale.zone,
        manual_revoke_instructions_en: en,
        manual_revoke_instructions_local: String::new(),
        local_language: d.locale.language.into(),
    }
}

/// `startAt`/`endAt` of a half-open window: KuCoin's times are inclusive.
fn span_params(w: Window) -> [(String, String); 2] {
    [
        p("startAt", w.from.timestamp_millis()),
        p("endAt", w.to.timestamp_millis() - 1),
    ]
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
            "{what} window of {} h exceeds KuCoin's 7-day maximum; split it",
            span.num_hours()
        )));
    }
    Ok(())
}

fn needs_market<'a>(m: Option<&'a Market>, what: &str) -> Result<&'a Market> {
    m.ok_or_else(|| {
        Error::Config(format!(
            "KuCoin keeps high-frequency {what} per symbol: the query must name one"
        ))
    })
}

/// KuCoin does not serve this path (the classic family on an account or a mock without it).
fn not_served(e: &Error) -> bool {
    matches!(e.code(), Some(errors::NO_SUCH_PATH | "http_404"))
}

/// A classic-family read: a path KuCoin does not serve is "nothing there", logged.
fn classic<T: Default>(r: Result<T>, what: &str) -> Result<T> {
    match r {
        Err(e) if not_served(&e) => {
            tracing::info!("KuCoin does not serve {what} here ({e}); no classic orders counted");
            Ok(T::default())
        }
        other => other,
    }
}

impl KucoinClient {
    pub fn new(cfg: KucoinConfig) -> Result<Self> {
        let transport = Transport::new(
            cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            cfg.request_timeout,
            cfg.recorder,
            Arc::new(KucoinProtocol),
            RetryPolicy {
                max_read_retries: cfg.max_read_retries,
                base_delay: cfg.retry_base_delay,
            },
        )?;
        let passphrase = check_key(
            &cfg.access_key,
            &cfg.secret_key,
            cfg.passphrase.as_ref(),
            "KUCOIN",
        )?;
        let shared = Arc::new(Shared::default());
        let master = match cfg.master {
            Some(m) => {
                let mp = check_key(
                    &m.key.access_key,
                    &m.key.secret_key,
                    m.key.passphrase.as_ref(),
                    "KUCOIN_MASTER",
                )?;
                let pipe = Pipeline::new(
                    transport.clone(),
                    Arc::new(KucoinSigner {
                        access_key: m.key.access_key.clone(),
                        secret: m.key.secret_key.clone(),
                        passphrase: mp,
                        shared: shared.clone(),
                    }),
                    mask_key(&m.key.access_key),
                );
                Some((pipe, m.sub_account))
            }
            None => None,
        };
        Ok(Self::on(
            transport,
            shared,
            cfg.access_key,
            cfg.secret_key,
            passphrase,
            master,
        ))
    }

    fn on(
        transport: Arc<Transport>,
        shared: Arc<Shared>,
        access_key: String,
        secret: Secret,
        passphrase: Secret,
        master: Option<(Pipeline, Option<String>)>,
    ) -> Self {
        let key_masked = mask_key(&access_key);
        let by_api = master.as_ref().is_some_and(|(_, sub)| sub.is_some());
        let fingerprint = crate::exchange::http::credentials_fingerprint(&[
            access_key.as_bytes(),
            secret.expose().as_bytes(),
            passphrase.expose().as_bytes(),
        ]);
        KucoinClient {
            caps: capabilities(&key_masked, by_api),
            pipe: Pipeline::new(
                transport,
                Arc::new(KucoinSigner {
                    access_key: access_key.clone(),
                    secret,
                    passphrase: passphrase.clone(),
                    shared: shared.clone(),
                }),
                key_masked,
            )
            .with_fingerprint(fingerprint),
            shared,
            access_key,
            passphrase,
            master,
            key_info: Mutex::new(None),
            families: Mutex::new(BTreeMap::new()),
            classic_read: Mutex::new(Default::default()),
        }
    }

    /// A client for another key of the same account (the read-only key), sharing this one's
    /// connection pool, rate limiter (KuCoin counts per account), clock offset, market list
    /// and run directory.
    pub fn with_key(&self, k: &KeyMaterial) -> Result<Self> {
        let passphrase = check_key(
            &k.access_key,
            &k.secret_key,
            k.passphrase.as_ref(),
            "KUCOIN_READONLY",
        )?;
        Ok(Self::on(
            self.pipe.transport().clone(),
            self.shared.clone(),
            k.access_key.clone(),
            k.secret_key.clone(),
            passphrase,
            None,
        ))
    }

    /// The clock offset in use (server − local), milliseconds.
    pub fn clock_offset_ms(&self) -> i64 {
        self.shared.clock.offset_ms()
    }

    async fn sync_time(&self) -> Result<ServerTime> {
        let call = Call::public("/api/v1/timestamp", vec![]);
        let st = self
            .pipe
            .read(call, |a: &Answer| {
                let ms = wire::parse_server_time(&a.body)?;
                let server = wire::ms_text(&ms.to_string())?;
                Ok(a.server_time(server))
            })
            .await?;
        self.shared.clock.set(&st);
        Ok(st)
    }

    async fn ensure_time(&self) {
        self.shared
            .clock
            .ensure("KuCoin", || self.sync_time())
            .await;
    }

    /// The spot market list, read once per connection. When it cannot be read, symbols are
    /// split at their dash, as the offline rebuild does without it.
    async fn markets_table(&self) -> Arc<Markets> {
        self.shared
            .markets
            .get_or_init(|| async {
                let call = Call::public("/api/v2/symbols", vec![]);
                match self.pipe.read(call, |a| wire::parse_symbols(&a.body)).await {
                    Ok(rows) => Arc::new(
                        rows.into_iter()
                            .map(|m| (m.market.symbol.to_string(), m))
                            .collect(),
                    ),
                    Err(e) => {
                        tracing::warn!("could not read KuCoin's market list: {e}");
                        Arc::new(Markets::new())
                    }
                }
            })
            .await
            .clone()
    }

    /// A signed read through `pipe`: the clock first, one more try after `400002`.
    async fn read_on<T>(
        &self,
        pipe: &Pipeline,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, WireError>,
    ) -> Result<T> {
        self.ensure_time().await;
        match pipe.read(call.clone(), &parse).await {
            Err(e) if e.kind() == Some(ErrorKind::ClockSkew) => {
                self.sync_time().await?;
                pipe.read(call, &parse).await
            }
            other => other,
        }
    }

    async fn read<T>(
        &self,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, WireError>,
    ) -> Result<T> {
        self.read_on(&self.pipe, call, parse).await
    }

    /// A signed write through `pipe`: never resent, except once after `400002`.
    async fn write_on(&self, pipe: &Pipeline, call: Call) -> Result<Answer> {
        self.ensure_time().await;
        match pipe.write(call.clone()).await {
            Err(e) if e.kind() == Some(ErrorKind::ClockSkew) => {
                self.sync_time().await?;
                pipe.write(call).await
            }
            other => other,
        }
    }

    async fn write(&self, call: Call) -> Result<Answer> {
        self.write_on(&self.pipe, call).await
    }

    /// Every page of a signed list: by `lastId` (HF lists) or by page number (classic and
    /// wallet lists, `currentPage`), until the last page or until `enough` rows are in.
    async fn pages<T>(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        numbered: bool,
        enough: usize,
        parse: impl Fn(&Answer) -> std::result::Result<Page<T>, WireError>,
    ) -> Result<Vec<T>> {
        self.walk(path, params, numbered, |rows| rows.len() >= enough, parse)
            .await
    }

    /// [`Self::pages`], stopping once `enough` says the rows read so far suffice.
    async fn walk<T>(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        numbered: bool,
        enough: impl Fn(&[T]) -> bool,
        parse: impl Fn(&Answer) -> std::result::Result<Page<T>, WireError>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        let mut cursors: HashSet<String> = HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut ps = params.clone();
            match (&next, numbered) {
                (Some(n), false) => ps.push(p("lastId", n)),
                (Some(n), true) => ps.push(p("currentPage", n)),
                (None, true) => ps.push(p("currentPage", 1)),
                (None, false) => {}
            }
            let page = match self.read(Call::get(path, ps), &parse).await {
                Ok(page) => page,
                // A path served for the first page and not for a later one is no empty list.
                Err(e) if next.is_some() && not_served(&e) => {
                    return Err(Error::Decode {
                        endpoint: path.to_string(),
                        detail: format!(
                        "a later page was refused ({e}), so the list could not be read to its end"
                    ),
                    })
                }
                Err(e) => return Err(e),
            };
            let empty = page.rows.is_empty();
            out.extend(page.rows);
            match page.next {
                None => return Ok(out),
                Some(_) if empty || enough(&out) => return Ok(out),
                // A list that does not end is never passed off as the whole: callers (the
                // export's completeness proof) read a short list as "nothing more".
                Some(n) if !cursors.insert(n.clone()) => {
                    return Err(Error::Decode {
                        endpoint: path.to_string(),
                        detail: "KuCoin sent a lastId it had sent before while announcing a next page, so the list could not be read to its end".into(),
                    })
                }
                Some(n) => next = Some(n),
            }
        }
        Err(Error::Decode {
            endpoint: path.to_string(),
            detail: format!(
                "still a next page after {MAX_PAGES} pages, so the list was not read to its end"
            ),
        })
    }

    /// The classic closed orders of `window`, when a span holding it was read to its end.
    fn classic_kept(&self, symbol: &str, window: Window) -> Option<Vec<(Order, DateTime<Utc>)>> {
        let kept = self.classic_read.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .rev()
            .find(|k| {
                k.symbol == symbol && k.window.from <= window.from && window.to <= k.window.to
            })
            .map(|k| {
                k.orders
                    .iter()
                    .filter(|(o, _)| o.created_at >= window.from && o.created_at < window.to)
                    .cloned()
                    .collect()
            })
    }

    /// Remembers a classic span read to its end (the last [`CLASSIC_KEPT`] of them).
    fn keep_classic(&self, symbol: &str, window: Window, rows: &[(Order, DateTime<Utc>)]) {
        let mut kept = self.classic_read.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= CLASSIC_KEPT {
            kept.pop_front();
        }
        kept.push_back(ClassicSpan {
            symbol: symbol.to_string(),
            window,
            orders: rows.to_vec(),
        });
    }

    fn note_family(&self, orders: &[Order], family: Family) {
        let mut f = self.families.lock().unwrap_or_else(|e| e.into_inner());
        for o in orders {
            f.insert(o.id.clone(), family);
        }
    }

    fn family_of(&self, id: &str) -> Option<Family> {
        self.families
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// `GET /api/v1/user/api-key`, remembered.
    async fn key_now(&self) -> Result<KeyInfo> {
        let k = self
            .read(Call::get("/api/v1/user/api-key", vec![]), |a| {
                wire::parse_key(&a.body)
            })
            .await?;
        *self.key_info.lock().unwrap_or_else(|e| e.into_inner()) = Some(k.clone());
        Ok(k)
    }

    /// `GET /api/v1/hf/orders/active/symbols`: the symbols with open HF orders.
    async fn hf_active_symbols(&self) -> Result<Vec<String>> {
        self.read(Call::get("/api/v1/hf/orders/active/symbols", vec![]), |a| {
            wire::parse_active_symbols(&a.body)
        })
        .await
    }

    /// One order, read back where its family keeps it: `GET /api/v1/hf/orders/{id}?symbol=`
    /// or `GET /api/v1/orders/{id}`; an order of unknown family is looked up in both.
    async fn get_order(&self, id: &str, market: Option<&Market>) -> Result<Order> {
        let markets = self.markets_table().await;
        let hf = |m: &Market| {
            Call::get(
                format!("/api/v1/hf/orders/{id}"),
                vec![p("symbol", &m.symbol)],
            )
        };
        let classic_call = Call::get(format!("/api/v1/orders/{id}"), vec![]);
        let parse = |a: &Answer| wire::parse_order(&a.body, &markets, a.prov.clone());
        match (self.family_of(id), market) {
            (Some(Family::Stop), _) => {
                self.read(Call::get(format!("{STOP_ORDERS}/{id}"), vec![]), parse)
                    .await
            }
            (Some(Family::Classic), _) | (None, None) => self.read(classic_call, parse).await,
            (_, Some(m)) => match self.read(hf(m), parse).await {
                Err(e)
                    if self.family_of(id).is_none()
                        && (e.kind() == Some(ErrorKind::NotFound) || not_served(&e)) =>
                {
                    self.read(classic_call, parse).await
                }
                other => other,
            },
            (Some(Family::Hf), None) => Err(Error::Config(format!(
                "KuCoin needs the symbol of high-frequency order {id} to read it"
            ))),
        }
    }

    /// Every withdrawal or deposit since `since`, in windows of ≤ 7 days, numbered pages.
    async fn transfers(&self, kind: TransferKind, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        let path = match kind {
            TransferKind::Withdrawal => "/api/v1/withdrawals",
            _ => "/api/v1/deposits",
        };
        let now = crate::time::now() + chrono::Duration::seconds(60);
        let mut out: Vec<Transfer> = Vec::new();
        let mut to = now;
        while to > since {
            let from = (to - TRANSFER_WINDOW_MAX).max(since);
            let mut params = span_params(Window { from, to }).to_vec();
            params.push(p("pageSize", TRANSFER_PAGE));
            let rows = self
                .pages(path, params, true, usize::MAX, |a| {
                    wire::parse_transfers(&a.body, kind, a.prov.clone())
                })
                .await?;
            out.extend(rows);
            to = from;
        }
        let mut seen = BTreeSet::new();
        out.retain(|t| t.created_at >= since && seen.insert(t.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The master account deletes the leaked sub-account key (`DELETE /api/v1/sub/api-key`
    /// with the key, its passphrase and the sub-account's name); an unknown outcome is settled
    /// by the key itself.
    async fn revoke_by_master(&self, master: &Pipeline, sub_account: &str) -> Result<()> {
        let call = Call::delete(
            "/api/v1/sub/api-key",
            vec![
                p("apiKey", &self.access_key),
                p("passphrase", self.passphrase.expose()),
                p("subName", sub_account),
            ],
        );
        let what = call.what();
        let err = match self.write_on(master, call).await {
            Ok(_) => return Ok(()),
            Err(e) if outcome_unknown(&e) => e,
            Err(e) => return Err(e),
        };
        let check = self.key_now().await;
        crate::exchange::http::settle_deletion(what, &err, check, |e| {
            e.code() == Some(errors::INVALID_KEY)
        })
    }

    /// The cancel-all calls of one round: HF (every symbol), classic, stop orders. Returns
    /// the ids the answers named and the symbols KuCoin said it could not cancel.
    async fn cancel_round(
        &self,
        ids: &mut BTreeSet<String>,
        failed_symbols: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        match self
            .write(Call::delete("/api/v1/hf/orders/cancelAll", vec![]))
            .await
        {
            Ok(a) => {
                for (s, e) in wire::parse_cancel_all_failed(&a.body).unwrap_or_default() {
                    failed_symbols.insert(s, e);
                }
            }
            Err(e) if outcome_unknown(&e) || e.kind() == Some(ErrorKind::NotFound) => {}
            Err(e) => return Err(e),
        }
        for call in [
            Call::delete("/api/v1/orders", vec![p("tradeType", "TRADE")]),
            Call::delete("/api/v1/stop-order/cancel", vec![p("tradeType", "TRADE")]),
        ] {
            let what = call.what();
            match self.write(call).await {
                Ok(a) => ids.extend(wire::parse_cancelled(&a.body).unwrap_or_default()),
                Err(e) if not_served(&e) => {
                    tracing::info!("KuCoin does not serve {what} here ({e})");
                }
                Err(e) if outcome_unknown(&e) || e.kind() == Some(ErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The stop orders not triggered yet, every page (`GET /api/v1/stop-order`). A path KuCoin
    /// does not serve (`404000`) on the first page counts as none, as for the cancel-all of
    /// stop orders; any other refusal is an error, never an empty list.
    async fn stop_orders(&self, markets: &Markets) -> Result<Vec<Order>> {
        let r = self
            .pages(
                STOP_ORDERS,
                vec![p("tradeType", "TRADE"), p("pageSize", CLASSIC_PAGE)],
                true,
                usize::MAX,
                |a| wire::parse_orders(&a.body, markets, a.prov.clone()),
            )
            .await;
        match r {
            Err(e) if not_served(&e) => {
                tracing::info!(
                    "KuCoin does not serve GET {STOP_ORDERS} here ({e}); no stop orders counted"
                );
                Ok(Vec::new())
            }
            other => other,
        }
    }

    /// The open HF orders of every symbol `active/symbols` names. That call needs the Spot
    /// permission: a key without it (a read-only key) reads every listed symbol of a currency
    /// with funds on hold instead (an open order holds what it may spend).
    async fn hf_open_orders(&self, markets: &Markets) -> Result<Vec<Order>> {
        let symbols = match self.hf_active_symbols().await {
            Ok(s) => s,
            Err(e) if e.is_out_of_scope() => {
                let held: BTreeSet<String> = self
                    .balances()
                    .await?
                    .into_iter()
                    .filter(|b| !b.locked.is_zero())
                    .map(|b| b.currency)
                    .collect();
                markets
                    .values()
                    .filter(|m| {
                        held.contains(m.market.base.as_str())
                            || held.contains(m.market.quote.as_str())
                    })
                    .map(|m| m.market.symbol.to_string())
                    .collect()
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for s in symbols {
            let rows = self
                .read(
                    Call::get("/api/v1/hf/orders/active", vec![p("symbol", &s)]),
                    |a| wire::parse_orders(&a.body, markets, a.prov.clone()),
                )
                .await?
                .rows;
            out.extend(rows);
        }
        Ok(out)
    }
}

#[async_trait]
impl Exchange for KucoinClient {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn pipeline(&self) -> Option<&crate::exchange::http::Pipeline> {
        Some(&self.pipe)
    }

    /// `GET /api/v1/timestamp`, adopted as the signing clock's offset.
    async fn server_time(&self) -> Result<ServerTime> {
        self.sync_time().await
    }

    /// `GET /api/v1/accounts`: every account type, summed per currency.
    async fn balances(&self) -> Result<Vec<Balance>> {
        self.read(Call::get("/api/v1/accounts", vec![]), |a| {
            wire::parse_balances(&a.body)
        })
        .await
    }

    /// KuCoin shows the calling key: `GET /api/v1/user/api-key`.
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let k = self.key_now().await?;
        Ok(vec![k.key_info(self.pipe.key_masked())])
    }

    /// `GET /api/v1/user/api-key` says what the key may do. It is critical when it can move
    /// funds, or trade with no IP restriction.
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        let k = self.key_now().await?;
        let evidence = "GET /api/v1/user/api-key answered";
        let held = k.held();
        let mut scopes: Vec<ScopeProbe> = super::SCOPES
            .iter()
            .map(|s| {
                let h = held.iter().any(|x| x == s.name);
                ScopeProbe {
                    scope: s.name.into(),
                    class: s.class,
                    held: Some(h),
                    evidence: format!(
                        "{evidence}: {} {}",
                        s.name,
                        if h { "listed" } else { "not listed" }
                    ),
                }
            })
            .collect();
        for h in held
            .iter()
            .filter(|h| !super::SCOPES.iter().any(|s| s.name == h.as_str()))
        {
            scopes.push(ScopeProbe {
                scope: h.clone(),
                class: super::DESCRIPTOR.scope_class(h),
                held: Some(true),
                evidence: format!("{evidence}: {h} listed"),
            });
        }
        let moves: Vec<&str> = scopes
            .iter()
            .filter(|s| s.held == Some(true) && s.class.moves_funds())
            .map(|s| s.scope.as_str())
            .collect();
        let trades = scopes
            .iter()
            .any(|s| s.held == Some(true) && s.class == crate::exchange::ScopeClass::Trade);
        let ips = k.bound_ips();
        let mut reasons = Vec::new();
        if k.is_read_only() {
            reasons
                .push("the key holds General only: it can read but not trade or withdraw".into());
        } else if !moves.is_empty() {
            reasons.push(format!(
                "the key can move funds off the account ({})",
                moves.join(", ")
            ));
        }
        if ips.is_empty() {
            reasons.push(if trades {
                "the key can trade and has no IP restriction: it works from any machine, the thief's included".into()
            } else {
                "the key has no IP restriction".into()
            });
        } else {
            reasons.push(format!("the key is restricted to {}", ips.join(", ")));
        }
        if let Some(sub) = &k.sub_name {
            reasons.push(format!("the key belongs to sub-account {sub}"));
        }
        let critical = !moves.is_empty() || (trades && ips.is_empty());
        Ok(PermissionProbe {
            scopes,
            ip_restricted: Some(!ips.is_empty()),
            expire_at: None,
            critical,
            reasons,
        })
    }

    /// HF open orders (symbol by symbol, from `active/symbols`), classic ones
    /// (`GET /api/v1/orders?status=active`, every page) and stop orders not triggered yet
    /// (`GET /api/v1/stop-order`, every page): an untriggered stop can still trade.
    async fn open_orders(&self) -> Result<Vec<Order>> {
        let markets = self.markets_table().await;
        let hf = self.hf_open_orders(&markets).await?;
        self.note_family(&hf, Family::Hf);
        let cl = classic(
            self.pages(
                "/api/v1/orders",
                vec![
                    p("status", "active"),
                    p("tradeType", "TRADE"),
                    p("pageSize", CLASSIC_PAGE),
                ],
                true,
                usize::MAX,
                |a| wire::parse_orders(&a.body, &markets, a.prov.clone()),
            )
            .await,
            "GET /api/v1/orders",
        )?;
        self.note_family(&cl, Family::Classic);
        let stops = self.stop_orders(&markets).await?;
        self.note_family(&stops, Family::Stop);
        let mut seen = BTreeSet::new();
        let mut out: Vec<Order> = hf.into_iter().chain(cl).chain(stops).collect();
        out.retain(|o| o.state == OrderState::Open && seen.insert(o.id.clone()));
        Ok(out)
    }

    /// One symbol's closed orders of a window of ≤ 7 days: HF (`hf/orders/done`, by `lastId`)
    /// and classic (`orders?status=done`, numbered pages), merged, newest first. A list cut at
    /// the limit is read on until `limit` of its orders are provably whole ([`provable`]) and
    /// the answer keeps only what every cut list provably holds, so it is "every order created
    /// after its oldest one" ([`FullPage::Newest`](crate::exchange::FullPage::Newest)). The
    /// classic list of a span read to its end answers later queries inside that span.
    async fn closed_orders(&self, q: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        check_window(q.window, "orders")?;
        let market = needs_market(q.market.as_ref(), "orders")?;
        if q.limit == 0 || q.limit > CLOSED_ORDERS_MAX {
            return Err(Error::Config(format!(
                "orders limit {} must be between 1 and {CLOSED_ORDERS_MAX}",
                q.limit
            )));
        }
        let limit = q.limit as usize;
        let markets = self.markets_table().await;
        // Open rows are dropped page by page, before the rows are counted.
        let closed = |mut page: Page<(Order, DateTime<Utc>)>| {
            page.rows.retain(|(o, _)| o.state != OrderState::Open);
            page
        };
        let enough = |rows: &[(Order, DateTime<Utc>)]| provable(rows).1 >= limit;
        let mut params = vec![p("symbol", &market.symbol)];
        params.extend(span_params(q.window));
        let mut hf_params = params.clone();
        hf_params.push(p("limit", HF_PAGE.min(q.limit)));
        let hf = self
            .walk("/api/v1/hf/orders/done", hf_params, false, enough, |a| {
                wire::parse_orders_updated(&a.body, &markets, a.prov.clone()).map(closed)
            })
            .await?;
        let cl = match self.classic_kept(&market.symbol, q.window) {
            Some(rows) => rows,
            None => {
                let mut cl_params = vec![p("status", "done"), p("tradeType", "TRADE")];
                cl_params.extend(params);
                cl_params.push(p("pageSize", CLASSIC_PAGE));
                let rows = classic(
                    self.walk("/api/v1/orders", cl_params, true, enough, |a| {
                        wire::parse_orders(&a.body, &markets, a.prov.clone()).map(|page| {
                            closed(Page {
                                rows: page
                                    .rows
                                    .into_iter()
                                    .map(|o| {
                                        let t = o.created_at;
                                        (o, t)
                                    })
                                    .collect(),
                                next: page.next,
                            })
                        })
                    })
                    .await,
                    "GET /api/v1/orders",
                )?;
                if !enough(&rows) {
                    self.keep_classic(&market.symbol, q.window, &rows);
                }
                rows
            }
        };
        // Where a list was cut, only what it provably holds is answered.
        let bound = [&hf, &cl]
            .into_iter()
            .filter(|rows| enough(rows))
            .filter_map(|rows| provable(rows).0)
            .max();
        let cut = bound.is_some();
        let keep = |(o, _): &(Order, DateTime<Utc>)| bound.map_or(true, |b| o.created_at >= b);
        let hf: Vec<Order> = hf.into_iter().filter(keep).map(|(o, _)| o).collect();
        let cl: Vec<Order> = cl.into_iter().filter(keep).map(|(o, _)| o).collect();
        self.note_family(&hf, Family::Hf);
        self.note_family(&cl, Family::Classic);
        let mut seen = BTreeSet::new();
        let mut out: Vec<Order> = hf.into_iter().chain(cl).collect();
        let rows = out.len();
        out.retain(|o| seen.insert(o.id.clone()));
        // A cut answer must not look short once repeated rows are dropped: the export reads
        // fewer orders than the limit as "the window is whole".
        if cut && out.len() < limit {
            return Err(Error::Decode {
                endpoint: "/api/v1/hf/orders/done".into(),
                detail: format!(
                    "{rows} orders came back for a limit of {limit}, {} of them repeated across pages: the window cannot be proven whole",
                    rows - out.len()
                ),
            });
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// A cut call holds every order created after its oldest one (see `closed_orders`).
    fn closed_orders_full_page(&self) -> crate::exchange::FullPage {
        crate::exchange::FullPage::Newest
    }

    fn closed_orders_page(&self) -> u32 {
        HF_PAGE
    }

    /// The order, and its fills (`hf/fills` or `fills` by `orderId`) when it filled.
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        let o = self.get_order(&order.id, order.market.as_ref()).await?;
        if o.executed_volume.is_zero() {
            return Ok((o, Vec::new()));
        }
        let markets = self.markets_table().await;
        let parse = |a: &Answer| wire::parse_fills(&a.body, &markets, a.prov.clone());
        let fills = if self.family_of(&o.id) == Some(Family::Classic) {
            self.pages(
                "/api/v1/fills",
                vec![p("orderId", &o.id), p("pageSize", CLASSIC_PAGE)],
                true,
                usize::MAX,
                parse,
            )
            .await?
        } else {
            self.pages(
                "/api/v1/hf/fills",
                vec![
                    p("symbol", &o.market.symbol),
                    p("orderId", &o.id),
                    p("limit", HF_PAGE),
                ],
                false,
                usize::MAX,
                parse,
            )
            .await?
        };
        Ok((o, fills))
    }

    /// One symbol's fills of a window of ≤ 7 days: HF (`hf/fills`, by `lastId`) and classic
    /// (`fills`, numbered pages), merged, newest first.
    async fn fills(&self, q: &FillsQuery) -> Result<Vec<Fill>> {
        check_window(q.window, "fills")?;
        let market = needs_market(q.market.as_ref(), "fills")?;
        let markets = self.markets_table().await;
        let parse = |a: &Answer| wire::parse_fills(&a.body, &markets, a.prov.clone());
        let mut params = vec![p("symbol", &market.symbol)];
        params.extend(span_params(q.window));
        let mut hf_params = params.clone();
        hf_params.push(p("limit", q.limit.clamp(1, HF_PAGE)));
        let hf = self
            .pages("/api/v1/hf/fills", hf_params, false, usize::MAX, parse)
            .await?;
        let mut cl_params = params;
        cl_params.push(p("tradeType", "TRADE"));
        cl_params.push(p("pageSize", CLASSIC_PAGE));
        let cl = classic(
            self.pages("/api/v1/fills", cl_params, true, usize::MAX, parse)
                .await,
            "GET /api/v1/fills",
        )?;
        let mut out: Vec<Fill> = hf.into_iter().chain(cl).collect();
        out.retain(|f| f.created_at >= q.window.from && f.created_at < q.window.to);
        let mut seen = BTreeSet::new();
        out.retain(|f| seen.insert(f.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// KuCoin keeps HF history per symbol: every listed market of an asset the account
    /// touched (held now, deposited or withdrawn in the window, with open HF orders, or named
    /// by this run's evidence). The answer states each source and what it cannot see.
    async fn history_markets(&self, req: &MarketScanRequest) -> Result<MarketScan> {
        let markets = self.markets_table().await;
        if markets.is_empty() {
            return Err(Error::Transport(
                "KuCoin's market list (GET /api/v2/symbols) could not be read, so the symbols to scan are unknown; retry".into(),
            ));
        }
        let soft = |r: Result<Vec<String>>| -> Result<std::result::Result<Vec<String>, String>> {
            match r {
                Err(e) if e.is_key_dead() || e.stops_run() => Err(e),
                Err(e) => Ok(Err(e.to_string())),
                Ok(v) => Ok(Ok(v)),
            }
        };
        let (balances, deposits, withdrawals, active) = if req.selection == MarketSelection::Touched
        {
            let assets = |l: Vec<Transfer>| l.into_iter().map(|t| t.currency).collect();
            (
                soft(
                    self.balances()
                        .await
                        .map(|b| b.into_iter().map(|x| x.currency).collect()),
                )?,
                soft(self.deposits(req.window.from).await.map(assets))?,
                soft(self.withdrawals(req.window.from).await.map(assets))?,
                soft(self.hf_active_symbols().await)?,
            )
        } else {
            (Ok(vec![]), Ok(vec![]), Ok(vec![]), Ok(vec![]))
        };
        super::scan::choose(
            &req.selection,
            &markets,
            super::scan::Inputs {
                balances,
                deposits,
                withdrawals,
                active,
                hints: &req.hints,
            },
        )
    }

    /// Per symbol and 7-day window: HF closed orders and fills (2 each) and classic orders (2)
    /// and fills (10), against the Spot pool's 4,000 per 30 s.
    fn history_plan(&self, markets: usize, window: Window) -> Option<CallPlan> {
        let secs = (window.to - window.from).num_seconds().max(1) as u64;
        let windows = secs.div_ceil(HISTORY_WINDOW_MAX.num_seconds() as u64);
        let pairs = markets as u64 * windows;
        Some(CallPlan {
            calls: pairs * 4,
            cost: pairs * 16,
            unit: "request weight".into(),
            budget: u64::from(limits::budget_of(limits::SPOT).limit),
            budget_window_secs: limits::WINDOW.as_secs(),
        })
    }

    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        let m = self.markets_table().await;
        if m.is_empty() {
            return Err(Error::Transport(
                "KuCoin's market list could not be read".into(),
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
        self.transfers(TransferKind::Withdrawal, since).await
    }

    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers(TransferKind::Deposit, since).await
    }

    /// KuCoin offers no API for the withdrawal address book.
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        Err(Error::Unsupported {
            exchange: super::DESCRIPTOR.name.into(),
            what: "reading the withdrawal address book (KuCoin has no API for it: check Withdrawal Address Management on the web)".into(),
        })
    }

    /// Rounds of: cancel all HF orders (every symbol), classic orders and stop orders → list
    /// the open orders again → again while any is left. Each order seen open is read back for
    /// its final state (KuCoin cancels asynchronously). A cancel whose outcome is unknown is
    /// settled by the next listing, never resent blindly.
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        let mut seen: BTreeMap<String, Order> = BTreeMap::new();
        let mut named: BTreeSet<String> = BTreeSet::new();
        let mut failed_symbols: BTreeMap<String, String> = BTreeMap::new();
        let mut still_open: Vec<Order> = Vec::new();
        let mut done = false;
        for round in 0..MAX_CANCEL_ROUNDS {
            let open = self.open_orders().await?;
            for o in &open {
                seen.entry(o.id.clone()).or_insert_with(|| o.clone());
            }
            if open.is_empty() && round > 0 {
                done = true;
                break;
            }
            if round + 1 == MAX_CANCEL_ROUNDS {
                still_open = open;
                break;
            }
            self.cancel_round(&mut named, &mut failed_symbols).await?;
        }
        let open_ids: BTreeSet<String> = still_open.iter().map(|o| o.id.clone()).collect();
        let mut report = CancelReport::default();
        for (id, o) in &seen {
            if open_ids.contains(id) {
                let refusal = failed_symbols
                    .get(o.market.symbol.as_str())
                    .map(|e| format!("KuCoin could not cancel {}: {e}", o.market.symbol));
                report.still_open(id, refusal.as_ref(), "still open after the cancels");
                continue;
            }
            let read_back = match self.get_order(id, Some(&o.market)).await {
                // A stop order KuCoin named among the `cancelledOrderIds` and no longer knows
                // was cancelled (a cancelled stop order leaves KuCoin's stop-order book).
                Err(e)
                    if e.kind() == Some(ErrorKind::NotFound)
                        && named.contains(id)
                        && self.family_of(id) == Some(Family::Stop) =>
                {
                    Ok(Order {
                        state: OrderState::Cancelled,
                        ..o.clone()
                    })
                }
                other => other,
            };
            report.settle(id, read_back, None)?;
        }
        report.rounds_ran_out(done, still_open.is_empty(), MAX_CANCEL_ROUNDS);
        Ok(report)
    }

    /// `DELETE /api/v1/hf/orders/{id}?symbol=` (or `/api/v1/orders/{id}` for a classic order,
    /// `/api/v1/stop-order/{id}` for a stop order), then the order is read back (KuCoin
    /// cancels asynchronously).
    async fn cancel_order(&self, order: &OrderRef) -> Result<Order> {
        let call = match (self.family_of(&order.id), order.market.as_ref()) {
            (Some(Family::Classic), _) => {
                Call::delete(format!("/api/v1/orders/{}", order.id), vec![])
            }
            (Some(Family::Stop), _) => Call::delete(format!("{STOP_ORDERS}/{}", order.id), vec![]),
            (_, Some(m)) => Call::delete(
                format!("/api/v1/hf/orders/{}", order.id),
                vec![p("symbol", &m.symbol)],
            ),
            (_, None) => {
                return Err(Error::Config(
                    "KuCoin needs the order's symbol to cancel a high-frequency order".into(),
                ))
            }
        };
        let what = call.what_with_query();
        let err = match self.write(call).await {
            Ok(_) => None,
            Err(e) if outcome_unknown(&e) => Some(e),
            Err(e) => return Err(e),
        };
        match (self.get_order(&order.id, order.market.as_ref()).await, err) {
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

    /// `DELETE /api/v1/withdrawals/{id}` (only while `PROCESSING`), then the withdrawal is
    /// read back from the last 30 days.
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer> {
        let call = Call::delete(format!("/api/v1/withdrawals/{id}"), vec![]);
        let what = call.what();
        let sent = self.write(call).await.map(|_| ());
        if let Err(e) = &sent {
            if !outcome_unknown(e) {
                return Err(sent.unwrap_err());
            }
        }
        let since = crate::time::now() - chrono::Duration::days(30);
        let read = self.withdrawals(since).await;
        match (read.map(|l| l.into_iter().find(|t| t.id == id)), sent) {
            (Ok(Some(t)), Ok(())) => Ok(t),
            (Ok(Some(t)), Err(_)) if t.status != TransferStatus::Pending => Ok(t),
            (Ok(Some(_)), Err(e)) => Err(Error::OutcomeUnknown {
                what,
                detail: format!("{e}; the withdrawal is still pending"),
            }),
            (Ok(None), r) => Err(Error::OutcomeUnknown {
                what,
                detail: format!(
                    "{}; the withdrawal is not in the last 30 days' withdrawals",
                    r.err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "cancelled".into())
                ),
            }),
            (Err(e2), _) => Err(e2),
        }
    }

    /// Only a master account deletes a key by API (a sub-account's). The key is read once
    /// first, so the run's evidence shows it accepted before the deletion.
    async fn revoke_key(&self) -> Result<()> {
        let Some((master, sub)) = &self.master else {
            return Err(Error::Unsupported {
                exchange: super::DESCRIPTOR.name.into(),
                what: "deleting an account's own API key by API (KuCoin allows it only under API Management on the web or in the app)".into(),
            });
        };
        let Some(sub) = sub else {
            return Err(Error::Config(
                "to delete a sub-account's key with the master account's key, set KUCOIN_SUB_ACCOUNT to the sub-account's name".into(),
            ));
        };
        self.key_now().await?;
        self.revoke_by_master(master, sub).await
    }

    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        let kind = match unit_minutes {
            1 => "1min",
            3 => "3min",
            5 => "5min",
            15 => "15min",
            30 => "30min",
            60 => "1hour",
            120 => "2hour",
            240 => "4hour",
            360 => "6hour",
            480 => "8hour",
            720 => "12hour",
            1440 => "1day",
            _ => {
                return Err(Error::Config(format!(
                    "candle unit {unit_minutes} min is not one of KuCoin's 1, 3, 5, 15, 30, 60, 120, 240, 360, 480, 720, 1440"
                )))
            }
        };
        if count == 0 || count > 1500 {
            return Err(Error::Config(format!(
                "candle count {count} must be between 1 and 1500"
            )));
        }
        let end = to.timestamp();
        let start = end - i64::from(unit_minutes) * 60 * i64::from(count);
        let params = vec![
            p("symbol", &market.symbol),
            p("type", kind),
            p("startAt", start),
            p("endAt", end),
        ];
        let mut out = self
            .pipe
            .read(Call::public("/api/v1/market/candles", params), |a| {
                wire::parse_candles(&a.body, market)
            })
            .await?;
        out.retain(|c| c.start < to);
        out.sort_by_key(|c| std::cmp::Reverse(c.start));
        out.truncate(count as usize);
        Ok(out)
    }
}
