//! `POST /v1/generate`: one provider-neutral request, answered whole as JSON or,
//! with `"stream": true` (or `Accept: text/event-stream`), as Server-Sent Events.
//!
//! SSE events: `delta` (`{"text": "..."}`) once per text chunk as Bedrock sends it,
//! `reasoning` (`{"text"}`, only with `"reasoning": true`) and `tool_call` (`{"index",
//! "id", "name", "arguments"}`: the id and name on a call's first piece, then the next bytes
//! of its arguments' JSON text) as they come, then exactly one of `done` (id, model, stop
//! reason, usage) or `error` (the error JSON shape), after which the stream closes.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use translator::{
    Content, Message, ResponseFormat, Role, StopReason, Tool, ToolCall, ToolCallDelta, ToolChoice,
    UnifiedRequest, Usage,
};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::options::RequestOptions;
use crate::routes::sse::{self, sse_event};
use crate::routes::text::{self, StreamItem};
use crate::routes::{AppJson, tag_target};

/// The request body. Unknown fields are refused rather than silently ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    pub model: String,
    /// A plain prompt; exactly one of `prompt` and `messages`.
    pub prompt: Option<String>,
    /// A conversation: roles `system`, `user`, `assistant`, text content.
    #[serde(default, deserialize_with = "crate::routes::parse::de_opt_messages")]
    pub messages: Option<Vec<MessageBody>>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    pub top_k: Option<u32>,
    /// One stop sequence, or a list of them.
    #[serde(default, deserialize_with = "crate::routes::de_stop")]
    #[schema(value_type = Option<Vec<String>>)]
    pub stop: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::routes::de_u64")]
    pub seed: Option<u64>,
    /// Model-specific body fields, merged into the InvokeModel body.
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    pub stream: Option<bool>,
    /// Bedrock's per-request options (service tier, latency, request metadata), where
    /// the alias lets callers set them.
    pub bedrock: Option<RequestOptions>,
    /// Cache the system prompt and the conversation so far (Claude, Nova).
    pub cache_prompt: Option<bool>,
    /// Tools the model may call: `{"name", "description", "parameters"}` (a JSON Schema of
    /// an object).
    #[serde(default, deserialize_with = "crate::routes::parse::de_tools")]
    #[schema(value_type = Option<Vec<ToolSchema>>)]
    pub tools: Option<Vec<Tool>>,
    /// `"auto"`, `"none"`, `"required"` or `{"tool": "<name>"}`.
    #[schema(value_type = Option<ToolChoiceSchema>)]
    pub tool_choice: Option<ToolChoice>,
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "name",
    /// "schema", "strict"}`.
    #[schema(value_type = Option<ResponseFormatSchema>)]
    pub response_format: Option<ResponseFormat>,
    /// Return the model's reasoning in `reasoning` (Claude's thinking, DeepSeek-R1's,
    /// gpt-oss's), for the families that have it.
    pub reasoning: Option<bool>,
}

/// The whole answer of a non-streamed request, and (without `text`) the `done` event.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateResponse {
    pub id: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The model's reasoning, when asked for and the model gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// The tools the model calls (`{"id", "name", "input"}`), with `stop_reason` `tool_use`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: Vec<ToolCall>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `content_filter`, `tool_use` or `other`.
    #[schema(value_type = String, example = "end_turn")]
    pub stop_reason: StopReason,
    pub usage: UsageBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBody {
    /// Input tokens as Bedrock counts them: without those read from or written to the
    /// prompt cache.
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    /// Input tokens read from Bedrock's prompt cache, where Bedrock reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u32>,
    /// Input tokens written to Bedrock's prompt cache, where Bedrock reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u32>,
}

/// One message of a conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub role: RoleBody,
    /// A string, or a list of parts: `{"type": "text", "text"}`, `{"type": "image",
    /// "media_type", "data"}` (base64), `{"type": "document", "format", "name", "data"}`,
    /// `{"type": "tool_use", "id", "name", "input"}` (assistant), `{"type": "tool_result",
    /// "tool_use_id", "content", "is_error"}` (user).
    #[serde(deserialize_with = "crate::routes::parse::de_content")]
    #[schema(value_type = ContentSchema)]
    pub content: Content,
}

// The OpenAPI shapes of the translator's types, which know nothing of OpenAPI: each is the
// schema of the type named in its doc, which is what the request is read with.

/// `translator::Content`: a string or a list of parts.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ContentSchema {
    Text(String),
    Parts(Vec<PartSchema>),
}

/// `translator::Part`.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PartSchema {
    Text {
        text: String,
    },
    /// Base64 `data` of `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    Image {
        media_type: String,
        data: String,
    },
    /// Base64 `data` of a `pdf`, `txt`, `md`, `csv`, `html`, ... document.
    Document {
        format: String,
        name: String,
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[schema(value_type = Object)]
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
    /// Base64 `data` of an `mp4`, `mov`, `mkv`, `webm`, ... video (Nova).
    Video {
        format: String,
        data: String,
    },
}

/// `translator::Tool`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its OpenAPI schema is used")]
pub struct ToolSchema {
    name: String,
    description: Option<String>,
    /// A JSON Schema of an object.
    #[schema(value_type = Object)]
    parameters: serde_json::Value,
}

/// `translator::ToolChoice`.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ToolChoiceSchema {
    Mode(ToolChoiceMode),
    Named(NamedToolSchema),
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceMode {
    Auto,
    None,
    Required,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its OpenAPI schema is used")]
pub struct NamedToolSchema {
    tool: String,
}

/// `translator::ResponseFormat`.
#[derive(ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseFormatSchema {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        #[schema(value_type = Object)]
        schema: serde_json::Value,
        #[serde(default)]
        strict: bool,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleBody {
    System,
    User,
    Assistant,
}

impl From<MessageBody> for Message {
    fn from(message: MessageBody) -> Message {
        let role = match message.role {
            RoleBody::System => Role::System,
            RoleBody::User => Role::User,
            RoleBody::Assistant => Role::Assistant,
        };
        Message { role, content: message.content }
    }
}

#[derive(Debug, Serialize)]
struct Delta<'a> {
    text: &'a str,
}

/// A `tool_call` event: `{"index", "id", "name", "arguments"}`, the id and name on the
/// call's first piece only.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ToolCallEvent<'a>(&'a ToolCallDelta);

/// Generate text: a whole JSON answer, or Server-Sent Events with `"stream": true`.
#[utoipa::path(
    post,
    path = "/v1/generate",
    tag = "gateway",
    request_body = GenerateRequest,
    responses(
        (status = 200, description = "The answer (`application/json`), or with `stream` the \
            events `delta` ({\"text\"}), then `done` (id, model, stop_reason, usage) or `error` \
            (the error shape) as `text/event-stream`",
            content((GenerateResponse = "application/json"), ("text/event-stream"))),
        (status = "4XX", description = "A refused request", body = ErrorBody),
        (status = "5XX", description = "Bedrock or the gateway failed", body = ErrorBody),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(request): AppJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    let route = text::text_route(&state, &request.model)?;
    let wants_sse = request.stream.unwrap_or_else(|| accepts_event_stream(&headers));
    let mut unified = UnifiedRequest {
        prompt: request.prompt,
        messages: request.messages.unwrap_or_default().into_iter().map(Message::from).collect(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop.unwrap_or_default(),
        seed: request.seed,
        extra: request.extra.unwrap_or_default(),
        stream: wants_sse,
        cache_prompt: request.cache_prompt.unwrap_or(false),
        tools: request.tools.unwrap_or_default(),
        tool_choice: request.tool_choice,
        response_format: request.response_format,
        reasoning: request.reasoning.unwrap_or(false),
    };
    text::apply_defaults(route, &mut unified);
    let id = format!("gen-{}", uuid::Uuid::new_v4().simple());
    let alias = route.alias.clone();

    if !wants_sse {
        let text::Completed { answer, target, cache, .. } =
            text::complete(&state, &caller, route, unified, request.bedrock.as_ref()).await?;
        let response = GenerateResponse {
            id,
            model: alias,
            text: Some(answer.text),
            reasoning: answer.reasoning,
            tool_calls: answer.tool_calls,
            stop_reason: answer.stop_reason,
            usage: usage_body(answer.usage, cache),
        };
        return Ok(tag_target(Json(response).into_response(), &target));
    }

    let stream =
        text::open_stream(&state, &caller, route, unified, request.bedrock.as_ref()).await?;
    let target = stream.target.clone();
    // The id and alias go into the last event only: they are not copied for each delta.
    // The stream is boxed: `unfold` moves its state in and out of a future per event.
    let events =
        futures_util::stream::unfold(Some((Box::new(stream), id, alias)), |state| async move {
            let (mut stream, id, alias) = state?;
            let mut event = sse::event_buffer();
            match stream.next().await? {
                StreamItem::Delta(text) => {
                    sse_event(&mut event, "delta", &Delta { text: &text });
                    return Some((event, Some((stream, id, alias))));
                }
                StreamItem::Reasoning(text) => {
                    sse_event(&mut event, "reasoning", &Delta { text: &text });
                    return Some((event, Some((stream, id, alias))));
                }
                StreamItem::ToolCall(call) => {
                    sse_event(&mut event, "tool_call", &ToolCallEvent(&call));
                    return Some((event, Some((stream, id, alias))));
                }
                StreamItem::Done { stop_reason, usage, cache } => {
                    let usage = usage_body(usage, cache);
                    let done = GenerateResponse {
                        id,
                        model: alias,
                        text: None,
                        reasoning: None,
                        tool_calls: Vec::new(),
                        stop_reason,
                        usage,
                    };
                    sse_event(&mut event, "done", &done);
                }
                StreamItem::Failed(error) => error_event(&mut event, error),
            }
            // Nothing follows `done` or `error`.
            Some((event, None))
        });
    Ok(tag_target(sse::sse_response(Box::pin(events)), &target))
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|item| item.trim().starts_with("text/event-stream")))
}

/// The final event of a failed stream: the status is already sent, so the error
/// travels in the body, in the same JSON shape as an error response.
fn error_event(out: &mut Vec<u8>, error: ApiError) {
    error.log_stream_failure();
    sse_event(out, "error", &error.body());
}

fn usage_body(usage: Usage, cache: text::CacheTokens) -> UsageBody {
    UsageBody {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_read_input_tokens: cache.read,
        cache_write_input_tokens: cache.write,
    }
}
