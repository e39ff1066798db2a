//! report.html as a reviewer receives it: self-contained (no remote resource), the timeline
//! SVG present with the flagged orders, hostile strings escaped. When `/usr/bin/chromium`
//! exists, one test also renders it headless to a PNG (skipped with a notice otherwise).

mod report_fixture;

use std::path::{Path, PathBuf};

use report_fixture as fx;
use respond::report::{self, ReportOptions};
use respond::rundir::RunDir;

fn render(tmp: &Path, hostile: bool) -> (PathBuf, String) {
    let dir = tmp.join("run");
    let rd = RunDir::create(&dir).unwrap();
    let (input, result) = if hostile {
        fx::hostile()
    } else {
        (fx::input(), fx::result())
    };
    report::write_bundle(
        &rd,
        &fx::facts(),
        &input,
        &result,
        &ReportOptions::default(),
    )
    .unwrap();
    let path = dir.join("report.html");
    let html = std::fs::read_to_string(&path).unwrap();
    (path, html)
}

/// Every value of a `src=`/`href=`/`url(`/`@import` reference in the page.
fn references(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    for pat in ["src=", "href=", "url(", "@import", "xlink:href"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(pat) {
            let at = from + i;
            out.push(lower[at..(at + 80).min(lower.len())].to_string());
            from = at + pat.len();
        }
    }
    out
}

#[test]
fn report_is_self_contained_with_timeline_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, html) = render(tmp.path(), false);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "timeline picture");
    assert!(
        html.contains("<polyline"),
        "price line of the pumped market"
    );
    assert!(html.contains("key revoked (observed) 2026-12-25T13:45:12.000Z"));
    assert!(
        html.contains("KRW-XYZ: price"),
        "the most-affected market is the pumped one"
    );
    for id in [fx::PUMP_ORDER, fx::DUMP_ORDER] {
        assert!(html.contains(id), "flagged order {id}");
    }
    assert!(html.contains("FACTS") && html.contains("INFERENCES"));
    assert!(html.contains("sha256sum -c SHA256SUMS") && html.contains("respond evidence verify"));
    assert!(references(&html).is_empty(), "{:?}", references(&html));
    assert!(!html.contains("<script"), "no script at all");
    // The only URL is the SVG namespace, which is an identifier, never fetched.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
}

#[test]
fn hostile_strings_are_escaped_in_html_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, html) = render(tmp.path(), true);
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<a href"));
    assert!(references(&html).is_empty(), "{:?}", references(&html));
    assert!(html.contains("KRW-&lt;script&gt;alert(1)&lt;/script&gt;{{run.id}}|x"));
    // In the SVG too (the price panel title of the most-affected market).
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert!(
        svg.contains("&lt;script&gt;alert(1)"),
        "market escaped inside the SVG"
    );
    assert!(!svg.contains("<script"));
    assert!(html.contains("&lt;/td&gt;&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;"));
    assert!(
        html.contains("&#x3D;cmd|&#x27; /C calc&#x27;!A0"),
        "identifier shown as text, not neutralised for Excel"
    );
    assert!(!html.contains('\u{1b}'));
    assert!(
        html.len() < 256 * 1024,
        "1 MB values truncated: {} bytes",
        html.len()
    );
}

#[test]
fn chromium_renders_the_report_offline() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        println!("notice: chromium not installed; skipping the headless screenshot of report.html");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = render(tmp.path(), true);
    let png = tmp.path().join("report.png");
    let profile = tmp.path().join("profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", path.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 10_000,
        "a non-trivial picture ({} bytes)",
        bytes.len()
    );
    if let Ok(keep) = std::env::var("RESPOND_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

#[test]
fn many_orders_become_a_histogram_and_the_page_stays_small() {
    let tmp = tempfile::tempdir().unwrap();
    let mut input = fx::input();
    let template = input.orders[0].clone();
    for i in 0..6000 {
        let mut o = template.clone();
        o.id = format!("bulk-{i:05}");
        o.created_at = fx::t(12, 0, 0) + chrono::Duration::seconds(i);
        input.orders.push(o);
    }
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    report::write_bundle(
        &rd,
        &fx::facts(),
        &input,
        &fx::result(),
        &ReportOptions::default(),
    )
    .unwrap();
    let html = std::fs::read_to_string(rd.path().join("report.html")).unwrap();
    assert!(html.contains("all orders (6004)"));
    assert!(
        !html.contains("bulk-00001"),
        "unflagged orders are not listed one by one"
    );
    assert!(html.len() < 400 * 1024, "{} bytes", html.len());
    let orders = std::fs::read_to_string(rd.path().join("orders.csv")).unwrap();
    assert_eq!(orders.lines().count(), 6005, "orders.csv holds every order");
}
