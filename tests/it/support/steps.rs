//! Test-only step kinds and helpers for the engine tests (never part of the product).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use respond::engine::{self, journal, RunReport, RunSpec};
use respond::output::{Printer, Verbosity};
use respond::rundir::RunDir;
use respond::steps::{
    builtin, ArgSpec, ArgType, Effect, Registry, Services, StepContext, StepError, StepInfo,
    StepKind, StepOutcome,
};

/// The descriptive half of a test step kind.
macro_rules! meta {
    ($name:expr, $effect:expr, $args:expr, $outputs:expr) => {
        fn info(&self) -> &'static StepInfo {
            const INFO: StepInfo = StepInfo {
                name: $name,
                effect: $effect,
                description: $name,
                args: $args,
                outputs: $outputs,
            };
            &INFO
        }
    };
}

/// The world the test step kinds act on: how often each step wrote or was attempted.
#[derive(Default)]
pub struct World {
    pub writes: Mutex<HashMap<String, u32>>,
    pub attempts: Mutex<HashMap<String, u32>>,
}

impl World {
    pub fn writes(&self, id: &str) -> u32 {
        *self.writes.lock().unwrap().get(id).unwrap_or(&0)
    }
    pub fn total_writes(&self) -> u32 {
        self.writes.lock().unwrap().values().sum()
    }
    fn record_write(&self, id: &str) {
        *self
            .writes
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default() += 1;
    }
    pub fn attempts_of(&self, id: &str) -> u32 {
        *self.attempts.lock().unwrap().get(id).unwrap_or(&0)
    }
    fn attempt(&self, id: &str) -> u32 {
        let mut a = self.attempts.lock().unwrap();
        let n = a.entry(id.to_string()).or_default();
        *n += 1;
        *n
    }
}

fn int(args: &Map<String, Value>, k: &str) -> u64 {
    args.get(k).and_then(Value::as_u64).unwrap_or(0)
}

const READ_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "value",
        ty: ArgType::Any,
        required: false,
        description: "echoed as output `value`",
    },
    ArgSpec {
        name: "fail_times",
        ty: ArgType::Integer,
        required: false,
        description: "fail this many attempts first",
    },
    ArgSpec {
        name: "sleep_ms",
        ty: ArgType::Integer,
        required: false,
        description: "sleep before answering",
    },
];

/// `test.read`: a read that can be flaky or slow.
pub struct Read(pub Arc<World>);

#[async_trait]
impl StepKind for Read {
    meta!("test.read", Effect::Read, READ_ARGS, &["value", "attempt"]);
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let n = self.0.attempt(&ctx.step_id);
        let sleep = int(args, "sleep_ms");
        if sleep > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(sleep)).await;
        }
        if u64::from(n) <= int(args, "fail_times") {
            return Err(StepError::failed(format!("flaky read, attempt {n}")));
        }
        let mut outputs = Map::new();
        outputs.insert(
            "value".into(),
            args.get("value").cloned().unwrap_or(Value::Null),
        );
        outputs.insert("attempt".into(), json!(n));
        Ok(StepOutcome {
            outputs,
            summary: format!("read on attempt {n}"),
            artifacts: vec![],
        })
    }
}

const WRITE_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "tag",
        ty: ArgType::Any,
        required: false,
        description: "recorded",
    },
    ArgSpec {
        name: "fail",
        ty: ArgType::String,
        required: false,
        description: "fail with this message (before writing)",
    },
    ArgSpec {
        name: "sleep_ms",
        ty: ArgType::Integer,
        required: false,
        description: "hang this long after writing",
    },
];

/// `test.write`: counts its writes; its post-condition is "this step's write happened".
pub struct Write(pub Arc<World>);

#[async_trait]
impl StepKind for Write {
    meta!("test.write", Effect::Write, WRITE_ARGS, &["written"]);
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        self.0.attempt(&ctx.step_id);
        if let Some(msg) = args.get("fail").and_then(Value::as_str) {
            return Err(StepError::failed(msg.to_string()));
        }
        self.0.record_write(&ctx.step_id);
        let sleep = int(args, "sleep_ms");
        if sleep > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(sleep)).await;
        }
        let mut outputs = Map::new();
        outputs.insert(
            "written".into(),
            args.get("tag").cloned().unwrap_or(json!(true)),
        );
        Ok(StepOutcome {
            outputs,
            summary: "wrote".into(),
            artifacts: vec![],
        })
    }
    async fn check_done(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        if self.0.writes(&ctx.step_id) > 0 {
            let mut outputs = Map::new();
            outputs.insert(
                "written".into(),
                args.get("tag").cloned().unwrap_or(json!(true)),
            );
            Ok(Some(StepOutcome {
                outputs,
                summary: "write found".into(),
                artifacts: vec![],
            }))
        } else {
            Ok(None)
        }
    }
    fn describe(&self, args: &Map<String, Value>) -> String {
        format!(
            "would write {}",
            args.get("tag").cloned().unwrap_or(Value::Null)
        )
    }
}

/// `test.undecidable`: a notify step whose effect cannot be checked after a crash.
pub struct Undecidable(pub Arc<World>);

#[async_trait]
impl StepKind for Undecidable {
    meta!("test.undecidable", Effect::Notify, &[], &[]);
    async fn run(
        &self,
        ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        self.0.record_write(&ctx.step_id);
        Ok(StepOutcome {
            summary: "notified".into(),
            ..Default::default()
        })
    }
}

/// `test.barrier`: waits until `n` steps are inside it at once.
pub struct Barrier(pub Arc<tokio::sync::Barrier>);

#[async_trait]
impl StepKind for Barrier {
    meta!("test.barrier", Effect::Read, &[], &[]);
    async fn run(
        &self,
        _ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        self.0.wait().await;
        Ok(StepOutcome {
            summary: "met".into(),
            ..Default::default()
        })
    }
}

const MSG_ARGS: &[ArgSpec] = &[ArgSpec {
    name: "message",
    ty: ArgType::String,
    required: true,
    description: "text",
}];

/// `test.panic`: panics with its message.
pub struct Panic;

#[async_trait]
impl StepKind for Panic {
    meta!("test.panic", Effect::Write, MSG_ARGS, &[]);
    async fn run(
        &self,
        _ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        panic!("{}", args["message"].as_str().unwrap_or(""));
    }
}

/// `test.leak`: puts its message (a secret) and its encodings into outputs, summary, and,
/// when `fail` is set, into its error.
pub struct Leak;

const LEAK_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "message",
        ty: ArgType::String,
        required: true,
        description: "text",
    },
    ArgSpec {
        name: "fail",
        ty: ArgType::Boolean,
        required: false,
        description: "fail",
    },
];

#[async_trait]
impl StepKind for Leak {
    meta!(
        "test.leak",
        Effect::Read,
        LEAK_ARGS,
        &["plain", "b64", "pct", "nested"]
    );
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        use base64::Engine as _;
        let s = args["message"].as_str().unwrap_or("").to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&s);
        let pct = percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        ctx.rundir
            .write(
                &format!("leak-{}.txt", ctx.step_id),
                format!("{s} {b64} {pct}").as_bytes(),
            )
            .map_err(StepError::Io)?;
        if args.get("fail").and_then(Value::as_bool).unwrap_or(false) {
            return Err(StepError::with_hint(
                format!("failed with {s}"),
                format!("hint {b64} {pct}"),
            ));
        }
        let mut outputs = Map::new();
        outputs.insert("plain".into(), json!(s));
        outputs.insert("b64".into(), json!(b64));
        outputs.insert("pct".into(), json!(pct));
        outputs.insert("nested".into(), json!({"list": [s, "x"]}));
        Ok(StepOutcome {
            outputs,
            summary: format!("leaked {s}"),
            artifacts: vec![format!("leak-{}.txt", ctx.step_id)],
        })
    }
}

const WAIT_ARGS: &[ArgSpec] = &[
    ArgSpec {
        name: "wait_ms",
        ty: ArgType::Integer,
        required: true,
        description: "the longest it says it waits",
    },
    ArgSpec {
        name: "sleep_ms",
        ty: ArgType::Integer,
        required: false,
        description: "how long it really takes",
    },
];

/// `test.wait`: a read that owns its waiting (up to `wait_ms`) and takes `sleep_ms`.
pub struct Wait(pub Arc<World>);

#[async_trait]
impl StepKind for Wait {
    meta!("test.wait", Effect::Read, WAIT_ARGS, &["waited"]);
    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        self.0.attempt(&ctx.step_id);
        tokio::time::sleep(std::time::Duration::from_millis(int(args, "sleep_ms"))).await;
        Ok(StepOutcome {
            summary: "waited".into(),
            ..Default::default()
        })
    }
    fn owns_wait(&self, args: &Map<String, Value>) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_millis(int(args, "wait_ms")))
    }
}

/// `test.nosim`: a destructive step a dry run cannot simulate.
pub struct NoSim(pub Arc<World>);

#[async_trait]
impl StepKind for NoSim {
    meta!("test.nosim", Effect::Destructive, &[], &["gone"]);
    async fn run(
        &self,
        ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        self.0.record_write(&ctx.step_id);
        Ok(StepOutcome::default())
    }
    fn simulable(&self) -> bool {
        false
    }
}

pub struct Harness {
    pub world: Arc<World>,
    pub barrier: Arc<tokio::sync::Barrier>,
    pub registry: Registry,
    pub tmp: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_barrier(2)
    }
    pub fn with_barrier(n: usize) -> Self {
        let world = Arc::new(World::default());
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let mut registry = builtin::registry();
        registry.register(Arc::new(Read(world.clone())));
        registry.register(Arc::new(Write(world.clone())));
        registry.register(Arc::new(Undecidable(world.clone())));
        registry.register(Arc::new(Barrier(barrier.clone())));
        registry.register(Arc::new(Panic));
        registry.register(Arc::new(Leak));
        registry.register(Arc::new(NoSim(world.clone())));
        registry.register(Arc::new(Wait(world.clone())));
        Harness {
            world,
            barrier,
            registry,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn services() -> Arc<Services> {
        Arc::new(Services {
            exchange: None,
            bot_logs: Default::default(),
            interactive: false,
            assume_yes: true,
        })
    }

    pub fn printer() -> Printer {
        Printer::plain(Verbosity::Quiet)
    }

    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub async fn start(
        &self,
        name: &str,
        yaml: &str,
        inputs: &[(&str, &str)],
        dry_run: bool,
    ) -> Result<RunReport, engine::EngineError> {
        let dir = self.run_dir(name);
        let rundir = RunDir::create(&dir).unwrap();
        let spec = RunSpec {
            playbook_path: PathBuf::from(format!("{name}.yaml")),
            playbook_source: yaml.to_string(),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            capabilities: json!({"name": "mock", "revoke_key_by_api": false}),
            dry_run,
        };
        engine::start(
            spec,
            &self.registry,
            Self::services(),
            &Self::printer(),
            rundir,
        )
        .await
    }
}

/// The journal's entries (chain verified).
pub fn entries(dir: &Path) -> Vec<journal::Entry> {
    journal::verify_chain(&dir.join(journal::FILE_NAME)).unwrap()
}

/// Position of the first entry with `event` for `step`.
pub fn index_of(entries: &[journal::Entry], event: &str, step: &str) -> usize {
    entries
        .iter()
        .position(|e| e.event == event && e.data["step"] == step)
        .unwrap_or_else(|| panic!("no {event} for {step}"))
}
