//! What the test modules share, none of it part of the product: test step kinds and the engine
//! harness (`steps`), a fake in-memory exchange (`fake_exchange`), the mock exchange on its own
//! runtime for tests that drive the binary (`mock`), the binary driven as a user drives it
//! (`cli`), readers of what a run leaves behind (`run_dir`) and a hand-built incident for the
//! report writers (`report_fixture`).

#![allow(dead_code)]

pub mod cli;
pub mod fake_exchange;
pub mod mock;
pub mod report_fixture;
pub mod run_dir;
pub mod steps;
