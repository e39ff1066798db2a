//! CDP key authentication (docs/exchanges/coinbase.md §3): every private request carries
//! `Authorization: Bearer <JWT>`, a JWS compact token signed `ES256` (P-256, the signature
//! the raw 64-byte `r‖s`) or `EdDSA` (Ed25519), verified here with the key's public key
//! only (ring), never with the client's signer.
//!
//! The checks, in order: a bearer token of three base64url parts; a header with `alg`
//! ES256 or EdDSA, a `kid` and a `nonce`; a known key named by `kid` (and `sub`, equal to
//! it) of the kind `alg` names; the signature; the key not deleted; `iss` `cdp` (or
//! `coinbase-cloud`, which ccxt writes for ES256 keys); `nbf` and `exp` numbers at most 120 s
//! apart, with `nbf` not in the future and `exp` not past (both within [`SKEW_SECS`]); a `uri`
//! claim (or an element of `uris`) of `METHOD host/path` naming this request: its method,
//! the host the client addressed (the `Host` header; a leading `http://` or `https://` is
//! ignored) and its path without the query. The router then refuses a nonce the key already
//! used (the venue's nonce store). Any failure is a 401 whose body does not say which check
//! failed.

use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::errors::{self, ApiErr};
use crate::mock::venue::keys::{self, KeyRec, KeyType};

/// Clock skew tolerated on `nbf` and `exp`, in seconds.
pub const SKEW_SECS: i64 = 5;
/// The longest lifetime (`exp − nbf`) accepted, in seconds.
pub const MAX_LIFETIME_SECS: i64 = 120;

/// What the request offers for authentication.
pub struct Presented<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    pub method: &'a str,
    /// The `Host` header (the host and port the client addressed).
    pub host: Option<&'a str>,
    /// The request path (no query).
    pub path: &'a str,
    pub ip: Option<IpAddr>,
}

fn b64(part: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()
}

fn json_part(part: &str) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(&b64(part)?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Whether `uri` (`METHOD host/path`) names this request.
pub fn uri_matches(uri: &str, method: &str, host: Option<&str>, path: &str) -> bool {
    let Some((m, rest)) = uri.split_once(' ') else {
        return false;
    };
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))
        .unwrap_or(rest);
    let (h, p) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => return false,
    };
    m == method
        && host.is_some_and(|host| h.eq_ignore_ascii_case(host))
        && p.split('?').next() == Some(path)
}

fn verify_signature(key: &KeyRec, alg: &str, message: &[u8], sig: &[u8]) -> bool {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519};
    let Some(pem) = key.public_key.as_deref() else {
        return false;
    };
    match (alg, key.key_type) {
        ("ES256", KeyType::Es256) => keys::p256_public_key(pem).is_some_and(|point| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }),
        ("EdDSA", KeyType::Ed25519) => keys::ed25519_public_key(pem).is_some_and(|pk| {
            UnparsedPublicKey::new(&ED25519, pk)
                .verify(message, sig)
                .is_ok()
        }),
        _ => false,
    }
}

/// The key a request is signed with and the token's nonce, or the 401 (with the key name when
/// one was presented, for the request log).
pub fn authenticate(
    p: &Presented<'_>,
    lookup: impl Fn(&str) -> Option<KeyRec>,
    now: DateTime<Utc>,
) -> Result<(KeyRec, String), (ApiErr, Option<String>)> {
    let fail = |why: &'static str, name: Option<&str>| {
        Err((errors::unauthorized(why), name.map(str::to_string)))
    };
    let Some(token) = p
        .authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return fail("no bearer token", None);
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [h64, c64, s64] = parts[..] else {
        return fail("malformed token", None);
    };
    let (Some(header), Some(claims), Some(sig)) = (json_part(h64), json_part(c64), b64(s64)) else {
        return fail("malformed token", None);
    };
    let text = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).map(str::to_string)
    };
    let Some(kid) = text(&header, "kid") else {
        return fail("no kid", None);
    };
    let name = Some(kid.as_str());
    let alg = text(&header, "alg").unwrap_or_default();
    if alg != "ES256" && alg != "EdDSA" {
        return fail("unsupported alg", name);
    }
    let Some(nonce) = text(&header, "nonce") else {
        return fail("no nonce", name);
    };
    let Some(key) = lookup(&kid) else {
        return fail("unknown key", name);
    };
    if text(&claims, "sub").as_deref() != Some(kid.as_str()) {
        return fail("sub is not the key name", name);
    }
    let signed = format!("{h64}.{c64}");
    if !verify_signature(&key, &alg, signed.as_bytes(), &sig) {
        return fail("bad signature", name);
    }
    if key.is_revoked() {
        return fail("key deleted", name);
    }
    if key.is_expired(now) {
        return fail("key expired", name);
    }
    if !key.ip_allowed(p.ip) {
        return fail("IP not allowed", name);
    }
    match text(&claims, "iss").as_deref() {
        Some("cdp" | "coinbase-cloud") => {}
        _ => return fail("bad iss", name),
    }
    let (Some(nbf), Some(exp)) = (
        claims.get("nbf").and_then(Value::as_i64),
        claims.get("exp").and_then(Value::as_i64),
    ) else {
        return fail("no nbf or exp", name);
    };
    let t = now.timestamp();
    if exp <= nbf || exp - nbf > MAX_LIFETIME_SECS {
        return fail("lifetime over 120 s", name);
    }
    if nbf > t + SKEW_SECS {
        return fail("not yet valid", name);
    }
    if exp + SKEW_SECS <= t {
        return fail("expired", name);
    }
    let mut uris: Vec<String> = text(&claims, "uri").into_iter().collect();
    if let Some(list) = claims.get("uris").and_then(Value::as_array) {
        uris.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if !uris
        .iter()
        .any(|u| uri_matches(u, p.method, p.host, p.path))
    {
        return fail("uri does not name this request", name);
    }
    Ok((key, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_names_method_host_and_path_without_query() {
        let h = Some("127.0.0.1:8080");
        let p = "/api/v3/brokerage/accounts";
        assert!(uri_matches(
            "GET 127.0.0.1:8080/api/v3/brokerage/accounts",
            "GET",
            h,
            p
        ));
        assert!(uri_matches(
            "GET http://127.0.0.1:8080/api/v3/brokerage/accounts",
            "GET",
            h,
            p
        ));
        assert!(uri_matches(
            "GET 127.0.0.1:8080/api/v3/brokerage/accounts?limit=1",
            "GET",
            h,
            p
        ));
        assert!(!uri_matches(
            "POST 127.0.0.1:8080/api/v3/brokerage/accounts",
            "GET",
            h,
            p
        ));
        assert!(!uri_matches(
            "GET api.coinbase.com/api/v3/brokerage/accounts",
            "GET",
            h,
            p
        ));
        assert!(!uri_matches(
            "GET 127.0.0.1:8080/api/v3/brokerage/orders",
            "GET",
            h,
            p
        ));
        assert!(!uri_matches(
            "GET 127.0.0.1:8080/api/v3/brokerage/accounts",
            "GET",
            None,
            p
        ));
        assert!(!uri_matches("GET", "GET", h, p));
    }

    /// docs/exchanges/coinbase.md §3.3: V1 (EdDSA) and V2 (ES256) verify at their time and
    /// host; a flipped signature bit does not.
    #[test]
    fn reference_tokens_verify_and_a_flipped_bit_does_not() {
        use chrono::TimeZone;
        let now = Utc.timestamp_opt(1_735_776_010, 0).unwrap();
        let seed: [u8; 32] = std::array::from_fn(|i| 0x20 + i as u8);
        let (ed_private, ed_public) = keys::ed25519_pem_pair(&seed);
        let scalar: [u8; 32] =
            hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
                .unwrap()
                .try_into()
                .unwrap();
        let (ec_private, ec_public) = keys::p256_pem_pair(&scalar).unwrap();
        let rec = |name: &str, t: KeyType, private: &str, public: &str| KeyRec {
            account: "a".into(),
            label: "k".into(),
            access_key: name.into(),
            secret_key: private.into(),
            passphrase: None,
            key_type: t,
            public_key: Some(public.into()),
            scopes: vec![],
            permissions: Default::default(),
            allowed_ips: vec![],
            expire_at: now + chrono::Duration::days(1),
            revoked_at: None,
        };
        let ed_name = "respond-test-coinbase-key-id";
        let ec_name = "organizations/00000000-0000-0000-0000-000000000000/apiKeys/11111111-1111-1111-1111-111111111111";
        let v1 = "eyJhbGciOiJFZERTQSIsImtpZCI6InJlc3BvbmQtdGVzdC1jb2luYmFzZS1rZXktaWQiLCJub25jZSI6IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwidHlwIjoiSldUIn0.eyJzdWIiOiJyZXNwb25kLXRlc3QtY29pbmJhc2Uta2V5LWlkIiwiaXNzIjoiY2RwIiwibmJmIjoxNzM1Nzc2MDAwLCJleHAiOjE3MzU3NzYxMjAsInVyaSI6IkdFVCBhcGkuY29pbmJhc2UuY29tL2FwaS92My9icm9rZXJhZ2UvYWNjb3VudHMifQ.z7O1hGoE8S8MmHeR1_p89wEopWuvInbjgb_f_zu4EcQHVCTKI7GdqXTfpTTLFxtcR-jMGya8kUJUFE5ZPqieCA";
        let v2 = "eyJhbGciOiJFUzI1NiIsImtpZCI6Im9yZ2FuaXphdGlvbnMvMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwL2FwaUtleXMvMTExMTExMTEtMTExMS0xMTExLTExMTEtMTExMTExMTExMTExIiwibm9uY2UiOiIwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvcmdhbml6YXRpb25zLzAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMC9hcGlLZXlzLzExMTExMTExLTExMTEtMTExMS0xMTExLTExMTExMTExMTExMSIsImlzcyI6ImNkcCIsIm5iZiI6MTczNTc3NjAwMCwiZXhwIjoxNzM1Nzc2MTIwLCJ1cmkiOiJHRVQgYXBpLmNvaW5iYXNlLmNvbS9hcGkvdjMvYnJva2VyYWdlL2FjY291bnRzIn0.7EziBeAuTCqYB05GTyE3Cc3QAJ1Of7-xhq6S9SoesAG4QJ0sMlKKX_sWWr5PvLGGhqGh8UZt0YDTnqFPjUVH3w";
        let keys = [
            rec(ed_name, KeyType::Ed25519, &ed_private, &ed_public),
            rec(ec_name, KeyType::Es256, &ec_private, &ec_public),
        ];
        let lookup = |n: &str| keys.iter().find(|k| k.access_key == n).cloned();
        let check = |token: &str, at: DateTime<Utc>| {
            let auth = format!("Bearer {token}");
            let p = Presented {
                authorization: Some(&auth),
                method: "GET",
                host: Some("api.coinbase.com"),
                path: "/api/v3/brokerage/accounts",
                ip: None,
            };
            authenticate(&p, lookup, at).map(|(k, _)| k.access_key)
        };
        assert_eq!(check(v1, now).unwrap(), ed_name);
        assert_eq!(check(v2, now).unwrap(), ec_name);
        for t in [v1, v2] {
            let mut bad: Vec<char> = t.chars().collect();
            let i = bad.len() - 10;
            bad[i] = if bad[i] == 'A' { 'B' } else { 'A' };
            let bad: String = bad.into_iter().collect();
            assert!(check(&bad, now).is_err());
            let late = Utc.timestamp_opt(1_735_776_200, 0).unwrap();
            assert!(check(t, late).is_err());
        }
    }
}
