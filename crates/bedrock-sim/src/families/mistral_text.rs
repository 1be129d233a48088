//! Mistral AI text completion (`[INST]` prompt body): request checks and answer shapes of wire
//! document §4.6.
//!
//! Models: `mistral.mistral-7b-instruct-v0:2`, `mistral.mixtral-8x7b-instruct-v0:1`,
//! `mistral.mistral-large-2402-v1:0`, `mistral.mistral-small-2402-v1:0`.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    TextWithStopReason, check_max_items, string_array, string_value, u32_value,
};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest};
use crate::schema::{Schema, validate};

/// The Mistral text completion family.
pub(crate) struct MistralText;

/// Each model, its default `max_tokens` and its largest `max_tokens` [D].
const MODELS: &[(&str, u32, i64)] = &[
    ("mistral.mistral-7b-instruct-v0:2", 512, 8192),
    ("mistral.mixtral-8x7b-instruct-v0:1", 512, 4096),
    ("mistral.mistral-large-2402-v1:0", 8192, 8192),
    ("mistral.mistral-small-2402-v1:0", 8192, 8192),
];

/// The most stop sequences a request may give.
const MAX_STOP_SEQUENCES: usize = 10;

impl Family for MistralText {
    fn id(&self) -> &'static str {
        "mistral_text"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.iter().any(|(model_id, _, _)| *model_id == base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let (_, default_max_tokens, max_tokens_limit) = MODELS
            .iter()
            .find(|(model_id, _, _)| *model_id == base_model_id)
            .copied()
            .unwrap_or(("", 512, 8192));
        validate(&request_schema(max_tokens_limit), body)?;
        check_max_items(body, "stop", MAX_STOP_SEQUENCES)?;
        Ok(GenerationRequest {
            prompt: string_value(body, "prompt"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(default_max_tokens),
            stop_sequences: string_array(body.get("stop")),
            // Mistral's answers to an `[INST]` prompt start with a space [D].
            space_before_first_token: true,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        json_bytes(&MistralOutputs {
            outputs: [TextWithStopReason::answer(completion, &text)],
            invocation_metrics: None,
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // One chunk per token, then an empty one carrying the stop reason.
        completion.tokens.len() + 1
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        json_bytes(&MistralOutputs {
            outputs: [TextWithStopReason::stream_chunk(completion, chunk_idx)],
            invocation_metrics: metrics,
        })
    }
}

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct MistralOutputs<'a> {
    outputs: [TextWithStopReason<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn request_schema(max_tokens_limit: i64) -> Schema {
    Schema::Object {
        properties: vec![
            ("prompt", Schema::String),
            ("max_tokens", Schema::Integer { minimum: 1, maximum: max_tokens_limit }),
            ("stop", Schema::StringArray),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_k", Schema::Integer { minimum: 1, maximum: 200 }),
        ],
        required: vec!["prompt"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const MIXTRAL: &str = "mistral.mixtral-8x7b-instruct-v0:1";

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        MistralText.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request_with_per_model_limits() {
        let prompt = "<s>[INST] What is your favourite condiment? [/INST]";
        let request = parse(MIXTRAL, json!({"prompt": prompt, "stop": ["\n\n"]})).unwrap();
        assert_eq!(request.max_tokens, 512);
        assert_eq!(request.stop_sequences, vec!["\n\n".to_owned()]);
        assert!(request.space_before_first_token);
        let large = parse("mistral.mistral-large-2402-v1:0", json!({"prompt": prompt})).unwrap();
        assert_eq!(large.max_tokens, 8192);

        assert!(parse(MIXTRAL, json!({"prompt": prompt, "max_tokens": 4097})).is_err());
        assert!(
            parse(
                "mistral.mistral-7b-instruct-v0:2",
                json!({"prompt": prompt,
            "max_tokens": 8192})
            )
            .is_ok()
        );
        assert!(parse(MIXTRAL, json!({"prompt": prompt, "top_k": 201})).is_err());
        assert_eq!(
            parse(MIXTRAL, json!({"prompt": prompt, "stop": vec!["x"; 11]})).unwrap_err(),
            "Malformed input request: #/stop: expected maximum item count: 10, found: 11, please \
             reformat your input and try again."
        );
    }

    #[test]
    fn answer_and_stream_shapes() {
        let completion = generate(
            &parse(MIXTRAL, json!({"prompt": "[INST] hi [/INST]", "max_tokens": 1})).unwrap(),
        );
        let response = String::from_utf8(MistralText.response_body(&completion)).unwrap();
        assert_eq!(
            response,
            format!(r#"{{"outputs":[{{"text":"{}","stop_reason":"length"}}]}}"#, completion.text())
        );
        assert_eq!(MistralText.n_stream_chunks(&completion), 2);
        let last = String::from_utf8(MistralText.stream_chunk(&completion, 1, None)).unwrap();
        assert_eq!(last, r#"{"outputs":[{"text":"","stop_reason":"length"}]}"#);
    }
}
