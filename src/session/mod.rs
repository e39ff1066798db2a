//! The run assembly `leak`, `resume`, `analyze` and `drill` share: choosing the playbook,
//! connecting the exchange's adapters (through its [`Descriptor`] in the registry) to the run
//! directory, running the engine, holding the run's lock, checking a bundle before writing
//! into it, sealing it and telling the user where everything is. The commands in `commands/`
//! only turn flags into these settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::BotLogArgs;
use crate::credentials::KeyPair;
use crate::engine::{self, EngineError, RunReport, RunSpec};
use crate::exchange::registry::{self, ConnectConfig, Descriptor, KeyMaterial, MasterKey};
use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::playbook::inputs::InputError;
use crate::playbook::Playbook;
use crate::report::verify::{Preflight, SealState};
use crate::rundir::{self, LockError, RunDir, RunLock};
use crate::steps::{builtin, ExchangeSession, Services};

/// The embedded playbook an exchange uses by default (its descriptor's; `leak` otherwise).
pub fn default_playbook(exchange: &str) -> String {
    registry::get(exchange)
        .map(|d| d.default_playbook)
        .unwrap_or("leak")
        .to_string()
}

/// The playbook source and where it came from (`embedded:NAME` for built-ins).
pub fn playbook_source(file: Option<&Path>, exchange: &str) -> Result<(PathBuf, String), Failure> {
    match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::usage(format!("cannot read playbook {}: {e}", p.display()))
            })?;
            Ok((p.to_path_buf(), text))
        }
        None => {
            let name = default_playbook(exchange);
            let pb = crate::playbook::embedded_named(&name).ok_or_else(|| {
                Failure::run(format!(
                    "the embedded playbook {name} is missing from this build"
                ))
            })?;
            Ok((
                PathBuf::from(format!("embedded:{name}")),
                pb.source.to_string(),
            ))
        }
    }
}

/// Validates a playbook before anything touches the exchange; every problem as
/// `file:line:column`.
pub fn validate_playbook(path: &Path, source: &str) -> Result<Playbook, Failure> {
    let registry = builtin::registry();
    crate::playbook::load_str(path, source, &registry).map_err(|e| {
        Failure::usage(e.to_string()).with_hint("`respond playbook check FILE` lists every problem")
    })
}

/// Types the run's inputs against the playbook and its declared constraints, so a value that
/// could only fail once a step runs is refused before a bundle exists or a request is sent.
pub fn check_inputs(pb: &Playbook, inputs: &BTreeMap<String, String>) -> Result<(), InputError> {
    crate::playbook::inputs::resolve(pb, inputs, &serde_json::Map::new(), crate::time::now())
        .map(|_| ())
}

/// An input error as the user reads it (exit 2).
pub fn input_failure(e: InputError) -> Failure {
    let f = Failure::usage(e.to_string());
    match e.hint {
        Some(h) => f.with_hint(h),
        None => f,
    }
}

/// The exchange connection of a run: which keys, and where the API is.
pub struct Connection {
    pub exchange: String,
    pub api_url: Option<String>,
    pub primary: Option<KeyPair>,
    pub readonly: Option<KeyPair>,
    /// A parent account's key and the sub-account of the leaked key, for exchanges where the
    /// parent can delete it by API.
    pub master: Option<(KeyPair, Option<String>)>,
}

impl Connection {
    /// The exchange's descriptor.
    pub fn descriptor(&self) -> Result<&'static Descriptor, Failure> {
        crate::investigation::exchange_named(&self.exchange).map_err(Failure::usage)
    }

    /// Loads credentials for `exchange` (environment, `--credentials FILE`, or a prompt) and
    /// pairs them with the API URL.
    pub fn load(
        exchange: String,
        connect: &crate::cli::ConnectArgs,
        interactive: bool,
    ) -> Result<Self, Failure> {
        let creds =
            crate::credentials::load(&exchange, connect.credentials.as_deref(), interactive)
                .map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Connection {
            exchange,
            api_url: connect.api_url.clone(),
            primary: creds.primary,
            readonly: creds.readonly,
            master: creds.master.map(|m| (m, creds.sub_account)),
        })
    }

    /// Checks the URL policy before a run directory exists (plain http only to loopback).
    pub fn check(&self) -> Result<(), Failure> {
        if let Some(u) = &self.api_url {
            crate::exchange::http::validate_base_url(u).map_err(|e| {
                Failure::usage(e.to_string())
                    .with_hint("use https, or plain http to 127.0.0.1 / localhost for a mock")
            })?;
        }
        if self.primary.is_none() && self.readonly.is_none() {
            let up = self.descriptor()?.env_prefix;
            return Err(Failure::usage("no exchange credentials were given").with_hint(format!(
                "set {up}_ACCESS_KEY and {up}_SECRET_KEY in the environment, pass --credentials FILE (chmod 600), or run on a terminal to be prompted"
            )));
        }
        Ok(())
    }

    /// The masked id of the key under investigation.
    pub fn key_masked(&self) -> String {
        self.primary
            .as_ref()
            .or(self.readonly.as_ref())
            .map(|k| crate::secret::mask_key(&k.access_key))
            .unwrap_or_default()
    }

    /// Builds the adapters through the exchange's descriptor, recording into `rundir`. Without
    /// the old key (a resume with only a read-only key) the read-only key stands in and reads
    /// go to it from the start.
    pub fn session(
        &self,
        rundir: &RunDir,
    ) -> Result<(ExchangeSession, serde_json::Value), Failure> {
        let desc = self.descriptor()?;
        let material = |k: &KeyPair| KeyMaterial {
            access_key: k.access_key.clone(),
            secret_key: k.secret_key.clone(),
            passphrase: k.passphrase.clone(),
        };
        let keys: Vec<KeyMaterial> = match (&self.primary, &self.readonly) {
            (Some(p), r) => std::iter::once(p).chain(r).map(material).collect(),
            (None, Some(r)) => vec![material(r)],
            (None, None) => return Err(Failure::usage("no exchange credentials were given")),
        };
        let cfg = ConnectConfig {
            base_url: self.api_url.clone(),
            recorder: Some(rundir.clone()),
            master: self.master.as_ref().map(|(k, sub)| MasterKey {
                key: material(k),
                sub_account: sub.clone(),
            }),
        };
        let mut adapters = (desc.connect)(&cfg, &keys)
            .map_err(|e| Failure::usage(e.to_string()))?
            .into_iter();
        let primary = adapters
            .next()
            .ok_or_else(|| Failure::run(format!("the {} adapter connected no key", desc.name)))?;
        let readonly = adapters.next();
        let mut caps = serde_json::to_value(primary.capabilities())
            .map_err(|e| Failure::run(e.to_string()))?;
        // `exchange.reads_after_revoke` (crate::playbook::validate::SESSION_FIELDS).
        caps["reads_after_revoke"] =
            serde_json::Value::Bool(self.primary.is_some() && readonly.is_some());
        let exchange = &self.exchange;
        let session = if self.primary.is_none() {
            let old = crate::exchange::key_history(exchange, rundir.path()).unwrap_or_default();
            ExchangeSession::readonly_only(primary, old)
        } else {
            ExchangeSession::new(primary, readonly)
        };
        // A resume: a key the run saw accepted before, with these same credentials (not only
        // the same key name), still counts as seen accepted.
        for k in [
            session.primary(),
            session.readonly().unwrap_or(session.primary()),
        ] {
            let h = crate::exchange::key_history_of(exchange, rundir.path(), k.as_ref());
            if let Some((at, _)) = h.accepted {
                session.remember_accepted(&k.key_id_masked(), at);
            }
        }
        Ok((session, caps))
    }
}

/// How a run is to be carried out.
pub struct RunSettings {
    pub playbook: Option<PathBuf>,
    pub inputs: BTreeMap<String, String>,
    pub bot_logs: BotLogArgs,
    pub out: PathBuf,
    pub dry_run: bool,
    pub assume_yes: bool,
    pub interactive: bool,
    /// The command that runs it again from the start, for a run that cannot be resumed (a
    /// drill: its mock exchange stops with it); `None`: `respond resume DIR` continues it.
    pub rerun: Option<String>,
}

/// Runs the leak playbook in a new bundle under `settings.out` and seals it. When `out` cannot
/// be written, the bundle goes to the private fallback directory ([`fallback_roots`]) and the
/// run goes on: containment never waits for a local problem.
pub async fn run_new(
    settings: RunSettings,
    conn: &Connection,
    printer: &Printer,
) -> Result<RunReport, Failure> {
    conn.check()?;
    let (pb_path, pb_source) = playbook_source(settings.playbook.as_deref(), &conn.exchange)?;
    let pb = validate_playbook(&pb_path, &pb_source)?;
    check_inputs(&pb, &settings.inputs).map_err(input_failure)?;
    let started = crate::time::now();
    let name = rundir::bundle_name(started, &conn.exchange, &conn.key_masked());
    let rundir = create_bundle(&settings.out, &name, printer)?;
    let dir = rundir.path().to_path_buf();
    let _lock = lock_run(&dir)?;
    printer.status(&format!("evidence bundle: {}", dir.display()));
    let (session, capabilities) = conn.session(&rundir)?;
    let services = Arc::new(Services {
        exchange: Some(session),
        bot_logs: settings.bot_logs,
        interactive: settings.interactive,
        assume_yes: settings.assume_yes,
    });
    let spec = RunSpec {
        playbook_path: pb_path,
        playbook_source: pb_source,
        inputs: settings.inputs,
        capabilities,
        dry_run: settings.dry_run,
    };
    let registry = builtin::registry();
    let after = match settings.rerun {
        Some(command) => AfterInterrupt::RunAgain(command),
        None => AfterInterrupt::Resume(resume_command(&dir)),
    };
    listen_for_interrupts(&after);
    let report = engine::start(spec, &registry, services, printer, rundir)
        .await
        .map_err(|e| engine_failure_printed(e, &dir, &after, printer))?;
    seal(&dir)?;
    Ok(report)
}

/// Where a bundle goes when `--out` cannot be written, in order: the user's state directory
/// (`$XDG_STATE_HOME/respond/evidence`, else `~/.local/state/respond/evidence`), then
/// `respond-evidence-<uid>` in the temporary directory.
pub fn fallback_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local").join("state"))
        });
    if let Some(s) = state {
        roots.push(s.join("respond").join("evidence"));
    }
    // A per-user name: the temporary directory is shared (ownership is checked on use).
    let user = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|m| m.uid().to_string())
            .ok()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "user".into())
    };
    roots.push(std::env::temp_dir().join(format!("respond-evidence-{user}")));
    roots
}

/// Creates the bundle `name` in the fallback `root`: `root` is created 0700 (or tightened to
/// 0700) and must be a real directory owned by the same user as the bundle this process just
/// created in it; otherwise the bundle is removed again and the root refused.
fn create_in_fallback(root: &Path, name: &str) -> std::io::Result<RunDir> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    crate::fsutil::create_private_dir(root)?;
    let meta = std::fs::symlink_metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let dir = root.join(name);
    let rundir = RunDir::create(&dir)?;
    let mine = std::fs::symlink_metadata(&dir)?.uid();
    if meta.uid() != mine {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} belongs to another user", root.display()),
        ));
    }
    if meta.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(rundir)
}

/// Creates the run's bundle `name` under `out`, or, when that fails, under the first fallback
/// root that works, saying loudly where.
fn create_bundle(out: &Path, name: &str, printer: &Printer) -> Result<RunDir, Failure> {
    let wanted = out.join(name);
    let first = match RunDir::create(&wanted) {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    let mut tried = vec![format!("{}: {first}", wanted.display())];
    for root in fallback_roots() {
        let dir = root.join(name);
        match create_in_fallback(&root, name) {
            Ok(r) => {
                printer.warn(&format!(
                    "cannot create the evidence bundle under --out {}: {first}\n  \
                     the run goes on (containment first); the evidence is kept in {} \
                     (private, 0700): move it where you want once the incident is handled",
                    out.display(),
                    dir.display()
                ));
                return Ok(r);
            }
            Err(e) => tried.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(Failure::run(format!(
        "cannot create the evidence bundle anywhere: {}",
        tried.join("; ")
    ))
    .with_hint("pass --out DIR on a writable disk"))
}

/// What a run stopped by a signal tells the user to do next.
enum AfterInterrupt {
    /// `respond resume DIR` (quoted for the shell) continues it.
    Resume(String),
    /// It cannot be resumed; this command runs it again from the start.
    RunAgain(String),
}

impl AfterInterrupt {
    fn after_stop(&self) -> engine::interrupt::AfterStop {
        match self {
            AfterInterrupt::Resume(c) => engine::interrupt::AfterStop {
                command: c.clone(),
                resumes: true,
            },
            AfterInterrupt::RunAgain(c) => engine::interrupt::AfterStop {
                command: c.clone(),
                resumes: false,
            },
        }
    }
}

/// Ctrl-C and SIGTERM stop the run cleanly from here on (see [`engine::interrupt`]).
fn listen_for_interrupts(after: &AfterInterrupt) {
    engine::interrupt::install();
    engine::interrupt::set_resume_line(after.after_stop());
}

/// `respond resume DIR`, quoted for the shell.
pub fn resume_command(dir: &Path) -> String {
    crate::output::respond_command(["resume", &dir.display().to_string()])
}

/// Before `resume` asks for credentials: a read-only look at the bundle, so that one that
/// does not match its seal is refused (exit 3) and a complete one is reported as such
/// (`Some(report)`) without a key being needed. [`run_resume`] checks again under the lock.
pub fn resume_precheck(
    dir: &Path,
    replay: bool,
    playbook: Option<&Path>,
    printer: &Printer,
) -> Result<Option<RunReport>, Failure> {
    // A bundle being written does not match its seal until its writer seals it: say who.
    drop(RunLock::shared(dir).map_err(lock_failure)?);
    let pf = check_before_writing(dir, "resume")?;
    if seal_cut_off(dir, &pf) && complete_run(dir, &pf, replay, playbook, None)?.is_some() {
        // Finishing the seal is a write: under the run's lock, checked again.
        let _lock = lock_run(dir)?;
        let pf = check_before_writing(dir, "resume")?;
        return complete_run(dir, &pf, replay, playbook, Some(printer));
    }
    complete_run(dir, &pf, replay, playbook, Some(printer))
}

/// The run's first seal was cut off after SHA256SUMS and before manifest.json: the preflight
/// tolerates it (every file matches SHA256SUMS), but the bundle does not verify until the seal
/// is finished.
fn seal_cut_off(dir: &Path, pf: &Preflight) -> bool {
    pf.state == SealState::Sealed
        && std::fs::symlink_metadata(dir.join(crate::report::manifest::MANIFEST_FILE)).is_err()
}

/// The run in `dir` is sealed, verified and complete, and nothing asks to redo any of it. With
/// a printer (the caller holds the run's lock when the seal was cut off), a seal cut off
/// between its two files is finished first, and the user is told so.
fn complete_run(
    dir: &Path,
    pf: &Preflight,
    replay: bool,
    playbook: Option<&Path>,
    printer: Option<&Printer>,
) -> Result<Option<RunReport>, Failure> {
    if pf.state != SealState::Sealed || replay || playbook.is_some() {
        return Ok(None);
    }
    let Some(report) = engine::resume::completed(dir, &pf.entries) else {
        return Ok(None);
    };
    let Some(printer) = printer else {
        return Ok(Some(report));
    };
    let shown = dir.display();
    if seal_cut_off(dir, pf) {
        seal(dir)?;
        printer.out(&format!(
            "{shown} is complete: every step was done and every file matched SHA256SUMS, but the run was cut off before manifest.json was written; resume finished its seal (no step ran again)"
        ));
    } else {
        printer.out(&format!(
            "{shown} is complete: sealed, verified, and its last session ended with every step done; nothing to resume, nothing was changed"
        ));
    }
    Ok(Some(report))
}

/// Continues an interrupted run and seals it again. Holds the run's lock throughout; refuses
/// (exit 3, nothing written) a bundle that does not match its seal or its own records, and
/// leaves a complete, sealed run as it is.
pub async fn run_resume(
    dir: &Path,
    conn: &Connection,
    playbook: Option<&Path>,
    mut opts: engine::ResumeOptions,
    settings: (bool, bool),
    printer: &Printer,
) -> Result<RunReport, Failure> {
    conn.check()?;
    let _lock = lock_run(dir)?;
    let pf = check_before_writing(dir, "resume")?;
    if let Some(report) = complete_run(dir, &pf, !opts.replay.is_empty(), playbook, Some(printer))?
    {
        return Ok(report);
    }
    opts.reopen = reopen_entry(&pf, "resume");
    let registry = builtin::registry();
    if pf.state == SealState::Reopened {
        // A command opened the sealed bundle and was cut off before sealing it again: the
        // reports it may have been rewriting are vouched for by nothing, so the steps that
        // write them from the evidence run again (and what follows them).
        for e in pf.entries.iter().filter(|e| e.event == "step_end") {
            let whole = e.data["uses"]
                .as_str()
                .and_then(|u| registry.get(u))
                .is_some_and(|k| k.reads_whole_bundle());
            if let (true, Some(id)) = (whole, e.data["step"].as_str()) {
                if !opts.replay.iter().any(|r| r == id) {
                    opts.replay.push(id.to_string());
                }
            }
        }
    }
    let rundir = RunDir::open(dir)
        .map_err(|e| Failure::usage(format!("{} is not a run directory: {e}", dir.display())))?;
    let (session, _caps) = conn.session(&rundir)?;
    let services = Arc::new(Services {
        exchange: Some(session),
        bot_logs: BotLogArgs::default(),
        interactive: settings.0,
        assume_yes: settings.1,
    });
    let pb = match playbook {
        Some(p) => Some((
            p,
            std::fs::read_to_string(p).map_err(|e| {
                Failure::usage(format!("cannot read playbook {}: {e}", p.display()))
            })?,
        )),
        None => None,
    };
    let after = AfterInterrupt::Resume(resume_command(dir));
    listen_for_interrupts(&after);
    let report = engine::resume(dir, pb, &registry, services, printer, opts)
        .await
        .map_err(|e| engine_failure_printed(e, dir, &after, printer))?;
    seal(dir)?;
    Ok(report)
}

/// Takes the run's lock (one writer per run): a second process is refused at once (exit 2),
/// naming the holder.
pub fn lock_run(dir: &Path) -> Result<RunLock, Failure> {
    RunLock::acquire(dir).map_err(lock_failure)
}

/// A lock that could not be taken, as the user reads it: busy is exit 2.
pub fn lock_failure(e: LockError) -> Failure {
    let hint = e.hint();
    match e {
        LockError::Busy { .. } => Failure::usage(e.to_string()),
        LockError::Io { .. } => Failure::run(e.to_string()),
    }
    .with_hint(hint)
}

/// The checks every command runs before it writes into (and re-seals) a bundle: what
/// `respond evidence verify` checks for a sealed one, the journal and the raw responses for
/// an interrupted one. A mismatch is exit 3, naming every file, with nothing written.
pub fn check_before_writing(dir: &Path, command: &str) -> Result<Preflight, Failure> {
    let pf = crate::report::verify::preflight(dir).map_err(|e| {
        Failure::usage(e.to_string())
            .with_hint("pass the run directory that holds journal.jsonl and raw/")
    })?;
    if pf.ok() {
        return Ok(pf);
    }
    let shown = crate::report::sanitize::terminal(&dir.display().to_string());
    Err(Failure::new(
        Code::EvidenceMismatch,
        format!(
            "{shown} does not match {}; `respond {command}` wrote nothing:\n  {}",
            match pf.state {
                SealState::Unsealed => "what the run recorded",
                SealState::Sealed | SealState::Reopened => "its seal",
            },
            pf.problems.join("\n  ")
        ),
    )
    .with_hint(format!(
        "`respond evidence verify {shown}` lists the same; to analyze the evidence anyway, `respond analyze {shown} --out DIR` writes a new bundle that records these mismatches"
    )))
}

/// The journal entry a command writes first when it opens a sealed bundle (`None` for a bundle
/// that was not sealed, or already reopened).
pub fn reopen_entry(pf: &Preflight, by: &str) -> Option<serde_json::Value> {
    (pf.state == SealState::Sealed).then(|| {
        serde_json::json!({
            "by": by,
            "version": env!("CARGO_PKG_VERSION"),
            "verified": true,
            "sealed_entries": pf.entries.len(),
        })
    })
}

/// Writes SHA256SUMS and manifest.json: the last write of every run. A raw response that no
/// longer matches its sidecar is never sealed over (exit 3).
pub fn seal(dir: &Path) -> Result<(), Failure> {
    seal_with(dir, &crate::report::manifest::Written::default())
}

/// [`seal`], with the hashes of files this process wrote and hashed as it wrote them
/// ([`crate::report::manifest::seal_with`]).
pub fn seal_with(dir: &Path, written: &crate::report::manifest::Written) -> Result<(), Failure> {
    crate::report::manifest::seal_with(dir, written).map(|_| ()).map_err(|e| {
        let shown = dir.display();
        let code = match e {
            crate::report::ReportError::RawMismatch { .. } => Code::EvidenceMismatch,
            _ => Code::RunFailed,
        };
        Failure::new(
            code,
            format!("could not seal the bundle (SHA256SUMS, manifest.json): {e}"),
        )
        .with_hint(format!(
            "the evidence files are kept in {shown}; `respond evidence verify {shown}` lists what does not match"
        ))
    })
}

/// An engine error as the user reads it. An interrupted run first prints its closing lines
/// (where the evidence is, the exact resume command) on stdout.
fn engine_failure_printed(
    e: EngineError,
    dir: &Path,
    after: &AfterInterrupt,
    printer: &Printer,
) -> Failure {
    if let EngineError::Interrupted { signal, .. } = &e {
        printer.out("");
        printer.out(&format!("evidence:  {}", dir.display()));
        let (hint, code) = match after {
            AfterInterrupt::Resume(resume) => {
                printer.out(&format!("resume:    {resume}"));
                (
                    format!(
                        "nothing is lost: everything gathered is kept in {}; continue with: {resume}",
                        dir.display()
                    ),
                    Code::interrupted_by(*signal),
                )
            }
            AfterInterrupt::RunAgain(again) => {
                printer.out(&format!("run again: {again}"));
                (
                    format!(
                        "a drill cannot be resumed: its mock exchange stopped with it. What it gathered is kept in {}; run the drill again with: {again}",
                        dir.display()
                    ),
                    Code::interrupted_by(*signal),
                )
            }
        };
        return Failure::new(code, e.to_string()).with_hint(hint);
    }
    engine_failure(e, Some(dir))
}

/// An engine error as the user reads it.
pub fn engine_failure(e: EngineError, dir: Option<&Path>) -> Failure {
    let usage = e.is_usage();
    let hint = e.hint();
    let mut f = if usage {
        Failure::usage(e.to_string())
    } else {
        Failure::run(e.to_string())
    };
    match (hint, dir) {
        (Some(h), _) => f = f.with_hint(h),
        (None, Some(d)) if !usage => {
            f = f.with_hint(format!(
                "everything gathered is kept in {}; continue with: {}",
                d.display(),
                resume_command(d)
            ))
        }
        _ => {}
    }
    f
}

/// The bot logs the run's import step could not use.
fn rejected_bot_logs(report: &RunReport) -> Vec<crate::investigation::RejectedBotLog> {
    report
        .steps
        .iter()
        .filter(|s| s.uses == "analysis.import_bot_logs" && s.status.has_outputs())
        .filter_map(|s| s.outputs.get("rejected").cloned())
        .filter_map(|v| serde_json::from_value::<Vec<_>>(v).ok())
        .flatten()
        .collect()
}

/// The closing lines of a run: where the evidence and the checklist are, how to verify, how to
/// resume a failed run, and how to add a bot log that was left out.
///
/// The code: 1 when a step failed (resume first); else 2 when a bot log was left out (the
/// input was bad, though containment and the bundle are complete without it); else 0.
pub fn print_outcome(report: &RunReport, printer: &Printer) -> Code {
    use crate::output::respond_command;
    report.print(printer);
    let dir = report.dir.display().to_string();
    printer.out("");
    // The claim first: the estimated loss and its parts, as the report states it.
    if let Some(loss) = report
        .steps
        .iter()
        .rev()
        .filter(|s| s.uses == "report.evidence" && s.status.has_outputs())
        .find_map(|s| s.outputs.get("loss_text")?.as_str())
    {
        printer.out(&format!("loss:      {loss}"));
    }
    printer.out(&format!("evidence:  {dir}"));
    if report.dir.join("checklist.md").is_file() {
        printer.out(&format!("checklist: {dir}/checklist.md"));
    }
    if report.dir.join("support_ticket.md").is_file() {
        printer.out(&format!("ticket:    {dir}/support_ticket.md"));
    }
    printer.out(&format!(
        "verify:    {}",
        respond_command(["evidence", "verify", &dir])
    ));
    if !report.ok {
        printer.out(&format!("resume:    {}", resume_command(&report.dir)));
    }
    let rejected = rejected_bot_logs(report);
    for r in &rejected {
        printer.out(&format!("bot log:   LEFT OUT {}", r.error));
    }
    if !rejected.is_empty() {
        printer.out(&format!(
            "add it:    {}",
            respond_command(["analyze", &dir, "--bot-log", "FIXED_FILE"])
        ));
    }
    match report.exit_code() {
        Code::Ok if !rejected.is_empty() => Code::Usage,
        code => code,
    }
}
