//! Amazon Titan Text (Express, Lite, Premier): request checks and answer shapes of wire
//! document §4.1.
//!
//! Stop sequences: any list of strings is honoured. Bedrock has refused every Titan stop
//! but `User:` and runs of `|` (`Malformed input request: string [Human:] does not match
//! pattern ^(\|+|User:)$, please reformat your input and try again.`, boto/boto3#3993 of
//! 2024-01 and reports up to mid-2024), but no current source confirms it still does: the
//! user guide that once said "you can only specify one of the following options: `|`,
//! `User:`" (aws/aws-sdk#692) no longer states any limit
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-text.html>).
//! So the simulator does not enforce it; the gateway sends natively only what that
//! pattern allows, at most one, and emulates the rest either way.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{string_array, string_value, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, StopCause};
use crate::schema::{Schema, validate};

/// The Titan Text family.
pub(crate) struct TitanText;

/// Each simulated model and its largest `maxTokenCount`.
const MODELS: &[(&str, i64)] = &[
    ("amazon.titan-text-express-v1", 8192),
    ("amazon.titan-text-lite-v1", 4096),
    ("amazon.titan-text-premier-v1:0", 3072),
];

/// `maxTokenCount` when the request gives none.
const DEFAULT_MAX_TOKEN_COUNT: u32 = 512;

impl Family for TitanText {
    fn id(&self) -> &'static str {
        "titan_text"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.iter().any(|(model_id, _)| *model_id == base_model_id)
    }

    fn parse_request(
        &self,
        base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        let max_token_limit = MODELS
            .iter()
            .find(|(model_id, _)| *model_id == base_model_id)
            .map_or(DEFAULT_MAX_TOKEN_COUNT.into(), |(_, limit)| *limit);
        validate(&request_schema(max_token_limit), body)?;

        let config = body.get("textGenerationConfig");
        let max_tokens = u32_value(config.and_then(|config| config.get("maxTokenCount")))
            .unwrap_or(DEFAULT_MAX_TOKEN_COUNT);
        Ok(GenerationRequest {
            prompt: string_value(body, "inputText"),
            max_tokens,
            stop_sequences: string_array(config.and_then(|config| config.get("stopSequences"))),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&TitanResponse {
            input_text_token_count: completion.n_input_tokens,
            results: [TitanResult {
                token_count: completion.n_output_tokens(),
                output_text: completion.text(),
                completion_reason: completion_reason(&completion.stop),
            }],
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        completion.tokens.len().max(1)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let is_last = chunk_idx + 1 >= self.n_stream_chunks(completion);
        json_bytes(&TitanStreamChunk {
            output_text: completion.tokens.get(chunk_idx).map_or("", String::as_str),
            index: 0,
            total_output_text_token_count: is_last.then(|| completion.n_output_tokens()),
            completion_reason: is_last.then(|| completion_reason(&completion.stop)),
            input_text_token_count: (chunk_idx == 0).then_some(completion.n_input_tokens),
            invocation_metrics: metrics,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    input_text_token_count: u32,
    results: [TitanResult; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanResult {
    token_count: u32,
    output_text: String,
    completion_reason: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanStreamChunk<'a> {
    output_text: &'a str,
    index: u32,
    total_output_text_token_count: Option<u32>,
    completion_reason: Option<&'static str>,
    input_text_token_count: Option<u32>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn request_schema(max_token_limit: i64) -> Schema {
    Schema::Object {
        properties: vec![
            ("inputText", Schema::String),
            (
                "textGenerationConfig",
                Schema::Object {
                    properties: vec![
                        ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
                        ("topP", Schema::Number { minimum: 0.0, maximum: 1.0 }),
                        ("maxTokenCount", Schema::Integer { minimum: 0, maximum: max_token_limit }),
                        ("stopSequences", Schema::StringArray),
                    ],
                    required: vec![],
                },
            ),
        ],
        required: vec!["inputText"],
    }
}

fn completion_reason(stop: &StopCause) -> &'static str {
    match stop {
        StopCause::EndOfText => "FINISH",
        StopCause::MaxTokens => "LENGTH",
        StopCause::StopSequence(_) => "STOP_CRITERIA_MET",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const EXPRESS: &str = "amazon.titan-text-express-v1";

    fn parse(model_id: &str, body: Value) -> Result<GenerationRequest, String> {
        TitanText.parse_request(model_id, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request() {
        let body = json!({"inputText": "User: hi\nBot:", "textGenerationConfig":
            {"temperature": 0.5, "topP": 0.9, "maxTokenCount": 20, "stopSequences": ["User:"]}});
        let request = parse(EXPRESS, body).unwrap();
        assert_eq!(request.prompt, "User: hi\nBot:");
        assert_eq!(request.max_tokens, 20);
        assert_eq!(request.stop_sequences, vec!["User:".to_owned()]);
        assert_eq!(parse(EXPRESS, json!({"inputText": "x"})).unwrap().max_tokens, 512);
    }

    #[test]
    fn any_stop_list_is_honoured() {
        let prompt = "Describe the harbor at dawn";
        let full = generate(&parse(EXPRESS, json!({"inputText": prompt})).unwrap());
        let words: Vec<&str> = full.tokens.iter().map(|t| t.trim()).collect();
        let stop_word = words[words.len() / 2].to_owned();
        let body = json!({"inputText": prompt, "textGenerationConfig":
            {"stopSequences": ["Human:", stop_word, "|", "User:"]}});
        let request = parse(EXPRESS, body).unwrap();
        assert_eq!(request.stop_sequences.len(), 4);
        let completion = generate(&request);
        assert_eq!(completion.stop, StopCause::StopSequence(stop_word.clone()));
        let response: Value =
            serde_json::from_slice(&TitanText.response_body(&completion)).unwrap();
        assert_eq!(response["results"][0]["completionReason"], "STOP_CRITERIA_MET");
        let text = response["results"][0]["outputText"].as_str().unwrap();
        assert!(!text.contains(&stop_word) && full.text().starts_with(text), "{text:?}");
    }

    #[test]
    fn max_token_count_limit_depends_on_the_model() {
        let body = json!({"inputText": "x", "textGenerationConfig": {"maxTokenCount": 5000}});
        assert!(parse(EXPRESS, body.clone()).is_ok());
        assert_eq!(
            parse("amazon.titan-text-lite-v1", body).unwrap_err(),
            "Malformed input request: #/textGenerationConfig/maxTokenCount: 5000 is not less or \
             equal to 4096, please reformat your input and try again."
        );
        let body = json!({"inputText": "x", "textGenerationConfig": {"maxTokenCount": 3073}});
        assert!(parse("amazon.titan-text-premier-v1:0", body).is_err());
    }

    #[test]
    fn claude_body_is_rejected() {
        let body = json!({"prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 5});
        assert_eq!(
            parse(EXPRESS, body).unwrap_err(),
            "Malformed input request: 3 schema violations found, please reformat your input and \
             try again."
        );
    }

    #[test]
    fn response_and_stream_shapes() {
        let completion = generate(
            &parse(
                EXPRESS,
                json!({"inputText": "hi there",
            "textGenerationConfig": {"maxTokenCount": 2}}),
            )
            .unwrap(),
        );
        let response: Value =
            serde_json::from_slice(&TitanText.response_body(&completion)).unwrap();
        assert_eq!(response["inputTextTokenCount"], 2);
        assert_eq!(response["results"][0]["tokenCount"], 2);
        assert_eq!(response["results"][0]["completionReason"], "LENGTH");
        assert_eq!(response["results"][0]["outputText"], completion.text());

        assert_eq!(TitanText.n_stream_chunks(&completion), 2);
        let first = String::from_utf8(TitanText.stream_chunk(&completion, 0, None)).unwrap();
        assert_eq!(
            first,
            format!(
                r#"{{"outputText":"{}","index":0,"totalOutputTextTokenCount":null,"completionReason":null,"inputTextTokenCount":2}}"#,
                completion.tokens[0]
            )
        );
        let metrics = InvocationMetrics {
            input_token_count: 2,
            output_token_count: 2,
            invocation_latency: 7,
            first_byte_latency: 3,
        };
        let last =
            String::from_utf8(TitanText.stream_chunk(&completion, 1, Some(metrics))).unwrap();
        assert_eq!(
            last,
            format!(
                r#"{{"outputText":"{}","index":0,"totalOutputTextTokenCount":2,"completionReason":"LENGTH","inputTextTokenCount":null,"amazon-bedrock-invocationMetrics":{{"inputTokenCount":2,"outputTokenCount":2,"invocationLatency":7,"firstByteLatency":3}}}}"#,
                completion.tokens[1]
            )
        );
    }

    #[test]
    fn empty_answer_still_has_one_chunk() {
        let completion = generate(
            &parse(
                EXPRESS,
                json!({"inputText": "hi",
            "textGenerationConfig": {"maxTokenCount": 0}}),
            )
            .unwrap(),
        );
        assert_eq!(TitanText.n_stream_chunks(&completion), 1);
        let chunk: Value =
            serde_json::from_slice(&TitanText.stream_chunk(&completion, 0, None)).unwrap();
        assert_eq!(chunk["outputText"], "");
        assert_eq!(chunk["inputTextTokenCount"], 1);
        assert_eq!(chunk["totalOutputTextTokenCount"], 0);
    }
}
