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
}

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of a conversation; text content only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A request's conversation in the form every family starts from: the system prompt
/// (all system messages joined by a blank line) and the user/assistant turns in order.
/// A plain `prompt` is one user turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation<'a> {
    pub system: Option<String>,
    pub turns: Vec<(Role, &'a str)>,
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
        Ok(())
    }

    /// The request's conversation; see [`Conversation`].
    pub fn conversation(&self) -> Conversation<'_> {
        if let Some(prompt) = &self.prompt {
            return Conversation { system: None, turns: vec![(Role::User, prompt.as_str())] };
        }
        let system: Vec<&str> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        Conversation {
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            turns: self
                .messages
                .iter()
                .filter(|m| m.role != Role::System)
                .map(|m| (m.role, m.content.as_str()))
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
