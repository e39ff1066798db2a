//! report.html as a reviewer receives it: self-contained (no remote resource), the timeline
//! SVG present with the flagged orders, hostile strings escaped. When `/usr/bin/chromium`
//! exists (CI installs it), one test also renders it headless to a PNG and checks the pixels
//! of the timeline (skipped with a notice otherwise).

use std::path::{Path, PathBuf};

use crate::support::report_fixture as fx;
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

/// Pixels of a PNG within a small distance of `rgb`.
fn pixels_near(png_bytes: &[u8], rgb: [u8; 3]) -> usize {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "a colour screenshot");
    buf[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|p| (0..3).all(|c| p[c].abs_diff(rgb[c]) <= 24))
        .count()
}

/// Runs where Chromium is installed (`.ci/run` installs Debian's `chromium`); elsewhere it
/// says it skipped. `RESPOND_REQUIRE_CHROMIUM=1` turns a missing browser into a failure.
#[test]
fn chromium_renders_the_report_offline() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        assert!(
            std::env::var_os("RESPOND_REQUIRE_CHROMIUM").is_none(),
            "RESPOND_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        println!("notice: chromium not installed; skipping the headless screenshot of report.html");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = render(tmp.path(), true);
    let bytes = screenshot(chromium, tmp.path(), &path);
    // The timeline was drawn, not just the page: the price line's blue runs across two
    // charts, and the flagged marks' red goes away when nothing is flagged (the legends and
    // labels in red stay, so the difference is what the marks themselves draw).
    let count = |png: &[u8], rgb: [u8; 3]| pixels_near(png, rgb);
    let (blue, red) = (
        count(&bytes, [0x1f, 0x5f, 0xbf]),
        count(&bytes, [0xd3, 0x2f, 0x2f]),
    );
    let calm = tmp.path().join("calm");
    std::fs::create_dir_all(&calm).unwrap();
    let (input, mut result) = fx::hostile();
    for v in &mut result.verdicts {
        v.flagged = false;
        v.confidence = respond::analysis::Confidence::None;
        v.rules.clear();
        v.est_loss_quote = None;
    }
    let rd = RunDir::create(&calm.join("run")).unwrap();
    report::write_bundle(
        &rd,
        &fx::facts(),
        &input,
        &result,
        &ReportOptions::default(),
    )
    .unwrap();
    let calm_png = screenshot(chromium, &calm, &rd.path().join("report.html"));
    let calm_red = count(&calm_png, [0xd3, 0x2f, 0x2f]);
    println!(
        "report.html screenshot: {blue} price-line pixels; {red} red pixels with 2 flagged \
         orders, {calm_red} with none flagged"
    );
    assert!(blue > 1_000, "candle-close line drawn: {blue} blue pixels");
    assert!(
        red > calm_red + 300,
        "flagged orders drawn: {red} red pixels vs {calm_red} when nothing is flagged"
    );
    if let Ok(keep) = std::env::var("RESPOND_KEEP_SCREENSHOT") {
        std::fs::write(keep, &bytes).unwrap();
    }
}

/// A headless Chromium screenshot (1200×2400) of `page`, as PNG bytes.
fn screenshot(chromium: &str, tmp: &Path, page: &Path) -> Vec<u8> {
    let png = tmp.join("report.png");
    let profile = tmp.join("profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    bytes
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
    // One verdict per order: the bulk orders are the bot's own (matched, no rules).
    let mut result = fx::result();
    let matched = result.verdicts[0].clone();
    result.verdicts.resize(input.orders.len(), matched);
    let rd = RunDir::create(&tmp.path().join("run")).unwrap();
    report::write_bundle(
        &rd,
        &fx::facts(),
        &input,
        &result,
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

/// The `<g id="tl-zoom">…</g>` group of the timeline SVG.
fn zoom_group(html: &str) -> &str {
    let at = html.find(r#"<g id="tl-zoom">"#).expect("a zoomed figure");
    let svg_end = html.find("</svg>").unwrap();
    assert!(at < svg_end, "the zoomed figure is inside the SVG");
    &html[at..svg_end]
}

#[test]
fn zoomed_figure_shows_the_attack_with_its_fills_reference_and_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, html) = render(tmp.path(), false);
    let zoom = zoom_group(&html);
    // From the reference window's start (12:00) to the revocation (13:45:12) + 5 minutes.
    assert!(
        zoom.contains(
            "Zoom on the attack: 2026-12-25 12:00–13:50 UTC — KRW-XYZ price and every order"
        ),
        "{zoom}"
    );
    assert!(html.contains("zoomed figure: 2026-12-25T12:00:00.000Z to 2026-12-25T13:50:12.000Z"));
    // The pump's two fills at their own prices, flagged; the dump in the order lane.
    for fill in [
        "× 340 at 2026-12-25T13:30:00.000Z",
        "× 360 at 2026-12-25T13:30:01.000Z",
    ] {
        assert!(
            zoom.contains(&format!(
                "FLAGGED fill of KRW-XYZ buy {}: 1000 {fill}",
                fx::PUMP_ORDER
            )),
            "fill {fill} in the zoom:\n{zoom}"
        );
    }
    assert!(zoom.contains(&format!("FLAGGED KRW-ETH sell market {}", fx::DUMP_ORDER)));
    assert!(zoom.contains("orders of every market in this span: "));
    assert!(zoom.contains("flagged buy paid 360 (+260% over the reference)"));
    assert!(zoom.contains("reference price 100"));
    assert!(zoom.contains("key revoked (observed) 2026-12-25T13:45:12.000Z"));
    // Candles of the market, 10-minute ones here, drawn as boxes and named by interval.
    assert!(zoom.contains("10 min candles"));
    assert!(zoom.contains("KRW-XYZ candle from 2026-12-25T13:40:00.000Z"));
    assert!(
        !zoom.contains("candle from 2026-12-25T11:50"),
        "no candle before the span"
    );
    // The overview marks the zoomed span.
    assert!(html.contains("zoomed below: 2026-12-25T12:00:00.000Z → 2026-12-25T13:50:12.000Z"));
}

#[test]
fn nothing_flagged_means_no_zoomed_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let rd = RunDir::create(&dir).unwrap();
    let mut result = fx::result();
    for v in result.verdicts.iter_mut() {
        v.flagged = false;
    }
    result.suspicious_window = None;
    report::write_bundle(
        &rd,
        &fx::facts(),
        &fx::input(),
        &result,
        &ReportOptions::default(),
    )
    .unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg"));
    assert!(!html.contains("tl-zoom") && !html.contains("Zoom on the attack"));
}

#[test]
fn krw_amounts_read_as_whole_won_and_csvs_stay_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let rd = RunDir::create(&dir).unwrap();
    let mut result = fx::result();
    result.loss.overpayment = fx::d("15525710.50335051");
    result.loss.portfolio_delta = Some(fx::d("-1412.5"));
    report::write_bundle(
        &rd,
        &fx::facts(),
        &fx::input(),
        &result,
        &ReportOptions::default(),
    )
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let (md, html, ticket) = (
        read("report.md"),
        read("report.html"),
        read("support_ticket.md"),
    );
    for (name, text) in [
        ("report.md", &md),
        ("report.html", &html),
        ("support_ticket.md", &ticket),
    ] {
        assert!(
            text.contains("15,525,711 KRW"),
            "{name}: overpayment in whole won"
        );
        assert!(
            text.contains("-1,413 KRW"),
            "{name}: portfolio decrease rounded half away from zero"
        );
        assert!(
            !text.contains("15525710.5"),
            "{name}: no raw decimals of KRW"
        );
    }
    // The pump (Upbit `price` type: spend 700,000 KRW) with its average fill price; the
    // dump's estimated loss; the reference price, a unit price, keeps its decimals if any.
    assert!(
        md.contains("| price | 700,000 |"),
        "amount to spend in whole won"
    );
    assert!(
        md.contains("| 700,000 | 350 |"),
        "funds, then the average fill price"
    );
    assert!(md.contains("| 1,000,000 |"), "est. loss in whole won");
    // The balances table: KRW in whole won, coins exact.
    assert!(md.contains("| KRW | 100,000 | 0 |"));
    assert!(md.contains("| ETH | 2 |"));
    // CSVs keep exact values.
    let orders = read("orders.csv");
    assert!(orders.contains(",700000,") && !orders.contains("700,000"));
}
