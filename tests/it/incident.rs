//! One incident across several exchanges (issue 19): the accounts file's refusals with their
//! `file:line:column`, a two-exchange `respond leak --accounts` run against the Upbit and
//! Binance mocks over real loopback HTTP producing one incident folder that verifies (and
//! stops verifying when one byte of one bundle changes), and one account whose exchange is slow
//! and refuses its key (the mock's latency fault, the key deleted before the run) while the
//! other's cancels still happen.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use respond::incident::accounts;
use respond::mock::faults::FaultRule;
use respond::mock::{self, KeyInfo, MockOptions, MockServer, Venue};

use crate::support::respond::{Ran, Respond};

/// The mock of `exchange` serving the built-in pump-and-dump scenario on `127.0.0.1:0` (its
/// attack within the run's default window), no live attacker.
async fn serve(exchange: &str) -> MockServer {
    let facade = mock::facade(exchange).expect("a mock façade");
    let sc = mock::load("pump-and-dump", None).expect("built-in scenario");
    let opts = MockOptions {
        live_attacker: false,
        ..MockOptions::default()
    };
    let venue = Venue::new(&*facade, sc, opts).expect("the scenario fits");
    mock::serve("127.0.0.1:0".parse().unwrap(), facade, venue)
        .await
        .expect("bind the mock")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn private(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = write(dir, name, text);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// The problems of an accounts file, as one text.
fn refused(path: &Path) -> String {
    match accounts::load(path) {
        Ok(a) => panic!("accepted {} accounts", a.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_guidance_order_puts_keys_that_can_move_funds_first() {
    let tmp = tempfile::tempdir().unwrap();
    let mut yaml = String::from("accounts:\n");
    for (label, exchange, scopes) in [
        ("trader", "upbit", "[trade]"),
        ("unknown", "binance", "[]"),
        ("withdrawer", "binance", "[withdraw, trade]"),
        ("viewer", "upbit", "[read]"),
    ] {
        let prefix = respond::exchange::registry::get(exchange)
            .unwrap()
            .env_prefix;
        let f = private(
            tmp.path(),
            &format!("{label}.env"),
            &format!("{prefix}_ACCESS_KEY=ak-{label}-x\n{prefix}_SECRET_KEY=sk-{label}-x\n"),
        );
        yaml.push_str(&format!(
            "  - label: {label}\n    exchange: {exchange}\n    credentials:\n      file: {}\n    scopes: {scopes}\n",
            f.display()
        ));
    }
    let f = write(tmp.path(), "incident.yaml", &yaml);
    let mut accounts = accounts::load(&f).unwrap();
    accounts.sort_by_key(|a| a.risk());
    let order: Vec<&str> = accounts.iter().map(|a| a.label.as_str()).collect();
    assert_eq!(order, ["unknown", "withdrawer", "trader", "viewer"]);
}

#[test]
fn an_unknown_exchange_is_refused_at_its_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "incident.yaml",
        "accounts:\n  - label: a\n    exchange: kraken\n    credentials:\n      env: INC_NEVER_SET_A\n",
    );
    let e = refused(&f);
    assert!(
        e.contains(&format!("{}:3:15: unknown exchange `kraken`", f.display())),
        "{e}"
    );
}

#[test]
fn a_missing_credential_is_refused_at_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "incident.yaml",
        "accounts:\n  - label: a\n    exchange: upbit\n    credentials:\n      env: INC_NEVER_SET_B\n",
    );
    let e = refused(&f);
    assert!(
        e.contains(&format!("{}:5:12: missing credential: INC_NEVER_SET_B_ACCESS_KEY and INC_NEVER_SET_B_SECRET_KEY", f.display())),
        "{e}"
    );
}

#[test]
fn a_plain_http_api_url_and_a_bot_log_that_is_not_a_file_are_refused_at_their_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = private(
        tmp.path(),
        "up.env",
        "UPBIT_ACCESS_KEY=ak-inc-url-1\nUPBIT_SECRET_KEY=sk-inc-url-1\n",
    );
    let f = write(
        tmp.path(),
        "incident.yaml",
        &format!(
            "accounts:\n  - label: a\n    exchange: upbit\n    credentials:\n      file: {}\n    api_url: http://trader:pw-inc-9@10.0.0.1:8080\n    bot_logs: [{}]\n",
            creds.display(),
            tmp.path().display()
        ),
    );
    let e = refused(&f);
    assert!(
        e.contains(&format!("{}:6:14:", f.display())) && e.contains("user name or password"),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}:7:", f.display())),
        "the bot log's line: {e}"
    );
    assert!(
        !e.contains("pw-inc-9") && !e.contains("sk-inc-url"),
        "no secret: {e}"
    );
    let f = write(
        tmp.path(),
        "incident2.yaml",
        &format!(
            "accounts:\n  - label: a\n    exchange: upbit\n    credentials:\n      file: {}\n    api_url: http://10.0.0.1:8080\n",
            creds.display()
        ),
    );
    let e = refused(&f);
    assert!(
        e.contains(&format!("{}:6:14:", f.display())) && e.contains("refusing plain http"),
        "{e}"
    );
}

#[test]
fn a_duplicate_label_is_refused_at_the_second_one() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = private(
        tmp.path(),
        "up.env",
        "UPBIT_ACCESS_KEY=ak-inc-dup-1\nUPBIT_SECRET_KEY=sk-inc-dup-1\n",
    );
    let bin = private(
        tmp.path(),
        "bn.env",
        "BINANCE_ACCESS_KEY=ak-inc-dup-2\nBINANCE_SECRET_KEY=sk-inc-dup-2\n",
    );
    let f = write(
        tmp.path(),
        "incident.yaml",
        &format!(
            "accounts:\n  - label: main\n    exchange: upbit\n    credentials:\n      file: {}\n  - label: main\n    exchange: binance\n    credentials:\n      file: {}\n",
            creds.display(),
            bin.display()
        ),
    );
    let e = refused(&f);
    assert!(
        e.contains(&format!("{}:6:12: duplicate label `main`", f.display())),
        "{e}"
    );
    assert!(!e.contains("sk-inc-dup"), "no secret in the error: {e}");
}

#[test]
fn a_credentials_file_others_can_read_is_refused_and_nothing_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = write(
        tmp.path(),
        "up.env",
        "UPBIT_ACCESS_KEY=ak-inc-open\nUPBIT_SECRET_KEY=sk-inc-open\n",
    );
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = write(
        tmp.path(),
        "incident.yaml",
        "accounts:\n  - label: main\n    exchange: upbit\n    credentials:\n      file: up.env\n",
    );
    let e = refused(&f);
    assert!(
        e.contains(&format!("{}:5:13:", f.display())) && e.contains("readable by group or others"),
        "{e}"
    );
    // Through the binary: exit 2, the same position, and no folder was created.
    let out = tmp.path().join("evidence");
    let ran = Respond::new()
        .arg("leak")
        .arg("--accounts")
        .arg(&f)
        .arg("--out")
        .arg(&out)
        .run()
        .code(2);
    assert!(
        ran.stderr.contains(&format!("{}:5:13:", f.display())),
        "{}",
        ran.all()
    );
    assert!(!ran.all().contains("sk-inc-open"));
    assert!(!out.exists(), "nothing started");
}

/// Both mocks, the accounts file naming them, and the environment holding their keys.
struct Two {
    upbit: MockServer,
    binance: MockServer,
    file: PathBuf,
    env: Vec<(String, String)>,
    out: PathBuf,
    _tmp: tempfile::TempDir,
}

async fn two() -> Two {
    let (upbit, binance) = (serve("upbit").await, serve("binance").await);
    let tmp = tempfile::tempdir().unwrap();
    let mut env = Vec::new();
    let mut yaml = String::from("accounts:\n");
    for (label, prefix, s) in [
        ("up-main", "INC_UP", &upbit),
        ("bn-main", "INC_BN", &binance),
    ] {
        let exchange = if label.starts_with("up") {
            "upbit"
        } else {
            "binance"
        };
        let (bot, ro): (KeyInfo, KeyInfo) = (
            s.state.key("bot").unwrap().clone(),
            s.state.key("readonly").unwrap().clone(),
        );
        env.push((format!("{prefix}_ACCESS_KEY"), bot.access_key.clone()));
        env.push((format!("{prefix}_SECRET_KEY"), bot.secret_key.clone()));
        env.push((
            format!("{prefix}_READONLY_ACCESS_KEY"),
            ro.access_key.clone(),
        ));
        env.push((
            format!("{prefix}_READONLY_SECRET_KEY"),
            ro.secret_key.clone(),
        ));
        let bot_log = write(tmp.path(), &format!("{label}.csv"), &s.state.bot_log_csv());
        yaml.push_str(&format!(
            "  - label: {label}\n    exchange: {exchange}\n    credentials:\n      env: {prefix}\n    api_url: {}\n    bot_logs:\n      - {}\n    scopes: [trade]\n",
            s.url,
            bot_log.display()
        ));
    }
    let file = write(tmp.path(), "incident.yaml", &yaml);
    Two {
        upbit,
        binance,
        out: tmp.path().join("evidence"),
        file,
        env,
        _tmp: tmp,
    }
}

/// The one incident folder under `out`.
fn incident_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// The bundle of `label` once its journal shows `cancel_orders` ended.
fn cancelled_in(out: &Path, label: &str) -> bool {
    let Ok(incidents) = std::fs::read_dir(out) else {
        return false;
    };
    incidents.flatten().any(|i| {
        std::fs::read_dir(i.path().join(label)).is_ok_and(|b| {
            b.flatten().any(|b| {
                std::fs::read_to_string(b.path().join("journal.jsonl")).is_ok_and(|j| {
                    j.lines().any(|l| {
                        l.contains("\"step_end\"") && l.contains("\"step\":\"cancel_orders\"")
                    })
                })
            })
        })
    })
}

/// Runs `respond leak --accounts` while a simulated user deletes each healthy account's key in
/// its console once that account's cancels are done.
async fn leak(t: &Two, revoke: &[(&'static str, &MockServer)]) -> Ran {
    let users: Vec<_> = revoke
        .iter()
        .map(|(label, s)| {
            let (out, url, key) = (
                t.out.clone(),
                s.url.clone(),
                s.state.key("bot").unwrap().access_key.clone(),
            );
            let label = *label;
            tokio::spawn(async move {
                for _ in 0..3000 {
                    if cancelled_in(&out, label) {
                        crate::support::mock::revoke(&url, &key).await;
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                false
            })
        })
        .collect();
    let cmd = Respond::new()
        .arg("leak")
        .arg("--accounts")
        .arg(&t.file)
        .arg("--out")
        .arg(&t.out)
        .args([
            "--yes",
            "--input",
            "revoke_interval=200ms",
            "--input",
            "revoke_timeout=30s",
        ])
        .envs(t.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let ran = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    for u in users {
        assert!(u.await.unwrap(), "the user deleted the key:\n{}", ran.all());
    }
    ran
}

fn verify(dir: &Path) -> Ran {
    Respond::new().args(["evidence", "verify"]).arg(dir).run()
}

/// Orders the mock cancelled at the request of `key`.
fn cancels_by(s: &MockServer, key: &str) -> usize {
    s.state
        .requests()
        .iter()
        .filter(|r| r.access_key.as_deref() == Some(key))
        .map(|r| r.orders_cancelled.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_exchange_incident_is_one_folder_that_verifies_and_detects_tampering() {
    let t = two().await;
    let ran = leak(&t, &[("up-main", &t.upbit), ("bn-main", &t.binance)]).await;
    let all = ran.all();
    assert_eq!(ran.code, Some(0), "{all}");
    for (k, v) in &t.env {
        if k.contains("SECRET") {
            assert!(!all.contains(v.as_str()), "a secret was printed");
        }
    }
    // Guidance for both accounts first, and each account's lines labelled.
    let guidance = all
        .find("ACTION NEEDED NOW: delete these 2 leaked API keys")
        .expect(&all);
    assert!(all[guidance..].contains("[up-main]") && all[guidance..].contains("[bn-main]"));
    // Both exchanges' open orders were cancelled with the leaked keys.
    for s in [&t.upbit, &t.binance] {
        let key = s.state.key("bot").unwrap().access_key.clone();
        assert!(cancels_by(s, &key) > 0, "cancels on {}:\n{all}", s.url);
    }
    let dir = incident_dir(&t.out);
    for f in [
        "incident.json",
        "incident.md",
        "incident.html",
        "incident-manifest.json",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(dir.join("incident.md")).unwrap();
    assert!(
        md.contains("| up-main | upbit |") && md.contains("| bn-main | binance |"),
        "{md}"
    );
    assert!(md.contains("contained, complete"), "{md}");
    // One timeline across both exchanges, and one total with the rates it used.
    assert!(
        md.contains("[up-main] unauthorized") && md.contains("[bn-main] unauthorized"),
        "{md}"
    );
    assert!(
        md.contains("Converted total: **") && md.contains("Rates used"),
        "{md}"
    );
    let page = std::fs::read_to_string(dir.join("incident.html")).unwrap();
    assert!(
        page.contains("<svg") && page.contains("up-main (upbit)"),
        "{page}"
    );
    // Each bundle verifies alone, and the incident as a whole.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("incident.json")).unwrap()).unwrap();
    let bundles: Vec<PathBuf> = record["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| dir.join(a["bundle"].as_str().expect("a bundle per account")))
        .collect();
    assert_eq!(bundles.len(), 2);
    for b in &bundles {
        verify(b).code(0);
    }
    verify(&dir).code(0);

    // One byte of one bundle changed: the incident no longer verifies, naming the file.
    let csv = bundles[1].join("orders.csv");
    let original = std::fs::read(&csv).unwrap();
    let mut changed = original.clone();
    let last = changed.len() - 2;
    changed[last] ^= 0x01;
    std::fs::write(&csv, &changed).unwrap();
    let v = verify(&dir).code(3);
    assert!(v.stdout.contains("orders.csv"), "{}", v.all());
    std::fs::write(&csv, &original).unwrap();
    verify(&dir).code(0);
    // `respond analyze INCIDENT_DIR` analyzes every bundle again and seals the incident again.
    let a = Respond::new().arg("analyze").arg(&dir).run();
    assert_eq!(a.code, Some(0), "{}", a.all());
    assert!(
        a.stdout.contains("[up-main]") && a.stdout.contains("[bn-main]"),
        "{}",
        a.all()
    );
    for b in &bundles {
        let j = std::fs::read_to_string(b.join("journal.jsonl")).unwrap();
        assert!(
            j.contains("\"by\":\"analyze\""),
            "reopened by analyze: {}",
            b.display()
        );
    }
    verify(&dir).code(0);
    // The incident's own report changed: refused too.
    let report = dir.join("incident.md");
    let mut text = std::fs::read(&report).unwrap();
    text[0] ^= 0x01;
    std::fs::write(&report, &text).unwrap();
    let v = verify(&dir).code(3);
    assert!(v.stdout.contains("incident.md"), "{}", v.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_exchange_failing_does_not_stop_the_other_accounts_cancels() {
    let t = two().await;
    // Binance answers every request late, and its leaked key was deleted before the run: that
    // account's run is refused from its first (slow) request and stops.
    let bn = t.binance.state.key("bot").unwrap().access_key.clone();
    crate::support::mock::revoke(&t.binance.url, &bn).await;
    t.binance.state.set_faults(vec![FaultRule {
        path: "*".into(),
        latency_ms: 1500,
        ..FaultRule::default()
    }]);
    let ran = leak(&t, &[("up-main", &t.upbit)]).await;
    let all = ran.all();
    assert_ne!(ran.code, Some(0), "{all}");
    let up_key = t.upbit.state.key("bot").unwrap().access_key.clone();
    assert!(
        cancels_by(&t.upbit, &up_key) > 0,
        "upbit's cancels happened:\n{all}"
    );
    let bn_key = t.binance.state.key("bot").unwrap().access_key.clone();
    assert_eq!(cancels_by(&t.binance, &bn_key), 0);
    let dir = incident_dir(&t.out);
    let md = std::fs::read_to_string(dir.join("incident.md")).unwrap();
    let up = md
        .lines()
        .find(|l| l.starts_with("| up-main |"))
        .expect(&md);
    let bn = md
        .lines()
        .find(|l| l.starts_with("| bn-main |"))
        .expect(&md);
    assert!(up.contains("contained"), "{up}");
    assert!(bn.contains("NOT contained"), "{bn}");

    // `respond resume INCIDENT_DIR` continues only the unfinished account: the complete one's
    // bundle is left byte for byte as it was.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("incident.json")).unwrap()).unwrap();
    let bundle_of = |label: &str| {
        let a = record["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["label"] == label)
            .unwrap();
        dir.join(a["bundle"].as_str().expect("a bundle"))
    };
    let (up_b, bn_b) = (bundle_of("up-main"), bundle_of("bn-main"));
    let up_journal = std::fs::read(up_b.join("journal.jsonl")).unwrap();
    let bn_journal = std::fs::read(bn_b.join("journal.jsonl")).unwrap();
    t.binance.state.set_faults(vec![]);
    // Resumed without one account's credentials: that account says what is missing, under its
    // label; the others are still handled and the incident report is written again.
    let env_up: Vec<(String, String)> = t
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("INC_UP"))
        .cloned()
        .collect();
    let resume = Respond::new()
        .arg("resume")
        .arg(&dir)
        .arg("--yes")
        .envs(env_up.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let r = tokio::task::spawn_blocking(move || resume.run())
        .await
        .unwrap();
    let rall = r.all();
    assert_eq!(r.code, Some(2), "{rall}");
    assert!(
        rall.lines()
            .any(|l| l.contains("[bn-main]") && l.contains("INC_BN_ACCESS_KEY")),
        "{rall}"
    );
    assert!(
        rall.contains("[up-main]") && rall.contains("is complete"),
        "{rall}"
    );
    assert_eq!(
        std::fs::read(bn_b.join("journal.jsonl")).unwrap(),
        bn_journal
    );
    assert!(
        dir.join("incident-manifest.json").is_file() && dir.join("incident.md").is_file(),
        "the incident is sealed again"
    );
    // The complete account's bundle busy (another respond holds its lock): named under its
    // label, while the unfinished account is resumed all the same.
    let held = respond::rundir::RunLock::acquire(&up_b).unwrap();
    let env = t.env.clone();
    let resume = Respond::new()
        .arg("resume")
        .arg(&dir)
        .arg("--yes")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let r = tokio::task::spawn_blocking(move || resume.run())
        .await
        .unwrap();
    drop(held);
    let rall = r.all();
    assert_eq!(r.code, Some(2), "{rall}");
    assert!(
        rall.lines()
            .any(|l| l.contains("[up-main]") && l.contains("another respond")),
        "{rall}"
    );
    assert_eq!(
        std::fs::read(up_b.join("journal.jsonl")).unwrap(),
        up_journal
    );
    let after = std::fs::read(bn_b.join("journal.jsonl")).unwrap();
    assert!(
        after.len() > bn_journal.len(),
        "the unfinished account was resumed:\n{rall}"
    );
    verify(&dir).code(0);
    // Once free, the complete account says so again and is left as it was.
    let env = t.env.clone();
    let resume = Respond::new()
        .arg("resume")
        .arg(&dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let r = tokio::task::spawn_blocking(move || resume.run())
        .await
        .unwrap();
    let rall = r.all();
    assert!(
        rall.lines()
            .any(|l| l.contains("[up-main]") && l.contains("is complete")),
        "{rall}"
    );
    assert!(!rall.contains("another respond"), "{rall}");
    assert_eq!(
        std::fs::read(up_b.join("journal.jsonl")).unwrap(),
        up_journal
    );
    verify(&dir).code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinated_drill_scores_each_exchange_and_the_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("evidence");
    let cmd = Respond::new()
        .args([
            "drill",
            "--exchange",
            "upbit",
            "--exchange",
            "binance",
            // The coordinated drill runs on the real clock: a user deleting the keys 1 s in
            // beat the cancels on a loaded machine (a failed step, exit 1); 8 s leaves room.
            "--reaction",
            "8",
            "--out",
        ])
        .arg(&out);
    let ran = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    let all = ran.all();
    assert!(matches!(ran.code, Some(0) | Some(4)), "{all}");
    let dir = incident_dir(&out);
    let score: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("drill_report.json")).unwrap())
            .unwrap();
    let ex = score["exchanges"].as_array().unwrap();
    assert_eq!(ex.len(), 2, "{score}");
    for e in ex {
        assert!(e["scorecard"]["detection"]["recall"].is_number(), "{e}");
        assert!(e["bundle"].is_string(), "{e}");
    }
    assert!(
        score["time_to_contain_every_account_ms"].is_i64(),
        "{score}"
    );
    assert_eq!(score["incident_verified"], true, "{score}");
    assert_eq!(ran.code == Some(0), score["passed"] == true, "{all}");
    // The slowest containment is the whole's.
    let slowest = ex
        .iter()
        .filter_map(|e| e["scorecard"]["time_to_first_containment_ms"].as_i64())
        .max();
    assert_eq!(score["time_to_contain_every_account_ms"].as_i64(), slowest);
    verify(&dir).code(0);
    // The incident's own report changed after sealing: `analyze` and `resume` of the incident
    // refuse (exit 3) and write nothing, not even into the bundles.
    let report = dir.join("incident.md");
    let original = std::fs::read(&report).unwrap();
    let mut text = original.clone();
    text[0] ^= 0x01;
    std::fs::write(&report, &text).unwrap();
    let journals = |d: &Path| -> Vec<Vec<u8>> {
        ex.iter()
            .map(|e| std::fs::read(d.join(e["bundle"].as_str().unwrap()).join("journal.jsonl")))
            .map(Result::unwrap)
            .collect()
    };
    let before = journals(&dir);
    for cmd in ["analyze", "resume"] {
        let r = Respond::new().arg(cmd).arg(&dir).run();
        assert_eq!(r.code, Some(3), "{cmd}: {}", r.all());
        assert!(
            r.stderr.contains("incident.md") && r.stderr.contains("wrote nothing"),
            "{cmd}: {}",
            r.all()
        );
        assert_eq!(
            std::fs::read(&report).unwrap(),
            text,
            "{cmd} rewrote the report"
        );
        assert!(journals(&dir) == before, "{cmd} wrote into a bundle");
    }
    std::fs::write(&report, &original).unwrap();
    verify(&dir).code(0);
    // A record whose bundle path leaves the incident folder is refused, sealed or not.
    let rec = dir.join("incident.json");
    let sealed_record = std::fs::read(&rec).unwrap();
    let manifest = dir.join("incident-manifest.json");
    let sealed_manifest = std::fs::read(&manifest).unwrap();
    let mut r: serde_json::Value = serde_json::from_slice(&sealed_record).unwrap();
    r["accounts"][0]["bundle"] = serde_json::Value::from("../../elsewhere");
    std::fs::write(&rec, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    for cmd in ["analyze", "resume"] {
        let r = Respond::new().arg(cmd).arg(&dir).run();
        assert_eq!(r.code, Some(3), "{cmd}: {}", r.all());
        assert!(
            r.stderr.contains("outside the incident"),
            "{cmd}: {}",
            r.all()
        );
    }
    std::fs::write(&rec, &sealed_record).unwrap();
    std::fs::write(&manifest, &sealed_manifest).unwrap();
    verify(&dir).code(0);
    // One bundle changed and sealed again by hand (its journal as it was): `analyze` of the
    // incident refuses to seal the incident over it, and the incident's seal is left alone.
    let one = dir.join(ex[0]["bundle"].as_str().unwrap());
    let csv = one.join("orders.csv");
    let original_csv = std::fs::read(&csv).unwrap();
    let mut forged = original_csv.clone();
    forged.extend_from_slice(b"forged,row\n");
    std::fs::write(&csv, &forged).unwrap();
    respond::report::seal(&one).unwrap();
    let v = verify(&dir).code(3);
    assert!(v.stdout.contains("SHA256SUMS"), "{}", v.all());
    let r = Respond::new().arg("analyze").arg(&dir).run();
    assert_eq!(r.code, Some(3), "{}", r.all());
    assert!(
        r.stderr.contains("without continuing the journal"),
        "{}",
        r.all()
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), sealed_manifest);
    std::fs::write(&csv, &original_csv).unwrap();
    respond::report::seal(&one).unwrap();
    verify(&dir).code(0);
    // A bundle analyzed again on its own (reopened, journaled, sealed again) continues its
    // journal: the incident's analysis goes on and seals the incident again.
    let r = Respond::new().arg("analyze").arg(&one).run();
    assert_eq!(r.code, Some(0), "{}", r.all());
    let r = Respond::new().arg("analyze").arg(&dir).run();
    assert_eq!(r.code, Some(0), "{}", r.all());
    verify(&dir).code(0);
    // A lock file that is not a regular file is not waved through by `evidence verify`.
    let lock = dir.join(".respond.lock");
    std::fs::create_dir(&lock).unwrap();
    let v = verify(&dir).code(3);
    assert!(v.stdout.contains(".respond.lock"), "{}", v.all());
    std::fs::remove_dir(&lock).unwrap();
    // An account the record names without a bundle (an incident cut off before its seal) is
    // named by `analyze`, with exit 1.
    std::fs::remove_file(&manifest).unwrap();
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    for a in r["accounts"].as_array_mut().unwrap() {
        if a["label"] == "binance" {
            a["bundle"] = serde_json::Value::Null;
        }
    }
    std::fs::write(&rec, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    let a = Respond::new().arg("analyze").arg(&dir).run();
    assert_eq!(a.code, Some(1), "{}", a.all());
    let all = a.all();
    assert!(
        all.lines()
            .any(|l| l.contains("[binance]") && l.contains("no bundle")),
        "{all}"
    );
}

#[test]
fn several_exchange_flags_need_every_exchanges_key_and_refuse_a_shared_api_url() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("evidence");
    // Only the first exchange's key is set: refused before anything starts, naming the other's
    // variables.
    let (first, second) = (
        respond::exchange::registry::all()[0],
        respond::exchange::registry::all()[1],
    );
    let ran = Respond::new()
        .args([
            "leak",
            "--exchange",
            first.name,
            "--exchange",
            second.name,
            "--out",
        ])
        .arg(&out)
        .env(format!("{}_ACCESS_KEY", first.env_prefix), "ak-inc-flags")
        .env(format!("{}_SECRET_KEY", first.env_prefix), "sk-inc-flags")
        .run()
        .code(2);
    assert!(
        ran.stderr.contains(&format!(
            "missing credential for {}: {}_ACCESS_KEY and {}_SECRET_KEY",
            second.name, second.env_prefix, second.env_prefix
        )),
        "{}",
        ran.all()
    );
    assert!(!ran.all().contains("sk-inc-flags"));
    assert!(!out.exists(), "nothing started");
    let ran = Respond::new()
        .args(["leak", "--exchange", first.name, "--exchange", second.name])
        .args(["--api-url", "http://127.0.0.1:9", "--out"])
        .arg(&out)
        .run()
        .code(2);
    assert!(
        ran.stderr
            .contains("--api-url with several --exchange flags"),
        "{}",
        ran.all()
    );
    assert!(!out.exists(), "nothing started");
}
