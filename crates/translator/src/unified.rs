//! The gateway's own, provider-neutral request, answer and stream-event types.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;

/// One text-generation request, whatever the model.
///
/// The server builds it from the caller's JSON after applying the alias defaults;
/// [`crate::encode_text_request`] turns it into a family's InvokeModel body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnifiedRequest {
    /// A plain prompt; exactly one of `prompt` and `messages` is given. A family that
    /// takes messages sends it as one user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// A conversation; a family that takes a prompt renders it with the model's own
    /// chat template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Model-specific body fields merged into the InvokeModel body as they are, for what
    /// the unified fields do not cover. A key that a unified field maps to is refused.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Whether the body is for InvokeModelWithResponseStream (some families want a flag in the body).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Mark the system prompt and the conversation so far as a prompt-cache prefix
    /// (Claude's `cache_control`, Nova's `cachePoint`), for families that cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_prompt: bool,
    /// Tools the model may call. A family without native tools refuses them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call; `None`: the family's default (auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// The shape the answer's text must have (JSON, or JSON of a schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Return the model's reasoning (Claude's `thinking`, DeepSeek's `<think>`, gpt-oss's
    /// reasoning) in its own field instead of dropping it. It is never mixed into the text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reasoning: bool,
}

/// A tool the model may call: its name, what it does, and its arguments' JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema of an object (`{"type": "object", "properties": …}`).
    pub parameters: serde_json::Value,
}

/// Whether the model calls a tool: `"auto"` (it decides), `"none"`, `"required"` (some
/// tool), or `{"tool": "<name>"}` (that one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Tool(String),
}

/// The shape of the answer's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseFormat {
    /// Plain text: the default, the same as no format.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid against `schema`.
    JsonSchema {
        name: String,
        schema: serde_json::Value,
        #[serde(default)]
        strict: bool,
    },
}

/// A tool call of the model's: its id (which the tool's result names), the tool, and the
/// arguments, a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: serde_json::Value,
}

/// The image media types a message may carry (those every family with images takes).
pub const IMAGE_MEDIA_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The video formats a message may carry: Bedrock's `VideoBlock.format` values (Converse's
/// API reference; Nova's "Video understanding": MP4, MOV, MKV, WebM, FLV, MPEG, MPG, WMV and
/// 3GP, the last spelled `three_gp`).
pub const VIDEO_FORMATS: [&str; 9] =
    ["mp4", "mov", "mkv", "webm", "flv", "mpeg", "mpg", "wmv", "three_gp"];

impl Role {
    /// The role's name in requests.
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl Part {
    /// The part's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Part::Text { .. } => "text",
            Part::Image { .. } => "image",
            Part::Document { .. } => "document",
            Part::Video { .. } => "video",
            Part::ToolUse { .. } => "tool_use",
            Part::ToolResult { .. } => "tool_result",
        }
    }
}

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of a conversation: a text, or parts in order (text, images, documents,
/// videos, the assistant's tool calls, the results of tool calls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    pub content: Content,
}

/// A message's content: a string, or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Part {
    Text {
        text: String,
    },
    /// An image, base64 (`data`) of `media_type` (`image/png`, `image/jpeg`, `image/gif`,
    /// `image/webp`).
    Image {
        media_type: String,
        data: String,
    },
    /// A document, base64 (`data`) of `format` (`pdf`, `csv`, `doc`, `docx`, `xls`,
    /// `xlsx`, `html`, `txt`, `md`), named `name`.
    Document {
        format: String,
        name: String,
        data: String,
    },
    /// A video, base64 (`data`) of `format` (one of [`VIDEO_FORMATS`]: `mp4`, `mov`, `mkv`,
    /// `webm`, `flv`, `mpeg`, `mpg`, `wmv`, `three_gp`).
    Video {
        format: String,
        data: String,
    },
    /// A tool call of the assistant's (in an assistant message).
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    /// The result of tool call `tool_use_id` (in a user message), as text (JSON is sent
    /// as its text).
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

impl Message {
    /// A message of text only.
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message { role, content: Content::Text(text.into()) }
    }
}

impl Content {
    /// The text of the content: the string, or its text parts joined by a blank line
    /// (a text-only family's view; families that take other parts read [`Content::parts`]).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Content::Text(text) => std::borrow::Cow::Borrowed(text),
            Content::Parts(parts) => {
                let mut texts = parts.iter().filter_map(|part| match part {
                    Part::Text { text } => Some(text.as_str()),
                    _ => None,
                });
                match (texts.next(), texts.next()) {
                    (None, _) => std::borrow::Cow::Borrowed(""),
                    (Some(only), None) => std::borrow::Cow::Borrowed(only),
                    (Some(first), Some(second)) => {
                        let mut joined = format!("{first}\n\n{second}");
                        for text in texts {
                            joined.push_str("\n\n");
                            joined.push_str(text);
                        }
                        std::borrow::Cow::Owned(joined)
                    }
                }
            }
        }
    }

    /// The content as parts: a string is one text part.
    pub fn parts(&self) -> std::borrow::Cow<'_, [Part]> {
        match self {
            Content::Text(text) => std::borrow::Cow::Owned(vec![Part::Text { text: text.clone() }]),
            Content::Parts(parts) => std::borrow::Cow::Borrowed(parts),
        }
    }

    /// About how many bytes the content takes in a body: its texts, data and inputs.
    pub fn byte_len(&self) -> usize {
        match self {
            Content::Text(text) => text.len(),
            Content::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    Part::Text { text } => text.len(),
                    Part::Image { data, .. }
                    | Part::Document { data, .. }
                    | Part::Video { data, .. } => data.len() + 64,
                    Part::ToolUse { input, .. } => input.to_string().len() + 64,
                    Part::ToolResult { content, .. } => content.len() + 64,
                })
                .sum(),
        }
    }

    /// Whether the content is empty: an empty string, or no part.
    pub fn is_empty(&self) -> bool {
        match self {
            Content::Text(text) => text.is_empty(),
            Content::Parts(parts) => parts.is_empty(),
        }
    }

    fn has(&self, wanted: impl Fn(&Part) -> bool) -> bool {
        matches!(self, Content::Parts(parts) if parts.iter().any(wanted))
    }
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content::Text(text)
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Content {
        Content::Text(text.to_owned())
    }
}

/// A request's conversation in the form every family starts from: the system prompt
/// (all system messages joined by a blank line) and the user/assistant turns in order.
/// A plain `prompt` is one user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation<'a> {
    pub system: Option<String>,
    pub turns: Vec<(Role, std::borrow::Cow<'a, str>)>,
}

/// A unified parameter, for the list of what a family honours and for refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    MaxTokens,
    Temperature,
    TopP,
    TopK,
    Stop,
    Seed,
    Dimensions,
    Normalize,
    InputType,
    NegativePrompt,
    ImageCount,
    ImageSize,
    CfgScale,
    Images,
    CachePrompt,
    /// `tools`, `tool_choice`, and tool calls and results in `messages`.
    Tools,
    /// Image parts in `messages`.
    ImageInput,
    /// Document parts in `messages`.
    DocumentInput,
    /// Video parts in `messages`.
    VideoInput,
    ResponseFormat,
    Reasoning,
}

/// Why the model stopped, normalised across families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn on its own.
    EndTurn,
    /// The output reached `max_tokens`.
    MaxTokens,
    /// The output hit one of the caller's stop sequences.
    StopSequence,
    /// A content filter or guardrail stopped the output.
    ContentFilter,
    /// The model called one or more tools and waits for their results.
    ToolUse,
    /// A reason this gateway does not know yet; the raw value is not exposed.
    Other,
}

/// Token usage; a field is `None` where the body did not say (the server then falls
/// back to Bedrock's token-count headers or invocation metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
}

/// A whole (non-streamed) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnifiedResponse {
    pub text: String,
    pub stop_reason: StopReason,
    pub usage: Usage,
    /// The tool calls of the answer, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The model's reasoning, where the family returns it and the request asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

impl Default for UnifiedResponse {
    /// No text, `end_turn`, no usage: for a family's decoder to fill in.
    fn default() -> UnifiedResponse {
        UnifiedResponse {
            text: String::new(),
            stop_reason: StopReason::EndTurn,
            usage: Usage::default(),
            tool_calls: Vec::new(),
            reasoning: None,
        }
    }
}

/// A piece of a streamed tool call: the call's `index` among the answer's calls, its id
/// and name on its first piece, and the next bytes of its arguments' JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arguments: String,
}

/// What one decoded stream chunk contributes: a text delta (possibly empty), and,
/// on the chunks that carry them, the stop reason and usage counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub usage: Usage,
    /// The chunk has a shape the family does not know (no text, stop reason or usage it
    /// can read, and not one of its known empty events): the server logs and counts it,
    /// never drops it silently.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unrecognized: bool,
    /// The pieces of tool calls the chunk carries, in the chunk's order (one chunk may carry
    /// pieces of several calls: Mistral and Cohere send parallel calls whole in one chunk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta>,
    /// A piece of the model's reasoning (kept only where the request asked for it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
}

/// Folds stream events into the final stop reason and usage, and notices a stream
/// that ended before the model said why it stopped.
#[derive(Debug, Clone, Default)]
pub struct StreamAccumulator {
    stop_reason: Option<StopReason>,
    usage: Usage,
    n_text_bytes: usize,
}

impl Usage {
    /// Overwrites each count of `self` that `later` knows.
    pub fn update(&mut self, later: Usage) {
        if later.input_tokens.is_some() {
            self.input_tokens = later.input_tokens;
        }
        if later.output_tokens.is_some() {
            self.output_tokens = later.output_tokens;
        }
    }

    /// Fills each count of `self` that is still unknown from `fallback`.
    pub fn or(self, fallback: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.or(fallback.input_tokens),
            output_tokens: self.output_tokens.or(fallback.output_tokens),
        }
    }
}

impl UnifiedRequest {
    /// Checks what holds for every family; family-specific limits are checked by the family.
    pub fn validate(&self) -> Result<(), TranslateError> {
        let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
        match (&self.prompt, self.messages.is_empty()) {
            (Some(_), false) => {
                return invalid("give either `prompt` or `messages`, not both".to_owned());
            }
            (None, true) => return invalid("`prompt` or `messages` is required".to_owned()),
            (Some(prompt), true) if prompt.is_empty() => {
                return invalid("`prompt` must not be empty".to_owned());
            }
            _ => {}
        }
        if let Some(first_turn) = self.messages.iter().position(|m| m.role != Role::System)
            && self.messages[first_turn..].iter().any(|m| m.role == Role::System)
        {
            return invalid("`system` messages must come before every other message".to_owned());
        }
        if !self.messages.is_empty() && !self.messages.iter().any(|m| m.role == Role::User) {
            return invalid("`messages` needs at least one `user` message".to_owned());
        }
        if self.max_tokens == Some(0) {
            return invalid("`max_tokens` must be at least 1".to_owned());
        }
        if let Some(t) = self.temperature
            && (!t.is_finite() || t < 0.0)
        {
            return invalid(format!("`temperature` must be a number >= 0, got {t}"));
        }
        if let Some(p) = self.top_p
            && (!p.is_finite() || p <= 0.0 || p > 1.0)
        {
            return invalid(format!("`top_p` must be in (0, 1], got {p}"));
        }
        if self.stop.iter().any(String::is_empty) {
            return invalid("`stop` sequences must not be empty strings".to_owned());
        }
        self.validate_tools()?;
        self.validate_parts()
    }

    /// Tool names are unique and of the form every family accepts, parameters are
    /// objects, a named `tool_choice` names a tool, and a choice needs tools.
    fn validate_tools(&self) -> Result<(), TranslateError> {
        let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
        let mut names = std::collections::BTreeSet::new();
        for tool in &self.tools {
            let well_formed = !tool.name.is_empty()
                && tool.name.len() <= 64
                && tool.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !well_formed {
                return invalid(format!(
                    "tool name `{}` must be 1 to 64 letters, digits, `_` or `-`",
                    tool.name.chars().take(80).collect::<String>()
                ));
            }
            if !names.insert(tool.name.as_str()) {
                return invalid(format!("tool `{}` is defined twice", tool.name));
            }
            if !tool.parameters.is_object() {
                return invalid(format!(
                    "the `parameters` of tool `{}` must be a JSON Schema object",
                    tool.name
                ));
            }
        }
        match &self.tool_choice {
            Some(ToolChoice::Tool(name)) if !names.contains(name.as_str()) => {
                invalid(format!("`tool_choice` names `{name}`, which is not in `tools`"))
            }
            Some(ToolChoice::Required | ToolChoice::Tool(_)) if self.tools.is_empty() => {
                invalid("`tool_choice` requires `tools`".to_owned())
            }
            _ => Ok(()),
        }
    }

    /// Parts are where they can be: tool calls in assistant messages, tool results and
    /// images, documents and videos in user messages, text only in system messages; a tool result
    /// answers a tool call of an earlier assistant message.
    fn validate_parts(&self) -> Result<(), TranslateError> {
        let invalid = |msg: String| Err(TranslateError::InvalidRequest(msg));
        let mut calls = std::collections::BTreeSet::new();
        for (i, message) in self.messages.iter().enumerate() {
            let Content::Parts(parts) = &message.content else { continue };
            for part in parts {
                let allowed = match part {
                    Part::Text { .. } => true,
                    Part::ToolUse { .. } => message.role == Role::Assistant,
                    Part::ToolResult { .. }
                    | Part::Image { .. }
                    | Part::Document { .. }
                    | Part::Video { .. } => message.role == Role::User,
                };
                if !allowed {
                    return invalid(format!(
                        "`messages[{i}]`: a `{}` part cannot be in a `{}` message",
                        part.kind(),
                        message.role.name()
                    ));
                }
                match part {
                    Part::ToolUse { id, input, .. } => {
                        if !input.is_object() {
                            return invalid(format!(
                                "`messages[{i}]`: the input of tool call `{id}` must be a JSON object"
                            ));
                        }
                        calls.insert(id.as_str());
                    }
                    Part::ToolResult { tool_use_id, .. }
                        if !calls.contains(tool_use_id.as_str()) =>
                    {
                        return invalid(format!(
                            "`messages[{i}]`: tool result `{tool_use_id}` answers no earlier tool call"
                        ));
                    }
                    Part::Image { media_type, data } => {
                        if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
                            return invalid(format!(
                                "`messages[{i}]`: image media type `{}` is not one of {}",
                                media_type.chars().take(80).collect::<String>(),
                                IMAGE_MEDIA_TYPES.join(", ")
                            ));
                        }
                        if data.is_empty() {
                            return invalid(format!("`messages[{i}]`: an image needs `data`"));
                        }
                    }
                    Part::Video { format, data } => {
                        if !VIDEO_FORMATS.contains(&format.as_str()) {
                            return invalid(format!(
                                "`messages[{i}]`: video format `{}` is not one of {}",
                                format.chars().take(80).collect::<String>(),
                                VIDEO_FORMATS.join(", ")
                            ));
                        }
                        if data.is_empty() {
                            return invalid(format!("`messages[{i}]`: a video needs `data`"));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The request's conversation as text; see [`Conversation`]. Only the text parts are
    /// in it: a family that reads it honours no other part (`params_set` lists them, and a
    /// family that does not list them refuses the request before encoding it).
    pub fn conversation(&self) -> Conversation<'_> {
        if let Some(prompt) = &self.prompt {
            return Conversation {
                system: None,
                turns: vec![(Role::User, std::borrow::Cow::Borrowed(prompt.as_str()))],
            };
        }
        let system: Vec<std::borrow::Cow<'_, str>> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.text())
            .collect();
        Conversation {
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            turns: self
                .messages
                .iter()
                .filter(|m| m.role != Role::System)
                .map(|m| (m.role, m.content.text()))
                .collect(),
        }
    }

    /// The parameters this request sets, to check against what a family honours.
    pub fn params_set(&self) -> Vec<Param> {
        let mut params = Vec::new();
        if self.max_tokens.is_some() {
            params.push(Param::MaxTokens);
        }
        if self.temperature.is_some() {
            params.push(Param::Temperature);
        }
        if self.top_p.is_some() {
            params.push(Param::TopP);
        }
        if self.top_k.is_some() {
            params.push(Param::TopK);
        }
        if !self.stop.is_empty() {
            params.push(Param::Stop);
        }
        if self.seed.is_some() {
            params.push(Param::Seed);
        }
        if self.cache_prompt {
            params.push(Param::CachePrompt);
        }
        let any_part =
            |wanted: fn(&Part) -> bool| self.messages.iter().any(|m| m.content.has(wanted));
        if !self.tools.is_empty()
            || self.tool_choice.is_some()
            || any_part(|p| matches!(p, Part::ToolUse { .. } | Part::ToolResult { .. }))
        {
            params.push(Param::Tools);
        }
        if any_part(|p| matches!(p, Part::Image { .. })) {
            params.push(Param::ImageInput);
        }
        if any_part(|p| matches!(p, Part::Document { .. })) {
            params.push(Param::DocumentInput);
        }
        if any_part(|p| matches!(p, Part::Video { .. })) {
            params.push(Param::VideoInput);
        }
        if self.response_format.as_ref().is_some_and(|f| *f != ResponseFormat::Text) {
            params.push(Param::ResponseFormat);
        }
        if self.reasoning {
            params.push(Param::Reasoning);
        }
        params
    }
}

impl Param {
    /// The field's name in the gateway's requests.
    pub fn field_name(self) -> &'static str {
        match self {
            Param::MaxTokens => "max_tokens",
            Param::Temperature => "temperature",
            Param::TopP => "top_p",
            Param::TopK => "top_k",
            Param::Stop => "stop",
            Param::Seed => "seed",
            Param::Dimensions => "dimensions",
            Param::Normalize => "normalize",
            Param::InputType => "input_type",
            Param::NegativePrompt => "negative_prompt",
            Param::ImageCount => "n",
            Param::ImageSize => "width/height",
            Param::CfgScale => "cfg_scale",
            Param::Images => "images",
            Param::CachePrompt => "cache_prompt",
            Param::Tools => "tools",
            Param::ImageInput => "image parts",
            Param::DocumentInput => "document parts",
            Param::VideoInput => "video parts",
            Param::ResponseFormat => "response_format",
            Param::Reasoning => "reasoning",
        }
    }
}

impl StreamAccumulator {
    pub fn push(&mut self, event: &StreamEvent) {
        self.n_text_bytes += event.text.len();
        if event.stop_reason.is_some() {
            self.stop_reason = event.stop_reason;
        }
        self.usage.update(event.usage);
    }

    /// The stop reason seen so far, if any.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Ends the stream: it is complete only if some chunk carried a stop reason.
    pub fn finish(self) -> Result<(StopReason, Usage), TranslateError> {
        match self.stop_reason {
            Some(stop_reason) => Ok((stop_reason, self.usage)),
            None => Err(TranslateError::MalformedResponse {
                family: "stream",
                detail: format!(
                    "the stream ended after {} bytes of text without a stop reason",
                    self.n_text_bytes
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::unified::{Content, Message, Param, Part, Role, UnifiedRequest};

    fn with_parts(role: Role, parts: Vec<Part>) -> UnifiedRequest {
        UnifiedRequest {
            messages: vec![
                Message::text(Role::User, "hi"),
                Message { role, content: Content::Parts(parts) },
            ],
            ..UnifiedRequest::default()
        }
    }

    fn video(format: &str, data: &str) -> Part {
        Part::Video { format: format.to_owned(), data: data.to_owned() }
    }

    fn invalid(message: &str) -> String {
        TranslateError::InvalidRequest(message.to_owned()).to_string()
    }

    #[test]
    fn a_video_part_is_read_and_written_with_its_type() {
        let part: Part =
            serde_json::from_value(json!({"type": "video", "format": "mp4", "data": "AAAA"}))
                .unwrap();
        assert_eq!(part, video("mp4", "AAAA"));
        assert_eq!(part.kind(), "video");
        assert_eq!(
            serde_json::to_value(&part).unwrap(),
            json!({"type": "video", "format": "mp4", "data": "AAAA"})
        );
        let unknown_field =
            json!({"type": "video", "format": "mp4", "data": "AAAA", "uri": "s3://b"});
        assert!(serde_json::from_value::<Part>(unknown_field).is_err());
    }

    #[test]
    fn a_video_is_a_user_part_of_a_known_format_with_data() {
        let req = with_parts(Role::User, vec![video("three_gp", "AAAA")]);
        assert!(req.validate().is_ok());
        assert_eq!(req.params_set(), vec![Param::VideoInput]);
        assert_eq!(Param::VideoInput.field_name(), "video parts");
        for (req, message) in [
            (
                with_parts(Role::Assistant, vec![video("mp4", "AAAA")]),
                "`messages[1]`: a `video` part cannot be in a `assistant` message",
            ),
            (
                with_parts(Role::User, vec![video("3gp", "AAAA")]),
                "`messages[1]`: video format `3gp` is not one of mp4, mov, mkv, webm, flv, \
                 mpeg, mpg, wmv, three_gp",
            ),
            (with_parts(Role::User, vec![video("mp4", "")]), "`messages[1]`: a video needs `data`"),
        ] {
            assert_eq!(req.validate().unwrap_err().to_string(), invalid(message));
        }
    }

    #[test]
    fn a_video_counts_its_data_in_the_byte_length() {
        let content =
            Content::Parts(vec![Part::Text { text: "ab".to_owned() }, video("mp4", "AAAA")]);
        assert_eq!(content.byte_len(), 2 + 4 + 64);
    }
}
