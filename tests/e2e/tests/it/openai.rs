//! The OpenAI-compatible routes over plain HTTP: OpenAI's shapes, streaming format
//! and error shape. (`tests/clients/` drives the same routes with the openai SDK.)

use base64::Engine;
use bedrock_sim::{Behavior, ErrorKind, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SHIPPED_CONFIG};

async fn shipped() -> Harness {
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    Harness::start_with("max_attempts = 1\n", &SHIPPED_CONFIG[at..]).await
}

/// The `data:` payloads of an OpenAI-style stream, `[DONE]` included.
pub(crate) async fn stream_data(
    h: &Harness,
    path: &str,
    body: &Value,
) -> (StatusCode, Vec<String>) {
    let response = h.http.post(h.url(path)).json(body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let data = text
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect();
    (status, data)
}

pub(crate) fn assert_openai_error(body: &Value, code: &str) {
    let error = &body["error"];
    assert!(error["message"].is_string() && error["type"].is_string(), "{body}");
    assert!(error.get("param").is_some(), "{body}");
    assert_eq!(error["code"], code, "{body}");
}

#[tokio::test]
async fn chat_completions_whole_and_streamed_agree() {
    let h = shipped().await;
    for model in ["claude-3-haiku", "llama3-8b", "nova-lite", "titan-express"] {
        let request = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "Tell me about tides"}]},
            ],
            "max_completion_tokens": 200,
            "temperature": 0.5,
            "user": "team-a",
        });
        let (status, _, whole) = h.post("/v1/chat/completions", &request).await;
        assert_eq!(status, StatusCode::OK, "{model}: {whole}");
        assert_eq!(whole["object"], "chat.completion");
        assert!(whole["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(whole["model"], model);
        let choice = &whole["choices"][0];
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(choice["finish_reason"], "stop");
        let text = choice["message"]["content"].as_str().unwrap();
        let usage = &whole["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        );

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        streamed["stream_options"] = json!({"include_usage": true});
        let (status, data) = stream_data(&h, "/v1/chat/completions", &streamed).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(data.last().unwrap(), "[DONE]", "{model}");
        let chunks: Vec<Value> =
            data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
        let ids: std::collections::BTreeSet<&str> =
            chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1, "one id per stream");
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let joined: String = chunks
            .iter()
            .filter_map(|c| c["choices"].get(0))
            .filter_map(|choice| choice["delta"]["content"].as_str())
            .collect();
        assert_eq!(joined, text, "{model}");
        let usage_chunk = chunks.last().unwrap();
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"], whole["usage"], "{model}");
        let finish = &chunks[chunks.len() - 2]["choices"][0];
        assert_eq!(finish["finish_reason"], "stop");
    }
}

#[tokio::test]
async fn completions_whole_and_streamed() {
    let h = shipped().await;
    let request = json!({"model": "claude-v2", "prompt": "Once upon a time", "max_tokens": 4});
    let (status, _, whole) = h.post("/v1/completions", &request).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["object"], "text_completion");
    assert_eq!(whole["choices"][0]["finish_reason"], "length");
    assert_eq!(whole["usage"]["completion_tokens"], 4);

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let (_, data) = stream_data(&h, "/v1/completions", &streamed).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let joined: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .map(|c| c["choices"][0]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(joined, whole["choices"][0]["text"].as_str().unwrap());
}

#[tokio::test]
async fn embeddings_as_floats_and_base64() {
    let h = shipped().await;
    let (status, _, floats) = h
        .post(
            "/v1/embeddings",
            &json!({"model": "titan-embed-v2", "input": ["a", "b"], "dimensions": 256}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{floats}");
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["data"][1]["index"], 1);
    assert_eq!(floats["data"][0]["object"], "embedding");
    let vector = floats["data"][0]["embedding"].as_array().unwrap();
    assert_eq!(vector.len(), 256);

    let (_, _, b64) = h
        .post(
            "/v1/embeddings",
            &json!({"model": "titan-embed-v2", "input": "a", "dimensions": 256, "encoding_format": "base64"}),
        )
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> =
        bytes.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let expected: Vec<f32> = vector.iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(decoded, expected);
}

#[tokio::test]
async fn image_generations_in_b64_json() {
    let h = shipped().await;
    let (status, _, body) = h
        .post(
            "/v1/images/generations",
            &json!({"model": "titan-image-v2", "prompt": "a fox", "n": 2, "size": "512x512", "response_format": "b64_json"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let png = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn errors_come_in_openai_shape_with_the_same_statuses() {
    let h = shipped().await;
    let cases = [
        (
            json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
            404,
            "model_not_found",
        ),
        (json!({"model": "nova-lite", "messages": "Hi"}), 400, "invalid_request"),
        (
            json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function"}]}),
            400,
            "invalid_request",
        ),
        // A family without tools refuses them, naming itself.
        (
            json!({"model": "titan-express", "messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "function", "function": {"name": "f"}}]}),
            422,
            "unsupported_parameter",
        ),
        (
            json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}], "n": 2}),
            422,
            "unsupported_parameter",
        ),
        (
            json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}], "logprobs": true}),
            422,
            "unsupported_parameter",
        ),
        (
            json!({"model": "nova-lite", "messages": [{"role": "tool", "content": "42"}]}),
            400,
            "invalid_request",
        ),
        (
            json!({"model": "nova-lite", "messages": [{"role": "function", "content": "42"}]}),
            422,
            "unsupported_parameter",
        ),
    ];
    for (request, status, code) in cases {
        let (got, _, body) = h.post("/v1/chat/completions", &request).await;
        assert_eq!(got.as_u16(), status, "{request}: {body}");
        assert_openai_error(&body, code);
    }
    // Where one request field is at fault, `param` names it, as OpenAI does.
    for (field, value) in [("tool_choice", json!("sometimes")), ("n", json!(2))] {
        let mut request =
            json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}]});
        request[field] = value;
        let (_, _, body) = h.post("/v1/chat/completions", &request).await;
        assert_eq!(body["error"]["param"], field, "{body}");
    }
    // Null and default values of unsupported fields change nothing.
    let (status, _, body) = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}], "tools": null, "logprobs": false, "n": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = h.post_raw("/v1/chat/completions", "{not json".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_openai_error(&body, "invalid_request");

    h.sim.set_behavior(
        "*",
        Behavior { fault: Some(Fault::Error(ErrorKind::Throttling)), ..Behavior::default() },
    );
    let (status, headers, body) = h
        .post(
            "/v1/chat/completions",
            &json!({"model": "nova-lite", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    assert_openai_error(&body, "upstream_throttled");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn a_failure_mid_stream_ends_with_an_error_chunk_and_no_done() {
    let h = shipped().await;
    h.sim.set_behavior(
        "*",
        Behavior {
            fault: Some(Fault::ErrorAfterChunks(ErrorKind::ModelStreamError, 3)),
            ..Behavior::default()
        },
    );
    let (status, data) = stream_data(
        &h,
        "/v1/chat/completions",
        &json!({"model": "claude-3-haiku", "messages": [{"role": "user", "content": "Hi"}], "stream": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!data.contains(&"[DONE]".to_owned()), "{data:?}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_openai_error(&last, "upstream_error");
}
