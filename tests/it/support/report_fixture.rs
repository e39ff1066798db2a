//! A realistic hand-built incident for the report tests: an Upbit account whose bot trades
//! KRW-BTC, hit on Christmas night by a liquidation (KRW-ETH sold) and a pump buy of an
//! illiquid coin (KRW-XYZ, flagged R1+R3+R4, two fills), plus a withdrawal to a new address.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use respond::analysis::*;
use respond::engine::journal::Journal;
use respond::exchange::*;
use respond::report::facts::IncidentInputs;
use respond::report::{Revocation, RunFacts, StepRecord, StepStatus};

/// An Upbit market by its symbol.
pub fn mkt(symbol: &str) -> Market {
    respond::exchange::upbit::market(symbol)
}

/// Parses a decimal literal.
pub fn d(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

pub fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 25, h, m, s).unwrap()
}

fn kst(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::FixedOffset::east_opt(32400).unwrap())
        .format("%Y-%m-%dT%H:%M:%S+09:00")
        .to_string()
}

fn prov(n: u32) -> Option<Arc<Provenance>> {
    Some(Arc::new(Provenance {
        raw_file: format!("raw/{n:06}-GET-v1_orders_closed.body"),
        raw_sha256: format!("{n:064x}"),
    }))
}

#[allow(clippy::too_many_arguments)]
pub fn order(
    id: &str,
    client_id: Option<&str>,
    market: &str,
    side: Side,
    native: &str,
    price: Option<&str>,
    volume: Option<&str>,
    executed: &str,
    funds: Option<&str>,
    at: DateTime<Utc>,
) -> Order {
    Order {
        id: id.into(),
        client_id: client_id.map(Into::into),
        market: mkt(market),
        side,
        order_type: if native == "limit" {
            OrderType::Limit
        } else {
            OrderType::Market
        },
        native_type: native.into(),
        state: OrderState::Done,
        // Upbit's `price` orders give the amount to spend, not a limit.
        price: price.filter(|_| native != "price").map(d),
        quote_amount: price.filter(|_| native == "price").map(d),
        volume: volume.map(d),
        remaining_volume: Some(Decimal::ZERO),
        executed_volume: d(executed),
        executed_funds: funds.map(d),
        paid_fee: d("0.5"),
        created_at: at,
        created_at_local: kst(at),
        trades_count: 1,
        provenance: prov(1),
    }
}

pub fn fill(
    id: &str,
    order_id: &str,
    market: &str,
    side: Side,
    price: &str,
    vol: &str,
    at: DateTime<Utc>,
) -> Fill {
    Fill {
        id: id.into(),
        order_id: order_id.into(),
        market: mkt(market),
        side,
        price: d(price),
        volume: d(vol),
        funds: d(price) * d(vol),
        fee: Some(d("0.05")),
        created_at: at,
        created_at_local: kst(at),
        provenance: prov(7),
    }
}

fn hit(rule: &str, weight: f64, reason: &str) -> RuleHit {
    RuleHit {
        rule: rule.into(),
        weight,
        reason: reason.into(),
    }
}

/// A verdict for the order at the same index of `input().orders` (named for the reader).
fn verdict(_order_id: &str, kind: MatchKind, row: Option<(usize, u64)>) -> OrderVerdict {
    OrderVerdict {
        match_kind: kind,
        matched_row: row,
        ..OrderVerdict::unflagged()
    }
}

pub const KEY: &str = "abcd...wxyz";
pub const PUMP_ORDER: &str = "9c1e5d7a-0004-4f1b-8a55-attack000004";
pub const DUMP_ORDER: &str = "9c1e5d7a-0003-4f1b-8a55-attack000003";

pub fn input() -> AnalysisInput {
    let orders = vec![
        order(
            "7f3a-0001",
            Some("bot-0001"),
            "KRW-BTC",
            Side::Buy,
            "limit",
            Some("140000000"),
            Some("0.001"),
            "0.001",
            Some("140000"),
            t(10, 0, 0),
        ),
        order(
            "7f3a-0002",
            Some("bot-0002"),
            "KRW-BTC",
            Side::Sell,
            "limit",
            Some("141000000"),
            Some("0.001"),
            "0.001",
            Some("141000"),
            t(11, 0, 0),
        ),
        order(
            DUMP_ORDER,
            None,
            "KRW-ETH",
            Side::Sell,
            "market",
            None,
            Some("2"),
            "2",
            Some("7000000"),
            t(13, 29, 5),
        ),
        order(
            PUMP_ORDER,
            None,
            "KRW-XYZ",
            Side::Buy,
            "price",
            Some("700000"),
            None,
            "2000",
            Some("700000"),
            t(13, 30, 0),
        ),
    ];
    let fills = vec![
        fill(
            "f-0001",
            "7f3a-0001",
            "KRW-BTC",
            Side::Buy,
            "140000000",
            "0.001",
            t(10, 0, 1),
        ),
        fill(
            "f-0004a",
            PUMP_ORDER,
            "KRW-XYZ",
            Side::Buy,
            "340",
            "1000",
            t(13, 30, 0),
        ),
        fill(
            "f-0004b",
            PUMP_ORDER,
            "KRW-XYZ",
            Side::Buy,
            "360",
            "1000",
            t(13, 30, 1),
        ),
    ];
    let withdrawal = Transfer {
        id: "w-0001".into(),
        kind: TransferKind::Withdrawal,
        currency: "XYZ".into(),
        net_type: Some("XYZ".into()),
        txid: Some("0xdeadbeef".into()),
        state: "DONE".into(),
        status: respond::exchange::TransferStatus::Completed,
        amount: d("1500"),
        fee: Some(d("1")),
        address: Some("xyz1attackeraddress".into()),
        created_at: t(13, 40, 0),
        created_at_local: kst(t(13, 40, 0)),
        done_at: Some(t(13, 41, 0)),
        is_cancelable: false,
        provenance: prov(9),
    };
    let deposit = Transfer {
        id: "d-0001".into(),
        kind: TransferKind::Deposit,
        currency: "KRW".into(),
        net_type: None,
        txid: None,
        state: "ACCEPTED".into(),
        status: respond::exchange::TransferStatus::Completed,
        amount: d("1000000"),
        fee: None,
        address: None,
        created_at: t(1, 0, 0),
        created_at_local: kst(t(1, 0, 0)),
        done_at: Some(t(1, 0, 5)),
        is_cancelable: false,
        provenance: prov(10),
    };
    let bal = |c: &str, free: &str| Balance {
        currency: c.into(),
        free: d(free),
        locked: Decimal::ZERO,
        avg_buy_price: None,
        unit_currency: Some("KRW".into()),
    };
    let mut candles = BTreeMap::new();
    candles.insert(
        "KRW-XYZ".to_string(),
        (0..12)
            .map(|i| {
                let p = if i < 9 { "100" } else { "350" };
                Candle {
                    market: mkt("KRW-XYZ"),
                    start: t(12, 0, 0) + chrono::Duration::minutes(10 * i),
                    open: d(p),
                    high: d(p),
                    low: d(p),
                    close: d(p),
                    volume: d("10"),
                    value: d("1000"),
                }
            })
            .collect(),
    );
    AnalysisInput {
        exchange: "upbit".into(),
        key_masked: KEY.into(),
        window: Some(Window {
            from: t(0, 0, 0),
            to: t(23, 59, 59),
        }),
        orders,
        fills,
        withdrawals: vec![withdrawal],
        deposits: vec![deposit],
        balances_start: vec![bal("KRW", "100000"), bal("ETH", "2")],
        balances_end: vec![bal("KRW", "0"), bal("XYZ", "500")],
        keys: vec![ApiKeyInfo {
            access_key_masked: KEY.into(),
            is_current: true,
            expire_at: Some(Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).unwrap()),
            scopes: Some(vec!["orders".into(), "withdraw".into()]),
            allowed_ips: Some(vec![]),
        }],
        permissions: None,
        withdrawal_addresses: vec![],
        candles,
        bot_logs: vec![BotLog {
            format: BotLogFormat::Generic,
            bundle_path: "bot/bot.csv".into(),
            sha256: "ab".repeat(32),
            entries: vec![],
            skipped: vec![SkippedRow {
                line: 7,
                reason: "price is not a number".into(),
            }],
            stopped: vec![],
        }],
        local_utc_offset_secs: 32400,
        markets: vec![],
    }
}

pub fn result() -> AnalysisResult {
    let mut dump = verdict(DUMP_ORDER, MatchKind::Unmatched, None);
    dump.rules = vec![hit(
        "R1",
        1.0,
        "no bot-log row has this order id, identifier or a fuzzy match",
    )];
    dump.score = 1.0;
    dump.confidence = Confidence::Review;
    dump.flagged = true;
    dump.reference_price = Some(d("4000000"));
    dump.deviation_pct = Some(d("-12.5"));
    dump.est_loss_quote = Some(d("1000000"));
    let mut pump = verdict(PUMP_ORDER, MatchKind::Unmatched, None);
    pump.rules = vec![
        hit("R1", 1.0, "no bot-log row matches"),
        hit("R3", 0.5, "the bot never traded KRW-XYZ"),
        hit("R4", 1.5, "bought at 3.5× the reference price 100"),
    ];
    pump.score = 3.0;
    pump.confidence = Confidence::High;
    pump.flagged = true;
    pump.reference_price = Some(d("100"));
    pump.deviation_pct = Some(d("250"));
    pump.est_loss_quote = Some(d("500000"));
    AnalysisResult {
        verdicts: vec![
            verdict("7f3a-0001", MatchKind::OrderId, Some((0, 2))),
            verdict("7f3a-0002", MatchKind::Identifier, Some((0, 3))),
            dump,
            pump,
        ],
        gaps: vec![BotLogGap {
            log: 0,
            line: 5,
            reason: "bot-log order 7f3a-0009 is not in the exchange's history".into(),
        }],
        transfers: vec![TransferVerdict {
            transfer_id: "w-0001".into(),
            rules: vec![hit(
                "R13",
                1.0,
                "withdrawal to an address not on the allowlist",
            )],
            flagged: true,
            confidence: Confidence::High,
        }],
        key_findings: vec![hit(
            "R14",
            0.0,
            "the key had no IP allowlist and withdrawal scope",
        )],
        loss: LossSummary {
            quote_currency: "KRW".into(),
            total: d("1650001"),
            overpayment: d("1500000"),
            withdrawn_value: d("150000"),
            fees: d("1"),
            unpriced: vec![],
            change_during_response: Some(d("8050000")),
            explanation: vec!["XYZ bought at 340–360 against a reference of 100".into()],
        },
        thresholds: Thresholds::default(),
        had_bot_log: true,
        suspicious_window: Some(Window {
            from: t(13, 29, 5),
            to: t(13, 40, 0),
        }),
        notes: vec!["fills fetched for flagged orders only".into()],
        identifier_pattern: Some("prefix `bot-`, 8 characters, [a-z0-9-]".into()),
        bot_log_coverage: None,
    }
}

pub fn facts() -> RunFacts {
    RunFacts {
        run_id: "20261225T133500Z-upbit-abcd...wxyz".into(),
        exchange: "upbit".into(),
        account_label: Some("main account".into()),
        key_masked: KEY.into(),
        tool_version: "0.1.0".into(),
        playbook_path: "builtin:upbit-leak".into(),
        playbook_sha256: "cd".repeat(32),
        started_at: t(13, 35, 0),
        finished_at: t(13, 50, 0),
        server_time_start: Some(ServerTime {
            server: t(13, 35, 0) + chrono::Duration::milliseconds(120),
            local: t(13, 35, 0),
            offset_ms: 120,
        }),
        server_time_end: None,
        investigation_window: Some(Window {
            from: t(0, 0, 0),
            to: t(23, 59, 59),
        }),
        reference_window: Some(Window {
            from: t(12, 0, 0),
            to: t(13, 0, 0),
        }),
        revocation: Revocation::Revoked {
            observed_at: t(13, 45, 12),
            evidence: "GET /v1/accounts → 401 invalid_access_key".into(),
            refused_with: Some("invalid_access_key".into()),
            accepted_at: Some(t(13, 35, 1)),
            deleted_by_api_at: None,
        },
        dry_run: false,
        steps: vec![
            StepRecord {
                id: "snapshot".into(),
                uses: "exchange.snapshot".into(),
                status: StepStatus::Ok,
                summary: "balances, 1 key, 0 open orders".into(),
                started_at: Some(t(13, 35, 1)),
                finished_at: Some(t(13, 35, 3)),
            },
            StepRecord {
                id: "verify_revoked".into(),
                uses: "exchange.verify_key_revoked".into(),
                status: StepStatus::Ok,
                summary: "key refused: invalid_access_key".into(),
                started_at: Some(t(13, 45, 10)),
                finished_at: Some(t(13, 45, 12)),
            },
        ],
        not_started: vec![],
        incident: IncidentInputs {
            account: Some("main account".into()),
            ..Default::default()
        },
        cancelled_orders: 0,
        proven_scopes: vec![],
        timestamps: vec![],
        history_markets: None,
    }
}

/// A megabyte of text.
pub fn megabyte() -> String {
    "A".repeat(1 << 20)
}

pub const HOSTILE_MARKET: &str = "KRW-<script>alert(1)</script>{{run.id}}|x";
pub const HOSTILE_ID: &str = "=cmd|' /C calc'!A0";

/// The same incident with attacker-chosen text everywhere the exchange lets them choose it.
pub fn hostile() -> (AnalysisInput, AnalysisResult) {
    let mut input = input();
    let mut result = result();
    for o in input.orders.iter_mut() {
        if o.id == PUMP_ORDER {
            o.market = mkt(HOSTILE_MARKET);
            o.client_id = Some(HOSTILE_ID.into());
            o.native_type = "price\x1b[2J\u{202E}".into();
        }
    }
    for f in input.fills.iter_mut() {
        if f.order_id == PUMP_ORDER {
            f.market = mkt(HOSTILE_MARKET);
        }
    }
    let c = input.candles.remove("KRW-XYZ").unwrap();
    input.candles.insert(HOSTILE_MARKET.into(), c);
    input.withdrawals[0].address = Some(format!(
        "@SUM(1+1)<img src=https://evil.example/x.png>{}",
        megabyte()
    ));
    input.orders[2].client_id = Some(format!("+{}", megabyte()).into());
    result
        .notes
        .push(format!("# heading\n`tick` {{{{#each x}}}} {}", megabyte()));
    result.verdicts[3].rules[1].reason =
        "</td><img src=x onerror=alert(1)><a href=\"https://evil.example\">x</a>".into();
    (input, result)
}

/// Writes a small journal (fixed times) into `dir`.
pub fn journal(dir: &std::path::Path) {
    let j = Journal::create(dir).unwrap();
    j.append_at(
        t(13, 35, 0),
        "run_start",
        serde_json::json!({"version": "0.1.0"}),
    )
    .unwrap();
    j.append_at(
        t(13, 35, 1),
        "step_start",
        serde_json::json!({"step": "snapshot"}),
    )
    .unwrap();
    j.append_at(
        t(13, 35, 3),
        "step_end",
        serde_json::json!({"step": "snapshot", "status": "ok"}),
    )
    .unwrap();
    j.append_at(t(13, 50, 0), "run_end", serde_json::json!({"status": "ok"}))
        .unwrap();
}
