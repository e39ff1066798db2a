//! Binance wire formats: the one place that turns Binance's JSON into normalized types.
//!
//! Both the live client ([`super::client`]) and the offline rebuild ([`super::decode`]) parse
//! through these functions, with the same market list ([`Markets`]: symbol → base and quote
//! from `exchangeInfo`), so a bundle re-analyzed later yields exactly what the run saw.
//! Binance sends prices and quantities as decimal strings, ids and times as JSON numbers (epoch
//! milliseconds, UTC), except the withdrawal history, whose times are `YYYY-MM-DD HH:MM:SS`
//! strings in UTC. Every struct takes optional fields: the field lists grow over time.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::exchange::decimal::{dec, Dec};
use crate::exchange::replay::DecodeError;
use crate::exchange::{
    ApiKeyInfo, Balance, Candle, CompactString, Fill, Market, MarketCache, MarketInfo, Order,
    OrderState, OrderType, Provenance, Side, Transfer, TransferKind, WithdrawalAddress,
};

/// A body that could not be read as the expected shape.
pub type WireError = DecodeError;
pub type WireResult<T> = std::result::Result<T, WireError>;

/// The market list symbols are read with: `exchangeInfo`'s symbols by native symbol (the same
/// map the offline rebuild accumulates, [`crate::exchange::replay::DecodeContext`]).
pub type Markets = BTreeMap<String, MarketInfo>;

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> WireResult<T> {
    Ok(crate::exchange::replay::json(body)?)
}

/// Epoch milliseconds as a UTC time.
pub fn ms(t: i64) -> WireResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t)
        .ok_or_else(|| WireError::shape(format!("not a time in epoch milliseconds: {t}")))
}

/// The market of a symbol: from the market list, else split at a quote asset Binance lists
/// ([`super::split_symbol`]); a symbol neither knows is its own base with an empty quote.
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

// ---------------------------------------------------------------- errors

#[derive(Deserialize)]
struct Envelope {
    code: Option<serde_json::Value>,
    msg: Option<String>,
    success: Option<bool>,
}

/// The `(code, message)` of an error body: `{"code": -2015, "msg": "…"}`, or the `/sapi`
/// form `{"success": false, "msg": "…"}` (code `sapi`). A body whose `code` is not negative
/// (`accountSnapshot` answers `{"code": 200, …}`) is not an error.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let env: Envelope = serde_json::from_slice(body).ok()?;
    let msg = env.msg.unwrap_or_default();
    match env.code {
        Some(serde_json::Value::Number(n)) if n.as_i64().is_some_and(|c| c < 0) => {
            Some((n.to_string(), msg))
        }
        Some(serde_json::Value::String(s)) if s.starts_with('-') => Some((s, msg)),
        _ if env.success == Some(false) => Some(("sapi".into(), msg)),
        _ => None,
    }
}

// ---------------------------------------------------------------- time and markets

#[derive(Deserialize)]
struct WireTime {
    #[serde(rename = "serverTime")]
    server_time: i64,
}

/// `GET /api/v3/time`: the server's clock, epoch ms.
pub fn parse_server_time(body: &[u8]) -> WireResult<i64> {
    Ok(parse::<WireTime>(body)?.server_time)
}

#[derive(Deserialize)]
struct WireExchangeInfo {
    symbols: Vec<WireSymbol>,
}

#[derive(Deserialize)]
struct WireSymbol {
    symbol: String,
    status: Option<String>,
    #[serde(rename = "baseAsset")]
    base_asset: String,
    #[serde(rename = "quoteAsset")]
    quote_asset: String,
    #[serde(default)]
    filters: Vec<WireFilter>,
}

#[derive(Deserialize)]
struct WireFilter {
    #[serde(rename = "filterType")]
    filter_type: String,
    #[serde(rename = "tickSize")]
    tick_size: Option<Dec>,
    #[serde(rename = "stepSize")]
    step_size: Option<Dec>,
    #[serde(rename = "minNotional")]
    min_notional: Option<Dec>,
}

/// `GET /api/v3/exchangeInfo`: every symbol with its base, quote, status and filters.
pub fn parse_exchange_info(body: &[u8]) -> WireResult<Vec<MarketInfo>> {
    let info: WireExchangeInfo = parse(body)?;
    Ok(info
        .symbols
        .into_iter()
        .map(|s| {
            let filter = |name: &str| s.filters.iter().find(|f| f.filter_type == name);
            MarketInfo {
                market: Market::new(s.symbol.as_str(), s.base_asset, s.quote_asset),
                status: s.status,
                tick_size: filter("PRICE_FILTER").and_then(|f| dec(f.tick_size)),
                lot_size: filter("LOT_SIZE").and_then(|f| dec(f.step_size)),
                min_notional: filter("NOTIONAL")
                    .or_else(|| filter("MIN_NOTIONAL"))
                    .and_then(|f| dec(f.min_notional)),
            }
        })
        .collect())
}

// ---------------------------------------------------------------- account and key

#[derive(Deserialize)]
struct WireAccount {
    #[serde(default)]
    balances: Vec<WireBalance>,
}

#[derive(Deserialize)]
struct WireBalance {
    asset: String,
    free: Dec,
    locked: Option<Dec>,
}

fn balances_of(rows: Vec<WireBalance>, keep_zero: bool) -> Vec<Balance> {
    rows.into_iter()
        .map(|b| Balance {
            currency: b.asset,
            free: b.free.0,
            locked: dec(b.locked).unwrap_or_default(),
            avg_buy_price: None,
            unit_currency: None,
        })
        .filter(|b| keep_zero || !(b.free.is_zero() && b.locked.is_zero()))
        .collect()
}

/// `GET /api/v3/account`: the balances that are not zero (Binance lists every asset it ever
/// had for the account, mostly zeros).
pub fn parse_balances(body: &[u8]) -> WireResult<Vec<Balance>> {
    Ok(balances_of(parse::<WireAccount>(body)?.balances, false))
}

/// `GET /sapi/v1/account/apiRestrictions`: what the key may do. Lenient: the field list grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restrictions {
    pub ip_restrict: Option<bool>,
    pub create_time: Option<i64>,
    pub enable_reading: Option<bool>,
    pub enable_spot_and_margin_trading: Option<bool>,
    pub enable_withdrawals: Option<bool>,
    pub enable_internal_transfer: Option<bool>,
    pub permits_universal_transfer: Option<bool>,
    pub enable_margin: Option<bool>,
    pub enable_futures: Option<bool>,
    pub enable_vanilla_options: Option<bool>,
    pub enable_portfolio_margin_trading: Option<bool>,
    pub enable_fix_api_trade: Option<bool>,
    pub enable_fix_read_only: Option<bool>,
    pub trading_authority_expiration_time: Option<i64>,
}

impl Restrictions {
    /// Each permission by its field name (the scope names of [`super::SCOPES`]).
    pub fn scopes(&self) -> Vec<(&'static str, Option<bool>)> {
        vec![
            ("enableReading", self.enable_reading),
            (
                "enableSpotAndMarginTrading",
                self.enable_spot_and_margin_trading,
            ),
            ("enableWithdrawals", self.enable_withdrawals),
            ("enableInternalTransfer", self.enable_internal_transfer),
            ("permitsUniversalTransfer", self.permits_universal_transfer),
            ("enableMargin", self.enable_margin),
            ("enableFutures", self.enable_futures),
            ("enableVanillaOptions", self.enable_vanilla_options),
            (
                "enablePortfolioMarginTrading",
                self.enable_portfolio_margin_trading,
            ),
            ("enableFixApiTrade", self.enable_fix_api_trade),
            ("enableFixReadOnly", self.enable_fix_read_only),
        ]
    }
}

pub fn parse_restrictions(body: &[u8]) -> WireResult<Restrictions> {
    parse(body)
}

/// The key an `apiRestrictions` answer describes, as the account's key list shows it: the key
/// the request was signed with (`key_masked`), its permissions held, and its IP restriction
/// (`Some(vec![])` when unrestricted; the list itself is not given, so `None` when restricted).
pub fn key_of(r: &Restrictions, key_masked: &str) -> ApiKeyInfo {
    ApiKeyInfo {
        access_key_masked: key_masked.to_string(),
        is_current: true,
        expire_at: None,
        scopes: Some(
            r.scopes()
                .into_iter()
                .filter(|(_, held)| *held == Some(true))
                .map(|(n, _)| n.to_string())
                .collect(),
        ),
        allowed_ips: match r.ip_restrict {
            Some(false) => Some(Vec::new()),
            _ => None,
        },
    }
}

pub fn parse_api_keys(body: &[u8], key_masked: &str) -> WireResult<Vec<ApiKeyInfo>> {
    Ok(vec![key_of(&parse_restrictions(body)?, key_masked)])
}

#[derive(Deserialize)]
struct WireSnapshots {
    #[serde(rename = "snapshotVos", default)]
    snapshots: Vec<WireSnapshot>,
}

#[derive(Deserialize)]
struct WireSnapshot {
    #[serde(rename = "updateTime")]
    update_time: i64,
    data: Option<WireSnapshotData>,
}

#[derive(Deserialize)]
struct WireSnapshotData {
    #[serde(default)]
    balances: Vec<WireBalance>,
}

/// One day of `GET /sapi/v1/accountSnapshot?type=SPOT`: when, and the assets held.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySnapshot {
    pub at: DateTime<Utc>,
    pub balances: Vec<Balance>,
}

pub fn parse_snapshots(body: &[u8]) -> WireResult<Vec<DaySnapshot>> {
    parse::<WireSnapshots>(body)?
        .snapshots
        .into_iter()
        .map(|s| {
            Ok(DaySnapshot {
                at: ms(s.update_time)?,
                balances: balances_of(s.data.map(|d| d.balances).unwrap_or_default(), false),
            })
        })
        .collect()
}

// ---------------------------------------------------------------- orders and fills

/// An order as `GET /api/v3/order`, `openOrders` and `allOrders` send it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    symbol: String,
    order_id: i64,
    client_order_id: Option<String>,
    orig_client_order_id: Option<String>,
    price: Option<Dec>,
    orig_qty: Option<Dec>,
    executed_qty: Option<Dec>,
    cummulative_quote_qty: Option<Dec>,
    orig_quote_order_qty: Option<Dec>,
    status: String,
    #[serde(rename = "type")]
    order_type: String,
    side: String,
    time: Option<i64>,
    transact_time: Option<i64>,
}

fn side(s: &str) -> WireResult<Side> {
    match s {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(WireError::shape(format!("unknown side {other:?}"))),
    }
}

/// Binance's order type as the normalized kind: the limit kinds carry a limit price; the market
/// kinds (and the stop-loss / take-profit orders that become market orders) do not.
pub fn order_type(native: &str) -> OrderType {
    match native {
        "LIMIT" | "LIMIT_MAKER" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT_LIMIT" => OrderType::Limit,
        "MARKET" | "STOP_LOSS" | "TAKE_PROFIT" => OrderType::Market,
        _ => OrderType::Other,
    }
}

/// Binance's order status as the normalized state.
pub fn order_state(status: &str) -> OrderState {
    match status {
        "NEW" | "PENDING_NEW" | "PARTIALLY_FILLED" => OrderState::Open,
        "FILLED" => OrderState::Done,
        "CANCELED" | "PENDING_CANCEL" | "EXPIRED" | "EXPIRED_IN_MATCH" => OrderState::Cancelled,
        _ => OrderState::Other,
    }
}

fn positive(d: Option<Dec>) -> Option<Decimal> {
    dec(d).filter(|v| *v > Decimal::ZERO)
}

/// Whether a `clientOrderId` is one Binance assigned to an order placed in its own website or
/// app (`web_`, `and_`, `ios_` and 32 hex digits), not one a client sent: such an order has no
/// client id in the normalized record (as on exchanges that leave it empty), so a person's
/// trades in the app are not judged against the bot's id pattern. The raw answer keeps it.
pub fn placed_in_binance_ui(client_order_id: &str) -> bool {
    ["web_", "and_", "ios_"].iter().any(|p| {
        client_order_id
            .strip_prefix(p)
            .is_some_and(|rest| rest.len() == 32 && rest.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

fn order_of(
    w: WireOrder,
    markets: &Markets,
    cache: &mut MarketCache,
    prov: Option<Arc<Provenance>>,
) -> WireResult<Order> {
    let t = w.time.or(w.transact_time).ok_or_else(|| {
        WireError::shape(format!(
            "order {} has neither time nor transactTime",
            w.order_id
        ))
    })?;
    let ot = order_type(&w.order_type);
    let volume = positive(w.orig_qty);
    let executed = dec(w.executed_qty).unwrap_or_default();
    Ok(Order {
        id: w.order_id.to_string(),
        client_id: w
            .orig_client_order_id
            .or(w.client_order_id)
            .filter(|c| !c.is_empty() && !placed_in_binance_ui(c))
            .map(CompactString::from),
        market: market_of(markets, cache, &w.symbol),
        side: side(&w.side)?,
        order_type: ot,
        native_type: w.order_type.as_str().into(),
        state: order_state(&w.status),
        price: if ot == OrderType::Limit {
            positive(w.price)
        } else {
            None
        },
        quote_amount: positive(w.orig_quote_order_qty),
        volume,
        remaining_volume: volume.map(|v| (v - executed).max(Decimal::ZERO)),
        executed_volume: executed,
        // Negative on some old orders: "not available".
        executed_funds: dec(w.cummulative_quote_qty).filter(|v| *v >= Decimal::ZERO),
        // Binance gives fees per fill (`commission`), not per order.
        paid_fee: Decimal::ZERO,
        created_at: ms(t)?,
        created_at_local: t.to_string(),
        trades_count: 0,
        provenance: prov,
    })
}

/// `GET /api/v3/openOrders`, `GET /api/v3/allOrders`: a list of orders.
pub fn parse_orders(
    body: &[u8],
    markets: &Markets,
    prov: Option<Provenance>,
) -> WireResult<Vec<Order>> {
    let rows: Vec<WireOrder> = parse(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    rows.into_iter()
        .map(|w| order_of(w, markets, &mut cache, prov.clone()))
        .collect()
}

/// `GET /api/v3/order`: one order.
pub fn parse_order(body: &[u8], markets: &Markets, prov: Option<Provenance>) -> WireResult<Order> {
    let w: WireOrder = parse(body)?;
    order_of(w, markets, &mut MarketCache::default(), prov.map(Arc::new))
}

/// What a cancel answer says about one order (`DELETE /api/v3/order`, each order of
/// `DELETE /api/v3/openOrders`, order lists' `orderReports` included). Cancel answers carry no
/// creation time, so they are not orders of the export: the caller joins them to the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancelled {
    pub symbol: String,
    pub order_id: String,
    pub status: String,
    pub executed_volume: Decimal,
    pub executed_funds: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCancelled {
    symbol: Option<String>,
    order_id: Option<i64>,
    status: Option<String>,
    executed_qty: Option<Dec>,
    cummulative_quote_qty: Option<Dec>,
    /// An order list (OCO, OTO…): its orders' reports.
    #[serde(default)]
    order_reports: Vec<WireCancelled>,
}

fn cancelled_of(w: WireCancelled, out: &mut Vec<Cancelled>) {
    if let (Some(symbol), Some(id)) = (w.symbol.clone(), w.order_id) {
        out.push(Cancelled {
            symbol,
            order_id: id.to_string(),
            status: w.status.clone().unwrap_or_default(),
            executed_volume: dec(w.executed_qty).unwrap_or_default(),
            executed_funds: dec(w.cummulative_quote_qty).filter(|v| *v >= Decimal::ZERO),
        });
    }
    for r in w.order_reports {
        cancelled_of(r, out);
    }
}

/// An order list still executing, as `GET /api/v3/openOrderList` lists it: its id, symbol
/// and the ids of its orders.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenList {
    pub list_id: String,
    pub symbol: String,
    pub order_ids: Vec<String>,
}

/// `GET /api/v3/openOrderList`: the order lists (OCO, OTO…) still open, every symbol.
pub fn parse_open_lists(body: &[u8]) -> WireResult<Vec<OpenList>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Leg {
        order_id: i64,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct List {
        order_list_id: i64,
        symbol: String,
        #[serde(default)]
        orders: Vec<Leg>,
    }
    let rows: Vec<List> = parse(body)?;
    Ok(rows
        .into_iter()
        .map(|l| OpenList {
            list_id: l.order_list_id.to_string(),
            symbol: l.symbol,
            order_ids: l.orders.iter().map(|o| o.order_id.to_string()).collect(),
        })
        .collect())
}

/// `GET /api/v3/allOrders` without a window (the most recent orders): the last time any of
/// them was created or updated; `None` for no order.
pub fn parse_latest_order_time(body: &[u8]) -> WireResult<Option<DateTime<Utc>>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Times {
        time: i64,
        update_time: Option<i64>,
    }
    let rows: Vec<Times> = parse(body)?;
    rows.iter()
        .map(|r| r.update_time.unwrap_or(r.time).max(r.time))
        .max()
        .map(ms)
        .transpose()
}

/// `DELETE /api/v3/openOrders` (an array of orders and order lists) or `DELETE /api/v3/order`
/// (one order).
pub fn parse_cancelled(body: &[u8]) -> WireResult<Vec<Cancelled>> {
    let v: serde_json::Value = parse(body)?;
    let items: Vec<WireCancelled> = match v {
        serde_json::Value::Array(_) => serde_json::from_value(v)?,
        serde_json::Value::Object(_) => vec![serde_json::from_value(v)?],
        other => {
            return Err(WireError::shape(format!(
                "expected the cancelled orders, found {other}"
            )))
        }
    };
    let mut out = Vec::new();
    for w in items {
        cancelled_of(w, &mut out);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTrade {
    symbol: String,
    id: i64,
    order_id: i64,
    price: Dec,
    qty: Dec,
    quote_qty: Option<Dec>,
    commission: Option<Dec>,
    commission_asset: Option<String>,
    time: i64,
    is_buyer: bool,
}

/// `GET /api/v3/myTrades`: fills. The fee is in the quote currency: a commission paid in the
/// base asset is valued at the fill's price; one paid in a third asset (BNB) is unknown here.
pub fn parse_trades(
    body: &[u8],
    markets: &Markets,
    prov: Option<Provenance>,
) -> WireResult<Vec<Fill>> {
    let rows: Vec<WireTrade> = parse(body)?;
    let prov = prov.map(Arc::new);
    let mut cache = MarketCache::default();
    rows.into_iter()
        .map(|t| {
            let market = market_of(markets, &mut cache, &t.symbol);
            let funds = dec(t.quote_qty).unwrap_or(t.price.0 * t.qty.0);
            let fee = match (dec(t.commission), t.commission_asset.as_deref()) {
                (Some(c), Some(a)) if a == market.quote.as_str() => Some(c),
                (Some(c), Some(a)) if a == market.base.as_str() => Some(c * t.price.0),
                (Some(c), _) if c.is_zero() => Some(Decimal::ZERO),
                _ => None,
            };
            Ok(Fill {
                id: t.id.to_string(),
                order_id: t.order_id.to_string(),
                side: if t.is_buyer { Side::Buy } else { Side::Sell },
                market,
                price: t.price.0,
                volume: t.qty.0,
                funds,
                fee,
                created_at: ms(t.time)?,
                created_at_local: t.time.to_string(),
                provenance: prov.clone(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------- transfers

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWithdrawal {
    id: String,
    amount: Dec,
    transaction_fee: Option<Dec>,
    coin: String,
    status: Option<i64>,
    address: Option<String>,
    address_tag: Option<String>,
    tx_id: Option<String>,
    apply_time: Option<String>,
    complete_time: Option<String>,
    network: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDeposit {
    id: Option<serde_json::Value>,
    amount: Dec,
    coin: String,
    network: Option<String>,
    status: Option<i64>,
    address: Option<String>,
    address_tag: Option<String>,
    tx_id: Option<String>,
    insert_time: Option<i64>,
    complete_time: Option<i64>,
}

/// The withdrawal history's UTC times, `2025-01-02 00:05:12`.
fn utc_text(s: &str) -> WireResult<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .map(|n| n.and_utc())
        .map_err(|_| WireError::shape(format!("not a time like 2025-01-02 00:05:12: {s:?}")))
}

/// A withdrawal's status code in words (and whether it is still pending).
pub fn withdrawal_state(status: Option<i64>) -> (&'static str, bool) {
    match status {
        Some(0) => ("EMAIL_SENT", true),
        Some(1) => ("CANCELLED", false),
        Some(2) => ("AWAITING_APPROVAL", true),
        Some(3) => ("REJECTED", false),
        Some(4) => ("PROCESSING", true),
        Some(5) => ("FAILURE", false),
        Some(6) => ("COMPLETED", false),
        _ => ("UNKNOWN", false),
    }
}

/// The states of [`withdrawal_state`] and [`deposit_state`] in neutral terms.
pub fn transfer_status(state: &str) -> crate::exchange::TransferStatus {
    use crate::exchange::TransferStatus::*;
    match state {
        "COMPLETED" | "SUCCESS" | "CREDITED_NOT_WITHDRAWABLE" => Completed,
        "EMAIL_SENT"
        | "AWAITING_APPROVAL"
        | "PROCESSING"
        | "PENDING"
        | "WAITING_USER_CONFIRMATION" => Pending,
        "CANCELLED" | "REJECTED" | "FAILURE" | "WRONG_DEPOSIT" => Failed,
        _ => Unknown,
    }
}

fn deposit_state(status: Option<i64>) -> &'static str {
    match status {
        Some(0) => "PENDING",
        Some(1) => "SUCCESS",
        Some(2) => "REJECTED",
        Some(6) => "CREDITED_NOT_WITHDRAWABLE",
        Some(7) => "WRONG_DEPOSIT",
        Some(8) => "WAITING_USER_CONFIRMATION",
        _ => "UNKNOWN",
    }
}

/// `GET /sapi/v1/capital/withdraw/history`. A pending withdrawal is still not cancelable:
/// Binance has no API for it.
pub fn parse_withdrawals(body: &[u8], prov: Option<Provenance>) -> WireResult<Vec<Transfer>> {
    let rows: Vec<WireWithdrawal> = parse(body)?;
    let prov = prov.map(Arc::new);
    rows.into_iter()
        .map(|w| {
            let applied = w.apply_time.as_deref().unwrap_or_default();
            let (state, _) = withdrawal_state(w.status);
            Ok(Transfer {
                id: w.id,
                kind: TransferKind::Withdrawal,
                currency: w.coin,
                net_type: w.network.filter(|n| !n.is_empty()),
                txid: w.tx_id.filter(|t| !t.is_empty()),
                state: state.into(),
                status: transfer_status(state),
                amount: w.amount.0,
                fee: dec(w.transaction_fee),
                address: w.address.map(|a| match w.address_tag.as_deref() {
                    Some(tag) if !tag.is_empty() => format!("{a} (tag {tag})"),
                    _ => a,
                }),
                created_at: utc_text(applied)?,
                created_at_local: applied.to_string(),
                done_at: w
                    .complete_time
                    .as_deref()
                    .filter(|c| !c.is_empty())
                    .map(utc_text)
                    .transpose()?,
                is_cancelable: false,
                provenance: prov.clone(),
            })
        })
        .collect()
}

/// `GET /sapi/v1/capital/deposit/hisrec`.
pub fn parse_deposits(body: &[u8], prov: Option<Provenance>) -> WireResult<Vec<Transfer>> {
    let rows: Vec<WireDeposit> = parse(body)?;
    let prov = prov.map(Arc::new);
    rows.into_iter()
        .map(|d| {
            let t = d
                .insert_time
                .ok_or_else(|| WireError::shape("a deposit without insertTime"))?;
            let id = match d.id {
                Some(serde_json::Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => d.tx_id.clone().unwrap_or_default(),
            };
            Ok(Transfer {
                id,
                kind: TransferKind::Deposit,
                currency: d.coin,
                net_type: d.network.filter(|n| !n.is_empty()),
                txid: d.tx_id.filter(|t| !t.is_empty()),
                state: deposit_state(d.status).into(),
                status: transfer_status(deposit_state(d.status)),
                amount: d.amount.0,
                fee: None,
                address: d.address.map(|a| match d.address_tag.as_deref() {
                    Some(tag) if !tag.is_empty() => format!("{a} (tag {tag})"),
                    _ => a,
                }),
                created_at: ms(t)?,
                created_at_local: t.to_string(),
                done_at: d.complete_time.map(ms).transpose()?,
                is_cancelable: false,
                provenance: prov.clone(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAddress {
    address: String,
    address_tag: Option<String>,
    coin: String,
    network: Option<String>,
    white_status: Option<bool>,
}

/// `GET /sapi/v1/capital/withdraw/address/list`: the address book; the addresses on the
/// withdrawal whitelist (`whiteStatus`) are the allowlist.
pub fn parse_addresses(body: &[u8]) -> WireResult<Vec<WithdrawalAddress>> {
    let rows: Vec<WireAddress> = parse(body)?;
    Ok(rows
        .into_iter()
        .filter(|a| a.white_status != Some(false))
        .map(|a| WithdrawalAddress {
            currency: a.coin,
            net_type: a.network.filter(|n| !n.is_empty()),
            address: a.address,
            secondary_address: a.address_tag.filter(|t| !t.is_empty()),
            // The address book gives no time an address was added.
            registered_at: None,
        })
        .collect())
}

// ---------------------------------------------------------------- market data

/// `GET /api/v3/klines`: arrays of `[open time, open, high, low, close, volume, close time,
/// quote volume, …]`, oldest first; returned newest first like every adapter's candles.
pub fn parse_klines(body: &[u8], market: &Market) -> WireResult<Vec<Candle>> {
    let rows: Vec<Vec<serde_json::Value>> = parse(body)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let num = |i: usize| -> WireResult<Decimal> {
            let v = r
                .get(i)
                .ok_or_else(|| WireError::shape(format!("a kline without field {i}")))?;
            serde_json::from_value::<Dec>(v.clone())
                .map(|d| d.0)
                .map_err(|e| WireError::shape(format!("kline field {i}: {e}")))
        };
        let open_time = r
            .first()
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| WireError::shape("a kline without an open time"))?;
        out.push(Candle {
            market: market.clone(),
            start: ms(open_time)?,
            open: num(1)?,
            high: num(2)?,
            low: num(3)?,
            close: num(4)?,
            volume: num(5)?,
            value: num(7)?,
        });
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The sample answers of docs/exchanges/binance.md §4.1.
    pub const ORDER: &str = r#"{"symbol":"BTCUSDT","orderId":28457120,"orderListId":-1,"clientOrderId":"x-TKT5PX2F0a1b2c3d4e5f60718293a4",
 "price":"95000.00000000","origQty":"0.01000000","executedQty":"0.00400000","cummulativeQuoteQty":"380.00000000",
 "status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"BUY","stopPrice":"0.00000000","icebergQty":"0.00000000",
 "time":1735775000000,"updateTime":1735775100000,"isWorking":true,"workingTime":1735775000000,
 "origQuoteOrderQty":"0.00000000","selfTradePreventionMode":"EXPIRE_MAKER"}"#;
    const TRADES: &str = r#"[{"symbol":"BTCUSDT","id":4100001,"orderId":28457121,"orderListId":-1,"price":"95218.00000000","qty":"0.00105000",
  "quoteQty":"99.97890000","commission":"0.00000105","commissionAsset":"BTC","time":1735776000456,
  "isBuyer":true,"isMaker":false,"isBestMatch":true}]"#;
    const ACCOUNT: &str = r#"{"makerCommission":10,"takerCommission":10,"buyerCommission":0,"sellerCommission":0,
 "canTrade":true,"canWithdraw":true,"canDeposit":true,"updateTime":1735775990000,"accountType":"SPOT",
 "balances":[{"asset":"BTC","free":"0.12000000","locked":"0.00000000"},{"asset":"USDT","free":"1500.00000000","locked":"250.00000000"},{"asset":"LTC","free":"0.00000000","locked":"0.00000000"}],
 "permissions":["SPOT"],"uid":354937868}"#;
    const RESTRICTIONS: &str = r#"{"ipRestrict":false,"createTime":1698645219000,"enableReading":true,"enableWithdrawals":false,
 "enableInternalTransfer":false,"enableMargin":false,"enableFutures":false,"permitsUniversalTransfer":false,
 "enableVanillaOptions":false,"enableFixApiTrade":false,"enableFixReadOnly":true,
 "enableSpotAndMarginTrading":true,"enablePortfolioMarginTrading":false,"tradingAuthorityExpirationTime":1767225600000}"#;
    const WITHDRAWALS: &str = r#"[{"id":"b6ae22b3aa844210a7041aee7589627c","amount":"8.91000000","transactionFee":"0.004","coin":"USDT","status":6,
  "address":"0x94df8b352de7f46f64b01d3666bf6e936e44ce60","addressTag":"","txId":"0xb5ef9268",
  "applyTime":"2025-01-02 00:05:12","network":"ETH","transferType":0,"withdrawOrderId":"WITHDRAWtest123",
  "info":"","confirmNo":3,"walletType":1,"txKey":"","completeTime":"2025-01-02 00:09:40"}]"#;
    const DEPOSITS: &str = r#"[{"id":"769800519366885376","amount":"0.001","coin":"BNB","network":"BNB","status":1,
  "address":"bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23","addressTag":"101764890","txId":"98A3EA56FACFC",
  "insertTime":1735770000000,"completeTime":1735770060000,"transferType":0,"confirmTimes":"1/1",
  "unlockConfirm":0,"walletType":0,"travelRuleStatus":0}]"#;
    const KLINES: &str = r#"[[1735775940000,"95100.00","95240.00","95080.00","95218.00","12.34500000",1735775999999,"1174563.21",812,"6.10000000","580333.40","0"]]"#;
    pub const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","serverTime":1735776000123,
 "rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}],
 "exchangeFilters":[],
 "symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,
   "quoteAsset":"USDT","quotePrecision":8,"quoteAssetPrecision":8,
   "orderTypes":["LIMIT","LIMIT_MAKER","MARKET"],
   "filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},
              {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},
              {"filterType":"NOTIONAL","minNotional":"5.00000000","applyMinToMarket":true}],
   "permissions":[],"permissionSets":[["SPOT","MARGIN"]]},
  {"symbol":"WEIRDUSDTX","status":"BREAK","baseAsset":"WEIRDUSDT","quoteAsset":"X","filters":[]}]}"#;

    fn markets() -> Markets {
        parse_exchange_info(EXCHANGE_INFO.as_bytes())
            .unwrap()
            .into_iter()
            .map(|m| (m.market.symbol.to_string(), m))
            .collect()
    }

    #[test]
    fn exchange_info_gives_base_quote_and_filters() {
        let m = markets();
        let btc = &m["BTCUSDT"];
        assert_eq!(
            (btc.market.base.as_str(), btc.market.quote.as_str()),
            ("BTC", "USDT")
        );
        assert_eq!(btc.tick_size.unwrap().normalize().to_string(), "0.01");
        assert_eq!(btc.lot_size.unwrap().normalize().to_string(), "0.00001");
        assert_eq!(btc.min_notional.unwrap().normalize().to_string(), "5");
        assert_eq!(btc.status.as_deref(), Some("TRADING"));
        // The list decides where the heuristic would split otherwise.
        let w = &m["WEIRDUSDTX"].market;
        assert_eq!((w.base.as_str(), w.quote.as_str()), ("WEIRDUSDT", "X"));
    }

    /// Orders placed in Binance's website or app carry an id Binance made up: no client id.
    #[test]
    fn ids_binance_assigned_in_its_ui_are_no_client_ids() {
        for (id, sent) in [
            ("web_1e3d4378460b4bc88627c6a89cc18ae9", false),
            ("and_059bea04ee574a76878c4de37dae7e7c", false),
            ("ios_704b002f280b4b489cf35d53a38e95dd", false),
            ("x-TKT5PX2F0a1b2c3d4e5f60718293a4", true),
            ("web_manual_tp", true),
            ("freqtrade-17", true),
            ("6gCrw2kRUAF9CvJDGP16IP", true),
        ] {
            let body = ORDER.replace("x-TKT5PX2F0a1b2c3d4e5f60718293a4", id);
            let o = parse_order(body.as_bytes(), &markets(), None).unwrap();
            assert_eq!(o.client_id.is_some(), sent, "{id}");
        }
    }

    #[test]
    fn orders_keep_limit_price_apart_from_quote_amount() {
        let o = parse_order(ORDER.as_bytes(), &markets(), None).unwrap();
        assert_eq!(o.id, "28457120");
        assert_eq!(
            o.client_id.as_deref(),
            Some("x-TKT5PX2F0a1b2c3d4e5f60718293a4")
        );
        assert_eq!(o.state, OrderState::Open);
        assert_eq!(o.order_type, OrderType::Limit);
        assert_eq!(o.price.unwrap().normalize().to_string(), "95000");
        assert_eq!(o.quote_amount, None);
        assert_eq!(o.remaining_volume.unwrap().normalize().to_string(), "0.006");
        assert_eq!(o.executed_funds.unwrap().normalize().to_string(), "380");
        assert_eq!(o.created_at.timestamp_millis(), 1735775000000);
        assert_eq!(o.created_at_local, "1735775000000");
        let market_buy = ORDER
            .replace(r#""type":"LIMIT""#, r#""type":"MARKET""#)
            .replace(
                r#""origQuoteOrderQty":"0.00000000""#,
                r#""origQuoteOrderQty":"100.00000000""#,
            )
            .replace(
                r#""cummulativeQuoteQty":"380.00000000""#,
                r#""cummulativeQuoteQty":"-1.00000000""#,
            );
        let o = parse_order(market_buy.as_bytes(), &markets(), None).unwrap();
        assert_eq!(o.order_type, OrderType::Market);
        assert_eq!(o.price, None);
        assert_eq!(o.quote_amount.unwrap().normalize().to_string(), "100");
        assert_eq!(
            o.executed_funds, None,
            "a negative cummulativeQuoteQty means unknown"
        );
    }

    #[test]
    fn trades_value_a_base_commission_in_quote() {
        let f = parse_trades(TRADES.as_bytes(), &markets(), None).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].id.as_str(), f[0].order_id.as_str()),
            ("4100001", "28457121")
        );
        assert_eq!(f[0].side, Side::Buy);
        assert_eq!(f[0].funds.normalize().to_string(), "99.9789");
        // 0.00000105 BTC at 95218.
        assert_eq!(f[0].fee.unwrap().normalize().to_string(), "0.0999789");
        let bnb = TRADES.replace(r#""commissionAsset":"BTC""#, r#""commissionAsset":"BNB""#);
        assert_eq!(
            parse_trades(bnb.as_bytes(), &markets(), None).unwrap()[0].fee,
            None
        );
    }

    #[test]
    fn balances_leave_out_zero_assets() {
        let b = parse_balances(ACCOUNT.as_bytes()).unwrap();
        let names: Vec<&str> = b.iter().map(|b| b.currency.as_str()).collect();
        assert_eq!(names, ["BTC", "USDT"]);
        assert_eq!(b[1].locked.normalize().to_string(), "250");
    }

    #[test]
    fn restrictions_name_held_permissions_and_the_ip_restriction() {
        let r = parse_restrictions(RESTRICTIONS.as_bytes()).unwrap();
        let k = key_of(&r, "abcd…wxyz");
        assert_eq!(
            k.scopes.unwrap(),
            [
                "enableReading",
                "enableSpotAndMarginTrading",
                "enableFixReadOnly"
            ]
        );
        assert_eq!(k.allowed_ips, Some(vec![]));
        assert_eq!(r.trading_authority_expiration_time, Some(1767225600000));
        let restricted = RESTRICTIONS.replace(r#""ipRestrict":false"#, r#""ipRestrict":true"#);
        let r = parse_restrictions(restricted.as_bytes()).unwrap();
        assert_eq!(key_of(&r, "k").allowed_ips, None);
        // Fields Binance adds later are ignored.
        assert!(parse_restrictions(br#"{"enableReading":true,"enableNewThing":true}"#).is_ok());
    }

    #[test]
    fn transfers_read_both_time_formats() {
        let w = parse_withdrawals(WITHDRAWALS.as_bytes(), None).unwrap();
        assert_eq!(w[0].state, "COMPLETED");
        // Shared code reads the neutral status: an earlier COMPLETED withdrawal vouches for
        // its destination as an earlier DONE one does on Upbit.
        assert_eq!(w[0].status, crate::exchange::TransferStatus::Completed);
        assert!(!w[0].is_cancelable);
        assert_eq!(crate::time::ts(w[0].created_at), "2025-01-02T00:05:12.000Z");
        assert_eq!(
            w[0].address.as_deref(),
            Some("0x94df8b352de7f46f64b01d3666bf6e936e44ce60")
        );
        assert_eq!(w[0].net_type.as_deref(), Some("ETH"));
        let d = parse_deposits(DEPOSITS.as_bytes(), None).unwrap();
        assert_eq!(d[0].id, "769800519366885376");
        assert_eq!(d[0].state, "SUCCESS");
        assert_eq!(
            d[0].address.as_deref(),
            Some("bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23 (tag 101764890)")
        );
        assert_eq!(d[0].created_at.timestamp_millis(), 1735770000000);
    }

    #[test]
    fn klines_come_back_newest_first() {
        let m = Market::new("BTCUSDT", "BTC", "USDT");
        let two = KLINES.replace("]]", "],[1735776000000,\"1\",\"2\",\"0.5\",\"1.5\",\"3\",1735776059999,\"4.5\",1,\"0\",\"0\",\"0\"]]");
        let c = parse_klines(two.as_bytes(), &m).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].start > c[1].start);
        assert_eq!(c[1].close.normalize().to_string(), "95218");
        assert_eq!(c[1].value.normalize().to_string(), "1174563.21");
    }

    #[test]
    fn errors_are_negative_codes_or_sapi_failures() {
        assert_eq!(
            parse_error(
                br#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#
            ),
            Some((
                "-2015".into(),
                "Invalid API-key, IP, or permissions for action.".into()
            ))
        );
        assert_eq!(
            parse_error(br#"{"success":false,"msg":"no"}"#),
            Some(("sapi".into(), "no".into()))
        );
        assert_eq!(
            parse_error(br#"{"code":200,"msg":"","snapshotVos":[]}"#),
            None
        );
        assert_eq!(parse_error(b"[]"), None);
        assert_eq!(parse_error(b"<html>"), None);
    }

    #[test]
    fn cancels_include_order_lists() {
        let body = r#"[{"symbol":"BTCUSDT","origClientOrderId":"a","orderId":11,"orderListId":-1,"clientOrderId":"c","transactTime":1,"price":"1","origQty":"1","executedQty":"0.5","cummulativeQuoteQty":"0.5","status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY"},
          {"orderListId":7,"contingencyType":"OCO","listStatusType":"ALL_DONE","listOrderStatus":"ALL_DONE","listClientOrderId":"l","transactionTime":2,"symbol":"BTCUSDT",
           "orders":[{"symbol":"BTCUSDT","orderId":12,"clientOrderId":"o1"},{"symbol":"BTCUSDT","orderId":13,"clientOrderId":"o2"}],
           "orderReports":[{"symbol":"BTCUSDT","orderId":12,"status":"CANCELED","executedQty":"0"},{"symbol":"BTCUSDT","orderId":13,"status":"CANCELED","executedQty":"0"}]}]"#;
        let c = parse_cancelled(body.as_bytes()).unwrap();
        let ids: Vec<&str> = c.iter().map(|c| c.order_id.as_str()).collect();
        assert_eq!(ids, ["11", "12", "13"]);
        assert_eq!(c[0].executed_volume.normalize().to_string(), "0.5");
    }

    #[test]
    fn open_order_lists_name_their_orders() {
        let body = r#"[{"orderListId":31,"contingencyType":"OCO","listStatusType":"EXEC_STARTED","listOrderStatus":"EXECUTING","listClientOrderId":"l","transactionTime":2,"symbol":"PUMPUSDT",
           "orders":[{"symbol":"PUMPUSDT","orderId":12,"clientOrderId":"o1"},{"symbol":"PUMPUSDT","orderId":13,"clientOrderId":"o2"}]}]"#;
        let l = parse_open_lists(body.as_bytes()).unwrap();
        assert_eq!(
            l,
            [OpenList {
                list_id: "31".into(),
                symbol: "PUMPUSDT".into(),
                order_ids: vec!["12".into(), "13".into()]
            }]
        );
        assert!(parse_open_lists(b"[]").unwrap().is_empty());
        assert!(parse_open_lists(br#"{"orderListId":1}"#).is_err());
    }

    #[test]
    fn snapshots_list_assets_per_day() {
        let body = r#"{"code":200,"msg":"","snapshotVos":[{"data":{"balances":[{"asset":"BTC","free":"0.09905021","locked":"0.00000000"},{"asset":"PUMP","free":"0","locked":"0"}],"totalAssetOfBtc":"0.09942700"},"type":"spot","updateTime":1576281599000}]}"#;
        let s = parse_snapshots(body.as_bytes()).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].balances.len(), 1);
        assert_eq!(s[0].at.timestamp_millis(), 1576281599000);
    }
}
