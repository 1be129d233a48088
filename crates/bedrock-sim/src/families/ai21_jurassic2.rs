//! AI21 Labs Jurassic-2 (`j2-mid-v1`, `j2-ultra-v1`): request checks and answer shapes of
//! wire document §4.9.
//!
//! - `maxTokens` defaults to 200. The penalty objects take a `scale` and the `applyTo*`
//!   switches.
//! - Answer: `{"id", "prompt": {"text", "tokens"}, "completions": [{"data": {"text", "tokens"},
//!   "finishReason"}]}`. Every output token is listed with its `generatedToken` (`▁` for a
//!   leading space, a made-up log probability), `topTokens` and its `textRange` in the text.
//!   `finishReason` is `{"reason": "endoftext"}`, `{"reason": "length", "length": n}` or
//!   `{"reason": "stop", "sequence": s}`. No usage in the body (the token headers carry it).
//! - J2 does not stream: InvokeModelWithResponseStream is refused before the body is read
//!   (`streams` is false; `invoke.rs`). The stream methods answer one chunk with the whole
//!   answer and are not used.
//! - Not echoed: `prompt` is `{"text": "", "tokens": []}`, as the answer methods see only the
//!   completion.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{string_array, string_value, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest, StopCause, fnv1a_64};
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};

/// The Jurassic-2 family.
pub(crate) struct Ai21Jurassic2;

const MODELS: &[&str] = &["ai21.j2-mid-v1", "ai21.j2-ultra-v1"];

/// `maxTokens` when the request gives none.
const DEFAULT_MAX_TOKENS: u32 = 200;

impl Family for Ai21Jurassic2 {
    fn id(&self) -> &'static str {
        "ai21_jurassic2"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn streams(&self) -> bool {
        false
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        check(&request_schema(), body, ViolationReport::Counted)?;
        Ok(GenerationRequest {
            prompt: string_value(body, "prompt"),
            max_tokens: u32_value(body.get("maxTokens")).unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences: string_array(body.get("stopSequences")),
            space_before_first_token: true,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&response(completion, &completion.text(), None))
    }

    fn n_stream_chunks(&self, _completion: &Completion) -> usize {
        1
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        // The one chunk carries the whole answer.
        if n_chunks_sent == 0 { 0 } else { completion.n_output_tokens() }
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        _chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        json_bytes(&response(completion, &completion.text(), metrics))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct J2Response<'a> {
    id: u64,
    prompt: J2Prompt,
    completions: [J2Completion<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct J2Prompt {
    text: &'static str,
    tokens: [J2Token; 0],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct J2Completion<'a> {
    data: J2Data<'a>,
    finish_reason: FinishReason<'a>,
}

#[derive(Serialize)]
struct J2Data<'a> {
    text: &'a str,
    tokens: Vec<J2Token>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct J2Token {
    generated_token: GeneratedToken,
    /// Always `null`: the alternatives are listed only when asked for, and Bedrock's J2 body
    /// has no parameter that asks.
    top_tokens: Value,
    text_range: TextRange,
}

#[derive(Serialize)]
struct GeneratedToken {
    token: String,
    logprob: f64,
    raw_logprob: f64,
}

#[derive(Serialize)]
struct TextRange {
    start: usize,
    end: usize,
}

#[derive(Serialize)]
struct FinishReason<'a> {
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<&'a str>,
}

fn response<'a>(
    completion: &'a Completion,
    text: &'a str,
    invocation_metrics: Option<InvocationMetrics>,
) -> J2Response<'a> {
    let mut start = 0;
    let mut tokens = Vec::new();
    for token in &completion.tokens {
        let end = start + token.chars().count();
        // A made-up log probability in (-4, 0], fixed by the token and its position.
        let seed = fnv1a_64(format!("{start}:{token}").as_bytes());
        let logprob = -((seed % 4000) as f64) / 1000.0;
        tokens.push(J2Token {
            generated_token: GeneratedToken {
                token: token.replacen(' ', "▁", 1),
                logprob,
                raw_logprob: logprob,
            },
            top_tokens: Value::Null,
            text_range: TextRange { start, end },
        });
        start = end;
    }
    let finish_reason = match &completion.stop {
        StopCause::EndOfText => FinishReason { reason: "endoftext", length: None, sequence: None },
        StopCause::MaxTokens => FinishReason {
            reason: "length",
            length: Some(completion.n_output_tokens()),
            sequence: None,
        },
        StopCause::StopSequence(sequence) => {
            FinishReason { reason: "stop", length: None, sequence: Some(sequence) }
        }
    };
    J2Response {
        id: fnv1a_64(text.as_bytes()) % 10_000,
        prompt: J2Prompt { text: "", tokens: [] },
        completions: [J2Completion { data: J2Data { text, tokens }, finish_reason }],
        invocation_metrics,
    }
}

fn request_schema() -> Shape {
    let penalty = |maximum: f64| Shape::Object {
        properties: vec![
            ("scale", Shape::Number { minimum: 0.0, maximum }),
            ("applyToWhitespaces", Shape::Boolean),
            ("applyToPunctuations", Shape::Boolean),
            ("applyToNumbers", Shape::Boolean),
            ("applyToStopwords", Shape::Boolean),
            ("applyToEmojis", Shape::Boolean),
        ],
        required: vec!["scale"],
    };
    Shape::Object {
        properties: vec![
            ("prompt", string_up_to(usize::MAX)),
            ("maxTokens", Shape::Integer { minimum: 0, maximum: 8191 }),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("topP", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("stopSequences", array_of(string_up_to(usize::MAX), 0, usize::MAX)),
            ("countPenalty", penalty(1.0)),
            ("presencePenalty", penalty(5.0)),
            ("frequencyPenalty", penalty(500.0)),
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
        Ai21Jurassic2
            .parse_request("ai21.j2-mid-v1", &body)
            .map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_request_and_checks_penalties() {
        let request = parse(json!({"prompt": "Translate: hi", "maxTokens": 50, "temperature": 0.5,
            "topP": 0.5, "stopSequences": ["##"], "countPenalty": {"scale": 0},
            "presencePenalty": {"scale": 1.5, "applyToNumbers": false},
            "frequencyPenalty": {"scale": 100}}))
        .unwrap();
        assert_eq!((request.max_tokens, request.stop_sequences), (50, vec!["##".to_owned()]));
        assert_eq!(parse(json!({"prompt": "x"})).unwrap().max_tokens, 200);
        assert_eq!(
            parse(json!({"prompt": "x", "countPenalty": {"scale": 0, "applyToEmojis": "no"}}))
                .unwrap_err(),
            "Malformed input request: #/countPenalty/applyToEmojis: expected type: Boolean, \
             found: String, please reformat your input and try again."
        );
        assert!(parse(json!({"prompt": "x", "countPenalty": {}})).unwrap_err().contains("[scale]"));
        assert!(parse(json!({"prompt": "x", "maxTokens": 8192})).is_err());
        assert!(!Ai21Jurassic2.streams());
    }

    #[test]
    fn answer_lists_tokens_with_their_ranges() {
        let body = json!({"prompt": "hi there", "maxTokens": 3});
        let completion = generate(&parse(body).unwrap());
        let response: Value =
            serde_json::from_slice(&Ai21Jurassic2.response_body(&completion)).unwrap();
        let data = &response["completions"][0]["data"];
        let text = data["text"].as_str().unwrap();
        assert_eq!(text, completion.text());
        let tokens = data["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 3);
        for (token, expected) in tokens.iter().zip(&completion.tokens) {
            let range = &token["textRange"];
            let (start, end) = (range["start"].as_u64().unwrap(), range["end"].as_u64().unwrap());
            assert_eq!(&text[start as usize..end as usize], expected);
            assert_eq!(token["generatedToken"]["token"], expected.replacen(' ', "▁", 1));
            assert!(token["generatedToken"]["logprob"].as_f64().unwrap() <= 0.0);
            assert_eq!(token["topTokens"], Value::Null);
        }
        assert_eq!(
            response["completions"][0]["finishReason"],
            json!({"reason": "length", "length": 3})
        );
        assert_eq!(response["prompt"], json!({"text": "", "tokens": []}));
        assert!(response["id"].is_u64());
    }
}
