//! [`ApiError`]: every way a request can fail, its HTTP status, its bounded `type`
//! string, and the one JSON shape callers see: `{"error":{"type":"...","message":"..."}}`.
//!
//! Errors are classed by who is at fault (the caller, Bedrock, or us) and mapped to a
//! status here and nowhere else. Upstream and internal details stay out of bodies;
//! they are logged once, when the response is built.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::Level;
use translator::TranslateError;

use crate::redact;
use crate::upstream::{BedrockErrorKind, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a wrong type, an unknown field, an invalid value.
    #[error("{0}")]
    BadRequest(String),
    /// A valid request the target model family cannot honour.
    #[error("{0}")]
    Unsupported(String),
    /// No API key, or not a configured one.
    #[error("{0}")]
    Unauthenticated(String),
    /// The `model` alias is not configured.
    #[error("unknown model {0:?}; GET /v1/models lists the configured models")]
    UnknownModel(String),
    /// No route for this path.
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The caller did not send its whole body within `body_read_timeout_ms`.
    #[error("the request body did not arrive within {0} ms")]
    RequestTimeout(u128),
    /// The API listener is at its cap of requests in flight (`max_in_flight`) or of
    /// open connections (`max_connections`).
    #[error("{0}")]
    Overloaded(String),
    /// The API key may not use this alias.
    #[error("{0}")]
    Forbidden(String),
    /// The gateway's own admission refused: a caller limit, or a route quota whose
    /// queue is full or whose wait ran out. Not Bedrock's throttle (`upstream_throttled`).
    #[error("{message}")]
    RateLimited { message: String, retry_after: Option<Duration> },
    /// The shared limits backend (Redis) is unreachable and the mode is `fail_closed`.
    #[error("the shared limits backend is unavailable")]
    LimitsUnavailable,
    /// The gateway's shutdown drain ran out with this stream still open: it ends now.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// Bedrock failed or refused the call.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Bedrock answered 200 with a body the family decoder cannot read.
    #[error("{0}")]
    MalformedUpstream(String),
    /// Bedrock answered, but the model's content filter refused the prompt or its output
    /// (an image model's filtered finish reason). The caller's request is the cause: 400, as
    /// OpenAI answers a prompt its safety system refuses.
    #[error("{0}")]
    ContentFiltered(String),
    /// A bug of ours (a caught panic, an impossible state).
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response, and of the SSE `error` event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A bounded set: `invalid_request`, `unsupported_parameter`, `model_not_found`,
    /// `content_filter`, `upstream_throttled`, `upstream_timeout`, … (README.md lists them
    /// with statuses).
    #[serde(rename = "type")]
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    /// The HTTP status. Exhaustive on purpose: a new variant must choose one.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unsupported(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::UnknownModel(_) => StatusCode::NOT_FOUND,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(error) => upstream_status(error),
            ApiError::MalformedUpstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::ContentFiltered(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The bounded `type` string, also the `error_type` label of metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::Unsupported(_) => "unsupported_parameter",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::UnknownModel(_) => "model_not_found",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::LimitsUnavailable => "limits_unavailable",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Upstream(error) => upstream_error_type(error),
            ApiError::MalformedUpstream(_) => "malformed_upstream",
            ApiError::ContentFiltered(_) => "content_filter",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What the caller is told. Client errors say what was wrong; upstream and
    /// internal errors get a fixed text, except Bedrock's validation message, which
    /// describes the caller's own request. Every message goes through
    /// [`redact::public`]: account ids, access key ids and internal addresses masked,
    /// the length bounded.
    pub fn public_message(&self) -> String {
        redact::public(&self.unmasked_message())
    }

    fn unmasked_message(&self) -> String {
        match self {
            ApiError::BadRequest(_)
            | ApiError::Unsupported(_)
            | ApiError::Unauthenticated(_)
            | ApiError::UnknownModel(_)
            | ApiError::NotFound(_)
            | ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge(_)
            | ApiError::RequestTimeout(_)
            | ApiError::Overloaded(_)
            | ApiError::Forbidden(_)
            | ApiError::RateLimited { .. }
            | ApiError::LimitsUnavailable
            | ApiError::ShuttingDown
            | ApiError::ContentFiltered(_) => self.to_string(),
            ApiError::Upstream(error) => upstream_public_message(error),
            ApiError::MalformedUpstream(_) => {
                "Bedrock's answer could not be read by the gateway".to_owned()
            }
            ApiError::Internal(_) => "internal error in the gateway".to_owned(),
        }
    }

    /// Seconds after which a retry may succeed, for the `Retry-After` header.
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            ApiError::RateLimited { retry_after, .. } => retry_after.map(|wait| {
                // Whole seconds, rounded up: never earlier than the reservation would fit.
                u32::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u32::MAX).max(1)
            }),
            ApiError::LimitsUnavailable | ApiError::Overloaded(_) | ApiError::ShuttingDown => {
                Some(1)
            }
            ApiError::Upstream(UpstreamError::Bedrock { kind, .. }) => match kind {
                BedrockErrorKind::Throttling | BedrockErrorKind::ServiceQuotaExceeded => Some(1),
                BedrockErrorKind::ModelNotReady | BedrockErrorKind::ServiceUnavailable => Some(5),
                _ => None,
            },
            ApiError::Upstream(UpstreamError::Unreachable(_)) => Some(5),
            _ => None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail { error_type: self.error_type(), message: self.public_message() },
        }
    }

    /// How loudly the error is logged: [`Level::WARN`] when the gateway or Bedrock is at
    /// fault; [`Level::INFO`] when Bedrock refused the caller's own request (a
    /// `ValidationException`: the caller's fault, but worth a line, and its message may
    /// echo the caller's data); [`Level::DEBUG`] when the gateway refused the caller. A
    /// refusal for load is not the gateway's fault either: the request's own line records
    /// it, and a burst of them would flood the log at `warn`.
    pub fn log_level(&self) -> Level {
        match self {
            ApiError::Upstream(UpstreamError::Bedrock {
                kind: BedrockErrorKind::Validation,
                ..
            }) => Level::INFO,
            ApiError::Upstream(UpstreamError::Bedrock { .. }) => Level::WARN,
            ApiError::Overloaded(_) => Level::DEBUG,
            _ if self.status().is_server_error() => Level::WARN,
            _ => Level::DEBUG,
        }
    }
}

fn upstream_status(error: &UpstreamError) -> StatusCode {
    match error {
        UpstreamError::Bedrock { kind, .. } => match kind {
            BedrockErrorKind::Throttling | BedrockErrorKind::ServiceQuotaExceeded => {
                StatusCode::TOO_MANY_REQUESTS
            }
            BedrockErrorKind::Validation => StatusCode::BAD_REQUEST,
            BedrockErrorKind::ModelTimeout => StatusCode::GATEWAY_TIMEOUT,
            BedrockErrorKind::ModelNotReady | BedrockErrorKind::ServiceUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // The gateway's own AWS identity or routing is at fault, or the model
            // failed: nothing the caller can change in the request.
            BedrockErrorKind::AccessDenied
            | BedrockErrorKind::ResourceNotFound
            | BedrockErrorKind::InternalServer
            | BedrockErrorKind::ModelError
            | BedrockErrorKind::ModelStreamError
            | BedrockErrorKind::Unknown => StatusCode::BAD_GATEWAY,
        },
        UpstreamError::Timeout | UpstreamError::Stalled(_) => StatusCode::GATEWAY_TIMEOUT,
        UpstreamError::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
        UpstreamError::Malformed(_) => StatusCode::BAD_GATEWAY,
        UpstreamError::Sdk(_) => StatusCode::INTERNAL_SERVER_ERROR,
        UpstreamError::Credentials(_) => StatusCode::BAD_GATEWAY,
    }
}

/// The error codes with which AWS refuses a request's signature or credentials before
/// Bedrock runs anything: not Bedrock's modelled errors (the SDK's `Unknown`), and never
/// the caller's doing, since the gateway signs its calls with its own identity.
pub(crate) const CREDENTIAL_REFUSALS: [&str; 7] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];

/// The code of `error` when it is AWS refusing the gateway's signature or credentials (a
/// wrong secret, an unknown key, an expired token, a skewed clock): the operator's to fix,
/// a 502 `upstream_misconfigured` that is neither retried nor charged.
pub(crate) fn refused_credentials(error: &UpstreamError) -> Option<&'static str> {
    let UpstreamError::Bedrock { kind: BedrockErrorKind::Unknown, detail, .. } = error else {
        return None;
    };
    let code = detail.code.as_deref()?;
    CREDENTIAL_REFUSALS.into_iter().find(|refusal| *refusal == code)
}

pub(crate) fn upstream_error_type(error: &UpstreamError) -> &'static str {
    if refused_credentials(error).is_some() {
        return "upstream_misconfigured";
    }
    match error {
        UpstreamError::Bedrock { kind, .. } => match kind {
            BedrockErrorKind::Throttling | BedrockErrorKind::ServiceQuotaExceeded => {
                "upstream_throttled"
            }
            BedrockErrorKind::Validation => "upstream_rejected",
            BedrockErrorKind::ModelTimeout => "upstream_timeout",
            BedrockErrorKind::ModelNotReady | BedrockErrorKind::ServiceUnavailable => {
                "upstream_unavailable"
            }
            BedrockErrorKind::AccessDenied | BedrockErrorKind::ResourceNotFound => {
                "upstream_misconfigured"
            }
            BedrockErrorKind::InternalServer
            | BedrockErrorKind::ModelError
            | BedrockErrorKind::ModelStreamError
            | BedrockErrorKind::Unknown => "upstream_error",
        },
        UpstreamError::Timeout | UpstreamError::Stalled(_) => "upstream_timeout",
        UpstreamError::Unreachable(_) => "upstream_unavailable",
        UpstreamError::Malformed(_) => "malformed_upstream",
        UpstreamError::Sdk(_) => "internal",
        UpstreamError::Credentials(_) => "upstream_misconfigured",
    }
}

fn upstream_public_message(error: &UpstreamError) -> String {
    if let Some(code) = refused_credentials(error) {
        return format!(
            "Bedrock refused the gateway's own AWS signature ({code}); its operator must fix \
             the gateway's credentials or clock"
        );
    }
    let text = match error {
        UpstreamError::Bedrock { kind, message, .. } => match kind {
            BedrockErrorKind::Validation => {
                return format!("Bedrock rejected the request: {message}");
            }
            BedrockErrorKind::Throttling => "Bedrock is throttling requests to this model",
            BedrockErrorKind::ServiceQuotaExceeded => "the Bedrock service quota is exceeded",
            BedrockErrorKind::ModelTimeout => "the model timed out processing the request",
            BedrockErrorKind::ModelNotReady => "the model is not ready; retry later",
            BedrockErrorKind::ServiceUnavailable => "Bedrock is unavailable",
            BedrockErrorKind::AccessDenied => {
                "the gateway is not allowed to invoke this model on Bedrock"
            }
            BedrockErrorKind::ResourceNotFound => "Bedrock does not know the configured model",
            BedrockErrorKind::InternalServer => "Bedrock failed with an internal error",
            BedrockErrorKind::ModelError | BedrockErrorKind::ModelStreamError => {
                "the model failed while processing the request"
            }
            BedrockErrorKind::Unknown => "Bedrock answered with an unexpected error",
        },
        UpstreamError::Timeout => "Bedrock did not answer in time",
        UpstreamError::Stalled(_) => {
            "Bedrock's stream stalled: no chunk within the gateway's idle timeout"
        }
        UpstreamError::Unreachable(_) => "Bedrock could not be reached",
        UpstreamError::Malformed(_) => "Bedrock's answer could not be read by the gateway",
        UpstreamError::Sdk(_) => "internal error in the gateway",
        UpstreamError::Credentials(_) => {
            "the gateway has no AWS credentials to call Bedrock with; its operator must \
             provide them"
        }
    };
    text.to_owned()
}

impl From<TranslateError> for ApiError {
    fn from(error: TranslateError) -> ApiError {
        match error {
            TranslateError::InvalidRequest(message) => ApiError::BadRequest(message),
            TranslateError::Unsupported { .. } => ApiError::Unsupported(error.to_string()),
            TranslateError::MalformedResponse { .. } => {
                ApiError::MalformedUpstream(error.to_string())
            }
            TranslateError::ContentFiltered { .. } => ApiError::ContentFiltered(error.to_string()),
        }
    }
}

impl ApiError {
    /// Logs the error once, with its details, at its [`ApiError::log_level`].
    pub fn log(&self) {
        self.log_as("request failed");
    }

    /// [`ApiError::log`] for the error that ends a started stream.
    pub fn log_stream_failure(&self) {
        self.log_as("stream failed");
    }

    fn log_as(&self, failed: &str) {
        let error_type = self.error_type();
        match self.log_level() {
            Level::WARN => tracing::warn!(message = failed, error_type, error = %self),
            Level::INFO => tracing::info!(message = failed, error_type, error = %self),
            _ => tracing::debug!(message = "request refused", error_type, error = %self),
        }
    }

    /// A response with this error's status, `Retry-After` where it has one, and `body`:
    /// the gateway's error shape, or another API's (OpenAI's).
    pub fn response_with_body(&self, body: impl serde::Serialize) -> Response {
        self.log();
        let mut response = (self.status(), Json(body)).into_response();
        response.extensions_mut().insert(crate::telemetry::ErrorType(self.error_type()));
        if let Some(secs) = self.retry_after_secs() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.response_with_body(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bedrock(kind: BedrockErrorKind, message: &str) -> ApiError {
        ApiError::Upstream(UpstreamError::Bedrock {
            kind,
            message: message.to_owned(),
            detail: Box::default(),
        })
    }

    #[test]
    fn every_message_is_masked_and_bounded() {
        let error = bedrock(
            BedrockErrorKind::Validation,
            "Value 'arn:aws:bedrock:us-east-1:123456789012:foo/bar' at 'modelId' \
             (AKIAIOSFODNN7EXAMPLE)",
        );
        assert_eq!(
            error.public_message(),
            "Bedrock rejected the request: Value 'arn:aws:bedrock:us-east-1:<account>:foo/bar' \
             at 'modelId' (<access-key>)"
        );
        // The gateway's own messages too: a caller's unknown model echoed back, a huge one.
        let error = ApiError::UnknownModel("arn:aws:bedrock:us-east-1:123456789012:x".into());
        assert!(!error.public_message().contains("123456789012"));
        let error = ApiError::BadRequest(format!("bad value {}", "x".repeat(100_000)));
        let message = error.public_message();
        assert!(message.len() <= redact::MAX_MESSAGE_BYTES, "{}", message.len());
        assert!(message.ends_with(redact::TRUNCATED_MARKER));
        let body = serde_json::to_value(error.body()).unwrap();
        assert_eq!(body["error"]["message"], message.as_str());
    }

    #[test]
    fn a_callers_validation_exception_logs_at_info_bedrocks_faults_at_warn() {
        assert_eq!(bedrock(BedrockErrorKind::Validation, "bad").log_level(), Level::INFO);
        assert_eq!(bedrock(BedrockErrorKind::AccessDenied, "no").log_level(), Level::WARN);
        assert_eq!(bedrock(BedrockErrorKind::Throttling, "slow").log_level(), Level::WARN);
        assert_eq!(ApiError::Upstream(UpstreamError::Timeout).log_level(), Level::WARN);
        assert_eq!(ApiError::BadRequest("bad".into()).log_level(), Level::DEBUG);
        assert_eq!(ApiError::Internal("bug".into()).log_level(), Level::WARN);
    }

    #[test]
    fn a_content_filter_refusal_is_the_callers_400_with_its_reason() {
        let error = ApiError::from(TranslateError::ContentFiltered {
            family: "stability_image",
            detail: "generation finished with `Filter reason: prompt`".to_owned(),
        });
        assert!(matches!(error, ApiError::ContentFiltered(_)), "{error:?}");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.error_type(), "content_filter");
        assert_eq!(error.log_level(), Level::DEBUG);
        let body = error.body();
        assert_eq!(body.error.error_type, "content_filter");
        assert!(body.error.message.contains("Filter reason: prompt"), "{}", body.error.message);
        assert_eq!(error.retry_after_secs(), None);
    }

    #[test]
    fn upstream_details_stay_out_of_bodies() {
        let error = ApiError::Upstream(UpstreamError::Unreachable("10.0.0.7:443 refused".into()));
        assert!(!error.public_message().contains("10.0.0.7"));
        let error = ApiError::Internal("secret state".into());
        assert!(!error.public_message().contains("secret"));
    }

    #[test]
    fn aws_refusing_the_gateways_signature_is_the_operators_502() {
        let refused = |code: &str| {
            ApiError::Upstream(UpstreamError::Bedrock {
                kind: BedrockErrorKind::Unknown,
                message: "The request signature we calculated does not match the signature \
                          you provided."
                    .to_owned(),
                detail: Box::new(crate::upstream::BedrockErrorDetail {
                    code: Some(code.to_owned()),
                    http_status: Some(403),
                    ..crate::upstream::BedrockErrorDetail::default()
                }),
            })
        };
        for code in CREDENTIAL_REFUSALS {
            let error = refused(code);
            assert_eq!(error.status(), StatusCode::BAD_GATEWAY, "{code}");
            assert_eq!(error.error_type(), "upstream_misconfigured", "{code}");
            assert_eq!(error.retry_after_secs(), None, "{code}");
            assert_eq!(error.log_level(), Level::WARN, "{code}");
            let message = error.public_message();
            assert!(message.contains(code) && message.contains("operator"), "{message}");
        }
        // Another code Bedrock does not model stays an unexpected upstream error.
        let error = refused("SomethingNewException");
        assert_eq!(
            (error.status(), error.error_type()),
            (StatusCode::BAD_GATEWAY, "upstream_error")
        );
        // A modelled kind is never taken for a refusal, whatever its code says.
        let error = UpstreamError::Bedrock {
            kind: BedrockErrorKind::Validation,
            message: String::new(),
            detail: Box::new(crate::upstream::BedrockErrorDetail {
                code: Some("InvalidSignatureException".to_owned()),
                ..crate::upstream::BedrockErrorDetail::default()
            }),
        };
        assert_eq!(refused_credentials(&error), None);
    }

    #[test]
    fn missing_aws_credentials_are_the_operators_502_without_retry_after() {
        let error = ApiError::Upstream(UpstreamError::Credentials(
            "no providers in chain provided credentials".into(),
        ));
        assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(error.error_type(), "upstream_misconfigured");
        assert_eq!(error.retry_after_secs(), None);
        assert!(error.public_message().contains("no AWS credentials"));
        assert!(!error.public_message().contains("providers"));
        assert_eq!(error.log_level(), Level::WARN);
    }
}
