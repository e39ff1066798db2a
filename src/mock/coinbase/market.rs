//! Coinbase's market endpoints over the venue: server time (Advanced Trade and App API),
//! products (all or one), candles, the ticker (recent trades with the best bid and ask), the
//! best bid and ask of several products, the fee tier (`transaction_summary`) and the App
//! API's exchange rates.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::routes::Ctx;
use super::wire::{self, ts};
use crate::mock::venue::dec;
use crate::mock::venue::market_data;
use crate::mock::venue::matching::MarketConf;
use crate::mock::venue::state::Side;
use crate::mock::venue::Venue;

/// The largest base size of one order.
pub const BASE_MAX_SIZE: i64 = 1_000_000_000;
/// The largest quote size of one order.
pub const QUOTE_MAX_SIZE: i64 = 150_000_000;

/// Tick, lot and minimum value of a market.
pub struct Increments {
    pub price: Decimal,
    pub base: Decimal,
    pub quote_min: Decimal,
}

pub fn increments(ex: &Venue, m: &MarketConf) -> Increments {
    let rules = ex.markets.rules;
    Increments {
        price: rules.tick_at(m.price),
        base: rules.lot(),
        quote_min: rules.min_notional,
    }
}

fn product_json(c: &Ctx<'_>, m: &MarketConf) -> Value {
    let inc = increments(c.ex, m);
    let price = c.ex.markets.ref_price(&m.market.symbol, c.now);
    let day_ago =
        c.ex.markets
            .ref_price(&m.market.symbol, c.now - chrono::Duration::days(1));
    let change = if day_ago.is_zero() {
        Decimal::ZERO
    } else {
        ((price - day_ago) / day_ago * Decimal::from(100)).round_dp(4)
    };
    json!({"product_id": m.market.symbol, "price": dec(price),
        "price_percentage_change_24h": dec(change), "volume_24h": "0",
        "volume_percentage_change_24h": "0", "base_increment": dec(inc.base),
        "quote_increment": dec(inc.price), "quote_min_size": dec(inc.quote_min),
        "quote_max_size": QUOTE_MAX_SIZE.to_string(), "base_min_size": dec(inc.base),
        "base_max_size": BASE_MAX_SIZE.to_string(), "base_name": m.name.clone(),
        "quote_name": "US Dollar", "watched": false, "is_disabled": false, "new": false,
        "status": "online", "cancel_only": false, "limit_only": false, "post_only": false,
        "trading_disabled": false, "auction_mode": false, "product_type": "SPOT",
        "quote_currency_id": m.market.quote, "base_currency_id": m.market.base,
        "fcm_trading_session_details": null, "mid_market_price": "", "alias": "",
        "alias_to": [], "base_display_symbol": m.market.base,
        "quote_display_symbol": m.market.quote, "view_only": false,
        "price_increment": dec(inc.price), "display_name": m.market.symbol,
        "product_venue": "CBE"})
}

/// `GET /api/v3/brokerage/time`.
pub fn time(c: &Ctx<'_>) -> Value {
    json!({"iso": ts(c.now), "epochSeconds": c.now.timestamp().to_string(),
        "epochMillis": c.now.timestamp_millis().to_string()})
}

/// `GET /v2/time`.
pub fn v2_time(c: &Ctx<'_>) -> Value {
    json!({"data": {"iso": c.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "epoch": c.now.timestamp()}})
}

/// `GET …/products`: spot products (filtered by `product_ids`; a `product_type` other than
/// `SPOT` lists none), paged by `limit` and `offset`.
pub fn products(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let spot = match c.get("product_type") {
        None | Some("SPOT") => true,
        Some("FUTURE") => false,
        Some(t) => return Err(errors::invalid(format!("invalid product_type {t}"))),
    };
    let wanted = c.all(&["product_ids"]);
    let offset: usize = match c.get("offset") {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| errors::invalid(format!("invalid offset {s}")))?,
    };
    let limit = c.limit(usize::MAX, usize::MAX)?;
    let list: Vec<Value> =
        c.ex.markets
            .list
            .iter()
            .filter(|_| spot)
            .filter(|m| wanted.is_empty() || wanted.contains(&m.market.symbol))
            .skip(offset)
            .take(limit)
            .map(|m| product_json(c, m))
            .collect();
    let n = list.len();
    Ok(json!({"products": list, "num_products": n}))
}

/// `GET …/products/{product_id}`.
pub fn product(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.product(c.arg.unwrap_or_default())?;
    Ok(product_json(c, m))
}

/// Seconds per `granularity`.
fn granularity(g: &str) -> Option<i64> {
    Some(match g {
        "ONE_MINUTE" => 60,
        "FIVE_MINUTE" => 300,
        "FIFTEEN_MINUTE" => 900,
        "THIRTY_MINUTE" => 1800,
        "ONE_HOUR" => 3600,
        "TWO_HOUR" => 7200,
        "FOUR_HOUR" => 14_400,
        "SIX_HOUR" => 21_600,
        "ONE_DAY" => 86_400,
        _ => return None,
    })
}

/// Candles a request may ask for.
pub const MAX_CANDLES: i64 = 350;

/// `GET …/products/{product_id}/candles?start&end&granularity[&limit]`: UNIX seconds, at most
/// 350 candles, newest first.
pub fn candles(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.product(c.arg.unwrap_or_default())?;
    let g = c
        .get("granularity")
        .ok_or_else(|| errors::invalid("granularity is required"))?;
    let step = granularity(g).ok_or_else(|| errors::invalid(format!("invalid granularity {g}")))?;
    let secs = |k: &str| -> Result<Option<i64>, ApiErr> {
        match c.get(k) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| errors::invalid(format!("invalid {k} {s}"))),
        }
    };
    let limit = match secs("limit")? {
        None => MAX_CANDLES,
        Some(n) if (1..=MAX_CANDLES).contains(&n) => n,
        Some(_) => return Err(errors::invalid("limit must be between 1 and 350")),
    };
    let end = secs("end")?
        .unwrap_or(c.now.timestamp())
        .min(c.now.timestamp());
    let start = secs("start")?.unwrap_or(end - step * limit);
    if start > end {
        return Err(errors::invalid("start is after end"));
    }
    if (end - start) / step > MAX_CANDLES {
        return Err(errors::invalid(
            "number of candles requested should be less than 350",
        ));
    }
    let w = c.ex.world();
    let mut out = Vec::new();
    let mut t = end - end.rem_euclid(step);
    while t >= start - start.rem_euclid(step) && (out.len() as i64) < limit {
        let k = market_data::candle(
            &c.ex.markets,
            &w,
            &m.market.symbol,
            t / 60,
            step / 60,
            c.now,
        );
        out.push(
            json!({"start": t.to_string(), "low": dec(k.low), "high": dec(k.high),
            "open": dec(k.open), "close": dec(k.close), "volume": dec(k.volume.round_dp(8))}),
        );
        t -= step;
    }
    Ok(json!({"candles": out}))
}

fn best(c: &Ctx<'_>, m: &MarketConf) -> (Decimal, Decimal, Decimal, Decimal) {
    let w = c.ex.world();
    let bid = market_data::book_side(&c.ex.markets, &w, &m.market.symbol, Side::Bid, c.now, 1);
    let ask = market_data::book_side(&c.ex.markets, &w, &m.market.symbol, Side::Ask, c.now, 1);
    let (b, bs) = bid.first().copied().unwrap_or_default();
    let (a, asz) = ask.first().copied().unwrap_or_default();
    (b, bs, a, asz)
}

/// `GET …/products/{product_id}/ticker[?limit]`: recent trades, newest first, and the best
/// bid and ask.
pub fn ticker(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let m = c.product(c.arg.unwrap_or_default())?;
    let limit = c.limit(100, 1000)?;
    let prints = {
        let w = c.ex.world();
        market_data::recent_trades(&c.ex.markets, &w, &m.market.symbol, limit, c.now)
    };
    let trades: Vec<Value> = prints
        .iter()
        .map(|p| {
            let at = Utc.timestamp_millis_opt(p.ms).single().unwrap_or(c.now);
            json!({"trade_id": format!("{}", p.seq), "product_id": m.market.symbol,
                "price": dec(p.price), "size": dec(p.volume), "time": ts(at),
                "side": wire::side(p.taker_side), "exchange": "CBE"})
        })
        .collect();
    let (b, _, a, _) = best(c, m);
    Ok(json!({"trades": trades, "best_bid": dec(b), "best_ask": dec(a)}))
}

/// `GET /api/v3/brokerage/best_bid_ask[?product_ids=…]`: every product when none named.
pub fn best_bid_ask(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let wanted = c.all(&["product_ids"]);
    let mut books = Vec::new();
    for m in &c.ex.markets.list {
        if !wanted.is_empty() && !wanted.contains(&m.market.symbol) {
            continue;
        }
        let (b, bs, a, asz) = best(c, m);
        books.push(json!({"product_id": m.market.symbol,
            "bids": [{"price": dec(b), "size": dec(bs)}],
            "asks": [{"price": dec(a), "size": dec(asz)}], "time": ts(c.now)}));
    }
    for id in &wanted {
        c.product(id)?;
    }
    Ok(json!({"pricebooks": books}))
}

/// `GET /api/v3/brokerage/transaction_summary`: the venue's fee as both maker and taker rate.
pub fn transaction_summary(c: &Ctx<'_>) -> Value {
    let fee = dec(c.ex.markets.fee);
    json!({"total_volume": 0, "total_fees": 0,
        "fee_tier": {"pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "1000",
            "taker_fee_rate": fee, "maker_fee_rate": fee, "aop_from": "", "aop_to": ""},
        "margin_rate": null, "goods_and_services_tax": null,
        "advanced_trade_only_volume": 0, "advanced_trade_only_fees": 0,
        "coinbase_pro_volume": 0, "coinbase_pro_fees": 0, "total_balance": "",
        "has_promo_fee": false})
}

/// `GET /v2/exchange-rates[?currency=USD]`: units of each asset per one unit of `currency`.
pub fn v2_exchange_rates(c: &Ctx<'_>) -> Value {
    let quote = c.ex.scenario.quote.clone();
    let base = c.get("currency").unwrap_or(quote.as_str()).to_string();
    let usd_of = |cur: &str| -> Option<Decimal> {
        if cur == quote {
            return Some(Decimal::ONE);
        }
        let m = c.ex.markets.by_base(cur)?;
        Some(c.ex.markets.ref_price(&m.market.symbol, c.now))
    };
    let mut rates = serde_json::Map::new();
    if let Some(b) = usd_of(&base).filter(|d| !d.is_zero()) {
        rates.insert(quote.clone(), json!(dec(b)));
        for m in &c.ex.markets.list {
            let p = c.ex.markets.ref_price(&m.market.symbol, c.now);
            if !p.is_zero() {
                rates.insert(m.market.base.clone(), json!(dec((b / p).round_dp(12))));
            }
        }
    }
    json!({"data": {"currency": base, "rates": rates}})
}
