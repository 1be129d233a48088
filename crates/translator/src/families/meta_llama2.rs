//! Meta Llama 2 Chat: `meta.llama2-*` model ids.
//!
//! The body, answer and stream chunks are those of every Llama family (see
//! `common.rs`, which holds the shared code); only the chat template differs.
//!
//! Decisions:
//! - The template follows Meta's Llama 2 chat format: each user/assistant pair is
//!   `<s>[INST] {user} [/INST] {assistant} </s>`, the last user message is
//!   `<s>[INST] {user} [/INST]`, and the system prompt opens the first user message as
//!   `<<SYS>>\n{system}\n<</SYS>>\n\n`. A final assistant message is continued (no
//!   ` </s>`). Contents are sent as given (Meta's reference code also strips them).
//! - The format needs alternating turns starting with the user: runs of one role are
//!   merged with a blank line and an assistant-first conversation is refused. A plain
//!   `prompt` is one user turn.
//! - Stops are emulated by the gateway, as for every Llama.
//! - Stream chunks have the body's keys, `{"generation", "prompt_token_count",
//!   "generation_token_count", "stop_reason"}` (wire reference §4.5; the body is recorded
//!   in traceloop/openllmetry `test_meta_llama*_completion*.yaml`); a chunk with none of
//!   these keys is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop, whatever `stop_reason` says or when it is
//!   absent, and a body without `generation` is then an empty answer, not a malformed one.

use crate::error::TranslateError;
use crate::families::common::{
    InstTemplate, LLAMA_MAPPED_PATHS, LLAMA_PARAMS, decode_guarded_llama_stream_event,
    decode_guarded_response, decode_llama_response, encode_llama_request, render_inst_template,
};
use crate::families::{StopMode, TextFamily};
use crate::unified::{Param, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The Meta Llama 2 family.
#[derive(Debug, Clone, Copy)]
pub struct MetaLlama2;

const ID: &str = "meta_llama2";

/// Meta's Llama 2 chat format: every instruction opens with `<s>`, the system prompt sits
/// in `<<SYS>>` tags at the start of the first one, and ` </s>` closes each answer.
const LLAMA2_INST_TEMPLATE: InstTemplate = InstTemplate {
    begin: "",
    user_start: "<s>[INST] ",
    system_start: "<<SYS>>\n",
    system_end: "\n<</SYS>>\n\n",
    answer_end: " </s>",
};

impl TextFamily for MetaLlama2 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("meta.llama2-")
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
        encode_llama_request(ID, req, render_prompt(req)?)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, |body| decode_llama_response(ID, body))
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        decode_guarded_llama_stream_event(ID, chunk)
    }
}

/// The conversation in Llama 2's `[INST]` chat format.
fn render_prompt(req: &UnifiedRequest) -> Result<String, TranslateError> {
    render_inst_template(ID, &LLAMA2_INST_TEMPLATE, req)
}

#[cfg(test)]
mod tests {
    use crate::families::TextFamily;
    use crate::families::common::conversation;
    use crate::families::meta_llama2::{MetaLlama2, render_prompt};
    use crate::unified::{Role, UnifiedRequest};

    #[test]
    fn template_matches_meta_llama2_chat_format() {
        let req = conversation(&[
            (Role::System, "Be terse."),
            (Role::User, "Hi"),
            (Role::Assistant, "Hello."),
            (Role::User, "Joke?"),
        ]);
        assert_eq!(
            render_prompt(&req).unwrap(),
            "<s>[INST] <<SYS>>\nBe terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Joke? [/INST]"
        );
    }

    #[test]
    fn plain_prompt_is_one_instruction_and_prefill_stays_open() {
        let req = UnifiedRequest { prompt: Some("Hi".to_owned()), ..UnifiedRequest::default() };
        assert_eq!(render_prompt(&req).unwrap(), "<s>[INST] Hi [/INST]");
        let req = conversation(&[(Role::User, "Hi"), (Role::Assistant, "Well,")]);
        assert_eq!(render_prompt(&req).unwrap(), "<s>[INST] Hi [/INST] Well,");
    }

    #[test]
    fn matches_llama2_only() {
        assert!(MetaLlama2.matches("meta.llama2-70b-chat-v1"));
        assert!(!MetaLlama2.matches("meta.llama3-8b-instruct-v1:0"));
    }
}
