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
//! - Tools ([`Param::Tools`]): AI21's chat API, whose body Bedrock takes, documents `tools`
//!   (function tools only), assistant messages with `tool_calls` (`content` a required
//!   string, so `""` when the message only calls tools) and `tool` messages with
//!   `tool_call_id` (<https://docs.ai21.com/reference/jamba-1-6-api-ref>); the messages are
//!   the shared chat shape's (`chat_completions`). It documents no `tool_choice`: none (or
//!   `auto`) sends the tools and lets the model decide, `none` leaves `tools` out of the
//!   body (the model cannot call what it is not given), and `required` or a named tool is
//!   refused as unsupported, the model having no way to be forced [U: AWS's Jamba page
//!   names neither field].
//! - `message.tool_calls` (and a stream's `delta.tool_calls`) decode by the shared rules
//!   (`chat_completions`); `finish_reason` `tool_calls` is a tool-use stop.
//! - `response_format` ([`Param::ResponseFormat`]): AI21 documents `{"type":
//!   "json_object"}` (JSON mode), sent for a JSON-object format; a JSON-schema format is
//!   refused as unsupported (the model cannot be held to a schema, nor forced to call a
//!   tool in its place). No images (text models) and no reasoning.

use serde::Deserialize;

use crate::error::TranslateError;
use crate::families::chat_completions::{
    ChatCompletionRequest, ChatOutput, EmptyCallContent, MaxTokensKey, chat_tools,
    chat_wire_messages, convert_finish_reason, decode_tool_calls, stream_tool_calls,
};
use crate::families::common::{
    ChatUsage, GuardedChunk, convert_chat_usage, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{
    Param, ResponseFormat, StopReason, StreamEvent, ToolChoice, UnifiedRequest, UnifiedResponse,
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
    message: ChatOutput,
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
    delta: Option<ChatOutput>,
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
        &[
            Param::MaxTokens,
            Param::Temperature,
            Param::TopP,
            Param::Stop,
            Param::Tools,
            Param::ResponseFormat,
        ]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        // Not `tools` and `response_format`: `extra` may set them when the request does not.
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
        to_body(ID, &convert_request(req)?)
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
        let delta = delta.unwrap_or_default();
        let event = StreamEvent {
            unrecognized: false,
            tool_calls: stream_tool_calls(delta.tool_calls.unwrap_or_default()),
            text: delta.content.unwrap_or_default(),
            stop_reason: finish_reason.as_deref().map(convert_finish_reason),
            usage,
            reasoning: String::new(),
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
            .map_or(StopReason::Other, convert_finish_reason),
        usage: res.usage.map(convert_chat_usage).unwrap_or_default(),
        tool_calls: decode_tool_calls(first.message.tool_calls.unwrap_or_default()),
        reasoning: None,
    })
}

/// The body: the OpenAI Chat Completions one, `max_tokens` as `max_tokens`, with the
/// tools unless the choice is `none`, and JSON mode; refused: a forced tool choice and a
/// JSON-schema format (see the module doc).
fn convert_request(req: &UnifiedRequest) -> Result<ChatCompletionRequest<'_>, TranslateError> {
    let messages = chat_wire_messages(req, "system", EmptyCallContent::EmptyString);
    let mut body = ChatCompletionRequest::new(req, messages, MaxTokensKey::MaxTokens);
    let unsupported =
        |feature: &str| TranslateError::Unsupported { family: ID, feature: feature.to_owned() };
    match &req.tool_choice {
        None | Some(ToolChoice::Auto) => body.tools = chat_tools(&req.tools),
        Some(ToolChoice::None) => {}
        Some(ToolChoice::Required | ToolChoice::Tool(_)) => {
            return Err(unsupported("a `tool_choice` that forces a tool call"));
        }
    }
    body.response_format = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => Some(serde_json::json!({"type": "json_object"})),
        Some(ResponseFormat::JsonSchema { .. }) => {
            return Err(unsupported("a `json_schema` `response_format`"));
        }
    };
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::ai21_jamba::Ai21Jamba;
    use crate::unified::{
        Content, Message, Part, ResponseFormat, Role, StopReason, Tool, ToolCallDelta, ToolChoice,
        UnifiedRequest, Usage,
    };

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
    fn tool_call_answer_is_a_tool_use_stop_with_the_calls() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather",
            "arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}]}"#;
        let res = Ai21Jamba.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("", StopReason::ToolUse));
        assert_eq!(
            serde_json::to_value(&res.tool_calls).unwrap(),
            json!([{"id": "call_a", "name": "get_weather", "input": {"city": "Oslo"}}])
        );
        assert_eq!(res.usage, Usage::default());
    }

    fn weather_tool() -> Tool {
        Tool {
            name: "get_weather".to_owned(),
            description: None,
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }
    }

    #[test]
    fn tools_and_a_tool_round_trip_are_encoded() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::User, "Weather?"),
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![Part::ToolUse {
                        id: "call_a".to_owned(),
                        name: "get_weather".to_owned(),
                        input: json!({"city": "Oslo"}),
                    }]),
                },
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![Part::ToolResult {
                        tool_use_id: "call_a".to_owned(),
                        content: "Sunny".to_owned(),
                        is_error: false,
                    }]),
                },
            ],
            tools: vec![weather_tool()],
            response_format: Some(ResponseFormat::JsonObject),
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&Ai21Jamba, &req).unwrap();
        assert_eq!(
            body,
            json!({
                "messages": [
                    {"role": "user", "content": "Weather?"},
                    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_a",
                        "type": "function", "function": {"name": "get_weather",
                        "arguments": "{\"city\":\"Oslo\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_a", "content": "Sunny"}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "response_format": {"type": "json_object"}
            })
        );
    }

    #[test]
    fn choice_none_leaves_the_tools_out_and_forcing_is_unsupported() {
        let mut req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            tools: vec![weather_tool()],
            tool_choice: Some(ToolChoice::None),
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&Ai21Jamba, &req).unwrap();
        assert_eq!(body, json!({"messages": [{"role": "user", "content": "Hi"}]}));
        for choice in [ToolChoice::Required, ToolChoice::Tool("get_weather".to_owned())] {
            req.tool_choice = Some(choice);
            let err = crate::encode_text_request(&Ai21Jamba, &req).unwrap_err();
            assert!(matches!(err, TranslateError::Unsupported { .. }), "{err:?}");
        }
        req.tool_choice = None;
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "x".to_owned(),
            schema: json!({"type": "object"}),
            strict: false,
        });
        let err = crate::encode_text_request(&Ai21Jamba, &req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { .. }), "{err:?}");
    }

    #[test]
    fn streamed_tool_call_pieces_are_decoded() {
        let first = br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a",
            "type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#;
        let event = Ai21Jamba.decode_stream_event(first).unwrap();
        let expected = ToolCallDelta {
            index: 0,
            id: Some("call_a".to_owned()),
            name: Some("get_weather".to_owned()),
            arguments: String::new(),
        };
        assert_eq!(event.tool_calls, [expected]);
        let piece = br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,
            "function":{"arguments":"{\"city\""}}]},"finish_reason":null}]}"#;
        let event = Ai21Jamba.decode_stream_event(piece).unwrap();
        let expected =
            ToolCallDelta { index: 0, arguments: r#"{"city""#.to_owned(), ..Default::default() };
        assert_eq!(event.tool_calls, [expected]);
        let last = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
        let event = Ai21Jamba.decode_stream_event(last).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ToolUse));
    }

    #[test]
    fn chunk_without_choices_contributes_only_usage() {
        let chunk = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}"#;
        let event = Ai21Jamba.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.stop_reason), ("", None));
        assert_eq!(event.usage, Usage { input_tokens: Some(5), output_tokens: Some(3) });
    }
}
