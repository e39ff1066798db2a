//! `respond mock serve` as a process: the first stdout line, loopback-only binding, bad
//! scenario files, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};

use crate::support::respond::Respond;

#[test]
fn serve_prints_url_and_keys_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let botlog = dir.path().join("bot.csv");
    let mut child = Respond::new()
        .args([
            "mock",
            "serve",
            "--exchange",
            "upbit",
            "--scenario",
            "contra",
            "--seed",
            "3",
        ])
        .arg("--bot-log-out")
        .arg(&botlog)
        .spawn();
    let mut line = String::new();
    BufReader::new(child.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).expect("first line is JSON");
    assert!(v["url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert_eq!(v["exchange"], "upbit");
    assert_eq!(v["scenario"], "contra");
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys[0]["label"], "bot");
    assert!(keys[0]["secret_key"].as_str().unwrap().len() >= 32);
    assert!(keys[0]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "make_orders"));
    let csv = std::fs::read_to_string(&botlog).unwrap();
    assert!(csv.starts_with("order_id,identifier,market,side,ord_type,created_at,price,volume\n"));
    child.signal("TERM");
    child.finish().code(0);
}

#[test]
fn non_loopback_needs_allow_remote_and_bad_files_stop_everything() {
    let out = Respond::new()
        .args([
            "mock",
            "serve",
            "--exchange",
            "upbit",
            "--addr",
            "0.0.0.0:0",
        ])
        .run()
        .code(2);
    assert!(out.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nmarkets: {\n").unwrap();
    let out = Respond::new()
        .args(["mock", "serve", "--exchange", "upbit", "--scenario"])
        .arg(&bad)
        .run()
        .code(2);
    assert!(out.stdout.is_empty(), "nothing started");
    out.stderr_has(&format!("{}:", bad.display()));
}
