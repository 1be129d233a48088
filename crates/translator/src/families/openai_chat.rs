//! The open-weight models Bedrock serves with an OpenAI Chat Completions body on
//! InvokeModel: Qwen3 (`qwen.qwen3-*`), DeepSeek V3.1 and V3.2 (`deepseek.v3*`), Moonshot
//! Kimi (`moonshot.kimi-*`, `moonshotai.kimi-*`), MiniMax (`minimax.minimax-*`), Google
//! Gemma 3 (`google.gemma-3-*`), NVIDIA Nemotron (`nvidia.nemotron-*`) and the Mistral models
//! launched with them (Ministral 3, Magistral, Mistral Large 3, Devstral 2, Voxtral). One
//! family, many ids: [`MODEL_PREFIXES`].
//!
//! The body is `{"messages": [{"role", "content"}], "max_tokens", "temperature", "top_p",
//! "stop"}`; the answer is a chat completion object (`choices[0].message.content`,
//! `finish_reason`, `usage.prompt_tokens` / `completion_tokens`), and a stream is
//! `chat.completion.chunk` objects (`choices[0].delta.content`, the `finish_reason` on the
//! last choice, usage in an OpenAI usage-only chunk or in Bedrock's invocation metrics).
//!
//! Sources: the AWS user guide's API compatibility table lists DeepSeek V3.1 / V3.2, Gemma 3,
//! MiniMax M2 / M2.1 and Kimi K2.5 under both Invoke and Chat Completions, Kimi K2 Thinking
//! and the Qwen3 models under Invoke
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/models-api-compatibility.html>); the
//! DeepSeek parameter page covers V3.1 beside R1
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-deepseek.html>).
//! Recorded InvokeModel use: Qwen3 with `messages` + `max_tokens` read back from
//! `choices[0].message.content` (Legus-Yeung/rag-with-aws-bedrock-and-pinecone `aws-chat.py`,
//! `qwen.qwen3-coder-30b-a3b-v1:0`; promptfoo/promptfoo `src/providers/bedrock/index.ts`,
//! the `QWEN` handler, which also sends `stop`); Kimi K2 Thinking with the Moonshot
//! (OpenAI) chat body, its reasoning inside `content` in `<reasoning>...</reasoning>`
//! (BerriAI/litellm `litellm/llms/bedrock/chat/invoke_transformations/amazon_moonshot_transformation.py`).
//! Nemotron and the newer Mistral models: no AWS parameter page and no recorded InvokeModel
//! answer was found; indirect evidence decided it. They were launched on Bedrock with Gemma 3,
//! Kimi, MiniMax and Qwen3-Next as one batch of open-weight models; pixeltable/pixeltable
//! `pixeltable/functions/bedrock.py` sends their InvokeModel media as OpenAI `image_url` data
//! URIs exactly as for Gemma 3 and Kimi; and callers list them beside those models for
//! structured output (`response_format`). Should one answer with Mistral's `stop_reason`
//! instead of `finish_reason`, the shared decoder reads that too.
//!
//! Decisions:
//! - The system prompt is a first `system` message; the other turns go as they are (the
//!   chat body does not require alternation). A plain `prompt` is one user message.
//! - `max_tokens` is sent as `max_tokens` (what every recorded client of these models
//!   sends; gpt-oss's `max_completion_tokens` is its own family's). `model` and `stream` are
//!   left out: Bedrock fills them from the model id and the operation.
//! - `stop` is sent (native). LiteLLM drops `stop` for Kimi on Bedrock; a model that
//!   refuses it answers Bedrock's 400, which reaches the caller as it is.
//! - `temperature` follows OpenAI's range, 0 to 2; `top_p` 0 to 1. The model's own narrower
//!   range, if any, is Bedrock's to enforce.
//! - `<reasoning>...</reasoning>` spans are removed from the text, whole and streamed
//!   (across chunks too, the shared
//!   [`TaggedSpanFilter`](crate::families::common::TaggedSpanFilter)), as for gpt-oss: Kimi
//!   K2 Thinking sends its reasoning that way. They, and reasoning in a separate field
//!   (`reasoning_content` or `reasoning`, as DeepSeek's, Qwen's, Kimi's and MiniMax's
//!   OpenAI-compatible servers send it), are the answer's reasoning ([`Param::Reasoning`]
//!   is listed; the codec drops it when the request did not ask); the rules are
//!   `chat_completions`'s.
//! - Tools ([`Param::Tools`]): OpenAI's `tools`, `tool_choice` (`"required"` and a named
//!   function included) and tool messages, decoded from `message.tool_calls` and streamed
//!   `delta.tool_calls` (`chat_completions`); `finish_reason` `tool_calls` is a tool-use
//!   stop. Every family of these ids documents function calling on its own
//!   OpenAI-compatible API, and Bedrock's Converse lists tool use for them; a model that
//!   refuses tools on InvokeModel answers Bedrock's 400 [U].
//! - Images ([`Param::ImageInput`]): OpenAI `image_url` parts with a base64 data URI. The
//!   family is one of many models; only some take images on Bedrock (Qwen3-VL, Gemma 3,
//!   Kimi K2.5, Ministral 3, Mistral Large 3, as pixeltable's InvokeModel media shows for
//!   Gemma 3 and Kimi); `params()` is per family, so images are listed and a text-only
//!   model's refusal is Bedrock's 400 (passed through) [U].
//! - `response_format` ([`Param::ResponseFormat`]): sent natively (`json_object`,
//!   `json_schema`): AWS lists Qwen3, DeepSeek V3.1, Gemma 3, MiniMax M2, Mistral,
//!   Kimi K2 and Nemotron models for structured outputs, through `response_format` on
//!   InvokeModel (<https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html>,
//!   "select" models: one outside the list answers Bedrock's 400 [U]).
//! - `"amazon-bedrock-guardrailAction": "INTERVENED"` on a body or chunk makes the stop a
//!   content filter whatever `finish_reason` says; such a body needs no
//!   `choices[0].message` to be complete (the shared guardrail helpers of `common.rs`).
//! - A stream chunk with no choice carrying a `delta`, a `message` or a `finish_reason`, no
//!   `usage`, no invocation metrics and no guardrail intervention is `unrecognized`; a
//!   role-only or empty `delta` is a known empty event. Usage: a chunk's `usage` wins over
//!   the invocation metrics.
//!
//! Not in this family: `openai.gpt-oss-*` (`openai_gpt_oss`, `developer` system role and
//! `max_completion_tokens`); `openai.gpt-5*` and other new OpenAI models, served through
//! the Responses API; the older Mistral models (`mistral_text`, `mistral_chat`).

use crate::families::chat_completions::{ChatCompletionsFamily, MaxTokensKey};
use crate::unified::Param;

/// The OpenAI-chat-shaped family.
#[derive(Debug, Clone, Copy)]
pub struct OpenaiChat;

/// The base model id prefixes of the family, with the models each covers (ids from the
/// AWS model cards and `ListFoundationModels` as recorded by their callers).
pub(crate) const MODEL_PREFIXES: &[&str] = &[
    // qwen.qwen3-32b-v1:0, qwen.qwen3-235b-a22b-2507-v1:0, qwen.qwen3-coder-30b-a3b-v1:0,
    // qwen.qwen3-coder-480b-a35b-v1:0, qwen.qwen3-next-80b-a3b, qwen.qwen3-vl-235b-a22b,
    // qwen.qwen3-coder-next
    "qwen.qwen3-",
    // deepseek.v3-v1:0 (V3.1), deepseek.v3.2; not deepseek.r1-* (`deepseek_r1`).
    "deepseek.v3-",
    "deepseek.v3.",
    // moonshot.kimi-k2-thinking, moonshotai.kimi-k2.5
    "moonshot.kimi-",
    "moonshotai.kimi-",
    // minimax.minimax-m2, minimax.minimax-m2.1
    "minimax.minimax-",
    // google.gemma-3-4b-it, google.gemma-3-12b-it, google.gemma-3-27b-it
    "google.gemma-3-",
    // nvidia.nemotron-nano-9b-v2, nvidia.nemotron-nano-12b-v2, nvidia.nemotron-nano-3-30b,
    // nvidia.nemotron-super-3-120b
    "nvidia.nemotron-",
    // mistral.ministral-3-3b-instruct, -8b-, -14b-; mistral.magistral-small-2509;
    // mistral.mistral-large-3-675b-instruct; mistral.devstral-2-123b;
    // mistral.voxtral-mini-3b-2507, mistral.voxtral-small-24b-2507. Not the older Mistral
    // models (`mistral_text`, `mistral_chat`).
    "mistral.ministral-3-",
    "mistral.magistral-",
    "mistral.mistral-large-3-",
    "mistral.devstral-",
    "mistral.voxtral-",
];

impl ChatCompletionsFamily for OpenaiChat {
    const ID: &'static str = "openai_chat";
    const MODEL_PREFIXES: &'static [&'static str] = MODEL_PREFIXES;
    const SYSTEM_ROLE: &'static str = "system";
    const MAX_TOKENS_KEY: MaxTokensKey = MaxTokensKey::MaxTokens;
    const PARAMS: &'static [Param] = &[
        Param::MaxTokens,
        Param::Temperature,
        Param::TopP,
        Param::Stop,
        Param::Tools,
        Param::ImageInput,
        Param::ResponseFormat,
        Param::Reasoning,
    ];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::families::chat_completions::{REASONING_END, REASONING_START, split_tagged_spans};
    use crate::families::common::{TaggedSpanFilter, conversation, strip_tagged_spans};
    use crate::families::openai_chat::OpenaiChat;
    use crate::families::{StreamTextFilter, TextFamily};
    use crate::unified::{
        Content, Message, Part, ResponseFormat, Role, StopReason, Tool, ToolCallDelta, ToolChoice,
        UnifiedRequest, Usage,
    };

    #[test]
    fn matches_the_listed_models_only() {
        for id in [
            "qwen.qwen3-32b-v1:0",
            "qwen.qwen3-coder-480b-a35b-v1:0",
            "qwen.qwen3-next-80b-a3b",
            "deepseek.v3-v1:0",
            "deepseek.v3.2",
            "moonshot.kimi-k2-thinking",
            "moonshotai.kimi-k2.5",
            "minimax.minimax-m2",
            "minimax.minimax-m2.1",
            "google.gemma-3-27b-it",
            "nvidia.nemotron-nano-9b-v2",
            "mistral.ministral-3-8b-instruct",
            "mistral.magistral-small-2509",
            "mistral.mistral-large-3-675b-instruct",
        ] {
            assert!(OpenaiChat.matches(id), "{id}");
        }
        for id in [
            "deepseek.r1-v1:0",
            "openai.gpt-oss-20b-1:0",
            "writer.palmyra-x5-v1:0",
            "mistral.mistral-large-2411-v1:0",
            "mistral.mistral-7b-instruct-v0:2",
            "qwen.qwen2-5-vl",
        ] {
            assert!(!OpenaiChat.matches(id), "{id}");
        }
    }

    #[test]
    fn system_prompt_is_a_system_message_and_turns_are_not_merged() {
        let req = conversation(&[
            (Role::System, "Be terse."),
            (Role::User, "Hi"),
            (Role::User, "Again"),
            (Role::Assistant, "Hello"),
        ]);
        let body = OpenaiChat.encode_request(&req).unwrap();
        assert_eq!(
            body,
            json!({"messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": "Again"},
                {"role": "assistant", "content": "Hello"}]})
        );
    }

    #[test]
    fn streaming_requests_are_encoded_without_stream() {
        let req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            stream: true,
            max_tokens: Some(5),
            ..UnifiedRequest::default()
        };
        let body = OpenaiChat.encode_request(&req).unwrap();
        assert_eq!(body, json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}));
    }

    #[test]
    fn reasoning_spans_are_removed_whole_and_across_any_cut() {
        let text = "<reasoning>Think é.</reasoning>Paris<reasoning> more</reasoning> is it.";
        let whole = strip_tagged_spans(text, REASONING_START, REASONING_END);
        assert_eq!(whole, "Paris is it.");
        assert_eq!(
            strip_tagged_spans("a </reasoning> b", REASONING_START, REASONING_END),
            "a </reasoning> b"
        );
        assert_eq!(strip_tagged_spans("ok <reasoning>open", REASONING_START, REASONING_END), "ok ");
        let cuts: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for &first in &cuts {
            for &second in cuts.iter().filter(|&&second| second >= first) {
                let mut filter = TaggedSpanFilter::new(REASONING_START, REASONING_END);
                let mut answer = filter.push(&text[..first]);
                answer.push_str(&filter.push(&text[first..second]));
                answer.push_str(&filter.push(&text[second..]));
                answer.push_str(&filter.finish());
                assert_eq!(answer, whole, "cut at {first} and {second}");
            }
        }
    }

    #[test]
    fn answers_and_separate_reasoning() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","reasoning_content":"hmm"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        let answer = OpenaiChat.decode_response(body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("Paris.", StopReason::EndTurn));
        assert_eq!(answer.usage, Usage { input_tokens: Some(7), output_tokens: Some(2) });
        assert!(OpenaiChat.decode_response(br#"{"choices":[]}"#).is_err());
    }

    #[test]
    fn mistral_stop_reason_is_read_when_finish_reason_is_missing() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"stop_reason":"length"}]}"#;
        assert_eq!(OpenaiChat.decode_response(body).unwrap().stop_reason, StopReason::MaxTokens);
        let both = br#"{"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop","stop_reason":"length"}]}"#;
        assert_eq!(OpenaiChat.decode_response(both).unwrap().stop_reason, StopReason::EndTurn);
        let chunk = br#"{"choices":[{"index":0,"delta":{},"stop_reason":"stop"}]}"#;
        let event = OpenaiChat.decode_stream_event(chunk).unwrap();
        assert_eq!((event.stop_reason, event.unrecognized), (Some(StopReason::EndTurn), false));
    }

    #[test]
    fn unknown_chunks_are_unrecognized_and_known_empty_ones_are_not() {
        for chunk in
            [&br#"{"type":"ping"}"#[..], br#"{"choices":[]}"#, br#"{"choices":[{"index":0}]}"#]
        {
            let event = OpenaiChat.decode_stream_event(chunk).unwrap();
            assert!(event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
        for chunk in [
            &br#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#[..],
            br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            br#"{"choices":[],"amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":2}}"#,
        ] {
            let event = OpenaiChat.decode_stream_event(chunk).unwrap();
            assert!(!event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
    }

    #[test]
    fn guardrail_intervention_is_a_content_filter_stop() {
        let chunk = br#"{"choices":[{"index":0,"delta":{"content":"Sorry."}}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = OpenaiChat.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ContentFilter));
        let answer = OpenaiChat
            .decode_response(br#"{"amazon-bedrock-guardrailAction":"INTERVENED"}"#)
            .unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("", StopReason::ContentFilter));
    }

    fn weather_tool() -> Tool {
        Tool {
            name: "get_weather".to_owned(),
            description: Some("Weather of a city.".to_owned()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}),
        }
    }

    #[test]
    fn tools_choices_formats_and_images_are_openai_shaped() {
        let mut req = UnifiedRequest {
            messages: vec![Message {
                role: Role::User,
                content: Content::Parts(vec![
                    Part::Image { media_type: "image/jpeg".to_owned(), data: "/9j/".to_owned() },
                    Part::Text { text: "Where?".to_owned() },
                ]),
            }],
            tools: vec![weather_tool()],
            response_format: Some(ResponseFormat::JsonSchema {
                name: "place".to_owned(),
                schema: json!({"type": "object"}),
                strict: true,
            }),
            ..UnifiedRequest::default()
        };
        let tools = json!([{"type": "function", "function": {"name": "get_weather",
            "description": "Weather of a city.", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
        let body = crate::encode_text_request(&OpenaiChat, &req).unwrap();
        assert_eq!(
            body,
            json!({
                "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                    {"type": "text", "text": "Where?"}]}],
                "tools": tools,
                "response_format": {"type": "json_schema", "json_schema": {"name": "place",
                    "schema": {"type": "object"}, "strict": true}}
            })
        );
        req.response_format = Some(ResponseFormat::JsonObject);
        for (choice, sent) in [
            (ToolChoice::Auto, json!("auto")),
            (ToolChoice::None, json!("none")),
            (ToolChoice::Required, json!("required")),
            (
                ToolChoice::Tool("get_weather".to_owned()),
                json!({"type": "function", "function": {"name": "get_weather"}}),
            ),
        ] {
            req.tool_choice = Some(choice);
            let body = crate::encode_text_request(&OpenaiChat, &req).unwrap();
            assert_eq!((&body["tool_choice"], &body["tools"]), (&sent, &tools));
            assert_eq!(body["response_format"], json!({"type": "json_object"}));
        }
    }

    #[test]
    fn tool_results_come_first_and_text_follows_as_a_user_message() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::User, "Weather in Oslo and Rome?"),
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![
                        Part::ToolUse {
                            id: "call_1".to_owned(),
                            name: "get_weather".to_owned(),
                            input: json!({"city": "Oslo"}),
                        },
                        Part::ToolUse {
                            id: "call_2".to_owned(),
                            name: "get_weather".to_owned(),
                            input: json!({"city": "Rome"}),
                        },
                    ]),
                },
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![
                        Part::Text { text: "Here:".to_owned() },
                        Part::ToolResult {
                            tool_use_id: "call_1".to_owned(),
                            content: "Snow".to_owned(),
                            is_error: false,
                        },
                        Part::ToolResult {
                            tool_use_id: "call_2".to_owned(),
                            content: "Sun".to_owned(),
                            is_error: false,
                        },
                    ]),
                },
            ],
            tools: vec![weather_tool()],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&OpenaiChat, &req).unwrap();
        let call = |id: &str, city: &str| {
            json!({"id": id, "type": "function", "function": {"name": "get_weather",
                "arguments": format!(r#"{{"city":"{city}"}}"#)}})
        };
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Oslo and Rome?"},
                {"role": "assistant", "content": null,
                    "tool_calls": [call("call_1", "Oslo"), call("call_2", "Rome")]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Snow"},
                {"role": "tool", "tool_call_id": "call_2", "content": "Sun"},
                {"role": "user", "content": "Here:"}
            ])
        );
    }

    #[test]
    fn tool_calls_are_decoded_whatever_their_arguments() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[
              {"id":"call_1","type":"function","function":{"name":"a","arguments":"{\"x\":[1,2]}"}},
              {"id":"call_2","type":"function","function":{"name":"b","arguments":""}},
              {"type":"function","function":{"name":"c","arguments":"{not json"}},
              {"id":"call_4","type":"function","function":{"name":"d","arguments":{"y":true}}}]},
            "finish_reason":"tool_calls"}]}"#;
        let answer = OpenaiChat.decode_response(body).unwrap();
        assert_eq!(answer.stop_reason, StopReason::ToolUse);
        assert_eq!(
            serde_json::to_value(&answer.tool_calls).unwrap(),
            json!([
                {"id": "call_1", "name": "a", "input": {"x": [1, 2]}},
                {"id": "call_2", "name": "b", "input": {}},
                {"id": "call_2", "name": "c", "input": "{not json"},
                {"id": "call_4", "name": "d", "input": {"y": true}}
            ])
        );
    }

    #[test]
    fn streamed_tool_calls_are_one_piece_per_call_in_each_event() {
        let first = br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,
            "tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"a","arguments":""}}]}}]}"#;
        let event = OpenaiChat.decode_stream_event(first).unwrap();
        let expected = ToolCallDelta {
            index: 1,
            id: Some("call_1".to_owned()),
            name: Some("a".to_owned()),
            arguments: String::new(),
        };
        assert_eq!((event.tool_calls, event.unrecognized), (vec![expected], false));
        let same_index = br#"{"choices":[{"index":0,"delta":{"tool_calls":[
            {"index":1,"function":{"arguments":"{\"x\""}},{"index":1,"function":{"arguments":":1}"}}]}}]}"#;
        let event = OpenaiChat.decode_stream_event(same_index).unwrap();
        let expected =
            ToolCallDelta { index: 1, arguments: r#"{"x":1}"#.to_owned(), ..Default::default() };
        assert_eq!(event.tool_calls, [expected]);
        // Several calls in one chunk: one piece each, in order of first entry, the entries
        // of one index merged; entries without an index are told apart by their position.
        let two_calls = br#"{"choices":[{"index":0,"delta":{"tool_calls":[
            {"index":2,"id":"call_2","function":{"name":"b","arguments":"{"}},
            {"index":0,"function":{"arguments":"{}"}},{"index":2,"function":{"arguments":"}"}}]}}]}"#;
        let event = OpenaiChat.decode_stream_event(two_calls).unwrap();
        let expected = [
            ToolCallDelta {
                index: 2,
                id: Some("call_2".to_owned()),
                name: Some("b".to_owned()),
                arguments: "{}".to_owned(),
            },
            ToolCallDelta { index: 0, arguments: "{}".to_owned(), ..Default::default() },
        ];
        assert_eq!(event.tool_calls, expected);
        let without_index = br#"{"choices":[{"index":0,"delta":{"tool_calls":[
            {"id":"c","function":{"name":"f","arguments":"{}"}},
            {"id":"d","function":{"name":"g","arguments":"{}"}}]}}]}"#;
        let event = OpenaiChat.decode_stream_event(without_index).unwrap();
        let index_and_id: Vec<_> =
            event.tool_calls.iter().map(|c| (c.index, c.id.clone())).collect();
        assert_eq!(index_and_id, [(0, Some("c".to_owned())), (1, Some("d".to_owned()))]);
        let last = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
        let event = OpenaiChat.decode_stream_event(last).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ToolUse));
    }

    #[test]
    fn reasoning_fields_and_spans_are_reasoning() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant",
            "content":"<reasoning>Capital.</reasoning>Paris.","reasoning_content":"Hmm. "},
            "finish_reason":"stop"}]}"#;
        let answer = OpenaiChat.decode_response(body).unwrap();
        assert_eq!(answer.text, "Paris.");
        assert_eq!(answer.reasoning.as_deref(), Some("Hmm. Capital."));
        let chunk = br#"{"choices":[{"index":0,"delta":{"reasoning":"a","content":"b<reasoning>c</reasoning>d<reasoning>e"}}]}"#;
        let event = OpenaiChat.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.reasoning.as_str()), ("bd<reasoning>e", "ac"));
        let (answer, reasoning) = split_tagged_spans("x<reasoning>r1</reasoning>y<reasoning>r2");
        assert_eq!((answer.as_str(), reasoning.as_str()), ("xy", "r1r2"));
    }
}
