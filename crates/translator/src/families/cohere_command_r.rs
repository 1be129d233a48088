//! Cohere Command R and Command R+: `cohere.command-r-v*` and `cohere.command-r-plus-v*`
//! model ids.
//!
//! The request is Cohere's chat body, `{"message", "chat_history": [{"role", "message"}],
//! "preamble", "max_tokens", "temperature", "p", "k", "stop_sequences", "seed"}`; the answer
//! is `text` with `finish_reason` (wire reference §4.8).
//!
//! Decisions:
//! - `message` is the last user message. Every turn before it goes to `chat_history` with
//!   the roles `USER` and `CHATBOT`, and the system prompt is the `preamble`. A plain
//!   `prompt` is the `message` alone.
//! - The chat API answers the last user message and cannot continue an assistant message:
//!   a conversation that ends with one is refused as unsupported.
//! - This family honours `seed` (best-effort determinism, as Cohere documents it).
//! - There is no `stream` flag in this body: the operation alone selects streaming.
//! - Usage is left to Bedrock's token-count headers (or a stream's invocation metrics)
//!   rather than `meta.billed_units`, which AWS documents for streams only and which counts
//!   Cohere's billed units, not necessarily the tokens Bedrock meters.
//! - `max_tokens` is not range-checked here (its documented limit is not confirmed);
//!   Bedrock rejects an excess with a validation error.
//! - Stream chunks: no recording of a Bedrock Command R stream was found. Cohere's own
//!   Bedrock client reads them as Cohere chat-stream events and types them as
//!   `{"event_type": "text-generation", "text", "is_finished"}` and
//!   `{"event_type": "stream-end", "is_finished", "finish_reason"}` with the invocation
//!   metrics on `stream-end` (cohere-ai/cohere-python `src/cohere/aws_client.py`), which is
//!   the shape the simulator sends. So only `text-generation` events carry text;
//!   `stream-end` carries the stop reason and repeats the whole answer in `response`,
//!   which is not added again; `stream-start`, citation, search and tool events are known
//!   and carry nothing. The other plausible shapes are read too: event objects without
//!   `event_type` (`text`, `is_finished`, `finish_reason`), a chat-completions-like chunk
//!   (`choices[0].delta.content`, `choices[0].finish_reason`), and the `generations` list
//!   that AWS's Python example reads from each chunk (awsdocs/aws-doc-sdk-examples
//!   `python/example_code/bedrock-runtime/models/cohere_command/command_r_invoke_model_with_response_stream.py`).
//!   Any other chunk with nothing to read is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, like `ERROR_TOXIC`.
//!
//! Tools (AWS user guide, "Cohere Command R and Command R+ models": `tools`,
//! `tool_results`; the answer's and the events' shapes are Cohere's v1 chat API types,
//! cohere-ai/cohere-python `src/cohere/types/` `tool_call.py`, `tool_result.py`,
//! `tool_parameter_definitions_value.py`, `streamed_chat_response.py`):
//! - `tools` is `[{name, description, parameter_definitions: {<param>: {description, type,
//!   required}}}]`. `parameter_definitions` is read from the JSON Schema's top-level
//!   `properties` and `required`; `type` is a Python type name, as Cohere asks: `string`
//!   `str`, `integer` `int`, `number` `float`, `boolean` `bool`, and an array of one of
//!   these `List[str]` (...). Any other property (an object, an array of objects, a union,
//!   no `type`) cannot be expressed and the request is refused with `invalid_request`
//!   naming the tool and the property. A tool without a description gets `""` (Cohere's
//!   `description` is required). No properties: no `parameter_definitions`.
//! - `tool_results` are the tool results of the last (user) message, each `{call: {name,
//!   parameters}, outputs: [...]}`: the call is found by the result's `tool_use_id` among
//!   the tool calls of the earlier assistant messages (the latest one of that id), and its
//!   name and input are sent. `outputs` is `[<the result>]` when the result is a JSON
//!   object, else `[{"text": <result>}]`, and `[{"error": <result>}]` for an error result
//!   (Cohere has no error flag [U]). `message` is then the last message's text, often `""`.
//! - Bedrock's documented `chat_history` turns hold only `role` and `message` (and the
//!   simulator refuses anything else), so earlier tool calls and results are not sent
//!   (Cohere's own API has `tool_calls` on `CHATBOT` turns and `TOOL` turns [U] on
//!   Bedrock); a turn that holds only tool parts is left out of the history.
//! - Tool choice: Bedrock's body documents none, so `auto` (or none given) sends the tools,
//!   `none` sends no `tools` (tool results are still sent [U]), and `required` or a named
//!   tool is refused as unsupported.
//! - The answer's calls are `tool_calls: [{name, parameters}]` with `finish_reason`
//!   `COMPLETE` and a `text` that may be empty: `COMPLETE` with calls is a `tool_use` stop.
//!   Cohere's calls have no id: the gateway names them `cohere_call_<n>`, `n` counting the
//!   answer's calls from 0. Such ids are unique within one answer only; a tool result names
//!   the latest earlier call of its id, which is the call it answers when results follow
//!   the answer that made the calls.
//! - Stream: a `tool-calls-generation` event carries the calls whole, `{tool_calls, text}`;
//!   each call is one tool-call piece of the event (index `n`, id `cohere_call_<n>`, name
//!   and the parameters' compact JSON), `n` counting the event's calls from 0, as in the
//!   whole answer. `tool-calls-chunk` events (Cohere's partial calls) are known and carry nothing, so
//!   the calls are not given twice [U: which of the two Bedrock sends]; the tool plan
//!   `text` of both is not answer text. `stream-end` is a `tool_use` stop when its
//!   `response` holds `tool_calls` and the finish reason is `COMPLETE`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, convert_chat_finish_reason, decode_guarded_response, finish_stream_event,
    parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{
    Content, Conversation, Param, Part, Role, StopReason, StreamEvent, Tool, ToolCall,
    ToolCallDelta, ToolChoice, UnifiedRequest, UnifiedResponse, Usage,
};

/// The Cohere Command R family.
#[derive(Debug, Clone, Copy)]
pub struct CohereCommandR;

const ID: &str = "cohere_command_r";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct CommandRRequest<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    chat_history: Vec<CommandRTurn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preamble: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<CommandRTool<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_results: Vec<CommandRToolResult<'a>>,
}

#[derive(Debug, Serialize)]
struct CommandRTurn<'a> {
    role: &'static str,
    message: &'a str,
}

#[derive(Debug, Serialize)]
struct CommandRTool<'a> {
    name: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    parameter_definitions: BTreeMap<&'a str, ParameterDefinition<'a>>,
}

#[derive(Debug, Serialize)]
struct ParameterDefinition<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(rename = "type")]
    python_type: &'static str,
    required: bool,
}

#[derive(Debug, Serialize)]
struct CommandRToolResult<'a> {
    call: CommandRCall<'a>,
    outputs: Vec<Value>,
}

#[derive(Debug, Serialize)]
struct CommandRCall<'a> {
    name: &'a str,
    parameters: &'a Value,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
struct CommandRResponse {
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CommandRToolCall>>,
}

/// One tool call of an answer or a `tool-calls-generation` event.
#[derive(Debug, Deserialize)]
struct CommandRToolCall {
    name: String,
    #[serde(default)]
    parameters: Option<Value>,
}

/// One decoded stream chunk: a chat-stream event (`stream-start`, `text-generation`,
/// `stream-end`, ...), an event object without `event_type`, a chat-completions-like
/// chunk (`choices`) or a `generations` list.
#[derive(Debug, Deserialize)]
struct CommandRStreamChunk {
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    is_finished: Option<bool>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChatChunkChoice>>,
    #[serde(default)]
    generations: Option<Vec<CommandRGeneration>>,
    /// On `tool-calls-generation`.
    #[serde(default)]
    tool_calls: Option<Vec<CommandRToolCall>>,
    /// On `stream-end`: the whole answer.
    #[serde(default)]
    response: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChatChunkChoice {
    #[serde(default)]
    delta: Option<ChatChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatChunkDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommandRGeneration {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// The `event_type`s of Cohere's chat stream; only `text-generation` carries answer text
/// and only `stream-end` the stop reason.
const STREAM_EVENT_TYPES: &[&str] = &[
    "stream-start",
    "text-generation",
    "citation-generation",
    "search-queries-generation",
    "search-results",
    "tool-calls-generation",
    "tool-calls-chunk",
    "stream-end",
];

impl TextFamily for CohereCommandR {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("cohere.command-r-v")
            || base_model_id.starts_with("cohere.command-r-plus-v")
    }

    fn params(&self) -> &'static [Param] {
        &[
            Param::MaxTokens,
            Param::Temperature,
            Param::TopP,
            Param::TopK,
            Param::Stop,
            Param::Seed,
            Param::Tools,
        ]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "message",
            "chat_history",
            "preamble",
            "max_tokens",
            "temperature",
            "p",
            "k",
            "stop_sequences",
            "seed",
            "tools",
            "tool_results",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.01..=0.99)?;
        check_range(ID, "top_k", req.top_k.map(f64::from), 0.0..=500.0)?;
        let conversation = req.conversation();
        to_body(ID, &convert_request(req, &conversation)?)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunks have no counts of their own, so the invocation metrics are the usage.
        let GuardedChunk { mut chunk, usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<CommandRStreamChunk>(ID, chunk)?;
        let event_type = chunk.event_type.as_deref();
        let tool_calls = match event_type {
            Some("tool-calls-generation") => stream_tool_calls(chunk.tool_calls.take()),
            _ => Vec::new(),
        };
        let ends_with_tool_calls = event_type == Some("stream-end")
            && chunk
                .response
                .as_ref()
                .and_then(|response| response.get("tool_calls"))
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty());
        let (known, text, mut stop_reason) = decode_chunk(chunk);
        if ends_with_tool_calls && stop_reason == Some(StopReason::EndTurn) {
            stop_reason = Some(StopReason::ToolUse);
        }
        let event = StreamEvent {
            unrecognized: false,
            text: text.unwrap_or_default(),
            stop_reason,
            usage,
            tool_calls,
            ..Default::default()
        };
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// Whether a chunk is of a known shape, its text and its stop reason.
fn decode_chunk(chunk: CommandRStreamChunk) -> (bool, Option<String>, Option<StopReason>) {
    if let Some(choices) = chunk.choices {
        let Some(first) = choices.into_iter().next() else {
            return (true, None, None);
        };
        let text = first.delta.and_then(|delta| delta.content);
        return (true, text, first.finish_reason.as_deref().map(convert_chat_finish_reason));
    }
    if let Some(generations) = chunk.generations {
        let Some(first) = generations.into_iter().next() else {
            return (true, None, None);
        };
        let stop_reason =
            first.finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason);
        return (true, first.text, Some(stop_reason));
    }
    let is_end = chunk.event_type.as_deref() == Some("stream-end")
        || chunk.is_finished == Some(true)
        || chunk.finish_reason.is_some();
    let stop_reason = is_end
        .then(|| chunk.finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason));
    match chunk.event_type.as_deref() {
        Some(event_type) => {
            let text = (event_type == "text-generation").then_some(chunk.text).flatten();
            (STREAM_EVENT_TYPES.contains(&event_type), text, stop_reason)
        }
        // Without an event type, text counts unless it is the repeat on the last chunk.
        None => {
            let known = chunk.text.is_some() || chunk.is_finished.is_some() || is_end;
            let text = (chunk.is_finished != Some(true)).then_some(chunk.text).flatten();
            (known, text, stop_reason)
        }
    }
}

/// The id the gateway gives the `n`-th tool call of an answer (Cohere's calls have none).
fn call_id(n: usize) -> String {
    format!("cohere_call_{n}")
}

/// The compact JSON text of a call's parameters (`{}` when there are none).
fn parameters_json(parameters: Option<Value>) -> String {
    parameters.unwrap_or_else(|| Value::Object(serde_json::Map::new())).to_string()
}

/// The tool-call pieces of a `tool-calls-generation` event: each call whole, in order.
fn stream_tool_calls(calls: Option<Vec<CommandRToolCall>>) -> Vec<ToolCallDelta> {
    calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(n, call)| ToolCallDelta {
            index: u32::try_from(n).unwrap_or(u32::MAX),
            id: Some(call_id(n)),
            name: Some(call.name),
            arguments: parameters_json(call.parameters),
        })
        .collect()
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: CommandRResponse = parse_body(ID, body)?;
    let tool_calls: Vec<ToolCall> = res
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(n, call)| ToolCall {
            id: call_id(n),
            name: call.name,
            input: call.parameters.unwrap_or_else(|| Value::Object(serde_json::Map::new())),
        })
        .collect();
    let mut stop_reason =
        res.finish_reason.as_deref().map_or(StopReason::Other, convert_finish_reason);
    if !tool_calls.is_empty() && stop_reason == StopReason::EndTurn {
        stop_reason = StopReason::ToolUse;
    }
    Ok(UnifiedResponse {
        text: res.text,
        stop_reason,
        usage: Usage::default(),
        tool_calls,
        ..Default::default()
    })
}

fn convert_request<'a>(
    req: &'a UnifiedRequest,
    conversation: &'a Conversation<'a>,
) -> Result<CommandRRequest<'a>, TranslateError> {
    let Some(((Role::User, message), history)) = conversation.turns.split_last() else {
        return Err(TranslateError::Unsupported {
            family: ID,
            feature: "a conversation that ends with an `assistant` message".to_owned(),
        });
    };
    // The turns are the non-system messages in order (none for a plain `prompt`).
    let turn_messages: Vec<&Content> =
        req.messages.iter().filter(|m| m.role != Role::System).map(|m| &m.content).collect();
    let tools = match req.tool_choice {
        Some(ToolChoice::Required | ToolChoice::Tool(_)) => {
            return Err(TranslateError::Unsupported {
                family: ID,
                feature: "a `tool_choice` of `required` or a named tool (Command R on Bedrock \
                          has no tool choice)"
                    .to_owned(),
            });
        }
        Some(ToolChoice::None) => Vec::new(),
        Some(ToolChoice::Auto) | None => {
            req.tools.iter().map(convert_tool).collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok(CommandRRequest {
        message,
        chat_history: history
            .iter()
            .enumerate()
            .filter(|(i, (_, message))| {
                !(message.is_empty() && turn_messages.get(*i).is_some_and(|c| has_tool_part(c)))
            })
            .map(|(_, (role, message))| CommandRTurn {
                role: if *role == Role::Assistant { "CHATBOT" } else { "USER" },
                message,
            })
            .collect(),
        preamble: conversation.system.as_deref(),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        p: req.top_p,
        k: req.top_k,
        stop_sequences: &req.stop,
        seed: req.seed,
        tools,
        tool_results: last_tool_results(req)?,
    })
}

fn has_tool_part(content: &Content) -> bool {
    matches!(content, Content::Parts(parts)
        if parts.iter().any(|p| matches!(p, Part::ToolUse { .. } | Part::ToolResult { .. })))
}

/// The tool results of the last message, each with the call it answers.
fn last_tool_results(req: &UnifiedRequest) -> Result<Vec<CommandRToolResult<'_>>, TranslateError> {
    let Some((last, earlier)) = req.messages.split_last() else {
        return Ok(Vec::new());
    };
    let Content::Parts(parts) = &last.content else {
        return Ok(Vec::new());
    };
    let mut results = Vec::new();
    for part in parts {
        let Part::ToolResult { tool_use_id, content, is_error } = part else { continue };
        let call = earlier
            .iter()
            .rev()
            .filter_map(|message| match &message.content {
                Content::Parts(parts) => Some(parts),
                Content::Text(_) => None,
            })
            .flat_map(|parts| parts.iter().rev())
            .find_map(|part| match part {
                Part::ToolUse { id, name, input } if id == tool_use_id => {
                    Some(CommandRCall { name, parameters: input })
                }
                _ => None,
            });
        let Some(call) = call else {
            return Err(TranslateError::InvalidRequest(format!(
                "tool result `{tool_use_id}` answers no earlier tool call"
            )));
        };
        results.push(CommandRToolResult { call, outputs: tool_outputs(content, *is_error) });
    }
    Ok(results)
}

/// A tool result as Cohere's `outputs`: the JSON object it is, or its text.
fn tool_outputs(content: &str, is_error: bool) -> Vec<Value> {
    if is_error {
        return vec![serde_json::json!({"error": content})];
    }
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(object)) => vec![Value::Object(object)],
        _ => vec![serde_json::json!({"text": content})],
    }
}

/// A tool with its JSON Schema as Cohere's `parameter_definitions`.
fn convert_tool(tool: &Tool) -> Result<CommandRTool<'_>, TranslateError> {
    let refuse = |why: String| {
        TranslateError::InvalidRequest(format!(
            "the parameters of tool `{}` cannot be expressed for the {ID} model family: {why}; \
             it takes top-level properties of type string, integer, number or boolean, or \
             arrays of those",
            tool.name
        ))
    };
    let schema = &tool.parameters;
    if let Some(kind) = schema.get("type")
        && kind != "object"
    {
        return Err(refuse(format!("the schema's `type` is {kind}, not \"object\"")));
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = match schema.get("properties") {
        None => return Ok(CommandRTool::new(tool, BTreeMap::new())),
        Some(Value::Object(properties)) => properties,
        Some(_) => return Err(refuse("`properties` is not an object".to_owned())),
    };
    let mut definitions = BTreeMap::new();
    for (name, property) in properties {
        let Some(python_type) = python_type(property) else {
            return Err(refuse(format!(
                "property `{name}` is not of a simple type or an array of one"
            )));
        };
        definitions.insert(
            name.as_str(),
            ParameterDefinition {
                description: property.get("description").and_then(Value::as_str),
                python_type,
                required: required.contains(&name.as_str()),
            },
        );
    }
    Ok(CommandRTool::new(tool, definitions))
}

impl<'a> CommandRTool<'a> {
    fn new(
        tool: &'a Tool,
        parameter_definitions: BTreeMap<&'a str, ParameterDefinition<'a>>,
    ) -> CommandRTool<'a> {
        CommandRTool {
            name: &tool.name,
            description: tool.description.as_deref().unwrap_or(""),
            parameter_definitions,
        }
    }
}

/// The Python type name Cohere wants for a property's schema, if it has one.
fn python_type(property: &Value) -> Option<&'static str> {
    let simple = |schema: &Value| match schema.get("type").and_then(Value::as_str) {
        Some("string") => Some("str"),
        Some("integer") => Some("int"),
        Some("number") => Some("float"),
        Some("boolean") => Some("bool"),
        _ => None,
    };
    if property.get("type").and_then(Value::as_str) != Some("array") {
        return simple(property);
    }
    match simple(property.get("items")?)? {
        "str" => Some("List[str]"),
        "int" => Some("List[int]"),
        "float" => Some("List[float]"),
        _ => Some("List[bool]"),
    }
}

/// AWS's documentation spells the values in lower case, the API in upper case.
fn convert_finish_reason(finish_reason: &str) -> StopReason {
    match finish_reason.to_ascii_uppercase().as_str() {
        "COMPLETE" => StopReason::EndTurn,
        // ERROR_LIMIT: the model's context length cut the answer off.
        "MAX_TOKENS" | "ERROR_LIMIT" => StopReason::MaxTokens,
        "STOP_SEQUENCE" => StopReason::StopSequence,
        "ERROR_TOXIC" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::cohere_command_r::CohereCommandR;
    use crate::unified::{
        Content, Message, Part, Role, StopReason, Tool, ToolCall, ToolCallDelta, ToolChoice,
        UnifiedRequest,
    };

    fn message(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    fn tool(name: &str, parameters: serde_json::Value) -> Tool {
        Tool { name: name.to_owned(), description: Some("d".to_owned()), parameters }
    }

    #[test]
    fn json_schema_becomes_parameter_definitions() {
        let req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            tools: vec![tool(
                "f",
                json!({"type": "object", "required": ["n"], "properties": {
                    "n": {"type": "number", "description": "A number."},
                    "flags": {"type": "array", "items": {"type": "boolean"}},
                    "ids": {"type": "array", "items": {"type": "integer"}}}}),
            )],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&CohereCommandR, &req).unwrap();
        assert_eq!(
            body,
            json!({"message": "hi", "tools": [{"name": "f", "description": "d",
                "parameter_definitions": {
                    "flags": {"type": "List[bool]", "required": false},
                    "ids": {"type": "List[int]", "required": false},
                    "n": {"type": "float", "description": "A number.", "required": true}}}]})
        );
    }

    #[test]
    fn schemas_that_cannot_be_expressed_are_refused_naming_the_tool() {
        for parameters in [
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object"}}}}),
            json!({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}}),
            json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}),
            json!({"type": "array"}),
            json!({"properties": []}),
        ] {
            let req = UnifiedRequest {
                prompt: Some("hi".to_owned()),
                tools: vec![tool("odd_tool", parameters.clone())],
                ..UnifiedRequest::default()
            };
            let err = crate::encode_text_request(&CohereCommandR, &req).unwrap_err();
            assert!(
                matches!(&err, TranslateError::InvalidRequest(m) if m.contains("tool `odd_tool`")),
                "{parameters}: {err:?}"
            );
        }
    }

    #[test]
    fn tool_choice_auto_sends_tools_none_sends_none_and_a_forced_one_is_refused() {
        let mut req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            tools: vec![tool("f", json!({"type": "object"}))],
            tool_choice: Some(ToolChoice::Auto),
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&CohereCommandR, &req).unwrap();
        assert_eq!(body["tools"], json!([{"name": "f", "description": "d"}]));
        req.tool_choice = Some(ToolChoice::None);
        let body = crate::encode_text_request(&CohereCommandR, &req).unwrap();
        assert_eq!(body, json!({"message": "hi"}));
        for choice in [ToolChoice::Required, ToolChoice::Tool("f".to_owned())] {
            req.tool_choice = Some(choice);
            let err = crate::encode_text_request(&CohereCommandR, &req).unwrap_err();
            assert!(matches!(err, TranslateError::Unsupported { family: "cohere_command_r", .. }));
        }
    }

    #[test]
    fn tool_results_name_the_latest_call_of_their_id_and_keep_the_text() {
        let call = |input: serde_json::Value| Message {
            role: Role::Assistant,
            content: Content::Parts(vec![
                Part::Text { text: "Looking.".to_owned() },
                Part::ToolUse { id: "cohere_call_0".to_owned(), name: "f".to_owned(), input },
            ]),
        };
        let result = |content: &str| Message {
            role: Role::User,
            content: Content::Parts(vec![Part::ToolResult {
                tool_use_id: "cohere_call_0".to_owned(),
                content: content.to_owned(),
                is_error: false,
            }]),
        };
        let mut last = result("[1, 2]");
        if let Content::Parts(parts) = &mut last.content {
            parts.push(Part::Text { text: "Thanks".to_owned() });
        }
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                call(json!({"x": 1})),
                result("{\"ok\": true}"),
                call(json!({"x": 2})),
                last,
            ],
            tools: vec![tool("f", json!({"type": "object"}))],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&CohereCommandR, &req).unwrap();
        assert_eq!(
            body,
            json!({
                "message": "Thanks",
                "chat_history": [
                    {"role": "USER", "message": "a"},
                    {"role": "CHATBOT", "message": "Looking."},
                    {"role": "CHATBOT", "message": "Looking."}
                ],
                "tools": [{"name": "f", "description": "d"}],
                "tool_results": [{"call": {"name": "f", "parameters": {"x": 2}},
                    "outputs": [{"text": "[1, 2]"}]}]
            })
        );
    }

    #[test]
    fn answer_tool_calls_get_ids_and_a_tool_use_stop() {
        let body = br#"{"text":"","finish_reason":"COMPLETE","tool_calls":[
            {"name":"f","parameters":{"x":1}},{"name":"g"}]}"#;
        let answer = CohereCommandR.decode_response(body).unwrap();
        assert_eq!(answer.stop_reason, StopReason::ToolUse);
        assert_eq!(
            answer.tool_calls,
            vec![
                ToolCall {
                    id: "cohere_call_0".to_owned(),
                    name: "f".to_owned(),
                    input: json!({"x": 1})
                },
                ToolCall { id: "cohere_call_1".to_owned(), name: "g".to_owned(), input: json!({}) },
            ]
        );
        let body = br#"{"text":"x","finish_reason":"MAX_TOKENS","tool_calls":[{"name":"f"}]}"#;
        assert_eq!(
            CohereCommandR.decode_response(body).unwrap().stop_reason,
            StopReason::MaxTokens
        );
    }

    #[test]
    fn streamed_tool_calls_come_from_tool_calls_generation_only() {
        let event = CohereCommandR
            .decode_stream_event(
                br#"{"event_type":"tool-calls-generation","text":"plan","tool_calls":[{"name":"f","parameters":{"a":"b"}}]}"#,
            )
            .unwrap();
        assert_eq!(
            event.tool_calls,
            [ToolCallDelta {
                index: 0,
                id: Some("cohere_call_0".to_owned()),
                name: Some("f".to_owned()),
                arguments: r#"{"a":"b"}"#.to_owned(),
            }]
        );
        assert_eq!((event.text.as_str(), event.unrecognized), ("", false));
        let chunk = CohereCommandR
            .decode_stream_event(
                br#"{"event_type":"tool-calls-chunk","tool_call_delta":{"index":0,"name":"f"}}"#,
            )
            .unwrap();
        assert_eq!((chunk.tool_calls, chunk.unrecognized), (vec![], false));
        let end = CohereCommandR
            .decode_stream_event(
                br#"{"event_type":"stream-end","finish_reason":"COMPLETE","response":{"tool_calls":[{"name":"f"}]}}"#,
            )
            .unwrap();
        assert_eq!(end.stop_reason, Some(StopReason::ToolUse));
    }

    #[test]
    fn several_streamed_calls_in_one_event_are_one_piece_each() {
        let event = CohereCommandR
            .decode_stream_event(
                br#"{"event_type":"tool-calls-generation","tool_calls":[{"name":"f","parameters":{"a":1}},{"name":"g"}]}"#,
            )
            .unwrap();
        let call = |n: u32, name: &str, arguments: &str| ToolCallDelta {
            index: n,
            id: Some(format!("cohere_call_{n}")),
            name: Some(name.to_owned()),
            arguments: arguments.to_owned(),
        };
        assert_eq!(event.tool_calls, [call(0, "f", r#"{"a":1}"#), call(1, "g", "{}")]);
    }

    #[test]
    fn matches_command_r_models_only() {
        for id in ["cohere.command-r-v1:0", "cohere.command-r-plus-v1:0"] {
            assert!(CohereCommandR.matches(id), "{id}");
        }
        for id in ["cohere.command-text-v14", "cohere.command-light-text-v14", "cohere.embed-v4:0"]
        {
            assert!(!CohereCommandR.matches(id), "{id}");
        }
    }

    #[test]
    fn last_user_message_is_the_message_and_the_rest_history() {
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "c"),
                message(Role::User, "d"),
            ],
            ..UnifiedRequest::default()
        };
        let body = CohereCommandR.encode_request(&req).unwrap();
        assert_eq!(body["message"], json!("d"));
        assert_eq!(
            body["chat_history"],
            json!([
                {"role": "USER", "message": "a"},
                {"role": "USER", "message": "b"},
                {"role": "CHATBOT", "message": "c"}
            ])
        );
    }

    #[test]
    fn final_assistant_message_is_unsupported() {
        let req = UnifiedRequest {
            messages: vec![message(Role::User, "a"), message(Role::Assistant, "b")],
            ..UnifiedRequest::default()
        };
        let err = CohereCommandR.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "cohere_command_r", .. }));
    }

    #[test]
    fn top_p_of_one_is_out_of_range() {
        let req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            top_p: Some(1.0),
            ..Default::default()
        };
        let err = CohereCommandR.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn lower_case_finish_reasons_are_understood() {
        let res = CohereCommandR.decode_response(br#"{"text":"x","finish_reason":"max_tokens"}"#);
        assert_eq!(res.unwrap().stop_reason, StopReason::MaxTokens);
    }

    #[test]
    fn events_other_than_text_generation_add_no_text() {
        for chunk in [
            r#"{"is_finished":false,"event_type":"stream-start","generation_id":"g"}"#,
            r#"{"is_finished":false,"event_type":"citation-generation","text":"x"}"#,
        ] {
            let event = CohereCommandR.decode_stream_event(chunk.as_bytes()).unwrap();
            assert_eq!((event.text.as_str(), event.stop_reason), ("", None), "{chunk}");
        }
    }
}
