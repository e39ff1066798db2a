//! The coordinated drill: `respond drill --exchange A --exchange B …` runs one in-process mock
//! per exchange (real loopback HTTP), each with its live attacker, all started at the same
//! moment, and one drill per exchange against them at once into one incident folder. It
//! scores each exchange as a single drill does, and the whole: detection over every exchange,
//! the time until every account was contained (the slowest first containment) and until every
//! key was observed deleted, and whether the incident folder verifies.

use std::path::Path;

use serde::Serialize;

use super::accounts::{CredSource, Source};
use super::record::{AccountRecord, IncidentRecord};
use crate::drill::run::{self, DrillOptions};
use crate::drill::score::Scorecard;
use crate::exit::{Code, Failure};
use crate::output::Printer;

/// The whole drill's score, next to the incident report.
pub const REPORT_MD: &str = "drill_report.md";
pub const REPORT_JSON: &str = "drill_report.json";

/// One exchange's part of the score.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeScore {
    pub exchange: String,
    pub bundle: Option<String>,
    pub run_ok: bool,
    pub scorecard: Option<Scorecard>,
    pub error: Option<String>,
}

/// The score of the whole.
#[derive(Debug, Clone, Serialize)]
pub struct WholeScore {
    pub exchanges: Vec<ExchangeScore>,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub recall: f64,
    pub precision: f64,
    /// From the drills' start until the last account's first containment (the slowest).
    pub time_to_contain_every_account_ms: Option<i64>,
    pub time_to_every_revocation_observed_ms: Option<i64>,
    pub incident_verified: bool,
    pub passed: bool,
}

/// Per exchange: its options (its own folder under the incident).
pub struct Plan {
    pub exchange: String,
    pub opts: DrillOptions,
}

/// Runs the drills at once into `dir` and scores them. `plans` name their exchanges.
pub async fn run(
    dir: &Path,
    plans: Vec<Plan>,
    printer: &Printer,
) -> Result<(WholeScore, Code), Failure> {
    let mut tasks = Vec::new();
    for plan in plans {
        let p = printer.labelled(&plan.exchange);
        tasks.push(tokio::spawn(async move {
            let r = run::run(&plan.opts, &p).await;
            (plan.exchange, r)
        }));
    }
    let mut scores = Vec::new();
    let mut record = IncidentRecord {
        format: "respond-incident/1".into(),
        started_at: crate::time::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        dry_run: false,
        accounts: vec![],
    };
    for t in tasks {
        let (exchange, r) = t
            .await
            .map_err(|e| Failure::run(format!("a drill's task ended abnormally: {e}")))?;
        let bundle = r.as_ref().ok().map(|o| {
            o.dir
                .strip_prefix(dir)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| o.dir.display().to_string())
        });
        record.accounts.push(AccountRecord {
            label: exchange.clone(),
            exchange: exchange.clone(),
            key_masked: bundle
                .as_deref()
                .and_then(|b| b.rsplit('-').next())
                .unwrap_or_default()
                .to_string(),
            scopes: vec![],
            source: Source {
                credentials: CredSource::Drill,
                readonly: None,
                master: None,
                sub_account: None,
                api_url: None,
            },
            bundle: bundle.clone(),
        });
        scores.push(match r {
            Ok(o) => ExchangeScore {
                exchange,
                bundle,
                run_ok: o.report.ok,
                scorecard: Some(o.scorecard),
                error: None,
            },
            Err(f) => {
                printer.labelled(&exchange).error(&f.to_string());
                ExchangeScore {
                    exchange,
                    bundle: None,
                    run_ok: false,
                    scorecard: None,
                    error: Some(f.message),
                }
            }
        });
    }
    record.write(dir)?;
    let mut whole = whole(scores);
    // The score goes into the incident before it is sealed; the seal is then checked.
    write_score(dir, &whole)?;
    super::run::finish(dir, printer)?;
    whole.incident_verified = super::manifest::verify(dir).ok;
    whole.passed = whole.passed && whole.incident_verified;
    write_score(dir, &whole)?;
    let record = IncidentRecord::read(dir)?;
    super::manifest::seal(dir, &record)
        .map_err(|e| Failure::run(format!("cannot seal the incident: {e}")))?;
    let code = if !whole.incident_verified {
        Code::EvidenceMismatch
    } else if whole.exchanges.iter().any(|e| !e.run_ok) {
        Code::RunFailed
    } else if !whole.passed {
        Code::DrillBelowThreshold
    } else {
        Code::Ok
    };
    Ok((whole, code))
}

fn whole(exchanges: Vec<ExchangeScore>) -> WholeScore {
    let cards: Vec<&Scorecard> = exchanges
        .iter()
        .filter_map(|e| e.scorecard.as_ref())
        .collect();
    let tp: usize = cards.iter().map(|c| c.detection.true_positives).sum();
    let fp: usize = cards.iter().map(|c| c.detection.false_positives).sum();
    let fneg: usize = cards.iter().map(|c| c.detection.false_negatives).sum();
    let ratio = |a: usize, b: usize| {
        if a + b == 0 {
            1.0
        } else {
            a as f64 / (a + b) as f64
        }
    };
    let all = cards.len() == exchanges.len();
    let slowest = |f: fn(&Scorecard) -> Option<i64>| -> Option<i64> {
        let v: Vec<Option<i64>> = cards.iter().map(|c| f(c)).collect();
        if all && v.iter().all(Option::is_some) {
            v.into_iter().flatten().max()
        } else {
            None
        }
    };
    WholeScore {
        true_positives: tp,
        false_positives: fp,
        false_negatives: fneg,
        recall: ratio(tp, fneg),
        precision: ratio(tp, fp),
        time_to_contain_every_account_ms: slowest(|c| c.time_to_first_containment_ms),
        time_to_every_revocation_observed_ms: slowest(|c| c.time_to_revocation_observed_ms),
        incident_verified: false,
        passed: all && cards.iter().all(|c| c.passed) && exchanges.iter().all(|e| e.run_ok),
        exchanges,
    }
}

fn write_score(dir: &Path, w: &WholeScore) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::run(format!("cannot write the drill's score: {e}"));
    let json = serde_json::to_vec_pretty(w).map_err(|e| Failure::run(e.to_string()))?;
    crate::fsutil::write_private(&dir.join(REPORT_JSON), &json).map_err(io)?;
    crate::fsutil::write_private(&dir.join(REPORT_MD), markdown(w).as_bytes()).map_err(io)
}

fn ms(v: Option<i64>) -> String {
    v.map(|m| format!("{:.1} s", m as f64 / 1000.0))
        .unwrap_or_else(|| "not reached".into())
}

/// The whole score as Markdown (also what the terminal shows).
pub fn markdown(w: &WholeScore) -> String {
    let mut s = String::from("# Coordinated drill\n\n| exchange | recall | precision | first containment | revocation observed | passed |\n|---|---|---|---|---|---|\n");
    for e in &w.exchanges {
        match &e.scorecard {
            Some(c) => s.push_str(&format!(
                "| {} | {:.3} | {:.3} | {} | {} | {} |\n",
                e.exchange,
                c.detection.recall,
                c.detection.precision,
                ms(c.time_to_first_containment_ms),
                ms(c.time_to_revocation_observed_ms),
                if c.passed && e.run_ok { "yes" } else { "NO" }
            )),
            None => s.push_str(&format!(
                "| {} | — | — | — | — | NO: {} |\n",
                e.exchange,
                crate::report::sanitize::md(e.error.as_deref().unwrap_or("did not run"))
            )),
        }
    }
    s.push_str(&format!(
        "\nWhole: recall {:.3}, precision {:.3}; every account contained after {}; every key observed deleted after {}; incident folder verifies: {}; passed: {}.\n",
        w.recall,
        w.precision,
        ms(w.time_to_contain_every_account_ms),
        ms(w.time_to_every_revocation_observed_ms),
        if w.incident_verified { "yes" } else { "no" },
        if w.passed { "yes" } else { "NO" }
    ));
    s
}
