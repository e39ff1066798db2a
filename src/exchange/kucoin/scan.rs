//! Which symbols to read history of. KuCoin keeps high-frequency orders and fills per symbol,
//! and a symbol nobody asks about stays silent, so completeness depends on this choice.
//!
//! `touched` (the default) reads every listed symbol whose base currency the account touched:
//! held now (`GET /api/v1/accounts`), deposited or withdrawn in the window, with open HF orders
//! (`GET /api/v1/hf/orders/active/symbols`, its symbols taken as they are), or named by the
//! run's own evidence (the bot log, orders this run saw). The pumped coin a thief bought with
//! the victim's USDT is held afterwards, so its symbols are read. `all` reads every listed
//! symbol; a list reads those symbols. The answer states every source and what it could not
//! see.

use std::collections::{BTreeMap, BTreeSet};

use super::wire::Markets;
use crate::exchange::{
    Error, MarketHint, MarketScan, MarketSelection, Result, ScanSource, ScannedMarket,
};

/// What the scan read, each source as it came back (`Err` holds why it could not be read):
/// currencies (balances, deposits, withdrawals) and symbols (open HF orders).
pub struct Inputs<'a> {
    pub balances: std::result::Result<Vec<String>, String>,
    pub deposits: std::result::Result<Vec<String>, String>,
    pub withdrawals: std::result::Result<Vec<String>, String>,
    pub active: std::result::Result<Vec<String>, String>,
    pub hints: &'a [MarketHint],
}

fn add(map: &mut BTreeMap<String, Vec<String>>, key: &str, reason: String) {
    let list = map.entry(key.to_ascii_uppercase()).or_default();
    if !list.contains(&reason) {
        list.push(reason);
    }
}

/// The symbols of `selection` over `markets` (KuCoin's list), with a reason for each.
pub fn choose(
    selection: &MarketSelection,
    markets: &Markets,
    inputs: Inputs<'_>,
) -> Result<MarketScan> {
    let listing = ScanSource {
        source: "KuCoin's market list".into(),
        call: Some("GET /api/v2/symbols".into()),
        read: !markets.is_empty(),
        detail: format!("{} symbols", markets.len()),
        found: Vec::new(),
    };
    match selection {
        MarketSelection::All => {
            return Ok(MarketScan {
                selection: selection.clone(),
                markets: markets
                    .values()
                    .map(|m| ScannedMarket {
                        market: m.market.clone(),
                        reasons: vec!["every listed symbol (--symbols all)".into()],
                    })
                    .collect(),
                sources: vec![listing],
                limits: Vec::new(),
            })
        }
        MarketSelection::Listed(list) => {
            let mut out = Vec::new();
            let mut unknown = Vec::new();
            for s in list {
                let sym = (super::DESCRIPTOR.parse_symbol)(s)
                    .map(|m| m.symbol.to_string())
                    .unwrap_or_else(|_| s.to_ascii_uppercase());
                match markets.get(&sym) {
                    Some(m) => out.push(ScannedMarket {
                        market: m.market.clone(),
                        reasons: vec!["named by --symbols".into()],
                    }),
                    None => unknown.push(sym),
                }
            }
            if !unknown.is_empty() {
                return Err(Error::Config(format!(
                    "not symbols KuCoin lists: {} (KuCoin writes them like BTC-USDT)",
                    unknown.join(", ")
                )));
            }
            out.sort_by(|a, b| a.market.symbol.cmp(&b.market.symbol));
            out.dedup_by(|a, b| a.market.symbol == b.market.symbol);
            return Ok(MarketScan {
                selection: selection.clone(),
                markets: out,
                sources: vec![listing],
                limits: Vec::new(),
            });
        }
        MarketSelection::Touched => {}
    }

    let mut assets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut direct: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut sources = vec![listing];
    let mut limits = Vec::new();
    for (name, what, call, res) in [
        (
            "balances now",
            "held now",
            "GET /api/v1/accounts",
            &inputs.balances,
        ),
        (
            "deposits in the window",
            "deposited in the window",
            "GET /api/v1/deposits",
            &inputs.deposits,
        ),
        (
            "withdrawals in the window",
            "withdrawn in the window",
            "GET /api/v1/withdrawals",
            &inputs.withdrawals,
        ),
    ] {
        match res {
            Ok(list) => {
                let found: BTreeSet<String> = list.iter().map(|c| c.to_ascii_uppercase()).collect();
                for c in &found {
                    add(&mut assets, c, format!("{c} {what} ({call})"));
                }
                sources.push(ScanSource {
                    source: name.into(),
                    call: Some(call.into()),
                    read: true,
                    detail: format!("{} currencies", found.len()),
                    found: found.into_iter().collect(),
                });
            }
            Err(e) => {
                sources.push(ScanSource {
                    source: name.into(),
                    call: Some(call.into()),
                    read: false,
                    detail: e.clone(),
                    found: Vec::new(),
                });
                limits.push(format!("the {name} could not be read ({e})"));
            }
        }
    }
    let active_call = "GET /api/v1/hf/orders/active/symbols";
    match &inputs.active {
        Ok(list) => {
            for s in list {
                add(
                    &mut direct,
                    s,
                    format!("{s} has open orders ({active_call})"),
                );
            }
            sources.push(ScanSource {
                source: "symbols with open high-frequency orders".into(),
                call: Some(active_call.into()),
                read: true,
                detail: format!("{} symbols", list.len()),
                found: list.clone(),
            });
        }
        Err(e) => {
            sources.push(ScanSource {
                source: "symbols with open high-frequency orders".into(),
                call: Some(active_call.into()),
                read: false,
                detail: e.clone(),
                found: Vec::new(),
            });
            limits.push(format!(
                "the symbols with open orders could not be read ({e})"
            ));
        }
    }
    let mut hinted = BTreeSet::new();
    for h in inputs.hints {
        hinted.insert(h.market.symbol.to_string());
        add(&mut direct, &h.market.symbol, h.source.clone());
        if !h.market.base.is_empty() {
            add(
                &mut assets,
                &h.market.base,
                format!("{} in {} ({})", h.market.base, h.market.symbol, h.source),
            );
        }
    }
    sources.push(ScanSource {
        source: "this run's evidence (bot logs, orders seen)".into(),
        call: None,
        read: true,
        detail: format!("{} markets", hinted.len()),
        found: hinted.into_iter().collect(),
    });
    limits.push("KuCoin keeps no daily balance snapshots: a coin bought and sold again within the window, never deposited or withdrawn, and named by neither the bot log nor an order of this run, is not seen; name its symbol with --symbols, or use --symbols all".into());

    let mut chosen: BTreeMap<String, ScannedMarket> = BTreeMap::new();
    for m in markets.values() {
        if let Some(reasons) = assets.get(m.market.base.as_str()) {
            chosen.insert(
                m.market.symbol.to_string(),
                ScannedMarket {
                    market: m.market.clone(),
                    reasons: reasons.clone(),
                },
            );
        }
    }
    // Symbols named directly, even when KuCoin no longer lists them.
    for (sym, reasons) in direct {
        let market = markets
            .get(&sym)
            .map(|m| m.market.clone())
            .or_else(|| (super::DESCRIPTOR.parse_symbol)(&sym).ok());
        let Some(market) = market else { continue };
        let entry = chosen
            .entry(market.symbol.to_string())
            .or_insert_with(|| ScannedMarket {
                market,
                reasons: Vec::new(),
            });
        for r in reasons {
            if !entry.reasons.contains(&r) {
                entry.reasons.push(r);
            }
        }
    }
    Ok(MarketScan {
        selection: selection.clone(),
        markets: chosen.into_values().collect(),
        sources,
        limits,
    })
}
