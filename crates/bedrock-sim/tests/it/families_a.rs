//! The text families of batch A through the real SDK: Claude Messages, Llama 2/3/4, Mistral text
//! and chat, DeepSeek-R1 and gpt-oss. Per family: InvokeModel and the stream agree, stop
//! reasons, max tokens, stop sequences, usage and metrics, and the validation errors (a wrong
//! body, an out-of-range value, an extraneous key, a body of another family), plus the
//! inference-profile-only rules (all of these families stream).

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::support::{HeaderCapture, StreamEnd, TestSim, start, to_blob};

const CLAUDE_HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const CLAUDE_SONNET_37: &str = "anthropic.claude-3-7-sonnet-20250219-v1:0";
const LLAMA3: &str = "meta.llama3-8b-instruct-v1:0";
const LLAMA33: &str = "meta.llama3-3-70b-instruct-v1:0";
const LLAMA4: &str = "meta.llama4-scout-17b-instruct-v1:0";
const MIXTRAL: &str = "mistral.mixtral-8x7b-instruct-v0:1";
const MISTRAL_LARGE_2407: &str = "mistral.mistral-large-2407-v1:0";
const DEEPSEEK_PROFILE: &str = "us.deepseek.r1-v1:0";
const GPT_OSS: &str = "openai.gpt-oss-20b-1:0";

fn on_demand_unsupported(base_model_id: &str) -> String {
    format!(
        "Invocation of model ID {base_model_id} with on-demand throughput isn’t supported. Retry \
         your request with the ID or ARN of an inference profile that contains this model."
    )
}

fn malformed(detail: &str) -> String {
    format!("Malformed input request: {detail}, please reformat your input and try again.")
}

fn claude_body(messages: Value, extra: Value) -> Value {
    let mut body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300,
        "messages": messages});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

fn user_says(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// Runs InvokeModel, which must fail with a 400 ValidationException, and returns its message.
async fn invoke_rejection(sim: &TestSim, model_id: &str, body: &Value) -> String {
    let error = sim.invoke(model_id, body).await.unwrap_err();
    assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
    let error = error.into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");
    error.message().unwrap().to_owned()
}

/// Runs InvokeModelWithResponseStream, which must be refused before the stream starts.
async fn stream_rejection(sim: &TestSim, model_id: &str, body: &Value) -> String {
    let error = sim.start_stream(model_id, body).await.unwrap_err();
    assert_eq!(error.raw_response().map(|response| response.status().as_u16()), Some(400));
    let error = error.into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");
    error.message().unwrap().to_owned()
}

/// The chunks of a stream that must end cleanly.
async fn stream_chunks(sim: &TestSim, model_id: &str, body: &Value) -> Vec<Value> {
    let result = sim.stream(model_id, body).await;
    assert!(matches!(result.end, StreamEnd::Clean), "{:?}", result.end);
    result.chunks
}

/// The metrics of the last chunk, checked for shape: (input tokens, output tokens).
fn last_chunk_metrics(chunks: &[Value]) -> (u64, u64) {
    let (last, others) = chunks.split_last().unwrap();
    for chunk in others {
        assert!(chunk.get("amazon-bedrock-invocationMetrics").is_none(), "{chunk}");
    }
    let metrics = &last["amazon-bedrock-invocationMetrics"];
    let first_byte = metrics["firstByteLatency"].as_u64().unwrap();
    assert!(first_byte <= metrics["invocationLatency"].as_u64().unwrap(), "{metrics}");
    (metrics["inputTokenCount"].as_u64().unwrap(), metrics["outputTokenCount"].as_u64().unwrap())
}

/// The `x-amzn-bedrock-{input,output}-token-count` headers of an InvokeModel call, and its body.
async fn invoke_with_usage(sim: &TestSim, model_id: &str, body: &Value) -> (Value, u64, u64) {
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
    let count = |name: &str| capture.get(name).unwrap().parse::<u64>().unwrap();
    let response = serde_json::from_slice(output.body().as_ref()).unwrap();
    (
        response,
        count("x-amzn-bedrock-input-token-count"),
        count("x-amzn-bedrock-output-token-count"),
    )
}

/// A stop sequence that cuts `full` in the middle: the word at `word_idx` with its space.
fn stop_sequence_in(full: &str, word_idx: usize) -> (String, String) {
    let sequence = format!(" {}", full.split(' ').nth(word_idx).unwrap());
    let expected = full[..full.find(&sequence).unwrap()].to_owned();
    (sequence, expected)
}

#[tokio::test]
async fn claude_messages_invoke_and_stream_agree() {
    let sim = start().await;
    let body = claude_body(
        json!([{"role": "user", "content": [{"type": "text", "text": "Tell me a story"}]}]),
        json!({"system": "Be kind.", "temperature": 0.5, "top_k": 250}),
    );
    let (response, n_input_tokens, n_output_tokens) =
        invoke_with_usage(&sim, CLAUDE_HAIKU, &body).await;
    let id = response["id"].as_str().unwrap();
    assert!(id.starts_with("msg_bdrk_01") && id.len() == 33, "{id}");
    assert_eq!(response["type"], "message");
    assert_eq!(response["role"], "assistant");
    assert_eq!(response["model"], "claude-3-haiku-20240307");
    assert_eq!(response["stop_reason"], "end_turn");
    assert_eq!(response["stop_sequence"], Value::Null);
    assert_eq!(response["content"][0]["type"], "text");
    let text = response["content"][0]["text"].as_str().unwrap();
    assert!(!text.starts_with(' '), "{text:?}");
    // "Be kind." and "Tell me a story".
    assert_eq!(n_input_tokens, 6);
    assert_eq!(response["usage"], json!({"input_tokens": 6, "output_tokens": n_output_tokens}));
    assert_eq!(text.split_whitespace().count() as u64, n_output_tokens);

    let chunks = stream_chunks(&sim, CLAUDE_HAIKU, &body).await;
    let kinds: Vec<&str> = chunks.iter().map(|chunk| chunk["type"].as_str().unwrap()).collect();
    let n_deltas = kinds.len() - 5;
    assert_eq!(n_deltas as u64, n_output_tokens, "one delta per token");
    let mut expected_kinds = vec!["message_start", "content_block_start"];
    expected_kinds.extend(vec!["content_block_delta"; n_deltas]);
    expected_kinds.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(kinds, expected_kinds);

    let start = &chunks[0]["message"];
    assert_eq!(start["id"], response["id"]);
    assert_eq!(start["model"], "claude-3-haiku-20240307");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["usage"]["input_tokens"], 6);
    assert_eq!(chunks[1]["content_block"], json!({"type": "text", "text": ""}));
    let streamed: String = chunks[2..2 + n_deltas]
        .iter()
        .map(|chunk| {
            assert_eq!(chunk["delta"]["type"], "text_delta");
            chunk["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(streamed, text);
    let message_delta = &chunks[n_deltas + 3];
    assert_eq!(message_delta["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
    assert_eq!(message_delta["usage"]["output_tokens"], n_output_tokens);
    assert_eq!(last_chunk_metrics(&chunks), (6, n_output_tokens));
}

#[tokio::test]
async fn claude_messages_max_tokens_and_stop_sequences() {
    let sim = start().await;
    let short = claude_body(user_says("hello"), json!({"max_tokens": 3}));
    let response = sim.invoke_json(CLAUDE_HAIKU, &short).await;
    assert_eq!(response["stop_reason"], "max_tokens");
    assert_eq!(response["usage"]["output_tokens"], 3);
    let chunks = stream_chunks(&sim, CLAUDE_HAIKU, &short).await;
    assert_eq!(chunks[chunks.len() - 2]["delta"]["stop_reason"], "max_tokens");

    let full = sim.invoke_json(CLAUDE_HAIKU, &claude_body(user_says("cut here"), json!({}))).await;
    let (sequence, expected) = stop_sequence_in(full["content"][0]["text"].as_str().unwrap(), 4);
    let cut = claude_body(user_says("cut here"), json!({"stop_sequences": [sequence]}));
    let response = sim.invoke_json(CLAUDE_HAIKU, &cut).await;
    assert_eq!(response["content"][0]["text"], expected);
    assert_eq!(response["stop_reason"], "stop_sequence");
    assert_eq!(response["stop_sequence"], sequence);
    let chunks = stream_chunks(&sim, CLAUDE_HAIKU, &cut).await;
    let message_delta = &chunks[chunks.len() - 2];
    assert_eq!(message_delta["delta"]["stop_sequence"], sequence);
}

#[tokio::test]
async fn claude_newer_models_need_an_inference_profile() {
    let sim = start().await;
    let body = claude_body(user_says("hi"), json!({}));
    assert_eq!(
        invoke_rejection(&sim, CLAUDE_SONNET_37, &body).await,
        on_demand_unsupported(CLAUDE_SONNET_37)
    );
    assert_eq!(
        stream_rejection(&sim, CLAUDE_SONNET_37, &body).await,
        on_demand_unsupported(CLAUDE_SONNET_37)
    );
    let foundation_arn = format!("arn:aws:bedrock:us-east-1::foundation-model/{CLAUDE_SONNET_37}");
    assert_eq!(
        invoke_rejection(&sim, &foundation_arn, &body).await,
        on_demand_unsupported(CLAUDE_SONNET_37)
    );

    for model_id in [
        format!("us.{CLAUDE_SONNET_37}"),
        format!("eu.{CLAUDE_SONNET_37}"),
        format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{CLAUDE_SONNET_37}"),
    ] {
        let response = sim.invoke_json(&model_id, &body).await;
        assert_eq!(response["model"], "claude-3-7-sonnet-20250219", "{model_id}");
    }
    let response = sim.invoke_json("global.anthropic.claude-sonnet-4-6", &body).await;
    assert_eq!(response["model"], "claude-sonnet-4-6");
    let chunks = stream_chunks(&sim, "us.anthropic.claude-opus-4-1-20250805-v1:0", &body).await;
    assert_eq!(chunks[0]["message"]["model"], "claude-opus-4-1-20250805");
    // Claude 3 Haiku is served on demand.
    assert!(sim.invoke(CLAUDE_HAIKU, &body).await.is_ok());
}

#[tokio::test]
async fn claude_messages_validation() {
    let sim = start().await;
    let two_users = json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]);
    let cases = [
        (
            claude_body(two_users, json!({})),
            "messages: roles must alternate between \"user\" and \"assistant\", but found \
             multiple \"user\" roles in a row"
                .to_owned(),
        ),
        (
            claude_body(json!([{"role": "assistant", "content": "a"}]), json!({})),
            "messages: first message must use the \"user\" role".to_owned(),
        ),
        (
            json!({"max_tokens": 10, "messages": user_says("hi")}),
            malformed("#: required key [anthropic_version] not found"),
        ),
        (
            claude_body(user_says("hi"), json!({"anthropic_version": "2023-06-01"})),
            "Invalid API version: 2023-06-01".to_owned(),
        ),
        (
            claude_body(user_says("hi"), json!({"stream": true})),
            malformed("#: extraneous key [stream] is not permitted"),
        ),
        (
            claude_body(user_says("hi"), json!({"temperature": 1.5})),
            malformed("#/temperature: 1.5 is not less or equal to 1"),
        ),
        (
            claude_body(user_says("hi"), json!({"top_k": 501})),
            malformed("#/top_k: 501 is not less or equal to 500"),
        ),
        (
            claude_body(user_says("hi"), json!({"max_tokens": 4097})),
            "max_tokens: 4097 > 4096, which is the maximum allowed number of output tokens for \
             claude-3-haiku-20240307"
                .to_owned(),
        ),
        (
            json!({"prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 10}),
            "\"claude-3-haiku-20240307\" is not supported on this API. Please use the Messages \
             API instead."
                .to_owned(),
        ),
        (json!({"inputText": "hi"}), malformed("4 schema violations found")),
    ];
    for (body, expected) in cases {
        assert_eq!(invoke_rejection(&sim, CLAUDE_HAIKU, &body).await, expected, "{body}");
    }
    let both = claude_body(user_says("hi"), json!({"temperature": 0.5, "top_p": 0.9}));
    assert_eq!(
        invoke_rejection(&sim, "us.anthropic.claude-haiku-4-5-20251001-v1:0", &both).await,
        "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    );
}

#[tokio::test]
async fn llama_invoke_and_stream_agree() {
    let sim = start().await;
    let prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTell me a \
                  story<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    let body = json!({"prompt": prompt, "temperature": 0.5, "top_p": 0.9, "max_gen_len": 512});
    let (response, n_input_tokens, n_output_tokens) = invoke_with_usage(&sim, LLAMA3, &body).await;
    assert_eq!(response["stop_reason"], "stop");
    assert_eq!(response["prompt_token_count"], n_input_tokens);
    assert_eq!(response["generation_token_count"], n_output_tokens);
    let generation = response["generation"].as_str().unwrap();

    let chunks = stream_chunks(&sim, LLAMA3, &body).await;
    assert_eq!(chunks.len() as u64, n_output_tokens + 1);
    let (last, tokens) = chunks.split_last().unwrap();
    let streamed: String =
        tokens.iter().map(|chunk| chunk["generation"].as_str().unwrap()).collect();
    assert_eq!(streamed, generation);
    assert_eq!(chunks[0]["prompt_token_count"], n_input_tokens);
    for (idx, chunk) in tokens.iter().enumerate() {
        assert_eq!(chunk["generation_token_count"], idx + 1);
        assert_eq!(chunk["stop_reason"], Value::Null);
        if idx > 0 {
            assert_eq!(chunk["prompt_token_count"], Value::Null);
        }
    }
    assert_eq!(last["generation"], "");
    assert_eq!(last["stop_reason"], "stop");
    assert_eq!(last["generation_token_count"], n_output_tokens);
    assert_eq!(last_chunk_metrics(&chunks), (n_input_tokens, n_output_tokens));

    let short = json!({"prompt": prompt, "max_gen_len": 2});
    let response = sim.invoke_json(LLAMA3, &short).await;
    assert_eq!(
        (response["stop_reason"].as_str(), response["generation_token_count"].as_u64()),
        (Some("length"), Some(2))
    );
    let chunks = stream_chunks(&sim, LLAMA3, &short).await;
    assert_eq!(chunks[2]["stop_reason"], "length");

    let llama2 = json!({"prompt": "<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST]"});
    let response = sim.invoke_json("meta.llama2-13b-chat-v1", &llama2).await;
    assert_eq!(response["stop_reason"], "stop");
    let chunks = stream_chunks(&sim, "meta.llama2-70b-chat-v1", &llama2).await;
    assert_eq!(chunks.last().unwrap()["stop_reason"], "stop");
}

#[tokio::test]
async fn llama_profile_and_streaming_rules() {
    let sim = start().await;
    let body = json!({"prompt": "hi"});
    assert_eq!(invoke_rejection(&sim, LLAMA33, &body).await, on_demand_unsupported(LLAMA33));
    assert!(sim.invoke(&format!("us.{LLAMA33}"), &body).await.is_ok());
    let chunks = stream_chunks(&sim, &format!("us.{LLAMA33}"), &body).await;
    assert_eq!(chunks.last().unwrap()["stop_reason"], "stop");

    assert_eq!(invoke_rejection(&sim, LLAMA4, &body).await, on_demand_unsupported(LLAMA4));
    let images = json!({"prompt": "Describe it", "images": ["aGk="], "max_gen_len": 4});
    let response = sim.invoke_json(&format!("us.{LLAMA4}"), &images).await;
    assert_eq!(response["generation_token_count"], 4);
    // Llama 4 streams, through its profile only, in the Llama chunk shape.
    assert_eq!(stream_rejection(&sim, LLAMA4, &body).await, on_demand_unsupported(LLAMA4));
    let maverick = "us.meta.llama4-maverick-17b-instruct-v1:0";
    let response = sim.invoke_json(maverick, &body).await;
    let chunks = stream_chunks(&sim, maverick, &body).await;
    let streamed: String =
        chunks.iter().map(|chunk| chunk["generation"].as_str().unwrap()).collect();
    assert_eq!(streamed, response["generation"].as_str().unwrap());
    assert_eq!(chunks[0]["prompt_token_count"], response["prompt_token_count"]);
    let last = chunks.last().unwrap();
    assert_eq!(last["stop_reason"], "stop");
    assert_eq!(last["generation_token_count"], response["generation_token_count"]);
    let (n_input_tokens, n_output_tokens) = last_chunk_metrics(&chunks);
    assert_eq!(json!(n_input_tokens), response["prompt_token_count"]);
    assert_eq!(json!(n_output_tokens), response["generation_token_count"]);
}

#[tokio::test]
async fn llama_validation() {
    let sim = start().await;
    let cases = [
        (
            json!({"prompt": "hi", "stop": ["\n"]}),
            malformed("#: extraneous key [stop] is not permitted"),
        ),
        (
            json!({"prompt": "hi", "max_gen_len": 2049}),
            malformed("#/max_gen_len: 2049 is not less or equal to 2048"),
        ),
        (
            json!({"prompt": "hi", "max_gen_len": 0}),
            malformed("#/max_gen_len: 0 is not greater or equal to 1"),
        ),
        (
            json!({"prompt": "hi", "top_p": 1.5}),
            malformed("#/top_p: 1.5 is not less or equal to 1"),
        ),
        (
            json!({"prompt": "hi", "images": ["aGk="]}),
            malformed("#: extraneous key [images] is not permitted"),
        ),
        (json!({"max_gen_len": 10}), malformed("#: required key [prompt] not found")),
        (claude_body(user_says("hi"), json!({})), malformed("4 schema violations found")),
    ];
    for (body, expected) in cases {
        assert_eq!(invoke_rejection(&sim, LLAMA3, &body).await, expected, "{body}");
    }
}

#[tokio::test]
async fn mistral_text_invoke_and_stream_agree() {
    let sim = start().await;
    let body = json!({"prompt": "<s>[INST] What is your favourite condiment? [/INST]",
        "temperature": 0.5, "top_p": 0.9, "top_k": 50});
    let (response, n_input_tokens, n_output_tokens) = invoke_with_usage(&sim, MIXTRAL, &body).await;
    let output = &response["outputs"][0];
    assert_eq!(output["stop_reason"], "stop");
    let text = output["text"].as_str().unwrap();
    assert!(text.starts_with(' '), "{text:?}");
    assert_eq!(text.split_whitespace().count() as u64, n_output_tokens);
    assert_eq!(response.as_object().unwrap().len(), 1, "no usage in the Mistral body");

    let chunks = stream_chunks(&sim, MIXTRAL, &body).await;
    let (last, tokens) = chunks.split_last().unwrap();
    let streamed: String =
        tokens.iter().map(|chunk| chunk["outputs"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(streamed, text);
    assert!(tokens.iter().all(|chunk| chunk["outputs"][0]["stop_reason"].is_null()));
    assert_eq!(last["outputs"][0], json!({"text": "", "stop_reason": "stop"}));
    assert_eq!(last_chunk_metrics(&chunks), (n_input_tokens, n_output_tokens));

    let short = json!({"prompt": "[INST] hi [/INST]", "max_tokens": 2});
    let response = sim.invoke_json("mistral.mistral-7b-instruct-v0:2", &short).await;
    assert_eq!(response["outputs"][0]["stop_reason"], "length");

    let (sequence, expected) = stop_sequence_in(text, 3);
    let cut = json!({"prompt": body["prompt"], "stop": [sequence]});
    let response = sim.invoke_json(MIXTRAL, &cut).await;
    assert_eq!(response["outputs"][0], json!({"text": expected, "stop_reason": "stop"}));
}

#[tokio::test]
async fn mistral_text_validation() {
    let sim = start().await;
    let prompt = "[INST] hi [/INST]";
    let cases = [
        (
            MIXTRAL,
            json!({"prompt": prompt, "max_tokens": 4097}),
            malformed("#/max_tokens: 4097 is not less or equal to 4096"),
        ),
        (
            MIXTRAL,
            json!({"prompt": prompt, "stop": vec!["x"; 11]}),
            malformed("#/stop: expected maximum item count: 10, found: 11"),
        ),
        (
            MIXTRAL,
            json!({"prompt": prompt, "stop_sequences": ["x"]}),
            malformed("#: extraneous key [stop_sequences] is not permitted"),
        ),
        (
            MIXTRAL,
            json!({"prompt": prompt, "temperature": -1}),
            malformed("#/temperature: -1 is not greater or equal to 0"),
        ),
        (
            "mistral.mistral-large-2402-v1:0",
            json!({"messages": user_says("hi")}),
            malformed("2 schema violations found"),
        ),
    ];
    for (model_id, body, expected) in cases {
        assert_eq!(invoke_rejection(&sim, model_id, &body).await, expected, "{body}");
    }
    assert!(
        sim.invoke(
            "mistral.mistral-small-2402-v1:0",
            &json!({"prompt": prompt,
        "max_tokens": 8192})
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn mistral_chat_invoke_stream_and_validation() {
    let sim = start().await;
    let body = json!({"messages": [{"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Which LLM are you?"}],
        "max_tokens": 100, "tool_choice": "auto"});
    let (response, n_input_tokens, n_output_tokens) =
        invoke_with_usage(&sim, MISTRAL_LARGE_2407, &body).await;
    let choice = &response["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["stop_reason"], "stop");
    let content = choice["message"]["content"].as_str().unwrap();
    assert_eq!(content.split_whitespace().count() as u64, n_output_tokens);

    let chunks = stream_chunks(&sim, MISTRAL_LARGE_2407, &body).await;
    let (last, tokens) = chunks.split_last().unwrap();
    let streamed: String = tokens
        .iter()
        .map(|chunk| chunk["choices"][0]["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, content);
    assert_eq!(last["choices"][0]["stop_reason"], "stop");
    assert_eq!(last_chunk_metrics(&chunks), (n_input_tokens, n_output_tokens));

    let short = json!({"messages": user_says("hi"), "max_tokens": 1});
    let response = sim.invoke_json(MISTRAL_LARGE_2407, &short).await;
    assert_eq!(response["choices"][0]["stop_reason"], "length");

    let pixtral = "mistral.pixtral-large-2502-v1:0";
    assert_eq!(invoke_rejection(&sim, pixtral, &short).await, on_demand_unsupported(pixtral));
    assert!(sim.invoke(&format!("us.{pixtral}"), &short).await.is_ok());

    let cases = [
        (json!({"prompt": "<s>[INST] hi [/INST]"}), malformed("2 schema violations found")),
        (
            json!({"messages": user_says("hi"), "max_tokens": 8193}),
            malformed("#/max_tokens: 8193 is not less or equal to 8192"),
        ),
        (
            json!({"messages": user_says("hi"), "stop": ["x"]}),
            malformed("#: extraneous key [stop] is not permitted"),
        ),
        (
            json!({"messages": "hi"}),
            malformed("#/messages: expected type: JSONArray, found: String"),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(invoke_rejection(&sim, MISTRAL_LARGE_2407, &body).await, expected, "{body}");
    }
}

#[tokio::test]
async fn deepseek_r1_profile_invoke_stream_and_validation() {
    let sim = start().await;
    let prompt = "<｜begin▁of▁sentence｜><｜User｜>Tell me a story<｜Assistant｜><think>\n";
    let body = json!({"prompt": prompt, "temperature": 0.6, "top_p": 0.9, "max_tokens": 1000});
    assert_eq!(
        invoke_rejection(&sim, "deepseek.r1-v1:0", &body).await,
        on_demand_unsupported("deepseek.r1-v1:0")
    );

    let (response, n_input_tokens, n_output_tokens) =
        invoke_with_usage(&sim, DEEPSEEK_PROFILE, &body).await;
    let choice = &response["choices"][0];
    assert_eq!(choice["stop_reason"], "stop");
    let text = choice["text"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count() as u64, n_output_tokens);

    let chunks = stream_chunks(&sim, DEEPSEEK_PROFILE, &body).await;
    let (last, tokens) = chunks.split_last().unwrap();
    let streamed: String =
        tokens.iter().map(|chunk| chunk["choices"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(streamed, text);
    assert_eq!(last["choices"][0], json!({"text": "", "stop_reason": "stop"}));
    assert_eq!(last_chunk_metrics(&chunks), (n_input_tokens, n_output_tokens));

    let (sequence, expected) = stop_sequence_in(text, 2);
    let cut = json!({"prompt": prompt, "stop": [sequence]});
    let response = sim.invoke_json(DEEPSEEK_PROFILE, &cut).await;
    assert_eq!(response["choices"][0], json!({"text": expected, "stop_reason": "stop"}));
    let short = json!({"prompt": prompt, "max_tokens": 2});
    let response = sim.invoke_json(DEEPSEEK_PROFILE, &short).await;
    assert_eq!(response["choices"][0]["stop_reason"], "length");

    let cases = [
        (
            json!({"prompt": prompt, "max_tokens": 32_769}),
            malformed("#/max_tokens: 32769 is not less or equal to 32768"),
        ),
        (
            json!({"prompt": prompt, "stop": vec!["x"; 11]}),
            malformed("#/stop: expected maximum item count: 10, found: 11"),
        ),
        (
            json!({"prompt": prompt, "top_k": 5}),
            malformed("#: extraneous key [top_k] is not permitted"),
        ),
        (json!({"inputText": prompt}), malformed("2 schema violations found")),
    ];
    for (body, expected) in cases {
        assert_eq!(invoke_rejection(&sim, DEEPSEEK_PROFILE, &body).await, expected, "{body}");
    }
}

#[tokio::test]
async fn gpt_oss_invoke_stream_and_validation() {
    let sim = start().await;
    let body = json!({"model": GPT_OSS, "messages": [
        {"role": "developer", "content": "You are a helpful assistant."},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "What is the weather like today?"}],
        "max_completion_tokens": 150, "temperature": 0.7, "top_p": 0.9, "stream": false});
    let (response, n_input_tokens, n_output_tokens) = invoke_with_usage(&sim, GPT_OSS, &body).await;
    assert_eq!(response["object"], "chat.completion");
    assert_eq!(response["model"], GPT_OSS);
    assert!(response["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(response["created"].as_u64().unwrap() > 1_700_000_000);
    let choice = &response["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap();
    let (reasoning, answer) = content.split_once("</reasoning>").unwrap();
    assert!(reasoning.starts_with("<reasoning>"), "{content}");
    assert_eq!(answer.split_whitespace().count() as u64, n_output_tokens);
    assert_eq!(
        response["usage"],
        json!({"prompt_tokens": n_input_tokens, "completion_tokens": n_output_tokens,
            "total_tokens": n_input_tokens + n_output_tokens})
    );

    // The stream: a role chunk, reasoning chunks each in its own tags, one chunk per answer
    // token, then the finish reason with the invocation metrics.
    let chunks = stream_chunks(&sim, GPT_OSS, &body).await;
    assert!(chunks.iter().all(|chunk| chunk["object"] == "chat.completion.chunk"
        && chunk["model"] == GPT_OSS
        && chunk["id"] == response["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"content": "", "role": "assistant"}));
    let deltas: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    let streamed_reasoning: String = deltas
        .iter()
        .filter_map(|delta| delta.strip_prefix("<reasoning>")?.strip_suffix("</reasoning>"))
        .collect();
    assert_eq!(format!("<reasoning>{streamed_reasoning}"), reasoning);
    let streamed_answer: String =
        deltas.iter().filter(|delta| !delta.starts_with("<reasoning>")).copied().collect();
    assert_eq!(streamed_answer, answer);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([{"delta": {}, "finish_reason": "stop", "index": 0}]));
    assert_eq!(last_chunk_metrics(&chunks), (n_input_tokens, n_output_tokens));

    let short = json!({"messages": user_says("hi"), "max_completion_tokens": 2});
    let response = sim.invoke_json("us.openai.gpt-oss-120b-1:0", &short).await;
    assert_eq!(response["choices"][0]["finish_reason"], "length");
    assert_eq!(response["model"], "openai.gpt-oss-120b-1:0");

    let stream = json!({"messages": user_says("hi"), "max_completion_tokens": 2, "stream": true});
    let chunks = stream_chunks(&sim, "us.openai.gpt-oss-120b-1:0", &stream).await;
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "length");

    let cases = [
        (
            json!({"messages": user_says("hi"), "temperature": 2.5}),
            malformed("#/temperature: 2.5 is not less or equal to 2"),
        ),
        (
            json!({"messages": user_says("hi"), "top_k": 5}),
            malformed("#: extraneous key [top_k] is not permitted"),
        ),
        (
            json!({"messages": user_says("hi"), "stop": ["a", "b", "c", "d", "e"]}),
            malformed("#/stop: expected maximum item count: 4, found: 5"),
        ),
        (json!({"prompt": "hi"}), malformed("2 schema violations found")),
    ];
    for (body, expected) in cases {
        assert_eq!(invoke_rejection(&sim, GPT_OSS, &body).await, expected, "{body}");
    }
}
