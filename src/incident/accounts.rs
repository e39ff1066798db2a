//! The incident's accounts: `respond leak --accounts incident.yaml`, or one account per
//! `--exchange` flag.
//!
//! The accounts file is YAML (format in README "One incident across several exchanges"):
//! `accounts:` lists, per account, its `exchange` (a registered name), a `label` (unique, a
//! file name), its `credentials` (`env: PREFIX` for `PREFIX_ACCESS_KEY` / `PREFIX_SECRET_KEY`
//! and the optional `PREFIX_READONLY_…`, `PREFIX_MASTER_…`, `PREFIX_SUB_ACCOUNT`, or `file:
//! PATH`, a `chmod 600` credentials file with the exchange's own variable names), optionally a
//! separate `readonly` and `master` source (same two forms), `sub_account`, `api_url`,
//! `bot_logs` and `scopes` (what the key may do, as the user remembers it: only the order of
//! the revocation guidance uses it). Every problem is collected and reported as
//! `file:line:column` before anything starts (no credential prompt, no folder, no request);
//! messages name variables and files, never a value read from them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::credentials::{self, CredentialError, KeyPair};
use crate::exchange::registry::{self, Descriptor};
use crate::exchange::ScopeClass;
use crate::playbook::yaml::{self, Pos, Positions, Seg};
use crate::session::Connection;

/// One account of the incident: an exchange, a label, and the keys to reach it.
pub struct Account {
    /// Unique within the incident; the account's folder name.
    pub label: String,
    pub exchange: &'static Descriptor,
    /// Keys and API URL (the secrets never leave this value).
    pub conn: Connection,
    pub bot_logs: Vec<PathBuf>,
    /// Where the credentials come from, as the user wrote it (`env:PREFIX`, `file:PATH`,
    /// `environment`): recorded in the incident so `respond resume INCIDENT_DIR` reads them
    /// again. Never a value.
    pub source: Source,
    /// The key's scopes as the user declared them (empty: unknown).
    pub scopes: Vec<String>,
}

/// Where an account's credentials are read (never the values themselves).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// The leaked key (and, unless given apart, the read-only and master keys).
    pub credentials: CredSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<CredSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<CredSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// One credentials source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredSource {
    /// `PREFIX_ACCESS_KEY`, `PREFIX_SECRET_KEY`, … in the environment.
    Env(String),
    /// A `chmod 600` `KEY=VALUE` file with the exchange's variable names.
    File(PathBuf),
    /// A coordinated drill's mock keys: nothing to read again (a drill cannot be resumed).
    Drill,
}

impl CredSource {
    /// Reads the source for an account on `exchange`.
    pub fn load(&self, exchange: &Descriptor) -> Result<credentials::Credentials, CredentialError> {
        match self {
            CredSource::Env(prefix) => credentials::load(prefix, None, false),
            CredSource::File(path) => credentials::load(exchange.env_prefix, Some(path), false),
            CredSource::Drill => Err(CredentialError::Missing {
                access: "a drill's mock key".into(),
                secret: "nothing to resume: run the drill again".into(),
            }),
        }
    }

    /// The variable names that would hold the leaked key's pair.
    fn names(&self, exchange: &Descriptor) -> String {
        let prefix = match self {
            CredSource::Env(p) => p.to_ascii_uppercase(),
            CredSource::File(_) | CredSource::Drill => exchange.env_prefix.to_string(),
        };
        format!("{prefix}_ACCESS_KEY and {prefix}_SECRET_KEY")
    }
}

impl Account {
    /// How risky the key is, highest first: a key that can move funds (or whose scopes were not
    /// declared: assume the worst) before a trading key before a read-only one.
    pub fn risk(&self) -> u8 {
        if self.scopes.is_empty() {
            return 0;
        }
        let classes: Vec<ScopeClass> = self
            .scopes
            .iter()
            .map(|s| self.exchange.scope_class(s))
            .collect();
        if classes.iter().any(|c| c.moves_funds()) {
            0
        } else if classes.contains(&ScopeClass::Trade) {
            1
        } else {
            2
        }
    }

    /// The risk in words, for the guidance.
    pub fn risk_text(&self) -> &'static str {
        match (self.scopes.is_empty(), self.risk()) {
            (true, _) => "scopes not declared: treated as able to withdraw",
            (false, 0) => "can move funds off the account",
            (false, 1) => "can trade",
            _ => "read-only",
        }
    }
}

/// A problem in the accounts file, at its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{}:{}: {message}", file.display(), pos.line, pos.column)]
pub struct AccountError {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

/// Every problem of an accounts file (at least one).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct AccountErrors(pub Vec<AccountError>);

const ACCOUNT_KEYS: &[&str] = &[
    "exchange",
    "label",
    "credentials",
    "readonly",
    "master",
    "sub_account",
    "api_url",
    "bot_logs",
    "scopes",
];

/// Reads and checks the accounts file at `path`. Credentials are read from their sources
/// here (no prompt), so a missing one is refused before anything starts.
pub fn load(path: &Path) -> Result<Vec<Account>, AccountErrors> {
    let at = |pos: Pos, message: String| AccountError {
        file: path.to_path_buf(),
        pos,
        message,
    };
    let source = std::fs::read_to_string(path).map_err(|e| {
        AccountErrors(vec![at(
            Pos { line: 1, column: 1 },
            format!("cannot read the accounts file: {e}"),
        )])
    })?;
    let (doc, pos) = yaml::parse(&source)
        .map_err(|e| AccountErrors(vec![at(e.pos, format!("invalid YAML: {}", e.message))]))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    let mut accounts = Vec::new();
    let top = vec![Seg::Key("accounts".into())];
    let list = match doc.get("accounts") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(_) => {
            return Err(AccountErrors(vec![at(
                pos.value(&top),
                "`accounts` must be a list of at least one account".into(),
            )]))
        }
        None => {
            return Err(AccountErrors(vec![at(
                Pos { line: 1, column: 1 },
                "no `accounts:` list (see README: One incident across several exchanges)".into(),
            )]))
        }
    };
    if let Some(obj) = doc.as_object() {
        for k in obj.keys().filter(|k| *k != "accounts") {
            errors.push(at(
                pos.key(&[Seg::Key(k.clone())]),
                format!("unknown key `{k}` (the file holds `accounts:` only)"),
            ));
        }
    }
    let mut labels = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let here = |k: &str| {
            let mut p = top.clone();
            p.push(Seg::Index(i));
            if !k.is_empty() {
                p.push(Seg::Key(k.to_string()));
            }
            p
        };
        match read_account(item, i, &here, &pos, base, &mut labels) {
            Ok(a) => accounts.push(a),
            Err(list) => errors.extend(list.into_iter().map(|(p, m)| at(p, m))),
        }
    }
    if errors.is_empty() {
        Ok(accounts)
    } else {
        errors.sort_by_key(|e| (e.pos.line, e.pos.column));
        Err(AccountErrors(errors))
    }
}

type Problems = Vec<(Pos, String)>;

fn read_account(
    item: &Value,
    index: usize,
    here: &dyn Fn(&str) -> Vec<Seg>,
    pos: &Positions,
    base: &Path,
    labels: &mut BTreeSet<String>,
) -> Result<Account, Problems> {
    let mut problems: Problems = Vec::new();
    let Some(obj) = item.as_object() else {
        return Err(vec![(
            pos.key(&here("")),
            format!(
                "account {} must be a mapping (exchange, label, credentials, …)",
                index + 1
            ),
        )]);
    };
    for k in obj.keys().filter(|k| !ACCOUNT_KEYS.contains(&k.as_str())) {
        problems.push((
            pos.key(&here(k)),
            format!(
                "unknown key `{k}`; an account takes {}",
                ACCOUNT_KEYS.join(", ")
            ),
        ));
    }
    let text = |k: &str, problems: &mut Problems| -> Option<String> {
        match obj.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(_) => {
                problems.push((
                    pos.value(&here(k)),
                    format!("`{k}` must be a non-empty text"),
                ));
                None
            }
            None => None,
        }
    };
    let exchange = match text("exchange", &mut problems) {
        Some(name) => match registry::get(&name) {
            Some(d) => Some(d),
            None => {
                problems.push((
                    pos.value(&here("exchange")),
                    format!(
                        "unknown exchange `{name}`; supported: {}",
                        registry::names().join(", ")
                    ),
                ));
                None
            }
        },
        None => {
            if !obj.contains_key("exchange") {
                problems.push((pos.key(&here("")), "the account has no `exchange`".into()));
            }
            None
        }
    };
    let label = match text("label", &mut problems) {
        Some(l) => {
            let ok = l.len() <= 64
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !l.starts_with('.');
            if !ok {
                problems.push((
                    pos.value(&here("label")),
                    "`label` names the account's folder: letters, digits, `-`, `_` and `.` (not first), at most 64".into(),
                ));
                None
            } else if !labels.insert(l.to_ascii_lowercase()) {
                problems.push((
                    pos.value(&here("label")),
                    format!("duplicate label `{l}`: every account needs its own"),
                ));
                None
            } else {
                Some(l)
            }
        }
        None => {
            if !obj.contains_key("label") {
                problems.push((pos.key(&here("")), "the account has no `label`".into()));
            }
            None
        }
    };
    let source_of = |k: &str, problems: &mut Problems| -> Option<CredSource> {
        let v = obj.get(k)?;
        let path = here(k);
        let Some(m) = v.as_object().filter(|m| m.len() == 1) else {
            problems.push((
                pos.value(&path),
                format!("`{k}` takes one of `env: PREFIX` or `file: PATH`"),
            ));
            return None;
        };
        let (kind, val) = m.iter().next()?;
        let mut inner = path.clone();
        inner.push(Seg::Key(kind.clone()));
        let val = match val.as_str().map(str::trim).filter(|s| !s.is_empty()) {
            Some(v) => v,
            None => {
                problems.push((
                    pos.value(&inner),
                    format!("`{k}.{kind}` must be a non-empty text"),
                ));
                return None;
            }
        };
        match kind.as_str() {
            "env" if val.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Some(CredSource::Env(val.to_string()))
            }
            "env" => {
                problems.push((
                    pos.value(&inner),
                    "an environment prefix is letters, digits and _".into(),
                ));
                None
            }
            "file" => Some(CredSource::File(base.join(val))),
            other => {
                problems.push((
                    pos.key(&inner),
                    format!(
                        "unknown credentials source `{other}`; use `env: PREFIX` or `file: PATH`"
                    ),
                ));
                None
            }
        }
    };
    let creds = source_of("credentials", &mut problems);
    if !obj.contains_key("credentials") {
        problems.push((
            pos.key(&here("")),
            "the account has no `credentials` (`env: PREFIX` or `file: PATH`)".into(),
        ));
    }
    let readonly = source_of("readonly", &mut problems);
    let master = source_of("master", &mut problems);
    let sub_account = text("sub_account", &mut problems);
    let api_url = text("api_url", &mut problems);
    if let Some(u) = &api_url {
        if let Err(e) = crate::exchange::http::validate_base_url(u) {
            problems.push((pos.value(&here("api_url")), e.to_string()));
        }
    }
    let list = |k: &str, problems: &mut Problems| -> Vec<String> {
        match obj.get(k) {
            None => vec![],
            Some(Value::Array(a))
                if a.iter()
                    .all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty())) =>
            {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| s.trim().to_string())
                    .collect()
            }
            Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
            Some(_) => {
                problems.push((
                    pos.value(&here(k)),
                    format!("`{k}` must be a list of texts"),
                ));
                vec![]
            }
        }
    };
    let bot_logs: Vec<PathBuf> = list("bot_logs", &mut problems)
        .into_iter()
        .map(|p| base.join(p))
        .collect();
    for (j, p) in bot_logs.iter().enumerate() {
        if !p.is_file() {
            let mut path = here("bot_logs");
            path.push(Seg::Index(j));
            problems.push((
                pos.value(&path),
                format!("bot log {} is not a readable file", p.display()),
            ));
        }
    }
    let scopes = list("scopes", &mut problems);
    // Credentials last: only for an account that is otherwise well-formed.
    let (Some(exchange), Some(label), Some(creds)) = (exchange, label, creds) else {
        return Err(problems);
    };
    let load = |s: &CredSource, k: &str, problems: &mut Problems| {
        let mut p = here(k);
        if let Some(Value::Object(m)) = obj.get(k) {
            if let Some(kind) = m.keys().next() {
                p.push(Seg::Key(kind.clone()));
            }
        }
        match s.load(exchange) {
            Ok(c) => Some(c),
            Err(CredentialError::Missing { .. }) => {
                problems.push((
                    pos.value(&p),
                    format!(
                        "missing credential: {} {}",
                        s.names(exchange),
                        match s {
                            CredSource::Env(_) => "are not set in the environment",
                            CredSource::File(_) | CredSource::Drill => "are not in the file",
                        }
                    ),
                ));
                None
            }
            Err(e) => {
                problems.push((pos.value(&p), e.to_string()));
                None
            }
        }
    };
    let main = load(&creds, "credentials", &mut problems);
    let ro = readonly
        .as_ref()
        .and_then(|s| load(s, "readonly", &mut problems));
    let ms = master
        .as_ref()
        .and_then(|s| load(s, "master", &mut problems));
    let Some(main) = main else {
        return Err(problems);
    };
    if main.primary.is_none() {
        problems.push((
            pos.value(&here("credentials")),
            format!(
                "missing credential: the leaked key's pair {} (a read-only key alone cannot contain it)",
                creds.names(exchange)
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let pick =
        |c: Option<credentials::Credentials>| -> Option<KeyPair> { c.and_then(|c| c.primary) };
    let conn = Connection {
        exchange: exchange.name.to_string(),
        api_url: api_url.clone(),
        primary: main.primary.clone(),
        readonly: pick(ro).or(main.readonly.clone()),
        master: pick(ms)
            .or(main.master.clone())
            .map(|m| (m, sub_account.clone().or(main.sub_account.clone()))),
    };
    Ok(Account {
        label,
        exchange,
        conn,
        bot_logs,
        source: Source {
            credentials: creds,
            readonly,
            master,
            sub_account,
            api_url,
        },
        scopes,
    })
}

/// One account per `--exchange` flag (labelled by the exchange's name): credentials from the
/// environment or `--credentials FILE`, as a single run reads them.
pub fn from_flags(
    exchanges: &[&'static Descriptor],
    credentials: Option<&Path>,
) -> Result<Vec<Account>, crate::exit::Failure> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for d in exchanges {
        if !seen.insert(d.name) {
            return Err(crate::exit::Failure::usage(format!(
                "--exchange {} is given twice; for several accounts on one exchange use --accounts FILE",
                d.name
            )));
        }
        let src = match credentials {
            Some(p) => CredSource::File(p.to_path_buf()),
            None => CredSource::Env(d.env_prefix.to_string()),
        };
        let missing = || {
            crate::exit::Failure::usage(format!(
                "missing credential for {}: {} are needed to contain the leaked key",
                d.name,
                src.names(d)
            ))
            .with_hint("nothing was started; set them in the environment or pass --credentials FILE (chmod 600)")
        };
        let c = src.load(d).map_err(|e| match e {
            CredentialError::Missing { .. } => missing(),
            e => crate::exit::Failure::usage(e.to_string()),
        })?;
        if c.primary.is_none() {
            return Err(missing());
        }
        out.push(Account {
            label: d.name.to_string(),
            exchange: d,
            conn: Connection {
                exchange: d.name.to_string(),
                api_url: None,
                primary: c.primary,
                readonly: c.readonly,
                master: c.master.map(|m| (m, c.sub_account)),
            },
            bot_logs: vec![],
            source: Source {
                credentials: src,
                readonly: None,
                master: None,
                sub_account: None,
                api_url: None,
            },
            scopes: vec![],
        });
    }
    Ok(out)
}

/// Rebuilds an account from what the incident recorded (for `respond resume INCIDENT_DIR`):
/// the credentials are read again from the same sources.
pub fn from_record(
    label: &str,
    exchange: &str,
    src: &Source,
) -> Result<Account, crate::exit::Failure> {
    let d = registry::get(exchange).ok_or_else(|| {
        crate::exit::Failure::usage(format!(
            "unknown exchange `{exchange}` in the incident record"
        ))
    })?;
    let fail = |e: CredentialError| crate::exit::Failure::usage(format!("account {label}: {e}"));
    let main = src.credentials.load(d).map_err(fail)?;
    let ro = match &src.readonly {
        Some(s) => s.load(d).map_err(fail)?.primary,
        None => None,
    };
    let ms = match &src.master {
        Some(s) => s.load(d).map_err(fail)?.primary,
        None => None,
    };
    Ok(Account {
        label: label.to_string(),
        exchange: d,
        conn: Connection {
            exchange: d.name.to_string(),
            api_url: src.api_url.clone(),
            primary: main.primary.clone(),
            readonly: ro.or(main.readonly.clone()),
            master: ms
                .or(main.master.clone())
                .map(|m| (m, src.sub_account.clone().or(main.sub_account.clone()))),
        },
        bot_logs: vec![],
        source: src.clone(),
        scopes: vec![],
    })
}
