//! Investigation: bot-log import, the diff against exchange history, detection rules R1–R14
//! and loss estimates. Pure functions over [`model::AnalysisInput`]: no network, no clock, so
//! `respond analyze` gives byte-identical results from the same raw inputs.
//!
//! Entry points: [`analyze`] (everything) and [`candidate_order_ids`] (which orders' fills the
//! export should fetch). Sub-modules: [`import`] (bot logs), [`diff`], [`rules`], [`loss`].

pub mod diff;
pub mod import;
pub mod loss;
pub mod model;
pub mod rules;
pub mod synth;

pub use model::*;

use chrono::Duration;

use crate::exchange::Window;

/// Orders one thread handles at least in a pass over the orders (the diff's look-ups, the
/// profile, the verdicts); fewer: one thread does them all.
const ORDERS_PER_THREAD: usize = 50_000;

/// Each order's verdict from its rule hits, match and reference price, in input order: made
/// in consecutive spans, one per thread of `threads` (a million orders are ~1 s on one core;
/// each verdict depends on its own order only).
fn order_verdicts(
    input: &AnalysisInput,
    ctx: &rules::Ctx<'_>,
    diff: Option<&diff::DiffResult>,
    entries: &[&BotLogEntry],
    r: &mut rules::OrderRules,
    threads: usize,
) -> Vec<OrderVerdict> {
    let had_log = diff.is_some();
    let n = input.orders.len();
    assert!(
        r.hits.len() == n && r.user_trade.len() == n,
        "rule results for {} / {} orders, not {n}",
        r.hits.len(),
        r.user_trade.len()
    );
    let (confidence, score) = (&r.confidence, &r.score);
    let user_trade = std::mem::take(&mut r.user_trade);
    // Every verdict is made from its order's rule hits (moved in) on the spans' threads.
    crate::par::map_into(std::mem::take(&mut r.hits), threads, |i, rules| {
        let (match_kind, matched_row) = match diff {
            Some(d) => (
                d.kinds[i],
                d.row(i).map(|r| (entries[r].log, entries[r].line)),
            ),
            None => (MatchKind::Unmatched, None),
        };
        let reference = ctx.reference(i).map(|r| r.price);
        let deviation_pct = match (reference, ctx.avg[i]) {
            (Some(r), Some(a)) if !r.is_zero() => {
                Some(((a - r) / r * rust_decimal::Decimal::ONE_HUNDRED).round_dp(2))
            }
            _ => None,
        };
        OrderVerdict {
            match_kind,
            matched_row,
            rules,
            score: score[i],
            confidence: confidence[i],
            flagged: confidence[i] == Confidence::High,
            reference_price: reference.map(|p| p.normalize()),
            deviation_pct,
            est_loss_quote: None,
            // Few orders have one (the user-like candidates): a copy costs nothing here.
            user_trade: user_trade[i].clone(),
            not_covered_by_log: had_log && ctx.candidate[i] && !ctx.in_log_span[i],
        }
    })
}

/// Runs the diff, the rules and the loss estimate. Deterministic: verdicts follow
/// `input.orders`, every other list is sorted or follows input order.
pub fn analyze(input: &AnalysisInput, thresholds: &Thresholds) -> AnalysisResult {
    let threads = crate::par::threads_for(input.orders.len(), ORDERS_PER_THREAD);
    analyze_on(input, thresholds, threads)
}

/// [`analyze`] with its passes over the orders (the diff's look-ups, the profile, the
/// verdicts) made on `threads` threads.
fn analyze_on(input: &AnalysisInput, thresholds: &Thresholds, threads: usize) -> AnalysisResult {
    let entries: Vec<&BotLogEntry> = input
        .bot_logs
        .iter()
        .flat_map(|l| l.entries.iter())
        .collect();
    let had_log = !entries.is_empty();
    let events: Vec<Window> = input
        .bot_logs
        .iter()
        .flat_map(|l| l.stopped.iter().copied())
        .collect();
    let diff = had_log.then(|| {
        diff::diff(
            &input.orders,
            &entries,
            &events,
            input.window,
            thresholds,
            threads,
        )
    });
    let ctx = rules::Ctx::build(input, thresholds, diff.as_ref(), threads);
    let assessment = rules::assess_withdrawals(&ctx);
    let mut r = rules::order_rules(&ctx, &entries, &assessment.to_new_destinations());

    let mut verdicts = order_verdicts(input, &ctx, diff.as_ref(), &entries, &mut r, threads);

    // The verdicts' tallies, in one pass (a million verdicts are read once here).
    let (mut flagged, mut uncovered, mut users, mut review) = (Vec::new(), 0, 0, 0);
    for (i, v) in verdicts.iter().enumerate() {
        if v.flagged {
            flagged.push(i);
        }
        uncovered += usize::from(v.not_covered_by_log);
        users += usize::from(v.user_trade.is_some());
        review += usize::from(v.confidence == Confidence::Review);
    }
    let flagged_times: Vec<_> = flagged
        .iter()
        .map(|&i| input.orders[i].created_at)
        .collect();
    let suspicious_window = match (flagged_times.iter().min(), flagged_times.iter().max()) {
        (Some(from), Some(to)) => Some(Window {
            from: *from,
            to: *to + Duration::milliseconds(1),
        }),
        _ => None,
    };
    let transfers = rules::withdrawal_rules(&ctx, &assessment, suspicious_window.map(|w| w.from));
    let key_findings = rules::key_rules(input);
    let loss = loss::loss(
        &ctx,
        &mut verdicts,
        &flagged,
        &transfers,
        suspicious_window.map(|w| w.from),
    );

    let mut notes = Vec::new();
    if !had_log {
        notes.push(if input.bot_logs.is_empty() {
            "no bot log: heuristics only (R1 unmatched, R2 foreign client id and R9 bot stopped \
             need the bot's log, and R3 compares with the account's earlier history instead of \
             the bot's markets; add one with `respond analyze RUN_DIR --bot-log FILE`)"
                .to_string()
        } else {
            "the bot log(s) hold no usable rows: heuristics only".to_string()
        });
    }
    if let Some(d) = &diff {
        if d.outside_window > 0 {
            notes.push(format!(
                "{} bot-log rows fall outside the exported window and were not compared (they \
                 are not gaps)",
                d.outside_window
            ));
        }
        if !d.gaps.is_empty() {
            notes.push(format!(
                "{} bot-log rows inside the window have no exchange order (listed as gaps)",
                d.gaps.len()
            ));
        }
    }
    for (i, l) in input.bot_logs.iter().enumerate() {
        if !l.skipped.is_empty() {
            notes.push(format!(
                "bot log {} ({}): {} unreadable rows were skipped (--skip-bad-rows)",
                i + 1,
                l.bundle_path,
                l.skipped.len()
            ));
        }
    }
    let span = diff.as_ref().and_then(|d| d.span);
    if let (Some(d), Some(w)) = (&diff, span) {
        if uncovered > 0 {
            let side = match (d.cut_before, d.cut_after) {
                (Some(_), Some(_)) => "before it starts and after it ends",
                (Some(_), None) => "before it starts",
                _ => "after it ends",
            };
            notes.push(format!(
                "the bot log's rows span {} → {}, and the exchange holds orders with the bot's \
                 own identifiers {side} that the log lacks: the log is cut (e.g. exported \
                 before the window ended). {uncovered} orders beyond the cut are \"not covered \
                 by the log\" (not \"absent from it\") and were judged on heuristics, with the \
                 bot's profile and identifier pattern learned from the log",
                crate::time::ts(w.from),
                crate::time::ts(w.to)
            ));
        }
    }
    if users > 0 {
        notes.push(format!(
            "{users} orders look like your own web or app trades (no identifier, fair prices, \
             a market and a size like your usual ones, outside any attack pattern): they are \
             kept at review at most and not claimed; each says why"
        ));
    }
    if review > 0 {
        notes.push(format!(
            "{review} orders are marked for review (weak evidence, e.g. unmatched but at normal \
             prices in the bot's markets: possibly your own manual trades); they are not counted \
             as unauthorized"
        ));
    }
    let no_ref: Vec<&str> = {
        let mut m: Vec<&str> = flagged
            .iter()
            .filter(|&&i| verdicts[i].reference_price.is_none())
            .map(|&i| input.orders[i].market.as_str())
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    if !no_ref.is_empty() {
        notes.push(format!(
            "no pre-attack reference price for {} (no candles before the window, no earlier orders)",
            no_ref.join(", ")
        ));
    }

    AnalysisResult {
        gaps: diff.as_ref().map(|d| d.gaps.clone()).unwrap_or_default(),
        identifier_pattern: diff
            .as_ref()
            .and_then(|d| d.pattern.as_ref())
            .map(|p| p.describe()),
        verdicts,
        transfers,
        key_findings,
        loss,
        thresholds: thresholds.clone(),
        had_bot_log: had_log,
        suspicious_window,
        notes,
        bot_log_coverage: span,
    }
}

/// Orders whose fills are worth fetching, in the order of `input.orders`. With a bot log:
/// every order not matched by order id or identifier, plus every flagged one. Without a bot
/// log every order is "unmatched", so this narrows to the orders any rule fired on (flagged or
/// review), rather than asking the exchange for the fills of the whole history.
pub fn candidate_order_ids(input: &AnalysisInput, thresholds: &Thresholds) -> Vec<String> {
    let result = analyze(input, thresholds);
    let had_log = result.had_bot_log;
    input
        .orders
        .iter()
        .zip(result.verdicts)
        .filter(|(_, v)| {
            v.flagged
                || if had_log {
                    !matches!(v.match_kind, MatchKind::OrderId | MatchKind::Identifier)
                } else {
                    !v.rules.is_empty()
                }
        })
        .map(|(o, _)| o.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An analysis whose passes over the orders (the diff's look-ups, the profile, the
    /// verdicts) run in spans on several threads is the analysis of one thread, in the same
    /// order (each span's orders at their own indexes), whether there are fewer threads than
    /// orders or more; with and without a bot log.
    #[test]
    fn verdicts_made_in_spans_are_the_verdicts_of_one_thread() {
        let th = Thresholds::default();
        for (scenario, with_log) in [
            (synth::Scenario::PumpAndDump, true),
            (synth::Scenario::Noisy, false),
        ] {
            let input = synth::generate(scenario, 7, with_log).input;
            let n = input.orders.len();
            assert!(n > 3, "{scenario:?}: {n} orders");
            let one = analyze_on(&input, &th, 1);
            assert!(one.verdicts.iter().any(|v| v.flagged), "{scenario:?}");
            for threads in [3, n + 5] {
                assert_eq!(
                    analyze_on(&input, &th, threads),
                    one,
                    "{scenario:?}, bot log {with_log}, {threads} threads"
                );
            }
        }
    }
}
