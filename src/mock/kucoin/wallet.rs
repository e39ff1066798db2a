//! KuCoin's account, key and wallet endpoints over the venue: balances
//! (`GET /api/v1/accounts`), the calling key's settings (`GET /api/v1/user/api-key`),
//! withdrawal and deposit records (page-numbered, newest first), a withdrawal to an
//! allowlisted address and cancelling a `PROCESSING` one, and a master account's key deleting a key of one of its sub-accounts
//! (`DELETE /api/v1/sub/api-key`).
//!
//! Balances: the venue keeps one balance per coin, shown as the `trade` account (or
//! `trade_hf` when that type is asked for, as ccxt does for HF users); `main` and the margin
//! types are empty. A sub-account is named (`subName`) by its account name in the scenario.
//! Deleting its key needs the sub key's passphrase; from the next request on the key is
//! refused with 400003.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::errors::{self, ApiErr};
use super::routes::Ctx;
use super::wire::{self, ms};
use super::SCOPES;
use crate::mock::venue::dec;
use crate::mock::venue::keys::KeyRec;
use crate::mock::venue::transfers;

/// A stable user id for an account.
pub fn uid(account: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(account.as_bytes());
    100_000_000 + u64::from_be_bytes(d[..8].try_into().unwrap_or_default()) % 900_000_000
}

/// An allowlisted IP as KuCoin shows it: the middle masked (`203.**.154`).
pub fn mask_ip(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.**.{}", o[0], o[3])
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            format!("{:x}:**:{:x}", s[0], s[7])
        }
    }
}

/// The comma list of a key's permissions, `General` first, in KuCoin's order.
pub fn permission_list(k: &KeyRec) -> String {
    let mut names: Vec<&str> = vec!["General"];
    for (n, _) in SCOPES.iter().skip(1) {
        if k.has_scope(n) {
            names.push(n);
        }
    }
    names.join(",")
}

/// `GET /api/v1/user/api-key`: the calling key.
pub fn api_key(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let master =
        c.ex.world()
            .accounts
            .get(&k.account)
            .and_then(|a| a.master.clone());
    let ips: Vec<String> = k.allowed_ips.iter().map(mask_ip).collect();
    let mut v = json!({"remark": k.label, "apiKey": k.access_key, "apiVersion": 2,
        "permission": permission_list(k), "ipWhitelist": ips.join(","),
        "createdAt": ms(k.created_at()), "uid": uid(&k.account), "isMaster": master.is_none()});
    if master.is_some() {
        v["subName"] = json!(k.account);
    }
    Ok(v)
}

/// `GET /api/v1/accounts` (`currency`, `type` filter).
pub fn accounts(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let kind = match c.get("type") {
        None | Some("trade") => "trade",
        Some("trade_hf") => "trade_hf",
        Some("main" | "margin" | "isolated" | "margin_v2" | "isolated_v2" | "option") => {
            return Ok(json!([]))
        }
        Some(_) => return Err(errors::bad_param("type")),
    };
    let only = c.get("currency");
    let w = c.ex.world();
    let Some(acct) = w.accounts.get(&k.account) else {
        return Ok(json!([]));
    };
    let rows: Vec<Value> = acct
        .balances
        .iter()
        .filter(|(cur, _)| only.map_or(true, |o| o == cur.as_str()))
        .map(|(cur, b)| {
            let id = uid(&format!("{}/{kind}/{cur}", k.account));
            json!({"id": id.to_string(), "currency": cur, "type": kind,
                "balance": dec(b.balance + b.locked), "available": dec(b.balance),
                "holds": dec(b.locked)})
        })
        .collect();
    Ok(Value::Array(rows))
}

/// `currentPage` and `pageSize` (10–500, default 50) of the wallet records.
fn page_args(c: &Ctx<'_>) -> Result<(usize, usize), ApiErr> {
    Ok((
        c.bounded("currentPage", 1, 1, 1_000_000)?,
        c.bounded("pageSize", 50, 10, 500)?,
    ))
}

/// The common filters of the wallet records: `currency`, `startAt`, `endAt` (no window
/// limit), newest first.
fn wallet_rows<T>(
    c: &Ctx<'_>,
    rows: &[T],
    account: impl Fn(&T) -> &str,
    currency: impl Fn(&T) -> &str,
    at: impl Fn(&T) -> chrono::DateTime<chrono::Utc>,
    extra: impl Fn(&T) -> bool,
    render: impl Fn(usize, &T) -> Value,
) -> Result<Value, ApiErr> {
    let k = c.key()?;
    let (page, size) = page_args(c)?;
    let only = c.get("currency");
    let (s, e) = (c.time("startAt")?, c.time("endAt")?);
    let mut items: Vec<(i64, usize, Value)> = rows
        .iter()
        .enumerate()
        .filter(|(_, x)| account(x) == k.account && only.map_or(true, |o| currency(x) == o))
        .filter(|(_, x)| s.map_or(true, |s| at(x) >= s) && e.map_or(true, |e| at(x) <= e))
        .filter(|(_, x)| extra(x))
        .map(|(i, x)| (ms(at(x)), i, render(i, x)))
        .collect();
    items.sort_by_key(|(t, i, _)| std::cmp::Reverse((*t, *i)));
    Ok(wire::paged(
        items.into_iter().map(|(_, _, v)| v).collect(),
        page,
        size,
    ))
}

/// `GET /api/v1/withdrawals` (`status` filters).
pub fn withdrawals(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let status = c.get("status").map(str::to_string);
    let w = c.ex.world();
    wallet_rows(
        c,
        &w.withdrawals,
        |x| &x.account,
        |x| &x.currency,
        |x| x.created_at,
        |x| {
            status
                .as_deref()
                .map_or(true, |s| wire::withdrawal_status(x.state) == s)
        },
        wire::withdrawal,
    )
}

/// `GET /api/v1/deposits` (every venue deposit is `SUCCESS`).
pub fn deposits(c: &Ctx<'_>) -> Result<Value, ApiErr> {
    let status = c.get("status").map(str::to_string);
    let w = c.ex.world();
    wallet_rows(
        c,
        &w.deposits,
        |x| &x.account,
        |x| &x.currency,
        |x| x.created_at,
        |_| status.as_deref().map_or(true, |s| s == "SUCCESS"),
        wire::deposit,
    )
}

/// `POST /api/v3/withdrawals`: a withdrawal (`withdrawType` `ADDRESS`) of `amount` to
/// `toAddress`, which must be on the account's withdrawal allowlist (400100 otherwise);
/// `PROCESSING` until cancelled (`{"withdrawalId"}`). 200004 when the balance cannot cover
/// the amount and the fee.
pub fn withdrawal_create(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    let need = |n: &str| {
        c.get(n)
            .map(str::to_string)
            .ok_or_else(|| errors::required(n))
    };
    let currency = need("currency")?;
    let address = need("toAddress")?;
    let amount: rust_decimal::Decimal = need("amount")?
        .parse()
        .ok()
        .filter(|a: &rust_decimal::Decimal| a.is_sign_positive() && !a.is_zero())
        .ok_or_else(|| errors::bad_param("amount"))?;
    if c.get("withdrawType").is_some_and(|t| t != "ADDRESS") {
        return Err(errors::params(
            "only withdrawType ADDRESS is offered by this mock",
        ));
    }
    let mut w = c.ex.world();
    let net_type = w
        .addresses
        .iter()
        .find(|a| a.account == k.account && a.currency == currency && a.address == address)
        .map(|a| a.net_type.clone())
        .unwrap_or_else(|| currency.clone());
    let req = transfers::WithdrawalRequest {
        currency,
        net_type,
        address,
        amount,
    };
    let pos = transfers::request_withdrawal(&mut w, &k.account, &k.access_key, req, c.now)
        .map_err(|e| match e {
            transfers::TransferError::InsufficientFunds => errors::insufficient(),
            _ => errors::params("the address is not on the withdrawal allowlist"),
        })?;
    Ok(json!({"withdrawalId": wire::withdrawal_id(pos)}))
}

/// `DELETE /api/v1/withdrawals/{id}`: cancels a `PROCESSING` withdrawal of the caller's
/// (`data` null); 400100 for any other.
pub fn withdrawal_cancel(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let k = c.key()?.clone();
    let id = c.id.unwrap_or_default();
    let mut w = c.ex.world();
    let pos = wire::withdrawal_pos(id, w.withdrawals.len())
        .filter(|p| w.withdrawals[*p].account == k.account)
        .ok_or_else(errors::withdrawal_not_cancellable)?;
    let uuid = w.withdrawals[pos].uuid.to_string();
    transfers::cancel_withdrawal(&mut w, &k.account, &uuid)
        .map_err(|_| errors::withdrawal_not_cancellable())?;
    Ok(Value::Null)
}

/// `DELETE /api/v1/sub/api-key?apiKey=&subName=&passphrase=`: a master account's key deletes
/// a key of its sub-account `subName`, proving the sub key's passphrase.
pub fn delete_sub_key(c: &mut Ctx<'_>) -> Result<Value, ApiErr> {
    let caller = c.key()?.account.clone();
    let need = |n: &str| {
        c.get(n)
            .map(str::to_string)
            .ok_or_else(|| errors::required(n))
    };
    let target = need("apiKey")?;
    let sub = need("subName")?;
    let pass = need("passphrase")?;
    let mut w = c.ex.world();
    let is_sub = w
        .accounts
        .get(&sub)
        .is_some_and(|a| a.master.as_deref() == Some(caller.as_str()));
    if !is_sub {
        return Err(errors::params("sub account does not exist or is not yours"));
    }
    let key = w
        .keys
        .get(&target)
        .filter(|k| k.account == sub && !k.is_revoked())
        .ok_or_else(|| errors::params("apiKey does not exist"))?;
    if key.passphrase.as_deref() != Some(pass.as_str()) {
        return Err(errors::params("passphrase error"));
    }
    w.revoke_key(&target, c.now);
    Ok(json!({"subName": sub, "apiKey": target}))
}
