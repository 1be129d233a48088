//! Anthropic Claude through the Messages API: `anthropic.claude-3*` and every later
//! Claude model id (`anthropic.claude-sonnet-4-*`, `anthropic.claude-opus-4-*`, ...).
//! The legacy `anthropic.claude-v2*` and `anthropic.claude-instant-*` ids speak Text
//! Completions, which is another family.
//!
//! The request is `{"anthropic_version", "max_tokens", "system", "messages", ...}`; the
//! answer is the text blocks of `content` with `usage` (wire reference §4.4). A stream
//! is a `message_start` ... `message_stop` sequence of events.
//!
//! Decisions:
//! - Messages carry plain string content; the system prompt goes in `system` as a string.
//! - Claude requires user and assistant turns to alternate, starting with a user turn:
//!   consecutive messages of one role are merged (joined by a blank line), and a
//!   conversation whose first turn is the assistant's is refused (see
//!   `common::alternating_turns`, which the `[INST]` prompt families share).
//! - A final assistant message is a prefill the model continues; Claude refuses one
//!   that ends in whitespace, so its trailing whitespace is trimmed.
//! - `max_tokens` is required by Claude, so [`DEFAULT_MAX_TOKENS`] fills it when the
//!   request has none. Its upper limit depends on the model and is left to Bedrock.
//! - `top_k` is not range-checked: Bedrock's documented bound (500) is unconfirmed.
//! - Stop reasons: `end_turn` ends the turn, `max_tokens` and
//!   `model_context_window_exceeded` are a length stop, `stop_sequence` is a stop
//!   sequence, `refusal` is a content filter; `tool_use`, `pause_turn` and anything
//!   newer are `Other`.
//! - Streams: input tokens come from `message_start`, output tokens from the last
//!   `message_delta`. `ping` and the block start/stop events contribute nothing; a chunk
//!   of an unknown (or no) `type`, a delta of an unknown type and an `error` event (which
//!   Bedrock sends as an exception frame instead) are reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED`) is a
//!   `content_filter` stop. A blocked input answers InvokeModel with
//!   `{"type": "message", "role": "assistant", "content": [{"type": "text", "text":
//!   <the guardrail's message>}], "amazon-bedrock-guardrailAction": "INTERVENED",
//!   "amazon-bedrock-trace": {...}}`, without `stop_reason` or `usage` (a model invocation
//!   log in panther-labs/panther-analysis
//!   `rules/aws_bedrock_rules/aws_bedrockmodelinvocation_guardrailintervened.yml`). No
//!   blocked Claude stream was found: a chunk of that whole-message shape is read too
//!   (its text blocks are the text), besides the guardrail key on any event.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    AlternatingTurns, GuardedChunk, alternating_turns, decode_guarded_response,
    finish_stream_event, parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, de_count, parse_body, to_body};
use crate::unified::{
    Param, Role, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};

/// The Anthropic Claude Messages family.
#[derive(Debug, Clone, Copy)]
pub struct AnthropicClaudeMessages;

const ID: &str = "anthropic_claude_messages";

/// The `anthropic_version` Bedrock requires in every Messages body.
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// `max_tokens` when the request does not set it. Claude requires the field; 1024 fits
/// most chat answers and keeps a forgotten limit cheap.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct ClaudeMessagesRequest<'a> {
    anthropic_version: &'static str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<ClaudeMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Debug, Serialize)]
struct ClaudeMessage {
    role: &'static str,
    content: String,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct ClaudeMessagesResponse {
    content: Vec<ClaudeContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

/// One content block; only `text` blocks carry answer text (others are `tool_use`,
/// `thinking`, ...).
#[derive(Debug, Deserialize)]
struct ClaudeContentBlock {
    #[serde(rename = "type")]
    block_type: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ClaudeUsage {
    #[serde(default, deserialize_with = "de_count")]
    input_tokens: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    output_tokens: Option<u32>,
}

/// One decoded stream chunk: an event named by `type`, with the keys of that event.
#[derive(Debug, Deserialize)]
struct ClaudeStreamEvent {
    #[serde(rename = "type", default)]
    event_type: Option<String>,
    /// `message_start`: the message so far, with the input token count.
    #[serde(default)]
    message: Option<ClaudeStartMessage>,
    /// `content_block_delta`: `{type: text_delta, text}`; `message_delta`: `{stop_reason}`.
    #[serde(default)]
    delta: Option<ClaudeDelta>,
    /// `message_delta`: the output token count so far.
    #[serde(default)]
    usage: Option<ClaudeUsage>,
    /// A whole `message` (the response's shape) sent as one chunk, as a blocked input
    /// might be: its text blocks are the text.
    #[serde(default)]
    content: Option<Vec<ClaudeContentBlock>>,
}

#[derive(Debug, Deserialize)]
struct ClaudeStartMessage {
    #[serde(default)]
    usage: Option<ClaudeUsage>,
}

#[derive(Debug, Default, Deserialize)]
struct ClaudeDelta {
    #[serde(rename = "type", default)]
    delta_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

impl TextFamily for AnthropicClaudeMessages {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("anthropic.claude-")
            && !base_model_id.starts_with("anthropic.claude-v")
            && !base_model_id.starts_with("anthropic.claude-instant-")
    }

    fn params(&self) -> &'static [Param] {
        &[
            Param::MaxTokens,
            Param::Temperature,
            Param::TopP,
            Param::TopK,
            Param::Stop,
            Param::CachePrompt,
        ]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "anthropic_version",
            "max_tokens",
            "system",
            "messages",
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let mut body = to_body(ID, &convert_request(req)?)?;
        if req.cache_prompt {
            mark_cache_prefix(&mut body);
        }
        Ok(body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let GuardedChunk { chunk: event, mut usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<ClaudeStreamEvent>(ID, chunk)?;
        let mut stream_event = StreamEvent::default();
        let known = match event.event_type.as_deref().unwrap_or_default() {
            "message_start" => {
                let input_tokens = event
                    .message
                    .and_then(|message| message.usage)
                    .and_then(|start_usage| start_usage.input_tokens);
                usage.update(Usage { input_tokens, output_tokens: None });
                true
            }
            "content_block_delta" => {
                let delta = event.delta.unwrap_or_default();
                match delta.delta_type.as_deref().unwrap_or_default() {
                    "text_delta" => {
                        stream_event.text = delta.text.unwrap_or_default();
                        true
                    }
                    other => NON_TEXT_DELTAS.contains(&other),
                }
            }
            "message_delta" => {
                stream_event.stop_reason = event
                    .delta
                    .and_then(|delta| delta.stop_reason)
                    .as_deref()
                    .map(convert_stop_reason);
                let output_tokens = event.usage.and_then(|delta_usage| delta_usage.output_tokens);
                usage.update(Usage { input_tokens: None, output_tokens });
                true
            }
            "message" => {
                let blocks = event.content.unwrap_or_default().into_iter();
                let texts = blocks.filter(|block| block.block_type == "text");
                stream_event.text = texts.filter_map(|block| block.text).collect();
                true
            }
            other => EMPTY_EVENTS.contains(&other),
        };
        stream_event.usage = usage;
        Ok(finish_stream_event(stream_event, known, guardrail_intervened))
    }
}

/// The stream events that carry nothing this gateway reads.
const EMPTY_EVENTS: &[&str] =
    &["content_block_start", "content_block_stop", "message_stop", "ping"];

/// The `content_block_delta` types that carry no answer text (tool input, thinking, its
/// signature, citations).
const NON_TEXT_DELTAS: &[&str] =
    &["input_json_delta", "thinking_delta", "signature_delta", "citations_delta"];

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: ClaudeMessagesResponse = parse_body(ID, body)?;
    let usage = res.usage.unwrap_or_default();
    Ok(UnifiedResponse {
        text: res
            .content
            .into_iter()
            .filter(|block| block.block_type == "text")
            .filter_map(|block| block.text)
            .collect(),
        stop_reason: res.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason),
        usage: Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens },
        ..Default::default()
    })
}

fn convert_request(req: &UnifiedRequest) -> Result<ClaudeMessagesRequest<'_>, TranslateError> {
    let AlternatingTurns { system, mut turns } = alternating_turns(ID, req)?;
    if let Some((Role::Assistant, prefill)) = turns.last_mut() {
        prefill.truncate(prefill.trim_end().len());
    }
    Ok(ClaudeMessagesRequest {
        anthropic_version: ANTHROPIC_VERSION,
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system,
        messages: turns
            .into_iter()
            .map(|(role, content)| ClaudeMessage {
                role: if role == Role::Assistant { "assistant" } else { "user" },
                content,
            })
            .collect(),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: &req.stop,
    })
}

/// Prompt caching (`cache_prompt`): a `cache_control: {"type": "ephemeral"}` breakpoint
/// on the system prompt and on the last user message, so that the system prompt and the
/// conversation up to the new turn are cached (AWS "Prompt caching for faster model
/// inference"; Anthropic's Messages API takes at most four breakpoints). The string
/// contents become one text block each, which carry the breakpoint.
fn mark_cache_prefix(body: &mut serde_json::Value) {
    let breakpoint = || serde_json::json!({"type": "ephemeral"});
    if let Some(system) = body.get_mut("system")
        && let Some(text) = system.as_str().map(str::to_owned)
    {
        *system =
            serde_json::json!([{"type": "text", "text": text, "cache_control": breakpoint()}]);
    }
    let last_user = body
        .get_mut("messages")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(|messages| messages.iter_mut().rev().find(|m| m["role"] == "user"));
    if let Some(message) = last_user
        && let Some(text) = message["content"].as_str().map(str::to_owned)
    {
        message["content"] =
            serde_json::json!([{"type": "text", "text": text, "cache_control": breakpoint()}]);
    }
}

fn convert_stop_reason(stop_reason: &str) -> StopReason {
    match stop_reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::anthropic_claude_messages::{AnthropicClaudeMessages, DEFAULT_MAX_TOKENS};
    use crate::unified::{Message, Role, StopReason, UnifiedRequest, Usage};

    fn message(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    #[test]
    fn matches_claude_3_and_later_only() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-opus-4-1-20250805-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
        ] {
            assert!(AnthropicClaudeMessages.matches(id), "{id}");
        }
        for id in ["anthropic.claude-v2:1", "anthropic.claude-instant-v1", "amazon.nova-pro-v1:0"] {
            assert!(!AnthropicClaudeMessages.matches(id), "{id}");
        }
    }

    #[test]
    fn same_role_runs_merge_and_the_prefill_is_trimmed() {
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "Sure: "),
            ],
            ..UnifiedRequest::default()
        };
        let body = AnthropicClaudeMessages.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "Sure:"}])
        );
        assert_eq!(body["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    }

    #[test]
    fn assistant_first_conversation_is_invalid() {
        let req = UnifiedRequest {
            messages: vec![message(Role::Assistant, "hi"), message(Role::User, "hello")],
            ..UnifiedRequest::default()
        };
        let err = AnthropicClaudeMessages.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn non_text_blocks_are_skipped() {
        let body = br#"{"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"A"},
            {"type":"tool_use","id":"t","name":"f","input":{}},{"type":"text","text":"B"}],
            "stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#;
        let res = AnthropicClaudeMessages.decode_response(body).unwrap();
        assert_eq!(res.text, "AB");
        assert_eq!(res.stop_reason, StopReason::Other);
    }

    #[test]
    fn ping_and_unknown_events_contribute_nothing() {
        for chunk in [&br#"{"type":"ping"}"#[..], br#"{"type":"brand_new","x":1}"#] {
            let event = AnthropicClaudeMessages.decode_stream_event(chunk).unwrap();
            let expected = crate::unified::StreamEvent {
                unrecognized: chunk.starts_with(br#"{"type":"brand_new""#),
                ..crate::unified::StreamEvent::default()
            };
            assert_eq!(event, expected);
        }
    }

    #[test]
    fn known_empty_events_are_recognized_and_unknown_ones_are_not() {
        for known in [
            r#"{"type":"message_start","message":{"content":[]}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            let event = AnthropicClaudeMessages.decode_stream_event(known.as_bytes()).unwrap();
            assert!(!event.unrecognized, "{known}");
        }
        for unknown in [
            r#"{"index":0}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"brand_new_delta"}}"#,
        ] {
            let event = AnthropicClaudeMessages.decode_stream_event(unknown.as_bytes()).unwrap();
            assert!(event.unrecognized, "{unknown}");
            assert_eq!((event.text.as_str(), event.stop_reason), ("", None), "{unknown}");
        }
    }

    #[test]
    fn guardrail_intervention_without_stop_reason_is_a_content_filter() {
        let body = br#"{"type":"message","role":"assistant","content":[{"type":"text",
            "text":"Sorry."}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let res = AnthropicClaudeMessages.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("Sorry.", StopReason::ContentFilter));
        let none =
            br#"{"content":[],"stop_reason":"end_turn","amazon-bedrock-guardrailAction":"NONE"}"#;
        let res = AnthropicClaudeMessages.decode_response(none).unwrap();
        assert_eq!(res.stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn thinking_deltas_are_not_text() {
        let chunk = br#"{"type":"content_block_delta","index":0,
            "delta":{"type":"thinking_delta","thinking":"hmm"}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(chunk).unwrap();
        assert_eq!(event.text, "");
    }

    #[test]
    fn message_start_gives_input_tokens_only() {
        let chunk = br#"{"type":"message_start","message":{"usage":{"input_tokens":16,"output_tokens":1}}}"#;
        let event = AnthropicClaudeMessages.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(16), output_tokens: None });
    }
}
