//! The caps on the lists a caller controls (`routes/parse.rs`, README "Limits on a
//! request's lists"): a list one past its cap is refused with a 400 in the route's API
//! encoding, naming the list and its cap, while the body is parsed; a list at its cap
//! goes on to the model.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Harness;

/// `n` alternating user and assistant messages.
fn messages(n: usize) -> Vec<Value> {
    (0..n)
        .map(|idx| {
            let role = if idx % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": "hi"})
        })
        .collect()
}

/// A 400 in the gateway's own error shape whose message names `what`.
fn refused(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(what), "{what:?} not in {message:?}");
}

/// A 400 in OpenAI's error shape whose message names `what`.
fn refused_openai(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(what), "{what:?} not in {message:?}");
}

#[tokio::test]
async fn the_gateway_api_refuses_lists_past_their_caps() {
    let h = Harness::start().await;
    let stop: Vec<String> = (0..65).map(|idx| format!("s{idx}")).collect();
    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "claude", "prompt": "hi", "stop": stop})).await;
    refused(status, &body, "`stop` takes at most 64 sequences");

    let (status, _, body) =
        h.post("/v1/generate", &json!({"model": "claude", "messages": messages(10_001)})).await;
    refused(status, &body, "`messages` has more than 10000 messages");

    let extra = json!({"model": "titan", "prompt": "hi", "extra": {"values": vec![0; 10_000]}});
    let (status, _, body) = h.post("/v1/generate", &extra).await;
    refused(status, &body, "`extra` holds more than 10000 JSON values");

    let (status, _, body) =
        h.post("/v1/embed", &json!({"model": "embed", "input": vec!["w"; 2049]})).await;
    refused(status, &body, "`input` has more than 2048 texts");
    let (status, _, body) =
        h.post("/v1/embed", &json!({"model": "embed", "images": vec!["AA=="; 2049]})).await;
    refused(status, &body, "`images` has more than 2048 images");

    let edit = json!({"model": "image", "task": "variation", "images": vec!["AA=="; 17]});
    let (status, _, body) = h.post("/v1/images/edits", &edit).await;
    refused(status, &body, "`images` has more than 16 images");

    let metadata: serde_json::Map<String, Value> =
        (0..1501).map(|idx| (format!("k{idx}"), json!("v"))).collect();
    let options =
        json!({"model": "titan", "prompt": "hi", "bedrock": {"request_metadata": metadata}});
    let (status, _, body) = h.post("/v1/generate", &options).await;
    refused(status, &body, "request metadata has more than 1500 entries");
}

#[tokio::test]
async fn the_openai_api_refuses_lists_past_their_caps_in_its_shape() {
    let h = Harness::start().await;
    let chat = json!({"model": "claude", "messages": messages(10_001)});
    let (status, _, body) = h.post("/v1/chat/completions", &chat).await;
    refused_openai(status, &body, "`messages` has more than 10000 messages");

    let stop: Vec<String> = (0..65).map(|idx| format!("s{idx}")).collect();
    let completion = json!({"model": "titan", "prompt": "hi", "stop": stop});
    let (status, _, body) = h.post("/v1/completions", &completion).await;
    refused_openai(status, &body, "`stop` takes at most 64 sequences");

    let batch = json!({"model": "titan", "prompt": ["one", "two"]});
    let (status, _, body) = h.post("/v1/completions", &batch).await;
    refused_openai(status, &body, "batches of prompts are not supported");

    let embeddings = json!({"model": "embed", "input": vec!["w"; 2049]});
    let (status, _, body) = h.post("/v1/embeddings", &embeddings).await;
    refused_openai(status, &body, "`input` has more than 2048 texts");

    let metadata: serde_json::Map<String, Value> =
        (0..1501).map(|idx| (format!("k{idx}"), json!("v"))).collect();
    let chat = json!({"model": "claude", "messages": messages(1), "metadata": metadata});
    let (status, _, body) = h.post("/v1/chat/completions", &chat).await;
    refused_openai(status, &body, "request metadata has more than 1500 entries");
}

#[tokio::test]
async fn a_conversation_at_the_cap_reaches_the_model() {
    let h = Harness::start().await;
    let at_cap = json!({"model": "claude", "messages": messages(9_999), "max_tokens": 4});
    let (status, _, body) = h.post("/v1/generate", &at_cap).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = h.post("/v1/chat/completions", &at_cap).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Content parts are joined as they are read; the answer is as for one string.
    let parts: Vec<Value> = (0..2_000).map(|_| json!({"type": "text", "text": "ab"})).collect();
    let joined = "ab".repeat(2_000);
    let by_parts = json!({"model": "claude", "max_tokens": 4,
                          "messages": [{"role": "user", "content": parts}]});
    let by_string = json!({"model": "claude", "max_tokens": 4,
                           "messages": [{"role": "user", "content": joined}]});
    let (status, _, parts_answer) = h.post("/v1/chat/completions", &by_parts).await;
    assert_eq!(status, StatusCode::OK, "{parts_answer}");
    let (_, _, string_answer) = h.post("/v1/chat/completions", &by_string).await;
    assert_eq!(
        parts_answer["choices"][0]["message"]["content"],
        string_answer["choices"][0]["message"]["content"]
    );
    assert_eq!(parts_answer["usage"], string_answer["usage"]);
}
