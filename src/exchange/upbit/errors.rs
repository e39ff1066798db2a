//! Upbit error names and what a user should do about each.

/// Advice for an Upbit error name.
pub fn advice(name: &str) -> &'static str {
    match name {
        "invalid_access_key" => "the key is unknown to Upbit: it was deleted (revocation worked) or mistyped; continue with a read-only key",
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
