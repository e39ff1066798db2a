//! KuCoin's error codes: what kind of refusal each is, and what a user should do about it.
//!
//! KuCoin answers `{"code":"<6 digits>","msg":"…"}`; success is `200000`. Authentication errors
//! mostly come with HTTP 401/403, business errors with 400 or inside an HTTP 200, so every body
//! is checked ([`super::client`]'s protocol). Each refusal has its own code: `400003` an unknown
//! (deleted) key, `400004` a wrong passphrase, `400005` a bad signature, `400006` an IP outside
//! the key's whitelist, `400007` a missing permission, `400002` a timestamp out of tolerance,
//! `429000` over a rate limit.

use crate::exchange::ErrorKind;
use crate::rundir::RawSidecar;

/// `400003`: the key is unknown (deleted, mistyped, another account's).
pub const INVALID_KEY: &str = "400003";
/// `429000`: over a resource pool's quota.
pub const RATE_LIMIT: &str = "429000";
/// `404000`: KuCoin does not serve this path.
pub const NO_SUCH_PATH: &str = "404000";

/// The kind and the advice for a KuCoin code. Unknown codes are [`ErrorKind::Other`]; an
/// unknown code with an HTTP 5xx is a [`ErrorKind::ServerError`] ([`kind_of`]).
pub fn classify(code: &str) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    match code {
        "400003" => (KeyInvalid, "KuCoin does not know this API key (KC-API-KEY not exists): after it worked in this run it was deleted; continue with a read-only key"),
        // A header stripped on the way (a proxy) is no proof that the key is gone.
        "400001" => (BadSignature, "KuCoin found an authentication header missing: check that KUCOIN_ACCESS_KEY, KUCOIN_SECRET_KEY and KUCOIN_PASSPHRASE are all set"),
        "400004" => (BadSignature, "the passphrase is wrong (KC-API-PASSPHRASE error): KUCOIN_PASSPHRASE must be the passphrase chosen when the key was created, not the trading password"),
        "400005" => (BadSignature, "the signature did not verify (Signature error): KUCOIN_SECRET_KEY does not belong to this API key; check both values"),
        "400002" => (ClockSkew, "KuCoin refused the request's timestamp (more than 5 s from its clock): respond corrects its clock from GET /api/v1/timestamp, so fix the system clock (NTP) if this persists"),
        "400006" => (IpNotAllowed, "this machine's IP is not on the key's IP restriction: run from an IP the key allows, or use a read-only key restricted to this one"),
        "400007" => (PermissionDenied, "the key lacks the permission for this call (Access Denied): KuCoin keys hold General, Spot, Margin, Futures, Transfer, Withdrawal … permissions"),
        "411100" => (PermissionDenied, "KuCoin froze this account (User are frozen): contact KuCoin support"),
        "429000" => (RateLimited, "too many requests (a resource pool's quota is used up); respond paces itself, so another client uses this account's keys: stop it"),
        "order_not_exist" | "order_not_exist_or_not_allow_to_cancel" => (NotFound, "KuCoin knows no such order, or it can no longer be cancelled"),
        "400100" => (InvalidRequest, "KuCoin refused a parameter of the request (400100): this is a client bug, please report it"),
        "260000" | "115008" => (NotFound, "KuCoin knows no such withdrawal, or it can no longer be cancelled (only PROCESSING withdrawals can)"),
        "200004" | "230003" | "600100" => (InsufficientFunds, "not enough balance"),
        "126001" => (InvalidRequest, "this account does not use KuCoin's high-frequency spot endpoints: this is a client bug, please report it"),
        "415000" | "400200" => (InvalidRequest, "KuCoin refused a parameter of the request: this is a client bug, please report it"),
        "404000" => (InvalidRequest, "KuCoin does not serve this path (Url Not Found)"),
        "500000" | "503000" => (ServerError, "KuCoin had an internal problem; reads are retried automatically"),
        _ => (Other, "see KuCoin's error code list (Spot → Errors in KuCoin's API docs) for this code"),
    }
}

/// The kind of `code` answered with `status` and `msg`: KuCoin's parameter error `400100`
/// also says "the order does not exist" (by its message only).
pub fn kind_of_msg(status: u16, code: &str, msg: &str) -> ErrorKind {
    let m = msg.to_ascii_lowercase();
    if code == "400100" && (m.contains("not exist") || m.contains("not_exist")) {
        return ErrorKind::NotFound;
    }
    kind_of(status, code)
}

/// The advice for `code` with `msg` (see [`kind_of_msg`]).
pub fn advice_msg(code: &str, msg: &str) -> &'static str {
    match kind_of_msg(400, code, msg) {
        ErrorKind::NotFound if code == "400100" => classify("order_not_exist").1,
        _ => classify(code).1,
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

/// The code and kind of a saved error answer (the offline view of the live classification);
/// `None` when the body is no KuCoin error.
pub fn error_of(side: &RawSidecar, body: &[u8]) -> Option<(String, ErrorKind)> {
    let (code, msg) = super::wire::parse_error(body)?;
    let kind = kind_of_msg(side.status, &code, &msg);
    Some((code, kind))
}

/// What to do about a key refused from its very first request.
pub fn never_accepted_advice(_kind: ErrorKind, code: &str) -> &'static str {
    match code {
        "400004" => "KuCoin refused the passphrase (400004): KUCOIN_PASSPHRASE must be the API passphrase chosen when this key was created (not the login or trading password); check it and run again",
        "400005" => "the secret does not belong to this API key (400005): check KUCOIN_SECRET_KEY and KUCOIN_ACCESS_KEY and run again",
        "400002" => "KuCoin refused the request's timestamp even after respond corrected its clock from GET /api/v1/timestamp: fix the system clock (NTP) and run again",
        "400001" => "a KuCoin key has three parts: set KUCOIN_ACCESS_KEY, KUCOIN_SECRET_KEY and KUCOIN_PASSPHRASE and run again",
        _ => "KuCoin answers 400003 (KC-API-KEY not exists) for a key it does not know: mistyped, another account's, or already deleted. Check the key you entered, or, if you already deleted it, confirm under API Management that it is gone and continue with a read-only key: KUCOIN_READONLY_ACCESS_KEY=… KUCOIN_READONLY_SECRET_KEY=… KUCOIN_READONLY_PASSPHRASE=… respond resume RUN_DIR",
    }
}
