//! Bybit v5 request signing: four headers, `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP`,
//! `X-BAPI-RECV-WINDOW` and `X-BAPI-SIGN`.
//!
//! The signed string is `timestamp + api_key + recv_window + payload`, where the payload is
//! the query string exactly as sent (a `GET`) or the raw JSON body exactly as sent (a `POST`;
//! `{}` when it has no field). Two kinds of key:
//! - **HMAC-SHA256** (keys Bybit generates): the secret string's bytes are the HMAC key, the
//!   signature is lowercase hex;
//! - **RSA** (self-generated keys): the secret is the PEM private key (PKCS#8 `PRIVATE KEY` or
//!   PKCS#1 `RSA PRIVATE KEY`), the signature RSASSA-PKCS1-v1_5 with SHA-256, in base64.
//!
//! The test vectors of `docs/exchanges/bybit.md` §3.2 pin the HMAC kind.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ring::signature::RsaKeyPair;
use sha2::Sha256;

use crate::secret::Secret;

/// How long after `X-BAPI-TIMESTAMP` Bybit may still accept a request, milliseconds.
pub const RECV_WINDOW_MS: i64 = 5000;

/// Why a secret cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret is a PEM private key but not an RSA one Bybit accepts ({0})")]
    NotRsa(String),
    #[error("the secret looks like a PEM private key but its body is not valid base64")]
    BadPem,
}

/// A key's signing half.
pub enum KeySigner {
    Hmac(Secret),
    Rsa(Box<RsaKeyPair>),
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeySigner::Hmac(_) => "KeySigner::Hmac",
            KeySigner::Rsa(_) => "KeySigner::Rsa",
        })
    }
}

/// The DER inside a PEM private key and whether it is PKCS#1 (`RSA PRIVATE KEY`), read
/// leniently (armor lines, whitespace and literal `\n` dropped); `None` when the secret is no
/// PEM private key.
fn pem_der(secret: &str) -> Option<Result<(Vec<u8>, bool), KeyError>> {
    if !secret.contains("PRIVATE KEY-----") {
        return None;
    }
    let pkcs1 = secret.contains("BEGIN RSA PRIVATE KEY");
    let text = secret.replace("\\n", "\n");
    let mut body = String::new();
    for chunk in text.split("-----") {
        let c = chunk.trim();
        if c.is_empty() || c.starts_with("BEGIN") || c.starts_with("END") {
            continue;
        }
        body.push_str(c);
    }
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    Some(
        STANDARD
            .decode(body)
            .map(|d| (d, pkcs1))
            .map_err(|_| KeyError::BadPem),
    )
}

impl KeySigner {
    /// HMAC for a plain secret, RSA for a PEM private key.
    pub fn from_secret(secret: &Secret) -> Result<KeySigner, KeyError> {
        match pem_der(secret.expose()) {
            None => Ok(KeySigner::Hmac(secret.clone())),
            Some(der) => {
                let (der, pkcs1) = der?;
                let kp = if pkcs1 {
                    RsaKeyPair::from_der(&der)
                } else {
                    RsaKeyPair::from_pkcs8(&der)
                };
                kp.map(|k| KeySigner::Rsa(Box::new(k)))
                    .map_err(|e| KeyError::NotRsa(e.to_string()))
            }
        }
    }

    /// `hmac` or `rsa`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            KeySigner::Hmac(_) => "hmac",
            KeySigner::Rsa(_) => "rsa",
        }
    }

    /// The `X-BAPI-SIGN` value of `payload`: lowercase hex for HMAC, base64 for RSA.
    pub fn sign(&self, payload: &str) -> String {
        match self {
            KeySigner::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(payload.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            KeySigner::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public().modulus_len()];
                // PKCS#1 v1.5 padding is deterministic; the RNG only blinds the operation.
                let rng = ring::rand::SystemRandom::new();
                match kp.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &rng,
                    payload.as_bytes(),
                    &mut sig,
                ) {
                    Ok(()) => STANDARD.encode(sig),
                    // Only a failing system RNG gets here: an empty signature Bybit refuses
                    // (10004) rather than a panic in the middle of an incident.
                    Err(_) => String::new(),
                }
            }
        }
    }
}

/// The string Bybit signs: `timestamp + api_key + recv_window + payload`.
pub fn payload(timestamp_ms: i64, api_key: &str, recv_window_ms: i64, rest: &str) -> String {
    format!("{timestamp_ms}{api_key}{recv_window_ms}{rest}")
}

/// The four `X-BAPI-*` headers of a request whose query or body is `rest`.
pub fn headers(
    key: &KeySigner,
    api_key: &str,
    timestamp_ms: i64,
    rest: &str,
) -> Vec<(String, String)> {
    let sign = key.sign(&payload(timestamp_ms, api_key, RECV_WINDOW_MS, rest));
    vec![
        ("X-BAPI-API-KEY".into(), api_key.to_string()),
        ("X-BAPI-TIMESTAMP".into(), timestamp_ms.to_string()),
        ("X-BAPI-RECV-WINDOW".into(), RECV_WINDOW_MS.to_string()),
        ("X-BAPI-SIGN".into(), sign),
    ]
}
