//! The front server's client: a review, validated here, is answered by
//! another service's `POST /prediction_job/` (as mlseries' server asks its
//! ML service), through reqwest with pooled keep-alive connections.
//!
//! The upstream's answer comes back as it is, body and content type, with
//! 200 for its 201 (the front server's status). Unlike mlseries, whose
//! server answers 200 with whatever the ML service said, an upstream error
//! keeps its status, so a client can tell a refused review from an answer;
//! an upstream that cannot be reached is a 502, one too slow a 504. The
//! URL in messages has no user name or password.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::json;

use super::request::ApiError;

#[derive(Debug)]
pub struct Upstream {
    client: reqwest::Client,
    /// `…/prediction_job/`.
    endpoint: url::Url,
    /// The base URL without credentials, for messages.
    shown: String,
    timeout: Duration,
}

/// An upstream answer: its status (201 turned into 200) and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<reqwest::header::HeaderValue>,
    pub body: Bytes,
}

impl Upstream {
    pub fn new(base: &url::Url, timeout: Duration) -> Result<Upstream, reqwest::Error> {
        let mut root = base.clone();
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let endpoint = root
            .join("prediction_job/")
            .expect("a relative path joins any http URL");
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Upstream {
            client,
            endpoint,
            shown: shown(base),
            timeout,
        })
    }

    /// The base URL as messages show it (no credentials).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub async fn predict(&self, text: &str) -> Result<Answer, ApiError> {
        let body = serde_json::to_vec(&json!({ "text": text })).expect("JSON of a string");
        let response = self
            .client
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let status = match response.status().as_u16() {
            201 => StatusCode::OK,
            s => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
        };
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .cloned();
        let body = response.bytes().await.map_err(|e| self.error(e))?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    fn error(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::UpstreamTimeout {
                url: self.shown.clone(),
                seconds: self.timeout.as_secs_f64(),
            }
        } else {
            // The innermost cause says what happened (connection refused…);
            // reqwest's own text repeats the URL, credentials and all.
            let mut source: &dyn std::error::Error = &e;
            while let Some(next) = source.source() {
                source = next;
            }
            ApiError::UpstreamFailed {
                url: self.shown.clone(),
                reason: source.to_string(),
            }
        }
    }
}

/// `url` without user name and password.
pub fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let u = url::Url::parse("http://ml:s3cret@10.0.0.1:8001/base").unwrap();
        assert_eq!(shown(&u), "http://10.0.0.1:8001/base");
        let up = Upstream::new(&u, Duration::from_secs(1)).unwrap();
        assert_eq!(
            up.endpoint.as_str(),
            "http://ml:s3cret@10.0.0.1:8001/base/prediction_job/"
        );
        let up = Upstream::new(
            &url::Url::parse("http://127.0.0.1:8001").unwrap(),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            up.endpoint.as_str(),
            "http://127.0.0.1:8001/prediction_job/"
        );
    }
}
