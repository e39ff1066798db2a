//! The orders of a run joined with their verdicts and fills, in a deterministic order (time,
//! then id): what every bundle writer reads, together with the run's exchange (its local zone
//! and how its currencies are written).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::analysis::{AnalysisInput, AnalysisResult, OrderVerdict, TransferVerdict};
use crate::exchange::{Descriptor, Fill, Order};
use crate::report::format::Money;

/// `t` in UTC to the second: `2026-11-29 20:46:00 UTC`.
pub fn utc_short(t: DateTime<Utc>) -> String {
    format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S"))
}

/// Orders with their verdicts and fills, in a deterministic order.
pub struct Joined<'a> {
    pub input: &'a AnalysisInput,
    pub result: &'a AnalysisResult,
    /// Every order, sorted by (created_at, id), with its verdict if analysis gave one.
    pub orders: Vec<(&'a Order, Option<&'a OrderVerdict>)>,
    /// Every fill, sorted by (created_at, id).
    pub fills: Vec<&'a Fill>,
    pub fills_by_order: BTreeMap<&'a str, Vec<&'a Fill>>,
    pub transfer_verdicts: BTreeMap<&'a str, &'a TransferVerdict>,
    flagged_ids: BTreeSet<&'a str>,
    /// Money in the run's exchange's currencies.
    pub money: Money,
    /// The run's exchange, when it is registered.
    pub exchange: Option<&'static Descriptor>,
}

impl<'a> Joined<'a> {
    pub fn new(input: &'a AnalysisInput, result: &'a AnalysisResult) -> Self {
        // Verdicts sit at their order's index: `analyze` gives one per order, or none at all
        // for a run that never reached analysis (`write_bundle` refuses anything else).
        let mut orders: Vec<(&Order, Option<&OrderVerdict>)> = input
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o, result.verdicts.get(i)))
            .collect();
        orders.sort_by(|a, b| (a.0.created_at, &a.0.id).cmp(&(b.0.created_at, &b.0.id)));
        let mut fills: Vec<&Fill> = input.fills.iter().collect();
        fills.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut fills_by_order: BTreeMap<&str, Vec<&Fill>> = BTreeMap::new();
        for f in &fills {
            fills_by_order
                .entry(f.order_id.as_str())
                .or_default()
                .push(f);
        }
        let mut transfer_verdicts = BTreeMap::new();
        for t in &result.transfers {
            transfer_verdicts.entry(t.transfer_id.as_str()).or_insert(t);
        }
        let flagged_ids = orders
            .iter()
            .filter(|(_, v)| v.is_some_and(|v| v.flagged))
            .map(|(o, _)| o.id.as_str())
            .collect();
        let exchange = crate::exchange::registry::get(&input.exchange);
        Joined {
            money: Money::of(&input.exchange),
            exchange,
            flagged_ids,
            input,
            result,
            orders,
            fills,
            fills_by_order,
            transfer_verdicts,
        }
    }

    /// Flagged orders with their verdicts, in time order.
    pub fn flagged(&self) -> impl Iterator<Item = (&'a Order, &'a OrderVerdict)> + '_ {
        self.orders
            .iter()
            .filter_map(|(o, v)| v.filter(|v| v.flagged).map(|v| (*o, v)))
    }

    /// The withdrawals analysis flagged (R13), in the order of the input.
    pub fn flagged_withdrawals(&self) -> impl Iterator<Item = &'a crate::exchange::Transfer> + '_ {
        self.input.withdrawals.iter().filter(|w| {
            self.transfer_verdicts
                .get(w.id.as_str())
                .is_some_and(|v| v.flagged)
        })
    }

    /// Orders left for a human to review (confidence `review`, not flagged), in time order.
    pub fn review(&self) -> impl Iterator<Item = (&'a Order, &'a OrderVerdict)> + '_ {
        self.orders.iter().filter_map(|(o, v)| {
            v.filter(|v| !v.flagged && v.confidence == crate::analysis::Confidence::Review)
                .map(|v| (*o, v))
        })
    }

    /// The fee of one fill of `order`: the fill's own, else the order's fee total shared over
    /// its fills by amount (`true` when shared this way).
    pub fn fill_fee(&self, order: &Order, fill: &Fill) -> Option<(rust_decimal::Decimal, bool)> {
        if let Some(fee) = fill.fee {
            return Some((fee, false));
        }
        let fills = self.fills_by_order.get(order.id.as_str())?;
        crate::report::format::fee_share(order.paid_fee, fill, fills).map(|f| (f, true))
    }

    pub fn order_flagged(&self, order_id: &str) -> bool {
        self.flagged_ids.contains(order_id)
    }

    /// `bot/<file>:<line>` of a verdict's matched bot-log row.
    pub fn matched_row(&self, v: &OrderVerdict) -> String {
        match self.matched_row_at(v) {
            Some((file, line)) => format!("{file}:{line}"),
            None => String::new(),
        }
    }

    /// The bot log (its path in the bundle, `?` when unknown) and line of the row `v`
    /// matched, if any: the parts of [`Joined::matched_row`].
    pub fn matched_row_at(&self, v: &OrderVerdict) -> Option<(&'a str, u64)> {
        let (log, line) = v.matched_row?;
        let file = self
            .input
            .bot_logs
            .get(log)
            .map_or("?", |l| l.bundle_path.as_str());
        Some((file, line))
    }

    /// A time in the exchange's local zone, milliseconds, with its offset.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        crate::time::local(t, self.input.local_utc_offset_secs)
    }

    /// Name of the exchange's local zone (its own name when the offset is its zone's, else
    /// `UTC±hh:mm`).
    pub fn local_zone(&self) -> String {
        crate::time::zone_label(
            self.input.local_utc_offset_secs,
            self.exchange
                .map(|d| (d.locale.zone.utc_offset_secs, d.locale.zone.name)),
        )
    }

    /// `t` for reading, in the exchange's local zone then UTC, to the second:
    /// `2026-11-29 21:46:00 CET (2026-11-29 20:46:00 UTC)`; UTC alone where the local zone is
    /// UTC.
    pub fn when(&self, t: DateTime<Utc>) -> String {
        if self.input.local_utc_offset_secs == 0 {
            return utc_short(t);
        }
        format!("{} ({})", self.local_short(t), utc_short(t))
    }

    /// `t` in the exchange's local zone, to the second, with the zone's name.
    pub fn local_short(&self, t: DateTime<Utc>) -> String {
        format!(
            "{} {}",
            t.with_timezone(&crate::time::offset(self.input.local_utc_offset_secs))
                .format("%Y-%m-%d %H:%M:%S"),
            self.local_zone()
        )
    }

    /// The exchange's home language, when it is registered.
    pub fn language(&self) -> Option<&'static str> {
        self.exchange.map(|d| d.locale.language)
    }
}
