//! The Upbit adapter: JWT signing, the HTTP client with per-group rate limiting, wire types
//! and error classification. Facts: `docs/exchanges/upbit.md`.

pub mod auth;
pub mod client;
pub mod errors;
pub mod offline;
pub mod ratelimit;
pub mod wire;

pub use client::{UpbitClient, UpbitConfig};
