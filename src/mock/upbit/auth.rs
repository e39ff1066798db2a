//! Upbit's JWT verification, independent from the client's signer on purpose (the mock is
//! the oracle the client is tested against).
//!
//! Tokens are verified with the `jsonwebtoken` crate (HS256 and HS512 only; `none`, RS256 and
//! everything else are refused), and `query_hash` is recomputed with `sha2` over the decoded
//! query string (arrays as `key[]=v`, order as sent) or the JSON body's fields joined
//! `k=v&…` in body order. Checks run in the reference's order and each failure carries its
//! documented Upbit error name. Nonces are remembered per key for a bounded time window (the
//! venue's replay store).

use std::collections::HashSet;
use std::time::Instant;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha512};

use crate::mock::venue::keys::KeyRec;
pub use crate::mock::venue::replay::NonceStore;

/// An authentication failure: HTTP status and Upbit error name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} ({status}): {message}")]
pub struct AuthError {
    pub status: u16,
    pub name: &'static str,
    pub message: &'static str,
}

const fn fail(status: u16, name: &'static str, message: &'static str) -> AuthError {
    AuthError {
        status,
        name,
        message,
    }
}

pub const NO_TOKEN: AuthError = fail(
    401,
    "no_authorization_token",
    "Authorization 토큰이 없습니다.",
);
pub const JWT: AuthError = fail(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.");
pub const INVALID_KEY: AuthError = fail(401, "invalid_access_key", "잘못된 엑세스 키입니다.");
pub const EXPIRED_KEY: AuthError = fail(401, "expired_access_key", "만료된 엑세스 키입니다.");
pub const NO_IP: AuthError = fail(401, "no_authorization_i_p", "허용되지 않은 IP 주소입니다.");
pub const NONCE_USED: AuthError = fail(
    401,
    "nonce_used",
    "이미 요청한 nonce값이 다시 사용되었습니다.",
);
pub const BAD_HASH: AuthError = fail(401, "invalid_query_payload", "쿼리 오류입니다.");

/// Builds the out-of-scope error with the configured status (401 in older docs, 403 now).
pub fn out_of_scope(status: u16) -> AuthError {
    fail(status, "out_of_scope", "권한이 부족합니다.")
}

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub access_key: String,
    pub nonce: Option<String>,
    pub query_hash: Option<String>,
    pub query_hash_alg: Option<String>,
}

/// Reads the access key from a token without verifying it (to find the key's secret).
pub fn peek_claims(token: &str) -> Result<Claims, AuthError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JWT);
    };
    let header = jsonwebtoken::decode_header(token).map_err(|_| JWT)?;
    if !matches!(header.alg, Algorithm::HS256 | Algorithm::HS512) {
        return Err(JWT);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| JWT)?;
    serde_json::from_slice(&bytes).map_err(|_| JWT)
}

/// Verifies the token's signature with the key's secret (HS256 or HS512 as the header says).
pub fn verify_signature(token: &str, secret: &str) -> Result<Claims, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JWT)?;
    if !matches!(header.alg, Algorithm::HS256 | Algorithm::HS512) {
        return Err(JWT);
    }
    let mut v = Validation::new(header.alg);
    v.algorithms = vec![header.alg];
    v.required_spec_claims = HashSet::new();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
        .map(|d| d.claims)
        .map_err(|_| JWT)
}

/// The request's parameters in the order sent: (key, value) with `[]` kept on array keys.
pub type Params = Vec<(String, String)>;

/// Decodes a query string (or form body) into ordered pairs.
pub fn parse_query(q: &str) -> Params {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Flattens a JSON object body into ordered pairs: strings as-is, numbers and booleans as
/// written, arrays as repeated `key[]=v`, nulls skipped.
pub fn json_params(body: &serde_json::Value) -> Option<Params> {
    let obj = body.as_object()?;
    let mut out = Vec::new();
    for (k, v) in obj {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::Array(items) => {
                let key = if k.ends_with("[]") {
                    k.clone()
                } else {
                    format!("{k}[]")
                };
                for it in items {
                    out.push((key.clone(), scalar(it)));
                }
            }
            other => out.push((k.clone(), scalar(other))),
        }
    }
    Some(out)
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The string Upbit hashes: `k=v&k=v`, decoded, in order.
pub fn hash_input(params: &Params) -> String {
    let mut s = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Lowercase hex SHA-512 of the hash input.
pub fn query_hash(params: &Params) -> String {
    hex::encode(Sha512::digest(hash_input(params).as_bytes()))
}

/// Everything the verifier needs to know about the request.
pub struct RequestAuth<'a> {
    pub authorization: Option<&'a str>,
    pub params: &'a Params,
    pub ip: Option<std::net::IpAddr>,
    pub scope: Option<&'static str>,
}

/// Runs the checks in the reference's order up to (not including) the rate limit.
/// `lookup` finds a key; `now` is the mock's clock for expiry.
pub fn authenticate(
    req: &RequestAuth<'_>,
    lookup: impl Fn(&str) -> Option<KeyRec>,
    nonces: &mut NonceStore,
    now: chrono::DateTime<chrono::Utc>,
    out_of_scope_status: u16,
) -> Result<KeyRec, (AuthError, Option<String>)> {
    let Some(h) = req.authorization else {
        return Err((NO_TOKEN, None));
    };
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .ok_or((JWT, None))?
        .trim();
    let peek = peek_claims(token).map_err(|e| (e, None))?;
    let ak = Some(peek.access_key.clone());
    let key = lookup(&peek.access_key).ok_or((INVALID_KEY, ak.clone()))?;
    if key.is_revoked() {
        return Err((INVALID_KEY, ak));
    }
    let claims = verify_signature(token, &key.secret_key).map_err(|e| (e, ak.clone()))?;
    if key.is_expired(now) {
        return Err((EXPIRED_KEY, ak));
    }
    if !key.ip_allowed(req.ip) {
        return Err((NO_IP, ak));
    }
    let Some(nonce) = claims.nonce.as_deref().filter(|n| !n.is_empty()) else {
        return Err((JWT, ak));
    };
    if !nonces.check_and_insert(&key.access_key, nonce, Instant::now()) {
        return Err((NONCE_USED, ak));
    }
    if !req.params.is_empty() {
        let alg_ok = claims
            .query_hash_alg
            .as_deref()
            .map_or(true, |a| a.eq_ignore_ascii_case("SHA512"));
        let expected = query_hash(req.params);
        match claims.query_hash.as_deref() {
            Some(h) if alg_ok && h.eq_ignore_ascii_case(&expected) => {}
            _ => return Err((BAD_HASH, ak)),
        }
    }
    if let Some(scope) = req.scope {
        if !key.has_scope(scope) {
            return Err((out_of_scope(out_of_scope_status), ak));
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_query_hash_vector() {
        let p =
            parse_query("market=KRW-BTC&states[]=done&states[]=cancel&limit=1000&order_by=desc");
        assert_eq!(
            hash_input(&p),
            "market=KRW-BTC&states[]=done&states[]=cancel&limit=1000&order_by=desc"
        );
        assert_eq!(query_hash(&p), "fd1d975145cc01ff91b56063dc2cc5930191d479822eb8db38e25f457609c3d44762eb587c18776f60c01ebf3a80bbfdee1e05e66e1d76a50d294cba75c1ad8e");
    }

    #[test]
    fn reference_body_hash_vector() {
        let body: serde_json::Value = serde_json::from_str(
            r#"{"market":"KRW-BTC","side":"bid","volume":"0.01","price":"100000000","ord_type":"limit"}"#,
        )
        .unwrap();
        let p = json_params(&body).unwrap();
        assert_eq!(
            hash_input(&p),
            "market=KRW-BTC&side=bid&volume=0.01&price=100000000&ord_type=limit"
        );
        assert_eq!(query_hash(&p), "04f10e7f849051645e088a4217a3e1f938268054df0e99b93ac74627b11f6931e501657d777720f9d19fc2a6649e3afc4a6e4e83ccf3d0569be6bde4633750dc");
    }

    const SECRET: &str = "test-secret-key-0000000000000000000000000";
    const HASH: &str = "fd1d975145cc01ff91b56063dc2cc5930191d479822eb8db38e25f457609c3d44762eb587c18776f60c01ebf3a80bbfdee1e05e66e1d76a50d294cba75c1ad8e";

    fn reference_token() -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = b64.encode(format!(
            r#"{{"access_key":"test-access-key","nonce":"00000000-0000-4000-8000-000000000000","query_hash":"{HASH}","query_hash_alg":"SHA512"}}"#
        ));
        format!("{header}.{claims}.L5ydw1ZZwrITBFq3HkXT0wJbHCXvZMLdUfKzLRA5LII")
    }

    #[test]
    fn reference_signature_vector_verifies() {
        let c = verify_signature(&reference_token(), SECRET).expect("reference token verifies");
        assert_eq!(c.access_key, "test-access-key");
        assert_eq!(c.query_hash.as_deref(), Some(HASH));
        // Wrong secret or a flipped signature fails.
        assert_eq!(
            verify_signature(&reference_token(), "other-secret").unwrap_err(),
            JWT
        );
        let mut t = reference_token();
        t.pop();
        t.push('M');
        assert!(verify_signature(&t, SECRET).is_err());
    }

    #[test]
    fn alg_none_and_rs256_refused() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = b64.encode(r#"{"access_key":"test-access-key","nonce":"n"}"#);
        for alg in ["none", "RS256", "HS384"] {
            let t = format!(
                "{}.{claims}.",
                b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#))
            );
            assert!(peek_claims(&t).is_err(), "{alg} accepted by peek");
            assert!(verify_signature(&t, SECRET).is_err(), "{alg} accepted");
        }
    }
}
