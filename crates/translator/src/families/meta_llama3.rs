//! Meta Llama 3 Instruct, 3.1, 3.2 and 3.3: `meta.llama3-*` model ids. This file also
//! holds what the three Llama families share: the body, the answer and stream decoding,
//! and the header-based chat template that Llama 4 reuses with its own tokens.
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

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::{
    StopMode, TextFamily, check_range, de_count, invocation_metrics_usage, parse_body, to_body,
};
use crate::unified::{
    Param, Role, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage,
};

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

/// The optional unified parameters every Llama family honours (`stop` emulated).
pub(crate) const LLAMA_PARAMS: &[Param] =
    &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop];

/// The body keys of every Llama family.
pub(crate) const LLAMA_MAPPED_PATHS: &[&str] = &["prompt", "max_gen_len", "temperature", "top_p"];

/// A chat template in which every message is `{header_start}{role}{header_end}\n\n
/// {content}{end_of_turn}` (Llama 3 and Llama 4, with different tokens).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderTemplate {
    pub(crate) begin_of_text: &'static str,
    pub(crate) header_start: &'static str,
    pub(crate) header_end: &'static str,
    pub(crate) end_of_turn: &'static str,
}

/// The body of InvokeModel and InvokeModelWithResponseStream, for every Llama family.
#[derive(Debug, Serialize)]
struct LlamaRequest {
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_gen_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

/// An InvokeModel response body, and also the shape of every stream chunk (where every
/// key may be `null`).
#[derive(Debug, Deserialize)]
struct LlamaGeneration {
    #[serde(default)]
    generation: Option<String>,
    #[serde(default, deserialize_with = "de_count")]
    prompt_token_count: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    generation_token_count: Option<u32>,
    #[serde(default)]
    stop_reason: Option<String>,
}

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
        decode_llama_response(ID, body)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        decode_llama_stream_event(ID, chunk)
    }
}

/// The Llama body for an already rendered `prompt`, after checking the sampling ranges.
pub(crate) fn encode_llama_request(
    family: &'static str,
    req: &UnifiedRequest,
    prompt: String,
) -> Result<serde_json::Value, TranslateError> {
    check_range(family, "temperature", req.temperature, 0.0..=1.0)?;
    check_range(family, "top_p", req.top_p, 0.0..=1.0)?;
    let body = LlamaRequest {
        prompt,
        max_gen_len: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
    };
    to_body(family, &body)
}

/// The answer of a Llama InvokeModel response.
pub(crate) fn decode_llama_response(
    family: &'static str,
    body: &[u8],
) -> Result<UnifiedResponse, TranslateError> {
    let res: LlamaGeneration = parse_body(family, body)?;
    let Some(text) = res.generation else {
        return Err(TranslateError::MalformedResponse {
            family,
            detail: "the body has no `generation`".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        text,
        stop_reason: res.stop_reason.as_deref().map_or(StopReason::Other, convert_stop_reason),
        usage: Usage {
            input_tokens: res.prompt_token_count,
            output_tokens: res.generation_token_count,
        },
    })
}

/// What one Llama stream chunk contributes.
pub(crate) fn decode_llama_stream_event(
    family: &'static str,
    chunk: &[u8],
) -> Result<StreamEvent, TranslateError> {
    let chunk_json: serde_json::Value = parse_body(family, chunk)?;
    let mut usage = invocation_metrics_usage(&chunk_json);
    let chunk = LlamaGeneration::deserialize(&chunk_json)
        .map_err(|e| TranslateError::MalformedResponse { family, detail: e.to_string() })?;
    usage.update(Usage {
        input_tokens: chunk.prompt_token_count,
        output_tokens: chunk.generation_token_count,
    });
    Ok(StreamEvent {
        text: chunk.generation.unwrap_or_default(),
        stop_reason: chunk.stop_reason.as_deref().map(convert_stop_reason),
        usage,
    })
}

/// The conversation in a header-based template: the system prompt and every turn as a
/// closed message, then an open assistant header; a final assistant turn stays open.
pub(crate) fn render_header_template(template: &HeaderTemplate, req: &UnifiedRequest) -> String {
    let conversation = req.conversation();
    let mut prompt = String::from(template.begin_of_text);
    let push_header = |prompt: &mut String, role: &str| {
        prompt.push_str(template.header_start);
        prompt.push_str(role);
        prompt.push_str(template.header_end);
        prompt.push_str("\n\n");
    };
    if let Some(system) = &conversation.system {
        push_header(&mut prompt, "system");
        prompt.push_str(system);
        prompt.push_str(template.end_of_turn);
    }
    let n_turns = conversation.turns.len();
    for (i, (role, content)) in conversation.turns.iter().enumerate() {
        let is_assistant = *role == Role::Assistant;
        push_header(&mut prompt, if is_assistant { "assistant" } else { "user" });
        prompt.push_str(content);
        if is_assistant && i + 1 == n_turns {
            // The model continues the final assistant message.
            return prompt;
        }
        prompt.push_str(template.end_of_turn);
    }
    push_header(&mut prompt, "assistant");
    prompt
}

fn convert_stop_reason(stop_reason: &str) -> StopReason {
    match stop_reason {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::meta_llama3::{LLAMA3_TEMPLATE, MetaLlama3, render_header_template};
    use crate::unified::{Message, Role, StopReason, UnifiedRequest, Usage};

    fn conversation(messages: &[(Role, &str)]) -> UnifiedRequest {
        UnifiedRequest {
            messages: messages
                .iter()
                .map(|&(role, content)| Message { role, content: content.to_owned() })
                .collect(),
            ..UnifiedRequest::default()
        }
    }

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
