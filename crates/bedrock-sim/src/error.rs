//! [`BedrockError`], an error answer in Bedrock's wire encoding (wire document §2.1): the
//! status, `x-amzn-ErrorType: <Shape>:http://internal.amazon.com/coral/com.amazon.bedrock/`,
//! `x-amzn-RequestId` and a `{"message": ...}` body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::behavior::{ErrorKind, MODEL_ORIGINAL_STATUS_CODE, MODEL_STREAM_ORIGINAL_MESSAGE};

/// The suffix Bedrock appends to the shape name in `x-amzn-ErrorType`.
pub(crate) const ERROR_TYPE_SUFFIX: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";

/// The header that names the request of every answer.
pub(crate) const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// An error answer: shape name, status and body fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BedrockError {
    pub(crate) shape: &'static str,
    pub(crate) status: StatusCode,
    /// The `message` field and any extra fields (`originalStatusCode`, ...).
    pub(crate) body: Map<String, Value>,
}

impl BedrockError {
    /// An error of `kind` with its realistic message; model errors name `base_model_id`.
    pub(crate) fn from_kind(kind: ErrorKind, base_model_id: &str) -> BedrockError {
        let mut error = BedrockError::new(
            kind.shape_name(),
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            kind.default_message(),
        );
        match kind {
            ErrorKind::ModelError => {
                error
                    .body
                    .insert("originalStatusCode".to_owned(), MODEL_ORIGINAL_STATUS_CODE.into());
                let resource =
                    format!("arn:aws:bedrock:us-east-1::foundation-model/{base_model_id}");
                error.body.insert("resourceName".to_owned(), resource.into());
            }
            ErrorKind::ModelStreamError => {
                error
                    .body
                    .insert("originalStatusCode".to_owned(), MODEL_ORIGINAL_STATUS_CODE.into());
                error
                    .body
                    .insert("originalMessage".to_owned(), MODEL_STREAM_ORIGINAL_MESSAGE.into());
            }
            _ => {}
        }
        error
    }

    /// A 400 `ValidationException`.
    pub(crate) fn validation(message: impl Into<String>) -> BedrockError {
        BedrockError::new("ValidationException", StatusCode::BAD_REQUEST, message)
    }

    /// A 429 `ThrottlingException` with its own message (the token quota's).
    pub(crate) fn throttling(message: impl Into<String>) -> BedrockError {
        BedrockError::new("ThrottlingException", StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// A 403 of the authentication checks (`auth.rs`), with Bedrock's shape and message.
    pub(crate) fn forbidden(shape: &'static str, message: impl Into<String>) -> BedrockError {
        BedrockError::new(shape, StatusCode::FORBIDDEN, message)
    }

    /// The answer to a path or method that is not one of the simulated operations.
    pub(crate) fn unknown_operation() -> BedrockError {
        BedrockError::new(
            "UnknownOperationException",
            StatusCode::NOT_FOUND,
            "The requested operation is not recognized by the service.",
        )
    }

    fn new(shape: &'static str, status: StatusCode, message: impl Into<String>) -> BedrockError {
        let mut body = Map::new();
        body.insert("message".to_owned(), Value::String(message.into()));
        BedrockError { shape, status, body }
    }

    /// The `message` field.
    pub(crate) fn message(&self) -> &str {
        self.body.get("message").and_then(Value::as_str).unwrap_or_default()
    }

    /// The HTTP answer, carrying `request_id`.
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let error_type = format!("{}:{ERROR_TYPE_SUFFIX}", self.shape);
        let body = Value::Object(self.body).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::from_str(&error_type) {
            headers.insert("x-amzn-errortype", value);
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_errors_carry_their_extra_fields() {
        let error = BedrockError::from_kind(ErrorKind::ModelError, "anthropic.claude-v2");
        assert_eq!(error.status, StatusCode::FAILED_DEPENDENCY);
        assert_eq!(error.body["originalStatusCode"], 500);
        assert_eq!(
            error.body["resourceName"],
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"
        );
        let error = BedrockError::from_kind(ErrorKind::ModelStreamError, "x");
        assert_eq!(error.body["originalStatusCode"], 500);
        assert!(error.body["originalMessage"].is_string());
        let error = BedrockError::from_kind(ErrorKind::Throttling, "x");
        assert_eq!(error.body.len(), 1);
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        let error = BedrockError::throttling("Too many tokens, please wait before trying again.");
        assert_eq!(
            (error.shape, error.status),
            ("ThrottlingException", StatusCode::TOO_MANY_REQUESTS)
        );
        assert_eq!(error.message(), "Too many tokens, please wait before trying again.");
    }

    #[test]
    fn response_has_the_bedrock_headers() {
        let response = BedrockError::validation("nope").into_response("req-1");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let headers = response.headers();
        assert_eq!(
            headers["x-amzn-errortype"],
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
        assert_eq!(headers[REQUEST_ID_HEADER], "req-1");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}
