//! The incident-level report, `incident.md` and `incident.html`: one summary for the user,
//! which accounts are contained and verified, the loss per currency with a converted total
//! and the rates used, and the timeline across exchanges in one picture.
//!
//! Everything is read back from the bundles (their journals, `analysis.json`,
//! `unauthorized_trades.csv`, `export/candles/`), so the report says what the evidence says,
//! also after a resume or an analyze. Rates come from the bundles' own reference candles: the
//! last close of a market that joins two loss currencies, directly or through an asset both
//! quote; when no bundle holds one, the report says there is no converted total.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::record::{AccountRecord, IncidentRecord};
use crate::report::sanitize::{html, md};

/// What the report knows of one account.
#[derive(Debug, Clone, Default)]
pub struct AccountView {
    pub label: String,
    pub exchange: String,
    pub key_masked: String,
    pub bundle: Option<String>,
    /// The run ended with every step done (its last `run_end` says ok).
    pub run_ok: bool,
    /// Open orders were cancelled (the cancel step ended ok), when.
    pub contained_at: Option<String>,
    /// The old key was observed deleted, when.
    pub revoked_at: Option<String>,
    /// The bundle verifies alone.
    pub verified: bool,
    pub loss: Option<(String, Decimal)>,
    /// Unauthorized fills: (UTC time, market, side, amount).
    pub trades: Vec<(String, String, String, String)>,
}

/// Reads one account's view from its bundle.
pub fn account_view(dir: &Path, a: &AccountRecord) -> AccountView {
    let mut v = AccountView {
        label: a.label.clone(),
        exchange: a.exchange.clone(),
        key_masked: a.key_masked.clone(),
        bundle: a.bundle.clone(),
        ..AccountView::default()
    };
    let Some(b) = a.bundle.as_ref().map(|b| dir.join(b)) else {
        return v;
    };
    if let Ok(text) = std::fs::read_to_string(b.join("journal.jsonl")) {
        for line in text.lines() {
            let Ok(e) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let ts = e["ts"].as_str().unwrap_or_default().to_string();
            let d = &e["data"];
            match e["event"].as_str() {
                Some("step_end") => {
                    let ok = d["status"] == "ok" || d["status"] == "reused";
                    match d["uses"].as_str() {
                        Some("exchange.cancel_open_orders") if ok => v.contained_at = Some(ts),
                        Some("exchange.cancel_open_orders") => v.contained_at = None,
                        _ => {}
                    }
                }
                Some("run_end") => v.run_ok = d["ok"] == true,
                // A session that started (or resumed) and never ended is not complete.
                Some("run_start") | Some("resume") => v.run_ok = false,
                _ => {}
            }
        }
    }
    // Revoked only as the bundle's own report says it: the old key observed refused by the
    // last verification (an API call that answered OK, or a user who said "done", is no proof).
    if let Ok(facts) = crate::investigation::JournalFacts::read(&b) {
        if let crate::report::facts::Revocation::Revoked { observed_at, .. } = facts.revocation() {
            v.revoked_at = Some(crate::time::ts(observed_at));
        }
    }
    v.verified = crate::report::verify::verify(&b).is_ok_and(|r| r.ok);
    if let Ok(text) = std::fs::read_to_string(b.join("analysis.json")) {
        if let Ok(j) = serde_json::from_str::<Value>(&text) {
            let cur = j["loss"]["quote_currency"].as_str().map(str::to_string);
            let total = j["loss"]["total"]
                .as_str()
                .map(str::to_string)
                .or_else(|| j["loss"]["total"].as_f64().map(|f| f.to_string()))
                .and_then(|s| s.parse::<Decimal>().ok());
            if let (Some(c), Some(t)) = (cur, total) {
                v.loss = Some((c, t));
            }
        }
    }
    if let Ok(bytes) = std::fs::read(b.join("unauthorized_trades.csv")) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut r = csv::Reader::from_reader(bytes);
        if let Ok(h) = r.headers().cloned() {
            let col = |n: &str| h.iter().position(|x| x == n);
            let (t, m, s, am) = (
                col("created_at_utc"),
                col("market"),
                col("side"),
                col("amount"),
            );
            for rec in r.records().flatten() {
                let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
                v.trades.push((get(t), get(m), get(s), get(am)));
            }
        }
    }
    v
}

/// The last close of every market in the bundles' reference candles: (base, quote) → price,
/// with the file it came from.
fn rates(dir: &Path, views: &[AccountView]) -> BTreeMap<(String, String), (Decimal, String)> {
    let mut out = BTreeMap::new();
    for v in views {
        let Some(b) = &v.bundle else { continue };
        let Ok(rd) = std::fs::read_dir(dir.join(b).join("export").join("candles")) else {
            continue;
        };
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Some(list) = std::fs::read(&f)
                .ok()
                .and_then(|t| serde_json::from_slice::<Vec<Value>>(&t).ok())
            else {
                continue;
            };
            let last = list
                .iter()
                .filter_map(|c| {
                    let start: DateTime<Utc> = c["start"].as_str()?.parse().ok()?;
                    let close: Decimal = match &c["close"] {
                        Value::String(s) => s.parse().ok()?,
                        Value::Number(n) => n.to_string().parse().ok()?,
                        _ => return None,
                    };
                    let base = c["market"]["base"].as_str()?.to_ascii_uppercase();
                    let quote = c["market"]["quote"].as_str()?.to_ascii_uppercase();
                    Some((start, close, base, quote))
                })
                .max_by_key(|c| c.0);
            if let Some((_, close, base, quote)) = last {
                if close > Decimal::ZERO {
                    let from = format!(
                        "{b}/export/candles/{}",
                        f.file_name().unwrap_or_default().to_string_lossy()
                    );
                    out.entry((base, quote)).or_insert((close, from));
                }
            }
        }
    }
    out
}

/// The rate that turns one unit of `from` into `to`, and how it was found.
fn rate(
    from: &str,
    to: &str,
    table: &BTreeMap<(String, String), (Decimal, String)>,
) -> Option<(Decimal, String)> {
    if from == to {
        return Some((Decimal::ONE, String::new()));
    }
    if let Some((p, src)) = table.get(&(from.to_string(), to.to_string())) {
        return Some((*p, format!("1 {from} = {p} {to} ({src})")));
    }
    if let Some((p, src)) = table.get(&(to.to_string(), from.to_string())) {
        let r = Decimal::ONE.checked_div(*p)?;
        return Some((r, format!("1 {to} = {p} {from} ({src})")));
    }
    // Through an asset both currencies quote: price in `to` / price in `from`.
    for ((base, quote), (p_from, s_from)) in table {
        if quote != from {
            continue;
        }
        if let Some((p_to, s_to)) = table.get(&(base.clone(), to.to_string())) {
            let r = p_to.checked_div(*p_from)?;
            return Some((
                r,
                format!("1 {base} = {p_from} {from} ({s_from}) and {p_to} {to} ({s_to})"),
            ));
        }
    }
    None
}

/// The loss part of the report: per currency, the converted total and the rates used.
pub struct LossView {
    pub per_currency: BTreeMap<String, Decimal>,
    /// (currency, total) when every currency could be converted into it.
    pub converted: Option<(String, Decimal)>,
    pub rates_used: Vec<String>,
    pub unconverted: Vec<String>,
}

fn loss_view(dir: &Path, views: &[AccountView]) -> LossView {
    let mut per_currency: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (c, t) in views.iter().filter_map(|v| v.loss.clone()) {
        *per_currency.entry(c.clone()).or_default() += t;
        *count.entry(c).or_default() += 1;
    }
    // Into the currency most accounts lose in (the first by name on a tie).
    let target = count
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| c.clone());
    let table = rates(dir, views);
    let mut lv = LossView {
        per_currency: per_currency.clone(),
        converted: None,
        rates_used: vec![],
        unconverted: vec![],
    };
    let Some(target) = target else { return lv };
    let mut total = Decimal::ZERO;
    for (c, t) in &per_currency {
        match rate(c, &target, &table) {
            Some((r, how)) => {
                total += t * r;
                if !how.is_empty() {
                    lv.rates_used.push(how);
                }
            }
            None => lv.unconverted.push(c.clone()),
        }
    }
    if lv.unconverted.is_empty() {
        lv.converted = Some((target, total.round_dp(2).normalize()));
    }
    lv
}

/// Writes `incident.md` and `incident.html`; returns the summary lines for the terminal.
pub fn write(dir: &Path, record: &IncidentRecord) -> std::io::Result<Vec<String>> {
    let views: Vec<AccountView> = record
        .accounts
        .iter()
        .map(|a| account_view(dir, a))
        .collect();
    let loss = loss_view(dir, &views);
    let summary = summary_lines(&views, &loss);
    crate::fsutil::write_private(
        &dir.join("incident.md"),
        markdown(record, &views, &loss, &summary).as_bytes(),
    )?;
    crate::fsutil::write_private(
        &dir.join("incident.html"),
        page(record, &views, &loss, &summary).as_bytes(),
    )?;
    Ok(summary)
}

fn summary_lines(views: &[AccountView], loss: &LossView) -> Vec<String> {
    let contained = views.iter().filter(|v| v.contained_at.is_some()).count();
    let revoked = views.iter().filter(|v| v.revoked_at.is_some()).count();
    let mut out = vec![format!(
        "summary:   {} accounts on {}; {contained} contained (open orders cancelled), {revoked} with the old key observed deleted",
        views.len(),
        {
            let mut ex: Vec<&str> = views.iter().map(|v| v.exchange.as_str()).collect();
            ex.sort();
            ex.dedup();
            ex.join(", ")
        }
    )];
    let per: Vec<String> = loss
        .per_currency
        .iter()
        .map(|(c, t)| format!("{} {c}", t.round_dp(2).normalize()))
        .collect();
    out.push(format!(
        "loss:      {}{}",
        if per.is_empty() {
            "none estimated".to_string()
        } else {
            per.join(" + ")
        },
        match &loss.converted {
            Some((c, t)) if loss.per_currency.len() > 1 =>
                format!(" ≈ {} {c} in total (rates in the report)", t),
            _ if !loss.unconverted.is_empty() => format!(
                "; no converted total: no rate for {} in the bundles",
                loss.unconverted.join(", ")
            ),
            _ => String::new(),
        }
    ));
    for v in views
        .iter()
        .filter(|v| v.contained_at.is_none() || !v.run_ok)
    {
        out.push(format!(
            "attention: {} ({}): {}",
            v.label,
            v.exchange,
            if v.bundle.is_none() {
                "no bundle: the run did not start"
            } else if v.contained_at.is_none() {
                "NOT contained: open orders were not cancelled; resume it"
            } else {
                "incomplete: resume it"
            }
        ));
    }
    out
}

fn state_of(v: &AccountView) -> &'static str {
    match (v.contained_at.is_some(), v.run_ok) {
        (true, true) => "contained, complete",
        (true, false) => "contained, incomplete",
        (false, _) => "NOT contained",
    }
}

fn markdown(
    record: &IncidentRecord,
    views: &[AccountView],
    loss: &LossView,
    summary: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Incident report ({} accounts)\n", views.len());
    let _ = writeln!(
        s,
        "Started {} (UTC){}.\n",
        record.started_at,
        if record.dry_run { ", dry run" } else { "" }
    );
    let _ = writeln!(s, "## Summary\n");
    for l in summary {
        let _ = writeln!(s, "- {}", md(l));
    }
    let _ = writeln!(s, "\n## Accounts\n");
    let _ = writeln!(s, "| account | exchange | key | state | contained at (UTC) | key deleted (observed, UTC) | bundle verifies | loss | bundle |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for v in views {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            md(&v.label),
            md(&v.exchange),
            md(&v.key_masked),
            state_of(v),
            md(v.contained_at.as_deref().unwrap_or("—")),
            md(v.revoked_at.as_deref().unwrap_or("—")),
            if v.verified { "yes" } else { "NO" },
            v.loss
                .as_ref()
                .map(|(c, t)| format!("{} {}", t.normalize(), md(c)))
                .unwrap_or("—".into()),
            md(v.bundle.as_deref().unwrap_or("—")),
        );
    }
    let _ = writeln!(s, "\n## Loss\n");
    for (c, t) in &loss.per_currency {
        let _ = writeln!(s, "- {} {}", t.normalize(), md(c));
    }
    match &loss.converted {
        Some((c, t)) => {
            let _ = writeln!(s, "\nConverted total: **{} {}**.", t, md(c));
        }
        None if !loss.unconverted.is_empty() => {
            let _ = writeln!(
                s,
                "\nNo converted total: the bundles hold no rate for {}.",
                md(&loss.unconverted.join(", "))
            );
        }
        None => {}
    }
    if !loss.rates_used.is_empty() {
        let _ = writeln!(s, "\nRates used (source: the last hourly close in the bundles' own reference candles, `export/candles/`):\n");
        for r in &loss.rates_used {
            let _ = writeln!(s, "- {}", md(r));
        }
    }
    let _ = writeln!(s, "\n## Timeline (UTC)\n");
    for (t, who, what) in timeline(views) {
        let _ = writeln!(s, "- {} [{}] {}", md(&t), md(&who), md(&what));
    }
    let _ = writeln!(s, "\n## Verify\n\n`respond evidence verify INCIDENT_DIR` checks every bundle and `incident-manifest.json`; each bundle also verifies alone with `respond evidence verify BUNDLE`.");
    s
}

/// Every dated event of every account, in time order: (UTC time, account, what).
fn timeline(views: &[AccountView]) -> Vec<(String, String, String)> {
    let mut ev = Vec::new();
    for v in views {
        for (t, m, side, amount) in &v.trades {
            ev.push((
                t.clone(),
                v.label.clone(),
                format!("unauthorized {side} {m} {amount}"),
            ));
        }
        if let Some(t) = &v.contained_at {
            ev.push((t.clone(), v.label.clone(), "open orders cancelled".into()));
        }
        if let Some(t) = &v.revoked_at {
            ev.push((
                t.clone(),
                v.label.clone(),
                "old key observed deleted".into(),
            ));
        }
    }
    ev.sort();
    ev
}

/// The timeline as one SVG: a row per account, unauthorized fills red, containment green,
/// the key's deletion black.
fn svg(views: &[AccountView]) -> String {
    let parse = |t: &str| t.parse::<DateTime<Utc>>().ok();
    let ev = timeline(views);
    let times: Vec<DateTime<Utc>> = ev.iter().filter_map(|e| parse(&e.0)).collect();
    let (Some(t0), Some(t1)) = (times.iter().min(), times.iter().max()) else {
        return "<p>No dated events.</p>".into();
    };
    let span = (*t1 - *t0).num_milliseconds().max(1) as f64;
    let (w, left, row) = (900.0, 160.0, 28.0);
    let h = 40.0 + row * views.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="timeline across exchanges">"#
    );
    for (i, v) in views.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let _ = write!(
            s,
            r##"<text x="4" y="{}" font-size="12">{} ({})</text><line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ccc"/>"##,
            y + 4.0,
            html(&v.label),
            html(&v.exchange),
            w - 10.0
        );
    }
    for (t, who, what) in &ev {
        let (Some(t), Some(i)) = (parse(t), views.iter().position(|v| &v.label == who)) else {
            continue;
        };
        let x = left + (w - left - 20.0) * ((t - *t0).num_milliseconds() as f64 / span);
        let y = 20.0 + row * i as f64;
        let colour = if what.starts_with("unauthorized") {
            "#c00"
        } else if what.starts_with("open orders") {
            "#080"
        } else {
            "#000"
        };
        let _ = write!(
            s,
            r#"<circle cx="{x:.1}" cy="{y}" r="4" fill="{colour}"><title>{} {}</title></circle>"#,
            html(&t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()),
            html(what)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{left}" y="{}" font-size="11">{} UTC</text><text x="{}" y="{}" font-size="11" text-anchor="end">{} UTC</text></svg>"#,
        h - 4.0,
        t0.format("%Y-%m-%d %H:%M:%S"),
        w - 10.0,
        h - 4.0,
        t1.format("%Y-%m-%d %H:%M:%S")
    );
    s
}

fn page(
    record: &IncidentRecord,
    views: &[AccountView],
    loss: &LossView,
    summary: &[String],
) -> String {
    let mut s = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident report</title>\
         <style>body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:collapse}\
         td,th{border:1px solid #999;padding:2px 6px;font-size:13px}.bad{color:#c00;font-weight:bold}\
         @media print{@page{size:A4}body{max-width:none}svg{max-width:100%}}</style></head><body>",
    );
    let _ = write!(
        s,
        "<h1>Incident report ({} accounts)</h1><p>Started {} (UTC){}.</p><h2>Summary</h2><ul>",
        views.len(),
        html(&record.started_at),
        if record.dry_run { ", dry run" } else { "" }
    );
    for l in summary {
        let _ = write!(s, "<li>{}</li>", html(l));
    }
    s.push_str("</ul><h2>Accounts</h2><table><tr><th>account</th><th>exchange</th><th>key</th><th>state</th><th>contained at (UTC)</th><th>key deleted (observed, UTC)</th><th>bundle verifies</th><th>loss</th><th>bundle</th></tr>");
    for v in views {
        let bad = v.contained_at.is_none() || !v.verified;
        let _ = write!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if bad { " class=\"bad\"" } else { "" },
            html(&v.label),
            html(&v.exchange),
            html(&v.key_masked),
            state_of(v),
            html(v.contained_at.as_deref().unwrap_or("—")),
            html(v.revoked_at.as_deref().unwrap_or("—")),
            if v.verified { "yes" } else { "NO" },
            v.loss.as_ref().map(|(c, t)| format!("{} {}", t.normalize(), html(c))).unwrap_or("—".into()),
            html(v.bundle.as_deref().unwrap_or("—")),
        );
    }
    s.push_str("</table><h2>Loss</h2><ul>");
    for (c, t) in &loss.per_currency {
        let _ = write!(s, "<li>{} {}</li>", t.normalize(), html(c));
    }
    s.push_str("</ul>");
    match &loss.converted {
        Some((c, t)) => {
            let _ = write!(s, "<p>Converted total: <b>{} {}</b>.</p>", t, html(c));
        }
        None if !loss.unconverted.is_empty() => {
            let _ = write!(
                s,
                "<p>No converted total: the bundles hold no rate for {}.</p>",
                html(&loss.unconverted.join(", "))
            );
        }
        None => {}
    }
    if !loss.rates_used.is_empty() {
        s.push_str("<p>Rates used (source: the last hourly close in the bundles' own reference candles, <code>export/candles/</code>):</p><ul>");
        for r in &loss.rates_used {
            let _ = write!(s, "<li>{}</li>", html(r));
        }
        s.push_str("</ul>");
    }
    s.push_str("<h2>Timeline across exchanges</h2>");
    s.push_str(&svg(views));
    s.push_str("<p>Red: unauthorized fills; green: open orders cancelled; black: the old key observed deleted. Times in UTC.</p><ul>");
    for (t, who, what) in timeline(views) {
        let _ = write!(s, "<li>{} [{}] {}</li>", html(&t), html(&who), html(&what));
    }
    s.push_str("</ul><h2>Verify</h2><p><code>respond evidence verify INCIDENT_DIR</code> checks every bundle and <code>incident-manifest.json</code>; each bundle also verifies alone with <code>respond evidence verify BUNDLE</code>.</p></body></html>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::accounts::{CredSource, Source};
    use serde_json::json;

    /// A bundle whose journal holds `events` (the chain is not what this view reads).
    fn view_of(events: &[(&str, Value)]) -> AccountView {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path().join("a").join("bundle");
        std::fs::create_dir_all(&b).unwrap();
        let mut text = String::new();
        for (i, (event, data)) in events.iter().enumerate() {
            let ts = format!("2026-11-30T00:00:{:02}Z", i);
            let e = json!({"seq": i, "ts": ts, "event": event, "data": data, "prev": "", "hash": format!("h{i}")});
            text.push_str(&e.to_string());
            text.push('\n');
        }
        std::fs::write(b.join("journal.jsonl"), text).unwrap();
        let a = AccountRecord {
            label: "a".into(),
            exchange: "example".into(),
            key_masked: "k".into(),
            scopes: vec![],
            source: Source {
                credentials: CredSource::Env("X".into()),
                readonly: None,
                master: None,
                sub_account: None,
                api_url: None,
            },
            bundle: Some("a/bundle".into()),
        };
        account_view(tmp.path(), &a)
    }

    fn step(uses: &str, status: &str, outputs: Value) -> (&'static str, Value) {
        (
            "step_end",
            json!({"step": "s", "uses": uses, "status": status, "outputs": outputs}),
        )
    }

    #[test]
    fn revoked_only_when_the_old_key_was_observed_refused() {
        // The user said "done", and the API call answered OK: neither is an observation.
        let said = view_of(&[
            ("run_start", json!({})),
            step(
                "exchange.revoke_key",
                "ok",
                json!({"mode": "manual", "confirmed": true, "confirmed_by": "user"}),
            ),
            step(
                "exchange.verify_key_revoked",
                "failed",
                json!({"revoked": false}),
            ),
            ("run_end", json!({"ok": false})),
        ]);
        assert_eq!(said.revoked_at, None);
        let seen = view_of(&[
            ("run_start", json!({})),
            step(
                "exchange.verify_key_revoked",
                "ok",
                json!({"revoked": true, "observed_at": "2026-11-30T00:00:05.000Z", "polls": 3}),
            ),
            ("run_end", json!({"ok": true})),
        ]);
        assert_eq!(seen.revoked_at.as_deref(), Some("2026-11-30T00:00:05.000Z"));
        assert!(seen.run_ok);
    }

    #[test]
    fn a_resume_that_never_ended_leaves_the_run_incomplete() {
        let v = view_of(&[
            ("run_start", json!({})),
            ("run_end", json!({"ok": true})),
            ("resume", json!({})),
        ]);
        assert!(!v.run_ok);
    }
}
