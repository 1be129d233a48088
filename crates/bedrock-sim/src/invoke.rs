//! The two Bedrock operations, InvokeModel and InvokeModelWithResponseStream: routing on the
//! raw path (CountTokens, routed here too, is served by `count_tokens.rs`), the checks Bedrock makes in order (model id, headers, body), the token quota
//! (reserved here, settled when the answer is produced), latency and faults, and the success
//! headers of wire document §1.5.
//!
//! Embedding and image models take a path of their own ([`run_media_operation`]): they answer
//! InvokeModel only, with one JSON body (or, for SDXL and `Accept: image/png`, the raw PNG).

use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use bytes::Bytes;

use crate::auth::SignedRequest;
use crate::behavior::{Fault, whole_millis};
use crate::embeddings::{EmbeddingFamily, embedding_family_for};
use crate::error::{BedrockError, REQUEST_ID_HEADER};
use crate::families::family_for;
use crate::generate::generate;
use crate::guardrail::intervention;
use crate::hostile;
use crate::images::{ImageFamily, generate_images, image_family_for};
use crate::model_id::{base_model_id, check_model_id_shape, percent_decode};
use crate::prompt_cache::CacheRequest;
use crate::response_stream::{StreamPlan, event_stream_body};
use crate::schema::parse_json_object;
use crate::simulator::{RequestBehavior, Simulator};

/// The largest request body Bedrock accepts.
pub(crate) const MAX_REQUEST_BODY_BYTES: usize = 25_000_000;

/// The answer to a model id that is well-formed but names no simulated model.
pub(crate) const INVALID_MODEL_MESSAGE: &str = "The provided model identifier is invalid.";

/// The answer to InvokeModelWithResponseStream on a model that does not stream (seen from real
/// Bedrock for models without streaming).
pub(crate) const STREAMING_UNSUPPORTED_MESSAGE: &str = "The model is unsupported for streaming.";

/// The answer to an `Accept` (or `X-Amzn-Bedrock-Accept`) the model cannot produce.
pub(crate) const INVALID_ACCEPT_MESSAGE: &str =
    "The provided Accept Type is invalid or not supported for this model";

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
    // `None`: CountTokens (`count_tokens.rs`).
    let (raw_model_id, operation) = match parse_path(parts.uri.path()) {
        Some((raw_model_id, operation)) => (raw_model_id, Some(operation)),
        None => match crate::count_tokens::parse_path(parts.uri.path()) {
            Some(raw_model_id) => (raw_model_id, None),
            None => return BedrockError::unknown_operation().into_response(&request_id),
        },
    };
    if parts.method != Method::POST {
        return BedrockError::unknown_operation().into_response(&request_id);
    }
    simulator.count_request();
    let in_flight = simulator.enter();
    // The whole body first: the signature covers it, and Bedrock authenticates a request
    // before it looks at anything else in it.
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(error) => return error.into_response(&request_id),
    };
    let signed = SignedRequest {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    if let Err(refusal) = simulator.auth().check(signed, SystemTime::now()) {
        tracing::info!(
            message = "request refused: authentication",
            shape = refusal.error.shape,
            reason = %refusal.reason,
            %request_id,
        );
        return refusal.error.into_response(&request_id);
    }
    if let Err(error) = check_request_options(&parts.headers) {
        return error.into_response(&request_id);
    }

    let result = match operation {
        Some(operation) => {
            run_operation(&simulator, operation, raw_model_id, &parts.headers, body, started).await
        }
        None => crate::count_tokens::run(&simulator, raw_model_id, &parts.headers, &body).await,
    };
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
    // The tier and latency that served the request are echoed, as modelled response
    // headers of both operations (wire document §1.5).
    for name in [SERVICE_TIER_HEADER, LATENCY_HEADER] {
        if let Some(value) = parts.headers.get(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    // The invocation is in flight until its body is sent (or its client goes away).
    response.map(|body| Body::new(in_flight.around(body)))
}

const SERVICE_TIER_HEADER: &str = "x-amzn-bedrock-service-tier";

/// The context window, in tokens (the simulator counts words as tokens), of the models
/// whose window the AWS model cards state; `None`: not checked.
pub(crate) fn context_window(base_model_id: &str) -> Option<u32> {
    let windows: &[(&str, u32)] = &[
        ("anthropic.claude-instant-v1", 100_000),
        ("anthropic.claude", 200_000),
        ("amazon.titan-text-lite", 4_096),
        ("amazon.titan-text-express", 8_192),
        ("amazon.titan-text-premier", 32_000),
        ("amazon.nova-micro", 128_000),
        ("amazon.nova-lite", 300_000),
        ("amazon.nova-pro", 300_000),
        ("meta.llama3-8b", 8_192),
        ("meta.llama3-70b", 8_192),
        ("mistral.mistral-7b", 32_000),
    ];
    windows.iter().find(|(prefix, _)| base_model_id.starts_with(prefix)).map(|(_, n)| *n)
}
const LATENCY_HEADER: &str = "x-amzn-bedrock-performanceconfig-latency";
const METADATA_HEADER: &str = "x-amzn-bedrock-request-metadata";

/// Bedrock's checks of the per-request option headers (wire document §1.4): the
/// service tier and latency enums, and request metadata as a JSON object of at most
/// 8500 characters.
fn check_request_options(headers: &HeaderMap) -> Result<(), BedrockError> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if let Some(tier) = text(SERVICE_TIER_HEADER)
        && !["priority", "default", "flex", "reserved"].contains(&tier)
    {
        return Err(BedrockError::validation(format!(
            "1 validation error detected: Value '{tier}' at 'serviceTier' failed to satisfy \
             constraint: Member must satisfy enum value set: [priority, default, flex, reserved]"
        )));
    }
    if let Some(latency) = text(LATENCY_HEADER)
        && !["standard", "optimized"].contains(&latency)
    {
        return Err(BedrockError::validation(format!(
            "1 validation error detected: Value '{latency}' at 'performanceConfigLatency' \
             failed to satisfy constraint: Member must satisfy enum value set: [standard, optimized]"
        )));
    }
    if let Some(metadata) = text(METADATA_HEADER) {
        let object = serde_json::from_str::<serde_json::Value>(metadata)
            .ok()
            .is_some_and(|value| value.is_object());
        if !object || metadata.chars().count() > 8500 {
            return Err(BedrockError::validation(
                "The request metadata must be a JSON object of at most 8500 characters.",
            ));
        }
    }
    Ok(())
}

/// A streamed answer's response: the event-stream body with its content types.
fn stream_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    let event_stream = HeaderValue::from_static("application/vnd.amazon.eventstream");
    headers.insert(header::CONTENT_TYPE, event_stream);
    let json = HeaderValue::from_static("application/json");
    headers.insert("x-amzn-bedrock-content-type", json);
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
    body: Bytes,
    started: Instant,
) -> Result<Response, BedrockError> {
    // The decoded id, or the raw segment when it does not decode, so the shape check fails
    // on what the client sent.
    let model_id = percent_decode(raw_model_id).unwrap_or_else(|| raw_model_id.to_owned());
    check_model_id_shape(&model_id)?;
    let base_model_id =
        base_model_id(&model_id).ok_or_else(|| BedrockError::validation(INVALID_MODEL_MESSAGE))?;
    if let Some(media_family) = MediaFamily::for_base_model_id(base_model_id) {
        let request = MediaRequest { operation, media_family, base_model_id, headers, body };
        return run_media_operation(simulator, request, started).await;
    }
    let family =
        family_for(base_model_id).ok_or_else(|| BedrockError::validation(INVALID_MODEL_MESSAGE))?;
    if family.needs_inference_profile(base_model_id)
        && !names_inference_profile(&model_id, base_model_id)
    {
        return Err(BedrockError::validation(format!(
            "Invocation of model ID {base_model_id} with on-demand throughput isn’t supported. \
             Retry your request with the ID or ARN of an inference profile that contains this \
             model."
        )));
    }
    // Families whose answers name the model answer through the model's own value.
    let family = family.model_family(base_model_id).unwrap_or(family);
    check_content_type(headers)?;
    if operation == Operation::InvokeWithResponseStream && !family.streams() {
        return Err(BedrockError::validation(STREAMING_UNSUPPORTED_MESSAGE));
    }
    check_accept(headers, operation.accept_header())?;

    let body = parse_json_object(&body)?;
    let request = family.parse_request(base_model_id, &body)?;
    let cache_request = if family.reports_cache_tokens() {
        family.cache_request(base_model_id, &body)?
    } else {
        CacheRequest::default()
    };
    let completion = generate(&request);
    if let Some(window) = context_window(base_model_id)
        && completion.n_input_tokens > window
    {
        // Bedrock's own refusal of a prompt over the model's context window, as callers
        // report it (aws-samples/assessment-generator#2, anthropics/claude-code#760): the
        // same text as the embedding models' over-long input.
        return Err(BedrockError::validation(crate::embeddings::INPUT_TOO_LONG_MESSAGE));
    }
    // A guardrail that blocks the input answers its own message instead (`guardrail.rs`).
    let blocked = intervention(headers, &request.prompt);
    let mut completion = match &blocked {
        Some(blocked) => blocked.completion(&completion),
        None => completion,
    };
    tracing::debug!(
        message = "generated",
        %model_id,
        family = family.id(),
        ?operation,
        n_output_tokens = completion.n_output_tokens(),
    );

    // The quota comes before latency and faults: a throttled request uses no `fault_times`.
    let mut reservation =
        simulator.reserve_tokens(base_model_id, completion.n_input_tokens, request.max_tokens)?;
    let behavior = simulator.take_behavior(base_model_id);
    // A zero sleep still waits for the next timer tick (about 1 ms): skip it.
    if !behavior.first_byte_latency.is_zero() {
        tokio::time::sleep(behavior.first_byte_latency).await;
    }
    match behavior.fault {
        Some(Fault::Error(kind)) => {
            reservation.cancel();
            return Err(BedrockError::from_kind(kind, base_model_id));
        }
        Some(Fault::ErrorAfterChunks(kind, _)) if operation == Operation::Invoke => {
            reservation.cancel();
            return Err(BedrockError::from_kind(kind, base_model_id));
        }
        Some(ref fault) => {
            if let Some(answer) = hostile::error_answer(fault, base_model_id) {
                reservation.cancel();
                return answer;
            }
        }
        None => {}
    }
    // The model reads the prompt: the prompt cache is read and written (not for an input the
    // guardrail blocked), and the input tokens are those neither read nor written.
    if blocked.is_none() {
        let now = tokio::time::Instant::now();
        let cache = simulator.prompt_cache().apply(base_model_id, &cache_request, now);
        let n_cached = cache.read.saturating_add(cache.write);
        completion.n_input_tokens = completion.n_input_tokens.saturating_sub(n_cached);
        completion.cache = cache;
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
            let body = match &blocked {
                Some(blocked) => blocked.body(&body),
                None => body,
            };
            // The answer is produced: settle at what it really used.
            reservation.set_output_tokens(n_output_tokens);
            reservation.settle();
            let latency_ms = whole_millis(started.elapsed());
            let other_family_answer = || hostile::other_family(family).response_body(&completion);
            let mut response = Response::new(invoke_body(body, &behavior, other_family_answer));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("x-amzn-bedrock-invocation-latency", latency_ms.into());
            headers.insert("x-amzn-bedrock-input-token-count", completion.n_input_tokens.into());
            headers.insert("x-amzn-bedrock-output-token-count", n_output_tokens.into());
            if family.reports_cache_tokens() {
                // Both counts, 0 when nothing was cached, as Bedrock sends them then.
                let cache = completion.cache;
                headers.insert("x-amzn-bedrock-cache-read-input-token-count", cache.read.into());
                headers.insert("x-amzn-bedrock-cache-write-input-token-count", cache.write.into());
            }
            response
        }
        Operation::InvokeWithResponseStream if let Some(blocked) = &blocked => {
            // The blocked stream is sent whole: there is no model output to pace.
            let body = blocked.stream_body(family, &completion);
            reservation.set_output_tokens(completion.n_output_tokens());
            reservation.settle();
            stream_response(Body::from(body))
        }
        Operation::InvokeWithResponseStream => {
            let plan = StreamPlan {
                family,
                completion,
                fault: behavior.fault,
                token_latency: behavior.token_latency,
                hold: simulator.hold(behavior.hold_after_chunks),
                started,
                reservation,
            };
            stream_response(Body::from_stream(event_stream_body(plan)))
        }
    };
    Ok(response)
}

/// The embedding and image families: the models that answer one body and never stream.
#[derive(Clone, Copy)]
enum MediaFamily {
    Embedding(&'static dyn EmbeddingFamily),
    Image(&'static dyn ImageFamily),
}

impl MediaFamily {
    fn for_base_model_id(base_model_id: &str) -> Option<MediaFamily> {
        embedding_family_for(base_model_id)
            .map(MediaFamily::Embedding)
            .or_else(|| image_family_for(base_model_id).map(MediaFamily::Image))
    }

    fn id(self) -> &'static str {
        match self {
            MediaFamily::Embedding(family) => family.id(),
            MediaFamily::Image(family) => family.id(),
        }
    }

    /// Whether `Accept: image/png` is answered with raw PNG bytes.
    fn answers_raw_png(self) -> bool {
        match self {
            MediaFamily::Embedding(_) => false,
            MediaFamily::Image(family) => family.answers_raw_png(),
        }
    }
}

/// One request to an embedding or image model.
struct MediaRequest<'a> {
    operation: Operation,
    media_family: MediaFamily,
    base_model_id: &'a str,
    headers: &'a HeaderMap,
    body: Bytes,
}

/// What the answer body is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerFormat {
    Json,
    RawPng,
}

/// An embedding or image request, after the model id checks: content type, no streaming,
/// accept, body, then the quota, latency and faults as for InvokeModel. Embeddings report the
/// input words and 0 output tokens; images report the prompt words and 0 output tokens.
async fn run_media_operation(
    simulator: &Simulator,
    request: MediaRequest<'_>,
    started: Instant,
) -> Result<Response, BedrockError> {
    let MediaRequest { operation, media_family, base_model_id, headers, body } = request;
    check_content_type(headers)?;
    if operation == Operation::InvokeWithResponseStream {
        return Err(BedrockError::validation(STREAMING_UNSUPPORTED_MESSAGE));
    }
    let answer_format = media_answer_format(headers, media_family.answers_raw_png())?;
    let body = parse_json_object(&body)?;

    let (content_type, answer, n_input_tokens) = match media_family {
        MediaFamily::Embedding(family) => {
            let request = family.parse_request(base_model_id, &body)?;
            let answer = family.response_body(base_model_id, &request);
            ("application/json", answer, request.n_input_tokens)
        }
        MediaFamily::Image(family) => {
            let request = family.parse_request(base_model_id, &body)?;
            let n_input_tokens = crate::generate::count_input_tokens(&request.prompt);
            let images = generate_images(&request);
            match (answer_format, images.first()) {
                (AnswerFormat::RawPng, Some(image)) => {
                    ("image/png", image.png.clone(), n_input_tokens)
                }
                _ => (
                    "application/json",
                    family.response_body(base_model_id, &images),
                    n_input_tokens,
                ),
            }
        }
    };

    tracing::debug!(
        message = "answered",
        %base_model_id,
        family = media_family.id(),
        content_type,
        n_bytes = answer.len(),
    );

    // Nothing is generated after the input: the reservation is the input tokens alone.
    let mut reservation = simulator.reserve_tokens(base_model_id, n_input_tokens, 0)?;
    let behavior = simulator.take_behavior(base_model_id);
    tokio::time::sleep(behavior.first_byte_latency).await;
    if let Some(Fault::Error(kind) | Fault::ErrorAfterChunks(kind, _)) = &behavior.fault {
        reservation.cancel();
        return Err(BedrockError::from_kind(*kind, base_model_id));
    }
    if let Some(answer) =
        behavior.fault.as_ref().and_then(|fault| hostile::error_answer(fault, base_model_id))
    {
        reservation.cancel();
        return answer;
    }
    reservation.settle();
    let latency_ms = whole_millis(started.elapsed());
    let other_family_answer = hostile::media_other_family_answer;
    let mut response = Response::new(invoke_body(answer, &behavior, other_family_answer));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-amzn-bedrock-invocation-latency", latency_ms.into());
    headers.insert("x-amzn-bedrock-input-token-count", n_input_tokens.into());
    headers.insert("x-amzn-bedrock-output-token-count", 0.into());
    Ok(response)
}

/// The answer format an embedding or image request asks for with `Accept`: JSON when absent,
/// `application/json` or `*/*`; the raw PNG for `image/png` when the family offers it.
fn media_answer_format(
    headers: &HeaderMap,
    raw_png_allowed: bool,
) -> Result<AnswerFormat, BedrockError> {
    let Some(value) = headers.get(header::ACCEPT) else {
        return Ok(AnswerFormat::Json);
    };
    match media_type(value).as_str() {
        "application/json" | "*/*" => Ok(AnswerFormat::Json),
        "image/png" if raw_png_allowed => Ok(AnswerFormat::RawPng),
        _ => Err(BedrockError::validation(INVALID_ACCEPT_MESSAGE)),
    }
}

/// Reads the request body, refusing one over [`MAX_REQUEST_BODY_BYTES`].
async fn read_body(body: Body) -> Result<Bytes, BedrockError> {
    axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await.map_err(|_| {
        BedrockError::validation(format!(
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member \
             must have length less than or equal to {MAX_REQUEST_BODY_BYTES}"
        ))
    })
}

/// The InvokeModel body, with the faults that act on it; `other_family_answer` is another
/// family's answer, for a fault that answers in another family's shape.
fn invoke_body(
    body: Vec<u8>,
    behavior: &RequestBehavior,
    other_family_answer: impl FnOnce() -> Vec<u8>,
) -> Body {
    match &behavior.fault {
        Some(Fault::TruncateAfterChunks(_)) => {
            let half = body.len() / 2;
            Body::from(Bytes::from(body).slice(..half))
        }
        Some(Fault::AbortAfterChunks(_)) => {
            // The headers leave first, as from a connection that drops after them.
            Body::from_stream(futures_util::stream::once(async move {
                tokio::time::sleep(hostile::RESET_FLUSH_DELAY).await;
                Err::<Bytes, _>(std::io::Error::other("simulated connection abort"))
            }))
        }
        Some(
            fault @ (Fault::BadBodyAfterChunks(..)
            | Fault::ResetMidBodyAfterChunks(_)
            | Fault::Drip(_)
            | Fault::HugeFrameAfterChunks(_)
            | Fault::Endless),
        ) => hostile::invoke_body(body, fault, other_family_answer),
        _ => Body::from(body),
    }
}

/// Bedrock takes model bodies as JSON; the Rust SDK sends `application/octet-stream` when no
/// content type is set, and botocore sends none, so those two are accepted as well.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), BedrockError> {
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
    Err(BedrockError::validation(INVALID_ACCEPT_MESSAGE))
}

/// The media type of a content-type-like header, lower-cased, without parameters.
fn media_type(value: &HeaderValue) -> String {
    let text = value.to_str().unwrap_or_default();
    text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Whether `model_id` names an inference profile rather than the model itself: a cross-region
/// profile id (`us.anthropic...`, whose geography prefix [`base_model_id`] dropped) or an
/// `inference-profile/` ARN.
pub(crate) fn names_inference_profile(model_id: &str, base_model_id: &str) -> bool {
    let before_base = model_id.strip_suffix(base_model_id).unwrap_or_default();
    before_base.ends_with('.') || before_base.contains(":inference-profile/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_profile_ids() {
        let base = "deepseek.r1-v1:0";
        for model_id in [
            "us.deepseek.r1-v1:0",
            "global.deepseek.r1-v1:0",
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.deepseek.r1-v1:0",
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/deepseek.r1-v1:0",
        ] {
            assert!(names_inference_profile(model_id, base), "{model_id}");
        }
        for model_id in
            ["deepseek.r1-v1:0", "arn:aws:bedrock:us-west-2::foundation-model/deepseek.r1-v1:0"]
        {
            assert!(!names_inference_profile(model_id, base), "{model_id}");
        }
    }

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

    #[test]
    fn media_accept() {
        let mut headers = HeaderMap::new();
        assert_eq!(media_answer_format(&headers, false), Ok(AnswerFormat::Json));
        for (accept, raw_png_allowed, expected) in [
            ("application/json", false, Some(AnswerFormat::Json)),
            ("*/*", true, Some(AnswerFormat::Json)),
            ("image/png", true, Some(AnswerFormat::RawPng)),
            ("image/png", false, None),
            ("image/jpeg", true, None),
            ("text/plain", false, None),
        ] {
            headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
            let format = media_answer_format(&headers, raw_png_allowed);
            assert_eq!(format.ok(), expected, "{accept} {raw_png_allowed}");
        }
    }

    #[test]
    fn media_families_are_found() {
        assert!(matches!(
            MediaFamily::for_base_model_id("cohere.embed-english-v3"),
            Some(MediaFamily::Embedding(_))
        ));
        assert!(matches!(
            MediaFamily::for_base_model_id("stability.stable-diffusion-xl-v1"),
            Some(MediaFamily::Image(family)) if family.answers_raw_png()
        ));
        assert!(MediaFamily::for_base_model_id("anthropic.claude-v2").is_none());
    }
}
