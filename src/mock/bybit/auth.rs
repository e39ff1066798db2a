//! Bybit's request signing (v5), verified independently from the client's signer on purpose
//! (the mock is the oracle the client is tested against).
//!
//! The signed text is `X-BAPI-TIMESTAMP + X-BAPI-API-KEY + X-BAPI-RECV-WINDOW + payload`,
//! the three header values as sent with no separator; the payload is the query string as
//! sent (GET) or the raw body bytes as sent (POST). The signature is the hex HMAC-SHA256 of
//! that text keyed with the secret (any case). A missing `X-BAPI-RECV-WINDOW` counts as
//! 5,000 ms and is left out of the text.
//!
//! Checks run in this order, each failure with Bybit's `retCode`: `X-BAPI-API-KEY` present
//! and the key known and not deleted (10003); `X-BAPI-TIMESTAMP` digits and the window a
//! number (10002, 10001); the signature present and valid (10004); the timestamp within
//! `server − recv_window ≤ ts < server + 1000` (10002); the caller's IP bound to the key
//! (10010); the key unexpired (33004); then the endpoint's permission (10005).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::errors::{self, ApiErr};
use crate::mock::venue::keys::{KeyRec, Permission};

/// The recv window when the header is absent, in ms.
pub const DEFAULT_RECV_WINDOW: i64 = 5_000;

/// The text a request's signature covers.
pub fn sign_text(
    timestamp: &str,
    api_key: &str,
    recv_window: Option<&str>,
    payload: &str,
) -> String {
    format!(
        "{timestamp}{api_key}{}{payload}",
        recv_window.unwrap_or_default()
    )
}

/// Whether `sig_hex` is the HMAC-SHA256 of `text` keyed with `secret` (hex, any case).
pub fn verify_hmac(secret: &str, text: &str, sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(text.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// What the verifier needs to know about a signed request.
pub struct Signed<'a> {
    pub api_key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub recv_window: Option<&'a str>,
    pub sign: Option<&'a str>,
    /// The raw query (GET) or body (POST).
    pub payload: &'a str,
    pub ip: Option<IpAddr>,
    /// What the endpoint needs the key to be allowed.
    pub need: Permission,
}

/// The timestamp and window of a request: (timestamp ms, window ms).
pub fn parse_time(ts: Option<&str>, recv: Option<&str>) -> Result<(i64, i64), ApiErr> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    let ts = ts
        .filter(|s| digits(s))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| errors::expired(0, 0, DEFAULT_RECV_WINDOW))?;
    let window = match recv {
        None => DEFAULT_RECV_WINDOW,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|w| *w > 0 && digits(s))
            .ok_or_else(|| errors::bad_param("recv_window"))?,
    };
    Ok((ts, window))
}

/// `server − window ≤ ts < server + 1000` (10002 otherwise).
pub fn check_time(ts: i64, window: i64, now_ms: i64) -> Result<(), ApiErr> {
    if ts >= now_ms + 1000 || now_ms - ts > window {
        return Err(errors::expired(ts, now_ms, window));
    }
    Ok(())
}

/// Whether a key may read (every Bybit key reads), trade (not read-only), or the class.
pub fn allowed(key: &KeyRec, need: Permission) -> bool {
    match need {
        Permission::Read => true,
        other => key.can(other),
    }
}

/// Runs the checks in order. `lookup` finds a key; on failure the error comes with the key
/// the request named (for the request log), when it named one.
pub fn authenticate(
    req: &Signed<'_>,
    lookup: impl Fn(&str) -> Option<KeyRec>,
    now: DateTime<Utc>,
) -> Result<KeyRec, (ApiErr, Option<String>)> {
    let ak = req
        .api_key
        .filter(|k| !k.is_empty())
        .ok_or((errors::invalid_key(), None))?;
    let named = Some(ak.to_string());
    let fail = |e: ApiErr| (e, named.clone());
    let key = lookup(ak)
        .filter(|k| !k.is_revoked())
        .ok_or_else(|| fail(errors::invalid_key()))?;
    let (ts, window) = parse_time(req.timestamp, req.recv_window).map_err(fail)?;
    let sig = req
        .sign
        .filter(|s| !s.is_empty())
        .ok_or_else(|| fail(errors::bad_sign()))?;
    let text = sign_text(
        req.timestamp.unwrap_or_default(),
        ak,
        req.recv_window,
        req.payload,
    );
    if !verify_hmac(&key.secret_key, &text, sig) {
        return Err(fail(errors::bad_sign()));
    }
    check_time(ts, window, now.timestamp_millis()).map_err(fail)?;
    if !key.ip_allowed(req.ip) {
        return Err(fail(errors::ip_mismatch()));
    }
    if key.is_expired(now) {
        return Err(fail(errors::key_expired()));
    }
    if !allowed(&key, req.need) {
        return Err(fail(errors::permission()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "respond-test-bybit-key";
    const SECRET: &str = "respond-test-bybit-secret-000000000000";
    const TS: &str = "1735776000000";

    fn ok(payload: &str, sig: &str) -> bool {
        verify_hmac(SECRET, &sign_text(TS, KEY, Some("5000"), payload), sig)
    }

    #[test]
    fn reference_vectors_verify() {
        // docs/exchanges/bybit.md §3.2, Y1 to Y4.
        assert!(ok(
            "category=spot&symbol=BTCUSDT&startTime=1735171200000&endTime=1735775999999&limit=100",
            "27c14cdd792d427297a88c64786b714c17c588fdd2af3f5fa640fb7c66b5e670"
        ));
        assert!(ok(
            r#"{"category":"spot"}"#,
            "87820d362e3015b803852b42a124f88add2291bbf34490152859e4f70d53ed2a"
        ));
        assert!(ok(
            "{}",
            "7c22fd444c701adaf5ffd1d87223d0fe496774da2216e710f62473edd17d4f7d"
        ));
        assert!(ok(
            "",
            "fc7ea1f6822d915f1d6ad2efb7ba77e0dda0f83ac9494b8c883bc32f6297f78a"
        ));
        assert!(ok(
            "",
            &"fc7ea1f6822d915f1d6ad2efb7ba77e0dda0f83ac9494b8c883bc32f6297f78a".to_uppercase()
        ));
        // The body's bytes as sent: a space changes the signature.
        assert!(!ok(
            r#"{"category": "spot"}"#,
            "87820d362e3015b803852b42a124f88add2291bbf34490152859e4f70d53ed2a"
        ));
        assert!(!ok("", "not hex"));
    }

    #[test]
    fn the_window_is_server_minus_recv_window_to_a_second_ahead() {
        let now = 1_735_776_000_000i64;
        assert!(check_time(now, 5000, now).is_ok());
        assert!(check_time(now + 999, 5000, now).is_ok());
        assert_eq!(check_time(now + 1000, 5000, now).unwrap_err().code, 10002);
        assert!(check_time(now - 5000, 5000, now).is_ok());
        assert_eq!(check_time(now - 5001, 5000, now).unwrap_err().code, 10002);
        assert_eq!(parse_time(Some("12a"), None).unwrap_err().code, 10002);
        assert_eq!(parse_time(None, None).unwrap_err().code, 10002);
        assert_eq!(parse_time(Some("1"), Some("x")).unwrap_err().code, 10001);
        assert_eq!(parse_time(Some("1"), None).unwrap(), (1, 5000));
    }
}
