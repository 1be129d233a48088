//! Mistral AI models that take the chat-completion body: `mistral.mistral-large-2407-*`
//! (Mistral Large 2) and `mistral.pixtral-large-2502-*` (Pixtral Large). The older
//! `[INST]` prompt models are `mistral_text`.
//!
//! The request is `{"messages": [{"role", "content"}], "max_tokens", "temperature",
//! "top_p"}`; the answer is `choices[0].message.content` (wire reference §4.6).
//!
//! Decisions:
//! - The system prompt is sent as a first `system` message; the other messages go as
//!   they are (no merging: the chat body does not require alternation). A plain
//!   `prompt` is one user message.
//! - The documented chat body has no stop parameter, so stops are emulated by the
//!   gateway ([`StopMode::Emulated`]); nor has it `top_k`, which is refused.
//! - The choice's stop reason is read from `stop_reason` (the AWS documentation) or
//!   `finish_reason` (Mistral's own API); a stream chunk's text from `message.content`
//!   or `delta.content`. Neither shape was seen in live traffic.
//! - The bodies carry no token counts: usage comes from Bedrock's headers, or from a
//!   stream's invocation metrics.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{ChatMessage, chat_messages, convert_mistral_stop_reason};
use crate::families::{StopMode, TextFamily, check_range, parse_body, parse_stream_chunk, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

/// The Mistral chat-completion family.
#[derive(Debug, Clone, Copy)]
pub struct MistralChat;

const ID: &str = "mistral_chat";

/// The base model id prefixes of the chat-body Mistral models.
const MODEL_PREFIXES: &[&str] = &["mistral.mistral-large-2407-", "mistral.pixtral-large-2502-"];

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct MistralChatRequest<'a> {
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

/// An InvokeModel response body, and also the shape of every stream chunk.
#[derive(Debug, Deserialize)]
struct MistralChatResponse {
    #[serde(default)]
    choices: Vec<MistralChoice>,
}

#[derive(Debug, Deserialize)]
struct MistralChoice {
    #[serde(default)]
    message: Option<MistralChatContent>,
    #[serde(default)]
    delta: Option<MistralChatContent>,
    #[serde(default, alias = "finish_reason")]
    stop_reason: Option<String>,
}

/// A message or a stream delta; `content` is null when the model calls a tool.
#[derive(Debug, Deserialize)]
struct MistralChatContent {
    #[serde(default)]
    content: Option<String>,
}

impl TextFamily for MistralChat {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODEL_PREFIXES.iter().any(|prefix| base_model_id.starts_with(prefix))
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn stop_mode(&self) -> StopMode {
        StopMode::Emulated
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["messages", "max_tokens", "temperature", "top_p"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let conversation = req.conversation();
        let body = MistralChatRequest {
            messages: chat_messages(&conversation, "system"),
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        let res: MistralChatResponse = parse_body(ID, body)?;
        let Some(MistralChoice { message: Some(message), stop_reason, .. }) =
            res.choices.into_iter().next()
        else {
            return Err(TranslateError::MalformedResponse {
                family: ID,
                detail: "the body has no `choices[0].message`".to_owned(),
            });
        };
        Ok(UnifiedResponse {
            text: message.content.unwrap_or_default(),
            stop_reason: stop_reason
                .as_deref()
                .map_or(StopReason::Other, convert_mistral_stop_reason),
            usage: Usage::default(),
        })
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunk has no counts of its own, so the invocation metrics are the usage.
        let (chunk, usage) = parse_stream_chunk::<MistralChatResponse>(ID, chunk)?;
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(StreamEvent { usage, ..StreamEvent::default() });
        };
        Ok(StreamEvent {
            unrecognized: false,
            text: choice
                .delta
                .or(choice.message)
                .and_then(|content| content.content)
                .unwrap_or_default(),
            stop_reason: choice.stop_reason.as_deref().map(convert_mistral_stop_reason),
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::mistral_chat::MistralChat;
    use crate::families::{StopMode, TextFamily};
    use crate::unified::{StopReason, UnifiedRequest};

    #[test]
    fn matches_chat_models_only() {
        for id in ["mistral.mistral-large-2407-v1:0", "mistral.pixtral-large-2502-v1:0"] {
            assert!(MistralChat.matches(id), "{id}");
        }
        assert!(!MistralChat.matches("mistral.mistral-large-2402-v1:0"));
    }

    #[test]
    fn plain_prompt_is_one_user_message_and_stops_are_emulated() {
        let req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            stop: vec!["END".to_owned()],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&MistralChat, &req).unwrap();
        assert_eq!(body, json!({"messages": [{"role": "user", "content": "Hi"}]}));
        assert_eq!(MistralChat.stop_mode(), StopMode::Emulated);
    }

    #[test]
    fn finish_reason_is_read_too() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},
            "finish_reason":"length"}]}"#;
        let res = MistralChat.decode_response(body).unwrap();
        assert_eq!(res.stop_reason, StopReason::MaxTokens);
    }

    #[test]
    fn tool_call_answer_has_empty_text() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"t","function":{"name":"f","arguments":"{}"}}]},
            "stop_reason":"tool_calls"}]}"#;
        let res = MistralChat.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("", StopReason::Other));
    }

    #[test]
    fn empty_choices_is_malformed() {
        let err = MistralChat.decode_response(br#"{"choices":[]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }
}
