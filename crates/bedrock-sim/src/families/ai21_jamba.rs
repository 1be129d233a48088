//! AI21 Labs Jamba (`jamba-instruct-v1:0`, `jamba-1-5-mini-v1:0`, `jamba-1-5-large-v1:0`):
//! request checks and answer shapes of wire document §4.10.
//!
//! - The answer is seeded by the `content` of every message (roles `system`, `user`,
//!   `assistant`), joined with newlines. `max_tokens` defaults to 4096, its largest value.
//!   `n` is checked but one choice is answered.
//! - Answer (OpenAI-like): `{"id": "cmpl-…", "choices": [{"index", "message": {"role",
//!   "content"}, "finish_reason"}], "usage"}`; `finish_reason` is `stop` (also at a stop
//!   sequence) or `length`.
//! - Stream: a first chunk with `delta.role`, one `delta.content` chunk per token, a chunk with
//!   the `finish_reason`, every one with the running `usage` (as a recorded Bedrock chunk has),
//!   then a last chunk holding only the invocation metrics: AI21's own Bedrock stream decoder
//!   merges such a trailing metering chunk into the finish chunk.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::chat_completions::{ChunkChoice, Delta};
use crate::families::common::{stop_or_length, string_array, u32_value};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};

/// The Jamba family.
pub(crate) struct Ai21Jamba;

const MODELS: &[&str] =
    &["ai21.jamba-instruct-v1:0", "ai21.jamba-1-5-mini-v1:0", "ai21.jamba-1-5-large-v1:0"];

/// The largest `max_tokens`, also its value when the request gives none.
const MAX_TOKENS_LIMIT: u32 = 4096;

impl Family for Ai21Jamba {
    fn id(&self) -> &'static str {
        "ai21_jamba"
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
        let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice);
        let texts: Vec<&str> = messages
            .unwrap_or_default()
            .iter()
            .filter_map(|message| message.get("content").and_then(Value::as_str))
            .collect();
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(MAX_TOKENS_LIMIT),
            stop_sequences: string_array(body.get("stop")),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        let text = completion.text();
        json_bytes(&ChatResponse {
            id: completion_id(&text),
            choices: [Choice {
                index: 0,
                message: Message { role: "assistant", content: &text },
                finish_reason: stop_or_length(&completion.stop),
            }],
            usage: usage(completion.n_input_tokens, completion.n_output_tokens()),
        })
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // The role, one chunk per token, the finish reason, the metrics.
        completion.tokens.len() + 3
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        // The role chunk comes first.
        tokens_after_leading_chunks(completion, n_chunks_sent, 1)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let n_tokens = completion.tokens.len();
        if chunk_idx > n_tokens + 1 {
            return json_bytes(&MeteringChunk { invocation_metrics: metrics });
        }
        // Tokens sent so far, this chunk's included.
        let n_sent = chunk_idx.min(n_tokens);
        let mut delta = Delta { role: None, content: None };
        let mut finish = None;
        if chunk_idx == 0 {
            delta.role = Some("assistant");
        } else if let Some(token) = completion.tokens.get(chunk_idx - 1) {
            delta.content = Some(token);
        } else {
            finish = Some(stop_or_length(&completion.stop));
        }
        json_bytes(&StreamChunk {
            id: completion_id(&completion.text()),
            choices: [ChunkChoice { index: 0, delta, finish_reason: finish }],
            usage: usage(completion.n_input_tokens, u32::try_from(n_sent).unwrap_or(u32::MAX)),
            invocation_metrics: metrics,
        })
    }
}

#[derive(Serialize)]
struct ChatResponse<'a> {
    id: String,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// The key order of a recorded Bedrock Jamba chunk.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    total_tokens: u32,
    completion_tokens: u32,
}

#[derive(Serialize)]
struct StreamChunk<'a> {
    id: String,
    choices: [ChunkChoice<'a>; 1],
    usage: Usage,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

/// The last stream chunk: Bedrock's metering, nothing else.
#[derive(Serialize)]
struct MeteringChunk {
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn usage(n_input_tokens: u32, n_output_tokens: u32) -> Usage {
    Usage {
        prompt_tokens: n_input_tokens,
        total_tokens: n_input_tokens.saturating_add(n_output_tokens),
        completion_tokens: n_output_tokens,
    }
}

/// `cmpl-` and 32 hex digits, a pure function of the answer text.
fn completion_id(text: &str) -> String {
    let seed = fnv1a_64(text.as_bytes());
    format!("cmpl-{seed:016x}{:016x}", fnv1a_64(&seed.to_be_bytes()))
}

fn request_schema() -> Shape {
    let text = || string_up_to(usize::MAX);
    let message = Shape::Object {
        properties: vec![
            ("role", Shape::Enum(&["system", "user", "assistant"])),
            ("content", text()),
        ],
        required: vec!["role", "content"],
    };
    let any_number = || Shape::Number { minimum: f64::MIN, maximum: f64::MAX };
    Shape::Object {
        properties: vec![
            ("messages", array_of(message, 1, usize::MAX)),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 2.0 }),
            ("top_p", Shape::Number { minimum: 0.01, maximum: 1.0 }),
            ("max_tokens", Shape::Integer { minimum: 0, maximum: MAX_TOKENS_LIMIT.into() }),
            ("stop", array_of(text(), 0, usize::MAX)),
            ("n", Shape::Integer { minimum: 1, maximum: 16 }),
            ("frequency_penalty", any_number()),
            ("presence_penalty", any_number()),
            ("tools", array_of(Shape::AnyObject, 0, usize::MAX)),
            ("response_format", Shape::AnyObject),
            ("documents", array_of(Shape::AnyObject, 0, usize::MAX)),
        ],
        required: vec!["messages"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        Ai21Jamba
            .parse_request("ai21.jamba-1-5-mini-v1:0", &body)
            .map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_messages() {
        let request = parse(json!({"messages": [{"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"}], "max_tokens": 12, "stop": ["\n"], "n": 1,
            "temperature": 1.5, "top_p": 1.0}))
        .unwrap();
        assert_eq!(request.prompt, "Be terse.\nHi");
        assert_eq!((request.max_tokens, request.stop_sequences), (12, vec!["\n".to_owned()]));
        let request = parse(json!({"messages": [{"role": "user", "content": "Hi"}]})).unwrap();
        assert_eq!(request.max_tokens, 4096);
    }

    #[test]
    fn rejects_bad_requests() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        let cases = [
            (
                json!({"messages": [{"role": "bot", "content": "x"}]}),
                "#/messages/0/role: bot is not a valid enum value",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "n": 17}),
                "#/n: 17 is not less or equal to 16",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4097}),
                "#/max_tokens: 4097 is not less or equal to 4096",
            ),
            (json!({"messages": []}), "#/messages: expected minimum item count: 1, found: 0"),
            (json!({"prompt": "x"}), "2 schema violations found"),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), detail(expected), "{body}");
        }
    }

    #[test]
    fn stream_chunks_in_order() {
        let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 1});
        let completion = generate(&parse(body).unwrap());
        let id = completion_id(&completion.text());
        assert_eq!(Ai21Jamba.n_stream_chunks(&completion), 4);
        let chunk = |idx, metrics| {
            String::from_utf8(Ai21Jamba.stream_chunk(&completion, idx, metrics)).unwrap()
        };
        assert_eq!(
            chunk(0, None),
            format!(
                r#"{{"id":"{id}","choices":[{{"index":0,"delta":{{"role":"assistant"}},"finish_reason":null}}],"usage":{{"prompt_tokens":2,"total_tokens":2,"completion_tokens":0}}}}"#
            )
        );
        let token = &completion.tokens[0];
        assert_eq!(
            chunk(1, None),
            format!(
                r#"{{"id":"{id}","choices":[{{"index":0,"delta":{{"content":"{token}"}},"finish_reason":null}}],"usage":{{"prompt_tokens":2,"total_tokens":3,"completion_tokens":1}}}}"#
            )
        );
        assert!(chunk(2, None).contains(r#""delta":{},"finish_reason":"length""#));
        let metrics = InvocationMetrics {
            input_token_count: 2,
            output_token_count: 1,
            invocation_latency: 5,
            first_byte_latency: 2,
        };
        assert_eq!(
            chunk(3, Some(metrics)),
            r#"{"amazon-bedrock-invocationMetrics":{"inputTokenCount":2,"outputTokenCount":1,"invocationLatency":5,"firstByteLatency":2}}"#
        );
        let response: Value =
            serde_json::from_slice(&Ai21Jamba.response_body(&completion)).unwrap();
        assert_eq!(response["id"], id.as_str());
        assert_eq!(response["choices"][0]["message"]["content"], token.as_str());
        assert_eq!(response["usage"]["total_tokens"], 3);
    }
}
