//! The live Upbit adapter: [`UpbitClient`] implements [`Exchange`] over reqwest (rustls).
//!
//! Every request goes through one pipeline, in this order: the per-group rate limiter, a fresh
//! JWT, the HTTP exchange, **the raw recording** (`RunDir::record_raw`, before anything parses
//! the body), the `Remaining-Req` bookkeeping, then classification by the envelope's error
//! name and parsing through [`super::wire`] (shared with the offline rebuild).
//!
//! Reads retry on 5xx, timeouts, dropped connections, truncated bodies and 429 (with backoff).
//! Writes are never resent blindly: a 429 is retried (the exchange refused it before acting),
//! but when the outcome is unknown (no answer, 5xx, unreadable answer) the client asks the
//! exchange for the state first and reports [`Error::OutcomeUnknown`] only when the state
//! cannot settle it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::Method;

use super::auth::{self, JwtAlg};
use super::ratelimit::{self, BudgetUse, RateLimiter, Refusal};
use super::wire::{self, WireError};
use crate::exchange::{
    ApiKeyInfo, Balance, CancelFailure, CancelReport, Candle, Capabilities, ClosedOrdersQuery,
    Error, Exchange, Fill, Order, OrderState, PermissionProbe, Provenance, Result, ScopeProbe,
    ServerTime, Transfer, TransferKind, WithdrawalAddress,
};
use crate::rundir::{RawExchange, RunDir};
use crate::secret::{mask_key, Secret};

/// Upbit's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.upbit.com";
/// Upbit's local time is KST, +09:00.
pub const KST_OFFSET_SECS: i32 = 9 * 3600;
/// Longest closed-orders window one query may span.
pub const CLOSED_WINDOW_MAX: chrono::Duration = chrono::Duration::days(7);
/// Most closed orders per query.
pub const CLOSED_MAX_PER_CALL: u32 = 1000;
/// Page size of open orders, withdrawals and deposits.
pub const PAGE_LIMIT: usize = 100;
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
/// How long a 418 block is assumed to last when the server does not say.
const DEFAULT_BLOCK: Duration = Duration::from_secs(60);

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

/// Checks an `--api-url`: https to any host, plain http only to a loopback host
/// (127.0.0.0/8, ::1, localhost). Anything else is refused before a key is ever sent.
pub fn validate_base_url(raw: &str) -> Result<url::Url> {
    let url = url::Url::parse(raw)
        .map_err(|e| Error::Config(format!("--api-url {raw:?} is not a valid URL: {e}")))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(Error::Config(format!(
            "--api-url {raw:?} has no host; give e.g. https://api.upbit.com or http://127.0.0.1:8080"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "--api-url must not contain a user name or password".into(),
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                None => false,
            };
            if loopback {
                Ok(url)
            } else {
                Err(Error::Config(format!(
                    "refusing plain http to {}: the signed requests would cross the network unencrypted. \
                     Use https, or plain http only to a loopback address (127.0.0.1, ::1, localhost), e.g. the mock exchange",
                    url.host_str().unwrap_or("?")
                )))
            }
        }
        other => Err(Error::Config(format!(
            "--api-url scheme {other:?} is not supported; use https (or http to a loopback address)"
        ))),
    }
}

/// The manual revocation instructions (English, Korean) for a key, with `{expire_at}` left
/// for [`Capabilities::revoke_instructions`] to fill: the expiry is only known after
/// `api_keys`.
pub fn revoke_instructions(key_masked: &str) -> (String, String) {
    let en = format!(
        "Upbit has no API to delete a key. Delete it by hand now: sign in at upbit.com → My Page → \
         Open API management → find the key {key_masked} (expires {{expire_at}}) → Delete, and confirm \
         with your two-factor authentication. respond keeps containing meanwhile and verifies the \
         deletion by polling with the old key."
    );
    let ko = format!(
        "업비트에는 API 키를 삭제하는 API가 없습니다. 지금 직접 삭제하세요: upbit.com 로그인 → 마이페이지 → \
         Open API 관리 → {key_masked} 키 (만료 {{expire_at}}) → 삭제, 2단계 인증으로 확인. respond는 그동안 \
         주문 취소 등 확산 방지를 계속하고, 이전 키로 조회하여 삭제를 확인합니다."
    );
    (en, ko)
}

fn upbit_capabilities(key_masked: &str) -> Capabilities {
    let (en, ko) = revoke_instructions(key_masked);
    Capabilities {
        name: "upbit".into(),
        revoke_key_by_api: false,
        read_key_permissions: false,
        batch_cancel: true,
        cancel_withdrawals: true,
        fills_per_order: true,
        closed_orders_max_window_secs: Some(CLOSED_WINDOW_MAX.num_seconds() as u64),
        closed_orders_max_per_call: CLOSED_MAX_PER_CALL,
        client_id_field: "identifier".into(),
        local_utc_offset_secs: KST_OFFSET_SECS,
        manual_revoke_instructions_en: en,
        manual_revoke_instructions_local: ko,
        local_language: "ko".into(),
    }
}

/// One request: decoded parameters in the order sent (the JWT hashes exactly these).
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    params: Vec<(String, String)>,
    auth: bool,
}

impl Call {
    fn get(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            params,
            auth: true,
        }
    }
    fn delete(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Call {
            method: Method::DELETE,
            ..Call::get(path, params)
        }
    }
    fn public(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Call {
            auth: false,
            ..Call::get(path, params)
        }
    }
    fn what(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// An HTTP answer, already recorded.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
    prov: Option<Provenance>,
    date: Option<DateTime<Utc>>,
    retry_after: Option<Duration>,
    /// Local clock at send and at answer, for the server-time offset.
    sent_local: DateTime<Utc>,
    answered_local: DateTime<Utc>,
}

/// The Upbit adapter.
pub struct UpbitClient {
    http: reqwest::Client,
    base: String,
    access_key: String,
    secret: Secret,
    key_masked: String,
    recorder: Option<RunDir>,
    limiter: Arc<RateLimiter>,
    caps: Capabilities,
    max_read_retries: u32,
    retry_base: Duration,
    alg: JwtAlg,
    /// Endpoint → the group the server said it counts against.
    learned_groups: Mutex<HashMap<(String, String), String>>,
    /// When Upbit first accepted this key (a signed request answered past its key checks).
    accepted_at: std::sync::OnceLock<DateTime<Utc>>,
}

impl std::fmt::Debug for UpbitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpbitClient")
            .field("base", &self.base)
            .field("key", &self.key_masked)
            .finish_non_exhaustive()
    }
}

impl UpbitClient {
    pub fn new(cfg: UpbitConfig) -> Result<Self> {
        let base = validate_base_url(cfg.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        if cfg.access_key.trim().is_empty() || cfg.secret_key.is_empty() {
            return Err(Error::Config(
                "the Upbit access key and secret key must both be set (UPBIT_ACCESS_KEY, UPBIT_SECRET_KEY)".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("respond/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let key_masked = mask_key(&cfg.access_key);
        Ok(UpbitClient {
            http,
            base: base.as_str().trim_end_matches('/').to_string(),
            caps: upbit_capabilities(&key_masked),
            key_masked,
            access_key: cfg.access_key,
            secret: cfg.secret_key,
            recorder: cfg.recorder,
            limiter: Arc::new(RateLimiter::new(
                cfg.retry_base_delay,
                Duration::from_secs(30),
            )),
            max_read_retries: cfg.max_read_retries,
            retry_base: cfg.retry_base_delay,
            alg: cfg.jwt_alg,
            learned_groups: Mutex::new(HashMap::new()),
            accepted_at: std::sync::OnceLock::new(),
        })
    }

    /// A client for another key of the same account (the read-only investigation key after
    /// the leaked one is deleted), sharing this one's connection pool, rate limiter (the
    /// budgets are the account's and the IP's, not the key's) and run directory.
    pub fn with_key(&self, access_key: impl Into<String>, secret_key: Secret) -> Result<Self> {
        let access_key = access_key.into();
        if access_key.trim().is_empty() || secret_key.is_empty() {
            return Err(Error::Config(
                "the other key's access key and secret key must both be set".into(),
            ));
        }
        let key_masked = mask_key(&access_key);
        Ok(UpbitClient {
            http: self.http.clone(),
            base: self.base.clone(),
            caps: upbit_capabilities(&key_masked),
            key_masked,
            access_key,
            secret: secret_key,
            recorder: self.recorder.clone(),
            limiter: self.limiter.clone(),
            max_read_retries: self.max_read_retries,
            retry_base: self.retry_base,
            alg: self.alg,
            learned_groups: Mutex::new(
                self.learned_groups
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            ),
            accepted_at: std::sync::OnceLock::new(),
        })
    }

    /// Current use of each rate-limit group: for progress bars.
    pub fn budget_snapshot(&self) -> Vec<BudgetUse> {
        self.limiter.snapshot()
    }

    /// The limiter, to adjust a group's budget (e.g. Upbit's `order` group at 12/s).
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    fn key_accepted(&self, at: DateTime<Utc>) {
        let _ = self.accepted_at.set(at);
    }

    fn group(&self, call: &Call) -> String {
        let key = (call.method.to_string(), call.path.clone());
        let learned = self
            .learned_groups
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        learned
            .get(&key)
            .cloned()
            .unwrap_or_else(|| ratelimit::group_for(call.method.as_str(), &call.path).into())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry_base;
        let exp = base.saturating_mul(1u32 << attempt.min(8));
        let jitter = rand::thread_rng().gen_range(0..=base.as_millis().max(1) as u64);
        exp.min(Duration::from_secs(30)) + Duration::from_millis(jitter)
    }

    /// One HTTP exchange: pace, sign, send, record, account. Any HTTP status is an `Ok`; only
    /// a missing answer (or a 418 block in force) is an `Err`.
    async fn send_once(&self, call: &Call) -> Result<Answer> {
        let group = self.group(call);
        let permit = match self.limiter.acquire(&group).await {
            Ok(t) => t,
            Err(Refusal::Blocked(left)) => {
                return Err(Error::RateLimited {
                    status: 418,
                    retry_after_ms: Some(left.as_millis() as u64),
                })
            }
        };
        let mut url = format!("{}{}", self.base, call.path);
        if !call.params.is_empty() {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &call.params {
                ser.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&ser.finish());
        }
        let mut req = self.http.request(call.method.clone(), &url);
        if call.auth {
            let nonce = uuid::Uuid::new_v4().to_string();
            let input = (!call.params.is_empty()).then(|| auth::hash_input(&call.params));
            let token = auth::sign(
                &self.access_key,
                &self.secret,
                &nonce,
                input.as_deref(),
                self.alg,
            );
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let sent_local = Utc::now();
        let mut refused = false;
        let clock = std::time::Instant::now();
        // A complete answer is (status, headers, body). An answer cut off mid-body keeps the
        // bytes that arrived but is recorded with status 0: "no complete answer", which the
        // offline rebuild skips like a connection that never answered.
        let result = match req.send().await {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let mut body = Vec::new();
                loop {
                    match resp.chunk().await {
                        Ok(Some(c)) => body.extend_from_slice(&c),
                        Ok(None) => break Ok((status, headers, body)),
                        Err(e) => {
                            break Err((headers, body, format!("HTTP {status}, {}", describe(&e))))
                        }
                    }
                }
            }
            Err(e) => {
                refused = is_connection_refused(&e);
                Err((reqwest::header::HeaderMap::new(), Vec::new(), describe(&e)))
            }
        };
        let answered_local = Utc::now();
        drop(permit);
        let (status, headers, body, transport_err) = match result {
            Ok((s, h, b)) => (s, h, b, None),
            Err((h, b, e)) => (0, h, b, Some(e)),
        };
        let kept = kept_headers(&headers);
        let prov = self
            .record(call, status, sent_local, answered_local, kept, &body)
            .await?;
        let remaining =
            header(&headers, "remaining-req").and_then(|v| wire::parse_remaining_req(&v));
        log_exchange(
            call,
            &self.key_masked,
            status,
            clock.elapsed(),
            remaining.as_ref(),
            transport_err.as_deref(),
        );
        if let Some(rr) = remaining {
            if rr.group != group {
                self.learned_groups
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        (call.method.to_string(), call.path.clone()),
                        rr.group.clone(),
                    );
            }
            self.limiter.observe(&rr.group, rr.sec);
        }
        if let Some(e) = transport_err {
            if refused {
                return Err(Error::Unreachable(format!("{}: {e}", call.what())));
            }
            return Err(Error::Transport(format!("{}: {e}", call.what())));
        }
        if call.auth && (200..300).contains(&status) {
            self.key_accepted(answered_local);
        }
        let retry_after = header(&headers, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match status {
            429 => {
                self.limiter.too_many(&group, retry_after);
            }
            418 => self.limiter.blocked(retry_after.unwrap_or(DEFAULT_BLOCK)),
            _ => self.limiter.succeeded(&group),
        }
        let date = header(&headers, "date")
            .and_then(|d| DateTime::parse_from_rfc2822(&d).ok())
            .map(|d| d.with_timezone(&Utc));
        Ok(Answer {
            status,
            body,
            prov,
            date,
            retry_after,
            sent_local,
            answered_local,
        })
    }

    /// Saves the exchange into the run directory before anything parses it. The write is
    /// fsynced, so it runs on the blocking pool: on a runtime thread it would stall every
    /// other request of the run for the length of the disk flush.
    async fn record(
        &self,
        call: &Call,
        status: u16,
        requested_at: DateTime<Utc>,
        responded_at: DateTime<Utc>,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Option<Provenance>> {
        let Some(rd) = self.recorder.clone() else {
            return Ok(None);
        };
        let key = if call.auth {
            self.key_masked.clone()
        } else {
            String::new()
        };
        let (method, path, params) = (
            call.method.as_str().to_string(),
            call.path.clone(),
            call.params.clone(),
        );
        let body = body.to_vec();
        let what = call.what();
        tokio::task::spawn_blocking(move || {
            rd.record_raw(RawExchange {
                method: &method,
                path: &path,
                params: &params,
                status,
                requested_at,
                responded_at,
                key_masked: &key,
                headers: &headers,
                body: &body,
            })
        })
        .await
        .map_err(|e| Error::Evidence(format!("{what}: {e}")))?
        .map(Some)
        .map_err(|e| Error::Evidence(format!("{what}: {e}")))
    }

    /// Turns a non-2xx answer into its typed error.
    fn classify(&self, call: &Call, a: &Answer) -> Result<()> {
        match a.status {
            200..=299 => Ok(()),
            429 | 418 => Err(Error::RateLimited {
                status: a.status,
                retry_after_ms: a.retry_after.map(|d| d.as_millis() as u64),
            }),
            status => {
                let (name, message) = wire::parse_error_envelope(&a.body).unwrap_or_else(|| {
                    (
                        format!("http_{status}"),
                        String::from_utf8_lossy(&a.body).chars().take(200).collect(),
                    )
                });
                let e = Error::Api {
                    exchange: "upbit".into(),
                    status,
                    name,
                    message: format!("{} ({})", message, call.what()),
                };
                if call.auth && e.proves_key_accepted() {
                    self.key_accepted(a.answered_local);
                }
                Err(e)
            }
        }
    }

    fn decode_error(call: &Call, a: &Answer, e: WireError) -> Error {
        let file = a
            .prov
            .as_ref()
            .map(|p| format!(" [{}]", p.raw_file))
            .unwrap_or_default();
        Error::Decode {
            endpoint: format!("{}{file}", call.what()),
            detail: e.detail,
        }
    }

    /// A read: retried with backoff on retryable failures, parse included (a truncated body
    /// is retried like a dropped connection).
    async fn read<T>(
        &self,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, WireError>,
    ) -> Result<T> {
        let mut attempt = 0u32;
        loop {
            // A body of the wrong shape will not improve by asking again; a truncated one may.
            let mut permanent = false;
            let res = match self.send_once(&call).await {
                Ok(a) => self.classify(&call, &a).and_then(|_| {
                    parse(&a).map_err(|e| {
                        permanent = !e.truncated;
                        Self::decode_error(&call, &a, e)
                    })
                }),
                Err(e) => Err(e),
            };
            match res {
                Ok(v) => return Ok(v),
                Err(e) if !permanent && e.is_retryable() && attempt < self.max_read_retries => {
                    // A 429 already parked the group in backoff inside the limiter.
                    if !matches!(e, Error::RateLimited { .. }) {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A write: resent only after a 429 (refused before the exchange acted). Other failures
    /// come back as they are; callers settle unknown outcomes by reading state.
    async fn write(&self, call: Call) -> Result<Answer> {
        let mut attempt = 0u32;
        loop {
            let a = self.send_once(&call).await?;
            match self.classify(&call, &a) {
                Ok(()) => return Ok(a),
                Err(Error::RateLimited { status: 429, .. }) if attempt < self.max_read_retries => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
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

    /// Every open order (`wait` and `watch`), following pages of 100, parsed by `parse`.
    async fn open_pages<T>(
        &self,
        parse: impl Fn(&Answer) -> std::result::Result<Vec<T>, WireError>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let params = vec![
                p("states[]", "wait"),
                p("states[]", "watch"),
                p("page", page),
                p("limit", PAGE_LIMIT),
                p("order_by", "desc"),
            ];
            let mut rows = self
                .read(Call::get("/v1/orders/open", params), &parse)
                .await?;
            let n = rows.len();
            out.append(&mut rows);
            if n < PAGE_LIMIT {
                break;
            }
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

    /// One probe read: `Some(true)` on success, `Some(false)` on `out_of_scope`.
    async fn probe(&self, scope: &str, call: Call, ip_refused: &mut bool) -> Result<ScopeProbe> {
        let what = format!("{}{}", call.what(), query_suffix(&call.params));
        let res = self.read(call, |_| Ok(())).await;
        let (held, evidence) = match res {
            Ok(()) => (Some(true), format!("{what} answered 200")),
            Err(e) if e.is_key_dead() => return Err(e),
            Err(Error::Api { name, status, .. }) if name == "out_of_scope" => (
                Some(false),
                format!("{what} answered {status} out_of_scope"),
            ),
            Err(Error::Api { name, status, .. }) if name == "no_authorization_i_p" => {
                *ip_refused = true;
                (
                    None,
                    format!("{what} answered {status} no_authorization_i_p: this machine is not on the key's IP allowlist, so the scope could not be read from here"),
                )
            }
            Err(e) => (None, format!("{what} failed: {e}")),
        };
        Ok(ScopeProbe {
            scope: scope.into(),
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
            tokio::time::sleep(self.backoff(attempt)).await;
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
}

/// A write failure after which the exchange may or may not have acted.
fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Transport(_) | Error::Decode { .. } => true,
        Error::Api { status, .. } => *status >= 500,
        _ => false,
    }
}

fn query_suffix(params: &[(String, String)]) -> String {
    if params.is_empty() {
        String::new()
    } else {
        format!("?{}", auth::hash_input(params))
    }
}

/// Nothing listened at the address: the connection was refused outright.
fn is_connection_refused(e: &reqwest::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        src = s.source();
    }
    false
}

/// One line per HTTP exchange for `-v` (info) and its parameter names for `-vv` (debug): the
/// method and path, never the token (a header) nor parameter values.
fn log_exchange(
    call: &Call,
    key_masked: &str,
    status: u16,
    took: Duration,
    remaining: Option<&wire::RemainingReq>,
    transport_err: Option<&str>,
) {
    let key = if call.auth { key_masked } else { "public" };
    let ms = took.as_millis();
    let budget = match remaining {
        Some(r) => match r.sec {
            Some(n) => format!("budget: {n} left this second in group {}", r.group),
            None => format!("budget: group {}", r.group),
        },
        None => "budget: no Remaining-Req".to_string(),
    };
    // Only the kind of failure: the full error names the URL with its query.
    match transport_err.map(|e| e.split(": ").next().unwrap_or(e)) {
        Some(e) => tracing::info!(
            "{} {} [{key}] -> no complete answer after {ms} ms ({e}); {budget}",
            call.method,
            call.path
        ),
        None => tracing::info!(
            "{} {} [{key}] -> {status} in {ms} ms; {budget}",
            call.method,
            call.path
        ),
    }
    if !call.params.is_empty() {
        let names: BTreeSet<&str> = call.params.iter().map(|(k, _)| k.as_str()).collect();
        tracing::debug!(
            "{} {}: parameters {}",
            call.method,
            call.path,
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the answer"
    } else {
        "request failed"
    };
    // reqwest's Display includes the URL (query only: never the Authorization header).
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    crate::secret::redact(&msg).into_owned()
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string())
}

/// The response headers worth keeping as evidence: rate limit, date, content type.
fn kept_headers(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    ["remaining-req", "date", "content-type"]
        .iter()
        .filter_map(|n| header(h, n).map(|v| (n.to_string(), v)))
        .collect()
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

    fn key_id_masked(&self) -> String {
        self.key_masked.clone()
    }

    /// The groups with requests in the current window, e.g. `default 12/30`, for the export's
    /// progress bar.
    fn budget_status(&self) -> Option<String> {
        let busy: Vec<String> = self
            .budget_snapshot()
            .into_iter()
            .filter(|b| b.used > 0)
            .map(|b| format!("{} {}/{}", b.group, b.used, b.limit))
            .collect();
        (!busy.is_empty()).then(|| busy.join(", "))
    }

    fn key_accepted_at(&self) -> Option<DateTime<Utc>> {
        self.accepted_at.get().copied()
    }

    /// From the HTTP `Date` header of `GET /v1/api_keys` (any status: a dead key's error
    /// answer still carries the server's clock). `Date` has whole seconds, so the offset is
    /// accurate to about ±1 s; local time is the midpoint of the exchange.
    async fn server_time(&self) -> Result<ServerTime> {
        let call = Call::get("/v1/api_keys", vec![]);
        let mut attempt = 0;
        let a = loop {
            match self.send_once(&call).await {
                Ok(a) if a.date.is_some() => break a,
                Ok(a) if a.status == 429 && attempt < self.max_read_retries => attempt += 1,
                Ok(a) => {
                    return Err(Error::Decode {
                        endpoint: call.what(),
                        detail: format!("HTTP {} answer without a Date header", a.status),
                    })
                }
                Err(e) if e.is_retryable() && attempt < self.max_read_retries => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let server = a.date.unwrap_or(a.answered_local);
        let local = a.sent_local + (a.answered_local - a.sent_local) / 2;
        Ok(ServerTime {
            server,
            local,
            offset_ms: (server - local).num_milliseconds(),
        })
    }

    async fn balances(&self) -> Result<Vec<Balance>> {
        self.read(Call::get("/v1/accounts", vec![]), |a| {
            wire::parse_balances(&a.body)
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        let current = self.key_masked.clone();
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
                crate::engine::journal::ts(q.window.from),
                crate::engine::journal::ts(q.window.to)
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
            params.push(p("market", m));
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

    async fn order_with_fills(&self, order_id: &str) -> Result<(Order, Vec<Fill>)> {
        self.get_order(order_id).await
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

    /// Rounds of: list open orders → batch-cancel `wait` orders (when more than one uuid
    /// call's worth) → uuid-cancel the remaining `wait` orders → cancel `watch` orders one by
    /// one → list again, until nothing is open. Then every order the exchange accepted a
    /// cancel for (or whose cancel had no answer) is read back, and the report lists those
    /// whose final state is `cancel`. Running it again with nothing open does nothing.
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        let mut accepted: Vec<String> = Vec::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut unsure: BTreeSet<String> = BTreeSet::new();
        let mut tries: HashMap<String, u32> = HashMap::new();
        let mut settle_rounds = 0;
        let mut done = false;
        for _round in 0..MAX_CANCEL_ROUNDS {
            let open = self.list_open_states().await?;
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
                    tokio::time::sleep(self.backoff(settle_rounds.min(3) as u32)).await;
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
            let uuid_group = self.group(&Call::delete("/v1/orders/uuids", Vec::new()));
            let uuid_rate =
                (ratelimit::budget_of(&uuid_group).limit as usize * UUID_CANCEL_MAX) as f64;
            let batches = async {
                let mut out = Vec::new();
                loop {
                    let n = left();
                    if n <= UUID_CANCEL_MAX {
                        break;
                    }
                    let wait = self.limiter.ready_in("order-cancel-all");
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
            let by_uuid = async {
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
                    Err(e @ Error::Api { .. })
                        if !e.is_key_dead() && e.name() != Some("out_of_scope") =>
                    {
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
        let mut report = CancelReport::default();
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

    async fn cancel_order(&self, order_id: &str) -> Result<Order> {
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
            exchange: "upbit".into(),
            what: "deleting an API key by API (Upbit only allows it in the web UI: My Page → Open API management)".into(),
        })
    }

    async fn candles(
        &self,
        market: &str,
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
            p("market", market),
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
    fn url_policy() {
        for ok in [
            "https://api.upbit.com",
            "https://example.org:8443/prefix",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://[::1]:9000",
            "http://localhost:3000",
            "http://LOCALHOST",
        ] {
            assert!(validate_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.upbit.com",
            "http://10.0.0.1",
            "http://192.168.1.2:8080",
            "http://[::2]",
            "http://localhost.evil.com",
            "ftp://127.0.0.1",
            "not a url",
            "https://user:pw@api.upbit.com",
        ] {
            match validate_base_url(bad) {
                Err(Error::Config(m)) => assert!(!m.is_empty()),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let m = validate_base_url("http://api.upbit.com")
            .unwrap_err()
            .to_string();
        assert!(m.contains("loopback") && m.contains("api.upbit.com"), "{m}");
    }

    #[test]
    fn capabilities_describe_upbit() {
        let c = UpbitClient::new(UpbitConfig::new(
            "abcdefghijklmnop",
            Secret::new("unit-test-secret-caps-0001"),
        ))
        .unwrap();
        let caps = c.capabilities();
        assert!(!caps.revoke_key_by_api && caps.batch_cancel && caps.fills_per_order);
        assert_eq!(caps.closed_orders_max_window_secs, Some(7 * 86400));
        assert!(caps.manual_revoke_instructions_en.contains("abcd…mnop"));
        assert!(caps.manual_revoke_instructions_en.contains("{expire_at}"));
        assert!(caps.manual_revoke_instructions_local.contains("마이페이지"));
    }
}
