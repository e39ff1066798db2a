//! `respond mock serve` as a process: the first stdout line, loopback-only binding, bad
//! scenario files, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};

use crate::support::respond::{Respond, Running};

/// The JSON banner `mock serve` prints as its first stdout line.
fn banner(child: &mut Running) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(child.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).expect("first line is JSON")
}

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
    let v = banner(&mut child);
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

#[test]
fn serve_binance_names_the_victims_and_the_attackers_keys_and_answers() {
    let mut child = Respond::new()
        .args([
            "mock",
            "serve",
            "--exchange",
            "binance",
            "--scenario",
            "blank",
        ])
        .spawn();
    let v = banner(&mut child);
    assert_eq!(v["exchange"], "binance");
    let keys = v["keys"].as_array().unwrap();
    let labels: Vec<&str> = keys.iter().map(|k| k["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["bot", "readonly", "attacker"]);
    assert_eq!(keys[2]["account"], "attacker");
    let scopes = |i: usize| keys[i]["scopes"].as_array().unwrap().clone();
    assert!(scopes(0).iter().any(|s| s == "enableSpotAndMarginTrading"));
    assert!(!scopes(1).iter().any(|s| s == "enableSpotAndMarginTrading"));
    // Binance's paths answer on the printed URL.
    let url = format!("{}/api/v3/time", v["url"].as_str().unwrap());
    let body = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await?.json::<serde_json::Value>().await })
        .unwrap();
    assert!(body["serverTime"].as_i64().is_some(), "{body}");
    child.signal("TERM");
    child.finish().code(0);
}

#[test]
fn serve_refuses_an_exchange_without_a_mock() {
    let out = Respond::new()
        .args(["mock", "serve", "--exchange", "kraken"])
        .run()
        .code(2);
    assert!(out.stdout.is_empty());
    out.stderr_has("binance").stderr_has("upbit");
}
