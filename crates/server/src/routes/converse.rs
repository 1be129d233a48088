//! Bedrock's Converse API on the Bedrock-native routes: `POST /model/{modelId}/converse`,
//! `/converse-stream` and `/count-tokens`, in Bedrock's own wire format, so that boto3's and
//! every AWS SDK's `converse`, `converse_stream` and `count_tokens` work against the gateway.
//!
//! The gateway does not forward to Bedrock's Converse: it reads the Converse request into the
//! unified request, sends the model family's own InvokeModel body through the pipeline
//! (quotas, retries, fallbacks, metrics, like every other API shape), and writes the answer
//! back in Converse's shape. So a Converse call costs the same quotas as any other call and a
//! Converse caller reaches every family the gateway speaks.
//!
//! - Content blocks: `text`, `image` (`source.bytes`), `document` (`source.bytes`),
//!   `video` (`source.bytes`), `toolUse`, `toolResult` (`text` and `json` content) and
//!   `cachePoint` (the request's `cache_prompt`). Other blocks and sources (S3 locations,
//!   `guardContent`, `reasoningContent` in the history) are refused with a
//!   `ValidationException` naming them, never dropped.
//! - `inferenceConfig` maps to the unified sampling fields; `toolConfig` to tools and tool
//!   choice; `additionalModelRequestFields` is merged into the family's body as `extra`,
//!   except the reasoning switches (`thinking: {"type": "enabled"}` for Claude,
//!   `reasoningConfig: {"type": "enabled"}` for Nova), which ask for the model's reasoning
//!   (the gateway then sets the family's own budget) and return it as `reasoningContent`.
//!   `performanceConfig`, `serviceTier` and `requestMetadata` are Bedrock's request options.
//!   `guardrailConfig`, `promptVariables` and `additionalModelResponseFieldPaths` are refused.
//! - What the model family cannot honour is refused as a `ValidationException` whose message
//!   names the field (the translator's 422, in Bedrock's encoding).
//! - The answer: `output.message.content` (reasoning, text, tool calls), `stopReason`,
//!   `usage` (with the prompt-cache counts where Bedrock gives them) and `metrics.latencyMs`
//!   (the gateway's whole time for the call).
//! - The stream: `messageStart`, then per content block `contentBlockStart` (tool calls
//!   only, as Bedrock does), `contentBlockDelta`s and `contentBlockStop`, then `messageStop`
//!   and `metadata`, each an event-stream frame written as the model's chunk arrives; a
//!   failure after the start ends it with the exception frame Bedrock would send.
//! - `count-tokens` asks Bedrock's own CountTokens ([`bedrock_count`]) for the route's first
//!   target, with an InvokeModel body: an `invokeModel` input's body as the caller sent it,
//!   a `converse` input read into the unified request and encoded by the family (checked as
//!   the call would be). It is sent outside admission (a count costs no tokens), for the
//!   target's foundation model (a cross-region profile id loses its geography prefix, an
//!   ARN is stripped to the model id it embeds: CountTokens refuses profile ids, as callers
//!   report [U]), bounded by the first-byte timeout. Bedrock's count answers with
//!   `x-gateway-token-count-source: bedrock`. When the model does not count tokens
//!   (Bedrock's ValidationException "The provided model doesn't support counting tokens.")
//!   or Bedrock cannot be reached or does not answer in time, the gateway's estimate
//!   answers instead, with `x-gateway-token-count-source: estimate`
//!   (`content::estimate_input_tokens`: the request's text at four bytes a token, a fixed
//!   count per image; an `invokeModel` body's bytes at four a token). Every other error of
//!   Bedrock's (throttling, access denied, a body it refuses) is the answer, in Bedrock's
//!   encoding.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bedrock_sim::eventstream::encode_frame;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use translator::{
    Content, Message, Part, Role, StopReason, Tool, ToolChoice, UnifiedRequest, UnifiedResponse,
    Usage,
};

use crate::app::AppState;
use crate::auth::Caller;
use crate::config::ModelRoute;
use crate::error::ApiError;
use crate::options::RequestOptions;
use crate::routes::bedrock::BedrockApiError;
use crate::routes::sse::StreamBody;
use crate::routes::tag_target;
use crate::routes::text::{self, CacheTokens, StreamItem};
use crate::upstream::{BedrockErrorKind, UpstreamError};

/// The header that says where a `count-tokens` answer comes from.
pub const TOKEN_COUNT_SOURCE_HEADER: &str = "x-gateway-token-count-source";

/// The Converse operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConverseOperation {
    Converse,
    ConverseStream,
    CountTokens,
}

/// A Converse request body (the model id is in the path).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConverseRequest {
    #[serde(default, deserialize_with = "crate::routes::parse::de_opt_messages")]
    messages: Option<Vec<ConverseMessage>>,
    #[serde(default)]
    system: Vec<SystemBlock>,
    inference_config: Option<InferenceConfig>,
    tool_config: Option<ToolConfig>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_extra")]
    additional_model_request_fields: Option<Map<String, Value>>,
    additional_model_response_field_paths: Option<Vec<String>>,
    guardrail_config: Option<Value>,
    prompt_variables: Option<Value>,
    #[serde(default, deserialize_with = "crate::routes::parse::de_metadata")]
    request_metadata: Option<BTreeMap<String, String>>,
    performance_config: Option<PerformanceConfig>,
    service_tier: Option<ServiceTier>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConverseMessage {
    role: String,
    content: Vec<ContentBlock>,
}

/// One content block: a union, exactly one member set.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContentBlock {
    text: Option<String>,
    image: Option<ImageBlock>,
    document: Option<DocumentBlock>,
    tool_use: Option<ToolUseBlock>,
    tool_result: Option<ToolResultBlock>,
    cache_point: Option<Value>,
    reasoning_content: Option<Value>,
    guard_content: Option<Value>,
    video: Option<Value>,
    citations_content: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImageBlock {
    format: String,
    source: MediaSource,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DocumentBlock {
    format: Option<String>,
    name: String,
    source: MediaSource,
    context: Option<Value>,
    citations: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MediaSource {
    /// Base64, as the SDKs send a blob in JSON.
    bytes: Option<String>,
    s3_location: Option<Value>,
    text: Option<String>,
    content: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToolUseBlock {
    tool_use_id: String,
    name: String,
    input: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToolResultBlock {
    tool_use_id: String,
    content: Vec<ToolResultContent>,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToolResultContent {
    text: Option<String>,
    json: Option<Value>,
    image: Option<Value>,
    document: Option<Value>,
    video: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SystemBlock {
    text: Option<String>,
    cache_point: Option<Value>,
    guard_content: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InferenceConfig {
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    #[serde(default, deserialize_with = "crate::routes::de_stop")]
    stop_sequences: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToolConfig {
    #[serde(deserialize_with = "de_tool_entries")]
    tools: Vec<ToolEntry>,
    tool_choice: Option<ConverseToolChoice>,
}

fn de_tool_entries<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ToolEntry>, D::Error> {
    Ok(crate::routes::parse::de_tools(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToolEntry {
    tool_spec: Option<ToolSpec>,
    cache_point: Option<Value>,
    system_tool: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToolSpec {
    name: String,
    description: Option<String>,
    input_schema: InputSchema,
    strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSchema {
    json: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConverseToolChoice {
    auto: Option<Value>,
    any: Option<Value>,
    tool: Option<NamedTool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedTool {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerformanceConfig {
    latency: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceTier {
    #[serde(rename = "type")]
    kind: String,
}

/// A CountTokens request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountTokensRequest {
    input: CountTokensInput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CountTokensInput {
    invoke_model: Option<InvokeModelInput>,
    converse: Option<Box<ConverseRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeModelInput {
    /// The InvokeModel body, base64.
    body: String,
}

/// Converse (documentation of a route `bedrock::routes()` serves).
#[utoipa::path(
    post,
    path = "/model/{modelId}/converse",
    tag = "bedrock",
    params(("modelId" = String, Path,
        description = "A text model alias of the config, or a Bedrock model id that an alias routes to")),
    request_body(content = Object, content_type = "application/json",
        description = "Bedrock's Converse request: `messages`, `system`, `inferenceConfig`, \
            `toolConfig`, `additionalModelRequestFields`, ..."),
    responses(
        (status = 200, description = "Converse's answer: `output.message`, `stopReason`, \
            `usage`, `metrics`", content_type = "application/json"),
        (status = "4XX", description = "Bedrock's error encoding: `x-amzn-ErrorType` and \
            `{\"message\"}`"),
        (status = "5XX", description = "Bedrock's error encoding"),
    )
)]
pub fn converse_operation() {}

/// ConverseStream (documentation of a route `bedrock::routes()` serves).
#[utoipa::path(
    post,
    path = "/model/{modelId}/converse-stream",
    tag = "bedrock",
    params(("modelId" = String, Path,
        description = "A text model alias of the config, or a Bedrock model id that an alias routes to")),
    request_body(content = Object, content_type = "application/json",
        description = "Bedrock's ConverseStream request (the same as Converse's)"),
    responses(
        (status = 200, description = "An `application/vnd.amazon.eventstream` body: \
            `messageStart`, `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`, \
            `messageStop`, `metadata` events; an exception frame ends a failed stream",
            content_type = "application/vnd.amazon.eventstream"),
        (status = "4XX", description = "Bedrock's error encoding"),
        (status = "5XX", description = "Bedrock's error encoding"),
    )
)]
pub fn converse_stream_operation() {}

/// CountTokens (documentation of a route `bedrock::routes()` serves).
#[utoipa::path(
    post,
    path = "/model/{modelId}/count-tokens",
    tag = "bedrock",
    params(("modelId" = String, Path,
        description = "A text model alias of the config, or a Bedrock model id that an alias routes to")),
    request_body(content = Object, content_type = "application/json",
        description = "`{\"input\": {\"converse\": {...}}}` or `{\"input\": {\"invokeModel\": \
            {\"body\": \"<base64>\"}}}`"),
    responses(
        (status = 200, description = "`{\"inputTokens\"}`: Bedrock's count \
            (`x-gateway-token-count-source: bedrock`), or the gateway's estimate where the \
            model does not count tokens or Bedrock is unreachable \
            (`x-gateway-token-count-source: estimate`)", content_type = "application/json"),
        (status = "4XX", description = "Bedrock's error encoding"),
        (status = "5XX", description = "Bedrock's error encoding"),
    )
)]
pub fn count_tokens_operation() {}

/// A `ValidationException` with `message`.
fn invalid(message: impl Into<String>) -> BedrockApiError {
    BedrockApiError::InvalidRequest(message.into())
}

/// Serves one Converse operation for `route`, with the body already read.
pub async fn run(
    state: &AppState,
    caller: &Caller,
    route: &ModelRoute,
    operation: ConverseOperation,
    body: &Bytes,
) -> Result<Response, BedrockApiError> {
    let started = Instant::now();
    if route.kind() != translator::Kind::Text {
        return Err(invalid(format!(
            "The model {:?} is not a text model: it does not support the Converse API.",
            route.alias
        )));
    }
    if operation == ConverseOperation::CountTokens {
        return count_tokens(state, route, body).await;
    }
    let request: ConverseRequest = parse(body)?;
    let stream = operation == ConverseOperation::ConverseStream;
    let (mut unified, options) = unified_request(request, stream)?;
    text::apply_defaults(route, &mut unified);
    if !stream {
        let done = text::complete(state, caller, route, unified, options.as_ref()).await?;
        let latency_ms = started.elapsed().as_millis();
        let answer = converse_answer(&done.answer, done.cache, latency_ms);
        return Ok(tag_target(axum::Json(answer).into_response(), &done.target));
    }
    let opened = text::open_stream(state, caller, route, unified, options.as_ref()).await?;
    let target = opened.target.clone();
    let state = StreamState { open: None, next_index: 0, since: started };
    let events = text::encoded_events(state, opened);
    let mut response = Response::new(Body::new(StreamBody::new(Box::pin(events), false)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(tag_target(response, &target))
}

/// The body as `T`; a malformed one is a `ValidationException` saying where.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BedrockApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path.is_empty() || path == "." {
            invalid(format!("Malformed input request: {inner}"))
        } else {
            invalid(format!("Malformed input request at `{path}`: {inner}"))
        }
    })?;
    deserializer.end().map_err(|error| invalid(format!("Malformed input request: {error}")))?;
    Ok(parsed)
}

/// The unified request of a Converse request, and its Bedrock options.
fn unified_request(
    request: ConverseRequest,
    stream: bool,
) -> Result<(UnifiedRequest, Option<RequestOptions>), BedrockApiError> {
    let refused = |field: &str| {
        invalid(format!("The field `{field}` is not supported by this gateway's Converse API."))
    };
    if request.guardrail_config.is_some() {
        return Err(refused("guardrailConfig"));
    }
    if request.prompt_variables.is_some() {
        return Err(refused("promptVariables"));
    }
    if request.additional_model_response_field_paths.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(refused("additionalModelResponseFieldPaths"));
    }
    let mut unified = UnifiedRequest { stream, ..UnifiedRequest::default() };
    let mut system = Vec::new();
    for (i, block) in request.system.into_iter().enumerate() {
        match block {
            SystemBlock { text: Some(text), cache_point: None, guard_content: None } => {
                system.push(text);
            }
            SystemBlock { text: None, cache_point: Some(_), guard_content: None } => {
                unified.cache_prompt = true;
            }
            SystemBlock { guard_content: Some(_), .. } => {
                return Err(refused(&format!("system[{i}].guardContent")));
            }
            _ => return Err(invalid(format!("system[{i}] must set exactly one member"))),
        }
    }
    if !system.is_empty() {
        unified.messages.push(Message::text(Role::System, system.join("\n\n")));
    }
    let messages = request.messages.unwrap_or_default();
    if messages.is_empty() {
        return Err(invalid("The field `messages` must hold at least one message."));
    }
    for (i, message) in messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                let shown: String = other.chars().take(32).collect();
                return Err(invalid(format!(
                    "messages[{i}].role {shown:?} is not one of user, assistant"
                )));
            }
        };
        let mut parts = Vec::with_capacity(message.content.len());
        for (j, block) in message.content.into_iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            match content_part(block, &at)? {
                Some(part) => parts.push(part),
                None => unified.cache_prompt = true,
            }
        }
        if parts.is_empty() {
            return Err(invalid(format!("messages[{i}].content must hold a content block")));
        }
        unified.messages.push(Message { role, content: Content::Parts(parts) });
    }
    if let Some(config) = request.inference_config {
        unified.max_tokens = config.max_tokens;
        unified.temperature = config.temperature;
        unified.top_p = config.top_p;
        unified.stop = config.stop_sequences.unwrap_or_default();
    }
    if let Some(config) = request.tool_config {
        for (i, entry) in config.tools.into_iter().enumerate() {
            match entry {
                ToolEntry { tool_spec: Some(spec), cache_point: None, system_tool: None } => {
                    let _ = spec.strict;
                    unified.tools.push(Tool {
                        name: spec.name,
                        description: spec.description,
                        parameters: spec.input_schema.json,
                    });
                }
                ToolEntry { tool_spec: None, cache_point: Some(_), system_tool: None } => {
                    unified.cache_prompt = true;
                }
                ToolEntry { system_tool: Some(_), .. } => {
                    return Err(refused(&format!("toolConfig.tools[{i}].systemTool")));
                }
                _ => {
                    return Err(invalid(format!(
                        "toolConfig.tools[{i}] must set exactly one member"
                    )));
                }
            }
        }
        unified.tool_choice = match config.tool_choice {
            None => None,
            Some(ConverseToolChoice { auto: Some(_), any: None, tool: None }) => {
                Some(ToolChoice::Auto)
            }
            Some(ConverseToolChoice { auto: None, any: Some(_), tool: None }) => {
                Some(ToolChoice::Required)
            }
            Some(ConverseToolChoice { auto: None, any: None, tool: Some(named) }) => {
                Some(ToolChoice::Tool(named.name))
            }
            Some(_) => {
                return Err(invalid("toolConfig.toolChoice must set exactly one member"));
            }
        };
        if unified.tools.is_empty() {
            return Err(invalid("The field `toolConfig.tools` must hold at least one tool."));
        }
    }
    if let Some(mut extra) = request.additional_model_request_fields {
        unified.reasoning = take_reasoning_switch(&mut extra);
        unified.extra = extra;
    }
    let options = RequestOptions {
        service_tier: request.service_tier.map(|tier| tier.kind),
        performance_latency: request.performance_config.map(|config| config.latency),
        request_metadata: request.request_metadata,
    };
    let options = (options.service_tier.is_some()
        || options.performance_latency.is_some()
        || options.request_metadata.is_some())
    .then_some(options);
    Ok((unified, options))
}

/// Takes the families' reasoning switches out of `additionalModelRequestFields`: Claude's
/// `thinking: {"type": "enabled", ...}` and Nova's `reasoningConfig: {"type": "enabled",
/// ...}`. Whether one was on.
fn take_reasoning_switch(extra: &mut Map<String, Value>) -> bool {
    let mut on = false;
    for key in ["thinking", "reasoningConfig"] {
        let enabled = extra.get(key).is_some_and(|v| v["type"] == "enabled");
        let disabled = extra.get(key).is_some_and(|v| v["type"] == "disabled");
        if enabled || disabled {
            extra.remove(key);
        }
        on |= enabled;
    }
    on
}

/// The unified part of one content block; `None` for a `cachePoint`.
fn content_part(block: ContentBlock, at: &str) -> Result<Option<Part>, BedrockApiError> {
    /// Converse's `VideoBlock` (`source.bytes`; S3 locations are refused by `media_bytes`),
    /// read from the block's value so that a malformed one is refused naming it.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct VideoBlock {
        format: String,
        source: MediaSource,
    }
    let refused = |what: &str| {
        invalid(format!("{at}: {what} is not supported by this gateway's Converse API."))
    };
    let n_members = [
        block.text.is_some(),
        block.image.is_some(),
        block.document.is_some(),
        block.tool_use.is_some(),
        block.tool_result.is_some(),
        block.cache_point.is_some(),
        block.reasoning_content.is_some(),
        block.guard_content.is_some(),
        block.video.is_some(),
        block.citations_content.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    if n_members != 1 {
        return Err(invalid(format!("{at} must set exactly one member, not {n_members}")));
    }
    if let Some(text) = block.text {
        return Ok(Some(Part::Text { text }));
    }
    if let Some(image) = block.image {
        let format = image.format.to_ascii_lowercase();
        let media_type = match format.as_str() {
            "png" | "jpeg" | "gif" | "webp" => format!("image/{format}"),
            "jpg" => "image/jpeg".to_owned(),
            _ => {
                let shown: String = image.format.chars().take(16).collect();
                return Err(invalid(format!(
                    "{at}.image.format {shown:?} is not one of png, jpeg, gif, webp"
                )));
            }
        };
        let data = media_bytes(image.source, &format!("{at}.image"))?;
        return Ok(Some(Part::Image { media_type, data }));
    }
    if let Some(document) = block.document {
        if document.context.is_some() || document.citations.is_some() {
            return Err(refused("a document's `context` or `citations`"));
        }
        let format = document.format.unwrap_or_else(|| "txt".to_owned());
        let data = match document.source.text.clone() {
            Some(text) if document.source.bytes.is_none() => {
                base64::engine::general_purpose::STANDARD.encode(text)
            }
            _ => media_bytes(document.source, &format!("{at}.document"))?,
        };
        return Ok(Some(Part::Document { format, name: document.name, data }));
    }
    if let Some(tool_use) = block.tool_use {
        return Ok(Some(Part::ToolUse {
            id: tool_use.tool_use_id,
            name: tool_use.name,
            input: tool_use.input,
        }));
    }
    if let Some(result) = block.tool_result {
        let mut texts = Vec::with_capacity(result.content.len());
        for (k, content) in result.content.into_iter().enumerate() {
            match content {
                ToolResultContent {
                    text: Some(text),
                    json: None,
                    image: None,
                    document: None,
                    video: None,
                } => texts.push(text),
                ToolResultContent {
                    text: None,
                    json: Some(json),
                    image: None,
                    document: None,
                    video: None,
                } => texts.push(json.to_string()),
                ToolResultContent { text: None, json: None, .. } => {
                    return Err(refused(&format!(
                        "toolResult.content[{k}]: images, documents and videos in a tool result"
                    )));
                }
                _ => {
                    return Err(invalid(format!(
                        "{at}.toolResult.content[{k}] must set exactly one member"
                    )));
                }
            }
        }
        let is_error = match result.status.as_deref() {
            None | Some("success") => false,
            Some("error") => true,
            Some(other) => {
                let shown: String = other.chars().take(16).collect();
                return Err(invalid(format!(
                    "{at}.toolResult.status {shown:?} is not one of success, error"
                )));
            }
        };
        return Ok(Some(Part::ToolResult {
            tool_use_id: result.tool_use_id,
            content: texts.join("\n"),
            is_error,
        }));
    }
    if block.cache_point.is_some() {
        return Ok(None);
    }
    if block.reasoning_content.is_some() {
        return Err(refused("`reasoningContent` in the messages"));
    }
    if block.guard_content.is_some() {
        return Err(refused("`guardContent`"));
    }
    if let Some(video) = block.video {
        let video: VideoBlock = serde_json::from_value(video)
            .map_err(|error| invalid(format!("{at}.video: {error}")))?;
        let data = media_bytes(video.source, &format!("{at}.video"))?;
        // The format is checked against the video formats by the translator's validation.
        return Ok(Some(Part::Video { format: video.format, data }));
    }
    Err(refused("`citationsContent`"))
}

/// The base64 bytes of an image or document source; other sources are refused.
fn media_bytes(source: MediaSource, at: &str) -> Result<String, BedrockApiError> {
    match source {
        MediaSource { bytes: Some(bytes), s3_location: None, text: None, content: None } => {
            crate::routes::content::check_base64(&bytes, &format!("{at}.source.bytes"))
                .map_err(|error| invalid(error.public_message()))?;
            Ok(bytes)
        }
        MediaSource { bytes: None, .. } => Err(invalid(format!(
            "{at}.source: only `bytes` sources are supported by this gateway (not S3 locations)"
        ))),
        _ => Err(invalid(format!("{at}.source must set exactly one member"))),
    }
}

/// Converse's `stopReason` of a unified stop reason.
fn stop_reason(stop_reason: StopReason) -> &'static str {
    match stop_reason {
        StopReason::EndTurn | StopReason::Other => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ContentFilter => "content_filtered",
        StopReason::ToolUse => "tool_use",
    }
}

/// Converse's `usage`: the prompt-cache counts beside Bedrock's input tokens, which leave
/// them out (as Converse's own `inputTokens` does).
fn usage_body(usage: Usage, cache: CacheTokens) -> Value {
    let input = usage.input_tokens.unwrap_or(0);
    let output = usage.output_tokens.unwrap_or(0);
    let total = [cache.read, cache.write]
        .into_iter()
        .flatten()
        .fold(input.saturating_add(output), u32::saturating_add);
    let mut body = json!({"inputTokens": input, "outputTokens": output, "totalTokens": total});
    if let Some(read) = cache.read {
        body["cacheReadInputTokens"] = read.into();
    }
    if let Some(write) = cache.write {
        body["cacheWriteInputTokens"] = write.into();
    }
    body
}

/// The whole Converse answer.
fn converse_answer(answer: &UnifiedResponse, cache: CacheTokens, latency_ms: u128) -> Value {
    let mut content = Vec::new();
    if let Some(reasoning) = &answer.reasoning {
        content.push(json!({"reasoningContent": {"reasoningText": {"text": reasoning}}}));
    }
    if !answer.text.is_empty() || answer.tool_calls.is_empty() {
        content.push(json!({"text": answer.text}));
    }
    for call in &answer.tool_calls {
        content.push(json!({"toolUse": {"toolUseId": call.id, "name": call.name,
                                        "input": call.input}}));
    }
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(answer.stop_reason),
        "usage": usage_body(answer.usage, cache),
        "metrics": {"latencyMs": u64::try_from(latency_ms).unwrap_or(u64::MAX)},
    })
}

/// One event frame of the ConverseStream output.
fn event_frame(out: &mut Vec<u8>, event_type: &str, payload: &Value) {
    let payload = payload.to_string();
    out.extend_from_slice(&encode_frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    ));
}

/// The content block a stream is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Reasoning,
    Text,
    /// A tool call, by its index among the answer's calls.
    Tool(u32),
}

/// Where a ConverseStream is: the open block and its index, the next block's index.
struct StreamState {
    open: Option<(Block, u32)>,
    next_index: u32,
    since: Instant,
}

impl StreamState {
    /// Makes `block` the open one: closes another, opens it with the next index.
    fn enter(&mut self, out: &mut Vec<u8>, block: Block) -> u32 {
        if let Some((open, index)) = self.open {
            if open == block {
                return index;
            }
            event_frame(out, "contentBlockStop", &json!({"contentBlockIndex": index}));
        }
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            event_frame(out, "contentBlockStop", &json!({"contentBlockIndex": index}));
        }
    }
}

/// The ConverseStream events of a text stream (see the module docs).
impl text::ItemEncoder for StreamState {
    fn start(&mut self, out: &mut Vec<u8>) {
        event_frame(out, "messageStart", &json!({"role": "assistant"}));
    }

    fn item(&mut self, out: &mut Vec<u8>, item: StreamItem) -> bool {
        match item {
            StreamItem::Reasoning(text) => {
                let index = self.enter(out, Block::Reasoning);
                let delta = json!({"contentBlockIndex": index,
                                   "delta": {"reasoningContent": {"text": text}}});
                event_frame(out, "contentBlockDelta", &delta);
            }
            StreamItem::Delta(text) => {
                let index = self.enter(out, Block::Text);
                let delta = json!({"contentBlockIndex": index, "delta": {"text": text}});
                event_frame(out, "contentBlockDelta", &delta);
            }
            StreamItem::ToolCall(call) => {
                let opening = self.open.map(|(block, _)| block) != Some(Block::Tool(call.index));
                let index = self.enter(out, Block::Tool(call.index));
                if opening {
                    let start = json!({"contentBlockIndex": index, "start": {"toolUse": {
                        "toolUseId": call.id.unwrap_or_default(),
                        "name": call.name.unwrap_or_default()}}});
                    event_frame(out, "contentBlockStart", &start);
                }
                if !call.arguments.is_empty() {
                    let delta = json!({"contentBlockIndex": index,
                                       "delta": {"toolUse": {"input": call.arguments}}});
                    event_frame(out, "contentBlockDelta", &delta);
                }
            }
            StreamItem::Done { stop_reason: reason, usage, cache } => {
                self.close(out);
                event_frame(out, "messageStop", &json!({"stopReason": stop_reason(reason)}));
                let latency_ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(0);
                let metadata = json!({"usage": usage_body(usage, cache),
                                      "metrics": {"latencyMs": latency_ms}});
                event_frame(out, "metadata", &metadata);
                return true;
            }
            StreamItem::Failed(error) => {
                error.log_stream_failure();
                out.extend_from_slice(&stream_error(error).exception_frame());
                return true;
            }
        }
        false
    }
}

/// A failure after the stream started, as the exception Bedrock would end it with.
fn stream_error(error: ApiError) -> BedrockApiError {
    match error {
        ApiError::Upstream(
            error @ (UpstreamError::Bedrock { .. }
            | UpstreamError::Timeout
            | UpstreamError::Stalled(_)),
        ) => BedrockApiError::Upstream(error),
        ApiError::Upstream(broken) => BedrockApiError::StreamBroken(broken),
        other => BedrockApiError::Gateway(other),
    }
}

/// `count-tokens`: Bedrock's count, or the gateway's estimate (see the module docs).
async fn count_tokens(
    state: &AppState,
    route: &ModelRoute,
    body: &Bytes,
) -> Result<Response, BedrockApiError> {
    let request: CountTokensRequest = parse(body)?;
    let Some(target) = route.targets.first() else {
        return Err(BedrockApiError::Gateway(ApiError::Internal("a route without targets".into())));
    };
    let (invoke_body, estimate) = match request.input {
        CountTokensInput { invoke_model: Some(invoke), converse: None } => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(invoke.body.as_bytes())
                .map_err(|_| invalid("input.invokeModel.body is not valid base64"))?;
            serde_json::from_slice::<serde::de::IgnoredAny>(&decoded)
                .map_err(|e| invalid(format!("input.invokeModel.body is not JSON: {e}")))?;
            // The model's own body: its text is most of it, keys and template the rest.
            let n_tokens = decoded.len().div_ceil(crate::routes::content::BYTES_PER_TOKEN);
            let estimate = u64::try_from(n_tokens).unwrap_or(u64::MAX).max(1);
            (Bytes::from(decoded), estimate)
        }
        CountTokensInput { invoke_model: None, converse: Some(converse) } => {
            let (mut unified, _) = unified_request(*converse, false)?;
            text::apply_defaults(route, &mut unified);
            // What the family cannot take is refused here as the call would refuse it.
            let translator::FamilyRef::Text(family) = target.family else {
                return Err(invalid("The model does not count tokens: it is not a text model."));
            };
            let encoded = translator::encode_text_request(family, &unified)
                .map_err(|error| BedrockApiError::Gateway(ApiError::from(error)))?;
            let estimate = crate::routes::content::estimate_input_tokens(&unified);
            (Bytes::from(encoded.to_string()), estimate)
        }
        _ => return Err(invalid("input must set exactly one of invokeModel, converse")),
    };
    let (tokens, source) = bedrock_count(state, target, invoke_body, estimate)
        .await
        .map_err(BedrockApiError::Upstream)?;
    Ok(count_response("inputTokens", tokens, source, target))
}

/// A token-counting route's answer: `{<key>: tokens}`, with where the count comes from
/// ([`TOKEN_COUNT_SOURCE_HEADER`]) and the target counted for.
pub fn count_response(
    key: &str,
    tokens: impl Into<Value>,
    source: &'static str,
    target: &crate::config::Target,
) -> Response {
    let mut body = Map::new();
    body.insert(key.to_owned(), tokens.into());
    let mut response = axum::Json(Value::Object(body)).into_response();
    response.headers_mut().insert(TOKEN_COUNT_SOURCE_HEADER, HeaderValue::from_static(source));
    tag_target(response, target)
}

/// The input tokens of `invoke_body` on `target` and where the count comes from: Bedrock's
/// CountTokens (`"bedrock"`), or `estimate` (`"estimate"`) where the model does not count
/// tokens or Bedrock did not answer (see the module docs). Bedrock's other errors are
/// returned. Shared by the Anthropic route's `count_tokens`.
pub async fn bedrock_count(
    state: &AppState,
    target: &crate::config::Target,
    invoke_body: Bytes,
    estimate: u64,
) -> Result<(u64, &'static str), UpstreamError> {
    let model_id = translator::base_model_id(&target.model_id).unwrap_or(&target.model_id);
    match state.pipeline.count_tokens(target, model_id, invoke_body).await {
        Ok(n_tokens) => Ok((u64::from(n_tokens), "bedrock")),
        Err(UpstreamError::Bedrock { kind: BedrockErrorKind::Validation, message, .. })
            if does_not_count(&message) =>
        {
            Ok((estimate, "estimate"))
        }
        Err(error @ (UpstreamError::Timeout | UpstreamError::Unreachable(_))) => {
            tracing::debug!(message = "count-tokens: Bedrock did not answer; estimated", %error);
            Ok((estimate, "estimate"))
        }
        Err(error) => Err(error),
    }
}

/// Whether Bedrock's ValidationException says the model does not count tokens ("The
/// provided model doesn't support counting tokens.").
fn does_not_count(message: &str) -> bool {
    let message = message.to_ascii_lowercase().replace('\u{2019}', "'");
    message.contains("support counting tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<UnifiedRequest, BedrockApiError> {
        let request: ConverseRequest = parse(body.to_string().as_bytes())?;
        unified_request(request, false).map(|(unified, _)| unified)
    }

    #[test]
    fn a_converse_request_reads_into_the_unified_request() {
        let unified = read(json!({
            "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
            "messages": [
                {"role": "user", "content": [{"text": "Weather?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1",
                    "name": "weather", "input": {"city": "Oslo"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1",
                    "content": [{"json": {"c": 3}}, {"text": "cold"}], "status": "error"}}]},
            ],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.9,
                                "stopSequences": ["END"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "description": "d",
                "inputSchema": {"json": {"type": "object"}}}}], "toolChoice": {"any": {}}},
            "additionalModelRequestFields": {"top_k": 5,
                "thinking": {"type": "enabled", "budget_tokens": 2000}},
        }))
        .unwrap();
        assert_eq!(unified.messages[0], Message::text(Role::System, "Be brief."));
        assert_eq!(
            unified.messages[1].content,
            Content::Parts(vec![
                Part::Text { text: "Weather?".to_owned() },
                Part::Image { media_type: "image/png".to_owned(), data: "iVBORw0KGgo=".to_owned() },
            ])
        );
        assert_eq!(
            unified.messages[3].content,
            Content::Parts(vec![Part::ToolResult {
                tool_use_id: "t1".to_owned(),
                content: "{\"c\":3}\ncold".to_owned(),
                is_error: true,
            }])
        );
        assert!(unified.cache_prompt && unified.reasoning);
        assert_eq!(
            (unified.max_tokens, unified.stop.as_slice()),
            (Some(50), &["END".to_owned()][..])
        );
        assert_eq!(unified.tool_choice, Some(ToolChoice::Required));
        assert_eq!(unified.tools[0].parameters, json!({"type": "object"}));
        assert_eq!(Value::Object(unified.extra), json!({"top_k": 5}));
    }

    #[test]
    fn what_the_gateway_cannot_honour_is_a_validation_exception_naming_it() {
        let user = |content: Value| json!({"messages": [{"role": "user", "content": content}]});
        for (body, named) in [
            (user(json!([{"video": {}}])), "video"),
            (
                user(
                    json!([{"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/k"}}}}]),
                ),
                "S3",
            ),
            (user(json!([{"guardContent": {}}])), "guardContent"),
            (user(json!([{"reasoningContent": {}}])), "reasoningContent"),
            (user(json!([{"text": "a", "cachePoint": {}}])), "exactly one member"),
            (user(json!([{"brandNew": {}}])), "brandNew"),
            (
                user(
                    json!([{"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/k"}}}}]),
                ),
                "S3",
            ),
            (user(json!([{"image": {"format": "tiff", "source": {"bytes": "AAAA"}}}])), "tiff"),
            (user(json!([{"image": {"format": "png", "source": {"bytes": "@@"}}}])), "base64"),
            (json!({"messages": []}), "messages"),
            (json!({"messages": [{"role": "system", "content": [{"text": "a"}]}]}), "role"),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
                    "guardrailConfig": {}}),
                "guardrailConfig",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
                    "toolConfig": {"tools": []}}),
                "toolConfig.tools",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a"}]}],
                    "inferenceConfig": {"maxTokens": "x"}}),
                "inferenceConfig.maxTokens",
            ),
        ] {
            let error = read(body.clone()).unwrap_err();
            assert_eq!(error.shape(), "ValidationException", "{body}");
            assert!(error.message().contains(named), "{body}: {}", error.message());
        }
    }

    #[test]
    fn answers_take_converse_s_shape() {
        let answer = UnifiedResponse {
            text: String::new(),
            stop_reason: StopReason::ToolUse,
            usage: Usage { input_tokens: Some(10), output_tokens: Some(4) },
            tool_calls: vec![translator::ToolCall {
                id: "t1".to_owned(),
                name: "weather".to_owned(),
                input: json!({"city": "Oslo"}),
            }],
            reasoning: Some("hm".to_owned()),
        };
        let cache = CacheTokens { read: Some(2), write: None };
        assert_eq!(
            converse_answer(&answer, cache, 12),
            json!({
                "output": {"message": {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hm"}}},
                    {"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Oslo"}}},
                ]}},
                "stopReason": "tool_use",
                "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 16,
                          "cacheReadInputTokens": 2},
                "metrics": {"latencyMs": 12},
            })
        );
        let text = UnifiedResponse { text: "Hi".to_owned(), ..UnifiedResponse::default() };
        let body = converse_answer(&text, CacheTokens::default(), 1);
        assert_eq!(body["output"]["message"]["content"], json!([{"text": "Hi"}]));
        assert_eq!(body["stopReason"], "end_turn");
    }
}
