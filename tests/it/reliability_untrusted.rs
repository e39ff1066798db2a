//! Untrusted data end to end: exchange data (order identifiers from a scenario file) and bot-log
//! fields carrying HTML, handlebars syntax, CSV formula prefixes, terminal control sequences and
//! a 1 MB string go through a whole leak run; the HTML report, the CSVs and the terminal must
//! render them inert. Output paths: an existing bundle directory (or a symlink in its place) is
//! never written into; the run goes on in the private fallback directory instead.

use chrono::Utc;
use respond::mock::{self, MockOptions};

use crate::support::cli::*;
use crate::support::mock::*;
use crate::support::respond::verify;
use crate::support::run_dir::*;

const HOSTILE_ID: &str =
    "=HYPERLINK(\"http://evil\")<script>alert(1)</script>{{run.dir}}\u{1b}[2J-{n}";

fn hostile_mock() -> Mock {
    let mut sc = mock::load("pump-and-dump", None).unwrap();
    sc.bot.as_mut().unwrap().identifier = HOSTILE_ID.to_string();
    Mock::start(
        sc,
        MockOptions {
            live_attacker: false,
            ..MockOptions::default()
        },
    )
}

#[test]
fn hostile_identifiers_and_bot_log_fields_are_rendered_inert() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = hostile_mock();
    let bot = mock.write_bot_log(tmp.path());
    // One more bot-log row: a 1 MB identifier, HTML in the market, a formula in the id.
    let huge = "A".repeat(1 << 20);
    let mut log = std::fs::read_to_string(&bot).unwrap();
    log.push_str(&format!(
        "\"@SUM(1+1)*cmd|' /C calc'!A0\",{huge},<img src=x onerror=alert(2)>,bid,limit,2026-11-16T06:34:36.000Z,100,1\n"
    ));
    std::fs::write(&bot, log).unwrap();
    let out = tmp.path().join("ev");
    let mut child = leak(&mock, &out, &bot, &["--skip-bad-rows"]).spawn();
    revoke_after_cancel(&mock, &out, &mut child, std::time::Duration::from_secs(20));
    let r = child.finish();
    let dir = bundle(&out).expect("bundle");
    assert_eq!(r.code, Some(0), "{}", r.stderr);

    // Terminal: no escape sequence from the data, no megabyte line.
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains('\u{1b}'),
            "{name} carries an escape sequence"
        );
        assert!(
            !text.contains(&huge[..4096]),
            "{name} printed the 1 MB field"
        );
    }
    // The exchange really carried the hostile identifier into the export.
    let ids = csv_column(&dir.join("orders.csv"), "identifier");
    assert!(
        ids.iter().any(|i| i.contains("HYPERLINK")),
        "identifier not exported"
    );
    for csv in ["orders.csv", "unauthorized_trades.csv", "fills.csv"] {
        let p = dir.join(csv);
        if !p.exists() {
            continue;
        }
        let mut rd = csv::Reader::from_path(&p).unwrap();
        for rec in rd.records() {
            for cell in rec.unwrap().iter() {
                let numeric = cell.parse::<f64>().is_ok();
                assert!(
                    numeric || !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{csv}: formula not neutralised: {cell:.80}"
                );
                assert!(!cell.contains('\u{1b}'), "{csv}: escape sequence kept");
            }
        }
    }
    // HTML: escaped, never live; the template syntax is data, not evaluated.
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        !html.contains("<script>alert"),
        "live script in report.html"
    );
    assert!(!html.contains("<img src=x"), "live tag in report.html");
    assert!(
        html.contains("run.dir}}") || html.contains("run.dir&#125;&#125;"),
        "the handlebars text in the data should stay text"
    );
    assert!(
        html.contains("alert(1)"),
        "the hostile identifier should be shown, escaped"
    );
    for md in ["report.md", "support_ticket.md"] {
        let t = std::fs::read_to_string(dir.join(md)).unwrap();
        assert!(!t.contains("<script>"), "{md}: raw HTML");
        assert!(!t.contains('\u{1b}'), "{md}: escape sequence");
    }
    let v = verify(&dir);
    assert_eq!(v.code, Some(0), "{}{}", v.stdout, v.stderr);
}

#[test]
fn an_existing_bundle_or_a_symlink_in_its_place_is_never_written_into() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = hostile_mock();
    let bot = mock.write_bot_log(tmp.path());
    let out = tmp.path().join("ev");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let masked = respond::secret::mask_key(&mock.key("bot").access_key);
    let now = Utc::now();
    // Every name the run could pick in the next 20 s: half directories, half symlinks.
    for s in -1..20 {
        let name =
            respond::rundir::bundle_name(now + chrono::Duration::seconds(s), "upbit", &masked);
        let p = out.join(name);
        if s % 2 == 0 {
            std::fs::create_dir(&p).unwrap();
        } else {
            std::os::unix::fs::symlink(&elsewhere, &p).unwrap();
        }
    }
    // The run goes on in the private fallback directory (issue 11: a local problem never
    // stops containment), never into the existing bundle or through the symlink.
    let state = tmp.path().join("state");
    let fallback = state.join("respond").join("evidence");
    let mut child = leak(&mock, &out, &bot, &[])
        .env("XDG_STATE_HOME", &state)
        .spawn();
    revoke_after_cancel(
        &mock,
        &fallback,
        &mut child,
        std::time::Duration::from_secs(60),
    );
    let r = child.finish();
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("cannot create the evidence bundle under --out"),
        "{}",
        r.stderr
    );
    let dir = bundle(&fallback).expect("a bundle in the fallback directory");
    assert_eq!(verify(&dir).code, Some(0));
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "wrote through a symlink"
    );
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            assert_eq!(
                std::fs::read_dir(e.path()).unwrap().count(),
                0,
                "wrote into an existing bundle"
            );
        }
    }
}
