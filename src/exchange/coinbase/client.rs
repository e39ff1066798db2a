//! The live Coinbase Advanced Trade adapter: [`CoinbaseClient`] implements [`Exchange`] over
//! the shared request pipeline ([`crate::exchange::http`]), with Coinbase's JWT signer
//! ([`super::auth`]), limits ([`super::limits`]), error map ([`super::errors`]) and wire formats
//! ([`super::wire`], shared with the offline rebuild).
//!
//! What Coinbase adds to the pipeline, and where it is handled here:
//! - **A token per request.** Every signed request carries a fresh JWT naming its method and
//!   path, valid two minutes from the server's clock: the offset is read from `GET
//!   /api/v3/brokerage/time` before the first signed request, and an expired-token refusal
//!   reads it again and sends the request once more.
//! - **No cancel-all.** Open orders are listed (`order_status=OPEN`, then `PENDING`, `QUEUED` and
//!   `CANCEL_QUEUED` apart: `OPEN` combines with no other status; cursor) and cancelled with
//!   `POST /api/v3/brokerage/orders/batch_cancel`, at most [`BATCH_CANCEL_MAX`] ids per call,
//!   listing again until none is left; each answer says per order whether the cancel started.
//! - **Cursors.** Advanced Trade lists follow `cursor` while `has_next`; App API lists follow
//!   `pagination.next_starting_after`.
//! - **Transfers per currency account.** Sends and receives are read from the App API, one
//!   currency account (from `GET /api/v3/brokerage/accounts`) at a time, newest first, back to
//!   the date asked.
//! - **No key deletion, no withdrawal cancel, no IP allowlist by API**: the run takes the guided
//!   manual step and verifies it by polling.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::auth::{self, KeySigner};
use super::limits;
use super::wire::{self, KeyPermissions, Page, WireAccount, WireError};
use crate::exchange::http::{
    outcome_unknown, p, Answer, BudgetReport, Call, Pipeline, Protocol, RetryPolicy, ServerClock,
    Signed, Signer, Transport,
};
use crate::exchange::{
    ApiKeyInfo, Balance, CancelReport, Candle, Capabilities, ClosedOrdersQuery, Error, ErrorKind,
    Exchange, Fill, FillsQuery, FillsSource, FirstListing, Market, MarketInfo, Order, OrderRef,
    OrderState, PermissionProbe, Result, ScopeClass, ScopeProbe, ServerTime, Transfer,
    TransferKind, WithdrawalAddress,
};
use crate::rundir::RunDir;
use crate::secret::{mask_key, Secret};

/// Coinbase's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.coinbase.com";
/// Orders per `orders/historical/batch` page (what ccxt asks for).
pub const ORDERS_PAGE: u32 = 100;
/// Fills per `orders/historical/fills` page.
pub const FILLS_PAGE: u32 = 100;
/// Accounts per `accounts` page (the most Coinbase returns).
pub const ACCOUNTS_PAGE: u32 = 250;
/// Transactions per App API page (the most the App API returns).
pub const TRANSACTIONS_PAGE: u32 = 100;
/// Most order ids one `batch_cancel` takes.
pub const BATCH_CANCEL_MAX: usize = 100;
/// Most closed orders one [`Exchange::closed_orders`] call collects (pages followed): the
/// export halves a window that reaches it.
pub const CLOSED_ORDERS_MAX: u32 = 1000;
/// The window one fills query is given (Coinbase documents none; a month keeps the export's
/// steps small).
pub const FILLS_WINDOW_SECS: u64 = 31 * 24 * 3600;
/// Safety bound on pages followed by one listing.
const MAX_PAGES: usize = 1000;
/// Safety bound on cancel rounds (list → batch cancels → list).
const MAX_CANCEL_ROUNDS: usize = 10;

const ORDERS_BATCH: &str = "/api/v3/brokerage/orders/historical/batch";
/// The statuses of an order that can still trade, one listing each group: `OPEN` cannot be
/// combined with another status (docs/exchanges/coinbase.md §4).
const OPEN_STATUSES: [&[&str]; 2] = [&["OPEN"], &["PENDING", "QUEUED", "CANCEL_QUEUED"]];
const FILLS: &str = "/api/v3/brokerage/orders/historical/fills";
const BATCH_CANCEL: &str = "/api/v3/brokerage/orders/batch_cancel";
const KEY_PERMISSIONS: &str = "/api/v3/brokerage/key_permissions";

/// How to reach Coinbase and with which key.
#[derive(Debug, Clone)]
pub struct CoinbaseConfig {
    /// `--api-url`; `None` = [`DEFAULT_BASE_URL`]. https anywhere, plain http only to loopback.
    pub base_url: Option<String>,
    /// The CDP key name (`organizations/{org}/apiKeys/{id}`, or an Ed25519 key's id).
    pub access_key: String,
    /// The private key: PEM (ECDSA) or base64 (Ed25519).
    pub secret_key: Secret,
    /// Where raw responses are recorded; `None` records nothing (tests, probes).
    pub recorder: Option<RunDir>,
    pub request_timeout: Duration,
    pub max_read_retries: u32,
    pub retry_base_delay: Duration,
}

impl CoinbaseConfig {
    /// Defaults: production URL, no recorder, 10 s timeout, 4 read retries, 250 ms backoff.
    pub fn new(access_key: impl Into<String>, secret_key: Secret) -> Self {
        CoinbaseConfig {
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

/// Coinbase's side of the pipeline: per-user and per-IP budgets, `x-ratelimit-remaining`,
/// HTTP status errors.
pub struct CoinbaseProtocol;

impl Protocol for CoinbaseProtocol {
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
        if (200..300).contains(&status) {
            return Ok(());
        }
        let (code, message) = wire::parse_error(status, body).unwrap_or_else(|| {
            (
                format!("http_{status}"),
                crate::secret::redact(&String::from_utf8_lossy(body))
                    .chars()
                    .take(200)
                    .collect(),
            )
        });
        let (kind, advice) = super::errors::classify(status, &code, &message);
        if kind == ErrorKind::RateLimited {
            return Err(Error::RateLimited {
                status: 429,
                retry_after_ms: None,
            });
        }
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

/// What every key of one connection shares: the server-time offset.
#[derive(Default)]
struct Shared {
    clock: ServerClock,
}

/// Signs with a fresh JWT per request.
struct CoinbaseSigner {
    key_name: String,
    key: KeySigner,
    base: String,
    shared: Arc<Shared>,
}

impl Signer for CoinbaseSigner {
    fn sign(&self, call: &Call) -> Signed {
        let now_ms = self.shared.clock.now_ms();
        let uri = auth::uri_claim(call.method.as_str(), &self.base, &call.path);
        Signed {
            headers: auth::headers(&self.key, &self.key_name, &uri, now_ms.div_euclid(1000)),
            extra_params: Vec::new(),
        }
    }
}

/// The Coinbase Advanced Trade spot adapter.
pub struct CoinbaseClient {
    pipe: Pipeline,
    caps: Capabilities,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CoinbaseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoinbaseClient")
            .field("base", &self.pipe.transport().base())
            .field("key", &self.pipe.key_masked())
            .finish_non_exhaustive()
    }
}

fn check_key(key_name: &str, secret: &Secret, what: &str) -> Result<KeySigner> {
    if key_name.trim().is_empty() || secret.is_empty() {
        return Err(Error::Config(what.into()));
    }
    KeySigner::from_secret(secret).map_err(|e| Error::Config(format!("COINBASE secret: {e}")))
}

fn capabilities(key_masked: &str) -> Capabilities {
    let d = &super::DESCRIPTOR;
    let (en, _) = d.revoke.instructions(key_masked);
    Capabilities {
        name: d.name.into(),
        revoke_key_by_api: false,
        revoke_after_containment: false,
        read_key_permissions: true,
        batch_cancel: true,
        cancel_withdrawals: false,
        fills: FillsSource::PerWindow {
            max_window_secs: FILLS_WINDOW_SECS,
            page_size: FILLS_PAGE,
            needs_symbol: false,
        },
        closed_orders_max_window_secs: None,
        closed_orders_max_per_call: CLOSED_ORDERS_MAX,
        history_needs_symbol: false,
        client_id_field: "client_order_id".into(),
        local_zone: d.locale.zone,
        manual_revoke_instructions_en: en,
        manual_revoke_instructions_local: String::new(),
        local_language: d.locale.language.into(),
    }
}

fn field(k: &str, v: impl Into<Value>) -> (String, Value) {
    (k.to_string(), v.into())
}

/// The candle granularity of a unit in minutes.
fn granularity(unit_minutes: u32) -> Option<&'static str> {
    Some(match unit_minutes {
        1 => "ONE_MINUTE",
        5 => "FIVE_MINUTE",
        15 => "FIFTEEN_MINUTE",
        30 => "THIRTY_MINUTE",
        60 => "ONE_HOUR",
        120 => "TWO_HOUR",
        240 => "FOUR_HOUR",
        360 => "SIX_HOUR",
        1440 => "ONE_DAY",
        _ => return None,
    })
}

impl CoinbaseClient {
    pub fn new(cfg: CoinbaseConfig) -> Result<Self> {
        let transport = Transport::new(
            cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            cfg.request_timeout,
            cfg.recorder,
            Arc::new(CoinbaseProtocol),
            RetryPolicy {
                max_read_retries: cfg.max_read_retries,
                base_delay: cfg.retry_base_delay,
            },
        )?;
        let key = check_key(
            &cfg.access_key,
            &cfg.secret_key,
            "the Coinbase key name and private key must both be set (COINBASE_ACCESS_KEY, COINBASE_SECRET_KEY)",
        )?;
        Ok(Self::on(
            transport,
            Arc::new(Shared::default()),
            cfg.access_key.trim().to_string(),
            key,
        ))
    }

    fn on(
        transport: Arc<Transport>,
        shared: Arc<Shared>,
        key_name: String,
        key: KeySigner,
    ) -> Self {
        let key_masked = mask_key(&key_name);
        let base = transport.base().to_string();
        // The key name and its public key: the same private key gives the same fingerprint
        // whatever form its PEM was given in, and nothing secret goes into it.
        let fingerprint = crate::exchange::http::credentials_fingerprint(&[
            key_name.as_bytes(),
            &key.public_key(),
        ]);
        CoinbaseClient {
            caps: capabilities(&key_masked),
            pipe: Pipeline::new(
                transport,
                Arc::new(CoinbaseSigner {
                    key_name,
                    key,
                    base,
                    shared: shared.clone(),
                }),
                key_masked,
            )
            .with_fingerprint(fingerprint),
            shared,
        }
    }

    /// A client for another key of the same account (the read-only key), sharing this one's
    /// connection pool, rate limiter, clock offset and run directory.
    pub fn with_key(&self, access_key: impl Into<String>, secret_key: Secret) -> Result<Self> {
        let access_key = access_key.into();
        let key = check_key(
            &access_key,
            &secret_key,
            "the other key's name and private key must both be set",
        )?;
        Ok(Self::on(
            self.pipe.transport().clone(),
            self.shared.clone(),
            access_key.trim().to_string(),
            key,
        ))
    }

    /// The clock offset in use (server − local), milliseconds.
    pub fn clock_offset_ms(&self) -> i64 {
        self.shared.clock.offset_ms()
    }

    async fn sync_time(&self) -> Result<ServerTime> {
        let call = Call::public("/api/v3/brokerage/time", vec![]);
        let st = self
            .pipe
            .read(call, |a: &Answer| {
                let server = wire::parse_server_time(&a.body)?;
                Ok(a.server_time(server))
            })
            .await?;
        self.shared.clock.set(&st);
        Ok(st)
    }

    async fn ensure_time(&self) {
        self.shared
            .clock
            .ensure("Coinbase", || self.sync_time())
            .await;
    }

    /// A signed read: the clock first, one more try after an expired-token refusal, or after
    /// a plain 401 (Coinbase answers an expired token, a drifted clock's, with the same bare
    /// 401 as a deleted key: the clock is read again before the refusal is the key's).
    async fn read<T>(
        &self,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, WireError>,
    ) -> Result<T> {
        self.ensure_time().await;
        match self.pipe.read(call.clone(), &parse).await {
            Err(e) if retry_after_clock(&e) => {
                self.sync_time().await?;
                self.pipe.read(call, &parse).await
            }
            other => other,
        }
    }

    /// A signed write: never resent, except once after an expired-token refusal or a plain
    /// 401 (refused before Coinbase acted), with the clock read again.
    async fn write(&self, call: Call) -> Result<Answer> {
        self.ensure_time().await;
        match self.pipe.write(call.clone()).await {
            Err(e) if retry_after_clock(&e) => {
                self.sync_time().await?;
                self.pipe.write(call).await
            }
            other => other,
        }
    }

    /// Every page of a signed Advanced Trade list, following `cursor` until the last page or
    /// until `enough` rows are in.
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
                ps.push(p("cursor", c));
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
                        detail: "Coinbase sent the same cursor again while announcing a next page, so the list could not be read to its end".into(),
                    })
                }
                Some(c) => cursor = Some(c),
            }
        }
        Err(Error::Decode {
            endpoint: path.to_string(),
            detail: format!(
                "still a next cursor after {MAX_PAGES} pages, so the list was not read to its end"
            ),
        })
    }

    /// `GET /api/v3/brokerage/key_permissions`.
    async fn key_now(&self) -> Result<KeyPermissions> {
        self.read(Call::get(KEY_PERMISSIONS, vec![]), |a| {
            wire::parse_key_permissions(&a.body)
        })
        .await
    }

    /// Every currency account (`GET /api/v3/brokerage/accounts`, every page).
    async fn accounts(&self) -> Result<Vec<WireAccount>> {
        self.pages(
            "/api/v3/brokerage/accounts",
            vec![p("limit", ACCOUNTS_PAGE)],
            usize::MAX,
            |a| wire::parse_accounts(&a.body),
        )
        .await
    }

    /// One order by id.
    async fn get_order(&self, id: &str) -> Result<Order> {
        self.read(
            Call::get(format!("/api/v3/brokerage/orders/historical/{id}"), vec![]),
            |a| wire::parse_order(&a.body, a.prov.clone()),
        )
        .await
    }

    /// The final states of orders that left the book: listed by id, a hundred per call; what
    /// the listing does not show is read one by one by the caller.
    async fn final_states(&self, ids: &BTreeSet<String>) -> Result<BTreeMap<String, Order>> {
        let mut finals = BTreeMap::new();
        let ids: Vec<&String> = ids.iter().collect();
        for chunk in ids.chunks(BATCH_CANCEL_MAX) {
            let mut params: Vec<(String, String)> =
                chunk.iter().map(|id| p("order_ids", id)).collect();
            params.push(p("limit", ORDERS_PAGE));
            match self
                .pages(ORDERS_BATCH, params, chunk.len(), |a| {
                    wire::parse_orders(&a.body, a.prov.clone())
                })
                .await
            {
                Ok(list) => {
                    for o in list {
                        if chunk.contains(&&o.id) && o.state != OrderState::Open {
                            finals.insert(o.id.clone(), o);
                        }
                    }
                }
                Err(e) if e.is_key_dead() => return Err(e),
                Err(_) => {}
            }
        }
        Ok(finals)
    }

    /// Every transfer of `kind` since `since`: per currency account, the App API's transactions
    /// newest first until a page reaches back past `since`. Every transfer read is kept (also
    /// the older ones of the last page), as the offline rebuild sees them.
    async fn transfers(&self, kind: TransferKind, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        let accounts = self.accounts().await?;
        let mut out: Vec<Transfer> = Vec::new();
        let mut seen_accounts = BTreeSet::new();
        for acc in accounts {
            if !seen_accounts.insert(acc.uuid.clone()) {
                continue;
            }
            let path = format!("/v2/accounts/{}/transactions", acc.uuid);
            let mut after: Option<String> = None;
            let mut pages = 0usize;
            loop {
                let mut params = vec![p("limit", TRANSACTIONS_PAGE), p("order", "desc")];
                if let Some(a) = &after {
                    params.push(p("starting_after", a));
                }
                let (page, oldest) = self
                    .read(Call::get(path.clone(), params), |a| {
                        wire::parse_transactions(&a.body, a.prov.clone())
                    })
                    .await?;
                out.extend(page.rows);
                pages += 1;
                match page.next {
                    None => break,
                    Some(_) if oldest.is_some_and(|o| o < since) => break,
                    Some(n) if Some(&n) == after.as_ref() || pages >= MAX_PAGES => {
                        return Err(Error::Decode {
                            endpoint: path,
                            detail: "the transactions list did not end (the same next_starting_after again, or too many pages)".into(),
                        })
                    }
                    Some(n) => after = Some(n),
                }
            }
        }
        let mut ids = BTreeSet::new();
        out.retain(|t| t.kind == kind && ids.insert(t.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Rounds of: list the open orders → `batch_cancel` them a hundred at a time → list again,
    /// until none is left. Each answer says per order whether the cancel started; the final
    /// states are read back (listed by id, then one by one). A batch whose outcome is unknown
    /// is settled by the next listing, never resent blindly.
    ///
    /// The first round's listing is what was open when containment began: it goes into
    /// `first` (and [`CancelReport::open_at_start`]) before the first cancel, so nothing lists
    /// the book again for the evidence (ten pages of 100 at 1,000 orders: a second listing
    /// would push the last cancels past the first second's 30 signed requests).
    async fn cancel_all(&self, first: Option<&FirstListing>) -> Result<CancelReport> {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut still_open: Vec<Order> = Vec::new();
        let mut done = false;
        let mut open_at_start: Option<Vec<Order>> = None;
        for round in 0..MAX_CANCEL_ROUNDS {
            let open = self.open_orders().await?;
            if round == 0 {
                if let Some(first) = first {
                    first.keep(&open);
                }
                open_at_start = Some(open.clone());
            }
            if open.is_empty() {
                done = true;
                break;
            }
            for o in &open {
                ids.insert(o.id.clone());
            }
            if round + 1 == MAX_CANCEL_ROUNDS {
                still_open = open;
                break;
            }
            for chunk in open.chunks(BATCH_CANCEL_MAX) {
                let chunk_ids: Vec<Value> =
                    chunk.iter().map(|o| Value::from(o.id.as_str())).collect();
                let call = Call::post_json(BATCH_CANCEL, vec![field("order_ids", chunk_ids)]);
                match self.write(call.clone()).await {
                    Ok(a) => match wire::parse_batch_cancel(&a.body) {
                        Ok(results) => {
                            for r in results {
                                if r.success {
                                    failed.remove(&r.order_id);
                                } else {
                                    failed.insert(
                                        r.order_id.clone(),
                                        format!(
                                            "batch_cancel refused it ({})",
                                            r.failure_reason
                                                .as_deref()
                                                .unwrap_or("no reason given")
                                        ),
                                    );
                                }
                            }
                        }
                        // An unreadable answer: the next listing settles it.
                        Err(e) => tracing::warn!("{}", Pipeline::decode_error(&call, &a, e)),
                    },
                    Err(e) if outcome_unknown(&e) => {}
                    Err(e @ Error::Api { .. }) if !e.is_key_dead() && !e.is_out_of_scope() => {
                        for o in chunk {
                            failed
                                .entry(o.id.clone())
                                .or_insert_with(|| format!("batch_cancel: {e}"));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let open_ids: BTreeSet<String> = still_open.iter().map(|o| o.id.clone()).collect();
        let settle: BTreeSet<String> = ids.difference(&open_ids).cloned().collect();
        let finals = self.final_states(&settle).await?;
        let mut report = CancelReport::default();
        report
            .settle_listed(&ids, &open_ids, &finals, &failed, |id| self.get_order(id))
            .await?;
        report.rounds_ran_out(done, still_open.is_empty(), MAX_CANCEL_ROUNDS);
        report.open_at_start = open_at_start;
        Ok(report)
    }
}

#[async_trait]
impl Exchange for CoinbaseClient {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn pipeline(&self) -> Option<&Pipeline> {
        Some(&self.pipe)
    }

    /// `GET /api/v3/brokerage/time`, adopted as the signing clock's offset.
    async fn server_time(&self) -> Result<ServerTime> {
        self.sync_time().await
    }

    async fn balances(&self) -> Result<Vec<Balance>> {
        Ok(wire::balances(&self.accounts().await?))
    }

    /// Coinbase shows the calling key only: `key_permissions`.
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        Ok(vec![self.key_now().await?.key_info(self.pipe.key_masked())])
    }

    /// `key_permissions` says what the key may do and which portfolio it reaches. It is
    /// critical when it may transfer (send crypto off Coinbase). Coinbase shows no IP
    /// allowlist by API, so whether the key works from anywhere is unknown.
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        let k = self.key_now().await?;
        let evidence = format!("GET {KEY_PERMISSIONS} answered");
        let scopes: Vec<ScopeProbe> = super::SCOPES
            .iter()
            .map(|s| {
                let held = match s.name {
                    "can_view" => k.can_view,
                    "can_trade" => k.can_trade,
                    _ => k.can_transfer,
                };
                ScopeProbe {
                    scope: s.name.into(),
                    class: s.class,
                    held: Some(held),
                    evidence: format!("{evidence}: {} {held}", s.name),
                }
            })
            .collect();
        let mut reasons = Vec::new();
        if k.can_transfer {
            reasons.push(
                "the key may transfer (can_transfer): it can send crypto off Coinbase".to_string(),
            );
        }
        if k.can_trade {
            reasons.push("the key may trade (can_trade)".to_string());
        }
        if !k.can_trade && !k.can_transfer {
            reasons.push("the key may only view (can_view): it cannot trade or transfer".into());
        }
        match (&k.portfolio_uuid, &k.portfolio_type) {
            (Some(u), t) if !u.is_empty() => reasons.push(format!(
                "it is scoped to portfolio {u}{}",
                t.as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            )),
            _ => {}
        }
        reasons.push(
            "Coinbase does not show a key's IP allowlist by API: check it in the developer platform"
                .into(),
        );
        Ok(PermissionProbe {
            critical: scopes
                .iter()
                .any(|s| s.held == Some(true) && s.class == ScopeClass::Withdraw),
            scopes,
            ip_restricted: None,
            expire_at: None,
            reasons,
        })
    }

    /// `GET /api/v3/brokerage/orders/historical/batch?order_status=OPEN`, then
    /// `order_status=PENDING`, `QUEUED` and `CANCEL_QUEUED` in a second listing (Coinbase
    /// refuses `OPEN` combined with other statuses), every page of each: an order accepted but
    /// not on the book yet, or whose cancel is only queued, can still trade.
    async fn open_orders(&self) -> Result<Vec<Order>> {
        let mut out = Vec::new();
        for statuses in OPEN_STATUSES {
            let mut params: Vec<(String, String)> =
                statuses.iter().map(|s| p("order_status", s)).collect();
            params.push(p("limit", ORDERS_PAGE));
            out.extend(
                self.pages(ORDERS_BATCH, params, usize::MAX, |a| {
                    wire::parse_orders(&a.body, a.prov.clone())
                })
                .await?,
            );
        }
        let mut seen = BTreeSet::new();
        out.retain(|o| o.state == OrderState::Open && seen.insert(o.id.clone()));
        Ok(out)
    }

    /// `GET /api/v3/brokerage/orders/historical/batch` between `start_date` and `end_date`
    /// (every status), following the cursor until `query.limit` orders are in.
    async fn closed_orders(&self, q: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        if q.window.to <= q.window.from {
            return Err(Error::Config(format!(
                "orders window is empty or reversed ({} → {})",
                crate::time::ts(q.window.from),
                crate::time::ts(q.window.to)
            )));
        }
        if q.limit == 0 || q.limit > CLOSED_ORDERS_MAX {
            return Err(Error::Config(format!(
                "orders limit {} must be between 1 and {CLOSED_ORDERS_MAX}",
                q.limit
            )));
        }
        let mut params = Vec::new();
        if let Some(m) = &q.market {
            params.push(p("product_ids", &m.symbol));
        }
        params.push(p("start_date", wire::ts_param(q.window.from)));
        params.push(p("end_date", wire::ts_param(q.window.to)));
        params.push(p("limit", ORDERS_PAGE.min(q.limit)));
        // Rows outside the window (Coinbase's `end_date` is inclusive) are dropped page by
        // page, before the pages are counted: a full answer never looks short.
        let inside = |o: &Order| o.created_at >= q.window.from && o.created_at < q.window.to;
        let mut out = self
            .pages(ORDERS_BATCH, params, q.limit as usize, |a| {
                wire::parse_orders(&a.body, a.prov.clone()).map(|mut page| {
                    page.rows.retain(inside);
                    page
                })
            })
            .await?;
        let rows = out.len();
        let mut seen = BTreeSet::new();
        out.retain(|o| seen.insert(o.id.clone()));
        // A full answer must not look short once repeated rows are dropped: the export reads
        // fewer rows than the limit as "the window is whole".
        if rows >= q.limit as usize && out.len() < q.limit as usize {
            return Err(Error::Decode {
                endpoint: ORDERS_BATCH.into(),
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

    /// `orders/historical/batch` lists newest first (by creation) and the cursor walks it in
    /// that order, so a call that stops at its limit holds every order created after its
    /// oldest one.
    fn closed_orders_full_page(&self) -> crate::exchange::FullPage {
        crate::exchange::FullPage::Newest
    }

    fn closed_orders_page(&self) -> u32 {
        ORDERS_PAGE
    }

    /// The order, and its fills (`orders/historical/fills` by `order_ids`) when it filled.
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        let o = self.get_order(&order.id).await?;
        if o.executed_volume.is_zero() {
            return Ok((o, Vec::new()));
        }
        let fills = self
            .pages(
                FILLS,
                vec![p("order_ids", &order.id), p("limit", FILLS_PAGE)],
                usize::MAX,
                |a| wire::parse_fills(&a.body, a.prov.clone()),
            )
            .await?;
        Ok((o, fills))
    }

    /// `GET /api/v3/brokerage/orders/historical/fills` between the sequence timestamps, every
    /// page.
    async fn fills(&self, q: &FillsQuery) -> Result<Vec<Fill>> {
        if q.window.to <= q.window.from {
            return Err(Error::Config("fills window is empty or reversed".into()));
        }
        let mut params = Vec::new();
        if let Some(m) = &q.market {
            params.push(p("product_ids", &m.symbol));
        }
        params.push(p("start_sequence_timestamp", wire::ts_param(q.window.from)));
        params.push(p("end_sequence_timestamp", wire::ts_param(q.window.to)));
        params.push(p("limit", q.limit.clamp(1, FILLS_PAGE)));
        let mut out = self
            .pages(FILLS, params, usize::MAX, |a| {
                wire::parse_fills(&a.body, a.prov.clone())
            })
            .await?;
        let mut seen = BTreeSet::new();
        out.retain(|f| seen.insert(f.id.clone()));
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// The public spot product list.
    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        self.pipe
            .read(
                Call::public(
                    "/api/v3/brokerage/market/products",
                    vec![p("product_type", "SPOT")],
                ),
                |a| wire::parse_products(&a.body),
            )
            .await
    }

    fn market(&self, symbol: &str) -> Result<Market> {
        (super::DESCRIPTOR.parse_symbol)(symbol).map_err(|e| Error::Config(e.to_string()))
    }

    async fn withdrawals(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers(TransferKind::Withdrawal, since).await
    }

    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers(TransferKind::Deposit, since).await
    }

    /// Coinbase offers no API for the withdrawal address book.
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        Err(Error::Unsupported {
            exchange: super::DESCRIPTOR.name.into(),
            what: "reading the withdrawal address book (Coinbase has no API for it; check Settings → Security → Address book on coinbase.com)".into(),
        })
    }

    /// Rounds of listing and `batch_cancel` ([`CoinbaseClient::cancel_all`]).
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        self.cancel_all(None).await
    }

    /// The first listing of [`Exchange::cancel_all_open_orders`] is kept as the evidence of
    /// the book: no second listing before it.
    async fn cancel_all_open_orders_listed(&self, first: &FirstListing) -> Result<CancelReport> {
        self.cancel_all(Some(first)).await
    }

    /// `POST …/batch_cancel` with the one id, then the order is read back (a success only means
    /// the cancel started).
    async fn cancel_order(&self, order: &OrderRef) -> Result<Order> {
        let call = Call::post_json(
            BATCH_CANCEL,
            vec![field("order_ids", vec![Value::from(order.id.as_str())])],
        );
        let what = format!("{} order_ids=[{}]", call.what(), order.id);
        let err = match self.write(call.clone()).await {
            Ok(a) => match wire::parse_batch_cancel(&a.body) {
                Ok(r) => match r.into_iter().find(|r| r.order_id == order.id) {
                    Some(r) if !r.success => Some(Error::Api {
                        exchange: super::DESCRIPTOR.name.into(),
                        status: a.status,
                        code: r
                            .failure_reason
                            .clone()
                            .unwrap_or_else(|| "cancel_failed".into()),
                        kind: ErrorKind::NotFound,
                        message: format!("Coinbase did not cancel order {} ({what})", order.id),
                        advice: "the order is unknown to Coinbase or no longer open".into(),
                    }),
                    _ => None,
                },
                Err(e) => Some(Pipeline::decode_error(&call, &a, e)),
            },
            Err(e) if outcome_unknown(&e) => Some(e),
            Err(e) => return Err(e),
        };
        match (self.get_order(&order.id).await, err) {
            (Ok(o), None) => Ok(o),
            (Ok(o), Some(_)) if o.state != OrderState::Open => Ok(o),
            (Ok(_), Some(e @ Error::Api { .. })) => Err(e),
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

    /// Coinbase offers no API to cancel a send.
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer> {
        Err(Error::Unsupported {
            exchange: super::DESCRIPTOR.name.into(),
            what: format!(
                "cancelling send {id} (Coinbase has no API for it; a pending send may still be stopped by Coinbase support)"
            ),
        })
    }

    /// Coinbase has no API call that deletes or weakens a key: the guided manual step.
    async fn revoke_key(&self) -> Result<()> {
        Err(Error::Unsupported {
            exchange: super::DESCRIPTOR.name.into(),
            what: "deleting a key by API (CDP keys are deleted in the developer platform only)"
                .into(),
        })
    }

    /// Public candles (`GET /api/v3/brokerage/market/products/{id}/candles`), newest first.
    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        let Some(g) = granularity(unit_minutes) else {
            return Err(Error::Config(format!(
                "candle unit {unit_minutes} min is not one of Coinbase's 1, 5, 15, 30, 60, 120, 240, 360, 1440"
            )));
        };
        if count == 0 || count > 350 {
            return Err(Error::Config(format!(
                "candle count {count} must be between 1 and 350"
            )));
        }
        let end = to.timestamp();
        let start = end - i64::from(unit_minutes) * 60 * i64::from(count);
        let params = vec![
            p("start", start),
            p("end", end),
            p("granularity", g),
            p("limit", count),
        ];
        let path = format!(
            "/api/v3/brokerage/market/products/{}/candles",
            market.symbol
        );
        self.pipe
            .read(Call::public(path, params), |a| {
                wire::parse_candles(&a.body, market)
            })
            .await
    }
}

/// A refusal worth one more try with the clock read again: an expired token, or Coinbase's
/// bare 401 (which it answers for an expired token too).
fn retry_after_clock(e: &crate::exchange::Error) -> bool {
    matches!(e.kind(), Some(ErrorKind::ClockSkew | ErrorKind::KeyInvalid))
}
