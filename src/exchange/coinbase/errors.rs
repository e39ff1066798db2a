//! Coinbase's errors: what kind of refusal each is, and what a user should do about it.
//!
//! Coinbase answers errors with HTTP status codes. Any authentication failure is a `401` whose
//! body is the plain text `Unauthorized`: an unknown or deleted key, a private key that does
//! not belong to the key name, a token whose signature or `uri` does not verify and an expired
//! token all look the same, so the advice names each cause. Advanced Trade writes other errors
//! as `{"error": "PERMISSION_DENIED", "message", "error_details"}`, the App API (v2) as
//! `{"errors": [{"id": "invalid_scope", "message"}]}`; both vocabularies are mapped here.

use crate::exchange::ErrorKind;
use crate::rundir::RawSidecar;

/// The code given to a plain-text `401 Unauthorized`.
pub const UNAUTHORIZED: &str = "unauthorized";

/// The kind and the advice for an error code answered with HTTP `status`. Unknown codes are
/// [`ErrorKind::Other`], or [`ErrorKind::ServerError`] with a 5xx.
pub fn classify(status: u16, code: &str, message: &str) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    let msg = message.to_ascii_lowercase();
    let (kind, advice) = match code {
        "unauthorized" | "UNAUTHENTICATED" | "authentication_error" | "invalid_token"
        | "revoked_token" => (KeyInvalid, "Coinbase refused the key (401 Unauthorized): after it worked in this run it was deleted in the developer platform; continue with a read-only key"),
        "expired_token" => (ClockSkew, "Coinbase found the request's token expired: this machine's clock is off; respond corrects it once from GET /api/v3/brokerage/time, so fix the system clock (NTP) if this persists"),
        "PERMISSION_DENIED" | "invalid_scope" | "forbidden" => (PermissionDenied, "the key lacks the permission for this call (View, Trade or Transfer in the key's settings), or the call reaches a portfolio the key is not scoped to"),
        "NOT_FOUND" | "not_found" => (NotFound, "Coinbase knows no such order, account or transaction"),
        "INSUFFICIENT_FUND" | "PREVIEW_INSUFFICIENT_FUND" => (InsufficientFunds, "not enough balance"),
        "resource_exhausted" | "RESOURCE_EXHAUSTED" | "rate_limit_exceeded" => (RateLimited, "too many requests; respond paces itself, so another client uses this account's keys: stop it"),
        "INVALID_ARGUMENT" | "validation_error" | "param_required" | "UNSUPPORTED_ORDER_CONFIGURATION" => (InvalidRequest, "Coinbase refused a parameter of the request (or its path): this is a client bug, please report it"),
        "INTERNAL" | "internal_server_error" | "UNAVAILABLE" => (ServerError, "Coinbase had an internal problem; reads are retried automatically"),
        _ => (Other, "see Coinbase's error reference (Advanced Trade API, errors) for this code"),
    };
    // "order with this orderID was not found" also comes as a 400 or an `unknown` error.
    if kind != NotFound && kind != KeyInvalid && msg.contains("not found") && status < 500 {
        return (
            NotFound,
            "Coinbase knows no such order, account or transaction",
        );
    }
    if kind == Other && status >= 500 {
        return (
            ServerError,
            "Coinbase had an internal problem; reads are retried automatically",
        );
    }
    (kind, advice)
}

/// The kind of `code` answered with `status`.
pub fn kind_of(status: u16, code: &str, message: &str) -> ErrorKind {
    classify(status, code, message).0
}

/// The code and kind of a saved error answer (the offline view of the live classification);
/// `None` for a success or a body that is no Coinbase error.
pub fn error_of(side: &RawSidecar, body: &[u8]) -> Option<(String, ErrorKind)> {
    if (200..300).contains(&side.status) {
        return None;
    }
    let (code, message) = super::wire::parse_error(side.status, body)?;
    let kind = kind_of(side.status, &code, &message);
    Some((code, kind))
}

/// What to do about a key refused from its very first request.
pub fn never_accepted_advice(kind: ErrorKind, _code: &str) -> &'static str {
    match kind {
        ErrorKind::ClockSkew => "Coinbase found the token expired even after respond corrected its clock from GET /api/v3/brokerage/time: fix the system clock (NTP) and run again",
        _ => "Coinbase answers 401 Unauthorized to a key it does not know (mistyped, another organization's, or already deleted) and to a private key that does not belong to the key name. Check COINBASE_ACCESS_KEY is the whole key name (organizations/…/apiKeys/…, or the Ed25519 key's id) and COINBASE_SECRET_KEY its private key (the PEM with its BEGIN and END lines, or the base64 Ed25519 secret). If you already deleted the key, confirm in the developer platform that it is gone and continue with a read-only key: COINBASE_READONLY_ACCESS_KEY=… COINBASE_READONLY_SECRET_KEY=… respond resume RUN_DIR",
    }
}
