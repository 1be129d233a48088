//! The open-weight models Bedrock serves with an OpenAI Chat Completions body on
//! InvokeModel: Qwen3 (`qwen.qwen3-*`), DeepSeek V3.1 and V3.2 (`deepseek.v3*`), Moonshot
//! Kimi (`moonshot.kimi-*`, `moonshotai.kimi-*`), MiniMax (`minimax.minimax-*`), Google
//! Gemma 3 (`google.gemma-3-*`), NVIDIA Nemotron (`nvidia.nemotron-*`) and the Mistral models
//! launched with them (Ministral 3, Magistral, Mistral Large 3, Devstral 2, Voxtral). One
//! family, many ids: [`MODEL_PREFIXES`].
//!
//! The body is `{"messages": [{"role", "content"}], "max_tokens", "temperature", "top_p",
//! "stop"}`; the answer is a chat completion object (`choices[0].message.content`,
//! `finish_reason`, `usage.prompt_tokens` / `completion_tokens`), and a stream is
//! `chat.completion.chunk` objects (`choices[0].delta.content`, the `finish_reason` on the
//! last choice, usage in an OpenAI usage-only chunk or in Bedrock's invocation metrics).
//!
//! Sources: the AWS user guide's API compatibility table lists DeepSeek V3.1 / V3.2, Gemma 3,
//! MiniMax M2 / M2.1 and Kimi K2.5 under both Invoke and Chat Completions, Kimi K2 Thinking
//! and the Qwen3 models under Invoke
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/models-api-compatibility.html>); the
//! DeepSeek parameter page covers V3.1 beside R1
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-deepseek.html>).
//! Recorded InvokeModel use: Qwen3 with `messages` + `max_tokens` read back from
//! `choices[0].message.content` (Legus-Yeung/rag-with-aws-bedrock-and-pinecone `aws-chat.py`,
//! `qwen.qwen3-coder-30b-a3b-v1:0`; promptfoo/promptfoo `src/providers/bedrock/index.ts`,
//! the `QWEN` handler, which also sends `stop`); Kimi K2 Thinking with the Moonshot
//! (OpenAI) chat body, its reasoning inside `content` in `<reasoning>...</reasoning>`
//! (BerriAI/litellm `litellm/llms/bedrock/chat/invoke_transformations/amazon_moonshot_transformation.py`).
//! Nemotron and the newer Mistral models: no AWS parameter page and no recorded InvokeModel
//! answer was found; indirect evidence decided it. They were launched on Bedrock with Gemma 3,
//! Kimi, MiniMax and Qwen3-Next as one batch of open-weight models; pixeltable/pixeltable
//! `pixeltable/functions/bedrock.py` sends their InvokeModel media as OpenAI `image_url` data
//! URIs exactly as for Gemma 3 and Kimi; and callers list them beside those models for
//! structured output (`response_format`). Should one answer with Mistral's `stop_reason`
//! instead of `finish_reason`, the shared decoder reads that too.
//!
//! Decisions:
//! - The system prompt is a first `system` message; the other turns go as they are (the
//!   chat body does not require alternation). A plain `prompt` is one user message.
//! - `max_tokens` is sent as `max_tokens` (what every recorded client of these models
//!   sends; gpt-oss's `max_completion_tokens` is its own family's). `model` and `stream` are
//!   left out: Bedrock fills them from the model id and the operation.
//! - `stop` is sent (native). LiteLLM drops `stop` for Kimi on Bedrock; a model that
//!   refuses it answers Bedrock's 400, which reaches the caller as it is.
//! - `temperature` follows OpenAI's range, 0 to 2; `top_p` 0 to 1. The model's own narrower
//!   range, if any, is Bedrock's to enforce.
//! - `<reasoning>...</reasoning>` spans are removed from the text, whole and streamed
//!   (across chunks too, the shared
//!   [`TaggedSpanFilter`](crate::families::common::TaggedSpanFilter)), as for gpt-oss: Kimi
//!   K2 Thinking sends its reasoning that way. Reasoning in a separate field (`reasoning_content`,
//!   `reasoning`, DeepSeek's and Qwen's OpenAI-compatible servers) is ignored.
//! - `finish_reason`: `stop` ends the turn (a stop sequence is not told apart), `length` is
//!   a length stop, `content_filter` a content filter, `tool_calls` and anything else
//!   `Other`; a body without one is `Other`.
//! - `"amazon-bedrock-guardrailAction": "INTERVENED"` on a body or chunk makes the stop a
//!   content filter whatever `finish_reason` says; such a body needs no
//!   `choices[0].message` to be complete (the shared guardrail helpers of `common.rs`).
//! - A stream chunk with no choice carrying a `delta`, a `message` or a `finish_reason`, no
//!   `usage`, no invocation metrics and no guardrail intervention is `unrecognized`; a
//!   role-only or empty `delta` is a known empty event. Usage: a chunk's `usage` wins over
//!   the invocation metrics.
//!
//! Not in this family: `openai.gpt-oss-*` (`openai_gpt_oss`, `developer` system role and
//! `max_completion_tokens`); `openai.gpt-5*` and other new OpenAI models, served through
//! the Responses API; the older Mistral models (`mistral_text`, `mistral_chat`).

use crate::families::chat_completions::{ChatCompletionsFamily, MaxTokensKey};

/// The OpenAI-chat-shaped family.
#[derive(Debug, Clone, Copy)]
pub struct OpenaiChat;

/// The base model id prefixes of the family, with the models each covers (ids from the
/// AWS model cards and `ListFoundationModels` as recorded by their callers).
pub(crate) const MODEL_PREFIXES: &[&str] = &[
    // qwen.qwen3-32b-v1:0, qwen.qwen3-235b-a22b-2507-v1:0, qwen.qwen3-coder-30b-a3b-v1:0,
    // qwen.qwen3-coder-480b-a35b-v1:0, qwen.qwen3-next-80b-a3b, qwen.qwen3-vl-235b-a22b,
    // qwen.qwen3-coder-next
    "qwen.qwen3-",
    // deepseek.v3-v1:0 (V3.1), deepseek.v3.2; not deepseek.r1-* (`deepseek_r1`).
    "deepseek.v3-",
    "deepseek.v3.",
    // moonshot.kimi-k2-thinking, moonshotai.kimi-k2.5
    "moonshot.kimi-",
    "moonshotai.kimi-",
    // minimax.minimax-m2, minimax.minimax-m2.1
    "minimax.minimax-",
    // google.gemma-3-4b-it, google.gemma-3-12b-it, google.gemma-3-27b-it
    "google.gemma-3-",
    // nvidia.nemotron-nano-9b-v2, nvidia.nemotron-nano-12b-v2, nvidia.nemotron-nano-3-30b,
    // nvidia.nemotron-super-3-120b
    "nvidia.nemotron-",
    // mistral.ministral-3-3b-instruct, -8b-, -14b-; mistral.magistral-small-2509;
    // mistral.mistral-large-3-675b-instruct; mistral.devstral-2-123b;
    // mistral.voxtral-mini-3b-2507, mistral.voxtral-small-24b-2507. Not the older Mistral
    // models (`mistral_text`, `mistral_chat`).
    "mistral.ministral-3-",
    "mistral.magistral-",
    "mistral.mistral-large-3-",
    "mistral.devstral-",
    "mistral.voxtral-",
];

impl ChatCompletionsFamily for OpenaiChat {
    const ID: &'static str = "openai_chat";
    const MODEL_PREFIXES: &'static [&'static str] = MODEL_PREFIXES;
    const SYSTEM_ROLE: &'static str = "system";
    const MAX_TOKENS_KEY: MaxTokensKey = MaxTokensKey::MaxTokens;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::families::chat_completions::{REASONING_END, REASONING_START};
    use crate::families::common::{TaggedSpanFilter, conversation, strip_tagged_spans};
    use crate::families::openai_chat::OpenaiChat;
    use crate::families::{StreamTextFilter, TextFamily};
    use crate::unified::{Role, StopReason, UnifiedRequest, Usage};

    #[test]
    fn matches_the_listed_models_only() {
        for id in [
            "qwen.qwen3-32b-v1:0",
            "qwen.qwen3-coder-480b-a35b-v1:0",
            "qwen.qwen3-next-80b-a3b",
            "deepseek.v3-v1:0",
            "deepseek.v3.2",
            "moonshot.kimi-k2-thinking",
            "moonshotai.kimi-k2.5",
            "minimax.minimax-m2",
            "minimax.minimax-m2.1",
            "google.gemma-3-27b-it",
            "nvidia.nemotron-nano-9b-v2",
            "mistral.ministral-3-8b-instruct",
            "mistral.magistral-small-2509",
            "mistral.mistral-large-3-675b-instruct",
        ] {
            assert!(OpenaiChat.matches(id), "{id}");
        }
        for id in [
            "deepseek.r1-v1:0",
            "openai.gpt-oss-20b-1:0",
            "writer.palmyra-x5-v1:0",
            "mistral.mistral-large-2411-v1:0",
            "mistral.mistral-7b-instruct-v0:2",
            "qwen.qwen2-5-vl",
        ] {
            assert!(!OpenaiChat.matches(id), "{id}");
        }
    }

    #[test]
    fn system_prompt_is_a_system_message_and_turns_are_not_merged() {
        let req = conversation(&[
            (Role::System, "Be terse."),
            (Role::User, "Hi"),
            (Role::User, "Again"),
            (Role::Assistant, "Hello"),
        ]);
        let body = OpenaiChat.encode_request(&req).unwrap();
        assert_eq!(
            body,
            json!({"messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": "Again"},
                {"role": "assistant", "content": "Hello"}]})
        );
    }

    #[test]
    fn streaming_requests_are_encoded_without_stream() {
        let req = UnifiedRequest {
            prompt: Some("Hi".to_owned()),
            stream: true,
            max_tokens: Some(5),
            ..UnifiedRequest::default()
        };
        let body = OpenaiChat.encode_request(&req).unwrap();
        assert_eq!(body, json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}));
    }

    #[test]
    fn reasoning_spans_are_removed_whole_and_across_any_cut() {
        let text = "<reasoning>Think é.</reasoning>Paris<reasoning> more</reasoning> is it.";
        let whole = strip_tagged_spans(text, REASONING_START, REASONING_END);
        assert_eq!(whole, "Paris is it.");
        assert_eq!(
            strip_tagged_spans("a </reasoning> b", REASONING_START, REASONING_END),
            "a </reasoning> b"
        );
        assert_eq!(strip_tagged_spans("ok <reasoning>open", REASONING_START, REASONING_END), "ok ");
        let cuts: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for &first in &cuts {
            for &second in cuts.iter().filter(|&&second| second >= first) {
                let mut filter = TaggedSpanFilter::new(REASONING_START, REASONING_END);
                let mut answer = filter.push(&text[..first]);
                answer.push_str(&filter.push(&text[first..second]));
                answer.push_str(&filter.push(&text[second..]));
                answer.push_str(&filter.finish());
                assert_eq!(answer, whole, "cut at {first} and {second}");
            }
        }
    }

    #[test]
    fn answers_and_separate_reasoning() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","reasoning_content":"hmm"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        let answer = OpenaiChat.decode_response(body).unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("Paris.", StopReason::EndTurn));
        assert_eq!(answer.usage, Usage { input_tokens: Some(7), output_tokens: Some(2) });
        assert!(OpenaiChat.decode_response(br#"{"choices":[]}"#).is_err());
    }

    #[test]
    fn mistral_stop_reason_is_read_when_finish_reason_is_missing() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"stop_reason":"length"}]}"#;
        assert_eq!(OpenaiChat.decode_response(body).unwrap().stop_reason, StopReason::MaxTokens);
        let both = br#"{"choices":[{"index":0,"message":{"content":"Hi"},"finish_reason":"stop","stop_reason":"length"}]}"#;
        assert_eq!(OpenaiChat.decode_response(both).unwrap().stop_reason, StopReason::EndTurn);
        let chunk = br#"{"choices":[{"index":0,"delta":{},"stop_reason":"stop"}]}"#;
        let event = OpenaiChat.decode_stream_event(chunk).unwrap();
        assert_eq!((event.stop_reason, event.unrecognized), (Some(StopReason::EndTurn), false));
    }

    #[test]
    fn unknown_chunks_are_unrecognized_and_known_empty_ones_are_not() {
        for chunk in
            [&br#"{"type":"ping"}"#[..], br#"{"choices":[]}"#, br#"{"choices":[{"index":0}]}"#]
        {
            let event = OpenaiChat.decode_stream_event(chunk).unwrap();
            assert!(event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
        for chunk in [
            &br#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#[..],
            br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            br#"{"choices":[],"amazon-bedrock-invocationMetrics":{"inputTokenCount":1,"outputTokenCount":2}}"#,
        ] {
            let event = OpenaiChat.decode_stream_event(chunk).unwrap();
            assert!(!event.unrecognized, "{}", String::from_utf8_lossy(chunk));
        }
    }

    #[test]
    fn guardrail_intervention_is_a_content_filter_stop() {
        let chunk = br#"{"choices":[{"index":0,"delta":{"content":"Sorry."}}],"amazon-bedrock-guardrailAction":"INTERVENED"}"#;
        let event = OpenaiChat.decode_stream_event(chunk).unwrap();
        assert_eq!(event.stop_reason, Some(StopReason::ContentFilter));
        let answer = OpenaiChat
            .decode_response(br#"{"amazon-bedrock-guardrailAction":"INTERVENED"}"#)
            .unwrap();
        assert_eq!((answer.text.as_str(), answer.stop_reason), ("", StopReason::ContentFilter));
    }
}
