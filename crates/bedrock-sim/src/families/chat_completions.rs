//! The OpenAI Chat Completions wire shape that Bedrock serves on InvokeModel for several model
//! families (`openai_chat`, `openai_gpt_oss`): the request checks, the chat completion object
//! and the `chat.completion.chunk` stream. A family is a [`ChatCompletionsApi`] (its limits,
//! roles and extra keys) and a list of [`ChatCompletionsModel`]s.
//!
//! Tools (OpenAI's shape; `tools.rs` has the shared rules): `tools` `[{type: "function",
//! function: {name, description?, parameters?, strict?}}]`, `tool_choice` `"auto"`, `"none"`,
//! `"required"` or `{type: "function", function: {name}}`; assistant messages with
//! `tool_calls` (`content` null or absent) and `tool` messages `{tool_call_id, content}`,
//! paired as OpenAI pairs them (OpenAI's wording [U for Bedrock]). A `tool` message's content
//! is part of the seed text; a last `tool` message is answered with text. A call answers
//! `message: {role, content: null, tool_calls: [{id, type: "function", function: {name,
//! arguments}}]}` (a model with inline reasoning keeps it as `content`), `finish_reason`
//! `tool_calls`, ids `call_` and 24 base-62 characters [U: Bedrock's id format for these
//! models]; its stream is the role chunk (and the reasoning), a chunk `delta.tool_calls:
//! [{index: 0, id, type: "function", function: {name, arguments: ""}}]`, one
//! `[{index: 0, function: {arguments: <piece>}}]` per input piece, and the closing chunk with
//! `finish_reason` `tool_calls`. `image_url` parts with base64 `data:` URLs are read by the
//! models marked `accepts_images` (a word and media tokens each, `tools.rs`) and refused by
//! the others.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    NullContent, check_chat_messages, check_extraneous_keys, check_required_keys, message_texts,
    stop_or_length, string_array, u32_value, validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::schema::{Schema, malformed_input};
use crate::tools::{
    IMAGE_MEDIA_TYPES, Media, ToolCall, ToolChoice, ToolPlan, ToolSpec, decode_base64,
    is_valid_tool_name,
};

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
    /// Whether the model reads `image_url` parts; a text-only model refuses them.
    pub(crate) accepts_images: bool,
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

    /// The chunk that opens a call (its id and name), if the answer is one.
    fn n_call_chunks(&self, completion: &Completion) -> usize {
        usize::from(completion.tool_call.is_some())
    }

    /// The images of `message`'s `image_url` parts: base64 `data:` URLs of PNG, JPEG, GIF or
    /// WebP images for a model that reads images [U: the wording of both refusals; Bedrock's
    /// size limit for these models is not known, the simulator sets none].
    fn images(&self, message: &Value) -> Result<Vec<Media>, BedrockError> {
        let parts = message.get("content").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let mut images = Vec::new();
        for part in parts
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("image_url"))
        {
            if !self.accepts_images {
                return Err(BedrockError::validation(format!(
                    "The model {} does not support image input.",
                    self.base_model_id
                )));
            }
            let url =
                part.get("image_url").and_then(|image| image.get("url")).and_then(Value::as_str);
            let bytes = url.and_then(|url| {
                let (media_type, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
                IMAGE_MEDIA_TYPES.contains(&media_type).then_some(data)
            });
            let Some(bytes) = bytes.and_then(decode_base64) else {
                return Err(BedrockError::validation(
                    "Invalid image_url: only base64 data URLs of image/png, image/jpeg, \
                     image/gif or image/webp images are supported.",
                ));
            };
            images.push(Media::new("image", &bytes));
        }
        Ok(images)
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
        check_tool_messages(messages)?;
        let tools = check_tools(body.get("tools"))?;
        let choice = check_tool_choice(body.get("tool_choice"), &tools)?;
        let mut n_media_input_tokens = 0u32;
        let mut texts: Vec<String> = Vec::new();
        for message in messages {
            texts.extend(message_texts(message).into_iter().map(str::to_owned));
            for media in self.images(message)? {
                texts.push(media.seed_word);
                n_media_input_tokens = n_media_input_tokens.saturating_add(media.n_input_tokens);
            }
        }
        let last_role = messages.last().and_then(|message| message.get("role"));
        let answers_tool_results = last_role.and_then(Value::as_str) == Some("tool");
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
            tools: ToolPlan { tools, choice, answers_tool_results },
            thinking: false,
            n_media_input_tokens,
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        // A call has no text: only the reasoning, if the model shows one, is `content`.
        let content = match &completion.tool_call {
            Some(_) if self.reasoning_pieces.is_empty() => None,
            Some(_) => Some(self.content("")),
            None => Some(self.content(&completion.text())),
        };
        let arguments = completion.tool_call.as_ref().map(ToolCall::input_json);
        let tool_calls = completion.tool_call.as_ref().map(|call| {
            [ToolCallObject {
                id: call.id(TOOL_CALL_ID_PREFIX, TOOL_CALL_ID_CHARS),
                kind: "function",
                function: FunctionCall {
                    name: &call.name,
                    arguments: arguments.as_deref().unwrap_or_default(),
                },
            }]
        });
        json_bytes(&ChatCompletion {
            id: completion_id(completion),
            object: "chat.completion",
            created: unix_seconds(),
            model: self.base_model_id,
            choices: [CompletionChoice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: content.as_deref(),
                    tool_calls,
                },
                finish_reason: finish_reason(completion),
            }],
            usage: Usage {
                prompt_tokens: completion.n_input_tokens,
                completion_tokens: completion.n_output_tokens(),
                total_tokens: completion.n_input_tokens + completion.n_output_tokens(),
            },
        })
    }

    /// The role chunk, the reasoning chunks, one chunk per token, then the closing one; a
    /// call has the chunk that opens it (id and name) before its pieces.
    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        self.n_leading_chunks() + self.n_call_chunks(completion) + completion.tokens.len() + 1
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        let n_leading = self.n_leading_chunks() + self.n_call_chunks(completion);
        tokens_after_leading_chunks(completion, n_chunks_sent, n_leading)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let reasoning;
        let call_id;
        let n_leading = self.n_leading_chunks();
        let n_call_chunks = self.n_call_chunks(completion);
        let mut tool_calls = None;
        let (role, content, finish_reason) = match chunk_idx {
            0 => (Some("assistant"), Some(""), None),
            idx if idx < n_leading => {
                let piece = self.reasoning_pieces.get(idx - 1).copied().unwrap_or_default();
                reasoning = format!("<reasoning>{piece}</reasoning>");
                (None, Some(reasoning.as_str()), None)
            }
            idx => match (
                &completion.tool_call,
                (idx - n_leading)
                    .checked_sub(n_call_chunks)
                    .and_then(|token_idx| completion.tokens.get(token_idx)),
            ) {
                (Some(call), _) if idx == n_leading => {
                    call_id = call.id(TOOL_CALL_ID_PREFIX, TOOL_CALL_ID_CHARS);
                    tool_calls = Some([ToolCallDelta {
                        index: 0,
                        id: Some(&call_id),
                        kind: Some("function"),
                        function: FunctionDelta { name: Some(&call.name), arguments: "" },
                    }]);
                    (None, None, None)
                }
                (Some(_), Some(piece)) => {
                    tool_calls = Some([ToolCallDelta {
                        index: 0,
                        id: None,
                        kind: None,
                        function: FunctionDelta { name: None, arguments: piece },
                    }]);
                    (None, None, None)
                }
                (None, Some(token)) => (None, Some(token.as_str()), None),
                (_, None) => (None, None, Some(finish_reason(completion))),
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
                choices: [ChatChunkChoice {
                    index: 0,
                    delta: ChatDelta { role, content, tool_calls },
                    finish_reason,
                }],
                invocation_metrics: metrics,
            }),
            ChunkLayout::Recorded { service_tier } => json_bytes(&RecordedChunk {
                choices: [RecordedChoice {
                    delta: RecordedDelta { content, role, tool_calls },
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
    /// `null` for a call of a model without reasoning.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallObject<'a>; 1]>,
}

/// `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Serialize)]
struct ToolCallObject<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    /// The input's compact JSON text.
    arguments: &'a str,
}

/// A streamed piece of a call: the first with `id`, `type` and `name` (and empty
/// `arguments`), the others with an `arguments` piece only.
#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// The prefix of a call's id and the base-62 characters after it.
const TOOL_CALL_ID_PREFIX: &str = "call_";
const TOOL_CALL_ID_CHARS: usize = 24;

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
    choices: [ChatChunkChoice<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

/// One choice of a [`ChunkLayout::OpenAi`] stream chunk of this family.
#[derive(Serialize)]
struct ChatChunkChoice<'a> {
    index: u32,
    delta: ChatDelta<'a>,
    finish_reason: Option<&'static str>,
}

/// A [`Delta`] that may carry a tool call piece.
#[derive(Serialize)]
struct ChatDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

/// One choice of a [`ChunkLayout::OpenAi`] stream chunk of Jamba's.
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

/// `{"content": "", "role": "assistant"}`, `{"content": "…"}`, `{"tool_calls": […]}` or `{}`.
#[derive(Serialize)]
struct RecordedDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
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

/// `tool_calls` for a call, else `stop` or `length`.
fn finish_reason(completion: &Completion) -> &'static str {
    match completion.tool_call {
        Some(_) => "tool_calls",
        None => stop_or_length(&completion.stop),
    }
}

/// OpenAI's `tools`: `[{type: "function", function: {name, description?, parameters?,
/// strict?}}]`, names `^[a-zA-Z0-9_-]{1,64}$`, in everit's wording.
fn check_tools(tools: Option<&Value>) -> Result<Vec<ToolSpec>, BedrockError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    let Some(items) = tools.as_array() else {
        return Err(malformed_input(&type_mismatch("#/tools", "JSONArray", tools)));
    };
    let mut specs = Vec::new();
    for (idx, tool) in items.iter().enumerate() {
        let pointer = format!("#/tools/{idx}");
        let Some(object) = tool.as_object() else {
            return Err(malformed_input(&type_mismatch(&pointer, "JSONObject", tool)));
        };
        let mut violations = Vec::new();
        check_required_keys(object, &pointer, &["type", "function"], &mut violations);
        check_extraneous_keys(object, &pointer, &["type", "function"], &mut violations);
        finish(&violations, ViolationReport::Counted)?;
        let kind = object.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "function" {
            return Err(malformed_input(&format!(
                "{pointer}/type: {kind} is not a valid enum value"
            )));
        }
        let function = object.get("function").unwrap_or(&Value::Null);
        let function_pointer = format!("{pointer}/function");
        let Some(function) = function.as_object() else {
            return Err(malformed_input(&type_mismatch(&function_pointer, "JSONObject", function)));
        };
        check_required_keys(function, &function_pointer, &["name"], &mut violations);
        let allowed = ["name", "description", "parameters", "strict"];
        check_extraneous_keys(function, &function_pointer, &allowed, &mut violations);
        finish(&violations, ViolationReport::Counted)?;
        let name = function.get("name").and_then(Value::as_str).unwrap_or_default();
        if !is_valid_tool_name(name) {
            return Err(malformed_input(&format!(
                "{function_pointer}/name: string [{name}] does not match pattern \
                 ^[a-zA-Z0-9_-]{{1,64}}$"
            )));
        }
        let input_schema = match function.get("parameters") {
            None => Value::Object(serde_json::Map::new()),
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(other) => {
                return Err(malformed_input(&type_mismatch(
                    &format!("{function_pointer}/parameters"),
                    "JSONObject",
                    other,
                )));
            }
        };
        specs.push(ToolSpec { name: name.to_owned(), input_schema });
    }
    Ok(specs)
}

/// OpenAI's `tool_choice`: `"auto"`, `"none"`, `"required"` or `{type: "function",
/// function: {name}}` naming a defined tool [U: the wording of a choice that names no
/// defined tool].
fn check_tool_choice(
    choice: Option<&Value>,
    tools: &[ToolSpec],
) -> Result<ToolChoice, BedrockError> {
    let choice = match choice {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(malformed_input(&format!(
                    "#/tool_choice: {other} is not a valid enum value"
                )));
            }
        },
        Some(Value::Object(object)) => {
            let name = object
                .get("function")
                .and_then(|function| function.get("name"))
                .and_then(Value::as_str);
            match (object.get("type").and_then(Value::as_str), name) {
                (Some("function"), Some(name)) => ToolChoice::Tool(name.to_owned()),
                _ => {
                    return Err(malformed_input(
                        "#/tool_choice: expected {\"type\": \"function\", \"function\": \
                         {\"name\": ...}}",
                    ));
                }
            }
        }
        Some(other) => {
            return Err(malformed_input(&type_mismatch(
                "#/tool_choice",
                "String or JSONObject",
                other,
            )));
        }
    };
    if let ToolChoice::Tool(name) = &choice
        && !tools.iter().any(|tool| tool.name == *name)
    {
        return Err(BedrockError::validation(format!(
            "Invalid tool_choice: the function {name} is not one of the tools."
        )));
    }
    Ok(choice)
}

/// OpenAI's pairing of calls and results: each `tool` message answers a call of the
/// assistant message before the `tool` messages it follows, and every call of an assistant
/// message that is not the last is answered (OpenAI's wording, with its spelling) [U for
/// Bedrock].
fn check_tool_messages(messages: &[Value]) -> Result<(), BedrockError> {
    let mut open_calls: Vec<String> = Vec::new();
    for (idx, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if role == "tool" {
            let id = message.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
            let Some(position) = open_calls.iter().position(|call| call == id) else {
                return Err(BedrockError::validation(
                    "Invalid parameter: messages with role 'tool' must be a response to a \
                     preceeding message with 'tool_calls'.",
                ));
            };
            open_calls.remove(position);
            continue;
        }
        if !open_calls.is_empty() {
            return Err(BedrockError::validation(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages \
                 responding to each 'tool_call_id'. The following tool_call_ids did not have \
                 response messages: {}",
                open_calls.join(", ")
            )));
        }
        if role == "assistant" && idx + 1 < messages.len() {
            let calls = message.get("tool_calls").and_then(Value::as_array);
            open_calls = calls
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|call| call.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
        }
    }
    Ok(())
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
