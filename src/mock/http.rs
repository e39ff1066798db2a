//! Request plumbing every façade shares: path normalization, the body limit, a response
//! before it becomes HTTP ([`Out`]), injected faults applied around a handler, and the
//! request log. What goes into a body (the error envelope, headers such as rate-limit
//! counters) is the façade's.

use std::time::Duration;

use tokio::time::Instant;

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use uuid::Uuid;

use crate::mock::venue::faults::Decision;
use crate::mock::venue::state::RequestRecord;
use crate::mock::venue::Venue as VenueRef;
use crate::mock::venue::{clock, Venue};

/// Largest request body accepted (exchange requests are a few KiB).
pub const MAX_BODY: usize = 1 << 20;

/// Collapses repeated slashes and drops a trailing slash.
pub fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut prev = false;
    for c in path.chars() {
        if c == '/' {
            if !prev {
                out.push('/');
            }
            prev = true;
        } else {
            out.push(c);
            prev = false;
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// Reads a body up to [`MAX_BODY`]; None when it is larger or unreadable (refuse the request,
/// never process it as if empty).
pub async fn read_body(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, MAX_BODY).await.ok()
}

/// A request as a façade's handler reads it.
pub struct Received {
    /// The client's address (None in-process).
    pub ip: Option<IpAddr>,
    pub method: String,
    /// Normalized ([`normalize`]).
    pub path: String,
    pub headers: HeaderMap,
    /// The raw query string (empty when none).
    pub query: String,
    /// None when the body was over [`MAX_BODY`] or unreadable: refuse the request (log it
    /// with [`log_refused_body`]), never process it as if empty.
    pub body: Option<Bytes>,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// Reads the parts of a request every façade needs.
pub async fn receive(req: axum::extract::Request) -> Received {
    let (parts, body) = req.into_parts();
    Received {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        method: parts.method.as_str().to_string(),
        path: normalize(parts.uri.path()),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: read_body(body).await,
    }
}

/// Logs a request refused for its body (413).
pub fn log_refused_body(venue: &VenueRef, r: &Received) {
    log(venue, &r.method, &r.path, 413, &Effects::default(), None);
}

/// Logs a handled request and applies the response faults drawn for it (a dropped
/// connection, a truncated body).
pub fn finish(
    venue: &VenueRef,
    r: &Received,
    mut out: Out,
    fx: &Effects,
    decision: &Decision,
    fault: Option<String>,
) -> Response {
    log(venue, &r.method, &r.path, out.status, fx, fault);
    if decision.drop {
        return dropped();
    }
    if decision.truncate {
        out.truncate();
    }
    out.into_response()
}

/// A JSON body's scalar members as (name, text) parameters, in the body's order (strings as
/// they are, numbers and booleans as written; objects, arrays and nulls left out).
pub fn scalar_members(m: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    use serde_json::Value;
    m.iter()
        .filter_map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), s))
        })
        .collect()
}

/// A JSON array of items already written as JSON text.
pub fn json_array(items: &[String]) -> String {
    let mut s = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    s.push('[');
    for (n, i) in items.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        s.push_str(i);
    }
    s.push(']');
    s
}

/// A response before it becomes HTTP (faults may truncate or drop its body).
#[derive(Debug, Clone)]
pub struct Out {
    pub status: u16,
    pub body: Bytes,
    pub json: bool,
    pub headers: Vec<(&'static str, String)>,
}

impl Out {
    pub fn json(status: u16, v: &serde_json::Value) -> Out {
        Out {
            status,
            body: serde_json::to_vec(v).unwrap_or_default().into(),
            json: true,
            headers: Vec::new(),
        }
    }
    /// `v` as JSON with `list` (JSON text) written where `v` holds [`RAW_SLOT`]: a page
    /// whose items are JSON text already is not parsed back into values to be written again.
    /// A list with room before it ([`crate::mock::venue::fragments::PageText::enveloped`])
    /// gets the answer written around it in its own buffer, without a copy of the list.
    pub fn json_spliced(status: u16, v: &serde_json::Value, list: Option<String>) -> Out {
        let Some(list) = list else {
            return Out::json(status, v);
        };
        Out {
            status,
            body: splice(serde_json::to_vec(v).unwrap_or_default(), list),
            json: true,
            headers: Vec::new(),
        }
    }
    /// A body that is JSON text already.
    pub fn raw_json(status: u16, body: String) -> Out {
        Out {
            status,
            body: body.into_bytes().into(),
            json: true,
            headers: Vec::new(),
        }
    }
    pub fn text(status: u16, t: &str) -> Out {
        Out {
            status,
            body: Bytes::copy_from_slice(t.as_bytes()),
            json: false,
            headers: Vec::new(),
        }
    }
    /// Adds a header (lowercase name).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Out {
        self.headers.push((name, value.into()));
        self
    }
    /// Cuts the body in half (the truncation fault).
    pub fn truncate(&mut self) {
        if self.body.len() > 2 {
            let n = self.body.len() / 2;
            self.body.truncate(n);
        }
    }
    pub fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static(if self.json {
                "application/json; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            }),
        );
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        }
        r
    }
}

/// What a request did, for the request log.
#[derive(Debug, Default)]
pub struct Effects {
    pub created: Vec<Uuid>,
    pub cancelled: Vec<Uuid>,
    pub access_key: Option<String>,
    pub error: Option<String>,
    /// The JSON text of a list the answer holds as [`RAW_SLOT`] ([`raw_list_text`]).
    pub raw_list: Option<String>,
}

/// The string a JSON answer holds where a list written as JSON text goes
/// ([`Out::json_spliced`]). Written as JSON, its NULs are escapes (`\u0000`), which no
/// string of the answer can end with before its closing quote unless it is this one.
pub const RAW_SLOT: &str = "\u{0}raw json list\u{0}";

/// Puts `list` (a JSON array written as text) aside as the answer's list; the value to put
/// where it goes.
pub fn raw_list_text(fx: &mut Effects, list: String) -> serde_json::Value {
    fx.raw_list = Some(list);
    serde_json::Value::String(RAW_SLOT.to_string())
}

/// `answer` (JSON) with its first [`RAW_SLOT`] string replaced by `list` (a JSON array, its
/// leading spaces room for what comes before the slot). When the room is enough, the answer
/// is written around the list in the list's own buffer and the body starts inside it (no copy
/// of a page that may be a megabyte); else the list is copied between the two parts.
fn splice(answer: Vec<u8>, list: String) -> Bytes {
    let slot = serde_json::to_vec(RAW_SLOT).unwrap_or_default();
    let Some(at) = answer
        .windows(slot.len())
        .position(|w| w == slot.as_slice())
    else {
        return answer.into();
    };
    let (before, after) = (&answer[..at], &answer[at + slot.len()..]);
    let room = list.bytes().take_while(|b| *b == b' ').count();
    if before.len() <= room {
        let mut buf = list.into_bytes();
        let from = room - before.len();
        buf[from..room].copy_from_slice(before);
        buf.extend_from_slice(after);
        return Bytes::from(buf).slice(from..);
    }
    let text = &list.as_bytes()[room..];
    let mut out = Vec::with_capacity(before.len() + text.len() + after.len());
    out.extend_from_slice(before);
    out.extend_from_slice(text);
    out.extend_from_slice(after);
    out.into()
}

/// Appends one request to the venue's log.
pub fn log(
    venue: &Venue,
    method: &str,
    path: &str,
    status: u16,
    fx: &Effects,
    fault: Option<String>,
) {
    venue.log_request(RequestRecord {
        at: clock::ts(venue.now()),
        method: method.to_string(),
        path: path.to_string(),
        access_key: fx.access_key.clone(),
        status,
        error: fx.error.clone(),
        orders_created: fx.created.clone(),
        orders_cancelled: fx.cancelled.clone(),
        fault,
    });
}

/// Draws the faults for a request, logs them (tracing), sleeps the injected latency and starts
/// an injected 429 storm. The caller then handles `timeout`, `error`, `drop`, `truncate` and
/// `repeat_page`.
pub async fn inject(venue: &Venue, method: &str, path: &str) -> (Decision, Option<String>) {
    let decision = venue.faults().decide(method, path);
    let label = decision.label();
    if let Some(f) = &label {
        tracing::warn!(target: "respond::mock", "fault injected on {method} {path}: {f}");
    }
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    if decision.storm_secs > 0 {
        venue
            .gate()
            .limiter
            .start_storm(decision.storm_secs, Instant::now());
    }
    (decision, label)
}

/// The injected timeout: logs the request with status 0 and never answers until the server
/// shuts down.
pub async fn hold(venue: &Venue, method: &str, path: &str, fault: Option<String>) -> Response {
    log(venue, method, path, 0, &Effects::default(), fault);
    let mut rx = venue.shutdown_signal();
    let _ = rx.wait_for(|v| *v).await;
    Out::text(503, "shutting down").into_response()
}

/// The injected dropped connection: a 200 whose body stream fails.
pub fn dropped() -> Response {
    let mut r = Response::new(Body::from_stream(futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped (injected fault)"))
    })));
    *r.status_mut() = StatusCode::OK;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::venue::fragments::PageText;
    use serde_json::{json, Value};

    /// A list as each façade hands it over: written into a page with room for the answer
    /// before it, into a page without room, and joined from items.
    fn lists(items: &[&str]) -> Vec<String> {
        let page = |mut p: PageText| {
            for t in items {
                p.item(|b| b.push_str(t));
            }
            p.finish()
        };
        let owned: Vec<String> = items.iter().map(|t| t.to_string()).collect();
        vec![
            page(PageText::enveloped(items.len(), 16)),
            page(PageText::with_capacity(items.len(), 16)),
            json_array(&owned),
        ]
    }

    /// The answer with a list written as text is, byte for byte, what serde_json writes for
    /// the answer holding the list's values, whether the list is written in place (room
    /// enough before it), copied (no room, or an answer longer before the list than the room),
    /// empty, or absent.
    #[test]
    fn a_spliced_answer_is_the_answer_serde_json_writes() {
        let long = "k".repeat(400);
        let answers = [
            json!({"orders": RAW_SLOT, "sequence": "0", "has_next": true, "cursor": "MTIz"}),
            json!({"code": "200000", "data": {"lastId": 7, "items": RAW_SLOT}}),
            json!({"retCode": 0, "result": {"category": "spot", "list": RAW_SLOT,
                "nextPageCursor": "1_2"}, "retExtInfo": {}, "time": 1}),
            json!({long: "\u{1}", "list": RAW_SLOT, "x": [1]}),
        ];
        let item_sets: [&[&str]; 3] = [
            &[
                r#"{"a":1,"s":"x\"y"}"#,
                r#"{"a":2,"t":[]}"#,
                r#"{"b":null}"#,
            ],
            &[r#"{"a":1}"#],
            &[],
        ];
        for answer in &answers {
            for items in item_sets {
                let values: Vec<Value> = items
                    .iter()
                    .map(|t| serde_json::from_str(t).unwrap())
                    .collect();
                let text = answer.to_string().replace(
                    &serde_json::to_string(RAW_SLOT).unwrap(),
                    &Value::Array(values).to_string(),
                );
                for list in lists(items) {
                    let out = Out::json_spliced(200, answer, Some(list.clone()));
                    assert_eq!(
                        String::from_utf8(out.body.to_vec()).unwrap(),
                        text,
                        "{list:?}"
                    );
                }
            }
        }
        let plain = json!({"a": RAW_SLOT});
        assert_eq!(
            &Out::json_spliced(200, &plain, None).body[..],
            plain.to_string().as_bytes()
        );
    }
}
