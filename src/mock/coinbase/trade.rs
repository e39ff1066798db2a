//! Coinbase's spot order endpoints over the venue: create (`market_market_ioc`,
//! `limit_limit_gtc`, `limit_limit_fok`, `sor_limit_ioc`), batch cancel (at most 100 ids, a
//! result per id), order history (`orders/historical/batch`, filtered by status, product,
//! side, type, ids and creation time, newest first, paged by an opaque cursor), one order,
//! and fills (`orders/historical/fills`, by order, trade or product and sequence time, newest
//! first, cursor paged).
//!
//! Order ids are the venue's uuids. A create refused for the order itself (funds, sizes,
//! configuration) is HTTP 200 with `success: false` and an `error_response`; a malformed
//! request is a 400. A `client_order_id` already used by one of the account's orders creates
//! nothing and answers that order (the mock's reading of Coinbase's idempotent client ids).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::errors::{self, ApiErr};
use super::market::{self, BASE_MAX_SIZE};
use super::routes::Ctx;
use super::wire::{self, ts};
use crate::mock::http;
use crate::mock::venue::dec;
use crate::mock::venue::fragments::PageText;
use crate::mock::venue::matching::{self, NewOrder, OrderError};
use crate::mock::venue::state::{Fill, Order, OrderKind, OrderState, Side, Tif, World};

/// Ids one `batch_cancel` may name.
pub const MAX_CANCEL_IDS: usize = 100;
/// Largest page of orders or fills.
pub const MAX_PAGE: usize = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 100;

const ALL_STATES: [OrderState; 3] = [OrderState::Open, OrderState::Done, OrderState::Cancelled];

/// A sort key: creation time (ns) and a tie-break.
fn key_of(t: DateTime<Utc>, tie: u64) -> (i64, u64) {
    (t.timestamp_nanos_opt().unwrap_or(i64::MAX), tie)
}

/// The order configuration an order was placed with.
fn configuration(o: &Order) -> Value {
    let kind = wire::config_kind(o);
    let inner = match o.kind {
        OrderKind::Limit => {
            let mut v = json!({"base_size": dec(o.volume.unwrap_or_default()),
                "limit_price": dec(o.price.unwrap_or_default())});
            if kind == "limit_limit_gtc" {
                v["post_only"] = json!(o.tif == Some(Tif::PostOnly));
            }
            v
        }
        _ => match (o.quote_amount, o.volume) {
            (Some(q), _) => json!({"quote_size": dec(q)}),
            (None, v) => json!({"base_size": dec(v.unwrap_or_default())}),
        },
    };
    json!({ kind: inner })
}

/// An order as Coinbase shows it.
/// An order's average fill price and completion percentage.
fn progress(o: &Order) -> (Decimal, Decimal) {
    let (filled, value) = (o.executed_volume, o.executed_funds);
    let avg = if filled.is_zero() {
        Decimal::ZERO
    } else {
        (value / filled).round_dp(8)
    };
    let asked = o.volume.unwrap_or_default();
    let completion = match (o.state, asked.is_zero()) {
        (OrderState::Done, _) => Decimal::from(100),
        (_, false) => (filled / asked * Decimal::from(100)).round_dp(2),
        (_, true) => match o.quote_amount {
            Some(q) if !q.is_zero() => (value / q * Decimal::from(100)).round_dp(2),
            _ => Decimal::ZERO,
        },
    };
    (avg, completion)
}

pub fn order_json(o: &Order, user: &str, portfolio: &str) -> Value {
    let filled = o.executed_volume;
    let value = o.executed_funds;
    let (avg, completion) = progress(o);
    let last_fill = o.trades.iter().map(|f| f.created_at).max();
    json!({"order_id": o.uuid.to_string(), "product_id": o.market.symbol, "user_id": user,
        "order_configuration": configuration(o), "side": wire::side(o.side),
        "client_order_id": o.identifier.clone().unwrap_or_default(), "status": wire::status(o),
        "time_in_force": wire::time_in_force(o), "created_time": ts(o.created_at),
        "completion_percentage": dec(completion), "filled_size": dec(filled),
        "average_filled_price": dec(avg), "fee": "", "number_of_fills": o.trades.len().to_string(),
        "filled_value": dec(value), "pending_cancel": false,
        "size_in_quote": o.quote_amount.is_some() && o.kind != OrderKind::Limit,
        "total_fees": dec(o.paid_fee), "size_inclusive_of_fees": false,
        "total_value_after_fees": dec(match o.side {
            Side::Bid => value + o.paid_fee,
            Side::Ask => value - o.paid_fee,
        }),
        "trigger_status": "INVALID_ORDER_TYPE", "order_type": wire::order_type(o),
        "reject_reason": "REJECT_REASON_UNSPECIFIED", "settled": o.state.is_closed(),
        "product_type": "SPOT", "reject_message": "", "cancel_message": "",
        "order_placement_source": "RETAIL_ADVANCED", "outstanding_hold_amount": dec(o.locked),
        "is_liquidation": false,
        "last_fill_time": last_fill.map(ts).map(Value::String).unwrap_or(Value::Null),
        "edit_history": [], "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": portfolio, "originating_order_id": "", "attached_order_id": ""})
}

/// What [`order_json`] writes, written as text directly (a history page's hot path: no map
/// of values built and then written); [`push_order_text`] into a new string.
#[cfg(test)]
pub fn order_text(o: &Order, user: &str, portfolio: &str) -> String {
    let mut s = String::with_capacity(ORDER_BYTES);
    push_order_text(&mut s, o, user, portfolio);
    s
}

/// About how many bytes [`push_order_text`] writes for one order.
pub const ORDER_BYTES: usize = 1400;

/// Appends what [`order_json`] writes for `o` to `s`, member by member; the constant
/// members between two that vary in one copy. `user` and `portfolio` are uuid texts
/// ([`user_and_portfolio`]), which need no escaping.
pub fn push_order_text(s: &mut String, o: &Order, user: &str, portfolio: &str) {
    use crate::mock::venue::jsontext::{key, push_digits, push_utc_micros, Obj};
    let filled = o.executed_volume;
    let value = o.executed_funds;
    let (avg, completion) = progress(o);
    let after_fees = match o.side {
        Side::Bid => value + o.paid_fee,
        Side::Ask => value - o.paid_fee,
    };
    let mut m = Obj::new(s);
    let mut uuid = Uuid::encode_buffer();
    m.plain(
        key!("order_id"),
        o.uuid.hyphenated().encode_lower(&mut uuid),
    );
    m.str(key!("product_id"), &o.market.symbol);
    m.plain(key!("user_id"), user);
    let kind = wire::config_kind(o);
    m.key(key!("order_configuration"));
    m.out.push_str("{\"");
    m.out.push_str(kind);
    m.out.push_str("\":");
    {
        let mut c = Obj::new(m.out);
        match o.kind {
            OrderKind::Limit => {
                c.dec(key!("base_size"), o.volume.unwrap_or_default());
                c.dec(key!("limit_price"), o.price.unwrap_or_default());
                if kind == "limit_limit_gtc" {
                    c.bool(key!("post_only"), o.tif == Some(Tif::PostOnly));
                }
            }
            _ => match (o.quote_amount, o.volume) {
                (Some(q), _) => c.dec(key!("quote_size"), q),
                (None, v) => c.dec(key!("base_size"), v.unwrap_or_default()),
            },
        }
        c.end();
    }
    m.out.push('}');
    m.plain(key!("side"), wire::side(o.side));
    m.str(
        key!("client_order_id"),
        o.identifier.as_deref().unwrap_or_default(),
    );
    m.plain(key!("status"), wire::status(o));
    m.plain(key!("time_in_force"), wire::time_in_force(o));
    m.key(key!("created_time"));
    push_utc_micros(m.out, o.created_at);
    m.dec(key!("completion_percentage"), completion);
    m.dec(key!("filled_size"), filled);
    m.dec(key!("average_filled_price"), avg);
    m.lit(concat!(key!("fee"), "\"\""));
    m.key(key!("number_of_fills"));
    m.out.push('"');
    push_digits(m.out, o.trades.len() as u64, 1);
    m.out.push('"');
    m.dec(key!("filled_value"), value);
    m.lit(concat!(key!("pending_cancel"), "false"));
    m.bool(
        key!("size_in_quote"),
        o.quote_amount.is_some() && o.kind != OrderKind::Limit,
    );
    m.dec(key!("total_fees"), o.paid_fee);
    m.lit(concat!(key!("size_inclusive_of_fees"), "false"));
    m.dec(key!("total_value_after_fees"), after_fees);
    m.lit(concat!(key!("trigger_status"), "\"INVALID_ORDER_TYPE\""));
    m.plain(key!("order_type"), wire::order_type(o));
    m.lit(concat!(
        key!("reject_reason"),
        "\"REJECT_REASON_UNSPECIFIED\""
    ));
    m.bool(key!("settled"), o.state.is_closed());
    m.lit(concat!(
        key!("product_type"),
        "\"SPOT\"",
        key!("reject_message"),
        "\"\"",
        key!("cancel_message"),
        "\"\"",
        key!("order_placement_source"),
        "\"RETAIL_ADVANCED\""
    ));
    m.dec(key!("outstanding_hold_amount"), o.locked);
    m.lit(concat!(key!("is_liquidation"), "false"));
    m.key(key!("last_fill_time"));
    match o.trades.iter().map(|f| f.created_at).max() {
        Some(t) => push_utc_micros(m.out, t),
        None => m.out.push_str("null"),
    }
    m.lit(concat!(
        key!("edit_history"),
        "[]",
        key!("leverage"),
        "\"\"",
        key!("margin_type"),
        "\"UNKNOWN_MARGIN_TYPE\""
    ));
    m.plain(key!("retail_portfolio_id"), portfolio);
    m.lit(concat!(
        key!("originating_order_id"),
        "\"\"",
        key!("attached_order_id"),
        "\"\""
    ));
    m.end();
}

/// The user id and portfolio uuid shown for an account, as uuid texts (hex digits and
/// hyphens: the order and fill writers put them in without escaping).
pub fn user_and_portfolio(account: &str) -> (String, String) {
    (
        wire::stable_uuid(&["user", account]).to_string(),
        wire::stable_uuid(&["portfolio", account]).to_string(),
    )
}

/// A refusal of the order itself: HTTP 200, `success: false`.
fn refused(error: &str, message: &str, preview: &str, config: &Value) -> Value {
    json!({"success": false, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": "",
        "error_response": {"error": error, "message": message, "error_details": message,
            "preview_failure_reason": preview,
            "new_order_failure_reason": "UNKNOWN_FAILURE_REASON"},
        "order_configuration": config})
}

/// A decimal string field of the configuration (None when absent; 400 when malformed).
fn size(cfg: &Value, k: &str) -> Result<Option<Decimal>, ApiErr> {
    match cfg.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => {
            let ok = s.len() <= 40
                && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && s.bytes().filter(|b| *b == b'.').count() <= 1;
            match s.parse::<Decimal>() {
                Ok(d) if ok && d > Decimal::ZERO => Ok(Some(d)),
                _ => Err(errors::invalid(format!("invalid {k}: {s}"))),
            }
        }
        Some(_) => Err(errors::invalid(format!("{k} must be a decimal string"))),
    }
}

/// `POST /api/v3/brokerage/orders`.
pub fn create(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let client_id = match c.body.get("client_order_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => s.clone(),
        _ => return Err(errors::invalid("client_order_id is required")),
    };
    let product_id = c
        .get("product_id")
        .ok_or_else(|| errors::invalid("product_id is required"))?
        .to_string();
    let conf =
        c.ex.markets
            .get(&product_id)
            .map(|m| m.1.clone())
            .ok_or_else(|| errors::invalid(format!("ProductID {product_id} is invalid")))?;
    let side = match c.get("side") {
        Some("BUY") => Side::Bid,
        Some("SELL") => Side::Ask,
        _ => return Err(errors::invalid("side must be BUY or SELL")),
    };
    let config = c
        .body
        .get("order_configuration")
        .cloned()
        .unwrap_or(Value::Null);
    let Some((kind_name, cfg)) = config
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
    else {
        return Err(errors::invalid(
            "order_configuration must hold exactly one order kind",
        ));
    };
    {
        let w = c.ex.world();
        if let Some(idx) = w.find_by_identifier(&key.account, &client_id) {
            let o = &w.orders[idx];
            return Ok(json!({"success": true,
                "success_response": {"order_id": o.uuid.to_string(), "product_id": o.market.symbol,
                    "side": wire::side(o.side), "client_order_id": client_id},
                "order_configuration": configuration(o)}));
        }
    }
    let unsupported = || {
        Ok(refused(
            "UNSUPPORTED_ORDER_CONFIGURATION",
            "this order configuration is not offered by the mock",
            "PREVIEW_INVALID_ORDER_CONFIG",
            &config,
        ))
    };
    let inc = market::increments(c.ex, &conf);
    let (kind, price, quote, base, tif) = match kind_name.as_str() {
        "market_market_ioc" => {
            let (q, b) = (size(&cfg, "quote_size")?, size(&cfg, "base_size")?);
            match (side, q, b) {
                (Side::Bid, Some(q), None) => {
                    (OrderKind::MarketBuyQuote, None, Some(q), None, None)
                }
                (Side::Bid, None, Some(b)) => (OrderKind::MarketBuyBase, None, None, Some(b), None),
                (Side::Ask, None, Some(b)) => {
                    (OrderKind::MarketSellBase, None, None, Some(b), None)
                }
                (Side::Ask, Some(_), None) => return unsupported(),
                _ => {
                    return Err(errors::invalid(
                        "market_market_ioc takes exactly one of quote_size and base_size",
                    ))
                }
            }
        }
        "limit_limit_gtc" | "limit_limit_fok" | "sor_limit_ioc" => {
            let b =
                size(&cfg, "base_size")?.ok_or_else(|| errors::invalid("base_size is required"))?;
            let p = size(&cfg, "limit_price")?
                .ok_or_else(|| errors::invalid("limit_price is required"))?;
            let post_only = matches!(cfg.get("post_only"), Some(Value::Bool(true)));
            let tif = match kind_name.as_str() {
                "limit_limit_fok" => Some(Tif::Fok),
                "sor_limit_ioc" => Some(Tif::Ioc),
                _ if post_only => Some(Tif::PostOnly),
                _ => None,
            };
            (OrderKind::Limit, Some(p), None, Some(b), tif)
        }
        _ => return unsupported(),
    };
    if let Some(p) = price {
        if !(p % inc.price).is_zero() {
            return Ok(refused(
                "INVALID_PRICE_PRECISION",
                "limit_price has too many decimals for this product",
                "PREVIEW_INVALID_PRICE_PRECISION",
                &config,
            ));
        }
    }
    if let Some(b) = base {
        if !(b % inc.base).is_zero() {
            return Ok(refused(
                "INVALID_SIZE_PRECISION",
                "base_size has too many decimals for this product",
                "PREVIEW_INVALID_SIZE_PRECISION",
                &config,
            ));
        }
        if b > Decimal::from(BASE_MAX_SIZE) {
            return Ok(refused(
                "UNKNOWN_FAILURE_REASON",
                "base_size is above the product's maximum",
                "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE",
                &config,
            ));
        }
    }
    if let Some(q) = quote {
        if q.scale() > 8 {
            return Ok(refused(
                "INVALID_SIZE_PRECISION",
                "quote_size has too many decimals",
                "PREVIEW_INVALID_QUOTE_SIZE_PRECISION",
                &config,
            ));
        }
    }
    let req = NewOrder {
        market: conf.market.clone(),
        side,
        kind,
        price,
        quote_amount: quote,
        volume: base,
        identifier: Some(client_id.clone()),
        tif,
    };
    let mut w = c.ex.world();
    match matching::place(&mut w, &c.ex.markets, &key.account, req, c.now) {
        Ok(idx) => {
            let o = &w.orders[idx];
            c.fx.created.push(o.uuid);
            Ok(json!({"success": true,
                "success_response": {"order_id": o.uuid.to_string(), "product_id": o.market.symbol,
                    "side": wire::side(side), "client_order_id": client_id},
                "order_configuration": config}))
        }
        Err(OrderError::InsufficientFunds { .. }) => Ok(refused(
            "INSUFFICIENT_FUND",
            "Insufficient balance in source account",
            "PREVIEW_INSUFFICIENT_FUND",
            &config,
        )),
        Err(OrderError::BelowMinNotional { min, currency, .. }) => Ok(refused(
            "UNKNOWN_FAILURE_REASON",
            &format!("order value below the minimum of {} {currency}", dec(min)),
            "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL",
            &config,
        )),
        Err(e) => Ok(refused(
            "UNKNOWN_FAILURE_REASON",
            &e.to_string(),
            "UNKNOWN_PREVIEW_FAILURE_REASON",
            &config,
        )),
    }
}

/// The order a path or list names, if it is the account's.
fn own_order(w: &World, account: &str, id: &str) -> Option<usize> {
    let uuid = Uuid::parse_str(id).ok()?;
    let idx = w.position(&uuid)?;
    (w.orders[idx].account == account).then_some(idx)
}

/// `GET /api/v3/brokerage/orders/historical/{order_id}`.
pub fn historical_one(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let w = c.ex.world();
    let idx = own_order(&w, &key.account, c.arg.unwrap_or_default())
        .ok_or_else(|| errors::not_found("order with this orderID was not found"))?;
    let (user, portfolio) = user_and_portfolio(&key.account);
    Ok(json!({"order": order_json(&w.orders[idx], &user, &portfolio)}))
}

/// The cursor parameter (400 when it is not one of ours).
fn cursor(c: &Ctx<'_>) -> Result<Option<(i64, u64)>, ApiErr> {
    match c.get("cursor") {
        None => Ok(None),
        Some(s) => wire::parse_cursor(s)
            .map(Some)
            .ok_or_else(|| errors::invalid(format!("invalid cursor {s}"))),
    }
}

/// Runs a page written into one buffer through the venue's page memory (the repeat-page
/// fault) and returns the answer's list, its items put aside as JSON text.
fn render_page_text(
    c: &mut Ctx<'_>,
    account: &str,
    kind: &str,
    page: PageText,
    limit: usize,
) -> Value {
    let list =
        c.ex.world()
            .page_text(account, kind, page, c.repeat_page, limit);
    http::raw_list_text(c.fx, list)
}

/// `GET /api/v3/brokerage/orders/historical/batch`.
pub fn historical_batch(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let statuses = c.all(&["order_status"]);
    // As at Coinbase: "Cannot pair OPEN orders with other order types".
    if statuses.len() > 1 && statuses.iter().any(|s| s == "OPEN") {
        return Err(errors::invalid(
            "order_status OPEN cannot be combined with other statuses",
        ));
    }
    let mut states: Vec<OrderState> = Vec::new();
    for s in &statuses {
        let st = wire::states_for(s)
            .ok_or_else(|| errors::invalid(format!("invalid order_status {s}")))?;
        for x in st {
            if !states.contains(x) {
                states.push(*x);
            }
        }
    }
    if statuses.is_empty() {
        states = ALL_STATES.to_vec();
    }
    let products = c.all(&["product_ids", "product_id"]);
    let ids = c.all(&["order_ids"]);
    let side = match c.get("order_side") {
        None => None,
        Some("BUY") => Some(Side::Bid),
        Some("SELL") => Some(Side::Ask),
        Some(s) => return Err(errors::invalid(format!("invalid order_side {s}"))),
    };
    let types = c.all(&["order_types", "order_type"]);
    let (start, end) = (c.time("start_date")?, c.time("end_date")?);
    let limit = c.limit(DEFAULT_PAGE, MAX_PAGE)?;
    let after = cursor(c)?;
    let (user, portfolio) = user_and_portfolio(&key.account);
    let (page, last, has_next) = {
        let w = c.ex.world();
        let keep = |i: usize, o: &Order| {
            (products.is_empty() || products.contains(&o.market.symbol))
                && (ids.is_empty() || ids.iter().any(|i| *i == o.uuid.to_string()))
                && side.map_or(true, |s| s == o.side)
                && (types.is_empty() || types.iter().any(|t| t == wire::order_type(o)))
                && after.map_or(true, |a| key_of(o.created_at, i as u64) < a)
        };
        // Newest first from the cursor's time: the walk stops once the page is full.
        let cut = after.map(|(nanos, _)| DateTime::<Utc>::from_timestamp_nanos(nanos));
        let between = (start.is_some() || end.is_some() || cut.is_some()).then(|| {
            let to = end.unwrap_or(DateTime::<Utc>::MAX_UTC);
            (
                start.unwrap_or(DateTime::<Utc>::MIN_UTC),
                cut.map_or(to, |c| to.min(c)),
            )
        });
        let mut idxs = w.list_orders_at(&key.account, &states, between, true, &keep, 0, limit + 1);
        let has_next = idxs.len() > limit;
        idxs.truncate(limit);
        let mut page = PageText::enveloped(idxs.len(), ORDER_BYTES);
        for &i in &idxs {
            w.fragment_into(&mut page, "coinbase-order", i, None, |b| {
                push_order_text(b, &w.orders[i], &user, &portfolio)
            });
        }
        let last = idxs
            .last()
            .map(|&i| key_of(w.orders[i].created_at, i as u64));
        (page, last, has_next)
    };
    let next = match last {
        Some(k) if has_next => wire::cursor(k),
        _ => String::new(),
    };
    let orders = render_page_text(c, &key.account, "coinbase-orders", page, limit);
    Ok(json!({"orders": orders, "sequence": "0", "has_next": has_next, "cursor": next}))
}

/// `GET /api/v3/brokerage/orders/historical/fills`.
pub fn fills(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let products = c.all(&["product_ids", "product_id"]);
    let order_ids = c.all(&["order_ids", "order_id"]);
    let trade_ids = c.all(&["trade_ids"]);
    let (start, end) = (
        c.time("start_sequence_timestamp")?,
        c.time("end_sequence_timestamp")?,
    );
    let limit = c.limit(DEFAULT_PAGE, MAX_PAGE)?;
    let after = cursor(c)?;
    let (user, portfolio) = user_and_portfolio(&key.account);
    let (page, last, has_next) = {
        let w = c.ex.world();
        let keep = |_: usize, o: &Order, f: &Fill| {
            (products.is_empty() || products.contains(&o.market.symbol))
                && (order_ids.is_empty() || order_ids.iter().any(|i| *i == o.uuid.to_string()))
                && after.map_or(true, |a| key_of(f.created_at, f.id) < a)
                && (trade_ids.is_empty() || trade_ids.contains(&f.id.to_string()))
        };
        // The page and one more, newest first from the cursor, in the account's fill index.
        let to = match after {
            Some((nanos, _)) => end
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
                .min(DateTime::<Utc>::from_timestamp_nanos(nanos)),
            None => end.unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        let from = start.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut slots = w.list_fills(&key.account, (from, to), true, &keep, limit + 1);
        // Fills of one trade (both sides in this account) in the order of their orders,
        // newest first, under the stable sort below.
        slots.sort_by_key(|x| (std::cmp::Reverse((w.orders[x.2].created_at, x.2)), x.3));
        let mut rows: Vec<((i64, u64), usize, usize)> = slots
            .into_iter()
            .map(|(_, _, i, j)| {
                (
                    key_of(w.orders[i].trades[j].created_at, w.orders[i].trades[j].id),
                    i,
                    j,
                )
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let has_next = rows.len() > limit;
        rows.truncate(limit);
        let mut page = PageText::enveloped(rows.len(), FILL_BYTES);
        for &(_, i, j) in &rows {
            w.fragment_into(&mut page, "coinbase-fill", i, Some(j), |b| {
                push_fill_text(b, &w.orders[i], &w.orders[i].trades[j], &user, &portfolio)
            });
        }
        (page, rows.last().map(|r| r.0), has_next)
    };
    let next = match last {
        Some(k) if has_next => wire::cursor(k),
        _ => String::new(),
    };
    let fills = render_page_text(c, &key.account, "coinbase-fills", page, limit);
    Ok(json!({"fills": fills, "cursor": next}))
}

/// An order's commission share for fill `f` (its fees by value).
fn commission(o: &Order, f: &Fill) -> Decimal {
    if o.executed_funds.is_zero() {
        Decimal::ZERO
    } else {
        (o.paid_fee * f.funds / o.executed_funds).round_dp(8)
    }
}

/// [`fill_json`]'s text, written directly (a history page's hot path).
#[cfg(test)]
fn fill_text(o: &Order, f: &Fill, user: &str, portfolio: &str) -> String {
    let mut s = String::with_capacity(FILL_BYTES);
    push_fill_text(&mut s, o, f, user, portfolio);
    s
}

/// About how many bytes [`push_fill_text`] writes for one fill.
const FILL_BYTES: usize = 560;

/// Appends [`fill_text`]'s text for fill `f` of order `o` to `s` (`user` and `portfolio`
/// uuid texts, as for [`push_order_text`]).
fn push_fill_text(s: &mut String, o: &Order, f: &Fill, user: &str, portfolio: &str) {
    use crate::mock::venue::jsontext::{key, push_digits, push_utc_micros, Obj};
    let mut m = Obj::new(s);
    let mut uuid = uuid::Uuid::encode_buffer();
    m.plain(
        key!("entry_id"),
        f.uuid.hyphenated().encode_lower(&mut uuid),
    );
    m.key(key!("trade_id"));
    m.out.push('"');
    push_digits(m.out, f.id, 1);
    m.out.push('"');
    let mut uuid = uuid::Uuid::encode_buffer();
    m.plain(
        key!("order_id"),
        o.uuid.hyphenated().encode_lower(&mut uuid),
    );
    m.key(key!("trade_time"));
    push_utc_micros(m.out, f.created_at);
    m.raw(key!("trade_type"), "\"FILL\"");
    m.dec(key!("price"), f.price);
    m.dec(key!("size"), f.volume);
    m.dec(key!("commission"), commission(o, f));
    m.str(key!("product_id"), &f.market.symbol);
    m.key(key!("sequence_timestamp"));
    push_utc_micros(m.out, f.created_at);
    let taker = f.taker_side == f.side;
    m.plain(
        key!("liquidity_indicator"),
        if taker { "TAKER" } else { "MAKER" },
    );
    m.bool(key!("size_in_quote"), false);
    m.plain(key!("user_id"), user);
    m.plain(key!("side"), wire::side(f.side));
    m.plain(key!("retail_portfolio_id"), portfolio);
    m.end();
}

/// A fill as `orders/historical/fills` shows it (its commission a share of the order's
/// fees by value), as a value: the reference [`fill_text`] is checked against.
#[cfg(test)]
fn fill_json(o: &Order, f: &Fill, user: &str, portfolio: &str) -> Value {
    let commission = commission(o, f);
    let liquidity = if f.taker_side == f.side {
        "TAKER"
    } else {
        "MAKER"
    };
    json!({"entry_id": f.uuid.to_string(), "trade_id": f.id.to_string(),
        "order_id": o.uuid.to_string(), "trade_time": ts(f.created_at),
        "trade_type": "FILL", "price": dec(f.price), "size": dec(f.volume),
        "commission": dec(commission), "product_id": f.market.symbol,
        "sequence_timestamp": ts(f.created_at), "liquidity_indicator": liquidity,
        "size_in_quote": false, "user_id": user, "side": wire::side(f.side),
        "retail_portfolio_id": portfolio})
}

/// `POST /api/v3/brokerage/orders/batch_cancel` `{"order_ids": [...]}`: at most 100 ids; a
/// result per id, in order (an id that is not an open order of the account fails alone).
pub fn batch_cancel(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?.clone();
    let Some(list) = c.body.get("order_ids").and_then(Value::as_array) else {
        return Err(errors::invalid("order_ids is required"));
    };
    if list.is_empty() {
        return Err(errors::invalid("order_ids is empty"));
    }
    if list.len() > MAX_CANCEL_IDS {
        return Err(errors::invalid(format!(
            "too many order_ids: {} (at most {MAX_CANCEL_IDS} per request)",
            list.len()
        )));
    }
    let mut w = c.ex.world();
    let mut results = Vec::new();
    for v in list {
        let id = v.as_str().unwrap_or_default().to_string();
        let outcome = match own_order(&w, &key.account, &id) {
            None => Err("UNKNOWN_CANCEL_ORDER"),
            Some(idx) if w.orders[idx].state != OrderState::Open => Err("INVALID_CANCEL_REQUEST"),
            Some(idx) => match matching::cancel(&mut w, idx) {
                Ok(()) => {
                    c.fx.cancelled.push(w.orders[idx].uuid);
                    Ok(())
                }
                Err(_) => Err("INVALID_CANCEL_REQUEST"),
            },
        };
        results.push(match outcome {
            Ok(()) => json!({"success": true,
                "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": id}),
            Err(reason) => json!({"success": false, "failure_reason": reason, "order_id": id}),
        });
    }
    Ok(json!({"results": results}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct writer writes what the value builder writes, for every order of the
    /// built-in scenarios and for client ids that need escaping.
    #[test]
    fn the_order_text_is_the_order_value_written() {
        let (user, portfolio) = user_and_portfolio("victim");
        crate::mock::venue::assert_order_texts(&crate::mock::coinbase::Coinbase, |w, i| {
            let o = &w.orders[i];
            Some((
                order_text(o, &user, &portfolio),
                order_json(o, &user, &portfolio).to_string(),
            ))
        });
    }

    /// The direct writer of a fill writes what the value builder writes, for every fill of
    /// the built-in scenarios.
    #[test]
    fn the_fill_text_is_the_fill_value_written() {
        let (user, portfolio) = user_and_portfolio("victim");
        crate::mock::venue::assert_order_texts(&crate::mock::coinbase::Coinbase, |w, i| {
            let o = &w.orders[i];
            let text: String = o
                .trades
                .iter()
                .map(|f| fill_text(o, f, &user, &portfolio))
                .collect();
            let value: String = o
                .trades
                .iter()
                .map(|f| fill_json(o, f, &user, &portfolio).to_string())
                .collect();
            Some((text, value))
        });
    }
}
