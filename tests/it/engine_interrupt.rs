//! SIGINT/SIGTERM in the engine (issue 11): the scheduler stops every running step, the step's
//! work really stops (no request after the journal says the run was interrupted), and the
//! journal ends with `run_interrupted`, its hash chain intact.
//!
//! The signal is raised in-process through `engine::interrupt::raise`, which is what the
//! signal listener calls; each test binary runs in its own process, so this global state does
//! not leak into other tests. The clock is tokio's paused clock: no wall-clock sleeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use respond::engine::interrupt::{self, Signal};
use respond::engine::EngineError;
use respond::steps::{Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome};

use crate::support::steps::{entries, Harness};

/// `test.ticker`: works forever, one tick every 10 ms (a poll, a paged export).
struct Ticker(Arc<AtomicU64>);

#[async_trait]
impl StepKind for Ticker {
    fn info(&self) -> &'static StepInfo {
        const INFO: StepInfo = StepInfo {
            name: "test.ticker",
            effect: Effect::Read,
            description: "ticks until stopped",
            args: &[],
            outputs: &[],
        };
        &INFO
    }
    async fn run(
        &self,
        _ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        loop {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_signal_stops_running_steps_and_journals_run_interrupted() {
    let mut h = Harness::new();
    let ticks = Arc::new(AtomicU64::new(0));
    h.registry.register(Arc::new(Ticker(ticks.clone())));
    let yaml = "name: t\nsteps:\n  - id: tick\n    uses: test.ticker\n    timeout: 1h\n  - id: other\n    uses: test.read\n    with: { sleep_ms: 3600000 }\n";
    let h = Arc::new(h);
    let h2 = h.clone();
    let run = tokio::spawn(async move { h2.start("run", yaml, &[], false).await });
    while ticks.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    interrupt::raise(Signal::Terminate);
    let err = run.await.unwrap().unwrap_err();
    match &err {
        EngineError::Interrupted { signal, stopped } => {
            assert_eq!(*signal, Signal::Terminate);
            assert_eq!(stopped, &["other".to_string(), "tick".to_string()]);
        }
        other => panic!("expected Interrupted, got {other:?}"),
    }
    assert!(err.to_string().contains("SIGTERM"), "{err}");
    // The step's own task stopped too: an hour later it has not ticked once more.
    let at_stop = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        at_stop,
        "the step kept working"
    );
    let entries = entries(&h.run_dir("run"));
    let last = entries.last().unwrap();
    assert_eq!(last.event, "run_interrupted");
    assert_eq!(last.data["signal"], "SIGTERM");
    assert!(
        !entries.iter().any(|e| e.event == "step_end"),
        "the stopped steps have a start and no end, like after a crash"
    );
}
