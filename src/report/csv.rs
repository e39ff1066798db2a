//! The bundle's CSV files, written with the `csv` crate.
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

use crate::analysis::{AnalysisInput, OrderVerdict};
use crate::exchange::{Order, OrderState, OrderType, Provenance, Transfer};
use crate::report::format::{confidence, dec, fill_loss, match_kind, money, rule_ids, score};
use crate::report::joined::Joined;
use crate::report::sanitize::csv_text_cow;
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

/// Where a sheet's bytes go, a run of whole records at a time: a file of the bundle (a
/// [`crate::fsutil::PieceWriter`], which redacts each run) or memory.
pub trait Sink {
    fn put(&mut self, records: &[u8]) -> std::io::Result<()>;
}

impl Sink for Vec<u8> {
    fn put(&mut self, records: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(records);
        Ok(())
    }
}

impl Sink for crate::fsutil::PieceWriter {
    fn put(&mut self, records: &[u8]) -> std::io::Result<()> {
        self.piece(records)
    }
}

/// Bytes a sheet handed over since its last whole record went to the sink. `flush` is only
/// called after a whole record (and by the CSV writer when it is done), so the sink always
/// gets whole records: a million-row sheet is never held in memory.
struct Records<'s> {
    buf: Vec<u8>,
    sink: &'s mut dyn Sink,
}

impl std::io::Write for Records<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.sink.put(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// How many bytes of whole records a sheet gathers before handing them to its sink.
const RECORDS_CHUNK: usize = 1 << 20;

/// Writes rows to a sink; text cells are neutralised, numeric ones written as they are.
struct Sheet<'s> {
    file: &'static str,
    w: csv::Writer<Records<'s>>,
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
        let mut buf = Vec::with_capacity(RECORDS_CHUNK + (64 << 10));
        if opts.excel {
            buf.extend_from_slice("\u{FEFF}".as_bytes());
        }
        let mut w = csv::WriterBuilder::new().from_writer(Records { buf, sink });
        w.write_record(header).map_err(|e| csv_err(file, e))?;
        Ok(Sheet { file, w })
    }

    fn row(&mut self, cells: Vec<Cell<'_>>) -> Result<(), ReportError> {
        write_cells(&mut self.w, self.file, &cells)?;
        if self.w.get_ref().buf.len() >= RECORDS_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// One row per item, as [`Sheet::row`] would write them one by one: the rows of each
    /// block are made on several threads (a part of [`ROWS_PER_PART`] items each) and handed
    /// to the sink in order. `row` writes the row of one item into its part.
    fn rows_parallel<T: Sync>(
        mut self,
        items: &[T],
        row: &(dyn Fn(&T, &mut Part) -> Result<(), ReportError> + Sync),
    ) -> Result<Self, ReportError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let file = self.file;
        for block in items.chunks(threads * ROWS_PER_PART) {
            let parts: Vec<Result<Vec<u8>, ReportError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = block
                    .chunks(ROWS_PER_PART)
                    .map(|chunk| {
                        scope.spawn(move || {
                            let mut part = Part {
                                file,
                                w: csv::WriterBuilder::new().from_writer(Vec::new()),
                            };
                            for item in chunk {
                                row(item, &mut part)?;
                            }
                            part.w.into_inner().map_err(|e| ReportError::Write {
                                path: file.into(),
                                source: e.into_error(),
                            })
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(ReportError::Csv {
                                file: file.into(),
                                message: "a thread writing rows panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
            // Whatever the writer still holds goes first, then the parts in order, then the
            // writer goes on after them.
            let records = self.w.into_inner().map_err(|e| ReportError::Write {
                path: file.into(),
                source: e.into_error(),
            })?;
            let Records { buf, sink } = records;
            for part in parts {
                sink.put(&part?).map_err(|source| ReportError::Write {
                    path: file.into(),
                    source,
                })?;
            }
            self.w = csv::WriterBuilder::new().from_writer(Records { buf, sink });
        }
        Ok(self)
    }

    fn flush(&mut self) -> Result<(), ReportError> {
        self.w.flush().map_err(|source| ReportError::Write {
            path: self.file.into(),
            source,
        })
    }

    fn finish(mut self) -> Result<(), ReportError> {
        self.flush()
    }
}

/// Items whose rows one thread makes at a time in [`Sheet::rows_parallel`].
const ROWS_PER_PART: usize = if cfg!(test) { 3 } else { 8192 };

/// The rows of one part of a sheet, made apart from the others.
struct Part {
    file: &'static str,
    w: csv::Writer<Vec<u8>>,
}

impl Part {
    fn row(&mut self, cells: Vec<Cell<'_>>) -> Result<(), ReportError> {
        write_cells(&mut self.w, self.file, &cells)
    }
}

/// Writes one record: text cells neutralised (borrowed when they need no change), numeric
/// ones as they are.
fn write_cells<W: std::io::Write>(
    w: &mut csv::Writer<W>,
    file: &str,
    cells: &[Cell<'_>],
) -> Result<(), ReportError> {
    for c in cells {
        let field = match c {
            Cell::Text(s) => csv_text_cow(s),
            Cell::Num(s) => Cow::Borrowed(s.as_ref()),
        };
        w.write_field(field.as_bytes())
            .map_err(|e| csv_err(file, e))?;
    }
    // An empty iterator ends the record the fields above began.
    w.write_record(None::<&[u8]>).map_err(|e| csv_err(file, e))
}

fn csv_err(file: &str, e: csv::Error) -> ReportError {
    ReportError::Csv {
        file: file.into(),
        message: e.to_string(),
    }
}

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
        .rows_parallel(&j.orders, &|(o, v), part| part.row(order_row(j, o, *v)))?
        .finish()
}

/// The `orders.csv` row of one order.
fn order_row<'a>(j: &'a Joined<'_>, o: &'a Order, v: Option<&'a OrderVerdict>) -> Vec<Cell<'a>> {
    let input = j.input;
    let (rf, rs) = prov(&o.provenance);
    let mut row = vec![
        t(input.exchange.as_str()),
        t(input.key_masked.as_str()),
        t(o.id.as_str()),
        t(o.client_id.as_deref().unwrap_or("")),
        t(o.market.as_str()),
        t(o.side.as_str()),
        t(o.native_type.as_str()),
        t(type_normalized(o)),
        t(state(o)),
        t(ts(o.created_at)),
        t(o.created_at_local.as_str()),
        n(dec(o.price.or(o.quote_amount))),
        n(dec(o.volume)),
        n(dec(o.remaining_volume)),
        n(o.executed_volume.to_string()),
        n(dec(o.executed_funds)),
        n(o.paid_fee.to_string()),
        n(o.trades_count.to_string()),
    ];
    match v {
        Some(v) => row.extend([
            t(match_kind(v.match_kind)),
            t(j.matched_row(v)),
            t(if v.flagged { "true" } else { "false" }),
            t(rule_ids(&v.rules)),
            n(score(v.score)),
            t(confidence(v.confidence)),
            n(dec(v.reference_price)),
            n(dec(v.deviation_pct)),
            n(v.est_loss_quote.map(money).unwrap_or_default()),
        ]),
        None => row.extend([
            t("not-analysed"),
            t(""),
            t("false"),
            t(""),
            n(""),
            t(""),
            n(""),
            n(""),
            n(""),
        ]),
    }
    row.extend([t(rf), t(rs)]);
    row
}

/// `fills.csv`: every known fill, with whether its order was flagged.
pub fn fills(j: &Joined<'_>, opts: &ReportOptions, out: &mut dyn Sink) -> Result<(), ReportError> {
    let mut s = Sheet::new("fills.csv", FILL_COLUMNS, opts, out)?;
    let flagged: BTreeSet<&str> = j.flagged().map(|(o, _)| o.id.as_str()).collect();
    let orders: std::collections::BTreeMap<&str, &Order> =
        j.orders.iter().map(|(o, _)| (o.id.as_str(), *o)).collect();
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
            .rows_parallel(&items, &|s, part| part.row(row(s)))
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
