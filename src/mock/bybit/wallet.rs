//! Bybit's account, asset and key endpoints over the venue: the unified wallet balance,
//! account info, coins and chains, withdrawal and deposit records (windows under 30 days,
//! newest first, cursor pages), cancelling a pending withdrawal, the withdrawal address
//! book, and the calling key's own settings: `query-api`, `update-api` and `delete-api`.
//!
//! Bybit's rule for the last two: the key changes or deletes **itself**, and only when it
//! holds a transfer permission (`AccountTransfer`, `SubMemberTransfer`) or `Withdraw`, and
//! only a master account's key (10005 otherwise). A deleted key is refused with 10003 from
//! the next request on. `update-api` may make the key read-only (`readOnly=1` drops every
//! write permission, so the key can then neither trade nor delete itself), narrow its
//! permissions (never add `Withdraw`) or bind it to IPs (`ips`, comma-separated; `*`
//! unbinds).

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::Duration;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::routes::Ctx;
use super::trade::{page, window, Listed};
use super::wire::{self, ms};
use super::SCOPES;
use crate::mock::venue::dec;
use crate::mock::venue::keys::{KeyRec, Permission};
use crate::mock::venue::transfers;

/// The permission families of `query-api`, with the native scopes the mock knows in each.
const FAMILIES: &[(&str, &[&str])] = &[
    ("ContractTrade", &[]),
    ("Spot", &["SpotTrade"]),
    (
        "Wallet",
        &["AccountTransfer", "SubMemberTransfer", "Withdraw"],
    ),
    ("Options", &[]),
    ("Derivatives", &[]),
    ("CopyTrading", &[]),
    ("BlockTrade", &[]),
    ("Exchange", &[]),
    ("NFT", &[]),
    ("Affiliate", &[]),
    ("Earn", &[]),
];

/// The classes that write (a read-only key holds none).
const WRITES: [Permission; 4] = [
    Permission::Trade,
    Permission::Withdraw,
    Permission::Transfer,
    Permission::Deposit,
];

/// A stable user id for an account.
pub fn uid(account: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(account.as_bytes());
    1_000_000 + u64::from_be_bytes(d[..8].try_into().unwrap_or_default()) % 900_000_000
}

/// `GET /v5/account/wallet-balance?accountType=UNIFIED`: every coin with a balance, or the
/// coins named in `coin`.
pub fn wallet_balance(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let key = c.key()?;
    match c.get("accountType") {
        Some("UNIFIED") => {}
        None => return Err(errors::params("params error: accountType is required")),
        Some(_) => return Err(errors::params("accountType only support UNIFIED.")),
    }
    let wanted: Option<Vec<&str>> = c.get("coin").map(|s| s.split(',').map(str::trim).collect());
    let w = c.ex.world();
    let empty = Default::default();
    let acct = w.accounts.get(&key.account).unwrap_or(&empty);
    let mut total = Decimal::ZERO;
    let mut coins = Vec::new();
    for (coin, b) in &acct.balances {
        let wallet = b.balance + b.locked;
        let listed = match &wanted {
            Some(list) => list.contains(&coin.as_str()),
            None => !wallet.is_zero(),
        };
        if !listed {
            continue;
        }
        let price = if coin
            == &c
                .ex
                .markets
                .list
                .first()
                .map(|m| m.market.quote.clone())
                .unwrap_or_default()
        {
            Decimal::ONE
        } else {
            c.ex.markets
                .by_base(coin)
                .map(|m| c.ex.markets.ref_price(&m.market.symbol, c.now))
                .unwrap_or(Decimal::ZERO)
        };
        let usd = (wallet * price).round_dp(8);
        total += usd;
        coins.push(
            json!({"coin": coin, "equity": dec(wallet), "usdValue": dec(usd),
            "walletBalance": dec(wallet), "locked": dec(b.locked), "spotHedgingQty": "0",
            "borrowAmount": "0", "accruedInterest": "0", "totalOrderIM": "0",
            "totalPositionIM": "0", "totalPositionMM": "0", "unrealisedPnl": "0",
            "cumRealisedPnl": "0", "bonus": "0", "marginCollateral": true,
            "collateralSwitch": true, "spotBorrow": "0", "availableToWithdraw": "",
            "availableToBorrow": "", "free": ""}),
        );
    }
    let t = dec(total.round_dp(8));
    Ok(
        json!({"list": [{"accountType": "UNIFIED", "totalEquity": t, "totalWalletBalance": t,
        "totalMarginBalance": t, "totalAvailableBalance": t, "totalPerpUPL": "0",
        "totalInitialMargin": "0", "totalMaintenanceMargin": "0", "accountIMRate": "0",
        "accountMMRate": "0", "accountLTV": "0", "coin": coins}]}),
    )
}

/// `GET /v5/account/info`: a unified trading account (status 6: UTA 2.0).
pub fn account_info(c: &Ctx<'_>) -> Value {
    json!({"unifiedMarginStatus": 6, "marginMode": "REGULAR_MARGIN", "isMasterTrader": false,
        "spotHedgingStatus": "OFF", "updatedTime": wire::ms_s(c.now), "dcpStatus": "OFF",
        "timeWindow": 10, "smpGroup": 0})
}

/// `GET /v5/asset/coin/query-info`: the venue's assets, each on its scenario networks.
pub fn coin_info(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    c.key()?;
    let mut coins: BTreeSet<String> =
        c.ex.markets
            .list
            .iter()
            .flat_map(|m| [m.market.base.clone(), m.market.quote.clone()])
            .collect();
    if let Some(only) = c.get("coin") {
        coins.retain(|x| x == only);
    }
    let rows: Vec<Value> = coins
        .into_iter()
        .map(|coin| {
            json!({"name": coin, "coin": coin, "remainAmount": "10000000", "chains": [{
                "chain": coin, "chainType": coin, "confirmation": "1", "withdrawFee": "0",
                "depositMin": "0", "withdrawMin": "0", "minAccuracy": "8", "chainDeposit": "1",
                "chainWithdraw": "1", "withdrawPercentageFee": "0", "contractAddress": "",
                "safeConfirmNumber": "1", "withdrawMax": "-1"}]})
        })
        .collect();
    Ok(json!({"rows": rows}))
}

/// The key as `query-api` and `update-api` show it.
fn key_json(c: &Ctx<'_>, k: &KeyRec) -> Value {
    let mut perms = serde_json::Map::new();
    for (family, names) in FAMILIES {
        let held: Vec<&str> = names.iter().copied().filter(|n| k.has_scope(n)).collect();
        perms.insert(family.to_string(), json!(held));
    }
    let read_only = !WRITES.iter().any(|p| k.can(*p));
    let ips: Vec<String> = if k.allowed_ips.is_empty() {
        vec!["*".into()]
    } else {
        k.allowed_ips.iter().map(|i| i.to_string()).collect()
    };
    let master =
        c.ex.world()
            .accounts
            .get(&k.account)
            .map_or(true, |a| a.master.is_none());
    let days_left = (k.expire_at - c.now).num_days().max(0);
    let bound = !k.allowed_ips.is_empty();
    let id = uid(&k.access_key);
    json!({"id": id.to_string(), "note": k.label, "apiKey": k.access_key,
        "readOnly": i32::from(read_only), "secret": "", "permissions": perms, "ips": ips,
        "type": 1, "deadlineDay": if bound { -1 } else { days_left },
        "expiredAt": if bound { String::new() } else { k.expire_at.format("%Y-%m-%dT%H:%M:%SZ").to_string() },
        "createdAt": k.created_at().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "unified": 0, "uta": 1, "userID": uid(&k.account), "inviterID": 0,
        "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "",
        "isMaster": master, "parentUid": "0", "kycLevel": "LEVEL_1", "kycRegion": ""})
}

/// `GET /v5/user/query-api`: the calling key.
pub fn query_api(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    Ok(key_json(c, k))
}

/// Bybit's rule for a key managing itself: a master account's key holding a transfer or
/// withdrawal permission (10005 otherwise).
fn may_manage_itself(c: &Ctx<'_>, k: &KeyRec) -> Result<(), ApiErr> {
    let master =
        c.ex.world()
            .accounts
            .get(&k.account)
            .map_or(true, |a| a.master.is_none());
    if master && (k.can(Permission::Transfer) || k.can(Permission::Withdraw)) {
        Ok(())
    } else {
        Err(errors::permission())
    }
}

/// `POST /v5/user/delete-api`: the calling key deletes itself.
pub fn delete_api(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    may_manage_itself(c, &k)?;
    c.ex.world().revoke_key(&k.access_key, c.now);
    Ok(json!({}))
}

/// The `ips` of `update-api`: a comma-separated string (or an array); `*` unbinds.
fn parse_ips(v: &Value) -> Result<Vec<IpAddr>, ApiErr> {
    let items: Vec<String> = match v {
        Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| errors::bad_param("ips"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(errors::bad_param("ips")),
    };
    if items.iter().any(|x| x == "*") {
        return Ok(Vec::new());
    }
    items
        .iter()
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().map_err(|_| errors::bad_param("ips")))
        .collect::<Result<Vec<IpAddr>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(errors::bad_param("ips"))
            } else {
                Ok(v)
            }
        })
}

/// `POST /v5/user/update-api`: the calling key changes itself (read-only, narrower
/// permissions, IP binding).
pub fn update_api(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    may_manage_itself(c, &k)?;
    let read_only = match c.get("readOnly") {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(errors::bad_param("readOnly")),
    };
    let ips = match c.body.get("ips") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_ips(v)?),
    };
    let scopes: Option<Vec<String>> = match c.body.get("permissions") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let mut out = Vec::new();
            for (family, names) in m {
                let known = FAMILIES
                    .iter()
                    .find(|(f, _)| f == family)
                    .ok_or_else(|| errors::bad_param("permissions"))?
                    .1;
                let Value::Array(names) = names else {
                    return Err(errors::bad_param("permissions"));
                };
                for n in names {
                    let n = n.as_str().ok_or_else(|| errors::bad_param("permissions"))?;
                    // Unknown names of a known family are products the mock does not serve.
                    if known.contains(&n) && (n != "Withdraw" || k.has_scope("Withdraw")) {
                        out.push(n.to_string());
                    }
                }
            }
            Some(out)
        }
        Some(_) => return Err(errors::bad_param("permissions")),
    };
    let mut w = c.ex.world();
    let rec = w
        .keys
        .get_mut(&k.access_key)
        .ok_or_else(errors::invalid_key)?;
    if let Some(s) = scopes {
        rec.scopes = s;
    }
    if read_only {
        rec.scopes.clear();
    }
    if scopes_changed(read_only, c) {
        let keep_read = rec.can(Permission::Read);
        rec.permissions = rec
            .scopes
            .iter()
            .filter_map(|s| SCOPES.iter().find(|(n, _)| n == s).map(|(_, p)| *p))
            .collect();
        if keep_read {
            rec.permissions.insert(Permission::Read);
        }
    }
    if let Some(ips) = ips {
        rec.allowed_ips = ips;
    }
    let updated = rec.clone();
    drop(w);
    let full = key_json(c, &updated);
    Ok(
        json!({"id": full["id"], "note": full["note"], "apiKey": full["apiKey"],
        "readOnly": full["readOnly"], "secret": "", "permissions": full["permissions"],
        "ips": full["ips"]}),
    )
}

fn scopes_changed(read_only: bool, c: &Ctx<'_>) -> bool {
    read_only || c.body.get("permissions").is_some_and(|v| !v.is_null())
}

/// The window of the asset records: under 30 days, the last 30 days by default.
fn thirty_days(
    c: &Ctx<'_>,
) -> Result<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>), ApiErr> {
    window(c, Duration::days(30), || {
        errors::params(
            "params error: the time range between startTime and endTime cannot exceed 30 days",
        )
    })
}

/// `GET /v5/asset/withdraw/query-record` (master account keys; on-chain withdrawals).
pub fn withdrawals(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    let (s, e) = thirty_days(c)?;
    let limit = c.limit(50, 50)?;
    let coin = c.get("coin");
    let id = c.get("withdrawID");
    let tx = c.get("txID");
    if c.get("withdrawType").is_some_and(|t| t == "1") {
        return Ok(json!({"rows": [], "nextPageCursor": ""}));
    }
    let items: Vec<_> = {
        let w = c.ex.world();
        w.withdrawals
            .iter()
            .enumerate()
            .filter(|(_, x)| x.account == k.account && x.created_at >= s && x.created_at <= e)
            .filter(|(_, x)| coin.map_or(true, |cn| x.currency == cn))
            .filter(|(i, _)| id.map_or(true, |id| wire::withdraw_id(*i) == id))
            .filter(|(_, x)| tx.map_or(true, |t| x.txid.as_deref() == Some(t)))
            .map(|(i, x)| {
                (
                    (ms(x.created_at), i as u64),
                    Listed::Text(wire::withdrawal(i, x).to_string()),
                )
            })
            .collect()
    };
    let (rows, next) = page(c, &k.account, "bybit-withdrawals", items, limit)?;
    Ok(json!({"rows": rows, "nextPageCursor": next}))
}

/// `GET /v5/asset/deposit/query-record`.
pub fn deposits(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    let (s, e) = thirty_days(c)?;
    let limit = c.limit(50, 50)?;
    let coin = c.get("coin");
    let tx = c.get("txID");
    let items: Vec<_> = {
        let w = c.ex.world();
        w.deposits
            .iter()
            .enumerate()
            .filter(|(_, x)| x.account == k.account && x.created_at >= s && x.created_at <= e)
            .filter(|(_, x)| coin.map_or(true, |cn| x.currency == cn))
            .filter(|(_, x)| tx.map_or(true, |t| x.txid == t))
            .map(|(i, x)| {
                (
                    (ms(x.created_at), i as u64),
                    Listed::Text(wire::deposit(i, x).to_string()),
                )
            })
            .collect()
    };
    let (rows, next) = page(c, &k.account, "bybit-deposits", items, limit)?;
    Ok(json!({"rows": rows, "nextPageCursor": next}))
}

/// `POST /v5/asset/withdraw/cancel`: `{"status": 1}` when the pending withdrawal was
/// cancelled, `{"status": 0}` when it is no longer pending; 131002 for an unknown id.
pub fn withdraw_cancel(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    let id = c
        .get("id")
        .ok_or_else(|| errors::params("params error: id is required"))?;
    let mut w = c.ex.world();
    let pos = wire::withdraw_pos(id, w.withdrawals.len())
        .filter(|p| w.withdrawals[*p].account == k.account)
        .ok_or_else(errors::no_withdrawal)?;
    let uuid = w.withdrawals[pos].uuid.to_string();
    match transfers::cancel_withdrawal(&mut w, &k.account, &uuid) {
        Ok(_) => Ok(json!({"status": 1})),
        Err(transfers::TransferError::NotCancellable) => Ok(json!({"status": 0})),
        Err(_) => Err(errors::no_withdrawal()),
    }
}

/// `GET /v5/asset/withdraw/query-address`: the account's address book (needs `Withdraw`).
pub fn withdraw_addresses(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let coin = c.get("coin");
    let w = c.ex.world();
    let rows: Vec<Value> = w
        .addresses
        .iter()
        .filter(|a| a.account == k.account && coin.map_or(true, |cn| a.currency == cn))
        .map(|a| {
            json!({"coin": a.currency, "chain": a.net_type, "address": a.address, "tag": "",
                "remark": "", "status": 0, "addressType": 0, "verified": 1,
                "createdAt": a.registered_at.timestamp().to_string()})
        })
        .collect();
    Ok(json!({"rows": rows, "nextPageCursor": ""}))
}

/// `POST /v5/asset/withdraw/create`: a withdrawal to an address in the account's address
/// book, pending until cancelled (`{"id": withdrawId}`). 131001 when the coin's balance
/// cannot cover the amount and the fee, 10001 for an address outside the book.
pub fn withdraw_create(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    let need = |n: &str| {
        c.get(n)
            .map(str::to_string)
            .ok_or_else(|| errors::params(format!("params error: {n} is required")))
    };
    let coin = need("coin")?;
    let chain = need("chain")?;
    let address = need("address")?;
    let amount: Decimal = need("amount")?
        .parse()
        .ok()
        .filter(|a: &Decimal| *a > Decimal::ZERO)
        .ok_or_else(|| errors::bad_param("amount"))?;
    need("timestamp")?;
    let req = transfers::WithdrawalRequest {
        currency: coin,
        net_type: chain,
        address,
        amount,
    };
    let mut w = c.ex.world();
    let pos = transfers::request_withdrawal(&mut w, &k.account, &k.access_key, req, c.now)
        .map_err(|e| match e {
            transfers::TransferError::InsufficientFunds => errors::err(
                131001,
                "the available balance is not sufficient to cover the handling fee",
            ),
            _ => errors::params("params error: the address is not in the address book"),
        })?;
    Ok(json!({"id": wire::withdraw_id(pos)}))
}
