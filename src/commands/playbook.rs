//! `respond playbook check|list|show`: validate playbooks and inspect the embedded ones.
//!
//! `check` reports every problem of every file as `file:line:column: message` (plus a hint)
//! and exits 2 when any file is invalid; with `--json` it prints one summary object.

use std::path::PathBuf;

use serde_json::json;

use crate::exit::{Code, Failure};
use crate::output::Printer;
use crate::playbook;
use crate::steps::builtin;

/// `playbook check FILE...`
pub fn check(files: &[PathBuf], printer: &Printer) -> Result<Code, Failure> {
    let registry = builtin::registry();
    let mut all_ok = true;
    let mut results = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let source = match std::fs::read_to_string(f) {
            Ok(s) => s,
            Err(e) => {
                all_ok = false;
                printer.out(&format!("{name}: cannot read: {e}"));
                results.push(json!({"file": name, "ok": false, "error": e.to_string()}));
                continue;
            }
        };
        match playbook::check(&source, &registry) {
            Ok(_) => {
                printer.out(&format!("{name}: ok"));
                results.push(json!({"file": name, "ok": true, "diagnostics": []}));
            }
            Err(diags) => {
                all_ok = false;
                for d in &diags {
                    printer.out(&d.render(&name));
                }
                printer.status(&format!("{name}: {} problem(s)", diags.len()));
                results.push(json!({"file": name, "ok": false, "diagnostics": diags}));
            }
        }
    }
    printer.summary(&json!({"ok": all_ok, "files": results}));
    Ok(if all_ok { Code::Ok } else { Code::Usage })
}

/// `playbook list`
pub fn list(printer: &Printer) -> Result<Code, Failure> {
    let registry = builtin::registry();
    let mut rows = Vec::new();
    for p in playbook::embedded() {
        let desc = match playbook::check(p.source, &registry) {
            Ok(pb) => pb.description.unwrap_or_default(),
            Err(d) => format!(
                "(does not validate with this build: {} problem(s))",
                d.len()
            ),
        };
        printer.out(&format!("{:<24} {}", p.name, desc));
        rows.push(json!({"name": p.name, "description": desc}));
    }
    printer.summary(&json!({"ok": true, "playbooks": rows}));
    Ok(Code::Ok)
}

/// `playbook show NAME`
pub fn show(name: &str, printer: &Printer) -> Result<Code, Failure> {
    let name = name.trim_end_matches(".yaml");
    match playbook::embedded_named(name) {
        Some(p) => {
            printer.out(p.source.trim_end());
            printer.summary(&json!({"ok": true, "name": p.name, "source": p.source}));
            Ok(Code::Ok)
        }
        None => {
            let names: Vec<&str> = playbook::embedded().iter().map(|p| p.name).collect();
            let hint = match playbook::validate::nearest(name, names.iter().copied()) {
                Some(n) => format!("did you mean `{n}`? (`respond playbook list` shows all)"),
                None => format!("embedded playbooks: {}", names.join(", ")),
            };
            Err(Failure::usage(format!("no embedded playbook named `{name}`")).with_hint(hint))
        }
    }
}
