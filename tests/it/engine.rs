//! The engine: DAG order and concurrency, retries, timeouts, on_error, dry run, template
//! injection, resume after a crash at every journal entry, changed-playbook refusal, secrets.

use std::path::Path;

use crate::support::child::run_test_in_child;
use crate::support::steps::{entries, index_of, Harness};
use respond::engine::{self, journal, EngineError, ResumeOptions, StepStatus};
use serde_json::json;

async fn resume(
    h: &Harness,
    dir: &Path,
    source: Option<&str>,
    opts: ResumeOptions,
) -> Result<engine::RunReport, EngineError> {
    let source = source.map(|s| (Path::new("changed.yaml"), s.to_string()));
    engine::resume(
        dir,
        source,
        &h.registry,
        Harness::services(),
        &Harness::printer(),
        opts,
    )
    .await
}

fn replay(step: &str) -> ResumeOptions {
    ResumeOptions {
        replay: vec![step.to_string()],
        ..Default::default()
    }
}

fn status(r: &engine::RunReport, id: &str) -> StepStatus {
    r.step(id).unwrap_or_else(|| panic!("no step {id}")).status
}

#[tokio::test]
async fn dag_order_and_independent_steps_overlap() {
    let h = Harness::new();
    // `x` and `y` both wait on a barrier of two: it only opens if they run at the same time
    // (the timeout turns a serialized run into a failure instead of a hang).
    let yaml = "name: dag
steps:
  - id: c
    uses: test.write
    needs: [x, y]
    with:
      tag: \"{{ steps.r.outputs.value }}\"
  - id: x
    uses: test.barrier
    timeout: 20s
  - id: y
    uses: test.barrier
    timeout: 20s
  - id: r
    uses: test.read
    with:
      value: 7
";
    let r = h.start("dag", yaml, &[], false).await.unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(status(&r, "x"), StepStatus::Ok);
    assert_eq!(status(&r, "y"), StepStatus::Ok);
    // Report in playbook order; c ran after everything it waits for.
    let ids: Vec<&str> = r.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["c", "x", "y", "r"]);
    let e = entries(&h.run_dir("dag"));
    let c_start = index_of(&e, "step_start", "c");
    for dep in ["x", "y", "r"] {
        assert!(index_of(&e, "step_end", dep) < c_start, "{dep}");
    }
    assert_eq!(
        r.step("c").unwrap().outputs["written"],
        json!(7),
        "typed value kept"
    );
    assert_eq!(e.first().unwrap().event, "run_start");
    assert_eq!(e.last().unwrap().event, "run_end");
    assert_eq!(e[0].data["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        e[0].data["playbook"]["sha256"],
        respond::fsutil::sha256_hex(yaml.as_bytes())
    );
    let copy = std::fs::read_to_string(h.run_dir("dag").join("playbook.yaml")).unwrap();
    assert_eq!(copy, yaml);
    assert_eq!(r.run_id, "dag");
}

#[tokio::test(start_paused = true)]
async fn retries_only_retryable_and_timeouts() {
    let h = Harness::new();
    let yaml = "name: retry
defaults:
  retry: {attempts: 3, backoff: 10ms}
steps:
  - id: flaky
    uses: test.read
    on_error: continue
    with: {fail_times: 2}
  - id: hopeless
    uses: test.read
    on_error: continue
    with: {fail_times: 10}
  - id: write_fails
    uses: test.write
    on_error: continue
    with: {fail: refused}
  - id: slow
    uses: test.read
    timeout: 50ms
    retry: {attempts: 2, backoff: 1ms}
    on_error: continue
    with: {sleep_ms: 60000}
";
    let r = h.start("retry", yaml, &[], false).await.unwrap();
    let flaky = r.step("flaky").unwrap();
    assert_eq!((flaky.status, flaky.attempts), (StepStatus::Ok, 3));
    assert_eq!(flaky.outputs["attempt"], json!(3));
    let hopeless = r.step("hopeless").unwrap();
    assert_eq!(
        (hopeless.status, hopeless.attempts),
        (StepStatus::Failed, 3)
    );
    assert!(hopeless
        .error
        .as_deref()
        .unwrap()
        .contains("flaky read, attempt 3"));
    // A write is not retried on an ordinary failure.
    let w = r.step("write_fails").unwrap();
    assert_eq!((w.status, w.attempts), (StepStatus::Failed, 1));
    let slow = r.step("slow").unwrap();
    assert_eq!((slow.status, slow.attempts), (StepStatus::Failed, 2));
    assert!(
        slow.error
            .as_deref()
            .unwrap()
            .contains("timed out after 50ms"),
        "{slow:?}"
    );
    assert!(!r.ok);
    let e = entries(&h.run_dir("retry"));
    let attempts: Vec<_> = e
        .iter()
        .filter(|x| x.event == "step_attempt" && x.data["step"] == "flaky")
        .collect();
    assert_eq!(attempts.len(), 3);
    let b1 = attempts[0].data["backoff_ms"].as_u64().unwrap();
    let b2 = attempts[1].data["backoff_ms"].as_u64().unwrap();
    assert!(
        (10..13).contains(&b1) && (20..25).contains(&b2),
        "{b1} {b2}"
    );
    assert_eq!(attempts[2].data["ok"], true);
}

/// Issue 11, point 5: a kind that owns its waiting is not retried, so its wait is never
/// multiplied by the retry policy, and the step's `timeout:` does not cut it off before its
/// own limit (plus the grace for its last request).
#[tokio::test(start_paused = true)]
async fn a_step_that_owns_its_wait_is_not_retried_nor_cut_short() {
    let h = Harness::new();
    let yaml = "name: waits
defaults:
  timeout: 1m
  retry: {attempts: 3, backoff: 1s}
steps:
  - id: finishes
    uses: test.wait
    on_error: continue
    with: {wait_ms: 300000, sleep_ms: 240000}
  - id: overruns
    uses: test.wait
    on_error: continue
    with: {wait_ms: 120000, sleep_ms: 3600000}
";
    let started = tokio::time::Instant::now();
    let r = h.start("waits", yaml, &[], false).await.unwrap();
    let took = started.elapsed();
    // 4 minutes of waiting inside a 5-minute wait: the 1-minute step timeout does not apply.
    let ok = r.step("finishes").unwrap();
    assert_eq!((ok.status, ok.attempts), (StepStatus::Ok, 1), "{ok:?}");
    // A wait that overruns its own 2 minutes is ended once, after 2 minutes and the grace.
    let cut = r.step("overruns").unwrap();
    assert_eq!(
        (cut.status, cut.attempts),
        (StepStatus::Failed, 1),
        "{cut:?}"
    );
    assert!(
        cut.error
            .as_deref()
            .unwrap()
            .contains("timed out after 150s"),
        "{cut:?}"
    );
    assert_eq!(h.world.attempts_of("overruns"), 1);
    assert!(
        took >= std::time::Duration::from_secs(240) && took < std::time::Duration::from_secs(250),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn on_error_abort_and_continue() {
    let h = Harness::new();
    let yaml = "name: abort
steps:
  - id: bad
    uses: test.write
    with: {fail: broken}
  - id: running
    uses: test.read
    with: {sleep_ms: 50}
  - id: later
    uses: test.write
    needs: [running]
";
    let r = h.start("abort", yaml, &[], false).await.unwrap();
    assert_eq!(status(&r, "bad"), StepStatus::Failed);
    assert_eq!(
        status(&r, "running"),
        StepStatus::Ok,
        "running steps finish"
    );
    let later = r.step("later").unwrap();
    assert_eq!(later.status, StepStatus::NotRun);
    assert!(later.summary.contains("after `bad` failed"), "{later:?}");
    assert_eq!(h.world.writes("later"), 0);
    assert!(!r.ok);

    let yaml = "name: cont
steps:
  - id: bad
    uses: test.write
    on_error: continue
    with: {fail: broken}
  - id: dependent
    uses: test.write
    needs: [bad]
  - id: independent
    uses: test.write
";
    let r = h.start("cont", yaml, &[], false).await.unwrap();
    assert_eq!(status(&r, "bad"), StepStatus::Failed);
    // `on_error: continue` declares the failure tolerable: a step that needs it still runs,
    // after it.
    assert_eq!(status(&r, "dependent"), StepStatus::Ok);
    assert_eq!(status(&r, "independent"), StepStatus::Ok);
    assert!(!r.ok);
    let bad = r.step("bad").unwrap();
    assert_eq!(bad.error.as_deref(), Some("broken"));
}

#[tokio::test]
async fn conditions_skip_and_are_recorded() {
    let h = Harness::new();
    let yaml = "name: cond
inputs:
  go: {type: boolean, default: false}
steps:
  - id: api
    uses: test.write
    if: \"{{ exchange.revoke_key_by_api }}\"
  - id: by_hand
    uses: test.write
    if: \"{{#unless exchange.revoke_key_by_api}}yes{{/unless}}\"
  - id: gated
    uses: test.write
    if: \"{{ inputs.go }}\"
  - id: uses_skipped
    uses: test.write
    with: {tag: \"{{ steps.api.outputs.written }}\"}
";
    let r = h.start("cond", yaml, &[], false).await.unwrap();
    assert_eq!(status(&r, "api"), StepStatus::Skipped);
    assert_eq!(status(&r, "by_hand"), StepStatus::Ok);
    assert_eq!(status(&r, "gated"), StepStatus::Skipped);
    let u = r.step("uses_skipped").unwrap();
    assert_eq!(u.status, StepStatus::Skipped);
    assert!(
        u.summary
            .contains("uses outputs of `api`, which was skipped"),
        "{u:?}"
    );
    assert!(r.ok);
    let e = entries(&h.run_dir("cond"));
    let end = &e[index_of(&e, "step_end", "api")];
    assert_eq!(end.data["status"], "skipped");

    let r = h
        .start("cond2", yaml, &[("go", "yes")], false)
        .await
        .unwrap();
    assert_eq!(status(&r, "gated"), StepStatus::Ok);
    let err = h
        .start("cond3", yaml, &[("goo", "1")], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("did you mean `go`"), "{err}");
}

#[tokio::test]
async fn data_is_never_evaluated_as_a_template() {
    let h = Harness::new();
    let yaml = "name: inject
inputs:
  evil: {type: string}
steps:
  - id: src
    uses: test.read
    with: {value: \"{{ inputs.evil }}\"}
  - id: dst
    uses: test.write
    with:
      tag: \"got {{ steps.src.outputs.value }} in {{ run.id }}\"
";
    let evil = "{{run.id}} {{#each inputs}}{{@key}}{{/each}} <&>";
    let r = h
        .start("inject", yaml, &[("evil", evil)], false)
        .await
        .unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(r.step("src").unwrap().outputs["value"], json!(evil));
    assert_eq!(
        r.step("dst").unwrap().outputs["written"],
        json!(format!("got {evil} in inject"))
    );
}

#[tokio::test]
async fn step_panic_is_a_recorded_failure() {
    let h = Harness::new();
    let yaml = "name: panic
steps:
  - id: boom
    uses: test.panic
    on_error: continue
    with: {message: kaboom}
  - id: after
    uses: test.write
";
    let r = h.start("panic", yaml, &[], false).await.unwrap();
    let b = r.step("boom").unwrap();
    assert_eq!(b.status, StepStatus::Failed);
    assert!(
        b.error.as_deref().unwrap().contains("crashed: kaboom"),
        "{b:?}"
    );
    assert_eq!(status(&r, "after"), StepStatus::Ok);
    let e = entries(&h.run_dir("panic"));
    assert_eq!(e[index_of(&e, "step_end", "boom")].data["status"], "failed");
}

#[tokio::test]
async fn dry_run_reads_for_real_and_writes_nothing() {
    let h = Harness::new();
    let yaml = "name: dry
steps:
  - id: look
    uses: test.read
    with: {value: [1, 2]}
  - id: change
    uses: test.write
    with: {tag: \"{{ steps.look.outputs.value }}\"}
  - id: destroy
    uses: test.nosim
  - id: downstream
    uses: test.write
    with: {tag: \"{{ steps.change.outputs.written }}\"}
";
    let r = h.start("dry", yaml, &[], true).await.unwrap();
    assert!(r.dry_run);
    assert_eq!(status(&r, "look"), StepStatus::Ok);
    let c = r.step("change").unwrap();
    assert_eq!(c.status, StepStatus::DryRun);
    assert_eq!(c.summary, "would write [1,2]", "resolved args");
    let d = r.step("destroy").unwrap();
    assert_eq!(d.status, StepStatus::NotSimulable);
    let ds = r.step("downstream").unwrap();
    assert_eq!(ds.status, StepStatus::Skipped);
    assert!(ds.summary.contains("only ran as a dry run"), "{ds:?}");
    assert_eq!(h.world.total_writes(), 0);
    let e = entries(&h.run_dir("dry"));
    assert_eq!(e[0].data["dry_run"], true);
    assert_eq!(
        e[index_of(&e, "step_start", "change")].data["args"]["tag"],
        json!([1, 2])
    );
}

const CHAIN: &str = "name: chain
inputs:
  token: {type: string, secret: true, required: true}
  label: {type: string, default: L}
steps:
  - id: r1
    uses: test.read
    with: {value: \"{{ inputs.label }}\"}
  - id: w1
    uses: test.write
    with: {tag: \"{{ steps.r1.outputs.value }}-{{ inputs.token }}\"}
  - id: r2
    uses: test.read
    needs: [w1]
    with: {value: 2}
  - id: w2
    uses: test.write
    with: {tag: \"{{ steps.r2.outputs.value }}\"}
  - id: w3
    uses: test.write
    needs: [w2]
";

fn copy_prefix(from: &Path, to: &Path, lines: usize) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("playbook.yaml"), to.join("playbook.yaml")).unwrap();
    let text = std::fs::read_to_string(from.join(journal::FILE_NAME)).unwrap();
    let prefix: String = text.split_inclusive('\n').take(lines).collect();
    std::fs::write(to.join(journal::FILE_NAME), prefix).unwrap();
}

fn secret_opts() -> ResumeOptions {
    ResumeOptions {
        secret_inputs: [("token".to_string(), "tok-resume-0001".to_string())].into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn resume_after_a_crash_at_every_entry_repeats_no_write() {
    let h = Harness::new();
    let full = h
        .start("full", CHAIN, &[("token", "tok-resume-0001")], false)
        .await
        .unwrap();
    assert!(full.ok, "{full:#?}");
    let full_dir = h.run_dir("full");
    let all = entries(&full_dir);
    let writes = ["w1", "w2", "w3"];
    let mut cases = 0;
    for k in 1..all.len() {
        let prefix = &all[..k];
        // The world as it was when the process died after entry k: a write happened if its
        // successful attempt was journaled; if it started but nothing after, try both.
        let started_open: Option<String> = writes
            .iter()
            .find(|w| {
                let last = prefix.iter().rev().find(|e| e.data["step"] == **w);
                last.is_some_and(|e| e.event == "step_start")
            })
            .map(|w| w.to_string());
        let variants: &[bool] = if started_open.is_some() {
            &[false, true]
        } else {
            &[false]
        };
        for &write_landed in variants {
            cases += 1;
            let hh = Harness::new();
            for w in writes {
                let attempted = prefix.iter().any(|e| {
                    e.event == "step_attempt" && e.data["step"] == w && e.data["ok"] == true
                });
                if attempted || (write_landed && started_open.as_deref() == Some(w)) {
                    hh.world.writes.lock().unwrap().insert(w.to_string(), 1);
                }
            }
            let dir = hh.run_dir(&format!("crash-{k}"));
            copy_prefix(&full_dir, &dir, k);
            let r = resume(&hh, &dir, None, secret_opts())
                .await
                .unwrap_or_else(|e| panic!("k={k}: {e}"));
            assert!(r.ok, "k={k} landed={write_landed}: {r:#?}");
            for w in writes {
                assert_eq!(
                    hh.world.writes(w),
                    1,
                    "k={k} landed={write_landed}: write {w}"
                );
            }
            // Steps that had ended are reused, not re-run.
            for s in &r.steps {
                let ended = prefix
                    .iter()
                    .any(|e| e.event == "step_end" && e.data["step"] == s.id.as_str());
                if ended {
                    // Reused outputs are the journaled (redacted) ones.
                    assert_eq!(s.status, StepStatus::Reused, "k={k}: {}", s.id);
                    let end = &all[index_of(&all, "step_end", &s.id)];
                    assert_eq!(json!(s.outputs), end.data["outputs"], "k={k}");
                } else {
                    assert_eq!(s.status, StepStatus::Ok, "k={k}: {}", s.id);
                    assert_eq!(s.outputs, full.step(&s.id).unwrap().outputs, "k={k}");
                }
            }
            let e = entries(&dir);
            assert_eq!(e.last().unwrap().event, "run_end");
            assert!(e.iter().any(|x| x.event == "resume"));
        }
    }
    assert!(cases > all.len(), "{cases}");
}

/// `src` fails the first time (tolerated), so `mid` ran on what it had; `tmpl` reads `mid`'s
/// outputs, `w` writes what `tmpl` found; `side` depends on nothing; `never` is skipped by its
/// condition and `after_never` only waits for it.
const STALE: &str = "name: stale
inputs:
  on: {type: boolean, default: false}
steps:
  - id: src
    uses: test.read
    on_error: continue
    with: {value: 5, fail_times: 1}
  - id: mid
    uses: test.read
    needs: [src]
    with: {value: 1}
  - id: tmpl
    uses: test.read
    with: {value: \"{{ steps.mid.outputs.attempt }}\"}
  - id: w
    uses: test.write
    with: {tag: \"{{ steps.tmpl.outputs.value }}\"}
  - id: side
    uses: test.read
    with: {value: 9}
  - id: never
    uses: test.read
    if: \"{{ inputs.on }}\"
  - id: after_never
    uses: test.read
    needs: [never]
";

#[tokio::test]
async fn a_step_run_again_on_resume_reruns_every_step_that_depends_on_it() {
    let h = Harness::new();
    let first = h.start("stale", STALE, &[], false).await.unwrap();
    assert_eq!(status(&first, "src"), StepStatus::Failed);
    assert_eq!(status(&first, "mid"), StepStatus::Ok, "{first:#?}");
    assert_eq!(status(&first, "never"), StepStatus::Skipped);
    assert_eq!(first.step("tmpl").unwrap().outputs["value"], json!(1));
    assert_eq!(h.world.writes("w"), 1);
    let dir = h.run_dir("stale");

    // The resume runs `src` again (it now succeeds): what was computed from its first,
    // failed, run is stale. Through `needs` (mid), a template reference (tmpl reads mid) and
    // transitively (w writes what tmpl read), each runs again; the write checks first.
    let r = resume(&h, &dir, None, ResumeOptions::default())
        .await
        .unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(status(&r, "src"), StepStatus::Ok);
    for id in ["mid", "tmpl", "w"] {
        assert_eq!(status(&r, id), StepStatus::Ok, "{id} must not be reused");
    }
    assert_eq!(r.step("mid").unwrap().outputs["attempt"], json!(2));
    assert_eq!(r.step("tmpl").unwrap().outputs["value"], json!(2));
    assert_eq!(r.step("w").unwrap().outputs["written"], json!(2));
    assert!(
        r.step("w")
            .unwrap()
            .summary
            .contains("checked again on resume"),
        "{:?}",
        r.step("w")
    );
    assert_eq!(
        h.world.writes("w"),
        1,
        "a done write is checked, not repeated"
    );
    // Nothing it depends on ran again: reused. Skipped again with the same inputs: nothing
    // new, so what waits on it is reused too.
    assert_eq!(status(&r, "side"), StepStatus::Reused);
    assert_eq!(status(&r, "never"), StepStatus::Skipped);
    assert_eq!(status(&r, "after_never"), StepStatus::Reused);
    let e = entries(&dir);
    let resumed = e.iter().rfind(|x| x.event == "resume").unwrap();
    assert_eq!(
        resumed.data["rerun"],
        json!({"mid": "src", "tmpl": "mid", "w": "tmpl"})
    );

    // `--replay` is a step run again too: everything downstream follows it.
    let r = resume(&h, &dir, None, replay("mid")).await.unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(status(&r, "src"), StepStatus::Reused);
    for id in ["mid", "tmpl", "w"] {
        assert_eq!(status(&r, id), StepStatus::Ok, "{id} after --replay mid");
    }
    assert_eq!(r.step("tmpl").unwrap().outputs["value"], json!(3));
    assert_eq!(h.world.writes("w"), 1);
    assert_eq!(status(&r, "side"), StepStatus::Reused);
}

#[tokio::test]
async fn resume_trims_a_torn_entry_and_needs_the_secret_again() {
    let h = Harness::new();
    h.start("torn", CHAIN, &[("token", "tok-resume-0001")], false)
        .await
        .unwrap();
    let dir = h.run_dir("torn");
    let text = std::fs::read_to_string(dir.join(journal::FILE_NAME)).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let cut = format!("{}{}", lines[..3].concat(), &lines[3][..20]);
    let crash = h.run_dir("torn2");
    std::fs::create_dir_all(&crash).unwrap();
    std::fs::copy(dir.join("playbook.yaml"), crash.join("playbook.yaml")).unwrap();
    std::fs::write(crash.join(journal::FILE_NAME), cut).unwrap();
    let err = resume(&h, &crash, None, ResumeOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Input { ref name, .. } if name == "token"),
        "{err}"
    );
    let r = resume(&h, &crash, None, secret_opts()).await.unwrap();
    assert!(r.ok);
    let e = entries(&crash);
    assert!(e
        .iter()
        .any(|x| x.event == "resume" && x.data["torn_bytes_removed"] == 20));
}

#[tokio::test]
async fn interrupted_undecidable_step_needs_replay() {
    let h = Harness::new();
    let yaml = "name: notify\nsteps:\n  - id: tell\n    uses: test.undecidable\n  - id: after\n    uses: test.write\n    needs: [tell]\n";
    h.start("und", yaml, &[], false).await.unwrap();
    let full = h.run_dir("und");
    let all = entries(&full);
    let k = index_of(&all, "step_start", "tell") + 1;
    let dir = h.run_dir("und-crash");
    copy_prefix(&full, &dir, k);
    let hh = Harness::new();
    let r = resume(&hh, &dir, None, ResumeOptions::default())
        .await
        .unwrap();
    let t = r.step("tell").unwrap();
    assert_eq!(t.status, StepStatus::Failed);
    assert!(
        t.hint.as_deref().unwrap().contains("--replay tell"),
        "{t:?}"
    );
    assert_eq!(hh.world.total_writes(), 0, "nothing repeated blindly");
    assert_eq!(status(&r, "after"), StepStatus::NotRun);
    // The user checked by hand and asks for it again.
    let r = resume(&hh, &dir, None, replay("tell")).await.unwrap();
    assert!(r.ok, "{r:#?}");
    assert_eq!(hh.world.writes("tell"), 1);
    assert_eq!(hh.world.writes("after"), 1);
    let err = resume(&hh, &dir, None, replay("nope")).await.unwrap_err();
    assert!(matches!(err, EngineError::UnknownReplay(_)));
}

#[tokio::test]
async fn resume_refuses_a_changed_playbook() {
    let h = Harness::new();
    let yaml = "name: change\nsteps:\n  - id: a\n    uses: test.write\n  - id: b\n    uses: test.write\n    with: {fail: no}\n";
    let r = h.start("chg", yaml, &[], false).await.unwrap();
    assert_eq!(status(&r, "b"), StepStatus::Failed);
    let dir = h.run_dir("chg");
    let changed = yaml.replace("with: {fail: no}", "with: {tag: fixed}");
    let err = resume(&h, &dir, Some(&changed), ResumeOptions::default())
        .await
        .unwrap_err();
    let EngineError::PlaybookChanged { diff } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        diff,
        "-   7:     with: {fail: no}\n+   7:     with: {tag: fixed}"
    );
    let r = resume(
        &h,
        &dir,
        Some(&changed),
        ResumeOptions {
            accept_changed_playbook: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(r.ok);
    assert_eq!(status(&r, "a"), StepStatus::Reused);
    assert_eq!(status(&r, "b"), StepStatus::Ok);
    assert_eq!(h.world.writes("a"), 1);
}

/// The run's playbook copy is written through the secret filter, so a secret that happens to
/// appear in the playbook's text is masked in the copy. Resuming from that copy is not a change
/// of playbook: the run remembers the copy's own hash.
#[tokio::test]
async fn resume_from_the_stored_copy_survives_a_masked_secret() {
    let h = Harness::new();
    let yaml = format!("# the vault entry is called tok-stored-0042\n{CHAIN}");
    let secret = [("token", "tok-stored-0042")];
    h.start("masked", &yaml, &secret, false).await.unwrap();
    let dir = h.run_dir("masked");
    let copy = std::fs::read_to_string(dir.join("playbook.yaml")).unwrap();
    assert!(
        !copy.contains("tok-stored-0042"),
        "the copy masks the secret"
    );
    let opts = || ResumeOptions {
        secret_inputs: [("token".to_string(), "tok-stored-0042".to_string())].into(),
        ..Default::default()
    };
    let r = resume(&h, &dir, None, opts()).await.unwrap();
    assert!(r.ok);
    // The original file is still the same playbook; an edited one is still a change.
    resume(&h, &dir, Some(&yaml), opts()).await.unwrap();
    let edited = yaml.replace(
        "label: {type: string, default: L}",
        "label: {type: string, default: M}",
    );
    let err = resume(&h, &dir, Some(&edited), opts()).await.unwrap_err();
    assert!(matches!(err, EngineError::PlaybookChanged { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_write_cut_off_by_its_timeout_is_checked_not_repeated_on_resume() {
    let h = Harness::new();
    let yaml = "name: cut\nsteps:\n  - id: w\n    uses: test.write\n    timeout: 50ms\n    retry: {attempts: 3, backoff: 1ms}\n    with: {sleep_ms: 60000}\n";
    let r = h.start("cut", yaml, &[], false).await.unwrap();
    let w = r.step("w").unwrap();
    assert_eq!(
        (w.status, w.attempts),
        (StepStatus::Failed, 1),
        "a write is not retried after a timeout"
    );
    assert!(w.effect_unknown);
    assert_eq!(h.world.writes("w"), 1);
    let r = resume(&h, &h.run_dir("cut"), None, ResumeOptions::default())
        .await
        .unwrap();
    let w = r.step("w").unwrap();
    assert_eq!(w.status, StepStatus::Ok, "{w:?}");
    assert!(w.summary.contains("already done"), "{w:?}");
    assert_eq!(h.world.writes("w"), 1, "not repeated");
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test]
async fn secrets_never_reach_the_journal_or_files() {
    use base64::Engine as _;
    let canary = "canary-7f3a9c1e5b2d";
    let token = "canary-input-0c4e8a";
    let _s = respond::secret::Secret::new(canary);
    let h = Harness::new();
    let yaml = "name: secrets
inputs:
  token: {type: string, secret: true}
steps:
  - id: ok
    uses: test.leak
    with: {message: \"c=canary-7f3a9c1e5b2d t={{ inputs.token }}\"}
  - id: bad
    uses: test.leak
    on_error: continue
    with: {message: \"canary-7f3a9c1e5b2d\", fail: true}
";
    let r = h
        .start("sec", yaml, &[("token", token)], false)
        .await
        .unwrap();
    assert_eq!(status(&r, "ok"), StepStatus::Ok);
    assert_eq!(status(&r, "bad"), StepStatus::Failed);
    let mut forms = vec![];
    for s in [canary, token] {
        forms.push(s.to_string());
        forms.push(base64::engine::general_purpose::STANDARD.encode(s));
        forms.push(
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    let mut files = vec![];
    all_files(&h.run_dir("sec"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{form} in {}", f.display());
        }
    }
    let e = entries(&h.run_dir("sec"));
    assert_eq!(e[0].data["inputs"]["token"], json!({"secret": true}));
    let text = std::fs::read_to_string(h.run_dir("sec").join(journal::FILE_NAME)).unwrap();
    assert!(text.contains("[REDACTED]"));
}

/// Run as a subprocess by `printer_output_is_redacted`: a run whose steps put a secret in
/// their summaries and errors, printed verbosely.
#[test]
#[ignore = "helper: run by printer_output_is_redacted"]
fn printer_helper() {
    if std::env::var_os("RESPOND_PRINTER_HELPER").is_none() {
        return;
    }
    let _s = respond::secret::Secret::new("canary-printer-5e1f7a");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let h = Harness::new();
        let yaml = "name: p
steps:
  - id: ok
    uses: test.leak
    with: {message: canary-printer-5e1f7a}
  - id: dry
    uses: test.write
    with: {tag: canary-printer-5e1f7a}
  - id: bad
    uses: test.leak
    on_error: continue
    with: {message: canary-printer-5e1f7a, fail: true}
";
        let dir = h.run_dir("p");
        let rundir = respond::rundir::RunDir::create(&dir).unwrap();
        let spec = engine::RunSpec {
            playbook_path: "p.yaml".into(),
            playbook_source: yaml.into(),
            inputs: Default::default(),
            capabilities: json!({}),
            dry_run: true,
        };
        let printer = respond::output::Printer::plain(respond::output::Verbosity::Verbose);
        let r = engine::start(spec, &h.registry, Harness::services(), &printer, rundir)
            .await
            .unwrap();
        r.print(&printer);
    });
}

#[test]
fn printer_output_is_redacted() {
    use base64::Engine as _;
    let out = run_test_in_child("engine::printer_helper", "RESPOND_PRINTER_HELPER", true);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, Some(0), "{stderr}");
    assert!(stdout.contains("FAILED p (dry run): "), "{stdout}");
    assert!(
        stdout
            .contains("  failed         bad                      failed — failed with [REDACTED]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[dry_run] dry: would write \"[REDACTED]\""),
        "{stdout}"
    );
    assert!(stderr.contains("failed with [REDACTED]"), "{stderr}");
    assert!(stderr.contains("[ok] ok: leaked [REDACTED]"), "{stderr}");
    let secret = "canary-printer-5e1f7a";
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    for form in [secret, b64.as_str()] {
        assert!(!stdout.contains(form) && !stderr.contains(form), "{form}");
    }
}

/// Run as a subprocess by `panic_messages_are_redacted`.
#[test]
#[ignore = "helper: run by panic_messages_are_redacted"]
fn panic_helper() {
    if std::env::var_os("RESPOND_PANIC_HELPER").is_none() {
        return;
    }
    respond::secret::install_panic_hook();
    let s = respond::secret::Secret::new("canary-panic-93b1d0");
    panic!("failed while holding {}", s.expose());
}

#[test]
fn panic_messages_are_redacted() {
    let out = run_test_in_child("engine::panic_helper", "RESPOND_PANIC_HELPER", true);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_ne!(out.code, Some(0), "the helper panicked");
    assert!(
        stderr.contains("failed while holding [REDACTED]"),
        "{stderr}"
    );
    assert!(!stderr.contains("canary-panic-93b1d0") && !stdout.contains("canary-panic-93b1d0"));
}
