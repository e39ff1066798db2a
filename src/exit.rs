//! Exit codes and the one place where a failure becomes the message a user reads.
//!
//! Modules return typed errors (`thiserror`); commands convert them into a [`Failure`], which
//! carries the exit code and a human sentence with what to do next.

use std::fmt;

/// The documented exit codes (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Everything ran and succeeded.
    Ok = 0,
    /// The run failed: a step failed, the exchange refused, an I/O error.
    RunFailed = 1,
    /// Usage error or invalid input (bad playbook, bad CSV, bad flag).
    Usage = 2,
    /// `evidence verify` found a mismatch.
    EvidenceMismatch = 3,
    /// A drill scored below its thresholds.
    DrillBelowThreshold = 4,
    /// A run stopped by Ctrl-C (SIGINT): 128 + 2, as a shell reports it. The journal ends with
    /// `run_interrupted`; `respond resume RUN_DIR` continues.
    Interrupted = 130,
    /// A run stopped by SIGTERM: 128 + 15. As [`Code::Interrupted`].
    Terminated = 143,
}

impl Code {
    pub fn as_u8(self) -> u8 {
        self as i32 as u8
    }

    /// The code of a run stopped by `sig`.
    pub fn interrupted_by(sig: crate::engine::interrupt::Signal) -> Self {
        match sig {
            crate::engine::interrupt::Signal::Interrupt => Code::Interrupted,
            crate::engine::interrupt::Signal::Terminate => Code::Terminated,
        }
    }
}

/// A failure as the user sees it: what went wrong, and what to do about it.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            hint: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Code::Usage, message)
    }
    pub fn run(message: impl Into<String>) -> Self {
        Self::new(Code::RunFailed, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::run(format!("I/O error: {e}"))
    }
}
