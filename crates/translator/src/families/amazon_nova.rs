//! Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2 Lite): `amazon.nova-*`
//! model ids, except the Canvas, Reel and Sonic generators and the embeddings model.
//!
//! The request is the `messages-v1` schema, `{"schemaVersion", "system": [{"text"}],
//! "messages": [{"role", "content": [block]}], "inferenceConfig": {...}, "toolConfig"}`; the
//! answer is `output.message.content` with `stopReason` and `usage` (wire reference §4.2; AWS
//! "Complete request schema", "Tool use (function calling) with Amazon Nova", "Choosing a
//! tool", "Returning tool results"; Nova 2 user guide "Using the Invoke API", "Extended
//! thinking").
//!
//! Decisions:
//! - A plain `prompt` is one user message; the system prompt becomes the `system` block.
//!   Consecutive messages of one role are merged into one message, their blocks in order,
//!   because the roles must alternate.
//! - Content blocks: a text-only message is one `{"text"}` block (its text parts joined by a
//!   blank line, as before there were parts); in a message with other parts, each run of
//!   adjacent text parts is one such block. An image is `{"image": {"format", "source":
//!   {"bytes": <base64>}}}`, the format the media type's subtype (`png`, `jpeg`, `gif`,
//!   `webp`: the four the unified request allows, the four Nova takes). A tool call is
//!   `{"toolUse": {"toolUseId", "name", "input"}}`; a tool result is `{"toolResult":
//!   {"toolUseId", "content": [{"text"}], "status": "error"}}`, `status` only for an error
//!   (it is optional; AWS's examples send `"success"`).
//! - A video is `{"video": {"format", "source": {"bytes": <base64>}}}`, its format the
//!   unified one as it is (`mp4`, `mov`, `mkv`, `webm`, `flv`, `mpeg`, `mpg`, `wmv`,
//!   `three_gp`: "Complete request schema" and Converse's `VideoBlock`). Nova takes "a single
//!   video in the payload" whose base64 is under 25 MB ("Video understanding"; the Nova 2
//!   guide's table: 25 MB, 1 object; Converse's `VideoSource`: "as long as the encoded file
//!   is less than 25MB"), so a second video, or one of more than [`MAX_VIDEO_BASE64_BYTES`]
//!   of base64, is an invalid request naming that limit. The limit is read as 25 MiB [U
//!   whether AWS means 10^6 or 2^20 bytes: the larger, so that the gateway never refuses
//!   what Bedrock would take]. S3 sources are not sent: the unified part holds bytes only.
//!   Nova Micro takes no video; the family does not know the model, so Bedrock refuses it.
//! - Documents are refused (`document parts` is not in `params()`, so the codec answers
//!   422): "Document support is limited to only Converse API and is not supported in Invoke
//!   API" (AWS "Invoking Amazon Nova understanding models"; the Nova 2 guide's "Using the
//!   Invoke API" says the same), and this family speaks InvokeModel.
//! - Nova Micro takes no images; the family does not know the model, so Bedrock refuses
//!   them [U for the wording].
//! - Tools: `toolConfig: {"tools": [{"toolSpec": {"name", "description", "inputSchema":
//!   {"json": <parameters>}}}], "toolChoice"}`; `auto` is `{"auto": {}}`, `required` is
//!   `{"any": {}}`, a named tool is `{"tool": {"name"}}`, and without a choice `toolChoice`
//!   is left out (Nova's default is auto). The parameters go as they are: AWS's
//!   troubleshooting page says the top level of the schema should hold only `type`,
//!   `properties` and `required` [U whether more is refused or ignored].
//! - Nova has no "none" choice. `tool_choice: "none"` sends no `toolConfig` at all, so the
//!   model cannot call a tool; but when the messages hold tool calls or results it is
//!   refused (unsupported), because Bedrock wants `toolConfig` beside such blocks
//!   (Converse's "The toolConfig field must be defined when using toolUse and toolResult
//!   content blocks"; the same for InvokeModel [U]) and with it the model could call one.
//!   For the same reason tool calls or results in the messages without `tools` are an
//!   invalid request.
//! - Reasoning: `reasoning: true` sends `inferenceConfig.reasoningConfig: {"type":
//!   "enabled", "maxReasoningEffort": "medium"}` (the Nova 2 guide lists `reasoningConfig`
//!   among `inferenceConfig`'s fields for InvokeModel; Converse passes the same object in
//!   `additionalModelRequestFields`). The unified request has no effort, so the middle of
//!   the three levels (`low`, `medium`, `high`) is sent. Only Nova 2 models reason: the v1
//!   models are expected to refuse the field [U]. Without `reasoning` nothing is sent
//!   (extended thinking is off by default).
//! - Nova wants the user to speak first: a conversation whose first turn is the
//!   assistant's is refused as unsupported. A final assistant message is sent as it is and
//!   Nova continues it (prefill).
//! - `inferenceConfig` carries only the fields the request sets and is left out when it
//!   would be empty, so Bedrock applies Nova's defaults (temperature 0.7, topP 0.9, topK 50).
//! - `max_tokens` and `top_k` are not range-checked: the output limit differs between Nova
//!   generations (5,000 for v1 at launch, more later and for Nova 2) and `topK` has no
//!   documented upper bound. Bedrock rejects an excess with a validation error.
//! - The answer's text is its `text` blocks joined; `toolUse` blocks are its tool calls (a
//!   missing `input` is `{}`), `reasoningContent.reasoningText.text` its reasoning (Nova 2
//!   Lite sends `[REDACTED]` there; `redactedContent` is skipped), and the stop reason
//!   `tool_use` is a tool-use stop.
//! - Stream chunks are objects with one event key (`messageStart`, `contentBlockStart`,
//!   `contentBlockDelta`, `contentBlockStop`, `messageStop`, `metadata`; recorded in
//!   traceloop/openllmetry `test_nova/test_nova_invoke_stream_with_events_with_content.yaml`);
//!   a chunk with none of them and nothing else to read is reported as unrecognized. A
//!   `contentBlockStart` with `start.toolUse` opens a tool call (its id and name, at the
//!   block's `contentBlockIndex`), and each `delta.toolUse.input` is the next piece of its
//!   arguments' JSON; `delta.reasoningContent.text` is a piece of reasoning (ConverseStream's
//!   shapes, recorded for Converse; for InvokeModel's chunks [U]).
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or a
//!   chunk) is a `content_filter` stop, as are the stop reasons `content_filtered` and
//!   `guardrail_intervened`, whatever else the body says.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, decode_guarded_response, finish_stream_event, parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, de_count, parse_body, to_body};
use crate::unified::{
    Content, Message, Param, Part, Role, StopReason, StreamEvent, Tool, ToolCall, ToolCallDelta,
    ToolChoice, UnifiedRequest, UnifiedResponse, Usage,
};

/// The Amazon Nova family.
#[derive(Debug, Clone, Copy)]
pub struct AmazonNova;

const ID: &str = "amazon_nova";

/// The only request schema of the understanding models.
const SCHEMA_VERSION: &str = "messages-v1";

/// Parts of `amazon.nova-*` ids that name models other than the understanding models.
const OTHER_NOVA_MODELS: &[&str] = &["canvas", "reel", "sonic", "embed"];

/// The reasoning effort sent for `reasoning: true` (see the module doc).
const REASONING_EFFORT: &str = "medium";

/// Nova's limit on videos per request (see the module doc).
const MAX_VIDEOS: usize = 1;

/// The most base64 text of a video sent as bytes: Nova's 25 MB, read as MiB (see the module
/// doc).
const MAX_VIDEO_BASE64_BYTES: usize = 25 * 1024 * 1024;

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaRequest<'a> {
    schema_version: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<NovaText<'a>>,
    messages: Vec<NovaMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_config: Option<NovaInferenceConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<NovaToolConfig<'a>>,
}

#[derive(Debug, Serialize)]
struct NovaMessage<'a> {
    role: &'static str,
    content: Vec<NovaBlock<'a>>,
}

#[derive(Debug, Serialize)]
struct NovaText<'a> {
    text: &'a str,
}

/// One content block of a request message: `{"text": ...}`, `{"image": {...}}`, ...
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum NovaBlock<'a> {
    Text(Cow<'a, str>),
    Image(NovaImage<'a>),
    Video(NovaVideo<'a>),
    ToolUse(NovaToolUse<'a>),
    ToolResult(NovaToolResult<'a>),
}

#[derive(Debug, Serialize)]
struct NovaImage<'a> {
    format: &'a str,
    source: NovaSource<'a>,
}

#[derive(Debug, Serialize)]
struct NovaVideo<'a> {
    format: &'a str,
    source: NovaSource<'a>,
}

/// Binary data, base64 in InvokeModel's JSON.
#[derive(Debug, Serialize)]
struct NovaSource<'a> {
    bytes: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaToolUse<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: &'a serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaToolResult<'a> {
    tool_use_id: &'a str,
    content: [NovaText<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaInferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_config: Option<NovaReasoningConfig>,
}

/// Nova 2's extended thinking switch.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaReasoningConfig {
    #[serde(rename = "type")]
    kind: &'static str,
    max_reasoning_effort: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaToolConfig<'a> {
    tools: Vec<NovaTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<NovaToolChoice<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaTool<'a> {
    tool_spec: NovaToolSpec<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: NovaInputSchema<'a>,
}

#[derive(Debug, Serialize)]
struct NovaInputSchema<'a> {
    json: &'a serde_json::Value,
}

/// `{"auto": {}}`, `{"any": {}}` or `{"tool": {"name"}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum NovaToolChoice<'a> {
    Auto(NovaEmpty),
    Any(NovaEmpty),
    Tool(NovaToolName<'a>),
}

/// An empty object, `{}`.
#[derive(Debug, Serialize)]
struct NovaEmpty {}

#[derive(Debug, Serialize)]
struct NovaToolName<'a> {
    name: &'a str,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaResponse {
    output: NovaOutput,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<NovaUsage>,
}

#[derive(Debug, Deserialize)]
struct NovaOutput {
    message: NovaOutputMessage,
}

#[derive(Debug, Deserialize)]
struct NovaOutputMessage {
    #[serde(default)]
    content: Vec<NovaContentBlock>,
}

/// One content block of the answer: text, a tool call or reasoning (other kinds are
/// skipped).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaContentBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<NovaToolUseBlock>,
    #[serde(default)]
    reasoning_content: Option<NovaReasoningContent>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaToolUseBlock {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

/// `{"reasoningText": {"text", "signature"}}` or `{"redactedContent"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaReasoningContent {
    #[serde(default)]
    reasoning_text: Option<NovaReasoningText>,
}

#[derive(Debug, Deserialize)]
struct NovaReasoningText {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaUsage {
    #[serde(default, deserialize_with = "de_count")]
    input_tokens: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    output_tokens: Option<u32>,
}

/// One decoded stream chunk: an object with one event key (`messageStart`,
/// `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`, `messageStop` or
/// `metadata`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaStreamChunk {
    #[serde(default)]
    message_start: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    content_block_start: Option<NovaContentBlockStart>,
    #[serde(default)]
    content_block_stop: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    content_block_delta: Option<NovaContentBlockDelta>,
    #[serde(default)]
    message_stop: Option<NovaMessageStop>,
    #[serde(default)]
    metadata: Option<NovaMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaContentBlockStart {
    #[serde(default)]
    start: Option<NovaBlockStart>,
    #[serde(default)]
    content_block_index: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaBlockStart {
    #[serde(default)]
    tool_use: Option<NovaToolUseStart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaToolUseStart {
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaContentBlockDelta {
    #[serde(default)]
    delta: Option<NovaDelta>,
    #[serde(default)]
    content_block_index: Option<u32>,
}

/// A text delta has `text`, a tool call's `toolUse.input`, reasoning `reasoningContent`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<NovaToolUseDelta>,
    #[serde(default)]
    reasoning_content: Option<NovaReasoningDelta>,
}

#[derive(Debug, Deserialize)]
struct NovaToolUseDelta {
    #[serde(default)]
    input: Option<String>,
}

/// A reasoning delta: `{"text"}` (ConverseStream's shape), or `{"reasoningText": {"text"}}`
/// as in a whole answer; `signature` and `redactedContent` carry no text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaReasoningDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    reasoning_text: Option<NovaReasoningText>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaMessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NovaMetadata {
    #[serde(default)]
    usage: Option<NovaUsage>,
}

impl TextFamily for AmazonNova {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id
            .strip_prefix("amazon.nova-")
            .is_some_and(|rest| !OTHER_NOVA_MODELS.iter().any(|other| rest.contains(other)))
    }

    fn params(&self) -> &'static [Param] {
        &[
            Param::MaxTokens,
            Param::Temperature,
            Param::TopP,
            Param::TopK,
            Param::Stop,
            Param::CachePrompt,
            Param::Tools,
            Param::ImageInput,
            Param::VideoInput,
            Param::Reasoning,
        ]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "schemaVersion",
            "system",
            "messages",
            "inferenceConfig.maxTokens",
            "inferenceConfig.temperature",
            "inferenceConfig.topP",
            "inferenceConfig.topK",
            "inferenceConfig.stopSequences",
            "inferenceConfig.reasoningConfig",
            "toolConfig",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        check_videos(req)?;
        let system = req.conversation().system;
        let mut body = to_body(ID, &convert_request(req, system.as_deref())?)?;
        if req.cache_prompt {
            mark_cache_prefix(&mut body);
        }
        Ok(body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let GuardedChunk { chunk, mut usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<NovaStreamChunk>(ID, chunk)?;
        let known = chunk.message_start.is_some()
            || chunk.content_block_start.is_some()
            || chunk.content_block_stop.is_some()
            || chunk.content_block_delta.is_some()
            || chunk.message_stop.is_some()
            || chunk.metadata.is_some();
        if let Some(nova_usage) = chunk.metadata.and_then(|metadata| metadata.usage) {
            usage.update(convert_usage(nova_usage));
        }
        let mut event = StreamEvent {
            // A `messageStop` always ends the answer, even without a readable reason.
            stop_reason: chunk.message_stop.map(|stop| {
                stop.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason)
            }),
            usage,
            ..Default::default()
        };
        if let Some(start) = chunk.content_block_start {
            let index = start.content_block_index.unwrap_or_default();
            if let Some(tool_use) = start.start.and_then(|start| start.tool_use) {
                event.tool_calls.push(ToolCallDelta {
                    index,
                    id: tool_use.tool_use_id,
                    name: tool_use.name,
                    arguments: String::new(),
                });
            }
        }
        if let Some(block) = chunk.content_block_delta {
            let index = block.content_block_index.unwrap_or_default();
            if let Some(delta) = block.delta {
                event.text = delta.text.unwrap_or_default();
                if let Some(tool_use) = delta.tool_use {
                    event.tool_calls.push(ToolCallDelta {
                        index,
                        arguments: tool_use.input.unwrap_or_default(),
                        ..Default::default()
                    });
                }
                if let Some(reasoning) = delta.reasoning_content {
                    event.reasoning = reasoning
                        .text
                        .or_else(|| reasoning.reasoning_text.and_then(|r| r.text))
                        .unwrap_or_default();
                }
            }
        }
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: NovaResponse = parse_body(ID, body)?;
    let usage = res.usage.map(convert_usage).unwrap_or_default();
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut reasoning: Option<String> = None;
    for block in res.output.message.content {
        if let Some(piece) = block.text {
            text.push_str(&piece);
        }
        if let Some(tool_use) = block.tool_use {
            tool_calls.push(ToolCall {
                id: tool_use.tool_use_id,
                name: tool_use.name,
                input: tool_use.input.unwrap_or_else(|| serde_json::json!({})),
            });
        }
        if let Some(piece) =
            block.reasoning_content.and_then(|r| r.reasoning_text).and_then(|r| r.text)
        {
            reasoning.get_or_insert_with(String::new).push_str(&piece);
        }
    }
    Ok(UnifiedResponse {
        text,
        stop_reason: res.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason),
        usage,
        tool_calls,
        reasoning,
    })
}

fn convert_request<'a>(
    req: &'a UnifiedRequest,
    system: Option<&'a str>,
) -> Result<NovaRequest<'a>, TranslateError> {
    let messages = match &req.prompt {
        Some(prompt) => vec![NovaMessage {
            role: "user",
            content: vec![NovaBlock::Text(Cow::Borrowed(prompt))],
        }],
        None => convert_messages(&req.messages)?,
    };
    if messages.first().is_some_and(|message| message.role == "assistant") {
        return Err(TranslateError::Unsupported {
            family: ID,
            feature: "a conversation that starts with an `assistant` message".to_owned(),
        });
    }
    let config = NovaInferenceConfig {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: &req.stop,
        reasoning_config: req.reasoning.then_some(NovaReasoningConfig {
            kind: "enabled",
            max_reasoning_effort: REASONING_EFFORT,
        }),
    };
    let is_empty = config == NovaInferenceConfig::default();
    Ok(NovaRequest {
        schema_version: SCHEMA_VERSION,
        system: system.map(|text| NovaText { text }).into_iter().collect(),
        messages,
        inference_config: if is_empty { None } else { Some(config) },
        tool_config: convert_tool_config(req)?,
    })
}

/// The non-system messages as Nova messages, consecutive messages of one role merged into
/// one message.
fn convert_messages(messages: &[Message]) -> Result<Vec<NovaMessage<'_>>, TranslateError> {
    let mut nova_messages: Vec<NovaMessage<'_>> = Vec::new();
    for message in messages.iter().filter(|m| m.role != Role::System) {
        let role = if message.role == Role::Assistant { "assistant" } else { "user" };
        let content = convert_content(&message.content)?;
        match nova_messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(content),
            _ => nova_messages.push(NovaMessage { role, content }),
        }
    }
    Ok(nova_messages)
}

/// A message's blocks: one text block for a text-only message; otherwise a block per part,
/// adjacent text parts joined into one text block by a blank line.
fn convert_content(content: &Content) -> Result<Vec<NovaBlock<'_>>, TranslateError> {
    let parts = match content {
        Content::Parts(parts) if parts.iter().any(|part| !matches!(part, Part::Text { .. })) => {
            parts
        }
        _ => return Ok(vec![NovaBlock::Text(content.text())]),
    };
    let mut blocks: Vec<NovaBlock<'_>> = Vec::with_capacity(parts.len());
    for part in parts {
        let block = match part {
            Part::Text { text } => {
                if let Some(NovaBlock::Text(last)) = blocks.last_mut() {
                    let joined = last.to_mut();
                    joined.push_str("\n\n");
                    joined.push_str(text);
                    continue;
                }
                NovaBlock::Text(Cow::Borrowed(text))
            }
            Part::Image { media_type, data } => NovaBlock::Image(NovaImage {
                format: media_type.strip_prefix("image/").unwrap_or(media_type),
                source: NovaSource { bytes: data },
            }),
            Part::Video { format, data } => {
                NovaBlock::Video(NovaVideo { format, source: NovaSource { bytes: data } })
            }
            Part::Document { .. } => {
                return Err(TranslateError::Unsupported {
                    family: ID,
                    feature: "`document parts` (Nova takes documents only through Converse)"
                        .to_owned(),
                });
            }
            Part::ToolUse { id, name, input } => {
                NovaBlock::ToolUse(NovaToolUse { tool_use_id: id, name, input })
            }
            Part::ToolResult { tool_use_id, content, is_error } => {
                NovaBlock::ToolResult(NovaToolResult {
                    tool_use_id,
                    content: [NovaText { text: content }],
                    status: is_error.then_some("error"),
                })
            }
        };
        blocks.push(block);
    }
    Ok(blocks)
}

/// Nova's video limits: at most [`MAX_VIDEOS`] per request, each at most
/// [`MAX_VIDEO_BASE64_BYTES`] of base64.
fn check_videos(req: &UnifiedRequest) -> Result<(), TranslateError> {
    let videos: Vec<&str> = req
        .messages
        .iter()
        .filter_map(|message| match &message.content {
            Content::Parts(parts) => Some(parts),
            Content::Text(_) => None,
        })
        .flatten()
        .filter_map(|part| match part {
            Part::Video { data, .. } => Some(data.as_str()),
            _ => None,
        })
        .collect();
    if videos.len() > MAX_VIDEOS {
        return Err(TranslateError::InvalidRequest(format!(
            "the amazon_nova family takes at most {MAX_VIDEOS} video per request (Nova's \
             limit), got {}",
            videos.len()
        )));
    }
    if let Some(data) = videos.iter().find(|data| data.len() > MAX_VIDEO_BASE64_BYTES) {
        return Err(TranslateError::InvalidRequest(format!(
            "a video of the amazon_nova family is at most {MAX_VIDEO_BASE64_BYTES} bytes of \
             base64 (Nova's 25 MB limit for a video sent as bytes), got {}",
            data.len()
        )));
    }
    Ok(())
}

/// The `toolConfig` of the request, if it has one (see the module doc for `none`).
fn convert_tool_config(req: &UnifiedRequest) -> Result<Option<NovaToolConfig<'_>>, TranslateError> {
    let has_tool_blocks = req.messages.iter().any(|message| {
        matches!(&message.content, Content::Parts(parts)
            if parts.iter().any(|part| matches!(part, Part::ToolUse { .. } | Part::ToolResult { .. })))
    });
    let tool_choice = match &req.tool_choice {
        Some(ToolChoice::None) if has_tool_blocks => {
            return Err(TranslateError::Unsupported {
                family: ID,
                feature: "`tool_choice` \"none\" with tool calls or results in `messages` (Nova \
                          has no \"none\" choice and needs the tools beside such blocks)"
                    .to_owned(),
            });
        }
        Some(ToolChoice::None) => return Ok(None),
        Some(ToolChoice::Auto) => Some(NovaToolChoice::Auto(NovaEmpty {})),
        Some(ToolChoice::Required) => Some(NovaToolChoice::Any(NovaEmpty {})),
        Some(ToolChoice::Tool(name)) => Some(NovaToolChoice::Tool(NovaToolName { name })),
        None => None,
    };
    if req.tools.is_empty() {
        if has_tool_blocks {
            return Err(TranslateError::InvalidRequest(
                "the amazon_nova family needs `tools` when `messages` hold tool calls or results"
                    .to_owned(),
            ));
        }
        return Ok(None);
    }
    Ok(Some(NovaToolConfig { tools: req.tools.iter().map(convert_tool).collect(), tool_choice }))
}

fn convert_tool(tool: &Tool) -> NovaTool<'_> {
    NovaTool {
        tool_spec: NovaToolSpec {
            name: &tool.name,
            description: tool.description.as_deref(),
            input_schema: NovaInputSchema { json: &tool.parameters },
        },
    }
}

/// Prompt caching (`cache_prompt`): a `{"cachePoint": {"type": "default"}}` block after
/// the system prompt and at the end of the last user message, so that both are cached
/// (AWS "Prompt caching for faster model inference", Nova's request schema).
fn mark_cache_prefix(body: &mut serde_json::Value) {
    let point = || serde_json::json!({"cachePoint": {"type": "default"}});
    if let Some(system) = body.get_mut("system").and_then(serde_json::Value::as_array_mut)
        && !system.is_empty()
    {
        system.push(point());
    }
    let last_user = body
        .get_mut("messages")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(|messages| messages.iter_mut().rev().find(|m| m["role"] == "user"));
    if let Some(content) = last_user.and_then(|m| m["content"].as_array_mut()) {
        content.push(point());
    }
}

fn convert_usage(usage: NovaUsage) -> Usage {
    Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens }
}

fn convert_stop_reason(stop_reason: &str) -> StopReason {
    match stop_reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "content_filtered" | "guardrail_intervened" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::amazon_nova::AmazonNova;
    use crate::unified::{
        Content, Message, Part, Role, StopReason, StreamEvent, Tool, ToolCall, ToolCallDelta,
        ToolChoice, UnifiedRequest, Usage,
    };

    fn message(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    fn parts(role: Role, parts: Vec<Part>) -> Message {
        Message { role, content: Content::Parts(parts) }
    }

    fn text(text: &str) -> Part {
        Part::Text { text: text.to_owned() }
    }

    fn weather_tool() -> Tool {
        Tool {
            name: "get_weather".to_owned(),
            description: Some("The weather of a city".to_owned()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}),
        }
    }

    /// A user question, the assistant's call and the user's result.
    fn tool_history() -> Vec<Message> {
        vec![
            message(Role::User, "Weather in Paris?"),
            parts(
                Role::Assistant,
                vec![Part::ToolUse {
                    id: "tooluse_1".to_owned(),
                    name: "get_weather".to_owned(),
                    input: json!({"city": "Paris"}),
                }],
            ),
            parts(
                Role::User,
                vec![Part::ToolResult {
                    tool_use_id: "tooluse_1".to_owned(),
                    content: "18 C".to_owned(),
                    is_error: false,
                }],
            ),
        ]
    }

    fn stream_event(chunk: &str) -> StreamEvent {
        AmazonNova.decode_stream_event(chunk.as_bytes()).unwrap()
    }

    #[test]
    fn matches_understanding_models_only() {
        for id in ["amazon.nova-micro-v1:0", "amazon.nova-premier-v1:0", "amazon.nova-2-lite-v1:0"]
        {
            assert!(AmazonNova.matches(id), "{id}");
        }
        for id in [
            "amazon.nova-canvas-v1:0",
            "amazon.nova-reel-v1:1",
            "amazon.nova-sonic-v1:0",
            "amazon.nova-2-sonic-v1:0",
            "amazon.nova-2-multimodal-embeddings-v1:0",
            "amazon.titan-text-express-v1",
        ] {
            assert!(!AmazonNova.matches(id), "{id}");
        }
    }

    #[test]
    fn consecutive_turns_of_one_role_are_merged_and_prefill_is_kept() {
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "c"),
            ],
            ..UnifiedRequest::default()
        };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]}
            ])
        );
        assert!(body.get("inferenceConfig").is_none());
        assert!(body.get("toolConfig").is_none());
    }

    #[test]
    fn text_parts_are_one_block_and_split_only_by_other_parts() {
        let req = UnifiedRequest {
            messages: vec![
                parts(Role::User, vec![text("a"), text("b")]),
                message(Role::Assistant, "ok"),
                parts(
                    Role::User,
                    vec![
                        text("look"),
                        text("closely"),
                        Part::Image {
                            media_type: "image/webp".to_owned(),
                            data: "UklG".to_owned(),
                        },
                        text("and say"),
                    ],
                ),
            ],
            ..UnifiedRequest::default()
        };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "a\n\nb"}]},
                {"role": "assistant", "content": [{"text": "ok"}]},
                {"role": "user", "content": [
                    {"text": "look\n\nclosely"},
                    {"image": {"format": "webp", "source": {"bytes": "UklG"}}},
                    {"text": "and say"}
                ]}
            ])
        );
    }

    #[test]
    fn every_image_media_type_is_its_format() {
        for (media_type, format) in [
            ("image/png", "png"),
            ("image/jpeg", "jpeg"),
            ("image/gif", "gif"),
            ("image/webp", "webp"),
        ] {
            let req = UnifiedRequest {
                messages: vec![parts(
                    Role::User,
                    vec![Part::Image {
                        media_type: media_type.to_owned(),
                        data: "AAAA".to_owned(),
                    }],
                )],
                ..UnifiedRequest::default()
            };
            let body = AmazonNova.encode_request(&req).unwrap();
            assert_eq!(
                body["messages"][0]["content"],
                json!([{"image": {"format": format, "source": {"bytes": "AAAA"}}}]),
                "{media_type}"
            );
        }
    }

    #[test]
    fn tools_and_every_tool_choice() {
        let plain = Tool {
            name: "now".to_owned(),
            description: None,
            parameters: json!({"type": "object"}),
        };
        let tools = json!([
            {"toolSpec": {"name": "get_weather", "description": "The weather of a city",
                "inputSchema": {"json": {"type": "object",
                    "properties": {"city": {"type": "string"}}, "required": ["city"]}}}},
            {"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object"}}}}
        ]);
        for (choice, expected) in [
            (None, json!({"tools": tools})),
            (Some(ToolChoice::Auto), json!({"tools": tools, "toolChoice": {"auto": {}}})),
            (Some(ToolChoice::Required), json!({"tools": tools, "toolChoice": {"any": {}}})),
            (
                Some(ToolChoice::Tool("now".to_owned())),
                json!({"tools": tools, "toolChoice": {"tool": {"name": "now"}}}),
            ),
        ] {
            let req = UnifiedRequest {
                prompt: Some("Weather?".to_owned()),
                tools: vec![weather_tool(), plain.clone()],
                tool_choice: choice.clone(),
                ..UnifiedRequest::default()
            };
            let body = AmazonNova.encode_request(&req).unwrap();
            assert_eq!(body["toolConfig"], expected, "{choice:?}");
        }
    }

    #[test]
    fn tool_calls_and_results_are_blocks_and_an_error_result_says_so() {
        let mut messages = tool_history();
        messages.push(parts(
            Role::User,
            vec![Part::ToolResult {
                tool_use_id: "tooluse_1".to_owned(),
                content: "timeout".to_owned(),
                is_error: true,
            }],
        ));
        messages[1] = parts(
            Role::Assistant,
            vec![
                text("Let me look."),
                Part::ToolUse {
                    id: "tooluse_1".to_owned(),
                    name: "get_weather".to_owned(),
                    input: json!({"city": "Paris"}),
                },
            ],
        );
        let req = UnifiedRequest { messages, tools: vec![weather_tool()], ..Default::default() };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "Weather in Paris?"}]},
                {"role": "assistant", "content": [
                    {"text": "Let me look."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather",
                        "input": {"city": "Paris"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18 C"}]}},
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "timeout"}],
                        "status": "error"}}
                ]}
            ])
        );
        assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather");
    }

    #[test]
    fn tool_choice_none_sends_no_tools_and_is_refused_with_tool_history() {
        let req = UnifiedRequest {
            prompt: Some("Weather?".to_owned()),
            tools: vec![weather_tool()],
            tool_choice: Some(ToolChoice::None),
            ..UnifiedRequest::default()
        };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert!(body.get("toolConfig").is_none(), "{body}");
        let req = UnifiedRequest {
            messages: tool_history(),
            tools: vec![weather_tool()],
            tool_choice: Some(ToolChoice::None),
            ..UnifiedRequest::default()
        };
        let err = AmazonNova.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "amazon_nova", .. }), "{err}");
    }

    #[test]
    fn tool_history_without_tools_is_invalid() {
        let req = UnifiedRequest { messages: tool_history(), ..UnifiedRequest::default() };
        let err = AmazonNova.encode_request(&req).unwrap_err();
        assert_eq!(
            err.to_string(),
            TranslateError::InvalidRequest(
                "the amazon_nova family needs `tools` when `messages` hold tool calls or results"
                    .to_owned()
            )
            .to_string()
        );
    }

    fn video(format: &str, data: &str) -> Part {
        Part::Video { format: format.to_owned(), data: data.to_owned() }
    }

    #[test]
    fn every_video_format_is_a_video_block_of_that_format() {
        for format in crate::unified::VIDEO_FORMATS {
            let req = UnifiedRequest {
                messages: vec![parts(
                    Role::User,
                    vec![text("What happens?"), video(format, "AAAA")],
                )],
                ..UnifiedRequest::default()
            };
            let body = AmazonNova.encode_request(&req).unwrap();
            assert_eq!(
                body["messages"],
                json!([{"role": "user", "content": [
                    {"text": "What happens?"},
                    {"video": {"format": format, "source": {"bytes": "AAAA"}}}
                ]}]),
                "{format}"
            );
        }
    }

    #[test]
    fn a_video_beside_images_in_a_later_turn_is_sent_and_a_second_video_is_refused() {
        let image = Part::Image { media_type: "image/png".to_owned(), data: "iVBO".to_owned() };
        let mut messages = vec![
            parts(Role::User, vec![image.clone(), text("and")]),
            message(Role::Assistant, "ok"),
            parts(Role::User, vec![video("mov", "AAAA"), image]),
        ];
        let req = UnifiedRequest { messages: messages.clone(), ..UnifiedRequest::default() };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"][2],
            json!({"role": "user", "content": [
                {"video": {"format": "mov", "source": {"bytes": "AAAA"}}},
                {"image": {"format": "png", "source": {"bytes": "iVBO"}}}
            ]})
        );
        messages.push(message(Role::Assistant, "a cat"));
        messages.push(parts(Role::User, vec![video("mp4", "BBBB")]));
        let req = UnifiedRequest { messages, ..UnifiedRequest::default() };
        assert_eq!(
            AmazonNova.encode_request(&req).unwrap_err().to_string(),
            TranslateError::InvalidRequest(
                "the amazon_nova family takes at most 1 video per request (Nova's limit), got 2"
                    .to_owned()
            )
            .to_string()
        );
    }

    #[test]
    fn a_video_over_25_mib_of_base64_is_refused_and_one_at_the_limit_is_sent() {
        let at_limit = "A".repeat(super::MAX_VIDEO_BASE64_BYTES);
        let req = UnifiedRequest {
            messages: vec![parts(Role::User, vec![video("webm", &at_limit)])],
            ..UnifiedRequest::default()
        };
        assert!(AmazonNova.encode_request(&req).is_ok());
        let over = format!("{at_limit}AAAA");
        let req = UnifiedRequest {
            messages: vec![parts(Role::User, vec![video("webm", &over)])],
            ..UnifiedRequest::default()
        };
        assert_eq!(
            AmazonNova.encode_request(&req).unwrap_err().to_string(),
            TranslateError::InvalidRequest(
                "a video of the amazon_nova family is at most 26214400 bytes of base64 (Nova's \
                 25 MB limit for a video sent as bytes), got 26214404"
                    .to_owned()
            )
            .to_string()
        );
    }

    #[test]
    fn documents_are_unsupported() {
        let req = UnifiedRequest {
            messages: vec![parts(
                Role::User,
                vec![Part::Document {
                    format: "pdf".to_owned(),
                    name: "report".to_owned(),
                    data: "JVBE".to_owned(),
                }],
            )],
            ..UnifiedRequest::default()
        };
        let err = AmazonNova.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "amazon_nova", .. }), "{err}");
    }

    #[test]
    fn reasoning_enables_extended_thinking_beside_the_other_settings() {
        let req = UnifiedRequest {
            prompt: Some("Think".to_owned()),
            max_tokens: Some(100),
            reasoning: true,
            ..UnifiedRequest::default()
        };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert_eq!(
            body["inferenceConfig"],
            json!({"maxTokens": 100,
                "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "medium"}})
        );
        let req = UnifiedRequest { prompt: Some("Think".to_owned()), ..UnifiedRequest::default() };
        assert!(AmazonNova.encode_request(&req).unwrap().get("inferenceConfig").is_none());
    }

    #[test]
    fn assistant_first_is_unsupported() {
        let req = UnifiedRequest {
            messages: vec![message(Role::Assistant, "hi"), message(Role::User, "yo")],
            ..UnifiedRequest::default()
        };
        let err = AmazonNova.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "amazon_nova", .. }));
    }

    #[test]
    fn response_without_output_is_malformed() {
        let err = AmazonNova.decode_response(br#"{"stopReason":"end_turn"}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn tool_use_and_reasoning_blocks_are_decoded_apart_from_the_text() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[
            {"reasoningContent":{"reasoningText":{"text":"hmm"}}},{"text":"Hi"},
            {"reasoningContent":{"redactedContent":"AAAA"}},
            {"reasoningContent":{"reasoningText":{"text":", ok"}}},
            {"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}},
            {"toolUse":{"toolUseId":"t2","name":"g"}}]}},"stopReason":"tool_use"}"#;
        let res = AmazonNova.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("Hi", StopReason::ToolUse));
        assert_eq!(res.reasoning.as_deref(), Some("hmm, ok"));
        assert_eq!(
            res.tool_calls,
            vec![
                ToolCall { id: "t1".to_owned(), name: "f".to_owned(), input: json!({"a": 1}) },
                ToolCall { id: "t2".to_owned(), name: "g".to_owned(), input: json!({}) },
            ]
        );
        let plain =
            br#"{"output":{"message":{"content":[{"text":"Hi"}]}},"stopReason":"end_turn"}"#;
        let res = AmazonNova.decode_response(plain).unwrap();
        assert_eq!((res.reasoning, res.tool_calls), (None, vec![]));
    }

    #[test]
    fn a_tool_use_block_without_id_is_malformed() {
        let body = br#"{"output":{"message":{"content":[{"toolUse":{"name":"f","input":{}}}]}}}"#;
        let err = AmazonNova.decode_response(body).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn streamed_tool_call_opens_at_its_block_and_grows_by_pieces() {
        let start = stream_event(
            r#"{"contentBlockStart":{"start":{"toolUse":{"toolUseId":"tooluse_1","name":"f"}},"contentBlockIndex":1}}"#,
        );
        assert_eq!(
            start,
            StreamEvent {
                tool_calls: vec![ToolCallDelta {
                    index: 1,
                    id: Some("tooluse_1".to_owned()),
                    name: Some("f".to_owned()),
                    arguments: String::new(),
                }],
                ..StreamEvent::default()
            }
        );
        let piece = stream_event(
            r#"{"contentBlockDelta":{"delta":{"toolUse":{"input":"{\"a\""}},"contentBlockIndex":1}}"#,
        );
        assert_eq!(
            piece,
            StreamEvent {
                tool_calls: vec![ToolCallDelta {
                    index: 1,
                    arguments: "{\"a\"".to_owned(),
                    ..ToolCallDelta::default()
                }],
                ..StreamEvent::default()
            }
        );
        let stop = stream_event(r#"{"messageStop":{"stopReason":"tool_use"}}"#);
        assert_eq!(stop.stop_reason, Some(StopReason::ToolUse));
        // A text block's start opens no call.
        let text_start =
            stream_event(r#"{"contentBlockStart":{"start":{},"contentBlockIndex":0}}"#);
        assert_eq!(text_start, StreamEvent::default());
    }

    #[test]
    fn streamed_reasoning_is_not_text() {
        for chunk in [
            r#"{"contentBlockDelta":{"delta":{"reasoningContent":{"text":"hmm"}},"contentBlockIndex":0}}"#,
            r#"{"contentBlockDelta":{"delta":{"reasoningContent":{"reasoningText":{"text":"hmm"}}},"contentBlockIndex":0}}"#,
        ] {
            let event = stream_event(chunk);
            assert_eq!(
                event,
                StreamEvent { reasoning: "hmm".to_owned(), ..StreamEvent::default() },
                "{chunk}"
            );
        }
        let signature = stream_event(
            r#"{"contentBlockDelta":{"delta":{"reasoningContent":{"signature":"c2ln"}},"contentBlockIndex":0}}"#,
        );
        assert_eq!(signature, StreamEvent::default());
    }

    #[test]
    fn metadata_usage_overrides_invocation_metrics() {
        let chunk = br#"{"metadata":{"usage":{"inputTokens":12,"outputTokens":13.0}},
            "amazon-bedrock-invocationMetrics":{"inputTokenCount":99,"outputTokenCount":99}}"#;
        let event = AmazonNova.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(12), output_tokens: Some(13) });
        assert_eq!(event.stop_reason, None);
    }
}
