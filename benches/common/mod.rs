//! What the `export`, `analyze_scale` and `export_vs_ccxt` benchmarks share: the bot's
//! scenario (N orders over six days on two Upbit markets), the export playbook, the settings
//! and connection of a playbook run against a mock's key, and a Python venv with a module.
//! Each bench includes this file as a module; a bench uses only some of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use respond::cli::BotLogArgs;
use respond::credentials::KeyPair;
use respond::secret::Secret;
use respond::session::{Connection, RunSettings};

/// The scenario YAML named `name`: the bot's `orders` orders over six days on KRW-BTC and
/// KRW-XRP, nothing left open.
pub fn bot_scenario_yaml(name: &str, description: &str, orders: usize) -> String {
    let days = 6;
    respond::mock::scenario::SyntheticVictim {
        name,
        description,
        seed: 3,
        days,
        orders_per_day: orders.div_ceil(days as usize),
        open_orders: 0,
        readonly_key: false,
    }
    .yaml()
}

/// A non-interactive run of the playbook file `playbook`, its bundle under `out`.
pub fn settings(playbook: PathBuf, out: PathBuf) -> RunSettings {
    RunSettings {
        playbook: Some(playbook),
        inputs: BTreeMap::new(),
        bot_logs: BotLogArgs::default(),
        out,
        dry_run: false,
        assume_yes: true,
        interactive: false,
        rerun: None,
    }
}

/// The old key (`access`, `secret`, `passphrase` where the exchange has one) of `exchange`
/// served at `url`, with no read-only or master key.
pub fn connection(
    exchange: &str,
    url: &str,
    access: &str,
    secret: &str,
    passphrase: Option<&str>,
) -> Connection {
    Connection {
        exchange: exchange.into(),
        api_url: Some(url.into()),
        primary: Some(KeyPair {
            access_key: access.into(),
            secret_key: Secret::new(secret.to_string()),
            passphrase: passphrase.map(|p| Secret::new(p.to_string())),
        }),
        readonly: None,
        master: None,
    }
}

/// The playbook the export benches run: the closed orders of seven days, nothing else.
pub const EXPORT_PLAYBOOK: &str = r#"name: export-bench
description: Export the closed orders of seven days.
steps:
  - id: export
    uses: exchange.export_history
    with:
      since: 7d
      include_open: false
      transfers: false
      candles: false
"#;

/// The python of the venv `venv` with `module` importable, the venv made and the module
/// installed from PyPI when missing; the reason when that cannot be done.
pub fn python_with(venv: &Path, module: &str) -> Result<PathBuf, String> {
    let py = venv.join("bin/python");
    let has = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if py.exists() && has(&py) {
        return Ok(py);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.success() {
        return Err(format!("python3 -m venv {} failed", venv.display()));
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", module])
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !pip.success() || !has(&py) {
        return Err(format!(
            "pip install {module} into {} failed",
            venv.display()
        ));
    }
    Ok(py)
}
