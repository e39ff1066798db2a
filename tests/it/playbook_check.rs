//! `playbook check`: every kind of problem, at its exact line:column, all reported at once.

use respond::playbook::{self, Diagnostic};

use crate::support::respond::Respond;
use crate::support::steps::Harness;

fn diags(src: &str) -> Vec<Diagnostic> {
    let h = Harness::new();
    match playbook::check(src, &h.registry) {
        Ok(_) => vec![],
        Err(d) => d,
    }
}

/// Asserts a diagnostic at `line:col` whose message contains `msg`; returns it.
fn has(d: &[Diagnostic], line: usize, col: usize, msg: &str) -> Diagnostic {
    d.iter()
        .find(|x| x.line == line && x.column == col && x.message.contains(msg))
        .unwrap_or_else(|| panic!("no {line}:{col} `{msg}` in {d:#?}"))
        .clone()
}

#[test]
fn valid_playbook_passes() {
    let src = "name: ok\ninputs:\n  n:\n    type: integer\n    default: 2\nsteps:\n  - id: a\n    uses: test.read\n    with:\n      value: \"{{ inputs.n }}\"\n      fail_times: \"{{ inputs.n }}\"\n  - id: b\n    uses: test.write\n    with:\n      tag: \"{{ steps.a.outputs.value }} {{ exchange.name }} {{ run.id }}\"\n";
    assert!(diags(src).is_empty(), "{:#?}", diags(src));
    for e in playbook::embedded() {
        let h = Harness::new();
        assert!(playbook::check(e.source, &h.registry).is_ok(), "{}", e.name);
    }
}

#[test]
fn unknown_kind_with_nearest_name() {
    let d = diags("name: x\nsteps:\n  - id: a\n    uses: test.wrte\n");
    let x = has(&d, 4, 11, "unknown step kind `test.wrte`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `test.write`?"));
}

#[test]
fn unknown_missing_and_mistyped_arguments() {
    let src = "name: x
inputs:
  who:
    type: string
steps:
  - id: a
    uses: test.read
    with:
      fail_tims: 1
      sleep_ms: \"soon\"
  - id: b
    uses: manual
    with:
      title: t
  - id: c
    uses: test.read
    with:
      fail_times: \"{{ inputs.who }}\"
";
    let d = diags(src);
    let x = has(&d, 9, 7, "`test.read` has no argument `fail_tims`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `fail_times`?"));
    has(
        &d,
        10,
        17,
        "argument `sleep_ms` of `test.read` must be an integer, not a string",
    );
    has(&d, 13, 5, "`manual` needs argument `instructions`");
    has(&d, 18, 19, "must be an integer, not a string input");
    assert_eq!(d.len(), 4, "{d:#?}");
}

#[test]
fn bad_references_in_templates() {
    let src = "name: x
inputs:
  who:
    type: string
steps:
  - id: a
    uses: test.read
  - id: b
    uses: test.write
    if: \"{{ exchange.revoke_by_api }}\"
    with:
      tag: \"{{ inputs.whom }} {{ steps.a.outputs.valeu }} {{ steps.zz.outputs.value }}\"
      fail: 'x {{ run.started }} {{ env.HOME }}'
";
    let d = diags(src);
    has(&d, 10, 10, "unknown exchange capability `revoke_by_api`");
    let x = has(&d, 12, 13, "unknown input `whom`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `who`?"));
    let x = has(&d, 12, 31, "step `a` (test.read) has no output `valeu`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `value`?"));
    has(&d, 12, 59, "unknown step `zz`");
    let x = has(&d, 13, 16, "unknown run field `started`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `started_at`?"));
    has(
        &d,
        13,
        34,
        "templates can reference only inputs, steps, exchange, run",
    );
    assert_eq!(d.len(), 6, "{d:#?}");
}

#[test]
fn needs_cycles_unknown_steps_and_duplicates() {
    let src = "name: x
steps:
  - id: a
    uses: test.read
    needs: [c, nope]
  - id: b
    uses: test.read
    needs:
      - a
  - id: c
    uses: test.write
    with:
      tag: \"{{ steps.b.outputs.value }}\"
  - id: b
    uses: test.read
";
    let d = diags(src);
    has(&d, 5, 5, "cycle: a → c → b → a");
    has(&d, 5, 16, "`needs` names unknown step `nope`");
    let x = has(&d, 14, 9, "duplicate step id `b`");
    assert_eq!(x.hint.as_deref(), Some("first used at line 6"));
    assert_eq!(d.len(), 3, "{d:#?}");
}

#[test]
fn structure_inputs_and_yaml_errors() {
    let src = "name: x
inputs:
  n:
    type: integr
  m:
    type: integer
    default: many
steps:
  - id: a
    uses: test.read
    timeout: soon
    on_eror: continue
    retry:
      attempts: 0
";
    let d = diags(src);
    let x = has(&d, 4, 11, "unknown input type `integr`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `integer`?"));
    has(&d, 7, 14, "default of input `m` is a string");
    has(&d, 11, 14, "`soon` is not a duration");
    let x = has(&d, 12, 5, "unknown key `on_eror` in a step");
    assert_eq!(x.hint.as_deref(), Some("did you mean `on_error`?"));
    has(&d, 14, 17, "`attempts` must be an integer from 1 to 100");
    assert_eq!(d.len(), 5, "{d:#?}");

    let d = diags("name: x\nsteps:\n  - id: a\n    uses: [test.read\n");
    assert_eq!(d.len(), 1);
    has(&d, 5, 1, "invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 4 column 11");
    let d = diags("name: x\nsteps:\n  - id: a\n    uses: test.read\n    id: b\n");
    assert_eq!(d.len(), 1);
    has(
        &d,
        5,
        5,
        "invalid YAML: steps[0]: duplicate entry with key \"id\"",
    );

    let d =
        diags("name: x\nsteps:\n  - id: a\n    uses: test.read\n    if: \"{{#if inputs.x}}\"\n");
    has(&d, 5, 26, "template does not parse");
}

#[test]
fn check_command_prints_file_line_column_and_exits_2() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nsteps:\n  - id: a\n    uses: manul\n  - id: a\n    uses: manual\n    with: {title: t, instructions: i}\n").unwrap();
    let good = t.path().join("good.yaml");
    std::fs::write(
        &good,
        "name: y\nsteps:\n  - id: a\n    uses: manual\n    with: {title: t, instructions: i}\n",
    )
    .unwrap();
    let out = Respond::new()
        .args(["playbook", "check"])
        .arg(&bad)
        .arg(&good)
        .run()
        .code(2);
    let stdout = out.stdout;
    let b = bad.display();
    assert!(
        stdout.contains(&format!(
            "{b}:4:11: unknown step kind `manul`\n  hint: did you mean `manual`?"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{b}:5:9: duplicate step id `a`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}: ok", good.display())),
        "{stdout}"
    );

    let v = Respond::new()
        .args(["--json", "playbook", "check"])
        .arg(&good)
        .run()
        .code(0)
        .json();
    assert_eq!(v["ok"], true);
}

#[test]
fn list_and_show_embedded_playbooks() {
    Respond::new()
        .args(["playbook", "list"])
        .run()
        .code(0)
        .stdout_has("example-notify")
        .stdout_has("Tell a person and a webhook");
    let out = Respond::new()
        .args(["playbook", "show", "example-notify"])
        .run()
        .code(0);
    assert_eq!(
        out.stdout.trim_end(),
        playbook::embedded_named("example-notify")
            .unwrap()
            .source
            .trim_end()
    );
    Respond::new()
        .args(["playbook", "show", "example-notfy"])
        .run()
        .code(2)
        .stderr_has("did you mean `example-notify`?");
}

/// Issue 11: input constraints are declared in the playbook (`min`, `max`, `before`) and
/// `playbook check` validates the declarations: bounds of the input's type, `min` ≤ `max`, a
/// default inside them, `before` naming another time input.
#[test]
fn input_constraints_are_checked_where_they_are_written() {
    let src = "name: x
inputs:
  rotate_days:
    type: integer
    default: 20
    min: 30
    max: 90
  since:
    type: duration
    min: 7d
    max: 1d
  label:
    type: string
    min: 3
  from:
    type: time
    max: tomorrow
    before: tu
  to:
    type: time
    default: \"\"
  limit:
    type: integer
    max: 2.5
  n:
    type: number
    before: to
steps:
  - id: a
    uses: test.read
";
    let d = diags(src);
    has(
        &d,
        5,
        14,
        "default of input `rotate_days`: `20` is below the minimum 30",
    );
    has(&d, 10, 10, "`min` (7d) is above `max` (1d)");
    has(
        &d,
        14,
        10,
        "only integer, number, duration and time inputs take bounds",
    );
    has(
        &d,
        17,
        10,
        "`max` of input `from`: `tomorrow` is not an RFC 3339 time",
    );
    let x = has(&d, 18, 13, "`before` names unknown input `tu`");
    assert_eq!(x.hint.as_deref(), Some("did you mean `to`?"));
    let x = has(
        &d,
        21,
        14,
        "default of input `to`: `` is not an RFC 3339 time",
    );
    assert!(x.hint.unwrap().contains("leave `default` out"));
    has(
        &d,
        24,
        10,
        "`max` of input `limit`: must be an integer, not `2.5`",
    );
    has(&d, 27, 5, "`before` applies only to time inputs");
    assert_eq!(d.len(), 8, "{d:#?}");
}

/// The embedded leak playbook declares the bounds the issue asked for.
#[test]
fn the_leak_playbook_bounds_its_inputs() {
    let h = Harness::new();
    let src = playbook::embedded_named("upbit-leak").unwrap().source;
    let pb = playbook::check(src, &h.registry).unwrap();
    let bounds = |n: &str| {
        let i = pb.input(n).unwrap();
        (i.min.clone(), i.max.clone())
    };
    use serde_json::json;
    assert_eq!(bounds("rotate_days"), (Some(json!(30)), Some(json!(90))));
    assert_eq!(bounds("since"), (Some(json!("1m")), Some(json!("366d"))));
    assert_eq!(pb.input("from").unwrap().before.as_deref(), Some("to"));
}
