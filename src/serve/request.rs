//! Request bodies in, typed requests or [`ApiError`]s out.
//!
//! The error bodies are FastAPI's, as the mlseries services answer them
//! (pydantic 1's `{"detail": [{"loc", "msg", "type", "ctx"}]}` for a body
//! that does not validate, `{"detail": "…"}` for the rest), so clients
//! written against mlseries read them unchanged. The two its tests check
//! are reproduced byte for byte:
//!
//! - a text shorter than 4 characters (Unicode scalar values, as Python's
//!   `len`): 422 `{"detail":[{"loc":["body","text"],"msg":"min_length:4",
//!   "type":"value_error.any_str.min_length","ctx":{"limit_value":4}}]}`;
//! - a review that is an integer (`^-?[1-9][0-9]*$`, as Python's `re`
//!   reads it: `$` also matches before a final newline): 422
//!   `{"detail":"Review cannot be a number"}`.
//!
//! As pydantic 1 does for a `str` field, a JSON number is taken as its text
//! (`1234` is the review `"1234"`, and so is refused as a number); `true`,
//! `null`, arrays and objects are refused. Everything else a client can get
//! wrong (no body, a body that is not JSON or not UTF-8, the wrong content
//! type, a body over the limit, a client too slow to send it) is a 4xx with
//! a JSON `detail` saying what was wrong; none of it reaches a model.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value as Json};

/// The shortest review the API accepts, in characters.
pub const MIN_LENGTH: usize = 4;

/// A bad request, or a failure on the way to an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body did not validate: 422 with FastAPI's list of errors.
    Invalid(Vec<FieldError>),
    /// The review is an integer: 422.
    ReviewIsANumber,
    /// 413: the body is larger than `limit` bytes.
    TooLarge {
        limit: usize,
    },
    /// 415: a content type that is not JSON.
    UnsupportedMediaType {
        found: String,
    },
    /// 408: the client did not send its body within the read timeout.
    BodyTimeout {
        seconds: f64,
    },
    /// 400: the body could not be read (the client broke it off).
    BodyUnreadable {
        reason: String,
    },
    NotFound,
    MethodNotAllowed,
    /// 502: the upstream prediction service failed.
    UpstreamFailed {
        url: String,
        reason: String,
    },
    /// 504: it did not answer in time.
    UpstreamTimeout {
        url: String,
        seconds: f64,
    },
    /// 500: a prediction failed (a bug: predictions cannot fail).
    Internal,
}

/// One entry of FastAPI's `detail` list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub loc: Vec<Json>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Json>,
}

impl FieldError {
    fn new(loc: Vec<Json>, msg: impl Into<String>, kind: &'static str) -> FieldError {
        FieldError {
            loc,
            msg: msg.into(),
            kind,
            ctx: None,
        }
    }
}

#[derive(Serialize)]
struct Detail<T: Serialize> {
    detail: T,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::ReviewIsANumber => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyUnreadable { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UpstreamFailed { .. } => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body, compact as FastAPI writes it.
    pub fn body(&self) -> Vec<u8> {
        let text = |s: String| serde_json::to_vec(&Detail { detail: s });
        match self {
            ApiError::Invalid(errors) => serde_json::to_vec(&Detail { detail: errors }),
            ApiError::ReviewIsANumber => text("Review cannot be a number".into()),
            ApiError::TooLarge { limit } => text(format!(
                "the request body is larger than the limit of {limit} bytes"
            )),
            ApiError::UnsupportedMediaType { found } => text(format!(
                "the body must be JSON (Content-Type: application/json), not {found}"
            )),
            ApiError::BodyTimeout { seconds } => text(format!(
                "the request body did not arrive within {seconds} s"
            )),
            ApiError::BodyUnreadable { reason } => {
                text(format!("the request body could not be read: {reason}"))
            }
            ApiError::NotFound => text("Not Found".into()),
            ApiError::MethodNotAllowed => text("Method Not Allowed".into()),
            ApiError::UpstreamFailed { url, reason } => {
                text(format!("the prediction service at {url} failed: {reason}"))
            }
            ApiError::UpstreamTimeout { url, seconds } => text(format!(
                "the prediction service at {url} did not answer within {seconds} s"
            )),
            ApiError::Internal => text("Internal Server Error".into()),
        }
        .expect("JSON of strings and numbers")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.body()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if matches!(
            self,
            ApiError::TooLarge { .. }
                | ApiError::BodyTimeout { .. }
                | ApiError::BodyUnreadable { .. }
        ) {
            // The rest of the body was not read: the connection cannot
            // carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Checks the request's content type: JSON (`application/json`, or any
/// `application/…+json`), or none at all (read as JSON, as FastAPI does).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let found = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let essence = found
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            found: if found.is_empty() {
                "an empty Content-Type".into()
            } else {
                found.chars().take(100).collect()
            },
        })
    }
}

/// `{"text": …}`: the body of `/prediction_job/` and `/review_sentiment/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub text: String,
}

/// `{"texts": […]}`: the body of `/predict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub texts: Vec<String>,
}

impl Review {
    /// A review as the ML service validates it (a text of at least
    /// [`MIN_LENGTH`] characters).
    pub fn parse(body: &Bytes) -> Result<Review, ApiError> {
        let object = object(body)?;
        let text = string_field(&object, "text", vec![json!("body"), json!("text")])?;
        if text.chars().count() < MIN_LENGTH {
            return Err(ApiError::Invalid(vec![FieldError {
                loc: vec![json!("body"), json!("text")],
                msg: format!("min_length:{MIN_LENGTH}"),
                kind: "value_error.any_str.min_length",
                ctx: Some(json!({ "limit_value": MIN_LENGTH })),
            }]));
        }
        Ok(Review { text })
    }

    /// The front server's rule on top: a review may not be an integer.
    pub fn check_not_a_number(&self) -> Result<(), ApiError> {
        if is_integer(&self.text) {
            Err(ApiError::ReviewIsANumber)
        } else {
            Ok(())
        }
    }
}

impl Batch {
    pub fn parse(body: &Bytes) -> Result<Batch, ApiError> {
        let object = object(body)?;
        let loc = || vec![json!("body"), json!("texts")];
        let items = match object.get("texts") {
            None => {
                return Err(ApiError::Invalid(vec![FieldError::new(
                    loc(),
                    "field required",
                    "value_error.missing",
                )]))
            }
            Some(Json::Array(items)) => items,
            Some(_) => {
                return Err(ApiError::Invalid(vec![FieldError::new(
                    loc(),
                    "value is not a valid list",
                    "type_error.list",
                )]))
            }
        };
        let mut texts = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut at = loc();
            at.push(json!(i));
            match as_text(item, at) {
                Ok(text) => texts.push(text),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Batch { texts })
        } else {
            Err(ApiError::Invalid(errors))
        }
    }
}

/// The body as a JSON object, or FastAPI's error for what it is instead.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Json>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::Invalid(vec![FieldError::new(
            vec![json!("body")],
            "field required",
            "value_error.missing",
        )]));
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::Invalid(vec![FieldError {
            loc: vec![json!("body"), json!(e.valid_up_to())],
            msg: format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
            kind: "value_error.jsondecode",
            ctx: None,
        }]));
    }
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::Invalid(vec![FieldError::new(
            vec![json!("body")],
            "value is not a valid dict",
            "type_error.dict",
        )])),
        Err(e) => Err(ApiError::Invalid(vec![FieldError {
            loc: vec![json!("body")],
            msg: format!("the body is not valid JSON: {e}"),
            kind: "value_error.jsondecode",
            ctx: Some(json!({"line": e.line(), "column": e.column()})),
        }])),
    }
}

fn string_field(
    object: &serde_json::Map<String, Json>,
    key: &str,
    loc: Vec<Json>,
) -> Result<String, ApiError> {
    match object.get(key) {
        None => Err(ApiError::Invalid(vec![FieldError::new(
            loc,
            "field required",
            "value_error.missing",
        )])),
        Some(value) => as_text(value, loc).map_err(|e| ApiError::Invalid(vec![e])),
    }
}

/// A string, or a number as its JSON text (pydantic 1's `str` coercion).
fn as_text(value: &Json, loc: Vec<Json>) -> Result<String, FieldError> {
    match value {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Null => Err(FieldError::new(
            loc,
            "none is not an allowed value",
            "type_error.none.not_allowed",
        )),
        _ => Err(FieldError::new(loc, "str type expected", "type_error.str")),
    }
}

/// Python's `re.search(r"^\-?[1-9][0-9]*$", text)`: `$` matches at the end
/// and before a final newline.
fn is_integer(text: &str) -> bool {
    let t = text.strip_suffix('\n').unwrap_or(text);
    let t = t.strip_prefix('-').unwrap_or(t);
    let mut digits = t.bytes();
    matches!(digits.next(), Some(b'1'..=b'9')) && digits.all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(body: &str) -> Result<Review, ApiError> {
        Review::parse(&Bytes::from(body.to_string()))
    }

    fn body(e: &ApiError) -> String {
        String::from_utf8(e.body()).unwrap()
    }

    #[test]
    fn mlseries_bodies_byte_for_byte() {
        let e = review(r#"{"text": "abc"}"#).unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(
            body(&e),
            r#"{"detail":[{"loc":["body","text"],"msg":"min_length:4","type":"value_error.any_str.min_length","ctx":{"limit_value":4}}]}"#
        );
        let e = review(r#"{"text": "1234"}"#)
            .unwrap()
            .check_not_a_number()
            .unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(body(&e), r#"{"detail":"Review cannot be a number"}"#);
    }

    #[test]
    fn the_number_rule_reads_as_python_re_does() {
        for number in ["1234", "-1234", "9999999999999999999999", "1234\n"] {
            assert!(is_integer(number), "{number:?}");
        }
        for text in [
            "0123", "12.5", "12 34", "+1234", "1234\n\n", "١٢٣٤", "--12", "12a4", "-",
        ] {
            assert!(!is_integer(text), "{text:?}");
        }
    }

    #[test]
    fn numbers_are_texts_other_types_are_refused() {
        assert_eq!(review(r#"{"text": 12345}"#).unwrap().text, "12345");
        assert_eq!(
            review(r#"{"text": 12345}"#)
                .unwrap()
                .check_not_a_number()
                .unwrap_err(),
            ApiError::ReviewIsANumber
        );
        assert_eq!(review(r#"{"text": 1234.5}"#).unwrap().text, "1234.5");
        assert_eq!(
            body(&review(r#"{"text": 12}"#).unwrap_err()),
            r#"{"detail":[{"loc":["body","text"],"msg":"min_length:4","type":"value_error.any_str.min_length","ctx":{"limit_value":4}}]}"#
        );
        assert_eq!(
            body(&review(r#"{"text": true}"#).unwrap_err()),
            r#"{"detail":[{"loc":["body","text"],"msg":"str type expected","type":"type_error.str"}]}"#
        );
        assert_eq!(
            body(&review(r#"{"text": null}"#).unwrap_err()),
            r#"{"detail":[{"loc":["body","text"],"msg":"none is not an allowed value","type":"type_error.none.not_allowed"}]}"#
        );
        assert_eq!(
            body(&review(r#"{"txet": "good film"}"#).unwrap_err()),
            r#"{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}"#
        );
        // Length is in characters, not bytes.
        assert_eq!(review(r#"{"text": "élan"}"#).unwrap().text, "élan");
        assert!(review(r#"{"text": "éé"}"#).is_err());
    }

    #[test]
    fn bodies_that_are_not_a_json_object() {
        assert_eq!(
            body(&review("").unwrap_err()),
            r#"{"detail":[{"loc":["body"],"msg":"field required","type":"value_error.missing"}]}"#
        );
        assert_eq!(
            body(&review(r#"["good film"]"#).unwrap_err()),
            r#"{"detail":[{"loc":["body"],"msg":"value is not a valid dict","type":"type_error.dict"}]}"#
        );
        assert_eq!(
            body(&review(r#"{"text": "good"#).unwrap_err()),
            r#"{"detail":[{"loc":["body"],"msg":"the body is not valid JSON: EOF while parsing a string at line 1 column 14","type":"value_error.jsondecode","ctx":{"column":14,"line":1}}]}"#
        );
        let e = Review::parse(&Bytes::from_static(b"{\"text\": \"caf\xe9 au lait\"}")).unwrap_err();
        assert_eq!(
            body(&e),
            r#"{"detail":[{"loc":["body",13],"msg":"the body is not valid UTF-8 (at byte 13)","type":"value_error.jsondecode"}]}"#
        );
    }

    #[test]
    fn batches_name_each_bad_item() {
        let b = Batch::parse(&Bytes::from_static(br#"{"texts": ["a", "good film", 42]}"#)).unwrap();
        assert_eq!(b.texts, ["a", "good film", "42"]);
        let e =
            Batch::parse(&Bytes::from_static(br#"{"texts": ["ok", false, null]}"#)).unwrap_err();
        assert_eq!(
            body(&e),
            r#"{"detail":[{"loc":["body","texts",1],"msg":"str type expected","type":"type_error.str"},{"loc":["body","texts",2],"msg":"none is not an allowed value","type":"type_error.none.not_allowed"}]}"#
        );
        let e = Batch::parse(&Bytes::from_static(br#"{"texts": "good film"}"#)).unwrap_err();
        assert_eq!(
            body(&e),
            r#"{"detail":[{"loc":["body","texts"],"msg":"value is not a valid list","type":"type_error.list"}]}"#
        );
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(check_content_type(&h).is_ok(), "{ok}");
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let e = check_content_type(&h).unwrap_err();
        assert_eq!(e.status(), 415);
        assert_eq!(
            body(&e),
            r#"{"detail":"the body must be JSON (Content-Type: application/json), not application/x-www-form-urlencoded"}"#
        );
    }
}
