//! AI21 Labs Jamba (Jamba-Instruct, Jamba 1.5 Mini and Large): `ai21.jamba-*` model ids.
//!
//! The request is an OpenAI-like chat body, `{"messages": [{"role", "content"}],
//! "max_tokens", "temperature", "top_p", "stop"}`; the answer is
//! `choices[0].message.content` with `finish_reason` and `usage`, and a stream chunk is
//! `choices[0].delta.content` (wire reference §4.10).
//!
//! Decisions:
//! - Messages go as they are, with the roles `system`, `user` and `assistant`; the system
//!   prompt (every system message, joined) is the first message. A plain `prompt` is one
//!   user message.
//! - Only the fields the request sets are sent, so Bedrock applies its defaults; `n` is
//!   left at its default of one answer, the only one this gateway reads.
//! - `finish_reason` `stop` is reported as `end_turn`: Jamba does not say whether a stop
//!   sequence or the end of the answer stopped it.
//! - Stream chunks: no recorded Bedrock Jamba stream was found. AI21's own Bedrock client
//!   reads OpenAI-like chunks whose `choices[].finish_reason` is `null` until the last
//!   model chunk, followed by a separate chunk with the invocation metrics that it merges
//!   into that last one (AI21Labs/ai21-python `ai21/clients/bedrock/_stream_decoder.py`);
//!   that is what the simulator sends. Both plausible placements of the stop are read:
//!   `choices[0].finish_reason` next to a `delta`, or in a last chunk without one, and
//!   usage from `usage` or from the metrics chunk. A chunk with neither `choices` nor any
//!   usage is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, like `finish_reason` `content_filter`.

use serde::Deserialize;

use crate::error::TranslateError;
use crate::families::chat_completions::{ChatCompletionRequest, ChatContent, MaxTokensKey};
use crate::families::common::{
    ChatUsage, GuardedChunk, chat_messages, convert_chat_finish_reason, convert_chat_usage,
    decode_guarded_response, finish_stream_event, parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{
    Conversation, Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse,
};

/// The AI21 Labs Jamba family.
#[derive(Debug, Clone, Copy)]
pub struct Ai21Jamba;

const ID: &str = "ai21_jamba";

/// The largest `max_tokens` the models accept.
const MAX_TOKENS_LIMIT: u32 = 4096;

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct JambaResponse {
    choices: Vec<JambaChoice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
struct JambaChoice {
    message: ChatContent,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// One decoded stream chunk; the last one has `finish_reason` and `usage`.
#[derive(Debug, Deserialize)]
struct JambaStreamChunk {
    #[serde(default)]
    choices: Option<Vec<JambaStreamChoice>>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
struct JambaStreamChoice {
    #[serde(default)]
    delta: Option<ChatContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

impl TextFamily for Ai21Jamba {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("ai21.jamba-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["messages", "max_tokens", "temperature", "top_p", "stop"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=2.0)?;
        check_range(ID, "top_p", req.top_p, 0.01..=1.0)?;
        check_range(
            ID,
            "max_tokens",
            req.max_tokens.map(f64::from),
            1.0..=f64::from(MAX_TOKENS_LIMIT),
        )?;
        let conversation = req.conversation();
        to_body(ID, &convert_request(req, &conversation))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let GuardedChunk { chunk, mut usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<JambaStreamChunk>(ID, chunk)?;
        let known = chunk.choices.is_some() || chunk.usage.is_some();
        if let Some(jamba_usage) = chunk.usage {
            usage.update(convert_chat_usage(jamba_usage));
        }
        let first = chunk.choices.and_then(|choices| choices.into_iter().next());
        let (delta, finish_reason) = match first {
            Some(choice) => (choice.delta, choice.finish_reason),
            None => (None, None),
        };
        let event = StreamEvent {
            unrecognized: false,
            text: delta.and_then(|delta| delta.content).unwrap_or_default(),
            stop_reason: finish_reason.as_deref().map(convert_chat_finish_reason),
            usage,
            ..Default::default()
        };
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: JambaResponse = parse_body(ID, body)?;
    let Some(first) = res.choices.into_iter().next() else {
        return Err(TranslateError::MalformedResponse {
            family: ID,
            detail: "`choices` is empty".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        text: first.message.content.unwrap_or_default(),
        stop_reason: first
            .finish_reason
            .as_deref()
            .map_or(StopReason::Other, convert_chat_finish_reason),
        usage: res.usage.map(convert_chat_usage).unwrap_or_default(),
        ..Default::default()
    })
}

/// The body: the OpenAI Chat Completions one, `max_tokens` as `max_tokens`.
fn convert_request<'a>(
    req: &'a UnifiedRequest,
    conversation: &'a Conversation<'a>,
) -> ChatCompletionRequest<'a> {
    ChatCompletionRequest::new(req, chat_messages(conversation, "system"), MaxTokensKey::MaxTokens)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::ai21_jamba::Ai21Jamba;
    use crate::unified::{Message, Role, StopReason, UnifiedRequest, Usage};

    #[test]
    fn matches_jamba_models_only() {
        for id in ["ai21.jamba-instruct-v1:0", "ai21.jamba-1-5-large-v1:0"] {
            assert!(Ai21Jamba.matches(id), "{id}");
        }
        assert!(!Ai21Jamba.matches("ai21.j2-ultra-v1"));
    }

    #[test]
    fn system_messages_are_joined_into_the_first_message() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "a"),
                Message::text(Role::System, "b"),
                Message::text(Role::User, "c"),
            ],
            ..UnifiedRequest::default()
        };
        let body = Ai21Jamba.encode_request(&req).unwrap();
        assert_eq!(
            body,
            json!({"messages": [
                {"role": "system", "content": "a\n\nb"},
                {"role": "user", "content": "c"}
            ]})
        );
    }

    #[test]
    fn top_p_below_one_percent_is_out_of_range() {
        let req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            top_p: Some(0.005),
            ..UnifiedRequest::default()
        };
        let err = Ai21Jamba.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn tool_call_answer_has_empty_text() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[]},"finish_reason":"tool_calls"}]}"#;
        let res = Ai21Jamba.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("", StopReason::Other));
        assert_eq!(res.usage, Usage::default());
    }

    #[test]
    fn chunk_without_choices_contributes_only_usage() {
        let chunk = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}"#;
        let event = Ai21Jamba.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.stop_reason), ("", None));
        assert_eq!(event.usage, Usage { input_tokens: Some(5), output_tokens: Some(3) });
    }
}
