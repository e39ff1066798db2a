//! Synthetic, seeded account histories for the accuracy tests and the benchmark: 30 days of a
//! bot placing limit orders (identifiers `bot-<hex>`) on BTC and ETH at normal prices, then one
//! attack shaped like the mock exchange's scenarios, with the ground truth. Prices are in a
//! fictional quote currency ([`QUOTE`], scaled like a currency without minor unit), in markets
//! written `BASE-QUOTE`: the analysis must not care which exchange a history comes from.
//!
//! It lives in the library (not in `tests/`) so the benchmark and the tests share one
//! generator; nothing in the product calls it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;

use super::model::{AnalysisInput, BotLog, BotLogEntry, BotLogFormat};
use crate::exchange::{
    Balance, Candle, Market, Order, OrderState, OrderType, Provenance, Side, Transfer,
    TransferKind, Window, WithdrawalAddress,
};

/// The quote currency of every synthetic market.
pub const QUOTE: &str = "QTE";

/// The attack shapes of the mock exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Night-time market sells of several assets, then buys of one thin coin at 3–10×.
    PumpAndDump,
    /// Repeated losing buy-high/sell-low round trips in a thin market.
    Contra,
    /// A withdrawal to a never-used address plus some trades.
    Withdrawal,
    /// Pump-and-dump plus the user's own manual trades (not attacks).
    Noisy,
}

/// A generated history with its ground truth.
pub struct Synth {
    pub input: AnalysisInput,
    /// Ids of the attacker's orders.
    pub attack_orders: BTreeSet<String>,
    /// Ids of the attacker's withdrawals.
    pub attack_withdrawals: BTreeSet<String>,
}

const THIN: &str = "THIN-QTE";

struct Gen {
    rng: ChaCha8Rng,
    start: DateTime<Utc>,
    /// Price per minute since `start`, per market.
    paths: BTreeMap<&'static str, Vec<f64>>,
    /// The shared market of each symbol.
    markets: BTreeMap<&'static str, Market>,
    orders: Vec<Order>,
    entries: Vec<BotLogEntry>,
}

/// A `BASE-QTE` symbol's market.
fn market(symbol: &str) -> Market {
    let (base, quote) = symbol.split_once('-').unwrap_or((symbol, QUOTE));
    Market::new(symbol, base, quote)
}

fn d(x: f64, dp: u32) -> Decimal {
    Decimal::from_f64(x).unwrap_or_default().round_dp(dp)
}

impl Gen {
    fn new(seed: u64, minutes: usize) -> Gen {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut paths = BTreeMap::new();
        for (m, p0, vol) in [
            ("BTC-QTE", 100_000_000.0, 0.0004),
            ("ETH-QTE", 5_000_000.0, 0.0005),
            ("XRP-QTE", 700.0, 0.0005),
            (THIN, 100.0, 0.0003),
        ] {
            let mut p: f64 = p0;
            let mut v = Vec::with_capacity(minutes);
            for _ in 0..minutes {
                p *= 1.0 + rng.gen_range(-vol..vol);
                p = p.clamp(p0 * 0.8, p0 * 1.25);
                v.push(p);
            }
            paths.insert(m, v);
        }
        let markets = paths.keys().map(|m| (*m, market(m))).collect();
        Gen {
            rng,
            start: Utc.with_ymd_and_hms(2026, 10, 20, 0, 0, 0).unwrap(),
            paths,
            markets,
            orders: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn price(&self, market: &str, t: DateTime<Utc>) -> f64 {
        let p = &self.paths[market];
        let i = ((t - self.start).num_minutes().max(0) as usize).min(p.len() - 1);
        p[i]
    }

    fn uuid(&mut self) -> String {
        let a: u128 = self.rng.gen();
        let h = format!("{a:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        t: DateTime<Utc>,
        market: &str,
        side: Side,
        native: &str,
        price: Option<f64>,
        volume: Option<f64>,
        exec_price: f64,
        exec_volume: f64,
        client_id: Option<String>,
    ) -> usize {
        let order_type = match native {
            "limit" => OrderType::Limit,
            "best" => OrderType::Best,
            _ => OrderType::Market,
        };
        let ev = d(exec_volume, 8);
        let id = self.uuid();
        // A `price` order is a market buy for an amount: the amount is not a limit price.
        let (price, quote_amount) = match native {
            "price" => (None, price.map(|p| d(p, 4))),
            _ => (price.map(|p| d(p, 4)), None),
        };
        self.orders.push(Order {
            id,
            client_id: client_id.map(Into::into),
            market: self.markets[market].clone(),
            side,
            order_type,
            native_type: native.into(),
            state: OrderState::Done,
            price,
            quote_amount,
            volume: volume.map(|v| d(v, 8)),
            remaining_volume: Some(Decimal::ZERO),
            executed_volume: ev,
            executed_funds: Some((ev * d(exec_price, 4)).round_dp(4)),
            paid_fee: Decimal::ZERO,
            created_at: t,
            created_at_local: (t + Duration::hours(9))
                .format("%Y-%m-%dT%H:%M:%S+09:00")
                .to_string(),
            trades_count: 1,
            provenance: None,
        });
        self.orders.len() - 1
    }

    /// One bot limit order at `t`, logged in the bot log.
    fn bot_order(&mut self, t: DateTime<Utc>) {
        let market = if self.rng.gen_bool(0.6) {
            "BTC-QTE"
        } else {
            "ETH-QTE"
        };
        let side = if self.rng.gen_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let p = self.price(market, t) * (1.0 + self.rng.gen_range(-0.001..0.001));
        let notional = self.rng.gen_range(50_000.0..150_000.0);
        let v = notional / p;
        let ident = format!("bot-{:012x}", self.rng.gen::<u64>() & 0xffff_ffff_ffff);
        let i = self.order(
            t,
            market,
            side,
            "limit",
            Some(p),
            Some(v),
            p,
            v,
            Some(ident.clone()),
        );
        let o = &self.orders[i];
        self.entries.push(BotLogEntry {
            log: 0,
            line: self.entries.len() as u64 + 2,
            order_id: Some(o.id.clone()),
            identifier: Some(ident.into()),
            market: Some(o.market.clone()),
            side: Some(side),
            ord_type: Some("limit".into()),
            created_at: Some(t),
            price: o.price,
            volume: o.volume,
            funds: None,
        });
    }

    fn candles(
        &mut self,
        market: &'static str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        every: i64,
        value: (f64, f64),
    ) -> Vec<Candle> {
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            let p = self.price(market, t);
            let val = self.rng.gen_range(value.0..value.1);
            out.push(Candle {
                market: self.markets[market].clone(),
                start: t,
                open: d(p, 4),
                high: d(p * 1.0005, 4),
                low: d(p * 0.9995, 4),
                close: d(p, 4),
                volume: d(val / p, 8),
                value: d(val, 2),
            });
            t += Duration::minutes(every);
        }
        out
    }
}

/// Generates one scenario. `with_bot_log` attaches the bot's generic CSV log.
pub fn generate(scenario: Scenario, seed: u64, with_bot_log: bool) -> Synth {
    let days = 30;
    let mut g = Gen::new(seed, days * 1440 + 240);
    let end = g.start + Duration::days(days as i64);
    let attack = g.start + Duration::days(29) + Duration::hours(17);
    // The bot: one limit order every ~10 minutes for 30 days, also during the attack.
    let mut t = g.start;
    while t < end {
        g.bot_order(t);
        t += Duration::seconds(g.rng.gen_range(420..780));
    }
    let mut attack_orders = BTreeSet::new();
    let mut attack_withdrawals = BTreeSet::new();
    let mut withdrawals = Vec::new();
    let mut end_bal: BTreeMap<&str, f64> = [
        (QUOTE, 1_000_000.0),
        ("BTC", 0.05),
        ("ETH", 1.0),
        ("XRP", 1000.0),
    ]
    .into();

    let mut liquidate_and_pump = |g: &mut Gen,
                                  assets: &[(&'static str, &'static str, f64)],
                                  buys: usize,
                                  lo: f64,
                                  hi: f64| {
        let mut at = attack;
        let mut proceeds = 0.0;
        for &(market, cur, qty) in assets {
            let p = g.price(market, at) * 0.995;
            let i = g.order(
                at,
                market,
                Side::Sell,
                "market",
                None,
                Some(qty),
                p,
                qty,
                None,
            );
            attack_orders.insert(g.orders[i].id.clone());
            proceeds += p * qty;
            end_bal.insert(cur, 0.0);
            at += Duration::seconds(g.rng.gen_range(15..45));
        }
        let budget = (proceeds + 900_000.0) / buys as f64;
        let mut thin = 0.0;
        for k in 0..buys {
            at += Duration::seconds(g.rng.gen_range(20..60));
            let mult = g.rng.gen_range(lo..hi);
            let p = g.price(THIN, attack) * mult;
            let v = budget / p;
            let i = if k % 2 == 0 {
                g.order(at, THIN, Side::Buy, "price", Some(budget), None, p, v, None)
            } else {
                g.order(at, THIN, Side::Buy, "limit", Some(p), Some(v), p, v, None)
            };
            attack_orders.insert(g.orders[i].id.clone());
            thin += v;
        }
        end_bal.insert(QUOTE, 100_000.0);
        end_bal.insert("THIN", thin);
    };

    match scenario {
        Scenario::PumpAndDump | Scenario::Noisy => {
            liquidate_and_pump(
                &mut g,
                &[
                    ("BTC-QTE", "BTC", 0.05),
                    ("ETH-QTE", "ETH", 1.0),
                    ("XRP-QTE", "XRP", 1000.0),
                ],
                8,
                3.0,
                10.0,
            );
        }
        Scenario::Withdrawal => {
            liquidate_and_pump(
                &mut g,
                &[("ETH-QTE", "ETH", 1.0), ("XRP-QTE", "XRP", 1000.0)],
                3,
                3.0,
                5.0,
            );
        }
        Scenario::Contra => {
            let mut at = attack;
            for _ in 0..12 {
                let base = g.price(THIN, attack);
                let v = 5000.0;
                let hi = base * g.rng.gen_range(4.0..6.0);
                let i = g.order(at, THIN, Side::Buy, "limit", Some(hi), Some(v), hi, v, None);
                attack_orders.insert(g.orders[i].id.clone());
                at += Duration::seconds(g.rng.gen_range(40..100));
                let lo = base * 0.98;
                let i = g.order(
                    at,
                    THIN,
                    Side::Sell,
                    "limit",
                    Some(lo),
                    Some(v),
                    lo,
                    v,
                    None,
                );
                attack_orders.insert(g.orders[i].id.clone());
                at += Duration::seconds(g.rng.gen_range(40..100));
            }
            end_bal.insert(QUOTE, 1_000_000.0 - 12.0 * 5000.0 * 400.0);
        }
    }
    if scenario == Scenario::Withdrawal {
        for (k, day) in [5i64, 15].into_iter().enumerate() {
            let at = g.start + Duration::days(day) + Duration::hours(3);
            withdrawals.push(transfer(&mut g, at, "BTC", 0.01, "bc1quseraddress", k));
        }
        let w = transfer(
            &mut g,
            attack + Duration::minutes(10),
            "BTC",
            0.05,
            "bc1qattackernew",
            9,
        );
        attack_withdrawals.insert(w.id.clone());
        withdrawals.push(w);
        end_bal.insert("BTC", 0.0);
    }
    if scenario == Scenario::Noisy {
        for _ in 0..25 {
            let day = g.rng.gen_range(1..28);
            let t = g.start + Duration::days(day) + Duration::minutes(g.rng.gen_range(60..720));
            let market = if g.rng.gen_bool(0.5) {
                "BTC-QTE"
            } else {
                "ETH-QTE"
            };
            let side = if g.rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let p = g.price(market, t) * (1.0 + g.rng.gen_range(-0.003..0.003));
            let notional = g.rng.gen_range(20_000.0..2_000_000.0);
            let v = notional / p;
            if g.rng.gen_bool(0.5) {
                g.order(t, market, side, "limit", Some(p), Some(v), p, v, None);
            } else if side == Side::Buy {
                g.order(t, market, side, "price", Some(notional), None, p, v, None);
            } else {
                g.order(t, market, side, "market", None, Some(v), p, v, None);
            }
        }
    }

    let candle_from = g.start + Duration::days(27);
    let mut candles = BTreeMap::new();
    for (m, every, val) in [
        ("BTC-QTE", 1, (5e6, 5e7)),
        ("ETH-QTE", 1, (2e6, 2e7)),
        ("XRP-QTE", 1, (1e6, 1e7)),
        (THIN, 7, (5e4, 2e5)),
    ] {
        let mut cs = g.candles(m, candle_from, attack, every, val);
        if m == THIN {
            // The pump shows in the candles after the attack starts.
            let mut pumped = g.candles(m, attack, end, every, (5e6, 2e7));
            for c in &mut pumped {
                c.close *= Decimal::from(5);
            }
            cs.extend(pumped);
        } else {
            cs.extend(g.candles(m, attack, end, every, val));
        }
        candles.insert(m.to_string(), cs);
    }

    let mut orders = std::mem::take(&mut g.orders);
    orders.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let bot_logs = if with_bot_log {
        vec![BotLog {
            format: BotLogFormat::Generic,
            bundle_path: "bot/1-bot.csv".into(),
            sha256: String::new(),
            entries: std::mem::take(&mut g.entries),
            skipped: vec![],
            stopped: vec![],
        }]
    } else {
        vec![]
    };
    Synth {
        input: AnalysisInput {
            exchange: "synthetic".into(),
            key_masked: "AbCd...WxYz".into(),
            window: Some(Window {
                from: g.start,
                to: end,
            }),
            orders,
            withdrawals,
            // The response starts after the attack: both snapshots hold what it left.
            balances_start: end_bal.iter().map(|(c, a)| bal(c, *a)).collect(),
            balances_end: end_bal.iter().map(|(c, a)| bal(c, *a)).collect(),
            withdrawal_addresses: vec![WithdrawalAddress {
                currency: "BTC".into(),
                net_type: Some("BTC".into()),
                address: "bc1quseraddress".into(),
                secondary_address: None,
                registered_at: None,
            }],
            candles,
            bot_logs,
            local_utc_offset_secs: 9 * 3600,
            ..Default::default()
        },
        attack_orders,
        attack_withdrawals,
    }
}

fn bal(c: &str, a: f64) -> Balance {
    Balance {
        currency: c.to_string(),
        free: d(a.max(0.0), 8),
        locked: Decimal::ZERO,
        avg_buy_price: None,
        unit_currency: Some(QUOTE.into()),
    }
}

fn transfer(
    g: &mut Gen,
    t: DateTime<Utc>,
    cur: &str,
    amount: f64,
    addr: &str,
    _k: usize,
) -> Transfer {
    Transfer {
        id: g.uuid(),
        kind: TransferKind::Withdrawal,
        currency: cur.to_string(),
        net_type: Some(cur.to_string()),
        txid: None,
        state: "DONE".into(),
        status: crate::exchange::TransferStatus::Completed,
        amount: d(amount, 8),
        fee: None,
        address: Some(addr.to_string()),
        created_at: t,
        created_at_local: String::new(),
        done_at: Some(t),
        is_cancelable: false,
        provenance: None,
    }
}

/// A large history for the benchmark: `n` bot orders, all in a same-size bot log except a
/// 0.1% share of unmatched attack-like orders and 0.1% of log rows with no order (gaps).
pub fn bench_input(n: usize, seed: u64) -> AnalysisInput {
    let mut g = Gen::new(seed, 10);
    let mut t = g.start;
    for k in 0..n {
        if k % 1000 == 999 {
            let p = g.price(THIN, g.start) * 5.0;
            g.order(
                t,
                THIN,
                Side::Buy,
                "limit",
                Some(p),
                Some(1000.0),
                p,
                1000.0,
                None,
            );
        } else {
            g.bot_order(t);
        }
        t += Duration::seconds(g.rng.gen_range(1..30));
    }
    let mut entries = std::mem::take(&mut g.entries);
    let gaps = n / 1000;
    for k in 0..gaps {
        let mut e = entries[k * 7 % entries.len()].clone();
        e.order_id = Some(format!("missing-{k}"));
        e.identifier = Some(format!("bot-gap{k:08x}").into());
        e.line = (entries.len() + k + 2) as u64;
        entries.push(e);
    }
    // As the offline rebuild gives them: every order of one 1,000-order page shares its raw
    // response's provenance.
    let mut orders = std::mem::take(&mut g.orders);
    for (page, chunk) in orders.chunks_mut(1000).enumerate() {
        let prov = std::sync::Arc::new(Provenance {
            raw_file: format!("raw/{:06}-GET-v1_orders_closed.body", page + 1),
            raw_sha256: format!("{:064x}", page + 1),
        });
        for o in chunk {
            o.provenance = Some(prov.clone());
        }
    }
    let candles = [(
        THIN.to_string(),
        g.candles(THIN, g.start - Duration::hours(2), g.start, 5, (5e4, 2e5)),
    )]
    .into();
    AnalysisInput {
        exchange: "synthetic".into(),
        window: Some(Window {
            from: g.start - Duration::days(1),
            to: t + Duration::days(1),
        }),
        orders,
        candles,
        bot_logs: vec![BotLog {
            format: BotLogFormat::Generic,
            bundle_path: "bot/1-bench.csv".into(),
            sha256: String::new(),
            entries,
            skipped: vec![],
            stopped: vec![],
        }],
        ..Default::default()
    }
}
