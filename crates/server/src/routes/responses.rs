//! OpenAI's Responses API: `POST /v1/responses`, so that the OpenAI SDKs'
//! `client.responses.create` / `client.responses.stream` and LangChain's
//! `ChatOpenAI(use_responses_api=True)` work against the gateway. Backed by the same
//! pipeline as every other API shape; errors come in OpenAI's shape (the route is in
//! [`PATHS`](crate::routes::openai::PATHS)).
//!
//! Shapes from OpenAI's API reference for `POST /v1/responses` and its streaming events,
//! and from openai-python 3.54's `Response` and `ResponseStreamEvent` types and its
//! `ResponseStreamState` (what `client.responses.stream` checks).
//!
//! - Request: `input` is a string (one user message) or a list of items: messages (`type:
//!   "message"` optional; roles `user`, `assistant`, `system` and `developer`, the last two
//!   system messages; content a string or `input_text`, `input_image` with a `data:` URL,
//!   and `output_text` parts), `function_call` items (the assistant's earlier calls) and
//!   `function_call_output` items (their results). `instructions` is a system message
//!   before them. Consecutive items of one role that hold tool calls or results are one
//!   message, as the models want them. `reasoning` items in the history are accepted and
//!   not sent back to the model (the gateway's families take no earlier reasoning).
//!   Other item types and file inputs are refused (422); an image URL is fetched only from
//!   the origins the operator allows (`image_fetch.rs`), else refused (422).
//! - `tools` are function tools (`{type: "function", name, description, parameters,
//!   strict}`); another type (`web_search`, `file_search`, …) is refused, 422 naming it.
//!   `tool_choice`, `max_output_tokens`, `temperature`, `top_p`, `text.format` (`text`,
//!   `json_object`, `json_schema`) and `reasoning.effort` (any effort but `none` asks
//!   for the model's reasoning, answered as a `reasoning` item with a `summary_text`) map
//!   to the unified request; `service_tier` and `metadata` to Bedrock's options, as on
//!   the chat route. `parallel_tool_calls` and `user` are accepted; `truncation` only as
//!   `disabled`.
//! - Stateless by default: the gateway keeps no response unless the operator turns on the
//!   bounded in-memory store (`[responses] store_max_entries`, `responses_store.rs`). With
//!   it off, `store: true` and `previous_response_id` are refused (400 naming the field and
//!   the setting; `store: false` and an absent `store` are taken, nothing is kept) and a
//!   caller sends the whole conversation in `input`.
//! - With the store on, a response is stored when `store` is `true` or absent (OpenAI's
//!   default), not when it is `false`: the whole answer when it is complete (also
//!   `incomplete`), a streamed one when its `response.completed` / `response.incomplete`
//!   event is made (a stream that fails or whose caller leaves first is not stored). It
//!   holds the request's input items as read (not its `instructions`: OpenAI does not carry
//!   them over) and the output as an assistant message (text and calls; reasoning is not
//!   sent back, as in `input`). `previous_response_id` puts that stored conversation before
//!   the new `input` (after the new `instructions`); an id unknown, expired, deleted or of
//!   another API key is a 404 in OpenAI's shape with `param: "previous_response_id"`.
//!   `GET /v1/responses/{response_id}` answers the stored response object (query
//!   parameters such as `include` and `stream` are ignored), `DELETE` deletes it (`{id,
//!   object: "response", deleted: true}`); both 404 when the store is off or the id is
//!   not there for this caller. The echoed `store` says what happened: `false` when the
//!   response was not kept (the store is off, `store: false`, or the response alone is
//!   over `store_max_bytes`); a stream's opening events say what was asked, its last event
//!   what happened (`false` on `response.failed`). `previous_response_id` is echoed.
//! - `input` items of type `item_reference` are refused (400) store or not: the store
//!   keeps conversations as messages, not items by id; a caller sends the items, or
//!   continues with `previous_response_id`.
//! - A field outside the supported set is refused (422 naming it), top level and in each
//!   input item; `null` counts as absent. A content part or a `text` / `reasoning` object
//!   with an unknown field is a 400 naming it.
//! - Answer: the `response` object with `output` items in order (`reasoning`, then the
//!   `message` with one `output_text` part when there is text or no tool call, then one
//!   `function_call` per call, `arguments` the input's JSON text) and `usage`
//!   (`input_tokens` counts the whole prompt, cache reads and writes included, as on the
//!   chat route; `cached_tokens` the reads). A stop at `max_output_tokens` or by Bedrock's
//!   content filter is `status: "incomplete"` with `incomplete_details.reason`. The
//!   request's settings are echoed as OpenAI does (`tools`, `tool_choice`, `text`,
//!   `temperature`, …). Item ids are the response id's hex with the item's index.
//! - Stream (`stream: true`): `event: <type>` SSE events, each data with `type` and
//!   `sequence_number` from 0: `response.created`, `response.in_progress`; per item
//!   `response.output_item.added`, then for a message `response.content_part.added`,
//!   `response.output_text.delta`s, `response.output_text.done`,
//!   `response.content_part.done`; for a call `response.function_call_arguments.delta`s
//!   and `.done`; for reasoning `response.reasoning_summary_part.added`,
//!   `response.reasoning_summary_text.delta`s and `.done`,
//!   `response.reasoning_summary_part.done`; then `response.output_item.done`. It ends
//!   with `response.completed` (or `response.incomplete`, as OpenAI does for a truncated
//!   answer) holding the whole object. A failure after the start is an `event: error`
//!   (`{type: "error", code, message, param}`: the SDK yields it as a
//!   `ResponseErrorEvent`) followed by `response.failed` with the object's `error`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use translator::{
    Content, Message, Part, ResponseFormat, Role, StopReason, Tool, ToolChoice, UnifiedRequest,
    UnifiedResponse, Usage,
};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::openai::{
    OpenAiError, bedrock_options, openai_error_body, refuse_unsupported, unix_now,
    unsupported_field,
};
use crate::routes::parse::{FieldValue, MAX_MESSAGES, UnknownFields, harmless, struct_fields};
use crate::routes::responses_store::{ResponseStore, StoredResponse};
use crate::routes::sse::sse_event;
use crate::routes::text::{self, CacheTokens, StreamItem};
use crate::routes::{parse_json, read_json_body, tag_target};

/// `POST /v1/responses`. Fields outside this list are refused (422) unless null.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResponsesRequest {
    pub model: String,
    /// A string (one user message) or a list of input items.
    pub input: ResponsesInput,
    /// A system message before the input.
    pub instructions: Option<String>,
    /// Function tools the model may call.
    #[serde(default, deserialize_with = "crate::routes::parse::de_tools")]
    pub tools: Option<Vec<ResponsesTool>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "name"}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    #[serde(default, deserialize_with = "crate::routes::de_u32")]
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", ...}}`.
    pub text: Option<TextConfig>,
    /// `{"effort"}`: any effort but `none` asks for the model's reasoning.
    pub reasoning: Option<ReasoningConfig>,
    pub stream: Option<bool>,
    /// Whether the response is kept, when the operator turned the store on (absent: kept);
    /// with it off, `true` is refused (400).
    #[schema(schema_with = store_flag)]
    pub store: Option<bool>,
    /// A stored response whose conversation this one continues (404 if it is not there);
    /// with the store off, refused (400) unless null.
    #[schema(schema_with = previous_id)]
    pub previous_response_id: Option<String>,
    /// Tags for Bedrock's invocation logs (`X-Amzn-Bedrock-Request-Metadata`).
    #[serde(default, deserialize_with = "crate::routes::parse::de_metadata")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Accepted; the model decides how many calls it makes.
    pub parallel_tool_calls: Option<bool>,
    pub user: Option<String>,
    /// Only `disabled` (`auto` is refused, 422).
    #[schema(schema_with = truncation)]
    pub truncation: Option<String>,
    /// `auto` (the alias decides), `default`, `flex` or `priority`: Bedrock's service tier.
    #[schema(schema_with = crate::routes::schema::service_tier)]
    pub service_tier: Option<String>,
}

/// The request's `input`: a string, or at most [`MAX_MESSAGES`] items.
#[derive(Debug, ToSchema)]
// For the OpenAPI schema only (utoipa reads it): the `Deserialize` is written out below.
#[serde(untagged)]
pub enum ResponsesInput {
    Text(String),
    Items(Vec<InputItem>),
}

/// One input item: a message (`type` `message` or absent), a `function_call`, a
/// `function_call_output` or a `reasoning` item (skipped). One struct for all, so that a
/// field outside every kind is found (and refused) by the unknown-field scan.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InputItem {
    #[serde(rename = "type")]
    #[schema(schema_with = item_type)]
    pub kind: Option<String>,
    /// A message's role: `user`, `assistant`, `system` or `developer`.
    #[schema(schema_with = item_role)]
    pub role: Option<String>,
    /// A message's content.
    pub content: Option<ItemContent>,
    /// Accepted and ignored (an earlier item's id).
    pub id: Option<String>,
    /// Accepted and ignored.
    pub status: Option<String>,
    /// Accepted and ignored (an assistant message's phase).
    pub phase: Option<String>,
    /// A `function_call`'s or `function_call_output`'s call.
    pub call_id: Option<String>,
    /// A `function_call`'s function (on a message: accepted and ignored).
    pub name: Option<String>,
    /// A `function_call`'s arguments, the JSON text of an object.
    pub arguments: Option<String>,
    /// A `function_call_output`'s result: a string or text parts.
    pub output: Option<ItemContent>,
    /// A `reasoning` item's summary (not sent to the model).
    #[schema(value_type = Option<Vec<Object>>)]
    pub summary: Option<IgnoredAny>,
    /// A `reasoning` item's encrypted content (not sent to the model).
    pub encrypted_content: Option<String>,
}

/// A message's content or a call's output: a string or a list of content parts.
#[derive(Debug, ToSchema)]
// For the OpenAPI schema only: the `Deserialize` is written out below.
#[serde(untagged)]
pub enum ItemContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// A content part: `input_text` / `output_text` `{text}` or `input_image` `{image_url:
/// "data:…", detail}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ResponsesContentPart)]
pub struct ContentPart {
    #[serde(rename = "type")]
    #[schema(schema_with = part_type)]
    pub kind: String,
    pub text: Option<String>,
    /// A `data:<media type>;base64,<data>` URL (an `http(s)://` URL only from the origins
    /// the operator allows, else 422).
    pub image_url: Option<String>,
    /// Accepted and ignored (`auto`, `low`, `high`).
    pub detail: Option<String>,
    /// Refused (422): the gateway keeps no files.
    pub file_id: Option<String>,
    /// An `output_text`'s annotations: accepted and ignored.
    #[schema(value_type = Option<Vec<Object>>)]
    pub annotations: Option<IgnoredAny>,
    /// An `output_text`'s logprobs: accepted and ignored.
    #[schema(value_type = Option<Vec<Object>>)]
    pub logprobs: Option<IgnoredAny>,
}

/// A function tool: `{"type": "function", "name", "description", "parameters",
/// "strict"}`. Read by hand (see its `Deserialize`), so that a tool of another type is
/// refused naming its type whatever its other fields.
#[derive(Debug, Default, ToSchema)]
pub struct ResponsesTool {
    /// `function` (another type is refused, 422).
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A JSON Schema of the arguments' object; none: no arguments.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    /// Accepted: the schema is sent to the model as it is.
    pub strict: Option<bool>,
    /// The first field outside these that is not null.
    #[serde(skip)]
    unknown: Option<String>,
}

/// The request's `text`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    pub format: Option<TextFormat>,
    /// Only `medium` (OpenAI's default).
    pub verbosity: Option<String>,
}

/// `text.format`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub strict: Option<bool>,
}

/// The request's `reasoning`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasoningConfig {
    /// `none`, `minimal`, `low`, `medium`, `high` or `xhigh`.
    pub effort: Option<String>,
    /// Accepted: the model's reasoning comes back as it is, as one summary text.
    pub summary: Option<String>,
    /// The older name of `summary`, accepted likewise.
    pub generate_summary: Option<String>,
}

/// A Responses request body and its unknown fields (top level, and of the input items
/// when `input` is a list).
#[derive(Debug)]
pub struct ResponsesJson(pub ResponsesRequest, pub UnknownFields);

impl<S: Send + Sync> FromRequest<S> for ResponsesJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(request).await?;
        let body = parse_json::<ResponsesRequest>(&bytes)?;
        let nested = matches!(body.input, ResponsesInput::Items(_))
            .then(|| ("input", struct_fields::<InputItem>()));
        let unknown = UnknownFields::scan(&bytes, struct_fields::<ResponsesRequest>(), nested)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        Ok(ResponsesJson(body, unknown))
    }
}

#[utoipa::path(
    post,
    path = "/v1/responses",
    tag = "openai",
    request_body = ResponsesRequest,
    responses(
        (status = 200, description = "A `response` object, or with `stream` the Responses API's events (`response.created` … `response.completed`)",
            content(("application/json"), ("text/event-stream"))),
        (status = "4XX", description = "A refused request, in OpenAI's error shape"),
        (status = "5XX", description = "Bedrock or the gateway failed, in OpenAI's error shape"),
    )
)]
pub async fn responses(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ResponsesJson, ApiError>,
) -> Result<Response, OpenAiError> {
    let ResponsesJson(request, unknown) = request?;
    let route = text::text_route(&state, &request.model)?;
    let store = &state.responses_store;
    let owner = caller.key().map(|key| key.name.clone());
    let previous = match request.previous_response_id.as_deref() {
        Some(id) if store.is_on() => match store.get(id, owner.as_deref()) {
            Some(previous) => Some(previous),
            None => return Ok(response_not_found(id, Some("previous_response_id"))),
        },
        _ => None,
    };
    let history = History {
        store_on: store.is_on(),
        previous: previous.as_deref().map(|previous| previous.conversation.as_slice()),
    };
    let (mut unified, echo, conversation) = unified_request(request, &unknown, history)?;
    drop(previous);
    let options = bedrock_options(echo.service_tier.as_deref(), echo.metadata.as_ref())?;
    text::apply_defaults(route, &mut unified);
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let shape = Shape { hex, created_at: unix_now(), model: route.alias.clone(), echo };
    let saver = conversation.map(|conversation| Saver {
        store: store.clone(),
        id: shape.id(),
        owner,
        conversation,
    });
    if !unified.stream {
        let done = text::complete(&state, &caller, route, unified, options.as_ref()).await?;
        let mut object = shape.whole(&done.answer, done.cache);
        if let Some(saver) = saver {
            object = saver.save(object);
        }
        return Ok(tag_target(Json(object).into_response(), &done.target));
    }
    let stream = text::open_stream(&state, &caller, route, unified, options.as_ref()).await?;
    let target = stream.target.clone();
    let events = text::encoded_events(Events::new(shape, saver), stream);
    Ok(tag_target(crate::routes::sse::sse_response(Box::pin(events)), &target))
}

#[utoipa::path(
    get,
    path = "/v1/responses/{response_id}",
    tag = "openai",
    params(("response_id" = String, Path, description = "A stored response's id (`resp_…`)")),
    responses(
        (status = 200, description = "The stored `response` object", content_type = "application/json"),
        (status = "4XX", description = "Not stored for this caller (404; always when the store is off), in OpenAI's error shape"),
    )
)]
pub async fn get_response(
    State(state): State<AppState>,
    caller: Caller,
    response_id: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = response_id else {
        return response_not_found("", None);
    };
    let owner = caller.key().map(|key| key.name.as_str());
    match state.responses_store.get(&id, owner) {
        Some(stored) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            stored.object.clone(),
        )
            .into_response(),
        None => response_not_found(&id, None),
    }
}

#[utoipa::path(
    delete,
    path = "/v1/responses/{response_id}",
    tag = "openai",
    params(("response_id" = String, Path, description = "A stored response's id (`resp_…`)")),
    responses(
        (status = 200, description = "`{id, object: \"response\", deleted: true}`", content_type = "application/json"),
        (status = "4XX", description = "Not stored for this caller (404; always when the store is off), in OpenAI's error shape"),
    )
)]
pub async fn delete_response(
    State(state): State<AppState>,
    caller: Caller,
    response_id: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = response_id else {
        return response_not_found("", None);
    };
    let owner = caller.key().map(|key| key.name.as_str());
    if !state.responses_store.remove(&id, owner) {
        return response_not_found(&id, None);
    }
    Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
}

/// OpenAI's 404 for a response it does not have (`Response with id '…' not found.`),
/// blaming `param` if given.
fn response_not_found(id: &str, param: Option<&str>) -> Response {
    let shown: String = id.chars().take(64).collect();
    let error = ApiError::NotFound(format!("stored response {shown:?}"));
    let mut body = openai_error_body(&error);
    body["error"]["message"] = Value::from(format!("Response with id '{shown}' not found."));
    body["error"]["param"] = param.map_or(Value::Null, Value::from);
    error.response_with_body(body)
}

/// What the store allows and what the request continues.
#[derive(Debug, Clone, Copy, Default)]
struct History<'a> {
    /// Whether the operator turned the store on.
    store_on: bool,
    /// The stored conversation of `previous_response_id`, which the handler looked up.
    previous: Option<&'a [Message]>,
}

/// Keeps a finished response: the conversation it continues and its input (without
/// `instructions`), to which its output is added.
#[derive(Debug)]
struct Saver {
    store: Arc<ResponseStore>,
    id: String,
    owner: Option<String>,
    conversation: Vec<Message>,
}

impl Saver {
    /// Stores `object`, the finished response, and answers it with `store` saying whether
    /// it was kept.
    fn save(self, mut object: Value) -> Value {
        let mut conversation = self.conversation;
        let output = object["output"].as_array().map_or(&[][..], Vec::as_slice);
        let parts = answer_parts(output);
        if !parts.is_empty() {
            push_message(&mut conversation, Role::Assistant, parts);
        }
        let text = object.to_string();
        let stored = StoredResponse::new(self.owner, conversation, text, Instant::now());
        if !self.store.insert(&self.id, stored) {
            object["store"] = Value::Bool(false);
        }
        object
    }
}

/// The answer's output items as an assistant turn's parts: its text and its calls
/// (reasoning is not sent back to a model, see the module docs).
fn answer_parts(output: &[Value]) -> Vec<Part> {
    let mut parts = Vec::new();
    for item in output {
        match item["type"].as_str() {
            Some("message") => {
                let content = item["content"].as_array().map_or(&[][..], Vec::as_slice);
                let text: String =
                    content.iter().filter_map(|part| part["text"].as_str()).collect();
                if !text.is_empty() {
                    parts.push(Part::Text { text });
                }
            }
            Some("function_call") => {
                let call_id = item["call_id"].as_str().unwrap_or_default().to_owned();
                let name = item["name"].as_str().unwrap_or_default().to_owned();
                let arguments = item["arguments"].as_str().unwrap_or_default();
                let input = crate::routes::content::tool_arguments(arguments, &call_id)
                    .unwrap_or_else(|_| Value::Object(serde_json::Map::new()));
                parts.push(Part::ToolUse { id: call_id, name, input });
            }
            _ => {}
        }
    }
    parts
}

/// What the response object repeats of the request (OpenAI echoes its settings).
#[derive(Debug, Clone, Default)]
struct Echo {
    instructions: Option<String>,
    max_output_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    parallel_tool_calls: bool,
    tool_choice: Value,
    tools: Vec<Value>,
    text_format: Value,
    reasoning_effort: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    user: Option<String>,
    service_tier: Option<String>,
    /// Whether the response is to be stored.
    store: bool,
    previous_response_id: Option<String>,
}

/// The unified request of a Responses request, what the answer echoes, and the
/// conversation to store with its output (when it is to be stored).
fn unified_request(
    request: ResponsesRequest,
    unknown: &UnknownFields,
    history: History<'_>,
) -> Result<(UnifiedRequest, Echo, Option<Vec<Message>>), OpenAiError> {
    refuse_unsupported(unknown.top.as_deref())?;
    if request.store == Some(true) && !history.store_on {
        return Err(stateless("`store: true`", "store"));
    }
    if request.previous_response_id.is_some() && !history.store_on {
        return Err(stateless("`previous_response_id`", "previous_response_id"));
    }
    let store = history.store_on && request.store.unwrap_or(true);
    match request.truncation.as_deref() {
        None | Some("disabled") => {}
        Some("auto") => return Err(unsupported_field("`truncation: auto`", "truncation")),
        Some(_) => return Err(bad("`truncation` must be \"auto\" or \"disabled\"", "truncation")),
    }
    let _ = request.user.as_deref();
    let conversation = convert_input(request.input, history.previous, unknown)?;
    let stored = store.then(|| conversation.clone());
    let mut messages = conversation;
    if let Some(instructions) = &request.instructions {
        messages.insert(0, Message::text(Role::System, instructions.clone()));
    }
    let mut tools = Vec::new();
    let mut tools_echo = Vec::new();
    for (i, tool) in request.tools.unwrap_or_default().into_iter().enumerate() {
        let (tool, echoed) = convert_tool(tool, i)?;
        tools.push(tool);
        tools_echo.push(echoed);
    }
    let tool_choice = request.tool_choice.as_ref().map(convert_tool_choice).transpose()?;
    let (response_format, text_format) = match request.text {
        None => (None, json!({"type": "text"})),
        Some(config) => convert_text(config)?,
    };
    let (reasoning, reasoning_effort) = match request.reasoning {
        None => (false, None),
        Some(config) => convert_reasoning(config)?,
    };
    let echo = Echo {
        instructions: request.instructions,
        max_output_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        tool_choice: request.tool_choice.unwrap_or_else(|| Value::from("auto")),
        tools: tools_echo,
        text_format,
        reasoning_effort,
        metadata: request.metadata,
        user: request.user,
        service_tier: request.service_tier,
        store,
        previous_response_id: request.previous_response_id,
    };
    let unified = UnifiedRequest {
        messages,
        max_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stream: request.stream.unwrap_or(false),
        tools,
        tool_choice,
        response_format,
        reasoning,
        ..UnifiedRequest::default()
    };
    Ok((unified, echo, stored))
}

/// The conversation of a stored response's (`previous`) and `input`, without the
/// `instructions` (see the module docs).
fn convert_input(
    input: ResponsesInput,
    previous: Option<&[Message]>,
    unknown: &UnknownFields,
) -> Result<Vec<Message>, OpenAiError> {
    let mut messages = previous.map(<[Message]>::to_vec).unwrap_or_default();
    let items = match input {
        ResponsesInput::Text(text) => {
            push_message(&mut messages, Role::User, vec![Part::Text { text }]);
            return Ok(messages);
        }
        ResponsesInput::Items(items) => items,
    };
    if items.is_empty() {
        return Err(bad("`input` must hold at least one item", "input"));
    }
    for (i, item) in items.into_iter().enumerate() {
        if let Some((at, key)) = &unknown.nested
            && *at == i
        {
            return Err(unsupported_field(&format!("`input[{i}].{key}`"), "input"));
        }
        let Some((role, parts)) = convert_item(item, i)? else {
            continue;
        };
        push_message(&mut messages, role, parts);
    }
    Ok(messages)
}

/// One input item as a role and its parts; `None` for an item not sent to the model.
fn convert_item(item: InputItem, i: usize) -> Result<Option<(Role, Vec<Part>)>, OpenAiError> {
    let _ = (&item.id, &item.status, &item.phase);
    let at = |field: &str| format!("input[{i}].{field}");
    let kind = item.kind.as_deref().unwrap_or("message");
    let stray = |fields: &[(&str, bool)]| match fields.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(bad(&format!("a `{kind}` item has no `{field}`"), "input")),
        None => Ok(()),
    };
    match kind {
        "message" => {
            stray(&[
                ("call_id", item.call_id.is_some()),
                ("arguments", item.arguments.is_some()),
                ("output", item.output.is_some()),
                ("summary", item.summary.is_some()),
                ("encrypted_content", item.encrypted_content.is_some()),
            ])?;
            let role = match item.role.as_deref() {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system" | "developer") => Role::System,
                Some(other) => {
                    let shown: String = other.chars().take(32).collect();
                    return Err(bad(
                        &format!(
                            "`{}` {shown:?} is not one of user, assistant, system, developer",
                            at("role")
                        ),
                        "input",
                    ));
                }
                None => return Err(bad(&format!("`{}` is required", at("role")), "input")),
            };
            let parts = match item.content {
                Some(ItemContent::Text(text)) => vec![Part::Text { text }],
                Some(ItemContent::Parts(parts)) => convert_parts(parts, &at("content"))?,
                None => return Err(bad(&format!("`{}` is required", at("content")), "input")),
            };
            Ok(Some((role, parts)))
        }
        "function_call" => {
            stray(&[
                ("role", item.role.is_some()),
                ("content", item.content.is_some()),
                ("output", item.output.is_some()),
            ])?;
            let (Some(call_id), Some(name)) = (item.call_id, item.name) else {
                return Err(bad("a `function_call` item needs `call_id` and `name`", "input"));
            };
            let arguments = item.arguments.unwrap_or_default();
            let input = crate::routes::content::tool_arguments(&arguments, &call_id)
                .map_err(|error| OpenAiError::at(error, "input"))?;
            Ok(Some((Role::Assistant, vec![Part::ToolUse { id: call_id, name, input }])))
        }
        "function_call_output" => {
            stray(&[
                ("role", item.role.is_some()),
                ("content", item.content.is_some()),
                ("name", item.name.is_some()),
                ("arguments", item.arguments.is_some()),
            ])?;
            let (Some(tool_use_id), Some(output)) = (item.call_id, item.output) else {
                return Err(bad(
                    "a `function_call_output` item needs `call_id` and `output`",
                    "input",
                ));
            };
            let content = match output {
                ItemContent::Text(text) => text,
                ItemContent::Parts(parts) => {
                    let mut text = String::new();
                    for part in convert_parts(parts, &at("output"))? {
                        match part {
                            Part::Text { text: part_text } => text.push_str(&part_text),
                            _ => {
                                return Err(unsupported_field(
                                    "images in a `function_call_output`",
                                    "input",
                                ));
                            }
                        }
                    }
                    text
                }
            };
            let result = Part::ToolResult { tool_use_id, content, is_error: false };
            Ok(Some((Role::User, vec![result])))
        }
        // The model's earlier reasoning: the families take none back (see the module docs).
        "reasoning" => Ok(None),
        "item_reference" => Err(bad(
            "`item_reference` input items are not supported: send the items themselves in \
             `input`, or continue a stored response with `previous_response_id`",
            "input",
        )),
        other => {
            let shown: String = other.chars().take(32).collect();
            Err(unsupported_field(&format!("input items of type {shown:?}"), "input"))
        }
    }
}

/// Appends a message of `role`: to the last message when both are of that role and one
/// of them holds tool calls or results (the models want a turn's calls, and the results
/// answering them, in one message); a lone text part is plain text.
fn push_message(messages: &mut Vec<Message>, role: Role, mut parts: Vec<Part>) {
    let tooling = |parts: &[Part]| {
        parts.iter().any(|part| matches!(part, Part::ToolUse { .. } | Part::ToolResult { .. }))
    };
    if role != Role::System
        && let Some(last) = messages.last_mut()
        && last.role == role
    {
        let last_tooling = matches!(&last.content, Content::Parts(held) if tooling(held));
        if last_tooling || tooling(&parts) {
            let held = match std::mem::replace(&mut last.content, Content::Parts(Vec::new())) {
                Content::Text(text) => vec![Part::Text { text }],
                Content::Parts(held) => held,
            };
            let mut joined = held;
            joined.append(&mut parts);
            last.content = Content::Parts(joined);
            return;
        }
    }
    if let [Part::Text { .. }] = parts.as_slice()
        && let Some(Part::Text { text }) = parts.pop()
    {
        messages.push(Message::text(role, text));
        return;
    }
    messages.push(Message { role, content: Content::Parts(parts) });
}

/// Content parts as unified parts: text, and images from `data:` URLs.
fn convert_parts(parts: Vec<ContentPart>, at: &str) -> Result<Vec<Part>, OpenAiError> {
    let mut converted: Vec<Part> = Vec::with_capacity(parts.len());
    for part in parts {
        let _ = (&part.detail, &part.annotations, &part.logprobs);
        match (part.kind.as_str(), part.text, part.image_url, part.file_id) {
            ("input_text" | "output_text", Some(text), None, None) => {
                // Consecutive text parts are one text.
                if let Some(Part::Text { text: joined }) = converted.last_mut() {
                    joined.push_str(&text);
                } else {
                    converted.push(Part::Text { text });
                }
            }
            ("input_text" | "output_text", _, _, _) => {
                return Err(bad(
                    &format!("a `{}` part of `{at}` needs `text` only", part.kind),
                    "input",
                ));
            }
            ("input_image", _, _, Some(_)) => {
                return Err(unsupported_field("images by `file_id` (send a `data:` URL)", "input"));
            }
            ("input_image", None, Some(url), None) => {
                let image = crate::routes::content::image_from_url(&url)
                    .map_err(|error| OpenAiError::at(error, "input"))?;
                converted.push(image);
            }
            ("input_image", _, _, None) => {
                return Err(bad(
                    &format!("an `input_image` part of `{at}` needs `image_url`"),
                    "input",
                ));
            }
            (kind, _, _, _) => {
                let shown: String = kind.chars().take(32).collect();
                return Err(unsupported_field(
                    &format!("content parts of type {shown:?}"),
                    "input",
                ));
            }
        }
    }
    Ok(converted)
}

/// A function tool as a unified one, and as the answer echoes it.
fn convert_tool(tool: ResponsesTool, i: usize) -> Result<(Tool, Value), OpenAiError> {
    if tool.kind != "function" {
        let shown: String = tool.kind.chars().take(32).collect();
        return Err(unsupported_field(&format!("tools of type {shown:?}"), "tools"));
    }
    if let Some(key) = tool.unknown {
        return Err(unsupported_field(&format!("`tools[{i}].{key}`"), "tools"));
    }
    let Some(name) = tool.name else {
        return Err(bad(&format!("`tools[{i}].name` is required"), "tools"));
    };
    let parameters = tool.parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let echoed = json!({"type": "function", "name": name, "description": tool.description,
                        "parameters": parameters, "strict": tool.strict.unwrap_or(true)});
    Ok((Tool { name, description: tool.description, parameters }, echoed))
}

fn convert_tool_choice(choice: &Value) -> Result<ToolChoice, OpenAiError> {
    let refused = || {
        bad(
            "`tool_choice` must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \
             \"name\": ...}",
            "tool_choice",
        )
    };
    match choice {
        Value::String(choice) => match choice.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(refused()),
        },
        Value::Object(choice) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            match choice.get("name").and_then(Value::as_str) {
                Some(name) if choice.len() == 2 => Ok(ToolChoice::Tool(name.to_owned())),
                _ => Err(refused()),
            }
        }
        _ => Err(refused()),
    }
}

/// `text` as the unified response format, and the `text.format` the answer echoes.
fn convert_text(config: TextConfig) -> Result<(Option<ResponseFormat>, Value), OpenAiError> {
    match config.verbosity.as_deref() {
        None | Some("medium") => {}
        Some(_) => return Err(unsupported_field("`text.verbosity` other than medium", "text")),
    }
    let Some(format) = config.format else {
        return Ok((None, json!({"type": "text"})));
    };
    match format.kind.as_str() {
        "text" => Ok((Some(ResponseFormat::Text), json!({"type": "text"}))),
        "json_object" => Ok((Some(ResponseFormat::JsonObject), json!({"type": "json_object"}))),
        "json_schema" => {
            let (Some(name), Some(schema)) = (format.name, format.schema) else {
                return Err(bad("a `json_schema` text format needs `name` and `schema`", "text"));
            };
            let strict = format.strict.unwrap_or(false);
            let echoed = json!({"type": "json_schema", "name": name,
                                "description": format.description, "schema": schema,
                                "strict": strict});
            Ok((Some(ResponseFormat::JsonSchema { name, schema, strict }), echoed))
        }
        _ => Err(bad("`text.format.type` must be text, json_object or json_schema", "text")),
    }
}

/// Whether `reasoning` asks for the model's reasoning, and the effort echoed.
fn convert_reasoning(config: ReasoningConfig) -> Result<(bool, Option<String>), OpenAiError> {
    let _ = (&config.summary, &config.generate_summary);
    match config.effort.as_deref() {
        Some("none") => Ok((false, Some("none".to_owned()))),
        None => Ok((true, None)),
        Some(effort @ ("minimal" | "low" | "medium" | "high" | "xhigh")) => {
            Ok((true, Some(effort.to_owned())))
        }
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            Err(bad(
                &format!(
                    "`reasoning.effort` {shown:?} is not one of none, minimal, low, medium, high, \
                     xhigh"
                ),
                "reasoning",
            ))
        }
    }
}

/// A 400 blaming `param`.
fn bad(message: &str, param: &str) -> OpenAiError {
    OpenAiError::at(ApiError::BadRequest(message.to_owned()), param)
}

/// The refusal of what needs the store when it is off (400 blaming `param`).
fn stateless(what: &str, param: &str) -> OpenAiError {
    bad(
        &format!(
            "{what} is not supported: this gateway keeps no responses (its operator has not \
             turned on `[responses] store_max_entries`); send the whole conversation in `input`"
        ),
        param,
    )
}

// ---------------------------------------------------------------------------------
// The answer
// ---------------------------------------------------------------------------------

/// What every event and object of one response shares.
#[derive(Debug, Clone)]
struct Shape {
    /// The response id's hex (`resp_<hex>`); items are `<prefix>_<hex>_<index>`.
    hex: String,
    created_at: u64,
    model: String,
    echo: Echo,
}

/// How an answer ended, in the response object's terms.
fn status_of(stop_reason: StopReason) -> (&'static str, Option<&'static str>) {
    match stop_reason {
        StopReason::MaxTokens => ("incomplete", Some("max_output_tokens")),
        StopReason::ContentFilter => ("incomplete", Some("content_filter")),
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::ToolUse
        | StopReason::Other => ("completed", None),
    }
}

/// OpenAI's usage: `input_tokens` with the cache reads and writes added back, as on the
/// chat route; `cached_tokens` the reads.
fn usage_body(usage: Usage, cache: CacheTokens) -> Value {
    let input = [cache.read, cache.write]
        .into_iter()
        .flatten()
        .fold(usage.input_tokens.unwrap_or(0), u32::saturating_add);
    let output = usage.output_tokens.unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cache.read.unwrap_or(0)},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input.saturating_add(output),
    })
}

impl Shape {
    fn id(&self) -> String {
        format!("resp_{}", self.hex)
    }

    fn item_id(&self, prefix: &str, output_index: usize) -> String {
        format!("{prefix}_{}_{output_index}", self.hex)
    }

    /// The response object.
    fn object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Value,
        incomplete: Option<&str>,
    ) -> Value {
        let echo = &self.echo;
        json!({
            "id": self.id(),
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": incomplete.map(|reason| json!({"reason": reason})),
            "instructions": echo.instructions,
            "max_output_tokens": echo.max_output_tokens,
            "metadata": echo.metadata.clone().unwrap_or_default(),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": echo.parallel_tool_calls,
            "previous_response_id": echo.previous_response_id,
            "reasoning": {"effort": echo.reasoning_effort, "summary": null},
            "store": echo.store,
            "temperature": echo.temperature,
            "text": {"format": echo.text_format},
            "tool_choice": echo.tool_choice,
            "tools": echo.tools,
            "top_p": echo.top_p,
            "truncation": "disabled",
            "usage": usage,
            "user": echo.user,
        })
    }

    fn reasoning_item(&self, output_index: usize, text: &str) -> Value {
        let summary = if text.is_empty() {
            json!([])
        } else {
            json!([{"type": "summary_text", "text": text}])
        };
        json!({"type": "reasoning", "id": self.item_id("rs", output_index), "summary": summary})
    }

    fn message_item(&self, output_index: usize, text: &str, status: &str) -> Value {
        json!({"type": "message", "id": self.item_id("msg", output_index), "status": status,
               "role": "assistant", "content": [output_text(text)]})
    }

    fn call_item(
        &self,
        output_index: usize,
        call: &OpenCall,
        arguments: &str,
        status: &str,
    ) -> Value {
        json!({"type": "function_call", "id": self.item_id("fc", output_index),
               "call_id": call.call_id, "name": call.name, "arguments": arguments,
               "status": status})
    }

    /// The whole answer.
    fn whole(&self, answer: &UnifiedResponse, cache: CacheTokens) -> Value {
        let (status, incomplete) = status_of(answer.stop_reason);
        let mut output = Vec::new();
        if let Some(reasoning) = &answer.reasoning {
            output.push(self.reasoning_item(output.len(), reasoning));
        }
        if !answer.text.is_empty() || answer.tool_calls.is_empty() {
            let message_status = if incomplete.is_some() { "incomplete" } else { "completed" };
            output.push(self.message_item(output.len(), &answer.text, message_status));
        }
        for call in &answer.tool_calls {
            let open = OpenCall { call_id: call.id.clone(), name: call.name.clone() };
            output.push(self.call_item(output.len(), &open, &call.input.to_string(), "completed"));
        }
        self.object(status, output, usage_body(answer.usage, cache), incomplete)
    }
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A function call of the stream: its id and name.
#[derive(Debug, Clone)]
struct OpenCall {
    call_id: String,
    name: String,
}

/// The output item a stream is in.
#[derive(Debug)]
enum OpenKind {
    Reasoning,
    Message,
    /// A call, by its index among the answer's calls.
    Call(u32, OpenCall),
}

#[derive(Debug)]
struct OpenItem {
    kind: OpenKind,
    output_index: usize,
    /// The item's text so far (reasoning, text, or the call's arguments).
    text: String,
}

/// The stream's events from its items (see the module docs): pure, so that it is tested
/// without a stream.
#[derive(Debug)]
struct Events {
    shape: Shape,
    sequence_number: u64,
    /// The finished items, in order.
    output: Vec<Value>,
    open: Option<OpenItem>,
    /// Stores the response when it completes, if it is to be stored.
    saver: Option<Saver>,
}

impl text::ItemEncoder for Events {
    fn start(&mut self, out: &mut Vec<u8>) {
        Events::start(self, out);
    }

    fn item(&mut self, out: &mut Vec<u8>, item: StreamItem) -> bool {
        self.push(out, item)
    }
}

impl Events {
    fn new(shape: Shape, saver: Option<Saver>) -> Events {
        Events { shape, sequence_number: 0, output: Vec::new(), open: None, saver }
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        data["type"] = Value::from(kind);
        data["sequence_number"] = Value::from(self.sequence_number);
        self.sequence_number += 1;
        sse_event(out, kind, &data);
    }

    /// `response.created` and `response.in_progress`.
    fn start(&mut self, out: &mut Vec<u8>) {
        let object = self.shape.object("in_progress", Vec::new(), Value::Null, None);
        self.emit(out, "response.created", json!({"response": object}));
        let object = self.shape.object("in_progress", Vec::new(), Value::Null, None);
        self.emit(out, "response.in_progress", json!({"response": object}));
    }

    fn item_id(&self, open: &OpenItem) -> String {
        let prefix = match open.kind {
            OpenKind::Reasoning => "rs",
            OpenKind::Message => "msg",
            OpenKind::Call(..) => "fc",
        };
        self.shape.item_id(prefix, open.output_index)
    }

    /// Makes `kind` the open item, closing another; `true` when it was opened now.
    fn enter(&mut self, out: &mut Vec<u8>, kind: OpenKind) -> bool {
        let same = match (&self.open, &kind) {
            (Some(OpenItem { kind: OpenKind::Reasoning, .. }), OpenKind::Reasoning)
            | (Some(OpenItem { kind: OpenKind::Message, .. }), OpenKind::Message) => true,
            (Some(OpenItem { kind: OpenKind::Call(open, _), .. }), OpenKind::Call(index, _)) => {
                open == index
            }
            _ => false,
        };
        if same {
            return false;
        }
        self.close(out, "completed");
        let output_index = self.output.len();
        let open = OpenItem { kind, output_index, text: String::new() };
        let item_id = self.item_id(&open);
        match &open.kind {
            OpenKind::Reasoning => {
                let item = self.shape.reasoning_item(output_index, "");
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": item}),
                );
                let part = json!({"item_id": item_id, "output_index": output_index,
                                  "summary_index": 0,
                                  "part": {"type": "summary_text", "text": ""}});
                self.emit(out, "response.reasoning_summary_part.added", part);
            }
            OpenKind::Message => {
                let item = json!({"type": "message", "id": item_id, "status": "in_progress",
                                  "role": "assistant", "content": []});
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": item}),
                );
                let part = json!({"item_id": item_id, "output_index": output_index,
                                  "content_index": 0, "part": output_text("")});
                self.emit(out, "response.content_part.added", part);
            }
            OpenKind::Call(_, call) => {
                let item = self.shape.call_item(output_index, call, "", "in_progress");
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": item}),
                );
            }
        }
        self.open = Some(open);
        true
    }

    /// Ends the open item, if any, with its `.done` events; a message with `status`.
    fn close(&mut self, out: &mut Vec<u8>, status: &str) {
        let Some(open) = self.open.take() else {
            return;
        };
        let item_id = self.item_id(&open);
        let output_index = open.output_index;
        let item = match &open.kind {
            OpenKind::Reasoning => {
                let at = json!({"item_id": item_id, "output_index": output_index,
                                "summary_index": 0, "text": open.text});
                self.emit(out, "response.reasoning_summary_text.done", at);
                let part = json!({"item_id": item_id, "output_index": output_index,
                                  "summary_index": 0,
                                  "part": {"type": "summary_text", "text": open.text}});
                self.emit(out, "response.reasoning_summary_part.done", part);
                self.shape.reasoning_item(output_index, &open.text)
            }
            OpenKind::Message => {
                let done = json!({"item_id": item_id, "output_index": output_index,
                                  "content_index": 0, "text": open.text, "logprobs": []});
                self.emit(out, "response.output_text.done", done);
                let part = json!({"item_id": item_id, "output_index": output_index,
                                  "content_index": 0, "part": output_text(&open.text)});
                self.emit(out, "response.content_part.done", part);
                self.shape.message_item(output_index, &open.text, status)
            }
            OpenKind::Call(_, call) => {
                let arguments = if open.text.is_empty() { "{}" } else { open.text.as_str() };
                let done = json!({"item_id": item_id, "output_index": output_index,
                                  "name": call.name, "arguments": arguments});
                self.emit(out, "response.function_call_arguments.done", done);
                self.shape.call_item(output_index, call, arguments, "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item.clone()}),
        );
        self.output.push(item);
    }

    /// The events of one stream item; `true` when it ended the stream.
    fn push(&mut self, out: &mut Vec<u8>, item: StreamItem) -> bool {
        match item {
            StreamItem::Reasoning(text) => {
                self.enter(out, OpenKind::Reasoning);
                self.delta(out, "response.reasoning_summary_text.delta", "summary_index", &text);
                false
            }
            StreamItem::Delta(text) => {
                self.enter(out, OpenKind::Message);
                self.delta(out, "response.output_text.delta", "content_index", &text);
                false
            }
            StreamItem::ToolCall(call) => {
                let open = OpenCall {
                    call_id: call.id.unwrap_or_default(),
                    name: call.name.unwrap_or_default(),
                };
                self.enter(out, OpenKind::Call(call.index, open));
                if !call.arguments.is_empty() {
                    self.delta(out, "response.function_call_arguments.delta", "", &call.arguments);
                }
                false
            }
            StreamItem::Done { stop_reason, usage, cache } => {
                let (status, incomplete) = status_of(stop_reason);
                if self.open.is_none() && self.output.is_empty() {
                    self.enter(out, OpenKind::Message);
                }
                let message_status = if incomplete.is_some() { "incomplete" } else { "completed" };
                self.close(out, message_status);
                let output = std::mem::take(&mut self.output);
                let mut object =
                    self.shape.object(status, output, usage_body(usage, cache), incomplete);
                if let Some(saver) = self.saver.take() {
                    object = saver.save(object);
                }
                let kind =
                    if incomplete.is_some() { "response.incomplete" } else { "response.completed" };
                self.emit(out, kind, json!({"response": object}));
                true
            }
            StreamItem::Failed(error) => {
                error.log_stream_failure();
                let body = openai_error_body(&error);
                let detail = &body["error"];
                let code = detail["code"].clone();
                let message = detail["message"].clone();
                self.emit(out, "error", json!({"code": code, "message": message, "param": null}));
                let output = std::mem::take(&mut self.output);
                let mut object = self.shape.object("failed", output, Value::Null, None);
                object["error"] = json!({"code": code, "message": message});
                // A failed response is not stored.
                self.saver = None;
                object["store"] = Value::Bool(false);
                self.emit(out, "response.failed", json!({"response": object}));
                true
            }
        }
    }

    /// A delta of the open item; `index_field` the index of its part (none for a call).
    fn delta(&mut self, out: &mut Vec<u8>, kind: &str, index_field: &str, delta: &str) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.text.push_str(delta);
        let mut data = json!({"item_id": Value::Null, "output_index": open.output_index,
                              "delta": delta});
        let item_id = self.open.as_ref().map(|open| self.item_id(open)).unwrap_or_default();
        data["item_id"] = Value::from(item_id);
        if !index_field.is_empty() {
            data[index_field] = Value::from(0);
        }
        if kind == "response.output_text.delta" {
            data["logprobs"] = json!([]);
        }
        self.emit(out, kind, data);
    }
}

// ---------------------------------------------------------------------------------
// Reading the request
// ---------------------------------------------------------------------------------

impl<'de> Deserialize<'de> for ResponsesInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ResponsesInput, D::Error> {
        struct Input;
        impl<'de> Visitor<'de> for Input {
            type Value = ResponsesInput;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of input items")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ResponsesInput, E> {
                Ok(ResponsesInput::Text(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<ResponsesInput, E> {
                Ok(ResponsesInput::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResponsesInput, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<InputItem>()? {
                    if items.len() == MAX_MESSAGES {
                        return Err(de::Error::custom(format!(
                            "`input` has more than {MAX_MESSAGES} items; at most {MAX_MESSAGES}"
                        )));
                    }
                    items.push(item);
                }
                Ok(ResponsesInput::Items(items))
            }
        }
        deserializer.deserialize_any(Input)
    }
}

impl<'de> Deserialize<'de> for ItemContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ItemContent, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = ItemContent;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ItemContent, E> {
                Ok(ItemContent::Text(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<ItemContent, E> {
                Ok(ItemContent::Text(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ItemContent, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element::<ContentPart>()? {
                    parts.push(part);
                }
                Ok(ItemContent::Parts(parts))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

impl<'de> Deserialize<'de> for ResponsesTool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ResponsesTool, D::Error> {
        struct ToolVisitor;
        impl<'de> Visitor<'de> for ToolVisitor {
            type Value = ResponsesTool;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tool object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResponsesTool, A::Error> {
                let mut tool = ResponsesTool::default();
                let mut kind = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "type" => kind = Some(map.next_value::<String>()?),
                        "name" => tool.name = map.next_value()?,
                        "description" => tool.description = map.next_value()?,
                        "parameters" => tool.parameters = map.next_value()?,
                        "strict" => tool.strict = map.next_value()?,
                        _ => {
                            let value = map.next_value::<FieldValue>()?;
                            if !harmless(&key, value)
                                && tool.unknown.as_deref().is_none_or(|first| *key < *first)
                            {
                                tool.unknown = Some(key.into_owned());
                            }
                        }
                    }
                }
                tool.kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
                Ok(tool)
            }
        }
        deserializer.deserialize_map(ToolVisitor)
    }
}

// ---------------------------------------------------------------------------------
// The OpenAPI schemas the types alone cannot give
// ---------------------------------------------------------------------------------

// The document describes the default gateway, whose store is off: what it takes of
// `store` and `previous_response_id` (schemathesis holds the gateway to it), and in the
// description what a store turned on takes too.

/// `store`.
fn store_flag() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
        .enum_values(Some([Value::Bool(false), Value::Null]))
        .description(Some(
            "`false`: not kept. `true` (and absent: kept) only where the operator turned on \
             the store (`[responses] store_max_entries`); else `true` is refused (400)",
        ))
        .into()
}

/// `previous_response_id`.
fn previous_id() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Null)
        .description(Some(
            "A stored response to continue (404 if it is not there), only where the operator \
             turned on the store (`[responses] store_max_entries`); else refused (400) unless \
             null",
        ))
        .into()
}

/// `truncation`.
fn truncation() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([Value::from("disabled"), Value::Null]))
        .description(Some("Only `disabled` (`auto` is refused, 422)"))
        .into()
}

/// An input item's `type`.
fn item_type() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            ["message", "function_call", "function_call_output", "reasoning"]
                .into_iter()
                .map(Value::from)
                .chain([Value::Null]),
        ))
        .description(Some("`message` when absent; other item types are refused (422)"))
        .into()
}

/// A message item's `role`.
fn item_role() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            ["user", "assistant", "system", "developer"]
                .into_iter()
                .map(Value::from)
                .chain([Value::Null]),
        ))
        .description(Some("`system` and `developer` are system messages"))
        .into()
}

/// A content part's `type`.
fn part_type() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["input_text", "input_image", "output_text"]))
        .description(Some(
            "Text parts, and image parts with a `data:` URL (another type is refused, 422)",
        ))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<(UnifiedRequest, Echo), OpenAiError> {
        let bytes = body.to_string();
        let request: ResponsesRequest = parse_json(bytes.as_bytes()).map_err(OpenAiError::from)?;
        let nested = matches!(request.input, ResponsesInput::Items(_))
            .then(|| ("input", struct_fields::<InputItem>()));
        let unknown =
            UnknownFields::scan(bytes.as_bytes(), struct_fields::<ResponsesRequest>(), nested)
                .unwrap();
        unified_request(request, &unknown, History::default()).map(|(u, e, _)| (u, e))
    }

    fn shape() -> Shape {
        Shape { hex: "ab".to_owned(), created_at: 7, model: "m".to_owned(), echo: Echo::default() }
    }

    #[test]
    fn a_responses_request_reads_into_the_unified_request() {
        let (unified, echo) = read(json!({
            "model": "m",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather "},
                    {"type": "input_text", "text": "in Oslo?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=",
                     "detail": "auto"}]},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                 "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
                {"type": "function_call", "call_id": "c1", "name": "weather",
                 "arguments": "{\"city\":\"Oslo\"}", "id": "fc_1"},
                {"type": "function_call_output", "call_id": "c1", "output": "cold"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "developer", "content": "Answer in French.", "phase": null},
            ],
            "tools": [{"type": "function", "name": "weather", "description": "d",
                       "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "weather"},
            "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9,
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"},
                                "strict": true}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "store": false, "parallel_tool_calls": false, "truncation": "disabled",
            "user": "u", "metadata": {"team": "a"}, "stream": true, "include": null,
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&unified.messages).unwrap(),
            serde_json::to_value(vec![
                Message::text(Role::System, "Be brief."),
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![
                        Part::Text { text: "Weather in Oslo?".to_owned() },
                        Part::Image {
                            media_type: "image/png".to_owned(),
                            data: "iVBORw0KGgo=".to_owned()
                        },
                    ]),
                },
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![
                        Part::Text { text: "Let me look.".to_owned() },
                        Part::ToolUse {
                            id: "c1".to_owned(),
                            name: "weather".to_owned(),
                            input: json!({"city": "Oslo"})
                        },
                    ]),
                },
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![Part::ToolResult {
                        tool_use_id: "c1".to_owned(),
                        content: "cold".to_owned(),
                        is_error: false,
                    }]),
                },
                Message::text(Role::System, "Answer in French."),
            ])
            .unwrap()
        );
        assert_eq!(
            (unified.max_tokens, unified.temperature, unified.top_p),
            (Some(50), Some(0.2), Some(0.9))
        );
        assert!(unified.stream && unified.reasoning);
        assert_eq!(unified.tool_choice, Some(ToolChoice::Tool("weather".to_owned())));
        assert_eq!(
            unified.tools,
            vec![Tool {
                name: "weather".to_owned(),
                description: Some("d".to_owned()),
                parameters: json!({"type": "object"})
            }]
        );
        assert_eq!(
            unified.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "w".to_owned(),
                schema: json!({"type": "object"}),
                strict: true
            })
        );
        assert!(!echo.parallel_tool_calls);
        assert_eq!(echo.reasoning_effort.as_deref(), Some("low"));
        assert_eq!(
            echo.tools,
            vec![json!({"type": "function", "name": "weather", "description": "d",
                        "parameters": {"type": "object"}, "strict": true})]
        );
        let (plain, _) = read(json!({"model": "m", "input": "Hi"})).unwrap();
        assert_eq!(plain.messages, vec![Message::text(Role::User, "Hi")]);
        assert!(!plain.reasoning && !plain.stream && plain.tools.is_empty());
    }

    #[test]
    fn what_the_gateway_cannot_honour_is_refused_naming_it() {
        let with = |field: &str, value: Value| {
            let mut body = json!({"model": "m", "input": "Hi"});
            body[field] = value;
            body
        };
        for (body, status, param, named) in [
            (with("store", json!(true)), 400, "store", "store"),
            (
                with("previous_response_id", json!("resp_1")),
                400,
                "previous_response_id",
                "previous_response_id",
            ),
            (
                with("tools", json!([{"type": "web_search", "search_context_size": "low"}])),
                422,
                "tools",
                "web_search",
            ),
            (
                with("tools", json!([{"type": "function", "name": "f", "cache": 1}])),
                422,
                "tools",
                "tools[0].cache",
            ),
            (with("tools", json!([{"type": "function"}])), 400, "tools", "name"),
            (with("truncation", json!("auto")), 422, "truncation", "truncation"),
            (with("background", json!(true)), 422, "background", "background"),
            (with("tool_choice", json!({"type": "web_search"})), 400, "tool_choice", "tool_choice"),
            (with("text", json!({"format": {"type": "json_schema"}})), 400, "text", "json_schema"),
            (with("reasoning", json!({"effort": "max"})), 400, "reasoning", "effort"),
            (with("input", json!([])), 400, "input", "input"),
            (
                with("input", json!([{"type": "item_reference", "id": "msg_1"}])),
                400,
                "input",
                "item_reference",
            ),
            (
                with("input", json!([{"type": "web_search_call", "id": "ws_1"}])),
                422,
                "input",
                "web_search_call",
            ),
            (
                with("input", json!([{"role": "user", "content": "a", "cache_control": {}}])),
                422,
                "input",
                "input[0].cache_control",
            ),
            (with("input", json!([{"role": "tool", "content": "a"}])), 400, "input", "role"),
            (
                with(
                    "input",
                    json!([{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]),
                ),
                422,
                "input",
                "input_file",
            ),
            (
                with(
                    "input",
                    json!([{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x/y.png"}]}]),
                ),
                422,
                "input",
                "ftp",
            ),
            (
                with("input", json!([{"type": "function_call", "name": "f", "arguments": "{}"}])),
                400,
                "input",
                "call_id",
            ),
            (
                with(
                    "input",
                    json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]),
                ),
                400,
                "input",
                "arguments",
            ),
        ] {
            let error = read(body.clone()).unwrap_err();
            assert_eq!(error.error.status().as_u16(), status, "{body}");
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
            assert!(
                error.error.public_message().contains(named),
                "{body}: {}",
                error.error.public_message()
            );
        }
        // Null is absent, and so is `store: false`.
        read(
            json!({"model": "m", "input": [{"role": "user", "content": "a", "cache_control": null}],
                    "store": null, "previous_response_id": null, "conversation": null}),
        )
        .unwrap();
    }

    #[test]
    fn a_whole_answer_takes_the_response_object_s_shape() {
        let answer = UnifiedResponse {
            text: "Hi".to_owned(),
            stop_reason: StopReason::ToolUse,
            usage: Usage { input_tokens: Some(10), output_tokens: Some(4) },
            tool_calls: vec![translator::ToolCall {
                id: "t1".to_owned(),
                name: "weather".to_owned(),
                input: json!({"city": "Oslo"}),
            }],
            reasoning: Some("hm".to_owned()),
        };
        let cache = CacheTokens { read: Some(2), write: Some(1) };
        assert_eq!(
            shape().whole(&answer, cache),
            json!({
                "id": "resp_ab", "object": "response", "created_at": 7, "status": "completed",
                "background": false, "error": null, "incomplete_details": null,
                "instructions": null, "max_output_tokens": null, "metadata": {}, "model": "m",
                "output": [
                    {"type": "reasoning", "id": "rs_ab_0",
                     "summary": [{"type": "summary_text", "text": "hm"}]},
                    {"type": "message", "id": "msg_ab_1", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}]},
                    {"type": "function_call", "id": "fc_ab_2", "call_id": "t1", "name": "weather",
                     "arguments": "{\"city\":\"Oslo\"}", "status": "completed"},
                ],
                "parallel_tool_calls": false, "previous_response_id": null,
                "reasoning": {"effort": null, "summary": null}, "store": false,
                "temperature": null, "text": {"format": null}, "tool_choice": null, "tools": [],
                "top_p": null, "truncation": "disabled",
                "usage": {"input_tokens": 13, "input_tokens_details": {"cached_tokens": 2},
                          "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0},
                          "total_tokens": 17},
                "user": null,
            })
        );
        let truncated = UnifiedResponse {
            text: "Once".to_owned(),
            stop_reason: StopReason::MaxTokens,
            ..UnifiedResponse::default()
        };
        let body = shape().whole(&truncated, CacheTokens::default());
        assert_eq!(
            (&body["status"], &body["incomplete_details"]),
            (&json!("incomplete"), &json!({"reason": "max_output_tokens"}))
        );
        assert_eq!(body["output"][0]["status"], "incomplete");
    }

    /// The events of `items` as (event name, data) pairs.
    fn events(items: Vec<StreamItem>) -> Vec<(String, Value)> {
        let mut events = Events::new(shape(), None);
        let mut out = Vec::new();
        events.start(&mut out);
        for item in items {
            events.push(&mut out, item);
        }
        let text = String::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|block| !block.is_empty())
            .map(|block| {
                let (event, data) = block.split_once('\n').unwrap();
                let event = event.strip_prefix("event: ").unwrap().to_owned();
                let data: Value =
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], event.as_str());
                (event, data)
            })
            .collect()
    }

    #[test]
    fn a_stream_of_text_then_a_call_takes_the_responses_events() {
        let call = |id: Option<&str>, arguments: &str| {
            StreamItem::ToolCall(translator::ToolCallDelta {
                index: 0,
                id: id.map(str::to_owned),
                name: id.map(|_| "weather".to_owned()),
                arguments: arguments.to_owned(),
            })
        };
        let got = events(vec![
            StreamItem::Delta("Hi".to_owned()),
            StreamItem::Delta(" there".to_owned()),
            call(Some("t1"), ""),
            call(None, "{\"city\":"),
            call(None, "\"Oslo\"}"),
            StreamItem::Done {
                stop_reason: StopReason::ToolUse,
                usage: Usage { input_tokens: Some(3), output_tokens: Some(5) },
                cache: CacheTokens::default(),
            },
        ]);
        let message = json!({"type": "message", "id": "msg_ab_0", "status": "completed",
                             "role": "assistant", "content": [{"type": "output_text",
                             "text": "Hi there", "annotations": [], "logprobs": []}]});
        let function_call = json!({"type": "function_call", "id": "fc_ab_1", "call_id": "t1",
                                   "name": "weather", "arguments": "{\"city\":\"Oslo\"}",
                                   "status": "completed"});
        let mut expected_whole = shape().object(
            "completed",
            vec![message.clone(), function_call.clone()],
            usage_body(
                Usage { input_tokens: Some(3), output_tokens: Some(5) },
                CacheTokens::default(),
            ),
            None,
        );
        expected_whole["status"] = json!("completed");
        let in_progress = shape().object("in_progress", Vec::new(), Value::Null, None);
        let expected: Vec<(&str, Value)> = vec![
            ("response.created", json!({"response": in_progress})),
            ("response.in_progress", json!({"response": in_progress})),
            (
                "response.output_item.added",
                json!({"output_index": 0, "item": {"type": "message",
                "id": "msg_ab_0", "status": "in_progress", "role": "assistant", "content": []}}),
            ),
            (
                "response.content_part.added",
                json!({"item_id": "msg_ab_0", "output_index": 0,
                "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
            ),
            (
                "response.output_text.delta",
                json!({"item_id": "msg_ab_0", "output_index": 0,
                "content_index": 0, "delta": "Hi", "logprobs": []}),
            ),
            (
                "response.output_text.delta",
                json!({"item_id": "msg_ab_0", "output_index": 0,
                "content_index": 0, "delta": " there", "logprobs": []}),
            ),
            (
                "response.output_text.done",
                json!({"item_id": "msg_ab_0", "output_index": 0,
                "content_index": 0, "text": "Hi there", "logprobs": []}),
            ),
            (
                "response.content_part.done",
                json!({"item_id": "msg_ab_0", "output_index": 0,
                "content_index": 0, "part": {"type": "output_text", "text": "Hi there", "annotations": [], "logprobs": []}}),
            ),
            ("response.output_item.done", json!({"output_index": 0, "item": message})),
            (
                "response.output_item.added",
                json!({"output_index": 1, "item": {"type": "function_call",
                "id": "fc_ab_1", "call_id": "t1", "name": "weather", "arguments": "",
                "status": "in_progress"}}),
            ),
            (
                "response.function_call_arguments.delta",
                json!({"item_id": "fc_ab_1", "output_index": 1,
                "delta": "{\"city\":"}),
            ),
            (
                "response.function_call_arguments.delta",
                json!({"item_id": "fc_ab_1", "output_index": 1,
                "delta": "\"Oslo\"}"}),
            ),
            (
                "response.function_call_arguments.done",
                json!({"item_id": "fc_ab_1", "output_index": 1,
                "name": "weather", "arguments": "{\"city\":\"Oslo\"}"}),
            ),
            ("response.output_item.done", json!({"output_index": 1, "item": function_call})),
            ("response.completed", json!({"response": expected_whole})),
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (n, ((event, data), (want_event, mut want))) in
            got.into_iter().zip(expected).enumerate()
        {
            want["type"] = json!(want_event);
            want["sequence_number"] = json!(n);
            assert_eq!((event.as_str(), &data), (want_event, &want), "event {n}");
        }
    }

    #[test]
    fn a_stream_that_breaks_ends_with_error_then_response_failed() {
        let got = events(vec![
            StreamItem::Reasoning("hm".to_owned()),
            StreamItem::Failed(ApiError::MalformedUpstream("cut".to_owned())),
        ]);
        let names: Vec<&str> = got.iter().map(|(event, _)| event.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "error",
                "response.failed",
            ]
        );
        assert_eq!(
            got[4].1,
            json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 4,
                   "item_id": "rs_ab_0", "output_index": 0, "summary_index": 0, "delta": "hm"})
        );
        assert_eq!(
            got[5].1,
            json!({"type": "error", "sequence_number": 5, "code": "malformed_upstream",
                   "message": "Bedrock's answer could not be read by the gateway", "param": null})
        );
        let failed = &got[6].1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(
            failed["error"],
            json!({"code": "malformed_upstream",
            "message": "Bedrock's answer could not be read by the gateway"})
        );
        // An empty answer still has its message.
        let empty = events(vec![StreamItem::Done {
            stop_reason: StopReason::MaxTokens,
            usage: Usage::default(),
            cache: CacheTokens::default(),
        }]);
        let (last, data) = empty.last().unwrap();
        assert_eq!(last, "response.incomplete");
        assert_eq!(data["response"]["output"][0]["status"], "incomplete");
        assert_eq!(data["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
    }

    fn read_with(
        body: Value,
        history: History<'_>,
    ) -> Result<(UnifiedRequest, Echo, Option<Vec<Message>>), OpenAiError> {
        let bytes = body.to_string();
        let request: ResponsesRequest = parse_json(bytes.as_bytes()).map_err(OpenAiError::from)?;
        let nested = matches!(request.input, ResponsesInput::Items(_))
            .then(|| ("input", struct_fields::<InputItem>()));
        let unknown =
            UnknownFields::scan(bytes.as_bytes(), struct_fields::<ResponsesRequest>(), nested)
                .unwrap();
        unified_request(request, &unknown, history)
    }

    fn store_of(max_bytes: usize) -> Arc<ResponseStore> {
        Arc::new(ResponseStore::new(crate::routes::responses_store::StoreConfig {
            max_entries: 10,
            max_bytes,
            ttl: std::time::Duration::from_secs(60),
        }))
    }

    #[test]
    fn with_the_store_on_a_response_is_stored_unless_store_is_false() {
        let on = History { store_on: true, previous: None };
        let body = json!({"model": "m", "instructions": "Be brief.", "input": "Hi"});
        let (unified, echo, conversation) = read_with(body.clone(), on).unwrap();
        assert!(echo.store);
        // The instructions go to the model, not into the stored conversation.
        assert_eq!(
            unified.messages,
            [Message::text(Role::System, "Be brief."), Message::text(Role::User, "Hi")]
        );
        assert_eq!(conversation, Some(vec![Message::text(Role::User, "Hi")]));
        let mut kept = body.clone();
        kept["store"] = json!(true);
        assert!(read_with(kept, on).unwrap().1.store);
        let mut not_kept = body.clone();
        not_kept["store"] = json!(false);
        let (_, echo, conversation) = read_with(not_kept, on).unwrap();
        assert!(!echo.store && conversation.is_none());
        // With the store off, absent is not stored, as before.
        let (_, echo, conversation) = read_with(body, History::default()).unwrap();
        assert!(!echo.store && conversation.is_none());
    }

    #[test]
    fn previous_response_id_puts_the_stored_conversation_after_the_new_instructions() {
        let stored = vec![
            Message::text(Role::User, "Weather?"),
            Message {
                role: Role::Assistant,
                content: Content::Parts(vec![Part::ToolUse {
                    id: "c1".to_owned(),
                    name: "weather".to_owned(),
                    input: json!({}),
                }]),
            },
        ];
        let history = History { store_on: true, previous: Some(&stored) };
        let body = json!({"model": "m", "instructions": "Be brief.", "previous_response_id": "resp_1",
                          "input": [{"type": "function_call_output", "call_id": "c1", "output": "cold"},
                                    {"role": "user", "content": "And tomorrow?"}]});
        let (unified, echo, conversation) = read_with(body, history).unwrap();
        assert_eq!(echo.previous_response_id.as_deref(), Some("resp_1"));
        let result = Message {
            role: Role::User,
            content: Content::Parts(vec![
                Part::ToolResult {
                    tool_use_id: "c1".to_owned(),
                    content: "cold".to_owned(),
                    is_error: false,
                },
                Part::Text { text: "And tomorrow?".to_owned() },
            ]),
        };
        let mut expected = vec![Message::text(Role::System, "Be brief.")];
        expected.extend(stored.iter().cloned());
        expected.push(result);
        assert_eq!(unified.messages, expected);
        assert_eq!(conversation.as_deref(), Some(&expected[1..]));
        assert_eq!(
            shape_with(echo).object("completed", vec![], Value::Null, None)["previous_response_id"],
            "resp_1"
        );
    }

    fn shape_with(echo: Echo) -> Shape {
        Shape { echo, ..shape() }
    }

    #[test]
    fn a_saved_response_holds_its_conversation_and_its_object() {
        let store = store_of(crate::routes::responses_store::DEFAULT_MAX_BYTES);
        let saver = |conversation: Vec<Message>| Saver {
            store: store.clone(),
            id: "resp_ab".to_owned(),
            owner: Some("team-a".to_owned()),
            conversation,
        };
        let answer = UnifiedResponse {
            text: "Let me look.".to_owned(),
            stop_reason: StopReason::ToolUse,
            tool_calls: vec![translator::ToolCall {
                id: "t1".to_owned(),
                name: "weather".to_owned(),
                input: json!({"city": "Oslo"}),
            }],
            reasoning: Some("hm".to_owned()),
            ..UnifiedResponse::default()
        };
        let echo = Echo { store: true, ..Echo::default() };
        let object = shape_with(echo).whole(&answer, CacheTokens::default());
        let saved = saver(vec![Message::text(Role::User, "Weather?")]).save(object.clone());
        assert_eq!(saved, object);
        assert_eq!(saved["store"], true);
        assert!(store.get("resp_ab", None).is_none());
        let stored = store.get("resp_ab", Some("team-a")).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&stored.object).unwrap(), object);
        assert_eq!(
            stored.conversation,
            [
                Message::text(Role::User, "Weather?"),
                Message {
                    role: Role::Assistant,
                    content: Content::Parts(vec![
                        Part::Text { text: "Let me look.".to_owned() },
                        Part::ToolUse {
                            id: "t1".to_owned(),
                            name: "weather".to_owned(),
                            input: json!({"city": "Oslo"})
                        },
                    ]),
                },
            ]
        );
        // Over `store_max_bytes` alone: not kept, and the answer says so.
        let small = store_of(300);
        let saver = Saver {
            store: small.clone(),
            id: "resp_cd".to_owned(),
            owner: None,
            conversation: vec![Message::text(Role::User, "x".repeat(300))],
        };
        let saved = saver.save(object);
        assert_eq!(saved["store"], false);
        assert_eq!(small.usage(), (0, 0));
    }

    #[test]
    fn a_stream_is_stored_when_it_completes_and_not_when_it_fails() {
        let store = store_of(crate::routes::responses_store::DEFAULT_MAX_BYTES);
        let run = |items: Vec<StreamItem>| {
            let saver = Saver {
                store: store.clone(),
                id: "resp_ab".to_owned(),
                owner: None,
                conversation: vec![Message::text(Role::User, "Hi")],
            };
            let mut events =
                Events::new(shape_with(Echo { store: true, ..Echo::default() }), Some(saver));
            let mut out = Vec::new();
            events.start(&mut out);
            for item in items {
                events.push(&mut out, item);
            }
            String::from_utf8(out).unwrap()
        };
        let failed = run(vec![
            StreamItem::Delta("Hel".to_owned()),
            StreamItem::Failed(ApiError::MalformedUpstream("cut".to_owned())),
        ]);
        assert!(failed.contains("\"store\":true") && failed.contains("\"status\":\"failed\""));
        let last = failed.trim_end().rsplit("\n\n").next().unwrap();
        assert!(
            last.starts_with("event: response.failed") && last.contains("\"store\":false"),
            "{last}"
        );
        assert_eq!(store.usage().0, 0);
        let completed = run(vec![
            StreamItem::Delta("Hel".to_owned()),
            StreamItem::Delta("lo".to_owned()),
            StreamItem::Done {
                stop_reason: StopReason::EndTurn,
                usage: Usage::default(),
                cache: CacheTokens::default(),
            },
        ]);
        let last = completed.trim_end().rsplit("\n\n").next().unwrap();
        let data: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
        assert_eq!(data["response"]["store"], true);
        let stored = store.get("resp_ab", None).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&stored.object).unwrap(), data["response"]);
        assert_eq!(
            stored.conversation,
            [Message::text(Role::User, "Hi"), Message::text(Role::Assistant, "Hello")]
        );
    }
}
