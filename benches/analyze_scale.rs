//! `respond analyze` end to end at scale, in both its forms, next to a pandas merge of the same
//! orders with the same bot log. Run: `cargo bench --bench analyze_scale`
//! (`ANALYZE_BENCH_ORDERS=1000000` for the issue's size; the default, 20,000, takes seconds).
//!
//! The bundle is the one a user would have: a victim whose bot placed that many orders over six
//! days, exported by `exchange.export_history` (closed orders only) from the mock over loopback
//! through `session::run_new`, so `raw/` holds the recorded pages and `export/orders.json` the
//! merged orders; the bot log is the mock's own record of the bot's orders (one row per
//! order). Then, each in a child process whose peak RSS is its rusage (`/usr/bin/time -f %M`),
//! alternated round by round (`ANALYZE_BENCH_ROUNDS`, default 1; each round starts with the next
//! build; medians printed, with each round's time):
//! - `respond analyze RUN_DIR --bot-log bot.csv` (the release binary of this build), **in
//!   place**, the command's default form: the check of the sealed bundle before anything is
//!   written, the bot log's copy, the rebuild from `raw/`, the analysis, the reports and the
//!   seal. Each round analyzes a fresh copy of the bundle (the copy is not timed, and is synced
//!   to disk first);
//! - the same with `--out DIR`: a new bundle, the source copied into it beside the analysis;
//! - a pandas merge of `export/orders.json` (`pd.DataFrame(json.load(f))`) with the bot log on
//!   the order id, writing the orders the log lacks (a venv under
//!   `target/pandas-venv`, made with `pip install pandas` when missing; when it cannot be made,
//!   the pandas side is skipped with a notice).
//!
//! `ANALYZE_BENCH_BUNDLE=DIR` keeps the bundle and the bot log in DIR and reuses them when run
//! again (exporting a million orders from the mock takes minutes).
//! `ANALYZE_BENCH_BEFORE=PATH` also times another build of `respond` on the same bundle (e.g.
//! one from before a change), in the same rounds. Prints the times, the ratios pandas / respond
//! (goal ≥ 5) for each form, and the peak RSS (goal for respond < 1 GiB).

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/it/support/tree.rs"]
mod tree;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use respond::mock::upbit::Upbit;
use respond::mock::{self, MockOptions, Venue};
use respond::output::{Printer, Verbosity};
use respond::session::run_new;

fn scenario(orders: usize) -> mock::Scenario {
    let yaml = common::bot_scenario_yaml("analyze-bench", "analyze benchmark", orders);
    mock::scenario::parse("analyze-bench.yaml", &yaml, None).expect("bench scenario parses")
}

/// The pandas side: what a user would write to find the orders the bot did not place. The
/// export is a JSON list of orders whose columns needed for the merge are flat, so the list goes
/// straight into a `DataFrame` (the fastest of the natural loads: `pd.read_json` of the same
/// file took twice as long at 200,000 orders, `json_normalize` longer still at a million).
const PANDAS: &str = r#"
import sys, time, json
import pandas as pd
orders_path, bot_path = sys.argv[1], sys.argv[2]
t = time.monotonic()
with open(orders_path) as f:
    orders = pd.DataFrame(json.load(f))
bot = pd.read_csv(bot_path, dtype=str)
m = orders.merge(bot, how="outer", left_on="id", right_on="order_id", indicator=True)
unauthorized = m[m["_merge"] == "left_only"]
missing = m[m["_merge"] == "right_only"]
unauthorized.to_csv(sys.argv[3], index=False)
print(f"{len(orders)} {len(bot)} {len(unauthorized)} {len(missing)} {time.monotonic() - t:.3f}")
"#;

/// What one child process took: wall seconds, peak RSS in KiB and CPU seconds (user + system)
/// from its rusage as GNU `time` reports it (`/usr/bin/time -f '%M %U %S'`; `None` without
/// it), and its stdout.
struct Measured {
    secs: f64,
    peak_kib: Option<u64>,
    cpu_secs: Option<f64>,
    stdout: String,
}

/// Runs `program args` and measures it (see [`Measured`]).
fn measure(program: &Path, args: &[&std::ffi::OsStr]) -> Measured {
    let rusage = tempfile::NamedTempFile::new().unwrap();
    let gnu_time = Path::new("/usr/bin/time");
    let mut cmd = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.arg("-f")
            .arg("%M %U %S")
            .arg("-o")
            .arg(rusage.path())
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).env("NO_COLOR", "1");
    let t = Instant::now();
    let out = cmd.output().expect("spawn");
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let usage = std::fs::read_to_string(rusage.path()).unwrap_or_default();
    let fields: Vec<&str> = usage
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Measured {
        secs,
        peak_kib: fields.first().and_then(|f| f.parse().ok()),
        cpu_secs: num(1).zip(num(2)).map(|(u, s)| u + s),
        stdout,
    }
}

/// `12.3 s CPU` (user + system), or nothing without GNU `time`.
fn cpu(m: &Measured) -> String {
    m.cpu_secs
        .map(|c| format!(", {c:.2} s CPU"))
        .unwrap_or_default()
}

/// The venv's python with pandas, made when missing; `None` (with the reason) when it cannot be.
fn pandas_python(target: &Path) -> Result<PathBuf, String> {
    common::python_with(&target.join("pandas-venv"), "pandas")
}

fn mib(kib: Option<u64>) -> String {
    match kib {
        Some(k) => format!(
            "{:.0} MiB ({:.2} of 1 GiB)",
            k as f64 / 1024.0,
            k as f64 / 1048576.0
        ),
        None => "not measured (no /usr/bin/time)".into(),
    }
}

fn main() {
    let orders: usize = std::env::var("ANALYZE_BENCH_ORDERS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(20_000);
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let tmp = tempfile::tempdir_in(&target).unwrap();
    // `ANALYZE_BENCH_BUNDLE=DIR` keeps the bundle and the bot log there and reuses them on the
    // next run (the export of a million orders from the mock takes minutes).
    let kept = std::env::var_os("ANALYZE_BENCH_BUNDLE").map(PathBuf::from);
    let home = kept.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let reused = kept.as_ref().and_then(|d| {
        let run = std::fs::read_dir(d.join("evidence"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.join("raw").is_dir())?;
        d.join("bot.csv").is_file().then_some(run)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The bundle, as the export writes it, and the bot's log.
    let t = Instant::now();
    let (run_dir, stored) = if let Some(run) = reused {
        // A kept bundle: its orders are the bot log's rows (the log is made of the same orders).
        let rows = std::fs::read(home.join("bot.csv"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count().saturating_sub(1))
            .unwrap_or(0);
        println!("bundle: reused from {}", home.display());
        (run, rows as u64)
    } else {
        std::fs::create_dir_all(&home).unwrap();
        rt.block_on(async {
            let venue = Venue::new(
                &Upbit,
                scenario(orders),
                MockOptions {
                    live_attacker: false,
                    ..MockOptions::default()
                },
            )
            .unwrap();
            let server = mock::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Upbit), venue)
                .await
                .expect("mock binds");
            std::fs::write(home.join("bot.csv"), server.state.bot_log_csv()).unwrap();
            let k = server.state.key("bot").expect("key").clone();
            let pb = tmp.path().join("playbook.yaml");
            std::fs::write(&pb, common::EXPORT_PLAYBOOK).unwrap();
            let settings = common::settings(pb, home.join("evidence"));
            let conn = common::connection("upbit", &server.url, &k.access_key, &k.secret_key, None);
            let report = run_new(settings, &conn, &Printer::plain(Verbosity::Quiet))
                .await
                .expect("run starts");
            assert!(report.ok, "export run ok");
            let stored = report.step("export").expect("export step").outputs["closed_order_count"]
                .as_u64()
                .unwrap_or(0);
            server.shutdown().await.ok();
            (report.dir.clone(), stored)
        })
    };
    drop(rt);
    let raw_files = std::fs::read_dir(run_dir.join("raw"))
        .map(|d| d.count())
        .unwrap_or(0);
    println!(
        "bundle: {stored} orders exported ({raw_files} files under raw/), bot log of the same orders; built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let bot = home.join("bot.csv");

    let rounds: usize = std::env::var("ANALYZE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut builds = vec![(
        "respond".to_string(),
        PathBuf::from(env!("CARGO_BIN_EXE_respond")),
    )];
    if let Some(before) = std::env::var_os("ANALYZE_BENCH_BEFORE") {
        builds.push(("ANALYZE_BENCH_BEFORE".to_string(), PathBuf::from(before)));
    }
    let python = pandas_python(&target);
    if let Err(why) = &python {
        println!("pandas side skipped: {why}");
    }
    let script = tmp.path().join("merge.py");
    std::fs::write(&script, PANDAS).unwrap();
    let orders_json = run_dir.join("export/orders.json");
    let unmatched = tmp.path().join("unauthorized.csv");

    // Per build: its in-place and --out measures; then pandas's, one of each per round.
    let mut in_place: Vec<Vec<Measured>> = builds.iter().map(|_| Vec::new()).collect();
    let mut copied: Vec<Vec<Measured>> = builds.iter().map(|_| Vec::new()).collect();
    let mut pandas: Vec<Measured> = Vec::new();
    for round in 0..rounds {
        // Each round starts with the next build: the first run of a round follows pandas (a
        // 2.7 GB process just gone), and no build should always be the one that does.
        for b in (0..builds.len()).map(|k| (k + round) % builds.len()) {
            let exe = &builds[b].1;
            // `respond analyze DIR --bot-log bot.csv [EXTRA]`, then the bundle it wrote verified
            // and `checked` (what this round made) removed.
            let analyze = |dir: &Path, extra: &[&std::ffi::OsStr], checked: &Path| {
                let mut args = vec![
                    "analyze".as_ref(),
                    dir.as_os_str(),
                    "--bot-log".as_ref(),
                    bot.as_os_str(),
                ];
                args.extend_from_slice(extra);
                let m = measure(exe, &args);
                // The bundle the command wrote (with --out, a folder inside DIR).
                let written = m
                    .stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("evidence:"))
                    .map(|d| PathBuf::from(d.trim()))
                    .unwrap_or_else(|| panic!("no evidence line in:\n{}", m.stdout));
                verified(exe, &written);
                std::fs::remove_dir_all(checked).ok();
                m
            };
            let copy = tmp.path().join(format!("in-place-{round}-{b}"));
            let analyzed = fresh_copy(&run_dir, &copy);
            in_place[b].push(analyze(&analyzed, &[], &analyzed));
            let out_dir = tmp.path().join(format!("reanalysis-{round}-{b}"));
            copied[b].push(analyze(
                &run_dir,
                &["--out".as_ref(), out_dir.as_os_str()],
                &out_dir,
            ));
        }
        if let Ok(py) = &python {
            pandas.push(measure(
                py,
                &[
                    script.as_os_str(),
                    orders_json.as_os_str(),
                    bot.as_os_str(),
                    unmatched.as_os_str(),
                ],
            ));
        }
    }

    let pandas_median = median(&pandas);
    if let Some(p) = &pandas_median {
        println!(
            "pandas merge of export/orders.json with the bot log (load, merge, write the unmatched), median of {}: {:.2} s{}, peak RSS {}  [orders, log rows, unmatched orders, unmatched rows, inner s: {}]",
            pandas.len(),
            p.secs,
            cpu(p),
            mib(p.peak_kib),
            p.stdout.trim()
        );
    }
    for (b, (name, exe)) in builds.iter().enumerate() {
        for (form, what, runs) in [
            (
                "in place",
                "check, bot log copy, rebuild from raw/, analysis, reports, seal",
                &in_place[b],
            ),
            (
                "--out",
                "copy of the source, rebuild from raw/, analysis, reports, seal",
                &copied[b],
            ),
        ] {
            let Some(m) = median(runs) else { continue };
            let each: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.secs)).collect();
            println!(
                "{name} analyze {form} ({what}; {}), median of {}: {:.2} s{}, peak RSS {} [each round: {} s]",
                exe.display(),
                runs.len(),
                m.secs,
                cpu(m),
                mib(m.peak_kib),
                each.join(", ")
            );
            if let Some(p) = &pandas_median {
                print!(
                    "  ratio pandas / respond {form}: {:.2} (goal >= 5)",
                    p.secs / m.secs.max(1e-9)
                );
                if let (Some(pc), Some(oc)) = (p.cpu_secs, m.cpu_secs) {
                    print!(
                        "; CPU seconds pandas / respond: {:.2} (less sensitive to the load of a shared machine)",
                        pc / oc.max(1e-9)
                    );
                }
                println!();
            }
        }
    }
}

/// The run of the median wall time (the lower middle of an even count); `None` when empty.
fn median(runs: &[Measured]) -> Option<&Measured> {
    let mut sorted: Vec<&Measured> = runs.iter().collect();
    sorted.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    sorted.get(runs.len().saturating_sub(1) / 2).copied()
}

/// A copy of the bundle `run` under `into` (files private, as the bundle's), synced to disk so
/// the timed analysis does not inherit the copy's write-back; returns the copied run's path.
fn fresh_copy(run: &Path, into: &Path) -> PathBuf {
    let copy = into.join(run.file_name().expect("a run directory's name"));
    tree::copy_tree(run, &copy);
    let synced = Command::new("sync").status().map(|s| s.success());
    assert!(
        matches!(synced, Ok(true)),
        "sync after the copy: {synced:?}"
    );
    copy
}

/// Asserts that `respond evidence verify` accepts the bundle `dir` an analysis wrote.
fn verified(exe: &Path, dir: &Path) {
    let out = Command::new(exe)
        .args(["evidence".as_ref(), "verify".as_ref(), dir.as_os_str()])
        .arg("--quiet")
        .output()
        .expect("spawn verify");
    assert!(
        out.status.success(),
        "evidence verify {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
