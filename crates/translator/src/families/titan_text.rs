//! Amazon Titan Text (G1 Express, Lite, Premier): `amazon.titan-text-*` model ids.
//!
//! The request is `{"inputText", "textGenerationConfig": {...}}`; the answer is
//! `results[0].outputText` with its own token counts (wire reference §4.1).
//!
//! Decisions:
//! - A plain `prompt` is sent as given. `messages` are rendered in Titan's
//!   conversational form: the system prompt on its own first paragraph, then
//!   `User: {text}` and `Bot: {text}` lines, ending with `Bot:` for the model to
//!   continue (a final assistant message is continued instead).
//! - `textGenerationConfig` carries only the fields the request sets and is left out
//!   when it would be empty, so Bedrock applies its own defaults.
//! - `max_tokens` is not range-checked here: the limit depends on the model (4096
//!   Lite, 8192 Express, 3072 Premier) and a family does not know which one it
//!   serves. Bedrock rejects an excess with a validation error.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::render_transcript;
use crate::families::{TextFamily, check_range, de_count, parse_body, parse_stream_chunk, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse, Usage};

/// The Amazon Titan Text family.
#[derive(Debug, Clone, Copy)]
pub struct TitanText;

const ID: &str = "titan_text";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanRequest<'a> {
    input_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_generation_config: Option<TitanGenerationConfig<'a>>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct TitanGenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_token_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    #[serde(default, deserialize_with = "de_count")]
    input_text_token_count: Option<u32>,
    results: Vec<TitanResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResult {
    output_text: String,
    #[serde(default, deserialize_with = "de_count")]
    token_count: Option<u32>,
    #[serde(default)]
    completion_reason: Option<String>,
}

/// One decoded stream chunk. Every key may be `null` or, with guardrails on, missing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanStreamChunk {
    #[serde(default)]
    output_text: Option<String>,
    #[serde(default, deserialize_with = "de_count")]
    input_text_token_count: Option<u32>,
    #[serde(default, deserialize_with = "de_count")]
    total_output_text_token_count: Option<u32>,
    #[serde(default)]
    completion_reason: Option<String>,
}

impl TextFamily for TitanText {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("amazon.titan-text-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "inputText",
            "textGenerationConfig.maxTokenCount",
            "textGenerationConfig.temperature",
            "textGenerationConfig.topP",
            "textGenerationConfig.stopSequences",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        to_body(ID, &convert_request(req))
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        let res: TitanResponse = parse_body(ID, body)?;
        convert_response(res)
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let (chunk, mut usage) = parse_stream_chunk::<TitanStreamChunk>(ID, chunk)?;
        usage.update(Usage {
            input_tokens: chunk.input_text_token_count,
            output_tokens: chunk.total_output_text_token_count,
        });
        Ok(StreamEvent {
            unrecognized: false,
            text: chunk.output_text.unwrap_or_default(),
            stop_reason: chunk.completion_reason.as_deref().map(convert_completion_reason),
            usage,
        })
    }
}

fn convert_request(req: &UnifiedRequest) -> TitanRequest<'_> {
    let config = TitanGenerationConfig {
        max_token_count: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: &req.stop,
    };
    let is_empty = config == TitanGenerationConfig::default();
    TitanRequest {
        input_text: render_transcript(req, "Bot"),
        text_generation_config: if is_empty { None } else { Some(config) },
    }
}

fn convert_response(res: TitanResponse) -> Result<UnifiedResponse, TranslateError> {
    let Some(first) = res.results.into_iter().next() else {
        return Err(TranslateError::MalformedResponse {
            family: ID,
            detail: "`results` is empty".to_owned(),
        });
    };
    Ok(UnifiedResponse {
        stop_reason: first
            .completion_reason
            .as_deref()
            .map_or(StopReason::Other, convert_completion_reason),
        usage: Usage { input_tokens: res.input_text_token_count, output_tokens: first.token_count },
        text: first.output_text,
    })
}

/// Live traffic says `FINISH` where the docs say `FINISHED`; both mean the model was done.
fn convert_completion_reason(reason: &str) -> StopReason {
    match reason {
        "FINISH" | "FINISHED" => StopReason::EndTurn,
        "LENGTH" => StopReason::MaxTokens,
        "STOP_CRITERIA_MET" => StopReason::StopSequence,
        "CONTENT_FILTERED" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::titan_text::TitanText;
    use crate::unified::{StopReason, UnifiedRequest, Usage};

    #[test]
    fn matches_titan_text_but_not_other_titan_models() {
        assert!(TitanText.matches("amazon.titan-text-premier-v1:0"));
        assert!(!TitanText.matches("amazon.titan-embed-text-v1"));
        assert!(!TitanText.matches("amazon.titan-image-generator-v1"));
        assert!(!TitanText.matches("amazon.nova-lite-v1:0"));
    }

    #[test]
    fn temperature_bounds_are_inclusive() {
        for temperature in [0.0, 1.0] {
            let req = UnifiedRequest {
                prompt: Some("hi".to_owned()),
                temperature: Some(temperature),
                ..UnifiedRequest::default()
            };
            let body = TitanText.encode_request(&req).unwrap();
            assert_eq!(body["textGenerationConfig"]["temperature"], json!(temperature));
        }
    }

    #[test]
    fn nan_temperature_is_invalid() {
        let req = UnifiedRequest {
            prompt: Some("hi".to_owned()),
            temperature: Some(f64::NAN),
            ..UnifiedRequest::default()
        };
        let err = TitanText.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn non_json_body_is_malformed() {
        let err = TitanText.decode_response(b"<html>502</html>").unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { family: "titan_text", .. }));
    }

    #[test]
    fn missing_results_is_malformed() {
        let err = TitanText.decode_response(br#"{"inputTextTokenCount":3}"#).unwrap_err();
        assert!(matches!(err, TranslateError::MalformedResponse { .. }), "{err:?}");
    }

    #[test]
    fn fractional_token_count_is_malformed() {
        let body = br#"{"results":[{"outputText":"x","tokenCount":1.5}]}"#;
        assert!(TitanText.decode_response(body).is_err());
    }

    #[test]
    fn stream_chunk_counts_override_invocation_metrics() {
        let chunk = br#"{"outputText":"","totalOutputTextTokenCount":7,"completionReason":"LENGTH",
            "amazon-bedrock-invocationMetrics":{"inputTokenCount":3,"outputTokenCount":9}}"#;
        let event = TitanText.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(3), output_tokens: Some(7) });
        assert_eq!(event.stop_reason, Some(StopReason::MaxTokens));
    }

    #[test]
    fn empty_stream_chunk_contributes_nothing() {
        let event = TitanText.decode_stream_event(b"{}").unwrap();
        assert_eq!(event, crate::unified::StreamEvent::default());
    }
}
