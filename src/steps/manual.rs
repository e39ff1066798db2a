//! `manual`: a step a person does (delete a key on the website, stop the bot).
//!
//! It prints a title and instructions the user must see even with `-q`. On an interactive
//! terminal without `--yes` it waits, up to its `timeout`, for Enter or `y`; otherwise it goes
//! on and records that nobody confirmed, so the bundle never claims a confirmation that did
//! not happen. The effect is `notify`: a dry run shows the instructions without waiting.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome};
use crate::playbook::model::parse_duration;

/// The `manual` step kind.
pub struct Manual;

const ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "title",
        ty: ArgType::String,
        required: true,
        description: "what the person must do, in a few words",
    },
    ArgSpec {
        name: "instructions",
        ty: ArgType::String,
        required: true,
        description: "the steps, as text",
    },
    ArgSpec {
        name: "timeout",
        ty: ArgType::Duration,
        required: false,
        description: "how long to wait for a confirmation on a terminal (default 10m)",
    },
];

fn str_arg<'a>(args: &'a Map<String, Value>, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or("")
}

impl Manual {
    const INFO: StepInfo = StepInfo {
        name: "manual",
        effect: Effect::Notify,
        description:
            "Shows instructions for a person and, on a terminal, waits for their confirmation.",
        args: ARGS,
        outputs: &["confirmed"],
    };
}

#[async_trait]
impl StepKind for Manual {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let title = str_arg(args, "title");
        let instructions = str_arg(args, "instructions");
        let timeout = match args.get("timeout").and_then(Value::as_str) {
            Some(t) => parse_duration(t).map_err(|e| StepError::BadArgument {
                arg: "timeout".into(),
                message: e.to_string(),
            })?,
            None => std::time::Duration::from_secs(600),
        };
        ctx.printer
            .important(&format!("\n== ACTION NEEDED: {title} =="));
        for line in instructions.lines() {
            ctx.printer.important(&format!("   {line}"));
        }
        let mut outputs = Map::new();
        if !ctx.services.interactive || ctx.services.assume_yes {
            outputs.insert("confirmed".into(), Value::Bool(false));
            return Ok(StepOutcome {
                outputs,
                summary: format!("{title}: shown, not confirmed (no terminal or --yes)"),
                artifacts: vec![],
            });
        }
        ctx.printer
            .important("   Press Enter (or type y) when done; type n to mark it not done.");
        // A detached thread, not `spawn_blocking`: after a timeout it may stay blocked on
        // stdin, and the runtime must not wait for it when the run ends.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
        });
        let mut status = crate::steps::WaitStatus::start(
            ctx,
            format!("your confirmation (Enter or y) of: {title}"),
            timeout,
        );
        let answer = match status.during(tokio::time::timeout(timeout, rx)).await {
            Ok(Ok(Ok(line))) => Some(line.trim().to_ascii_lowercase()),
            _ => None,
        };
        let confirmed = matches!(answer.as_deref(), Some("" | "y" | "yes"));
        outputs.insert("confirmed".into(), Value::Bool(confirmed));
        let summary = match answer {
            None => format!("{title}: not confirmed (no answer within the timeout)"),
            Some(_) if confirmed => format!("{title}: confirmed by the user"),
            Some(_) => format!("{title}: the user said it is not done"),
        };
        Ok(StepOutcome {
            outputs,
            summary,
            artifacts: vec![],
        })
    }

    async fn check_done(
        &self,
        _ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        // Showing instructions again is harmless: run it again.
        Ok(None)
    }

    fn describe(&self, args: &Map<String, Value>) -> String {
        format!(
            "would ask a person to: {} — {}",
            str_arg(args, "title"),
            str_arg(args, "instructions")
        )
    }

    fn owns_wait(&self, args: &Map<String, Value>) -> Option<std::time::Duration> {
        match args.get("timeout").and_then(Value::as_str) {
            Some(t) => parse_duration(t).ok(),
            None => Some(std::time::Duration::from_secs(600)),
        }
    }
}
