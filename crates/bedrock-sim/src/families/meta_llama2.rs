//! Meta Llama 2 Chat: the Llama body and answers of wire document §4.5 (shared with Llama 3 in
//! [`crate::families::meta_llama3`]), without `images`.
//!
//! Models: `meta.llama2-13b-chat-v1`, `meta.llama2-70b-chat-v1`.

use serde_json::Value;

use crate::error::BedrockError;
use crate::families::meta_llama3::{
    AcceptsImages, llama_n_stream_chunks, llama_response_body, llama_stream_chunk,
    parse_llama_request,
};
use crate::families::{Family, InvocationMetrics};
use crate::generate::{Completion, GenerationRequest};

/// The Llama 2 Chat family.
pub(crate) struct MetaLlama2;

const MODELS: &[&str] = &["meta.llama2-13b-chat-v1", "meta.llama2-70b-chat-v1"];

impl Family for MetaLlama2 {
    fn id(&self) -> &'static str {
        "meta_llama2"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        parse_llama_request(body, AcceptsImages::No)
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

    #[test]
    fn takes_the_llama_body_without_images() {
        let prompt = "<s>[INST] <<SYS>>\nBe terse.\n<</SYS>>\n\nHi [/INST]";
        let request =
            MetaLlama2.parse_request(MODELS[0], &json!({"prompt": prompt, "max_gen_len": 7}));
        assert_eq!(request.unwrap().max_tokens, 7);
        let with_images = json!({"prompt": prompt, "images": ["aGk="]});
        assert!(MetaLlama2.parse_request(MODELS[1], &with_images).is_err());
        assert!(!MetaLlama2.needs_inference_profile(MODELS[0]));
    }
}
