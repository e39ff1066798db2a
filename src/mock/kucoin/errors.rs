//! KuCoin's answer envelope: `{"code":"200000","data":…}` on success,
//! `{"code":"<six digits>","msg":"…"}` on failure, with the HTTP status of the failure
//! (docs/exchanges/kucoin.md §5 and §9): 401 for a missing header, an unknown or deleted key,
//! a wrong passphrase, a wrong signature or a stale timestamp; the configured permission
//! status (403 by default) for an IP outside the allowlist or a missing permission; 400 for
//! parameter and order errors; 404 for an unknown path; 429 over a resource pool's quota;
//! 500 for an injected server error.

use serde_json::{json, Value};

use crate::mock::http::Out;
use crate::mock::venue::matching::OrderError;

/// An API error: HTTP status, KuCoin's `code`, its `msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    pub status: u16,
    pub code: &'static str,
    pub msg: String,
}

fn err(status: u16, code: &'static str, msg: impl Into<String>) -> ApiErr {
    ApiErr {
        status,
        code,
        msg: msg.into(),
    }
}

/// The success envelope around `data`.
pub fn ok(data: Value) -> Value {
    json!({"code": "200000", "data": data})
}

impl ApiErr {
    /// The code as the request log records it (`400005`).
    pub fn log_name(&self) -> String {
        self.code.to_string()
    }

    /// The error as KuCoin writes it.
    pub fn out(&self) -> Out {
        Out::json(self.status, &json!({"code": self.code, "msg": self.msg}))
    }
}

/// `400001`: an authentication header is missing.
pub fn missing_header() -> ApiErr {
    err(
        401,
        "400001",
        "Please check the header of your request for KC-API-KEY, KC-API-SIGN, \
         KC-API-TIMESTAMP, KC-API-PASSPHRASE",
    )
}

/// `400002`: the timestamp is more than 5 s away from the server's.
pub fn timestamp() -> ApiErr {
    err(
        401,
        "400002",
        "KC-API-TIMESTAMP Invalid -- Time differs from server time by more than 5 seconds",
    )
}

/// `400003`: the key is unknown or deleted.
pub fn invalid_key() -> ApiErr {
    err(401, "400003", "KC-API-KEY not exists")
}

/// `400004`: the passphrase does not match the key's.
pub fn passphrase() -> ApiErr {
    err(401, "400004", "Invalid KC-API-PASSPHRASE")
}

/// `400005`: the signature does not verify.
pub fn signature() -> ApiErr {
    err(401, "400005", "Invalid KC-API-SIGN")
}

/// `400006`: the caller's IP is not on the key's allowlist (`status`: the permission status).
pub fn ip(status: u16) -> ApiErr {
    err(
        status,
        "400006",
        "The requested ip address is not in the api whitelist",
    )
}

/// `400007`: the key lacks the endpoint's permission.
pub fn permission(status: u16) -> ApiErr {
    err(
        status,
        "400007",
        "Access Denied -- Your api key does not have sufficient permissions to access the uri",
    )
}

/// `400100`: a parameter is missing, malformed or out of range.
pub fn params(msg: impl Into<String>) -> ApiErr {
    err(400, "400100", msg)
}

/// `400100` for a named parameter.
pub fn bad_param(name: &str) -> ApiErr {
    params(format!("{name} invalid"))
}

/// `400100` for a missing parameter.
pub fn required(name: &str) -> ApiErr {
    params(format!("{name} is required"))
}

/// `400100`: a history window longer than KuCoin allows.
pub fn window_too_long(days: i64) -> ApiErr {
    params(format!(
        "The time range between startAt and endAt cannot exceed {days} days"
    ))
}

/// `400100` "Unsupported trading pair.": an unknown symbol.
pub fn bad_symbol() -> ApiErr {
    params("Unsupported trading pair.")
}

/// `400100`: no such open order (cancel).
pub fn not_cancellable() -> ApiErr {
    params("order_not_exist_or_not_allow_to_cancel")
}

/// `400100` "The order does not exist.": no such order (query).
pub fn order_not_found() -> ApiErr {
    err(404, "400100", "The order does not exist.")
}

/// `400100`: the size is below the minimum.
pub fn size_too_small() -> ApiErr {
    params("Order size below the minimum requirement.")
}

/// `400100`: the size is not a multiple of `baseIncrement`.
pub fn size_increment() -> ApiErr {
    params("Order size increment invalid.")
}

/// `400100`: the price is not a multiple of `priceIncrement`.
pub fn price_increment() -> ApiErr {
    params("Price increment invalid.")
}

/// `400100`: the funds are not a multiple of `quoteIncrement`.
pub fn funds_increment() -> ApiErr {
    params("The amount increment is invalid.")
}

/// `400100`: a `clientOid` already used.
pub fn duplicate_client_oid() -> ApiErr {
    params("The clientOid already exists.")
}

/// `200004`: not enough funds.
pub fn insufficient() -> ApiErr {
    err(400, "200004", "Balance insufficient!")
}

/// `429000` with HTTP 429: a resource pool's quota is spent.
pub fn too_many() -> ApiErr {
    err(
        429,
        "429000",
        "Too many requests. System-level rate limit exceeded.",
    )
}

/// `404000` with HTTP 404: no such route.
pub fn no_route() -> ApiErr {
    err(404, "404000", "Url Not Found")
}

/// `500000` with HTTP 500: a server error (what an injected server error answers).
pub fn server_error() -> ApiErr {
    err(500, "500000", "Internal Server Error (injected)")
}

/// `400100`: no such withdrawal, or it is no longer `PROCESSING`.
pub fn withdrawal_not_cancellable() -> ApiErr {
    params("withdrawal not exist or can not be cancelled")
}

impl From<OrderError> for ApiErr {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid(m) => params(m),
            OrderError::BelowMinNotional { .. } => size_too_small(),
            OrderError::DuplicateIdentifier => duplicate_client_oid(),
            OrderError::UnknownAccount | OrderError::InsufficientFunds { .. } => insufficient(),
            OrderError::NotOpen => not_cancellable(),
        }
    }
}
