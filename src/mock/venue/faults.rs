//! Injected faults, from the scenario's `faults:` list or `POST /_mock/faults` at run time.
//!
//! A rule matches requests by method and path prefix (the façade's paths) and, with its
//! probabilities, answers a server error (500, in the façade's error envelope), adds latency, never answers (a timeout for the client), drops the
//! connection mid-response, truncates the JSON body, starts a 429 storm for everyone, or makes
//! a list endpoint repeat items of the previous page. Every injected fault is logged (tracing
//! and the request log). Decisions use a seeded RNG so a scenario's faults are reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One fault rule. Rates are probabilities in 0..=1.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Path prefix (`/v1/orders`) or `*` for every path.
    #[serde(default = "star")]
    pub path: String,
    /// HTTP method, any when absent.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub timeout_rate: f64,
    #[serde(default)]
    pub drop_rate: f64,
    #[serde(default)]
    pub truncate_rate: f64,
    /// Seconds of "429 for everyone" started when the rule first matches.
    #[serde(default)]
    pub storm_secs: u64,
    #[serde(default)]
    pub repeat_page_rate: f64,
    /// Apply at most this many times (unlimited when absent).
    #[serde(default)]
    pub count: Option<u32>,
}

fn star() -> String {
    "*".into()
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub latency_ms: u64,
    pub error: bool,
    pub timeout: bool,
    pub drop: bool,
    pub truncate: bool,
    pub storm_secs: u64,
    pub repeat_page: bool,
}

impl Decision {
    /// Names of the faults chosen, for the log; None when nothing was injected.
    pub fn label(&self) -> Option<String> {
        let mut v = Vec::new();
        if self.latency_ms > 0 {
            v.push(format!("latency {}ms", self.latency_ms));
        }
        for (on, n) in [
            (self.error, "error 500"),
            (self.timeout, "timeout"),
            (self.drop, "dropped connection"),
            (self.truncate, "truncated json"),
            (self.repeat_page, "repeated page"),
        ] {
            if on {
                v.push(n.to_string());
            }
        }
        if self.storm_secs > 0 {
            v.push(format!("429 storm {}s", self.storm_secs));
        }
        (!v.is_empty()).then(|| v.join(", "))
    }
}

/// The active rules and the RNG deciding them.
#[derive(Debug)]
pub struct Faults {
    pub rules: Vec<(FaultRule, u32)>,
    rng: ChaCha8Rng,
}

impl Faults {
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        Faults {
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xFA17),
        }
    }

    /// Replaces the rules (the `POST /_mock/faults` body).
    pub fn set(&mut self, rules: Vec<FaultRule>) {
        self.rules = rules.into_iter().map(|r| (r, 0)).collect();
    }

    pub fn decide(&mut self, method: &str, path: &str) -> Decision {
        let mut d = Decision::default();
        for (r, used) in &mut self.rules {
            if r.path != "*" && !path.starts_with(&r.path) {
                continue;
            }
            if r.method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if r.count.is_some_and(|c| *used >= c) {
                continue;
            }
            let mut hit = false;
            let roll = |p: f64, rng: &mut ChaCha8Rng| p > 0.0 && rng.gen::<f64>() < p;
            if r.latency_ms > 0 {
                d.latency_ms += r.latency_ms;
                hit = true;
            }
            if roll(r.error_rate, &mut self.rng) {
                d.error = true;
                hit = true;
            }
            if roll(r.timeout_rate, &mut self.rng) {
                d.timeout = true;
                hit = true;
            }
            if roll(r.drop_rate, &mut self.rng) {
                d.drop = true;
                hit = true;
            }
            if roll(r.truncate_rate, &mut self.rng) {
                d.truncate = true;
                hit = true;
            }
            if roll(r.repeat_page_rate, &mut self.rng) {
                d.repeat_page = true;
                hit = true;
            }
            if r.storm_secs > 0 {
                d.storm_secs = d.storm_secs.max(r.storm_secs);
                hit = true;
            }
            if hit {
                *used += 1;
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_path_method_and_count() {
        let mut f = Faults::new(
            vec![FaultRule {
                path: "/v1/orders".into(),
                method: Some("GET".into()),
                error_rate: 1.0,
                count: Some(2),
                ..Default::default()
            }],
            1,
        );
        assert!(!f.decide("GET", "/v1/accounts").error);
        assert!(!f.decide("POST", "/v1/orders").error);
        assert!(f.decide("GET", "/v1/orders/closed").error);
        assert!(f.decide("GET", "/v1/orders/closed").error);
        assert!(
            !f.decide("GET", "/v1/orders/closed").error,
            "count exhausted"
        );
    }
}
