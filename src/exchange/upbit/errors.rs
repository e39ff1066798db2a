//! Upbit's error names: what kind of refusal each is, and what a user should do about it.

use crate::exchange::ErrorKind;

/// The kind and the advice for an Upbit error name (as [`super::wire::parse_error_envelope`]
/// normalizes it). Unknown names are [`ErrorKind::Other`], or [`ErrorKind::ServerError`] for
/// an HTTP 5xx without an envelope.
pub fn classify(name: &str) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    match name {
        "invalid_access_key" => (KeyInvalid, "the key is unknown to Upbit: it was deleted (revocation worked) or mistyped; continue with a read-only key"),
        "expired_access_key" => (KeyExpired, "the key expired; issue a new one (keys last one year)"),
        "jwt_verification" => (BadSignature, "the secret key does not match the access key; check both values"),
        "no_authorization_token" => (BadSignature, "no credentials were sent; set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY"),
        "nonce_used" => (ClockSkew, "a request was replayed; retry (respond sends a fresh nonce each time)"),
        "invalid_query_payload" => (BadSignature, "the request's query hash did not match; this is a client bug, please report it"),
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
}
