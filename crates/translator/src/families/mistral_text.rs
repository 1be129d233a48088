//! Mistral AI models that take an `[INST]` prompt: `mistral.mistral-7b-instruct-*`,
//! `mistral.mixtral-8x7b-instruct-*`, `mistral.mistral-large-2402-*` and
//! `mistral.mistral-small-2402-*`. Later Mistral models take a chat body (`mistral_chat`).
//!
//! The request is `{"prompt", "max_tokens", "stop", "temperature", "top_p", "top_k"}`;
//! the answer is `outputs[0].text` (wire reference §4.6).
//!
//! Decisions:
//! - The prompt follows the AWS documentation's format: `<s>` once, each user message
//!   as `[INST] {user} [/INST]`, each assistant answer as ` {assistant}</s>`, with a
//!   space before the next `[INST]`:
//!   `<s>[INST] q1 [/INST] a1</s> [INST] q2 [/INST]`. A final assistant message is
//!   continued (no `</s>`). A plain `prompt` is one user turn.
//! - The format has no system slot: the system prompt opens the first user message,
//!   followed by a blank line. Turns must alternate from the user: runs of one role are
//!   merged with a blank line and an assistant-first conversation is refused.
//! - `max_tokens` is not range-checked (8192 for 7B, Large and Small, 4096 for
//!   Mixtral; the family does not know which model it serves), nor is `top_k`.
//! - The bodies carry no token counts: usage comes from Bedrock's headers, or from a
//!   stream's invocation metrics.
//! - Stream chunks have the response's shape, `{"outputs": [{"text", "stop_reason"}]}`:
//!   AWS's own streaming example reads `outputs[0].text` from every chunk
//!   (awsdocs/aws-doc-sdk-examples
//!   `python/example_code/bedrock-runtime/models/mistral_ai/invoke_model_with_response_stream.py`);
//!   no recorded stream was found. A chunk without `outputs` and with nothing else to read
//!   is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, InstTemplate, TextChoice, convert_mistral_stop_reason, decode_first_text_choice,
    decode_guarded_response, finish_stream_event, first_text_choice_event,
    parse_guarded_stream_chunk, render_inst_template,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{Param, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The Mistral `[INST]` prompt family.
#[derive(Debug, Clone, Copy)]
pub struct MistralText;

const ID: &str = "mistral_text";

/// The base model id prefixes of the prompt-taking Mistral models.
const MODEL_PREFIXES: &[&str] = &[
    "mistral.mistral-7b-instruct-",
    "mistral.mixtral-8x7b-instruct-",
    "mistral.mistral-large-2402-",
    "mistral.mistral-small-2402-",
];

/// The `[INST]` format of the AWS documentation: `<s>` once, the system prompt as the
/// first paragraph of the first user message, `</s> ` after an answer.
const MISTRAL_INST_TEMPLATE: InstTemplate = InstTemplate {
    begin: "<s>",
    user_start: "[INST] ",
    system_start: "",
    system_end: "\n\n",
    answer_end: "</s> ",
};

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct MistralTextRequest<'a> {
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
}

/// An InvokeModel response body, and also the shape of every stream chunk.
#[derive(Debug, Deserialize)]
struct MistralTextResponse {
    #[serde(default)]
    outputs: Vec<TextChoice>,
}

/// One decoded stream chunk; `outputs` is `None` when the key is absent.
#[derive(Debug, Deserialize)]
struct MistralTextStreamChunk {
    #[serde(default)]
    outputs: Option<Vec<TextChoice>>,
}

impl TextFamily for MistralText {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODEL_PREFIXES.iter().any(|prefix| base_model_id.starts_with(prefix))
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::TopK, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["prompt", "max_tokens", "stop", "temperature", "top_p", "top_k"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let body = MistralTextRequest {
            prompt: render_prompt(req)?,
            max_tokens: req.max_tokens,
            stop: &req.stop,
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: req.top_k,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, |body| {
            let res: MistralTextResponse = parse_body(ID, body)?;
            decode_first_text_choice(ID, "outputs", res.outputs, convert_mistral_stop_reason)
        })
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunk has no counts of its own, so the invocation metrics are the usage.
        let GuardedChunk { chunk, usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<MistralTextStreamChunk>(ID, chunk)?;
        let known = chunk.outputs.is_some();
        let outputs = chunk.outputs.unwrap_or_default();
        let event = first_text_choice_event(outputs, usage, convert_mistral_stop_reason);
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The conversation in the `[INST]` format of the AWS documentation.
fn render_prompt(req: &UnifiedRequest) -> Result<String, TranslateError> {
    render_inst_template(ID, &MISTRAL_INST_TEMPLATE, req)
}

#[cfg(test)]
mod tests {
    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::common::conversation;
    use crate::families::mistral_text::{MistralText, render_prompt};
    use crate::unified::{Role, StopReason};

    #[test]
    fn template_matches_the_aws_multi_turn_example() {
        let req = conversation(&[
            (Role::User, "What is your favourite condiment?"),
            (Role::Assistant, "Lemon juice."),
            (Role::User, "Do you have mayonnaise recipes?"),
        ]);
        assert_eq!(
            render_prompt(&req).unwrap(),
            "<s>[INST] What is your favourite condiment? [/INST] Lemon juice.</s> \
             [INST] Do you have mayonnaise recipes? [/INST]"
        );
    }

    #[test]
    fn system_prompt_opens_the_first_user_message() {
        let req = conversation(&[(Role::System, "Be terse."), (Role::User, "Hi")]);
        assert_eq!(render_prompt(&req).unwrap(), "<s>[INST] Be terse.\n\nHi [/INST]");
    }

    #[test]
    fn matches_prompt_models_only() {
        for id in ["mistral.mistral-7b-instruct-v0:2", "mistral.mistral-small-2402-v1:0"] {
            assert!(MistralText.matches(id), "{id}");
        }
        for id in ["mistral.mistral-large-2407-v1:0", "mistral.pixtral-large-2502-v1:0"] {
            assert!(!MistralText.matches(id), "{id}");
        }
    }

    #[test]
    fn empty_outputs_is_malformed() {
        let err = MistralText.decode_response(br#"{"outputs":[]}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn stream_chunk_without_outputs_contributes_nothing() {
        let event = MistralText.decode_stream_event(b"{}").unwrap();
        assert_eq!(event.stop_reason, None::<StopReason>);
        assert_eq!(event.text, "");
    }
}
