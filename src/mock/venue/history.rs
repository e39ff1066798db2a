//! Generated past: the scenario's world set-up, the bot's history (and its own log), the
//! attack (which also writes the ground truth) and the user's manual trades.
//!
//! History is written straight into the world as finished orders with fills priced from the
//! reference path (or against the attacker's counter-orders), not replayed through the engine:
//! that keeps generation fast and exactly reproducible from the seed. Current balances are the
//! scenario's balances with the attack's effects applied (the bot's past trades are taken as
//! already reflected in them). Open orders (the bot's and the attacker's) are real resting
//! orders with locked funds.
//!
//! Everything here is in the façade's terms already: the scenario was translated into its
//! quote currency, and sizes that must clear the minimum order value derive from its rules.

use std::sync::Arc;

use chrono::{DateTime, Duration, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::mock::venue::keys::{KeyRec, Permission};
use crate::mock::venue::matching::{Markets, Rest};
use crate::mock::venue::scenario::{AttackSpec, Scenario};
use crate::mock::venue::state::{
    Account, CoinAddress, Deposit, Fill, Market, Order, OrderKind, OrderList, OrderState, Side,
    Tick, Tif, Withdrawal, WithdrawalState, World,
};
use crate::mock::venue::transfers::WITHDRAWAL_FEE;
use crate::mock::venue::{clock, dec, KeyMaker};

/// One row of the generic bot-log CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotLogRow {
    pub order_id: Uuid,
    pub identifier: Option<String>,
    /// The façade's native symbol.
    pub market: String,
    pub side: Side,
    pub kind: OrderKind,
    pub created_at: DateTime<Utc>,
    /// The limit price, or the quote amount of a market buy by quote amount.
    pub price: Option<Decimal>,
    pub volume: Option<Decimal>,
}

/// Header of the generic bot-log format shared with the analysis importer.
pub const BOT_LOG_HEADER: &str = "order_id,identifier,market,side,ord_type,created_at,price,volume";

/// Renders rows as the generic bot-log CSV.
pub fn bot_log_csv(rows: &[BotLogRow]) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let mut out = String::from(BOT_LOG_HEADER);
    out.push('\n');
    for r in rows {
        let rec = [
            r.order_id.to_string(),
            r.identifier.clone().unwrap_or_default(),
            r.market.clone(),
            r.side.as_str().to_string(),
            r.kind.bot_log_name().to_string(),
            clock::ts(r.created_at),
            r.price.map(dec).unwrap_or_default(),
            r.volume.map(dec).unwrap_or_default(),
        ];
        let _ = w.write_record(&rec);
    }
    let bytes = w.into_inner().unwrap_or_default();
    out.push_str(&String::from_utf8_lossy(&bytes));
    out
}

/// Deterministic generator state.
pub struct Gen {
    pub rng: ChaCha8Rng,
    /// While set, generated fills stay off the public tape (counter-orders of a fill that the
    /// other side already put there).
    pub mute_tape: bool,
    /// The bot's identifier counter after its last order (an attacker copying the bot's
    /// identifiers continues it).
    pub bot_counter: u64,
}

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            mute_tape: false,
            bot_counter: 0,
        }
    }
    pub fn uuid(&mut self) -> Uuid {
        let b: [u8; 16] = self.rng.gen();
        uuid::Builder::from_random_bytes(b).into_uuid()
    }
    pub fn token(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| A[self.rng.gen_range(0..A.len())] as char)
            .collect()
    }
    fn dec_between(&mut self, lo: Decimal, hi: Decimal) -> Decimal {
        let f: f64 = self.rng.gen();
        lo + (hi - lo) * Decimal::from_f64_retain(f).unwrap_or_default().round_dp(6)
    }
    fn pct(&mut self, max: f64) -> Decimal {
        Decimal::from_f64_retain(self.rng.gen::<f64>() * max)
            .unwrap_or_default()
            .round_dp(6)
    }
}

/// Sets up accounts, keys and addresses, then generates history. Returns the bot log.
pub fn build(
    sc: &Scenario,
    keys: &KeyMaker<'_>,
    mk: &Markets,
    now: DateTime<Utc>,
    w: &mut World,
) -> Vec<BotLogRow> {
    let mut g = Gen::new(sc.seed);
    let quote = sc.quote.as_str();
    w.truth.loss_currency = quote.to_string();
    w.truth.loss_dp = mk.rules.quote_dp;
    for a in &sc.accounts {
        let mut acct = Account {
            email: a.email(),
            master: a.master.clone(),
            ..Account::default()
        };
        for (cur, amt) in &a.balances {
            acct.bal(cur).balance = *amt;
            if cur != quote {
                acct.bal(cur).avg_buy_price = mk
                    .by_base(cur)
                    .map(|m| mk.ref_price(&m.market.symbol, now - Duration::days(20)))
                    .unwrap_or_default();
            }
        }
        w.accounts.insert(a.name.clone(), acct);
        // The account was funded by a deposit of the quote currency long ago.
        if let Some(funds) = a.balances.get(quote) {
            let uuid = g.uuid();
            let txid = g.token(24);
            w.deposits.push(Deposit {
                uuid,
                account: a.name.clone(),
                currency: quote.into(),
                net_type: quote.into(),
                txid,
                created_at: now - Duration::days(45),
                amount: *funds,
            });
        }
    }
    for k in &sc.keys {
        let rec = keys.make(&mut g, k, now);
        w.keys.insert(rec.access_key.clone(), rec);
    }
    for a in &sc.withdraw_addresses {
        let registered_at = now - Duration::minutes(a.registered_minutes_ago);
        let net = a.net_type.clone().unwrap_or_else(|| a.currency.clone());
        w.addresses.push(CoinAddress {
            account: a.account.clone(),
            currency: a.currency.clone(),
            net_type: net.clone(),
            address: a.address.clone(),
            registered_at,
        });
        for i in 0..a.past_withdrawals {
            let span = (now - registered_at).num_minutes().max(2);
            let at = registered_at
                + Duration::minutes(span * (i as i64 + 1) / (a.past_withdrawals as i64 + 2));
            let uuid = g.uuid();
            let txid = hex::encode(g.rng.gen::<[u8; 32]>());
            w.withdrawals.push(Withdrawal {
                uuid,
                account: a.account.clone(),
                currency: a.currency.clone(),
                net_type: net.clone(),
                address: a.address.clone(),
                txid: Some(txid),
                state: WithdrawalState::Done,
                created_at: at,
                done_at: Some(at + Duration::minutes(25)),
                amount: Decimal::new(1, 2),
                fee: WITHDRAWAL_FEE,
            });
        }
    }
    let mut log = Vec::new();
    if let Some(bot) = &sc.bot {
        log = bot_history(sc, bot, mk, now, w, &mut g);
    }
    if let Some(m) = &sc.manual {
        manual_history(sc, m, mk, now, w, &mut g);
    }
    if let Some(a) = &sc.attack {
        attack(sc, a, mk, now, w, &mut g);
    }
    if let Some(m) = &sc.manual {
        let t0 = sc.attack.as_ref().map_or(now, |a| attack_start(sc, a, now));
        manual_incident(sc, m, mk, t0, w, &mut g);
    }
    if w.truth.leaked_access_key.is_empty() {
        name_leaked_key_without_attack(sc, w);
    }
    // Order lists name their legs by position: remember them by uuid across the sort.
    let list_legs: Vec<Vec<Uuid>> = w
        .order_lists
        .iter()
        .map(|l| l.legs.iter().map(|&i| w.orders[i].uuid).collect())
        .collect();
    w.orders.sort_by_key(|o| o.created_at);
    w.reindex();
    let lists = std::mem::take(&mut w.order_lists);
    w.list_of.clear();
    for (mut l, uuids) in lists.into_iter().zip(list_legs) {
        l.legs = uuids.iter().filter_map(|u| w.position(u)).collect();
        w.push_list(l);
    }
    w.number_fills();
    // Rebuild the books (positions changed with the sort).
    w.books.clear();
    let waiting: Vec<(usize, Side, Decimal, String)> = w
        .orders
        .iter()
        .enumerate()
        .filter(|(i, o)| o.state == OrderState::Open && !w.held_off_book(*i))
        .map(|(i, o)| {
            (
                i,
                o.side,
                o.price.unwrap_or_default(),
                o.market.symbol.clone(),
            )
        })
        .collect();
    for (idx, side, price, market) in waiting {
        let seq = w.next_seq();
        w.books
            .entry(market)
            .or_default()
            .insert(side, Rest { price, seq, idx });
    }
    w.withdrawals.sort_by_key(|x| x.created_at);
    log.sort_by_key(|r| r.created_at);
    log
}

/// A finished order with its fills. `amount` is the limit price, or the quote amount of a
/// market buy by quote amount.
#[allow(clippy::too_many_arguments)]
fn filled_order(
    g: &mut Gen,
    w: &mut World,
    account: &str,
    market: &Arc<Market>,
    side: Side,
    kind: OrderKind,
    amount: Option<Decimal>,
    fills: &[(Decimal, Decimal)],
    at: DateTime<Utc>,
    identifier: Option<String>,
    fee: Decimal,
) -> Uuid {
    let uuid = g.uuid();
    let mut trades = Vec::new();
    let mut ev = Decimal::ZERO;
    let mut ef = Decimal::ZERO;
    for (i, (p, v)) in fills.iter().enumerate() {
        let funds = *p * *v;
        ev += *v;
        ef += funds;
        let fu = g.uuid();
        trades.push(Fill {
            uuid: fu,
            // Numbered in time order once the whole history is written.
            id: 0,
            market: market.clone(),
            price: *p,
            volume: *v,
            funds,
            side,
            taker_side: side,
            created_at: at + Duration::milliseconds(120 + 35 * i as i64),
        });
        if g.mute_tape {
            continue;
        }
        let seq = w.next_seq();
        w.tape.entry(market.symbol.clone()).or_default().insert(
            (
                (at + Duration::milliseconds(120 + 35 * i as i64)).timestamp_millis(),
                seq,
            ),
            Tick {
                price: *p,
                volume: *v,
                taker_side: side,
                seq,
            },
        );
    }
    let paid_fee = ef * fee;
    let by_quote = kind == OrderKind::MarketBuyQuote;
    w.push_order(Order {
        uuid,
        account: account.into(),
        market: market.clone(),
        side,
        kind,
        price: if by_quote { None } else { amount },
        quote_amount: if by_quote { amount } else { None },
        volume: if by_quote { None } else { Some(ev) },
        remaining_volume: Decimal::ZERO,
        remaining_funds: Decimal::ZERO,
        reserved_fee: if side == Side::Bid {
            paid_fee
        } else {
            Decimal::ZERO
        },
        remaining_fee: Decimal::ZERO,
        paid_fee,
        locked: Decimal::ZERO,
        executed_volume: ev,
        executed_funds: ef,
        state: OrderState::Done,
        created_at: at,
        identifier,
        tif: None,
        trades,
    });
    uuid
}

/// A resting limit order with its funds locked; None when the account cannot afford it.
#[allow(clippy::too_many_arguments)]
fn open_order(
    g: &mut Gen,
    w: &mut World,
    account: &str,
    market: &Arc<Market>,
    side: Side,
    price: Decimal,
    volume: Decimal,
    at: DateTime<Utc>,
    identifier: Option<String>,
    fee: Decimal,
) -> Option<Uuid> {
    let (cur, amt, rfee) = match side {
        Side::Bid => (
            market.quote.as_str(),
            price * volume * (Decimal::ONE + fee),
            price * volume * fee,
        ),
        Side::Ask => (market.base.as_str(), volume, Decimal::ZERO),
    };
    let bal = w.accounts.get_mut(account)?.bal(cur);
    if bal.balance < amt {
        return None;
    }
    bal.balance -= amt;
    bal.locked += amt;
    let uuid = g.uuid();
    w.push_order(Order {
        uuid,
        account: account.into(),
        market: market.clone(),
        side,
        kind: OrderKind::Limit,
        price: Some(price),
        quote_amount: None,
        volume: Some(volume),
        remaining_volume: volume,
        remaining_funds: Decimal::ZERO,
        reserved_fee: rfee,
        remaining_fee: rfee,
        paid_fee: Decimal::ZERO,
        locked: amt,
        executed_volume: Decimal::ZERO,
        executed_funds: Decimal::ZERO,
        state: OrderState::Open,
        created_at: at,
        identifier,
        tif: None,
        trades: Vec::new(),
    });
    Some(uuid)
}

/// The market trading `base` (validated by the scenario).
fn market_of(mk: &Markets, base: &str) -> Arc<Market> {
    mk.by_base(base)
        .map(|m| m.market.clone())
        .expect("scenario validation checked every market reference")
}

fn bot_history(
    sc: &Scenario,
    bot: &crate::mock::venue::scenario::BotSpec,
    mk: &Markets,
    now: DateTime<Utc>,
    w: &mut World,
    g: &mut Gen,
) -> Vec<BotLogRow> {
    let total = bot.days as i64 * bot.orders_per_day as i64;
    let span_ms = bot.days as i64 * 86_400_000;
    let mut times: Vec<i64> = (0..total)
        .map(|_| g.rng.gen_range(0..span_ms - 120_000))
        .collect();
    times.sort_unstable();
    let start = now - Duration::milliseconds(span_ms);
    // Regular orders, and the bursts' orders (burst index) in time order.
    let mut slots: Vec<(i64, Option<usize>)> = times.into_iter().map(|t| (t, None)).collect();
    for (b, x) in bot.bursts.iter().enumerate() {
        let from = span_ms - x.minutes_before_now * 60_000;
        for k in 0..x.orders as i64 {
            slots.push((from + k * x.interval_secs * 1000, Some(b)));
        }
    }
    slots.sort_by_key(|s| (s.0, s.1.is_some()));
    let log_end = bot
        .log_ends_minutes_before_now
        .map(|m| now - Duration::minutes(m));
    let restart_at = bot.restart.as_ref().map(|r| {
        (
            now - Duration::minutes(r.minutes_before_now),
            r.identifier.as_str(),
        )
    });
    let mut ids = BotIds::new(&bot.identifier, restart_at);
    let mut log = Vec::new();
    for (off, burst) in slots {
        let at = start + Duration::milliseconds(off);
        let burst = burst.map(|b| &bot.bursts[b]);
        let (market, ord_type) = match burst {
            None => (
                market_of(mk, &bot.markets[g.rng.gen_range(0..bot.markets.len())]),
                OrderKind::from_bot_log_name(
                    &bot.ord_types[g.rng.gen_range(0..bot.ord_types.len())],
                )
                .unwrap_or(OrderKind::Limit),
            ),
            Some(b) => (
                market_of(mk, &b.market),
                OrderKind::from_bot_log_name(&b.ord_type).unwrap_or(OrderKind::Limit),
            ),
        };
        let size = mk
            .rules
            .round_quote(g.dec_between(bot.order_quote[0], bot.order_quote[1]));
        let r = mk.ref_price(&market.symbol, at);
        let side = match (ord_type, burst) {
            (OrderKind::MarketBuyQuote, _) => Side::Bid,
            (OrderKind::MarketSellBase, _) => Side::Ask,
            (_, Some(b)) if b.side == "sell" => Side::Ask,
            (_, Some(_)) => Side::Bid,
            _ => {
                if g.rng.gen_bool(0.5) {
                    Side::Bid
                } else {
                    Side::Ask
                }
            }
        };
        let ident = Some(ids.next(at));
        let (uuid, price, volume) = match ord_type {
            OrderKind::MarketBuyQuote => {
                let px = mk.round_price(r * Decimal::new(10005, 4));
                let v = mk.round_vol(size / px);
                let u = filled_order(
                    g,
                    w,
                    &bot.account,
                    &market,
                    side,
                    ord_type,
                    Some(size),
                    &[(px, v)],
                    at,
                    ident.clone(),
                    sc.fee,
                );
                (u, Some(size), None)
            }
            OrderKind::MarketSellBase => {
                let px = mk.round_price(r * Decimal::new(9995, 4));
                let v = mk.round_vol(size / r);
                let u = filled_order(
                    g,
                    w,
                    &bot.account,
                    &market,
                    side,
                    ord_type,
                    None,
                    &[(px, v)],
                    at,
                    ident.clone(),
                    sc.fee,
                );
                (u, None, Some(v))
            }
            _ => {
                let d = g.pct(0.004);
                let px = mk.round_price(match side {
                    Side::Bid => r * (Decimal::ONE - d),
                    Side::Ask => r * (Decimal::ONE + d),
                });
                let v = mk.round_vol(size / px);
                let u = if g.rng.gen_bool(bot.cancel_rate.clamp(0.0, 1.0)) {
                    let u = filled_order(
                        g,
                        w,
                        &bot.account,
                        &market,
                        side,
                        ord_type,
                        Some(px),
                        &[],
                        at,
                        ident.clone(),
                        sc.fee,
                    );
                    let last = w.orders.len() - 1;
                    w.set_state(last, OrderState::Cancelled);
                    let o = &mut w.orders[last];
                    o.volume = Some(v);
                    o.remaining_volume = v;
                    u
                } else {
                    filled_order(
                        g,
                        w,
                        &bot.account,
                        &market,
                        side,
                        ord_type,
                        Some(px),
                        &[(px, v)],
                        at,
                        ident.clone(),
                        sc.fee,
                    )
                };
                (u, Some(px), Some(v))
            }
        };
        let latency = g.rng.gen_range(5..250);
        if log_end.map_or(true, |e| at <= e) {
            log.push(BotLogRow {
                order_id: uuid,
                identifier: ident,
                market: market.symbol.clone(),
                side,
                kind: ord_type,
                created_at: at - Duration::milliseconds(latency),
                price,
                volume,
            });
        }
    }
    for _ in 0..bot.open_orders {
        let market = market_of(mk, &bot.markets[g.rng.gen_range(0..bot.markets.len())]);
        let at = now - Duration::seconds(g.rng.gen_range(60..3600));
        let r = mk.ref_price(&market.symbol, now);
        let side = if g.rng.gen_bool(0.5) {
            Side::Bid
        } else {
            Side::Ask
        };
        let px = mk.round_price(match side {
            Side::Bid => r * Decimal::new(97, 2),
            Side::Ask => r * Decimal::new(103, 2),
        });
        let size = mk
            .rules
            .round_quote(g.dec_between(bot.order_quote[0], bot.order_quote[1]));
        let v = mk.round_vol(size / px);
        let ident = Some(ids.next(at));
        if let Some(u) = open_order(
            g,
            w,
            &bot.account,
            &market,
            side,
            px,
            v,
            at,
            ident.clone(),
            sc.fee,
        ) {
            if log_end.map_or(true, |e| at <= e) {
                log.push(BotLogRow {
                    order_id: u,
                    identifier: ident,
                    market: market.symbol.clone(),
                    side,
                    kind: OrderKind::Limit,
                    created_at: at - Duration::milliseconds(40),
                    price: Some(px),
                    volume: Some(v),
                });
            }
        }
    }
    g.bot_counter = ids.n;
    log
}

/// The bot's identifiers: `{n}` counts its orders; after a restart, the new pattern counts
/// again from 1.
struct BotIds<'a> {
    pattern: &'a str,
    restart: Option<(DateTime<Utc>, &'a str)>,
    restarted: bool,
    n: u64,
}

impl<'a> BotIds<'a> {
    fn new(pattern: &'a str, restart: Option<(DateTime<Utc>, &'a str)>) -> Self {
        BotIds {
            pattern,
            restart,
            restarted: false,
            n: 0,
        }
    }

    /// The identifier of the bot's next order, placed at `at` (orders come in time order,
    /// except the resting ones placed last, which are all after a restart in the past).
    fn next(&mut self, at: DateTime<Utc>) -> String {
        if let Some((t, p)) = self.restart {
            if at >= t && !self.restarted {
                self.restarted = true;
                self.pattern = p;
                self.n = 0;
            }
        }
        self.n += 1;
        self.pattern.replace("{n}", &self.n.to_string())
    }
}

fn manual_history(
    sc: &Scenario,
    m: &crate::mock::venue::scenario::ManualSpec,
    mk: &Markets,
    now: DateTime<Utc>,
    w: &mut World,
    g: &mut Gen,
) {
    let days = sc.bot.as_ref().map(|b| b.days).unwrap_or(30) as i64;
    for i in 0..m.orders {
        let at = if i < m.recent {
            now - Duration::minutes(g.rng.gen_range(90..1440))
        } else {
            now - Duration::minutes(g.rng.gen_range(1440..days * 1440))
        };
        let market = market_of(mk, &m.markets[g.rng.gen_range(0..m.markets.len())]);
        let size = mk
            .rules
            .round_quote(g.dec_between(m.order_quote[0], m.order_quote[1]))
            .max(mk.rules.min_notional * Decimal::TWO);
        let r = mk.ref_price(&market.symbol, at);
        let u = if g.rng.gen_bool(0.5) {
            let px = mk.round_price(r * Decimal::new(1002, 3));
            let v = mk.round_vol(size / px);
            filled_order(
                g,
                w,
                &m.account,
                &market,
                Side::Bid,
                OrderKind::MarketBuyQuote,
                Some(size),
                &[(px, v)],
                at,
                None,
                sc.fee,
            )
        } else {
            let px = mk.round_price(r);
            let v = mk.round_vol(size / px);
            let side = if g.rng.gen_bool(0.5) {
                Side::Bid
            } else {
                Side::Ask
            };
            filled_order(
                g,
                w,
                &m.account,
                &market,
                side,
                OrderKind::Limit,
                Some(px),
                &[(px, v)],
                at,
                None,
                sc.fee,
            )
        };
        w.truth.user_manual_order_uuids.push(u);
    }
}

/// The identifier of the attacker's next order: the bot's pattern, continuing its counter
/// (none when the attacker sends none).
fn attack_id(a: &AttackSpec, g: &mut Gen) -> Option<String> {
    let p = a.identifier.as_ref()?;
    g.bot_counter += 1;
    Some(p.replace("{n}", &g.bot_counter.to_string()))
}

/// One limit bid of the victim's at `limit` (rounded) for `v`: filled against the liquidity
/// provider's best ask with probability `fair_share` (near the fair price), else against the
/// attacker's own ask a little below the bid. Returns the quote spent, or `None` when the
/// budget does not cover it.
#[allow(clippy::too_many_arguments)]
fn high_bid(
    sc: &Scenario,
    a: &AttackSpec,
    mk: &Markets,
    w: &mut World,
    g: &mut Gen,
    (victim, attacker): (&str, &str),
    market: &Arc<Market>,
    (limit, v, fair_share): (Decimal, Decimal, f64),
    at: DateTime<Utc>,
    budget: Decimal,
) -> Option<Decimal> {
    let fee = sc.fee;
    let quote = market.quote.clone();
    let limit = mk.round_price(limit);
    let r = mk.ref_price(&market.symbol, at);
    let fair = g.rng.gen_bool(fair_share.clamp(0.0, 1.0));
    let px = if fair {
        mk.lp_levels(&market.symbol, Side::Ask, at)
            .first()
            .map_or(r, |l| l.0)
    } else {
        let k = Decimal::new(90, 2) + g.pct(0.08);
        mk.round_price(limit * k)
    };
    let spent = px * v;
    if v <= Decimal::ZERO || spent * (Decimal::ONE + fee) > budget {
        return None;
    }
    if !fair {
        g.mute_tape = true;
        filled_order(
            g,
            w,
            attacker,
            market,
            Side::Ask,
            OrderKind::Limit,
            Some(px),
            &[(px, v)],
            at - Duration::seconds(20),
            None,
            fee,
        );
        g.mute_tape = false;
        let aa = w.accounts.entry(attacker.to_string()).or_default();
        let ab = aa.bal(&market.base);
        ab.balance = (ab.balance - v).max(Decimal::ZERO);
        aa.bal(&quote).balance += spent - spent * fee;
    }
    let ident = attack_id(a, g);
    let u = filled_order(
        g,
        w,
        victim,
        market,
        Side::Bid,
        OrderKind::Limit,
        Some(limit),
        &[(px, v)],
        at,
        ident,
        fee,
    );
    w.record_attacker_order(u, at);
    w.add_loss((px - r) * v + spent * fee);
    let va = w.accounts.get_mut(victim).expect("victim exists");
    va.bal(&quote).balance -= spent + spent * fee;
    va.bal(&market.base).balance += v;
    Some(spent + spent * fee)
}

/// The user's own trades and withdrawals around the attack (`t0`: its start, or "now"
/// without one), in the ground truth as theirs.
fn manual_incident(
    sc: &Scenario,
    m: &crate::mock::venue::scenario::ManualSpec,
    mk: &Markets,
    t0: DateTime<Utc>,
    w: &mut World,
    g: &mut Gen,
) {
    let quote = sc.quote.as_str();
    let fee = sc.fee;
    for x in &m.incident {
        let ms = (x.minutes_after_attack * Decimal::from(60_000))
            .round()
            .to_i64()
            .unwrap_or(0);
        let at = t0 + Duration::milliseconds(ms);
        let market = market_of(mk, &x.market);
        let r = mk.ref_price(&market.symbol, at);
        let side = if x.side == "sell" {
            Side::Ask
        } else {
            Side::Bid
        };
        let price = mk.round_price(r * (Decimal::ONE + x.price_pct / Decimal::ONE_HUNDRED));
        let (kind, amount, px, v) = match (x.ord_type.as_str(), side) {
            ("market", Side::Bid) => {
                let px = mk.round_price(r * Decimal::new(10005, 4));
                (
                    OrderKind::MarketBuyQuote,
                    Some(x.quote),
                    px,
                    mk.round_vol(x.quote / px),
                )
            }
            ("market", Side::Ask) => {
                let px = mk.round_price(r * Decimal::new(9995, 4));
                (
                    OrderKind::MarketSellBase,
                    None,
                    px,
                    mk.round_vol(x.quote / r),
                )
            }
            _ => (
                OrderKind::Limit,
                Some(price),
                price,
                mk.round_vol(x.quote / price),
            ),
        };
        let u = if x.fill {
            let u = filled_order(
                g,
                w,
                &m.account,
                &market,
                side,
                kind,
                amount,
                &[(px, v)],
                at,
                None,
                fee,
            );
            let acct = w.accounts.entry(m.account.clone()).or_default();
            let funds = px * v;
            match side {
                Side::Bid => {
                    acct.bal(quote).balance -= funds + funds * fee;
                    acct.bal(&market.base).balance += v;
                }
                Side::Ask => {
                    let b = acct.bal(&market.base);
                    b.balance = (b.balance - v).max(Decimal::ZERO);
                    acct.bal(quote).balance += funds - funds * fee;
                }
            }
            Some(u)
        } else {
            open_order(g, w, &m.account, &market, side, price, v, at, None, fee)
        };
        if let Some(u) = u {
            w.truth.user_manual_order_uuids.push(u);
        }
    }
    for x in &m.withdrawals {
        let at = t0 + Duration::minutes(x.minutes_after_attack);
        let net = w
            .addresses
            .iter()
            .find(|a| a.address == x.address)
            .map(|a| a.net_type.clone())
            .unwrap_or_else(|| x.currency.clone());
        let uuid = g.uuid();
        let txid = hex::encode(g.rng.gen::<[u8; 32]>());
        w.withdrawals.push(Withdrawal {
            uuid,
            account: m.account.clone(),
            currency: x.currency.clone(),
            net_type: net,
            address: x.address.clone(),
            txid: Some(txid),
            state: WithdrawalState::Done,
            created_at: at,
            done_at: Some(at + Duration::minutes(15)),
            amount: x.amount,
            fee: WITHDRAWAL_FEE,
        });
        w.truth.user_withdrawal_uuids.push(uuid);
        let b = w
            .accounts
            .entry(m.account.clone())
            .or_default()
            .bal(&x.currency);
        b.balance = (b.balance - x.amount - WITHDRAWAL_FEE).max(Decimal::ZERO);
    }
}

/// The attack's start: `start_minutes_before_now` before now, moved back to 03:00 of the same
/// night in the victim's time zone when `night` is set and that night is at most 6 hours
/// earlier.
pub fn attack_start(sc: &Scenario, a: &AttackSpec, now: DateTime<Utc>) -> DateTime<Utc> {
    let cand = now - Duration::minutes(a.start_minutes_before_now);
    if !a.night {
        return cand;
    }
    let zone = sc.local_offset();
    let local = cand.with_timezone(&zone);
    let h = local.hour();
    if (1..6).contains(&h) {
        return cand;
    }
    // Latest local 03:00 before cand.
    let three = local
        .date_naive()
        .and_hms_opt(3, 0, 0)
        .and_then(|n| n.and_local_timezone(zone).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(cand);
    let three = if three > cand {
        three - Duration::days(1)
    } else {
        three
    };
    if cand - three <= Duration::hours(6) {
        three
    } else {
        cand
    }
}

/// Without an attack the ground truth still names the key a drill treats as leaked: the bot's
/// key when the scenario has a bot, else a key labelled `bot`, else the first key that can
/// trade. A drill on such a scenario measures containment and false positives (nothing
/// should be flagged).
fn name_leaked_key_without_attack(sc: &Scenario, w: &mut World) {
    let by_label = |label: &str| {
        let mut ks: Vec<&KeyRec> = w.keys.values().filter(|k| k.label == label).collect();
        ks.sort_by(|a, b| a.access_key.cmp(&b.access_key));
        ks.first()
            .map(|k| (k.access_key.clone(), k.account.clone()))
    };
    let chosen = sc
        .bot
        .as_ref()
        .and_then(|b| by_label(&b.key))
        .or_else(|| by_label("bot"))
        .or_else(|| {
            sc.keys.iter().find_map(|spec| {
                w.keys
                    .values()
                    .filter(|k| {
                        k.label == spec.label
                            && k.account == spec.account
                            && k.can(Permission::Trade)
                    })
                    .map(|k| (k.access_key.clone(), k.account.clone()))
                    .next()
            })
        });
    if let Some((key, account)) = chosen {
        w.truth.leaked_access_key = key;
        w.truth.victim_account = account;
    }
}

fn attack(
    sc: &Scenario,
    a: &AttackSpec,
    mk: &Markets,
    now: DateTime<Utc>,
    w: &mut World,
    g: &mut Gen,
) {
    let Some(key) = w.keys.values().find(|k| k.label == a.key).cloned() else {
        return;
    };
    let victim = key.account.clone();
    let attacker = a.attacker_account.clone();
    let fee = sc.fee;
    let quote = sc.quote.as_str();
    let min = mk.rules.min_notional;
    let t0 = attack_start(sc, a, now);
    w.truth.victim_account = victim.clone();
    w.truth.leaked_access_key = key.access_key.clone();
    w.truth.attack_started_at = Some(clock::ts(t0));
    w.add_loss(Decimal::ZERO);
    let mut t = t0;
    // 1. Liquidation: market sells walking the LP's bids (split into orders of the bot's
    // sizes when the attacker copies them).
    for cur in &a.liquidate {
        let Some(market) = mk.by_base(cur).map(|m| m.market.clone()) else {
            continue;
        };
        let have = w
            .accounts
            .get_mut(&victim)
            .map(|x| x.bal(cur).balance)
            .unwrap_or_default();
        let total = mk.round_vol(have * a.liquidate_fraction);
        if total <= Decimal::ZERO {
            continue;
        }
        let r = mk.ref_price(&market.symbol, t);
        let mut chunks: Vec<Decimal> = Vec::new();
        match &a.order_quote {
            Some(q) => {
                let mut rest = total;
                while rest > Decimal::ZERO {
                    let size = g.dec_between(q[0], q[1]);
                    let v = mk.round_vol(size / r).min(rest);
                    if chunks.len() == 19 || v <= Decimal::ZERO {
                        chunks.push(rest);
                        break;
                    }
                    chunks.push(v);
                    rest -= v;
                }
            }
            None => chunks.push(total),
        }
        for (k, vol) in chunks.into_iter().enumerate() {
            if k > 0 {
                t += Duration::seconds(g.rng.gen_range(4..12));
            }
            let mut left = vol;
            let mut fills = Vec::new();
            for (p, v) in mk.lp_levels(&market.symbol, Side::Bid, t) {
                let q = v.min(left);
                fills.push((p, q));
                left -= q;
                if left <= Decimal::ZERO {
                    break;
                }
            }
            let sold: Decimal = fills.iter().map(|f| f.1).sum();
            let proceeds: Decimal = fills.iter().map(|f| f.0 * f.1).sum();
            let ident = attack_id(a, g);
            let u = filled_order(
                g,
                w,
                &victim,
                &market,
                Side::Ask,
                OrderKind::MarketSellBase,
                None,
                &fills,
                t,
                ident,
                fee,
            );
            let last = w.orders.len() - 1;
            if sold < vol {
                w.set_state(last, OrderState::Cancelled);
            }
            let o = &mut w.orders[last];
            o.volume = Some(vol);
            o.remaining_volume = vol - sold;
            w.record_attacker_order(u, t);
            let acct = w.accounts.get_mut(&victim).expect("victim exists");
            acct.bal(cur).balance -= sold;
            acct.bal(quote).balance += proceeds - proceeds * fee;
            w.add_loss(r * sold - proceeds + proceeds * fee);
        }
        t += Duration::seconds(g.rng.gen_range(20..60));
    }
    // 2. Pump: the attacker's ask ladder, lifted by the victim's market buys.
    if let Some(p) = &a.pump {
        let market = market_of(mk, &p.market);
        let base = market.base.clone();
        let r0 = mk.ref_price(&market.symbol, t);
        let funds = w
            .accounts
            .get_mut(&victim)
            .map(|x| x.bal(quote).balance)
            .unwrap_or_default();
        let budget = mk
            .rules
            .round_quote(funds * Decimal::new(95, 2) / (Decimal::ONE + fee));
        let per = mk
            .rules
            .round_quote(budget / Decimal::from(p.orders.max(1)));
        if per >= min {
            let ladder_at = t - Duration::minutes(3);
            let mut asks = Vec::new();
            for i in 0..p.orders {
                let k = Decimal::from(i + 1) / Decimal::from(p.orders);
                let px = mk.round_price(r0 * (Decimal::ONE + (p.multiple - Decimal::ONE) * k));
                let size = match &a.order_quote {
                    Some(q) => mk.rules.round_quote(g.dec_between(q[0], q[1])),
                    None => per,
                };
                let v = mk.round_vol(size / px);
                asks.push((px, v));
            }
            let limit = p.ord_type == "limit";
            for (i, (px, v)) in asks.iter().enumerate() {
                let at = t + Duration::seconds(p.interval_secs * i as i64);
                let spent = *px * *v;
                let have = w
                    .accounts
                    .get_mut(&victim)
                    .map(|x| x.bal(quote).balance)
                    .unwrap_or_default();
                if spent * (Decimal::ONE + fee) > have {
                    break;
                }
                g.mute_tape = true;
                filled_order(
                    g,
                    w,
                    &attacker,
                    &market,
                    Side::Ask,
                    OrderKind::Limit,
                    Some(*px),
                    &[(*px, *v)],
                    ladder_at,
                    None,
                    fee,
                );
                g.mute_tape = false;
                // The fill happens when the victim buys, not when the ask was placed.
                if let Some(o) = w.orders.last_mut() {
                    for f in &mut o.trades {
                        f.created_at = at + Duration::milliseconds(120);
                    }
                }
                let ident = attack_id(a, g);
                let u = filled_order(
                    g,
                    w,
                    &victim,
                    &market,
                    Side::Bid,
                    if limit {
                        OrderKind::Limit
                    } else {
                        OrderKind::MarketBuyQuote
                    },
                    Some(if limit { *px } else { spent }),
                    &[(*px, *v)],
                    at,
                    ident,
                    fee,
                );
                w.record_attacker_order(u, at);
                let rr = mk.ref_price(&market.symbol, at);
                w.add_loss((*px - rr) * *v + spent * fee);
                let va = w.accounts.get_mut(&victim).expect("victim exists");
                va.bal(quote).balance -= spent + spent * fee;
                va.bal(&base).balance += *v;
                let aa = w.accounts.entry(attacker.clone()).or_default();
                let ab = aa.bal(&base);
                ab.balance = (ab.balance - *v).max(Decimal::ZERO);
                aa.bal(quote).balance += spent - spent * fee;
            }
            t += Duration::seconds(p.interval_secs * p.orders as i64);
        }
    }
    // 2b. Limit bids far above the market, spending the idle quote.
    if let Some(b) = &a.bids {
        let market = market_of(mk, &b.market);
        let funds = w
            .accounts
            .get_mut(&victim)
            .map(|x| x.bal(quote).balance)
            .unwrap_or_default();
        let mut budget = funds * b.spend_fraction;
        for k in 0..b.orders {
            let at = t + Duration::seconds(b.interval_secs * k as i64);
            let r = mk.ref_price(&market.symbol, at);
            let multiple = g.dec_between(b.multiple[0], b.multiple[1]);
            let size = match &a.order_quote {
                Some(q) => mk.rules.round_quote(g.dec_between(q[0], q[1])),
                None => mk
                    .rules
                    .round_quote(budget / Decimal::from((b.orders - k).max(1))),
            };
            let v = mk.round_vol(size / r);
            let spent = high_bid(
                sc,
                a,
                mk,
                w,
                g,
                (&victim, &attacker),
                &market,
                (r * multiple, v, b.fair_fill_share),
                at,
                budget,
            );
            match spent {
                Some(x) => budget -= x,
                None => break,
            }
        }
        t += Duration::seconds(b.interval_secs * b.orders as i64);
    }
    // 2c. The bot's resting bids cancelled and re-posted far above the market.
    if let Some(rp) = &a.repost {
        let mut resting: Vec<usize> = w
            .orders
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                o.account == victim
                    && o.state == OrderState::Open
                    && o.side == Side::Bid
                    && o.identifier.is_some()
                    && o.created_at < t
            })
            .map(|(i, _)| i)
            .collect();
        resting.sort_by_key(|&i| (w.orders[i].created_at, i));
        resting.truncate(rp.orders as usize);
        for (k, idx) in resting.into_iter().enumerate() {
            let at = t + Duration::seconds(rp.interval_secs * k as i64);
            let (market, v, locked) = {
                let o = &w.orders[idx];
                (o.market.clone(), o.remaining_volume, o.locked)
            };
            w.set_state(idx, OrderState::Cancelled);
            w.orders[idx].locked = Decimal::ZERO;
            let va = w
                .accounts
                .get_mut(&victim)
                .expect("victim exists")
                .bal(quote);
            va.locked -= locked;
            va.balance += locked;
            let r = mk.ref_price(&market.symbol, at);
            let budget = w
                .accounts
                .get_mut(&victim)
                .map(|x| x.bal(quote).balance)
                .unwrap_or_default();
            high_bid(
                sc,
                a,
                mk,
                w,
                g,
                (&victim, &attacker),
                &market,
                (r * rp.multiple, v, rp.fair_fill_share),
                at,
                budget,
            );
        }
        t += Duration::seconds(rp.interval_secs * rp.orders as i64);
    }
    // 3. Contra: buy high from the attacker, sell low to the attacker.
    if let Some(c) = &a.contra {
        let market = market_of(mk, &c.market);
        let half = c.loss_pct / Decimal::from(200);
        for _ in 0..c.round_trips {
            let r = mk.ref_price(&market.symbol, t);
            let hi = mk.round_price(r * (Decimal::ONE + half));
            let lo = mk.round_price(r * (Decimal::ONE - half));
            let v = mk.round_vol(c.size_quote / r);
            let funds = w
                .accounts
                .get_mut(&victim)
                .map(|x| x.bal(quote).balance)
                .unwrap_or_default();
            if funds < hi * v * (Decimal::ONE + fee) {
                break;
            }
            g.mute_tape = true;
            filled_order(
                g,
                w,
                &attacker,
                &market,
                Side::Ask,
                OrderKind::Limit,
                Some(hi),
                &[(hi, v)],
                t - Duration::seconds(5),
                None,
                fee,
            );
            g.mute_tape = false;
            let ub = filled_order(
                g,
                w,
                &victim,
                &market,
                Side::Bid,
                OrderKind::Limit,
                Some(hi),
                &[(hi, v)],
                t,
                None,
                fee,
            );
            w.record_attacker_order(ub, t);
            let t2 = t + Duration::seconds(c.interval_secs / 2);
            g.mute_tape = true;
            filled_order(
                g,
                w,
                &attacker,
                &market,
                Side::Bid,
                OrderKind::Limit,
                Some(lo),
                &[(lo, v)],
                t2 - Duration::seconds(5),
                None,
                fee,
            );
            g.mute_tape = false;
            let ua = filled_order(
                g,
                w,
                &victim,
                &market,
                Side::Ask,
                OrderKind::Limit,
                Some(lo),
                &[(lo, v)],
                t2,
                None,
                fee,
            );
            w.record_attacker_order(ua, t2);
            let r2 = mk.ref_price(&market.symbol, t2);
            w.add_loss((hi - r) * v + (r2 - lo) * v + (hi + lo) * v * fee);
            let va = w.accounts.get_mut(&victim).expect("victim exists");
            va.bal(quote).balance -= hi * v * (Decimal::ONE + fee);
            va.bal(quote).balance += lo * v * (Decimal::ONE - fee);
            let aa = w.accounts.entry(attacker.clone()).or_default();
            aa.bal(quote).balance += (hi - lo) * v;
            t += Duration::seconds(c.interval_secs);
        }
    }
    // 4. Withdrawals to the attacker's freshly allowlisted address.
    for wd in &a.withdrawals {
        let have = w
            .accounts
            .get_mut(&victim)
            .map(|x| x.bal(&wd.currency).balance)
            .unwrap_or_default();
        let wfee = WITHDRAWAL_FEE;
        let amount = wd.amount.min(have - wfee);
        if amount <= Decimal::ZERO {
            continue;
        }
        let net = w
            .addresses
            .iter()
            .find(|x| x.address == wd.address)
            .map(|x| x.net_type.clone())
            .unwrap_or_else(|| wd.currency.clone());
        let uuid = g.uuid();
        let txid = hex::encode(g.rng.gen::<[u8; 32]>());
        w.withdrawals.push(Withdrawal {
            uuid,
            account: victim.clone(),
            currency: wd.currency.clone(),
            net_type: net,
            address: wd.address.clone(),
            txid: Some(txid),
            state: WithdrawalState::Done,
            created_at: t,
            done_at: Some(t + Duration::minutes(12)),
            amount,
            fee: wfee,
        });
        w.truth.attacker_withdrawal_uuids.push(uuid);
        let r = mk
            .by_base(&wd.currency)
            .map(|m| mk.ref_price(&m.market.symbol, t))
            .unwrap_or_default();
        w.add_loss(r * (amount + wfee));
        w.accounts
            .get_mut(&victim)
            .expect("victim exists")
            .bal(&wd.currency)
            .balance -= amount + wfee;
        t += Duration::minutes(2);
    }
    // 5. Orders the attacker leaves open.
    let om = a
        .pump
        .as_ref()
        .map(|p| market_of(mk, &p.market))
        .or_else(|| a.contra.as_ref().map(|c| market_of(mk, &c.market)))
        .unwrap_or_else(|| mk.list[0].market.clone());
    for i in 0..a.open_orders {
        let r = mk.ref_price(&om.symbol, now);
        let px = mk.round_price(r * (Decimal::new(95, 2) - Decimal::new(i as i64, 2)));
        // Ten times the minimum order value each.
        let v = mk.round_vol(min * Decimal::TEN / px);
        let at = t + Duration::seconds(30 * (i as i64 + 1));
        if let Some(u) = open_order(g, w, &victim, &om, Side::Bid, px, v, at.min(now), None, fee) {
            w.record_attacker_order(u, at.min(now));
        }
    }
    // 6. One-cancels-the-other sells left open, on the first market whose base the victim
    // holds: the limit leg rests in the book, the stop leg beside it locks nothing.
    let held = mk.list.iter().map(|m| m.market.clone()).find(|m| {
        w.accounts
            .get(&victim)
            .and_then(|a| a.balances.get(&m.base))
            .is_some_and(|b| b.balance > Decimal::ZERO)
    });
    if let Some(hm) = held.filter(|_| a.open_oco > 0) {
        for i in 0..a.open_oco {
            let r = mk.ref_price(&hm.symbol, now);
            let above = mk.round_price(r * Decimal::new(105, 2));
            let stop = mk.round_price(r * Decimal::new(95, 2));
            let limit = mk.round_price(r * Decimal::new(94, 2));
            let v = mk.round_vol(min * Decimal::TEN / limit);
            let at = (t + Duration::seconds(20 * (i as i64 + 1))).min(now);
            let Some(book) = open_order(g, w, &victim, &hm, Side::Ask, above, v, at, None, fee)
            else {
                break;
            };
            let Some(held_leg) = open_order(g, w, &victim, &hm, Side::Ask, limit, v, at, None, fee)
            else {
                break;
            };
            // The stop leg gives back what it locked: the list locks the quantity once.
            let pos = w.position(&held_leg).expect("just placed");
            let locked = std::mem::take(&mut w.orders[pos].locked);
            w.orders[pos].reserved_fee = Decimal::ZERO;
            w.orders[pos].remaining_fee = Decimal::ZERO;
            let b = w
                .accounts
                .get_mut(&victim)
                .expect("victim exists")
                .bal(&hm.base);
            b.locked -= locked;
            b.balance += locked;
            let book_pos = w.position(&book).expect("just placed");
            w.orders[book_pos].tif = Some(Tif::PostOnly);
            let legs = vec![book_pos, pos];
            w.push_list(OrderList {
                account: victim.clone(),
                market: hm.clone(),
                legs,
                stops: vec![None, Some(stop)],
                identifier: g.uuid().simple().to_string()[..22].to_string(),
                created_at: at,
            });
            w.record_attacker_order(book, at);
            w.record_attacker_order(held_leg, at);
        }
    }
}
