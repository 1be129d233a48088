//! Cohere Command R and R+ (`command-r-v1:0`, `command-r-plus-v1:0`): request checks and
//! answer shapes of wire document §4.8.
//!
//! - `message` is required. The answer is seeded by the `preamble`, the `chat_history`
//!   messages (roles `USER` or `CHATBOT`), `message` and the compact JSON of every output of
//!   `tool_results`, joined with newlines. `max_tokens` defaults to 4000, its largest value.
//!   `seed` is checked; the simulator is deterministic whatever the seed.
//! - Answer: `{"response_id", "text", "generation_id", "chat_history", "finish_reason"}` with
//!   `finish_reason` `COMPLETE` (also at a stop sequence) or `MAX_TOKENS`; no usage (the
//!   token headers carry it).
//! - Stream: Cohere's chat-stream events, `stream-start`, one `text-generation` per token, then
//!   `stream-end` with the finish reason, the whole answer in `response` and the invocation
//!   metrics. No Bedrock recording was found; this is the shape Cohere's own Bedrock client
//!   reads (cohere-ai/cohere-python `src/cohere/aws_client.py`: it keeps only chunks with an
//!   `event_type`, types `text-generation` and `stream-end`, and notes the invocation metrics
//!   on `stream-end`). The translator reads the other plausible shapes too.
//! - Not echoed: `chat_history` is `[]`, as the answer methods see only the completion.
//!
//! Tools (the shared rules are in `tools.rs`; the body shape is AWS's "Cohere Command R and
//! Command R+ models" page, the answer and event shapes Cohere's v1 chat API, whose
//! `NonStreamedChatResponse` and `ChatToolCallsGenerationEvent` Bedrock passes through):
//! - `tools` `[{name, description, parameter_definitions?: {<name>: {description?, type,
//!   required?}}}]` and `tool_results` `[{call: {name, parameters}, outputs: [{...}]}]`. The
//!   schema checks these shapes with the validator's wording, each parameter definition
//!   included (an object with a string `type`, no other keys than the three) [U: Bedrock's
//!   schema for them is not published; the rest of the body is checked this strictly]. Then
//!   Cohere's own check of the names, `^[A-Za-z_][A-Za-z0-9_]*$`, with Cohere's documented
//!   message (docs.cohere.com/reference/errors: `invalid request: tool names can only contain
//!   certain characters (A-Za-z0-9_) and can't begin with a digit (provided name: 'xyz').`),
//!   as a ValidationException [U: how Bedrock wraps Cohere's 400].
//! - Bedrock's Command R has no tool choice: with tools and no `tool_results` the model calls
//!   the first tool. Its parameters are those with `required: true`, or every one when none
//!   is; valued by `type`: `str`/`string` a vocabulary word, `int`/`integer` 1,
//!   `float`/`number` 1.5, `bool`/`boolean` true, anything else (`List[str]`, `dict`, ...)
//!   null. A non-empty `tool_results` is answered with text.
//! - A call answers `"text": ""`, `"tool_calls": [{"name", "parameters"}]` and
//!   `finish_reason` `COMPLETE` (the v1 API has no tool-call finish reason; its finish
//!   reasons are `COMPLETE`, `MAX_TOKENS`, `ERROR`, `ERROR_TOXIC`, `ERROR_LIMIT`). Cohere's v1
//!   calls carry no id. Its stream is `stream-start`, one `tool-calls-generation`
//!   `{"is_finished": false, "event_type", "text": "", "tool_calls"}` carrying the calls
//!   whole, and `stream-end` whose `response` has the calls too [U: whether Bedrock's Command
//!   R also sends the newer API's `tool-calls-chunk` events first; it is not simulated]. The
//!   output tokens of a call are its input JSON's pieces (`tools.rs`), all counted once the
//!   `tool-calls-generation` event is sent.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::BedrockError;
use crate::families::common::{complete_or_max_tokens, string_array, u32_value, uuid_from};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{
    Shape, ViolationReport, array_of, collect_violations, finish, string_up_to, type_mismatch,
};
use crate::tools::{ToolChoice, ToolPlan, ToolSpec};

/// The Command R family.
pub(crate) struct CohereCommandR;

const MODELS: &[&str] = &["cohere.command-r-v1:0", "cohere.command-r-plus-v1:0"];

/// The largest `max_tokens`, also its value when the request gives none.
const MAX_TOKENS_LIMIT: u32 = 4000;

impl Family for CohereCommandR {
    fn id(&self) -> &'static str {
        "cohere_command_r"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let mut violations = collect_violations(&request_schema(), body);
        violations.extend(parameter_definition_violations(body));
        finish(&violations, ViolationReport::Counted)?;
        let tools = items(body.get("tools"));
        check_tool_names(tools)?;

        let text_of = |key: &str| body.get(key).and_then(Value::as_str);
        let history_texts = items(body.get("chat_history"))
            .iter()
            .filter_map(|turn| turn.get("message").and_then(Value::as_str));
        let tool_results = items(body.get("tool_results"));
        let outputs: Vec<String> = tool_results
            .iter()
            .flat_map(|result| items(result.get("outputs")))
            .map(Value::to_string)
            .collect();
        let texts: Vec<&str> = text_of("preamble")
            .into_iter()
            .chain(history_texts)
            .chain(text_of("message"))
            .chain(outputs.iter().map(String::as_str))
            .collect();
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(MAX_TOKENS_LIMIT),
            stop_sequences: string_array(body.get("stop_sequences")),
            space_before_first_token: false,
            tools: ToolPlan {
                tools: tools.iter().map(tool_spec).collect(),
                choice: ToolChoice::Auto,
                answers_tool_results: !tool_results.is_empty(),
            },
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&chat_response(completion, &completion.text()))
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // stream-start, one text-generation per token (or one tool-calls-generation),
        // stream-end.
        match completion.tool_call {
            Some(_) => 3,
            None => completion.tokens.len() + 2,
        }
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        match completion.tool_call {
            // The tool-calls-generation event carries every piece of the call.
            Some(_) if n_chunks_sent >= 2 => {
                u32::try_from(completion.tokens.len()).unwrap_or(u32::MAX)
            }
            Some(_) => 0,
            // stream-start comes first.
            None => tokens_after_leading_chunks(completion, n_chunks_sent, 1),
        }
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let tokens_text = completion.text();
        let mut chunk = StreamEvent {
            is_finished: false,
            event_type: "text-generation",
            generation_id: None,
            text: None,
            tool_calls: None,
            finish_reason: None,
            response: None,
            invocation_metrics: metrics,
        };
        let n_chunks = self.n_stream_chunks(completion);
        if chunk_idx == 0 {
            chunk.event_type = "stream-start";
            chunk.generation_id = Some(chat_response(completion, &tokens_text).generation_id);
        } else if chunk_idx + 1 >= n_chunks {
            chunk.is_finished = true;
            chunk.event_type = "stream-end";
            chunk.finish_reason = Some(complete_or_max_tokens(&completion.stop));
            chunk.response = Some(chat_response(completion, &tokens_text));
        } else if let Some(call) = &completion.tool_call {
            chunk.event_type = "tool-calls-generation";
            chunk.text = Some("");
            chunk.tool_calls = Some([WireToolCall { name: &call.name, parameters: &call.input }]);
        } else if let Some(token) = completion.tokens.get(chunk_idx - 1) {
            chunk.text = Some(token);
        }
        json_bytes(&chunk)
    }
}

/// The InvokeModel answer, also the `response` of the `stream-end` event.
#[derive(Serialize)]
struct ChatResponse<'a> {
    response_id: String,
    text: &'a str,
    generation_id: String,
    chat_history: [Value; 0],
    finish_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[WireToolCall<'a>; 1]>,
}

/// One call of Cohere's v1 `tool_calls`.
#[derive(Serialize)]
struct WireToolCall<'a> {
    name: &'a str,
    parameters: &'a Value,
}

#[derive(Serialize)]
struct StreamEvent<'a> {
    is_finished: bool,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[WireToolCall<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ChatResponse<'a>>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

/// The answer of `completion`; `tokens_text` is its tokens' text (a call's input JSON), which
/// seeds the ids and is the `text` of a text answer.
fn chat_response<'a>(completion: &'a Completion, tokens_text: &'a str) -> ChatResponse<'a> {
    let seed = fnv1a_64(tokens_text.as_bytes());
    let tool_calls = completion
        .tool_call
        .as_ref()
        .map(|call| [WireToolCall { name: &call.name, parameters: &call.input }]);
    ChatResponse {
        response_id: uuid_from(seed, 1),
        text: if tool_calls.is_some() { "" } else { tokens_text },
        generation_id: uuid_from(seed, 2),
        chat_history: [],
        finish_reason: complete_or_max_tokens(&completion.stop),
        tool_calls,
    }
}

/// The items of an array the schema has checked; none when it is absent.
fn items(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// A tool as the shared rules read it: `parameter_definitions` as a JSON schema whose
/// `required` lists the parameters with `required: true` (when none is, `tools::arguments`
/// takes every one), each typed by [`json_schema_type`]. The body has been checked.
fn tool_spec(tool: &Value) -> ToolSpec {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let definitions = tool.get("parameter_definitions").and_then(Value::as_object);
    for (name, definition) in definitions.into_iter().flatten() {
        let cohere_type = definition.get("type").and_then(Value::as_str).unwrap_or_default();
        let property = match json_schema_type(cohere_type) {
            Some(json_type) => json!({"type": json_type}),
            None => json!({}),
        };
        properties.insert(name.clone(), property);
        if definition.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(Value::String(name.clone()));
        }
    }
    ToolSpec {
        name: tool.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        input_schema: json!({"type": "object", "properties": properties, "required": required}),
    }
}

/// The JSON schema type of a Cohere parameter type (Cohere writes Python's names); `None`
/// for the others, whose value is null.
fn json_schema_type(cohere_type: &str) -> Option<&'static str> {
    match cohere_type {
        "str" | "string" => Some("string"),
        "int" | "integer" => Some("integer"),
        "float" | "number" => Some("number"),
        "bool" | "boolean" => Some("boolean"),
        _ => None,
    }
}

/// The violations of each `tools[].parameter_definitions` value, worded like the validator's
/// (`#/tools/0/parameter_definitions/city: required key [type] not found`). The schema has
/// checked that `parameter_definitions` is an object, and reports it otherwise.
fn parameter_definition_violations(body: &Value) -> Vec<String> {
    let definition_shape = Shape::Object {
        properties: vec![
            ("description", string_up_to(usize::MAX)),
            ("type", string_up_to(usize::MAX)),
            ("required", Shape::Boolean),
        ],
        required: vec!["type"],
    };
    let mut violations = Vec::new();
    for (tool_idx, tool) in items(body.get("tools")).iter().enumerate() {
        let Some(definitions) = tool.get("parameter_definitions").and_then(Value::as_object) else {
            continue;
        };
        for (name, definition) in definitions {
            let pointer = format!("#/tools/{tool_idx}/parameter_definitions/{name}");
            if !definition.is_object() {
                violations.push(type_mismatch(&pointer, "JSONObject", definition));
                continue;
            }
            for violation in collect_violations(&definition_shape, definition) {
                // The checker words violations from `#`, the root of the value it is given.
                violations.push(format!("{pointer}{}", violation.trim_start_matches('#')));
            }
        }
    }
    violations
}

/// Cohere's own check of the tool names, after the schema's.
fn check_tool_names(tools: &[Value]) -> Result<(), BedrockError> {
    for tool in tools {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if !is_cohere_tool_name(name) {
            return Err(BedrockError::validation(format!(
                "invalid request: tool names can only contain certain characters (A-Za-z0-9_) \
                 and can't begin with a digit (provided name: '{name}')."
            )));
        }
    }
    Ok(())
}

/// Whether `name` matches `^[A-Za-z_][A-Za-z0-9_]*$`.
fn is_cohere_tool_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn request_schema() -> Shape {
    let text = || string_up_to(usize::MAX);
    let turn = Shape::Object {
        properties: vec![("role", Shape::Enum(&["USER", "CHATBOT"])), ("message", text())],
        required: vec!["role", "message"],
    };
    let tool = Shape::Object {
        properties: vec![
            ("name", text()),
            ("description", text()),
            ("parameter_definitions", Shape::AnyObject),
        ],
        required: vec!["name", "description"],
    };
    let tool_result = Shape::Object {
        properties: vec![
            (
                "call",
                Shape::Object {
                    properties: vec![("name", text()), ("parameters", Shape::AnyObject)],
                    required: vec!["name", "parameters"],
                },
            ),
            ("outputs", array_of(Shape::AnyObject, 0, usize::MAX)),
        ],
        required: vec!["call", "outputs"],
    };
    Shape::Object {
        properties: vec![
            ("message", text()),
            ("chat_history", array_of(turn, 0, usize::MAX)),
            ("documents", array_of(Shape::AnyObject, 0, usize::MAX)),
            ("search_queries_only", Shape::Boolean),
            ("preamble", text()),
            ("max_tokens", Shape::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT.into() }),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("p", Shape::Number { minimum: 0.01, maximum: 0.99 }),
            ("k", Shape::Number { minimum: 0.0, maximum: 500.0 }),
            ("prompt_truncation", Shape::Enum(&["OFF", "AUTO_PRESERVE_ORDER"])),
            ("frequency_penalty", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("presence_penalty", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("seed", Shape::Integer { minimum: i64::MIN, maximum: i64::MAX }),
            ("return_prompt", Shape::Boolean),
            ("tools", array_of(tool, 0, usize::MAX)),
            ("tool_results", array_of(tool_result, 0, usize::MAX)),
            ("stop_sequences", array_of(text(), 0, usize::MAX)),
            ("raw_prompting", Shape::Boolean),
        ],
        required: vec!["message"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::{VOCABULARY, generate};

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        CohereCommandR
            .parse_request("cohere.command-r-v1:0", &body)
            .map_err(|error| error.message().to_owned())
    }

    fn malformed(detail: &str) -> String {
        format!("Malformed input request: {detail}, please reformat your input and try again.")
    }

    fn weather_tool() -> Value {
        json!({"name": "get_weather", "description": "The weather of a city.",
            "parameter_definitions": {
                "city": {"description": "The city.", "type": "str", "required": true},
                "days": {"type": "int", "required": true},
                "ratio": {"type": "float", "required": true},
                "exact": {"type": "bool", "required": true},
                "tags": {"type": "List[str]", "required": true},
                "unit": {"type": "str", "required": false},
                "note": {"type": "string"}}})
    }

    #[test]
    fn reads_preamble_history_and_message() {
        let request = parse(json!({"message": "What is gravity?", "preamble": "Be terse.",
            "chat_history": [{"role": "USER", "message": "Who found gravity?"},
                             {"role": "CHATBOT", "message": "Newton"}],
            "seed": 7, "max_tokens": 9, "stop_sequences": ["."], "documents": [{"title": "t"}],
            "search_queries_only": false, "prompt_truncation": "OFF"}))
        .unwrap();
        assert_eq!(request.prompt, "Be terse.\nWho found gravity?\nNewton\nWhat is gravity?");
        assert_eq!(request.max_tokens, 9);
        assert_eq!(request.stop_sequences, vec![".".to_owned()]);
        assert_eq!(request.tools, ToolPlan::default());
        assert_eq!(parse(json!({"message": "x"})).unwrap().max_tokens, 4000);
    }

    #[test]
    fn rejects_bad_requests() {
        let cases = [
            (
                json!({"message": "x", "chat_history": [{"role": "user", "message": "hi"}]}),
                "#/chat_history/0/role: user is not a valid enum value",
            ),
            (
                json!({"message": "x", "chat_history": [{"role": "USER"}]}),
                "#/chat_history/0: required key [message] not found",
            ),
            (
                json!({"message": "x", "seed": 1.5}),
                "#/seed: expected type: Integer, found: BigDecimal",
            ),
            (json!({"message": "x", "p": 1}), "#/p: 1 is not less or equal to 0.99"),
            (json!({"prompt": "x"}), "2 schema violations found"),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), malformed(expected), "{body}");
        }
    }

    #[test]
    fn answer_and_stream_shapes() {
        let completion = generate(&parse(json!({"message": "hi there", "max_tokens": 1})).unwrap());
        let response: Value =
            serde_json::from_slice(&CohereCommandR.response_body(&completion)).unwrap();
        assert_eq!(response["text"], completion.text());
        assert_eq!(response["finish_reason"], "MAX_TOKENS");
        assert_eq!(response["chat_history"], json!([]));
        assert!(response.get("tool_calls").is_none());

        assert_eq!(CohereCommandR.n_stream_chunks(&completion), 3);
        let chunk = |idx| -> Value {
            serde_json::from_slice(&CohereCommandR.stream_chunk(&completion, idx, None)).unwrap()
        };
        assert_eq!(chunk(0)["event_type"], "stream-start");
        assert_eq!(chunk(0)["generation_id"], response["generation_id"]);
        assert_eq!(
            chunk(1),
            json!({"is_finished": false, "event_type": "text-generation",
            "text": completion.tokens[0]})
        );
        assert_eq!(
            chunk(2),
            json!({"is_finished": true, "event_type": "stream-end",
            "finish_reason": "MAX_TOKENS", "response": response})
        );
        assert_eq!(CohereCommandR.n_stream_tokens_sent(&completion, 1), 0);
        assert_eq!(CohereCommandR.n_stream_tokens_sent(&completion, 2), 1);
    }

    #[test]
    fn a_request_with_tools_is_answered_with_a_call() {
        let other = json!({"name": "other", "description": "Another tool.",
            "parameter_definitions": {"b": {"type": "boolean"}, "a": {"type": "number"}}});
        let body = json!({"message": "weather in Paris?", "max_tokens": 1,
            "stop_sequences": ["}"], "tools": [weather_tool(), other]});
        let request = parse(body).unwrap();
        assert_eq!(request.tools.tools.len(), 2);
        assert_eq!(request.tools.choice, ToolChoice::Auto);
        assert!(!request.tools.answers_tool_results);
        let completion = generate(&request);
        let call = completion.tool_call.clone().unwrap();
        assert_eq!(call.name, "get_weather");
        let city = call.input["city"].as_str().unwrap().to_owned();
        assert!(VOCABULARY.contains(&city.as_str()), "{city}");
        // The required parameters only, valued by their Cohere types; max tokens and stop
        // sequences do not cut a call.
        let parameters = json!({"city": city, "days": 1, "exact": true, "ratio": 1.5,
            "tags": null});
        assert_eq!(call.input, parameters);
        let input_json = call.input_json();
        assert_eq!(completion.tokens.concat(), input_json);

        let seed = fnv1a_64(input_json.as_bytes());
        let response: Value =
            serde_json::from_slice(&CohereCommandR.response_body(&completion)).unwrap();
        let expected = json!({"response_id": uuid_from(seed, 1), "text": "",
            "generation_id": uuid_from(seed, 2), "chat_history": [], "finish_reason": "COMPLETE",
            "tool_calls": [{"name": "get_weather", "parameters": parameters}]});
        assert_eq!(response, expected);

        // The stream: start, the calls whole, the end with the whole answer.
        assert_eq!(CohereCommandR.n_stream_chunks(&completion), 3);
        let metrics = InvocationMetrics {
            input_token_count: 3,
            output_token_count: 4,
            invocation_latency: 5,
            first_byte_latency: 6,
        };
        let chunk = |idx, metrics| -> Value {
            serde_json::from_slice(&CohereCommandR.stream_chunk(&completion, idx, metrics)).unwrap()
        };
        assert_eq!(
            chunk(0, None),
            json!({"is_finished": false, "event_type": "stream-start",
                "generation_id": uuid_from(seed, 2)})
        );
        assert_eq!(
            chunk(1, None),
            json!({"is_finished": false, "event_type": "tool-calls-generation", "text": "",
                "tool_calls": [{"name": "get_weather", "parameters": parameters}]})
        );
        assert_eq!(
            chunk(2, Some(metrics)),
            json!({"is_finished": true, "event_type": "stream-end", "finish_reason": "COMPLETE",
                "response": expected, "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": 3, "outputTokenCount": 4, "invocationLatency": 5,
                    "firstByteLatency": 6}})
        );
        let n_pieces = u32::try_from(completion.tokens.len()).unwrap();
        assert!(n_pieces > 1);
        let sent: Vec<u32> =
            (0..=3).map(|n| CohereCommandR.n_stream_tokens_sent(&completion, n)).collect();
        assert_eq!(sent, [0, 0, n_pieces, n_pieces]);

        // Without a required parameter every one is given.
        let body = json!({"message": "weather in Paris?", "tools": [other]});
        let call = generate(&parse(body).unwrap()).tool_call.unwrap();
        assert_eq!(call.name, "other");
        assert_eq!(call.input, json!({"a": 1.5, "b": true}));
        // A tool without parameters is called with none.
        let body = json!({"message": "x", "tools": [{"name": "no_parameters",
            "description": "d"}]});
        let completion = generate(&parse(body).unwrap());
        let response: Value =
            serde_json::from_slice(&CohereCommandR.response_body(&completion)).unwrap();
        assert_eq!(response["tool_calls"], json!([{"name": "no_parameters", "parameters": {}}]));
    }

    #[test]
    fn tool_results_are_answered_with_text() {
        let body = json!({"message": "", "tools": [weather_tool()],
            "chat_history": [{"role": "USER", "message": "weather in Paris?"}],
            "tool_results": [{"call": {"name": "get_weather", "parameters": {"city": "Paris"}},
                "outputs": [{"temperature": 21, "sky": "clear"}, {"text": "windy"}]}]});
        let request = parse(body.clone()).unwrap();
        assert!(request.tools.answers_tool_results);
        assert_eq!(
            request.prompt,
            "weather in Paris?\n\n{\"sky\":\"clear\",\"temperature\":21}\n{\"text\":\"windy\"}"
        );
        let completion = generate(&request);
        assert_eq!(completion.tool_call, None);
        let text = completion.text();
        assert!(!text.is_empty());
        let seed = fnv1a_64(text.as_bytes());
        let response: Value =
            serde_json::from_slice(&CohereCommandR.response_body(&completion)).unwrap();
        assert_eq!(
            response,
            json!({"response_id": uuid_from(seed, 1), "text": text,
                "generation_id": uuid_from(seed, 2), "chat_history": [],
                "finish_reason": "COMPLETE"})
        );
        // Other outputs, another answer.
        let mut other = body;
        other["tool_results"][0]["outputs"] = json!([{"text": "calm"}]);
        assert_ne!(generate(&parse(other).unwrap()).text(), text);
        // An empty list of results is no result.
        let empty = json!({"message": "hi", "tools": [weather_tool()], "tool_results": []});
        assert!(generate(&parse(empty).unwrap()).tool_call.is_some());
    }

    #[test]
    fn bad_tools_are_refused() {
        let with_tool = |tool: Value| json!({"message": "hi", "tools": [tool]});
        let with_definitions = |definitions: Value| {
            with_tool(json!({"name": "t", "description": "d",
                "parameter_definitions": definitions}))
        };
        let cases = [
            (
                json!({"message": "hi", "tools": {}}),
                "#/tools: expected type: JSONArray, found: JSONObject",
            ),
            (with_tool(json!({"name": "t"})), "#/tools/0: required key [description] not found"),
            (
                with_tool(json!({"name": "t", "description": "d", "input_schema": {}})),
                "#/tools/0: extraneous key [input_schema] is not permitted",
            ),
            (
                with_tool(json!({"name": 7, "description": "d"})),
                "#/tools/0/name: expected type: String, found: Integer",
            ),
            (
                with_definitions(json!([])),
                "#/tools/0/parameter_definitions: expected type: JSONObject, found: JSONArray",
            ),
            (
                with_definitions(json!({"city": "str"})),
                "#/tools/0/parameter_definitions/city: expected type: JSONObject, found: String",
            ),
            (
                with_definitions(json!({"city": {"description": "The city."}})),
                "#/tools/0/parameter_definitions/city: required key [type] not found",
            ),
            (
                with_definitions(json!({"city": {"type": 1}})),
                "#/tools/0/parameter_definitions/city/type: expected type: String, found: Integer",
            ),
            (
                with_definitions(json!({"city": {"type": "str", "required": "yes"}})),
                "#/tools/0/parameter_definitions/city/required: expected type: Boolean, found: \
                 String",
            ),
            (
                with_definitions(json!({"city": {"type": "str", "enum": ["Paris"]}})),
                "#/tools/0/parameter_definitions/city: extraneous key [enum] is not permitted",
            ),
            (with_definitions(json!({"a": {}, "b": 1})), "2 schema violations found"),
            (
                json!({"message": "", "tool_results": [{"call": {"name": "t"}}]}),
                "2 schema violations found",
            ),
            (
                json!({"message": "", "tool_results": [{"call": {"name": "t", "parameters": {}},
                    "outputs": ["sunny"]}]}),
                "#/tool_results/0/outputs/0: expected type: JSONObject, found: String",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), malformed(expected), "{body}");
        }

        let cohere = |name: &str| {
            format!(
                "invalid request: tool names can only contain certain characters (A-Za-z0-9_) \
                 and can't begin with a digit (provided name: '{name}')."
            )
        };
        for name in ["get-weather", "1tool", "", "get weather", "café"] {
            let body = with_tool(json!({"name": name, "description": "d"}));
            assert_eq!(parse(body).unwrap_err(), cohere(name), "{name}");
        }
        for name in ["_private", "GetWeather2", "a"] {
            assert!(parse(with_tool(json!({"name": name, "description": "d"}))).is_ok(), "{name}");
        }
    }
}
