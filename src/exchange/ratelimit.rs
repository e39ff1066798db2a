//! Client-side pacing for per-group rate limits, shared by every adapter.
//!
//! Exchanges count requests per *group* (`default` 30/s and `order` 8/s, say, or a request
//! weight per minute) and often report what is left in a response header. Going over gives
//! 429; insisting gives 418 and a block. So the limiter is shaped to never send a request the
//! server would refuse: a sliding window per group (at most `limit` units in any `window` plus
//! a small margin for network jitter), which also adopts the server's own count when that is
//! lower than ours (another client shares the key or IP). A 429 puts the group into
//! exponential backoff with jitter for everyone; a 418 stops every request until the block is
//! over instead of hammering into it.
//!
//! Our own window counts each request from its *answer* (the server counted it at arrival,
//! somewhere between our send and its answer), which is safe whatever the latency but slow:
//! after a burst, the next window's requests trickle out one answer time apart. Where the
//! adapter says the server's count is exact ([`RateLimiter::observe_answer`]: a header
//! reporting what is left this second on every answer), the server's own count also grants
//! sends: an answer saying `N` left lets out up to `N` minus every request of ours the server
//! may not have counted yet, minus the answered request's own units, at once (see [`Group::server_allows`] for why that
//! cannot exceed the server's budget). So once the server's window is over, the first answer
//! of the new one releases the whole next burst.
//!
//! The budgets come from the adapter's limits table (a function from group name to
//! [`Budget`]); the header observers that feed [`RateLimiter::observe`] are the adapter's too
//! ([`super::http::Protocol::observe`]). A request may cost more than one unit
//! ([`RateLimiter::acquire_n`]) where the exchange counts weights.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use rand::Rng;
use serde::Serialize;

/// Budget of one group: `limit` units per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub window: Duration,
}

impl Budget {
    /// `limit` per second.
    pub const fn per_sec(limit: u32) -> Budget {
        Budget {
            limit,
            window: Duration::from_secs(1),
        }
    }
}

/// An adapter's limits table: the budget of each group by name.
pub type BudgetTable = Box<dyn Fn(&str) -> Budget + Send + Sync>;

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
    /// When each recent request *finished*, and the units it cost. The server counted it at
    /// arrival, which lies between our send and its answer; the answer time is the safe upper
    /// bound.
    done: VecDeque<(Instant, u32)>,
    /// Units of requests sent and not answered yet: they count against the window too.
    inflight: u32,
    /// The server's last count when our own sends do not explain it (another client shares
    /// the budget): it holds sends back until its window is surely over.
    server: Option<ServerCount>,
    /// The server's newest exact count, when the adapter gives one: it may grant sends our
    /// own window would hold back.
    count: Option<ServerCount>,
    /// Until when no count may grant sends: a send of ours was left without an answer (a
    /// timeout, a cancelled call), so its bytes may reach the server after anything sent
    /// later, and no count can say whether it holds it.
    no_grant_until: Option<Instant>,
    /// When the server's fixed window that counted an answered request is surely over, from
    /// the time left in it that the answer reported ([`RateLimiter::window_ends`]).
    window_end: Option<WindowEnd>,
    backoff_until: Option<Instant>,
    backoff_level: u32,
}

/// The end of a server's fixed window, as an answer reported it.
#[derive(Debug, Clone, Copy)]
struct WindowEnd {
    /// By then the window is over: the answer's arrival plus the time it said was left.
    at: Instant,
    /// The earliest the window may have ended: the answered request's send plus that time.
    /// Requests answered since may have reached the server after it, in the next window.
    since: Instant,
}

/// A count from the server ([`RateLimiter::observe`], [`RateLimiter::observe_answer`]).
#[derive(Debug, Clone, Copy)]
struct ServerCount {
    /// When the answer carrying it arrived.
    at: Instant,
    /// Units the server said were left when it counted the answered request.
    remaining: u32,
    /// Units of our requests the count may not include: those in flight when the answer
    /// came, those answered after the answered request was sent (when known), and every send
    /// since. Counted by sends, not by answer times: answers at one instant (a paused clock,
    /// a coarse one) are not lost.
    unseen: u32,
    /// Units kept back from `remaining`: the answered request's own, as whether `remaining`
    /// already includes them is not documented for every exchange.
    held: u32,
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
            count: None,
            no_grant_until: None,
            window_end: None,
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
            .is_some_and(|(t, _)| now.duration_since(*t) >= span)
        {
            self.done.pop_front();
        }
        if self
            .server
            .is_some_and(|c| now.duration_since(c.at) >= span)
        {
            self.server = None;
        }
        if self
            .count
            .is_some_and(|c| now.duration_since(c.at) >= self.budget.window)
        {
            self.count = None;
        }
    }

    /// Whether the server's newest exact count lets a send of `weight` units out now.
    ///
    /// Why this never goes over the server's budget: the server counted the answered request
    /// at its arrival, and said `remaining` units were left then. Whatever its window (fixed
    /// from a first request, aligned to the clock, or sliding), what it holds later is at
    /// most what it held then plus what arrived since; what arrived since is at most
    /// `unseen` (every request of ours not surely answered before that request was sent)
    /// plus this send. The answered request's own units are kept back too: whether
    /// `remaining` already includes them is not documented for every exchange. A send of ours
    /// left without an answer (dropped permit) may arrive after any later one, so no count
    /// grants anything for a window after it ([`Permit::answered`]). Another client on the
    /// same key is not seen by this rule (nor by our own window); [`RateLimiter::observe`]
    /// still adopts a lower count. The count is used for one window after it arrived.
    fn server_allows(&self, weight: u32) -> bool {
        self.count
            .is_some_and(|c| c.unseen + weight + c.held <= c.remaining)
    }

    /// Units answered within the window before `now`.
    fn used_in_window(&self, now: Instant) -> u32 {
        self.done
            .iter()
            .filter(|(t, _)| now.duration_since(*t) < self.budget.window)
            .map(|(_, w)| w)
            .sum()
    }

    /// Once a server's fixed window is surely over ([`RateLimiter::window_ends`]), its count
    /// grants the whole budget again, less every unit of ours the next window may hold: those
    /// in flight and those answered since the window may have ended. Sends after this are
    /// added as they go ([`ServerCount::unseen`]). Nothing is granted while the group backs
    /// off or after a send left without an answer.
    fn open_window(&mut self, now: Instant) {
        let Some(w) = self.window_end.filter(|w| w.at <= now) else {
            return;
        };
        self.window_end = None;
        if self.backoff_until.is_some_and(|b| b > now)
            || self.no_grant_until.is_some_and(|u| u > now)
        {
            return;
        }
        let answered_since: u32 = self
            .done
            .iter()
            .filter(|(t, _)| *t >= w.since)
            .map(|(_, u)| u)
            .sum();
        self.count = Some(ServerCount {
            at: now,
            remaining: self.budget.limit,
            unseen: self.inflight + answered_since,
            held: 0,
        });
    }

    /// How long to wait before a send costing `weight` units, or zero.
    fn wait(&mut self, now: Instant, weight: u32) -> Duration {
        self.prune(now);
        self.open_window(now);
        let weight = weight.clamp(1, self.budget.limit.max(1));
        let mut until = now;
        if let Some(b) = self.backoff_until {
            until = until.max(b);
        }
        let span = self.span();
        let done: u32 = self.done.iter().map(|(_, w)| w).sum();
        let mut over = (self.inflight + done + weight).saturating_sub(self.budget.limit);
        if over > 0 && !self.server_allows(weight) {
            // Wait until enough answered units leave the window; if those in flight are what
            // fills it, look again shortly (an answer wakes the waiters sooner).
            let mut free_at = None;
            for (t, w) in &self.done {
                over = over.saturating_sub(*w);
                if over == 0 {
                    free_at = Some(*t + span);
                    break;
                }
            }
            let mut free = free_at.unwrap_or(now + INFLIGHT_POLL);
            if let Some(w) = self.window_end {
                free = free.min(w.at);
            }
            until = until.max(free);
        }
        if let Some(c) = self.server {
            if c.unseen + weight > c.remaining {
                until = until.max(c.at + span);
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
    weight: u32,
    answered: bool,
}

impl Permit<'_> {
    /// The server answered this request (a status line arrived), so it counted it before
    /// answering. A permit dropped without this (a timeout, a cancelled call) may still
    /// reach the server later: no server count grants sends for a window after it.
    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        {
            let mut st = self.limiter.lock();
            let g = st.group(&self.group);
            g.inflight = g.inflight.saturating_sub(self.weight);
            let now = Instant::now();
            g.done.push_back((now, self.weight));
            if !self.answered {
                g.count = None;
                g.no_grant_until = Some(now + g.budget.window);
            }
        }
        self.limiter.wake.notify_waiters();
    }
}

/// Per-group pacing shared by all requests of one client.
pub struct RateLimiter {
    state: Mutex<State>,
    /// Wakes waiting senders when budget may have come free (an answer, a server count).
    wake: Notify,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

struct State {
    groups: HashMap<String, Group>,
    blocked_until: Option<Instant>,
    table: BudgetTable,
}

impl State {
    fn group(&mut self, name: &str) -> &mut Group {
        let table = &self.table;
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group::new(table(name)))
    }
}

impl RateLimiter {
    /// Budgets come from `table` (the adapter's limits); `backoff_base` is the first delay
    /// after a 429; it doubles per consecutive 429 up to `backoff_max`, plus up to one base of
    /// jitter.
    pub fn new(table: BudgetTable, backoff_base: Duration, backoff_max: Duration) -> Self {
        RateLimiter {
            state: Mutex::new(State {
                groups: HashMap::new(),
                blocked_until: None,
                table,
            }),
            wake: Notify::new(),
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
        self.acquire_n(group, 1).await
    }

    /// [`RateLimiter::acquire`] for a request costing `weight` units.
    pub async fn acquire_n(&self, group: &str, weight: u32) -> Result<Permit<'_>, Refusal> {
        loop {
            // Registered before looking, so an answer arriving in between is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
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
                let wait = g.wait(now, weight);
                if wait.is_zero() {
                    let weight = weight.clamp(1, g.budget.limit.max(1));
                    g.inflight += weight;
                    for c in [&mut g.count, &mut g.server].into_iter().flatten() {
                        c.unseen += weight;
                    }
                    return Ok(Permit {
                        limiter: self,
                        group: group.to_string(),
                        weight,
                        answered: false,
                    });
                }
                wait
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut woken => {}
            }
        }
    }

    /// How long a send in `group` costing `weight` units would wait now for the group's
    /// budget alone (a 418 block is not counted: that send is refused, not held).
    pub fn budget_wait(&self, group: &str, weight: u32) -> Duration {
        self.lock().group(group).wait(Instant::now(), weight)
    }

    /// How long a send in `group` would wait now (zero = a slot is free).
    pub fn ready_in(&self, group: &str) -> Duration {
        let mut st = self.lock();
        let now = Instant::now();
        let blocked = st
            .blocked_until
            .map(|b| b.saturating_duration_since(now))
            .unwrap_or_default();
        st.group(group).wait(now, 1).max(blocked)
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
        self.report(group, sec_remaining, None);
    }

    /// Adopts a count: as a limit when our own sends do not explain it, and as a grant when
    /// `answered` (the answered request's send time and weight) says the count is exact.
    fn report(&self, group: &str, sec_remaining: Option<u32>, answered: Option<(Instant, u32)>) {
        let Some(remaining) = sec_remaining else {
            return;
        };
        {
            let mut st = self.lock();
            let now = Instant::now();
            let g = st.group(group);
            let used = g.budget.limit.saturating_sub(remaining);
            let ours = g.used_in_window(now);
            // The answers kept must reach back to the send, or some answered after it may be
            // gone already; a group in backoff waits for that whatever the count.
            let exact = answered.filter(|(sent, _)| {
                now.duration_since(*sent) < g.budget.window
                    && !g.backoff_until.is_some_and(|b| b > now)
                    && !g.no_grant_until.is_some_and(|u| u > now)
            });
            let answered_since = exact.map_or(0, |(sent, weight)| {
                let weight = weight.clamp(1, g.budget.limit.max(1));
                g.done
                    .iter()
                    .filter(|(t, _)| *t >= sent)
                    .map(|(_, w)| w)
                    .sum::<u32>()
                    .saturating_sub(weight)
            });
            let count = ServerCount {
                at: now,
                remaining,
                unseen: g.inflight + answered_since,
                held: exact.map_or(0, |(_, w)| w.clamp(1, g.budget.limit.max(1))),
            };
            g.server = (ours < used).then_some(count);
            if exact.is_some() {
                g.count = Some(count);
            } else if answered.is_some() {
                g.count = None;
            }
        }
        self.wake.notify_waiters();
    }

    /// [`RateLimiter::observe`] for an adapter whose server reports an exact count of what is
    /// left in `group` on every answer: also lets that count grant sends (see
    /// [`Group::server_allows`]). `sent` is when the answered request was sent (after its
    /// permit was granted) and `weight` what it cost; call it after its permit is dropped.
    pub fn observe_answer(
        &self,
        group: &str,
        sec_remaining: Option<u32>,
        sent: Instant,
        weight: u32,
    ) {
        self.report(group, sec_remaining, Some((sent, weight)));
    }

    /// The server counts `group` in fixed windows, and an answer to a request sent at `sent`
    /// said `left` remained of the window that counted it (a header of the adapter's own).
    /// That window began ending no earlier than `sent + left` and is over by `now + left`;
    /// from then on the whole budget is granted again, less what of ours the next window may
    /// already hold ([`Group::open_window`]). Our own window, counted from answers with a
    /// margin, would hold a window's sends back until a margin after their answers: 5% of a
    /// 30-second window is 1.5 s of every 31.5. Only for a server whose windows are fixed (all
    /// units free at once when the time left runs out) and whose answers say how long is
    /// left: call it after the request's permit is dropped, for an answer the server counted.
    pub fn window_ends(&self, group: &str, sent: Instant, left: Duration) {
        {
            let mut st = self.lock();
            let now = Instant::now();
            let g = st.group(group);
            let end = WindowEnd {
                at: now + left,
                since: sent + left,
            };
            // Each answer's end is a sound bound for the window that counted it; the soonest
            // is kept until it is reached.
            if !g.window_end.is_some_and(|w| w.at <= end.at) {
                g.window_end = Some(end);
            }
        }
        self.wake.notify_waiters();
    }

    /// A successful (non-429) answer ends the group's backoff escalation.
    pub fn succeeded(&self, group: &str) {
        let mut st = self.lock();
        st.group(group).backoff_level = 0;
    }

    /// A 429: backs the group off (exponential with jitter, or the wait the server said if
    /// longer: `Retry-After`, or a reset header of the adapter's own, read by
    /// [`super::http::Protocol::retry_after`]) and returns the delay chosen.
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
        g.count = None;
        g.window_end = None;
        let now = Instant::now();
        let until = now + delay;
        g.backoff_until = Some(g.backoff_until.map_or(until, |b| b.max(until)));
        // The server counted the window full: forget our optimistic view of it, for a whole
        // window from now, or only until the reset the server said when it said one (a
        // window that started before our requests ends sooner).
        let span = g.span();
        let full_from = retry_after
            .and_then(|ra| (now + ra).checked_sub(span))
            .filter(|t| *t < now)
            .unwrap_or(now);
        g.server = Some(ServerCount {
            at: full_from,
            remaining: 0,
            unseen: 0,
            held: 0,
        });
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
                let in_window = g.inflight + g.used_in_window(now);
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

    fn limiter() -> RateLimiter {
        RateLimiter::new(
            Box::new(|_| Budget::per_sec(5)),
            Duration::from_millis(100),
            Duration::from_secs(2),
        )
    }

    /// The wait a heavy send faces is told before it is taken: a budget of 10 units a minute
    /// that 9 answered units fill leaves room for one more unit, not for a send of 2.
    #[tokio::test(start_paused = true)]
    async fn the_budget_wait_counts_the_sends_weight() {
        let rl = limiter();
        let minute = Duration::from_secs(60);
        rl.set_budget(
            "uid",
            Budget {
                limit: 10,
                window: minute,
            },
        );
        let mut p = rl.acquire_n("uid", 9).await.unwrap();
        p.answered();
        drop(p);
        assert_eq!(rl.budget_wait("uid", 1), Duration::ZERO);
        let wait = rl.budget_wait("uid", 2);
        assert!(
            // The window and the limiter's own margin past it.
            wait > Duration::from_secs(55) && wait <= minute + Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(rl.budget_wait("other", 2), Duration::ZERO);
    }

    #[tokio::test]
    async fn never_more_than_the_budget_in_a_window() {
        let rl = limiter();
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
        let rl = limiter();
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
        let rl = limiter();
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
        let rl = limiter();
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

#[cfg(test)]
mod weight_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_heavy_request_waits_for_enough_units_to_leave_the_window() {
        let rl = RateLimiter::new(
            Box::new(|_| Budget {
                limit: 10,
                window: Duration::from_millis(100),
            }),
            Duration::from_millis(100),
            Duration::from_secs(2),
        );
        let t0 = Instant::now();
        drop(rl.acquire_n("w", 4).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rl.acquire_n("w", 4).await.unwrap());
        // 8 of 10 used: a third request of 4 waits until the first 4 leave the window
        // (answered at 0 ms, the window plus its 5% margin: 105 ms).
        drop(rl.acquire_n("w", 4).await.unwrap());
        assert_eq!(Instant::now() - t0, Duration::from_millis(105));
        // A single unit fits beside them at once.
        let before = Instant::now();
        drop(rl.acquire("w").await.unwrap());
        assert_eq!(Instant::now(), before);
        assert_eq!(rl.snapshot()[0].used, 9);
    }
}

#[cfg(test)]
mod server_count_tests {
    use super::*;

    /// A limiter of `n` per second for every group, backing off 100 ms after a 429.
    pub(super) fn per_sec(n: u32) -> RateLimiter {
        RateLimiter::new(
            Box::new(move |_| Budget::per_sec(n)),
            Duration::from_millis(100),
            Duration::from_secs(2),
        )
    }
    use std::sync::Arc;

    use crate::mock::venue::ratelimit::{Budget as ServerBudget, Limiter, Verdict};

    /// One request against a server that counts like the mock's (its counter, a fixed
    /// window from the first arrival): 3 ms out, 9 ms back. Returns when it was sent, and
    /// whether the server refused it.
    async fn call(rl: &RateLimiter, server: &Mutex<Limiter>, t0: Instant) -> (Duration, bool) {
        let budget = ServerBudget::new("default", 30, 1000);
        let permit = rl.acquire("default").await.unwrap();
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_millis(3)).await;
        let verdict = server.lock().unwrap().hit(budget, "key", 1, Instant::now());
        tokio::time::sleep(Duration::from_millis(9)).await;
        let mut permit = permit;
        permit.answered();
        drop(permit);
        let (remaining, refused) = match verdict {
            Verdict::Allowed { remaining } => (remaining, false),
            _ => (0, true),
        };
        rl.observe_answer("default", Some(remaining), sent, 1);
        if refused {
            rl.too_many("default", None);
        }
        (sent - t0, refused)
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_answer_of_a_new_server_window_releases_the_next_burst() {
        let rl = Arc::new(per_sec(30));
        let server = Arc::new(Mutex::new(Limiter::new(None)));
        let t0 = Instant::now();
        let mut sends = Vec::new();
        // A first window spent one call after another (listing pages): answers 12 ms apart.
        for _ in 0..30 {
            sends.push(call(&rl, &server, t0).await);
        }
        // Then 30 calls at once (cancels by id).
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let (rl, server) = (rl.clone(), server.clone());
                tokio::spawn(async move { call(&rl, &server, t0).await })
            })
            .collect();
        for t in tasks {
            sends.push(t.await.unwrap());
        }
        assert!(sends.iter().all(|(_, refused)| !refused), "{sends:?}");
        let mut at: Vec<Duration> = sends.iter().map(|(t, _)| *t).collect();
        at.sort();
        let ms = Duration::from_millis;
        // Our own window frees the first slot 1,050 ms after the first answer (12 ms): the
        // 31st call goes at 1,062 ms, reaches a new server window and is answered at 1,074 ms
        // with 29 left. That answer lets 28 more out at once (one kept back). Counting each
        // call from its own answer alone, they would trickle out 12 ms apart until 1,398 ms.
        assert_eq!(at[30], ms(1062));
        assert!(at[31..59].iter().all(|t| *t == ms(1074)), "{:?}", &at[30..]);
        // The last one waits for our own window: the server has one left, which is kept back.
        assert!(at[59] > ms(1074));
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_is_not_trusted_beyond_what_may_not_be_in_it() {
        let rl = per_sec(5);
        let t0 = Instant::now();
        // Five sends fill our window; the first is answered with 4 left while the other four
        // are still in flight: the count may not include them, so it grants nothing.
        let mut first = rl.acquire("g").await.unwrap();
        let sent = Instant::now();
        let others: Vec<_> = futures::future::join_all((0..4).map(|_| rl.acquire("g")))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.answered();
        drop(first);
        rl.observe_answer("g", Some(4), sent, 1);
        drop(others);
        drop(rl.acquire("g").await.unwrap());
        // Our own window: a slot frees 1,050 ms after the first answer.
        assert_eq!(Instant::now() - t0, Duration::from_millis(1060));
    }
}

#[cfg(test)]
mod shared_budget_tests {
    use super::server_count_tests::per_sec;
    use super::*;
    use futures::FutureExt;

    #[tokio::test(start_paused = true)]
    async fn answers_at_one_instant_still_count_against_another_clients_use() {
        let rl = per_sec(30);
        // Another client spent 20 of the server's 30. We send five at once; all five are
        // answered at the same instant, the first saying 9 left (it was counted first).
        let t0 = Instant::now();
        let mut five: Vec<_> = futures::future::join_all((0..5).map(|_| rl.acquire("default")))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(five.remove(0));
        rl.observe("default", Some(9));
        drop(five);
        // The server holds 25: five more fit, the sixth waits until its window is surely over.
        let mut granted = Vec::new();
        while let Some(p) = rl.acquire("default").now_or_never() {
            granted.push(p.unwrap());
        }
        assert_eq!(granted.len(), 5);
        drop(granted);
        drop(rl.acquire("default").await.unwrap());
        assert_eq!(Instant::now() - t0, Duration::from_millis(10 + 1050));
    }
}

#[cfg(test)]
mod unanswered_tests {
    use super::server_count_tests::per_sec;
    use super::*;
    use futures::FutureExt;

    /// Sends granted at once, without waiting.
    fn grantable<'a>(rl: &'a RateLimiter, group: &str) -> Vec<Permit<'a>> {
        let mut granted = Vec::new();
        while let Some(p) = rl.acquire(group).now_or_never() {
            granted.push(p.unwrap());
        }
        granted
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_left_without_an_answer_keeps_counts_from_granting_for_a_window() {
        let rl = per_sec(10);
        let t0 = Instant::now();
        // Two sends whose answers never come (a timeout, a cancelled future): their bytes may
        // still reach the server after anything sent later.
        let lost = (
            rl.acquire("g").await.unwrap(),
            rl.acquire("g").await.unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        drop(lost);
        tokio::time::sleep(Duration::from_millis(2)).await;
        // R is sent after them and answered: the server, having seen only R, says 9 left.
        let mut r = rl.acquire("g").await.unwrap();
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_millis(6)).await;
        r.answered();
        drop(r);
        rl.observe_answer("g", Some(9), sent, 1);
        // Our own window holds 3 and lets 7 out. Trusting the count would let 8 out, and
        // with the two lost ones arriving late the server would hold 11 of its 10.
        assert_eq!(grantable(&rl, "g").len(), 7);
        assert_eq!(Instant::now() - t0, Duration::from_millis(10));
    }

    #[test]
    fn a_count_keeps_back_the_answered_request_s_own_weight() {
        let mut g = Group::new(Budget::per_sec(10));
        g.count = Some(ServerCount {
            at: Instant::now(),
            remaining: 5,
            unseen: 0,
            held: 3,
        });
        // Whether the 5 left already include the answered request's 3 units is not known.
        assert!(g.server_allows(2));
        assert!(!g.server_allows(3));
    }
}

#[cfg(test)]
mod window_end_tests {
    use std::sync::Arc;

    use super::*;
    use crate::mock::venue::ratelimit::{Budget as ServerBudget, Limiter, Verdict};

    const WINDOW_MS: u64 = 1000;

    fn limiter() -> RateLimiter {
        RateLimiter::new(
            Box::new(|_| Budget {
                limit: 30,
                window: Duration::from_millis(WINDOW_MS),
            }),
            Duration::from_millis(100),
            Duration::from_secs(2),
        )
    }

    /// One request against a server counting like the mock's weight pools (a fixed window
    /// from the first arrival, the time left in it on every answer): 3 ms out, 9 ms back.
    /// Returns when it was sent, and whether the server refused it. `reset` feeds the time
    /// left to the limiter.
    async fn call(
        rl: &RateLimiter,
        server: &Mutex<Limiter>,
        t0: Instant,
        reset: bool,
    ) -> (Duration, bool) {
        let budget = ServerBudget::new("pool", 30, WINDOW_MS);
        let mut permit = rl.acquire("pool").await.unwrap();
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_millis(3)).await;
        let (verdict, left) = {
            let mut s = server.lock().unwrap();
            let now = Instant::now();
            let v = s.hit(budget, "key", 1, now);
            (v, s.usage(budget, "key", now).1)
        };
        tokio::time::sleep(Duration::from_millis(9)).await;
        permit.answered();
        drop(permit);
        let refused = !matches!(verdict, Verdict::Allowed { .. });
        if refused {
            rl.too_many("pool", None);
        } else if reset {
            // What was left when the server counted it, as such a header says it.
            rl.window_ends("pool", sent, left);
        }
        (sent - t0, refused)
    }

    /// Three windows' worth of calls at once: when each send went, sorted, and whether any
    /// was refused.
    async fn bursts(reset: bool) -> (Vec<Duration>, bool) {
        let rl = Arc::new(limiter());
        let server = Arc::new(Mutex::new(Limiter::new(None)));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..90)
            .map(|_| {
                let (rl, server) = (rl.clone(), server.clone());
                tokio::spawn(async move { call(&rl, &server, t0, reset).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        let refused = out.iter().any(|(_, r)| *r);
        let mut at: Vec<Duration> = out.into_iter().map(|(t, _)| t).collect();
        at.sort();
        (at, refused)
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_window_s_budget_goes_out_as_soon_as_the_server_s_window_is_over() {
        let ms = Duration::from_millis;
        let (at, refused) = bursts(true).await;
        assert!(!refused, "{at:?}");
        // The server's first window runs from the first arrival (3 ms) to 1,003 ms; the
        // answers (12 ms) say the 1,000 ms left when they were counted, so at 1,012 ms the
        // next 30 go out at once, and likewise at 2,024 ms (the second window began with
        // their arrival at 1,015 ms).
        assert!(at[..30].iter().all(|t| *t == ms(0)), "{at:?}");
        assert!(at[30..60].iter().all(|t| *t == ms(1012)), "{at:?}");
        assert!(at[60..].iter().all(|t| *t == ms(2024)), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_the_time_left_our_own_window_holds_the_next_budget_a_margin_longer() {
        let ms = Duration::from_millis;
        let (at, refused) = bursts(false).await;
        assert!(!refused, "{at:?}");
        // Counted from their answers (12 ms) with a 5% margin: 1,062 ms, then 2,124 ms.
        assert!(at[30..60].iter().all(|t| *t == ms(1062)), "{at:?}");
        assert!(at[60..].iter().all(|t| *t == ms(2124)), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_answered_after_the_window_may_have_ended_counts_in_the_next() {
        // A window of 30, all sent; one (a slow answer) comes back only after the window may
        // have ended, so the server may have counted it in the next window: the next window
        // grants 29, not 30.
        let rl = limiter();
        let mut fast: Vec<_> = futures::future::join_all((0..29).map(|_| rl.acquire("pool")))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let mut slow = rl.acquire("pool").await.unwrap();
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        for p in &mut fast {
            p.answered();
        }
        drop(fast);
        // The answers said 990 ms were left: the window ends between 990 ms and 1,000 ms.
        rl.window_ends("pool", sent, Duration::from_millis(990));
        tokio::time::sleep(Duration::from_millis(985)).await;
        slow.answered();
        drop(slow);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(rl.ready_in("pool"), Duration::ZERO);
        let mut granted = Vec::new();
        while let Some(p) = futures::FutureExt::now_or_never(rl.acquire("pool")) {
            granted.push(p.unwrap());
        }
        assert_eq!(granted.len(), 29);
    }
}
