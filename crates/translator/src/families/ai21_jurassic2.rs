//! AI21 Labs Jurassic-2 (Mid, Ultra): `ai21.j2-*` model ids, legacy models that Bedrock
//! serves through InvokeModel only.
//!
//! The request is `{"prompt", "maxTokens", "temperature", "topP", "stopSequences"}`; the
//! answer is `completions[0].data.text` with `completions[0].finishReason.reason` (wire
//! reference §4.9).
//!
//! Decisions:
//! - Jurassic-2 does not stream on Bedrock: a request meant for the streaming operation is
//!   refused as unsupported (`streaming`, which the server answers with 422) before any
//!   call, and a stream chunk never decodes.
//! - The models take a bare prompt and document no chat template. A plain `prompt` is
//!   sent as given. `messages` are rendered as a plain transcript: the system prompt as
//!   its own first paragraph, then one `User: {text}` or `Assistant: {text}` line per
//!   turn, ending with `Assistant:` for the model to continue; a final assistant message
//!   is continued instead.
//! - Only the fields the request sets are sent, so Bedrock applies its defaults.
//!   `maxTokens` is not range-checked here (its documented limit is not confirmed);
//!   Bedrock rejects an excess with a validation error.
//! - The body carries no token counts (only token lists): the server reads Bedrock's
//!   token-count headers.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED`) is a
//!   `content_filter` stop, whatever `finishReason` says or when it is absent.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{decode_guarded_response, render_transcript, unsupported_streaming};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

/// The AI21 Labs Jurassic-2 family.
#[derive(Debug, Clone, Copy)]
pub struct Ai21Jurassic2;

const ID: &str = "ai21_jurassic2";

/// The body of InvokeModel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Jurassic2Request<'a> {
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

/// An InvokeModel response body; the tokenized prompt and token lists are ignored.
#[derive(Debug, Deserialize)]
struct Jurassic2Response {
    completions: Vec<Jurassic2Completion>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Jurassic2Completion {
    data: Jurassic2CompletionData,
    #[serde(default)]
    finish_reason: Option<Jurassic2FinishReason>,
}

#[derive(Debug, Deserialize)]
struct Jurassic2CompletionData {
    text: String,
}

/// `{"reason": "endoftext"}`, `{"reason": "length", "length": N}` or
/// `{"reason": "stop", "sequence": "..."}`.
#[derive(Debug, Deserialize)]
struct Jurassic2FinishReason {
    #[serde(default)]
    reason: Option<String>,
}

impl TextFamily for Ai21Jurassic2 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("ai21.j2-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["prompt", "maxTokens", "temperature", "topP", "stopSequences"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        if req.stream {
            return Err(unsupported_streaming(ID));
        }
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        to_body(ID, &convert_request(req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    /// Bedrock has no streaming for Jurassic-2, so there is no chunk to decode.
    fn decode_stream_event(&self, _chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        Err(unsupported_streaming(ID))
    }
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: Jurassic2Response = parse_body(ID, body)?;
    let Some(first) = res.completions.into_iter().next() else {
        return Err(TranslateError::MalformedResponse {
            family: ID,
            detail: "`completions` is empty".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        text: first.data.text,
        stop_reason: first
            .finish_reason
            .and_then(|finish_reason| finish_reason.reason)
            .as_deref()
            .map_or(StopReason::Other, convert_finish_reason),
        usage: Usage::default(),
        ..Default::default()
    })
}

fn convert_request(req: &UnifiedRequest) -> Jurassic2Request<'_> {
    Jurassic2Request {
        prompt: render_transcript(req, "Assistant"),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: &req.stop,
    }
}

fn convert_finish_reason(reason: &str) -> StopReason {
    match reason {
        "endoftext" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "stop" => StopReason::StopSequence,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::ai21_jurassic2::Ai21Jurassic2;
    use crate::unified::{Message, Role, StopReason, UnifiedRequest};

    #[test]
    fn matches_jurassic2_models_only() {
        assert!(Ai21Jurassic2.matches("ai21.j2-mid-v1"));
        assert!(Ai21Jurassic2.matches("ai21.j2-ultra-v1"));
        assert!(!Ai21Jurassic2.matches("ai21.jamba-1-5-mini-v1:0"));
    }

    #[test]
    fn streaming_is_unsupported_both_ways() {
        let req =
            UnifiedRequest { prompt: Some("hi".to_owned()), stream: true, ..Default::default() };
        let err = crate::encode_text_request(&Ai21Jurassic2, &req).unwrap_err();
        assert_eq!(
            err,
            TranslateError::Unsupported {
                family: "ai21_jurassic2",
                feature: "streaming".to_owned()
            }
        );
        let err = Ai21Jurassic2.decode_stream_event(br#"{"completions":[]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { .. }), "{err:?}");
    }

    #[test]
    fn transcript_template_is_pinned() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "Be terse."),
                Message::text(Role::User, "Hi"),
                Message::text(Role::Assistant, "Hello"),
            ],
            ..UnifiedRequest::default()
        };
        let body = Ai21Jurassic2.encode_request(&req).unwrap();
        assert_eq!(body, json!({"prompt": "Be terse.\n\nUser: Hi\nAssistant: Hello"}));
    }

    #[test]
    fn missing_finish_reason_is_other() {
        let body = br#"{"id":1,"completions":[{"data":{"text":"x","tokens":[]}}]}"#;
        let res = Ai21Jurassic2.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("x", StopReason::Other));
    }

    #[test]
    fn empty_completions_is_malformed() {
        let err = Ai21Jurassic2.decode_response(br#"{"id":1,"completions":[]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }
}
