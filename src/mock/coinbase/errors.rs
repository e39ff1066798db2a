//! Coinbase's error answers (docs/exchanges/coinbase.md §5).
//!
//! - Authentication failures of every kind (no token, malformed, unknown or deleted key, bad
//!   signature, expired, wrong `uri`) are HTTP 401 with the plain-text body `Unauthorized`:
//!   Coinbase does not say which check failed. The request log keeps the reason.
//! - Advanced Trade errors are JSON `{"error": CODE, "code": n, "message", "error_details",
//!   "details": []}` (gRPC-gateway style): `PERMISSION_DENIED` 403 with `error_details`
//!   "Missing required scopes", `INVALID_ARGUMENT` 400, `NOT_FOUND` 404, `resource_exhausted`
//!   429, `INTERNAL` 500.
//! - App API (`/v2/…`) errors are `{"errors": [{"id", "message"}]}`: `invalid_scope` 403,
//!   `not_found` 404, `rate_limit_exceeded` 429, `validation_error` 400,
//!   `internal_server_error` 500.

use serde_json::json;

use crate::mock::http::Out;

/// Which API family answers (their error bodies differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Advanced Trade (`/api/v3/brokerage/…`).
    V3,
    /// The App API (`/v2/…`).
    V2,
}

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    pub status: u16,
    /// The kind of failure, named as the Advanced Trade body does.
    pub kind: Kind,
    pub message: String,
}

/// The kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any authentication failure (plain-text 401); the reason is for the request log.
    Unauthorized(&'static str),
    PermissionDenied,
    InvalidArgument,
    NotFound,
    RateLimited,
    Internal,
}

impl ApiErr {
    /// The name the request log records.
    pub fn log_name(&self) -> String {
        match self.kind {
            Kind::Unauthorized(why) => format!("unauthorized: {why}"),
            Kind::PermissionDenied => "PERMISSION_DENIED".into(),
            Kind::InvalidArgument => "INVALID_ARGUMENT".into(),
            Kind::NotFound => "NOT_FOUND".into(),
            Kind::RateLimited => "resource_exhausted".into(),
            Kind::Internal => "INTERNAL".into(),
        }
    }

    /// The HTTP answer in `api`'s format.
    pub fn out(&self, api: Api) -> Out {
        if let Kind::Unauthorized(_) = self.kind {
            return Out::text(401, "Unauthorized");
        }
        match api {
            Api::V3 => {
                let (error, code, details) = match self.kind {
                    Kind::PermissionDenied => ("PERMISSION_DENIED", 7, "Missing required scopes"),
                    Kind::InvalidArgument => ("INVALID_ARGUMENT", 3, self.message.as_str()),
                    Kind::NotFound => ("NOT_FOUND", 5, self.message.as_str()),
                    Kind::RateLimited => ("resource_exhausted", 8, self.message.as_str()),
                    Kind::Internal | Kind::Unauthorized(_) => {
                        ("INTERNAL", 13, self.message.as_str())
                    }
                };
                Out::json(
                    self.status,
                    &json!({"error": error, "code": code, "message": self.message,
                        "error_details": details, "details": []}),
                )
            }
            Api::V2 => {
                let id = match self.kind {
                    Kind::PermissionDenied => "invalid_scope",
                    Kind::InvalidArgument => "validation_error",
                    Kind::NotFound => "not_found",
                    Kind::RateLimited => "rate_limit_exceeded",
                    Kind::Internal | Kind::Unauthorized(_) => "internal_server_error",
                };
                Out::json(
                    self.status,
                    &json!({"errors": [{"id": id, "message": self.message}]}),
                )
            }
        }
    }
}

/// An authentication failure (`why` goes to the request log only).
pub fn unauthorized(why: &'static str) -> ApiErr {
    ApiErr {
        status: 401,
        kind: Kind::Unauthorized(why),
        message: "Unauthorized".into(),
    }
}

/// The key lacks the permission the endpoint needs.
pub fn permission_denied() -> ApiErr {
    ApiErr {
        status: 403,
        kind: Kind::PermissionDenied,
        message: "Missing required scopes".into(),
    }
}

/// A malformed or unacceptable parameter.
pub fn invalid(message: impl Into<String>) -> ApiErr {
    ApiErr {
        status: 400,
        kind: Kind::InvalidArgument,
        message: message.into(),
    }
}

/// A resource that does not exist (or is not the caller's).
pub fn not_found(message: impl Into<String>) -> ApiErr {
    ApiErr {
        status: 404,
        kind: Kind::NotFound,
        message: message.into(),
    }
}

/// Over the rate limit.
pub fn rate_limited() -> ApiErr {
    ApiErr {
        status: 429,
        kind: Kind::RateLimited,
        message: "Too many requests".into(),
    }
}

/// An injected server error.
pub fn internal() -> ApiErr {
    ApiErr {
        status: 500,
        kind: Kind::Internal,
        message: "Internal server error".into(),
    }
}

/// No such endpoint.
pub fn no_route(method: &str, path: &str) -> ApiErr {
    not_found(format!("no route for {method} {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_failures_are_plain_text_and_others_json_per_api() {
        let o = unauthorized("expired").out(Api::V3);
        assert_eq!((o.status, o.json), (401, false));
        assert_eq!(&o.body[..], b"Unauthorized");
        let o = permission_denied().out(Api::V3);
        let v: serde_json::Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(o.status, 403);
        assert_eq!(v["error"], "PERMISSION_DENIED");
        assert_eq!(v["error_details"], "Missing required scopes");
        let o = rate_limited().out(Api::V2);
        let v: serde_json::Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(o.status, 429);
        assert_eq!(v["errors"][0]["id"], "rate_limit_exceeded");
    }
}
