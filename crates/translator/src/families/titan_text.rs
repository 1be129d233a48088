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
//! - Stop sequences: Bedrock has refused every Titan stop string but `|` (one or more)
//!   and `User:`, with `Malformed input request: string [Human:] does not match pattern
//!   ^(\|+|User:)$, please reformat your input and try again.` (boto/boto3#3993, 2024-01,
//!   langchain-ai/langchain#18565, and Converse reports of mid-2024), and the user guide
//!   then said "you can only specify one of the following options: `|`, `User:`"
//!   (aws/aws-sdk#692). The current guide no longer states the limit and no source says
//!   it was lifted. So the body carries at most one stop, the first of the request's
//!   that matches that pattern, and the gateway emulates every other one
//!   ([`TextFamily::emulated_stops`]: the text is cut at the first of them and the stop
//!   reason is `stop_sequence`). This is right whether or not Bedrock still enforces it.
//! - A guardrail that blocks the input or output answers with its own message, the
//!   guardrail action `INTERVENED` and no `completionReason` (recorded stream chunk:
//!   traceloop/openllmetry `test_guardrails/test_guardrail_invoke_stream.yaml`): that is
//!   a `content_filter` stop. A guardrail that only masks text keeps the model's reason
//!   (`FINISH` on the last chunk, `test_titan_invoke_stream_guardrail.yaml`).

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
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<[&'a str; 1]>,
}

/// An InvokeModel response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    #[serde(default, deserialize_with = "de_count")]
    input_text_token_count: Option<u32>,
    results: Vec<TitanResult>,
    #[serde(default, rename = "amazon-bedrock-guardrailAction")]
    guardrail_action: Option<String>,
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
    #[serde(default, rename = "amazon-bedrock-guardrailAction")]
    guardrail_action: Option<String>,
}

/// The stop strings Bedrock accepts in `textGenerationConfig.stopSequences`: the pattern
/// `^(\|+|User:)$` of its validation message.
fn is_native_stop(stop: &str) -> bool {
    stop == "User:" || (!stop.is_empty() && stop.bytes().all(|b| b == b'|'))
}

/// Where in the request's `stop` the one stop sequence the body carries is, if any: the
/// first the model accepts.
fn native_stop_index(stop: &[String]) -> Option<usize> {
    stop.iter().position(|s| is_native_stop(s))
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

    /// Every stop but the one the body carries ([`native_stop_index`]).
    fn emulated_stops(&self, stop: &[String]) -> Vec<String> {
        let native = native_stop_index(stop);
        let others = stop.iter().enumerate().filter(|&(i, _)| Some(i) != native);
        others.map(|(_, s)| s.clone()).collect()
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
        let stop_reason =
            stop_reason(chunk.completion_reason.as_deref(), chunk.guardrail_action.as_deref());
        // Every Titan chunk has `outputText`, even an empty one; a chunk with none of the
        // keys read here is of a shape this family does not know.
        let unrecognized = chunk.output_text.is_none()
            && stop_reason.is_none()
            && chunk.guardrail_action.is_none()
            && usage == Usage::default();
        Ok(StreamEvent {
            unrecognized,
            text: chunk.output_text.unwrap_or_default(),
            stop_reason,
            usage,
            ..Default::default()
        })
    }
}

fn convert_request(req: &UnifiedRequest) -> TitanRequest<'_> {
    let config = TitanGenerationConfig {
        max_token_count: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: native_stop_index(&req.stop)
            .and_then(|i| req.stop.get(i))
            .map(|stop| [stop.as_str()]),
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
        stop_reason: stop_reason(
            first.completion_reason.as_deref(),
            res.guardrail_action.as_deref(),
        )
        .unwrap_or(StopReason::Other),
        usage: Usage { input_tokens: res.input_text_token_count, output_tokens: first.token_count },
        text: first.output_text,
        ..Default::default()
    })
}

/// The model's `completionReason`; without one, a guardrail's intervention is a content
/// filter stop.
fn stop_reason(
    completion_reason: Option<&str>,
    guardrail_action: Option<&str>,
) -> Option<StopReason> {
    match (completion_reason, guardrail_action) {
        (Some(reason), _) => Some(convert_completion_reason(reason)),
        (None, Some("INTERVENED")) => Some(StopReason::ContentFilter),
        (None, _) => None,
    }
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
    use crate::unified::{StopReason, StreamEvent, UnifiedRequest, Usage};

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
    fn invocation_metrics_are_read_where_present_and_malformed_ones_ignored() {
        let chunk = br#"{"outputText":"x","amazon-bedrock-invocationMetrics":
            {"inputTokenCount":3,"outputTokenCount":9,"invocationLatency":12}}"#;
        let event = TitanText.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(3), output_tokens: Some(9) });
        // Malformed metrics are no usage, not an error: the chunk's text still counts.
        let chunk = br#"{"outputText":"x","amazon-bedrock-invocationMetrics":"oops"}"#;
        let event = TitanText.decode_stream_event(chunk).unwrap();
        assert_eq!((event.text.as_str(), event.usage), ("x", Usage::default()));
        // The key's name in the text is not the key.
        let chunk = br#"{"outputText":"amazon-bedrock-invocationMetrics"}"#;
        let event = TitanText.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage::default());
        // A chunk that is not JSON, or not an object, is malformed as before.
        for chunk in [&b"{\"outputText\":"[..], b"[1]"] {
            assert!(TitanText.decode_stream_event(chunk).is_err());
        }
    }

    #[test]
    fn unknown_stream_chunk_is_unrecognized() {
        let event = TitanText.decode_stream_event(b"{}").unwrap();
        assert_eq!(event, StreamEvent { unrecognized: true, ..StreamEvent::default() });
        let event = TitanText.decode_stream_event(br#"{"somethingNew":{"a":1}}"#).unwrap();
        assert!(event.unrecognized);
        // An empty text chunk is a known shape.
        let event = TitanText.decode_stream_event(br#"{"outputText":"","index":0}"#).unwrap();
        assert_eq!(event, StreamEvent::default());
    }

    #[test]
    fn guardrail_intervention_without_reason_is_a_content_filter_stop() {
        let chunk = br#"{"outputText":"Input blocked","index":0.0,"totalOutputTextTokenCount":3.0,
            "inputTextTokenCount":6.0,"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = TitanText.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ContentFilter));
        assert!(!event.unrecognized);
        // The model's own reason wins: a guardrail that masked text let it finish.
        let chunk = br#"{"outputText":"x","completionReason":"FINISH",
            "amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = TitanText.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::EndTurn));
        let chunk = br#"{"outputText":"x","amazon-bedrock-guardrailAction":"NONE"}"#;
        assert_eq!(TitanText.decode_stream_event(chunk).unwrap().stop_reason, None);

        let body = br#"{"inputTextTokenCount":6,"results":[{"tokenCount":3,
            "outputText":"Input blocked"}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let res = TitanText.decode_response(body).unwrap();
        assert_eq!(res.stop_reason, StopReason::ContentFilter);
        let body = br#"{"results":[{"outputText":"x"}],"amazon-bedrock-guardrailAction":"NONE"}"#;
        assert_eq!(TitanText.decode_response(body).unwrap().stop_reason, StopReason::Other);
    }

    #[test]
    fn only_the_stops_bedrock_accepts_go_native_and_at_most_one() {
        let stops = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases: [(&[&str], Option<&str>, &[&str]); 7] = [
            (&["User:"], Some("User:"), &[]),
            (&["|"], Some("|"), &[]),
            (&["|||"], Some("|||"), &[]),
            (&["Human:", "User:", "|"], Some("User:"), &["Human:", "|"]),
            (&["User:", "User:"], Some("User:"), &["User:"]),
            (&["user:", "| ", "END"], None, &["user:", "| ", "END"]),
            (&[], None, &[]),
        ];
        for (stop, native, emulated) in cases {
            let req = UnifiedRequest {
                prompt: Some("hi".to_owned()),
                stop: stops(stop),
                ..UnifiedRequest::default()
            };
            let body = TitanText.encode_request(&req).unwrap();
            let sent = &body["textGenerationConfig"]["stopSequences"];
            match native {
                Some(native) => assert_eq!(sent, &json!([native]), "{stop:?}"),
                None => assert!(sent.is_null(), "{stop:?}: {body}"),
            }
            assert_eq!(TitanText.emulated_stops(&req.stop), stops(emulated), "{stop:?}");
        }
    }
}
