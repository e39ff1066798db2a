//! Investigation: bot-log import, the diff against exchange history, detection rules R1–R14
//! and loss estimates. Pure functions over [`model::AnalysisInput`]: no network, no clock, so
//! `respond analyze` gives byte-identical results from the same raw inputs.

pub mod model;

pub use model::*;
