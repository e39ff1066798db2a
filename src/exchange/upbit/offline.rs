//! Offline rebuild: normalized data from a run directory's `raw/` files, with no network.
//!
//! `respond analyze` and `respond verify` must reach the same data as the live run, so this
//! reads the verbatim bodies the client recorded (each `*.body` with its `*.meta.json`
//! sidecar), checks each body against the hash in its sidecar, and parses it with the same
//! [`super::wire`] functions the live client uses. Error answers (status outside 2xx, or no
//! answer at all) are not data and are skipped. A body that is truncated, corrupt or does not
//! match its hash is an error naming the file, unless the caller asks to skip and note it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::analysis::AnalysisInput;
use crate::exchange::{Fill, KeyHistory, Order, Provenance, Transfer, TransferKind};
use crate::rundir::RawSidecar;

use super::client::KST_OFFSET_SECS;
use super::wire::{self, WireError};

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {detail} (pass the skip option to leave it out and note it)")]
    Corrupt { file: String, detail: String },
}

/// How strict the rebuild is.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildOptions {
    /// Skip a truncated/corrupt/mismatched body (noting it) instead of failing.
    pub skip_corrupt: bool,
}

/// A raw file left out of the rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRaw {
    pub file: String,
    pub reason: String,
}

/// The rebuilt input and what was left out.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub input: AnalysisInput,
    pub skipped: Vec<SkippedRaw>,
}

/// Strict rebuild: any corrupt body fails with its file name.
pub fn rebuild(run_dir: &Path) -> Result<AnalysisInput, OfflineError> {
    rebuild_with(run_dir, RebuildOptions::default()).map(|r| r.input)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OfflineError + '_ {
    move |source| OfflineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every sidecar under `raw/`, in recording order.
fn sidecars(run_dir: &Path) -> Result<Vec<(PathBuf, RawSidecar)>, OfflineError> {
    let raw = run_dir.join("raw");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&raw) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(&raw)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io(&raw))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".meta.json") || name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let side: RawSidecar =
            serde_json::from_slice(&bytes).map_err(|e| OfflineError::Corrupt {
                file: format!("raw/{name}"),
                detail: format!(
                    "unreadable sidecar: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        out.push((path, side));
    }
    out.sort_by_key(|(_, s)| s.seq);
    Ok(out)
}

#[derive(Default)]
struct Acc {
    input: AnalysisInput,
    orders: BTreeMap<String, (u64, Order)>,
    fills: BTreeMap<String, Fill>,
    withdrawals: BTreeMap<String, Transfer>,
    deposits: BTreeMap<String, Transfer>,
    accounts_seen: usize,
}

impl Acc {
    fn order(&mut self, seq: u64, o: Order) {
        match self.orders.get_mut(&o.id) {
            Some((s, old)) if *s <= seq => {
                // The later record wins; fields only some endpoints send are kept.
                let mut o = o;
                if o.executed_funds.is_none() {
                    o.executed_funds = old.executed_funds;
                }
                if o.client_id.is_none() {
                    o.client_id = old.client_id.clone();
                }
                *s = seq;
                *old = o;
            }
            Some(_) => {}
            None => {
                self.orders.insert(o.id.clone(), (seq, o));
            }
        }
    }

    fn transfers(&mut self, kind: TransferKind, ts: Vec<Transfer>) {
        let map = match kind {
            TransferKind::Withdrawal => &mut self.withdrawals,
            TransferKind::Deposit => &mut self.deposits,
        };
        for t in ts {
            map.insert(t.id.clone(), t);
        }
    }

    fn apply(&mut self, side: &RawSidecar, body: &[u8]) -> Result<(), WireError> {
        let prov = Some(Provenance {
            raw_file: side.body_file.clone(),
            raw_sha256: side.body_sha256.clone(),
        });
        let seq = side.seq;
        match (side.method.as_str(), side.endpoint.as_str()) {
            ("GET", "/v1/accounts") => {
                let b = wire::parse_balances(body)?;
                self.accounts_seen += 1;
                if self.accounts_seen == 1 {
                    self.input.balances_start = b;
                } else {
                    self.input.balances_end = b;
                }
            }
            ("GET", "/v1/api_keys") => {
                // Preserve first: the key list from before the leaked key was deleted is the
                // evidence; later lists (read with another key, or after the deletion) only add
                // keys not seen before. "Current" means the key under investigation.
                for k in wire::parse_api_keys(body, &side.key)? {
                    if !self
                        .input
                        .keys
                        .iter()
                        .any(|e| e.access_key_masked == k.access_key_masked)
                    {
                        self.input.keys.push(k);
                    }
                }
                let investigated = self.input.key_masked.clone();
                for k in &mut self.input.keys {
                    k.is_current = k.access_key_masked == investigated;
                }
            }
            ("GET", "/v1/orders/open" | "/v1/orders/closed" | "/v1/orders/uuids") => {
                for o in wire::parse_orders(body, prov)? {
                    self.order(seq, o);
                }
            }
            ("GET" | "DELETE", "/v1/order") => {
                let (o, fills) = wire::parse_order(body, prov)?;
                self.order(seq, o);
                for f in fills {
                    self.fills.insert(f.id.clone(), f);
                }
            }
            ("GET", "/v1/withdraws") => {
                let ts = wire::parse_transfers(body, TransferKind::Withdrawal, prov)?;
                self.transfers(TransferKind::Withdrawal, ts);
            }
            ("GET", "/v1/withdraw") | ("DELETE", "/v1/withdraws/coin") => {
                let t = wire::parse_transfer(body, TransferKind::Withdrawal, prov)?;
                self.transfers(TransferKind::Withdrawal, vec![t]);
            }
            ("GET", "/v1/deposits") => {
                let ts = wire::parse_transfers(body, TransferKind::Deposit, prov)?;
                self.transfers(TransferKind::Deposit, ts);
            }
            ("GET", "/v1/deposit") => {
                let t = wire::parse_transfer(body, TransferKind::Deposit, prov)?;
                self.transfers(TransferKind::Deposit, vec![t]);
            }
            ("GET", "/v1/withdraws/coin_addresses") => {
                self.input.withdrawal_addresses = wire::parse_withdrawal_addresses(body)?;
            }
            ("GET", ep) if ep.starts_with("/v1/candles/minutes/") => {
                for c in wire::parse_candles(body)? {
                    let list = self.input.candles.entry(c.market.clone()).or_default();
                    list.retain(|x| x.start != c.start);
                    list.push(c);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self) -> AnalysisInput {
        let mut orders: Vec<Order> = self.orders.into_values().map(|(_, o)| o).collect();
        orders.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let mut fills: Vec<Fill> = self.fills.into_values().collect();
        fills.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let newest_first = |mut v: Vec<Transfer>| {
            v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
            v
        };
        self.input.withdrawals = newest_first(self.withdrawals.into_values().collect());
        self.input.deposits = newest_first(self.deposits.into_values().collect());
        for list in self.input.candles.values_mut() {
            list.sort_by_key(|c| std::cmp::Reverse(c.start));
        }
        self.input.orders = orders;
        self.input.fills = fills;
        self.input
    }
}

/// Rebuilds the normalized data of an Upbit run from `run_dir/raw/`.
pub fn rebuild_with(run_dir: &Path, opts: RebuildOptions) -> Result<Rebuilt, OfflineError> {
    let mut acc = Acc::default();
    acc.input.exchange = "upbit".into();
    acc.input.local_utc_offset_secs = KST_OFFSET_SECS;
    let mut skipped = Vec::new();
    let all = sidecars(run_dir)?;
    for (i, (_meta_path, side)) in all.iter().enumerate() {
        if acc.input.key_masked.is_empty() && !side.key.is_empty() {
            acc.input.key_masked = side.key.clone();
        }
        if !(200..300).contains(&side.status) {
            continue;
        }
        let body_path = crate::fsutil::safe_join(run_dir, &side.body_file).map_err(|e| {
            OfflineError::Corrupt {
                file: side.body_file.clone(),
                detail: format!("sidecar names an unsafe body path: {e}"),
            }
        })?;
        let body = std::fs::read(&body_path).map_err(io(&body_path))?;
        if crate::fsutil::sha256_hex(&body) != side.body_sha256 {
            let detail =
                "body does not match the SHA-256 in its sidecar (modified or damaged)".to_string();
            if !opts.skip_corrupt {
                return Err(OfflineError::Corrupt {
                    file: side.body_file.clone(),
                    detail,
                });
            }
            skipped.push(SkippedRaw {
                file: side.body_file.clone(),
                reason: detail,
            });
            continue;
        }
        let problem = {
            acc.apply(side, &body).err().map(|e| {
                if e.truncated {
                    format!("truncated body: {e}")
                } else {
                    format!(
                        "unexpected content for {} {}: {e}",
                        side.method, side.endpoint
                    )
                }
            })
        };
        if let Some(detail) = problem {
            // The live client retried reads it could not parse: a later good answer to the
            // same request supersedes this one.
            let retry = all[i + 1..].iter().find(|(_, later)| {
                later.method == side.method
                    && later.endpoint == side.endpoint
                    && later.params == side.params
                    && (200..300).contains(&later.status)
            });
            if let Some((_, later)) = retry {
                skipped.push(SkippedRaw {
                    file: side.body_file.clone(),
                    reason: format!("{detail}; superseded by the retry {}", later.body_file),
                });
            } else if opts.skip_corrupt {
                skipped.push(SkippedRaw {
                    file: side.body_file.clone(),
                    reason: detail,
                });
            } else {
                return Err(OfflineError::Corrupt {
                    file: side.body_file.clone(),
                    detail,
                });
            }
        }
    }
    Ok(Rebuilt {
        input: acc.finish(),
        skipped,
    })
}

/// What `run_dir/raw/` shows about one key (`key`, or the key of the first signed request):
/// its first accepted answer, and its first refusal as dead (see
/// [`crate::exchange::KeyHistory`]). Unreadable or damaged files are passed over: a run killed
/// mid-write leaves one, and the verdict only needs the answers that are intact. `None` when
/// no signed request was recorded and no key was named.
pub fn key_history(run_dir: &Path, key: Option<&str>) -> Option<KeyHistory> {
    let raw = run_dir.join("raw");
    let mut sides: Vec<RawSidecar> = std::fs::read_dir(&raw)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".meta.json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    sides.sort_by_key(|s: &RawSidecar| s.seq);
    let key = match key {
        Some(k) => k.to_string(),
        None => sides.iter().find(|s| !s.key.is_empty())?.key.clone(),
    };
    let mut h = KeyHistory {
        key: key.clone(),
        ..KeyHistory::default()
    };
    let at = |s: &RawSidecar| {
        chrono::DateTime::parse_from_rfc3339(&s.responded_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    for side in sides.iter().filter(|s| s.key == key) {
        let Some(t) = at(side) else { continue };
        if (200..300).contains(&side.status) {
            if h.accepted.as_ref().map_or(true, |(a, _)| t < *a) {
                h.accepted = Some((t, side.body_file.clone()));
            }
            continue;
        }
        let Ok(body_path) = crate::fsutil::safe_join(run_dir, &side.body_file) else {
            continue;
        };
        let Ok(body) = std::fs::read(&body_path) else {
            continue;
        };
        if crate::fsutil::sha256_hex(&body) != side.body_sha256 {
            continue;
        }
        let Some((name, _)) = wire::parse_error_envelope(&body) else {
            continue;
        };
        if super::errors::proves_key_accepted(&name) {
            if h.accepted.as_ref().map_or(true, |(a, _)| t < *a) {
                h.accepted = Some((t, side.body_file.clone()));
            }
        } else if matches!(name.as_str(), "invalid_access_key" | "expired_access_key")
            && h.refused.as_ref().map_or(true, |(r, _, _)| t < *r)
        {
            h.refused = Some((t, name, side.body_file.clone()));
        }
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::{RawExchange, RunDir};
    use chrono::Utc;

    fn rec(rd: &RunDir, method: &str, path: &str, status: u16, body: &str) -> Provenance {
        let now = Utc::now();
        rd.record_raw(RawExchange {
            method,
            path,
            params: &[],
            status,
            requested_at: now,
            responded_at: now,
            key_masked: "abcd…wxyz",
            headers: &[],
            body: body.as_bytes(),
        })
        .unwrap()
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
        assert_eq!(masked, ["abcd…wxyz", "rrrr…rrrr"]);
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
        assert_eq!(input.key_masked, "abcd…wxyz");
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
        assert!(r.input.orders.is_empty());
    }
}
