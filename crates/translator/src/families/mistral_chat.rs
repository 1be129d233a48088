//! Mistral AI models that take the chat-completion body: `mistral.mistral-large-2407-*` and
//! `mistral.mistral-large-2411-*` (Mistral Large 2, 24.07 and 24.11) and
//! `mistral.pixtral-large-2502-*` (Pixtral Large). The older `[INST]` prompt models are
//! `mistral_text`.
//!
//! The request is `{"messages": [{"role", "content"}], "max_tokens", "temperature",
//! "top_p", "tools", "tool_choice"}`; the answer is `choices[0].message.content` and
//! `message.tool_calls` (wire reference §4.6; the AWS user guide's Mistral AI chat
//! completion page,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-mistral-chat-completion.html>,
//! documents the tool fields, the assistant `tool_calls` message and the `tool` message).
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
//! - Tools ([`Param::Tools`]): `tools` as `[{"type": "function", "function": {"name",
//!   "description", "parameters"}}]` and the messages of the shared chat shape
//!   (`chat_completions`): an assistant message's tool calls with `content: ""` when it
//!   says nothing (AWS's example; the page makes `content` a string), each tool result a
//!   `{"role": "tool", "tool_call_id", "content"}` message. `tool_choice` takes `"auto"`,
//!   `"any"` and `"none"` (AWS): `required` is `"any"`, and a named tool is `"any"` with
//!   `tools` narrowed to that one tool, so the model must call it. The tool call ids the
//!   model answers with (`v6RMMiRlT7ygYkT4uULjtg` in AWS's example) are sent back as they
//!   are; ids of another family's making are sent too [U].
//! - A tool call's `arguments` (a JSON text) is parsed as its input by the shared rules
//!   (`chat_completions`); `stop_reason` / `finish_reason` `tool_calls` is a tool-use
//!   stop. Streamed, a choice's `delta.tool_calls` (or a chunk's whole
//!   `message.tool_calls`) is the event's tool-call piece, one index per chunk.
//! - Images ([`Param::ImageInput`]): Pixtral Large takes them; user content parts are
//!   `{"type": "text"}` and `{"type": "image_url", "image_url": {"url": "data:<media
//!   type>;base64,<data>"}}` (Mistral's chat API's image chunk; no AWS example of the
//!   InvokeModel body with an image was found [U]). The family lists images for all its
//!   models: Mistral Large 2 refuses them with Bedrock's 400, passed through.
//! - No `response_format` on Bedrock's documented body: a JSON answer is the codec's
//!   forced tool call. No reasoning: these models return none.
//! - The bodies carry no token counts: usage comes from Bedrock's headers, or from a
//!   stream's invocation metrics.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::chat_completions::{
    ChatOutput, EmptyCallContent, WireMessage, WireTool, chat_tools, chat_wire_messages,
    decode_tool_calls, stream_tool_calls,
};
use crate::families::common::convert_mistral_stop_reason;
use crate::families::{StopMode, TextFamily, check_range, parse_body, parse_stream_chunk, to_body};
use crate::unified::{
    Param, StopReason, StreamEvent, ToolChoice, UnifiedRequest, UnifiedResponse, Usage,
};

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
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
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
    message: Option<ChatOutput>,
    #[serde(default)]
    delta: Option<ChatOutput>,
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
        (Some("tool_calls"), _) => Some(StopReason::ToolUse),
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
        &[
            Param::MaxTokens,
            Param::Temperature,
            Param::TopP,
            Param::Stop,
            Param::Tools,
            Param::ImageInput,
        ]
    }

    fn stop_mode(&self) -> StopMode {
        StopMode::Emulated
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        // Not `tools` and `tool_choice`: `extra` may set them when the request does not.
        &["messages", "max_tokens", "temperature", "top_p"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let (tool_choice, only_tool) = match &req.tool_choice {
            None => (None, None),
            Some(ToolChoice::Auto) => (Some("auto"), None),
            Some(ToolChoice::None) => (Some("none"), None),
            Some(ToolChoice::Required) => (Some("any"), None),
            Some(ToolChoice::Tool(name)) => (Some("any"), Some(name.as_str())),
        };
        let mut tools = chat_tools(&req.tools);
        if let Some(name) = only_tool {
            tools.retain(|tool| tool.name() == name);
        }
        let body = MistralChatRequest {
            messages: chat_wire_messages(req, "system", EmptyCallContent::EmptyString),
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            tools,
            tool_choice,
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
            tool_calls: decode_tool_calls(message.tool_calls.unwrap_or_default()),
            reasoning: None,
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
        let content = content.unwrap_or_default();
        Ok(StreamEvent {
            unrecognized,
            tool_calls: stream_tool_calls(content.tool_calls.unwrap_or_default()),
            text: content.content.unwrap_or_default(),
            stop_reason,
            usage,
            reasoning: String::new(),
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
    use crate::unified::{
        Content, Message, Part, Role, StopReason, Tool, ToolCallDelta, ToolChoice, UnifiedRequest,
    };

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
    fn tool_call_answer_is_a_tool_use_stop_with_the_calls() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"t","function":{"name":"f","arguments":"{}"}},
            {"id":"u","function":{"name":"g","arguments":"{\"a\":1}"}}]},
            "stop_reason":"tool_calls"}]}"#;
        let res = MistralChat.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("", StopReason::ToolUse));
        assert_eq!(
            serde_json::to_value(&res.tool_calls).unwrap(),
            json!([{"id": "t", "name": "f", "input": {}}, {"id": "u", "name": "g", "input": {"a": 1}}])
        );
    }

    fn tool(name: &str) -> Tool {
        Tool {
            name: name.to_owned(),
            description: Some(format!("The {name} tool.")),
            parameters: json!({"type": "object"}),
        }
    }

    #[test]
    fn tool_choices_map_to_auto_any_and_none() {
        let mut req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            tools: vec![tool("a"), tool("b")],
            ..UnifiedRequest::default()
        };
        let wire = |name: &str| {
            json!({"type": "function", "function": {"name": name,
                "description": format!("The {name} tool."), "parameters": {"type": "object"}}})
        };
        let user = json!([{"role": "user", "content": "Hi"}]);
        let body = crate::encode_text_request(&MistralChat, &req).unwrap();
        assert_eq!(body, json!({"messages": user, "tools": [wire("a"), wire("b")]}));
        for (choice, sent) in
            [(ToolChoice::Auto, "auto"), (ToolChoice::None, "none"), (ToolChoice::Required, "any")]
        {
            req.tool_choice = Some(choice);
            let body = crate::encode_text_request(&MistralChat, &req).unwrap();
            let expected =
                json!({"messages": user, "tools": [wire("a"), wire("b")], "tool_choice": sent});
            assert_eq!(body, expected);
        }
        req.tool_choice = Some(ToolChoice::Tool("b".to_owned()));
        let body = crate::encode_text_request(&MistralChat, &req).unwrap();
        assert_eq!(body, json!({"messages": user, "tools": [wire("b")], "tool_choice": "any"}));
    }

    #[test]
    fn tool_round_trip_and_images_are_encoded() {
        let req = UnifiedRequest {
            messages: vec![
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![
                        Part::Text { text: "What is this?".to_owned() },
                        Part::Image { media_type: "image/png".to_owned(), data: "iVBO".to_owned() },
                    ]),
                },
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![
                        Part::Text { text: "Let me look.".to_owned() },
                        Part::ToolUse {
                            id: "v6RMMiRlT7ygYkT4uULjtg".to_owned(),
                            name: "a".to_owned(),
                            input: json!({"q": "x"}),
                        },
                    ]),
                },
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![
                        Part::ToolResult {
                            tool_use_id: "v6RMMiRlT7ygYkT4uULjtg".to_owned(),
                            content: "a cat".to_owned(),
                            is_error: true,
                        },
                        Part::Text { text: "Thanks.".to_owned() },
                    ]),
                },
            ],
            tools: vec![tool("a")],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&MistralChat, &req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [{
                    "id": "v6RMMiRlT7ygYkT4uULjtg", "type": "function",
                    "function": {"name": "a", "arguments": "{\"q\":\"x\"}"}}]},
                {"role": "tool", "tool_call_id": "v6RMMiRlT7ygYkT4uULjtg", "content": "a cat"},
                {"role": "user", "content": "Thanks."}
            ])
        );
    }

    #[test]
    fn streamed_tool_call_is_decoded() {
        let chunk = br#"{"choices":[{"index":0,"delta":{"content":"","tool_calls":[{"id":"t",
            "function":{"name":"f","arguments":"{\"a\":1}"}}]},"stop_reason":"tool_calls"}]}"#;
        let event = MistralChat.decode_stream_event(chunk).unwrap();
        let expected = ToolCallDelta {
            index: 0,
            id: Some("t".to_owned()),
            name: Some("f".to_owned()),
            arguments: r#"{"a":1}"#.to_owned(),
        };
        assert_eq!(
            (event.tool_calls, event.stop_reason),
            (vec![expected], Some(StopReason::ToolUse))
        );
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
