//! The `Family` trait and the registry of every simulated model family.
//!
//! | id | base model ids | request body | stop reasons |
//! |---|---|---|---|
//! | `titan_text` | `amazon.titan-text-express-v1`, `amazon.titan-text-lite-v1`, `amazon.titan-text-premier-v1:0` | `inputText`, `textGenerationConfig` | `FINISH`, `LENGTH`, `STOP_CRITERIA_MET` |
//! | `anthropic_claude_text` | `anthropic.claude-v2`, `anthropic.claude-v2:1`, `anthropic.claude-instant-v1` | `prompt`, `max_tokens_to_sample`, ... | `stop_sequence`, `max_tokens` |
//! | `amazon_nova` | `amazon.nova-micro-v1:0`, `amazon.nova-lite-v1:0`, `amazon.nova-pro-v1:0`; profile only: `amazon.nova-premier-v1:0`, `amazon.nova-2-lite-v1:0` | `messages`, `system`, `inferenceConfig`, ... | `end_turn`, `max_tokens`, `stop_sequence` |
//! | `cohere_command` | `cohere.command-text-v14`, `cohere.command-light-text-v14` | `prompt`, `max_tokens`, `stream`, ... | `COMPLETE`, `MAX_TOKENS` |
//! | `cohere_command_r` | `cohere.command-r-v1:0`, `cohere.command-r-plus-v1:0` | `message`, `chat_history`, `preamble`, ... | `COMPLETE`, `MAX_TOKENS` |
//! | `ai21_jurassic2` | no streaming: `ai21.j2-mid-v1`, `ai21.j2-ultra-v1` | `prompt`, `maxTokens`, ... | `endoftext`, `length`, `stop` |
//! | `ai21_jamba` | `ai21.jamba-instruct-v1:0`, `ai21.jamba-1-5-mini-v1:0`, `ai21.jamba-1-5-large-v1:0` | `messages`, `max_tokens`, ... | `stop`, `length` |
//! | `anthropic_claude_messages` | `anthropic.claude-3-haiku-20240307-v1:0`, `anthropic.claude-3-sonnet-20240229-v1:0`, `anthropic.claude-3-opus-20240229-v1:0`, `anthropic.claude-3-5-sonnet-20240620-v1:0`; profile only: `anthropic.claude-3-5-sonnet-20241022-v2:0`, `anthropic.claude-3-5-haiku-20241022-v1:0`, `anthropic.claude-3-7-sonnet-20250219-v1:0`, `anthropic.claude-sonnet-4-20250514-v1:0`, `anthropic.claude-opus-4-20250514-v1:0`, `anthropic.claude-opus-4-1-20250805-v1:0`, `anthropic.claude-sonnet-4-5-20250929-v1:0`, `anthropic.claude-haiku-4-5-20251001-v1:0`, `anthropic.claude-opus-4-5-20251101-v1:0`, `anthropic.claude-opus-4-6-v1`, `anthropic.claude-sonnet-4-6` | `anthropic_version`, `max_tokens`, `messages`, `system`, ... | `end_turn`, `max_tokens`, `stop_sequence` |
//! | `meta_llama2` | `meta.llama2-13b-chat-v1`, `meta.llama2-70b-chat-v1` | `prompt`, `max_gen_len`, `temperature`, `top_p` | `stop`, `length` |
//! | `meta_llama3` | `meta.llama3-8b-instruct-v1:0`, `meta.llama3-70b-instruct-v1:0`, `meta.llama3-1-8b-instruct-v1:0`, `meta.llama3-1-70b-instruct-v1:0`, `meta.llama3-1-405b-instruct-v1:0`, `meta.llama3-2-1b-instruct-v1:0`, `meta.llama3-2-3b-instruct-v1:0`, `meta.llama3-2-11b-instruct-v1:0`, `meta.llama3-2-90b-instruct-v1:0`; profile only: `meta.llama3-3-70b-instruct-v1:0` | `prompt`, `max_gen_len`, ..., `images` (3.2 and later) | `stop`, `length` |
//! | `meta_llama4` | profile only: `meta.llama4-scout-17b-instruct-v1:0`, `meta.llama4-maverick-17b-instruct-v1:0` | `prompt`, `max_gen_len`, `images`, ... | `stop`, `length` |
//! | `mistral_text` | `mistral.mistral-7b-instruct-v0:2`, `mistral.mixtral-8x7b-instruct-v0:1`, `mistral.mistral-large-2402-v1:0`, `mistral.mistral-small-2402-v1:0` | `prompt`, `max_tokens`, `stop`, ... | `stop`, `length` |
//! | `mistral_chat` | `mistral.mistral-large-2407-v1:0`; profile only: `mistral.pixtral-large-2502-v1:0` | `messages`, `max_tokens`, `tools`, ... | `stop`, `length` |
//! | `deepseek_r1` | profile only: `deepseek.r1-v1:0` | `prompt`, `max_tokens`, `stop`, ... | `stop`, `length` |
//! | `openai_gpt_oss` | `openai.gpt-oss-120b-1:0`, `openai.gpt-oss-20b-1:0` | `messages`, `max_completion_tokens`, `stop`, ... (OpenAI chat completion) | `stop`, `length` |
//! | `openai_chat` | `qwen.qwen3-32b-v1:0`, `qwen.qwen3-235b-a22b-2507-v1:0`, `qwen.qwen3-coder-30b-a3b-v1:0`, `qwen.qwen3-coder-480b-a35b-v1:0`, `qwen.qwen3-next-80b-a3b`, `qwen.qwen3-vl-235b-a22b`, `qwen.qwen3-coder-next`, `deepseek.v3-v1:0`, `deepseek.v3.2`, `moonshot.kimi-k2-thinking`, `moonshotai.kimi-k2.5`, `minimax.minimax-m2`, `minimax.minimax-m2.1`, `google.gemma-3-4b-it`, `google.gemma-3-12b-it`, `google.gemma-3-27b-it`, `nvidia.nemotron-nano-9b-v2`, `nvidia.nemotron-nano-12b-v2`, `nvidia.nemotron-nano-3-30b`, `nvidia.nemotron-super-3-120b`, `mistral.ministral-3-{3b,8b,14b}-instruct`, `mistral.magistral-small-2509`, `mistral.mistral-large-3-675b-instruct`, `mistral.devstral-2-123b`, `mistral.voxtral-mini-3b-2507`, `mistral.voxtral-small-24b-2507` | `messages`, `max_tokens`, `stop`, ... (OpenAI chat completion) | `stop`, `length` |
//! | `writer_palmyra` | profile only: `writer.palmyra-x4-v1:0`, `writer.palmyra-x5-v1:0` | `messages` (string or `{"text"}` content), `max_tokens`, `min_tokens`, `stop`, ... | `stop`, `length` (and `stop_reason`, the matched stop sequence) |
//!
//! Adding a family is one new file here plus its `mod` line and its entry in [`FAMILIES`].
//! Helpers that several families use live in `common.rs`; the OpenAI Chat Completions
//! wire shape that several families share lives in `chat_completions.rs`.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::generate::{Completion, GenerationRequest};
use crate::prompt_cache::CacheRequest;

mod chat_completions;
mod common;

mod ai21_jamba;
mod ai21_jurassic2;
mod amazon_nova;
mod anthropic_claude_messages;
mod anthropic_claude_text;
mod cohere_command;
mod cohere_command_r;
mod deepseek_r1;
mod meta_llama2;
mod meta_llama3;
mod meta_llama4;
mod mistral_chat;
mod mistral_text;
mod openai_chat;
mod openai_gpt_oss;
mod titan_text;
mod writer_palmyra;

/// One simulated model family: how its request bodies are checked and its answers shaped.
///
/// Implementations are unit structs (or per-model statics handed out by
/// [`Family::model_family`]), pure and synchronous.
pub(crate) trait Family: Send + Sync {
    /// The snake_case id, also the file name.
    fn id(&self) -> &'static str;
    /// Whether this family simulates `base_model_id` (no ARN, no geography prefix).
    fn matches(&self, base_model_id: &str) -> bool;
    /// Whether the model has a prompt cache, and so its answers report prompt-cache token
    /// counts (0 when nothing was cached): the
    /// `X-Amzn-Bedrock-Cache-{Read,Write}-Input-Token-Count` headers of InvokeModel, and the
    /// same counts in a stream's invocation metrics (wire document §1.5: seen for Claude 3.5
    /// Haiku and Nova), besides the family's own body fields.
    fn reports_cache_tokens(&self) -> bool {
        false
    }
    /// For a model that [`Family::reports_cache_tokens`]: the request's prompt-cache
    /// checkpoints and the block boundaries before them, with the model's least cacheable
    /// prefix (`prompt_cache.rs`). Called after [`Family::parse_request`] accepted `body`.
    fn cache_request(
        &self,
        _base_model_id: &str,
        _body: &Value,
    ) -> Result<CacheRequest, BedrockError> {
        Ok(CacheRequest::default())
    }
    /// Whether InvokeModelWithResponseStream is served; for a family that does not stream it
    /// is a 400 `The model is unsupported for streaming.` (`invoke.rs`).
    fn streams(&self) -> bool {
        true
    }
    /// Whether Bedrock serves `base_model_id` only through an inference profile; called with
    /// the plain id (or a `foundation-model/` ARN) it is a 400 `Invocation of model ID ... with
    /// on-demand throughput isn’t supported. ...` (`invoke.rs`).
    fn needs_inference_profile(&self, _base_model_id: &str) -> bool {
        false
    }
    /// The value that answers calls to `base_model_id`, for families whose answers name the
    /// model; `None` means this value answers them itself.
    fn model_family(&self, _base_model_id: &str) -> Option<&'static dyn Family> {
        None
    }
    /// Validates a request body the way Bedrock does and reads what to generate.
    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError>;
    /// The InvokeModel response body.
    fn response_body(&self, completion: &Completion) -> Vec<u8>;
    /// How many chunks the stream of `completion` has.
    fn n_stream_chunks(&self, completion: &Completion) -> usize;
    /// How many output tokens the first `n_chunks_sent` chunks of the stream carry, for the
    /// quota settlement of a stream cut short. The default is one token per chunk from the
    /// first chunk on.
    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        tokens_after_leading_chunks(completion, n_chunks_sent, 0)
    }
    /// The model-native JSON of stream chunk `chunk_idx`; `metrics` is given for the last one.
    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8>;
}

/// Every family, in the order [`family_for`] tries them.
pub(crate) static FAMILIES: &[&dyn Family] = &[
    &titan_text::TitanText,
    &anthropic_claude_text::AnthropicClaudeText,
    &amazon_nova::AmazonNova,
    &cohere_command::CohereCommand,
    &cohere_command_r::CohereCommandR,
    &ai21_jurassic2::Ai21Jurassic2,
    &ai21_jamba::Ai21Jamba,
    &anthropic_claude_messages::AnthropicClaudeMessages,
    &meta_llama2::MetaLlama2,
    &meta_llama3::MetaLlama3,
    &meta_llama4::MetaLlama4,
    &mistral_text::MistralText,
    &mistral_chat::MistralChat,
    &deepseek_r1::DeepseekR1,
    &openai_gpt_oss::OpenaiGptOss,
    &openai_chat::OpenaiChat,
    &writer_palmyra::WriterPalmyra,
];

/// The family that simulates `base_model_id`, if any.
pub(crate) fn family_for(base_model_id: &str) -> Option<&'static dyn Family> {
    FAMILIES.iter().copied().find(|family| family.matches(base_model_id))
}

/// The output tokens of the first `n_chunks_sent` chunks of a stream that opens with
/// `n_leading_chunks` chunks without text and then carries one token per chunk.
pub(crate) fn tokens_after_leading_chunks(
    completion: &Completion,
    n_chunks_sent: usize,
    n_leading_chunks: usize,
) -> u32 {
    let n_tokens = n_chunks_sent.saturating_sub(n_leading_chunks).min(completion.tokens.len());
    u32::try_from(n_tokens).unwrap_or(u32::MAX)
}

/// The `amazon-bedrock-invocationMetrics` object of the last stream chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvocationMetrics {
    pub(crate) input_token_count: u32,
    pub(crate) output_token_count: u32,
    /// Milliseconds from the request to the last chunk.
    pub(crate) invocation_latency: u64,
    /// Milliseconds from the request to the first chunk.
    pub(crate) first_byte_latency: u64,
}

/// Compact JSON of a wire struct. Serializing the plain structs of this module cannot fail;
/// if it ever did, the error is logged and the body is empty.
pub(crate) fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|error| {
        tracing::error!(message = "serializing a model answer failed", %error);
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_no_model_is_claimed_twice() {
        let mut ids: Vec<_> = FAMILIES.iter().map(|family| family.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), FAMILIES.len());

        let known = [
            "amazon.titan-text-express-v1",
            "amazon.titan-text-lite-v1",
            "amazon.titan-text-premier-v1:0",
            "anthropic.claude-v2",
            "anthropic.claude-v2:1",
            "anthropic.claude-instant-v1",
            "amazon.nova-micro-v1:0",
            "amazon.nova-lite-v1:0",
            "amazon.nova-pro-v1:0",
            "amazon.nova-premier-v1:0",
            "amazon.nova-2-lite-v1:0",
            "cohere.command-text-v14",
            "cohere.command-light-text-v14",
            "cohere.command-r-v1:0",
            "cohere.command-r-plus-v1:0",
            "ai21.j2-mid-v1",
            "ai21.j2-ultra-v1",
            "ai21.jamba-instruct-v1:0",
            "ai21.jamba-1-5-mini-v1:0",
            "ai21.jamba-1-5-large-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-sonnet-20240229-v1:0",
            "anthropic.claude-3-opus-20240229-v1:0",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "anthropic.claude-opus-4-20250514-v1:0",
            "anthropic.claude-opus-4-1-20250805-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "anthropic.claude-opus-4-5-20251101-v1:0",
            "anthropic.claude-opus-4-6-v1",
            "anthropic.claude-sonnet-4-6",
            "meta.llama2-13b-chat-v1",
            "meta.llama2-70b-chat-v1",
            "meta.llama3-8b-instruct-v1:0",
            "meta.llama3-70b-instruct-v1:0",
            "meta.llama3-1-8b-instruct-v1:0",
            "meta.llama3-1-70b-instruct-v1:0",
            "meta.llama3-1-405b-instruct-v1:0",
            "meta.llama3-2-1b-instruct-v1:0",
            "meta.llama3-2-3b-instruct-v1:0",
            "meta.llama3-2-11b-instruct-v1:0",
            "meta.llama3-2-90b-instruct-v1:0",
            "meta.llama3-3-70b-instruct-v1:0",
            "meta.llama4-scout-17b-instruct-v1:0",
            "meta.llama4-maverick-17b-instruct-v1:0",
            "mistral.mistral-7b-instruct-v0:2",
            "mistral.mixtral-8x7b-instruct-v0:1",
            "mistral.mistral-large-2402-v1:0",
            "mistral.mistral-small-2402-v1:0",
            "mistral.mistral-large-2407-v1:0",
            "mistral.pixtral-large-2502-v1:0",
            "deepseek.r1-v1:0",
            "openai.gpt-oss-120b-1:0",
            "openai.gpt-oss-20b-1:0",
            "writer.palmyra-x4-v1:0",
            "writer.palmyra-x5-v1:0",
        ];
        for model_id in known {
            let n_claims = FAMILIES.iter().filter(|family| family.matches(model_id)).count();
            assert_eq!(n_claims, 1, "{model_id}");
        }
        for model_id in ["anthropic.claude-3-haiku", "meta.llama3", "amazon.titan-text", ""] {
            assert!(family_for(model_id).is_none(), "{model_id}");
        }
    }
}
