//! `notify.webhook`: POSTs a short JSON notice (`{text, run}`) to a webhook.
//!
//! The URL usually comes from a secret input (it is a credential for the channel), so it is
//! never printed: descriptions show the host only, and every sink redacts the secret anyway.
//! A POST cannot be checked after a crash, so resume asks the user (`--replay`).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome};
use crate::playbook::model::parse_duration;

/// The `notify.webhook` step kind.
pub struct Webhook;

const ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "url",
        ty: ArgType::String,
        required: true,
        description: "http(s) URL of the webhook (pass it as a secret input)",
    },
    ArgSpec {
        name: "text",
        ty: ArgType::String,
        required: true,
        description: "the message",
    },
    ArgSpec {
        name: "timeout",
        ty: ArgType::Duration,
        required: false,
        description: "request timeout (default 10s)",
    },
];

fn parse_url(args: &Map<String, Value>) -> Result<url::Url, StepError> {
    let raw = args.get("url").and_then(Value::as_str).unwrap_or("");
    let u = url::Url::parse(raw).map_err(|e| StepError::BadArgument {
        arg: "url".into(),
        message: format!("not a URL ({e})"),
    })?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(StepError::BadArgument {
            arg: "url".into(),
            message: format!("scheme `{}` is not http or https", u.scheme()),
        });
    }
    Ok(u)
}

impl Webhook {
    const INFO: StepInfo = StepInfo {
        name: "notify.webhook",
        effect: Effect::Notify,
        description: "POSTs a JSON notice {text, run} to a webhook URL.",
        args: ARGS,
        outputs: &["status"],
    };
}

#[async_trait]
impl StepKind for Webhook {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let url = parse_url(args)?;
        let text = args.get("text").and_then(Value::as_str).unwrap_or("");
        let timeout = match args.get("timeout").and_then(Value::as_str) {
            Some(t) => parse_duration(t).map_err(|e| StepError::BadArgument {
                arg: "timeout".into(),
                message: e.to_string(),
            })?,
            None => Duration::from_secs(10),
        };
        let host = url.host_str().unwrap_or("?").to_string();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StepError::failed(format!("cannot build an HTTP client: {e}")))?;
        let resp = client
            .post(url)
            .json(&json!({"text": text, "run": ctx.run}))
            .send()
            .await
            .map_err(|e| {
                StepError::with_hint(
                    format!("webhook at {host} unreachable: {}", e.without_url()),
                    "check the URL and the network; the run goes on if the step says `on_error: continue`",
                )
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(StepError::with_hint(
                format!("webhook at {host} answered HTTP {}", status.as_u16()),
                "check that the webhook URL is still valid",
            ));
        }
        let mut outputs = Map::new();
        outputs.insert("status".into(), Value::from(status.as_u16()));
        Ok(StepOutcome {
            outputs,
            summary: format!("notified {host} (HTTP {})", status.as_u16()),
            artifacts: vec![],
        })
    }

    fn describe(&self, args: &Map<String, Value>) -> String {
        let host = parse_url(args)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "an invalid URL".into());
        format!(
            "would POST to the webhook at {host}: {:?}",
            args.get("text").and_then(Value::as_str).unwrap_or("")
        )
    }
}
