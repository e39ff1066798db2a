//! The incident side of the commands: `respond leak` with several `--exchange` flags or
//! `--accounts FILE`, and `respond evidence verify INCIDENT_DIR`. Flags become an
//! [`crate::incident::run::Common`] and a list of accounts; the work is in [`crate::incident`].

use std::path::Path;

use crate::cli::LeakArgs;
use crate::exit::{Code, Failure};
use crate::incident::{accounts, manifest, run};
use crate::output::Printer;
use crate::report::sanitize::terminal;

/// `respond leak` for one incident across several accounts.
pub async fn leak(args: LeakArgs, printer: &Printer) -> Result<Code, Failure> {
    let (inputs, _by_flag) = super::leak::inputs_of(&args)?;
    let accounts = match &args.accounts {
        Some(file) => {
            refuse_flags(
                &[
                    (args.connect.api_url.is_some(), "--api-url"),
                    (args.connect.credentials.is_some(), "--credentials"),
                    (!args.bot_log.bot_logs.is_empty(), "--bot-log"),
                ],
                "cannot be given with --accounts: each account names its own in the file",
                "set api_url, credentials and bot_logs per account in the accounts file",
            )?;
            accounts::load(file).map_err(|e| {
                Failure::usage(e.to_string())
                    .with_hint("nothing was started; fix the accounts file (format: README, One incident across several exchanges)")
            })?
        }
        None => {
            refuse_flags(
                &[
                    (args.connect.api_url.is_some(), "--api-url"),
                    (!args.bot_log.bot_logs.is_empty(), "--bot-log"),
                ],
                "with several --exchange flags would not say which exchange it belongs to",
                "use --accounts FILE with api_url and bot_logs per account",
            )?;
            let ds: Vec<_> = args
                .exchange
                .iter()
                .filter_map(|e| crate::exchange::registry::get(e.as_str()))
                .collect();
            accounts::from_flags(&ds, args.connect.credentials.as_deref())?
        }
    };
    let common = run::Common {
        playbook: args.playbook.clone(),
        inputs,
        bot_log: args.bot_log.clone(),
        out: args.out.clone(),
        dry_run: args.dry_run,
        assume_yes: args.yes,
    };
    run::run(accounts, common, printer).await
}

/// Refuses the first flag given (`true`) among `flags`: `FLAG why`, with `hint`.
fn refuse_flags(flags: &[(bool, &str)], why: &str, hint: &str) -> Result<(), Failure> {
    match flags.iter().find(|(given, _)| *given) {
        Some((_, flag)) => Err(Failure::usage(format!("{flag} {why}")).with_hint(hint)),
        None => Ok(()),
    }
}

/// `respond evidence verify INCIDENT_DIR`: every bundle, and the incident's seal.
pub fn verify(dir: &Path, printer: &Printer) -> Result<Code, Failure> {
    let rep = manifest::verify(dir);
    for l in &rep.problems {
        printer.out(l);
    }
    for (label, b, ok) in &rep.bundles {
        printer.out(&format!(
            "bundle    {} {}: {}",
            terminal(label),
            terminal(b),
            if *ok { "verifies" } else { "DOES NOT VERIFY" }
        ));
    }
    let shown = terminal(&dir.display().to_string());
    if rep.ok {
        printer.out(&format!(
            "OK: incident {shown}: {} bundles verify, {} agrees with them and with the incident's files",
            rep.bundles.len(),
            manifest::FILE
        ));
        Ok(Code::Ok)
    } else {
        printer.out(&format!(
            "MISMATCH: incident {shown}: {} problem(s)",
            rep.problems.len()
        ));
        Ok(Code::EvidenceMismatch)
    }
}

/// `respond resume INCIDENT_DIR`: every account's bundle that is not complete is resumed, all
/// at once, with the credentials read again from the sources `incident.json` names; complete
/// ones are left as they are. Then the incident report is written again and the incident
/// sealed again.
pub async fn resume(args: crate::cli::ResumeArgs, printer: &Printer) -> Result<Code, Failure> {
    use crate::incident::record::IncidentRecord;
    use crate::session;
    for (given, flag) in [
        (!args.replay.is_empty(), "--replay"),
        (args.playbook.is_some(), "--playbook"),
        (args.accept_changed_playbook, "--accept-changed-playbook"),
        (args.connect.api_url.is_some(), "--api-url"),
        (args.connect.credentials.is_some(), "--credentials"),
    ] {
        if given {
            return Err(Failure::usage(format!(
                "{flag} applies to one bundle: give `respond resume` the account's bundle (INCIDENT_DIR/LABEL/BUNDLE) instead of the incident folder"
            )));
        }
    }
    let dir = args.run_dir.clone();
    let mut record = IncidentRecord::read(&dir)?;
    unchanged_since_sealed(&dir, "resume")?;
    let secret_inputs = crate::engine::parse_input_flags(&args.inputs)
        .map_err(|e| Failure::usage(e.to_string()))?;
    // Bundles that appeared after the record was last written (a run cut off early).
    for a in &mut record.accounts {
        if a.bundle.is_none() {
            a.bundle = run::find_bundle(&dir, &a.label);
        }
    }
    record.write(&dir)?;
    let mut tasks = Vec::new();
    let mut worst = Code::Ok;
    for a in &record.accounts {
        let p = printer.labelled(&a.label);
        let Some(rel) = &a.bundle else {
            p.warn(NO_BUNDLE);
            worst = run::worse(worst, Code::RunFailed);
            continue;
        };
        let b = dir.join(rel);
        // A bundle that is busy or does not match its seal is named under its label; the other
        // accounts go on.
        match session::resume_precheck(&b, false, None, &p) {
            Ok(Some(done)) => {
                worst = run::worse(worst, session::print_outcome(&done, &p));
                continue;
            }
            Ok(None) => {}
            Err(f) => {
                p.error(&f.to_string());
                worst = run::worse(worst, f.code);
                continue;
            }
        }
        // An account whose credentials are gone says so under its label; the others go on.
        let acc = match accounts::from_record(&a.label, &a.exchange, &a.source) {
            Ok(acc) => acc,
            Err(f) => {
                p.error(&f.to_string());
                worst = run::worse(worst, f.code);
                continue;
            }
        };
        let opts = crate::engine::ResumeOptions {
            secret_inputs: secret_inputs.clone(),
            ..Default::default()
        };
        let yes = args.yes;
        let label = a.label.clone();
        tasks.push((
            label,
            tokio::spawn(async move {
                match session::run_resume(&b, &acc.conn, None, opts, (false, yes), &p).await {
                    Ok(r) => session::print_outcome(&r, &p),
                    Err(f) => {
                        p.error(&f.to_string());
                        f.code
                    }
                }
            }),
        ));
    }
    for (label, t) in tasks {
        let code = t.await.unwrap_or_else(|e| {
            printer
                .labelled(&label)
                .error(&format!("this account's task ended abnormally: {e}"));
            Code::RunFailed
        });
        worst = run::worse(worst, code);
    }
    run::finish(&dir, printer)?;
    Ok(worst)
}

/// `respond analyze INCIDENT_DIR`: every bundle analyzed again in place, then the incident
/// report written again and the incident sealed again.
pub async fn analyze(args: crate::cli::AnalyzeArgs, printer: &Printer) -> Result<Code, Failure> {
    use crate::incident::record::IncidentRecord;
    if args.out.is_some() || !args.bot_log.bot_logs.is_empty() {
        return Err(Failure::usage(
            "--out and --bot-log apply to one bundle: give `respond analyze` the account's bundle (INCIDENT_DIR/LABEL/BUNDLE), then `respond analyze INCIDENT_DIR` to bring the incident report up to date",
        ));
    }
    let dir = args.run_dir.clone();
    let record = IncidentRecord::read(&dir)?;
    unchanged_since_sealed(&dir, "analyze")?;
    let mut worst = Code::Ok;
    for (a, b) in record.bundles(&dir) {
        let p = printer.labelled(&a.label);
        let one = crate::cli::AnalyzeArgs {
            run_dir: b,
            bot_log: args.bot_log.clone(),
            out: None,
        };
        let code = match Box::pin(super::analyze::analyze(one, &p)).await {
            Ok(c) => c,
            Err(f) => {
                p.error(&f.to_string());
                f.code
            }
        };
        worst = run::worse(worst, code);
    }
    for a in record.accounts.iter().filter(|a| a.bundle.is_none()) {
        printer.labelled(&a.label).warn(NO_BUNDLE);
        worst = run::worse(worst, Code::RunFailed);
    }
    run::finish(&dir, printer)?;
    Ok(worst)
}

/// A sealed incident whose own files no longer match its seal is refused (exit 3) before
/// anything is written: its report would otherwise be written and sealed over the change.
fn unchanged_since_sealed(dir: &Path, command: &str) -> Result<(), Failure> {
    let problems = manifest::own_problems(dir);
    if problems.is_empty() {
        return Ok(());
    }
    let shown = crate::report::sanitize::terminal(&dir.display().to_string());
    Err(Failure::new(
        Code::EvidenceMismatch,
        format!(
            "incident {shown} does not match its seal; `respond {command}` wrote nothing:\n  {}",
            problems.join("\n  ")
        ),
    )
    .with_hint(format!(
        "`respond evidence verify {shown}` lists the same; restore the incident's files from a copy, or analyze one bundle with `respond analyze BUNDLE --out DIR`"
    )))
}

/// What `resume` and `analyze INCIDENT_DIR` say of an account whose run never made a bundle.
const NO_BUNDLE: &str = "this account's run never started (no bundle): start it with `respond leak` for this account alone";

/// `respond drill --exchange A --exchange B …`: the coordinated drill.
pub async fn drill(args: crate::cli::DrillArgs, printer: &Printer) -> Result<Code, Failure> {
    use crate::incident::drill::{self, Plan};
    let mut names: Vec<&str> = args.exchange.iter().map(|e| e.as_str()).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    if names.len() != n {
        return Err(Failure::usage(
            "each --exchange once in a coordinated drill",
        ));
    }
    super::drill::check_thresholds(&args)?;
    let dir = args.out.join(format!(
        "{}-incident-drill-{}",
        crate::time::now().format("%Y%m%dT%H%M%SZ"),
        names.join("-")
    ));
    crate::fsutil::create_private_dir(&args.out)
        .and_then(|_| crate::fsutil::create_new_private_dir(&dir))
        .map_err(|e| Failure::run(format!("cannot create {}: {e}", dir.display())))?;
    let plans = args
        .exchange
        .iter()
        .map(|e| Plan {
            exchange: e.as_str().to_string(),
            opts: crate::drill::run::DrillOptions {
                exchange: e.as_str().to_string(),
                scenario: args.scenario.clone(),
                playbook: args.playbook.clone(),
                out: dir.join(e.as_str()),
                seed: args.seed,
                reaction_secs: args.reaction,
                min_recall: args.min_recall,
                min_precision: args.min_precision,
                with_bot_log: !args.no_bot_log,
                excel: args.excel,
            },
        })
        .collect();
    let (whole, code) = drill::run(&dir, plans, printer).await?;
    if printer.json() {
        printer.summary(&serde_json::json!({
            "ok": code == Code::Ok,
            "dir": dir.display().to_string(),
            "score": whole,
        }));
    } else {
        printer.out(&format!("\n{}", drill::markdown(&whole)));
        printer.out(&format!(
            "drill:     {}/{}",
            dir.display(),
            drill::REPORT_MD
        ));
    }
    Ok(code)
}
