//! Writer Palmyra X4 and X5 (`writer.palmyra-x4-v1:0`, `writer.palmyra-x5-v1:0`), served only
//! through an inference profile: request checks and answer shapes.
//!
//! - The request is the documented body (AWS user guide,
//!   <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-palmyra-x4.html> and
//!   `model-parameters-palmyra-x5.html` [D]): `messages` required (at least one), `temperature`
//!   0 to 2, `top_p` above 0 and at most 1, `max_tokens` 1 to 8192 (default 16), `min_tokens`
//!   0 to `max_tokens`, `stop` an array of at most 4 strings, `seed` an integer,
//!   `presence_penalty` and `frequency_penalty` -2 to 2; and `tools` / `tool_choice`, which
//!   recorded calls used [R]. Any other key is refused. A message has a `role` (`system`,
//!   `user`, `assistant`, `tool`) and a `content` that is a string (the pages' example code
//!   and the recorded calls [R]) or `{"text": "..."}` (the pages' request-body section [D]),
//!   or `null` beside `tool_calls`. `min_tokens` is checked, not simulated.
//! - The plain model id is refused: recorded calls found both models only behind their `us.`
//!   profiles [R], and the AWS model table marks them as reached through cross-region
//!   inference [D].
//! - The answer is the documented `chat.completion` [D]: `choices[0].message` with
//!   `reasoning_content: null`, `content` and `tool_calls: []`, `logprobs: null`,
//!   `finish_reason` `stop` or `length`, and `stop_reason`: the stop sequence that ended the
//!   answer, else `null` (as recorded calls show [R]); `usage` with
//!   `prompt_tokens_details: null`, and `prompt_logprobs: null`.
//! - Stream: no `messages` stream was found recorded or documented. The simulator sends
//!   OpenAI `chat.completion.chunk`s: a role chunk, one `delta.content` chunk per token, then
//!   an empty `delta` with `finish_reason`, `stop_reason` and the invocation metrics. The one
//!   recorded Palmyra stream (a bare `prompt` body: `text_completion` chunks, then a chunk
//!   `"[DONE]"`; langchain-ai/langchain-aws `test_bedrock.py`, `MOCK_STREAMING_RESPONSE_WRITER`
//!   [R]) is not simulated: the `prompt` body is undocumented, and the metrics go on the last
//!   chunk, which a `"[DONE]"` string cannot carry. The gateway reads both shapes.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::chat_completions::{Delta, completion_id};
use crate::families::common::{PerModelFamily, string_array, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, StopCause};
use crate::media_schema::{
    Shape, ViolationReport, array_of, collect_violations, finish, string_up_to, type_mismatch,
};
use crate::schema::malformed_input;

/// The family as registered: it knows the models and hands every call to the model's own
/// [`PalmyraModel`] value.
pub(crate) struct WriterPalmyra;

/// One Palmyra model; its answers name it.
pub(crate) struct PalmyraModel {
    base_model_id: &'static str,
}

static MODELS: &[PalmyraModel] = &[
    PalmyraModel { base_model_id: "writer.palmyra-x4-v1:0" },
    PalmyraModel { base_model_id: "writer.palmyra-x5-v1:0" },
];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: PalmyraModel = PalmyraModel { base_model_id: "writer-palmyra" };

/// `max_tokens` when the request gives none, as documented.
const DEFAULT_MAX_TOKENS: u32 = 16;

/// The largest `max_tokens`: the models' output limit.
const MAX_TOKENS_LIMIT: i64 = 8192;

/// The most stop sequences.
const MAX_STOP_SEQUENCES: usize = 4;

const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

/// The keys a message may have.
const MESSAGE_KEYS: &[&str] = &["role", "content", "name", "tool_calls", "tool_call_id"];

/// The keys whose values the shape cannot express (a string or an object): masked.
const MASKED_KEYS: &[&str] = &["tool_choice"];

impl PerModelFamily for WriterPalmyra {
    type Model = PalmyraModel;

    fn model(&self, base_model_id: &str) -> Option<&'static PalmyraModel> {
        MODELS.iter().find(|model| model.base_model_id == base_model_id)
    }

    fn unresolved_model(&self) -> &'static PalmyraModel {
        &UNRESOLVED_MODEL
    }
}

impl Family for PalmyraModel {
    fn id(&self) -> &'static str {
        "writer_palmyra"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        self.base_model_id == base_model_id
    }

    fn needs_inference_profile(&self, _base_model_id: &str) -> bool {
        true
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let mut violations = collect_violations(&request_shape(), &masked(body));
        let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice);
        let messages = messages.unwrap_or_default();
        check_messages(messages, &mut violations);
        if let Some(top_p) = body.get("top_p").filter(|top_p| top_p.as_f64() == Some(0.0)) {
            violations.push(format!("#/top_p: {top_p} is not greater than 0"));
        }
        finish(&violations, ViolationReport::Counted)?;
        let max_tokens = u32_value(body.get("max_tokens")).unwrap_or(DEFAULT_MAX_TOKENS);
        if let Some(min_tokens) = u32_value(body.get("min_tokens"))
            && min_tokens > max_tokens
        {
            return Err(malformed_input(&format!(
                "#/min_tokens: {min_tokens} is not less or equal to max_tokens ({max_tokens})"
            )));
        }
        let texts: Vec<&str> = messages.iter().filter_map(message_text).collect();
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens,
            stop_sequences: string_array(body.get("stop")),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        json_bytes(&ChatCompletion {
            id: completion_id(completion),
            object: "chat.completion",
            created: unix_seconds(),
            model: self.base_model_id,
            choices: [CompletionChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    reasoning_content: None,
                    content: &text,
                    tool_calls: [],
                },
                logprobs: None,
                finish_reason: finish_reason(&completion.stop),
                stop_reason: stop_reason(&completion.stop),
            }],
            usage: Usage {
                prompt_tokens: completion.n_input_tokens,
                total_tokens: completion.n_input_tokens + completion.n_output_tokens(),
                completion_tokens: completion.n_output_tokens(),
                prompt_tokens_details: None,
            },
            prompt_logprobs: None,
        })
    }

    /// The role chunk, one chunk per token, then the closing one.
    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        completion.tokens.len() + 2
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        tokens_after_leading_chunks(completion, n_chunks_sent, 1)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let mut choice = ChunkChoice {
            index: 0,
            delta: Delta { role: None, content: None },
            logprobs: None,
            finish_reason: None,
            stop_reason: None,
        };
        match chunk_idx.checked_sub(1).map(|token_idx| completion.tokens.get(token_idx)) {
            None => choice.delta = Delta { role: Some("assistant"), content: Some("") },
            Some(Some(token)) => choice.delta.content = Some(token),
            Some(None) => {
                choice.finish_reason = Some(finish_reason(&completion.stop));
                choice.stop_reason = Some(stop_reason(&completion.stop));
            }
        }
        json_bytes(&ChatCompletionChunk {
            id: completion_id(completion),
            object: "chat.completion.chunk",
            created: unix_seconds(),
            model: self.base_model_id,
            choices: [choice],
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
    prompt_logprobs: Option<()>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
    stop_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    reasoning_content: Option<&'a str>,
    content: &'a str,
    tool_calls: [(); 0],
}

/// The key order of the documented answer.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    total_tokens: u32,
    completion_tokens: u32,
    prompt_tokens_details: Option<()>,
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
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
    /// Only on the closing chunk, where it is the stop sequence or `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_reason: Option<Option<&'a str>>,
}

/// `stop`, also at a stop sequence, or `length`.
fn finish_reason(stop: &StopCause) -> &'static str {
    match stop {
        StopCause::EndOfText | StopCause::StopSequence(_) => "stop",
        StopCause::MaxTokens => "length",
    }
}

/// The stop sequence that ended the answer, if one did.
fn stop_reason(stop: &StopCause) -> Option<&str> {
    match stop {
        StopCause::StopSequence(sequence) => Some(sequence),
        StopCause::EndOfText | StopCause::MaxTokens => None,
    }
}

/// The documented fields, `tools` and `tool_choice`; messages are checked by hand.
fn request_shape() -> Shape {
    let penalty = || Shape::Number { minimum: -2.0, maximum: 2.0 };
    Shape::Object {
        properties: vec![
            ("messages", array_of(Shape::AnyObject, 1, usize::MAX)),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 2.0 }),
            ("top_p", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("max_tokens", Shape::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
            ("min_tokens", Shape::Integer { minimum: 0, maximum: MAX_TOKENS_LIMIT }),
            ("stop", array_of(string_up_to(usize::MAX), 0, MAX_STOP_SEQUENCES)),
            ("seed", Shape::Integer { minimum: i64::MIN, maximum: i64::MAX }),
            ("presence_penalty", penalty()),
            ("frequency_penalty", penalty()),
            ("tools", array_of(Shape::AnyObject, 0, usize::MAX)),
            ("tool_choice", string_up_to(usize::MAX)),
        ],
        required: vec!["messages"],
    }
}

/// `body` with each of [`MASKED_KEYS`] that is present replaced by an empty string.
fn masked(body: &Value) -> Value {
    let mut masked = body.clone();
    if let Some(object) = masked.as_object_mut() {
        for key in MASKED_KEYS {
            if let Some(value) = object.get_mut(*key) {
                *value = Value::String(String::new());
            }
        }
    }
    masked
}

/// The violations of the messages (each already known to be an object): their keys, roles
/// and content.
fn check_messages(messages: &[Value], violations: &mut Vec<String>) {
    for (idx, message) in messages.iter().enumerate() {
        let pointer = format!("#/messages/{idx}");
        let Some(object) = message.as_object() else { continue };
        if !object.contains_key("role") {
            violations.push(format!("{pointer}: required key [role] not found"));
        }
        for key in object.keys().filter(|key| !MESSAGE_KEYS.contains(&key.as_str())) {
            violations.push(format!("{pointer}: extraneous key [{key}] is not permitted"));
        }
        match object.get("role") {
            None => {}
            Some(Value::String(role)) if ROLES.contains(&role.as_str()) => {}
            Some(role) => {
                let role = role.as_str().map_or_else(|| role.to_string(), str::to_owned);
                violations.push(format!("{pointer}/role: {role} is not a valid enum value"));
            }
        }
        match object.get("content") {
            None | Some(Value::String(_) | Value::Null) => {}
            Some(Value::Object(content)) => {
                let content_pointer = format!("{pointer}/content");
                match content.get("text") {
                    Some(Value::String(_)) => {}
                    Some(other) => {
                        violations.push(type_mismatch(
                            &format!("{content_pointer}/text"),
                            "String",
                            other,
                        ));
                    }
                    None => {
                        violations
                            .push(format!("{content_pointer}: required key [text] not found"));
                    }
                }
                for key in content.keys().filter(|key| key.as_str() != "text") {
                    violations.push(format!(
                        "{content_pointer}: extraneous key [{key}] is not permitted"
                    ));
                }
            }
            Some(other) => {
                violations.push(type_mismatch(
                    &format!("{pointer}/content"),
                    "String or JSONObject",
                    other,
                ));
            }
        }
    }
}

/// The text of a message: its string content, or the `text` of its content object.
fn message_text(message: &Value) -> Option<&str> {
    match message.get("content")? {
        Value::String(text) => Some(text),
        Value::Object(content) => content.get("text").and_then(Value::as_str),
        _ => None,
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests;
