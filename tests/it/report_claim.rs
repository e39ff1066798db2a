//! What a support desk and a claims adjuster read first (issue 16): the first screen of
//! report.html (the story in the exchange's language and English, the INCOMPLETE banner, the
//! review orders apart, the no-bot-log notice), stolen withdrawals traced (network,
//! destination from the record or the allowlist snapshot, txid), and a support ticket they can
//! act on (inputs or named placeholders, every fill with its trade id and fee, the total and a
//! request for compensation, a Korean block without English or Markdown escapes, a variant for
//! a run that found nothing).

use std::path::Path;

use crate::support::report_fixture as fx;
use respond::analysis::{AnalysisInput, AnalysisResult, Confidence};
use respond::exchange::WithdrawalAddress;
use respond::report::facts::IncidentInputs;
use respond::report::{self, ReportOptions, Revocation, RunFacts, StepRecord, StepStatus};
use respond::rundir::RunDir;

struct Bundle {
    html: String,
    md: String,
    ticket: String,
}

/// Writes the bundle into a new directory `bundle` under `parent`.
fn write(
    parent: &Path,
    facts: &RunFacts,
    input: &AnalysisInput,
    result: &AnalysisResult,
) -> Bundle {
    let dir = parent.join("bundle");
    let rd = RunDir::create(&dir).unwrap();
    report::write_bundle(&rd, facts, input, result, &ReportOptions::default()).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    Bundle {
        html: read("report.html"),
        md: read("report.md"),
        ticket: read("support_ticket.md"),
    }
}

/// The part of the page before the timeline picture: the first screen.
fn first_screen(html: &str) -> &str {
    &html[..html.find(r#"<section id="timeline-picture">"#).unwrap()]
}

/// The Korean block of the ticket: everything before the `---` that ends it.
fn korean_block(ticket: &str) -> &str {
    &ticket[..ticket.find("\n---\n").expect("a Korean block first")]
}

fn step(id: &str, uses: &str, status: StepStatus, summary: &str) -> StepRecord {
    StepRecord {
        id: id.into(),
        uses: uses.into(),
        status,
        summary: summary.into(),
        started_at: Some(fx::t(13, 36, 0)),
        finished_at: Some(fx::t(13, 36, 1)),
    }
}

#[test]
fn the_first_screen_tells_the_story_in_both_languages_total_first() {
    let tmp = tempfile::tempdir().unwrap();
    let b = write(tmp.path(), &fx::facts(), &fx::input(), &fx::result());
    let first = first_screen(&b.html);
    // The estimated loss leads, with its parts.
    let total = first
        .find("1,650,001 KRW")
        .expect("the total on the first screen");
    assert!(total < first.find("1,500,000 KRW").unwrap());
    assert!(first.contains("150,000 KRW") && first.contains("fees of the unauthorized orders"));
    // The story: first and last unauthorized action in local time and UTC.
    assert!(
        first.contains("from 2026-12-25 22:29:05 KST (2026-12-25 13:29:05 UTC)"),
        "{first}"
    );
    assert!(first.contains("to 2026-12-25 22:40:00 KST (2026-12-25 13:40:00 UTC)"));
    // What was done: the key deleted at T and how that was verified.
    assert!(first.contains(
        "The leaked key is deleted: the exchange refused it from 2026-12-25 22:45:12 KST (2026-12-25 13:45:12 UTC) on"
    ));
    assert!(first.contains("invalid_access_key"));
    assert!(first.contains("The response is complete"));
    assert!(!first.contains(r#"id="incomplete""#));
    // The same in Korean, first, in a block marked as Korean.
    let ko = first.find(r#"lang="ko""#).expect("a Korean block");
    assert!(
        ko < first
            .find("Unauthorized activity with the leaked key")
            .unwrap()
    );
    assert!(first.contains("유출된 API 키") && first.contains("다음 단계"));
    assert!(first.contains("추정 손실: 1,650,001 KRW"));
    // Next steps name the ticket and the compensation.
    assert!(first.contains("ask for compensation of the estimated loss"));
    // The Markdown report opens the same way.
    let md_total = b.md.find("**Estimated loss: 1,650,001 KRW**").unwrap();
    assert!(md_total < b.md.find("## FACTS").unwrap());
}

#[test]
fn an_incomplete_run_says_so_first_and_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut facts = fx::facts();
    facts.steps.push(step(
        "export",
        "exchange.export_history",
        StepStatus::Failed,
        "429 storm",
    ));
    facts.steps.push(step(
        "fills",
        "exchange.export_fills",
        StepStatus::Skipped,
        "skipped: needs `export`, which failed",
    ));
    facts.steps.push(step(
        "notify",
        "notify.webhook",
        StepStatus::Skipped,
        "skipped: `if: {{inputs.webhook_url}}` is false",
    ));
    facts.not_started = vec!["final_snapshot".into()];
    facts.revocation = Revocation::NotChecked;
    let b = write(tmp.path(), &facts, &fx::input(), &fx::result());
    let first = first_screen(&b.html);
    let banner = &first[first.find(r#"id="incomplete""#).expect("banner")..];
    let banner = &banner[..banner.find("</div>\n</div>").unwrap()];
    for needle in [
        "INCOMPLETE",
        "step export (exchange.export_history) failed",
        "step fills (exchange.export_fills) was skipped",
        "step final_snapshot never started",
        "the deletion of the leaked key was not verified",
        "미완료",
    ] {
        assert!(banner.contains(needle), "banner lacks {needle}: {banner}");
    }
    assert!(
        !banner.contains("notify"),
        "a step its own `if:` skipped is not missing"
    );
    assert!(first.contains("The response is INCOMPLETE"));
    assert!(first.contains("This run did not verify that the leaked key is deleted."));
    assert!(b.md.contains("**INCOMPLETE: this bundle is missing:**"));
}

#[test]
fn review_orders_have_their_own_table_and_one_count() {
    let tmp = tempfile::tempdir().unwrap();
    let mut result = fx::result();
    // The dump becomes a review order: suspicious, not in the claim.
    result.verdicts[2].flagged = false;
    result.verdicts[2].confidence = Confidence::Review;
    let b = write(tmp.path(), &fx::facts(), &fx::input(), &result);
    let first = first_screen(&b.html);
    assert!(first.contains("1 more orders need your review"));
    let counts = &first[first.find(r#"<table class="counts">"#).unwrap()..];
    let row = &counts[counts.find("</tr>").unwrap()..counts.find("</table>").unwrap()];
    let cells: Vec<&str> = row
        .split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap())
        .collect();
    // orders, unauthorized, filled, review, …
    assert_eq!(&cells[1..4], ["1", "1", "1"], "{row}");
    let review = &b.html[b.html.find(r#"<h3 id="review">"#).unwrap()..];
    assert!(review.starts_with(r#"<h3 id="review">Orders for review (1): not in the claim"#));
    let table = &review[..review.find("</table>").unwrap()];
    assert_eq!(table.matches(r#"<tr class="review">"#).count(), 1);
    assert!(table.contains(fx::DUMP_ORDER));
    // The ticket claims only the unauthorized orders.
    assert!(!b.ticket.contains(fx::DUMP_ORDER));
}

#[test]
fn without_a_bot_log_the_first_screen_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut result = fx::result();
    result.had_bot_log = false;
    let b = write(tmp.path(), &fx::facts(), &fx::input(), &result);
    let first = first_screen(&b.html);
    assert!(first.contains(r#"id="no-bot-log""#));
    assert!(first.contains("No bot log was given: detection used heuristics only"));
    assert!(first.contains("봇 기록이 제공되지 않아"));
    let with = write(
        &tmp.path().join("with"),
        &fx::facts(),
        &fx::input(),
        &fx::result(),
    );
    assert!(!first_screen(&with.html).contains(r#"id="no-bot-log""#));
}

fn allowlisted(address: &str) -> WithdrawalAddress {
    WithdrawalAddress {
        currency: "XYZ".into(),
        net_type: Some("XYZ".into()),
        address: address.into(),
        secondary_address: None,
    }
}

#[test]
fn a_stolen_withdrawal_is_traced_from_the_record_or_the_allowlist() {
    let tmp = tempfile::tempdir().unwrap();
    // As Upbit lists withdrawals: no address in the record; the allowlist has one match.
    let mut input = fx::input();
    input.withdrawals[0].address = None;
    input.withdrawal_addresses = vec![allowlisted("xyz1onlyallowlisted")];
    let b = write(&tmp.path().join("one"), &fx::facts(), &input, &fx::result());
    let card = &b.html[b.html.find(r#"id="withdrawal-w-0001""#).expect("a card")..];
    let card = &card[..card.find("</div>").unwrap()];
    for needle in [
        "1500 XYZ on network XYZ",
        "xyz1onlyallowlisted",
        "the allowlist snapshot",
        "0xdeadbeef",
        "Allowlist entry registered",
    ] {
        assert!(card.contains(needle), "card lacks {needle}: {card}");
    }
    assert!(b.ticket.contains("xyz1onlyallowlisted"));
    assert!(b.ticket.contains("Transaction id (txid): 0xdeadbeef"));
    assert!(b
        .ticket
        .contains("trace the withdrawal's transaction (txid)"));
    assert!(b
        .ticket
        .contains("when the destination address was registered"));
    assert!(b.ticket.contains("트랜잭션(txid)을 추적"));
    // The timeline marks it.
    let svg = &b.html[b.html.find("<svg").unwrap()..b.html.find("</svg>").unwrap()];
    assert!(
        svg.contains("unauthorized withdrawal w-0001"),
        "withdrawal marked"
    );

    // Two allowlisted candidates: both named, none chosen.
    let mut two = input.clone();
    two.withdrawal_addresses = vec![allowlisted("xyz1first"), allowlisted("xyz1second")];
    let b = write(&tmp.path().join("two"), &fx::facts(), &two, &fx::result());
    let card = &b.html[b.html.find(r#"id="withdrawal-w-0001""#).unwrap()..];
    let card = &card[..card.find("</div>").unwrap()];
    assert!(card.contains("xyz1first") && card.contains("xyz1second"));
    assert!(card.contains("the txid shows which one received it"));

    // The record's own address wins.
    let b = write(
        &tmp.path().join("rec"),
        &fx::facts(),
        &fx::input(),
        &fx::result(),
    );
    assert!(b.html.contains("xyz1attackeraddress") && b.html.contains("the withdrawal record"));
}

#[test]
fn the_ticket_carries_the_inputs_every_fill_and_the_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let mut facts = fx::facts();
    facts.incident = IncidentInputs {
        account: Some("victim@example.com".into()),
        discovered_at: Some("2026-12-25T22:50:00+09:00".into()),
        leak_vector: Some("a compromised trading-bot service".into()),
        contact: Some("+82-10-0000-0000".into()),
        bot_ips: vec!["203.0.113.7".into(), "203.0.113.8".into()],
    };
    let b = write(tmp.path(), &facts, &fx::input(), &fx::result());
    let t = &b.ticket;
    for needle in [
        "Account: victim@example.com",
        "Contact: +82-10-0000-0000",
        "Leak discovered: 2026-12-25T22:50:00+09:00",
        "Suspected leak vector: a compromised trading-bot service",
        "The bot's own server IPs (the legitimate sources of API calls): 203.0.113.7, 203.0.113.8",
        "The key's IP allowlist: none: the key worked from any IP address",
        "I request compensation of the estimated loss of 1,650,001 KRW.",
        "Estimated loss: 1,650,001 KRW = overpayment against pre-attack reference prices 1,500,000 KRW + withdrawn 150,000 KRW + fees 1 KRW",
        "계정: victim@example.com",
        "위 추정 손실 1,650,001 KRW에 대한 보상을 요청합니다.",
    ] {
        assert!(t.contains(needle), "ticket lacks {needle}:\n{t}");
    }
    // Every fill of the pump with its trade id, price, volume, amount and fee, local and UTC.
    for needle in [
        "| f-0004a | 9c1e5d7a-0004-4f1b-8a55-attack000004 | KRW-XYZ | buy | 2026-12-25 22:30:00 KST | 2026-12-25 13:30:00 UTC | 340 | 1000 | 340,000 | 0 |",
        "| f-0004b |",
    ] {
        assert!(t.contains(needle), "ticket lacks {needle}:\n{t}");
    }
    // "Executed" lists only what filled: the dump (no fills known, but executed) has its
    // order totals; nothing unfilled is among the fills.
    assert!(t.contains(&format!("|  | {} |", fx::DUMP_ORDER)));
    // Times in local time and UTC; no English sentence and no Markdown escape in the Korean
    // block.
    let ko = korean_block(t);
    assert!(
        !ko.contains('\\'),
        "a Markdown escape in the Korean block:\n{ko}"
    );
    for english in [
        " the ",
        " and ",
        "Please",
        "deleted",
        "not given",
        "refused",
    ] {
        assert!(
            !ko.contains(english),
            "English `{english}` in the Korean block:\n{ko}"
        );
    }
    assert!(ko.contains("KST") && ko.contains("UTC"));
}

#[test]
fn absent_inputs_are_placeholders_that_name_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let mut facts = fx::facts();
    facts.incident = IncidentInputs::default();
    let b = write(tmp.path(), &facts, &fx::input(), &fx::result());
    for input in [
        "account",
        "contact",
        "discovered_at",
        "leak_vector",
        "bot_ips",
    ] {
        let flag = format!("--input {input}=...");
        assert_eq!(
            b.ticket.matches(&flag).count(),
            2,
            "{input}: a placeholder in each language:\n{}",
            b.ticket
        );
    }
    assert!(!korean_block(&b.ticket).contains('\\'));
}

#[test]
fn a_run_that_found_nothing_gets_a_ticket_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut result = fx::result();
    for v in &mut result.verdicts {
        v.flagged = false;
        v.confidence = Confidence::None;
        v.rules.clear();
    }
    result.transfers.clear();
    result.loss.total = 0.into();
    result.loss.overpayment = 0.into();
    result.loss.withdrawn_value = 0.into();
    result.loss.fees = 0.into();
    let b = write(tmp.path(), &fx::facts(), &fx::input(), &result);
    let t = &b.ticket;
    assert!(t.contains("# API key leak: report, and request to check the key's use"));
    assert!(t.contains("this tool found no unauthorized order or withdrawal"));
    assert!(t.contains("# API 키 유출 신고 및 사용 기록 확인 요청"));
    for absent in [
        "[긴급]",
        "Unauthorized trades",
        "compensation",
        "| trade id",
    ] {
        assert!(
            !t.contains(absent),
            "`{absent}` in a ticket for nothing found:\n{t}"
        );
    }
    assert!(first_screen(&b.html).contains("No unauthorized order or withdrawal was found"));
}
