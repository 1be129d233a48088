//! Prompt caching through the SDK: Claude's `cache_control` and Nova's `cachePoint` write the
//! prefix, the same prefix then reads it; the counts in the headers, the bodies and the
//! stream's invocation metrics, and the input tokens without them.

use serde_json::{Value, json};

use crate::support::{HeaderCapture, StreamEnd, TestSim, start, to_blob};

const SONNET_37: &str = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
const HAIKU_3: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const NOVA: &str = "amazon.nova-lite-v1:0";

/// `n_words` words, each a token for the simulator.
fn manual(n_words: usize) -> String {
    (0..n_words).map(|idx| format!("rule{idx}")).collect::<Vec<_>>().join(" ")
}

/// The InvokeModel body and its token-count headers: input, cache read, cache write.
async fn invoke(sim: &TestSim, model_id: &str, body: &Value) -> (Value, [Option<u64>; 3]) {
    let capture = HeaderCapture::default();
    let output = sim
        .client
        .invoke_model()
        .model_id(model_id)
        .content_type("application/json")
        .body(to_blob(body))
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .unwrap();
    let count = |name: &str| capture.get(name).map(|value| value.parse::<u64>().unwrap());
    let counts = [
        count("x-amzn-bedrock-input-token-count"),
        count("x-amzn-bedrock-cache-read-input-token-count"),
        count("x-amzn-bedrock-cache-write-input-token-count"),
    ];
    (serde_json::from_slice(output.body().as_ref()).unwrap(), counts)
}

/// The chunks of a stream that ends cleanly.
async fn stream(sim: &TestSim, model_id: &str, body: &Value) -> Vec<Value> {
    let result = sim.stream(model_id, body).await;
    assert!(matches!(result.end, StreamEnd::Clean), "{:?}", result.end);
    result.chunks
}

fn claude(system: &str, question: &str) -> Value {
    json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": question}]})
}

#[tokio::test]
async fn claude_writes_the_prefix_before_its_breakpoint_then_reads_it() {
    let sim = start().await;
    let body = claude(&manual(1_200), "What does it say?");
    let (first, counts) = invoke(&sim, SONNET_37, &body).await;
    assert_eq!(counts, [Some(4), Some(0), Some(1_200)]);
    let usage = &first["usage"];
    assert_eq!(
        (&usage["input_tokens"], &usage["cache_creation_input_tokens"]),
        (&json!(4), &json!(1_200))
    );
    assert_eq!(usage["cache_read_input_tokens"], 0);
    let (second, counts) = invoke(&sim, SONNET_37, &body).await;
    assert_eq!(counts, [Some(4), Some(1_200), Some(0)]);
    assert_eq!(second["usage"]["cache_read_input_tokens"], 1_200);
    assert_eq!(second["usage"]["cache_creation_input_tokens"], 0);

    // Streamed, another question after the same system prompt reads it too.
    let chunks = stream(&sim, SONNET_37, &claude(&manual(1_200), "And then?")).await;
    let usage = &chunks[0]["message"]["usage"];
    assert_eq!(usage["input_tokens"], 2, "{usage}");
    assert_eq!(usage["cache_read_input_tokens"], 1_200, "{usage}");
    assert_eq!(usage["cache_creation_input_tokens"], 0, "{usage}");
    let metrics = &chunks.last().unwrap()["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["inputTokenCount"], 2, "{metrics}");
    assert_eq!(metrics["cacheReadInputTokenCount"], 1_200, "{metrics}");
    assert_eq!(metrics["cacheWriteInputTokenCount"], 0, "{metrics}");

    // Below Claude 3.7 Sonnet's 1,024 tokens nothing is cached; the counts are 0.
    let short = claude(&manual(1_000), "What does it say?");
    for _ in 0..2 {
        assert_eq!(invoke(&sim, SONNET_37, &short).await.1, [Some(1_004), Some(0), Some(0)]);
    }
    // Claude 3 Haiku has no prompt cache on Bedrock: no counts at all.
    let (haiku, counts) = invoke(&sim, HAIKU_3, &body).await;
    assert_eq!(counts, [Some(1_204), None, None]);
    assert!(haiku["usage"].get("cache_read_input_tokens").is_none(), "{haiku}");
    // More than four breakpoints: Anthropic's refusal.
    let mut five = body.clone();
    let block = json!({"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}});
    five["messages"][0]["content"] = json!([block, block, block, block]);
    let error = sim.invoke(SONNET_37, &five).await.unwrap_err().into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");
    let message = aws_sdk_bedrockruntime::error::ProvideErrorMetadata::message(&error);
    assert_eq!(message, Some("A maximum of 4 blocks with cache_control may be provided. Found 5."));
}

#[tokio::test]
async fn nova_writes_the_prefix_before_its_cache_point_then_reads_it() {
    let sim = start().await;
    let nova = |system: &str, question: &str| {
        json!({"system": [{"text": system}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [{"text": question}]}],
            "inferenceConfig": {"maxTokens": 5}})
    };
    let body = nova(&manual(1_100), "What does it say?");
    let (first, counts) = invoke(&sim, NOVA, &body).await;
    assert_eq!(counts, [Some(4), Some(0), Some(1_100)]);
    let usage = &first["usage"];
    let n_output = usage["outputTokens"].as_u64().unwrap();
    assert_eq!(
        *usage,
        json!({"inputTokens": 4, "outputTokens": n_output, "totalTokens": 4 + n_output + 1_100,
            "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 1_100})
    );
    assert_eq!(invoke(&sim, NOVA, &body).await.1, [Some(4), Some(1_100), Some(0)]);

    let chunks = stream(&sim, NOVA, &nova(&manual(1_100), "And then?")).await;
    let last = chunks.last().unwrap();
    assert_eq!(last["metadata"]["usage"]["cacheReadInputTokenCount"], 1_100, "{last}");
    assert_eq!(last["metadata"]["usage"]["inputTokens"], 2, "{last}");
    let metrics = &last["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["cacheReadInputTokenCount"], 1_100, "{metrics}");
    assert_eq!(metrics["cacheWriteInputTokenCount"], 0, "{metrics}");
    assert_eq!(metrics["inputTokenCount"], 2, "{metrics}");

    // Another system prompt is another prefix; below 1,000 tokens none is cached.
    let other = nova(&manual(1_101), "What does it say?");
    assert_eq!(invoke(&sim, NOVA, &other).await.1, [Some(4), Some(0), Some(1_101)]);
    let short = nova(&manual(999), "What does it say?");
    assert_eq!(invoke(&sim, NOVA, &short).await.1, [Some(1_003), Some(0), Some(0)]);
    // Without a cache point the counts are 0, as before.
    let plain = json!({"messages": [{"role": "user", "content": [{"text": manual(1_100)}]}]});
    assert_eq!(invoke(&sim, NOVA, &plain).await.1, [Some(1_100), Some(0), Some(0)]);
}
