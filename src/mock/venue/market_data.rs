//! Public market data computed from the venue: candles (the reference path's background
//! trading plus the real fills on the tape), the merged order book (liquidity provider plus
//! resting orders) and the recent trades. Façades only format them.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::mock::venue::matching::Markets;
use crate::mock::venue::state::{Side, World};

/// A candle period, whatever a façade calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minutes(i64),
    /// Monday to Monday (UTC).
    Week,
    /// A calendar month (UTC).
    Month,
}

/// The start (epoch minutes) of the `period` containing epoch minute `minute`, and its
/// length in minutes.
pub fn period_bucket(period: Period, minute: i64) -> Option<(i64, i64)> {
    match period {
        Period::Minutes(len) if len > 0 => Some((minute - minute.rem_euclid(len), len)),
        Period::Minutes(_) => None,
        // Weeks start on Monday (1970-01-05 is the first).
        Period::Week => Some((minute - (minute - 4 * 1440).rem_euclid(10_080), 10_080)),
        Period::Month => {
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
    }
}

/// One candle of `unit` minutes starting at minute `start`.
#[derive(Debug, Clone)]
pub struct Candle {
    /// Start, in minutes since the epoch.
    pub start: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    /// Quote value traded.
    pub value: Decimal,
    /// Time of the last trade in it, epoch milliseconds.
    pub last_ms: i64,
}

/// The candle of `symbol` over `[start_min, start_min + unit)` as of `now`.
pub fn candle(
    mk: &Markets,
    w: &World,
    symbol: &str,
    start_min: i64,
    unit: i64,
    now: DateTime<Utc>,
) -> Candle {
    let step = (unit / 48).max(1);
    let mut c = Candle {
        start: start_min,
        open: Decimal::ZERO,
        high: Decimal::ZERO,
        low: Decimal::MAX,
        close: Decimal::ZERO,
        volume: Decimal::ZERO,
        value: Decimal::ZERO,
        last_ms: 0,
    };
    let now_min = now.timestamp().div_euclid(60);
    let mut m = start_min;
    while m < start_min + unit && m <= now_min {
        let t = Utc.timestamp_opt(m * 60, 0).single().unwrap_or(now);
        let px = mk.ref_price(symbol, t);
        if c.open.is_zero() {
            c.open = px;
        }
        c.high = c.high.max(px);
        c.low = c.low.min(px);
        c.close = px;
        let v = mk.background_volume(symbol, m, px) * Decimal::from(step);
        c.volume += v;
        c.value += v * px;
        c.last_ms = m * 60_000 + 30_000;
        m += step;
    }
    if let Some(tape) = w.tape.get(symbol) {
        let from = start_min * 60_000;
        let to = (start_min + unit) * 60_000;
        for ((ms, _), t) in tape.range((from, 0)..(to, 0)) {
            c.high = c.high.max(t.price);
            c.low = c.low.min(t.price);
            c.volume += t.volume;
            c.value += t.volume * t.price;
            if *ms >= c.last_ms {
                c.close = t.price;
                c.last_ms = *ms;
            }
        }
    }
    if c.low == Decimal::MAX {
        c.low = c.open;
    }
    c
}

/// One side of the merged book (liquidity provider and resting orders): (price, volume), best
/// first, at most `depth` levels.
pub fn book_side(
    mk: &Markets,
    w: &World,
    symbol: &str,
    side: Side,
    now: DateTime<Utc>,
    depth: usize,
) -> Vec<(Decimal, Decimal)> {
    let mut agg: Vec<(Decimal, Decimal)> = mk.lp_levels(symbol, side, now);
    if let Some(b) = w.books.get(symbol) {
        let rs = if side == Side::Ask { &b.asks } else { &b.bids };
        for r in rs {
            let v = w.orders[r.idx].remaining_volume;
            match agg.iter_mut().find(|x| x.0 == r.price) {
                Some(x) => x.1 += v,
                None => agg.push((r.price, v)),
            }
        }
    }
    if side == Side::Ask {
        agg.sort_by_key(|a| a.0);
    } else {
        agg.sort_by_key(|b| std::cmp::Reverse(b.0));
    }
    agg.truncate(depth);
    agg
}

/// A public trade: real fills from the tape and the reference path's background prints.
#[derive(Debug, Clone)]
pub struct Print {
    pub ms: i64,
    /// Orders prints at the same millisecond (real fills after background ones).
    pub seq: u64,
    pub price: Decimal,
    pub volume: Decimal,
    pub taker_side: Side,
}

/// The `count` most recent trades of `symbol` up to `now`, newest first: real fills plus a
/// background print every 20 s.
pub fn recent_trades(
    mk: &Markets,
    w: &World,
    symbol: &str,
    count: usize,
    now: DateTime<Utc>,
) -> Vec<Print> {
    let to_ms = now.timestamp_millis();
    let mut v: Vec<Print> = w
        .tape
        .get(symbol)
        .map(|t| {
            t.range(..(to_ms + 1, 0))
                .rev()
                .take(count)
                .map(|((ms, s), t)| Print {
                    ms: *ms,
                    seq: *s + (1 << 40),
                    price: t.price,
                    volume: t.volume,
                    taker_side: t.taker_side,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut t = to_ms - to_ms.rem_euclid(20_000);
    for _ in 0..count {
        let at = Utc.timestamp_millis_opt(t).single().unwrap_or(now);
        let px = mk.ref_price(symbol, at);
        v.push(Print {
            ms: t,
            seq: (t / 20_000) as u64,
            price: px,
            volume: mk.background_volume(symbol, t / 60_000, px),
            taker_side: if (t / 20_000) % 2 == 0 {
                Side::Bid
            } else {
                Side::Ask
            },
        });
        t -= 20_000;
    }
    v.sort_by(|a, b| b.ms.cmp(&a.ms).then(b.seq.cmp(&a.seq)));
    v.truncate(count);
    v
}
