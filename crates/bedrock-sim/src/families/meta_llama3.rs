//! Meta Llama 3, 3.1, 3.2 and 3.3 Instruct: request checks and answer shapes of wire document
//! §4.5. The Llama body and answers are the same for Llama 2 and Llama 4, so this file also owns
//! the shared Llama wire code that [`crate::families::meta_llama2`] and
//! [`crate::families::meta_llama4`] use.
//!
//! Models: `meta.llama3-8b-instruct-v1:0`, `meta.llama3-70b-instruct-v1:0`,
//! `meta.llama3-1-8b-instruct-v1:0`, `meta.llama3-1-70b-instruct-v1:0`,
//! `meta.llama3-1-405b-instruct-v1:0`, `meta.llama3-2-1b-instruct-v1:0`,
//! `meta.llama3-2-3b-instruct-v1:0`, `meta.llama3-2-11b-instruct-v1:0`,
//! `meta.llama3-2-90b-instruct-v1:0` and, only through an inference profile,
//! `meta.llama3-3-70b-instruct-v1:0`.
//!
//! Llama has no stop-sequence parameter: a `stop` key is an extraneous key.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{stop_or_length, string_value, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest};
use crate::schema::{Schema, validate};

/// The Llama 3.x family.
pub(crate) struct MetaLlama3;

/// Each model, and whether it takes `images` (Llama 3.2 and later).
const MODELS: &[(&str, AcceptsImages)] = &[
    ("meta.llama3-8b-instruct-v1:0", AcceptsImages::No),
    ("meta.llama3-70b-instruct-v1:0", AcceptsImages::No),
    ("meta.llama3-1-8b-instruct-v1:0", AcceptsImages::No),
    ("meta.llama3-1-70b-instruct-v1:0", AcceptsImages::No),
    ("meta.llama3-1-405b-instruct-v1:0", AcceptsImages::No),
    ("meta.llama3-2-1b-instruct-v1:0", AcceptsImages::Yes),
    ("meta.llama3-2-3b-instruct-v1:0", AcceptsImages::Yes),
    ("meta.llama3-2-11b-instruct-v1:0", AcceptsImages::Yes),
    ("meta.llama3-2-90b-instruct-v1:0", AcceptsImages::Yes),
    ("meta.llama3-3-70b-instruct-v1:0", AcceptsImages::Yes),
];

/// The models Bedrock serves only through an inference profile.
const PROFILE_ONLY_MODELS: &[&str] = &["meta.llama3-3-70b-instruct-v1:0"];

/// Whether a Llama body may carry `images`, a list of base64 strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AcceptsImages {
    Yes,
    No,
}

/// `max_gen_len` when the request gives none [D].
const DEFAULT_MAX_GEN_LEN: u32 = 512;

/// The largest `max_gen_len` [D].
const MAX_GEN_LEN_LIMIT: i64 = 2048;

impl Family for MetaLlama3 {
    fn id(&self) -> &'static str {
        "meta_llama3"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.iter().any(|(model_id, _)| *model_id == base_model_id)
    }

    fn needs_inference_profile(&self, base_model_id: &str) -> bool {
        PROFILE_ONLY_MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let accepts_images = MODELS
            .iter()
            .find(|(model_id, _)| *model_id == base_model_id)
            .map_or(AcceptsImages::No, |(_, accepts_images)| *accepts_images);
        parse_llama_request(body, accepts_images)
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

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct LlamaGeneration<'a> {
    generation: &'a str,
    prompt_token_count: Option<u32>,
    generation_token_count: u32,
    stop_reason: Option<&'static str>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

/// Checks a Llama body and reads the prompt and `max_gen_len`.
pub(super) fn parse_llama_request(
    body: &Value,
    accepts_images: AcceptsImages,
) -> Result<GenerationRequest, BedrockError> {
    let mut properties = vec![
        ("prompt", Schema::String),
        ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ("max_gen_len", Schema::Integer { minimum: 1, maximum: MAX_GEN_LEN_LIMIT }),
    ];
    if accepts_images == AcceptsImages::Yes {
        properties.push(("images", Schema::StringArray));
    }
    validate(&Schema::Object { properties, required: vec!["prompt"] }, body)?;
    Ok(GenerationRequest {
        prompt: string_value(body, "prompt"),
        max_tokens: u32_value(body.get("max_gen_len")).unwrap_or(DEFAULT_MAX_GEN_LEN),
        stop_sequences: Vec::new(),
        space_before_first_token: false,
        ..GenerationRequest::default()
    })
}

pub(super) fn llama_response_body(completion: &Completion) -> Vec<u8> {
    json_bytes(&LlamaGeneration {
        generation: &completion.text(),
        prompt_token_count: Some(completion.n_input_tokens),
        generation_token_count: completion.n_output_tokens(),
        stop_reason: Some(stop_or_length(&completion.stop)),
        invocation_metrics: None,
    })
}

/// One chunk per token, then an empty one carrying the stop reason.
pub(super) fn llama_n_stream_chunks(completion: &Completion) -> usize {
    completion.tokens.len() + 1
}

/// `prompt_token_count` is set on the first chunk only; `generation_token_count` is the running
/// total.
pub(super) fn llama_stream_chunk(
    completion: &Completion,
    chunk_idx: usize,
    metrics: Option<InvocationMetrics>,
) -> Vec<u8> {
    let token = completion.tokens.get(chunk_idx);
    let n_generated = chunk_idx.saturating_add(usize::from(token.is_some()));
    json_bytes(&LlamaGeneration {
        generation: token.map_or("", String::as_str),
        prompt_token_count: (chunk_idx == 0).then_some(completion.n_input_tokens),
        generation_token_count: u32::try_from(n_generated).unwrap_or(u32::MAX),
        stop_reason: token.is_none().then(|| stop_or_length(&completion.stop)),
        invocation_metrics: metrics,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        MetaLlama3.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request() {
        let body = json!({"prompt": "hi there", "temperature": 0.5, "top_p": 0.9,
            "max_gen_len": 20});
        let request = parse("meta.llama3-8b-instruct-v1:0", body).unwrap();
        assert_eq!(request.prompt, "hi there");
        assert_eq!(request.max_tokens, 20);
        let request = parse("meta.llama3-8b-instruct-v1:0", json!({"prompt": "x"})).unwrap();
        assert_eq!(request.max_tokens, 512);
    }

    #[test]
    fn rejects_bad_requests() {
        let llama3 = "meta.llama3-8b-instruct-v1:0";
        assert_eq!(
            parse(llama3, json!({"prompt": "x", "stop": ["a"]})).unwrap_err(),
            "Malformed input request: #: extraneous key [stop] is not permitted, please reformat \
             your input and try again."
        );
        assert!(parse(llama3, json!({"prompt": "x", "max_gen_len": 0})).is_err());
        assert!(parse(llama3, json!({"prompt": "x", "max_gen_len": 2049})).is_err());
        assert!(parse(llama3, json!({"prompt": "x", "images": []})).is_err());
        assert!(
            parse("meta.llama3-2-11b-instruct-v1:0", json!({"prompt": "x", "images": []})).is_ok()
        );
        assert!(parse(llama3, json!({"max_gen_len": 5})).is_err());
    }

    #[test]
    fn answer_and_stream_shapes() {
        let request = parse(
            "meta.llama3-8b-instruct-v1:0",
            json!({"prompt": "hello there",
            "max_gen_len": 2}),
        )
        .unwrap();
        let completion = generate(&request);
        let response: Value =
            serde_json::from_slice(&MetaLlama3.response_body(&completion)).unwrap();
        assert_eq!(response["prompt_token_count"], 2);
        assert_eq!(response["generation_token_count"], 2);
        assert_eq!(response["stop_reason"], "length");
        assert_eq!(response["generation"], completion.text());

        assert_eq!(MetaLlama3.n_stream_chunks(&completion), 3);
        let first = String::from_utf8(MetaLlama3.stream_chunk(&completion, 0, None)).unwrap();
        assert_eq!(
            first,
            format!(
                r#"{{"generation":"{}","prompt_token_count":2,"generation_token_count":1,"stop_reason":null}}"#,
                completion.tokens[0]
            )
        );
        let last = String::from_utf8(MetaLlama3.stream_chunk(&completion, 2, None)).unwrap();
        assert_eq!(
            last,
            r#"{"generation":"","prompt_token_count":null,"generation_token_count":2,"stop_reason":"length"}"#
        );
    }
}
