//! `report.evidence`: the evidence bundle's CSVs and reports, written from the run's data
//! rebuilt from `raw/` ([`crate::investigation`]).

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::investigation::{summary, write_reports};
use crate::steps::flag::thresholds_arg;
use crate::steps::{
    ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome,
};

const EVIDENCE_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "thresholds",
        ty: ArgType::Map,
        required: false,
        description: "overrides of the detection thresholds (as given to analysis.flag)",
    },
    ArgSpec {
        name: "excel",
        ty: ArgType::Boolean,
        required: false,
        description: "write CSVs with a UTF-8 byte-order mark for Excel",
    },
];

/// `report.evidence`: write the evidence bundle's CSVs and reports.
pub struct Evidence;

impl Evidence {
    const INFO: StepInfo = StepInfo {
        name: "report.evidence",
        effect: // Writes only local files, deterministically from the raw data: repeating it is safe.
        Effect::Read,
        description: "Write the evidence bundle: unauthorized_trades.csv, all orders/fills/transfers/balances, report.html/.md, support_ticket.md.",
        args: EVIDENCE_ARGS,
        outputs: &[
            "files",
            "flagged_count",
            "review_count",
            "loss_total",
            "overpayment",
            "withdrawn_value",
            "fees",
            "quote_currency",
            "loss_text",
            "dir",
        ],
    };
}

#[async_trait]
impl StepKind for Evidence {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let thresholds = thresholds_arg(args)?;
        let excel = crate::steps::exchange::arg_boolean(args, "excel", false)?;
        let rundir = ctx.rundir.clone();
        let (inv, files) =
            tokio::task::spawn_blocking(move || write_reports(&rundir, &thresholds, excel))
                .await
                .map_err(|e| StepError::failed(format!("report writer crashed: {e}")))?
                .map_err(StepError::failed)?;
        let s = summary(&inv);
        let mut outputs = Map::new();
        outputs.insert("files".into(), json!(files));
        for k in Self::INFO.outputs {
            if let Some(v) = s.get(*k) {
                outputs.insert((*k).into(), v.clone());
            }
        }
        outputs.insert("dir".into(), json!(ctx.rundir.path().display().to_string()));
        Ok(StepOutcome {
            summary: format!(
                "evidence written: {} files in {}",
                files.len(),
                ctx.rundir.path().display()
            ),
            outputs,
            artifacts: files,
        })
    }
    async fn check_done(
        &self,
        _ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        // Regenerating the reports from the same raw data gives the same bytes: safe to redo.
        Ok(None)
    }
    fn describe(&self, _args: &Map<String, Value>) -> String {
        "would write the evidence bundle (CSVs, report.html, report.md, support_ticket.md)".into()
    }
    fn reads_whole_bundle(&self) -> bool {
        true
    }
}
