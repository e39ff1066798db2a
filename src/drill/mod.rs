//! `respond drill`: rehearse a leak end to end against the in-process mock exchange (real
//! HTTP over loopback), with a simulated user who deletes the key after a reaction time, and
//! score the run against the mock's ground truth.

pub mod run;
pub mod score;

use score::{Detection, Scorecard};

fn ms(v: Option<i64>) -> String {
    v.map(|m| format!("{:.1} s", m as f64 / 1000.0))
        .unwrap_or_else(|| "n/a".into())
}

fn det(d: &Detection) -> String {
    format!(
        "precision {:.3}, recall {:.3}, F1 {:.3} (TP {}, FP {}, FN {})",
        d.precision, d.recall, d.f1, d.true_positives, d.false_positives, d.false_negatives
    )
}

/// The scorecard as `(label, value)` rows, shared by the terminal table and the Markdown file.
pub fn scorecard_rows(c: &Scorecard) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            "scenario".to_string(),
            format!(
                "{}{}",
                c.scenario,
                c.seed.map(|s| format!(" (seed {s})")).unwrap_or_default()
            ),
        ),
        (
            "bot log".into(),
            if c.with_bot_log {
                "given".into()
            } else {
                "none (heuristics only)".into()
            },
        ),
        (
            format!("loss ({})", c.loss_currency),
            format!(
                "{} vs true {}{}",
                c.loss_text,
                c.true_loss_text,
                c.loss_ratio
                    .map(|r| format!(" (ratio {r:.3})"))
                    .unwrap_or_default()
            ),
        ),
        ("user reaction".into(), format!("{:.1} s", c.reaction_secs)),
        (
            "first containment action".into(),
            ms(c.time_to_first_containment_ms),
        ),
        (
            "revocation observed".into(),
            if c.revoked_by.is_empty() {
                ms(c.time_to_revocation_observed_ms)
            } else {
                format!(
                    "{} (by {})",
                    ms(c.time_to_revocation_observed_ms),
                    c.revoked_by
                )
            },
        ),
        (
            "attacker orders".into(),
            format!(
                "{} in all, {} after the run started",
                c.attacker_orders_total, c.attacker_orders_after_start
            ),
        ),
        ("detection (orders)".into(), det(&c.detection)),
    ];
    for (rule, d) in &c.per_rule {
        rows.push((format!("  rule {rule}"), det(d)));
    }
    rows.push(("detection (withdrawals)".into(), det(&c.withdrawals)));
    rows.push((
        "user's own trades flagged".into(),
        c.user_manual_orders_flagged.to_string(),
    ));
    rows.push((
        "evidence bundle".into(),
        if c.evidence_verified {
            "verified".into()
        } else {
            "NOT verified".into()
        },
    ));
    rows.push((
        "result".into(),
        if c.passed {
            format!(
                "PASS (recall ≥ {}, precision ≥ {})",
                c.min_recall, c.min_precision
            )
        } else {
            format!("FAIL: {}", c.failures.join("; "))
        },
    ));
    rows
}

/// The scorecard as an aligned plain-text table.
pub fn scorecard_table(c: &Scorecard) -> String {
    let rows = scorecard_rows(c);
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

/// The scorecard as Markdown (`drill_report.md`).
pub fn scorecard_markdown(c: &Scorecard) -> String {
    let mut s = String::from("# Drill report\n\n| measure | value |\n|---|---|\n");
    for (k, v) in scorecard_rows(c) {
        s.push_str(&format!(
            "| {} | {} |\n",
            k.trim().replace('|', "\\|"),
            v.replace('|', "\\|")
        ));
    }
    s.push_str(
        "\nDetection is judged on the attacker orders the export could see; orders the attacker \
         could not place because the key was already dead count as contained, not as misses. \
         Loss compares the estimate (overpayment + flagged withdrawals at reference prices + fees \
         of the flagged orders) with the mock's true loss (attacker fills' deviation from \
         reference, fees, withdrawals).\n",
    );
    s
}
