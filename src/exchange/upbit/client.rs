//! The live Upbit adapter: [`UpbitClient`] implements [`Exchange`] over the shared request
//! pipeline ([`crate::exchange::http`]), with Upbit's JWT signer, endpoints, limits table
//! ([`super::limits`]) and error map ([`super::errors`]). Parsing goes through [`super::wire`]
//! (shared with the offline rebuild).
//!
//! Writes are never resent blindly: when a cancel's outcome is unknown (no answer, 5xx,
//! unreadable answer) the client asks the exchange for the order's state first and reports
//! [`Error::OutcomeUnknown`] only when the state cannot settle it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::auth::{self, JwtAlg};
use super::limits;
use super::wire::{self, WireError};
use crate::exchange::http::{
    self, outcome_unknown, p, Answer, BudgetReport, Call, Pipeline, Protocol, RetryPolicy, Signed,
    Signer, Transport,
};
use crate::exchange::ratelimit::{Budget, BudgetUse, RateLimiter};
use crate::exchange::{
    ApiKeyInfo, Balance, CancelFailure, CancelReport, Candle, Capabilities, ClosedOrdersQuery,
    Error, ErrorKind, Exchange, Fill, FillsSource, Market, MarketInfo, Order, OrderRef, OrderState,
    PermissionProbe, Result, ScopeProbe, ServerTime, Transfer, TransferKind, WithdrawalAddress,
};
use crate::rundir::RunDir;
use crate::secret::{mask_key, Secret};

/// Upbit's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.upbit.com";
/// Longest closed-orders window one query may span.
pub const CLOSED_WINDOW_MAX: chrono::Duration = chrono::Duration::days(7);
/// Most closed orders per query.
pub const CLOSED_MAX_PER_CALL: u32 = 1000;
/// Page size of open orders, withdrawals and deposits.
pub const PAGE_LIMIT: usize = 100;
/// Open-order pages read at once after the first (see `open_pages`).
const OPEN_PAGES_IN_FLIGHT: usize = 4;
/// Cancels by uuid in flight at once during containment.
const UUID_CANCEL_IN_FLIGHT: usize = 8;
/// Most orders one `DELETE /v1/orders/open` cancels.
pub const BATCH_CANCEL_MAX: usize = 300;
/// Most ids one `DELETE /v1/orders/uuids` takes.
pub const UUID_CANCEL_MAX: usize = 20;
/// Most ids one `GET /v1/orders/uuids` takes.
const UUID_READ_MAX: usize = 100;
/// Safety bound on pages followed by one listing.
const MAX_PAGES: usize = 1000;
/// Safety bound on cancel rounds (list → cancel → list).
const MAX_CANCEL_ROUNDS: usize = 200;
/// Rounds in which only already-accepted orders remain open before giving up on them.
const MAX_SETTLE_ROUNDS: usize = 20;
/// Cancel attempts per order before it is reported as failed.
const MAX_TRIES_PER_ORDER: u32 = 3;

/// How to reach Upbit and with which key.
#[derive(Debug, Clone)]
pub struct UpbitConfig {
    /// `--api-url`; `None` = [`DEFAULT_BASE_URL`]. https anywhere, plain http only to loopback.
    pub base_url: Option<String>,
    pub access_key: String,
    pub secret_key: Secret,
    /// Where raw responses are recorded; `None` records nothing (tests, probes).
    pub recorder: Option<RunDir>,
    pub request_timeout: Duration,
    /// Extra attempts for a read after a retryable failure.
    pub max_read_retries: u32,
    /// First backoff delay (doubles per attempt, plus jitter). Default 250 ms.
    pub retry_base_delay: Duration,
    /// JWT algorithm; HS256 like ccxt and pyupbit unless configured.
    pub jwt_alg: JwtAlg,
}

impl UpbitConfig {
    /// Defaults: production URL, no recorder, 10 s timeout, 4 read retries, 250 ms backoff.
    pub fn new(access_key: impl Into<String>, secret_key: Secret) -> Self {
        UpbitConfig {
            base_url: None,
            access_key: access_key.into(),
            secret_key,
            recorder: None,
            request_timeout: Duration::from_secs(10),
            max_read_retries: 4,
            retry_base_delay: Duration::from_millis(250),
            jwt_alg: JwtAlg::Hs256,
        }
    }
}

fn upbit_capabilities(key_masked: &str) -> Capabilities {
    let d = &super::DESCRIPTOR;
    let (en, ko) = d.revoke.instructions(key_masked);
    Capabilities {
        name: d.name.into(),
        revoke_key_by_api: d.revoke.by_api,
        revoke_after_containment: false,
        read_key_permissions: false,
        batch_cancel: true,
        cancel_withdrawals: true,
        fills: FillsSource::PerOrder,
        closed_orders_max_window_secs: Some(CLOSED_WINDOW_MAX.num_seconds() as u64),
        closed_orders_max_per_call: CLOSED_MAX_PER_CALL,
        history_needs_symbol: false,
        client_id_field: "identifier".into(),
        local_zone: d.locale.zone,
        manual_revoke_instructions_en: en,
        manual_revoke_instructions_local: ko,
        local_language: d.locale.language.into(),
    }
}

/// Upbit's side of the pipeline: groups, `Remaining-Req`, error envelopes.
struct UpbitProtocol;

impl Protocol for UpbitProtocol {
    fn exchange(&self) -> &'static str {
        super::DESCRIPTOR.name
    }
    fn budget(&self, group: &str) -> Budget {
        limits::budget_of(group)
    }
    fn group(&self, call: &Call) -> String {
        limits::group_for(call.method.as_str(), &call.path).into()
    }
    fn observe(&self, headers: &reqwest::header::HeaderMap) -> Option<BudgetReport> {
        let rr =
            http::header(headers, "remaining-req").and_then(|v| wire::parse_remaining_req(&v))?;
        Some(BudgetReport {
            group: rr.group,
            remaining: rr.sec,
        })
    }
    /// `sec` is what the server counts left of the group this second, on every answer
    /// (docs/exchanges/upbit.md, "Rate limits").
    fn exact_count(&self) -> bool {
        true
    }
    fn rate_limit_headers(&self) -> &'static [&'static str] {
        &["remaining-req"]
    }
    fn classify(&self, call: &Call, status: u16, body: &[u8]) -> Result<()> {
        if (200..300).contains(&status) {
            return Ok(());
        }
        let (code, message) = wire::parse_error_envelope(body).unwrap_or_else(|| {
            (
                format!("http_{status}"),
                String::from_utf8_lossy(body).chars().take(200).collect(),
            )
        });
        let (mut kind, advice) = super::errors::classify(&code);
        if kind == ErrorKind::Other && status >= 500 {
            kind = ErrorKind::ServerError;
        }
        Err(Error::Api {
            exchange: self.exchange().into(),
            status,
            code,
            kind,
            message: format!("{} ({})", message, call.what()),
            advice: advice.into(),
        })
    }
}

/// Signs with a JWT in `Authorization: Bearer …` over the decoded query.
struct JwtSigner {
    access_key: String,
    secret: Secret,
    alg: JwtAlg,
}

impl Signer for JwtSigner {
    fn sign(&self, call: &Call) -> Signed {
        let nonce = uuid::Uuid::new_v4().to_string();
        let input = (!call.params.is_empty()).then(|| auth::hash_input(&call.params));
        let token = auth::sign(
            &self.access_key,
            &self.secret,
            &nonce,
            input.as_deref(),
            self.alg,
        );
        Signed {
            headers: vec![("Authorization".into(), format!("Bearer {token}"))],
            extra_params: Vec::new(),
        }
    }
}

/// The Upbit adapter.
pub struct UpbitClient {
    pipe: Pipeline,
    caps: Capabilities,
    alg: JwtAlg,
}

impl std::fmt::Debug for UpbitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpbitClient")
            .field("base", &self.pipe.transport().base())
            .field("key", &self.pipe.key_masked())
            .finish_non_exhaustive()
    }
}

fn check_key(access_key: &str, secret: &Secret, what: &str) -> Result<()> {
    if access_key.trim().is_empty() || secret.is_empty() {
        return Err(Error::Config(what.into()));
    }
    Ok(())
}

impl UpbitClient {
    pub fn new(cfg: UpbitConfig) -> Result<Self> {
        let transport = Transport::new(
            cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            cfg.request_timeout,
            cfg.recorder,
            Arc::new(UpbitProtocol),
            RetryPolicy {
                max_read_retries: cfg.max_read_retries,
                base_delay: cfg.retry_base_delay,
            },
        )?;
        check_key(
            &cfg.access_key,
            &cfg.secret_key,
            "the Upbit access key and secret key must both be set (UPBIT_ACCESS_KEY, UPBIT_SECRET_KEY)",
        )?;
        Ok(Self::on(
            transport,
            cfg.access_key,
            cfg.secret_key,
            cfg.jwt_alg,
        ))
    }

    fn on(transport: Arc<Transport>, access_key: String, secret: Secret, alg: JwtAlg) -> Self {
        let key_masked = mask_key(&access_key);
        UpbitClient {
            caps: upbit_capabilities(&key_masked),
            pipe: Pipeline::new(
                transport,
                Arc::new(JwtSigner {
                    access_key,
                    secret,
                    alg,
                }),
                key_masked,
            ),
            alg,
        }
    }

    /// A client for another key of the same account (the read-only investigation key after
    /// the leaked one is deleted), sharing this one's connection pool, rate limiter (the
    /// budgets are the account's and the IP's, not the key's) and run directory.
    pub fn with_key(&self, access_key: impl Into<String>, secret_key: Secret) -> Result<Self> {
        let access_key = access_key.into();
        check_key(
            &access_key,
            &secret_key,
            "the other key's access key and secret key must both be set",
        )?;
        Ok(Self::on(
            self.pipe.transport().clone(),
            access_key,
            secret_key,
            self.alg,
        ))
    }

    /// Current use of each rate-limit group: for progress bars.
    pub fn budget_snapshot(&self) -> Vec<BudgetUse> {
        self.pipe.limiter().snapshot()
    }

    /// The limiter, to adjust a group's budget (e.g. Upbit's `order` group at 12/s).
    pub fn rate_limiter(&self) -> &RateLimiter {
        self.pipe.limiter()
    }

    async fn read<T>(
        &self,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, WireError>,
    ) -> Result<T> {
        self.pipe.read(call, parse).await
    }

    async fn write(&self, call: Call) -> Result<Answer> {
        self.pipe.write(call).await
    }

    fn decode_error(call: &Call, a: &Answer, e: WireError) -> Error {
        Pipeline::decode_error(call, a, e)
    }

    async fn get_order(&self, uuid: &str) -> Result<(Order, Vec<Fill>)> {
        self.read(Call::get("/v1/order", vec![p("uuid", uuid)]), |a| {
            wire::parse_order(&a.body, a.prov.clone())
        })
        .await
    }

    /// Orders by uuid (≤ 100 per call), in chunks.
    async fn orders_by_uuid(&self, uuids: &[String]) -> Result<Vec<Order>> {
        let mut out = Vec::new();
        for chunk in uuids.chunks(UUID_READ_MAX) {
            let params = chunk.iter().map(|u| p("uuids[]", u)).collect();
            let mut page = self
                .read(Call::get("/v1/orders/uuids", params), |a| {
                    wire::parse_orders(&a.body, a.prov.clone())
                })
                .await?;
            out.append(&mut page);
        }
        Ok(out)
    }

    /// Every open order (`wait` and `watch`), following pages of 100, parsed by `parse`: the
    /// first page alone (a small book needs no more), then [`OPEN_PAGES_IN_FLIGHT`] pages at a
    /// time until one is not full, so a big book takes a few round trips instead of one per
    /// page, for at most three pages read past its end. Rows may repeat across pages when the
    /// book moves meanwhile: callers keep the first of each order.
    async fn open_pages<T>(
        &self,
        parse: impl Fn(&Answer) -> std::result::Result<Vec<T>, WireError>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let (mut first, mut width) = (1, 1);
        while first <= MAX_PAGES {
            let last = (first + width - 1).min(MAX_PAGES);
            let reads = (first..=last).map(|page| {
                let params = vec![
                    p("states[]", "wait"),
                    p("states[]", "watch"),
                    p("page", page),
                    p("limit", PAGE_LIMIT),
                    p("order_by", "desc"),
                ];
                self.read(Call::get("/v1/orders/open", params), &parse)
            });
            let pages = futures::future::try_join_all(reads).await?;
            let short = pages.iter().any(|rows| rows.len() < PAGE_LIMIT);
            out.extend(pages.into_iter().flatten());
            if short {
                break;
            }
            (first, width) = (last + 1, OPEN_PAGES_IN_FLIGHT);
        }
        Ok(out)
    }

    async fn list_open(&self) -> Result<Vec<Order>> {
        let mut out = self
            .open_pages(|a| wire::parse_orders(&a.body, a.prov.clone()))
            .await?;
        dedupe_orders(&mut out);
        Ok(out)
    }

    /// Raw states of open orders (`wait` vs `watch` decides how they can be cancelled).
    async fn list_open_states(&self) -> Result<Vec<(String, String)>> {
        let mut out = self
            .open_pages(|a| wire::parse_order_states(&a.body))
            .await?;
        let mut seen = BTreeSet::new();
        out.retain(|(u, _)| seen.insert(u.clone()));
        Ok(out)
    }

    /// Open orders' raw states and, from the same pages, the orders themselves: the first
    /// listing of a containment is both its plan (states) and its evidence of the book
    /// (orders). A page whose orders do not parse still gives its states, so cancelling never
    /// waits on the evidence; the orders are then `None` (the raw pages are kept either way).
    async fn list_open_with_orders(&self) -> Result<(Vec<(String, String)>, Option<Vec<Order>>)> {
        let rows = self
            .open_pages(|a| {
                let states = wire::parse_order_states(&a.body)?;
                let orders = wire::parse_orders(&a.body, a.prov.clone())
                    .ok()
                    .filter(|o| o.len() == states.len());
                Ok(match orders {
                    Some(o) => states.into_iter().zip(o.into_iter().map(Some)).collect(),
                    None => states.into_iter().map(|s| (s, None)).collect::<Vec<_>>(),
                })
            })
            .await?;
        let mut seen = BTreeSet::new();
        let (states, orders): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .filter(|((u, _), _)| seen.insert(u.clone()))
            .unzip();
        Ok((states, orders.into_iter().collect()))
    }

    async fn transfers(
        &self,
        path: &str,
        kind: TransferKind,
        since: DateTime<Utc>,
    ) -> Result<Vec<Transfer>> {
        let mut out: Vec<Transfer> = Vec::new();
        for page in 1..=MAX_PAGES {
            let params = vec![
                p("limit", PAGE_LIMIT),
                p("page", page),
                p("order_by", "desc"),
            ];
            let rows = self
                .read(Call::get(path, params), |a| {
                    wire::parse_transfers(&a.body, kind, a.prov.clone())
                })
                .await?;
            let n = rows.len();
            let reached_since = rows.iter().any(|t| t.created_at < since);
            out.extend(rows.into_iter().filter(|t| t.created_at >= since));
            if n < PAGE_LIMIT || reached_since {
                break;
            }
        }
        let mut seen = BTreeSet::new();
        out.retain(|t| seen.insert(t.id.clone()));
        Ok(out)
    }

    /// One probe read: `Some(true)` on success, `Some(false)` when the permission is denied.
    async fn probe(&self, scope: &str, call: Call, ip_refused: &mut bool) -> Result<ScopeProbe> {
        let what = call.what_with_query();
        let res = self.read(call, |_| Ok(())).await;
        let (held, evidence) = match res {
            Ok(()) => (Some(true), format!("{what} answered 200")),
            Err(e) if e.is_key_dead() => return Err(e),
            Err(Error::Api {
                code,
                status,
                kind: ErrorKind::PermissionDenied,
                ..
            }) => (Some(false), format!("{what} answered {status} {code}")),
            Err(Error::Api {
                code,
                status,
                kind: ErrorKind::IpNotAllowed,
                ..
            }) => {
                *ip_refused = true;
                (
                    None,
                    format!("{what} answered {status} {code}: this machine is not on the key's IP allowlist, so the scope could not be read from here"),
                )
            }
            Err(e) => (None, format!("{what} failed: {e}")),
        };
        Ok(ScopeProbe {
            scope: scope.into(),
            class: super::DESCRIPTOR.scope_class(scope),
            held,
            evidence,
        })
    }

    /// Waits briefly for an asynchronous cancel to show, then returns the order's state.
    async fn settle_order(&self, uuid: &str) -> Result<Order> {
        let mut last = None;
        for attempt in 0..4u32 {
            let (o, _) = self.get_order(uuid).await?;
            if o.state != OrderState::Open {
                return Ok(o);
            }
            last = Some(o);
            tokio::time::sleep(self.pipe.backoff(attempt)).await;
        }
        last.ok_or_else(|| Error::Transport(format!("no state for order {uuid}")))
    }

    /// Cancels up to 20 `wait` orders by uuid; unknown outcomes are left to the caller's
    /// re-listing.
    async fn cancel_uuids(
        &self,
        uuids: &[String],
        accepted: &mut Vec<String>,
        failed: &mut BTreeMap<String, String>,
        unsure: &mut BTreeSet<String>,
    ) -> Result<()> {
        let params = uuids.iter().map(|u| p("uuids[]", u)).collect();
        let call = Call::delete("/v1/orders/uuids", params);
        match self.write(call.clone()).await {
            Ok(a) => match wire::parse_batch_cancel(&a.body) {
                Ok(b) => {
                    accepted.extend(b.accepted);
                    failed.extend(b.failed);
                }
                Err(_) => unsure.extend(uuids.iter().cloned()),
            },
            Err(e) if outcome_unknown(&e) => unsure.extend(uuids.iter().cloned()),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Rounds of: list open orders → batch-cancel `wait` orders (when more than one uuid
    /// call's worth) → uuid-cancel the remaining `wait` orders → cancel `watch` orders one by
    /// one → list again, until nothing is open. Then every order the exchange accepted a
    /// cancel for (or whose cancel had no answer) is read back, and the report lists those
    /// whose final state is `cancel`. Running it again with nothing open does nothing.
    async fn cancel_all(
        &self,
        first: Option<&crate::exchange::FirstListing>,
    ) -> Result<CancelReport> {
        // The first listing's orders: what was open when containment began.
        let (mut listed, mut open_at_start): (bool, Option<Vec<Order>>) = (false, None);
        let mut accepted: Vec<String> = Vec::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut unsure: BTreeSet<String> = BTreeSet::new();
        let mut tries: HashMap<String, u32> = HashMap::new();
        let mut settle_rounds = 0;
        let mut done = false;
        for _round in 0..MAX_CANCEL_ROUNDS {
            let open = if !listed {
                let (states, orders) = self.list_open_with_orders().await?;
                if let (Some(first), Some(orders)) = (first, &orders) {
                    first.keep(orders);
                }
                (listed, open_at_start) = (true, orders);
                states
            } else {
                self.list_open_states().await?
            };
            if open.is_empty() {
                done = true;
                break;
            }
            let asked: BTreeSet<&String> = accepted.iter().chain(unsure.iter()).collect();
            // An order the exchange refused to cancel is tried again, a few times at most.
            let fresh: Vec<&(String, String)> = open
                .iter()
                .filter(|(u, _)| {
                    !asked.contains(u) && tries.get(u).copied().unwrap_or(0) < MAX_TRIES_PER_ORDER
                })
                .collect();
            if fresh.is_empty() {
                if !open.iter().any(|(u, _)| asked.contains(u)) {
                    // Only orders the exchange refused, each tried enough: report them.
                    break;
                }
                // Cancellation is asynchronous: give accepted cancels time to show.
                settle_rounds += 1;
                if settle_rounds > MAX_SETTLE_ROUNDS {
                    for (u, _) in &open {
                        failed.entry(u.clone()).or_insert_with(|| {
                            "still open after the exchange accepted its cancel".into()
                        });
                    }
                    break;
                }
                // Orders whose cancel had no answer and still show open after a settle round:
                // the state says the cancel did not take, so they go through the normal path
                // again (within their tries). Cancelling twice cannot do harm; it is a decision
                // made on the exchange's state, not a blind resend.
                let before = unsure.len();
                if settle_rounds >= 2 {
                    let open_ids: BTreeSet<&String> = open.iter().map(|(u, _)| u).collect();
                    unsure.retain(|u| !open_ids.contains(u));
                }
                if unsure.len() == before {
                    tokio::time::sleep(self.pipe.backoff(settle_rounds.min(3) as u32)).await;
                }
                continue;
            }
            settle_rounds = 0;
            for (u, _) in &fresh {
                *tries.entry(u.clone()).or_default() += 1;
            }
            let waiting: Vec<String> = fresh
                .iter()
                .filter(|(_, s)| s == "wait")
                .map(|(u, _)| u.clone())
                .collect();
            let others: Vec<String> = fresh
                .iter()
                .filter(|(_, s)| s != "wait")
                .map(|(u, _)| u.clone())
                .collect();
            // Two workers share the `wait` orders (listed newest first): batch calls take the
            // newest 300 per 1-per-2-s slot from the front, uuid calls take 20 at a time from
            // the back at the `order` group's pace. They use different rate-limit groups, so
            // together they empty a big book about twice as fast as either alone.
            let queue = Mutex::new(std::collections::VecDeque::from(waiting));
            let take_front = |n: usize| -> Vec<String> {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = n.min(q.len());
                q.drain(..n).collect()
            };
            let take_back = |n: usize| -> Vec<String> {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = n.min(q.len());
                let at = q.len() - n;
                q.drain(at..).collect()
            };
            let left = || queue.lock().unwrap_or_else(|e| e.into_inner()).len();
            let uuid_call = Call::delete("/v1/orders/uuids", Vec::new());
            let uuid_group = self.pipe.group(&uuid_call);
            let uuid_rate =
                (limits::budget_of(&uuid_group).limit as usize * UUID_CANCEL_MAX) as f64;
            let batches = async {
                let mut out = Vec::new();
                loop {
                    let n = left();
                    if n <= UUID_CANCEL_MAX {
                        break;
                    }
                    let wait = self.pipe.limiter().ready_in("order-cancel-all");
                    if !wait.is_zero() {
                        // Only worth waiting for the slot if uuid calls cannot finish first.
                        if n as f64 <= uuid_rate * wait.as_secs_f64() {
                            break;
                        }
                        tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
                        continue;
                    }
                    let taken = take_front(BATCH_CANCEL_MAX);
                    let call = Call::delete(
                        "/v1/orders/open",
                        vec![
                            p("cancel_side", "all"),
                            p("count", BATCH_CANCEL_MAX),
                            p("order_by", "desc"),
                        ],
                    );
                    let res = self.write(call).await;
                    let stop = matches!(&res, Err(e) if !outcome_unknown(e));
                    out.push((taken, res));
                    if stop {
                        break;
                    }
                }
                out
            };
            // Several uuid calls in flight at once: the limiter still sends no more than the
            // group's budget, but a window's budget goes out as soon as it opens instead of
            // one round trip after another.
            let uuid_worker = || async {
                let mut acc = (Vec::new(), BTreeMap::new(), BTreeSet::new());
                loop {
                    let chunk = take_back(UUID_CANCEL_MAX);
                    if chunk.is_empty() {
                        break;
                    }
                    self.cancel_uuids(&chunk, &mut acc.0, &mut acc.1, &mut acc.2)
                        .await?;
                }
                Ok::<_, Error>(acc)
            };
            let by_uuid = async {
                let mut acc = (Vec::new(), BTreeMap::new(), BTreeSet::new());
                // The first call alone: its `Remaining-Req` says which group uuid cancels
                // count against here before several go out at once.
                let chunk = take_back(UUID_CANCEL_MAX);
                if !chunk.is_empty() {
                    self.cancel_uuids(&chunk, &mut acc.0, &mut acc.1, &mut acc.2)
                        .await?;
                }
                // Several at once only where they count against the group the limiter
                // expected (Upbit's documented `default`): a send counted in one group and
                // answered as another's leaves the server's count ahead of ours, and only
                // one answer after another lets the limiter adopt it.
                let learned = self.pipe.group(&uuid_call);
                let in_flight = if learned == limits::group_for("DELETE", "/v1/orders/uuids") {
                    UUID_CANCEL_IN_FLIGHT
                } else {
                    1
                };
                let workers = (0..in_flight).map(|_| uuid_worker());
                for done in futures::future::join_all(workers).await {
                    let (ok, refused, unsure) = done?;
                    acc.0.extend(ok);
                    acc.1.extend(refused);
                    acc.2.extend(unsure);
                }
                Ok::<_, Error>(acc)
            };
            let (batch_results, uuid_res) = futures::join!(batches, by_uuid);
            for (taken, res) in batch_results {
                match res {
                    Ok(a) => match wire::parse_batch_cancel(&a.body) {
                        Ok(b) => {
                            accepted.extend(b.accepted);
                            failed.extend(b.failed);
                        }
                        Err(_) => unsure.extend(taken),
                    },
                    Err(e) if outcome_unknown(&e) => unsure.extend(taken),
                    Err(e) => return Err(e),
                }
            }
            let (acc_ok, acc_failed, acc_unsure) = uuid_res?;
            accepted.extend(acc_ok);
            failed.extend(acc_failed);
            unsure.extend(acc_unsure);
            for u in others {
                match self
                    .write(Call::delete("/v1/order", vec![p("uuid", &u)]))
                    .await
                {
                    Ok(_) => accepted.push(u),
                    Err(e) if outcome_unknown(&e) => {
                        unsure.insert(u);
                    }
                    Err(e @ Error::Api { .. }) if !e.is_key_dead() && !e.is_out_of_scope() => {
                        failed.insert(u, e.to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        // Read back every order we touched: the report says what really happened.
        let mut touched: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for u in accepted.iter().chain(unsure.iter()).chain(failed.keys()) {
            if seen.insert(u.clone()) {
                touched.push(u.clone());
            }
        }
        let finals = self.orders_by_uuid(&touched).await?;
        let mut report = CancelReport {
            open_at_start,
            ..CancelReport::default()
        };
        let mut found = BTreeSet::new();
        for o in finals {
            found.insert(o.id.clone());
            match o.state {
                OrderState::Cancelled => report.cancelled.push(o),
                OrderState::Done => report.failed.push(CancelFailure {
                    order_id: o.id.clone(),
                    reason: "filled before the cancel took effect".into(),
                }),
                _ => report.failed.push(CancelFailure {
                    reason: failed
                        .get(&o.id)
                        .cloned()
                        .unwrap_or_else(|| "still open".into()),
                    order_id: o.id.clone(),
                }),
            }
        }
        for u in touched.iter().filter(|u| !found.contains(*u)) {
            report.failed.push(CancelFailure {
                order_id: u.clone(),
                reason: failed
                    .get(u)
                    .cloned()
                    .unwrap_or_else(|| "not returned when read back".into()),
            });
        }
        if !done && report.failed.is_empty() {
            report.failed.push(CancelFailure {
                order_id: String::new(),
                reason: format!("orders still open after {MAX_CANCEL_ROUNDS} rounds"),
            });
        }
        Ok(report)
    }
}

/// Keeps the first record of each order id.
fn dedupe_orders(orders: &mut Vec<Order>) {
    let mut seen = BTreeSet::new();
    orders.retain(|o| seen.insert(o.id.clone()));
}

#[async_trait]
impl Exchange for UpbitClient {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn pipeline(&self) -> Option<&crate::exchange::http::Pipeline> {
        Some(&self.pipe)
    }

    /// From the HTTP `Date` header of `GET /v1/api_keys` (any status: a dead key's error
    /// answer still carries the server's clock). `Date` has whole seconds, so the offset is
    /// accurate to about ±1 s; local time is the midpoint of the exchange.
    async fn server_time(&self) -> Result<ServerTime> {
        self.pipe
            .server_time(Call::get("/v1/api_keys", vec![]))
            .await
    }

    async fn balances(&self) -> Result<Vec<Balance>> {
        self.read(Call::get("/v1/accounts", vec![]), |a| {
            wire::parse_balances(&a.body)
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let current = self.key_id_masked();
        self.read(Call::get("/v1/api_keys", vec![]), |a| {
            wire::parse_api_keys(&a.body, &current)
        })
        .await
    }

    /// Harmless reads only. Decision (documented): Upbit exposes neither a key's write
    /// scopes nor its IP allowlist by API, and a leaked key must be assumed able to do what
    /// cannot be ruled out, so an Upbit key is reported critical unless a read proves the
    /// IP restriction *and* the withdrawal scope is known absent, which Upbit cannot show.
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        let keys = self.api_keys().await?;
        let expire_at = keys.iter().find(|k| k.is_current).and_then(|k| k.expire_at);
        let mut ip_refused = false;
        let mut scopes = Vec::new();
        let probes = [
            ("view_account", Call::get("/v1/accounts", vec![])),
            (
                "view_orders",
                Call::get(
                    "/v1/orders/open",
                    vec![p("states[]", "wait"), p("states[]", "watch"), p("limit", 1)],
                ),
            ),
            (
                "view_withdrawals",
                Call::get("/v1/withdraws", vec![p("limit", 1)]),
            ),
            (
                "view_deposits",
                Call::get("/v1/deposits", vec![p("limit", 1)]),
            ),
        ];
        for (scope, call) in probes {
            scopes.push(self.probe(scope, call, &mut ip_refused).await?);
        }
        // The address allowlist is read with the view-withdrawals scope too: a second witness.
        let addr = self
            .probe(
                "view_withdrawals",
                Call::get("/v1/withdraws/coin_addresses", vec![]),
                &mut ip_refused,
            )
            .await?;
        if let Some(vw) = scopes.iter_mut().find(|s| s.scope == "view_withdrawals") {
            if vw.held.is_none() {
                vw.held = addr.held;
            }
            vw.evidence = format!("{}; {}", vw.evidence, addr.evidence);
        }
        for scope in ["make_orders", "make_withdrawals"] {
            scopes.push(ScopeProbe {
                scope: scope.into(),
                class: super::DESCRIPTOR.scope_class(scope),
                held: None,
                evidence: "unknown: Upbit cannot show this scope without a write, and respond never places an order or a withdrawal to find out".into(),
            });
        }
        let ip_restricted = ip_refused.then_some(true);
        let mut reasons = vec![
            "Upbit does not expose whether the key holds the make-withdrawals scope: assume it does until the key is deleted".to_string(),
        ];
        match ip_restricted {
            Some(true) => {
                reasons.push("the key has an IP allowlist (this machine is not on it)".into())
            }
            _ => reasons.push(
                "Upbit does not expose the key's IP allowlist: assume the key works from anywhere"
                    .into(),
            ),
        }
        Ok(PermissionProbe {
            scopes,
            ip_restricted,
            expire_at,
            critical: true,
            reasons,
        })
    }

    async fn open_orders(&self) -> Result<Vec<Order>> {
        self.list_open().await
    }

    async fn closed_orders(&self, q: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        let span = q.window.to - q.window.from;
        if span <= chrono::Duration::zero() {
            return Err(Error::Config(format!(
                "closed-orders window is empty or reversed ({} → {})",
                crate::time::ts(q.window.from),
                crate::time::ts(q.window.to)
            )));
        }
        if span > CLOSED_WINDOW_MAX {
            return Err(Error::Config(format!(
                "closed-orders window of {} h exceeds Upbit's 7-day maximum; split it into windows of at most 7 days",
                span.num_hours()
            )));
        }
        if q.limit == 0 || q.limit > CLOSED_MAX_PER_CALL {
            return Err(Error::Config(format!(
                "closed-orders limit {} must be between 1 and {CLOSED_MAX_PER_CALL}",
                q.limit
            )));
        }
        let mut params = Vec::new();
        if let Some(m) = &q.market {
            params.push(p("market", &m.symbol));
        }
        params.extend([
            p("states[]", "done"),
            p("states[]", "cancel"),
            // Millisecond epochs: ISO strings with +09:00 are a known source of hash mismatch.
            p("start_time", q.window.from.timestamp_millis()),
            // Half-open window: the last millisecond inside it.
            p("end_time", q.window.to.timestamp_millis() - 1),
            p("limit", q.limit),
            p("order_by", "desc"),
        ]);
        self.read(Call::get("/v1/orders/closed", params), |a| {
            wire::parse_orders(&a.body, a.prov.clone())
        })
        .await
    }

    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        self.get_order(&order.id).await
    }

    /// `order_by=desc`: a full answer holds the window's newest orders.
    fn closed_orders_full_page(&self) -> crate::exchange::FullPage {
        crate::exchange::FullPage::Newest
    }

    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        self.read(Call::public("/v1/market/all", vec![]), |a| {
            wire::parse_markets(&a.body)
        })
        .await
    }

    async fn withdrawals(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers("/v1/withdraws", TransferKind::Withdrawal, since)
            .await
    }

    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.transfers("/v1/deposits", TransferKind::Deposit, since)
            .await
    }

    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        self.read(Call::get("/v1/withdraws/coin_addresses", vec![]), |a| {
            wire::parse_withdrawal_addresses(&a.body)
        })
        .await
    }

    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        self.cancel_all(None).await
    }

    /// The first listing of [`Exchange::cancel_all_open_orders`] is kept as the evidence of
    /// the book: no second listing before it.
    async fn cancel_all_open_orders_listed(
        &self,
        first: &crate::exchange::FirstListing,
    ) -> Result<CancelReport> {
        self.cancel_all(Some(first)).await
    }

    async fn cancel_order(&self, order: &OrderRef) -> Result<Order> {
        let order_id = order.id.as_str();
        let call = Call::delete("/v1/order", vec![p("uuid", order_id)]);
        let what = call.what();
        let err = match self.write(call.clone()).await {
            Ok(a) => match wire::parse_order(&a.body, a.prov.clone()) {
                Ok((o, _)) => return Ok(o),
                Err(e) => Self::decode_error(&call, &a, e),
            },
            Err(e) if outcome_unknown(&e) => e,
            Err(e) => return Err(e),
        };
        // Unknown outcome: the order's state decides, never a second DELETE.
        match self.settle_order(order_id).await {
            Ok(o) if o.state != OrderState::Open => Ok(o),
            Ok(_) => Err(Error::OutcomeUnknown {
                what: format!("{what} uuid={order_id}"),
                detail: format!(
                    "{err}; the order is still open, so the cancel did not take effect yet"
                ),
            }),
            Err(e2) => Err(Error::OutcomeUnknown {
                what: format!("{what} uuid={order_id}"),
                detail: format!("{err}; reading the order back also failed: {e2}"),
            }),
        }
    }

    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer> {
        let call = Call::delete("/v1/withdraws/coin", vec![p("uuid", id)]);
        let what = call.what();
        let err = match self.write(call.clone()).await {
            Ok(a) => {
                match wire::parse_transfer(&a.body, TransferKind::Withdrawal, a.prov.clone()) {
                    Ok(t) => return Ok(t),
                    Err(e) => Self::decode_error(&call, &a, e),
                }
            }
            Err(e) if outcome_unknown(&e) => e,
            Err(e) => return Err(e),
        };
        let state = self
            .read(Call::get("/v1/withdraw", vec![p("uuid", id)]), |a| {
                wire::parse_transfer(&a.body, TransferKind::Withdrawal, a.prov.clone())
            })
            .await;
        match state {
            Ok(t) if t.state.starts_with("CANCEL") => Ok(t),
            Ok(t) => Err(Error::OutcomeUnknown {
                what: format!("{what} uuid={id}"),
                detail: format!("{err}; the withdrawal is in state {}", t.state),
            }),
            Err(e2) => Err(Error::OutcomeUnknown {
                what: format!("{what} uuid={id}"),
                detail: format!("{err}; reading the withdrawal back also failed: {e2}"),
            }),
        }
    }

    async fn revoke_key(&self) -> Result<()> {
        Err(Error::Unsupported {
            exchange: super::DESCRIPTOR.name.into(),
            what: "deleting an API key by API (Upbit only allows it in the web UI: My Page → Open API management)".into(),
        })
    }

    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        if ![1, 3, 5, 10, 15, 30, 60, 240].contains(&unit_minutes) {
            return Err(Error::Config(format!(
                "candle unit {unit_minutes} min is not one of Upbit's 1, 3, 5, 10, 15, 30, 60, 240"
            )));
        }
        if count == 0 || count > 200 {
            return Err(Error::Config(format!(
                "candle count {count} must be between 1 and 200"
            )));
        }
        let params = vec![
            p("market", &market.symbol),
            p("to", to.format("%Y-%m-%dT%H:%M:%SZ")),
            p("count", count),
        ];
        self.read(
            Call::public(format!("/v1/candles/minutes/{unit_minutes}"), params),
            |a| wire::parse_candles(&a.body),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_describe_upbit() {
        let c = UpbitClient::new(UpbitConfig::new(
            "abcdefghijklmnop",
            Secret::new("unit-test-secret-caps-0001"),
        ))
        .unwrap();
        let caps = c.capabilities();
        assert!(!caps.revoke_key_by_api && caps.batch_cancel);
        assert_eq!(caps.fills, FillsSource::PerOrder);
        assert_eq!(caps.closed_orders_max_window_secs, Some(7 * 86400));
        assert_eq!(caps.local_zone.utc_offset_secs, 9 * 3600);
        assert!(caps.manual_revoke_instructions_en.contains("abcd...mnop"));
        assert!(caps.manual_revoke_instructions_en.contains("{expire_at}"));
        assert!(caps.manual_revoke_instructions_local.contains("마이페이지"));
    }
}
