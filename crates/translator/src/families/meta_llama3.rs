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
//!
//! Images (Llama 3.2 11B and 90B Vision; the same code serves Llama 4, see
//! `meta_llama4.rs`):
//! - The body takes the images as `images`, a list of base64 strings (no media type, no
//!   `data:` prefix), beside `prompt`, and the prompt holds one `<|image|>` token where
//!   each image goes, the n-th token standing for the n-th image. Source: promptfoo's
//!   Bedrock provider, which sends exactly this to `meta.llama3-2-{11b,90b}-instruct` and
//!   tested it end to end against Bedrock (promptfoo/promptfoo pull request #6555,
//!   `src/providers/bedrock/index.ts`, `formatPromptLlama32Vision`); the token is Meta's
//!   Llama 3.2 Vision prompt format. AWS's "Meta Llama models" page, as far as the search
//!   returned it, lists only `prompt`, `temperature`, `top_p` and `max_gen_len` [U].
//! - An image part becomes `<|image|>` in its place in the message, glued to the text
//!   parts around it (text parts are still joined by a blank line, as for text-only
//!   messages); `images` lists every image of the conversation in order. The media type
//!   is not sent: the models read png, jpeg, gif and webp [U]. How many images one request
//!   may carry is left to Bedrock [U].
//! - Text that itself holds `<|image|>` is refused when the request has images: the
//!   tokens would no longer match the images.
//! - A request without image parts is encoded exactly as before: no `images` key, and
//!   the prompt is unchanged.
//! - `params()` are per family, so the whole family lists image parts, yet only the
//!   Llama 3.2 11B and 90B Vision models read images. Bedrock refuses an `images` key for
//!   the text-only models (Llama 3 8B/70B, 3.1, 3.2 1B/3B, 3.3 70B) with a validation
//!   error (the "extraneous key" of any unknown key [U]); the gateway passes that on.

use crate::error::TranslateError;
use crate::families::common::{
    HeaderTemplate, decode_guarded_llama_stream_event, decode_guarded_response,
    decode_llama_response, encode_llama_request, render_header_template,
};
use crate::families::{StopMode, TextFamily};
use crate::unified::{Content, Message, Param, Part, StreamEvent, UnifiedRequest, UnifiedResponse};

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
        LLAMA_VISION_PARAMS
    }

    fn stop_mode(&self) -> StopMode {
        StopMode::Emulated
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        LLAMA_VISION_MAPPED_PATHS
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        encode_llama_vision_request(ID, req, &LLAMA3_TEMPLATE)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, |body| decode_llama_response(ID, body))
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        decode_guarded_llama_stream_event(ID, chunk)
    }
}

/// The optional unified parameters of the Llama families that read images (Llama 3.x and
/// Llama 4): those of every Llama, and image parts.
pub(crate) const LLAMA_VISION_PARAMS: &[Param] =
    &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop, Param::ImageInput];

/// The body keys of the Llama families that read images.
pub(crate) const LLAMA_VISION_MAPPED_PATHS: &[&str] =
    &["prompt", "max_gen_len", "temperature", "top_p", "images"];

/// The token that stands for one image in a Llama prompt.
const IMAGE_TOKEN: &str = "<|image|>";

/// The Llama body of a request in `template`, with its image parts as `images` and
/// `<|image|>` tokens (see the module doc); a request without images is the plain Llama body.
pub(crate) fn encode_llama_vision_request(
    family: &'static str,
    req: &UnifiedRequest,
    template: &HeaderTemplate,
) -> Result<serde_json::Value, TranslateError> {
    let Some((with_tokens, images)) = replace_images_with_tokens(family, req)? else {
        return encode_llama_request(family, req, render_header_template(template, req));
    };
    let mut body =
        encode_llama_request(family, req, render_header_template(template, &with_tokens))?;
    if let serde_json::Value::Object(body) = &mut body {
        body.insert("images".to_owned(), serde_json::json!(images));
    }
    Ok(body)
}

fn is_image(part: &Part) -> bool {
    matches!(part, Part::Image { .. })
}

/// `None` for a request without image parts; otherwise a request of the same messages
/// (for rendering only) in which every message with images is text with `<|image|>` in
/// their places, and the images' base64 data in order.
fn replace_images_with_tokens<'a>(
    family: &'static str,
    req: &'a UnifiedRequest,
) -> Result<Option<(UnifiedRequest, Vec<&'a str>)>, TranslateError> {
    let has_images = |message: &Message| matches!(&message.content, Content::Parts(parts) if parts.iter().any(is_image));
    if !req.messages.iter().any(has_images) {
        return Ok(None);
    }
    if let Some(i) = req.messages.iter().position(|m| m.content.text().contains(IMAGE_TOKEN)) {
        return Err(TranslateError::InvalidRequest(format!(
            "`messages[{i}]`: the text holds `{IMAGE_TOKEN}`, which the {family} model family \
             uses for the request's images"
        )));
    }
    let mut images = Vec::new();
    let mut messages = Vec::with_capacity(req.messages.len());
    for message in &req.messages {
        let Content::Parts(parts) = &message.content else {
            messages.push(message.clone());
            continue;
        };
        if !parts.iter().any(is_image) {
            messages.push(message.clone());
            continue;
        }
        let mut text = String::new();
        let mut after_text = false;
        for part in parts {
            match part {
                Part::Text { text: piece } => {
                    if after_text {
                        text.push_str("\n\n");
                    }
                    text.push_str(piece);
                    after_text = true;
                }
                Part::Image { data, .. } => {
                    text.push_str(IMAGE_TOKEN);
                    images.push(data.as_str());
                    after_text = false;
                }
                // The codec refuses every other part before encoding (not in `params()`).
                Part::Document { .. }
                | Part::Video { .. }
                | Part::ToolUse { .. }
                | Part::ToolResult { .. } => {}
            }
        }
        messages.push(Message { role: message.role, content: Content::Text(text) });
    }
    Ok(Some((UnifiedRequest { messages, ..UnifiedRequest::default() }, images)))
}

#[cfg(test)]
mod tests {
    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::common::conversation;
    use crate::families::common::render_header_template;
    use crate::families::meta_llama3::{LLAMA3_TEMPLATE, MetaLlama3};
    use crate::unified::{Content, Message, Param, Part, Role, StopReason, UnifiedRequest, Usage};

    fn image(data: &str) -> Part {
        Part::Image { media_type: "image/jpeg".to_owned(), data: data.to_owned() }
    }

    fn text(text: &str) -> Part {
        Part::Text { text: text.to_owned() }
    }

    #[test]
    fn images_go_to_images_with_a_token_in_their_place() {
        let req = UnifiedRequest {
            messages: vec![
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![image("QQ=="), text("Hi")]),
                },
                Message::text(Role::Assistant, "Hello."),
                Message {
                    role: Role::User,
                    content: Content::Parts(vec![text("And"), image("Qg=="), text("this?")]),
                },
            ],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&MetaLlama3, &req).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n\
                    <|image|>Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n\
                    Hello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n\
                    And<|image|>this?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                "images": ["QQ==", "Qg=="]
            })
        );
    }

    #[test]
    fn text_parts_without_images_encode_as_before() {
        let req = UnifiedRequest {
            messages: vec![Message {
                role: Role::User,
                content: Content::Parts(vec![text("a"), text("b")]),
            }],
            ..UnifiedRequest::default()
        };
        let body = crate::encode_text_request(&MetaLlama3, &req).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"prompt": "<|begin_of_text|><|start_header_id|>user\
                <|end_header_id|>\n\na\n\nb<|eot_id|><|start_header_id|>assistant\
                <|end_header_id|>\n\n"})
        );
        assert!(MetaLlama3.params().contains(&Param::ImageInput));
    }

    #[test]
    fn extra_cannot_set_images() {
        let mut req = UnifiedRequest { prompt: Some("x".to_owned()), ..UnifiedRequest::default() };
        req.extra.insert("images".to_owned(), serde_json::json!(["QQ=="]));
        let err = crate::encode_text_request(&MetaLlama3, &req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
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
