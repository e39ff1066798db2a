//! Drills against the in-process mock, as `respond drill` runs them (the library's
//! `drill::run::run`: the mock on a loopback port, the live attacker, the simulated user, the
//! leak playbook, the score), built with [`Drill`] and run together on one runtime by
//! [`run_all`]; [`bundle`] gives a passing drill's evidence bundle for the tests of what comes
//! after a run (`analyze`, `resume`, `evidence verify`).

use std::path::{Path, PathBuf};

use respond::drill::run::{run, DrillOptions, DrillOutcome};
use respond::exit::Failure;
use respond::output::{Printer, Verbosity};

/// One drill's options: `pump-and-dump`-style defaults (bot log given, thresholds 0.95).
pub struct Drill(DrillOptions);

impl Drill {
    /// A drill of `scenario` writing its bundle under `out` (created; one directory per drill:
    /// two drills of one scenario starting in the same second would want the same bundle
    /// name).
    pub fn new(scenario: &str, out: &Path) -> Drill {
        std::fs::create_dir_all(out).unwrap();
        Drill(DrillOptions {
            exchange: "upbit".into(),
            scenario: scenario.into(),
            playbook: None,
            out: out.to_path_buf(),
            seed: None,
            reaction_secs: 2.0,
            min_recall: 0.95,
            min_precision: 0.95,
            with_bot_log: true,
            excel: false,
        })
    }

    /// The exchange whose mock the drill runs against (`upbit` unless told).
    pub fn exchange(mut self, name: &str) -> Self {
        self.0.exchange = name.into();
        self
    }

    /// Seconds the simulated user takes to delete the key.
    pub fn reaction(mut self, secs: f64) -> Self {
        self.0.reaction_secs = secs;
        self
    }

    /// Recall (and, with a bot log, precision) the score must reach.
    pub fn min(mut self, m: f64) -> Self {
        self.0.min_recall = m;
        self.0.min_precision = if self.0.with_bot_log { m } else { 0.0 };
        self
    }

    /// No bot log: precision is not judged.
    pub fn without_bot_log(mut self) -> Self {
        self.0.with_bot_log = false;
        self.0.min_precision = 0.0;
        self
    }

    /// Runs this playbook instead of the exchange's default one.
    pub fn playbook(mut self, path: &Path) -> Self {
        self.0.playbook = Some(path.to_path_buf());
        self
    }

    pub fn options(&self) -> &DrillOptions {
        &self.0
    }
}

/// The runtime a drill runs on: one thread whose clock is paused, so that the user's
/// reaction, the live attacker's pauses, the deletion polls and the rate limiters' pacing take
/// no real time. Every timestamp of the run follows that clock too ([`respond::time::now`]).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Runs the drills at once, each on its own thread and paused runtime (a paused clock needs a
/// single-threaded runtime; threads keep both cores busy); their outcomes in input order.
pub fn run_all(list: &[Drill]) -> Vec<Result<DrillOutcome, Failure>> {
    std::thread::scope(|s| {
        let runs: Vec<_> = list
            .iter()
            .map(|d| {
                s.spawn(move || {
                    runtime().block_on(async {
                        respond::time::follow_tokio_clock();
                        run(&d.0, &Printer::plain(Verbosity::Quiet)).await
                    })
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The bundle of a `pump-and-dump` drill (1 s reaction, bot log) under `out`: a run that
/// passed its score, with every step ok and a bundle that verifies (what `respond drill`
/// exits 0 on).
pub fn bundle(out: &Path) -> PathBuf {
    bundle_of(Drill::new("pump-and-dump", out).reaction(1.0))
}

/// The bundle of `drill`, which must pass as [`bundle`]'s does.
pub fn bundle_of(drill: Drill) -> PathBuf {
    let d = run_all(std::slice::from_ref(&drill))
        .pop()
        .unwrap()
        .unwrap_or_else(|e| panic!("drill failed to run: {e:?}"));
    assert!(
        d.scorecard.passed && d.report.ok && respond::report::verify(&d.dir).unwrap().ok,
        "drill failed: passed {}, run ok {}: {:?}",
        d.scorecard.passed,
        d.report.ok,
        d.scorecard.failures
    );
    d.dir
}

/// The built-in scenarios a per-exchange "every scenario" drill test runs: all of them with
/// `RESPOND_ALL_SCENARIOS=1` (set by `.ci/run`), else six that cover each kind of attack (the
/// 3Commas pump, a contra-trade, a withdrawal, noise, an empty account, a copycat bot), with a
/// notice. Upbit's drill test and the time-of-day analysis always run every scenario.
pub fn scenarios(exchange: &str) -> Vec<&'static str> {
    let all = respond::mock::scenario::builtin_names();
    if std::env::var("RESPOND_ALL_SCENARIOS").is_ok_and(|v| v == "1") {
        return all;
    }
    const DEFAULT: [&str; 6] = [
        "pump-and-dump",
        "contra",
        "withdrawal",
        "noisy",
        "blank",
        "copycat",
    ];
    let picked: Vec<&'static str> = all.into_iter().filter(|n| DEFAULT.contains(n)).collect();
    assert_eq!(
        picked.len(),
        DEFAULT.len(),
        "the default scenarios are built in"
    );
    println!(
        "notice: {exchange}: {} of the built-in scenarios ({}); RESPOND_ALL_SCENARIOS=1 runs every one, as CI does",
        picked.len(),
        picked.join(", ")
    );
    picked
}
