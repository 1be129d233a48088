//! Anthropic Claude through the Messages API: `anthropic.claude-3*` and every later
//! Claude model id (`anthropic.claude-sonnet-4-*`, `anthropic.claude-opus-4-*`, ...).
//! The legacy `anthropic.claude-v2*` and `anthropic.claude-instant-*` ids speak Text
//! Completions, which is another family.
//!
//! The request is `{"anthropic_version", "max_tokens", "system", "messages", "tools",
//! "tool_choice", "thinking", ...}`; the answer is the `content` blocks with `usage` (wire
//! reference §4.4; AWS "Anthropic Claude Messages API", "Request and Response", "Tool use",
//! "Extended thinking"). A stream is a `message_start` ... `message_stop` sequence of
//! events.
//!
//! Decisions:
//! - A message of text only (a string, or parts that are all text, joined by a blank line)
//!   keeps string content; a message with any other part becomes an array of content
//!   blocks, in the parts' order: `text {text}` (empty texts dropped: Claude refuses empty
//!   text blocks), `image {source: {type: base64, media_type, data}}`, `document`,
//!   `tool_use {id, name, input}` and `tool_result {tool_use_id, content, is_error}` (the
//!   content a string, `is_error` sent only when true). The system prompt stays a string
//!   (the system messages' texts joined by a blank line).
//! - Documents: Claude's `document` block takes a PDF as `{type: base64, media_type:
//!   application/pdf, data}` and plain text as `{type: text, media_type: text/plain, data:
//!   <the text itself>}` (Anthropic's Messages API: `Base64PDFSource` and
//!   `PlainTextSource`; a base64 source is PDF only). So `pdf` is sent as it is, and
//!   `txt`, `md`, `csv` and `html` are decoded from base64 here (it must be UTF-8) and
//!   sent as plain text; the part's `name` (when not empty) is the block's `title`.
//!   Claude's block has no source for `doc`, `docx`, `xls` or `xlsx`, so those are refused
//!   as unsupported. AWS's "API restrictions" page says InvokeModel takes no documents at
//!   all, which Anthropic's own PDF support on Bedrock contradicts [U].
//! - Claude requires user and assistant turns to alternate, starting with a user turn:
//!   consecutive messages of one role are merged, text-only runs as one string joined by
//!   a blank line (as `common::alternating_turns` does), any other run as the
//!   concatenation of its blocks (a string becoming a text block). A conversation whose
//!   first turn is the assistant's is refused. In a merged user turn the `tool_result`
//!   blocks are moved (in order) before its other blocks: Anthropic refuses a user
//!   message whose tool results do not come first.
//! - A final assistant message is a prefill the model continues; Claude refuses one
//!   that ends in whitespace, so its trailing whitespace is trimmed (of its last block, when
//!   that is a text block; a text block left empty is dropped).
//! - `tools` are `[{name, description, input_schema: parameters}]`. `tool_choice`: `auto`
//!   is `{type: auto}`, `required` is `{type: any}`, a named tool is `{type: tool, name}`
//!   and `none` is `{type: none}` with the tools still sent: Anthropic documents `none`
//!   (its Messages API since 2025), and a conversation that holds tool calls must still
//!   define its tools; Bedrock's support of `none` on every Claude model is [U]. No
//!   `tool_choice` sends none (Claude's default, `auto`).
//! - `reasoning: true` is `thinking: {type: enabled, budget_tokens: B}` (AWS "Extended
//!   thinking"): Claude needs `1024 <= B < max_tokens`, so `B` is half of `max_tokens`,
//!   at least [`MIN_THINKING_BUDGET`]; without a `max_tokens`, [`REASONING_MAX_TOKENS`] is
//!   sent (`B` = 2048), and a `max_tokens` of 1024 or less is refused. Thinking "isn't
//!   compatible with temperature, top_p, or top_k modifications or forced tool use" and
//!   "you cannot pre-fill responses when thinking is enabled" (AWS "Extended thinking"),
//!   so `reasoning` with any of `temperature`, `top_p`, `top_k`, with `tool_choice`
//!   `required` or a named tool, or with a final assistant message is refused as an
//!   invalid request. Anthropic wants the thinking blocks of the turn that called a tool
//!   sent back with its results; the unified messages have no thinking part, so such a
//!   continuation with `reasoning` on is left to Claude to accept or refuse [U].
//! - `max_tokens` is required by Claude, so [`DEFAULT_MAX_TOKENS`] fills it when the
//!   request has none. Its upper limit depends on the model and is left to Bedrock.
//! - `top_k` is not range-checked: Bedrock's documented bound (500) is unconfirmed.
//! - `cache_prompt`: `cache_control: {type: ephemeral}` breakpoints on the system prompt
//!   (a string becomes one text block), on the last block of the last user message (a
//!   string content becomes one text block) and on the last tool. Anthropic's prefix
//!   order is tools, system, messages, so the tools' breakpoint keeps their definitions
//!   cached when the system prompt changes; Bedrock lists `tools` among Claude's
//!   cacheable fields (AWS "Prompt caching for faster model inference"), and the three
//!   breakpoints stay under Claude's four.
//! - Answers: the `text` blocks joined are the text, the `tool_use` blocks the tool
//!   calls (a missing `input` is `{}`), the `thinking` blocks' texts joined (with
//!   nothing between them, as the stream's deltas join) the reasoning; `redacted_thinking`
//!   and other blocks are skipped.
//! - Stop reasons: `end_turn` ends the turn, `max_tokens` and
//!   `model_context_window_exceeded` are a length stop, `stop_sequence` is a stop
//!   sequence, `refusal` is a content filter, `tool_use` is a tool use; `pause_turn` and
//!   anything newer are `Other`.
//! - Streams: input tokens come from `message_start`, output tokens from the last
//!   `message_delta`. A `content_block_start` of a `tool_use` block is the first piece of
//!   a tool call (`index`: the event's block index, its id and name), each non-empty
//!   `input_json_delta` the next piece of its arguments; a `thinking_delta` is reasoning.
//!   `ping`, the other block starts, the block stops and the `signature_delta` and
//!   `citations_delta` deltas contribute nothing; a chunk of an unknown (or no) `type`, a
//!   delta of an unknown type and an `error` event (which Bedrock sends as an exception
//!   frame instead) are reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED`) is a
//!   `content_filter` stop. A blocked input answers InvokeModel with
//!   `{"type": "message", "role": "assistant", "content": [{"type": "text", "text":
//!   <the guardrail's message>}], "amazon-bedrock-guardrailAction": "INTERVENED",
//!   "amazon-bedrock-trace": {...}}`, without `stop_reason` or `usage` (a model invocation
//!   log in panther-labs/panther-analysis
//!   `rules/aws_bedrock_rules/aws_bedrockmodelinvocation_guardrailintervened.yml`). No
//!   blocked Claude stream was found: a chunk of that whole-message shape is read too
//!   (its text blocks are the text), besides the guardrail key on any event.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, decode_guarded_response, finish_stream_event, parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, de_count, parse_body, to_body};
use crate::unified::{
    Content, Param, Part, Role, StopReason, StreamEvent, Tool, ToolCall, ToolCallDelta, ToolChoice,
    UnifiedRequest, UnifiedResponse, Usage,
};

/// The Anthropic Claude Messages family.
#[derive(Debug, Clone, Copy)]
pub struct AnthropicClaudeMessages;

const ID: &str = "anthropic_claude_messages";

/// The `anthropic_version` Bedrock requires in every Messages body.
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// `max_tokens` when the request does not set it. Claude requires the field; 1024 fits
/// most chat answers and keeps a forgotten limit cheap.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// `max_tokens` when the request asks for reasoning and sets none: room for a thinking
/// budget of half of it (2048) and an answer after it.
const REASONING_MAX_TOKENS: u32 = 4096;

/// Claude's smallest thinking budget (`thinking.budget_tokens`).
const MIN_THINKING_BUDGET: u32 = 1024;

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct ClaudeMessagesRequest<'a> {
    anthropic_version: &'static str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<ClaudeMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ClaudeTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ClaudeToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<ClaudeThinking>,
}

#[derive(Debug, Serialize)]
struct ClaudeMessage<'a> {
    role: &'static str,
    content: ClaudeContent<'a>,
}

/// A message's content: a string for text only, else content blocks.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ClaudeContent<'a> {
    Text(String),
    Blocks(Vec<ClaudeBlock<'a>>),
}

/// One content block of a request message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClaudeBlock<'a> {
    Text {
        text: Cow<'a, str>,
    },
    Image {
        source: ClaudeSource<'a>,
    },
    Document {
        source: ClaudeSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a serde_json::Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// The `source` of an image or document block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClaudeSource<'a> {
    /// Base64 `data` of `media_type` (an image, or a PDF).
    Base64 { media_type: &'a str, data: &'a str },
    /// A plain-text document: `data` is the text itself.
    Text { media_type: &'static str, data: String },
}

/// One tool definition.
#[derive(Debug, Serialize)]
struct ClaudeTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a serde_json::Value,
}

/// `tool_choice`: `{type: auto | any | none}` or `{type: tool, name}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClaudeToolChoice<'a> {
    Auto,
    Any,
    None,
    Tool { name: &'a str },
}

/// `thinking: {type: enabled, budget_tokens}`.
#[derive(Debug, Serialize)]
struct ClaudeThinking {
    #[serde(rename = "type")]
    thinking_type: &'static str,
    budget_tokens: u32,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct ClaudeMessagesResponse {
    content: Vec<ClaudeContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

/// One content block of an answer (or a stream's `content_block_start`): `text {text}`,
/// `tool_use {id, name, input}`, `thinking {thinking, signature}`, `redacted_thinking`, ...
#[derive(Debug, Default, Deserialize)]
struct ClaudeContentBlock {
    #[serde(rename = "type", default)]
    block_type: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ClaudeUsage {
    #[serde(default, deserialize_with = "de_count")]
    input_tokens: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    output_tokens: Option<u32>,
}

/// One decoded stream chunk: an event named by `type`, with the keys of that event.
#[derive(Debug, Deserialize)]
struct ClaudeStreamEvent {
    #[serde(rename = "type", default)]
    event_type: Option<String>,
    /// `content_block_start` and `content_block_delta`: the block's index in `content`.
    #[serde(default)]
    index: Option<u32>,
    /// `content_block_start`: the block, empty (`tool_use` with its id and name).
    #[serde(default)]
    content_block: Option<ClaudeContentBlock>,
    /// `message_start`: the message so far, with the input token count.
    #[serde(default)]
    message: Option<ClaudeStartMessage>,
    /// `content_block_delta`: `{type: text_delta, text}`, `{type: input_json_delta,
    /// partial_json}`, `{type: thinking_delta, thinking}`, ...; `message_delta`:
    /// `{stop_reason}`.
    #[serde(default)]
    delta: Option<ClaudeDelta>,
    /// `message_delta`: the output token count so far.
    #[serde(default)]
    usage: Option<ClaudeUsage>,
    /// A whole `message` (the response's shape) sent as one chunk, as a blocked input
    /// might be: its text blocks are the text.
    #[serde(default)]
    content: Option<Vec<ClaudeContentBlock>>,
}

#[derive(Debug, Deserialize)]
struct ClaudeStartMessage {
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct ClaudeDelta {
    #[serde(rename = "type", default)]
    delta_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

impl TextFamily for AnthropicClaudeMessages {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("anthropic.claude-")
            && !base_model_id.starts_with("anthropic.claude-v")
            && !base_model_id.starts_with("anthropic.claude-instant-")
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
            Param::DocumentInput,
            Param::Reasoning,
        ]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "anthropic_version",
            "max_tokens",
            "system",
            "messages",
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
            "tools",
            "tool_choice",
            "thinking",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let mut body = to_body(ID, &convert_request(req)?)?;
        if req.cache_prompt {
            mark_cache_prefix(&mut body);
        }
        Ok(body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let GuardedChunk { chunk: event, mut usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<ClaudeStreamEvent>(ID, chunk)?;
        let mut stream_event = StreamEvent::default();
        let index = event.index.unwrap_or_default();
        let known = match event.event_type.as_deref().unwrap_or_default() {
            "message_start" => {
                let input_tokens = event
                    .message
                    .and_then(|message| message.usage)
                    .and_then(|start_usage| start_usage.input_tokens);
                usage.update(Usage { input_tokens, output_tokens: None });
                true
            }
            "content_block_start" => {
                if let Some(block) = event.content_block
                    && block.block_type == "tool_use"
                {
                    stream_event.tool_calls.push(ToolCallDelta {
                        index,
                        id: Some(block.id.unwrap_or_default()),
                        name: Some(block.name.unwrap_or_default()),
                        arguments: String::new(),
                    });
                }
                true
            }
            "content_block_delta" => {
                let delta = event.delta.unwrap_or_default();
                match delta.delta_type.as_deref().unwrap_or_default() {
                    "text_delta" => {
                        stream_event.text = delta.text.unwrap_or_default();
                        true
                    }
                    "input_json_delta" => {
                        stream_event.tool_calls.extend(
                            delta.partial_json.filter(|piece| !piece.is_empty()).map(|arguments| {
                                ToolCallDelta { index, arguments, ..Default::default() }
                            }),
                        );
                        true
                    }
                    "thinking_delta" => {
                        stream_event.reasoning = delta.thinking.unwrap_or_default();
                        true
                    }
                    other => EMPTY_DELTAS.contains(&other),
                }
            }
            "message_delta" => {
                stream_event.stop_reason = event
                    .delta
                    .and_then(|delta| delta.stop_reason)
                    .as_deref()
                    .map(convert_stop_reason);
                let output_tokens = event.usage.and_then(|delta_usage| delta_usage.output_tokens);
                usage.update(Usage { input_tokens: None, output_tokens });
                true
            }
            "message" => {
                let blocks = event.content.unwrap_or_default().into_iter();
                let texts = blocks.filter(|block| block.block_type == "text");
                stream_event.text = texts.filter_map(|block| block.text).collect();
                true
            }
            other => EMPTY_EVENTS.contains(&other),
        };
        stream_event.usage = usage;
        Ok(finish_stream_event(stream_event, known, guardrail_intervened))
    }
}

/// The stream events that carry nothing this gateway reads.
const EMPTY_EVENTS: &[&str] = &["content_block_stop", "message_stop", "ping"];

/// The `content_block_delta` types that carry nothing this gateway reads (the thinking's
/// signature, citations).
const EMPTY_DELTAS: &[&str] = &["signature_delta", "citations_delta"];

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: ClaudeMessagesResponse = parse_body(ID, body)?;
    let usage = res.usage.unwrap_or_default();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in res.content {
        match block.block_type.as_str() {
            "text" => text.push_str(&block.text.unwrap_or_default()),
            "thinking" => reasoning.push_str(&block.thinking.unwrap_or_default()),
            "tool_use" => tool_calls.push(ToolCall {
                id: block.id.unwrap_or_default(),
                name: block.name.unwrap_or_default(),
                input: block.input.unwrap_or_else(|| serde_json::json!({})),
            }),
            _ => {}
        }
    }
    Ok(UnifiedResponse {
        text,
        stop_reason: res.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason),
        usage: Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens },
        tool_calls,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
    })
}

fn convert_request(req: &UnifiedRequest) -> Result<ClaudeMessagesRequest<'_>, TranslateError> {
    let mut turns = convert_turns(req)?;
    let ends_with_prefill = turns.last().is_some_and(|(role, _)| *role == Role::Assistant);
    if let Some((Role::Assistant, prefill)) = turns.last_mut() {
        trim_prefill(prefill);
    }
    let (max_tokens, thinking) = if req.reasoning {
        check_reasoning(req, ends_with_prefill)?;
        let max_tokens = req.max_tokens.unwrap_or(REASONING_MAX_TOKENS);
        let thinking = ClaudeThinking {
            thinking_type: "enabled",
            budget_tokens: thinking_budget(max_tokens)?,
        };
        (max_tokens, Some(thinking))
    } else {
        (req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS), None)
    };
    let system: Vec<Cow<'_, str>> = req
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.content.text())
        .collect();
    Ok(ClaudeMessagesRequest {
        anthropic_version: ANTHROPIC_VERSION,
        max_tokens,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns
            .into_iter()
            .map(|(role, content)| ClaudeMessage {
                role: if role == Role::Assistant { "assistant" } else { "user" },
                content,
            })
            .collect(),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: &req.stop,
        tools: req.tools.iter().map(convert_tool).collect(),
        tool_choice: req.tool_choice.as_ref().map(convert_tool_choice),
        thinking,
    })
}

/// The request's user and assistant turns, alternating: consecutive messages of one role
/// merged, tool results first in each user turn. A plain `prompt` is one user turn.
fn convert_turns(req: &UnifiedRequest) -> Result<Vec<(Role, ClaudeContent<'_>)>, TranslateError> {
    if let Some(prompt) = &req.prompt {
        return Ok(vec![(Role::User, ClaudeContent::Text(prompt.clone()))]);
    }
    let mut turns: Vec<(Role, ClaudeContent<'_>)> = Vec::with_capacity(req.messages.len());
    for (i, message) in req.messages.iter().enumerate() {
        let role = match message.role {
            Role::System => continue,
            Role::User => Role::User,
            Role::Assistant => Role::Assistant,
        };
        let content = convert_content(i, &message.content)?;
        match turns.last_mut() {
            Some((last_role, merged)) if *last_role == role => merge_content(merged, content),
            _ => turns.push((role, content)),
        }
    }
    if turns.first().is_some_and(|(role, _)| *role == Role::Assistant) {
        return Err(TranslateError::InvalidRequest(format!(
            "the first message after the `system` messages must be a `user` message for the \
             {ID} model family"
        )));
    }
    for (role, content) in &mut turns {
        if *role == Role::User
            && let ClaudeContent::Blocks(blocks) = content
        {
            // A stable sort: the results keep their order, and so do the other blocks.
            blocks.sort_by_key(|block| !matches!(block, ClaudeBlock::ToolResult { .. }));
        }
    }
    Ok(turns)
}

/// A message's content: a string when it is text only, else its parts as blocks.
fn convert_content(
    message_index: usize,
    content: &Content,
) -> Result<ClaudeContent<'_>, TranslateError> {
    let parts = match content {
        Content::Parts(parts) if !parts.iter().all(|part| matches!(part, Part::Text { .. })) => {
            parts
        }
        _ => return Ok(ClaudeContent::Text(content.text().into_owned())),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        let block = match part {
            Part::Text { text } if text.is_empty() => continue,
            Part::Text { text } => ClaudeBlock::Text { text: Cow::Borrowed(text) },
            Part::Image { media_type, data } => {
                ClaudeBlock::Image { source: ClaudeSource::Base64 { media_type, data } }
            }
            Part::Document { format, name, data } => ClaudeBlock::Document {
                source: convert_document(message_index, format, name, data)?,
                title: (!name.is_empty()).then_some(name.as_str()),
            },
            Part::ToolUse { id, name, input } => ClaudeBlock::ToolUse { id, name, input },
            Part::ToolResult { tool_use_id, content, is_error } => {
                ClaudeBlock::ToolResult { tool_use_id, content, is_error: *is_error }
            }
            // The codec refuses it first (not in `params()`); Claude takes no video.
            Part::Video { .. } => {
                return Err(TranslateError::Unsupported {
                    family: ID,
                    feature: "`video parts`".to_owned(),
                });
            }
        };
        blocks.push(block);
    }
    Ok(ClaudeContent::Blocks(blocks))
}

/// A document's source: a PDF as base64, the text formats as their text.
fn convert_document<'a>(
    message_index: usize,
    format: &str,
    name: &str,
    data: &'a str,
) -> Result<ClaudeSource<'a>, TranslateError> {
    match format {
        "pdf" => Ok(ClaudeSource::Base64 { media_type: "application/pdf", data }),
        "txt" | "md" | "csv" | "html" => {
            let invalid = |what: &str| {
                TranslateError::InvalidRequest(format!(
                    "`messages[{message_index}]`: the data of document `{}` {what}",
                    name.chars().take(80).collect::<String>()
                ))
            };
            let bytes = decode_base64(data).ok_or_else(|| invalid("is not valid base64"))?;
            let text = String::from_utf8(bytes).map_err(|_| invalid("is not UTF-8 text"))?;
            Ok(ClaudeSource::Text { media_type: "text/plain", data: text })
        }
        other => Err(TranslateError::Unsupported {
            family: ID,
            feature: format!(
                "document format `{}` (only pdf, txt, md, csv and html)",
                other.chars().take(80).collect::<String>()
            ),
        }),
    }
}

/// Appends `later` to a turn of the same role: two strings join with a blank line,
/// anything else concatenates as blocks.
fn merge_content<'a>(merged: &mut ClaudeContent<'a>, later: ClaudeContent<'a>) {
    match (&mut *merged, later) {
        (ClaudeContent::Text(text), ClaudeContent::Text(later)) => {
            text.push_str("\n\n");
            text.push_str(&later);
        }
        (ClaudeContent::Blocks(blocks), later) => blocks.extend(into_blocks(later)),
        (ClaudeContent::Text(text), ClaudeContent::Blocks(later)) => {
            let mut blocks = into_blocks(ClaudeContent::Text(std::mem::take(text)));
            blocks.extend(later);
            *merged = ClaudeContent::Blocks(blocks);
        }
    }
}

/// The content as blocks: a non-empty string is one text block.
fn into_blocks(content: ClaudeContent<'_>) -> Vec<ClaudeBlock<'_>> {
    match content {
        ClaudeContent::Text(text) if text.is_empty() => Vec::new(),
        ClaudeContent::Text(text) => vec![ClaudeBlock::Text { text: Cow::Owned(text) }],
        ClaudeContent::Blocks(blocks) => blocks,
    }
}

/// Trims the trailing whitespace of a prefill: of the string, or of the last block when
/// that is a text block (dropped when nothing is left of it).
fn trim_prefill(prefill: &mut ClaudeContent<'_>) {
    match prefill {
        ClaudeContent::Text(text) => text.truncate(text.trim_end().len()),
        ClaudeContent::Blocks(blocks) => {
            if let Some(ClaudeBlock::Text { text }) = blocks.last_mut() {
                let trimmed_len = text.trim_end().len();
                match text {
                    Cow::Borrowed(borrowed) => *borrowed = &borrowed[..trimmed_len],
                    Cow::Owned(owned) => owned.truncate(trimmed_len),
                }
                if text.is_empty() {
                    blocks.pop();
                }
            }
        }
    }
}

/// Refuses what Claude's extended thinking does not take: sampling parameters, a forced
/// tool call and a prefill.
fn check_reasoning(req: &UnifiedRequest, ends_with_prefill: bool) -> Result<(), TranslateError> {
    let sampling: Vec<&str> = [
        ("`temperature`", req.temperature.is_some()),
        ("`top_p`", req.top_p.is_some()),
        ("`top_k`", req.top_k.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    if !sampling.is_empty() {
        return Err(TranslateError::InvalidRequest(format!(
            "{} cannot be set together with `reasoning` for the {ID} model family (Claude's \
             extended thinking takes no sampling parameters)",
            sampling.join(", ")
        )));
    }
    if matches!(req.tool_choice, Some(ToolChoice::Required | ToolChoice::Tool(_))) {
        return Err(TranslateError::InvalidRequest(format!(
            "a `tool_choice` that forces a tool call cannot be used together with `reasoning` \
             for the {ID} model family (use `auto` or `none`)"
        )));
    }
    if ends_with_prefill {
        return Err(TranslateError::InvalidRequest(format!(
            "a final `assistant` message (a prefill) cannot be used together with `reasoning` \
             for the {ID} model family"
        )));
    }
    Ok(())
}

/// The thinking budget for `max_tokens`: half of it, at least [`MIN_THINKING_BUDGET`], and
/// below `max_tokens` (as Claude requires).
fn thinking_budget(max_tokens: u32) -> Result<u32, TranslateError> {
    if max_tokens <= MIN_THINKING_BUDGET {
        return Err(TranslateError::InvalidRequest(format!(
            "`max_tokens` must be above {MIN_THINKING_BUDGET} with `reasoning` for the {ID} \
             model family (the thinking budget is at least {MIN_THINKING_BUDGET} tokens and \
             below `max_tokens`), got {max_tokens}"
        )));
    }
    Ok((max_tokens / 2).max(MIN_THINKING_BUDGET))
}

fn convert_tool(tool: &Tool) -> ClaudeTool<'_> {
    ClaudeTool {
        name: &tool.name,
        description: tool.description.as_deref(),
        input_schema: &tool.parameters,
    }
}

fn convert_tool_choice(choice: &ToolChoice) -> ClaudeToolChoice<'_> {
    match choice {
        ToolChoice::Auto => ClaudeToolChoice::Auto,
        ToolChoice::Required => ClaudeToolChoice::Any,
        ToolChoice::None => ClaudeToolChoice::None,
        ToolChoice::Tool(name) => ClaudeToolChoice::Tool { name },
    }
}

/// Standard base64 (RFC 4648 §4), padded or not; `None` when it is not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    let n_padding = text.len() - unpadded.len();
    let padding_fits = n_padding == 0 || (n_padding <= 2 && text.len().is_multiple_of(4));
    if !padding_fits || unpadded.len() % 4 == 1 {
        return None;
    }
    let mut bytes = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    for symbol in unpadded.bytes() {
        let value = match symbol {
            b'A'..=b'Z' => symbol - b'A',
            b'a'..=b'z' => symbol - b'a' + 26,
            b'0'..=b'9' => symbol - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            bytes.push(((bits >> n_bits) & 0xff).to_le_bytes()[0]);
            bits &= (1 << n_bits) - 1;
        }
    }
    Some(bytes)
}

/// Prompt caching (`cache_prompt`): a `cache_control: {"type": "ephemeral"}` breakpoint
/// on the system prompt, on the last block of the last user message and on the last tool,
/// so that the tools, the system prompt and the conversation up to the new turn are cached
/// (AWS "Prompt caching for faster model inference"; Anthropic's Messages API takes at
/// most four breakpoints). String contents become one text block each, which carry the
/// breakpoint.
fn mark_cache_prefix(body: &mut serde_json::Value) {
    let breakpoint = || serde_json::json!({"type": "ephemeral"});
    if let Some(system) = body.get_mut("system")
        && let Some(text) = system.as_str().map(str::to_owned)
    {
        *system =
            serde_json::json!([{"type": "text", "text": text, "cache_control": breakpoint()}]);
    }
    let last_tool = body
        .get_mut("tools")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(|tools| tools.last_mut())
        .and_then(serde_json::Value::as_object_mut);
    if let Some(tool) = last_tool {
        tool.insert("cache_control".to_owned(), breakpoint());
    }
    let last_user = body
        .get_mut("messages")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(|messages| messages.iter_mut().rev().find(|m| m["role"] == "user"));
    let Some(message) = last_user else { return };
    if let Some(text) = message["content"].as_str().map(str::to_owned) {
        message["content"] =
            serde_json::json!([{"type": "text", "text": text, "cache_control": breakpoint()}]);
    } else if let Some(block) = message["content"]
        .as_array_mut()
        .and_then(|blocks| blocks.last_mut())
        .and_then(serde_json::Value::as_object_mut)
    {
        block.insert("cache_control".to_owned(), breakpoint());
    }
}

fn convert_stop_reason(stop_reason: &str) -> StopReason {
    match stop_reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::ContentFilter,
        "tool_use" => StopReason::ToolUse,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::anthropic_claude_messages::{
        AnthropicClaudeMessages, DEFAULT_MAX_TOKENS, decode_base64,
    };
    use crate::unified::{
        Content, Message, Part, Role, StopReason, StreamEvent, Tool, ToolCallDelta, ToolChoice,
        UnifiedRequest, Usage,
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

    fn tool_use(id: &str, name: &str, input: serde_json::Value) -> Part {
        Part::ToolUse { id: id.to_owned(), name: name.to_owned(), input }
    }

    fn tool_result(tool_use_id: &str, content: &str, is_error: bool) -> Part {
        Part::ToolResult {
            tool_use_id: tool_use_id.to_owned(),
            content: content.to_owned(),
            is_error,
        }
    }

    fn document(format: &str, name: &str, data: &str) -> Part {
        Part::Document { format: format.to_owned(), name: name.to_owned(), data: data.to_owned() }
    }

    fn weather_tool() -> Tool {
        Tool {
            name: "get_weather".to_owned(),
            description: Some("The weather in a city.".to_owned()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}),
        }
    }

    fn conversation(messages: Vec<Message>) -> UnifiedRequest {
        UnifiedRequest { messages, ..UnifiedRequest::default() }
    }

    #[test]
    fn tools_images_documents_and_reasoning_are_honoured() {
        use crate::unified::Param;
        let params = AnthropicClaudeMessages.params();
        for param in [Param::Tools, Param::ImageInput, Param::DocumentInput, Param::Reasoning] {
            assert!(params.contains(&param), "{param:?}");
        }
        // A structured output is the codec's forced tool call, not a field of Claude's.
        assert!(!params.contains(&Param::ResponseFormat));
        let paths = AnthropicClaudeMessages.mapped_paths();
        for path in ["tools", "tool_choice", "thinking"] {
            assert!(paths.contains(&path), "{path}");
        }
    }

    #[test]
    fn parts_become_content_blocks() {
        let req = conversation(vec![
            message(Role::System, "Be brief."),
            parts(Role::System, vec![text("Answer in English."), text("Cite pages.")]),
            parts(
                Role::User,
                vec![
                    text("What is in these?"),
                    text(""),
                    Part::Image { media_type: "image/png".to_owned(), data: "iVBORw0K".to_owned() },
                    document("pdf", "Manual", "JVBERi0x"),
                    // "a,b\n1,2\n"
                    document("csv", "Table", "YSxiCjEsMgo="),
                ],
            ),
            // Parts of text only are a string, as a string content is.
            parts(Role::Assistant, vec![text("A manual"), text("and a table.")]),
        ]);
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        assert_eq!(body["system"], json!("Be brief.\n\nAnswer in English.\n\nCite pages."));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image", "source":
                        {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                    {"type": "document", "title": "Manual", "source":
                        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
                    {"type": "document", "title": "Table", "source":
                        {"type": "text", "media_type": "text/plain", "data": "a,b\n1,2\n"}}
                ]},
                {"role": "assistant", "content": "A manual\n\nand a table."}
            ])
        );
    }

    #[test]
    fn a_tool_round_trip_is_tool_use_then_tool_result_blocks() {
        let req = UnifiedRequest {
            tools: vec![weather_tool()],
            ..conversation(vec![
                message(Role::User, "Weather in Paris and Oslo?"),
                parts(
                    Role::Assistant,
                    vec![
                        text("Let me check."),
                        tool_use("toolu_1", "get_weather", json!({"city": "Paris"})),
                        tool_use("toolu_2", "get_weather", json!({"city": "Oslo"})),
                    ],
                ),
                parts(
                    Role::User,
                    vec![
                        tool_result("toolu_1", "18 C, sunny", false),
                        tool_result("toolu_2", "unknown city", true),
                    ],
                ),
            ])
        };
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                        "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                        "input": {"city": "Oslo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C, sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "unknown city",
                        "is_error": true}
                ]}
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"name": "get_weather", "description": "The weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]}}])
        );
        assert_eq!(body.get("tool_choice"), None);
    }

    #[test]
    fn same_role_runs_of_blocks_merge_with_the_tool_results_first() {
        let req = conversation(vec![
            message(Role::User, "Weather?"),
            parts(Role::Assistant, vec![tool_use("toolu_1", "get_weather", json!({}))]),
            message(Role::Assistant, "One moment."),
            message(Role::User, "Here:"),
            message(Role::User, ""),
            parts(Role::User, vec![tool_result("toolu_1", "sunny", false), text("Thanks.")]),
            message(Role::User, "And tomorrow?"),
        ]);
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                    {"type": "text", "text": "One moment."}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "text", "text": "Here:\n\n"},
                    {"type": "text", "text": "Thanks."},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ])
        );
    }

    #[test]
    fn a_final_assistant_block_prefill_is_trimmed() {
        let req = conversation(vec![
            parts(
                Role::User,
                vec![Part::Image {
                    media_type: "image/gif".to_owned(),
                    data: "R0lGODlh".to_owned(),
                }],
            ),
            parts(Role::Assistant, vec![text("It shows "), text(" ")]),
        ]);
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        // Parts of text only: one string, trimmed.
        assert_eq!(body["messages"][1], json!({"role": "assistant", "content": "It shows"}));
        let req = conversation(vec![
            message(Role::User, "Weather?"),
            parts(Role::Assistant, vec![tool_use("t", "f", json!({}))]),
            message(Role::Assistant, "  "),
        ]);
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}])
        );
    }

    #[test]
    fn tool_choices_map_to_claude_s() {
        for (choice, expected) in [
            (ToolChoice::Auto, json!({"type": "auto"})),
            (ToolChoice::Required, json!({"type": "any"})),
            (ToolChoice::None, json!({"type": "none"})),
            (
                ToolChoice::Tool("get_weather".to_owned()),
                json!({"type": "tool", "name": "get_weather"}),
            ),
        ] {
            let req = UnifiedRequest {
                tools: vec![Tool { description: None, ..weather_tool() }],
                tool_choice: Some(choice),
                ..conversation(vec![message(Role::User, "Weather?")])
            };
            let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
            assert_eq!(body["tool_choice"], expected);
            // The tools are sent whatever the choice, `none` included.
            assert_eq!(body["tools"][0].as_object().map(|tool| tool.len()), Some(2));
        }
    }

    #[test]
    fn only_pdf_and_text_documents_are_sent() {
        for format in ["txt", "md", "html"] {
            let req = conversation(vec![parts(Role::User, vec![document(format, "Notes", "aGk")])]);
            let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
            assert_eq!(
                body["messages"][0]["content"][0]["source"],
                json!({"type": "text", "media_type": "text/plain", "data": "hi"}),
                "{format}"
            );
        }
        for format in ["docx", "doc", "xls", "xlsx"] {
            let req =
                conversation(vec![parts(Role::User, vec![document(format, "Notes", "aGk=")])]);
            let err = AnthropicClaudeMessages.encode_request(&req).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the anthropic_claude_messages model family does not support document \
                     format `{format}` (only pdf, txt, md, csv and html)"
                )
            );
            assert!(matches!(err, TranslateError::Unsupported { .. }), "{err:?}");
        }
        for (data, what) in [("a*b=", "is not valid base64"), ("/w==", "is not UTF-8 text")] {
            let req = conversation(vec![
                message(Role::User, "Read this."),
                parts(Role::User, vec![document("txt", "Notes", data)]),
            ]);
            let err = AnthropicClaudeMessages.encode_request(&req).unwrap_err();
            assert_eq!(
                err,
                TranslateError::InvalidRequest(format!(
                    "`messages[1]`: the data of document `Notes` {what}"
                ))
            );
        }
    }

    #[test]
    fn base64_decodes_padded_and_unpadded_and_refuses_the_rest() {
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=").as_deref(), Some(&b"hello world"[..]));
        assert_eq!(decode_base64("+/+/").as_deref(), Some(&[0xfb, 0xff, 0xbf][..]));
        for bad in ["a", "aGk==", "aG=k", "aGk=a", "a b=", "aGk===", "===="] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn cache_prompt_marks_the_last_block_of_the_last_user_message_and_the_last_tool() {
        let req = UnifiedRequest {
            cache_prompt: true,
            tools: vec![Tool { name: "other".to_owned(), ..weather_tool() }, weather_tool()],
            ..conversation(vec![
                message(Role::User, "Weather?"),
                parts(Role::Assistant, vec![tool_use("t", "get_weather", json!({"city": "Oslo"}))]),
                parts(Role::User, vec![tool_result("t", "sunny", false)]),
            ])
        };
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        let marker = json!({"type": "ephemeral"});
        assert_eq!(body["tools"][0].get("cache_control"), None);
        assert_eq!(body["tools"][1]["cache_control"], marker);
        assert_eq!(body["messages"][0]["content"], json!("Weather?"));
        assert_eq!(
            body["messages"][2]["content"],
            json!([{"type": "tool_result", "tool_use_id": "t", "content": "sunny",
                "cache_control": marker}])
        );
    }

    #[test]
    fn reasoning_is_thinking_with_half_of_max_tokens() {
        for (max_tokens, sent, budget) in [
            (None, 4096, 2048),
            (Some(1025), 1025, 1024),
            (Some(2100), 2100, 1050),
            (Some(10_000), 10_000, 5000),
        ] {
            let req = UnifiedRequest {
                reasoning: true,
                max_tokens,
                ..conversation(vec![message(Role::User, "Why?")])
            };
            let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
            assert_eq!(body["max_tokens"], json!(sent), "{max_tokens:?}");
            assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": budget}));
        }
        let req = UnifiedRequest {
            reasoning: true,
            max_tokens: Some(1024),
            ..conversation(vec![message(Role::User, "Why?")])
        };
        let err = AnthropicClaudeMessages.encode_request(&req).unwrap_err();
        assert_eq!(
            err,
            TranslateError::InvalidRequest(
                "`max_tokens` must be above 1024 with `reasoning` for the \
                 anthropic_claude_messages model family (the thinking budget is at least 1024 \
                 tokens and below `max_tokens`), got 1024"
                    .to_owned()
            )
        );
        // Without reasoning there is no `thinking`.
        let body = AnthropicClaudeMessages
            .encode_request(&conversation(vec![message(Role::User, "Why?")]))
            .unwrap();
        assert_eq!(body.get("thinking"), None);
    }

    #[test]
    fn reasoning_refuses_sampling_forced_tool_calls_and_prefills() {
        let base =
            UnifiedRequest { reasoning: true, ..conversation(vec![message(Role::User, "Why?")]) };
        let sampling = UnifiedRequest { temperature: Some(0.5), top_k: Some(5), ..base.clone() };
        assert_eq!(
            AnthropicClaudeMessages.encode_request(&sampling).unwrap_err(),
            TranslateError::InvalidRequest(
                "`temperature`, `top_k` cannot be set together with `reasoning` for the \
                 anthropic_claude_messages model family (Claude's extended thinking takes no \
                 sampling parameters)"
                    .to_owned()
            )
        );
        let top_p = UnifiedRequest { top_p: Some(0.9), ..base.clone() };
        let err = AnthropicClaudeMessages.encode_request(&top_p).unwrap_err();
        assert!(err.to_string().starts_with("`top_p` cannot be set together"), "{err}");
        for choice in [ToolChoice::Required, ToolChoice::Tool("get_weather".to_owned())] {
            let forced = UnifiedRequest {
                tools: vec![weather_tool()],
                tool_choice: Some(choice),
                ..base.clone()
            };
            let err = AnthropicClaudeMessages.encode_request(&forced).unwrap_err();
            assert_eq!(
                err,
                TranslateError::InvalidRequest(
                    "a `tool_choice` that forces a tool call cannot be used together with \
                     `reasoning` for the anthropic_claude_messages model family (use `auto` or \
                     `none`)"
                        .to_owned()
                )
            );
        }
        for choice in [ToolChoice::Auto, ToolChoice::None] {
            let free = UnifiedRequest {
                tools: vec![weather_tool()],
                tool_choice: Some(choice),
                ..base.clone()
            };
            assert!(AnthropicClaudeMessages.encode_request(&free).is_ok());
        }
        let mut prefill = base.clone();
        prefill.messages.push(message(Role::Assistant, "Because"));
        let err = AnthropicClaudeMessages.encode_request(&prefill).unwrap_err();
        assert_eq!(
            err,
            TranslateError::InvalidRequest(
                "a final `assistant` message (a prefill) cannot be used together with \
                 `reasoning` for the anthropic_claude_messages model family"
                    .to_owned()
            )
        );
    }

    #[test]
    fn matches_claude_3_and_later_only() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-opus-4-1-20250805-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
        ] {
            assert!(AnthropicClaudeMessages.matches(id), "{id}");
        }
        for id in ["anthropic.claude-v2:1", "anthropic.claude-instant-v1", "amazon.nova-pro-v1:0"] {
            assert!(!AnthropicClaudeMessages.matches(id), "{id}");
        }
    }

    #[test]
    fn same_role_runs_merge_and_the_prefill_is_trimmed() {
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "Sure: "),
            ],
            ..UnifiedRequest::default()
        };
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "Sure:"}])
        );
        assert_eq!(body["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    }

    #[test]
    fn assistant_first_conversation_is_invalid() {
        let req = UnifiedRequest {
            messages: vec![message(Role::Assistant, "hi"), message(Role::User, "hello")],
            ..UnifiedRequest::default()
        };
        let err = AnthropicClaudeMessages.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn tool_use_and_thinking_blocks_are_tool_calls_and_reasoning() {
        let body = br#"{"content":[{"type":"thinking","thinking":"hm","signature":"EqQB"},
            {"type":"redacted_thinking","data":"EmwK"},{"type":"text","text":"A"},
            {"type":"tool_use","id":"t","name":"f","input":{"x":1}},{"type":"text","text":"B"},
            {"type":"thinking","thinking":", then"},{"type":"tool_use","id":"u","name":"g"}],
            "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#;
        let res = AnthropicClaudeMessages.decode_response(body).unwrap();
        assert_eq!(
            json!(res),
            json!({
                "text": "AB",
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 3, "output_tokens": 4},
                "tool_calls": [
                    {"id": "t", "name": "f", "input": {"x": 1}},
                    {"id": "u", "name": "g", "input": {}}
                ],
                "reasoning": "hm, then"
            })
        );
    }

    #[test]
    fn an_answer_without_thinking_has_no_reasoning_and_pause_turn_is_other() {
        let body = br#"{"content":[{"type":"redacted_thinking","data":"EmwK"},
            {"type":"text","text":"A"}],"stop_reason":"pause_turn"}"#;
        let res = AnthropicClaudeMessages.decode_response(body).unwrap();
        assert_eq!((res.reasoning, res.stop_reason), (None, StopReason::Other));
        assert!(res.tool_calls.is_empty());
    }

    #[test]
    fn ping_and_unknown_events_contribute_nothing() {
        for chunk in [&br#"{"type":"ping"}"#[..], br#"{"type":"brand_new","x":1}"#] {
            let event = AnthropicClaudeMessages.decode_stream_event(chunk).unwrap();
            let expected = crate::unified::StreamEvent {
                unrecognized: chunk.starts_with(br#"{"type":"brand_new""#),
                ..crate::unified::StreamEvent::default()
            };
            assert_eq!(event, expected);
        }
    }

    #[test]
    fn known_empty_events_are_recognized_and_unknown_ones_are_not() {
        for known in [
            r#"{"type":"message_start","message":{"content":[]}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            let event = AnthropicClaudeMessages.decode_stream_event(known.as_bytes()).unwrap();
            assert!(!event.unrecognized, "{known}");
        }
        for unknown in [
            r#"{"index":0}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"brand_new_delta"}}"#,
        ] {
            let event = AnthropicClaudeMessages.decode_stream_event(unknown.as_bytes()).unwrap();
            assert!(event.unrecognized, "{unknown}");
            assert_eq!((event.text.as_str(), event.stop_reason), ("", None), "{unknown}");
        }
    }

    #[test]
    fn guardrail_intervention_without_stop_reason_is_a_content_filter() {
        let body = br#"{"type":"message","role":"assistant","content":[{"type":"text",
            "text":"Sorry."}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let res = AnthropicClaudeMessages.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("Sorry.", StopReason::ContentFilter));
        let none =
            br#"{"content":[],"stop_reason":"end_turn","amazon-bedrock-guardrailAction":"NONE"}"#;
        let res = AnthropicClaudeMessages.decode_response(none).unwrap();
        assert_eq!(res.stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn thinking_deltas_are_reasoning_not_text() {
        let chunk = br#"{"type":"content_block_delta","index":0,
            "delta":{"type":"thinking_delta","thinking":"hmm"}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(chunk).unwrap();
        assert_eq!(event, StreamEvent { reasoning: "hmm".to_owned(), ..StreamEvent::default() });
        let signature = br#"{"type":"content_block_delta","index":0,
            "delta":{"type":"signature_delta","signature":"EqQB"}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(signature).unwrap();
        assert_eq!(event, StreamEvent::default());
    }

    #[test]
    fn a_streamed_tool_call_is_its_block_start_then_its_json_pieces() {
        let start = br#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use",
            "id":"toolu_bdrk_01","name":"get_weather","input":{}}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(start).unwrap();
        let call = |id: Option<&str>, name: Option<&str>, arguments: &str| ToolCallDelta {
            index: 1,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
        };
        let first = call(Some("toolu_bdrk_01"), Some("get_weather"), "");
        assert_eq!(event, StreamEvent { tool_calls: vec![first], ..StreamEvent::default() });
        let piece = br#"{"type":"content_block_delta","index":1,
            "delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(piece).unwrap();
        let next = call(None, None, r#"{"city": "Par"#);
        assert_eq!(event, StreamEvent { tool_calls: vec![next], ..StreamEvent::default() });
        // An empty piece carries nothing, and is no unknown event either.
        let empty = br#"{"type":"content_block_delta","index":1,
            "delta":{"type":"input_json_delta","partial_json":""}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(empty).unwrap();
        assert_eq!(event, StreamEvent::default());
        let stop = br#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},
            "usage":{"output_tokens":9}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(stop).unwrap();
        assert_eq!(
            event,
            StreamEvent {
                stop_reason: Some(StopReason::ToolUse),
                usage: Usage { input_tokens: None, output_tokens: Some(9) },
                ..StreamEvent::default()
            }
        );
        // A text block's start is no tool call.
        let text = br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(text).unwrap();
        assert_eq!(event, StreamEvent::default());
    }

    #[test]
    fn message_start_gives_input_tokens_only() {
        let chunk = br#"{"type":"message_start","message":{"usage":{"input_tokens":16,"output_tokens":1}}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(16), output_tokens: None });
    }
}
