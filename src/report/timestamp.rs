//! Trusted timestamps (RFC 3161) of a sealed bundle.
//!
//! Placeholder until the token parser lands in this module.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One trusted timestamp of the bundle, as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampInfo {
    /// The token, relative to the bundle (`timestamps/1/token.tsr`).
    pub token_file: String,
    /// The manifest it covers (`timestamps/1/manifest.json`) and that file's SHA-256.
    pub manifest_file: String,
    pub manifest_sha256: String,
    /// The time-stamping authority: its certificate's subject.
    pub tsa: String,
    /// Where the token was requested, when recorded.
    pub tsa_url: Option<String>,
    /// The time the authority stated (`genTime`).
    pub gen_time: DateTime<Utc>,
    /// The token's serial number (hex) and policy (dotted OID).
    pub serial: String,
    pub policy: String,
}

/// Every timestamp under `timestamps/` of the bundle at `run_dir`, oldest first.
pub fn read_all(_run_dir: &std::path::Path) -> Vec<TimestampInfo> {
    Vec::new()
}
