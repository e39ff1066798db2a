//! The first screen of the report: what happened (the first and last unauthorized action,
//! local time and UTC), how much (the estimated loss), what was done (the key deleted, when
//! and how that was verified, the orders cancelled), whether the run is complete (an
//! INCOMPLETE banner naming what is missing), and the next steps. In English and, when the
//! exchange's home language is not English and a text exists for it, in that language first.
//!
//! Every sentence is built here from typed facts; the values in it are sanitized, and the
//! templates escape the whole sentence again for their format.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::exchange::Order;
use crate::report::facts::{Revocation, RunFacts, StepStatus};
use crate::report::joined::Joined;
use crate::report::sanitize::clean;

use super::{LossView, Totals};

/// The first screen, in English (`en`) and the exchange's language (`local`, empty when there
/// is none).
#[derive(Debug, Serialize)]
pub struct SummaryView {
    /// Every step the report depends on finished, and the old key was seen deleted.
    pub complete: bool,
    /// Something unauthorized was found (a flagged order or withdrawal).
    pub found: bool,
    pub en: Block,
    pub local: Block,
}

/// The first screen in one language.
#[derive(Debug, Default, Serialize)]
pub struct Block {
    /// Headings: the summary, the banner, the next steps.
    pub heading: String,
    pub incomplete_heading: String,
    pub next_heading: String,
    /// What is missing, for the INCOMPLETE banner (empty when complete).
    pub missing: Vec<String>,
    /// What happened.
    pub happened: String,
    /// How much: the estimated loss, total first.
    pub how_much: String,
    /// What was done: the key, the cancels.
    pub done: Vec<String>,
    /// Complete or not, in one sentence.
    pub state: String,
    /// Whether a bot log was compared, in one sentence.
    pub bot_log: String,
    pub next_steps: Vec<String>,
}

/// Texts of the summary in one language (English or a home language). Placeholders are
/// written `{name}` and filled by [`fill`].
struct Texts {
    heading: &'static str,
    incomplete_heading: &'static str,
    next_heading: &'static str,
    found: &'static str,
    found_withdrawals: &'static str,
    nothing: &'static str,
    review: &'static str,
    loss: &'static str,
    loss_partial: &'static str,
    key_deleted: &'static str,
    key_still_valid: &'static str,
    key_not_checked: &'static str,
    cancelled: &'static str,
    no_cancel: &'static str,
    complete: &'static str,
    incomplete: &'static str,
    step_failed: &'static str,
    step_skipped: &'static str,
    step_pending: &'static str,
    step_dry_run: &'static str,
    step_not_started: &'static str,
    key_unverified: &'static str,
    bot_log: &'static str,
    no_bot_log: &'static str,
    next_delete: &'static str,
    next_resume: &'static str,
    next_ticket: &'static str,
    next_ticket_nothing: &'static str,
    next_withdrawal: &'static str,
    next_review: &'static str,
    next_bot_log: &'static str,
    next_police: &'static str,
    next_checklist: &'static str,
    next_timestamp: &'static str,
}

const EN: Texts = Texts {
    heading: "Summary",
    incomplete_heading: "INCOMPLETE: this bundle is missing",
    next_heading: "Next steps",
    found: "Unauthorized activity with the leaked key {key}: {orders} orders ({filled} of them filled) in {markets}, from {first} to {last}.",
    found_withdrawals: "Unauthorized activity with the leaked key {key}: {orders} orders ({filled} of them filled) and {withdrawals} withdrawals, from {first} to {last}.",
    nothing: "No unauthorized order or withdrawal was found in the investigation window ({window}).",
    review: "{n} more orders need your review: they are listed apart and are not in the claim.",
    loss: "Estimated loss: {total} = overpayment {overpayment} + withdrawn {withdrawn} + fees {fees}.",
    loss_partial: "Estimated loss of the parts that could be priced: {total} = overpayment {overpayment} + withdrawn {withdrawn} + fees {fees}. Not priced: {unpriced}.",
    key_deleted: "The leaked key is deleted: the exchange refused it from {at} on ({how}).",
    key_still_valid: "The leaked key STILL WORKED when last checked at {at}: delete it now.",
    key_not_checked: "This run did not verify that the leaked key is deleted.",
    cancelled: "{n} open orders were cancelled with the key before it was deleted.",
    no_cancel: "No open order was left to cancel.",
    complete: "The response is complete: every step finished and the key was seen deleted.",
    incomplete: "The response is INCOMPLETE: {missing}.",
    step_failed: "step {id} ({uses}) failed",
    step_skipped: "step {id} ({uses}) was skipped",
    step_pending: "step {id} ({uses}) did not finish (the run was interrupted)",
    step_dry_run: "step {id} ({uses}) only ran as a dry run",
    step_not_started: "step {id} never started",
    key_unverified: "the deletion of the leaked key was not verified",
    bot_log: "The exchange's orders were compared with the bot's own log ({rows} rows).",
    no_bot_log: "No bot log was given: detection used heuristics only, and orders the bot placed may be among those flagged or reviewed.",
    next_delete: "Delete the leaked key in the exchange's web console now, then run {resume}.",
    next_resume: "Finish the response: {resume}.",
    next_ticket: "Send support_ticket.md to the exchange's support today, with the files it lists, and ask for compensation of the estimated loss.",
    next_ticket_nothing: "Send support_ticket.md to the exchange's support: it asks them to confirm from their logs that nothing else used the key.",
    next_withdrawal: "Ask the exchange to trace the withdrawal's txid and to contact the receiving service (exchange or wallet) to freeze the funds.",
    next_review: "Check the {n} orders for review: tell the exchange about those you did not place.",
    next_bot_log: "Add the bot's own order log for a stronger analysis: {analyze}.",
    next_police: "Report the theft to the police's cybercrime unit with this bundle, unchanged.",
    next_checklist: "Follow checklist.md before any bot trades again.",
    next_timestamp: "Have the bundle timestamped by a trusted authority before you send it: {timestamp}.",
};

const KO: Texts = Texts {
    heading: "요약",
    incomplete_heading: "미완료: 다음 항목이 빠져 있습니다",
    next_heading: "다음 단계",
    found: "유출된 API 키 {key}로 무단 거래가 있었습니다: {markets}에서 주문 {orders}건(체결 {filled}건), {first}부터 {last}까지.",
    found_withdrawals: "유출된 API 키 {key}로 무단 거래가 있었습니다: 주문 {orders}건(체결 {filled}건)과 출금 {withdrawals}건, {first}부터 {last}까지.",
    nothing: "조사 기간({window}) 동안 무단 주문이나 출금은 발견되지 않았습니다.",
    review: "이 밖에 확인이 필요한 주문 {n}건은 따로 표시했으며 손실 청구에 포함하지 않았습니다.",
    loss: "추정 손실: {total} = 과다 지불 {overpayment} + 출금 {withdrawn} + 수수료 {fees}.",
    loss_partial: "가격을 산정할 수 있는 부분의 추정 손실: {total} = 과다 지불 {overpayment} + 출금 {withdrawn} + 수수료 {fees}. 산정하지 못한 부분이 있습니다(영문 요약 참조).",
    key_deleted: "유출된 키는 삭제되었습니다: {at}부터 거래소가 이 키를 거부했습니다(오류 {error}).",
    key_still_valid: "유출된 키가 마지막 확인 시각 {at}에 아직 사용 가능했습니다. 지금 바로 삭제하세요.",
    key_not_checked: "이번 실행에서는 유출된 키의 삭제를 확인하지 못했습니다.",
    cancelled: "키가 삭제되기 전에 미체결 주문 {n}건을 취소했습니다.",
    no_cancel: "취소할 미체결 주문은 없었습니다.",
    complete: "대응이 완료되었습니다: 모든 단계가 끝났고 키 삭제를 확인했습니다.",
    incomplete: "대응이 완료되지 않았습니다: {missing}.",
    step_failed: "{id} 단계 실패",
    step_skipped: "{id} 단계 건너뜀",
    step_pending: "{id} 단계 중단됨",
    step_dry_run: "{id} 단계는 모의 실행만 됨",
    step_not_started: "{id} 단계 실행 안 됨",
    key_unverified: "유출된 키의 삭제 미확인",
    bot_log: "거래소 주문을 봇의 자체 기록({rows}행)과 대조했습니다.",
    no_bot_log: "봇 기록이 제공되지 않아 규칙만으로 판단했습니다. 봇이 낸 주문이 포함되었을 수 있습니다.",
    next_delete: "거래소 웹사이트에서 유출된 키를 지금 삭제한 뒤 다음을 실행하세요: {resume}",
    next_resume: "대응을 마치세요: {resume}",
    next_ticket: "support_ticket.md를 오늘 거래소 고객센터에 첨부 파일과 함께 보내고, 추정 손실의 보상을 요청하세요.",
    next_ticket_nothing: "support_ticket.md를 거래소 고객센터에 보내 다른 사용 흔적이 없는지 확인을 요청하세요.",
    next_withdrawal: "거래소에 출금 트랜잭션(txid) 추적과 수취 서비스(거래소 또는 지갑)에 대한 동결 요청을 부탁하세요.",
    next_review: "확인이 필요한 주문 {n}건을 검토하고, 직접 하지 않은 주문은 거래소에 알리세요.",
    next_bot_log: "더 정확한 분석을 위해 봇의 주문 기록을 추가하세요: {analyze}",
    next_police: "이 자료를 변경하지 말고 경찰청 사이버수사대에 신고하세요.",
    next_checklist: "봇을 다시 거래시키기 전에 checklist.md를 따르세요.",
    next_timestamp: "보내기 전에 신뢰할 수 있는 기관의 타임스탬프를 받으세요: {timestamp}",
};

/// The home-language texts there are.
fn texts_for(language: &str) -> Option<&'static Texts> {
    match language {
        "ko" => Some(&KO),
        _ => None,
    }
}

/// Replaces each `{name}` of `template` with its value.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// A missing part of the response, by kind.
enum Missing<'a> {
    Step(StepStatus, &'a str, &'a str),
    NotStarted(&'a str),
    KeyUnverified,
}

/// What the report cannot vouch for: steps that failed, were skipped for a reason other than
/// their own `if:`, were cut off or only described; steps that never started; a key not seen
/// deleted.
fn missing(facts: &RunFacts) -> Vec<Missing<'_>> {
    let mut out = Vec::new();
    for s in &facts.steps {
        let wanted_skip = s.summary.starts_with("skipped: `if:");
        match s.status {
            StepStatus::Ok | StepStatus::Reused => {}
            // The report step is the one writing: as of the report it is always in flight.
            StepStatus::Pending if s.uses == "report.evidence" => {}
            StepStatus::Skipped | StepStatus::NotRun if wanted_skip => {}
            st => out.push(Missing::Step(st, &s.id, &s.uses)),
        }
    }
    out.extend(facts.not_started.iter().map(|id| Missing::NotStarted(id)));
    if !matches!(facts.revocation, Revocation::Revoked { .. }) {
        out.push(Missing::KeyUnverified);
    }
    out
}

fn missing_text(t: &Texts, m: &Missing<'_>) -> String {
    match m {
        Missing::Step(st, id, uses) => {
            let template = match st {
                StepStatus::Failed => t.step_failed,
                StepStatus::Pending => t.step_pending,
                StepStatus::DryRun | StepStatus::NotSimulable => t.step_dry_run,
                _ => t.step_skipped,
            };
            fill(template, &[("id", clean(id)), ("uses", clean(uses))])
        }
        Missing::NotStarted(id) => fill(t.step_not_started, &[("id", clean(id))]),
        Missing::KeyUnverified => t.key_unverified.to_string(),
    }
}

/// The first and last unauthorized action: flagged orders and flagged withdrawals.
pub(crate) fn span(j: &Joined<'_>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let orders = j.flagged().map(|(o, _): (&Order, _)| o.created_at);
    let withdrawals = j.flagged_withdrawals().map(|w| w.created_at);
    let all: Vec<DateTime<Utc>> = orders.chain(withdrawals).collect();
    Some((*all.iter().min()?, *all.iter().max()?))
}

/// Builds the first screen.
pub fn build(facts: &RunFacts, j: &Joined<'_>, loss: &LossView, totals: &Totals) -> SummaryView {
    let missing = missing(facts);
    let found = totals.flagged > 0 || totals.withdrawals_flagged > 0;
    let local = j
        .language()
        .filter(|l| *l != "en")
        .and_then(texts_for)
        .map(|t| block(t, facts, j, loss, totals, &missing))
        .unwrap_or_default();
    SummaryView {
        complete: missing.is_empty(),
        found,
        en: block(&EN, facts, j, loss, totals, &missing),
        local,
    }
}

fn block(
    t: &Texts,
    facts: &RunFacts,
    j: &Joined<'_>,
    loss: &LossView,
    totals: &Totals,
    missing: &[Missing<'_>],
) -> Block {
    // Commands name the bundle by its directory name, as seen from its parent directory.
    let run_dir = clean(&facts.run_id);
    let resume = crate::output::respond_command(["resume", &facts.run_id]);
    let mut markets: Vec<&str> = j.flagged().map(|(o, _)| o.market.as_str()).collect();
    markets.sort_unstable();
    markets.dedup();
    let when = |at: DateTime<Utc>| j.when(at);
    let happened = match span(j) {
        Some((first, last)) => {
            let values = [
                ("key", clean(&facts.key_masked)),
                ("orders", totals.flagged.to_string()),
                ("filled", totals.flagged_filled.to_string()),
                ("withdrawals", totals.withdrawals_flagged.to_string()),
                ("markets", clean(&markets.join(", "))),
                ("first", when(first)),
                ("last", when(last)),
            ];
            if totals.withdrawals_flagged > 0 {
                fill(t.found_withdrawals, &values)
            } else {
                fill(t.found, &values)
            }
        }
        None => {
            let window = match facts.investigation_window.or(j.input.window) {
                Some(w) => format!("{} – {}", when(w.from), when(w.to)),
                None => "?".into(),
            };
            fill(t.nothing, &[("window", window)])
        }
    };
    let happened = if totals.review > 0 {
        format!(
            "{happened} {}",
            fill(t.review, &[("n", totals.review.to_string())])
        )
    } else {
        happened
    };
    let values = [
        ("total", loss.total.clone()),
        ("overpayment", loss.overpayment.clone()),
        ("withdrawn", loss.withdrawn.clone()),
        ("fees", loss.fees.clone()),
        ("unpriced", loss.unpriced.join("; ")),
    ];
    let how_much = if loss.complete {
        fill(t.loss, &values)
    } else {
        fill(t.loss_partial, &values)
    };
    let mut done = Vec::new();
    done.push(match &facts.revocation {
        Revocation::Revoked {
            observed_at,
            evidence,
            refused_with,
            ..
        } => fill(
            t.key_deleted,
            &[
                ("at", when(*observed_at)),
                ("how", clean(evidence)),
                (
                    "error",
                    clean(refused_with.as_deref().unwrap_or("authentication error")),
                ),
            ],
        ),
        Revocation::StillValid { checked_at } => {
            fill(t.key_still_valid, &[("at", when(*checked_at))])
        }
        Revocation::NotChecked => t.key_not_checked.to_string(),
    });
    done.push(if facts.cancelled_orders > 0 {
        fill(t.cancelled, &[("n", facts.cancelled_orders.to_string())])
    } else {
        t.no_cancel.to_string()
    });
    let missing_texts: Vec<String> = missing.iter().map(|m| missing_text(t, m)).collect();
    let state = if missing.is_empty() {
        t.complete.to_string()
    } else {
        fill(t.incomplete, &[("missing", missing_texts.join("; "))])
    };
    let rows: usize = j.input.bot_logs.iter().map(|l| l.entries.len()).sum();
    let bot_log = if j.result.had_bot_log {
        fill(t.bot_log, &[("rows", rows.to_string())])
    } else {
        t.no_bot_log.to_string()
    };
    let mut next = Vec::new();
    let key_alive = !matches!(facts.revocation, Revocation::Revoked { .. });
    if key_alive {
        next.push(fill(t.next_delete, &[("resume", resume.clone())]));
    } else if !missing.is_empty() {
        next.push(fill(t.next_resume, &[("resume", resume.clone())]));
    }
    let found = totals.flagged > 0 || totals.withdrawals_flagged > 0;
    next.push(if found {
        t.next_ticket.to_string()
    } else {
        t.next_ticket_nothing.to_string()
    });
    if totals.withdrawals_flagged > 0 {
        next.push(t.next_withdrawal.to_string());
    }
    if totals.review > 0 {
        next.push(fill(t.next_review, &[("n", totals.review.to_string())]));
    }
    if !j.result.had_bot_log {
        let analyze = crate::output::respond_command([
            "analyze",
            run_dir.as_str(),
            "--bot-log",
            "BOT_LOG_FILE",
        ]);
        next.push(fill(t.next_bot_log, &[("analyze", analyze)]));
    }
    if found {
        next.push(t.next_police.to_string());
    }
    if facts.timestamps.is_empty() {
        let timestamp = crate::output::respond_command([
            "evidence",
            "timestamp",
            run_dir.as_str(),
            "--tsa",
            "TSA_URL",
        ]);
        next.push(fill(t.next_timestamp, &[("timestamp", timestamp)]));
    }
    next.push(t.next_checklist.to_string());
    Block {
        heading: t.heading.into(),
        incomplete_heading: t.incomplete_heading.into(),
        next_heading: t.next_heading.into(),
        missing: missing_texts,
        happened,
        how_much,
        done,
        state,
        bot_log,
        next_steps: next,
    }
}
