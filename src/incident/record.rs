//! `incident.json`: which accounts the incident holds, where each one's credentials are read
//! (sources, never values), and where each one's bundle is. `respond resume INCIDENT_DIR`
//! reads the credentials again from these sources; the incident report and manifest list the
//! bundles from it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exit::Failure;

use super::accounts::{Account, Source};

/// The file's name in the incident folder.
pub const FILE: &str = "incident.json";

/// The incident as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// `respond-incident/1`.
    pub format: String,
    pub started_at: String,
    pub dry_run: bool,
    pub accounts: Vec<AccountRecord>,
}

/// One account of the incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    pub label: String,
    pub exchange: String,
    pub key_masked: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub source: Source,
    /// The bundle, relative to the incident folder (`LABEL/<bundle>`), once it exists.
    pub bundle: Option<String>,
}

impl IncidentRecord {
    pub fn new(accounts: &[Account], dry_run: bool) -> Self {
        IncidentRecord {
            format: "respond-incident/1".into(),
            started_at: crate::time::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            dry_run,
            accounts: accounts
                .iter()
                .map(|a| AccountRecord {
                    label: a.label.clone(),
                    exchange: a.exchange.name.to_string(),
                    key_masked: a.conn.key_masked(),
                    scopes: a.scopes.clone(),
                    source: a.source.clone(),
                    bundle: None,
                })
                .collect(),
        }
    }

    /// Whether `dir` is an incident folder.
    pub fn is_incident(dir: &Path) -> bool {
        dir.join(FILE).is_file()
    }

    pub fn read(dir: &Path) -> Result<Self, Failure> {
        let p = dir.join(FILE);
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?;
        let record: Self = serde_json::from_str(&text)
            .map_err(|e| Failure::usage(format!("{}: not an incident record: {e}", p.display())))?;
        // Every bundle the record names lies inside the incident folder: a record that points
        // elsewhere would have commands write, and seal, files outside it.
        for a in &record.accounts {
            if let Some(b) = &a.bundle {
                if crate::fsutil::safe_join(dir, b).is_err() {
                    return Err(Failure::new(
                        crate::exit::Code::EvidenceMismatch,
                        format!(
                            "{}: account {} names bundle {} outside the incident folder; nothing was written",
                            p.display(),
                            crate::report::sanitize::terminal(&a.label),
                            crate::report::sanitize::terminal(b)
                        ),
                    )
                    .with_hint("`respond evidence verify` the incident folder; restore incident.json from a copy"));
                }
            }
        }
        Ok(record)
    }

    pub fn write(&self, dir: &Path) -> Result<(), Failure> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Failure::run(e.to_string()))?;
        crate::fsutil::write_private(&dir.join(FILE), &text)
            .map_err(|e| Failure::run(format!("cannot write {}: {e}", dir.join(FILE).display())))
    }

    /// The bundle of each account that has one, as a path.
    pub fn bundles(&self, dir: &Path) -> Vec<(&AccountRecord, std::path::PathBuf)> {
        self.accounts
            .iter()
            .filter_map(|a| a.bundle.as_ref().map(|b| (a, dir.join(b))))
            .collect()
    }
}
