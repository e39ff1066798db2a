//! Bot logs of Binance users, read for a Binance run: every format ends up in Binance's own
//! symbols (`BTCUSDT`), whether the log writes `BTCUSDT`, ccxt's `BTC/USDT` (freqtrade, with
//! or without a futures settle suffix), Hummingbot's base and quote columns or 3Commas'
//! `USDT_BTC`; a log of another exchange (`KRW-BTC`) is refused as the wrong file.

use std::path::{Path, PathBuf};

use respond::analysis::import::{import, ImportError};
use respond::analysis::{BotLog, BotLogFormat};
use respond::exchange::Side;
use respond::rundir::RunDir;

const BINANCE: &respond::exchange::Descriptor = &respond::exchange::binance::DESCRIPTOR;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/botlogs")
        .join(name)
}

fn imp(path: &Path) -> Result<BotLog, ImportError> {
    let t = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&t.path().join("run")).unwrap();
    import(BINANCE, path, None, false, 0, &rd)
}

/// `(symbol, base, quote)` of every entry, in order.
fn markets(log: &BotLog) -> Vec<(String, String, String)> {
    log.entries
        .iter()
        .map(|e| {
            let m = e.market.as_ref().expect("every row names a market");
            (m.to_string(), m.base.to_string(), m.quote.to_string())
        })
        .collect()
}

fn m(s: &str, b: &str, q: &str) -> (String, String, String) {
    (s.into(), b.into(), q.into())
}

#[test]
fn native_symbols_and_hummingbots_binance_connector() {
    let log = imp(&fixture("generic_binance.csv")).unwrap();
    assert_eq!(log.format, BotLogFormat::Generic);
    assert_eq!(markets(&log), [m("BTCUSDT", "BTC", "USDT")]);
    assert_eq!(log.entries[0].order_id.as_deref(), Some("123456"));
    assert_eq!(log.entries[0].side, Some(Side::Buy));

    let log = imp(&fixture("hummingbot_binance.csv")).unwrap();
    assert_eq!(log.format, BotLogFormat::Hummingbot);
    assert_eq!(markets(&log), [m("BTCUSDT", "BTC", "USDT")]);
    assert_eq!(log.entries[0].identifier.as_deref(), Some("buy-BTC-USDT-1"));
}

#[test]
fn freqtrade_pairs_become_binance_symbols() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("tradesv3.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, ft_trade_id INTEGER, ft_order_side TEXT,
               ft_pair TEXT, ft_is_open BOOLEAN, order_id TEXT, status TEXT, symbol TEXT,
               order_type TEXT, side TEXT, price FLOAT, average FLOAT, amount FLOAT, filled FLOAT,
               remaining FLOAT, cost FLOAT, order_date DATETIME, order_filled_date DATETIME,
               order_update_date DATETIME);
             INSERT INTO orders VALUES (1, 1, 'buy', 'BTC/USDT', 0, '38204751', 'closed',
               'BTC/USDT', 'limit', 'buy', 90000.0, 89990.0, 0.001, 0.001, 0, 89.99,
               '2026-11-20 14:03:07.120000', '2026-11-20 14:03:09.000000', NULL);
             INSERT INTO orders VALUES (2, 2, 'sell', 'pepe/fdusd', 0, '38204752', 'closed',
               'PEPE/FDUSD', 'market', 'sell', 0.00002, NULL, 1000000, 1000000, 0, 20.0,
               '2026-11-21 01:00:00', NULL, NULL);
             INSERT INTO orders VALUES (3, 3, 'buy', 'ETH/USDT:USDT', 0, '38204753', 'closed',
               'ETH/USDT:USDT', 'limit', 'buy', 3000.0, NULL, 0.1, 0.1, 0, 300.0,
               '2026-11-21 02:00:00', NULL, NULL);",
        )
        .unwrap();
    let log = imp(&db).unwrap();
    assert_eq!(log.format, BotLogFormat::Freqtrade);
    assert_eq!(
        markets(&log),
        [
            m("BTCUSDT", "BTC", "USDT"),
            m("PEPEFDUSD", "PEPE", "FDUSD"),
            m("ETHUSDT", "ETH", "USDT"),
        ]
    );
    assert_eq!(log.entries[0].order_id.as_deref(), Some("38204751"));
    assert_eq!(log.entries[1].side, Some(Side::Sell));
}

#[test]
fn three_commas_binance_pairs_are_quote_first() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("deals.csv");
    std::fs::write(
        &path,
        "deal_id;bot;pair;created_at;closed_at;bought_volume;sold_volume;base_order_volume;safety_order_volume;status\n\
         2001;DCA BTC;USDT_BTC;2026-11-20 14:00:00 UTC;2026-11-20 18:30:00 UTC;300;309;100;200;completed\n\
         2002;DCA SOL;BTC_SOL;2026-11-21T01:00:00Z;;0.01;;0.01;0;bought\n",
    )
    .unwrap();
    let log = imp(&path).unwrap();
    assert_eq!(log.format, BotLogFormat::ThreeCommas);
    assert_eq!(
        markets(&log),
        [
            m("BTCUSDT", "BTC", "USDT"),
            m("BTCUSDT", "BTC", "USDT"),
            m("SOLBTC", "SOL", "BTC"),
        ]
    );
    assert_eq!(log.entries[1].side, Some(Side::Sell));
}

#[test]
fn logs_of_another_exchange_are_refused_for_binance() {
    for name in ["generic.csv", "hummingbot.csv"] {
        let err = imp(&fixture(name)).unwrap_err();
        assert!(
            matches!(err, ImportError::OtherExchange { line: 2, .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("Binance"), "{name}: {err}");
    }
    // A Binance symbol that ends with no quote Binance lists is a bad row, not a foreign log.
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("bad.csv");
    std::fs::write(&path, "order_id,market,side\n1,BTCUSDT,buy\n2,BTCXYZ,buy\n").unwrap();
    let err = imp(&path).unwrap_err();
    let text = err.to_string();
    assert!(!matches!(err, ImportError::OtherExchange { .. }), "{text}");
    assert!(text.contains(":3") && text.contains("BTCXYZ"), "{text}");
}
