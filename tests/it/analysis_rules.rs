//! Diff priorities, each rule firing on a crafted case, exact loss figures on a hand-computed
//! case, and determinism.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use respond::analysis::synth::{generate, Scenario};
use respond::analysis::{
    analyze, candidate_order_ids, AnalysisInput, AnalysisResult, BotLog, BotLogEntry, BotLogFormat,
    Confidence, MatchKind, Thresholds,
};
use respond::exchange::{
    ApiKeyInfo, Balance, Candle, Fill, Order, OrderState, OrderType, Side, Transfer, TransferKind,
    Window, WithdrawalAddress,
};
use rust_decimal::Decimal;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn order(
    id: &str,
    client: Option<&str>,
    market: &str,
    side: Side,
    native: &str,
    price: Option<&str>,
    vol: &str,
    funds: &str,
    t: DateTime<Utc>,
) -> Order {
    Order {
        id: id.into(),
        client_id: client.map(Into::into),
        market: respond::exchange::upbit::market(market),
        side,
        order_type: match native {
            "limit" => OrderType::Limit,
            _ => OrderType::Market,
        },
        native_type: native.into(),
        state: OrderState::Done,
        // Upbit's `price` orders give the amount to spend, not a limit.
        price: price.filter(|_| native != "price").map(dec),
        quote_amount: price.filter(|_| native == "price").map(dec),
        volume: Some(dec(vol)),
        remaining_volume: Some(Decimal::ZERO),
        executed_volume: dec(vol),
        executed_funds: Some(dec(funds)),
        paid_fee: Decimal::ZERO,
        created_at: t,
        created_at_local: String::new(),
        trades_count: 1,
        provenance: None,
    }
}

fn entry(line: u64, oid: Option<&str>, ident: Option<&str>, o: &Order) -> BotLogEntry {
    BotLogEntry {
        log: 0,
        line,
        order_id: oid.map(str::to_string),
        identifier: ident.map(Into::into),
        market: Some(o.market.clone()),
        side: Some(o.side),
        ord_type: Some(o.native_type.clone()),
        created_at: Some(o.created_at),
        price: o.price.or(o.quote_amount),
        volume: o.volume,
        funds: None,
    }
}

fn log(entries: Vec<BotLogEntry>) -> BotLog {
    BotLog {
        format: BotLogFormat::Generic,
        bundle_path: "bot/1-bot.csv".into(),
        sha256: String::new(),
        entries,
        skipped: vec![],
        stopped: vec![],
    }
}

fn candles(market: &str, close: &str, value: &str, from: DateTime<Utc>, n: i64) -> Vec<Candle> {
    (0..n)
        .map(|k| Candle {
            market: respond::exchange::upbit::market(market),
            start: from + Duration::minutes(k),
            open: dec(close),
            high: dec(close),
            low: dec(close),
            close: dec(close),
            volume: Decimal::ONE,
            value: dec(value),
        })
        .collect()
}

/// 60 bot limit orders on KRW-BTC (price 100,000,000, 0.001 each) every 10 minutes from t0,
/// at hours 0..10 UTC, all in the bot log with identifiers `bot-<hex>`.
fn bot_history() -> (Vec<Order>, Vec<BotLogEntry>) {
    let mut orders = Vec::new();
    let mut entries = Vec::new();
    for k in 0..60 {
        let t = t0() + Duration::minutes(10 * k);
        let id = format!("bot-order-{k:03}");
        let ident = format!("bot-{:08x}", 0xa0000 + k);
        let side = if k % 2 == 0 { Side::Buy } else { Side::Sell };
        let o = order(
            &id,
            Some(&ident),
            "KRW-BTC",
            side,
            "limit",
            Some("100000000"),
            "0.001",
            "100000",
            t,
        );
        entries.push(entry(k as u64 + 2, Some(&id), Some(&ident), &o));
        orders.push(o);
    }
    (orders, entries)
}

fn verdict<'a>(
    r: &'a AnalysisResult,
    input: &AnalysisInput,
    id: &str,
) -> &'a respond::analysis::OrderVerdict {
    let i = input.orders.iter().position(|o| o.id == id).unwrap();
    &r.verdicts[i]
}

fn rules_of(r: &AnalysisResult, input: &AnalysisInput, id: &str) -> Vec<String> {
    verdict(r, input, id)
        .rules
        .iter()
        .map(|h| h.rule.clone())
        .collect()
}

#[test]
fn diff_priorities_gaps_and_pattern() {
    let (mut orders, mut entries) = bot_history();
    let t = t0() + Duration::hours(12);
    // Matched by identifier only (log has no order id).
    let a = order(
        "by-ident",
        Some("bot-000ff001"),
        "KRW-BTC",
        Side::Buy,
        "limit",
        Some("100000000"),
        "0.001",
        "100000",
        t,
    );
    entries.push(entry(100, None, Some("bot-000ff001"), &a));
    // Matched fuzzily: volume within 0.1%, 60 s later.
    let b = order(
        "fuzzy",
        None,
        "KRW-BTC",
        Side::Sell,
        "limit",
        Some("100000000"),
        "0.002",
        "200000",
        t,
    );
    let mut eb = entry(101, None, Some("bot-000ff002"), &b);
    eb.volume = Some(dec("0.0020015"));
    eb.created_at = Some(t + Duration::seconds(60));
    entries.push(eb);
    // Two identical orders, one bot row: only one matches.
    let c1 = order(
        "twin-1",
        None,
        "KRW-ETH",
        Side::Buy,
        "limit",
        Some("5000000"),
        "0.01",
        "50000",
        t,
    );
    let c2 = order(
        "twin-2",
        None,
        "KRW-ETH",
        Side::Buy,
        "limit",
        Some("5000000"),
        "0.01",
        "50000",
        t + Duration::seconds(5),
    );
    entries.push(entry(102, None, Some("bot-000ff003"), &c1));
    // Volume 1% off: unmatched.
    let d = order(
        "off",
        None,
        "KRW-BTC",
        Side::Buy,
        "limit",
        Some("100000000"),
        "0.00101",
        "101000",
        t,
    );
    let mut ed = entry(103, None, Some("bot-000ff004"), &d);
    ed.volume = Some(dec("0.001"));
    // A gap inside the window, a row outside it.
    let mut gap = ed.clone();
    gap.line = 104;
    gap.order_id = Some("never-seen".into());
    let mut outside = gap.clone();
    outside.line = 105;
    outside.created_at = Some(t0() - Duration::days(3));
    entries.extend([ed, gap, outside]);
    orders.extend([a, b, c1, c2, d]);
    let input = AnalysisInput {
        window: Some(Window {
            from: t0(),
            to: t0() + Duration::days(1),
        }),
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    assert_eq!(
        verdict(&r, &input, "bot-order-000").match_kind,
        MatchKind::OrderId
    );
    assert_eq!(
        verdict(&r, &input, "bot-order-000").matched_row,
        Some((0, 2))
    );
    assert_eq!(
        verdict(&r, &input, "by-ident").match_kind,
        MatchKind::Identifier
    );
    assert_eq!(verdict(&r, &input, "fuzzy").match_kind, MatchKind::Fuzzy);
    assert_eq!(verdict(&r, &input, "fuzzy").matched_row, Some((0, 101)));
    assert_eq!(verdict(&r, &input, "twin-1").match_kind, MatchKind::Fuzzy);
    assert_eq!(
        verdict(&r, &input, "twin-2").match_kind,
        MatchKind::Unmatched
    );
    assert_eq!(verdict(&r, &input, "off").match_kind, MatchKind::Unmatched);
    let gap_lines: Vec<u64> = r.gaps.iter().map(|g| g.line).collect();
    assert_eq!(gap_lines, vec![103, 104], "row 105 is outside the window");
    assert!(r.gaps[1].reason.contains("never-seen"));
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("1 bot-log rows fall outside")));
    let p = r.identifier_pattern.as_deref().unwrap();
    assert!(
        p.contains("prefix `bot-`") && p.contains("12 characters"),
        "{p}"
    );
    // R1 with R16 (no identifier from a bot that always sends one), at a normal price in the
    // bot's market with a limit order = review, not flagged.
    let v = verdict(&r, &input, "off");
    assert_eq!(v.confidence, Confidence::Review);
    assert!(!v.flagged);
    assert_eq!(rules_of(&r, &input, "off"), vec!["R1", "R16"]);
    let ids = candidate_order_ids(&input, &Thresholds::default());
    assert_eq!(ids, vec!["fuzzy", "twin-1", "twin-2", "off"]);
}

/// The bot's history plus crafted attacker orders, one per rule.
fn crafted() -> AnalysisInput {
    let (mut orders, mut entries) = bot_history();
    let at = t0() + Duration::hours(20); // an hour the bot never trades in (R10)
    let mut push = |o: Order| orders.push(o);
    // R2 + R12: foreign client id, market sell in the bot's market, ~all the BTC (R11).
    push(order(
        "sell-btc",
        Some("x-attack-1"),
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.5",
        "49000000",
        at,
    ));
    // R7: a second asset sold, then a thin coin bought with the proceeds (R3, R4 hard, R5).
    push(order(
        "sell-eth",
        None,
        "KRW-ETH",
        Side::Sell,
        "market",
        None,
        "10",
        "49000000",
        at + Duration::seconds(30),
    ));
    push(order(
        "pump-1",
        None,
        "KRW-THIN",
        Side::Buy,
        "limit",
        Some("500"),
        "100000",
        "50000000",
        at + Duration::seconds(60),
    ));
    push(order(
        "pump-2",
        None,
        "KRW-THIN",
        Side::Buy,
        "limit",
        Some("130"),
        "300000",
        "39000000",
        at + Duration::seconds(90),
    ));
    // R6: a burst of 8 orders in one minute (contra round trips in KRW-CTR, R8).
    let burst = at + Duration::hours(2);
    for k in 0..4 {
        push(order(
            &format!("ctr-buy-{k}"),
            None,
            "KRW-CTR",
            Side::Buy,
            "limit",
            Some("1000"),
            "10",
            "10000",
            burst + Duration::seconds(12 * k),
        ));
        push(order(
            &format!("ctr-sell-{k}"),
            None,
            "KRW-CTR",
            Side::Sell,
            "limit",
            Some("800"),
            "10",
            "8000",
            burst + Duration::seconds(12 * k + 6),
        ));
    }
    // R9: an order with an identifier of the bot's shape while the bot was stopped; the same
    // order without an identifier looks like the owner's own hand trade.
    let stopped_at = t0() + Duration::hours(30);
    push(order(
        "while-stopped-by-hand",
        None,
        "KRW-BTC",
        Side::Sell,
        "limit",
        Some("100000000"),
        "0.001",
        "100000",
        stopped_at + Duration::minutes(5),
    ));
    push(order(
        "while-stopped",
        Some("bot-000fffff"),
        "KRW-BTC",
        Side::Buy,
        "limit",
        Some("100000000"),
        "0.001",
        "100000",
        stopped_at,
    ));
    let mut bl = log(std::mem::take(&mut entries));
    bl.stopped = vec![Window {
        from: t0() + Duration::hours(29),
        to: t0() + Duration::hours(31),
    }];
    let mut candles_map = BTreeMap::new();
    candles_map.insert(
        "KRW-BTC".to_string(),
        candles(
            "KRW-BTC",
            "100000000",
            "50000000000",
            at - Duration::minutes(60),
            60,
        ),
    );
    candles_map.insert(
        "KRW-ETH".to_string(),
        candles(
            "KRW-ETH",
            "5000000",
            "5000000000",
            at - Duration::minutes(60),
            60,
        ),
    );
    candles_map.insert(
        "KRW-THIN".to_string(),
        candles("KRW-THIN", "100", "10000", at - Duration::minutes(60), 60),
    );
    candles_map.insert(
        "KRW-CTR".to_string(),
        candles(
            "KRW-CTR",
            "900",
            "100000000",
            burst - Duration::minutes(60),
            60,
        ),
    );
    AnalysisInput {
        exchange: "upbit".into(),
        window: Some(Window {
            from: t0(),
            to: t0() + Duration::days(2),
        }),
        orders,
        candles: candles_map,
        bot_logs: vec![bl],
        balances_start: vec![Balance {
            currency: "BTC".into(),
            free: dec("0.5"),
            locked: Decimal::ZERO,
            avg_buy_price: None,
            unit_currency: None,
        }],
        withdrawals: vec![Transfer {
            id: "wd-1".into(),
            kind: TransferKind::Withdrawal,
            currency: "BTC".into(),
            net_type: None,
            txid: None,
            state: "DONE".into(),
            status: respond::exchange::TransferStatus::Completed,
            amount: dec("0.1"),
            fee: None,
            address: Some("bc1qnew".into()),
            created_at: at,
            created_at_local: String::new(),
            done_at: None,
            is_cancelable: false,
            provenance: None,
        }],
        keys: vec![ApiKeyInfo {
            access_key_masked: "AbCd...WxYz".into(),
            is_current: true,
            expire_at: None,
            scopes: Some(vec!["orders".into(), "withdraw".into()]),
            allowed_ips: Some(vec![]),
        }],
        ..Default::default()
    }
}

#[test]
fn each_rule_fires_on_its_crafted_case() {
    let input = crafted();
    let r = analyze(&input, &Thresholds::default());
    let has = |id: &str, rule: &str| rules_of(&r, &input, id).contains(&rule.to_string());
    for (id, rule) in [
        ("sell-btc", "R1"),
        ("sell-btc", "R2"),
        ("sell-btc", "R7"),
        ("sell-btc", "R10"),
        ("sell-btc", "R11"),
        ("sell-btc", "R12"),
        ("sell-eth", "R3"),
        ("sell-eth", "R7"),
        ("pump-1", "R3"),
        ("pump-1", "R4"),
        ("pump-1", "R5"),
        ("pump-1", "R7"),
        ("pump-2", "R4"),
        ("ctr-buy-0", "R6"),
        ("ctr-sell-3", "R8"),
        ("while-stopped", "R9"),
    ] {
        assert!(
            has(id, rule),
            "{rule} did not fire on {id}: {:?}",
            verdict(&r, &input, id).rules
        );
    }
    assert!(!has("sell-btc", "R4"), "a sale at a normal price is not R4");
    assert!(!has("while-stopped", "R4"));
    // Hard R4 at 5×, soft at 1.3×.
    let w = |id: &str| {
        verdict(&r, &input, id)
            .rules
            .iter()
            .find(|h| h.rule == "R4")
            .unwrap()
            .weight
    };
    assert_eq!(w("pump-1"), 1.0);
    assert_eq!(w("pump-2"), 0.6);
    let reason = &verdict(&r, &input, "pump-1")
        .rules
        .iter()
        .find(|h| h.rule == "R4")
        .unwrap()
        .reason;
    assert!(
        reason.contains("500") && reason.contains("100") && reason.contains("400.0% above"),
        "{reason}"
    );
    for id in [
        "sell-btc",
        "sell-eth",
        "pump-1",
        "ctr-buy-0",
        "while-stopped",
    ] {
        let v = verdict(&r, &input, id);
        assert_eq!(v.confidence, Confidence::High, "{id}: {:?}", v.rules);
        assert!(v.flagged);
    }
    // Bot orders are untouched.
    assert!(r.verdicts[..60]
        .iter()
        .all(|v| v.rules.is_empty() && !v.flagged));
    // R13 and R14.
    assert!(r.transfers[0].flagged);
    assert_eq!(r.transfers[0].rules[0].rule, "R13");
    let keys: Vec<&str> = r.key_findings.iter().map(|h| h.reason.as_str()).collect();
    assert!(
        keys.iter().any(|k| k.contains("no IP allowlist")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.contains("withdrawal scope")),
        "{keys:?}"
    );
    let w = r.suspicious_window.unwrap();
    assert_eq!(w.from, t0() + Duration::hours(20));
    let by_hand = verdict(&r, &input, "while-stopped-by-hand");
    assert!(has("while-stopped-by-hand", "R9"));
    assert_eq!(
        by_hand.confidence,
        Confidence::Review,
        "{:?}",
        by_hand.rules
    );
    assert!(by_hand.user_trade.is_some());
}

#[test]
fn without_a_bot_log_heuristics_still_flag_the_pump() {
    let mut input = crafted();
    input.bot_logs.clear();
    let r = analyze(&input, &Thresholds::default());
    assert!(!r.had_bot_log);
    assert!(r
        .notes
        .iter()
        .any(|n| n.starts_with("no bot log: heuristics only")));
    // R1 and R9 need the log; R2 and R3 compare with the history before the window instead.
    assert!(r.verdicts.iter().all(|v| v
        .rules
        .iter()
        .all(|h| !["R1", "R9"].contains(&h.rule.as_str()))));
    assert!(verdict(&r, &input, "pump-1").flagged);
    assert!(
        verdict(&r, &input, "sell-btc").flagged,
        "{:?}",
        verdict(&r, &input, "sell-btc").rules
    );
}

#[test]
fn loss_figures_are_exact_on_a_hand_computed_case() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    // Flagged sell: 0.01 BTC for 990,000 at a reference of 100,000,000 → 10,000 underpaid.
    orders.push(order(
        "sell",
        Some("x-evil"),
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.01",
        "990000",
        at,
    ));
    // Flagged buy: 20 THIN filled 10 @ 500 + 10 @ 700 = 12,000 at a reference of 100 → 10,000 overpaid.
    orders.push(order(
        "buy",
        None,
        "KRW-THIN",
        Side::Buy,
        "limit",
        Some("700"),
        "20",
        "99999",
        at + Duration::seconds(30),
    ));
    let fill = |id: &str, price: &str| Fill {
        id: id.into(),
        order_id: "buy".into(),
        market: respond::exchange::upbit::market("KRW-THIN"),
        side: Side::Buy,
        price: dec(price),
        volume: dec("10"),
        funds: dec(price) * dec("10"),
        fee: None,
        created_at: at + Duration::seconds(31),
        created_at_local: String::new(),
        provenance: None,
    };
    let bal = |c: &str, a: &str| Balance {
        currency: c.into(),
        free: dec(a),
        locked: Decimal::ZERO,
        avg_buy_price: None,
        unit_currency: None,
    };
    let mut cm = BTreeMap::new();
    cm.insert(
        "KRW-BTC".to_string(),
        candles("KRW-BTC", "100000000", "1", at - Duration::minutes(60), 60),
    );
    cm.insert(
        "KRW-THIN".to_string(),
        candles("KRW-THIN", "100", "1", at - Duration::minutes(60), 60),
    );
    let input = AnalysisInput {
        orders,
        fills: vec![fill("f1", "500"), fill("f2", "700")],
        candles: cm,
        bot_logs: vec![log(entries)],
        balances_start: vec![bal("KRW", "1000"), bal("BTC", "0.01")],
        balances_end: vec![bal("KRW", "979000"), bal("THIN", "20")],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    let s = verdict(&r, &input, "sell");
    let b = verdict(&r, &input, "buy");
    assert!(s.flagged && b.flagged, "{:?} {:?}", s.rules, b.rules);
    assert_eq!(s.est_loss_quote, Some(dec("10000")));
    assert_eq!(b.est_loss_quote, Some(dec("10000")));
    assert_eq!(b.reference_price, Some(dec("100")));
    assert_eq!(b.deviation_pct, Some(dec("500")));
    assert_eq!(r.loss.quote_currency, "KRW");
    assert_eq!(r.loss.overpayment, dec("20000"));
    // 1,000 + 0.01 × 100,000,000 = 1,001,000 before; 979,000 + 20 × 100 = 981,000 after.
    assert_eq!(r.loss.change_during_response, Some(dec("20000")));
    assert_eq!(r.loss.withdrawn_value, Decimal::ZERO);
    // The claim: overpayment + withdrawn + the flagged orders' fees; the change during the
    // response is not in it.
    assert_eq!(
        r.loss.total,
        r.loss.overpayment + r.loss.withdrawn_value + r.loss.fees
    );
    assert!(r.loss.unpriced.is_empty(), "{:?}", r.loss.unpriced);
    assert!(
        r.loss.explanation[0].contains("20000 KRW"),
        "{:?}",
        r.loss.explanation
    );
    assert!(r
        .loss
        .explanation
        .iter()
        .any(|e| e.contains("1001000") && e.contains("981000")));
}

#[test]
fn same_input_gives_identical_serialized_results() {
    let s = generate(Scenario::Noisy, 7, true);
    let a = serde_json::to_string(&analyze(&s.input, &Thresholds::default())).unwrap();
    let b = serde_json::to_string(&analyze(&s.input.clone(), &Thresholds::default())).unwrap();
    assert_eq!(a, b);
    let c = generate(Scenario::Noisy, 7, true);
    let c = serde_json::to_string(&analyze(&c.input, &Thresholds::default())).unwrap();
    assert_eq!(a, c);
}

#[test]
fn candidates_without_a_bot_log_are_the_orders_rules_fired_on() {
    let mut input = crafted();
    input.bot_logs.clear();
    let ids = candidate_order_ids(&input, &Thresholds::default());
    assert!(ids.contains(&"pump-1".to_string()));
    assert!(!ids.contains(&"bot-order-000".to_string()), "{ids:?}");
}

#[test]
fn one_asset_sold_into_a_new_coin_is_liquidate_then_concentrate() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    orders.push(order(
        "sell",
        None,
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.5",
        "50000000",
        at,
    ));
    orders.push(order(
        "buy",
        None,
        "KRW-NEW",
        Side::Buy,
        "limit",
        Some("100"),
        "400000",
        "40000000",
        at + Duration::seconds(40),
    ));
    // Same shape into a coin the bot trades: not R7 with a single asset sold.
    orders.push(order(
        "sell2",
        None,
        "KRW-ETH",
        Side::Sell,
        "market",
        None,
        "1",
        "5000000",
        at + Duration::hours(5),
    ));
    orders.push(order(
        "buy2",
        None,
        "KRW-BTC",
        Side::Buy,
        "limit",
        Some("100000000"),
        "0.04",
        "4000000",
        at + Duration::hours(5) + Duration::seconds(30),
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    assert!(rules_of(&r, &input, "sell").contains(&"R7".to_string()));
    assert!(rules_of(&r, &input, "buy").contains(&"R7".to_string()));
    assert!(verdict(&r, &input, "sell").flagged);
    assert!(!rules_of(&r, &input, "sell2").contains(&"R7".to_string()));
    assert!(!rules_of(&r, &input, "buy2").contains(&"R7".to_string()));
}

#[test]
fn empty_input_is_handled() {
    let input = AnalysisInput::default();
    let r = analyze(&input, &Thresholds::default());
    assert!(r.verdicts.is_empty() && r.gaps.is_empty() && r.suspicious_window.is_none());
    assert_eq!(r.loss.overpayment, Decimal::ZERO);
    assert_eq!(r.loss.change_during_response, None);
    assert!(r.notes[0].starts_with("no bot log"));
    assert!(candidate_order_ids(&input, &Thresholds::default()).is_empty());
}

/// R14 reads what a scope allows from the exchange's vocabulary: a read-only scope that
/// merely names withdrawals is not a withdrawal scope (it was, when R14 matched the word).
#[test]
fn r14_judges_scopes_by_what_they_allow_not_by_their_name() {
    let key = |scopes: &[&str]| ApiKeyInfo {
        access_key_masked: "abcd...wxyz".into(),
        is_current: true,
        expire_at: None,
        scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
        allowed_ips: None,
    };
    let findings = |scopes: &[&str]| {
        let input = AnalysisInput {
            exchange: "upbit".into(),
            keys: vec![key(scopes)],
            ..AnalysisInput::default()
        };
        analyze(&input, &Thresholds::default())
            .key_findings
            .iter()
            .any(|h| h.reason.contains("withdrawal scope"))
    };
    assert!(!findings(&["view_account", "view_withdrawals"]));
    assert!(findings(&["view_account", "make_withdrawals"]));
    // An exchange this build does not know: the name decides.
    let input = AnalysisInput {
        exchange: "elsewhere".into(),
        keys: vec![key(&["Withdraw"])],
        ..AnalysisInput::default()
    };
    assert!(analyze(&input, &Thresholds::default())
        .key_findings
        .iter()
        .any(|h| h.reason.contains("withdrawal scope")));
}

fn withdrawal(id: &str, currency: &str, amount: &str, t: DateTime<Utc>) -> Transfer {
    Transfer {
        id: id.into(),
        kind: TransferKind::Withdrawal,
        currency: currency.into(),
        net_type: Some(currency.into()),
        txid: None,
        state: "DONE".into(),
        status: respond::exchange::TransferStatus::Completed,
        amount: dec(amount),
        fee: None,
        // Upbit's withdrawal list carries no address.
        address: None,
        created_at: t,
        created_at_local: String::new(),
        done_at: None,
        is_cancelable: false,
        provenance: None,
    }
}

#[test]
fn manual_trades_in_other_markets_at_market_prices_are_review_not_claims() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    // The user's own web-UI trades: unmatched (R1), markets the bot never trades (R3), a
    // market order (R12), at the market price.
    orders.push(order(
        "manual-xrp",
        None,
        "KRW-XRP",
        Side::Buy,
        "market",
        None,
        "100",
        "310000",
        at,
    ));
    orders.push(order(
        "manual-seol",
        None,
        "KRW-SEOL",
        Side::Sell,
        "limit",
        Some("1280"),
        "500",
        "640000",
        at + Duration::days(1),
    ));
    let mut cs = BTreeMap::new();
    cs.insert(
        "KRW-XRP".to_string(),
        candles(
            "KRW-XRP",
            "3100",
            "1000000000",
            at - Duration::hours(2),
            120,
        ),
    );
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: cs,
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    for id in ["manual-xrp", "manual-seol"] {
        let v = verdict(&r, &input, id);
        let rules = rules_of(&r, &input, id);
        assert!(rules.contains(&"R1".to_string()) && rules.contains(&"R3".to_string()));
        assert_eq!(v.confidence, Confidence::Review, "{id}: {rules:?}");
        assert!(!v.flagged);
    }
}

/// The bot's history, then a market sell of 2.5 ETH (paying `fee`) at noon of the second
/// day, the given withdrawals, and BTC candles around it (no ETH candles).
fn sell_eth_then_withdraw(fee: Decimal, withdrawals: Vec<Transfer>) -> AnalysisInput {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    let mut sell = order(
        "sell-eth",
        None,
        "KRW-ETH",
        Side::Sell,
        "market",
        None,
        "2.5",
        "12000000",
        at,
    );
    sell.paid_fee = fee;
    orders.push(sell);
    let mut cs = BTreeMap::new();
    cs.insert(
        "KRW-BTC".to_string(),
        candles(
            "KRW-BTC",
            "100000000",
            "1000000000",
            at - Duration::hours(2),
            120,
        ),
    );
    AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        withdrawals,
        candles: cs,
        ..Default::default()
    }
}

#[test]
fn liquidate_then_withdraw_flags_the_sell_and_the_withdrawal_but_not_old_cash_outs() {
    let at = t0() + Duration::hours(12);
    let input = sell_eth_then_withdraw(
        Decimal::ZERO,
        vec![
            withdrawal("old", "BTC", "0.01", at - Duration::days(30)),
            withdrawal("attack", "BTC", "0.1", at + Duration::minutes(2)),
        ],
    );
    let r = analyze(&input, &Thresholds::default());
    let sell = verdict(&r, &input, "sell-eth");
    assert!(sell.flagged, "{:?}", sell.rules);
    assert!(sell
        .rules
        .iter()
        .any(|h| h.rule == "R7" && h.reason.contains("liquidate then withdraw")));
    let flagged: Vec<&str> = r
        .transfers
        .iter()
        .filter(|t| t.flagged)
        .map(|t| t.transfer_id.as_str())
        .collect();
    assert_eq!(flagged, vec!["attack"]);
    // 0.1 BTC at the 100,000,000 KRW reference.
    assert_eq!(r.loss.withdrawn_value, dec("10000000"));
}

#[test]
fn the_loss_total_adds_fees_and_names_what_could_not_be_priced() {
    let at = t0() + Duration::hours(12);
    let input = sell_eth_then_withdraw(
        dec("6000"),
        vec![
            withdrawal("attack", "BTC", "0.1", at + Duration::minutes(2)),
            // A coin without any market or candle: its value cannot be priced.
            withdrawal("attack-2", "NOPRICE", "50", at + Duration::minutes(3)),
        ],
    );
    let r = analyze(&input, &Thresholds::default());
    assert!(verdict(&r, &input, "sell-eth").flagged);
    let flagged: Vec<&str> = r
        .transfers
        .iter()
        .filter(|t| t.flagged)
        .map(|t| t.transfer_id.as_str())
        .collect();
    assert_eq!(flagged, vec!["attack", "attack-2"]);
    assert_eq!(r.loss.fees, dec("6000"), "the flagged sell's fee");
    assert_eq!(
        r.loss.withdrawn_value,
        dec("10000000"),
        "only the BTC is priced"
    );
    assert_eq!(
        r.loss.total,
        r.loss.overpayment + dec("10000000") + dec("6000")
    );
    // The ETH sell has no ETH candles (no reference), the NOPRICE coin no price at all.
    assert_eq!(r.loss.unpriced.len(), 2, "{:?}", r.loss.unpriced);
    assert!(
        r.loss.unpriced[0].contains("KRW-ETH"),
        "{:?}",
        r.loss.unpriced
    );
    assert!(
        r.loss.unpriced[1].contains("NOPRICE"),
        "{:?}",
        r.loss.unpriced
    );
    assert!(
        r.loss.explanation[0].starts_with("Estimated loss ")
            && r.loss.explanation[0].contains("could be priced"),
        "{:?}",
        r.loss.explanation
    );
    let json = serde_json::to_value(&r.loss).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(&keys[..3], ["quote_currency", "total", "overpayment"]);
    assert!(json.get("portfolio_delta").is_none());
}

#[test]
fn the_candle_still_open_at_the_pump_is_not_the_reference() {
    let (mut orders, entries) = bot_history();
    let hour0 = t0() + Duration::hours(10);
    // Hourly candles: 100 for ten hours, then the hour the pump started in closes at 300.
    let mut cs: Vec<Candle> = (0..10)
        .map(|k| {
            let mut c = candles("KRW-PUMP", "100", "50000000", hour0, 1).remove(0);
            c.start = hour0 + Duration::hours(k);
            c
        })
        .collect();
    let mut pumped = cs[0].clone();
    pumped.start = hour0 + Duration::hours(10);
    pumped.close = dec("300");
    cs.push(pumped);
    orders.push(order(
        "pump",
        None,
        "KRW-PUMP",
        Side::Buy,
        "limit",
        Some("300"),
        "1000",
        "300000",
        hour0 + Duration::hours(10) + Duration::minutes(30),
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: [("KRW-PUMP".to_string(), cs)].into_iter().collect(),
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "pump");
    assert_eq!(v.reference_price, Some(dec("100")));
    assert!(v.flagged);
    assert!(v.rules.iter().any(|h| h.rule == "R4" && h.weight >= 1.0));
}

#[test]
fn a_withdrawal_during_the_incident_to_a_known_allowlisted_address_is_review_not_a_claim() {
    // The victim's first reflex is often to move funds to their own wallet: an address on
    // the allowlist that earlier, completed withdrawals used. Timing alone does not make it
    // the attacker's; a new or unlisted address, no address at all, a prior use that is
    // itself part of the incident or never completed, or a tagged shared address still do.
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    orders.push(order(
        "sell-eth",
        None,
        "KRW-ETH",
        Side::Sell,
        "market",
        None,
        "2.5",
        "12000000",
        at,
    ));
    // A withdrawal `minutes` after the first flagged order (negative: before it).
    let w = |id: &str, cur: &str, amount: &str, minutes: i64, addr: Option<&str>| {
        let mut t = withdrawal(id, cur, amount, at + Duration::minutes(minutes));
        t.address = addr.map(Into::into);
        t
    };
    let listed = |currency: &str, address: &str, tag: Option<&str>| WithdrawalAddress {
        currency: currency.into(),
        net_type: Some(currency.into()),
        address: address.into(),
        secondary_address: tag.map(Into::into),
        registered_at: None,
    };
    let day = 24 * 60;
    let mut old_cancelled = w("old-cancelled", "ETH", "1", -9 * day, Some("0xabc"));
    old_cancelled.state = "CANCELLED".into();
    old_cancelled.status = respond::exchange::TransferStatus::Failed;
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        withdrawals: vec![
            w("old", "BTC", "0.01", -30 * day, Some("bc1-own")),
            w("own", "BTC", "0.1", 1, Some("bc1-own")),
            w("new", "BTC", "0.1", 2, Some("bc1-other")),
            w("blind", "BTC", "0.1", 3, None),
            // The attacker's probe, then the real withdrawal to the same address.
            w("probe", "BTC", "0.001", 4, Some("bc1-thief")),
            w("main", "BTC", "5", 6, Some("bc1-thief")),
            old_cancelled,
            w("eth", "ETH", "1", 7, Some("0xabc")),
            // A shared deposit address told apart by a memo the withdrawal list omits.
            w("old-xrp", "XRP", "10", -20 * day, Some("rShared")),
            w("xrp", "XRP", "5000", 8, Some("rShared")),
        ],
        withdrawal_addresses: vec![
            listed("BTC", "bc1-own", None),
            listed("BTC", "bc1-other", None),
            listed("BTC", "bc1-thief", None),
            listed("ETH", "0xabc", None),
            listed("XRP", "rShared", Some("1234")),
        ],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    assert!(verdict(&r, &input, "sell-eth").flagged);
    let t = |id: &str| r.transfers.iter().find(|t| t.transfer_id == id).unwrap();
    let own = t("own");
    assert!(!own.flagged, "{:?}", own.rules);
    assert!(
        own.rules
            .iter()
            .any(|h| h.rule == "R13" && h.reason.contains("used before")),
        "the timing is still reported for review: {:?}",
        own.rules
    );
    for id in ["new", "blind", "probe", "main", "eth", "xrp"] {
        assert!(t(id).flagged, "{id}: {:?}", t(id).rules);
    }
    for id in ["old", "old-cancelled", "old-xrp"] {
        assert!(!t(id).flagged, "{id}: {:?}", t(id).rules);
    }
}

// ---------------------------------------------------------------------------------------
// Issue 17: detection that holds on attack shapes the built-in scenarios never showed, and
// never blames the user's own trades.

/// `n` bot limit orders on KRW-BTC at 100,000,000 (0.001 each), every 10 minutes from t0, with
/// counter identifiers `grid-1`…`grid-n`, all in the log (unless cut by `log_until`).
fn grid_history(n: u32, log_until: Option<DateTime<Utc>>) -> (Vec<Order>, Vec<BotLogEntry>) {
    let mut orders = Vec::new();
    let mut entries = Vec::new();
    for k in 1..=n {
        let t = t0() + Duration::minutes(10 * i64::from(k));
        let id = format!("grid-order-{k}");
        let ident = format!("grid-{k}");
        let side = if k % 2 == 0 { Side::Buy } else { Side::Sell };
        let o = order(
            &id,
            Some(&ident),
            "KRW-BTC",
            side,
            "limit",
            Some("100000000"),
            "0.001",
            "100000",
            t,
        );
        if log_until.map_or(true, |u| t <= u) {
            entries.push(entry(u64::from(k) + 1, Some(&id), Some(&ident), &o));
        }
        orders.push(o);
    }
    (orders, entries)
}

fn candle_map(list: &[(&str, &str, DateTime<Utc>)]) -> BTreeMap<String, Vec<Candle>> {
    list.iter()
        .map(|(m, close, from)| {
            (
                m.to_string(),
                candles(m, close, "100000000000", *from, 24 * 60),
            )
        })
        .collect()
}

fn bal(currency: &str, amount: &str) -> Balance {
    Balance {
        currency: currency.into(),
        free: dec(amount),
        locked: Decimal::ZERO,
        avg_buy_price: None,
        unit_currency: None,
    }
}

/// Whatever the input: no order is `high` with a score below the flag score.
fn assert_no_high_below_the_flag_score(r: &AnalysisResult) {
    for v in &r.verdicts {
        if v.confidence == Confidence::High {
            assert!(v.score >= r.thresholds.flag_score, "{:?}", v.rules);
        }
    }
}

#[test]
fn a_limit_bid_far_above_the_market_is_intent_even_when_filled_near_fair() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(9);
    // A limit bid placed at 2.5× with the bot's identifier shape; the book filled it at 101.
    orders.push(order(
        "high-bid",
        Some("bot-000fabcd"),
        "KRW-MOCA",
        Side::Buy,
        "limit",
        Some("250"),
        "1000",
        "101000",
        at,
    ));
    let mut input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: candle_map(&[("KRW-MOCA", "100", at - Duration::hours(2))]),
        ..Default::default()
    };
    for with_log in [true, false] {
        if !with_log {
            input.bot_logs.clear();
        }
        let r = analyze(&input, &Thresholds::default());
        let v = verdict(&r, &input, "high-bid");
        let r15 = v.rules.iter().find(|h| h.rule == "R15");
        assert!(
            r15.is_some_and(|h| h.weight >= 1.0 && h.reason.contains("2.50×")),
            "log {with_log}: {:?}",
            v.rules
        );
        assert!(!v.rules.iter().any(|h| h.rule == "R4"), "filled near fair");
        assert_eq!(
            v.confidence,
            Confidence::High,
            "log {with_log}: {:?}",
            v.rules
        );
        assert_no_high_below_the_flag_score(&r);
    }
}

/// Four completed 0.01 BTC withdrawals `cold-1`…`cold-4`, `every_days` apart before `at`
/// (Upbit's list gives no address).
fn cold_wallet_uses(at: DateTime<Utc>, every_days: i64) -> Vec<Transfer> {
    (1..=4)
        .map(|k| {
            withdrawal(
                &format!("cold-{k}"),
                "BTC",
                "0.01",
                at - Duration::days(every_days * k),
            )
        })
        .collect()
}

#[test]
fn a_withdrawal_only_thief_is_flagged_without_any_order_and_the_cold_wallet_is_review() {
    // Upbit's withdrawal list names no address: the only ETH address on the allowlist is the
    // destination, never used before; the BTC cold wallet is the only BTC address and took
    // four completed withdrawals months ago.
    let at = t0() + Duration::days(200);
    let listed = |currency: &str, address: &str| WithdrawalAddress {
        currency: currency.into(),
        net_type: Some(currency.into()),
        address: address.into(),
        secondary_address: None,
        registered_at: None,
    };
    let mut ws = cold_wallet_uses(at, 30);
    ws.push(withdrawal("eth-thief", "ETH", "1.2", at));
    ws.push(withdrawal(
        "own-move",
        "BTC",
        "0.05",
        at + Duration::minutes(20),
    ));
    let input = AnalysisInput {
        withdrawals: ws,
        withdrawal_addresses: vec![listed("BTC", "bc1-cold"), listed("ETH", "0xfresh")],
        balances_start: vec![bal("ETH", "0.1"), bal("BTC", "0.05")],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    let t = |id: &str| r.transfers.iter().find(|t| t.transfer_id == id).unwrap();
    let thief = t("eth-thief");
    assert!(thief.flagged, "{:?}", thief.rules);
    assert_eq!(thief.confidence, Confidence::High);
    assert!(
        thief.rules[0].reason.contains("0xfresh") && thief.rules[0].reason.contains("inferred"),
        "{:?}",
        thief.rules
    );
    // It took 1.2 of the 1.3 ETH held: "most of it".
    assert!(thief.rules[0].reason.contains("92%"), "{:?}", thief.rules);
    let own = t("own-move");
    assert!(!own.flagged, "{:?}", own.rules);
    assert_eq!(own.confidence, Confidence::Review);
    assert!(own.rules[0].reason.contains("4 completed withdrawal(s)"));
    for k in 1..=4 {
        assert!(!t(&format!("cold-{k}")).flagged);
    }
    // 1.2 ETH is valued in the loss when an ETH price is known.
    assert!(r.suspicious_window.is_none(), "no order was flagged");
}

#[test]
fn a_known_address_added_to_the_allowlist_hours_ago_and_never_used_is_a_claim_on_its_own() {
    let at = t0() + Duration::days(3);
    let mut fresh = withdrawal("fresh", "BTC", "0.01", at);
    fresh.address = Some("bc1-fresh".into());
    let mut old = withdrawal("old-first-use", "BTC", "0.01", at - Duration::days(2));
    old.address = Some("bc1-old".into());
    let entry = |address: &str, registered: Option<DateTime<Utc>>| WithdrawalAddress {
        currency: "BTC".into(),
        net_type: Some("BTC".into()),
        address: address.into(),
        secondary_address: None,
        registered_at: registered,
    };
    let input = AnalysisInput {
        withdrawals: vec![old, fresh],
        withdrawal_addresses: vec![
            entry("bc1-old", Some(at - Duration::days(90))),
            entry("bc1-fresh", Some(at - Duration::hours(2))),
        ],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    let t = |id: &str| r.transfers.iter().find(|t| t.transfer_id == id).unwrap();
    assert!(t("fresh").flagged, "{:?}", t("fresh").rules);
    assert!(t("fresh").rules[0]
        .reason
        .contains("added to the allowlist"));
    // An address registered long ago, first used two days before anything else happened.
    assert!(
        !t("old-first-use").flagged,
        "{:?}",
        t("old-first-use").rules
    );
}

#[test]
fn a_market_sell_of_all_the_btc_far_beyond_the_bots_sizes_without_identifier_is_high() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(9);
    // 0.4 BTC (40,000,000) when the bot trades 100,000 per order and always sends an id.
    orders.push(order(
        "sell-all",
        None,
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.4",
        "39900000",
        at,
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: candle_map(&[("KRW-BTC", "100000000", at - Duration::hours(2))]),
        balances_start: vec![bal("BTC", "0"), bal("KRW", "39900000")],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "sell-all");
    let rules = rules_of(&r, &input, "sell-all");
    for rule in ["R1", "R11", "R12", "R16"] {
        assert!(rules.contains(&rule.to_string()), "{rule}: {rules:?}");
    }
    assert!(v.rules.iter().any(|h| h.rule == "R11" && h.weight >= 0.5));
    assert!(v.user_trade.is_none(), "{:?}", v.user_trade);
    assert_eq!(v.confidence, Confidence::High, "{:?}", v.rules);
}

/// A pump into KRW-MOCA at 3× after market sells of BTC and ETH, plus the owner's own fair
/// trades around it: a market sell long before, a limit sell that never filled, a sell after
/// the pump, and a rebalancing (two assets sold, a held one bought at the market's price).
fn pump_with_user_trades() -> AnalysisInput {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(9);
    let mut push = |id: &str,
                    market: &str,
                    side: Side,
                    native: &str,
                    p: Option<&str>,
                    vol: &str,
                    funds: &str,
                    t: DateTime<Utc>| {
        orders.push(order(id, None, market, side, native, p, vol, funds, t));
    };
    // The thief: liquidation, then the pump.
    push(
        "liq-btc",
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.3",
        "29900000",
        at,
    );
    push(
        "liq-eth",
        "KRW-ETH",
        Side::Sell,
        "market",
        None,
        "4",
        "19900000",
        at + Duration::seconds(40),
    );
    for k in 0..6 {
        let price = 100 + 40 * k;
        push(
            &format!("pump-{k}"),
            "KRW-MOCA",
            Side::Buy,
            "price",
            Some("6000000"),
            &format!("{}", 6_000_000 / price),
            "6000000",
            at + Duration::seconds(90 + 30 * k),
        );
    }
    // The owner: a market sell 25 minutes before, a limit sell far above the market that
    // never filled, a sell after the pump, and a rebalancing an hour before.
    push(
        "own-xrp-sell",
        "KRW-XRP",
        Side::Sell,
        "market",
        None,
        "200",
        "620000",
        at - Duration::minutes(25),
    );
    let mut unfilled = order(
        "own-limit-sell",
        None,
        "KRW-XRP",
        Side::Sell,
        "limit",
        Some("3200"),
        "100",
        "0",
        at - Duration::minutes(5),
    );
    unfilled.executed_volume = Decimal::ZERO;
    unfilled.executed_funds = None;
    unfilled.state = OrderState::Open;
    orders.push(unfilled);
    let mut push = |id: &str,
                    market: &str,
                    side: Side,
                    native: &str,
                    p: Option<&str>,
                    vol: &str,
                    funds: &str,
                    t: DateTime<Utc>| {
        orders.push(order(id, None, market, side, native, p, vol, funds, t));
    };
    push(
        "own-after",
        "KRW-XRP",
        Side::Sell,
        "market",
        None,
        "150",
        "465000",
        at + Duration::minutes(12),
    );
    push(
        "rebal-btc",
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.01",
        "1000000",
        at - Duration::minutes(70),
    );
    push(
        "rebal-eth",
        "KRW-ETH",
        Side::Sell,
        "market",
        None,
        "0.2",
        "1000000",
        at - Duration::minutes(69),
    );
    push(
        "rebal-xrp",
        "KRW-XRP",
        Side::Buy,
        "limit",
        Some("3100"),
        "600",
        "1860000",
        at - Duration::minutes(67),
    );
    AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: candle_map(&[
            ("KRW-BTC", "100000000", at - Duration::hours(3)),
            ("KRW-ETH", "5000000", at - Duration::hours(3)),
            ("KRW-XRP", "3100", at - Duration::hours(3)),
            ("KRW-MOCA", "100", at - Duration::hours(3)),
        ]),
        balances_start: vec![
            bal("KRW", "100000"),
            bal("BTC", "0.05"),
            bal("ETH", "1"),
            bal("XRP", "1000"),
            bal("MOCA", "250000"),
        ],
        ..Default::default()
    }
}

#[test]
fn liquidation_is_judged_per_market_and_in_time_and_never_takes_the_owners_sells() {
    let mut input = pump_with_user_trades();
    for with_log in [true, false] {
        if !with_log {
            input.bot_logs.clear();
        }
        let r = analyze(&input, &Thresholds::default());
        for id in ["liq-btc", "liq-eth", "pump-0", "pump-3", "pump-5"] {
            let v = verdict(&r, &input, id);
            assert!(
                v.rules.iter().any(|h| h.rule == "R7"),
                "{id}: {:?}",
                v.rules
            );
            assert_eq!(
                v.confidence,
                Confidence::High,
                "log {with_log} {id}: {:?}",
                v.rules
            );
        }
        // A market sell long before, an unfilled limit sell, a sell after the last buy, and a
        // rebalancing into a coin bought at the market's price: none funded the pump.
        for id in [
            "own-xrp-sell",
            "own-limit-sell",
            "own-after",
            "rebal-btc",
            "rebal-eth",
            "rebal-xrp",
        ] {
            let v = verdict(&r, &input, id);
            assert!(
                !v.rules.iter().any(|h| h.rule == "R7"),
                "log {with_log} {id}: {:?}",
                v.rules
            );
            assert!(
                v.confidence <= Confidence::Review,
                "log {with_log} {id}: {:?}",
                v.rules
            );
        }
        assert_no_high_below_the_flag_score(&r);
    }
}

/// The owner closing a whole position by hand hours before the incident (fair price, no
/// identifier, far above the bot's sizes) is kept at review; the thief's near-total sales
/// during the incident are still claimed.
#[test]
fn the_owners_near_total_sale_before_the_incident_stays_review() {
    let mut input = pump_with_user_trades();
    let at = t0() + Duration::hours(9);
    input.orders.push(order(
        "own-close-seol",
        None,
        "KRW-SEOL",
        Side::Sell,
        "market",
        None,
        "1000",
        "20000000",
        at - Duration::hours(6),
    ));
    input.balances_start.push(bal("SEOL", "0"));
    input.candles.extend(candle_map(&[(
        "KRW-SEOL",
        "20000",
        at - Duration::hours(9),
    )]));
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "own-close-seol");
    assert!(
        v.rules
            .iter()
            .any(|h| h.rule == "R11" && h.reason.contains("~100% of what the account held")),
        "{:?}",
        v.rules
    );
    assert_eq!(v.confidence, Confidence::Review, "{:?}", v.rules);
    assert!(v.user_trade.is_some(), "{:?}", v.rules);
    for id in ["liq-btc", "liq-eth"] {
        assert_eq!(verdict(&r, &input, id).confidence, Confidence::High, "{id}");
    }
}

#[test]
fn the_owners_fair_hand_trades_stay_review_and_say_why() {
    let input = pump_with_user_trades();
    let r = analyze(&input, &Thresholds::default());
    for id in [
        "own-xrp-sell",
        "own-after",
        "rebal-btc",
        "rebal-eth",
        "rebal-xrp",
    ] {
        let v = verdict(&r, &input, id);
        assert_eq!(v.confidence, Confidence::Review, "{id}: {:?}", v.rules);
        let why = v
            .user_trade
            .as_deref()
            .unwrap_or_else(|| panic!("{id}: no explanation"));
        assert!(
            why.contains("no identifier") && why.contains("not claimed"),
            "{why}"
        );
    }
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("look like your own web or app trades")));
    // The thief's liquidation is not the owner's: it sold most of each holding.
    assert!(verdict(&r, &input, "liq-btc").user_trade.is_none());
}

/// [`pump_with_user_trades`] plus one order of the owner's, with a reference for KRW-SEOL and
/// KRW-SOL and no SOL left at the end (the balances are the snapshot's); `keep_past` keeps the owner's rebalancing an hour before the pump
/// (their earlier hand trades, in KRW-ETH and KRW-XRP beyond the bot's KRW-BTC).
fn pump_plus(extra: Order, keep_past: bool) -> AnalysisInput {
    let mut input = pump_with_user_trades();
    if !keep_past {
        input.orders.retain(|o| !o.id.starts_with("rebal-"));
    }
    input.orders.push(extra);
    let at = t0() + Duration::hours(9);
    input.candles.extend(candle_map(&[
        ("KRW-SEOL", "1280", at - Duration::hours(3)),
        ("KRW-SOL", "200000", at - Duration::hours(3)),
    ]));
    input.balances_start.push(bal("SOL", "0"));
    input
}

/// The owner's first buy of a coin new to the account, by hand at the market's price in a
/// market nobody pumped, a quarter of an hour after the pump, from an owner seen trading
/// beyond the bot's markets by hand: review, with the reason. The same buy 5% above the
/// market, or from an owner never seen trading by hand, is claimed.
#[test]
fn a_new_coin_bought_by_hand_at_the_markets_price_apart_from_the_pump_stays_review() {
    let at = t0() + Duration::hours(9) + Duration::minutes(15);
    // 800 SEOL at 1282 (+0.2%) or at 1344 (+5%).
    let buy = |funds: &str| {
        order(
            "own-seol",
            None,
            "KRW-SEOL",
            Side::Buy,
            "price",
            Some(funds),
            "800",
            funds,
            at,
        )
    };
    let input = pump_plus(buy("1025600"), true);
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "own-seol");
    assert_eq!(v.confidence, Confidence::Review, "{:?}", v.rules);
    let why = v.user_trade.as_deref().unwrap_or_else(|| panic!("{v:?}"));
    assert!(
        why.contains("SEOL, new to the account") && why.contains("KRW-XRP"),
        "{why}"
    );
    // The thief's orders are still claimed.
    for id in ["liq-btc", "pump-0", "pump-5"] {
        assert_eq!(verdict(&r, &input, id).confidence, Confidence::High, "{id}");
    }
    for (input, case) in [
        (pump_plus(buy("1075200"), true), "5% above the market"),
        (pump_plus(buy("1025600"), false), "no earlier hand trades"),
    ] {
        let r = analyze(&input, &Thresholds::default());
        let v = verdict(&r, &input, "own-seol");
        assert!(v.user_trade.is_none(), "{case}: {:?}", v.user_trade);
        assert_eq!(v.confidence, Confidence::High, "{case}: {:?}", v.rules);
    }
}

/// A buy by hand four times larger than the owner's largest earlier one, at the market's
/// price in a coin the account held and nobody pumped: review, saying it is larger than usual.
/// The same buy in the pumped market is claimed.
#[test]
fn a_large_fair_buy_in_a_market_nobody_pumped_stays_review() {
    let at = t0() + Duration::hours(9) + Duration::minutes(20);
    let input = pump_plus(
        order(
            "own-xrp-big",
            None,
            "KRW-XRP",
            Side::Buy,
            "price",
            Some("8060000"),
            "2600",
            "8060000",
            at,
        ),
        true,
    );
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "own-xrp-big");
    assert_eq!(v.confidence, Confidence::Review, "{:?}", v.rules);
    let why = v.user_trade.as_deref().expect("explained");
    assert!(why.contains("larger than usual"), "{why}");
    let input = pump_plus(
        order(
            "own-moca-big",
            None,
            "KRW-MOCA",
            Side::Buy,
            "price",
            Some("8060000"),
            "80600",
            "8060000",
            at,
        ),
        true,
    );
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "own-moca-big");
    assert!(v.user_trade.is_none(), "{:?}", v.user_trade);
    assert_eq!(v.confidence, Confidence::High, "{:?}", v.rules);
}

/// The owner selling a whole holding by hand at the market's price 50 minutes before the
/// thief's liquidation (inside the reference window before it, far from it in time): review.
/// The same sale 11 minutes before the liquidation (a thief pausing just past R7's 10-minute
/// chain gap) or 8 minutes after the last pump buy is too close to the incident, and claimed.
#[test]
fn a_whole_holding_sold_by_hand_long_before_the_liquidation_stays_review() {
    let at = t0() + Duration::hours(9);
    let sell = |t: DateTime<Utc>| {
        order(
            "own-sol",
            None,
            "KRW-SOL",
            Side::Sell,
            "market",
            None,
            "50",
            "10000000",
            t,
        )
    };
    let input = pump_plus(sell(at - Duration::minutes(50)), true);
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "own-sol");
    assert_eq!(v.confidence, Confidence::Review, "{:?}", v.rules);
    assert!(
        v.rules
            .iter()
            .any(|h| h.reason.contains("~100% of what the account held")),
        "{:?}",
        v.rules
    );
    assert!(v.user_trade.is_some(), "{:?}", v.rules);
    for t in [at - Duration::minutes(11), at + Duration::minutes(12)] {
        let input = pump_plus(sell(t), true);
        let r = analyze(&input, &Thresholds::default());
        let v = verdict(&r, &input, "own-sol");
        assert!(
            !v.rules.iter().any(|h| h.rule == "R7"),
            "{t}: not in the chain: {:?}",
            v.rules
        );
        assert!(v.user_trade.is_none(), "{t}: {:?}", v.user_trade);
        assert_eq!(v.confidence, Confidence::High, "{t}: {:?}", v.rules);
    }
}

/// Without the allowlist (a key that may not read it, as on Bybit or KuCoin), the first
/// withdrawal in the export to the owner's cold wallet, months before the investigation
/// window (the history read only as the baseline), is the owner's first use of it: listed, not
/// claimed, and it establishes the wallet for its later uses. A never-used address inside the
/// window is claimed, before the incident as during it.
#[test]
fn without_an_allowlist_the_first_withdrawal_in_the_export_months_before_is_not_a_claim() {
    let at = t0() + Duration::hours(9);
    let to = |id: &str, address: &str, t: DateTime<Utc>| {
        let mut w = withdrawal(id, "BTC", "0.001", t);
        w.address = Some(address.into());
        w
    };
    let mut input = pump_with_user_trades();
    input.withdrawals = vec![
        to("cold-1", "bc1-cold", at - Duration::days(150)),
        to("cold-2", "bc1-cold", at - Duration::days(60)),
        to("early", "bc1-early", at - Duration::days(2)),
        to("thief", "bc1-thief", at + Duration::minutes(5)),
    ];
    input.window = Some(Window {
        from: at - Duration::days(7),
        to: at + Duration::hours(1),
    });
    assert!(input.withdrawal_addresses.is_empty());
    let r = analyze(&input, &Thresholds::default());
    let t = |id: &str| r.transfers.iter().find(|t| t.transfer_id == id).unwrap();
    let first = t("cold-1");
    assert!(!first.flagged, "{:?}", first.rules);
    assert_eq!(first.confidence, Confidence::None, "{:?}", first.rules);
    assert!(
        first.rules[0].reason.contains("allowlist unknown")
            && first.rules[0].reason.contains("listed, not claimed"),
        "{:?}",
        first.rules
    );
    assert!(!t("cold-2").flagged, "{:?}", t("cold-2").rules);
    for id in ["early", "thief"] {
        let v = t(id);
        assert!(v.flagged, "{id}: {:?}", v.rules);
        assert!(
            v.rules[0]
                .reason
                .contains("inside the investigation window"),
            "{id}: {:?}",
            v.rules
        );
    }
    // A thief who only withdraws, once, a modest amount: found without any order.
    let lone = AnalysisInput {
        withdrawals: vec![
            to("cold-1", "bc1-cold", at - Duration::days(150)),
            to("lone", "bc1-thief", at),
        ],
        window: input.window,
        balances_start: vec![bal("BTC", "1")],
        ..Default::default()
    };
    let r = analyze(&lone, &Thresholds::default());
    let t = |id: &str| r.transfers.iter().find(|t| t.transfer_id == id).unwrap();
    assert!(t("lone").flagged, "{:?}", t("lone").rules);
    assert!(!t("cold-1").flagged, "{:?}", t("cold-1").rules);
}

#[test]
fn a_burst_elsewhere_does_not_make_the_owners_trade_in_that_minute_a_claim() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(9);
    // A live attacker's burst of 10 buys in KRW-MOCA within one minute, and the owner's fair
    // XRP buy in the same minute.
    for k in 0..10 {
        orders.push(order(
            &format!("burst-{k}"),
            None,
            "KRW-MOCA",
            Side::Buy,
            "price",
            Some("30000"),
            "100",
            "30000",
            at + Duration::seconds(5 * k),
        ));
    }
    orders.push(order(
        "own-xrp",
        None,
        "KRW-XRP",
        Side::Buy,
        "price",
        Some("310000"),
        "100",
        "310000",
        at + Duration::seconds(20),
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: candle_map(&[
            ("KRW-XRP", "3100", at - Duration::hours(3)),
            ("KRW-MOCA", "300", at - Duration::hours(3)),
        ]),
        balances_start: vec![bal("KRW", "5000000"), bal("XRP", "100")],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    assert!(verdict(&r, &input, "burst-0")
        .rules
        .iter()
        .any(|h| h.rule == "R6"));
    let own = verdict(&r, &input, "own-xrp");
    assert!(!own.rules.iter().any(|h| h.rule == "R6"), "{:?}", own.rules);
    assert!(own.confidence <= Confidence::Review, "{:?}", own.rules);
}

#[test]
fn learned_identifiers_generalise_counters() {
    // grid-1 … grid-999 learned; grid-1000 is the bot's next order, not a foreign id.
    let (mut orders, entries) = grid_history(999, None);
    let at = t0() + Duration::minutes(10 * 999 - 5);
    orders.push(order(
        "next",
        Some("grid-1000"),
        "KRW-BTC",
        Side::Buy,
        "limit",
        Some("100000000"),
        "0.001",
        "100000",
        at,
    ));
    orders.push(order(
        "foreign",
        Some("ccxt-7f3a9b"),
        "KRW-BTC",
        Side::Buy,
        "limit",
        Some("100000000"),
        "0.001",
        "100000",
        at,
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    assert!(!rules_of(&r, &input, "next").contains(&"R2".to_string()));
    assert!(rules_of(&r, &input, "foreign").contains(&"R2".to_string()));
    let p = r.identifier_pattern.as_deref().unwrap();
    assert!(p.contains("prefix `grid-`") && p.contains("counter"), "{p}");
    assert_ne!(verdict(&r, &input, "next").confidence, Confidence::High);
}

#[test]
fn orders_after_a_log_that_stops_early_are_not_covered_and_the_bots_own_are_never_high() {
    // The log was exported at grid-990; the bot went on to grid-1010. A thief pumped MOCA
    // after the cut.
    let cut = t0() + Duration::minutes(10 * 990);
    let (mut orders, entries) = grid_history(1010, Some(cut));
    let at = cut + Duration::minutes(100);
    for k in 0..4 {
        orders.push(order(
            &format!("pump-{k}"),
            None,
            "KRW-MOCA",
            Side::Buy,
            "price",
            Some("3000000"),
            &format!("{}", 3_000_000 / (300 + 100 * k)),
            "3000000",
            at + Duration::seconds(30 * k),
        ));
    }
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        candles: candle_map(&[
            ("KRW-BTC", "100000000", at - Duration::hours(4)),
            ("KRW-MOCA", "100", at - Duration::hours(4)),
        ]),
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    for k in 991..=1010 {
        let id = format!("grid-order-{k}");
        let v = verdict(&r, &input, &id);
        assert!(v.not_covered_by_log, "{id}");
        assert!(
            !v.rules.iter().any(|h| h.rule == "R1" || h.rule == "R2"),
            "{id}: {:?}",
            v.rules
        );
        assert_eq!(v.confidence, Confidence::None, "{id}: {:?}", v.rules);
    }
    for k in 0..4 {
        let v = verdict(&r, &input, &format!("pump-{k}"));
        assert!(v.not_covered_by_log);
        assert_eq!(v.confidence, Confidence::High, "pump-{k}: {:?}", v.rules);
    }
    assert!(
        r.notes.iter().any(|n| n.contains("not covered by the log")),
        "{:?}",
        r.notes
    );
    assert!(r.bot_log_coverage.is_some());
    assert_no_high_below_the_flag_score(&r);
}

#[test]
fn a_score_below_the_flag_score_is_never_high() {
    // An unmatched order in a burst (R1 + R6 = 0.9) carrying the bot's identifier shape: no
    // other evidence, so it stays review.
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(9);
    for k in 0..5 {
        orders.push(order(
            &format!("b-{k}"),
            Some(&format!("bot-00f0000{k}")),
            "KRW-BTC",
            Side::Buy,
            "limit",
            Some("100000000"),
            "0.001",
            "100000",
            at + Duration::seconds(5 * k),
        ));
    }
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    let v = verdict(&r, &input, "b-0");
    assert_eq!(rules_of(&r, &input, "b-0"), vec!["R1", "R6"]);
    assert!(v.score < 1.0);
    assert_eq!(v.confidence, Confidence::Review);
    assert_no_high_below_the_flag_score(&r);
}

#[test]
fn contra_round_trips_are_found_without_a_bot_log() {
    let (mut orders, _) = bot_history();
    let at = t0() + Duration::hours(11);
    for k in 0..5 {
        let t = at + Duration::seconds(60 * k);
        orders.push(order(
            &format!("c-buy-{k}"),
            None,
            "KRW-TOKI",
            Side::Buy,
            "limit",
            Some("38.1"),
            "10000",
            "381000",
            t,
        ));
        orders.push(order(
            &format!("c-sell-{k}"),
            None,
            "KRW-TOKI",
            Side::Sell,
            "limit",
            Some("35.9"),
            "10000",
            "359000",
            t + Duration::seconds(30),
        ));
    }
    let input = AnalysisInput {
        orders,
        candles: candle_map(&[("KRW-TOKI", "37", at - Duration::hours(3))]),
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    for k in 0..5 {
        for id in [format!("c-buy-{k}"), format!("c-sell-{k}")] {
            let v = verdict(&r, &input, &id);
            assert!(
                v.rules.iter().any(|h| h.rule == "R8"),
                "{id}: {:?}",
                v.rules
            );
            assert_eq!(v.confidence, Confidence::High, "{id}: {:?}", v.rules);
        }
    }
    assert!(
        r.verdicts[..60].iter().all(|v| !v.flagged),
        "the bot's orders"
    );
}

/// A thief who keeps buying the concentrated coin hours after the liquidation (the drill's live
/// attacker, when the scripted attack happened the previous night) is still concentrating:
/// those buys carry R7 too, so they are claimed, not left for review.
#[test]
fn buys_of_the_concentrated_coin_hours_later_continue_the_concentration() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    for (id, m, v, q) in [
        ("s1", "KRW-BTC", "0.5", "50000000"),
        ("s2", "KRW-ETH", "5", "20000000"),
    ] {
        orders.push(order(id, None, m, Side::Sell, "market", None, v, q, at));
    }
    orders.push(order(
        "buy",
        None,
        "KRW-NEW",
        Side::Buy,
        "limit",
        Some("100"),
        "600000",
        "60000000",
        at + Duration::seconds(40),
    ));
    for (n, id) in ["late1", "late2"].iter().enumerate() {
        orders.push(order(
            id,
            None,
            "KRW-NEW",
            Side::Buy,
            "price",
            None,
            "300",
            "30000",
            at + Duration::hours(4) + Duration::seconds(2 * n as i64),
        ));
    }
    // The same shape in a market the episode did not concentrate in stays as it was.
    orders.push(order(
        "other",
        None,
        "KRW-XRP",
        Side::Buy,
        "limit",
        Some("700"),
        "40",
        "28000",
        at + Duration::hours(4),
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    for id in ["late1", "late2"] {
        assert!(
            rules_of(&r, &input, id).contains(&"R7".to_string()),
            "{id}: {:?}",
            rules_of(&r, &input, id)
        );
        assert!(verdict(&r, &input, id).flagged, "{id} must be high");
    }
    assert!(!rules_of(&r, &input, "other").contains(&"R7".to_string()));
}

/// The later episode's sell of the concentrated coin, among its buys, is the same churn the
/// first episode's sells there were; a later episode that only sells it is not claimed.
#[test]
fn a_later_episode_churning_the_concentrated_coin_continues_it_but_a_lone_exit_does_not() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    for (id, m, v, q) in [
        ("s1", "KRW-BTC", "0.5", "50000000"),
        ("s2", "KRW-ETH", "5", "20000000"),
    ] {
        orders.push(order(id, None, m, Side::Sell, "market", None, v, q, at));
    }
    orders.push(order(
        "buy",
        None,
        "KRW-NEW",
        Side::Buy,
        "limit",
        Some("100"),
        "600000",
        "60000000",
        at + Duration::seconds(40),
    ));
    let later = at + Duration::hours(4);
    orders.push(order(
        "late_buy",
        None,
        "KRW-NEW",
        Side::Buy,
        "price",
        None,
        "300",
        "30000",
        later,
    ));
    orders.push(order(
        "late_sell",
        None,
        "KRW-NEW",
        Side::Sell,
        "market",
        None,
        "200",
        "20000",
        later + Duration::seconds(3),
    ));
    let exit = at + Duration::hours(9);
    orders.push(order(
        "exit",
        None,
        "KRW-NEW",
        Side::Sell,
        "market",
        None,
        "1000",
        "90000",
        exit,
    ));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    for id in ["late_buy", "late_sell"] {
        assert!(
            verdict(&r, &input, id).flagged,
            "{id}: {:?}",
            rules_of(&r, &input, id)
        );
    }
    assert!(!rules_of(&r, &input, "exit").contains(&"R7".to_string()));
}

/// The `noisy` drill at some hours of the day: the user's own XRP sell by hand, 56 minutes
/// before the thief's BTC liquidation and pump into a new coin, fell in the same reference
/// window and was taken for part of the liquidation. A liquidation is a chain of sells each
/// minutes from the next act, ending at the buys it funds; a sell that never filled, or one
/// placed after the last buy, funded nothing either.
#[test]
fn only_sells_chained_close_to_the_buys_they_funded_are_the_liquidation() {
    let (mut orders, entries) = bot_history();
    let at = t0() + Duration::hours(12);
    let manual = |id: &str, t| {
        order(
            id,
            None,
            "KRW-XRP",
            Side::Sell,
            "limit",
            Some("3100"),
            "500",
            "1550000",
            t,
        )
    };
    // The owner trades XRP by hand in the web UI, in these sizes.
    for h in [30, 54] {
        orders.push(manual(&format!("past{h}"), at - Duration::hours(h)));
    }
    orders.push(manual("early", at - Duration::minutes(56)));
    let mut unfilled = manual("unfilled", at - Duration::seconds(30));
    unfilled.state = OrderState::Cancelled;
    unfilled.executed_volume = Decimal::ZERO;
    unfilled.executed_funds = Some(Decimal::ZERO);
    unfilled.remaining_volume = unfilled.volume;
    orders.push(unfilled);
    orders.push(order(
        "sell",
        None,
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.5",
        "50000000",
        at,
    ));
    for k in 0..4 {
        orders.push(order(
            &format!("buy{k}"),
            None,
            "KRW-NEW",
            Side::Buy,
            "limit",
            Some("100"),
            "100000",
            "10000000",
            at + Duration::seconds(40 * (k + 1)),
        ));
    }
    orders.push(manual("after", at + Duration::minutes(20)));
    let input = AnalysisInput {
        orders,
        bot_logs: vec![log(entries)],
        ..Default::default()
    };
    let r = analyze(&input, &Thresholds::default());
    for id in ["sell", "buy0", "buy3"] {
        assert!(
            rules_of(&r, &input, id).contains(&"R7".to_string()),
            "{id}: {:?}",
            rules_of(&r, &input, id)
        );
        assert!(verdict(&r, &input, id).flagged, "{id}");
    }
    for id in ["early", "unfilled", "after"] {
        assert!(
            !rules_of(&r, &input, id).contains(&"R7".to_string()),
            "{id}: {:?}",
            rules_of(&r, &input, id)
        );
        assert!(
            !verdict(&r, &input, id).flagged,
            "{id}: {:?}",
            verdict(&r, &input, id)
        );
    }
}

#[test]
fn the_cold_wallet_named_by_the_allowlist_keeps_the_owners_sells_out_of_liquidate_then_withdraw() {
    // The legit-zoo shape: the owner sells some BTC by hand half an hour before the thief's
    // market sell, then moves BTC to the cold wallet four completed withdrawals used, the last
    // 60 days earlier (long before a 7-day order window, but on the withdrawal pages read).
    // Upbit's withdrawal list names no address: with the snapshot's allowlist the destination
    // is the only BTC address, an established one, so there is no "liquidate then withdraw"
    // and the owner's sell is never claimed. Without the allowlist the same destination is
    // unknown and both sells are taken for a liquidation followed by a cash-out: that is why
    // the snapshot is part of every playbook that judges withdrawals.
    let at = t0() + Duration::hours(12);
    let mut ws = cold_wallet_uses(at, 60);
    ws.push(withdrawal("own", "BTC", "0.03", at + Duration::minutes(20)));
    let mut input = sell_eth_then_withdraw(Decimal::ZERO, ws);
    input.orders.push(order(
        "own-sell",
        None,
        "KRW-BTC",
        Side::Sell,
        "market",
        None,
        "0.003",
        "300000",
        at - Duration::minutes(30),
    ));
    let cold = WithdrawalAddress {
        currency: "BTC".into(),
        net_type: Some("BTC".into()),
        address: "bc1-cold".into(),
        secondary_address: None,
        registered_at: None,
    };
    let then_withdraw = |r: &AnalysisResult, input: &AnalysisInput, id: &str| {
        verdict(r, input, id)
            .rules
            .iter()
            .any(|h| h.rule == "R7" && h.reason.contains("liquidate then withdraw"))
    };
    let transfer = |r: &AnalysisResult, id: &str| {
        r.transfers
            .iter()
            .find(|t| t.transfer_id == id)
            .unwrap()
            .clone()
    };

    // Without the allowlist: the destination is unknown, and the owner is blamed.
    let r = analyze(&input, &Thresholds::default());
    assert!(then_withdraw(&r, &input, "own-sell"));
    assert!(verdict(&r, &input, "own-sell").flagged);
    assert!(transfer(&r, "own").flagged);

    // With it: the cold wallet is established, its withdrawal review, and neither sell is
    // taken for a liquidation followed by a cash-out.
    input.withdrawal_addresses = vec![cold];
    let r = analyze(&input, &Thresholds::default());
    assert_no_high_below_the_flag_score(&r);
    for id in ["own-sell", "sell-eth"] {
        assert!(
            !then_withdraw(&r, &input, id),
            "{id}: {:?}",
            rules_of(&r, &input, id)
        );
    }
    let own_sell = verdict(&r, &input, "own-sell");
    assert!(!own_sell.flagged, "{:?}", own_sell.rules);
    let own = transfer(&r, "own");
    // No order is claimed, so there is no incident: the move to an established wallet is
    // the owner's own (not even review).
    assert!(!own.flagged, "{:?}", own.rules);
    assert_eq!(own.confidence, Confidence::None, "{:?}", own.rules);
}
