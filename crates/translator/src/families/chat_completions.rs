//! The OpenAI Chat Completions wire shape that Bedrock serves on InvokeModel for several
//! families (`openai_chat`, `openai_gpt_oss`): the request body (also Jamba's, whose body is
//! the same), the chat completion answer and the `chat.completion.chunk` stream, with the
//! model's `<reasoning>...</reasoning>` spans removed from the text.
//!
//! A family of this shape is a [`ChatCompletionsFamily`] (its id, model ids, system role and
//! max-tokens key); its [`TextFamily`] impl is the blanket one below.
//!
//! A stream chunk with no choice carrying a `delta`, a `message` or a `finish_reason`, no
//! `usage`, no invocation metrics and no guardrail intervention is `unrecognized`; a
//! role-only or empty `delta` is a known empty event. Usage: a chunk's `usage` wins over the
//! invocation metrics.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    ChatMessage, ChatUsage, GuardedChunk, TaggedSpanFilter, chat_messages,
    convert_chat_finish_reason, convert_chat_usage, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk, strip_tagged_spans,
};
use crate::families::{StreamTextFilter, TextFamily, check_range, parse_body, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse};

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
}

impl<T: ChatCompletionsFamily> TextFamily for T {
    fn id(&self) -> &'static str {
        T::ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        T::MODEL_PREFIXES.iter().any(|prefix| base_model_id.starts_with(prefix))
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    /// Both max-tokens keys, whichever the family sends, so that `extra` sets neither.
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

/// The body of InvokeModel and InvokeModelWithResponseStream: OpenAI's `messages`, one of
/// `max_tokens` and `max_completion_tokens`, and the sampling fields.
#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    pub(crate) messages: Vec<ChatMessage<'a>>,
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
}

impl<'a> ChatCompletionRequest<'a> {
    /// The body of `req` over `messages`, its max tokens under `max_tokens_key`.
    pub(crate) fn new(
        req: &'a UnifiedRequest,
        messages: Vec<ChatMessage<'a>>,
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
        }
    }
}

/// A message or delta; `content` is null when the model calls a tool, and absent from a
/// role-only or empty delta.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatContent {
    #[serde(default)]
    pub(crate) content: Option<String>,
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
    message: Option<ChatContent>,
    /// The piece of answer of a chunk.
    #[serde(default)]
    delta: Option<ChatContent>,
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
/// 1): the system prompt as a first `system_role` message, then the turns as they are.
fn encode_chat_completion(
    family: &'static str,
    req: &UnifiedRequest,
    system_role: &'static str,
    max_tokens_key: MaxTokensKey,
) -> Result<serde_json::Value, TranslateError> {
    check_range(family, "temperature", req.temperature, 0.0..=2.0)?;
    check_range(family, "top_p", req.top_p, 0.0..=1.0)?;
    let conversation = req.conversation();
    let body =
        ChatCompletionRequest::new(req, chat_messages(&conversation, system_role), max_tokens_key);
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
    let text = message.content.as_deref().unwrap_or_default();
    Ok(UnifiedResponse {
        text: strip_tagged_spans(text, REASONING_START, REASONING_END),
        stop_reason: finish_reason.as_deref().map_or(StopReason::Other, convert_chat_finish_reason),
        usage,
        ..Default::default()
    })
}

/// What one `chat.completion.chunk` contributes (reasoning spans are the
/// stream text filter's to remove).
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
    let (content, finish_reason) = match chunk.choices.into_iter().next() {
        Some(mut choice) => {
            let finish_reason = choice.reason();
            known |= choice.delta.is_some() || choice.message.is_some() || finish_reason.is_some();
            (choice.delta.or(choice.message).and_then(|c| c.content), finish_reason)
        }
        None => (None, None),
    };
    let event = StreamEvent {
        unrecognized: false,
        text: content.unwrap_or_default(),
        stop_reason: finish_reason.as_deref().map(convert_chat_finish_reason),
        usage,
        ..Default::default()
    };
    Ok(finish_stream_event(event, known, guardrail_intervened))
}
