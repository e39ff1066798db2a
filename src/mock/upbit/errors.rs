//! Upbit's error names for what the venue refuses, and the error envelope
//! `{"error": {"name", "message"}}` (the name is a number on the quotation API).

use serde_json::{json, Value};

use crate::mock::http::Out;
use crate::mock::venue::matching::OrderError;
use crate::mock::venue::state::Side;

/// An API error: status, Upbit error name (a number on the quotation API), message.
#[derive(Debug, Clone)]
pub struct ApiErr {
    pub status: u16,
    pub name: Value,
    pub message: String,
}

pub fn err(status: u16, name: &str, message: impl Into<String>) -> ApiErr {
    ApiErr {
        status,
        name: json!(name),
        message: message.into(),
    }
}

/// A quotation-API error: the name is the status number.
pub fn qerr(status: u16, message: &str) -> ApiErr {
    ApiErr {
        status,
        name: json!(status),
        message: message.into(),
    }
}

impl ApiErr {
    /// The name as the request log records it.
    pub fn log_name(&self) -> String {
        match &self.name {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    pub fn out(&self) -> Out {
        Out::json(
            self.status,
            &json!({"error": {"name": self.name, "message": self.message}}),
        )
    }
}

/// Minimum order total on KRW markets (the façade's minimum order value).
pub const MIN_TOTAL_KRW: i64 = 5000;

impl From<OrderError> for ApiErr {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid(m) => err(400, "invalid_parameter", m),
            OrderError::BelowMinNotional { side, .. } => err(
                400,
                match side {
                    Side::Bid => "under_min_total_bid",
                    Side::Ask => "under_min_total_ask",
                },
                "최소주문금액 이상으로 주문해주세요 (5,000 KRW)",
            ),
            OrderError::DuplicateIdentifier => err(
                400,
                "duplicated_identifier",
                "identifier already used by another order",
            ),
            OrderError::UnknownAccount => err(400, "invalid_parameter", "unknown account"),
            OrderError::InsufficientFunds { side, currency } => match side {
                Side::Bid => err(
                    400,
                    "insufficient_funds_bid",
                    format!("주문가능한 금액({currency})이 부족합니다."),
                ),
                Side::Ask => err(
                    400,
                    "insufficient_funds_ask",
                    format!("주문가능한 금액({currency})이 부족합니다."),
                ),
            },
            OrderError::NotOpen => err(
                400,
                "order_not_found",
                "주문을 찾지 못했습니다. (already done or cancelled)",
            ),
        }
    }
}
