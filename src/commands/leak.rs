//! `respond leak`: respond to a leaked key with the exchange's leak playbook.
//!
//! Every input is checked before anything else happens (credentials are asked for, a bundle
//! is created, a request is sent): flags and `--input` values are typed against the
//! playbook's declarations and constraints. What is not input to containment does not stop it:
//! a bot log that cannot be imported is left out of the analysis and reported (exit 2 at the
//! end), an unwritable `--out` sends the bundle to the fallback directory.

use std::collections::BTreeMap;

use crate::cli::LeakArgs;
use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::session::{self, Connection, RunSettings};

pub async fn leak(args: LeakArgs, printer: &Printer) -> Result<Code, Failure> {
    let exchange = match args.exchange.as_slice() {
        [one] if args.accounts.is_none() => one.as_str().to_string(),
        // Several exchanges or an accounts file: one incident.
        _ => return super::incident::leak(args, printer).await,
    };
    let (inputs, by_flag) = inputs_of(&args)?;
    // Bad input is refused before anything touches the exchange.
    let (pb_path, pb_source) = session::playbook_source(args.playbook.as_deref(), &exchange)?;
    let pb = session::validate_playbook(&pb_path, &pb_source)?;
    session::check_inputs(&pb, &inputs).map_err(|mut e| {
        if let Some(flag) = by_flag.get(&e.name) {
            // Said the way the user wrote it.
            let f = Failure::usage(format!("{flag}: {}", e.message));
            return match e.hint.take() {
                Some(h) => f.with_hint(h),
                None => f,
            };
        }
        session::input_failure(e)
    })?;
    let conn = Connection::load(exchange, &args.connect, printer.interactive())?;
    if conn.primary.is_none() {
        let up = conn.exchange.to_uppercase();
        return Err(Failure::usage("the leaked key's credentials are needed to contain it").with_hint(format!(
            "set {up}_ACCESS_KEY and {up}_SECRET_KEY (and optionally the {up}_READONLY_… pair), or pass --credentials FILE"
        )));
    }
    let settings = RunSettings {
        playbook: args.playbook.clone(),
        inputs,
        bot_logs: args.bot_log.clone(),
        out: args.out.clone(),
        dry_run: args.dry_run,
        assume_yes: args.yes,
        interactive: printer.interactive(),
        rerun: None,
    };
    let report = session::run_new(settings, &conn, printer).await?;
    let code = session::print_outcome(&report, printer);
    if !report.dir.starts_with(&args.out) {
        printer.out(&format!(
            "note:      --out {} could not be written: the bundle is in the fallback directory above",
            args.out.display()
        ));
    }
    Ok(code)
}

/// Input name → value as text.
pub(crate) type Inputs = BTreeMap<String, String>;

/// The playbook inputs of the command line: `--input` values plus the flags that set inputs,
/// and for each input set by a flag, the flag's name. An input given both ways is refused:
/// neither may silently win (a flag's default never overrides an explicit `--input`, since
/// flags without a value set nothing and the playbook's default applies).
pub(crate) fn inputs_of(
    args: &LeakArgs,
) -> Result<(Inputs, BTreeMap<String, &'static str>), Failure> {
    let mut inputs = crate::engine::parse_input_flags(&args.inputs)
        .map_err(|e| session::engine_failure(e, None))?;
    let mut by_flag = BTreeMap::new();
    let excel = args.bot_log.excel.then(|| "true".to_string());
    for (name, flag, value) in [
        ("since", "--since", &args.since),
        ("from", "--from", &args.from),
        ("to", "--to", &args.to),
        ("symbols", "--symbols", &args.symbols),
        ("excel", "--excel", &excel),
    ] {
        let Some(v) = value else { continue };
        if inputs.contains_key(name) {
            return Err(Failure::usage(format!(
                "`{name}` is given twice: by {flag} and by --input {name}=…"
            ))
            .with_hint(format!(
                "give it once, as {flag} or as --input {name}=VALUE"
            )));
        }
        inputs.insert(name.to_string(), v.clone());
        by_flag.insert(name.to_string(), flag);
    }
    Ok((inputs, by_flag))
}

/// Parses every bot log once (without copying it anywhere), so a malformed one is a usage
/// error naming its file and line. `respond analyze` uses it before it touches a bundle;
/// `respond leak` does not: there a bad bot log is left out of the run, never stops it.
pub fn check_bot_logs(
    exchange: &'static crate::exchange::Descriptor,
    args: &crate::cli::BotLogArgs,
) -> Result<Vec<crate::analysis::BotLog>, Failure> {
    let forced = crate::steps::bot_logs::forced_format(args);
    let mut logs = Vec::with_capacity(args.bot_logs.len());
    for (i, p) in args.bot_logs.iter().enumerate() {
        let bytes = std::fs::read(p)
            .map_err(|e| Failure::usage(format!("--bot-log {}: {e}", p.display())))?;
        let log = crate::analysis::import::parse_bytes(
            exchange,
            p,
            p,
            &bytes,
            forced,
            args.skip_bad_rows,
            i,
        )
        .map_err(|e| {
            Failure::usage(e.to_string()).with_hint(
                "fix the bot log, force its format with --bot-log-format, or pass --skip-bad-rows",
            )
        })?;
        logs.push(log);
    }
    Ok(logs)
}
