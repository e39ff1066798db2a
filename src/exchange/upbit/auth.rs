//! Upbit request signing: the JWT in `Authorization: Bearer …`.
//!
//! Written by hand (HMAC + SHA-2 + base64url) rather than through a JWT library so the bytes
//! are exactly the ones the reference's test vectors pin down: header
//! `{"alg":"HS256","typ":"JWT"}`, compact claims in the order access_key, nonce, query_hash,
//! query_hash_alg. The query hash covers the query string *before* percent-encoding, with
//! parameters in the order sent and arrays as repeated `key[]=v` pairs; for a JSON body the
//! body's fields joined `k=v&…` in body order. Callers therefore keep parameters as an ordered
//! list of decoded pairs and derive both the wire encoding and the hash from that one list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};

use crate::secret::Secret;

/// The JWT algorithm. Upbit's docs show HS512; ccxt and pyupbit sign HS256 and work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JwtAlg {
    #[default]
    Hs256,
    Hs512,
}

impl JwtAlg {
    fn header(self) -> &'static str {
        match self {
            JwtAlg::Hs256 => r#"{"alg":"HS256","typ":"JWT"}"#,
            JwtAlg::Hs512 => r#"{"alg":"HS512","typ":"JWT"}"#,
        }
    }
}

/// The decoded query string that is hashed: `k=v&k=v` in the order given, nothing encoded.
pub fn hash_input(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The hash input for a JSON object body: its fields in body order, scalars as written
/// (strings unquoted), arrays as repeated `key[]=v`.
pub fn body_hash_input(body: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut pairs = Vec::new();
    for (k, v) in body {
        match v {
            serde_json::Value::Array(items) => {
                for item in items {
                    pairs.push((format!("{k}[]"), scalar(item)));
                }
            }
            other => pairs.push((k.clone(), scalar(other))),
        }
    }
    hash_input(&pairs)
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Lowercase hex SHA-512 of the hash input.
pub fn query_hash(input: &str) -> String {
    hex::encode(Sha512::digest(input.as_bytes()))
}

#[derive(Serialize)]
struct Claims<'a> {
    access_key: &'a str,
    nonce: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_hash_alg: Option<&'a str>,
}

/// Builds the signed token. `hash_input` is `None` when the request has no parameters.
pub fn sign(
    access_key: &str,
    secret: &Secret,
    nonce: &str,
    hash_input: Option<&str>,
    alg: JwtAlg,
) -> String {
    let hash = hash_input.map(query_hash);
    let claims = Claims {
        access_key,
        nonce,
        query_hash: hash.as_deref(),
        query_hash_alg: hash.as_ref().map(|_| "SHA512"),
    };
    // Serializing a struct of &str cannot fail.
    let claims_json = serde_json::to_string(&claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(alg.header()),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let sig = match alg {
        JwtAlg::Hs256 => mac::<Hmac<Sha256>>(secret, &signing_input),
        JwtAlg::Hs512 => mac::<Hmac<Sha512>>(secret, &signing_input),
    };
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn mac<M: Mac + hmac::digest::KeyInit>(secret: &Secret, input: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails.
    let mut m = <M as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(input.as_bytes());
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    const QUERY_HASH: &str = "fd1d975145cc01ff91b56063dc2cc5930191d479822eb8db38e25f457609c3d44762eb587c18776f60c01ebf3a80bbfdee1e05e66e1d76a50d294cba75c1ad8e";

    fn vector_params() -> Vec<(String, String)> {
        vec![
            p("market", "KRW-BTC"),
            p("states[]", "done"),
            p("states[]", "cancel"),
            p("limit", "1000"),
            p("order_by", "desc"),
        ]
    }

    #[test]
    fn query_hash_matches_reference_vector() {
        let input = hash_input(&vector_params());
        assert_eq!(
            input,
            "market=KRW-BTC&states[]=done&states[]=cancel&limit=1000&order_by=desc"
        );
        assert_eq!(query_hash(&input), QUERY_HASH);
    }

    #[test]
    fn hs256_signature_matches_reference_vector() {
        let secret = Secret::new("test-secret-key-0000000000000000000000000");
        let input = hash_input(&vector_params());
        let token = sign(
            "test-access-key",
            &secret,
            "00000000-0000-4000-8000-000000000000",
            Some(&input),
            JwtAlg::Hs256,
        );
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
        assert_eq!(header, br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            format!(
                r#"{{"access_key":"test-access-key","nonce":"00000000-0000-4000-8000-000000000000","query_hash":"{QUERY_HASH}","query_hash_alg":"SHA512"}}"#
            )
        );
        assert_eq!(parts[2], "L5ydw1ZZwrITBFq3HkXT0wJbHCXvZMLdUfKzLRA5LII");
    }

    #[test]
    fn post_body_hash_matches_reference_vector() {
        let body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"market":"KRW-BTC","side":"bid","volume":"0.01","price":"100000000","ord_type":"limit"}"#,
        )
        .unwrap();
        let input = body_hash_input(&body);
        assert_eq!(
            input,
            "market=KRW-BTC&side=bid&volume=0.01&price=100000000&ord_type=limit"
        );
        assert_eq!(query_hash(&input), "04f10e7f849051645e088a4217a3e1f938268054df0e99b93ac74627b11f6931e501657d777720f9d19fc2a6649e3afc4a6e4e83ccf3d0569be6bde4633750dc");
    }

    #[test]
    fn no_params_means_no_hash_claims_and_hs512_verifies() {
        let secret = Secret::new("another-test-secret-key-000000000");
        let token = sign("ak", &secret, "n-1", None, JwtAlg::Hs512);
        let parts: Vec<&str> = token.split('.').collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims, r#"{"access_key":"ak","nonce":"n-1"}"#);
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(secret.expose().as_bytes()),
            &v,
        )
        .unwrap();
        assert_eq!(decoded.claims["nonce"], "n-1");
    }
}
