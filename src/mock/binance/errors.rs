//! Binance's error envelope `{"code": <negative int>, "msg": "<text>"}` with its HTTP status,
//! and the codes the façade answers (docs/exchanges/binance.md §5). Messages are Binance's
//! own words where clients match them (ccxt matches some messages before the code).

use serde_json::json;

use crate::mock::http::Out;
use crate::mock::venue::matching::OrderError;

/// An API error: HTTP status, Binance code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    pub status: u16,
    pub code: i32,
    pub msg: String,
}

/// An error with its status, code and message.
pub fn err(status: u16, code: i32, msg: impl Into<String>) -> ApiErr {
    ApiErr {
        status,
        code,
        msg: msg.into(),
    }
}

impl ApiErr {
    /// The code as the request log records it (`-2015`).
    pub fn log_name(&self) -> String {
        self.code.to_string()
    }

    pub fn out(&self) -> Out {
        Out::json(self.status, &json!({"code": self.code, "msg": self.msg}))
    }
}

/// `-1000`: an unknown error (also what an injected server error answers).
pub fn unknown(msg: &str) -> ApiErr {
    err(500, -1000, msg)
}

/// `-1002`: the key may not do this (another account's sub-account).
pub fn not_authorized() -> ApiErr {
    err(
        401,
        -1002,
        "You are not authorized to execute this request.",
    )
}

/// `-1003` with 429: over the request-weight budget.
pub fn too_much_weight(limit: u32, interval: &str) -> ApiErr {
    err(
        429,
        -1003,
        format!(
            "Too much request weight used; current limit is {limit} request weight per \
             {interval}. Please use WebSocket Streams for live updates to avoid polling the API."
        ),
    )
}

/// `-1003` with 418: banned after ignoring 429s.
pub fn banned(until_ms: i64) -> ApiErr {
    err(
        418,
        -1003,
        format!(
            "Way too much request weight used; IP banned until {until_ms}. Please use \
             WebSocket Streams for live updates to avoid bans."
        ),
    )
}

/// `-1015` with 429: too many new orders.
pub fn too_many_orders(limit: u32, interval: &str) -> ApiErr {
    err(
        429,
        -1015,
        format!("Too many new orders; current limit is {limit} orders per {interval}."),
    )
}

/// `-1013`: a filter refused the order (`PRICE_FILTER`, `LOT_SIZE`, `NOTIONAL`).
pub fn filter(name: &str) -> ApiErr {
    err(400, -1013, format!("Filter failure: {name}"))
}

/// `-1014`: an order combination the mock does not support.
pub fn unsupported(what: &str) -> ApiErr {
    err(
        400,
        -1014,
        format!("Unsupported order combination. ({what} is not supported by this mock)"),
    )
}

/// `-1021`: the timestamp is older than `recvWindow`.
pub fn outside_recv_window() -> ApiErr {
    err(
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )
}

/// `-1021`: the timestamp is a second or more ahead of the server's clock.
pub fn ahead_of_server() -> ApiErr {
    err(
        400,
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    )
}

/// `-1022`: the signature does not verify.
pub fn bad_signature() -> ApiErr {
    err(400, -1022, "Signature for this request is not valid.")
}

/// `-1100`: a parameter's value has characters it may not have.
pub fn illegal(param: &str, legal: &str) -> ApiErr {
    err(
        400,
        -1100,
        format!("Illegal characters found in parameter '{param}'; legal range is '{legal}'."),
    )
}

/// `-1101`: a parameter sent twice.
pub fn duplicate_param() -> ApiErr {
    err(400, -1101, "Duplicate values for a parameter detected.")
}

/// `-1102`: a mandatory parameter is missing or malformed.
pub fn mandatory(param: &str) -> ApiErr {
    err(
        400,
        -1102,
        format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."),
    )
}

/// `-1102`: one of two parameters must be sent.
pub fn one_of(a: &str, b: &str) -> ApiErr {
    err(
        400,
        -1102,
        format!("Param '{a}' or '{b}' must be sent, but both were empty/null!"),
    )
}

/// `-1106`: a parameter this request does not take.
pub fn not_required(param: &str) -> ApiErr {
    err(
        400,
        -1106,
        format!("Parameter '{param}' sent when not required."),
    )
}

/// `-1115`: an unknown `timeInForce`.
pub fn bad_tif() -> ApiErr {
    err(400, -1115, "Invalid timeInForce.")
}

/// `-1116`: an order type the symbol does not take.
pub fn bad_order_type() -> ApiErr {
    err(400, -1116, "Invalid orderType.")
}

/// `-1117`: a side that is neither BUY nor SELL.
pub fn bad_side() -> ApiErr {
    err(400, -1117, "Invalid side.")
}

/// `-1121`: an unknown symbol.
pub fn invalid_symbol() -> ApiErr {
    err(400, -1121, "Invalid symbol.")
}

/// `-1127`: a time window longer than the endpoint allows.
pub fn window_too_long(hours: u32) -> ApiErr {
    err(
        400,
        -1127,
        format!("More than {hours} hours between startTime and endTime."),
    )
}

/// `-1128`: optional parameters that do not go together.
pub fn bad_combination() -> ApiErr {
    err(400, -1128, "Combination of optional parameters invalid.")
}

/// `-1130`: a parameter's value is out of range.
pub fn bad_value(param: &str) -> ApiErr {
    err(
        400,
        -1130,
        format!("Data sent for parameter '{param}' is not valid."),
    )
}

/// `-1131`: `recvWindow` over 60,000 ms.
pub fn bad_recv_window() -> ApiErr {
    err(400, -1131, "recvWindow must be less than 60000")
}

/// `-2010`: the order was refused (a reason Binance gives in the message).
pub fn rejected(msg: &str) -> ApiErr {
    err(400, -2010, msg)
}

/// `-2010`: not enough funds.
pub fn insufficient_balance() -> ApiErr {
    rejected("Account has insufficient balance for requested action.")
}

/// `-2011`: a cancel of an order that is unknown or no longer open.
pub fn unknown_order() -> ApiErr {
    err(400, -2011, "Unknown order sent.")
}

/// `-2013`: a query of an order that does not exist.
pub fn no_such_order() -> ApiErr {
    err(400, -2013, "Order does not exist.")
}

/// `-2014`: the `X-MBX-APIKEY` header is missing or not shaped like a key.
pub fn bad_key_format() -> ApiErr {
    err(401, -2014, "API-key format invalid.")
}

/// `-2015`: an unknown or deleted key, a request from outside its IP list, or a permission
/// it lacks (Binance does not say which).
pub fn rejected_key() -> ApiErr {
    err(
        401,
        -2015,
        "Invalid API-key, IP, or permissions for action.",
    )
}

/// `-2026`: an order cancelled or expired with nothing filled over 90 days ago.
pub fn archived() -> ApiErr {
    err(
        400,
        -2026,
        "Order was canceled or expired with no executed qty over 90 days ago and has been \
         archived.",
    )
}

impl From<OrderError> for ApiErr {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid(m) => err(400, -1013, m),
            OrderError::BelowMinNotional { .. } => filter("NOTIONAL"),
            OrderError::DuplicateIdentifier => rejected("Duplicate order sent."),
            OrderError::UnknownAccount | OrderError::InsufficientFunds { .. } => {
                insufficient_balance()
            }
            OrderError::NotOpen => unknown_order(),
        }
    }
}
