//! Bybit's `retCode`s: what kind of refusal each is, and what a user should do about it.
//!
//! Bybit answers business and most authentication errors with HTTP 200 and a `retCode` other
//! than 0 in the envelope, so every body is checked ([`super::client`]'s protocol). Unlike
//! Binance, each refusal has its own code: `10003` an unknown (deleted) key, `10004` a bad
//! signature, `10005` a missing permission, `10010` an IP outside the key's binding: no code
//! needs the run's context to read.

use crate::exchange::ErrorKind;
use crate::rundir::RawSidecar;

/// `10003`: the key is unknown (deleted, mistyped, another environment's).
pub const INVALID_KEY: &str = "10003";
/// `10006`: over the endpoint's per-second limit.
pub const RATE_LIMIT: &str = "10006";

/// The kind and the advice for a Bybit `retCode`. Unknown codes are [`ErrorKind::Other`]; an
/// unknown code with an HTTP 5xx is a [`ErrorKind::ServerError`] ([`kind_of`]).
pub fn classify(code: &str) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    match code {
        "10003" => (KeyInvalid, "Bybit does not know this API key (API key is invalid): after it worked in this run it was deleted; continue with a read-only key"),
        // Not proof that the key is gone (a header or auth-service fault answers it too): it
        // refuses the key without ever reading as a deletion.
        "10007" => (BadSignature, "Bybit could not authenticate the request (User authentication failed): check the BYBIT_ACCESS_KEY and BYBIT_SECRET_KEY you entered"),
        "33004" => (KeyExpired, "the API key expired (keys without an IP binding expire after 3 months): it no longer works"),
        "10004" => (BadSignature, "the signature did not verify: the secret (HMAC secret or RSA private key in PEM form) does not belong to this API key; check both values"),
        "10002" => (ClockSkew, "the request's timestamp was outside Bybit's recv_window: this machine's clock is off; respond corrects it once from GET /v5/market/time, so fix the system clock (NTP) if this persists"),
        "10005" => (PermissionDenied, "the key lacks the permission for this call (Permission denied)"),
        "10027" => (PermissionDenied, "Bybit banned transactions on this account (Transactions are banned); contact Bybit support"),
        "10010" => (IpNotAllowed, "this machine's IP is not bound to the key (Unmatched IP): run from an IP the key allows, or use a read-only key bound to this one"),
        "10006" => (RateLimited, "too many requests to this endpoint (Too many visits); respond paces itself, so another client uses this account's keys: stop it"),
        "170213" | "110001" => (NotFound, "the order does not exist, or is no longer open (Order does not exist)"),
        "170142" | "170143" => (NotFound, "the order was already cancelled or is no longer on the book"),
        "131001" => (NotFound, "Bybit knows no such withdrawal, or it can no longer be cancelled"),
        "170131" | "110004" | "110007" | "110012" | "131212" | "131228" => (InsufficientFunds, "not enough balance"),
        "181010" => (InvalidRequest, "the window between startTime and endTime is longer than Bybit's 7 days: this is a client bug, please report it"),
        "10001" | "10017" | "170130" => (InvalidRequest, "Bybit refused a parameter of the request (or its path): this is a client bug, please report it"),
        "10016" => (ServerError, "Bybit had an internal problem; reads are retried automatically"),
        _ => (Other, "see Bybit's error code list (v5/error in Bybit's API docs) for this code"),
    }
}

/// The kind of `code` answered with `status`.
pub fn kind_of(status: u16, code: &str) -> ErrorKind {
    let (kind, _) = classify(code);
    if kind == ErrorKind::Other && status >= 500 {
        ErrorKind::ServerError
    } else {
        kind
    }
}

/// The `retCode` and kind of a saved error answer (the offline view of the live
/// classification); `None` when the body is no Bybit error.
pub fn error_of(side: &RawSidecar, body: &[u8]) -> Option<(String, ErrorKind)> {
    let (code, _) = super::wire::parse_error(body)?;
    let kind = kind_of(side.status, &code);
    Some((code, kind))
}

/// What to do about a key refused from its very first request.
pub fn never_accepted_advice(_kind: ErrorKind, code: &str) -> &'static str {
    match code {
        "10004" => "the secret does not belong to this API key: check both values you entered (BYBIT_SECRET_KEY is the HMAC secret, or the RSA private key in PEM form, of BYBIT_ACCESS_KEY) and run again",
        "10002" => "Bybit refused the request's timestamp even after respond corrected its clock from GET /v5/market/time: fix the system clock (NTP) and run again",
        "33004" => "the key had already expired (Bybit keys without an IP binding expire after 3 months): it cannot be used any more, by you or by a thief; continue with a read-only key: BYBIT_READONLY_ACCESS_KEY=… BYBIT_READONLY_SECRET_KEY=… respond resume RUN_DIR",
        _ => "Bybit answers 10003 (API key is invalid) for a key it does not know: mistyped, another account's or the testnet's, or already deleted. Check the key you entered, or, if you already deleted the key, confirm under API Management that it is gone and continue with a read-only key: BYBIT_READONLY_ACCESS_KEY=… BYBIT_READONLY_SECRET_KEY=… respond resume RUN_DIR",
    }
}
