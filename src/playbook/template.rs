//! Templating of step arguments and conditions: handlebars in strict mode, no HTML escaping.
//!
//! The context is `{inputs, steps: {<id>: {outputs}}, exchange, run}`. Templates come only
//! from the playbook: data (step outputs, exchange responses) enters the context as values and
//! is never parsed as a template, so an output holding `{{run.id}}` renders literally.
//! A string that is exactly one expression (`"{{ steps.a.outputs.orders }}"`) resolves to the
//! referenced JSON value itself, keeping lists, numbers and booleans typed; any other string
//! renders to a string; lists and maps are templated element by element.
//! [`references`] scans templates statically so `playbook check` and the scheduler know what
//! each step reads without rendering anything.

use std::collections::BTreeSet;

use handlebars::Handlebars;
use serde_json::{Map, Value};

/// The context roots a template may reference.
pub const ROOTS: &[&str] = &["inputs", "steps", "exchange", "run"];

/// One variable reference found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Segments: `steps.fetch.outputs.orders` → `["steps","fetch","outputs","orders"]`.
    pub path: Vec<String>,
    /// Byte offset of the enclosing `{{` in the template string.
    pub offset: usize,
}

/// A template that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Byte offset in the template string, when known.
    pub offset: usize,
    pub message: String,
}

/// A template that failed to resolve at run time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// Whether a string contains template syntax.
pub fn is_template(s: &str) -> bool {
    s.contains("{{")
}

/// Checks a template's syntax and returns the variables it references.
pub fn references(template: &str) -> Result<Vec<Ref>, SyntaxError> {
    if !is_template(template) {
        return Ok(vec![]);
    }
    if let Err(e) = handlebars::Template::compile(template) {
        let offset = e
            .pos()
            .map(|(line, col)| offset_of(template, line, col))
            .unwrap_or(0);
        return Err(SyntaxError {
            offset,
            message: {
                let reason = e.reason().to_string();
                let reason = reason.split(": expected").next().unwrap_or("").to_string();
                format!("template does not parse: {reason}")
            },
        });
    }
    let mut out = Vec::new();
    let mut scoped = 0usize;
    let mut i = 0;
    while let Some(start) = template[i..].find("{{").map(|s| s + i) {
        let Some(end) = template[start..].find("}}").map(|e| e + start) else {
            break;
        };
        i = end + 2;
        let inner = template[start + 2..end]
            .trim_start_matches('{')
            .trim_start_matches('~')
            .trim_end_matches('~')
            .trim();
        if inner.starts_with('!') {
            continue;
        }
        let (block, close, body) = match inner.chars().next() {
            Some('#') => (true, false, &inner[1..]),
            Some('/') => (false, true, &inner[1..]),
            Some('^') => (false, false, &inner[1..]),
            _ => (false, false, inner),
        };
        let tokens = tokenize(body);
        if close {
            if matches!(tokens.first().map(String::as_str), Some("each" | "with")) {
                scoped = scoped.saturating_sub(1);
            }
            continue;
        }
        let helper = tokens.len() > 1 || block;
        for (n, tok) in tokens.iter().enumerate() {
            if helper && n == 0 {
                continue;
            }
            let tok = tok.split_once('=').map(|(_, v)| v).unwrap_or(tok);
            if tok.is_empty()
                || tok.starts_with('@')
                || tok.starts_with("..")
                || tok == "this"
                || tok.starts_with("this.")
                || tok == "else"
                || matches!(tok, "true" | "false" | "null")
                || tok.parse::<f64>().is_ok()
            {
                continue;
            }
            let path: Vec<String> = tok
                .split(['.', '/'])
                .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string())
                .collect();
            if scoped > 0 && !ROOTS.contains(&path[0].as_str()) {
                continue;
            }
            out.push(Ref {
                path,
                offset: start,
            });
        }
        if block && matches!(tokens.first().map(String::as_str), Some("each" | "with")) {
            scoped += 1;
        }
    }
    Ok(out)
}

/// Splits an expression into tokens, dropping string literals and parentheses.
fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c if c.is_whitespace() || c == '(' || c == ')' || c == '|' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn offset_of(s: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (n, l) in s.split_inclusive('\n').enumerate() {
        if n + 1 == line {
            return (off + col.saturating_sub(1)).min(s.len());
        }
        off += l.len();
    }
    0
}

/// Every template reference inside a (possibly nested) value.
pub fn value_references(v: &Value) -> Vec<Ref> {
    let mut out = Vec::new();
    walk_strings(v, &mut |s| {
        if let Ok(r) = references(s) {
            out.extend(r);
        }
    });
    out
}

fn walk_strings(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(m) => m.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

/// The ids of steps a value references through `steps.<id>…`.
pub fn step_references(v: &Value) -> BTreeSet<String> {
    value_references(v)
        .into_iter()
        .filter(|r| r.path.len() >= 2 && r.path[0] == "steps")
        .map(|r| r.path[1].clone())
        .collect()
}

/// The one path of a string that is exactly `{{ path }}`.
fn single_expression(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    let inner = inner.trim();
    if inner.is_empty()
        || !inner
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'))
        || !inner.chars().next().is_some_and(|c| c.is_alphabetic())
    {
        return None;
    }
    Some(
        inner
            .split('.')
            .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string())
            .collect(),
    )
}

/// Looks a path up in the context (strict: a missing segment is an error).
pub fn lookup<'a>(ctx: &'a Value, path: &[String]) -> Result<&'a Value, RenderError> {
    let mut cur = ctx;
    for (n, seg) in path.iter().enumerate() {
        let next = match cur {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        cur = next.ok_or_else(|| {
            RenderError(format!(
                "`{}` is not defined (no `{}` in `{}`)",
                path.join("."),
                seg,
                if n == 0 {
                    "the template context".to_string()
                } else {
                    path[..n].join(".")
                }
            ))
        })?;
    }
    Ok(cur)
}

/// Renders templates against a context.
pub struct Renderer {
    hb: Handlebars<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        Renderer { hb }
    }

    /// Resolves every template in `v` (recursively).
    pub fn resolve(&self, v: &Value, ctx: &Value) -> Result<Value, RenderError> {
        Ok(match v {
            Value::String(s) => {
                if let Some(path) = single_expression(s) {
                    lookup(ctx, &path)?.clone()
                } else if is_template(s) {
                    Value::String(
                        self.hb
                            .render_template(s, ctx)
                            .map_err(|e| RenderError(render_message(&e)))?,
                    )
                } else {
                    v.clone()
                }
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.resolve(x, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    out.insert(k.clone(), self.resolve(x, ctx)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Resolves a map of arguments.
    pub fn resolve_map(
        &self,
        m: &Map<String, Value>,
        ctx: &Value,
    ) -> Result<Map<String, Value>, RenderError> {
        match self.resolve(&Value::Object(m.clone()), ctx)? {
            Value::Object(m) => Ok(m),
            _ => unreachable!("an object resolves to an object"),
        }
    }

    /// Evaluates an `if:` condition.
    pub fn condition(&self, cond: &Value, ctx: &Value) -> Result<bool, RenderError> {
        Ok(truthy(&self.resolve(cond, ctx)?))
    }
}

fn render_message(e: &handlebars::RenderError) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("template error").to_string()
}

/// Truthiness of a resolved condition: a string is false when empty, `false`, `0` or `no`.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "0" | "no"
        ),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "inputs": {"n": 3, "name": "bob", "flag": false},
            "steps": {"a": {"outputs": {
                "list": [1, 2],
                "evil": "{{run.id}} {{#each inputs}}x{{/each}}",
                "html": "<b>&</b>"
            }}},
            "exchange": {"name": "example", "revoke_key_by_api": false},
            "run": {"id": "RUN1"}
        })
    }

    #[test]
    fn single_expression_keeps_type() {
        let r = Renderer::new();
        assert_eq!(
            r.resolve(&json!("{{ steps.a.outputs.list }}"), &ctx())
                .unwrap(),
            json!([1, 2])
        );
        assert_eq!(r.resolve(&json!("{{inputs.n}}"), &ctx()).unwrap(), json!(3));
        assert_eq!(
            r.resolve(&json!({"x": ["hi {{inputs.name}}"]}), &ctx())
                .unwrap(),
            json!({"x": ["hi bob"]})
        );
    }

    #[test]
    fn data_is_never_evaluated_as_template() {
        let r = Renderer::new();
        let out = r
            .resolve(&json!("{{ steps.a.outputs.evil }}"), &ctx())
            .unwrap();
        assert_eq!(out, json!("{{run.id}} {{#each inputs}}x{{/each}}"));
        let out = r
            .resolve(&json!("say: {{ steps.a.outputs.evil }}"), &ctx())
            .unwrap();
        assert_eq!(out, json!("say: {{run.id}} {{#each inputs}}x{{/each}}"));
        let out = r
            .resolve(&json!("{{steps.a.outputs.html}}!"), &ctx())
            .unwrap();
        assert_eq!(out, json!("<b>&</b>!"), "no HTML escaping");
    }

    #[test]
    fn strict_mode_refuses_missing() {
        let r = Renderer::new();
        assert!(r.resolve(&json!("{{ inputs.nope }}"), &ctx()).is_err());
        assert!(r.resolve(&json!("x {{ inputs.nope }}"), &ctx()).is_err());
    }

    #[test]
    fn conditions() {
        let r = Renderer::new();
        assert!(!r.condition(&json!("{{inputs.flag}}"), &ctx()).unwrap());
        assert!(!r
            .condition(&json!("{{exchange.revoke_key_by_api}}"), &ctx())
            .unwrap());
        assert!(r
            .condition(
                &json!("{{#unless exchange.revoke_key_by_api}}yes{{/unless}}"),
                &ctx()
            )
            .unwrap());
        assert!(r.condition(&json!(true), &ctx()).unwrap());
    }

    #[test]
    fn references_are_found() {
        let refs = references("a {{inputs.x}} {{#if steps.b.outputs.y}}{{run.id}}{{/if}} {{#each steps.c.outputs.l}}{{name}}{{/each}}").unwrap();
        let paths: Vec<String> = refs.iter().map(|r| r.path.join(".")).collect();
        assert_eq!(
            paths,
            vec![
                "inputs.x",
                "steps.b.outputs.y",
                "run.id",
                "steps.c.outputs.l"
            ]
        );
        assert_eq!(refs[0].offset, 2);
        assert!(references("{{#if x}}").is_err());
    }
}

#[cfg(test)]
mod strict_blocks {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_helpers_treat_missing_values_as_false() {
        let r = Renderer::new();
        let ctx = json!({"inputs": {}});
        // handlebars' strict mode lets `#if` test a missing value (false); a typo is caught
        // before the run instead, by `references` (every reference is resolved statically).
        assert!(!r
            .condition(&json!("{{#if inputs.nope}}y{{/if}}"), &ctx)
            .unwrap());
        let refs = references("{{#if inputs.nope}}y{{/if}}").unwrap();
        assert_eq!(refs[0].path, ["inputs", "nope"]);
        assert!(r.condition(&json!("{{inputs.nope}}"), &ctx).is_err());
    }
}
