//! Amazon Nova understanding models (Micro, Lite, Pro, Premier, Nova 2 Lite) with the
//! `messages-v1` body: request checks and answer shapes of wire document §4.2.
//!
//! - Premier and Nova 2 Lite are served only through an inference profile
//!   (`us.amazon.nova-premier-v1:0`, `global.amazon.nova-2-lite-v1:0`).
//! - The answer is seeded by the `text` of every `system` block and of every message content
//!   block, the `text` and `json` (compact) of tool results, and a word per image, document
//!   and video (`tools.rs`: `video-<FNV-1a of its bytes>`), joined with newlines; images,
//!   documents and videos add their media tokens, `ceil(decoded bytes / 750)` [U: Nova counts
//!   a video by its frames, sampled at 1 per second up to 16 minutes, 960 at most; the
//!   simulator does not decode videos]. Audio and reasoning blocks are accepted and not
//!   read. The first message must be the user's.
//! - `image` `{format: png | jpeg | gif | webp, source: {bytes}}` and `document` `{format,
//!   name, source: {bytes}}` are checked by the schema (everit's messages); the bytes must be
//!   base64 within Converse's documented sizes (3.75 MB per image, 4.5 MB per document) [U:
//!   the wording of these two refusals].
//! - `video` `{format: mkv | mov | mp4 | webm | flv | mpeg | mpg | wmv | three_gp, source:
//!   {bytes}}` ("Complete request schema"; Converse's `VideoBlock`) is checked by the schema
//!   too; the bytes must be base64 of at most 25 MiB of base64 text ("the encoded file is
//!   less than 25MB", Converse's `VideoSource`; 25 MB read as MiB [U]), and a request holds
//!   one video at most ("a single video in the payload", Nova's "Video understanding") [U:
//!   the wording of both refusals]. Nova Micro takes no video ("Complete request schema"): a
//!   video to Micro is refused with Converse's wording for a content block the model does not
//!   take (`unsupported_block_message`; recorded for images on Converse [U for videos and
//!   InvokeModel]).
//! - Tools (`toolConfig`): `{tools: [{toolSpec: {name, description?, inputSchema: {json}}}],
//!   toolChoice?: {auto: {}} | {any: {}} | {tool: {name}}}`, names `^[a-zA-Z0-9_-]{1,64}$`;
//!   `toolUse` `{toolUseId, name, input}` and `toolResult` `{toolUseId, content: [{text} |
//!   {json} | {image} | {document}], status?}` blocks, the results of a user message
//!   answering every call of the assistant message before it (Converse's wording [U for
//!   InvokeModel]). A call answers `output.message.content: [{toolUse: {toolUseId, name,
//!   input}}]`, `stopReason` `tool_use`, ids `tooluse_` and 22 characters as Converse's; its
//!   stream is `messageStart`, `contentBlockStart` `{start: {toolUse: {toolUseId, name}}}`, a
//!   `contentBlockDelta` `{delta: {toolUse: {input: <piece>}}}` per input piece,
//!   `contentBlockStop`, `messageStop` `tool_use`, `metadata` (wire document §4.2, shaped as
//!   ConverseStream's recorded events, §9).
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
use crate::schema::malformed_input;
use crate::tools::{Media, ToolChoice, ToolPlan, ToolSpec, decode_base64, is_valid_tool_name};

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

        check_media(messages)?;
        check_videos(base_model_id, messages)?;
        check_tool_results(messages)?;
        let tool_plan = tool_plan(body.get("toolConfig"), messages)?;

        let mut prompt = Prompt::default();
        for block in items(body.get("system")) {
            prompt.block(block);
        }
        for message in messages {
            for block in items(message.get("content")) {
                prompt.block(block);
            }
        }

        let config = body.get("inferenceConfig");
        // The schema keeps `maxTokens` within 1 and the limit, so it fits a `u32`.
        let max_tokens = u32_value(config.and_then(|config| config.get("maxTokens")))
            .unwrap_or(u32::try_from(max_tokens_limit).unwrap_or(u32::MAX));
        Ok(GenerationRequest {
            prompt: prompt.texts.join("\n"),
            max_tokens,
            stop_sequences: string_array(config.and_then(|config| config.get("stopSequences"))),
            space_before_first_token: false,
            tools: tool_plan,
            thinking: false,
            n_media_input_tokens: prompt.n_media_tokens,
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
        let content = match &completion.tool_call {
            Some(call) => NovaBlock::ToolUse(ToolUseBlock {
                tool_use_id: call.id(TOOL_USE_ID_PREFIX, TOOL_USE_ID_CHARS),
                name: &call.name,
                input: &call.input,
            }),
            None => NovaBlock::Text(completion.text()),
        };
        json_bytes(&NovaResponse {
            output: NovaOutput { message: NovaMessage { content: [content], role: "assistant" } },
            stop_reason: stop_reason(completion),
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
        match completion.tool_call {
            // messageStart, the block's start, a delta per piece, its stop, messageStop,
            // metadata.
            Some(_) => completion.tokens.len() + 5,
            // messageStart, a delta and a stop per token, messageStop, metadata.
            None => 2 * completion.tokens.len() + 3,
        }
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        let n_tokens = match completion.tool_call {
            // Piece `i` is in chunk `i + 2`, after messageStart and contentBlockStart.
            Some(_) => n_chunks_sent.saturating_sub(2),
            // Token `i` is in chunk `2 i + 1`, after messageStart.
            None => n_chunks_sent / 2,
        };
        u32::try_from(n_tokens.min(completion.tokens.len())).unwrap_or(u32::MAX)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let n_tokens = completion.tokens.len();
        let mut chunk = NovaStreamChunk::default();
        let tool_id;
        if let Some(call) = &completion.tool_call {
            tool_id = call.id(TOOL_USE_ID_PREFIX, TOOL_USE_ID_CHARS);
            match chunk_idx {
                0 => chunk.message_start = Some(MessageStart { role: "assistant" }),
                1 => {
                    chunk.content_block_start = Some(ContentBlockStart {
                        start: BlockStart {
                            tool_use: ToolUseStart { tool_use_id: &tool_id, name: &call.name },
                        },
                        content_block_index: 0,
                    });
                }
                idx if idx < n_tokens + 2 => {
                    let input = completion.tokens.get(idx - 2).map_or("", String::as_str);
                    chunk.content_block_delta = Some(ContentBlockDelta {
                        delta: NovaDelta::ToolUse { input },
                        content_block_index: 0,
                    });
                }
                idx if idx == n_tokens + 2 => {
                    chunk.content_block_stop = Some(ContentBlockStop { content_block_index: 0 });
                }
                idx if idx == n_tokens + 3 => {
                    chunk.message_stop = Some(MessageStop { stop_reason: stop_reason(completion) });
                }
                _ => chunk.metadata = Some(stream_metadata(completion)),
            }
        } else if chunk_idx == 0 {
            chunk.message_start = Some(MessageStart { role: "assistant" });
        } else if chunk_idx <= 2 * n_tokens {
            let token_idx = (chunk_idx - 1) / 2;
            if chunk_idx % 2 == 1 {
                let text = completion.tokens.get(token_idx).map_or("", String::as_str);
                chunk.content_block_delta = Some(ContentBlockDelta {
                    delta: NovaDelta::Text(text),
                    content_block_index: token_idx,
                });
            } else {
                chunk.content_block_stop =
                    Some(ContentBlockStop { content_block_index: token_idx });
            }
        } else if chunk_idx == 2 * n_tokens + 1 {
            chunk.message_stop = Some(MessageStop { stop_reason: stop_reason(completion) });
        } else {
            chunk.metadata = Some(stream_metadata(completion));
        }
        chunk.invocation_metrics =
            metrics.map(|metrics| CacheInvocationMetrics::new(metrics, completion.cache));
        json_bytes(&chunk)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NovaResponse<'a> {
    output: NovaOutput<'a>,
    stop_reason: &'static str,
    usage: NovaUsage,
}

#[derive(Serialize)]
struct NovaOutput<'a> {
    message: NovaMessage<'a>,
}

/// The `metadata` event that ends a stream.
fn stream_metadata(completion: &Completion) -> StreamMetadata {
    StreamMetadata {
        usage: NovaUsage {
            input_tokens: completion.n_input_tokens,
            output_tokens: completion.n_output_tokens(),
            total_tokens: None,
            cache_read_input_token_count: completion.cache.read,
            cache_write_input_token_count: completion.cache.write,
        },
        metrics: Empty {},
        trace: Empty {},
    }
}

/// The prefix of a tool-use id and the characters after it (`tooluse_` and 22 characters,
/// as Converse's ids look).
const TOOL_USE_ID_PREFIX: &str = "tooluse_";
const TOOL_USE_ID_CHARS: usize = 22;

#[derive(Serialize)]
struct NovaMessage<'a> {
    content: [NovaBlock<'a>; 1],
    role: &'static str,
}

/// `{"text": ...}` or `{"toolUse": {...}}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum NovaBlock<'a> {
    Text(String),
    ToolUse(ToolUseBlock<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseBlock<'a> {
    tool_use_id: String,
    name: &'a str,
    input: &'a Value,
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
    content_block_start: Option<ContentBlockStart<'a>>,
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
struct ContentBlockStart<'a> {
    start: BlockStart<'a>,
    content_block_index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart<'a> {
    tool_use: ToolUseStart<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart<'a> {
    tool_use_id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlockDelta<'a> {
    delta: NovaDelta<'a>,
    content_block_index: usize,
}

/// `{"text": ...}` or `{"toolUse": {"input": ...}}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum NovaDelta<'a> {
    Text(&'a str),
    ToolUse { input: &'a str },
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

/// The image formats Nova reads.
const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];

/// The document formats Nova reads.
const DOCUMENT_FORMATS: &[&str] =
    &["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"];

/// The largest image, decoded (Converse's documented 3.75 MB) [U for InvokeModel].
const MAX_IMAGE_BYTES: usize = 3_750_000;

/// The largest document, decoded (Converse's documented 4.5 MB) [U for InvokeModel].
const MAX_DOCUMENT_BYTES: usize = 4_500_000;

/// The video formats Nova reads (`three_gp` is 3GP).
const VIDEO_FORMATS: &[&str] =
    &["mkv", "mov", "mp4", "webm", "flv", "mpeg", "mpg", "wmv", "three_gp"];

/// The most base64 text of a video sent as bytes (Nova's 25 MB, read as MiB) [U].
const MAX_VIDEO_BASE64_BYTES: usize = 25 * 1024 * 1024;

/// How large the bytes of a media block may be: decoded, or as base64 text.
#[derive(Clone, Copy)]
enum SizeLimit {
    Decoded(usize),
    Base64(usize),
}

/// The most videos of one request ("a single video in the payload").
const MAX_VIDEOS: usize = 1;

/// The models that take no image or video.
const TEXT_ONLY_MODELS: &[&str] = &["amazon.nova-micro-v1:0"];

/// Converse's answer to a content block of a kind the model does not take (recorded for
/// `image`; assumed for `video` and for InvokeModel [U]).
fn unsupported_block_message(kind: &str) -> String {
    format!(
        "This model doesn't support the {kind} content block that you provided. Update the \
         content block and try again."
    )
}

/// The images and documents of `messages` (and of their tool results): `source.bytes` is
/// base64 within the size limit; an `s3Location` source is refused, as the simulator has no
/// S3 [U]. The schema has been checked.
fn check_media(messages: &[Value]) -> Result<(), BedrockError> {
    for (message_idx, message) in messages.iter().enumerate() {
        for (block_idx, block) in items(message.get("content")).iter().enumerate() {
            let pointer = format!("#/messages/{message_idx}/content/{block_idx}");
            check_media_block(block, &pointer)?;
            let results = block.get("toolResult").and_then(|result| result.get("content"));
            for (part_idx, part) in items(results).iter().enumerate() {
                check_media_block(part, &format!("{pointer}/toolResult/content/{part_idx}"))?;
            }
        }
    }
    Ok(())
}

fn check_media_block(block: &Value, pointer: &str) -> Result<(), BedrockError> {
    let kinds = [
        ("image", SizeLimit::Decoded(MAX_IMAGE_BYTES)),
        ("document", SizeLimit::Decoded(MAX_DOCUMENT_BYTES)),
        ("video", SizeLimit::Base64(MAX_VIDEO_BASE64_BYTES)),
    ];
    for (kind, limit) in kinds {
        let Some(source) = block.get(kind).and_then(|media| media.get("source")) else {
            continue;
        };
        let Some(data) = source.get("bytes").and_then(Value::as_str) else {
            return Err(malformed_input(&format!(
                "{pointer}/{kind}/source: required key [bytes] not found"
            )));
        };
        if let SizeLimit::Base64(max_bytes) = limit
            && data.len() > max_bytes
        {
            return Err(BedrockError::validation(format!(
                "The {kind} at {pointer} is {} bytes of base64, more than the maximum of \
                 {max_bytes} bytes.",
                data.len()
            )));
        }
        let Some(bytes) = decode_base64(data) else {
            return Err(malformed_input(&format!(
                "{pointer}/{kind}/source/bytes: string is not valid base64"
            )));
        };
        if let SizeLimit::Decoded(max_bytes) = limit
            && bytes.len() > max_bytes
        {
            return Err(BedrockError::validation(format!(
                "The {kind} at {pointer} is {} bytes, more than the maximum of {max_bytes} bytes.",
                bytes.len()
            )));
        }
    }
    Ok(())
}

/// The videos of `messages`: none for a text-only model, at most [`MAX_VIDEOS`] otherwise.
/// The schema has been checked.
fn check_videos(base_model_id: &str, messages: &[Value]) -> Result<(), BedrockError> {
    let n_videos = messages
        .iter()
        .flat_map(|message| items(message.get("content")))
        .filter(|block| block.get("video").is_some())
        .count();
    if n_videos > 0 && TEXT_ONLY_MODELS.contains(&base_model_id) {
        return Err(BedrockError::validation(unsupported_block_message("video")));
    }
    if n_videos > MAX_VIDEOS {
        return Err(BedrockError::validation(format!(
            "The request has {n_videos} videos, more than the maximum of {MAX_VIDEOS}."
        )));
    }
    Ok(())
}

/// The pairing Converse checks [U for InvokeModel]: the `toolResult` blocks of a user message
/// answer the `toolUse` blocks of the assistant message before it, every one of them.
fn check_tool_results(messages: &[Value]) -> Result<(), BedrockError> {
    let ids = |message: &Value, kind: &str| -> Vec<String> {
        items(message.get("content"))
            .iter()
            .filter_map(|block| block.get(kind))
            .filter_map(|block| block.get("toolUseId").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    for (idx, message) in messages.iter().enumerate() {
        let results = ids(message, "toolResult");
        let calls = idx.checked_sub(1).map(|previous| ids(&messages[previous], "toolUse"));
        let calls = calls.unwrap_or_default();
        if results.len() > calls.len() {
            return Err(BedrockError::validation(format!(
                "The number of toolResult blocks at messages.{idx}.content exceeds the number of \
                 toolUse blocks of previous turn."
            )));
        }
        let missing: Vec<&str> =
            calls.iter().filter(|id| !results.contains(id)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(BedrockError::validation(format!(
                "Expected toolResult blocks at messages.{idx}.content for the following Ids: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// The tools and choice of `toolConfig` and whether the last message holds tool results.
/// The schema has been checked.
fn tool_plan(tool_config: Option<&Value>, messages: &[Value]) -> Result<ToolPlan, BedrockError> {
    let mut tools = Vec::new();
    for (idx, tool) in items(tool_config.and_then(|config| config.get("tools"))).iter().enumerate()
    {
        let spec = tool.get("toolSpec");
        let name = spec.and_then(|spec| spec.get("name")).and_then(Value::as_str);
        let name = name.unwrap_or_default();
        if !is_valid_tool_name(name) {
            return Err(malformed_input(&format!(
                "#/toolConfig/tools/{idx}/toolSpec/name: string [{name}] does not match pattern \
                 ^[a-zA-Z0-9_-]{{1,64}}$"
            )));
        }
        if tools.iter().any(|tool: &ToolSpec| tool.name == name) {
            return Err(BedrockError::validation(format!(
                "The toolConfig has more than one tool named {name}."
            )));
        }
        let input_schema = spec
            .and_then(|spec| spec.get("inputSchema"))
            .and_then(|schema| schema.get("json"))
            .cloned()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        tools.push(ToolSpec { name: name.to_owned(), input_schema });
    }
    let choice = tool_config.and_then(|config| config.get("toolChoice"));
    let choice = match choice.and_then(Value::as_object) {
        None => ToolChoice::Auto,
        Some(choice) if choice.len() != 1 => {
            return Err(BedrockError::validation(
                "toolChoice must have exactly one of auto, any or tool.",
            ));
        }
        Some(choice) if choice.contains_key("any") => ToolChoice::Required,
        Some(choice) => match choice.get("tool").and_then(|tool| tool.get("name")) {
            Some(Value::String(name)) => {
                if !tools.iter().any(|tool| tool.name == *name) {
                    return Err(BedrockError::validation(format!(
                        "The tool {name} of toolChoice is not in toolConfig.tools."
                    )));
                }
                ToolChoice::Tool(name.clone())
            }
            _ => ToolChoice::Auto,
        },
    };
    let last_blocks = items(messages.last().and_then(|message| message.get("content")));
    let answers_tool_results = last_blocks.iter().any(|block| block.get("toolResult").is_some());
    Ok(ToolPlan { tools, choice, answers_tool_results })
}

/// The seed text and media tokens of a request, read block by block: text, the text and JSON
/// of tool results, and a word for each image, document and video (`tools::Media`). The body has
/// been checked.
#[derive(Default)]
struct Prompt {
    texts: Vec<String>,
    n_media_tokens: u32,
}

impl Prompt {
    fn block(&mut self, block: &Value) {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            self.texts.push(text.to_owned());
        }
        if let Some(json) = block.get("json") {
            self.texts.push(json.to_string());
        }
        for kind in ["image", "document", "video"] {
            let source = block.get(kind).and_then(|media| media.get("source"));
            if let Some(data) =
                source.and_then(|source| source.get("bytes")).and_then(Value::as_str)
            {
                let media = Media::new(kind, &decode_base64(data).unwrap_or_default());
                self.texts.push(media.seed_word);
                self.n_media_tokens = self.n_media_tokens.saturating_add(media.n_input_tokens);
            }
        }
        let results = block.get("toolResult").and_then(|result| result.get("content"));
        for part in items(results) {
            self.block(part);
        }
    }
}

fn request_schema(max_tokens_limit: i64) -> Shape {
    let text = || string_up_to(usize::MAX);
    let bytes_source = || Shape::Object {
        properties: vec![("bytes", text()), ("s3Location", Shape::AnyObject)],
        required: vec![],
    };
    let image = || Shape::Object {
        properties: vec![("format", Shape::Enum(IMAGE_FORMATS)), ("source", bytes_source())],
        required: vec!["format", "source"],
    };
    let video = Shape::Object {
        properties: vec![("format", Shape::Enum(VIDEO_FORMATS)), ("source", bytes_source())],
        required: vec!["format", "source"],
    };
    let document = || Shape::Object {
        properties: vec![
            ("format", Shape::Enum(DOCUMENT_FORMATS)),
            ("name", text()),
            ("source", bytes_source()),
        ],
        required: vec!["format", "name", "source"],
    };
    let tool_result_block = Shape::Object {
        properties: vec![
            ("text", text()),
            ("json", Shape::AnyObject),
            ("image", image()),
            ("document", document()),
        ],
        required: vec![],
    };
    let content_block = Shape::Object {
        properties: vec![
            ("text", text()),
            ("image", image()),
            ("video", video),
            ("audio", Shape::AnyObject),
            ("document", document()),
            (
                "toolUse",
                Shape::Object {
                    properties: vec![
                        ("toolUseId", text()),
                        ("name", text()),
                        ("input", Shape::AnyObject),
                    ],
                    required: vec!["toolUseId", "name", "input"],
                },
            ),
            (
                "toolResult",
                Shape::Object {
                    properties: vec![
                        ("toolUseId", text()),
                        ("content", array_of(tool_result_block, 0, usize::MAX)),
                        ("status", Shape::Enum(&["success", "error"])),
                    ],
                    required: vec!["toolUseId", "content"],
                },
            ),
            ("reasoningContent", Shape::AnyObject),
            ("cachePoint", Shape::AnyObject),
        ],
        required: vec![],
    };
    let tool_spec = Shape::Object {
        properties: vec![
            ("name", text()),
            ("description", text()),
            (
                "inputSchema",
                Shape::Object {
                    properties: vec![("json", Shape::AnyObject)],
                    required: vec!["json"],
                },
            ),
        ],
        required: vec!["name", "inputSchema"],
    };
    let tool_config = Shape::Object {
        properties: vec![
            (
                "tools",
                array_of(
                    Shape::Object {
                        properties: vec![("toolSpec", tool_spec)],
                        required: vec!["toolSpec"],
                    },
                    1,
                    usize::MAX,
                ),
            ),
            (
                "toolChoice",
                Shape::Object {
                    properties: vec![
                        ("auto", Shape::AnyObject),
                        ("any", Shape::AnyObject),
                        (
                            "tool",
                            Shape::Object {
                                properties: vec![("name", text())],
                                required: vec!["name"],
                            },
                        ),
                    ],
                    required: vec![],
                },
            ),
        ],
        required: vec!["tools"],
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
            ("toolConfig", tool_config),
        ],
        required: vec!["messages"],
    }
}

fn stop_reason(completion: &Completion) -> &'static str {
    if completion.tool_call.is_some() {
        return "tool_use";
    }
    match completion.stop {
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
            "messages": [{"role": "user", "content": [{"text": "Hi"},
                {"image": {"format": "png", "source": {"bytes": "aGk="}}}]},
                         {"role": "assistant", "content": [{"text": "Hello"}]},
                         {"role": "user", "content": [{"text": "Go on"}]}],
            "inferenceConfig": {"maxTokens": 7, "stopSequences": ["END"], "topK": 20}}))
        .unwrap();
        let image_word = format!("image-{:016x}", crate::generate::fnv1a_64(b"hi"));
        assert_eq!(request.prompt, format!("Be terse.\nHi\n{image_word}\nHello\nGo on"));
        assert_eq!(request.n_media_input_tokens, 1);
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

    fn weather_config() -> Value {
        json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather.",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"},
                "days": {"type": "integer"}}, "required": ["city"]}}}}]})
    }

    #[test]
    fn a_request_with_tools_is_answered_with_a_call() {
        let mut body = json!({"messages": [{"role": "user", "content": [{"text": "weather?"}]}],
            "toolConfig": weather_config()});
        let completion = generate(&parse(body.clone()).unwrap());
        let call = completion.tool_call.clone().unwrap();
        let city = call.input["city"].as_str().unwrap().to_owned();
        let id = call.id(TOOL_USE_ID_PREFIX, TOOL_USE_ID_CHARS);
        assert!(id.starts_with("tooluse_") && id.len() == 30, "{id}");
        let n_pieces = u32::try_from(completion.tokens.len()).unwrap();
        let response = String::from_utf8(AmazonNova.response_body(&completion)).unwrap();
        let total = n_pieces + 1;
        assert_eq!(
            response,
            format!(
                r#"{{"output":{{"message":{{"content":[{{"toolUse":{{"toolUseId":"{id}","name":"get_weather","input":{{"city":"{city}"}}}}}}],"role":"assistant"}}}},"stopReason":"tool_use","usage":{{"inputTokens":1,"outputTokens":{n_pieces},"totalTokens":{total},"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":0}}}}"#
            )
        );

        let n_chunks = AmazonNova.n_stream_chunks(&completion);
        assert_eq!(n_chunks, completion.tokens.len() + 5);
        let chunk =
            |idx| String::from_utf8(AmazonNova.stream_chunk(&completion, idx, None)).unwrap();
        assert_eq!(chunk(0), r#"{"messageStart":{"role":"assistant"}}"#);
        assert_eq!(
            chunk(1),
            format!(
                r#"{{"contentBlockStart":{{"start":{{"toolUse":{{"toolUseId":"{id}","name":"get_weather"}}}},"contentBlockIndex":0}}}}"#
            )
        );
        let mut input = String::new();
        for idx in 2..n_chunks - 3 {
            let delta: Value = serde_json::from_str(&chunk(idx)).unwrap();
            assert_eq!(delta["contentBlockDelta"]["contentBlockIndex"], 0);
            input.push_str(
                delta["contentBlockDelta"]["delta"]["toolUse"]["input"].as_str().unwrap(),
            );
        }
        assert_eq!(input, format!(r#"{{"city":"{city}"}}"#));
        assert_eq!(chunk(n_chunks - 3), r#"{"contentBlockStop":{"contentBlockIndex":0}}"#);
        assert_eq!(chunk(n_chunks - 2), r#"{"messageStop":{"stopReason":"tool_use"}}"#);
        let metadata: Value = serde_json::from_str(&chunk(n_chunks - 1)).unwrap();
        assert_eq!(metadata["metadata"]["usage"]["outputTokens"], n_pieces);
        assert_eq!(AmazonNova.n_stream_tokens_sent(&completion, 3), 1);
        assert_eq!(AmazonNova.n_stream_tokens_sent(&completion, n_chunks), n_pieces);

        // The result of the call is answered with text, seeded by it.
        body["messages"] = json!([
            {"role": "user", "content": [{"text": "weather?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": id, "name": "get_weather",
                "input": {"city": city}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": id,
                "content": [{"text": "sunny"}, {"json": {"celsius": 25}}], "status": "success"}}]}]);
        let request = parse(body.clone()).unwrap();
        assert_eq!(request.prompt, "weather?\nsunny\n{\"celsius\":25}");
        let answer = generate(&request);
        assert_eq!(answer.tool_call, None);
        let response: Value = serde_json::from_slice(&AmazonNova.response_body(&answer)).unwrap();
        assert_eq!(response["output"]["message"]["content"], json!([{"text": answer.text()}]));
        assert_eq!(response["stopReason"], "end_turn");

        // A named tool; a choice that names no defined tool.
        let mut named = json!({"messages": [{"role": "user", "content": [{"text": "x"}]}],
            "toolConfig": weather_config()});
        named["toolConfig"]["toolChoice"] = json!({"tool": {"name": "get_weather"}});
        assert!(generate(&parse(named.clone()).unwrap()).tool_call.is_some());
        named["toolConfig"]["toolChoice"] = json!({"tool": {"name": "other"}});
        assert_eq!(
            parse(named).unwrap_err(),
            "The tool other of toolChoice is not in toolConfig.tools."
        );
    }

    #[test]
    fn tool_and_media_checks() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        let user =
            |content: Value| parse(json!({"messages": [{"role": "user", "content": content}]}));
        let image = |format: &str, bytes: &str| json!({"image": {"format": format, "source": {"bytes": bytes}}});
        let request =
            user(json!([{"text": "what is it?"}, image("png", &"QUJD".repeat(500))])).unwrap();
        assert_eq!(request.n_media_input_tokens, 2);
        assert!(request.prompt.starts_with("what is it?\nimage-"));
        assert_eq!(generate(&request).n_input_tokens, 3 + 1 + 2);
        assert_eq!(
            user(json!([image("bmp", "aGk=")])).unwrap_err(),
            detail("#/messages/0/content/0/image/format: bmp is not a valid enum value")
        );
        assert_eq!(
            user(json!([image("png", "not base64!")])).unwrap_err(),
            detail("#/messages/0/content/0/image/source/bytes: string is not valid base64")
        );
        let document = json!({"document": {"format": "pdf", "name": "report", "source": {"bytes": "JVBERi0="}}});
        assert!(user(json!([document])).unwrap().prompt.starts_with("document-"));

        let with_tools = |tool_config: Value| {
            parse(
                json!({"messages": [{"role": "user", "content": [{"text": "x"}]}], "toolConfig": tool_config}),
            )
        };
        assert_eq!(
            with_tools(json!({"tools": [{"toolSpec": {"name": "get weather", "inputSchema": {"json": {}}}}]}))
                .unwrap_err(),
            detail("#/toolConfig/tools/0/toolSpec/name: string [get weather] does not match pattern ^[a-zA-Z0-9_-]{1,64}$")
        );
        assert_eq!(
            with_tools(json!({"tools": [{"toolSpec": {"name": "a"}}]})).unwrap_err(),
            detail("#/toolConfig/tools/0/toolSpec: required key [inputSchema] not found")
        );

        let call = |id: &str| json!({"toolUse": {"toolUseId": id, "name": "a", "input": {}}});
        let result =
            |id: &str| json!({"toolResult": {"toolUseId": id, "content": [{"text": "ok"}]}});
        let turns = |assistant: Value, user: Value| {
            parse(json!({"messages": [{"role": "user", "content": [{"text": "x"}]},
                {"role": "assistant", "content": assistant}, {"role": "user", "content": user}]}))
        };
        assert!(turns(json!([call("t1")]), json!([result("t1")])).is_ok());
        assert_eq!(
            turns(json!([call("t1"), call("t2")]), json!([result("t1")])).unwrap_err(),
            "Expected toolResult blocks at messages.2.content for the following Ids: t2"
        );
        assert_eq!(
            turns(json!([call("t1")]), json!([result("t1"), result("t2")])).unwrap_err(),
            "The number of toolResult blocks at messages.2.content exceeds the number of toolUse \
             blocks of previous turn."
        );
    }

    #[test]
    fn video_checks_tokens_and_seed_word() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        let body = |content: Value| json!({"messages": [{"role": "user", "content": content}]});
        let video = |format: &str, bytes: &str| json!({"video": {"format": format, "source": {"bytes": bytes}}});
        // 1,500 decoded bytes: 2 media tokens; the word names the video's bytes.
        let bytes = "QUJD".repeat(500);
        let request =
            parse(body(json!([video("three_gp", &bytes), {"text": "what happens?"}]))).unwrap();
        let decoded = "ABC".repeat(500);
        let word = format!("video-{:016x}", crate::generate::fnv1a_64(decoded.as_bytes()));
        assert_eq!(request.prompt, format!("{word}\nwhat happens?"));
        assert_eq!(request.n_media_input_tokens, 2);
        assert_eq!(generate(&request).n_input_tokens, 1 + 2 + 2);
        for format in VIDEO_FORMATS {
            assert!(parse(body(json!([video(format, "aGk=")]))).is_ok(), "{format}");
        }

        let cases = [
            (
                body(json!([video("mp3", "aGk=")])),
                detail("#/messages/0/content/0/video/format: mp3 is not a valid enum value"),
            ),
            (
                body(json!([{"video": {"format": "mp4"}}])),
                detail("#/messages/0/content/0/video: required key [source] not found"),
            ),
            (
                body(json!([video("mp4", "not base64!")])),
                detail("#/messages/0/content/0/video/source/bytes: string is not valid base64"),
            ),
            (
                body(json!([{"video": {"format": "mp4",
                    "source": {"s3Location": {"uri": "s3://bucket/cat.mp4"}}}}])),
                detail("#/messages/0/content/0/video/source: required key [bytes] not found"),
            ),
            (
                body(json!([video("mp4", &"A".repeat(MAX_VIDEO_BASE64_BYTES + 4))])),
                "The video at #/messages/0/content/0 is 26214404 bytes of base64, more than the \
                 maximum of 26214400 bytes."
                    .to_owned(),
            ),
            (
                json!({"messages": [
                    {"role": "user", "content": [video("mp4", "aGk=")]},
                    {"role": "assistant", "content": [{"text": "a cat"}]},
                    {"role": "user", "content": [video("mov", "aGk=")]}]}),
                "The request has 2 videos, more than the maximum of 1.".to_owned(),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), expected, "{body}");
        }
        // At the limit a video is taken.
        let at_limit = "A".repeat(MAX_VIDEO_BASE64_BYTES);
        assert!(parse(body(json!([video("mp4", &at_limit)]))).is_ok());

        // Nova Micro takes no video, whatever else the request holds.
        let micro = AmazonNova
            .parse_request("amazon.nova-micro-v1:0", &body(json!([video("mp4", "aGk=")])))
            .unwrap_err();
        assert_eq!(
            micro.message(),
            "This model doesn't support the video content block that you provided. Update the \
             content block and try again."
        );
        let text = body(json!([{"text": "hi"}]));
        assert!(AmazonNova.parse_request("amazon.nova-micro-v1:0", &text).is_ok());
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
