//! `analysis.flag`: the diff against the bot logs, the detection rules and the loss estimate,
//! over the run's data rebuilt from `raw/` ([`crate::investigation`]).

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::analysis::{self, Thresholds};
use crate::investigation::{investigate, summary, thresholds_from};
use crate::steps::{
    ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome,
};

fn bad_arg(arg: &str, message: impl Into<String>) -> StepError {
    StepError::BadArgument {
        arg: arg.into(),
        message: message.into(),
    }
}

pub(crate) fn thresholds_arg(args: &Map<String, Value>) -> Result<Thresholds, StepError> {
    thresholds_from(args.get("thresholds")).map_err(|m| bad_arg("thresholds", m))
}

const FLAG_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "final",
        ty: ArgType::Boolean,
        required: false,
        description: "false for a first pass that only picks the orders whose fills to fetch",
    },
    ArgSpec {
        name: "thresholds",
        ty: ArgType::Map,
        required: false,
        description: "overrides of the detection thresholds (written into the bundle)",
    },
];

/// `analysis.flag`: diff against the bot logs, run the rules, estimate the loss.
pub struct Flag;

impl Flag {
    const INFO: StepInfo = StepInfo {
        name: "analysis.flag",
        effect: Effect::Read,
        description: "Diff the exported history against the bot logs, run detection rules R1-R14, estimate the loss.",
        args: FLAG_ARGS,
        outputs: &[
            "candidate_order_ids",
            "order_count",
            "fill_count",
            "flagged_count",
            "flagged_order_ids",
            "review_count",
            "flagged_withdrawal_ids",
            "had_bot_log",
            "quote_currency",
            "loss_total",
            "overpayment",
            "withdrawn_value",
            "fees",
            "loss_unpriced",
            "change_during_response",
            "loss_text",
            "notes",
        ],
    };
}

#[async_trait]
impl StepKind for Flag {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let thresholds = thresholds_arg(args)?;
        let is_final = crate::steps::exchange::arg_boolean(args, "final", true)?;
        let dir = ctx.rundir.path().to_path_buf();
        let th = thresholds.clone();
        let inv = tokio::task::spawn_blocking(move || investigate(&dir, &th))
            .await
            .map_err(|e| StepError::failed(format!("analysis crashed: {e}")))?
            .map_err(StepError::failed)?;
        let mut outputs = summary(&inv);
        let candidates = analysis::candidate_order_ids(&inv.input, &thresholds);
        outputs.insert("candidate_order_ids".into(), json!(candidates));
        let flagged = outputs["flagged_count"].as_u64().unwrap_or(0);
        let summary = if is_final {
            format!(
                "{flagged} of {} orders flagged as unauthorized; {}",
                inv.input.orders.len(),
                outputs["loss_text"].as_str().unwrap_or_default()
            )
        } else {
            format!(
                "{} of {} orders need their fills",
                candidates.len(),
                inv.input.orders.len()
            )
        };
        Ok(StepOutcome {
            outputs,
            summary,
            artifacts: Vec::new(),
        })
    }
}
