//! Binance's error codes: what kind of refusal each is, and what a user should do about it.
//!
//! One code needs the call and the run to read: `-2015` ("Invalid API-key, IP, or permissions
//! for action") means a key unknown to Binance (deleted, mistyped), an IP the key's
//! restriction does not allow, or a permission the key lacks. Binance keys can always read
//! (`enableReading` cannot be switched off), so on a read `-2015` means the key no longer
//! works from here: [`ErrorKind::KeyInvalid`]. On a write it may be the permission: the live
//! client ([`super::client`]) asks what else the same key can still do in the run before it
//! decides ([`on_write`]); the offline view ([`error_of`]) reads a write's `-2015` as
//! [`ErrorKind::Other`], neither the key's death nor proof that the key was accepted.

use crate::exchange::ErrorKind;
use crate::rundir::RawSidecar;

/// `-2015`.
pub const INVALID_KEY_IP_OR_PERMISSION: &str = "-2015";
/// `-1021`.
pub const TIMESTAMP_OUTSIDE_WINDOW: &str = "-1021";

/// The kind and the advice for a Binance error code on a read (`GET`); see [`on_write`] for
/// writes. Unknown codes are [`ErrorKind::Other`]; the client makes an unknown code of an HTTP
/// 5xx a [`ErrorKind::ServerError`].
pub fn classify(code: &str, message: &str) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    match code {
        "-2015" => (KeyInvalid, "Binance refused the key (Invalid API-key, IP, or permissions for action): after it worked in this run, it was deleted or its IP restriction now excludes this machine, and it no longer works from here; continue with a read-only key"),
        "-2014" => (KeyInvalid, "the API key's format is wrong (API-key format invalid): check the BINANCE_ACCESS_KEY you entered"),
        "-2008" => (KeyInvalid, "Binance does not know this API key id"),
        "-1022" => (BadSignature, "the signature did not verify: the secret (HMAC secret or Ed25519 PEM private key) does not belong to this API key; check both values"),
        "-1021" => (ClockSkew, "the request's timestamp was outside Binance's recvWindow: this machine's clock is off; respond corrects it once from GET /api/v3/time, so fix the system clock (NTP) if this persists"),
        "-1002" => (PermissionDenied, "this key is not authorized for this request"),
        "-1003" => (RateLimited, "too much request weight used; respond paces itself, so another client shares this IP: stop it and wait a minute"),
        "-1015" => (RateLimited, "too many new orders; wait before placing more"),
        "-1007" => (ServerError, "Binance's backend timed out: the request's outcome is unknown; respond settles a write by reading the account's state"),
        "-1016" | "-1001" => (ServerError, "Binance had an internal problem; reads are retried automatically"),
        "-2011" => (NotFound, "the order is unknown to Binance, already cancelled or filled (Unknown order sent)"),
        "-2013" => (NotFound, "the order does not exist (Order does not exist)"),
        "-2026" => (NotFound, "the order was cancelled or expired with nothing filled more than 90 days ago and Binance archived it"),
        "-1121" => (InvalidRequest, "Binance does not list this symbol (Invalid symbol)"),
        "-1127" => (InvalidRequest, "the window between startTime and endTime is longer than Binance allows (24 hours for orders and trades): this is a client bug, please report it"),
        "-1100" | "-1101" | "-1102" | "-1103" | "-1104" | "-1105" | "-1106" | "-1111" | "-1128"
        | "-1130" | "-1131" => (InvalidRequest, "Binance refused a parameter of the request: this is a client bug, please report it"),
        "-1013" => (InvalidRequest, "the order fails one of the symbol's filters (price, lot size or notional)"),
        "-2010" if message.contains("insufficient balance") => {
            (InsufficientFunds, "not enough balance for this order")
        }
        "-2010" if message.contains("may not place or cancel") || message.contains("disabled on this account") => {
            (PermissionDenied, "Binance disabled trading on this account; contact Binance support")
        }
        "-2010" => (InvalidRequest, "Binance rejected the order"),
        _ => (Other, "see Binance's error code list (errors.md of the binance-spot-api-docs) for this code"),
    }
}

/// The kind and the advice of `-2015` on a write, once the client knows what else the key can
/// do: `still_reads` when a read with the same key succeeded after the refusal (it may lack
/// the permission: Enable Spot & Margin Trading), `dead` when that read was refused too.
pub fn on_write(still_reads: Option<bool>) -> (ErrorKind, &'static str) {
    match still_reads {
        Some(false) => classify(INVALID_KEY_IP_OR_PERMISSION, ""),
        Some(true) => (
            ErrorKind::PermissionDenied,
            "the key still reads but Binance refused this action: it lacks the permission (Enable Spot & Margin Trading for orders); cancel the orders in the app or on the web and get the key deleted",
        ),
        None => (
            ErrorKind::Other,
            "Binance refused this action with -2015 (invalid key, IP or permission) and whether the key still works could not be read; cancel the orders in the app or on the web and get the key deleted",
        ),
    }
}

/// The error code and kind of a saved error answer (the offline view of the live
/// classification); `None` when the body is no Binance error. A write's `-2015` is
/// [`ErrorKind::Other`] here: without the run's other answers it must count neither as the
/// key's death nor as proof the key was accepted.
pub fn error_of(side: &RawSidecar, body: &[u8]) -> Option<(String, ErrorKind)> {
    let (code, message) = super::wire::parse_error(body)?;
    let kind = kind_of(&side.method, side.status, &code, &message);
    Some((code, kind))
}

/// The kind of `code` answered with `status` to a `method` call, without the run's context.
pub fn kind_of(method: &str, status: u16, code: &str, message: &str) -> ErrorKind {
    if code == INVALID_KEY_IP_OR_PERMISSION && method != "GET" {
        return ErrorKind::Other;
    }
    let (kind, _) = classify(code, message);
    if kind == ErrorKind::Other && status >= 500 {
        ErrorKind::ServerError
    } else {
        kind
    }
}

/// What to do about a key refused from its very first request.
pub fn never_accepted_advice(_kind: ErrorKind, code: &str) -> &'static str {
    match code {
        "-1022" => "the secret does not belong to this API key: check both values you entered (BINANCE_SECRET_KEY is the HMAC secret, or the Ed25519 private key in PEM form, of BINANCE_ACCESS_KEY) and run again",
        "-2014" => "the API key's format is wrong: check the BINANCE_ACCESS_KEY you entered (64 characters for keys made by Binance) and run again",
        "-1021" => "Binance refused the request's timestamp even after respond corrected its clock from GET /api/v3/time: fix the system clock (NTP) and run again",
        _ => "Binance answers -2015 (Invalid API-key, IP, or permissions for action) for a key it does not know (mistyped, another account's, already deleted) and for a key whose IP restriction excludes this machine: check the key you entered, run from an IP the key allows, or, if you already deleted the key, confirm under API Management that it is gone and continue with a read-only key: BINANCE_READONLY_ACCESS_KEY=… BINANCE_READONLY_SECRET_KEY=… respond resume RUN_DIR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(method: &str, status: u16) -> RawSidecar {
        RawSidecar {
            method: method.into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn codes_map_to_kinds() {
        for (code, kind) in [
            ("-2015", ErrorKind::KeyInvalid),
            ("-2014", ErrorKind::KeyInvalid),
            ("-1022", ErrorKind::BadSignature),
            ("-1021", ErrorKind::ClockSkew),
            ("-1003", ErrorKind::RateLimited),
            ("-2011", ErrorKind::NotFound),
            ("-2013", ErrorKind::NotFound),
            ("-1121", ErrorKind::InvalidRequest),
            ("-1127", ErrorKind::InvalidRequest),
            ("-1007", ErrorKind::ServerError),
            ("-9999", ErrorKind::Other),
        ] {
            assert_eq!(classify(code, "").0, kind, "{code}");
        }
        assert_eq!(
            classify(
                "-2010",
                "Account has insufficient balance for requested action."
            )
            .0,
            ErrorKind::InsufficientFunds
        );
        assert_eq!(
            classify("-2010", "This account may not place or cancel orders.").0,
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            classify("-2010", "Market is closed.").0,
            ErrorKind::InvalidRequest
        );
    }

    /// Offline, a read's -2015 is the key's refusal; a write's never is.
    #[test]
    fn saved_answers_read_2015_by_the_call() {
        let body = br#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#;
        assert_eq!(
            error_of(&side("GET", 401), body),
            Some(("-2015".into(), ErrorKind::KeyInvalid))
        );
        assert_eq!(
            error_of(&side("DELETE", 401), body),
            Some(("-2015".into(), ErrorKind::Other))
        );
        assert_eq!(
            error_of(&side("GET", 503), br#"{"code":-1234,"msg":"x"}"#),
            Some(("-1234".into(), ErrorKind::ServerError))
        );
        assert_eq!(error_of(&side("GET", 500), b"oops"), None);
    }

    #[test]
    fn a_write_refused_is_a_permission_unless_reads_die_too() {
        assert_eq!(on_write(Some(true)).0, ErrorKind::PermissionDenied);
        assert_eq!(on_write(Some(false)).0, ErrorKind::KeyInvalid);
        assert_eq!(on_write(None).0, ErrorKind::Other);
        assert!(on_write(Some(true))
            .1
            .contains("Enable Spot & Margin Trading"));
    }
}
