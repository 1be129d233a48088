//! Guardrails on the two text operations: a request that names a guardrail
//! (`X-Amzn-Bedrock-GuardrailIdentifier` and `X-Amzn-Bedrock-GuardrailVersion`) and whose
//! prompt contains [`GUARDRAIL_TRIGGER`] is blocked, the way Bedrock answers a guardrail
//! that blocks the input:
//!
//! - The model is not run. The answer is the guardrail's message ([`BLOCKED_MESSAGE`], the
//!   console's default blocked messaging) in the family's own shape, without the family's
//!   stop field, plus `"amazon-bedrock-guardrailAction": "INTERVENED"`, and with
//!   `X-Amzn-Bedrock-Trace: ENABLED` (or `ENABLED_FULL`) an `"amazon-bedrock-trace":
//!   {"guardrail": {...}}` naming a blocked topic. Recorded: Titan's blocked stream is one
//!   chunk `{"outputText": "Input blocked", ..., "amazon-bedrock-guardrailAction":
//!   "INTERVENED", "amazon-bedrock-trace": {...}}` without `completionReason` or invocation
//!   metrics (traceloop/openllmetry `test_guardrails/test_guardrail_invoke_stream.yaml`), and
//!   Claude Messages' blocked body is `{"type", "role", "content", ...guardrail keys}` without
//!   `stop_reason` or `usage` (a model invocation log in panther-labs/panther-analysis
//!   `rules/aws_bedrock_rules/aws_bedrockmodelinvocation_guardrailintervened.yml`).
//! - The message is one token, so a family whose stream has one chunk per token sends one
//!   chunk (Titan's, as recorded). A family with an event sequence sends its events for that
//!   token; only the last carries the guardrail keys, and none carries invocation metrics.
//!   The stream is sent whole, without latency between chunks or in-stream faults.
//! - The stop field is removed wherever it is in the family's JSON (`stop_reason`,
//!   `stopReason`, `completionReason`, `finish_reason`, `finishReason`): the simulator does
//!   not know each family's placement here, and no body of a blocked input has been seen to
//!   carry one.
//! - A request without both headers, or whose prompt lacks the trigger, is answered as
//!   usual, with no guardrail key (a real guardrail that lets the answer through adds
//!   `"NONE"`; no caller here relies on it).

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::eventstream::{encode_chunk_frame, padding};
use crate::families::Family;
use crate::generate::{Completion, StopCause};
use crate::prompt_cache::CacheUsage;

/// The text a prompt contains to be blocked by any guardrail the request names.
pub const GUARDRAIL_TRIGGER: &str = "sim-guardrail-block";

/// The guardrail's message for a blocked input.
pub const BLOCKED_MESSAGE: &str = "Sorry, the model cannot answer this question.";

/// The keys of a family's stop field, removed from a blocked answer.
const STOP_KEYS: [&str; 5] =
    ["stop_reason", "stopReason", "completionReason", "finish_reason", "finishReason"];

/// A guardrail blocking one request's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Intervention {
    /// The guardrail identifier, named in the trace.
    identifier: String,
    /// Whether the answer carries `amazon-bedrock-trace`.
    trace: bool,
}

/// The intervention for a request with these headers and this prompt, if its guardrail
/// blocks it.
pub(crate) fn intervention(headers: &HeaderMap, prompt: &str) -> Option<Intervention> {
    let header = |name: &str| {
        headers.get(name).and_then(|value| value.to_str().ok()).filter(|value| !value.is_empty())
    };
    let identifier = header("x-amzn-bedrock-guardrailidentifier")?;
    header("x-amzn-bedrock-guardrailversion")?;
    if !prompt.contains(GUARDRAIL_TRIGGER) {
        return None;
    }
    let trace = header("x-amzn-bedrock-trace").is_some_and(|trace| {
        trace.eq_ignore_ascii_case("ENABLED") || trace.eq_ignore_ascii_case("ENABLED_FULL")
    });
    Some(Intervention { identifier: identifier.to_owned(), trace })
}

impl Intervention {
    /// What is answered instead of the model's completion: the blocked message as one
    /// token, the input still counted.
    pub(crate) fn completion(&self, model_completion: &Completion) -> Completion {
        Completion {
            n_input_tokens: model_completion.n_input_tokens,
            tokens: vec![BLOCKED_MESSAGE.to_owned()],
            stop: StopCause::EndOfText,
            cache: CacheUsage::default(),
            ..Completion::default()
        }
    }

    /// The InvokeModel body: the family's body without its stop field, with the guardrail
    /// keys.
    pub(crate) fn body(&self, family_body: &[u8]) -> Vec<u8> {
        self.rewrite(family_body, true)
    }

    /// The whole InvokeModelWithResponseStream body of `completion` (from
    /// [`Intervention::completion`]): every chunk of the family's stream without its stop
    /// field and without metrics, the last with the guardrail keys.
    pub(crate) fn stream_body(&self, family: &dyn Family, completion: &Completion) -> Vec<u8> {
        let n_chunks = family.n_stream_chunks(completion);
        let mut body = Vec::new();
        for chunk_idx in 0..n_chunks {
            let chunk = family.stream_chunk(completion, chunk_idx, None);
            let chunk = self.rewrite(&chunk, chunk_idx + 1 == n_chunks);
            body.extend(encode_chunk_frame(&chunk, Some(padding(2 + chunk_idx % 60))));
        }
        body
    }

    /// `model_json` without its stop field, and with the guardrail keys when `last`. JSON
    /// that is not an object is left as it is.
    fn rewrite(&self, model_json: &[u8], last: bool) -> Vec<u8> {
        let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(model_json) else {
            return model_json.to_vec();
        };
        remove_stop_keys(&mut object);
        if last {
            object.insert("amazon-bedrock-guardrailAction".to_owned(), "INTERVENED".into());
            if self.trace {
                object.insert("amazon-bedrock-trace".to_owned(), self.trace_json());
            }
        }
        serde_json::to_vec(&Value::Object(object)).unwrap_or_else(|_| model_json.to_vec())
    }

    /// The guardrail trace of a blocked input, shaped like the recorded one.
    fn trace_json(&self) -> Value {
        let topic = serde_json::json!({
            "name": "simulated-denied-topic",
            "type": "DENY",
            "action": "BLOCKED",
            "detected": true
        });
        let mut input = Map::new();
        input.insert(
            self.identifier.clone(),
            serde_json::json!({"topicPolicy": {"topics": [topic]}}),
        );
        serde_json::json!({"guardrail": {"input": input, "actionReason": "Guardrail blocked."}})
    }
}

/// Removes every stop key of `object` and of the objects and arrays inside it.
fn remove_stop_keys(object: &mut Map<String, Value>) {
    for key in STOP_KEYS {
        object.remove(key);
    }
    for value in object.values_mut() {
        remove_stop_keys_in(value);
    }
}

fn remove_stop_keys_in(value: &mut Value) {
    match value {
        Value::Object(object) => remove_stop_keys(object),
        Value::Array(items) => items.iter_mut().for_each(remove_stop_keys_in),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;
    use crate::families::family_for;
    use crate::generate::{GenerationRequest, generate};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const GUARDRAIL: [(&str, &str); 2] = [
        ("x-amzn-bedrock-guardrailidentifier", "gr123"),
        ("x-amzn-bedrock-guardrailversion", "DRAFT"),
    ];

    fn blocked_prompt() -> String {
        format!("please {GUARDRAIL_TRIGGER} this")
    }

    #[test]
    fn blocks_only_with_both_headers_and_the_trigger() {
        assert!(intervention(&headers(&GUARDRAIL), &blocked_prompt()).is_some());
        assert!(intervention(&headers(&GUARDRAIL), "an ordinary prompt").is_none());
        assert!(intervention(&headers(&GUARDRAIL[..1]), &blocked_prompt()).is_none());
        assert!(intervention(&headers(&GUARDRAIL[1..]), &blocked_prompt()).is_none());
        assert!(intervention(&HeaderMap::new(), &blocked_prompt()).is_none());
        let traced = [GUARDRAIL[0], GUARDRAIL[1], ("x-amzn-bedrock-trace", "ENABLED")];
        assert!(intervention(&headers(&traced), &blocked_prompt()).is_some_and(|i| i.trace));
        assert!(intervention(&headers(&GUARDRAIL), &blocked_prompt()).is_some_and(|i| !i.trace));
    }

    fn model_completion() -> Completion {
        generate(&GenerationRequest {
            prompt: blocked_prompt(),
            max_tokens: 100,
            stop_sequences: Vec::new(),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    #[test]
    fn blocked_body_is_the_message_without_the_stop_field() {
        let blocked = Intervention { identifier: "gr123".to_owned(), trace: true };
        let completion = blocked.completion(&model_completion());
        assert_eq!(completion.text(), BLOCKED_MESSAGE);
        assert_eq!(completion.n_input_tokens, model_completion().n_input_tokens);

        let family = family_for("anthropic.claude-3-haiku-20240307-v1:0").unwrap();
        let body: Value =
            serde_json::from_slice(&blocked.body(&family.response_body(&completion))).unwrap();
        assert_eq!(body["content"][0]["text"], BLOCKED_MESSAGE);
        assert_eq!(body["amazon-bedrock-guardrailAction"], "INTERVENED");
        assert!(body.get("stop_reason").is_none(), "{body}");
        let topic = &body["amazon-bedrock-trace"]["guardrail"]["input"]["gr123"]["topicPolicy"];
        assert_eq!(topic["topics"][0]["action"], "BLOCKED");

        let family = family_for("ai21.jamba-1-5-mini-v1:0").unwrap();
        let untraced = Intervention { trace: false, ..blocked };
        let body: Value =
            serde_json::from_slice(&untraced.body(&family.response_body(&completion))).unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], BLOCKED_MESSAGE);
        assert!(body["choices"][0].get("finish_reason").is_none(), "{body}");
        assert!(body.get("amazon-bedrock-trace").is_none());
    }

    /// The decoded model JSON of every chunk frame of a body.
    fn chunks(mut bytes: &[u8]) -> Vec<Value> {
        use base64::Engine;
        let mut chunks = Vec::new();
        while !bytes.is_empty() {
            let total_len = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
            let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
            let payload: Value =
                serde_json::from_slice(&bytes[12 + headers_len..total_len - 4]).unwrap();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(payload["bytes"].as_str().unwrap())
                .unwrap();
            chunks.push(serde_json::from_slice(&decoded).unwrap());
            bytes = &bytes[total_len..];
        }
        chunks
    }

    #[test]
    fn blocked_stream_marks_the_last_chunk_and_sends_no_metrics() {
        let blocked = Intervention { identifier: "gr123".to_owned(), trace: false };
        let completion = blocked.completion(&model_completion());

        // One chunk per token: Titan's recorded single chunk.
        let family = family_for("amazon.titan-text-express-v1").unwrap();
        let stream = chunks(&blocked.stream_body(family, &completion));
        assert_eq!(stream.len(), 1);
        assert_eq!(stream[0]["outputText"], BLOCKED_MESSAGE);
        assert_eq!(stream[0]["amazon-bedrock-guardrailAction"], "INTERVENED");
        assert!(stream[0].get("completionReason").is_none(), "{}", stream[0]);

        // An event sequence: the guardrail key on the last event only.
        let family = family_for("anthropic.claude-3-haiku-20240307-v1:0").unwrap();
        let stream = chunks(&blocked.stream_body(family, &completion));
        assert_eq!(stream.len(), family.n_stream_chunks(&completion));
        let (last, before) = stream.split_last().unwrap();
        assert_eq!(last["amazon-bedrock-guardrailAction"], "INTERVENED");
        for chunk in before {
            assert!(chunk.get("amazon-bedrock-guardrailAction").is_none(), "{chunk}");
        }
        for chunk in &stream {
            assert!(chunk.get("amazon-bedrock-invocationMetrics").is_none(), "{chunk}");
            assert!(!chunk.to_string().contains("stop_reason"), "{chunk}");
        }
        let text: String =
            stream.iter().filter_map(|chunk| chunk["delta"]["text"].as_str()).collect();
        assert_eq!(text, BLOCKED_MESSAGE);
    }

    #[test]
    fn stop_keys_are_removed_at_any_depth() {
        let mut object = json!({"stopReason": "end_turn", "a": [{"finish_reason": "stop", "b": 1}],
            "c": {"completionReason": "FINISH", "finishReason": {"reason": "x"}, "d": 2}});
        if let Value::Object(map) = &mut object {
            remove_stop_keys(map);
        }
        assert_eq!(object, json!({"a": [{"b": 1}], "c": {"d": 2}}));
    }
}
