//! The bundle's CSV files, byte for byte as the `csv` crate's default writer makes them, but
//! written straight into byte buffers (no `String` per cell), the rows of `orders.csv` on
//! several threads.
//!
//! Rows are in a deterministic order (time, then id). Text cells pass through
//! [`sanitize::csv_text`] (control characters made visible, formula prefixes neutralised with
//! a leading `'`, long values cut); numeric cells are written from `Decimal`s untouched, so a
//! genuine negative number stays a number. A UTF-8 byte-order mark comes first with `--excel`,
//! and always for an exchange whose home language is not English (Excel in that language reads
//! a CSV without one in its legacy code page and garbles every non-ASCII character).
//!
//! `unauthorized_trades.csv` and `fills.csv` lead with what a support agent reads first: the
//! time (the exchange's local time as it sent it, then UTC), market, side, price, volume,
//! amount and fee. A fill whose exchange reports fees per order only gets its share of the
//! order's fee by amount, and `fee_basis` says which it is.
//!
//! An order's `price` column holds its limit price, or, for an order placed by amount (a
//! market buy for a quote amount), that amount; `market` is the exchange's own symbol.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::analysis::{AnalysisInput, OrderVerdict};
use crate::exchange::{Order, OrderState, OrderType, Provenance, Transfer};
use crate::report::format::{
    confidence, dec, fill_loss, match_kind, money, rule_ids, score, score_value,
};
use crate::report::joined::Joined;
use crate::report::sanitize::{csv_text_cow, csv_text_is_plain};
use crate::report::{ReportError, ReportOptions};
use crate::time::ts;

/// Columns of `unauthorized_trades.csv`.
pub const UNAUTHORIZED_COLUMNS: &[&str] = &[
    "created_at_local",
    "created_at_utc",
    "market",
    "side",
    "price",
    "volume",
    "amount",
    "fee",
    "fee_basis",
    "row_kind",
    "order_id",
    "fill_id",
    "identifier",
    "ord_type",
    "state",
    "order_price",
    "order_volume",
    "rules",
    "score",
    "confidence",
    "reference_price",
    "deviation_pct",
    "est_loss_quote",
    "exchange",
    "key_masked",
    "raw_file",
    "raw_sha256",
];

/// Columns of `orders.csv`.
pub const ORDER_COLUMNS: &[&str] = &[
    "exchange",
    "key_masked",
    "order_id",
    "identifier",
    "market",
    "side",
    "ord_type",
    "type_normalized",
    "state",
    "created_at_utc",
    "created_at_local",
    "price",
    "volume",
    "remaining_volume",
    "executed_volume",
    "funds",
    "fee",
    "trades_count",
    "match_kind",
    "bot_log_row",
    "flagged",
    "rules",
    "score",
    "confidence",
    "reference_price",
    "deviation_pct",
    "est_loss_quote",
    "raw_file",
    "raw_sha256",
];

pub const FILL_COLUMNS: &[&str] = &[
    "created_at_local",
    "created_at_utc",
    "market",
    "side",
    "price",
    "volume",
    "amount",
    "fee",
    "fee_basis",
    "fill_id",
    "order_id",
    "order_flagged",
    "exchange",
    "raw_file",
    "raw_sha256",
];

pub const TRANSFER_COLUMNS: &[&str] = &[
    "exchange",
    "transfer_id",
    "kind",
    "currency",
    "net_type",
    "state",
    "amount",
    "fee",
    "address",
    "txid",
    "created_at_utc",
    "created_at_local",
    "done_at_utc",
    "is_cancelable",
    "flagged",
    "rules",
    "raw_file",
    "raw_sha256",
];

pub const BALANCE_COLUMNS: &[&str] = &[
    "when",
    "currency",
    "free",
    "locked",
    "total",
    "avg_buy_price",
    "unit_currency",
];

/// Where a sheet's text goes, a run of whole records at a time: a file of the bundle (a
/// [`crate::fsutil::PieceWriter`], which redacts each run) or memory.
pub trait Sink {
    fn put(&mut self, records: &str) -> std::io::Result<()>;
}

impl Sink for Vec<u8> {
    fn put(&mut self, records: &str) -> std::io::Result<()> {
        self.extend_from_slice(records.as_bytes());
        Ok(())
    }
}

impl Sink for crate::fsutil::PieceWriter {
    fn put(&mut self, records: &str) -> std::io::Result<()> {
        self.piece_str(records)
    }
}

/// How many bytes of whole records a sheet gathers before handing them to its sink.
const RECORDS_CHUNK: usize = 1 << 20;

/// Whether the `csv` crate's default writer quotes a field with these bytes.
fn needs_quotes(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// Records made straight into a byte buffer, byte for byte what the `csv` crate's default
/// writer makes of the same fields (comma, `"` quoting only where a field needs it, doubled
/// quotes, `\n` ends a record), without a `String` per cell: text cells are neutralised
/// ([`csv_text_cow`]) only when a byte needs it, and numbers are formatted into the buffer.
struct Records {
    file: &'static str,
    /// Text, not bytes: a sheet's cells are text, and its sink redacts the text as it is
    /// (no UTF-8 check of hundreds of MB on the thread that writes the file).
    buf: String,
    /// Fields a record has (the header's).
    width: usize,
    /// Fields of the record being written.
    fields: usize,
    /// Reused for a cell formatted before it is neutralised.
    scratch: String,
}

impl Records {
    fn new(file: &'static str, width: usize, buf: String) -> Self {
        Records {
            file,
            buf,
            width,
            fields: 0,
            scratch: String::new(),
        }
    }

    /// Starts a field.
    fn sep(&mut self) {
        if self.fields > 0 {
            self.buf.push(',');
        }
        self.fields += 1;
    }

    /// A field of this text, quoted when it needs it.
    fn field(&mut self, text: &str) {
        self.sep();
        self.quoted(text);
    }

    /// Appends `text` as a field's content, quoted when it needs it (a `"` doubled).
    fn quoted(&mut self, text: &str) {
        if !needs_quotes(text.as_bytes()) {
            self.buf.push_str(text);
            return;
        }
        self.buf.push('"');
        for (i, part) in text.split('"').enumerate() {
            if i > 0 {
                self.buf.push_str("\"\"");
            }
            self.buf.push_str(part);
        }
        self.buf.push('"');
    }

    /// Untrusted or free text, neutralised ([`csv_text_cow`]).
    fn text(&mut self, s: &str) {
        if csv_text_is_plain(s) {
            self.sep();
            self.buf.push_str(s);
        } else {
            let cell = csv_text_cow(s);
            self.field(&cell);
        }
    }

    /// Text made by formatting `args`, neutralised like [`Records::text`].
    fn text_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        let _ = s.write_fmt(args);
        self.text(&s);
        self.scratch = s;
    }

    /// A number (or empty) produced by us from typed data: written as it is.
    fn num(&mut self, s: &str) {
        self.field(s);
    }

    /// A value we produce from typed data (a number), formatted into the buffer: the bytes of
    /// [`Records::num`] of its `to_string()`.
    fn shown(&mut self, v: impl std::fmt::Display) {
        use std::fmt::Write as _;
        self.sep();
        let start = self.buf.len();
        let _ = write!(self.buf, "{v}");
        if needs_quotes(&self.buf.as_bytes()[start..]) {
            let tail = self.buf.split_off(start);
            self.quoted(&tail);
        }
    }

    /// A decimal cell: empty when unknown (the bytes of [`dec`]; a decimal's text never needs
    /// quotes).
    fn dec(&mut self, d: Option<Decimal>) {
        self.sep();
        if let Some(d) = d {
            crate::digits::push_decimal(&mut self.buf, d);
        }
    }

    /// A UTC time as text (the bytes of [`ts`]).
    fn time(&mut self, t: DateTime<Utc>) {
        let at = self.buf.len();
        self.sep();
        if !push_ts(&mut self.buf, t) {
            self.buf.truncate(at);
            self.fields -= 1;
            self.text(&ts(t));
        }
    }

    /// A whole record of the cells of a row built as a list.
    fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), ReportError> {
        for c in cells {
            match c {
                Cell::Text(s) => self.text(s),
                Cell::Num(s) => self.num(s),
            }
        }
        self.end()
    }

    /// Ends the record (it must have as many fields as the header).
    fn end(&mut self) -> Result<(), ReportError> {
        if self.fields != self.width {
            return Err(ReportError::Csv {
                file: self.file.into(),
                message: format!(
                    "found record with {} fields, but the previous record has {} fields",
                    self.fields, self.width
                ),
            });
        }
        self.buf.push('\n');
        self.fields = 0;
        Ok(())
    }
}

/// Appends `t` as [`ts`] writes it (`2026-11-20T14:03:07.120Z`) when it is in the years
/// 0–9999 and not a leap second; false (nothing appended) otherwise.
fn push_ts(buf: &mut String, t: DateTime<Utc>) -> bool {
    // Milliseconds are the first three digits of the microseconds.
    let micros = crate::time::date_time_micros(t.timestamp(), t.timestamp_subsec_nanos());
    match micros.as_ref().map(|b| std::str::from_utf8(&b[..23])) {
        Some(Ok(text)) => {
            buf.push_str(text);
            buf.push('Z');
            true
        }
        _ => false,
    }
}

/// Writes rows to a sink; text cells are neutralised, numeric ones written as they are.
struct Sheet<'s> {
    w: Records,
    sink: &'s mut dyn Sink,
}

/// One cell of a row, borrowed where the data already holds the text (a million-row sheet
/// makes no copy of an id, a market or a time it can write as it is).
enum Cell<'a> {
    /// Untrusted or free text: neutralised.
    Text(Cow<'a, str>),
    /// A number (or empty) produced by us from typed data: written as is.
    Num(Cow<'a, str>),
}

fn t<'a>(s: impl Into<Cow<'a, str>>) -> Cell<'a> {
    Cell::Text(s.into())
}
fn n<'a>(s: impl Into<Cow<'a, str>>) -> Cell<'a> {
    Cell::Num(s.into())
}

impl<'s> Sheet<'s> {
    fn new(
        file: &'static str,
        header: &[&str],
        opts: &ReportOptions,
        sink: &'s mut dyn Sink,
    ) -> Result<Self, ReportError> {
        let mut buf = String::with_capacity(RECORDS_CHUNK + (64 << 10));
        if opts.excel {
            buf.push('\u{FEFF}');
        }
        let mut w = Records::new(file, header.len(), buf);
        for h in header {
            w.field(h);
        }
        w.end()?;
        Ok(Sheet { w, sink })
    }

    fn row(&mut self, cells: Vec<Cell<'_>>) -> Result<(), ReportError> {
        self.w.row(&cells)?;
        if self.w.buf.len() >= RECORDS_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// One row per item, as [`Sheet::row`] would write them one by one: parts of
    /// [`ROWS_PER_PART`] items are made on several threads while this one hands the parts
    /// made so far to the sink, in order (the sink's hashing and writing overlap the making).
    /// At most two parts per thread wait for the sink. `row` writes the row of one item.
    fn rows_parallel<T: Sync>(
        mut self,
        items: &[T],
        row: &(dyn Fn(&T, &mut Records) -> Result<(), ReportError> + Sync),
    ) -> Result<Self, ReportError> {
        self.flush()?;
        let parts: Vec<&[T]> = items.chunks(ROWS_PER_PART).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(parts.len().max(1));
        let (file, width) = (self.w.file, self.w.width);
        let panicked = || ReportError::Csv {
            file: file.into(),
            message: "a thread writing rows panicked".into(),
        };
        let sink = &mut *self.sink;
        std::thread::scope(|scope| {
            let mut made = Vec::with_capacity(threads);
            let mut handles = Vec::with_capacity(threads);
            for first in 0..threads {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<String, ReportError>>(1);
                made.push(rx);
                let parts = &parts;
                handles.push(scope.spawn(move || {
                    for chunk in parts.iter().skip(first).step_by(threads) {
                        let mut part = Records::new(file, width, String::new());
                        let res = chunk
                            .iter()
                            .try_for_each(|item| row(item, &mut part))
                            .map(|()| part.buf);
                        let failed = res.is_err();
                        // A closed channel: the sheet stopped at an error of its own.
                        if tx.send(res).is_err() || failed {
                            return;
                        }
                    }
                }));
            }
            let mut put = || -> Result<(), ReportError> {
                for i in 0..parts.len() {
                    let part = made[i % threads].recv().map_err(|_| panicked())??;
                    sink.put(&part).map_err(|source| ReportError::Write {
                        path: file.into(),
                        source,
                    })?;
                }
                Ok(())
            };
            let res = put();
            // Stop the makers still waiting to hand a part over, then collect them.
            drop(made);
            let joined = handles.into_iter().map(|h| h.join()).collect::<Vec<_>>();
            res?;
            if joined.iter().any(Result::is_err) {
                return Err(panicked());
            }
            Ok(())
        })?;
        Ok(self)
    }

    fn flush(&mut self) -> Result<(), ReportError> {
        if !self.w.buf.is_empty() {
            self.sink
                .put(&self.w.buf)
                .map_err(|source| ReportError::Write {
                    path: self.w.file.into(),
                    source,
                })?;
            self.w.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), ReportError> {
        self.flush()
    }
}

/// Items whose rows one thread makes at a time in [`Sheet::rows_parallel`].
const ROWS_PER_PART: usize = if cfg!(test) { 3 } else { 8192 };

fn prov(p: &Option<std::sync::Arc<Provenance>>) -> (&str, &str) {
    p.as_ref()
        .map(|p| (p.raw_file.as_str(), p.raw_sha256.as_str()))
        .unwrap_or_default()
}

/// The order's state as a word (its variant's name in lower case).
fn state(o: &Order) -> &'static str {
    match o.state {
        OrderState::Open => "open",
        OrderState::Done => "done",
        OrderState::Cancelled => "cancelled",
        OrderState::Other => "other",
    }
}

/// The order's normalized type as a word (its variant's name in lower case).
fn type_normalized(o: &Order) -> &'static str {
    match o.order_type {
        OrderType::Limit => "limit",
        OrderType::Market => "market",
        OrderType::Best => "best",
        OrderType::Other => "other",
    }
}

/// `unauthorized_trades.csv`: one row per fill of a flagged order when its fills are known
/// (`row_kind` = `fill`: price, volume, funds, fee, deviation and loss are the fill's, against
/// the order's reference price), else one row for the order (`row_kind` = `order`: the
/// order's figures and analysis' estimate).
pub fn unauthorized_trades(
    j: &Joined<'_>,
    opts: &ReportOptions,
    out: &mut dyn Sink,
) -> Result<(), ReportError> {
    let mut s = Sheet::new("unauthorized_trades.csv", UNAUTHORIZED_COLUMNS, opts, out)?;
    let input = j.input;
    for (o, v) in j.flagged() {
        // What follows the identifying columns, the same for every row of the order.
        let verdict = |dev: String, loss: String| {
            vec![
                t(rule_ids(&v.rules)),
                n(score(v.score)),
                t(confidence(v.confidence)),
                n(dec(v.reference_price)),
                n(dev),
                n(loss),
                t(&input.exchange),
                t(&input.key_masked),
            ]
        };
        let fills = j.fills_by_order.get(o.id.as_str());
        match fills {
            Some(fills) if !fills.is_empty() => {
                for f in fills {
                    let (dev, loss) = match v.reference_price {
                        Some(r) => {
                            let (d, l) = fill_loss(f.side, f.price, f.volume, r);
                            (d.to_string(), l.to_string())
                        }
                        None => (String::new(), String::new()),
                    };
                    let (rf, rs) = if f.provenance.is_some() {
                        prov(&f.provenance)
                    } else {
                        prov(&o.provenance)
                    };
                    let (fee, basis) = fee_cells(j, o, f);
                    let mut row = vec![
                        t(&f.created_at_local),
                        t(ts(f.created_at)),
                        t(f.market.as_str()),
                        t(f.side.as_str()),
                        n(f.price.to_string()),
                        n(f.volume.to_string()),
                        n(f.funds.to_string()),
                        n(fee),
                        t(basis),
                        t("fill"),
                        t(&o.id),
                        t(&f.id),
                        t(o.client_id.as_deref().unwrap_or("")),
                        t(o.native_type.as_str()),
                        t(state(o)),
                        n(dec(o.price.or(o.quote_amount))),
                        n(dec(o.volume)),
                    ];
                    row.extend(verdict(dev, loss));
                    row.extend([t(rf), t(rs)]);
                    s.row(row)?;
                }
            }
            _ => {
                let (rf, rs) = prov(&o.provenance);
                let mut row = vec![
                    t(&o.created_at_local),
                    t(ts(o.created_at)),
                    t(o.market.as_str()),
                    t(o.side.as_str()),
                    n(dec(avg_price(o))),
                    n(o.executed_volume.to_string()),
                    n(dec(o.executed_funds)),
                    n(o.paid_fee.to_string()),
                    t("order"),
                    t("order"),
                    t(&o.id),
                    t(""),
                    t(o.client_id.as_deref().unwrap_or("")),
                    t(o.native_type.as_str()),
                    t(state(o)),
                    n(dec(o.price.or(o.quote_amount))),
                    n(dec(o.volume)),
                ];
                row.extend(verdict(
                    dec(v.deviation_pct),
                    v.est_loss_quote.map(money).unwrap_or_default(),
                ));
                row.extend([t(rf), t(rs)]);
                s.row(row)?;
            }
        }
    }
    s.finish()
}

/// An order's average execution price (executed funds / executed volume), if it filled.
fn avg_price(o: &Order) -> Option<rust_decimal::Decimal> {
    match o.executed_funds {
        Some(f) if !o.executed_volume.is_zero() => Some((f / o.executed_volume).round_dp(8)),
        _ => None,
    }
}

/// The fee cell of a fill and its basis: `fill` (the exchange's per-fill fee) or
/// `order share` (the order's fee total shared over its fills by amount).
fn fee_cells(j: &Joined<'_>, o: &Order, f: &crate::exchange::Fill) -> (String, &'static str) {
    match j.fill_fee(o, f) {
        Some((fee, false)) => (fee.to_string(), "fill"),
        Some((fee, true)) => (fee.to_string(), "order share"),
        None => (String::new(), ""),
    }
}

/// `orders.csv`: every order of the window, flagged or not, with its match and verdict.
pub fn orders(j: &Joined<'_>, opts: &ReportOptions, out: &mut dyn Sink) -> Result<(), ReportError> {
    Sheet::new("orders.csv", ORDER_COLUMNS, opts, out)?
        .rows_parallel(&j.orders, &|(o, v), w| order_row(j, o, *v, w))?
        .finish()
}

/// Writes the `orders.csv` row of one order.
fn order_row(
    j: &Joined<'_>,
    o: &Order,
    v: Option<&OrderVerdict>,
    w: &mut Records,
) -> Result<(), ReportError> {
    let input = j.input;
    let (rf, rs) = prov(&o.provenance);
    w.text(&input.exchange);
    w.text(&input.key_masked);
    w.text(&o.id);
    w.text(o.client_id.as_deref().unwrap_or(""));
    w.text(o.market.as_str());
    w.text(o.side.as_str());
    w.text(&o.native_type);
    w.text(type_normalized(o));
    w.text(state(o));
    w.time(o.created_at);
    w.text(&o.created_at_local);
    w.dec(o.price.or(o.quote_amount));
    w.dec(o.volume);
    w.dec(o.remaining_volume);
    w.shown(o.executed_volume);
    w.dec(o.executed_funds);
    w.shown(o.paid_fee);
    w.shown(o.trades_count);
    match v {
        Some(v) => {
            w.text(match_kind(v.match_kind));
            match j.matched_row_at(v) {
                Some((file, line)) => w.text_fmt(format_args!("{file}:{line}")),
                None => w.text(""),
            }
            w.text(if v.flagged { "true" } else { "false" });
            w.text(&rule_ids(&v.rules));
            w.shown(format_args!("{:.2}", score_value(v.score)));
            w.text(confidence(v.confidence));
            w.dec(v.reference_price);
            w.dec(v.deviation_pct);
            match v.est_loss_quote {
                Some(l) => w.num(&money(l)),
                None => w.num(""),
            }
        }
        None => {
            for c in ["not-analysed", "", "false", ""] {
                w.text(c);
            }
            w.num("");
            w.text("");
            for _ in 0..3 {
                w.num("");
            }
        }
    }
    w.text(rf);
    w.text(rs);
    w.end()
}

/// `fills.csv`: every known fill, with whether its order was flagged.
pub fn fills(j: &Joined<'_>, opts: &ReportOptions, out: &mut dyn Sink) -> Result<(), ReportError> {
    let mut s = Sheet::new("fills.csv", FILL_COLUMNS, opts, out)?;
    let flagged: BTreeSet<&str> = j.flagged().map(|(o, _)| o.id.as_str()).collect();
    // Only the orders a fill names are looked up: a million orders without fills build
    // nothing.
    let orders: std::collections::BTreeMap<&str, &Order> = j
        .orders
        .iter()
        .filter(|(o, _)| j.fills_by_order.contains_key(o.id.as_str()))
        .map(|(o, _)| (o.id.as_str(), *o))
        .collect();
    for f in &j.fills {
        let (rf, rs) = prov(&f.provenance);
        let (fee, basis) = match orders.get(f.order_id.as_str()) {
            Some(o) => fee_cells(j, o, f),
            None => (dec(f.fee), if f.fee.is_some() { "fill" } else { "" }),
        };
        s.row(vec![
            t(&f.created_at_local),
            t(ts(f.created_at)),
            t(f.market.as_str()),
            t(f.side.as_str()),
            n(f.price.to_string()),
            n(f.volume.to_string()),
            n(f.funds.to_string()),
            n(fee),
            t(basis),
            t(&f.id),
            t(&f.order_id),
            t(flagged.contains(f.order_id.as_str()).to_string()),
            t(&j.input.exchange),
            t(rf),
            t(rs),
        ])?;
    }
    s.finish()
}

/// `withdrawals.csv` / `deposits.csv`: every transfer, with its verdict (R13) if any.
pub fn transfers(
    j: &Joined<'_>,
    list: &[Transfer],
    file: &'static str,
    opts: &ReportOptions,
    out: &mut dyn Sink,
) -> Result<(), ReportError> {
    let mut s = Sheet::new(file, TRANSFER_COLUMNS, opts, out)?;
    let mut sorted: Vec<&Transfer> = list.iter().collect();
    sorted.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    for tr in sorted {
        let v = j.transfer_verdicts.get(tr.id.as_str());
        let (rf, rs) = prov(&tr.provenance);
        s.row(vec![
            t(&j.input.exchange),
            t(&tr.id),
            t(format!("{:?}", tr.kind).to_lowercase()),
            t(&tr.currency),
            t(tr.net_type.as_deref().unwrap_or("")),
            t(&tr.state),
            n(tr.amount.to_string()),
            n(dec(tr.fee)),
            t(tr.address.as_deref().unwrap_or("")),
            t(tr.txid.as_deref().unwrap_or("")),
            t(ts(tr.created_at)),
            t(&tr.created_at_local),
            t(tr.done_at.map(ts).unwrap_or_default()),
            t(tr.is_cancelable.to_string()),
            t(v.is_some_and(|v| v.flagged).to_string()),
            t(v.map(|v| rule_ids(&v.rules)).unwrap_or_default()),
            t(rf),
            t(rs),
        ])?;
    }
    s.finish()
}

/// `balances.csv`: balances at the start and at the end of the run (`when`), by currency.
pub fn balances(
    input: &AnalysisInput,
    opts: &ReportOptions,
    out: &mut dyn Sink,
) -> Result<(), ReportError> {
    let mut s = Sheet::new("balances.csv", BALANCE_COLUMNS, opts, out)?;
    for (when, list) in [
        ("start", &input.balances_start),
        ("end", &input.balances_end),
    ] {
        let mut sorted: Vec<_> = list.iter().collect();
        sorted.sort_by(|a, b| a.currency.cmp(&b.currency));
        for b in sorted {
            s.row(vec![
                t(when),
                t(&b.currency),
                n(b.free.to_string()),
                n(b.locked.to_string()),
                n((b.free + b.locked).to_string()),
                n(dec(b.avg_buy_price)),
                t(b.unit_currency.as_deref().unwrap_or("")),
            ])?;
        }
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row written cell by cell, borrowing what needs no change, gives the very bytes of the
    /// whole record written at once from neutralised copies (quotes, separators, line breaks,
    /// formula prefixes, control characters, empty and long cells).
    #[test]
    fn rows_are_the_bytes_of_whole_records_of_neutralised_cells() {
        let long = "x".repeat(crate::report::sanitize::MAX_TEXT_CHARS + 5);
        let cells: Vec<(bool, &str)> = vec![
            (true, "plain"),
            (true, ""),
            (true, "a,b"),
            (true, "say \"hi\""),
            (true, "two\nlines"),
            (true, "=1+2"),
            (true, "-5"),
            (true, "\u{1b}[31mred"),
            (true, "ABC-XYZ"),
            (true, "한국어"),
            (true, &long),
            (false, "-0.5"),
            (false, ""),
            (false, "1,5"),
        ];
        let mut expected = csv::WriterBuilder::new().from_writer(Vec::new());
        let copies: Vec<String> = cells
            .iter()
            .map(|(text, s)| {
                if *text {
                    crate::report::sanitize::csv_text(s)
                } else {
                    s.to_string()
                }
            })
            .collect();
        expected.write_record(["h"; 14]).unwrap();
        expected.write_record(&copies).unwrap();
        expected.write_record(&copies).unwrap();
        let expected = expected.into_inner().unwrap();

        let mut out: Vec<u8> = Vec::new();
        let mut sheet =
            Sheet::new("t.csv", &["h"; 14], &ReportOptions::default(), &mut out).unwrap();
        for _ in 0..2 {
            let row = cells
                .iter()
                .map(|(text, s)| if *text { t(*s) } else { n(*s) })
                .collect();
            sheet.row(row).unwrap();
        }
        sheet.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    /// Rows made in parts on several threads come out in the order of the items, byte for
    /// byte as rows written one by one (blocks of several parts, a last part cut short, the
    /// header and byte-order mark first).
    #[test]
    fn rows_made_in_parallel_are_the_rows_written_one_by_one() {
        let items: Vec<String> = (0..50)
            .map(|i| match i % 4 {
                0 => format!("id-{i}"),
                1 => format!("={i}"),
                2 => format!("with,comma {i}"),
                _ => format!("line\nbreak {i}"),
            })
            .collect();
        fn row(s: &str) -> Vec<Cell<'_>> {
            vec![t(s), n(s.len().to_string()), t("")]
        }
        let excel = ReportOptions { excel: true };
        let mut one_by_one: Vec<u8> = Vec::new();
        let mut sheet = Sheet::new("t.csv", &["a", "b", "c"], &excel, &mut one_by_one).unwrap();
        for s in &items {
            sheet.row(row(s)).unwrap();
        }
        sheet.finish().unwrap();
        let mut parallel: Vec<u8> = Vec::new();
        let mut sheet = Sheet::new("t.csv", &["a", "b", "c"], &excel, &mut parallel).unwrap();
        sheet.row(row("before")).unwrap();
        let sheet = sheet
            .rows_parallel(&items, &|s, part| part.row(&row(s)))
            .unwrap();
        sheet.finish().unwrap();
        let mut expected: Vec<u8> = Vec::new();
        let mut sheet = Sheet::new("t.csv", &["a", "b", "c"], &excel, &mut expected).unwrap();
        sheet.row(row("before")).unwrap();
        for s in &items {
            sheet.row(row(s)).unwrap();
        }
        sheet.finish().unwrap();
        assert!(one_by_one.len() > 3 * items.len());
        assert_eq!(
            String::from_utf8(parallel).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Any text, number, decimal and time cell gives the bytes the `csv` crate writes for the
    /// neutralised (text, time) or `to_string()` (number, decimal) copy of the value.
    fn same_as_csv_crate(
        texts: &[String],
        nums: &[String],
        decs: &[Option<Decimal>],
        time: DateTime<Utc>,
    ) {
        let width = texts.len() + nums.len() + decs.len() + 1;
        let mut expected = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut record: Vec<String> = texts.iter().map(|s| csv_text_cow(s).into_owned()).collect();
        record.extend(nums.iter().cloned());
        record.extend(decs.iter().map(|d| dec(*d)));
        record.push(csv_text_cow(&ts(time)).into_owned());
        expected.write_record(&record).unwrap();
        let expected = expected.into_inner().unwrap();
        let mut w = Records::new("t.csv", width, String::new());
        for s in texts {
            w.text(s);
        }
        for s in nums {
            w.num(s);
        }
        for d in decs {
            w.dec(*d);
        }
        w.time(time);
        w.end().unwrap();
        assert_eq!(w.buf, String::from_utf8_lossy(&expected));
    }

    proptest! {
        #[test]
        fn records_are_the_csv_crates_bytes(
            texts in proptest::collection::vec("\\PC*|[=+\\-@\t\r\n\",\u{1b}\u{202e} a-z]{0,12}|[ -~]{1020,1030}", 1..6),
            nums in proptest::collection::vec("[-0-9.,\"\n]{0,6}", 0..3),
            decs in proptest::collection::vec(proptest::option::of((any::<i64>(), 0u32..20)), 0..4),
            millis in -80_000_000_000_000i64..300_000_000_000_000,
            nanos in 0u32..1_000_000,
        ) {
            let decs: Vec<Option<Decimal>> =
                decs.into_iter().map(|d| d.map(|(m, s)| Decimal::new(m, s))).collect();
            let time = DateTime::from_timestamp_millis(millis).unwrap()
                + chrono::Duration::nanoseconds(i64::from(nanos));
            same_as_csv_crate(&texts, &nums, &decs, time);
        }
    }

    /// A leap second and the years beyond four digits are written as [`ts`] writes them.
    #[test]
    fn times_outside_the_fast_path_are_written_by_ts() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap()
            .and_utc();
        let far = chrono::NaiveDate::from_ymd_opt(12_345, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        let before = chrono::NaiveDate::from_ymd_opt(-7, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap()
            .and_utc();
        for time in [leap, far, before] {
            same_as_csv_crate(&["x".into()], &[], &[None], time);
        }
    }
}
