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
use translator::{Family, StopReason, StreamAccumulator, UnifiedRequest, Usage};

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
    pub prompt: String,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    #[serde(default, deserialize_with = "de_stop")]
    pub stop: Option<Vec<String>>,
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
    let route = state.route(&request.model)?;
    let wants_sse = request.stream.unwrap_or_else(|| accepts_event_stream(&headers));
    let unified = unified_request(&request, route, wants_sse);
    unified.validate()?;
    let body = route.family.encode_request(&unified)?;
    let body = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = format!("gen-{}", uuid::Uuid::new_v4().simple());

    if !wants_sse {
        let output = state.upstream.invoke(&route.model_id, body).await?;
        let answer = route.family.decode_response(&output.body)?;
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
        family: route.family,
        accumulator: StreamAccumulator::default(),
        id,
        alias: route.alias.clone(),
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    // Ask reverse proxies (nginx and friends) not to buffer the stream.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The caller's request with the alias defaults filled in.
fn unified_request(request: &GenerateRequest, route: &ModelRoute, stream: bool) -> UnifiedRequest {
    let defaults = &route.defaults;
    UnifiedRequest {
        prompt: request.prompt.clone(),
        max_tokens: request.max_tokens.or(defaults.max_tokens),
        temperature: request.temperature.or(defaults.temperature),
        top_p: request.top_p.or(defaults.top_p),
        stop: request.stop.clone().or_else(|| defaults.stop.clone()).unwrap_or_default(),
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
    family: &'static dyn Family,
    accumulator: StreamAccumulator,
    id: String,
    alias: String,
}

/// Turns Bedrock chunks into SSE events as they arrive: nothing is buffered beyond
/// one chunk. The stream always ends with `done` or `error`.
fn sse_events(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            let chunk = match state.chunks.next_chunk().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(error)) => {
                    return Some((Ok(error_event(ApiError::Upstream(error))), None));
                }
                None => {
                    let event = match state.accumulator.finish() {
                        Ok((stop_reason, usage)) => {
                            let done = GenerateResponse {
                                id: state.id,
                                model: state.alias,
                                text: None,
                                stop_reason,
                                usage: usage.into(),
                            };
                            json_event("done", &done)
                        }
                        Err(error) => error_event(error.into()),
                    };
                    return Some((Ok(event), None));
                }
            };
            match state.family.decode_stream_event(&chunk) {
                Ok(event) => {
                    state.accumulator.push(&event);
                    if !event.text.is_empty() {
                        let delta = json_event("delta", &Delta { text: &event.text });
                        return Some((Ok(delta), Some(state)));
                    }
                }
                Err(error) => return Some((Ok(error_event(error.into())), None)),
            }
        }
    })
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
