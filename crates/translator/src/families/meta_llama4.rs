//! Meta Llama 4 (Scout, Maverick): `meta.llama4-*` model ids.
//!
//! The body, answer and stream chunks are those of every Llama family (see
//! `common.rs`, which holds the shared code); only the chat template differs.
//!
//! Decisions:
//! - The template follows Meta's Llama 4 prompt format: `<|begin_of_text|>`, then each
//!   message as `<|header_start|>{role}<|header_end|>\n\n{content}<|eot|>` (the system
//!   prompt first), then an open assistant header. A final assistant message is
//!   continued instead. A plain `prompt` is one user turn.
//! - Stops are emulated by the gateway, as for every Llama.
//!
//! Bedrock does not stream this model: a streaming request is refused as unsupported
//! (`streaming`, 422) before any call.

use crate::error::TranslateError;
use crate::families::common::{
    HeaderTemplate, LLAMA_MAPPED_PATHS, LLAMA_PARAMS, decode_llama_response,
    decode_llama_stream_event, encode_llama_request, render_header_template, unsupported_streaming,
};
use crate::families::{StopMode, TextFamily};
use crate::unified::{Param, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The Meta Llama 4 family.
#[derive(Debug, Clone, Copy)]
pub struct MetaLlama4;

const ID: &str = "meta_llama4";

/// Llama 4's chat template tokens.
const LLAMA4_TEMPLATE: HeaderTemplate = HeaderTemplate {
    begin_of_text: "<|begin_of_text|>",
    header_start: "<|header_start|>",
    header_end: "<|header_end|>",
    end_of_turn: "<|eot|>",
};

impl TextFamily for MetaLlama4 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("meta.llama4-")
    }

    fn params(&self) -> &'static [Param] {
        LLAMA_PARAMS
    }

    fn stop_mode(&self) -> StopMode {
        StopMode::Emulated
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        LLAMA_MAPPED_PATHS
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        // Bedrock answers InvokeModelWithResponseStream on these models with
        // "The model is unsupported for streaming.": refuse it before the call.
        if req.stream {
            return Err(unsupported_streaming(ID));
        }
        encode_llama_request(ID, req, render_header_template(&LLAMA4_TEMPLATE, req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_llama_response(ID, body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        decode_llama_stream_event(ID, chunk)
    }
}

#[cfg(test)]
mod tests {
    use crate::families::TextFamily;
    use crate::families::common::render_header_template;
    use crate::families::meta_llama4::{LLAMA4_TEMPLATE, MetaLlama4};
    use crate::unified::{Message, Role, UnifiedRequest};

    #[test]
    fn template_matches_meta_llama4_format() {
        let req = UnifiedRequest {
            messages: vec![
                Message { role: Role::System, content: "You are a helpful assistant".to_owned() },
                Message { role: Role::User, content: "Who are you?".to_owned() },
            ],
            ..UnifiedRequest::default()
        };
        assert_eq!(
            render_header_template(&LLAMA4_TEMPLATE, &req),
            "<|begin_of_text|><|header_start|>system<|header_end|>\n\n\
             You are a helpful assistant<|eot|><|header_start|>user<|header_end|>\n\n\
             Who are you?<|eot|><|header_start|>assistant<|header_end|>\n\n"
        );
    }

    #[test]
    fn matches_llama4_only() {
        assert!(MetaLlama4.matches("meta.llama4-maverick-17b-instruct-v1:0"));
        assert!(!MetaLlama4.matches("meta.llama3-1-8b-instruct-v1:0"));
    }
}
