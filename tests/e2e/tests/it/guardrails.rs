//! Guardrails end to end: an alias that names a guardrail sends its headers, the
//! simulator blocks a prompt with its trigger as Bedrock blocks an input (the guardrail's
//! message, `amazon-bedrock-guardrailAction: INTERVENED`, no stop field), and the gateway
//! answers `content_filter`, whole and streamed, for every text family.

use bedrock_sim::{BLOCKED_MESSAGE, GUARDRAIL_TRIGGER};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, joined_text};

/// One alias per text family, each with a guardrail; `true` where the family streams.
const GUARDED: &[(&str, &str, bool)] = &[
    ("nova", "amazon.nova-lite-v1:0", true),
    ("claude3", "anthropic.claude-3-haiku-20240307-v1:0", true),
    ("claude2", "anthropic.claude-v2:1", true),
    ("command", "cohere.command-text-v14", true),
    ("command-r", "cohere.command-r-v1:0", true),
    ("jamba", "ai21.jamba-1-5-mini-v1:0", true),
    ("j2", "ai21.j2-mid-v1", false),
    ("deepseek", "us.deepseek.r1-v1:0", true),
    ("llama2", "meta.llama2-13b-chat-v1", true),
    ("llama3", "meta.llama3-8b-instruct-v1:0", true),
    ("mistral", "mistral.mistral-7b-instruct-v0:2", true),
];

/// A gateway whose aliases all carry a guardrail, the trace on.
async fn guarded() -> Harness {
    let mut models = String::new();
    for (alias, model_id, _) in GUARDED {
        models.push_str(&format!(
            "[models.{alias}]\nmodel_id = \"{model_id}\"\n\n[models.{alias}.bedrock]\n\
             guardrail = {{ identifier = \"gr123\", version = \"1\", trace = \"ENABLED\" }}\n\n"
        ));
    }
    Harness::start_with("max_attempts = 1\n", &models).await
}

fn blocked_request(alias: &str) -> Value {
    json!({"model": alias, "prompt": format!("Tell me about {GUARDRAIL_TRIGGER} things")})
}

#[tokio::test]
async fn a_blocked_input_is_a_content_filter_stop_for_every_family() {
    let h = guarded().await;
    for (alias, _, _) in GUARDED {
        let (status, _, whole) = h.post("/v1/generate", &blocked_request(alias)).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        assert_eq!(whole["stop_reason"], "content_filter", "{alias}: {whole}");
        assert_eq!(whole["text"], BLOCKED_MESSAGE, "{alias}: {whole}");
    }
}

#[tokio::test]
async fn a_blocked_stream_ends_with_a_content_filter_stop() {
    let h = guarded().await;
    for (alias, _, streams) in GUARDED.iter().filter(|(_, _, streams)| *streams) {
        assert!(streams);
        let mut request = blocked_request(alias);
        request["stream"] = json!(true);
        let (status, _, events) = h.stream(&request).await;
        assert_eq!(status, StatusCode::OK, "{alias}");
        let done = events.last().unwrap();
        assert_eq!(done.event, "done", "{alias}: {events:?}");
        assert_eq!(done.data["stop_reason"], "content_filter", "{alias}: {events:?}");
        assert_eq!(joined_text(&events), BLOCKED_MESSAGE, "{alias}: {events:?}");
    }
}

#[tokio::test]
async fn a_prompt_the_guardrail_lets_through_stops_as_usual() {
    let h = guarded().await;
    for (alias, _, streams) in GUARDED {
        let request = json!({"model": alias, "prompt": "Tell me about tides"});
        let (status, _, whole) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {whole}");
        assert_eq!(whole["stop_reason"], "end_turn", "{alias}: {whole}");
        assert_ne!(whole["text"], BLOCKED_MESSAGE, "{alias}");
        if *streams {
            let mut streamed = request.clone();
            streamed["stream"] = json!(true);
            let (_, _, events) = h.stream(&streamed).await;
            assert_eq!(events.last().unwrap().data["stop_reason"], "end_turn", "{alias}");
        }
    }
}

#[tokio::test]
async fn without_a_guardrail_the_trigger_is_just_text() {
    let models = "[models.claude3]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n";
    let h = Harness::start_with("max_attempts = 1\n", models).await;
    let (status, _, whole) = h.post("/v1/generate", &blocked_request("claude3")).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["stop_reason"], "end_turn", "{whole}");
}

#[tokio::test]
async fn openai_chat_completions_report_the_content_filter() {
    let h = guarded().await;
    let request = json!({
        "model": "claude3",
        "messages": [{"role": "user", "content": format!("Say {GUARDRAIL_TRIGGER}")}],
    });
    let (status, _, whole) = h.post("/v1/chat/completions", &request).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["choices"][0]["finish_reason"], "content_filter", "{whole}");
    assert_eq!(whole["choices"][0]["message"]["content"], BLOCKED_MESSAGE, "{whole}");
}
