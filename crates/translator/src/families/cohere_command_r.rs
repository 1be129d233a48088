//! Cohere Command R and Command R+: `cohere.command-r-v*` and `cohere.command-r-plus-v*`
//! model ids.
//!
//! The request is Cohere's chat body, `{"message", "chat_history": [{"role", "message"}],
//! "preamble", "max_tokens", "temperature", "p", "k", "stop_sequences", "seed"}`; the answer
//! is `text` with `finish_reason` (wire reference §4.8).
//!
//! Decisions:
//! - `message` is the last user message. Every turn before it goes to `chat_history` with
//!   the roles `USER` and `CHATBOT`, and the system prompt is the `preamble`. A plain
//!   `prompt` is the `message` alone.
//! - The chat API answers the last user message and cannot continue an assistant message:
//!   a conversation that ends with one is refused as unsupported.
//! - This family honours `seed` (best-effort determinism, as Cohere documents it).
//! - There is no `stream` flag in this body: the operation alone selects streaming.
//! - Usage is left to Bedrock's token-count headers (or a stream's invocation metrics)
//!   rather than `meta.billed_units`, which AWS documents for streams only and which counts
//!   Cohere's billed units, not necessarily the tokens Bedrock meters.
//! - `max_tokens` is not range-checked here (its documented limit is not confirmed);
//!   Bedrock rejects an excess with a validation error.
//! - Stream chunks: no recording of a Bedrock Command R stream was found. Cohere's own
//!   Bedrock client reads them as Cohere chat-stream events and types them as
//!   `{"event_type": "text-generation", "text", "is_finished"}` and
//!   `{"event_type": "stream-end", "is_finished", "finish_reason"}` with the invocation
//!   metrics on `stream-end` (cohere-ai/cohere-python `src/cohere/aws_client.py`), which is
//!   the shape the simulator sends. So only `text-generation` events carry text;
//!   `stream-end` carries the stop reason and repeats the whole answer in `response`,
//!   which is not added again; `stream-start`, citation, search and tool events are known
//!   and carry nothing. The other plausible shapes are read too: event objects without
//!   `event_type` (`text`, `is_finished`, `finish_reason`), a chat-completions-like chunk
//!   (`choices[0].delta.content`, `choices[0].finish_reason`), and the `generations` list
//!   that AWS's Python example reads from each chunk (awsdocs/aws-doc-sdk-examples
//!   `python/example_code/bedrock-runtime/models/cohere_command/command_r_invoke_model_with_response_stream.py`).
//!   Any other chunk with nothing to read is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, like `ERROR_TOXIC`.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, convert_chat_finish_reason, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{
    Conversation, Param, Role, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};

/// The Cohere Command R family.
#[derive(Debug, Clone, Copy)]
pub struct CohereCommandR;

const ID: &str = "cohere_command_r";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct CommandRRequest<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    chat_history: Vec<CommandRTurn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preamble: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

#[derive(Debug, Serialize)]
struct CommandRTurn<'a> {
    role: &'static str,
    message: &'a str,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct CommandRResponse {
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// One decoded stream chunk: a chat-stream event (`stream-start`, `text-generation`,
/// `stream-end`, ...), an event object without `event_type`, a chat-completions-like
/// chunk (`choices`) or a `generations` list.
#[derive(Debug, Deserialize)]
struct CommandRStreamChunk {
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    is_finished: Option<bool>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChatChunkChoice>>,
    #[serde(default)]
    generations: Option<Vec<CommandRGeneration>>,
}

#[derive(Debug, Deserialize)]
struct ChatChunkChoice {
    #[serde(default)]
    delta: Option<ChatChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatChunkDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommandRGeneration {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// The `event_type`s of Cohere's chat stream; only `text-generation` carries answer text
/// and only `stream-end` the stop reason.
const STREAM_EVENT_TYPES: &[&str] = &[
    "stream-start",
    "text-generation",
    "citation-generation",
    "search-queries-generation",
    "search-results",
    "tool-calls-generation",
    "tool-calls-chunk",
    "stream-end",
];

impl TextFamily for CohereCommandR {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("cohere.command-r-v")
            || base_model_id.starts_with("cohere.command-r-plus-v")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::TopK, Param::Stop, Param::Seed]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "message",
            "chat_history",
            "preamble",
            "max_tokens",
            "temperature",
            "p",
            "k",
            "stop_sequences",
            "seed",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.01..=0.99)?;
        check_range(ID, "top_k", req.top_k.map(f64::from), 0.0..=500.0)?;
        let conversation = req.conversation();
        to_body(ID, &convert_request(req, &conversation)?)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunks have no counts of their own, so the invocation metrics are the usage.
        let GuardedChunk { chunk, usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<CommandRStreamChunk>(ID, chunk)?;
        let (known, text, stop_reason) = decode_chunk(chunk);
        let event = StreamEvent {
            unrecognized: false,
            text: text.unwrap_or_default(),
            stop_reason,
            usage,
            ..Default::default()
        };
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// Whether a chunk is of a known shape, its text and its stop reason.
fn decode_chunk(chunk: CommandRStreamChunk) -> (bool, Option<String>, Option<StopReason>) {
    if let Some(choices) = chunk.choices {
        let Some(first) = choices.into_iter().next() else {
            return (true, None, None);
        };
        let text = first.delta.and_then(|delta| delta.content);
        return (true, text, first.finish_reason.as_deref().map(convert_chat_finish_reason));
    }
    if let Some(generations) = chunk.generations {
        let Some(first) = generations.into_iter().next() else {
            return (true, None, None);
        };
        let stop_reason =
            first.finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason);
        return (true, first.text, Some(stop_reason));
    }
    let is_end = chunk.event_type.as_deref() == Some("stream-end")
        || chunk.is_finished == Some(true)
        || chunk.finish_reason.is_some();
    let stop_reason = is_end
        .then(|| chunk.finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason));
    match chunk.event_type.as_deref() {
        Some(event_type) => {
            let text = (event_type == "text-generation").then_some(chunk.text).flatten();
            (STREAM_EVENT_TYPES.contains(&event_type), text, stop_reason)
        }
        // Without an event type, text counts unless it is the repeat on the last chunk.
        None => {
            let known = chunk.text.is_some() || chunk.is_finished.is_some() || is_end;
            let text = (chunk.is_finished != Some(true)).then_some(chunk.text).flatten();
            (known, text, stop_reason)
        }
    }
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: CommandRResponse = parse_body(ID, body)?;
    Ok(UnifiedResponse {
        text: res.text,
        stop_reason: res.finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason),
        usage: Usage::default(),
        ..Default::default()
    })
}

fn convert_request<'a>(
    req: &'a UnifiedRequest,
    conversation: &'a Conversation<'a>,
) -> Result<CommandRRequest<'a>, TranslateError> {
    let Some(((Role::User, message), history)) = conversation.turns.split_last() else {
        return Err(TranslateError::Unsupported {
            family: ID,
            feature: "a conversation that ends with an `assistant` message".to_owned(),
        });
    };
    Ok(CommandRRequest {
        message,
        chat_history: history
            .iter()
            .map(|(role, message)| CommandRTurn {
                role: if *role == Role::Assistant { "CHATBOT" } else { "USER" },
                message,
            })
            .collect(),
        preamble: conversation.system.as_deref(),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        p: req.top_p,
        k: req.top_k,
        stop_sequences: &req.stop,
        seed: req.seed,
    })
}

/// AWS's documentation spells the values in lower case, the API in upper case.
fn convert_finish_reason(finish_reason: &str) -> StopReason {
    match finish_reason.to_ascii_uppercase().as_str() {
        "COMPLETE" => StopReason::EndTurn,
        // ERROR_LIMIT: the model's context length cut the answer off.
        "MAX_TOKENS" | "ERROR_LIMIT" => StopReason::MaxTokens,
        "STOP_SEQUENCE" => StopReason::StopSequence,
        "ERROR_TOXIC" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::cohere_command_r::CohereCommandR;
    use crate::unified::{Message, Role, StopReason, UnifiedRequest};

    fn message(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    #[test]
    fn matches_command_r_models_only() {
        for id in ["cohere.command-r-v1:0", "cohere.command-r-plus-v1:0"] {
            assert!(CohereCommandR.matches(id), "{id}");
        }
        for id in ["cohere.command-text-v14", "cohere.command-light-text-v14", "cohere.embed-v4:0"]
        {
            assert!(!CohereCommandR.matches(id), "{id}");
        }
    }

    #[test]
    fn last_user_message_is_the_message_and_the_rest_history() {
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "c"),
                message(Role::User, "d"),
            ],
            ..UnifiedRequest::default()
        };
        let body = CohereCommandR.encode_request(&req).unwrap();
        assert_eq!(body["message"], json!("d"));
        assert_eq!(
            body["chat_history"],
            json!([
                {"role": "USER", "message": "a"},
                {"role": "USER", "message": "b"},
                {"role": "CHATBOT", "message": "c"}
            ])
        );
    }

    #[test]
    fn final_assistant_message_is_unsupported() {
        let req = UnifiedRequest {
            messages: vec![message(Role::User, "a"), message(Role::Assistant, "b")],
            ..UnifiedRequest::default()
        };
        let err = CohereCommandR.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "cohere_command_r", .. }));
    }

    #[test]
    fn top_p_of_one_is_out_of_range() {
        let req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            top_p: Some(1.0),
            ..Default::default()
        };
        let err = CohereCommandR.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn lower_case_finish_reasons_are_understood() {
        let res = CohereCommandR.decode_response(br#"{"text":"x","finish_reason":"max_tokens"}"#);
        assert_eq!(res.unwrap().stop_reason, StopReason::MaxTokens);
    }

    #[test]
    fn events_other_than_text_generation_add_no_text() {
        for chunk in [
            r#"{"is_finished":false,"event_type":"stream-start","generation_id":"g"}"#,
            r#"{"is_finished":false,"event_type":"citation-generation","text":"x"}"#,
        ] {
            let event = CohereCommandR.decode_stream_event(chunk.as_bytes()).unwrap();
            assert_eq!((event.text.as_str(), event.stop_reason), ("", None), "{chunk}");
        }
    }
}
