//! Ctrl-C (SIGINT) and SIGTERM during a run.
//!
//! Signals belong to the process, so this is process state: [`install`] starts listening (a
//! command does it just before the engine runs, so a Ctrl-C at a credential prompt still ends
//! the process the usual way), and the scheduler waits on [`wait`] next to its steps. On the
//! first signal the scheduler stops every running step, waits until they are gone, journals
//! `run_interrupted` (fsynced like every entry) and returns [`super::EngineError::Interrupted`];
//! the command prints the exact `respond resume` line and exits 130 (SIGINT) or 143 (SIGTERM),
//! the codes a shell gives a process ended by those signals. A second signal while that happens
//! ends the process at once with the same code: the journal is fsynced per entry, so what is
//! on disk resumes like a crash.

use std::sync::OnceLock;

use tokio::sync::watch;

/// The signal that interrupted the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// `SIGINT`, `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// How the user sent it, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT (Ctrl-C)",
            Signal::Terminate => "SIGTERM",
        }
    }
}

struct State {
    tx: watch::Sender<Option<Signal>>,
    /// Printed when a second signal ends the process at once.
    resume_line: std::sync::Mutex<Option<AfterStop>>,
}

/// What the user does after stopping the run: the command, and whether it continues the run
/// (`respond resume DIR`) or runs it again from the start (a drill, which cannot be resumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterStop {
    pub command: String,
    pub resumes: bool,
}

impl AfterStop {
    /// `continue with: …` or `run it again with: …`.
    pub fn phrase(&self) -> String {
        if self.resumes {
            format!("continue with: {}", self.command)
        } else {
            format!("it cannot be resumed; run it again with: {}", self.command)
        }
    }
}

static STATE: OnceLock<State> = OnceLock::new();

fn state() -> &'static State {
    STATE.get_or_init(|| State {
        tx: watch::channel(None).0,
        resume_line: std::sync::Mutex::new(None),
    })
}

/// Starts listening for SIGINT and SIGTERM (once per process; later calls do nothing). Must be
/// called inside the tokio runtime.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.set(()).is_err() {
        return;
    }
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for SIGINT/SIGTERM; an interrupted run resumes like a crash");
        return;
    };
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => Signal::Interrupt,
                _ = term.recv() => Signal::Terminate,
            };
            raise(sig);
        }
    });
}

/// Records a signal as if it had arrived (the listener calls it; tests may too). A second one
/// ends the process at once.
pub fn raise(sig: Signal) {
    let st = state();
    if st.tx.borrow().is_some() {
        let line = st
            .resume_line
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut msg = format!(
            "respond: {} again: stopping now; the journal is written entry by entry",
            sig.describe()
        );
        if let Some(l) = line {
            msg.push_str(&format!(", {}", l.phrase()));
        }
        eprintln!("{}", crate::secret::redact(&msg));
        std::process::exit(i32::from(crate::exit::Code::interrupted_by(sig).as_u8()));
    }
    st.tx.send_replace(Some(sig));
}

/// The signal received so far, if any.
pub fn received() -> Option<Signal> {
    *state().tx.borrow()
}

/// Sets the command printed if a second signal ends the process.
pub fn set_resume_line(after: AfterStop) {
    *state()
        .resume_line
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(after);
}

/// The command set by [`set_resume_line`], if any.
pub fn resume_line() -> Option<AfterStop> {
    state()
        .resume_line
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Resolves once a signal has arrived (at once if one already did); never without one.
pub async fn wait() -> Signal {
    let mut rx = state().tx.subscribe();
    loop {
        if let Some(s) = *rx.borrow_and_update() {
            return s;
        }
        if rx.changed().await.is_err() {
            // The sender lives in a static: this cannot end. Wait forever regardless.
            std::future::pending::<()>().await;
        }
    }
}
