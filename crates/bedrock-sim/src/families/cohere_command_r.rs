//! Cohere Command R and R+ (`command-r-v1:0`, `command-r-plus-v1:0`): request checks and
//! answer shapes of wire document §4.8.
//!
//! - `message` is required. The answer is seeded by the `preamble`, the `chat_history`
//!   messages (roles `USER` or `CHATBOT`) and `message`, joined with newlines. `max_tokens`
//!   defaults to 4000, its largest value. `seed` is checked; the simulator is deterministic
//!   whatever the seed.
//! - Answer: `{"response_id", "text", "generation_id", "chat_history", "finish_reason"}` with
//!   `finish_reason` `COMPLETE` (also at a stop sequence) or `MAX_TOKENS`; no usage (the
//!   token headers carry it).
//! - Stream: Cohere's chat-stream events, `stream-start`, one `text-generation` per token, then
//!   `stream-end` with the finish reason, the whole answer in `response` and the invocation
//!   metrics. No Bedrock recording was found; this is the shape Cohere's own Bedrock client
//!   reads (cohere-ai/cohere-python `src/cohere/aws_client.py`: it keeps only chunks with an
//!   `event_type`, types `text-generation` and `stream-end`, and notes the invocation metrics
//!   on `stream-end`). The translator reads the other plausible shapes too.
//! - Not echoed: `chat_history` is `[]`, as the answer methods see only the completion.

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{complete_or_max_tokens, string_array, u32_value, uuid_from};
use crate::families::{Family, InvocationMetrics, json_bytes, tokens_after_leading_chunks};
use crate::generate::{Completion, GenerationRequest, fnv1a_64};
use crate::media_schema::{Shape, ViolationReport, array_of, check, string_up_to};

/// The Command R family.
pub(crate) struct CohereCommandR;

const MODELS: &[&str] = &["cohere.command-r-v1:0", "cohere.command-r-plus-v1:0"];

/// The largest `max_tokens`, also its value when the request gives none.
const MAX_TOKENS_LIMIT: u32 = 4000;

impl Family for CohereCommandR {
    fn id(&self) -> &'static str {
        "cohere_command_r"
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
        let text_of = |key: &str| body.get(key).and_then(Value::as_str);
        let history = body.get("chat_history").and_then(Value::as_array).map(Vec::as_slice);
        let history_texts = history
            .unwrap_or_default()
            .iter()
            .filter_map(|turn| turn.get("message").and_then(Value::as_str));
        let texts: Vec<&str> = text_of("preamble")
            .into_iter()
            .chain(history_texts)
            .chain(text_of("message"))
            .collect();
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(MAX_TOKENS_LIMIT),
            stop_sequences: string_array(body.get("stop_sequences")),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&chat_response(completion, &completion.text()))
    }

    fn n_stream_chunks(&self, completion: &Completion) -> usize {
        // stream-start, one text-generation per token, stream-end.
        completion.tokens.len() + 2
    }

    fn n_stream_tokens_sent(&self, completion: &Completion, n_chunks_sent: usize) -> u32 {
        // stream-start comes first.
        tokens_after_leading_chunks(completion, n_chunks_sent, 1)
    }

    fn stream_chunk(
        &self,
        completion: &Completion,
        chunk_idx: usize,
        metrics: Option<InvocationMetrics>,
    ) -> Vec<u8> {
        let text = completion.text();
        let mut chunk = StreamEvent {
            is_finished: false,
            event_type: "text-generation",
            generation_id: None,
            text: None,
            finish_reason: None,
            response: None,
            invocation_metrics: metrics,
        };
        if chunk_idx == 0 {
            chunk.event_type = "stream-start";
            chunk.generation_id = Some(chat_response(completion, &text).generation_id);
        } else if let Some(token) = completion.tokens.get(chunk_idx - 1) {
            chunk.text = Some(token);
        } else {
            chunk.is_finished = true;
            chunk.event_type = "stream-end";
            chunk.finish_reason = Some(complete_or_max_tokens(&completion.stop));
            chunk.response = Some(chat_response(completion, &text));
        }
        json_bytes(&chunk)
    }
}

/// The InvokeModel answer, also the `response` of the `stream-end` event.
#[derive(Serialize)]
struct ChatResponse<'a> {
    response_id: String,
    text: &'a str,
    generation_id: String,
    chat_history: [Value; 0],
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct StreamEvent<'a> {
    is_finished: bool,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ChatResponse<'a>>,
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

fn chat_response<'a>(completion: &Completion, text: &'a str) -> ChatResponse<'a> {
    let seed = fnv1a_64(text.as_bytes());
    ChatResponse {
        response_id: uuid_from(seed, 1),
        text,
        generation_id: uuid_from(seed, 2),
        chat_history: [],
        finish_reason: complete_or_max_tokens(&completion.stop),
    }
}

fn request_schema() -> Shape {
    let text = || string_up_to(usize::MAX);
    let turn = Shape::Object {
        properties: vec![("role", Shape::Enum(&["USER", "CHATBOT"])), ("message", text())],
        required: vec!["role", "message"],
    };
    let any_objects = || array_of(Shape::AnyObject, 0, usize::MAX);
    Shape::Object {
        properties: vec![
            ("message", text()),
            ("chat_history", array_of(turn, 0, usize::MAX)),
            ("documents", any_objects()),
            ("search_queries_only", Shape::Boolean),
            ("preamble", text()),
            ("max_tokens", Shape::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT.into() }),
            ("temperature", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("p", Shape::Number { minimum: 0.01, maximum: 0.99 }),
            ("k", Shape::Number { minimum: 0.0, maximum: 500.0 }),
            ("prompt_truncation", Shape::Enum(&["OFF", "AUTO_PRESERVE_ORDER"])),
            ("frequency_penalty", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("presence_penalty", Shape::Number { minimum: 0.0, maximum: 1.0 }),
            ("seed", Shape::Integer { minimum: i64::MIN, maximum: i64::MAX }),
            ("return_prompt", Shape::Boolean),
            ("tools", any_objects()),
            ("tool_results", any_objects()),
            ("stop_sequences", array_of(text(), 0, usize::MAX)),
            ("raw_prompting", Shape::Boolean),
        ],
        required: vec!["message"],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        CohereCommandR
            .parse_request("cohere.command-r-v1:0", &body)
            .map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_preamble_history_and_message() {
        let request = parse(json!({"message": "What is gravity?", "preamble": "Be terse.",
            "chat_history": [{"role": "USER", "message": "Who found gravity?"},
                             {"role": "CHATBOT", "message": "Newton"}],
            "seed": 7, "max_tokens": 9, "stop_sequences": ["."], "documents": [{"title": "t"}],
            "search_queries_only": false, "prompt_truncation": "OFF"}))
        .unwrap();
        assert_eq!(request.prompt, "Be terse.\nWho found gravity?\nNewton\nWhat is gravity?");
        assert_eq!(request.max_tokens, 9);
        assert_eq!(request.stop_sequences, vec![".".to_owned()]);
        assert_eq!(parse(json!({"message": "x"})).unwrap().max_tokens, 4000);
    }

    #[test]
    fn rejects_bad_requests() {
        let detail = |detail: &str| {
            format!("Malformed input request: {detail}, please reformat your input and try again.")
        };
        let cases = [
            (
                json!({"message": "x", "chat_history": [{"role": "user", "message": "hi"}]}),
                "#/chat_history/0/role: user is not a valid enum value",
            ),
            (
                json!({"message": "x", "chat_history": [{"role": "USER"}]}),
                "#/chat_history/0: required key [message] not found",
            ),
            (
                json!({"message": "x", "seed": 1.5}),
                "#/seed: expected type: Integer, found: BigDecimal",
            ),
            (json!({"message": "x", "p": 1}), "#/p: 1 is not less or equal to 0.99"),
            (json!({"prompt": "x"}), "2 schema violations found"),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body.clone()).unwrap_err(), detail(expected), "{body}");
        }
    }

    #[test]
    fn answer_and_stream_shapes() {
        let completion = generate(&parse(json!({"message": "hi there", "max_tokens": 1})).unwrap());
        let response: Value =
            serde_json::from_slice(&CohereCommandR.response_body(&completion)).unwrap();
        assert_eq!(response["text"], completion.text());
        assert_eq!(response["finish_reason"], "MAX_TOKENS");
        assert_eq!(response["chat_history"], json!([]));

        assert_eq!(CohereCommandR.n_stream_chunks(&completion), 3);
        let chunk = |idx| -> Value {
            serde_json::from_slice(&CohereCommandR.stream_chunk(&completion, idx, None)).unwrap()
        };
        assert_eq!(chunk(0)["event_type"], "stream-start");
        assert_eq!(chunk(0)["generation_id"], response["generation_id"]);
        assert_eq!(
            chunk(1),
            json!({"is_finished": false, "event_type": "text-generation",
            "text": completion.tokens[0]})
        );
        assert_eq!(
            chunk(2),
            json!({"is_finished": true, "event_type": "stream-end",
            "finish_reason": "MAX_TOKENS", "response": response})
        );
    }
}
