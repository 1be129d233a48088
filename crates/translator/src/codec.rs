//! What every family shares around its own encode and decode: the check that a request
//! only sets parameters the family honours, validation, the merge of `extra` into the
//! body, emulated stop sequences, and the stateful stream decoder.

use serde_json::{Map, Value};

use crate::embed::{EmbedRequest, Embeddings};
use crate::error::TranslateError;
use crate::families::{EmbeddingFamily, ImageFamily, StreamTextFilter, TextFamily};
use crate::image::{ImageRequest, Images};
use crate::unified::{
    Param, ResponseFormat, StopReason, StreamAccumulator, Tool, ToolCallDelta, ToolChoice,
    UnifiedRequest, UnifiedResponse, Usage,
};

/// The InvokeModel body of a text request: parameters checked against the family,
/// the request validated, the family's body built and `extra` merged in.
pub fn encode_text_request(
    family: &dyn TextFamily,
    req: &UnifiedRequest,
) -> Result<Value, TranslateError> {
    let with_tool;
    let req = match structured_output_tool(family, req)? {
        Some(tool) => {
            with_tool = UnifiedRequest {
                tool_choice: Some(ToolChoice::Tool(tool.name.clone())),
                tools: vec![tool],
                response_format: None,
                ..req.clone()
            };
            &with_tool
        }
        None => req,
    };
    check_params(family.id(), family.params(), &req.params_set())?;
    req.validate()?;
    let mut body = family.encode_request(req)?;
    merge_extra(family.id(), &mut body, &req.extra, family.mapped_paths())?;
    Ok(body)
}

/// The answer of an InvokeModel response, cut at the first of the stop sequences the
/// gateway emulates for this request ([`TextFamily::emulated_stops`]), which then
/// reports `stop_sequence`.
pub fn decode_text_response(
    family: &dyn TextFamily,
    req: &UnifiedRequest,
    body: &[u8],
) -> Result<UnifiedResponse, TranslateError> {
    let mut answer = family.decode_response(body)?;
    if !req.reasoning {
        answer.reasoning = None;
    }
    if let Some(name) = structured_output_tool_name(family, req) {
        // The forced call's input is the answer; a model that answered in text instead
        // (it should not) keeps its text.
        if let Some(at) = answer.tool_calls.iter().position(|call| call.name == name) {
            let call = answer.tool_calls.remove(at);
            answer.text = call.input.to_string();
            answer.tool_calls.clear();
            if answer.stop_reason == StopReason::ToolUse {
                answer.stop_reason = StopReason::EndTurn;
            }
        }
    }
    if let Some(at) = find_stop(&answer.text, &family.emulated_stops(&req.stop)) {
        answer.text.truncate(at);
        answer.stop_reason = StopReason::StopSequence;
    }
    Ok(answer)
}

/// The name of the tool a structured output (`response_format`) is asked for through, on a
/// family that has tools but no structured output of its own.
fn structured_output_tool_name<'a>(
    family: &dyn TextFamily,
    req: &'a UnifiedRequest,
) -> Option<&'a str> {
    let params = family.params();
    if params.contains(&Param::ResponseFormat) || !params.contains(&Param::Tools) {
        return None;
    }
    match req.response_format.as_ref()? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(JSON_OBJECT_TOOL),
        ResponseFormat::JsonSchema { name, .. } if is_tool_name(name) => Some(name),
        ResponseFormat::JsonSchema { .. } => Some(JSON_SCHEMA_TOOL),
    }
}

/// The tool a structured output is asked for through (see [`structured_output_tool_name`]):
/// its parameters are the schema (any object for `json_object`), and the request forces
/// its call. With tools of the caller's as well it is refused: the forced call would keep
/// the model from calling them.
fn structured_output_tool(
    family: &dyn TextFamily,
    req: &UnifiedRequest,
) -> Result<Option<Tool>, TranslateError> {
    let Some(name) = structured_output_tool_name(family, req) else {
        return Ok(None);
    };
    if !req.tools.is_empty() || req.tool_choice.is_some() {
        return Err(TranslateError::Unsupported {
            family: family.id(),
            feature: "`response_format` together with `tools` (the model's structured output \
                      is a forced tool call)"
                .to_owned(),
        });
    }
    let parameters = match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => schema.clone(),
        _ => serde_json::json!({"type": "object"}),
    };
    Ok(Some(Tool {
        name: name.to_owned(),
        description: Some(
            "Give the answer by calling this tool: its input is the answer, as JSON.".to_owned(),
        ),
        parameters,
    }))
}

/// The tool of a `json_object` response format.
const JSON_OBJECT_TOOL: &str = "json_object";

/// The tool of a JSON-schema response format whose name is not a valid tool name.
const JSON_SCHEMA_TOOL: &str = "structured_output";

/// Whether `name` is a tool name every family accepts (as [`UnifiedRequest::validate`] checks).
fn is_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The bodies for an embedding request: the texts split into batches the family takes,
/// in order, then the images likewise (never a text and an image in one call). The
/// answers of the calls, decoded with [`decode_embed_response`] and concatenated in the
/// same order, are the vectors of `req.input` then of `req.images`.
pub fn encode_embed_requests(
    family: &dyn EmbeddingFamily,
    req: &EmbedRequest,
) -> Result<Vec<Value>, TranslateError> {
    check_params(family.id(), family.params(), &req.params_set())?;
    req.validate()?;
    let batch = family.max_batch().max(1);
    let text_bodies = req.input.chunks(batch).map(|texts| family.encode_request(texts, req));
    let image_bodies =
        req.images.chunks(batch).map(|images| family.encode_image_request(images, req));
    text_bodies
        .chain(image_bodies)
        .map(|body| {
            let mut body = body?;
            merge_extra(family.id(), &mut body, &req.extra, family.mapped_paths())?;
            Ok(body)
        })
        .collect()
}

/// The vectors of one embedding call, checked to be one per text sent.
pub fn decode_embed_response(
    family: &dyn EmbeddingFamily,
    n_texts: usize,
    body: &[u8],
) -> Result<Embeddings, TranslateError> {
    let embeddings = family.decode_response(body)?;
    if embeddings.vectors.len() != n_texts {
        return Err(TranslateError::MalformedResponse {
            family: family.id(),
            detail: format!("{} embeddings for {n_texts} input texts", embeddings.vectors.len()),
        });
    }
    Ok(embeddings)
}

/// The InvokeModel body of an image request.
pub fn encode_image_request(
    family: &dyn ImageFamily,
    req: &ImageRequest,
) -> Result<Value, TranslateError> {
    check_params(family.id(), family.params(), &req.params_set())?;
    req.validate()?;
    let mut body = family.encode_request(req)?;
    merge_extra(family.id(), &mut body, &req.extra, family.mapped_paths())?;
    Ok(body)
}

/// The images of an InvokeModel response, at least one.
pub fn decode_image_response(
    family: &dyn ImageFamily,
    body: &[u8],
) -> Result<Images, TranslateError> {
    let images = family.decode_response(body)?;
    if images.images.is_empty() {
        return Err(TranslateError::MalformedResponse {
            family: family.id(),
            detail: "the response has no image".to_owned(),
        });
    }
    Ok(images)
}

/// Decodes a text stream chunk by chunk: text deltas as they come (held back only as
/// far as an emulated stop sequence could still be forming), then the stop reason and
/// usage at the end.
pub struct TextStreamDecoder {
    family: &'static dyn TextFamily,
    accumulator: StreamAccumulator,
    /// Set where the family's events' text is not yet answer text
    /// ([`TextFamily::stream_text_filter`]); it runs before the stop cutter.
    text_filter: Option<Box<dyn StreamTextFilter>>,
    /// Set where the request has stops the gateway emulates.
    stop_cutter: Option<StopCutter>,
    stopped_by_cutter: bool,
    /// The model's own index of each tool call seen, in order: a call's place here is the
    /// index the caller sees (0, 1, 2, ... whatever the model numbers: Claude numbers
    /// content blocks, text ones too).
    tool_indexes: Vec<u32>,
    /// The tool of a structured output asked for through a forced call: its arguments are
    /// the answer's text.
    structured_output_tool: Option<String>,
    /// Whether the request asked for the model's reasoning.
    reasoning: bool,
}

/// What one chunk gives the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Text to forward now; may be empty. Before it, on the chunks that carry them: a piece
    /// of reasoning, and pieces of tool calls.
    pub text: String,
    /// A piece of the model's reasoning (only when the request asked for it).
    pub reasoning: String,
    /// The pieces of tool calls, in the chunk's order, each `index` counting the answer's
    /// calls from 0.
    pub tool_calls: Vec<ToolCallDelta>,
    /// The answer is complete: an emulated stop sequence was found. The rest of the
    /// upstream stream should not be read.
    pub finished: bool,
    /// The chunk had a shape the family does not know ([`crate::StreamEvent::unrecognized`]).
    pub unrecognized: bool,
}

/// The end of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Text still held back, to forward before the final event.
    pub text: String,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

impl TextStreamDecoder {
    pub fn new(family: &'static dyn TextFamily, req: &UnifiedRequest) -> TextStreamDecoder {
        let emulated = family.emulated_stops(&req.stop);
        let stop_cutter = (!emulated.is_empty()).then(|| StopCutter::new(emulated));
        TextStreamDecoder {
            family,
            accumulator: StreamAccumulator::default(),
            text_filter: family.stream_text_filter(),
            stop_cutter,
            stopped_by_cutter: false,
            tool_indexes: Vec::new(),
            structured_output_tool: structured_output_tool_name(family, req).map(str::to_owned),
            reasoning: req.reasoning,
        }
    }

    /// Decodes one chunk (the base64-decoded `bytes` of a `chunk` frame).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Decoded, TranslateError> {
        if self.stopped_by_cutter {
            return Ok(Decoded { finished: true, ..Decoded::default() });
        }
        let mut event = self.family.decode_stream_event(chunk)?;
        if self.structured_output_tool.is_some() && event.stop_reason == Some(StopReason::ToolUse) {
            event.stop_reason = Some(StopReason::EndTurn);
        }
        self.accumulator.push(&event);
        let unrecognized = event.unrecognized;
        let mut reasoning = if self.reasoning { event.reasoning } else { String::new() };
        let mut text = match &mut self.text_filter {
            Some(filter) => {
                let text = filter.push(&event.text);
                if self.reasoning {
                    reasoning.push_str(&filter.take_reasoning());
                }
                text
            }
            None => event.text,
        };
        let mut tool_calls = event.tool_calls;
        for delta in &mut tool_calls {
            let index = match self.tool_indexes.iter().position(|&seen| seen == delta.index) {
                Some(index) => index,
                None => {
                    self.tool_indexes.push(delta.index);
                    self.tool_indexes.len() - 1
                }
            };
            delta.index = u32::try_from(index).unwrap_or(u32::MAX);
        }
        if self.structured_output_tool.is_some() {
            for delta in tool_calls.drain(..) {
                text.push_str(&delta.arguments);
            }
        }
        let Some(cutter) = &mut self.stop_cutter else {
            return Ok(Decoded { text, reasoning, tool_calls, finished: false, unrecognized });
        };
        let (text, found) = cutter.push(&text);
        self.stopped_by_cutter = found;
        Ok(Decoded { text, reasoning, tool_calls, finished: found, unrecognized })
    }

    /// Ends the stream: complete only if the model (or an emulated stop) said why it stopped.
    pub fn finish(mut self) -> Result<Finished, TranslateError> {
        let usage = self.accumulator.usage();
        if self.stopped_by_cutter {
            return Ok(Finished {
                text: String::new(),
                stop_reason: StopReason::StopSequence,
                usage,
            });
        }
        let (stop_reason, usage) = self.accumulator.finish()?;
        let held = self.text_filter.as_mut().map(|filter| filter.finish()).unwrap_or_default();
        let Some(mut cutter) = self.stop_cutter else {
            return Ok(Finished { text: held, stop_reason, usage });
        };
        let (mut text, found) = cutter.push(&held);
        if found {
            return Ok(Finished { text, stop_reason: StopReason::StopSequence, usage });
        }
        text.push_str(&cutter.flush());
        Ok(Finished { text, stop_reason, usage })
    }
}

/// Cuts streamed text at the first stop sequence, holding back the shortest tail that
/// could still be the start of one.
#[derive(Debug, Clone)]
struct StopCutter {
    stops: Vec<String>,
    pending: String,
}

impl StopCutter {
    fn new(stops: Vec<String>) -> StopCutter {
        StopCutter { stops, pending: String::new() }
    }

    /// Returns the text safe to forward, and whether a stop sequence was found (the
    /// text then ends just before it).
    fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(at) = find_stop(&self.pending, &self.stops) {
            let out = self.pending[..at].to_owned();
            self.pending.clear();
            return (out, true);
        }
        // Keep the longest suffix that is a proper prefix of some stop sequence.
        let keep = self
            .pending
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.pending[i..];
                self.stops.iter().any(|stop| stop.starts_with(tail))
            })
            .unwrap_or(self.pending.len());
        let out = self.pending[..keep].to_owned();
        self.pending.drain(..keep);
        (out, false)
    }

    fn flush(self) -> String {
        self.pending
    }
}

/// The byte offset of the earliest occurrence of any stop sequence.
fn find_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter_map(|stop| text.find(stop.as_str())).min()
}

/// Refuses a request that sets a parameter the family does not honour (422).
fn check_params(
    family: &'static str,
    supported: &[Param],
    set: &[Param],
) -> Result<(), TranslateError> {
    match set.iter().find(|param| !supported.contains(param)) {
        Some(param) => Err(TranslateError::Unsupported {
            family,
            feature: format!("`{}`", param.field_name()),
        }),
        None => Ok(()),
    }
}

/// Merges `extra` into `body`, objects recursively. A key that a unified field maps
/// to (one of `mapped_paths`), or that the body already has, is refused: the unified
/// field is the one way to set it.
pub(crate) fn merge_extra(
    family: &'static str,
    body: &mut Value,
    extra: &Map<String, Value>,
    mapped_paths: &[&str],
) -> Result<(), TranslateError> {
    let Value::Object(body) = body else {
        return Err(TranslateError::InvalidRequest(format!(
            "`extra` cannot be merged into the {family} body"
        )));
    };
    merge_object(family, body, extra, "", mapped_paths)
}

fn merge_object(
    family: &'static str,
    body: &mut Map<String, Value>,
    extra: &Map<String, Value>,
    prefix: &str,
    mapped_paths: &[&str],
) -> Result<(), TranslateError> {
    for (key, value) in extra {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let collides = |path: &str| {
            TranslateError::InvalidRequest(format!(
                "`extra.{path}` collides with a field the gateway sets for the {family} family; \
                 use the unified field instead"
            ))
        };
        if mapped_paths.contains(&path.as_str()) {
            return Err(collides(&path));
        }
        match (body.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(extra_inner)) => {
                merge_object(family, inner, extra_inner, &path, mapped_paths)?;
            }
            (Some(_), _) => return Err(collides(&path)),
            // A new object may still hold mapped keys deeper down: merge it key by key.
            (None, Value::Object(extra_inner)) => {
                let mut inner = Map::new();
                merge_object(family, &mut inner, extra_inner, &path, mapped_paths)?;
                body.insert(key.clone(), Value::Object(inner));
            }
            (None, _) => {
                body.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stop_cutter_holds_back_only_a_possible_prefix() {
        let mut cutter = StopCutter::new(vec!["STOP".to_owned()]);
        assert_eq!(cutter.push("hello S"), ("hello ".to_owned(), false));
        assert_eq!(cutter.push("T"), (String::new(), false));
        assert_eq!(cutter.push("ay"), ("STay".to_owned(), false));
        assert_eq!(cutter.push(" now ST"), (" now ".to_owned(), false));
        assert_eq!(cutter.push("OP and more"), (String::new(), true));
    }

    #[test]
    fn stop_cutter_finds_the_earliest_of_several() {
        let mut cutter = StopCutter::new(vec!["zz".to_owned(), "b".to_owned()]);
        assert_eq!(cutter.push("a b zz"), ("a ".to_owned(), true));
        let cutter = StopCutter::new(vec!["é!".to_owned()]);
        let mut cutter = cutter;
        assert_eq!(cutter.push("café"), ("caf".to_owned(), false));
        assert_eq!(cutter.flush(), "é");
    }

    fn text_family(id: &str) -> &'static dyn TextFamily {
        match crate::families::family_by_id(id) {
            Some(crate::families::FamilyRef::Text(family)) => family,
            other => panic!("{id}: {other:?}"),
        }
    }

    fn request_with_stops(stops: &[&str]) -> UnifiedRequest {
        UnifiedRequest {
            prompt: Some("hi".to_owned()),
            stop: stops.iter().map(|s| (*s).to_owned()).collect(),
            ..UnifiedRequest::default()
        }
    }

    #[test]
    fn default_emulated_stops_follow_the_stop_mode() {
        let stop = vec!["a".to_owned(), "b".to_owned()];
        assert!(text_family("anthropic_claude_text").emulated_stops(&stop).is_empty());
        assert_eq!(text_family("meta_llama3").emulated_stops(&stop), stop);
    }

    #[test]
    fn stream_decoder_cuts_only_the_emulated_stops_across_chunks() {
        // Titan sends `User:` natively and the gateway emulates `END` and `|x`.
        let titan = text_family("titan_text");
        let req = request_with_stops(&["User:", "END", "|x"]);
        let mut decoder = TextStreamDecoder::new(titan, &req);
        let first = decoder.push(br#"{"outputText":"a User: b E","inputTextTokenCount":3}"#);
        assert_eq!(first.unwrap(), Decoded { text: "a User: b ".to_owned(), ..Decoded::default() });
        let second = decoder.push(br#"{"outputText":"ND more"}"#).unwrap();
        assert_eq!(second, Decoded { finished: true, ..Decoded::default() });
        // Nothing after the cut is read.
        let after = decoder.push(br#"{"outputText":"x","completionReason":"FINISH"}"#).unwrap();
        assert!(after.finished && after.text.is_empty());
        let finished = decoder.finish().unwrap();
        assert_eq!(finished.stop_reason, StopReason::StopSequence);
        assert_eq!(finished.usage.input_tokens, Some(3));

        // With only the native stop there is nothing to hold back or cut.
        let req = request_with_stops(&["User:"]);
        let mut decoder = TextStreamDecoder::new(titan, &req);
        let text = decoder.push(br#"{"outputText":"a User: b U"}"#).unwrap().text;
        assert_eq!(text, "a User: b U");
        decoder.push(br#"{"outputText":"","completionReason":"FINISH"}"#).unwrap();
        assert_eq!(decoder.finish().unwrap().stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn stream_decoder_flushes_a_held_back_prefix_when_no_stop_came() {
        let req = request_with_stops(&["User:", "ENDING"]);
        let mut decoder = TextStreamDecoder::new(text_family("titan_text"), &req);
        assert_eq!(decoder.push(br#"{"outputText":"so END"}"#).unwrap().text, "so ");
        let last = br#"{"outputText":"","completionReason":"LENGTH"}"#;
        assert_eq!(decoder.push(last).unwrap().text, "");
        let finished = decoder.finish().unwrap();
        assert_eq!((finished.text.as_str(), finished.stop_reason), ("END", StopReason::MaxTokens));
    }

    #[test]
    fn whole_answer_is_cut_at_the_first_emulated_stop() {
        let titan = text_family("titan_text");
        let body = br#"{"inputTextTokenCount":2,"results":[{"tokenCount":9,
            "outputText":"one |x two END three","completionReason":"LENGTH"}]}"#;
        let req = request_with_stops(&["User:", "END", "|x"]);
        let answer = decode_text_response(titan, &req, body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("one ", StopReason::StopSequence));
        // `|x` is not one Titan takes, so it is cut here too.
        let req = request_with_stops(&["|x"]);
        let body = br#"{"results":[{"outputText":"a |x b","completionReason":"FINISH"}]}"#;
        let answer = decode_text_response(titan, &req, body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("a ", StopReason::StopSequence));
        // A native stop is the model's to honour: the text is left as it came.
        let req = request_with_stops(&["User:"]);
        let body = br#"{"results":[{"outputText":"a User: b","completionReason":"FINISH"}]}"#;
        let answer = decode_text_response(titan, &req, body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("a User: b", StopReason::EndTurn));
    }

    /// A family with tools and reasoning, whose body echoes the tools and choice and whose
    /// chunks are already `StreamEvent`s: for the codec's rules around families.
    struct ToolFamily;

    impl TextFamily for ToolFamily {
        fn id(&self) -> &'static str {
            "tool_family"
        }
        fn matches(&self, _: &str) -> bool {
            false
        }
        fn params(&self) -> &'static [Param] {
            &[Param::Tools, Param::Reasoning]
        }
        fn mapped_paths(&self) -> &'static [&'static str] {
            &[]
        }
        fn encode_request(&self, req: &UnifiedRequest) -> Result<Value, TranslateError> {
            Ok(json!({"tools": req.tools, "tool_choice": req.tool_choice}))
        }
        fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
            Ok(serde_json::from_slice(body).unwrap())
        }
        fn decode_stream_event(
            &self,
            chunk: &[u8],
        ) -> Result<crate::unified::StreamEvent, TranslateError> {
            Ok(serde_json::from_slice(chunk).unwrap())
        }
    }

    fn structured(format: ResponseFormat) -> UnifiedRequest {
        UnifiedRequest {
            prompt: Some("hi".to_owned()),
            response_format: Some(format),
            ..UnifiedRequest::default()
        }
    }

    #[test]
    fn a_structured_output_without_a_native_one_is_a_forced_tool_call() {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
        let req = structured(ResponseFormat::JsonSchema {
            name: "place".to_owned(),
            schema: schema.clone(),
            strict: true,
        });
        let body = encode_text_request(&ToolFamily, &req).unwrap();
        assert_eq!(body["tools"][0]["name"], "place");
        assert_eq!(body["tools"][0]["parameters"], schema);
        assert_eq!(body["tool_choice"], json!({"tool": "place"}));
        let answer = br#"{"text":"","stop_reason":"tool_use","usage":{"input_tokens":1,
            "output_tokens":2},"tool_calls":[{"id":"t1","name":"place","input":{"city":"Oslo"}}]}"#;
        let answer = decode_text_response(&ToolFamily, &req, answer).unwrap();
        assert_eq!(answer.text, r#"{"city":"Oslo"}"#);
        assert_eq!((answer.stop_reason, answer.tool_calls.len()), (StopReason::EndTurn, 0));

        // A schema name that is no tool name, and `json_object`, get a tool of their own.
        let odd = structured(ResponseFormat::JsonSchema {
            name: "a place!".to_owned(),
            schema: schema.clone(),
            strict: false,
        });
        let body = encode_text_request(&ToolFamily, &odd).unwrap();
        assert_eq!(body["tool_choice"], json!({"tool": "structured_output"}));
        let body = encode_text_request(&ToolFamily, &structured(ResponseFormat::JsonObject));
        assert_eq!(body.unwrap()["tools"][0]["parameters"], json!({"type": "object"}));

        // With the caller's own tools it is refused, naming the family.
        let mut with_tools = req.clone();
        with_tools.tools = vec![Tool {
            name: "f".to_owned(),
            description: None,
            parameters: json!({"type": "object"}),
        }];
        let err = encode_text_request(&ToolFamily, &with_tools).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "tool_family", .. }), "{err}");
        // A family without tools refuses it as it refuses any parameter it lacks.
        let err = encode_text_request(text_family("titan_text"), &req).unwrap_err();
        assert!(err.to_string().contains("response_format"), "{err}");
    }

    #[test]
    fn a_streamed_structured_output_is_text() {
        let req = structured(ResponseFormat::JsonObject);
        let mut decoder = TextStreamDecoder::new(&ToolFamily, &req);
        let start =
            decoder.push(br#"{"tool_calls":[{"index":3,"id":"t","name":"json_object"}]}"#).unwrap();
        assert_eq!(start, Decoded::default());
        let piece = decoder.push(br#"{"tool_calls":[{"index":3,"arguments":"{\"a\":"}]}"#).unwrap();
        assert_eq!((piece.text.as_str(), piece.tool_calls), ("{\"a\":", vec![]));
        // Several pieces in one chunk are appended in order.
        let pieces = decoder
            .push(br#"{"tool_calls":[{"index":3,"arguments":"1,"},{"index":3,"arguments":"\"b\":2}"}],"stop_reason":"tool_use"}"#)
            .unwrap();
        assert_eq!((pieces.text.as_str(), pieces.tool_calls), ("1,\"b\":2}", vec![]));
        assert_eq!(decoder.finish().unwrap().stop_reason, StopReason::EndTurn);
    }

    #[test]
    fn streamed_tool_calls_are_numbered_from_zero_and_reasoning_is_kept_only_when_asked() {
        let chunks: [&[u8]; 4] = [
            br#"{"reasoning":"hmm","text":"Let me look."}"#,
            br#"{"tool_calls":[{"index":1,"id":"a","name":"f"}]}"#,
            br#"{"tool_calls":[{"index":4,"id":"b","name":"g","arguments":"{}"}]}"#,
            br#"{"tool_calls":[{"index":1,"arguments":"{\"x\":1}"},{"index":7,"id":"c","name":"h"}],"stop_reason":"tool_use"}"#,
        ];
        let mut req = UnifiedRequest { prompt: Some("hi".to_owned()), ..UnifiedRequest::default() };
        for asked in [false, true] {
            req.reasoning = asked;
            let mut decoder = TextStreamDecoder::new(&ToolFamily, &req);
            let decoded: Vec<Decoded> = chunks.iter().map(|c| decoder.push(c).unwrap()).collect();
            let reasoning = if asked { "hmm" } else { "" };
            assert_eq!(
                (decoded[0].text.as_str(), decoded[0].reasoning.as_str()),
                ("Let me look.", reasoning)
            );
            let calls: Vec<_> = decoded[1..].iter().flat_map(|d| d.tool_calls.clone()).collect();
            let index_and_id: Vec<_> = calls.iter().map(|c| (c.index, c.id.clone())).collect();
            assert_eq!(
                index_and_id,
                [
                    (0, Some("a".to_owned())),
                    (1, Some("b".to_owned())),
                    (0, None),
                    (2, Some("c".to_owned()))
                ]
            );
            assert_eq!(decoded[3].tool_calls.len(), 2);
            assert_eq!(calls[2].arguments, r#"{"x":1}"#);
            assert_eq!(decoder.finish().unwrap().stop_reason, StopReason::ToolUse);
        }
        // A whole answer's reasoning likewise.
        let body = br#"{"text":"a","stop_reason":"end_turn","usage":{},"reasoning":"hmm"}"#;
        req.reasoning = false;
        assert_eq!(decode_text_response(&ToolFamily, &req, body).unwrap().reasoning, None);
        req.reasoning = true;
        let kept = decode_text_response(&ToolFamily, &req, body).unwrap().reasoning;
        assert_eq!(kept.as_deref(), Some("hmm"));
    }

    #[test]
    fn extra_merges_recursively_and_refuses_mapped_keys() {
        let mut body = json!({"inputText": "hi", "textGenerationConfig": {"topP": 0.5}});
        let extra = json!({"textGenerationConfig": {"custom": 1}, "new": true});
        merge_extra("f", &mut body, extra.as_object().unwrap(), &["textGenerationConfig.topP"])
            .unwrap();
        assert_eq!(
            body,
            json!({"inputText": "hi", "textGenerationConfig": {"topP": 0.5, "custom": 1}, "new": true})
        );
        for extra in [json!({"inputText": "x"}), json!({"textGenerationConfig": {"topP": 1}})] {
            let mut body = json!({"inputText": "hi", "textGenerationConfig": {"topP": 0.5}});
            let err = merge_extra("f", &mut body, extra.as_object().unwrap(), &[]).unwrap_err();
            assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
        }
        // A mapped key refused even when this request did not set it.
        let mut body = json!({"inputText": "hi"});
        let extra = json!({"textGenerationConfig": {"temperature": 1}});
        let err = merge_extra(
            "f",
            &mut body,
            extra.as_object().unwrap(),
            &["textGenerationConfig.temperature"],
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra.textGenerationConfig.temperature"), "{err}");
    }
}

/// The most output tokens a model-native InvokeModel body asks for, whatever its family:
/// the first of the families' own fields that is present (Titan's
/// `textGenerationConfig.maxTokenCount`, Nova's `inferenceConfig.maxTokens`, Claude's
/// `max_tokens_to_sample`, Llama's `max_gen_len`, and the `max_tokens` of most others).
/// `None` when the body sets none (the model's default applies).
pub fn max_output_tokens_in_body(body: &Value) -> Option<u32> {
    let as_count = |value: &Value| value.as_u64().and_then(|n| u32::try_from(n).ok());
    TOP_LEVEL.iter().find_map(|key| body.get(key).and_then(as_count)).or_else(|| {
        NESTED.iter().find_map(|(outer, inner)| body.get(outer)?.get(inner).and_then(as_count))
    })
}

/// The body fields [`max_output_tokens_in_body`] looks at: top-level counts, then counts
/// inside a top-level object, each list in order of precedence.
const TOP_LEVEL: [&str; 6] = [
    "max_tokens",
    "max_tokens_to_sample",
    "max_gen_len",
    "max_completion_tokens",
    "maxTokens",
    "max_new_tokens",
];
const NESTED: [(&str, &str); 3] = [
    ("textGenerationConfig", "maxTokenCount"),
    ("inferenceConfig", "maxTokens"),
    ("inferenceConfig", "max_new_tokens"),
];

/// [`max_output_tokens_in_body`] of a body's JSON text, read without building its value
/// tree: only the fields it looks at are kept (a number, else `null`), every other value is
/// skipped as it is read, so that a large body costs no more than its own bytes. `None`
/// for a body that is not a JSON object.
pub fn max_output_tokens_in_json(body: &[u8]) -> Option<u32> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// An object of which only `keep` is kept (their numbers; anything else as `null`), and
    /// the `nested` keys as objects of the same kind one level down; with `number`, a value
    /// that is kept only if it is a number. Whatever is not kept is skipped unread.
    struct Sparse {
        keep: &'static [&'static str],
        nested: &'static [&'static str],
        number: bool,
    }

    impl<'de> DeserializeSeed<'de> for Sparse {
        type Value = Value;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Sparse {
        type Value = Value;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            if self.number {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(Value::Null);
            }
            let mut kept = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = if self.keep.contains(&key.as_str()) {
                    map.next_value_seed(Sparse { keep: &[], nested: &[], number: true })?
                } else if self.nested.contains(&key.as_str()) {
                    let inner: &'static [&'static str] =
                        &["maxTokenCount", "maxTokens", "max_new_tokens"];
                    map.next_value_seed(Sparse { keep: inner, nested: &[], number: false })?
                } else {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                };
                kept.insert(key, value);
            }
            Ok(Value::Object(kept))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Value::Null)
        }

        fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
            Ok(if self.number { Value::from(value) } else { Value::Null })
        }

        fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
            Ok(if self.number { Value::from(value) } else { Value::Null })
        }

        fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
            Ok(if self.number { Value::from(value) } else { Value::Null })
        }

        fn visit_str<E>(self, _: &str) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    }

    const OUTER: [&str; 2] = ["textGenerationConfig", "inferenceConfig"];
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let top = Sparse { keep: &TOP_LEVEL, nested: &OUTER, number: false };
    let sparse = top.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    max_output_tokens_in_body(&sparse)
}

#[cfg(test)]
mod max_output_tokens_tests {
    use serde_json::json;

    use super::{max_output_tokens_in_body, max_output_tokens_in_json};

    #[test]
    fn every_family_field_is_found() {
        let cases = [
            (json!({"inputText": "x", "textGenerationConfig": {"maxTokenCount": 7}}), Some(7)),
            (json!({"prompt": "x", "max_tokens_to_sample": 8}), Some(8)),
            (json!({"messages": [], "max_tokens": 9}), Some(9)),
            (json!({"prompt": "x", "max_gen_len": 10}), Some(10)),
            (json!({"messages": [], "inferenceConfig": {"maxTokens": 11}}), Some(11)),
            (json!({"prompt": "x", "maxTokens": 12}), Some(12)),
            (json!({"messages": [], "max_completion_tokens": 13}), Some(13)),
            (json!({"prompt": "x"}), None),
            (json!({"max_tokens": "many"}), None),
        ];
        for (body, expected) in cases {
            assert_eq!(max_output_tokens_in_body(&body), expected, "{body}");
            assert_eq!(max_output_tokens_in_json(body.to_string().as_bytes()), expected, "{body}");
        }
    }

    #[test]
    fn the_json_text_reads_like_its_value() {
        let cases = [
            r#"{"max_tokens": 7.0, "max_gen_len": 3}"#,
            r#"{"max_tokens": -1, "maxTokens": 4294967296, "max_new_tokens": 5}"#,
            r#"{"max_tokens": 1, "max_tokens": 2}"#,
            r#"{"inferenceConfig": {"maxTokens": "x", "max_new_tokens": 6}}"#,
            r#"{"inferenceConfig": [1], "textGenerationConfig": {"maxTokenCount": {"a": 1}}}"#,
            r#"{"messages": [{"content": [{"text": "hi\n", "max_tokens": 9}]}], "x": {"max_tokens": 9}}"#,
            r#"[{"max_tokens": 1}]"#,
            r#""max_tokens""#,
            "{}",
        ];
        for text in cases {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let expected = max_output_tokens_in_body(&value);
            assert_eq!(max_output_tokens_in_json(text.as_bytes()), expected, "{text}");
        }
        for broken in ["", "{", r#"{"max_tokens": 5"#, r#"{"max_tokens": 5} trailing"#] {
            assert_eq!(max_output_tokens_in_json(broken.as_bytes()), None, "{broken}");
        }
    }
}
