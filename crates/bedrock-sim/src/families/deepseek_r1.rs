//! DeepSeek-R1: request checks and answer shapes of wire document §4.11. Bedrock serves it only
//! through an inference profile (`us.deepseek.r1-v1:0`) [D].
//!
//! Model: `deepseek.r1-v1:0`.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    TextWithStopReason, check_max_items, string_array, string_value, u32_value,
};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest};
use crate::schema::{Schema, validate};

/// The DeepSeek-R1 family.
pub(crate) struct DeepseekR1;

const MODEL: &str = "deepseek.r1-v1:0";

/// `max_tokens` when the request gives none: the documented limit for good answers [D].
const DEFAULT_MAX_TOKENS: u32 = 8192;

/// The largest `max_tokens` [D].
const MAX_TOKENS_LIMIT: i64 = 32_768;

/// The most stop sequences a request may give [D].
const MAX_STOP_SEQUENCES: usize = 10;

impl Family for DeepseekR1 {
    fn id(&self) -> &'static str {
        "deepseek_r1"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id == MODEL
    }

    fn needs_inference_profile(&self, _base_model_id: &str) -> bool {
        true
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        validate(&request_schema(), body)?;
        check_max_items(body, "stop", MAX_STOP_SEQUENCES)?;
        Ok(GenerationRequest {
            prompt: string_value(body, "prompt"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences: string_array(body.get("stop")),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        json_bytes(&DeepseekChoices {
            choices: [TextWithStopReason::answer(completion, &text)],
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
        json_bytes(&DeepseekChoices {
            choices: [TextWithStopReason::stream_chunk(completion, chunk_idx)],
            invocation_metrics: metrics,
        })
    }
}

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct DeepseekChoices<'a> {
    choices: [TextWithStopReason<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn request_schema() -> Schema {
    Schema::Object {
        properties: vec![
            ("prompt", Schema::String),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("max_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
            ("stop", Schema::StringArray),
        ],
        required: vec!["prompt"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        DeepseekR1.parse_request(MODEL, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_and_checks_the_request() {
        let prompt = "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n";
        let request = parse(json!({"prompt": prompt, "max_tokens": 32_768, "stop": ["</answer>"],
            "temperature": 0.6, "top_p": 0.9}))
        .unwrap();
        assert_eq!(request.max_tokens, 32_768);
        assert_eq!(request.stop_sequences, vec!["</answer>".to_owned()]);
        assert_eq!(parse(json!({"prompt": prompt})).unwrap().max_tokens, 8192);

        assert!(parse(json!({"prompt": prompt, "max_tokens": 32_769})).is_err());
        assert!(parse(json!({"prompt": prompt, "max_tokens": 0})).is_err());
        assert!(parse(json!({"prompt": prompt, "temperature": 1.01})).is_err());
        assert!(parse(json!({"prompt": prompt, "stop": vec!["a"; 10]})).is_ok());
        assert!(parse(json!({"prompt": prompt, "stop": vec!["a"; 11]})).is_err());
        assert!(DeepseekR1.needs_inference_profile(MODEL));
    }

    #[test]
    fn answer_and_stream_shapes() {
        let completion = generate(&parse(json!({"prompt": "hi", "max_tokens": 1})).unwrap());
        let response = String::from_utf8(DeepseekR1.response_body(&completion)).unwrap();
        assert_eq!(
            response,
            format!(r#"{{"choices":[{{"text":"{}","stop_reason":"length"}}]}}"#, completion.text())
        );
        let last = String::from_utf8(DeepseekR1.stream_chunk(&completion, 1, None)).unwrap();
        assert_eq!(last, r#"{"choices":[{"text":"","stop_reason":"length"}]}"#);
    }
}
