//! `checklist.replacement`: the replacement-key checklist (`checklist.md`).
//!
//! Rendered with handlebars from templates compiled into the binary (`templates/checklist.*.hbs`),
//! in strict mode (a missing variable is an error, not an empty line) and without HTML escaping
//! (the output is Markdown). Everything that comes from the exchange or the playbook's
//! arguments is passed as *data*, never as template text, so a bot named `{{x}}` is printed as
//! is. English always; the exchange's home language too when a template exists for it (Korean
//! today). The scope table, what a trading bot needs by default, the IP-allowlist limit and
//! the revocation instructions come from the exchange's descriptor. The rotation date is
//! counted from the run's start, never from the clock, so a re-render gives the same file.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::exchange::registry::{self, ScopeInfo};
use crate::steps::exchange::{is_withdraw_scope, probe_outputs};
use crate::steps::{
    ArgSpec, ArgType, Effect, StepContext, StepError, StepInfo, StepKind, StepOutcome,
};

const EN: &str = include_str!("templates/checklist.en.hbs");
const KO: &str = include_str!("templates/checklist.ko.hbs");

/// The exchange's scope vocabulary, as the checklist shows it.
struct Scopes {
    exchange: String,
    table: &'static [ScopeInfo],
}

impl Scopes {
    fn of(exchange: &str) -> Self {
        Scopes {
            exchange: exchange.to_string(),
            table: registry::get(exchange).map(|d| d.scopes).unwrap_or(&[]),
        }
    }

    /// What one trading bot needs when the playbook names no bots.
    fn bot_defaults(&self) -> Vec<String> {
        self.table
            .iter()
            .filter(|s| s.bot_default)
            .map(|s| s.name.to_string())
            .collect()
    }

    /// (English, home-language) labels of a scope.
    fn label(&self, scope: &str) -> (String, String) {
        self.table
            .iter()
            .find(|s| s.name == scope)
            .map(|s| {
                (
                    format!("{} (`{}`)", s.label_en, s.name),
                    format!("{} (`{}`)", s.label_local, s.name),
                )
            })
            .unwrap_or_else(|| (format!("`{scope}`"), format!("`{scope}`")))
    }

    fn moves_funds(&self, scope: &str) -> bool {
        is_withdraw_scope(&self.exchange, scope)
    }

    fn row(&self, scope: &str, held: Option<bool>) -> ScopeRow {
        let (label_en, label_local) = self.label(scope);
        let (h, k) = match held {
            Some(true) => ("**yes**", "**있음**"),
            Some(false) => ("no", "없음"),
            None => ("unknown", "알 수 없음"),
        };
        ScopeRow {
            scope: scope.to_string(),
            label_en,
            label_local,
            held: h,
            held_ko: k,
            proof: String::new(),
            proof_ko: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct ScopeRow {
    scope: String,
    label_en: String,
    /// In the exchange's home language.
    label_local: String,
    held: &'static str,
    held_ko: &'static str,
    /// What this run did with the key that proves it held the scope (empty: nothing).
    proof: String,
    proof_ko: String,
}

/// Data from an argument or the exchange, made safe for one Markdown line.
fn inline(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if c == '`' {
                '\''
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

fn bad(arg: &str, message: impl Into<String>) -> StepError {
    StepError::BadArgument {
        arg: arg.into(),
        message: message.into(),
    }
}

/// An argument holding another step's outputs: an object, or its JSON text (a template that
/// rendered a whole object gives text).
fn object_arg(
    args: &Map<String, Value>,
    name: &str,
) -> Result<Option<Map<String, Value>>, StepError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(bad(name, "expected an object (another step's outputs)")),
        },
        Some(_) => Err(bad(name, "expected an object (another step's outputs)")),
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
struct Bot {
    name: String,
    needs: Vec<String>,
}

fn parse_bots(scopes: &Scopes, v: Option<&Value>) -> Result<Vec<Bot>, StepError> {
    let items = match v {
        None | Some(Value::Null) => {
            return Ok(vec![Bot {
                name: "trading bot".into(),
                needs: scopes.bot_defaults(),
            }])
        }
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(_) => {
            return Err(bad(
                "bots",
                "expected a non-empty list of {name, needs: [scopes]}",
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let name = b
                .get("name")
                .and_then(Value::as_str)
                .map(inline)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("bots", format!("bot #{} has no `name`", i + 1)))?;
            let needs = match b.get("needs") {
                None | Some(Value::Null) => scopes.bot_defaults(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|s| {
                        s.as_str().map(inline).ok_or_else(|| {
                            bad(
                                "bots",
                                format!("bot `{name}`: `needs` must list scope names"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err(bad("bots", format!("bot `{name}`: `needs` must be a list")))
                }
            };
            if let Some(w) = needs.iter().find(|s| scopes.moves_funds(s)) {
                return Err(bad(
                    "bots",
                    format!(
                        "bot `{name}` asks for `{w}`: a bot key must never hold a withdrawal scope"
                    ),
                ));
            }
            Ok(Bot { name, needs })
        })
        .collect()
}

/// `checklist.replacement`.
pub struct ReplacementChecklist;

const ARGS: &[ArgSpec] = &[
    ArgSpec { name: "probe", ty: ArgType::Map, required: false, description: "outputs of exchange.probe_permissions (else the old key is probed again)" },
    ArgSpec { name: "bots", ty: ArgType::List, required: false, description: "bots as {name, needs: [scopes]} (default: one trading bot needing view_account, view_orders, make_orders)" },
    ArgSpec { name: "bot_configs", ty: ArgType::List, required: false, description: "bot configuration files or places that hold the key" },
    ArgSpec { name: "rotate_days", ty: ArgType::Integer, required: false, description: "rotate the new keys after this many days, 30 to 90 (default 60)" },
    ArgSpec { name: "snapshot", ty: ArgType::Map, required: false, description: "outputs of exchange.snapshot (withdrawal allowlist, key expiry)" },
    ArgSpec { name: "verify", ty: ArgType::Map, required: false, description: "outputs of exchange.verify_key_revoked" },
    ArgSpec { name: "max_ips", ty: ArgType::Integer, required: false, description: "most IPs a key's allowlist may hold (default: the exchange's limit, else 10)" },
];

/// Everything the templates see.
#[derive(Debug, Serialize)]
pub struct ChecklistData {
    exchange: String,
    key: String,
    key_expire_at: Option<String>,
    manual_revoke: String,
    manual_revoke_local: String,
    old_scopes: Vec<ScopeRow>,
    old_critical: bool,
    old_reasons: Vec<String>,
    withdraw_held: bool,
    bots: Vec<Value>,
    bot_configs: Vec<String>,
    addresses: Vec<String>,
    addresses_known: bool,
    revoked: Value,
    /// `at T by POST /v5/user/delete-api` when this run deleted the key by API.
    deleted_by_respond: Option<String>,
    rotate_date: String,
    rotate_days: i64,
    max_ips: i64,
    /// How people write the exchange's name.
    exchange_display: String,
    /// The exchange's own checklist lines ([`registry::ExchangeTexts`]).
    exchange_notes: Vec<String>,
    /// Pending withdrawals can be cancelled by API.
    withdrawals_cancellable: bool,
}

/// Renders the checklist: English, then the local language when `local_language` is `ko`.
pub fn render(data: &ChecklistData, local_language: &str) -> Result<String, StepError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let tpl_err =
        |e: handlebars::TemplateError| StepError::failed(format!("checklist template: {e}"));
    hb.register_template_string("en", EN).map_err(tpl_err)?;
    hb.register_template_string("ko", KO).map_err(tpl_err)?;
    let render_err =
        |e: handlebars::RenderError| StepError::failed(format!("checklist template: {e}"));
    let mut out = hb.render("en", data).map_err(render_err)?;
    if local_language == "ko" {
        out.push_str("\n---\n\n");
        out.push_str(&hb.render("ko", data).map_err(render_err)?);
    }
    Ok(out)
}

impl ReplacementChecklist {
    const INFO: StepInfo = StepInfo {
        name: "checklist.replacement",
        effect: Effect::Read,
        description: "Writes checklist.md: the new keys to create (scopes per bot, IP allowlist, no withdrawal), storage, rotation date, what else to change",
        args: ARGS,
        outputs: &["path", "rotate_date", "languages"],
    };
}

#[async_trait]
impl StepKind for ReplacementChecklist {
    fn info(&self) -> &'static StepInfo {
        &Self::INFO
    }

    async fn run(
        &self,
        ctx: &StepContext,
        args: &Map<String, Value>,
    ) -> Result<StepOutcome, StepError> {
        let rotate_days = crate::steps::exchange::arg_integer(args, "rotate_days", 60)?;
        if !(30..=90).contains(&rotate_days) {
            return Err(bad(
                "rotate_days",
                format!("{rotate_days} is outside 30..=90 days"),
            ));
        }
        let session = ctx.exchange()?;
        let primary = session.primary().clone();
        let caps = primary.capabilities().clone();
        let scopes = Scopes::of(&caps.name);
        let ip_limit = registry::get(&caps.name)
            .and_then(|d| d.ip_allowlist_limit)
            .unwrap_or(10);
        let max_ips = crate::steps::exchange::arg_integer(args, "max_ips", i64::from(ip_limit))?;
        let started = ctx
            .run
            .get("started_at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                StepError::failed("the run has no valid `run.started_at`; cannot date the rotation")
            })?;
        let rotate_date = (started + chrono::Duration::days(rotate_days))
            .format("%Y-%m-%d")
            .to_string();
        let bots_arg = match args.get("bots") {
            Some(Value::String(s)) => Some(
                serde_json::from_str::<Value>(s)
                    .map_err(|_| bad("bots", "expected a list of {name, needs: [scopes]}"))?,
            ),
            other => other.cloned(),
        };
        let bots = parse_bots(&scopes, bots_arg.as_ref())?;
        let bot_configs: Vec<String> =
            crate::steps::exchange::arg_string_list(args, "bot_configs")?
                .unwrap_or_default()
                .iter()
                .map(|s| inline(s))
                .collect();

        // The old key's scopes: from the probe step, else probe again, else unknown.
        let probe: Option<Map<String, Value>> = match object_arg(args, "probe")? {
            Some(m) => Some(m),
            None => match primary.probe_permissions().await {
                Ok(p) => Some(probe_outputs(&p)),
                Err(e) => {
                    ctx.printer.status(&format!(
                        "[{}] the old key's scopes are unknown: {e}",
                        ctx.step_id
                    ));
                    None
                }
            },
        };
        let held: Vec<String> = str_list(probe.as_ref().and_then(|p| p.get("scopes")));
        let mut old_scopes = Vec::new();
        let mut listed = BTreeSet::new();
        if let Some(p) = &probe {
            for (key, state) in [
                ("scopes", Some(true)),
                ("not_held", Some(false)),
                ("unknown", None),
            ] {
                for s in str_list(p.get(key)) {
                    if listed.insert(s.clone()) {
                        old_scopes.push(scopes.row(&inline(&s), state));
                    }
                }
            }
        }
        for info in scopes.table {
            if listed.insert(info.name.to_string()) {
                old_scopes.push(scopes.row(info.name, None));
            }
        }
        // What the run's own actions proved (a cancel the exchange accepted proves the
        // trading scope), and what it observed of the key's deletion: from the journal.
        let journal = crate::investigation::JournalFacts::read(ctx.rundir.path()).ok();
        let mut held = held;
        if let (Some(facts), Some(desc)) = (&journal, registry::get(&caps.name)) {
            for p in facts.proven_scopes(desc) {
                if let Some(row) = old_scopes.iter_mut().find(|r| r.scope == p.scope) {
                    if row.held != "**yes**" {
                        let proven = scopes.row(&p.scope, Some(true));
                        row.held = proven.held;
                        row.held_ko = proven.held_ko;
                    }
                    row.proof = format!(
                        "confirmed: this run cancelled {} with the key, the exchange accepted it",
                        p.cancelled
                    );
                    row.proof_ko =
                        format!("확인됨: 이번 대응에서 이 키로 {}건 취소 성공", p.cancelled);
                }
                if !held.contains(&p.scope) {
                    held.push(p.scope);
                }
            }
        }
        let zone = caps.local_zone;
        // The exchange's zone then UTC; UTC once where the exchange keeps UTC.
        let when = |t: DateTime<Utc>| {
            let utc = t.format("%Y-%m-%d %H:%M:%S");
            if zone.utc_offset_secs == 0 {
                return format!("{utc} UTC");
            }
            format!(
                "{} {} ({utc} UTC)",
                t.with_timezone(&crate::time::offset(zone.utc_offset_secs))
                    .format("%Y-%m-%d %H:%M:%S"),
                zone.name,
            )
        };
        let bots_data: Vec<Value> = bots
            .iter()
            .map(|b| {
                let lab = |s: &String| {
                    let (en, local) = scopes.label(s);
                    json!({"scope": s, "label_en": en, "label_local": local})
                };
                let dropped: Vec<Value> = held.iter().filter(|s| !b.needs.contains(s)).map(lab).collect();
                json!({"name": b.name, "needs": b.needs.iter().map(lab).collect::<Vec<_>>(), "dropped": dropped})
            })
            .collect();

        let snapshot_arg = object_arg(args, "snapshot")?;
        let snapshot = snapshot_arg.as_ref();
        let addresses: Vec<String> = str_list(snapshot.and_then(|s| s.get("withdrawal_addresses")))
            .iter()
            .map(|a| inline(a))
            .collect();
        let addresses_known = snapshot
            .and_then(|s| s.get("withdrawal_address_count"))
            .is_some_and(|c| c.is_number());
        let key_expire_at = snapshot
            .and_then(|s| s.get("key_expire_at"))
            .and_then(Value::as_str)
            .or_else(|| {
                probe
                    .as_ref()
                    .and_then(|p| p.get("expire_at"))
                    .and_then(Value::as_str)
            })
            .map(inline);
        let revoked = match object_arg(args, "verify")? {
            Some(v) => json!({
                "known": true,
                "revoked": v.get("revoked").and_then(Value::as_bool).unwrap_or(false),
                "observed_at": v
                    .get("observed_at")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| when(t.with_timezone(&Utc))),
            }),
            None => match journal.as_ref().map(|f| f.revocation()) {
                Some(crate::report::Revocation::Revoked { observed_at, .. }) => json!({
                    "known": true, "revoked": true, "observed_at": when(observed_at),
                }),
                Some(crate::report::Revocation::StillValid { checked_at }) => json!({
                    "known": true, "revoked": false, "observed_at": when(checked_at),
                }),
                _ => json!({"known": false, "revoked": false, "observed_at": null}),
            },
        };
        // The key deleted by this run's own API call (the revoke step's `mode` and
        // `confirmed_by` both `api`).
        let deleted_by_respond = journal
            .as_ref()
            .and_then(|f| {
                f.ends_of("exchange.revoke_key")
                    .into_iter()
                    .find_map(|(at, d)| {
                        let o = d.get("outputs")?;
                        let api = |k: &str| o.get(k).and_then(Value::as_str) == Some("api");
                        (api("mode") && api("confirmed_by")).then_some(at)
                    })
            })
            .and_then(|at| {
                registry::get(&caps.name)
                    .filter(|d| !d.revoke.api_call.is_empty())
                    .map(|d| format!("at {} by {}", when(at), d.revoke.api_call))
            });
        let (revoke_en, revoke_local) = caps.revoke_instructions(key_expire_at.as_deref());
        let data = ChecklistData {
            exchange: inline(&caps.name),
            key: primary.key_id_masked(),
            key_expire_at,
            manual_revoke: inline(&revoke_en),
            manual_revoke_local: inline(&revoke_local),
            withdraw_held: held.iter().any(|s| scopes.moves_funds(s)),
            old_critical: probe
                .as_ref()
                .and_then(|p| p.get("critical"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            old_reasons: str_list(probe.as_ref().and_then(|p| p.get("reasons")))
                .iter()
                .map(|s| inline(s))
                .collect(),
            old_scopes,
            bots: bots_data,
            bot_configs,
            addresses,
            addresses_known,
            revoked,
            deleted_by_respond,
            rotate_date: rotate_date.clone(),
            rotate_days,
            max_ips,
            exchange_display: registry::get(&caps.name)
                .map(|d| d.display.to_string())
                .unwrap_or_else(|| inline(&caps.name)),
            exchange_notes: registry::get(&caps.name)
                .map(|d| d.texts.checklist_en.iter().map(|t| t.to_string()).collect())
                .unwrap_or_default(),
            withdrawals_cancellable: caps.cancel_withdrawals,
        };
        let text = render(&data, &caps.local_language)?;
        let rel = "checklist.md";
        ctx.rundir.write(rel, text.as_bytes())?;
        let languages: Vec<&str> = if caps.local_language == "ko" {
            vec!["en", "ko"]
        } else {
            vec!["en"]
        };
        let mut outputs = Map::new();
        outputs.insert("path".into(), Value::from(rel));
        outputs.insert("rotate_date".into(), Value::from(rotate_date.clone()));
        outputs.insert("languages".into(), json!(languages));
        Ok(StepOutcome {
            summary: format!(
                "replacement checklist for {} bots written to {rel}; rotate by {rotate_date}",
                bots.len()
            ),
            outputs,
            artifacts: vec![rel.to_string()],
        })
    }

    /// Rendering again gives the same file from the same inputs: always safe to repeat.
    async fn check_done(
        &self,
        _ctx: &StepContext,
        _args: &Map<String, Value>,
    ) -> Result<Option<StepOutcome>, StepError> {
        Ok(None)
    }

    fn describe(&self, _args: &Map<String, Value>) -> String {
        "would write checklist.md (the replacement-key checklist)".into()
    }
}
