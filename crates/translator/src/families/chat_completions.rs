//! The OpenAI Chat Completions wire shape that Bedrock serves on InvokeModel for several
//! families (`openai_chat`, `openai_gpt_oss`): the request body (also Jamba's, whose body is
//! the same, and the messages and tools of Mistral's chat body), the chat completion answer
//! and the `chat.completion.chunk` stream, with the model's `<reasoning>...</reasoning>`
//! spans removed from the text and returned as reasoning.
//!
//! A family of this shape is a [`ChatCompletionsFamily`] (its id, model ids, system role,
//! max-tokens key and parameters); its [`TextFamily`] impl is the blanket one below.
//!
//! Messages ([`chat_wire_messages`]): a text-only message is `{"role", "content": "<text>"}`
//! exactly as before tools existed (text parts joined by a blank line). Parts map to
//! OpenAI's shapes:
//! - An assistant message with tool calls is `{"role": "assistant", "content": <its text,
//!   or null (OpenAI) / "" (Mistral, Jamba, whose documentation makes `content` a required
//!   string) when it has none>, "tool_calls": [{"id", "type": "function", "function":
//!   {"name", "arguments": <the input as compact JSON text>}}]}`.
//! - A user message's tool results become one `{"role": "tool", "tool_call_id", "content"}`
//!   message each, in order, where the user message stood; its text and image parts then
//!   follow as one user message (none when there are no such parts). The shape has no error
//!   flag: a result's `is_error` is not sent (the caller's content says what failed).
//! - A user message with images is `{"role": "user", "content": [{"type": "text", "text"},
//!   {"type": "image_url", "image_url": {"url": "data:<media_type>;base64,<data>"}}]}`, its
//!   parts in order. Only families that list [`Param::ImageInput`] get such requests (the
//!   codec refuses the others); document parts are never sent (no family of this shape
//!   lists [`Param::DocumentInput`]).
//!
//! Tools ([`chat_tools`]): `[{"type": "function", "function": {"name", "description"?,
//! "parameters"}}]`. OpenAI's `tool_choice` ([`openai_tool_choice`]): `"auto"`, `"none"`,
//! `"required"`, `{"type": "function", "function": {"name"}}`; absent when the request
//! gives none. `response_format` ([`openai_response_format`]): `{"type": "json_object"}` or
//! `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` (the structured
//! outputs field AWS documents for the open-weight models on InvokeModel:
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html>); a `text`
//! format is the default and is not sent.
//!
//! Answers:
//! - `message.tool_calls` become the answer's tool calls: `function.arguments` (a JSON text)
//!   parsed as the input; an empty or missing `arguments` is `{}`, an object is taken as it
//!   is, and a text that does not parse is kept as a JSON string value (not checked here:
//!   a non-object input is the codec's to refuse). A call without `id` gets `call_<n>`, its
//!   position in the list.
//! - `finish_reason` `tool_calls` is a tool-use stop ([`convert_finish_reason`]); the other
//!   reasons are those of [`convert_chat_finish_reason`].
//! - Reasoning: a separate `reasoning_content` (DeepSeek, Qwen, Kimi, MiniMax on their
//!   OpenAI-compatible servers) or `reasoning` string, then the text of every
//!   `<reasoning>...</reasoning>` span of the content (gpt-oss on InvokeModel, Kimi K2
//!   Thinking), joined, is the answer's `reasoning`; the spans are never in the text (a
//!   `<reasoning>` never closed hides the rest of the content, a `</reasoning>` outside a
//!   span is text).
//!
//! Streams: a chunk's `delta.tool_calls[]` entries `{index, id?, function: {name?,
//! arguments?}}` are the event's `tool_calls` (`index` the model's own; when absent, the
//! entry's position in the chunk's list [U], which is 0 for the usual lone entry and keeps
//! parallel calls sent whole without indices apart), one piece per index in order of the
//! index's first entry: entries of one index in one chunk are merged (their argument pieces
//! concatenated, the first id and name kept). OpenAI, vLLM and the simulator send one
//! call's piece per chunk; a chunk with several calls (parallel calls sent whole, as
//! Mistral does) gives one piece per call. Reasoning: the delta's
//! `reasoning_content` / `reasoning`, and every `<reasoning>...</reasoning>` span opened
//! and closed within the chunk's `content` (the chat-completions stream of bedrock-runtime
//! was seen wrapping each chunk's piece of reasoning in its own tags) is moved to the
//! event's `reasoning`. A span opened in one chunk and closed in a later one stays in the
//! event's text, which the family's stream text filter cleans: that reasoning is dropped,
//! not returned (a [`StreamTextFilter`](crate::families::StreamTextFilter) yields text
//! only).
//!
//! A stream chunk with no choice carrying a `delta`, a `message` or a `finish_reason`, no
//! `usage`, no invocation metrics and no guardrail intervention is `unrecognized`; a
//! role-only or empty `delta` is a known empty event. Usage: a chunk's `usage` wins over the
//! invocation metrics.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::TranslateError;
use crate::families::common::{
    ChatUsage, GuardedChunk, TaggedSpanFilter, convert_chat_finish_reason, convert_chat_usage,
    decode_guarded_response, finish_stream_event, parse_guarded_stream_chunk, strip_tagged_spans,
};
use crate::families::{StreamTextFilter, TextFamily, check_range, parse_body, to_body};
use crate::unified::{
    Content, Param, Part, ResponseFormat, Role, StopReason, StreamEvent, Tool, ToolCall,
    ToolCallDelta, ToolChoice, UnifiedRequest, UnifiedResponse,
};

pub(crate) const REASONING_START: &str = "<reasoning>";
pub(crate) const REASONING_END: &str = "</reasoning>";

/// A family whose models Bedrock serves with the Chat Completions body; it is a
/// [`TextFamily`] through the blanket impl below.
pub(crate) trait ChatCompletionsFamily: Send + Sync {
    /// The family id.
    const ID: &'static str;
    /// The base model id prefixes of the family.
    const MODEL_PREFIXES: &'static [&'static str];
    /// The role of the system prompt's message (`system`, or `developer` for gpt-oss).
    const SYSTEM_ROLE: &'static str;
    /// The body key of the request's `max_tokens`.
    const MAX_TOKENS_KEY: MaxTokensKey;
    /// The optional unified parameters the family honours.
    const PARAMS: &'static [Param];
}

impl<T: ChatCompletionsFamily> TextFamily for T {
    fn id(&self) -> &'static str {
        T::ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        T::MODEL_PREFIXES.iter().any(|prefix| base_model_id.starts_with(prefix))
    }

    fn params(&self) -> &'static [Param] {
        T::PARAMS
    }

    /// Both max-tokens keys, whichever the family sends, so that `extra` sets neither.
    /// `tools`, `tool_choice` and `response_format` are not listed: `extra` may still set
    /// them as before those fields were mapped, and collides with them only when the
    /// request's own fields put them in the body.
    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "messages",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "stop",
            "stream",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        encode_chat_completion(T::ID, req, T::SYSTEM_ROLE, T::MAX_TOKENS_KEY)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_chat_completion(T::ID, body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        decode_chat_completion_chunk(T::ID, chunk)
    }

    /// Removes `<reasoning>...</reasoning>` spans across chunks.
    fn stream_text_filter(&self) -> Option<Box<dyn StreamTextFilter>> {
        Some(Box::new(TaggedSpanFilter::new(REASONING_START, REASONING_END)))
    }
}

/// The body key that carries the request's `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaxTokensKey {
    MaxTokens,
    MaxCompletionTokens,
}

/// What an assistant message that calls tools and says nothing carries as `content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmptyCallContent {
    /// `null`, OpenAI's.
    Null,
    /// `""`, for bodies whose documentation makes `content` a required string.
    EmptyString,
}

/// The body of InvokeModel and InvokeModelWithResponseStream: OpenAI's `messages`, one of
/// `max_tokens` and `max_completion_tokens`, the sampling fields, and the tool and format
/// fields the family sets.
#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    pub(crate) messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) stop: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_format: Option<Value>,
}

impl<'a> ChatCompletionRequest<'a> {
    /// The body of `req` over `messages`, its max tokens under `max_tokens_key`; no tools
    /// and no format (the family sets those it sends).
    pub(crate) fn new(
        req: &'a UnifiedRequest,
        messages: Vec<WireMessage<'a>>,
        max_tokens_key: MaxTokensKey,
    ) -> Self {
        let (max_tokens, max_completion_tokens) = match max_tokens_key {
            MaxTokensKey::MaxTokens => (req.max_tokens, None),
            MaxTokensKey::MaxCompletionTokens => (None, req.max_tokens),
        };
        ChatCompletionRequest {
            messages,
            max_tokens,
            max_completion_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop: &req.stop,
            tools: Vec::new(),
            tool_choice: None,
            response_format: None,
        }
    }
}

/// One message of a chat body.
#[derive(Debug, Serialize)]
pub(crate) struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// A message's `content`: a string, content parts, or null.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<WirePart<'a>>),
    Null,
}

/// A content part of a user message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImageUrl },
}

#[derive(Debug, Serialize)]
struct WireImageUrl {
    url: String,
}

/// A tool call of an assistant message in the request.
#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    /// The input as compact JSON text.
    arguments: String,
}

/// A tool definition.
#[derive(Debug, Serialize)]
pub(crate) struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

impl WireTool<'_> {
    /// The tool's name.
    pub(crate) fn name(&self) -> &str {
        self.function.name
    }
}

impl<'a> WireMessage<'a> {
    fn text(role: &'static str, content: Cow<'a, str>) -> Self {
        WireMessage {
            role,
            content: WireContent::Text(content),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// The request's messages in the chat body: the system prompt (every system message,
/// joined by a blank line) as a first `system_role` message, then every turn; see the
/// module doc for the parts. A plain `prompt` is one user message.
pub(crate) fn chat_wire_messages<'a>(
    req: &'a UnifiedRequest,
    system_role: &'static str,
    empty_call_content: EmptyCallContent,
) -> Vec<WireMessage<'a>> {
    if let Some(prompt) = &req.prompt {
        return vec![WireMessage::text("user", Cow::Borrowed(prompt.as_str()))];
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    let system: Vec<Cow<'_, str>> =
        req.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.text()).collect();
    if !system.is_empty() {
        messages.push(WireMessage::text(system_role, Cow::Owned(system.join("\n\n"))));
    }
    for message in req.messages.iter().filter(|m| m.role != Role::System) {
        match message.role {
            Role::Assistant => {
                messages.push(assistant_message(&message.content, empty_call_content));
            }
            Role::User | Role::System => push_user_messages(&mut messages, &message.content),
        }
    }
    messages
}

/// An assistant message: its text, and its tool calls where it has any.
fn assistant_message(content: &Content, empty_call_content: EmptyCallContent) -> WireMessage<'_> {
    let tool_calls: Vec<WireToolCall<'_>> = match content {
        Content::Text(_) => Vec::new(),
        Content::Parts(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Part::ToolUse { id, name, input } => Some(WireToolCall {
                    id,
                    kind: "function",
                    function: WireFunctionCall { name, arguments: input.to_string() },
                }),
                _ => None,
            })
            .collect(),
    };
    let text = content.text();
    let content = match empty_call_content {
        _ if tool_calls.is_empty() || !text.is_empty() => WireContent::Text(text),
        EmptyCallContent::Null => WireContent::Null,
        EmptyCallContent::EmptyString => WireContent::Text(Cow::Borrowed("")),
    };
    WireMessage { role: "assistant", content, tool_calls, tool_call_id: None }
}

/// A user message: its tool results as `tool` messages, then its text and images as one
/// user message (a text-only message is one user message with its text, as ever).
fn push_user_messages<'a>(messages: &mut Vec<WireMessage<'a>>, content: &'a Content) {
    let parts = match content {
        Content::Parts(parts) if parts.iter().any(|part| !matches!(part, Part::Text { .. })) => {
            parts
        }
        _ => {
            messages.push(WireMessage::text("user", content.text()));
            return;
        }
    };
    for part in parts {
        if let Part::ToolResult { tool_use_id, content, .. } = part {
            messages.push(WireMessage {
                role: "tool",
                content: WireContent::Text(Cow::Borrowed(content.as_str())),
                tool_calls: Vec::new(),
                tool_call_id: Some(tool_use_id),
            });
        }
    }
    let has_image = parts.iter().any(|part| matches!(part, Part::Image { .. }));
    if has_image {
        let wire_parts = parts
            .iter()
            .filter_map(|part| match part {
                Part::Text { text } => Some(WirePart::Text { text }),
                Part::Image { media_type, data } => Some(WirePart::ImageUrl {
                    image_url: WireImageUrl { url: format!("data:{media_type};base64,{data}") },
                }),
                _ => None,
            })
            .collect();
        messages.push(WireMessage {
            role: "user",
            content: WireContent::Parts(wire_parts),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    } else if parts.iter().any(|part| matches!(part, Part::Text { .. })) {
        messages.push(WireMessage::text("user", content.text()));
    }
}

/// The request's tools as chat `tools`.
pub(crate) fn chat_tools(tools: &[Tool]) -> Vec<WireTool<'_>> {
    tools
        .iter()
        .map(|tool| WireTool {
            kind: "function",
            function: WireFunction {
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: &tool.parameters,
            },
        })
        .collect()
}

/// OpenAI's `tool_choice` for the request's choice.
pub(crate) fn openai_tool_choice(choice: Option<&ToolChoice>) -> Option<Value> {
    Some(match choice? {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    })
}

/// OpenAI's `response_format` for the request's format; none for plain text.
pub(crate) fn openai_response_format(format: Option<&ResponseFormat>) -> Option<Value> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(json!({"type": "json_object"})),
        ResponseFormat::JsonSchema { name, schema, strict } => Some(json!({
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": strict},
        })),
    }
}

/// A message or delta; `content` is null when the model calls a tool, and absent from a
/// role-only or empty delta. (Writer Palmyra reads only this.)
#[derive(Debug, Deserialize)]
pub(crate) struct ChatContent {
    #[serde(default)]
    pub(crate) content: Option<String>,
}

/// A message or delta with what this shape can carry beside the text: tool calls and
/// separate reasoning.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChatOutput {
    #[serde(default)]
    pub(crate) content: Option<String>,
    /// DeepSeek's and Qwen's name for separate reasoning; a non-string is ignored.
    #[serde(default)]
    reasoning_content: Option<Value>,
    /// Other servers' name for it.
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    pub(crate) tool_calls: Option<Vec<ChatToolCallOut>>,
}

/// A tool call of an answer, or a piece of one in a stream.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatToolCallOut {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<ChatFunctionOut>,
}

#[derive(Debug, Default, Deserialize)]
struct ChatFunctionOut {
    #[serde(default)]
    name: Option<String>,
    /// A JSON text (OpenAI's); an object is accepted too.
    #[serde(default)]
    arguments: Option<Value>,
}

impl ChatOutput {
    /// The separate reasoning field's text, if any.
    fn field_reasoning(&self) -> &str {
        [&self.reasoning_content, &self.reasoning]
            .into_iter()
            .find_map(|field| field.as_ref().and_then(Value::as_str))
            .unwrap_or_default()
    }

    /// The whole answer's text, reasoning and tool calls (see the module doc).
    pub(crate) fn into_answer_parts(self) -> (String, Option<String>, Vec<ToolCall>) {
        let mut reasoning = self.field_reasoning().to_owned();
        let (text, span_reasoning) =
            split_tagged_spans(self.content.as_deref().unwrap_or_default());
        reasoning.push_str(&span_reasoning);
        let tool_calls = decode_tool_calls(self.tool_calls.unwrap_or_default());
        (text, (!reasoning.is_empty()).then_some(reasoning), tool_calls)
    }

    /// A stream delta's text (closed spans removed), reasoning and tool-call pieces.
    pub(crate) fn into_event_parts(self) -> (String, String, Vec<ToolCallDelta>) {
        let mut reasoning = self.field_reasoning().to_owned();
        let (text, span_reasoning) =
            take_closed_tagged_spans(self.content.as_deref().unwrap_or_default());
        reasoning.push_str(&span_reasoning);
        let tool_calls = stream_tool_calls(self.tool_calls.unwrap_or_default());
        (text, reasoning, tool_calls)
    }
}

/// A whole answer's tool calls, in order.
pub(crate) fn decode_tool_calls(calls: Vec<ChatToolCallOut>) -> Vec<ToolCall> {
    calls
        .into_iter()
        .enumerate()
        .map(|(position, call)| {
            let function = call.function.unwrap_or_default();
            ToolCall {
                id: call.id.unwrap_or_else(|| format!("call_{position}")),
                name: function.name.unwrap_or_default(),
                input: parse_arguments(function.arguments),
            }
        })
        .collect()
}

/// A tool call's input from its `arguments`.
fn parse_arguments(arguments: Option<Value>) -> Value {
    match arguments {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(text)) if text.trim().is_empty() => json!({}),
        Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Some(other) => other,
    }
}

/// The tool-call pieces of a stream chunk's `delta.tool_calls`: one per index, in order of
/// the index's first entry, the entries of one index merged (see the module doc).
pub(crate) fn stream_tool_calls(calls: Vec<ChatToolCallOut>) -> Vec<ToolCallDelta> {
    let mut merged: Vec<ToolCallDelta> = Vec::new();
    for (position, call) in calls.into_iter().enumerate() {
        let index = call.index.unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
        let function = call.function.unwrap_or_default();
        let arguments = match function.arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(piece)) => piece,
            Some(other) => other.to_string(),
        };
        let position = match merged.iter().position(|delta| delta.index == index) {
            Some(position) => position,
            None => {
                merged.push(ToolCallDelta { index, ..Default::default() });
                merged.len() - 1
            }
        };
        let Some(delta) = merged.get_mut(position) else { continue };
        delta.id = delta.id.take().or(call.id);
        delta.name = delta.name.take().or(function.name);
        delta.arguments.push_str(&arguments);
    }
    merged
}

/// A chat `finish_reason`: `tool_calls` is a tool-use stop, the rest as
/// [`convert_chat_finish_reason`] says.
pub(crate) fn convert_finish_reason(finish_reason: &str) -> StopReason {
    match finish_reason {
        "tool_calls" => StopReason::ToolUse,
        other => convert_chat_finish_reason(other),
    }
}

/// `text` split into its answer and the text of its `<reasoning>...</reasoning>` spans:
/// the answer is what [`strip_tagged_spans`] leaves (the stream text filter's answer);
/// the reasoning is every span's inside, joined, with the rest after a `<reasoning>` never
/// closed.
pub(crate) fn split_tagged_spans(text: &str) -> (String, String) {
    let answer = strip_tagged_spans(text, REASONING_START, REASONING_END);
    let mut reasoning = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(REASONING_START) {
        let inside = &rest[start + REASONING_START.len()..];
        match inside.find(REASONING_END) {
            Some(end) => {
                reasoning.push_str(&inside[..end]);
                rest = &inside[end + REASONING_END.len()..];
            }
            None => {
                reasoning.push_str(inside);
                break;
            }
        }
    }
    (answer, reasoning)
}

/// `text` without the `<reasoning>...</reasoning>` spans that open and close within it,
/// and their insides, joined: a `<reasoning>` not closed here stays in the text, with all
/// after it, for the stream text filter.
pub(crate) fn take_closed_tagged_spans(text: &str) -> (String, String) {
    let (mut answer, mut reasoning) = (String::new(), String::new());
    let mut rest = text;
    while let Some(start) = rest.find(REASONING_START) {
        let inside = &rest[start + REASONING_START.len()..];
        let Some(end) = inside.find(REASONING_END) else { break };
        answer.push_str(&rest[..start]);
        reasoning.push_str(&inside[..end]);
        rest = &inside[end + REASONING_END.len()..];
    }
    answer.push_str(rest);
    (answer, reasoning)
}

/// A chat completion (InvokeModel) or chat completion chunk (stream).
#[derive(Debug, Deserialize)]
struct ChatCompletion {
    #[serde(default)]
    choices: Vec<ChatChoice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
struct ChatChoice {
    /// The answer of a chat completion.
    #[serde(default)]
    message: Option<ChatOutput>,
    /// The piece of answer of a chunk.
    #[serde(default)]
    delta: Option<ChatOutput>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// Mistral's name for it, read when `finish_reason` is missing (the newer Mistral models
    /// share this family; see `openai_chat`).
    #[serde(default)]
    stop_reason: Option<String>,
}

impl ChatChoice {
    /// `finish_reason`, else `stop_reason`.
    fn reason(&mut self) -> Option<String> {
        self.finish_reason.take().or_else(|| self.stop_reason.take())
    }
}

/// The body for `req`, after checking OpenAI's ranges (`temperature` 0 to 2, `top_p` 0 to
/// 1): the system prompt as a first `system_role` message, then the turns as they are,
/// with OpenAI's tools, tool choice and response format.
fn encode_chat_completion(
    family: &'static str,
    req: &UnifiedRequest,
    system_role: &'static str,
    max_tokens_key: MaxTokensKey,
) -> Result<serde_json::Value, TranslateError> {
    check_range(family, "temperature", req.temperature, 0.0..=2.0)?;
    check_range(family, "top_p", req.top_p, 0.0..=1.0)?;
    let messages = chat_wire_messages(req, system_role, EmptyCallContent::Null);
    let mut body = ChatCompletionRequest::new(req, messages, max_tokens_key);
    body.tools = chat_tools(&req.tools);
    body.tool_choice = openai_tool_choice(req.tool_choice.as_ref());
    body.response_format = openai_response_format(req.response_format.as_ref());
    to_body(family, &body)
}

/// The answer of a chat completion body; a guardrail intervention is a content filter stop.
fn decode_chat_completion(
    family: &'static str,
    body: &[u8],
) -> Result<UnifiedResponse, TranslateError> {
    decode_guarded_response(family, body, |body| decode_unguarded(family, body))
}

/// The answer of a chat completion body, guardrails aside.
fn decode_unguarded(family: &'static str, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: ChatCompletion = parse_body(family, body)?;
    let usage = res.usage.map(convert_chat_usage).unwrap_or_default();
    let Some(mut choice) = res.choices.into_iter().next() else {
        return Err(TranslateError::MalformedResponse {
            family,
            detail: "the body has no `choices[0].message`".to_owned(),
        });
    };
    let finish_reason = choice.reason();
    let Some(message) = choice.message else {
        return Err(TranslateError::MalformedResponse {
            family,
            detail: "the body has no `choices[0].message`".to_owned(),
        });
    };
    let (text, reasoning, tool_calls) = message.into_answer_parts();
    Ok(UnifiedResponse {
        text,
        stop_reason: finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason),
        usage,
        tool_calls,
        reasoning,
    })
}

/// What one `chat.completion.chunk` contributes (reasoning spans that cross chunks are
/// the stream text filter's to remove).
fn decode_chat_completion_chunk(
    family: &'static str,
    chunk: &[u8],
) -> Result<StreamEvent, TranslateError> {
    let GuardedChunk { chunk, mut usage, guardrail_intervened } =
        parse_guarded_stream_chunk::<ChatCompletion>(family, chunk)?;
    // Known events: a choice with a delta (a role-only or empty one too), a message or a
    // finish reason, and the usage-only chunk.
    let mut known = chunk.usage.is_some();
    usage.update(chunk.usage.map(convert_chat_usage).unwrap_or_default());
    let (output, finish_reason) = match chunk.choices.into_iter().next() {
        Some(mut choice) => {
            let finish_reason = choice.reason();
            known |= choice.delta.is_some() || choice.message.is_some() || finish_reason.is_some();
            (choice.delta.or(choice.message), finish_reason)
        }
        None => (None, None),
    };
    let (text, reasoning, tool_calls) = output.unwrap_or_default().into_event_parts();
    let event = StreamEvent {
        unrecognized: false,
        text,
        stop_reason: finish_reason.as_deref().map(convert_finish_reason),
        usage,
        tool_calls,
        reasoning,
    };
    Ok(finish_stream_event(event, known, guardrail_intervened))
}
