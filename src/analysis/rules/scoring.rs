//! Scoring: each order's rule hits summed into a score, and the confidence the policy gives
//! it (see the policy in [`super`]).

use super::super::model::{Confidence, RuleHit, Thresholds};

/// Sorts each order's hits by rule number and returns its confidence and score.
pub(crate) fn score(
    hits: &mut [Vec<RuleHit>],
    had_log: bool,
    th: &Thresholds,
) -> (Vec<Confidence>, Vec<f64>) {
    let n = hits.len();

    let mut confidence = vec![Confidence::None; n];
    let mut score = vec![0.0; n];
    for i in 0..n {
        let h = &mut hits[i];
        h.sort_by_key(|x| x.rule[1..].parse::<u32>().unwrap_or(99));
        let s: f64 = h.iter().map(|x| x.weight).sum();
        score[i] = (s * 1000.0).round() / 1000.0;
        let has = |r: &str| h.iter().any(|x| x.rule == r);
        confidence[i] = if h.is_empty() {
            Confidence::None
        } else if had_log {
            // R3 (a market the bot never trades) is what the user's own manual trades look
            // like too, so it corroborates but does not lift R1 to High on its own.
            let core = ["R2", "R4", "R9", "R6", "R7", "R8"].iter().any(|r| has(r));
            if has("R1") && core {
                Confidence::High
            } else {
                Confidence::Review
            }
        } else {
            let hard_r4 = h.iter().any(|x| x.rule == "R4" && x.weight >= 1.0);
            let pattern = (has("R7") || has("R8")) && h.len() >= 2;
            let strong = score[i] >= th.flag_score && (has("R4") || has("R6"));
            if hard_r4 || pattern || strong {
                Confidence::High
            } else if score[i] >= th.flag_score / 2.0 {
                Confidence::Review
            } else {
                Confidence::None
            }
        };
    }
    (confidence, score)
}
