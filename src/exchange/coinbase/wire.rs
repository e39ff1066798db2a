//! Coinbase wire formats: the one place that turns Coinbase's JSON into normalized types.
//!
//! Both the live client ([`super::client`]) and the offline rebuild ([`super::decode`]) parse
//! through these functions. Advanced Trade answers are bare objects (no envelope); lists carry
//! `has_next` and an opaque `cursor` (fills only the cursor); numbers are decimal strings (some
//! empty: `""` is "none"); times RFC 3339 strings, candles epoch seconds as strings. App API
//! (v2) lists are `{"pagination": {"next_starting_after"}, "data": [...]}`. Errors are
//! `{"error", "message", "error_details"}` (Advanced Trade), `{"errors": [{"id", "message"}]}`
//! (App API), or a plain-text `Unauthorized` with a 401. Every struct takes optional fields.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use crate::exchange::decimal::{ODec, Text};
use crate::exchange::replay::DecodeError;
use crate::exchange::{
    Balance, Candle, CompactString, Fill, Market, MarketCache, MarketInfo, Order, OrderState,
    OrderType, Provenance, Side, Transfer, TransferKind, TransferStatus,
};

pub type WireError = DecodeError;
pub type WireResult<T> = std::result::Result<T, WireError>;

// ---------------------------------------------------------------- errors and scalars

#[derive(Deserialize)]
struct AtError {
    error: Option<String>,
    message: Option<String>,
    error_details: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct AppErrors {
    errors: Vec<AppError>,
}

#[derive(Deserialize)]
struct AppError {
    id: Option<String>,
    message: Option<String>,
}

/// The `(code, message)` of an error answer with HTTP `status`: the Advanced Trade `error`, the
/// App API's first `errors[].id`, or `unauthorized` for the plain-text 401. `None` for a body
/// Coinbase did not write as an error (a proxy's page, an empty body with a 5xx).
pub fn parse_error(status: u16, body: &[u8]) -> Option<(String, String)> {
    if let Ok(e) = serde_json::from_slice::<AppErrors>(body) {
        if let Some(first) = e.errors.into_iter().next() {
            let id = first.id.filter(|i| !i.is_empty())?;
            return Some((id, first.message.unwrap_or_default()));
        }
    }
    if let Ok(e) = serde_json::from_slice::<AtError>(body) {
        if let Some(code) = e.error.filter(|c| !c.is_empty()) {
            let details = match e.error_details {
                Some(serde_json::Value::String(s)) if !s.is_empty() => format!(" ({s})"),
                _ => String::new(),
            };
            return Some((code, format!("{}{details}", e.message.unwrap_or_default())));
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if status == 401 && (text.is_empty() || text.eq_ignore_ascii_case("unauthorized")) {
        return Some(("unauthorized".into(), "Unauthorized".into()));
    }
    None
}

fn d(v: &ODec) -> Option<Decimal> {
    v.0
}

fn json<T: DeserializeOwned>(body: &[u8]) -> WireResult<T> {
    Ok(crate::exchange::replay::json(body)?)
}

/// An RFC 3339 time as UTC.
pub fn rfc3339(t: &str) -> WireResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| WireError::shape(format!("not an RFC 3339 time: {t:?}")))
}

/// A time as Coinbase's filters take it: RFC 3339 UTC with `Z`.
pub fn ts_param(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The market of a product id (`BTC-USD`); an id without a dash is its own base with an empty
/// quote.
pub fn market_of(cache: &mut MarketCache, product: &str) -> Market {
    cache
        .get(product, |s| {
            Ok::<_, std::convert::Infallible>(match super::split_product(s) {
                Some((b, q)) => Market::new(s, b, q),
                None => Market::new(s, s, ""),
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

/// The next cursor of an Advanced Trade list: `cursor` while `has_next` (when sent) is true.
fn next_of(has_next: Option<bool>, cursor: Option<String>) -> Option<String> {
    if has_next == Some(false) {
        return None;
    }
    cursor.filter(|c| !c.is_empty())
}

// ---------------------------------------------------------------- time, key, accounts

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTime {
    iso: Option<String>,
    epoch_seconds: Option<Text>,
    epoch_millis: Option<Text>,
}

/// `GET /api/v3/brokerage/time`: the server's clock (from `epochMillis`, else `epochSeconds`,
/// else `iso`).
pub fn parse_server_time(body: &[u8]) -> WireResult<DateTime<Utc>> {
    let t: WireTime = json(body)?;
    if let Some(ms) = t.epoch_millis.and_then(|m| m.0.trim().parse::<i64>().ok()) {
        if let Some(at) = DateTime::from_timestamp_millis(ms) {
            return Ok(at);
        }
    }
    if let Some(s) = t.epoch_seconds.and_then(|m| m.0.trim().parse::<f64>().ok()) {
        if let Some(at) = DateTime::from_timestamp_millis((s * 1000.0) as i64) {
            return Ok(at);
        }
    }
    match t.iso {
        Some(iso) => rfc3339(&iso),
        None => Err(WireError::shape(
            "a time answer without epochMillis, epochSeconds or iso",
        )),
    }
}

/// `GET /api/v3/brokerage/key_permissions`: what the calling key may do.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KeyPermissions {
    #[serde(default)]
    pub can_view: bool,
    #[serde(default)]
    pub can_trade: bool,
    #[serde(default)]
    pub can_transfer: bool,
    pub portfolio_uuid: Option<String>,
    pub portfolio_type: Option<String>,
}

impl KeyPermissions {
    /// The permissions held, by their field names (the names of [`super::SCOPES`]).
    pub fn held(&self) -> Vec<String> {
        [
            ("can_view", self.can_view),
            ("can_trade", self.can_trade),
            ("can_transfer", self.can_transfer),
        ]
        .iter()
        .filter(|(_, h)| *h)
        .map(|(n, _)| n.to_string())
        .collect()
    }

    /// The key as the account's key list shows it (Coinbase tells neither an expiry nor the IP
    /// allowlist).
    pub fn key_info(&self, key_masked: &str) -> crate::exchange::ApiKeyInfo {
        crate::exchange::ApiKeyInfo {
            access_key_masked: key_masked.to_string(),
            is_current: true,
            expire_at: None,
            scopes: Some(self.held()),
            allowed_ips: None,
        }
    }
}

pub fn parse_key_permissions(body: &[u8]) -> WireResult<KeyPermissions> {
    json(body)
}

#[derive(Deserialize)]
struct WireAmount {
    #[serde(default)]
    value: ODec,
}

/// One currency account of `GET /api/v3/brokerage/accounts`.
#[derive(Deserialize)]
pub struct WireAccount {
    pub uuid: String,
    pub currency: String,
    available_balance: Option<WireAmount>,
    hold: Option<WireAmount>,
}

impl WireAccount {
    fn balance(&self) -> Balance {
        let v = |a: &Option<WireAmount>| a.as_ref().and_then(|a| d(&a.value)).unwrap_or_default();
        Balance {
            currency: self.currency.clone(),
            free: v(&self.available_balance),
            locked: v(&self.hold),
            avg_buy_price: None,
            unit_currency: None,
        }
    }
}

#[derive(Deserialize)]
struct WireAccounts {
    #[serde(default)]
    accounts: Vec<WireAccount>,
    has_next: Option<bool>,
    cursor: Option<String>,
}

/// `GET /api/v3/brokerage/accounts`: one page of currency accounts.
pub fn parse_accounts(body: &[u8]) -> WireResult<Page<WireAccount>> {
    let a: WireAccounts = json(body)?;
    Ok(Page {
        rows: a.accounts,
        next: next_of(a.has_next, a.cursor),
    })
}

/// The balances of an accounts page: available and on hold; empty accounts left out.
pub fn balances(accounts: &[WireAccount]) -> Vec<Balance> {
    accounts
        .iter()
        .map(WireAccount::balance)
        .filter(|b| !(b.free.is_zero() && b.locked.is_zero()))
        .collect()
}

// ---------------------------------------------------------------- products and candles

#[derive(Deserialize)]
struct WireProduct {
    product_id: String,
    base_currency_id: Option<String>,
    quote_currency_id: Option<String>,
    status: Option<String>,
    #[serde(default)]
    price_increment: ODec,
    #[serde(default)]
    quote_increment: ODec,
    #[serde(default)]
    base_increment: ODec,
    #[serde(default)]
    quote_min_size: ODec,
}

/// `GET /api/v3/brokerage/market/products`: the product list.
pub fn parse_products(body: &[u8]) -> WireResult<Vec<MarketInfo>> {
    #[derive(Deserialize)]
    struct R {
        #[serde(default)]
        products: Vec<WireProduct>,
    }
    let r: R = json(body)?;
    Ok(r.products
        .into_iter()
        .map(|p| {
            let (b, q) = match (&p.base_currency_id, &p.quote_currency_id) {
                (Some(b), Some(q)) if !b.is_empty() && !q.is_empty() => (b.clone(), q.clone()),
                _ => super::split_product(&p.product_id)
                    .map(|(b, q)| (b.to_string(), q.to_string()))
                    .unwrap_or_else(|| (p.product_id.clone(), String::new())),
            };
            MarketInfo {
                market: Market::new(p.product_id.as_str(), b, q),
                status: p.status,
                tick_size: d(&p.price_increment).or(d(&p.quote_increment)),
                lot_size: d(&p.base_increment),
                min_notional: d(&p.quote_min_size),
            }
        })
        .collect())
}

/// `GET …/products/{id}/candles`: newest first (kept so); `value` is estimated as volume ×
/// close, Coinbase giving no quote volume.
pub fn parse_candles(body: &[u8], market: &Market) -> WireResult<Vec<Candle>> {
    #[derive(Deserialize)]
    struct C {
        start: Text,
        #[serde(default)]
        low: ODec,
        #[serde(default)]
        high: ODec,
        #[serde(default)]
        open: ODec,
        #[serde(default)]
        close: ODec,
        #[serde(default)]
        volume: ODec,
    }
    #[derive(Deserialize)]
    struct R {
        #[serde(default)]
        candles: Vec<C>,
    }
    let r: R = json(body)?;
    r.candles
        .into_iter()
        .map(|c| {
            let need = |v: &ODec, what: &str| {
                d(v).ok_or_else(|| WireError::shape(format!("a candle without {what}")))
            };
            let start = c
                .start
                .0
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .ok_or_else(|| WireError::shape(format!("not epoch seconds: {:?}", c.start.0)))?;
            let close = need(&c.close, "close")?;
            let volume = need(&c.volume, "volume")?;
            Ok(Candle {
                market: market.clone(),
                start,
                open: need(&c.open, "open")?,
                high: need(&c.high, "high")?,
                low: need(&c.low, "low")?,
                close,
                volume,
                value: volume * close,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- orders and fills

#[derive(Deserialize, Default)]
struct WireConfig {
    #[serde(default)]
    base_size: ODec,
    #[serde(default)]
    quote_size: ODec,
    #[serde(default)]
    limit_price: ODec,
}

#[derive(Deserialize)]
struct WireOrder {
    order_id: String,
    product_id: String,
    side: String,
    client_order_id: Option<String>,
    status: String,
    order_type: Option<String>,
    #[serde(default)]
    order_configuration: std::collections::BTreeMap<String, serde_json::Value>,
    created_time: String,
    #[serde(default)]
    filled_size: ODec,
    #[serde(default)]
    filled_value: ODec,
    #[serde(default)]
    total_fees: ODec,
    number_of_fills: Option<Text>,
}

fn side(s: &str) -> WireResult<Side> {
    match s.to_ascii_uppercase().as_str() {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(WireError::shape(format!("unknown side {other:?}"))),
    }
}

/// Coinbase's order type (`order_type`, else the configuration's kind) as the normalized kind.
pub fn order_type(native: &str) -> OrderType {
    let n = native.to_ascii_uppercase();
    if n == "MARKET" || n.starts_with("MARKET_") {
        OrderType::Market
    } else if n == "LIMIT" || n.starts_with("LIMIT_") || n.starts_with("SOR_LIMIT") {
        OrderType::Limit
    } else {
        OrderType::Other
    }
}

/// Coinbase's order status as the normalized state: pending, queued and cancel-queued orders
/// are still on the book.
pub fn order_state(status: &str) -> OrderState {
    match status {
        "OPEN" | "PENDING" | "QUEUED" | "CANCEL_QUEUED" => OrderState::Open,
        "FILLED" => OrderState::Done,
        "CANCELLED" | "EXPIRED" | "FAILED" => OrderState::Cancelled,
        _ => OrderState::Other,
    }
}

fn positive(v: Option<Decimal>) -> Option<Decimal> {
    v.filter(|x| *x > Decimal::ZERO)
}

fn order_of(
    w: WireOrder,
    cache: &mut MarketCache,
    prov: Option<Arc<Provenance>>,
) -> WireResult<Order> {
    let (kind, config) = match w.order_configuration.into_iter().next() {
        Some((k, v)) => (
            k,
            serde_json::from_value::<WireConfig>(v).unwrap_or_default(),
        ),
        None => (String::new(), WireConfig::default()),
    };
    let native = w
        .order_type
        .filter(|t| !t.is_empty() && t != "UNKNOWN_ORDER_TYPE")
        .unwrap_or_else(|| kind.clone());
    let ot = order_type(&native);
    let volume = positive(d(&config.base_size));
    let executed = d(&w.filled_size).unwrap_or_default();
    let created = rfc3339(&w.created_time)?;
    Ok(Order {
        id: w.order_id,
        client_id: w
            .client_order_id
            .filter(|c| !c.is_empty())
            .map(CompactString::from),
        market: market_of(cache, &w.product_id),
        side: side(&w.side)?,
        order_type: ot,
        native_type: native.as_str().into(),
        state: order_state(&w.status),
        price: positive(d(&config.limit_price)),
        quote_amount: positive(d(&config.quote_size)),
        volume,
        remaining_volume: volume.map(|v| (v - executed).max(Decimal::ZERO)),
        executed_volume: executed,
        executed_funds: d(&w.filled_value).filter(|v| *v >= Decimal::ZERO),
        paid_fee: d(&w.total_fees).unwrap_or_default().max(Decimal::ZERO),
        created_at: created,
        created_at_local: w.created_time,
        trades_count: w
            .number_of_fills
            .and_then(|n| n.0.trim().parse::<u32>().ok())
            .unwrap_or(0),
        provenance: prov,
    })
}

/// `GET /api/v3/brokerage/orders/historical/batch`: one page of orders.
pub fn parse_orders(body: &[u8], prov: Option<Provenance>) -> WireResult<Page<Order>> {
    #[derive(Deserialize)]
    struct R {
        #[serde(default)]
        orders: Vec<WireOrder>,
        has_next: Option<bool>,
        cursor: Option<String>,
    }
    let r: R = json(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    let rows = r
        .orders
        .into_iter()
        .map(|w| order_of(w, &mut cache, prov.clone()))
        .collect::<WireResult<Vec<_>>>()?;
    Ok(Page {
        rows,
        next: next_of(r.has_next, r.cursor),
    })
}

/// `GET /api/v3/brokerage/orders/historical/{order_id}`: `{"order": …}`.
pub fn parse_order(body: &[u8], prov: Option<Provenance>) -> WireResult<Order> {
    #[derive(Deserialize)]
    struct R {
        order: WireOrder,
    }
    let r: R = json(body)?;
    order_of(r.order, &mut MarketCache::default(), prov.map(Arc::new))
}

/// One result of `POST /api/v3/brokerage/orders/batch_cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CancelResult {
    pub order_id: String,
    #[serde(default)]
    pub success: bool,
    pub failure_reason: Option<String>,
}

/// `POST /api/v3/brokerage/orders/batch_cancel`: one result per id sent. A success means the
/// cancel was initiated: states are read back.
pub fn parse_batch_cancel(body: &[u8]) -> WireResult<Vec<CancelResult>> {
    #[derive(Deserialize)]
    struct R {
        results: Vec<CancelResult>,
    }
    Ok(json::<R>(body)?.results)
}

#[derive(Deserialize)]
struct WireFill {
    trade_id: String,
    order_id: String,
    product_id: String,
    side: String,
    trade_time: String,
    #[serde(default)]
    price: ODec,
    #[serde(default)]
    size: ODec,
    #[serde(default)]
    commission: ODec,
    #[serde(default)]
    size_in_quote: bool,
    trade_type: Option<String>,
}

/// `GET /api/v3/brokerage/orders/historical/fills`: one page of fills (trades only). A size in
/// the quote currency (`size_in_quote`) is turned into base volume at the fill's price; the
/// commission is in the quote currency.
pub fn parse_fills(body: &[u8], prov: Option<Provenance>) -> WireResult<Page<Fill>> {
    #[derive(Deserialize)]
    struct R {
        #[serde(default)]
        fills: Vec<WireFill>,
        cursor: Option<String>,
    }
    let r: R = json(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    let mut out = Vec::with_capacity(r.fills.len());
    let any = !r.fills.is_empty();
    for f in r.fills {
        if f.trade_type.as_deref().is_some_and(|t| t != "FILL") {
            continue;
        }
        let price = d(&f.price).unwrap_or_default();
        let size = d(&f.size).unwrap_or_default();
        let (volume, funds) = if f.size_in_quote {
            let v = if price.is_zero() {
                Decimal::ZERO
            } else {
                size / price
            };
            (v, size)
        } else {
            (size, size * price)
        };
        out.push(Fill {
            id: f.trade_id,
            order_id: f.order_id,
            market: market_of(&mut cache, &f.product_id),
            side: side(&f.side)?,
            price,
            volume,
            funds,
            fee: d(&f.commission),
            created_at: rfc3339(&f.trade_time)?,
            created_at_local: f.trade_time,
            provenance: prov.clone(),
        });
    }
    // A page without rows ends the list whatever cursor it carries.
    Ok(Page {
        rows: out,
        next: if any {
            r.cursor.filter(|c| !c.is_empty())
        } else {
            None
        },
    })
}

// ---------------------------------------------------------------- transfers (App API)

#[derive(Deserialize)]
struct WireMoney {
    #[serde(default)]
    amount: ODec,
    currency: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireNetwork {
    hash: Option<String>,
    network_name: Option<String>,
    transaction_fee: Option<WireMoney>,
}

#[derive(Deserialize)]
struct WireTo {
    address: Option<String>,
    destination_tag: Option<Text>,
}

#[derive(Deserialize)]
struct WireTransaction {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    status: Option<String>,
    amount: WireMoney,
    created_at: String,
    updated_at: Option<String>,
    network: Option<WireNetwork>,
    to: Option<WireTo>,
}

/// A transaction's kind as a transfer: a `send` out of the account (negative amount) and a
/// fiat withdrawal are withdrawals; a `send` into it, a `receive` and a fiat deposit are
/// deposits; trades, buys and sells are none.
pub fn transfer_kind(kind: &str, amount: Decimal) -> Option<TransferKind> {
    match kind {
        "send" if amount < Decimal::ZERO => Some(TransferKind::Withdrawal),
        "send" | "receive" => Some(TransferKind::Deposit),
        "fiat_withdrawal" => Some(TransferKind::Withdrawal),
        "fiat_deposit" => Some(TransferKind::Deposit),
        _ => None,
    }
}

/// A transaction's status in neutral terms; a send still `pending` cannot be cancelled by API.
pub fn transfer_status(status: &str) -> TransferStatus {
    match status {
        "pending" | "created" | "waiting_for_clearing" | "waiting_for_signature" => {
            TransferStatus::Pending
        }
        "completed" => TransferStatus::Completed,
        "canceled" | "cancelled" | "failed" | "expired" => TransferStatus::Failed,
        _ => TransferStatus::Unknown,
    }
}

/// `GET /v2/accounts/{account_id}/transactions`: one page, the sends and receives among it as
/// transfers (amounts positive), the id to continue after (`None` on the last page), and the
/// oldest creation time of any transaction on the page (the walk back in time stops there).
pub fn parse_transactions(
    body: &[u8],
    prov: Option<Provenance>,
) -> WireResult<(Page<Transfer>, Option<DateTime<Utc>>)> {
    #[derive(Deserialize)]
    struct Pagination {
        next_starting_after: Option<String>,
    }
    #[derive(Deserialize)]
    struct R {
        pagination: Option<Pagination>,
        #[serde(default)]
        data: Vec<WireTransaction>,
    }
    let r: R = json(body)?;
    let prov = prov.map(Arc::new);
    let any = !r.data.is_empty();
    let mut out = Vec::new();
    let mut oldest: Option<DateTime<Utc>> = None;
    for t in r.data {
        let at = rfc3339(&t.created_at)?;
        oldest = Some(oldest.map_or(at, |o| o.min(at)));
        let amount = d(&t.amount.amount).unwrap_or_default();
        let Some(kind) = transfer_kind(&t.kind, amount) else {
            continue;
        };
        let state = t.status.unwrap_or_else(|| "unknown".into());
        let status = transfer_status(&state);
        let net = t.network.unwrap_or_default();
        let created_at = rfc3339(&t.created_at)?;
        out.push(Transfer {
            id: t.id,
            kind,
            currency: t.amount.currency.unwrap_or_default(),
            net_type: net.network_name.filter(|n| !n.is_empty()),
            txid: net.hash.filter(|h| !h.is_empty()),
            state,
            status,
            amount: amount.abs(),
            fee: net.transaction_fee.and_then(|f| d(&f.amount)),
            address: t.to.and_then(|to| {
                to.address
                    .filter(|a| !a.is_empty())
                    .map(|a| match to.destination_tag {
                        Some(tag) if !tag.0.is_empty() => format!("{a} (tag {})", tag.0),
                        _ => a,
                    })
            }),
            created_at,
            created_at_local: t.created_at,
            done_at: match status {
                TransferStatus::Completed | TransferStatus::Failed => t
                    .updated_at
                    .filter(|u| !u.is_empty())
                    .map(|u| rfc3339(&u))
                    .transpose()?,
                _ => None,
            },
            is_cancelable: false,
            provenance: prov.clone(),
        });
    }
    let next = if any {
        r.pagination
            .and_then(|p| p.next_starting_after)
            .filter(|n| !n.is_empty())
    } else {
        None
    };
    Ok((Page { rows: out, next }, oldest))
}
