//! The checks Bedrock makes before generating: model id shape and existence, content type and
//! accept headers, and each family's body schema.

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use serde_json::{Value, json};

use crate::support::{CLAUDE, TITAN, TestSim, claude_body, start, titan_body, to_blob};

/// Runs InvokeModel and returns the message of the ValidationException it must fail with.
async fn validation_message(sim: &TestSim, model_id: &str, body: Blob) -> String {
    let error = sim.invoke_raw(model_id, body).await.unwrap_err();
    assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
    let error = error.into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");
    error.message().unwrap().to_owned()
}

async fn body_message(sim: &TestSim, model_id: &str, body: Value) -> String {
    validation_message(sim, model_id, to_blob(&body)).await
}

#[tokio::test]
async fn titan_body_to_claude_and_claude_body_to_titan() {
    let sim = start().await;
    assert_eq!(
        body_message(&sim, CLAUDE, json!({"inputText": "hi"})).await,
        "Malformed input request: 3 schema violations found, please reformat your input and try \
         again."
    );
    assert_eq!(
        body_message(
            &sim,
            CLAUDE,
            json!({"prompt": "\n\nHuman: hi\n\nAssistant:",
            "max_tokens_to_sample": 5, "inputText": "hi"})
        )
        .await,
        "Malformed input request: #: extraneous key [inputText] is not permitted, please \
         reformat your input and try again."
    );
    assert_eq!(
        body_message(&sim, TITAN, claude_body("hi", json!({}))).await,
        "Malformed input request: 3 schema violations found, please reformat your input and try \
         again."
    );
}

#[tokio::test]
async fn claude_prompt_needs_both_turns() {
    let sim = start().await;
    let expected = r#"Invalid prompt: prompt must start with "\n\nHuman:" turn, prompt must end with "\n\nAssistant:" turn"#;
    for prompt in ["Tell me a joke", "\n\nHuman: Tell me a joke", "Tell me a joke\n\nAssistant:"] {
        let body = json!({"prompt": prompt, "max_tokens_to_sample": 10});
        assert_eq!(body_message(&sim, CLAUDE, body).await, expected, "{prompt:?}");
    }
}

#[tokio::test]
async fn out_of_range_and_mistyped_values() {
    let sim = start().await;
    let titan_cases = [
        (
            json!({"temperature": 1.5}),
            "#/textGenerationConfig/temperature: 1.5 is not less or equal to 1",
        ),
        (json!({"topP": -0.5}), "#/textGenerationConfig/topP: -0.5 is not greater or equal to 0"),
        (
            json!({"maxTokenCount": 8193}),
            "#/textGenerationConfig/maxTokenCount: 8193 is not less or equal to 8192",
        ),
        (
            json!({"maxTokenCount": "10"}),
            "#/textGenerationConfig/maxTokenCount: expected type: Integer, found: String",
        ),
        (
            json!({"stopSequences": "User:"}),
            "#/textGenerationConfig/stopSequences: expected type: JSONArray, found: String",
        ),
        (json!({"top_p": 0.5}), "#/textGenerationConfig: extraneous key [top_p] is not permitted"),
    ];
    for (config, detail) in titan_cases {
        let expected =
            format!("Malformed input request: {detail}, please reformat your input and try again.");
        assert_eq!(body_message(&sim, TITAN, titan_body("hi", config)).await, expected);
    }
    let lite_limit = titan_body("hi", json!({"maxTokenCount": 4097}));
    assert!(body_message(&sim, "amazon.titan-text-lite-v1", lite_limit).await.contains("4096"));

    let claude_cases = [
        (
            json!({"max_tokens_to_sample": 4097}),
            "#/max_tokens_to_sample: 4097 is not less or equal to 4096",
        ),
        (json!({"temperature": 2}), "#/temperature: 2 is not less or equal to 1"),
        (json!({"top_p": 1.1}), "#/top_p: 1.1 is not less or equal to 1"),
        (json!({"top_k": 501}), "#/top_k: 501 is not less or equal to 500"),
        (json!({"top_k": -1}), "#/top_k: -1 is not greater or equal to 0"),
        (
            json!({"stop_sequences": [1]}),
            "#/stop_sequences/0: expected type: String, found: Integer",
        ),
    ];
    for (extra, detail) in claude_cases {
        let expected =
            format!("Malformed input request: {detail}, please reformat your input and try again.");
        assert_eq!(body_message(&sim, CLAUDE, claude_body("hi", extra)).await, expected);
    }
    let missing = json!({"prompt": "\n\nHuman: hi\n\nAssistant:"});
    assert_eq!(
        body_message(&sim, CLAUDE, missing).await,
        "Malformed input request: #: required key [max_tokens_to_sample] not found, please \
         reformat your input and try again."
    );
}

#[tokio::test]
async fn bodies_that_are_not_json_objects() {
    let sim = start().await;
    for body in [&b"not json"[..], b"", b"[1,2]", b"\"text\""] {
        let message = validation_message(&sim, TITAN, Blob::new(body)).await;
        assert!(message.starts_with("Malformed input request: "), "{message}");
    }
}

#[tokio::test]
async fn unsupported_accept_and_content_type() {
    let sim = start().await;
    let body = to_blob(&titan_body("hi", json!({})));
    let error = sim
        .client
        .invoke_model()
        .model_id(TITAN)
        .accept("image/png")
        .body(body.clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");

    let error = sim
        .client
        .invoke_model_with_response_stream()
        .model_id(TITAN)
        .accept("text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");

    let error = sim
        .client
        .invoke_model()
        .model_id(TITAN)
        .content_type("text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");

    for accept in ["*/*", "application/json"] {
        let output = sim
            .client
            .invoke_model_with_response_stream()
            .model_id(TITAN)
            .accept(accept)
            .body(body.clone())
            .send()
            .await;
        assert!(output.is_ok(), "{accept}");
    }
}

#[tokio::test]
async fn unknown_and_malformed_model_ids() {
    let sim = start().await;
    let body = || to_blob(&titan_body("hi", json!({})));
    for model_id in [
        "amazon.titan-text-ultra-v9",
        "anthropic.claude-2-haiku-v9",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefabcdef",
        "xx.amazon.titan-text-express-v1",
    ] {
        let message = validation_message(&sim, model_id, body()).await;
        assert_eq!(message, "The provided model identifier is invalid.", "{model_id}");
    }
    let message = validation_message(&sim, "bad model id", body()).await;
    assert!(
        message.starts_with(
            "1 validation error detected: Value 'bad model id' at 'modelId' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: "
        ),
        "{message}"
    );
    let too_long = "a".repeat(2049);
    let message = validation_message(&sim, &too_long, body()).await;
    assert!(message.ends_with("Member must have length less than or equal to 2048"), "{message}");

    let error = sim
        .client
        .invoke_model_with_response_stream()
        .model_id("nope.nothing-v1")
        .body(body())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_validation_exception());
    assert_eq!(error.message(), Some("The provided model identifier is invalid."));
}
