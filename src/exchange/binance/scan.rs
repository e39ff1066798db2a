//! Which symbols to read history of. Binance keeps orders and trades per symbol, and a
//! symbol nobody asks about stays silent, so completeness depends on this choice.
//!
//! `touched` (the default) reads every symbol of every asset the account touched, paired with
//! every quote asset Binance lists for it (`exchangeInfo`): the assets held now
//! (`GET /api/v3/account`), held on any day of the window Binance kept a daily snapshot of
//! (`GET /sapi/v1/accountSnapshot`, the last 30 days), deposited or withdrawn in the window, and
//! the base assets of the markets the run's own evidence names (the bot log, orders this run
//! saw). The pumped coin a thief bought with the victim's USDT is held afterwards, or on the
//! day's snapshot, so its symbols are read. `all` reads every listed symbol; a list reads
//! those symbols. The answer states every source and what it could not see.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::wire::{DaySnapshot, Markets};
use crate::exchange::{
    Balance, Error, Market, MarketHint, MarketScan, MarketSelection, Result, ScanSource,
    ScannedMarket, Transfer, Window,
};

/// How far back Binance keeps daily account snapshots.
pub const SNAPSHOT_DAYS: i64 = 30;

/// What the scan read, each source as it came back (`Err` holds why it could not be read).
pub struct Sources<'a> {
    pub balances: std::result::Result<Vec<Balance>, String>,
    /// The snapshots, and the span asked for.
    pub snapshots: std::result::Result<(Vec<DaySnapshot>, Window), String>,
    pub deposits: std::result::Result<Vec<Transfer>, String>,
    pub withdrawals: std::result::Result<Vec<Transfer>, String>,
    pub hints: &'a [MarketHint],
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Adds `reason` to `asset`.
fn touch(assets: &mut BTreeMap<String, Vec<String>>, asset: &str, reason: String) {
    let list = assets.entry(asset.to_ascii_uppercase()).or_default();
    if !list.contains(&reason) {
        list.push(reason);
    }
}

/// The symbols of `selection` over `markets` (the exchange's list), with a reason for each.
pub fn choose(
    selection: &MarketSelection,
    markets: &Markets,
    window: Window,
    sources: Sources<'_>,
) -> Result<MarketScan> {
    choose_with_assets(selection, markets, window, sources).map(|(scan, _)| scan)
}

/// [`choose`], and the assets a `touched` scan found touched (empty for the other selections):
/// the symbols quoted in them are what [`quoted_in`] proposes to probe.
pub fn choose_with_assets(
    selection: &MarketSelection,
    markets: &Markets,
    window: Window,
    sources: Sources<'_>,
) -> Result<(MarketScan, BTreeSet<String>)> {
    let listing = ScanSource {
        source: "Binance's market list".into(),
        call: Some("GET /api/v3/exchangeInfo".into()),
        read: !markets.is_empty(),
        detail: format!("{} symbols", markets.len()),
        found: Vec::new(),
    };
    match selection {
        MarketSelection::All => {
            return Ok((
                MarketScan {
                    selection: selection.clone(),
                    markets: markets
                        .values()
                        .map(|m| ScannedMarket {
                            market: m.market.clone(),
                            reasons: vec!["every listed symbol (--symbols all)".into()],
                        })
                        .collect(),
                    sources: vec![listing],
                    limits: Vec::new(),
                },
                BTreeSet::new(),
            ))
        }
        MarketSelection::Listed(list) => {
            let mut out = Vec::new();
            let mut unknown = Vec::new();
            for s in list {
                let s = s.replace(['/', '-', '_'], "").to_ascii_uppercase();
                match markets.get(&s) {
                    Some(m) => out.push(ScannedMarket {
                        market: m.market.clone(),
                        reasons: vec!["named by --symbols".into()],
                    }),
                    None => unknown.push(s),
                }
            }
            if !unknown.is_empty() {
                return Err(Error::Config(format!(
                    "not symbols Binance lists: {} (Binance writes them like BTCUSDT)",
                    unknown.join(", ")
                )));
            }
            out.sort_by(|a, b| a.market.symbol.cmp(&b.market.symbol));
            out.dedup_by(|a, b| a.market.symbol == b.market.symbol);
            return Ok((
                MarketScan {
                    selection: selection.clone(),
                    markets: out,
                    sources: vec![listing],
                    limits: Vec::new(),
                },
                BTreeSet::new(),
            ));
        }
        MarketSelection::Touched => {}
    }

    let mut assets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut direct: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut report = vec![listing];
    let mut limits = Vec::new();

    let call = |c: &str| Some(c.to_string());
    match &sources.balances {
        Ok(b) => {
            for x in b {
                touch(
                    &mut assets,
                    &x.currency,
                    format!("{} held now (GET /api/v3/account)", x.currency),
                );
            }
            report.push(ScanSource {
                source: "balances now".into(),
                call: call("GET /api/v3/account"),
                read: true,
                detail: format!("{} assets with a balance", b.len()),
                found: b.iter().map(|x| x.currency.clone()).collect(),
            });
        }
        Err(e) => report.push(ScanSource {
            source: "balances now".into(),
            call: call("GET /api/v3/account"),
            read: false,
            detail: e.clone(),
            found: Vec::new(),
        }),
    }
    match &sources.snapshots {
        Ok((days, span)) => {
            let mut found = BTreeSet::new();
            for d in days {
                for b in &d.balances {
                    found.insert(b.currency.clone());
                    touch(
                        &mut assets,
                        &b.currency,
                        format!(
                            "{} held in the daily snapshot of {} (GET /sapi/v1/accountSnapshot)",
                            b.currency,
                            day(d.at)
                        ),
                    );
                }
            }
            report.push(ScanSource {
                source: "daily account snapshots".into(),
                call: call("GET /sapi/v1/accountSnapshot?type=SPOT"),
                read: true,
                detail: format!(
                    "{} days from {} to {}",
                    days.len(),
                    day(span.from),
                    day(span.to)
                ),
                found: found.into_iter().collect(),
            });
            if span.from > window.from {
                limits.push(format!(
                    "Binance keeps daily snapshots for the last {SNAPSHOT_DAYS} days only: before {}, only transfers, the bot log and this run's orders name assets",
                    day(span.from)
                ));
            }
        }
        Err(e) => {
            report.push(ScanSource {
                source: "daily account snapshots".into(),
                call: call("GET /sapi/v1/accountSnapshot?type=SPOT"),
                read: false,
                detail: e.clone(),
                found: Vec::new(),
            });
            limits.push(format!("the daily snapshots could not be read ({e}): an asset held during the window but not now is found only through transfers, the bot log and this run's orders"));
        }
    }
    for (name, what, call_text, res) in [
        (
            "deposits",
            "deposited",
            "GET /sapi/v1/capital/deposit/hisrec",
            &sources.deposits,
        ),
        (
            "withdrawals",
            "withdrawn",
            "GET /sapi/v1/capital/withdraw/history",
            &sources.withdrawals,
        ),
    ] {
        match res {
            Ok(list) => {
                let mut found = BTreeSet::new();
                for t in list {
                    found.insert(t.currency.clone());
                    touch(
                        &mut assets,
                        &t.currency,
                        format!(
                            "{} {what} at {} ({name} {})",
                            t.currency,
                            crate::time::ts(t.created_at),
                            t.id
                        ),
                    );
                }
                report.push(ScanSource {
                    source: format!("{name} in the window"),
                    call: call(call_text),
                    read: true,
                    detail: format!("{} {name}", list.len()),
                    found: found.into_iter().collect(),
                });
            }
            Err(e) => {
                report.push(ScanSource {
                    source: format!("{name} in the window"),
                    call: call(call_text),
                    read: false,
                    detail: e.clone(),
                    found: Vec::new(),
                });
                limits.push(format!("the {name} could not be read ({e})"));
            }
        }
    }
    let mut hinted = BTreeSet::new();
    for h in sources.hints {
        hinted.insert(h.market.symbol.to_string());
        let list = direct.entry(h.market.symbol.to_string()).or_default();
        if !list.contains(&h.source) {
            list.push(h.source.clone());
        }
        if !h.market.base.is_empty() {
            touch(
                &mut assets,
                &h.market.base,
                format!("{} in {} ({})", h.market.base, h.market.symbol, h.source),
            );
        }
    }
    report.push(ScanSource {
        source: "this run's evidence (bot logs, orders seen)".into(),
        call: None,
        read: true,
        detail: format!("{} markets", hinted.len()),
        found: hinted.into_iter().collect(),
    });

    // Every symbol whose base is a touched asset, with the asset's reasons.
    let mut chosen: BTreeMap<String, ScannedMarket> = BTreeMap::new();
    for m in markets.values() {
        if let Some(reasons) = assets.get(m.market.base.as_str()) {
            chosen.insert(
                m.market.symbol.to_string(),
                ScannedMarket {
                    market: m.market.clone(),
                    reasons: reasons.clone(),
                },
            );
        }
    }
    // Symbols named directly, even when Binance no longer lists them.
    for h in sources.hints {
        let entry = chosen
            .entry(h.market.symbol.to_string())
            .or_insert_with(|| ScannedMarket {
                market: markets
                    .get(h.market.symbol.as_str())
                    .map(|m| m.market.clone())
                    .unwrap_or_else(|| h.market.clone()),
                reasons: Vec::new(),
            });
        for r in direct.get(h.market.symbol.as_str()).into_iter().flatten() {
            if !entry.reasons.contains(r) {
                entry.reasons.push(r.clone());
            }
        }
    }
    Ok((
        MarketScan {
            selection: selection.clone(),
            markets: chosen.into_values().collect(),
            sources: report,
            limits,
        },
        assets.into_keys().collect(),
    ))
}

/// Listed symbols not chosen yet whose quote asset is touched: the account may have traded
/// them with that asset and kept none of their base (a round trip within a day, after the last
/// snapshot), which no balance, snapshot or transfer shows. Sorted by symbol.
pub fn quoted_in(markets: &Markets, assets: &BTreeSet<String>, scan: &MarketScan) -> Vec<Market> {
    let chosen: BTreeSet<&str> = scan.markets.iter().map(|m| m.market.as_str()).collect();
    let mut out: Vec<Market> = markets
        .values()
        .filter(|m| assets.contains(m.market.quote.as_str()))
        .filter(|m| !chosen.contains(m.market.as_str()))
        .map(|m| m.market.clone())
        .collect();
    out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    out
}

/// The call that probes one symbol for the account's latest order.
pub const PROBE_CALL: &str = "GET /api/v3/allOrders?symbol=…&limit=1";

/// Adds `market` to the scan: its latest order (the probe's answer) is at `latest`, in the
/// window. Its base asset is then touched, so every listed symbol of that base is read too.
pub fn add_probed(scan: &mut MarketScan, markets: &Markets, market: Market, latest: DateTime<Utc>) {
    let base = market.base.clone();
    let reason = format!(
        "{} traded in {}: the account's latest order there is from {} ({PROBE_CALL}), and {} was touched",
        base,
        market.symbol,
        crate::time::ts(latest),
        market.quote
    );
    let same_base = markets
        .values()
        .filter(|m| m.market.base == base)
        .map(|m| m.market.clone());
    for m in std::iter::once(market.clone()).chain(same_base) {
        match scan
            .markets
            .iter_mut()
            .find(|x| x.market.symbol == m.symbol)
        {
            Some(x) if x.reasons.contains(&reason) => {}
            Some(x) => x.reasons.push(reason.clone()),
            None => scan.markets.push(ScannedMarket {
                market: m,
                reasons: vec![reason.clone()],
            }),
        }
    }
    scan.markets
        .sort_by(|a, b| a.market.symbol.cmp(&b.market.symbol));
}

/// States the probe in the scan: how many symbols it asked, which it found, which could not be
/// asked, and what a touched scan still cannot see.
pub fn record_probe(
    scan: &mut MarketScan,
    probed: usize,
    found: Vec<String>,
    failed: Vec<(String, String)>,
) {
    let detail = format!(
        "{probed} symbols quoted in a touched asset probed for the account's latest order, {} with one in the window{}",
        found.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", {} could not be asked", failed.len())
        }
    );
    if !failed.is_empty() {
        scan.limits.push(format!(
            "the latest order could not be read for {}: an asset traded only there and held at no snapshot is missed; read them with --symbols",
            failed
                .iter()
                .map(|(s, e)| format!("{s} ({e})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    scan.sources.push(ScanSource {
        source: "latest order of every symbol quoted in a touched asset".into(),
        call: Some(PROBE_CALL.into()),
        read: failed.is_empty(),
        detail,
        found,
    });
    scan.limits.push("a market whose base asset left no trace here and whose quote asset was not touched either cannot have been traded without trading a market that was read; orders Binance archived (cancelled with nothing filled, more than 90 days old) are in no listing; --symbols all reads every market".into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{MarketInfo, TransferKind};
    use chrono::TimeZone;

    fn markets(symbols: &[(&str, &str, &str)]) -> Markets {
        symbols
            .iter()
            .map(|(s, b, q)| {
                (
                    s.to_string(),
                    MarketInfo {
                        market: Market::new(*s, *b, *q),
                        status: Some("TRADING".into()),
                        tick_size: None,
                        lot_size: None,
                        min_notional: None,
                    },
                )
            })
            .collect()
    }

    fn bal(c: &str) -> Balance {
        Balance {
            currency: c.into(),
            free: rust_decimal::Decimal::ONE,
            locked: rust_decimal::Decimal::ZERO,
            avg_buy_price: None,
            unit_currency: None,
        }
    }

    fn window() -> Window {
        let to = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
        Window {
            from: to - chrono::Duration::days(7),
            to,
        }
    }

    fn list() -> Markets {
        markets(&[
            ("BTCUSDT", "BTC", "USDT"),
            ("BTCFDUSD", "BTC", "FDUSD"),
            ("ETHBTC", "ETH", "BTC"),
            ("ETHUSDT", "ETH", "USDT"),
            ("PUMPUSDT", "PUMP", "USDT"),
            ("PUMPBTC", "PUMP", "BTC"),
            ("DOGEUSDT", "DOGE", "USDT"),
            ("SOLUSDT", "SOL", "USDT"),
            ("USDTTRY", "USDT", "TRY"),
        ])
    }

    fn transfer(c: &str) -> Transfer {
        Transfer {
            id: "w1".into(),
            kind: TransferKind::Withdrawal,
            currency: c.into(),
            net_type: None,
            txid: None,
            state: "COMPLETED".into(),
            status: crate::exchange::TransferStatus::Completed,
            amount: rust_decimal::Decimal::ONE,
            fee: None,
            address: None,
            created_at: window().from + chrono::Duration::days(1),
            created_at_local: String::new(),
            done_at: None,
            is_cancelable: false,
            provenance: None,
        }
    }

    /// The thief bought PUMP with USDT and sold it back the same day: no balance now, but the
    /// day's snapshot held it, so both PUMP symbols are read; SOL, never touched, is not.
    #[test]
    fn touched_assets_pair_with_every_quote() {
        let snap = DaySnapshot {
            at: window().from + chrono::Duration::days(2),
            balances: vec![bal("PUMP"), bal("USDT")],
        };
        let hints = vec![MarketHint {
            market: Market::new("DOGEUSDT", "DOGE", "USDT"),
            source: "named by the bot log bot/1-trades.csv".into(),
        }];
        let scan = choose(
            &MarketSelection::Touched,
            &list(),
            window(),
            Sources {
                balances: Ok(vec![bal("BTC"), bal("USDT")]),
                snapshots: Ok((vec![snap], window())),
                deposits: Ok(vec![]),
                withdrawals: Ok(vec![transfer("ETH")]),
                hints: &hints,
            },
        )
        .unwrap();
        let symbols: Vec<&str> = scan.markets.iter().map(|m| m.market.as_str()).collect();
        assert_eq!(
            symbols,
            [
                "BTCFDUSD", "BTCUSDT", "DOGEUSDT", "ETHBTC", "ETHUSDT", "PUMPBTC", "PUMPUSDT",
                "USDTTRY"
            ]
        );
        let pump = &scan
            .markets
            .iter()
            .find(|m| m.market.as_str() == "PUMPUSDT")
            .unwrap();
        assert!(
            pump.reasons[0].contains("daily snapshot of 2026-11-15"),
            "{:?}",
            pump.reasons
        );
        let doge = &scan
            .markets
            .iter()
            .find(|m| m.market.as_str() == "DOGEUSDT")
            .unwrap();
        assert!(
            doge.reasons.iter().any(|r| r.contains("bot log")),
            "{:?}",
            doge.reasons
        );
        assert!(scan.sources.iter().all(|s| s.read));
        assert!(scan.limits.is_empty(), "{:?}", scan.limits);
        let mut scan = scan;
        record_probe(&mut scan, 3, vec!["ETHUSDT".into()], Vec::new());
        assert!(scan.sources.iter().all(|s| s.read));
        assert!(scan.limits.iter().any(|l| l.contains("--symbols all")));
        record_probe(
            &mut scan,
            1,
            Vec::new(),
            vec![("XUSDT".into(), "HTTP 500".into())],
        );
        assert!(!scan.sources.last().unwrap().read);
        assert!(scan.limits.iter().any(|l| l.contains("XUSDT (HTTP 500)")));
    }

    /// Symbols quoted in a touched asset and not chosen are the probe's candidates; once a
    /// probe finds one, its base is touched and the symbols quoted in it follow.
    #[test]
    fn the_probe_follows_the_quote_assets() {
        let mk = markets(&[
            ("BTCUSDT", "BTC", "USDT"),
            ("TOKIUSDT", "TOKI", "USDT"),
            ("MOCATOKI", "MOCA", "TOKI"),
            ("ETHBTC", "ETH", "BTC"),
            ("TOKIBTC", "TOKI", "BTC"),
        ]);
        let (mut scan, mut assets) = choose_with_assets(
            &MarketSelection::Touched,
            &mk,
            window(),
            Sources {
                balances: Ok(vec![bal("USDT")]),
                snapshots: Ok((Vec::new(), window())),
                deposits: Ok(Vec::new()),
                withdrawals: Ok(Vec::new()),
                hints: &[],
            },
        )
        .unwrap();
        assert!(scan.markets.is_empty());
        assert_eq!(assets, BTreeSet::from(["USDT".to_string()]));
        let first: Vec<String> = quoted_in(&mk, &assets, &scan)
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(first, ["BTCUSDT", "TOKIUSDT"]);
        assert!(quoted_in(&mk, &assets, &scan)
            .iter()
            .all(|m| m.quote == "USDT"));
        let toki = mk["TOKIUSDT"].market.clone();
        add_probed(
            &mut scan,
            &mk,
            toki,
            window().to - chrono::Duration::hours(1),
        );
        assets.insert("TOKI".into());
        let next: Vec<String> = quoted_in(&mk, &assets, &scan)
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(next, ["BTCUSDT", "MOCATOKI"]);
        // The probed coin's other symbols are read too.
        let chosen: Vec<&str> = scan.markets.iter().map(|m| m.market.as_str()).collect();
        assert_eq!(chosen, ["TOKIBTC", "TOKIUSDT"]);
        assert!(
            scan.markets[1].reasons[0].contains("TOKI traded in TOKIUSDT"),
            "{:?}",
            scan.markets[1].reasons
        );
    }

    #[test]
    fn sources_that_failed_are_stated() {
        let scan = choose(
            &MarketSelection::Touched,
            &list(),
            window(),
            Sources {
                balances: Ok(vec![bal("BTC")]),
                snapshots: Err("HTTP 401 -2015".into()),
                deposits: Err("timed out".into()),
                withdrawals: Ok(vec![]),
                hints: &[],
            },
        )
        .unwrap();
        let unread: Vec<&str> = scan
            .sources
            .iter()
            .filter(|s| !s.read)
            .map(|s| s.source.as_str())
            .collect();
        assert_eq!(
            unread,
            ["daily account snapshots", "deposits in the window"]
        );
        assert!(scan
            .limits
            .iter()
            .any(|l| l.contains("daily snapshots could not be read")));
        assert_eq!(scan.markets.len(), 2);
    }

    #[test]
    fn all_and_listed() {
        let empty = || Sources {
            balances: Ok(vec![]),
            snapshots: Ok((vec![], window())),
            deposits: Ok(vec![]),
            withdrawals: Ok(vec![]),
            hints: &[],
        };
        let all = choose(&MarketSelection::All, &list(), window(), empty()).unwrap();
        assert_eq!(all.markets.len(), 9);
        let some = choose(
            &MarketSelection::Listed(vec!["btc/usdt".into(), "ETHBTC".into(), "BTCUSDT".into()]),
            &list(),
            window(),
            empty(),
        )
        .unwrap();
        let symbols: Vec<&str> = some.markets.iter().map(|m| m.market.as_str()).collect();
        assert_eq!(symbols, ["BTCUSDT", "ETHBTC"]);
        let e = choose(
            &MarketSelection::Listed(vec!["KRW-BTC".into()]),
            &list(),
            window(),
            empty(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("KRWBTC"), "{e}");
    }
}
