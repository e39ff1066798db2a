//! Playbooks: YAML files that say what a response run does, step by step.
//!
//! [`yaml`] parses with positions (the only `serde_yaml` caller), [`validate`] builds the
//! [`model`] or reports every problem as `file:line:column`, [`inputs`] types input values and
//! enforces their declared constraints, [`template`] resolves `with` and `if` at run time. Default playbooks are embedded in the binary ([`embedded`]); a path given
//! on the command line overrides them.

pub mod inputs;
pub mod model;
pub mod template;
pub mod validate;
pub mod yaml;

use std::path::Path;

pub use model::{InputDecl, InputType, OnError, Playbook, Retry, Step};
pub use validate::{check, Diagnostic};

/// A playbook shipped inside the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedPlaybook {
    /// The name used by `playbook show NAME` (the file name without `.yaml`).
    pub name: &'static str,
    pub source: &'static str,
}

/// The embedded playbooks. Adding one is one line here plus its file in `playbooks/`.
pub fn embedded() -> Vec<EmbeddedPlaybook> {
    vec![
        EmbeddedPlaybook {
            name: "leak",
            source: include_str!("../../playbooks/leak.yaml"),
        },
        EmbeddedPlaybook {
            name: "example-notify",
            source: include_str!("../../playbooks/example-notify.yaml"),
        },
    ]
}

/// Finds an embedded playbook by name, or by a former name an exchange still answers to
/// ([`crate::exchange::Descriptor::playbook_aliases`], e.g. `<exchange>-leak`), which
/// resolves to that exchange's default playbook.
pub fn embedded_named(name: &str) -> Option<EmbeddedPlaybook> {
    let canonical = crate::exchange::registry::all()
        .iter()
        .find(|d| d.playbook_aliases.contains(&name))
        .map(|d| d.default_playbook)
        .unwrap_or(name);
    embedded().into_iter().find(|p| p.name == canonical)
}

/// A playbook that failed to load, with every problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read playbook {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", render(.path, .diagnostics))]
    Invalid {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(path: &str, d: &[Diagnostic]) -> String {
    let mut s = format!("playbook {path} is invalid ({} problem(s)):", d.len());
    for x in d {
        s.push('\n');
        s.push_str(&x.render(path));
    }
    s
}

/// Validates a playbook source; `path` is only used in messages.
pub fn load_str(
    path: &Path,
    source: &str,
    registry: &crate::steps::Registry,
) -> Result<Playbook, Error> {
    check(source, registry).map_err(|diagnostics| Error::Invalid {
        path: path.display().to_string(),
        diagnostics,
    })
}

/// Reads and validates a playbook file.
pub fn load_file(
    path: &Path,
    registry: &crate::steps::Registry,
) -> Result<(Playbook, String), Error> {
    let source = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    let pb = load_str(path, &source, registry)?;
    Ok((pb, source))
}
