//! KuCoin request signing (key version 2): five headers, `KC-API-KEY`, `KC-API-SIGN`,
//! `KC-API-TIMESTAMP`, `KC-API-PASSPHRASE` and `KC-API-KEY-VERSION`.
//!
//! The signed string is `timestamp + METHOD + path + body`, where the path carries `?` and the
//! query, unencoded, for a request with parameters in the query (`GET`, `DELETE`), and the body
//! is the raw JSON body exactly as sent (`POST`). `KC-API-SIGN` is base64(HMAC-SHA256(secret,
//! that string)); `KC-API-PASSPHRASE` is base64(HMAC-SHA256(secret, passphrase)), never the
//! passphrase itself. The test vectors of `docs/exchanges/kucoin.md` §3.2 pin both.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// The key version respond signs as (the passphrase HMAC-signed).
pub const KEY_VERSION: &str = "2";

/// base64(HMAC-SHA256(secret, text)).
pub fn hmac_b64(secret: &Secret, text: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(text.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The query as signed: `k=v&k=v` in the order sent, unencoded (as KuCoin's own SDK and ccxt
/// sign it).
pub fn raw_query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The string KuCoin signs: `timestamp + METHOD + path[?query] + body`.
pub fn prehash(timestamp_ms: i64, method: &str, path: &str, query: &str, body: &str) -> String {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!(
        "{timestamp_ms}{}{path}{q}{body}",
        method.to_ascii_uppercase()
    )
}

/// The five `KC-API-*` headers of one request whose [`prehash`] is `prehash`.
pub fn headers(
    api_key: &str,
    secret: &Secret,
    passphrase: &Secret,
    timestamp_ms: i64,
    prehash: &str,
) -> Vec<(String, String)> {
    vec![
        ("KC-API-KEY".into(), api_key.to_string()),
        ("KC-API-SIGN".into(), hmac_b64(secret, prehash)),
        ("KC-API-TIMESTAMP".into(), timestamp_ms.to_string()),
        (
            "KC-API-PASSPHRASE".into(),
            hmac_b64(secret, passphrase.expose()),
        ),
        ("KC-API-KEY-VERSION".into(), KEY_VERSION.into()),
    ]
}
