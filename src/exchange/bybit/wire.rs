//! Bybit v5 wire formats: the one place that turns Bybit's JSON into normalized types.
//!
//! Both the live client ([`super::client`]) and the offline rebuild ([`super::decode`]) parse
//! through these functions, with the same market list ([`Markets`], from `instruments-info`).
//! Every answer is an envelope `{"retCode", "retMsg", "result", "retExtInfo", "time"}`;
//! numbers are decimal strings (some empty: `""` is "none"), times epoch milliseconds as
//! strings, lists come as `result.list` (orders, fills) or `result.rows` (transfers) with a
//! `nextPageCursor` (empty on the last page). Every struct takes optional fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::exchange::decimal::parse_decimal;
pub use crate::exchange::decimal::{ODec, Text};
use crate::exchange::replay::DecodeError;
use crate::exchange::{
    ApiKeyInfo, Balance, Candle, CompactString, Fill, Market, MarketCache, MarketInfo, Order,
    OrderState, OrderType, Provenance, Side, Transfer, TransferKind, TransferStatus,
    WithdrawalAddress,
};

pub type WireError = DecodeError;
pub type WireResult<T> = std::result::Result<T, WireError>;

/// The market list symbols are read with, by native symbol.
pub type Markets = BTreeMap<String, MarketInfo>;

// ---------------------------------------------------------------- envelope and scalars

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    ret_code: Option<serde_json::Value>,
    ret_msg: Option<String>,
    result: Option<T>,
}

fn code_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The `(retCode, retMsg)` of an error answer: an envelope whose `retCode` is not 0. `None`
/// for a success or a body that is no Bybit envelope.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let env: Envelope<serde::de::IgnoredAny> = serde_json::from_slice(body).ok()?;
    let code = code_of(env.ret_code.as_ref()?)?;
    (code != "0").then(|| (code, env.ret_msg.unwrap_or_default()))
}

/// The `result` of a successful envelope.
pub fn result<T: DeserializeOwned>(body: &[u8]) -> WireResult<T> {
    let env: Envelope<T> = crate::exchange::replay::json(body)?;
    if let Some(code) = env.ret_code.as_ref().and_then(code_of) {
        if code != "0" {
            return Err(WireError::shape(format!(
                "an error answer (retCode {code}) where data was expected"
            )));
        }
    }
    env.result
        .ok_or_else(|| WireError::shape("an envelope without `result`"))
}

fn d(v: &ODec) -> Option<Decimal> {
    v.0
}

/// Epoch milliseconds (as text) as a UTC time.
pub fn ms_text(t: &str) -> WireResult<DateTime<Utc>> {
    t.trim()
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| WireError::shape(format!("not a time in epoch milliseconds: {t:?}")))
}

/// The market of a symbol: from the market list, else split at a quote coin Bybit lists; a
/// symbol neither knows is its own base with an empty quote.
pub fn market_of(markets: &Markets, cache: &mut MarketCache, symbol: &str) -> Market {
    cache
        .get(symbol, |s| {
            Ok::<_, std::convert::Infallible>(match markets.get(s) {
                Some(m) => m.market.clone(),
                None => match super::split_symbol(s) {
                    Some((b, q)) => Market::new(s, b, q),
                    None => Market::new(s, s, ""),
                },
            })
        })
        .unwrap_or_else(|e| match e {})
}

/// A list page: its rows and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireList<T> {
    #[serde(default = "Vec::new", alias = "rows")]
    list: Vec<T>,
    next_page_cursor: Option<String>,
}

fn page<T: DeserializeOwned>(body: &[u8]) -> WireResult<(Vec<T>, Option<String>)> {
    let l: WireList<T> = result(body)?;
    Ok((l.list, l.next_page_cursor.filter(|c| !c.is_empty())))
}

/// The cursor of a list answer (`None` on the last page).
pub fn next_cursor(body: &[u8]) -> WireResult<Option<String>> {
    Ok(page::<serde::de::IgnoredAny>(body)?.1)
}

// ---------------------------------------------------------------- time and markets

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTime {
    time_second: Option<Text>,
    time_nano: Option<Text>,
}

/// `GET /v5/market/time`: the server's clock, epoch ms (from `timeNano`, else `timeSecond`).
pub fn parse_server_time(body: &[u8]) -> WireResult<i64> {
    let t: WireTime = result(body)?;
    if let Some(n) = t.time_nano.and_then(|n| n.0.parse::<i128>().ok()) {
        return Ok((n / 1_000_000) as i64);
    }
    t.time_second
        .and_then(|s| s.0.parse::<i64>().ok())
        .map(|s| s * 1000)
        .ok_or_else(|| WireError::shape("a time answer without timeNano or timeSecond"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInstrument {
    symbol: String,
    base_coin: String,
    quote_coin: String,
    status: Option<String>,
    lot_size_filter: Option<WireLot>,
    price_filter: Option<WirePrice>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLot {
    #[serde(default)]
    base_precision: ODec,
    #[serde(default)]
    min_order_amt: ODec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePrice {
    #[serde(default)]
    tick_size: ODec,
}

/// `GET /v5/market/instruments-info?category=spot`: one page of the market list.
pub fn parse_instruments(body: &[u8]) -> WireResult<Page<MarketInfo>> {
    let (rows, next) = page::<WireInstrument>(body)?;
    Ok(Page {
        rows: rows
            .into_iter()
            .map(|i| MarketInfo {
                market: Market::new(i.symbol.as_str(), i.base_coin, i.quote_coin),
                status: i.status,
                tick_size: i.price_filter.as_ref().and_then(|p| d(&p.tick_size)),
                lot_size: i
                    .lot_size_filter
                    .as_ref()
                    .and_then(|l| d(&l.base_precision)),
                min_notional: i.lot_size_filter.as_ref().and_then(|l| d(&l.min_order_amt)),
            })
            .collect(),
        next,
    })
}

// ---------------------------------------------------------------- account and key

#[derive(Deserialize)]
struct WireWallets {
    #[serde(default)]
    list: Vec<WireWallet>,
}

#[derive(Deserialize)]
struct WireWallet {
    #[serde(default)]
    coin: Vec<WireCoin>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCoin {
    coin: String,
    #[serde(default)]
    wallet_balance: ODec,
    #[serde(default)]
    locked: ODec,
}

/// `GET /v5/account/wallet-balance?accountType=UNIFIED`: per coin, free = walletBalance −
/// locked (the `free` field is deprecated for unified accounts); zero balances are left out.
pub fn parse_balances(body: &[u8]) -> WireResult<Vec<Balance>> {
    let w: WireWallets = result(body)?;
    Ok(w.list
        .into_iter()
        .flat_map(|a| a.coin)
        .map(|c| {
            let total = d(&c.wallet_balance).unwrap_or_default();
            let locked = d(&c.locked).unwrap_or_default();
            Balance {
                currency: c.coin,
                free: (total - locked).max(Decimal::ZERO),
                locked,
                avg_buy_price: None,
                unit_currency: None,
            }
        })
        .filter(|b| !(b.free.is_zero() && b.locked.is_zero()))
        .collect())
}

/// `GET /v5/user/query-api`: the calling key's settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    #[serde(default)]
    pub read_only: i64,
    #[serde(default)]
    pub permissions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub ips: Vec<String>,
    pub note: Option<String>,
    #[serde(rename = "type")]
    pub key_type: Option<i64>,
    pub deadline_day: Option<i64>,
    pub expired_at: Option<String>,
    pub created_at: Option<String>,
    pub is_master: Option<bool>,
}

impl KeyInfo {
    /// Every permission held, as `Family.Permission` (the names of [`super::SCOPES`]).
    pub fn held(&self) -> Vec<String> {
        self.permissions
            .iter()
            .flat_map(|(fam, perms)| perms.iter().map(move |p| format!("{fam}.{p}")))
            .collect()
    }

    /// Whether it holds `Family.Permission`.
    pub fn holds(&self, scope: &str) -> bool {
        self.held().iter().any(|h| h == scope)
    }

    /// A transfer or withdrawal permission: Bybit lets the key delete or modify itself.
    pub fn can_revoke_itself(&self) -> bool {
        super::SELF_REVOKE_SCOPES.iter().any(|s| self.holds(s))
    }

    /// Read only (`readOnly` 1).
    pub fn is_read_only(&self) -> bool {
        self.read_only == 1
    }

    /// The bound IPs; empty when the key is unrestricted (no list, or `*`).
    pub fn bound_ips(&self) -> Vec<String> {
        self.ips
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "*")
            .map(String::from)
            .collect()
    }

    /// When the key expires (`expiredAt`; keys bound to IPs do not).
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expired_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// The key as the account's key list shows it.
    pub fn key_info(&self, key_masked: &str) -> ApiKeyInfo {
        ApiKeyInfo {
            access_key_masked: key_masked.to_string(),
            is_current: true,
            expire_at: self.expires_at(),
            scopes: Some(self.held()),
            allowed_ips: Some(self.bound_ips()),
        }
    }
}

pub fn parse_key(body: &[u8]) -> WireResult<KeyInfo> {
    result(body)
}

pub fn parse_api_keys(body: &[u8], key_masked: &str) -> WireResult<Vec<ApiKeyInfo>> {
    Ok(vec![parse_key(body)?.key_info(key_masked)])
}

// ---------------------------------------------------------------- orders and fills

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    order_id: Text,
    order_link_id: Option<String>,
    symbol: String,
    #[serde(default)]
    price: ODec,
    #[serde(default)]
    qty: ODec,
    side: String,
    order_status: String,
    order_type: String,
    market_unit: Option<String>,
    #[serde(default)]
    cum_exec_qty: ODec,
    #[serde(default)]
    cum_exec_value: ODec,
    #[serde(default)]
    cum_exec_fee: ODec,
    created_time: Text,
    updated_time: Option<Text>,
}

fn side(s: &str) -> WireResult<Side> {
    match s {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        other => Err(WireError::shape(format!("unknown side {other:?}"))),
    }
}

/// Bybit's order type as the normalized kind.
pub fn order_type(native: &str) -> OrderType {
    match native {
        "Limit" => OrderType::Limit,
        "Market" => OrderType::Market,
        _ => OrderType::Other,
    }
}

/// Bybit's order status as the normalized state.
pub fn order_state(status: &str) -> OrderState {
    match status {
        "New" | "PartiallyFilled" | "Untriggered" | "Triggered" | "Created" => OrderState::Open,
        "Filled" => OrderState::Done,
        "Cancelled" | "PartiallyFilledCanceled" | "Deactivated" => OrderState::Cancelled,
        _ => OrderState::Other,
    }
}

fn positive(v: Option<Decimal>) -> Option<Decimal> {
    v.filter(|x| *x > Decimal::ZERO)
}

fn order_of(
    w: WireOrder,
    markets: &Markets,
    cache: &mut MarketCache,
    prov: Option<Arc<Provenance>>,
) -> WireResult<Order> {
    let ot = order_type(&w.order_type);
    let s = side(&w.side)?;
    let qty = positive(d(&w.qty));
    // A spot market buy's qty is a quote amount unless it says `baseCoin`; a market sell's a
    // base volume unless it says `quoteCoin`.
    let qty_is_quote = ot == OrderType::Market
        && match w.market_unit.as_deref().unwrap_or("") {
            "baseCoin" => false,
            "quoteCoin" => true,
            _ => s == Side::Buy,
        };
    let (volume, quote_amount) = if qty_is_quote {
        (None, qty)
    } else {
        (qty, None)
    };
    let executed = d(&w.cum_exec_qty).unwrap_or_default();
    let created = ms_text(&w.created_time.0)?;
    let _ = w.updated_time;
    Ok(Order {
        id: w.order_id.0,
        client_id: w
            .order_link_id
            .filter(|c| !c.is_empty())
            .map(CompactString::from),
        market: market_of(markets, cache, &w.symbol),
        side: s,
        order_type: ot,
        native_type: w.order_type.as_str().into(),
        state: order_state(&w.order_status),
        price: if ot == OrderType::Limit {
            positive(d(&w.price))
        } else {
            None
        },
        quote_amount,
        volume,
        remaining_volume: volume.map(|v| (v - executed).max(Decimal::ZERO)),
        executed_volume: executed,
        executed_funds: d(&w.cum_exec_value).filter(|v| *v >= Decimal::ZERO),
        // Spot fees are per fill, in the coin received (`cumFeeDetail`): the fills carry them.
        paid_fee: d(&w.cum_exec_fee).unwrap_or_default().max(Decimal::ZERO),
        created_at: created,
        created_at_local: w.created_time.0.clone(),
        trades_count: 0,
        provenance: prov,
    })
}

/// `GET /v5/order/realtime`, `GET /v5/order/history`: one page of orders.
pub fn parse_orders(
    body: &[u8],
    markets: &Markets,
    prov: Option<Provenance>,
) -> WireResult<Page<Order>> {
    let (rows, next) = page::<WireOrder>(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    let rows = rows
        .into_iter()
        .map(|w| order_of(w, markets, &mut cache, prov.clone()))
        .collect::<WireResult<Vec<_>>>()?;
    Ok(Page { rows, next })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCancelled {
    order_id: Text,
}

/// `POST /v5/order/cancel-all` (`result.list`) and `POST /v5/order/cancel` (`result`): the ids
/// of the orders Bybit took the cancel for (the cancel is asynchronous: states are read back).
pub fn parse_cancelled(body: &[u8]) -> WireResult<Vec<String>> {
    #[derive(Deserialize)]
    struct R {
        list: Option<Vec<WireCancelled>>,
        #[serde(rename = "orderId")]
        order_id: Option<Text>,
    }
    let r: R = result(body)?;
    Ok(match (r.list, r.order_id) {
        (Some(l), _) => l.into_iter().map(|c| c.order_id.0).collect(),
        (None, Some(id)) => vec![id.0],
        (None, None) => Vec::new(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireExecution {
    symbol: String,
    order_id: Text,
    side: String,
    exec_id: Text,
    #[serde(default)]
    exec_price: ODec,
    #[serde(default)]
    exec_qty: ODec,
    #[serde(default)]
    exec_value: ODec,
    #[serde(default)]
    exec_fee: ODec,
    fee_currency: Option<String>,
    exec_time: Text,
    exec_type: Option<String>,
}

/// `GET /v5/execution/list`: one page of fills (trades only). The fee is in the quote currency:
/// one paid in the base coin is valued at the fill's price; one in a third coin is unknown.
pub fn parse_executions(
    body: &[u8],
    markets: &Markets,
    prov: Option<Provenance>,
) -> WireResult<Page<Fill>> {
    let (rows, next) = page::<WireExecution>(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    let mut out = Vec::with_capacity(rows.len());
    for t in rows {
        if t.exec_type.as_deref().is_some_and(|x| x != "Trade") {
            continue;
        }
        let market = market_of(markets, &mut cache, &t.symbol);
        let price = d(&t.exec_price).unwrap_or_default();
        let qty = d(&t.exec_qty).unwrap_or_default();
        let fee = match (d(&t.exec_fee), t.fee_currency.as_deref()) {
            (Some(f), Some(c)) if c == market.quote.as_str() => Some(f),
            (Some(f), Some(c)) if c == market.base.as_str() => Some(f * price),
            (Some(f), _) if f.is_zero() => Some(Decimal::ZERO),
            _ => None,
        };
        out.push(Fill {
            id: t.exec_id.0,
            order_id: t.order_id.0,
            side: side(&t.side)?,
            market,
            price,
            volume: qty,
            funds: d(&t.exec_value).unwrap_or(price * qty),
            fee,
            created_at: ms_text(&t.exec_time.0)?,
            created_at_local: t.exec_time.0,
            provenance: prov.clone(),
        });
    }
    Ok(Page { rows: out, next })
}

// ---------------------------------------------------------------- transfers

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWithdrawal {
    withdraw_id: Text,
    coin: String,
    chain: Option<String>,
    #[serde(default)]
    amount: ODec,
    #[serde(rename = "txID")]
    tx_id: Option<String>,
    status: Option<String>,
    to_address: Option<String>,
    tag: Option<String>,
    #[serde(default)]
    withdraw_fee: ODec,
    create_time: Text,
    update_time: Option<Text>,
}

/// A withdrawal's status in neutral terms, and whether it can still be cancelled.
pub fn withdrawal_status(status: &str) -> (TransferStatus, bool) {
    match status {
        "SecurityCheck" | "Pending" => (TransferStatus::Pending, true),
        "MoreInformationRequired" => (TransferStatus::Pending, false),
        "success" | "BlockchainConfirmed" => (TransferStatus::Completed, false),
        "CancelByUser" | "Reject" | "Fail" => (TransferStatus::Failed, false),
        _ => (TransferStatus::Unknown, false),
    }
}

fn with_tag(a: Option<String>, tag: Option<&str>) -> Option<String> {
    a.filter(|a| !a.is_empty()).map(|a| match tag {
        Some(t) if !t.is_empty() => format!("{a} (tag {t})"),
        _ => a,
    })
}

/// `GET /v5/asset/withdraw/query-record`: one page of withdrawals.
pub fn parse_withdrawals(body: &[u8], prov: Option<Provenance>) -> WireResult<Page<Transfer>> {
    let (rows, next) = page::<WireWithdrawal>(body)?;
    let prov = prov.map(Arc::new);
    let rows = rows
        .into_iter()
        .map(|w| {
            let state = w.status.unwrap_or_else(|| "Unknown".into());
            let (status, cancelable) = withdrawal_status(&state);
            Ok(Transfer {
                id: w.withdraw_id.0,
                kind: TransferKind::Withdrawal,
                currency: w.coin,
                net_type: w.chain.filter(|c| !c.is_empty()),
                txid: w.tx_id.filter(|t| !t.is_empty()),
                state,
                status,
                amount: d(&w.amount).unwrap_or_default(),
                fee: d(&w.withdraw_fee),
                address: with_tag(w.to_address, w.tag.as_deref()),
                created_at: ms_text(&w.create_time.0)?,
                created_at_local: w.create_time.0,
                done_at: match status {
                    TransferStatus::Completed | TransferStatus::Failed => w
                        .update_time
                        .filter(|t| !t.0.is_empty())
                        .map(|t| ms_text(&t.0))
                        .transpose()?,
                    _ => None,
                },
                is_cancelable: cancelable,
                provenance: prov.clone(),
            })
        })
        .collect::<WireResult<Vec<_>>>()?;
    Ok(Page { rows, next })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDeposit {
    id: Option<Text>,
    coin: String,
    chain: Option<String>,
    #[serde(default)]
    amount: ODec,
    #[serde(rename = "txID")]
    tx_id: Option<String>,
    status: Option<i64>,
    to_address: Option<String>,
    tag: Option<String>,
    #[serde(default)]
    deposit_fee: ODec,
    success_at: Text,
}

/// A deposit's integer status in words, and in neutral terms.
pub fn deposit_state(status: Option<i64>) -> (&'static str, TransferStatus) {
    match status {
        Some(1) => ("ToBeConfirmed", TransferStatus::Pending),
        Some(2) => ("Processing", TransferStatus::Pending),
        Some(3) => ("Success", TransferStatus::Completed),
        Some(4) => ("Failed", TransferStatus::Failed),
        Some(7) => ("RollbackProcessing", TransferStatus::Pending),
        _ => ("Unknown", TransferStatus::Unknown),
    }
}

/// `GET /v5/asset/deposit/query-record`: one page of deposits (dated by `successAt`, the one
/// time Bybit gives).
pub fn parse_deposits(body: &[u8], prov: Option<Provenance>) -> WireResult<Page<Transfer>> {
    let (rows, next) = page::<WireDeposit>(body)?;
    let prov = prov.map(Arc::new);
    let rows = rows
        .into_iter()
        .map(|w| {
            let (state, status) = deposit_state(w.status);
            let at = ms_text(&w.success_at.0)?;
            Ok(Transfer {
                id: w
                    .id
                    .map(|i| i.0)
                    .filter(|i| !i.is_empty())
                    .or_else(|| w.tx_id.clone())
                    .unwrap_or_default(),
                kind: TransferKind::Deposit,
                currency: w.coin,
                net_type: w.chain.filter(|c| !c.is_empty()),
                txid: w.tx_id.filter(|t| !t.is_empty()),
                state: state.into(),
                status,
                amount: d(&w.amount).unwrap_or_default(),
                fee: d(&w.deposit_fee),
                address: with_tag(w.to_address, w.tag.as_deref()),
                created_at: at,
                created_at_local: w.success_at.0,
                done_at: (status == TransferStatus::Completed).then_some(at),
                is_cancelable: false,
                provenance: prov.clone(),
            })
        })
        .collect::<WireResult<Vec<_>>>()?;
    Ok(Page { rows, next })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAddress {
    coin: String,
    chain: Option<String>,
    address: String,
    tag: Option<String>,
    created_at: Option<Text>,
    create_at: Option<Text>,
}

/// `GET /v5/asset/withdraw/query-address`: one page of the address book (`createdAt` or
/// `createAt`, epoch seconds).
pub fn parse_addresses(body: &[u8]) -> WireResult<Page<WithdrawalAddress>> {
    let (rows, next) = page::<WireAddress>(body)?;
    Ok(Page {
        rows: rows
            .into_iter()
            .map(|a| WithdrawalAddress {
                currency: a.coin,
                net_type: a.chain.filter(|c| !c.is_empty()),
                address: a.address,
                secondary_address: a.tag.filter(|t| !t.is_empty()),
                registered_at: a
                    .created_at
                    .or(a.create_at)
                    .and_then(|t| t.0.parse::<i64>().ok())
                    .and_then(|s| DateTime::from_timestamp(s, 0)),
            })
            .collect(),
        next,
    })
}

/// `POST /v5/asset/withdraw/cancel`: whether Bybit cancelled it (`status` 1).
pub fn parse_withdraw_cancel(body: &[u8]) -> WireResult<bool> {
    #[derive(Deserialize)]
    struct R {
        status: Option<i64>,
    }
    Ok(result::<R>(body)?.status == Some(1))
}

// ---------------------------------------------------------------- market data

/// `GET /v5/market/kline`: arrays of strings `[start, open, high, low, close, volume,
/// turnover]`, newest first (kept so).
pub fn parse_klines(body: &[u8], market: &Market) -> WireResult<Vec<Candle>> {
    #[derive(Deserialize)]
    struct R {
        #[serde(default)]
        list: Vec<Vec<Text>>,
    }
    let r: R = result(body)?;
    r.list
        .into_iter()
        .map(|row| {
            let num = |i: usize| -> WireResult<Decimal> {
                row.get(i)
                    .and_then(|t| parse_decimal(&t.0))
                    .ok_or_else(|| WireError::shape(format!("a kline without field {i}")))
            };
            let start = row
                .first()
                .ok_or_else(|| WireError::shape("a kline without a start time"))?;
            Ok(Candle {
                market: market.clone(),
                start: ms_text(&start.0)?,
                open: num(1)?,
                high: num(2)?,
                low: num(3)?,
                close: num(4)?,
                volume: num(5)?,
                value: num(6)?,
            })
        })
        .collect()
}
