//! Drill scoring: the run's findings against the mock's ground truth.
//!
//! Pure functions over plain inputs (sets of order ids, times, amounts), so the score is
//! testable without a mock and reproducible from a bundle plus a ground-truth file.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// Detection quality for one predicate (overall, or one rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Detection {
    /// Compares predicted ids with actual ids. Empty predictions on an empty truth score 1.0.
    pub fn compare(predicted: &BTreeSet<String>, actual: &BTreeSet<String>) -> Self {
        let tp = predicted.intersection(actual).count();
        let fp = predicted.len() - tp;
        let fn_ = actual.len() - tp;
        let precision = if predicted.is_empty() {
            if actual.is_empty() {
                1.0
            } else {
                0.0
            }
        } else {
            tp as f64 / predicted.len() as f64
        };
        let recall = if actual.is_empty() {
            1.0
        } else {
            tp as f64 / actual.len() as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Detection {
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
            precision,
            recall,
            f1,
        }
    }
}

/// What the drill observed, gathered by the drill runner.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub run_started_at: Option<DateTime<Utc>>,
    /// The first containment action that reached the exchange (first cancel, or the manual
    /// revoke instructions shown, whichever came first).
    pub first_containment_at: Option<DateTime<Utc>>,
    pub revocation_observed_at: Option<DateTime<Utc>>,
    /// Who revoked the key: `respond (POST /v5/user/delete-api)` when the run deleted it by
    /// API, `the user` when the simulated user did, empty when it was not revoked.
    pub revoked_by: String,
    /// Exported order ids (what the tool saw).
    pub exported_orders: BTreeSet<String>,
    /// Order ids the tool flagged.
    pub flagged_orders: BTreeSet<String>,
    /// Order ids per rule that fired on them (flagged or not).
    pub rule_hits: BTreeMap<String, BTreeSet<String>>,
    pub flagged_withdrawals: BTreeSet<String>,
    /// The analysis' estimated loss (`loss.total`).
    pub estimated_loss: Decimal,
    /// Its parts: overpayment, withdrawn value, fees.
    pub loss_parts: LossParts,
    /// What could not be priced (the estimate is then the total of the rest).
    pub loss_unpriced: Vec<String>,
    /// The currency of the loss figures (the analysis' quote currency).
    pub loss_currency: String,
    /// The loss as the reports state it (formatted in the exchange's units): total, then parts.
    pub loss_text: String,
    /// The true loss formatted like `loss_text`'s amounts.
    pub true_loss_text: String,
    pub evidence_verified: bool,
}

/// The parts of the estimated loss, exact.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LossParts {
    pub overpayment: String,
    pub withdrawn_value: String,
    pub fees: String,
}

/// The mock's ground truth, as the drill needs it.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Attacker order ids with their creation time.
    pub attacker_orders: BTreeMap<String, DateTime<Utc>>,
    pub attacker_withdrawals: BTreeSet<String>,
    pub user_manual_orders: BTreeSet<String>,
    pub true_loss: Decimal,
}

/// The drill's result.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub scenario: String,
    pub seed: Option<u64>,
    pub reaction_secs: f64,
    pub with_bot_log: bool,
    pub time_to_first_containment_ms: Option<i64>,
    pub time_to_revocation_observed_ms: Option<i64>,
    /// Who revoked the key ([`Observed::revoked_by`]).
    pub revoked_by: String,
    pub attacker_orders_total: usize,
    pub attacker_orders_after_start: usize,
    pub detection: Detection,
    pub per_rule: BTreeMap<String, Detection>,
    pub withdrawals: Detection,
    pub user_manual_orders_flagged: usize,
    /// Estimated (`loss.total` of the analysis) and true loss, in `loss_currency`.
    pub estimated_loss: String,
    pub estimated_loss_parts: LossParts,
    pub loss_unpriced: Vec<String>,
    pub true_loss: String,
    pub loss_currency: String,
    /// The estimate as the reports state it: total first, then its parts.
    pub loss_text: String,
    pub true_loss_text: String,
    /// estimated / true (1.0 = exact); `None` when the true loss is zero.
    pub loss_ratio: Option<f64>,
    pub evidence_verified: bool,
    pub min_recall: f64,
    pub min_precision: f64,
    pub passed: bool,
    pub failures: Vec<String>,
}

/// The drill's settings that the score reports and judges against.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenario: String,
    pub seed: Option<u64>,
    pub reaction_secs: f64,
    pub with_bot_log: bool,
    pub min_recall: f64,
    pub min_precision: f64,
}

/// Scores one drill.
pub fn score(settings: &Settings, truth: &Truth, observed: &Observed) -> Scorecard {
    let (min_recall, min_precision) = (settings.min_recall, settings.min_precision);
    // Detection is judged on the orders the tool could see: attacker orders placed after the
    // key died never reach the export, and that is containment working, not a miss.
    let actual: BTreeSet<String> = truth
        .attacker_orders
        .keys()
        .filter(|id| observed.exported_orders.contains(*id))
        .cloned()
        .collect();
    let detection = Detection::compare(&observed.flagged_orders, &actual);
    let per_rule = observed
        .rule_hits
        .iter()
        .map(|(rule, ids)| (rule.clone(), Detection::compare(ids, &actual)))
        .collect();
    let withdrawals =
        Detection::compare(&observed.flagged_withdrawals, &truth.attacker_withdrawals);
    let since = |t: Option<DateTime<Utc>>| match (observed.run_started_at, t) {
        (Some(s), Some(t)) => Some((t - s).num_milliseconds()),
        _ => None,
    };
    let after_start = match observed.run_started_at {
        Some(s) => truth.attacker_orders.values().filter(|t| **t >= s).count(),
        None => 0,
    };
    let loss_ratio = if truth.true_loss.is_zero() {
        None
    } else {
        use rust_decimal::prelude::ToPrimitive;
        (observed.estimated_loss / truth.true_loss).to_f64()
    };
    let mut failures = Vec::new();
    if detection.recall < min_recall {
        failures.push(format!(
            "recall {:.3} is below the minimum {:.3}",
            detection.recall, min_recall
        ));
    }
    if detection.precision < min_precision {
        failures.push(format!(
            "precision {:.3} is below the minimum {:.3}",
            detection.precision, min_precision
        ));
    }
    if !truth.attacker_withdrawals.is_empty() && withdrawals.recall < min_recall {
        failures.push(format!(
            "withdrawal recall {:.3} is below the minimum {:.3}",
            withdrawals.recall, min_recall
        ));
    }
    if !observed.evidence_verified {
        failures.push("the evidence bundle did not verify".into());
    }
    let user_manual_orders_flagged = observed
        .flagged_orders
        .intersection(&truth.user_manual_orders)
        .count();
    Scorecard {
        scenario: settings.scenario.clone(),
        seed: settings.seed,
        reaction_secs: settings.reaction_secs,
        with_bot_log: settings.with_bot_log,
        time_to_first_containment_ms: since(observed.first_containment_at),
        time_to_revocation_observed_ms: since(observed.revocation_observed_at),
        revoked_by: observed.revoked_by.clone(),
        attacker_orders_total: truth.attacker_orders.len(),
        attacker_orders_after_start: after_start,
        detection,
        per_rule,
        withdrawals,
        user_manual_orders_flagged,
        estimated_loss: observed.estimated_loss.normalize().to_string(),
        estimated_loss_parts: observed.loss_parts.clone(),
        loss_unpriced: observed.loss_unpriced.clone(),
        true_loss: truth.true_loss.normalize().to_string(),
        loss_currency: observed.loss_currency.clone(),
        loss_text: observed.loss_text.clone(),
        true_loss_text: observed.true_loss_text.clone(),
        loss_ratio,
        evidence_verified: observed.evidence_verified,
        min_recall,
        min_precision,
        passed: failures.is_empty(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precision_recall_f1() {
        let d = Detection::compare(&ids(&["a", "b", "x"]), &ids(&["a", "b", "c", "d"]));
        assert_eq!(
            (d.true_positives, d.false_positives, d.false_negatives),
            (2, 1, 2)
        );
        assert!((d.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((d.recall - 0.5).abs() < 1e-9);
        assert!((d.f1 - (2.0 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5))).abs() < 1e-9);
        let empty = Detection::compare(&ids(&[]), &ids(&[]));
        assert_eq!((empty.precision, empty.recall), (1.0, 1.0));
    }

    #[test]
    fn unseen_attacker_orders_do_not_count_as_misses_but_count_as_got_through() {
        let t0: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        let truth = Truth {
            attacker_orders: [("a", -10), ("b", 5), ("late", 60)]
                .into_iter()
                .map(|(id, s)| (id.to_string(), t0 + chrono::Duration::seconds(s)))
                .collect(),
            true_loss: Decimal::from(1000),
            ..Default::default()
        };
        let observed = Observed {
            run_started_at: Some(t0),
            exported_orders: ids(&["a", "b", "bot1"]),
            flagged_orders: ids(&["a", "b"]),
            estimated_loss: Decimal::from(900),
            loss_currency: "QTE".into(),
            loss_text: "estimated loss 900 QTE = overpayment 900 + withdrawn 0 + fees 0".into(),
            evidence_verified: true,
            ..Default::default()
        };
        let settings = Settings {
            scenario: "x".into(),
            seed: None,
            reaction_secs: 5.0,
            with_bot_log: true,
            min_recall: 0.95,
            min_precision: 0.95,
        };
        let s = score(&settings, &truth, &observed);
        assert_eq!(s.detection.recall, 1.0);
        assert_eq!(s.attacker_orders_after_start, 2);
        assert!(s.passed, "{:?}", s.failures);
        assert_eq!(s.loss_ratio, Some(0.9));
        let bad = Observed {
            evidence_verified: false,
            flagged_orders: ids(&["a", "bot1"]),
            ..observed
        };
        let s = score(&settings, &truth, &bad);
        assert!(!s.passed);
        assert_eq!(s.failures.len(), 3);
    }
}
