//! Loading exchange credentials: environment, a private `KEY=VALUE` file, or a no-echo prompt.
//!
//! Never from the command line (argv is visible to every user through `ps`). Two key pairs
//! may be given: the primary (the leaked key, used while it still works) and an optional
//! read-only investigation key the run switches to once the leaked key is deleted. Names are
//! `<EXCHANGE>_ACCESS_KEY` / `<EXCHANGE>_SECRET_KEY` and `<EXCHANGE>_READONLY_ACCESS_KEY` /
//! `<EXCHANGE>_READONLY_SECRET_KEY`, the same in the environment and in the file. Exchanges
//! whose keys carry a third part (a passphrase) read it from `<EXCHANGE>_PASSPHRASE`,
//! `<EXCHANGE>_READONLY_PASSPHRASE` and `<EXCHANGE>_MASTER_PASSPHRASE`, a secret like the
//! secret key (prompted without echo, redacted everywhere). A file that group or others can
//! read is refused. A secret that is a PEM private key may span lines: in the file as one
//! quoted value, at the prompt as the pasted block up to its `-----END` line. Errors name
//! variables and files, never values.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// One access/secret key pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub access_key: String,
    pub secret_key: Secret,
    /// The key's passphrase, on exchanges whose keys have one (`<EXCHANGE>_PASSPHRASE`).
    pub passphrase: Option<Secret>,
}

/// The key pairs a run may use.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub primary: Option<KeyPair>,
    pub readonly: Option<KeyPair>,
    /// A parent account's key (`<EXCHANGE>_MASTER_ACCESS_KEY` / `…_MASTER_SECRET_KEY`), for
    /// exchanges where a parent account can delete a sub-account's key by API.
    pub master: Option<KeyPair>,
    /// Which sub-account the leaked key belongs to, as the parent account names it
    /// (`<EXCHANGE>_SUB_ACCOUNT`; not a secret).
    pub sub_account: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{}: readable by group or others (mode {mode:o}); run `{}` and try again", path.display(), crate::output::shell_command(["chmod", "600", &path.display().to_string()]))]
    FileTooOpen { path: PathBuf, mode: u32 },
    #[error("cannot read credentials file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{access} is set but {secret} is not (or the reverse); set both")]
    HalfPair { access: String, secret: String },
    #[error("no credentials: set {access} and {secret} in the environment, pass --credentials FILE, or run on a terminal to be prompted")]
    Missing { access: String, secret: String },
    #[error("reading the prompt failed: {0}")]
    Prompt(String),
}

/// Variable names for one exchange.
struct Names {
    access: String,
    secret: String,
    ro_access: String,
    ro_secret: String,
    master_access: String,
    master_secret: String,
    sub_account: String,
    passphrase: String,
    ro_passphrase: String,
    master_passphrase: String,
    /// The exchange's keys carry a passphrase ([`crate::exchange::registry::CredentialField`]).
    has_passphrase: bool,
}

fn names(exchange: &str) -> Names {
    let up: String = exchange
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    Names {
        access: format!("{up}_ACCESS_KEY"),
        secret: format!("{up}_SECRET_KEY"),
        ro_access: format!("{up}_READONLY_ACCESS_KEY"),
        ro_secret: format!("{up}_READONLY_SECRET_KEY"),
        master_access: format!("{up}_MASTER_ACCESS_KEY"),
        master_secret: format!("{up}_MASTER_SECRET_KEY"),
        sub_account: format!("{up}_SUB_ACCOUNT"),
        passphrase: format!("{up}_PASSPHRASE"),
        ro_passphrase: format!("{up}_READONLY_PASSPHRASE"),
        master_passphrase: format!("{up}_MASTER_PASSPHRASE"),
        has_passphrase: crate::exchange::registry::get(exchange)
            .is_some_and(|d| d.credential_fields.iter().any(|f| f.suffix == "PASSPHRASE")),
    }
}

/// Loads credentials for `exchange` (its registry name). A file, when given, is the only source; else
/// the environment; else, on a terminal with `allow_prompt`, a no-echo prompt for the
/// primary pair.
pub fn load(
    exchange: &str,
    file: Option<&Path>,
    allow_prompt: bool,
) -> Result<Credentials, CredentialError> {
    let n = names(exchange);
    let vars = match file {
        Some(path) => read_file(path)?,
        None => {
            let mut m = HashMap::new();
            for name in [
                &n.access,
                &n.secret,
                &n.ro_access,
                &n.ro_secret,
                &n.master_access,
                &n.master_secret,
                &n.sub_account,
                &n.passphrase,
                &n.ro_passphrase,
                &n.master_passphrase,
            ] {
                if let Ok(v) = std::env::var(name) {
                    m.insert(name.clone(), v);
                }
            }
            m
        }
    };
    let mut creds = Credentials {
        primary: with_passphrase(pair(&vars, &n.access, &n.secret)?, &vars, &n.passphrase),
        readonly: with_passphrase(
            pair(&vars, &n.ro_access, &n.ro_secret)?,
            &vars,
            &n.ro_passphrase,
        ),
        master: with_passphrase(
            pair(&vars, &n.master_access, &n.master_secret)?,
            &vars,
            &n.master_passphrase,
        ),
        sub_account: vars
            .get(&n.sub_account)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    };
    if creds.primary.is_none()
        && creds.readonly.is_none()
        && file.is_none()
        && allow_prompt
        && std::io::stdin().is_terminal()
    {
        creds.primary = prompt_pair(
            &n.access,
            &n.secret,
            n.has_passphrase.then_some(&*n.passphrase),
        )?;
    }
    if creds.primary.is_none() && creds.readonly.is_none() {
        return Err(CredentialError::Missing {
            access: n.access,
            secret: n.secret,
        });
    }
    Ok(creds)
}

/// Asks on the terminal, without echo, for the read-only pair (`<EXCHANGE>_READONLY_…`): a
/// resume after the old key was deleted needs it, not the old key.
pub fn prompt_readonly(exchange: &str) -> Result<KeyPair, CredentialError> {
    let n = names(exchange);
    let pass = n.has_passphrase.then_some(&*n.ro_passphrase);
    prompt_pair(&n.ro_access, &n.ro_secret, pass)?.ok_or(CredentialError::Missing {
        access: n.ro_access,
        secret: n.ro_secret,
    })
}

fn prompt_pair(
    access: &str,
    secret: &str,
    passphrase: Option<&str>,
) -> Result<Option<KeyPair>, CredentialError> {
    let prompt = |name: &str| {
        rpassword::prompt_password(format!("{name} (input hidden): "))
            .map_err(|e| CredentialError::Prompt(e.to_string()))
    };
    let mut m = HashMap::new();
    m.insert(access.to_string(), prompt(access)?);
    let first = prompt(secret)?;
    let value = pem_rest(first, || {
        rpassword::read_password().map_err(|e| CredentialError::Prompt(e.to_string()))
    })?;
    m.insert(secret.to_string(), value);
    if let Some(p) = passphrase {
        m.insert(p.to_string(), prompt(p)?);
    }
    Ok(with_passphrase(
        pair(&m, access, secret)?,
        &m,
        passphrase.unwrap_or(""),
    ))
}

/// The pair with its passphrase from `name`, when one is set (a secret from here on).
fn with_passphrase(
    pair: Option<KeyPair>,
    vars: &HashMap<String, String>,
    name: &str,
) -> Option<KeyPair> {
    pair.map(|mut k| {
        k.passphrase = vars
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        k
    })
}

/// Most lines a pasted PEM private key is read for.
const PEM_MAX_LINES: usize = 200;

/// A secret typed or pasted at a prompt, which reads one line at a time: a PEM private key's
/// first line (`-----BEGIN …`) is followed by the lines `next` reads, up to its `-----END …`
/// line. Any other value is kept as it is.
fn pem_rest(
    first: String,
    mut next: impl FnMut() -> Result<String, CredentialError>,
) -> Result<String, CredentialError> {
    if !first.trim_start().starts_with("-----BEGIN") || first.contains("-----END") {
        return Ok(first);
    }
    let mut out = first.trim().to_string();
    for _ in 0..PEM_MAX_LINES {
        let line = next()?;
        out.push('\n');
        out.push_str(line.trim());
        if line.contains("-----END") {
            return Ok(out);
        }
    }
    Err(CredentialError::Prompt(format!(
        "the pasted private key had no -----END line within {PEM_MAX_LINES} lines"
    )))
}

fn pair(
    vars: &HashMap<String, String>,
    access: &str,
    secret: &str,
) -> Result<Option<KeyPair>, CredentialError> {
    let a = vars.get(access).map(|s| s.trim()).filter(|s| !s.is_empty());
    let s = vars.get(secret).map(|s| s.trim()).filter(|s| !s.is_empty());
    match (a, s) {
        (Some(a), Some(s)) => Ok(Some(KeyPair {
            access_key: a.to_string(),
            secret_key: Secret::new(s),
            passphrase: None,
        })),
        (None, None) => Ok(None),
        _ => Err(CredentialError::HalfPair {
            access: access.into(),
            secret: secret.into(),
        }),
    }
}

/// Reads `KEY=VALUE` lines (blank lines and `#` comments allowed, optional `export `, values
/// optionally quoted, an unquoted ` # comment` after a value stripped; a quoted `…_SECRET_KEY`
/// may span lines, as a PEM private key does). Refuses a file with any
/// group/other permission bit. A line that cannot be read as such is refused with `file:line`
/// when its key is one this tool reads (other lines of a shared `.env` file do not matter).
fn read_file(path: &Path) -> Result<HashMap<String, String>, CredentialError> {
    let io = |source| CredentialError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CredentialError::FileTooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(io)?;
    let syntax = |line: usize, reason: &str| CredentialError::Syntax {
        path: path.to_path_buf(),
        line,
        reason: reason.to_string(),
    };
    let mut out = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut next = 0;
    while next < lines.len() {
        let i = next;
        next += 1;
        let line = lines[i].trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            // The line may be a bare secret: say where, never what.
            return Err(syntax(i + 1, "expected KEY=VALUE"));
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(syntax(
                i + 1,
                "the name before = must be letters, digits and _",
            ));
        }
        // A quoted secret may span lines (a PEM private key): it runs to the line that
        // closes its quote.
        let mut v = v.to_string();
        if k.ends_with("_SECRET_KEY") {
            if let Some(q) = v
                .trim_start()
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
            {
                if !v.trim_start()[1..].contains(q) {
                    if let Some(end) = (next..lines.len()).find(|j| lines[*j].contains(q)) {
                        for l in &lines[next..=end] {
                            v.push('\n');
                            v.push_str(l.trim_end());
                        }
                        next = end + 1;
                    }
                }
            }
        }
        match value(&v) {
            Ok(v) => {
                out.insert(k.to_string(), v);
            }
            // Only the keys this tool reads must parse; a line never shows its value.
            Err(reason)
                if k.ends_with("_ACCESS_KEY")
                    || k.ends_with("_SECRET_KEY")
                    || k.ends_with("_PASSPHRASE") =>
            {
                return Err(syntax(i + 1, &format!("{k}: {reason}")));
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// The value of a `KEY=VALUE` line, as a shell would read it: `"…"` or `'…'` quoted (then
/// only whitespace and a `# comment` may follow), or unquoted up to a ` #` comment. An
/// unquoted value with whitespace inside is refused: a secret never holds a space, and
/// `KEY=value comment` must not become part of the secret. Reasons never include the value.
fn value(v: &str) -> Result<String, &'static str> {
    let v = v.trim();
    if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &v[1..];
        let Some(end) = body.find(q) else {
            return Err("the value's opening quote is never closed");
        };
        let rest = body[end + 1..].trim_start();
        if !(rest.is_empty() || rest.starts_with('#')) {
            return Err("only a `# comment` may follow the closing quote");
        }
        return Ok(body[..end].to_string());
    }
    let cut = v
        .char_indices()
        .find(|(i, c)| *c == '#' && (*i == 0 || v[..*i].ends_with(char::is_whitespace)))
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    let value = v[..cut].trim_end();
    if value.contains(char::is_whitespace) {
        return Err(
            "the unquoted value contains a space; start a comment with ` #`, or quote the value",
        );
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, mode: u32, text: &str) -> PathBuf {
        let p = dir.join("creds.env");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn file_with_both_pairs() {
        let t = tempfile::tempdir().unwrap();
        let p = write(
            t.path(),
            0o600,
            "# keys\nTESTX_ACCESS_KEY=ak-primary-0001\nexport TESTX_SECRET_KEY=\"sk-primary-value-0001\"\n\nTESTX_READONLY_ACCESS_KEY=ak-ro\nTESTX_READONLY_SECRET_KEY='sk-readonly-value-0001'\n",
        );
        let c = load("testx", Some(&p), false).unwrap();
        let pr = c.primary.unwrap();
        assert_eq!(pr.access_key, "ak-primary-0001");
        assert_eq!(pr.secret_key.expose(), "sk-primary-value-0001");
        assert_eq!(
            c.readonly.unwrap().secret_key.expose(),
            "sk-readonly-value-0001"
        );
    }

    /// Keys with a passphrase (a third part): read for every key from the file, a secret from then
    /// on (redacted wherever text goes), and a broken passphrase line is refused by line,
    /// never shown.
    #[test]
    fn passphrases_are_read_as_secrets() {
        let t = tempfile::tempdir().unwrap();
        let p = write(
            t.path(),
            0o600,
            "TESTP_ACCESS_KEY=kc-ak-1\nTESTP_SECRET_KEY=kc-sk-value-0001\nTESTP_PASSPHRASE=kc-pass-primary-0001\n\
             TESTP_READONLY_ACCESS_KEY=kc-ro\nTESTP_READONLY_SECRET_KEY=kc-sk-ro-0001\nTESTP_READONLY_PASSPHRASE='kc-pass-ro-0001'\n\
             TESTP_MASTER_ACCESS_KEY=kc-m\nTESTP_MASTER_SECRET_KEY=kc-sk-m-0001\nTESTP_MASTER_PASSPHRASE=kc-pass-master-0001\nTESTP_SUB_ACCOUNT=bot1\n",
        );
        let c = load("testp", Some(&p), false).unwrap();
        let pass = |k: &Option<KeyPair>| {
            k.as_ref()
                .and_then(|k| k.passphrase.as_ref())
                .map(|s| s.expose().to_string())
        };
        assert_eq!(pass(&c.primary).as_deref(), Some("kc-pass-primary-0001"));
        assert_eq!(pass(&c.readonly).as_deref(), Some("kc-pass-ro-0001"));
        assert_eq!(pass(&c.master).as_deref(), Some("kc-pass-master-0001"));
        assert_eq!(c.sub_account.as_deref(), Some("bot1"));
        let shown = crate::secret::redact("passphrase kc-pass-primary-0001 in a message");
        assert!(!shown.contains("kc-pass-primary-0001"), "{shown}");
        assert!(!format!("{:?}", c.primary).contains("kc-pass-primary-0001"));
        let bad = write(
            t.path(),
            0o600,
            "TESTP_ACCESS_KEY=kc-ak-1\nTESTP_SECRET_KEY=kc-sk-value-0001\nTESTP_PASSPHRASE=\"kc-unclosed-0002\n",
        );
        let e = load("testp", Some(&bad), false).unwrap_err().to_string();
        assert!(e.contains(":3:") && e.contains("TESTP_PASSPHRASE"), "{e}");
        assert!(!e.contains("kc-unclosed-0002"), "{e}");
    }

    #[test]
    fn open_file_is_refused_with_chmod_advice() {
        let t = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o644] {
            let p = write(
                t.path(),
                mode,
                "TESTY_ACCESS_KEY=a\nTESTY_SECRET_KEY=secret-never-shown-0002\n",
            );
            let e = load("testy", Some(&p), false).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, CredentialError::FileTooOpen { .. }), "{m}");
            assert!(m.contains("chmod 600"), "{m}");
            assert!(!m.contains("secret-never-shown-0002"));
        }
    }

    #[test]
    fn errors_never_show_values() {
        let t = tempfile::tempdir().unwrap();
        let p = write(t.path(), 0o600, "just-a-bare-secret-value-0003\n");
        let m = load("testz", Some(&p), false).unwrap_err().to_string();
        assert!(
            m.contains(":1:") && !m.contains("just-a-bare-secret-value-0003"),
            "{m}"
        );
        let p = write(t.path(), 0o600, "TESTZ_ACCESS_KEY=only-access-0004\n");
        let m = load("testz", Some(&p), false).unwrap_err().to_string();
        assert!(
            m.contains("TESTZ_SECRET_KEY") && !m.contains("only-access-0004"),
            "{m}"
        );
    }

    #[test]
    fn comments_after_values_never_become_part_of_the_secret() {
        let t = tempfile::tempdir().unwrap();
        let p = write(
            t.path(),
            0o600,
            "TESTC_ACCESS_KEY=ak-0006 # the bot's key\n\
             TESTC_SECRET_KEY=sk-value-0006\t# rotated 2026-11\n\
             TESTC_READONLY_ACCESS_KEY=\"ak-ro-0006\"   # view only\n\
             TESTC_READONLY_SECRET_KEY='sk#ro 0006' # quoted: kept whole\n\
             OTHER_SETTING=hello world\n",
        );
        let c = load("testc", Some(&p), false).unwrap();
        let pr = c.primary.unwrap();
        assert_eq!(pr.access_key, "ak-0006");
        assert_eq!(pr.secret_key.expose(), "sk-value-0006");
        let ro = c.readonly.unwrap();
        assert_eq!(ro.access_key, "ak-ro-0006");
        assert_eq!(ro.secret_key.expose(), "sk#ro 0006");
        // `#` inside a word is part of it, as in a shell.
        let p = write(
            t.path(),
            0o600,
            "TESTC_ACCESS_KEY=a#b\nTESTC_SECRET_KEY=c#d\n",
        );
        let c = load("testc", Some(&p), false).unwrap();
        assert_eq!(c.primary.unwrap().secret_key.expose(), "c#d");
    }

    #[test]
    fn unreadable_values_are_refused_with_the_line_and_never_shown() {
        let t = tempfile::tempdir().unwrap();
        for (text, line) in [
            ("TESTD_ACCESS_KEY=a\nTESTD_SECRET_KEY=sk-0007 rotated\n", 2),
            ("TESTD_ACCESS_KEY=a\n\nTESTD_SECRET_KEY=\"sk-0007\n", 3),
            ("TESTD_ACCESS_KEY='a'x\nTESTD_SECRET_KEY=sk-0007\n", 1),
        ] {
            let p = write(t.path(), 0o600, text);
            let e = load("testd", Some(&p), false).unwrap_err();
            let m = e.to_string();
            assert!(
                matches!(e, CredentialError::Syntax { line: l, .. } if l == line),
                "{m}"
            );
            assert!(m.contains(&format!("creds.env:{line}:")), "{m}");
            assert!(!m.contains("sk-0007") && !m.contains("rotated"), "{m}");
        }
    }

    const PEM: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2choAoGCCqGSM49\nAwEHoUQDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Z5A/4QCLi8\nmaQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n-----END EC PRIVATE KEY-----";

    /// A PEM private key is one quoted value over several lines in the file, a value with
    /// literal `\n` in the environment, and a pasted block at the prompt; a quote never closed
    /// is still refused at the line that opened it.
    #[test]
    fn multi_line_private_keys_are_read_whole() {
        let t = tempfile::tempdir().unwrap();
        for q in ['"', '\''] {
            let p = write(
                t.path(),
                0o600,
                &format!(
                    "TESTM_ACCESS_KEY=organizations/o/apiKeys/k\nTESTM_SECRET_KEY={q}{PEM}\n{q}\nTESTM_READONLY_ACCESS_KEY=ro\nTESTM_READONLY_SECRET_KEY=sk-ro-0008\n"
                ),
            );
            let c = load("testm", Some(&p), false).unwrap();
            assert_eq!(c.primary.unwrap().secret_key.expose(), PEM);
            assert_eq!(c.readonly.unwrap().secret_key.expose(), "sk-ro-0008");
        }
        let p = write(
            t.path(),
            0o600,
            "TESTM_ACCESS_KEY=a\nTESTM_SECRET_KEY=\"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n",
        );
        let e = load("testm", Some(&p), false).unwrap_err().to_string();
        assert!(
            e.ends_with(":2: TESTM_SECRET_KEY: the value's opening quote is never closed"),
            "{e}"
        );
        assert!(!e.contains("MHcC"), "{e}");

        std::env::set_var("ENVTESTPEM_ACCESS_KEY", "organizations/o/apiKeys/k");
        std::env::set_var("ENVTESTPEM_SECRET_KEY", format!("{PEM}\n"));
        let c = load("envtestpem", None, false).unwrap();
        assert_eq!(c.primary.unwrap().secret_key.expose(), PEM);

        let mut rest = PEM.lines().skip(1).map(String::from);
        let first = PEM.lines().next().unwrap().to_string();
        let got = pem_rest(first, || Ok(rest.next().unwrap())).unwrap();
        assert_eq!(got, PEM);
        assert_eq!(
            pem_rest("plain-secret".into(), || unreachable!()).unwrap(),
            "plain-secret"
        );
        let e = pem_rest("-----BEGIN X-----".into(), || Ok("AAAA".into())).unwrap_err();
        assert!(e.to_string().contains("no -----END line"), "{e}");
    }

    #[test]
    fn environment_and_missing() {
        // Unique names: tests run in parallel in one process.
        std::env::set_var("ENVTESTQ_ACCESS_KEY", "ak-env");
        std::env::set_var("ENVTESTQ_SECRET_KEY", "sk-env-value-0005");
        let c = load("envtestq", None, false).unwrap();
        assert_eq!(c.primary.unwrap().access_key, "ak-env");
        assert!(c.readonly.is_none());
        let e = load("envtestnone", None, false).unwrap_err();
        assert!(e.to_string().contains("ENVTESTNONE_ACCESS_KEY"));
    }
}
