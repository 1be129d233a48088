//! Anthropic Claude Messages API (Claude 3 and later): request checks and answer shapes of wire
//! document §4.4, including the messages rules Anthropic's validator applies behind Bedrock.
//!
//! Models ([`MODELS`]): `anthropic.claude-3-haiku-20240307-v1:0`,
//! `anthropic.claude-3-sonnet-20240229-v1:0`, `anthropic.claude-3-opus-20240229-v1:0`,
//! `anthropic.claude-3-5-sonnet-20240620-v1:0` (on demand), and, only through an inference
//! profile, `anthropic.claude-3-5-sonnet-20241022-v2:0`,
//! `anthropic.claude-3-5-haiku-20241022-v1:0`, `anthropic.claude-3-7-sonnet-20250219-v1:0`,
//! `anthropic.claude-sonnet-4-20250514-v1:0`, `anthropic.claude-opus-4-20250514-v1:0`,
//! `anthropic.claude-opus-4-1-20250805-v1:0`, `anthropic.claude-sonnet-4-5-20250929-v1:0`,
//! `anthropic.claude-haiku-4-5-20251001-v1:0`, `anthropic.claude-opus-4-5-20251101-v1:0`,
//! `anthropic.claude-opus-4-6-v1` and `anthropic.claude-sonnet-4-6`.
//!
//! Every answer names the model (`"model": "claude-3-haiku-20240307"`), so the registered value
//! hands each call to the model's own value through [`Family::model_family`].

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    PerModelFamily, check_extraneous_keys, check_required_keys, string_array, validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, StopCause, fnv1a_64};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::schema::{Schema, as_integer};

/// The Claude Messages family as registered: it knows the models and hands every call to the
/// model's own [`ClaudeModel`] value.
pub(crate) struct AnthropicClaudeMessages;

/// One Claude model and what Bedrock enforces for it.
pub(crate) struct ClaudeModel {
    base_model_id: &'static str,
    /// Anthropic's name for the model: the `model` of every answer.
    name: &'static str,
    /// The largest `max_tokens`.
    max_output_tokens: i64,
    needs_inference_profile: bool,
    /// Whether `temperature` and `top_p` may not both be given (Claude 4.5 and later).
    exclusive_sampling: bool,
}

const FAMILY_ID: &str = "anthropic_claude_messages";

/// The only `anthropic_version` Bedrock accepts.
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Every simulated Claude Messages model. Output limits are Anthropic's published ones.
static MODELS: &[ClaudeModel] = &[
    ClaudeModel::on_demand(
        "anthropic.claude-3-haiku-20240307-v1:0",
        "claude-3-haiku-20240307",
        4096,
    ),
    ClaudeModel::on_demand(
        "anthropic.claude-3-sonnet-20240229-v1:0",
        "claude-3-sonnet-20240229",
        4096,
    ),
    ClaudeModel::on_demand("anthropic.claude-3-opus-20240229-v1:0", "claude-3-opus-20240229", 4096),
    ClaudeModel::on_demand(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "claude-3-5-sonnet-20240620",
        8192,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "claude-3-5-sonnet-20241022",
        8192,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "claude-3-5-haiku-20241022",
        8192,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "claude-3-7-sonnet-20250219",
        64_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "claude-sonnet-4-20250514",
        64_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-opus-4-20250514-v1:0",
        "claude-opus-4-20250514",
        32_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "claude-opus-4-1-20250805",
        32_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5-20250929",
        64_000,
        true,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-haiku-4-5-20251001",
        64_000,
        true,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-opus-4-5-20251101-v1:0",
        "claude-opus-4-5-20251101",
        64_000,
        true,
    ),
    ClaudeModel::profile_only("anthropic.claude-opus-4-6-v1", "claude-opus-4-6", 128_000, true),
    ClaudeModel::profile_only("anthropic.claude-sonnet-4-6", "claude-sonnet-4-6", 64_000, true),
];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: ClaudeModel = ClaudeModel::on_demand("", "claude", 4096);

/// The content block types Anthropic accepts in a message.
const CONTENT_BLOCK_TYPES: &[&str] =
    &["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"];

/// The stream of one answer: message start, block start, one delta per token, block stop,
/// message delta, message stop.
const N_FRAMING_CHUNKS: usize = 5;

impl ClaudeModel {
    const fn on_demand(base_model_id: &'static str, name: &'static str, max: i64) -> ClaudeModel {
        ClaudeModel {
            base_model_id,
            name,
            max_output_tokens: max,
            needs_inference_profile: false,
            exclusive_sampling: false,
        }
    }

    const fn profile_only(
        base_model_id: &'static str,
        name: &'static str,
        max: i64,
        exclusive_sampling: bool,
    ) -> ClaudeModel {
        ClaudeModel {
            base_model_id,
            name,
            max_output_tokens: max,
            needs_inference_profile: true,
            exclusive_sampling,
        }
    }
}

fn model(base_model_id: &str) -> Option<&'static ClaudeModel> {
    MODELS.iter().find(|model| model.base_model_id == base_model_id)
}

impl PerModelFamily for AnthropicClaudeMessages {
    type Model = ClaudeModel;

    fn model(&self, base_model_id: &str) -> Option<&'static ClaudeModel> {
        model(base_model_id)
    }

    fn unresolved_model(&self) -> &'static ClaudeModel {
        &UNRESOLVED_MODEL
    }
}

impl Family for ClaudeModel {
    fn id(&self) -> &'static str {
        FAMILY_ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        self.base_model_id == base_model_id
    }

    fn needs_inference_profile(&self, _base_model_id: &str) -> bool {
        self.needs_inference_profile
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        // A Text Completions body sent to a Messages model [R: langchain issue 19549].
        if body.get("prompt").is_some() && body.get("messages").is_none() {
            return Err(BedrockError::validation(format!(
                "\"{}\" is not supported on this API. Please use the Messages API instead.",
                self.name
            )));
        }
        validate_masked(&request_schema(), body, &["system", "messages", "tools", "tool_choice"])?;
        let mut violations = Vec::new();
        check_system_shape(body.get("system"), &mut violations);
        check_messages_shape(body.get("messages"), &mut violations);
        finish(&violations, ViolationReport::Counted)?;

        let version = body.get("anthropic_version").and_then(Value::as_str).unwrap_or_default();
        if version != ANTHROPIC_VERSION {
            return Err(BedrockError::validation(format!("Invalid API version: {version}")));
        }
        let max_tokens = body.get("max_tokens").and_then(as_integer).unwrap_or_default();
        if max_tokens > self.max_output_tokens {
            return Err(BedrockError::validation(format!(
                "max_tokens: {max_tokens} > {}, which is the maximum allowed number of output \
                 tokens for {}",
                self.max_output_tokens, self.name
            )));
        }
        if self.exclusive_sampling
            && body.get("temperature").is_some()
            && body.get("top_p").is_some()
        {
            return Err(BedrockError::validation(
                "`temperature` and `top_p` cannot both be specified for this model. Please use \
                 only one.",
            ));
        }
        let messages =
            body.get("messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        check_conversation(messages)?;

        let mut texts = content_texts(body.get("system"));
        texts.extend(messages.iter().flat_map(|message| content_texts(message.get("content"))));
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32::try_from(max_tokens).unwrap_or_default(),
            stop_sequences: string_array(body.get("stop_sequences")),
            space_before_first_token: false,
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        let (stop_reason, stop_sequence) = stop_reason(&completion.stop);
        json_bytes(&MessageResponse {
            id: message_id(completion),
            kind: "message",
            role: "assistant",
            model: self.name,
            content: vec![TextBlock { kind: "text", text: &text }],
            stop_reason: Some(stop_reason),
            stop_sequence,
            usage: Usage {
                input_tokens: completion.n_input_tokens,
                output_tokens: completion.n_output_tokens(),
            },
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        completion.tokens.len() + N_FRAMING_CHUNKS
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        // message_start and content_block_start come first.
        tokens_after_leading_chunks(completion, n_chunks_sent, 2)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let n_tokens = completion.tokens.len();
        let event = match chunk_idx {
            0 => StreamEvent::MessageStart {
                message: MessageResponse {
                    id: message_id(completion),
                    kind: "message",
                    role: "assistant",
                    model: self.name,
                    content: Vec::new(),
                    stop_reason: None,
                    stop_sequence: None,
                    // Bedrock's first event counts one output token already [R].
                    usage: Usage { input_tokens: completion.n_input_tokens, output_tokens: 1 },
                },
            },
            1 => StreamEvent::ContentBlockStart {
                index: 0,
                content_block: TextBlock { kind: "text", text: "" },
            },
            idx if idx < n_tokens + 2 => StreamEvent::ContentBlockDelta {
                index: 0,
                delta: TextBlock {
                    kind: "text_delta",
                    text: completion.tokens.get(idx - 2).map_or("", String::as_str),
                },
            },
            idx if idx == n_tokens + 2 => StreamEvent::ContentBlockStop { index: 0 },
            idx if idx == n_tokens + 3 => {
                let (stop_reason, stop_sequence) = stop_reason(&completion.stop);
                StreamEvent::MessageDelta {
                    delta: StopDelta { stop_reason, stop_sequence },
                    usage: OutputUsage { output_tokens: completion.n_output_tokens() },
                }
            }
            _ => StreamEvent::MessageStop { invocation_metrics: metrics },
        };
        json_bytes(&event)
    }
}

#[derive(Serialize)]
struct MessageResponse<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'static str,
    content: Vec<TextBlock<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'a str>,
    usage: Usage,
}

/// A text content block, or a `text_delta`.
#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    output_tokens: u32,
}

#[derive(Serialize)]
struct StopDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u32,
}

/// One model-native stream event.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent<'a> {
    MessageStart {
        message: MessageResponse<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: TextBlock<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: TextBlock<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta<'a>,
        usage: OutputUsage,
    },
    MessageStop {
        #[serde(
            rename = "amazon-bedrock-invocationMetrics",
            skip_serializing_if = "Option::is_none"
        )]
        invocation_metrics: Option<InvocationMetrics>,
    },
}

/// The top level of the body. `system`, `messages`, `tools` and `tool_choice` are unions or
/// nested lists the schema cannot express; [`validate_masked`] skips them and they are checked
/// by hand.
fn request_schema() -> Schema {
    Schema::Object {
        properties: vec![
            ("anthropic_version", Schema::String),
            ("anthropic_beta", Schema::StringArray),
            ("max_tokens", Schema::Integer { minimum: 1, maximum: i64::MAX }),
            ("system", Schema::String),
            ("messages", Schema::String),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_k", Schema::Integer { minimum: 0, maximum: 500 }),
            ("stop_sequences", Schema::StringArray),
            ("tools", Schema::String),
            ("tool_choice", Schema::String),
            (
                "thinking",
                Schema::Object {
                    properties: vec![
                        ("type", Schema::String),
                        ("budget_tokens", Schema::Integer { minimum: 1024, maximum: i64::MAX }),
                    ],
                    required: vec!["type"],
                },
            ),
        ],
        required: vec!["anthropic_version", "max_tokens", "messages"],
    }
}

/// `system` is a string or a list of text blocks.
fn check_system_shape(system: Option<&Value>, violations: &mut Vec<String>) {
    match system {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (idx, block) in blocks.iter().enumerate() {
                check_text_block(block, &format!("#/system/{idx}"), violations);
            }
        }
        Some(other) => violations.push(type_mismatch("#/system", "String or JSONArray", other)),
    }
}

fn check_text_block(block: &Value, pointer: &str, violations: &mut Vec<String>) {
    let Some(object) = block.as_object() else {
        violations.push(type_mismatch(pointer, "JSONObject", block));
        return;
    };
    for key in ["type", "text"] {
        match object.get(key) {
            None => violations.push(format!("{pointer}: required key [{key}] not found")),
            Some(Value::String(_)) => {}
            Some(other) => {
                violations.push(type_mismatch(&format!("{pointer}/{key}"), "String", other));
            }
        }
    }
}

/// `messages` is a list of `{role, content}` objects; content is a string or a list of blocks.
fn check_messages_shape(messages: Option<&Value>, violations: &mut Vec<String>) {
    let Some(messages) = messages else {
        return;
    };
    let Some(items) = messages.as_array() else {
        violations.push(type_mismatch("#/messages", "JSONArray", messages));
        return;
    };
    for (idx, message) in items.iter().enumerate() {
        let pointer = format!("#/messages/{idx}");
        let Some(object) = message.as_object() else {
            violations.push(type_mismatch(&pointer, "JSONObject", message));
            continue;
        };
        check_required_keys(object, &pointer, &["role", "content"], violations);
        check_extraneous_keys(object, &pointer, &["role", "content"], violations);
        if let Some(role) = object.get("role").filter(|role| !role.is_string()) {
            violations.push(type_mismatch(&format!("{pointer}/role"), "String", role));
        }
        match object.get("content") {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (block_idx, block) in blocks.iter().enumerate() {
                    let block_pointer = format!("{pointer}/content/{block_idx}");
                    match block.as_object() {
                        Some(block) if block.get("type").is_some_and(Value::is_string) => {}
                        Some(_) => {
                            violations
                                .push(format!("{block_pointer}: required key [type] not found"));
                        }
                        None => violations.push(type_mismatch(&block_pointer, "JSONObject", block)),
                    }
                }
            }
            Some(other) => violations.push(type_mismatch(
                &format!("{pointer}/content"),
                "String or JSONArray",
                other,
            )),
        }
    }
}

/// The conversation rules Anthropic checks once the shapes are right.
fn check_conversation(messages: &[Value]) -> Result<(), BedrockError> {
    if messages.is_empty() {
        return Err(BedrockError::validation("messages: at least one message is required"));
    }
    let mut previous_role = None;
    for (idx, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(BedrockError::validation(format!(
                "messages.{idx}.role: Input should be 'user' or 'assistant'"
            )));
        }
        if idx == 0 && role != "user" {
            return Err(BedrockError::validation(
                "messages: first message must use the \"user\" role",
            ));
        }
        if previous_role == Some(role) {
            return Err(BedrockError::validation(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found \
                 multiple \"{role}\" roles in a row"
            )));
        }
        previous_role = Some(role);
        check_content(
            idx,
            message.get("content"),
            idx + 1 == messages.len() && role == "assistant",
        )?;
    }
    Ok(())
}

/// Anthropic's refusal of a text that is only whitespace.
const WHITESPACE_ONLY_MESSAGE: &str =
    "messages: text content blocks must contain non-whitespace text";

fn check_content(
    message_idx: usize,
    content: Option<&Value>,
    is_final_assistant: bool,
) -> Result<(), BedrockError> {
    let is_empty = match content {
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Array(blocks)) => blocks.is_empty(),
        _ => true,
    };
    if is_empty && !is_final_assistant {
        return Err(BedrockError::validation(format!(
            "messages.{message_idx}: all messages must have non-empty content except for the \
             optional final assistant message"
        )));
    }
    // A prompt of nothing but whitespace (Anthropic's Messages API, passed on by Bedrock).
    if let Some(Value::String(text)) = content
        && !text.is_empty()
        && text.trim().is_empty()
        && !is_final_assistant
    {
        return Err(BedrockError::validation(WHITESPACE_ONLY_MESSAGE));
    }
    let blocks = content.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (block_idx, block) in blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
        if !CONTENT_BLOCK_TYPES.contains(&kind) {
            return Err(BedrockError::validation(format!(
                "messages.{message_idx}.content.{block_idx}.type: Input should be 'text', \
                 'image', 'document', 'tool_use', 'tool_result', 'thinking' or \
                 'redacted_thinking'"
            )));
        }
        if kind == "text" {
            match block.get("text") {
                Some(Value::String(text)) if text.is_empty() => {
                    return Err(BedrockError::validation(
                        "messages: text content blocks must be non-empty",
                    ));
                }
                Some(Value::String(text)) if text.trim().is_empty() && !is_final_assistant => {
                    return Err(BedrockError::validation(WHITESPACE_ONLY_MESSAGE));
                }
                Some(Value::String(_)) => {}
                _ => {
                    return Err(BedrockError::validation(format!(
                        "messages.{message_idx}.content.{block_idx}.text: Field required"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The texts of a string content (or system prompt) or of the text blocks of a block list.
fn content_texts(content: Option<&Value>) -> Vec<String> {
    match content {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// `stop_reason` and `stop_sequence` of an answer.
fn stop_reason(stop: &StopCause) -> (&'static str, Option<&str>) {
    match stop {
        StopCause::EndOfText => ("end_turn", None),
        StopCause::MaxTokens => ("max_tokens", None),
        StopCause::StopSequence(sequence) => ("stop_sequence", Some(sequence.as_str())),
    }
}

/// `msg_bdrk_01` and 22 base-62 characters, derived from the answer so that the response and
/// the `message_start` event of the same answer agree.
fn message_id(completion: &Completion) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let seed = format!("{}\u{0}{}", completion.n_input_tokens, completion.text());
    let mut state = fnv1a_64(seed.as_bytes());
    let mut id = String::from("msg_bdrk_01");
    for _ in 0..22 {
        state = state.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(0x1405_7b7e_f767_814f);
        let digit = usize::try_from((state >> 33) % 62).unwrap_or_default();
        id.push(char::from(ALPHABET[digit]));
    }
    id
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        let model = model(model_id).unwrap();
        model.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    fn body(messages: Value) -> Value {
        json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 50, "messages": messages})
    }

    #[test]
    fn reads_system_and_message_texts() {
        let mut request = body(json!([
            {"role": "user", "content": [{"type": "text", "text": "Tell me"},
                {"type": "image", "source": {"type": "base64"}}]},
            {"role": "assistant", "content": "Why?"},
            {"role": "user", "content": "Go on"}]));
        request["system"] = json!([{"type": "text", "text": "Be terse."}]);
        request["stop_sequences"] = json!(["STOP"]);
        let request = parse(HAIKU, request).unwrap();
        assert_eq!(request.prompt, "Be terse.\nTell me\nWhy?\nGo on");
        assert_eq!(request.max_tokens, 50);
        assert_eq!(request.stop_sequences, vec!["STOP".to_owned()]);
    }

    #[test]
    fn conversation_rules() {
        let cases = [
            (json!([]), "messages: at least one message is required"),
            (
                json!([{"role": "assistant", "content": "x"}]),
                "messages: first message must use the \"user\" role",
            ),
            (
                json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
                "messages: roles must alternate between \"user\" and \"assistant\", but found \
                 multiple \"user\" roles in a row",
            ),
            (
                json!([{"role": "system", "content": "a"}]),
                "messages.0.role: Input should be 'user' or 'assistant'",
            ),
            (
                json!([{"role": "user", "content": [{"type": "text", "text": ""}]}]),
                "messages: text content blocks must be non-empty",
            ),
            (
                json!([{"role": "user", "content": ""}]),
                "messages.0: all messages must have non-empty content except for the optional \
                 final assistant message",
            ),
        ];
        for (messages, expected) in cases {
            assert_eq!(parse(HAIKU, body(messages.clone())).unwrap_err(), expected, "{messages}");
        }
        let prefill =
            json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]);
        assert!(parse(HAIKU, body(prefill)).is_ok());
    }

    #[test]
    fn body_checks() {
        let mut wrong_version = body(json!([{"role": "user", "content": "hi"}]));
        wrong_version["anthropic_version"] = json!("2023-06-01");
        assert_eq!(parse(HAIKU, wrong_version).unwrap_err(), "Invalid API version: 2023-06-01");

        let mut too_long = body(json!([{"role": "user", "content": "hi"}]));
        too_long["max_tokens"] = json!(4097);
        assert_eq!(
            parse(HAIKU, too_long).unwrap_err(),
            "max_tokens: 4097 > 4096, which is the maximum allowed number of output tokens for \
             claude-3-haiku-20240307"
        );

        let mut both = body(json!([{"role": "user", "content": "hi"}]));
        both["temperature"] = json!(0.5);
        both["top_p"] = json!(0.9);
        assert!(parse(HAIKU, both.clone()).is_ok());
        assert!(parse("anthropic.claude-sonnet-4-5-20250929-v1:0", both).is_err());

        assert_eq!(
            parse(
                HAIKU,
                json!({"prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 5})
            )
            .unwrap_err(),
            "\"claude-3-haiku-20240307\" is not supported on this API. Please use the Messages \
             API instead."
        );
        assert_eq!(
            parse(HAIKU, json!({"anthropic_version": ANTHROPIC_VERSION, "messages": "hi"}))
                .unwrap_err(),
            "Malformed input request: #: required key [max_tokens] not found, please reformat \
             your input and try again."
        );
        assert_eq!(
            parse(HAIKU, body(json!({"role": "user"}))).unwrap_err(),
            "Malformed input request: #/messages: expected type: JSONArray, found: JSONObject, \
             please reformat your input and try again."
        );
        let mut stream_key = body(json!([{"role": "user", "content": "hi"}]));
        stream_key["stream"] = json!(true);
        assert!(parse(HAIKU, stream_key).unwrap_err().contains("extraneous key [stream]"));
    }

    #[test]
    fn answer_and_stream_shapes() {
        let model = model(HAIKU).unwrap();
        let mut request = body(json!([{"role": "user", "content": "hello there"}]));
        request["max_tokens"] = json!(2);
        let completion = generate(&parse(HAIKU, request).unwrap());
        let response: Value = serde_json::from_slice(&model.response_body(&completion)).unwrap();
        assert!(response["id"].as_str().unwrap().starts_with("msg_bdrk_01"));
        assert_eq!(response["id"].as_str().unwrap().len(), 33);
        assert_eq!(response["model"], "claude-3-haiku-20240307");
        assert_eq!(response["stop_reason"], "max_tokens");
        assert_eq!(response["usage"], json!({"input_tokens": 2, "output_tokens": 2}));

        assert_eq!(model.n_stream_chunks(&completion), 7);
        let chunk = |idx| -> Value {
            serde_json::from_slice(&model.stream_chunk(&completion, idx, None)).unwrap()
        };
        assert_eq!(chunk(0)["message"]["id"], response["id"]);
        assert_eq!(chunk(1)["type"], "content_block_start");
        assert_eq!(chunk(3)["delta"], json!({"type": "text_delta", "text": completion.tokens[1]}));
        assert_eq!(chunk(4), json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(
            chunk(5),
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens",
                "stop_sequence": null}, "usage": {"output_tokens": 2}})
        );
        assert_eq!(chunk(6), json!({"type": "message_stop"}));
    }
}
