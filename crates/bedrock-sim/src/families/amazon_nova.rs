//! Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2 Lite) with the
//! `messages-v1` body: request checks and answer shapes of wire document §4.2.
//!
//! - Premier and Nova 2 Lite are served only through an inference profile
//!   (`us.amazon.nova-premier-v1:0`, `global.amazon.nova-2-lite-v1:0`).
//! - The answer is seeded by the `text` of every `system` block and of every message content
//!   block, joined with newlines. Other blocks (image, video, tool use, ...) are accepted and
//!   not read. The first message must be the user's.
//! - `inferenceConfig.maxTokens` defaults to the model's largest value, Nova's "dynamic" default.
//!   `temperature` may be 0, although the documentation gives 0.00001 as its least value.
//! - Answer: one text block in `output.message.content`, `stopReason` `end_turn`, `max_tokens`
//!   or `stop_sequence`, and `usage` with the two cache counts.
//! - Stream: `messageStart`; per token a `contentBlockDelta` and its `contentBlockStop`, each
//!   token in a new block as Nova does; `messageStop`; then `metadata` with the usage and the
//!   invocation metrics, both with the cache counts.
//! - Prompt caching (`prompt_cache.rs`): a `{"cachePoint": {"type": "default"}}` block in
//!   `system` or in a message's `content` caches the system blocks and messages before it,
//!   from 1,000 tokens (AWS's table for Micro, Lite and Pro; assumed for Premier and Nova 2
//!   Lite [U]). Only checkpoints are looked up. A fifth checkpoint is ignored: what Bedrock
//!   answers to more than four is not known [U]. `inputTokens` leaves out the cached tokens
//!   and `totalTokens` counts them, as Converse's usage does (LiteLLM's recorded answer; for
//!   InvokeModel [U]). A `toolConfig` cannot be cached (AWS's table) and is not part of the
//!   prefix.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{string_array, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, StopCause};
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};
use crate::prompt_cache::{
    CacheBoundary, CacheInvocationMetrics, CacheRequest, MAX_CHECKPOINTS, PrefixHasher, items,
    n_words,
};

/// The Nova family.
pub(crate) struct AmazonNova;

/// Each simulated model and its largest `inferenceConfig.maxTokens`. The v1 documentation says
/// 5K; the later raise to 10K, Premier's 32K and Nova 2 Lite's 65,535 are unconfirmed.
const MODELS: &[(&str, i64)] = &[
    ("amazon.nova-micro-v1:0", 10_000),
    ("amazon.nova-lite-v1:0", 10_000),
    ("amazon.nova-pro-v1:0", 10_000),
    ("amazon.nova-premier-v1:0", 32_000),
    ("amazon.nova-2-lite-v1:0", 65_535),
];

/// The models Bedrock serves only through a cross-region inference profile (`us.`, `global.`).
const PROFILE_ONLY: &[&str] = &["amazon.nova-premier-v1:0", "amazon.nova-2-lite-v1:0"];

/// The least prefix a cache checkpoint caches, in tokens (AWS's table: "1K" for Nova).
const MIN_CACHE_PREFIX_TOKENS: u32 = 1_000;

/// The answer to a conversation that does not open with a user turn (Converse's wording).
const FIRST_TURN_MESSAGE: &str = "A conversation must start with a user message. Try again with \
                                  a conversation that starts with a user message.";

impl Family for AmazonNova {
    fn reports_cache_tokens(&self) -> bool {
        true
    }

    fn id(&self) -> &'static str {
        "amazon_nova"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.iter().any(|(model_id, _)| *model_id == base_model_id)
    }

    fn needs_inference_profile(&self, base_model_id: &str) -> bool {
        PROFILE_ONLY.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let max_tokens_limit = MODELS
            .iter()
            .find(|(model_id, _)| *model_id == base_model_id)
            // Only ids this family matches get here; 5K is the documented v1 limit.
            .map_or(5_000, |(_, limit)| *limit);
        check(&request_schema(max_tokens_limit), body, ViolationReport::Counted)?;

        let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice);
        let messages = messages.unwrap_or_default();
        let first_role = messages.first().and_then(|message| message.get("role"));
        if first_role.and_then(Value::as_str) != Some("user") {
            return Err(BedrockError::validation(FIRST_TURN_MESSAGE));
        }

        let system = body.get("system").and_then(Value::as_array).map(Vec::as_slice);
        let message_blocks = messages
            .iter()
            .filter_map(|message| message.get("content").and_then(Value::as_array))
            .flatten();
        let texts: Vec<&str> = system
            .unwrap_or_default()
            .iter()
            .chain(message_blocks)
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect();

        let config = body.get("inferenceConfig");
        // The schema keeps `maxTokens` within 1 and the limit, so it fits a `u32`.
        let max_tokens = u32_value(config.and_then(|config| config.get("maxTokens")))
            .unwrap_or(u32::try_from(max_tokens_limit).unwrap_or(u32::MAX));
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens,
            stop_sequences: string_array(config.and_then(|config| config.get("stopSequences"))),
            space_before_first_token: false,
        })
    }

    fn cache_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<CacheRequest, BedrockError> {
        Ok(CacheRequest {
            min_prefix_tokens: MIN_CACHE_PREFIX_TOKENS,
            boundaries: cache_boundaries(body),
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let n_input_tokens = completion.n_input_tokens;
        let n_output_tokens = completion.n_output_tokens();
        let cache = completion.cache;
        let n_total_tokens = [n_output_tokens, cache.read, cache.write]
            .into_iter()
            .fold(n_input_tokens, u32::saturating_add);
        json_bytes(&NovaResponse {
            output: NovaOutput {
                message: NovaMessage {
                    content: [TextBlock { text: completion.text() }],
                    role: "assistant",
                },
            },
            stop_reason: stop_reason(&completion.stop),
            usage: NovaUsage {
                input_tokens: n_input_tokens,
                output_tokens: n_output_tokens,
                total_tokens: Some(n_total_tokens),
                cache_read_input_token_count: cache.read,
                cache_write_input_token_count: cache.write,
            },
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // messageStart, a delta and a stop per token, messageStop, metadata.
        2 * completion.tokens.len() + 3
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        // Token `i` is in chunk `2 i + 1`, after messageStart.
        let n_tokens = (n_chunks_sent / 2).min(completion.tokens.len());
        u32::try_from(n_tokens).unwrap_or(u32::MAX)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let n_tokens = completion.tokens.len();
        let mut chunk = NovaStreamChunk::default();
        if chunk_idx == 0 {
            chunk.message_start = Some(MessageStart { role: "assistant" });
        } else if chunk_idx <= 2 * n_tokens {
            let token_idx = (chunk_idx - 1) / 2;
            if chunk_idx % 2 == 1 {
                let text = completion.tokens.get(token_idx).map_or("", String::as_str);
                chunk.content_block_delta = Some(ContentBlockDelta {
                    delta: TextDelta { text },
                    content_block_index: token_idx,
                });
            } else {
                chunk.content_block_stop =
                    Some(ContentBlockStop { content_block_index: token_idx });
            }
        } else if chunk_idx == 2 * n_tokens + 1 {
            chunk.message_stop = Some(MessageStop { stop_reason: stop_reason(&completion.stop) });
        } else {
            chunk.metadata = Some(StreamMetadata {
                usage: NovaUsage {
                    input_tokens: completion.n_input_tokens,
                    output_tokens: completion.n_output_tokens(),
                    total_tokens: None,
                    cache_read_input_token_count: completion.cache.read,
                    cache_write_input_token_count: completion.cache.write,
                },
                metrics: Empty {},
                trace: Empty {},
            });
        }
        chunk.invocation_metrics =
            metrics.map(|metrics| CacheInvocationMetrics::new(metrics, completion.cache));
        json_bytes(&chunk)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaResponse {
    output: NovaOutput,
    stop_reason: &'static str,
    usage: NovaUsage,
}

#[derive(Serialize)]
struct NovaOutput {
    message: NovaMessage,
}

#[derive(Serialize)]
struct NovaMessage {
    content: [TextBlock; 1],
    role: &'static str,
}

#[derive(Serialize)]
struct TextBlock {
    text: String,
}

/// The usage of the answer (with `totalTokens`) and of the stream's `metadata` (without).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaUsage {
    input_tokens: u32,
    output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tokens: Option<u32>,
    cache_read_input_token_count: u32,
    cache_write_input_token_count: u32,
}

/// One stream chunk: exactly one event key is set, plus the metrics on the last chunk.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct NovaStreamChunk<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message_start: Option<MessageStart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_block_delta: Option<ContentBlockDelta<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_block_stop: Option<ContentBlockStop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_stop: Option<MessageStop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<StreamMetadata>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<CacheInvocationMetrics>,
}

#[derive(Serialize)]
struct MessageStart {
    role: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlockDelta<'a> {
    delta: TextDelta<'a>,
    content_block_index: usize,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlockStop {
    content_block_index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: &'static str,
}

#[derive(Serialize)]
struct StreamMetadata {
    usage: NovaUsage,
    metrics: Empty,
    trace: Empty,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

/// The `cachePoint` blocks of `system` and the messages (the first [`MAX_CHECKPOINTS`]), each
/// with the tokens and identity of the blocks before it. The schema has been checked.
fn cache_boundaries(body: &Value) -> Vec<CacheBoundary> {
    let mut hasher = PrefixHasher::default();
    let mut n_tokens = 0u32;
    let mut boundaries = Vec::new();
    let mut read = |blocks: &[Value], hasher: &mut PrefixHasher, n_tokens: &mut u32| {
        for block in blocks {
            if block.get("cachePoint").is_some() {
                boundaries.push(CacheBoundary {
                    n_prefix_tokens: *n_tokens,
                    prefix_hash: hasher.finish(),
                    checkpoint: true,
                });
                continue;
            }
            hasher.value(block);
            let text = block.get("text").and_then(Value::as_str).unwrap_or_default();
            *n_tokens = n_tokens.saturating_add(n_words(text));
        }
    };
    hasher.tag("system");
    read(items(body.get("system")), &mut hasher, &mut n_tokens);
    for message in items(body.get("messages")) {
        hasher.tag(message.get("role").and_then(Value::as_str).unwrap_or_default());
        read(items(message.get("content")), &mut hasher, &mut n_tokens);
    }
    boundaries.truncate(MAX_CHECKPOINTS);
    boundaries
}

fn request_schema(max_tokens_limit: i64) -> Shape {
    let text = || string_up_to(usize::MAX);
    let content_block = Shape::Object {
        properties: vec![
            ("text", text()),
            ("image", Shape::AnyObject),
            ("video", Shape::AnyObject),
            ("audio", Shape::AnyObject),
            ("document", Shape::AnyObject),
            ("toolUse", Shape::AnyObject),
            ("toolResult", Shape::AnyObject),
            ("reasoningContent", Shape::AnyObject),
            ("cachePoint", Shape::AnyObject),
        ],
        required: vec![],
    };
    let message = Shape::Object {
        properties: vec![
            ("role", Shape::Enum(&["user", "assistant"])),
            ("content", array_of(content_block, 0, usize::MAX)),
        ],
        required: vec!["role", "content"],
    };
    let system_block = Shape::Object {
        properties: vec![("text", text()), ("cachePoint", Shape::AnyObject)],
        required: vec![],
    };
    let inference_config = Shape::Object {
        properties: vec![
            ("maxTokens", Shape::Integer { minimum: 1, maximum: max_tokens_limit }),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("topP", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("topK", Shape::Integer { minimum: 0, maximum: 128 }),
            ("stopSequences", array_of(text(), 0, usize::MAX)),
            ("reasoningConfig", Shape::AnyObject),
        ],
        required: vec![],
    };
    Shape::Object {
        properties: vec![
            ("schemaVersion", text()),
            ("system", array_of(system_block, 0, usize::MAX)),
            ("messages", array_of(message, 1, usize::MAX)),
            ("inferenceConfig", inference_config),
            ("toolConfig", Shape::AnyObject),
        ],
        required: vec!["messages"],
    }
}

fn stop_reason(stop: &StopCause) -> &'static str {
    match stop {
        StopCause::EndOfText => "end_turn",
        StopCause::MaxTokens => "max_tokens",
        StopCause::StopSequence(_) => "stop_sequence",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;
    use crate::prompt_cache::CacheUsage;

    const LITE: &str = "amazon.nova-lite-v1:0";

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        AmazonNova.parse_request(LITE, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_system_and_message_texts() {
        let request = parse(json!({"schemaVersion": "messages-v1",
            "system": [{"text": "Be terse."}],
            "messages": [{"role": "user", "content": [{"text": "Hi"}, {"image": {}}]},
                         {"role": "assistant", "content": [{"text": "Hello"}]},
                         {"role": "user", "content": [{"text": "Go on"}]}],
            "inferenceConfig": {"maxTokens": 7, "stopSequences": ["END"], "topK": 20}}))
        .unwrap();
        assert_eq!(request.prompt, "Be terse.\nHi\nHello\nGo on");
        assert_eq!(request.max_tokens, 7);
        assert_eq!(request.stop_sequences, vec!["END".to_owned()]);
        let request = parse(json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]}));
        assert_eq!(request.unwrap().max_tokens, 10_000);
    }

    #[test]
    fn rejects_bad_requests() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        let user = |content: Value| json!([{"role": "user", "content": content}]);
        let cases = [
            (
                json!({"messages": user(json!([{"type": "text", "text": "hi"}]))}),
                detail("#/messages/0/content/0: extraneous key [type] is not permitted"),
            ),
            (
                json!({"messages": user(json!("hi"))}),
                detail("#/messages/0/content: expected type: JSONArray, found: String"),
            ),
            (
                json!({"messages": user(json!([])), "inferenceConfig": {"maxTokens": 0}}),
                detail("#/inferenceConfig/maxTokens: 0 is not greater or equal to 1"),
            ),
            (
                json!({"messages": []}),
                detail("#/messages: expected minimum item count: 1, found: 0"),
            ),
            (json!({"inputText": "hi"}), detail("2 schema violations found")),
            (
                json!({"messages": [{"role": "assistant", "content": []}]}),
                FIRST_TURN_MESSAGE.to_owned(),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), expected, "{body}");
        }
    }

    #[test]
    fn cache_points_mark_the_prefix_before_them() {
        let point = || json!({"cachePoint": {"type": "default"}});
        let body = |question: &str| {
            json!({"system": [{"text": "one two three"}, point()],
                "messages": [{"role": "user", "content": [{"text": question}, point()]}]})
        };
        let first = cache_boundaries(&body("four five"));
        let n_tokens: Vec<u32> = first.iter().map(|b| b.n_prefix_tokens).collect();
        assert_eq!(n_tokens, [3, 5]);
        assert!(first.iter().all(|boundary| boundary.checkpoint));
        // Another question after the same system prompt: the same first prefix only.
        let second = cache_boundaries(&body("six"));
        assert_eq!(second[0].prefix_hash, first[0].prefix_hash);
        assert_ne!(second[1].prefix_hash, first[1].prefix_hash);
        // Only the first four checkpoints count; a request without one has none.
        let five = json!({"system": [point(), point(), point(), point(), point()],
            "messages": [{"role": "user", "content": [{"text": "hi"}]}]});
        assert_eq!(cache_boundaries(&five).len(), 4);
        assert!(
            cache_boundaries(&json!({"messages": [{"role": "user", "content": []}]})).is_empty()
        );
        let request = AmazonNova.cache_request(LITE, &body("four five")).unwrap();
        assert_eq!(request.min_prefix_tokens, 1_000);

        // The answer reports the cache counts; `totalTokens` counts them.
        let mut completion = generate(&parse(body("four five")).unwrap());
        completion.n_input_tokens = 0;
        completion.cache = CacheUsage { read: 3, write: 2 };
        let n_output = completion.n_output_tokens();
        let response: Value =
            serde_json::from_slice(&AmazonNova.response_body(&completion)).unwrap();
        assert_eq!(
            response["usage"],
            json!({"inputTokens": 0, "outputTokens": n_output, "totalTokens": n_output + 5,
                "cacheReadInputTokenCount": 3, "cacheWriteInputTokenCount": 2})
        );
    }

    #[test]
    fn stream_chunks_in_order() {
        let body = json!({"messages": [{"role": "user", "content": [{"text": "hi there"}]}],
            "inferenceConfig": {"maxTokens": 1}});
        let completion = generate(&parse(body).unwrap());
        assert_eq!(AmazonNova.n_stream_chunks(&completion), 5);
        let chunk =
            |idx| String::from_utf8(AmazonNova.stream_chunk(&completion, idx, None)).unwrap();
        assert_eq!(chunk(0), r#"{"messageStart":{"role":"assistant"}}"#);
        let delta = format!(
            r#"{{"contentBlockDelta":{{"delta":{{"text":"{}"}},"contentBlockIndex":0}}}}"#,
            completion.tokens[0]
        );
        assert_eq!(chunk(1), delta);
        assert_eq!(chunk(2), r#"{"contentBlockStop":{"contentBlockIndex":0}}"#);
        assert_eq!(chunk(3), r#"{"messageStop":{"stopReason":"max_tokens"}}"#);
        let metrics = InvocationMetrics {
            input_token_count: 2,
            output_token_count: 1,
            invocation_latency: 9,
            first_byte_latency: 4,
        };
        let last =
            String::from_utf8(AmazonNova.stream_chunk(&completion, 4, Some(metrics))).unwrap();
        assert_eq!(
            last,
            r#"{"metadata":{"usage":{"inputTokens":2,"outputTokens":1,"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":0},"metrics":{},"trace":{}},"amazon-bedrock-invocationMetrics":{"inputTokenCount":2,"outputTokenCount":1,"invocationLatency":9,"firstByteLatency":4,"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":0}}"#
        );
    }
}
