//! Upbit's error names: what kind of refusal each is, and what a user should do about it.

use crate::exchange::ErrorKind;

/// The kind and the advice for an Upbit error name (as [`super::wire::parse_error_envelope`]
/// normalizes it). Unknown names are [`ErrorKind::Other`]; the adapter makes an unknown name
/// of an HTTP 5xx a [`ErrorKind::ServerError`].
pub fn classify(name: &str) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    match name {
        "invalid_access_key" => (KeyInvalid, "the key is unknown to Upbit: deleted after it worked here (revocation worked), or never valid (mistyped, deleted before the run); continue with a read-only key"),
        "expired_access_key" => (KeyExpired, "the key expired; issue a new one (keys last one year)"),
        "jwt_verification" => (BadSignature, "the secret key does not match the access key; check both values"),
        "no_authorization_token" => (BadSignature, "no credentials were sent; set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY"),
        "nonce_used" => (ClockSkew, "a request was replayed; retry (respond sends a fresh nonce each time)"),
        "invalid_query_payload" => (InvalidRequest, "the request's query hash did not match; this is a client bug, please report it"),
        "out_of_scope" => (PermissionDenied, "the key lacks the permission for this call; use a key with the needed view scopes"),
        "no_authorization_i_p" | "no_authorization_ip" => (IpNotAllowed, "this machine's IP is not on the key's allowlist; run from an allowed IP or use another key"),
        "open_api_withdraw_locked" => (PermissionDenied, "withdrawals are locked for this account; contact Upbit"),
        "insufficient_funds_bid" | "insufficient_funds_ask" => (InsufficientFunds, "not enough balance for this order"),
        "under_min_total_bid" | "under_min_total_ask" => (InvalidRequest, "the order is below the minimum total (5,000 KRW)"),
        "duplicated_identifier" => (InvalidRequest, "an order with this identifier exists; the earlier attempt probably succeeded"),
        "order_not_found" => (NotFound, "the order does not exist (already cancelled or filled, or another account)"),
        "withdraw_not_found" | "deposit_not_found" => (NotFound, "no such withdrawal/deposit for this account"),
        "withdraw_address_not_registered" => (InvalidRequest, "the address is not on the withdrawal allowlist"),
        "validation_error" | "invalid_parameter" => (InvalidRequest, "a parameter was rejected; check the playbook's arguments"),
        "server_error" => (ServerError, "Upbit had an internal error; reads are retried automatically"),
        _ => (Other, "see Upbit's error documentation for this name"),
    }
}

/// The error name and kind of a saved error answer (the offline view of
/// [`super::client`]'s classification); `None` when the body is no error envelope.
pub fn error_of(side: &crate::rundir::RawSidecar, body: &[u8]) -> Option<(String, ErrorKind)> {
    let status = side.status;
    let (name, _) = super::wire::parse_error_envelope(body)?;
    let (mut kind, _) = classify(&name);
    if kind == ErrorKind::Other && status >= 500 {
        kind = ErrorKind::ServerError;
    }
    Some((name, kind))
}

/// What to do about a key refused from its very first request.
pub fn never_accepted_advice(_kind: ErrorKind, name: &str) -> &'static str {
    match name {
        "jwt_verification" => "the secret key does not match the access key: check both values you entered (UPBIT_SECRET_KEY belongs to UPBIT_ACCESS_KEY) and run again",
        "expired_access_key" => "the key expired before this run, so it works for no one now; check that this is the key that leaked, and investigate with a read-only key",
        "no_authorization_token" => "no credentials were sent; set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY",
        _ => "check the access key you entered (a typo, or another account's key) and run again; if you already deleted the key, confirm in Upbit's web console (My Page → Open API management) that it is gone, then continue with a read-only key (view scopes only): UPBIT_READONLY_ACCESS_KEY=… UPBIT_READONLY_SECRET_KEY=… respond resume RUN_DIR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_death_and_scope_names_map_to_their_kinds() {
        assert_eq!(classify("invalid_access_key").0, ErrorKind::KeyInvalid);
        assert_eq!(classify("expired_access_key").0, ErrorKind::KeyExpired);
        assert_eq!(classify("out_of_scope").0, ErrorKind::PermissionDenied);
        assert_eq!(classify("no_authorization_i_p").0, ErrorKind::IpNotAllowed);
        assert_eq!(classify("order_not_found").0, ErrorKind::NotFound);
        assert_eq!(classify("something_new").0, ErrorKind::Other);
    }

    /// The kinds keep the split the adapter made by name before kinds existed: which errors
    /// refuse the key, which prove it was accepted, which no retry can clear.
    #[test]
    fn kinds_keep_the_key_verdicts_of_the_names() {
        let refuses = [
            "invalid_access_key",
            "expired_access_key",
            "jwt_verification",
            "no_authorization_token",
        ];
        let accepted = [
            "out_of_scope",
            "no_authorization_i_p",
            "no_authorization_ip",
            "order_not_found",
            "withdraw_not_found",
            "deposit_not_found",
        ];
        for n in refuses {
            assert!(classify(n).0.refuses_key(), "{n}");
            assert!(classify(n).0.is_permanent(), "{n}");
        }
        for n in accepted {
            assert!(classify(n).0.proves_key_accepted(), "{n}");
        }
        for n in ["invalid_query_payload", "open_api_withdraw_locked"] {
            assert!(
                classify(n).0.is_permanent() && !classify(n).0.refuses_key(),
                "{n}"
            );
        }
        for n in ["server_error", "nonce_used", "insufficient_funds_bid"] {
            assert!(!classify(n).0.is_permanent(), "{n}");
        }
        let status = |status| crate::rundir::RawSidecar {
            status,
            ..Default::default()
        };
        assert_eq!(
            error_of(
                &status(401),
                br#"{"error":{"name":"invalid_access_key","message":"x"}}"#
            ),
            Some(("invalid_access_key".into(), ErrorKind::KeyInvalid))
        );
        assert_eq!(error_of(&status(500), b"oops"), None);
    }
}
