//! The open-weight models Bedrock serves with an OpenAI Chat Completions body on InvokeModel:
//! Qwen3, DeepSeek V3.1 / V3.2, Moonshot Kimi, MiniMax, Gemma 3, and (on indirect evidence, see
//! the translator's `openai_chat`) NVIDIA Nemotron and the newer Mistral models (AWS API compatibility
//! table, <https://docs.aws.amazon.com/bedrock/latest/userguide/models-api-compatibility.html>
//! [D]; recorded InvokeModel bodies of `messages` + `max_tokens` read back from
//! `choices[0].message.content`: Legus-Yeung/rag-with-aws-bedrock-and-pinecone `aws-chat.py`,
//! promptfoo/promptfoo `src/providers/bedrock/index.ts` [R]).
//!
//! The request is checked as an OpenAI Create-chat-completion body: `messages` required, the
//! sampling fields in OpenAI's ranges, `max_tokens` or `max_completion_tokens`, `stop` a string
//! or at most four strings, no key outside the OpenAI fields. The answer is a chat completion
//! object with `usage`; a stream is `chat.completion.chunk`s: a role chunk, one chunk per token,
//! then an empty `delta` with the `finish_reason` and the invocation metrics (the gpt-oss
//! chunk shape recorded in langchain-ai/langchain-aws `test_bedrock.py`,
//! `MOCK_STREAMING_RESPONSE_OPENAI` [R]). Kimi K2 Thinking puts its reasoning in `content`
//! inside `<reasoning>...</reasoning>` before the answer (BerriAI/litellm
//! `amazon_moonshot_transformation.py` [R]); the simulator does so, whole and as one leading
//! stream chunk. The answer's `model` is the model id, so the registered value hands each call
//! to the model's own value through
//! [`Family::model_family`](crate::families::Family::model_family). The wire shape is
//! [`chat_completions`](crate::families::chat_completions), shared with `openai_gpt_oss`.

use crate::families::chat_completions::{
    ChatCompletionsApi, ChatCompletionsModel, ChunkLayout, find_model,
};
use crate::families::common::PerModelFamily;

/// The family as registered: it knows the models and hands every call to the model's own
/// [`ChatCompletionsModel`] value.
pub(crate) struct OpenaiChat;

/// The family's limits and keys.
static API: ChatCompletionsApi = ChatCompletionsApi {
    family_id: "openai_chat",
    max_tokens_keys: ["max_tokens", "max_completion_tokens"],
    default_max_tokens: DEFAULT_MAX_TOKENS,
    max_tokens_limit: 32_768,
    // The most stop sequences OpenAI's API takes.
    max_stop_sequences: 4,
    roles: &["system", "user", "assistant", "tool"],
    hand_checked_keys: &[
        "messages",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "response_format",
    ],
    boolean_keys: &["stream"],
    message_keys: &["role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content"],
    top_logprobs: false,
    chunk_layout: ChunkLayout::OpenAi,
};

/// `max_tokens` when the request gives none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The reasoning of the models that answer with it inline, in `<reasoning>` tags; streamed as
/// one chunk.
const REASONING: &str = "The user wants a direct answer.";

const fn plain(base_model_id: &'static str) -> ChatCompletionsModel {
    ChatCompletionsModel { api: &API, base_model_id, reasoning_pieces: &[], accepts_images: false }
}

/// A model that reads `image_url` parts as well as text [U: which of these Bedrock serves
/// with image input on InvokeModel; these are the vision models of their makers].
const fn vision(base_model_id: &'static str) -> ChatCompletionsModel {
    ChatCompletionsModel { api: &API, base_model_id, reasoning_pieces: &[], accepts_images: true }
}

static MODELS: &[ChatCompletionsModel] = &[
    plain("qwen.qwen3-32b-v1:0"),
    plain("qwen.qwen3-235b-a22b-2507-v1:0"),
    plain("qwen.qwen3-coder-30b-a3b-v1:0"),
    plain("qwen.qwen3-coder-480b-a35b-v1:0"),
    plain("qwen.qwen3-next-80b-a3b"),
    vision("qwen.qwen3-vl-235b-a22b"),
    plain("qwen.qwen3-coder-next"),
    plain("deepseek.v3-v1:0"),
    plain("deepseek.v3.2"),
    ChatCompletionsModel {
        api: &API,
        base_model_id: "moonshot.kimi-k2-thinking",
        reasoning_pieces: &[REASONING],
        accepts_images: false,
    },
    vision("moonshotai.kimi-k2.5"),
    plain("minimax.minimax-m2"),
    plain("minimax.minimax-m2.1"),
    vision("google.gemma-3-4b-it"),
    vision("google.gemma-3-12b-it"),
    vision("google.gemma-3-27b-it"),
    plain("nvidia.nemotron-nano-9b-v2"),
    vision("nvidia.nemotron-nano-12b-v2"),
    plain("nvidia.nemotron-nano-3-30b"),
    plain("nvidia.nemotron-super-3-120b"),
    vision("mistral.ministral-3-3b-instruct"),
    vision("mistral.ministral-3-8b-instruct"),
    vision("mistral.ministral-3-14b-instruct"),
    plain("mistral.magistral-small-2509"),
    vision("mistral.mistral-large-3-675b-instruct"),
    plain("mistral.devstral-2-123b"),
    plain("mistral.voxtral-mini-3b-2507"),
    plain("mistral.voxtral-small-24b-2507"),
];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: ChatCompletionsModel = plain("openai-chat");

impl PerModelFamily for OpenaiChat {
    type Model = ChatCompletionsModel;

    fn model(&self, base_model_id: &str) -> Option<&'static ChatCompletionsModel> {
        find_model(MODELS, base_model_id)
    }

    fn unresolved_model(&self) -> &'static ChatCompletionsModel {
        &UNRESOLVED_MODEL
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use serde_json::Value;

    use super::*;
    use crate::families::chat_completions::completion_id;
    use crate::families::{Family, InvocationMetrics};
    use crate::generate::GenerationRequest;
    use crate::generate::generate;

    const QWEN: &str = "qwen.qwen3-32b-v1:0";
    const KIMI: &str = "moonshot.kimi-k2-thinking";

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        let model = find_model(MODELS, model_id).unwrap();
        model.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    fn chunk_values(model_id: &str, completion: &crate::generate::Completion) -> Vec<Value> {
        let model = find_model(MODELS, model_id).unwrap();
        (0..model.n_stream_chunks(completion))
            .map(|idx| serde_json::from_slice(&model.stream_chunk(completion, idx, None)).unwrap())
            .collect()
    }

    fn weather_tools() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}}}])
    }

    #[test]
    fn a_request_with_tools_is_answered_with_a_call() {
        let model = find_model(MODELS, QWEN).unwrap();
        let body = json!({"messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": weather_tools(), "tool_choice": "required"});
        let completion = generate(&parse(QWEN, body).unwrap());
        let call = completion.tool_call.clone().unwrap();
        let id = call.id("call_", 24);
        let arguments = call.input_json();
        let n_pieces = completion.tokens.len();
        let mut response: Value =
            serde_json::from_slice(&model.response_body(&completion)).unwrap();
        response["created"] = json!(0);
        assert_eq!(
            response,
            json!({"id": completion_id(&completion), "object": "chat.completion", "created": 0,
                "model": QWEN, "choices": [{"index": 0, "message": {"role": "assistant",
                    "content": null, "tool_calls": [{"id": id, "type": "function", "function":
                        {"name": "get_weather", "arguments": arguments}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": n_pieces,
                    "total_tokens": 3 + n_pieces}})
        );

        let chunks = chunk_values(QWEN, &completion);
        assert_eq!(chunks.len(), n_pieces + 3);
        assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]})
        );
        let streamed: String = chunks[2..2 + n_pieces]
            .iter()
            .map(|chunk| {
                let call = &chunk["choices"][0]["delta"]["tool_calls"][0];
                assert_eq!(call.as_object().unwrap().len(), 2, "{call}");
                assert_eq!(call["index"], 0);
                call["function"]["arguments"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(streamed, arguments);
        let last = &chunks[n_pieces + 2]["choices"][0];
        assert_eq!((&last["delta"], &last["finish_reason"]), (&json!({}), &json!("tool_calls")));
        assert_eq!(model.n_stream_tokens_sent(&completion, 3), 1);

        // The tool's answer is answered with text, seeded by it.
        let round_trip = json!({"messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": id, "content": "sunny"}],
            "tools": weather_tools()});
        let request = parse(QWEN, round_trip).unwrap();
        assert_eq!(request.prompt, "weather in Paris?\nsunny");
        let answer = generate(&request);
        assert_eq!(answer.tool_call, None);
        let response: Value = serde_json::from_slice(&model.response_body(&answer)).unwrap();
        assert_eq!(
            response["choices"][0]["message"],
            json!({"role": "assistant", "content": answer.text()})
        );
        assert_eq!(response["choices"][0]["finish_reason"], "stop");

        // Kimi's call keeps its reasoning as content; "none" answers in text.
        let body =
            json!({"messages": [{"role": "user", "content": "x"}], "tools": weather_tools()});
        let kimi = find_model(MODELS, KIMI).unwrap();
        let completion = generate(&parse(KIMI, body.clone()).unwrap());
        let response: Value = serde_json::from_slice(&kimi.response_body(&completion)).unwrap();
        assert_eq!(
            response["choices"][0]["message"]["content"],
            format!("<reasoning>{REASONING}</reasoning>")
        );
        assert_eq!(
            chunk_values(KIMI, &completion)[2]["choices"][0]["delta"]["tool_calls"][0]["id"],
            completion.tool_call.unwrap().id("call_", 24)
        );
        let mut none = body;
        none["tool_choice"] = json!("none");
        assert_eq!(generate(&parse(QWEN, none).unwrap()).tool_call, None);
    }

    #[test]
    fn tool_checks() {
        let user = json!([{"role": "user", "content": "x"}]);
        let with = |tools: Value, choice: Value| {
            parse(QWEN, json!({"messages": user, "tools": tools, "tool_choice": choice}))
        };
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        assert_eq!(
            with(json!([{"type": "function", "function": {"name": "get weather"}}]), json!("auto"))
                .unwrap_err(),
            detail(
                "#/tools/0/function/name: string [get weather] does not match pattern ^[a-zA-Z0-9_-]{1,64}$"
            )
        );
        assert_eq!(
            with(json!([{"type": "web_search"}]), json!("auto")).unwrap_err(),
            detail("#/tools/0: required key [function] not found")
        );
        assert_eq!(
            with(weather_tools(), json!("sometimes")).unwrap_err(),
            detail("#/tool_choice: sometimes is not a valid enum value")
        );
        assert_eq!(
            with(weather_tools(), json!({"type": "function", "function": {"name": "other"}}))
                .unwrap_err(),
            "Invalid tool_choice: the function other is not one of the tools."
        );
        let orphan = json!({"messages": [{"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"}]});
        assert_eq!(
            parse(QWEN, orphan).unwrap_err(),
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding \
             message with 'tool_calls'."
        );
        let unanswered = json!({"messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "user", "content": "y"}]});
        assert_eq!(
            parse(QWEN, unanswered).unwrap_err(),
            "An assistant message with 'tool_calls' must be followed by tool messages responding \
             to each 'tool_call_id'. The following tool_call_ids did not have response \
             messages: call_1"
        );
    }

    #[test]
    fn images_are_read_by_vision_models_only() {
        let body = |url: &str| {
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "what?"},
                {"type": "image_url", "image_url": {"url": url}}]}]})
        };
        let png = format!("data:image/png;base64,{}", "QUJD".repeat(500));
        let request = parse("google.gemma-3-27b-it", body(&png)).unwrap();
        assert_eq!(request.n_media_input_tokens, 2);
        assert!(request.prompt.starts_with("what?\nimage-"));
        assert_eq!(generate(&request).n_input_tokens, 4);
        assert_eq!(
            parse("google.gemma-3-27b-it", body("https://example.com/cat.png")).unwrap_err(),
            "Invalid image_url: only base64 data URLs of image/png, image/jpeg, image/gif or \
             image/webp images are supported."
        );
        assert_eq!(
            parse(QWEN, body(&png)).unwrap_err(),
            "The model qwen.qwen3-32b-v1:0 does not support image input."
        );
    }

    #[test]
    fn knows_every_listed_model_and_no_other() {
        for model in MODELS {
            assert!(OpenaiChat.matches(model.base_model_id), "{}", model.base_model_id);
            assert!(!OpenaiChat.needs_inference_profile(model.base_model_id));
        }
        for id in ["openai.gpt-oss-20b-1:0", "deepseek.r1-v1:0", "writer.palmyra-x5-v1:0"] {
            assert!(!OpenaiChat.matches(id), "{id}");
        }
        assert!(OpenaiChat.streams());
    }

    #[test]
    fn reads_the_request() {
        let body = json!({"messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}],
            "max_tokens": 150, "temperature": 0.7, "top_p": 0.9, "stop": "END"});
        let request = parse(QWEN, body).unwrap();
        assert_eq!(request.prompt, "Be terse.\nWeather?");
        assert_eq!(request.max_tokens, 150);
        assert_eq!(request.stop_sequences, vec!["END".to_owned()]);
        let request = parse(
            QWEN,
            json!({"messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 9, "stop": ["a", "b"], "stream": true}),
        )
        .unwrap();
        assert_eq!((request.max_tokens, request.stop_sequences.len()), (9, 2));
        let request = parse(QWEN, json!({"messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(request.unwrap().max_tokens, DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn rejects_bad_requests() {
        let user = json!([{"role": "user", "content": "x"}]);
        assert!(parse(QWEN, json!({"messages": user, "model": "google.gemma-3-4b-it"})).is_err());
        assert!(
            parse(QWEN, json!({"messages": user, "stream": "no"})).unwrap_err().contains("Boolean")
        );
        assert!(parse(QWEN, json!({"messages": user, "stop": ["a", "b", "c", "d", "e"]})).is_err());
        assert!(parse(QWEN, json!({"messages": user, "temperature": 2.5})).is_err());
        assert!(parse(QWEN, json!({"messages": user, "max_tokens": 0})).is_err());
        assert!(parse(QWEN, json!({"messages": [{"role": "developer", "content": "x"}]})).is_err());
        assert!(
            parse(QWEN, json!({"messages": user, "top_k": 5})).unwrap_err().contains("[top_k]")
        );
        assert!(parse(QWEN, json!({"messages": []})).is_err());
        assert!(parse(QWEN, json!({"prompt": "x"})).is_err());
    }

    #[test]
    fn answer_shape() {
        let model = find_model(MODELS, QWEN).unwrap();
        let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 3});
        let completion = generate(&parse(QWEN, body).unwrap());
        let response: Value = serde_json::from_slice(&model.response_body(&completion)).unwrap();
        assert_eq!(response["object"], "chat.completion");
        assert_eq!(response["model"], QWEN);
        assert!(response["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let choice = &response["choices"][0];
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(choice["message"]["content"], completion.text());
        assert_eq!(
            response["usage"],
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        );
        let kimi = find_model(MODELS, KIMI).unwrap();
        let response: Value = serde_json::from_slice(&kimi.response_body(&completion)).unwrap();
        assert_eq!(
            response["choices"][0]["message"]["content"],
            format!("<reasoning>{REASONING}</reasoning>{}", completion.text())
        );
    }

    #[test]
    fn stream_chunks() {
        let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 2});
        let completion = generate(&parse(QWEN, body).unwrap());
        let metrics = InvocationMetrics {
            input_token_count: 2,
            output_token_count: 2,
            invocation_latency: 9,
            first_byte_latency: 3,
        };
        for (id, n_leading) in [(QWEN, 1), (KIMI, 2)] {
            let model = find_model(MODELS, id).unwrap();
            let n_chunks = model.n_stream_chunks(&completion);
            assert_eq!(n_chunks, n_leading + 2 + 1);
            let chunks: Vec<Value> = (0..n_chunks)
                .map(|idx| {
                    let metrics = (idx + 1 == n_chunks).then_some(metrics);
                    serde_json::from_slice(&model.stream_chunk(&completion, idx, metrics)).unwrap()
                })
                .collect();
            for chunk in &chunks {
                assert_eq!(chunk["object"], "chat.completion.chunk");
                assert_eq!(chunk["model"], id);
            }
            assert_eq!(
                chunks[0]["choices"],
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])
            );
            let streamed: String = chunks
                .iter()
                .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
                .collect();
            assert_eq!(streamed, model.content(&completion.text()));
            let last = chunks.last().unwrap();
            assert_eq!(
                last["choices"],
                json!([{"index": 0, "delta": {}, "finish_reason": "length"}])
            );
            assert_eq!(last["amazon-bedrock-invocationMetrics"]["outputTokenCount"], 2);
            assert!(
                chunks[..n_chunks - 1]
                    .iter()
                    .all(|chunk| chunk.get("amazon-bedrock-invocationMetrics").is_none())
            );
            assert_eq!(model.n_stream_tokens_sent(&completion, n_leading), 0);
            assert_eq!(model.n_stream_tokens_sent(&completion, n_chunks), 2);
        }
    }
}
