//! InvokeModel against the simulator: answer shapes, usage headers, determinism, max tokens,
//! stop sequences and the many spellings of a model id.

use serde_json::{Value, json};

use crate::support::{CLAUDE, HeaderCapture, TITAN, claude_body, start, titan_body, to_blob};

#[tokio::test]
async fn titan_answers_in_its_shape_with_usage_headers() {
    let sim = start().await;
    let capture = HeaderCapture::default();
    let body = titan_body("User: Tell me a joke\nBot:", json!({"temperature": 0.5}));
    let output = sim
        .client
        .invoke_model()
        .model_id(TITAN)
        .content_type("application/json")
        .accept("application/json")
        .body(to_blob(&body))
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(output.content_type(), "application/json");
    let response: Value = serde_json::from_slice(output.body().as_ref()).unwrap();

    assert_eq!(response["inputTextTokenCount"], 6);
    let result = &response["results"][0];
    assert_eq!(result["completionReason"], "FINISH");
    let text = result["outputText"].as_str().unwrap();
    let n_words = text.split_whitespace().count();
    assert!((16..48).contains(&n_words), "{text}");
    assert!(!text.starts_with(' '), "Titan's first token has no leading space: {text:?}");
    assert_eq!(result["tokenCount"], n_words);

    assert_eq!(capture.get("x-amzn-bedrock-input-token-count").as_deref(), Some("6"));
    assert_eq!(capture.get("x-amzn-bedrock-output-token-count"), Some(n_words.to_string()));
    let latency: u64 = capture.get("x-amzn-bedrock-invocation-latency").unwrap().parse().unwrap();
    assert!(latency < 60_000);
    let request_id = capture.get("x-amzn-requestid").unwrap();
    assert_eq!(request_id.len(), 36, "{request_id}");
}

#[tokio::test]
async fn claude_answers_in_its_shape() {
    let sim = start().await;
    let capture = HeaderCapture::default();
    let output = sim
        .client
        .invoke_model()
        .model_id(CLAUDE)
        .body(to_blob(&claude_body(
            "Tell me a joke",
            json!({"anthropic_version": "bedrock-2023-05-31"}),
        )))
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .unwrap();
    // No content type or accept set: the SDK sends `application/octet-stream` and no accept.
    let response: Value = serde_json::from_slice(output.body().as_ref()).unwrap();
    assert_eq!(response["type"], "completion");
    assert_eq!(response["stop_reason"], "stop_sequence");
    assert_eq!(response["stop"], "\n\nHuman:");
    let completion = response["completion"].as_str().unwrap();
    assert!(completion.starts_with(' '), "{completion:?}");
    let n_words = completion.split_whitespace().count();
    assert_eq!(capture.get("x-amzn-bedrock-output-token-count"), Some(n_words.to_string()));
    // "Human:", "Tell", "me", "a", "joke", "Assistant:".
    assert_eq!(capture.get("x-amzn-bedrock-input-token-count").as_deref(), Some("6"));
    assert_eq!(response.as_object().unwrap().len(), 4, "no usage in the Claude text body");
}

#[tokio::test]
async fn same_prompt_same_answer_and_different_prompt_different_answer() {
    let sim = start().await;
    let body = titan_body("What is a river?", json!({}));
    let first = sim.invoke_json(TITAN, &body).await;
    let second = sim.invoke_json(TITAN, &body).await;
    assert_eq!(first, second);
    let other = sim.invoke_json(TITAN, &titan_body("What is a mountain?", json!({}))).await;
    assert_ne!(first["results"][0]["outputText"], other["results"][0]["outputText"]);
}

#[tokio::test]
async fn max_tokens_are_honoured() {
    let sim = start().await;
    let response = sim.invoke_json(TITAN, &titan_body("hello", json!({"maxTokenCount": 3}))).await;
    assert_eq!(response["results"][0]["tokenCount"], 3);
    assert_eq!(response["results"][0]["completionReason"], "LENGTH");
    let text = response["results"][0]["outputText"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 3);

    let response =
        sim.invoke_json(CLAUDE, &claude_body("hello", json!({"max_tokens_to_sample": 4}))).await;
    assert_eq!(response["stop_reason"], "max_tokens");
    assert_eq!(response["stop"], Value::Null);
    assert_eq!(response["completion"].as_str().unwrap().split_whitespace().count(), 4);
}

#[tokio::test]
async fn stop_sequences_cut_the_text() {
    let sim = start().await;
    let full = sim.invoke_json(TITAN, &titan_body("stop here", json!({}))).await;
    let full = full["results"][0]["outputText"].as_str().unwrap().to_owned();
    let word = full.split(' ').nth(5).unwrap();
    let sequence = format!(" {word}");
    let expected = &full[..full.find(&sequence).unwrap()];

    let config = json!({"stopSequences": ["never-in-the-vocabulary", sequence]});
    let cut = sim.invoke_json(TITAN, &titan_body("stop here", config)).await;
    assert_eq!(cut["results"][0]["outputText"], expected);
    assert_eq!(cut["results"][0]["completionReason"], "STOP_CRITERIA_MET");
    assert_eq!(cut["results"][0]["tokenCount"], expected.split_whitespace().count());

    let full = sim.invoke_json(CLAUDE, &claude_body("stop here", json!({}))).await;
    let full = full["completion"].as_str().unwrap().to_owned();
    let word = full.split(' ').nth(4).unwrap();
    let sequence = format!(" {word}");
    let expected = &full[..full.find(&sequence).unwrap()];
    let cut = sim
        .invoke_json(CLAUDE, &claude_body("stop here", json!({"stop_sequences": [sequence]})))
        .await;
    assert_eq!(cut["completion"], expected);
    assert_eq!(cut["stop_reason"], "stop_sequence");
    assert_eq!(cut["stop"], sequence);
}

#[tokio::test]
async fn profile_ids_and_arns_resolve_to_the_base_model() {
    let sim = start().await;
    let body = claude_body("Which model am I?", json!({}));
    let expected = sim.invoke_json(CLAUDE, &body).await;
    let aliases = [
        "us.anthropic.claude-v2:1",
        "eu.anthropic.claude-v2:1",
        "global.anthropic.claude-v2:1",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v2:1",
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/anthropic.claude-v2:1",
    ];
    for model_id in aliases {
        assert_eq!(sim.invoke_json(model_id, &body).await, expected, "{model_id}");
    }

    let body = titan_body("Which model am I?", json!({}));
    let expected = sim.invoke_json("amazon.titan-text-lite-v1", &body).await;
    for model_id in [
        "apac.amazon.titan-text-lite-v1",
        "us-gov.amazon.titan-text-lite-v1",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
    ] {
        assert_eq!(sim.invoke_json(model_id, &body).await, expected, "{model_id}");
    }
    for model_id in
        ["amazon.titan-text-premier-v1:0", "anthropic.claude-v2", "anthropic.claude-instant-v1"]
    {
        let body =
            if model_id.starts_with("amazon") { &body } else { &claude_body("hi", json!({})) };
        assert!(sim.invoke(model_id, body).await.is_ok(), "{model_id}");
    }
}

#[tokio::test]
async fn request_count_counts_every_invoke_request() {
    let sim = start().await;
    assert_eq!(sim.simulator.request_count(), 0);
    sim.invoke_json(TITAN, &titan_body("one", json!({}))).await;
    let _ = sim.invoke("nope.nothing-v1", &titan_body("two", json!({}))).await;
    let _ = sim.stream(CLAUDE, &claude_body("three", json!({}))).await;
    assert_eq!(sim.simulator.request_count(), 3);
}
