//! Bybit's public market endpoints for `category=spot`: instruments with their lot and
//! price filters, tickers, klines (newest first) and the order book, all formatted from the
//! venue's market data. A derivatives category (`linear`, `inverse`, `option`) is valid and
//! lists nothing: the mock is spot only.
//!
//! A symbol's `tickSize` is the venue's tick at its reference price, `basePrecision` and
//! `minOrderQty` the venue's volume step, `minOrderAmt` the venue's minimum order value; new
//! orders are checked against the same numbers ([`Filters`]).

use chrono::{Datelike, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::routes::Ctx;
use super::wire::ms_s;
use crate::mock::venue::dec;
use crate::mock::venue::market_data::{book_side, candle};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::state::Side;
use crate::mock::venue::Venue;

/// Largest quantity of one order.
const MAX_QTY: i64 = 9_000_000;
/// Largest value of one order.
const MAX_AMT: i64 = 8_000_000;

/// A symbol's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    pub tick: Decimal,
    pub lot: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_amt: Decimal,
    pub max_amt: Decimal,
}

/// The filters of a market.
pub fn filters(ex: &Venue, m: &MarketConf) -> Filters {
    let rules = ex.markets.rules;
    Filters {
        tick: rules.tick_at(m.price),
        lot: rules.lot(),
        min_qty: rules.lot(),
        max_qty: Decimal::from(MAX_QTY),
        min_amt: rules.min_notional,
        max_amt: Decimal::from(MAX_AMT),
    }
}

fn instrument(ex: &Venue, m: &MarketConf) -> Value {
    let f = filters(ex, m);
    json!({"symbol": m.market.symbol, "baseCoin": m.market.base, "quoteCoin": m.market.quote,
        "innovation": "0", "status": "Trading", "marginTrading": "none", "stTag": "0",
        "lotSizeFilter": {"basePrecision": dec(f.lot), "quotePrecision": "0.00000001",
            "minOrderQty": dec(f.min_qty), "maxOrderQty": dec(f.max_qty),
            "minOrderAmt": dec(f.min_amt), "maxOrderAmt": dec(f.max_amt),
            "maxLimitOrderQty": dec(f.max_qty), "maxMarketOrderQty": dec(f.max_qty),
            "postOnlyMaxLimitOrderSize": dec(f.max_qty)},
        "priceFilter": {"tickSize": dec(f.tick)},
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
        "symbolType": ""})
}

/// `GET /v5/market/instruments-info`.
pub fn instruments(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let category = c.get("category").unwrap_or("").to_string();
    let list: Vec<Value> = if c.spot()? {
        let symbol = c.get("symbol");
        c.ex.markets
            .list
            .iter()
            .filter(|m| symbol.map_or(true, |s| m.market.symbol == s))
            .filter(|_| c.get("status").map_or(true, |s| s == "Trading"))
            .map(|m| instrument(c.ex, m))
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({"category": category, "list": list, "nextPageCursor": ""}))
}

/// `GET /v5/market/tickers`: one symbol or all.
pub fn tickers(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let category = c.get("category").unwrap_or("").to_string();
    if !c.spot()? {
        return Ok(json!({"category": category, "list": []}));
    }
    let chosen: Vec<&MarketConf> = match c.get("symbol") {
        Some(_) => vec![c.market()?],
        None => c.ex.markets.list.iter().collect(),
    };
    let w = c.ex.world();
    let now_min = c.now.timestamp().div_euclid(60);
    let list: Vec<Value> = chosen
        .into_iter()
        .map(|m| {
            let s = &m.market.symbol;
            let day = candle(&c.ex.markets, &w, s, now_min - 1439, 1440, c.now);
            let bid = book_side(&c.ex.markets, &w, s, Side::Bid, c.now, 1);
            let ask = book_side(&c.ex.markets, &w, s, Side::Ask, c.now, 1);
            let level = |v: &[(Decimal, Decimal)], i: usize| {
                v.first()
                    .map_or("0".to_string(), |l| dec(if i == 0 { l.0 } else { l.1 }))
            };
            let pct = if day.open > Decimal::ZERO {
                ((day.close - day.open) / day.open).round_dp(4)
            } else {
                Decimal::ZERO
            };
            json!({"symbol": s, "bid1Price": level(&bid, 0), "bid1Size": level(&bid, 1),
                "ask1Price": level(&ask, 0), "ask1Size": level(&ask, 1),
                "lastPrice": dec(day.close), "prevPrice24h": dec(day.open),
                "price24hPcnt": dec(pct), "highPrice24h": dec(day.high),
                "lowPrice24h": dec(day.low), "turnover24h": dec(day.value.round_dp(8)),
                "volume24h": dec(day.volume), "usdIndexPrice": dec(day.close)})
        })
        .collect();
    Ok(json!({"category": category, "list": list}))
}

/// A kline interval's start containing `minute` and its length, in minutes.
fn bucket(interval: &str, minute: i64) -> Option<(i64, i64)> {
    let fixed = |len: i64| Some((minute - minute.rem_euclid(len), len));
    match interval {
        "1" | "3" | "5" | "15" | "30" | "60" | "120" | "240" | "360" | "720" => {
            fixed(interval.parse().ok()?)
        }
        "D" => fixed(1440),
        // Weeks start on Monday (1970-01-05 is the first).
        "W" => Some((minute - (minute - 4 * 1440).rem_euclid(10_080), 10_080)),
        "M" => {
            let t = Utc.timestamp_opt(minute * 60, 0).single()?;
            let start = Utc
                .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
                .single()?;
            let (y, mo) = if t.month() == 12 {
                (t.year() + 1, 1)
            } else {
                (t.year(), t.month() + 1)
            };
            let next = Utc.with_ymd_and_hms(y, mo, 1, 0, 0, 0).single()?;
            Some((start.timestamp() / 60, (next - start).num_minutes()))
        }
        _ => None,
    }
}

/// `GET /v5/market/kline`: newest first, `limit` candles ending at `end` (default now),
/// none before `start`. The category defaults to `linear`, where the mock lists nothing.
pub fn kline(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let category = c.get("category").unwrap_or("linear").to_string();
    let m = c.market()?;
    let interval = c
        .get("interval")
        .ok_or_else(|| errors::bad_param("interval"))?;
    let now_min = c.now.timestamp().div_euclid(60);
    if bucket(interval, now_min).is_none() {
        return Err(errors::bad_param("interval"));
    }
    let limit = c.limit(200, 1000)?;
    if category != "spot" {
        return Ok(json!({"category": category, "symbol": m.market.symbol, "list": []}));
    }
    let start_min = c.time("start")?.map(|s| s.timestamp().div_euclid(60));
    let end = c.time("end")?.unwrap_or(c.now).min(c.now);
    let (mut b, mut len) = bucket(interval, end.timestamp().div_euclid(60)).unwrap_or((0, 1));
    let w = c.ex.world();
    let mut rows = Vec::new();
    while rows.len() < limit && start_min.map_or(true, |s| b + len > s) {
        let k = candle(&c.ex.markets, &w, &m.market.symbol, b, len, c.now);
        rows.push(json!([
            (b * 60_000).to_string(),
            dec(k.open),
            dec(k.high),
            dec(k.low),
            dec(k.close),
            dec(k.volume),
            dec(k.value.round_dp(8))
        ]));
        let Some(prev) = bucket(interval, b - 1) else {
            break;
        };
        (b, len) = prev;
    }
    Ok(json!({"category": category, "symbol": m.market.symbol, "list": rows}))
}

/// `GET /v5/market/orderbook`: `limit` levels a side (1 by default, 200 at most for spot).
pub fn orderbook(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    c.spot()?;
    let m = c.market()?;
    let depth = c.limit(1, 200)?;
    let w = c.ex.world();
    let side = |s: Side| -> Vec<Value> {
        book_side(&c.ex.markets, &w, &m.market.symbol, s, c.now, depth)
            .into_iter()
            .map(|(p, v)| json!([dec(p), dec(v)]))
            .collect()
    };
    Ok(
        json!({"s": m.market.symbol, "b": side(Side::Bid), "a": side(Side::Ask),
        "ts": c.now.timestamp_millis(), "u": w.seq, "seq": w.seq, "cts": ms_s(c.now)}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kline_intervals_are_bybit_names() {
        let m = 29_000_000;
        assert_eq!(bucket("1", m), Some((m, 1)));
        assert_eq!(
            bucket("60", m + 59),
            Some((m + 59 - (m + 59).rem_euclid(60), 60))
        );
        assert_eq!(bucket("D", m).unwrap().1, 1440);
        assert!(bucket("1m", m).is_none(), "Binance's names are refused");
        assert!(bucket("W", m).is_some() && bucket("M", m).is_some());
    }
}
