//! [`RunFacts`]: what the engine knows about the run itself, stamped by the engine.
//!
//! Report writers never read the clock (reports must be byte-identical for identical inputs),
//! so every time a report shows about the response (start, finish, server clock, revocation,
//! step outcomes) arrives here, as data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::exchange::{ServerTime, Window};

/// Facts about one run of `respond`, for the reports and the support ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFacts {
    /// The run id (the bundle directory's name).
    pub run_id: String,
    /// The exchange's registry name.
    pub exchange: String,
    /// A label for the account the user gave, if any.
    pub account_label: Option<String>,
    /// The leaked key, masked (`abcd...wxyz`).
    pub key_masked: String,
    pub tool_version: String,
    /// The playbook as given (a path or `builtin:<name>`) and the SHA-256 of its bytes.
    pub playbook_path: String,
    pub playbook_sha256: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The exchange clock against ours at the start and at the end of the run.
    pub server_time_start: Option<ServerTime>,
    pub server_time_end: Option<ServerTime>,
    /// The window whose history was exported.
    pub investigation_window: Option<Window>,
    /// The window whose candles gave the reference (pre-attack) prices.
    pub reference_window: Option<Window>,
    /// What the run observed about the leaked key.
    pub revocation: Revocation,
    pub dry_run: bool,
    /// The response itself, step by step, in execution order.
    pub steps: Vec<StepRecord>,
    /// Steps of the playbook that never started before the report was written (a run cut
    /// off, analyzed offline), by id; steps that come after the report are not counted.
    #[serde(default)]
    pub not_started: Vec<String>,
    /// What the user told the run about the incident (playbook inputs), for the ticket.
    #[serde(default)]
    pub incident: IncidentInputs,
    /// Open orders the run cancelled with the leaked key.
    #[serde(default)]
    pub cancelled_orders: usize,
    /// Scopes the key was proven to hold by this run's own actions (a cancel that succeeded
    /// proves the trading scope).
    #[serde(default)]
    pub proven_scopes: Vec<ProvenScope>,
    /// Trusted (RFC 3161) timestamps of the bundle, oldest first.
    #[serde(default)]
    pub timestamps: Vec<crate::report::timestamp::TimestampInfo>,
    /// Where the exchange keeps history per market: the markets the export read and its
    /// completeness statement (from the export's `<step id>-symbols.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_markets: Option<HistoryMarkets>,
}

/// The markets an export read, and what that leaves out, as its statement file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMarkets {
    /// The statement file, relative to the bundle.
    pub file: String,
    /// The markets read, as the exchange writes them.
    pub symbols: Vec<String>,
    /// Which markets were read and what a missing one would take.
    pub statement: String,
}

/// The incident as the user describes it: playbook inputs `account`, `discovered_at`,
/// `leak_vector`, `contact` and `bot_ips`. Each is `None` (or empty) when not given, and the
/// ticket then shows a placeholder naming the input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentInputs {
    /// The account at the exchange (its e-mail or member id).
    pub account: Option<String>,
    /// When the user noticed the leak (as given: free text or RFC 3339).
    pub discovered_at: Option<String>,
    /// How the key is thought to have leaked.
    pub leak_vector: Option<String>,
    /// How support can reach the user.
    pub contact: Option<String>,
    /// The bot's own server addresses (the only legitimate sources of API calls).
    pub bot_ips: Vec<String>,
}

/// A scope of the leaked key proven by an action of this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenScope {
    /// The exchange's scope name (`make_orders`).
    pub scope: String,
    /// What proved it, e.g. `cancelled 6 open orders with the key at 2026-…Z`.
    pub evidence: String,
    pub at: DateTime<Utc>,
    /// How many cancels the exchange accepted with the key.
    #[serde(default)]
    pub cancelled: u64,
}

/// Whether the leaked key was seen dead, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Revocation {
    /// The run did not check (dry run, step skipped or failed).
    NotChecked,
    /// The last check found the key still working.
    StillValid { checked_at: DateTime<Utc> },
    /// The key was refused (`invalid_access_key`) at this time.
    Revoked {
        observed_at: DateTime<Utc>,
        /// What showed it, e.g. `GET /v1/accounts → 401 invalid_access_key`.
        evidence: String,
        /// The exchange's error for the refused key (`invalid_access_key`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused_with: Option<String>,
        /// When this run (or the run it resumes) last saw the key accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accepted_at: Option<DateTime<Utc>>,
        /// When this run deleted the key itself by API (the exchange's
        /// [`crate::exchange::registry::RevokeSupport::api_call`]), when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deleted_by_api_at: Option<DateTime<Utc>>,
    },
}

impl Revocation {
    /// When the key was observed revoked.
    pub fn revoked_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Revocation::Revoked { observed_at, .. } => Some(*observed_at),
            _ => None,
        }
    }
}

/// How a step ended, as the journal says (the reports show [`StepStatus::report_label`]).
pub use crate::engine::StepStatus;

/// One step's outcome, for the report's timeline of the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    /// The step kind (`exchange.snapshot`).
    pub uses: String,
    pub status: StepStatus,
    pub summary: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}
