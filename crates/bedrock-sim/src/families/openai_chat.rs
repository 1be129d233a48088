//! The open-weight models Bedrock serves with an OpenAI Chat Completions body on InvokeModel:
//! Qwen3, DeepSeek V3.1 / V3.2, Moonshot Kimi, MiniMax and Gemma 3 (AWS API compatibility
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
//! to the model's own value through [`Family::model_family`].

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    NullContent, PerModelFamily, check_chat_messages, message_texts, stop_or_length, string_array,
    u32_value, validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::schema::{Schema, malformed_input};

/// The family as registered: it knows the models and hands every call to the model's own
/// [`ChatModel`] value.
pub(crate) struct OpenaiChat;

/// One model of the family.
pub(crate) struct ChatModel {
    base_model_id: &'static str,
    /// Whether the answer opens with the model's reasoning in `<reasoning>` tags.
    inline_reasoning: bool,
}

const FAMILY_ID: &str = "openai_chat";

const fn plain(base_model_id: &'static str) -> ChatModel {
    ChatModel { base_model_id, inline_reasoning: false }
}

static MODELS: &[ChatModel] = &[
    plain("qwen.qwen3-32b-v1:0"),
    plain("qwen.qwen3-235b-a22b-2507-v1:0"),
    plain("qwen.qwen3-coder-30b-a3b-v1:0"),
    plain("qwen.qwen3-coder-480b-a35b-v1:0"),
    plain("qwen.qwen3-next-80b-a3b"),
    plain("qwen.qwen3-vl-235b-a22b"),
    plain("qwen.qwen3-coder-next"),
    plain("deepseek.v3-v1:0"),
    plain("deepseek.v3.2"),
    ChatModel { base_model_id: "moonshot.kimi-k2-thinking", inline_reasoning: true },
    plain("moonshotai.kimi-k2.5"),
    plain("minimax.minimax-m2"),
    plain("minimax.minimax-m2.1"),
    plain("google.gemma-3-4b-it"),
    plain("google.gemma-3-12b-it"),
    plain("google.gemma-3-27b-it"),
];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: ChatModel = plain("openai-chat");

/// The reasoning of [`ChatModel::inline_reasoning`] models; decoration, not counted as output
/// tokens and not cut by `max_tokens` or `stop`.
const REASONING: &str = "The user wants a direct answer.";

/// `max_tokens` when the request gives none, and its largest value.
const DEFAULT_MAX_TOKENS: u32 = 4096;

const MAX_TOKENS_LIMIT: i64 = 32_768;

/// The most stop sequences OpenAI's API takes.
const MAX_STOP_SEQUENCES: usize = 4;

const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

/// The keys whose values are booleans, unions or nested lists the schema cannot express.
const HAND_CHECKED_KEYS: &[&str] =
    &["messages", "stop", "stream", "stream_options", "tools", "tool_choice", "response_format"];

fn model(base_model_id: &str) -> Option<&'static ChatModel> {
    MODELS.iter().find(|model| model.base_model_id == base_model_id)
}

impl PerModelFamily for OpenaiChat {
    type Model = ChatModel;

    fn model(&self, base_model_id: &str) -> Option<&'static ChatModel> {
        model(base_model_id)
    }

    fn unresolved_model(&self) -> &'static ChatModel {
        &UNRESOLVED_MODEL
    }
}

impl ChatModel {
    /// The chunks before the first answer token: the role chunk, and the reasoning.
    fn n_leading_chunks(&self) -> usize {
        if self.inline_reasoning { 2 } else { 1 }
    }

    fn content(&self, text: &str) -> String {
        if self.inline_reasoning {
            format!("<reasoning>{REASONING}</reasoning>{text}")
        } else {
            text.to_owned()
        }
    }
}

impl Family for ChatModel {
    fn id(&self) -> &'static str {
        FAMILY_ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        self.base_model_id == base_model_id
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        validate_masked(&request_schema(), body, HAND_CHECKED_KEYS)?;
        let messages = check_hand_checked_keys(body)?;
        if let Some(model) = body.get("model").and_then(Value::as_str)
            && model != self.base_model_id
        {
            return Err(BedrockError::validation(format!(
                "The model '{model}' in the request body does not match the model ID \
                 '{}' of the request.",
                self.base_model_id
            )));
        }
        let texts: Vec<&str> = messages.iter().flat_map(|message| message_texts(message)).collect();
        let max_tokens = body.get("max_tokens").or_else(|| body.get("max_completion_tokens"));
        let stop_sequences = match body.get("stop") {
            Some(Value::String(stop)) => vec![stop.clone()],
            stop => string_array(stop),
        };
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(max_tokens).unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences,
            space_before_first_token: false,
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let content = self.content(&completion.text());
        json_bytes(&ChatCompletion {
            id: completion_id(completion),
            object: "chat.completion",
            created: unix_seconds(),
            model: self.base_model_id,
            choices: [CompletionChoice {
                index: 0,
                message: AssistantMessage { role: "assistant", content: &content },
                finish_reason: stop_or_length(&completion.stop),
            }],
            usage: Usage {
                prompt_tokens: completion.n_input_tokens,
                completion_tokens: completion.n_output_tokens(),
                total_tokens: completion.n_input_tokens + completion.n_output_tokens(),
            },
        })
    }

    /// The leading chunks, one chunk per token, then the closing one.
    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        self.n_leading_chunks() + completion.tokens.len() + 1
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        tokens_after_leading_chunks(completion, n_chunks_sent, self.n_leading_chunks())
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let reasoning = format!("<reasoning>{REASONING}</reasoning>");
        let n_leading = self.n_leading_chunks();
        let (delta, finish_reason) = match chunk_idx {
            0 => (Delta { role: Some("assistant"), content: Some("") }, None),
            idx if idx < n_leading => (Delta { role: None, content: Some(&reasoning) }, None),
            idx => match completion.tokens.get(idx - n_leading) {
                Some(token) => (Delta { role: None, content: Some(token) }, None),
                None => {
                    (Delta { role: None, content: None }, Some(stop_or_length(&completion.stop)))
                }
            },
        };
        json_bytes(&ChatCompletionChunk {
            id: completion_id(completion),
            object: "chat.completion.chunk",
            created: unix_seconds(),
            model: self.base_model_id,
            choices: [ChunkChoice { index: 0, delta, finish_reason }],
            invocation_metrics: metrics,
        })
    }
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'static str,
    choices: [CompletionChoice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

#[derive(Serialize)]
struct ChatCompletionChunk<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'static str,
    choices: [ChunkChoice<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

/// `{"role": "assistant", "content": ""}`, `{"content": "…"}` or `{}`.
#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

/// The OpenAI fields Bedrock passes on; the [`HAND_CHECKED_KEYS`] are declared as strings and
/// masked.
fn request_schema() -> Schema {
    let mut properties: Vec<(&'static str, Schema)> =
        HAND_CHECKED_KEYS.iter().map(|key| (*key, Schema::String)).collect();
    properties.extend([
        ("model", Schema::String),
        ("max_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
        ("max_completion_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
        ("temperature", Schema::Number { minimum: 0.0, maximum: 2.0 }),
        ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ("n", Schema::Integer { minimum: 1, maximum: 1 }),
        ("seed", Schema::Integer { minimum: i64::MIN, maximum: i64::MAX }),
        ("frequency_penalty", Schema::Number { minimum: -2.0, maximum: 2.0 }),
        ("presence_penalty", Schema::Number { minimum: -2.0, maximum: 2.0 }),
        ("reasoning_effort", Schema::String),
        ("user", Schema::String),
    ]);
    Schema::Object { properties, required: vec!["messages"] }
}

/// Checks `messages`, `stop` and `stream`, and returns the messages.
fn check_hand_checked_keys(body: &Value) -> Result<&[Value], BedrockError> {
    let mut violations = Vec::new();
    if let Some(value) = body.get("stream").filter(|value| !value.is_boolean()) {
        violations.push(type_mismatch("#/stream", "Boolean", value));
    }
    match body.get("stop") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_STOP_SEQUENCES {
                violations.push(format!(
                    "#/stop: expected maximum item count: {MAX_STOP_SEQUENCES}, found: {}",
                    items.len()
                ));
            }
            for (idx, item) in items.iter().enumerate().filter(|(_, item)| !item.is_string()) {
                violations.push(type_mismatch(&format!("#/stop/{idx}"), "String", item));
            }
        }
        Some(other) => violations.push(type_mismatch("#/stop", "String or JSONArray", other)),
    }
    let messages = match body.get("messages") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => {
            violations.push(type_mismatch("#/messages", "JSONArray", other));
            &[][..]
        }
        None => &[][..],
    };
    if body.get("messages").is_some() && messages.is_empty() {
        violations.push("#/messages: expected minimum item count: 1, found: 0".to_owned());
    }
    let allowed = ["role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content"];
    check_chat_messages(messages, &["role"], &allowed, NullContent::Allowed, &mut violations);
    finish(&violations, ViolationReport::Counted)?;
    for (idx, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(malformed_input(&format!(
                "#/messages/{idx}/role: {role} is not a valid enum value"
            )));
        }
    }
    Ok(messages)
}

/// `chatcmpl-` and 32 hex digits, derived from the answer.
fn completion_id(completion: &Completion) -> String {
    let text = completion.text();
    let high = fnv1a_64(text.as_bytes());
    let low = fnv1a_64(format!("{}\u{0}{text}", completion.n_input_tokens).as_bytes());
    format!("chatcmpl-{high:016x}{low:016x}")
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const QWEN: &str = "qwen.qwen3-32b-v1:0";
    const KIMI: &str = "moonshot.kimi-k2-thinking";

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        let model = model(model_id).unwrap();
        model.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
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
        let model = model(QWEN).unwrap();
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
        let kimi = self::model(KIMI).unwrap();
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
            let model = model(id).unwrap();
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
