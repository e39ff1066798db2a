//! Generated past: the scenario's world set-up, the bot's history (and its own log), the
//! attack (which also writes the ground truth) and the user's manual trades.
//!
//! History is written straight into the world as finished orders with fills priced from the
//! reference path (or against the attacker's counter-orders), not replayed through the engine:
//! that keeps generation fast and exactly reproducible from the seed. Current balances are the
//! scenario's balances with the attack's effects applied (the bot's past trades are taken as
//! already reflected in them). Open orders (the bot's and the attacker's) are real resting
//! orders with locked funds.

use chrono::{DateTime, Duration, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::mock::matching::{round_price, round_vol, Markets, Rest};
use crate::mock::scenario::Scenario;
use crate::mock::state::{
    Account, CoinAddress, Deposit, Fill, KeyRec, OrdState, OrdType, Order, Side, Tick, Withdrawal,
    World,
};
use crate::mock::wire::kst_offset;

/// One row of the generic bot-log CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotLogRow {
    pub order_id: Uuid,
    pub identifier: Option<String>,
    pub market: String,
    pub side: Side,
    pub ord_type: OrdType,
    pub created_at: DateTime<Utc>,
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
            r.ord_type.as_str().to_string(),
            crate::engine::journal::ts(r.created_at),
            r.price.map(crate::mock::wire::dec).unwrap_or_default(),
            r.volume.map(crate::mock::wire::dec).unwrap_or_default(),
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
}

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            mute_tape: false,
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

/// The scenario's "now" rounded down to the minute, unless fixed.
pub fn scenario_now(sc: &Scenario, explicit: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let t = explicit.or(sc.now).unwrap_or_else(Utc::now);
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// Sets up accounts, keys and addresses, then generates history. Returns the bot log.
pub fn build(sc: &Scenario, mk: &Markets, now: DateTime<Utc>, w: &mut World) -> Vec<BotLogRow> {
    let mut g = Gen::new(sc.seed);
    for a in &sc.accounts {
        let mut acct = Account::default();
        for (cur, amt) in &a.balances {
            acct.bal(cur).balance = *amt;
            if cur != "KRW" {
                let m = format!("KRW-{cur}");
                acct.bal(cur).avg_buy_price = mk.ref_price(&m, now - Duration::days(20));
            }
        }
        w.accounts.insert(a.name.clone(), acct);
        // The account was funded by a KRW deposit long ago.
        if let Some(krw) = a.balances.get("KRW") {
            let uuid = g.uuid();
            let txid = g.token(24);
            w.deposits.push(Deposit {
                uuid,
                account: a.name.clone(),
                currency: "KRW".into(),
                net_type: "KRW".into(),
                txid,
                created_at: now - Duration::days(45),
                amount: *krw,
            });
        }
    }
    for k in &sc.keys {
        let access_key = k.access_key.clone().unwrap_or_else(|| g.token(40));
        let secret_key = k.secret_key.clone().unwrap_or_else(|| g.token(40));
        w.keys.insert(
            access_key.clone(),
            KeyRec {
                account: k.account.clone(),
                label: k.label.clone(),
                access_key,
                secret_key,
                scopes: k.scopes.clone(),
                allowed_ips: k
                    .allowed_ips
                    .iter()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
                expire_at: now + Duration::days(k.expires_in_days),
                revoked_at: None,
            },
        );
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
                state: "DONE",
                created_at: at,
                done_at: Some(at + Duration::minutes(25)),
                amount: Decimal::new(1, 2),
                fee: Decimal::new(5, 4),
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
    if w.truth.leaked_access_key.is_empty() {
        name_leaked_key_without_attack(sc, w);
    }
    w.orders.sort_by_key(|o| o.created_at);
    w.by_uuid = w
        .orders
        .iter()
        .enumerate()
        .map(|(i, o)| (o.uuid, i))
        .collect();
    // Rebuild the books (indices changed with the sort).
    w.books.clear();
    let waiting: Vec<(usize, Side, Decimal, String)> = w
        .orders
        .iter()
        .enumerate()
        .filter(|(_, o)| o.state == OrdState::Wait)
        .map(|(i, o)| (i, o.side, o.price.unwrap_or_default(), o.market.clone()))
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

#[allow(clippy::too_many_arguments)]
fn filled_order(
    g: &mut Gen,
    w: &mut World,
    account: &str,
    market: &str,
    side: Side,
    ord_type: OrdType,
    price_field: Option<Decimal>,
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
            market: market.to_string(),
            price: *p,
            volume: *v,
            funds,
            trend: if side == Side::Bid { "up" } else { "down" },
            side,
            created_at: at + Duration::milliseconds(120 + 35 * i as i64),
        });
        if g.mute_tape {
            continue;
        }
        let seq = w.next_seq();
        w.tape.entry(market.to_string()).or_default().insert(
            (
                (at + Duration::milliseconds(120 + 35 * i as i64)).timestamp_millis(),
                seq,
            ),
            Tick {
                price: *p,
                volume: *v,
                ask_bid: if side == Side::Bid { "BID" } else { "ASK" },
                seq,
            },
        );
    }
    let paid_fee = ef * fee;
    let volume = match ord_type {
        OrdType::Price => None,
        _ => Some(ev),
    };
    if let Some(id) = &identifier {
        w.identifiers.insert((account.to_string(), id.clone()));
    }
    w.orders.push(Order {
        uuid,
        account: account.into(),
        market: market.into(),
        side,
        ord_type,
        price: price_field,
        volume,
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
        state: OrdState::Done,
        created_at: at,
        identifier,
        time_in_force: None,
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
    market: &str,
    side: Side,
    price: Decimal,
    volume: Decimal,
    at: DateTime<Utc>,
    identifier: Option<String>,
    fee: Decimal,
) -> Option<Uuid> {
    let (q, b) = market.split_once('-')?;
    let (cur, amt, rfee) = match side {
        Side::Bid => (
            q,
            price * volume * (Decimal::ONE + fee),
            price * volume * fee,
        ),
        Side::Ask => (b, volume, Decimal::ZERO),
    };
    let bal = w.accounts.get_mut(account)?.bal(cur);
    if bal.balance < amt {
        return None;
    }
    bal.balance -= amt;
    bal.locked += amt;
    let uuid = g.uuid();
    if let Some(id) = &identifier {
        w.identifiers.insert((account.to_string(), id.clone()));
    }
    w.orders.push(Order {
        uuid,
        account: account.into(),
        market: market.into(),
        side,
        ord_type: OrdType::Limit,
        price: Some(price),
        volume: Some(volume),
        remaining_volume: volume,
        remaining_funds: Decimal::ZERO,
        reserved_fee: rfee,
        remaining_fee: rfee,
        paid_fee: Decimal::ZERO,
        locked: amt,
        executed_volume: Decimal::ZERO,
        executed_funds: Decimal::ZERO,
        state: OrdState::Wait,
        created_at: at,
        identifier,
        time_in_force: None,
        trades: Vec::new(),
    });
    Some(uuid)
}

fn bot_history(
    sc: &Scenario,
    bot: &crate::mock::scenario::BotSpec,
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
    let mut log = Vec::new();
    let mut n = 0u64;
    for off in times {
        n += 1;
        let at = start + Duration::milliseconds(off);
        let market = bot.markets[g.rng.gen_range(0..bot.markets.len())].clone();
        let ord_type = OrdType::parse(&bot.ord_types[g.rng.gen_range(0..bot.ord_types.len())])
            .unwrap_or(OrdType::Limit);
        let size = g
            .dec_between(bot.order_krw[0], bot.order_krw[1])
            .round_dp(0);
        let r = mk.ref_price(&market, at);
        let side = match ord_type {
            OrdType::Price => Side::Bid,
            OrdType::Market => Side::Ask,
            _ => {
                if g.rng.gen_bool(0.5) {
                    Side::Bid
                } else {
                    Side::Ask
                }
            }
        };
        let ident = Some(bot.identifier.replace("{n}", &n.to_string()));
        let (uuid, price, volume) = match ord_type {
            OrdType::Price => {
                let px = round_price(r * Decimal::new(10005, 4));
                let v = round_vol(size / px);
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
            OrdType::Market => {
                let px = round_price(r * Decimal::new(9995, 4));
                let v = round_vol(size / r);
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
                let px = round_price(match side {
                    Side::Bid => r * (Decimal::ONE - d),
                    Side::Ask => r * (Decimal::ONE + d),
                });
                let v = round_vol(size / px);
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
                    if let Some(o) = w.orders.last_mut() {
                        o.state = OrdState::Cancel;
                        o.volume = Some(v);
                        o.remaining_volume = v;
                    }
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
        log.push(BotLogRow {
            order_id: uuid,
            identifier: ident,
            market,
            side,
            ord_type,
            created_at: at - Duration::milliseconds(latency),
            price,
            volume,
        });
    }
    for _ in 0..bot.open_orders {
        n += 1;
        let market = bot.markets[g.rng.gen_range(0..bot.markets.len())].clone();
        let at = now - Duration::seconds(g.rng.gen_range(60..3600));
        let r = mk.ref_price(&market, now);
        let side = if g.rng.gen_bool(0.5) {
            Side::Bid
        } else {
            Side::Ask
        };
        let px = round_price(match side {
            Side::Bid => r * Decimal::new(97, 2),
            Side::Ask => r * Decimal::new(103, 2),
        });
        let size = g
            .dec_between(bot.order_krw[0], bot.order_krw[1])
            .round_dp(0);
        let v = round_vol(size / px);
        let ident = Some(bot.identifier.replace("{n}", &n.to_string()));
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
            log.push(BotLogRow {
                order_id: u,
                identifier: ident,
                market,
                side,
                ord_type: OrdType::Limit,
                created_at: at - Duration::milliseconds(40),
                price: Some(px),
                volume: Some(v),
            });
        }
    }
    log
}

fn manual_history(
    sc: &Scenario,
    m: &crate::mock::scenario::ManualSpec,
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
        let market = m.markets[g.rng.gen_range(0..m.markets.len())].clone();
        let size = g
            .dec_between(m.order_krw[0], m.order_krw[1])
            .round_dp(0)
            .max(Decimal::from(10_000));
        let r = mk.ref_price(&market, at);
        let u = if g.rng.gen_bool(0.5) {
            let px = round_price(r * Decimal::new(1002, 3));
            let v = round_vol(size / px);
            filled_order(
                g,
                w,
                &m.account,
                &market,
                Side::Bid,
                OrdType::Price,
                Some(size),
                &[(px, v)],
                at,
                None,
                sc.fee,
            )
        } else {
            let px = round_price(r);
            let v = round_vol(size / px);
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
                OrdType::Limit,
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

/// The attack's start: `start_minutes_before_now` before now, moved back to 03:00 KST of the
/// same night when `night_kst` is set and that night is at most 6 hours earlier.
pub fn attack_start(a: &crate::mock::scenario::AttackSpec, now: DateTime<Utc>) -> DateTime<Utc> {
    let cand = now - Duration::minutes(a.start_minutes_before_now);
    if !a.night_kst {
        return cand;
    }
    let local = cand.with_timezone(&kst_offset());
    let h = local.hour();
    if (1..6).contains(&h) {
        return cand;
    }
    // Latest 03:00 KST before cand.
    let three = local
        .date_naive()
        .and_hms_opt(3, 0, 0)
        .and_then(|n| n.and_local_timezone(kst_offset()).single())
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
                            && k.scopes.iter().any(|s| s == "make_orders")
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
    a: &crate::mock::scenario::AttackSpec,
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
    let t0 = attack_start(a, now);
    w.truth.victim_account = victim.clone();
    w.truth.leaked_access_key = key.access_key.clone();
    w.truth.attack_started_at = Some(crate::engine::journal::ts(t0));
    w.add_loss(Decimal::ZERO);
    let mut t = t0;
    // 1. Liquidation: market sells walking the LP's bids.
    for cur in &a.liquidate {
        let market = format!("KRW-{cur}");
        if mk.get(&market).is_none() {
            continue;
        }
        let have = w
            .accounts
            .get_mut(&victim)
            .map(|x| x.bal(cur).balance)
            .unwrap_or_default();
        let mut left = round_vol(have * a.liquidate_fraction);
        if left <= Decimal::ZERO {
            continue;
        }
        let vol = left;
        let r = mk.ref_price(&market, t);
        let mut fills = Vec::new();
        for (p, v) in mk.lp_levels(&market, Side::Bid, t) {
            let q = v.min(left);
            fills.push((p, q));
            left -= q;
            if left <= Decimal::ZERO {
                break;
            }
        }
        let sold: Decimal = fills.iter().map(|f| f.1).sum();
        let proceeds: Decimal = fills.iter().map(|f| f.0 * f.1).sum();
        let u = filled_order(
            g,
            w,
            &victim,
            &market,
            Side::Ask,
            OrdType::Market,
            None,
            &fills,
            t,
            None,
            fee,
        );
        if let Some(o) = w.orders.last_mut() {
            o.volume = Some(vol);
            o.remaining_volume = vol - sold;
            if sold < vol {
                o.state = OrdState::Cancel;
            }
        }
        w.record_attacker_order(u, t);
        let acct = w.accounts.get_mut(&victim).expect("victim exists");
        acct.bal(cur).balance -= sold;
        acct.bal("KRW").balance += proceeds - proceeds * fee;
        w.add_loss(r * sold - proceeds + proceeds * fee);
        t += Duration::seconds(g.rng.gen_range(20..60));
    }
    // 2. Pump: the attacker's ask ladder, lifted by the victim's market buys.
    if let Some(p) = &a.pump {
        let base = p
            .market
            .split_once('-')
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        let r0 = mk.ref_price(&p.market, t);
        let krw = w
            .accounts
            .get_mut(&victim)
            .map(|x| x.bal("KRW").balance)
            .unwrap_or_default();
        let budget = (krw * Decimal::new(95, 2) / (Decimal::ONE + fee)).round_dp(0);
        let per = (budget / Decimal::from(p.orders.max(1))).round_dp(0);
        if per >= Decimal::from(5000) {
            let ladder_at = t - Duration::minutes(3);
            let mut asks = Vec::new();
            for i in 0..p.orders {
                let k = Decimal::from(i + 1) / Decimal::from(p.orders);
                let px = round_price(r0 * (Decimal::ONE + (p.multiple - Decimal::ONE) * k));
                let v = round_vol(per / px);
                asks.push((px, v));
            }
            for (i, (px, v)) in asks.iter().enumerate() {
                let at = t + Duration::seconds(p.interval_secs * i as i64);
                g.mute_tape = true;
                filled_order(
                    g,
                    w,
                    &attacker,
                    &p.market,
                    Side::Ask,
                    OrdType::Limit,
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
                let u = filled_order(
                    g,
                    w,
                    &victim,
                    &p.market,
                    Side::Bid,
                    OrdType::Price,
                    Some(px * *v),
                    &[(*px, *v)],
                    at,
                    None,
                    fee,
                );
                w.record_attacker_order(u, at);
                let spent = *px * *v;
                let rr = mk.ref_price(&p.market, at);
                w.add_loss((*px - rr) * *v + spent * fee);
                let va = w.accounts.get_mut(&victim).expect("victim exists");
                va.bal("KRW").balance -= spent + spent * fee;
                va.bal(&base).balance += *v;
                let aa = w.accounts.entry(attacker.clone()).or_default();
                let ab = aa.bal(&base);
                ab.balance = (ab.balance - *v).max(Decimal::ZERO);
                aa.bal("KRW").balance += spent - spent * fee;
            }
            t += Duration::seconds(p.interval_secs * p.orders as i64);
        }
    }
    // 3. Contra: buy high from the attacker, sell low to the attacker.
    if let Some(c) = &a.contra {
        let base = c
            .market
            .split_once('-')
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        let half = c.loss_pct / Decimal::from(200);
        for _ in 0..c.round_trips {
            let r = mk.ref_price(&c.market, t);
            let hi = round_price(r * (Decimal::ONE + half));
            let lo = round_price(r * (Decimal::ONE - half));
            let v = round_vol(c.size_krw / r);
            let krw = w
                .accounts
                .get_mut(&victim)
                .map(|x| x.bal("KRW").balance)
                .unwrap_or_default();
            if krw < hi * v * (Decimal::ONE + fee) {
                break;
            }
            g.mute_tape = true;
            filled_order(
                g,
                w,
                &attacker,
                &c.market,
                Side::Ask,
                OrdType::Limit,
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
                &c.market,
                Side::Bid,
                OrdType::Limit,
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
                &c.market,
                Side::Bid,
                OrdType::Limit,
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
                &c.market,
                Side::Ask,
                OrdType::Limit,
                Some(lo),
                &[(lo, v)],
                t2,
                None,
                fee,
            );
            w.record_attacker_order(ua, t2);
            let r2 = mk.ref_price(&c.market, t2);
            w.add_loss((hi - r) * v + (r2 - lo) * v + (hi + lo) * v * fee);
            let va = w.accounts.get_mut(&victim).expect("victim exists");
            va.bal("KRW").balance -= hi * v * (Decimal::ONE + fee);
            va.bal("KRW").balance += lo * v * (Decimal::ONE - fee);
            let aa = w.accounts.entry(attacker.clone()).or_default();
            aa.bal("KRW").balance += (hi - lo) * v;
            let _ = &base;
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
        let wfee = Decimal::new(5, 4);
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
            state: "DONE",
            created_at: t,
            done_at: Some(t + Duration::minutes(12)),
            amount,
            fee: wfee,
        });
        w.truth.attacker_withdrawal_uuids.push(uuid);
        let r = mk.ref_price(&format!("KRW-{}", wd.currency), t);
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
        .map(|p| p.market.clone())
        .or_else(|| a.contra.as_ref().map(|c| c.market.clone()))
        .unwrap_or_else(|| mk.specs[0].code.clone());
    for i in 0..a.open_orders {
        let r = mk.ref_price(&om, now);
        let px = round_price(r * (Decimal::new(95, 2) - Decimal::new(i as i64, 2)));
        let v = round_vol(Decimal::from(50_000) / px);
        let at = t + Duration::seconds(30 * (i as i64 + 1));
        if let Some(u) = open_order(g, w, &victim, &om, Side::Bid, px, v, at.min(now), None, fee) {
            w.record_attacker_order(u, at.min(now));
        }
    }
}
