//! The Bedrock-native routes: `POST /model/{modelId}/invoke` (InvokeModel) and
//! `POST /model/{modelId}/invoke-with-response-stream` (InvokeModelWithResponseStream),
//! in Bedrock's own wire protocol (`shared/bedrock-wire.md`), so that the AWS SDKs work
//! against the gateway with only their endpoint URL changed.
//!
//! - `{modelId}` is cut from the raw path before percent-decoding (ARNs carry `%2F`),
//!   then decoded. It is a model alias of the config, or a Bedrock model id that some
//!   alias routes to; an alias wins. Anything else is refused with
//!   `ResourceNotFoundException` (404), not forwarded: the config says which models
//!   the gateway may call.
//! - The body and the modelled request headers go to Bedrock as they came, through the
//!   shared SDK client, with the upstream config's retries and timeouts. The caller's
//!   `Authorization` (SigV4 or `Bearer`) is neither checked here nor forwarded: the
//!   gateway signs its own calls.
//! - InvokeModel answers with Bedrock's body, `Content-Type`, request id and usage and
//!   latency headers. The stream answers with one event-stream `chunk` frame per chunk,
//!   written as each arrives; a Bedrock exception becomes the same exception frame, and
//!   a broken upstream stream ends with an `internalServerException` frame.
//! - Errors before the answer are [`BedrockApiError`]s, encoded as Bedrock encodes them:
//!   the shape's status, `x-amzn-ErrorType`, a `{"message"}` body.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bedrock_sim::eventstream::{encode_chunk_frame, encode_exception_frame, padding};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::{ModelRoute, Target};
use crate::drain::Waiter;
use crate::error::{ApiError, refused_credentials};
use crate::pipeline::{Call, Encoder, PipelineStream};
use crate::redact;
use crate::routes::converse::ConverseOperation;
use crate::routes::sse::StreamBody;
use crate::routes::tag_target;
use crate::upstream::{
    BedrockErrorDetail, BedrockErrorKind, RawRequest, ResponseHeaders, UpstreamError,
};

/// The suffix Bedrock appends to the shape name in `x-amzn-ErrorType`.
pub const ERROR_TYPE_SUFFIX: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";

/// The shape sent for a Bedrock error that arrived without a name: an in-stream exception
/// the SDK does not model keeps only its message. The caller's SDK reports it as
/// unhandled, as it would have reported the original.
pub const UNNAMED_ERROR_SHAPE: &str = "UnknownException";

/// Chunk payloads are padded to a multiple of this many bytes (see [`chunk_frame`]).
const CHUNK_PAYLOAD_QUANTUM: usize = 32;

/// The two routes, for `app.rs` to merge. Their body limit is Bedrock's own,
/// `BEDROCK_MAX_BODY_BYTES` (`intake.rs`).
pub fn routes() -> Router<crate::app::Gateway> {
    Router::new().route("/model/{*rest}", any(handle))
}

/// InvokeModel in Bedrock's own protocol (documentation of a route `routes()` serves).
#[utoipa::path(
    post,
    path = "/model/{modelId}/invoke",
    tag = "bedrock",
    params(("modelId" = String, Path,
        description = "A model alias of the config, or a Bedrock model id (plain, profile or \
            ARN, percent-encoded as the AWS SDKs do) that an alias routes to")),
    request_body(content = Object, content_type = "application/json",
        description = "The model's own InvokeModel body, forwarded untouched"),
    responses(
        (status = 200, description = "Bedrock's answer body, with its `Content-Type`, \
            `x-amzn-RequestId` and `X-Amzn-Bedrock-*-Token-Count` headers"),
        (status = "4XX", description = "Bedrock's error encoding: `x-amzn-ErrorType` and \
            `{\"message\"}`"),
        (status = "5XX", description = "Bedrock's error encoding"),
    )
)]
pub fn invoke_model_operation() {}

/// InvokeModelWithResponseStream in Bedrock's own protocol (documentation of a route
/// `routes()` serves).
#[utoipa::path(
    post,
    path = "/model/{modelId}/invoke-with-response-stream",
    tag = "bedrock",
    params(("modelId" = String, Path,
        description = "A model alias of the config, or a Bedrock model id that an alias routes to")),
    request_body(content = Object, content_type = "application/json",
        description = "The model's own InvokeModel body, forwarded untouched"),
    responses(
        (status = 200, description = "An `application/vnd.amazon.eventstream` body: one `chunk` \
            frame per model chunk as it arrives; an exception frame ends a failed stream",
            content_type = "application/vnd.amazon.eventstream"),
        (status = "4XX", description = "Bedrock's error encoding"),
        (status = "5XX", description = "Bedrock's error encoding"),
    )
)]
pub fn invoke_model_with_response_stream_operation() {}

/// An error on the Bedrock-native routes, in Bedrock's encoding: before the answer an
/// HTTP error (wire document §2.1), inside a stream an exception frame (§2.3).
#[derive(Debug, thiserror::Error)]
pub enum BedrockApiError {
    /// Not one of the two operations (another path, or a method other than POST).
    #[error("not a Bedrock runtime operation of the gateway")]
    UnknownOperation,
    /// The model id is neither an alias nor a model id of the config.
    #[error("model {0:?} is not configured on this gateway")]
    ModelNotConfigured(String),
    /// No gateway API key, or not a configured one (see `auth.rs`).
    #[error("{0}")]
    AccessDenied(String),
    /// The request cannot be read: a bad escape in the path, a header that is not
    /// text, a body over the limit.
    #[error("{0}")]
    InvalidRequest(String),
    /// Bedrock refused or failed, or could not be reached or read.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Bedrock's stream broke off after the 200 (cut off, corrupted, disconnected,
    /// anything but an exception Bedrock sent): there is no nearer shape than an
    /// internal error to end the caller's stream with.
    #[error("the upstream stream broke: {0}")]
    StreamBroken(UpstreamError),
    /// The gateway's own admission refused (a caller or route limit, an alias the key
    /// may not use, the shared limits backend down), or another gateway failure: in
    /// the nearest Bedrock shape, so the AWS SDKs treat it as they would Bedrock's
    /// (a 429 `ThrottlingException` is retried by them), with the gateway's message.
    #[error("{0}")]
    Gateway(ApiError),
}

impl From<ApiError> for BedrockApiError {
    fn from(error: ApiError) -> BedrockApiError {
        match error {
            ApiError::Upstream(upstream) => BedrockApiError::Upstream(upstream),
            other => BedrockApiError::Gateway(other),
        }
    }
}

/// Which operation a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Invoke,
    InvokeWithResponseStream,
    /// Converse, ConverseStream or CountTokens (`converse.rs`).
    Converse(ConverseOperation),
}

impl BedrockApiError {
    /// The error shape name: Bedrock's own for its errors; for the gateway's failures
    /// the nearest Bedrock shape.
    pub fn shape(&self) -> &str {
        match self {
            BedrockApiError::UnknownOperation => "UnknownOperationException",
            BedrockApiError::ModelNotConfigured(_) => "ResourceNotFoundException",
            BedrockApiError::AccessDenied(_) => "AccessDeniedException",
            BedrockApiError::InvalidRequest(_) => "ValidationException",
            // AWS refused the gateway's own signature: not the caller's (403) to hear.
            BedrockApiError::Upstream(error) if refused_credentials(error).is_some() => {
                "InternalServerException"
            }
            BedrockApiError::Upstream(UpstreamError::Bedrock { kind, detail, .. }) => {
                kind.shape_name().or(detail.code.as_deref()).unwrap_or(UNNAMED_ERROR_SHAPE)
            }
            BedrockApiError::Upstream(UpstreamError::Timeout | UpstreamError::Stalled(_)) => {
                "ModelTimeoutException"
            }
            BedrockApiError::Upstream(UpstreamError::Unreachable(_)) => {
                "ServiceUnavailableException"
            }
            BedrockApiError::Upstream(
                UpstreamError::Malformed(_) | UpstreamError::Sdk(_) | UpstreamError::Credentials(_),
            )
            | BedrockApiError::StreamBroken(_) => "InternalServerException",
            BedrockApiError::Gateway(error) => match error.status().as_u16() {
                429 => "ThrottlingException",
                403 | 401 => "AccessDeniedException",
                404 => "ResourceNotFoundException",
                503 => "ServiceUnavailableException",
                400..=499 => "ValidationException",
                _ => "InternalServerException",
            },
        }
    }

    /// The HTTP status. A Bedrock error keeps the status Bedrock sent; the others get
    /// their shape's status from the service model.
    pub fn status(&self) -> StatusCode {
        match self {
            BedrockApiError::UnknownOperation => StatusCode::NOT_FOUND,
            BedrockApiError::ModelNotConfigured(_) => StatusCode::NOT_FOUND,
            BedrockApiError::AccessDenied(_) => StatusCode::FORBIDDEN,
            BedrockApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            BedrockApiError::Upstream(error) if refused_credentials(error).is_some() => {
                StatusCode::BAD_GATEWAY
            }
            BedrockApiError::Upstream(UpstreamError::Bedrock { kind, detail, .. }) => {
                bedrock_error_status(*kind, detail)
            }
            BedrockApiError::Upstream(UpstreamError::Timeout | UpstreamError::Stalled(_)) => {
                StatusCode::REQUEST_TIMEOUT
            }
            BedrockApiError::Upstream(UpstreamError::Unreachable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BedrockApiError::Upstream(UpstreamError::Malformed(_) | UpstreamError::Sdk(_))
            | BedrockApiError::StreamBroken(_) => StatusCode::INTERNAL_SERVER_ERROR,
            // The gateway's own AWS identity is missing: not Bedrock's fault, nor the caller's.
            BedrockApiError::Upstream(UpstreamError::Credentials(_)) => StatusCode::BAD_GATEWAY,
            // The status of the shape `shape()` chose; 5xx other than 503 keep theirs.
            BedrockApiError::Gateway(error) => match error.status().as_u16() {
                401 | 403 => StatusCode::FORBIDDEN,
                // 408 and 413 say what went wrong with the transfer, which any client reads.
                404 | 408 | 413 | 429 => error.status(),
                400..=499 => StatusCode::BAD_REQUEST,
                _ => error.status(),
            },
        }
    }

    /// What the caller is told. Bedrock's own messages pass on; the gateway's failures
    /// get a fixed text, never addresses or SDK details, which are logged instead. Every
    /// message goes through [`redact::public`] (account ids, access key ids and internal
    /// addresses masked, the length bounded).
    pub fn message(&self) -> String {
        redact::public(&self.unmasked_message())
    }

    fn unmasked_message(&self) -> String {
        match self {
            BedrockApiError::UnknownOperation => {
                "The requested operation is not recognized by the service.".to_owned()
            }
            BedrockApiError::ModelNotConfigured(_)
            | BedrockApiError::AccessDenied(_)
            | BedrockApiError::InvalidRequest(_) => self.to_string(),
            BedrockApiError::Upstream(error) if let Some(code) = refused_credentials(error) => {
                format!(
                    "Bedrock refused the gateway's own AWS signature ({code}); its operator must \
                     fix the gateway's credentials or clock."
                )
            }
            BedrockApiError::Upstream(UpstreamError::Bedrock { message, .. }) => message.clone(),
            BedrockApiError::Upstream(UpstreamError::Timeout) => {
                "Bedrock did not answer within the gateway's request timeout.".to_owned()
            }
            BedrockApiError::Upstream(UpstreamError::Stalled(_)) => {
                "Bedrock's response stream to the gateway sent nothing within the gateway's \
                 idle timeout."
                    .to_owned()
            }
            BedrockApiError::Upstream(UpstreamError::Unreachable(_)) => {
                "Bedrock could not be reached from the gateway.".to_owned()
            }
            BedrockApiError::Upstream(UpstreamError::Malformed(_)) => {
                "Bedrock's answer to the gateway was cut off or corrupted.".to_owned()
            }
            BedrockApiError::Upstream(UpstreamError::Credentials(_)) => {
                "The gateway has no AWS credentials to call Bedrock with; its operator must \
                 provide them."
                    .to_owned()
            }
            BedrockApiError::Upstream(UpstreamError::Sdk(_)) => {
                "Internal error in the gateway.".to_owned()
            }
            BedrockApiError::StreamBroken(_) => {
                "Bedrock's response stream to the gateway broke off before its end.".to_owned()
            }
            BedrockApiError::Gateway(error) => error.public_message(),
        }
    }

    /// The JSON body, also the payload of an exception frame: `message`, plus the extra
    /// members of `ModelErrorException` and `ModelStreamErrorException` when Bedrock
    /// sent them.
    pub fn body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("message".to_owned(), self.message().into());
        if let BedrockApiError::Upstream(UpstreamError::Bedrock { detail, .. }) = self {
            if let Some(code) = detail.original_status_code {
                body.insert("originalStatusCode".to_owned(), code.into());
            }
            if let Some(name) = &detail.resource_name {
                body.insert("resourceName".to_owned(), redact::public(name).into());
            }
            if let Some(message) = &detail.original_message {
                body.insert("originalMessage".to_owned(), redact::public(message).into());
            }
        }
        body
    }

    /// The gateway's bounded error type of this error, for metrics and logs.
    pub fn error_type(&self) -> &'static str {
        match self {
            BedrockApiError::UnknownOperation => "not_found",
            BedrockApiError::ModelNotConfigured(_) => "model_not_found",
            BedrockApiError::AccessDenied(_) => "unauthenticated",
            BedrockApiError::InvalidRequest(_) => "invalid_request",
            BedrockApiError::Upstream(error) => crate::error::upstream_error_type(error),
            BedrockApiError::StreamBroken(_) => "malformed_upstream",
            BedrockApiError::Gateway(error) => error.error_type(),
        }
    }

    /// The exception frame that ends a stream: `:exception-type` is the shape name in
    /// lowerCamel case, the member name of Bedrock's `ResponseStream` union.
    pub fn exception_frame(&self) -> Vec<u8> {
        let payload = Value::Object(self.body()).to_string();
        encode_exception_frame(&lower_camel(self.shape()), payload.as_bytes())
    }

    /// The HTTP answer. `x-amzn-RequestId` is Bedrock's when it answered, else the
    /// gateway's own request id.
    pub fn into_response_with(self, gateway_request_id: &str) -> Response {
        self.log();
        let request_id = match &self {
            BedrockApiError::Upstream(UpstreamError::Bedrock { detail, .. }) => {
                detail.request_id.as_deref().unwrap_or(gateway_request_id)
            }
            _ => gateway_request_id,
        };
        let mut response = (self.status(), Value::Object(self.body()).to_string()).into_response();
        response.extensions_mut().insert(crate::telemetry::ErrorType(self.error_type()));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::from_str(&format!("{}:{ERROR_TYPE_SUFFIX}", self.shape())) {
            headers.insert("x-amzn-errortype", value);
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", value);
        }
        if let BedrockApiError::Gateway(error) = &self {
            // The gateway's own error type, which Bedrock's shapes cannot carry.
            headers.insert("x-gateway-error-type", HeaderValue::from_static(error.error_type()));
            if let Some(secs) = error.retry_after_secs() {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
        }
        if let BedrockApiError::Upstream(error) = &self
            && (matches!(error, UpstreamError::Credentials(_))
                || refused_credentials(error).is_some())
        {
            headers.insert("x-gateway-error-type", HeaderValue::from_static(self.error_type()));
        }
        response
    }

    /// Logs the error once, with its details: at `warn` when Bedrock or the gateway is
    /// at fault, at `info` when Bedrock refused the caller's own request (a
    /// `ValidationException`), at `debug` when the gateway refused the caller.
    fn log(&self) {
        let shape = self.shape();
        match self {
            BedrockApiError::Gateway(error) => error.log(),
            BedrockApiError::Upstream(UpstreamError::Bedrock {
                kind: BedrockErrorKind::Validation,
                ..
            }) => tracing::info!(message = "bedrock-native request failed", shape, error = %self),
            BedrockApiError::Upstream(_) | BedrockApiError::StreamBroken(_) => {
                tracing::warn!(message = "bedrock-native request failed", shape, error = %self);
            }
            _ => tracing::debug!(message = "bedrock-native request refused", shape, error = %self),
        }
    }
}

/// The status of a Bedrock error: the one Bedrock sent when it is an error status, else
/// the shape's status in the service model (wire document §2.2).
fn bedrock_error_status(kind: BedrockErrorKind, detail: &BedrockErrorDetail) -> StatusCode {
    let sent = detail.http_status.and_then(|status| StatusCode::from_u16(status).ok());
    if let Some(status) = sent.filter(|status| status.is_client_error() || status.is_server_error())
    {
        return status;
    }
    match kind {
        BedrockErrorKind::AccessDenied => StatusCode::FORBIDDEN,
        BedrockErrorKind::ResourceNotFound => StatusCode::NOT_FOUND,
        BedrockErrorKind::Throttling | BedrockErrorKind::ModelNotReady => {
            StatusCode::TOO_MANY_REQUESTS
        }
        BedrockErrorKind::ModelTimeout => StatusCode::REQUEST_TIMEOUT,
        BedrockErrorKind::InternalServer | BedrockErrorKind::Unknown => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        BedrockErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        BedrockErrorKind::Validation | BedrockErrorKind::ServiceQuotaExceeded => {
            StatusCode::BAD_REQUEST
        }
        BedrockErrorKind::ModelError | BedrockErrorKind::ModelStreamError => {
            StatusCode::FAILED_DEPENDENCY
        }
    }
}

async fn handle(State(state): State<AppState>, caller: Caller, request: Request) -> Response {
    // Set by the request-id layer in `app.rs`; the fallback for answers Bedrock gave no id.
    let gateway_request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match run(&state, &caller, request).await {
        Ok(mut response) => {
            if !response.headers().contains_key("x-amzn-requestid")
                && let Ok(value) = HeaderValue::from_str(&gateway_request_id)
            {
                response.headers_mut().insert("x-amzn-requestid", value);
            }
            response
        }
        Err(error) => error.into_response_with(&gateway_request_id),
    }
}

async fn run(
    state: &AppState,
    caller: &Caller,
    request: Request,
) -> Result<Response, BedrockApiError> {
    let (raw_model_id, operation) =
        parse_path(request.uri().path()).ok_or(BedrockApiError::UnknownOperation)?;
    if request.method() != Method::POST {
        return Err(BedrockApiError::UnknownOperation);
    }
    let requested_model_id = percent_decode(raw_model_id).ok_or_else(|| {
        BedrockApiError::InvalidRequest(format!(
            "the model id {raw_model_id:?} in the path is not percent-encoded UTF-8"
        ))
    })?;
    let route = resolve_route(state, &requested_model_id)?;
    if let Operation::Converse(operation) = operation {
        let body = read_body(request).await?;
        return crate::routes::converse::run(state, caller, route, operation, &body).await;
    }
    let mut raw_request = raw_request(request.headers(), operation)?;
    raw_request.body = read_body(request).await?;
    // The reservation covers the body's own output limit, else the alias default.
    // Read from the body's text without building its value tree (which costs several
    // times the body).
    let max_output_tokens = translator::max_output_tokens_in_json(&raw_request.body)
        .or(route.defaults.max_tokens)
        .unwrap_or(0);
    let call = Call { route, caller: caller.key(), max_output_tokens, record: caller.record() };
    // The caller's body is in the first target's family: targets of another family
    // cannot take it and are skipped.
    let family_id = route.family.id();
    let encode =
        |target: &Target| Ok((target.family.id() == family_id).then(|| raw_request.clone()));
    match operation {
        Operation::Invoke | Operation::Converse(_) => invoke(state, call, &encode).await,
        Operation::InvokeWithResponseStream => invoke_stream(state, call, &encode).await,
    }
}

/// Splits `/model/{modelId}/{operation}` on the raw, still percent-encoded path.
fn parse_path(path: &str) -> Option<(&str, Operation)> {
    let rest = path.strip_prefix("/model/")?;
    let (raw_model_id, operation) = rest.split_once('/')?;
    let operation = match operation {
        "invoke" => Operation::Invoke,
        "invoke-with-response-stream" => Operation::InvokeWithResponseStream,
        "converse" => Operation::Converse(ConverseOperation::Converse),
        "converse-stream" => Operation::Converse(ConverseOperation::ConverseStream),
        "count-tokens" => Operation::Converse(ConverseOperation::CountTokens),
        _ => return None,
    };
    Some((raw_model_id, operation))
}

/// Decodes the `%XX` escapes of one raw path segment. `None` for a bad escape or a
/// result that is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let raw = segment.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut idx = 0;
    while idx < raw.len() {
        if raw[idx] == b'%' {
            let hex = segment.get(idx + 1..idx + 3)?;
            if !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return None;
            }
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            idx += 3;
        } else {
            decoded.push(raw[idx]);
            idx += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The alias a request calls: the alias it names, or the first alias (by name) whose
/// first target has that model id. An alias wins over a model id.
fn resolve_route<'a>(
    state: &'a AppState,
    requested: &str,
) -> Result<&'a ModelRoute, BedrockApiError> {
    if let Some(route) = state.models.get(requested) {
        return Ok(route);
    }
    state
        .models
        .values()
        .find(|route| route.model_id == requested)
        .ok_or_else(|| BedrockApiError::ModelNotConfigured(requested.to_owned()))
}

/// The request headers Bedrock models for the operation (wire document §1.4). A missing
/// `Content-Type`, or the Rust SDK's default `application/octet-stream`, becomes
/// `application/json` upstream: model bodies are JSON, and Bedrock is documented for
/// that type only.
fn raw_request(headers: &HeaderMap, operation: Operation) -> Result<RawRequest, BedrockApiError> {
    let text = |name: &str| -> Result<Option<String>, BedrockApiError> {
        headers
            .get(name)
            .map(|value| {
                value.to_str().map(str::to_owned).map_err(|_| {
                    BedrockApiError::InvalidRequest(format!("the {name} header is not ASCII text"))
                })
            })
            .transpose()
    };
    let accept_header = match operation {
        Operation::InvokeWithResponseStream => "x-amzn-bedrock-accept",
        Operation::Invoke | Operation::Converse(_) => "accept",
    };
    let content_type = text("content-type")?.filter(|value| {
        let media_type = value.split(';').next().unwrap_or_default().trim();
        !media_type.eq_ignore_ascii_case("application/octet-stream")
    });
    Ok(RawRequest {
        body: Bytes::new(),
        content_type,
        accept: text(accept_header)?,
        trace: text("x-amzn-bedrock-trace")?,
        guardrail_identifier: text("x-amzn-bedrock-guardrailidentifier")?,
        guardrail_version: text("x-amzn-bedrock-guardrailversion")?,
        performance_config_latency: text("x-amzn-bedrock-performanceconfig-latency")?,
        service_tier: text("x-amzn-bedrock-service-tier")?,
        request_metadata: text("x-amzn-bedrock-request-metadata")?,
    })
}

/// The caller's body. Over Bedrock's limit (413) or too slow (408), a
/// `ValidationException` with that status; cut off, a plain `ValidationException`.
async fn read_body(request: Request) -> Result<Bytes, BedrockApiError> {
    crate::intake::read_body(request.into_body()).await.map_err(|error| match error {
        crate::intake::BodyError::Broken(_) => BedrockApiError::InvalidRequest(error.to_string()),
        other => BedrockApiError::Gateway(other.into()),
    })
}

async fn invoke(
    state: &AppState,
    call: Call<'_>,
    encode: Encoder<'_>,
) -> Result<Response, BedrockApiError> {
    let served = state.pipeline.invoke(call, encode).await?;
    let output = served.output;
    let mut response = Response::new(Body::from(output.body));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&output.content_type)
        && !output.content_type.is_empty()
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    copy_response_headers(&output.headers, headers);
    Ok(tag_target(response, &served.target))
}

async fn invoke_stream(
    state: &AppState,
    call: Call<'_>,
    encode: Encoder<'_>,
) -> Result<Response, BedrockApiError> {
    // Errors before the first chunk still get their own HTTP status.
    // A stream still waiting for its first chunk when the drain runs out is refused.
    let served = tokio::select! {
        biased;
        () = state.drain.wait() => return Err(BedrockApiError::Gateway(ApiError::ShuttingDown)),
        served = state.pipeline.stream(call, encode) => served?,
    };
    let target = served.target;
    let output = served.output;
    let content_type = output.content_type.clone();
    let forwarded = output.headers.clone();
    let body = StreamBody::new(Box::pin(event_stream(output, state.drain.waiter())), false);
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    let chunk_type = match HeaderValue::from_str(&content_type) {
        Ok(value) if !content_type.is_empty() => value,
        _ => HeaderValue::from_static("application/json"),
    };
    headers.insert("x-amzn-bedrock-content-type", chunk_type);
    // Ask reverse proxies (nginx and friends) not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    copy_response_headers(&forwarded, headers);
    Ok(tag_target(response, &target))
}

/// Passes Bedrock's request id, usage and latency headers on as they were sent.
fn copy_response_headers(from: &ResponseHeaders, to: &mut HeaderMap) {
    for (name, value) in &from.values {
        if let Ok(value) = HeaderValue::from_str(value) {
            to.insert(*name, value);
        }
    }
}

/// The event-stream body: one `chunk` frame per Bedrock chunk, produced as each arrives
/// (frames already there leave together, a lone one at once: `sse.rs`), and after a failure one
/// exception frame, then the end: Bedrock's own exception as it came, a stream that
/// stalled or outlasted its timeout as a `modelTimeoutException`, the end of the
/// shutdown's drain as a `serviceUnavailableException`, any other failure as an
/// `internalServerException`.
fn event_stream(chunks: PipelineStream, drained: Waiter) -> impl Stream<Item = Vec<u8>> + Send {
    // Boxed: `unfold` moves its state in and out of a future per frame.
    futures_util::stream::unfold(Some((Box::new(chunks), drained)), |state| async move {
        let (mut chunks, mut drained) = state?;
        // A chunk already there is read first; the drain's end is checked at each (`text.rs`).
        let next = if drained.ended() {
            None
        } else {
            tokio::select! {
                biased;
                next = chunks.next_chunk() => Some(next),
                () = &mut drained => None,
            }
        };
        let next = match next {
            Some(next) => next.map(|next| {
                next.map_err(|error| match error {
                    sent @ UpstreamError::Bedrock { .. } => BedrockApiError::Upstream(sent),
                    timeout @ (UpstreamError::Timeout | UpstreamError::Stalled(_)) => {
                        BedrockApiError::Upstream(timeout)
                    }
                    broken => BedrockApiError::StreamBroken(broken),
                })
            }),
            None => {
                let error = ApiError::ShuttingDown;
                chunks.failed(&error);
                Some(Err(BedrockApiError::Gateway(error)))
            }
        };
        match next? {
            Ok(model_json) => Some((chunk_frame(&model_json), Some((chunks, drained)))),
            Err(error) => {
                error.log();
                Some((error.exception_frame(), None))
            }
        }
    })
}

/// A `chunk` frame for one model-native JSON object. Bedrock pads chunk payloads with a
/// `p` field so that frame sizes do not give away the length of the text inside; the
/// SDK drops that padding, so the gateway pads again, each payload to a multiple of
/// [`CHUNK_PAYLOAD_QUANTUM`] bytes.
fn chunk_frame(model_json: &[u8]) -> Vec<u8> {
    let base64_len = model_json.len().div_ceil(3) * 4;
    let unpadded_len = base64_len + r#"{"bytes":"","p":""}"#.len();
    let padding_len =
        (CHUNK_PAYLOAD_QUANTUM - unpadded_len % CHUNK_PAYLOAD_QUANTUM) % CHUNK_PAYLOAD_QUANTUM;
    encode_chunk_frame(model_json, Some(padding(padding_len)))
}

/// `ThrottlingException` → `throttlingException`.
fn lower_camel(shape: &str) -> String {
    let mut chars = shape.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_before_decoding() {
        let path = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-v2/invoke-with-response-stream";
        let (raw, operation) = parse_path(path).unwrap();
        assert_eq!(operation, Operation::InvokeWithResponseStream);
        assert_eq!(
            percent_decode(raw).unwrap(),
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"
        );
        assert_eq!(parse_path("/model/titan/invoke"), Some(("titan", Operation::Invoke)));
        let converse = Operation::Converse(ConverseOperation::ConverseStream);
        assert_eq!(parse_path("/model/x/converse-stream"), Some(("x", converse)));
        for path in ["/model/x/converse/", "/model/x/invoke/", "/model/x", "/v1/model/x/invoke"] {
            assert_eq!(parse_path(path), None, "{path}");
        }
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert_eq!(percent_decode("anthropic.claude-v2%3a1").unwrap(), "anthropic.claude-v2:1");
        for bad in ["%", "%3", "%zz", "%+1", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_bedrock_error_keeps_its_shape_and_status() {
        use BedrockErrorKind as K;
        let cases = [
            (K::AccessDenied, "AccessDeniedException", 403),
            (K::ResourceNotFound, "ResourceNotFoundException", 404),
            (K::Throttling, "ThrottlingException", 429),
            (K::ModelTimeout, "ModelTimeoutException", 408),
            (K::InternalServer, "InternalServerException", 500),
            (K::ServiceUnavailable, "ServiceUnavailableException", 503),
            (K::Validation, "ValidationException", 400),
            (K::ServiceQuotaExceeded, "ServiceQuotaExceededException", 400),
            (K::ModelNotReady, "ModelNotReadyException", 429),
            (K::ModelError, "ModelErrorException", 424),
            (K::ModelStreamError, "ModelStreamErrorException", 424),
        ];
        for (kind, shape, status) in cases {
            let error = bedrock_error(kind, BedrockErrorDetail::default());
            assert_eq!(error.shape(), shape);
            assert_eq!(error.status().as_u16(), status, "{shape}");
        }
        let detail = BedrockErrorDetail {
            code: Some("SomethingNewException".into()),
            http_status: Some(409),
            ..BedrockErrorDetail::default()
        };
        let error = bedrock_error(K::Unknown, detail);
        assert_eq!((error.shape(), error.status().as_u16()), ("SomethingNewException", 409));
        let error = bedrock_error(K::Unknown, BedrockErrorDetail::default());
        assert_eq!((error.shape(), error.status().as_u16()), (UNNAMED_ERROR_SHAPE, 500));
    }

    #[test]
    fn aws_refusing_the_gateways_signature_is_a_502_not_the_callers_403() {
        for code in crate::error::CREDENTIAL_REFUSALS {
            let detail = BedrockErrorDetail {
                code: Some(code.into()),
                http_status: Some(403),
                request_id: Some("bedrock-request".into()),
                ..BedrockErrorDetail::default()
            };
            let error = bedrock_error(BedrockErrorKind::Unknown, detail);
            assert_eq!((error.shape(), error.status().as_u16()), ("InternalServerException", 502));
            assert_eq!(error.error_type(), "upstream_misconfigured");
            assert!(error.message().contains(code), "{}", error.message());
            assert!(!error.message().contains("signature you provided"), "{}", error.message());
            let response = error.into_response_with("gateway-request");
            assert_eq!(response.headers()["x-gateway-error-type"], "upstream_misconfigured");
            assert_eq!(response.headers()["x-amzn-requestid"], "bedrock-request");
        }
    }

    #[test]
    fn gateway_failures_get_the_nearest_shape_and_no_details() {
        let cases = [
            (UpstreamError::Timeout, "ModelTimeoutException", 408),
            (UpstreamError::Unreachable("10.0.0.7:443".into()), "ServiceUnavailableException", 503),
            (UpstreamError::Malformed("crc 0xdead".into()), "InternalServerException", 500),
            (UpstreamError::Sdk("credentials 10.0.0.7".into()), "InternalServerException", 500),
            (UpstreamError::Credentials("10.0.0.7".into()), "InternalServerException", 502),
        ];
        for (upstream, shape, status) in cases {
            let error = BedrockApiError::Upstream(upstream);
            assert_eq!((error.shape(), error.status().as_u16()), (shape, status));
            let message = error.message();
            assert!(!message.contains("10.0.0.7") && !message.contains("0xdead"), "{message}");
        }
        let error = BedrockApiError::StreamBroken(UpstreamError::Unreachable("10.0.0.7".into()));
        assert_eq!((error.shape(), error.status().as_u16()), ("InternalServerException", 500));
        assert!(!error.message().contains("10.0.0.7"));
        assert!(
            String::from_utf8_lossy(&error.exception_frame()).contains("internalServerException")
        );
    }

    #[test]
    fn model_error_members_pass_on_with_arns_masked() {
        let detail = BedrockErrorDetail {
            original_status_code: Some(500),
            resource_name: Some(
                "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/x".into(),
            ),
            ..BedrockErrorDetail::default()
        };
        let body = bedrock_error(BedrockErrorKind::ModelError, detail).body();
        assert_eq!(body["originalStatusCode"], 500);
        assert_eq!(body["resourceName"], "arn:aws:bedrock:us-east-1:<account>:provisioned-model/x");
        assert_eq!(body["message"], "it failed");
    }

    #[test]
    fn exception_frames_name_the_union_member() {
        let frame = bedrock_error(BedrockErrorKind::Throttling, BedrockErrorDetail::default())
            .exception_frame();
        let text = String::from_utf8_lossy(&frame);
        assert!(text.contains(":exception-type") && text.contains("throttlingException"));
        assert!(text.contains(r#"{"message":"it failed"}"#), "{text}");
        assert_eq!(lower_camel("InternalServerException"), "internalServerException");
    }

    #[test]
    fn chunk_payloads_are_padded_to_the_quantum() {
        for n_bytes in 0..100 {
            let frame = chunk_frame(&vec![b'x'; n_bytes]);
            let total_len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            let headers_len = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize;
            let payload_len = total_len - headers_len - 16;
            assert_eq!(payload_len % CHUNK_PAYLOAD_QUANTUM, 0, "{n_bytes} bytes");
        }
    }

    fn bedrock_error(kind: BedrockErrorKind, detail: BedrockErrorDetail) -> BedrockApiError {
        BedrockApiError::Upstream(UpstreamError::Bedrock {
            kind,
            message: "it failed".into(),
            detail: Box::new(detail),
        })
    }
}
