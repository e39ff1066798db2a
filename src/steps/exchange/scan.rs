//! The markets an export reads where the exchange keeps history per market
//! ([`crate::exchange::Capabilities::history_needs_symbol`]), and the fills it reads per
//! window where the exchange lists fills by time ([`FillsSource::PerWindow`]).
//!
//! Completeness then depends on which markets are scanned, so the choice is the adapter's
//! ([`crate::exchange::Exchange::history_markets`]: it knows where the account's assets show),
//! fed with what the run's own evidence names: the bot logs in the bundle and every order
//! this run already saw (open orders of the snapshot, orders the containment cancelled). The
//! answer, with a reason for every market and every source read, is written to
//! `<step id>-symbols.json`: the bundle's statement of exactly which markets the history covers
//! and why. It is kept in the export's resume state, so a resume reads the same markets.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::export::{initial_spans, span_file, Span};
use super::records::to_records_json;
use super::{to_json, ts, Race};
use crate::exchange::{
    CallPlan, Fill, FillsQuery, FillsSource, Market, MarketHint, MarketScan, MarketScanRequest,
    MarketSelection, Order, Window,
};
use crate::rundir::RunDir;
use crate::steps::{StepContext, StepError};

/// The completeness statement of an export's markets (`<step id>-symbols.json`).
#[derive(Debug, Serialize)]
struct SymbolsFile<'a> {
    exchange: &'a str,
    window_from: String,
    window_to: String,
    /// `touched`, `all` or `listed`.
    selection: &'a MarketSelection,
    /// How many markets the history covers: exactly those listed in `markets`.
    market_count: usize,
    statement: String,
    plan: Option<&'a CallPlan>,
    plan_text: Option<String>,
    markets: Vec<SymbolLine<'a>>,
    sources: &'a [crate::exchange::ScanSource],
    limits: &'a [String],
}

#[derive(Debug, Serialize)]
struct SymbolLine<'a> {
    symbol: &'a str,
    base: &'a str,
    quote: &'a str,
    reasons: &'a [String],
}

/// The per-step file name of the statement.
pub(crate) fn symbols_file(step_id: &str) -> String {
    format!("{step_id}-symbols.json")
}

/// Markets the run's own evidence names: every bot log in the bundle, and every order and fill
/// in the run's raw answers so far (the snapshot's open orders, the orders containment
/// cancelled). Unreadable pieces are passed over: they only add hints.
fn evidence_hints(ctx: &StepContext, exchange: &str) -> Vec<MarketHint> {
    let mut out: BTreeMap<String, MarketHint> = BTreeMap::new();
    let Some(desc) = crate::exchange::registry::get(exchange) else {
        return Vec::new();
    };
    let dir = ctx.rundir.path();
    if let Ok(logs) = crate::investigation::load_bot_logs(desc, dir) {
        for log in logs {
            for e in &log.entries {
                if let Some(m) = &e.market {
                    out.entry(m.symbol.to_string())
                        .or_insert_with(|| MarketHint {
                            market: m.clone(),
                            source: format!("named by the bot log {}", log.bundle_path),
                        });
                }
            }
        }
    }
    let opts = crate::exchange::replay::RebuildOptions { skip_corrupt: true };
    if let Ok(h) = crate::exchange::replay::rebuild(desc, dir, opts) {
        for o in &h.orders {
            let file = o
                .provenance
                .as_ref()
                .map(|p| p.raw_file.clone())
                .unwrap_or_default();
            out.entry(o.market.symbol.to_string())
                .or_insert_with(|| MarketHint {
                    market: o.market.clone(),
                    source: format!("order {} seen earlier in this run ({file})", o.id),
                });
        }
        for f in &h.fills {
            out.entry(f.market.symbol.to_string())
                .or_insert_with(|| MarketHint {
                    market: f.market.clone(),
                    source: format!("fill {} seen earlier in this run", f.id),
                });
        }
    }
    out.into_values().collect()
}

/// The markets to read (from the resume state when an earlier attempt chose them), written to
/// the statement file; the progress bar's plan is printed. `markets` given by the playbook
/// become a listed selection.
pub(crate) async fn choose(
    ctx: &StepContext,
    race: &mut Race<'_>,
    window: Window,
    selection: MarketSelection,
    saved: Option<MarketScan>,
) -> Result<(MarketScan, Option<CallPlan>), StepError> {
    let exchange = race.session().primary().capabilities().name.clone();
    let scan = match saved {
        Some(s) => s,
        None => {
            let request = MarketScanRequest {
                window,
                hints: if selection == MarketSelection::Touched {
                    evidence_hints(ctx, &exchange)
                } else {
                    Vec::new()
                },
                selection,
            };
            ctx.printer.status(&format!(
                "[{}] {} keeps history per market: choosing the markets to read ({})",
                ctx.step_id,
                exchange,
                match &request.selection {
                    MarketSelection::Touched => "every market of an asset the account touched",
                    MarketSelection::All => "every listed market",
                    MarketSelection::Listed(_) => "the markets given",
                }
            ));
            match race
                .read(|ex| {
                    let request = request.clone();
                    async move { ex.history_markets(&request).await }
                })
                .await
            {
                Ok(s) => s,
                Err(e) => return Err(race.fail(e, "market scan")),
            }
        }
    };
    let plan = race
        .session()
        .reader()
        .history_plan(scan.markets.len(), window);
    let plan_text = plan.as_ref().map(CallPlan::describe);
    if let Some(t) = &plan_text {
        ctx.printer.status(&format!(
            "[{}] {} markets over {} .. {}: {t}",
            ctx.step_id,
            scan.markets.len(),
            ts(window.from),
            ts(window.to)
        ));
    }
    let statement = format!(
        "Orders and fills were read for exactly the {} markets listed here, over the whole window; \
         each lists why it was read. Markets not listed were not read: {}",
        scan.markets.len(),
        match &scan.selection {
            MarketSelection::All => "none, every market the exchange lists was read".to_string(),
            MarketSelection::Listed(_) => {
                "only the markets given were asked for (--symbols)".to_string()
            }
            MarketSelection::Touched => format!(
                "a market is missing only if its asset left no trace in any source below{}",
                if scan.limits.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", scan.limits.join("; "))
                }
            ),
        }
    );
    let file = SymbolsFile {
        exchange: &exchange,
        window_from: ts(window.from),
        window_to: ts(window.to),
        selection: &scan.selection,
        market_count: scan.markets.len(),
        statement,
        plan: plan.as_ref(),
        plan_text,
        markets: scan
            .markets
            .iter()
            .map(|m| SymbolLine {
                symbol: &m.market.symbol,
                base: &m.market.base,
                quote: &m.market.quote,
                reasons: &m.reasons,
            })
            .collect(),
        sources: &scan.sources,
        limits: &scan.limits,
    };
    ctx.rundir
        .write(&symbols_file(&ctx.step_id), &to_json(&file)?)?;
    Ok((scan, plan))
}

/// One window of one market whose fills were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FillChunk {
    #[serde(flatten)]
    pub span: Span,
    pub count: usize,
    /// Normalized fills, relative to the run directory.
    pub file: String,
}

/// The fills of an export, where the exchange lists them per window
/// (`export/window-fills.json`): which markets they cover and the fills.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WindowFills {
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    /// Every fill of an order of these markets inside the window was read.
    pub markets: Vec<String>,
    pub fills: Vec<Fill>,
}

pub(crate) const WINDOW_FILLS: &str = "export/window-fills.json";

fn fill_chunk_file(s: &Span) -> String {
    span_file("export/fills-window", s)
}

/// Reads the fills of every market that has an order with a fill in `orders`, window by
/// window (a market without one cannot have a fill in the window), saving each window before
/// the next call so a resume starts where this stopped. `done` is the resume state, saved by
/// `save` after each window. Returns the merged file's contents.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn window_fills(
    ctx: &StepContext,
    race: &mut Race<'_>,
    source: FillsSource,
    window: Window,
    orders: &[Order],
    markets: &BTreeMap<String, Market>,
    done: &mut Vec<FillChunk>,
    mut save: impl FnMut(&[FillChunk]) -> Result<(), StepError>,
) -> Result<WindowFills, StepError> {
    let FillsSource::PerWindow {
        max_window_secs,
        page_size,
        ..
    } = source
    else {
        return Ok(WindowFills::default());
    };
    let rd: &RunDir = &ctx.rundir;
    let active: BTreeSet<String> = orders
        .iter()
        .filter(|o| !o.executed_volume.is_zero())
        .map(|o| o.market.symbol.to_string())
        .collect();
    let spans = initial_spans(
        window,
        Some(max_window_secs),
        &active.iter().cloned().map(Some).collect::<Vec<_>>(),
    );
    let finished: BTreeSet<Span> = done.iter().map(|c| c.span.clone()).collect();
    let bar = ctx
        .printer
        .progress(Some(spans.len() as u64), "export fills");
    let mut count: usize = done.iter().map(|c| c.count).sum();
    for span in spans {
        if finished.contains(&span) {
            bar.inc(1);
            continue;
        }
        let symbol = span.market.clone().unwrap_or_default();
        let market = match markets.get(&symbol) {
            Some(m) => m.clone(),
            None => race.session().primary().market(&symbol)?,
        };
        let q = FillsQuery {
            window: Window {
                from: span.from,
                to: span.to,
            },
            market: Some(market),
            limit: page_size,
        };
        let fills = match race
            .read(|ex| {
                let q = q.clone();
                async move { ex.fills(&q).await }
            })
            .await
        {
            Ok(f) => f,
            Err(e) => {
                bar.abandon();
                return Err(race.fail(e, "fills export"));
            }
        };
        let file = fill_chunk_file(&span);
        rd.write(&file, &to_records_json(&fills)?)?;
        count += fills.len();
        done.push(FillChunk {
            span,
            count: fills.len(),
            file,
        });
        save(done)?;
        bar.inc(1);
        bar.set_message(format!("{count} fills{}", race.budget()));
    }
    bar.finish_and_clear();
    let mut fills: Vec<Fill> = Vec::new();
    let mut seen = BTreeSet::new();
    for c in done.iter() {
        let list: Vec<Fill> = match std::fs::read(rd.join(&c.file)?) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                StepError::failed(format!(
                    "{} is damaged ({e}); delete it and the export's state to read it again",
                    c.file
                ))
            })?,
            Err(e) => return Err(e.into()),
        };
        for f in list {
            if seen.insert((f.order_id.clone(), f.id.clone())) {
                fills.push(f);
            }
        }
    }
    fills.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let merged = WindowFills {
        window_from: Some(window.from),
        window_to: Some(window.to),
        markets: active.into_iter().collect(),
        fills,
    };
    rd.write(WINDOW_FILLS, &to_records_json(&merged)?)?;
    Ok(merged)
}

/// The fills of order `id` when an export read its market's fills by window: `Some` (maybe
/// empty) when the order was exported and its market covered, `None` when it must be asked for.
pub(crate) fn covered_fills<'a>(
    window_fills: &'a WindowFills,
    orders: &BTreeMap<String, &Order>,
    id: &str,
) -> Option<Vec<&'a Fill>> {
    let o = orders.get(id)?;
    let from = window_fills.window_from?;
    if o.created_at < from
        || !window_fills
            .markets
            .iter()
            .any(|m| m.as_str() == o.market.symbol.as_str())
    {
        return None;
    }
    Some(
        window_fills
            .fills
            .iter()
            .filter(|f| f.order_id == id)
            .collect(),
    )
}
