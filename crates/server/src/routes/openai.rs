//! The OpenAI-compatible API: `POST /v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings` and `/v1/images/generations`, so that code written against the
//! OpenAI SDKs works with only its base URL changed. Backed by the same translator,
//! routing and upstream as `/v1/generate`; errors come in OpenAI's shape.
//!
//! A field OpenAI has and the gateway cannot honour (logprobs, `n` > 1, …) is
//! refused with 422 naming it, never ignored; a field set to `null` or to OpenAI's
//! default counts as absent.
//!
//! Chat completions take `tools`, `tool_choice`, assistant `tool_calls`, `tool` messages,
//! `image_url` parts (as `data:` URLs), `response_format` and `reasoning_effort` (any effort
//! but `none` asks for the model's reasoning, returned as `reasoning_content` beside
//! `content`, as DeepSeek's and vLLM's OpenAI-compatible APIs do); a model family that
//! has no native counterpart refuses them (422 naming the family).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use translator::{
    Content, EmbedRequest, ImageRequest, Message, Part, ResponseFormat, Role, StopReason, Tool,
    ToolCall, ToolCallDelta, ToolChoice, UnifiedRequest, Usage,
};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::ModelRoute;
use crate::error::ApiError;
use crate::options::RequestOptions;
use crate::routes::parse::{UnknownFields, struct_fields};
use crate::routes::sse::{event_buffer, sse_data, sse_data_text};
use crate::routes::text::{self, CacheTokens, StreamItem};
use crate::routes::{parse_json, read_json_body, tag_target};

/// The routes of the OpenAI-compatible API.
pub const PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/responses",
    "/v1/responses/{response_id}",
];

/// Whether `path` is a route of the OpenAI-compatible API: one of [`PATHS`], or under a
/// stored response's (`/v1/responses/{response_id}`, which a path matches by its prefix).
pub fn is_openai_path(path: &str) -> bool {
    PATHS.contains(&path) || path.starts_with("/v1/responses/")
}

/// An [`ApiError`] rendered in OpenAI's error shape:
/// `{"error": {"message", "type", "param", "code"}}`, with the same status.
#[derive(Debug)]
pub struct OpenAiError {
    pub error: ApiError,
    /// The request field at fault, where one is (OpenAI's `param`).
    pub param: Option<String>,
}

impl<E: Into<ApiError>> From<E> for OpenAiError {
    fn from(error: E) -> OpenAiError {
        OpenAiError { error: error.into(), param: None }
    }
}

impl OpenAiError {
    /// The error, blaming the request field `param`.
    pub(crate) fn at(error: ApiError, param: &str) -> OpenAiError {
        OpenAiError { error, param: Some(param.to_owned()) }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut body = openai_error_body(&self.error);
        if let Some(param) = self.param {
            body["error"]["param"] = Value::String(param);
        }
        self.error.response_with_body(body)
    }
}

/// OpenAI's error body; `code` is the gateway's bounded error type.
pub(crate) fn openai_error_body(error: &ApiError) -> Value {
    let status = error.status().as_u16();
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    json!({"error": {
        "message": error.public_message(),
        "type": kind,
        "param": null,
        "code": error.error_type(),
    }})
}

/// An OpenAI request body as `T`, and the first field outside `T` (and outside each of
/// its messages) whose value is not OpenAI's no-op, which the handler refuses (422). The
/// body is read twice: typed, with unknown fields skipped (serde's `flatten` would buffer
/// the whole body as a value tree first), then scanned for the unknown fields, keeping
/// none of their values. A body the typed read refuses gets that read's 400.
#[derive(Debug)]
pub struct OpenAiJson<T>(pub T, pub UnknownFields);

/// What [`OpenAiJson`] needs of a request type: the array of objects inside it whose
/// unknown fields count too.
pub trait OpenAiBody: DeserializeOwned {
    fn nested() -> Option<(&'static str, &'static [&'static str])> {
        None
    }
}

impl OpenAiBody for ChatCompletionRequest {
    fn nested() -> Option<(&'static str, &'static [&'static str])> {
        Some(("messages", struct_fields::<ChatMessage>()))
    }
}

impl OpenAiBody for CompletionRequest {}
impl OpenAiBody for EmbeddingsRequest {}
impl OpenAiBody for ImageGenerationRequest {}

impl<S: Send + Sync, T: OpenAiBody> FromRequest<S> for OpenAiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(request).await?;
        let body = parse_json::<T>(&bytes)?;
        let unknown = UnknownFields::scan(&bytes, struct_fields::<T>(), T::nested())
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        Ok(OpenAiJson(body, unknown))
    }
}

// ---------------------------------------------------------------------------------
// Chat completions and completions
// ---------------------------------------------------------------------------------

/// `POST /v1/chat/completions`. Fields outside this list are refused (422) unless null or
/// OpenAI's no-op default (`OpenAiJson` finds them).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    pub model: String,
    #[serde(deserialize_with = "crate::routes::parse::de_messages")]
    pub messages: Vec<ChatMessage>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::de_stop")]
    #[schema(value_type = Option<Vec<String>>)]
    pub stop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::routes::de_u64")]
    pub seed: Option<u64>,
    /// 1: one choice per request (another `n` is refused, 422).
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
    pub user: Option<String>,
    /// `auto` (the alias decides), `default`, `flex` or `priority`: Bedrock's service tier.
    #[schema(schema_with = crate::routes::schema::service_tier)]
    pub service_tier: Option<String>,
    /// Tags for Bedrock's invocation logs (`X-Amzn-Bedrock-Request-Metadata`).
    #[serde(default, deserialize_with = "crate::routes::parse::de_metadata")]
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// Gateway extensions, reachable through the OpenAI SDKs' `extra_body`.
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    pub top_k: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<Map<String, Value>>,
    /// Functions the model may call.
    #[serde(default, deserialize_with = "crate::routes::parse::de_tools")]
    pub tools: Option<Vec<ChatTool>>,
    /// `"auto"`, `"none"`, `"required"`, or `{"type": "function", "function": {"name"}}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Accepted; the model decides how many calls it makes.
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema",
    /// "json_schema": {"name", "schema", "strict"}}`.
    pub response_format: Option<ChatResponseFormat>,
    /// `low`, `medium` or `high` ask for the model's reasoning (`reasoning_content`);
    /// `none` or absent do not.
    pub reasoning_effort: Option<String>,
}

/// A tool of a chat request: `{"type": "function", "function": {...}}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatTool {
    /// `function`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::routes::schema::function_type)]
    pub kind: String,
    pub function: ChatFunction,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatFunction {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema of the arguments' object; none: no arguments.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// Accepted: the schema is sent to the model as it is.
    pub strict: Option<bool>,
}

/// A chat request's `response_format`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    pub json_schema: Option<ChatJsonSchema>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatJsonSchema {
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub strict: Option<bool>,
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompletionRequest {
    pub model: String,
    #[serde(deserialize_with = "de_prompt")]
    #[schema(value_type = String)]
    pub prompt: String,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::de_stop")]
    #[schema(value_type = Option<Vec<String>>)]
    pub stop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::routes::de_u64")]
    pub seed: Option<u64>,
    /// 1: one choice per request (another `n` is refused, 422).
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1, maximum = 1)]
    pub best_of: Option<u32>,
    #[schema(schema_with = crate::routes::schema::false_only)]
    pub echo: Option<bool>,
    pub user: Option<String>,
    /// `auto` (the alias decides), `default`, `flex` or `priority`: Bedrock's service tier.
    #[schema(schema_with = crate::routes::schema::service_tier)]
    pub service_tier: Option<String>,
    /// Tags for Bedrock's invocation logs (`X-Amzn-Bedrock-Request-Metadata`).
    #[serde(default, deserialize_with = "crate::routes::parse::de_metadata")]
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    pub top_k: Option<u32>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    #[schema(schema_with = crate::routes::schema::chat_role)]
    pub role: String,
    /// Required, except in an assistant message with `tool_calls`.
    #[schema(value_type = Option<MessageContent>)]
    pub content: Option<MessageContent>,
    /// Accepted and ignored, as OpenAI's own optional participant name.
    pub name: Option<String>,
    /// An assistant message's calls of tools.
    pub tool_calls: Option<Vec<ChatToolCall>>,
    /// A `tool` message's call, which it is the result of.
    pub tool_call_id: Option<String>,
}

/// A tool call of an assistant message: `{"id", "type": "function", "function": {"name",
/// "arguments"}}`, `arguments` the JSON text of an object.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: ChatFunctionCall,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatFunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// A message's content: a string, or an array of content parts (`text`, and `image_url`
/// with a `data:` URL). Read without buffering (see its `Deserialize`): consecutive text
/// parts are joined as they are read, so that a message of many parts holds its text, not
/// a list of parts.
#[derive(Debug, ToSchema)]
// For the OpenAPI schema only (utoipa reads it): the `Deserialize` is written out below.
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MessageContent, D::Error> {
        struct Content;
        impl<'de> serde::de::Visitor<'de> for Content {
            type Value = MessageContent;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MessageContent, A::Error> {
                // Consecutive text parts joined, other parts kept in order, up to the first
                // part of a kind the conversion refuses; every part is still read, so that
                // a malformed one is a 400 as before.
                let mut parts: Vec<ContentPart> = Vec::new();
                let mut refused = false;
                while let Some(part) = seq.next_element::<ContentPart>()? {
                    if refused {
                        continue;
                    }
                    match (part.kind.as_str(), parts.last_mut()) {
                        ("text", Some(ContentPart { kind, text: Some(joined), .. }))
                            if kind == "text" =>
                        {
                            joined.push_str(part.text.as_deref().unwrap_or_default());
                            if part.text.is_none() {
                                parts.push(part);
                                refused = true;
                            }
                        }
                        ("text" | "image_url", _) => parts.push(part),
                        _ => {
                            parts.push(part);
                            refused = true;
                        }
                    }
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        deserializer.deserialize_any(Content)
    }
}

/// A content part: `{"type": "text", "text"}` or `{"type": "image_url", "image_url":
/// {"url": "data:image/png;base64,…", "detail"}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    #[schema(schema_with = crate::routes::schema::content_part_type)]
    pub kind: String,
    pub text: Option<String>,
    pub image_url: Option<ImageUrl>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ImageUrl {
    /// A `data:<media type>;base64,<data>` URL (an `http(s)://` URL only from the origins
    /// the operator allows, else 422).
    pub url: String,
    /// Accepted and ignored (`auto`, `low`, `high`).
    pub detail: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Serialize)]
struct UsageBody {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    /// `cached_tokens`: the prompt tokens read from Bedrock's prompt cache, where reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Serialize)]
struct PromptTokensDetails {
    cached_tokens: u32,
}

#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion` object, or with `stream` `chat.completion.chunk` events ending with `data: [DONE]`",
            content(("application/json"), ("text/event-stream"))),
        (status = "4XX", description = "A refused request, in OpenAI's error shape"),
        (status = "5XX", description = "Bedrock or the gateway failed, in OpenAI's error shape"),
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<OpenAiJson<ChatCompletionRequest>, ApiError>,
) -> Result<Response, OpenAiError> {
    let OpenAiJson(request, unknown) = request?;
    // The alias first: a request for a model the gateway does not route is a 404 whatever
    // else is in it.
    let route = text::text_route(&state, &request.model)?;
    refuse_unsupported(unknown.top.as_deref())?;
    refuse_n(request.n)?;
    let _ = request.parallel_tool_calls;
    let messages = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            let unsupported = unknown.nested.as_ref().filter(|(at, _)| *at == index);
            convert_message(message, unsupported.map(|(_, key)| key.as_str()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tools = request.tools.unwrap_or_default().into_iter().map(convert_tool);
    let tools = tools.collect::<Result<Vec<_>, _>>()?;
    let tool_choice = request.tool_choice.as_ref().map(convert_tool_choice).transpose()?;
    let response_format = request.response_format.map(convert_response_format).transpose()?;
    let reasoning = match request.reasoning_effort.as_deref() {
        None | Some("none") => false,
        Some("minimal" | "low" | "medium" | "high") => true,
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            let error = ApiError::BadRequest(format!(
                "`reasoning_effort` {shown:?} is not one of none, minimal, low, medium, high"
            ));
            return Err(OpenAiError::at(error, "reasoning_effort"));
        }
    };
    let options = bedrock_options(request.service_tier.as_deref(), request.metadata.as_ref())?;
    let stream = request.stream.unwrap_or(false);
    let mut unified = UnifiedRequest {
        prompt: None,
        messages,
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop.unwrap_or_default(),
        seed: request.seed,
        extra: request.extra.unwrap_or_default(),
        stream,
        cache_prompt: false,
        tools,
        tool_choice,
        response_format,
        reasoning,
    };
    text::apply_defaults(route, &mut unified);
    let shape = Shape {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_now(),
        model: route.alias.clone(),
        chat: true,
        service_tier: None,
    };
    respond(&state, &caller, route, unified, options.as_ref(), shape, request.stream_options).await
}

#[utoipa::path(
    post,
    path = "/v1/completions",
    tag = "openai",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A `text_completion` object, or with `stream` chunks ending with `data: [DONE]`",
            content(("application/json"), ("text/event-stream"))),
        (status = "4XX", description = "A refused request, in OpenAI's error shape"),
        (status = "5XX", description = "Bedrock or the gateway failed, in OpenAI's error shape"),
    )
)]
pub async fn completions(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<OpenAiJson<CompletionRequest>, ApiError>,
) -> Result<Response, OpenAiError> {
    let OpenAiJson(request, unknown) = request?;
    refuse_unsupported(unknown.top.as_deref())?;
    refuse_n(request.n)?;
    if request.best_of.is_some_and(|n| n != 1) {
        return Err(unsupported_field("`best_of` other than 1", "best_of"));
    }
    if request.echo == Some(true) {
        return Err(unsupported_field("`echo`", "echo"));
    }
    let route = text::text_route(&state, &request.model)?;
    let options = bedrock_options(request.service_tier.as_deref(), request.metadata.as_ref())?;
    let stream = request.stream.unwrap_or(false);
    let mut unified = UnifiedRequest {
        prompt: Some(request.prompt),
        messages: Vec::new(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop.unwrap_or_default(),
        seed: request.seed,
        extra: request.extra.unwrap_or_default(),
        stream,
        cache_prompt: false,
        ..UnifiedRequest::default()
    };
    text::apply_defaults(route, &mut unified);
    let shape = Shape {
        id: format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_now(),
        model: route.alias.clone(),
        chat: false,
        service_tier: None,
    };
    respond(&state, &caller, route, unified, options.as_ref(), shape, request.stream_options).await
}

/// The whole answer, or the stream, of a chat or text completion.
async fn respond(
    state: &AppState,
    caller: &Caller,
    route: &ModelRoute,
    unified: UnifiedRequest,
    options: Option<&RequestOptions>,
    mut shape: Shape,
    stream_options: Option<StreamOptions>,
) -> Result<Response, OpenAiError> {
    if !unified.stream {
        let done = text::complete(state, caller, route, unified, options).await?;
        shape.service_tier = done.service_tier;
        let answer = done.answer;
        let body = Json(shape.whole(&answer, done.cache));
        return Ok(tag_target(body.into_response(), &done.target));
    }
    let include_usage = stream_options.is_some_and(|o| o.include_usage);
    let stream = text::open_stream(state, caller, route, unified, options).await?;
    shape.service_tier.clone_from(&stream.service_tier);
    Ok(sse_response(shape, stream, include_usage))
}

/// What the answers of one request share: OpenAI's id, creation time and model, whether
/// they are chat completions or text completions, and the service tier Bedrock says
/// serves them (OpenAI's `service_tier` field, left out when Bedrock does not say).
#[derive(Debug, Clone)]
struct Shape {
    id: String,
    created: u64,
    model: String,
    chat: bool,
    service_tier: Option<String>,
}

impl Shape {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.chat, chunk) {
            (true, false) => "chat.completion",
            (true, true) => "chat.completion.chunk",
            (false, _) => "text_completion",
        }
    }

    fn whole(&self, answer: &translator::UnifiedResponse, cache: CacheTokens) -> Value {
        let (text, stop_reason, usage) = (&answer.text, answer.stop_reason, answer.usage);
        let choice = if self.chat {
            let mut message = json!({"role": "assistant", "content": text});
            if !answer.tool_calls.is_empty() {
                if text.is_empty() {
                    message["content"] = Value::Null;
                }
                message["tool_calls"] =
                    answer.tool_calls.iter().map(tool_call_body).collect::<Vec<_>>().into();
            }
            if let Some(reasoning) = &answer.reasoning {
                message["reasoning_content"] = Value::from(reasoning.as_str());
            }
            json!({"index": 0, "message": message,
                   "logprobs": null, "finish_reason": finish_reason(stop_reason)})
        } else {
            json!({"index": 0, "text": text, "logprobs": null,
                   "finish_reason": finish_reason(stop_reason)})
        };
        let mut whole = json!({"id": self.id, "object": self.object(false),
                               "created": self.created, "model": self.model,
                               "choices": [choice], "usage": usage_body(usage, cache)});
        self.tag_tier(&mut whole);
        whole
    }

    /// Adds `service_tier` where Bedrock named it.
    fn tag_tier(&self, object: &mut Value) {
        if let Some(tier) = &self.service_tier {
            object["service_tier"] = Value::from(tier.as_str());
        }
    }

    /// One stream chunk with one choice: a text delta, or the finish reason.
    fn chunk(&self, text: Option<&str>, finish: Option<StopReason>, usage_field: bool) -> Value {
        let finish_reason = finish.map(finish_reason);
        let choice = if self.chat {
            let delta = match text {
                Some(text) => json!({"content": text}),
                None => json!({}),
            };
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason})
        } else {
            json!({"index": 0, "text": text.unwrap_or_default(), "logprobs": null,
                   "finish_reason": finish_reason})
        };
        let mut chunk = json!({"id": self.id, "object": self.object(true),
                               "created": self.created, "model": self.model,
                               "choices": [choice]});
        if usage_field {
            chunk["usage"] = Value::Null;
        }
        self.tag_tier(&mut chunk);
        chunk
    }

    /// A chat stream chunk with `delta` as its choice's delta.
    fn delta_chunk(&self, delta: Value, usage_field: bool) -> Value {
        let mut chunk = self.chunk(None, None, usage_field);
        chunk["choices"][0]["delta"] = delta;
        chunk
    }

    /// The chat stream's first chunk, which announces the assistant role.
    fn role_chunk(&self, usage_field: bool) -> Value {
        let mut chunk = self.chunk(Some(""), None, usage_field);
        chunk["choices"][0]["delta"] = json!({"role": "assistant", "content": ""});
        chunk
    }

    /// With `stream_options.include_usage`: the last chunk, no choices, the usage.
    fn usage_chunk(&self, usage: Usage, cache: CacheTokens) -> Value {
        let mut chunk = json!({"id": self.id, "object": self.object(true),
                               "created": self.created, "model": self.model,
                               "choices": [], "usage": usage_body(usage, cache)});
        self.tag_tier(&mut chunk);
        chunk
    }
}

/// OpenAI's streaming format: `data:` chunks as Bedrock's arrive, then `data: [DONE]`.
/// A failure after the start ends with a `data: {"error": …}` chunk and no `[DONE]`.
fn sse_response(shape: Shape, stream: text::TextStream, include_usage: bool) -> Response {
    let target = stream.target.clone();
    struct State {
        shape: Shape,
        /// Boxed: `unfold` moves the state in and out of a future per event.
        stream: Box<text::TextStream>,
        include_usage: bool,
        started: bool,
        ended: bool,
    }
    let stream = Box::new(stream);
    let state = State { shape, stream, include_usage, started: false, ended: false };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        let mut out = event_buffer();
        if !state.started && state.shape.chat {
            state.started = true;
            sse_data(&mut out, &state.shape.role_chunk(state.include_usage));
            return Some((out, state));
        }
        state.started = true;
        match state.stream.next().await? {
            StreamItem::Delta(text) => {
                sse_data(&mut out, &state.shape.chunk(Some(&text), None, state.include_usage));
            }
            // The text completions have no place for them (their families have none).
            StreamItem::Reasoning(_) | StreamItem::ToolCall(_) if !state.shape.chat => {}
            StreamItem::Reasoning(reasoning) => {
                let delta = json!({"reasoning_content": reasoning});
                sse_data(&mut out, &state.shape.delta_chunk(delta, state.include_usage));
            }
            StreamItem::ToolCall(call) => {
                let delta = json!({"tool_calls": [tool_call_delta_body(&call)]});
                sse_data(&mut out, &state.shape.delta_chunk(delta, state.include_usage));
            }
            StreamItem::Done { stop_reason, usage, cache } => {
                let last = state.shape.chunk(None, Some(stop_reason), state.include_usage);
                sse_data(&mut out, &last);
                if state.include_usage {
                    sse_data(&mut out, &state.shape.usage_chunk(usage, cache));
                }
                sse_data_text(&mut out, "[DONE]");
                state.ended = true;
            }
            StreamItem::Failed(error) => {
                error.log_stream_failure();
                sse_data(&mut out, &openai_error_body(&error));
                state.ended = true;
            }
        }
        Some((out, state))
    });
    tag_target(crate::routes::sse::sse_response(Box::pin(events)), &target)
}

fn finish_reason(stop_reason: StopReason) -> &'static str {
    match stop_reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::Other => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ContentFilter => "content_filter",
        StopReason::ToolUse => "tool_calls",
    }
}

/// OpenAI's usage: `prompt_tokens` counts the whole prompt and `cached_tokens` is the part
/// of it read from the cache, whereas Bedrock's input tokens leave out the tokens read from
/// and written to the cache; so both cache counts are added back.
fn usage_body(usage: Usage, cache: CacheTokens) -> UsageBody {
    let prompt_tokens = [cache.read, cache.write]
        .into_iter()
        .flatten()
        .fold(usage.input_tokens.unwrap_or(0), u32::saturating_add);
    let completion_tokens = usage.output_tokens.unwrap_or(0);
    UsageBody {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.saturating_add(completion_tokens),
        prompt_tokens_details: cache
            .read
            .map(|cached_tokens| PromptTokensDetails { cached_tokens }),
    }
}

/// An OpenAI message as a unified one: roles `system` and `developer` are system
/// messages; a `tool` message is a user message holding the tool's result; an assistant
/// message's `tool_calls` are tool-use parts after its text. `unknown`: the message's first
/// field outside [`ChatMessage`] that is not a no-op, refused first.
fn convert_message(message: ChatMessage, unknown: Option<&str>) -> Result<Message, OpenAiError> {
    refuse_unsupported(unknown)?;
    let _ = message.name;
    let bad = |message: &str| OpenAiError::at(ApiError::BadRequest(message.to_owned()), "messages");
    let role = match message.role.as_str() {
        "system" | "developer" => Role::System,
        "user" | "tool" => Role::User,
        "assistant" => Role::Assistant,
        "function" => {
            return Err(unsupported_field("`function` messages (use `tool`)", "messages"));
        }
        other => {
            return Err(OpenAiError::from(ApiError::BadRequest(format!(
                "unknown message role {other:?}; expected system, developer, user, assistant or tool"
            ))));
        }
    };
    if message.role == "tool" {
        let Some(tool_use_id) = message.tool_call_id else {
            return Err(bad("a `tool` message needs `tool_call_id`"));
        };
        let content = match message.content {
            Some(content) => content_text(content)?,
            None => return Err(bad("a `tool` message needs `content`")),
        };
        let result = Part::ToolResult { tool_use_id, content, is_error: false };
        return Ok(Message { role, content: Content::Parts(vec![result]) });
    }
    if message.tool_call_id.is_some() {
        return Err(bad("only a `tool` message has `tool_call_id`"));
    }
    let calls = message.tool_calls.unwrap_or_default();
    if !calls.is_empty() && role != Role::Assistant {
        return Err(bad("only an assistant message has `tool_calls`"));
    }
    let mut parts = match message.content {
        Some(MessageContent::Text(text)) if calls.is_empty() => {
            return Ok(Message::text(role, text));
        }
        Some(MessageContent::Text(text)) if text.is_empty() => Vec::new(),
        Some(MessageContent::Text(text)) => vec![Part::Text { text }],
        Some(MessageContent::Parts(parts)) => convert_parts(parts)?,
        None if !calls.is_empty() => Vec::new(),
        None => return Err(bad("every message needs `content`")),
    };
    for call in calls {
        if call.kind.as_deref().is_some_and(|kind| kind != "function") {
            return Err(bad("a tool call's `type` must be `function`"));
        }
        let input = crate::routes::content::tool_arguments(&call.function.arguments, &call.id)?;
        parts.push(Part::ToolUse { id: call.id, name: call.function.name, input });
    }
    // A message of one text part is plain text: the text-only families take it as before.
    if let [Part::Text { .. }] = parts.as_slice()
        && let Some(Part::Text { text }) = parts.pop()
    {
        return Ok(Message::text(role, text));
    }
    Ok(Message { role, content: Content::Parts(parts) })
}

/// A message's content parts as unified parts: text, and images from `data:` URLs.
fn convert_parts(parts: Vec<ContentPart>) -> Result<Vec<Part>, OpenAiError> {
    parts
        .into_iter()
        .map(|part| match (part.kind.as_str(), part.text, part.image_url) {
            ("text", Some(text), _) => Ok(Part::Text { text }),
            ("text", None, _) => Err(OpenAiError::from(ApiError::BadRequest(
                "a `text` content part needs `text`".to_owned(),
            ))),
            ("image_url", _, Some(image)) => {
                let _ = image.detail;
                Ok(crate::routes::content::image_from_url(&image.url)?)
            }
            ("image_url", _, None) => Err(OpenAiError::from(ApiError::BadRequest(
                "an `image_url` content part needs `image_url`".to_owned(),
            ))),
            (kind, _, _) => Err(unsupported(&format!("`{kind}` content parts"))),
        })
        .collect()
}

/// The text of a `tool` message's content (its text parts joined).
fn content_text(content: MessageContent) -> Result<String, OpenAiError> {
    match content {
        MessageContent::Text(text) => Ok(text),
        MessageContent::Parts(parts) => {
            let mut text = String::new();
            for part in convert_parts(parts)? {
                match part {
                    Part::Text { text: part_text } => text.push_str(&part_text),
                    _ => return Err(unsupported("images in a `tool` message")),
                }
            }
            Ok(text)
        }
    }
}

fn convert_tool(tool: ChatTool) -> Result<Tool, OpenAiError> {
    if tool.kind != "function" {
        let shown: String = tool.kind.chars().take(32).collect();
        return Err(unsupported_field(&format!("tools of type {shown:?}"), "tools"));
    }
    let _ = tool.function.strict;
    Ok(Tool {
        name: tool.function.name,
        description: tool.function.description,
        parameters: tool
            .function
            .parameters
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

fn convert_tool_choice(choice: &Value) -> Result<ToolChoice, OpenAiError> {
    let bad = || {
        let error = ApiError::BadRequest(
            "`tool_choice` must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \
             \"function\": {\"name\": ...}}"
                .to_owned(),
        );
        OpenAiError::at(error, "tool_choice")
    };
    match choice {
        Value::String(choice) => match choice.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(bad()),
        },
        Value::Object(choice) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            match choice.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) {
                Some(name) => Ok(ToolChoice::Tool(name.to_owned())),
                None => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

fn convert_response_format(format: ChatResponseFormat) -> Result<ResponseFormat, OpenAiError> {
    let bad = |message: &str| {
        OpenAiError::at(ApiError::BadRequest(message.to_owned()), "response_format")
    };
    match (format.kind.as_str(), format.json_schema) {
        ("text", _) => Ok(ResponseFormat::Text),
        ("json_object", _) => Ok(ResponseFormat::JsonObject),
        ("json_schema", Some(schema)) => {
            let _ = schema.description;
            Ok(ResponseFormat::JsonSchema {
                name: schema.name,
                schema: schema.schema.unwrap_or_else(|| json!({"type": "object"})),
                strict: schema.strict.unwrap_or(false),
            })
        }
        ("json_schema", None) => Err(bad("a `json_schema` response format needs `json_schema`")),
        _ => Err(bad("`response_format.type` must be text, json_object or json_schema")),
    }
}

/// A tool call of an answer, in OpenAI's shape.
fn tool_call_body(call: &ToolCall) -> Value {
    json!({"id": call.id, "type": "function",
           "function": {"name": call.name, "arguments": call.input.to_string()}})
}

/// A piece of a streamed tool call, in OpenAI's shape: the first piece has the id, type and
/// name, the later ones only the next bytes of the arguments.
fn tool_call_delta_body(call: &ToolCallDelta) -> Value {
    let mut body = json!({"index": call.index, "function": {"arguments": call.arguments}});
    if let Some(id) = &call.id {
        body["id"] = Value::from(id.as_str());
        body["type"] = Value::from("function");
    }
    if let Some(name) = &call.name {
        body["function"]["name"] = Value::from(name.as_str());
    }
    body
}

/// Refuses the first field outside the supported set whose value is not null or the
/// OpenAI default that changes nothing (`parse::harmless`), which [`OpenAiJson`] found.
pub(crate) fn refuse_unsupported(unsupported: Option<&str>) -> Result<(), OpenAiError> {
    match unsupported {
        Some(key) => Err(unsupported_field(&format!("`{key}`"), key)),
        None => Ok(()),
    }
}

/// OpenAI's `service_tier` and `metadata` as Bedrock's options: `auto` leaves the tier to
/// the alias; `scale` and anything else are refused.
pub(crate) fn bedrock_options(
    service_tier: Option<&str>,
    metadata: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Option<RequestOptions>, OpenAiError> {
    let service_tier = match service_tier {
        None | Some("auto") => None,
        Some(tier @ ("default" | "flex" | "priority")) => Some(tier.to_owned()),
        Some(other) => {
            let error = ApiError::BadRequest(format!(
                "`service_tier` {other:?} is not one of \"auto\", \"default\", \"flex\", \"priority\""
            ));
            return Err(OpenAiError::at(error, "service_tier"));
        }
    };
    if service_tier.is_none() && metadata.is_none() {
        return Ok(None);
    }
    Ok(Some(RequestOptions {
        service_tier,
        performance_latency: None,
        request_metadata: metadata.cloned(),
    }))
}

fn refuse_n(n: Option<u32>) -> Result<(), OpenAiError> {
    match n {
        Some(n) if n != 1 => Err(unsupported_field("`n` other than 1", "n")),
        _ => Ok(()),
    }
}

fn unsupported(what: &str) -> OpenAiError {
    OpenAiError::from(ApiError::Unsupported(format!("{what} is not supported by this gateway")))
}

/// [`unsupported`], blaming the request field `param`.
pub(crate) fn unsupported_field(what: &str, param: &str) -> OpenAiError {
    let error = ApiError::Unsupported(format!("{what} is not supported by this gateway"));
    OpenAiError::at(error, param)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------
// Embeddings and images
// ---------------------------------------------------------------------------------

/// `POST /v1/embeddings`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    pub model: String,
    #[serde(deserialize_with = "crate::routes::de_input")]
    #[schema(value_type = Vec<String>)]
    pub input: Vec<String>,
    #[schema(schema_with = crate::routes::schema::encoding_format)]
    pub encoding_format: Option<String>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub dimensions: Option<u32>,
    pub user: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "openai",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "A list of `embedding` objects (floats, or base64 little-endian f32)"),
        (status = "4XX", description = "A refused request, in OpenAI's error shape"),
        (status = "5XX", description = "Bedrock or the gateway failed, in OpenAI's error shape"),
    )
)]
pub async fn embeddings(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<OpenAiJson<EmbeddingsRequest>, ApiError>,
) -> Result<Response, OpenAiError> {
    let OpenAiJson(request, unknown) = request?;
    refuse_unsupported(unknown.top.as_deref())?;
    let base64_output = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(OpenAiError::from(ApiError::BadRequest(format!(
                "`encoding_format` {other:?} is not one of \"float\", \"base64\""
            ))));
        }
    };
    let embed = crate::routes::embed::run(
        &state,
        &caller,
        &request.model,
        EmbedRequest {
            input: request.input,
            images: Vec::new(),
            dimensions: request.dimensions,
            normalize: None,
            input_type: None,
            extra: Map::new(),
        },
    )
    .await?;
    // Serialized from the vectors as they are: a `Value` per float would cost some 30
    // bytes each, 2,048 vectors of 1,024 floats some 60 MiB.
    let data = embed
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64_output {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Floats(vector)
            };
            EmbeddingObject { embedding, index, object: "embedding" }
        })
        .collect();
    let prompt_tokens = embed.input_tokens.unwrap_or(0);
    let body = Json(EmbeddingList {
        data,
        model: embed.alias,
        object: "list",
        usage: EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens },
    });
    Ok(tag_target(body.into_response(), &embed.target))
}

/// OpenAI's embedding list (fields in the order a JSON object of them has always had).
#[derive(Debug, Serialize)]
struct EmbeddingList {
    data: Vec<EmbeddingObject>,
    model: String,
    object: &'static str,
    usage: EmbeddingUsage,
}

#[derive(Debug, Serialize)]
struct EmbeddingObject {
    embedding: EmbeddingVector,
    index: usize,
    object: &'static str,
}

#[derive(Debug, Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
}

/// A vector as floats (each written as the `f64` of the `f32`, as before) or as base64
/// little-endian `f32`s.
#[derive(Debug)]
enum EmbeddingVector {
    Floats(Vec<f32>),
    Base64(String),
}

impl Serialize for EmbeddingVector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EmbeddingVector::Floats(floats) => {
                serializer.collect_seq(floats.iter().map(|x| f64::from(*x)))
            }
            EmbeddingVector::Base64(text) => serializer.serialize_str(text),
        }
    }
}

/// `POST /v1/images/generations`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImageGenerationRequest {
    pub model: String,
    pub prompt: String,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub n: Option<u32>,
    #[schema(schema_with = crate::routes::schema::image_size)]
    pub size: Option<String>,
    #[schema(schema_with = crate::routes::schema::image_response_format)]
    pub response_format: Option<String>,
    pub user: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/images/generations",
    tag = "openai",
    request_body = ImageGenerationRequest,
    responses(
        (status = 200, description = "`{\"created\", \"data\": [{\"b64_json\"}]}`"),
        (status = "4XX", description = "A refused request, in OpenAI's error shape"),
        (status = "5XX", description = "Bedrock or the gateway failed, in OpenAI's error shape"),
    )
)]
pub async fn image_generations(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<OpenAiJson<ImageGenerationRequest>, ApiError>,
) -> Result<Response, OpenAiError> {
    let OpenAiJson(request, unknown) = request?;
    refuse_unsupported(unknown.top.as_deref())?;
    match request.response_format.as_deref() {
        None | Some("b64_json") => {}
        Some("url") => {
            return Err(unsupported_field(
                "`response_format: url` (ask for b64_json)",
                "response_format",
            ));
        }
        Some(other) => {
            return Err(OpenAiError::from(ApiError::BadRequest(format!(
                "`response_format` {other:?} is not \"b64_json\""
            ))));
        }
    }
    let (width, height) = match request.size.as_deref() {
        None | Some("auto") => (None, None),
        Some(size) => {
            let parsed = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
            let Some((width, height)) = parsed else {
                return Err(OpenAiError::from(ApiError::BadRequest(format!(
                    "`size` {size:?} is not WIDTHxHEIGHT, e.g. \"1024x1024\""
                ))));
            };
            (Some(width), Some(height))
        }
    };
    let route = crate::routes::images::image_route(&state, &request.model)?;
    let image_request = ImageRequest {
        prompt: request.prompt,
        n: request.n,
        width,
        height,
        ..ImageRequest::default()
    };
    let (images, target) =
        crate::routes::images::generate(&state, &caller, route, &image_request).await?;
    let data: Vec<Value> = images.images.into_iter().map(|b64| json!({"b64_json": b64})).collect();
    let body = Json(json!({"created": unix_now(), "data": data}));
    Ok(tag_target(body.into_response(), &target))
}

/// A completion `prompt`: one string (or a list holding exactly one), read without a
/// `Value`: a batch is refused at its second item.
fn de_prompt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    const SHAPE: &str =
        "`prompt` must be a string (token arrays and batches of prompts are not supported)";
    struct Prompt;
    impl<'de> serde::de::Visitor<'de> for Prompt {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, prompt: &str) -> Result<String, E> {
            Ok(prompt.to_owned())
        }

        fn visit_string<E: serde::de::Error>(self, prompt: String) -> Result<String, E> {
            Ok(prompt)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            let shape = |_| serde::de::Error::custom(SHAPE);
            let Some(prompt) = seq.next_element::<String>().map_err(shape)? else {
                return Err(serde::de::Error::custom(SHAPE));
            };
            match seq.next_element::<serde::de::IgnoredAny>()? {
                None => Ok(prompt),
                Some(_) => Err(serde::de::Error::custom(SHAPE)),
            }
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
            Err(E::custom(SHAPE))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
            Err(E::custom(SHAPE))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
            Err(E::custom(SHAPE))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
            Err(E::custom(SHAPE))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
            Err(E::custom(SHAPE))
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            Err(serde::de::Error::custom(SHAPE))
        }
    }
    deserializer.deserialize_any(Prompt)
}
