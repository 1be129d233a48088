//! The OpenAI Chat Completions wire shape that Bedrock serves on InvokeModel for several model
//! families (`openai_chat`, `openai_gpt_oss`): the request checks, the chat completion object
//! and the `chat.completion.chunk` stream. A family is a [`ChatCompletionsApi`] (its limits,
//! roles and extra keys) and a list of [`ChatCompletionsModel`]s.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    NullContent, check_chat_messages, message_texts, stop_or_length, string_array, u32_value,
    validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::schema::{Schema, malformed_input};

/// What tells one Chat Completions family from another.
pub(crate) struct ChatCompletionsApi {
    pub(crate) family_id: &'static str,
    /// `max_tokens` and `max_completion_tokens`, the one read first (and declared first) first.
    pub(crate) max_tokens_keys: [&'static str; 2],
    /// The max tokens when the request gives none.
    pub(crate) default_max_tokens: u32,
    /// The largest max tokens.
    pub(crate) max_tokens_limit: i64,
    /// The most stop sequences.
    pub(crate) max_stop_sequences: usize,
    /// The valid message roles.
    pub(crate) roles: &'static [&'static str],
    /// The keys whose values are booleans, unions or nested lists the schema cannot express:
    /// declared as strings and masked.
    pub(crate) hand_checked_keys: &'static [&'static str],
    /// The hand-checked keys whose values are booleans.
    pub(crate) boolean_keys: &'static [&'static str],
    /// The keys a message may have.
    pub(crate) message_keys: &'static [&'static str],
    /// Whether `top_logprobs` is accepted.
    pub(crate) top_logprobs: bool,
    /// The key order of the stream chunks.
    pub(crate) chunk_layout: ChunkLayout,
}

/// The key order of a family's `chat.completion.chunk`s.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChunkLayout {
    /// OpenAI's documented order (`id`, `object`, `created`, `model`, `choices` of `index`,
    /// `delta` of `role` and `content`, `finish_reason`).
    OpenAi,
    /// The recorded Bedrock order (`choices` of `delta` of `content` and `role`,
    /// `finish_reason`, `index`; `created`, `id`, `model`, `object`, `service_tier`).
    Recorded { service_tier: &'static str },
}

/// One model of a Chat Completions family.
pub(crate) struct ChatCompletionsModel {
    pub(crate) api: &'static ChatCompletionsApi,
    pub(crate) base_model_id: &'static str,
    /// The reasoning that opens every answer in `<reasoning>` tags, as it is streamed, one
    /// chunk (each in its own tags) per piece; none for a model without inline reasoning. It
    /// is decoration: not counted as output tokens and not cut by max tokens or `stop`.
    pub(crate) reasoning_pieces: &'static [&'static str],
}

/// The model of `models` whose id is `base_model_id`.
pub(crate) fn find_model(
    models: &'static [ChatCompletionsModel],
    base_model_id: &str,
) -> Option<&'static ChatCompletionsModel> {
    models.iter().find(|model| model.base_model_id == base_model_id)
}

impl ChatCompletionsModel {
    /// The chunks before the first answer token: the role chunk, and the reasoning.
    pub(crate) fn n_leading_chunks(&self) -> usize {
        1 + self.reasoning_pieces.len()
    }

    /// The answer's `content`: the reasoning, if any, then `text`.
    pub(crate) fn content(&self, text: &str) -> String {
        if self.reasoning_pieces.is_empty() {
            text.to_owned()
        } else {
            format!("<reasoning>{}</reasoning>{text}", self.reasoning_pieces.concat())
        }
    }
}

impl Family for ChatCompletionsModel {
    fn id(&self) -> &'static str {
        self.api.family_id
    }

    fn matches(&self, base_model_id: &str) -> bool {
        self.base_model_id == base_model_id
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let api = self.api;
        validate_masked(&request_schema(api), body, api.hand_checked_keys)?;
        let messages = check_hand_checked_keys(api, body)?;
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
        let [first_key, second_key] = api.max_tokens_keys;
        let max_tokens = body.get(first_key).or_else(|| body.get(second_key));
        let stop_sequences = match body.get("stop") {
            Some(Value::String(stop)) => vec![stop.clone()],
            stop => string_array(stop),
        };
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(max_tokens).unwrap_or(api.default_max_tokens),
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

    /// The role chunk, the reasoning chunks, one chunk per token, then the closing one.
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
        let reasoning;
        let n_leading = self.n_leading_chunks();
        let (role, content, finish_reason) = match chunk_idx {
            0 => (Some("assistant"), Some(""), None),
            idx if idx < n_leading => {
                let piece = self.reasoning_pieces.get(idx - 1).copied().unwrap_or_default();
                reasoning = format!("<reasoning>{piece}</reasoning>");
                (None, Some(reasoning.as_str()), None)
            }
            idx => match completion.tokens.get(idx - n_leading) {
                Some(token) => (None, Some(token.as_str()), None),
                None => (None, None, Some(stop_or_length(&completion.stop))),
            },
        };
        let id = completion_id(completion);
        let created = unix_seconds();
        let model = self.base_model_id;
        let object = "chat.completion.chunk";
        match self.api.chunk_layout {
            ChunkLayout::OpenAi => json_bytes(&ChatCompletionChunk {
                id,
                object,
                created,
                model,
                choices: [ChunkChoice { index: 0, delta: Delta { role, content }, finish_reason }],
                invocation_metrics: metrics,
            }),
            ChunkLayout::Recorded { service_tier } => json_bytes(&RecordedChunk {
                choices: [RecordedChoice {
                    delta: RecordedDelta { content, role },
                    finish_reason,
                    index: 0,
                }],
                created,
                id,
                model,
                object,
                service_tier,
                invocation_metrics: metrics,
            }),
        }
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

/// A stream chunk in [`ChunkLayout::OpenAi`] order.
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

/// One choice of a [`ChunkLayout::OpenAi`] stream chunk (also Jamba's).
#[derive(Serialize)]
pub(crate) struct ChunkChoice<'a> {
    pub(crate) index: u32,
    pub(crate) delta: Delta<'a>,
    pub(crate) finish_reason: Option<&'static str>,
}

/// `{"role": "assistant", "content": ""}`, `{"role": "assistant"}`, `{"content": "…"}` or `{}`.
#[derive(Serialize)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<&'a str>,
}

/// A stream chunk in [`ChunkLayout::Recorded`] order.
#[derive(Serialize)]
struct RecordedChunk<'a> {
    choices: [RecordedChoice<'a>; 1],
    created: u64,
    id: String,
    model: &'static str,
    object: &'static str,
    service_tier: &'static str,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct RecordedChoice<'a> {
    delta: RecordedDelta<'a>,
    finish_reason: Option<&'static str>,
    index: u32,
}

/// `{"content": "", "role": "assistant"}`, `{"content": "…"}` or `{}`.
#[derive(Serialize)]
struct RecordedDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

/// The OpenAI fields Bedrock passes on; the hand-checked keys are declared as strings and
/// masked.
fn request_schema(api: &ChatCompletionsApi) -> Schema {
    let max_tokens = Schema::Integer { minimum: 1, maximum: api.max_tokens_limit };
    let mut properties: Vec<(&'static str, Schema)> =
        api.hand_checked_keys.iter().map(|key| (*key, Schema::String)).collect();
    properties.push(("model", Schema::String));
    properties.extend(api.max_tokens_keys.map(|key| (key, max_tokens.clone())));
    properties.extend([
        ("temperature", Schema::Number { minimum: 0.0, maximum: 2.0 }),
        ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ("n", Schema::Integer { minimum: 1, maximum: 1 }),
        ("seed", Schema::Integer { minimum: i64::MIN, maximum: i64::MAX }),
        ("frequency_penalty", Schema::Number { minimum: -2.0, maximum: 2.0 }),
        ("presence_penalty", Schema::Number { minimum: -2.0, maximum: 2.0 }),
    ]);
    if api.top_logprobs {
        properties.push(("top_logprobs", Schema::Integer { minimum: 0, maximum: 20 }));
    }
    properties.extend([("reasoning_effort", Schema::String), ("user", Schema::String)]);
    Schema::Object { properties, required: vec!["messages"] }
}

/// Checks `messages`, `stop` and the boolean keys, and returns the messages.
fn check_hand_checked_keys<'a>(
    api: &ChatCompletionsApi,
    body: &'a Value,
) -> Result<&'a [Value], BedrockError> {
    let mut violations = Vec::new();
    for key in api.boolean_keys {
        if let Some(value) = body.get(*key).filter(|value| !value.is_boolean()) {
            violations.push(type_mismatch(&format!("#/{key}"), "Boolean", value));
        }
    }
    let max_stop_sequences = api.max_stop_sequences;
    match body.get("stop") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            if items.len() > max_stop_sequences {
                violations.push(format!(
                    "#/stop: expected maximum item count: {max_stop_sequences}, found: {}",
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
    let allowed = api.message_keys;
    check_chat_messages(messages, &["role"], allowed, NullContent::Allowed, &mut violations);
    finish(&violations, ViolationReport::Counted)?;
    for (idx, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if !api.roles.contains(&role) {
            return Err(malformed_input(&format!(
                "#/messages/{idx}/role: {role} is not a valid enum value"
            )));
        }
    }
    Ok(messages)
}

/// `chatcmpl-` and 32 hex digits, derived from the answer.
pub(crate) fn completion_id(completion: &Completion) -> String {
    let text = completion.text();
    let high = fnv1a_64(text.as_bytes());
    let low = fnv1a_64(format!("{}\u{0}{text}", completion.n_input_tokens).as_bytes());
    format!("chatcmpl-{high:016x}{low:016x}")
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}
