//! `respond drill`: rehearse a leak end to end against the in-process mock exchange (real
//! HTTP over loopback), with a simulated user who deletes the key after a reaction time, and
//! score the run against the mock's ground truth.

pub mod score;
