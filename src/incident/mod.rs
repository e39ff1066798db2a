//! One incident across several accounts and exchanges (`respond leak --exchange A --exchange B`
//! or `--accounts FILE`): every account contained at once, one bundle per account exactly as a
//! single run writes it, all in one incident folder with an incident report and an
//! incident-level seal over the bundles' seals.
//!
//! Exchange-neutral: accounts name their exchange, and everything about it comes from its
//! descriptor in [`crate::exchange::registry`].
//!
//! - [`accounts`] reads the accounts file (every problem as `file:line:column`) or the flags;
//! - [`run`] runs the accounts in parallel and prints the guidance and the progress view;
//! - [`drill`] is the coordinated drill (one mock per exchange, attacked at once);
//! - [`record`] is `incident.json`, [`report`] the incident report, [`manifest`] the seal.

pub mod accounts;
pub mod drill;
pub mod manifest;
pub mod record;
pub mod report;
pub mod run;
