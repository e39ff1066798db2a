//! `respond leak`: respond to a leaked key with the exchange's leak playbook.

use crate::cli::LeakArgs;
use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::session::{self, Connection, RunSettings};

pub async fn leak(args: LeakArgs, printer: &Printer) -> Result<Code, Failure> {
    let exchange = args.exchange.as_str().to_string();
    let mut inputs = crate::engine::parse_input_flags(&args.inputs)
        .map_err(|e| Failure::usage(e.to_string()))?;
    match (&args.from, &args.to) {
        (Some(from), Some(to)) => {
            for (name, v) in [("from", from), ("to", to)] {
                chrono::DateTime::parse_from_rfc3339(v).map_err(|e| {
                    Failure::usage(format!("--{name} {v:?} is not an RFC 3339 time: {e}"))
                        .with_hint("for example 2026-11-20T00:00:00Z")
                })?;
                inputs.insert(name.to_string(), v.clone());
            }
        }
        _ => {
            crate::playbook::model::parse_duration(&args.since)
                .map_err(|e| Failure::usage(format!("--since: {e}")))?;
            inputs.insert("since".into(), args.since.clone());
        }
    }
    if args.bot_log.excel {
        inputs.insert("excel".into(), "true".into());
    }
    // Bad input is refused before anything touches the exchange.
    let desc = crate::investigation::exchange_named(&exchange).map_err(Failure::usage)?;
    check_bot_logs(desc, &args.bot_log)?;
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
    };
    let report = session::run_new(settings, &conn, printer).await?;
    Ok(session::print_outcome(&report, printer))
}

/// Parses every bot log once before the run (without copying it anywhere), so a malformed one
/// is a usage error naming its file and line before the exchange is touched.
pub fn check_bot_logs(
    exchange: &'static crate::exchange::Descriptor,
    args: &crate::cli::BotLogArgs,
) -> Result<(), Failure> {
    let forced = crate::steps::bot_logs::forced_format(args);
    for (i, p) in args.bot_logs.iter().enumerate() {
        let bytes = std::fs::read(p)
            .map_err(|e| Failure::usage(format!("--bot-log {}: {e}", p.display())))?;
        crate::analysis::import::parse_bytes(exchange, p, p, &bytes, forced, args.skip_bad_rows, i)
            .map_err(|e| {
                Failure::usage(e.to_string()).with_hint(
                "fix the bot log, force its format with --bot-log-format, or pass --skip-bad-rows",
            )
            })?;
    }
    Ok(())
}
