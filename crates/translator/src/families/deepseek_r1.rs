//! DeepSeek-R1: the `deepseek.r1-*` model id, which Bedrock serves only through
//! inference profiles (`us.deepseek.r1-v1:0`).
//!
//! The request is `{"prompt", "max_tokens", "temperature", "top_p", "stop"}` with the
//! prompt in DeepSeek-R1's chat template; the answer is `choices[0].text` (wire
//! reference §4.11).
//!
//! Decisions:
//! - The template follows the AWS example and DeepSeek's own chat template:
//!   `<｜begin▁of▁sentence｜>{system}`, then each user message as `<｜User｜>{content}`,
//!   each assistant message as `<｜Assistant｜>{content}<｜end▁of▁sentence｜>` (with any
//!   reasoning before its last `</think>` dropped, as DeepSeek's template does), then
//!   `<｜Assistant｜><think>\n` for the model to reason and answer. A final assistant
//!   message is continued instead. A plain `prompt` is one user turn.
//! - The answer's text is returned as the model wrote it: its reasoning, then
//!   `</think>`, then the answer. A stream chunk cannot know on which side of
//!   `</think>` it falls, so the text is not split.
//! - `max_tokens` must be 1..=32768 and `stop` holds at most 10 sequences (AWS docs).
//! - The bodies carry no token counts: usage comes from Bedrock's headers, or from a
//!   stream's invocation metrics.
//! - Stream chunks have the response's shape, `{"choices": [{"text", "stop_reason"}]}`,
//!   the last with the stop reason and the invocation metrics. No recorded stream was
//!   found; the response shape is AWS's (DeepSeek-R1 inference parameters page). A chunk
//!   without `choices` and with nothing else to read is reported as unrecognized.
//! - A guardrail intervention (`amazon-bedrock-guardrailAction: INTERVENED` on the body or
//!   a chunk) is a `content_filter` stop.

use serde::{Deserialize, Serialize};

use crate::error::TranslateError;
use crate::families::common::{
    GuardedChunk, TextChoice, check_max_tokens_limit, check_stop_count, convert_stop_or_length,
    decode_first_text_choice, decode_guarded_response, finish_stream_event,
    first_text_choice_event, parse_guarded_stream_chunk,
};
use crate::families::{TextFamily, check_range, parse_body, to_body};
use crate::unified::{Param, Role, StreamEvent, UnifiedRequest, UnifiedResponse};

/// The DeepSeek-R1 family.
#[derive(Debug, Clone, Copy)]
pub struct DeepseekR1;

const ID: &str = "deepseek_r1";

/// The largest `max_tokens` Bedrock accepts.
const MAX_TOKENS_LIMIT: u32 = 32_768;

/// The most stop sequences Bedrock accepts.
const MAX_STOP_SEQUENCES: usize = 10;

const BEGIN_OF_SENTENCE: &str = "<｜begin▁of▁sentence｜>";
const END_OF_SENTENCE: &str = "<｜end▁of▁sentence｜>";
const USER: &str = "<｜User｜>";
const ASSISTANT: &str = "<｜Assistant｜>";
/// Where the model's reasoning ends in an assistant message.
const END_OF_THINKING: &str = "</think>";

/// The body of InvokeModel and InvokeModelWithResponseStream.
#[derive(Debug, Serialize)]
struct DeepseekRequest<'a> {
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

/// An InvokeModel response body, and also the shape of every stream chunk.
#[derive(Debug, Deserialize)]
struct DeepseekResponse {
    #[serde(default)]
    choices: Vec<TextChoice>,
}

/// One decoded stream chunk; `choices` is `None` when the key is absent.
#[derive(Debug, Deserialize)]
struct DeepseekStreamChunk {
    #[serde(default)]
    choices: Option<Vec<TextChoice>>,
}

impl TextFamily for DeepseekR1 {
    fn id(&self) -> &'static str {
        ID
    }

    fn matches(&self, base_model_id: &str) -> bool {
        base_model_id.starts_with("deepseek.r1-")
    }

    fn params(&self) -> &'static [Param] {
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop]
    }

    fn mapped_paths(&self) -> &'static [&'static str] {
        &["prompt", "max_tokens", "temperature", "top_p", "stop"]
    }

    fn encode_request(&self, req: &UnifiedRequest) -> Result<serde_json::Value, TranslateError> {
        check_range(ID, "temperature", req.temperature, 0.0..=1.0)?;
        check_range(ID, "top_p", req.top_p, 0.0..=1.0)?;
        check_max_tokens_limit(ID, req.max_tokens, MAX_TOKENS_LIMIT)?;
        check_stop_count(ID, &req.stop, MAX_STOP_SEQUENCES)?;
        let body = DeepseekRequest {
            prompt: render_prompt(req),
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            stop: &req.stop,
        };
        to_body(ID, &body)
    }

    fn decode_response(&self, body: &[u8]) -> Result<UnifiedResponse, TranslateError> {
        decode_guarded_response(ID, body, |body| {
            let res: DeepseekResponse = parse_body(ID, body)?;
            decode_first_text_choice(ID, "choices", res.choices, convert_stop_or_length)
        })
    }

    fn decode_stream_event(&self, chunk: &[u8]) -> Result<StreamEvent, TranslateError> {
        // The chunk has no counts of its own, so the invocation metrics are the usage.
        let GuardedChunk { chunk, usage, guardrail_intervened } =
            parse_guarded_stream_chunk::<DeepseekStreamChunk>(ID, chunk)?;
        let known = chunk.choices.is_some();
        let choices = chunk.choices.unwrap_or_default();
        let event = first_text_choice_event(choices, usage, convert_stop_or_length);
        Ok(finish_stream_event(event, known, guardrail_intervened))
    }
}

/// The conversation in DeepSeek-R1's chat template.
fn render_prompt(req: &UnifiedRequest) -> String {
    let conversation = req.conversation();
    let mut prompt = String::from(BEGIN_OF_SENTENCE);
    if let Some(system) = &conversation.system {
        prompt.push_str(system);
    }
    let n_turns = conversation.turns.len();
    for (i, (role, content)) in conversation.turns.iter().enumerate() {
        let content: &str = content;
        if *role != Role::Assistant {
            prompt.push_str(USER);
            prompt.push_str(content);
            continue;
        }
        prompt.push_str(ASSISTANT);
        if i + 1 == n_turns {
            // The model continues the final assistant message.
            prompt.push_str(content);
            return prompt;
        }
        let answer = content.rsplit(END_OF_THINKING).next().unwrap_or(content);
        prompt.push_str(answer);
        prompt.push_str(END_OF_SENTENCE);
    }
    prompt.push_str(ASSISTANT);
    prompt.push_str("<think>\n");
    prompt
}

#[cfg(test)]
mod tests {
    use crate::error::TranslateError;
    use crate::families::TextFamily;
    use crate::families::common::conversation;
    use crate::families::deepseek_r1::{DeepseekR1, render_prompt};
    use crate::unified::{Role, UnifiedRequest};

    #[test]
    fn plain_prompt_matches_the_aws_example() {
        let req = UnifiedRequest { prompt: Some("Hi".to_owned()), ..UnifiedRequest::default() };
        assert_eq!(
            render_prompt(&req),
            "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n"
        );
    }

    #[test]
    fn history_drops_earlier_reasoning() {
        let req = conversation(&[
            (Role::System, "Be terse."),
            (Role::User, "Hi"),
            (Role::Assistant, "greet back</think>\n\nHello."),
            (Role::User, "Joke?"),
        ]);
        assert_eq!(
            render_prompt(&req),
            "<｜begin▁of▁sentence｜>Be terse.<｜User｜>Hi<｜Assistant｜>\n\nHello.\
             <｜end▁of▁sentence｜><｜User｜>Joke?<｜Assistant｜><think>\n"
        );
    }

    #[test]
    fn final_assistant_message_is_continued() {
        let req = conversation(&[(Role::User, "Hi"), (Role::Assistant, "<think>\nok")]);
        assert!(render_prompt(&req).ends_with("<｜User｜>Hi<｜Assistant｜><think>\nok"));
    }

    #[test]
    fn eleven_stop_sequences_are_invalid() {
        let req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            stop: (0..11).map(|i| format!("s{i}")).collect(),
            ..UnifiedRequest::default()
        };
        let err = DeepseekR1.encode_request(&req).unwrap_err();
        assert!(matches!(err, TranslateError::InvalidRequest(_)), "{err:?}");
    }
}
