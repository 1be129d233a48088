//! Anthropic's Messages API over plain HTTP against the shipped config and the simulator:
//! Anthropic's answer, its SSE events, a tool round trip on Claude, a non-Claude family
//! through the unified request, count_tokens, the gateway key as `x-api-key`, and errors in
//! Anthropic's shape. (`tests/clients/test_anthropic_sdk.py` drives the same routes with
//! the Anthropic SDK.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SHIPPED_CONFIG};

async fn shipped() -> Harness {
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    Harness::start_with("max_attempts = 1\n", &SHIPPED_CONFIG[at..]).await
}

/// The `(event, data)` pairs of a streamed answer, each data's `type` its event's name.
async fn stream_events(h: &Harness, body: &Value) -> (StatusCode, Vec<(String, Value)>) {
    let response = h.http.post(h.url("/v1/messages")).json(body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let event = block.lines().find_map(|line| line.strip_prefix("event: "));
        let data = block.lines().find_map(|line| line.strip_prefix("data: "));
        let (Some(event), Some(data)) = (event, data) else {
            continue;
        };
        let data: Value = serde_json::from_str(data).unwrap();
        assert_eq!(data["type"], if event == "error" { "error" } else { event }, "{block}");
        events.push((event.to_owned(), data));
    }
    (status, events)
}

/// The event names of a stream, each run of one name as one.
fn event_names(events: &[(String, Value)]) -> Vec<&str> {
    let mut names: Vec<&str> = events.iter().map(|(event, _)| event.as_str()).collect();
    names.dedup();
    names
}

fn assert_anthropic_error(body: &Value, kind: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn messages_whole_and_streamed_agree_on_claude_and_other_families() {
    let h = shipped().await;
    for model in ["claude-3-haiku", "nova-lite", "titan-express"] {
        let request = json!({
            "model": model,
            "max_tokens": 200,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell me about tides"}]}],
            "temperature": 0.5,
            "metadata": {"user_id": "team-a"},
        });
        let (status, headers, whole) = h.post("/v1/messages", &request).await;
        assert_eq!(status, StatusCode::OK, "{model}: {whole}");
        assert!(headers.contains_key("x-gateway-target"), "{model}");
        assert!(whole["id"].as_str().unwrap().starts_with("msg_"), "{whole}");
        assert_eq!(
            (&whole["type"], &whole["role"], &whole["model"], &whole["stop_reason"]),
            (&json!("message"), &json!("assistant"), &json!(model), &json!("end_turn")),
            "{whole}"
        );
        assert_eq!(whole["stop_sequence"], Value::Null);
        let content = whole["content"].as_array().unwrap();
        assert_eq!(content.len(), 1, "{whole}");
        assert_eq!(content[0]["type"], "text");
        let text = content[0]["text"].as_str().unwrap();
        assert!(!text.is_empty(), "{model}");
        assert!(whole["usage"]["input_tokens"].as_u64().unwrap() > 0, "{whole}");
        assert!(whole["usage"]["output_tokens"].as_u64().unwrap() > 0, "{whole}");

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let (status, events) = stream_events(&h, &streamed).await;
        assert_eq!(status, StatusCode::OK, "{model}");
        assert_eq!(
            event_names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ],
            "{model}"
        );
        let start = &events[0].1["message"];
        assert!(start["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!((&start["model"], &start["content"]), (&json!(model), &json!([])));
        assert_eq!(events[1].1["content_block"], json!({"type": "text", "text": ""}));
        let joined: String = events
            .iter()
            .filter(|(event, _)| event == "content_block_delta")
            .map(|(_, data)| {
                assert_eq!(
                    (&data["index"], &data["delta"]["type"]),
                    (&json!(0), &json!("text_delta"))
                );
                data["delta"]["text"].as_str().unwrap()
            })
            .collect();
        assert_eq!(joined, text, "{model}: the stream says what the whole answer says");
        let delta = &events[events.len() - 2].1;
        assert_eq!(delta["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
        assert_eq!(delta["usage"]["output_tokens"], whole["usage"]["output_tokens"], "{model}");
        assert_eq!(delta["usage"]["input_tokens"], whole["usage"]["input_tokens"], "{model}");
    }
}

#[tokio::test]
async fn a_tool_round_trip_on_claude_whole_and_streamed() {
    let h = shipped().await;
    let tools = json!([{
        "name": "get_weather",
        "description": "The weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                         "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                         "required": ["city", "unit"]},
    }]);
    let question = json!({"role": "user", "content": "What is the weather in Oslo?"});
    let request = json!({"model": "claude-3-haiku", "max_tokens": 300, "tools": tools,
                         "messages": [question]});
    let (status, _, called) = h.post("/v1/messages", &request).await;
    assert_eq!(status, StatusCode::OK, "{called}");
    assert_eq!(called["stop_reason"], "tool_use", "{called}");
    let calls: Vec<&Value> =
        called["content"].as_array().unwrap().iter().filter(|b| b["type"] == "tool_use").collect();
    assert_eq!(calls.len(), 1, "{called}");
    let call = calls[0];
    assert_eq!(call["name"], "get_weather");
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"), "{call}");
    assert_eq!(call["input"]["unit"], "celsius", "the enum's first value: {call}");
    assert!(call["input"]["city"].is_string(), "{call}");

    // The same call, streamed: a tool_use block whose JSON pieces make the same input.
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let (status, events) = stream_events(&h, &streamed).await;
    assert_eq!(status, StatusCode::OK);
    let start = events.iter().find(|(event, _)| event == "content_block_start").unwrap();
    assert_eq!(start.1["content_block"]["type"], "tool_use", "{events:?}");
    assert_eq!(start.1["content_block"]["id"], call["id"]);
    assert_eq!(start.1["content_block"]["input"], json!({}));
    let pieces: String = events
        .iter()
        .filter(|(event, data)| {
            event == "content_block_delta" && data["delta"]["type"] == "input_json_delta"
        })
        .map(|(_, data)| data["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&pieces).unwrap(), call["input"]);
    let delta = events.iter().find(|(event, _)| event == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");

    // The result goes back; the model answers in text.
    let answer = json!({"model": "claude-3-haiku", "max_tokens": 300, "tools": tools, "messages": [
        question,
        {"role": "assistant", "content": called["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                      "content": [{"type": "text", "text": "3 degrees, windy"}]}]},
    ]});
    let (status, _, answered) = h.post("/v1/messages", &answer).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["stop_reason"], "end_turn", "{answered}");
    assert_eq!(answered["content"][0]["type"], "text", "{answered}");
    assert!(!answered["content"][0]["text"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn an_image_reaches_claude_and_a_text_only_family_refuses_it() {
    let h = shipped().await;
    // A 1x1 PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let request = json!({"model": "claude-3-haiku", "max_tokens": 100, "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            {"type": "text", "text": "What is in this picture?"},
        ]},
    ]});
    let (status, _, body) = h.post("/v1/messages", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"][0]["type"], "text");
    let (status, _, body) = h
        .post(
            "/v1/messages",
            &json!({"model": "titan-express",
        "max_tokens": 100, "messages": request["messages"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_anthropic_error(&body, "invalid_request_error");
}

#[tokio::test]
async fn count_tokens_gives_bedrock_s_count_or_the_gateway_s_estimate() {
    let h = shipped().await;
    // Claude 3 Haiku does not count tokens on Bedrock: the gateway's estimate, which says so.
    let short = json!({"model": "claude-3-haiku", "messages": [{"role": "user", "content": "Hi"}]});
    let (status, headers, counted) = h.post("/v1/messages/count_tokens", &short).await;
    assert_eq!(status, StatusCode::OK, "{counted}");
    assert_eq!(headers["x-gateway-token-count-source"], "estimate");
    let short_count = counted["input_tokens"].as_u64().unwrap();
    assert!(short_count > 0, "{counted}");
    assert_eq!(counted.as_object().unwrap().len(), 1, "{counted}");
    let long = json!({"model": "claude-3-haiku", "system": "Be brief. ".repeat(200),
                      "messages": [{"role": "user", "content": "Hi"}]});
    let (status, _, counted) = h.post("/v1/messages/count_tokens", &long).await;
    assert_eq!(status, StatusCode::OK, "{counted}");
    assert!(counted["input_tokens"].as_u64().unwrap() > short_count, "{counted}");
    // Bedrock was asked (CountTokens, refused), and nothing was invoked.
    assert_eq!(h.sim.request_count(), 2);
    let (status, _, body) = h
        .post(
            "/v1/messages/count_tokens",
            &json!({"model": "claude-3-haiku", "max_tokens": 5,
              "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_anthropic_error(&body, "invalid_request_error");
    assert_eq!(h.sim.request_count(), 2, "a refused request is not counted");

    // Claude Sonnet 4 counts: Bedrock's count, the input tokens the same request reports.
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "How many tokens are in this question about the tides?"}]}]);
    let count = json!({"model": "claude-sonnet-4", "system": "Be brief.", "messages": messages});
    let (status, headers, counted) = h.post("/v1/messages/count_tokens", &count).await;
    assert_eq!(status, StatusCode::OK, "{counted}");
    assert_eq!(headers["x-gateway-token-count-source"], "bedrock");
    let mut request = count.clone();
    request["max_tokens"] = json!(20);
    let (status, _, answered) = h.post("/v1/messages", &request).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(counted, json!({"input_tokens": answered["usage"]["input_tokens"]}));

    // Bedrock's other errors are the answer, in Anthropic's shape.
    let behavior = json!({"fault": {"error": "ThrottlingException"}, "fault_times": 1});
    h.sim.set_behavior(
        "anthropic.claude-sonnet-4-20250514-v1:0",
        serde_json::from_value(behavior).unwrap(),
    );
    let (status, _, body) = h.post("/v1/messages/count_tokens", &count).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_anthropic_error(&body, "rate_limit_error");
    h.sim.clear_behaviors();
}

#[tokio::test]
async fn errors_come_in_anthropic_s_shape_with_the_gateway_s_status() {
    let h = shipped().await;
    let hi = json!([{"role": "user", "content": "Hi"}]);
    for (body, status, kind, named) in [
        (json!({"model": "nope", "max_tokens": 5, "messages": hi}), 404, "not_found_error", "nope"),
        (
            json!({"model": "claude-3-haiku", "messages": hi}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"model": "claude-3-haiku", "max_tokens": 5, "messages": hi, "n": 2}),
            400,
            "invalid_request_error",
            "`n`",
        ),
        (
            json!({"model": "claude-3-haiku", "max_tokens": 5, "messages": [{"role": "user",
                "content": [{"type": "thinking", "thinking": "hm", "signature": ""}]}]}),
            422,
            "invalid_request_error",
            "thinking",
        ),
        (
            json!({"model": "titan-express", "max_tokens": 5, "messages": hi,
                "tools": [{"name": "f", "input_schema": {"type": "object"}}]}),
            422,
            "invalid_request_error",
            "titan",
        ),
        (
            json!({"model": "titan-embed-v2", "max_tokens": 5, "messages": hi}),
            400,
            "invalid_request_error",
            "embedding",
        ),
    ] {
        let (got, _, answer) = h.post("/v1/messages", &body).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_anthropic_error(&answer, kind);
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{body}: {message}");
    }
    let (status, _, answer) = h.post_raw("/v1/messages", "{not json".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_anthropic_error(&answer, "invalid_request_error");
    let response = h.http.get(h.url("/v1/messages")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_anthropic_error(&response.json().await.unwrap(), "invalid_request_error");
    // Nothing reached Bedrock.
    assert_eq!(h.sim.request_count(), 0);
}

#[tokio::test]
async fn the_gateway_key_is_taken_as_x_api_key_and_refusals_are_anthropic_s() {
    let keys = format!(
        "[[auth.keys]]\nname = \"team-a\"\nsha256 = \"{}\"\nmodels = [\"claude-3-haiku\"]\n",
        server::auth::hash_key("team-a-secret")
    );
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    let h = Harness::start_with("max_attempts = 1\n", &format!("{keys}{}", &SHIPPED_CONFIG[at..]))
        .await;
    let request = |model: &str| json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]});
    let send = |key: Option<&'static str>, path: &'static str, body: Value| {
        let mut builder =
            h.http.post(h.url(path)).header("anthropic-version", "2023-06-01").json(&body);
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        builder.send()
    };
    let response =
        send(Some("team-a-secret"), "/v1/messages", request("claude-3-haiku")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for (key, path, model, status, kind) in [
        (None, "/v1/messages", "claude-3-haiku", 401, "authentication_error"),
        (Some("wrong"), "/v1/messages", "claude-3-haiku", 401, "authentication_error"),
        (None, "/v1/messages/count_tokens", "claude-3-haiku", 401, "authentication_error"),
        (Some("team-a-secret"), "/v1/messages", "nova-lite", 403, "permission_error"),
    ] {
        let response = send(key, path, request(model)).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{key:?} {path} {model}");
        assert_anthropic_error(&response.json().await.unwrap(), kind);
    }
    let mut counted = request("nova-lite");
    counted.as_object_mut().unwrap().remove("max_tokens");
    let response = send(Some("team-a-secret"), "/v1/messages/count_tokens", counted).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_anthropic_error(&response.json().await.unwrap(), "permission_error");
}
