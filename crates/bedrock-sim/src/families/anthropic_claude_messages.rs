//! Anthropic Claude Messages API (Claude 3 and later): request checks and answer shapes of wire
//! document §4.4, including the messages rules Anthropic's validator applies behind Bedrock.
//!
//! Models ([`MODELS`]): `anthropic.claude-3-haiku-20240307-v1:0`,
//! `anthropic.claude-3-sonnet-20240229-v1:0`, `anthropic.claude-3-opus-20240229-v1:0`,
//! `anthropic.claude-3-5-sonnet-20240620-v1:0` (on demand), and, only through an inference
//! profile, `anthropic.claude-3-5-sonnet-20241022-v2:0`,
//! `anthropic.claude-3-5-haiku-20241022-v1:0`, `anthropic.claude-3-7-sonnet-20250219-v1:0`,
//! `anthropic.claude-sonnet-4-20250514-v1:0`, `anthropic.claude-opus-4-20250514-v1:0`,
//! `anthropic.claude-opus-4-1-20250805-v1:0`, `anthropic.claude-sonnet-4-5-20250929-v1:0`,
//! `anthropic.claude-haiku-4-5-20251001-v1:0`, `anthropic.claude-opus-4-5-20251101-v1:0`,
//! `anthropic.claude-opus-4-6-v1` and `anthropic.claude-sonnet-4-6`.
//!
//! Every answer names the model (`"model": "claude-3-haiku-20240307"`), so the registered value
//! hands each call to the model's own value through [`Family::model_family`].
//!
//! Prompt caching (`prompt_cache.rs`), for the models of [`CACHE_MIN_TOKENS`]: a
//! `cache_control` on a tool, a system block or a message content block caches the tools,
//! system blocks and message blocks up to it; a hit is looked for at the 20 block boundaries
//! before each breakpoint too. More than four breakpoints are Anthropic's 400. The answer's
//! `usage` has `cache_creation_input_tokens` and `cache_read_input_tokens` after
//! `input_tokens`, 0 when nothing was cached (recorded from Claude 3.7 Sonnet on Bedrock in
//! async-aws's `InvokeModelResponseTest`), in the body and in `message_start`; the stream's
//! invocation metrics carry the two cache counts as Nova's do [U for Claude]. The other
//! models accept `cache_control` and cache nothing, with no cache counts; real Bedrock may
//! refuse the marker there ("You invoked an unsupported model or your request did not allow
//! prompt caching" is recorded for other models without a prompt cache) [U].
//!
//! Tools, media and thinking (`tools.rs` has the shared rules), with Anthropic's 400 wording
//! where it is recorded (GitHub reports of Anthropic's API behind Bedrock and Vertex):
//! - `tools`: custom tools `{name, description?, input_schema, cache_control?}`, the name
//!   `^[a-zA-Z0-9_-]{1,64}$`, the schema an object of `type` `"object"`, names unique; a
//!   server tool (`bash_20250124`, ...) is accepted unchecked and never called.
//!   `tool_choice` `{type: auto | any | tool (name) | none}`; `any` or `tool` without tools,
//!   or a `tool` not defined, is refused [U: the wording].
//! - Blocks: `image` (`source` `{type: "base64", media_type: png | jpeg | gif | webp, data}`,
//!   the base64 at most 5 MB, Anthropic's limit, and decodable [U: Bedrock's limit; the
//!   bytes are not checked against the media type]), `document` (base64 PDF or plain text, or
//!   a `text` source), `tool_use` `{id, name, input}` and `tool_result` `{tool_use_id,
//!   content?, is_error?}` whose content is a string or text and image blocks. The results
//!   of a user message must answer exactly the calls of the assistant message before it
//!   (`tool_use ids were found without tool_result blocks immediately after`, `unexpected
//!   tool_use_id found in tool_result blocks`).
//! - The seed text is the text blocks, the tool results' texts, plain-text documents, and a
//!   word per image or PDF; images and PDFs add their media tokens.
//! - A call answers `content: [{type: tool_use, id, name, input}]`, `stop_reason: tool_use`;
//!   its stream is `content_block_start` `{type: tool_use, id, name, input: {}}`, an
//!   `input_json_delta` per input piece, `content_block_stop`, `message_delta` `tool_use`.
//!   Ids are `toolu_bdrk_01` and 22 base-62 characters, as Bedrock's look.
//! - `thinking: {type: enabled, budget_tokens}` (at least 1,024, less than `max_tokens`;
//!   not with a forced tool choice): the answer opens with `{type: thinking, thinking,
//!   signature}` and the stream with that block (`content_block_start` `{type: thinking,
//!   thinking: ""}`, a `thinking_delta` per word, one `signature_delta`, the stop) at index
//!   0; the text or tool block is index 1. Thinking words count as output tokens. Every
//!   model accepts it [U: Claude 3 and 3.5 refuse it on Bedrock].

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::BedrockError;
use crate::families::common::{
    PerModelFamily, check_extraneous_keys, check_required_keys, string_array, validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, StopCause, Thinking, fnv1a_64};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::prompt_cache::{
    CacheBoundary, CacheInvocationMetrics, CacheRequest, MAX_CHECKPOINTS, PrefixHasher, items,
    n_words,
};
use crate::schema::{Schema, as_integer};
use crate::tools::{
    IMAGE_MEDIA_TYPES, Media, ToolChoice, ToolPlan, ToolSpec, decode_base64, is_valid_tool_name,
};

/// The Claude Messages family as registered: it knows the models and hands every call to the
/// model's own [`ClaudeModel`] value.
pub(crate) struct AnthropicClaudeMessages;

/// One Claude model and what Bedrock enforces for it.
pub(crate) struct ClaudeModel {
    base_model_id: &'static str,
    /// Anthropic's name for the model: the `model` of every answer.
    name: &'static str,
    /// The largest `max_tokens`.
    max_output_tokens: i64,
    needs_inference_profile: bool,
    /// Whether `temperature` and `top_p` may not both be given (Claude 4.5 and later).
    exclusive_sampling: bool,
}

const FAMILY_ID: &str = "anthropic_claude_messages";

/// The only `anthropic_version` Bedrock accepts.
const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Every simulated Claude Messages model. Output limits are Anthropic's published ones.
static MODELS: &[ClaudeModel] = &[
    ClaudeModel::on_demand(
        "anthropic.claude-3-haiku-20240307-v1:0",
        "claude-3-haiku-20240307",
        4096,
    ),
    ClaudeModel::on_demand(
        "anthropic.claude-3-sonnet-20240229-v1:0",
        "claude-3-sonnet-20240229",
        4096,
    ),
    ClaudeModel::on_demand("anthropic.claude-3-opus-20240229-v1:0", "claude-3-opus-20240229", 4096),
    ClaudeModel::on_demand(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "claude-3-5-sonnet-20240620",
        8192,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "claude-3-5-sonnet-20241022",
        8192,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "claude-3-5-haiku-20241022",
        8192,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "claude-3-7-sonnet-20250219",
        64_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "claude-sonnet-4-20250514",
        64_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-opus-4-20250514-v1:0",
        "claude-opus-4-20250514",
        32_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "claude-opus-4-1-20250805",
        32_000,
        false,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5-20250929",
        64_000,
        true,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-haiku-4-5-20251001",
        64_000,
        true,
    ),
    ClaudeModel::profile_only(
        "anthropic.claude-opus-4-5-20251101-v1:0",
        "claude-opus-4-5-20251101",
        64_000,
        true,
    ),
    ClaudeModel::profile_only("anthropic.claude-opus-4-6-v1", "claude-opus-4-6", 128_000, true),
    ClaudeModel::profile_only("anthropic.claude-sonnet-4-6", "claude-sonnet-4-6", 64_000, true),
];

/// The least prefix, in tokens, that a cache checkpoint caches, for each model Bedrock caches
/// prompts for: AWS's table (3.5 Haiku 2,048, 3.7 Sonnet 1,024); LiteLLM's table for Bedrock
/// for the later ones (Sonnet 4.x, Opus 4 and 4.1: 1,024; Haiku 4.5, Opus 4.5 and 4.6:
/// 4,096), which a recorded bisection on Bedrock confirms for Haiku 4.5 (4,096) and Sonnet
/// 4.6 (1,024; Anthropic's own API says 2,048). Bedrock caches no prompt for Claude 3 and 3.5
/// Sonnet (3.5 Sonnet v2 only for the customers of its preview).
const CACHE_MIN_TOKENS: &[(&str, u32)] = &[
    ("anthropic.claude-3-5-haiku-20241022-v1:0", 2_048),
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", 1_024),
    ("anthropic.claude-sonnet-4-20250514-v1:0", 1_024),
    ("anthropic.claude-opus-4-20250514-v1:0", 1_024),
    ("anthropic.claude-opus-4-1-20250805-v1:0", 1_024),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", 1_024),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", 4_096),
    ("anthropic.claude-opus-4-5-20251101-v1:0", 4_096),
    ("anthropic.claude-opus-4-6-v1", 4_096),
    ("anthropic.claude-sonnet-4-6", 1_024),
];

/// The [`PerModelFamily::unresolved_model`].
static UNRESOLVED_MODEL: ClaudeModel = ClaudeModel::on_demand("", "claude", 4096);

/// The content block types Anthropic accepts in a message.
const CONTENT_BLOCK_TYPES: &[&str] =
    &["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"];

/// The stream of one answer: message start, block start, one delta per token, block stop,
/// message delta, message stop.
const N_FRAMING_CHUNKS: usize = 5;

impl ClaudeModel {
    const fn on_demand(base_model_id: &'static str, name: &'static str, max: i64) -> ClaudeModel {
        ClaudeModel {
            base_model_id,
            name,
            max_output_tokens: max,
            needs_inference_profile: false,
            exclusive_sampling: false,
        }
    }

    const fn profile_only(
        base_model_id: &'static str,
        name: &'static str,
        max: i64,
        exclusive_sampling: bool,
    ) -> ClaudeModel {
        ClaudeModel {
            base_model_id,
            name,
            max_output_tokens: max,
            needs_inference_profile: true,
            exclusive_sampling,
        }
    }

    /// The least cacheable prefix, for a model Bedrock caches prompts for.
    fn cache_min_tokens(&self) -> Option<u32> {
        let entry = CACHE_MIN_TOKENS.iter().find(|(model_id, _)| *model_id == self.base_model_id);
        entry.map(|(_, n_tokens)| *n_tokens)
    }

    /// The answer's usage: the cache counts only for a model with a prompt cache.
    fn usage(&self, completion: &Completion, output_tokens: u32) -> Usage {
        let cache = self.cache_min_tokens().map(|_| completion.cache);
        Usage {
            input_tokens: completion.n_input_tokens,
            cache_creation_input_tokens: cache.map(|cache| cache.write),
            cache_read_input_tokens: cache.map(|cache| cache.read),
            output_tokens,
        }
    }
}

fn model(base_model_id: &str) -> Option<&'static ClaudeModel> {
    MODELS.iter().find(|model| model.base_model_id == base_model_id)
}

impl PerModelFamily for AnthropicClaudeMessages {
    type Model = ClaudeModel;

    fn model(&self, base_model_id: &str) -> Option<&'static ClaudeModel> {
        model(base_model_id)
    }

    fn unresolved_model(&self) -> &'static ClaudeModel {
        &UNRESOLVED_MODEL
    }
}

impl Family for ClaudeModel {
    fn id(&self) -> &'static str {
        FAMILY_ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        self.base_model_id == base_model_id
    }

    fn needs_inference_profile(&self, _base_model_id: &str) -> bool {
        self.needs_inference_profile
    }

    fn reports_cache_tokens(&self) -> bool {
        self.cache_min_tokens().is_some()
    }

    fn cache_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<CacheRequest, BedrockError> {
        let Some(min_prefix_tokens) = self.cache_min_tokens() else {
            return Ok(CacheRequest::default());
        };
        Ok(CacheRequest { min_prefix_tokens, boundaries: cache_boundaries(body)? })
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        // A Text Completions body sent to a Messages model [R: langchain issue 19549].
        if body.get("prompt").is_some() && body.get("messages").is_none() {
            return Err(BedrockError::validation(format!(
                "\"{}\" is not supported on this API. Please use the Messages API instead.",
                self.name
            )));
        }
        validate_masked(
            &request_schema(),
            body,
            &["system", "messages", "tools", "tool_choice", "thinking"],
        )?;
        let mut violations = Vec::new();
        check_system_shape(body.get("system"), &mut violations);
        check_messages_shape(body.get("messages"), &mut violations);
        finish(&violations, ViolationReport::Counted)?;

        let version = body.get("anthropic_version").and_then(Value::as_str).unwrap_or_default();
        if version != ANTHROPIC_VERSION {
            return Err(BedrockError::validation(format!("Invalid API version: {version}")));
        }
        let max_tokens = body.get("max_tokens").and_then(as_integer).unwrap_or_default();
        if max_tokens > self.max_output_tokens {
            return Err(BedrockError::validation(format!(
                "max_tokens: {max_tokens} > {}, which is the maximum allowed number of output \
                 tokens for {}",
                self.max_output_tokens, self.name
            )));
        }
        if self.exclusive_sampling
            && body.get("temperature").is_some()
            && body.get("top_p").is_some()
        {
            return Err(BedrockError::validation(
                "`temperature` and `top_p` cannot both be specified for this model. Please use \
                 only one.",
            ));
        }
        let messages =
            body.get("messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        check_conversation(messages)?;
        let tools = check_tools(body.get("tools"))?;
        let choice = check_tool_choice(body.get("tool_choice"), &tools)?;
        let thinking = check_thinking(body.get("thinking"), max_tokens)?;
        if thinking && matches!(choice, ToolChoice::Required | ToolChoice::Tool(_)) {
            return Err(BedrockError::validation(
                "Thinking may not be enabled when tool_choice forces tool use.",
            ));
        }

        let mut prompt = Prompt::default();
        prompt.content(body.get("system"));
        for message in messages {
            prompt.content(message.get("content"));
        }
        let last_content = messages.last().and_then(|message| message.get("content"));
        let answers_tool_results = items(last_content)
            .iter()
            .any(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"));
        Ok(GenerationRequest {
            prompt: prompt.texts.join("\n"),
            max_tokens: u32::try_from(max_tokens).unwrap_or_default(),
            stop_sequences: string_array(body.get("stop_sequences")),
            space_before_first_token: false,
            tools: ToolPlan { tools, choice, answers_tool_results },
            thinking,
            n_media_input_tokens: prompt.n_media_tokens,
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        let thinking_text = completion.thinking.as_ref().map(Thinking::text);
        let empty = Value::Object(Map::new());
        let mut content = Vec::new();
        if let (Some(thinking), Some(thinking_text)) = (&completion.thinking, &thinking_text) {
            content.push(Block::Thinking {
                thinking: thinking_text,
                signature: Some(&thinking.signature),
            });
        }
        content.push(main_block(completion, &text, &empty, false));
        let (stop_reason, stop_sequence) = stop_reason(completion);
        json_bytes(&MessageResponse {
            id: message_id(completion),
            kind: "message",
            role: "assistant",
            model: self.name,
            content,
            stop_reason: Some(stop_reason),
            stop_sequence,
            usage: self.usage(completion, completion.n_output_tokens()),
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        StreamLayout::of(completion).n_chunks()
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        let layout = StreamLayout::of(completion);
        let deltas_sent = |first: usize, n: usize| n_chunks_sent.saturating_sub(first).min(n);
        let n_thinking = deltas_sent(layout.first_thinking_delta(), layout.n_thinking);
        let n_main = deltas_sent(layout.first_main_delta(), layout.n_main);
        u32::try_from(n_thinking + n_main).unwrap_or(u32::MAX)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let layout = StreamLayout::of(completion);
        let empty = Value::Object(Map::new());
        let thinking = completion.thinking.as_ref();
        let main_index = layout.main_index();
        let event = match layout.event(chunk_idx) {
            LayoutEvent::MessageStart => StreamEvent::MessageStart {
                message: MessageResponse {
                    id: message_id(completion),
                    kind: "message",
                    role: "assistant",
                    model: self.name,
                    content: Vec::new(),
                    stop_reason: None,
                    stop_sequence: None,
                    // Bedrock's first event counts one output token already [R].
                    usage: self.usage(completion, 1),
                },
            },
            LayoutEvent::ThinkingStart => StreamEvent::ContentBlockStart {
                index: 0,
                content_block: Block::Thinking { thinking: "", signature: None },
            },
            LayoutEvent::ThinkingDelta(token_idx) => StreamEvent::ContentBlockDelta {
                index: 0,
                delta: Delta::Thinking {
                    thinking: thinking
                        .and_then(|thinking| thinking.tokens.get(token_idx))
                        .map_or("", String::as_str),
                },
            },
            LayoutEvent::SignatureDelta => StreamEvent::ContentBlockDelta {
                index: 0,
                delta: Delta::Signature {
                    signature: thinking.map_or("", |thinking| thinking.signature.as_str()),
                },
            },
            LayoutEvent::ThinkingStop => StreamEvent::ContentBlockStop { index: 0 },
            LayoutEvent::MainStart => StreamEvent::ContentBlockStart {
                index: main_index,
                content_block: main_block(completion, "", &empty, true),
            },
            LayoutEvent::MainDelta(token_idx) => {
                let piece = completion.tokens.get(token_idx).map_or("", String::as_str);
                StreamEvent::ContentBlockDelta {
                    index: main_index,
                    delta: match completion.tool_call {
                        Some(_) => Delta::InputJson { partial_json: piece },
                        None => Delta::Text { text: piece },
                    },
                }
            }
            LayoutEvent::MainStop => StreamEvent::ContentBlockStop { index: main_index },
            LayoutEvent::MessageDelta => {
                let (stop_reason, stop_sequence) = stop_reason(completion);
                StreamEvent::MessageDelta {
                    delta: StopDelta { stop_reason, stop_sequence },
                    usage: OutputUsage { output_tokens: completion.n_output_tokens() },
                }
            }
            LayoutEvent::MessageStop => StreamEvent::MessageStop {
                invocation_metrics: metrics.map(|metrics| match self.cache_min_tokens() {
                    Some(_) => {
                        StopMetrics::Cache(CacheInvocationMetrics::new(metrics, completion.cache))
                    }
                    None => StopMetrics::Plain(metrics),
                }),
            },
        };
        json_bytes(&event)
    }
}

/// The answer's text or tool-use block (`streamed`: as `content_block_start` opens it, with
/// no text and an empty input).
fn main_block<'a>(
    completion: &'a Completion,
    text: &'a str,
    empty: &'a Value,
    streamed: bool,
) -> Block<'a> {
    match &completion.tool_call {
        Some(call) => Block::ToolUse {
            id: call.id(TOOL_USE_ID_PREFIX, TOOL_USE_ID_CHARS),
            name: &call.name,
            input: if streamed { empty } else { &call.input },
        },
        None => Block::Text { text },
    }
}

/// The prefix of a tool-use id and the base-62 characters after it, as Bedrock's ids look
/// (`toolu_bdrk_01` and 22 characters, like the message ids).
const TOOL_USE_ID_PREFIX: &str = "toolu_bdrk_01";
const TOOL_USE_ID_CHARS: usize = 22;

/// Where each event of a stream is: `message_start`; the thinking block when there is one
/// (start, a `thinking_delta` per word, the `signature_delta`, stop); the answer's block
/// (start, a delta per token or input piece, stop); `message_delta`; `message_stop`.
struct StreamLayout {
    /// The thinking block's words; 0 without a thinking block.
    n_thinking: usize,
    has_thinking: bool,
    /// The answer block's tokens or input pieces.
    n_main: usize,
}

/// The event of one stream chunk, by its place in [`StreamLayout`].
enum LayoutEvent {
    MessageStart,
    ThinkingStart,
    ThinkingDelta(usize),
    SignatureDelta,
    ThinkingStop,
    MainStart,
    MainDelta(usize),
    MainStop,
    MessageDelta,
    MessageStop,
}

impl StreamLayout {
    fn of(completion: &Completion) -> StreamLayout {
        StreamLayout {
            n_thinking: completion.thinking.as_ref().map_or(0, |thinking| thinking.tokens.len()),
            has_thinking: completion.thinking.is_some(),
            n_main: completion.tokens.len(),
        }
    }

    /// The chunks of the thinking block: start, deltas, signature, stop.
    fn n_thinking_chunks(&self) -> usize {
        if self.has_thinking { self.n_thinking + 3 } else { 0 }
    }

    fn first_thinking_delta(&self) -> usize {
        2
    }

    fn main_start(&self) -> usize {
        1 + self.n_thinking_chunks()
    }

    fn first_main_delta(&self) -> usize {
        self.main_start() + 1
    }

    /// The content block index of the answer's block: after the thinking block, if any.
    fn main_index(&self) -> u32 {
        u32::from(self.has_thinking)
    }

    fn n_chunks(&self) -> usize {
        self.main_start() + self.n_main + N_FRAMING_CHUNKS - 1
    }

    fn event(&self, chunk_idx: usize) -> LayoutEvent {
        let main_start = self.main_start();
        let main_stop = main_start + self.n_main + 1;
        match chunk_idx {
            0 => LayoutEvent::MessageStart,
            idx if idx < main_start => match idx - 1 {
                0 => LayoutEvent::ThinkingStart,
                offset if offset <= self.n_thinking => LayoutEvent::ThinkingDelta(offset - 1),
                offset if offset == self.n_thinking + 1 => LayoutEvent::SignatureDelta,
                _ => LayoutEvent::ThinkingStop,
            },
            idx if idx == main_start => LayoutEvent::MainStart,
            idx if idx < main_stop => LayoutEvent::MainDelta(idx - main_start - 1),
            idx if idx == main_stop => LayoutEvent::MainStop,
            idx if idx == main_stop + 1 => LayoutEvent::MessageDelta,
            _ => LayoutEvent::MessageStop,
        }
    }
}

#[derive(Serialize)]
struct MessageResponse<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'static str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'a str>,
    usage: Usage,
}

/// A content block of the answer, or as `content_block_start` opens it.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Thinking {
        thinking: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
    },
    ToolUse {
        id: String,
        name: &'a str,
        input: &'a Value,
    },
}

/// The delta of a `content_block_delta`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

/// The usage of an answer; the cache counts only for a model with a prompt cache.
#[derive(Serialize)]
struct Usage {
    input_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u32>,
    output_tokens: u32,
}

/// The invocation metrics of `message_stop`: with the cache counts for a model with a prompt
/// cache.
#[derive(Serialize)]
#[serde(untagged)]
enum StopMetrics {
    Plain(InvocationMetrics),
    Cache(CacheInvocationMetrics),
}

#[derive(Serialize)]
struct StopDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u32,
}

/// One model-native stream event.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent<'a> {
    MessageStart {
        message: MessageResponse<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta<'a>,
        usage: OutputUsage,
    },
    MessageStop {
        #[serde(
            rename = "amazon-bedrock-invocationMetrics",
            skip_serializing_if = "Option::is_none"
        )]
        invocation_metrics: Option<StopMetrics>,
    },
}

/// The top level of the body. `system`, `messages`, `tools`, `tool_choice` and `thinking` are
/// unions or nested lists the schema cannot express; [`validate_masked`] skips them and they
/// are checked by hand, with Anthropic's messages.
fn request_schema() -> Schema {
    Schema::Object {
        properties: vec![
            ("anthropic_version", Schema::String),
            ("anthropic_beta", Schema::StringArray),
            ("max_tokens", Schema::Integer { minimum: 1, maximum: i64::MAX }),
            ("system", Schema::String),
            ("messages", Schema::String),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_k", Schema::Integer { minimum: 0, maximum: 500 }),
            ("stop_sequences", Schema::StringArray),
            ("tools", Schema::String),
            ("tool_choice", Schema::String),
            ("thinking", Schema::String),
        ],
        required: vec!["anthropic_version", "max_tokens", "messages"],
    }
}

/// `system` is a string or a list of text blocks.
fn check_system_shape(system: Option<&Value>, violations: &mut Vec<String>) {
    match system {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (idx, block) in blocks.iter().enumerate() {
                check_text_block(block, &format!("#/system/{idx}"), violations);
            }
        }
        Some(other) => violations.push(type_mismatch("#/system", "String or JSONArray", other)),
    }
}

fn check_text_block(block: &Value, pointer: &str, violations: &mut Vec<String>) {
    let Some(object) = block.as_object() else {
        violations.push(type_mismatch(pointer, "JSONObject", block));
        return;
    };
    for key in ["type", "text"] {
        match object.get(key) {
            None => violations.push(format!("{pointer}: required key [{key}] not found")),
            Some(Value::String(_)) => {}
            Some(other) => {
                violations.push(type_mismatch(&format!("{pointer}/{key}"), "String", other));
            }
        }
    }
}

/// `messages` is a list of `{role, content}` objects; content is a string or a list of blocks.
fn check_messages_shape(messages: Option<&Value>, violations: &mut Vec<String>) {
    let Some(messages) = messages else {
        return;
    };
    let Some(items) = messages.as_array() else {
        violations.push(type_mismatch("#/messages", "JSONArray", messages));
        return;
    };
    for (idx, message) in items.iter().enumerate() {
        let pointer = format!("#/messages/{idx}");
        let Some(object) = message.as_object() else {
            violations.push(type_mismatch(&pointer, "JSONObject", message));
            continue;
        };
        check_required_keys(object, &pointer, &["role", "content"], violations);
        check_extraneous_keys(object, &pointer, &["role", "content"], violations);
        if let Some(role) = object.get("role").filter(|role| !role.is_string()) {
            violations.push(type_mismatch(&format!("{pointer}/role"), "String", role));
        }
        match object.get("content") {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (block_idx, block) in blocks.iter().enumerate() {
                    let block_pointer = format!("{pointer}/content/{block_idx}");
                    match block.as_object() {
                        Some(block) if block.get("type").is_some_and(Value::is_string) => {}
                        Some(_) => {
                            violations
                                .push(format!("{block_pointer}: required key [type] not found"));
                        }
                        None => violations.push(type_mismatch(&block_pointer, "JSONObject", block)),
                    }
                }
            }
            Some(other) => violations.push(type_mismatch(
                &format!("{pointer}/content"),
                "String or JSONArray",
                other,
            )),
        }
    }
}

/// The conversation rules Anthropic checks once the shapes are right.
fn check_conversation(messages: &[Value]) -> Result<(), BedrockError> {
    if messages.is_empty() {
        return Err(BedrockError::validation("messages: at least one message is required"));
    }
    let mut previous_role = None;
    for (idx, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(BedrockError::validation(format!(
                "messages.{idx}.role: Input should be 'user' or 'assistant'"
            )));
        }
        if idx == 0 && role != "user" {
            return Err(BedrockError::validation(
                "messages: first message must use the \"user\" role",
            ));
        }
        if previous_role == Some(role) {
            return Err(BedrockError::validation(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found \
                 multiple \"{role}\" roles in a row"
            )));
        }
        previous_role = Some(role);
        check_content(
            idx,
            message.get("content"),
            idx + 1 == messages.len() && role == "assistant",
        )?;
        check_tool_results(messages, idx)?;
    }
    Ok(())
}

/// The pairing of calls and results Anthropic checks: each `tool_result` of message `idx`
/// answers a `tool_use` of the message before it, and each `tool_use` of the message before
/// it has a `tool_result` here.
fn check_tool_results(messages: &[Value], idx: usize) -> Result<(), BedrockError> {
    let blocks_of = |message: &Value, kind: &str, id_key: &str| -> Vec<(usize, String)> {
        items(message.get("content"))
            .iter()
            .enumerate()
            .filter(|(_, block)| block.get("type").and_then(Value::as_str) == Some(kind))
            .map(|(block_idx, block)| {
                let id = block.get(id_key).and_then(Value::as_str).unwrap_or_default();
                (block_idx, id.to_owned())
            })
            .collect()
    };
    let results = blocks_of(&messages[idx], "tool_result", "tool_use_id");
    let calls = match idx.checked_sub(1) {
        Some(previous) => blocks_of(&messages[previous], "tool_use", "id"),
        None => Vec::new(),
    };
    let missing: Vec<&str> = calls
        .iter()
        .filter(|(_, id)| !results.iter().any(|(_, result_id)| result_id == id))
        .map(|(_, id)| id.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(BedrockError::validation(format!(
            "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately \
             after: {}. Each `tool_use` block must have a corresponding `tool_result` block in \
             the next message.",
            idx - 1,
            missing.join(", ")
        )));
    }
    if let Some((block_idx, id)) =
        results.iter().find(|(_, id)| !calls.iter().any(|(_, call_id)| call_id == id))
    {
        return Err(BedrockError::validation(format!(
            "messages.{idx}.content.{block_idx}: unexpected `tool_use_id` found in \
             `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding \
             `tool_use` block in the previous message."
        )));
    }
    Ok(())
}

/// Anthropic's refusal of a text that is only whitespace.
const WHITESPACE_ONLY_MESSAGE: &str =
    "messages: text content blocks must contain non-whitespace text";

fn check_content(
    message_idx: usize,
    content: Option<&Value>,
    is_final_assistant: bool,
) -> Result<(), BedrockError> {
    let is_empty = match content {
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Array(blocks)) => blocks.is_empty(),
        _ => true,
    };
    if is_empty && !is_final_assistant {
        return Err(BedrockError::validation(format!(
            "messages.{message_idx}: all messages must have non-empty content except for the \
             optional final assistant message"
        )));
    }
    // A prompt of nothing but whitespace (Anthropic's Messages API, passed on by Bedrock).
    if let Some(Value::String(text)) = content
        && !text.is_empty()
        && text.trim().is_empty()
        && !is_final_assistant
    {
        return Err(BedrockError::validation(WHITESPACE_ONLY_MESSAGE));
    }
    let blocks = content.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (block_idx, block) in blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
        if !CONTENT_BLOCK_TYPES.contains(&kind) {
            return Err(BedrockError::validation(format!(
                "messages.{message_idx}.content.{block_idx}.type: Input should be 'text', \
                 'image', 'document', 'tool_use', 'tool_result', 'thinking' or \
                 'redacted_thinking'"
            )));
        }
        if kind == "text" {
            match block.get("text") {
                Some(Value::String(text)) if text.is_empty() => {
                    return Err(BedrockError::validation(
                        "messages: text content blocks must be non-empty",
                    ));
                }
                Some(Value::String(text)) if text.trim().is_empty() && !is_final_assistant => {
                    return Err(BedrockError::validation(WHITESPACE_ONLY_MESSAGE));
                }
                Some(Value::String(_)) => {}
                _ => {
                    return Err(BedrockError::validation(format!(
                        "messages.{message_idx}.content.{block_idx}.text: Field required"
                    )));
                }
            }
        }
        let pointer = format!("messages.{message_idx}.content.{block_idx}");
        check_block(&pointer, kind, block)?;
    }
    Ok(())
}

/// The most base64 characters of one image (Anthropic's 5 MB) [U: Bedrock's own limit for
/// Claude may be lower].
const MAX_IMAGE_BASE64_BYTES: usize = 5 * 1024 * 1024;

/// The fields of an `image`, `document`, `tool_use` or `tool_result` block at `pointer`
/// (`messages.0.content.1`), with Anthropic's messages.
fn check_block(pointer: &str, kind: &str, block: &Value) -> Result<(), BedrockError> {
    let invalid = |detail: String| Err(BedrockError::validation(format!("{pointer}.{detail}")));
    match kind {
        "image" => check_image_source(pointer, block.get("source")),
        "document" => {
            let source = block.get("source");
            let source_type = source.and_then(|source| source.get("type")).and_then(Value::as_str);
            let media_type =
                source.and_then(|source| source.get("media_type")).and_then(Value::as_str);
            let data = source.and_then(|source| source.get("data"));
            match (source_type, media_type) {
                (None, _) if source.is_none() => invalid("document.source: Field required".into()),
                (Some("base64"), Some("application/pdf" | "text/plain")) => match data {
                    Some(Value::String(data)) if decode_base64(data).is_some() => Ok(()),
                    Some(Value::String(_)) => {
                        invalid("document.source.base64.data: Invalid base64 data".into())
                    }
                    _ => invalid("document.source.base64.data: Field required".into()),
                },
                (Some("base64"), _) => invalid(
                    "document.source.base64.media_type: Input should be 'application/pdf' or \
                     'text/plain'"
                        .into(),
                ),
                (Some("text"), Some("text/plain")) if data.is_some_and(Value::is_string) => Ok(()),
                (Some("text"), _) => invalid(
                    "document.source.text: media_type 'text/plain' and a string data are \
                     required"
                        .into(),
                ),
                (other, _) => invalid(format!(
                    "document.source: Input tag '{}' found using 'type' does not match any of \
                     the expected tags: 'base64', 'text'",
                    other.unwrap_or_default()
                )),
            }
        }
        "tool_use" => {
            for key in ["id", "name"] {
                match block.get(key) {
                    Some(Value::String(_)) => {}
                    Some(_) => {
                        return invalid(format!("tool_use.{key}: Input should be a valid string"));
                    }
                    None => return invalid(format!("tool_use.{key}: Field required")),
                }
            }
            match block.get("input") {
                Some(Value::Object(_)) => Ok(()),
                Some(_) => invalid("tool_use.input: Input should be a valid dictionary".into()),
                None => invalid("tool_use.input: Field required".into()),
            }
        }
        "tool_result" => {
            match block.get("tool_use_id") {
                Some(Value::String(_)) => {}
                Some(_) => {
                    return invalid(
                        "tool_result.tool_use_id: Input should be a valid string".into(),
                    );
                }
                None => return invalid("tool_result.tool_use_id: Field required".into()),
            }
            if let Some(is_error) = block.get("is_error").filter(|is_error| !is_error.is_boolean())
            {
                let _ = is_error;
                return invalid("tool_result.is_error: Input should be a valid boolean".into());
            }
            match block.get("content") {
                None | Some(Value::String(_)) => Ok(()),
                Some(Value::Array(parts)) => {
                    for (part_idx, part) in parts.iter().enumerate() {
                        let part_pointer = format!("{pointer}.tool_result.content.{part_idx}");
                        match part.get("type").and_then(Value::as_str) {
                            Some("text") if part.get("text").is_some_and(Value::is_string) => {}
                            Some("text") => {
                                return Err(BedrockError::validation(format!(
                                    "{part_pointer}.text: Field required"
                                )));
                            }
                            Some("image") => check_image_source(&part_pointer, part.get("source"))?,
                            _ => {
                                return Err(BedrockError::validation(format!(
                                    "{part_pointer}: Input tag '{}' found using 'type' does not \
                                     match any of the expected tags: 'text', 'image'",
                                    part.get("type").and_then(Value::as_str).unwrap_or_default()
                                )));
                            }
                        }
                    }
                    Ok(())
                }
                Some(_) => invalid(
                    "tool_result.content: Input should be a valid string or a valid list".into(),
                ),
            }
        }
        _ => Ok(()),
    }
}

/// The `source` of an image block at `pointer`: base64 of an allowed media type, that
/// decodes, at most [`MAX_IMAGE_BASE64_BYTES`] long.
fn check_image_source(pointer: &str, source: Option<&Value>) -> Result<(), BedrockError> {
    let invalid = |detail: &str| Err(BedrockError::validation(format!("{pointer}.image.{detail}")));
    let Some(source) = source else {
        return invalid("source: Field required");
    };
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {}
        other => {
            return invalid(&format!(
                "source: Input tag '{}' found using 'type' does not match any of the expected \
                 tags: 'base64'",
                other.unwrap_or_default()
            ));
        }
    }
    let media_type = source.get("media_type").and_then(Value::as_str).unwrap_or_default();
    if !IMAGE_MEDIA_TYPES.contains(&media_type) {
        return invalid(
            "source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' \
             or 'image/webp'",
        );
    }
    let Some(data) = source.get("data").and_then(Value::as_str) else {
        return invalid("source.base64.data: Field required");
    };
    if data.len() > MAX_IMAGE_BASE64_BYTES {
        return invalid(&format!(
            "source.base64: image exceeds 5 MB maximum: {} bytes > {MAX_IMAGE_BASE64_BYTES} bytes",
            data.len()
        ));
    }
    if decode_base64(data).is_none() {
        return invalid("source.base64.data: Invalid base64 data");
    }
    Ok(())
}

/// The custom tools of `tools`, checked with Anthropic's messages. Server tools (a `type`
/// such as `bash_20250124`) are accepted unchecked and are never called.
fn check_tools(tools: Option<&Value>) -> Result<Vec<ToolSpec>, BedrockError> {
    let Some(tools) = tools else {
        return Ok(Vec::new());
    };
    let Some(tools) = tools.as_array() else {
        return Err(BedrockError::validation("tools: Input should be a valid list"));
    };
    let mut specs = Vec::new();
    for (idx, tool) in tools.iter().enumerate() {
        let invalid = |detail: &str| Err(BedrockError::validation(format!("tools.{idx}{detail}")));
        let Some(object) = tool.as_object() else {
            return invalid(
                ": Input should be a valid dictionary or object to extract fields from",
            );
        };
        match object.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) if is_server_tool_type(kind) => continue,
            Some(kind) => {
                return invalid(&format!(
                    ": Input tag '{kind}' found using 'type' does not match any of the expected \
                     tags"
                ));
            }
        }
        for key in object.keys() {
            if !["type", "name", "description", "input_schema", "cache_control"]
                .contains(&key.as_str())
            {
                return invalid(&format!(".custom.{key}: Extra inputs are not permitted"));
            }
        }
        let name = match object.get("name") {
            Some(Value::String(name)) if is_valid_tool_name(name) => name,
            Some(Value::String(_)) => {
                return invalid(
                    ".custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
                );
            }
            Some(_) => return invalid(".custom.name: Input should be a valid string"),
            None => return invalid(".custom.name: Field required"),
        };
        if object.get("description").is_some_and(|description| !description.is_string()) {
            return invalid(".custom.description: Input should be a valid string");
        }
        let input_schema = match object.get("input_schema") {
            Some(schema @ Value::Object(fields)) => {
                if fields.get("type").and_then(Value::as_str) != Some("object") {
                    return invalid(".custom.input_schema.type: Input should be 'object'");
                }
                schema.clone()
            }
            Some(_) => return invalid(".custom.input_schema: Input should be a valid dictionary"),
            None => return invalid(".custom.input_schema: Field required"),
        };
        if specs.iter().any(|spec: &ToolSpec| spec.name == *name) {
            return Err(BedrockError::validation("tools: Tool names must be unique."));
        }
        specs.push(ToolSpec { name: name.clone(), input_schema });
    }
    Ok(specs)
}

/// Whether `kind` names one of Anthropic's server or client tools (`bash_20250124`,
/// `text_editor_20250728`, `web_search_20250305`, ...): a name, `_` and an eight-digit date.
fn is_server_tool_type(kind: &str) -> bool {
    kind.rsplit_once('_').is_some_and(|(name, date)| {
        !name.is_empty() && date.len() == 8 && date.bytes().all(|byte| byte.is_ascii_digit())
    })
}

/// `tool_choice`: `{"type": "auto" | "any" | "tool" | "none"}`, `tool` with the `name` of a
/// defined tool [U: the wording for an unknown name and for a choice without tools].
fn check_tool_choice(
    choice: Option<&Value>,
    tools: &[ToolSpec],
) -> Result<ToolChoice, BedrockError> {
    let Some(choice) = choice else {
        return Ok(ToolChoice::Auto);
    };
    let Some(object) = choice.as_object() else {
        return Err(BedrockError::validation(
            "tool_choice: Input should be a valid dictionary or object to extract fields from",
        ));
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or_default();
    let allowed: &[&str] = match kind {
        "tool" => &["type", "name", "disable_parallel_tool_use"],
        "none" => &["type"],
        _ => &["type", "disable_parallel_tool_use"],
    };
    if let Some(key) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(BedrockError::validation(format!(
            "tool_choice.{kind}.{key}: Extra inputs are not permitted"
        )));
    }
    if object.get("disable_parallel_tool_use").is_some_and(|value| !value.is_boolean()) {
        return Err(BedrockError::validation(format!(
            "tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean"
        )));
    }
    let choice = match kind {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => match object.get("name") {
            Some(Value::String(name)) => ToolChoice::Tool(name.clone()),
            Some(_) => {
                return Err(BedrockError::validation(
                    "tool_choice.tool.name: Input should be a valid string",
                ));
            }
            None => return Err(BedrockError::validation("tool_choice.tool.name: Field required")),
        },
        other => {
            return Err(BedrockError::validation(format!(
                "tool_choice: Input tag '{other}' found using 'type' does not match any of the \
                 expected tags: 'auto', 'any', 'tool', 'none'"
            )));
        }
    };
    match &choice {
        ToolChoice::Required | ToolChoice::Tool(_) if tools.is_empty() => Err(
            BedrockError::validation("tool_choice may only be specified while providing tools."),
        ),
        ToolChoice::Tool(name) if !tools.iter().any(|tool| tool.name == *name) => {
            Err(BedrockError::validation(format!("Tool '{name}' not found in `tools`.")))
        }
        _ => Ok(choice),
    }
}

/// Whether `thinking` enables extended thinking: `{"type": "enabled", "budget_tokens": n}`
/// with `1024 <= n < max_tokens`, or `{"type": "disabled"}`.
fn check_thinking(thinking: Option<&Value>, max_tokens: i64) -> Result<bool, BedrockError> {
    let Some(thinking) = thinking else {
        return Ok(false);
    };
    let Some(object) = thinking.as_object() else {
        return Err(BedrockError::validation(
            "thinking: Input should be a valid dictionary or object to extract fields from",
        ));
    };
    match object.get("type").and_then(Value::as_str).unwrap_or_default() {
        "disabled" => Ok(false),
        "enabled" => {
            let budget = match object.get("budget_tokens") {
                Some(budget) => as_integer(budget).ok_or_else(|| {
                    BedrockError::validation(
                        "thinking.enabled.budget_tokens: Input should be a valid integer",
                    )
                })?,
                None => {
                    return Err(BedrockError::validation(
                        "thinking.enabled.budget_tokens: Field required",
                    ));
                }
            };
            if budget < 1024 {
                return Err(BedrockError::validation(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                ));
            }
            if max_tokens <= budget {
                return Err(BedrockError::validation(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult \
                     our documentation at https://docs.claude.com/en/docs/build-with-claude/\
                     extended-thinking#max-tokens-and-context-window-size",
                ));
            }
            Ok(true)
        }
        other => Err(BedrockError::validation(format!(
            "thinking: Input tag '{other}' found using 'type' does not match any of the \
             expected tags: 'enabled', 'disabled'"
        ))),
    }
}

/// The block boundaries of the prompt in Anthropic's order (tools, system, messages), each with
/// the tokens and identity of the prefix up to it; checkpoints where a block has
/// `cache_control`. Empty when no block has one; a 400 for more than four.
fn cache_boundaries(body: &Value) -> Result<Vec<CacheBoundary>, BedrockError> {
    let marked = |block: &Value| block.get("cache_control").is_some_and(|marker| !marker.is_null());
    let tools = items(body.get("tools"));
    let system = body.get("system");
    let messages = items(body.get("messages"));
    let contents = messages.iter().filter_map(|message| message.get("content"));
    let n_checkpoints = [tools, items(system)]
        .into_iter()
        .chain(contents.map(|content| items(Some(content))))
        .flatten()
        .filter(|block| marked(block))
        .count();
    if n_checkpoints > MAX_CHECKPOINTS {
        return Err(BedrockError::validation(format!(
            "A maximum of {MAX_CHECKPOINTS} blocks with cache_control may be provided. Found \
             {n_checkpoints}."
        )));
    }
    if n_checkpoints == 0 {
        return Ok(Vec::new());
    }

    let mut prefix = Prefix::default();
    prefix.hasher.tag("tools");
    for tool in tools {
        prefix.block(tool, "", marked(tool));
    }
    prefix.hasher.tag("system");
    prefix.blocks(system);
    for message in messages {
        prefix.hasher.tag(message.get("role").and_then(Value::as_str).unwrap_or_default());
        prefix.blocks(message.get("content"));
    }
    Ok(prefix.boundaries)
}

/// The prompt read so far, for [`cache_boundaries`].
#[derive(Default)]
struct Prefix {
    hasher: PrefixHasher,
    n_tokens: u32,
    boundaries: Vec<CacheBoundary>,
}

impl Prefix {
    /// A string content (one block) or a list of blocks; each counts the tokens it adds to
    /// the input (its words and media tokens, as [`Prompt`] reads them).
    fn blocks(&mut self, content: Option<&Value>) {
        match content {
            Some(string @ Value::String(text)) => self.block(string, text, false),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    let mut prompt = Prompt::default();
                    prompt.block(block);
                    let marked = block.get("cache_control").is_some_and(|marker| !marker.is_null());
                    self.block_of_tokens(block, prompt.n_tokens(), marked);
                }
            }
            _ => {}
        }
    }

    fn block(&mut self, block: &Value, text: &str, checkpoint: bool) {
        self.block_of_tokens(block, n_words(text), checkpoint);
    }

    fn block_of_tokens(&mut self, block: &Value, n_tokens: u32, checkpoint: bool) {
        self.hasher.value(block);
        self.n_tokens = self.n_tokens.saturating_add(n_tokens);
        self.boundaries.push(CacheBoundary {
            n_prefix_tokens: self.n_tokens,
            prefix_hash: self.hasher.finish(),
            checkpoint,
        });
    }
}

/// The seed text and media tokens of a request, read block by block: the text blocks, the
/// contents of tool results, plain-text documents, and a word for each image and PDF
/// (`tools::Media`). The body has been checked.
#[derive(Default)]
struct Prompt {
    texts: Vec<String>,
    n_media_tokens: u32,
}

impl Prompt {
    /// A string content (or system prompt) or a list of blocks.
    fn content(&mut self, content: Option<&Value>) {
        match content {
            Some(Value::String(text)) => self.texts.push(text.clone()),
            Some(Value::Array(blocks)) => blocks.iter().for_each(|block| self.block(block)),
            _ => {}
        }
    }

    fn block(&mut self, block: &Value) {
        let source = block.get("source");
        let field = |key: &str| source.and_then(|source| source.get(key)).and_then(Value::as_str);
        match block.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    self.texts.push(text.to_owned());
                }
            }
            "tool_result" => self.content(block.get("content")),
            "image" => self.media("image", field("data")),
            "document" => match (field("type"), field("media_type")) {
                (Some("text"), _) => self.texts.extend(field("data").map(str::to_owned)),
                (_, Some("text/plain")) => {
                    let bytes = field("data").and_then(decode_base64).unwrap_or_default();
                    self.texts.push(String::from_utf8_lossy(&bytes).into_owned());
                }
                _ => self.media("document", field("data")),
            },
            _ => {}
        }
    }

    fn media(&mut self, kind: &str, data: Option<&str>) {
        let bytes = data.and_then(decode_base64).unwrap_or_default();
        let media = Media::new(kind, &bytes);
        self.texts.push(media.seed_word);
        self.n_media_tokens = self.n_media_tokens.saturating_add(media.n_input_tokens);
    }

    /// The input tokens of what was read: words and media tokens.
    fn n_tokens(&self) -> u32 {
        let n_words = self.texts.iter().map(|text| n_words(text)).fold(0, u32::saturating_add);
        n_words.saturating_add(self.n_media_tokens)
    }
}

/// `stop_reason` and `stop_sequence` of an answer: `tool_use` for a tool call.
fn stop_reason(completion: &Completion) -> (&'static str, Option<&str>) {
    if completion.tool_call.is_some() {
        return ("tool_use", None);
    }
    match &completion.stop {
        StopCause::EndOfText => ("end_turn", None),
        StopCause::MaxTokens => ("max_tokens", None),
        StopCause::StopSequence(sequence) => ("stop_sequence", Some(sequence.as_str())),
    }
}

/// `msg_bdrk_01` and 22 base-62 characters, derived from the answer so that the response and
/// the `message_start` event of the same answer agree.
fn message_id(completion: &Completion) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let seed = format!("{}\u{0}{}", completion.n_input_tokens, completion.text());
    let mut state = fnv1a_64(seed.as_bytes());
    let mut id = String::from("msg_bdrk_01");
    for _ in 0..22 {
        state = state.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(0x1405_7b7e_f767_814f);
        let digit = usize::try_from((state >> 33) % 62).unwrap_or_default();
        id.push(char::from(ALPHABET[digit]));
    }
    id
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;
    use crate::prompt_cache::CacheUsage;

    const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
    const SONNET_37: &str = "anthropic.claude-3-7-sonnet-20250219-v1:0";

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        let model = model(model_id).unwrap();
        model.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    fn body(messages: Value) -> Value {
        json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 50, "messages": messages})
    }

    /// A valid image block of the two bytes `hi`.
    fn image() -> Value {
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png",
            "data": "aGk="}})
    }

    fn weather_tool() -> Value {
        json!({"name": "get_weather", "description": "The weather of a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}})
    }

    fn chunks(model: &ClaudeModel, completion: &Completion) -> Vec<Value> {
        (0..model.n_stream_chunks(completion))
            .map(|idx| serde_json::from_slice(&model.stream_chunk(completion, idx, None)).unwrap())
            .collect()
    }

    #[test]
    fn a_request_with_tools_is_answered_with_a_call() {
        let model = model(HAIKU).unwrap();
        let mut request = body(json!([{"role": "user", "content": "weather in Paris?"}]));
        request["tools"] = json!([weather_tool(), {"name": "other", "input_schema":
            {"type": "object"}}]);
        let completion = generate(&parse(HAIKU, request.clone()).unwrap());
        let call = completion.tool_call.clone().unwrap();
        let city = call.input["city"].as_str().unwrap().to_owned();
        let id = call.id(TOOL_USE_ID_PREFIX, TOOL_USE_ID_CHARS);
        assert!(id.starts_with("toolu_bdrk_01") && id.len() == 35, "{id}");
        let response: Value = serde_json::from_slice(&model.response_body(&completion)).unwrap();
        let n_pieces = completion.tokens.len();
        assert_eq!(n_pieces, 3);
        assert_eq!(
            response,
            json!({"id": message_id(&completion), "type": "message", "role": "assistant",
                "model": "claude-3-haiku-20240307",
                "content": [{"type": "tool_use", "id": id, "name": "get_weather",
                    "input": {"city": city, "unit": "celsius"}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 3, "output_tokens": n_pieces}})
        );

        let events = chunks(model, &completion);
        assert_eq!(events.len(), n_pieces + 5);
        assert_eq!(
            events[1],
            json!({"type": "content_block_start", "index": 0, "content_block":
                {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}})
        );
        let partial: String = events[2..2 + n_pieces]
            .iter()
            .map(|event| {
                assert_eq!(event["type"], "content_block_delta");
                assert_eq!(event["delta"]["type"], "input_json_delta");
                event["delta"]["partial_json"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(partial, format!(r#"{{"city":"{city}","unit":"celsius"}}"#));
        assert_eq!(events[2]["delta"]["partial_json"], completion.tokens[0]);
        assert_eq!(events[n_pieces + 2], json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(
            events[n_pieces + 3],
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use",
                "stop_sequence": null}, "usage": {"output_tokens": n_pieces}})
        );
        assert_eq!(events[n_pieces + 4], json!({"type": "message_stop"}));
        assert_eq!(model.n_stream_tokens_sent(&completion, 3), 1);
        assert_eq!(model.n_stream_tokens_sent(&completion, n_pieces + 5), 3);

        // The named tool; "none"; and the result of the call answered with text.
        request["tool_choice"] = json!({"type": "tool", "name": "other"});
        let named = generate(&parse(HAIKU, request.clone()).unwrap()).tool_call.unwrap();
        assert_eq!((named.name.as_str(), named.input), ("other", json!({})));
        request["tool_choice"] = json!({"type": "none"});
        assert_eq!(generate(&parse(HAIKU, request.clone()).unwrap()).tool_call, None);
        request["tool_choice"] = json!({"type": "any"});
        request["messages"] = json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": id,
                "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
                "content": [{"type": "text", "text": "sunny and warm"}]}]}]);
        let request = parse(HAIKU, request).unwrap();
        assert_eq!(request.prompt, "weather in Paris?\nsunny and warm");
        assert!(request.tools.answers_tool_results);
        let answer = generate(&request);
        assert_eq!(answer.tool_call, None);
        let response: Value = serde_json::from_slice(&model.response_body(&answer)).unwrap();
        assert_eq!(response["content"], json!([{"type": "text", "text": answer.text()}]));
        assert_eq!(response["stop_reason"], "end_turn");
    }

    #[test]
    fn tool_checks() {
        let with = |tools: Value, choice: Option<Value>| {
            let mut request = body(json!([{"role": "user", "content": "hi"}]));
            request["tools"] = tools;
            if let Some(choice) = choice {
                request["tool_choice"] = choice;
            }
            parse(HAIKU, request).map(|_| ())
        };
        let schema = json!({"type": "object"});
        let cases = [
            (json!({}), None, "tools: Input should be a valid list"),
            (
                json!([{"name": "get weather", "input_schema": schema}]),
                None,
                "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
            ),
            (json!([{"input_schema": schema}]), None, "tools.0.custom.name: Field required"),
            (json!([{"name": "a"}]), None, "tools.0.custom.input_schema: Field required"),
            (
                json!([{"name": "a", "input_schema": {"type": "string"}}]),
                None,
                "tools.0.custom.input_schema.type: Input should be 'object'",
            ),
            (
                json!([{"name": "a", "input_schema": schema, "parameters": {}}]),
                None,
                "tools.0.custom.parameters: Extra inputs are not permitted",
            ),
            (
                json!([{"name": "a", "input_schema": schema}, {"name": "a", "input_schema": schema}]),
                None,
                "tools: Tool names must be unique.",
            ),
            (
                json!([{"name": "a", "input_schema": schema}]),
                Some(json!({"type": "function"})),
                "tool_choice: Input tag 'function' found using 'type' does not match any of the \
                 expected tags: 'auto', 'any', 'tool', 'none'",
            ),
            (
                json!([{"name": "a", "input_schema": schema}]),
                Some(json!({"type": "tool"})),
                "tool_choice.tool.name: Field required",
            ),
            (
                json!([{"name": "a", "input_schema": schema}]),
                Some(json!({"type": "tool", "name": "b"})),
                "Tool 'b' not found in `tools`.",
            ),
            (
                json!([]),
                Some(json!({"type": "any"})),
                "tool_choice may only be specified while providing tools.",
            ),
        ];
        for (tools, choice, expected) in cases {
            assert_eq!(with(tools.clone(), choice).unwrap_err(), expected, "{tools}");
        }
        // Server tools are accepted and never called.
        let server_tool = json!([{"type": "bash_20250124", "name": "bash"}]);
        assert_eq!(with(server_tool, Some(json!({"type": "auto"}))), Ok(()));
    }

    #[test]
    fn results_must_answer_the_calls_before_them() {
        let call = |id: &str| json!({"type": "tool_use", "id": id, "name": "a", "input": {}});
        let result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "ok"});
        let conversation = |assistant: Value, user: Value| {
            let messages = json!([{"role": "user", "content": "hi"},
                {"role": "assistant", "content": assistant}, {"role": "user", "content": user}]);
            parse(HAIKU, body(messages)).map(|_| ())
        };
        assert_eq!(conversation(json!([call("t1")]), json!([result("t1")])), Ok(()));
        assert_eq!(
            conversation(json!([call("t1"), call("t2")]), json!([result("t1")])).unwrap_err(),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately \
             after: t2. Each `tool_use` block must have a corresponding `tool_result` block in \
             the next message."
        );
        assert_eq!(
            conversation(json!([call("t1")]), json!([result("t1"), result("t9")])).unwrap_err(),
            "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: t9. \
             Each `tool_result` block must have a corresponding `tool_use` block in the previous \
             message."
        );
        let first = json!([{"role": "user", "content": [result("t1")]}]);
        assert!(
            parse(HAIKU, body(first)).unwrap_err().starts_with("messages.0.content.0: unexpected")
        );
        assert_eq!(
            conversation(
                json!([{"type": "tool_use", "id": "t1", "name": "a"}]),
                json!([result("t1")])
            )
            .unwrap_err(),
            "messages.1.content.0.tool_use.input: Field required"
        );
    }

    #[test]
    fn images_and_documents_are_checked() {
        let user = |block: Value| parse(HAIKU, body(json!([{"role": "user", "content": [block]}])));
        let image = |media_type: &str, data: &str| {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type,
                "data": data}})
        };
        let request = user(image("image/webp", &"QUJD".repeat(500))).unwrap();
        // 1,500 bytes: 2 tokens, and the image's word.
        assert_eq!(request.n_media_input_tokens, 2);
        assert_eq!(generate(&request).n_input_tokens, 3);
        assert_eq!(
            user(image("image/bmp", "aGk=")).unwrap_err(),
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', \
             'image/png', 'image/gif' or 'image/webp'"
        );
        assert_eq!(
            user(image("image/png", "not base64!")).unwrap_err(),
            "messages.0.content.0.image.source.base64.data: Invalid base64 data"
        );
        let huge = "A".repeat(MAX_IMAGE_BASE64_BYTES + 4);
        assert_eq!(
            user(image("image/png", &huge)).unwrap_err(),
            "messages.0.content.0.image.source.base64: image exceeds 5 MB maximum: 5242884 bytes \
             > 5242880 bytes"
        );
        assert_eq!(
            user(json!({"type": "image", "source": {"type": "url", "url": "https://x"}}))
                .unwrap_err(),
            "messages.0.content.0.image.source: Input tag 'url' found using 'type' does not match \
             any of the expected tags: 'base64'"
        );
        let pdf = json!({"type": "document", "source": {"type": "base64",
            "media_type": "application/pdf", "data": "JVBERi0="}});
        let request = user(pdf).unwrap();
        assert_eq!(request.n_media_input_tokens, 1);
        assert!(request.prompt.starts_with("document-"));
        let text = json!({"type": "document", "source": {"type": "base64",
            "media_type": "text/plain", "data": "b25lIHR3bw=="}});
        assert_eq!(user(text).unwrap().prompt, "one two");
        let docx = json!({"type": "document", "source": {"type": "base64",
            "media_type": "application/msword", "data": "aGk="}});
        assert_eq!(
            user(docx).unwrap_err(),
            "messages.0.content.0.document.source.base64.media_type: Input should be \
             'application/pdf' or 'text/plain'"
        );
    }

    #[test]
    fn thinking_opens_the_answer_and_the_stream() {
        let sonnet = model(SONNET_37).unwrap();
        let mut request = body(json!([{"role": "user", "content": "why?"}]));
        request["max_tokens"] = json!(2048);
        request["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        let completion = generate(&parse(SONNET_37, request.clone()).unwrap());
        let thinking = completion.thinking.clone().unwrap();
        let n_output = completion.n_output_tokens();
        let response: Value = serde_json::from_slice(&sonnet.response_body(&completion)).unwrap();
        assert_eq!(
            response["content"],
            json!([{"type": "thinking", "thinking": thinking.text(), "signature":
                thinking.signature}, {"type": "text", "text": completion.text()}])
        );
        assert_eq!(response["usage"]["output_tokens"], n_output);

        let events = chunks(sonnet, &completion);
        let n_thinking = thinking.tokens.len();
        let n_text = completion.tokens.len();
        assert_eq!(events.len(), n_thinking + n_text + 8);
        assert_eq!(
            events[1],
            json!({"type": "content_block_start", "index": 0, "content_block":
                {"type": "thinking", "thinking": ""}})
        );
        assert_eq!(
            events[2],
            json!({"type": "content_block_delta", "index": 0, "delta":
                {"type": "thinking_delta", "thinking": thinking.tokens[0]}})
        );
        assert_eq!(
            events[n_thinking + 2],
            json!({"type": "content_block_delta", "index": 0, "delta":
                {"type": "signature_delta", "signature": thinking.signature}})
        );
        assert_eq!(events[n_thinking + 3], json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(
            events[n_thinking + 4],
            json!({"type": "content_block_start", "index": 1, "content_block":
                {"type": "text", "text": ""}})
        );
        assert_eq!(
            events[n_thinking + 5],
            json!({"type": "content_block_delta", "index": 1, "delta":
                {"type": "text_delta", "text": completion.tokens[0]}})
        );
        assert_eq!(
            events[n_thinking + n_text + 5],
            json!({"type": "content_block_stop", "index": 1})
        );
        assert_eq!(events[n_thinking + n_text + 6]["usage"]["output_tokens"], n_output);
        let n_chunks = events.len();
        assert_eq!(sonnet.n_stream_tokens_sent(&completion, n_chunks), n_output);
        assert_eq!(
            sonnet.n_stream_tokens_sent(&completion, n_thinking + 5),
            u32::try_from(n_thinking).unwrap()
        );

        let refused = |thinking: Value, max_tokens: u32| {
            let mut request = request.clone();
            request["thinking"] = thinking;
            request["max_tokens"] = json!(max_tokens);
            parse(SONNET_37, request).unwrap_err()
        };
        assert_eq!(
            refused(json!({"type": "enabled", "budget_tokens": 1000}), 2048),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        );
        assert_eq!(
            refused(json!({"type": "enabled", "budget_tokens": 2048}), 2048),
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
             documentation at https://docs.claude.com/en/docs/build-with-claude/\
             extended-thinking#max-tokens-and-context-window-size"
        );
        assert_eq!(
            refused(json!({"type": "enabled"}), 2048),
            "thinking.enabled.budget_tokens: Field required"
        );
        request["tools"] = json!([weather_tool()]);
        request["tool_choice"] = json!({"type": "any"});
        assert_eq!(
            parse(SONNET_37, request.clone()).unwrap_err(),
            "Thinking may not be enabled when tool_choice forces tool use."
        );
        // Thinking, then the call at index 1.
        request["tool_choice"] = json!({"type": "auto"});
        let completion = generate(&parse(SONNET_37, request).unwrap());
        let response: Value = serde_json::from_slice(&sonnet.response_body(&completion)).unwrap();
        assert_eq!(response["content"][0]["type"], "thinking");
        assert_eq!(response["content"][1]["type"], "tool_use");
        assert_eq!(response["stop_reason"], "tool_use");
        let events = chunks(sonnet, &completion);
        let n_thinking = completion.thinking.as_ref().unwrap().tokens.len();
        assert_eq!(events[n_thinking + 4]["content_block"]["type"], "tool_use");
        assert_eq!(events[n_thinking + 5]["index"], 1);
        assert_eq!(events[n_thinking + 5]["delta"]["type"], "input_json_delta");
    }

    #[test]
    fn reads_system_and_message_texts() {
        let mut request = body(json!([
            {"role": "user", "content": [{"type": "text", "text": "Tell me"}, image()]},
            {"role": "assistant", "content": "Why?"},
            {"role": "user", "content": "Go on"}]));
        request["system"] = json!([{"type": "text", "text": "Be terse."}]);
        request["stop_sequences"] = json!(["STOP"]);
        let request = parse(HAIKU, request).unwrap();
        let image_word = format!("image-{:016x}", fnv1a_64(b"hi"));
        assert_eq!(request.prompt, format!("Be terse.\nTell me\n{image_word}\nWhy?\nGo on"));
        assert_eq!(request.n_media_input_tokens, 1);
        assert_eq!(request.tools, ToolPlan::default());
        assert!(!request.thinking);
        assert_eq!(request.max_tokens, 50);
        assert_eq!(request.stop_sequences, vec!["STOP".to_owned()]);
    }

    #[test]
    fn conversation_rules() {
        let cases = [
            (json!([]), "messages: at least one message is required"),
            (
                json!([{"role": "assistant", "content": "x"}]),
                "messages: first message must use the \"user\" role",
            ),
            (
                json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
                "messages: roles must alternate between \"user\" and \"assistant\", but found \
                 multiple \"user\" roles in a row",
            ),
            (
                json!([{"role": "system", "content": "a"}]),
                "messages.0.role: Input should be 'user' or 'assistant'",
            ),
            (
                json!([{"role": "user", "content": [{"type": "text", "text": ""}]}]),
                "messages: text content blocks must be non-empty",
            ),
            (
                json!([{"role": "user", "content": ""}]),
                "messages.0: all messages must have non-empty content except for the optional \
                 final assistant message",
            ),
        ];
        for (messages, expected) in cases {
            assert_eq!(parse(HAIKU, body(messages.clone())).unwrap_err(), expected, "{messages}");
        }
        let prefill =
            json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]);
        assert!(parse(HAIKU, body(prefill)).is_ok());
    }

    #[test]
    fn body_checks() {
        let mut wrong_version = body(json!([{"role": "user", "content": "hi"}]));
        wrong_version["anthropic_version"] = json!("2023-06-01");
        assert_eq!(parse(HAIKU, wrong_version).unwrap_err(), "Invalid API version: 2023-06-01");

        let mut too_long = body(json!([{"role": "user", "content": "hi"}]));
        too_long["max_tokens"] = json!(4097);
        assert_eq!(
            parse(HAIKU, too_long).unwrap_err(),
            "max_tokens: 4097 > 4096, which is the maximum allowed number of output tokens for \
             claude-3-haiku-20240307"
        );

        let mut both = body(json!([{"role": "user", "content": "hi"}]));
        both["temperature"] = json!(0.5);
        both["top_p"] = json!(0.9);
        assert!(parse(HAIKU, both.clone()).is_ok());
        assert!(parse("anthropic.claude-sonnet-4-5-20250929-v1:0", both).is_err());

        assert_eq!(
            parse(
                HAIKU,
                json!({"prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 5})
            )
            .unwrap_err(),
            "\"claude-3-haiku-20240307\" is not supported on this API. Please use the Messages \
             API instead."
        );
        assert_eq!(
            parse(HAIKU, json!({"anthropic_version": ANTHROPIC_VERSION, "messages": "hi"}))
                .unwrap_err(),
            "Malformed input request: #: required key [max_tokens] not found, please reformat \
             your input and try again."
        );
        assert_eq!(
            parse(HAIKU, body(json!({"role": "user"}))).unwrap_err(),
            "Malformed input request: #/messages: expected type: JSONArray, found: JSONObject, \
             please reformat your input and try again."
        );
        let mut stream_key = body(json!([{"role": "user", "content": "hi"}]));
        stream_key["stream"] = json!(true);
        assert!(parse(HAIKU, stream_key).unwrap_err().contains("extraneous key [stream]"));
    }

    #[test]
    fn answer_and_stream_shapes() {
        let model = model(HAIKU).unwrap();
        let mut request = body(json!([{"role": "user", "content": "hello there"}]));
        request["max_tokens"] = json!(2);
        let completion = generate(&parse(HAIKU, request).unwrap());
        let response: Value = serde_json::from_slice(&model.response_body(&completion)).unwrap();
        assert!(response["id"].as_str().unwrap().starts_with("msg_bdrk_01"));
        assert_eq!(response["id"].as_str().unwrap().len(), 33);
        assert_eq!(response["model"], "claude-3-haiku-20240307");
        assert_eq!(response["stop_reason"], "max_tokens");
        assert_eq!(response["usage"], json!({"input_tokens": 2, "output_tokens": 2}));

        assert_eq!(model.n_stream_chunks(&completion), 7);
        let chunk = |idx| -> Value {
            serde_json::from_slice(&model.stream_chunk(&completion, idx, None)).unwrap()
        };
        assert_eq!(chunk(0)["message"]["id"], response["id"]);
        assert_eq!(chunk(1)["type"], "content_block_start");
        assert_eq!(chunk(3)["delta"], json!({"type": "text_delta", "text": completion.tokens[1]}));
        assert_eq!(chunk(4), json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(
            chunk(5),
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens",
                "stop_sequence": null}, "usage": {"output_tokens": 2}})
        );
        assert_eq!(chunk(6), json!({"type": "message_stop"}));
    }

    #[test]
    fn cache_breakpoints_and_the_boundaries_before_them() {
        let sonnet = model(SONNET_37).unwrap();
        let marker = json!({"type": "ephemeral"});
        let mut request = body(json!([
            {"role": "user", "content": [
                {"type": "text", "text": "one two", "cache_control": marker}, image()]},
            {"role": "assistant", "content": "three"},
            {"role": "user", "content": [
                {"type": "text", "text": "four five six", "cache_control": marker}]}]));
        request["system"] = json!([{"type": "text", "text": "be terse", "cache_control": marker}]);
        request["tools"] = json!([{"name": "look_up", "input_schema": {"type": "object"}}]);
        let cache = sonnet.cache_request(SONNET_37, &request).unwrap();
        assert_eq!(cache.min_prefix_tokens, 1_024);
        let boundaries: Vec<(u32, bool)> =
            cache.boundaries.iter().map(|b| (b.n_prefix_tokens, b.checkpoint)).collect();
        // The tool, the system block, two blocks (the image: its word and its token), the
        // assistant's string, the last block.
        assert_eq!(
            boundaries,
            [(0, false), (2, true), (4, true), (6, false), (7, false), (10, true)]
        );
        // The last prefix is the whole input.
        assert_eq!(generate(&parse(SONNET_37, request.clone()).unwrap()).n_input_tokens, 10);
        // Another tool changes every prefix after it.
        let mut other_tool = request.clone();
        other_tool["tools"][0]["name"] = json!("search");
        let other = sonnet.cache_request(SONNET_37, &other_tool).unwrap();
        for (old, new) in cache.boundaries.iter().zip(&other.boundaries) {
            assert_ne!(old.prefix_hash, new.prefix_hash);
        }
        // Moving a breakpoint leaves the prefixes as they were.
        let mut moved = request.clone();
        moved["system"][0].as_object_mut().unwrap().remove("cache_control");
        let moved = sonnet.cache_request(SONNET_37, &moved).unwrap();
        assert_eq!(moved.boundaries[1].prefix_hash, cache.boundaries[1].prefix_hash);
        assert!(!moved.boundaries[1].checkpoint);

        request["messages"][1]["content"] = json!([
            {"type": "text", "text": "a", "cache_control": marker},
            {"type": "text", "text": "b", "cache_control": marker}]);
        assert_eq!(
            sonnet.cache_request(SONNET_37, &request).unwrap_err().message(),
            "A maximum of 4 blocks with cache_control may be provided. Found 5."
        );
        // Bedrock caches no prompt for Claude 3 Haiku.
        let haiku = model(HAIKU).unwrap();
        assert!(!haiku.reports_cache_tokens());
        assert_eq!(haiku.cache_request(HAIKU, &request).unwrap(), CacheRequest::default());
    }

    #[test]
    fn answers_of_a_model_with_a_cache_report_it() {
        let sonnet = model(SONNET_37).unwrap();
        let request = body(json!([{"role": "user", "content": "hello there"}]));
        let mut completion = generate(&parse(SONNET_37, request).unwrap());
        completion.n_input_tokens = 0;
        completion.cache = CacheUsage { read: 2, write: 1 };
        let n_output = completion.n_output_tokens();
        // In the recorded order: input, cache creation, cache read, output.
        let text = String::from_utf8(sonnet.response_body(&completion)).unwrap();
        let usage = format!(
            r#""usage":{{"input_tokens":0,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"output_tokens":{n_output}}}"#
        );
        assert!(text.contains(&usage), "{text}");
        let chunk = |idx, metrics| -> Value {
            serde_json::from_slice(&sonnet.stream_chunk(&completion, idx, metrics)).unwrap()
        };
        assert_eq!(
            chunk(0, None)["message"]["usage"],
            json!({"input_tokens": 0, "cache_creation_input_tokens": 1,
                "cache_read_input_tokens": 2, "output_tokens": 1})
        );
        let metrics = InvocationMetrics {
            input_token_count: 0,
            output_token_count: n_output,
            invocation_latency: 9,
            first_byte_latency: 4,
        };
        let last = sonnet.n_stream_chunks(&completion) - 1;
        assert_eq!(
            chunk(last, Some(metrics))["amazon-bedrock-invocationMetrics"],
            json!({"inputTokenCount": 0, "outputTokenCount": n_output, "invocationLatency": 9,
                "firstByteLatency": 4, "cacheReadInputTokenCount": 2,
                "cacheWriteInputTokenCount": 1})
        );
        // Claude 3 Haiku's answers have no cache counts.
        let haiku = model(HAIKU).unwrap();
        let response: Value = serde_json::from_slice(&haiku.response_body(&completion)).unwrap();
        assert_eq!(response["usage"], json!({"input_tokens": 0, "output_tokens": n_output}));
    }
}
