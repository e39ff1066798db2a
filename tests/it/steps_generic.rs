//! The generic product step kinds (`manual`, `notify.webhook`) run through the engine,
//! against a webhook receiver on loopback.

use crate::support::steps::{entries, index_of, Harness};
use axum::{extract::State, http::StatusCode, routing::post, Json, Router};
use respond::engine::StepStatus;
use serde_json::Value;
use tokio::sync::mpsc;

async fn receiver(status: StatusCode) -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State((tx, status)): State<(mpsc::UnboundedSender<Value>, StatusCode)>,
                 Json(v): Json<Value>| async move {
                    let _ = tx.send(v);
                    status
                },
            ),
        )
        .with_state((tx, status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

fn example() -> &'static str {
    respond::playbook::embedded_named("example-notify")
        .unwrap()
        .source
}

#[tokio::test]
async fn example_playbook_notifies_a_person_and_a_webhook() {
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let h = Harness::new();
    let r = h
        .start("notify", example(), &[("webhook_url", &url)], false)
        .await
        .unwrap();
    assert!(r.ok, "{r:#?}");
    let m = r.step("tell_person").unwrap();
    assert_eq!(m.outputs["confirmed"], Value::Bool(false));
    assert!(m.summary.contains("not confirmed"), "{m:?}");
    let hook = r.step("tell_channel").unwrap();
    assert_eq!(hook.outputs["status"], Value::from(200));
    let body = rx.recv().await.unwrap();
    assert_eq!(
        body["text"],
        "Key-leak response notify started; the bot was stopped: false."
    );
    assert_eq!(body["run"]["id"], "notify");
    // The URL is a secret input: journaled by name only, and redacted wherever it appears.
    let e = entries(&h.run_dir("notify"));
    assert_eq!(
        e[0].data["inputs"]["webhook_url"],
        serde_json::json!({"secret": true})
    );
    let journal = std::fs::read_to_string(h.run_dir("notify").join("journal.jsonl")).unwrap();
    assert!(!journal.contains(&url));
    let start = &e[index_of(&e, "step_start", "tell_channel")];
    assert_eq!(start.data["args"]["url"], "[REDACTED]");
}

#[tokio::test]
async fn webhook_errors_are_recorded_failures() {
    let (url, _rx) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let h = Harness::new();
    let r = h
        .start("hook500", example(), &[("webhook_url", &url)], false)
        .await
        .unwrap();
    let s = r.step("tell_channel").unwrap();
    assert_eq!(s.status, StepStatus::Failed);
    assert_eq!(s.attempts, 1, "a notify is not retried on an HTTP error");
    assert!(s.error.as_deref().unwrap().contains("HTTP 500"), "{s:?}");

    let r = h
        .start(
            "ftp",
            example(),
            &[("webhook_url", "ftp://example.org/x")],
            false,
        )
        .await
        .unwrap();
    let s = r.step("tell_channel").unwrap();
    assert_eq!(s.status, StepStatus::Failed);
    assert!(
        s.error.as_deref().unwrap().contains("not http or https"),
        "{s:?}"
    );
}

#[tokio::test]
async fn dry_run_describes_notices_without_sending() {
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let h = Harness::new();
    let r = h
        .start("drynotify", example(), &[("webhook_url", &url)], true)
        .await
        .unwrap();
    let m = r.step("tell_person").unwrap();
    assert_eq!(m.status, StepStatus::DryRun);
    assert!(m
        .summary
        .starts_with("would ask a person to: Stop the trading bot"));
    let s = r.step("tell_channel").unwrap();
    assert_eq!(
        s.status,
        StepStatus::Skipped,
        "its text uses the manual step's output"
    );
    assert!(rx.try_recv().is_err(), "nothing was sent");
}
