//! DeepSeek-R1: request checks and answer shapes of wire document §4.11. Bedrock serves it only
//! through an inference profile (`us.deepseek.r1-v1:0`) [D].
//!
//! Model: `deepseek.r1-v1:0`.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::anthropic_claude_messages::string_array;
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, StopCause};
use crate::schema::{Schema, as_integer, malformed_input, validate};

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
        let n_stop_sequences = body.get("stop").and_then(Value::as_array).map_or(0, Vec::len);
        if n_stop_sequences > MAX_STOP_SEQUENCES {
            return Err(malformed_input(&format!(
                "#/stop: expected maximum item count: {MAX_STOP_SEQUENCES}, found: \
                 {n_stop_sequences}"
            )));
        }
        Ok(GenerationRequest {
            prompt: body.get("prompt").and_then(Value::as_str).unwrap_or_default().to_owned(),
            max_tokens: body
                .get("max_tokens")
                .and_then(as_integer)
                .and_then(|max_tokens| u32::try_from(max_tokens).ok())
                .unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences: string_array(body.get("stop")),
            space_before_first_token: false,
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&DeepseekChoices {
            choices: [DeepseekChoice {
                text: &completion.text(),
                stop_reason: Some(stop_reason(&completion.stop)),
            }],
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
        let token = completion.tokens.get(chunk_idx);
        json_bytes(&DeepseekChoices {
            choices: [DeepseekChoice {
                text: token.map_or("", String::as_str),
                stop_reason: token.is_none().then(|| stop_reason(&completion.stop)),
            }],
            invocation_metrics: metrics,
        })
    }
}

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct DeepseekChoices<'a> {
    choices: [DeepseekChoice<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct DeepseekChoice<'a> {
    text: &'a str,
    stop_reason: Option<&'static str>,
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

fn stop_reason(stop: &StopCause) -> &'static str {
    match stop {
        StopCause::EndOfText | StopCause::StopSequence(_) => "stop",
        StopCause::MaxTokens => "length",
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
