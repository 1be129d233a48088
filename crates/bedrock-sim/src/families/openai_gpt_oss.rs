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
//! [`Family::model_family`].

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

/// The gpt-oss family as registered: it knows the models and hands every call to the model's
/// own [`GptOssModel`] value.
pub(crate) struct OpenaiGptOss;

/// One gpt-oss model.
pub(crate) struct GptOssModel {
    base_model_id: &'static str,
}

const FAMILY_ID: &str = "openai_gpt_oss";

static MODELS: &[GptOssModel] = &[
    GptOssModel { base_model_id: "openai.gpt-oss-120b-1:0" },
    GptOssModel { base_model_id: "openai.gpt-oss-20b-1:0" },
];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: GptOssModel = GptOssModel { base_model_id: "openai.gpt-oss" };

/// The reasoning shown before every answer. It is decoration: not counted as output tokens and
/// not cut by `max_completion_tokens` or `stop`.
const REASONING: &str = "The user wants a direct answer.";

/// [`REASONING`] as it is streamed, one chunk per word.
const REASONING_PIECES: [&str; 6] = ["The", " user", " wants", " a", " direct", " answer."];

/// The chunks before the first answer token: the role chunk and the reasoning.
const N_LEADING_CHUNKS: usize = 1 + REASONING_PIECES.len();

/// The `service_tier` of every recorded chunk.
const SERVICE_TIER: &str = "auto";

/// `max_completion_tokens` when the request gives none, and its largest value (the context
/// window).
const DEFAULT_MAX_TOKENS: u32 = 4096;

const MAX_TOKENS_LIMIT: i64 = 128_000;

/// The most stop sequences OpenAI's API takes.
const MAX_STOP_SEQUENCES: usize = 4;

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// The keys whose values are booleans, unions or nested lists the schema cannot express.
const HAND_CHECKED_KEYS: &[&str] = &[
    "messages",
    "stop",
    "stream",
    "tools",
    "tool_choice",
    "response_format",
    "logprobs",
    "parallel_tool_calls",
];

fn model(base_model_id: &str) -> Option<&'static GptOssModel> {
    MODELS.iter().find(|model| model.base_model_id == base_model_id)
}

impl PerModelFamily for OpenaiGptOss {
    type Model = GptOssModel;

    fn model(&self, base_model_id: &str) -> Option<&'static GptOssModel> {
        model(base_model_id)
    }

    fn unresolved_model(&self) -> &'static GptOssModel {
        &UNRESOLVED_MODEL
    }
}

impl Family for GptOssModel {
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
        let max_tokens = body.get("max_completion_tokens").or_else(|| body.get("max_tokens"));
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
        let content = format!("<reasoning>{REASONING}</reasoning>{}", completion.text());
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

    /// The role chunk, the reasoning chunks, one chunk per token, then the closing one.
    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        N_LEADING_CHUNKS + completion.tokens.len() + 1
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        tokens_after_leading_chunks(completion, n_chunks_sent, N_LEADING_CHUNKS)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let reasoning;
        let (delta, finish_reason) = match chunk_idx {
            0 => (Delta { content: Some(""), role: Some("assistant") }, None),
            idx if idx < N_LEADING_CHUNKS => {
                let piece = REASONING_PIECES.get(idx - 1).copied().unwrap_or_default();
                reasoning = format!("<reasoning>{piece}</reasoning>");
                (Delta { content: Some(&reasoning), role: None }, None)
            }
            idx => match completion.tokens.get(idx - N_LEADING_CHUNKS) {
                Some(token) => (Delta { content: Some(token), role: None }, None),
                None => {
                    (Delta { content: None, role: None }, Some(stop_or_length(&completion.stop)))
                }
            },
        };
        json_bytes(&ChatCompletionChunk {
            choices: [ChunkChoice { delta, finish_reason, index: 0 }],
            created: unix_seconds(),
            id: completion_id(completion),
            model: self.base_model_id,
            object: "chat.completion.chunk",
            service_tier: SERVICE_TIER,
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

/// One stream chunk, its keys in the recorded order.
#[derive(Serialize)]
struct ChatCompletionChunk<'a> {
    choices: [ChunkChoice<'a>; 1],
    created: u64,
    id: String,
    model: &'static str,
    object: &'static str,
    service_tier: &'static str,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
    index: u32,
}

/// `{"content": "", "role": "assistant"}`, `{"content": "…"}` or `{}`.
#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

/// The OpenAI fields Bedrock passes on; the [`HAND_CHECKED_KEYS`] are declared as strings and
/// masked.
fn request_schema() -> Schema {
    let mut properties: Vec<(&'static str, Schema)> =
        HAND_CHECKED_KEYS.iter().map(|key| (*key, Schema::String)).collect();
    properties.extend([
        ("model", Schema::String),
        ("max_completion_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
        ("max_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
        ("temperature", Schema::Number { minimum: 0.0, maximum: 2.0 }),
        ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ("n", Schema::Integer { minimum: 1, maximum: 1 }),
        ("seed", Schema::Integer { minimum: i64::MIN, maximum: i64::MAX }),
        ("frequency_penalty", Schema::Number { minimum: -2.0, maximum: 2.0 }),
        ("presence_penalty", Schema::Number { minimum: -2.0, maximum: 2.0 }),
        ("top_logprobs", Schema::Integer { minimum: 0, maximum: 20 }),
        ("reasoning_effort", Schema::String),
        ("user", Schema::String),
    ]);
    Schema::Object { properties, required: vec!["messages"] }
}

/// Checks `messages`, `stop` and the boolean keys, and returns the messages.
fn check_hand_checked_keys(body: &Value) -> Result<&[Value], BedrockError> {
    let mut violations = Vec::new();
    for key in ["stream", "logprobs", "parallel_tool_calls"] {
        if let Some(value) = body.get(key).filter(|value| !value.is_boolean()) {
            violations.push(type_mismatch(&format!("#/{key}"), "Boolean", value));
        }
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
    let allowed = ["role", "content", "name", "tool_calls", "tool_call_id", "reasoning"];
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

    const SMALL: &str = "openai.gpt-oss-20b-1:0";

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        let model = model(SMALL).unwrap();
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
    fn answer_shape() {
        let model = model(SMALL).unwrap();
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
        let model = model(SMALL).unwrap();
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
