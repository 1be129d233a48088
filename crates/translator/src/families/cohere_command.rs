//! Cohere Command text generation (Command, Command Light): `cohere.command-text-*` and
//! `cohere.command-light-text-*` model ids. Command R and R+ take a chat body and are
//! another family.
//!
//! The request is `{"prompt", "max_tokens", "temperature", "p", "k", "stop_sequences",
//! "stream"}`; the answer is `generations[0].text` with its `finish_reason` (wire
//! reference §4.7).
//!
//! Decisions:
//! - The models take a bare prompt and document no chat template. A plain `prompt` is
//!   sent as given. `messages` are rendered as a plain transcript: the system prompt as its
//!   own first paragraph, then one `User: {text}` or `Chatbot: {text}` line per turn
//!   (`Chatbot` is Cohere's name for the model's role), ending with `Chatbot:` for the
//!   model to continue; a final assistant message is continued instead.
//! - `"stream": true` is set when the body is for InvokeModelWithResponseStream: the docs
//!   call it required for streaming. (Without it, AWS's own examples read the whole
//!   answer from one chunk in the non-streamed shape; the stream decoder reads that too.)
//! - `max_tokens` defaults to [`DEFAULT_MAX_TOKENS`]: the model's own default, 20 tokens,
//!   cuts off nearly every answer.
//! - The bodies carry no token counts: a response's usage is unknown (the server reads
//!   Bedrock's token-count headers) and a stream's comes from its invocation metrics.
//! - The last stream chunk (`is_finished: true`) repeats the whole answer in `response`;
//!   it contributes only the stop reason. Chunks may also name their `event_type`
//!   (`text-generation`, `stream-end`), as Cohere's generate-stream events do and as
//!   Cohere's own Bedrock client expects (cohere-ai/cohere-python
//!   `src/cohere/aws_client.py`); both forms are read. A chunk with none of these keys is
//!   reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, like `ERROR_TOXIC`.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, check_stop_count, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk, render_transcript,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

/// The Cohere Command family.
#[derive(Debug, Clone, Copy)]
pub struct CohereCommand;

const ID: &str = "cohere_command";

/// `max_tokens` when the request does not set it; the model's own default is 20.
const DEFAULT_MAX_TOKENS: u32 = 512;

/// The largest `max_tokens` the models accept.
const MAX_TOKENS_LIMIT: u32 = 4096;

/// The most stop sequences the models accept.
const MAX_STOP_SEQUENCES: usize = 4;

/// A text some clients have seen as the last streamed token; it is not part of the answer.
const END_OF_SEQUENCE_TOKEN: &str = "<EOS_TOKEN>";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct CohereCommandRequest<'a> {
    prompt: String,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct CohereCommandResponse {
    generations: Vec<CohereGeneration>,
}

#[derive(Debug, Deserialize)]
struct CohereGeneration {
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// One decoded stream chunk: `{"text", "is_finished": false}`, then a last chunk with
/// `is_finished: true` and `finish_reason`; or the whole answer in the response's shape.
#[derive(Debug, Deserialize)]
struct CohereStreamChunk {
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    is_finished: Option<bool>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    generations: Option<Vec<CohereGeneration>>,
}

impl TextFamily for CohereCommand {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("cohere.command-text-")
            || base_model_id.starts_with("cohere.command-light-text-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::TopK, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["prompt", "max_tokens", "temperature", "p", "k", "stop_sequences", "stream"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=5.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        check_range(ID, "top_k", req.top_k.map(f64::from), 0.0..=500.0)?;
        check_range(
            ID,
            "max_tokens",
            req.max_tokens.map(f64::from),
            1.0..=f64::from(MAX_TOKENS_LIMIT),
        )?;
        check_stop_count(ID, &req.stop, MAX_STOP_SEQUENCES)?;
        to_body(ID, &convert_request(req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunks have no counts of their own, so the invocation metrics are the usage.
        let GuardedChunk { chunk, usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<CohereStreamChunk>(ID, chunk)?;
        let known = chunk.text.is_some()
            || chunk.is_finished.is_some()
            || chunk.finish_reason.is_some()
            || chunk.generations.is_some()
            || chunk.event_type.as_deref().is_some_and(|t| STREAM_EVENT_TYPES.contains(&t));
        let is_end =
            chunk.is_finished == Some(true) || chunk.event_type.as_deref() == Some("stream-end");
        let (text, finish_reason) = match chunk.generations {
            // The whole answer in one chunk, as for InvokeModel.
            Some(generations) => {
                let first = generations.into_iter().next();
                let finish_reason = first.as_ref().and_then(|g| g.finish_reason.clone());
                (first.map(|g| g.text).unwrap_or_default(), Some(finish_reason))
            }
            None if is_end => (String::new(), Some(chunk.finish_reason)),
            None => {
                let text = chunk.text.filter(|text| text != END_OF_SEQUENCE_TOKEN);
                (text.unwrap_or_default(), None)
            }
        };
        let event = StreamEvent {
            unrecognized: false,
            text,
            stop_reason: finish_reason
                .map(|reason| reason.as_deref().map_or(StopReason::Other, convert_finish_reason)),
            usage,
            ..Default::default()
        };
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The `event_type`s of Cohere's generate stream.
const STREAM_EVENT_TYPES: &[&str] = &["text-generation", "stream-end"];

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: CohereCommandResponse = parse_body(ID, body)?;
    let Some(first) = res.generations.into_iter().next() else {
        return Err(TranslateError::MalformedResponse {
            family: ID,
            detail: "`generations` is empty".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        stop_reason: first
            .finish_reason
            .as_deref()
            .map_or(StopReason::Other, convert_finish_reason),
        text: first.text,
        usage: Usage::default(),
        ..Default::default()
    })
}

fn convert_request(req: &UnifiedRequest) -> CohereCommandRequest<'_> {
    CohereCommandRequest {
        prompt: render_transcript(req, "Chatbot"),
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: req.temperature,
        p: req.top_p,
        k: req.top_k,
        stop_sequences: &req.stop,
        stream: req.stream,
    }
}

fn convert_finish_reason(finish_reason: &str) -> StopReason {
    match finish_reason {
        "COMPLETE" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "ERROR_TOXIC" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::cohere_command::{CohereCommand, DEFAULT_MAX_TOKENS};
    use crate::unified::{Message, Role, StopReason, UnifiedRequest};

    #[test]
    fn matches_command_text_models_only() {
        for id in [
            "cohere.command-text-v14",
            "cohere.command-light-text-v14",
            "cohere.command-text-v14:7:4k",
        ] {
            assert!(CohereCommand.matches(id), "{id}");
        }
        for id in ["cohere.command-r-v1:0", "cohere.command-r-plus-v1:0", "cohere.embed-english-v3"]
        {
            assert!(!CohereCommand.matches(id), "{id}");
        }
    }

    #[test]
    fn transcript_template_is_pinned() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "Be terse."),
                Message::text(Role::User, "Hi"),
                Message::text(Role::Assistant, "Hello."),
                Message::text(Role::User, "A joke?"),
            ],
            ..UnifiedRequest::default()
        };
        let body = CohereCommand.encode_request(&req).unwrap();
        assert_eq!(
            body["prompt"],
            json!("Be terse.\n\nUser: Hi\nChatbot: Hello.\nUser: A joke?\nChatbot:")
        );
        assert_eq!(body["max_tokens"], json!(DEFAULT_MAX_TOKENS));
        assert!(body.get("stream").is_none());
    }

    #[test]
    fn five_stop_sequences_are_too_many() {
        let req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            stop: ["a", "b", "c", "d", "e"].map(str::to_owned).to_vec(),
            ..UnifiedRequest::default()
        };
        let err = CohereCommand.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn empty_generations_is_malformed() {
        let err = CohereCommand.decode_response(br#"{"id":"x","generations":[]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn end_of_sequence_token_is_not_text() {
        let chunk = br#"{"text":"<EOS_TOKEN>","is_finished":false}"#;
        let event = CohereCommand.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.stop_reason), ("", None));
    }

    #[test]
    fn finished_chunk_without_reason_still_ends_the_stream() {
        let event = CohereCommand.decode_stream_event(br#"{"is_finished":true}"#).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::Other));
    }
}
