//! KuCoin's public market endpoints for spot: symbols with their increments and minimums,
//! currencies with one chain each, all tickers, a symbol's best bid and ask (`level1`) and
//! 24-hour statistics, and candles (newest first, times in seconds), all formatted from the
//! venue's market data.
//!
//! A symbol's `priceIncrement` is the venue's tick at its reference price, `baseIncrement`
//! and `baseMinSize` the venue's size step, `quoteIncrement` the venue's quote step and
//! `minFunds` its minimum order value; new orders are checked against the same numbers
//! ([`Filters`]).

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::routes::Ctx;
use crate::mock::venue::dec;
use crate::mock::venue::market_data::{book_side, candle, period_bucket, Period};
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::state::Side;
use crate::mock::venue::Venue;

/// Largest size of one order.
const MAX_SIZE: i64 = 10_000_000_000;
/// Largest funds of one order.
const MAX_FUNDS: i64 = 99_999_999;

/// A symbol's increments and minimums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    pub tick: Decimal,
    pub lot: Decimal,
    pub quote_step: Decimal,
    pub min_size: Decimal,
    pub max_size: Decimal,
    pub min_funds: Decimal,
    pub max_funds: Decimal,
}

/// The filters of a market.
pub fn filters(ex: &Venue, m: &MarketConf) -> Filters {
    let rules = ex.markets.rules;
    Filters {
        tick: rules.tick_at(m.price),
        lot: rules.lot(),
        quote_step: Decimal::new(1, rules.quote_dp),
        min_size: rules.lot(),
        max_size: Decimal::from(MAX_SIZE),
        min_funds: rules.min_notional,
        max_funds: Decimal::from(MAX_FUNDS),
    }
}

fn symbol(ex: &Venue, m: &MarketConf) -> Value {
    let f = filters(ex, m);
    json!({"symbol": m.market.symbol, "name": m.market.symbol, "baseCurrency": m.market.base,
        "quoteCurrency": m.market.quote, "feeCurrency": m.market.quote, "market": "USDS",
        "baseMinSize": dec(f.min_size), "quoteMinSize": dec(f.min_funds),
        "baseMaxSize": dec(f.max_size), "quoteMaxSize": dec(f.max_funds),
        "baseIncrement": dec(f.lot), "quoteIncrement": dec(f.quote_step),
        "priceIncrement": dec(f.tick), "priceLimitRate": "0.1", "minFunds": dec(f.min_funds),
        "isMarginEnabled": false, "enableTrading": true, "feeCategory": 1,
        "makerFeeCoefficient": "1.00", "takerFeeCoefficient": "1.00", "st": false,
        "callauctionIsEnabled": false, "callauctionPriceFloor": null,
        "callauctionPriceCeiling": null, "callauctionFirstStageStartTime": null,
        "callauctionSecondStageStartTime": null, "callauctionThirdStageStartTime": null,
        "tradingStartTime": null})
}

/// `GET /api/v2/symbols` (`market` filters; the mock's markets are all `USDS`).
pub fn symbols(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let want = c.get("market");
    Ok(Value::Array(
        c.ex.markets
            .list
            .iter()
            .filter(|_| want.map_or(true, |m| m == "USDS"))
            .map(|m| symbol(c.ex, m))
            .collect(),
    ))
}

fn currency_json(code: &str, name: &str) -> Value {
    json!({"currency": code, "name": code, "fullName": name, "precision": 8, "confirms": null,
        "contractAddress": null, "isMarginEnabled": false, "isDebitEnabled": false,
        "chains": [{"chainName": code, "chainId": code.to_lowercase(),
            "withdrawalMinSize": "0", "depositMinSize": "0", "withdrawFeeRate": "0",
            "withdrawalMinFee": dec(crate::mock::venue::transfers::WITHDRAWAL_FEE),
            "isWithdrawEnabled": true, "isDepositEnabled": true, "confirms": 1,
            "preConfirms": 1, "contractAddress": "", "withdrawPrecision": 8,
            "maxWithdraw": null, "maxDeposit": null, "needTag": false}]})
}

/// `GET /api/v3/currencies`: the venue's assets (`only`: one of them).
pub fn currencies(c: &Ctx<'_>, only: Option<&str>) -> Value {
    let mut names: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for m in &c.ex.markets.list {
        for (code, name) in [
            (&m.market.base, m.name.clone()),
            (&m.market.quote, m.market.quote.clone()),
        ] {
            if seen.insert(code.clone()) {
                names.push((code.clone(), name));
            }
        }
    }
    names.sort();
    Value::Array(
        names
            .iter()
            .filter(|(code, _)| only.map_or(true, |o| o == code))
            .map(|(code, name)| currency_json(code, name))
            .collect(),
    )
}

/// `GET /api/v3/currencies/{currency}` (400100 for an unknown one).
pub fn currency(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let code = c.id.unwrap_or_default();
    match currencies(c, Some(code)) {
        Value::Array(mut v) if !v.is_empty() => Ok(v.remove(0)),
        _ => Err(errors::params("currency not exists")),
    }
}

/// One ticker's numbers: (best bid, best ask, 24-hour candle).
fn ticker(c: &Ctx<'_>, m: &MarketConf) -> Value {
    let w = c.ex.world();
    let s = &m.market.symbol;
    let now_min = c.now.timestamp().div_euclid(60);
    let day = candle(&c.ex.markets, &w, s, now_min - 1439, 1440, c.now);
    let bid = book_side(&c.ex.markets, &w, s, Side::Bid, c.now, 1);
    let ask = book_side(&c.ex.markets, &w, s, Side::Ask, c.now, 1);
    let level = |v: &[(Decimal, Decimal)], i: usize| {
        v.first()
            .map_or("0".to_string(), |l| dec(if i == 0 { l.0 } else { l.1 }))
    };
    let change = day.close - day.open;
    let rate = if day.open > Decimal::ZERO {
        (change / day.open).round_dp(4)
    } else {
        Decimal::ZERO
    };
    let fee = dec(c.ex.markets.fee);
    json!({"symbol": s, "symbolName": s, "buy": level(&bid, 0), "bestBidSize": level(&bid, 1),
        "sell": level(&ask, 0), "bestAskSize": level(&ask, 1), "changeRate": dec(rate),
        "changePrice": dec(change), "high": dec(day.high), "low": dec(day.low),
        "vol": dec(day.volume), "volValue": dec(day.value.round_dp(8)), "last": dec(day.close),
        "averagePrice": dec(day.close), "takerFeeRate": fee, "makerFeeRate": fee,
        "takerCoefficient": "1", "makerCoefficient": "1"})
}

/// `GET /api/v1/market/allTickers`.
pub fn all_tickers(c: &Ctx<'_>) -> Value {
    let list: Vec<Value> = c.ex.markets.list.iter().map(|m| ticker(c, m)).collect();
    json!({"time": c.now.timestamp_millis(), "ticker": list})
}

/// `GET /api/v1/market/stats?symbol=`: one symbol's 24-hour statistics.
pub fn stats(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    let mut t = ticker(c, m);
    t["time"] = json!(c.now.timestamp_millis());
    Ok(t)
}

/// `GET /api/v1/market/orderbook/level1?symbol=`: the last price and the best levels.
pub fn level1(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    let t = ticker(c, m);
    let seq = c.ex.world().seq;
    Ok(
        json!({"time": c.now.timestamp_millis(), "sequence": seq.to_string(), "price": t["last"],
        "size": "0", "bestBid": t["buy"], "bestBidSize": t["bestBidSize"], "bestAsk": t["sell"],
        "bestAskSize": t["bestAskSize"]}),
    )
}

/// A candle type's start containing `minute` and its length, in minutes.
fn bucket(kind: &str, minute: i64) -> Option<(i64, i64)> {
    let minutes = match kind {
        "1min" => 1,
        "3min" => 3,
        "5min" => 5,
        "15min" => 15,
        "30min" => 30,
        "1hour" => 60,
        "2hour" => 120,
        "4hour" => 240,
        "6hour" => 360,
        "8hour" => 480,
        "12hour" => 720,
        "1day" => 1440,
        "1week" => return period_bucket(Period::Week, minute),
        "1month" => return period_bucket(Period::Month, minute),
        _ => return None,
    };
    period_bucket(Period::Minutes(minutes), minute)
}

/// `GET /api/v1/market/candles`: newest first, at most 1,500 rows from `endAt` (seconds,
/// default now) back to `startAt`, each `[time s, open, close, high, low, volume, turnover]`.
pub fn candles(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.market()?;
    let kind = c.get("type").ok_or_else(|| errors::required("type"))?;
    let now_min = c.now.timestamp().div_euclid(60);
    if bucket(kind, now_min).is_none() {
        return Err(errors::bad_param("type"));
    }
    let start_min = c.int("startAt")?.map(|s| s.div_euclid(60));
    let end_min = c
        .int("endAt")?
        .filter(|e| *e > 0)
        .map_or(now_min, |e| e.div_euclid(60))
        .min(now_min);
    let (mut b, mut len) = bucket(kind, end_min).unwrap_or((0, 1));
    let w = c.ex.world();
    let mut rows = Vec::new();
    while rows.len() < 1500 && start_min.map_or(true, |s| b + len > s) {
        let k = candle(&c.ex.markets, &w, &m.market.symbol, b, len, c.now);
        rows.push(json!([
            (b * 60).to_string(),
            dec(k.open),
            dec(k.close),
            dec(k.high),
            dec(k.low),
            dec(k.volume),
            dec(k.value.round_dp(8))
        ]));
        let Some(prev) = bucket(kind, b - 1) else {
            break;
        };
        (b, len) = prev;
    }
    Ok(Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_types_are_kucoin_names() {
        let m = 29_000_000;
        assert_eq!(bucket("1min", m), Some((m, 1)));
        assert_eq!(bucket("1day", m).unwrap().1, 1440);
        assert!(bucket("1m", m).is_none(), "Binance's names are refused");
        assert!(bucket("1week", m).is_some() && bucket("1month", m).is_some());
    }
}
