//! Coinbase CDP key signing: every private request carries `Authorization: Bearer <JWT>`, a
//! token made fresh for the request.
//!
//! - **Header** `{"alg", "kid", "nonce", "typ": "JWT"}`: `kid` the key name, `nonce` 32 random
//!   bytes in hex.
//! - **Claims** `{"sub", "iss": "cdp", "nbf", "exp", "uri"}` in that order: `sub` the key name,
//!   `nbf` now (seconds), `exp` two minutes later, `uri` `"METHOD host/path"` (no scheme, no
//!   query: the query is not covered).
//! - **Two kinds of key**: ECDSA P-256 (`ES256`; the secret a PEM private key, SEC1 `EC PRIVATE
//!   KEY` or PKCS#8 `PRIVATE KEY`; the signature the raw `r ‖ s`), and Ed25519 (`EdDSA`; the
//!   secret base64 of the 32-byte seed and 32-byte public key, or of the seed alone, or a
//!   PKCS#8 PEM).
//!
//! A secret given with literal `\n` for its line breaks (one line in an environment variable)
//! is read like the multi-line PEM. The test vectors of `docs/exchanges/coinbase.md` §3.3 pin
//! both kinds.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SecureRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::Serialize;

use crate::secret::Secret;

/// Seconds between a token's `nbf` and its `exp`.
pub const TOKEN_LIFETIME_SECS: i64 = 120;

/// Why a secret cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret looks like a PEM private key but its body is not valid base64")]
    BadPem,
    #[error(
        "the secret is a PEM private key but not an EC P-256 or Ed25519 key Coinbase issues ({0})"
    )]
    Unsupported(String),
    #[error("the secret is neither a PEM private key (ECDSA key) nor a base64 Ed25519 key of 32 or 64 bytes")]
    Unrecognized,
    #[error(
        "the Ed25519 secret's public half does not match its seed: the value was cut or altered"
    )]
    Ed25519Mismatch,
}

/// A key's signing half.
pub enum KeySigner {
    Es256(Box<EcdsaKeyPair>),
    EdDsa(Box<Ed25519KeyPair>),
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeySigner::Es256(_) => "KeySigner::Es256",
            KeySigner::EdDsa(_) => "KeySigner::EdDsa",
        })
    }
}

/// The secret as text with real line breaks (a `\n`-escaped one-line form read as the PEM it
/// stands for).
fn normalized(secret: &str) -> String {
    secret.trim().replace("\\r\\n", "\n").replace("\\n", "\n")
}

/// The label and DER of a PEM block (`EC PRIVATE KEY`, `PRIVATE KEY`); `None` when the text
/// is no PEM.
fn pem_der(text: &str) -> Option<Result<(String, Vec<u8>), KeyError>> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].trim().to_string();
    let body_and_end = &rest[label_end + 5..];
    let body = match body_and_end.find("-----END") {
        Some(i) => &body_and_end[..i],
        None => body_and_end,
    };
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    Some(
        STANDARD
            .decode(body)
            .map(|d| (label, d))
            .map_err(|_| KeyError::BadPem),
    )
}

/// DER length octets.
fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// A SEC1 `ECPrivateKey` (P-256) wrapped as the PKCS#8 `PrivateKeyInfo` ring reads.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    // id-ecPublicKey (1.2.840.10045.2.1), prime256v1 (1.2.840.10045.3.1.7).
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let alg = tlv(0x30, &[EC_PUBLIC_KEY, P256].concat());
    let body = [tlv(0x02, &[0]), alg, tlv(0x04, sec1)].concat();
    tlv(0x30, &body)
}

impl KeySigner {
    /// ES256 for a PEM EC key, EdDSA for an Ed25519 key (base64 or PEM). The secret's working
    /// forms (the PEM with real line breaks, each line of its body) are registered for
    /// redaction beside the value as given.
    pub fn from_secret(secret: &Secret) -> Result<KeySigner, KeyError> {
        let text = normalized(secret.expose());
        let redactor = crate::secret::redactor();
        redactor.add(&text);
        for line in text.lines() {
            let l = line.trim();
            if !l.starts_with("-----") {
                redactor.add(l);
            }
        }
        let rng = ring::rand::SystemRandom::new();
        if let Some(der) = pem_der(&text) {
            let (label, der) = der?;
            let pkcs8 = if label == "EC PRIVATE KEY" {
                sec1_to_pkcs8(&der)
            } else {
                der
            };
            let ec = EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &pkcs8,
                &rng,
            );
            return match ec {
                Ok(k) => Ok(KeySigner::Es256(Box::new(k))),
                Err(ec_err) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
                    .map(|k| KeySigner::EdDsa(Box::new(k)))
                    .map_err(|_| KeyError::Unsupported(ec_err.to_string())),
            };
        }
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = STANDARD
            .decode(&compact)
            .map_err(|_| KeyError::Unrecognized)?;
        match raw.len() {
            64 => Ed25519KeyPair::from_seed_and_public_key(&raw[..32], &raw[32..])
                .map(|k| KeySigner::EdDsa(Box::new(k)))
                .map_err(|_| KeyError::Ed25519Mismatch),
            32 => Ed25519KeyPair::from_seed_unchecked(&raw)
                .map(|k| KeySigner::EdDsa(Box::new(k)))
                .map_err(|_| KeyError::Unrecognized),
            _ => Err(KeyError::Unrecognized),
        }
    }

    /// The JWT `alg`: `ES256` or `EdDSA`.
    pub fn alg(&self) -> &'static str {
        match self {
            KeySigner::Es256(_) => "ES256",
            KeySigner::EdDsa(_) => "EdDSA",
        }
    }

    /// The public key: the uncompressed point (ECDSA) or the 32 raw bytes (Ed25519).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            KeySigner::Es256(k) => k.public_key().as_ref().to_vec(),
            KeySigner::EdDsa(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// The signature over `message`: raw `r ‖ s` (64 bytes) or the Ed25519 signature; empty
    /// when the system RNG fails (Coinbase then refuses the token rather than a panic in the
    /// middle of an incident).
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            KeySigner::Es256(k) => k
                .sign(&ring::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            KeySigner::EdDsa(k) => k.sign(message).as_ref().to_vec(),
        }
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    nonce: &'a str,
    typ: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    nbf: i64,
    exp: i64,
    uri: &'a str,
}

/// The `uri` claim: `"GET api.coinbase.com/api/v3/brokerage/accounts"`. `base` is the API's
/// base URL; its scheme is dropped, its host, port and any path prefix kept.
pub fn uri_claim(method: &str, base: &str, path: &str) -> String {
    let host = base
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(base)
        .trim_end_matches('/');
    format!("{method} {host}{path}")
}

/// A fresh nonce: 32 random bytes in hex.
pub fn nonce() -> String {
    let mut b = [0u8; 32];
    // A failing system RNG leaves zeros: the token still names its request and expires.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    hex::encode(b)
}

/// The compact JWS of one request.
pub fn token(key: &KeySigner, key_name: &str, uri: &str, now_secs: i64, nonce: &str) -> String {
    let header = Header {
        alg: key.alg(),
        kid: key_name,
        nonce,
        typ: "JWT",
    };
    let claims = Claims {
        sub: key_name,
        iss: "cdp",
        nbf: now_secs,
        exp: now_secs + TOKEN_LIFETIME_SECS,
        uri,
    };
    // Serializing two structs of strings and integers cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(&claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The `Authorization` header of one request.
pub fn headers(key: &KeySigner, key_name: &str, uri: &str, now_secs: i64) -> Vec<(String, String)> {
    vec![(
        "Authorization".into(),
        format!("Bearer {}", token(key, key_name, uri, now_secs, &nonce())),
    )]
}
