//! The sanitized view the readable reports (`report.html`, `report.md`, `support_ticket.md`)
//! are rendered from.
//!
//! [`build`] turns the [`Joined`] orders plus the [`RunFacts`] into [`ReportView`]: every
//! string in it has passed [`sanitize::clean`](crate::report::sanitize::clean) and every
//! number is pre-formatted ([`crate::report::format`]), so the templates only place values
//! (each template's escaping does the rest). The local zone and language come from the run's
//! exchange.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::analysis::{Confidence, OrderVerdict, RuleHit};
use crate::exchange::{Order, Side, Transfer, Window};
use crate::report::facts::{Revocation, RunFacts};
use crate::report::format::{confidence, dec, match_kind, rule_ids, score, Money};
pub use crate::report::joined::Joined;
use crate::report::sanitize::clean;
use crate::time::ts;

/// Longest list a readable report shows in full; the CSVs always hold everything.
pub const MAX_LISTED: usize = 1000;

fn window_text(w: &Option<Window>) -> String {
    match w {
        Some(w) => format!("{} → {}", ts(w.from), ts(w.to)),
        None => "not set".into(),
    }
}

// ---------------------------------------------------------------------------------------
// The view the templates read.

#[derive(Debug, Serialize)]
pub struct ReportView {
    pub run: RunView,
    pub totals: Totals,
    pub flagged: Vec<FlaggedView>,
    pub flagged_more: usize,
    pub markets: Vec<MarketView>,
    pub withdrawals: Vec<TransferView>,
    pub withdrawals_more: usize,
    pub balances: Vec<BalanceView>,
    pub keys: Vec<KeyView>,
    pub permissions: Vec<String>,
    pub key_findings: Vec<ReasonView>,
    pub loss_explanation: Vec<String>,
    pub notes: Vec<String>,
    pub gaps: Vec<GapView>,
    pub gaps_more: usize,
    pub bot_logs: Vec<BotLogView>,
    pub had_bot_log: bool,
    pub identifier_pattern: String,
    pub thresholds: Vec<NameValue>,
    pub timeline: Vec<EventView>,
    pub timeline_more: usize,
    pub steps: Vec<StepView>,
    /// Built in Rust by [`crate::report::timeline`] with every text escaped; the only value a
    /// template inserts unescaped.
    pub timeline_svg: String,
    pub timeline_caption: String,
    pub unauthorized_sha256: String,
    pub ticket: TicketView,
}

#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: String,
    pub exchange: String,
    pub account: String,
    pub key_masked: String,
    pub tool_version: String,
    pub playbook_path: String,
    pub playbook_sha256: String,
    pub started_at: String,
    pub finished_at: String,
    pub dry_run: bool,
    pub local_zone: String,
    pub window: String,
    pub window_local: String,
    pub reference_window: String,
    pub suspicious_window: String,
    pub server_time: Vec<ServerTimeView>,
    pub revocation: String,
}

#[derive(Debug, Serialize)]
pub struct ServerTimeView {
    pub when: String,
    pub server: String,
    pub local: String,
    pub offset_ms: String,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub orders: usize,
    pub flagged: usize,
    pub high: usize,
    pub review: usize,
    pub fills: usize,
    pub withdrawals: usize,
    pub withdrawals_flagged: usize,
    pub deposits: usize,
    pub quote: String,
    pub overpayment: String,
    pub portfolio_delta: String,
    pub withdrawn_value: String,
}

#[derive(Debug, Serialize)]
pub struct FlaggedView {
    pub order_id: String,
    pub identifier: String,
    pub market: String,
    pub side: String,
    pub ord_type: String,
    pub state: String,
    pub created_utc: String,
    pub created_local: String,
    pub price: String,
    pub volume: String,
    pub executed_volume: String,
    pub funds: String,
    /// Executed funds / executed volume (empty when nothing executed).
    pub avg_price: String,
    pub fee: String,
    pub rules: String,
    pub reasons: Vec<ReasonView>,
    pub score: String,
    pub confidence: String,
    pub match_kind: String,
    pub reference_price: String,
    pub deviation_pct: String,
    pub est_loss: String,
    pub raw_file: String,
}

#[derive(Debug, Serialize)]
pub struct ReasonView {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct MarketView {
    pub market: String,
    pub orders: usize,
    pub flagged: usize,
    pub buys: usize,
    pub sells: usize,
}

#[derive(Debug, Serialize)]
pub struct TransferView {
    pub id: String,
    pub currency: String,
    pub amount: String,
    pub address: String,
    pub state: String,
    pub created_utc: String,
    pub flagged: bool,
    pub rules: String,
    pub reasons: Vec<ReasonView>,
}

#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub currency: String,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub masked: String,
    pub current: bool,
    pub scopes: String,
    pub allowed_ips: String,
    pub expire_at: String,
}

#[derive(Debug, Serialize)]
pub struct GapView {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct BotLogView {
    pub path: String,
    pub format: String,
    pub sha256: String,
    pub entries: usize,
    pub skipped: Vec<GapView>,
    pub skipped_more: usize,
}

#[derive(Debug, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub at_utc: String,
    pub at_local: String,
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct StepView {
    pub id: String,
    pub uses: String,
    pub status: String,
    pub summary: String,
    pub started: String,
    pub finished: String,
}

#[derive(Debug, Serialize)]
pub struct TicketView {
    /// A Korean block first (the exchange's home language is Korean).
    pub korean: bool,
    /// The exchange's home language code (`en` when unknown).
    pub language: String,
    pub orders: Vec<TicketOrder>,
    pub orders_more: usize,
    pub markets: String,
    pub withdrawal_ids: Vec<String>,
    /// The exchange's own notes for its support desk (its descriptor's texts), English.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TicketOrder {
    pub order_id: String,
    pub market: String,
    pub side: String,
    pub utc: String,
    pub local: String,
}

fn reasons(money: &Money, rules: &[RuleHit]) -> Vec<ReasonView> {
    rules
        .iter()
        .map(|r| ReasonView {
            rule: clean(&r.rule),
            reason: money.humanize(&clean(&r.reason)),
        })
        .collect()
}

fn opt_clean<S: AsRef<str>>(s: &Option<S>) -> String {
    s.as_ref().map(|s| clean(s.as_ref())).unwrap_or_default()
}

/// Builds the view of the readable reports.
pub fn build(facts: &RunFacts, j: &Joined<'_>, unauthorized_sha256: &str) -> ReportView {
    let input = j.input;
    let result = j.result;
    let m = &j.money;
    let flagged_all: Vec<(&Order, &OrderVerdict)> = j.flagged().collect();
    let flagged: Vec<FlaggedView> = flagged_all
        .iter()
        .take(MAX_LISTED)
        .map(|(o, v)| {
            let quote = o.market.quote.as_str();
            FlaggedView {
                order_id: clean(&o.id),
                identifier: opt_clean(&o.client_id),
                market: clean(o.market.as_str()),
                side: o.side.as_str().into(),
                ord_type: clean(&o.native_type),
                state: format!("{:?}", o.state).to_lowercase(),
                created_utc: ts(o.created_at),
                created_local: clean(&o.created_at_local),
                // The limit price, or the amount to spend of an order placed by amount.
                price: match (o.price, o.quote_amount) {
                    (Some(p), _) => m.price(p, quote),
                    (None, Some(a)) => m.amount(a, quote),
                    (None, None) => String::new(),
                },
                volume: dec(o.volume),
                executed_volume: o.executed_volume.to_string(),
                funds: o
                    .executed_funds
                    .map(|d| m.amount(d, quote))
                    .unwrap_or_default(),
                avg_price: match o.executed_funds {
                    Some(f) if !o.executed_volume.is_zero() => {
                        m.price((f / o.executed_volume).round_dp(8), quote)
                    }
                    _ => String::new(),
                },
                fee: m.amount(o.paid_fee, quote),
                rules: rule_ids(&v.rules),
                reasons: reasons(m, &v.rules),
                score: score(v.score),
                confidence: confidence(v.confidence).into(),
                match_kind: match_kind(v.match_kind).into(),
                reference_price: v
                    .reference_price
                    .map(|p| m.price(p, quote))
                    .unwrap_or_default(),
                deviation_pct: dec(v.deviation_pct),
                est_loss: v
                    .est_loss_quote
                    .map(|d| m.amount(d, quote))
                    .unwrap_or_default(),
                raw_file: o
                    .provenance
                    .as_ref()
                    .map(|p| clean(&p.raw_file))
                    .unwrap_or_default(),
            }
        })
        .collect();

    let mut markets: BTreeMap<&str, MarketView> = BTreeMap::new();
    for (o, v) in &j.orders {
        let m = markets
            .entry(o.market.as_str())
            .or_insert_with(|| MarketView {
                market: clean(o.market.as_str()),
                orders: 0,
                flagged: 0,
                buys: 0,
                sells: 0,
            });
        m.orders += 1;
        if v.is_some_and(|v| v.flagged) {
            m.flagged += 1;
        }
        match o.side {
            Side::Buy => m.buys += 1,
            Side::Sell => m.sells += 1,
        }
    }

    let mut withdrawals_sorted: Vec<&Transfer> = input.withdrawals.iter().collect();
    withdrawals_sorted.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let transfer_view = |t: &Transfer| {
        let v = j.transfer_verdicts.get(t.id.as_str());
        TransferView {
            id: clean(&t.id),
            currency: clean(&t.currency),
            amount: m.amount(t.amount, &t.currency),
            address: opt_clean(&t.address),
            state: clean(&t.state),
            created_utc: ts(t.created_at),
            flagged: v.is_some_and(|v| v.flagged),
            rules: v.map(|v| rule_ids(&v.rules)).unwrap_or_default(),
            reasons: v.map(|v| reasons(m, &v.rules)).unwrap_or_default(),
        }
    };
    let withdrawals: Vec<TransferView> = withdrawals_sorted
        .iter()
        .take(MAX_LISTED)
        .map(|t| transfer_view(t))
        .collect();

    let mut balances: BTreeMap<&str, (Option<Decimal>, Option<Decimal>)> = BTreeMap::new();
    for b in &input.balances_start {
        balances.entry(b.currency.as_str()).or_default().0 = Some(b.free + b.locked);
    }
    for b in &input.balances_end {
        balances.entry(b.currency.as_str()).or_default().1 = Some(b.free + b.locked);
    }
    let balances = balances
        .into_iter()
        .map(|(c, (s, e))| BalanceView {
            currency: clean(c),
            start: m.balance(s, c),
            end: m.balance(e, c),
        })
        .collect();

    let keys = input
        .keys
        .iter()
        .map(|k| KeyView {
            masked: clean(&k.access_key_masked),
            current: k.is_current,
            scopes: match &k.scopes {
                Some(s) => clean(&s.join(", ")),
                None => "unknown".into(),
            },
            allowed_ips: match &k.allowed_ips {
                Some(ips) if ips.is_empty() => "none (any IP may use the key)".into(),
                Some(ips) => clean(&ips.join(", ")),
                None => "unknown".into(),
            },
            expire_at: k.expire_at.map(ts).unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    let permissions = match &input.permissions {
        Some(p) => {
            let mut out: Vec<String> = p
                .scopes
                .iter()
                .map(|s| {
                    let held = match s.held {
                        Some(true) => "held",
                        Some(false) => "not held",
                        None => "unknown",
                    };
                    clean(&format!("{}: {held} ({})", s.scope, s.evidence))
                })
                .collect();
            if p.critical {
                out.push("CRITICAL: the key could withdraw or had no IP restriction".into());
            }
            out.extend(p.reasons.iter().map(|r| clean(r)));
            out
        }
        None => vec![],
    };

    let log_path = |log: usize| {
        input
            .bot_logs
            .get(log)
            .map(|l| clean(&l.bundle_path))
            .unwrap_or_else(|| format!("bot log #{log}"))
    };
    let gaps = result
        .gaps
        .iter()
        .take(MAX_LISTED)
        .map(|g| GapView {
            file: log_path(g.log),
            line: g.line,
            reason: clean(&g.reason),
        })
        .collect();
    let bot_logs = input
        .bot_logs
        .iter()
        .map(|l| BotLogView {
            path: clean(&l.bundle_path),
            format: serde_json::to_value(l.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            sha256: clean(&l.sha256),
            entries: l.entries.len(),
            skipped: l
                .skipped
                .iter()
                .take(MAX_LISTED)
                .map(|s| GapView {
                    file: clean(&l.bundle_path),
                    line: s.line,
                    reason: clean(&s.reason),
                })
                .collect(),
            skipped_more: l.skipped.len().saturating_sub(MAX_LISTED),
        })
        .collect();

    let t = &result.thresholds;
    let thresholds = [
        (
            "fuzzy volume tolerance (fraction)",
            t.fuzzy_volume_tolerance.to_string(),
        ),
        (
            "fuzzy time tolerance (s)",
            t.fuzzy_time_tolerance_secs.to_string(),
        ),
        (
            "R4 price deviation (fraction)",
            t.price_deviation.to_string(),
        ),
        ("R4 hard multiple", t.price_hard_multiple.to_string()),
        ("R5 footprint share", t.footprint_share.to_string()),
        ("R6 burst multiple", t.burst_multiple.to_string()),
        ("R8 contra loss (fraction)", t.contra_loss.to_string()),
        ("R11 size ratio", t.size_ratio.to_string()),
        (
            "reference window (min before)",
            t.reference_window_minutes.to_string(),
        ),
        ("flag score", t.flag_score.to_string()),
    ]
    .into_iter()
    .map(|(n, v)| NameValue {
        name: n.into(),
        value: v,
    })
    .collect();

    // The UTC timeline: the response's steps, flagged orders and withdrawals, revocation.
    let mut events: Vec<(DateTime<Utc>, u8, String, String)> = Vec::new();
    events.push((facts.started_at, 0, "response".into(), "run started".into()));
    for s in &facts.steps {
        if let Some(at) = s.started_at.or(s.finished_at) {
            events.push((
                at,
                1,
                "response".into(),
                m.humanize(&clean(&if s.summary.trim().is_empty() {
                    format!("step {} ({}): {}", s.id, s.uses, s.status.report_label())
                } else {
                    format!(
                        "step {} ({}): {} — {}",
                        s.id,
                        s.uses,
                        s.status.report_label(),
                        s.summary
                    )
                })),
            ));
        }
    }
    // Only the earliest MAX_LISTED of each list can be among the first MAX_LISTED events.
    for (o, v) in flagged_all.iter().take(MAX_LISTED) {
        events.push((
            o.created_at,
            2,
            "flagged order".into(),
            clean(&format!(
                "{} {} {} {} [{}] {}",
                o.market.as_str(),
                o.side.as_str(),
                o.native_type,
                o.id,
                rule_ids(&v.rules),
                confidence(v.confidence)
            )),
        ));
    }
    for w in withdrawals_sorted.iter().take(MAX_LISTED) {
        let flagged = j
            .transfer_verdicts
            .get(w.id.as_str())
            .is_some_and(|v| v.flagged);
        events.push((
            w.created_at,
            3,
            if flagged {
                "flagged withdrawal"
            } else {
                "withdrawal"
            }
            .into(),
            clean(&format!(
                "{} {} {} → {}",
                w.id,
                m.amount(w.amount, &w.currency),
                w.currency,
                w.address.as_deref().unwrap_or("?")
            )),
        ));
    }
    if let Revocation::Revoked {
        observed_at,
        evidence,
    } = &facts.revocation
    {
        events.push((
            *observed_at,
            4,
            "key revoked".into(),
            clean(&format!("leaked key refused by the exchange: {evidence}")),
        ));
    }
    events.push((
        facts.finished_at,
        9,
        "response".into(),
        "run finished".into(),
    ));
    events.sort_by_key(|e| (e.0, e.1));
    let timeline_more = events.len().saturating_sub(MAX_LISTED)
        + flagged_all.len().saturating_sub(MAX_LISTED)
        + withdrawals_sorted.len().saturating_sub(MAX_LISTED);
    let timeline = events
        .into_iter()
        .take(MAX_LISTED)
        .map(|(at, _, kind, text)| EventView {
            at_utc: ts(at),
            at_local: j.local(at),
            kind,
            text,
        })
        .collect();

    let steps = facts
        .steps
        .iter()
        .map(|s| StepView {
            id: clean(&s.id),
            uses: clean(&s.uses),
            status: s.status.report_label().into(),
            summary: m.humanize(&clean(&s.summary)),
            started: s.started_at.map(ts).unwrap_or_default(),
            finished: s.finished_at.map(ts).unwrap_or_default(),
        })
        .collect();

    let mut server_time = Vec::new();
    for (when, st) in [
        ("start", &facts.server_time_start),
        ("end", &facts.server_time_end),
    ] {
        if let Some(st) = st {
            server_time.push(ServerTimeView {
                when: when.into(),
                server: ts(st.server),
                local: ts(st.local),
                offset_ms: st.offset_ms.to_string(),
            });
        }
    }
    let revocation = match &facts.revocation {
        Revocation::NotChecked => "not checked by this run".to_string(),
        Revocation::StillValid { checked_at } => {
            format!(
                "STILL VALID when last checked at {} — delete it now",
                ts(*checked_at)
            )
        }
        Revocation::Revoked {
            observed_at,
            evidence,
        } => format!(
            "revoked: first refused at {} ({})",
            ts(*observed_at),
            clean(evidence)
        ),
    };
    let window = facts.investigation_window.or(input.window);
    let run = RunView {
        id: clean(&facts.run_id),
        exchange: clean(&facts.exchange),
        account: facts
            .account_label
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| "(not given)".into()),
        key_masked: clean(&facts.key_masked),
        tool_version: clean(&facts.tool_version),
        playbook_path: clean(&facts.playbook_path),
        playbook_sha256: clean(&facts.playbook_sha256),
        started_at: ts(facts.started_at),
        finished_at: ts(facts.finished_at),
        dry_run: facts.dry_run,
        local_zone: j.local_zone(),
        window: window_text(&window),
        window_local: match window {
            Some(w) => format!("{} → {}", j.local(w.from), j.local(w.to)),
            None => "not set".into(),
        },
        reference_window: window_text(&facts.reference_window),
        suspicious_window: window_text(&result.suspicious_window),
        server_time,
        revocation,
    };

    let high = flagged_all
        .iter()
        .filter(|(_, v)| v.confidence == Confidence::High)
        .count();
    let loss = &result.loss;
    let quote = if loss.quote_currency.is_empty() {
        "quote".to_string()
    } else {
        clean(&loss.quote_currency)
    };
    let totals = Totals {
        orders: input.orders.len(),
        flagged: flagged_all.len(),
        high,
        review: flagged_all.len() - high,
        fills: input.fills.len(),
        withdrawals: input.withdrawals.len(),
        withdrawals_flagged: result.transfers.iter().filter(|t| t.flagged).count(),
        deposits: input.deposits.len(),
        quote: quote.clone(),
        overpayment: m.amount(loss.overpayment, &loss.quote_currency),
        portfolio_delta: loss
            .portfolio_delta
            .map(|d| format!("{} {quote}", m.amount(d, &loss.quote_currency)))
            .unwrap_or_else(|| "not computable (balances or reference prices missing)".into()),
        withdrawn_value: m.amount(loss.withdrawn_value, &loss.quote_currency),
    };

    let (timeline_svg, timeline_caption) = crate::report::timeline::render(facts, j);

    let mut flagged_markets: Vec<&str> =
        flagged_all.iter().map(|(o, _)| o.market.as_str()).collect();
    flagged_markets.sort_unstable();
    flagged_markets.dedup();
    let ticket = TicketView {
        korean: j.language() == Some("ko"),
        language: j.language().unwrap_or("en").into(),
        orders: flagged_all
            .iter()
            .take(MAX_LISTED)
            .map(|(o, _)| TicketOrder {
                order_id: clean(&o.id),
                market: clean(o.market.as_str()),
                side: o.side.as_str().into(),
                utc: ts(o.created_at),
                local: j.local(o.created_at),
            })
            .collect(),
        orders_more: flagged_all.len().saturating_sub(MAX_LISTED),
        markets: clean(&flagged_markets.join(", ")),
        withdrawal_ids: result
            .transfers
            .iter()
            .filter(|t| t.flagged)
            .map(|t| clean(&t.transfer_id))
            .collect(),
        notes: j
            .exchange
            .map(|d| d.texts.ticket_en.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default(),
    };

    ReportView {
        run,
        totals,
        flagged_more: flagged_all.len().saturating_sub(MAX_LISTED),
        flagged,
        markets: markets.into_values().collect(),
        withdrawals_more: withdrawals_sorted.len().saturating_sub(MAX_LISTED),
        withdrawals,
        balances,
        keys,
        permissions,
        key_findings: reasons(m, &result.key_findings),
        loss_explanation: loss
            .explanation
            .iter()
            .map(|e| m.humanize(&clean(e)))
            .collect(),
        notes: result.notes.iter().map(|n| clean(n)).collect(),
        gaps_more: result.gaps.len().saturating_sub(MAX_LISTED),
        gaps,
        bot_logs,
        had_bot_log: result.had_bot_log,
        identifier_pattern: result
            .identifier_pattern
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| "not learned".into()),
        thresholds,
        timeline,
        timeline_more,
        steps,
        timeline_svg,
        timeline_caption,
        unauthorized_sha256: unauthorized_sha256.to_string(),
        ticket,
    }
}
