//! Mistral AI chat completion (`messages` body): request checks and answer shapes of wire
//! document §4.6 for the models whose Bedrock documentation shows the chat body.
//!
//! Models: `mistral.mistral-large-2407-v1:0`, `mistral.mistral-large-2411-v1:0` and, only through an inference profile,
//! `mistral.pixtral-large-2502-v1:0` (its content may be a list of `text` and `image_url`
//! parts).
//!
//! The choice carries `stop_reason`, the shape of the AWS user guide's response
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-mistral-chat-completion.html>).
//! No recording of this body's answers from Bedrock exists in the sources searched
//! (OpenLLMetry, OpenInference, LiteLLM, langchain-aws); LiteLLM reads `finish_reason`
//! instead, so the gateway accepts `stop_reason`, `finish_reason` or both (its
//! `mistral_chat` fixtures cover each). The body has no `stop` key (refused as extraneous,
//! as Bedrock refuses it: BerriAI/litellm#5592).

use serde::Serialize;
use serde_json::Value;

use crate::error::BedrockError;
use crate::families::common::{
    NullContent, TextWithStopReason, check_chat_messages, message_texts, stop_or_length, u32_value,
    validate_masked,
};
use crate::families::{Family, InvocationMetrics, json_bytes};
use crate::generate::{Completion, GenerationRequest};
use crate::media_schema::{ViolationReport, finish, type_mismatch};
use crate::schema::Schema;

/// The Mistral chat completion family.
pub(crate) struct MistralChat;

const MODELS: &[&str] = &[
    "mistral.mistral-large-2407-v1:0",
    "mistral.mistral-large-2411-v1:0",
    "mistral.pixtral-large-2502-v1:0",
];

/// The models Bedrock serves only through an inference profile.
const PROFILE_ONLY_MODELS: &[&str] = &["mistral.pixtral-large-2502-v1:0"];

/// `max_tokens` when the request gives none, and its largest value.
const DEFAULT_MAX_TOKENS: u32 = 8192;

const MAX_TOKENS_LIMIT: i64 = 8192;

const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

impl Family for MistralChat {
    fn id(&self) -> &'static str {
        "mistral_chat"
    }

    fn matches(&self, base_model_id: &str) -> bool {
        MODELS.contains(&base_model_id)
    }

    fn needs_inference_profile(&self, base_model_id: &str) -> bool {
        PROFILE_ONLY_MODELS.contains(&base_model_id)
    }

    fn parse_request(
        &self,
        _base_model_id: &str,
        body: &Value,
    ) -> Result<GenerationRequest, BedrockError> {
        validate_masked(&request_schema(), body, &["messages", "tools"])?;
        let messages = check_messages(body.get("messages"))?;
        let texts: Vec<&str> = messages.iter().flat_map(|message| message_texts(message)).collect();
        Ok(GenerationRequest {
            prompt: texts.join("\n"),
            max_tokens: u32_value(body.get("max_tokens")).unwrap_or(DEFAULT_MAX_TOKENS),
            stop_sequences: Vec::new(),
            space_before_first_token: false,
            ..GenerationRequest::default()
        })
    }

    fn response_body(&self, completion: &Completion) -> Vec<u8> {
        json_bytes(&ChatChoices {
            choices: [ChatChoice {
                index: 0,
                message: ChatMessage { role: "assistant", content: &completion.text() },
                stop_reason: Some(stop_or_length(&completion.stop)),
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
        let chunk = TextWithStopReason::stream_chunk(completion, chunk_idx);
        json_bytes(&ChatChoices {
            choices: [ChatChoice {
                index: 0,
                message: ChatMessage { role: "assistant", content: chunk.text },
                stop_reason: chunk.stop_reason,
            }],
            invocation_metrics: metrics,
        })
    }
}

/// The response body, and each stream chunk.
#[derive(Serialize)]
struct ChatChoices<'a> {
    choices: [ChatChoice<'a>; 1],
    #[serde(rename = "amazon-bedrock-invocationMetrics", skip_serializing_if = "Option::is_none")]
    invocation_metrics: Option<InvocationMetrics>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    stop_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// `messages` and `tools` are lists of objects, checked by hand.
fn request_schema() -> Schema {
    Schema::Object {
        properties: vec![
            ("messages", Schema::String),
            ("tools", Schema::String),
            ("tool_choice", Schema::String),
            ("max_tokens", Schema::Integer { minimum: 1, maximum: MAX_TOKENS_LIMIT }),
            ("top_p", Schema::Number { minimum: 0.0, maximum: 1.0 }),
            ("temperature", Schema::Number { minimum: 0.0, maximum: 1.0 }),
        ],
        required: vec!["messages"],
    }
}

/// Checks the shape of `messages` and the roles, and returns the messages.
fn check_messages(messages: Option<&Value>) -> Result<&[Value], BedrockError> {
    let mut violations = Vec::new();
    let items = match messages {
        Some(Value::Array(items)) if items.is_empty() => {
            violations.push("#/messages: expected minimum item count: 1, found: 0".to_owned());
            &[][..]
        }
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => {
            violations.push(type_mismatch("#/messages", "JSONArray", other));
            &[][..]
        }
        None => &[][..],
    };
    let allowed = ["role", "content", "tool_calls", "tool_call_id"];
    check_chat_messages(
        items,
        &["role", "content"],
        &allowed,
        NullContent::Refused,
        &mut violations,
    );
    finish(&violations, ViolationReport::Counted)?;
    for (idx, message) in items.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        if !ROLES.contains(&role) {
            return Err(BedrockError::validation(format!(
                "messages.{idx}.role: Input should be 'system', 'user', 'assistant' or 'tool'"
            )));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::generate::generate;

    const LARGE: &str = "mistral.mistral-large-2407-v1:0";

    fn parse(body: Value) -> Result<GenerationRequest, String> {
        MistralChat.parse_request(LARGE, &body).map_err(|error| error.message().to_owned())
    }

    #[test]
    fn reads_the_message_texts() {
        let body = json!({"messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "abc"}]},
            {"role": "tool", "tool_call_id": "abc", "content": "42"}],
            "tools": [{"type": "function"}], "tool_choice": "auto", "max_tokens": 30});
        let request = parse(body).unwrap();
        assert_eq!(request.prompt, "Be terse.\nDescribe\n\n42");
        assert_eq!(request.max_tokens, 30);
        assert_eq!(
            parse(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap().max_tokens,
            8192
        );
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(
            parse(json!({"prompt": "<s>[INST] hi [/INST]"})).unwrap_err(),
            "Malformed input request: 2 schema violations found, please reformat your input and \
             try again."
        );
        assert_eq!(
            parse(json!({"messages": []})).unwrap_err(),
            "Malformed input request: #/messages: expected minimum item count: 1, found: 0, \
             please reformat your input and try again."
        );
        assert_eq!(
            parse(json!({"messages": [{"role": "robot", "content": "x"}]})).unwrap_err(),
            "messages.0.role: Input should be 'system', 'user', 'assistant' or 'tool'"
        );
        assert!(
            parse(json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a"]}))
                .unwrap_err()
                .contains("extraneous key [stop]")
        );
        assert!(
            parse(json!({"messages": [{"role": "user", "content": "x"}], "top_p": 2})).is_err()
        );
    }

    #[test]
    fn answer_and_stream_shapes() {
        let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 1});
        let completion = generate(&parse(body).unwrap());
        let response = String::from_utf8(MistralChat.response_body(&completion)).unwrap();
        assert_eq!(
            response,
            format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"stop_reason":"length"}}]}}"#,
                completion.text()
            )
        );
        let last = String::from_utf8(MistralChat.stream_chunk(&completion, 1, None)).unwrap();
        assert_eq!(
            last,
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":""},"stop_reason":"length"}]}"#
        );
    }
}
