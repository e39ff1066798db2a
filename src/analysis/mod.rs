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

/// Runs the diff, the rules and the loss estimate. Deterministic: verdicts follow
/// `input.orders`, every other list is sorted or follows input order.
pub fn analyze(input: &AnalysisInput, thresholds: &Thresholds) -> AnalysisResult {
    let entries: Vec<&BotLogEntry> = input
        .bot_logs
        .iter()
        .flat_map(|l| l.entries.iter())
        .collect();
    let had_log = !entries.is_empty();
    let diff = had_log.then(|| diff::diff(&input.orders, &entries, input.window, thresholds));
    let ctx = rules::Ctx::build(input, thresholds, diff.as_ref());
    let mut r = rules::order_rules(&ctx, diff.as_ref(), &entries);

    let mut verdicts: Vec<OrderVerdict> = Vec::with_capacity(input.orders.len());
    for i in 0..input.orders.len() {
        let (match_kind, matched_row) = match &diff {
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
        let confidence = r.confidence[i];
        verdicts.push(OrderVerdict {
            match_kind,
            matched_row,
            rules: std::mem::take(&mut r.hits[i]),
            score: r.score[i],
            confidence,
            flagged: confidence == Confidence::High,
            reference_price: reference.map(|p| p.normalize()),
            deviation_pct,
            est_loss_quote: None,
        });
    }

    let flagged_times: Vec<_> = input
        .orders
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.flagged)
        .map(|(o, _)| o.created_at)
        .collect();
    let suspicious_window = match (flagged_times.iter().min(), flagged_times.iter().max()) {
        (Some(from), Some(to)) => Some(Window {
            from: *from,
            to: *to + Duration::milliseconds(1),
        }),
        _ => None,
    };
    let transfers = rules::withdrawal_rules(
        input,
        had_log,
        suspicious_window.map(|w| w.from),
        Duration::minutes(thresholds.reference_window_minutes.max(0)),
    );
    let key_findings = rules::key_rules(input);
    let loss = loss::loss(
        &ctx,
        &mut verdicts,
        &transfers,
        suspicious_window.map(|w| w.from),
    );

    let mut notes = Vec::new();
    if !had_log {
        notes.push(if input.bot_logs.is_empty() {
            "no bot log: heuristics only (R1 unmatched, R2 foreign client id, R3 unknown market \
             and R9 bot stopped need the bot's log; add one with `respond analyze RUN_DIR \
             --bot-log FILE`)"
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
    let review = verdicts
        .iter()
        .filter(|v| v.confidence == Confidence::Review)
        .count();
    if review > 0 {
        notes.push(format!(
            "{review} orders are marked for review (weak evidence, e.g. unmatched but at normal \
             prices in the bot's markets: possibly your own manual trades); they are not counted \
             as unauthorized"
        ));
    }
    let no_ref: Vec<&str> = {
        let mut m: Vec<&str> = input
            .orders
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.flagged && v.reference_price.is_none())
            .map(|(o, _)| o.market.as_str())
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
