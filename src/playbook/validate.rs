//! Validation: turns positioned YAML into a [`Playbook`] or into every problem at once.
//!
//! Nothing stops at the first error: each check appends a [`Diagnostic`] with the exact
//! line:column of the offending key, value or template expression and, where one helps, a
//! hint (the nearest known name by edit distance). References inside templates are resolved
//! statically here: inputs, step outputs (declared by each kind), exchange capability fields
//! and run fields, plus the `needs` graph (unknown steps, cycles).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use super::inputs;
use super::model::{
    parse_duration, Defaults, InputDecl, InputType, OnError, Playbook, Retry, Step,
};
use super::template::{self, ROOTS};
use super::yaml::{self, Positions, Seg};
use crate::steps::{ArgType, Registry};

/// One problem in a playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// `file:line:column: message` and, on the next line, the hint.
    pub fn render(&self, file: &str) -> String {
        let mut s = format!("{file}:{}:{}: {}", self.line, self.column, self.message);
        if let Some(h) = &self.hint {
            s.push_str(&format!("\n  hint: {h}"));
        }
        s
    }
}

/// The fields of `run` templates may reference.
pub const RUN_FIELDS: &[&str] = &["id", "started_at", "dir"];

/// The field names of [`crate::exchange::Capabilities`], as templates see them (`exchange.*`).
pub fn exchange_fields() -> Vec<String> {
    // Built from the struct itself so a new capability is known here without an edit.
    let sample = crate::exchange::Capabilities {
        name: String::new(),
        revoke_key_by_api: false,
        revoke_after_containment: false,
        read_key_permissions: false,
        batch_cancel: false,
        cancel_withdrawals: false,
        fills: crate::exchange::FillsSource::PerOrder,
        closed_orders_max_window_secs: None,
        closed_orders_max_per_call: 0,
        history_needs_symbol: false,
        client_id_field: String::new(),
        local_zone: crate::exchange::LocalZone::UTC,
        manual_revoke_instructions_en: String::new(),
        manual_revoke_instructions_local: String::new(),
        local_language: String::new(),
    };
    let mut fields: Vec<String> = match serde_json::to_value(sample) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => vec![],
    };
    fields.extend(SESSION_FIELDS.iter().map(|f| f.to_string()));
    fields
}

/// What the session adds to `exchange.*` beside the adapter's capabilities:
/// `reads_after_revoke`, true when a read-only key was given, so the run can still read the
/// account once the old key is revoked.
pub const SESSION_FIELDS: &[&str] = &["reads_after_revoke"];

/// Parses and validates a playbook source.
pub fn check(source: &str, registry: &Registry) -> Result<Playbook, Vec<Diagnostic>> {
    let (doc, pos) = match yaml::parse(source) {
        Ok(x) => x,
        Err(e) => {
            return Err(vec![Diagnostic {
                line: e.pos.line,
                column: e.pos.column,
                message: format!("invalid YAML: {}", e.message),
                hint: None,
            }])
        }
    };
    let mut v = Validator {
        pos: &pos,
        diags: Vec::new(),
        registry,
    };
    let pb = v.playbook(&doc);
    let mut diags = v.diags;
    diags.sort_by_key(|d| (d.line, d.column));
    diags.dedup();
    match pb {
        Some(pb) if diags.is_empty() => Ok(pb),
        _ => Err(diags),
    }
}

/// Whether a resolved value fits a declared argument type.
pub fn arg_type_accepts(ty: ArgType, v: &Value) -> bool {
    match ty {
        ArgType::String => v.is_string(),
        ArgType::Integer => v.is_i64() || v.is_u64(),
        ArgType::Number => v.is_number(),
        ArgType::Boolean => v.is_boolean(),
        ArgType::Duration => v.as_str().is_some_and(|s| parse_duration(s).is_ok()),
        ArgType::List => v.is_array(),
        ArgType::Map => v.is_object(),
        ArgType::Any => true,
    }
}

pub fn arg_type_name(ty: ArgType) -> &'static str {
    match ty {
        ArgType::String => "a string",
        ArgType::Integer => "an integer",
        ArgType::Number => "a number",
        ArgType::Boolean => "a boolean",
        ArgType::Duration => "a duration (30s, 5m, 7d)",
        ArgType::List => "a list",
        ArgType::Map => "a map",
        ArgType::Any => "anything",
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Edit distance (optimal string alignment: insertions, deletions, substitutions and
/// transpositions of neighbours each cost one), so `valeu` is one edit from `value`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The known name nearest to `word`, if it is plausibly a typo of it.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, k)| *d < word.chars().count() && *d <= (k.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_string())
}

fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    nearest(word, known).map(|k| format!("did you mean `{k}`?"))
}

struct Validator<'a> {
    pos: &'a Positions,
    diags: Vec<Diagnostic>,
    registry: &'a Registry,
}

fn key(s: &str) -> Seg {
    Seg::Key(s.to_string())
}

fn child(path: &[Seg], s: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(s);
    p
}

impl Validator<'_> {
    fn at_key(&mut self, path: &[Seg], message: impl Into<String>, hint: Option<String>) {
        let p = self.pos.key(path);
        self.push(p.line, p.column, message, hint);
    }
    fn at_value(&mut self, path: &[Seg], message: impl Into<String>, hint: Option<String>) {
        let p = self.pos.value(path);
        self.push(p.line, p.column, message, hint);
    }
    fn push(
        &mut self,
        line: usize,
        column: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diags.push(Diagnostic {
            line,
            column,
            message: message.into(),
            hint,
        });
    }

    fn unknown_keys(&mut self, m: &Map<String, Value>, path: &[Seg], allowed: &[&str], what: &str) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                let hint = did_you_mean(k, allowed.iter().copied())
                    .or_else(|| Some(format!("{what} may have: {}", allowed.join(", "))));
                self.at_key(
                    &child(path, key(k)),
                    format!("unknown key `{k}` in {what}"),
                    hint,
                );
            }
        }
    }

    fn string(&mut self, m: &Map<String, Value>, path: &[Seg], name: &str) -> Option<String> {
        match m.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.at_value(
                    &child(path, key(name)),
                    format!("`{name}` must be a string, not {}", json_type(other)),
                    None,
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        m: &Map<String, Value>,
        path: &[Seg],
        name: &str,
    ) -> Option<std::time::Duration> {
        let v = m.get(name)?;
        let p = child(path, key(name));
        match v.as_str().map(parse_duration) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.at_value(&p, format!("`{name}`: {e}"), None);
                None
            }
            None => {
                self.at_value(
                    &p,
                    format!(
                        "`{name}` must be a duration such as `30s`, not {}",
                        json_type(v)
                    ),
                    None,
                );
                None
            }
        }
    }

    fn retry(&mut self, m: &Map<String, Value>, path: &[Seg]) -> Option<Retry> {
        let v = m.get("retry")?;
        let p = child(path, key("retry"));
        let Some(r) = v.as_object() else {
            self.at_value(
                &p,
                "`retry` must be a map with `attempts` and `backoff`",
                None,
            );
            return None;
        };
        self.unknown_keys(r, &p, &["attempts", "backoff"], "retry");
        let attempts = match r.get("attempts") {
            Some(a) => match a.as_u64() {
                Some(n) if (1..=100).contains(&n) => n as u32,
                _ => {
                    self.at_value(
                        &child(&p, key("attempts")),
                        "`attempts` must be an integer from 1 to 100",
                        None,
                    );
                    1
                }
            },
            None => {
                self.at_key(&p, "`retry` needs `attempts`", None);
                1
            }
        };
        let backoff = self
            .duration(r, &p, "backoff")
            .unwrap_or(std::time::Duration::from_secs(1));
        Some(Retry { attempts, backoff })
    }

    fn playbook(&mut self, doc: &Value) -> Option<Playbook> {
        let Some(top) = doc.as_object() else {
            self.push(
                1,
                1,
                "a playbook must be a map with `name` and `steps`",
                None,
            );
            return None;
        };
        let root: Vec<Seg> = vec![];
        self.unknown_keys(
            top,
            &root,
            &["name", "description", "inputs", "defaults", "steps"],
            "a playbook",
        );
        let name = self.string(top, &root, "name");
        if !top.contains_key("name") {
            self.push(1, 1, "the playbook has no `name`", None);
        }
        let description = self.string(top, &root, "description");
        let inputs = self.inputs(top.get("inputs"));
        let defaults = match top.get("defaults") {
            None | Some(Value::Null) => Defaults::default(),
            Some(Value::Object(d)) => {
                let p = vec![key("defaults")];
                self.unknown_keys(d, &p, &["timeout", "retry"], "defaults");
                Defaults {
                    timeout: self.duration(d, &p, "timeout"),
                    retry: self.retry(d, &p),
                }
            }
            Some(_) => {
                self.at_value(&[key("defaults")], "`defaults` must be a map", None);
                Defaults::default()
            }
        };
        let steps = self.steps(top.get("steps"), &inputs);
        Some(Playbook {
            name: name.unwrap_or_default(),
            description,
            inputs,
            defaults,
            steps,
        })
    }

    fn inputs(&mut self, v: Option<&Value>) -> Vec<InputDecl> {
        let mut out = Vec::new();
        let base = vec![key("inputs")];
        let m = match v {
            None | Some(Value::Null) => return out,
            Some(Value::Object(m)) => m,
            Some(_) => {
                self.at_value(
                    &base,
                    "`inputs` must be a map of input name to declaration",
                    None,
                );
                return out;
            }
        };
        for (name, decl) in m {
            let p = child(&base, key(name));
            let Some(d) = decl.as_object() else {
                self.at_value(
                    &p,
                    format!("input `{name}` must be a map with at least `type`"),
                    None,
                );
                continue;
            };
            self.unknown_keys(
                d,
                &p,
                &[
                    "type",
                    "default",
                    "required",
                    "description",
                    "secret",
                    "min",
                    "max",
                    "before",
                ],
                "an input",
            );
            let ty = match d.get("type") {
                Some(Value::String(t)) => match InputType::parse(t) {
                    Some(ty) => Some(ty),
                    None => {
                        self.at_value(
                            &child(&p, key("type")),
                            format!("unknown input type `{t}`"),
                            Some(
                                did_you_mean(t, InputType::NAMES.iter().copied()).unwrap_or_else(
                                    || format!("types: {}", InputType::NAMES.join(", ")),
                                ),
                            ),
                        );
                        None
                    }
                },
                _ => {
                    self.at_key(&p, format!("input `{name}` needs a `type`"), None);
                    None
                }
            };
            let default = d.get("default").cloned().filter(|v| !v.is_null());
            let mut default_ok = true;
            if let (Some(ty), Some(dv)) = (ty, &default) {
                if !ty.accepts(dv) {
                    default_ok = false;
                    let (message, hint) = match (ty, dv.as_str()) {
                        (InputType::Time, Some(t)) => (
                            format!(
                                "default of input `{name}`: {}",
                                super::model::parse_time(t).err().unwrap_or_default()
                            ),
                            Some("leave `default` out for \"not given\"".to_string()),
                        ),
                        _ => (
                            format!(
                                "default of input `{name}` is {}, but the input's type is {}",
                                json_type(dv),
                                ty.name()
                            ),
                            None,
                        ),
                    };
                    self.at_value(&child(&p, key("default")), message, hint);
                }
            }
            let min = d.get("min").cloned().filter(|v| !v.is_null());
            let max = d.get("max").cloned().filter(|v| !v.is_null());
            let mut bounds_ok = true;
            if let Some(ty) = ty {
                for (k, b) in [("min", &min), ("max", &max)] {
                    let Some(b) = b else { continue };
                    if let Err(e) = inputs::check_bound(ty, b) {
                        bounds_ok = false;
                        self.at_value(
                            &child(&p, key(k)),
                            format!("`{k}` of input `{name}`: {e}"),
                            None,
                        );
                    }
                }
                if let (true, Some(a), Some(b)) = (bounds_ok, &min, &max) {
                    if let Err(e) = inputs::check_range(ty, a, b) {
                        bounds_ok = false;
                        self.at_value(&child(&p, key("min")), format!("input `{name}`: {e}"), None);
                    }
                }
            }
            let before = self.string(d, &p, "before");
            if before.is_some() && ty.is_some_and(|t| t != InputType::Time) {
                self.at_key(
                    &child(&p, key("before")),
                    "`before` applies only to time inputs",
                    None,
                );
            }
            let flag = |s: &mut Self, k: &str| match d.get(k) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    s.at_value(
                        &child(&p, key(k)),
                        format!("`{k}` must be true or false"),
                        None,
                    );
                    false
                }
            };
            let required = flag(self, "required");
            let secret = flag(self, "secret");
            let description = self.string(d, &p, "description");
            if let Some(ty) = ty {
                let decl = InputDecl {
                    name: name.clone(),
                    ty,
                    default,
                    required,
                    description,
                    secret,
                    min,
                    max,
                    before,
                };
                if let (true, true, Some(dv)) = (default_ok, bounds_ok, &decl.default) {
                    if let Err(e) = inputs::check_value(&decl, dv, crate::time::now()) {
                        self.at_value(
                            &child(&p, key("default")),
                            format!("default of input `{name}`: {e}"),
                            None,
                        );
                    }
                }
                out.push(decl);
            }
        }
        for d in &out {
            let Some(other) = &d.before else { continue };
            let at = child(&child(&base, key(&d.name)), key("before"));
            match out.iter().find(|i| &i.name == other) {
                None => self.at_value(
                    &at,
                    format!("`before` names unknown input `{other}`"),
                    did_you_mean(other, out.iter().map(|i| i.name.as_str())),
                ),
                Some(o) if o.name == d.name => {
                    self.at_value(&at, "an input cannot be `before` itself", None)
                }
                Some(o) if o.ty != InputType::Time => self.at_value(
                    &at,
                    format!(
                        "`before` must name a time input; `{other}` is a {}",
                        o.ty.name()
                    ),
                    None,
                ),
                Some(_) => {}
            }
        }
        out
    }

    fn steps(&mut self, v: Option<&Value>, inputs: &[InputDecl]) -> Vec<Step> {
        let base = vec![key("steps")];
        let list = match v {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) => {
                self.at_key(&base, "`steps` is empty", None);
                return vec![];
            }
            None => {
                self.push(1, 1, "the playbook has no `steps`", None);
                return vec![];
            }
            Some(_) => {
                self.at_value(&base, "`steps` must be a list of steps", None);
                return vec![];
            }
        };
        // First pass: ids and kinds, so references to later steps resolve.
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut steps: Vec<(Vec<Seg>, Step)> = Vec::new();
        for (i, sv) in list.iter().enumerate() {
            let p = child(&base, Seg::Index(i));
            let Some(m) = sv.as_object() else {
                self.at_value(&p, "a step must be a map with `id` and `uses`", None);
                continue;
            };
            self.unknown_keys(
                m,
                &p,
                &[
                    "id",
                    "uses",
                    "with",
                    "if",
                    "needs",
                    "timeout",
                    "retry",
                    "on_error",
                    "description",
                ],
                "a step",
            );
            let id = self.string(m, &p, "id");
            if !m.contains_key("id") {
                self.at_key(&p, "step has no `id`", None);
            }
            if let Some(id) = &id {
                if id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    self.at_value(
                        &child(&p, key("id")),
                        format!("step id `{id}` may use only letters, digits, `_` and `-`"),
                        None,
                    );
                }
                if let Some(first) = ids.get(id) {
                    let fp = self
                        .pos
                        .value(&[key("steps"), Seg::Index(*first), key("id")]);
                    self.at_value(
                        &child(&p, key("id")),
                        format!("duplicate step id `{id}`"),
                        Some(format!("first used at line {}", fp.line)),
                    );
                } else {
                    ids.insert(id.clone(), i);
                }
            }
            let uses = self.string(m, &p, "uses");
            if !m.contains_key("uses") {
                self.at_key(&p, "step has no `uses` (the step kind to run)", None);
            }
            if let Some(u) = &uses {
                if self.registry.get(u).is_none() {
                    self.at_value(
                        &child(&p, key("uses")),
                        format!("unknown step kind `{u}`"),
                        did_you_mean(u, self.registry.names()).or_else(|| {
                            Some(format!(
                                "known kinds: {}",
                                self.registry.names().collect::<Vec<_>>().join(", ")
                            ))
                        }),
                    );
                }
            }
            let with = match m.get("with") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(w)) => w.clone(),
                Some(_) => {
                    self.at_value(
                        &child(&p, key("with")),
                        "`with` must be a map of arguments",
                        None,
                    );
                    Map::new()
                }
            };
            let needs = match m.get("needs") {
                None | Some(Value::Null) => vec![],
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .enumerate()
                    .filter_map(|(j, x)| match x.as_str() {
                        Some(s) => Some(s.to_string()),
                        None => {
                            self.at_value(
                                &child(&child(&p, key("needs")), Seg::Index(j)),
                                "`needs` entries must be step ids",
                                None,
                            );
                            None
                        }
                    })
                    .collect(),
                Some(_) => {
                    self.at_value(
                        &child(&p, key("needs")),
                        "`needs` must be a list of step ids",
                        None,
                    );
                    vec![]
                }
            };
            let condition = match m.get("if") {
                None | Some(Value::Null) => None,
                Some(v @ (Value::String(_) | Value::Bool(_))) => Some(v.clone()),
                Some(other) => {
                    self.at_value(
                        &child(&p, key("if")),
                        format!(
                            "`if` must be a template string or a boolean, not {}",
                            json_type(other)
                        ),
                        None,
                    );
                    None
                }
            };
            let on_error = match m.get("on_error") {
                None => OnError::default(),
                Some(Value::String(s)) if s == "abort" => OnError::Abort,
                Some(Value::String(s)) if s == "continue" => OnError::Continue,
                Some(_) => {
                    self.at_value(
                        &child(&p, key("on_error")),
                        "`on_error` must be `abort` or `continue`",
                        None,
                    );
                    OnError::default()
                }
            };
            let timeout = self.duration(m, &p, "timeout");
            let retry = self.retry(m, &p);
            let description = self.string(m, &p, "description");
            steps.push((
                p,
                Step {
                    id: id.unwrap_or_default(),
                    uses: uses.unwrap_or_default(),
                    with,
                    condition,
                    needs,
                    timeout,
                    retry,
                    on_error,
                    description,
                },
            ));
        }
        let kinds: BTreeMap<String, String> = steps
            .iter()
            .map(|(_, s)| (s.id.clone(), s.uses.clone()))
            .collect();
        let exchange_fields = exchange_fields();
        // Second pass: arguments, references and the dependency graph.
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (p, step) in &steps {
            let deps = graph.entry(step.id.clone()).or_default();
            for (j, n) in step.needs.iter().enumerate() {
                if kinds.contains_key(n) {
                    deps.insert(n.clone());
                } else {
                    let item = child(&child(p, key("needs")), Seg::Index(j));
                    let at = if self.pos.has(&item) {
                        self.pos.value(&item)
                    } else {
                        self.pos.word_in_value(&child(p, key("needs")), n)
                    };
                    self.push(
                        at.line,
                        at.column,
                        format!("`needs` names unknown step `{n}`"),
                        did_you_mean(n, kinds.keys().map(String::as_str)),
                    );
                }
            }
            let deps = graph.get_mut(&step.id).expect("inserted above");
            let mut refs_deps = BTreeSet::new();
            let env = RefEnv {
                inputs,
                kinds: &kinds,
                exchange_fields: &exchange_fields,
                registry: self.registry,
                self_id: &step.id,
            };
            if let Some(c) = &step.condition {
                self.templates(c, &child(p, key("if")), &env, &mut refs_deps);
            }
            for (k, v) in &step.with {
                self.templates(
                    v,
                    &child(&child(p, key("with")), key(k)),
                    &env,
                    &mut refs_deps,
                );
            }
            deps.extend(refs_deps);
            self.args(step, p, inputs);
        }
        self.cycles(&graph, &steps);
        steps.into_iter().map(|(_, s)| s).collect()
    }

    fn args(&mut self, step: &Step, p: &[Seg], inputs: &[InputDecl]) {
        let Some(kind) = self.registry.get(&step.uses).cloned() else {
            return;
        };
        let specs = kind.args();
        let wp = child(p, key("with"));
        for (name, v) in &step.with {
            let ap = child(&wp, key(name));
            let Some(spec) = specs.iter().find(|s| s.name == name.as_str()) else {
                self.at_key(
                    &ap,
                    format!("`{}` has no argument `{name}`", step.uses),
                    did_you_mean(name, specs.iter().map(|s| s.name)).or_else(|| {
                        Some(if specs.is_empty() {
                            format!("`{}` takes no arguments", step.uses)
                        } else {
                            format!(
                                "arguments: {}",
                                specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                            )
                        })
                    }),
                );
                continue;
            };
            if let Some(found) = static_type(v, inputs) {
                let ok = match found {
                    StaticType::Value(v) => arg_type_accepts(spec.ty, &v),
                    StaticType::Input(ty) => input_fits(ty, spec.ty),
                    StaticType::Text => {
                        matches!(spec.ty, ArgType::String | ArgType::Duration | ArgType::Any)
                    }
                };
                if !ok {
                    let what = match static_type(v, inputs) {
                        Some(StaticType::Input(ty)) => format!("a {} input", ty.name()),
                        Some(StaticType::Text) => "text".to_string(),
                        _ => json_type(v).to_string(),
                    };
                    self.at_value(
                        &ap,
                        format!(
                            "argument `{name}` of `{}` must be {}, not {what}",
                            step.uses,
                            arg_type_name(spec.ty)
                        ),
                        None,
                    );
                }
            }
        }
        for spec in specs.iter().filter(|s| s.required) {
            if !step.with.contains_key(spec.name) {
                let at = if self.pos.has(&wp) {
                    wp.clone()
                } else {
                    child(p, key("uses"))
                };
                self.at_key(
                    &at,
                    format!("`{}` needs argument `{}`", step.uses, spec.name),
                    Some(format!("{}: {}", spec.name, spec.description)),
                );
            }
        }
    }

    fn templates(
        &mut self,
        v: &Value,
        path: &[Seg],
        env: &RefEnv<'_>,
        deps: &mut BTreeSet<String>,
    ) {
        match v {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    self.templates(x, &child(path, Seg::Index(i)), env, deps);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    self.templates(x, &child(path, key(k)), env, deps);
                }
            }
            Value::String(s) => {
                let span = self.pos.span(path);
                let locate = |offset: usize| -> (usize, usize) {
                    // The offset may fall inside a multi-byte character: back up to its start.
                    let mut offset = offset.min(s.len());
                    while !s.is_char_boundary(offset) {
                        offset -= 1;
                    }
                    let before = &s[..offset];
                    let nl = before.matches('\n').count();
                    if nl == 0 {
                        (
                            span.value.line,
                            span.value.column + offset + usize::from(span.quoted),
                        )
                    } else {
                        let last = before.rsplit('\n').next().unwrap_or("");
                        (span.value.line + nl, span.value.column + last.len())
                    }
                };
                match template::references(s) {
                    Err(e) => {
                        let (l, c) = locate(e.offset);
                        self.push(l, c, e.message, None);
                    }
                    Ok(refs) => {
                        for r in refs {
                            if let Some((msg, hint)) = env.check(&r.path, deps) {
                                let (l, c) = locate(r.offset);
                                self.push(l, c, msg, hint);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn cycles(&mut self, graph: &BTreeMap<String, BTreeSet<String>>, steps: &[(Vec<Seg>, Step)]) {
        // Iterative DFS with colours; each cycle is reported once, at its first step.
        let mut colour: HashMap<&str, u8> = HashMap::new();
        let mut reported: BTreeSet<BTreeSet<String>> = BTreeSet::new();
        for start in graph.keys() {
            if colour.get(start.as_str()).copied().unwrap_or(0) != 0 {
                continue;
            }
            let mut stack: Vec<(&str, Vec<&str>)> = vec![(
                start.as_str(),
                graph[start].iter().map(String::as_str).collect(),
            )];
            colour.insert(start, 1);
            while let Some((node, rest)) = stack.last_mut() {
                let node = *node;
                match rest.pop() {
                    Some(next) => match colour.get(next).copied().unwrap_or(0) {
                        0 => {
                            colour.insert(next, 1);
                            let succ = graph
                                .get(next)
                                .map(|s| s.iter().map(String::as_str).collect())
                                .unwrap_or_default();
                            stack.push((next, succ));
                        }
                        1 => {
                            let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                            let mut cycle: Vec<String> =
                                stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                            let set: BTreeSet<String> = cycle.iter().cloned().collect();
                            if reported.insert(set) {
                                cycle.push(next.to_string());
                                let first = &cycle[0];
                                let sp = steps
                                    .iter()
                                    .find(|(_, s)| &s.id == first)
                                    .map(|(p, _)| p.clone())
                                    .unwrap_or_default();
                                let at = if self.pos.has(&child(&sp, key("needs"))) {
                                    child(&sp, key("needs"))
                                } else {
                                    child(&sp, key("id"))
                                };
                                self.at_key(
                                    &at,
                                    format!("steps wait for each other in a cycle: {}", cycle.join(" → ")),
                                    Some("a step waits for its `needs` and for every step whose outputs it uses; remove one of these".into()),
                                );
                            }
                        }
                        _ => {}
                    },
                    None => {
                        colour.insert(node, 2);
                        stack.pop();
                    }
                }
            }
        }
    }
}

struct RefEnv<'a> {
    inputs: &'a [InputDecl],
    kinds: &'a BTreeMap<String, String>,
    exchange_fields: &'a [String],
    registry: &'a Registry,
    self_id: &'a str,
}

impl RefEnv<'_> {
    /// A problem with one reference, or `None` when it resolves.
    fn check(
        &self,
        path: &[String],
        deps: &mut BTreeSet<String>,
    ) -> Option<(String, Option<String>)> {
        let full = path.join(".");
        let root = path[0].as_str();
        match root {
            "inputs" => {
                let name = path.get(1)?;
                if self.inputs.iter().any(|i| &i.name == name) {
                    None
                } else {
                    Some((
                        format!("`{full}` refers to unknown input `{name}`"),
                        did_you_mean(name, self.inputs.iter().map(|i| i.name.as_str()))
                            .or_else(|| Some("declare it under `inputs:`".into())),
                    ))
                }
            }
            "steps" => {
                let Some(id) = path.get(1) else {
                    return Some((
                        format!("`{full}` must name a step: `steps.<id>.outputs.<name>`"),
                        None,
                    ));
                };
                let Some(uses) = self.kinds.get(id) else {
                    return Some((
                        format!("`{full}` refers to unknown step `{id}`"),
                        did_you_mean(id, self.kinds.keys().map(String::as_str)),
                    ));
                };
                if id == self.self_id {
                    return Some((format!("step `{id}` refers to its own outputs"), None));
                }
                deps.insert(id.clone());
                if path.get(2).map(String::as_str) != Some("outputs") {
                    return Some((
                        format!("`{full}`: only a step's `outputs` can be referenced"),
                        Some(format!("write `steps.{id}.outputs.<name>`")),
                    ));
                }
                let kind = self.registry.get(uses)?;
                let name = path.get(3)?;
                if kind.outputs().contains(&name.as_str()) {
                    None
                } else {
                    Some((
                        format!("`{full}`: step `{id}` ({uses}) has no output `{name}`"),
                        did_you_mean(name, kind.outputs().iter().copied()).or_else(|| {
                            Some(format!("its outputs: {}", kind.outputs().join(", ")))
                        }),
                    ))
                }
            }
            "exchange" => {
                let f = path.get(1)?;
                if self.exchange_fields.iter().any(|k| k == f) {
                    None
                } else {
                    Some((
                        format!("`{full}` refers to unknown exchange capability `{f}`"),
                        did_you_mean(f, self.exchange_fields.iter().map(String::as_str)),
                    ))
                }
            }
            "run" => {
                let f = path.get(1)?;
                if RUN_FIELDS.contains(&f.as_str()) {
                    None
                } else {
                    Some((
                        format!("`{full}` refers to unknown run field `{f}`"),
                        did_you_mean(f, RUN_FIELDS.iter().copied())
                            .or_else(|| Some(format!("run fields: {}", RUN_FIELDS.join(", ")))),
                    ))
                }
            }
            other => Some((
                format!(
                    "`{full}`: templates can reference only {}",
                    ROOTS.join(", ")
                ),
                did_you_mean(other, ROOTS.iter().copied()),
            )),
        }
    }
}

enum StaticType {
    /// A literal value.
    Value(Value),
    /// Exactly one reference to a typed input.
    Input(InputType),
    /// A template rendering to text.
    Text,
}

/// What can be said about an argument's type before the run.
fn static_type(v: &Value, inputs: &[InputDecl]) -> Option<StaticType> {
    let Value::String(s) = v else {
        return Some(StaticType::Value(v.clone()));
    };
    if !template::is_template(s) {
        return Some(StaticType::Value(v.clone()));
    }
    let refs = template::references(s).ok()?;
    let trimmed = s.trim();
    let single = refs.len() == 1
        && trimmed.starts_with("{{")
        && trimmed.ends_with("}}")
        && trimmed[2..trimmed.len() - 2].find("{{").is_none()
        && !trimmed[2..].trim_start().starts_with(['#', '/', '^', '!']);
    if single {
        let r = &refs[0];
        if r.path.len() == 2 && r.path[0] == "inputs" {
            return inputs
                .iter()
                .find(|i| i.name == r.path[1])
                .map(|i| StaticType::Input(i.ty));
        }
        return None; // step outputs, exchange, run: checked at run time
    }
    Some(StaticType::Text)
}

fn input_fits(input: InputType, arg: ArgType) -> bool {
    matches!(
        (input, arg),
        (_, ArgType::Any)
            | (InputType::String, ArgType::String)
            | (InputType::Integer, ArgType::Integer | ArgType::Number)
            | (InputType::Number, ArgType::Number)
            | (InputType::Boolean, ArgType::Boolean)
            | (InputType::Duration, ArgType::Duration | ArgType::String)
            | (InputType::Time, ArgType::String)
            | (InputType::List, ArgType::List)
    )
}
