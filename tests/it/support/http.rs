//! A raw HTTP answer as the façade tests read it (status, headers, body), and a public GET of
//! the mock; each façade's tests add their exchange's error envelope on top.

use reqwest::header::HeaderMap;
use respond::mock::MockServer;
use serde_json::Value;

/// An answer, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// Reads a response to its end.
    pub async fn read(r: reqwest::Response) -> Resp {
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    /// The body as JSON (null when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// `GET {url}{path}` without credentials.
pub async fn public(s: &MockServer, path: &str) -> Resp {
    Resp::read(reqwest::get(format!("{}{path}", s.url)).await.unwrap()).await
}
