//! The playbook engine: runs steps as a DAG with retries, timeouts and `on_error`, journals
//! every transition (hash-chained), supports dry runs and resumes interrupted runs.

pub mod journal;
