//! The two Bedrock operations, InvokeModel and InvokeModelWithResponseStream: routing on the
//! raw path, the checks Bedrock makes in order (model id, headers, body), latency and faults,
//! and the success headers of wire document §1.5.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use bytes::Bytes;

use crate::behavior::{Fault, whole_millis};
use crate::error::{BedrockError, REQUEST_ID_HEADER};
use crate::families::family_for;
use crate::generate::generate;
use crate::model_id::{base_model_id, check_model_id_shape, percent_decode};
use crate::response_stream::{StreamPlan, event_stream_body};
use crate::schema::parse_json_object;
use crate::simulator::{RequestBehavior, Simulator};

/// The largest request body Bedrock accepts.
pub(crate) const MAX_REQUEST_BODY_BYTES: usize = 25_000_000;

/// The answer to a model id that is well-formed but names no simulated model.
pub(crate) const INVALID_MODEL_MESSAGE: &str = "The provided model identifier is invalid.";

/// Which of the two operations a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Invoke,
    InvokeWithResponseStream,
}

impl Operation {
    /// The header that carries the wanted answer type: `Accept` for InvokeModel,
    /// `X-Amzn-Bedrock-Accept` for the stream (wire document §1.4).
    fn accept_header(self) -> &'static str {
        match self {
            Operation::Invoke => "accept",
            Operation::InvokeWithResponseStream => "x-amzn-bedrock-accept",
        }
    }
}

/// The fallback handler: every request that is not for the control API lands here.
pub(crate) async fn handle(State(simulator): State<Simulator>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let Some((raw_model_id, operation)) = parse_path(parts.uri.path()) else {
        return BedrockError::unknown_operation().into_response(&request_id);
    };
    if parts.method != Method::POST {
        return BedrockError::unknown_operation().into_response(&request_id);
    }
    simulator.count_request();

    let result =
        run_operation(&simulator, operation, raw_model_id, &parts.headers, body, started).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(
                message = "request rejected",
                shape = error.shape,
                detail = error.message(),
                %request_id,
            );
            return error.into_response(&request_id);
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Splits `/model/{modelId}/{operation}` on the raw (still percent-encoded) path.
pub(crate) fn parse_path(path: &str) -> Option<(&str, Operation)> {
    let rest = path.strip_prefix("/model/")?;
    let (raw_model_id, operation) = rest.split_once('/')?;
    let operation = match operation {
        "invoke" => Operation::Invoke,
        "invoke-with-response-stream" => Operation::InvokeWithResponseStream,
        _ => return None,
    };
    Some((raw_model_id, operation))
}

async fn run_operation(
    simulator: &Simulator,
    operation: Operation,
    raw_model_id: &str,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Response, BedrockError> {
    // The decoded id, or the raw segment when it does not decode, so the shape check fails
    // on what the client sent.
    let model_id = percent_decode(raw_model_id).unwrap_or_else(|| raw_model_id.to_owned());
    check_model_id_shape(&model_id)?;
    let base_model_id =
        base_model_id(&model_id).ok_or_else(|| BedrockError::validation(INVALID_MODEL_MESSAGE))?;
    let family =
        family_for(base_model_id).ok_or_else(|| BedrockError::validation(INVALID_MODEL_MESSAGE))?;
    check_content_type(headers)?;
    check_accept(headers, operation.accept_header())?;

    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await.map_err(|_| {
        BedrockError::validation(format!(
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member \
             must have length less than or equal to {MAX_REQUEST_BODY_BYTES}"
        ))
    })?;
    let request = family.parse_request(base_model_id, &parse_json_object(&body)?)?;
    let completion = generate(&request);
    tracing::debug!(
        message = "generated",
        %model_id,
        family = family.id(),
        ?operation,
        n_output_tokens = completion.n_output_tokens(),
    );

    let behavior = simulator.take_behavior(base_model_id);
    // A zero sleep still waits for the next timer tick (about 1 ms): skip it.
    if !behavior.first_byte_latency.is_zero() {
        tokio::time::sleep(behavior.first_byte_latency).await;
    }
    match behavior.fault {
        Some(Fault::Error(kind)) => return Err(BedrockError::from_kind(kind, base_model_id)),
        Some(Fault::ErrorAfterChunks(kind, _)) if operation == Operation::Invoke => {
            return Err(BedrockError::from_kind(kind, base_model_id));
        }
        _ => {}
    }

    let response = match operation {
        Operation::Invoke => {
            let n_output_tokens = completion.n_output_tokens();
            let token_time = behavior.token_latency.checked_mul(n_output_tokens);
            let token_time = token_time.unwrap_or(Duration::MAX);
            if !token_time.is_zero() {
                tokio::time::sleep(token_time).await;
            }
            let body = family.response_body(&completion);
            let latency_ms = whole_millis(started.elapsed());
            let mut response = Response::new(invoke_body(body, &behavior));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("x-amzn-bedrock-invocation-latency", latency_ms.into());
            headers.insert("x-amzn-bedrock-input-token-count", completion.n_input_tokens.into());
            headers.insert("x-amzn-bedrock-output-token-count", n_output_tokens.into());
            response
        }
        Operation::InvokeWithResponseStream => {
            let plan = StreamPlan {
                family,
                completion,
                fault: behavior.fault,
                token_latency: behavior.token_latency,
                started,
            };
            let mut response = Response::new(Body::from_stream(event_stream_body(plan)));
            let headers = response.headers_mut();
            let event_stream = HeaderValue::from_static("application/vnd.amazon.eventstream");
            headers.insert(header::CONTENT_TYPE, event_stream);
            let json = HeaderValue::from_static("application/json");
            headers.insert("x-amzn-bedrock-content-type", json);
            response
        }
    };
    Ok(response)
}

/// The InvokeModel body, with the faults that act on it.
fn invoke_body(body: Vec<u8>, behavior: &RequestBehavior) -> Body {
    match behavior.fault {
        Some(Fault::TruncateAfterChunks(_)) => {
            let half = body.len() / 2;
            Body::from(Bytes::from(body).slice(..half))
        }
        Some(Fault::AbortAfterChunks(_)) => {
            let error = std::io::Error::other("simulated connection abort");
            Body::from_stream(futures_util::stream::once(async move { Err::<Bytes, _>(error) }))
        }
        _ => Body::from(body),
    }
}

/// Bedrock takes model bodies as JSON; the Rust SDK sends `application/octet-stream` when no
/// content type is set, and botocore sends none, so those two are accepted as well.
fn check_content_type(headers: &HeaderMap) -> Result<(), BedrockError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = media_type(value);
    if media_type == "application/json" || media_type == "application/octet-stream" {
        return Ok(());
    }
    Err(BedrockError::validation(
        "The provided Content-Type is invalid or not supported for this model",
    ))
}

/// Only JSON answers are simulated: the accept header may be absent, `application/json` or
/// `*/*`.
fn check_accept(headers: &HeaderMap, header_name: &str) -> Result<(), BedrockError> {
    let Some(value) = headers.get(header_name) else {
        return Ok(());
    };
    let media_type = media_type(value);
    if media_type == "application/json" || media_type == "*/*" {
        return Ok(());
    }
    Err(BedrockError::validation(
        "The provided Accept Type is invalid or not supported for this model",
    ))
}

/// The media type of a content-type-like header, lower-cased, without parameters.
fn media_type(value: &HeaderValue) -> String {
    let text = value.to_str().unwrap_or_default();
    text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/model/anthropic.claude-v2%3A1/invoke"),
            Some(("anthropic.claude-v2%3A1", Operation::Invoke))
        );
        assert_eq!(
            parse_path(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-v2/invoke-with-response-stream"
            ),
            Some((
                "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-v2",
                Operation::InvokeWithResponseStream
            ))
        );
        for path in ["/model/x/converse", "/model/x/invoke/", "/model/x", "/", "/models/x/invoke"] {
            assert_eq!(parse_path(path), None, "{path}");
        }
        assert_eq!(parse_path("/model//invoke"), Some(("", Operation::Invoke)));
    }

    #[test]
    fn header_checks() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_ok());
        assert!(check_accept(&headers, "accept").is_ok());
        for good in
            ["application/json", "application/octet-stream", "application/json; charset=utf-8"]
        {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(good));
            assert!(check_content_type(&headers).is_ok(), "{good}");
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(check_content_type(&headers).is_err());
        for good in ["application/json", "*/*"] {
            headers.insert("x-amzn-bedrock-accept", HeaderValue::from_static(good));
            assert!(check_accept(&headers, "x-amzn-bedrock-accept").is_ok(), "{good}");
        }
        headers.insert("x-amzn-bedrock-accept", HeaderValue::from_static("image/png"));
        assert!(check_accept(&headers, "x-amzn-bedrock-accept").is_err());
    }
}
