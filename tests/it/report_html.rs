//! report.html as a reviewer receives it: self-contained (no remote resource), the timeline
//! SVG present with the flagged orders, its labels off the plots, hostile strings escaped.
//! When `/usr/bin/chromium` exists (CI installs it), tests also render it headless: the
//! timeline's pixels, the first screen (the claim, the INCOMPLETE banner), and the print view
//! (A4 pages with every table inside them, rasterized by poppler's `pdftoppm`). Each says it
//! skipped when a tool is missing.

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
    // Axes and their labels in the exchange's local time (KST here), UTC in the caption.
    assert!(html.contains("key revoked (observed) 12-25 22:45:12"));
    assert!(html.contains("key observed revoked at 2026-12-25T13:45:12.000Z"));
    assert!(html.contains("Orders over time (KST)"));
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
    let img = Image::decode(png_bytes);
    assert!(img.channels >= 3, "a colour screenshot");
    img.count(rgb, 0..img.height)
}

/// The installed Chromium, or `None` after printing that `what` is skipped.
/// `RESPOND_REQUIRE_CHROMIUM=1` (set by `.ci/run` once it installed it) turns a missing
/// browser into a failure.
fn chromium(what: &str) -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("RESPOND_REQUIRE_CHROMIUM").is_none(),
            "RESPOND_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        println!("notice: chromium not installed; skipping {what}");
    }
    found
}

/// Decoded PNG: width, height, RGB(A) channels, pixels.
struct Image {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    fn decode(png_bytes: &[u8]) -> Image {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
        let info = reader.next_frame(&mut buf).expect("png frame");
        buf.truncate(info.buffer_size());
        Image {
            width: info.width as usize,
            height: info.height as usize,
            channels: info.color_type.samples(),
            data: buf,
        }
    }

    fn pixel(&self, x: usize, y: usize) -> &[u8] {
        let at = (y * self.width + x) * self.channels;
        &self.data[at..at + 3]
    }

    /// Pixels near `rgb` in the rows `rows`.
    fn count(&self, rgb: [u8; 3], rows: std::ops::Range<usize>) -> usize {
        rows.flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = self.pixel(x, y);
                (0..3).all(|c| p[c].abs_diff(rgb[c]) <= 24)
            })
            .count()
    }
}

/// The first screen as a reader opens it (1200×900), for the fixture's facts changed by
/// `change`: how many pixels of the INCOMPLETE banner's red and of the total's blue card.
fn first_screen_colors(
    chromium: &str,
    tmp: &Path,
    change: impl Fn(&mut respond::report::RunFacts),
) -> (usize, usize) {
    std::fs::create_dir_all(tmp).unwrap();
    let rd = RunDir::create(&tmp.join("run")).unwrap();
    let mut facts = fx::facts();
    change(&mut facts);
    report::write_bundle(
        &rd,
        &facts,
        &fx::input(),
        &fx::result(),
        &ReportOptions::default(),
    )
    .unwrap();
    let png = screenshot_sized(chromium, tmp, &rd.path().join("report.html"), "1200,900");
    let img = Image::decode(&png);
    (
        img.count([0xc6, 0x28, 0x28], 0..img.height),
        img.count([0x0d, 0x47, 0xa1], 0..img.height),
    )
}

#[test]
fn chromium_shows_the_claim_and_the_incomplete_banner_on_the_first_screen() {
    let Some(chromium) = chromium("the first-screen check of report.html") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (banner, total) = first_screen_colors(chromium, &tmp.path().join("done"), |_| {});
    let (banner_cut, total_cut) = first_screen_colors(chromium, &tmp.path().join("cut"), |f| {
        f.steps.push(respond::report::StepRecord {
            id: "export".into(),
            uses: "exchange.export_history".into(),
            status: respond::report::StepStatus::Failed,
            summary: "429 storm".into(),
            started_at: None,
            finished_at: None,
        });
    });
    println!(
        "first screen: total card {total} px (complete run), {total_cut} px (incomplete); banner {banner} px / {banner_cut} px"
    );
    assert!(
        total > 5_000,
        "the estimated loss card is on the first screen: {total} px"
    );
    assert!(
        total_cut > 5_000,
        "and still is under the banner: {total_cut} px"
    );
    assert!(
        banner_cut > 20_000,
        "the INCOMPLETE banner shows: {banner_cut} px"
    );
    assert!(banner < 500, "no banner on a complete run: {banner} px");
}

/// Runs where `pdftoppm` (Debian's poppler-utils, installed by `.ci/run`) is; `None` after a
/// notice otherwise (a failure under `RESPOND_REQUIRE_CHROMIUM`).
fn pdftoppm() -> Option<&'static str> {
    let found = ["/usr/bin/pdftoppm"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("RESPOND_REQUIRE_CHROMIUM").is_none(),
            "RESPOND_REQUIRE_CHROMIUM is set but pdftoppm (poppler-utils) is not installed"
        );
        println!("notice: pdftoppm not installed; skipping the print layout check of report.html");
    }
    found
}

/// Prints `page` to A4 PDF with Chromium and rasterizes every page at 50 dpi.
fn print_pages(chromium: &str, pdftoppm: &str, tmp: &Path, page: &Path) -> Vec<Image> {
    let pdf = tmp.join("report.pdf");
    let out = std::process::Command::new(chromium)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && pdf.is_file(),
        "chromium could not print: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = tmp.join("page");
    let out = std::process::Command::new(pdftoppm)
        .args(["-r", "50", "-png"])
        .arg(&pdf)
        .arg(&prefix)
        .output()
        .expect("run pdftoppm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("page"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| Image::decode(&std::fs::read(f).unwrap()))
        .collect()
}

/// Columns of the page's right margin (the outer 8 mm of the 12 mm) that hold anything but
/// white: where a table wider than the page would spill.
fn right_margin_ink(page: &Image) -> usize {
    let strip = (8.0 / 25.4 * 50.0) as usize;
    (page.width - strip..page.width)
        .flat_map(|x| (0..page.height).map(move |y| (x, y)))
        .filter(|&(x, y)| page.pixel(x, y).iter().any(|c| *c < 235))
        .count()
}

#[test]
fn chromium_prints_every_table_inside_an_a4_page() {
    let Some(chromium) = chromium("the print layout check of report.html") else {
        return;
    };
    let Some(pdftoppm) = pdftoppm() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Hostile data: 1,024-character ids without a break, wide tables, long reasons.
    let (path, _) = render(tmp.path(), true);
    let pages = print_pages(chromium, pdftoppm, tmp.path(), &path);
    assert!(pages.len() >= 2, "{} pages", pages.len());
    for (i, p) in pages.iter().enumerate() {
        // A4 at 50 dpi: 413 × 585 pixels (portrait).
        assert!(
            p.width.abs_diff(413) <= 2 && p.height.abs_diff(585) <= 2,
            "page {} is {}×{}, not A4 portrait",
            i + 1,
            p.width,
            p.height
        );
        let ink = right_margin_ink(p);
        assert_eq!(
            ink,
            0,
            "page {}: {ink} pixels spill into the right margin",
            i + 1
        );
    }
    println!(
        "report.html prints on {} A4 pages, nothing in the margins",
        pages.len()
    );
}

#[test]
fn timeline_labels_stay_off_the_plots_and_candles_never_hide_a_fill() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, html) = render(tmp.path(), false);
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    let attr = |el: &str, name: &str| -> Option<f64> {
        let at = el.find(&format!(" {name}=\""))? + name.len() + 3;
        el[at..].split('"').next()?.parse().ok()
    };
    // The plot areas: the panels' frames.
    let panels: Vec<(f64, f64, f64, f64)> = svg
        .split("<rect")
        .skip(1)
        .filter(|r| r.contains(r##"fill="none" stroke="#999""##))
        .map(|r| {
            let (x, y) = (attr(r, "x").unwrap(), attr(r, "y").unwrap());
            (
                x,
                y,
                x + attr(r, "width").unwrap(),
                y + attr(r, "height").unwrap(),
            )
        })
        .collect();
    assert!(
        panels.len() >= 4,
        "overview and zoom, price and lane: {panels:?}"
    );
    let mut labels = 0;
    for t in svg.split("<text").skip(1) {
        let (x, y) = (attr(t, "x").unwrap(), attr(t, "y").unwrap());
        let text = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
        let w = text.chars().count() as f64 * 6.3;
        let (left, right) = if t.contains(r#"text-anchor="end""#) {
            (x - w, x)
        } else if t.contains(r#"text-anchor="middle""#) {
            (x - w / 2.0, x + w / 2.0)
        } else {
            (x, x + w)
        };
        let (top, bottom) = (y - 10.0, y + 2.0);
        for (px0, py0, px1, py1) in &panels {
            let overlaps = left < *px1 && right > *px0 && top < *py1 && bottom > *py0;
            assert!(
                !overlaps,
                "label `{text}` at ({x}, {y}) lies on a plot area"
            );
        }
        labels += 1;
    }
    assert!(labels > 20, "{labels} labels checked");
    // Candles are translucent outlines, drawn before the fills.
    let zoom = zoom_group(&html);
    for c in zoom.split("candle from").skip(1) {
        let rect = &c[c.find("<rect").unwrap()..];
        let rect = &rect[..rect.find("/>").unwrap()];
        let opacity = attr(rect, "fill-opacity").expect("a translucent candle");
        assert!(opacity <= 0.1, "candle fill opacity {opacity}");
    }
    let last_candle = zoom.rfind("candle from").unwrap();
    let first_fill = zoom.find("FLAGGED fill of").unwrap();
    assert!(last_candle < first_fill, "fills are drawn over the candles");
}
#[test]
fn chromium_renders_the_report_offline() {
    let Some(chromium) = chromium("the headless screenshot of report.html") else {
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

/// A headless Chromium screenshot (1200×4200, the whole timeline included) of `page`, as
/// PNG bytes.
fn screenshot(chromium: &str, tmp: &Path, page: &Path) -> Vec<u8> {
    screenshot_sized(chromium, tmp, page, "1200,4200")
}

/// Chromium's flags for a headless, offline, reproducible render.
const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// A headless Chromium screenshot of `page` at `size` (`W,H`), as PNG bytes.
fn screenshot_sized(chromium: &str, tmp: &Path, page: &Path, size: &str) -> Vec<u8> {
    let png = tmp.join("report.png");
    let profile = tmp.join("profile");
    let out = std::process::Command::new(chromium)
        .args(HEADLESS)
        .arg(format!("--window-size={size}"))
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
    // From the reference window's start (12:00 UTC) to the revocation (13:45:12) + 5
    // minutes, in local time.
    assert!(
        zoom.contains(
            "Zoom on the attack: 2026-12-25 21:00–22:50 KST — KRW-XYZ price and every order"
        ),
        "{zoom}"
    );
    assert!(
        zoom.contains(r#"text-anchor="middle">22:30</text>"#),
        "local ticks"
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
    assert!(zoom.contains(
        "the highest price a flagged buy paid, 360 at 22:30:01 (+260% over the reference)"
    ));
    assert!(zoom.contains("reference price 100"));
    assert!(zoom.contains("key revoked (observed) 22:45:12"));
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
    result.loss.total = fx::d("15525711.2");
    result.loss.change_during_response = Some(fx::d("-1412.5"));
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
            "{name}: overpayment and total in whole won"
        );
        assert!(
            !text.contains("15525710.5"),
            "{name}: no raw decimals of KRW"
        );
    }
    for (name, text) in [("report.md", &md), ("report.html", &html)] {
        assert!(
            text.contains("-1,413 KRW"),
            "{name}: the change during the response rounded half away from zero"
        );
    }
    assert!(
        !ticket.contains("1,413"),
        "the change during the response is not part of the claim"
    );
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
