//! The `Family` trait and the registry of every simulated model family.
//!
//! | id | base model ids | request body | stop reasons |
//! |---|---|---|---|
//! | `titan_text` | `amazon.titan-text-express-v1`, `amazon.titan-text-lite-v1`, `amazon.titan-text-premier-v1:0` | `inputText`, `textGenerationConfig` | `FINISH`, `LENGTH`, `STOP_CRITERIA_MET` |
//! | `anthropic_claude_text` | `anthropic.claude-v2`, `anthropic.claude-v2:1`, `anthropic.claude-instant-v1` | `prompt`, `max_tokens_to_sample`, ... | `stop_sequence`, `max_tokens` |
//!
//! Adding a family is one new file here plus its `mod` line and its entry in [`FAMILIES`].

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::generate::{Completion, GenerationRequest};

mod anthropic_claude_text;
mod titan_text;

/// One simulated model family: how its request bodies are checked and its answers shaped.
///
/// Implementations are unit structs, pure and synchronous.
pub(crate) trait Family: Send + Sync {
    /// The snake_case id, also the file name.
    fn id(&self) -> &'static str;
    /// Whether this family simulates `base_model_id` (no ARN, no geography prefix).
    fn matches(&self, base_model_id: &str) -> bool;
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
    /// The model-native JSON of stream chunk `chunk_idx`; `metrics` is given for the last one.
    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8>;
}

/// Every family, in the order [`family_for`] tries them.
pub(crate) static FAMILIES: &[&dyn Family] =
    &[&titan_text::TitanText, &anthropic_claude_text::AnthropicClaudeText];

/// The family that simulates `base_model_id`, if any.
pub(crate) fn family_for(base_model_id: &str) -> Option<&'static dyn Family> {
    FAMILIES.iter().copied().find(|family| family.matches(base_model_id))
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
        ];
        for model_id in known {
            let n_claims = FAMILIES.iter().filter(|family| family.matches(model_id)).count();
            assert_eq!(n_claims, 1, "{model_id}");
        }
        for model_id in ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text", ""] {
            assert!(family_for(model_id).is_none(), "{model_id}");
        }
    }
}
