//! The request pipeline every HTTP adapter shares.
//!
//! One request goes, in this order, through: the rate limiter ([`super::ratelimit`]: pace),
//! the adapter's [`Signer`] (sign), reqwest (send), **the raw recording**
//! ([`RunDir::record_raw`], before anything parses the body), the adapter's header observer
//! (the server's view of the budget feeds the limiter), and the adapter's
//! [`Protocol::classify`] (HTTP status and error bodies, including errors inside 200 answers,
//! become typed [`Error`]s with an [`super::ErrorKind`]).
//!
//! On top of one request: [`Pipeline::read`] retries reads on retryable failures (5xx,
//! timeouts, dropped connections, truncated bodies, 429 after the limiter's backoff);
//! [`Pipeline::write`] never resends a write, except after a 429 (refused before the exchange
//! acted). When a write's outcome is unknown ([`outcome_unknown`]: no answer, 5xx, an
//! unreadable answer) the caller settles it by reading the exchange's state.
//!
//! The pipeline also notes when the exchange first accepted the key (a signed request answered
//! past its key and signature checks, [`Pipeline::key_accepted_at`]), tells a connection that
//! nothing listens at ([`Error::Unreachable`]) from other transport failures, and logs one
//! line per request at `-v` (method, path, status, time, budget; never a token or a parameter
//! value).
//!
//! The URL policy ([`validate_base_url`]) lives here too: https anywhere, plain http only to
//! loopback, checked before a key is ever sent.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::Method;

use super::ratelimit::{Budget, RateLimiter, Refusal};
use super::replay::DecodeError;
use super::{Error, Provenance, Result};
use crate::rundir::{RawExchange, RunDir};

/// How long a 418 block is assumed to last when the server does not say.
const DEFAULT_BLOCK: Duration = Duration::from_secs(60);

/// A wait for the rate budget at least this long is told to the user before it starts.
const BUDGET_WAIT_NOTICE: Duration = Duration::from_secs(5);

/// What the user is told before `call` waits `ahead` for the budget of `group`: nothing under
/// [`BUDGET_WAIT_NOTICE`]. Names the method and path only (never parameters or a key).
fn budget_notice(call: &Call, group: &str, ahead: Duration) -> Option<String> {
    (ahead >= BUDGET_WAIT_NOTICE).then(|| {
        format!(
            "{} {} waits about {} s for the exchange's request budget ({group}): its own \
             limit, kept so the key is not blocked; nothing is lost meanwhile",
            call.method,
            call.path,
            ahead.as_secs_f64().ceil() as u64
        )
    })
}

/// Checks an `--api-url`: https to any host, plain http only to a loopback host
/// (127.0.0.0/8, ::1, localhost). Anything else is refused before a key is ever sent.
pub fn validate_base_url(raw: &str) -> Result<url::Url> {
    let shown = without_userinfo(raw);
    let url = url::Url::parse(raw)
        .map_err(|e| Error::Config(format!("--api-url {shown:?} is not a valid URL: {e}")))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(Error::Config(format!(
            "--api-url {shown:?} has no host; give e.g. https://api.example.com or http://127.0.0.1:8080"
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

/// `raw` as an error may show it: whatever stands between `://` and the last `@` before the
/// path (a user name and password, perhaps) is replaced by `***`.
fn without_userinfo(raw: &str) -> String {
    let Some(start) = raw.find("://").map(|i| i + 3) else {
        return match raw.rfind('@') {
            Some(at) => format!("***{}", &raw[at..]),
            None => raw.to_string(),
        };
    };
    let rest = &raw[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &rest[at..]),
        None => raw.to_string(),
    }
}

/// One request: decoded parameters in the order sent (signatures hash exactly these).
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub params: Vec<(String, String)>,
    /// Signed with the key (private endpoint), or public.
    pub auth: bool,
    /// A JSON body sent instead of the query (exchanges whose writes take JSON); `params`
    /// then lists its top-level fields, for the raw sidecar and messages.
    pub body: Option<String>,
}

impl Call {
    pub fn get(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            params,
            auth: true,
            body: None,
        }
    }
    /// A signed `POST` whose body is a JSON object of `fields`, in order, compact (no
    /// whitespace): the bytes sent are the bytes signed.
    pub fn post_json(path: impl Into<String>, fields: Vec<(String, serde_json::Value)>) -> Self {
        let mut body = String::from("{");
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&serde_json::Value::from(k.as_str()).to_string());
            body.push(':');
            body.push_str(&v.to_string());
        }
        body.push('}');
        let params = fields
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        Call {
            method: Method::POST,
            body: Some(body),
            ..Call::get(path, params)
        }
    }
    pub fn delete(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Call {
            method: Method::DELETE,
            ..Call::get(path, params)
        }
    }
    pub fn public(path: impl Into<String>, params: Vec<(String, String)>) -> Self {
        Call {
            auth: false,
            ..Call::get(path, params)
        }
    }
    /// `GET /path`, for messages.
    pub fn what(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
    /// `GET /path?k=v&…` with the decoded parameters, for evidence sentences.
    pub fn what_with_query(&self) -> String {
        if self.params.is_empty() {
            self.what()
        } else {
            let q: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{}?{}", self.what(), q.join("&"))
        }
    }
}

/// A `(key, value)` parameter.
pub fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The query string as sent: parameters in order, form-urlencoded.
pub fn encode_query(params: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// An HTTP answer, already recorded.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub prov: Option<Provenance>,
    /// The server's `Date` header.
    pub date: Option<DateTime<Utc>>,
    pub retry_after: Option<Duration>,
    /// Local clock at send and at answer, for the server-time offset.
    pub sent_local: DateTime<Utc>,
    pub answered_local: DateTime<Utc>,
}

impl Answer {
    /// The exchange's clock `server` (as this answer states it) against ours at the request's
    /// midpoint.
    pub fn server_time(&self, server: DateTime<Utc>) -> super::ServerTime {
        let local = self.sent_local + (self.answered_local - self.sent_local) / 2;
        super::ServerTime {
            server,
            local,
            offset_ms: (server - local).num_milliseconds(),
        }
    }
}

/// The exchange's clock as one connection knows it: the offset (server − local) that every key
/// of the connection stamps and signs its requests with. It is read from the exchange before
/// the first signed request ([`ServerClock::ensure`]) and again by an adapter whose request
/// was refused for its timestamp ([`ServerClock::set`]).
#[derive(Debug, Default)]
pub struct ServerClock {
    offset_ms: AtomicI64,
    synced: AtomicBool,
}

impl ServerClock {
    /// The offset in use (server − local), milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Now on the exchange's clock, milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        crate::time::now().timestamp_millis() + self.offset_ms()
    }

    /// Adopts a reading of the exchange's clock.
    pub fn set(&self, st: &super::ServerTime) {
        self.offset_ms.store(st.offset_ms, Ordering::Relaxed);
        self.synced.store(true, Ordering::Relaxed);
    }

    /// Reads the clock with `sync` (which [`ServerClock::set`]s it) unless that was done; when
    /// it fails, the local clock stays in use (logged; the adapter reads the clock again
    /// when the exchange refuses a timestamp).
    pub async fn ensure<F>(&self, exchange: &str, sync: impl FnOnce() -> F)
    where
        F: std::future::Future<Output = Result<super::ServerTime>>,
    {
        if !self.synced.load(Ordering::Relaxed) {
            if let Err(e) = sync().await {
                tracing::info!(
                    "could not read {exchange}'s clock: {e}; signing with the local clock"
                );
                self.synced.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// What a signer adds to one request.
#[derive(Debug, Default)]
pub struct Signed {
    pub headers: Vec<(String, String)>,
    /// Appended to the query after the call's own parameters (timestamp, signature).
    pub extra_params: Vec<(String, String)>,
}

/// Signs a private request with one key. Implementations hold the secret and never print it.
pub trait Signer: Send + Sync {
    fn sign(&self, call: &Call) -> Signed;
}

/// What the server said about its rate-limit budget in one answer's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetReport {
    /// The group the server counted the request against.
    pub group: String,
    /// Requests (or units) left in the current window, when it said.
    pub remaining: Option<u32>,
}

/// The exchange-specific half of the pipeline, given by the adapter.
pub trait Protocol: Send + Sync {
    /// The registry name, for errors.
    fn exchange(&self) -> &'static str;
    /// The budget of a rate-limit group (the adapter's limits table).
    fn budget(&self, group: &str) -> Budget;
    /// The group a call is expected to count against before the server says otherwise.
    fn group(&self, call: &Call) -> String;
    /// Units a call costs in its group (weight-based budgets); 1 by default.
    fn weight(&self, _call: &Call) -> u32 {
        1
    }
    /// Reads the server's budget report from an answer's headers.
    fn observe(&self, headers: &reqwest::header::HeaderMap) -> Option<BudgetReport>;
    /// The same, for exchanges whose headers report the budget of the endpoint called without
    /// naming it (a budget per endpoint): [`Protocol::observe`] by default.
    fn observe_call(
        &self,
        _call: &Call,
        headers: &reqwest::header::HeaderMap,
    ) -> Option<BudgetReport> {
        self.observe(headers)
    }
    /// Whether [`Protocol::observe`]'s `remaining` is the server's own count of the group at
    /// the answered request, reported on every answer: then the limiter lets it grant sends
    /// its own window would hold back ([`super::ratelimit::RateLimiter::observe_answer`]).
    /// False by default.
    fn exact_count(&self) -> bool {
        false
    }
    /// For a server that counts a group in fixed windows and says on every answer how long is
    /// left of the window that counted the call (a header of its own): that time, so
    /// the limiter grants the next window's budget once that window is surely over
    /// ([`super::ratelimit::RateLimiter::window_ends`]). None by default.
    fn window_left(&self, _call: &Call, _headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        None
    }
    /// Further budgets the same answer reports (an exchange that counts request weight and
    /// orders apart reports both at once); they feed the limiter like the first one, but never
    /// teach the pipeline which group a call counts against. None by default.
    fn observe_more(&self, _headers: &reqwest::header::HeaderMap) -> Vec<BudgetReport> {
        Vec::new()
    }
    /// The rate-limit headers kept as evidence in the raw sidecar (`date` and `content-type`
    /// are always kept).
    fn rate_limit_headers(&self) -> &'static [&'static str];
    /// Turns an answer that is not data into its typed error: an error status, or an error
    /// inside a 200 body. 429 and 418 are [`Error::RateLimited`] whatever the body says.
    fn classify(&self, call: &Call, status: u16, body: &[u8]) -> Result<()>;
    /// How long the server said to wait before asking again, from an answer's headers: the
    /// standard `Retry-After` (seconds) by default. The limiter parks the call's group at
    /// least this long after a 429.
    fn retry_after(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        retry_after_header(headers)
    }
}

/// The standard `Retry-After` header, in whole seconds.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    header(headers, "retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Retry settings of a pipeline.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Extra attempts for a read after a retryable failure.
    pub max_read_retries: u32,
    /// First backoff delay (doubles per attempt, plus jitter).
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_read_retries: 4,
            base_delay: Duration::from_millis(250),
        }
    }
}

/// What every key of one connection shares: the connection pool, the base URL, the rate
/// limiter (budgets are the account's and the IP's), the recorder and the adapter protocol.
pub struct Transport {
    http: reqwest::Client,
    base: String,
    recorder: Option<RunDir>,
    limiter: Arc<RateLimiter>,
    protocol: Arc<dyn Protocol>,
    retry: RetryPolicy,
    /// Endpoint → the group the server said it counts against.
    learned_groups: Mutex<HashMap<(String, String), String>>,
}

impl Transport {
    /// Validates `base_url` against the URL policy and builds the HTTP client (rustls, no
    /// redirects, `timeout` for connect and whole request).
    pub fn new(
        base_url: &str,
        timeout: Duration,
        recorder: Option<RunDir>,
        protocol: Arc<dyn Protocol>,
        retry: RetryPolicy,
    ) -> Result<Arc<Self>> {
        let base = validate_base_url(base_url)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("respond/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let p = protocol.clone();
        Ok(Arc::new(Transport {
            http,
            base: base.as_str().trim_end_matches('/').to_string(),
            recorder,
            limiter: Arc::new(RateLimiter::new(
                Box::new(move |g| p.budget(g)),
                retry.base_delay,
                Duration::from_secs(30),
            )),
            protocol,
            retry,
            learned_groups: Mutex::new(HashMap::new()),
        }))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The group `call` counts against: what the server said, else the adapter's table.
    pub fn group(&self, call: &Call) -> String {
        let key = (call.method.to_string(), call.path.clone());
        let learned = self
            .learned_groups
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        learned
            .get(&key)
            .cloned()
            .unwrap_or_else(|| self.protocol.group(call))
    }
}

/// One key on a [`Transport`]: the pipeline an adapter sends every request through.
pub struct Pipeline {
    transport: Arc<Transport>,
    signer: Arc<dyn Signer>,
    key_masked: String,
    /// A fingerprint of the credentials ([`credentials_fingerprint`]); empty when the adapter
    /// gives none.
    fingerprint: String,
    /// When the exchange first accepted this key.
    accepted_at: OnceLock<DateTime<Utc>>,
}

impl Pipeline {
    pub fn new(transport: Arc<Transport>, signer: Arc<dyn Signer>, key_masked: String) -> Self {
        Pipeline {
            transport,
            signer,
            key_masked,
            fingerprint: String::new(),
            accepted_at: OnceLock::new(),
        }
    }

    /// The same pipeline naming `fingerprint` ([`credentials_fingerprint`]) as the
    /// credentials of every signed request it records, so that a resume can tell the same key
    /// name signed with other credentials apart (see [`super::KeyHistory`]).
    pub fn with_fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = fingerprint;
        self
    }

    /// The fingerprint of the credentials this pipeline signs with; empty when not given.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// When the exchange first accepted this key (answered a signed request past its key and
    /// signature checks), as this pipeline saw it request by request.
    pub fn key_accepted_at(&self) -> Option<DateTime<Utc>> {
        self.accepted_at.get().copied()
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    pub fn key_masked(&self) -> &str {
        &self.key_masked
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.transport.limiter
    }

    /// Attempts a read gets after its first (the transport's retry policy).
    pub fn max_read_retries(&self) -> u32 {
        self.transport.retry.max_read_retries
    }

    pub fn group(&self, call: &Call) -> String {
        self.transport.group(call)
    }

    /// Exponential backoff with jitter for attempt `attempt` (0-based), at most 30 s.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.transport.retry.base_delay;
        let exp = base.saturating_mul(1u32 << attempt.min(8));
        let jitter = rand::thread_rng().gen_range(0..=base.as_millis().max(1) as u64);
        exp.min(Duration::from_secs(30)) + Duration::from_millis(jitter)
    }

    /// One HTTP exchange: pace, sign, send, record, account. Any HTTP status is an `Ok`; only
    /// a missing answer (or a 418 block in force) is an `Err`.
    pub async fn send_once(&self, call: &Call) -> Result<Answer> {
        let t = &self.transport;
        let group = t.group(call);
        let weight = t.protocol.weight(call);
        // A long wait for the exchange's own budget is said, not sat through in silence (a
        // withdrawal-history read can wait most of a minute for its account-wide weight).
        if let Some(notice) = budget_notice(call, &group, t.limiter.budget_wait(&group, weight)) {
            tracing::warn!("{notice}");
        }
        let mut permit = match t.limiter.acquire_n(&group, weight).await {
            Ok(p) => p,
            Err(Refusal::Blocked(left)) => {
                return Err(Error::RateLimited {
                    status: 418,
                    retry_after_ms: Some(left.as_millis() as u64),
                })
            }
        };
        let sent = tokio::time::Instant::now();
        let signed = if call.auth {
            self.signer.sign(call)
        } else {
            Signed::default()
        };
        let mut url = format!("{}{}", t.base, call.path);
        let mut query = if call.body.is_some() {
            Vec::new()
        } else {
            call.params.clone()
        };
        query.extend(signed.extra_params);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(&query));
        }
        let mut req = t.http.request(call.method.clone(), &url);
        for (k, v) in signed.headers {
            req = req.header(k, v);
        }
        if let Some(body) = &call.body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.clone());
        }
        let sent_local = crate::time::now();
        let clock = std::time::Instant::now();
        let mut refused = false;
        // A complete answer is (status, headers, body). An answer cut off mid-body keeps the
        // bytes that arrived but is recorded with status 0: "no complete answer", which the
        // offline rebuild skips like a connection that never answered.
        let result = match req.send().await {
            Ok(mut resp) => {
                // A status line came back: the server has counted this request.
                permit.answered();
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
        let answered_local = crate::time::now();
        drop(permit);
        let (status, headers, body, transport_err) = match result {
            Ok((s, h, b)) => (s, h, b, None),
            Err((h, b, e)) => (0, h, b, Some(e)),
        };
        let kept = self.kept_headers(&headers);
        let prov = self
            .record(call, status, sent_local, answered_local, kept, &body)
            .await?;
        let report = t.protocol.observe_call(call, &headers);
        log_exchange(
            call,
            &self.key_masked,
            status,
            clock.elapsed(),
            report.as_ref(),
            transport_err.as_deref(),
        );
        if let Some(rep) = report {
            if rep.group != group {
                t.learned_groups
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        (call.method.to_string(), call.path.clone()),
                        rep.group.clone(),
                    );
            }
            if rep.group == group && t.protocol.exact_count() && counted_answer(status) {
                t.limiter
                    .observe_answer(&rep.group, rep.remaining, sent, weight);
            } else {
                t.limiter.observe(&rep.group, rep.remaining);
            }
        }
        for rep in t.protocol.observe_more(&headers) {
            t.limiter.observe(&rep.group, rep.remaining);
        }
        if counted_answer(status) {
            if let Some(left) = t.protocol.window_left(call, &headers) {
                t.limiter.window_ends(&group, sent, left);
            }
        }
        if let Some(e) = transport_err {
            if refused {
                return Err(Error::Unreachable(format!("{}: {e}", call.what())));
            }
            return Err(Error::Transport(format!("{}: {e}", call.what())));
        }
        // An error inside a 200 body (an exchange's own error code) is no acceptance.
        if call.auth
            && (200..300).contains(&status)
            && t.protocol.classify(call, status, &body).is_ok()
        {
            let _ = self.accepted_at.set(answered_local);
        }
        let retry_after = t.protocol.retry_after(&headers);
        match status {
            429 => {
                t.limiter.too_many(&group, retry_after);
            }
            418 => t.limiter.blocked(retry_after.unwrap_or(DEFAULT_BLOCK)),
            _ => t.limiter.succeeded(&group),
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

    /// The response headers worth keeping as evidence: rate limit, date, content type.
    fn kept_headers(&self, h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
        self.transport
            .protocol
            .rate_limit_headers()
            .iter()
            .chain(["date", "content-type"].iter())
            .filter_map(|n| header(h, n).map(|v| (n.to_string(), v)))
            .collect()
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
        let Some(rd) = self.transport.recorder.clone() else {
            return Ok(None);
        };
        let (key, credentials) = if call.auth {
            (self.key_masked.clone(), self.fingerprint.clone())
        } else {
            (String::new(), String::new())
        };
        let (method, path, params) = (
            call.method.as_str().to_string(),
            call.path.clone(),
            call.params.clone(),
        );
        let body = body.to_vec();
        let what = call.what();
        tokio::task::spawn_blocking(move || {
            let exchange = RawExchange {
                method: &method,
                path: &path,
                params: &params,
                status,
                requested_at,
                responded_at,
                key_masked: &key,
                headers: &headers,
                body: &body,
            };
            rd.record_raw_with(exchange, &credentials)
        })
        .await
        .map_err(|e| Error::Evidence(format!("{what}: {e}")))?
        .map(Some)
        .map_err(|e| Error::Evidence(format!("{what}: {e}")))
    }

    /// Turns an answer that is not data into its typed error. An error only given after the
    /// key's checks passed counts as the key accepted.
    pub fn classify(&self, call: &Call, a: &Answer) -> Result<()> {
        let res = match a.status {
            429 | 418 => Err(Error::RateLimited {
                status: a.status,
                retry_after_ms: a.retry_after.map(|d| d.as_millis() as u64),
            }),
            status => self.transport.protocol.classify(call, status, &a.body),
        };
        if let Err(e) = &res {
            if call.auth && e.proves_key_accepted() {
                let _ = self.accepted_at.set(a.answered_local);
            }
        }
        res
    }

    /// A body the adapter could not parse, naming the call and its raw file.
    pub fn decode_error(call: &Call, a: &Answer, e: DecodeError) -> Error {
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
    pub async fn read<T>(
        &self,
        call: Call,
        parse: impl Fn(&Answer) -> std::result::Result<T, DecodeError>,
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
                Err(e) if !permanent && e.is_retryable() && attempt < self.max_read_retries() => {
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
    pub async fn write(&self, call: Call) -> Result<Answer> {
        let mut attempt = 0u32;
        loop {
            let a = self.send_once(&call).await?;
            match self.classify(&call, &a) {
                Ok(()) => return Ok(a),
                Err(Error::RateLimited { status: 429, .. })
                    if attempt < self.max_read_retries() =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The server's clock from the `Date` header of `call`'s answer (any status: an error
    /// answer still carries the server's clock). `Date` has whole seconds, so the offset is
    /// accurate to about ±1 s; local time is the midpoint of the exchange.
    pub async fn server_time(&self, call: Call) -> Result<super::ServerTime> {
        let mut attempt = 0;
        let a = loop {
            match self.send_once(&call).await {
                Ok(a) if a.date.is_some() => break a,
                Ok(a) if a.status == 429 && attempt < self.max_read_retries() => attempt += 1,
                Ok(a) => {
                    return Err(Error::Decode {
                        endpoint: call.what(),
                        detail: format!("HTTP {} answer without a Date header", a.status),
                    })
                }
                Err(e) if e.is_retryable() && attempt < self.max_read_retries() => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let server = a.date.unwrap_or(a.answered_local);
        Ok(a.server_time(server))
    }

    /// The groups with requests in the current window, e.g. `default 12/30`, for progress
    /// bars; `None` when all are idle.
    pub fn budget_status(&self) -> Option<String> {
        let busy: Vec<String> = self
            .limiter()
            .snapshot()
            .into_iter()
            .filter(|b| b.used > 0)
            .map(|b| format!("{} {}/{}", b.group, b.used, b.limit))
            .collect();
        (!busy.is_empty()).then(|| busy.join(", "))
    }
}

/// A write failure after which the exchange may or may not have acted: no answer, an
/// unreadable one, a 5xx, or an error the adapter classified as the server's own (an
/// exchange's "execution status unknown" code, whatever HTTP status carries it).
pub fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Transport(_) | Error::Decode { .. } => true,
        Error::Api { status, kind, .. } => *status >= 500 || *kind == super::ErrorKind::ServerError,
        _ => false,
    }
}

/// Settles a key deletion whose answer was lost (`err`, an [`outcome_unknown`] error of the
/// call `what`) by what the key answers now (`check`): deleted only when `gone` says that
/// refusal proves it; a key that still works, or a check that failed otherwise, leaves the
/// outcome unknown (never resent).
pub fn settle_deletion<T>(
    what: String,
    err: &Error,
    check: super::Result<T>,
    gone: impl Fn(&Error) -> bool,
) -> super::Result<()> {
    match check {
        Err(e) if gone(&e) => Ok(()),
        Ok(_) => Err(Error::OutcomeUnknown {
            what,
            detail: format!("{err}; the key still works, so the deletion did not take effect"),
        }),
        Err(e2) => Err(Error::OutcomeUnknown {
            what,
            detail: format!("{err}; checking the key also failed: {e2}"),
        }),
    }
}

/// Whether an answer's rate-limit count is one the server's counter produced, so it may
/// grant sends ([`RateLimiter::observe_answer`]): a success or an ordinary client error. A
/// refusal (429, 418) or a server error (5xx: an overloaded front may answer with a count it
/// did not keep, as the mock's injected errors do) is only a limit, never a grant.
fn counted_answer(status: u16) -> bool {
    (200..300).contains(&status) || ((400..500).contains(&status) && status != 429 && status != 418)
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
    report: Option<&BudgetReport>,
    transport_err: Option<&str>,
) {
    let key = if call.auth { key_masked } else { "public" };
    let ms = took.as_millis();
    let budget = match report {
        Some(r) => match r.remaining {
            Some(n) => format!("budget: {n} left this second in group {}", r.group),
            None => format!("budget: group {}", r.group),
        },
        None => "budget: not reported".to_string(),
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

/// A transport failure in words; redacted, and never the request's headers.
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

/// One header's value as text.
/// A fingerprint of one key's credentials, to tell the same key name signed with other
/// credentials apart across a run and its resumes (a wrong secret is refused just like a
/// deleted key by some exchanges). `parts` are what identifies the credentials: the key name
/// with its public key where there is one, else the secret's parts. The fingerprint is the
/// first 16 hex digits of a domain-separated SHA-256 over them, length-prefixed: it names the
/// credentials without standing in for them (a key's secret is far too long to be guessed
/// from 64 bits), and it is the same for the same credentials in every run.
pub fn credentials_fingerprint(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"respond credentials fingerprint v1\0");
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    format!("cred:{}", hex::encode(&d[..8]))
}

pub fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait of 5 s or more is told, with the method, path, group and whole seconds rounded
    /// up; a shorter one is not; the call's parameters never appear.
    #[test]
    fn a_long_budget_wait_is_told_without_the_calls_parameters() {
        let call = Call::get(
            "/sapi/v1/capital/withdraw/history",
            vec![("secretish".into(), "value-never-shown".into())],
        );
        assert_eq!(
            budget_notice(&call, "uid", Duration::from_millis(4_999)),
            None
        );
        let told = budget_notice(&call, "uid", Duration::from_millis(60_200)).unwrap();
        assert!(
            told.starts_with("GET /sapi/v1/capital/withdraw/history waits about 61 s"),
            "{told}"
        );
        assert!(told.contains("(uid)"), "{told}");
        assert!(
            !told.contains("secretish") && !told.contains("value-never-shown"),
            "{told}"
        );
    }

    /// Which answers' counts may grant sends. A 418 is pinned over loopback too (the
    /// integration tests); a 429 counted as a grant is not observable there, since
    /// the limiter then clears the count and parks the group for a window anyway, so its
    /// branch is pinned here.
    #[test]
    fn only_a_count_the_server_kept_may_grant_sends() {
        for kept in [200, 204, 400, 401, 403, 404] {
            assert!(counted_answer(kept), "{kept}");
        }
        for refused in [429, 418, 500, 503, 0] {
            assert!(!counted_answer(refused), "{refused}");
        }
    }

    #[test]
    fn url_policy() {
        for ok in [
            "https://api.example.com",
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
            "http://api.example.com",
            "http://10.0.0.1",
            "http://192.168.1.2:8080",
            "http://[::2]",
            "http://localhost.evil.com",
            "ftp://127.0.0.1",
            "not a url",
            "https://user:pw@api.example.com",
        ] {
            match validate_base_url(bad) {
                Err(Error::Config(m)) => assert!(!m.is_empty()),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let m = validate_base_url("http://api.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("loopback") && m.contains("api.example.com"),
            "{m}"
        );
        // A URL that does not parse, or has no host, is named without what precedes an `@`:
        // it may be a user name and password.
        for bad in [
            "https://trader:hunter2@api.exa mple.com",
            "https://trader:hunter2@",
            "ftp://trader:hunter2@127.0.0.1",
        ] {
            let m = validate_base_url(bad).unwrap_err().to_string();
            assert!(!m.contains("hunter2") && !m.contains("trader"), "{m}");
        }
    }

    #[test]
    fn query_is_encoded_in_order() {
        let post = Call::post_json(
            "/v5/x",
            vec![
                ("category".into(), "spot".into()),
                ("readOnly".into(), 1.into()),
            ],
        );
        assert_eq!(
            post.body.as_deref(),
            Some(r#"{"category":"spot","readOnly":1}"#)
        );
        assert_eq!(
            post.what_with_query(),
            "POST /v5/x?category=spot&readOnly=1"
        );
        assert_eq!(Call::post_json("/v5/y", vec![]).body.as_deref(), Some("{}"));
        let q = encode_query(&[p("states[]", "wait"), p("a b", "x&y")]);
        assert_eq!(q, "states%5B%5D=wait&a+b=x%26y");
        let c = Call::get("/v1/x", vec![p("k", 1), p("m", "n")]);
        assert_eq!(c.what_with_query(), "GET /v1/x?k=1&m=n");
    }
}
