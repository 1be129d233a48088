//! Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`, in
//! Anthropic's own shapes, so that the Anthropic SDKs (and the tools that speak the
//! Messages API) reach every text model the gateway routes: Claude through its own family,
//! every other family through the unified request, with the same quotas, retries,
//! fallbacks and metrics as every other API shape.
//!
//! The wire shapes are Anthropic's Messages API reference ("Messages", "Count Message
//! tokens", "Streaming Messages", "Errors"). Decisions:
//! - Auth: the gateway's key as `x-api-key` (what the SDKs send) or `Authorization: Bearer`
//!   (`auth.rs`). `anthropic-version` and `anthropic-beta` are accepted and not checked:
//!   the gateway speaks one version of the shapes, and no beta changes what it does [U:
//!   whether a beta a caller names should be refused].
//! - Request: `model` is an alias; `max_tokens` is required (as Anthropic requires it) and
//!   at least 1. `system` is a string or text blocks (joined by a blank line [U: Anthropic
//!   joins them with nothing between]); `messages` are `user` and `assistant` turns whose
//!   content is a string or blocks: `text`, `image` (`source.type: base64`, or `url`,
//!   fetched only from the origins the operator allows, else 422: `image_fetch.rs`; a
//!   `file` source is refused, 422),
//!   `document` (a base64 PDF or a `text/plain` text source; `title` is the unified part's
//!   name), `tool_use`, `tool_result` (string content or text blocks; images in a result
//!   are refused, 422). `thinking` and `redacted_thinking` blocks in the history are
//!   refused (422): the unified messages have no place for them, and dropping them would
//!   change what Claude sees. `cache_control` (`ephemeral`, TTL `5m`) on any block, system
//!   block or tool marks the request's `cache_prompt` (the family places its own
//!   breakpoints); a `1h` TTL is refused (422).
//! - `tools` are custom tools `{name, description, input_schema}` (`type: custom` too);
//!   Anthropic's server tools (a `type` such as `web_search_20250305`) are refused (422).
//!   `tool_choice` `{type: auto | any | tool (name) | none}`; `disable_parallel_tool_use`
//!   is accepted, the model decides how many calls it makes.
//! - `thinking: {type: enabled, budget_tokens}` asks for the model's reasoning
//!   (`reasoning: true`), returned as `thinking` blocks with an empty `signature` (the
//!   gateway has none to give). The budget is checked as Anthropic checks it (at least
//!   1024, below `max_tokens`), but the family sets its own (half of `max_tokens` for
//!   Claude): the unified request carries no budget.
//! - `metadata.user_id` is accepted and not forwarded. `stop_sequences`, `temperature`,
//!   `top_p`, `top_k` and `stream` map to the unified fields. Any other field is refused
//!   (400 `invalid_request_error` naming it), never dropped.
//! - Answer: `{id: msg_<hex>, type: message, role: assistant, model: <alias>, content:
//!   [thinking?, text?, tool_use...], stop_reason, stop_sequence, usage}`. A text block is
//!   there when there is text or no tool call. `stop_reason` is `end_turn`, `max_tokens`,
//!   `stop_sequence`, `tool_use` or `refusal` (a content filter); a reason the gateway does
//!   not know is `end_turn`. `stop_sequence` is the sequence when the request had exactly
//!   one (the unified answer does not say which matched), else null. `usage.input_tokens`
//!   leaves out the prompt-cache tokens, as Anthropic's and Bedrock's do, and
//!   `cache_read_input_tokens` / `cache_creation_input_tokens` are there when Bedrock
//!   reports them.
//! - Stream (SSE with `event:` names, each `data` carrying the same `type`):
//!   `message_start` (usage 0: Bedrock's input count comes at the end), then per block
//!   `content_block_start`, `content_block_delta`s (`text_delta`, `input_json_delta`,
//!   `thinking_delta`) and `content_block_stop`, then `message_delta` (stop reason, the
//!   whole usage) and `message_stop`. An answer with no block gets an empty text block, as
//!   the whole answer does. A failure after the start ends the stream with `event: error`
//!   in Anthropic's error shape.
//! - count_tokens: the same body without `max_tokens`, `stream`, `stop_sequences`,
//!   `temperature`, `top_p`, `top_k` and `metadata` (refused, as Anthropic's own endpoint
//!   takes none of them), checked against the family as the call would be, and answered
//!   `{input_tokens}` from Bedrock's CountTokens for the route's first target, sent the
//!   family's InvokeModel body (`converse::bedrock_count`), with
//!   `x-gateway-token-count-source: bedrock`; where the model does not count tokens or
//!   Bedrock cannot be reached in time, from the gateway's estimate
//!   (`content::estimate_input_tokens`: the request's text at four bytes a token, a fixed
//!   count per image), with `x-gateway-token-count-source: estimate`. Bedrock's other
//!   errors (throttling, access denied) are the answer, in Anthropic's error shape.
//! - Errors: `{"type": "error", "error": {"type", "message"}}` with the gateway's status;
//!   the type by status as Anthropic's "Errors" page lists them (`invalid_request_error`
//!   for every 4xx without its own, 422 included; `request_too_large` 413,
//!   `rate_limit_error` 429, `overloaded_error` 503 (Anthropic's is 529), `timeout_error`
//!   504, `api_error` for the other 5xx).

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use translator::{
    Content, IMAGE_MEDIA_TYPES, Message, Part, Role, StopReason, Tool, ToolChoice, UnifiedRequest,
    UnifiedResponse, Usage,
};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::sse::sse_event;
use crate::routes::text::{self, CacheTokens, StreamItem};
use crate::routes::{read_json_body, tag_target};

/// The routes of the Anthropic Messages API.
pub const PATHS: &[&str] = &["/v1/messages", "/v1/messages/count_tokens"];

/// An [`ApiError`] rendered in Anthropic's error shape, with the same status.
#[derive(Debug)]
pub struct AnthropicError(pub ApiError);

impl<E: Into<ApiError>> From<E> for AnthropicError {
    fn from(error: E) -> AnthropicError {
        AnthropicError(error.into())
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        self.0.response_with_body(error_body(&self.0))
    }
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
pub fn error_body(error: &ApiError) -> Value {
    json!({"type": "error", "error": {"type": error_kind(error), "message": error.public_message()}})
}

/// Anthropic's error `type` of an error, by its status (see the module docs).
fn error_kind(error: &ApiError) -> &'static str {
    match error.status().as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// A Messages request body (and, without the generation fields, a count_tokens body). The
/// OpenAPI document shows the string forms of `system` and `content`; the block forms are
/// Anthropic's (see the module docs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AnthropicMessagesRequest)]
pub struct MessagesRequest {
    /// A model alias of the gateway.
    model: String,
    /// Required by `/v1/messages`; refused by `/v1/messages/count_tokens`.
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1)]
    max_tokens: Option<u32>,
    /// A string, or `text` blocks.
    #[schema(value_type = Option<String>)]
    system: Option<BlockContent>,
    #[serde(deserialize_with = "crate::routes::parse::de_messages")]
    messages: Vec<InputMessage>,
    /// Custom tools `{name, description, input_schema}`.
    #[serde(default, deserialize_with = "crate::routes::parse::de_tools")]
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    tool_choice: Option<ToolChoiceBody>,
    #[serde(default, deserialize_with = "crate::routes::de_stop")]
    #[schema(value_type = Option<Vec<String>>)]
    stop_sequences: Option<Vec<String>>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    top_k: Option<u32>,
    stream: Option<bool>,
    metadata: Option<Metadata>,
    thinking: Option<ThinkingBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AnthropicMessage)]
struct InputMessage {
    #[schema(schema_with = message_role)]
    role: String,
    /// A string, or content blocks.
    #[schema(value_type = String)]
    content: BlockContent,
}

/// A message's `role`, for the OpenAPI document.
fn message_role() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["user", "assistant"]))
        .into()
}

/// A message's (or a tool result's, or the system prompt's) content: a string or blocks.
#[derive(Debug)]
enum BlockContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl<'de> Deserialize<'de> for BlockContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BlockContent, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BlockContent;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content blocks")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<BlockContent, E> {
                Ok(BlockContent::Text(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<BlockContent, E> {
                Ok(BlockContent::Text(text))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BlockContent, A::Error> {
                let mut blocks = Vec::new();
                while let Some(block) = seq.next_element::<ContentBlock>()? {
                    blocks.push(block);
                }
                Ok(BlockContent::Blocks(blocks))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One content block, every kind's fields in one struct (read without a value tree);
/// [`ContentBlock::check_fields`] refuses the fields of another kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    source: Option<MediaSource>,
    title: Option<String>,
    context: Option<String>,
    citations: Option<Value>,
    cache_control: Option<CacheControl>,
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
    tool_use_id: Option<String>,
    content: Option<BlockContent>,
    is_error: Option<bool>,
    thinking: Option<IgnoredAny>,
    signature: Option<IgnoredAny>,
    data: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaSource {
    #[serde(rename = "type")]
    kind: String,
    media_type: Option<String>,
    data: Option<String>,
    url: Option<String>,
    file_id: Option<String>,
    content: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: String,
    ttl: Option<String>,
}

/// A custom tool; server tools are refused before this is read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolDefinition {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    description: Option<String>,
    input_schema: Value,
    cache_control: Option<CacheControl>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AnthropicToolChoice)]
struct ToolChoiceBody {
    /// `auto`, `any`, `tool` (with `name`) or `none`.
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AnthropicMetadata)]
struct Metadata {
    user_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AnthropicThinking)]
struct ThinkingBody {
    /// `enabled` (with `budget_tokens`) or `disabled`.
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    budget_tokens: Option<u32>,
}

/// Claude's smallest thinking budget (Anthropic's "Extended thinking").
const MIN_THINKING_BUDGET: u32 = 1024;

/// Which endpoint a body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Messages,
    CountTokens,
}

#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "anthropic",
    request_body = MessagesRequest,
    responses(
        (status = 200, description = "A `message` object, or with `stream` Anthropic's events (`message_start` ... `message_stop`)",
            content(("application/json"), ("text/event-stream"))),
        (status = "4XX", description = "A refused request, in Anthropic's error shape"),
        (status = "5XX", description = "Bedrock or the gateway failed, in Anthropic's error shape"),
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, AnthropicError> {
    let bytes = read_json_body(request).await?;
    let body: MessagesRequest = parse(&bytes)?;
    drop(bytes);
    let route = text::text_route(&state, &body.model)?;
    let mut unified = unified_request(body, Endpoint::Messages)?;
    text::apply_defaults(route, &mut unified);
    let shape = Shape {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        model: route.alias.clone(),
        stop_sequence: match unified.stop.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        },
    };
    if !unified.stream {
        let done = text::complete(&state, &caller, route, unified, None).await?;
        let body = message_body(&shape, &done.answer, done.cache);
        return Ok(tag_target(axum::Json(body).into_response(), &done.target));
    }
    let stream = text::open_stream(&state, &caller, route, unified, None).await?;
    let target = stream.target.clone();
    let events = text::encoded_events(EventWriter::new(shape), stream);
    Ok(tag_target(crate::routes::sse::sse_response(Box::pin(events)), &target))
}

#[utoipa::path(
    post,
    path = "/v1/messages/count_tokens",
    tag = "anthropic",
    request_body(content = MessagesRequest, description = "A Messages request without `max_tokens`, `stream`, `stop_sequences`, `temperature`, `top_p`, `top_k` and `metadata`"),
    responses(
        (status = 200, description = "`{\"input_tokens\"}`: Bedrock's count (`x-gateway-token-count-source: bedrock`), or the gateway's estimate where the model does not count tokens or Bedrock is unreachable (`x-gateway-token-count-source: estimate`)"),
        (status = "4XX", description = "A refused request, in Anthropic's error shape"),
        (status = "5XX", description = "The gateway failed, in Anthropic's error shape"),
    )
)]
pub async fn count_tokens(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, AnthropicError> {
    let bytes = read_json_body(request).await?;
    let body: MessagesRequest = parse(&bytes)?;
    drop(bytes);
    let route = text::text_route(&state, &body.model)?;
    if let Some(key) = caller.key()
        && !key.allows(&route.alias)
    {
        return Err(AnthropicError(ApiError::Forbidden(format!(
            "the API key {:?} may not use model {:?}",
            key.name, route.alias
        ))));
    }
    let mut unified = unified_request(body, Endpoint::CountTokens)?;
    text::apply_defaults(route, &mut unified);
    let Some(target) = route.targets.first() else {
        return Err(AnthropicError(ApiError::Internal("a route without targets".into())));
    };
    let translator::FamilyRef::Text(family) = target.family else {
        return Err(AnthropicError(ApiError::Internal(
            "a text route without a text family".into(),
        )));
    };
    // What the family cannot take is refused here as the call would refuse it.
    let invoke_body = translator::encode_text_request(family, &unified)?;
    let estimate = crate::routes::content::estimate_input_tokens(&unified);
    let invoke_body = bytes::Bytes::from(invoke_body.to_string());
    let (tokens, source) =
        crate::routes::converse::bedrock_count(&state, target, invoke_body, estimate)
            .await
            .map_err(ApiError::Upstream)?;
    Ok(crate::routes::converse::count_response("input_tokens", tokens, source, target))
}

/// The body as `T`; a malformed one is a 400 saying where.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path.is_empty() || path == "." {
            ApiError::BadRequest(format!("invalid request body: {inner}"))
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("invalid request body: {error}")))?;
    Ok(parsed)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn unsupported(what: &str) -> ApiError {
    ApiError::Unsupported(format!("{what} is not supported by this gateway"))
}

/// At most 32 characters of a caller's value, for a message that echoes it.
fn shown(value: &str) -> String {
    value.chars().take(32).collect()
}

/// The unified request of a Messages (or count_tokens) body.
fn unified_request(
    request: MessagesRequest,
    endpoint: Endpoint,
) -> Result<UnifiedRequest, ApiError> {
    if endpoint == Endpoint::CountTokens {
        let generation_fields = [
            ("max_tokens", request.max_tokens.is_some()),
            ("stream", request.stream.is_some()),
            ("stop_sequences", request.stop_sequences.is_some()),
            ("temperature", request.temperature.is_some()),
            ("top_p", request.top_p.is_some()),
            ("top_k", request.top_k.is_some()),
            ("metadata", request.metadata.is_some()),
        ];
        if let Some((field, _)) = generation_fields.iter().find(|(_, set)| *set) {
            return Err(bad(format!("{field}: Extra inputs are not permitted")));
        }
    } else {
        match request.max_tokens {
            None => return Err(bad("max_tokens: Field required")),
            Some(0) => return Err(bad("max_tokens: must be at least 1")),
            Some(_) => {}
        }
    }
    let _ = request.metadata.map(|metadata| metadata.user_id);
    let mut unified = UnifiedRequest {
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop_sequences.unwrap_or_default(),
        stream: request.stream.unwrap_or(false),
        ..UnifiedRequest::default()
    };
    if let Some(system) = request.system {
        let text = system_text(system, &mut unified.cache_prompt)?;
        unified.messages.push(Message::text(Role::System, text));
    }
    if request.messages.is_empty() {
        return Err(bad("messages: at least one message is required"));
    }
    for (i, message) in request.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(bad(format!(
                    "messages[{i}].role: {:?} is not one of user, assistant (the system \
                     prompt is the top-level `system` field)",
                    shown(other)
                )));
            }
        };
        let content = match message.content {
            BlockContent::Text(text) => Content::Text(text),
            BlockContent::Blocks(blocks) => {
                if blocks.is_empty() {
                    return Err(bad(format!(
                        "messages[{i}].content: at least one block is required"
                    )));
                }
                let mut parts = Vec::with_capacity(blocks.len());
                for (j, block) in blocks.into_iter().enumerate() {
                    let at = format!("messages[{i}].content[{j}]");
                    parts.push(content_part(block, &at, &mut unified.cache_prompt)?);
                }
                // A message of one text block is plain text: the text-only families take it.
                match parts.pop() {
                    Some(Part::Text { text }) if parts.is_empty() => Content::Text(text),
                    Some(last) => {
                        parts.push(last);
                        Content::Parts(parts)
                    }
                    None => Content::Parts(parts),
                }
            }
        };
        unified.messages.push(Message { role, content });
    }
    for (i, tool) in request.tools.unwrap_or_default().into_iter().enumerate() {
        unified.tools.push(convert_tool(tool, i, &mut unified.cache_prompt)?);
    }
    unified.tool_choice = request.tool_choice.map(convert_tool_choice).transpose()?;
    if let Some(thinking) = request.thinking {
        unified.reasoning = match (thinking.kind.as_str(), thinking.budget_tokens) {
            ("disabled", _) => false,
            ("enabled", None) => return Err(bad("thinking.budget_tokens: Field required")),
            ("enabled", Some(budget)) if budget < MIN_THINKING_BUDGET => {
                return Err(bad(format!(
                    "thinking.budget_tokens: must be at least {MIN_THINKING_BUDGET}"
                )));
            }
            ("enabled", Some(budget)) if request.max_tokens.is_some_and(|max| budget >= max) => {
                return Err(bad("thinking.budget_tokens: must be less than max_tokens"));
            }
            ("enabled", Some(_)) => true,
            (other, _) => {
                return Err(bad(format!(
                    "thinking.type: {:?} is not one of enabled, disabled",
                    shown(other)
                )));
            }
        };
    }
    Ok(unified)
}

/// The system prompt's text: a string, or text blocks joined by a blank line.
fn system_text(system: BlockContent, cache_prompt: &mut bool) -> Result<String, ApiError> {
    let blocks = match system {
        BlockContent::Text(text) => return Ok(text),
        BlockContent::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::with_capacity(blocks.len());
    for (i, block) in blocks.into_iter().enumerate() {
        let at = format!("system[{i}]");
        if block.kind != "text" {
            return Err(bad(format!("{at}: the system prompt takes `text` blocks only")));
        }
        match content_part(block, &at, cache_prompt)? {
            Part::Text { text } => texts.push(text),
            _ => return Err(bad(format!("{at}: the system prompt takes `text` blocks only"))),
        }
    }
    Ok(texts.join("\n\n"))
}

/// The fields of a block each kind takes, besides `type`.
fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "text" => &["text", "citations", "cache_control"],
        "image" => &["source", "cache_control"],
        "document" => &["source", "title", "context", "citations", "cache_control"],
        "tool_use" => &["id", "name", "input", "cache_control"],
        "tool_result" => &["tool_use_id", "content", "is_error", "cache_control"],
        "thinking" => &["thinking", "signature"],
        "redacted_thinking" => &["data"],
        _ => return None,
    })
}

impl ContentBlock {
    /// The names of the fields set (not null), besides `type`.
    fn set_fields(&self) -> impl Iterator<Item = &'static str> {
        [
            ("text", self.text.is_some()),
            ("source", self.source.is_some()),
            ("title", self.title.is_some()),
            ("context", self.context.is_some()),
            ("citations", self.citations.is_some()),
            ("cache_control", self.cache_control.is_some()),
            ("id", self.id.is_some()),
            ("name", self.name.is_some()),
            ("input", self.input.is_some()),
            ("tool_use_id", self.tool_use_id.is_some()),
            ("content", self.content.is_some()),
            ("is_error", self.is_error.is_some()),
            ("thinking", self.thinking.is_some()),
            ("signature", self.signature.is_some()),
            ("data", self.data.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
    }

    /// Refuses an unknown kind, and a field of another kind.
    fn check_fields(&self, at: &str) -> Result<(), ApiError> {
        let Some(allowed) = allowed_fields(&self.kind) else {
            return Err(bad(format!(
                "{at}.type: {:?} is not one of text, image, document, tool_use, tool_result",
                shown(&self.kind)
            )));
        };
        match self.set_fields().find(|field| !allowed.contains(field)) {
            Some(field) => Err(bad(format!(
                "{at}.{field}: Extra inputs are not permitted (in a `{}` block)",
                self.kind
            ))),
            None => Ok(()),
        }
    }
}

/// Marks the request's prompt cache for a block's `cache_control`.
fn read_cache_control(
    cache_control: Option<CacheControl>,
    at: &str,
    cache_prompt: &mut bool,
) -> Result<(), ApiError> {
    let Some(cache_control) = cache_control else {
        return Ok(());
    };
    if cache_control.kind != "ephemeral" {
        return Err(bad(format!(
            "{at}.cache_control.type: {:?} is not `ephemeral`",
            shown(&cache_control.kind)
        )));
    }
    match cache_control.ttl.as_deref() {
        None | Some("5m") => {}
        Some("1h") => return Err(unsupported("a `cache_control.ttl` of 1h")),
        Some(other) => {
            return Err(bad(format!(
                "{at}.cache_control.ttl: {:?} is not one of 5m, 1h",
                shown(other)
            )));
        }
    }
    *cache_prompt = true;
    Ok(())
}

/// The unified part of one content block.
fn content_part(block: ContentBlock, at: &str, cache_prompt: &mut bool) -> Result<Part, ApiError> {
    block.check_fields(at)?;
    read_cache_control(block.cache_control, at, cache_prompt)?;
    let required = |field: &str| bad(format!("{at}.{field}: Field required"));
    match block.kind.as_str() {
        "text" => {
            if block.citations.is_some() {
                return Err(unsupported("citations in a `text` block"));
            }
            Ok(Part::Text { text: block.text.ok_or_else(|| required("text"))? })
        }
        "image" => {
            let source = block.source.ok_or_else(|| required("source"))?;
            image_part(source, &format!("{at}.source"))
        }
        "document" => {
            let source = block.source.ok_or_else(|| required("source"))?;
            if block.context.is_some() {
                return Err(unsupported("a document's `context`"));
            }
            if block
                .citations
                .as_ref()
                .is_some_and(|c| c.get("enabled") != Some(&Value::Bool(false)))
            {
                return Err(unsupported("citations on a document"));
            }
            document_part(source, block.title.unwrap_or_default(), &format!("{at}.source"))
        }
        "tool_use" => {
            let input = block.input.ok_or_else(|| required("input"))?;
            if !input.is_object() {
                return Err(bad(format!("{at}.input: must be an object")));
            }
            Ok(Part::ToolUse {
                id: block.id.ok_or_else(|| required("id"))?,
                name: block.name.ok_or_else(|| required("name"))?,
                input,
            })
        }
        "tool_result" => {
            let tool_use_id = block.tool_use_id.ok_or_else(|| required("tool_use_id"))?;
            let content = match block.content {
                None => String::new(),
                Some(BlockContent::Text(text)) => text,
                Some(BlockContent::Blocks(blocks)) => {
                    let mut texts = Vec::with_capacity(blocks.len());
                    for (k, inner) in blocks.into_iter().enumerate() {
                        let inner_at = format!("{at}.content[{k}]");
                        if inner.kind != "text" {
                            inner.check_fields(&inner_at)?;
                            return Err(unsupported(&format!(
                                "`{}` blocks in a tool result",
                                inner.kind
                            )));
                        }
                        match content_part(inner, &inner_at, cache_prompt)? {
                            Part::Text { text } => texts.push(text),
                            _ => return Err(unsupported("non-text blocks in a tool result")),
                        }
                    }
                    texts.join("\n")
                }
            };
            Ok(Part::ToolResult { tool_use_id, content, is_error: block.is_error.unwrap_or(false) })
        }
        // `thinking` and `redacted_thinking`.
        kind => Err(unsupported(&format!(
            "`{kind}` blocks in the messages (the gateway cannot send them back to the model; \
             leave them out of the history)"
        ))),
    }
}

/// An image part of a `base64` source; a `url` or `file` source is refused.
fn image_part(source: MediaSource, at: &str) -> Result<Part, ApiError> {
    match source.kind.as_str() {
        "base64" => {
            let media_type =
                source.media_type.ok_or_else(|| bad(format!("{at}.media_type: Field required")))?;
            let media_type = media_type.to_ascii_lowercase();
            if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
                return Err(bad(format!(
                    "{at}.media_type: {:?} is not one of {}",
                    shown(&media_type),
                    IMAGE_MEDIA_TYPES.join(", ")
                )));
            }
            if source.url.is_some() || source.file_id.is_some() || source.content.is_some() {
                return Err(bad(format!("{at}: a `base64` source takes `media_type` and `data`")));
            }
            let data = source.data.ok_or_else(|| bad(format!("{at}.data: Field required")))?;
            crate::routes::content::check_base64(&data, &format!("{at}.data"))?;
            Ok(Part::Image { media_type, data })
        }
        "url" => {
            // Fetched from the origins the operator allows, else refused (`image_fetch.rs`).
            let url = source.url.ok_or_else(|| bad(format!("{at}.url: Field required")))?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(bad(format!("{at}.url: an http:// or https:// URL")));
            }
            crate::routes::content::image_from_url(&url)
        }
        "file" => Err(unsupported("`file` sources (the Files API)")),
        other => Err(bad(format!("{at}.type: {:?} is not one of base64, url", shown(other)))),
    }
}

/// A document part of a base64 PDF or a plain-text source.
fn document_part(source: MediaSource, name: String, at: &str) -> Result<Part, ApiError> {
    let extra = source.url.is_some() || source.file_id.is_some() || source.content.is_some();
    match (source.kind.as_str(), source.media_type.as_deref()) {
        ("base64" | "text", _) if extra => {
            Err(bad(format!("{at}: this source takes `media_type` and `data`")))
        }
        ("base64", Some("application/pdf")) => {
            let data = source.data.ok_or_else(|| bad(format!("{at}.data: Field required")))?;
            crate::routes::content::check_base64(&data, &format!("{at}.data"))?;
            Ok(Part::Document { format: "pdf".to_owned(), name, data })
        }
        ("text", Some("text/plain")) => {
            let text = source.data.ok_or_else(|| bad(format!("{at}.data: Field required")))?;
            let data = base64::engine::general_purpose::STANDARD.encode(text);
            Ok(Part::Document { format: "txt".to_owned(), name, data })
        }
        ("base64", _) => {
            Err(bad(format!("{at}.media_type: a `base64` document is application/pdf")))
        }
        ("text", _) => Err(bad(format!("{at}.media_type: a `text` document is text/plain"))),
        ("url" | "file" | "content", _) => {
            Err(unsupported(&format!("document `{}` sources", source.kind)))
        }
        (other, _) => Err(bad(format!("{at}.type: {:?} is not one of base64, text", shown(other)))),
    }
}

/// A custom tool; a server tool (another `type`) is refused.
fn convert_tool(tool: Value, i: usize, cache_prompt: &mut bool) -> Result<Tool, ApiError> {
    let at = format!("tools[{i}]");
    if let Some(kind) = tool.get("type").filter(|kind| !kind.is_null())
        && kind.as_str() != Some("custom")
    {
        let kind = kind.as_str().map_or_else(|| kind.to_string(), str::to_owned);
        return Err(unsupported(&format!(
            "Anthropic's server tools (`{at}.type` {:?})",
            shown(&kind)
        )));
    }
    let tool: ToolDefinition =
        serde_json::from_value(tool).map_err(|error| bad(format!("{at}: {error}")))?;
    let _ = tool.kind;
    read_cache_control(tool.cache_control, &at, cache_prompt)?;
    Ok(Tool { name: tool.name, description: tool.description, parameters: tool.input_schema })
}

fn convert_tool_choice(choice: ToolChoiceBody) -> Result<ToolChoice, ApiError> {
    let _ = choice.disable_parallel_tool_use;
    match (choice.kind.as_str(), choice.name) {
        ("auto", None) => Ok(ToolChoice::Auto),
        ("any", None) => Ok(ToolChoice::Required),
        ("none", None) => Ok(ToolChoice::None),
        ("tool", Some(name)) => Ok(ToolChoice::Tool(name)),
        ("tool", None) => Err(bad("tool_choice.name: Field required")),
        ("auto" | "any" | "none", Some(_)) => {
            Err(bad("tool_choice.name: Extra inputs are not permitted"))
        }
        (other, _) => Err(bad(format!(
            "tool_choice.type: {:?} is not one of auto, any, tool, none",
            shown(other)
        ))),
    }
}

/// What the answers of one request share.
#[derive(Debug, Clone)]
struct Shape {
    id: String,
    model: String,
    /// The request's stop sequence, when it had exactly one.
    stop_sequence: Option<String>,
}

impl Shape {
    fn stop_sequence(&self, stop_reason: StopReason) -> Value {
        match (&self.stop_sequence, stop_reason) {
            (Some(sequence), StopReason::StopSequence) => Value::from(sequence.as_str()),
            _ => Value::Null,
        }
    }
}

/// Anthropic's `stop_reason` of a unified stop reason.
fn stop_reason(stop_reason: StopReason) -> &'static str {
    match stop_reason {
        StopReason::EndTurn | StopReason::Other => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
    }
}

/// Anthropic's `usage`: the input tokens without the prompt-cache tokens, and the cache
/// counts where Bedrock gives them.
fn usage_body(usage: Usage, cache: CacheTokens) -> Value {
    let mut body = json!({
        "input_tokens": usage.input_tokens.unwrap_or(0),
        "output_tokens": usage.output_tokens.unwrap_or(0),
    });
    if let Some(read) = cache.read {
        body["cache_read_input_tokens"] = read.into();
    }
    if let Some(write) = cache.write {
        body["cache_creation_input_tokens"] = write.into();
    }
    body
}

/// The whole `message` answer.
fn message_body(shape: &Shape, answer: &UnifiedResponse, cache: CacheTokens) -> Value {
    let mut content = Vec::new();
    if let Some(reasoning) = &answer.reasoning {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": answer.text}));
    }
    for call in &answer.tool_calls {
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name,
                            "input": call.input}));
    }
    json!({
        "id": shape.id,
        "type": "message",
        "role": "assistant",
        "model": shape.model,
        "content": content,
        "stop_reason": stop_reason(answer.stop_reason),
        "stop_sequence": shape.stop_sequence(answer.stop_reason),
        "usage": usage_body(answer.usage, cache),
    })
}

/// The content block a stream is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    /// A tool call, by its index among the answer's calls.
    Tool(u32),
}

/// The block state machine of a stream: the open block and its index, the next index.
#[derive(Debug)]
struct EventWriter {
    shape: Shape,
    open: Option<(Block, u32)>,
    next_index: u32,
}

impl text::ItemEncoder for EventWriter {
    fn start(&mut self, out: &mut Vec<u8>) {
        EventWriter::start(self, out);
    }

    fn item(&mut self, out: &mut Vec<u8>, item: StreamItem) -> bool {
        self.write(out, item)
    }
}

impl EventWriter {
    fn new(shape: Shape) -> EventWriter {
        EventWriter { shape, open: None, next_index: 0 }
    }

    /// `message_start`.
    fn start(&self, out: &mut Vec<u8>) {
        let message = json!({
            "id": self.shape.id,
            "type": "message",
            "role": "assistant",
            "model": self.shape.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        });
        sse_event(out, "message_start", &json!({"type": "message_start", "message": message}));
    }

    /// The events of one stream item; whether the stream ends with it.
    fn write(&mut self, out: &mut Vec<u8>, item: StreamItem) -> bool {
        match item {
            StreamItem::Reasoning(thinking) => {
                let index = self.enter(
                    out,
                    Block::Thinking,
                    || json!({"type": "thinking", "thinking": "", "signature": ""}),
                );
                let delta = json!({"type": "thinking_delta", "thinking": thinking});
                block_delta(out, index, delta);
            }
            StreamItem::Delta(text) => {
                let index = self.enter(out, Block::Text, || json!({"type": "text", "text": ""}));
                block_delta(out, index, json!({"type": "text_delta", "text": text}));
            }
            StreamItem::ToolCall(call) => {
                let (id, name) = (call.id.unwrap_or_default(), call.name.unwrap_or_default());
                let index = self.enter(
                    out,
                    Block::Tool(call.index),
                    || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
                if !call.arguments.is_empty() {
                    let delta = json!({"type": "input_json_delta", "partial_json": call.arguments});
                    block_delta(out, index, delta);
                }
            }
            StreamItem::Done { stop_reason: reason, usage, cache } => {
                if self.next_index == 0 {
                    self.enter(out, Block::Text, || json!({"type": "text", "text": ""}));
                }
                self.close(out);
                let delta = json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason(reason),
                              "stop_sequence": self.shape.stop_sequence(reason)},
                    "usage": usage_body(usage, cache),
                });
                sse_event(out, "message_delta", &delta);
                sse_event(out, "message_stop", &json!({"type": "message_stop"}));
                return true;
            }
            StreamItem::Failed(error) => {
                error.log_stream_failure();
                sse_event(out, "error", &error_body(&error));
                return true;
            }
        }
        false
    }

    /// Makes `block` the open one: closes another, opens it (`content_block_start` with
    /// `start()`) at the next index.
    fn enter(&mut self, out: &mut Vec<u8>, block: Block, start: impl FnOnce() -> Value) -> u32 {
        if let Some((open, index)) = self.open {
            if open == block {
                return index;
            }
            self.close(out);
        }
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        let event =
            json!({"type": "content_block_start", "index": index, "content_block": start()});
        sse_event(out, "content_block_start", &event);
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            let event = json!({"type": "content_block_stop", "index": index});
            sse_event(out, "content_block_stop", &event);
        }
    }
}

fn block_delta(out: &mut Vec<u8>, index: u32, delta: Value) {
    let event = json!({"type": "content_block_delta", "index": index, "delta": delta});
    sse_event(out, "content_block_delta", &event);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<UnifiedRequest, ApiError> {
        let request: MessagesRequest = parse(body.to_string().as_bytes())?;
        unified_request(request, Endpoint::Messages)
    }

    fn shape() -> Shape {
        Shape { id: "msg_1".to_owned(), model: "claude-3-haiku".to_owned(), stop_sequence: None }
    }

    #[test]
    fn a_tool_round_trip_with_an_image_reads_into_the_unified_request() {
        let unified = read(json!({
            "model": "claude-3-haiku",
            "max_tokens": 300,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Use tools."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": "iVBORw0KGgo="}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look.", "citations": null},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather",
                     "input": {"city": "Oslo"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1",
                     "content": [{"type": "text", "text": "3 C"}, {"type": "text", "text": "wind"}],
                     "is_error": true},
                ]},
                {"role": "assistant", "content": "It is"},
            ],
            "tools": [{"name": "weather", "description": "Looks it up",
                       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 40,
            "metadata": {"user_id": "u-1"},
        }))
        .unwrap();
        let expected = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "Be brief.\n\nUse tools."),
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![
                        Part::Text { text: "Weather here?".to_owned() },
                        Part::Image {
                            media_type: "image/png".to_owned(),
                            data: "iVBORw0KGgo=".to_owned(),
                        },
                    ]),
                },
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![
                        Part::Text { text: "Let me look.".to_owned() },
                        Part::ToolUse {
                            id: "toolu_1".to_owned(),
                            name: "weather".to_owned(),
                            input: json!({"city": "Oslo"}),
                        },
                    ]),
                },
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![Part::ToolResult {
                        tool_use_id: "toolu_1".to_owned(),
                        content: "3 C\nwind".to_owned(),
                        is_error: true,
                    }]),
                },
                Message::text(Role::Assistant, "It is"),
            ],
            max_tokens: Some(300),
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(40),
            stop: vec!["END".to_owned()],
            cache_prompt: true,
            tools: vec![Tool {
                name: "weather".to_owned(),
                description: Some("Looks it up".to_owned()),
                parameters: json!({"type": "object",
                                   "properties": {"city": {"type": "string"}}}),
            }],
            tool_choice: Some(ToolChoice::Required),
            ..UnifiedRequest::default()
        };
        assert_eq!(unified, expected);
    }

    #[test]
    fn documents_thinking_and_tool_choices_map_to_their_unified_fields() {
        let unified = read(json!({
            "model": "m", "max_tokens": 4000, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "messages": [{"role": "user", "content": [
                {"type": "document", "title": "a.pdf",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                "data": "hi"}},
            ]}],
            "tools": [{"type": "custom", "name": "t", "input_schema": {"type": "object"},
                       "cache_control": {"type": "ephemeral", "ttl": "5m"}}],
            "tool_choice": {"type": "tool", "name": "t"},
        }))
        .unwrap();
        assert_eq!(
            unified.messages[0].content,
            Content::Parts(vec![
                Part::Document {
                    format: "pdf".to_owned(),
                    name: "a.pdf".to_owned(),
                    data: "JVBERi0=".to_owned(),
                },
                Part::Document {
                    format: "txt".to_owned(),
                    name: String::new(),
                    data: "aGk=".to_owned()
                },
            ])
        );
        assert!(unified.reasoning && unified.stream && unified.cache_prompt);
        assert_eq!(unified.tool_choice, Some(ToolChoice::Tool("t".to_owned())));
        for (choice, expected) in [("auto", ToolChoice::Auto), ("none", ToolChoice::None)] {
            let unified =
                read(json!({"model": "m", "max_tokens": 5, "tool_choice": {"type": choice},
                                      "messages": [{"role": "user", "content": "a"}]}))
                .unwrap();
            assert_eq!(unified.tool_choice, Some(expected));
            assert_eq!(unified.messages, vec![Message::text(Role::User, "a")]);
        }
    }

    #[test]
    fn what_the_gateway_cannot_take_is_refused_naming_it() {
        let user = |content: Value| json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
        let with = |field: &str, value: Value| {
            let mut body = user(json!("a"));
            body[field] = value;
            body
        };
        let image = |source: Value| user(json!([{"type": "image", "source": source}]));
        for (body, status, named) in [
            (with("service_tier", json!("auto")), 400, "unknown field `service_tier`"),
            (with("max_tokens", Value::Null), 400, "max_tokens: Field required"),
            (with("max_tokens", json!(0)), 400, "max_tokens"),
            (with("max_tokens", json!("x")), 400, "max_tokens"),
            (with("messages", json!([])), 400, "messages"),
            (with("thinking", json!({"type": "enabled"})), 400, "budget_tokens"),
            (with("thinking", json!({"type": "enabled", "budget_tokens": 10})), 400, "1024"),
            (with("tool_choice", json!({"type": "tool"})), 400, "tool_choice.name"),
            (with("tool_choice", json!({"type": "sometimes"})), 400, "tool_choice.type"),
            (
                with(
                    "tools",
                    json!([{"type": "web_search_20250305", "name": "web_search",
                                   "max_uses": 5}]),
                ),
                422,
                "server tools",
            ),
            (
                with("tools", json!([{"name": "t", "input_schema": {}, "strict": true}])),
                400,
                "tools[0]: unknown field `strict`",
            ),
            (
                json!({"model": "m", "max_tokens": 5,
                    "messages": [{"role": "system", "content": "a"}]}),
                400,
                "messages[0].role",
            ),
            (user(json!([])), 400, "at least one block"),
            (
                user(json!([{"type": "thinking", "thinking": "hm", "signature": "s"}])),
                422,
                "thinking",
            ),
            (user(json!([{"type": "redacted_thinking", "data": "x"}])), 422, "redacted_thinking"),
            (user(json!([{"type": "server_tool_use"}])), 400, "messages[0].content[0].type"),
            (
                user(json!([{"type": "text", "text": "a", "source": {"type": "base64"}}])),
                400,
                "messages[0].content[0].source",
            ),
            (
                user(json!([{"type": "text", "text": "a", "brand_new": 1}])),
                400,
                "unknown field `brand_new`",
            ),
            (user(json!([{"type": "text"}])), 400, "messages[0].content[0].text: Field required"),
            (
                user(json!([{"type": "text", "text": "a",
                          "cache_control": {"type": "ephemeral", "ttl": "1h"}}])),
                422,
                "1h",
            ),
            (image(json!({"type": "url", "url": "ftp://example.com/cat.png"})), 400, "url"),
            (image(json!({"type": "file", "file_id": "f"})), 422, "file"),
            (
                image(json!({"type": "base64", "media_type": "image/tiff", "data": "AAAA"})),
                400,
                "image/tiff",
            ),
            (
                image(json!({"type": "base64", "media_type": "image/png", "data": "@@"})),
                400,
                "base64",
            ),
            (
                user(json!([{"type": "document", "source": {"type": "base64",
                          "media_type": "text/plain", "data": "AAAA"}}])),
                400,
                "application/pdf",
            ),
            (
                user(json!([{"type": "tool_result", "tool_use_id": "t",
                          "content": [{"type": "image", "source": {"type": "base64"}}]}])),
                422,
                "`image` blocks in a tool result",
            ),
            (
                user(json!([{"type": "tool_use", "id": "t", "name": "n", "input": [1]}])),
                400,
                "input: must be an object",
            ),
        ] {
            let error = read(body.clone()).unwrap_err();
            assert_eq!(error.status().as_u16(), status, "{body}: {error}");
            assert!(error.to_string().contains(named), "{body}: {error}");
        }
    }

    #[test]
    fn count_tokens_takes_the_body_without_the_generation_fields() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "a"}],
                          "system": "s", "tools": [{"name": "t", "input_schema": {"type": "object"}}]});
        let request: MessagesRequest = parse(body.to_string().as_bytes()).unwrap();
        let unified = unified_request(request, Endpoint::CountTokens).unwrap();
        assert_eq!(unified.messages.len(), 2);
        assert_eq!(unified.max_tokens, None);
        for field in ["max_tokens", "stream", "temperature", "stop_sequences"] {
            let mut body = body.clone();
            body[field] = if field == "stream" { json!(true) } else { json!(["x"]) };
            if field == "max_tokens" || field == "temperature" {
                body[field] = json!(1);
            }
            let request: MessagesRequest = parse(body.to_string().as_bytes()).unwrap();
            let error = unified_request(request, Endpoint::CountTokens).unwrap_err();
            assert_eq!(error.to_string(), format!("{field}: Extra inputs are not permitted"));
        }
    }

    #[test]
    fn answers_take_anthropic_s_shape() {
        let answer = UnifiedResponse {
            text: "Calling.".to_owned(),
            stop_reason: StopReason::ToolUse,
            usage: Usage { input_tokens: Some(10), output_tokens: Some(4) },
            tool_calls: vec![translator::ToolCall {
                id: "toolu_1".to_owned(),
                name: "weather".to_owned(),
                input: json!({"city": "Oslo"}),
            }],
            reasoning: Some("hm".to_owned()),
        };
        let cache = CacheTokens { read: Some(2), write: Some(3) };
        assert_eq!(
            message_body(&shape(), &answer, cache),
            json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-haiku",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": ""},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather",
                     "input": {"city": "Oslo"}},
                ],
                "stop_reason": "tool_use",
                "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 2,
                          "cache_creation_input_tokens": 3},
            })
        );
        let stopped = UnifiedResponse {
            text: "a".to_owned(),
            stop_reason: StopReason::StopSequence,
            ..UnifiedResponse::default()
        };
        let one_stop = Shape { stop_sequence: Some("END".to_owned()), ..shape() };
        let body = message_body(&one_stop, &stopped, CacheTokens::default());
        assert_eq!(
            (&body["stop_reason"], &body["stop_sequence"], &body["usage"]),
            (
                &json!("stop_sequence"),
                &json!("END"),
                &json!({"input_tokens": 0, "output_tokens": 0})
            )
        );
        let only_call = UnifiedResponse { text: String::new(), ..answer };
        let body = message_body(&shape(), &only_call, CacheTokens::default());
        assert_eq!(body["content"][1]["type"], "tool_use");
        assert_eq!(body["content"].as_array().unwrap().len(), 2);
        let filtered = UnifiedResponse {
            stop_reason: StopReason::ContentFilter,
            ..UnifiedResponse::default()
        };
        let body = message_body(&shape(), &filtered, CacheTokens::default());
        assert_eq!(
            (&body["stop_reason"], &body["content"]),
            (&json!("refusal"), &json!([{"type": "text", "text": ""}]))
        );
    }

    /// The `(event, data)` pairs of SSE text, each data's `type` checked against its event.
    fn events(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).unwrap();
        text.split_terminator("\n\n")
            .map(|block| {
                let (event, data) = block.split_once('\n').unwrap();
                let event = event.strip_prefix("event: ").unwrap().to_owned();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], if event == "error" { "error" } else { event.as_str() });
                (event, data)
            })
            .collect()
    }

    #[test]
    fn a_stream_opens_and_closes_each_block_in_turn() {
        let mut writer = EventWriter::new(shape());
        let mut out = Vec::new();
        writer.start(&mut out);
        let call = |id: Option<&str>, arguments: &str| {
            StreamItem::ToolCall(translator::ToolCallDelta {
                index: 0,
                id: id.map(str::to_owned),
                name: id.map(|_| "weather".to_owned()),
                arguments: arguments.to_owned(),
            })
        };
        for item in [
            StreamItem::Reasoning("hm".to_owned()),
            StreamItem::Delta("Let ".to_owned()),
            StreamItem::Delta("me.".to_owned()),
            call(Some("toolu_1"), ""),
            call(None, "{\"city\":"),
            call(None, "\"Oslo\"}"),
        ] {
            assert!(!writer.write(&mut out, item));
        }
        let done = StreamItem::Done {
            stop_reason: StopReason::ToolUse,
            usage: Usage { input_tokens: Some(12), output_tokens: Some(7) },
            cache: CacheTokens { read: Some(1), write: None },
        };
        assert!(writer.write(&mut out, done));
        let start = |index: u32, block: Value| {
            (
                "content_block_start".to_owned(),
                json!({"type": "content_block_start", "index": index, "content_block": block}),
            )
        };
        let delta = |index: u32, delta: Value| {
            (
                "content_block_delta".to_owned(),
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            )
        };
        let stop = |index: u32| {
            ("content_block_stop".to_owned(), json!({"type": "content_block_stop", "index": index}))
        };
        assert_eq!(
            events(&out),
            vec![
                (
                    "message_start".to_owned(),
                    json!({"type": "message_start", "message": {
                    "id": "msg_1", "type": "message", "role": "assistant",
                    "model": "claude-3-haiku", "content": [], "stop_reason": null,
                    "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}})
                ),
                start(0, json!({"type": "thinking", "thinking": "", "signature": ""})),
                delta(0, json!({"type": "thinking_delta", "thinking": "hm"})),
                stop(0),
                start(1, json!({"type": "text", "text": ""})),
                delta(1, json!({"type": "text_delta", "text": "Let "})),
                delta(1, json!({"type": "text_delta", "text": "me."})),
                stop(1),
                start(
                    2,
                    json!({"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}})
                ),
                delta(2, json!({"type": "input_json_delta", "partial_json": "{\"city\":"})),
                delta(2, json!({"type": "input_json_delta", "partial_json": "\"Oslo\"}"})),
                stop(2),
                (
                    "message_delta".to_owned(),
                    json!({"type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                    "usage": {"input_tokens": 12, "output_tokens": 7,
                              "cache_read_input_tokens": 1}})
                ),
                ("message_stop".to_owned(), json!({"type": "message_stop"})),
            ]
        );
    }

    #[test]
    fn an_empty_stream_has_an_empty_text_block_and_a_failure_ends_with_an_error_event() {
        let mut writer = EventWriter::new(shape());
        let mut out = Vec::new();
        let done = StreamItem::Done {
            stop_reason: StopReason::EndTurn,
            usage: Usage::default(),
            cache: CacheTokens::default(),
        };
        assert!(writer.write(&mut out, done));
        let names: Vec<String> = events(&out).into_iter().map(|(event, _)| event).collect();
        assert_eq!(
            names,
            ["content_block_start", "content_block_stop", "message_delta", "message_stop"]
        );

        let mut writer = EventWriter::new(shape());
        let mut out = Vec::new();
        assert!(!writer.write(&mut out, StreamItem::Delta("a".to_owned())));
        assert!(writer.write(&mut out, StreamItem::Failed(ApiError::ShuttingDown)));
        let last = events(&out).pop().unwrap();
        assert_eq!(
            last,
            (
                "error".to_owned(),
                json!({"type": "error", "error": {
                "type": "overloaded_error", "message": "the gateway is shutting down"}})
            )
        );
    }

    #[test]
    fn errors_take_anthropic_s_shape_and_keep_their_status() {
        for (error, status, kind) in [
            (ApiError::BadRequest("bad".into()), 400, "invalid_request_error"),
            (ApiError::Unsupported("no".into()), 422, "invalid_request_error"),
            (ApiError::Unauthenticated("who".into()), 401, "authentication_error"),
            (ApiError::Forbidden("not you".into()), 403, "permission_error"),
            (ApiError::UnknownModel("x".into()), 404, "not_found_error"),
            (ApiError::MethodNotAllowed, 405, "invalid_request_error"),
            (ApiError::PayloadTooLarge(10), 413, "request_too_large"),
            (
                ApiError::RateLimited { message: "slow".into(), retry_after: None },
                429,
                "rate_limit_error",
            ),
            (ApiError::Overloaded("busy".into()), 503, "overloaded_error"),
            (ApiError::Upstream(crate::upstream::UpstreamError::Timeout), 504, "timeout_error"),
            (ApiError::MalformedUpstream("x".into()), 502, "api_error"),
            (ApiError::Internal("bug".into()), 500, "api_error"),
        ] {
            assert_eq!(error.status().as_u16(), status, "{error}");
            assert_eq!(
                error_body(&error),
                json!({"type": "error", "error": {"type": kind, "message": error.public_message()}})
            );
        }
        let response = AnthropicError(ApiError::UnknownModel("nope".into())).into_response();
        assert_eq!(response.status().as_u16(), 404);
    }
}
