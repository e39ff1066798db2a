//! Upbit's raw responses decoded for the offline rebuild ([`crate::exchange::replay`]): which
//! endpoint holds which data, parsed with the same [`super::wire`] functions the live client
//! uses, so a bundle re-analyzed later yields exactly what the run saw.

use crate::exchange::replay::{provenance, DecodeContext, DecodeError, Decoded};
use crate::exchange::TransferKind;
use crate::rundir::RawSidecar;

use super::wire;

/// Decodes one successful raw answer by its endpoint; endpoints the investigation does not
/// read decode to [`Decoded::Nothing`].
pub fn decode_raw(
    side: &RawSidecar,
    body: &[u8],
    _ctx: &DecodeContext<'_>,
) -> Result<Decoded, DecodeError> {
    let prov = || Some(provenance(side));
    Ok(match (side.method.as_str(), side.endpoint.as_str()) {
        ("GET", "/v1/accounts") => Decoded::Balances(wire::parse_balances(body)?),
        ("GET", "/v1/api_keys") => Decoded::Keys(wire::parse_api_keys(body, &side.key)?),
        ("GET", "/v1/orders/open" | "/v1/orders/closed" | "/v1/orders/uuids") => {
            Decoded::Orders(wire::parse_orders(body, prov())?)
        }
        ("GET" | "DELETE", "/v1/order") => {
            let (o, fills) = wire::parse_order(body, prov())?;
            Decoded::Order(Box::new(o), fills)
        }
        ("GET", "/v1/withdraws") => Decoded::Transfers(
            TransferKind::Withdrawal,
            wire::parse_transfers(body, TransferKind::Withdrawal, prov())?,
        ),
        ("GET", "/v1/withdraw") | ("DELETE", "/v1/withdraws/coin") => Decoded::Transfers(
            TransferKind::Withdrawal,
            vec![wire::parse_transfer(
                body,
                TransferKind::Withdrawal,
                prov(),
            )?],
        ),
        ("GET", "/v1/deposits") => Decoded::Transfers(
            TransferKind::Deposit,
            wire::parse_transfers(body, TransferKind::Deposit, prov())?,
        ),
        ("GET", "/v1/deposit") => Decoded::Transfers(
            TransferKind::Deposit,
            vec![wire::parse_transfer(body, TransferKind::Deposit, prov())?],
        ),
        ("GET", "/v1/withdraws/coin_addresses") => {
            Decoded::WithdrawalAddresses(wire::parse_withdrawal_addresses(body)?)
        }
        ("GET", ep) if ep.starts_with("/v1/candles/minutes/") => {
            Decoded::Candles(wire::parse_candles(body)?)
        }
        ("GET", "/v1/market/all") => Decoded::Markets(wire::parse_markets(body)?),
        _ => Decoded::Nothing,
    })
}

#[cfg(test)]
mod tests {
    use crate::exchange::replay::{rebuild as replay, RebuildOptions, ReplayError};
    use crate::exchange::{History, Provenance};
    use crate::rundir::RunDir;
    use std::path::Path;

    fn rebuild(dir: &Path) -> Result<History, ReplayError> {
        rebuild_with(dir, RebuildOptions::default())
    }

    fn rebuild_with(dir: &Path, opts: RebuildOptions) -> Result<History, ReplayError> {
        replay(&super::super::DESCRIPTOR, dir, opts)
    }

    fn rec(rd: &RunDir, method: &str, path: &str, status: u16, body: &str) -> Provenance {
        rd.record_test_answer(method, path, status, body.as_bytes())
    }

    const LISTED: &str = r#"[{"uuid":"u1","side":"ask","ord_type":"limit","price":"10","state":"wait","market":"KRW-ETH","created_at":"2024-03-01T09:00:00+09:00","volume":"2","remaining_volume":"2","paid_fee":"0","executed_volume":"0","executed_funds":"0","trades_count":0,"identifier":"bot-7"}]"#;
    const DETAIL: &str = r#"{"uuid":"u1","side":"ask","ord_type":"limit","price":"10","state":"done","market":"KRW-ETH","created_at":"2024-03-01T09:00:00+09:00","volume":"2","remaining_volume":"0","paid_fee":"0.01","executed_volume":"2","trades_count":1,
        "trades":[{"market":"KRW-ETH","uuid":"t1","price":"10","volume":"2","funds":"20","side":"ask","created_at":"2024-03-01T09:00:05+09:00"}]}"#;

    /// Regression: the bundle's key list came from the last `GET /v1/api_keys`, read after the
    /// leaked key was deleted, so the leaked key itself was missing from `keys.json`.
    #[test]
    fn the_key_list_from_before_the_deletion_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        let before = r#"[{"access_key":"abcdEFGHIJKLMNOPwxyz","expire_at":"2027-01-01T00:00:00+09:00"},{"access_key":"rrrrEFGHIJKLMNOPrrrr","expire_at":"2027-02-01T00:00:00+09:00"}]"#;
        let after =
            r#"[{"access_key":"rrrrEFGHIJKLMNOPrrrr","expire_at":"2027-02-01T00:00:00+09:00"}]"#;
        rec(&rd, "GET", "/v1/api_keys", 200, before);
        rec(&rd, "GET", "/v1/api_keys", 200, after);
        let input = rebuild(rd.path()).unwrap();
        let masked: Vec<&str> = input
            .keys
            .iter()
            .map(|k| k.access_key_masked.as_str())
            .collect();
        assert_eq!(masked, ["abcd...wxyz", "rrrr...rrrr"]);
        assert!(input.keys[0].is_current);
        assert!(!input.keys[1].is_current);
    }

    #[test]
    fn later_records_win_and_details_contribute_fills() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        rec(&rd, "GET", "/v1/orders/open", 200, LISTED);
        rec(
            &rd,
            "GET",
            "/v1/order",
            401,
            r#"{"error":{"name":"invalid_access_key","message":"x"}}"#,
        );
        let p = rec(&rd, "GET", "/v1/order", 200, DETAIL);
        let input = rebuild(rd.path()).unwrap();
        assert_eq!(input.orders.len(), 1);
        let o = &input.orders[0];
        assert_eq!(o.state, crate::exchange::OrderState::Done);
        assert_eq!(
            o.client_id.as_deref(),
            Some("bot-7"),
            "kept from the listing"
        );
        assert_eq!(o.provenance.as_ref().unwrap().raw_file, p.raw_file);
        assert_eq!(input.fills.len(), 1);
        assert_eq!(input.fills[0].order_id, "u1");
        assert_eq!(input.key_masked, "abcd...wxyz");
    }

    /// A hash the writer vouches for (it hashed the bytes as it wrote them) stands only while
    /// the body is the file written: a body replaced since is hashed again and named.
    #[test]
    fn a_vouched_hash_stands_only_for_the_file_as_written() {
        use crate::report::manifest::Written;
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        let p = rec(&rd, "GET", "/v1/orders/open", 200, "[]");
        let abs = rd.path().join(&p.raw_file);
        let mut vouched = Written::default();
        vouched
            .add(&p.raw_file, &abs, p.raw_sha256.clone())
            .unwrap();
        let (desc, opts) = (&super::super::DESCRIPTOR, RebuildOptions::default());
        let again = |v: &Written| crate::exchange::replay::rebuild_with(desc, rd.path(), opts, v);
        assert!(again(&vouched).is_ok());
        // Replaced by a new file of the same size.
        let new = abs.with_extension("new");
        std::fs::write(&new, b"{}").unwrap();
        std::fs::rename(&new, &abs).unwrap();
        let e = again(&vouched).unwrap_err().to_string();
        assert!(e.contains(&p.raw_file) && e.contains("SHA-256"), "{e}");
    }

    #[test]
    fn a_modified_body_is_named() {
        let t = tempfile::tempdir().unwrap();
        let rd = RunDir::create(&t.path().join("run")).unwrap();
        let p = rec(&rd, "GET", "/v1/orders/open", 200, LISTED);
        std::fs::write(rd.path().join(&p.raw_file), "[]").unwrap();
        let e = rebuild(rd.path()).unwrap_err().to_string();
        assert!(e.contains(&p.raw_file) && e.contains("SHA-256"), "{e}");
        let r = rebuild_with(rd.path(), RebuildOptions { skip_corrupt: true }).unwrap();
        assert_eq!(r.skipped[0].file, p.raw_file);
        assert!(r.orders.is_empty());
    }
}
