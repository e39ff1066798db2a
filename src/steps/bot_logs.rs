//! `analysis.import_bot_logs`: copy the bot logs given on the command line into the bundle,
//! hash them before anything parses them, and parse them in the run's exchange's markets.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::analysis::BotLogFormat;
use crate::investigation::{
    exchange_named, import_run_bot_logs, read_records, BotLogRecord, JournalFacts, RejectedBotLog,
    BOT_LOGS_FILE,
};
use crate::steps::{Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome};

fn format_arg(f: crate::cli::BotLogFormatArg) -> BotLogFormat {
    match f {
        crate::cli::BotLogFormatArg::Generic => BotLogFormat::Generic,
        crate::cli::BotLogFormatArg::Freqtrade => BotLogFormat::Freqtrade,
        crate::cli::BotLogFormatArg::Hummingbot => BotLogFormat::Hummingbot,
        crate::cli::BotLogFormatArg::ThreeCommas => BotLogFormat::ThreeCommas,
    }
}

/// The `--bot-log-format` choice as the importer's format.
pub fn forced_format(args: &crate::cli::BotLogArgs) -> Option<BotLogFormat> {
    args.bot_log_format.map(format_arg)
}

/// `analysis.import_bot_logs`: copy, hash and parse the bot logs given on the command line.
pub struct ImportBotLogs;

impl ImportBotLogs {
    const INFO: StepInfo = StepInfo {
        name: "analysis.import_bot_logs",
        effect: Effect::Read,
        description: "Copy the bot's own logs (--bot-log) into the bundle unmodified, hash them, and parse them.",
        args: &[],
        outputs: &["count", "logs", "entries", "skipped_rows"],
    };
}

#[async_trait]
impl StepKind for ImportBotLogs {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }
    async fn run(
        &self,
        ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let opts = &ctx.services.bot_logs;
        if opts.bot_logs.is_empty() {
            // A resumed run has no --bot-log flags: keep what the run imported before.
            let records = read_records(ctx.rundir.path()).map_err(StepError::failed)?;
            let rejected = JournalFacts::read(ctx.rundir.path())
                .map(|f| f.rejected_bot_logs())
                .unwrap_or_default();
            return Ok(outcome(&records, &rejected));
        }
        let name = ctx.exchange()?.primary().capabilities().name.clone();
        let desc = exchange_named(&name).map_err(StepError::failed)?;
        let (records, rejected) = import_run_bot_logs(
            desc,
            &ctx.rundir,
            &opts.bot_logs,
            forced_format(opts),
            opts.skip_bad_rows,
        )
        .map_err(StepError::failed)?;
        for r in &rejected {
            ctx.printer.warn(&format!(
                "bot log {} is left out of the analysis: {}\n  the run goes on without it \
                 (containment does not wait for a bot log); fix it (or use --skip-bad-rows, \
                 --bot-log-format) and add it afterwards with: {}",
                r.given.display(),
                r.error,
                crate::output::respond_command([
                    "analyze",
                    &ctx.rundir.path().display().to_string(),
                    "--bot-log",
                    "FIXED_FILE",
                ])
            ));
        }
        Ok(outcome(&records, &rejected))
    }
    fn describe(&self, _args: &Map<String, Value>) -> String {
        "would copy the given bot logs into bot/ and parse them".into()
    }
}

fn outcome(records: &[BotLogRecord], rejected: &[RejectedBotLog]) -> StepOutcome {
    let entries: usize = records.iter().map(|r| r.entries).sum();
    let skipped: usize = records.iter().map(|r| r.skipped_rows).sum();
    let mut outputs = Map::new();
    outputs.insert("count".into(), json!(records.len()));
    outputs.insert(
        "logs".into(),
        json!(records
            .iter()
            .map(|r| r.bundle_path.clone())
            .collect::<Vec<_>>()),
    );
    outputs.insert("entries".into(), json!(entries));
    outputs.insert("skipped_rows".into(), json!(skipped));
    outputs.insert("rejected".into(), json!(rejected));
    let mut summary = if records.is_empty() && rejected.is_empty() {
        "no bot log given: the analysis will use heuristics only".to_string()
    } else {
        format!(
            "{} bot log(s), {entries} rows, {skipped} skipped",
            records.len()
        )
    };
    for r in rejected {
        summary.push_str(&format!("; REJECTED {}", r.error));
    }
    let mut artifacts: Vec<String> = records.iter().map(|r| r.bundle_path.clone()).collect();
    artifacts.extend(rejected.iter().filter_map(|r| r.bundle_copy.clone()));
    if !records.is_empty() {
        artifacts.push(BOT_LOGS_FILE.into());
    }
    StepOutcome {
        outputs,
        summary,
        artifacts,
    }
}
