//! Amazon Nova, Cohere Command, Cohere Command R, AI21 Jurassic-2 and AI21 Jamba through the
//! SDK: each family's answer and stream shapes, stream text equal to the InvokeModel text, stop
//! reasons, max tokens, stop sequences, usage and metrics, and the body checks.

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::support::{
    HeaderCapture, StreamEnd, TestSim, start, stream_start_error_variant, to_blob,
};

const NOVA: &str = "amazon.nova-lite-v1:0";
const COMMAND: &str = "cohere.command-text-v14";
const COMMAND_R: &str = "cohere.command-r-plus-v1:0";
const J2: &str = "ai21.j2-ultra-v1";
const JAMBA: &str = "ai21.jamba-1-5-large-v1:0";

/// A successful InvokeModel answer and its usage headers.
struct Invoked {
    body: Value,
    n_input_tokens: u64,
    n_output_tokens: u64,
}

async fn invoke(sim: &TestSim, model_id: &str, body: &Value) -> Invoked {
    let capture = HeaderCapture::default();
    let output = sim
        .client
        .invoke_model()
        .model_id(model_id)
        .content_type("application/json")
        .accept("application/json")
        .body(to_blob(body))
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .unwrap();
    let count = |name| capture.get(name).unwrap().parse::<u64>().unwrap();
    Invoked {
        body: serde_json::from_slice(output.body().as_ref()).unwrap(),
        n_input_tokens: count("x-amzn-bedrock-input-token-count"),
        n_output_tokens: count("x-amzn-bedrock-output-token-count"),
    }
}

/// The chunks of a stream that must start and end cleanly.
async fn stream_chunks(sim: &TestSim, model_id: &str, body: &Value) -> Vec<Value> {
    let result = sim.stream(model_id, body).await;
    assert!(matches!(result.end, StreamEnd::Clean), "{:?}", result.end);
    result.chunks
}

/// Checks the invocation metrics of the last chunk and that no other chunk has them.
fn assert_metrics_last(chunks: &[Value], n_input_tokens: u64, n_output_tokens: u64) {
    let (last, others) = chunks.split_last().unwrap();
    for chunk in others {
        assert!(chunk.get("amazon-bedrock-invocationMetrics").is_none(), "{chunk}");
    }
    let metrics = &last["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["inputTokenCount"], n_input_tokens, "{last}");
    assert_eq!(metrics["outputTokenCount"], n_output_tokens, "{last}");
    let first_byte_latency = metrics["firstByteLatency"].as_u64().unwrap();
    assert!(first_byte_latency <= metrics["invocationLatency"].as_u64().unwrap(), "{metrics}");
}

/// The message of the 400 ValidationException InvokeModel must fail with.
async fn validation_message(sim: &TestSim, model_id: &str, body: &Value) -> String {
    let error = sim.invoke(model_id, body).await.unwrap_err();
    assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
    let error = error.into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");
    error.message().unwrap().to_owned()
}

fn malformed(detail: &str) -> String {
    format!("Malformed input request: {detail}, please reformat your input and try again.")
}

/// A stop sequence that cuts `text` in the middle: its fourth word with the space before it.
fn stop_sequence_in(text: &str) -> String {
    format!(" {}", text.split_whitespace().nth(3).unwrap())
}

fn nova_body(question: &str, inference_config: Value) -> Value {
    json!({
        "schemaVersion": "messages-v1",
        "system": [{"text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"text": question}]}],
        "inferenceConfig": inference_config,
    })
}

/// The text of a Nova stream, checking that each delta opens a new block that stops next.
fn nova_stream_text(chunks: &[Value]) -> String {
    let mut text = String::new();
    for (block_idx, pair) in chunks.chunks_exact(2).enumerate() {
        let delta = &pair[0]["contentBlockDelta"];
        assert_eq!(delta["contentBlockIndex"], block_idx, "{pair:?}");
        assert_eq!(pair[1], json!({"contentBlockStop": {"contentBlockIndex": block_idx}}));
        text.push_str(delta["delta"]["text"].as_str().unwrap());
    }
    text
}

#[tokio::test]
async fn nova_stream_matches_invoke() {
    let sim = start().await;
    let body = nova_body("Tell me a story", json!({"temperature": 0.7, "topP": 0.9, "topK": 20}));
    let invoked = invoke(&sim, NOVA, &body).await;
    let response = &invoked.body;
    assert_eq!(response["output"]["message"]["role"], "assistant");
    let text = response["output"]["message"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(response["stopReason"], "end_turn");
    // "You are terse." and "Tell me a story".
    assert_eq!(invoked.n_input_tokens, 7);
    assert_eq!(invoked.n_output_tokens, text.split_whitespace().count() as u64);
    let (n_input, n_output) = (invoked.n_input_tokens, invoked.n_output_tokens);
    assert_eq!(
        response["usage"],
        json!({"inputTokens": n_input, "outputTokens": n_output, "totalTokens": n_input + n_output,
            "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 0})
    );

    let chunks = stream_chunks(&sim, NOVA, &body).await;
    assert_eq!(chunks.len() as u64, 2 * n_output + 3);
    assert_eq!(chunks[0], json!({"messageStart": {"role": "assistant"}}));
    let n_chunks = chunks.len();
    assert_eq!(nova_stream_text(&chunks[1..n_chunks - 2]), text);
    assert_eq!(chunks[n_chunks - 2], json!({"messageStop": {"stopReason": "end_turn"}}));
    let metadata = &chunks[n_chunks - 1]["metadata"];
    assert_eq!(
        metadata["usage"],
        json!({"inputTokens": n_input, "outputTokens": n_output,
            "cacheReadInputTokenCount": 0, "cacheWriteInputTokenCount": 0})
    );
    assert_metrics_last(&chunks, n_input, n_output);
    let metrics = &chunks[n_chunks - 1]["amazon-bedrock-invocationMetrics"];
    assert_eq!(metrics["cacheReadInputTokenCount"], 0);
    assert_eq!(metrics["cacheWriteInputTokenCount"], 0);
}

#[tokio::test]
async fn nova_max_tokens_stop_sequences_and_profiles() {
    let sim = start().await;
    let invoked = invoke(&sim, NOVA, &nova_body("short", json!({"maxTokens": 3}))).await;
    assert_eq!(invoked.body["stopReason"], "max_tokens");
    assert_eq!(invoked.body["usage"]["outputTokens"], 3);
    let chunks = stream_chunks(&sim, NOVA, &nova_body("short", json!({"maxTokens": 3}))).await;
    assert_eq!(chunks[7], json!({"messageStop": {"stopReason": "max_tokens"}}));

    let full = invoke(&sim, NOVA, &nova_body("cut me", json!({}))).await;
    let full = full.body["output"]["message"]["content"][0]["text"].as_str().unwrap().to_owned();
    let sequence = stop_sequence_in(&full);
    let body = nova_body("cut me", json!({"stopSequences": [sequence]}));
    let cut = invoke(&sim, NOVA, &body).await;
    let expected = &full[..full.find(&sequence).unwrap()];
    assert_eq!(cut.body["output"]["message"]["content"][0]["text"], expected);
    assert_eq!(cut.body["stopReason"], "stop_sequence");
    let chunks = stream_chunks(&sim, NOVA, &body).await;
    assert_eq!(nova_stream_text(&chunks[1..chunks.len() - 2]), expected);

    // Premier and Nova 2 Lite are served through inference profiles only.
    let body = nova_body("hi", json!({}));
    let message = validation_message(&sim, "amazon.nova-premier-v1:0", &body).await;
    assert!(message.contains("with on-demand throughput isn’t supported"), "{message}");
    assert!(invoke(&sim, "us.amazon.nova-premier-v1:0", &body).await.n_output_tokens > 0);
    assert!(!stream_chunks(&sim, "global.amazon.nova-2-lite-v1:0", &body).await.is_empty());
}

#[tokio::test]
async fn nova_body_checks() {
    let sim = start().await;
    let user = |content: Value| json!([{"role": "user", "content": content}]);
    let cases = [
        (json!({"inputText": "hi"}), malformed("2 schema violations found")),
        (
            json!({"messages": user(json!([{"type": "text", "text": "hi"}]))}),
            malformed("#/messages/0/content/0: extraneous key [type] is not permitted"),
        ),
        (
            json!({"messages": user(json!([{"text": "hi"}])), "inferenceConfig": {"topK": 129}}),
            malformed("#/inferenceConfig/topK: 129 is not less or equal to 128"),
        ),
        (
            json!({"messages": user(json!([{"text": "hi"}])), "max_tokens": 10}),
            malformed("#: extraneous key [max_tokens] is not permitted"),
        ),
        (
            json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}),
            "A conversation must start with a user message. Try again with a conversation that \
             starts with a user message."
                .to_owned(),
        ),
        // A Claude Messages body: `anthropic_version` and `max_tokens` are foreign, the string
        // content is not an array.
        (
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}]}),
            malformed("3 schema violations found"),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(validation_message(&sim, NOVA, &body).await, expected, "{body}");
    }
}

#[tokio::test]
async fn cohere_command_stream_matches_invoke() {
    let sim = start().await;
    let body = json!({"prompt": "Tell me a joke", "max_tokens": 200, "temperature": 0.5,
        "p": 0.5, "k": 0, "stream": true});
    let invoked = invoke(&sim, COMMAND, &body).await;
    let generation = &invoked.body["generations"][0];
    let text = generation["text"].as_str().unwrap();
    assert!(text.starts_with(' '), "{text:?}");
    assert_eq!(generation["finish_reason"], "COMPLETE");
    assert_eq!(invoked.body["id"].as_str().unwrap().len(), 36);
    assert_eq!(invoked.n_input_tokens, 4);
    assert_eq!(invoked.n_output_tokens, text.split_whitespace().count() as u64);

    let chunks = stream_chunks(&sim, COMMAND, &body).await;
    let (last, tokens) = chunks.split_last().unwrap();
    assert_eq!(tokens.len() as u64, invoked.n_output_tokens);
    let mut streamed = String::new();
    for chunk in tokens {
        assert_eq!(chunk["is_finished"], false, "{chunk}");
        streamed.push_str(chunk["text"].as_str().unwrap());
    }
    assert_eq!(streamed, text);
    assert_eq!(last["is_finished"], true);
    assert_eq!(last["finish_reason"], "COMPLETE");
    assert_eq!(last["response"], invoked.body);
    assert_metrics_last(&chunks, 4, invoked.n_output_tokens);

    // Without `"stream": true` the simulator streams the same chunks (see cohere_command.rs).
    let mut without_flag = body.clone();
    without_flag.as_object_mut().unwrap().remove("stream");
    let chunks_without_flag = stream_chunks(&sim, COMMAND, &without_flag).await;
    assert_eq!(chunks_without_flag.len(), chunks.len());
}

#[tokio::test]
async fn cohere_command_max_tokens_and_stop_sequences() {
    let sim = start().await;
    let invoked = invoke(&sim, "cohere.command-light-text-v14", &json!({"prompt": "hi"})).await;
    assert!(invoked.n_output_tokens <= 20, "max_tokens defaults to 20");
    let body = json!({"prompt": "hi", "max_tokens": 2, "stream": true});
    let invoked = invoke(&sim, COMMAND, &body).await;
    assert_eq!(invoked.body["generations"][0]["finish_reason"], "MAX_TOKENS");
    assert_eq!(invoked.n_output_tokens, 2);
    let chunks = stream_chunks(&sim, COMMAND, &body).await;
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2]["finish_reason"], "MAX_TOKENS");

    let full = invoke(&sim, COMMAND, &json!({"prompt": "cut me", "max_tokens": 100})).await;
    let full = full.body["generations"][0]["text"].as_str().unwrap().to_owned();
    let sequence = stop_sequence_in(&full);
    let body = json!({"prompt": "cut me", "max_tokens": 100, "stop_sequences": [sequence]});
    let cut = invoke(&sim, COMMAND, &body).await;
    assert_eq!(cut.body["generations"][0]["text"], full[..full.find(&sequence).unwrap()]);
    assert_eq!(cut.body["generations"][0]["finish_reason"], "COMPLETE");
}

#[tokio::test]
async fn cohere_command_body_checks() {
    let sim = start().await;
    let cases = [
        (json!({"inputText": "hi"}), "2 schema violations found"),
        (
            json!({"prompt": "hi", "temperature": 5.1}),
            "#/temperature: 5.1 is not less or equal to 5",
        ),
        (
            json!({"prompt": "hi", "stop_sequences": ["a", "b", "c", "d", "e"]}),
            "#/stop_sequences: expected maximum item count: 4, found: 5",
        ),
        (
            json!({"prompt": "hi", "stream": "true"}),
            "#/stream: expected type: Boolean, found: String",
        ),
        (json!({"prompt": "hi", "top_p": 0.5}), "#: extraneous key [top_p] is not permitted"),
        (
            json!({"prompt": "hi", "return_likelihoods": "SOME"}),
            "#/return_likelihoods: SOME is not a valid enum value",
        ),
        // A Command R body.
        (json!({"message": "hi", "preamble": "Be terse."}), "3 schema violations found"),
    ];
    for (body, detail) in cases {
        assert_eq!(validation_message(&sim, COMMAND, &body).await, malformed(detail), "{body}");
    }
}

#[tokio::test]
async fn cohere_command_r_stream_matches_invoke() {
    let sim = start().await;
    let body = json!({
        "message": "What is gravity?",
        "chat_history": [{"role": "USER", "message": "Who discovered gravity?"},
                         {"role": "CHATBOT", "message": "Isaac Newton"}],
        "preamble": "You are terse.",
        "temperature": 0.3, "p": 0.75, "k": 0, "seed": 42, "prompt_truncation": "OFF",
    });
    let invoked = invoke(&sim, COMMAND_R, &body).await;
    let response = &invoked.body;
    let text = response["text"].as_str().unwrap();
    assert_eq!(response["finish_reason"], "COMPLETE");
    // Preamble 3 words, history 3 + 2, message 3.
    assert_eq!(invoked.n_input_tokens, 11);
    assert_eq!(invoked.n_output_tokens, text.split_whitespace().count() as u64);

    let chunks = stream_chunks(&sim, COMMAND_R, &body).await;
    let first = &chunks[0];
    assert_eq!(first["event_type"], "stream-start");
    assert_eq!(first["is_finished"], false);
    assert_eq!(first["generation_id"], response["generation_id"]);
    let (last, middle) = chunks[1..].split_last().unwrap();
    let mut streamed = String::new();
    for chunk in middle {
        assert_eq!(chunk["event_type"], "text-generation", "{chunk}");
        streamed.push_str(chunk["text"].as_str().unwrap());
    }
    assert_eq!(streamed, text);
    assert_eq!(last["event_type"], "stream-end");
    assert_eq!(last["is_finished"], true);
    assert_eq!(last["finish_reason"], "COMPLETE");
    assert_eq!(last["response"], *response);
    assert_metrics_last(&chunks, 11, invoked.n_output_tokens);

    // The history seeds the answer: another history, another answer.
    let mut other = body.clone();
    other["chat_history"][1]["message"] = json!("Galileo");
    assert_ne!(invoke(&sim, COMMAND_R, &other).await.body["text"], response["text"]);
}

#[tokio::test]
async fn cohere_command_r_max_tokens_and_stop_sequences() {
    let sim = start().await;
    let body = json!({"message": "hi", "max_tokens": 2});
    let invoked = invoke(&sim, "cohere.command-r-v1:0", &body).await;
    assert_eq!(invoked.body["finish_reason"], "MAX_TOKENS");
    assert_eq!(invoked.n_output_tokens, 2);
    let chunks = stream_chunks(&sim, "cohere.command-r-v1:0", &body).await;
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["finish_reason"], "MAX_TOKENS");

    let full = invoke(&sim, COMMAND_R, &json!({"message": "cut me"})).await;
    let full = full.body["text"].as_str().unwrap().to_owned();
    let sequence = stop_sequence_in(&full);
    let cut =
        invoke(&sim, COMMAND_R, &json!({"message": "cut me", "stop_sequences": [sequence]})).await;
    assert_eq!(cut.body["text"], full[..full.find(&sequence).unwrap()]);
    assert_eq!(cut.body["finish_reason"], "COMPLETE");
}

#[tokio::test]
async fn cohere_command_r_body_checks() {
    let sim = start().await;
    let cases = [
        (
            json!({"message": "hi", "chat_history": [{"role": "user", "message": "x"}]}),
            "#/chat_history/0/role: user is not a valid enum value",
        ),
        (json!({"preamble": "Be terse."}), "#: required key [message] not found"),
        (json!({"message": "hi", "p": 1.0}), "#/p: 1.0 is not less or equal to 0.99"),
        (
            json!({"message": "hi", "raw_prompting": 1}),
            "#/raw_prompting: expected type: Boolean, found: Integer",
        ),
        (json!({"message": "hi", "stream": true}), "#: extraneous key [stream] is not permitted"),
        // A Cohere Command body.
        (json!({"prompt": "hi", "max_tokens": 10}), "2 schema violations found"),
    ];
    for (body, detail) in cases {
        assert_eq!(validation_message(&sim, COMMAND_R, &body).await, malformed(detail), "{body}");
    }
}

#[tokio::test]
async fn j2_answers_with_token_lists() {
    let sim = start().await;
    let body = json!({"prompt": "Translate to Spanish: hello", "maxTokens": 200, "temperature": 0.5,
        "topP": 0.5, "countPenalty": {"scale": 0}, "presencePenalty": {"scale": 0},
        "frequencyPenalty": {"scale": 0, "applyToNumbers": true}});
    let invoked = invoke(&sim, J2, &body).await;
    let completion = &invoked.body["completions"][0];
    let text = completion["data"]["text"].as_str().unwrap();
    assert_eq!(completion["finishReason"], json!({"reason": "endoftext"}));
    assert_eq!(invoked.n_input_tokens, 4);
    let tokens = completion["data"]["tokens"].as_array().unwrap();
    assert_eq!(tokens.len() as u64, invoked.n_output_tokens);
    let mut rebuilt = String::new();
    for token in tokens {
        let range = &token["textRange"];
        let (start, end) = (range["start"].as_u64().unwrap(), range["end"].as_u64().unwrap());
        assert_eq!(start as usize, rebuilt.len());
        let piece = token["generatedToken"]["token"].as_str().unwrap().replace('▁', " ");
        rebuilt.push_str(&piece);
        assert_eq!(end as usize, rebuilt.len());
    }
    assert_eq!(rebuilt, text);
    assert!(invoked.body["id"].is_u64());

    let invoked = invoke(&sim, "ai21.j2-mid-v1", &json!({"prompt": "hi", "maxTokens": 2})).await;
    let finish = &invoked.body["completions"][0]["finishReason"];
    assert_eq!(*finish, json!({"reason": "length", "length": 2}));

    let full = invoke(&sim, J2, &json!({"prompt": "cut me"})).await;
    let full = full.body["completions"][0]["data"]["text"].as_str().unwrap().to_owned();
    let sequence = stop_sequence_in(&full);
    let cut = invoke(&sim, J2, &json!({"prompt": "cut me", "stopSequences": [sequence]})).await;
    let completion = &cut.body["completions"][0];
    assert_eq!(completion["data"]["text"], full[..full.find(&sequence).unwrap()]);
    assert_eq!(completion["finishReason"], json!({"reason": "stop", "sequence": sequence}));
}

#[tokio::test]
async fn j2_refuses_to_stream() {
    let sim = start().await;
    // The refusal comes before the body is read: a bad body gets it too.
    for body in [json!({"prompt": "hi"}), json!({"inputText": "hi"})] {
        let error = sim.start_stream(J2, &body).await.unwrap_err();
        assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
        let error = error.into_service_error();
        assert_eq!(stream_start_error_variant(&error), "ValidationException");
        assert_eq!(error.message(), Some("The model is unsupported for streaming."));
    }
}

#[tokio::test]
async fn j2_body_checks() {
    let sim = start().await;
    let cases = [
        (json!({"inputText": "hi"}), "2 schema violations found"),
        (
            json!({"prompt": "hi", "maxTokens": 8192}),
            "#/maxTokens: 8192 is not less or equal to 8191",
        ),
        (
            json!({"prompt": "hi", "max_tokens": 10}),
            "#: extraneous key [max_tokens] is not permitted",
        ),
        (
            json!({"prompt": "hi", "presencePenalty": {"scale": 6}}),
            "#/presencePenalty/scale: 6 is not less or equal to 5",
        ),
        (
            json!({"prompt": "hi", "countPenalty": 0.5}),
            "#/countPenalty: expected type: JSONObject, found: BigDecimal",
        ),
        // A Jamba body.
        (json!({"messages": [{"role": "user", "content": "hi"}]}), "2 schema violations found"),
    ];
    for (body, detail) in cases {
        assert_eq!(validation_message(&sim, J2, &body).await, malformed(detail), "{body}");
    }
}

#[tokio::test]
async fn jamba_stream_matches_invoke() {
    let sim = start().await;
    let body = json!({"messages": [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Tell me a story"}], "temperature": 1.0, "top_p": 1.0, "n": 1});
    let invoked = invoke(&sim, JAMBA, &body).await;
    let response = &invoked.body;
    let choice = &response["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().unwrap();
    let (n_input, n_output) = (invoked.n_input_tokens, invoked.n_output_tokens);
    assert_eq!(n_input, 7);
    assert_eq!(
        response["usage"],
        json!({"prompt_tokens": n_input, "completion_tokens": n_output,
            "total_tokens": n_input + n_output})
    );
    let id = response["id"].as_str().unwrap();
    assert!(id.starts_with("cmpl-") && id.len() == 37, "{id}");

    let chunks = stream_chunks(&sim, JAMBA, &body).await;
    assert_eq!(chunks.len() as u64, n_output + 3);
    for (sent, chunk) in chunks[..chunks.len() - 1].iter().enumerate() {
        assert_eq!(chunk["id"], id);
        let n_sent = (sent as u64).min(n_output);
        assert_eq!(
            chunk["usage"],
            json!({"prompt_tokens": n_input, "total_tokens": n_input + n_sent,
                "completion_tokens": n_sent})
        );
    }
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant"}));
    let content_chunks = &chunks[1..chunks.len() - 2];
    let streamed: String = content_chunks
        .iter()
        .map(|chunk| {
            assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
            chunk["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(streamed, text);
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(*finish, json!({"index": 0, "delta": {}, "finish_reason": "stop"}));
    let last = chunks.last().unwrap();
    assert_eq!(last.as_object().unwrap().len(), 1, "only the metering: {last}");
    assert_metrics_last(&chunks, n_input, n_output);
}

#[tokio::test]
async fn jamba_max_tokens_and_stop_sequences() {
    let sim = start().await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2});
    let invoked = invoke(&sim, "ai21.jamba-instruct-v1:0", &body).await;
    assert_eq!(invoked.body["choices"][0]["finish_reason"], "length");
    assert_eq!(invoked.body["usage"]["completion_tokens"], 2);
    let chunks = stream_chunks(&sim, "ai21.jamba-1-5-mini-v1:0", &body).await;
    assert_eq!(chunks.len(), 5);
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");

    let question =
        |stop: Value| json!({"messages": [{"role": "user", "content": "cut me"}], "stop": stop});
    let full = invoke(&sim, JAMBA, &question(json!([]))).await;
    let full = full.body["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    let sequence = stop_sequence_in(&full);
    let cut = invoke(&sim, JAMBA, &question(json!([sequence]))).await;
    let choice = &cut.body["choices"][0];
    assert_eq!(choice["message"]["content"], full[..full.find(&sequence).unwrap()]);
    assert_eq!(choice["finish_reason"], "stop");
}

#[tokio::test]
async fn jamba_body_checks() {
    let sim = start().await;
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"prompt": "hi"}), "2 schema violations found"),
        (
            json!({"messages": user, "temperature": 2.5}),
            "#/temperature: 2.5 is not less or equal to 2",
        ),
        (json!({"messages": user, "top_k": 5}), "#: extraneous key [top_k] is not permitted"),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
            "#/messages/0/content: expected type: String, found: JSONArray",
        ),
        // A Nova body: `system` and `inferenceConfig` are foreign, content is not a string.
        (
            json!({"system": [{"text": "x"}], "inferenceConfig": {},
                "messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
            "3 schema violations found",
        ),
    ];
    for (body, detail) in cases {
        assert_eq!(validation_message(&sim, JAMBA, &body).await, malformed(detail), "{body}");
    }
}
