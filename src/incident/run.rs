//! Running one incident: every account contained at once, one bundle each, in one folder.
//!
//! Everything is checked first (the playbook and inputs for each account's exchange, each
//! connection's URL policy); then the incident folder is created, the revocation guidance for
//! every account is printed (riskiest first), and one tokio task per account runs the leak
//! playbook exactly as a single `respond leak` does, into `INCIDENT/<label>/<bundle>/`. The
//! tasks share nothing but the printer: each account is under its own exchange's client, rate
//! limiter and retries, so one account's slow or failing exchange never holds back another's
//! cancels. When all have ended the incident report is written and the incident sealed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cli::BotLogArgs;
use crate::engine::RunReport;
use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::session::{self, RunSettings};

use super::accounts::Account;
use super::record::IncidentRecord;

/// What every account's run shares.
pub struct Common {
    pub playbook: Option<PathBuf>,
    pub inputs: BTreeMap<String, String>,
    /// Bot-log options (format, skip bad rows, excel); each account brings its own logs.
    pub bot_log: BotLogArgs,
    pub out: PathBuf,
    pub dry_run: bool,
    pub assume_yes: bool,
}

/// An account's state in the progress view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Containing,
    Done,
    Failed,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Containing => "containing…",
            State::Done => "done",
            State::Failed => "FAILED",
        }
    }
}

/// Checks everything that can be checked before the incident starts: each account's playbook
/// (its exchange's default or `--playbook`), the inputs against it, the connection's URL.
pub fn preflight(accounts: &[Account], common: &Common) -> Result<(), Failure> {
    for a in accounts {
        let (path, source) = session::playbook_source(common.playbook.as_deref(), a.exchange.name)?;
        let pb = session::validate_playbook(&path, &source)?;
        session::check_inputs(&pb, &common.inputs).map_err(session::input_failure)?;
        a.conn
            .check()
            .map_err(|f| Failure::usage(format!("account {}: {}", a.label, f.message)))?;
    }
    Ok(())
}

/// The incident folder's name: `<UTC yyyymmddThhmmssZ>-incident-<exchanges>`.
fn incident_name(accounts: &[Account]) -> String {
    let mut ex: Vec<&str> = accounts.iter().map(|a| a.exchange.name).collect();
    ex.sort();
    ex.dedup();
    format!(
        "{}-incident-{}",
        crate::time::now().format("%Y%m%dT%H%M%SZ"),
        ex.join("-")
    )
}

/// Runs the incident; the exit code is the worst of the accounts' (see README).
pub async fn run(
    accounts: Vec<Account>,
    common: Common,
    printer: &Printer,
) -> Result<Code, Failure> {
    preflight(&accounts, &common)?;
    let dir = common.out.join(incident_name(&accounts));
    crate::fsutil::create_private_dir(&common.out)
        .and_then(|_| crate::fsutil::create_new_private_dir(&dir))
        .map_err(|e| {
            Failure::run(format!(
                "cannot create the incident folder {}: {e}",
                dir.display()
            ))
            .with_hint("pass --out DIR on a writable disk")
        })?;
    let mut record = IncidentRecord::new(&accounts, common.dry_run);
    record.write(&dir)?;
    print_guidance(&accounts, printer);
    let states: Arc<Mutex<BTreeMap<String, State>>> = Arc::new(Mutex::new(
        accounts
            .iter()
            .map(|a| (a.label.clone(), State::Containing))
            .collect(),
    ));
    printer.out(&format!(
        "incident:  {} ({} accounts, contained at once)",
        dir.display(),
        accounts.len()
    ));
    print_states(&states, printer);
    let mut tasks = Vec::new();
    for a in accounts {
        let settings = RunSettings {
            playbook: common.playbook.clone(),
            inputs: common.inputs.clone(),
            bot_logs: BotLogArgs {
                bot_logs: a.bot_logs.clone(),
                ..common.bot_log.clone()
            },
            out: dir.join(&a.label),
            dry_run: common.dry_run,
            assume_yes: common.assume_yes,
            interactive: false,
            rerun: None,
        };
        let p = printer.labelled(&a.label);
        let states = states.clone();
        let whole = printer.clone();
        let label = a.label.clone();
        tasks.push((
            label,
            tokio::spawn(async move {
                let result = session::run_new(settings, &a.conn, &p).await;
                let (state, code) = match &result {
                    Ok(r) => {
                        let code = session::print_outcome(r, &p);
                        (if r.ok { State::Done } else { State::Failed }, code)
                    }
                    Err(f) => {
                        p.error(&f.to_string());
                        (State::Failed, f.code)
                    }
                };
                states
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(a.label.clone(), state);
                print_states(&states, &whole);
                (a.label, result.ok(), code)
            }),
        ));
    }
    let mut worst = Code::Ok;
    let mut reports: BTreeMap<String, RunReport> = BTreeMap::new();
    // Every account is awaited, and the incident recorded and sealed, whatever one of them did.
    for (label, t) in tasks {
        let (label, report, code) = match t.await {
            Ok(done) => done,
            Err(e) => {
                printer
                    .labelled(&label)
                    .error(&format!("this account's task ended abnormally: {e}"));
                (label, None, Code::RunFailed)
            }
        };
        worst = worse(worst, code);
        if let Some(r) = report {
            reports.insert(label, r);
        }
    }
    for acc in &mut record.accounts {
        let report = reports.get(&acc.label);
        acc.bundle = report
            .and_then(|r| inside(&dir, &r.dir))
            .or_else(|| find_bundle(&dir, &acc.label));
        if let Some(r) = report.filter(|r| inside(&dir, &r.dir).is_none()) {
            // `INCIDENT/<label>/` could not be written and the bundle went to the fallback
            // directory (containment never waits for a local problem): the incident names no
            // bundle for the account, and says where it is.
            printer.labelled(&acc.label).warn(&format!(
                "this account's bundle was written outside the incident folder, at {} ({} was not writable): it verifies on its own; move it into {} and run `respond resume {}` to bring it into the incident",
                r.dir.display(),
                dir.join(&acc.label).display(),
                dir.join(&acc.label).display(),
                dir.display()
            ));
            worst = worse(worst, Code::RunFailed);
        }
    }
    record.write(&dir)?;
    finish(&dir, printer)?;
    if matches!(worst, Code::Interrupted | Code::Terminated) || worst == Code::RunFailed {
        // Every account's own resume line was printed with its label; one line does them all.
        printer.out(&format!(
            "resume:    {}",
            crate::session::resume_command(&dir)
        ));
    }
    Ok(worst)
}

/// Writes the incident report and seals the incident; prints where everything is.
pub fn finish(dir: &Path, printer: &Printer) -> Result<(), Failure> {
    let record = IncidentRecord::read(dir)?;
    let summary = super::report::write(dir, &record)
        .map_err(|e| Failure::run(format!("cannot write the incident report: {e}")))?;
    super::manifest::seal(dir, &record)
        .map_err(|e| Failure::run(format!("cannot seal the incident: {e}")))?;
    let shown = dir.display().to_string();
    printer.out("");
    for line in summary {
        printer.out(&line);
    }
    printer.out(&format!("incident:  {shown}"));
    printer.out(&format!("report:    {shown}/incident.html"));
    printer.out(&format!(
        "verify:    {}",
        crate::output::respond_command(["evidence", "verify", &shown])
    ));
    Ok(())
}

/// The more serious of two exit codes: an interruption, then a failed run, then bad input,
/// then success.
pub fn worse(a: Code, b: Code) -> Code {
    let rank = |c: Code| match c {
        Code::Interrupted | Code::Terminated => 5,
        Code::EvidenceMismatch => 4,
        Code::RunFailed => 3,
        Code::Usage => 2,
        Code::DrillBelowThreshold => 1,
        Code::Ok => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// `p` relative to the incident folder `base`, when it lies inside it.
fn inside(base: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(base).ok()?.display().to_string();
    crate::fsutil::safe_join(base, &rel).ok().map(|_| rel)
}

/// The bundle under `INCIDENT/<label>/` (a run that failed before it reported back).
pub fn find_bundle(dir: &Path, label: &str) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir.join(label))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("journal.jsonl").is_file())
        .map(|e| format!("{label}/{}", e.file_name().to_string_lossy()))
        .collect();
    found.sort();
    found.pop()
}

/// The revocation guidance for every account, riskiest first: what the user does in each
/// exchange's web console while the tool contains.
fn print_guidance(accounts: &[Account], printer: &Printer) {
    let mut order: Vec<&Account> = accounts.iter().collect();
    order.sort_by_key(|a| a.risk());
    printer.important(&format!(
        "ACTION NEEDED NOW: delete these {} leaked API keys in the exchanges' web consoles, in this order (withdrawal scope first, then trading); respond contains every account meanwhile:",
        order.len()
    ));
    for (i, a) in order.iter().enumerate() {
        let masked = a.conn.key_masked();
        let (en, local) = a.exchange.revoke.instructions(&masked);
        let unknown = "unknown";
        printer.important(&format!(
            "  {}. [{}] {} key {masked} ({})",
            i + 1,
            a.label,
            a.exchange.display,
            a.risk_text()
        ));
        printer.important(&format!("     {}", en.replace("{expire_at}", unknown)));
        if !local.is_empty() && local != en {
            printer.important(&format!("     {}", local.replace("{expire_at}", unknown)));
        }
    }
}

/// One line per account with its state.
fn print_states(states: &Mutex<BTreeMap<String, State>>, printer: &Printer) {
    let s = states.lock().unwrap_or_else(|e| e.into_inner());
    let line = s
        .iter()
        .map(|(l, st)| format!("{l}: {}", st.word()))
        .collect::<Vec<_>>()
        .join(" | ");
    printer.status(&format!("accounts:  {line}"));
}
