//! Withdrawals in neutral terms: only to an address on the account's allowlist, the amount
//! and a flat fee locked until the withdrawal ends, cancellable while it waits. A withdrawal
//! made with the leaked key lands in the ground truth. Façades check the key's permission and
//! name the errors.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::mock::venue::state::{Withdrawal, WithdrawalState, World};

/// The fee of every withdrawal, in the withdrawn asset.
pub const WITHDRAWAL_FEE: Decimal = Decimal::from_parts(5, 0, 0, false, 4);

/// Why a withdrawal or its cancellation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("the address is not on the withdrawal allowlist")]
    NotAllowlisted,
    #[error("insufficient funds for the amount and the fee")]
    InsufficientFunds,
    #[error("no such withdrawal")]
    NotFound,
    #[error("the withdrawal can no longer be cancelled")]
    NotCancellable,
}

/// What a withdrawal asks for.
#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    pub currency: String,
    pub net_type: String,
    pub address: String,
    pub amount: Decimal,
}

/// Requests a withdrawal from `account` (with `access_key`); returns its position in
/// `w.withdrawals`.
pub fn request_withdrawal(
    w: &mut World,
    account: &str,
    access_key: &str,
    req: WithdrawalRequest,
    now: DateTime<Utc>,
) -> Result<usize, TransferError> {
    if !w
        .addresses
        .iter()
        .any(|a| a.account == account && a.currency == req.currency && a.address == req.address)
    {
        return Err(TransferError::NotAllowlisted);
    }
    let fee = WITHDRAWAL_FEE;
    let b = w
        .accounts
        .entry(account.to_string())
        .or_default()
        .bal(&req.currency);
    if b.balance < req.amount + fee {
        return Err(TransferError::InsufficientFunds);
    }
    b.balance -= req.amount + fee;
    b.locked += req.amount + fee;
    let x = Withdrawal {
        uuid: Uuid::new_v4(),
        account: account.to_string(),
        currency: req.currency,
        net_type: req.net_type,
        address: req.address,
        txid: None,
        state: WithdrawalState::Waiting,
        created_at: now,
        done_at: None,
        amount: req.amount,
        fee,
    };
    if w.truth.leaked_access_key == access_key {
        w.truth.attacker_withdrawal_uuids.push(x.uuid);
    }
    w.withdrawals.push(x);
    Ok(w.withdrawals.len() - 1)
}

/// Cancels a waiting withdrawal of `account` by its uuid (as written, lower case) and
/// releases what it locked; returns its position.
pub fn cancel_withdrawal(w: &mut World, account: &str, uuid: &str) -> Result<usize, TransferError> {
    let i = w
        .withdrawals
        .iter()
        .position(|x| x.account == account && x.uuid.to_string() == uuid)
        .ok_or(TransferError::NotFound)?;
    if w.withdrawals[i].state != WithdrawalState::Waiting {
        return Err(TransferError::NotCancellable);
    }
    w.withdrawals[i].state = WithdrawalState::Cancelled;
    let (cur, amt) = (
        w.withdrawals[i].currency.clone(),
        w.withdrawals[i].amount + w.withdrawals[i].fee,
    );
    let b = w.accounts.entry(account.to_string()).or_default().bal(&cur);
    b.locked -= amt;
    b.balance += amt;
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::state::CoinAddress;

    #[test]
    fn withdrawals_lock_record_and_release() {
        let now: DateTime<Utc> = "2026-11-20T18:30:00Z".parse().unwrap();
        let mut w = World::default();
        w.truth.leaked_access_key = "leaked".into();
        w.accounts
            .entry("v".into())
            .or_default()
            .bal("COIN")
            .balance = Decimal::ONE;
        w.addresses.push(CoinAddress {
            account: "v".into(),
            currency: "COIN".into(),
            net_type: "COIN".into(),
            address: "addr".into(),
            registered_at: now,
        });
        let req = |address: &str, amount: i64| WithdrawalRequest {
            currency: "COIN".into(),
            net_type: "COIN".into(),
            address: address.into(),
            amount: Decimal::new(amount, 1),
        };
        assert_eq!(
            request_withdrawal(&mut w, "v", "leaked", req("elsewhere", 1), now),
            Err(TransferError::NotAllowlisted)
        );
        assert_eq!(
            request_withdrawal(&mut w, "v", "leaked", req("addr", 10), now),
            Err(TransferError::InsufficientFunds),
            "the fee does not fit"
        );
        let i = request_withdrawal(&mut w, "v", "leaked", req("addr", 5), now).unwrap();
        let b = &w.accounts["v"].balances["COIN"];
        assert_eq!(b.locked, Decimal::new(5, 1) + WITHDRAWAL_FEE);
        assert_eq!(w.truth.attacker_withdrawal_uuids, [w.withdrawals[i].uuid]);
        request_withdrawal(&mut w, "v", "other key", req("addr", 1), now).unwrap();
        assert_eq!(
            w.truth.attacker_withdrawal_uuids.len(),
            1,
            "only the leaked key's"
        );
        let u = w.withdrawals[i].uuid.to_string();
        assert_eq!(
            cancel_withdrawal(&mut w, "other account", &u),
            Err(TransferError::NotFound)
        );
        assert_eq!(cancel_withdrawal(&mut w, "v", &u), Ok(i));
        assert_eq!(
            cancel_withdrawal(&mut w, "v", &u),
            Err(TransferError::NotCancellable)
        );
        let b = &w.accounts["v"].balances["COIN"];
        assert_eq!(b.locked, Decimal::new(1, 1) + WITHDRAWAL_FEE);
        assert_eq!(b.balance + b.locked, Decimal::ONE);
    }
}
