//! Mistral AI chat completion (`messages` body): request checks and answer shapes of wire
//! document §4.6 for the models whose Bedrock documentation shows the chat body.
//!
//! Models: `mistral.mistral-large-2407-v1:0`, `mistral.mistral-large-2411-v1:0` and, only through an inference profile,
//! `mistral.pixtral-large-2502-v1:0` (its content may be a list of `text` and `image_url`
//! parts).
//!
//! The choice carries `stop_reason`, the shape of the AWS user guide's response
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-mistral-chat-completion.html>;
//! techthoughts2/pwshBedrock's integration test against Bedrock reads
//! `choices[0].stop_reason`, and the stream parser of bedrock_llm's `MistralChatImplementation`
//! reads each chunk's `choices[0].message.content` and `stop_reason`).
//! No recording of this body's answers from Bedrock exists in the sources searched
//! (OpenLLMetry, OpenInference, LiteLLM, langchain-aws); LiteLLM reads `finish_reason`
//! instead, so the gateway accepts `stop_reason`, `finish_reason` or both (its
//! `mistral_chat` fixtures cover each). The body has no `stop` key (refused as extraneous,
//! as Bedrock refuses it: BerriAI/litellm#5592).
//!
//! Tools (the AWS page above; the shared rules are `tools.rs`):
//! - `tools`: `[{type: "function", function: {name, description?, parameters?}}]`, names
//!   `^[a-zA-Z0-9_-]{1,64}$` (Mistral's own API's wording for a bad name [U for Bedrock]);
//!   `strict` is let through, other keys are refused. The checks past Bedrock's schema are
//!   worded as the model server's pydantic validation words them, like the role check
//!   below [U: the exact wording on Bedrock].
//! - `tool_choice`: `"auto"`, `"any"` (the model must call a tool) or `"none"`; Mistral has no
//!   `"required"` and Bedrock's page no object naming a tool (refused by the schema: a string).
//! - Assistant messages carry `tool_calls: [{id, function: {name, arguments}}]` (`type` and
//!   `index` are let through, as clients send them); `tool` messages `{tool_call_id,
//!   content}`. A `tool` message must follow an assistant message with calls, or another
//!   `tool` message (Mistral's `Unexpected role 'tool' after role '…'`), and an assistant
//!   message's calls are answered by as many `tool` messages (Mistral's `Not the same number
//!   of function calls and responses`) [U: both wordings are Mistral's own API's]. The ids
//!   are not checked: Mistral's own API refuses ids that are not 9 alphanumerics, and
//!   vercel/ai#11802 reports that for Mistral models through Bedrock's Converse, but the AWS
//!   page's own example sends back the 22-character id `v6RMMiRlT7ygYkT4uULjtg`, and the
//!   gateway sends the ids of other families' calls [U].
//! - A `tool` message's content is part of the seed text; a last `tool` message is answered
//!   with text. A call answers `message: {role: "assistant", content: "", tool_calls: [{id,
//!   function: {name, arguments}}]}` and `stop_reason` `tool_calls`; the id is 9 base-62
//!   characters, the format of Mistral's tool call ids.
//! - Streamed, Mistral sends a call whole in one chunk (not argument pieces): the chunk
//!   `message: {role, content: "", tool_calls: [<the whole call>]}`, `stop_reason` null, then
//!   the closing chunk with `content` `""`, `stop_reason` `tool_calls` and the invocation
//!   metrics. The chunks keep the `message` key of this family's text chunks [U: no recorded
//!   Bedrock stream of a call; Mistral's own API names it `delta`, which the gateway reads
//!   too].
//!
//! Images (Pixtral Large only): a user content part `{type: "image_url", image_url: {url}}`
//! or `{type: "image_url", image_url: "<url>"}` (Mistral's chat API takes both), the url a
//! base64 `data:` URL of a PNG, JPEG, GIF or WebP image, at most 10 MB decoded and 8 images a
//! request (Mistral's documented limits, as pwshBedrock's `Test-MistralMedia` and
//! `Invoke-MistralAIChatModel` apply them [U for Bedrock]); each adds a word and `ceil(bytes / 750)` input tokens (`tools.rs`). Parts
//! other than `text` and `image_url` are refused. Mistral Large 2407 and 2411 read no images:
//! an `image_url` part is a ValidationException [U: the wording, the one of the OpenAI-shaped
//! families].

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    NullContent, TextWithStopReason, check_chat_messages, message_texts, stop_or_length, u32_value,
    validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::schema::Schema;
use crate::tools::{
    IMAGE_MEDIA_TYPES, Media, ToolCall, ToolChoice, ToolPlan, ToolSpec, decode_base64,
    is_valid_tool_name,
};

/// The Mistral chat completion family.
pub(crate) struct MistralChat;

const MODELS: &[&str] = &[
    "mistral.mistral-large-2407-v1:0",
    "mistral.mistral-large-2411-v1:0",
    "mistral.pixtral-large-2502-v1:0",
];

/// The models Bedrock serves only through an inference profile.
const PROFILE_ONLY_MODELS: &[&str] = &["mistral.pixtral-large-2502-v1:0"];

/// The models that read `image_url` parts.
const VISION_MODELS: &[&str] = &["mistral.pixtral-large-2502-v1:0"];

/// `max_tokens` when the request gives none, and its largest value.
const DEFAULT_MAX_TOKENS: u32 = 8192;

const MAX_TOKENS_LIMIT: i64 = 8192;

const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

/// The most images of one request, and the most decoded bytes of one image.
const MAX_IMAGES: usize = 8;

const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// The base-62 characters of a tool call's id (no prefix).
const TOOL_CALL_ID_CHARS: usize = 9;

impl Family for MistralChat {
    fn id(&self) -> &'static str {
        "mistral_chat"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn needs_inference_profile(&self, base_model_id: &str) -> bool {
        PROFILE_ONLY_MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        validate_masked(&request_schema(), body, &["messages", "tools"])?;
        let messages = check_messages(body.get("messages"))?;
        check_tool_messages(messages)?;
        let tools = check_tools(body.get("tools"))?;
        let choice = check_tool_choice(body.get("tool_choice"))?;
        let mut texts: Vec<String> = Vec::new();
        let mut n_images = 0usize;
        let mut n_media_input_tokens = 0u32;
        for (idx, message) in messages.iter().enumerate() {
            texts.extend(message_texts(message).into_iter().map(str::to_owned));
            for media in images(base_model_id, idx, message)? {
                n_images += 1;
                texts.push(media.seed_word);
                n_media_input_tokens = n_media_input_tokens.saturating_add(media.n_input_tokens);
            }
        }
        if n_images > MAX_IMAGES {
            return Err(BedrockError::validation(format!(
                "Too many images in request. Max is {MAX_IMAGES}, got {n_images}."
            )));
        }
        let last_role = messages.last().and_then(|message| message.get("role"));
        let answers_tool_results = last_role.and_then(Value::as_str) == Some("tool");
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences: Vec::new(),
            space_before_first_token: false,
            tools: ToolPlan { tools, choice, answers_tool_results },
            thinking: false,
            n_media_input_tokens,
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        let (content, tool_calls) = match &completion.tool_call {
            Some(call) => ("", Some([ToolCallObject::new(call)])),
            None => (text.as_str(), None),
        };
        json_bytes(&ChatChoices {
            choices: [ChatChoice {
                index: 0,
                message: ChatMessage { role: "assistant", content, tool_calls },
                stop_reason: Some(stop_reason(completion)),
            }],
            invocation_metrics: None,
        })
    }

    /// One chunk per token, then an empty one carrying the stop reason; a call is one chunk
    /// holding it whole, then the closing one.
    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        match completion.tool_call {
            Some(_) => 2,
            None => completion.tokens.len() + 1,
        }
    }

    /// A call's chunk carries all its tokens (its input's pieces).
    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        match completion.tool_call {
            Some(_) if n_chunks_sent > 0 => completion.n_output_tokens(),
            Some(_) => 0,
            None => tokens_after_leading_chunks(completion, n_chunks_sent, 0),
        }
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let (content, tool_calls, stop_reason) = match &completion.tool_call {
            Some(call) if chunk_idx == 0 => ("", Some([ToolCallObject::new(call)]), None),
            Some(_) => ("", None, Some(stop_reason(completion))),
            None => {
                let chunk = TextWithStopReason::stream_chunk(completion, chunk_idx);
                (chunk.text, None, chunk.stop_reason)
            }
        };
        json_bytes(&ChatChoices {
            choices: [ChatChoice {
                index: 0,
                message: ChatMessage { role: "assistant", content, tool_calls },
                stop_reason,
            }],
            invocation_metrics: metrics,
        })
    }
}

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct ChatChoices<'a> {
    choices: [ChatChoice<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    stop_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    /// `""` for a call.
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallObject<'a>; 1]>,
}

/// `{"id", "function": {"name", "arguments"}}`, the AWS page's shape of a call.
#[derive(Serialize)]
struct ToolCallObject<'a> {
    id: String,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    /// The input's compact JSON text.
    arguments: String,
}

impl<'a> ToolCallObject<'a> {
    fn new(call: &'a ToolCall) -> Self {
        ToolCallObject {
            id: call.id("", TOOL_CALL_ID_CHARS),
            function: FunctionCall { name: &call.name, arguments: call.input_json() },
        }
    }
}

/// `tool_calls` for a call, else `stop` or `length`.
fn stop_reason(completion: &Completion) -> &'static str {
    match completion.tool_call {
        Some(_) => "tool_calls",
        None => stop_or_length(&completion.stop),
    }
}

/// `messages` and `tools` are lists of objects, checked by hand.
fn request_schema() -> Schema {
    Schema::Object {
        properties: vec![
            ("messages", Schema::String),
            ("tools", Schema::String),
            ("tool_choice", Schema::String),
            ("max_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ],
        required: vec!["messages"],
    }
}

/// Checks the shape of `messages` and the roles, and returns the messages.
fn check_messages(messages: Option<&Value>) -> Result<&[Value], BedrockError> {
    let mut violations = Vec::new();
    let items = match messages {
        Some(Value::Array(items)) if items.is_empty() => {
            violations.push("#/messages: expected minimum item count: 1, found: 0".to_owned());
            &[][..]
        }
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => {
            violations.push(type_mismatch("#/messages", "JSONArray", other));
            &[][..]
        }
        None => &[][..],
    };
    let allowed = ["role", "content", "tool_calls", "tool_call_id"];
    check_chat_messages(
        items,
        &["role", "content"],
        &allowed,
        NullContent::Refused,
        &mut violations,
    );
    finish(&violations, ViolationReport::Counted)?;
    for (idx, message) in items.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(BedrockError::validation(format!(
                "messages.{idx}.role: Input should be 'system', 'user', 'assistant' or 'tool'"
            )));
        }
    }
    Ok(items)
}

/// The `tools`: `[{type: "function", function: {name, description?, parameters?,
/// strict?}}]`.
fn check_tools(tools: Option<&Value>) -> Result<Vec<ToolSpec>, BedrockError> {
    let items = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("tools", "Input should be a valid list")),
    };
    let mut specs = Vec::new();
    for (idx, tool) in items.iter().enumerate() {
        let pointer = format!("tools.{idx}");
        let Some(object) = tool.as_object() else {
            return Err(invalid(&pointer, "Input should be a valid dictionary"));
        };
        check_extra_keys(object, &pointer, &["type", "function"])?;
        match object.get("type") {
            None => {}
            Some(Value::String(kind)) if kind == "function" => {}
            Some(_) => {
                return Err(invalid(&format!("{pointer}.type"), "Input should be 'function'"));
            }
        }
        let pointer = format!("{pointer}.function");
        let function = match object.get("function") {
            Some(Value::Object(function)) => function,
            Some(_) => return Err(invalid(&pointer, "Input should be a valid dictionary")),
            None => return Err(invalid(&pointer, "Field required")),
        };
        check_extra_keys(function, &pointer, &["name", "description", "parameters", "strict"])?;
        let name = match function.get("name") {
            Some(Value::String(name)) => name,
            Some(_) => {
                return Err(invalid(&format!("{pointer}.name"), "Input should be a valid string"));
            }
            None => return Err(invalid(&format!("{pointer}.name"), "Field required")),
        };
        if !is_valid_tool_name(name) {
            return Err(BedrockError::validation(format!(
                "Function name was {name} but must be a-z, A-Z, 0-9, or contain underscores and \
                 dashes, with a maximum length of 64."
            )));
        }
        if function.get("description").is_some_and(|description| !description.is_string()) {
            return Err(invalid(
                &format!("{pointer}.description"),
                "Input should be a valid string",
            ));
        }
        let input_schema = match function.get("parameters") {
            None => Value::Object(serde_json::Map::new()),
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(_) => {
                return Err(invalid(
                    &format!("{pointer}.parameters"),
                    "Input should be a valid dictionary",
                ));
            }
        };
        specs.push(ToolSpec { name: name.clone(), input_schema });
    }
    Ok(specs)
}

/// `tool_choice`: `"auto"`, `"any"` or `"none"` (the schema has checked that it is a string).
fn check_tool_choice(choice: Option<&Value>) -> Result<ToolChoice, BedrockError> {
    match choice.and_then(Value::as_str) {
        None | Some("auto") => Ok(ToolChoice::Auto),
        Some("any") => Ok(ToolChoice::Required),
        Some("none") => Ok(ToolChoice::None),
        Some(_) => Err(invalid("tool_choice", "Input should be 'auto', 'any' or 'none'")),
    }
}

/// The calls of the assistant messages and the `tool` messages answering them (see the
/// module documentation).
fn check_tool_messages(messages: &[Value]) -> Result<(), BedrockError> {
    // The number of calls of the assistant message the `tool` messages now answer, and of
    // those answers so far.
    let mut open_calls: Option<(usize, usize)> = None;
    let mut previous_role: Option<&str> = None;
    for (idx, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if role == "tool" {
            let Some((_, n_results)) = open_calls.as_mut() else {
                return Err(BedrockError::validation(match previous_role {
                    Some(previous) => format!("Unexpected role 'tool' after role '{previous}'"),
                    None => "Unexpected role 'tool' as the first message".to_owned(),
                }));
            };
            *n_results += 1;
        } else {
            check_answered(open_calls.take())?;
            let n_calls = match (role, message.get("tool_calls")) {
                ("assistant", Some(calls)) => check_calls(idx, calls)?,
                _ => 0,
            };
            if n_calls > 0 {
                open_calls = Some((n_calls, 0));
            }
        }
        previous_role = Some(role);
    }
    // Calls in the last message are not answered yet.
    match open_calls {
        Some((_, 0)) | None => Ok(()),
        answered => check_answered(answered),
    }
}

/// As many results as calls.
fn check_answered(open_calls: Option<(usize, usize)>) -> Result<(), BedrockError> {
    match open_calls {
        Some((n_calls, n_results)) if n_calls != n_results => {
            Err(BedrockError::validation("Not the same number of function calls and responses"))
        }
        _ => Ok(()),
    }
}

/// Checks the `tool_calls` of message `message_idx` and returns how many there are.
fn check_calls(message_idx: usize, calls: &Value) -> Result<usize, BedrockError> {
    let pointer = format!("messages.{message_idx}.tool_calls");
    let Some(calls) = calls.as_array() else {
        return Err(invalid(&pointer, "Input should be a valid list"));
    };
    for (call_idx, call) in calls.iter().enumerate() {
        let pointer = format!("{pointer}.{call_idx}");
        let Some(call) = call.as_object() else {
            return Err(invalid(&pointer, "Input should be a valid dictionary"));
        };
        check_extra_keys(call, &pointer, &["id", "type", "index", "function"])?;
        if call.get("id").is_some_and(|id| !id.is_string()) {
            return Err(invalid(&format!("{pointer}.id"), "Input should be a valid string"));
        }
        let pointer = format!("{pointer}.function");
        let function = match call.get("function") {
            Some(Value::Object(function)) => function,
            Some(_) => return Err(invalid(&pointer, "Input should be a valid dictionary")),
            None => return Err(invalid(&pointer, "Field required")),
        };
        check_extra_keys(function, &pointer, &["name", "arguments"])?;
        match function.get("name") {
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(invalid(&format!("{pointer}.name"), "Input should be a valid string"));
            }
            None => return Err(invalid(&format!("{pointer}.name"), "Field required")),
        }
        // Mistral takes the arguments as a JSON text or as the object itself.
        match function.get("arguments") {
            Some(Value::String(_) | Value::Object(_)) => {}
            Some(_) => {
                return Err(invalid(
                    &format!("{pointer}.arguments"),
                    "Input should be a valid string",
                ));
            }
            None => return Err(invalid(&format!("{pointer}.arguments"), "Field required")),
        }
    }
    Ok(calls.len())
}

/// The images of message `message_idx`'s `image_url` parts (see the module documentation).
fn images(
    base_model_id: &str,
    message_idx: usize,
    message: &Value,
) -> Result<Vec<Media>, BedrockError> {
    let Some(parts) = message.get("content").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut images = Vec::new();
    for (part_idx, part) in parts.iter().enumerate() {
        let pointer = format!("messages.{message_idx}.content.{part_idx}");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => continue,
            Some("image_url") => {}
            _ => {
                return Err(invalid(
                    &format!("{pointer}.type"),
                    "Input should be 'text' or 'image_url'",
                ));
            }
        }
        if !VISION_MODELS.contains(&base_model_id) {
            return Err(BedrockError::validation(format!(
                "The model {base_model_id} does not support image input."
            )));
        }
        let url = match part.get("image_url") {
            Some(Value::String(url)) => Some(url.as_str()),
            Some(Value::Object(image)) => image.get("url").and_then(Value::as_str),
            _ => None,
        };
        let data = url.and_then(|url| {
            let (media_type, data) = url.strip_prefix("data:")?.split_once(";base64,")?;
            IMAGE_MEDIA_TYPES.contains(&media_type).then_some(data)
        });
        let Some(bytes) = data.and_then(decode_base64) else {
            return Err(BedrockError::validation(
                "Invalid image_url: only base64 data URLs of image/png, image/jpeg, image/gif \
                 or image/webp images are supported.",
            ));
        };
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(BedrockError::validation(format!(
                "Image is too large: {} bytes, the limit is {MAX_IMAGE_BYTES} bytes.",
                bytes.len()
            )));
        }
        images.push(Media::new("image", &bytes));
    }
    Ok(images)
}

/// A refusal of the value at `pointer` (dotted, as pydantic names it).
fn invalid(pointer: &str, problem: &str) -> BedrockError {
    BedrockError::validation(format!("{pointer}: {problem}"))
}

/// Refuses the first key of `object` (at `pointer`) that is not `allowed`.
fn check_extra_keys(
    object: &serde_json::Map<String, Value>,
    pointer: &str,
    allowed: &[&str],
) -> Result<(), BedrockError> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(invalid(&format!("{pointer}.{key}"), "Extra inputs are not permitted")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const LARGE: &str = "mistral.mistral-large-2407-v1:0";
    const PIXTRAL: &str = "mistral.pixtral-large-2502-v1:0";

    /// The exact input of a call of [`weather_tools`]'s tool.
    const WEATHER_ARGUMENTS: &str = r#"{"days":1,"unit":"celsius"}"#;

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        parse_on(LARGE, body)
    }

    fn parse_on(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        MistralChat.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    /// A tool whose arguments are fixed by its schema (an enum and an integer).
    fn weather_tools() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather",
            "description": "The weather of a city.",
            "parameters": {"type": "object", "properties": {
                "unit": {"type": "string", "enum": ["celsius", "kelvin"]},
                "days": {"type": "integer"}}, "required": ["unit", "days"]}}}])
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn reads_the_message_texts() {
        let body = json!({"messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Describe"}]},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "abc", "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "abc", "content": "42"}],
            "tools": weather_tools(), "tool_choice": "auto", "max_tokens": 30});
        let request = parse(body).unwrap();
        assert_eq!(request.prompt, "Be terse.\nDescribe\n\n42");
        assert_eq!(request.max_tokens, 30);
        assert!(request.tools.answers_tool_results);
        assert_eq!(request.tools.tools[0].name, "get_weather");
        assert_eq!(
            parse(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap().max_tokens,
            8192
        );
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(
            parse(json!({"prompt": "<s>[INST] hi [/INST]"})).unwrap_err(),
            "Malformed input request: 2 schema violations found, please reformat your input and \
             try again."
        );
        assert_eq!(
            parse(json!({"messages": []})).unwrap_err(),
            "Malformed input request: #/messages: expected minimum item count: 1, found: 0, \
             please reformat your input and try again."
        );
        assert_eq!(
            parse(json!({"messages": [{"role": "robot", "content": "x"}]})).unwrap_err(),
            "messages.0.role: Input should be 'system', 'user', 'assistant' or 'tool'"
        );
        assert!(
            parse(json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a"]}))
                .unwrap_err()
                .contains("extraneous key [stop]")
        );
        assert!(
            parse(json!({"messages": [{"role": "user", "content": "x"}], "top_p": 2})).is_err()
        );
    }

    #[test]
    fn answer_and_stream_shapes() {
        let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 1});
        let completion = generate(&parse(body).unwrap());
        let response = text(MistralChat.response_body(&completion));
        assert_eq!(
            response,
            format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"stop_reason":"length"}}]}}"#,
                completion.text()
            )
        );
        let last = text(MistralChat.stream_chunk(&completion, 1, None));
        assert_eq!(
            last,
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":""},"stop_reason":"length"}]}"#
        );
    }

    #[test]
    fn a_tool_call_whole_and_streamed() {
        let body = json!({"messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": weather_tools(), "max_tokens": 1});
        let request = parse(body).unwrap();
        assert_eq!(request.tools.choice, ToolChoice::Auto);
        let completion = generate(&request);
        let call = completion.tool_call.clone().unwrap();
        let id = call.id("", TOOL_CALL_ID_CHARS);
        assert_eq!(id.len(), 9);
        assert!(id.bytes().all(|byte| byte.is_ascii_alphanumeric()));
        assert_eq!(id, "nNkuI4O4e");
        assert_eq!(call.input_json(), WEATHER_ARGUMENTS);
        let call_json = format!(
            r#"{{"id":"{id}","function":{{"name":"get_weather","arguments":"{{\"days\":1,\"unit\":\"celsius\"}}"}}}}"#
        );
        assert_eq!(
            text(MistralChat.response_body(&completion)),
            format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"","tool_calls":[{call_json}]}},"stop_reason":"tool_calls"}}]}}"#
            )
        );

        // The call whole in one chunk, then the closing chunk with the metrics.
        assert_eq!(MistralChat.n_stream_chunks(&completion), 2);
        assert_eq!(
            text(MistralChat.stream_chunk(&completion, 0, None)),
            format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"","tool_calls":[{call_json}]}},"stop_reason":null}}]}}"#
            )
        );
        let metrics = InvocationMetrics {
            input_token_count: completion.n_input_tokens,
            output_token_count: completion.n_output_tokens(),
            invocation_latency: 9,
            first_byte_latency: 3,
        };
        assert_eq!(
            text(MistralChat.stream_chunk(&completion, 1, Some(metrics))),
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":""},"stop_reason":"tool_calls"}],"amazon-bedrock-invocationMetrics":{"inputTokenCount":3,"outputTokenCount":2,"invocationLatency":9,"firstByteLatency":3}}"#
        );
        assert_eq!(MistralChat.n_stream_tokens_sent(&completion, 0), 0);
        assert_eq!(MistralChat.n_stream_tokens_sent(&completion, 1), 2);
        assert_eq!(MistralChat.n_stream_tokens_sent(&completion, 2), 2);
    }

    #[test]
    fn the_round_trip_answers_with_text() {
        let body = json!({"messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "nNkuI4O4e",
                "function": {"name": "get_weather", "arguments": WEATHER_ARGUMENTS}}]},
            {"role": "tool", "tool_call_id": "nNkuI4O4e", "content": "sunny"}],
            "tools": weather_tools(), "tool_choice": "any"});
        let request = parse(body).unwrap();
        assert_eq!(request.prompt, "weather in Paris?\n\nsunny");
        let completion = generate(&request);
        assert_eq!(completion.tool_call, None);
        assert_eq!(
            text(MistralChat.response_body(&completion)),
            format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"stop_reason":"stop"}}]}}"#,
                completion.text()
            )
        );
        // Ids of other families' calls are read too.
        let foreign = json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [{"id":
                "toolu_bdrk_01A2b3C4d5E6f7G8h9I0j1K2", "function": {"name": "get_weather",
                "arguments": {"unit": "kelvin", "days": 2}}}]},
            {"role": "tool", "tool_call_id": "toolu_bdrk_01A2b3C4d5E6f7G8h9I0j1K2",
                "content": "cold"},
            {"role": "user", "content": "And tomorrow?"}],
            "tools": weather_tools()});
        let request = parse(foreign).unwrap();
        assert!(!request.tools.answers_tool_results);
        assert_eq!(request.prompt, "x\nChecking.\ncold\nAnd tomorrow?");
        assert!(generate(&request).tool_call.is_some());
    }

    #[test]
    fn tool_choice_any_and_none() {
        let with_choice = |choice: &str| {
            parse(json!({"messages": [{"role": "user", "content": "weather?"}],
                "tools": weather_tools(), "tool_choice": choice}))
        };
        let any = with_choice("any").unwrap();
        assert_eq!(any.tools.choice, ToolChoice::Required);
        let completion = generate(&any);
        assert_eq!(completion.tool_call.unwrap().name, "get_weather");

        let none = with_choice("none").unwrap();
        assert_eq!(none.tools.choice, ToolChoice::None);
        let completion = generate(&none);
        assert_eq!(completion.tool_call, None);
        assert_eq!(
            text(MistralChat.response_body(&completion)),
            format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"stop_reason":"stop"}}]}}"#,
                completion.text()
            )
        );
        assert_eq!(
            with_choice("required").unwrap_err(),
            "tool_choice: Input should be 'auto', 'any' or 'none'"
        );
        assert!(
            parse(json!({"messages": [{"role": "user", "content": "x"}], "tool_choice":
                {"type": "function", "function": {"name": "get_weather"}}, "tools":
                weather_tools()}))
            .unwrap_err()
            .contains("#/tool_choice: expected type: String, found: JSONObject")
        );
        // "any" without tools: nothing to call.
        let no_tools =
            json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "any"});
        assert_eq!(generate(&parse(no_tools).unwrap()).tool_call, None);
    }

    #[test]
    fn tool_checks() {
        let with_tools = |tools: Value| {
            parse(json!({"messages": [{"role": "user", "content": "x"}], "tools": tools}))
        };
        assert_eq!(
            with_tools(json!([{"type": "function", "function": {"name": "get weather"}}]))
                .unwrap_err(),
            "Function name was get weather but must be a-z, A-Z, 0-9, or contain underscores \
             and dashes, with a maximum length of 64."
        );
        assert_eq!(
            with_tools(json!([{"type": "web_search"}])).unwrap_err(),
            "tools.0.type: Input should be 'function'"
        );
        assert_eq!(
            with_tools(json!([{"type": "function"}])).unwrap_err(),
            "tools.0.function: Field required"
        );
        assert_eq!(
            with_tools(json!([{"type": "function", "function": {"name": "a", "parameters": []}}]))
                .unwrap_err(),
            "tools.0.function.parameters: Input should be a valid dictionary"
        );
        assert_eq!(
            with_tools(json!([{"type": "function", "function": {"name": "a", "extra": 1}}]))
                .unwrap_err(),
            "tools.0.function.extra: Extra inputs are not permitted"
        );
        assert_eq!(with_tools(json!({"a": 1})).unwrap_err(), "tools: Input should be a valid list");
        let request = with_tools(json!([{"function": {"name": "a", "strict": true}}])).unwrap();
        assert_eq!(
            request.tools.tools,
            vec![ToolSpec { name: "a".to_owned(), input_schema: json!({}) }]
        );

        let orphan = json!({"messages": [{"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "abcDEF123", "content": "42"}]});
        assert_eq!(parse(orphan).unwrap_err(), "Unexpected role 'tool' after role 'user'");
        let call = |id: &str| json!({"id": id, "function": {"name": "a", "arguments": "{}"}});
        let unanswered = json!({"messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "content": "", "tool_calls": [call("abcDEF123"),
                call("ghiJKL456")]},
            {"role": "tool", "tool_call_id": "abcDEF123", "content": "42"},
            {"role": "user", "content": "y"}]});
        assert_eq!(
            parse(unanswered).unwrap_err(),
            "Not the same number of function calls and responses"
        );
        // Calls in the last message are not answered yet.
        let last = json!({"messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "content": "", "tool_calls": [call("abcDEF123")]}]});
        assert!(parse(last).is_ok());
        let no_function = json!({"messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "abcDEF123"}]}]});
        assert_eq!(
            parse(no_function).unwrap_err(),
            "messages.1.tool_calls.0.function: Field required"
        );
    }

    #[test]
    fn images_on_pixtral_only() {
        let body = |image_url: Value| {
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "what?"},
                {"type": "image_url", "image_url": image_url}]}]})
        };
        let png = format!("data:image/png;base64,{}", "QUJD".repeat(500));
        let request = parse_on(PIXTRAL, body(json!({"url": png}))).unwrap();
        assert_eq!(request.n_media_input_tokens, 2);
        let seed_word = Media::new("image", "ABC".repeat(500).as_bytes()).seed_word;
        assert_eq!(request.prompt, format!("what?\n{seed_word}"));
        assert_eq!(generate(&request).n_input_tokens, 1 + 1 + 2);
        // The url as a plain string, as Mistral's chat API allows.
        assert_eq!(parse_on(PIXTRAL, body(json!(png))).unwrap(), request);

        assert_eq!(
            parse_on(LARGE, body(json!({"url": png}))).unwrap_err(),
            "The model mistral.mistral-large-2407-v1:0 does not support image input."
        );
        assert_eq!(
            parse_on(PIXTRAL, body(json!({"url": "https://example.com/cat.png"}))).unwrap_err(),
            "Invalid image_url: only base64 data URLs of image/png, image/jpeg, image/gif or \
             image/webp images are supported."
        );
        assert_eq!(
            parse_on(PIXTRAL, body(json!({"url": "data:image/bmp;base64,QUJD"}))).unwrap_err(),
            "Invalid image_url: only base64 data URLs of image/png, image/jpeg, image/gif or \
             image/webp images are supported."
        );
        let huge = format!("data:image/png;base64,{}", "QUJD".repeat(MAX_IMAGE_BYTES / 3 + 1));
        assert_eq!(
            parse_on(PIXTRAL, body(json!({"url": huge}))).unwrap_err(),
            "Image is too large: 10485762 bytes, the limit is 10485760 bytes."
        );
        let nine: Vec<Value> =
            (0..9).map(|_| json!({"type": "image_url", "image_url": {"url": png}})).collect();
        assert_eq!(
            parse_on(PIXTRAL, json!({"messages": [{"role": "user", "content": nine}]}))
                .unwrap_err(),
            "Too many images in request. Max is 8, got 9."
        );
        assert_eq!(
            parse_on(
                PIXTRAL,
                json!({"messages": [{"role": "user", "content": [{"type":
                "input_audio"}]}]})
            )
            .unwrap_err(),
            "messages.0.content.0.type: Input should be 'text' or 'image_url'"
        );
    }
}
