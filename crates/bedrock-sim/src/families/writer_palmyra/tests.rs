use serde_json::{Value, json};

use super::*;
use crate::families::{Family, InvocationMetrics};
use crate::generate::generate;

const X5: &str = "writer.palmyra-x5-v1:0";

fn model() -> &'static PalmyraModel {
    WriterPalmyra.model(X5).unwrap()
}

fn parse(body: Value) -> Result<GenerationRequest, String> {
    model().parse_request(X5, &body).map_err(|error| error.message().to_owned())
}

#[test]
fn knows_x4_and_x5_behind_an_inference_profile_only() {
    for id in ["writer.palmyra-x4-v1:0", X5] {
        assert!(WriterPalmyra.matches(id), "{id}");
        assert!(WriterPalmyra.needs_inference_profile(id), "{id}");
    }
    for id in ["writer.palmyra-vision-7b", "writer.palmyra-x5", "qwen.qwen3-32b-v1:0"] {
        assert!(!WriterPalmyra.matches(id), "{id}");
    }
    assert_eq!(WriterPalmyra.id(), "writer_palmyra");
    assert!(WriterPalmyra.streams());
}

#[test]
fn reads_string_and_object_content() {
    let body = json!({"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": {"text": "Weather?"}}],
        "max_tokens": 150, "min_tokens": 2, "temperature": 1.5, "top_p": 0.9,
        "stop": ["END"], "seed": -3, "presence_penalty": -2, "frequency_penalty": 2.0});
    let request = parse(body).unwrap();
    assert_eq!(request.prompt, "Be terse.\nWeather?");
    assert_eq!((request.max_tokens, request.stop_sequences), (150, vec!["END".to_owned()]));
    let request = parse(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap();
    assert_eq!(request.max_tokens, DEFAULT_MAX_TOKENS);
    let tool_turn = json!({"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "t", "type": "function"}]},
        {"role": "tool", "tool_call_id": "t", "content": "Rain."}],
        "tools": [{"type": "function", "function": {"name": "weather"}}], "tool_choice": "auto"});
    assert!(parse(tool_turn).is_ok());
}

#[test]
fn refuses_what_bedrock_refuses() {
    let user = json!([{"role": "user", "content": "x"}]);
    let cases = [
        (json!({"messages": user, "temperature": 2.5}), "2.5 is not less or equal to 2"),
        (json!({"messages": user, "top_p": 0}), "#/top_p: 0 is not greater than 0"),
        (json!({"messages": user, "max_tokens": 8193}), "8193 is not less or equal to 8192"),
        (json!({"messages": user, "max_tokens": 0}), "0 is not greater or equal to 1"),
        (json!({"messages": user, "stop": ["a", "b", "c", "d", "e"]}), "maximum item count: 4"),
        (json!({"messages": user, "stop": "END"}), "#/stop: expected type: JSONArray"),
        (json!({"messages": user, "presence_penalty": -2.5}), "#/presence_penalty"),
        (json!({"messages": user, "min_tokens": 20}), "#/min_tokens: 20 is not less or equal"),
        (json!({"messages": user, "top_k": 5}), "extraneous key [top_k]"),
        (json!({"messages": []}), "expected minimum item count: 1"),
        (json!({"prompt": "x"}), "schema violations found"),
        (json!({"messages": [{"role": "developer", "content": "x"}]}), "developer is not a valid"),
        (json!({"messages": [{"content": "x"}]}), "required key [role]"),
        (json!({"messages": [{"role": "user", "content": {"txt": "x"}}]}), "schema violations"),
        (json!({"messages": [{"role": "user", "content": [{"type": "text"}]}]}), "JSONArray"),
    ];
    for (body, expected) in cases {
        let error = parse(body.clone()).unwrap_err();
        assert!(error.contains(expected), "{body}: {error}");
    }
}

#[test]
fn answer_shape() {
    let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 3});
    let completion = generate(&parse(body).unwrap());
    let response: Value = serde_json::from_slice(&model().response_body(&completion)).unwrap();
    assert_eq!((&response["object"], &response["model"]), (&json!("chat.completion"), &json!(X5)));
    assert!(response["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(
        response["choices"][0],
        json!({"index": 0, "message": {"role": "assistant", "reasoning_content": null,
            "content": completion.text(), "tool_calls": []}, "logprobs": null,
            "finish_reason": "length", "stop_reason": null})
    );
    assert_eq!(
        response["usage"],
        json!({"prompt_tokens": 2, "total_tokens": 5, "completion_tokens": 3,
            "prompt_tokens_details": null})
    );
    assert_eq!(response["prompt_logprobs"], Value::Null);
}

#[test]
fn a_stop_sequence_is_the_stop_reason() {
    let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 50});
    let full = generate(&parse(body).unwrap()).text();
    let stop_word = full.split_whitespace().nth(2).unwrap().to_owned();
    let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 50,
        "stop": [stop_word]});
    let completion = generate(&parse(body).unwrap());
    let response: Value = serde_json::from_slice(&model().response_body(&completion)).unwrap();
    assert_eq!(response["choices"][0]["finish_reason"], "stop");
    assert_eq!(response["choices"][0]["stop_reason"], json!(stop_word));
}

#[test]
fn stream_chunks() {
    let body = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 2});
    let completion = generate(&parse(body).unwrap());
    let metrics = InvocationMetrics {
        input_token_count: 2,
        output_token_count: 2,
        invocation_latency: 9,
        first_byte_latency: 3,
    };
    let model = model();
    let n_chunks = model.n_stream_chunks(&completion);
    assert_eq!(n_chunks, 4);
    let chunks: Vec<Value> = (0..n_chunks)
        .map(|idx| {
            let metrics = (idx + 1 == n_chunks).then_some(metrics);
            serde_json::from_slice(&model.stream_chunk(&completion, idx, metrics)).unwrap()
        })
        .collect();
    for chunk in &chunks {
        assert_eq!(
            (&chunk["object"], &chunk["model"]),
            (&json!("chat.completion.chunk"), &json!(X5))
        );
    }
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null,
            "finish_reason": null}])
    );
    let streamed: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, completion.text());
    let last = chunks.last().unwrap();
    assert_eq!(
        last["choices"],
        json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length",
            "stop_reason": null}])
    );
    assert_eq!(last["amazon-bedrock-invocationMetrics"]["outputTokenCount"], 2);
    assert!(
        chunks[..n_chunks - 1].iter().all(|c| c.get("amazon-bedrock-invocationMetrics").is_none())
    );
    assert_eq!(model.n_stream_tokens_sent(&completion, 2), 1);
}
