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
//! - `"amazon-bedrock-guardrailAction": "INTERVENED"` on a body or chunk is a content
//!   filter stop; such a body or chunk is complete without `stop_reason` (the Llama
//!   body of a blocked input is `{"generation": "<guardrail message>",
//!   "amazon-bedrock-guardrailAction": "INTERVENED", ...}` with no `stop_reason`,
//!   recorded for Llama 3.3 in agentjido/req_llm,
//!   `test/support/fixtures/amazon_bedrock/meta_llama3_3_70b_instruct_v1_0/guardrail_invoke_blocked.json`).
//!   A chunk with none of the Llama keys, no invocation metrics and no intervention is
//!   `unrecognized`.
//! - Images: as for Llama 3.2 Vision (`meta_llama3.rs`, which holds the code): `images`, a
//!   list of base64 strings, beside the prompt, and one `<|image|>` token in the prompt
//!   where each image goes; a request without image parts is encoded as before. Llama 4
//!   Scout and Maverick read images natively (Meta's model cards) and the simulator takes
//!   `images` for both. That the Bedrock body of Llama 4 takes `images` like Llama 3.2's,
//!   and that the bare `<|image|>` token stands for an image there (Meta's own Llama 4
//!   format wraps image tiles in `<|image_start|>`…`<|image_end|>`, which its processor
//!   writes), are not confirmed by an AWS page or a recording [U].
//!
//! Streaming: Bedrock streams Llama 4 through InvokeModelWithResponseStream, in the chunk
//! shape of every Llama (`generation`, `prompt_token_count` on the first chunk,
//! cumulative `generation_token_count`, `stop_reason` and the invocation metrics on the
//! last). Evidence: AWS's "Meta Llama models" page
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html>)
//! documents one request and response body for InvokeModel and
//! InvokeModelWithResponseStream and lists Llama 4 Instruct among its models; an export
//! of ListFoundationModels (us-east-1, 2026-06-02, found in a public repository) gives
//! `responseStreamingSupported` true for `meta.llama4-scout-17b-instruct-v1:0` and
//! `meta.llama4-maverick-17b-instruct-v1:0`. No recorded Llama 4 stream was found; the
//! fixtures reuse the recorded Llama chunk shape (wire reference §4.5).

use crate::error::TranslateError;
use crate::families::common::{
    HeaderTemplate, decode_guarded_llama_stream_event, decode_guarded_response,
    decode_llama_response,
};
use crate::families::meta_llama3::{
    LLAMA_VISION_MAPPED_PATHS, LLAMA_VISION_PARAMS, encode_llama_vision_request,
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
        LLAMA_VISION_PARAMS
    }

    fn stop_mode(&self) -> StopMode {
        StopMode::Emulated
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        LLAMA_VISION_MAPPED_PATHS
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        encode_llama_vision_request(ID, req, &LLAMA4_TEMPLATE)
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
    use crate::families::TextFamily;
    use crate::families::common::render_header_template;
    use crate::families::meta_llama4::{LLAMA4_TEMPLATE, MetaLlama4};
    use crate::unified::{Content, Message, Part, Role, StopReason, UnifiedRequest};

    #[test]
    fn images_use_the_llama4_template() {
        let req = UnifiedRequest {
            messages: vec![Message {
                role: Role::User,
                content: Content::Parts(vec![
                    Part::Image { media_type: "image/webp".to_owned(), data: "UklG".to_owned() },
                    Part::Text { text: "What is it?".to_owned() },
                ]),
            }],
            max_tokens: Some(9),
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&MetaLlama4, &req).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "prompt": "<|begin_of_text|><|header_start|>user<|header_end|>\n\n\
                    <|image|>What is it?<|eot|><|header_start|>assistant<|header_end|>\n\n",
                "images": ["UklG"],
                "max_gen_len": 9
            })
        );
    }

    #[test]
    fn template_matches_meta_llama4_format() {
        let req = UnifiedRequest {
            messages: vec![
                Message::text(Role::System, "You are a helpful assistant"),
                Message::text(Role::User, "Who are you?"),
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
    fn streaming_requests_are_encoded() {
        let req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            stream: true,
            ..UnifiedRequest::default()
        };
        let body = MetaLlama4.encode_request(&req).unwrap();
        assert_eq!(
            body["prompt"],
            "<|begin_of_text|><|header_start|>user<|header_end|>\n\nHi<|eot|>\
             <|header_start|>assistant<|header_end|>\n\n"
        );
    }

    #[test]
    fn guardrail_intervention_and_unknown_chunks() {
        let chunk = br#"{"generation":"Blocked.","amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = MetaLlama4.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ContentFilter));
        assert!(!event.unrecognized);
        let event = MetaLlama4.decode_stream_event(br#"{"type":"ping"}"#).unwrap();
        assert!(event.unrecognized);
        let empty = br#"{"generation":"","prompt_token_count":null,"generation_token_count":null,"stop_reason":null}"#;
        assert!(!MetaLlama4.decode_stream_event(empty).unwrap().unrecognized);
        let body = br#"{"generation":"Blocked.","amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let answer = MetaLlama4.decode_response(body).unwrap();
        assert_eq!(
            (answer.text.as_str(), answer.stop_reason),
            ("Blocked.", StopReason::ContentFilter)
        );
    }

    #[test]
    fn matches_llama4_only() {
        assert!(MetaLlama4.matches("meta.llama4-maverick-17b-instruct-v1:0"));
        assert!(!MetaLlama4.matches("meta.llama3-1-8b-instruct-v1:0"));
    }
}
