//! Anthropic Claude through the legacy Text Completions API: `anthropic.claude-v2*` and
//! `anthropic.claude-instant-*` model ids. Claude 3 and later speak the Messages API,
//! which is another family.
//!
//! The request is `{"prompt": "\n\nHuman: ...\n\nAssistant:", "max_tokens_to_sample", ...}`;
//! the answer is `completion` (wire reference §4.3).
//!
//! Decisions:
//! - The unified prompt is plain text and is always wrapped in one Human turn, even
//!   if it already contains turn markers.
//! - `max_tokens_to_sample` is required by Bedrock, so [`DEFAULT_MAX_TOKENS`] fills it
//!   when the request has no `max_tokens`.
//! - The body stays minimal: no `anthropic_version` (optional for text completions)
//!   and no `\n\nHuman:` stop sequence (the model always stops there anyway).
//! - The bodies carry no token counts: a response's usage is unknown (the server reads
//!   Bedrock's token-count headers) and a stream's usage comes from the invocation
//!   metrics of its last chunk.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, whatever `stop_reason` says or when it is absent
//!   (see `common::decode_guarded_response`).
//! - Every stream chunk is a `{"type": "completion", "completion", "stop_reason", "stop"}`
//!   object, the response's own shape (wire reference §4.3; the body is recorded in
//!   traceloop/openllmetry `tests/traces/cassettes/test_anthropic_2_completion.yaml`); a
//!   chunk with another `type` and no `completion` is reported as unrecognized.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, check_max_tokens_limit, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{
    Param, Role, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};

/// The Anthropic Claude Text Completions family.
#[derive(Debug, Clone, Copy)]
pub struct AnthropicClaudeText;

const ID: &str = "anthropic_claude_text";

/// `max_tokens_to_sample` when the request does not set `max_tokens`. Bedrock requires
/// the field; 512 is long enough for most answers and keeps a forgotten limit cheap.
const DEFAULT_MAX_TOKENS: u32 = 512;

/// The largest `max_tokens_to_sample` Bedrock accepts for these models.
const MAX_TOKENS_LIMIT: u32 = 4096;

/// The turn marker that ends the assistant's turn; as a matched stop sequence it
/// means the model finished on its own.
const HUMAN_TURN: &str = "\n\nHuman:";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct ClaudeTextRequest<'a> {
    prompt: String,
    max_tokens_to_sample: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

/// An InvokeModel response body, and also the shape of every stream chunk.
#[derive(Debug, Deserialize)]
struct ClaudeTextCompletion {
    /// `completion` on every chunk and body.
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    completion: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    /// The stop sequence that matched, if any.
    #[serde(default)]
    stop: Option<String>,
}

impl TextFamily for AnthropicClaudeText {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("anthropic.claude-v2")
            || base_model_id.starts_with("anthropic.claude-instant-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["prompt", "max_tokens_to_sample", "temperature", "top_p", "stop_sequences"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        check_max_tokens_limit(ID, req.max_tokens, MAX_TOKENS_LIMIT)?;
        to_body(ID, &convert_request(req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunk has no counts of its own, so the invocation metrics are the usage.
        let GuardedChunk { chunk, usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<ClaudeTextCompletion>(ID, chunk)?;
        let known = chunk.completion.is_some() || chunk.event_type.as_deref() == Some("completion");
        let event = StreamEvent {
            unrecognized: false,
            text: chunk.completion.unwrap_or_default(),
            stop_reason: convert_stop_reason(chunk.stop_reason.as_deref(), chunk.stop.as_deref()),
            usage,
            ..Default::default()
        };
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: ClaudeTextCompletion = parse_body(ID, body)?;
    let Some(text) = res.completion else {
        return Err(TranslateError::MalformedResponse {
            family: ID,
            detail: "the body has no `completion`".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        text,
        stop_reason: convert_stop_reason(res.stop_reason.as_deref(), res.stop.as_deref())
            .unwrap_or(StopReason::Other),
        usage: Usage::default(),
        ..Default::default()
    })
}

fn convert_request(req: &UnifiedRequest) -> ClaudeTextRequest<'_> {
    ClaudeTextRequest {
        prompt: render_prompt(req),
        max_tokens_to_sample: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: &req.stop,
    }
}

/// The Human/Assistant transcript Bedrock requires: it starts with a Human turn (the
/// system prompt opens it) and ends with `\n\nAssistant:` for the model to continue.
/// A final assistant message is continued rather than closed.
fn render_prompt(req: &UnifiedRequest) -> String {
    let conversation = req.conversation();
    let mut prompt = String::new();
    let mut system = conversation.system.as_deref();
    if conversation.turns.first().is_some_and(|(role, _)| *role == Role::Assistant) {
        prompt.push_str(HUMAN_TURN);
        if let Some(system) = system.take() {
            prompt.push(' ');
            prompt.push_str(system);
        }
    }
    for (role, content) in &conversation.turns {
        match role {
            Role::Assistant => prompt.push_str("\n\nAssistant: "),
            Role::User | Role::System => {
                prompt.push_str(HUMAN_TURN);
                prompt.push(' ');
                if let Some(system) = system.take() {
                    prompt.push_str(system);
                    prompt.push_str("\n\n");
                }
            }
        }
        prompt.push_str(content);
    }
    if conversation.turns.last().is_none_or(|(role, _)| *role != Role::Assistant) {
        prompt.push_str("\n\nAssistant:");
    }
    prompt
}

/// `None` while the model is still going (`stop_reason` null, as on mid-stream chunks).
fn convert_stop_reason(stop_reason: Option<&str>, stop: Option<&str>) -> Option<StopReason> {
    let stop_reason = match stop_reason? {
        "max_tokens" => StopReason::MaxTokens,
        // The model ends its turn by starting the next Human turn.
        "stop_sequence" if stop == Some(HUMAN_TURN) => StopReason::EndTurn,
        "stop_sequence" => StopReason::StopSequence,
        _ => StopReason::Other,
    };
    Some(stop_reason)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::anthropic_claude_text::{AnthropicClaudeText, DEFAULT_MAX_TOKENS};
    use crate::unified::{StopReason, UnifiedRequest};

    fn request(max_tokens: Option<u32>) -> UnifiedRequest {
        UnifiedRequest { prompt: Some("hi".to_owned()), max_tokens, ..UnifiedRequest::default() }
    }

    #[test]
    fn matches_text_completion_models_only() {
        for id in ["anthropic.claude-v2", "anthropic.claude-v2:1", "anthropic.claude-instant-v1"] {
            assert!(AnthropicClaudeText.matches(id), "{id}");
        }
        for id in
            ["anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0"]
        {
            assert!(!AnthropicClaudeText.matches(id), "{id}");
        }
    }

    #[test]
    fn max_tokens_defaults_and_limit_is_inclusive() {
        let body = AnthropicClaudeText.encode_request(&request(None)).unwrap();
        assert_eq!(body["max_tokens_to_sample"], json!(DEFAULT_MAX_TOKENS));
        let body = AnthropicClaudeText.encode_request(&request(Some(4096))).unwrap();
        assert_eq!(body["max_tokens_to_sample"], json!(4096));
        let err = AnthropicClaudeText.encode_request(&request(Some(4097))).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn zero_max_tokens_is_invalid() {
        let err = crate::encode_text_request(&AnthropicClaudeText, &request(Some(0))).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn non_json_body_is_malformed() {
        let err = AnthropicClaudeText.decode_response(b"").unwrap_err();
        assert!(matches!(
            err,
            TranslateError::MalformedResponse { family: "anthropic_claude_text", .. }
        ));
    }

    #[test]
    fn body_without_completion_is_malformed() {
        let err =
            AnthropicClaudeText.decode_response(br#"{"stop_reason":"max_tokens"}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn stop_sequence_without_stop_is_a_stop_sequence() {
        let body = br#"{"completion":"x","stop_reason":"stop_sequence","stop":null}"#;
        let res = AnthropicClaudeText.decode_response(body).unwrap();
        assert_eq!(res.stop_reason, StopReason::StopSequence);
    }

    #[test]
    fn stream_chunk_without_stop_reason_has_none() {
        let chunk = br#"{"type":"completion","completion":" Here","stop_reason":null,"stop":null}"#;
        let event = AnthropicClaudeText.decode_stream_event(chunk).unwrap();
        assert_eq!(event.text, " Here");
        assert_eq!(event.stop_reason, None);
    }
}
