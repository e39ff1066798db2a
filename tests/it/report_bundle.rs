//! The evidence bundle end to end: every writer over a realistic incident, hostile data,
//! determinism, the Excel BOM, sealing (checked by coreutils' `sha256sum -c`), verification
//! of tampered bundles, and the `evidence verify` command's exit codes.

use std::path::{Path, PathBuf};

use crate::support::report_fixture as fx;
use respond::exit::Code;
use respond::output::{Printer, Verbosity};
use respond::report::{self, manifest, ReportOptions, BUNDLE_FILES};
use respond::rundir::RunDir;

fn write(
    dir: &Path,
    input: &respond::analysis::AnalysisInput,
    result: &respond::analysis::AnalysisResult,
    excel: bool,
) -> RunDir {
    let rd = RunDir::create(dir).unwrap();
    let files =
        report::write_bundle(&rd, &fx::facts(), input, result, &ReportOptions { excel }).unwrap();
    assert_eq!(files, BUNDLE_FILES);
    rd
}

fn sealed(tmp: &Path) -> PathBuf {
    let dir = tmp.join("run");
    let rd = write(&dir, &fx::input(), &fx::result(), false);
    rd.write(
        "raw/000001-GET-v1_orders_closed.body",
        b"[{\"uuid\":\"x\"}]",
    )
    .unwrap();
    rd.write("bot/bot.csv", b"order_id\n7f3a-0001\n").unwrap();
    fx::journal(&dir);
    manifest::seal(&dir).unwrap();
    dir
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn unauthorized_trades_has_reference_columns_and_one_row_per_fill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // As Upbit gives them: the pump's fills without a fee of their own.
    let mut input = fx::input();
    for f in input
        .fills
        .iter_mut()
        .filter(|f| f.order_id == fx::PUMP_ORDER)
    {
        f.fee = None;
    }
    write(&dir, &input, &fx::result(), false);
    let (h, rows) = read_csv(&dir.join("unauthorized_trades.csv"));
    // What a support agent reads first leads: time (local, then UTC), market, side, price,
    // volume, amount, fee.
    assert_eq!(
        &h[..8],
        [
            "created_at_local",
            "created_at_utc",
            "market",
            "side",
            "price",
            "volume",
            "amount",
            "fee"
        ]
    );
    for c in [
        "fee_basis",
        "exchange",
        "key_masked",
        "order_id",
        "identifier",
        "fill_id",
        "ord_type",
        "state",
        "order_price",
        "order_volume",
        "rules",
        "score",
        "confidence",
        "reference_price",
        "deviation_pct",
        "est_loss_quote",
        "raw_file",
        "raw_sha256",
    ] {
        col(&h, c);
    }
    // The dump order has no known fills (one order row); the pump order has two fills.
    assert_eq!(rows.len(), 3, "{rows:?}");
    let kinds: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r[col(&h, "row_kind")].as_str(),
                r[col(&h, "order_id")].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("order", fx::DUMP_ORDER),
            ("fill", fx::PUMP_ORDER),
            ("fill", fx::PUMP_ORDER)
        ]
    );
    let pump = &rows[1];
    assert_eq!(pump[col(&h, "fill_id")], "f-0004a");
    assert_eq!(pump[col(&h, "rules")], "R1;R3;R4");
    assert_eq!(pump[col(&h, "confidence")], "high");
    assert_eq!(pump[col(&h, "created_at_utc")], "2026-12-25T13:30:00.000Z");
    assert_eq!(
        pump[col(&h, "created_at_local")],
        "2026-12-25T22:30:00+09:00"
    );
    assert_eq!(pump[col(&h, "reference_price")], "100");
    assert_eq!(pump[col(&h, "deviation_pct")], "240");
    assert_eq!(pump[col(&h, "est_loss_quote")], "240000");
    assert_eq!(rows[2][col(&h, "est_loss_quote")], "260000");
    assert_eq!(pump[col(&h, "key_masked")], fx::KEY);
    assert_eq!(
        pump[col(&h, "raw_file")],
        "raw/000007-GET-v1_orders_closed.body"
    );
    // A genuine negative number in a numeric column is left a number.
    assert_eq!(rows[0][col(&h, "deviation_pct")], "-12.5");
    assert_eq!(rows[0][col(&h, "fill_id")], "");
    // Fees on fill rows: Upbit gives the order's fee total (0.5) only, so each fill carries
    // its share by amount (340,000 and 360,000 of 700,000), and says so.
    assert_eq!(pump[col(&h, "fee")], "0.24285714");
    assert_eq!(rows[2][col(&h, "fee")], "0.25714286");
    assert_eq!(pump[col(&h, "fee_basis")], "order share");
    assert_eq!(rows[0][col(&h, "fee")], "0.5");
    assert_eq!(rows[0][col(&h, "fee_basis")], "order");
    assert_eq!(pump[col(&h, "amount")], "340000");
    // No negative zero among the scores.
    assert!(rows.iter().all(|r| r[col(&h, "score")] != "-0.00"));
    // The mask is ASCII: Excel in a Korean locale shows it as it is.
    assert!(fx::KEY.is_ascii() && fx::KEY.contains("..."));
}

#[test]
fn every_csv_holds_everything_with_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // A score that sums to negative zero (a rule's weight taken back) prints as 0.00.
    let mut result = fx::result();
    result.verdicts[0].score = -0.0;
    write(&dir, &fx::input(), &result, false);
    let (h, rows) = read_csv(&dir.join("orders.csv"));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][col(&h, "score")], "0.00");
    assert_eq!(rows[0][col(&h, "order_id")], "7f3a-0001");
    assert_eq!(rows[0][col(&h, "match_kind")], "order-id");
    assert_eq!(rows[0][col(&h, "bot_log_row")], "bot/bot.csv:2");
    assert_eq!(rows[0][col(&h, "flagged")], "false");
    assert_eq!(rows[3][col(&h, "flagged")], "true");
    assert_eq!(rows[3][col(&h, "confidence")], "high");
    let (h, rows) = read_csv(&dir.join("fills.csv"));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1][col(&h, "order_flagged")], "true");
    let (h, rows) = read_csv(&dir.join("withdrawals.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][col(&h, "flagged")], "true");
    assert_eq!(rows[0][col(&h, "rules")], "R13");
    let (_, rows) = read_csv(&dir.join("deposits.csv"));
    assert_eq!(rows.len(), 1);
    let (h, rows) = read_csv(&dir.join("balances.csv"));
    let when: Vec<_> = rows
        .iter()
        .map(|r| format!("{}:{}", r[col(&h, "when")], r[col(&h, "currency")]))
        .collect();
    assert_eq!(when, ["start:ETH", "start:KRW", "end:KRW", "end:XYZ"]);
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    assert_eq!(keys["keys"][0]["access_key_masked"], fx::KEY);
    assert_eq!(keys["revocation"]["status"], "revoked");
    let analysis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap()).unwrap();
    assert_eq!(analysis["thresholds"]["price_deviation"], 0.2);
    let flags = analysis["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 2);
    // Each flag names its order (flagged orders in time order: the dump, then the pump).
    let ids: Vec<&str> = flags
        .iter()
        .map(|f| f["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [fx::DUMP_ORDER, fx::PUMP_ORDER]);
    assert_eq!(flags[1]["rules"][2]["rule"], "R4");
    assert_eq!(analysis["bot_logs"][0]["skipped"][0]["line"], 7);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("line 7: price is not a number"),
        "skipped rows listed"
    );
    assert!(
        md.contains("bot/bot.csv:5 bot-log order 7f3a-0009"),
        "gaps listed"
    );
    let ticket = std::fs::read_to_string(dir.join("support_ticket.md")).unwrap();
    for needle in [
        fx::PUMP_ORDER,
        fx::DUMP_ORDER,
        "2026-12-25 22:30:00 KST",
        "2026-12-25 13:30:00 UTC",
        "1,500,000 KRW",
        "compensation",
        "보상",
        "source IP",
        "출발지 IP",
        "동결",
        "counterparty",
        fx::KEY,
        "main account",
    ] {
        assert!(ticket.contains(needle), "ticket lacks {needle}:\n{ticket}");
    }
}

#[test]
fn identical_inputs_give_identical_bytes_whatever_the_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("a"), &fx::input(), &fx::result(), false);
    let mut input = fx::input();
    input.orders.reverse();
    input.fills.reverse();
    let mut result = fx::result();
    result.verdicts.reverse();
    write(&tmp.path().join("b"), &input, &result, false);
    for f in BUNDLE_FILES {
        let a = std::fs::read(tmp.path().join("a").join(f)).unwrap();
        let b = std::fs::read(tmp.path().join("b").join(f)).unwrap();
        assert!(a == b, "{f} differs between identical runs");
    }
    // A bundle is sealed only with its journal.
    fx::journal(&tmp.path().join("a"));
    fx::journal(&tmp.path().join("b"));
    let ma = manifest::seal(&tmp.path().join("a")).unwrap();
    let mb = manifest::seal(&tmp.path().join("b")).unwrap();
    assert_eq!(ma, mb);
}

#[test]
fn excel_option_writes_a_bom_on_every_csv_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    write(&dir, &fx::input(), &fx::result(), true);
    for f in BUNDLE_FILES {
        let bytes = std::fs::read(dir.join(f)).unwrap();
        let bom = bytes.starts_with(b"\xEF\xBB\xBF");
        assert_eq!(bom, f.ends_with(".csv"), "{f}");
    }
    // An exchange whose home language is not English gets the mark without being asked:
    // Excel in that locale reads a CSV without it in its legacy code page.
    let home = tmp.path().join("h");
    write(&home, &fx::input(), &fx::result(), false);
    for f in BUNDLE_FILES.iter().filter(|f| f.ends_with(".csv")) {
        assert!(
            std::fs::read(home.join(f))
                .unwrap()
                .starts_with(b"\xEF\xBB\xBF"),
            "{f}: BOM by default for a Korean-language exchange"
        );
    }
    // Without a known home language, only when asked.
    let mut input = fx::input();
    input.exchange = "unregistered".into();
    let plain = tmp.path().join("p");
    write(&plain, &input, &fx::result(), false);
    assert!(!std::fs::read(plain.join("orders.csv"))
        .unwrap()
        .starts_with(b"\xEF\xBB\xBF"));
}

#[test]
fn hostile_data_is_inert_in_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let (input, result) = fx::hostile();
    write(&dir, &input, &result, false);
    for f in BUNDLE_FILES {
        let bytes = std::fs::read(dir.join(f)).unwrap();
        assert!(!bytes.contains(&0x1b), "{f} contains a raw ESC");
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            !text.contains('\u{202E}'),
            "{f} contains a raw bidi override"
        );
        if !f.ends_with(".json") {
            assert!(
                bytes.len() < 256 * 1024,
                "{f} is {} bytes: 1 MB value not truncated",
                bytes.len()
            );
        }
    }
    // CSV: formula prefixes neutralised in text cells, the value otherwise kept.
    let (h, rows) = read_csv(&dir.join("unauthorized_trades.csv"));
    let pump = rows
        .iter()
        .find(|r| r[col(&h, "order_id")] == fx::PUMP_ORDER)
        .unwrap();
    assert_eq!(pump[col(&h, "identifier")], format!("'{}", fx::HOSTILE_ID));
    assert_eq!(pump[col(&h, "ord_type")], "price\\u{1b}[2J\\u{202e}");
    assert_eq!(pump[col(&h, "market")], fx::HOSTILE_MARKET);
    let dump = rows
        .iter()
        .find(|r| r[col(&h, "order_id")] == fx::DUMP_ORDER)
        .unwrap();
    assert!(dump[col(&h, "identifier")].starts_with("'+AAAA"));
    assert!(dump[col(&h, "identifier")]
        .ends_with("characters in total; the full value is in the raw response]"));
    let (h, rows) = read_csv(&dir.join("withdrawals.csv"));
    assert!(rows[0][col(&h, "address")].starts_with("'@SUM(1+1)"));
    // Markdown: table structure and markup escaped, templates never evaluated from data.
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("KRW-\\<script\\>alert(1)\\</script\\>{{run.id}}\\|x"),
        "market in md"
    );
    assert!(!md.contains("<script>"));
    // The visible escape of the newline is itself escaped (`\\u{a}` renders as `\u{a}`).
    assert!(
        md.contains("\\# heading\\\\u{a}\\`tick\\` {{#each x}}"),
        "note in md"
    );
    let ticket = std::fs::read_to_string(dir.join("support_ticket.md")).unwrap();
    assert!(ticket.contains("{{run.id}}"));
    assert!(!ticket.contains("<script>"));
}

#[test]
fn an_empty_run_still_renders_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let mut facts = fx::facts();
    facts.steps.clear();
    facts.revocation = report::Revocation::NotChecked;
    facts.server_time_start = None;
    facts.dry_run = true;
    let files = report::write_bundle(
        &rd,
        &facts,
        &Default::default(),
        &Default::default(),
        &ReportOptions::default(),
    )
    .unwrap();
    assert_eq!(files, BUNDLE_FILES);
    let html = std::fs::read_to_string(rd.path().join("report.html")).unwrap();
    assert!(html.contains("Dry run."));
    assert!(html.contains("No order was flagged."));
    let (_, rows) = read_csv(&rd.path().join("unauthorized_trades.csv"));
    assert!(rows.is_empty());
}

#[test]
fn verdicts_that_do_not_line_up_with_the_orders_are_refused_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    let mut result = fx::result();
    result.verdicts.pop();
    let err = report::write_bundle(
        &rd,
        &fx::facts(),
        &fx::input(),
        &result,
        &ReportOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("3 verdicts for 4 orders"), "{msg}");
    assert!(msg.contains("respond analyze"), "{msg}");
    assert!(!rd.path().join("unauthorized_trades.csv").exists());
}

#[test]
fn sealed_bundle_passes_coreutils_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sealed(tmp.path());
    let out = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .expect("coreutils sha256sum");
    assert!(
        out.status.success(),
        "sha256sum -c failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let paths: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(
        paths.contains(&"journal.jsonl") && paths.contains(&"raw/000001-GET-v1_orders_closed.body")
    );
    assert!(!paths.contains(&"SHA256SUMS") && !paths.contains(&"manifest.json"));
    let m: manifest::Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m.files.len(), paths.len());
    assert_eq!(m.journal_entries, 4);
    assert_eq!(
        m.sha256sums_sha256,
        respond::fsutil::sha256_hex(sums.as_bytes())
    );
    let rep = report::verify(&dir).unwrap();
    assert!(rep.ok, "{rep:?}");
    assert_eq!(rep.checked, paths.len());
    assert_eq!(rep.journal_entries, 4);
}

#[test]
fn verify_lists_changed_missing_and_extra_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sealed(tmp.path());
    std::fs::write(dir.join("orders.csv"), b"tampered\n").unwrap();
    std::fs::remove_file(dir.join("fills.csv")).unwrap();
    std::fs::write(dir.join("raw/planted.body"), b"{}").unwrap();
    let rep = report::verify(&dir).unwrap();
    assert!(!rep.ok);
    assert_eq!(rep.changed.len(), 1);
    assert_eq!(rep.changed[0].path, "orders.csv");
    assert_eq!(rep.missing, ["fills.csv"]);
    assert_eq!(rep.extra, ["raw/planted.body"]);
    assert!(rep.journal_error.is_none());
    assert!(
        rep.manifest_problems.is_empty(),
        "{:?}",
        rep.manifest_problems
    );
}

#[test]
fn verify_catches_an_edited_journal_line_and_edited_sums() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sealed(tmp.path());
    let j = dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&j).unwrap();
    std::fs::write(
        &j,
        text.replacen(
            "\"snapshot\",\"status\":\"ok\"",
            "\"snapshot\",\"status\":\"failed\"",
            1,
        ),
    )
    .unwrap();
    let rep = report::verify(&dir).unwrap();
    assert!(!rep.ok);
    let err = rep.journal_error.clone().expect("journal error");
    assert!(err.contains(":3:") && err.contains("altered"), "{err}");
    assert_eq!(
        rep.changed
            .iter()
            .map(|c| c.path.as_str())
            .collect::<Vec<_>>(),
        ["journal.jsonl"]
    );

    // Re-listing a tampered file in SHA256SUMS is caught by manifest.json.
    let dir2 = sealed(&tmp.path().join("second"));
    std::fs::write(dir2.join("orders.csv"), b"tampered\n").unwrap();
    let sums = std::fs::read_to_string(dir2.join("SHA256SUMS")).unwrap();
    let fixed: String = sums
        .lines()
        .map(|l| {
            if l.ends_with("  orders.csv") {
                format!(
                    "{}  orders.csv\n",
                    respond::fsutil::sha256_hex(b"tampered\n")
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dir2.join("SHA256SUMS"), fixed).unwrap();
    let rep = report::verify(&dir2).unwrap();
    assert!(!rep.ok);
    assert!(rep.changed.is_empty());
    assert!(
        rep.manifest_problems
            .iter()
            .any(|p| p.contains("different SHA256SUMS")),
        "{:?}",
        rep.manifest_problems
    );
}

#[test]
fn verify_never_reads_outside_the_bundle_and_seal_refuses_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sealed(tmp.path());
    let mut sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    sums.push_str(&format!("{}  ../outside\n", "0".repeat(64)));
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    let rep = report::verify(&dir).unwrap();
    assert!(!rep.ok);
    assert!(rep
        .manifest_problems
        .iter()
        .any(|p| p.contains("outside the bundle")));

    let dir2 = tmp.path().join("with-link");
    write(&dir2, &fx::input(), &fx::result(), false);
    fx::journal(&dir2);
    std::os::unix::fs::symlink("/etc/passwd", dir2.join("raw/link")).unwrap();
    let err = manifest::seal(&dir2).unwrap_err();
    assert!(matches!(err, report::ReportError::Symlink { .. }), "{err}");
}

#[test]
fn evidence_verify_command_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let printer = Printer::plain(Verbosity::Quiet);
    let dir = sealed(tmp.path());
    assert_eq!(
        respond::commands::evidence::verify_command(&dir, &printer).unwrap(),
        Code::Ok
    );
    std::fs::write(dir.join("report.md"), b"edited").unwrap();
    assert_eq!(
        respond::commands::evidence::verify_command(&dir, &printer).unwrap(),
        Code::EvidenceMismatch
    );
    let not_bundle = tmp.path().join("empty");
    std::fs::create_dir(&not_bundle).unwrap();
    let err = respond::commands::evidence::verify_command(&not_bundle, &printer).unwrap_err();
    assert_eq!(err.code, Code::Usage);
    let err = respond::commands::evidence::verify_command(&tmp.path().join("nope"), &printer)
        .unwrap_err();
    assert_eq!(err.code, Code::Usage);
}

#[test]
fn odd_file_names_are_listed_the_way_coreutils_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sealed(tmp.path());
    std::fs::write(dir.join("bot/we\\ird name.csv"), b"a,b\n").unwrap();
    std::fs::write(dir.join("bot/new\nline.csv"), b"c\n").unwrap();
    manifest::seal(&dir).unwrap();
    let out = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(report::verify(&dir).unwrap().ok);
}

#[test]
fn writers_refuse_to_write_through_a_planted_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let rd = RunDir::create(&dir).unwrap();
    let target = tmp.path().join("victim.txt");
    std::fs::write(&target, b"untouched").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("report.html")).unwrap();
    let err = report::write_bundle(
        &rd,
        &fx::facts(),
        &fx::input(),
        &fx::result(),
        &ReportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("report.html"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
}

/// A seal file grown past any bundle's (a planted, sparse, huge manifest.json or SHA256SUMS)
/// is named as too large and never read into memory: verify reports it instead of allocating
/// its size.
#[test]
fn a_seal_file_past_the_size_bound_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sealed(tmp.path());
    let huge = manifest::SEAL_FILE_MAX + 1;
    let grow = |name: &str| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))
            .unwrap();
        f.set_len(huge).unwrap();
    };
    // Verify does not pass, naming the file as too large.
    let refused = |name: &str| {
        let rep = report::verify(&dir).unwrap();
        assert!(!rep.ok);
        let want = format!("{name} is too large");
        assert!(
            rep.manifest_problems.iter().any(|p| p.contains(&want)),
            "{:?}",
            rep.manifest_problems
        );
    };
    grow("manifest.json");
    refused("manifest.json");
    // A grown SHA256SUMS is tampering (exit 3), not a directory that is no bundle (exit 2).
    grow("SHA256SUMS");
    refused("SHA256SUMS");
}
