//! R14: key-hygiene findings, always reported.

use super::super::model::{AnalysisInput, RuleHit};
use super::hit;

/// R14: key-hygiene findings, always reported.
pub(crate) fn key_rules(input: &AnalysisInput) -> Vec<RuleHit> {
    let mut out = Vec::new();
    for k in &input.keys {
        if let Some(ips) = &k.allowed_ips {
            if ips.is_empty() {
                out.push(hit(
                    "R14",
                    0.0,
                    format!(
                        "key {} has no IP allowlist: anyone holding it can call the API from anywhere",
                        k.access_key_masked
                    ),
                ));
            }
        }
        if let Some(scopes) = &k.scopes {
            if scopes
                .iter()
                .any(|s| crate::exchange::registry::scope_class(&input.exchange, s).moves_funds())
            {
                out.push(hit(
                    "R14",
                    0.0,
                    format!(
                        "key {} holds a withdrawal scope, which a trading bot never needs",
                        k.access_key_masked
                    ),
                ));
            }
        }
    }
    if input.keys.len() > 1 {
        out.push(hit(
            "R14",
            0.0,
            format!(
                "the account has {} API keys ({}): confirm you created each one",
                input.keys.len(),
                input
                    .keys
                    .iter()
                    .map(|k| k.access_key_masked.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(p) = &input.permissions {
        for r in &p.reasons {
            out.push(hit("R14", 0.0, format!("key permissions: {r}")));
        }
    }
    out
}
