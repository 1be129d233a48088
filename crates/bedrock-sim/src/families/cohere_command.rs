//! Cohere Command text generation (`command-text-v14`, `command-light-text-v14`): request
//! checks and answer shapes of wire document §4.7.
//!
//! - `max_tokens` defaults to 20; `stop_sequences` takes at most 4 strings, and the answer
//!   ends before the first one it meets with `finish_reason` `COMPLETE`, as at a natural end.
//!   `MAX_TOKENS` is the other reason.
//! - Answer: `{"id", "generations": [{"id", "text", "finish_reason"}], "prompt"}`, no usage
//!   (the token headers carry it). `num_generations` is checked but one generation is
//!   answered.
//! - Stream: Cohere's generate-stream events, one `{"text", "is_finished": false}` per token,
//!   then `{"is_finished": true, "finish_reason", "response": <the InvokeModel answer>}` with
//!   the invocation metrics.
//! - `"stream": true` is what the Bedrock documentation asks for on
//!   InvokeModelWithResponseStream. Bedrock does not refuse the operation without it: AWS's
//!   own streaming example sends no `stream` and reads `generations[0].text` from the chunks,
//!   that is, the whole answer arrives as one chunk in the InvokeModel shape. The simulator
//!   streams token by token whatever `stream` says, because its family API does not carry a
//!   request flag to the stream; on InvokeModel the flag is ignored too.
//! - Not echoed: `prompt` is `""`, as the answer methods see only the completion.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    complete_or_max_tokens, string_array, string_value, u32_value, uuid_from,
};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};

/// The Cohere Command family.
pub(crate) struct CohereCommand;

const MODELS: &[&str] = &["cohere.command-text-v14", "cohere.command-light-text-v14"];

/// `max_tokens` when the request gives none.
const DEFAULT_MAX_TOKENS: u32 = 20;

impl Family for CohereCommand {
    fn id(&self) -> &'static str {
        "cohere_command"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        check(&request_schema(), body, ViolationReport::Counted)?;
        Ok(GenerationRequest {
            prompt: string_value(body, "prompt"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences: string_array(body.get("stop_sequences")),
            space_before_first_token: true,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&generate_response(completion, &completion.text()))
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // One chunk per token, then the one that closes the stream.
        completion.tokens.len() + 1
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let text = completion.text();
        let chunk = match completion.tokens.get(chunk_idx) {
            Some(token) => StreamChunk {
                text: Some(token),
                is_finished: false,
                finish_reason: None,
                response: None,
                invocation_metrics: metrics,
            },
            None => StreamChunk {
                text: None,
                is_finished: true,
                finish_reason: Some(complete_or_max_tokens(&completion.stop)),
                response: Some(generate_response(completion, &text)),
                invocation_metrics: metrics,
            },
        };
        json_bytes(&chunk)
    }
}

/// The InvokeModel answer, also the `response` of the last stream chunk.
#[derive(Serialize)]
struct GenerateResponse<'a> {
    id: String,
    generations: [Generation<'a>; 1],
    prompt: &'static str,
}

#[derive(Serialize)]
struct Generation<'a> {
    id: String,
    text: &'a str,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct StreamChunk<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    is_finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<GenerateResponse<'a>>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn generate_response<'a>(completion: &Completion, text: &'a str) -> GenerateResponse<'a> {
    let seed = fnv1a_64(text.as_bytes());
    GenerateResponse {
        id: uuid_from(seed, 1),
        generations: [Generation {
            id: uuid_from(seed, 2),
            text,
            finish_reason: complete_or_max_tokens(&completion.stop),
        }],
        prompt: "",
    }
}

fn request_schema() -> Shape {
    let text = || string_up_to(usize::MAX);
    Shape::Object {
        properties: vec![
            ("prompt", text()),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 5.0 }),
            ("p", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("k", Shape::Number { minimum: 0.0, maximum: 500.0 }),
            ("max_tokens", Shape::Integer { minimum: 1, maximum: 4096 }),
            ("stop_sequences", array_of(text(), 0, 4)),
            ("return_likelihoods", Shape::Enum(&["GENERATION", "ALL", "NONE"])),
            ("stream", Shape::Boolean),
            ("num_generations", Shape::Integer { minimum: 1, maximum: 5 }),
            ("logit_bias", Shape::AnyObject),
            ("truncate", Shape::Enum(&["NONE", "START", "END"])),
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
        CohereCommand
            .parse_request("cohere.command-text-v14", &body)
            .map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request() {
        let request = parse(json!({"prompt": "Tell me a joke", "max_tokens": 200,
            "temperature": 0.5, "p": 0.5, "k": 0, "stop_sequences": ["\n\n"], "stream": true,
            "return_likelihoods": "NONE", "num_generations": 1, "logit_bias": {"11": -10},
            "truncate": "END"}))
        .unwrap();
        assert_eq!(request.max_tokens, 200);
        assert_eq!(request.stop_sequences, vec!["\n\n".to_owned()]);
        assert!(request.space_before_first_token);
        assert_eq!(parse(json!({"prompt": "x"})).unwrap().max_tokens, 20);
    }

    #[test]
    fn rejects_bad_requests() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        let cases = [
            (
                json!({"prompt": "x", "stream": "yes"}),
                "#/stream: expected type: Boolean, found: String",
            ),
            (
                json!({"prompt": "x", "stop_sequences": ["a", "b", "c", "d", "e"]}),
                "#/stop_sequences: expected maximum item count: 4, found: 5",
            ),
            (
                json!({"prompt": "x", "truncate": "MIDDLE"}),
                "#/truncate: MIDDLE is not a valid enum value",
            ),
            (
                json!({"prompt": "x", "temperature": 5.5}),
                "#/temperature: 5.5 is not less or equal to 5",
            ),
            (
                json!({"prompt": "x", "max_tokens": 0}),
                "#/max_tokens: 0 is not greater or equal to 1",
            ),
            (json!({"inputText": "x"}), "2 schema violations found"),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), detail(expected), "{body}");
        }
    }

    #[test]
    fn answer_and_stream_shapes() {
        let completion = generate(&parse(json!({"prompt": "hi there", "max_tokens": 1})).unwrap());
        let response: Value =
            serde_json::from_slice(&CohereCommand.response_body(&completion)).unwrap();
        assert_eq!(response["generations"][0]["finish_reason"], "MAX_TOKENS");
        assert_eq!(response["generations"][0]["text"], completion.text());
        assert_eq!(response["id"].as_str().unwrap().len(), 36);

        assert_eq!(CohereCommand.n_stream_chunks(&completion), 2);
        let first = String::from_utf8(CohereCommand.stream_chunk(&completion, 0, None)).unwrap();
        assert_eq!(first, format!(r#"{{"text":"{}","is_finished":false}}"#, completion.tokens[0]));
        let last: Value =
            serde_json::from_slice(&CohereCommand.stream_chunk(&completion, 1, None)).unwrap();
        assert_eq!(last["is_finished"], true);
        assert_eq!(last["finish_reason"], "MAX_TOKENS");
        assert_eq!(last["response"], response);
        assert!(last.get("text").is_none());
    }
}
