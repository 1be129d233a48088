//! Mistral AI models that take the chat-completion body: `mistral.mistral-large-2407-*` and
//! `mistral.mistral-large-2411-*` (Mistral Large 2, 24.07 and 24.11) and
//! `mistral.pixtral-large-2502-*` (Pixtral Large). The older `[INST]` prompt models are
//! `mistral_text`.
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
//! - A choice may carry `stop_reason` (the AWS user guide's response, and the wire
//!   reference §4.6), `finish_reason` (Mistral's own API, and what LiteLLM reads from
//!   Bedrock: BerriAI/litellm `amazon_mistral_transformation.py`) or both (the
//!   OpenAI-compatible servers Mistral models are served with put both on a choice,
//!   `stop_reason` then being the matched stop string, a token id or null). Each is
//!   accepted: `finish_reason` wins when it is a string, else a string `stop_reason`; a
//!   non-string `stop_reason` is no reason. A stream chunk's text is read from
//!   `delta.content` or `message.content`. No recording of a chat-body answer from
//!   Bedrock was found (OpenLLMetry and OpenInference record Mistral only through
//!   Converse or the `[INST]` body), so every shape is accepted.
//! - With a guardrail, a body or chunk whose choice gives no reason and which carries
//!   `amazon-bedrock-guardrailAction: INTERVENED` is a `content_filter` stop, as Titan's
//!   recorded guardrail chunks show for the field Bedrock adds to every model's JSON.
//! - A stream chunk with no choice, reason, usage or guardrail action is of a shape this
//!   family does not know (`unrecognized`).
//! - The bodies carry no token counts: usage comes from Bedrock's headers, or from a
//!   stream's invocation metrics.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::chat_completions::ChatContent;
use crate::families::common::{ChatMessage, chat_messages, convert_mistral_stop_reason};
use crate::families::{StopMode, TextFamily, check_range, parse_body, parse_stream_chunk, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

/// The Mistral chat-completion family.
#[derive(Debug, Clone, Copy)]
pub struct MistralChat;

const ID: &str = "mistral_chat";

/// The base model id prefixes of the chat-body Mistral models.
const MODEL_PREFIXES: &[&str] =
    &["mistral.mistral-large-2407-", "mistral.mistral-large-2411-", "mistral.pixtral-large-2502-"];

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
    #[serde(default, rename = "amazon-bedrock-guardrailAction")]
    guardrail_action: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MistralChoice {
    #[serde(default)]
    message: Option<ChatContent>,
    #[serde(default)]
    delta: Option<ChatContent>,
    /// A reason string, or (OpenAI-compatible servers) the stop string or token id that
    /// ended the answer, or null.
    #[serde(default)]
    stop_reason: Option<serde_json::Value>,
    #[serde(default)]
    finish_reason: Option<serde_json::Value>,
}

impl MistralChoice {
    /// The reason string of `finish_reason`, else of `stop_reason`.
    fn reason(&self) -> Option<&str> {
        let finish_reason = self.finish_reason.as_ref().and_then(serde_json::Value::as_str);
        finish_reason.or_else(|| self.stop_reason.as_ref().and_then(serde_json::Value::as_str))
    }
}

/// The choice's reason; without one, a guardrail's intervention is a content filter stop.
fn stop_reason(
    choice: Option<&MistralChoice>,
    guardrail_action: Option<&str>,
) -> Option<StopReason> {
    match (choice.and_then(MistralChoice::reason), guardrail_action) {
        (Some(reason), _) => Some(convert_mistral_stop_reason(reason)),
        (None, Some("INTERVENED")) => Some(StopReason::ContentFilter),
        (None, _) => None,
    }
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
        let guardrail_action = res.guardrail_action;
        let Some(choice) = res.choices.into_iter().next() else {
            return Err(no_message());
        };
        let stop_reason = stop_reason(Some(&choice), guardrail_action.as_deref());
        let Some(message) = choice.message else {
            return Err(no_message());
        };
        Ok(UnifiedResponse {
            text: message.content.unwrap_or_default(),
            stop_reason: stop_reason.unwrap_or(StopReason::Other),
            usage: Usage::default(),
            ..Default::default()
        })
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunk has no counts of its own, so the invocation metrics are the usage.
        let (chunk, usage) = parse_stream_chunk::<MistralChatResponse>(ID, chunk)?;
        let guardrail_action = chunk.guardrail_action.as_deref();
        let choice = chunk.choices.into_iter().next();
        let stop_reason = stop_reason(choice.as_ref(), guardrail_action);
        let content = choice.and_then(|choice| choice.delta.or(choice.message));
        let unrecognized = content.is_none()
            && stop_reason.is_none()
            && guardrail_action.is_none()
            && usage == Usage::default();
        Ok(StreamEvent {
            unrecognized,
            text: content.and_then(|content| content.content).unwrap_or_default(),
            stop_reason,
            usage,
            ..Default::default()
        })
    }
}

fn no_message() -> TranslateError {
    TranslateError::MalformedResponse {
        family: ID,
        detail: "the body has no `choices[0].message`".to_owned(),
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
    fn stop_reason_finish_reason_or_both_are_read() {
        let variants = [
            (r#""stop_reason":"length""#, StopReason::MaxTokens),
            (r#""finish_reason":"length""#, StopReason::MaxTokens),
            (r#""finish_reason":"length","stop_reason":null"#, StopReason::MaxTokens),
            (r#""stop_reason":"stop","finish_reason":"length""#, StopReason::MaxTokens),
            (r#""finish_reason":"stop","stop_reason":2"#, StopReason::EndTurn),
            (r#""finish_reason":null,"stop_reason":"length""#, StopReason::MaxTokens),
            (r#""finish_reason":null,"stop_reason":null"#, StopReason::Other),
        ];
        for (reasons, expected) in variants {
            let body = format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"x"}},{reasons}}}]}}"#
            );
            let res = MistralChat.decode_response(body.as_bytes()).unwrap();
            assert_eq!(res.stop_reason, expected, "{reasons}");
            let chunk =
                format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"x"}},{reasons}}}]}}"#);
            let event = MistralChat.decode_stream_event(chunk.as_bytes()).unwrap();
            let expected = (expected != StopReason::Other).then_some(expected);
            assert_eq!(event.stop_reason, expected, "{reasons}");
            assert_eq!(event.text, "x");
        }
    }

    #[test]
    fn guardrail_intervention_without_reason_is_a_content_filter_stop() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Blocked."},
            "stop_reason":null}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let res = MistralChat.decode_response(body).unwrap();
        assert_eq!(res.stop_reason, StopReason::ContentFilter);
        let chunk = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},
            "stop_reason":"stop"}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = MistralChat.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::EndTurn));
        let chunk = br#"{"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = MistralChat.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ContentFilter));
        assert!(!event.unrecognized);
    }

    #[test]
    fn unknown_stream_chunk_is_unrecognized() {
        for chunk in [&br#"{}"#[..], br#"{"choices":[]}"#, br#"{"choices":[{"index":0}]}"#] {
            let event = MistralChat.decode_stream_event(chunk).unwrap();
            assert!(event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
        let known = br#"{"choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#;
        assert!(!MistralChat.decode_stream_event(known).unwrap().unrecognized);
        let metrics_only = br#"{"choices":[],"amazon-bedrock-invocationMetrics":
            {"inputTokenCount":1,"outputTokenCount":2}}"#;
        assert!(!MistralChat.decode_stream_event(metrics_only).unwrap().unrecognized);
    }

    #[test]
    fn empty_choices_is_malformed() {
        let err = MistralChat.decode_response(br#"{"choices":[]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }
}
