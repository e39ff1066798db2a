//! Benchmark (not a timed test): diff + rules + loss over 10k / 100k / 1M exchange orders
//! against same-size bot logs. Prints seconds, time per order (flat = linear scaling) and peak
//! resident memory (VmHWM), and at the end the largest size against issue 5's budget
//! (3 s, 1 GiB on a 2-core machine).
//! Run: `cargo bench --bench analysis` (optionally `-- 10000 100000` to choose sizes).

use std::time::Instant;

use respond::analysis::synth::bench_input;
use respond::analysis::{analyze, Thresholds};

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    println!(
        "{:>10} {:>10} {:>12} {:>10} {:>10} {:>9} {:>15} {:>15}",
        "orders",
        "log rows",
        "analyze (s)",
        "µs/order",
        "flagged",
        "gaps",
        "input RSS (MiB)",
        "peak RSS (MiB)"
    );
    let mut last = None;
    for n in sizes {
        let input = bench_input(n, 42);
        let rows: usize = input.bot_logs.iter().map(|l| l.entries.len()).sum();
        let th = Thresholds::default();
        // Reset the high-water mark to the current RSS (Linux `clear_refs` 5), so the peak
        // below is this size's input plus the analysis, not an earlier, larger run.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let input_rss = status_kib("VmRSS:")
            .map(|k| k as f64 / 1024.0)
            .unwrap_or(f64::NAN);
        let start = Instant::now();
        let r = analyze(&input, &th);
        let secs = start.elapsed().as_secs_f64();
        let flagged = r.verdicts.iter().filter(|v| v.flagged).count();
        let hwm = status_kib("VmHWM:")
            .map(|k| k as f64 / 1024.0)
            .unwrap_or(f64::NAN);
        println!(
            "{:>10} {:>10} {:>12.3} {:>10.3} {:>10} {:>9} {:>15.1} {:>15.1}",
            input.orders.len(),
            rows,
            secs,
            secs * 1e6 / n.max(1) as f64,
            flagged,
            r.gaps.len(),
            input_rss,
            hwm
        );
        last = Some((n, secs, hwm));
        drop(r);
        drop(input);
        assert!(
            flagged >= n / 1000 * 9 / 10,
            "the planted unmatched orders are flagged"
        );
    }
    println!("(peak RSS: process high-water mark during analyze, input included)");
    if let Some((n, secs, hwm)) = last {
        println!(
            "{n} orders: {:.2} of the 3 s budget, {:.2} of the 1 GiB budget",
            secs / 3.0,
            hwm / 1024.0
        );
    }
}
