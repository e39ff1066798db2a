//! What a run has seen of one key: [`Watched`] wraps any adapter and records whether the
//! exchange ever accepted the key, so a refusal can be read correctly.
//!
//! A key refused as unknown after it worked was revoked (what containment wants). A key
//! refused from its very first request was never accepted here: mistyped, another account's,
//! deleted before the run, expired, or its secret is wrong. Its refusal proves nothing about a
//! revocation, and nothing can be done with it, so the wrapper turns that refusal into
//! [`Error::NeverAccepted`] (which stops the run) and answers every later call with the same
//! error without sending anything.
//!
//! Calls run concurrently (the snapshot and the permission probe start together), and the
//! user may delete the key within the first second: a refusal may arrive before the answer
//! that accepted the key. So before concluding "never accepted", a refused call waits until no
//! other call of the key is in flight and looks again. Acceptance is also taken from the
//! adapter's own per-request view ([`Exchange::key_accepted_at`]) and from what the run being
//! resumed saw ([`Watched::remember_accepted`], from its raw responses).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{
    ApiKeyInfo, Balance, CallPlan, CancelReport, Candle, Capabilities, ClosedOrdersQuery, Error,
    ErrorKind, Exchange, Fill, FillsQuery, Market, MarketInfo, MarketScan, MarketScanRequest,
    Order, OrderRef, PermissionProbe, Result, ServerTime, Transfer, Window, WithdrawalAddress,
};

#[derive(Debug, Clone, Default)]
struct State {
    in_flight: usize,
    accepted_at: Option<DateTime<Utc>>,
    /// The refusal that showed the key was never accepted: (error code, kind, message).
    never: Option<(String, ErrorKind, String)>,
}

/// An adapter whose key is watched (see the module doc).
pub struct Watched {
    inner: Arc<dyn Exchange>,
    role: String,
    state: watch::Sender<State>,
}

/// Counts a call as in flight until it ends, even when its future is dropped (a step cut off
/// by its timeout).
struct InFlight<'a>(&'a watch::Sender<State>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|s| s.in_flight -= 1);
    }
}

impl Watched {
    /// Wraps `inner`; `role` names the key in messages (`the key under investigation`).
    pub fn new(inner: Arc<dyn Exchange>, role: impl Into<String>) -> Self {
        Watched {
            inner,
            role: role.into(),
            state: watch::Sender::new(State::default()),
        }
    }

    /// Records that the key was accepted before (by the run being resumed).
    pub fn remember_accepted(&self, at: DateTime<Utc>) {
        self.state.send_modify(|s| {
            if s.accepted_at.map_or(true, |a| at < a) {
                s.accepted_at = Some(at);
            }
        });
    }

    /// When the exchange first accepted the key, if it did.
    pub fn accepted_at(&self) -> Option<DateTime<Utc>> {
        let own = self.state.borrow().accepted_at;
        match (own, self.inner.key_accepted_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The refusal that showed the key was never accepted, as the error every call returns.
    pub fn never_accepted(&self) -> Option<Error> {
        let never = self.state.borrow().never.clone();
        never.map(|(code, kind, message)| self.never_error(code, kind, message))
    }

    fn never_error(&self, code: String, kind: ErrorKind, message: String) -> Error {
        let exchange = self.inner.capabilities().name.clone();
        let advice = crate::exchange::registry::get(&exchange)
            .map(|d| (d.never_accepted_advice)(kind, &code))
            .unwrap_or("check the key you entered and run again, or continue with a read-only key")
            .to_string();
        Error::NeverAccepted(Box::new(super::KeyRefusal {
            exchange,
            role: self.role.clone(),
            key: self.inner.key_id_masked(),
            code,
            kind,
            message,
            advice,
        }))
    }

    async fn call<T, Fut>(&self, fut: Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        if let Some(e) = self.never_accepted() {
            return Err(e);
        }
        self.state.send_modify(|s| s.in_flight += 1);
        let result = {
            let _guard = InFlight(&self.state);
            fut.await
        };
        match &result {
            Ok(_) => self.accepted(crate::time::now()),
            Err(e) if e.proves_key_accepted() => self.accepted(crate::time::now()),
            Err(e) if e.refuses_key() && self.accepted_at().is_none() => {
                // Let every other call of this key finish: one of them may have been accepted
                // just before the key was deleted.
                let mut rx = self.state.subscribe();
                let _ = rx
                    .wait_for(|s| s.in_flight == 0 || s.accepted_at.is_some())
                    .await;
                if self.accepted_at().is_none() {
                    let (code, kind, message) = match e {
                        Error::Api {
                            code,
                            kind,
                            message,
                            ..
                        } => (code.clone(), *kind, message.clone()),
                        other => (String::new(), ErrorKind::Other, other.to_string()),
                    };
                    self.state.send_modify(|s| {
                        if s.never.is_none() {
                            s.never = Some((code, kind, message));
                        }
                    });
                    return Err(self.never_accepted().expect("just recorded"));
                }
            }
            Err(_) => {}
        }
        result
    }

    fn accepted(&self, at: DateTime<Utc>) {
        self.state.send_if_modified(|s| {
            if s.accepted_at.is_none() {
                s.accepted_at = Some(at);
                true
            } else {
                false
            }
        });
    }
}

#[async_trait]
impl Exchange for Watched {
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    fn key_id_masked(&self) -> String {
        self.inner.key_id_masked()
    }
    async fn server_time(&self) -> Result<ServerTime> {
        // Public: says nothing about the key.
        self.inner.server_time().await
    }
    async fn balances(&self) -> Result<Vec<Balance>> {
        self.call(self.inner.balances()).await
    }
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        self.call(self.inner.api_keys()).await
    }
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        self.call(self.inner.probe_permissions()).await
    }
    async fn open_orders(&self) -> Result<Vec<Order>> {
        self.call(self.inner.open_orders()).await
    }
    async fn closed_orders(&self, query: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        self.call(self.inner.closed_orders(query)).await
    }
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        self.call(self.inner.order_with_fills(order)).await
    }
    async fn fills(&self, query: &FillsQuery) -> Result<Vec<Fill>> {
        self.call(self.inner.fills(query)).await
    }
    async fn markets(&self) -> Result<Vec<MarketInfo>> {
        // Public market data: says nothing about the key.
        self.inner.markets().await
    }
    async fn history_markets(&self, request: &MarketScanRequest) -> Result<MarketScan> {
        self.call(self.inner.history_markets(request)).await
    }
    fn history_plan(&self, markets: usize, window: Window) -> Option<CallPlan> {
        self.inner.history_plan(markets, window)
    }
    fn closed_orders_full_page(&self) -> super::FullPage {
        self.inner.closed_orders_full_page()
    }
    fn closed_orders_page(&self) -> u32 {
        self.inner.closed_orders_page()
    }
    fn market(&self, symbol: &str) -> Result<Market> {
        self.inner.market(symbol)
    }
    async fn withdrawals(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.call(self.inner.withdrawals(since)).await
    }
    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.call(self.inner.deposits(since)).await
    }
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        self.call(self.inner.withdrawal_addresses()).await
    }
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        self.call(self.inner.cancel_all_open_orders()).await
    }
    async fn cancel_all_open_orders_listed(
        &self,
        first: &super::FirstListing,
    ) -> Result<CancelReport> {
        self.call(self.inner.cancel_all_open_orders_listed(first))
            .await
    }
    async fn cancel_order(&self, order: &OrderRef) -> Result<Order> {
        self.call(self.inner.cancel_order(order)).await
    }
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer> {
        self.call(self.inner.cancel_withdrawal(id)).await
    }
    async fn revoke_key(&self) -> Result<()> {
        self.call(self.inner.revoke_key()).await
    }
    async fn candles(
        &self,
        market: &Market,
        unit_minutes: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        // Public market data: says nothing about the key.
        self.inner.candles(market, unit_minutes, to, count).await
    }
    fn budget_status(&self) -> Option<String> {
        self.inner.budget_status()
    }
    fn key_accepted_at(&self) -> Option<DateTime<Utc>> {
        self.accepted_at()
    }
    fn credentials_fingerprint(&self) -> String {
        self.inner.credentials_fingerprint()
    }
}
