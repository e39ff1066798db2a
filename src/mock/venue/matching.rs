//! The matching engine: per-market books with price-time priority, the scenario's liquidity
//! provider, the reference price path, and order placement, settlement and cancellation, in
//! neutral terms (the façade validated the request's native shape first and names the errors).
//!
//! The liquidity provider is not stored: its levels are computed from the reference price at
//! the moment an order arrives (finite depth per level, replenished between orders), and merged
//! with the real resting orders of accounts. Real orders win ties. This keeps the book
//! realistic (a big market order walks it) without an ever-growing set of LP orders.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::mock::venue::rules::PriceRules;
use crate::mock::venue::state::{
    Fill, Market, Order, OrderKind, OrderState, Side, Tick, Tif, World,
};

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

/// The liquidity provider's book: `levels` price levels per side, `step_pct` apart, each
/// worth `level_value` in the quote currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Depth {
    pub levels: u32,
    pub step_pct: Decimal,
    pub level_value: Decimal,
}

/// One market of the venue, in the façade's quote currency.
#[derive(Debug, Clone)]
pub struct MarketConf {
    pub market: Arc<Market>,
    /// Display name (English).
    pub name: String,
    /// Display names by language code (`ko` → 비트코인).
    pub local_names: BTreeMap<String, String>,
    /// Reference price at the scenario's "now".
    pub price: Decimal,
    /// Daily volatility of the reference path (0.03 = 3 %).
    pub volatility: f64,
    pub depth: Depth,
}

/// Markets with their reference price path.
#[derive(Debug, Clone)]
pub struct Markets {
    pub list: Vec<MarketConf>,
    by_symbol: HashMap<String, usize>,
    pub seed: u64,
    /// The scenario's "now": the reference price equals the spec price there.
    pub anchor: DateTime<Utc>,
    pub fee: Decimal,
    pub rules: PriceRules,
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

impl Markets {
    pub fn new(
        list: Vec<MarketConf>,
        seed: u64,
        anchor: DateTime<Utc>,
        fee: Decimal,
        rules: PriceRules,
    ) -> Markets {
        let by_symbol = list
            .iter()
            .enumerate()
            .map(|(i, m)| (m.market.symbol.clone(), i))
            .collect();
        Markets {
            list,
            by_symbol,
            seed,
            anchor,
            fee,
            rules,
        }
    }

    /// A market by its native symbol, with its position (which seeds its price path).
    pub fn get(&self, symbol: &str) -> Option<(usize, &MarketConf)> {
        self.by_symbol.get(symbol).map(|&i| (i, &self.list[i]))
    }

    /// The market trading `base` against the quote currency.
    pub fn by_base(&self, base: &str) -> Option<&MarketConf> {
        self.list.iter().find(|m| m.market.base == base)
    }

    pub fn round_price(&self, p: Decimal) -> Decimal {
        self.rules.round_price(p)
    }

    pub fn round_vol(&self, v: Decimal) -> Decimal {
        self.rules.round_volume(v)
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
    pub fn ref_price(&self, symbol: &str, t: DateTime<Utc>) -> Decimal {
        let Some((mi, spec)) = self.get(symbol) else {
            return Decimal::ZERO;
        };
        let minute = t.timestamp().div_euclid(60);
        let anchor = self.anchor.timestamp().div_euclid(60);
        let scale = spec.volatility * 0.35;
        let f = (scale * (self.wave(mi, minute) - self.wave(mi, anchor))).exp();
        let base = spec.price.to_f64().unwrap_or(1.0);
        self.round_price(Decimal::from_f64(base * f).unwrap_or(spec.price))
    }

    /// The liquidity provider's levels on one side at `t`: (price, volume), best first.
    pub fn lp_levels(&self, symbol: &str, side: Side, t: DateTime<Utc>) -> Vec<(Decimal, Decimal)> {
        let Some((_, spec)) = self.get(symbol) else {
            return Vec::new();
        };
        let r = self.ref_price(symbol, t);
        let step = spec.depth.step_pct / Decimal::from(100);
        (1..=spec.depth.levels)
            .map(|i| {
                let k = step * Decimal::from(i);
                let p = match side {
                    Side::Ask => self.round_price(r * (Decimal::ONE + k)),
                    Side::Bid => self.round_price(r * (Decimal::ONE - k)),
                };
                (
                    p,
                    self.round_vol(spec.depth.level_value / p.max(Decimal::new(1, 8))),
                )
            })
            .filter(|(p, _)| *p > Decimal::ZERO)
            .collect()
    }

    /// Synthetic background volume of a market-minute (the reference path's own trading).
    pub fn background_volume(&self, symbol: &str, minute: i64, price: Decimal) -> Decimal {
        let Some((mi, spec)) = self.get(symbol) else {
            return Decimal::ZERO;
        };
        let h = ((minute as u64).wrapping_mul(2_654_435_761) ^ (mi as u64 * 97) ^ self.seed) % 1000;
        let value = spec.depth.level_value * Decimal::from(h + 50) / Decimal::from(2000);
        self.round_vol(value / price.max(Decimal::new(1, 8)))
    }
}

/// What a client asked for, in neutral terms.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub market: Arc<Market>,
    pub side: Side,
    pub kind: OrderKind,
    /// Limit price (limit orders).
    pub price: Option<Decimal>,
    /// Quote amount to spend (market buys by quote amount, best bids).
    pub quote_amount: Option<Decimal>,
    /// Base volume (limit orders, market sells, best asks).
    pub volume: Option<Decimal>,
    pub identifier: Option<String>,
    pub tif: Option<Tif>,
}

/// Why the venue refused an order or a cancel; each façade gives it its native name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    /// The request's shape does not fit its kind (a façade validates this first).
    #[error("invalid order: {0}")]
    Invalid(String),
    #[error("order value below the minimum of {min} {currency}")]
    BelowMinNotional {
        side: Side,
        min: Decimal,
        currency: String,
    },
    #[error("identifier already used by another order")]
    DuplicateIdentifier,
    #[error("unknown account")]
    UnknownAccount,
    #[error("insufficient {currency}")]
    InsufficientFunds { side: Side, currency: String },
    #[error("the order is no longer open")]
    NotOpen,
}

/// Validates, locks funds, matches and settles a new order; returns its position.
pub fn place(
    w: &mut World,
    mk: &Markets,
    account: &str,
    req: NewOrder,
    now: DateTime<Utc>,
) -> Result<usize, OrderError> {
    let order = prepare(w, mk, account, req, now)?;
    let (cur, amt) = (order.lock_currency().to_string(), order.locked);
    let b = w
        .accounts
        .get_mut(account)
        .ok_or(OrderError::UnknownAccount)?
        .bal(&cur);
    b.balance -= amt;
    b.locked += amt;
    let idx = w.push_order(order);
    execute(w, mk, idx, now);
    Ok(idx)
}

/// Checks a new order against the minimum value, the identifiers in use and the account's
/// funds, and builds it without touching any state (a façade's "test order" answers with
/// this).
pub fn prepare(
    w: &mut World,
    mk: &Markets,
    account: &str,
    req: NewOrder,
    now: DateTime<Utc>,
) -> Result<Order, OrderError> {
    let pos = |d: Option<Decimal>, what: &str| -> Result<Decimal, OrderError> {
        match d {
            Some(v) if v > Decimal::ZERO => Ok(v),
            _ => Err(OrderError::Invalid(format!("{what} must be positive"))),
        }
    };
    let fee = mk.fee;
    // What the order will lock: (limit price, quote amount, volume, value).
    let (price, quote_amount, volume, total) = match (req.kind, req.side) {
        (OrderKind::Limit, _) => {
            let p = pos(req.price, "price")?;
            let v = pos(req.volume, "volume")?;
            (Some(p), None, Some(v), p * v)
        }
        (OrderKind::MarketBuyQuote, Side::Bid) | (OrderKind::Best, Side::Bid) => {
            let q = pos(req.quote_amount, "quote amount")?;
            (None, Some(q), None, q)
        }
        (OrderKind::MarketSellBase, Side::Ask) | (OrderKind::Best, Side::Ask) => {
            let v = pos(req.volume, "volume")?;
            (
                None,
                None,
                Some(v),
                v * mk.ref_price(&req.market.symbol, now),
            )
        }
        (OrderKind::MarketBuyBase, Side::Bid) => {
            let v = pos(req.volume, "volume")?;
            // It locks what taking `v` costs now (the order matches at once, at this `now`).
            let (_, cost) = cost_to_take(w, mk, &req.market.symbol, Side::Bid, v, now);
            (None, None, Some(v), cost)
        }
        (OrderKind::MarketBuyQuote, Side::Ask) => {
            return Err(OrderError::Invalid(
                "a market buy by quote amount is a bid".into(),
            ))
        }
        (OrderKind::MarketBuyBase, Side::Ask) => {
            return Err(OrderError::Invalid(
                "a market buy by base volume is a bid".into(),
            ))
        }
        (OrderKind::MarketSellBase, Side::Bid) => {
            return Err(OrderError::Invalid(
                "a market sell by base volume is an ask".into(),
            ))
        }
    };
    if req.kind == OrderKind::Best && !matches!(req.tif, Some(Tif::Ioc) | Some(Tif::Fok)) {
        return Err(OrderError::Invalid(
            "a best-price order needs ioc or fok".into(),
        ));
    }
    let min = mk.rules.min_notional;
    if min > Decimal::ZERO && total < min {
        return Err(OrderError::BelowMinNotional {
            side: req.side,
            min,
            currency: req.market.quote.clone(),
        });
    }
    if let Some(id) = &req.identifier {
        if w.identifier_used(account, id) {
            return Err(OrderError::DuplicateIdentifier);
        }
    }
    let acct = w
        .accounts
        .get_mut(account)
        .ok_or(OrderError::UnknownAccount)?;
    let (lock_cur, lock_amt, reserved_fee) = match req.side {
        Side::Bid => {
            let f = total * fee;
            (req.market.quote.as_str(), total + f, f)
        }
        Side::Ask => (
            req.market.base.as_str(),
            volume.unwrap_or_default(),
            Decimal::ZERO,
        ),
    };
    let b = acct.bal(lock_cur);
    if b.balance < lock_amt {
        return Err(OrderError::InsufficientFunds {
            side: req.side,
            currency: lock_cur.to_string(),
        });
    }
    Ok(Order {
        uuid: Uuid::new_v4(),
        account: account.to_string(),
        market: req.market.clone(),
        side: req.side,
        kind: req.kind,
        price,
        quote_amount,
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
        state: OrderState::Open,
        created_at: now,
        identifier: req.identifier,
        tif: req.tif,
        trades: Vec::new(),
    })
}

/// Volume the book (real + LP) offers against a taker up to `limit` price, for FOK/post-only.
fn available(w: &World, mk: &Markets, o: &Order, now: DateTime<Utc>) -> (Decimal, Decimal) {
    let opp = o.side.opposite();
    let ok = |p: Decimal| match (o.side, o.kind == OrderKind::Limit, o.price) {
        (Side::Bid, true, Some(l)) => p <= l,
        (Side::Ask, true, Some(l)) => p >= l,
        _ => true,
    };
    let mut vol = Decimal::ZERO;
    let mut funds = Decimal::ZERO;
    if let Some(book) = w.books.get(&o.market.symbol) {
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
        .lp_levels(&o.market.symbol, opp, now)
        .into_iter()
        .filter(|(p, _)| ok(*p))
    {
        vol += v;
        funds += v * p;
    }
    (vol, funds)
}

/// What a taker on `side` gets for up to `volume` at market now, walking the resting orders
/// and the LP's levels best first (resting orders first at a tie, as matching does): the
/// volume available (at most `volume`) and its quote cost.
pub fn cost_to_take(
    w: &World,
    mk: &Markets,
    symbol: &str,
    side: Side,
    volume: Decimal,
    now: DateTime<Utc>,
) -> (Decimal, Decimal) {
    let opp = side.opposite();
    // (price, real order first at a tie, volume)
    let mut levels: Vec<(Decimal, u8, Decimal)> = mk
        .lp_levels(symbol, opp, now)
        .into_iter()
        .map(|(p, v)| (p, 1, v))
        .collect();
    if let Some(book) = w.books.get(symbol) {
        let rest = if opp == Side::Ask {
            &book.asks
        } else {
            &book.bids
        };
        levels.extend(
            rest.iter()
                .map(|r| (r.price, 0, w.orders[r.idx].remaining_volume)),
        );
    }
    levels.sort_by(|a, b| match opp {
        Side::Ask => (a.0, a.1).cmp(&(b.0, b.1)),
        Side::Bid => b.0.cmp(&a.0).then(a.1.cmp(&b.1)),
    });
    let (mut got, mut cost) = (Decimal::ZERO, Decimal::ZERO);
    for (p, _, v) in levels {
        if got >= volume {
            break;
        }
        let q = v.min(volume - got);
        got += q;
        cost += q * p;
    }
    (got, cost)
}

/// Matches order `idx` against the book and the LP, settles fills, and rests or finishes it.
pub fn execute(w: &mut World, mk: &Markets, idx: usize, now: DateTime<Utc>) {
    let o = w.orders[idx].clone();
    if o.tif == Some(Tif::Fok) {
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
    if o.tif == Some(Tif::PostOnly) {
        let (vol, _) = available(w, mk, &o, now);
        if vol > Decimal::ZERO {
            finish(w, idx, false);
            return;
        }
    }
    let opp = o.side.opposite();
    let mut lp = mk.lp_levels(&o.market.symbol, opp, now);
    let mut li = 0usize;
    let fee = mk.fee;
    let base = o.market.base.clone();
    let quote = o.market.quote.clone();
    loop {
        let cur = &w.orders[idx];
        let want_vol = cur.volume.is_some();
        if want_vol && cur.remaining_volume <= Decimal::ZERO {
            break;
        }
        if !want_vol && cur.remaining_funds <= Decimal::ZERO {
            break;
        }
        let real = w.books.get(&o.market.symbol).and_then(|b| match opp {
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
        if let (OrderKind::Limit, Some(limit)) = (o.kind, o.price) {
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
            mk.round_vol(cur.remaining_funds / px).min(avail)
        };
        if qty <= Decimal::ZERO {
            break;
        }
        let funds = qty * px;
        let tfee = funds * fee;
        let taker_acct = o.account.clone();
        let trade_id = w.next_trade_id();
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
        }
        w.push_fill(
            idx,
            Fill {
                uuid: Uuid::new_v4(),
                id: trade_id,
                market: o.market.clone(),
                price: px,
                volume: qty,
                funds,
                side: o.side,
                taker_side: o.side,
                created_at: now,
            },
        );
        let acct = w.accounts.entry(taker_acct).or_default();
        match o.side {
            Side::Bid => {
                acct.bal(&quote).locked -= funds + tfee;
                let b = acct.bal(&base);
                let held = b.balance + b.locked;
                let newq = held + qty;
                if newq > Decimal::ZERO {
                    b.avg_buy_price = mk.round_price((b.avg_buy_price * held + funds) / newq);
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
                let done = m.remaining_volume <= Decimal::ZERO;
                let macct_name = m.account.clone();
                w.push_fill(
                    mi,
                    Fill {
                        uuid: Uuid::new_v4(),
                        id: trade_id,
                        market: o.market.clone(),
                        price: px,
                        volume: qty,
                        funds,
                        side: opp,
                        taker_side: o.side,
                        created_at: now,
                    },
                );
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
                    if let Some(b) = w.books.get_mut(&o.market.symbol) {
                        b.remove(mi);
                    }
                    finish(w, mi, true);
                }
                end_linked(w, mi);
            }
            None => lp[li].1 -= qty,
        }
        let seq = w.next_seq();
        w.tape.entry(o.market.symbol.clone()).or_default().insert(
            (now.timestamp_millis(), seq),
            Tick {
                price: px,
                volume: qty,
                taker_side: o.side,
                seq,
            },
        );
    }
    let cur = w.orders[idx].clone();
    // An order sized by quote amount is filled once what is left cannot buy one more lot at
    // its last fill's price (or is a rounding crumb).
    let filled = match cur.volume {
        Some(_) => cur.remaining_volume <= Decimal::ZERO,
        None => {
            cur.remaining_funds < cur.quote_amount.unwrap_or_default() / Decimal::from(10_000)
                || cur.remaining_funds <= Decimal::ZERO
                || cur
                    .trades
                    .last()
                    .is_some_and(|f| mk.round_vol(cur.remaining_funds / f.price).is_zero())
        }
    };
    if filled {
        finish(w, idx, true);
    } else if cur.kind == OrderKind::Limit && matches!(cur.tif, None | Some(Tif::PostOnly)) {
        // Rest in the book (a post-only order that would not take, too); release what a
        // better fill price saved.
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
        w.books
            .entry(cur.market.symbol.clone())
            .or_default()
            .insert(
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

/// Ends an order: releases what it still locks; `done` when filled, else cancelled.
pub fn finish(w: &mut World, idx: usize, done: bool) {
    w.set_state(
        idx,
        if done {
            OrderState::Done
        } else {
            OrderState::Cancelled
        },
    );
    let o = &mut w.orders[idx];
    let rel = o.locked;
    o.locked = Decimal::ZERO;
    o.remaining_fee = if done { Decimal::ZERO } else { o.remaining_fee };
    let cur = o.lock_currency().to_string();
    let acct = o.account.clone();
    if rel != Decimal::ZERO {
        let b = w.accounts.entry(acct).or_default().bal(&cur);
        b.locked -= rel;
        b.balance += rel;
    }
}

/// After a fill of order `idx`: the other open legs of its order list are cancelled (one
/// leg filling, even partly, ends the others).
pub fn end_linked(w: &mut World, idx: usize) {
    let Some((_, list)) = w.list_of(idx) else {
        return;
    };
    let others: Vec<usize> = list.legs.iter().copied().filter(|&l| l != idx).collect();
    for other in others {
        let _ = cancel(w, other);
    }
}

/// Cancels an open order. Errors when it is not open.
pub fn cancel(w: &mut World, idx: usize) -> Result<(), OrderError> {
    if w.orders[idx].state != OrderState::Open {
        return Err(OrderError::NotOpen);
    }
    let symbol = w.orders[idx].market.symbol.clone();
    if let Some(b) = w.books.get_mut(&symbol) {
        b.remove(idx);
    }
    finish(w, idx, false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (World, Markets, DateTime<Utc>) {
        let now: DateTime<Utc> = "2026-11-20T18:30:00Z".parse().unwrap();
        let rules = crate::mock::venue::rules::sample();
        let mk = Markets::new(
            vec![MarketConf {
                market: market(),
                name: "Coin".into(),
                local_names: BTreeMap::new(),
                price: Decimal::from(3000),
                volatility: 0.0,
                depth: Depth {
                    levels: 3,
                    step_pct: Decimal::ONE,
                    level_value: Decimal::from(300_000),
                },
            }],
            1,
            now,
            Decimal::new(5, 4),
            rules,
        );
        let mut w = World::default();
        for name in ["a", "b"] {
            let acct = w.accounts.entry(name.into()).or_default();
            acct.bal("QUOTE").balance = Decimal::from(1_000_000);
            acct.bal("COIN").balance = Decimal::from(1000);
        }
        (w, mk, now)
    }

    fn market() -> Arc<Market> {
        Arc::new(Market {
            symbol: "COIN/QUOTE".into(),
            base: "COIN".into(),
            quote: "QUOTE".into(),
        })
    }

    fn order(side: Side, kind: OrderKind, price: Option<i64>, volume: Option<i64>) -> NewOrder {
        NewOrder {
            market: market(),
            side,
            kind,
            price: price.map(Decimal::from),
            quote_amount: None,
            volume: volume.map(Decimal::from),
            identifier: None,
            tif: None,
        }
    }

    #[test]
    fn fills_between_accounts_conserve_funds_minus_fees() {
        let (mut w, mk, now) = setup();
        let ask = place(
            &mut w,
            &mk,
            "a",
            order(Side::Ask, OrderKind::Limit, Some(3010), Some(10)),
            now,
        )
        .unwrap();
        assert_eq!(w.orders[ask].state, OrderState::Open);
        assert_eq!(w.accounts["a"].balances["COIN"].locked, Decimal::from(10));
        let bid = place(
            &mut w,
            &mk,
            "b",
            order(Side::Bid, OrderKind::Limit, Some(3010), Some(10)),
            now,
        )
        .unwrap();
        assert_eq!(w.orders[bid].state, OrderState::Done);
        assert_eq!(w.orders[ask].state, OrderState::Done);
        let fee = Decimal::from(30_100) * mk.fee;
        assert_eq!(
            w.accounts["a"].balances["QUOTE"].balance,
            Decimal::from(1_030_100) - fee
        );
        assert_eq!(
            w.accounts["b"].balances["QUOTE"].balance,
            Decimal::from(969_900) - fee
        );
        assert_eq!(w.accounts["b"].balances["QUOTE"].locked, Decimal::ZERO);
        assert_eq!(w.accounts["a"].balances["COIN"].locked, Decimal::ZERO);
        assert_eq!(
            w.accounts["b"].balances["COIN"].balance,
            Decimal::from(1010)
        );
        assert_eq!(w.orders[ask].paid_fee, fee);
    }

    #[test]
    fn market_sell_beyond_depth_ends_cancelled_and_unlocks() {
        let (mut w, mk, now) = setup();
        // LP bids: 3 levels worth 300,000 each ≈ 300 COIN in total; selling 1000 exhausts them.
        let i = place(
            &mut w,
            &mk,
            "a",
            order(Side::Ask, OrderKind::MarketSellBase, None, Some(1000)),
            now,
        )
        .unwrap();
        let o = &w.orders[i];
        assert_eq!(o.state, OrderState::Cancelled);
        assert_eq!(o.trades.len(), 3);
        assert!(o.executed_volume > Decimal::ZERO && o.executed_volume < Decimal::from(1000));
        let x = &w.accounts["a"].balances["COIN"];
        assert_eq!(x.locked, Decimal::ZERO);
        assert_eq!(x.balance, Decimal::from(1000) - o.executed_volume);
    }

    #[test]
    fn a_market_buy_of_a_volume_takes_exactly_it_and_unlocks_the_rest() {
        let (mut w, mk, now) = setup();
        // A resting ask below the LP's first level is taken first.
        let ask = place(
            &mut w,
            &mk,
            "a",
            order(Side::Ask, OrderKind::Limit, Some(3010), Some(10)),
            now,
        )
        .unwrap();
        let (avail, cost) = cost_to_take(&w, &mk, "COIN/QUOTE", Side::Bid, Decimal::from(150), now);
        assert_eq!(avail, Decimal::from(150));
        let i = place(
            &mut w,
            &mk,
            "b",
            order(Side::Bid, OrderKind::MarketBuyBase, None, Some(150)),
            now,
        )
        .unwrap();
        let o = &w.orders[i];
        assert_eq!(o.state, OrderState::Done);
        assert_eq!(o.executed_volume, Decimal::from(150));
        assert_eq!(o.executed_funds, cost);
        assert_eq!(
            o.trades[0].price,
            Decimal::from(3010),
            "the resting ask first"
        );
        assert_eq!(w.orders[ask].state, OrderState::Done);
        let q = &w.accounts["b"].balances["QUOTE"];
        assert_eq!(q.locked, Decimal::ZERO);
        assert_eq!(
            q.balance,
            Decimal::from(1_000_000) - cost - cost * mk.fee,
            "paid the walk and its fee, nothing else"
        );
        // More than the book holds: what there is, then cancelled with nothing locked.
        let j = place(
            &mut w,
            &mk,
            "a",
            order(Side::Bid, OrderKind::MarketBuyBase, None, Some(100_000)),
            now,
        )
        .unwrap();
        assert_eq!(w.orders[j].state, OrderState::Cancelled);
        assert!(w.orders[j].executed_volume < Decimal::from(100_000));
        assert_eq!(w.accounts["a"].balances["QUOTE"].locked, Decimal::ZERO);
        assert!(matches!(
            prepare(
                &mut w,
                &mk,
                "a",
                order(Side::Ask, OrderKind::MarketBuyBase, None, Some(1)),
                now
            ),
            Err(OrderError::Invalid(_))
        ));
    }

    #[test]
    fn both_sides_of_a_match_share_one_increasing_trade_number() {
        let (mut w, mk, now) = setup();
        w.trade_seq = 41;
        let ask = place(
            &mut w,
            &mk,
            "a",
            order(Side::Ask, OrderKind::Limit, Some(3010), Some(10)),
            now,
        )
        .unwrap();
        let bid = place(
            &mut w,
            &mk,
            "b",
            order(Side::Bid, OrderKind::Limit, Some(3100), Some(300)),
            now,
        )
        .unwrap();
        assert_eq!(w.orders[ask].trades[0].id, 42);
        let ids: Vec<u64> = w.orders[bid].trades.iter().map(|f| f.id).collect();
        assert_eq!(ids[0], 42, "the maker's fill is the same trade");
        assert!(ids.windows(2).all(|p| p[1] == p[0] + 1), "{ids:?}");
    }

    #[test]
    fn a_buy_by_quote_amount_is_filled_when_the_rest_cannot_buy_a_lot() {
        let (mut w, mut mk, now) = setup();
        mk.rules.volume_dp = 2;
        let mut req = order(Side::Bid, OrderKind::MarketBuyQuote, None, None);
        req.quote_amount = Some(Decimal::from(10_000));
        let i = place(&mut w, &mk, "a", req, now).unwrap();
        let o = &w.orders[i];
        // 10,000 at ~3,030 buys 3.30 lots of 0.01; a few units are left, less than a lot.
        assert!(
            o.remaining_funds > Decimal::ZERO
                && o.remaining_funds < o.trades[0].price / Decimal::ONE_HUNDRED
        );
        assert_eq!(o.state, OrderState::Done);
        assert_eq!(w.accounts["a"].balances["QUOTE"].locked, Decimal::ZERO);
    }

    #[test]
    fn fok_without_enough_depth_does_nothing() {
        let (mut w, mk, now) = setup();
        let mut req = order(Side::Ask, OrderKind::Limit, Some(2000), Some(1000));
        req.tif = Some(Tif::Fok);
        let i = place(&mut w, &mk, "a", req, now).unwrap();
        assert_eq!(w.orders[i].state, OrderState::Cancelled);
        assert!(w.orders[i].trades.is_empty());
        assert_eq!(
            w.accounts["a"].balances["COIN"].balance,
            Decimal::from(1000)
        );
    }
}
