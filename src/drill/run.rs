//! The drill runner: the mock in-process on a loopback port (real HTTP, the router of `respond
//! mock serve`), the attack running live with the leaked key, a simulated user deleting the key
//! through `/_mock/keys/{key}/revoke` after the reaction time, and the leak playbook run
//! against it exactly as `respond leak` runs it, non-interactively. Then the score.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::cli::BotLogArgs;
use crate::credentials::KeyPair;
use crate::engine::events::{self, Event};
use crate::engine::journal::Journal;
use crate::engine::RunReport;
use crate::exit::Failure;
use crate::investigation::{self, JournalFacts};
use crate::mock::{self, MockOptions, Permission, Venue};
use crate::output::Printer;
use crate::rundir::RunDir;
use crate::secret::Secret;
use crate::session::{self, Connection, RunSettings};

use super::score::{self, Observed, Scorecard, Settings, Truth};

/// What `respond drill` was asked to do.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub exchange: String,
    pub scenario: String,
    pub playbook: Option<PathBuf>,
    pub out: PathBuf,
    pub seed: Option<u64>,
    /// Seconds the simulated user takes to delete the key.
    pub reaction_secs: f64,
    pub min_recall: f64,
    pub min_precision: f64,
    pub with_bot_log: bool,
    /// CSVs with a UTF-8 byte-order mark (the playbook's `excel` input).
    pub excel: bool,
}

impl DrillOptions {
    /// The `respond drill` command with these options, quoted for the shell: what runs the
    /// drill again (an interrupted drill cannot be resumed, its mock exchange stops with it).
    pub fn command_line(&self) -> String {
        let mut words = vec![
            "drill".to_string(),
            "--exchange".into(),
            self.exchange.clone(),
            "--scenario".into(),
            self.scenario.clone(),
        ];
        if let Some(p) = &self.playbook {
            words.extend(["--playbook".into(), p.display().to_string()]);
        }
        words.extend(["--out".into(), self.out.display().to_string()]);
        if let Some(seed) = self.seed {
            words.extend(["--seed".into(), seed.to_string()]);
        }
        words.extend([
            "--reaction".into(),
            self.reaction_secs.to_string(),
            "--min-recall".into(),
            self.min_recall.to_string(),
            "--min-precision".into(),
            self.min_precision.to_string(),
        ]);
        if !self.with_bot_log {
            words.push("--no-bot-log".into());
        }
        if self.excel {
            words.push("--excel".into());
        }
        crate::output::respond_command(words)
    }
}

/// A finished drill.
pub struct DrillOutcome {
    pub scorecard: Scorecard,
    pub report: RunReport,
    pub dir: PathBuf,
}

/// Runs one drill end to end.
pub async fn run(opts: &DrillOptions, printer: &Printer) -> Result<DrillOutcome, Failure> {
    let desc = crate::investigation::exchange_named(&opts.exchange).map_err(Failure::usage)?;
    let facade = desc.mock.map(|f| f()).ok_or_else(|| {
        Failure::usage(format!(
            "there is no mock {} exchange to drill against yet",
            desc.display
        ))
    })?;
    if !(0.0..=3600.0).contains(&opts.reaction_secs) {
        return Err(Failure::usage(
            "--reaction must be between 0 and 3600 seconds",
        ));
    }
    let scenario = mock::scenario::load(&opts.scenario, opts.seed)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let state = Venue::new(facade.as_ref(), scenario, MockOptions::default())
        .map_err(|e| Failure::usage(e.to_string()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = mock::serve(addr, facade.clone(), state.clone())
        .await
        .map_err(|e| Failure::run(format!("cannot start the mock exchange on loopback: {e}")))?;
    printer.status(&format!(
        "mock exchange ({}) listening on {}",
        opts.scenario, server.url
    ));
    let result = drive(opts, facade.as_ref(), &state, &server.url, printer).await;
    let _ = server.shutdown().await;
    result
}

fn key_pair(k: &mock::KeyInfo) -> KeyPair {
    KeyPair {
        access_key: k.access_key.clone(),
        secret_key: Secret::new(k.secret_key.clone()),
        passphrase: k.passphrase.clone().map(Secret::new),
    }
}

async fn drive(
    opts: &DrillOptions,
    facade: &dyn mock::Facade,
    state: &std::sync::Arc<Venue>,
    url: &str,
    printer: &Printer,
) -> Result<DrillOutcome, Failure> {
    let truth0 = state.ground_truth();
    let leaked = state
        .keys()
        .iter()
        .find(|k| k.access_key == truth0.leaked_access_key)
        .ok_or_else(|| Failure::usage(format!("scenario {} names no leaked key", opts.scenario)))?
        .clone();
    let readonly = state
        .keys()
        .iter()
        .find(|k| {
            k.account == leaked.account
                && k.access_key != leaked.access_key
                && k.permissions.iter().all(|p| *p == Permission::Read)
        })
        .cloned();

    // The bot's own log, as the user would bring it: a scratch directory of this drill's own
    // (drills of one process may start in the same millisecond, on a paused clock at once).
    static DRILLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "respond-drill-{}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_millis(),
        DRILLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    crate::fsutil::create_private_dir(&scratch)
        .map_err(|e| Failure::run(format!("cannot create {}: {e}", scratch.display())))?;
    let mut bot_logs = BotLogArgs::default();
    if opts.with_bot_log {
        let p = scratch.join("bot-orders.csv");
        crate::fsutil::write_private(&p, state.bot_log_csv().as_bytes())
            .map_err(|e| Failure::run(format!("cannot write the drill's bot log: {e}")))?;
        bot_logs.bot_logs.push(p);
    }

    // The simulated user deletes the key in the "web console" after the reaction time.
    let run_started = crate::time::now();
    let revoke_url = format!("{url}/_mock/keys/{}/revoke", leaked.access_key);
    let reaction = Duration::from_secs_f64(opts.reaction_secs);
    let user = tokio::spawn(async move {
        tokio::time::sleep(reaction).await;
        let client = reqwest::Client::new();
        match client.post(&revoke_url).send().await {
            Ok(r) if r.status().is_success() => Some(crate::time::now()),
            _ => None,
        }
    });

    let revoke_timeout = (opts.reaction_secs * 2.0 + 60.0).ceil() as u64;
    let mut inputs = BTreeMap::new();
    inputs.insert("revoke_interval".to_string(), "500ms".to_string());
    inputs.insert("revoke_timeout".to_string(), format!("{revoke_timeout}s"));
    if opts.excel {
        inputs.insert("excel".to_string(), "true".to_string());
    }
    let settings = RunSettings {
        playbook: opts.playbook.clone(),
        inputs,
        bot_logs,
        out: opts.out.clone(),
        dry_run: false,
        assume_yes: true,
        interactive: false,
        rerun: Some(opts.command_line()),
    };
    let conn = Connection {
        exchange: opts.exchange.clone(),
        api_url: Some(url.to_string()),
        primary: Some(key_pair(&leaked)),
        readonly: readonly.as_ref().map(key_pair),
        master: None,
    };
    let run = session::run_new(settings, &conn, printer).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = run?;
    let revoked_by_user = user.await.ok().flatten();
    let dir = report.dir.clone();

    let truth = truth_of(facade, state);
    let observed = observe(
        &dir,
        state,
        &leaked.access_key,
        run_started,
        truth.true_loss,
    )?;
    let settings = Settings {
        scenario: opts.scenario.clone(),
        seed: opts.seed,
        reaction_secs: opts.reaction_secs,
        with_bot_log: opts.with_bot_log,
        min_recall: opts.min_recall,
        min_precision: opts.min_precision,
    };
    let mut card = score::score(&settings, &truth, &observed);
    if revoked_by_user.is_none() {
        card.failures
            .push("the simulated user could not revoke the key through /_mock/".into());
        card.passed = false;
    }
    write_drill_report(&dir, &card)?;
    Ok(DrillOutcome {
        scorecard: card,
        report,
        dir,
    })
}

fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What really happened, under the ids the façade shows (those the run exported).
fn truth_of(facade: &dyn mock::Facade, state: &Venue) -> Truth {
    let gt = state.ground_truth();
    let w = state.world();
    Truth {
        attacker_orders: gt
            .attacker_order_uuids
            .iter()
            .filter_map(|u| {
                let o = w.order(u)?;
                Some((facade.public_order_id(&w, u), o.created_at))
            })
            .collect(),
        attacker_withdrawals: gt
            .attacker_withdrawal_uuids
            .iter()
            .map(|u| facade.public_withdrawal_id(&w, u))
            .collect(),
        user_manual_orders: gt
            .user_manual_order_uuids
            .iter()
            .map(|u| facade.public_order_id(&w, u))
            .collect(),
        true_loss: Decimal::from_str(&gt.true_loss).unwrap_or_default(),
    }
}

/// What the run saw and concluded, read back from its bundle and the mock's request log.
fn observe(
    dir: &Path,
    state: &Venue,
    leaked: &str,
    run_started: DateTime<Utc>,
    truth_loss: Decimal,
) -> Result<Observed, Failure> {
    let facts = JournalFacts::read(dir).map_err(Failure::run)?;
    let thresholds = investigation::thresholds_from(
        facts
            .last_args_of("report.evidence")
            .and_then(|a| a.get("thresholds")),
    )
    .map_err(Failure::run)?;
    let inv = investigation::investigate(dir, &thresholds).map_err(Failure::run)?;
    let mut rule_hits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (o, v) in inv.input.orders.iter().zip(&inv.result.verdicts) {
        for h in &v.rules {
            rule_hits
                .entry(h.rule.clone())
                .or_default()
                .insert(o.id.clone());
        }
    }
    // First containment action that reached the exchange: the first cancel sent with the
    // leaked key after the run started, or the revoke instructions shown, whichever first.
    let first_cancel = state
        .requests()
        .iter()
        // A DELETE, or a POST to a cancel endpoint (exchanges whose writes are all POSTs).
        .filter(|r| {
            (r.method == "DELETE" || (r.method == "POST" && r.path.contains("cancel")))
                && r.access_key.as_deref() == Some(leaked)
        })
        .filter_map(|r| parse_utc(&r.at))
        .filter(|t| *t >= run_started)
        .min();
    // A revoke step the playbook skipped (its other branch ran) showed nothing.
    let revoke_shown = facts
        .ends_of("exchange.revoke_key")
        .into_iter()
        .find(|(_, d)| d.get("status").and_then(|s| s.as_str()) != Some("skipped"))
        .map(|(t, _)| t);
    let first_containment_at = [first_cancel, revoke_shown].into_iter().flatten().min();
    let revocation_observed_at = facts.revocation().revoked_at();
    // Deleted by the run's own API call (the revoke step's `mode` and `confirmed_by` are
    // `api`), else by the simulated user.
    let by_api = facts
        .ends_of("exchange.revoke_key")
        .into_iter()
        .any(|(_, d)| {
            let out = |k: &str| {
                d.get("outputs")
                    .and_then(|o| o.get(k))
                    .and_then(|v| v.as_str())
            };
            out("mode") == Some("api") && out("confirmed_by") == Some("api")
        });
    let revoked_by = match (revocation_observed_at, by_api) {
        (None, _) => String::new(),
        (Some(_), true) => {
            let call = crate::exchange::registry::get(&inv.input.exchange)
                .map(|d| d.revoke.api_call)
                .unwrap_or_default();
            format!("respond ({call})")
        }
        (Some(_), false) => "the user".to_string(),
    };
    let verified = crate::report::verify(dir).map(|r| r.ok).unwrap_or(false);
    let money = crate::report::format::Money::of(&inv.input.exchange);
    Ok(Observed {
        run_started_at: facts.started_at().or(Some(run_started)),
        first_containment_at,
        revocation_observed_at,
        revoked_by,
        exported_orders: inv.input.orders.iter().map(|o| o.id.clone()).collect(),
        flagged_orders: inv
            .input
            .orders
            .iter()
            .zip(&inv.result.verdicts)
            .filter(|(_, v)| v.flagged)
            .map(|(o, _)| o.id.clone())
            .collect(),
        rule_hits,
        flagged_withdrawals: inv
            .result
            .transfers
            .iter()
            .filter(|t| t.flagged)
            .map(|t| t.transfer_id.clone())
            .collect(),
        estimated_loss: inv.result.loss.total,
        loss_parts: score::LossParts {
            overpayment: inv.result.loss.overpayment.normalize().to_string(),
            withdrawn_value: inv.result.loss.withdrawn_value.normalize().to_string(),
            fees: inv.result.loss.fees.normalize().to_string(),
        },
        loss_unpriced: inv.result.loss.unpriced.clone(),
        loss_currency: inv.result.loss.quote_currency.clone(),
        loss_text: money.loss_line(&inv.result.loss),
        true_loss_text: money.with_currency(truth_loss, &inv.result.loss.quote_currency),
        evidence_verified: verified,
    })
}

/// `drill_report.json` and `drill_report.md` into the bundle, journaled, and the bundle
/// sealed again so `respond evidence verify` covers them: under the run's lock, and only when
/// the sealed bundle still verifies.
fn write_drill_report(dir: &Path, card: &Scorecard) -> Result<(), Failure> {
    let _lock = session::lock_run(dir)?;
    let pf = session::check_before_writing(dir, "drill")?;
    let rundir = RunDir::open(dir).map_err(|e| Failure::run(e.to_string()))?;
    let (journal, _, _) = Journal::reopen(dir).map_err(|e| Failure::run(e.to_string()))?;
    if let Some(data) = session::reopen_entry(&pf, "drill") {
        journal
            .append("reopen", data)
            .map_err(|e| Failure::run(e.to_string()))?;
    }
    let json_bytes = serde_json::to_vec_pretty(card).map_err(|e| Failure::run(e.to_string()))?;
    rundir
        .write("drill_report.json", &json_bytes)
        .map_err(|e| Failure::run(e.to_string()))?;
    rundir
        .write(
            "drill_report.md",
            super::scorecard_markdown(card).as_bytes(),
        )
        .map_err(|e| Failure::run(e.to_string()))?;
    let value: Value = serde_json::to_value(card).map_err(|e| Failure::run(e.to_string()))?;
    journal
        .record(&Event::DrillScore(events::DrillScore {
            files: vec!["drill_report.json".into(), "drill_report.md".into()],
            scorecard: value,
        }))
        .map_err(|e| Failure::run(e.to_string()))?;
    drop(journal);
    session::seal(dir)
}
