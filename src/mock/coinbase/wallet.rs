//! Coinbase's account and key endpoints over the venue: Advanced Trade's accounts (one
//! wallet per currency, `available_balance` and `hold`, cursor paged) and
//! `key_permissions`; the App API's currencies, accounts (`balance` is the wallet's total) and
//! an account's transactions (crypto withdrawals are `send` with a negative amount, deposits
//! `receive`; newest first, paged by `starting_after`), and its fiat withdrawals and deposits
//! (none in the mock).
//!
//! A wallet's uuid is stable per (account, currency): it is the `{account_id}` of the App
//! API paths, as on Coinbase.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::routes::Ctx;
use super::wire::{self, ts};
use crate::mock::venue::dec;
use crate::mock::venue::keys::Permission;
use crate::mock::venue::state::{Balance, WithdrawalState};

/// Accounts per page when `limit` is absent, and the most per page (Advanced Trade).
const ACCOUNTS_DEFAULT: usize = 49;
const ACCOUNTS_MAX: usize = 250;
/// The App API's page size when `limit` is absent, and its most per page.
const V2_DEFAULT: usize = 25;
const V2_MAX: usize = 100;

/// `GET /api/v3/brokerage/key_permissions`.
pub fn key_permissions(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let (_, portfolio) = super::trade::user_and_portfolio(&key.account);
    Ok(
        json!({"can_view": key.can(Permission::Read), "can_trade": key.can(Permission::Trade),
        "can_transfer": key.has_scope("transfer"), "portfolio_uuid": portfolio,
        "portfolio_type": "DEFAULT"}),
    )
}

/// One currency wallet of an account.
struct Wallet {
    uuid: String,
    currency: String,
    fiat: bool,
    balance: Balance,
}

/// The account's wallets: every currency it holds or a market trades, sorted by code.
fn wallets(c: &Ctx<'_>, account: &str) -> Vec<Wallet> {
    let w = c.ex.world();
    let held = w.accounts.get(account);
    let mut codes: BTreeSet<String> = held
        .map(|a| a.balances.keys().cloned().collect())
        .unwrap_or_default();
    for m in &c.ex.markets.list {
        codes.insert(m.market.base.clone());
        codes.insert(m.market.quote.clone());
    }
    let quote = c.ex.scenario.quote.clone();
    codes
        .into_iter()
        .map(|cur| Wallet {
            uuid: wire::stable_uuid(&["wallet", account, &cur]).to_string(),
            fiat: cur == quote,
            balance: held
                .and_then(|a| a.balances.get(&cur))
                .cloned()
                .unwrap_or_default(),
            currency: cur,
        })
        .collect()
}

fn account_json(c: &Ctx<'_>, account: &str, wl: &Wallet) -> Value {
    let (_, portfolio) = super::trade::user_and_portfolio(account);
    let created = c.ex.scenario_now - chrono::Duration::days(365);
    json!({"uuid": wl.uuid, "name": format!("{} Wallet", wl.currency), "currency": wl.currency,
        "available_balance": {"value": dec(wl.balance.balance), "currency": wl.currency},
        "default": true, "active": true, "created_at": ts(created), "updated_at": ts(c.now),
        "deleted_at": null,
        "type": if wl.fiat { "ACCOUNT_TYPE_FIAT" } else { "ACCOUNT_TYPE_CRYPTO" },
        "ready": true, "hold": {"value": dec(wl.balance.locked), "currency": wl.currency},
        "retail_portfolio_id": portfolio, "platform": "ACCOUNT_PLATFORM_CONSUMER"})
}

/// `GET /api/v3/brokerage/accounts[?limit&cursor]`.
pub fn accounts(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let limit = c.limit(ACCOUNTS_DEFAULT, ACCOUNTS_MAX)?;
    let from = match c.get("cursor") {
        None => 0,
        Some(s) => wire::parse_cursor(s)
            .map(|k| k.1 as usize)
            .ok_or_else(|| errors::invalid(format!("invalid cursor {s}")))?,
    };
    let all = wallets(c, &key.account);
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(limit)
        .map(|wl| account_json(c, &key.account, wl))
        .collect();
    let end = from + page.len();
    let has_next = end < all.len();
    let cursor = if has_next {
        wire::cursor((0, end as u64))
    } else {
        String::new()
    };
    let size = page.len();
    Ok(json!({"accounts": page, "has_next": has_next, "cursor": cursor, "size": size}))
}

/// The account's wallet with this uuid (404 otherwise).
fn wallet(c: &Ctx<'_>) -> Result<(String, Wallet), ApiErr> {
    let key = c.key()?;
    let id = c.arg.unwrap_or_default();
    wallets(c, &key.account)
        .into_iter()
        .find(|w| w.uuid == id)
        .map(|w| (key.account.clone(), w))
        .ok_or_else(|| errors::not_found(format!("account {id} not found")))
}

/// `GET /api/v3/brokerage/accounts/{account_uuid}`.
pub fn account(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let (acct, wl) = wallet(c)?;
    Ok(json!({"account": account_json(c, &acct, &wl)}))
}

/// The display name of a currency.
fn currency_name(c: &Ctx<'_>, code: &str) -> String {
    if code == c.ex.scenario.quote {
        return "US Dollar".into();
    }
    c.ex.markets
        .by_base(code)
        .map(|m| m.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| code.to_string())
}

fn v2_account_json(c: &Ctx<'_>, wl: &Wallet) -> Value {
    let total = wl.balance.balance + wl.balance.locked;
    let created = c.ex.scenario_now - chrono::Duration::days(365);
    json!({"id": wl.uuid, "name": format!("{} Wallet", wl.currency), "primary": !wl.fiat,
        "type": if wl.fiat { "fiat" } else { "wallet" },
        "currency": {"code": wl.currency, "name": currency_name(c, &wl.currency),
            "color": "#0052FF", "sort_index": 100, "exponent": if wl.fiat { 2 } else { 8 },
            "type": if wl.fiat { "fiat" } else { "crypto" }, "address_regex": ""},
        "balance": {"amount": dec(total), "currency": wl.currency},
        "created_at": ts(created), "updated_at": ts(c.now), "resource": "account",
        "resource_path": format!("/v2/accounts/{}", wl.uuid), "allow_deposits": true,
        "allow_withdrawals": true})
}

/// App API paging: items newest first (or as listed), `starting_after`/`ending_before`
/// ids, `limit` (clamped to 100). (page, next id).
fn v2_page(
    c: &Ctx<'_>,
    items: Vec<(String, Value)>,
) -> Result<(Vec<Value>, Option<String>, usize), ApiErr> {
    let limit = c.limit(V2_DEFAULT, V2_MAX)?;
    let mut rest: Vec<(String, Value)> = items;
    if let Some(after) = c.get("starting_after") {
        let pos = rest
            .iter()
            .position(|(id, _)| id == after)
            .ok_or_else(|| errors::invalid(format!("starting_after {after} is not in the list")))?;
        rest.drain(..=pos);
    }
    let has_more = rest.len() > limit;
    rest.truncate(limit);
    let next = if has_more {
        rest.last().map(|(id, _)| id.clone())
    } else {
        None
    };
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next, limit))
}

fn pagination(path: &str, next: Option<&str>, limit: usize) -> Value {
    json!({"ending_before": null, "starting_after": null, "previous_ending_before": null,
        "next_starting_after": next, "limit": limit, "order": "desc", "previous_uri": null,
        "next_uri": next.map(|n| format!("{path}?limit={limit}&starting_after={n}"))})
}

/// `GET /v2/accounts`.
pub fn v2_accounts(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    let items: Vec<(String, Value)> = wallets(c, &key.account)
        .iter()
        .map(|wl| (wl.uuid.clone(), v2_account_json(c, wl)))
        .collect();
    let (data, next, limit) = v2_page(c, items)?;
    Ok(json!({"pagination": pagination("/v2/accounts", next.as_deref(), limit), "data": data}))
}

/// `GET /v2/accounts/{account_id}`.
pub fn v2_account(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let (_, wl) = wallet(c)?;
    Ok(json!({"data": v2_account_json(c, &wl)}))
}

/// `GET /v2/accounts/{account_id}/transactions`: the wallet's crypto sends (withdrawals)
/// and receives (deposits), newest first.
pub fn v2_transactions(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let (acct, wl) = wallet(c)?;
    let path = format!("/v2/accounts/{}/transactions", wl.uuid);
    let price = |at| {
        if wl.fiat {
            Decimal::ONE
        } else {
            c.ex.markets
                .by_base(&wl.currency)
                .map(|m| c.ex.markets.ref_price(&m.market.symbol, at))
                .unwrap_or_default()
        }
    };
    let quote = c.ex.scenario.quote.clone();
    let mut rows: Vec<(chrono::DateTime<chrono::Utc>, String, Value)> = Vec::new();
    {
        let w = c.ex.world();
        for x in w
            .withdrawals
            .iter()
            .filter(|x| x.account == acct && x.currency == wl.currency)
        {
            let id = x.uuid.to_string();
            let (status, net) = match x.state {
                WithdrawalState::Waiting => ("pending", "pending"),
                WithdrawalState::Done => ("completed", "confirmed"),
                WithdrawalState::Cancelled => ("canceled", "cancelled"),
            };
            let native = (x.amount * price(x.created_at)).round_dp(2);
            rows.push((
                x.created_at,
                id.clone(),
                json!({"id": id, "type": "send", "status": status,
                    "amount": {"amount": dec(-x.amount), "currency": x.currency},
                    "native_amount": {"amount": dec(-native), "currency": quote},
                    "description": null, "created_at": ts(x.created_at),
                    "updated_at": ts(x.done_at.unwrap_or(x.created_at)),
                    "resource": "transaction", "resource_path": format!("{path}/{id}"),
                    "instant_exchange": false,
                    "network": {"status": net, "network_name": x.net_type,
                        "hash": x.txid.clone().unwrap_or_default(),
                        "transaction_fee": {"amount": dec(x.fee), "currency": x.currency}},
                    "to": {"resource": "address", "address": x.address, "currency": x.currency},
                    "details": {"title": format!("Sent {}", x.currency),
                        "subtitle": format!("To {}", x.address)},
                    "idem": id}),
            ));
        }
        for d in w
            .deposits
            .iter()
            .filter(|d| d.account == acct && d.currency == wl.currency)
        {
            let id = d.uuid.to_string();
            let native = (d.amount * price(d.created_at)).round_dp(2);
            rows.push((
                d.created_at,
                id.clone(),
                json!({"id": id, "type": "receive", "status": "completed",
                    "amount": {"amount": dec(d.amount), "currency": d.currency},
                    "native_amount": {"amount": dec(native), "currency": quote},
                    "description": null, "created_at": ts(d.created_at),
                    "updated_at": ts(d.created_at), "resource": "transaction",
                    "resource_path": format!("{path}/{id}"), "instant_exchange": false,
                    "network": {"status": "confirmed", "network_name": d.net_type,
                        "hash": d.txid},
                    "from": {"resource": "address", "currency": d.currency},
                    "details": {"title": format!("Received {}", d.currency),
                        "subtitle": "From an external address"}}),
            ));
        }
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let items = rows.into_iter().map(|(_, id, v)| (id, v)).collect();
    let (data, next, limit) = v2_page(c, items)?;
    Ok(json!({"pagination": pagination(&path, next.as_deref(), limit), "data": data}))
}

/// `GET /v2/accounts/{account_id}/withdrawals` and `/deposits`: fiat transfers, none in the
/// mock (the wallet must exist).
pub fn v2_fiat(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    wallet(c)?;
    let (data, next, limit) = v2_page(c, Vec::new())?;
    Ok(json!({"pagination": pagination("", next.as_deref(), limit), "data": data}))
}

/// `GET /v2/currencies` (fiat, `crypto` false) and `/v2/currencies/crypto`.
pub fn v2_currencies(c: &Ctx<'_>, crypto: bool) -> Value {
    let quote = c.ex.scenario.quote.clone();
    let data: Vec<Value> = if crypto {
        c.ex.markets
            .list
            .iter()
            .enumerate()
            .map(|(i, m)| {
                json!({"asset_id": wire::stable_uuid(&["asset", &m.market.base]).to_string(),
                    "code": m.market.base, "name": currency_name(c, &m.market.base),
                    "color": "#0052FF", "sort_index": 100 + i, "exponent": 8,
                    "type": "crypto", "address_regex": ""})
            })
            .collect()
    } else {
        vec![json!({"id": quote, "name": "US Dollar", "min_size": "0.01"})]
    };
    json!({"data": data})
}
