//! Upbit wire formats: the one place that turns Upbit's JSON into normalized types.
//!
//! Both the live client ([`super::client`]) and the offline rebuild ([`super::decode`]) parse
//! through these functions, so a bundle re-analyzed later yields exactly what the run saw.
//! Upbit's exchange API sends decimals as strings, the quotation API as JSON numbers, and both
//! omit null fields; every wire struct therefore takes optional fields and a decimal type that
//! accepts either form. Times keep the exchange's own rendering beside the UTC value.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::market;
use crate::exchange::decimal::{dec, Dec};
use crate::exchange::replay::DecodeError;
use crate::exchange::{
    ApiKeyInfo, Balance, Candle, CompactString, Fill, MarketCache, MarketInfo, Order, OrderState,
    OrderType, Provenance, Side, Transfer, TransferKind, WithdrawalAddress,
};

/// A body that could not be read as the expected shape.
pub type WireError = DecodeError;

pub type WireResult<T> = std::result::Result<T, WireError>;

fn market_in(cache: &mut MarketCache, symbol: &str) -> crate::exchange::Market {
    cache
        .get(symbol, |s| Ok::<_, std::convert::Infallible>(market(s)))
        .unwrap_or_else(|e| match e {})
}

/// Parses an Upbit timestamp: RFC 3339 with offset (`+09:00`, possibly microseconds), or a
/// naive `YYYY-MM-DDTHH:MM:SS` that candles label `_utc`.
pub fn parse_time(s: &str) -> WireResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(n.and_utc());
        }
    }
    Err(WireError::shape(format!("not a timestamp: {s:?}")))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> WireResult<T> {
    Ok(crate::exchange::replay::json(body)?)
}

// ---------------------------------------------------------------- errors and headers

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    name: serde_json::Value,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

/// The `(name, message)` of an error envelope, when the body is one. Numeric names (the
/// quotation API) are rendered as text.
pub fn parse_error_envelope(body: &[u8]) -> Option<(String, String)> {
    let env: Envelope = serde_json::from_slice(body).ok()?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let name = text(&env.error.name);
    let message = env.error.message.as_ref().map(text).unwrap_or_default();
    Some((normalize_error_name(&name), message))
}

/// One spelling per error: `no_authorization_ip` (newer docs) becomes the older
/// `no_authorization_i_p` so callers match a single name.
pub fn normalize_error_name(name: &str) -> String {
    match name {
        "no_authorization_ip" => "no_authorization_i_p".to_string(),
        other => other.to_string(),
    }
}

/// `Remaining-Req: group=default; min=1800; sec=29`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemainingReq {
    pub group: String,
    pub min: Option<u32>,
    pub sec: Option<u32>,
}

pub fn parse_remaining_req(value: &str) -> Option<RemainingReq> {
    let mut group = None;
    let mut min = None;
    let mut sec = None;
    for part in value.split(';') {
        let mut kv = part.splitn(2, '=');
        let k = kv.next()?.trim();
        let v = kv.next().map(str::trim).unwrap_or("");
        match k {
            "group" => group = Some(v.to_string()),
            "min" => min = v.parse().ok(),
            "sec" => sec = v.parse().ok(),
            _ => {}
        }
    }
    Some(RemainingReq {
        group: group.filter(|g| !g.is_empty())?,
        min,
        sec,
    })
}

// ---------------------------------------------------------------- accounts and keys

#[derive(Deserialize)]
struct WireAccount {
    currency: String,
    balance: Dec,
    locked: Option<Dec>,
    avg_buy_price: Option<Dec>,
    unit_currency: Option<String>,
}

pub fn parse_balances(body: &[u8]) -> WireResult<Vec<Balance>> {
    let rows: Vec<WireAccount> = parse(body)?;
    Ok(rows
        .into_iter()
        .map(|a| Balance {
            currency: a.currency,
            free: a.balance.0,
            locked: dec(a.locked).unwrap_or_default(),
            avg_buy_price: dec(a.avg_buy_price),
            unit_currency: a.unit_currency,
        })
        .collect())
}

#[derive(Deserialize)]
struct WireApiKey {
    access_key: String,
    expire_at: Option<String>,
}

/// `GET /v1/api_keys`. Keys are masked here and never leave this function whole;
/// `current_masked` marks the key the request was made with.
pub fn parse_api_keys(body: &[u8], current_masked: &str) -> WireResult<Vec<ApiKeyInfo>> {
    let rows: Vec<WireApiKey> = parse(body)?;
    rows.into_iter()
        .map(|k| {
            let masked = crate::secret::mask_key(&k.access_key);
            Ok(ApiKeyInfo {
                is_current: masked == current_masked,
                access_key_masked: masked,
                expire_at: k.expire_at.as_deref().map(parse_time).transpose()?,
                scopes: None,
                allowed_ips: None,
            })
        })
        .collect()
}

// ---------------------------------------------------------------- orders and fills

#[derive(Deserialize)]
struct WireTrade {
    market: CompactString,
    uuid: String,
    price: Dec,
    volume: Dec,
    funds: Option<Dec>,
    side: String,
    created_at: String,
}

#[derive(Deserialize)]
struct WireOrder {
    uuid: String,
    side: String,
    ord_type: CompactString,
    price: Option<Dec>,
    state: String,
    market: CompactString,
    created_at: String,
    volume: Option<Dec>,
    remaining_volume: Option<Dec>,
    paid_fee: Option<Dec>,
    executed_volume: Option<Dec>,
    executed_funds: Option<Dec>,
    trades_count: Option<u32>,
    identifier: Option<CompactString>,
    #[serde(default)]
    trades: Option<Vec<WireTrade>>,
}

fn side(s: &str) -> WireResult<Side> {
    match s {
        "bid" => Ok(Side::Buy),
        "ask" => Ok(Side::Sell),
        other => Err(WireError::shape(format!("unknown side {other:?}"))),
    }
}

/// Normalized state of an Upbit order state name.
pub fn order_state(s: &str) -> OrderState {
    match s {
        "wait" | "watch" => OrderState::Open,
        "done" => OrderState::Done,
        "cancel" => OrderState::Cancelled,
        _ => OrderState::Other,
    }
}

fn order_type(s: &str) -> OrderType {
    match s {
        "limit" => OrderType::Limit,
        "price" | "market" => OrderType::Market,
        "best" => OrderType::Best,
        _ => OrderType::Other,
    }
}

impl WireOrder {
    fn into_order(
        self,
        prov: &Option<Arc<Provenance>>,
        markets: &mut MarketCache,
    ) -> WireResult<(Order, Vec<Fill>)> {
        let order_side = side(&self.side)?;
        let fills = self
            .trades
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let funds = dec(t.funds).unwrap_or(t.price.0 * t.volume.0);
                Ok(Fill {
                    id: t.uuid,
                    order_id: self.uuid.clone(),
                    market: market_in(markets, &t.market),
                    side: side(&t.side)?,
                    price: t.price.0,
                    volume: t.volume.0,
                    funds,
                    fee: None,
                    created_at: parse_time(&t.created_at)?,
                    created_at_local: t.created_at,
                    provenance: prov.clone(),
                })
            })
            .collect::<WireResult<Vec<_>>>()?;
        let executed_funds = dec(self.executed_funds).or_else(|| {
            (!fills.is_empty()).then(|| fills.iter().map(|f| f.funds).sum::<Decimal>())
        });
        // `price` orders (market buys) and `best` bids give in `price` the quote amount to
        // spend, not a limit.
        let by_amount =
            self.ord_type == "price" || (self.ord_type == "best" && order_side == Side::Buy);
        let (price, quote_amount) = if by_amount {
            (None, dec(self.price))
        } else {
            (dec(self.price), None)
        };
        let order = Order {
            client_id: self.identifier,
            market: market_in(markets, &self.market),
            side: order_side,
            order_type: order_type(&self.ord_type),
            native_type: self.ord_type,
            state: order_state(&self.state),
            price,
            quote_amount,
            volume: dec(self.volume),
            remaining_volume: dec(self.remaining_volume),
            executed_volume: dec(self.executed_volume).unwrap_or_default(),
            executed_funds,
            paid_fee: dec(self.paid_fee).unwrap_or_default(),
            created_at: parse_time(&self.created_at)?,
            created_at_local: self.created_at,
            trades_count: self.trades_count.unwrap_or(fills.len() as u32),
            provenance: prov.clone(),
            id: self.uuid,
        };
        Ok((order, fills))
    }
}

/// One order (`GET /v1/order`, `DELETE /v1/order`) with its `trades[]` as fills.
pub fn parse_order(body: &[u8], prov: Option<Provenance>) -> WireResult<(Order, Vec<Fill>)> {
    let w: WireOrder = parse(body)?;
    w.into_order(&prov.map(Arc::new), &mut MarketCache::default())
}

/// A list of orders (`/v1/orders/open`, `/v1/orders/closed`, `/v1/orders/uuids`).
pub fn parse_orders(body: &[u8], prov: Option<Provenance>) -> WireResult<Vec<Order>> {
    let prov = prov.map(Arc::new);
    let rows: Vec<WireOrder> = parse(body)?;
    let mut markets = MarketCache::default();
    rows.into_iter()
        .map(|w| w.into_order(&prov, &mut markets).map(|(o, _)| o))
        .collect()
}

/// The uuids an Upbit state name list refers to, kept with their raw state (`wait`/`watch`
/// matters for batch cancel, which only takes `wait`).
pub fn parse_order_states(body: &[u8]) -> WireResult<Vec<(String, String)>> {
    #[derive(Deserialize)]
    struct S {
        uuid: String,
        state: String,
    }
    let rows: Vec<S> = parse(body)?;
    Ok(rows.into_iter().map(|s| (s.uuid, s.state)).collect())
}

/// `DELETE /v1/orders/open` and `DELETE /v1/orders/uuids`:
/// `{success:{count,orders:[{uuid,market,…}]}, failed:{count,orders:[{uuid,…,error_message}]}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchCancel {
    pub accepted: Vec<String>,
    pub failed: Vec<(String, String)>,
}

pub fn parse_batch_cancel(body: &[u8]) -> WireResult<BatchCancel> {
    #[derive(Deserialize)]
    struct Entry {
        uuid: String,
        #[serde(default)]
        error_message: Option<String>,
        #[serde(default)]
        error_code: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct Group {
        #[serde(default)]
        orders: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Resp {
        #[serde(default)]
        success: Option<Group>,
        #[serde(default)]
        failed: Option<Group>,
    }
    let r: Resp = parse(body)?;
    Ok(BatchCancel {
        accepted: r
            .success
            .unwrap_or_default()
            .orders
            .into_iter()
            .map(|e| e.uuid)
            .collect(),
        failed: r
            .failed
            .unwrap_or_default()
            .orders
            .into_iter()
            .map(|e| {
                let reason = [e.error_code, e.error_message]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                (e.uuid, reason)
            })
            .collect(),
    })
}

// ---------------------------------------------------------------- withdrawals and deposits

#[derive(Deserialize)]
struct WireTransfer {
    uuid: String,
    currency: String,
    net_type: Option<String>,
    txid: Option<String>,
    state: String,
    created_at: String,
    done_at: Option<String>,
    amount: Dec,
    fee: Option<Dec>,
    #[serde(default)]
    is_cancelable: Option<bool>,
    #[serde(default)]
    address: Option<String>,
}

impl WireTransfer {
    fn into_transfer(
        self,
        kind: TransferKind,
        prov: &Option<Arc<Provenance>>,
    ) -> WireResult<Transfer> {
        Ok(Transfer {
            kind,
            currency: self.currency,
            net_type: self.net_type,
            txid: self.txid,
            status: transfer_status(&self.state),
            state: self.state,
            amount: self.amount.0,
            fee: dec(self.fee),
            address: self.address,
            created_at: parse_time(&self.created_at)?,
            created_at_local: self.created_at,
            done_at: self.done_at.as_deref().map(parse_time).transpose()?,
            is_cancelable: self.is_cancelable.unwrap_or(false),
            provenance: prov.clone(),
            id: self.uuid,
        })
    }
}

/// A list of withdrawals or deposits.
pub fn parse_transfers(
    body: &[u8],
    kind: TransferKind,
    prov: Option<Provenance>,
) -> WireResult<Vec<Transfer>> {
    let rows: Vec<WireTransfer> = parse(body)?;
    let prov = prov.map(Arc::new);
    rows.into_iter()
        .map(|t| t.into_transfer(kind, &prov))
        .collect()
}

/// One withdrawal or deposit (`GET /v1/withdraw`, `DELETE /v1/withdraws/coin`).
pub fn parse_transfer(
    body: &[u8],
    kind: TransferKind,
    prov: Option<Provenance>,
) -> WireResult<Transfer> {
    let t: WireTransfer = parse(body)?;
    t.into_transfer(kind, &prov.map(Arc::new))
}

/// `GET /v1/withdraws/coin_addresses`.
pub fn parse_withdrawal_addresses(body: &[u8]) -> WireResult<Vec<WithdrawalAddress>> {
    #[derive(Deserialize)]
    struct W {
        currency: String,
        net_type: Option<String>,
        withdraw_address: String,
        secondary_address: Option<String>,
    }
    let rows: Vec<W> = parse(body)?;
    Ok(rows
        .into_iter()
        .map(|w| WithdrawalAddress {
            currency: w.currency,
            net_type: w.net_type,
            address: w.withdraw_address,
            secondary_address: w.secondary_address.filter(|s| !s.is_empty()),
            registered_at: None,
        })
        .collect())
}

// ---------------------------------------------------------------- quotation

/// `GET /v1/candles/minutes/{unit}`, newest first as sent.
pub fn parse_candles(body: &[u8]) -> WireResult<Vec<Candle>> {
    #[derive(Deserialize)]
    struct C {
        market: String,
        candle_date_time_utc: String,
        opening_price: Dec,
        high_price: Dec,
        low_price: Dec,
        trade_price: Dec,
        candle_acc_trade_volume: Dec,
        candle_acc_trade_price: Dec,
    }
    let rows: Vec<C> = parse(body)?;
    rows.into_iter()
        .map(|c| {
            Ok(Candle {
                start: parse_time(&c.candle_date_time_utc)?,
                market: market(&c.market),
                open: c.opening_price.0,
                high: c.high_price.0,
                low: c.low_price.0,
                close: c.trade_price.0,
                volume: c.candle_acc_trade_volume.0,
                value: c.candle_acc_trade_price.0,
            })
        })
        .collect()
}

/// `GET /v1/market/all`: every market Upbit lists (no filters: Upbit's tick sizes are a
/// table by price, not per market).
pub fn parse_markets(body: &[u8]) -> WireResult<Vec<MarketInfo>> {
    #[derive(Deserialize)]
    struct M {
        market: String,
        #[serde(default)]
        market_warning: Option<String>,
    }
    let rows: Vec<M> = parse(body)?;
    Ok(rows
        .into_iter()
        .map(|m| MarketInfo {
            market: market(&m.market),
            status: m.market_warning,
            tick_size: None,
            lot_size: None,
            min_notional: None,
        })
        .collect())
}

/// Upbit's withdrawal and deposit states in neutral terms.
pub fn transfer_status(state: &str) -> crate::exchange::TransferStatus {
    use crate::exchange::TransferStatus::*;
    match state.to_ascii_uppercase().as_str() {
        "DONE" | "ACCEPTED" => Completed,
        "WAITING" | "PROCESSING" | "REFUNDING" | "TRAVEL_RULE_SUSPECTED" => Pending,
        "FAILED" | "CANCELLED" | "CANCELED" | "REJECTED" | "REFUNDED" => Failed,
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn order_with_trades_and_kst_times() {
        let body = br#"{"uuid":"u1","side":"bid","ord_type":"limit","price":"100.0","state":"done","market":"KRW-BTC","created_at":"2024-03-01T09:00:00+09:00","volume":"2","remaining_volume":"0","paid_fee":"0.1","executed_volume":"2","trades_count":1,"identifier":"bot-1",
          "trades":[{"market":"KRW-BTC","uuid":"t1","price":"100.0","volume":"2","funds":"200.0","trend":"up","side":"bid","created_at":"2024-03-01T09:00:01.123456+09:00"}]}"#;
        let (o, f) = parse_order(body, None).unwrap();
        assert_eq!(o.created_at.to_rfc3339(), "2024-03-01T00:00:00+00:00");
        assert_eq!(o.created_at_local, "2024-03-01T09:00:00+09:00");
        assert_eq!(o.client_id.as_deref(), Some("bot-1"));
        assert_eq!(o.executed_funds, Some(d("200.0")));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].order_id, "u1");
        assert_eq!(f[0].created_at.timestamp_subsec_micros(), 123456);
    }

    #[test]
    fn a_page_of_orders_shares_one_provenance_and_serializes_it_whole() {
        let body = br#"[{"uuid":"u1","side":"bid","ord_type":"limit","price":"1","state":"done","market":"KRW-BTC","created_at":"2024-03-01T09:00:00+09:00","volume":"1","remaining_volume":"0","paid_fee":"0","executed_volume":"1"},
                        {"uuid":"u2","side":"ask","ord_type":"market","state":"done","market":"KRW-ETH","created_at":"2024-03-01T09:00:01+09:00","volume":"1","remaining_volume":"0","paid_fee":"0","executed_volume":"1"}]"#;
        let p = Provenance {
            raw_file: "raw/000001-GET-v1_orders_closed.body".into(),
            raw_sha256: "ab".repeat(32),
        };
        let o = parse_orders(body, Some(p.clone())).unwrap();
        let (a, b) = (o[0].provenance.as_ref(), o[1].provenance.as_ref());
        assert!(
            Arc::ptr_eq(a.unwrap(), b.unwrap()),
            "one allocation per page"
        );
        // Shared or not, the JSON is the plain record.
        let j = serde_json::to_value(&o[1]).unwrap();
        assert_eq!(j["provenance"], serde_json::to_value(&p).unwrap());
        assert_eq!(j["market"]["symbol"], "KRW-ETH");
        assert_eq!(j["market"]["base"], "ETH");
        assert_eq!(j["market"]["quote"], "KRW");
        assert_eq!(j["native_type"], "market");
        let back: Order = serde_json::from_value(j).unwrap();
        assert_eq!(back, o[1]);
    }

    #[test]
    fn amount_orders_keep_their_amount_apart_from_a_limit_price() {
        let body = br#"[{"uuid":"p","side":"bid","ord_type":"price","price":"50000","state":"done","market":"KRW-BTC","created_at":"2024-03-01T09:00:00+09:00","paid_fee":"0","executed_volume":"0.001"},
                        {"uuid":"b","side":"bid","ord_type":"best","price":"7000","state":"done","market":"KRW-BTC","created_at":"2024-03-01T09:00:00+09:00","paid_fee":"0","executed_volume":"0.001"},
                        {"uuid":"l","side":"ask","ord_type":"limit","price":"100","state":"wait","market":"KRW-BTC","created_at":"2024-03-01T09:00:00+09:00","volume":"1","paid_fee":"0","executed_volume":"0"}]"#;
        let o = parse_orders(body, None).unwrap();
        assert_eq!((o[0].price, o[0].quote_amount), (None, Some(d("50000"))));
        assert_eq!((o[1].price, o[1].quote_amount), (None, Some(d("7000"))));
        assert_eq!((o[2].price, o[2].quote_amount), (Some(d("100")), None));
        assert!(o[0].order_type.is_taker() && !o[2].order_type.is_taker());
        assert_eq!(o[0].market.quote, "KRW");
    }
    #[test]
    fn decimals_from_strings_and_numbers() {
        let body = br#"[{"market":"KRW-BTC","candle_date_time_utc":"2024-03-01T00:00:00","candle_date_time_kst":"2024-03-01T09:00:00","opening_price":100,"high_price":1.5e2,"low_price":90.5,"trade_price":"120","candle_acc_trade_volume":3,"candle_acc_trade_price":360}]"#;
        let c = parse_candles(body).unwrap();
        assert_eq!(c[0].high, d("150"));
        assert_eq!(c[0].low, d("90.5"));
    }

    #[test]
    fn truncated_body_is_flagged() {
        let e = parse_balances(br#"[{"currency":"KRW","bal"#).unwrap_err();
        assert!(e.truncated, "{e}");
        let e = parse_balances(br#"{"x":1}"#).unwrap_err();
        assert!(!e.truncated);
    }

    #[test]
    fn error_envelopes_and_ip_spellings() {
        assert_eq!(
            parse_error_envelope(br#"{"error":{"name":"no_authorization_ip","message":"x"}}"#),
            Some(("no_authorization_i_p".into(), "x".into()))
        );
        assert_eq!(
            parse_error_envelope(br#"{"error":{"name":400,"message":"bad"}}"#),
            Some(("400".into(), "bad".into()))
        );
        assert_eq!(parse_error_envelope(b"Too many requests"), None);
    }

    #[test]
    fn remaining_req_header() {
        let r = parse_remaining_req("group=order; min=1800; sec=7").unwrap();
        assert_eq!(r.group, "order");
        assert_eq!(r.sec, Some(7));
        assert!(parse_remaining_req("min=1; sec=2").is_none());
    }

    #[test]
    fn batch_cancel_shape() {
        let b = parse_batch_cancel(br#"{"success":{"count":1,"orders":[{"uuid":"a","market":"KRW-BTC"}]},"failed":{"count":1,"orders":[{"uuid":"b","market":"KRW-BTC","error_code":"x","error_message":"y"}]}}"#).unwrap();
        assert_eq!(b.accepted, vec!["a"]);
        assert_eq!(b.failed, vec![("b".into(), "x: y".into())]);
    }
}
