//! OpenAI's open-weight models: `openai.gpt-oss-*` model ids (`openai.gpt-oss-120b-1:0`,
//! `openai.gpt-oss-20b-1:0`).
//!
//! The body is OpenAI's Chat Completions request (`messages`, `max_completion_tokens`,
//! `temperature`, `top_p`, `stop`); the answer is a chat completion object
//! (`choices[0].message.content`, `finish_reason`, `usage`), and a stream is chat
//! completion chunks (`choices[0].delta.content`).
//!
//! Decisions:
//! - The system prompt is sent as a first `developer` message, the role the AWS
//!   documentation maps to Converse's system prompt; the other messages go as they are.
//!   A plain `prompt` is one user message.
//! - `max_tokens` maps to `max_completion_tokens`. `model` and `stream` are left out:
//!   Bedrock fills them from the model id and the operation.
//! - Through InvokeModel the model's reasoning comes inside the content, wrapped in
//!   `<reasoning>...</reasoning>` before the answer (AWS documentation); streamed, each
//!   chunk wraps its own piece of reasoning. Those spans are removed from the text, as is
//!   everything after an unclosed `<reasoning>`; reasoning sent in a separate field
//!   (`reasoning_content`, `reasoning`) is ignored.
//! - `temperature` follows OpenAI's range, 0 to 2.
//! - `finish_reason`: `stop` ends the turn (the model finished or hit a stop sequence;
//!   the two are not told apart), `length` is a length stop, `content_filter` a content
//!   filter, `tool_calls` and anything else `Other`.
//!
//! Bedrock does not stream this model: a streaming request is refused as unsupported
//! (`streaming`, 422) before any call.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    ChatMessage, ChatUsage, chat_messages, convert_chat_finish_reason, convert_chat_usage,
    unsupported_streaming,
};
use crate::families::{TextFamily, check_range, parse_body, parse_stream_chunk, to_body};
use crate::unified::{Param, StopReason, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The OpenAI gpt-oss family.
#[derive(Debug, Clone, Copy)]
pub struct OpenaiGptOss;

const ID: &str = "openai_gpt_oss";

const REASONING_START: &str = "<reasoning>";
const REASONING_END: &str = "</reasoning>";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct ChatCompletionRequest<'a> {
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

/// A chat completion (InvokeModel) or chat completion chunk (stream).
#[derive(Debug, Deserialize)]
struct ChatCompletion {
    #[serde(default)]
    choices: Vec<ChatChoice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
struct ChatChoice {
    /// The answer of a chat completion.
    #[serde(default)]
    message: Option<ChatContent>,
    /// The piece of answer of a chunk.
    #[serde(default)]
    delta: Option<ChatContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// A message or delta; `content` is null when the model calls a tool.
#[derive(Debug, Deserialize)]
struct ChatContent {
    #[serde(default)]
    content: Option<String>,
}

impl TextFamily for OpenaiGptOss {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("openai.gpt-oss-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &[
            "messages",
            "max_completion_tokens",
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "stream",
        ]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        // Bedrock answers InvokeModelWithResponseStream on these models with
        // "The model is unsupported for streaming.": refuse it before the call.
        if req.stream {
            return Err(unsupported_streaming(ID));
        }
        check_range(ID, "temperature", req.temperature, 0.0..=2.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        let conversation = req.conversation();
        let body = ChatCompletionRequest {
            messages: chat_messages(&conversation, "developer"),
            max_completion_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop: &req.stop,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        let res: ChatCompletion = parse_body(ID, body)?;
        let usage = res.usage.map(convert_chat_usage).unwrap_or_default();
        let Some(ChatChoice { message: Some(message), finish_reason, .. }) =
            res.choices.into_iter().next()
        else {
            return Err(TranslateError::MalformedResponse {
                family: ID,
                detail: "the body has no `choices[0].message`".to_owned(),
            });
        };
        Ok(UnifiedResponse {
            text: strip_reasoning(message.content.as_deref().unwrap_or_default()),
            stop_reason: finish_reason
                .as_deref()
                .map_or(StopReason::Other, convert_chat_finish_reason),
            usage,
        })
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        let (chunk, mut usage) = parse_stream_chunk::<ChatCompletion>(ID, chunk)?;
        usage.update(chunk.usage.map(convert_chat_usage).unwrap_or_default());
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(StreamEvent { usage, ..StreamEvent::default() });
        };
        let content = choice.delta.or(choice.message).and_then(|content| content.content);
        Ok(StreamEvent {
            unrecognized: false,
            text: content.as_deref().map(strip_reasoning).unwrap_or_default(),
            stop_reason: choice.finish_reason.as_deref().map(convert_chat_finish_reason),
            usage,
        })
    }
}

/// `text` without its `<reasoning>...</reasoning>` spans, and without anything after a
/// `<reasoning>` that is never closed.
fn strip_reasoning(text: &str) -> String {
    let mut answer = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(REASONING_START) {
        answer.push_str(&rest[..start]);
        let after_start = &rest[start + REASONING_START.len()..];
        match after_start.find(REASONING_END) {
            Some(end) => rest = &after_start[end + REASONING_END.len()..],
            None => return answer,
        }
    }
    answer.push_str(rest);
    answer
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::families::TextFamily;
    use crate::families::openai_gpt_oss::{OpenaiGptOss, strip_reasoning};
    use crate::unified::{Message, Role, UnifiedRequest, Usage};

    #[test]
    fn reasoning_spans_are_removed() {
        assert_eq!(strip_reasoning("<reasoning>think</reasoning>Paris."), "Paris.");
        assert_eq!(strip_reasoning("a<reasoning>x</reasoning>b<reasoning>y</reasoning>c"), "abc");
        assert_eq!(strip_reasoning("answer <reasoning>never closed"), "answer ");
        assert_eq!(strip_reasoning("plain </reasoning> text"), "plain </reasoning> text");
    }

    #[test]
    fn system_prompt_is_a_developer_message() {
        let req = UnifiedRequest {
            messages: vec![
                Message { role: Role::System, content: "Be terse.".to_owned() },
                Message { role: Role::User, content: "Hi".to_owned() },
            ],
            ..UnifiedRequest::default()
        };
        let body = OpenaiGptOss.encode_request(&req).unwrap();
        assert_eq!(
            body["messages"],
            json!([{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "Hi"}])
        );
    }

    #[test]
    fn usage_only_chunk_has_no_text() {
        let chunk = br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3}}"#;
        let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
        assert_eq!(event.usage, Usage { input_tokens: Some(10), output_tokens: Some(3) });
        assert_eq!((event.text.as_str(), event.stop_reason), ("", None));
    }

    #[test]
    fn separate_reasoning_field_is_not_text() {
        let chunk = br#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}"#;
        let event = OpenaiGptOss.decode_stream_event(chunk).unwrap();
        assert_eq!(event.text, "");
    }
}
