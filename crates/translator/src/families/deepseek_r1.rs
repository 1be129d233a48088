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
//! - The model writes its reasoning, then `</think>`, then the answer (the prompt opens
//!   the `<think>` block). A whole answer is split at the first `</think>`: what comes
//!   before (without a leading `<think>` the model may repeat, trimmed) is the answer's
//!   `reasoning` ([`Param::Reasoning`]; the codec drops it when the request did not ask),
//!   what comes after (its leading whitespace trimmed, the blank line the model puts after
//!   the tag) is the text. An answer without `</think>` cannot be told apart: a guardrail's
//!   message has none, nor does an answer that continues a final assistant message already
//!   past `</think>`, nor one cut while reasoning (a length stop); it is all text, as the
//!   model wrote it, and has no reasoning.
//! - Streamed, a chunk cannot know on which side of `</think>` it falls: an event's
//!   `text` is the chunk's raw text, and the family's stream text filter
//!   ([`ThinkFilter`]) holds the text back until the first `</think>`, drops it and the
//!   whitespace after the tag, then forwards the rest as it comes; a stream that ends
//!   without `</think>` forwards what it held at its end. The forwarded text is the whole
//!   answer's whatever the cuts. The streamed reasoning is dropped, not returned (a stream
//!   text filter yields text only).
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
use crate::families::{StreamTextFilter, TextFamily, check_range, parse_body, to_body};
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
/// Where it starts; the prompt opens it, the model may write it again.
const START_OF_THINKING: &str = "<think>";

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
        &[Param::MaxTokens, Param::Temperature, Param::TopP, Param::Stop, Param::Reasoning]
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
            let mut answer =
                decode_first_text_choice(ID, "choices", res.choices, convert_stop_or_length)?;
            let (reasoning, text) = split_thinking(&answer.text);
            answer.reasoning = (!reasoning.is_empty()).then(|| reasoning.to_owned());
            answer.text = text.to_owned();
            Ok(answer)
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

    /// Forwards only what follows the first `</think>`.
    fn stream_text_filter(&self) -> Option<Box<dyn StreamTextFilter>> {
        Some(Box::new(ThinkFilter::default()))
    }
}

/// A whole answer's reasoning and text (see the module doc).
fn split_thinking(answer: &str) -> (&str, &str) {
    let Some((reasoning, text)) = answer.split_once(END_OF_THINKING) else {
        return ("", answer);
    };
    let reasoning = reasoning.trim_start();
    let reasoning = reasoning.strip_prefix(START_OF_THINKING).unwrap_or(reasoning);
    (reasoning.trim(), text.trim_start())
}

/// The stream text filter: holds everything back up to the first `</think>`, drops it with
/// the tag and the whitespace right after it, then forwards the text as it comes; at the
/// end of a stream without `</think>`, forwards what it held.
#[derive(Debug, Default)]
struct ThinkFilter {
    /// `</think>` was seen.
    answering: bool,
    /// `</think>` was seen and something other than whitespace has followed.
    answer_started: bool,
    /// Before `</think>`: the text so far.
    held: String,
    /// The text before `</think>`, once the tag was seen, until taken.
    reasoning: String,
}

impl StreamTextFilter for ThinkFilter {
    fn push(&mut self, text: &str) -> String {
        if self.answering {
            return self.answer(text);
        }
        // Only the new text and the tail before it can complete the tag.
        let search_from = self.held.len().saturating_sub(END_OF_THINKING.len() - 1);
        let search_from =
            (search_from..=self.held.len()).find(|&i| self.held.is_char_boundary(i)).unwrap_or(0);
        self.held.push_str(text);
        let Some(at) = self.held[search_from..].find(END_OF_THINKING) else {
            return String::new();
        };
        self.answering = true;
        let rest = self.held.split_off(search_from + at + END_OF_THINKING.len());
        self.held.truncate(search_from + at);
        let thought = std::mem::take(&mut self.held);
        let thought = thought.trim_start();
        let thought = thought.strip_prefix(START_OF_THINKING).unwrap_or(thought);
        self.reasoning = thought.trim().to_owned();
        self.answer(&rest)
    }

    fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    fn take_reasoning(&mut self) -> String {
        std::mem::take(&mut self.reasoning)
    }
}

impl ThinkFilter {
    /// Answer text, without the whitespace that opens the answer.
    fn answer(&mut self, text: &str) -> String {
        if self.answer_started {
            return text.to_owned();
        }
        let text = text.trim_start();
        self.answer_started = !text.is_empty();
        text.to_owned()
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
    use crate::families::common::conversation;
    use crate::families::deepseek_r1::{DeepseekR1, ThinkFilter, render_prompt, split_thinking};
    use crate::families::{StreamTextFilter, TextFamily};
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

    #[test]
    fn reasoning_is_split_from_the_answer() {
        let body =
            "{\"choices\":[{\"text\":\"Greet.\\n</think>\\n\\nHello.\",\"stop_reason\":\"stop\"}]}";
        let answer = DeepseekR1.decode_response(body.as_bytes()).unwrap();
        assert_eq!((answer.text.as_str(), answer.reasoning.as_deref()), ("Hello.", Some("Greet.")));
        assert_eq!(split_thinking("<think>\nA</think>B</think>"), ("A", "B</think>"));
        assert_eq!(split_thinking("no tag at all"), ("", "no tag at all"));
    }

    /// Every way of cutting the text into three pieces forwards the whole answer's text.
    #[test]
    fn the_filter_forwards_the_answer_across_any_cut() {
        let text = "Think é </thin k.</think>\n\n Paris é.";
        let (_, whole) = split_thinking(text);
        assert_eq!(whole, "Paris é.");
        let cuts: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for &first in &cuts {
            for &second in cuts.iter().filter(|&&second| second >= first) {
                let mut filter = ThinkFilter::default();
                let mut answer = filter.push(&text[..first]);
                answer.push_str(&filter.push(&text[first..second]));
                answer.push_str(&filter.push(&text[second..]));
                answer.push_str(&filter.finish());
                assert_eq!(answer, whole, "cut at {first} and {second}");
            }
        }
        let mut filter = ThinkFilter::default();
        assert_eq!(filter.push("never "), "");
        assert_eq!(filter.push("closed"), "");
        assert_eq!(filter.finish(), "never closed");
    }
}
