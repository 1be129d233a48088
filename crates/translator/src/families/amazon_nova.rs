//! Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2 Lite): `amazon.nova-*`
//! model ids, except the Canvas, Reel and Sonic generators and the embeddings model.
//!
//! The request is the `messages-v1` schema, `{"schemaVersion", "system": [{"text"}],
//! "messages": [{"role", "content": [{"text"}]}], "inferenceConfig": {...}}`; the answer is
//! the text blocks of `output.message.content` with `stopReason` and `usage` (wire
//! reference §4.2).
//!
//! Decisions:
//! - A plain `prompt` is one user message; the system prompt becomes the `system` block.
//!   Consecutive messages of one role are merged into one message with a text block each,
//!   because the roles must alternate.
//! - Nova wants the user to speak first: a conversation whose first turn is the
//!   assistant's is refused as unsupported. A final assistant message is sent as it is and
//!   Nova continues it (prefill).
//! - `inferenceConfig` carries only the fields the request sets and is left out when it
//!   would be empty, so Bedrock applies Nova's defaults (temperature 0.7, topP 0.9, topK 50).
//! - `max_tokens` and `top_k` are not range-checked: the output limit differs between Nova
//!   generations (5,000 for v1 at launch, more later and for Nova 2) and `topK` has no
//!   documented upper bound. Bedrock rejects an excess with a validation error.
//! - Only `text` blocks make the answer; reasoning and tool-use blocks are skipped, in the
//!   response and in stream deltas alike.
//! - Stream chunks are objects with one event key (`messageStart`, `contentBlockStart`,
//!   `contentBlockDelta`, `contentBlockStop`, `messageStop`, `metadata`; recorded in
//!   traceloop/openllmetry `test_nova/test_nova_invoke_stream_with_events_with_content.yaml`);
//!   a chunk with none of them and nothing else to read is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or a
//!   chunk) is a `content_filter` stop, as are the stop reasons `content_filtered` and
//!   `guardrail_intervened`, whatever else the body says.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, decode_guarded_response, finish_stream_event, parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, de_count, parse_body, to_body};
use crate::unified::{
    Conversation, Param, Role, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};

/// The Amazon Nova family.
#[derive(Debug, Clone, Copy)]
pub struct AmazonNova;

const ID: &str = "amazon_nova";

/// The only request schema of the understanding models.
const SCHEMA_VERSION: &str = "messages-v1";

/// Parts of `amazon.nova-*` ids that name models other than the understanding models.
const OTHER_NOVA_MODELS: &[&str] = &["canvas", "reel", "sonic", "embed"];

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaRequest<'a> {
    schema_version: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<NovaText<'a>>,
    messages: Vec<NovaMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_config: Option<NovaInferenceConfig<'a>>,
}

#[derive(Debug, Serialize)]
struct NovaMessage<'a> {
    role: &'static str,
    content: Vec<NovaText<'a>>,
}

#[derive(Debug, Serialize)]
struct NovaText<'a> {
    text: &'a str,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaInferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaResponse {
    output: NovaOutput,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<NovaUsage>,
}

#[derive(Debug, Deserialize)]
struct NovaOutput {
    message: NovaOutputMessage,
}

#[derive(Debug, Deserialize)]
struct NovaOutputMessage {
    #[serde(default)]
    content: Vec<NovaContentBlock>,
}

/// One content block of the answer; only text blocks have `text`.
#[derive(Debug, Deserialize)]
struct NovaContentBlock {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaUsage {
    #[serde(default, deserialize_with = "de_count")]
    input_tokens: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    output_tokens: Option<u32>,
}

/// One decoded stream chunk: an object with one event key (`messageStart`,
/// `contentBlockDelta`, `contentBlockStop`, `messageStop` or `metadata`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaStreamChunk {
    #[serde(default)]
    message_start: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    content_block_start: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    content_block_stop: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    content_block_delta: Option<NovaContentBlockDelta>,
    #[serde(default)]
    message_stop: Option<NovaMessageStop>,
    #[serde(default)]
    metadata: Option<NovaMetadata>,
}

#[derive(Debug, Deserialize)]
struct NovaContentBlockDelta {
    #[serde(default)]
    delta: Option<NovaDelta>,
}

/// A text delta has `text`; tool-use and reasoning deltas have other keys.
#[derive(Debug, Deserialize)]
struct NovaDelta {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NovaMessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NovaMetadata {
    #[serde(default)]
    usage: Option<NovaUsage>,
}

impl TextFamily for AmazonNova {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id
            .strip_prefix("amazon.nova-")
            .is_some_and(|rest| !OTHER_NOVA_MODELS.iter().any(|other| rest.contains(other)))
    }

    fn params(&self) -> &'static [Param] {
        &[
            Param::MaxTokens,
            Param::Temperature,
            Param::TopP,
            Param::TopK,
            Param::Stop,
            Param::CachePrompt,
        ]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "schemaVersion",
            "system",
            "messages",
            "inferenceConfig.maxTokens",
            "inferenceConfig.temperature",
            "inferenceConfig.topP",
            "inferenceConfig.topK",
            "inferenceConfig.stopSequences",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let conversation = req.conversation();
        let mut body = to_body(ID, &convert_request(req, &conversation)?)?;
        if req.cache_prompt {
            mark_cache_prefix(&mut body);
        }
        Ok(body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, decode_body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let GuardedChunk { chunk, mut usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<NovaStreamChunk>(ID, chunk)?;
        let known = chunk.message_start.is_some()
            || chunk.content_block_start.is_some()
            || chunk.content_block_stop.is_some()
            || chunk.content_block_delta.is_some()
            || chunk.message_stop.is_some()
            || chunk.metadata.is_some();
        if let Some(nova_usage) = chunk.metadata.and_then(|metadata| metadata.usage) {
            usage.update(convert_usage(nova_usage));
        }
        let event = StreamEvent {
            unrecognized: false,
            text: chunk
                .content_block_delta
                .and_then(|block| block.delta)
                .and_then(|delta| delta.text)
                .unwrap_or_default(),
            // A `messageStop` always ends the answer, even without a readable reason.
            stop_reason: chunk.message_stop.map(|stop| {
                stop.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason)
            }),
            usage,
            ..Default::default()
        };
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The answer of a response body, before any guardrail intervention is applied.
fn decode_body(body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
    let res: NovaResponse = parse_body(ID, body)?;
    let usage = res.usage.map(convert_usage).unwrap_or_default();
    Ok(UnifiedResponse {
        text: res.output.message.content.into_iter().filter_map(|block| block.text).collect(),
        stop_reason: res.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason),
        usage,
        ..Default::default()
    })
}

fn convert_request<'a>(
    req: &'a UnifiedRequest,
    conversation: &'a Conversation<'a>,
) -> Result<NovaRequest<'a>, TranslateError> {
    if conversation.turns.first().is_some_and(|(role, _)| *role == Role::Assistant) {
        return Err(TranslateError::Unsupported {
            family: ID,
            feature: "a conversation that starts with an `assistant` message".to_owned(),
        });
    }
    let config = NovaInferenceConfig {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: &req.stop,
    };
    let is_empty = config == NovaInferenceConfig::default();
    Ok(NovaRequest {
        schema_version: SCHEMA_VERSION,
        system: conversation.system.iter().map(|text| NovaText { text }).collect(),
        messages: convert_messages(&conversation.turns),
        inference_config: if is_empty { None } else { Some(config) },
    })
}

/// The turns as Nova messages, consecutive turns of one role merged into one message.
fn convert_messages<'a>(turns: &'a [(Role, Cow<'a, str>)]) -> Vec<NovaMessage<'a>> {
    let mut messages: Vec<NovaMessage<'a>> = Vec::new();
    for (role, text) in turns {
        let text: &str = text;
        let role = if *role == Role::Assistant { "assistant" } else { "user" };
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.push(NovaText { text }),
            _ => messages.push(NovaMessage { role, content: vec![NovaText { text }] }),
        }
    }
    messages
}

/// Prompt caching (`cache_prompt`): a `{"cachePoint": {"type": "default"}}` block after
/// the system prompt and at the end of the last user message, so that both are cached
/// (AWS "Prompt caching for faster model inference", Nova's request schema).
fn mark_cache_prefix(body: &mut serde_json::Value) {
    let point = || serde_json::json!({"cachePoint": {"type": "default"}});
    if let Some(system) = body.get_mut("system").and_then(serde_json::Value::as_array_mut)
        && !system.is_empty()
    {
        system.push(point());
    }
    let last_user = body
        .get_mut("messages")
        .and_then(serde_json::Value::as_array_mut)
        .and_then(|messages| messages.iter_mut().rev().find(|m| m["role"] == "user"));
    if let Some(content) = last_user.and_then(|m| m["content"].as_array_mut()) {
        content.push(point());
    }
}

fn convert_usage(usage: NovaUsage) -> Usage {
    Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens }
}

fn convert_stop_reason(stop_reason: &str) -> StopReason {
    match stop_reason {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "content_filtered" | "guardrail_intervened" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::amazon_nova::AmazonNova;
    use crate::unified::{Message, Role, StopReason, UnifiedRequest, Usage};

    fn message(role: Role, content: &str) -> Message {
        Message::text(role, content)
    }

    #[test]
    fn matches_understanding_models_only() {
        for id in ["amazon.nova-micro-v1:0", "amazon.nova-premier-v1:0", "amazon.nova-2-lite-v1:0"]
        {
            assert!(AmazonNova.matches(id), "{id}");
        }
        for id in [
            "amazon.nova-canvas-v1:0",
            "amazon.nova-reel-v1:1",
            "amazon.nova-sonic-v1:0",
            "amazon.nova-2-sonic-v1:0",
            "amazon.nova-2-multimodal-embeddings-v1:0",
            "amazon.titan-text-express-v1",
        ] {
            assert!(!AmazonNova.matches(id), "{id}");
        }
    }

    #[test]
    fn consecutive_turns_of_one_role_are_merged_and_prefill_is_kept() {
        let req = UnifiedRequest {
            messages: vec![
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "c"),
            ],
            ..UnifiedRequest::default()
        };
        let body = AmazonNova.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]}
            ])
        );
        assert!(body.get("inferenceConfig").is_none());
    }

    #[test]
    fn assistant_first_is_unsupported() {
        let req = UnifiedRequest {
            messages: vec![message(Role::Assistant, "hi"), message(Role::User, "yo")],
            ..UnifiedRequest::default()
        };
        let err = AmazonNova.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::Unsupported { family: "amazon_nova", .. }));
    }

    #[test]
    fn response_without_output_is_malformed() {
        let err = AmazonNova.decode_response(br#"{"stopReason":"end_turn"}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn tool_use_and_reasoning_blocks_add_no_text() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[
            {"reasoningContent":{"reasoningText":{"text":"hmm"}}},{"text":"Hi"},
            {"toolUse":{"toolUseId":"t","name":"f","input":{}}}]}},"stopReason":"tool_use"}"#;
        let res = AmazonNova.decode_response(body).unwrap();
        assert_eq!((res.text.as_str(), res.stop_reason), ("Hi", StopReason::Other));
        let chunk = br#"{"contentBlockDelta":{"delta":{"toolUse":{"input":"{\"a\""}},"contentBlockIndex":1}}"#;
        assert_eq!(AmazonNova.decode_stream_event(chunk).unwrap().text, "");
    }

    #[test]
    fn metadata_usage_overrides_invocation_metrics() {
        let chunk = br#"{"metadata":{"usage":{"inputTokens":12,"outputTokens":13.0}},
            "amazon-bedrock-invocationMetrics":{"inputTokenCount":99,"outputTokenCount":99}}"#;
        let event = AmazonNova.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(12), output_tokens: Some(13) });
        assert_eq!(event.stop_reason, None);
    }
}
