//! Anthropic Claude Text Completions (`claude-v2`, `claude-v2:1`, `claude-instant-v1`):
//! request checks and answer shapes of wire document §4.3.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{string_array, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, StopCause};
use crate::schema::{Schema, validate};

/// The Claude Text Completions family.
pub(crate) struct AnthropicClaudeText;

const MODELS: &[&str] =
    &["anthropic.claude-v2", "anthropic.claude-v2:1", "anthropic.claude-instant-v1"];

/// The turn marker a prompt starts with; Claude also stops on it when its answer ends.
const HUMAN_TURN: &str = "\n\nHuman:";

/// The turn marker a prompt ends with.
const ASSISTANT_TURN: &str = "\n\nAssistant:";

/// The answer to a prompt without the two turn markers. The `\n` are literal backslash-n,
/// as in Bedrock's message.
const INVALID_PROMPT_MESSAGE: &str = r#"Invalid prompt: prompt must start with "\n\nHuman:" turn, prompt must end with "\n\nAssistant:" turn"#;

impl Family for AnthropicClaudeText {
    fn id(&self) -> &'static str {
        "anthropic_claude_text"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        validate(&request_schema(), body)?;
        let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or_default();
        if !prompt.starts_with(HUMAN_TURN) || !prompt.ends_with(ASSISTANT_TURN) {
            return Err(BedrockError::validation(INVALID_PROMPT_MESSAGE));
        }
        Ok(GenerationRequest {
            prompt: prompt.to_owned(),
            max_tokens: u32_value(body.get("max_tokens_to_sample")).unwrap_or_default(),
            stop_sequences: string_array(body.get("stop_sequences")),
            space_before_first_token: true,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let (stop_reason, stop) = stop_reason(&completion.stop);
        json_bytes(&ClaudeCompletion {
            kind: "completion",
            completion: &completion.text(),
            stop_reason: Some(stop_reason),
            stop,
            invocation_metrics: None,
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // One chunk per token, then one carrying the stop reason.
        completion.tokens.len() + 1
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let chunk = match completion.tokens.get(chunk_idx) {
            Some(token) => ClaudeCompletion {
                kind: "completion",
                completion: token,
                stop_reason: None,
                stop: None,
                invocation_metrics: metrics,
            },
            None => {
                let (stop_reason, stop) = stop_reason(&completion.stop);
                ClaudeCompletion {
                    kind: "completion",
                    completion: "",
                    stop_reason: Some(stop_reason),
                    stop,
                    invocation_metrics: metrics,
                }
            }
        };
        json_bytes(&chunk)
    }
}

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct ClaudeCompletion<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    completion: &'a str,
    stop_reason: Option<&'static str>,
    stop: Option<&'a str>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn request_schema() -> Schema {
    Schema::Object {
        properties: vec![
            ("prompt", Schema::String),
            ("max_tokens_to_sample", Schema::Integer { minimum: 0, maximum: 4096 }),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("top_k", Schema::Integer { minimum: 0, maximum: 500 }),
            ("stop_sequences", Schema::StringArray),
            ("anthropic_version", Schema::String),
        ],
        required: vec!["prompt", "max_tokens_to_sample"],
    }
}

/// `stop_reason` and `stop`: a natural end is the model writing the next human turn.
fn stop_reason(stop: &StopCause) -> (&'static str, Option<&str>) {
    match stop {
        StopCause::EndOfText => ("stop_sequence", Some(HUMAN_TURN)),
        StopCause::MaxTokens => ("max_tokens", None),
        StopCause::StopSequence(sequence) => ("stop_sequence", Some(sequence.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const PROMPT: &str = "\n\nHuman: Tell me a joke\n\nAssistant:";

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        AnthropicClaudeText
            .parse_request("anthropic.claude-v2", &body)
            .map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request() {
        let request = parse(json!({"prompt": PROMPT, "max_tokens_to_sample": 200,
            "temperature": 0.5, "top_p": 1, "top_k": 250, "stop_sequences": ["\n\nHuman:"],
            "anthropic_version": "bedrock-2023-05-31"}))
        .unwrap();
        assert_eq!(request.max_tokens, 200);
        assert_eq!(request.stop_sequences, vec!["\n\nHuman:".to_owned()]);
        assert!(request.space_before_first_token);
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(
            parse(json!({"prompt": "Tell me a joke", "max_tokens_to_sample": 5})).unwrap_err(),
            INVALID_PROMPT_MESSAGE
        );
        assert!(INVALID_PROMPT_MESSAGE.contains(r#""\n\nHuman:""#));
        assert_eq!(
            parse(json!({"prompt": PROMPT})).unwrap_err(),
            "Malformed input request: #: required key [max_tokens_to_sample] not found, please \
             reformat your input and try again."
        );
        assert_eq!(
            parse(json!({"inputText": "hi"})).unwrap_err(),
            "Malformed input request: 3 schema violations found, please reformat your input and \
             try again."
        );
        assert!(parse(json!({"prompt": PROMPT, "max_tokens_to_sample": 4097})).is_err());
        assert!(parse(json!({"prompt": PROMPT, "max_tokens_to_sample": 5, "top_k": 501})).is_err());
        assert!(
            parse(json!({"prompt": PROMPT, "max_tokens_to_sample": 5, "top_p": -0.1})).is_err()
        );
    }

    #[test]
    fn natural_end_is_the_human_stop_sequence() {
        let completion =
            generate(&parse(json!({"prompt": PROMPT, "max_tokens_to_sample": 500})).unwrap());
        let response: Value =
            serde_json::from_slice(&AnthropicClaudeText.response_body(&completion)).unwrap();
        assert_eq!(response["type"], "completion");
        assert_eq!(response["stop_reason"], "stop_sequence");
        assert_eq!(response["stop"], "\n\nHuman:");
        assert!(response["completion"].as_str().unwrap().starts_with(' '));
    }

    #[test]
    fn stream_shapes() {
        let completion =
            generate(&parse(json!({"prompt": PROMPT, "max_tokens_to_sample": 1})).unwrap());
        assert_eq!(AnthropicClaudeText.n_stream_chunks(&completion), 2);
        let first =
            String::from_utf8(AnthropicClaudeText.stream_chunk(&completion, 0, None)).unwrap();
        assert_eq!(
            first,
            format!(
                r#"{{"type":"completion","completion":"{}","stop_reason":null,"stop":null}}"#,
                completion.tokens[0]
            )
        );
        let last =
            String::from_utf8(AnthropicClaudeText.stream_chunk(&completion, 1, None)).unwrap();
        assert_eq!(
            last,
            r#"{"type":"completion","completion":"","stop_reason":"max_tokens","stop":null}"#
        );
    }
}
