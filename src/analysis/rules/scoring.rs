//! Scoring: each order's rule hits summed into a score, and the confidence the policy gives
//! it (see the policy in [`super`]).
//!
//! `high` always needs a score of at least `flag_score` (a score below it is never high),
//! and evidence of an act a person trading by hand does not commit ("core" rules below). An
//! order that looks like the owner's own trade ([`super::user`]) is never more than `review`;
//! one judged without a log that looks like the bot's own is `none`.

use super::super::model::{Confidence, RuleHit, Thresholds};
use super::Ctx;

/// With a log: acts that make an unmatched order (R1) a claim. R3 (a market the bot never
/// trades) is not among them: that is what the owner's own trades look like too.
const CORE_WITH_LOG: [&str; 7] = ["R2", "R4", "R6", "R7", "R8", "R9", "R15"];

/// Without a log (or outside its span): the harmful acts that stand without one. R2 is not
/// among them there: after the log ends, a bot restarted with a new prefix looks the same.
const CORE_WITHOUT_LOG: [&str; 6] = ["R4", "R6", "R7", "R8", "R9", "R15"];

/// Sorts each order's hits by rule number and returns its confidence and score.
pub(crate) fn score(
    ctx: &Ctx<'_>,
    hits: &mut [Vec<RuleHit>],
    user_trade: &[Option<String>],
    bot_like: &[bool],
    th: &Thresholds,
) -> (Vec<Confidence>, Vec<f64>) {
    let n = hits.len();
    let mut confidence = vec![Confidence::None; n];
    let mut score = vec![0.0; n];
    for i in 0..n {
        let h = &mut hits[i];
        if h.is_empty() {
            continue;
        }
        h.sort_by_key(|x| x.rule[1..].parse::<u32>().unwrap_or(99));
        let s: f64 = h.iter().map(|x| x.weight).sum();
        score[i] = (s * 1000.0).round() / 1000.0;
        let has = |r: &str| h.iter().any(|x| x.rule == r);
        // A size far beyond anything the bot places (R11 at its strong weight) is an act a
        // person trading by hand rarely commits either; the user-trade model has the last word.
        let big = h.iter().any(|x| x.rule == "R11" && x.weight >= 0.5);
        let reaches = score[i] >= th.flag_score;
        let c = if ctx.judged_with_log(i) {
            let core = big || CORE_WITH_LOG.iter().any(|r| has(r));
            if has("R1") && core && reaches {
                Confidence::High
            } else {
                Confidence::Review
            }
        } else {
            let core = big || CORE_WITHOUT_LOG.iter().any(|r| has(r));
            if core && reaches {
                Confidence::High
            } else if score[i] >= th.flag_score / 2.0 {
                Confidence::Review
            } else {
                Confidence::None
            }
        };
        confidence[i] = if bot_like[i] {
            Confidence::None
        } else if user_trade[i].is_some() {
            c.min(Confidence::Review)
        } else {
            c
        };
    }
    (confidence, score)
}
