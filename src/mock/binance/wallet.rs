//! Binance's wallet and sub-account endpoints (`/sapi/v1`) over the venue: the key's
//! permissions, the API trading status, coins and their networks, daily account snapshots,
//! withdrawal and deposit histories (90 days at most per call, newest first, paged by
//! `offset`), the withdrawal address book, deleting a sub-account's key with its master's
//! key, and the empty margin pair lists ccxt loads with markets.
//!
//! Daily snapshots are rebuilt from the present: each day's balances are today's with every
//! later fill, withdrawal and deposit undone (a balance the scenario never funded shows as
//! zero rather than negative).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::market::day_start;
use super::routes::{Ctx, Reply};
use super::wire::{self, d8, ms};
use crate::mock::venue::clock::{self, WindowError};
use crate::mock::venue::keys::Permission;
use crate::mock::venue::state::{Order, OrderState, Side, WithdrawalState, World};

/// `GET /sapi/v1/account/apiRestrictions`.
pub fn api_restrictions(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let mut v = json!({"ipRestrict": !k.allowed_ips.is_empty(), "createTime": ms(k.created_at()),
        "enableReading": k.can(Permission::Read),
        "enableWithdrawals": k.can(Permission::Withdraw),
        "enableInternalTransfer": k.has_scope("enableInternalTransfer"),
        "enableMargin": false, "enableFutures": false,
        "permitsUniversalTransfer": k.has_scope("permitsUniversalTransfer"),
        "enableVanillaOptions": false, "enableFixApiTrade": false, "enableFixReadOnly": false,
        "enableSpotAndMarginTrading": k.can(Permission::Trade),
        "enablePortfolioMarginTrading": false});
    if k.can(Permission::Trade) {
        v["tradingAuthorityExpirationTime"] = json!(ms(k.expire_at));
    }
    Ok(v)
}

/// `GET /sapi/v1/account/apiTradingStatus`: never locked.
pub fn api_trading_status(c: &Ctx<'_>) -> Value {
    json!({"data": {"isLocked": false, "plannedRecoverTime": 0,
        "triggerCondition": {"GCR": 150, "IFER": 150, "UFR": 300}, "updateTime": ms(c.now)}})
}

/// Every asset the venue knows for an account: the markets' and the account's.
fn assets(c: &Ctx<'_>, w: &World, account: &str) -> Vec<String> {
    let mut set: std::collections::BTreeSet<String> =
        c.ex.markets
            .list
            .iter()
            .flat_map(|m| [m.market.base.clone(), m.market.quote.clone()])
            .collect();
    if let Some(a) = w.accounts.get(account) {
        set.extend(a.balances.keys().cloned());
    }
    set.into_iter().collect()
}

/// `GET /sapi/v1/capital/config/getall`: each coin with the caller's balance and its networks
/// (the coin's own, plus those of the account's allowlisted addresses).
pub fn coin_config(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let w = c.ex.world();
    let acct = w.accounts.get(&k.account);
    let coins: Vec<Value> = assets(c, &w, &k.account)
        .into_iter()
        .map(|coin| {
            let name = c
                .ex
                .markets
                .by_base(&coin)
                .map_or(coin.clone(), |m| m.name.clone());
            let (free, locked) = acct
                .and_then(|a| a.balances.get(&coin))
                .map_or((Decimal::ZERO, Decimal::ZERO), |b| (b.balance, b.locked));
            let withdrawing: Decimal = w
                .withdrawals
                .iter()
                .filter(|x| x.account == k.account && x.currency == coin && x.state == WithdrawalState::Waiting)
                .map(|x| x.amount + x.fee)
                .sum();
            let mut nets = vec![coin.clone()];
            for a in w.addresses.iter().filter(|a| a.account == k.account && a.currency == coin) {
                if !nets.contains(&a.net_type) {
                    nets.push(a.net_type.clone());
                }
            }
            let networks: Vec<Value> = nets
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    json!({"network": n, "coin": coin, "name": n, "isDefault": i == 0,
                        "depositEnable": true, "withdrawEnable": true,
                        "withdrawFee": d8(crate::mock::venue::transfers::WITHDRAWAL_FEE),
                        "withdrawMin": d8(Decimal::new(1, 3)), "withdrawMax": d8(Decimal::from(9_999_999)),
                        "withdrawIntegerMultiple": d8(Decimal::new(1, 8)), "minConfirm": 1,
                        "unLockConfirm": 2, "sameAddress": false, "addressRegex": "", "memoRegex": "",
                        "depositDesc": "", "withdrawDesc": "", "specialTips": "",
                        "resetAddressStatus": false, "estimatedArrivalTime": 5, "busy": false})
                })
                .collect();
            json!({"coin": coin, "name": name, "depositAllEnable": true, "withdrawAllEnable": true,
                "free": d8(free), "locked": d8(locked), "freeze": d8(Decimal::ZERO),
                "withdrawing": d8(withdrawing), "ipoing": d8(Decimal::ZERO), "ipoable": d8(Decimal::ZERO),
                "storage": d8(Decimal::ZERO), "isLegalMoney": false, "trading": true,
                "networkList": networks})
        })
        .collect();
    Ok(Value::Array(coins))
}

/// Changes to an account's balances, oldest first: (time, asset, amount).
fn balance_events(c: &Ctx<'_>, w: &World, account: &str) -> Vec<(DateTime<Utc>, String, Decimal)> {
    let fee = c.ex.markets.fee;
    let states = [OrderState::Open, OrderState::Done, OrderState::Cancelled];
    let any = |_: &Order| true;
    let mut ev = Vec::new();
    for i in w.list_orders(account, &states, None, false, &any, 0, usize::MAX) {
        for f in &w.orders[i].trades {
            let (base, quote) = (&f.market.base, &f.market.quote);
            let paid = f.funds * fee;
            match f.side {
                Side::Bid => {
                    ev.push((f.created_at, base.clone(), f.volume));
                    ev.push((f.created_at, quote.clone(), -(f.funds + paid)));
                }
                Side::Ask => {
                    ev.push((f.created_at, base.clone(), -f.volume));
                    ev.push((f.created_at, quote.clone(), f.funds - paid));
                }
            }
        }
    }
    for x in w
        .withdrawals
        .iter()
        .filter(|x| x.account == account && x.state != WithdrawalState::Cancelled)
    {
        ev.push((x.created_at, x.currency.clone(), -(x.amount + x.fee)));
    }
    for x in w.deposits.iter().filter(|x| x.account == account) {
        ev.push((x.created_at, x.currency.clone(), x.amount));
    }
    ev.sort_by_key(|e| e.0);
    ev
}

/// `GET /sapi/v1/accountSnapshot?type=SPOT`: the balances at the end of each UTC day (the
/// `limit` most recent, 7 by default and 30 at most, or from `startTime` on), oldest first.
pub fn account_snapshot(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    match c.get("type") {
        None => return Err(errors::mandatory("type")),
        Some("SPOT") => {}
        Some("MARGIN" | "FUTURES") => {
            return Ok(json!({"code": 200, "msg": "", "snapshotVos": []}))
        }
        Some(_) => return Err(errors::bad_value("type")),
    }
    let limit = match c.int("limit")? {
        None => 7,
        Some(n @ 7..=30) => n as usize,
        Some(_) => return Err(errors::bad_value("limit")),
    };
    let start = c.time("startTime")?;
    let end = c.time("endTime")?.unwrap_or(c.now).min(c.now);
    // Day ends within the last month, newest first.
    let last = day_start(c.now) - Duration::milliseconds(1);
    let mut ends: Vec<DateTime<Utc>> = (0..30)
        .map(|d| last - Duration::days(d))
        .filter(|t| *t <= end && start.map_or(true, |s| *t >= s))
        .collect();
    if start.is_some() {
        ends.reverse();
        ends.truncate(limit);
    } else {
        ends.truncate(limit);
        ends.reverse();
    }
    let w = c.ex.world();
    let mut now_bal: BTreeMap<String, Decimal> = w
        .accounts
        .get(&k.account)
        .map(|a| {
            a.balances
                .iter()
                .map(|(cur, b)| (cur.clone(), b.balance + b.locked))
                .collect()
        })
        .unwrap_or_default();
    let events = balance_events(c, &w, &k.account);
    // Undo events newest first while walking the days back.
    let mut snapshots: Vec<(DateTime<Utc>, BTreeMap<String, Decimal>)> = Vec::new();
    let mut pending = events.iter().rev().peekable();
    for t in ends.iter().rev() {
        while let Some((at, cur, amt)) = pending.peek() {
            if at <= t {
                break;
            }
            *now_bal.entry(cur.clone()).or_default() -= *amt;
            pending.next();
        }
        snapshots.push((*t, now_bal.clone()));
    }
    snapshots.reverse();
    let quote =
        c.ex.markets
            .list
            .first()
            .map(|m| m.market.quote.clone())
            .unwrap_or_default();
    let vos: Vec<Value> = snapshots
        .into_iter()
        .map(|(t, bal)| {
            let price = |asset: &str| -> Decimal {
                if asset == quote {
                    Decimal::ONE
                } else {
                    c.ex.markets.by_base(asset).map_or(Decimal::ZERO, |m| {
                        c.ex.markets.ref_price(&m.market.symbol, t)
                    })
                }
            };
            let btc = price("BTC");
            let mut total = Decimal::ZERO;
            let balances: Vec<Value> = bal
                .iter()
                .map(|(a, v)| (a, (*v).max(Decimal::ZERO)))
                .filter(|(_, v)| !v.is_zero())
                .map(|(a, v)| {
                    total += v * price(a);
                    json!({"asset": a, "free": d8(v), "locked": d8(Decimal::ZERO)})
                })
                .collect();
            let in_btc = if btc.is_zero() {
                Decimal::ZERO
            } else {
                total / btc
            };
            json!({"type": "spot", "updateTime": ms(t),
                "data": {"totalAssetOfBtc": d8(in_btc), "balances": balances}})
        })
        .collect();
    Ok(json!({"code": 200, "msg": "", "snapshotVos": vos}))
}

/// The window of a wallet history: at most 90 days, the last 90 days by default.
fn history_window(c: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiErr> {
    let (start, end) = (c.time("startTime")?, c.time("endTime")?);
    clock::window(start, end, c.now, Duration::days(90)).map_err(|e| match e {
        WindowError::Reversed => errors::bad_combination(),
        WindowError::TooLong => errors::window_too_long(90 * 24),
    })
}

/// `offset` (default 0) and `limit` (default and most 1,000).
fn offset_limit(c: &Ctx<'_>) -> Result<(usize, usize), ApiErr> {
    let offset = c.int("offset")?.unwrap_or(0) as usize;
    Ok((offset, c.limit(1000, 1000)?))
}

/// A history page, newest first: `offset` and `limit` over (time, item as JSON text), with
/// the repeat-page fault.
fn newest_first(
    c: &Ctx<'_>,
    w: &mut World,
    account: &str,
    kind: &str,
    mut items: Vec<(DateTime<Utc>, String)>,
    offset: usize,
    limit: usize,
) -> Reply {
    items.sort_by_key(|x| std::cmp::Reverse(x.0));
    let page: Vec<String> = items
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|x| x.1)
        .collect();
    Reply::Raw(wire::array(&w.page(
        account,
        kind,
        page,
        c.repeat_page,
        limit,
    )))
}

/// `GET /sapi/v1/capital/withdraw/history`.
pub fn withdraw_history(c: &Ctx<'_>) -> Result<Reply, ApiErr> {
    let k = c.key()?;
    let (s, e) = history_window(c)?;
    let (offset, limit) = offset_limit(c)?;
    let coin = c.get("coin");
    let status = c.int("status")?;
    let ids: Option<Vec<&str>> = c
        .get("idList")
        .map(|l| l.split(',').map(str::trim).collect());
    let by_client = c.get("withdrawOrderId").is_some();
    let mut w = c.ex.world();
    let items: Vec<_> = w
        .withdrawals
        .iter()
        .filter(|x| x.account == k.account && x.created_at >= s && x.created_at <= e)
        .filter(|x| coin.map_or(true, |cn| x.currency == cn))
        .filter(|x| status.map_or(true, |st| i64::from(wire::withdrawal_status(x.state)) == st))
        .filter(|x| {
            ids.as_ref().map_or(true, |ids| {
                ids.contains(&x.uuid.simple().to_string().as_str())
            })
        })
        // The mock's withdrawals carry no client id.
        .filter(|_| !by_client)
        .map(|x| (x.created_at, wire::withdrawal(x).to_string()))
        .collect();
    Ok(newest_first(
        c,
        &mut w,
        &k.account,
        "binance-withdrawals",
        items,
        offset,
        limit,
    ))
}

/// `GET /sapi/v1/capital/deposit/hisrec`.
pub fn deposit_history(c: &Ctx<'_>) -> Result<Reply, ApiErr> {
    let k = c.key()?;
    let (s, e) = history_window(c)?;
    let (offset, limit) = offset_limit(c)?;
    let coin = c.get("coin");
    let status = c.int("status")?;
    let tx = c.get("txId");
    let mut w = c.ex.world();
    let items: Vec<_> = w
        .deposits
        .iter()
        .filter(|x| x.account == k.account && x.created_at >= s && x.created_at <= e)
        .filter(|x| coin.map_or(true, |cn| x.currency == cn))
        .filter(|_| status.map_or(true, |st| st == 1))
        .filter(|x| tx.map_or(true, |t| x.txid == t))
        .map(|x| (x.created_at, wire::deposit(x).to_string()))
        .collect();
    Ok(newest_first(
        c,
        &mut w,
        &k.account,
        "binance-deposits",
        items,
        offset,
        limit,
    ))
}

/// `GET /sapi/v1/capital/withdraw/address/list`: the allowlisted addresses.
pub fn withdraw_addresses(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let w = c.ex.world();
    Ok(Value::Array(
        w.addresses
            .iter()
            .filter(|a| a.account == k.account)
            .map(|a| {
                json!({"address": a.address, "addressTag": "", "coin": a.currency, "name": "",
                    "network": a.net_type, "origin": "", "originType": "others", "whiteStatus": true})
            })
            .collect(),
    ))
}

/// `DELETE /sapi/v1/sub-account/subAccountApi`: a master account's key deletes a key of one
/// of its sub-accounts, named by the sub-account's email (`-1002` for any other account's).
pub fn delete_sub_account_key(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let caller = c.key()?.account.clone();
    let email = c
        .get("email")
        .ok_or_else(|| errors::mandatory("email"))?
        .to_string();
    let target = c
        .get("subAccountApiKey")
        .ok_or_else(|| errors::mandatory("subAccountApiKey"))?
        .to_string();
    let mut w = c.ex.world();
    let sub = w
        .accounts
        .iter()
        .find(|(_, a)| a.email == email && a.master.as_deref() == Some(caller.as_str()))
        .map(|(name, _)| name.clone())
        .ok_or_else(errors::not_authorized)?;
    if w.keys.get(&target).map(|k| k.account.as_str()) != Some(sub.as_str()) {
        return Err(errors::not_authorized());
    }
    w.revoke_key(&target, c.now);
    Ok(json!({}))
}
