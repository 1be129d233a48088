//! Prompt caching measured end to end: the simulator caches the prefixes that the gateway's
//! `cache_prompt` marks (Claude's `cache_control`, Nova's `cachePoint`), so the cache counts
//! the gateway reports are Bedrock's (simulated) own, whole and streamed, on `/v1/generate`
//! and `/v1/chat/completions`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Harness;

/// Claude 3.7 Sonnet caches from 1,024 tokens, Nova from 1,000; the `-cached` aliases cache
/// every request, for the OpenAI route, which has no `cache_prompt` of its own.
const MODELS: &str = r#"
[models.sonnet]
model_id = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
defaults = { max_tokens = 16 }

[models.sonnet-cached]
model_id = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
defaults = { max_tokens = 16, cache_prompt = true }

[models.nova]
model_id = "amazon.nova-lite-v1:0"
defaults = { max_tokens = 16 }

[models.nova-cached]
model_id = "amazon.nova-lite-v1:0"
defaults = { max_tokens = 16, cache_prompt = true }
"#;

/// A system prompt of 1,500 words (the simulator's tokens), distinct per `topic`.
fn manual(topic: &str) -> String {
    (0..1_500).map(|idx| format!("{topic}{idx}")).collect::<Vec<_>>().join(" ")
}

fn conversation(topic: &str) -> Value {
    json!([{"role": "system", "content": manual(topic)},
           {"role": "user", "content": "What does the manual say?"}])
}

/// Input, cache read and cache write tokens of a `/v1/generate` usage.
fn counts(usage: &Value) -> (u64, u64, u64) {
    let count = |name: &str| usage[name].as_u64().unwrap_or_else(|| panic!("{name}: {usage}"));
    (count("input_tokens"), count("cache_read_input_tokens"), count("cache_write_input_tokens"))
}

async fn generate(h: &Harness, request: &Value) -> Value {
    let (status, _, body) = h.post("/v1/generate", request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["usage"].clone()
}

async fn generate_streamed(h: &Harness, request: &Value) -> Value {
    let mut request = request.clone();
    request["stream"] = json!(true);
    let (status, _, events) = h.stream(&request).await;
    assert_eq!(status, StatusCode::OK);
    let done = events.last().unwrap();
    assert_eq!(done.event, "done", "{events:?}");
    done.data["usage"].clone()
}

/// The usage of a chat completion, whole or (with `include_usage`) streamed.
async fn chat_usage(h: &Harness, request: &Value, stream: bool) -> Value {
    let mut request = request.clone();
    if !stream {
        let (status, _, body) = h.post("/v1/chat/completions", &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        return body["usage"].clone();
    }
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = h.http.post(h.url("/v1/chat/completions")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    chunks.last().unwrap()["usage"].clone()
}

#[tokio::test]
async fn the_second_identical_request_reads_what_the_first_wrote() {
    let h = Harness::start_with("max_attempts = 1\n", MODELS).await;
    for model in ["sonnet", "nova"] {
        // Without `cache_prompt` nothing is cached: the whole prompt is input tokens.
        let plain = json!({"model": model, "messages": conversation("plain")});
        let (n_prompt, read, write) = counts(&generate(&h, &plain).await);
        assert_eq!((read, write), (0, 0), "{model}");
        assert!(n_prompt > 1_500, "{model}: {n_prompt}");
        let again = counts(&generate(&h, &plain).await);
        assert_eq!(again, (n_prompt, 0, 0), "{model}: nothing was written");

        for (stream, topic) in [(false, "whole"), (true, "streamed")] {
            let request =
                json!({"model": model, "cache_prompt": true, "messages": conversation(topic)});
            let send = async |request: &Value| {
                if stream {
                    generate_streamed(&h, request).await
                } else {
                    generate(&h, request).await
                }
            };
            let (input, read, write) = counts(&send(&request).await);
            assert_eq!(read, 0, "{model} {topic}");
            assert!(write >= 1_500, "{model} {topic}: {write}");
            assert_eq!(input + write, n_prompt, "{model} {topic}: the prompt is split");
            let (input, read, write) = counts(&send(&request).await);
            assert!(read >= 1_500, "{model} {topic}: {read}");
            assert_eq!(write, 0, "{model} {topic}");
            assert!(input < n_prompt, "{model} {topic}: {input} input tokens");
            assert_eq!(input + read, n_prompt, "{model} {topic}");

            // Another question after the same system prompt still reads the system prompt.
            let mut next = request.clone();
            next["messages"][1]["content"] = json!("And what else?");
            let (_, read, _) = counts(&send(&next).await);
            assert!(read >= 1_500, "{model} {topic}: {read}");
        }
    }
}

#[tokio::test]
async fn openai_chat_completions_report_the_cached_prompt_tokens() {
    let h = Harness::start_with("max_attempts = 1\n", MODELS).await;
    for model in ["sonnet-cached", "nova-cached"] {
        for (stream, topic) in [(false, "whole"), (true, "streamed")] {
            let request = json!({"model": model, "messages": conversation(topic)});
            let first = chat_usage(&h, &request, stream).await;
            let n_prompt = first["prompt_tokens"].as_u64().unwrap();
            assert!(n_prompt > 1_500, "{model} {topic}: {first}");
            assert_eq!(first["prompt_tokens_details"]["cached_tokens"], 0, "{model}: {first}");
            let second = chat_usage(&h, &request, stream).await;
            // `prompt_tokens` is the whole prompt, `cached_tokens` the part read from the
            // cache, as OpenAI counts them.
            assert_eq!(second["prompt_tokens"], n_prompt, "{model} {topic}: {second}");
            let cached = second["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
            assert!((1_500..=n_prompt).contains(&cached), "{model} {topic}: {second}");
            let n_total = n_prompt + second["completion_tokens"].as_u64().unwrap();
            assert_eq!(second["total_tokens"], n_total, "{model} {topic}: {second}");
        }
    }
}
