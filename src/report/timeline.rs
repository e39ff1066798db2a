//! The timeline picture of `report.html`: an inline SVG built here, in Rust.
//!
//! Upper panel: the price line of the most-affected market (largest estimated loss among
//! flagged orders, from its candles' closes), its reference price, and that market's orders at
//! their execution prices. Lower panel: every order over time (buys above the axis, sells
//! below), flagged ones in red. A shaded band marks the suspicious window and a dashed line the
//! moment the key was observed revoked. Above 2,000 orders the lower panel becomes a per-pixel
//! histogram so the file stays small. Every text is escaped with [`sanitize::html`];
//! coordinates are formatted with one decimal, so the output is deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::engine::journal::ts;
use crate::exchange::{Order, Side};
use crate::report::facts::RunFacts;
use crate::report::sanitize::{clean, html};
use crate::report::view::{order_price, Joined};

const W: f64 = 960.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const PRICE_TOP: f64 = 30.0;
const PRICE_H: f64 = 180.0;
const LANE_TOP: f64 = 250.0;
const LANE_H: f64 = 100.0;
const H: f64 = 400.0;
const MAX_MARKS: usize = 2000;

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
    let market_orders: Vec<&Order> = j
        .orders
        .iter()
        .map(|(o, _)| *o)
        .filter(|o| Some(o.market.as_str()) == market.as_deref())
        .collect();
    let revoked = facts.revocation.revoked_at();

    // Time extent: orders, the market's candles, the revocation, the suspicious window.
    let mut times: Vec<DateTime<Utc>> = j.orders.iter().map(|(o, _)| o.created_at).collect();
    times.extend(candles.iter().map(|c| c.start));
    times.extend(revoked);
    if let Some(w) = j.result.suspicious_window {
        times.push(w.from);
        times.push(w.to);
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
    let sc = Scale {
        t0,
        span_ms: (t1 - t0).num_milliseconds().max(1) as f64,
    };

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" aria-labelledby="tl-title" font-family="sans-serif" font-size="11">"##
    );
    let title = match &market {
        Some(m) => format!("Orders over time (UTC); price line: {}", clean(m)),
        None => "Orders over time (UTC)".to_string(),
    };
    let _ = write!(s, r##"<title id="tl-title">{}</title>"##, html(&title));
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>"##
    );

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
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#2e7d32" stroke-dasharray="6 3"/><text x="{:.1}" y="{:.1}" fill="#2e7d32">reference {}</text>"##,
                W - RIGHT,
                LEFT + 4.0,
                y - 3.0,
                html(&r.to_string())
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
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"##,
        PRICE_TOP - 8.0,
        html(&match &market {
            Some(m) => format!("{}: price", clean(m)),
            None => "price".into(),
        })
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

    // Revocation.
    if let Some(at) = revoked {
        let x = sc.x(at);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{PRICE_TOP}" x2="{x:.1}" y2="{:.1}" stroke="#000" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" text-anchor="end">key revoked (observed) {}</text>"##,
            LANE_TOP + LANE_H,
            x - 3.0,
            PRICE_TOP + PRICE_H - 18.0,
            html(&ts(at))
        );
    }

    // Time axis: five ticks.
    let axis_y = LANE_TOP + LANE_H + 16.0;
    for i in 0..5 {
        let t = t0 + (t1 - t0) * i / 4;
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
            html(&t.format("%m-%d %H:%M:%SZ").to_string())
        );
    }
    // Legend.
    let ly = H - 12.0;
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
    s.push_str("</svg>");

    let caption = format!(
        "{} orders from {} to {}; {} flagged{}{}",
        j.orders.len(),
        ts(t0 + pad),
        ts(t1 - pad),
        j.flagged().count(),
        match &market {
            Some(m) => format!("; price line: {}", clean(m)),
            None => String::new(),
        },
        match revoked {
            Some(at) => format!("; key observed revoked at {}", ts(at)),
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
