//! Today's OpenAI-chat-shaped open-weight models (`openai_chat`: Qwen3, DeepSeek V3.x, Kimi,
//! MiniMax, Gemma 3) end to end: whole and streamed answers agree, reasoning spans never
//! reach the caller, length stops and guardrail blocks are reported, unsupported fields are
//! refused naming the family, and the OpenAI route answers for them.

use bedrock_sim::{BLOCKED_MESSAGE, GUARDRAIL_TRIGGER};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Harness, joined_text};

/// One alias per model shape, in the id forms callers use (plain, `us.` and `global.`
/// profiles, a foundation-model ARN).
const ALIASES: &[(&str, &str)] = &[
    ("qwen3-32b", "qwen.qwen3-32b-v1:0"),
    ("qwen3-coder", "us.qwen.qwen3-coder-30b-a3b-v1:0"),
    ("deepseek-v3", "deepseek.v3-v1:0"),
    ("deepseek-v3-2", "global.deepseek.v3.2"),
    ("kimi-k2-thinking", "moonshot.kimi-k2-thinking"),
    ("kimi-k2-5", "moonshotai.kimi-k2.5"),
    ("minimax-m2", "arn:aws:bedrock:us-east-1::foundation-model/minimax.minimax-m2"),
    ("gemma3-27b", "google.gemma-3-27b-it"),
];

async fn catalogue(guardrail: bool) -> Harness {
    let mut models = String::new();
    for (alias, model_id) in ALIASES {
        models.push_str(&format!("[models.{alias}]\nmodel_id = \"{model_id}\"\n\n"));
        if guardrail {
            models.push_str(&format!(
                "[models.{alias}.bedrock]\nguardrail = {{ identifier = \"gr123\", version = \"1\" }}\n\n"
            ));
        }
    }
    Harness::start_with("max_attempts = 1\n", &models).await
}

#[tokio::test]
async fn whole_and_streamed_answers_agree_without_reasoning() {
    let h = catalogue(false).await;
    for (alias, _) in ALIASES {
        let request = json!({"model": alias, "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ]});
        let (status, _, whole) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        let text = whole["text"].as_str().unwrap();
        assert!(!text.is_empty() && !text.contains("reasoning"), "{alias}: {text:?}");
        assert_eq!(whole["stop_reason"], "end_turn", "{alias}: {whole}");
        assert!(whole["usage"]["output_tokens"].as_u64().unwrap() > 0, "{alias}: {whole}");

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (status, _, events) = h.stream(&streamed).await;
        assert_eq!(status, StatusCode::OK, "{alias}");
        let done = events.last().unwrap();
        assert_eq!(done.event, "done", "{alias}: {events:?}");
        assert_eq!(joined_text(&events), text, "{alias}: streamed text differs");
        assert_eq!(done.data["stop_reason"], "end_turn", "{alias}");
        assert_eq!(done.data["usage"], whole["usage"], "{alias}");
    }
}

#[tokio::test]
async fn max_tokens_is_sent_and_ends_with_a_length_stop() {
    let h = catalogue(false).await;
    for (alias, _) in ALIASES {
        let request = json!({"model": alias, "prompt": "Tell me about tides", "max_tokens": 2});
        let (status, _, whole) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        assert_eq!(whole["stop_reason"], "max_tokens", "{alias}: {whole}");
        assert_eq!(whole["usage"]["output_tokens"], 2, "{alias}: {whole}");

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (_, _, events) = h.stream(&streamed).await;
        let done = events.last().unwrap();
        assert_eq!(done.data["stop_reason"], "max_tokens", "{alias}: {events:?}");
        assert_eq!(done.data["usage"]["output_tokens"], 2, "{alias}");
    }
}

#[tokio::test]
async fn a_guardrail_block_is_a_content_filter_stop() {
    let h = catalogue(true).await;
    for (alias, _) in ALIASES {
        let request =
            json!({"model": alias, "prompt": format!("Tell me about {GUARDRAIL_TRIGGER} things")});
        let (status, _, whole) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        assert_eq!(whole["stop_reason"], "content_filter", "{alias}: {whole}");
        assert_eq!(whole["text"], BLOCKED_MESSAGE, "{alias}: {whole}");

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (_, _, events) = h.stream(&streamed).await;
        let done = events.last().unwrap();
        assert_eq!(done.data["stop_reason"], "content_filter", "{alias}: {events:?}");
        assert_eq!(joined_text(&events), BLOCKED_MESSAGE, "{alias}");
    }
}

#[tokio::test]
async fn unsupported_fields_are_refused_naming_the_family() {
    let h = catalogue(false).await;
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "qwen3-32b", "prompt": "Hi", "top_k": 5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["type"], "unsupported_parameter", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("top_k") && message.contains("openai_chat"), "{message}");

    let (status, _, body) = h
        .post("/v1/generate", &json!({"model": "gemma3-27b", "prompt": "Hi", "temperature": 2.5}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_openai_route_answers_for_the_family() {
    let h = catalogue(false).await;
    for alias in ["qwen3-32b", "kimi-k2-thinking"] {
        let request = json!({"model": alias, "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Tell me about tides"},
        ], "max_completion_tokens": 200});
        let (status, _, whole) = h.post("/v1/chat/completions", &request).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        let choice = &whole["choices"][0];
        assert_eq!(choice["finish_reason"], "stop", "{alias}: {whole}");
        let content = choice["message"]["content"].as_str().unwrap();
        assert!(!content.is_empty() && !content.contains("<reasoning>"), "{alias}: {content:?}");
    }
}
