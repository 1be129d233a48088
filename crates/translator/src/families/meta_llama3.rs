//! Meta Llama 3 Instruct, 3.1, 3.2 and 3.3: `meta.llama3-*` model ids. What the three
//! Llama families share (the body, the answer and stream decoding, and the header-based
//! chat template that Llama 4 uses with its own tokens) is in `common.rs`.
//!
//! The request is `{"prompt", "max_gen_len", "temperature", "top_p"}` with the prompt
//! rendered in Llama 3's chat template; the answer is `generation` with its own token
//! counts (wire reference §4.5).
//!
//! Decisions:
//! - A plain `prompt` is wrapped in the template as one user turn, like any
//!   conversation, so callers never write template tokens. There is no way to send a
//!   raw, already templated prompt: it would be wrapped again.
//! - The template follows Meta's Llama 3 format: `<|begin_of_text|>`, then each message
//!   as `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>` (the system
//!   prompt first), then an open assistant header for the model to write in. A final
//!   assistant message is continued instead: it gets no `<|eot_id|>` and no new header.
//!   Contents are sent as given (not trimmed).
//! - Llama has no stop-sequence parameter: stops are emulated by the gateway
//!   ([`StopMode::Emulated`]).
//! - `max_gen_len` is left to Bedrock's default when unset and is not range-checked
//!   (the documented maximum, 2048, is unconfirmed for 3.1 and later).
//! - `generation_token_count` is cumulative in streams, so the last chunk's count wins.
//! - Stream chunks have the body's keys, `{"generation", "prompt_token_count",
//!   "generation_token_count", "stop_reason"}` (wire reference §4.5; the body is recorded
//!   in traceloop/openllmetry `test_meta_llama*_completion*.yaml`); a chunk with none of
//!   these keys is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, whatever `stop_reason` says or when it is
//!   absent, and a body without `generation` is then an empty answer, not a malformed one.

use crate::error::TranslateError;
use crate::families::common::{
    HeaderTemplate, LLAMA_MAPPED_PATHS, LLAMA_PARAMS, decode_guarded_llama_stream_event,
    decode_guarded_response, decode_llama_response, encode_llama_request, render_header_template,
};
use crate::families::{StopMode, TextFamily};
use crate::unified::{Param, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The Meta Llama 3.x family.
#[derive(Debug, Clone, Copy)]
pub struct MetaLlama3;

const ID: &str = "meta_llama3";

/// Llama 3's chat template tokens.
const LLAMA3_TEMPLATE: HeaderTemplate = HeaderTemplate {
    begin_of_text: "<|begin_of_text|>",
    header_start: "<|start_header_id|>",
    header_end: "<|end_header_id|>",
    end_of_turn: "<|eot_id|>",
};

impl TextFamily for MetaLlama3 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("meta.llama3-")
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
        encode_llama_request(ID, req, render_header_template(&LLAMA3_TEMPLATE, req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, |body| decode_llama_response(ID, body))
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        decode_guarded_llama_stream_event(ID, chunk)
    }
}

#[cfg(test)]
mod tests {
    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::common::conversation;
    use crate::families::common::render_header_template;
    use crate::families::meta_llama3::{LLAMA3_TEMPLATE, MetaLlama3};
    use crate::unified::{Role, StopReason, UnifiedRequest, Usage};

    #[test]
    fn template_matches_meta_llama3_format() {
        let req = conversation(&[
            (Role::System, "Be terse."),
            (Role::User, "Hi"),
            (Role::Assistant, "Hello."),
            (Role::User, "Joke?"),
        ]);
        assert_eq!(
            render_header_template(&LLAMA3_TEMPLATE, &req),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe terse.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nJoke?<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn final_assistant_message_is_continued() {
        let req = conversation(&[(Role::User, "Hi"), (Role::Assistant, "Well,")]);
        assert!(
            render_header_template(&LLAMA3_TEMPLATE, &req)
                .ends_with("<|start_header_id|>assistant<|end_header_id|>\n\nWell,")
        );
    }

    #[test]
    fn matches_llama3_generations_only() {
        for id in ["meta.llama3-8b-instruct-v1:0", "meta.llama3-3-70b-instruct-v1:0"] {
            assert!(MetaLlama3.matches(id), "{id}");
        }
        for id in ["meta.llama2-13b-chat-v1", "meta.llama4-scout-17b-instruct-v1:0"] {
            assert!(!MetaLlama3.matches(id), "{id}");
        }
    }

    #[test]
    fn stops_are_emulated_not_sent() {
        let req = UnifiedRequest {
            prompt: Some("Count".to_owned()),
            stop: vec!["3".to_owned()],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&MetaLlama3, &req).unwrap();
        assert_eq!(body.get("stop"), None);
        let res = br#"{"generation":"1, 2, 3, 4","prompt_token_count":2,"generation_token_count":8,
            "stop_reason":"stop"}"#;
        let answer = crate::decode_text_response(&MetaLlama3, &req, res).unwrap();
        assert_eq!(
            (answer.text.as_str(), answer.stop_reason),
            ("1, 2, ", StopReason::StopSequence)
        );
    }

    #[test]
    fn body_without_generation_is_malformed() {
        let err = MetaLlama3.decode_response(br#"{"stop_reason":"stop"}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn stream_counts_override_invocation_metrics() {
        let chunk = br#"{"generation":"","prompt_token_count":null,"generation_token_count":9,
            "stop_reason":"length","amazon-bedrock-invocationMetrics":{"inputTokenCount":3,
            "outputTokenCount":10}}"#;
        let event = MetaLlama3.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(3), output_tokens: Some(9) });
        assert_eq!(event.stop_reason, Some(StopReason::MaxTokens));
    }
}
