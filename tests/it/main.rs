//! Every integration test of `respond`, in one binary (one link of the crate instead of one
//! per file): one module per area, shared helpers under `support/`.
//!
//! Run them all with `cargo nextest run`, one area with `cargo nextest run -E
//! 'test(/^leak_e2e::/)'`. Tests that drive the built binary find it through
//! `CARGO_BIN_EXE_respond`.

mod support;

mod analysis_accuracy;
mod analysis_all_hours;
mod analysis_import;
mod analysis_rules;
mod analyze_offline;
mod binance_botlogs;
mod binance_e2e;
mod bybit_e2e;
mod cli_leak;
mod coinbase_e2e;
mod contain_order;
mod drill_e2e;
mod engine;
mod engine_interrupt;
mod evidence_timestamp;
mod export_paging;
mod fuzz_props;
mod incident;
mod kucoin_e2e;
mod layout;
mod leak_e2e;
mod mock_binance;
mod mock_bybit;
mod mock_cli;
mod mock_coinbase;
mod mock_conformance;
mod mock_e2e;
mod mock_kucoin;
mod playbook_check;
mod reliability_crash;
mod reliability_faults;
mod reliability_load;
mod reliability_secrets;
mod reliability_untrusted;
mod report_bundle;
mod report_claim;
mod report_html;
mod steps_exchange;
mod steps_generic;
mod upbit_client;
