//! OpenAI's Responses API (`POST /v1/responses`) and `GET /v1/models/{id}` over plain
//! HTTP: the response object, the Responses events, a function-call round trip, images,
//! structured output, the stateless refusals. (`tests/clients/test_openai_responses.py`
//! drives the same routes with the openai SDK.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SHIPPED_CONFIG};
use crate::openai::assert_openai_error;

async fn shipped() -> Harness {
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    Harness::start_with("max_attempts = 1\n", &SHIPPED_CONFIG[at..]).await
}

/// The `(event, data)` pairs of a Responses stream.
async fn stream_events(h: &Harness, body: &Value) -> (StatusCode, Vec<(String, Value)>) {
    let response = h.http.post(h.url("/v1/responses")).json(body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let events = text
        .split("\n\n")
        .filter(|block| block.lines().any(|line| line.starts_with("data: ")))
        .map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (event.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect();
    (status, events)
}

/// The text of a response object's message items.
fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().unwrap())
        .map(|part| part["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_text_response_whole_and_streamed_agree() {
    let h = shipped().await;
    for model in ["claude-3-haiku", "nova-lite", "llama3-8b"] {
        let request = json!({"model": model, "instructions": "Be terse.",
                             "input": "Tell me about tides", "max_output_tokens": 200,
                             "temperature": 0.5, "store": false});
        let (status, _, whole) = h.post("/v1/responses", &request).await;
        assert_eq!(status, StatusCode::OK, "{model}: {whole}");
        assert_eq!(whole["object"], "response");
        assert!(whole["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!((&whole["status"], &whole["model"]), (&json!("completed"), &json!(model)));
        assert_eq!(whole["instructions"], "Be terse.");
        assert_eq!(whole["store"], false);
        let text = output_text(&whole);
        assert!(!text.is_empty(), "{model}");
        let usage = &whole["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
        );

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (status, events) = stream_events(&h, &streamed).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names[..5],
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta"
            ],
            "{model}"
        );
        assert_eq!(names.last().unwrap(), &"response.completed", "{model}");
        for (n, (name, data)) in events.iter().enumerate() {
            assert_eq!((&data["type"], &data["sequence_number"]), (&json!(name), &json!(n)));
        }
        let joined: String = events
            .iter()
            .filter(|(name, _)| name == "response.output_text.delta")
            .map(|(_, data)| data["delta"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(joined, text, "{model}");
        let completed = &events.last().unwrap().1["response"];
        assert_eq!(output_text(completed), text);
        assert_eq!(completed["usage"], whole["usage"], "{model}");
        assert_eq!(completed["id"], events[0].1["response"]["id"]);
    }
}

#[tokio::test]
async fn a_function_call_round_trip_on_claude() {
    let h = shipped().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}]);
    let first = json!({"model": "claude-3-haiku", "input": "Weather in Oslo?", "tools": tools});
    let (status, _, answer) = h.post("/v1/responses", &first).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let calls: Vec<&Value> = answer["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "function_call")
        .collect();
    assert_eq!(calls.len(), 1, "{answer}");
    let call = calls[0];
    assert_eq!((&call["name"], &call["status"]), (&json!("get_weather"), &json!("completed")));
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["city"].is_string(), "{arguments}");
    assert_eq!(answer["tools"][0]["name"], "get_weather");

    // Streamed: the same call, in the function-call events.
    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let (_, events) = stream_events(&h, &streamed).await;
    let added = events
        .iter()
        .find(|(name, data)| {
            name == "response.output_item.added" && data["item"]["type"] == "function_call"
        })
        .unwrap();
    assert_eq!(added.1["item"]["call_id"], call["call_id"]);
    let pieces: String = events
        .iter()
        .filter(|(name, _)| name == "response.function_call_arguments.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pieces, call["arguments"].as_str().unwrap());
    let done =
        events.iter().find(|(name, _)| name == "response.function_call_arguments.done").unwrap();
    assert_eq!(done.1["arguments"], call["arguments"]);
    assert_eq!(events.last().unwrap().0, "response.completed");

    // The result goes back; the model answers in text.
    let second = json!({"model": "claude-3-haiku", "tools": tools, "input": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "call_id": call["call_id"], "name": "get_weather",
         "arguments": call["arguments"], "id": call["id"], "status": "completed"},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "12 C, sunny"},
    ]});
    let (status, _, answer) = h.post("/v1/responses", &second).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!output_text(&answer).is_empty(), "{answer}");
    assert!(answer["output"].as_array().unwrap().iter().all(|item| item["type"] == "message"));
}

#[tokio::test]
async fn image_input_and_structured_output() {
    let h = shipped().await;
    // A 1x1 PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let image = json!({"model": "claude-3-haiku", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": format!("data:image/png;base64,{png}")}]}]});
    let (status, _, answer) = h.post("/v1/responses", &image).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!output_text(&answer).is_empty());

    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}},
                        "required": ["answer"]});
    let structured = json!({"model": "claude-3-haiku", "input": "Answer in JSON",
        "text": {"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": true}}});
    let (status, _, answer) = h.post("/v1/responses", &structured).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let parsed: Value = serde_json::from_str(&output_text(&answer)).unwrap();
    assert!(parsed["answer"].is_string(), "{parsed}");
    assert_eq!(answer["text"]["format"]["name"], "reply");
}

#[tokio::test]
async fn stateful_and_unknown_requests_are_refused_in_openai_s_shape() {
    let h = shipped().await;
    for (body, status, code, param) in [
        (
            json!({"model": "claude-3-haiku", "input": "Hi", "store": true}),
            400,
            "invalid_request",
            "store",
        ),
        (
            json!({"model": "claude-3-haiku", "input": "Hi", "previous_response_id": "resp_1"}),
            400,
            "invalid_request",
            "previous_response_id",
        ),
        (
            json!({"model": "claude-3-haiku", "input": "Hi", "tools": [{"type": "web_search"}]}),
            422,
            "unsupported_parameter",
            "tools",
        ),
        (
            json!({"model": "claude-3-haiku", "input": "Hi", "background": true}),
            422,
            "unsupported_parameter",
            "background",
        ),
        (json!({"model": "no-such-model", "input": "Hi"}), 404, "model_not_found", ""),
    ] {
        let (got, _, answer) = h.post("/v1/responses", &body).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_openai_error(&answer, code);
        if !param.is_empty() {
            assert_eq!(answer["error"]["param"], param, "{answer}");
        }
    }
    let (got, _, answer) = h.post_raw("/v1/responses", "{\"model\": 1}".to_owned()).await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert_openai_error(&answer, "invalid_request");
}

#[tokio::test]
async fn one_model_is_retrieved_or_not_found() {
    let h = shipped().await;
    let (status, model) = h.get("/v1/models/claude-3-haiku").await;
    assert_eq!(status, StatusCode::OK, "{model}");
    let (_, list) = h.get("/v1/models").await;
    let listed =
        list["data"].as_array().unwrap().iter().find(|m| m["id"] == "claude-3-haiku").unwrap();
    assert_eq!(&model, listed);
    assert_eq!((&model["object"], &model["owned_by"]), (&json!("model"), &json!("bedrock")));

    let (status, missing) = h.get("/v1/models/no-such-model").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_openai_error(&missing, "model_not_found");
    assert_eq!(missing["error"]["param"], "model");
}
