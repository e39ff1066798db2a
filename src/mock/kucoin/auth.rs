//! KuCoin's request signing, verified independently from the client's signer on purpose (the
//! mock is the oracle the client is tested against).
//!
//! The signed text is `KC-API-TIMESTAMP + METHOD + path + body`: the method upper case, the
//! path with `?` and the query string when there is one, the body's raw bytes as sent (empty
//! for GET and DELETE). `KC-API-SIGN` is the base64 HMAC-SHA256 of that text keyed with the
//! secret. The query may be signed as sent or percent-decoded (ccxt signs what it sends,
//! unencoded; KuCoin's SDK signs the decoded form of what it sends encoded): either verifies.
//!
//! `KC-API-PASSPHRASE` is, for key versions 2 and 3 (`KC-API-KEY-VERSION`), the base64
//! HMAC-SHA256 of the passphrase keyed with the secret. The mock issues version 2 keys only:
//! a plain (version 1) passphrase, or a missing version, is a wrong passphrase.
//!
//! Checks run in this order, each failure with KuCoin's code: the four headers present
//! (400001); the key known, not deleted and not expired (400003); the passphrase (400004); the
//! signature (400005); the timestamp within 5 s of the server's, either way (400002); the
//! caller's IP on the key's allowlist (400006); then the endpoint's permission (400007).

use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::errors::{self, ApiErr};
use crate::mock::venue::keys::{KeyRec, Permission};

/// How far `KC-API-TIMESTAMP` may be from the server's clock, in ms.
pub const TOLERANCE_MS: i64 = 5_000;

/// The text a request's signature covers.
pub fn sign_text(timestamp: &str, method: &str, path: &str, query: &str, body: &str) -> String {
    if query.is_empty() {
        format!("{timestamp}{method}{path}{body}")
    } else {
        format!("{timestamp}{method}{path}?{query}{body}")
    }
}

fn mac(secret: &str) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()
}

/// Whether `b64` is the base64 HMAC-SHA256 of `text` keyed with `secret`.
pub fn verify_b64(secret: &str, text: &str, b64: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let Some(mut m) = mac(secret) else {
        return false;
    };
    m.update(text.as_bytes());
    m.verify_slice(&sig).is_ok()
}

/// What the verifier needs to know about a signed request.
pub struct Signed<'a> {
    pub api_key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub sign: Option<&'a str>,
    pub passphrase: Option<&'a str>,
    pub key_version: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string as received.
    pub query: &'a str,
    /// The raw body as received.
    pub body: &'a str,
    pub ip: Option<IpAddr>,
    /// What the endpoint needs the key to be allowed.
    pub need: Permission,
    /// The HTTP status of 400006 and 400007.
    pub denied_status: u16,
}

/// Whether the passphrase header proves the key's passphrase (versions 2 and 3 only).
pub fn passphrase_ok(key: &KeyRec, header: &str, version: Option<&str>) -> bool {
    let Some(p) = key.passphrase.as_deref() else {
        return false;
    };
    matches!(version, Some("2" | "3")) && verify_b64(&key.secret_key, p, header)
}

/// Whether the signature covers this request (the query as sent or percent-decoded).
pub fn signature_ok(key: &KeyRec, req: &Signed<'_>, ts: &str, sig: &str) -> bool {
    let text = sign_text(ts, req.method, req.path, req.query, req.body);
    if verify_b64(&key.secret_key, &text, sig) {
        return true;
    }
    let decoded = percent_encoding::percent_decode_str(req.query).decode_utf8_lossy();
    decoded != req.query
        && verify_b64(
            &key.secret_key,
            &sign_text(ts, req.method, req.path, &decoded, req.body),
            sig,
        )
}

/// Whether a key may do `need`: every key reads, the rest as its permissions say.
pub fn allowed(key: &KeyRec, need: Permission) -> bool {
    need == Permission::Read || key.can(need)
}

/// Runs the checks in order. `lookup` finds a key; on failure the error comes with the key
/// the request named (for the request log), when it named one.
pub fn authenticate(
    req: &Signed<'_>,
    lookup: impl Fn(&str) -> Option<KeyRec>,
    now: DateTime<Utc>,
) -> Result<KeyRec, (ApiErr, Option<String>)> {
    let nonempty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
    let named = nonempty(req.api_key);
    let (Some(ak), Some(ts), Some(sig), Some(pass)) = (
        named.clone(),
        nonempty(req.timestamp),
        nonempty(req.sign),
        nonempty(req.passphrase),
    ) else {
        return Err((errors::missing_header(), named));
    };
    let fail = |e: ApiErr| (e, Some(ak.clone()));
    let key = lookup(&ak)
        .filter(|k| !k.is_revoked() && !k.is_expired(now))
        .ok_or_else(|| fail(errors::invalid_key()))?;
    if !passphrase_ok(&key, &pass, req.key_version) {
        return Err(fail(errors::passphrase()));
    }
    if !signature_ok(&key, req, &ts, &sig) {
        return Err(fail(errors::signature()));
    }
    let t: i64 = ts
        .parse()
        .ok()
        .filter(|_| ts.len() <= 18 && ts.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| fail(errors::timestamp()))?;
    if (t - now.timestamp_millis()).abs() > TOLERANCE_MS {
        return Err(fail(errors::timestamp()));
    }
    if !key.ip_allowed(req.ip) {
        return Err(fail(errors::ip(req.denied_status)));
    }
    if !allowed(&key, req.need) {
        return Err(fail(errors::permission(req.denied_status)));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "respond-test-kucoin-secret-0000";
    const TS: &str = "1735776000000";

    fn ok(method: &str, path: &str, query: &str, body: &str, sig: &str) -> bool {
        verify_b64(SECRET, &sign_text(TS, method, path, query, body), sig)
    }

    #[test]
    fn reference_vectors_verify() {
        // docs/exchanges/kucoin.md §3.2, K1 to K4 and the passphrase.
        assert!(ok(
            "GET",
            "/api/v1/hf/fills",
            "symbol=BTC-USDT&startAt=1735171200000&endAt=1735775999999&limit=100",
            "",
            "m/9MaIYX3ngrrQAWFMN88g94oj4ob+tyJXC04bdhmDY="
        ));
        assert!(ok(
            "DELETE",
            "/api/v1/hf/orders/cancelAll",
            "",
            "",
            "U7vOe/GTlpU+3mbEwVoUsQ7NtImrjq0NKYd5PzO2WQU="
        ));
        let body = r#"{"clientOid":"5c52e11203aa677f33e493fb","side":"buy","symbol":"BTC-USDT","type":"market","funds":"100"}"#;
        assert!(ok(
            "POST",
            "/api/v1/hf/orders",
            "",
            body,
            "fsTtknEnvCaO8VUQ1vnrgVdZRJr6qCHTSrcLxQ/CD7w="
        ));
        assert!(ok(
            "GET",
            "/api/v1/user/api-key",
            "",
            "",
            "WJKg2nrzsfwpeI1N//IDUOUtOdlP4xnX8thPQayn4Mk="
        ));
        assert!(verify_b64(
            SECRET,
            "respond-test-passphrase",
            "kCWWLPv4LR7jfzwfPybYXqOcPh4jNwvhNdTKhMS6Zy4="
        ));
        // The body's bytes as sent: a space changes the signature; the method is exact.
        assert!(!ok(
            "POST",
            "/api/v1/hf/orders",
            "",
            &body.replace(',', ", "),
            "fsTtknEnvCaO8VUQ1vnrgVdZRJr6qCHTSrcLxQ/CD7w="
        ));
        assert!(!ok(
            "get",
            "/api/v1/user/api-key",
            "",
            "",
            "WJKg2nrzsfwpeI1N//IDUOUtOdlP4xnX8thPQayn4Mk="
        ));
        assert!(!ok("GET", "/api/v1/user/api-key", "", "", "not base64!"));
    }
}
