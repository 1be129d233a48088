//! Bedrock's per-request options per alias (`[models.X.bedrock]`) and per request where
//! the alias allows: the tier that served the call comes back as `x-gateway-service-tier`.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Harness;

const MODELS: &str = r#"
[models.flex]
model_id = "amazon.titan-text-express-v1"
bedrock = { service_tier = "flex", performance_latency = "standard", request_metadata = { team = "search" }, caller_metadata_key = "caller" }

[models.fixed]
model_id = "amazon.titan-text-express-v1"
bedrock = { service_tier = "default", callers_may_set = [] }

[models.plain]
model_id = "amazon.titan-text-express-v1"
"#;

fn tier(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    headers.get("x-gateway-service-tier").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn the_alias_and_the_caller_choose_the_service_tier() {
    let h = Harness::start_with("max_attempts = 1\n", MODELS).await;
    // The alias's tier, whole and streamed.
    let (status, headers, body) =
        h.post("/v1/generate", &json!({"model": "flex", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(tier(&headers), Some("flex"));
    let streamed = json!({"model": "flex", "prompt": "Hi", "stream": true});
    let (status, headers, _) = h.stream(&streamed).await;
    assert_eq!((status, tier(&headers)), (StatusCode::OK, Some("flex")));
    // The caller's own, where allowed: the gateway API and OpenAI's `service_tier`.
    let asked = json!({"model": "flex", "prompt": "Hi", "bedrock": {"service_tier": "priority"}});
    let (status, headers, body) = h.post("/v1/generate", &asked).await;
    assert_eq!((status, tier(&headers)), (StatusCode::OK, Some("priority")), "{body}");
    let chat = json!({"model": "plain", "service_tier": "flex", "metadata": {"ticket": "42"},
        "messages": [{"role": "user", "content": "Hi"}]});
    let (status, headers, body) = h.post("/v1/chat/completions", &chat).await;
    assert_eq!((status, tier(&headers)), (StatusCode::OK, Some("flex")), "{body}");
    // OpenAI's own field says it too, whole and on every chunk of a stream.
    assert_eq!(body["service_tier"], "flex", "{body}");
    let mut streamed_chat = chat.clone();
    streamed_chat["stream"] = json!(true);
    let text = h
        .http
        .post(h.url("/v1/chat/completions"))
        .json(&streamed_chat)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(chunks.len() >= 2, "{text}");
    assert!(chunks.iter().all(|chunk| chunk["service_tier"] == "flex"), "{text}");
    // No tier asked for: Bedrock says none, and neither does the answer.
    let (_, headers, _) = h.post("/v1/generate", &json!({"model": "plain", "prompt": "Hi"})).await;
    assert_eq!(tier(&headers), None);
    let plain_chat = json!({"model": "plain", "messages": [{"role": "user", "content": "Hi"}]});
    let (status, _, body) = h.post("/v1/chat/completions", &plain_chat).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("service_tier").is_none(), "{body}");
}

#[tokio::test]
async fn callers_are_refused_what_the_alias_does_not_allow() {
    let h = Harness::start_with("max_attempts = 1\n", MODELS).await;
    let asked = json!({"model": "fixed", "prompt": "Hi", "bedrock": {"service_tier": "priority"}});
    let (status, _, body) = h.post("/v1/generate", &asked).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("service tier"), "{body}");
    let (status, headers, _) =
        h.post("/v1/generate", &json!({"model": "fixed", "prompt": "Hi"})).await;
    assert_eq!((status, tier(&headers)), (StatusCode::OK, Some("default")));
    // OpenAI's `scale` tier does not exist on Bedrock.
    let chat = json!({"model": "plain", "service_tier": "scale",
        "messages": [{"role": "user", "content": "Hi"}]});
    let (status, _, body) = h.post("/v1/chat/completions", &chat).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "service_tier");
    // The passthrough's own header is held to the same rule, in Bedrock's encoding.
    let response = h
        .http
        .post(h.url("/model/fixed/invoke"))
        .header("x-amzn-bedrock-service-tier", "priority")
        .json(&json!({"inputText": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // An unknown tier on an alias that allows callers: refused before Bedrock.
    let asked = json!({"model": "flex", "prompt": "Hi", "bedrock": {"service_tier": "gold"}});
    let (status, _, body) = h.post("/v1/generate", &asked).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn prompt_cache_tokens_are_reported_where_bedrock_reports_them() {
    let models = "[models.nova]\nmodel_id = \"amazon.nova-lite-v1:0\"\n\
                  [models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n";
    let h = Harness::start_with("max_attempts = 1\n", models).await;
    // Nova reports them (0: nothing is cached without `cache_prompt`), whole and streamed
    // alike; `prompt_cache.rs` has requests that are cached.
    let (status, _, whole) =
        h.post("/v1/generate", &json!({"model": "nova", "prompt": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["usage"]["cache_read_input_tokens"], 0, "{whole}");
    assert_eq!(whole["usage"]["cache_write_input_tokens"], 0, "{whole}");
    let (_, _, events) = h.stream(&json!({"model": "nova", "prompt": "Hi", "stream": true})).await;
    assert_eq!(events.last().unwrap().data["usage"], whole["usage"]);
    let chat = json!({"model": "nova", "messages": [{"role": "user", "content": "Hi"}]});
    let (_, _, body) = h.post("/v1/chat/completions", &chat).await;
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0, "{body}");
    // Titan does not: the fields are absent, not zero.
    let (_, _, titan) = h.post("/v1/generate", &json!({"model": "titan", "prompt": "Hi"})).await;
    assert!(titan["usage"].get("cache_read_input_tokens").is_none(), "{titan}");
}

#[tokio::test]
async fn prompt_caching_is_asked_for_where_the_family_caches() {
    let models = "[models.haiku]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n\
                  defaults = { max_tokens = 16 }\n\
                  [models.nova]\nmodel_id = \"amazon.nova-lite-v1:0\"\n\
                  [models.titan]\nmodel_id = \"amazon.titan-text-express-v1\"\n";
    let h = Harness::start_with("max_attempts = 1\n", models).await;
    for model in ["haiku", "nova"] {
        let request = json!({"model": model, "cache_prompt": true, "messages": [
            {"role": "system", "content": "You know the manual."},
            {"role": "user", "content": "Hi"}]});
        let (status, _, body) = h.post("/v1/generate", &request).await;
        assert_eq!(status, StatusCode::OK, "{model}: {body}");
    }
    let request = json!({"model": "titan", "prompt": "Hi", "cache_prompt": true});
    let (status, _, body) = h.post("/v1/generate", &request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("cache_prompt"), "{body}");
}
