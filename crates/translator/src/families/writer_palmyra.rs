//! Writer Palmyra X4 and X5: `writer.palmyra-x4-*` and `writer.palmyra-x5-*` model ids
//! (`writer.palmyra-x4-v1:0`, `writer.palmyra-x5-v1:0`; Bedrock serves both only through
//! their `us.` inference profiles). Palmyra Vision is not in this family.
//!
//! The body is `{"messages": [{"role", "content"}], "max_tokens", "temperature", "top_p",
//! "stop", "seed"}`; the answer is a chat completion object (`choices[0].message.content`,
//! `finish_reason`, `stop_reason`, `usage.prompt_tokens` / `completion_tokens`), and a stream
//! is one JSON object per chunk with the piece of answer in its first choice.
//!
//! Sources, and what each decided:
//! - The AWS user guide's parameter pages
//!   (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-palmyra-x4.html>,
//!   <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-palmyra-x5.html>,
//!   under <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-writer-palmyra.html>):
//!   the fields and their ranges (`messages` required; `temperature` 0 to 2, default 1;
//!   `top_p` above 0 and at most 1; `max_tokens` 1 to 8192, default 16; `min_tokens` 0 to
//!   `max_tokens`; `stop` at most 4 entries; `seed` any integer; `presence_penalty` and
//!   `frequency_penalty` -2 to 2), the output limit of 8192 tokens, and the answer: a
//!   `chat.completion` whose choice has `message` (`role`, `content`, `reasoning_content`,
//!   `tool_calls`), `finish_reason` and `stop_reason`, with OpenAI's `usage`.
//! - Recorded InvokeModel calls to `us.writer.palmyra-x5-v1:0` and `us.writer.palmyra-x4-v1:0`
//!   (a samples folder whose README says they were captured from Bedrock on 2026-01-20; the
//!   index that held it gives no repository name): string `content`, a `system` message,
//!   `stop`, `seed`, the penalties and `top_p` all accepted; `finish_reason` `stop`, `length`
//!   or `tool_calls`; `stop_reason` set only when one of the request's stop sequences ended
//!   the answer; the plain model id refused (inference profile only).
//! - langchain-ai/langchain-aws (PR #478, `libs/aws/langchain_aws/llms/bedrock.py` and
//!   `libs/aws/tests/unit_tests/llms/test_bedrock.py`, `MOCK_STREAMING_RESPONSE_WRITER`): the
//!   one recorded Palmyra stream. Its body is a bare `prompt`, and its chunks are
//!   `text_completion` objects (`choices[0].text`, `finish_reason`, `stop_reason`,
//!   `"usage": null`) ended by a chunk whose bytes are the JSON string `"[DONE]"`.
//!
//! Decisions:
//! - `content` is sent as a string. The request-body section of the AWS pages shows it as
//!   an object, `{"text": "..."}`, but the example code of the same X4 page sends a string,
//!   and string content is what the recorded calls sent and Bedrock answered; no recording
//!   of the object form was found. (The simulator accepts both.)
//! - The system prompt is a first `system` message; the other turns go as they are. A plain
//!   `prompt` is one user message.
//! - `max_tokens` is always sent: the caller's, else [`DEFAULT_MAX_TOKENS`], the model's
//!   documented output limit, because the model's own default of 16 tokens cuts off nearly
//!   every answer (the rule `cohere_command` follows for its default of 20). More than 8192
//!   is refused, as are more than 4 stop sequences and a `temperature` outside 0 to 2 (the
//!   request's own validation already keeps `top_p` in (0, 1], Palmyra's range).
//! - `stop` is sent (native), `seed` too; `min_tokens` and the penalties are not unified
//!   fields (`extra` may set them).
//! - Stop reasons: `finish_reason` `stop` with a string `stop_reason` (the matched stop
//!   sequence) is a stop-sequence stop; `stop` otherwise (a `null` or token-id `stop_reason`)
//!   ends the turn; `length` is a length stop, `content_filter` a content filter, `tool_calls`
//!   and anything else `Other`; no `finish_reason` is `Other` (whole) or no stop (streamed).
//! - Text: `message.content` (`null` for a tool call is empty text), or a choice's `text`
//!   (the completion shape langchain-aws reads); `reasoning_content` is not answer text.
//! - Stream chunks: no recording of a `messages` body's stream was found. Both plausible
//!   shapes are read: OpenAI `chat.completion.chunk`s (`choices[0].delta.content`) and the
//!   recorded `text_completion` chunks (`choices[0].text`); a `message` is read too. The
//!   `"[DONE]"` chunk (JSON string or bare) is a known empty event. Usage: a chunk's `usage`
//!   wins over Bedrock's invocation metrics.
//! - `"amazon-bedrock-guardrailAction": "INTERVENED"` on a body or chunk makes the stop a
//!   content filter whatever `finish_reason` says; such a body needs no choice (the shared
//!   guardrail helpers of `common.rs`).
//! - A stream chunk with no choice carrying a `delta`, `message`, `text` or `finish_reason`,
//!   no `usage`, no invocation metrics and no guardrail intervention is `unrecognized`.
//!
//! Plausible only, not seen: the `messages` stream's chunk shape, whether it ends with
//! `"[DONE]"`, and where Bedrock puts its invocation metrics in it.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::chat_completions::ChatContent;
use crate::families::common::{
    ChatMessage, ChatUsage, GuardedChunk, chat_messages, check_max_tokens_limit, check_stop_count,
    convert_chat_finish_reason, convert_chat_usage, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The Writer Palmyra family.
#[derive(Debug, Clone, Copy)]
pub struct WriterPalmyra;

const ID: &str = "writer_palmyra";

/// The base model id prefixes: Palmyra X4 and X5.
const MODEL_PREFIXES: &[&str] = &["writer.palmyra-x4-", "writer.palmyra-x5-"];

/// The largest `max_tokens` the models accept: their output limit.
const MAX_TOKENS_LIMIT: u32 = 8192;

/// `max_tokens` when the request does not set it; the model's own default is 16.
const DEFAULT_MAX_TOKENS: u32 = MAX_TOKENS_LIMIT;

/// The most stop sequences the models accept.
const MAX_STOP_SEQUENCES: usize = 4;

/// The chunk that ends a stream, as recorded: the JSON string `"[DONE]"`.
const DONE_CHUNK: &[u8] = b"\"[DONE]\"";

/// The same marker as a server-sent-events client would see it, not JSON-encoded.
const BARE_DONE_CHUNK: &[u8] = b"[DONE]";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct PalmyraRequest<'a> {
    messages: Vec<ChatMessage<'a>>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

/// An InvokeModel response body, and also the shape of every JSON-object stream chunk.
#[derive(Debug, Deserialize)]
struct PalmyraCompletion {
    #[serde(default)]
    choices: Vec<PalmyraChoice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
struct PalmyraChoice {
    /// The answer of a chat completion (also read from a chunk).
    #[serde(default)]
    message: Option<ChatContent>,
    /// The piece of answer of a `chat.completion.chunk`.
    #[serde(default)]
    delta: Option<ChatContent>,
    /// The answer, or piece of answer, of the completion shape.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// The stop sequence that ended the answer, a stop token id, or null.
    #[serde(default)]
    stop_reason: Option<serde_json::Value>,
}

impl PalmyraChoice {
    /// Whether the choice carries anything this family reads.
    fn is_known(&self) -> bool {
        self.message.is_some()
            || self.delta.is_some()
            || self.text.is_some()
            || self.finish_reason.is_some()
    }

    /// The choice's stop reason, if it gives one.
    fn stop_reason(&self) -> Option<StopReason> {
        let finish_reason = self.finish_reason.as_deref()?;
        let by_stop_sequence = self.stop_reason.as_ref().is_some_and(serde_json::Value::is_string);
        Some(if finish_reason == "stop" && by_stop_sequence {
            StopReason::StopSequence
        } else {
            convert_chat_finish_reason(finish_reason)
        })
    }

    /// The choice's text: `delta`, `message` or `text`, the first present.
    fn into_text(self) -> Option<String> {
        match self.delta.or(self.message) {
            Some(content) => content.content,
            None => self.text,
        }
    }
}

impl TextFamily for WriterPalmyra {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODEL_PREFIXES.iter().any(|prefix| base_model_id.starts_with(prefix))
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop, Param::Seed]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["messages", "max_tokens", "temperature", "top_p", "stop", "seed", "stream"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=2.0)?;
        check_max_tokens_limit(ID, req.max_tokens, MAX_TOKENS_LIMIT)?;
        check_stop_count(ID, &req.stop, MAX_STOP_SEQUENCES)?;
        let conversation = req.conversation();
        let body = PalmyraRequest {
            messages: chat_messages(&conversation, "system"),
            max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            temperature: req.temperature,
            top_p: req.top_p,
            stop: &req.stop,
            seed: req.seed,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        if is_done_chunk(chunk) {
            return Ok(finish_stream_event(StreamEvent::default(), true, false));
        }
        let GuardedChunk { chunk, mut usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<PalmyraCompletion>(ID, chunk)?;
        let mut known = chunk.usage.is_some();
        usage.update(chunk.usage.map(convert_chat_usage).unwrap_or_default());
        let (text, stop_reason) = match chunk.choices.into_iter().next() {
            Some(choice) => {
                known |= choice.is_known();
                let stop_reason = choice.stop_reason();
                (choice.into_text(), stop_reason)
            }
            None => (None, None),
        };
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

/// Whether a chunk is the `[DONE]` marker that ends a stream.
fn is_done_chunk(chunk: &[u8]) -> bool {
    let chunk = chunk.trim_ascii();
    chunk == DONE_CHUNK || chunk == BARE_DONE_CHUNK
}

/// The answer of a response body, guardrails aside.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: PalmyraCompletion = parse_body(ID, body)?;
    let usage = res.usage.map(convert_chat_usage).unwrap_or_default();
    let answered = |choice: &PalmyraChoice| choice.message.is_some() || choice.text.is_some();
    let Some(choice) = res.choices.into_iter().next().filter(answered) else {
        return Err(TranslateError::MalformedResponse {
            family: ID,
            detail: "the body has no `choices[0].message`".to_owned(),
        });
    };
    let stop_reason = choice.stop_reason().unwrap_or(StopReason::Other);
    Ok(UnifiedResponse {
        text: choice.into_text().unwrap_or_default(),
        stop_reason,
        usage,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::families::TextFamily;
    use crate::families::common::conversation;
    use crate::families::writer_palmyra::{DEFAULT_MAX_TOKENS, WriterPalmyra};
    use crate::unified::{Role, StopReason, UnifiedRequest, Usage};

    #[test]
    fn matches_palmyra_x4_and_x5_only() {
        for id in ["writer.palmyra-x4-v1:0", "writer.palmyra-x5-v1:0"] {
            assert!(WriterPalmyra.matches(id), "{id}");
        }
        for id in ["writer.palmyra-vision-7b", "writer.palmyra-x-004-v1:0", "qwen.qwen3-32b-v1:0"] {
            assert!(!WriterPalmyra.matches(id), "{id}");
        }
    }

    #[test]
    fn string_content_a_system_message_and_the_default_max_tokens() {
        let req = conversation(&[(Role::System, "Be terse."), (Role::User, "Hi")]);
        let body = WriterPalmyra.encode_request(&req).unwrap();
        assert_eq!(
            body,
            json!({"messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"}],
                "max_tokens": DEFAULT_MAX_TOKENS})
        );
    }

    #[test]
    fn limits_are_refused() {
        let base = UnifiedRequest { prompt: Some("Hi".to_owned()), ..UnifiedRequest::default() };
        let too_long = UnifiedRequest { max_tokens: Some(8193), ..base.clone() };
        let too_many_stops = UnifiedRequest { stop: vec!["a".to_owned(); 5], ..base.clone() };
        for req in [too_long, too_many_stops] {
            assert!(WriterPalmyra.encode_request(&req).is_err(), "{req:?}");
        }
        let at_limit = UnifiedRequest { max_tokens: Some(8192), ..base };
        assert!(WriterPalmyra.encode_request(&at_limit).is_ok());
    }

    #[test]
    fn a_string_stop_reason_is_a_stop_sequence_and_a_token_id_is_not() {
        let cases = [
            (r#""finish_reason":"stop","stop_reason":"END""#, StopReason::StopSequence),
            (r#""finish_reason":"stop","stop_reason":null"#, StopReason::EndTurn),
            (r#""finish_reason":"stop","stop_reason":128009"#, StopReason::EndTurn),
            (r#""finish_reason":"length","stop_reason":null"#, StopReason::MaxTokens),
            (r#""finish_reason":"tool_calls""#, StopReason::Other),
        ];
        for (reasons, expected) in cases {
            let body = format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"x"}},{reasons}}}]}}"#
            );
            let answer = WriterPalmyra.decode_response(body.as_bytes()).unwrap();
            assert_eq!(answer.stop_reason, expected, "{reasons}");
        }
    }

    #[test]
    fn completion_shaped_answers_and_chunks_are_read() {
        let body = br#"{"choices":[{"index":0,"text":" Hello.","finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        let answer = WriterPalmyra.decode_response(body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), (" Hello.", StopReason::EndTurn));
        assert_eq!(answer.usage, Usage { input_tokens: Some(3), output_tokens: Some(2) });
        let chunk = br#"{"object":"text_completion","choices":[{"index":0,"text":"Hel","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#;
        let event = WriterPalmyra.decode_stream_event(chunk).unwrap();
        assert_eq!(
            (event.text.as_str(), event.stop_reason, event.unrecognized),
            ("Hel", None, false)
        );
    }

    #[test]
    fn the_done_chunk_is_a_known_empty_event_and_odd_chunks_are_unrecognized() {
        for chunk in [&b"\"[DONE]\""[..], b"[DONE]", b" \"[DONE]\"\n"] {
            let event = WriterPalmyra.decode_stream_event(chunk).unwrap();
            assert!(!event.unrecognized && event.text.is_empty() && event.stop_reason.is_none());
        }
        for chunk in
            [&br#"{"type":"ping"}"#[..], br#"{"choices":[]}"#, br#"{"choices":[{"index":0}]}"#]
        {
            let event = WriterPalmyra.decode_stream_event(chunk).unwrap();
            assert!(event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
        assert!(WriterPalmyra.decode_stream_event(br#""other""#).is_err());
    }

    #[test]
    fn a_body_without_an_answer_is_malformed_unless_a_guardrail_intervened() {
        for body in
            [&br#"{"choices":[]}"#[..], br#"{"choices":[{"index":0,"finish_reason":"stop"}]}"#]
        {
            assert!(
                WriterPalmyra.decode_response(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let blocked = br#"{"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let answer = WriterPalmyra.decode_response(blocked).unwrap();
        assert_eq!(answer.stop_reason, StopReason::ContentFilter);
    }
}
