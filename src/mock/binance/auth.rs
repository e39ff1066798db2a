//! Binance's request signing, verified independently from the client's signer on purpose
//! (the mock is the oracle the client is tested against).
//!
//! The signed payload is the query string as sent, without its `signature=` pair, followed by
//! the form body as sent, without its `signature=` pair, with no separator between them. An
//! HMAC key's signature is the hex HMAC-SHA256 of that payload keyed with the secret (any
//! case); an Ed25519 key's is the base64 of the 64-byte signature, percent-encoded in the
//! request, checked with the public key the mock kept (a `+` sent unencoded arrives as a
//! space and fails, as it does at Binance).
//!
//! Checks run in this order, each failure with Binance's code: `X-MBX-APIKEY` present and
//! shaped like a key (`-2014`), the key known and not deleted (`-2015`), the client IP on the
//! key's list (`-2015`), `timestamp` (`-1102`), `recvWindow` at most 60,000 ms (`-1131`),
//! `timestamp` no more than a second ahead of the mock's clock nor older than `recvWindow`
//! (`-1021`), `signature` present (`-1102`) and valid (`-1022`), then the permission the
//! endpoint needs (`-2015`; trading also needs the key's trading authority unexpired).

use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use sha2::Sha256;

use super::errors::{self, ApiErr};
use crate::mock::venue::keys::{self, KeyRec, KeyType, Permission};

/// Decoded parameters in the order sent.
pub type Params = Vec<(String, String)>;

/// The first value of a parameter.
pub fn first<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

fn segment_key(seg: &str) -> String {
    let k = seg.split_once('=').map_or(seg, |(k, _)| k);
    decode(k)
}

/// Form-decodes one component (`+` is a space).
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Decodes a query string or form body into pairs; `-1101` when a name appears twice.
pub fn parse_pairs(raw: &str) -> Result<Params, ApiErr> {
    let pairs: Params = url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &pairs {
        if !seen.insert(k.as_str()) {
            return Err(errors::duplicate_param());
        }
    }
    Ok(pairs)
}

/// The query's and the body's parameters together; a name in both takes the query's value.
pub fn merge(query: Params, body: Params) -> Params {
    let mut out = query;
    for (k, v) in body {
        if !out.iter().any(|(a, _)| *a == k) {
            out.push((k, v));
        }
    }
    out
}

/// The signed payload (`query + body`, each without its `signature` pair, bytes as sent) and
/// the signature's value as sent (still encoded).
pub fn payload(raw_query: &str, raw_body: &str) -> (String, Option<String>) {
    let mut sig = None;
    let mut strip = |raw: &str| -> String {
        if raw.is_empty() {
            return String::new();
        }
        raw.split('&')
            .filter(|seg| {
                if segment_key(seg) == "signature" {
                    if sig.is_none() {
                        sig = Some(seg.split_once('=').map_or("", |(_, v)| v).to_string());
                    }
                    false
                } else {
                    true
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let q = strip(raw_query);
    let b = strip(raw_body);
    (q + &b, sig)
}

/// Whether `sig_hex` is the HMAC-SHA256 of `payload` keyed with `secret` (hex, any case).
pub fn verify_hmac(secret: &str, payload: &str, sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// Whether `sig_sent` (base64, percent-encoded as sent) is an Ed25519 signature of `payload`
/// by the key in `public_pem`.
pub fn verify_ed25519(public_pem: &str, payload: &str, sig_sent: &str) -> bool {
    let Some(pk) = keys::ed25519_public_key(public_pem) else {
        return false;
    };
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(decode(sig_sent)) else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk)
        .verify(payload.as_bytes(), &sig)
        .is_ok()
}

/// `X-MBX-APIKEY`: present, non-empty, letters and digits only.
pub fn key_header(h: Option<&str>) -> Result<&str, ApiErr> {
    match h {
        Some(k)
            if !k.is_empty() && k.len() <= 256 && k.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(k)
        }
        _ => Err(errors::bad_key_format()),
    }
}

/// Milliseconds of `recvWindow` (default 5,000; up to three decimals).
pub fn recv_window(p: &Params) -> Result<Decimal, ApiErr> {
    match first(p, "recvWindow") {
        None => Ok(Decimal::from(5000)),
        Some(s) => {
            let w: Decimal = s
                .parse()
                .ok()
                .filter(|w: &Decimal| *w > Decimal::ZERO && w.scale() <= 3)
                .ok_or_else(|| errors::mandatory("recvWindow"))?;
            if w > Decimal::from(60_000) {
                return Err(errors::bad_recv_window());
            }
            Ok(w)
        }
    }
}

/// The `timestamp`/`recvWindow` check against the mock's clock (`now_ms`).
pub fn check_time(p: &Params, now_ms: i64) -> Result<(), ApiErr> {
    let ts: i64 = first(p, "timestamp")
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| errors::mandatory("timestamp"))?;
    let window = recv_window(p)?;
    if ts >= now_ms + 1000 {
        return Err(errors::ahead_of_server());
    }
    if Decimal::from(now_ms - ts) > window {
        return Err(errors::outside_recv_window());
    }
    Ok(())
}

/// What the verifier needs to know about a signed request.
pub struct Signed<'a> {
    pub api_key: Option<&'a str>,
    pub raw_query: &'a str,
    pub raw_body: &'a str,
    /// The merged parameters.
    pub params: &'a Params,
    pub ip: Option<IpAddr>,
    /// What the endpoint needs the key to be allowed.
    pub need: Permission,
}

/// Runs the checks in order. `lookup` finds a key; on failure the error comes with the key
/// the request named (for the request log), when it named one.
pub fn authenticate(
    req: &Signed<'_>,
    lookup: impl Fn(&str) -> Option<KeyRec>,
    now: DateTime<Utc>,
) -> Result<KeyRec, (ApiErr, Option<String>)> {
    let ak = key_header(req.api_key).map_err(|e| (e, None))?;
    let named = Some(ak.to_string());
    let fail = |e: ApiErr| (e, named.clone());
    let key = lookup(ak).ok_or_else(|| fail(errors::rejected_key()))?;
    if key.is_revoked() || !key.ip_allowed(req.ip) {
        return Err(fail(errors::rejected_key()));
    }
    check_time(req.params, now.timestamp_millis()).map_err(fail)?;
    let (payload, sig) = payload(req.raw_query, req.raw_body);
    let sig = sig
        .filter(|s| !s.is_empty())
        .ok_or_else(|| fail(errors::mandatory("signature")))?;
    let valid = match (key.key_type, &key.public_key) {
        (KeyType::Hmac, _) => verify_hmac(&key.secret_key, &payload, &sig),
        (KeyType::Ed25519, Some(pem)) => verify_ed25519(pem, &payload, &sig),
        // Binance issues no P-256 keys (the scenario is refused before this).
        (KeyType::Ed25519, None) | (KeyType::Es256, _) => false,
    };
    if !valid {
        return Err(fail(errors::bad_signature()));
    }
    let allowed = key.can(req.need)
        && !(req.need == Permission::Trade && key.is_expired(now))
        && (req.need == Permission::Read || key.can(Permission::Read));
    if !allowed {
        return Err(fail(errors::rejected_key()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "respond-test-binance-secret-0000000000000000000000000000000000";
    const B1: &str = "symbol=BTCUSDT&startTime=1735689600000&endTime=1735775999999&limit=1000&recvWindow=5000&timestamp=1735776000000";
    const B4: &str = "timestamp=1735776000000&recvWindow=5000";
    const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn reference_hmac_vectors_verify_over_query_plus_body() {
        // Binance's published example.
        assert!(verify_hmac(
            "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        ));
        let sig1 = "ea3ae1da20d4e0f246cb68a28e9a7138f9878967a3c1f58dfcd0cd388802d25e";
        let (p, s) = payload(&format!("{B1}&signature={sig1}"), "");
        assert_eq!((p.as_str(), s.as_deref()), (B1, Some(sig1)));
        assert!(verify_hmac(SECRET, &p, sig1));
        assert!(
            verify_hmac(SECRET, &p, &sig1.to_uppercase()),
            "hex in any case"
        );
        assert!(!verify_hmac(SECRET, &p, &sig1.replace('e', "f")));
        assert!(!verify_hmac("other", &p, sig1));
        // B3: part in the query, part in the body, signature at the end of the body.
        let q = "symbol=BTCUSDT&recvWindow=5000&timestamp=1735776000000";
        let b = "side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01&price=100000";
        let sig3 = "1ddc10726c6078f1b6f435a1fe4c74346df8ec387c69149ad4d24139672c19ce";
        let (p, s) = payload(q, &format!("{b}&signature={sig3}"));
        assert_eq!(p, format!("{q}{b}"), "no separator at the join");
        assert!(verify_hmac(SECRET, &p, s.as_deref().unwrap()));
        assert!(verify_hmac(
            SECRET,
            B4,
            "7e46599a5dd1323495b8305abf0e82a9376f376edb9b17417d438b6030045bcc"
        ));
    }

    #[test]
    fn reference_ed25519_vectors_verify_with_the_public_key() {
        let e1 = "sr%2F3VOG1XTVCb3xEyV4xZHnr4oHlxgQXIcgGDW9MjI%2B51cRfGSkKkoEyS7eAbC1guDn9fmE8XPwx0e6mTEOwBA%3D%3D";
        let e4 = "Gb6a6ioLFaZc1fk%2BXR7GNUIg3q5k0N18sF6qvKPXTB7GgV3a1AyQ5Jw72w7ljFOkdIdtFXsihldCM29jOkZ6DA%3D%3D";
        assert!(verify_ed25519(PUBLIC, B1, e1));
        assert!(verify_ed25519(PUBLIC, B4, e4));
        assert!(
            !verify_ed25519(PUBLIC, B1, e4),
            "another payload's signature"
        );
        // Sent without percent-encoding, the `+` arrives as a space.
        assert!(!verify_ed25519(PUBLIC, B4, &e4.replace("%2B", "+")));
        let (_, other) = keys::ed25519_pem_pair(&[7; 32]);
        assert!(!verify_ed25519(&other, B1, e1), "another key");
    }

    #[test]
    fn parameters_decode_merge_and_refuse_duplicates() {
        let q = parse_pairs("symbol=BTCUSDT&newClientOrderId=a%2Bb&x=1+2").unwrap();
        assert_eq!(first(&q, "newClientOrderId"), Some("a+b"));
        assert_eq!(first(&q, "x"), Some("1 2"));
        assert_eq!(parse_pairs("a=1&a=2").unwrap_err().code, -1101);
        let m = merge(q, parse_pairs("symbol=ETHUSDT&side=BUY").unwrap());
        assert_eq!(first(&m, "symbol"), Some("BTCUSDT"), "the query wins");
        assert_eq!(first(&m, "side"), Some("BUY"));
    }

    #[test]
    fn timestamps_within_the_window_and_not_ahead() {
        let p = |s: &str| parse_pairs(s).unwrap();
        let now = 1_735_776_000_000i64;
        assert!(check_time(&p(&format!("timestamp={now}")), now).is_ok());
        assert!(check_time(&p(&format!("timestamp={}", now + 999)), now).is_ok());
        assert_eq!(
            check_time(&p(&format!("timestamp={}", now + 1000)), now).unwrap_err(),
            errors::ahead_of_server()
        );
        assert_eq!(
            check_time(&p(&format!("timestamp={}", now - 5001)), now).unwrap_err(),
            errors::outside_recv_window()
        );
        assert!(check_time(
            &p(&format!("timestamp={}&recvWindow=10000", now - 9000)),
            now
        )
        .is_ok());
        assert!(check_time(
            &p(&format!("timestamp={}&recvWindow=5000.5", now - 5000)),
            now
        )
        .is_ok());
        assert_eq!(
            check_time(&p(&format!("timestamp={now}&recvWindow=60001")), now)
                .unwrap_err()
                .code,
            -1131
        );
        assert_eq!(check_time(&p("recvWindow=1"), now).unwrap_err().code, -1102);
        assert_eq!(
            check_time(&p("timestamp=12a"), now).unwrap_err().code,
            -1102
        );
        assert_eq!(key_header(None).unwrap_err().code, -2014);
        assert_eq!(key_header(Some("abc-def")).unwrap_err().code, -2014);
        assert!(key_header(Some("abcDEF123")).is_ok());
    }
}
