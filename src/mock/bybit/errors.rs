//! Bybit's answer envelope `{"retCode", "retMsg", "result", "retExtInfo", "time"}` and the
//! codes the façade answers (docs/exchanges/bybit.md §5). Business and authentication errors
//! come with HTTP 200 and a non-zero `retCode`, as at Bybit; only an unknown route (404) and
//! the per-IP limit (403, plain text) use another status.

use serde_json::{json, Value};

use crate::mock::http::Out;
use crate::mock::venue::matching::OrderError;

/// An API error: HTTP status (200 unless noted), Bybit's `retCode`, its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    pub status: u16,
    pub code: i64,
    pub msg: String,
}

/// An error with HTTP 200.
pub fn err(code: i64, msg: impl Into<String>) -> ApiErr {
    ApiErr {
        status: 200,
        code,
        msg: msg.into(),
    }
}

/// The envelope around `result`, stamped with `time_ms`.
pub fn envelope(code: i64, msg: &str, result: Value, ext: Value, time_ms: i64) -> Value {
    json!({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": ext, "time": time_ms})
}

impl ApiErr {
    /// The code as the request log records it (`10003`).
    pub fn log_name(&self) -> String {
        self.code.to_string()
    }

    /// The error in its envelope (`result` and `retExtInfo` empty).
    pub fn out(&self, time_ms: i64) -> Out {
        Out::json(
            self.status,
            &envelope(self.code, &self.msg, json!({}), json!({}), time_ms),
        )
    }
}

/// `10001`: a parameter is missing, malformed or out of range.
pub fn params(msg: impl Into<String>) -> ApiErr {
    err(10001, msg)
}

/// `10001` for a named parameter.
pub fn bad_param(name: &str) -> ApiErr {
    params(format!("params error: {name} invalid"))
}

/// `10002`: the timestamp is outside `recv_window` (or ahead of the server by a second).
pub fn expired(req_ts: i64, server_ts: i64, recv_window: i64) -> ApiErr {
    err(
        10002,
        format!(
            "invalid request, please check your server timestamp or recv_window param. \
             req_timestamp[{req_ts}],server_timestamp[{server_ts}],recv_window[{recv_window}]"
        ),
    )
}

/// `10003`: the key is unknown or deleted.
pub fn invalid_key() -> ApiErr {
    err(10003, "API key is invalid.")
}

/// `10004`: the signature does not verify.
pub fn bad_sign() -> ApiErr {
    err(
        10004,
        "Error sign, please check your signature generation algorithm.",
    )
}

/// `10005`: the key lacks the permission.
pub fn permission() -> ApiErr {
    err(
        10005,
        "Permission denied, please check your API key permissions.",
    )
}

/// `10006`: the endpoint's per-UID limit is spent.
pub fn too_many_visits() -> ApiErr {
    err(10006, "Too many visits. Exceeded the API Rate Limit.")
}

/// `10010`: the request's IP is not bound to the key.
pub fn ip_mismatch() -> ApiErr {
    err(
        10010,
        "Unmatched IP, please check your API key's bound IP addresses.",
    )
}

/// `10017` with HTTP 404: no such route.
pub fn no_route(method: &str, path: &str) -> ApiErr {
    ApiErr {
        status: 404,
        code: 10017,
        msg: format!("route not found: {method} {path}"),
    }
}

/// `10016`: a server error (what an injected server error answers).
pub fn server_error() -> ApiErr {
    err(10016, "System error. Please try again later. (injected)")
}

/// `33004`: the key has expired.
pub fn key_expired() -> ApiErr {
    err(33004, "Your api key has expired.")
}

/// `170105`: a mandatory order parameter is empty.
pub fn empty(name: &str) -> ApiErr {
    err(170105, format!("Parameter {name} was empty."))
}

/// `170115`: an unknown `timeInForce`.
pub fn bad_tif() -> ApiErr {
    err(170115, "Invalid timeInForce.")
}

/// `170116`: an unknown `orderType`.
pub fn bad_order_type() -> ApiErr {
    err(170116, "Invalid orderType.")
}

/// `170117`: a side other than `Buy`/`Sell`.
pub fn bad_side() -> ApiErr {
    err(170117, "Invalid side.")
}

/// `170121`: an unknown symbol.
pub fn bad_symbol() -> ApiErr {
    err(170121, "Invalid symbol.")
}

/// `170130`: a value the parameter cannot take.
pub fn bad_value(name: &str) -> ApiErr {
    err(
        170130,
        format!("Data sent for paramter '{name}' is not valid."),
    )
}

/// `170131`: not enough funds.
pub fn insufficient() -> ApiErr {
    err(170131, "Balance insufficient")
}

/// `170134`: more price decimals than the tick.
pub fn price_decimals() -> ApiErr {
    err(170134, "Order price decimal too long.")
}

/// `170136`: quantity below the minimum.
pub fn qty_too_small() -> ApiErr {
    err(170136, "Order quantity lower than the minimum.")
}

/// `170137`: more quantity decimals than the lot.
pub fn qty_decimals() -> ApiErr {
    err(170137, "Order volume decimal too long")
}

/// `170140`: order value below the minimum.
pub fn value_too_small() -> ApiErr {
    err(170140, "Order value exceeded lower limit.")
}

/// `170141`: an `orderLinkId` already used.
pub fn duplicate_link_id() -> ApiErr {
    err(170141, "Duplicate clientOrderId.")
}

/// `170213`: no such open order (cancel, amend).
pub fn order_not_found() -> ApiErr {
    err(170213, "Order does not exist.")
}

/// `170142`: the order was already cancelled.
pub fn already_cancelled() -> ApiErr {
    err(170142, "Order has been canceled.")
}

/// `170139`: the order was already filled.
pub fn already_filled() -> ApiErr {
    err(170139, "Order has been filled.")
}

/// `181010`: a history window longer than seven days.
pub fn window_too_long() -> ApiErr {
    err(
        181010,
        "The time range between startTime and endTime cannot exceed 7 days",
    )
}

/// `131001`-family asset errors: no such withdrawal.
pub fn no_withdrawal() -> ApiErr {
    err(131002, "Parameter error: withdrawal id not found")
}

impl From<OrderError> for ApiErr {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid(m) => params(m),
            OrderError::BelowMinNotional { .. } => value_too_small(),
            OrderError::DuplicateIdentifier => duplicate_link_id(),
            OrderError::UnknownAccount | OrderError::InsufficientFunds { .. } => insufficient(),
            OrderError::NotOpen => order_not_found(),
        }
    }
}
