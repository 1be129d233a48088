//! What several families share beyond the registry's own helpers: conversation shapes
//! (alternating turns, plain transcripts, chat messages), request checks, stop-reason
//! tables that more than one family speaks, and the body and answers of every Llama.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::{check_range, de_count, parse_body, to_body};
use crate::unified::{
    Conversation, Param, Role, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};

/// A conversation whose turns alternate between user and assistant, starting with the
/// user; see [`alternating_turns`].
#[derive(Debug)]
pub(crate) struct AlternatingTurns {
    pub(crate) system: Option<String>,
    /// `Role::User` and `Role::Assistant` only, never two of one role in a row.
    pub(crate) turns: Vec<(Role, String)>,
}

/// The request's system prompt and its turns with consecutive turns of one role merged
/// (joined by a blank line), so that user and assistant alternate. A conversation that
/// opens with an assistant turn is refused: the templates of the families that use this
/// (Claude Messages, Llama 2, Mistral `[INST]`) start with the user.
pub(crate) fn alternating_turns(
    family: &'static str,
    req: &UnifiedRequest,
) -> Result<AlternatingTurns, TranslateError> {
    let conversation = req.conversation();
    let mut turns: Vec<(Role, String)> = Vec::with_capacity(conversation.turns.len());
    for (role, content) in conversation.turns {
        // `conversation()` never yields system turns; fold one into the user side anyway.
        let role = if role == Role::Assistant { Role::Assistant } else { Role::User };
        match turns.last_mut() {
            Some((last_role, merged)) if *last_role == role => {
                merged.push_str("\n\n");
                merged.push_str(&content);
            }
            _ => turns.push((role, content.into_owned())),
        }
    }
    if turns.first().is_some_and(|(role, _)| *role == Role::Assistant) {
        return Err(TranslateError::InvalidRequest(format!(
            "the first message after the `system` messages must be a `user` message for the \
             {family} model family"
        )));
    }
    Ok(AlternatingTurns { system: conversation.system, turns })
}

/// The prompt as given, or the conversation as a plain transcript for models that
/// document no chat template: the system prompt as its own first paragraph, then one
/// `User: {text}` or `{assistant}: {text}` line per turn, ending with `{assistant}:` for
/// the model to continue; a final assistant message is continued instead.
pub(crate) fn render_transcript(req: &UnifiedRequest, assistant: &str) -> String {
    if let Some(prompt) = &req.prompt {
        return prompt.clone();
    }
    let conversation = req.conversation();
    let mut prompt = String::new();
    if let Some(system) = &conversation.system {
        prompt.push_str(system);
        prompt.push_str("\n\n");
    }
    for (i, (role, content)) in conversation.turns.iter().enumerate() {
        if i > 0 {
            prompt.push('\n');
        }
        prompt.push_str(if *role == Role::Assistant { assistant } else { "User" });
        prompt.push_str(": ");
        prompt.push_str(content);
    }
    if conversation.turns.last().is_some_and(|(role, _)| *role != Role::Assistant) {
        prompt.push('\n');
        prompt.push_str(assistant);
        prompt.push(':');
    }
    prompt
}

/// One `{"role", "content"}` message of an OpenAI-like chat body.
#[derive(Debug, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: &'a str,
}

/// The conversation as chat messages: the system prompt first, with `system_role`
/// (`system`, or `developer` for gpt-oss), then every turn as `user` or `assistant`.
pub(crate) fn chat_messages<'a>(
    conversation: &'a Conversation<'a>,
    system_role: &'static str,
) -> Vec<ChatMessage<'a>> {
    let system =
        conversation.system.iter().map(|content| ChatMessage { role: system_role, content });
    let turns = conversation.turns.iter().map(|(role, content)| ChatMessage {
        role: if *role == Role::Assistant { "assistant" } else { "user" },
        content,
    });
    system.chain(turns).collect()
}

/// The `usage` of an OpenAI-like chat answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatUsage {
    #[serde(default, deserialize_with = "de_count")]
    prompt_tokens: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    completion_tokens: Option<u32>,
}

pub(crate) fn convert_chat_usage(usage: ChatUsage) -> Usage {
    Usage { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens }
}

/// Refuses a `max_tokens` above the family's `limit` (the lower bound, 1, is checked
/// for every family by the request's own validation).
pub(crate) fn check_max_tokens_limit(
    family: &'static str,
    max_tokens: Option<u32>,
    limit: u32,
) -> Result<(), TranslateError> {
    match max_tokens.filter(|&n| n > limit) {
        Some(max_tokens) => Err(TranslateError::InvalidRequest(format!(
            "`max_tokens` must be between 1 and {limit} for the {family} model family, \
             got {max_tokens}"
        ))),
        None => Ok(()),
    }
}

/// Refuses more than `limit` stop sequences.
pub(crate) fn check_stop_count(
    family: &'static str,
    stop: &[String],
    limit: usize,
) -> Result<(), TranslateError> {
    if stop.len() > limit {
        return Err(TranslateError::InvalidRequest(format!(
            "`stop` takes at most {limit} sequences for the {family} model family, got {}",
            stop.len()
        )));
    }
    Ok(())
}

/// The refusal of a streaming request by a family whose models Bedrock does not stream.
pub(crate) fn unsupported_streaming(family: &'static str) -> TranslateError {
    TranslateError::Unsupported { family, feature: "streaming".to_owned() }
}

/// The one text of an embedding call, for families that embed one text per call.
pub(crate) fn single_text<'a>(
    family: &'static str,
    texts: &'a [String],
) -> Result<&'a String, TranslateError> {
    let [text] = texts else {
        return Err(TranslateError::InvalidRequest(format!(
            "the {family} model family embeds one text per call, got {}",
            texts.len()
        )));
    };
    Ok(text)
}

/// `stop` and `length`, the stop reasons of Llama and DeepSeek-R1.
pub(crate) fn convert_stop_or_length(stop_reason: &str) -> StopReason {
    match stop_reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

/// Mistral's stop reasons, for both Mistral families: `stop` (the model finished or hit
/// a stop sequence; the two are not told apart), `length`, and for chat models
/// `model_length` (the context window is full) and `tool_calls`.
pub(crate) fn convert_mistral_stop_reason(stop_reason: &str) -> StopReason {
    match stop_reason {
        "stop" => StopReason::EndTurn,
        "length" | "model_length" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

/// The `finish_reason` of OpenAI-like chat answers (Jamba, gpt-oss): `stop` ends the turn
/// (a stop sequence is not told apart), `length`, `content_filter`, anything else `Other`.
pub(crate) fn convert_chat_finish_reason(finish_reason: &str) -> StopReason {
    match finish_reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

/// An `[INST]` chat template over [`alternating_turns`] (Llama 2, Mistral `[INST]`): the
/// prompt opens with `begin`, each user turn is `{user_start}{content} [/INST]` with the
/// system prompt (between `system_start` and `system_end`) opening the first one, each
/// assistant answer is ` {content}`, and `answer_end` closes an answer that a user turn
/// follows. A final assistant message is continued (not closed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstTemplate {
    pub(crate) begin: &'static str,
    pub(crate) user_start: &'static str,
    pub(crate) system_start: &'static str,
    pub(crate) system_end: &'static str,
    pub(crate) answer_end: &'static str,
}

/// The conversation in an `[INST]` template; refused as [`alternating_turns`] refuses it.
pub(crate) fn render_inst_template(
    family: &'static str,
    template: &InstTemplate,
    req: &UnifiedRequest,
) -> Result<String, TranslateError> {
    let AlternatingTurns { mut system, turns } = alternating_turns(family, req)?;
    let mut prompt = String::from(template.begin);
    let mut after_answer = false;
    for (role, content) in &turns {
        match role {
            Role::Assistant => {
                prompt.push(' ');
                prompt.push_str(content);
                after_answer = true;
            }
            Role::User | Role::System => {
                if after_answer {
                    prompt.push_str(template.answer_end);
                }
                prompt.push_str(template.user_start);
                if let Some(system) = system.take() {
                    prompt.push_str(template.system_start);
                    prompt.push_str(&system);
                    prompt.push_str(template.system_end);
                }
                prompt.push_str(content);
                prompt.push_str(" [/INST]");
                after_answer = false;
            }
        }
    }
    Ok(prompt)
}

/// One `{text, stop_reason}` entry of a completion list (DeepSeek-R1's `choices`,
/// Mistral's `outputs`).
#[derive(Debug, Deserialize)]
pub(crate) struct TextChoice {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

/// The answer in the first entry of a completion list named `list`; the body carries no
/// token counts. Malformed when the entry or its text is missing.
pub(crate) fn decode_first_text_choice(
    family: &'static str,
    list: &str,
    choices: Vec<TextChoice>,
    convert_stop_reason: fn(&str) -> StopReason,
) -> Result<UnifiedResponse, TranslateError> {
    let Some(TextChoice { text: Some(text), stop_reason }) = choices.into_iter().next() else {
        return Err(TranslateError::MalformedResponse {
            family,
            detail: format!("the body has no `{list}[0].text`"),
        });
    };
    Ok(UnifiedResponse {
        text,
        stop_reason: stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason),
        usage: Usage::default(),
        ..Default::default()
    })
}

/// What the first entry of a stream chunk's completion list contributes (nothing when
/// the list is empty); `usage` is the chunk's invocation metrics.
pub(crate) fn first_text_choice_event(
    choices: Vec<TextChoice>,
    usage: Usage,
    convert_stop_reason: fn(&str) -> StopReason,
) -> StreamEvent {
    let choice = choices.into_iter().next();
    StreamEvent {
        unrecognized: false,
        text: choice.as_ref().and_then(|choice| choice.text.clone()).unwrap_or_default(),
        stop_reason: choice
            .and_then(|choice| choice.stop_reason)
            .as_deref()
            .map(convert_stop_reason),
        usage,
        ..Default::default()
    }
}

/// The optional unified parameters every Llama family honours (`stop` emulated).
pub(crate) const LLAMA_PARAMS: &[Param] =
    &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop];

/// The body keys of every Llama family.
pub(crate) const LLAMA_MAPPED_PATHS: &[&str] = &["prompt", "max_gen_len", "temperature", "top_p"];

/// The body of InvokeModel and InvokeModelWithResponseStream, for every Llama family.
#[derive(Debug, Serialize)]
struct LlamaRequest {
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_gen_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

/// A Llama InvokeModel response body, and also the shape of every stream chunk (where
/// every key may be `null`).
#[derive(Debug, Deserialize)]
struct LlamaGeneration {
    #[serde(default)]
    generation: Option<String>,
    #[serde(default, deserialize_with = "de_count")]
    prompt_token_count: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    generation_token_count: Option<u32>,
    #[serde(default)]
    stop_reason: Option<String>,
}

/// The Llama body for an already rendered `prompt`, after checking the sampling ranges.
pub(crate) fn encode_llama_request(
    family: &'static str,
    req: &UnifiedRequest,
    prompt: String,
) -> Result<serde_json::Value, TranslateError> {
    check_range(family, "temperature", req.temperature, 0.0..=1.0)?;
    check_range(family, "top_p", req.top_p, 0.0..=1.0)?;
    let body = LlamaRequest {
        prompt,
        max_gen_len: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
    };
    to_body(family, &body)
}

/// The answer of a Llama InvokeModel response.
pub(crate) fn decode_llama_response(
    family: &'static str,
    body: &[u8],
) -> Result<UnifiedResponse, TranslateError> {
    let res: LlamaGeneration = parse_body(family, body)?;
    let Some(text) = res.generation else {
        return Err(TranslateError::MalformedResponse {
            family,
            detail: "the body has no `generation`".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        text,
        stop_reason: res.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_or_length),
        usage: Usage {
            input_tokens: res.prompt_token_count,
            output_tokens: res.generation_token_count,
        },
        ..Default::default()
    })
}

/// A chat template in which every message is `{header_start}{role}{header_end}\n\n
/// {content}{end_of_turn}` (Llama 3 and Llama 4, with different tokens).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderTemplate {
    pub(crate) begin_of_text: &'static str,
    pub(crate) header_start: &'static str,
    pub(crate) header_end: &'static str,
    pub(crate) end_of_turn: &'static str,
}

/// The conversation in a header-based template: the system prompt and every turn as a
/// closed message, then an open assistant header; a final assistant turn stays open.
pub(crate) fn render_header_template(template: &HeaderTemplate, req: &UnifiedRequest) -> String {
    let conversation = req.conversation();
    let mut prompt = String::from(template.begin_of_text);
    let push_header = |prompt: &mut String, role: &str| {
        prompt.push_str(template.header_start);
        prompt.push_str(role);
        prompt.push_str(template.header_end);
        prompt.push_str("\n\n");
    };
    if let Some(system) = &conversation.system {
        push_header(&mut prompt, "system");
        prompt.push_str(system);
        prompt.push_str(template.end_of_turn);
    }
    let n_turns = conversation.turns.len();
    for (i, (role, content)) in conversation.turns.iter().enumerate() {
        let is_assistant = *role == Role::Assistant;
        push_header(&mut prompt, if is_assistant { "assistant" } else { "user" });
        prompt.push_str(content);
        if is_assistant && i + 1 == n_turns {
            // The model continues the final assistant message.
            return prompt;
        }
        prompt.push_str(template.end_of_turn);
    }
    push_header(&mut prompt, "assistant");
    prompt
}

/// A request holding these messages, for the families' unit tests.
#[cfg(test)]
pub(crate) fn conversation(messages: &[(Role, &str)]) -> UnifiedRequest {
    UnifiedRequest {
        messages: messages
            .iter()
            .map(|&(role, content)| crate::unified::Message::text(role, content))
            .collect(),
        ..UnifiedRequest::default()
    }
}

/// The key Bedrock adds to a body or stream chunk when a guardrail is on: `INTERVENED`
/// or `NONE` (InvokeModel API reference; recorded with Titan in traceloop/openllmetry
/// `test_guardrails/test_guardrail_invoke*.yaml` and with Claude Messages in the model
/// invocation log of panther-labs/panther-analysis
/// `rules/aws_bedrock_rules/aws_bedrockmodelinvocation_guardrailintervened.yml`).
const GUARDRAIL_ACTION_KEY: &str = "amazon-bedrock-guardrailAction";

/// Whether a `amazon-bedrock-guardrailAction` value says a guardrail intervened:
/// `INTERVENED` as recorded, or `GUARDRAIL_INTERVENED`, ApplyGuardrail's spelling that
/// some clients expect here too. `NONE` and anything else do not.
fn is_guardrail_intervention(action: Option<&serde_json::Value>) -> bool {
    action
        .and_then(serde_json::Value::as_str)
        .is_some_and(|action| matches!(action, "INTERVENED" | "GUARDRAIL_INTERVENED"))
}

/// Only the guardrail key of a body; everything else is skipped.
#[derive(Debug, Deserialize)]
struct GuardrailAction {
    #[serde(default, rename = "amazon-bedrock-guardrailAction")]
    action: Option<serde_json::Value>,
}

/// The answer of an InvokeModel body through the family's `decode`, where a guardrail
/// intervention is a `content_filter` stop: the body then carries the guardrail's message
/// in the family's shape, typically without the family's stop field (a blocked input is
/// never seen by the model), so the stop reason is `ContentFilter` whatever that field
/// says, and a body that lacks the family's text field gives an empty text rather than a
/// malformed answer. Without an intervention this is `decode` alone.
pub(crate) fn decode_guarded_response(
    family: &'static str,
    body: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<UnifiedResponse, TranslateError>,
) -> Result<UnifiedResponse, TranslateError> {
    let guardrail: GuardrailAction = parse_body(family, body)?;
    let answer = decode(body);
    if !is_guardrail_intervention(guardrail.action.as_ref()) {
        return answer;
    }
    let mut answer = answer.unwrap_or(UnifiedResponse {
        text: String::new(),
        stop_reason: StopReason::ContentFilter,
        usage: Usage::default(),
        ..Default::default()
    });
    answer.stop_reason = StopReason::ContentFilter;
    Ok(answer)
}

/// A stream chunk parsed as a family's chunk type, with what Bedrock adds to it.
pub(crate) struct GuardedChunk<T> {
    pub(crate) chunk: T,
    /// From `amazon-bedrock-invocationMetrics`; default when absent.
    pub(crate) usage: Usage,
    /// The chunk says a guardrail intervened.
    pub(crate) guardrail_intervened: bool,
}

/// Parses a stream chunk as JSON of type `T` (whose fields should all default, so that
/// any JSON object is one), with its invocation metrics and its guardrail action, naming
/// the family in the error.
pub(crate) fn parse_guarded_stream_chunk<T: serde::de::DeserializeOwned>(
    family: &'static str,
    chunk: &[u8],
) -> Result<GuardedChunk<T>, TranslateError> {
    #[derive(Deserialize)]
    struct ActionOnly {
        #[serde(rename = "amazon-bedrock-guardrailAction")]
        action: Option<serde_json::Value>,
    }
    let chunk_bytes = chunk;
    let chunk = parse_body(family, chunk_bytes)?;
    let usage = super::invocation_metrics_usage(chunk_bytes);
    // Read a second time, for that key alone, only when its bytes are there.
    let guardrail_intervened = super::holds_key(chunk_bytes, GUARDRAIL_ACTION_KEY)
        && serde_json::from_slice::<ActionOnly>(chunk_bytes)
            .is_ok_and(|only| is_guardrail_intervention(only.action.as_ref()));
    Ok(GuardedChunk { chunk, usage, guardrail_intervened })
}

/// Sets the two flags a family's stream decoder ends with. A guardrail intervention makes
/// the chunk a `content_filter` stop (a blocked stream is one chunk with the guardrail's
/// message and no stop field, traceloop/openllmetry
/// `test_guardrails/test_guardrail_invoke_stream.yaml`). A chunk that is none of the
/// family's `known` events and carries no text, stop reason or usage is `unrecognized`;
/// a known event stays recognized even when it carries nothing.
pub(crate) fn finish_stream_event(
    mut event: StreamEvent,
    known: bool,
    guardrail_intervened: bool,
) -> StreamEvent {
    if guardrail_intervened {
        event.stop_reason = Some(StopReason::ContentFilter);
    }
    event.unrecognized = !known
        && event.text.is_empty()
        && event.stop_reason.is_none()
        && event.usage == Usage::default();
    event
}

/// What one Llama stream chunk contributes; `generation_token_count` is cumulative, so
/// the last chunk's count wins. A guardrail intervention is a `content_filter` stop and a
/// chunk without any Llama key (`generation`, `prompt_token_count`,
/// `generation_token_count`, `stop_reason`) is `unrecognized`.
pub(crate) fn decode_guarded_llama_stream_event(
    family: &'static str,
    chunk: &[u8],
) -> Result<StreamEvent, TranslateError> {
    let GuardedChunk { chunk: chunk_json, mut usage, guardrail_intervened } =
        parse_guarded_stream_chunk::<serde_json::Value>(family, chunk)?;
    // A mid-stream chunk sends `stop_reason` and `prompt_token_count` as `null`: a key
    // that is there at all makes the chunk a Llama chunk.
    let known = LLAMA_CHUNK_KEYS.iter().any(|key| chunk_json.get(key).is_some());
    let chunk = LlamaGeneration::deserialize(&chunk_json)
        .map_err(|e| TranslateError::MalformedResponse { family, detail: e.to_string() })?;
    usage.update(Usage {
        input_tokens: chunk.prompt_token_count,
        output_tokens: chunk.generation_token_count,
    });
    let event = StreamEvent {
        unrecognized: false,
        text: chunk.generation.unwrap_or_default(),
        stop_reason: chunk.stop_reason.as_deref().map(convert_stop_or_length),
        usage,
        ..Default::default()
    };
    Ok(finish_stream_event(event, known, guardrail_intervened))
}

/// The keys of a Llama stream chunk.
const LLAMA_CHUNK_KEYS: [&str; 4] =
    ["generation", "prompt_token_count", "generation_token_count", "stop_reason"];

/// Drops the `start`...`end` spans (reasoning markup such as `<reasoning>...</reasoning>`)
/// from text that arrives in pieces, the same answer whatever the cuts: a tag split between
/// pieces is held back until it can be told from text, an `end` outside a span is text, and
/// everything after a `start` that is never closed is dropped. For chat families whose
/// answers carry the model's reasoning inline (`openai_chat`).
#[derive(Debug)]
pub(crate) struct TaggedSpanFilter {
    start: &'static str,
    end: &'static str,
    /// Inside a span: text is dropped up to the next `end`.
    inside: bool,
    /// Undecided text: a tail that may begin the tag looked for next.
    held: String,
    /// The spans' contents decided since [`StreamTextFilter::take_reasoning`] last took them.
    reasoning: String,
}

impl TaggedSpanFilter {
    pub(crate) fn new(start: &'static str, end: &'static str) -> Self {
        TaggedSpanFilter {
            start,
            end,
            inside: false,
            held: String::new(),
            reasoning: String::new(),
        }
    }
}

impl crate::families::StreamTextFilter for TaggedSpanFilter {
    fn push(&mut self, text: &str) -> String {
        self.held.push_str(text);
        let mut answer = String::new();
        loop {
            let tag = if self.inside { self.end } else { self.start };
            if let Some(at) = self.held.find(tag) {
                if self.inside {
                    self.reasoning.push_str(&self.held[..at]);
                } else {
                    answer.push_str(&self.held[..at]);
                }
                self.held.drain(..at + tag.len());
                self.inside = !self.inside;
                continue;
            }
            // The longest tail that is a proper prefix of `tag` stays held; the rest is decided.
            let keep_from = (self.held.len().saturating_sub(tag.len() - 1)..self.held.len())
                .find(|&i| self.held.is_char_boundary(i) && tag.starts_with(&self.held[i..]))
                .unwrap_or(self.held.len());
            if self.inside {
                self.reasoning.push_str(&self.held[..keep_from]);
            } else {
                answer.push_str(&self.held[..keep_from]);
            }
            self.held.drain(..keep_from);
            return answer;
        }
    }

    fn finish(&mut self) -> String {
        let held = std::mem::take(&mut self.held);
        if self.inside {
            self.reasoning.push_str(&held);
            String::new()
        } else {
            held
        }
    }

    fn take_reasoning(&mut self) -> String {
        std::mem::take(&mut self.reasoning)
    }
}

/// `text` without its `start`...`end` spans, as [`TaggedSpanFilter`] gives it in one piece.
pub(crate) fn strip_tagged_spans(text: &str, start: &'static str, end: &'static str) -> String {
    use crate::families::StreamTextFilter;
    let mut filter = TaggedSpanFilter::new(start, end);
    let mut answer = filter.push(text);
    answer.push_str(&filter.finish());
    answer
}
