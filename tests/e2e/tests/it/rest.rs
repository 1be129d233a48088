//! Non-streamed generation through the gateway, for both families and every way of
//! naming a model.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Harness, SHIPPED_CONFIG};

#[tokio::test]
async fn titan_answers_with_text_stop_reason_and_usage() {
    let h = Harness::start().await;
    let (status, headers, body) =
        h.post("/v1/generate", &json!({"model": "titan", "prompt": "Tell me a joke"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.contains_key("x-request-id"));
    assert!(body["id"].as_str().unwrap().starts_with("gen-"));
    assert_eq!(body["model"], "titan");
    assert!(!body["text"].as_str().unwrap().is_empty());
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 4);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn claude_usage_comes_from_the_token_count_headers() {
    // Claude text completion bodies carry no usage: only Bedrock's headers do.
    let h = Harness::start().await;
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "claude", "prompt": "Tell me a joke"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stop_reason"], "end_turn");
    let n_words = body["text"].as_str().unwrap().split_whitespace().count() as u64;
    assert_eq!(body["usage"]["output_tokens"].as_u64().unwrap(), n_words);
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() >= 4);
}

#[tokio::test]
async fn answers_are_deterministic_and_parameters_reach_the_model() {
    let h = Harness::start().await;
    for model in ["titan", "claude"] {
        let request = json!({"model": model, "prompt": "Write a poem about rivers"});
        let (_, _, first) = h.post("/v1/generate", &request).await;
        let (_, _, again) = h.post("/v1/generate", &request).await;
        assert_eq!(first["text"], again["text"], "{model}");

        let (status, _, short) = h
            .post(
                "/v1/generate",
                &json!({"model": model, "prompt": "Write a poem about rivers", "max_tokens": 3}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{short}");
        assert_eq!(short["stop_reason"], "max_tokens", "{model}: {short}");
        assert_eq!(short["usage"]["output_tokens"], 3, "{model}");

        // A word from the middle of the full answer, sent as a stop sequence, cuts it there.
        let full = first["text"].as_str().unwrap();
        let words: Vec<&str> = full.split_whitespace().collect();
        let stop_word = words[words.len() / 2];
        let (status, _, cut) = h
            .post(
                "/v1/generate",
                &json!({"model": model, "prompt": "Write a poem about rivers", "stop": stop_word, "temperature": 0.2, "top_p": 0.9}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{cut}");
        assert_eq!(cut["stop_reason"], "stop_sequence", "{model}: {cut}");
        let cut_text = cut["text"].as_str().unwrap();
        assert!(!cut_text.contains(stop_word), "{model}: {cut_text:?} still has {stop_word:?}");
        assert!(
            full.starts_with(cut_text.trim_end()) || full.trim_start().starts_with(cut_text.trim())
        );
    }
}

#[tokio::test]
async fn alias_defaults_apply_when_the_request_leaves_fields_out() {
    let h = Harness::start().await;
    let (_, _, body) =
        h.post("/v1/generate", &json!({"model": "titan-defaults", "prompt": "Hello there"})).await;
    assert_eq!(body["stop_reason"], "max_tokens", "{body}");
    assert_eq!(body["usage"]["output_tokens"], 5);
    // The request's own value wins over the default.
    let (_, _, body) = h
        .post(
            "/v1/generate",
            &json!({"model": "titan-defaults", "prompt": "Hello there", "max_tokens": 2}),
        )
        .await;
    assert_eq!(body["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn profile_ids_and_arns_route_to_their_family() {
    let h = Harness::start().await;
    for model in ["claude-profile", "titan-arn"] {
        let (status, _, body) =
            h.post("/v1/generate", &json!({"model": model, "prompt": "Hi"})).await;
        assert_eq!(status, StatusCode::OK, "{model}: {body}");
        assert_eq!(body["stop_reason"], "end_turn");
    }
    assert_eq!(h.sim.request_count(), 2);
}

#[tokio::test]
async fn models_lists_every_alias_with_its_model_id_and_family() {
    let h = Harness::start().await;
    let (status, body) = h.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let claude = data.iter().find(|m| m["id"] == "claude").unwrap();
    assert_eq!(claude["model_id"], "anthropic.claude-v2:1");
    assert_eq!(claude["family"], "anthropic_claude_text");
    assert_eq!(claude["object"], "model");
}

#[tokio::test]
async fn health_and_readiness() {
    let h = Harness::start().await;
    assert_eq!(h.get("/healthz").await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(h.get("/readyz").await, (StatusCode::OK, json!({"status": "ready"})));
}

#[tokio::test]
async fn shipped_config_serves_every_text_alias_through_the_embedded_simulator() {
    // The quick start: the shipped file as it is (embedded simulator), on port 0.
    let h = Harness::gateway_only(SHIPPED_CONFIG).await;
    let (_, models) = h.get("/v1/models").await;
    let aliases: Vec<String> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(aliases.len() >= 2);
    for alias in aliases {
        let (status, _, body) =
            h.post("/v1/generate", &json!({"model": alias, "prompt": "Say hello"})).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {body}");
        assert!(!body["text"].as_str().unwrap().is_empty(), "{alias}");
    }
}
