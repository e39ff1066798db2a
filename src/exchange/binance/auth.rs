//! Binance request signing: `X-MBX-APIKEY`, then `recvWindow`, `timestamp` and `signature`
//! appended to the query.
//!
//! The signed payload is the query string exactly as sent (form-urlencoded, parameters in
//! order) with `recvWindow` and `timestamp` last; everything goes in the query (Binance accepts
//! it for `DELETE`, and the request body stays empty, so "query + body" is the query). Two
//! kinds of key:
//! - **HMAC-SHA256** (keys Binance generates): the secret string's bytes are the HMAC key,
//!   the signature is lowercase hex;
//! - **Ed25519** (self-generated keys, Binance's recommendation): the secret is the PEM
//!   private key (PKCS#8), the signature the base64 of the 64-byte signature, percent-encoded
//!   in the query like every value.
//!
//! RSA keys are refused with a clear error at connect time. The test vectors of
//! `docs/exchanges/binance.md` §3.2 pin both kinds.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use sha2::Sha256;

use crate::secret::Secret;

/// How long after `timestamp` Binance may still accept a request, milliseconds (its default).
pub const RECV_WINDOW_MS: i64 = 5000;

/// Why a secret cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret is a PEM private key but not an Ed25519 one ({0}); Binance's self-generated keys must be Ed25519 here (RSA keys are not supported)")]
    NotEd25519(String),
    #[error("the secret looks like a PEM private key but its body is not valid base64")]
    BadPem,
}

/// A key's signing half.
pub enum KeySigner {
    Hmac(Secret),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySigner::Hmac(_) => f.write_str("KeySigner::Hmac"),
            KeySigner::Ed25519(_) => f.write_str("KeySigner::Ed25519"),
        }
    }
}

/// The PKCS#8 DER inside a PEM private key, read leniently: the armor lines, whitespace and
/// literal `\n` sequences (a PEM pasted into a one-line variable) are dropped. `None` when the
/// secret is no PEM private key.
fn pem_der(secret: &str) -> Option<Result<Vec<u8>, KeyError>> {
    if !secret.contains("PRIVATE KEY-----") {
        return None;
    }
    let mut body = String::new();
    let text = secret.replace("\\n", "\n");
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            inside = true;
            // A one-line PEM: `-----BEGIN PRIVATE KEY-----MC4C…-----END PRIVATE KEY-----`.
            if let Some(rest) = line.split("-----").nth(2) {
                body.push_str(rest);
            }
            if line.contains("-----END") {
                break;
            }
            continue;
        }
        if line.starts_with("-----END") {
            break;
        }
        if inside {
            body.push_str(line);
        }
    }
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    Some(STANDARD.decode(body).map_err(|_| KeyError::BadPem))
}

impl KeySigner {
    /// HMAC for a plain secret, Ed25519 for a PEM private key.
    pub fn from_secret(secret: &Secret) -> Result<KeySigner, KeyError> {
        match pem_der(secret.expose()) {
            None => Ok(KeySigner::Hmac(secret.clone())),
            Some(der) => {
                let der = der?;
                // The key body is as secret as the PEM it came from.
                let _ = Secret::new(STANDARD.encode(&der));
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map(KeySigner::Ed25519)
                    .map_err(|e| KeyError::NotEd25519(e.to_string()))
            }
        }
    }

    /// `hmac` or `ed25519`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            KeySigner::Hmac(_) => "hmac",
            KeySigner::Ed25519(_) => "ed25519",
        }
    }

    /// The signature of `payload` as the `signature` parameter's value (before the query's
    /// percent-encoding): lowercase hex for HMAC, base64 for Ed25519.
    pub fn sign(&self, payload: &str) -> String {
        match self {
            KeySigner::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
                mac.update(payload.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            KeySigner::Ed25519(kp) => STANDARD.encode(kp.sign(payload.as_bytes()).as_ref()),
        }
    }

    /// The raw Ed25519 public key (tests compare it with the PEM's).
    pub fn public_key(&self) -> Option<Vec<u8>> {
        match self {
            KeySigner::Hmac(_) => None,
            KeySigner::Ed25519(kp) => Some(kp.public_key().as_ref().to_vec()),
        }
    }
}

/// The parameters a signed call sends after its own: `recvWindow`, `timestamp` and the
/// `signature` over all of them, as [`crate::exchange::http::encode_query`] will send them.
pub fn signed_params(
    key: &KeySigner,
    params: &[(String, String)],
    timestamp_ms: i64,
) -> Vec<(String, String)> {
    let mut all = params.to_vec();
    let tail = [
        ("recvWindow".to_string(), RECV_WINDOW_MS.to_string()),
        ("timestamp".to_string(), timestamp_ms.to_string()),
    ];
    all.extend(tail.iter().cloned());
    let payload = crate::exchange::http::encode_query(&all);
    let mut out = tail.to_vec();
    out.push(("signature".to_string(), key.sign(&payload)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::http::{encode_query, p};

    const SECRET: &str = "respond-test-binance-secret-0000000000000000000000000000000000";
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----\n";
    const B1: &str = "symbol=BTCUSDT&startTime=1735689600000&endTime=1735775999999&limit=1000&recvWindow=5000&timestamp=1735776000000";
    const B4: &str = "timestamp=1735776000000&recvWindow=5000";

    fn hmac() -> KeySigner {
        KeySigner::from_secret(&Secret::new(SECRET)).unwrap()
    }

    #[test]
    fn hmac_matches_the_documented_vectors() {
        let k = hmac();
        assert_eq!(k.kind(), "hmac");
        // Binance's own published example.
        let official = KeySigner::Hmac(Secret::new(
            "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        ));
        assert_eq!(
            official.sign("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        assert_eq!(
            k.sign(B1),
            "ea3ae1da20d4e0f246cb68a28e9a7138f9878967a3c1f58dfcd0cd388802d25e"
        );
        assert_eq!(
            k.sign(B4),
            "7e46599a5dd1323495b8305abf0e82a9376f376edb9b17417d438b6030045bcc"
        );
        assert_eq!(
            k.sign("symbol=BTCUSDT&recvWindow=5000&timestamp=1735776000000side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01&price=100000"),
            "1ddc10726c6078f1b6f435a1fe4c74346df8ec387c69149ad4d24139672c19ce"
        );
    }

    #[test]
    fn the_signed_query_is_the_sent_query() {
        let params = vec![
            p("symbol", "BTCUSDT"),
            p("startTime", 1735689600000i64),
            p("endTime", 1735775999999i64),
            p("limit", 1000),
        ];
        let extra = signed_params(&hmac(), &params, 1735776000000);
        let mut sent = params.clone();
        sent.extend(extra);
        assert_eq!(
            encode_query(&sent),
            format!(
                "{B1}&signature=ea3ae1da20d4e0f246cb68a28e9a7138f9878967a3c1f58dfcd0cd388802d25e"
            )
        );
    }

    #[test]
    fn ed25519_matches_the_documented_vectors_percent_encoded() {
        let k = KeySigner::from_secret(&Secret::new(PEM)).unwrap();
        assert_eq!(k.kind(), "ed25519");
        assert_eq!(
            hex::encode(k.public_key().unwrap()),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        let as_sent = |payload: &str| encode_query(&[p("signature", k.sign(payload))]);
        assert_eq!(
            as_sent(B1),
            "signature=sr%2F3VOG1XTVCb3xEyV4xZHnr4oHlxgQXIcgGDW9MjI%2B51cRfGSkKkoEyS7eAbC1guDn9fmE8XPwx0e6mTEOwBA%3D%3D"
        );
        assert_eq!(
            as_sent(B4),
            "signature=Gb6a6ioLFaZc1fk%2BXR7GNUIg3q5k0N18sF6qvKPXTB7GgV3a1AyQ5Jw72w7ljFOkdIdtFXsihldCM29jOkZ6DA%3D%3D"
        );
    }

    /// A PEM pasted into one line of a credentials file signs the same.
    #[test]
    fn one_line_pems_are_read() {
        for pem in [
            PEM.replace('\n', "\\n"),
            PEM.replace('\n', ""),
            PEM.replace('\n', " "),
        ] {
            let k = KeySigner::from_secret(&Secret::new(pem.clone())).unwrap();
            assert_eq!(k.kind(), "ed25519", "{pem}");
            assert_eq!(
                hex::encode(k.public_key().unwrap()),
                "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
            );
        }
    }

    #[test]
    fn other_pems_are_refused_without_showing_them() {
        let rsa_like = "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAq7BFUpkGp3+LQmlQ\n-----END PRIVATE KEY-----";
        let e = KeySigner::from_secret(&Secret::new(rsa_like)).unwrap_err();
        assert!(matches!(e, KeyError::NotEd25519(_)));
        assert!(!e.to_string().contains("MIIB"), "{e}");
        let e = KeySigner::from_secret(&Secret::new(
            "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
        ))
        .unwrap_err();
        assert_eq!(e, KeyError::BadPem);
    }
}
