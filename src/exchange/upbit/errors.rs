//! Upbit error names and what a user should do about each.

/// Advice for an Upbit error name.
pub fn advice(name: &str) -> &'static str {
    match name {
        "invalid_access_key" => "the key is unknown to Upbit: deleted after it worked here (revocation worked), or never valid (mistyped, deleted before the run); continue with a read-only key",
        "expired_access_key" => "the key expired; issue a new one (keys last one year)",
        "jwt_verification" => "the secret key does not match the access key; check both values",
        "no_authorization_token" => "no credentials were sent; set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY",
        "nonce_used" => "a request was replayed; retry (respond sends a fresh nonce each time)",
        "invalid_query_payload" => "the request's query hash did not match; this is a client bug, please report it",
        "out_of_scope" => "the key lacks the permission for this call; use a key with the needed view scopes",
        "no_authorization_i_p" | "no_authorization_ip" => "this machine's IP is not on the key's allowlist; run from an allowed IP or use another key",
        "open_api_withdraw_locked" => "withdrawals are locked for this account; contact Upbit",
        "insufficient_funds_bid" | "insufficient_funds_ask" => "not enough balance for this order",
        "under_min_total_bid" | "under_min_total_ask" => "the order is below the minimum total (5,000 KRW)",
        "duplicated_identifier" => "an order with this identifier exists; the earlier attempt probably succeeded",
        "order_not_found" => "the order does not exist (already cancelled or filled, or another account)",
        "withdraw_not_found" | "deposit_not_found" => "no such withdrawal/deposit for this account",
        "withdraw_address_not_registered" => "the address is not on the withdrawal allowlist",
        "validation_error" | "invalid_parameter" => "a parameter was rejected; check the playbook's arguments",
        "server_error" => "Upbit had an internal error; reads are retried automatically",
        _ => "see Upbit's error documentation for this name",
    }
}

/// Errors that name the key itself as unusable: unknown, expired, a signature that does not
/// verify with it, no credentials at all.
pub fn refuses_key(name: &str) -> bool {
    matches!(
        name,
        "invalid_access_key" | "expired_access_key" | "jwt_verification" | "no_authorization_token"
    )
}

/// Errors Upbit can only give after finding the key and checking its signature: the key's own
/// scopes or IP allowlist refused the call, or the call reached the business logic.
pub fn proves_key_accepted(name: &str) -> bool {
    matches!(
        name,
        "out_of_scope"
            | "no_authorization_i_p"
            | "no_authorization_ip"
            | "order_not_found"
            | "withdraw_not_found"
            | "deposit_not_found"
    )
}

/// Errors that asking again cannot clear (the key is refused, the secret or this machine's IP
/// is wrong, the scope is missing, the client built a bad request).
pub fn is_permanent(name: &str) -> bool {
    refuses_key(name)
        || matches!(
            name,
            "out_of_scope"
                | "no_authorization_i_p"
                | "no_authorization_ip"
                | "invalid_query_payload"
                | "open_api_withdraw_locked"
        )
}

/// What to do about a key refused from its very first request.
pub fn never_accepted_advice(name: &str) -> &'static str {
    match name {
        "jwt_verification" => "the secret key does not match the access key: check both values you entered (UPBIT_SECRET_KEY belongs to UPBIT_ACCESS_KEY) and run again",
        "expired_access_key" => "the key expired before this run, so it works for no one now; check that this is the key that leaked, and investigate with a read-only key",
        "no_authorization_token" => "no credentials were sent; set UPBIT_ACCESS_KEY and UPBIT_SECRET_KEY",
        _ => "check the access key you entered (a typo, or another account's key) and run again; if you already deleted the key, confirm in Upbit's web console (My Page → Open API management) that it is gone, then continue with a read-only key (view scopes only): UPBIT_READONLY_ACCESS_KEY=… UPBIT_READONLY_SECRET_KEY=… respond resume RUN_DIR",
    }
}
