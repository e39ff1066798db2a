//! Upbit's quotation (public) endpoints: markets, ticker, order book, trades and minute
//! candles, formatted from the venue's market data. Errors here are named by their status
//! number, as Upbit's quotation API does.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::auth::Params;
use super::errors::{qerr, ApiErr};
use super::routes::{first, int_param, parse_time, Ep};
use super::wire;
use crate::mock::venue::market_data::{book_side, candle, recent_trades};
use crate::mock::venue::state::Side;
use crate::mock::venue::Venue;

fn markets_param<'a>(ex: &Venue, p: &'a Params, k: &str) -> Result<Vec<&'a str>, ApiErr> {
    let ms: Vec<&str> = first(p, k)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ms.is_empty() {
        return Err(qerr(400, &format!("{k} is required")));
    }
    for m in &ms {
        if ex.markets.get(m).is_none() {
            return Err(qerr(404, "Code not found"));
        }
    }
    Ok(ms)
}

fn utc_naive(ms: i64) -> (String, String) {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    (
        t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        t.with_timezone(&wire::kst_offset())
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    )
}

/// Answers a quotation endpoint.
pub(super) fn public(ex: &Venue, ep: Ep, p: &Params, now: DateTime<Utc>) -> Result<Value, ApiErr> {
    let w = ex.world();
    let mk = &ex.markets;
    match ep {
        Ep::MarketAll => {
            let details = first(p, "isDetails") == Some("true");
            Ok(json!(mk
                .list
                .iter()
                .map(|m| {
                    let korean = m.local_names.get("ko").unwrap_or(&m.name);
                    if details {
                        json!({"market": m.market.symbol, "korean_name": korean, "english_name": m.name, "market_warning": "NONE"})
                    } else {
                        json!({"market": m.market.symbol, "korean_name": korean, "english_name": m.name})
                    }
                })
                .collect::<Vec<_>>()))
        }
        Ep::Ticker => {
            let ms = markets_param(ex, p, "markets")?;
            let mut out = Vec::new();
            let day_start = now.timestamp().div_euclid(86_400) * 1440;
            let now_min = now.timestamp().div_euclid(60);
            for m in ms {
                let day = candle(mk, &w, m, day_start, now_min - day_start + 1, now);
                let prev = mk.ref_price(
                    m,
                    Utc.timestamp_opt(day_start * 60 - 60, 0)
                        .single()
                        .unwrap_or(now),
                );
                let last = w
                    .tape
                    .get(m)
                    .and_then(|t| t.iter().next_back())
                    .filter(|((ms, _), _)| now.timestamp_millis() - ms < 120_000);
                let price = last
                    .map(|(_, t)| t.price)
                    .unwrap_or_else(|| mk.ref_price(m, now));
                let change = price - prev;
                let rate = if prev.is_zero() {
                    Decimal::ZERO
                } else {
                    (change / prev).round_dp(8)
                };
                let ts = now.timestamp_millis();
                let (d_utc, t_utc) = (
                    now.format("%Y%m%d").to_string(),
                    now.format("%H%M%S").to_string(),
                );
                let k = now.with_timezone(&wire::kst_offset());
                out.push(json!({
                    "market": m, "trade_date": d_utc, "trade_time": t_utc,
                    "trade_date_kst": k.format("%Y%m%d").to_string(), "trade_time_kst": k.format("%H%M%S").to_string(),
                    "trade_timestamp": ts, "opening_price": wire::num(day.open), "high_price": wire::num(day.high.max(price)),
                    "low_price": wire::num(day.low.min(price)), "trade_price": wire::num(price), "prev_closing_price": wire::num(prev),
                    "change": if change > Decimal::ZERO { "RISE" } else if change < Decimal::ZERO { "FALL" } else { "EVEN" },
                    "change_price": wire::num(change.abs()), "change_rate": wire::num(rate.abs()),
                    "signed_change_price": wire::num(change), "signed_change_rate": wire::num(rate),
                    "trade_volume": wire::num(last.map(|(_, t)| t.volume).unwrap_or(Decimal::new(1, 2))),
                    "acc_trade_price": wire::num(day.value.round_dp(8)), "acc_trade_price_24h": wire::num(day.value.round_dp(8)),
                    "acc_trade_volume": wire::num(day.volume), "acc_trade_volume_24h": wire::num(day.volume),
                    "highest_52_week_price": wire::num(price * Decimal::new(15, 1)), "highest_52_week_date": "2026-03-14",
                    "lowest_52_week_price": wire::num(price * Decimal::new(6, 1)), "lowest_52_week_date": "2025-12-02",
                    "timestamp": ts,
                }));
            }
            Ok(json!(out))
        }
        Ep::Orderbook => {
            let ms = markets_param(ex, p, "markets")?;
            let mut out = Vec::new();
            for m in ms {
                let asks = book_side(mk, &w, m, Side::Ask, now, 15);
                let bids = book_side(mk, &w, m, Side::Bid, now, 15);
                let units: Vec<Value> = asks
                    .iter()
                    .zip(bids.iter())
                    .map(|(a, b)| json!({"ask_price": wire::num(a.0), "bid_price": wire::num(b.0), "ask_size": wire::num(a.1), "bid_size": wire::num(b.1)}))
                    .collect();
                out.push(json!({"market": m, "timestamp": now.timestamp_millis(),
                    "total_ask_size": wire::num(asks.iter().map(|x| x.1).sum()),
                    "total_bid_size": wire::num(bids.iter().map(|x| x.1).sum()),
                    "orderbook_units": units, "level": 0}));
            }
            Ok(json!(out))
        }
        Ep::Trades => {
            let m = markets_param(ex, p, "market")?[0];
            let count = int_param(p, "count", 1, 500).map_err(|e| qerr(400, &e.message))?;
            let v = recent_trades(mk, &w, m, count, now);
            let prev = mk.ref_price(m, now - Duration::days(1));
            Ok(json!(v
                .iter()
                .map(|t| {
                    let at = Utc.timestamp_millis_opt(t.ms).single().unwrap_or(now);
                    json!({"market": m, "trade_date_utc": at.format("%Y-%m-%d").to_string(),
                        "trade_time_utc": at.format("%H:%M:%S").to_string(), "timestamp": t.ms,
                        "trade_price": wire::num(t.price), "trade_volume": wire::num(t.volume),
                        "prev_closing_price": wire::num(prev), "change_price": wire::num(t.price - prev),
                        "ask_bid": wire::ask_bid(t.taker_side), "sequential_id": (t.ms as u64) * 1000 + (t.seq % 1000)})
                })
                .collect::<Vec<_>>()))
        }
        Ep::Candles(unit) => {
            if ![1, 3, 5, 10, 15, 30, 60, 240].contains(&unit) {
                return Err(qerr(
                    400,
                    "unit must be one of 1, 3, 5, 10, 15, 30, 60, 240",
                ));
            }
            let m = markets_param(ex, p, "market")?[0];
            let count = int_param(p, "count", 1, 200).map_err(|e| qerr(400, &e.message))?;
            let to = match first(p, "to").filter(|s| !s.is_empty()) {
                Some(s) => parse_time(s).ok_or_else(|| qerr(400, "to: not a time"))?,
                None => now + Duration::minutes(unit as i64),
            };
            let u = unit as i64;
            let to_min = (to.timestamp_millis() - 1).div_euclid(60_000);
            let mut start = to_min - to_min.rem_euclid(u);
            let now_min = now.timestamp().div_euclid(60);
            while start > now_min {
                start -= u;
            }
            let mut out = Vec::new();
            for _ in 0..count {
                let c = candle(mk, &w, m, start, u, now);
                let (utc, kst) = utc_naive(c.start * 60_000);
                out.push(json!({"market": m, "candle_date_time_utc": utc, "candle_date_time_kst": kst,
                    "opening_price": wire::num(c.open), "high_price": wire::num(c.high), "low_price": wire::num(c.low),
                    "trade_price": wire::num(c.close), "timestamp": c.last_ms,
                    "candle_acc_trade_price": wire::num(c.value.round_dp(8)), "candle_acc_trade_volume": wire::num(c.volume),
                    "unit": unit}));
                start -= u;
            }
            Ok(json!(out))
        }
        _ => Err(qerr(404, "no such endpoint")),
    }
}
