//! The adapter's pieces over the documented samples and vectors (`docs/exchanges/coinbase.md`),
//! and the client against a tiny Coinbase stub over real loopback HTTP: the JWT as a server
//! checks it (the stub verifies with ring on its own), plain-text 401s, the limit headers,
//! cursors, the batch-cancel rounds of at most 100 ids, transfers per account, and the offline
//! rebuild of what the client recorded.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{TimeZone, Utc};

use super::auth::{self, KeySigner};
use super::client::{CoinbaseClient, CoinbaseConfig};
use super::{errors, wire};
use crate::exchange::replay::DecodeContext;
use crate::exchange::{
    ClosedOrdersQuery, Error, ErrorKind, Exchange, FillsQuery, OrderState, OrderType, Side,
    TransferKind, TransferStatus, Window,
};
use crate::rundir::RawSidecar;
use crate::secret::Secret;

const ED_KEY_ID: &str = "respond-test-coinbase-key-id";
const ED_SECRET: &str =
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8prLrhQbzK8LIuGpTTTQvHNh5SbQv+EsiXlLyTIpZt1w==";
const ED_TOKEN: &str = "eyJhbGciOiJFZERTQSIsImtpZCI6InJlc3BvbmQtdGVzdC1jb2luYmFzZS1rZXktaWQiLCJub25jZSI6IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwidHlwIjoiSldUIn0.eyJzdWIiOiJyZXNwb25kLXRlc3QtY29pbmJhc2Uta2V5LWlkIiwiaXNzIjoiY2RwIiwibmJmIjoxNzM1Nzc2MDAwLCJleHAiOjE3MzU3NzYxMjAsInVyaSI6IkdFVCBhcGkuY29pbmJhc2UuY29tL2FwaS92My9icm9rZXJhZ2UvYWNjb3VudHMifQ.z7O1hGoE8S8MmHeR1_p89wEopWuvInbjgb_f_zu4EcQHVCTKI7GdqXTfpTTLFxtcR-jMGya8kUJUFE5ZPqieCA";
const EC_KEY_NAME: &str =
    "organizations/00000000-0000-0000-0000-000000000000/apiKeys/11111111-1111-1111-1111-111111111111";
const EC_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2choAoGCCqGSM49
AwEHoUQDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7Yfps5mliLmDyn7Z5A/4QCLi8
maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==
-----END EC PRIVATE KEY-----
";
/// The RFC 6979 token of the V2 vector (signature bytes differ from ours; it must verify).
const EC_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6Im9yZ2FuaXphdGlvbnMvMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwL2FwaUtleXMvMTExMTExMTEtMTExMS0xMTExLTExMTEtMTExMTExMTExMTExIiwibm9uY2UiOiIwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcmdhbml6YXRpb25zLzAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMC9hcGlLZXlzLzExMTExMTExLTExMTEtMTExMS0xMTExLTExMTExMTExMTExMSIsImlzcyI6ImNkcCIsIm5iZiI6MTczNTc3NjAwMCwiZXhwIjoxNzM1Nzc2MTIwLCJ1cmkiOiJHRVQgYXBpLmNvaW5iYXNlLmNvbS9hcGkvdjMvYnJva2VyYWdlL2FjY291bnRzIn0.7EziBeAuTCqYB05GTyE3Cc3QAJ1Of7-xhq6S9SoesAG4QJ0sMlKKX_sWWr5PvLGGhqGh8UZt0YDTnqFPjUVH3w";
const EC_PUBLIC_X: &str = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6";
const EC_PUBLIC_Y: &str = "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
const ZERO_NONCE: &str = "00000000000000000000000000000000";
const URI: &str = "GET api.coinbase.com/api/v3/brokerage/accounts";

/// The same EC key as PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`).
fn ec_pkcs8_pem() -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            EC_PEM
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    // PrivateKeyInfo { 0, { ecPublicKey, prime256v1 }, OCTET STRING sec1 }
    let mut alg = vec![0x30, 0x13];
    alg.extend([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    alg.extend([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend(alg);
    body.push(0x04);
    body.push(der.len() as u8);
    body.extend(&der);
    let mut out = vec![0x30, 0x81, body.len() as u8];
    out.extend(body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(out);
    let lines: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// Verifies a compact JWS with a public key, the way the stub (and Coinbase) does: ES256 over
/// the raw `r ‖ s`, EdDSA over the raw signature.
fn verifies(token: &str, alg: &str, public: &[u8]) -> bool {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
        "ES256" => &ring::signature::ECDSA_P256_SHA256_FIXED,
        _ => &ring::signature::ED25519,
    };
    ring::signature::UnparsedPublicKey::new(algorithm, public)
        .verify(input.as_bytes(), &sig)
        .is_ok()
}

fn ec_public() -> Vec<u8> {
    let mut p = vec![4u8];
    p.extend(hex::decode(EC_PUBLIC_X).unwrap());
    p.extend(hex::decode(EC_PUBLIC_Y).unwrap());
    p
}

fn json_part(token: &str, i: usize) -> serde_json::Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

// ---------------------------------------------------------------- signing

#[test]
fn ed25519_matches_the_documented_token_exactly() {
    let k = KeySigner::from_secret(&Secret::new(ED_SECRET)).unwrap();
    assert_eq!(k.alg(), "EdDSA");
    assert_eq!(
        hex::encode(k.public_key()),
        "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
    );
    assert_eq!(
        auth::token(&k, ED_KEY_ID, URI, 1735776000, ZERO_NONCE),
        ED_TOKEN
    );
    // The seed alone (32 bytes) is the same key.
    let seed = base64::engine::general_purpose::STANDARD.encode(
        &base64::engine::general_purpose::STANDARD
            .decode(ED_SECRET)
            .unwrap()[..32],
    );
    let k2 = KeySigner::from_secret(&Secret::new(seed)).unwrap();
    assert_eq!(k2.public_key(), k.public_key());
    // A seed whose public half was altered is refused, not signed with.
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(ED_SECRET)
        .unwrap();
    raw[40] ^= 1;
    let bad = base64::engine::general_purpose::STANDARD.encode(raw);
    assert_eq!(
        KeySigner::from_secret(&Secret::new(bad)).unwrap_err(),
        auth::KeyError::Ed25519Mismatch
    );
}

#[test]
fn es256_tokens_verify_with_the_documented_public_key() {
    // The documented RFC 6979 token verifies with our verifier: it checks what Coinbase checks.
    assert!(verifies(EC_TOKEN, "ES256", &ec_public()));
    let escaped = EC_PEM.trim().replace('\n', "\\n");
    for secret in [EC_PEM.to_string(), ec_pkcs8_pem(), escaped] {
        let k = KeySigner::from_secret(&Secret::new(secret.clone())).unwrap();
        assert_eq!(k.alg(), "ES256");
        assert_eq!(k.public_key(), ec_public());
        let t = auth::token(&k, EC_KEY_NAME, URI, 1735776000, ZERO_NONCE);
        // Same header and claims as the vector, byte for byte; a signature of our own.
        let (ours, _) = t.rsplit_once('.').unwrap();
        let (theirs, _) = EC_TOKEN.rsplit_once('.').unwrap();
        assert_eq!(ours, theirs);
        assert!(verifies(&t, "ES256", &ec_public()));
        // A flipped bit does not verify.
        let mut bad = t.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert!(!verifies(
            std::str::from_utf8(&bad).unwrap(),
            "ES256",
            &ec_public()
        ));
    }
    // Fresh tokens carry a fresh nonce, two minutes of life and the request's uri.
    let k = KeySigner::from_secret(&Secret::new(EC_PEM)).unwrap();
    let h = auth::headers(
        &k,
        EC_KEY_NAME,
        "POST 127.0.0.1:9/api/v3/brokerage/orders/batch_cancel",
        1000,
    );
    let bearer = h[0].1.strip_prefix("Bearer ").unwrap();
    let header = json_part(bearer, 0);
    let claims = json_part(bearer, 1);
    assert_eq!(header["kid"], EC_KEY_NAME);
    assert_eq!(header["nonce"].as_str().unwrap().len(), 64);
    assert_eq!(claims["sub"], EC_KEY_NAME);
    assert_eq!(claims["iss"], "cdp");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        120
    );
    assert_eq!(
        claims["uri"],
        "POST 127.0.0.1:9/api/v3/brokerage/orders/batch_cancel"
    );
    assert_eq!(
        auth::uri_claim("GET", "http://127.0.0.1:8080", "/api/v3/brokerage/time"),
        "GET 127.0.0.1:8080/api/v3/brokerage/time"
    );
    assert_eq!(
        auth::uri_claim(
            "GET",
            "https://api.coinbase.com",
            "/v2/accounts/x/transactions"
        ),
        "GET api.coinbase.com/v2/accounts/x/transactions"
    );
}

#[test]
fn bad_secrets_are_refused_without_showing_them() {
    for (secret, want) in [
        ("not a key at all 0001", "neither a PEM"),
        ("-----BEGIN EC PRIVATE KEY-----\n%%%%\n-----END EC PRIVATE KEY-----", "not valid base64"),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIMmvqdhFunUWa1whV2ex1pNOUMPbNuibEnuKYisSD2ch\n-----END EC PRIVATE KEY-----",
            "not an EC P-256",
        ),
    ] {
        let e = KeySigner::from_secret(&Secret::new(secret)).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(want), "{m}");
        assert!(!m.contains("MHcC") && !m.contains("0001"), "{m}");
    }
    // The body lines of a PEM are redacted wherever they appear, not only the whole value.
    let _ = KeySigner::from_secret(&Secret::new(EC_PEM)).unwrap();
    let line = EC_PEM.lines().nth(2).unwrap();
    let text = format!("x {line} y");
    let r = crate::secret::redact(&text);
    assert!(!r.contains(line), "{r}");
}

// ---------------------------------------------------------------- samples

pub(super) fn order_json(id: &str, status: &str, config: &str, side: &str) -> String {
    format!(
        r#"{{"order_id":"{id}","product_id":"BTC-USD","user_id":"2222-000000-000000",
 "order_configuration":{config},
 "side":"{side}","client_order_id":"grid-{id}","status":"{status}","time_in_force":"GOOD_UNTIL_CANCELLED",
 "created_time":"2025-01-01T23:50:00.123456Z","completion_percentage":"40","filled_size":"0.004","average_filled_price":"95000",
 "fee":"","number_of_fills":"1","filled_value":"380","pending_cancel":false,"size_in_quote":false,"total_fees":"2.28",
 "size_inclusive_of_fees":false,"total_value_after_fees":"382.28","trigger_status":"INVALID_ORDER_TYPE","order_type":"",
 "reject_reason":"REJECT_REASON_UNSPECIFIED","settled":false,"product_type":"SPOT","reject_message":"","cancel_message":"",
 "order_placement_source":"RETAIL_ADVANCED","outstanding_hold_amount":"570.00","is_liquidation":false,"last_fill_time":"2025-01-01T23:51:10Z",
 "leverage":"","margin_type":"","retail_portfolio_id":"8a1d4c7e-3b1f-4e2a-9c33-0d5b8e7f1a22","originating_order_id":"","attached_order_id":""}}"#
    )
}

const LIMIT_CFG: &str =
    r#"{"limit_limit_gtc":{"base_size":"0.01","limit_price":"95000.00","post_only":false}}"#;
const MARKET_CFG: &str = r#"{"market_market_ioc":{"quote_size":"100"}}"#;

pub(super) fn orders_page(orders: &[String], cursor: &str) -> String {
    format!(
        r#"{{"orders":[{}],"sequence":"0","has_next":{},"cursor":"{cursor}"}}"#,
        orders.join(","),
        !cursor.is_empty()
    )
}

const KEY_PERMS: &str = r#"{"can_view":true,"can_trade":true,"can_transfer":false,"portfolio_uuid":"8a1d4c7e-3b1f-4e2a-9c33-0d5b8e7f1a22","portfolio_type":"DEFAULT"}"#;
const ACCOUNTS: &str = r#"{"accounts":[{"uuid":"8bfc20d7-f7c6-4422-bf07-8243ca4169fe","name":"BTC Wallet","currency":"BTC",
 "available_balance":{"value":"0.12000000","currency":"BTC"},"default":true,"active":true,
 "created_at":"2021-05-31T09:59:59Z","updated_at":"2025-01-02T00:00:00Z","deleted_at":null,"type":"ACCOUNT_TYPE_CRYPTO",
 "ready":true,"hold":{"value":"0.00500000","currency":"BTC"},"retail_portfolio_id":"8a1d4c7e-3b1f-4e2a-9c33-0d5b8e7f1a22"},
 {"uuid":"u-usd","name":"USD Wallet","currency":"USD","available_balance":{"value":"0","currency":"USD"},"hold":{"value":"0","currency":"USD"},"type":"FIAT"}],
 "has_next":false,"cursor":"","size":2}"#;
const FILLS_SAMPLE: &str = r#"{"fills":[{"entry_id":"22222-2222222-22222222","trade_id":"1111-11111-111111","order_id":"9bc1eb3b-5b46-4b71-9628-ae2ed0cca75b",
 "trade_time":"2025-01-01T23:51:10Z","trade_type":"FILL","price":"95000.00","size":"0.004","commission":"2.28","product_id":"BTC-USD",
 "sequence_timestamp":"2025-01-01T23:51:10.123456Z","liquidity_indicator":"MAKER","size_in_quote":false,"user_id":"3333-333333-3333333",
 "side":"BUY","retail_portfolio_id":""},
 {"entry_id":"e2","trade_id":"t2","order_id":"o2","trade_time":"2025-01-01T23:52:00Z","trade_type":"FILL","price":"1.0001","size":"50","commission":"0.1",
 "product_id":"USDC-USD","size_in_quote":true,"side":"SELL"}],"cursor":""}"#;

pub(super) fn tx_json(id: &str, kind: &str, amount: &str, at: &str, to: &str) -> String {
    let to = if to.is_empty() {
        String::new()
    } else {
        format!(r#","to":{{"resource":"bitcoin_address","address":"{to}","currency":"BTC"}}"#)
    };
    format!(
        r#"{{"id":"{id}","type":"{kind}","status":"completed","amount":{{"amount":"{amount}","currency":"BTC"}},
 "native_amount":{{"amount":"-9521.80","currency":"USD"}},"created_at":"{at}","updated_at":"{at}","resource":"transaction",
 "network":{{"status":"confirmed","hash":"5f3ce8a1","transaction_fee":{{"amount":"0.00001","currency":"BTC"}}}}{to}}}"#
    )
}

pub(super) fn tx_page(rows: &[String], next: Option<&str>) -> String {
    let next = next.map(|n| format!("\"{n}\"")).unwrap_or("null".into());
    format!(
        r#"{{"pagination":{{"ending_before":null,"starting_after":null,"next_starting_after":{next},"limit":100,"order":"desc"}},"data":[{}]}}"#,
        rows.join(",")
    )
}

#[test]
fn samples_parse() {
    let at = wire::parse_server_time(
        br#"{"iso":"2025-01-02T00:00:00Z","epochSeconds":"1735776000","epochMillis":"1735776000123"}"#,
    )
    .unwrap();
    assert_eq!(at.timestamp_millis(), 1735776000123);
    let at =
        wire::parse_server_time(br#"{"iso":"2025-01-02T00:00:00Z","epochSeconds":1735776000}"#)
            .unwrap();
    assert_eq!(at.timestamp(), 1735776000);

    let k = wire::parse_key_permissions(KEY_PERMS.as_bytes()).unwrap();
    assert_eq!(k.held(), ["can_view", "can_trade"]);
    assert_eq!(k.portfolio_type.as_deref(), Some("DEFAULT"));

    let acc = wire::parse_accounts(ACCOUNTS.as_bytes()).unwrap();
    assert_eq!(acc.next, None);
    let b = wire::balances(&acc.rows);
    assert_eq!(b.len(), 1, "empty accounts are left out");
    assert_eq!(
        (
            b[0].currency.as_str(),
            b[0].free.to_string(),
            b[0].locked.to_string()
        ),
        ("BTC", "0.12000000".into(), "0.00500000".into())
    );

    let page = wire::parse_orders(
        orders_page(
            &[
                order_json("a", "OPEN", LIMIT_CFG, "BUY"),
                order_json("b", "CANCELLED", MARKET_CFG, "SELL"),
            ],
            "c2",
        )
        .as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(page.next.as_deref(), Some("c2"));
    let (a, m) = (&page.rows[0], &page.rows[1]);
    assert_eq!(
        (a.market.base.as_str(), a.market.quote.as_str()),
        ("BTC", "USD")
    );
    assert_eq!(
        (a.order_type, a.state, a.side),
        (OrderType::Limit, OrderState::Open, Side::Buy)
    );
    assert_eq!(a.price.unwrap().to_string(), "95000.00");
    assert_eq!(a.volume.unwrap().to_string(), "0.01");
    assert_eq!(a.remaining_volume.unwrap().to_string(), "0.006");
    assert_eq!(a.client_id.as_deref(), Some("grid-a"));
    assert_eq!(a.trades_count, 1);
    assert_eq!(a.native_type.as_str(), "limit_limit_gtc");
    assert_eq!(
        (m.order_type, m.state),
        (OrderType::Market, OrderState::Cancelled)
    );
    assert_eq!(m.quote_amount.unwrap().to_string(), "100");
    assert_eq!(m.price, None);
    for (s, st) in [
        ("PENDING", OrderState::Open),
        ("QUEUED", OrderState::Open),
        ("CANCEL_QUEUED", OrderState::Open),
        ("FILLED", OrderState::Done),
        ("EXPIRED", OrderState::Cancelled),
        ("FAILED", OrderState::Cancelled),
        ("UNKNOWN_ORDER_STATUS", OrderState::Other),
    ] {
        assert_eq!(wire::order_state(s), st, "{s}");
    }
    // `has_next: false` ends the list whatever cursor is sent.
    let last = wire::parse_orders(br#"{"orders":[],"has_next":false,"cursor":"x"}"#, None).unwrap();
    assert_eq!(last.next, None);
    let one = wire::parse_order(
        format!(
            r#"{{"order":{}}}"#,
            order_json("z", "FILLED", LIMIT_CFG, "BUY")
        )
        .as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!((one.id.as_str(), one.state), ("z", OrderState::Done));

    let fills = wire::parse_fills(FILLS_SAMPLE.as_bytes(), None).unwrap();
    assert_eq!(fills.next, None);
    let f = &fills.rows[0];
    assert_eq!((f.id.as_str(), f.side), ("1111-11111-111111", Side::Buy));
    assert_eq!(f.funds.to_string(), "380.00000");
    assert_eq!(f.fee.unwrap().to_string(), "2.28");
    // A size in the quote currency becomes base volume at the fill's price.
    let q = &fills.rows[1];
    assert_eq!(q.funds.to_string(), "50");
    assert_eq!(q.volume.round_dp(4).to_string(), "49.9950");

    let cancel = wire::parse_batch_cancel(
        br#"{"results":[{"success":true,"failure_reason":"UNKNOWN_CANCEL_FAILURE_REASON","order_id":"a"},
 {"success":false,"failure_reason":"UNKNOWN_CANCEL_ORDER","order_id":"b"}]}"#,
    )
    .unwrap();
    assert!(cancel[0].success && !cancel[1].success);
    assert_eq!(
        cancel[1].failure_reason.as_deref(),
        Some("UNKNOWN_CANCEL_ORDER")
    );

    let (tx, oldest) = wire::parse_transactions(
        tx_page(
            &[
                tx_json(
                    "w1",
                    "send",
                    "-0.10000000",
                    "2025-01-02T00:05:12Z",
                    "bc1qthief",
                ),
                tx_json("d1", "send", "0.5", "2025-01-01T00:00:00Z", ""),
                tx_json("r1", "receive", "0.2", "2024-12-31T00:00:00Z", ""),
                tx_json("b1", "buy", "0.3", "2024-12-30T00:00:00Z", ""),
            ],
            Some("b1"),
        )
        .as_bytes(),
        None,
    )
    .unwrap();
    assert_eq!(tx.next.as_deref(), Some("b1"));
    assert_eq!(oldest.unwrap().to_rfc3339(), "2024-12-30T00:00:00+00:00");
    let kinds: Vec<(&str, TransferKind)> =
        tx.rows.iter().map(|t| (t.id.as_str(), t.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("w1", TransferKind::Withdrawal),
            ("d1", TransferKind::Deposit),
            ("r1", TransferKind::Deposit)
        ]
    );
    let w = &tx.rows[0];
    assert_eq!(w.amount.to_string(), "0.10000000");
    assert_eq!(w.address.as_deref(), Some("bc1qthief"));
    assert_eq!(w.status, TransferStatus::Completed);
    assert_eq!(w.txid.as_deref(), Some("5f3ce8a1"));
    assert_eq!(wire::transfer_status("pending"), TransferStatus::Pending);
    assert_eq!(wire::transfer_status("canceled"), TransferStatus::Failed);

    let products = wire::parse_products(
        br#"{"products":[{"product_id":"BTC-USD","price":"95218.00","base_increment":"0.00000001","quote_increment":"0.01","quote_min_size":"1",
 "status":"online","product_type":"SPOT","quote_currency_id":"USD","base_currency_id":"BTC","price_increment":"0.01"}],"num_products":1}"#,
    )
    .unwrap();
    assert_eq!(products[0].market.as_str(), "BTC-USD");
    assert_eq!(products[0].tick_size.unwrap().to_string(), "0.01");
    let m = products[0].market.clone();
    let c = wire::parse_candles(
        br#"{"candles":[{"start":"1735775940","low":"95080.00","high":"95240.00","open":"95100.00","close":"95218.00","volume":"12.345"}]}"#,
        &m,
    )
    .unwrap();
    assert_eq!(c[0].start.timestamp(), 1735775940);
    assert_eq!(c[0].close.to_string(), "95218.00");
}

fn side(status: u16, path: &str) -> RawSidecar {
    RawSidecar {
        seq: 1,
        method: "GET".into(),
        endpoint: path.into(),
        params: vec![],
        status,
        requested_at: String::new(),
        responded_at: String::new(),
        key: "orga...1111".into(),
        body_file: String::new(),
        body_sha256: String::new(),
        headers: vec![],
        credentials: String::new(),
    }
}

#[test]
fn errors_map_to_kinds() {
    let k = |status: u16, body: &str| {
        errors::error_of(&side(status, "/api/v3/brokerage/accounts"), body.as_bytes())
    };
    assert_eq!(
        k(401, "Unauthorized"),
        Some(("unauthorized".into(), ErrorKind::KeyInvalid))
    );
    assert_eq!(
        k(401, "Unauthorized\n"),
        Some(("unauthorized".into(), ErrorKind::KeyInvalid))
    );
    assert_eq!(
        k(
            403,
            r#"{"error":"PERMISSION_DENIED","error_details":"Missing required scopes","message":"Missing required scopes"}"#
        ),
        Some(("PERMISSION_DENIED".into(), ErrorKind::PermissionDenied))
    );
    assert_eq!(
        k(
            400,
            r#"{"error":"INVALID_ARGUMENT","error_details":"","message":"order with this orderID was not found"}"#
        ),
        Some(("INVALID_ARGUMENT".into(), ErrorKind::NotFound))
    );
    assert_eq!(
        k(404, r#"{"error":"NOT_FOUND","message":"order not found"}"#),
        Some(("NOT_FOUND".into(), ErrorKind::NotFound))
    );
    assert_eq!(
        k(
            400,
            r#"{"error":"INVALID_ARGUMENT","message":"bad product"}"#
        ),
        Some(("INVALID_ARGUMENT".into(), ErrorKind::InvalidRequest))
    );
    assert_eq!(
        k(
            401,
            r#"{"errors":[{"id":"expired_token","message":"The access token expired"}]}"#
        ),
        Some(("expired_token".into(), ErrorKind::ClockSkew))
    );
    assert_eq!(
        k(
            401,
            r#"{"errors":[{"id":"invalid_token","message":"The access token is invalid"}]}"#
        ),
        Some(("invalid_token".into(), ErrorKind::KeyInvalid))
    );
    assert_eq!(
        k(
            403,
            r#"{"errors":[{"id":"invalid_scope","message":"Invalid scope"}]}"#
        ),
        Some(("invalid_scope".into(), ErrorKind::PermissionDenied))
    );
    assert_eq!(
        k(500, r#"{"error":"INTERNAL","message":"x"}"#),
        Some(("INTERNAL".into(), ErrorKind::ServerError))
    );
    assert_eq!(
        k(503, r#"{"error":"SOMETHING_NEW","message":"x"}"#),
        Some(("SOMETHING_NEW".into(), ErrorKind::ServerError))
    );
    // A proxy's page is no Coinbase error; a success is none either.
    assert_eq!(k(502, "<html>bad gateway</html>"), None);
    assert_eq!(k(200, KEY_PERMS), None);
    assert!(
        errors::never_accepted_advice(ErrorKind::KeyInvalid, "unauthorized")
            .contains("COINBASE_ACCESS_KEY")
    );
    let _ = DecodeContext::empty();
}

// ---------------------------------------------------------------- the client against a stub

/// One request as the stub saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: String,
    headers: HeaderMap,
}

impl Seen {
    fn params(&self, k: &str) -> Vec<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
            .collect()
    }
    fn param(&self, k: &str) -> Option<String> {
        self.params(k).into_iter().next()
    }
    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

type Reply = (u16, Vec<(&'static str, String)>, String);
type Route = Box<dyn FnMut(&Seen) -> Reply + Send>;

struct Stub {
    seen: Mutex<Vec<Seen>>,
    route: Mutex<Route>,
    /// The key name and public key the stub accepts, and the nonces it saw.
    public: Vec<u8>,
    nonces: Mutex<std::collections::BTreeSet<String>>,
}

/// Checks the bearer token the way `docs/exchanges/coinbase.md` §3.2 describes it, with code of
/// its own: ES256 over `r ‖ s`, the key name as `kid` and `sub`, `iss` cdp, two minutes of life
/// around now, the request's method and path in `uri`, a nonce never seen before.
fn verify(stub: &Stub, s: &Seen) -> bool {
    let Some(token) = s
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    if !verifies(token, "ES256", &stub.public) {
        return false;
    }
    let (h, c) = (json_part(token, 0), json_part(token, 1));
    let now = Utc::now().timestamp();
    let nbf = c["nbf"].as_i64().unwrap_or(0);
    let exp = c["exp"].as_i64().unwrap_or(0);
    let uri = c["uri"].as_str().unwrap_or("");
    let (method, rest) = uri.split_once(' ').unwrap_or(("", ""));
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    let nonce = h["nonce"].as_str().unwrap_or("").to_string();
    h["alg"] == "ES256"
        && h["kid"] == EC_KEY_NAME
        && c["sub"] == EC_KEY_NAME
        && c["iss"] == "cdp"
        && nbf - 5 <= now
        && now < exp
        && exp - nbf == 120
        && method == s.method
        && path == s.path
        && !rest.starts_with("http")
        && stub.nonces.lock().unwrap().insert(nonce)
}

async fn handle(
    axum::extract::State(stub): axum::extract::State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        body,
        headers,
    };
    stub.seen.lock().unwrap().push(seen.clone());
    if seen.path == "/api/v3/brokerage/time" {
        let now = Utc::now();
        return reply(
            200,
            vec![],
            format!(
                r#"{{"iso":"{}","epochSeconds":"{}","epochMillis":"{}"}}"#,
                now.to_rfc3339(),
                now.timestamp(),
                now.timestamp_millis()
            ),
        );
    }
    if !seen.path.contains("/market/") && !verify(&stub, &seen) {
        return ("Unauthorized", 401u16).into_reply();
    }
    let (status, h, b) = (stub.route.lock().unwrap())(&seen);
    reply(status, h, b)
}

trait IntoReply {
    fn into_reply(self) -> Response;
}

impl IntoReply for (&'static str, u16) {
    fn into_reply(self) -> Response {
        let mut r = self.0.into_response();
        *r.status_mut() = axum::http::StatusCode::from_u16(self.1).unwrap();
        r
    }
}

fn reply(status: u16, headers: Vec<(&'static str, String)>, body: String) -> Response {
    let mut r = ([("content-type", "application/json")], body).into_response();
    *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

struct Running {
    url: String,
    stub: Arc<Stub>,
}

impl Running {
    fn seen(&self) -> Vec<Seen> {
        self.stub.seen.lock().unwrap().clone()
    }
    fn count(&self, method: &str, path: &str) -> usize {
        self.seen().iter().filter(|s| s.is(method, path)).count()
    }
    fn client(&self, rundir: Option<crate::rundir::RunDir>) -> CoinbaseClient {
        let mut cfg = CoinbaseConfig::new(EC_KEY_NAME, Secret::new(EC_PEM));
        cfg.base_url = Some(self.url.clone());
        cfg.retry_base_delay = std::time::Duration::from_millis(1);
        cfg.recorder = rundir;
        CoinbaseClient::new(cfg).unwrap()
    }
}

async fn stub(route: impl FnMut(&Seen) -> Reply + Send + 'static) -> Running {
    let stub = Arc::new(Stub {
        seen: Mutex::new(Vec::new()),
        route: Mutex::new(Box::new(route)),
        public: ec_public(),
        nonces: Mutex::new(Default::default()),
    });
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Running { url, stub }
}

fn ok(body: impl Into<String>) -> Reply {
    (200, vec![], body.into())
}

/// The stub's answer to a read-back by `order_ids`: those of them in `cancelled`, cancelled.
fn read_back_reply(seen: &Seen, cancelled: &[String]) -> Reply {
    let rows: Vec<String> = seen
        .params("order_ids")
        .iter()
        .filter(|id| cancelled.contains(id))
        .map(|id| order_json(id, "CANCELLED", LIMIT_CFG, "BUY"))
        .collect();
    ok(orders_page(&rows, ""))
}

/// The stub's answer to `batch_cancel`: at most 100 ids, each a success when `cancel` says it
/// cancelled it, else `INVALID_CANCEL_REQUEST`.
fn batch_cancel_reply(seen: &Seen, mut cancel: impl FnMut(&str) -> bool) -> Reply {
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    let ids = body["order_ids"].as_array().unwrap();
    assert!(ids.len() <= 100, "{} ids in one batch", ids.len());
    let results: Vec<String> = ids
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap();
            let done = cancel(id);
            let reason = if done {
                "UNKNOWN_CANCEL_FAILURE_REASON"
            } else {
                "INVALID_CANCEL_REQUEST"
            };
            format!(r#"{{"success":{done},"failure_reason":"{reason}","order_id":"{id}"}}"#)
        })
        .collect();
    ok(format!(r#"{{"results":[{}]}}"#, results.join(",")))
}

/// The stub accepts the client's tokens (signature, claims, uri, fresh nonce each time); a key
/// the stub does not know is refused with the plain-text 401, which the client reads as the key
/// refused, and a 403 as a missing permission.
#[tokio::test]
async fn tokens_verify_and_refusals_are_classified() {
    let s = stub(|seen| {
        if seen.is("GET", "/api/v3/brokerage/key_permissions") {
            ok(KEY_PERMS)
        } else {
            (
                403,
                vec![],
                r#"{"error":"PERMISSION_DENIED","error_details":"Missing required scopes","message":"Missing required scopes"}"#.into(),
            )
        }
    })
    .await;
    let c = s.client(None);
    let probe = c.probe_permissions().await.unwrap();
    let held: Vec<(&str, Option<bool>)> = probe
        .scopes
        .iter()
        .map(|p| (p.scope.as_str(), p.held))
        .collect();
    assert_eq!(
        held,
        [
            ("can_view", Some(true)),
            ("can_trade", Some(true)),
            ("can_transfer", Some(false))
        ]
    );
    assert!(!probe.critical);
    assert_eq!(probe.ip_restricted, None);
    assert!(
        probe.reasons.iter().any(|r| r.contains("8a1d4c7e")),
        "{:?}",
        probe.reasons
    );
    // Twice: every request gets its own nonce.
    c.api_keys().await.unwrap();
    assert!(c.key_accepted_at().is_some());
    let e = c.balances().await.unwrap_err();
    assert!(e.is_out_of_scope(), "{e:?}");

    // Another key name with the same private key: the stub refuses it as Coinbase does.
    let mut cfg = CoinbaseConfig::new("organizations/x/apiKeys/other", Secret::new(EC_PEM));
    cfg.base_url = Some(s.url.clone());
    let other = CoinbaseClient::new(cfg).unwrap();
    let e = other.api_keys().await.unwrap_err();
    assert!(e.refuses_key() && e.is_key_dead(), "{e:?}");
    assert_eq!(e.code(), Some("unauthorized"));
    // The JWT never reaches an error message.
    assert!(!e.to_string().contains("eyJ"));
}

/// A stub whose `key_permissions` answers `first` once, then the permissions with `headers`.
async fn permissions_after(first: Reply, headers: Vec<(&'static str, String)>) -> Running {
    let mut first = Some(first);
    stub(move |seen| {
        assert!(seen.is("GET", "/api/v3/brokerage/key_permissions"));
        first
            .take()
            .unwrap_or_else(|| (200, headers.clone(), KEY_PERMS.into()))
    })
    .await
}

/// 429 is waited out and asked again; the rate-limit headers are kept as evidence.
#[tokio::test]
async fn rate_limits_are_waited_out() {
    let s = permissions_after(
        (
            429,
            vec![("retry-after", "0".into())],
            r#"{"error":"resource_exhausted","message":"Too many requests"}"#.into(),
        ),
        vec![
            ("x-ratelimit-limit", "30".into()),
            ("x-ratelimit-remaining", "28".into()),
            ("x-ratelimit-reset", "1".into()),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
    let c = s.client(Some(rd.clone()));
    c.api_keys().await.unwrap();
    assert_eq!(s.count("GET", "/api/v3/brokerage/key_permissions"), 2);
    let sides = crate::exchange::replay::sidecars(rd.path()).unwrap();
    let last = sides.last().unwrap();
    assert!(
        last.headers
            .iter()
            .any(|(k, v)| k == "x-ratelimit-remaining" && v == "28"),
        "{:?}",
        last.headers
    );
}

/// Coinbase answers every authentication failure with the same plain 401, an expired token
/// (this machine's clock drifted since it was read) included: the clock is read again and the
/// call tried once more before the refusal is taken as the key's; a 401 the key then answers
/// past is no deletion in the evidence either.
#[tokio::test]
async fn a_plain_401_is_retried_after_reading_the_clock_again() {
    let s = permissions_after((401, vec![], "Unauthorized".into()), vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
    let c = s.client(Some(rd.clone()));
    c.api_keys().await.unwrap();
    assert_eq!(s.count("GET", "/api/v3/brokerage/key_permissions"), 2);
    assert!(
        s.count("GET", "/api/v3/brokerage/time") >= 2,
        "the clock read again"
    );
    let kh = crate::exchange::key_history("coinbase", rd.path()).unwrap();
    assert!(!kh.known_dead(), "{kh:?}");
}

/// Open orders are listed page by page (cursor), cancelled at most 100 per batch_cancel, and
/// listed again until none is left; each order's final state is read back.
#[tokio::test]
async fn containment_cancels_in_batches_of_at_most_100_until_none_left() {
    let open: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new((0..230).map(|i| format!("o{i:03}")).collect()));
    let cancelled: Arc<Mutex<Vec<String>>> = Arc::default();
    // One order refuses the first cancel (it is still pending): the next round takes it.
    let mut stubborn = true;
    let (o2, c2) = (open.clone(), cancelled.clone());
    let s = stub(move |seen| {
        let mut open = o2.lock().unwrap();
        let mut cancelled = c2.lock().unwrap();
        if seen.is("GET", "/api/v3/brokerage/orders/historical/batch") {
            if seen.param("order_status").as_deref() == Some("OPEN") {
                let start: usize = seen.param("cursor").map_or(0, |c| c.parse().unwrap());
                let end = (start + 100).min(open.len());
                let rows: Vec<String> = open[start..end]
                    .iter()
                    .map(|id| order_json(id, "OPEN", LIMIT_CFG, "BUY"))
                    .collect();
                let next = if end < open.len() {
                    end.to_string()
                } else {
                    String::new()
                };
                return ok(orders_page(&rows, &next));
            }
            return read_back_reply(seen, &cancelled);
        }
        if seen.is("POST", "/api/v3/brokerage/orders/batch_cancel") {
            return batch_cancel_reply(seen, |id| {
                let ok = !(id == "o007" && stubborn);
                if id == "o007" {
                    stubborn = false;
                }
                if ok {
                    open.retain(|o| o != id);
                    cancelled.push(id.to_string());
                }
                ok
            });
        }
        panic!("unexpected {} {}", seen.method, seen.path);
    })
    .await;
    let c = s.client(None);
    let report = c.cancel_all_open_orders().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.cancelled.len(), 230);
    assert!(report
        .cancelled
        .iter()
        .all(|o| o.state == OrderState::Cancelled));
    assert!(open.lock().unwrap().is_empty());
    // 230 orders: 100 + 100 + 30, then the stubborn one alone.
    assert_eq!(s.count("POST", "/api/v3/brokerage/orders/batch_cancel"), 4);
    // Nothing left to cancel: one listing, no cancel.
    let again = c.cancel_all_open_orders().await.unwrap();
    assert!(again.cancelled.is_empty() && again.failed.is_empty());
    assert_eq!(s.count("POST", "/api/v3/brokerage/orders/batch_cancel"), 4);
}

/// Orders and fills follow the cursor over the window; transfers are read per account from the
/// App API, back to the date asked, and what was recorded rebuilds offline to the same records,
/// a later 401 counting as the key's refusal.
#[tokio::test]
async fn history_and_transfers_rebuild_offline() {
    let mut dead = false;
    let s = stub(move |seen| match seen.path.as_str() {
        "/api/v3/brokerage/key_permissions" if dead => (401, vec![], "Unauthorized".into()),
        "/api/v3/brokerage/key_permissions" => {
            dead = true;
            ok(KEY_PERMS)
        }
        "/api/v3/brokerage/orders/historical/batch" => {
            assert!(seen.param("start_date").unwrap().ends_with('Z'));
            match seen.param("cursor").as_deref() {
                None => ok(orders_page(
                    &[order_json("p1", "FILLED", LIMIT_CFG, "BUY")],
                    "c1",
                )),
                Some("c1") => ok(orders_page(
                    &[order_json("p2", "CANCELLED", LIMIT_CFG, "SELL")],
                    "",
                )),
                Some(c) => panic!("cursor {c}"),
            }
        }
        "/api/v3/brokerage/orders/historical/fills" => {
            assert!(seen.param("start_sequence_timestamp").is_some());
            ok(FILLS_SAMPLE)
        }
        "/api/v3/brokerage/accounts" => ok(ACCOUNTS),
        "/v2/accounts/8bfc20d7-f7c6-4422-bf07-8243ca4169fe/transactions" => {
            match seen.param("starting_after").as_deref() {
                None => ok(tx_page(
                    &[
                        tx_json("w1", "send", "-0.1", "2025-01-02T00:05:12Z", "bc1qthief"),
                        tx_json("d1", "send", "0.5", "2025-01-01T00:00:00Z", ""),
                    ],
                    Some("d1"),
                )),
                Some("d1") => ok(tx_page(
                    &[tx_json(
                        "w0",
                        "send",
                        "-0.2",
                        "2024-06-01T00:00:00Z",
                        "bc1qold",
                    )],
                    Some("w0"),
                )),
                Some(c) => panic!("walked past the date asked: {c}"),
            }
        }
        "/v2/accounts/u-usd/transactions" => ok(tx_page(&[], None)),
        p => panic!("unexpected {p}"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&dir.path().join("run")).unwrap();
    let c = s.client(Some(rd.clone()));
    c.api_keys().await.unwrap();
    let to = Utc.with_ymd_and_hms(2025, 1, 2, 0, 0, 0).unwrap();
    let window = Window {
        from: to - chrono::Duration::days(2),
        to,
    };
    let orders = c
        .closed_orders(&ClosedOrdersQuery {
            window,
            market: None,
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(orders.len(), 2);
    let fills = c
        .fills(&FillsQuery {
            window,
            market: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(fills.len(), 2);
    let since = Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0).unwrap();
    let w = c.withdrawals(since).await.unwrap();
    let d = c.deposits(since).await.unwrap();
    let ids = |l: &[crate::exchange::Transfer]| l.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&w), ["w1", "w0"]);
    assert_eq!(ids(&d), ["d1"]);
    assert!(c.api_keys().await.unwrap_err().is_key_dead());

    let h = crate::exchange::replay::rebuild(
        &super::DESCRIPTOR,
        rd.path(),
        crate::exchange::replay::RebuildOptions::default(),
    )
    .unwrap();
    let mut live_ids: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
    live_ids.sort();
    let mut rebuilt: Vec<String> = h.orders.iter().map(|o| o.id.clone()).collect();
    rebuilt.sort();
    assert_eq!(rebuilt, live_ids);
    assert_eq!(h.fills.len(), 2);
    assert_eq!(ids(&h.withdrawals), ids(&w));
    assert_eq!(ids(&h.deposits), ids(&d));
    assert_eq!(h.balances_start.len(), 1);
    assert_eq!(
        h.keys[0].scopes.as_deref(),
        Some(&["can_view".to_string(), "can_trade".into()][..])
    );
    let kh = crate::exchange::key_history("coinbase", rd.path()).unwrap();
    assert!(kh.known_dead(), "{kh:?}");
    assert_eq!(
        kh.refused.as_ref().map(|r| r.1.as_str()),
        Some("unauthorized")
    );
}

/// A cursor sent again while a next page is announced is an error, never a short list.
#[tokio::test]
async fn a_cursor_that_repeats_is_an_error_not_a_short_list() {
    let s = stub(|_| {
        ok(orders_page(
            &[order_json("x", "OPEN", LIMIT_CFG, "BUY")],
            "same",
        ))
    })
    .await;
    let e = s.client(None).open_orders().await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");
}

/// No API deletes a key, cancels a send or reads the address book: each says so, and the
/// capabilities send the run down the guided manual path.
#[tokio::test]
async fn what_coinbase_cannot_do_by_api_is_unsupported() {
    let s = stub(|seen| panic!("unexpected {}", seen.path)).await;
    let c = s.client(None);
    assert!(matches!(
        c.revoke_key().await,
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        c.cancel_withdrawal("w1").await,
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        c.withdrawal_addresses().await,
        Err(Error::Unsupported { .. })
    ));
    let caps = c.capabilities();
    assert!(!caps.revoke_key_by_api && caps.batch_cancel && caps.read_key_permissions);
    assert!(!caps.cancel_withdrawals && !caps.history_needs_symbol);
    assert!(caps.manual_revoke_instructions_en.contains("orga...1111"));
}

/// App API calls count against the per-user second budget with Advanced Trade's: a v2 answer
/// reporting `x-ratelimit-remaining: 0` parks a second, never an hour (a drill's export hung
/// on a separate hourly group).
#[test]
fn app_api_calls_share_the_per_user_second_budget() {
    use crate::exchange::http::Call;
    let v2 = Call::get("/v2/accounts/x/transactions", vec![]);
    let at = Call::get("/api/v3/brokerage/accounts", vec![]);
    let public = Call::public("/api/v3/brokerage/market/products", vec![]);
    assert_eq!(super::limits::group(&v2), super::limits::group(&at));
    let b = super::limits::budget_of(&super::limits::group(&v2));
    assert_eq!((b.limit, b.window), (30, std::time::Duration::from_secs(1)));
    assert_eq!(
        super::limits::budget_of(&super::limits::group(&public)).limit,
        10
    );
}

/// Orders Coinbase has accepted but not yet put on the book (`PENDING`, `QUEUED`) and orders
/// whose cancel is queued (`CANCEL_QUEUED`) are open too: they are listed (by a second call,
/// since `OPEN` cannot be combined with other statuses), cancelled, and the final check lists
/// them too.
#[tokio::test]
async fn pending_and_queued_orders_are_listed_cancelled_and_checked() {
    let open: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::new(Mutex::new(vec![
        ("o1".into(), "OPEN"),
        ("p1".into(), "PENDING"),
        ("q1".into(), "QUEUED"),
    ]));
    let cancelled: Arc<Mutex<Vec<String>>> = Arc::default();
    let (o2, c2) = (open.clone(), cancelled.clone());
    let s = stub(move |seen| {
        let mut open = o2.lock().unwrap();
        let mut cancelled = c2.lock().unwrap();
        if seen.is("GET", "/api/v3/brokerage/orders/historical/batch") {
            let statuses = seen.params("order_status");
            if statuses.len() > 1 && statuses.iter().any(|s| s == "OPEN") {
                return (
                    400,
                    vec![],
                    r#"{"error":"INVALID_ARGUMENT","message":"cannot pair OPEN orders with other order statuses"}"#.into(),
                );
            }
            if !statuses.is_empty() {
                let rows: Vec<String> = open
                    .iter()
                    .filter(|(_, st)| statuses.iter().any(|s| s == st))
                    .map(|(id, st)| order_json(id, st, LIMIT_CFG, "BUY"))
                    .collect();
                return ok(orders_page(&rows, ""));
            }
            return read_back_reply(seen, &cancelled);
        }
        if seen.is("POST", "/api/v3/brokerage/orders/batch_cancel") {
            return batch_cancel_reply(seen, |id| {
                let known = open.iter().any(|(o, _)| o == id);
                if known {
                    open.retain(|(o, _)| o != id);
                    cancelled.push(id.to_string());
                }
                known
            });
        }
        panic!("unexpected {} {}", seen.method, seen.path);
    })
    .await;
    let c = s.client(None);
    let orders = c.open_orders().await.unwrap();
    let mut listed: Vec<&str> = orders.iter().map(|o| o.id.as_str()).collect();
    listed.sort();
    assert_eq!(listed, ["o1", "p1", "q1"]);
    let report = c.cancel_all_open_orders().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut done: Vec<&str> = report.cancelled.iter().map(|o| o.id.as_str()).collect();
    done.sort();
    assert_eq!(done, ["o1", "p1", "q1"]);
    assert!(open.lock().unwrap().is_empty());
    assert!(c.open_orders().await.unwrap().is_empty());
}

/// The key name signed with another private key (a wrong secret given to a resume) is refused
/// with the same 401 as a deleted key. Each recorded answer names its credentials by a
/// fingerprint (the key name and public key, nothing secret), so the run's history tells the
/// two apart: a refusal counts as the key's deletion only when the credentials it was refused
/// with were accepted before.
#[tokio::test]
async fn a_wrong_private_key_is_no_deletion_in_the_key_history() {
    let dead = Arc::new(Mutex::new(false));
    let d2 = dead.clone();
    let s = stub(move |_| {
        if *d2.lock().unwrap() {
            (401, vec![], "Unauthorized".into())
        } else {
            ok(KEY_PERMS)
        }
    })
    .await;
    let t = tempfile::tempdir().unwrap();
    let rd = crate::rundir::RunDir::create(&t.path().join("run")).unwrap();
    let right = s.client(Some(rd.clone()));
    // Another P-256 key, given with the same key name.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let other_pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
    );
    let mut cfg = CoinbaseConfig::new(EC_KEY_NAME, Secret::new(other_pem.clone()));
    cfg.base_url = Some(s.url.clone());
    cfg.recorder = Some(rd.clone());
    let wrong = CoinbaseClient::new(cfg).unwrap();
    assert_eq!(right.key_id_masked(), wrong.key_id_masked());
    let (fr, fw) = (
        right.credentials_fingerprint(),
        wrong.credentials_fingerprint(),
    );
    assert!(fr.starts_with("cred:") && fr.len() == 21, "{fr}");
    assert_ne!(fr, fw);
    // The same private key in its other PEM form is the same credentials.
    let mut cfg = CoinbaseConfig::new(EC_KEY_NAME, Secret::new(ec_pkcs8_pem()));
    cfg.base_url = Some(s.url.clone());
    assert_eq!(
        CoinbaseClient::new(cfg).unwrap().credentials_fingerprint(),
        fr
    );

    right.api_keys().await.unwrap();
    assert!(wrong.api_keys().await.unwrap_err().is_key_dead());
    let kh = crate::exchange::key_history("coinbase", rd.path()).unwrap();
    assert!(kh.accepted.is_some() && kh.refused.is_some(), "{kh:?}");
    assert!(
        !kh.known_dead(),
        "a wrong private key read as a deletion: {kh:?}"
    );
    let of_wrong = crate::exchange::key_history_of("coinbase", rd.path(), &wrong);
    assert!(of_wrong.accepted.is_none(), "{of_wrong:?}");
    let of_right = crate::exchange::key_history_of("coinbase", rd.path(), &right);
    assert!(
        of_right.accepted.is_some() && of_right.refused.is_none(),
        "{of_right:?}"
    );
    // The sidecars carry the fingerprint, never a line of either private key.
    for e in std::fs::read_dir(rd.path().join("raw")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for pem in [EC_PEM, other_pem.as_str()] {
            for l in pem.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!text.contains(l), "a line of a private key in {text}");
            }
        }
    }

    // The right credentials refused after they worked: the key was deleted.
    *dead.lock().unwrap() = true;
    assert!(right.api_keys().await.unwrap_err().is_key_dead());
    let kh = crate::exchange::key_history("coinbase", rd.path()).unwrap();
    assert!(kh.known_dead(), "{kh:?}");
}
