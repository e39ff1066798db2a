//! The matching engine: per-market books with price-time priority, the scenario's liquidity
//! provider, the reference price path, and order placement, settlement and cancellation.
//!
//! The liquidity provider is not stored: its levels are computed from the reference price at
//! the moment an order arrives (finite depth per level, replenished between orders), and merged
//! with the real resting orders of accounts. Real orders win ties. This keeps the book
//! realistic (a big market order walks it) without an ever-growing set of LP orders.

use chrono::{DateTime, Utc};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use crate::mock::scenario::MarketSpec;
use crate::mock::state::{Fill, OrdState, OrdType, Order, Side, Tick, World};

/// A resting order in a book.
#[derive(Debug, Clone)]
pub struct Rest {
    pub price: Decimal,
    pub seq: u64,
    pub idx: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Book {
    /// Best (highest) first.
    pub bids: Vec<Rest>,
    /// Best (lowest) first.
    pub asks: Vec<Rest>,
}

impl Book {
    pub fn insert(&mut self, side: Side, r: Rest) {
        let v = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        let pos = v
            .iter()
            .position(|x| match side {
                Side::Bid => x.price < r.price,
                Side::Ask => x.price > r.price,
            })
            .unwrap_or(v.len());
        v.insert(pos, r);
    }
    pub fn remove(&mut self, idx: usize) {
        self.bids.retain(|r| r.idx != idx);
        self.asks.retain(|r| r.idx != idx);
    }
}

/// Markets with their reference price path.
#[derive(Debug, Clone)]
pub struct Markets {
    pub specs: Vec<MarketSpec>,
    pub seed: u64,
    /// The scenario's "now": the reference price equals the spec price there.
    pub anchor: DateTime<Utc>,
    pub fee: Decimal,
}

const PERIODS_MIN: [f64; 6] = [17.0, 83.0, 371.0, 1440.0, 4463.0, 14_221.0];
const AMPS: [f64; 6] = [0.08, 0.15, 0.3, 0.55, 0.8, 1.1];

fn hash01(seed: u64, a: u64, b: i64) -> f64 {
    // splitmix64 over the inputs: deterministic, cheap, good enough for noise.
    let mut z = seed
        ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Rounds a price to 5 significant digits (integers above 100,000), like KRW tick sizes.
pub fn round_price(p: Decimal) -> Decimal {
    if p <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let digits = p.trunc().to_string().trim_start_matches('0').len() as i64;
    let keep = 5 - digits;
    if keep >= 0 {
        p.round_dp(keep.min(4) as u32).normalize()
    } else {
        let f = Decimal::from(10i64.pow((-keep) as u32));
        ((p / f).round() * f).normalize()
    }
}

pub fn round_vol(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(8, RoundingStrategy::ToZero)
        .normalize()
}

impl Markets {
    pub fn get(&self, code: &str) -> Option<(usize, &MarketSpec)> {
        self.specs.iter().enumerate().find(|(_, m)| m.code == code)
    }

    fn wave(&self, mi: usize, minute: i64) -> f64 {
        let x = minute as f64;
        let mut w = 0.0;
        for (k, (p, a)) in PERIODS_MIN.iter().zip(AMPS).enumerate() {
            let phase = hash01(self.seed, (mi * 16 + k) as u64, 0) * std::f64::consts::TAU;
            w += a * (x * std::f64::consts::TAU / p + phase).sin();
        }
        w + (hash01(self.seed, mi as u64 + 1000, minute) - 0.5) * 0.1
    }

    /// The reference price of a market at a time (normal level: no pump, that comes from fills).
    pub fn ref_price(&self, code: &str, t: DateTime<Utc>) -> Decimal {
        let Some((mi, spec)) = self.get(code) else {
            return Decimal::ZERO;
        };
        let minute = t.timestamp().div_euclid(60);
        let anchor = self.anchor.timestamp().div_euclid(60);
        let scale = spec.volatility * 0.35;
        let f = (scale * (self.wave(mi, minute) - self.wave(mi, anchor))).exp();
        let base = spec.price.to_f64().unwrap_or(1.0);
        round_price(Decimal::from_f64(base * f).unwrap_or(spec.price))
    }

    /// The liquidity provider's levels on one side at `t`: (price, volume), best first.
    pub fn lp_levels(&self, code: &str, side: Side, t: DateTime<Utc>) -> Vec<(Decimal, Decimal)> {
        let Some((_, spec)) = self.get(code) else {
            return Vec::new();
        };
        let r = self.ref_price(code, t);
        let step = spec.depth.step_pct / Decimal::from(100);
        (1..=spec.depth.levels)
            .map(|i| {
                let k = step * Decimal::from(i);
                let p = match side {
                    Side::Ask => round_price(r * (Decimal::ONE + k)),
                    Side::Bid => round_price(r * (Decimal::ONE - k)),
                };
                (
                    p,
                    round_vol(spec.depth.level_krw / p.max(Decimal::new(1, 8))),
                )
            })
            .filter(|(p, _)| *p > Decimal::ZERO)
            .collect()
    }
}

/// What a client asked for.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub market: String,
    pub side: Side,
    pub ord_type: OrdType,
    pub price: Option<Decimal>,
    pub volume: Option<Decimal>,
    pub identifier: Option<String>,
    pub time_in_force: Option<String>,
}

/// Why an order was refused: (HTTP status, Upbit error name, message).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name}: {message}")]
pub struct OrderError {
    pub status: u16,
    pub name: &'static str,
    pub message: String,
}

fn oerr(status: u16, name: &'static str, message: impl Into<String>) -> OrderError {
    OrderError {
        status,
        name,
        message: message.into(),
    }
}

/// Minimum order total on KRW markets.
pub const MIN_TOTAL_KRW: i64 = 5000;

/// Validates, locks funds, matches and settles a new order; returns its index.
pub fn place(
    w: &mut World,
    mk: &Markets,
    account: &str,
    req: NewOrder,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    let order = prepare(w, mk, account, req, now)?;
    let (cur, amt) = lock_of(&order);
    let b = w
        .accounts
        .get_mut(account)
        .ok_or_else(|| oerr(400, "invalid_parameter", "unknown account"))?
        .bal(&cur);
    b.balance -= amt;
    b.locked += amt;
    let idx = w.orders.len();
    if let Some(id) = &order.identifier {
        w.identifiers.insert((account.to_string(), id.clone()));
    }
    w.by_uuid.insert(order.uuid, idx);
    w.orders.push(order);
    execute(w, mk, idx, now);
    Ok(idx)
}

/// The currency and amount an order locks.
fn lock_of(o: &Order) -> (String, Decimal) {
    let (q, b) = o.market.split_once('-').unwrap_or(("KRW", ""));
    match o.side {
        Side::Bid => (q.to_string(), o.locked),
        Side::Ask => (b.to_string(), o.locked),
    }
}

/// Validates a new order against the market, the limits and the account's funds, and builds
/// it without touching any state (`POST /v1/orders/test` answers with this).
pub fn prepare(
    w: &mut World,
    mk: &Markets,
    account: &str,
    req: NewOrder,
    now: DateTime<Utc>,
) -> Result<Order, OrderError> {
    let Some((quote, base)) = req.market.split_once('-') else {
        return Err(oerr(
            400,
            "invalid_parameter",
            "market must look like KRW-BTC",
        ));
    };
    let (quote, base) = (quote.to_string(), base.to_string());
    if mk.get(&req.market).is_none() {
        return Err(oerr(
            404,
            "market_does_not_exist",
            format!("market {} does not exist", req.market),
        ));
    }
    let tif = req.time_in_force.clone();
    if let Some(t) = &tif {
        if !["ioc", "fok", "post_only"].contains(&t.as_str()) {
            return Err(oerr(
                400,
                "invalid_parameter",
                "time_in_force must be ioc, fok or post_only",
            ));
        }
    }
    let pos = |d: Option<Decimal>, what: &str| -> Result<Decimal, OrderError> {
        match d {
            Some(v) if v > Decimal::ZERO => Ok(v),
            Some(_) => Err(oerr(
                400,
                "invalid_parameter",
                format!("{what} must be positive"),
            )),
            None => Err(oerr(
                400,
                "validation_error",
                format!("{what} is required for this ord_type"),
            )),
        }
    };
    let fee = mk.fee;
    let min_total = Decimal::from(MIN_TOTAL_KRW);
    // What the order will lock.
    let (price, volume, total) = match (req.ord_type, req.side) {
        (OrdType::Limit, _) => {
            let p = pos(req.price, "price")?;
            let v = pos(req.volume, "volume")?;
            (Some(p), Some(v), p * v)
        }
        (OrdType::Price, Side::Bid) | (OrdType::Best, Side::Bid) => {
            if req.volume.is_some() {
                return Err(oerr(
                    400,
                    "validation_error",
                    "volume must be empty for a market buy by total",
                ));
            }
            let p = pos(req.price, "price")?;
            (Some(p), None, p)
        }
        (OrdType::Market, Side::Ask) | (OrdType::Best, Side::Ask) => {
            if req.price.is_some() {
                return Err(oerr(
                    400,
                    "validation_error",
                    "price must be empty for a market sell",
                ));
            }
            let v = pos(req.volume, "volume")?;
            (None, Some(v), v * mk.ref_price(&req.market, now))
        }
        (OrdType::Price, Side::Ask) => {
            return Err(oerr(
                400,
                "invalid_parameter",
                "ord_type price is for bids (market buy by total)",
            ))
        }
        (OrdType::Market, Side::Bid) => {
            return Err(oerr(
                400,
                "invalid_parameter",
                "ord_type market is for asks (market sell by volume)",
            ))
        }
    };
    if req.ord_type == OrdType::Best && !matches!(tif.as_deref(), Some("ioc") | Some("fok")) {
        return Err(oerr(
            400,
            "invalid_parameter",
            "ord_type best needs time_in_force ioc or fok",
        ));
    }
    if quote == "KRW" && total < min_total {
        return Err(match req.side {
            Side::Bid => oerr(
                400,
                "under_min_total_bid",
                "최소주문금액 이상으로 주문해주세요 (5,000 KRW)",
            ),
            Side::Ask => oerr(
                400,
                "under_min_total_ask",
                "최소주문금액 이상으로 주문해주세요 (5,000 KRW)",
            ),
        });
    }
    if let Some(id) = &req.identifier {
        if w.identifiers.contains(&(account.to_string(), id.clone())) {
            return Err(oerr(
                400,
                "duplicated_identifier",
                "identifier already used by another order",
            ));
        }
    }
    let acct = w
        .accounts
        .get_mut(account)
        .ok_or_else(|| oerr(400, "invalid_parameter", "unknown account"))?;
    let (lock_cur, lock_amt, reserved_fee) = match req.side {
        Side::Bid => {
            let f = total * fee;
            (quote.clone(), total + f, f)
        }
        Side::Ask => (base.clone(), volume.unwrap_or_default(), Decimal::ZERO),
    };
    let b = acct.bal(&lock_cur);
    if b.balance < lock_amt {
        return Err(match req.side {
            Side::Bid => oerr(
                400,
                "insufficient_funds_bid",
                "주문가능한 금액(KRW)이 부족합니다.",
            ),
            Side::Ask => oerr(
                400,
                "insufficient_funds_ask",
                format!("주문가능한 금액({base})이 부족합니다."),
            ),
        });
    }
    let uuid = Uuid::new_v4();
    Ok(Order {
        uuid,
        account: account.to_string(),
        market: req.market.clone(),
        side: req.side,
        ord_type: req.ord_type,
        price,
        volume,
        remaining_volume: volume.unwrap_or_default(),
        remaining_funds: if req.side == Side::Bid && volume.is_none() {
            total
        } else {
            Decimal::ZERO
        },
        reserved_fee,
        remaining_fee: reserved_fee,
        paid_fee: Decimal::ZERO,
        locked: lock_amt,
        executed_volume: Decimal::ZERO,
        executed_funds: Decimal::ZERO,
        state: OrdState::Wait,
        created_at: now,
        identifier: req.identifier.clone(),
        time_in_force: tif.clone(),
        trades: Vec::new(),
    })
}

/// Volume the book (real + LP) offers against a taker up to `limit` price, for FOK/post-only.
fn available(w: &World, mk: &Markets, o: &Order, now: DateTime<Utc>) -> (Decimal, Decimal) {
    let opp = match o.side {
        Side::Bid => Side::Ask,
        Side::Ask => Side::Bid,
    };
    let ok = |p: Decimal| match (o.side, o.ord_type == OrdType::Limit, o.price) {
        (Side::Bid, true, Some(l)) => p <= l,
        (Side::Ask, true, Some(l)) => p >= l,
        _ => true,
    };
    let mut vol = Decimal::ZERO;
    let mut funds = Decimal::ZERO;
    if let Some(book) = w.books.get(&o.market) {
        let side = if opp == Side::Ask {
            &book.asks
        } else {
            &book.bids
        };
        for r in side.iter().filter(|r| ok(r.price)) {
            vol += w.orders[r.idx].remaining_volume;
            funds += w.orders[r.idx].remaining_volume * r.price;
        }
    }
    for (p, v) in mk
        .lp_levels(&o.market, opp, now)
        .into_iter()
        .filter(|(p, _)| ok(*p))
    {
        vol += v;
        funds += v * p;
    }
    (vol, funds)
}

/// Matches order `idx` against the book and the LP, settles fills, and rests or finishes it.
pub fn execute(w: &mut World, mk: &Markets, idx: usize, now: DateTime<Utc>) {
    let o = w.orders[idx].clone();
    let tif = o.time_in_force.as_deref();
    if tif == Some("fok") {
        let (vol, funds) = available(w, mk, &o, now);
        let enough = match o.volume {
            Some(v) => vol >= v,
            None => funds >= o.remaining_funds,
        };
        if !enough {
            finish(w, idx, false);
            return;
        }
    }
    if tif == Some("post_only") {
        let (vol, _) = available(w, mk, &o, now);
        if vol > Decimal::ZERO {
            finish(w, idx, false);
            return;
        }
    }
    let opp = match o.side {
        Side::Bid => Side::Ask,
        Side::Ask => Side::Bid,
    };
    let mut lp = mk.lp_levels(&o.market, opp, now);
    let mut li = 0usize;
    let fee = mk.fee;
    let base = o
        .market
        .split_once('-')
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    let quote = o
        .market
        .split_once('-')
        .map(|x| x.0.to_string())
        .unwrap_or_default();
    loop {
        let cur = &w.orders[idx];
        let want_vol = cur.volume.is_some();
        if want_vol && cur.remaining_volume <= Decimal::ZERO {
            break;
        }
        if !want_vol && cur.remaining_funds <= Decimal::ZERO {
            break;
        }
        let real = w.books.get(&o.market).and_then(|b| match opp {
            Side::Ask => b.asks.first().cloned(),
            Side::Bid => b.bids.first().cloned(),
        });
        while li < lp.len() && lp[li].1 <= Decimal::ZERO {
            li += 1;
        }
        let lpl = lp.get(li).copied();
        let better = |a: Decimal, b: Decimal| match opp {
            Side::Ask => a <= b,
            Side::Bid => a >= b,
        };
        let (px, avail, maker): (Decimal, Decimal, Option<usize>) = match (real, lpl) {
            (Some(r), Some(l)) if better(r.price, l.0) => {
                (r.price, w.orders[r.idx].remaining_volume, Some(r.idx))
            }
            (Some(r), None) => (r.price, w.orders[r.idx].remaining_volume, Some(r.idx)),
            (_, Some(l)) => (l.0, l.1, None),
            (None, None) => break,
        };
        if let (OrdType::Limit, Some(limit)) = (o.ord_type, o.price) {
            let crosses = match o.side {
                Side::Bid => px <= limit,
                Side::Ask => px >= limit,
            };
            if !crosses {
                break;
            }
        }
        let qty = if want_vol {
            cur.remaining_volume.min(avail)
        } else {
            round_vol(cur.remaining_funds / px).min(avail)
        };
        if qty <= Decimal::ZERO {
            break;
        }
        let funds = qty * px;
        let tfee = funds * fee;
        let taker_acct = o.account.clone();
        // Taker side.
        {
            let t = &mut w.orders[idx];
            t.executed_volume += qty;
            t.executed_funds += funds;
            t.paid_fee += tfee;
            t.remaining_fee = (t.reserved_fee - t.paid_fee).max(Decimal::ZERO);
            if want_vol {
                t.remaining_volume -= qty;
            } else {
                t.remaining_funds -= funds;
            }
            let dec = match o.side {
                Side::Bid => funds + tfee,
                Side::Ask => qty,
            };
            t.locked -= dec;
            t.trades.push(Fill {
                uuid: Uuid::new_v4(),
                market: o.market.clone(),
                price: px,
                volume: qty,
                funds,
                trend: if o.side == Side::Bid { "up" } else { "down" },
                side: o.side,
                created_at: now,
            });
        }
        let acct = w.accounts.entry(taker_acct).or_default();
        match o.side {
            Side::Bid => {
                acct.bal(&quote).locked -= funds + tfee;
                let b = acct.bal(&base);
                let held = b.balance + b.locked;
                let newq = held + qty;
                if newq > Decimal::ZERO {
                    b.avg_buy_price = round_price((b.avg_buy_price * held + funds) / newq);
                }
                b.balance += qty;
            }
            Side::Ask => {
                acct.bal(&base).locked -= qty;
                acct.bal(&quote).balance += funds - tfee;
            }
        }
        // Maker side.
        match maker {
            Some(mi) => {
                let mfee = funds * fee;
                let m = &mut w.orders[mi];
                m.executed_volume += qty;
                m.executed_funds += funds;
                m.remaining_volume -= qty;
                m.paid_fee += mfee;
                m.remaining_fee = (m.reserved_fee - m.paid_fee).max(Decimal::ZERO);
                let dec = match opp {
                    Side::Bid => funds + mfee,
                    Side::Ask => qty,
                };
                m.locked -= dec;
                m.trades.push(Fill {
                    uuid: Uuid::new_v4(),
                    market: o.market.clone(),
                    price: px,
                    volume: qty,
                    funds,
                    trend: if o.side == Side::Bid { "up" } else { "down" },
                    side: opp,
                    created_at: now,
                });
                let done = m.remaining_volume <= Decimal::ZERO;
                let macct_name = m.account.clone();
                let macct = w.accounts.entry(macct_name).or_default();
                match opp {
                    Side::Ask => {
                        macct.bal(&base).locked -= qty;
                        macct.bal(&quote).balance += funds - mfee;
                    }
                    Side::Bid => {
                        macct.bal(&quote).locked -= funds + mfee;
                        macct.bal(&base).balance += qty;
                    }
                }
                if done {
                    if let Some(b) = w.books.get_mut(&o.market) {
                        b.remove(mi);
                    }
                    finish(w, mi, true);
                }
            }
            None => lp[li].1 -= qty,
        }
        let seq = w.next_seq();
        w.tape.entry(o.market.clone()).or_default().insert(
            (now.timestamp_millis(), seq),
            Tick {
                price: px,
                volume: qty,
                ask_bid: if o.side == Side::Bid { "BID" } else { "ASK" },
                seq,
            },
        );
    }
    let cur = w.orders[idx].clone();
    let filled = match cur.volume {
        Some(_) => cur.remaining_volume <= Decimal::ZERO,
        None => {
            cur.remaining_funds < cur.price.unwrap_or_default() / Decimal::from(10_000)
                || cur.remaining_funds <= Decimal::ZERO
        }
    };
    if filled {
        finish(w, idx, true);
    } else if cur.ord_type == OrdType::Limit && cur.time_in_force.is_none() {
        // Rest in the book; release what a better fill price saved.
        if cur.side == Side::Bid {
            let need = cur.remaining_volume * cur.price.unwrap_or_default() * (Decimal::ONE + fee);
            let excess = cur.locked - need;
            if excess > Decimal::ZERO {
                let q = quote.clone();
                w.orders[idx].locked -= excess;
                let b = w.accounts.entry(cur.account.clone()).or_default().bal(&q);
                b.locked -= excess;
                b.balance += excess;
            }
        }
        let seq = w.next_seq();
        w.books.entry(cur.market.clone()).or_default().insert(
            cur.side,
            Rest {
                price: cur.price.unwrap_or_default(),
                seq,
                idx,
            },
        );
    } else {
        finish(w, idx, false);
    }
}

/// Ends an order: releases what it still locks; `done` when filled, else `cancel`.
pub fn finish(w: &mut World, idx: usize, done: bool) {
    let o = &mut w.orders[idx];
    o.state = if done {
        OrdState::Done
    } else {
        OrdState::Cancel
    };
    let rel = o.locked;
    o.locked = Decimal::ZERO;
    o.remaining_fee = if done { Decimal::ZERO } else { o.remaining_fee };
    let cur = {
        let (q, b) = o.market.split_once('-').unwrap_or(("KRW", ""));
        match o.side {
            Side::Bid => q.to_string(),
            Side::Ask => b.to_string(),
        }
    };
    let acct = o.account.clone();
    if rel != Decimal::ZERO {
        let b = w.accounts.entry(acct).or_default().bal(&cur);
        b.locked -= rel;
        b.balance += rel;
    }
}

/// Cancels a waiting order. Errors when it is not waiting.
pub fn cancel(w: &mut World, idx: usize) -> Result<(), OrderError> {
    if w.orders[idx].state != OrdState::Wait {
        return Err(oerr(
            400,
            "order_not_found",
            "주문을 찾지 못했습니다. (already done or cancelled)",
        ));
    }
    let market = w.orders[idx].market.clone();
    if let Some(b) = w.books.get_mut(&market) {
        b.remove(idx);
    }
    finish(w, idx, false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::scenario::DepthSpec;

    fn setup() -> (World, Markets, DateTime<Utc>) {
        let now: DateTime<Utc> = "2026-11-20T18:30:00Z".parse().unwrap();
        let mk = Markets {
            specs: vec![MarketSpec {
                code: "KRW-XRP".into(),
                korean_name: "리플".into(),
                english_name: "XRP".into(),
                price: Decimal::from(3000),
                volatility: 0.0,
                depth: DepthSpec {
                    levels: 3,
                    step_pct: Decimal::ONE,
                    level_krw: Decimal::from(300_000),
                },
            }],
            seed: 1,
            anchor: now,
            fee: Decimal::new(5, 4),
        };
        let mut w = World::default();
        for name in ["a", "b"] {
            let acct = w.accounts.entry(name.into()).or_default();
            acct.bal("KRW").balance = Decimal::from(1_000_000);
            acct.bal("XRP").balance = Decimal::from(1000);
        }
        (w, mk, now)
    }

    fn order(side: Side, t: OrdType, price: Option<i64>, volume: Option<i64>) -> NewOrder {
        NewOrder {
            market: "KRW-XRP".into(),
            side,
            ord_type: t,
            price: price.map(Decimal::from),
            volume: volume.map(Decimal::from),
            identifier: None,
            time_in_force: None,
        }
    }

    #[test]
    fn fills_between_accounts_conserve_funds_minus_fees() {
        let (mut w, mk, now) = setup();
        let ask = place(
            &mut w,
            &mk,
            "a",
            order(Side::Ask, OrdType::Limit, Some(3010), Some(10)),
            now,
        )
        .unwrap();
        assert_eq!(w.orders[ask].state, OrdState::Wait);
        assert_eq!(w.accounts["a"].balances["XRP"].locked, Decimal::from(10));
        let bid = place(
            &mut w,
            &mk,
            "b",
            order(Side::Bid, OrdType::Limit, Some(3010), Some(10)),
            now,
        )
        .unwrap();
        assert_eq!(w.orders[bid].state, OrdState::Done);
        assert_eq!(w.orders[ask].state, OrdState::Done);
        let fee = Decimal::from(30_100) * mk.fee;
        assert_eq!(
            w.accounts["a"].balances["KRW"].balance,
            Decimal::from(1_030_100) - fee
        );
        assert_eq!(
            w.accounts["b"].balances["KRW"].balance,
            Decimal::from(969_900) - fee
        );
        assert_eq!(w.accounts["b"].balances["KRW"].locked, Decimal::ZERO);
        assert_eq!(w.accounts["a"].balances["XRP"].locked, Decimal::ZERO);
        assert_eq!(w.accounts["b"].balances["XRP"].balance, Decimal::from(1010));
        assert_eq!(w.orders[ask].paid_fee, fee);
    }

    #[test]
    fn market_sell_beyond_depth_ends_cancelled_and_unlocks() {
        let (mut w, mk, now) = setup();
        // LP bids: 3 levels of 300,000 KRW ≈ 300 XRP in total; selling 1000 exhausts them.
        let i = place(
            &mut w,
            &mk,
            "a",
            order(Side::Ask, OrdType::Market, None, Some(1000)),
            now,
        )
        .unwrap();
        let o = &w.orders[i];
        assert_eq!(o.state, OrdState::Cancel);
        assert_eq!(o.trades.len(), 3);
        assert!(o.executed_volume > Decimal::ZERO && o.executed_volume < Decimal::from(1000));
        let x = &w.accounts["a"].balances["XRP"];
        assert_eq!(x.locked, Decimal::ZERO);
        assert_eq!(x.balance, Decimal::from(1000) - o.executed_volume);
    }

    #[test]
    fn fok_without_enough_depth_does_nothing() {
        let (mut w, mk, now) = setup();
        let mut req = order(Side::Ask, OrdType::Limit, Some(2000), Some(1000));
        req.time_in_force = Some("fok".into());
        let i = place(&mut w, &mk, "a", req, now).unwrap();
        assert_eq!(w.orders[i].state, OrdState::Cancel);
        assert!(w.orders[i].trades.is_empty());
        assert_eq!(w.accounts["a"].balances["XRP"].balance, Decimal::from(1000));
    }
}
