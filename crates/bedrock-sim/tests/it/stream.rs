//! InvokeModelWithResponseStream against the simulator: one chunk per token, the families'
//! chunk shapes, text that matches InvokeModel, and the invocation metrics on the last chunk.

use serde_json::{Value, json};

use crate::support::{
    CLAUDE, HeaderCapture, StreamEnd, TITAN, claude_body, start, titan_body, to_blob,
};

fn assert_metrics(chunk: &Value, n_input_tokens: u64, n_output_tokens: u64) {
    let metrics = &chunk["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["inputTokenCount"], n_input_tokens, "{chunk}");
    assert_eq!(metrics["outputTokenCount"], n_output_tokens, "{chunk}");
    let invocation_latency = metrics["invocationLatency"].as_u64().unwrap();
    let first_byte_latency = metrics["firstByteLatency"].as_u64().unwrap();
    assert!(first_byte_latency <= invocation_latency, "{metrics}");
}

#[tokio::test]
async fn titan_stream_matches_invoke() {
    let sim = start().await;
    let body = titan_body("User: Tell me a story\nBot:", json!({"maxTokenCount": 100}));
    let invoked = sim.invoke_json(TITAN, &body).await;
    let result = sim.stream(TITAN, &body).await;
    assert!(matches!(result.end, StreamEnd::Clean), "{:?}", result.end);

    let chunks = &result.chunks;
    let n_tokens = invoked["results"][0]["tokenCount"].as_u64().unwrap();
    assert_eq!(chunks.len() as u64, n_tokens, "one token per chunk");
    let text: String = chunks.iter().map(|chunk| chunk["outputText"].as_str().unwrap()).collect();
    assert_eq!(text, invoked["results"][0]["outputText"].as_str().unwrap());

    assert_eq!(chunks[0]["inputTextTokenCount"], 6);
    assert_eq!(chunks[0]["index"], 0);
    for chunk in &chunks[1..] {
        assert_eq!(chunk["inputTextTokenCount"], Value::Null);
    }
    for chunk in &chunks[..chunks.len() - 1] {
        assert_eq!(chunk["completionReason"], Value::Null);
        assert_eq!(chunk["totalOutputTextTokenCount"], Value::Null);
        assert!(chunk.get("amazon-bedrock-invocationMetrics").is_none());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["completionReason"], "FINISH");
    assert_eq!(last["totalOutputTextTokenCount"], n_tokens);
    assert_metrics(last, 6, n_tokens);
}

#[tokio::test]
async fn claude_stream_ends_with_a_stop_reason_chunk() {
    let sim = start().await;
    let body = claude_body("Tell me a story", json!({}));
    let invoked = sim.invoke_json(CLAUDE, &body).await;
    let result = sim.stream(CLAUDE, &body).await;
    assert!(matches!(result.end, StreamEnd::Clean), "{:?}", result.end);

    let (last, tokens) = result.chunks.split_last().unwrap();
    for chunk in tokens {
        assert_eq!(chunk["type"], "completion");
        assert_eq!(chunk["stop_reason"], Value::Null);
        assert_eq!(chunk["stop"], Value::Null);
        assert!(chunk.get("amazon-bedrock-invocationMetrics").is_none());
    }
    let text: String = tokens.iter().map(|chunk| chunk["completion"].as_str().unwrap()).collect();
    assert_eq!(text, invoked["completion"].as_str().unwrap());
    assert_eq!(last["completion"], "");
    assert_eq!(last["stop_reason"], "stop_sequence");
    assert_eq!(last["stop"], "\n\nHuman:");
    assert_metrics(last, 6, tokens.len() as u64);
}

#[tokio::test]
async fn stream_stop_reasons() {
    let sim = start().await;
    let result = sim.stream(TITAN, &titan_body("short", json!({"maxTokenCount": 2}))).await;
    assert_eq!(result.chunks.len(), 2);
    assert_eq!(result.chunks[1]["completionReason"], "LENGTH");

    let result =
        sim.stream(CLAUDE, &claude_body("short", json!({"max_tokens_to_sample": 2}))).await;
    assert_eq!(result.chunks.len(), 3);
    assert_eq!(result.chunks[2]["stop_reason"], "max_tokens");
    assert_eq!(result.chunks[2]["stop"], Value::Null);

    let result = sim.stream(TITAN, &titan_body("nothing", json!({"maxTokenCount": 0}))).await;
    assert_eq!(result.chunks.len(), 1);
    assert_eq!(result.chunks[0]["outputText"], "");
    assert_metrics(&result.chunks[0], 1, 0);

    let full = sim.invoke_json(TITAN, &titan_body("cut me", json!({}))).await;
    let full = full["results"][0]["outputText"].as_str().unwrap().to_owned();
    let sequence = format!(" {}", full.split(' ').nth(3).unwrap());
    let config = json!({"stopSequences": [sequence]});
    let result = sim.stream(TITAN, &titan_body("cut me", config)).await;
    let text: String =
        result.chunks.iter().map(|chunk| chunk["outputText"].as_str().unwrap()).collect();
    assert_eq!(text, full[..full.find(&sequence).unwrap()]);
    assert_eq!(result.chunks.last().unwrap()["completionReason"], "STOP_CRITERIA_MET");
}

#[tokio::test]
async fn stream_headers_carry_no_token_counts() {
    let sim = start().await;
    let capture = HeaderCapture::default();
    let output = sim
        .client
        .invoke_model_with_response_stream()
        .model_id("us.anthropic.claude-instant-v1")
        .body(to_blob(&claude_body("hi", json!({}))))
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(output.content_type(), "application/json");
    let result = crate::support::collect_stream(output).await;
    assert!(matches!(result.end, StreamEnd::Clean));
    assert_eq!(capture.get("content-type").as_deref(), Some("application/vnd.amazon.eventstream"));
    assert_eq!(capture.get("x-amzn-bedrock-content-type").as_deref(), Some("application/json"));
    assert_eq!(capture.get("transfer-encoding").as_deref(), Some("chunked"));
    assert!(capture.get("x-amzn-requestid").is_some());
    let names = capture.names();
    assert!(!names.iter().any(|name| name.ends_with("token-count")), "{names:?}");
}

#[tokio::test]
async fn arn_stream_works() {
    let sim = start().await;
    let model_id = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.titan-text-premier-v1:0";
    let result = sim.stream(model_id, &titan_body("hi", json!({}))).await;
    assert!(matches!(result.end, StreamEnd::Clean));
    assert!(!result.chunks.is_empty());
}
