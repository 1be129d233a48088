//! Meta Llama 4 Instruct (Scout, Maverick): the Llama body, answers and stream chunks of wire
//! document §4.5 (shared with Llama 3 in [`crate::families::meta_llama3`]), with `images`.
//! Bedrock serves these models only through an inference profile [D], InvokeModelWithResponseStream
//! included: AWS's "Meta Llama models" page documents one body for both operations with Llama 4
//! Instruct among its models [D], and ListFoundationModels reports `responseStreamingSupported`
//! for both [R: an export of us-east-1, 2026-06-02]. No Llama 4 stream was recorded; the chunks
//! are the recorded Llama shape.
//!
//! Models: `meta.llama4-scout-17b-instruct-v1:0`, `meta.llama4-maverick-17b-instruct-v1:0`.

use serde_json::Value;

use crate::error::BedrockError;
use crate::families::meta_llama3::{
    AcceptsImages, llama_n_stream_chunks, llama_response_body, llama_stream_chunk,
    parse_llama_request,
};
use crate::families::{Family, InvocationMetrics};
use crate::generate::{Completion, GenerationRequest};

/// The Llama 4 family.
pub(crate) struct MetaLlama4;

const MODELS: &[&str] =
    &["meta.llama4-scout-17b-instruct-v1:0", "meta.llama4-maverick-17b-instruct-v1:0"];

impl Family for MetaLlama4 {
    fn id(&self) -> &'static str {
        "meta_llama4"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn needs_inference_profile(&self, _base_model_id: &str) -> bool {
        true
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        parse_llama_request(body, AcceptsImages::Yes)
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        llama_response_body(completion)
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        llama_n_stream_chunks(completion)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        llama_stream_chunk(completion, chunk_idx, metrics)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    #[test]
    fn profile_only_streamed_and_with_images() {
        let body = json!({"prompt": "Describe it", "images": ["aGk="], "max_gen_len": 9});
        assert_eq!(MetaLlama4.parse_request(MODELS[0], &body).unwrap().max_tokens, 9);
        assert!(MetaLlama4.needs_inference_profile(MODELS[1]));
        assert!(MetaLlama4.streams());
    }

    #[test]
    fn stream_chunks_are_the_llama_chunks() {
        let body = json!({"prompt": "hello there", "max_gen_len": 2});
        let completion = generate(&MetaLlama4.parse_request(MODELS[0], &body).unwrap());
        assert_eq!(MetaLlama4.n_stream_chunks(&completion), 3);
        let chunk = |idx| -> Value {
            serde_json::from_slice(&MetaLlama4.stream_chunk(&completion, idx, None)).unwrap()
        };
        assert_eq!(chunk(0)["generation"], completion.tokens[0].as_str());
        assert_eq!(chunk(0)["prompt_token_count"], 2);
        assert_eq!(chunk(1)["prompt_token_count"], Value::Null);
        assert_eq!(chunk(1)["generation_token_count"], 2);
        assert_eq!(chunk(2)["generation"], "");
        assert_eq!(chunk(2)["stop_reason"], "length");
    }
}
