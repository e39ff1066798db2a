//! The Upbit adapter: JWT signing, the HTTP client with per-group rate limiting, wire types
//! and error classification. Facts: `shared/reference/upbit-api.md`.

pub mod errors;
