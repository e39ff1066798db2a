//! Client-side pacing for Upbit's per-group rate limits.
//!
//! Upbit counts requests per *group* (`default` 30/s, `order` 8/s, `order-cancel-all` 1 per
//! 2 s, quotation groups 10/s) and reports what is left in every response's `Remaining-Req`
//! header. Going over gives 429; insisting gives 418 and a block. So the limiter is shaped to
//! never send a request the server would refuse: a sliding window per group (at most `limit`
//! sends in any `window` plus a small margin for network jitter), which also adopts the
//! server's own `sec` count when that is lower than ours (another client shares the key or IP).
//! A 429 puts the group into exponential backoff with jitter for everyone; a 418 stops every
//! request until the block is over instead of hammering into it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use rand::Rng;
use serde::Serialize;

/// Budget of one group: `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub window: Duration,
}

/// The published budget of an Upbit group. Unknown groups get a conservative 5/s.
pub fn budget_of(group: &str) -> Budget {
    let per_sec = |limit| Budget {
        limit,
        window: Duration::from_secs(1),
    };
    match group {
        "default" => per_sec(30),
        "order" | "order-test" => per_sec(8),
        "order-cancel-all" => Budget {
            limit: 1,
            window: Duration::from_secs(2),
        },
        "market" | "candle" | "trade" | "ticker" | "orderbook" => per_sec(10),
        _ => per_sec(5),
    }
}

/// The group an endpoint is expected to count against before the server says otherwise.
pub fn group_for(method: &str, path: &str) -> &'static str {
    let path = path.trim_end_matches('/');
    if path.starts_with("/v1/market/") {
        return "market";
    }
    if path.starts_with("/v1/candles/") {
        return "candle";
    }
    if path.starts_with("/v1/trades/") {
        return "trade";
    }
    if path == "/v1/ticker" || path.starts_with("/v1/ticker/") {
        return "ticker";
    }
    if path == "/v1/orderbook" {
        return "orderbook";
    }
    match (method, path) {
        ("DELETE", "/v1/orders/open") => "order-cancel-all",
        ("POST", "/v1/orders/test") => "order-test",
        // Cancels by id (`DELETE /v1/order`, `DELETE /v1/orders/uuids`) count against
        // `default`, not `order` (Upbit's API reference, "Rate Limit" of each endpoint).
        ("POST", "/v1/orders") => "order",
        _ => "default",
    }
}

/// The least time Upbit's published budgets allow to cancel a book of `wait` and `watch`
/// orders, counting from the first listing call to the final listing that sees the book
/// empty (no network or server time): list pages of 100, then batch calls of 300 (only
/// `wait` orders) at 1 per 2 s side by side with calls by id (20 `wait` uuids, or one `watch`
/// order, per call), then one listing. Listings and cancels by id share the `default` group.
/// Every group may spend its whole budget at once, then must wait a window: call `i` and call
/// `i + limit` of a group are at least one window apart. So a small book has a floor of zero
/// (the limits impose no wait); the benchmark reports containment time next to this.
pub fn cancel_all_floor(open_wait: usize, open_watch: usize) -> Duration {
    let default = budget_of("default");
    let batch = budget_of("order-cancel-all");
    // Send time of the k-th `default` call (0-based), bursting a whole budget per window.
    let default_at = |k: usize| default.window * (k / default.limit as usize) as u32;
    let pages = (open_wait + open_watch).div_ceil(100).max(1);
    let mut k = pages;
    let listed = default_at(pages - 1);
    let (mut wait, mut watch) = (open_wait, open_watch);
    let mut next_batch = listed;
    let mut last = listed;
    while wait + watch > 0 {
        let by_id = default_at(k).max(listed);
        if wait > 20 && next_batch <= by_id {
            wait -= wait.min(300);
            last = last.max(next_batch);
            next_batch += batch.window;
            continue;
        }
        if wait > 0 {
            wait -= wait.min(20);
        } else {
            watch -= 1;
        }
        k += 1;
        last = last.max(by_id);
    }
    last.max(default_at(k))
}

/// Current use of one group's budget, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetUse {
    pub group: String,
    /// Requests sent in the current window.
    pub used: u32,
    pub limit: u32,
    pub window_ms: u64,
}

/// Why a request may not be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server answered 418: blocked for this long still.
    Blocked(Duration),
}

#[derive(Debug)]
struct Group {
    budget: Budget,
    /// When each recent request *finished*. The server counted it at arrival, which lies
    /// between our send and its answer; the answer time is the safe upper bound.
    done: VecDeque<Instant>,
    /// Requests sent and not answered yet: they count against the window too.
    inflight: u32,
    /// The server's last `sec` report: (when it arrived, requests left this second).
    server: Option<(Instant, u32)>,
    backoff_until: Option<Instant>,
    backoff_level: u32,
}

/// How often a group whose budget is all in flight looks again.
const INFLIGHT_POLL: Duration = Duration::from_millis(5);

impl Group {
    fn new(budget: Budget) -> Self {
        Group {
            budget,
            done: VecDeque::new(),
            inflight: 0,
            server: None,
            backoff_until: None,
            backoff_level: 0,
        }
    }

    fn span(&self) -> Duration {
        // A margin of 5% absorbs clock granularity and jitter on the server's side.
        self.budget.window + self.budget.window / 20
    }

    fn prune(&mut self, now: Instant) {
        let span = self.span();
        while self
            .done
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            self.done.pop_front();
        }
        if self
            .server
            .is_some_and(|(t, _)| now.duration_since(t) >= span)
        {
            self.server = None;
        }
    }

    /// How long to wait before the next send, or zero.
    fn wait(&mut self, now: Instant) -> Duration {
        self.prune(now);
        let mut until = now;
        if let Some(b) = self.backoff_until {
            until = until.max(b);
        }
        let span = self.span();
        if self.inflight + self.done.len() as u32 >= self.budget.limit {
            match self.done.front() {
                Some(first) => until = until.max(*first + span),
                None => until = until.max(now + INFLIGHT_POLL),
            }
        }
        if let Some((at, remaining)) = self.server {
            let since = self.inflight + self.done.iter().filter(|t| **t > at).count() as u32;
            if since >= remaining {
                until = until.max(at + span);
            }
        }
        until.saturating_duration_since(now)
    }
}

/// A granted send. Dropping it (answer received, failed, or the future cancelled) marks the
/// request finished, so a cancelled caller never leaks budget.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    group: String,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = self.limiter.lock();
        let g = st.group(&self.group);
        g.inflight = g.inflight.saturating_sub(1);
        g.done.push_back(Instant::now());
    }
}

/// Per-group pacing shared by all requests of one client.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
    backoff_base: Duration,
    backoff_max: Duration,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, Group>,
    blocked_until: Option<Instant>,
}

impl State {
    fn group(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group::new(budget_of(name)))
    }
}

impl RateLimiter {
    /// `backoff_base` is the first delay after a 429; it doubles per consecutive 429 up to
    /// `backoff_max`, plus up to one base of jitter.
    pub fn new(backoff_base: Duration, backoff_max: Duration) -> Self {
        RateLimiter {
            state: Mutex::new(State::default()),
            backoff_base,
            backoff_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Overrides a group's budget (tests, or a future documented change such as `order`
    /// going to 12/s).
    pub fn set_budget(&self, group: &str, budget: Budget) {
        self.lock().group(group).budget = budget;
    }

    /// Waits until `group` may send, then counts the send until the permit is dropped.
    pub async fn acquire(&self, group: &str) -> Result<Permit<'_>, Refusal> {
        loop {
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                if let Some(b) = st.blocked_until {
                    if b > now {
                        return Err(Refusal::Blocked(b - now));
                    }
                    st.blocked_until = None;
                }
                let g = st.group(group);
                let wait = g.wait(now);
                if wait.is_zero() {
                    g.inflight += 1;
                    return Ok(Permit {
                        limiter: self,
                        group: group.to_string(),
                    });
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How long a send in `group` would wait now (zero = a slot is free).
    pub fn ready_in(&self, group: &str) -> Duration {
        let mut st = self.lock();
        let now = Instant::now();
        let blocked = st
            .blocked_until
            .map(|b| b.saturating_duration_since(now))
            .unwrap_or_default();
        st.group(group).wait(now).max(blocked)
    }

    /// Adopts the server's `sec` report for `group`, received just now (call it after the
    /// request's permit is dropped).
    ///
    /// The server's count matters only when our own answered sends of the last window do not
    /// explain it (another client shares the budget): then nothing more goes out until its
    /// window is surely over. When they do, our own window already keeps within the server's,
    /// and waiting a whole window from the answer that reported 0 left would idle the group
    /// for the length of every burst (30 per 1.05 s became 30 per 1.15 s in the export).
    pub fn observe(&self, group: &str, sec_remaining: Option<u32>) {
        if let Some(r) = sec_remaining {
            let mut st = self.lock();
            let now = Instant::now();
            let g = st.group(group);
            let used = g.budget.limit.saturating_sub(r);
            let ours = g
                .done
                .iter()
                .filter(|t| now.duration_since(**t) < g.budget.window)
                .count() as u32;
            g.server = (ours < used).then_some((now, r));
        }
    }

    /// A successful (non-429) answer ends the group's backoff escalation.
    pub fn succeeded(&self, group: &str) {
        let mut st = self.lock();
        st.group(group).backoff_level = 0;
    }

    /// A 429: backs the group off (exponential with jitter, or the server's Retry-After if
    /// longer) and returns the delay chosen.
    pub fn too_many(&self, group: &str, retry_after: Option<Duration>) -> Duration {
        let base = self.backoff_base;
        let max = self.backoff_max;
        let mut st = self.lock();
        let g = st.group(group);
        let exp = base
            .saturating_mul(1u32 << g.backoff_level.min(16))
            .min(max);
        let jitter_ms = rand::thread_rng().gen_range(0..=base.as_millis().max(1) as u64);
        let mut delay = exp + Duration::from_millis(jitter_ms);
        if let Some(ra) = retry_after {
            delay = delay.max(ra);
        }
        g.backoff_level = g.backoff_level.saturating_add(1);
        let until = Instant::now() + delay;
        g.backoff_until = Some(g.backoff_until.map_or(until, |b| b.max(until)));
        // The server counted this second full: forget our optimistic view of it.
        g.server = Some((Instant::now(), 0));
        delay
    }

    /// A 418: nothing is sent to the exchange until the block is over.
    pub fn blocked(&self, duration: Duration) {
        let mut st = self.lock();
        let until = Instant::now() + duration;
        st.blocked_until = Some(st.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// Use of every group seen so far, sorted by group name.
    pub fn snapshot(&self) -> Vec<BudgetUse> {
        let mut st = self.lock();
        let now = Instant::now();
        let mut out: Vec<BudgetUse> = st
            .groups
            .iter_mut()
            .map(|(name, g)| {
                g.prune(now);
                let in_window = g.inflight
                    + g.done
                        .iter()
                        .filter(|t| now.duration_since(**t) < g.budget.window)
                        .count() as u32;
                BudgetUse {
                    group: name.clone(),
                    used: in_window,
                    limit: g.budget.limit,
                    window_ms: g.budget.window.as_millis() as u64,
                }
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_groups() {
        assert_eq!(group_for("DELETE", "/v1/orders/open"), "order-cancel-all");
        assert_eq!(group_for("GET", "/v1/orders/open"), "default");
        assert_eq!(group_for("GET", "/v1/candles/minutes/1"), "candle");
        assert_eq!(group_for("POST", "/v1/orders"), "order");
        assert_eq!(group_for("DELETE", "/v1/order"), "default");
        assert_eq!(group_for("DELETE", "/v1/orders/uuids"), "default");
        assert_eq!(budget_of("order-cancel-all").window, Duration::from_secs(2));
    }

    #[test]
    fn cancel_floor_follows_the_budgets() {
        // Small books: one listing, one cancel call, one listing, all within the first
        // window's budget: the limits impose no wait.
        assert_eq!(cancel_all_floor(10, 0), Duration::ZERO);
        assert_eq!(cancel_all_floor(100, 0), Duration::ZERO);
        // 1000: 10 listing pages and a batch of 300 at 0 s; 20 uuid calls (400 orders) fill
        // the first second's `default` budget, 15 more at 1 s finish the book, and the final
        // listing fits in that second's budget too.
        assert_eq!(cancel_all_floor(1000, 0), Duration::from_secs(1));
        // 3000 `wait`: 30 pages fill the first second's `default` budget, with a batch of
        // 300 at 0 s (2700 left); each later second's 30 uuid calls take 600 and batches at
        // 2 s and 4 s take 300: 1 s → 2100, 2 s → 1200, 3 s → 600, 4 s → 0; the final
        // listing fits in the 4 s window.
        assert_eq!(cancel_all_floor(3000, 0), Duration::from_secs(4));
        // `watch` orders go one per `default` call: a listing, 28 cancels and the final
        // listing fill one window; one more order needs the next.
        assert_eq!(cancel_all_floor(0, 28), Duration::ZERO);
        assert_eq!(cancel_all_floor(0, 29), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn never_more_than_the_budget_in_a_window() {
        let rl = RateLimiter::new(Duration::from_millis(100), Duration::from_secs(2));
        rl.set_budget(
            "g",
            Budget {
                limit: 3,
                window: Duration::from_millis(100),
            },
        );
        let start = Instant::now();
        let mut sends = Vec::new();
        for _ in 0..10 {
            let permit = rl.acquire("g").await.unwrap();
            sends.push(Instant::now() - start);
            drop(permit);
        }
        for (i, t) in sends.iter().enumerate() {
            let in_window = sends[i..]
                .iter()
                .filter(|u| **u - *t < Duration::from_millis(100))
                .count();
            assert!(
                in_window <= 3,
                "{in_window} sends within 100 ms after {t:?}"
            );
        }
    }

    #[tokio::test]
    async fn adopts_a_lower_server_count() {
        let rl = RateLimiter::new(Duration::from_millis(100), Duration::from_secs(2));
        rl.set_budget(
            "default",
            Budget {
                limit: 30,
                window: Duration::from_millis(200),
            },
        );
        let t0 = Instant::now();
        drop(rl.acquire("default").await.unwrap());
        rl.observe("default", Some(1));
        drop(rl.acquire("default").await.unwrap());
        drop(rl.acquire("default").await.unwrap());
        let t2 = Instant::now();
        // Our own budget (30) would allow it at once; the server said one was left.
        assert!(
            t2 - t0 >= Duration::from_millis(200),
            "waited only {:?}",
            t2 - t0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_count_explained_by_our_own_sends_does_not_idle_the_group() {
        let rl = RateLimiter::new(Duration::from_millis(100), Duration::from_secs(2));
        let budget = Budget {
            limit: 5,
            window: Duration::from_millis(100),
        };
        rl.set_budget("g", budget);
        let t0 = Instant::now();
        // Five sequential requests of 10 ms each; the server reports what is left after each.
        for left in (0..5).rev() {
            let permit = rl.acquire("g").await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(permit);
            rl.observe("g", Some(left));
        }
        drop(rl.acquire("g").await.unwrap());
        let sixth = Instant::now() - t0;
        // Our own window frees a slot 105 ms after the first answer (10 ms): 115 ms. Waiting
        // a window from the answer that said 0 left (50 ms) would give 155 ms.
        assert_eq!(sixth, Duration::from_millis(115));
    }

    #[tokio::test]
    async fn blocked_refuses_and_429_backs_off() {
        let rl = RateLimiter::new(Duration::from_millis(100), Duration::from_secs(2));
        let d1 = rl.too_many("default", None);
        let d2 = rl.too_many("default", None);
        assert!(d2 >= Duration::from_millis(200) && d1 <= Duration::from_millis(200));
        rl.blocked(Duration::from_secs(30));
        assert!(matches!(
            rl.acquire("default").await,
            Err(Refusal::Blocked(_))
        ));
    }
}
