//! `POST /v1/generate`: one provider-neutral request, answered whole as JSON or,
//! with `"stream": true` (or `Accept: text/event-stream`), as Server-Sent Events.
//!
//! SSE events: `delta` (`{"text": "..."}`) once per text chunk as Bedrock sends it,
//! then exactly one of `done` (id, model, stop reason, usage) or `error` (the error
//! JSON shape), after which the stream closes.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::{Deserialize, Deserializer, Serialize};
use translator::{Kind, Message, StopReason, TextStreamDecoder, UnifiedRequest, Usage};

use crate::app::AppState;
use crate::config::ModelRoute;
use crate::error::ApiError;
use crate::routes::AppJson;
use crate::upstream::ChunkStream;

/// The request body. Unknown fields are refused rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    pub model: String,
    /// A plain prompt; exactly one of `prompt` and `messages`.
    pub prompt: Option<String>,
    /// A conversation: roles `system`, `user`, `assistant`, text content.
    pub messages: Option<Vec<Message>>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    #[serde(default, deserialize_with = "de_stop")]
    pub stop: Option<Vec<String>>,
    pub seed: Option<u64>,
    /// Model-specific body fields, merged into the InvokeModel body.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    pub stream: Option<bool>,
}

/// The whole answer of a non-streamed request, and (without `text`) the `done` event.
#[derive(Debug, Serialize)]
pub struct GenerateResponse {
    pub id: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub stop_reason: StopReason,
    pub usage: UsageBody,
}

#[derive(Debug, Serialize)]
pub struct UsageBody {
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Delta<'a> {
    text: &'a str,
}

pub async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    let route = state.route_of_kind(&request.model, Kind::Text)?;
    let translator::FamilyRef::Text(family) = route.family else {
        return Err(ApiError::Internal("a text route without a text family".to_owned()));
    };
    let wants_sse = request.stream.unwrap_or_else(|| accepts_event_stream(&headers));
    let unified = unified_request(request, route, wants_sse);
    let body = translator::encode_text_request(family, &unified)?;
    let body = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = format!("gen-{}", uuid::Uuid::new_v4().simple());

    if !wants_sse {
        let output = state.upstream.invoke(&route.model_id, body, "application/json").await?;
        let answer = translator::decode_text_response(family, &unified, &output.body)?;
        let usage = answer.usage.or(output.header_usage);
        let response = GenerateResponse {
            id,
            model: route.alias.clone(),
            text: Some(answer.text),
            stop_reason: answer.stop_reason,
            usage: usage.into(),
        };
        return Ok(Json(response).into_response());
    }

    // Errors before the first chunk still get their own HTTP status.
    let chunks = state.upstream.invoke_stream(&route.model_id, body).await?;
    let events = sse_events(StreamState {
        chunks,
        decoder: TextStreamDecoder::new(family, &unified),
        id,
        alias: route.alias.clone(),
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    // Ask reverse proxies (nginx and friends) not to buffer the stream.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The caller's request with the alias defaults filled in.
fn unified_request(request: GenerateRequest, route: &ModelRoute, stream: bool) -> UnifiedRequest {
    let defaults = &route.defaults;
    UnifiedRequest {
        prompt: request.prompt,
        messages: request.messages.unwrap_or_default(),
        max_tokens: request.max_tokens.or(defaults.max_tokens),
        temperature: request.temperature.or(defaults.temperature),
        top_p: request.top_p.or(defaults.top_p),
        top_k: request.top_k.or(defaults.top_k),
        stop: request.stop.or_else(|| defaults.stop.clone()).unwrap_or_default(),
        seed: request.seed,
        extra: request.extra.unwrap_or_default(),
        stream,
    }
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|item| item.trim().starts_with("text/event-stream")))
}

struct StreamState {
    chunks: ChunkStream,
    decoder: TextStreamDecoder,
    id: String,
    alias: String,
}

/// What the SSE stream does next.
enum Step {
    Read(StreamState),
    /// The answer is complete: `done` (after any held-back text) comes next.
    Finish(StreamState),
    /// One last event to send.
    Emit(Event),
    End,
}

/// Turns Bedrock chunks into SSE events as they arrive: nothing is buffered beyond
/// one chunk (and, for families whose stop sequences the gateway emulates, the few
/// characters that may begin one). The stream always ends with `done` or `error`.
fn sse_events(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(Step::Read(state), |step| async move {
        let mut state = match step {
            Step::Read(state) => state,
            Step::Finish(state) => return Some(finish(state)),
            Step::Emit(event) => return Some((Ok(event), Step::End)),
            Step::End => return None,
        };
        loop {
            let chunk = match state.chunks.next_chunk().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => {
                    return Some((Ok(error_event(ApiError::Upstream(error))), Step::End));
                }
                None => return Some(finish(state)),
            };
            match state.decoder.push(&chunk) {
                // An emulated stop sequence ended the answer: stop reading Bedrock.
                Ok(decoded) if decoded.finished => {
                    if decoded.text.is_empty() {
                        return Some(finish(state));
                    }
                    return Some((Ok(delta_event(&decoded.text)), Step::Finish(state)));
                }
                Ok(decoded) if !decoded.text.is_empty() => {
                    return Some((Ok(delta_event(&decoded.text)), Step::Read(state)));
                }
                Ok(_) => {}
                Err(error) => return Some((Ok(error_event(error.into())), Step::End)),
            }
        }
    })
}

/// The end of a complete stream: text still held back (a possible start of an
/// emulated stop sequence that never completed), then `done`.
fn finish(state: StreamState) -> (Result<Event, Infallible>, Step) {
    let finished = match state.decoder.finish() {
        Ok(finished) => finished,
        Err(error) => return (Ok(error_event(error.into())), Step::End),
    };
    let done = json_event(
        "done",
        &GenerateResponse {
            id: state.id,
            model: state.alias,
            text: None,
            stop_reason: finished.stop_reason,
            usage: finished.usage.into(),
        },
    );
    if finished.text.is_empty() {
        (Ok(done), Step::End)
    } else {
        (Ok(delta_event(&finished.text)), Step::Emit(done))
    }
}

fn delta_event(text: &str) -> Event {
    json_event("delta", &Delta { text })
}

/// The final event of a failed stream: the status is already sent, so the error
/// travels in the body, in the same JSON shape as an error response.
fn error_event(error: ApiError) -> Event {
    tracing::warn!(message = "stream failed", error_type = error.error_type(), error = %error);
    json_event("error", &error.body())
}

fn json_event(name: &'static str, data: &impl Serialize) -> Event {
    match serde_json::to_string(data) {
        Ok(json) => Event::default().event(name).data(json),
        Err(_) => Event::default()
            .event("error")
            .data(r#"{"error":{"type":"internal","message":"internal error in the gateway"}}"#),
    }
}

impl From<Usage> for UsageBody {
    fn from(usage: Usage) -> UsageBody {
        UsageBody { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens }
    }
}

/// `stop` may be one string or a list of strings.
fn de_stop<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None => Ok(None),
        Some(value) => match serde_json::from_value::<OneOrMany>(value) {
            Ok(OneOrMany::One(one)) => Ok(Some(vec![one])),
            Ok(OneOrMany::Many(many)) => Ok(Some(many)),
            Err(_) => {
                Err(serde::de::Error::custom("`stop` must be a string or an array of strings"))
            }
        },
    }
}
