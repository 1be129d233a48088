//! OpenAI gpt-oss: the OpenAI Create-chat-completion body and chat completion object that
//! Bedrock documents for InvokeModel [D]; on InvokeModel the model's reasoning, in
//! `<reasoning>` tags, precedes the answer text [D].
//!
//! InvokeModelWithResponseStream is served: the launch refusal (`The model is unsupported for
//! streaming.`, langchain-aws#573) was lifted in 2025 (langchain-aws#588 and #679, LiteLLM#15649).
//! The chunks are OpenAI `chat.completion.chunk` objects with the keys in the recorded order
//! (`choices` of `delta`, `finish_reason`, `index`; `created`, `id`, `model`, `object`,
//! `service_tier`), the last one an empty `delta` with the `finish_reason` and the invocation
//! metrics, and no usage chunk [R: langchain-ai/langchain-aws,
//! `libs/aws/tests/unit_tests/llms/test_bedrock.py`, `MOCK_STREAMING_RESPONSE_OPENAI`]. Before
//! the answer comes a role chunk and the reasoning, one chunk per word, each wrapped in its own
//! tags as the chat-completions stream of bedrock-runtime was seen doing [R: ren8k/
//! aws-gpt-oss-samples, `src/bedrock-completion/completion_stream.py`]. The request's `stream`
//! key may be `true` or `false` whichever the operation (Bedrock fills and checks it; the
//! simulator does not know the operation here).
//!
//! Models: `openai.gpt-oss-120b-1:0`, `openai.gpt-oss-20b-1:0`. The answer's `model` is the
//! model id, so the registered value hands each call to the model's own value through
//! [`Family::model_family`](crate::families::Family::model_family). The wire shape is
//! [`chat_completions`](crate::families::chat_completions), shared with `openai_chat`.

use crate::families::chat_completions::{
    ChatCompletionsApi, ChatCompletionsModel, ChunkLayout, find_model,
};
use crate::families::common::PerModelFamily;

/// The gpt-oss family as registered: it knows the models and hands every call to the model's
/// own [`ChatCompletionsModel`] value.
pub(crate) struct OpenaiGptOss;

/// The family's limits and keys.
static API: ChatCompletionsApi = ChatCompletionsApi {
    family_id: "openai_gpt_oss",
    max_tokens_keys: ["max_completion_tokens", "max_tokens"],
    // `max_completion_tokens` when the request gives none.
    default_max_tokens: 4096,
    // The context window.
    max_tokens_limit: 128_000,
    // The most stop sequences OpenAI's API takes.
    max_stop_sequences: 4,
    roles: &["system", "developer", "user", "assistant", "tool"],
    hand_checked_keys: &[
        "messages",
        "stop",
        "stream",
        "tools",
        "tool_choice",
        "response_format",
        "logprobs",
        "parallel_tool_calls",
    ],
    boolean_keys: &["stream", "logprobs", "parallel_tool_calls"],
    message_keys: &["role", "content", "name", "tool_calls", "tool_call_id", "reasoning"],
    top_logprobs: true,
    // The `service_tier` of every recorded chunk.
    chunk_layout: ChunkLayout::Recorded { service_tier: "auto" },
};

/// The reasoning shown before every answer, as it is streamed, one chunk per word.
const REASONING_PIECES: &[&str] = &["The", " user", " wants", " a", " direct", " answer."];

const fn gpt_oss(base_model_id: &'static str) -> ChatCompletionsModel {
    ChatCompletionsModel {
        api: &API,
        base_model_id,
        reasoning_pieces: REASONING_PIECES,
        // gpt-oss reads text only.
        accepts_images: false,
    }
}

static MODELS: &[ChatCompletionsModel] =
    &[gpt_oss("openai.gpt-oss-120b-1:0"), gpt_oss("openai.gpt-oss-20b-1:0")];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: ChatCompletionsModel = gpt_oss("openai.gpt-oss");

impl PerModelFamily for OpenaiGptOss {
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

    /// The reasoning shown before every answer.
    const REASONING: &str = "The user wants a direct answer.";
    const N_LEADING_CHUNKS: usize = 1 + REASONING_PIECES.len();
    use crate::generate::generate;

    const SMALL: &str = "openai.gpt-oss-20b-1:0";

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        let model = find_model(MODELS, SMALL).unwrap();
        model.parse_request(SMALL, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request() {
        let body = json!({"model": SMALL, "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}],
            "max_completion_tokens": 150, "temperature": 0.7, "top_p": 0.9, "stop": "END",
            "stream": false});
        let request = parse(body).unwrap();
        assert_eq!(request.prompt, "Be terse.\nWeather?");
        assert_eq!(request.max_tokens, 150);
        assert_eq!(request.stop_sequences, vec!["END".to_owned()]);
        let request = parse(json!({"messages": [{"role": "user", "content": "x"}],
            "max_tokens": 9, "stop": ["a", "b"]}))
        .unwrap();
        assert_eq!((request.max_tokens, request.stop_sequences.len()), (9, 2));
    }

    #[test]
    fn rejects_bad_requests() {
        let user = json!([{"role": "user", "content": "x"}]);
        // `stream` is Bedrock's to fill; either value is taken.
        assert!(parse(json!({"messages": user, "stream": true})).is_ok());
        assert!(parse(json!({"messages": user, "model": "openai.gpt-oss-120b-1:0"})).is_err());
        assert!(parse(json!({"messages": user, "stream": "no"})).unwrap_err().contains("Boolean"));
        assert!(parse(json!({"messages": user, "stop": ["a", "b", "c", "d", "e"]})).is_err());
        assert!(parse(json!({"messages": user, "temperature": 2.5})).is_err());
        assert!(parse(json!({"messages": [{"role": "robot", "content": "x"}]})).is_err());
        assert!(parse(json!({"messages": user, "top_k": 5})).unwrap_err().contains("[top_k]"));
        assert!(parse(json!({"prompt": "x"})).is_err());
    }

    #[test]
    fn a_call_streams_in_the_recorded_order() {
        let model = find_model(MODELS, SMALL).unwrap();
        let body = json!({"messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "parameters": {"type": "object", "properties": {"days": {"type": "integer"}}}}}]});
        let completion = generate(&parse(body).unwrap());
        let id = completion.tool_call.as_ref().unwrap().id("call_", 24);
        let response: Value = serde_json::from_slice(&model.response_body(&completion)).unwrap();
        let choice = &response["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([{"id": id, "type": "function", "function": {"name": "get_weather",
                "arguments": "{\"days\":1}"}}])
        );
        let n_leading = REASONING_PIECES.len() + 1;
        let chunk = |idx| String::from_utf8(model.stream_chunk(&completion, idx, None)).unwrap();
        assert!(chunk(n_leading).starts_with(&format!(
            r#"{{"choices":[{{"delta":{{"tool_calls":[{{"index":0,"id":"{id}","type":"function","function":{{"name":"get_weather","arguments":""}}}}]}},"finish_reason":null,"index":0}}],"#
        )));
        assert!(chunk(n_leading + 1).starts_with(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"days\":1}"}}]},"finish_reason":null,"index":0}],"#
        ));
        let last = model.n_stream_chunks(&completion) - 1;
        assert_eq!(last, n_leading + 2);
        assert!(
            chunk(last).starts_with(
                r#"{"choices":[{"delta":{},"finish_reason":"tool_calls","index":0}],"#
            )
        );
    }

    #[test]
    fn images_are_refused() {
        let body = json!({"messages": [{"role": "user", "content": [{"type": "image_url",
            "image_url": {"url": "data:image/png;base64,aGk="}}]}]});
        assert_eq!(
            parse(body).unwrap_err(),
            "The model openai.gpt-oss-20b-1:0 does not support image input."
        );
    }

    #[test]
    fn answer_shape() {
        let model = find_model(MODELS, SMALL).unwrap();
        let body = json!({"messages": [{"role": "user", "content": "hi there"}],
            "max_completion_tokens": 3});
        let completion = generate(&parse(body).unwrap());
        let response: Value = serde_json::from_slice(&model.response_body(&completion)).unwrap();
        assert_eq!(response["object"], "chat.completion");
        assert_eq!(response["model"], SMALL);
        assert!(response["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let choice = &response["choices"][0];
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(
            choice["message"]["content"],
            format!("<reasoning>{REASONING}</reasoning>{}", completion.text())
        );
        assert_eq!(
            response["usage"],
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        );
    }

    #[test]
    fn stream_chunks_in_the_recorded_shape() {
        let model = find_model(MODELS, SMALL).unwrap();
        assert!(OpenaiGptOss.streams());
        let body = json!({"messages": [{"role": "user", "content": "hi there"}],
            "max_completion_tokens": 2});
        let completion = generate(&parse(body).unwrap());
        let n_chunks = model.n_stream_chunks(&completion);
        assert_eq!(n_chunks, 1 + REASONING_PIECES.len() + 2 + 1);
        let metrics = InvocationMetrics {
            input_token_count: 2,
            output_token_count: 2,
            invocation_latency: 9,
            first_byte_latency: 3,
        };
        let raw: Vec<String> = (0..n_chunks)
            .map(|idx| {
                let metrics = (idx + 1 == n_chunks).then_some(metrics);
                String::from_utf8(model.stream_chunk(&completion, idx, metrics)).unwrap()
            })
            .collect();
        let keys = ["choices", "created", "id", "model", "object", "service_tier"];
        for chunk in &raw {
            let at: Vec<usize> =
                keys.iter().map(|key| chunk.find(&format!("\"{key}\":")).unwrap()).collect();
            assert!(at.is_sorted(), "keys out of the recorded order: {chunk}");
        }
        let chunks: Vec<Value> =
            raw.iter().map(|chunk| serde_json::from_str(chunk).unwrap()).collect();
        let id = completion_id(&completion);
        for chunk in &chunks {
            assert_eq!(chunk["id"], id.as_str());
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], SMALL);
            assert_eq!(chunk["service_tier"], "auto");
        }
        assert_eq!(
            chunks[0]["choices"],
            json!([{"delta": {"content": "", "role": "assistant"}, "finish_reason": null, "index": 0}])
        );
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"content": "<reasoning>The</reasoning>"})
        );
        let streamed: String = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect();
        let reasoning: String = REASONING_PIECES
            .iter()
            .map(|piece| format!("<reasoning>{piece}</reasoning>"))
            .collect();
        assert_eq!(streamed, format!("{reasoning}{}", completion.text()));
        assert_eq!(REASONING_PIECES.concat(), REASONING);
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([{"delta": {}, "finish_reason": "length", "index": 0}]));
        assert_eq!(
            last["amazon-bedrock-invocationMetrics"],
            json!({"inputTokenCount": 2, "outputTokenCount": 2, "invocationLatency": 9,
                "firstByteLatency": 3})
        );
        assert!(chunks[..n_chunks - 1].iter().all(|chunk| chunk.get("usage").is_none()
            && chunk.get("amazon-bedrock-invocationMetrics").is_none()));
        // Only answer tokens count: none in the role and reasoning chunks.
        assert_eq!(model.n_stream_tokens_sent(&completion, N_LEADING_CHUNKS), 0);
        assert_eq!(model.n_stream_tokens_sent(&completion, N_LEADING_CHUNKS + 1), 1);
        assert_eq!(model.n_stream_tokens_sent(&completion, n_chunks), 2);
    }
}
