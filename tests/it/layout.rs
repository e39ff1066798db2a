//! The exchange-neutral layout holds: outside the folders named after an exchange, only the
//! registry, the CLI's help and the crate map name an exchange, its zone or its currency.
//! Adding an exchange is a folder under `src/exchange/`, one under `src/mock/`, and a registry
//! line; shared code that names one would give another exchange silently wrong evidence.

use std::path::{Path, PathBuf};

/// Files allowed to name exchanges outside their folders.
const ALLOWED: &[&str] = &["src/exchange/registry.rs", "src/cli.rs", "src/lib.rs"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn shared_code_names_no_exchange() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // What names an exchange: its registry name, its display name, its environment prefix,
    // its zone; and the quote currencies only one exchange uses.
    let mut words: Vec<String> = vec!["krw".into()];
    let mut folders: Vec<String> = Vec::new();
    for d in respond::exchange::registry::all() {
        words.extend(
            [d.name, d.display, d.env_prefix, d.locale.zone.name]
                .iter()
                .map(|w| w.to_ascii_lowercase())
                // An exchange that keeps UTC is not named by it: every report writes UTC.
                .filter(|w| w != "utc"),
        );
        folders.push(format!("src/exchange/{}/", d.name));
        folders.push(format!("src/mock/{}/", d.name));
    }
    words.sort();
    words.dedup();
    let mut all = Vec::new();
    files(&root.join("src"), &mut all);
    let mut offenders = Vec::new();
    for p in all {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        // The mock has its own layout (a façade folder per exchange, declared in `mock/mod.rs`,
        // over a neutral venue whose scenarios are written in a default quote currency).
        if rel.starts_with("src/mock/")
            || folders.iter().any(|f| rel.starts_with(f.as_str()))
            || ALLOWED.contains(&rel.as_str())
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let lower = text.to_ascii_lowercase();
        if let Some(w) = words.iter().find(|w| lower.contains(w.as_str())) {
            offenders.push(format!("{rel} names `{w}`"));
        }
    }
    assert!(
        offenders.is_empty(),
        "exchange names outside their folders:\n{}",
        offenders.join("\n")
    );
}
