//! The live Bybit spot adapter: [`BybitClient`] implements [`Exchange`] over the shared request
//! pipeline ([`crate::exchange::http`]), with Bybit's signer ([`super::auth`]), per-endpoint
//! limits ([`super::limits`]), error map ([`super::errors`]) and wire formats ([`super::wire`],
//! shared with the offline rebuild).
//!
//! What Bybit adds to the pipeline, and where it is handled here:
//! - **Errors in 200 answers.** Every body's `retCode` is checked ([`BybitProtocol`]); `10006`
//!   (over an endpoint's limit) is a rate-limit refusal the pipeline waits out.
//! - **Clock.** Every signed request carries `X-BAPI-TIMESTAMP`, checked within the receive
//!   window. The offset is read from `GET /v5/market/time` before the first signed request; a
//!   `10002` reads it again and sends the request once more (refused before Bybit acted).
//! - **Writes are JSON.** `POST` bodies are compact JSON, signed byte for byte.
//! - **Cursors.** Every list follows `nextPageCursor`; orders and fills in windows of ≤ 7
//!   days, withdrawals and deposits of < 30 days.
//! - **Revocation.** A key holding a transfer or withdrawal permission deletes itself
//!   ([`BybitClient::revoke_key`]); any other key is left to the guided manual step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::auth::{self, KeySigner};
use super::errors;
use super::limits;
use super::wire::{self, KeyInfo, Markets, Page, WireError};
use crate::exchange::http::{
    encode_query, outcome_unknown, p, Answer, BudgetReport, Call, Pipeline, Protocol, RetryPolicy,
    ServerClock, Signed, Signer, Transport,
};
use crate::exchange::{
    ApiKeyInfo, Balance, CancelReport, Candle, Capabilities, ClosedOrdersQuery, Error, ErrorKind,
    Exchange, Fill, FillsQuery, FillsSource, Market, MarketInfo, Order, OrderRef, OrderState,
    PermissionProbe, Result, ScopeProbe, ServerTime, Transfer, Window, WithdrawalAddress,
};
use crate::rundir::RunDir;
use crate::secret::{mask_key, Secret};

/// Bybit's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.bybit.com";
/// Longest window of one `order/history` or `execution/list` query.
pub const HISTORY_WINDOW_MAX: chrono::Duration = chrono::Duration::days(7);
/// Orders per `order/history` or `order/realtime` page.
pub const ORDERS_PAGE: u32 = 50;
/// Fills per `execution/list` page.
pub const FILLS_PAGE: u32 = 100;
/// Most closed orders one [`Exchange::closed_orders`] call collects (pages followed): the
/// export halves a window that reaches it.
pub const CLOSED_ORDERS_MAX: u32 = 1000;
/// Longest window of one withdrawal or deposit query ("less than 30 days").
pub const TRANSFER_WINDOW_MAX: chrono::Duration = chrono::Duration::days(29);
/// Withdrawals or deposits per page.
pub const TRANSFER_PAGE: u32 = 50;
/// The order filters `cancel-all` takes for spot: normal orders, then conditional, TP/SL, OCO
/// and bidirectional TP/SL orders, each needing its own call.
pub const CANCEL_FILTERS: &[&str] = &[
    "Order",
    "StopOrder",
    "tpslOrder",
    "OcoOrder",
    "BidirectionalTpslOrder",
];
/// Safety bound on pages followed by one listing.
const MAX_PAGES: usize = 1000;
/// Safety bound on cancel rounds (list → cancel-all per filter → list).
const MAX_CANCEL_ROUNDS: usize = 10;

/// How to reach Bybit and with which key.
#[derive(Debug, Clone)]
pub struct BybitConfig {
    /// `--api-url`; `None` = [`DEFAULT_BASE_URL`]. https anywhere, plain http only to loopback.
    pub base_url: Option<String>,
    pub access_key: String,
    /// The HMAC secret, or the RSA private key in PEM form.
    pub secret_key: Secret,
    /// Where raw responses are recorded; `None` records nothing (tests, probes).
    pub recorder: Option<RunDir>,
    pub request_timeout: Duration,
    pub max_read_retries: u32,
    pub retry_base_delay: Duration,
}

impl BybitConfig {
    /// Defaults: production URL, no recorder, 10 s timeout, 4 read retries, 250 ms backoff.
    pub fn new(access_key: impl Into<String>, secret_key: Secret) -> Self {
        BybitConfig {
            base_url: None,
            access_key: access_key.into(),
            secret_key,
            recorder: None,
            request_timeout: Duration::from_secs(10),
            max_read_retries: 4,
            retry_base_delay: Duration::from_millis(250),
        }
    }
}

/// Bybit's side of the pipeline: per-endpoint budgets, `X-Bapi-Limit-Status`, `retCode`.
pub struct BybitProtocol;

impl Protocol for BybitProtocol {
    fn exchange(&self) -> &'static str {
        super::DESCRIPTOR.name
    }
    fn budget(&self, group: &str) -> crate::exchange::ratelimit::Budget {
        limits::budget_of(group)
    }
    fn group(&self, call: &Call) -> String {
        limits::group(call)
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
        let kind = errors::kind_of(status, &code);
        let advice = if status == 403 && code.starts_with("http_") {
            "Bybit refused the request (HTTP 403): this IP sent more than 600 requests in 5 s (Bybit then bans it for at least 10 minutes) or is in a restricted country; stop every other client on this IP and wait"
        } else {
            errors::classify(&code).1
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

/// Signs with the four `X-BAPI-*` headers over the query or the JSON body.
struct BybitSigner {
    access_key: String,
    key: KeySigner,
    shared: Arc<Shared>,
}

impl Signer for BybitSigner {
    fn sign(&self, call: &Call) -> Signed {
        let now = self.shared.clock.now_ms();
        let rest = match &call.body {
            Some(b) => b.clone(),
            None => encode_query(&call.params),
        };
        Signed {
            headers: auth::headers(&self.key, &self.access_key, now, &rest),
            extra_params: Vec::new(),
        }
    }
}

/// The Bybit spot adapter.
pub struct BybitClient {
    pipe: Pipeline,
    caps: Capabilities,
    shared: Arc<Shared>,
    /// The key's settings as last read.
    key_info: Mutex<Option<KeyInfo>>,
}

impl std::fmt::Debug for BybitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BybitClient")
            .field("base", &self.pipe.transport().base())
            .field("key", &self.pipe.key_masked())
            .finish_non_exhaustive()
    }
}

fn check_key(access_key: &str, secret: &Secret, what: &str) -> Result<KeySigner> {
    if access_key.trim().is_empty() || secret.is_empty() {
        return Err(Error::Config(what.into()));
    }
    KeySigner::from_secret(secret).map_err(|e| Error::Config(format!("BYBIT secret: {e}")))
}

fn capabilities(key_masked: &str) -> Capabilities {
    let d = &super::DESCRIPTOR;
    let (en, _) = d.revoke.instructions(key_masked);
    let week = HISTORY_WINDOW_MAX.num_seconds() as u64;
    Capabilities {
        name: d.name.into(),
        // For keys holding a transfer or withdrawal permission; `revoke_key` says when not.
        revoke_key_by_api: true,
        revoke_after_containment: true,
        read_key_permissions: true,
        batch_cancel: true,
        cancel_withdrawals: true,
        fills: FillsSource::PerWindow {
            max_window_secs: week,
            page_size: FILLS_PAGE,
            needs_symbol: false,
        },
        closed_orders_max_window_secs: Some(week),
        closed_orders_max_per_call: CLOSED_ORDERS_MAX,
        history_needs_symbol: false,
        client_id_field: "orderLinkId".into(),
        local_zone: d.locale.zone,
        manual_revoke_instructions_en: en,
        manual_revoke_instructions_local: String::new(),
        local_language: d.locale.language.into(),
    }
}

/// `startTime`/`endTime` of a half-open window: Bybit's times are inclusive.
fn span_params(w: Window) -> [(String, String); 2] {
    [
        p("startTime", w.from.timestamp_millis()),
        p("endTime", w.to.timestamp_millis() - 1),
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
            "{what} window of {} h exceeds Bybit's 7-day maximum; split it",
            span.num_hours()
        )));
    }
    Ok(())
}

/// A cursor as the next request sends it: Bybit's cursors come URL-encoded, and the query is
/// encoded once more when sent, so the decoded form goes into the parameters.
fn cursor_param(c: &str) -> (String, String) {
    let decoded = percent_encoding::percent_decode_str(c)
        .decode_utf8()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| c.to_string());
    p("cursor", decoded)
}

fn field(k: &str, v: impl Into<Value>) -> (String, Value) {
    (k.to_string(), v.into())
}

impl BybitClient {
    pub fn new(cfg: BybitConfig) -> Result<Self> {
        let transport = Transport::new(
            cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            cfg.request_timeout,
            cfg.recorder,
            Arc::new(BybitProtocol),
            RetryPolicy {
                max_read_retries: cfg.max_read_retries,
                base_delay: cfg.retry_base_delay,
            },
        )?;
        let key = check_key(
            &cfg.access_key,
            &cfg.secret_key,
            "the Bybit API key and secret key must both be set (BYBIT_ACCESS_KEY, BYBIT_SECRET_KEY)",
        )?;
        Ok(Self::on(
            transport,
            Arc::new(Shared::default()),
            cfg.access_key,
            key,
        ))
    }

    fn on(
        transport: Arc<Transport>,
        shared: Arc<Shared>,
        access_key: String,
        key: KeySigner,
    ) -> Self {
        let key_masked = mask_key(&access_key);
        BybitClient {
            caps: capabilities(&key_masked),
            pipe: Pipeline::new(
                transport,
                Arc::new(BybitSigner {
                    access_key,
                    key,
                    shared: shared.clone(),
                }),
                key_masked,
            ),
            shared,
            key_info: Mutex::new(None),
        }
    }

    /// A client for another key of the same account (the read-only key), sharing this one's
    /// connection pool, rate limiter (Bybit counts per account), clock offset, market list and
    /// run directory.
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
        ))
    }

    /// The clock offset in use (server − local), milliseconds.
    pub fn clock_offset_ms(&self) -> i64 {
        self.shared.clock.offset_ms()
    }

    async fn sync_time(&self) -> Result<ServerTime> {
        let call = Call::public("/v5/market/time", vec![]);
        let st = self
            .pipe
            .read(call, |a: &Answer| {
                let server = wire::ms_text(&wire::parse_server_time(&a.body)?.to_string())?;
                Ok(a.server_time(server))
            })
            .await?;
        self.shared.clock.set(&st);
        Ok(st)
    }

    async fn ensure_time(&self) {
        self.shared.clock.ensure("Bybit", || self.sync_time()).await;
    }

    /// The spot market list, read once per connection (every page) before the first answer
    /// that names a symbol. When it cannot be read, symbols are split at the quote coins Bybit
    /// lists, as the offline rebuild does without it.
    async fn markets_table(&self) -> Arc<Markets> {
        self.shared
            .markets
            .get_or_init(|| async {
                let mut out = Markets::new();
                let mut cursor: Option<String> = None;
                for _ in 0..MAX_PAGES {
                    let mut params = vec![p("category", "spot"), p("limit", 1000)];
                    if let Some(c) = &cursor {
                        params.push(cursor_param(c));
                    }
                    let call = Call::public("/v5/market/instruments-info", params);
                    match self
                        .pipe
                        .read(call, |a| wire::parse_instruments(&a.body))
                        .await
                    {
                        Ok(page) => {
                            for m in page.rows {
                                out.insert(m.market.symbol.to_string(), m);
                            }
                            match page.next {
                                Some(c) => cursor = Some(c),
                                None => break,
                            }
                        }
                        Err(e) => {
                            tracing::warn!("could not read Bybit's market list: {e}");
                            break;
                        }
                    }
                }
                Arc::new(out)
            })
            .await
            .clone()
    }

    /// A signed read: the clock first, one more try after `10002`.
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

    /// Every page of a signed list, following `nextPageCursor` until the last page or until
    /// `enough` rows are in.
    async fn pages<T>(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        enough: usize,
        parse: impl Fn(&Answer) -> std::result::Result<Page<T>, WireError>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut ps = params.clone();
            if let Some(c) = &cursor {
                ps.push(cursor_param(c));
            }
            let page = self.read(Call::get(path, ps), &parse).await?;
            out.extend(page.rows);
            match page.next {
                None => return Ok(out),
                Some(_) if out.len() >= enough => return Ok(out),
                // A list that does not end is never passed off as the whole: callers (the
                // export's completeness proof) read a short list as "nothing more".
                Some(c) if Some(&c) == cursor.as_ref() => {
                    return Err(Error::Decode {
                        endpoint: path.to_string(),
                        detail: "Bybit sent the same page cursor again while announcing a next page, so the list could not be read to its end".into(),
                    })
                }
                Some(c) => cursor = Some(c),
            }
        }
        Err(Error::Decode {
            endpoint: path.to_string(),
            detail: format!(
                "still a next page cursor after {MAX_PAGES} pages, so the list was not read to its end"
            ),
        })
    }

    /// A signed write: never resent, except once after `10002` (refused before Bybit acted).
    async fn write(&self, call: Call) -> Result<Answer> {
        self.ensure_time().await;
        match self.pipe.write(call.clone()).await {
            Err(e) if e.kind() == Some(ErrorKind::ClockSkew) => {
                self.sync_time().await?;
                self.pipe.write(call).await
            }
            other => other,
        }
    }

    /// `GET /v5/user/query-api`, remembered.
    async fn key_now(&self) -> Result<KeyInfo> {
        let k = self
            .read(Call::get("/v5/user/query-api", vec![]), |a| {
                wire::parse_key(&a.body)
            })
            .await?;
        *self.key_info.lock().unwrap_or_else(|e| e.into_inner()) = Some(k.clone());
        Ok(k)
    }

    /// One order by id: the open and recent orders first (`order/realtime` keeps the last 500
    /// closed), then the history.
    async fn get_order(&self, id: &str) -> Result<Order> {
        let markets = self.markets_table().await;
        for (path, extra) in [
            ("/v5/order/realtime", Some(p("openOnly", 1))),
            ("/v5/order/history", None),
        ] {
            let mut params = vec![p("category", "spot"), p("orderId", id)];
            params.extend(extra);
            let page = self
                .read(Call::get(path, params), |a| {
                    wire::parse_orders(&a.body, &markets, a.prov.clone())
                })
                .await?;
            if let Some(o) = page.rows.into_iter().find(|o| o.id == id) {
                return Ok(o);
            }
        }
        Err(Error::Api {
            exchange: super::DESCRIPTOR.name.into(),
            status: 200,
            code: "not_listed".into(),
            kind: ErrorKind::NotFound,
            message: format!("order {id} is in neither GET /v5/order/realtime nor GET /v5/order/history"),
            advice: "Bybit keeps orders cancelled without a fill for 24 hours only: the order may have been cancelled longer ago".into(),
        })
    }

    /// Every withdrawal or deposit since `since`, in windows of < 30 days, cursor pages.
    async fn transfers(
        &self,
        path: &str,
        withdrawals: bool,
        since: DateTime<Utc>,
    ) -> Result<Vec<Transfer>> {
        let now = crate::time::now() + chrono::Duration::seconds(60);
        let mut out: Vec<Transfer> = Vec::new();
        let mut to = now;
        // Newest first, back to `since`.
        while to > since {
            let from = (to - TRANSFER_WINDOW_MAX).max(since);
            let mut params = vec![];
            if withdrawals {
                params.push(p("withdrawType", 2));
            }
            params.extend(span_params(Window { from, to }));
            params.push(p("limit", TRANSFER_PAGE));
            let rows = self
                .pages(path, params, usize::MAX, |a| {
                    if withdrawals {
                        wire::parse_withdrawals(&a.body, a.prov.clone())
                    } else {
                        wire::parse_deposits(&a.body, a.prov.clone())
                    }
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

    /// The final states of orders that left the book: the recent closed orders first (one
    /// listing, Bybit keeps the last 500), then the history over the window the known ones were
    /// created in (when it fits Bybit's 7 days); what neither shows is read one by one by the
    /// caller.
    async fn final_states(
        &self,
        ids: &BTreeSet<String>,
        seen: &BTreeMap<String, Order>,
    ) -> Result<BTreeMap<String, Order>> {
        let mut finals: BTreeMap<String, Order> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(finals);
        }
        let markets = self.markets_table().await;
        let parse = |a: &Answer| wire::parse_orders(&a.body, &markets, a.prov.clone());
        let take = |list: Vec<Order>, finals: &mut BTreeMap<String, Order>| {
            for o in list {
                if ids.contains(&o.id) && o.state != OrderState::Open {
                    finals.insert(o.id.clone(), o);
                }
            }
        };
        let recent = self
            .pages(
                "/v5/order/realtime",
                vec![
                    p("category", "spot"),
                    p("openOnly", 1),
                    p("limit", ORDERS_PAGE),
                ],
                ids.len() + ORDERS_PAGE as usize,
                parse,
            )
            .await;
        match recent {
            Ok(list) => take(list, &mut finals),
            Err(e) if e.is_key_dead() => return Err(e),
            Err(_) => {}
        }
        // Orders only a cancel answer named were never listed: their creation time is unknown,
        // so the history's whole last 7 days is read for them.
        let now = crate::time::now() + chrono::Duration::minutes(1);
        let week_ago = now - HISTORY_WINDOW_MAX;
        let from = ids
            .iter()
            .filter(|id| !finals.contains_key(*id))
            .map(|id| {
                seen.get(id)
                    .map_or(week_ago, |o| o.created_at.max(week_ago))
            })
            .min();
        if let Some(from) = from {
            if now - from <= HISTORY_WINDOW_MAX {
                let mut params = vec![p("category", "spot")];
                params.extend(span_params(Window { from, to: now }));
                params.push(p("limit", ORDERS_PAGE));
                match self
                    .pages("/v5/order/history", params, usize::MAX, parse)
                    .await
                {
                    Ok(list) => take(list, &mut finals),
                    Err(e) if e.is_key_dead() => return Err(e),
                    Err(_) => {}
                }
            }
        }
        Ok(finals)
    }

    /// Deletes the calling key: `delete-api` for a master account's key, `delete-sub-api`
    /// (without `apikey`) for a sub-account's. An unknown outcome is settled by the key itself.
    async fn delete_self(&self, key: &KeyInfo) -> Result<()> {
        let path = if key.is_master == Some(false) {
            "/v5/user/delete-sub-api"
        } else {
            "/v5/user/delete-api"
        };
        let call = Call::post_json(path, vec![]);
        let what = call.what();
        let err = match self.write(call).await {
            Ok(_) => return Ok(()),
            Err(e) if outcome_unknown(&e) => e,
            Err(e) => return Err(e),
        };
        // Only "API key is invalid" proves the deletion; "User authentication failed" (10007)
        // may be a header or auth-service fault.
        let check = self.key_now().await;
        crate::exchange::http::settle_deletion(what, &err, check, |e| {
            e.code() == Some(errors::INVALID_KEY)
        })
    }
}

#[async_trait]
impl Exchange for BybitClient {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn pipeline(&self) -> Option<&crate::exchange::http::Pipeline> {
        Some(&self.pipe)
    }

    /// `GET /v5/market/time`, adopted as the signing clock's offset.
    async fn server_time(&self) -> Result<ServerTime> {
        self.sync_time().await
    }

    async fn balances(&self) -> Result<Vec<Balance>> {
        self.read(
            Call::get(
                "/v5/account/wallet-balance",
                vec![p("accountType", "UNIFIED")],
            ),
            |a| wire::parse_balances(&a.body),
        )
        .await
    }

    /// Bybit shows the calling key: `query-api`.
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let k = self.key_now().await?;
        Ok(vec![k.key_info(self.pipe.key_masked())])
    }

    /// `query-api` says what the key may do. It is critical when it can move funds, or trade
    /// with no IP binding (then it trades from anywhere, the thief's machine included).
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        let k = self.key_now().await?;
        let evidence = "GET /v5/user/query-api answered";
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
        // Permissions Bybit added since the table was written still count.
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
        let trades = !k.is_read_only()
            && scopes
                .iter()
                .any(|s| s.held == Some(true) && s.class == crate::exchange::ScopeClass::Trade);
        let ips = k.bound_ips();
        let mut reasons = Vec::new();
        if k.is_read_only() {
            reasons.push("the key is read-only (readOnly=1): it cannot trade or withdraw".into());
        } else if !moves.is_empty() {
            reasons.push(format!(
                "the key can move funds off the account ({}); it can also delete itself by API",
                moves.join(", ")
            ));
        }
        if ips.is_empty() {
            reasons.push(if trades {
                "the key can trade and is bound to no IP: it works from any machine, the thief's included".into()
            } else {
                "the key is bound to no IP".into()
            });
        } else {
            reasons.push(format!("the key is bound to {}", ips.join(", ")));
        }
        if let Some(at) = k.expires_at() {
            reasons.push(format!("it expires at {} (expiredAt)", crate::time::ts(at)));
        }
        let critical = !k.is_read_only() && (!moves.is_empty() || (trades && ips.is_empty()));
        Ok(PermissionProbe {
            scopes,
            ip_restricted: Some(!ips.is_empty()),
            expire_at: k.expires_at(),
            critical,
            reasons,
        })
    }

    /// `GET /v5/order/realtime?category=spot` (every order kind), every page.
    async fn open_orders(&self) -> Result<Vec<Order>> {
        let markets = self.markets_table().await;
        let mut out = self
            .pages(
                "/v5/order/realtime",
                vec![
                    p("category", "spot"),
                    p("openOnly", 0),
                    p("limit", ORDERS_PAGE),
                ],
                usize::MAX,
                |a| wire::parse_orders(&a.body, &markets, a.prov.clone()),
            )
            .await?;
        let mut seen = BTreeSet::new();
        out.retain(|o| o.state == OrderState::Open && seen.insert(o.id.clone()));
        Ok(out)
    }

    /// `GET /v5/order/history` for a window of ≤ 7 days (one market or all), following the
    /// cursor until `query.limit` orders are in.
    async fn closed_orders(&self, q: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        check_window(q.window, "orders")?;
        if q.limit == 0 || q.limit > CLOSED_ORDERS_MAX {
            return Err(Error::Config(format!(
                "orders limit {} must be between 1 and {CLOSED_ORDERS_MAX}",
                q.limit
            )));
        }
        let markets = self.markets_table().await;
        let mut params = vec![p("category", "spot")];
        if let Some(m) = &q.market {
            params.push(p("symbol", &m.symbol));
        }
        params.extend(span_params(q.window));
        params.push(p("limit", ORDERS_PAGE.min(q.limit)));
        let mut out = self
            .pages("/v5/order/history", params, q.limit as usize, |a| {
                wire::parse_orders(&a.body, &markets, a.prov.clone())
            })
            .await?;
        let rows = out.len();
        let mut seen = BTreeSet::new();
        out.retain(|o| seen.insert(o.id.clone()));
        // A full answer must not look short once repeated rows are dropped: the export reads
        // fewer rows than the limit as "the window is whole".
        if rows >= q.limit as usize && out.len() < q.limit as usize {
            return Err(Error::Decode {
                endpoint: "/v5/order/history".into(),
                detail: format!(
                    "{rows} rows came back for a limit of {}, {} of them repeated across pages: the window cannot be proven whole",
                    q.limit,
                    rows - out.len()
                ),
            });
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// `order/history` lists a window newest first and the cursor walks it in that order, so
    /// a call that stops at its limit holds every order created after its oldest one.
    fn closed_orders_full_page(&self) -> crate::exchange::FullPage {
        crate::exchange::FullPage::Newest
    }

    fn closed_orders_page(&self) -> u32 {
        ORDERS_PAGE
    }

    /// The order, and its executions (`execution/list` by `orderId`) when it filled.
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        let o = self.get_order(&order.id).await?;
        if o.executed_volume.is_zero() {
            return Ok((o, Vec::new()));
        }
        let markets = self.markets_table().await;
        let fills = self
            .pages(
                "/v5/execution/list",
                vec![
                    p("category", "spot"),
                    p("orderId", &order.id),
                    p("limit", FILLS_PAGE),
                ],
                usize::MAX,
                |a| wire::parse_executions(&a.body, &markets, a.prov.clone()),
            )
            .await?;
        Ok((o, fills))
    }

    /// `GET /v5/execution/list` for a window of ≤ 7 days, every page.
    async fn fills(&self, q: &FillsQuery) -> Result<Vec<Fill>> {
        check_window(q.window, "fills")?;
        let markets = self.markets_table().await;
        let mut params = vec![p("category", "spot")];
        if let Some(m) = &q.market {
            params.push(p("symbol", &m.symbol));
        }
        params.extend(span_params(q.window));
        params.push(p("limit", q.limit.clamp(1, FILLS_PAGE)));
        let mut out = self
            .pages("/v5/execution/list", params, usize::MAX, |a| {
                wire::parse_executions(&a.body, &markets, a.prov.clone())
            })
            .await?;
        out.retain(|f| f.created_at >= q.window.from && f.created_at < q.window.to);
        let mut seen = BTreeSet::new();
        out.retain(|f| seen.insert(f.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        let m = self.markets_table().await;
        if m.is_empty() {
            return Err(Error::Transport(
                "Bybit's market list could not be read".into(),
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
        self.transfers("/v5/asset/withdraw/query-record", true, since)
            .await
    }

    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers("/v5/asset/deposit/query-record", false, since)
            .await
    }

    /// The address book (needs the Withdrawal permission: a `10005` here is itself evidence
    /// that the key lacks it).
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        match self
            .pages(
                "/v5/asset/withdraw/query-address",
                vec![p("addressType", 2), p("limit", 50)],
                usize::MAX,
                |a| wire::parse_addresses(&a.body),
            )
            .await
        {
            // Bybit shows the address book only to a key that may withdraw: for any other key
            // the book cannot be read, and the refusal (kept under raw/) shows the key could
            // not withdraw.
            Err(e) if e.is_out_of_scope() => Err(Error::Unsupported {
                exchange: super::DESCRIPTOR.name.into(),
                what: format!(
                    "reading the withdrawal address book with a key without the Withdrawal permission ({e})"
                ),
            }),
            other => other,
        }
    }

    /// Rounds of: `POST /v5/order/cancel-all` once per order filter (normal, conditional,
    /// TP/SL, OCO, bidirectional TP/SL) → list every open spot order → again while any is left.
    /// The first cancels go out before any listing (the snapshot has already preserved the
    /// book): a thousand open orders are off the book after five calls, not after twenty pages
    /// of listing. Each answer names the orders it took; cancels are asynchronous at Bybit, so
    /// the final states are read back from the recent orders (`order/realtime?openOnly=1`), the
    /// history, then one by one. A cancel whose outcome is unknown is settled by the next
    /// listing, never resent blindly.
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut seen: BTreeMap<String, Order> = BTreeMap::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut still_open: Vec<Order> = Vec::new();
        let mut done = false;
        for round in 0..MAX_CANCEL_ROUNDS {
            let mut open = Vec::new();
            if round > 0 {
                open = self.open_orders().await?;
                for o in &open {
                    ids.insert(o.id.clone());
                    seen.entry(o.id.clone()).or_insert_with(|| o.clone());
                }
                if open.is_empty() {
                    done = true;
                    break;
                }
                if round + 1 == MAX_CANCEL_ROUNDS {
                    still_open = open;
                    break;
                }
            }
            for filter in CANCEL_FILTERS {
                let call = Call::post_json(
                    "/v5/order/cancel-all",
                    vec![field("category", "spot"), field("orderFilter", *filter)],
                );
                match self.write(call).await {
                    Ok(a) => ids.extend(wire::parse_cancelled(&a.body).unwrap_or_default()),
                    Err(e) if e.kind() == Some(ErrorKind::NotFound) => {}
                    Err(e) if outcome_unknown(&e) => {}
                    Err(e @ Error::Api { .. }) if !e.is_key_dead() && !e.is_out_of_scope() => {
                        for o in &open {
                            failed
                                .entry(o.id.clone())
                                .or_insert_with(|| format!("cancel-all {filter}: {e}"));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let open_ids: BTreeSet<String> = still_open.iter().map(|o| o.id.clone()).collect();
        let settle: BTreeSet<String> = ids.difference(&open_ids).cloned().collect();
        let finals = self.final_states(&settle, &seen).await?;
        let mut report = CancelReport::default();
        report
            .settle_listed(&ids, &open_ids, &finals, &failed, |id| self.get_order(id))
            .await?;
        report.rounds_ran_out(done, still_open.is_empty(), MAX_CANCEL_ROUNDS);
        Ok(report)
    }

    /// `POST /v5/order/cancel`, then the order is read back (Bybit cancels asynchronously).
    async fn cancel_order(&self, order: &OrderRef) -> Result<Order> {
        let Some(market) = order.market.as_ref() else {
            return Err(Error::Config(
                "Bybit needs the order's symbol to cancel it".into(),
            ));
        };
        let call = Call::post_json(
            "/v5/order/cancel",
            vec![
                field("category", "spot"),
                field("symbol", market.symbol.as_str()),
                field("orderId", order.id.as_str()),
            ],
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
        match (self.get_order(&order.id).await, err) {
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

    /// `POST /v5/asset/withdraw/cancel {"id"}`, then the withdrawal is read back.
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer> {
        let call = Call::post_json("/v5/asset/withdraw/cancel", vec![field("id", id)]);
        let what = format!("{} id={id}", call.what());
        let sent = match self.write(call.clone()).await {
            Ok(a) => match wire::parse_withdraw_cancel(&a.body) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::Api {
                    exchange: super::DESCRIPTOR.name.into(),
                    status: a.status,
                    code: "status_0".into(),
                    kind: ErrorKind::Other,
                    message: format!("Bybit answered status 0 (not cancelled) to {what}"),
                    advice:
                        "the withdrawal may already be on its way: contact Bybit support at once"
                            .into(),
                }),
                Err(e) => Err(Pipeline::decode_error(&call, &a, e)),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &sent {
            if !outcome_unknown(e) {
                return Err(sent.unwrap_err());
            }
        }
        let read = self
            .pages(
                "/v5/asset/withdraw/query-record",
                vec![p("withdrawID", id), p("withdrawType", 2)],
                usize::MAX,
                |a| wire::parse_withdrawals(&a.body, a.prov.clone()),
            )
            .await;
        match (read.map(|l| l.into_iter().find(|t| t.id == id)), sent) {
            (Ok(Some(t)), Ok(())) => Ok(t),
            (Ok(Some(t)), Err(_)) if t.status != crate::exchange::TransferStatus::Pending => Ok(t),
            (Ok(Some(_)), Err(e)) => Err(Error::OutcomeUnknown {
                what,
                detail: format!("{e}; the withdrawal is still pending"),
            }),
            (Ok(None), r) => Err(Error::OutcomeUnknown {
                what,
                detail: format!(
                    "{}; the withdrawal is not in the withdrawal history",
                    r.err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "cancelled".into())
                ),
            }),
            (Err(e2), _) => Err(e2),
        }
    }

    /// A key holding a transfer or withdrawal permission deletes itself (`POST
    /// /v5/user/delete-api`; `delete-sub-api` for a sub-account's key). Any other key cannot
    /// be deleted, nor made read-only or IP-bound (`update-api` asks the same permissions), by
    /// API: [`Error::Unsupported`] says so and the run falls back to the guided manual step.
    /// The key's settings are read first, so the evidence shows it accepted and what it could
    /// do before the deletion.
    async fn revoke_key(&self) -> Result<()> {
        let k = self.key_now().await?;
        if !k.can_revoke_itself() {
            return Err(Error::Unsupported {
                exchange: super::DESCRIPTOR.name.into(),
                what: format!(
                    "deleting this key by API: it holds no Account Transfer, Subaccount Transfer or Withdrawal permission (it holds {}), and Bybit lets only such a key delete or modify itself (POST /v5/user/delete-api, POST /v5/user/update-api)",
                    if k.held().is_empty() { "none".to_string() } else { k.held().join(", ") }
                ),
            });
        }
        match self.delete_self(&k).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_key_dead() || e.stops_run() => Err(e),
            // Deletion refused for another reason: make the key read-only at least, and say
            // what remains.
            Err(e) => {
                let call = Call::post_json("/v5/user/update-api", vec![field("readOnly", 1)]);
                match self.write(call).await {
                    Ok(_) => Err(Error::Unsupported {
                        exchange: super::DESCRIPTOR.name.into(),
                        what: format!(
                            "deleting this key by API ({e}); respond made it read-only instead (POST /v5/user/update-api readOnly=1): it can no longer trade or withdraw, but still reads the account, so it must still be deleted by hand"
                        ),
                    }),
                    Err(e2) => Err(Error::Unsupported {
                        exchange: super::DESCRIPTOR.name.into(),
                        what: format!(
                            "deleting this key by API ({e}), and making it read-only too ({e2})"
                        ),
                    }),
                }
            }
        }
    }

    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        if ![1, 3, 5, 15, 30, 60, 120, 240, 360, 720].contains(&unit_minutes) {
            return Err(Error::Config(format!(
                "candle unit {unit_minutes} min is not one of Bybit's 1, 3, 5, 15, 30, 60, 120, 240, 360, 720"
            )));
        }
        if count == 0 || count > 1000 {
            return Err(Error::Config(format!(
                "candle count {count} must be between 1 and 1000"
            )));
        }
        let params = vec![
            p("category", "spot"),
            p("symbol", &market.symbol),
            p("interval", unit_minutes),
            p("end", to.timestamp_millis() - 1),
            p("limit", count),
        ];
        self.pipe
            .read(Call::public("/v5/market/kline", params), |a| {
                wire::parse_klines(&a.body, market)
            })
            .await
    }
}
