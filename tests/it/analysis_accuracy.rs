//! Accuracy of the detection on synthetic scenarios shaped like the mock's (30 days of a bot,
//! then an attack): precision and recall of "flagged" per scenario, and per rule. Run with
//! `cargo nextest run --no-capture -E 'test(/^analysis_accuracy::/)'` to see the tables.

use std::collections::{BTreeMap, BTreeSet};

use respond::analysis::synth::{generate, Scenario};
use respond::analysis::{analyze, Thresholds};

struct Pr {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Pr {
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
}

fn measure(s: Scenario, seed: u64, with_log: bool) -> (Pr, BTreeMap<String, Pr>) {
    let synth = generate(s, seed, with_log);
    let r = analyze(&synth.input, &Thresholds::default());
    let mut total = Pr {
        tp: 0,
        fp: 0,
        fn_: 0,
    };
    let mut per_rule: BTreeMap<String, Pr> = BTreeMap::new();
    assert_eq!(
        r.verdicts.len(),
        synth.input.orders.len(),
        "one verdict per order, at the order's index"
    );
    for (o, v) in synth.input.orders.iter().zip(&r.verdicts) {
        let truth = synth.attack_orders.contains(&o.id);
        match (v.flagged, truth) {
            (true, true) => total.tp += 1,
            (true, false) => total.fp += 1,
            (false, true) => total.fn_ += 1,
            _ => {}
        }
        let fired: BTreeSet<&str> = v.rules.iter().map(|h| h.rule.as_str()).collect();
        for rule in (1..=12).map(|k| format!("R{k}")) {
            let e = per_rule.entry(rule.clone()).or_insert(Pr {
                tp: 0,
                fp: 0,
                fn_: 0,
            });
            match (fired.contains(rule.as_str()), truth) {
                (true, true) => e.tp += 1,
                (true, false) => e.fp += 1,
                (false, true) => e.fn_ += 1,
                _ => {}
            }
        }
    }
    let e = per_rule.entry("R13".into()).or_insert(Pr {
        tp: 0,
        fp: 0,
        fn_: 0,
    });
    for (w, t) in synth.input.withdrawals.iter().zip(&r.transfers) {
        let truth = synth.attack_withdrawals.contains(&w.id);
        for pr in [&mut total, &mut *e] {
            match (t.flagged, truth) {
                (true, true) => pr.tp += 1,
                (true, false) => pr.fp += 1,
                (false, true) => pr.fn_ += 1,
                _ => {}
            }
        }
    }
    (total, per_rule)
}

#[test]
fn accuracy_per_scenario_and_rule() {
    let scenarios = [
        ("pump-and-dump", Scenario::PumpAndDump),
        ("contra", Scenario::Contra),
        ("withdrawal", Scenario::Withdrawal),
        ("noisy", Scenario::Noisy),
    ];
    let mut failures = Vec::new();
    for with_log in [true, false] {
        println!(
            "\n== {} ==",
            if with_log {
                "with bot log"
            } else {
                "without bot log (heuristics only)"
            }
        );
        for (name, s) in scenarios {
            let mut agg = Pr {
                tp: 0,
                fp: 0,
                fn_: 0,
            };
            let mut rules: BTreeMap<String, Pr> = BTreeMap::new();
            for seed in [1u64, 2] {
                let (t, pr) = measure(s, seed, with_log);
                agg.tp += t.tp;
                agg.fp += t.fp;
                agg.fn_ += t.fn_;
                for (k, v) in pr {
                    let e = rules.entry(k).or_insert(Pr {
                        tp: 0,
                        fp: 0,
                        fn_: 0,
                    });
                    e.tp += v.tp;
                    e.fp += v.fp;
                    e.fn_ += v.fn_;
                }
            }
            println!(
                "{name:14} flagged: precision {:.3} recall {:.3} (tp {} fp {} fn {})",
                agg.precision(),
                agg.recall(),
                agg.tp,
                agg.fp,
                agg.fn_
            );
            let mut line = String::from("    per rule (precision/recall):");
            let mut keys: Vec<&String> = rules.keys().collect();
            keys.sort_by_key(|k| k[1..].parse::<u32>().unwrap_or(0));
            for k in keys {
                let v = &rules[k];
                if v.tp + v.fp > 0 {
                    line.push_str(&format!(" {k} {:.2}/{:.2}", v.precision(), v.recall()));
                }
            }
            println!("{line}");
            if with_log && (agg.precision() < 0.95 || agg.recall() < 0.95) {
                failures.push(format!(
                    "{name} with log: P {:.3} R {:.3}",
                    agg.precision(),
                    agg.recall()
                ));
            }
            if !with_log && s == Scenario::PumpAndDump && agg.recall() < 0.8 {
                failures.push(format!("{name} without log: R {:.3}", agg.recall()));
            }
        }
    }
    assert!(failures.is_empty(), "accuracy targets missed: {failures:?}");
}
