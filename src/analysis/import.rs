//! Bot-log import: detects the format of a user's bot log, copies the original file into the
//! bundle (hashed before anything parses it), then normalizes its rows into [`BotLogEntry`]s.
//!
//! Shaped as one detector plus one small parser per format because formats differ only in
//! column names and units; everything after import works on the normalized rows.
//!
//! # Generic CSV (respond's own format)
//!
//! - UTF-8 (a byte-order mark is tolerated), comma-separated, **a header row is required**;
//!   column names are matched case-insensitively, extra columns are ignored.
//! - `order_id`: the exchange's order uuid, and/or `identifier`: the client id the bot sent.
//!   At least one of the two columns must exist, and every row needs at least one non-empty.
//! - Optional: `market` (the exchange's own symbol, e.g. `BTC-USDT`; a ccxt-style `BASE/QUOTE`
//!   is converted), `side` (`bid`, `ask`, `buy`, `sell`, any case), `ord_type` (`limit`,
//!   `price` (a market buy for an amount), `market`, `best`),
//!   `created_at` (RFC 3339 with any offset, or epoch milliseconds / seconds), `price`,
//!   `volume` (decimal numbers), `funds` (quote amount).
//! - Optional `event` column: a row whose `event` is `stop` or `start` carries no order; it marks
//!   the bot as stopped from a `stop` row's `created_at` to the next `start` (rule R9).
//! - Empty cells mean "absent". The mock exchange writes exactly
//!   `order_id,identifier,market,side,ord_type,created_at,price,volume` with `bid`/`ask` and
//!   times like `2026-11-20T14:03:07.120Z`.
//!
//! # Other formats
//! - freqtrade `tradesv3.sqlite`, table `orders` (`order_id`, `ft_pair`, `side`, `order_type`,
//!   `price`, `average`, `amount`, `filled`, `cost`, `order_date` naive UTC). Detected by the
//!   SQLite magic bytes.
//! - Hummingbot `trades_<config>.csv`, current header (`exchange_trade_id, …, market, symbol,
//!   base_asset, quote_asset, timestamp, order_id, trade_type, order_type, price, amount, …`) and
//!   the 2020 header (`Config File, Strategy, Exchange, Timestamp, Market, Base, Quote, Trade,
//!   Type, Price, Amount, Fee, Age, Order ID, Exchange Trade ID`). One row per fill; the
//!   Hummingbot `order_id` is the client id (`identifier`). Rows of an exchange other than the
//!   run's are refused ([`ImportError::OtherExchange`]).
//! - 3Commas deal history (semicolon-separated): one buy entry per deal at `created_at` with
//!   `bought_volume` as quote funds, one sell entry at `closed_at` with `sold_volume`; no order
//!   ids, so these rows only fuzzy-match and give configured sizes (`base_order_volume`).
//!
//! Markets are normalized through the run's exchange ([`Descriptor::parse_symbol`] and
//! [`Descriptor::market_of`]), so every format ends up in the exchange's own symbols. A market
//! the exchange says is written another exchange's way is refused as a log of another
//! exchange: it is a whole-file error even with `--skip-bad-rows`, because it means the wrong
//! file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use super::model::{BotLog, BotLogEntry, BotLogFormat, SkippedRow};
use crate::exchange::registry::SymbolError;
use crate::exchange::{CompactString, Descriptor, Market, MarketCache, Side, Window};
use crate::fsutil;
use crate::rundir::RunDir;

/// Columns each format is recognised by (listed in the unknown-header error).
const EXPECTED: &str = "generic CSV: order_id and/or identifier (+ market, side, ord_type, \
created_at, price, volume); Hummingbot: exchange_trade_id, market, symbol, base_asset, \
quote_asset, timestamp, order_id, trade_type, order_type, price, amount; Hummingbot 2020: \
Config File, Strategy, Exchange, Timestamp, Market, Base, Quote, Trade, Type, Price, Amount, \
Order ID, Exchange Trade ID; 3Commas (semicolon-separated): deal_id, bot, pair, created_at, \
closed_at, bought_volume, sold_volume, base_order_volume; freqtrade: a tradesv3.sqlite file";

/// Why a bot log could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read or copy the bot log: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the bot log is empty; export it again from your bot, or leave --bot-log out to run heuristics only")]
    Empty { path: PathBuf },
    #[error("{path}: this is a binary file, not a bot log (expected a CSV text file or a freqtrade SQLite database)")]
    Binary { path: PathBuf },
    #[error("{path}:1: unknown bot-log header [{found}]; expected one of: {EXPECTED}. Force a format with --bot-log-format if the file is right")]
    UnknownHeader { path: PathBuf, found: String },
    #[error("{path}:{line}: this bot log is from another exchange ({detail}); only {exchange} logs can be compared with this {exchange} export")]
    OtherExchange {
        path: PathBuf,
        line: u64,
        detail: String,
        /// The run's exchange.
        exchange: &'static str,
    },
    #[error("{path}:{line}: {message} (use --skip-bad-rows to skip and list such rows)")]
    BadRow {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: freqtrade database: {message}")]
    Sqlite { path: PathBuf, message: String },
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Detects the format of the bot log at `path` from its magic bytes or header row.
pub fn detect(path: &Path) -> Result<BotLogFormat, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    detect_bytes(path, &bytes)
}

fn detect_bytes(path: &Path, bytes: &[u8]) -> Result<BotLogFormat, ImportError> {
    if bytes.starts_with(SQLITE_MAGIC) {
        return Ok(BotLogFormat::Freqtrade);
    }
    let text = text_of(path, bytes)?;
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delim = delimiter(header);
    let cols = split_header(header, delim);
    let has = |c: &str| cols.iter().any(|x| x == c);
    if has("deal_id") || (has("pair") && has("bought_volume")) {
        Ok(BotLogFormat::ThreeCommas)
    } else if has("exchange_trade_id") && has("trade_type") {
        Ok(BotLogFormat::Hummingbot)
    } else if has("config file") && has("order id") {
        Ok(BotLogFormat::Hummingbot2020)
    } else if has("order_id") || has("identifier") {
        Ok(BotLogFormat::Generic)
    } else {
        Err(ImportError::UnknownHeader {
            path: path.to_path_buf(),
            found: cols.join(", "),
        })
    }
}

/// Text of a CSV bot log: refuses empty and binary content, drops a UTF-8 byte-order mark.
fn text_of<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, ImportError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ImportError::Empty {
            path: path.to_path_buf(),
        });
    }
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(ImportError::Binary {
            path: path.to_path_buf(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ImportError::Binary {
        path: path.to_path_buf(),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

fn delimiter(header: &str) -> u8 {
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

fn split_header(header: &str, delim: u8) -> Vec<String> {
    header
        .split(delim as char)
        .map(norm_col)
        .filter(|c| !c.is_empty())
        .collect()
}

fn norm_col(c: &str) -> String {
    c.trim().trim_matches('"').trim().to_ascii_lowercase()
}

/// Copies the bot log at `path` into the bundle as `bot/<log_index + 1>-<file name>` (hash of
/// the original bytes taken by the copy), then parses it with the detected or `forced` format,
/// in the markets of `exchange`.
pub fn import(
    exchange: &'static Descriptor,
    path: &Path,
    forced: Option<BotLogFormat>,
    skip_bad_rows: bool,
    log_index: usize,
    rundir: &RunDir,
) -> Result<BotLog, ImportError> {
    let (bundle_path, sha256) = copy_in(path, log_index, rundir)?;
    parse_copy(
        exchange,
        path,
        &bundle_path,
        sha256,
        forced,
        skip_bad_rows,
        log_index,
        rundir,
    )
}

/// Copies the bot log at `path` into the bundle unmodified, as log number `log_index`
/// (`bot/<n>-<name>`); returns where it went and the SHA-256 of the bytes copied.
pub fn copy_in(
    path: &Path,
    log_index: usize,
    rundir: &RunDir,
) -> Result<(String, String), ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| fsutil::file_component(&n.to_string_lossy()))
        .unwrap_or_else(|| "bot-log".into());
    let bundle_path = format!("bot/{}-{}", log_index + 1, name);
    let dst = rundir.join(&bundle_path).map_err(io)?;
    if let Some(parent) = dst.parent() {
        fsutil::create_private_dir(parent).map_err(io)?;
    }
    let sha256 = fsutil::copy_private(path, &dst).map_err(io)?;
    Ok((bundle_path, sha256))
}

/// Parses the copy [`copy_in`] made at `bundle_path` (whose bytes had `sha256`); errors name
/// `path`, the file the user gave.
#[allow(clippy::too_many_arguments)]
pub fn parse_copy(
    exchange: &'static Descriptor,
    path: &Path,
    bundle_path: &str,
    sha256: String,
    forced: Option<BotLogFormat>,
    skip_bad_rows: bool,
    log_index: usize,
    rundir: &RunDir,
) -> Result<BotLog, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dst = rundir.join(bundle_path).map_err(io)?;
    let bytes = std::fs::read(&dst).map_err(io)?;
    let mut log = parse_bytes(
        exchange,
        path,
        &dst,
        &bytes,
        forced,
        skip_bad_rows,
        log_index,
    )?;
    log.bundle_path = bundle_path.to_string();
    log.sha256 = sha256;
    Ok(log)
}

/// Parses bot-log bytes without copying (the bundle copy is made by [`import`]). `db_path` is
/// the file to open for a freqtrade database. Exposed for `respond analyze` re-runs on the copy.
pub fn parse_bytes(
    exchange: &'static Descriptor,
    path: &Path,
    db_path: &Path,
    bytes: &[u8],
    forced: Option<BotLogFormat>,
    skip_bad_rows: bool,
    log_index: usize,
) -> Result<BotLog, ImportError> {
    let format = match forced {
        Some(f) => f,
        None => detect_bytes(path, bytes)?,
    };
    let mut p = Parser {
        exchange,
        markets: MarketCache::default(),
        path: path.to_path_buf(),
        log: log_index,
        skip: skip_bad_rows,
        entries: Vec::new(),
        skipped: Vec::new(),
        stops: Vec::new(),
    };
    let parse = |p: &mut Parser| match format {
        BotLogFormat::Freqtrade => p.freqtrade(db_path),
        other => {
            if bytes.starts_with(SQLITE_MAGIC) {
                return Err(ImportError::Binary {
                    path: path.to_path_buf(),
                });
            }
            let text = text_of(path, bytes)?;
            p.csv(other, text)
        }
    };
    // The hash is taken on another thread while the rows are parsed.
    let (parsed, sha256) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| fsutil::sha256_hex(bytes));
        let parsed = parse(&mut p);
        let sha256 = hashing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (parsed, sha256)
    });
    parsed?;
    let stopped = stopped_windows(&mut p.stops);
    Ok(BotLog {
        format,
        bundle_path: String::new(),
        sha256,
        entries: p.entries,
        skipped: p.skipped,
        stopped,
    })
}

fn stopped_windows(events: &mut [(DateTime<Utc>, bool)]) -> Vec<Window> {
    events.sort();
    let mut out = Vec::new();
    let mut since: Option<DateTime<Utc>> = None;
    for &(t, stop) in events.iter() {
        match (stop, since) {
            (true, None) => since = Some(t),
            (false, Some(from)) => {
                out.push(Window { from, to: t });
                since = None;
            }
            _ => {}
        }
    }
    if let Some(from) = since {
        out.push(Window {
            from,
            to: DateTime::<Utc>::MAX_UTC,
        });
    }
    out
}

struct Parser {
    exchange: &'static Descriptor,
    /// One shared [`Market`] per symbol.
    markets: MarketCache,
    path: PathBuf,
    log: usize,
    skip: bool,
    entries: Vec<BotLogEntry>,
    skipped: Vec<SkippedRow>,
    /// (time, is_stop) events of the generic `event` column.
    stops: Vec<(DateTime<Utc>, bool)>,
}

/// Row-level failure: `Skippable` rows go to `skipped` under `--skip-bad-rows`.
enum RowError {
    Skippable(String),
    Fatal(ImportError),
}

impl From<String> for RowError {
    fn from(s: String) -> Self {
        RowError::Skippable(s)
    }
}

impl From<&str> for RowError {
    fn from(s: &str) -> Self {
        RowError::Skippable(s.to_string())
    }
}

/// Column positions of one CSV format. Each lookup's answer is remembered for the file's
/// next rows (by the address of its list of names: the row parsers ask with fixed lists), so
/// a million rows do not compare column names a million times.
struct Cols(
    Vec<String>,
    std::cell::RefCell<Vec<(NamesKey, Option<usize>)>>,
);

/// A list of column names by its address and length.
type NamesKey = (usize, usize);

impl Cols {
    fn new(names: Vec<String>) -> Self {
        Cols(names, Default::default())
    }

    fn idx(&self, names: &'static [&'static str]) -> Option<usize> {
        let key = (names.as_ptr() as usize, names.len());
        if let Some(&(_, at)) = self.1.borrow().iter().find(|(k, _)| *k == key) {
            return at;
        }
        let at = names
            .iter()
            .find_map(|n| self.0.iter().position(|c| c == n));
        self.1.borrow_mut().push((key, at));
        at
    }
}

fn cell(rec: &csv::StringRecord, i: Option<usize>) -> Option<&str> {
    i.and_then(|i| rec.get(i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Parser {
    fn entry(&self, line: u64) -> BotLogEntry {
        BotLogEntry {
            log: self.log,
            line,
            order_id: None,
            identifier: None,
            market: None,
            side: None,
            ord_type: None,
            created_at: None,
            price: None,
            volume: None,
            funds: None,
        }
    }

    fn row_failed(&mut self, line: u64, e: RowError) -> Result<(), ImportError> {
        match e {
            RowError::Fatal(e) => Err(e),
            RowError::Skippable(message) if self.skip => {
                self.skipped.push(SkippedRow {
                    line,
                    reason: message,
                });
                Ok(())
            }
            RowError::Skippable(message) => Err(ImportError::BadRow {
                path: self.path.clone(),
                line,
                message,
            }),
        }
    }

    fn csv(&mut self, format: BotLogFormat, text: &str) -> Result<(), ImportError> {
        let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let delim = delimiter(header);
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(true)
            .has_headers(true)
            .from_reader(text.as_bytes());
        let cols = Cols::new(
            rdr.headers()
                .map_err(|e| ImportError::BadRow {
                    path: self.path.clone(),
                    line: 1,
                    message: format!("unreadable header: {e}"),
                })?
                .iter()
                .map(norm_col)
                .collect(),
        );
        let width = cols.0.len();
        let mut rec = csv::StringRecord::new();
        loop {
            let line_hint = rdr.position().line();
            match rdr.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map(|p| p.line()).unwrap_or(line_hint);
                    if rec.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    let res = if rec.len() != width {
                        Err(RowError::Skippable(format!(
                            "row has {} fields, the header has {width}",
                            rec.len()
                        )))
                    } else {
                        match format {
                            BotLogFormat::Generic => self.generic_row(&cols, &rec, line),
                            BotLogFormat::Hummingbot => self.hummingbot_row(&cols, &rec, line),
                            BotLogFormat::Hummingbot2020 => {
                                self.hummingbot2020_row(&cols, &rec, line)
                            }
                            BotLogFormat::ThreeCommas => self.three_commas_row(&cols, &rec, line),
                            BotLogFormat::Freqtrade => unreachable_format(),
                        }
                    };
                    if let Err(e) = res {
                        self.row_failed(line, e)?;
                    }
                }
                Err(e) => {
                    let line = e
                        .position()
                        .map(|p| p.line())
                        .unwrap_or(line_hint.max(1) + 1);
                    self.row_failed(line, RowError::Skippable(format!("unreadable CSV: {e}")))?;
                }
            }
        }
        Ok(())
    }

    fn require_cols(&self, cols: &Cols, need: &[&'static [&'static str]]) -> Result<(), RowError> {
        for alts in need {
            if cols.idx(alts).is_none() {
                return Err(RowError::Fatal(ImportError::UnknownHeader {
                    path: self.path.clone(),
                    found: cols.0.join(", "),
                }));
            }
        }
        Ok(())
    }

    fn generic_row(
        &mut self,
        cols: &Cols,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<(), RowError> {
        self.require_cols(cols, &[&["order_id", "identifier"]])?;
        let mut e = self.entry(line);
        let created = cell(rec, cols.idx(&["created_at"]))
            .map(parse_time)
            .transpose()?;
        if let Some(ev) = cell(rec, cols.idx(&["event"])) {
            let ev = ev.to_ascii_lowercase();
            if ev == "stop" || ev == "start" {
                let t = created.ok_or_else(|| format!("`{ev}` event without created_at"))?;
                self.stops.push((t, ev == "stop"));
                return Ok(());
            }
        }
        e.order_id = cell(rec, cols.idx(&["order_id"])).map(str::to_string);
        e.identifier = cell(rec, cols.idx(&["identifier"])).map(CompactString::from);
        if e.order_id.is_none() && e.identifier.is_none() {
            return Err("neither order_id nor identifier is set".to_string().into());
        }
        if let Some(m) = cell(rec, cols.idx(&["market"])) {
            e.market = Some(self.market(m, line)?);
        }
        e.side = cell(rec, cols.idx(&["side"])).map(parse_side).transpose()?;
        e.ord_type = cell(rec, cols.idx(&["ord_type"])).map(|s| s.to_ascii_lowercase().into());
        e.created_at = created;
        e.price = cell(rec, cols.idx(&["price"]))
            .map(|s| parse_dec("price", s))
            .transpose()?;
        e.volume = cell(rec, cols.idx(&["volume"]))
            .map(|s| parse_dec("volume", s))
            .transpose()?;
        e.funds = cell(rec, cols.idx(&["funds"]))
            .map(|s| parse_dec("funds", s))
            .transpose()?;
        self.entries.push(e);
        Ok(())
    }

    fn hummingbot_row(
        &mut self,
        cols: &Cols,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<(), RowError> {
        self.require_cols(
            cols,
            &[
                &["market"],
                &["base_asset"],
                &["quote_asset"],
                &["timestamp"],
                &["order_id"],
                &["trade_type"],
            ],
        )?;
        self.hb_common(
            rec,
            line,
            [
                cols.idx(&["market"]),
                cols.idx(&["base_asset"]),
                cols.idx(&["quote_asset"]),
                cols.idx(&["timestamp"]),
                cols.idx(&["order_id"]),
                cols.idx(&["trade_type"]),
                cols.idx(&["order_type"]),
                cols.idx(&["price"]),
                cols.idx(&["amount"]),
            ],
        )
    }

    fn hummingbot2020_row(
        &mut self,
        cols: &Cols,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<(), RowError> {
        self.require_cols(
            cols,
            &[
                &["exchange"],
                &["base"],
                &["quote"],
                &["timestamp"],
                &["order id"],
                &["trade"],
            ],
        )?;
        self.hb_common(
            rec,
            line,
            [
                cols.idx(&["exchange"]),
                cols.idx(&["base"]),
                cols.idx(&["quote"]),
                cols.idx(&["timestamp"]),
                cols.idx(&["order id"]),
                cols.idx(&["trade"]),
                cols.idx(&["type"]),
                cols.idx(&["price"]),
                cols.idx(&["amount"]),
            ],
        )
    }

    /// Hummingbot rows, both headers: [exchange, base, quote, timestamp, client id, side,
    /// order type, price, amount] column positions.
    fn hb_common(
        &mut self,
        rec: &csv::StringRecord,
        line: u64,
        ix: [Option<usize>; 9],
    ) -> Result<(), RowError> {
        let exchange = cell(rec, ix[0]).unwrap_or("");
        if !exchange
            .to_ascii_lowercase()
            .starts_with(&self.exchange.name.to_ascii_lowercase())
        {
            return Err(RowError::Fatal(ImportError::OtherExchange {
                path: self.path.clone(),
                line,
                detail: format!("Hummingbot exchange `{exchange}`"),
                exchange: self.exchange.display,
            }));
        }
        let base = cell(rec, ix[1]).ok_or("base asset is empty")?;
        let quote = cell(rec, ix[2]).ok_or("quote asset is empty")?;
        let mut e = self.entry(line);
        e.market = Some(self.pair(base, quote));
        e.created_at = Some(parse_time(cell(rec, ix[3]).ok_or("timestamp is empty")?)?);
        e.identifier = Some(cell(rec, ix[4]).ok_or("order id is empty")?.into());
        e.side = Some(parse_side(cell(rec, ix[5]).ok_or("trade type is empty")?)?);
        e.ord_type = cell(rec, ix[6]).map(|t| match t.to_ascii_lowercase().as_str() {
            "limit" | "limit_maker" => "limit".into(),
            "market" => "market".into(),
            other => other.into(),
        });
        e.price = cell(rec, ix[7])
            .map(|s| parse_dec("price", s))
            .transpose()?;
        e.volume = cell(rec, ix[8])
            .map(|s| parse_dec("amount", s))
            .transpose()?;
        self.entries.push(e);
        Ok(())
    }

    fn three_commas_row(
        &mut self,
        cols: &Cols,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<(), RowError> {
        self.require_cols(cols, &[&["pair"], &["created_at"]])?;
        let pair = cell(rec, cols.idx(&["pair"])).ok_or("pair is empty")?;
        // 3Commas pairs are QUOTE_BASE (`USDT_BTC`) on every exchange.
        let market = match pair.split_once('_') {
            Some((q, b)) if !q.is_empty() && !b.is_empty() => self.pair(b, q),
            _ => self.market(pair, line)?,
        };
        let created =
            parse_time(cell(rec, cols.idx(&["created_at"])).ok_or("created_at is empty")?)?;
        let closed = cell(rec, cols.idx(&["closed_at"]))
            .map(parse_time)
            .transpose()?;
        let bought = cell(rec, cols.idx(&["bought_volume"]))
            .map(|s| parse_dec("bought_volume", s))
            .transpose()?;
        let sold = cell(rec, cols.idx(&["sold_volume"]))
            .map(|s| parse_dec("sold_volume", s))
            .transpose()?;
        let base_order = cell(rec, cols.idx(&["base_order_volume"]))
            .map(|s| parse_dec("base_order_volume", s))
            .transpose()?;
        let deal = cell(rec, cols.idx(&["deal_id", "id"])).map(|d| format!("deal-{d}"));
        let mut buy = self.entry(line);
        buy.market = Some(market.clone());
        buy.side = Some(Side::Buy);
        buy.created_at = Some(created);
        buy.funds = bought.or(base_order);
        buy.identifier = None;
        buy.ord_type = deal.clone().map(|_| "deal".into());
        self.entries.push(buy);
        if let Some(closed) = closed {
            let mut sell = self.entry(line);
            sell.market = Some(market);
            sell.side = Some(Side::Sell);
            sell.created_at = Some(closed);
            sell.funds = sold;
            sell.ord_type = deal.map(|_| "deal".into());
            self.entries.push(sell);
        }
        Ok(())
    }

    fn freqtrade(&mut self, db: &Path) -> Result<(), ImportError> {
        use rusqlite::{Connection, OpenFlags};
        let err = |e: rusqlite::Error| ImportError::Sqlite {
            path: self.path.clone(),
            message: e.to_string(),
        };
        // Opened read-only and immutable: the bundle copy must stay byte-identical.
        let uri = format!(
            "file:{}?immutable=1",
            percent_encoding::utf8_percent_encode(
                &db.to_string_lossy(),
                percent_encoding::NON_ALPHANUMERIC
            )
            .to_string()
            .replace("%2F", "/")
        );
        let conn = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(err)?;
        let has_table: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='orders'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if has_table == 0 {
            return Err(ImportError::Sqlite {
                path: self.path.clone(),
                message: "no `orders` table: this is not a freqtrade tradesv3.sqlite".into(),
            });
        }
        let mut stmt = conn
            .prepare(
                "SELECT rowid, order_id, ft_pair, side, order_type, price, average, amount, \
                 filled, cost, order_date FROM orders ORDER BY rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    [
                        text_col(r, 1)?,
                        text_col(r, 2)?,
                        text_col(r, 3)?,
                        text_col(r, 4)?,
                        text_col(r, 5)?,
                        text_col(r, 6)?,
                        text_col(r, 7)?,
                        text_col(r, 8)?,
                        text_col(r, 9)?,
                        text_col(r, 10)?,
                    ],
                ))
            })
            .map_err(err)?;
        let mut all = Vec::new();
        for row in rows {
            all.push(row.map_err(err)?);
        }
        for (rowid, c) in all {
            let line = rowid.max(0) as u64;
            let res = self.freqtrade_row(line, &c);
            if let Err(e) = res {
                self.row_failed(line, e)?;
            }
        }
        Ok(())
    }

    fn freqtrade_row(&mut self, line: u64, c: &[Option<String>; 10]) -> Result<(), RowError> {
        let s = |i: usize| c[i].as_deref().map(str::trim).filter(|v| !v.is_empty());
        let mut e = self.entry(line);
        e.order_id = Some(s(0).ok_or("order_id is empty")?.to_string());
        if let Some(p) = s(1) {
            e.market = Some(self.market(p, line)?);
        }
        e.side = s(2).map(parse_side).transpose()?;
        e.ord_type = s(3).map(|t| t.to_ascii_lowercase().into());
        let avg = s(5).map(|v| parse_dec("average", v)).transpose()?;
        e.price = match avg {
            Some(a) if !a.is_zero() => Some(a),
            _ => s(4).map(|v| parse_dec("price", v)).transpose()?,
        };
        let filled = s(7).map(|v| parse_dec("filled", v)).transpose()?;
        e.volume = match filled {
            Some(f) if !f.is_zero() => Some(f),
            _ => s(6).map(|v| parse_dec("amount", v)).transpose()?,
        };
        e.funds = s(8).map(|v| parse_dec("cost", v)).transpose()?;
        e.created_at = s(9).map(parse_time).transpose()?;
        self.entries.push(e);
        Ok(())
    }

    /// The exchange's market trading `base` in `quote` (any case).
    fn pair(&mut self, base: &str, quote: &str) -> Market {
        let (base, quote) = (base.to_ascii_uppercase(), quote.to_ascii_uppercase());
        let key = format!("{base}/{quote}");
        let ex = self.exchange;
        self.markets
            .get(&key, |_| {
                Ok::<_, std::convert::Infallible>((ex.market_of)(&base, &quote))
            })
            .unwrap_or_else(|e| match e {})
    }

    /// Normalizes a market to the exchange's own symbol: ccxt's `BASE/QUOTE[:SETTLE]`, or a
    /// native symbol as the exchange parses it. A symbol the exchange calls foreign fails the
    /// whole file.
    fn market(&mut self, m: &str, line: u64) -> Result<Market, RowError> {
        let m = m.trim();
        if let Some((base, quote)) = m.split_once('/') {
            let quote = quote.split(':').next().unwrap_or(quote);
            return Ok(self.pair(base, quote));
        }
        let ex = self.exchange;
        match self.markets.get(m, ex.parse_symbol) {
            Ok(market) => Ok(market),
            Err(SymbolError::Foreign(detail)) => Err(RowError::Fatal(ImportError::OtherExchange {
                path: self.path.clone(),
                line,
                detail,
                exchange: ex.display,
            })),
            Err(SymbolError::Invalid(detail)) => Err(detail.into()),
        }
    }
}

fn unreachable_format() -> Result<(), RowError> {
    Err(RowError::Skippable(
        "a freqtrade database is not a CSV".into(),
    ))
}

fn text_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(v) => Some(v.to_string()),
        ValueRef::Real(v) => Some(v.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

fn parse_side(s: &str) -> Result<Side, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "bid" | "buy" => Ok(Side::Buy),
        "ask" | "sell" => Ok(Side::Sell),
        other => Err(format!("side `{other}` is not one of bid, ask, buy, sell")),
    }
}

fn parse_dec(what: &str, s: &str) -> Result<Decimal, String> {
    let s = s.trim();
    s.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| format!("{what} `{s}` is not a decimal number"))
}

/// RFC 3339 (any offset), naive `YYYY-MM-DD HH:MM:SS[.f]` (UTC, optional ` UTC` suffix),
/// or epoch milliseconds / seconds (more than 11 digits = milliseconds).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = s.strip_suffix(" UTC").unwrap_or(s);
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    let digits = s.split('.').next().unwrap_or(s);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(n) = s.parse::<f64>() {
            let ms = if digits.len() > 11 { n } else { n * 1000.0 };
            if let Some(t) = DateTime::from_timestamp_millis(ms.round() as i64) {
                return Ok(t);
            }
        }
    }
    Err(format!(
        "time `{s}` is neither RFC 3339 (2026-11-20T14:03:07.120Z) nor epoch seconds/milliseconds"
    ))
}
