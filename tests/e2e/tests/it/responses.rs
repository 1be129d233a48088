//! OpenAI's Responses API (`POST /v1/responses`) and `GET /v1/models/{id}` over plain
//! HTTP: the response object, the Responses events, a function-call round trip, images,
//! structured output, the stateless refusals; with the store on (`[responses]`), a
//! conversation continued by `previous_response_id`, retrieved, deleted, and seen by its
//! own API key only. (`tests/clients/test_openai_responses.py` drives the same routes with
//! the openai SDK.)

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

/// The shipped models with the Responses store on; with `keys`, two API keys (`team-a`,
/// `team-b`, whose keys are `<name>-secret`).
async fn with_store(keys: bool) -> Harness {
    let at = SHIPPED_CONFIG.find("[models.").unwrap();
    let mut top = "[responses]\nstore_max_entries = 100\n".to_owned();
    for name in ["team-a", "team-b"].into_iter().filter(|_| keys) {
        let digest = server::auth::hash_key(&format!("{name}-secret"));
        top.push_str(&format!("[[auth.keys]]\nname = \"{name}\"\nsha256 = \"{digest}\"\n"));
    }
    Harness::start_with_top(&top, "max_attempts = 1\n", &SHIPPED_CONFIG[at..]).await
}

/// One call with `key` (if any) as the bearer token: the status and the JSON answer.
async fn call(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = h.http.request(method, h.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}")))
}

fn assert_not_found(answer: &Value, id: &str, param: Option<&str>) {
    assert_openai_error(answer, "not_found");
    assert_eq!(answer["error"]["type"], "not_found_error", "{answer}");
    assert_eq!(answer["error"]["message"], format!("Response with id '{id}' not found."));
    assert_eq!(answer["error"]["param"], json!(param), "{answer}");
}

#[tokio::test]
async fn a_conversation_continues_by_previous_response_id_and_is_retrieved_and_deleted() {
    use reqwest::Method;
    let h = with_store(false).await;
    let first = json!({"model": "claude-3-haiku", "instructions": "Be terse.",
                       "input": "Tell me about tides", "max_output_tokens": 200});
    let (status, _, one) = h.post("/v1/responses", &first).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!((&one["store"], &one["previous_response_id"]), (&json!(true), &Value::Null));
    let id1 = one["id"].as_str().unwrap().to_owned();
    let text1 = output_text(&one);

    // The second turn's model input is the first turn (without its instructions, which
    // OpenAI does not carry over) and the new input: the same answer, from the same input
    // tokens, as the whole conversation sent statelessly.
    let second = json!({"model": "claude-3-haiku", "previous_response_id": id1,
                        "input": "And the moon?", "max_output_tokens": 200});
    let (status, _, two) = h.post("/v1/responses", &second).await;
    assert_eq!(status, StatusCode::OK, "{two}");
    assert_eq!((&two["store"], &two["previous_response_id"]), (&json!(true), &json!(id1)));
    let whole = json!({"model": "claude-3-haiku", "store": false, "max_output_tokens": 200,
        "input": [{"role": "user", "content": "Tell me about tides"},
                  {"type": "message", "role": "assistant",
                   "content": [{"type": "output_text", "text": text1}]},
                  {"role": "user", "content": "And the moon?"}]});
    let (status, _, stateless) = h.post("/v1/responses", &whole).await;
    assert_eq!(status, StatusCode::OK, "{stateless}");
    assert_eq!(stateless["store"], false);
    assert_eq!(output_text(&two), output_text(&stateless));
    assert_eq!(two["usage"], stateless["usage"]);
    let alone = json!({"model": "claude-3-haiku", "store": false, "input": "And the moon?"});
    let (_, _, alone) = h.post("/v1/responses", &alone).await;
    assert!(
        alone["usage"]["input_tokens"].as_u64() < two["usage"]["input_tokens"].as_u64(),
        "{alone} {two}"
    );
    // `store: false` keeps nothing.
    let (status, _) = call(
        &h,
        Method::GET,
        &format!("/v1/responses/{}", stateless["id"].as_str().unwrap()),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A streamed third turn is stored when it completes.
    let third = json!({"model": "claude-3-haiku", "previous_response_id": two["id"],
                       "input": "Thanks", "stream": true});
    let (status, events) = stream_events(&h, &third).await;
    assert_eq!(status, StatusCode::OK);
    let (last, completed) = events.last().unwrap();
    assert_eq!(last, "response.completed");
    let completed = &completed["response"];
    assert_eq!(
        (&completed["store"], &completed["previous_response_id"]),
        (&json!(true), &two["id"])
    );
    let path3 = format!("/v1/responses/{}", completed["id"].as_str().unwrap());
    let (status, three) = call(&h, Method::GET, &path3, None, None).await;
    assert_eq!(status, StatusCode::OK, "{three}");
    assert_eq!(&three, completed);

    // Retrieved as it was answered; deleted once.
    let path1 = format!("/v1/responses/{id1}");
    let (status, got) = call(&h, Method::GET, &path1, None, None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, one);
    let (status, deleted) = call(&h, Method::DELETE, &path1, None, None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted, json!({"id": id1, "object": "response", "deleted": true}));
    for method in [Method::GET, Method::DELETE] {
        let (status, answer) = call(&h, method, &path1, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_not_found(&answer, &id1, None);
    }
    let (status, _, answer) = h.post("/v1/responses", &second).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_not_found(&answer, &id1, Some("previous_response_id"));
    // The second turn holds its own copy of the conversation: it still continues.
    let fourth = json!({"model": "claude-3-haiku", "previous_response_id": two["id"],
                        "input": "Bye", "store": false});
    let (status, _, answer) = h.post("/v1/responses", &fourth).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["store"], false);
}

#[tokio::test]
async fn a_function_call_round_trip_by_previous_response_id() {
    let h = with_store(false).await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}]);
    let first = json!({"model": "claude-3-haiku", "input": "Weather in Oslo?", "tools": tools});
    let (status, _, answer) = h.post("/v1/responses", &first).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let call = answer["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["type"] == "function_call")
        .unwrap();
    // Only the result goes back: the call is in the stored conversation.
    let second = json!({"model": "claude-3-haiku", "tools": tools,
        "previous_response_id": answer["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"],
                   "output": "12 C, sunny"}]});
    let (status, _, reply) = h.post("/v1/responses", &second).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(!output_text(&reply).is_empty(), "{reply}");
    assert!(reply["output"].as_array().unwrap().iter().all(|item| item["type"] == "message"));
}

#[tokio::test]
async fn a_stored_response_is_seen_only_by_the_api_key_that_made_it() {
    use reqwest::Method;
    let h = with_store(true).await;
    let body = json!({"model": "claude-3-haiku", "input": "Hi"});
    let (status, answer) =
        call(&h, Method::POST, "/v1/responses", Some("team-a-secret"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["store"], true);
    let id = answer["id"].as_str().unwrap();
    let path = format!("/v1/responses/{id}");
    for method in [Method::GET, Method::DELETE] {
        let (status, other) = call(&h, method, &path, Some("team-b-secret"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
        assert_not_found(&other, id, None);
    }
    let follow = json!({"model": "claude-3-haiku", "input": "Hi", "previous_response_id": id});
    let (status, other) =
        call(&h, Method::POST, "/v1/responses", Some("team-b-secret"), Some(&follow)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{other}");
    assert_not_found(&other, id, Some("previous_response_id"));
    // No key: refused in OpenAI's shape on these routes too.
    let (status, refused) = call(&h, Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_openai_error(&refused, "unauthenticated");
    // Its own key still sees it.
    let (status, got) = call(&h, Method::GET, &path, Some("team-a-secret"), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &answer));
    let (status, _) =
        call(&h, Method::POST, "/v1/responses", Some("team-a-secret"), Some(&follow)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn with_the_store_off_nothing_is_kept_or_found() {
    use reqwest::Method;
    let h = shipped().await;
    let (status, _, answer) =
        h.post("/v1/responses", &json!({"model": "claude-3-haiku", "input": "Hi"})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["store"], false);
    let id = answer["id"].as_str().unwrap();
    let path = format!("/v1/responses/{id}");
    for method in [Method::GET, Method::DELETE] {
        let (status, missing) = call(&h, method, &path, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_not_found(&missing, id, None);
    }
    // Another method, or a path under a response, is refused in OpenAI's shape.
    let (status, refused) = call(&h, Method::PUT, &path, None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{refused}");
    assert_openai_error(&refused, "method_not_allowed");
    let (status, refused) = call(&h, Method::GET, &format!("{path}/input_items"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_openai_error(&refused, "not_found");
}

#[tokio::test]
async fn a_reload_keeps_the_store_unless_responses_changes() {
    use server::routes::responses_store::StoredResponse;
    let h = Harness::start().await;
    let metrics = std::sync::Arc::new(server::metrics::Metrics::new(true));
    let state = |responses: &str, alias: &str| {
        let text = format!(
            "{responses}\n[upstream]\nkind = \"simulator\"\nendpoint_url = \"{}\"\n\
             [models.{alias}]\nmodel_id = \"anthropic.claude-3-haiku-20240307-v1:0\"\n",
            h.sim_url
        );
        let metrics = metrics.clone();
        async move {
            let config = server::Config::parse(&text, "test").unwrap();
            let pipeline =
                server::pipeline::Pipeline::from_config(&config, None, metrics).await.unwrap();
            (config, pipeline)
        }
    };
    let on = "[responses]\nstore_max_entries = 10";
    let (config, pipeline) = state(on, "a").await;
    let gateway = server::app::Gateway::new(config, pipeline, metrics.clone());
    let store = gateway.current().responses_store;
    let stored = StoredResponse::new(None, Vec::new(), "{}".to_owned(), std::time::Instant::now());
    assert!(store.insert("resp_1", stored));
    // Another alias, the same `[responses]`: the same store, its entry kept.
    let (config, pipeline) = state(on, "b").await;
    gateway.swap(config, pipeline);
    let kept = gateway.current().responses_store;
    assert!(std::sync::Arc::ptr_eq(&store, &kept));
    assert!(kept.get("resp_1", None).is_some());
    // Other bounds: a new, empty store; off: an off one.
    let (config, pipeline) = state("[responses]\nstore_max_entries = 20", "b").await;
    gateway.swap(config, pipeline);
    let fresh = gateway.current().responses_store;
    assert!(!std::sync::Arc::ptr_eq(&store, &fresh));
    assert_eq!((fresh.config().max_entries, fresh.usage()), (20, (0, 0)));
    let (config, pipeline) = state("", "b").await;
    gateway.swap(config, pipeline);
    assert!(!gateway.current().responses_store.is_on());
}
