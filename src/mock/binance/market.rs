//! Binance's public endpoints: `exchangeInfo` (the symbols with their `PRICE_FILTER`,
//! `LOT_SIZE` and `NOTIONAL` filters, and the mock's rate limits), order book, recent trades,
//! klines, average and last prices, the 24-hour ticker, and the empty futures `exchangeInfo`
//! ccxt asks for while loading markets. All formatted from the venue's market data.
//!
//! A symbol's tick is the venue's tick at its reference price; its lot is the venue's volume
//! step; its minimum value is the venue's minimum order value. New orders are checked
//! against the same numbers ([`filters`]).

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::limits;
use super::routes::Ctx;
use super::wire::{d8, ms};
use crate::mock::venue::market_data::{book_side, candle, period_bucket, recent_trades, Period};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::state::Side;
use crate::mock::venue::Venue;

/// Largest price `PRICE_FILTER` accepts.
const MAX_PRICE: i64 = 100_000_000;
/// Largest quantity `LOT_SIZE` accepts.
const MAX_QTY: i64 = 9_000_000;
/// Largest order value `NOTIONAL` accepts (limit orders).
const MAX_NOTIONAL: i64 = 9_000_000;

/// A symbol's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    pub tick: Decimal,
    pub min_price: Decimal,
    pub max_price: Decimal,
    pub lot: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_notional: Decimal,
    pub max_notional: Decimal,
}

/// The filters of a market.
pub fn filters(ex: &Venue, m: &MarketConf) -> Filters {
    let rules = ex.markets.rules;
    let tick = rules.tick_at(m.price);
    let lot = rules.lot();
    Filters {
        tick,
        min_price: tick,
        max_price: Decimal::from(MAX_PRICE),
        lot,
        min_qty: lot,
        max_qty: Decimal::from(MAX_QTY),
        min_notional: rules.min_notional,
        max_notional: Decimal::from(MAX_NOTIONAL),
    }
}

impl Filters {
    /// `PRICE_FILTER`: within bounds and on the tick.
    pub fn price_ok(&self, p: Decimal) -> bool {
        p >= self.min_price && p <= self.max_price && ((p - self.min_price) % self.tick).is_zero()
    }
    /// `LOT_SIZE`: within bounds and on the step.
    pub fn qty_ok(&self, q: Decimal) -> bool {
        q >= self.min_qty && q <= self.max_qty && ((q - self.min_qty) % self.lot).is_zero()
    }
}

fn symbol_json(ex: &Venue, m: &MarketConf) -> Value {
    let f = filters(ex, m);
    json!({"symbol": m.market.symbol, "status": "TRADING", "baseAsset": m.market.base,
        "baseAssetPrecision": 8, "quoteAsset": m.market.quote, "quotePrecision": 8,
        "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT"],
        "icebergAllowed": false, "ocoAllowed": true, "otoAllowed": false,
        "quoteOrderQtyMarketAllowed": true, "allowTrailingStop": false,
        "cancelReplaceAllowed": false, "isSpotTradingAllowed": true, "isMarginTradingAllowed": false,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": d8(f.min_price), "maxPrice": d8(f.max_price),
                "tickSize": d8(f.tick)},
            {"filterType": "LOT_SIZE", "minQty": d8(f.min_qty), "maxQty": d8(f.max_qty),
                "stepSize": d8(f.lot)},
            {"filterType": "NOTIONAL", "minNotional": d8(f.min_notional), "applyMinToMarket": true,
                "maxNotional": d8(f.max_notional), "applyMaxToMarket": false, "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]})
}

fn rate_limits() -> Value {
    let entry = |kind: &str, b: crate::mock::venue::ratelimit::Budget| {
        let (interval, n, _) = limits::interval(b);
        json!({"rateLimitType": kind, "interval": interval, "intervalNum": n, "limit": b.limit})
    };
    json!([
        entry("REQUEST_WEIGHT", limits::REQUEST_WEIGHT),
        entry("ORDERS", limits::ORDERS_10S),
        entry("ORDERS", limits::ORDERS_1D),
    ])
}

/// The markets a `symbols` parameter (a JSON array) names.
fn symbols_param<'a>(c: &Ctx<'a>) -> Result<Option<Vec<&'a MarketConf>>, ApiErr> {
    let single = c.get("symbol");
    let list = c.get("symbols");
    let names: Vec<String> = match (single, list) {
        (Some(_), Some(_)) => return Err(errors::bad_combination()),
        (Some(s), None) => vec![s.to_string()],
        (None, Some(l)) => serde_json::from_str::<Vec<String>>(l).map_err(|_| {
            errors::illegal(
                "symbols",
                "^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$",
            )
        })?,
        (None, None) => return Ok(None),
    };
    names
        .iter()
        .map(|n| {
            c.ex.markets
                .get(n)
                .map(|m| m.1)
                .ok_or_else(errors::invalid_symbol)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `GET /api/v3/exchangeInfo`.
pub fn exchange_info(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let chosen = symbols_param(c)?;
    let all: Vec<&MarketConf> = c.ex.markets.list.iter().collect();
    let symbols: Vec<Value> = chosen
        .unwrap_or(all)
        .into_iter()
        .map(|m| symbol_json(c.ex, m))
        .collect();
    Ok(
        json!({"timezone": "UTC", "serverTime": ms(c.now), "rateLimits": rate_limits(),
        "exchangeFilters": [], "symbols": symbols}),
    )
}

/// `GET /fapi/v1/exchangeInfo` and `/dapi/v1/exchangeInfo`: no futures here.
pub fn futures_exchange_info(c: &Ctx<'_>) -> Value {
    json!({"timezone": "UTC", "serverTime": ms(c.now), "rateLimits": [], "exchangeFilters": [],
        "assets": [], "symbols": []})
}

/// `GET /api/v3/depth`.
pub fn depth(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    let limit = c.limit(100, 5000)?;
    let w = c.ex.world();
    let side = |s: Side| -> Vec<Value> {
        book_side(&c.ex.markets, &w, &m.market.symbol, s, c.now, limit)
            .into_iter()
            .map(|(p, q)| json!([d8(p), d8(q)]))
            .collect()
    };
    Ok(json!({"lastUpdateId": w.seq, "bids": side(Side::Bid), "asks": side(Side::Ask)}))
}

/// `GET /api/v3/trades`: the most recent, oldest first.
pub fn trades(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    let limit = c.limit(500, 1000)?;
    let w = c.ex.world();
    let mut v = recent_trades(&c.ex.markets, &w, &m.market.symbol, limit, c.now);
    v.reverse();
    Ok(json!(v
        .iter()
        .map(
            |t| json!({"id": (t.ms as u64) * 1000 + t.seq % 1000, "price": d8(t.price),
            "qty": d8(t.volume), "quoteQty": d8(t.price * t.volume), "time": t.ms,
            "isBuyerMaker": t.taker_side == Side::Ask, "isBestMatch": true})
        )
        .collect::<Vec<_>>()))
}

/// A kline interval: its start containing `minute` and its length, in minutes.
fn bucket(interval: &str, minute: i64) -> Option<(i64, i64)> {
    let period = match interval {
        "1m" => Period::Minutes(1),
        "3m" => Period::Minutes(3),
        "5m" => Period::Minutes(5),
        "15m" => Period::Minutes(15),
        "30m" => Period::Minutes(30),
        "1h" => Period::Minutes(60),
        "2h" => Period::Minutes(120),
        "4h" => Period::Minutes(240),
        "6h" => Period::Minutes(360),
        "8h" => Period::Minutes(480),
        "12h" => Period::Minutes(720),
        "1d" => Period::Minutes(1440),
        "3d" => Period::Minutes(4320),
        "1w" => Period::Week,
        "1M" => Period::Month,
        _ => return None,
    };
    period_bucket(period, minute)
}

/// `GET /api/v3/klines`: oldest first; the most recent without times.
pub fn klines(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    let interval = c
        .get("interval")
        .ok_or_else(|| errors::mandatory("interval"))?;
    let now_min = c.now.timestamp().div_euclid(60);
    if bucket(interval, now_min).is_none() {
        return Err(errors::err(400, -1120, "Invalid interval."));
    }
    let limit = c.limit(500, 1000)?;
    let start = c.time("startTime")?;
    let end = c.time("endTime")?.unwrap_or(c.now).min(c.now);
    let end_min = end.timestamp().div_euclid(60);
    let mut starts: Vec<(i64, i64)> = Vec::new();
    match start {
        Some(s) => {
            let (mut b, mut len) = bucket(interval, s.timestamp().div_euclid(60)).unwrap_or((0, 1));
            if b * 60_000 < s.timestamp_millis() {
                (b, len) = bucket(interval, b + len).unwrap_or((b + len, len));
            }
            while b <= end_min && starts.len() < limit {
                starts.push((b, len));
                (b, len) = bucket(interval, b + len).unwrap_or((b + len, len));
            }
        }
        None => {
            let (mut b, mut len) = bucket(interval, end_min).unwrap_or((end_min, 1));
            while starts.len() < limit {
                starts.push((b, len));
                let Some(prev) = bucket(interval, b - 1) else {
                    break;
                };
                (b, len) = prev;
            }
            starts.reverse();
        }
    }
    let w = c.ex.world();
    let rows: Vec<Value> = starts
        .into_iter()
        .map(|(b, len)| {
            let k = candle(&c.ex.markets, &w, &m.market.symbol, b, len, c.now);
            let half = (k.volume / Decimal::TWO).round_dp(8);
            json!([
                b * 60_000,
                d8(k.open),
                d8(k.high),
                d8(k.low),
                d8(k.close),
                d8(k.volume),
                (b + len) * 60_000 - 1,
                d8(k.value),
                len * 3,
                d8(half),
                d8((k.value / Decimal::TWO).round_dp(8)),
                "0"
            ])
        })
        .collect();
    Ok(Value::Array(rows))
}

/// The last trade's price if one happened in the last two minutes, else the reference.
fn last_price(c: &Ctx<'_>, symbol: &str) -> Decimal {
    let w = c.ex.world();
    w.tape
        .get(symbol)
        .and_then(|t| t.iter().next_back())
        .filter(|((at, _), _)| c.now.timestamp_millis() - at < 120_000)
        .map(|(_, t)| t.price)
        .unwrap_or_else(|| c.ex.markets.ref_price(symbol, c.now))
}

/// `GET /api/v3/avgPrice`: the reference price.
pub fn avg_price(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    Ok(
        json!({"mins": 5, "price": d8(c.ex.markets.ref_price(&m.market.symbol, c.now)),
        "closeTime": ms(c.now)}),
    )
}

/// `GET /api/v3/ticker/price`: one object for `symbol`, else an array.
pub fn ticker_price(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let one = c.get("symbol").is_some();
    let ms_: Vec<&MarketConf> =
        symbols_param(c)?.unwrap_or_else(|| c.ex.markets.list.iter().collect());
    let v: Vec<Value> = ms_
        .iter()
        .map(|m| json!({"symbol": m.market.symbol, "price": d8(last_price(c, &m.market.symbol))}))
        .collect();
    Ok(if one { v[0].clone() } else { Value::Array(v) })
}

/// `GET /api/v3/ticker/24hr`: one object for `symbol`, else an array.
pub fn ticker_24h(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let one = c.get("symbol").is_some();
    let ms_: Vec<&MarketConf> =
        symbols_param(c)?.unwrap_or_else(|| c.ex.markets.list.iter().collect());
    let now_min = c.now.timestamp().div_euclid(60);
    let open_min = now_min - 1439;
    let v: Vec<Value> = ms_
        .iter()
        .map(|m| {
            let s = &m.market.symbol;
            let last = last_price(c, s);
            let (day, bid, ask) = {
                let w = c.ex.world();
                (
                    candle(&c.ex.markets, &w, s, open_min, 1440, c.now),
                    book_side(&c.ex.markets, &w, s, Side::Bid, c.now, 1),
                    book_side(&c.ex.markets, &w, s, Side::Ask, c.now, 1),
                )
            };
            let change = last - day.open;
            let pct = if day.open.is_zero() {
                Decimal::ZERO
            } else {
                (change * Decimal::ONE_HUNDRED / day.open).round_dp(3)
            };
            let avg = if day.volume.is_zero() {
                last
            } else {
                (day.value / day.volume).round_dp(8)
            };
            let top = |l: &[(Decimal, Decimal)]| l.first().copied().unwrap_or_default();
            let prev_close = c.ex.markets.ref_price(s, c.now - Duration::days(1));
            json!({"symbol": s, "priceChange": d8(change), "priceChangePercent": pct.to_string(),
                "weightedAvgPrice": d8(avg), "prevClosePrice": d8(prev_close), "lastPrice": d8(last),
                "lastQty": d8(Decimal::ZERO), "bidPrice": d8(top(&bid).0), "bidQty": d8(top(&bid).1),
                "askPrice": d8(top(&ask).0), "askQty": d8(top(&ask).1), "openPrice": d8(day.open),
                "highPrice": d8(day.high.max(last)), "lowPrice": d8(day.low.min(last)),
                "volume": d8(day.volume), "quoteVolume": d8(day.value),
                "openTime": open_min * 60_000, "closeTime": ms(c.now),
                "firstId": -1, "lastId": -1, "count": 0})
        })
        .collect();
    Ok(if one { v[0].clone() } else { Value::Array(v) })
}

/// Start of the UTC day containing `t`.
pub fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp().div_euclid(86_400) * 86_400, 0)
        .single()
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kline_buckets_align_like_binance() {
        let m = |s: &str| s.parse::<DateTime<Utc>>().unwrap().timestamp() / 60;
        let at = m("2026-11-20T18:31:00Z");
        assert_eq!(bucket("15m", at), Some((m("2026-11-20T18:30:00Z"), 15)));
        assert_eq!(bucket("1d", at), Some((m("2026-11-20T00:00:00Z"), 1440)));
        // 2026-11-16 is a Monday.
        assert_eq!(bucket("1w", at), Some((m("2026-11-16T00:00:00Z"), 10_080)));
        assert_eq!(
            bucket("1M", at),
            Some((m("2026-11-01T00:00:00Z"), 30 * 1440))
        );
        assert_eq!(bucket("1s", at), None);
    }

    #[test]
    fn filters_check_the_tick_and_the_step() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let f = Filters {
            tick: d("0.01"),
            min_price: d("0.01"),
            max_price: d("1000000"),
            lot: d("0.00001"),
            min_qty: d("0.00001"),
            max_qty: d("9000"),
            min_notional: d("5"),
            max_notional: d("9000000"),
        };
        assert!(f.price_ok(d("96428.57")));
        assert!(!f.price_ok(d("96428.575")));
        assert!(!f.price_ok(Decimal::ZERO));
        assert!(f.qty_ok(d("0.00105")));
        assert!(!f.qty_ok(d("0.000105")));
        assert!(!f.qty_ok(d("9000.00001")));
    }
}
