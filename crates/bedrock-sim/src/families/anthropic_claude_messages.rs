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
//!
//! Prompt caching (`prompt_cache.rs`), for the models of [`CACHE_MIN_TOKENS`]: a
//! `cache_control` on a tool, a system block or a message content block caches the tools,
//! system blocks and message blocks up to it; a hit is looked for at the 20 block boundaries
//! before each breakpoint too. More than four breakpoints are Anthropic's 400. The answer's
//! `usage` has `cache_creation_input_tokens` and `cache_read_input_tokens` after
//! `input_tokens`, 0 when nothing was cached (recorded from Claude 3.7 Sonnet on Bedrock in
//! async-aws's `InvokeModelResponseTest`), in the body and in `message_start`; the stream's
//! invocation metrics carry the two cache counts as Nova's do [U for Claude]. The other
//! models accept `cache_control` and cache nothing, with no cache counts; real Bedrock may
//! refuse the marker there ("You invoked an unsupported model or your request did not allow
//! prompt caching" is recorded for other models without a prompt cache) [U].

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    PerModelFamily, check_extraneous_keys, check_required_keys, string_array, validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, StopCause, fnv1a_64};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::prompt_cache::{
    CacheBoundary, CacheInvocationMetrics, CacheRequest, MAX_CHECKPOINTS, PrefixHasher, items,
    n_words,
};
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

/// The least prefix, in tokens, that a cache checkpoint caches, for each model Bedrock caches
/// prompts for: AWS's table (3.5 Haiku 2,048, 3.7 Sonnet 1,024); LiteLLM's table for Bedrock
/// for the later ones (Sonnet 4.x, Opus 4 and 4.1: 1,024; Haiku 4.5, Opus 4.5 and 4.6:
/// 4,096), which a recorded bisection on Bedrock confirms for Haiku 4.5 (4,096) and Sonnet
/// 4.6 (1,024; Anthropic's own API says 2,048). Bedrock caches no prompt for Claude 3 and 3.5
/// Sonnet (3.5 Sonnet v2 only for the customers of its preview).
const CACHE_MIN_TOKENS: &[(&str, u32)] = &[
    ("anthropic.claude-3-5-haiku-20241022-v1:0", 2_048),
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", 1_024),
    ("anthropic.claude-sonnet-4-20250514-v1:0", 1_024),
    ("anthropic.claude-opus-4-20250514-v1:0", 1_024),
    ("anthropic.claude-opus-4-1-20250805-v1:0", 1_024),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", 1_024),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", 4_096),
    ("anthropic.claude-opus-4-5-20251101-v1:0", 4_096),
    ("anthropic.claude-opus-4-6-v1", 4_096),
    ("anthropic.claude-sonnet-4-6", 1_024),
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

    /// The least cacheable prefix, for a model Bedrock caches prompts for.
    fn cache_min_tokens(&self) -> Option<u32> {
        let entry = CACHE_MIN_TOKENS.iter().find(|(model_id, _)| *model_id == self.base_model_id);
        entry.map(|(_, n_tokens)| *n_tokens)
    }

    /// The answer's usage: the cache counts only for a model with a prompt cache.
    fn usage(&self, completion: &Completion, output_tokens: u32) -> Usage {
        let cache = self.cache_min_tokens().map(|_| completion.cache);
        Usage {
            input_tokens: completion.n_input_tokens,
            cache_creation_input_tokens: cache.map(|cache| cache.write),
            cache_read_input_tokens: cache.map(|cache| cache.read),
            output_tokens,
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

    fn reports_cache_tokens(&self) -> bool {
        self.cache_min_tokens().is_some()
    }

    fn cache_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<CacheRequest, BedrockError> {
        let Some(min_prefix_tokens) = self.cache_min_tokens() else {
            return Ok(CacheRequest::default());
        };
        Ok(CacheRequest { min_prefix_tokens, boundaries: cache_boundaries(body)? })
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
            usage: self.usage(completion, completion.n_output_tokens()),
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
                    usage: self.usage(completion, 1),
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
            _ => StreamEvent::MessageStop {
                invocation_metrics: metrics.map(|metrics| match self.cache_min_tokens() {
                    Some(_) => {
                        StopMetrics::Cache(CacheInvocationMetrics::new(metrics, completion.cache))
                    }
                    None => StopMetrics::Plain(metrics),
                }),
            },
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

/// The usage of an answer; the cache counts only for a model with a prompt cache.
#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u32>,
    output_tokens: u32,
}

/// The invocation metrics of `message_stop`: with the cache counts for a model with a prompt
/// cache.
#[derive(Serialize)]
#[serde(untagged)]
enum StopMetrics {
    Plain(InvocationMetrics),
    Cache(CacheInvocationMetrics),
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
        invocation_metrics: Option<StopMetrics>,
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

/// The block boundaries of the prompt in Anthropic's order (tools, system, messages), each with
/// the tokens and identity of the prefix up to it; checkpoints where a block has
/// `cache_control`. Empty when no block has one; a 400 for more than four.
fn cache_boundaries(body: &Value) -> Result<Vec<CacheBoundary>, BedrockError> {
    let marked = |block: &Value| block.get("cache_control").is_some_and(|marker| !marker.is_null());
    let tools = items(body.get("tools"));
    let system = body.get("system");
    let messages = items(body.get("messages"));
    let contents = messages.iter().filter_map(|message| message.get("content"));
    let n_checkpoints = [tools, items(system)]
        .into_iter()
        .chain(contents.map(|content| items(Some(content))))
        .flatten()
        .filter(|block| marked(block))
        .count();
    if n_checkpoints > MAX_CHECKPOINTS {
        return Err(BedrockError::validation(format!(
            "A maximum of {MAX_CHECKPOINTS} blocks with cache_control may be provided. Found \
             {n_checkpoints}."
        )));
    }
    if n_checkpoints == 0 {
        return Ok(Vec::new());
    }

    let mut prefix = Prefix::default();
    prefix.hasher.tag("tools");
    for tool in tools {
        prefix.block(tool, "", marked(tool));
    }
    prefix.hasher.tag("system");
    prefix.blocks(system);
    for message in messages {
        prefix.hasher.tag(message.get("role").and_then(Value::as_str).unwrap_or_default());
        prefix.blocks(message.get("content"));
    }
    Ok(prefix.boundaries)
}

/// The prompt read so far, for [`cache_boundaries`].
#[derive(Default)]
struct Prefix {
    hasher: PrefixHasher,
    n_tokens: u32,
    boundaries: Vec<CacheBoundary>,
}

impl Prefix {
    /// A string content (one block) or a list of blocks; the text blocks count tokens.
    fn blocks(&mut self, content: Option<&Value>) {
        match content {
            Some(string @ Value::String(text)) => self.block(string, text, false),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    let is_text = block.get("type").and_then(Value::as_str) == Some("text");
                    let text = block.get("text").and_then(Value::as_str).filter(|_| is_text);
                    let marked = block.get("cache_control").is_some_and(|marker| !marker.is_null());
                    self.block(block, text.unwrap_or_default(), marked);
                }
            }
            _ => {}
        }
    }

    fn block(&mut self, block: &Value, text: &str, checkpoint: bool) {
        self.hasher.value(block);
        self.n_tokens = self.n_tokens.saturating_add(n_words(text));
        self.boundaries.push(CacheBoundary {
            n_prefix_tokens: self.n_tokens,
            prefix_hash: self.hasher.finish(),
            checkpoint,
        });
    }
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
    use crate::prompt_cache::CacheUsage;

    const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
    const SONNET_37: &str = "anthropic.claude-3-7-sonnet-20250219-v1:0";

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

    #[test]
    fn cache_breakpoints_and_the_boundaries_before_them() {
        let sonnet = model(SONNET_37).unwrap();
        let marker = json!({"type": "ephemeral"});
        let mut request = body(json!([
            {"role": "user", "content": [
                {"type": "text", "text": "one two", "cache_control": marker},
                {"type": "image", "source": {"type": "base64"}}]},
            {"role": "assistant", "content": "three"},
            {"role": "user", "content": [
                {"type": "text", "text": "four five six", "cache_control": marker}]}]));
        request["system"] = json!([{"type": "text", "text": "be terse", "cache_control": marker}]);
        request["tools"] = json!([{"name": "look_up", "input_schema": {"type": "object"}}]);
        let cache = sonnet.cache_request(SONNET_37, &request).unwrap();
        assert_eq!(cache.min_prefix_tokens, 1_024);
        let boundaries: Vec<(u32, bool)> =
            cache.boundaries.iter().map(|b| (b.n_prefix_tokens, b.checkpoint)).collect();
        // The tool, the system block, two blocks, the assistant's string, the last block.
        assert_eq!(
            boundaries,
            [(0, false), (2, true), (4, true), (4, false), (5, false), (8, true)]
        );
        // The last prefix is the whole input.
        assert_eq!(generate(&parse(SONNET_37, request.clone()).unwrap()).n_input_tokens, 8);
        // Another tool changes every prefix after it.
        let mut other_tool = request.clone();
        other_tool["tools"][0]["name"] = json!("search");
        let other = sonnet.cache_request(SONNET_37, &other_tool).unwrap();
        for (old, new) in cache.boundaries.iter().zip(&other.boundaries) {
            assert_ne!(old.prefix_hash, new.prefix_hash);
        }
        // Moving a breakpoint leaves the prefixes as they were.
        let mut moved = request.clone();
        moved["system"][0].as_object_mut().unwrap().remove("cache_control");
        let moved = sonnet.cache_request(SONNET_37, &moved).unwrap();
        assert_eq!(moved.boundaries[1].prefix_hash, cache.boundaries[1].prefix_hash);
        assert!(!moved.boundaries[1].checkpoint);

        request["messages"][1]["content"] = json!([
            {"type": "text", "text": "a", "cache_control": marker},
            {"type": "text", "text": "b", "cache_control": marker}]);
        assert_eq!(
            sonnet.cache_request(SONNET_37, &request).unwrap_err().message(),
            "A maximum of 4 blocks with cache_control may be provided. Found 5."
        );
        // Bedrock caches no prompt for Claude 3 Haiku.
        let haiku = model(HAIKU).unwrap();
        assert!(!haiku.reports_cache_tokens());
        assert_eq!(haiku.cache_request(HAIKU, &request).unwrap(), CacheRequest::default());
    }

    #[test]
    fn answers_of_a_model_with_a_cache_report_it() {
        let sonnet = model(SONNET_37).unwrap();
        let request = body(json!([{"role": "user", "content": "hello there"}]));
        let mut completion = generate(&parse(SONNET_37, request).unwrap());
        completion.n_input_tokens = 0;
        completion.cache = CacheUsage { read: 2, write: 1 };
        let n_output = completion.n_output_tokens();
        // In the recorded order: input, cache creation, cache read, output.
        let text = String::from_utf8(sonnet.response_body(&completion)).unwrap();
        let usage = format!(
            r#""usage":{{"input_tokens":0,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"output_tokens":{n_output}}}"#
        );
        assert!(text.contains(&usage), "{text}");
        let chunk = |idx, metrics| -> Value {
            serde_json::from_slice(&sonnet.stream_chunk(&completion, idx, metrics)).unwrap()
        };
        assert_eq!(
            chunk(0, None)["message"]["usage"],
            json!({"input_tokens": 0, "cache_creation_input_tokens": 1,
                "cache_read_input_tokens": 2, "output_tokens": 1})
        );
        let metrics = InvocationMetrics {
            input_token_count: 0,
            output_token_count: n_output,
            invocation_latency: 9,
            first_byte_latency: 4,
        };
        let last = sonnet.n_stream_chunks(&completion) - 1;
        assert_eq!(
            chunk(last, Some(metrics))["amazon-bedrock-invocationMetrics"],
            json!({"inputTokenCount": 0, "outputTokenCount": n_output, "invocationLatency": 9,
                "firstByteLatency": 4, "cacheReadInputTokenCount": 2,
                "cacheWriteInputTokenCount": 1})
        );
        // Claude 3 Haiku's answers have no cache counts.
        let haiku = model(HAIKU).unwrap();
        let response: Value = serde_json::from_slice(&haiku.response_body(&completion)).unwrap();
        assert_eq!(response["usage"], json!({"input_tokens": 0, "output_tokens": n_output}));
    }
}
