//! A fake in-memory exchange for the step kinds' tests: closed-order queries silently
//! truncate at the per-call cap, a deleted key fails with `invalid_access_key`, missing scopes
//! fail with `out_of_scope`; keys share one account, so a leaked key and a read-only one see
//! the same orders. Every call is counted; a key can be set to die after N calls, a scope to be
//! denied, a call to be unsupported, `api_keys` to hang or fail.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use respond::exchange::*;
use rust_decimal::Decimal;

#[derive(Default)]
pub struct Account {
    pub closed: Vec<Order>,
    pub open: Vec<Order>,
    pub withdrawals: Vec<Transfer>,
    pub deposits: Vec<Transfer>,
    pub addresses: Vec<WithdrawalAddress>,
    pub fills: BTreeMap<String, Vec<Fill>>,
    pub keys: Vec<(String, DateTime<Utc>)>,
}

pub struct Fake {
    pub caps: Capabilities,
    pub access: String,
    pub account: Arc<Mutex<Account>>,
    pub dead: AtomicBool,
    /// The key dies after this many authenticated calls.
    pub die_after: Option<u32>,
    pub denied: HashSet<&'static str>,
    /// Calls this exchange does not offer.
    pub unsupported: HashSet<&'static str>,
    pub probe: Option<PermissionProbe>,
    pub calls: Mutex<BTreeMap<&'static str, u32>>,
    /// `api_keys` answers after this long (a hanging request).
    pub api_keys_delay: Option<std::time::Duration>,
    /// `api_keys` fails with this error from its n-th call on (n, error).
    pub api_keys_error: Option<(u32, fn() -> Error)>,
}

pub fn caps(cap: u32) -> Capabilities {
    Capabilities {
        name: "upbit".into(),
        revoke_key_by_api: false,
        revoke_after_containment: false,
        read_key_permissions: true,
        batch_cancel: true,
        cancel_withdrawals: true,
        fills: FillsSource::PerOrder,
        closed_orders_max_window_secs: Some(7 * 86_400),
        closed_orders_max_per_call: cap,
        history_needs_symbol: false,
        client_id_field: "identifier".into(),
        local_zone: respond::exchange::upbit::KST,
        manual_revoke_instructions_en:
            "Upbit → My Page → Open API management → delete the key (expires {expire_at}, 2FA)"
                .into(),
        manual_revoke_instructions_local: "업비트 → 마이페이지 → Open API 관리 → 키 삭제".into(),
        local_language: "ko".into(),
    }
}

pub fn api_err(status: u16, code: &str, kind: ErrorKind, message: &str) -> Error {
    Error::Api {
        exchange: "upbit".into(),
        status,
        code: code.into(),
        kind,
        message: message.into(),
        advice: "test".into(),
    }
}

pub fn dead_err() -> Error {
    api_err(
        401,
        "invalid_access_key",
        ErrorKind::KeyInvalid,
        "잘못된 엑세스 키입니다.",
    )
}

pub fn scope_err() -> Error {
    api_err(
        403,
        "out_of_scope",
        ErrorKind::PermissionDenied,
        "권한이 부족합니다.",
    )
}

impl Fake {
    pub fn new(access: &str, account: Arc<Mutex<Account>>, cap: u32) -> Fake {
        account
            .lock()
            .unwrap()
            .keys
            .push((access.to_string(), t0() + Duration::days(300)));
        Fake {
            caps: caps(cap),
            access: access.into(),
            account,
            dead: AtomicBool::new(false),
            die_after: None,
            denied: HashSet::new(),
            unsupported: HashSet::new(),
            probe: None,
            calls: Mutex::new(BTreeMap::new()),
            api_keys_delay: None,
            api_keys_error: None,
        }
    }
    pub fn calls(&self, what: &str) -> u32 {
        *self.calls.lock().unwrap().get(what).unwrap_or(&0)
    }
    pub fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }
    pub fn auth(&self, what: &'static str, scope: &'static str) -> Result<()> {
        let n = {
            let mut c = self.calls.lock().unwrap();
            *c.entry(what).or_default() += 1;
            c.values().sum::<u32>()
        };
        if self.die_after.is_some_and(|d| n > d) {
            self.dead.store(true, Ordering::SeqCst);
        }
        if self.dead.load(Ordering::SeqCst) {
            return Err(dead_err());
        }
        if self.unsupported.contains(what) {
            return Err(Error::Unsupported {
                exchange: "fake".into(),
                what: what.into(),
            });
        }
        if self.denied.contains(scope) {
            return Err(scope_err());
        }
        Ok(())
    }
}

#[async_trait]
impl Exchange for Fake {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn key_id_masked(&self) -> String {
        respond::secret::mask_key(&self.access)
    }
    async fn server_time(&self) -> Result<ServerTime> {
        let local = Utc::now();
        Ok(ServerTime {
            server: local + Duration::milliseconds(150),
            local,
            offset_ms: 150,
        })
    }
    async fn balances(&self) -> Result<Vec<Balance>> {
        self.auth("balances", "view_account")?;
        Ok(vec![Balance {
            currency: "KRW".into(),
            free: Decimal::new(1_000_000, 0),
            locked: Decimal::ZERO,
            avg_buy_price: None,
            unit_currency: Some("KRW".into()),
        }])
    }
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        self.auth("api_keys", "")?;
        if let Some(d) = self.api_keys_delay {
            tokio::time::sleep(d).await;
        }
        if let Some((from, e)) = self.api_keys_error {
            if self.calls("api_keys") >= from {
                return Err(e());
            }
        }
        Ok(self
            .account
            .lock()
            .unwrap()
            .keys
            .iter()
            .map(|(k, exp)| ApiKeyInfo {
                access_key_masked: respond::secret::mask_key(k),
                is_current: *k == self.access,
                expire_at: Some(*exp),
                scopes: None,
                allowed_ips: None,
            })
            .collect())
    }
    async fn probe_permissions(&self) -> Result<PermissionProbe> {
        self.auth("probe", "")?;
        self.probe
            .clone()
            .ok_or_else(|| Error::Config("no probe configured".into()))
    }
    async fn open_orders(&self) -> Result<Vec<Order>> {
        self.auth("open_orders", "view_orders")?;
        Ok(self.account.lock().unwrap().open.clone())
    }
    async fn closed_orders(&self, q: &ClosedOrdersQuery) -> Result<Vec<Order>> {
        self.auth("closed_orders", "view_orders")?;
        assert!(
            q.window.to - q.window.from <= Duration::days(7),
            "window over 7 days"
        );
        let mut v: Vec<Order> = self
            .account
            .lock()
            .unwrap()
            .closed
            .iter()
            .filter(|o| o.created_at >= q.window.from && o.created_at < q.window.to)
            .filter(|o| q.market.as_ref().map_or(true, |m| *m == o.market))
            .cloned()
            .collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.created_at));
        // Like Upbit: the excess is silently dropped.
        v.truncate(q.limit.min(self.caps.closed_orders_max_per_call) as usize);
        Ok(v)
    }
    /// Like Upbit: newest first, the excess dropped.
    fn closed_orders_full_page(&self) -> respond::exchange::FullPage {
        respond::exchange::FullPage::Newest
    }
    async fn order_with_fills(&self, order: &OrderRef) -> Result<(Order, Vec<Fill>)> {
        let id = order.id.as_str();
        self.auth("order", "view_orders")?;
        let a = self.account.lock().unwrap();
        let o = a
            .closed
            .iter()
            .chain(a.open.iter())
            .find(|o| o.id == id)
            .cloned()
            .ok_or_else(|| {
                api_err(
                    404,
                    "order_not_found",
                    ErrorKind::NotFound,
                    "주문을 찾지 못했습니다.",
                )
            })?;
        Ok((o, a.fills.get(id).cloned().unwrap_or_default()))
    }
    async fn withdrawals(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.auth("withdrawals", "view_withdrawals")?;
        Ok(self
            .account
            .lock()
            .unwrap()
            .withdrawals
            .iter()
            .filter(|t| t.created_at >= since)
            .cloned()
            .collect())
    }
    async fn deposits(&self, since: DateTime<Utc>) -> Result<Vec<Transfer>> {
        self.auth("deposits", "view_deposits")?;
        Ok(self
            .account
            .lock()
            .unwrap()
            .deposits
            .iter()
            .filter(|t| t.created_at >= since)
            .cloned()
            .collect())
    }
    async fn withdrawal_addresses(&self) -> Result<Vec<WithdrawalAddress>> {
        self.auth("addresses", "view_withdrawals")?;
        Ok(self.account.lock().unwrap().addresses.clone())
    }
    async fn cancel_all_open_orders(&self) -> Result<CancelReport> {
        self.auth("cancel_all", "make_orders")?;
        let mut a = self.account.lock().unwrap();
        let cancelled: Vec<Order> = a
            .open
            .drain(..)
            .map(|mut o| {
                o.state = OrderState::Cancelled;
                o
            })
            .collect();
        a.closed.extend(cancelled.iter().cloned());
        Ok(CancelReport {
            cancelled,
            ..CancelReport::default()
        })
    }
    async fn cancel_order(&self, _order: &OrderRef) -> Result<Order> {
        unreachable!("the steps use cancel_all_open_orders")
    }
    async fn cancel_withdrawal(&self, id: &str) -> Result<Transfer> {
        self.auth("cancel_withdrawal", "make_withdrawals")?;
        let mut a = self.account.lock().unwrap();
        let t = a.withdrawals.iter_mut().find(|t| t.id == id).unwrap();
        t.is_cancelable = false;
        t.state = "CANCELLED".into();
        t.status = respond::exchange::TransferStatus::Failed;
        Ok(t.clone())
    }
    async fn revoke_key(&self) -> Result<()> {
        self.auth("revoke", "")?;
        self.dead.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn candles(
        &self,
        market: &Market,
        unit: u32,
        to: DateTime<Utc>,
        count: u32,
    ) -> Result<Vec<Candle>> {
        *self.calls.lock().unwrap().entry("candles").or_default() += 1;
        assert_eq!(unit, 60);
        assert!(count <= 200);
        // Hourly candles back to t0 - 30 days, newest first, strictly before `to`.
        let floor = t0() - Duration::days(30);
        let mut start = to - Duration::hours(1);
        let mut out = Vec::new();
        while out.len() < count as usize && start >= floor {
            out.push(Candle {
                market: market.clone(),
                start,
                open: Decimal::ONE,
                high: Decimal::ONE,
                low: Decimal::ONE,
                close: Decimal::ONE,
                volume: Decimal::ONE,
                value: Decimal::ONE,
            });
            start -= Duration::hours(1);
        }
        Ok(out)
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

pub fn order(id: &str, market: &str, at: DateTime<Utc>, state: OrderState) -> Order {
    Order {
        id: id.into(),
        client_id: None,
        market: respond::exchange::upbit::market(market),
        side: Side::Buy,
        order_type: OrderType::Limit,
        native_type: "limit".into(),
        state,
        price: Some(Decimal::new(100, 0)),
        quote_amount: None,
        volume: Some(Decimal::ONE),
        remaining_volume: None,
        executed_volume: if state == OrderState::Done {
            Decimal::ONE
        } else {
            Decimal::ZERO
        },
        executed_funds: None,
        paid_fee: Decimal::ZERO,
        created_at: at,
        created_at_local: String::new(),
        trades_count: u32::from(state == OrderState::Done),
        provenance: None,
    }
}

pub fn transfer(id: &str, cancelable: bool) -> Transfer {
    Transfer {
        id: id.into(),
        kind: TransferKind::Withdrawal,
        currency: "BTC".into(),
        net_type: Some("BTC".into()),
        txid: None,
        state: if cancelable { "WAITING" } else { "DONE" }.into(),
        status: if cancelable {
            respond::exchange::TransferStatus::Pending
        } else {
            respond::exchange::TransferStatus::Completed
        },
        amount: Decimal::ONE,
        fee: None,
        address: Some("bc1qattackeraddress0000000000000000".into()),
        created_at: Utc::now() - Duration::hours(1),
        created_at_local: String::new(),
        done_at: None,
        is_cancelable: cancelable,
        provenance: None,
    }
}
