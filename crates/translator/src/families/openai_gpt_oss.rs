//! OpenAI's open-weight models: `openai.gpt-oss-*` model ids (`openai.gpt-oss-120b-1:0`,
//! `openai.gpt-oss-20b-1:0`).
//!
//! The body is OpenAI's Chat Completions request (`messages`, `max_completion_tokens`,
//! `temperature`, `top_p`, `stop`); the answer is a chat completion object
//! (`choices[0].message.content`, `finish_reason`, `usage`), and a stream is chat
//! completion chunks (`choices[0].delta.content`).
//!
//! Decisions:
//! - The system prompt is sent as a first `developer` message, the role the AWS
//!   documentation maps to Converse's system prompt; the other messages go as they are.
//!   A plain `prompt` is one user message.
//! - `max_tokens` maps to `max_completion_tokens`. `model` and `stream` are left out:
//!   Bedrock fills them from the model id and the operation.
//! - The model's reasoning comes inside the content, wrapped in `<reasoning>...</reasoning>`
//!   before the answer (AWS documentation, `model-parameters-openai`). Those spans are
//!   removed from the text, as is everything after a `<reasoning>` that is never closed;
//!   a `</reasoning>` outside a span is text. Their insides, and reasoning sent in a
//!   separate field (`reasoning_content`, `reasoning`), are the answer's reasoning
//!   ([`Param::Reasoning`]; the codec drops it when the request did not ask).
//! - Streamed, the same rule holds across chunks: the family's
//!   [`StreamTextFilter`](crate::families::StreamTextFilter) keeps the state between chunks, so a span may open in one chunk and close in a later one,
//!   and a tag may itself be split between chunks (held back until it can be told from
//!   text). The chat-completions stream of bedrock-runtime was seen wrapping each chunk's
//!   piece of reasoning in its own tags (ren8k/aws-gpt-oss-samples,
//!   `src/bedrock-completion/completion_stream.py` and README, 2025-08): a span opened and
//!   closed within one chunk is moved to the event's `reasoning`. No
//!   InvokeModelWithResponseStream recording with reasoning was found, so a span over
//!   several chunks is accepted as well: it stays in the event's `text` (the raw rest of
//!   `delta.content`), and the filter removes it from the answer text; that reasoning is
//!   not returned (the filter yields text only).
//! - Tools ([`Param::Tools`]): the AWS page points to OpenAI's Create chat completion for
//!   the body, so OpenAI's `tools`, `tool_choice` and tool messages are sent, and
//!   `message.tool_calls` / streamed `delta.tool_calls` decoded (`chat_completions`);
//!   `finish_reason` `tool_calls` is a tool-use stop. An assistant message that only calls
//!   tools has `content: null`, as OpenAI's.
//! - `response_format` ([`Param::ResponseFormat`]): sent natively; AWS lists the OpenAI
//!   open-weight models for structured outputs through `response_format` on InvokeModel
//!   (<https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html>).
//! - No images: the AWS page says these models take text input only, so
//!   [`Param::ImageInput`] is not listed (the codec refuses image parts).
//! - `temperature` follows OpenAI's range, 0 to 2.
//! - `finish_reason`: `stop` ends the turn (the model finished or hit a stop sequence;
//!   the two are not told apart), `length` is a length stop, `content_filter` a content
//!   filter, `tool_calls` a tool-use stop, anything else `Other`.
//! - `"amazon-bedrock-guardrailAction": "INTERVENED"` on a body or chunk makes the stop a
//!   content filter whatever `finish_reason` says; such a body needs no
//!   `choices[0].message`, and such a chunk no `finish_reason`, to be complete (the key
//!   is Bedrock's, added to every family's body and chunks: wire reference §3.4 and §7;
//!   the shared guardrail helpers of `common.rs`).
//!
//! Streaming: Bedrock streams these models through InvokeModelWithResponseStream; the
//! launch refusal ("The model is unsupported for streaming.", langchain-aws#573) was
//! lifted (langchain-aws#588 and #679, LiteLLM#15649, October 2025). The chunks are
//! OpenAI `chat.completion.chunk` objects; the recorded last one has an empty `delta`,
//! the `finish_reason` and `amazon-bedrock-invocationMetrics` (langchain-ai/langchain-aws,
//! `libs/aws/tests/unit_tests/llms/test_bedrock.py`, `MOCK_STREAMING_RESPONSE_OPENAI`).
//! Usage is read from a chunk's `usage` (OpenAI's usage-only chunk, `choices: []`) and
//! from the invocation metrics, `usage` winning. A chunk with no choice carrying a
//! `delta`, a `message` or a `finish_reason`, no `usage`, no invocation metrics and no
//! guardrail intervention is `unrecognized`; a role-only or empty `delta` is a known
//! empty event.

use crate::families::chat_completions::{ChatCompletionsFamily, MaxTokensKey};
use crate::unified::Param;

/// The OpenAI gpt-oss family.
#[derive(Debug, Clone, Copy)]
pub struct OpenaiGptOss;

impl ChatCompletionsFamily for OpenaiGptOss {
    const ID: &'static str = "openai_gpt_oss";
    const MODEL_PREFIXES: &'static [&'static str] = &["openai.gpt-oss-"];
    const SYSTEM_ROLE: &'static str = "developer";
    const MAX_TOKENS_KEY: MaxTokensKey = MaxTokensKey::MaxCompletionTokens;
    const PARAMS: &'static [Param] = &[
        Param::MaxTokens,
        Param::Temperature,
        Param::TopP,
        Param::Stop,
        Param::Tools,
        Param::ResponseFormat,
        Param::Reasoning,
    ];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::families::chat_completions::{REASONING_END, REASONING_START};
    use crate::families::common::{TaggedSpanFilter, strip_tagged_spans};
    use crate::families::openai_gpt_oss::OpenaiGptOss;
    use crate::families::{StreamTextFilter, TextFamily};

    fn strip_reasoning(text: &str) -> String {
        strip_tagged_spans(text, REASONING_START, REASONING_END)
    }

    fn reasoning_filter() -> TaggedSpanFilter {
        TaggedSpanFilter::new(REASONING_START, REASONING_END)
    }
    use crate::unified::{
        Content, Message, Part, Role, StopReason, Tool, ToolChoice, UnifiedRequest, Usage,
    };

    #[test]
    fn reasoning_spans_are_removed() {
        assert_eq!(strip_reasoning("<reasoning>think</reasoning>Paris."), "Paris.");
        assert_eq!(strip_reasoning("a<reasoning>x</reasoning>b<reasoning>y</reasoning>c"), "abc");
        assert_eq!(strip_reasoning("answer <reasoning>never closed"), "answer ");
        assert_eq!(strip_reasoning("plain </reasoning> text"), "plain </reasoning> text");
        assert_eq!(strip_reasoning("a <reason b"), "a <reason b");
        assert_eq!(strip_reasoning("ends with <"), "ends with <");
    }

    /// Every way of cutting the text into two or three pieces gives the same answer.
    #[test]
    fn reasoning_is_removed_across_any_chunk_boundaries() {
        let text = "<reasoning>Think é.</reasoning>Paris<reasoning> more</reasoning> is it.";
        let whole = strip_reasoning(text);
        assert_eq!(whole, "Paris is it.");
        let cuts: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for &first in &cuts {
            for &second in cuts.iter().filter(|&&second| second >= first) {
                let mut filter = reasoning_filter();
                let mut answer = filter.push(&text[..first]);
                answer.push_str(&filter.push(&text[first..second]));
                answer.push_str(&filter.push(&text[second..]));
                answer.push_str(&filter.finish());
                assert_eq!(answer, whole, "cut at {first} and {second}");
            }
        }
    }

    #[test]
    fn the_filter_forwards_text_as_soon_as_it_cannot_be_a_tag() {
        let mut filter = reasoning_filter();
        assert_eq!(filter.push("The capital <"), "The capital ");
        assert_eq!(filter.push("b>"), "<b>");
        assert_eq!(filter.push("<reas"), "");
        assert_eq!(filter.push("oning>hidden</reas"), "");
        assert_eq!(filter.push("oning> Paris"), " Paris");
        assert_eq!(filter.finish(), "");
    }

    /// The server's decoder runs the family's filter: a span over several chunks and a
    /// split tag never reach the caller, and nothing is held back at the end.
    #[test]
    fn the_stream_decoder_forwards_only_the_answer() {
        let req = UnifiedRequest { prompt: Some("Hi".to_owned()), ..UnifiedRequest::default() };
        let mut decoder = crate::TextStreamDecoder::new(&OpenaiGptOss, &req);
        let chunk = |content: &str| {
            json!({"choices": [{"delta": {"content": content}, "finish_reason": null, "index": 0}]})
                .to_string()
        };
        let mut forwarded = Vec::new();
        for content in ["<reasoning>The user", " asks.</reason", "ing>Paris", " is it.<"] {
            forwarded.push(decoder.push(chunk(content).as_bytes()).unwrap().text);
        }
        let last = br#"{"choices":[{"delta":{},"finish_reason":"stop","index":0}]}"#;
        assert_eq!(decoder.push(last).unwrap().text, "");
        assert_eq!(forwarded, ["", "", "Paris", " is it."]);
        let finished = decoder.finish().unwrap();
        assert_eq!((finished.text.as_str(), finished.stop_reason), ("<", StopReason::EndTurn));
    }

    #[test]
    fn system_prompt_is_a_developer_message() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "Be terse."),
                Message::text(Role::User, "Hi"),
            ],
            ..UnifiedRequest::default()
        };
        let body = OpenaiGptOss.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "Hi"}])
        );
    }

    #[test]
    fn streaming_requests_are_encoded() {
        let req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            stream: true,
            ..UnifiedRequest::default()
        };
        let body = OpenaiGptOss.encode_request(&req).unwrap();
        assert_eq!(body, json!({"messages": [{"role": "user", "content": "Hi"}]}));
    }

    #[test]
    fn usage_only_chunk_has_no_text() {
        let chunk = br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3}}"#;
        let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(10), output_tokens: Some(3) });
        assert_eq!((event.text.as_str(), event.stop_reason), ("", None));
        assert!(!event.unrecognized);
    }

    #[test]
    fn separate_reasoning_field_is_not_text() {
        let chunk = br#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}"#;
        let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.reasoning.as_str()), ("", "hmm"));
        assert!(!event.unrecognized);
    }

    #[test]
    fn unknown_chunks_are_unrecognized_and_known_empty_ones_are_not() {
        for chunk in
            [&br#"{"type":"ping"}"#[..], br#"{"choices":[]}"#, br#"{"choices":[{"index":0}]}"#]
        {
            let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
            assert!(event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
        for chunk in [
            &br#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#[..],
            br#"{"choices":[{"index":0,"delta":{}}]}"#,
            br#"{"choices":[],"amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":2}}"#,
        ] {
            let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
            assert!(!event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
    }

    #[test]
    fn guardrail_intervention_is_a_content_filter_stop() {
        let chunk = br#"{"choices":[{"index":0,"delta":{"content":"Sorry."},"finish_reason":"stop"}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ContentFilter));
        let body = br#"{"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let answer = OpenaiGptOss.decode_response(body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("", StopReason::ContentFilter));
        let body = br#"{"choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}],"amazon-bedrock-guardrailAction":"NONE"}"#;
        assert_eq!(OpenaiGptOss.decode_response(body).unwrap().stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn tool_round_trip_is_encoded_with_the_developer_role() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "Be terse."),
                Message::text(Role::User, "Weather?"),
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![Part::ToolUse {
                        id: "call_1".to_owned(),
                        name: "get_weather".to_owned(),
                        input: json!({}),
                    }]),
                },
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![Part::ToolResult {
                        tool_use_id: "call_1".to_owned(),
                        content: "Rain".to_owned(),
                        is_error: false,
                    }]),
                },
            ],
            tools: vec![Tool {
                name: "get_weather".to_owned(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
            }],
            tool_choice: Some(ToolChoice::Required),
            max_tokens: Some(100),
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&OpenaiGptOss, &req).unwrap();
        assert_eq!(
            body,
            json!({
                "messages": [
                    {"role": "developer", "content": "Be terse."},
                    {"role": "user", "content": "Weather?"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                        "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "Rain"}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "parameters": {"type": "object", "properties": {}}}}],
                "tool_choice": "required",
                "max_completion_tokens": 100
            })
        );
    }

    #[test]
    fn images_are_refused_and_reasoning_is_returned() {
        let req = UnifiedRequest {
            messages: vec![Message {
                role: Role::User,
                content: Content::Parts(vec![Part::Image {
                    media_type: "image/png".to_owned(),
                    data: "iVBO".to_owned(),
                }]),
            }],
            ..UnifiedRequest::default()
        };
        let err = crate::encode_text_request(&OpenaiGptOss, &req).unwrap_err();
        assert!(matches!(err, crate::TranslateError::Unsupported { .. }), "{err:?}");
        let body = br#"{"choices":[{"index":0,"message":{"content":"<reasoning>Think.</reasoning>Paris."},"finish_reason":"stop"}]}"#;
        let answer = OpenaiGptOss.decode_response(body).unwrap();
        assert_eq!((answer.text.as_str(), answer.reasoning.as_deref()), ("Paris.", Some("Think.")));
        let chunk =
            br#"{"choices":[{"index":0,"delta":{"content":"<reasoning>Think.</reasoning>"}}]}"#;
        let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.reasoning.as_str()), ("", "Think."));
    }
}
