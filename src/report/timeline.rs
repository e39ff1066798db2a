//! The timeline picture of `report.html`: an inline SVG built here, in Rust.
//!
//! Upper panel: the price line of the most-affected market (largest estimated loss among
//! flagged orders, from its candles' closes), its reference price, and that market's orders at
//! their execution prices. Lower panel: every order over time (buys above the axis, sells
//! below), flagged ones in red. A shaded band marks the suspicious window and a dashed line the
//! moment the key was observed revoked. Above 2,000 orders the lower panel becomes a per-pixel
//! histogram so the file stays small.
//!
//! The overview spans the whole investigation window (days), so an attack of minutes is a
//! thin line at its edge. When something is flagged, a second, zoomed figure below covers the
//! attack itself: from the reference-price window (or 30 minutes before the first flagged
//! order) to the revocation or the last flagged order, plus a margin. It shows the pumped
//! market's candles as high–low boxes (they are hourly: coarser than the attack), the fills'
//! own prices as points (the fact that matters: what the account paid), orders without fills
//! at their limit, the reference price, and every order of any market in that span. The zoomed
//! span is shaded on the overview so the two figures read together.
//!
//! Unauthorized withdrawals are purple diamonds between the panels (and on the zoomed lane),
//! each titled with its amount, destination and txid.
//!
//! The axes read in the exchange's local time (the zone is named on them; the caption gives
//! UTC). Labels sit outside the plot areas, in a strip above each panel or in the left
//! margin, and the zoomed candles are translucent outlines, so no label or candle hides a
//! mark.
//!
//! Every text is escaped with [`sanitize::html`]; coordinates are formatted with one decimal
//! and nothing reads the clock, so the output is deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::exchange::{Order, Side};
use crate::report::facts::RunFacts;
use crate::report::format::order_price;
use crate::report::joined::Joined;
use crate::report::sanitize::{clean, html};
use crate::time::ts;

const W: f64 = 960.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const PRICE_TOP: f64 = 40.0;
const PRICE_H: f64 = 180.0;
const LANE_TOP: f64 = 262.0;
const LANE_H: f64 = 100.0;
const H: f64 = 412.0;
/// The row between the panels that holds the withdrawal marks.
const W_ROW: f64 = PRICE_TOP + PRICE_H + 14.0;
const MAX_MARKS: usize = 2000;
/// The zoomed figure, below the overview.
const Z_TOP: f64 = H + 40.0;
const Z_PRICE_TOP: f64 = Z_TOP + 62.0;
const Z_PRICE_H: f64 = 220.0;
const Z_LANE_TOP: f64 = Z_PRICE_TOP + Z_PRICE_H + 30.0;
const Z_LANE_H: f64 = 80.0;
const Z_H: f64 = Z_LANE_TOP + Z_LANE_H + 50.0;
/// Margin of the zoomed span after the revocation / last flagged order.
const Z_MARGIN_AFTER_MIN: i64 = 5;
/// Without a reference window, the zoomed span starts this long before the first flagged order.
const Z_BEFORE_MIN: i64 = 30;
/// A reference window older than this before the first flagged order is not worth the space.
const Z_MAX_LEAD_HOURS: i64 = 6;

/// The market the picture's price line shows: the pumped one, i.e. the most estimated loss
/// among flagged *buys* (the attack buys one coin far above its price), then among all flagged
/// orders, then most flagged orders, then name; with nothing flagged, the most traded market.
pub fn most_affected_market(j: &Joined<'_>) -> Option<String> {
    #[derive(Default, PartialEq, Eq, PartialOrd, Ord)]
    struct Weight {
        flagged_buys: bool,
        buy_loss: Decimal,
        loss: Decimal,
        flagged: usize,
        orders: usize,
    }
    let mut by: BTreeMap<&str, Weight> = BTreeMap::new();
    for (o, v) in &j.orders {
        let e = by.entry(o.market.as_str()).or_default();
        e.orders += 1;
        if let Some(v) = v.filter(|v| v.flagged) {
            let loss = v.est_loss_quote.unwrap_or_default();
            e.loss += loss;
            e.flagged += 1;
            if o.side == Side::Buy {
                e.flagged_buys = true;
                e.buy_loss += loss;
            }
        }
    }
    by.into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(m, _)| m.to_string())
}

struct Scale {
    t0: DateTime<Utc>,
    span_ms: f64,
}

impl Scale {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let ms = (t - self.t0).num_milliseconds() as f64;
        LEFT + ms / self.span_ms * (W - LEFT - RIGHT)
    }
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Rough width in pixels of `text` at the picture's 11 px font (wide enough for Latin text).
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.3
}

/// A label for the vertical line at `x` in the strip above a panel whose title, starting at
/// `LEFT`, is `title_width` wide: left of the line (anchored at its end) when it fits between
/// the title and the line, else right of it. Returns (x, anchor).
fn strip_label(x: f64, width: f64, title_width: f64) -> (f64, &'static str) {
    if x - 4.0 - width > LEFT + title_width + 8.0 {
        (x - 4.0, "end")
    } else {
        (x + 4.0, "start")
    }
}

/// The price line's label in the left margin, below or above the axis labels it would touch.
fn margin_label(y: f64, hi_y: f64, lo_y: f64) -> f64 {
    let mut y = y + 4.0;
    for axis in [hi_y, lo_y] {
        if (y - (axis + 4.0)).abs() < 12.0 {
            y = if y >= axis + 4.0 {
                axis + 16.0
            } else {
                axis - 8.0
            };
        }
    }
    y
}

/// `t` on an axis: the exchange's local time.
fn local_label(j: &Joined<'_>, t: DateTime<Utc>, fmt: &str) -> String {
    t.with_timezone(&crate::time::offset(j.input.local_utc_offset_secs))
        .format(fmt)
        .to_string()
}

/// A withdrawal mark: a purple diamond at (x, y) with its details in the title.
fn withdrawal_mark(s: &mut String, x: f64, y: f64, title: &str) {
    let _ = write!(
        s,
        r##"<path d="M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z" fill="#7b1fa2" stroke="#fff" stroke-width="0.8"><title>{}</title></path>"##,
        y - 7.0,
        x + 6.0,
        y + 7.0,
        x - 6.0,
        html(title)
    );
}

/// The unauthorized withdrawals, with their marks' titles.
fn flagged_withdrawals(j: &Joined<'_>) -> Vec<(DateTime<Utc>, String)> {
    let mut out: Vec<(DateTime<Utc>, String)> = j
        .flagged_withdrawals()
        .map(|w| {
            let (to, _, _) = crate::report::view::destination(w, &j.input.withdrawal_addresses);
            (
                w.created_at,
                clean(&format!(
                    "unauthorized withdrawal {}: {} {}{} to {} at {}{}",
                    w.id,
                    w.amount.normalize(),
                    w.currency,
                    w.net_type
                        .as_deref()
                        .map(|n| format!(" (network {n})"))
                        .unwrap_or_default(),
                    to.unwrap_or("an address the record does not give"),
                    ts(w.created_at),
                    w.txid
                        .as_deref()
                        .map(|t| format!("; txid {t}"))
                        .unwrap_or_default()
                )),
            )
        })
        .collect();
    out.sort();
    out
}

/// Renders the SVG and a one-line caption (plain text, for the HTML and Markdown reports).
pub fn render(facts: &RunFacts, j: &Joined<'_>) -> (String, String) {
    let market = most_affected_market(j);
    let candles = market
        .as_deref()
        .and_then(|m| j.input.candles.get(m))
        .map(|c| {
            let mut c: Vec<_> = c.iter().collect();
            c.sort_by_key(|c| c.start);
            c
        })
        .unwrap_or_default();
    let all_candles = candles.clone();
    let market_orders: Vec<&Order> = j
        .orders
        .iter()
        .map(|(o, _)| *o)
        .filter(|o| Some(o.market.as_str()) == market.as_deref())
        .collect();
    let revoked = facts.revocation.revoked_at();

    // Time extent: orders, the revocation, the suspicious and investigation windows; the
    // candles (often fetched further back) only when nothing else gives one.
    let mut times: Vec<DateTime<Utc>> = j.orders.iter().map(|(o, _)| o.created_at).collect();
    times.extend(revoked);
    for w in [
        j.result.suspicious_window,
        facts.investigation_window.or(j.input.window),
    ]
    .into_iter()
    .flatten()
    {
        times.push(w.from);
        times.push(w.to);
    }
    if times.is_empty() {
        times.extend(candles.iter().map(|c| c.start));
    }
    let (mut t0, mut t1) = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (facts.started_at, facts.finished_at),
    };
    if t1 <= t0 {
        t0 -= Duration::minutes(1);
        t1 += Duration::minutes(1);
    }
    let pad = (t1 - t0) / 40;
    t0 -= pad;
    t1 += pad;
    // Candles outside the picture would be drawn over the axis labels.
    let candles: Vec<_> = candles
        .into_iter()
        .filter(|c| c.start >= t0 && c.start <= t1)
        .collect();
    let zoom = zoom_span(facts, j);
    let height = if zoom.is_some() { Z_H } else { H };
    let sc = Scale {
        t0,
        span_ms: (t1 - t0).num_milliseconds().max(1) as f64,
    };

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="100%" role="img" aria-labelledby="tl-title" font-family="sans-serif" font-size="11">"##
    );
    let title = match &market {
        Some(m) => format!(
            "Orders over time ({}); price line: {}",
            j.local_zone(),
            clean(m)
        ),
        None => format!("Orders over time ({})", j.local_zone()),
    };
    let _ = write!(s, r##"<title id="tl-title">{}</title>"##, html(&title));
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{W}" height="{height}" fill="#ffffff"/>"##
    );

    // The span the zoomed figure below shows.
    if let Some((za, zb)) = zoom {
        let (a, b) = (sc.x(za), sc.x(zb).max(sc.x(za) + 3.0));
        let _ = write!(
            s,
            r##"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#e65100" stroke-width="1.5"><title>zoomed below: {} → {}</title></rect>"##,
            PRICE_TOP - 4.0,
            b - a,
            LANE_TOP + LANE_H - PRICE_TOP + 8.0,
            ts(za),
            ts(zb)
        );
    }

    // Suspicious window band.
    if let Some(w) = j.result.suspicious_window {
        let (a, b) = (sc.x(w.from), sc.x(w.to).max(sc.x(w.from) + 2.0));
        let _ = write!(
            s,
            r##"<rect x="{a:.1}" y="{PRICE_TOP}" width="{:.1}" height="{:.1}" fill="#fde2e1" opacity="0.7"><title>suspicious window {} → {}</title></rect>"##,
            b - a,
            LANE_TOP + LANE_H - PRICE_TOP,
            ts(w.from),
            ts(w.to)
        );
    }

    // Price panel.
    let mut prices: Vec<f64> = candles
        .iter()
        .flat_map(|c| [f(c.high), f(c.low), f(c.close)])
        .collect();
    prices.extend(market_orders.iter().filter_map(|o| order_price(o)).map(f));
    let reference = j
        .flagged()
        .find(|(o, v)| Some(o.market.as_str()) == market.as_deref() && v.reference_price.is_some())
        .and_then(|(_, v)| v.reference_price);
    prices.extend(reference.map(f));
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{PRICE_TOP}" width="{:.1}" height="{PRICE_H}" fill="none" stroke="#999"/>"##,
        W - LEFT - RIGHT
    );
    if let (Some(lo), Some(hi)) = (
        prices.iter().cloned().reduce(f64::min),
        prices.iter().cloned().reduce(f64::max),
    ) {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo * 0.9, hi * 1.1 + 1e-9)
        };
        let py = |p: f64| PRICE_TOP + PRICE_H - (p - lo) / (hi - lo) * (PRICE_H - 10.0) - 5.0;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 4.0,
            py(hi) + 4.0,
            html(&format_price(hi)),
            LEFT - 4.0,
            py(lo) + 4.0,
            html(&format_price(lo))
        );
        if !candles.is_empty() {
            let pts: Vec<String> = candles
                .iter()
                .map(|c| format!("{:.1},{:.1}", sc.x(c.start), py(f(c.close))))
                .collect();
            let _ = write!(
                s,
                r##"<polyline points="{}" fill="none" stroke="#1f5fbf" stroke-width="1.5"><title>{} close price (candles)</title></polyline>"##,
                pts.join(" "),
                html(&clean(market.as_deref().unwrap_or("")))
            );
        }
        if let Some(r) = reference {
            let y = py(f(r));
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#2e7d32" stroke-dasharray="6 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#2e7d32">ref {}</text>"##,
                W - RIGHT,
                LEFT - 4.0,
                margin_label(y, py(hi), py(lo)),
                html(&format_price(f(r)))
            );
        }
        // Above MAX_MARKS orders in this market, only the flagged ones are drawn.
        let all = market_orders.len() <= MAX_MARKS;
        let mut drawn = 0;
        for o in &market_orders {
            let flagged = j.order_flagged(&o.id);
            if (!all && !flagged) || drawn >= MAX_MARKS {
                continue;
            }
            if let Some(p) = order_price(o) {
                drawn += 1;
                let _ = write!(
                    s,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}" stroke="#fff" stroke-width="0.5"><title>{}</title></circle>"##,
                    sc.x(o.created_at),
                    py(f(p)),
                    if flagged { 3.5 } else { 2.5 },
                    if flagged { "#d32f2f" } else { "#777" },
                    html(&mark_title(o, flagged))
                );
            }
        }
    } else {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#777">no price data for this market</text>"##,
            LEFT + 10.0,
            PRICE_TOP + 20.0
        );
    }
    let price_title = match &market {
        Some(m) => format!("{}: price", clean(m)),
        None => "price".into(),
    };
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"##,
        PRICE_TOP - 8.0,
        html(&price_title)
    );

    // Order lane.
    let mid = LANE_TOP + LANE_H / 2.0;
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{LANE_TOP}" width="{:.1}" height="{LANE_H}" fill="none" stroke="#999"/><line x1="{LEFT}" y1="{mid}" x2="{:.1}" y2="{mid}" stroke="#ccc"/><text x="{:.1}" y="{:.1}" text-anchor="end">buys</text><text x="{:.1}" y="{:.1}" text-anchor="end">sells</text><text x="{LEFT}" y="{:.1}" font-weight="bold">all orders ({})</text>"##,
        W - LEFT - RIGHT,
        W - RIGHT,
        LEFT - 4.0,
        mid - 20.0,
        LEFT - 4.0,
        mid + 28.0,
        LANE_TOP - 8.0,
        j.orders.len()
    );
    if j.orders.len() <= MAX_MARKS {
        for (o, v) in &j.orders {
            let flagged = v.is_some_and(|v| v.flagged);
            let x = sc.x(o.created_at);
            let (y1, y2) = match o.side {
                Side::Buy => (mid - 4.0, mid - 40.0),
                Side::Sell => (mid + 4.0, mid + 40.0),
            };
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}" stroke="{}" stroke-width="{}"><title>{}</title></line>"##,
                if flagged { "#d32f2f" } else { "#9e9e9e" },
                if flagged { 2 } else { 1 },
                html(&mark_title(o, flagged))
            );
        }
    } else {
        // Histogram per pixel column: counts of buys/sells, flagged and not.
        let cols = (W - LEFT - RIGHT) as usize;
        let mut bins = vec![[0usize; 4]; cols + 1];
        for (o, v) in &j.orders {
            let col = ((sc.x(o.created_at) - LEFT).max(0.0) as usize).min(cols);
            let k = match (o.side, v.is_some_and(|v| v.flagged)) {
                (Side::Buy, false) => 0,
                (Side::Buy, true) => 1,
                (Side::Sell, false) => 2,
                (Side::Sell, true) => 3,
            };
            bins[col][k] += 1;
        }
        let max = bins
            .iter()
            .flat_map(|b| b.iter())
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        for (i, b) in bins.iter().enumerate() {
            let x = LEFT + i as f64;
            for (k, color, dir) in [
                (0, "#9e9e9e", -1.0),
                (1, "#d32f2f", -1.0),
                (2, "#9e9e9e", 1.0),
                (3, "#d32f2f", 1.0),
            ] {
                if b[k] == 0 {
                    continue;
                }
                let len = 4.0 + (b[k] as f64 / max) * 40.0;
                let _ = write!(
                    s,
                    r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}"/>"##,
                    mid + dir * 4.0,
                    mid + dir * len
                );
            }
        }
    }

    // Unauthorized withdrawals, between the panels.
    let withdrawals = flagged_withdrawals(j);
    if !withdrawals.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#7b1fa2">withdrawals</text>"##,
            LEFT - 4.0,
            W_ROW + 4.0
        );
    }
    for (at, title) in &withdrawals {
        withdrawal_mark(&mut s, sc.x(*at), W_ROW, title);
    }

    // Revocation: the line, its label in the strip above the price panel.
    if let Some(at) = revoked {
        let x = sc.x(at);
        let label = format!(
            "key revoked (observed) {}",
            local_label(j, at, "%m-%d %H:%M:%S")
        );
        let (lx, anchor) = strip_label(x, text_width(&label), text_width(&price_title));
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#000" stroke-dasharray="4 3"/><text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
            PRICE_TOP - 4.0,
            LANE_TOP + LANE_H,
            PRICE_TOP - 8.0,
            html(&label)
        );
    }

    // Time axis: five ticks, in the exchange's local time.
    let axis_y = LANE_TOP + LANE_H + 16.0;
    // Ticks over the data's extent, not the padding (a tick past the run's end confuses).
    for i in 0..5 {
        let t = (t0 + pad) + ((t1 - pad) - (t0 + pad)) * i / 4;
        let x = sc.x(t);
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{axis_y:.1}" text-anchor="{anchor}">{}</text>"##,
            LANE_TOP + LANE_H,
            LANE_TOP + LANE_H + 4.0,
            html(&local_label(j, t, "%m-%d %H:%M"))
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{axis_y:.1}" text-anchor="end" fill="#555">{}</text>"##,
        LEFT - 4.0,
        html(&j.local_zone())
    );
    // Legend.
    let ly = H - 12.0;
    let _ = write!(
        s,
        r##"<g><rect x="{:.1}" y="{:.1}" width="12" height="9" fill="none" stroke="#e65100" stroke-width="1.5"/><text x="{:.1}" y="{ly:.1}">zoomed below</text><path d="M{:.1} {:.1} l5 5 l-5 5 l-5 -5 Z" fill="#7b1fa2"/><text x="{:.1}" y="{ly:.1}">unauthorized withdrawal</text></g>"##,
        LEFT + 470.0,
        ly - 9.0,
        LEFT + 486.0,
        LEFT + 590.0,
        ly - 9.0,
        LEFT + 600.0
    );
    let _ = write!(
        s,
        r##"<g><circle cx="{LEFT}" cy="{:.1}" r="4" fill="#d32f2f"/><text x="{:.1}" y="{ly:.1}">flagged order</text><circle cx="{:.1}" cy="{:.1}" r="3" fill="#777"/><text x="{:.1}" y="{ly:.1}">other order</text><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#1f5fbf" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">candle close</text><rect x="{:.1}" y="{:.1}" width="12" height="8" fill="#fde2e1"/><text x="{:.1}" y="{ly:.1}">suspicious window</text></g>"##,
        ly - 4.0,
        LEFT + 8.0,
        LEFT + 110.0,
        ly - 4.0,
        LEFT + 118.0,
        LEFT + 210.0,
        ly - 4.0,
        LEFT + 230.0,
        ly - 4.0,
        LEFT + 236.0,
        LEFT + 330.0,
        ly - 10.0,
        LEFT + 346.0
    );
    if let Some(span) = zoom {
        zoom_panel(
            &mut s,
            facts,
            j,
            market.as_deref(),
            &all_candles,
            &withdrawals,
            span,
        );
    }
    s.push_str("</svg>");

    let first = j.orders.iter().map(|(o, _)| o.created_at).min();
    let last = j.orders.iter().map(|(o, _)| o.created_at).max();
    let caption = format!(
        "{} orders{}; {} flagged{}{}{}",
        j.orders.len(),
        match (first, last) {
            (Some(a), Some(b)) => format!(" from {} to {}", ts(a), ts(b)),
            _ => String::new(),
        },
        j.flagged().count(),
        match &market {
            Some(m) => format!("; price line: {}", clean(m)),
            None => String::new(),
        },
        match revoked {
            Some(at) => format!("; key observed revoked at {}", ts(at)),
            None => String::new(),
        },
        match zoom {
            Some((a, b)) => format!("; zoomed figure: {} to {}", ts(a), ts(b)),
            None => String::new(),
        }
    );
    (s, caption)
}

fn format_price(p: f64) -> String {
    if p >= 100.0 {
        format!("{p:.0}")
    } else if p >= 1.0 {
        format!("{p:.2}")
    } else {
        format!("{p:.6}")
    }
}

fn mark_title(o: &Order, flagged: bool) -> String {
    clean(&format!(
        "{}{} {} {} {} at {}",
        if flagged { "FLAGGED " } else { "" },
        o.market,
        o.side.as_str(),
        o.native_type,
        o.id,
        ts(o.created_at)
    ))
}

/// The span of the zoomed figure: from the reference-price window's start (when it lies within
/// [`Z_MAX_LEAD_HOURS`] before the first flagged order; else [`Z_BEFORE_MIN`] minutes before
/// it) to the last flagged order, the end of the suspicious window or the revocation (when it
/// came within [`Z_MAX_LEAD_HOURS`] of the last flagged order), plus [`Z_MARGIN_AFTER_MIN`].
/// `None` when nothing is flagged and there is no suspicious window.
fn zoom_span(facts: &RunFacts, j: &Joined<'_>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let mut times: Vec<DateTime<Utc>> = j.flagged().map(|(o, _)| o.created_at).collect();
    if let Some(w) = j.result.suspicious_window {
        times.push(w.from);
        times.push(w.to);
    }
    let first = *times.iter().min()?;
    let mut last = *times.iter().max()?;
    let lead = Duration::hours(Z_MAX_LEAD_HOURS);
    if let Some(r) = facts.revocation.revoked_at() {
        if r >= last && r - last <= lead {
            last = r;
        }
    }
    let start = match facts.reference_window {
        Some(w) if w.from <= first && first - w.from <= lead => w.from,
        _ => first - Duration::minutes(Z_BEFORE_MIN),
    };
    Some((start, last + Duration::minutes(Z_MARGIN_AFTER_MIN)))
}

/// The interval of a candle series: the smallest gap between two consecutive starts.
fn candle_interval(candles: &[&crate::exchange::Candle]) -> Option<Duration> {
    candles
        .windows(2)
        .map(|w| w[1].start - w[0].start)
        .filter(|d| *d > Duration::zero())
        .min()
}

/// Human words for a duration of whole minutes (`1 min`, `15 min`, `1 h`, `1 day`).
fn interval_words(d: Duration) -> String {
    let m = d.num_minutes();
    if m >= 1440 && m % 1440 == 0 {
        format!("{} day", m / 1440)
    } else if m >= 60 && m % 60 == 0 {
        format!("{} h", m / 60)
    } else if m >= 1 {
        format!("{m} min")
    } else {
        format!("{} s", d.num_seconds())
    }
}

/// A tick step (minutes) giving at most eight ticks over `span`.
fn tick_step(span: Duration) -> Duration {
    let minutes = span.num_minutes().max(1);
    for step in [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440] {
        if minutes / step <= 8 {
            return Duration::minutes(step);
        }
    }
    Duration::days(((minutes / 1440) / 8).max(1) + 1)
}

/// The zoomed figure: the pumped market's price around the attack and every order in the span.
fn zoom_panel(
    s: &mut String,
    facts: &RunFacts,
    j: &Joined<'_>,
    market: Option<&str>,
    candles: &[&crate::exchange::Candle],
    withdrawals: &[(DateTime<Utc>, String)],
    (za, zb): (DateTime<Utc>, DateTime<Utc>),
) {
    let sc = Scale {
        t0: za,
        span_ms: (zb - za).num_milliseconds().max(1) as f64,
    };
    let in_span = |t: DateTime<Utc>| t >= za && t <= zb;
    let right = W - RIGHT;
    let _ = write!(s, r##"<g id="tl-zoom">"##);
    let off = j.input.local_utc_offset_secs;
    let local_day = |t: DateTime<Utc>| t.with_timezone(&crate::time::offset(off)).date_naive();
    let same_day = local_day(za) == local_day(zb);
    let zone = j.local_zone();
    let span_text = if same_day {
        format!(
            "{} {}–{} {zone}",
            local_label(j, za, "%Y-%m-%d"),
            local_label(j, za, "%H:%M"),
            local_label(j, zb, "%H:%M")
        )
    } else {
        format!(
            "{} – {} {zone}",
            local_label(j, za, "%Y-%m-%d %H:%M"),
            local_label(j, zb, "%Y-%m-%d %H:%M")
        )
    };
    let _ = write!(
        s,
        r##"<line x1="0" y1="{:.1}" x2="{W}" y2="{:.1}" stroke="#ccc"/><text x="{LEFT}" y="{:.1}" font-weight="bold" font-size="13">{}</text>"##,
        Z_TOP - 14.0,
        Z_TOP - 14.0,
        Z_TOP + 6.0,
        html(&format!(
            "Zoom on the attack: {}{}",
            span_text,
            match market {
                Some(m) => format!(" — {} price and every order", clean(m)),
                None => " — every order".into(),
            }
        ))
    );

    // Candles overlapping the span, and their interval.
    let interval = candle_interval(candles).unwrap_or(Duration::hours(1));
    let zc: Vec<&&crate::exchange::Candle> = candles
        .iter()
        .filter(|c| c.start + interval > za && c.start < zb)
        .collect();
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" fill="#555">{}</text>"##,
        Z_TOP + 22.0,
        html(&if zc.is_empty() {
            "dots: the account's fills at their own prices (no candles in this span); green band: reference-price window".to_string()
        } else {
            format!(
                "dots: the account's fills at their own prices; blue outlines: {} candles (high–low, bar = close), coarser than the attack; green band: reference-price window",
                interval_words(interval)
            )
        })
    );

    // Reference window and suspicious window bands.
    let clamp = |t: DateTime<Utc>| sc.x(t.clamp(za, zb));
    if let Some(w) = facts.reference_window {
        if w.to > za && w.from < zb {
            let (a, b) = (clamp(w.from), clamp(w.to));
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="{Z_PRICE_TOP}" width="{:.1}" height="{Z_PRICE_H}" fill="#e8f5e9"><title>reference-price window {} → {}</title></rect>"##,
                (b - a).max(1.0),
                ts(w.from),
                ts(w.to)
            );
        }
    }
    if let Some(w) = j.result.suspicious_window {
        if w.to >= za && w.from <= zb {
            let (a, b) = (clamp(w.from), clamp(w.to));
            let _ = write!(
                s,
                r##"<rect x="{a:.1}" y="{Z_PRICE_TOP}" width="{:.1}" height="{:.1}" fill="#fde2e1" opacity="0.7"><title>suspicious window {} → {}</title></rect>"##,
                (b - a).max(2.0),
                Z_LANE_TOP + Z_LANE_H - Z_PRICE_TOP,
                ts(w.from),
                ts(w.to)
            );
        }
    }
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{Z_PRICE_TOP}" width="{:.1}" height="{Z_PRICE_H}" fill="none" stroke="#999"/>"##,
        W - LEFT - RIGHT
    );

    // What to plot in the price panel: the market's fills in the span, and its orders in the
    // span without a fill at their average (or limit) price.
    struct Point {
        at: DateTime<Utc>,
        price: Decimal,
        flagged: bool,
        filled: bool,
        side: Side,
        title: String,
    }
    let mut points: Vec<Point> = Vec::new();
    for (o, v) in &j.orders {
        if Some(o.market.as_str()) != market {
            continue;
        }
        let flagged = v.is_some_and(|v| v.flagged);
        let fills: Vec<_> = j
            .fills_by_order
            .get(o.id.as_str())
            .map(|f| f.iter().filter(|f| in_span(f.created_at)).collect())
            .unwrap_or_default();
        if !fills.is_empty() {
            for fl in fills {
                points.push(Point {
                    at: fl.created_at,
                    price: fl.price,
                    flagged,
                    filled: true,
                    side: o.side,
                    title: clean(&format!(
                        "{}fill of {} {} {}: {} × {} at {}",
                        if flagged { "FLAGGED " } else { "" },
                        o.market,
                        o.side.as_str(),
                        o.id,
                        fl.volume,
                        fl.price,
                        ts(fl.created_at)
                    )),
                });
            }
        } else if in_span(o.created_at) {
            if let Some(p) = order_price(o) {
                points.push(Point {
                    at: o.created_at,
                    price: p,
                    flagged,
                    filled: !o.executed_volume.is_zero(),
                    side: o.side,
                    title: mark_title(o, flagged),
                });
            }
        }
    }
    // Above MAX_MARKS points, only the flagged ones are drawn.
    if points.len() > MAX_MARKS {
        points.retain(|p| p.flagged);
        points.truncate(MAX_MARKS);
    }
    let reference = j
        .flagged()
        .find(|(o, v)| Some(o.market.as_str()) == market && v.reference_price.is_some())
        .and_then(|(_, v)| v.reference_price);

    let mut prices: Vec<f64> = zc.iter().flat_map(|c| [f(c.high), f(c.low)]).collect();
    prices.extend(points.iter().map(|p| f(p.price)));
    prices.extend(reference.map(f));
    if let (Some(lo), Some(hi)) = (
        prices.iter().cloned().reduce(f64::min),
        prices.iter().cloned().reduce(f64::max),
    ) {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo * 0.9, hi * 1.1 + 1e-9)
        };
        let py =
            |p: f64| Z_PRICE_TOP + Z_PRICE_H - (p - lo) / (hi - lo) * (Z_PRICE_H - 20.0) - 10.0;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 4.0,
            py(hi) + 4.0,
            html(&format_price(hi)),
            LEFT - 4.0,
            py(lo) + 4.0,
            html(&format_price(lo))
        );
        for c in &zc {
            let a = clamp(c.start);
            let b = clamp(c.start + interval);
            let (yh, yl, yc) = (py(f(c.high)), py(f(c.low)), py(f(c.close)));
            let _ = write!(
                s,
                r##"<g><title>{}</title><rect x="{a:.1}" y="{yh:.1}" width="{:.1}" height="{:.1}" fill="#1f5fbf" fill-opacity="0.08" stroke="#1f5fbf" stroke-width="0.8"/><line x1="{a:.1}" y1="{yc:.1}" x2="{b:.1}" y2="{yc:.1}" stroke="#1f5fbf" stroke-width="1.5" stroke-opacity="0.6"/></g>"##,
                html(&clean(&format!(
                    "{} candle from {}: open {} high {} low {} close {}",
                    c.market,
                    ts(c.start),
                    c.open,
                    c.high,
                    c.low,
                    c.close
                ))),
                (b - a).max(1.0),
                (yl - yh).max(1.0)
            );
        }
        if let Some(r) = reference {
            let y = py(f(r));
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#2e7d32" stroke-dasharray="6 3"><title>reference price {}</title></line><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#2e7d32">ref {}</text>"##,
                html(&r.normalize().to_string()),
                LEFT - 4.0,
                margin_label(y, py(hi), py(lo)),
                html(&format_price(f(r)))
            );
        }
        for p in &points {
            let (x, y) = (sc.x(p.at), py(f(p.price)));
            let color = if p.flagged { "#d32f2f" } else { "#616161" };
            let (fill, r) = match (p.filled, p.flagged) {
                (false, _) => ("#ffffff", 3.5),
                (true, true) => (color, 4.0),
                (true, false) => (color, 3.0),
            };
            let _ = if p.side == Side::Sell {
                write!(
                    s,
                    r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="{color}" stroke-width="1.2"><title>{}</title></rect>"##,
                    x - r,
                    y - r,
                    2.0 * r,
                    2.0 * r,
                    html(&p.title)
                )
            } else {
                write!(
                    s,
                    r##"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{fill}" stroke="{color}" stroke-width="1.2"><title>{}</title></circle>"##,
                    html(&p.title)
                )
            };
        }
        // The fact that matters: the highest price a flagged buy paid, against the reference.
        if let Some(top) = points
            .iter()
            .filter(|p| p.flagged && p.filled && p.side == Side::Buy)
            .max_by(|a, b| a.price.cmp(&b.price).then(b.at.cmp(&a.at)))
        {
            let pct = reference
                .filter(|r| !r.is_zero())
                .map(|r| {
                    format!(
                        " ({:+}% over the reference)",
                        ((top.price - r) / r * Decimal::ONE_HUNDRED).round_dp(0)
                    )
                })
                .unwrap_or_default();
            let (x, y) = (sc.x(top.at), py(f(top.price)));
            let _ = write!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="8" fill="none" stroke="#d32f2f" stroke-width="1.5"/><text x="{LEFT}" y="{:.1}" fill="#d32f2f" font-weight="bold">{}</text>"##,
                Z_TOP + 38.0,
                html(&format!(
                    "Circled: the highest price a flagged buy paid, {} at {}{pct}",
                    top.price.round_dp(8).normalize(),
                    local_label(j, top.at, "%H:%M:%S")
                ))
            );
        }
    } else {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#777">no price data for this market in this span</text>"##,
            LEFT + 10.0,
            Z_PRICE_TOP + 20.0
        );
    }
    let zoom_title = match market {
        Some(m) => format!("{}: price (zoomed)", clean(m)),
        None => "price (zoomed)".into(),
    };
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"##,
        Z_PRICE_TOP - 6.0,
        html(&zoom_title)
    );

    // Every order of any market in the span.
    let orders: Vec<(&Order, bool)> = j
        .orders
        .iter()
        .filter(|(o, _)| in_span(o.created_at))
        .map(|(o, v)| (*o, v.is_some_and(|v| v.flagged)))
        .collect();
    let flagged_n = orders.iter().filter(|(_, f)| *f).count();
    let mid = Z_LANE_TOP + Z_LANE_H / 2.0;
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{Z_LANE_TOP}" width="{:.1}" height="{Z_LANE_H}" fill="none" stroke="#999"/><line x1="{LEFT}" y1="{mid}" x2="{right:.1}" y2="{mid}" stroke="#ccc"/><text x="{:.1}" y="{:.1}" text-anchor="end">buys</text><text x="{:.1}" y="{:.1}" text-anchor="end">sells</text><text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"##,
        W - LEFT - RIGHT,
        LEFT - 4.0,
        mid - 14.0,
        LEFT - 4.0,
        mid + 22.0,
        Z_LANE_TOP - 6.0,
        html(&format!(
            "orders of every market in this span: {} ({} flagged)",
            orders.len(),
            flagged_n
        ))
    );
    let mut drawn = 0;
    for (o, flagged) in &orders {
        if drawn >= MAX_MARKS || (orders.len() > MAX_MARKS && !flagged) {
            continue;
        }
        drawn += 1;
        let x = sc.x(o.created_at);
        let (y1, y2) = match o.side {
            Side::Buy => (mid - 3.0, mid - 32.0),
            Side::Sell => (mid + 3.0, mid + 32.0),
        };
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{y2:.1}" stroke="{}" stroke-width="{}"><title>{}</title></line>"##,
            if *flagged { "#d32f2f" } else { "#9e9e9e" },
            if *flagged { 2 } else { 1 },
            html(&mark_title(o, *flagged))
        );
    }

    // Unauthorized withdrawals on the lane's middle line.
    for (at, title) in withdrawals.iter().filter(|(t, _)| in_span(*t)) {
        withdrawal_mark(s, sc.x(*at), mid, title);
    }

    // Revocation: the line, its label in the strip above the price panel.
    if let Some(at) = facts.revocation.revoked_at().filter(|t| in_span(*t)) {
        let x = sc.x(at);
        let label = format!("key revoked (observed) {}", local_label(j, at, "%H:%M:%S"));
        let (lx, anchor) = strip_label(x, text_width(&label), text_width(&zoom_title));
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#000" stroke-dasharray="4 3"/><text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
            Z_PRICE_TOP - 4.0,
            Z_LANE_TOP + Z_LANE_H,
            Z_PRICE_TOP - 6.0,
            html(&label)
        );
    }

    // Time axis: round ticks, HH:MM (the date is in the title).
    let axis = Z_LANE_TOP + Z_LANE_H;
    let step = tick_step(zb - za);
    let step_s = step.num_seconds().max(60);
    // Round ticks in local time (a 3-hour step falls on local 00:00, 03:00, …).
    let off = i64::from(off);
    let mut t = DateTime::<Utc>::from_timestamp(
        (za.timestamp() + off).div_euclid(step_s) * step_s - off,
        0,
    )
    .unwrap_or(za);
    while t < za {
        t += step;
    }
    while t <= zb {
        let x = sc.x(t);
        let label = if same_day {
            local_label(j, t, "%H:%M")
        } else {
            local_label(j, t, "%m-%d %H:%M")
        };
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{axis:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            axis + 4.0,
            axis + 16.0,
            html(&label)
        );
        t += step;
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
        LEFT - 4.0,
        axis + 16.0,
        html(&zone)
    );

    // Legend.
    let ly = Z_H - 12.0;
    let _ = write!(
        s,
        r##"<g><circle cx="{LEFT}" cy="{:.1}" r="4" fill="#d32f2f"/><text x="{:.1}" y="{ly:.1}">flagged buy fill</text><rect x="{:.1}" y="{:.1}" width="8" height="8" fill="#d32f2f"/><text x="{:.1}" y="{ly:.1}">flagged sell</text><circle cx="{:.1}" cy="{:.1}" r="3" fill="#616161"/><text x="{:.1}" y="{ly:.1}">other order</text><circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#fff" stroke="#d32f2f"/><text x="{:.1}" y="{ly:.1}">not filled (limit price)</text><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#2e7d32" stroke-dasharray="6 3"/><text x="{:.1}" y="{ly:.1}">reference price</text><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000" stroke-dasharray="4 3"/><text x="{:.1}" y="{ly:.1}">key revoked</text></g>"##,
        ly - 4.0,
        LEFT + 8.0,
        LEFT + 106.0,
        ly - 8.0,
        LEFT + 118.0,
        LEFT + 196.0,
        ly - 4.0,
        LEFT + 204.0,
        LEFT + 286.0,
        ly - 4.0,
        LEFT + 294.0,
        LEFT + 434.0,
        ly - 4.0,
        LEFT + 458.0,
        ly - 4.0,
        LEFT + 464.0,
        LEFT + 566.0,
        ly - 8.0,
        LEFT + 566.0,
        ly,
        LEFT + 574.0
    );
    s.push_str("</g>");
}
