//! Secrets canary: a recognisable secret key is planted where it could travel, and must appear
//! in no byte the tool writes (every file of the bundle, walked) or prints (stdout, stderr at
//! `-vvv` with `RESPOND_LOG=trace`), nor on the process's command line.
//!
//! Paths it is pushed through: a full leak run against a mock whose leaked key has the canary
//! as its secret; the same run SIGKILLed mid-way and resumed; an "exchange" that answers every
//! request with an error body echoing the request (Authorization header, query, body); a panic
//! whose message contains the secret (the panic hook redacts it); credential files readable by
//! others (refused, exit 2, the value not echoed).
//!
//! Child processes: the tool spawns none (by design: no shell-outs, the webhook is an HTTP
//! client); the test checks `/proc/PID/task/*/children` of the running process is empty, so no
//! child could have inherited the environment that carries the credentials.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use respond::mock::{self, MockOptions};

use crate::support::child::run_test_in_child;
use crate::support::cli::*;
use crate::support::mock::*;
use crate::support::respond::Respond;
use crate::support::run_dir::*;

const CANARY: &str = "CANARYsecretKEY0do0not0leak0Zq81xW5tYv";
const CANARY_ACCESS: &str = "CanaryAccessKey00000000000000000000000001";

/// pump-and-dump with the leaked key's secret replaced by the canary.
fn canary_mock() -> Mock {
    let mut sc = mock::load("pump-and-dump", None).unwrap();
    let k = sc.keys.iter_mut().find(|k| k.label == "bot").unwrap();
    k.secret_key = Some(CANARY.into());
    Mock::start(sc, MockOptions::default())
}

/// Every file under `dir`, recursively, whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                files += 1;
                let b = std::fs::read(&p).unwrap();
                if b.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    assert!(files > 0, "{}: nothing to search", dir.display());
    hits
}

fn assert_clean(what: &str, dir: &Path, printed: &[&str]) {
    for needle in [CANARY.as_bytes(), b"CANARYsecret"] {
        let hits = files_containing(dir, needle);
        assert!(hits.is_empty(), "{what}: the secret is in {hits:?}");
    }
    for p in printed {
        assert!(
            !p.contains("CANARYsecret"),
            "{what}: the secret was printed:\n{p}"
        );
    }
}

/// No child process, and no secret on the command line, while `pid` runs.
fn check_process(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !cmdline.windows(12).any(|w| w == b"CANARYsecret"),
        "the secret is on the command line"
    );
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        assert!(
            children.trim().is_empty(),
            "respond spawned a child process: {children}"
        );
    }
    true
}

#[test]
fn canary_secret_never_leaves_the_process_in_a_full_run_a_crash_and_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = canary_mock();
    assert_eq!(mock.key("bot").secret_key, CANARY);
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");

    // A first run, SIGKILLed once the export has started (mid-run), with maximum verbosity.
    let mut child = leak(&mock, &out, &bot, &["-vvv"])
        .env("RESPOND_LOG", "trace")
        .spawn();
    let t0 = Instant::now();
    let mut checked = 0;
    loop {
        if child.exited() {
            break;
        }
        if check_process(child.id()) {
            checked += 1;
        }
        if bundle(&out).is_some_and(|d| step_ended(&d, "cancel_orders")) {
            mock.revoke();
            child.kill();
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "run never got to cancel"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = child.finish();
    assert!(checked > 0, "the process was never inspected");
    let dir = bundle(&out).unwrap();

    let resumed = resume(&mock, &dir)
        .arg("-vvv")
        .env("RESPOND_LOG", "trace")
        .run();
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert!(
        resumed.stderr.len() > 10_000,
        "-vvv should log a lot (got {} bytes)",
        resumed.stderr.len()
    );
    assert_clean(
        "crash + resume",
        &dir,
        &[
            &killed.stdout,
            &killed.stderr,
            &resumed.stdout,
            &resumed.stderr,
        ],
    );
}

/// An exchange that answers everything with 400 and a body echoing the request (a client
/// error, so the run fails fast instead of retrying).
async fn echo(headers: HeaderMap, uri: Uri, body: Bytes) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let msg = format!(
        "echo: {} {} auth={} body={} secret-as-sent={}",
        uri.path(),
        uri.query().unwrap_or_default(),
        auth,
        String::from_utf8_lossy(&body),
        headers
            .get("x-secret")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    );
    (
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": {"name": "echo_error", "message": msg}}).to_string(),
    )
}

#[test]
fn an_exchange_echoing_the_request_in_its_errors_does_not_make_the_secret_travel() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let app = axum::Router::new().fallback(echo);
        axum::serve(listener, app).await.unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ev");
    let url = format!("http://{addr}");
    let r = Respond::new()
        .args([
            "leak",
            "--exchange",
            "upbit",
            "-vvv",
            "--yes",
            "--api-url",
            &url,
            "--out",
        ])
        .arg(&out)
        .args([
            "--input",
            "revoke_timeout=1s",
            "--input",
            "revoke_interval=100ms",
        ])
        .env("UPBIT_ACCESS_KEY", CANARY_ACCESS)
        .env("UPBIT_SECRET_KEY", CANARY)
        .env("RESPOND_LOG", "trace")
        .run();
    assert_ne!(
        r.code,
        Some(0),
        "every request failed, the run cannot succeed"
    );
    assert!(
        r.stderr.contains("echo:") || !files_containing(&out, b"echo:").is_empty(),
        "the echoing error bodies were never seen"
    );
    assert_clean("echoing exchange", &out, &[&r.stdout, &r.stderr]);
    // The signed token (full access key, valid signature) must not travel either.
    let jwt_header = "eyJhbGciOi";
    let hits = files_containing(&out, jwt_header.as_bytes());
    assert!(hits.is_empty(), "a signed token was written into {hits:?}");
    assert!(
        !r.stderr.contains(jwt_header) && !r.stdout.contains(jwt_header),
        "a signed token was printed"
    );
}

#[test]
fn a_panic_message_carrying_the_secret_is_redacted() {
    if std::env::var("RESPOND_TEST_PANIC_CHILD").is_ok() {
        respond::secret::install_panic_hook();
        let s = respond::secret::Secret::new(CANARY);
        panic!("request failed with secret {}", s.expose());
    }
    let o = run_test_in_child(
        "reliability_secrets::a_panic_message_carrying_the_secret_is_redacted",
        "RESPOND_TEST_PANIC_CHILD",
        false,
    );
    let (err, outp) = (&o.stderr, &o.stdout);
    assert!(
        err.contains("internal error"),
        "the hook did not run:\n{err}"
    );
    assert!(
        !err.contains("CANARYsecret") && !outp.contains("CANARYsecret"),
        "{err}"
    );
}

#[test]
fn credential_files_others_can_read_are_refused_without_echoing_them() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("creds.env");
    std::fs::write(
        &f,
        format!("UPBIT_ACCESS_KEY={CANARY_ACCESS}\nUPBIT_SECRET_KEY={CANARY}\n"),
    )
    .unwrap();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = Respond::new()
            .args([
                "leak",
                "--exchange",
                "upbit",
                "--api-url",
                "http://127.0.0.1:9",
                "--out",
            ])
            .arg(tmp.path().join("ev"))
            .arg("--credentials")
            .arg(&f)
            .run();
        assert_eq!(r.code, Some(2), "mode {mode:o}: {}", r.stderr);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
        assert!(!r.stderr.contains("CANARYsecret") && !r.stdout.contains("CANARYsecret"));
        assert!(!tmp.path().join("ev").exists(), "nothing may be written");
    }
}

/// Issue 11, point 6: `-v` shows each request: method, endpoint, which key (masked), status,
/// time and the rate-limit budget the exchange reported; `-vv` adds parameter names. Never
/// the token, the secret or a full access key.
#[test]
fn verbose_shows_each_request_with_its_status_and_budget_but_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = canary_mock();
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");
    let access = mock.key("bot").access_key;
    let masked = respond::secret::mask_key(&access);
    for (flag, extra) in [("-v", None), ("-vv", Some("parameters "))] {
        let b = bot.display().to_string();
        let ran = dry_leak(&mock, &out, &[flag, "--bot-log", &b, "--since", "1h"])
            .env_remove("RESPOND_LOG")
            .run();
        let err = &ran.stderr;
        let line = format!("GET /v1/accounts [{masked}] -> 200 in ");
        assert!(err.contains(&line), "{flag}: no `{line}` in\n{err}");
        assert!(
            err.contains("left this second in group default"),
            "{flag}: no budget in\n{err}"
        );
        assert!(err.contains("GET /v1/orders/closed ["), "{flag}\n{err}");
        if let Some(x) = extra {
            assert!(err.contains(x), "{flag}: no `{x}` in\n{err}");
        }
        for secret in [CANARY, "CANARYsecret", &access, "Bearer", "eyJ"] {
            assert!(!err.contains(secret), "{flag}: `{secret}` printed");
        }
    }
}

const PASS_CANARY: &str = "CANARYpassPHRASE0do0not0leak0Kc7";

/// A KuCoin-like exchange that shows the key's settings and refuses everything else with a
/// body echoing the request's query and every header (`KC-API-PASSPHRASE` included).
async fn kucoin_echo(headers: HeaderMap, uri: Uri) -> (StatusCode, String) {
    if uri.path() == "/api/v1/user/api-key" {
        return (
            StatusCode::OK,
            r#"{"code":"200000","data":{"permission":"General,Spot","ipWhitelist":""}}"#.into(),
        );
    }
    let all: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or_default()))
        .collect();
    let msg = format!(
        "echo: {} {} {}",
        uri.path(),
        uri.query().unwrap_or_default(),
        all.join(" ")
    );
    (
        StatusCode::BAD_REQUEST,
        serde_json::json!({"code": "400100", "msg": msg}).to_string(),
    )
}

/// KuCoin's third credential, the passphrase, is a secret like the secret key: set for the
/// leaked key and for a master key (whose sub-account key deletion sends the leaked key's
/// passphrase in its query), echoed back by the exchange in every error, it appears in no
/// file of the run, no line of output at `-vvv`, and not on the command line.
#[test]
fn a_kucoin_passphrase_never_reaches_the_bundle_the_logs_or_the_errors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let app = axum::Router::new().fallback(kucoin_echo);
        axum::serve(listener, app).await.unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ev");
    let url = format!("http://{addr}");
    let r = Respond::new()
        .args([
            "leak",
            "--exchange",
            "kucoin",
            "-vvv",
            "--yes",
            "--api-url",
            &url,
            "--out",
        ])
        .arg(&out)
        .args([
            "--input",
            "revoke_timeout=1s",
            "--input",
            "revoke_interval=100ms",
        ])
        .env("KUCOIN_ACCESS_KEY", CANARY_ACCESS)
        .env("KUCOIN_SECRET_KEY", CANARY)
        .env("KUCOIN_PASSPHRASE", PASS_CANARY)
        .env("KUCOIN_MASTER_ACCESS_KEY", "CanaryMasterKey000000000001")
        .env("KUCOIN_MASTER_SECRET_KEY", "CANARYsecretMASTER0do0not0leak")
        .env("KUCOIN_MASTER_PASSPHRASE", "CANARYpassMASTER0do0not0leak")
        .env("KUCOIN_SUB_ACCOUNT", "bot1")
        .env("RESPOND_LOG", "trace")
        .run();
    assert_ne!(r.code, Some(0), "every request failed");
    assert!(
        r.stderr.contains("echo:") || !files_containing(&out, b"echo:").is_empty(),
        "the echoing error bodies were never seen"
    );
    assert!(
        !files_containing(&out, b"/api/v1/sub/api-key").is_empty()
            || r.stderr.contains("/api/v1/sub/api-key"),
        "the master's deletion (the passphrase in its query) was tried"
    );
    assert_clean("echoing kucoin", &out, &[&r.stdout, &r.stderr]);
    for needle in ["CANARYpass", "CANARYsecretMASTER"] {
        let hits = files_containing(&out, needle.as_bytes());
        assert!(hits.is_empty(), "{needle} is in {hits:?}");
        assert!(
            !r.stdout.contains(needle) && !r.stderr.contains(needle),
            "{needle} was printed"
        );
    }
}
