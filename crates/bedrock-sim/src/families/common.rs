//! Request reading, hand-written body checks and answer pieces that several model families share.
//!
//! A helper lives here once a second family needs it; what only one family uses stays in that
//! family's file.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::BedrockError;
use crate::families::{Family, InvocationMetrics};
use crate::generate::{Completion, GenerationRequest, StopCause, fnv1a_64};
use crate::media_schema::type_mismatch;
use crate::schema::{Schema, as_integer, malformed_input, validate};

/// A family whose answers name the model, registered as one value that knows the models and
/// hands every call to the model's own value through [`Family::model_family`]; its [`Family`]
/// impl is the blanket one below.
pub(crate) trait PerModelFamily: Send + Sync {
    /// The value that answers calls to one model.
    type Model: Family + 'static;
    /// The own value of `base_model_id`, if this family simulates it.
    fn model(&self, base_model_id: &str) -> Option<&'static Self::Model>;
    /// Answers a call that reached the registered value instead of a model's own value; only
    /// [`crate::invoke`] builds answers, and it always resolves the model first. Its `id` and
    /// `streams` are the family's.
    fn unresolved_model(&self) -> &'static Self::Model;
}

impl<T: PerModelFamily> Family for T {
    fn id(&self) -> &'static str {
        self.unresolved_model().id()
    }

    fn matches(&self, base_model_id: &str) -> bool {
        self.model(base_model_id).is_some()
    }

    fn streams(&self) -> bool {
        self.unresolved_model().streams()
    }

    fn needs_inference_profile(&self, base_model_id: &str) -> bool {
        self.model(base_model_id).is_some_and(|model| model.needs_inference_profile(base_model_id))
    }

    fn model_family(&self, base_model_id: &str) -> Option<&'static dyn Family> {
        self.model(base_model_id).map(|model| model as &'static dyn Family)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let model = self.model(base_model_id).unwrap_or(self.unresolved_model());
        model.parse_request(base_model_id, body)
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        self.unresolved_model().response_body(completion)
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        self.unresolved_model().n_stream_chunks(completion)
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        self.unresolved_model().n_stream_tokens_sent(completion, n_chunks_sent)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        self.unresolved_model().stream_chunk(completion, chunk_idx, metrics)
    }
}

/// Whether a chat message's `content` may be JSON `null`, as OpenAI allows for an assistant
/// turn that only calls tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NullContent {
    Allowed,
    Refused,
}

/// `{"text", "stop_reason"}`: a DeepSeek-R1 choice or a Mistral text output, in the answer and
/// in each stream chunk.
#[derive(Serialize)]
pub(crate) struct TextWithStopReason<'a> {
    pub(crate) text: &'a str,
    pub(crate) stop_reason: Option<&'static str>,
}

impl<'a> TextWithStopReason<'a> {
    /// The whole answer `text` of `completion`, with its stop reason.
    pub(crate) fn answer(completion: &Completion, text: &'a str) -> Self {
        TextWithStopReason { text, stop_reason: Some(stop_or_length(&completion.stop)) }
    }

    /// Stream chunk `chunk_idx` of a stream of one chunk per token, then an empty one carrying
    /// the stop reason.
    pub(crate) fn stream_chunk(completion: &'a Completion, chunk_idx: usize) -> Self {
        let token = completion.tokens.get(chunk_idx);
        TextWithStopReason {
            text: token.map_or("", String::as_str),
            stop_reason: token.is_none().then(|| stop_or_length(&completion.stop)),
        }
    }
}

/// The strings of a JSON string array; anything else gives none.
pub(crate) fn string_array(value: Option<&Value>) -> Vec<String> {
    let items = value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// A JSON integer (an integer-valued float counts) that fits a `u32`, such as a validated
/// max-tokens value; `None` when it is absent or does not fit.
pub(crate) fn u32_value(value: Option<&Value>) -> Option<u32> {
    value.and_then(as_integer).and_then(|integer| u32::try_from(integer).ok())
}

/// The string at `key` of `body`, or `""` when there is none.
pub(crate) fn string_value(body: &Value, key: &str) -> String {
    body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `stop`, or `length` when max tokens cut the answer: the finish reason of the OpenAI-like
/// answers. A stop sequence is reported as a plain `stop`, like the model's own end.
pub(crate) fn stop_or_length(stop: &StopCause) -> &'static str {
    match stop {
        StopCause::EndOfText | StopCause::StopSequence(_) => "stop",
        StopCause::MaxTokens => "length",
    }
}

/// `COMPLETE`, or `MAX_TOKENS` when max tokens cut the answer: Cohere's finish reason. A stop
/// sequence is reported as `COMPLETE`, like the model's own end.
pub(crate) fn complete_or_max_tokens(stop: &StopCause) -> &'static str {
    match stop {
        StopCause::EndOfText | StopCause::StopSequence(_) => "COMPLETE",
        StopCause::MaxTokens => "MAX_TOKENS",
    }
}

/// A UUID-shaped id that is a pure function of `seed` and `salt` (Cohere's answer ids).
pub(crate) fn uuid_from(seed: u64, salt: u64) -> String {
    let low = fnv1a_64(&[seed.to_be_bytes(), salt.to_be_bytes()].concat());
    uuid::Uuid::from_u64_pair(seed ^ salt, low).hyphenated().to_string()
}

/// At most `max_items` items in the array at `key` of `body`, worded like the validator's
/// `maxItems` message; checked after the schema so that it is reported alone.
pub(crate) fn check_max_items(
    body: &Value,
    key: &str,
    max_items: usize,
) -> Result<(), BedrockError> {
    let n_items = body.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    if n_items > max_items {
        return Err(malformed_input(&format!(
            "#/{key}: expected maximum item count: {max_items}, found: {n_items}"
        )));
    }
    Ok(())
}

/// Validates `body` against `schema` with each of `masked_keys` that is present replaced by an
/// empty string: the schema declares those keys as strings so that required and extraneous
/// keys are still checked, and the caller checks their real shape by hand.
pub(crate) fn validate_masked(
    schema: &Schema,
    body: &Value,
    masked_keys: &[&str],
) -> Result<(), BedrockError> {
    let mut masked = body.clone();
    if let Some(object) = masked.as_object_mut() {
        for key in masked_keys {
            if let Some(value) = object.get_mut(*key) {
                *value = Value::String(String::new());
            }
        }
    }
    validate(schema, &masked)
}

/// A violation for each of `keys` that `object` (at `pointer`) lacks.
pub(crate) fn check_required_keys(
    object: &Map<String, Value>,
    pointer: &str,
    keys: &[&str],
    violations: &mut Vec<String>,
) {
    for key in keys {
        if !object.contains_key(*key) {
            violations.push(format!("{pointer}: required key [{key}] not found"));
        }
    }
}

/// A violation for each key of `object` (at `pointer`) that is not `allowed`.
pub(crate) fn check_extraneous_keys(
    object: &Map<String, Value>,
    pointer: &str,
    allowed: &[&str],
    violations: &mut Vec<String>,
) {
    for key in object.keys() {
        if !allowed.contains(&key.as_str()) {
            violations.push(format!("{pointer}: extraneous key [{key}] is not permitted"));
        }
    }
}

/// The violations of OpenAI-style chat `messages` (`#/messages/<idx>`): each is an object with
/// the `required` keys and no key outside `allowed`, whose `content` is a string or a list of
/// parts (or `null`, where `null_content` allows it). Roles are left to the caller.
pub(crate) fn check_chat_messages(
    messages: &[Value],
    required: &[&str],
    allowed: &[&str],
    null_content: NullContent,
    violations: &mut Vec<String>,
) {
    for (idx, message) in messages.iter().enumerate() {
        let pointer = format!("#/messages/{idx}");
        let Some(object) = message.as_object() else {
            violations.push(type_mismatch(&pointer, "JSONObject", message));
            continue;
        };
        check_required_keys(object, &pointer, required, violations);
        check_extraneous_keys(object, &pointer, allowed, violations);
        match object.get("content") {
            None | Some(Value::String(_) | Value::Array(_)) => {}
            Some(Value::Null) if null_content == NullContent::Allowed => {}
            Some(other) => violations.push(type_mismatch(
                &format!("{pointer}/content"),
                "String or JSONArray",
                other,
            )),
        }
    }
}

/// The text of an OpenAI-style chat message: its string content, or the `text` of its text
/// parts.
pub(crate) fn message_texts(message: &Value) -> Vec<&str> {
    match message.get("content") {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}
