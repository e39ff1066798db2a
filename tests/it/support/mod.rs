//! What the test modules share, none of it part of the product: test step kinds and the engine
//! harness (`steps`), a fake in-memory exchange (`fake_exchange`),
//! the mock exchange in-process or on its own runtime (`mock`), raw answers of its façades
//! (`http`), drills against it (`drill`), the
//! binary run as a user runs it (`respond`: the fluent builder), the binary against the mock
//! (`cli`), readers of what a run leaves behind (`run_dir`) and a hand-built incident for the
//! report writers (`report_fixture`); `child` runs one test of this binary in a process of its
//! own.

#![allow(dead_code)]

pub mod child;
pub mod cli;
pub mod drill;
pub mod fake_exchange;
pub mod http;
pub mod mock;
pub mod report_fixture;
pub mod respond;
pub mod run_dir;
pub mod steps;
pub mod tree;
