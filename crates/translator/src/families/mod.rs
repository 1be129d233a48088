//! The family traits, one per kind of model (text, embedding, image), and the
//! registry of every model family the gateway speaks.
//!
//! | id | kind | Bedrock base model ids |
//! |---|---|---|
//! | `titan_text` | text | `amazon.titan-text-*` |
//! | `anthropic_claude_text` | text | `anthropic.claude-v2*`, `anthropic.claude-instant-*` |
//! | `anthropic_claude_messages` | text | every other `anthropic.claude-*` (`claude-3*`, `claude-*-4*`) |
//! | `meta_llama2` | text | `meta.llama2-*` |
//! | `meta_llama3` | text | `meta.llama3-*` (3, 3.1, 3.2, 3.3) |
//! | `meta_llama4` | text | `meta.llama4-*` |
//! | `mistral_text` | text | `mistral.mistral-7b-instruct-*`, `mistral.mixtral-8x7b-instruct-*`, `mistral.mistral-{large,small}-2402-*` |
//! | `mistral_chat` | text | `mistral.mistral-large-2407-*`, `mistral.pixtral-large-2502-*` |
//! | `deepseek_r1` | text | `deepseek.r1-*` |
//! | `openai_gpt_oss` | text | `openai.gpt-oss-*` |
//! | `openai_chat` | text | `qwen.qwen3-*`, `deepseek.v3*`, `moonshot.kimi-*`, `moonshotai.kimi-*`, `minimax.minimax-*`, `google.gemma-3-*`, `nvidia.nemotron-*`, `mistral.ministral-3-*`, `mistral.magistral-*`, `mistral.mistral-large-3-*`, `mistral.devstral-*`, `mistral.voxtral-*` |
//! | `amazon_nova` | text | `amazon.nova-*` except `nova-canvas`, `nova-reel`, `nova-sonic` and the embeddings (Micro, Lite, Pro, Premier, Nova 2 Lite) |
//! | `cohere_command` | text | `cohere.command-text-*`, `cohere.command-light-text-*` |
//! | `cohere_command_r` | text | `cohere.command-r-v*`, `cohere.command-r-plus-v*` |
//! | `ai21_jurassic2` | text | `ai21.j2-*` (no streaming) |
//! | `ai21_jamba` | text | `ai21.jamba-*` |
//! | `writer_palmyra` | text | `writer.palmyra-x4-*`, `writer.palmyra-x5-*` (Palmyra X4, X5) |
//! | `titan_embed_g1` | embedding | `amazon.titan-embed-text-v1` |
//! | `titan_embed_v2` | embedding | `amazon.titan-embed-text-v2*` |
//! | `cohere_embed` | embedding | `cohere.embed-english-v3`, `cohere.embed-multilingual-v3` |
//! | `cohere_embed_v4` | embedding | `cohere.embed-v4*` |
//! | `titan_embed_image` | embedding | `amazon.titan-embed-image-v1` |
//! | `nova_embed` | embedding | `amazon.nova-2-multimodal-embeddings-*` |
//! | `titan_image` | image | `amazon.titan-image-generator-*`, `amazon.nova-canvas-*` |
//! | `stability_sdxl` | image | `stability.stable-diffusion-xl-v1` |
//! | `stability_image` | image | `stability.sd3-large-v1*`, `stability.sd3-5-large-v1*`, `stability.stable-image-{ultra,core}-v1*` |
//!
//! What each family honours is its `params()`; README.md has the full table. Each
//! family's file documents its ranges, defaults and templates.
//!
//! Adding a family is one new file here, one `mod` line and one entry in [`FAMILIES`],
//! and one fixture folder under `tests/fixtures/<id>/`.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedRequest, Embeddings};
use crate::error::TranslateError;
use crate::image::{ImageEditRequest, ImageRequest, Images};
use crate::unified::{Param, StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

/// Helpers that several families share; not a family.
mod chat_completions;
mod common;

mod ai21_jamba;
mod ai21_jurassic2;
mod amazon_nova;
mod anthropic_claude_messages;
mod anthropic_claude_text;
mod cohere_command;
mod cohere_command_r;
mod cohere_embed;
mod cohere_embed_v4;
mod deepseek_r1;
mod embed_common;
mod meta_llama2;
mod meta_llama3;
mod meta_llama4;
mod mistral_chat;
mod mistral_text;
mod nova_embed;
mod openai_chat;
mod openai_gpt_oss;
mod stability_image;
mod stability_sdxl;
mod titan_embed_g1;
mod titan_embed_image;
mod titan_embed_v2;
mod titan_image;
mod titan_text;
mod writer_palmyra;

/// A text-generation family: how to build its InvokeModel body and read its answers.
///
/// Implementations are unit structs, pure and synchronous. Callers go through
/// [`crate::encode_text_request`], [`crate::decode_text_response`] and
/// [`crate::TextStreamDecoder`], which check `params()`, validate, merge `extra` and
/// emulate stop sequences before and after the family's own methods.
pub trait TextFamily: Send + Sync {
    /// The snake_case id: the file name, the `family` value in config and the metric label.
    fn id(&self) -> &'static str;
    /// Whether a *base* model id (no ARN, no geography prefix; see [`base_model_id`])
    /// is of this family.
    fn matches(&self, base_model_id: &str) -> bool;
    /// The optional unified parameters the family honours; a request setting any other
    /// is refused with [`TranslateError::Unsupported`].
    fn params(&self) -> &'static [Param];
    /// Whether `stop` goes to the model or the gateway cuts the text itself.
    fn stop_mode(&self) -> StopMode {
        StopMode::Native
    }
    /// The request's stop sequences that the gateway cuts at itself, the model not being
    /// sent them: by default every one where `stop_mode()` is `Emulated` and none where it
    /// is `Native`. A family whose model takes only some stop strings decides per request
    /// (Titan sends natively at most one of the few it accepts and emulates the rest); its
    /// `encode_request` must then send exactly the others.
    fn emulated_stops(&self, stop: &[String]) -> Vec<String> {
        match self.stop_mode() {
            StopMode::Native => Vec::new(),
            StopMode::Emulated => stop.to_vec(),
        }
    }
    /// The body keys unified fields map to, as dot paths (`textGenerationConfig.topP`);
    /// `extra` may not set them.
    fn mapped_paths(&self) -> &'static [&'static str];
    /// The InvokeModel body for a request already validated.
    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError>;
    /// The answer in an InvokeModel response body.
    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError>;
    /// What one stream chunk (the base64-decoded `bytes` of a `chunk` frame) contributes.
    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError>;
    /// A new filter for the text of one stream's events, for a family whose streamed text
    /// carries markup that can span chunks (gpt-oss's `<reasoning>` spans); `None`, the
    /// default, when each event's text is the answer text as it is.
    fn stream_text_filter(&self) -> Option<Box<dyn StreamTextFilter>> {
        None
    }
}

/// The state of one stream's text for a family whose events' text is not yet answer text
/// (see [`TextFamily::stream_text_filter`]): it sees every event's text in order.
pub trait StreamTextFilter: Send {
    /// The answer text to forward now, from `text` and what was held back before.
    fn push(&mut self, text: &str) -> String;
    /// At the end of the stream: the answer text still held back.
    fn finish(&mut self) -> String;
    /// The reasoning the filter kept out of the text since it was last asked (the markup's
    /// contents, for the request that asked for reasoning); none by default.
    fn take_reasoning(&mut self) -> String {
        String::new()
    }
}

/// How a family honours stop sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// The body carries them and the model stops there.
    Native,
    /// The model has no such parameter: the gateway cuts the text at the first stop
    /// sequence and reports `stop_sequence` (Llama). A `Native` family may still emulate
    /// some of a request's stops, see [`TextFamily::emulated_stops`].
    Emulated,
}

/// An embedding family. Callers go through [`crate::encode_embed_requests`].
pub trait EmbeddingFamily: Send + Sync {
    fn id(&self) -> &'static str;
    fn matches(&self, base_model_id: &str) -> bool;
    fn params(&self) -> &'static [Param];
    fn mapped_paths(&self) -> &'static [&'static str];
    /// Texts one InvokeModel call takes (1 for Titan; Cohere batches up to 96).
    fn max_batch(&self) -> usize;
    /// The body embedding `texts` (at most `max_batch`), with the request's parameters.
    fn encode_request(
        &self,
        texts: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError>;
    /// The body embedding `images` (at most `max_batch`, each already checked by
    /// [`EmbedRequest::validate`]), with the request's parameters. Called only for a family
    /// whose `params()` hold [`Param::Images`]; the default refuses.
    fn encode_image_request(
        &self,
        images: &[String],
        req: &EmbedRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        let _ = (images, req);
        Err(TranslateError::Unsupported { family: self.id(), feature: "`images`".to_owned() })
    }
    /// The vectors of one response, in input order.
    fn decode_response(&self, body: &[u8]) -> Result<Embeddings, TranslateError>;
}

/// An image-generation family. Callers go through [`crate::encode_image_request`].
pub trait ImageFamily: Send + Sync {
    fn id(&self) -> &'static str;
    fn matches(&self, base_model_id: &str) -> bool;
    fn params(&self) -> &'static [Param];
    fn mapped_paths(&self) -> &'static [&'static str];
    fn encode_request(&self, req: &ImageRequest) -> Result<serde_json::Value, TranslateError>;
    /// The InvokeModel body of an image edit (variation, inpainting, outpainting,
    /// background removal) already validated for its task; callers go through
    /// [`crate::encode_image_edit_request`], which merges `extra` (against
    /// `mapped_paths()`, so a family with edits lists their keys there too). The answer
    /// decodes with `decode_response`. By default a family has no edits: every task is
    /// refused with [`TranslateError::Unsupported`] naming the family.
    fn encode_edit_request(
        &self,
        req: &ImageEditRequest,
    ) -> Result<serde_json::Value, TranslateError> {
        Err(TranslateError::Unsupported {
            family: self.id(),
            feature: format!("the `{}` image task", req.task.as_str()),
        })
    }
    /// The images of a JSON response body, base64-encoded.
    fn decode_response(&self, body: &[u8]) -> Result<Images, TranslateError>;
}

/// What kind of model a family serves, and so which route takes its aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Text,
    Embedding,
    Image,
}

/// One registered family, of any kind.
#[derive(Clone, Copy)]
pub enum FamilyRef {
    Text(&'static dyn TextFamily),
    Embedding(&'static dyn EmbeddingFamily),
    Image(&'static dyn ImageFamily),
}

/// Every family, in the order they are tried by [`family_for`].
pub static FAMILIES: &[FamilyRef] = &[
    FamilyRef::Text(&titan_text::TitanText),
    FamilyRef::Text(&anthropic_claude_text::AnthropicClaudeText),
    FamilyRef::Text(&anthropic_claude_messages::AnthropicClaudeMessages),
    FamilyRef::Text(&meta_llama2::MetaLlama2),
    FamilyRef::Text(&meta_llama3::MetaLlama3),
    FamilyRef::Text(&meta_llama4::MetaLlama4),
    FamilyRef::Text(&mistral_text::MistralText),
    FamilyRef::Text(&mistral_chat::MistralChat),
    FamilyRef::Text(&deepseek_r1::DeepseekR1),
    FamilyRef::Text(&openai_gpt_oss::OpenaiGptOss),
    FamilyRef::Text(&openai_chat::OpenaiChat),
    FamilyRef::Text(&amazon_nova::AmazonNova),
    FamilyRef::Text(&cohere_command::CohereCommand),
    FamilyRef::Text(&cohere_command_r::CohereCommandR),
    FamilyRef::Text(&ai21_jurassic2::Ai21Jurassic2),
    FamilyRef::Text(&ai21_jamba::Ai21Jamba),
    FamilyRef::Text(&writer_palmyra::WriterPalmyra),
    FamilyRef::Embedding(&titan_embed_g1::TitanEmbedG1),
    FamilyRef::Embedding(&titan_embed_v2::TitanEmbedV2),
    FamilyRef::Embedding(&cohere_embed::CohereEmbed),
    FamilyRef::Embedding(&cohere_embed_v4::CohereEmbedV4),
    FamilyRef::Embedding(&titan_embed_image::TitanEmbedImage),
    FamilyRef::Embedding(&nova_embed::NovaEmbed),
    FamilyRef::Image(&titan_image::TitanImage),
    FamilyRef::Image(&stability_sdxl::StabilitySdxl),
    FamilyRef::Image(&stability_image::StabilityImage),
];

impl FamilyRef {
    pub fn id(self) -> &'static str {
        match self {
            FamilyRef::Text(family) => family.id(),
            FamilyRef::Embedding(family) => family.id(),
            FamilyRef::Image(family) => family.id(),
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            FamilyRef::Text(_) => Kind::Text,
            FamilyRef::Embedding(_) => Kind::Embedding,
            FamilyRef::Image(_) => Kind::Image,
        }
    }

    pub fn matches(self, base_model_id: &str) -> bool {
        match self {
            FamilyRef::Text(family) => family.matches(base_model_id),
            FamilyRef::Embedding(family) => family.matches(base_model_id),
            FamilyRef::Image(family) => family.matches(base_model_id),
        }
    }

    /// The optional unified parameters the family honours.
    pub fn params(self) -> &'static [Param] {
        match self {
            FamilyRef::Text(family) => family.params(),
            FamilyRef::Embedding(family) => family.params(),
            FamilyRef::Image(family) => family.params(),
        }
    }
}

impl std::fmt::Debug for FamilyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}({})", self.kind(), self.id())
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Embedding => "embedding",
            Kind::Image => "image",
        }
    }
}

/// The family of a Bedrock model id: a plain id, a cross-region inference profile id
/// (`us.anthropic.claude-v2:1`) or an ARN that embeds one. `None` when no family
/// claims it (provisioned or imported model ARNs need the family named in config).
pub fn family_for(model_id: &str) -> Option<FamilyRef> {
    let base = base_model_id(model_id)?;
    FAMILIES.iter().copied().find(|family| family.matches(base))
}

/// The family with this id, for a `family = "..."` override in config.
pub fn family_by_id(id: &str) -> Option<FamilyRef> {
    FAMILIES.iter().copied().find(|family| family.id() == id)
}

/// Strips an ARN down to the model id it embeds and drops a geography prefix:
/// `arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-v2:1`
/// becomes `anthropic.claude-v2:1`. `None` for an ARN that embeds no model id.
pub fn base_model_id(model_id: &str) -> Option<&str> {
    let id = if model_id.starts_with("arn:") {
        let (resource, rest) = model_id.split_once('/')?;
        match resource.rsplit(':').next()? {
            // custom-model/<base id>/<suffix>: the base id is the first segment.
            "foundation-model" | "inference-profile" | "custom-model" => rest.split('/').next()?,
            _ => return None,
        }
    } else {
        model_id
    };
    let mut parts = id.splitn(3, '.');
    let first = parts.next()?;
    match (parts.next(), parts.next()) {
        // `us.anthropic.claude-v2:1`: three dot-separated parts where the first is a geography.
        (Some(_), Some(_)) if GEOGRAPHY_PREFIXES.contains(&first) => Some(&id[first.len() + 1..]),
        _ => Some(id),
    }
}

/// The geography prefixes of cross-region inference profile ids.
const GEOGRAPHY_PREFIXES: &[&str] = &["us", "eu", "apac", "us-gov", "ca", "jp", "au", "global"];

/// The `amazon-bedrock-invocationMetrics` object Bedrock adds to the last chunk of a stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvocationMetrics {
    #[serde(default, deserialize_with = "de_count")]
    input_token_count: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    output_token_count: Option<u32>,
}

/// The key of the invocation metrics Bedrock adds to a stream's last chunk.
const INVOCATION_METRICS_KEY: &str = "amazon-bedrock-invocationMetrics";

/// Usage from the `amazon-bedrock-invocationMetrics` key of a stream chunk, if present
/// (default when absent or malformed). Every family's decoder gets it from
/// [`parse_stream_chunk`] and lets the family's own counts win.
///
/// Only a chunk that holds the key's bytes is read a second time, for that key alone
/// (the other keys skipped, not built): Bedrock adds it to the last chunk of a stream.
fn invocation_metrics_usage(chunk: &[u8]) -> Usage {
    #[derive(Deserialize)]
    struct MetricsOnly {
        #[serde(rename = "amazon-bedrock-invocationMetrics")]
        metrics: Option<serde_json::Value>,
    }
    if !holds_key(chunk, INVOCATION_METRICS_KEY) {
        return Usage::default();
    }
    serde_json::from_slice::<MetricsOnly>(chunk)
        .ok()
        .and_then(|only| only.metrics)
        .and_then(|m| InvocationMetrics::deserialize(m).ok())
        .map(|m| Usage { input_tokens: m.input_token_count, output_tokens: m.output_token_count })
        .unwrap_or_default()
}

/// Whether the bytes of `key` are somewhere in `chunk`: a chunk without them has no such
/// key (Bedrock writes its keys unescaped), and need not be read for it.
fn holds_key(chunk: &[u8], key: &str) -> bool {
    let key = key.as_bytes();
    // The first byte alone rules out almost every window, without a comparison call.
    chunk.windows(key.len()).any(|window| window[0] == key[0] && window == key)
}

/// Deserializes a token count that may arrive as `null`, an integer, or an
/// integer-valued float (`28.0`, seen with guardrails on).
pub(crate) fn de_count<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<f64>::deserialize(deserializer)?;
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) =>
        {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "range checked above"
            )]
            Ok(Some(v as u32))
        }
        Some(v) => Err(serde::de::Error::custom(format!("expected a token count, got {v}"))),
    }
}

/// Checks that an optional sampling parameter lies in the family's `range`; the error
/// names the field, the range and the family. NaN is never in range.
pub(crate) fn check_range(
    family: &'static str,
    field: &str,
    value: Option<f64>,
    range: RangeInclusive<f64>,
) -> Result<(), TranslateError> {
    match value {
        Some(v) if !range.contains(&v) => Err(TranslateError::InvalidRequest(format!(
            "`{field}` must be between {} and {} for the {family} model family, got {v}",
            range.start(),
            range.end()
        ))),
        _ => Ok(()),
    }
}

/// Serializes a family's request wire struct into the InvokeModel body.
pub(crate) fn to_body<T: Serialize>(
    family: &'static str,
    body: &T,
) -> Result<serde_json::Value, TranslateError> {
    // Wire structs hold only strings and numbers, so this cannot fail in practice.
    serde_json::to_value(body).map_err(|e| {
        TranslateError::InvalidRequest(format!("cannot encode the {family} request body: {e}"))
    })
}

/// Parses a body as JSON of type `T`, naming the family in the error.
pub(crate) fn parse_body<'a, T: Deserialize<'a>>(
    family: &'static str,
    body: &'a [u8],
) -> Result<T, TranslateError> {
    serde_json::from_slice(body)
        .map_err(|e| TranslateError::MalformedResponse { family, detail: e.to_string() })
}

/// Parses a stream chunk as JSON of type `T`, with the usage of its
/// `amazon-bedrock-invocationMetrics` key (default when absent), naming the family in
/// the error.
pub(crate) fn parse_stream_chunk<T: serde::de::DeserializeOwned>(
    family: &'static str,
    chunk: &[u8],
) -> Result<(T, Usage), TranslateError> {
    // Straight into `T`: no tree of the chunk is built (most of a chunk's cost when it was).
    let parsed = parse_body(family, chunk)?;
    Ok((parsed, invocation_metrics_usage(chunk)))
}
