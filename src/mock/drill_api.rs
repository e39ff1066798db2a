//! The drill API under `/_mock/`, the same for every façade: what a drill or a test uses to
//! play the user's web-console part (revoke a key) and to score a run (ground truth, state,
//! request log, bot log), and to inject faults at run time. Mounted by [`crate::mock::router`]
//! next to the façade's routes unless `--no-drill-api`; its requests are never logged nor
//! subject to injected faults.
//!
//! Errors use the drill API's own envelope `{"error": {"name", "message"}}`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};

use crate::mock::http::{normalize, read_body, Out};
use crate::mock::venue::faults::FaultRule;
use crate::mock::venue::state::OrderState;
use crate::mock::venue::{clock, dec, Venue};

/// The `/_mock/` routes.
pub fn router(venue: Arc<Venue>) -> Router {
    Router::new()
        .route("/_mock/{*rest}", any(handle))
        .with_state(venue)
}

fn error(status: u16, name: &str, message: impl Into<String>) -> Out {
    Out::json(
        status,
        &json!({"error": {"name": name, "message": message.into()}}),
    )
}

async fn handle(State(venue): State<Arc<Venue>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = normalize(parts.uri.path());
    let Some(bytes) = read_body(body).await else {
        return error(
            413,
            "payload_too_large",
            "request body over 1 MiB (or unreadable)",
        )
        .into_response();
    };
    let body: Option<Value> = if bytes.is_empty() {
        None
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                return error(400, "invalid_parameter", format!("body is not JSON: {e}"))
                    .into_response()
            }
        }
    };
    dispatch(&venue, &method, &path, body.as_ref()).into_response()
}

fn dispatch(venue: &Venue, method: &str, path: &str, body: Option<&Value>) -> Out {
    let rest = path.trim_start_matches("/_mock/");
    match (method, rest) {
        ("GET", "ground-truth") => Out::json(200, &json!(venue.ground_truth())),
        ("GET", "requests") => Out::json(200, &json!(venue.requests())),
        ("GET", "bot-log") => Out::text(200, &venue.bot_log_csv()),
        ("GET", "state") => state(venue),
        ("GET", "faults") => {
            let rules: Vec<_> = venue
                .faults()
                .rules
                .iter()
                .map(|(r, used)| json!({"rule": r, "used": used}))
                .collect();
            Out::json(200, &json!(rules))
        }
        ("POST", "faults") => {
            let parsed: Result<Vec<FaultRule>, _> = match body {
                Some(Value::Array(_)) => {
                    serde_json::from_value(body.cloned().unwrap_or(Value::Null))
                }
                Some(v) => {
                    serde_json::from_value(v.get("rules").cloned().unwrap_or(Value::Array(vec![])))
                }
                None => Ok(Vec::new()),
            };
            match parsed {
                Ok(rules) => {
                    let n = rules.len();
                    venue.set_faults(rules);
                    Out::json(200, &json!({"rules": n}))
                }
                Err(e) => error(400, "invalid_parameter", format!("bad fault rules: {e}")),
            }
        }
        ("POST", r) if r.starts_with("keys/") && r.ends_with("/revoke") => {
            // A key name may hold slashes, sent as they are or percent-encoded.
            let raw = &r["keys/".len()..r.len() - "/revoke".len()];
            let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            let ak: &str = &decoded;
            if venue.revoke_key(ak) {
                Out::json(200, &json!({"access_key": ak, "revoked": true}))
            } else {
                error(404, "invalid_access_key", "no such key")
            }
        }
        _ => error(
            404,
            "not_found",
            format!("{method} {path}: no such drill endpoint"),
        ),
    }
}

fn state(venue: &Venue) -> Out {
    let w = venue.world();
    let accounts: serde_json::Map<String, Value> = w
        .accounts
        .iter()
        .map(|(name, a)| {
            let bals: serde_json::Map<String, Value> = a
                .balances
                .iter()
                .map(|(c, b)| {
                    (
                        c.clone(),
                        json!({"balance": dec(b.balance), "locked": dec(b.locked)}),
                    )
                })
                .collect();
            (name.clone(), Value::Object(bals))
        })
        .collect();
    let keys: Vec<Value> = venue
        .keys()
        .iter()
        .map(|k| {
            let rec = w.keys.get(&k.access_key);
            json!({"account": k.account, "label": k.label, "access_key": k.access_key,
                "scopes": k.scopes,
                "revoked_at": rec.and_then(|r| r.revoked_at).map(clock::ts)})
        })
        .collect();
    let open = w.count_in_state(OrderState::Open);
    Out::json(
        200,
        &json!({"scenario": venue.scenario.name, "exchange": venue.exchange(),
            "now": clock::ts(venue.now()),
            "scenario_now": clock::ts(venue.scenario_now),
            "accounts": accounts, "keys": keys, "orders": w.orders.len(), "open_orders": open,
            "withdrawals": w.withdrawals.len(), "requests_logged": w.requests.len(),
            "requests_dropped": w.requests_dropped}),
    )
}
