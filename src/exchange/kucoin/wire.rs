//! KuCoin wire formats: the one place that turns KuCoin's JSON into normalized types.
//!
//! Both the live client ([`super::client`]) and the offline rebuild ([`super::decode`]) parse
//! through these functions. Every answer is an envelope `{"code", "data", "msg"}` (`code`
//! `200000` on success); numbers are decimal strings, times epoch milliseconds as JSON numbers
//! (candles: seconds, as strings), and ids of fills can exceed 2^53 (read as text, never
//! through a float). Lists come three ways: a plain array (HF open orders), `{items, lastId}`
//! (HF closed orders and fills, newest first, `lastId` the cursor to older pages) and
//! `{currentPage, pageSize, totalNum, totalPage, items}` (classic orders and fills, wallet
//! histories). Every struct takes optional fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::exchange::decimal::parse_decimal;
use crate::exchange::replay::DecodeError;
use crate::exchange::{
    ApiKeyInfo, Balance, Candle, CompactString, Fill, Market, MarketCache, MarketInfo, Order,
    OrderState, OrderType, Provenance, Side, Transfer, TransferKind, TransferStatus,
};

pub type WireError = DecodeError;
pub type WireResult<T> = std::result::Result<T, WireError>;

/// The market list symbols are read with, by native symbol.
pub type Markets = BTreeMap<String, MarketInfo>;

/// The code of a successful answer.
pub const OK: &str = "200000";

// ---------------------------------------------------------------- envelope and scalars

#[derive(Deserialize)]
struct Envelope<T> {
    code: Option<Text>,
    msg: Option<String>,
    data: Option<T>,
}

/// The `(code, msg)` of an error answer: an envelope whose `code` is not `200000`. `None`
/// for a success or a body that is no KuCoin envelope.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let env: Envelope<serde::de::IgnoredAny> = serde_json::from_slice(body).ok()?;
    let code = env.code?.0;
    (code != OK && !code.is_empty()).then(|| (code, env.msg.unwrap_or_default()))
}

/// The `data` of a successful envelope (`null` data is `T`'s default where it has one: use
/// [`data_opt`] for answers whose data may be `null`).
pub fn data<T: DeserializeOwned>(body: &[u8]) -> WireResult<T> {
    data_opt(body)?.ok_or_else(|| WireError::shape("an envelope without `data`"))
}

/// The `data` of a successful envelope, `None` when it is `null` or absent.
pub fn data_opt<T: DeserializeOwned>(body: &[u8]) -> WireResult<Option<T>> {
    let env: Envelope<T> = crate::exchange::replay::json(body)?;
    match env.code.map(|c| c.0) {
        Some(c) if c == OK => Ok(env.data),
        Some(c) => Err(WireError::shape(format!(
            "an error answer (code {c}) where data was expected"
        ))),
        None => Err(WireError::shape("an answer without `code`")),
    }
}

/// A decimal sent as a string (or a number); `""` and `null` are none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ODec(pub Option<Decimal>);

impl<'de> Deserialize<'de> for ODec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let s = match &v {
            serde_json::Value::Null => return Ok(ODec(None)),
            serde_json::Value::String(s) if s.trim().is_empty() => return Ok(ODec(None)),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a decimal, found {other}"
                )))
            }
        };
        parse_decimal(&s)
            .map(|d| ODec(Some(d)))
            .ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {s:?}")))
    }
}

/// A string or a number, as text (ids come both ways; a 64-bit id keeps every digit).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Text(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }))
    }
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

/// The market of a symbol: from the market list, else split at its dash.
pub fn market_of(markets: &Markets, cache: &mut MarketCache, symbol: &str) -> Market {
    cache
        .get(symbol, |s| {
            Ok::<_, std::convert::Infallible>(match markets.get(s) {
                Some(m) => m.market.clone(),
                None => match s.split_once('-') {
                    Some((b, q)) => Market::new(s, b, q),
                    None => Market::new(s, s, ""),
                },
            })
        })
        .unwrap_or_else(|e| match e {})
}

/// A list page: its rows and how to reach the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// `lastId` of a cursor list (`None` when absent or when the page is empty); for a
    /// numbered list, the next page's number when there is one.
    pub next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireList<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    last_id: Option<Text>,
    current_page: Option<i64>,
    total_page: Option<i64>,
}

/// A list in any of KuCoin's three forms.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyList<T> {
    Plain(Vec<T>),
    Paged(WireList<T>),
}

fn page<T: DeserializeOwned>(body: &[u8]) -> WireResult<(Vec<T>, Option<String>)> {
    let l: Option<AnyList<T>> = data_opt(body)?;
    Ok(match l {
        None => (Vec::new(), None),
        Some(AnyList::Plain(v)) => (v, None),
        Some(AnyList::Paged(l)) => {
            let next = match (l.current_page, l.total_page) {
                (Some(c), Some(t)) => (c < t).then(|| (c + 1).to_string()),
                _ => l
                    .last_id
                    .map(|t| t.0)
                    .filter(|id| !id.is_empty() && id != "0" && !l.items.is_empty()),
            };
            (l.items, next)
        }
    })
}

// ---------------------------------------------------------------- time and markets

/// `GET /api/v1/timestamp`: the server's clock, epoch ms.
pub fn parse_server_time(body: &[u8]) -> WireResult<i64> {
    let t: Text = data(body)?;
    t.0.parse::<i64>()
        .map_err(|_| WireError::shape(format!("not a time in epoch milliseconds: {:?}", t.0)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSymbol {
    symbol: String,
    base_currency: String,
    quote_currency: String,
    enable_trading: Option<bool>,
    #[serde(default)]
    price_increment: ODec,
    #[serde(default)]
    base_increment: ODec,
    #[serde(default)]
    min_funds: ODec,
}

/// `GET /api/v2/symbols`: the market list.
pub fn parse_symbols(body: &[u8]) -> WireResult<Vec<MarketInfo>> {
    let rows: Vec<WireSymbol> = data(body)?;
    Ok(rows
        .into_iter()
        .map(|s| MarketInfo {
            market: Market::new(s.symbol.as_str(), s.base_currency, s.quote_currency),
            status: s
                .enable_trading
                .map(|t| if t { "enabled" } else { "disabled" }.to_string()),
            tick_size: d(&s.price_increment),
            lot_size: d(&s.base_increment),
            min_notional: d(&s.min_funds),
        })
        .collect())
}

/// `GET /api/v1/hf/accounts/opened`: whether the account trades on the high-frequency
/// endpoints.
pub fn parse_hf_opened(body: &[u8]) -> WireResult<bool> {
    Ok(data_opt::<bool>(body)?.unwrap_or(false))
}

// ---------------------------------------------------------------- account and key

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAccount {
    currency: String,
    #[serde(default)]
    available: ODec,
    #[serde(default)]
    holds: ODec,
}

/// `GET /api/v1/accounts`: per currency over every account type (main, trade, …), free =
/// `available`, locked = `holds`; zero balances are left out.
pub fn parse_balances(body: &[u8]) -> WireResult<Vec<Balance>> {
    let rows: Vec<WireAccount> = data_opt(body)?.unwrap_or_default();
    let mut by: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for a in rows {
        let e = by.entry(a.currency).or_default();
        e.0 += d(&a.available).unwrap_or_default();
        e.1 += d(&a.holds).unwrap_or_default();
    }
    Ok(by
        .into_iter()
        .filter(|(_, (f, l))| !(f.is_zero() && l.is_zero()))
        .map(|(currency, (free, locked))| Balance {
            currency,
            free,
            locked,
            avg_buy_price: None,
            unit_currency: None,
        })
        .collect())
}

/// `GET /api/v1/user/api-key`: the calling key's settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub remark: Option<String>,
    pub api_key: Option<String>,
    pub api_version: Option<Text>,
    /// `General,Spot,…`.
    #[serde(default)]
    pub permission: Option<String>,
    /// A comma list of (masked) IPs; empty when the key is not restricted.
    #[serde(default)]
    pub ip_whitelist: Option<String>,
    pub created_at: Option<Text>,
    pub is_master: Option<bool>,
    pub sub_name: Option<String>,
}

impl KeyInfo {
    /// Every permission held, as KuCoin names it.
    pub fn held(&self) -> Vec<String> {
        self.permission
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// The IPs the key is restricted to; empty when it is not.
    pub fn bound_ips(&self) -> Vec<String> {
        self.ip_whitelist
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// Only `General` (read) held.
    pub fn is_read_only(&self) -> bool {
        self.held().iter().all(|h| h == "General")
    }

    /// The key as the account's key list shows it.
    pub fn key_info(&self, key_masked: &str) -> ApiKeyInfo {
        ApiKeyInfo {
            access_key_masked: key_masked.to_string(),
            is_current: true,
            expire_at: None,
            scopes: Some(self.held()),
            allowed_ips: Some(self.bound_ips()),
        }
    }
}

pub fn parse_key(body: &[u8]) -> WireResult<KeyInfo> {
    data(body)
}

pub fn parse_api_keys(body: &[u8], key_masked: &str) -> WireResult<Vec<ApiKeyInfo>> {
    Ok(vec![parse_key(body)?.key_info(key_masked)])
}

// ---------------------------------------------------------------- orders and fills

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    id: Text,
    client_oid: Option<String>,
    symbol: String,
    #[serde(rename = "type")]
    order_type: String,
    side: String,
    #[serde(default)]
    price: ODec,
    #[serde(default)]
    size: ODec,
    #[serde(default)]
    funds: ODec,
    #[serde(default)]
    deal_size: ODec,
    #[serde(default)]
    deal_funds: ODec,
    #[serde(default)]
    fee: ODec,
    fee_currency: Option<String>,
    /// HF orders.
    active: Option<bool>,
    /// Classic orders.
    is_active: Option<bool>,
    cancel_exist: Option<bool>,
    /// Stop orders (`/api/v1/stop-order`), which carry neither `active` nor `isActive`.
    status: Option<String>,
    /// `loss` or `entry` on a stop order; empty on others.
    stop: Option<String>,
    created_at: Text,
    /// HF orders: the last change (a fill, the cancel).
    last_updated_at: Option<Text>,
}

fn side(s: &str) -> WireResult<Side> {
    match s.to_ascii_lowercase().as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(WireError::shape(format!("unknown side {other:?}"))),
    }
}

/// KuCoin's order type as the normalized kind.
pub fn order_type(native: &str) -> OrderType {
    match native {
        "limit" => OrderType::Limit,
        "market" => OrderType::Market,
        _ => OrderType::Other,
    }
}

/// An order's state: `active` true is open; otherwise cancelled when `cancelExist`, filled
/// when not.
pub fn order_state(active: Option<bool>, cancel_exist: Option<bool>) -> OrderState {
    match (active, cancel_exist) {
        (Some(true), _) => OrderState::Open,
        (Some(false), Some(true)) => OrderState::Cancelled,
        (Some(false), _) => OrderState::Done,
        (None, _) => OrderState::Other,
    }
}

/// A stop order's state by its `status`: `NEW` (not triggered) is open; `TRIGGERED` became an
/// ordinary order, listed and followed as one; `CANCELLED` (as the mock reads one back) is
/// cancelled.
pub fn stop_order_state(status: &str) -> OrderState {
    match status.to_ascii_uppercase().as_str() {
        "NEW" => OrderState::Open,
        "TRIGGERED" => OrderState::Done,
        "CANCELLED" | "CANCELED" => OrderState::Cancelled,
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
    let active = w.active.or(w.is_active);
    // A stop order not triggered: no activity flag, a `status` and a `stop` kind.
    let stop_status = match (&active, &w.status, &w.stop) {
        (None, Some(st), Some(kind)) if !kind.is_empty() => Some(st.clone()),
        _ => None,
    };
    let volume = positive(d(&w.size));
    // A market order by funds spends (or receives) a quote amount.
    let quote_amount = if volume.is_none() {
        positive(d(&w.funds))
    } else {
        None
    };
    let executed = d(&w.deal_size).unwrap_or_default();
    let market = market_of(markets, cache, &w.symbol);
    let fee = d(&w.fee).unwrap_or_default().max(Decimal::ZERO);
    let price = if ot == OrderType::Limit {
        positive(d(&w.price))
    } else {
        None
    };
    // The fee in the quote currency (a fee in the base coin valued at the order's price).
    let paid_fee = match w.fee_currency.as_deref() {
        Some(c) if c == market.base.as_str() => price.map(|p| fee * p).unwrap_or(fee),
        _ => fee,
    };
    Ok(Order {
        id: w.id.0,
        client_id: w
            .client_oid
            .filter(|c| !c.is_empty())
            .map(CompactString::from),
        market,
        side: side(&w.side)?,
        order_type: ot,
        native_type: match stop_status {
            Some(_) => format!("stop_{}", w.order_type).into(),
            None => w.order_type.as_str().into(),
        },
        state: match &stop_status {
            Some(st) => stop_order_state(st),
            None => order_state(active, w.cancel_exist),
        },
        price,
        quote_amount,
        volume,
        remaining_volume: volume.map(|v| (v - executed).max(Decimal::ZERO)),
        executed_volume: executed,
        executed_funds: d(&w.deal_funds).filter(|v| *v >= Decimal::ZERO),
        paid_fee,
        created_at: ms_text(&w.created_at.0)?,
        created_at_local: w.created_at.0,
        trades_count: 0,
        provenance: prov,
    })
}

/// Any order list (HF `active` array, HF `done` with `lastId`, classic numbered pages).
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

/// A page of orders, each with the time KuCoin last changed it (`lastUpdatedAt`; the creation
/// time where it is absent or earlier): what the HF done list is ordered by.
pub fn parse_orders_updated(
    body: &[u8],
    markets: &Markets,
    prov: Option<Provenance>,
) -> WireResult<Page<(Order, DateTime<Utc>)>> {
    let (rows, next) = page::<WireOrder>(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    let rows = rows
        .into_iter()
        .map(|mut w| {
            let updated = w.last_updated_at.take().filter(|t| !t.0.is_empty());
            let o = order_of(w, markets, &mut cache, prov.clone())?;
            let updated = match updated {
                Some(t) => ms_text(&t.0)?.max(o.created_at),
                None => o.created_at,
            };
            Ok((o, updated))
        })
        .collect::<WireResult<Vec<_>>>()?;
    Ok(Page { rows, next })
}

/// One order (`GET /api/v1/hf/orders/{id}`, `GET /api/v1/orders/{id}`).
pub fn parse_order(body: &[u8], markets: &Markets, prov: Option<Provenance>) -> WireResult<Order> {
    let w: WireOrder = data(body)?;
    order_of(w, markets, &mut MarketCache::default(), prov.map(Arc::new))
}

/// `GET /api/v1/hf/orders/active/symbols`: the symbols with open HF orders.
pub fn parse_active_symbols(body: &[u8]) -> WireResult<Vec<String>> {
    #[derive(Deserialize)]
    struct R {
        #[serde(default)]
        symbols: Vec<String>,
    }
    Ok(data_opt::<R>(body)?.map(|r| r.symbols).unwrap_or_default())
}

/// The ids a cancel answer names: `cancelledOrderIds` (classic and stop orders), `orderId`
/// (one HF order). `cancelAll` answers with symbols instead: none here.
pub fn parse_cancelled(body: &[u8]) -> WireResult<Vec<String>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct R {
        cancelled_order_ids: Option<Vec<Text>>,
        order_id: Option<Text>,
    }
    let v: Option<serde_json::Value> = data_opt(body)?;
    let Some(v @ serde_json::Value::Object(_)) = v else {
        return Ok(Vec::new());
    };
    let r: R = serde_json::from_value(v)?;
    Ok(match (r.cancelled_order_ids, r.order_id) {
        (Some(l), _) => l.into_iter().map(|t| t.0).collect(),
        (None, Some(id)) => vec![id.0],
        (None, None) => Vec::new(),
    })
}

/// `DELETE /api/v1/hf/orders/cancelAll`: the symbols whose cancel failed, with KuCoin's error.
pub fn parse_cancel_all_failed(body: &[u8]) -> WireResult<Vec<(String, String)>> {
    #[derive(Deserialize)]
    struct F {
        symbol: String,
        error: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct R {
        #[serde(default)]
        failed_symbols: Vec<F>,
    }
    let v: Option<serde_json::Value> = data_opt(body)?;
    let Some(v @ serde_json::Value::Object(_)) = v else {
        return Ok(Vec::new());
    };
    let r: R = serde_json::from_value(v)?;
    Ok(r.failed_symbols
        .into_iter()
        .map(|f| (f.symbol, f.error.unwrap_or_default()))
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFill {
    trade_id: Text,
    order_id: Text,
    symbol: String,
    side: String,
    #[serde(default)]
    price: ODec,
    #[serde(default)]
    size: ODec,
    #[serde(default)]
    funds: ODec,
    #[serde(default)]
    fee: ODec,
    fee_currency: Option<String>,
    created_at: Text,
}

/// `GET /api/v1/hf/fills` and `GET /api/v1/fills`: one page of fills, by `tradeId`. The fee
/// is in the quote currency: one paid in the base coin is valued at the fill's price; one in a
/// third coin is unknown.
pub fn parse_fills(
    body: &[u8],
    markets: &Markets,
    prov: Option<Provenance>,
) -> WireResult<Page<Fill>> {
    let (rows, next) = page::<WireFill>(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    let mut out = Vec::with_capacity(rows.len());
    for t in rows {
        let market = market_of(markets, &mut cache, &t.symbol);
        let price = d(&t.price).unwrap_or_default();
        let qty = d(&t.size).unwrap_or_default();
        let fee = match (d(&t.fee), t.fee_currency.as_deref()) {
            (Some(f), Some(c)) if c == market.quote.as_str() => Some(f),
            (Some(f), Some(c)) if c == market.base.as_str() => Some(f * price),
            (Some(f), _) if f.is_zero() => Some(Decimal::ZERO),
            _ => None,
        };
        out.push(Fill {
            id: t.trade_id.0,
            order_id: t.order_id.0,
            side: side(&t.side)?,
            market,
            price,
            volume: qty,
            funds: d(&t.funds).unwrap_or(price * qty),
            fee,
            created_at: ms_text(&t.created_at.0)?,
            created_at_local: t.created_at.0,
            provenance: prov.clone(),
        });
    }
    Ok(Page { rows: out, next })
}

// ---------------------------------------------------------------- transfers

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTransfer {
    id: Option<Text>,
    currency: String,
    chain: Option<String>,
    status: Option<String>,
    address: Option<String>,
    memo: Option<String>,
    #[serde(default)]
    amount: ODec,
    #[serde(default)]
    fee: ODec,
    wallet_tx_id: Option<String>,
    created_at: Text,
    updated_at: Option<Text>,
}

/// A transfer's status in neutral terms, and whether a withdrawal can still be cancelled
/// (only while `PROCESSING`).
pub fn transfer_status(status: &str) -> (TransferStatus, bool) {
    match status {
        "PROCESSING" => (TransferStatus::Pending, true),
        "REVIEW" | "WALLET_PROCESSING" => (TransferStatus::Pending, false),
        "SUCCESS" => (TransferStatus::Completed, false),
        "FAILURE" | "CANCEL" | "CANCELLED" => (TransferStatus::Failed, false),
        _ => (TransferStatus::Unknown, false),
    }
}

/// `GET /api/v1/withdrawals`, `GET /api/v1/deposits`: one numbered page of transfers.
pub fn parse_transfers(
    body: &[u8],
    kind: TransferKind,
    prov: Option<Provenance>,
) -> WireResult<Page<Transfer>> {
    let (rows, next) = page::<WireTransfer>(body)?;
    let prov = prov.map(Arc::new);
    let rows = rows
        .into_iter()
        .map(|w| {
            let state = w.status.unwrap_or_else(|| "UNKNOWN".into());
            let (status, cancelable) = transfer_status(&state);
            let txid = w.wallet_tx_id.filter(|t| !t.is_empty());
            let id =
                w.id.map(|i| i.0)
                    .filter(|i| !i.is_empty())
                    .or_else(|| txid.clone())
                    .unwrap_or_else(|| format!("{}-{}", w.currency, w.created_at.0));
            Ok(Transfer {
                id,
                kind,
                currency: w.currency,
                net_type: w.chain.filter(|c| !c.is_empty()),
                txid,
                state,
                status,
                amount: d(&w.amount).unwrap_or_default(),
                fee: d(&w.fee),
                address: w.address.filter(|a| !a.is_empty()).map(|a| {
                    match w.memo.as_deref().filter(|m| !m.is_empty()) {
                        Some(m) => format!("{a} (memo {m})"),
                        None => a,
                    }
                }),
                created_at: ms_text(&w.created_at.0)?,
                created_at_local: w.created_at.0,
                done_at: match status {
                    TransferStatus::Completed | TransferStatus::Failed => w
                        .updated_at
                        .filter(|t| !t.0.is_empty())
                        .map(|t| ms_text(&t.0))
                        .transpose()?,
                    _ => None,
                },
                is_cancelable: cancelable && kind == TransferKind::Withdrawal,
                provenance: prov.clone(),
            })
        })
        .collect::<WireResult<Vec<_>>>()?;
    Ok(Page { rows, next })
}

// ---------------------------------------------------------------- market data

/// `GET /api/v1/market/candles`: arrays of strings `[time (s), open, close, high, low, volume,
/// turnover]`, newest first (kept so). Close comes before high and low.
pub fn parse_candles(body: &[u8], market: &Market) -> WireResult<Vec<Candle>> {
    let rows: Vec<Vec<Text>> = data_opt(body)?.unwrap_or_default();
    rows.into_iter()
        .map(|row| {
            let num = |i: usize| -> WireResult<Decimal> {
                row.get(i)
                    .and_then(|t| parse_decimal(&t.0))
                    .ok_or_else(|| WireError::shape(format!("a candle without field {i}")))
            };
            let start = row
                .first()
                .and_then(|t| t.0.parse::<i64>().ok())
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .ok_or_else(|| WireError::shape("a candle without a start time in seconds"))?;
            Ok(Candle {
                market: market.clone(),
                start,
                open: num(1)?,
                close: num(2)?,
                high: num(3)?,
                low: num(4)?,
                volume: num(5)?,
                value: num(6)?,
            })
        })
        .collect()
}
