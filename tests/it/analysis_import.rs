//! Bot-log import: every format from fixtures (freqtrade's SQLite built here), the bundle copy
//! and its hash, and the bad inputs (empty, binary, wrong columns, another exchange,
//! malformed rows with and without --skip-bad-rows).

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use respond::analysis::import::{detect, import, ImportError};
use respond::analysis::{BotLog, BotLogFormat};
use respond::exchange::Side;
use respond::fsutil::sha256_hex;
use respond::rundir::RunDir;
use rust_decimal::Decimal;

const UPBIT: &respond::exchange::Descriptor = &respond::exchange::upbit::DESCRIPTOR;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/botlogs")
        .join(name)
}

fn run_dir() -> (tempfile::TempDir, RunDir) {
    let t = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&t.path().join("run")).unwrap();
    (t, rd)
}

fn imp(path: &Path, skip: bool) -> Result<BotLog, ImportError> {
    let (_t, rd) = run_dir();
    import(UPBIT, path, None, skip, 0, &rd)
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn generic_csv_is_copied_hashed_and_normalized() {
    let path = fixture("generic.csv");
    assert_eq!(detect(&path).unwrap(), BotLogFormat::Generic);
    let (_t, rd) = run_dir();
    let log = import(UPBIT, &path, None, false, 2, &rd).unwrap();
    assert_eq!(log.bundle_path, "bot/3-generic.csv");
    let original = std::fs::read(&path).unwrap();
    let copy = std::fs::read(rd.path().join(&log.bundle_path)).unwrap();
    assert_eq!(copy, original, "the bundle copy is byte-identical");
    assert_eq!(log.sha256, sha256_hex(&original));
    assert_eq!(log.entries.len(), 4);
    let e = &log.entries[0];
    assert_eq!(e.log, 2);
    assert_eq!(e.line, 2);
    assert_eq!(e.identifier.as_deref(), Some("bot-00a1"));
    assert_eq!(e.side, Some(Side::Buy));
    assert_eq!(e.price, Some(dec("100000000")));
    assert_eq!(
        e.created_at,
        Some(
            Utc.with_ymd_and_hms(2026, 11, 20, 14, 3, 7).unwrap()
                + chrono::Duration::milliseconds(120)
        )
    );
    // +09:00 offset converted to UTC
    assert_eq!(log.entries[1].created_at, log.entries[0].created_at);
    assert_eq!(log.entries[1].side, Some(Side::Sell));
    // ccxt-style market, epoch ms, BUY upper case
    assert_eq!(
        log.entries[2].market.as_ref().map(|m| m.as_str()),
        Some("KRW-BTC")
    );
    assert_eq!(log.entries[2].order_id, None);
    assert_eq!(
        log.entries[2].created_at.unwrap().timestamp_millis(),
        1_763_647_387_120
    );
    // epoch seconds
    assert_eq!(
        log.entries[3].created_at.unwrap().timestamp(),
        1_763_647_387
    );
}

#[test]
fn hummingbot_current_and_2020_headers() {
    let log = imp(&fixture("hummingbot.csv"), false).unwrap();
    assert_eq!(log.format, BotLogFormat::Hummingbot);
    assert_eq!(log.entries.len(), 3);
    assert_eq!(
        log.entries[0].market.as_ref().map(|m| m.as_str()),
        Some("KRW-BTC")
    );
    assert_eq!(
        log.entries[0].identifier.as_deref(),
        Some("buy-BTC-KRW-1763647387000001")
    );
    assert_eq!(log.entries[0].order_id, None);
    assert_eq!(log.entries[2].side, Some(Side::Sell));
    assert_eq!(log.entries[2].ord_type.as_deref(), Some("limit"));
    assert_eq!(log.entries[1].volume, Some(dec("0.002")));

    let log = imp(&fixture("hummingbot2020.csv"), false).unwrap();
    assert_eq!(log.format, BotLogFormat::Hummingbot2020);
    assert_eq!(log.entries.len(), 2);
    assert_eq!(log.entries[1].side, Some(Side::Sell));
    assert_eq!(
        log.entries[0].created_at.unwrap().timestamp_millis(),
        1_600_000_000_123
    );
    assert_eq!(log.entries[1].price, Some(dec("12100000")));
}

#[test]
fn three_commas_deals_become_buy_and_sell_entries() {
    let log = imp(&fixture("threecommas.csv"), false).unwrap();
    assert_eq!(log.format, BotLogFormat::ThreeCommas);
    assert_eq!(
        log.entries.len(),
        3,
        "closed deal: buy + sell; open deal: buy"
    );
    assert_eq!(
        log.entries[0].market.as_ref().map(|m| m.as_str()),
        Some("KRW-BTC")
    );
    assert_eq!(log.entries[0].funds, Some(dec("300000")));
    assert_eq!(log.entries[1].side, Some(Side::Sell));
    assert_eq!(log.entries[1].funds, Some(dec("309000")));
    assert_eq!(
        log.entries[1].created_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 20, 18, 30, 0).unwrap())
    );
    assert!(log.entries.iter().all(|e| e.order_id.is_none()));
}

#[test]
fn freqtrade_sqlite_orders_table() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("tradesv3.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, ft_trade_id INTEGER, ft_order_side TEXT,
               ft_pair TEXT, ft_is_open BOOLEAN, order_id TEXT, status TEXT, symbol TEXT,
               order_type TEXT, side TEXT, price FLOAT, average FLOAT, amount FLOAT, filled FLOAT,
               remaining FLOAT, cost FLOAT, order_date DATETIME, order_filled_date DATETIME,
               order_update_date DATETIME);
             INSERT INTO orders VALUES (1, 1, 'buy', 'BTC/KRW', 0, 'uuid-ft-1', 'closed', 'BTC/KRW',
               'limit', 'buy', 100000000.0, 99990000.0, 0.001, 0.001, 0, 99990.0,
               '2026-11-20 14:03:07.120000', '2026-11-20 14:03:09.000000', NULL);
             INSERT INTO orders VALUES (2, 1, 'sell', 'ETH/KRW', 0, 'uuid-ft-2', 'closed', 'ETH/KRW',
               'market', 'sell', 5000000.0, NULL, 0.5, 0.0, 0.5, NULL,
               '2026-11-21 01:00:00', NULL, NULL);",
        )
        .unwrap();
    }
    let original = std::fs::read(&db).unwrap();
    assert_eq!(detect(&db).unwrap(), BotLogFormat::Freqtrade);
    let (_t2, rd) = run_dir();
    let log = import(UPBIT, &db, None, false, 0, &rd).unwrap();
    assert_eq!(log.format, BotLogFormat::Freqtrade);
    assert_eq!(log.entries.len(), 2);
    let e = &log.entries[0];
    assert_eq!(e.order_id.as_deref(), Some("uuid-ft-1"));
    assert_eq!(e.market.as_ref().map(|m| m.as_str()), Some("KRW-BTC"));
    assert_eq!(
        e.price,
        Some(dec("99990000")),
        "average preferred over price"
    );
    assert_eq!(e.volume, Some(dec("0.001")));
    assert_eq!(
        e.created_at.unwrap().timestamp_millis(),
        Utc.with_ymd_and_hms(2026, 11, 20, 14, 3, 7)
            .unwrap()
            .timestamp_millis()
            + 120
    );
    assert_eq!(
        log.entries[1].volume,
        Some(dec("0.5")),
        "amount when nothing filled"
    );
    assert_eq!(log.entries[1].side, Some(Side::Sell));
    let copy = std::fs::read(rd.path().join(&log.bundle_path)).unwrap();
    assert_eq!(
        copy, original,
        "reading the database did not modify the copy"
    );
    assert_eq!(log.sha256, sha256_hex(&original));
}

#[test]
fn sqlite_without_orders_table_is_explained() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("other.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE trades (id INTEGER);")
        .unwrap();
    let err = imp(&db, false).unwrap_err();
    assert!(matches!(err, ImportError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains("no `orders` table"));
}

#[test]
fn empty_binary_and_unknown_header_are_clear_errors() {
    let err = imp(&fixture("empty.csv"), false).unwrap_err();
    assert!(matches!(err, ImportError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("empty"));

    let err = imp(&fixture("binary.bin"), false).unwrap_err();
    assert!(matches!(err, ImportError::Binary { .. }), "{err}");

    let err = imp(&fixture("wrong_columns.csv"), false).unwrap_err();
    assert!(matches!(err, ImportError::UnknownHeader { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("date, pair, amount, rate"), "{msg}");
    assert!(msg.contains("order_id and/or identifier"), "{msg}");
    assert!(msg.contains("wrong_columns.csv:1"), "{msg}");
}

#[test]
fn the_original_is_copied_even_when_parsing_fails() {
    let (_t, rd) = run_dir();
    let path = fixture("wrong_columns.csv");
    assert!(import(UPBIT, &path, None, false, 0, &rd).is_err());
    let copy = std::fs::read(rd.path().join("bot/1-wrong_columns.csv")).unwrap();
    assert_eq!(copy, std::fs::read(&path).unwrap());
}

#[test]
fn logs_of_another_exchange_are_refused() {
    let err = imp(&fixture("generic_binance.csv"), true).unwrap_err();
    assert!(
        matches!(err, ImportError::OtherExchange { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("BTCUSDT"));
    let err = imp(&fixture("hummingbot_binance.csv"), false).unwrap_err();
    assert!(matches!(err, ImportError::OtherExchange { .. }), "{err}");
    assert!(err.to_string().contains("binance"));
}

#[test]
fn malformed_rows_fail_with_file_and_line_unless_skipped() {
    let path = fixture("generic_malformed.csv");
    let err = imp(&path, false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ImportError::BadRow { line: 3, .. }), "{msg}");
    assert!(msg.contains("generic_malformed.csv:3:"), "{msg}");
    assert!(msg.contains("hold"), "{msg}");

    let log = imp(&path, true).unwrap();
    assert_eq!(log.entries.len(), 2);
    let lines: Vec<u64> = log.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![3, 4, 5]);
    assert!(log.skipped[1].reason.contains("yesterday"));
    assert!(log.skipped[2].reason.contains("1O0"));
}

#[test]
fn forced_format_overrides_detection() {
    let (_t, rd) = run_dir();
    let err = import(
        UPBIT,
        &fixture("hummingbot.csv"),
        Some(BotLogFormat::ThreeCommas),
        false,
        0,
        &rd,
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::UnknownHeader { .. }), "{err}");
}
